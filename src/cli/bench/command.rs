//! The bench command line (modes and scenarios), run setup, and where results go: the
//! table on stdout, `--json`, `--plot`.

use std::io::Write as _;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::engine::{client_name, Bench, PhaseSpec};
use super::phase_result::PhaseResult;
use super::load_args::LoadArgs;
use super::payload::BenchClock;
use super::plot::{self, Series, E2E_COLOR, PRODUCE_COLOR};
use super::report::{phase_json, phase_table};
use super::scenario::{self, ScenarioCommand};
use super::topic_setup::{ensure_topic, high_watermarks};
use crate::cli::brokers::BrokerArgs;

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    pub brokers: BrokerArgs,
    #[command(subcommand)]
    pub mode: BenchMode,
}

#[derive(Subcommand, Debug)]
pub enum BenchMode {
    /// Producers only: throughput and produce (acknowledgement) latency.
    #[command(after_help = "Examples:\n  strand bench produce --duration 30s\n  \
        strand bench produce --rate 50000 --producers 2 --acks 1 --json produce.json --plot produce.png")]
    Produce(LoadArgs),
    /// Consumers only: how fast the topic's backlog is read (preloads --messages if it is empty).
    #[command(after_help = "Examples:\n  strand bench consume --messages 1000000\n  strand bench consume --consumers 3 -p 6")]
    Consume(LoadArgs),
    /// Producers and tailing consumers: end-to-end latency from intended send to receipt.
    #[command(after_help = "Examples:\n  strand bench e2e --rate 10000 --duration 60s --plot e2e.png\n  \
        strand bench e2e --rate 1000 --message-size 100 --json e2e.json")]
    E2e(LoadArgs),
    /// Preset experiments.
    #[command(subcommand)]
    Scenario(ScenarioCommand),
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    match &args.mode {
        BenchMode::Produce(load) => single_phase(&args.brokers, load, "produce", 0),
        BenchMode::E2e(load) => single_phase(&args.brokers, load, "e2e", load.consumers),
        BenchMode::Consume(load) => consume(&args.brokers, load),
        BenchMode::Scenario(command) => scenario::run(&args.brokers, command),
    }
}

/// Connects, makes sure the topic exists, and starts the clock.
pub fn setup(brokers: &BrokerArgs, load: &LoadArgs) -> anyhow::Result<Bench> {
    load.check()?;
    let meta = brokers.consumer(None)?;
    let partitions = ensure_topic(brokers, &meta, &load.topic, load.partitions)?;
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&interrupted))?;
    }
    Ok(Bench { brokers: brokers.clone(), load: load.clone(), clock: BenchClock::new(), partitions, meta, interrupted })
}

pub fn spec(name: &str, load: &LoadArgs, tail_consumers: usize) -> PhaseSpec {
    PhaseSpec {
        name: name.to_owned(),
        producers: load.producers,
        rate: load.rate,
        warmup: load.warmup,
        duration: load.duration,
        messages: load.messages,
        tail_consumers,
        drain_consumers: 0,
        drain_repeat: false,
        client: load.client,
        drain_client: load.client,
    }
}

fn single_phase(brokers: &BrokerArgs, load: &LoadArgs, mode: &str, tail_consumers: usize) -> anyhow::Result<()> {
    let bench = setup(brokers, load)?;
    let result = bench.run_phase(&spec(mode, load, tail_consumers))?;
    finish(&bench, mode, &[result])
}

fn consume(brokers: &BrokerArgs, load: &LoadArgs) -> anyhow::Result<()> {
    let bench = setup(brokers, load)?;
    let ends = high_watermarks(brokers, &bench.meta, &load.topic, &bench.partitions)?;
    let present: i64 = ends.values().sum();
    let wanted = load.messages.unwrap_or(100_000);
    let mut results = Vec::new();
    if present < i64::try_from(wanted).unwrap_or(i64::MAX) {
        let mut preload = spec("preload", load, 0);
        preload.rate = None;
        preload.warmup = Duration::ZERO;
        preload.messages = Some(wanted);
        results.push(bench.run_phase(&preload)?);
    }
    let drain = PhaseSpec {
        producers: 0,
        drain_consumers: load.consumers,
        warmup: Duration::ZERO,
        ..spec(&format!("consume ({} client)", client_name(load.client)), load, 0)
    };
    results.push(bench.run_phase(&drain)?);
    finish(&bench, "consume", &results)
}

/// Prints every phase's table, then writes --json and --plot.
pub fn finish(bench: &Bench, mode: &str, results: &[PhaseResult]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "strand bench {mode}: {}\nbrokers {}\n", bench.load.describe(bench.partitions.len()), bench.brokers.brokers)?;
    for result in results {
        writeln!(out, "== {}\n{}", result.name, phase_table(result))?;
    }
    let phases: Vec<Value> = results.iter().map(phase_json).collect();
    write_outputs(bench, mode, json!({ "phases": phases }), results)
}

/// The JSON document (common fields + `body`) and the plot of every phase's latencies.
pub fn write_outputs(bench: &Bench, mode: &str, body: Value, results: &[PhaseResult]) -> anyhow::Result<()> {
    let load = &bench.load;
    if let Some(path) = &load.json {
        let mut doc = json!({
            "tool": "strand bench",
            "version": env!("CARGO_PKG_VERSION"),
            "mode": mode,
            "brokers": bench.brokers.brokers,
            "settings": {
                "description": load.describe(bench.partitions.len()),
                "topic": load.topic, "partitions": bench.partitions.len(), "message_size": load.message_size,
                "client": client_name(load.client),
                "producers": load.producers, "consumers": load.consumers, "acks": load.acks.config_value(),
                "compression": load.compression.config_value(), "batch_size": load.batch_size,
                "linger_ms": load.linger_ms, "keys": load.keys, "rate": load.rate,
                "duration_s": load.duration.as_secs_f64(), "messages": load.messages, "warmup_s": load.warmup.as_secs_f64(),
            },
        });
        if let (Some(doc), Value::Object(body)) = (doc.as_object_mut(), body) {
            doc.extend(body);
        }
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    }
    if let Some(path) = &load.plot {
        let palette = plot::palette();
        let mut series = Vec::new();
        for (i, r) in results.iter().enumerate() {
            let several = results.len() > 1;
            let name = |what: &str| if several { format!("{what} ({})", r.name) } else { what.to_owned() };
            if let Some(p) = r.produce.as_ref().filter(|p| !p.latency.total.is_empty()) {
                let color = if several { palette[(2 * i) % palette.len()] } else { PRODUCE_COLOR };
                series.push((name("produce ack"), color, &p.latency));
            }
            if let Some((e2e, _)) = r.e2e.as_ref().filter(|(e, _)| !e.total.is_empty()) {
                let color = if several { palette[(2 * i + 1) % palette.len()] } else { E2E_COLOR };
                series.push((name("end-to-end"), color, e2e));
            }
        }
        let series: Vec<Series<'_>> =
            series.iter().map(|(name, color, recorder)| Series { name, color: *color, recorder }).collect();
        plot::draw(path, &format!("strand bench {mode}: {}", bench.brokers.brokers), &series)?;
    }
    Ok(())
}
