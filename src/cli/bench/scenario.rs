//! Preset experiments.
//!
//! `catch-up`: fill a backlog much larger than the broker's tail cache; run a producer and a
//! tailing consumer at a fixed rate (baseline); then the same while a catch-up consumer drains
//! the backlog from offset 0, starting over whenever it reaches the end, so catch-up reads go
//! on for the whole measurement. Reports tailing end-to-end p99 and produce p99 with and
//! without the catch-up consumer, and the drain rate: whether catch-up reads disturb tailing
//! reads.
//!
//! `fixed-rate`: end-to-end latency at a ladder of fixed rates, one phase per rate.

use std::io::Write as _;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::command::{setup, spec, write_outputs};
use super::engine::{PhaseResult, PhaseSpec};
use super::latency::Percentiles;
use super::load_args::LoadArgs;
use super::report::{phase_json, phase_table};
use super::topic_setup::high_watermarks;
use crate::cli::brokers::BrokerArgs;
use crate::cli::table::Table;

#[derive(Subcommand, Debug)]
pub enum ScenarioCommand {
    /// Tailing latency with and without a consumer draining a large backlog.
    #[command(after_help = "Examples:\n  strand bench scenario catch-up\n  \
        strand bench scenario catch-up --backlog-mb 2048 --rate 5000 --duration 30s --plot catch-up.png")]
    CatchUp(CatchUpArgs),
    /// End-to-end latency at each of several fixed rates.
    #[command(after_help = "Examples:\n  strand bench scenario fixed-rate\n  \
        strand bench scenario fixed-rate --rates 1000,10000,50000 --duration 20s --json ladder.json")]
    FixedRate(FixedRateArgs),
}

#[derive(Args, Debug)]
pub struct CatchUpArgs {
    #[command(flatten)]
    pub load: LoadArgs,
    /// Backlog to build before measuring, in MiB: much larger than the broker's tail cache
    /// (strand: shard.tail.cache.bytes, 64 MiB per shard by default).
    #[arg(long, default_value_t = 512)]
    pub backlog_mb: u64,
    /// Consumers draining the backlog.
    #[arg(long, default_value_t = 1)]
    pub catch_up_consumers: usize,
}

#[derive(Args, Debug)]
pub struct FixedRateArgs {
    #[command(flatten)]
    pub load: LoadArgs,
    /// Rates to run, messages per second, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,5000,20000")]
    pub rates: Vec<f64>,
}

pub fn run(brokers: &BrokerArgs, command: &ScenarioCommand) -> anyhow::Result<()> {
    match command {
        ScenarioCommand::CatchUp(args) => catch_up(brokers, args),
        ScenarioCommand::FixedRate(args) => fixed_rate(brokers, args),
    }
}

/// The catch-up scenario's fixed rate when `--rate` is not given.
const CATCH_UP_RATE: f64 = 2000.0;

fn catch_up(brokers: &BrokerArgs, args: &CatchUpArgs) -> anyhow::Result<()> {
    let mut load = args.load.clone();
    load.rate = Some(load.rate.unwrap_or(CATCH_UP_RATE));
    load.messages = None;
    let bench = setup(brokers, &load)?;
    let mut results = Vec::new();

    let present: i64 = high_watermarks(brokers, &bench.meta, &load.topic, &bench.partitions)?.values().sum();
    let wanted = (args.backlog_mb << 20) / load.message_size as u64;
    let missing = wanted.saturating_sub(u64::try_from(present).unwrap_or(0));
    if missing > 0 {
        let fill = PhaseSpec { rate: None, warmup: Duration::ZERO, messages: Some(missing), ..spec("fill", &load, 0) };
        results.push(bench.run_phase(&fill)?);
    }
    let baseline = spec("baseline", &load, load.consumers);
    results.push(bench.run_phase(&baseline)?);
    let during =
        PhaseSpec { drain_consumers: args.catch_up_consumers.max(1), drain_repeat: true, ..spec("catch-up", &load, load.consumers) };
    results.push(bench.run_phase(&during)?);

    let mut out = std::io::stdout().lock();
    writeln!(out, "strand bench scenario catch-up: {}\nbacklog {} MiB ({wanted} messages)\n", load.describe(bench.partitions.len()), args.backlog_mb)?;
    for result in &results {
        writeln!(out, "== {}\n{}", result.name, phase_table(result))?;
    }
    let [.., base, during] = &results[..] else { unreachable!("two phases ran") };
    let summary = catch_up_summary(base, during);
    writeln!(out, "== summary\n{}", summary.0)?;
    let phases: Vec<Value> = results.iter().map(phase_json).collect();
    let body = json!({ "phases": phases, "summary": summary.1, "backlog_mb": args.backlog_mb });
    write_outputs(&bench, "scenario catch-up", body, &results[results.len() - 2..])
}

/// The with/without comparison as a table and as JSON.
fn catch_up_summary(base: &PhaseResult, during: &PhaseResult) -> (String, Value) {
    let tail = |r: &PhaseResult| r.e2e.as_ref().map(|(l, _)| Percentiles::of(&l.total)).unwrap_or_default();
    let produce = |r: &PhaseResult| r.produce.as_ref().map(|p| Percentiles::of(&p.latency.total)).unwrap_or_default();
    let ms = |us: u64| format!("{:.3}", us as f64 / 1000.0);
    let mut table = Table::new(&["(ms)", "BASELINE", "DURING CATCH-UP"]);
    table.row(vec!["tailing e2e p50".into(), ms(tail(base).p50), ms(tail(during).p50)]);
    table.row(vec!["tailing e2e p99".into(), ms(tail(base).p99), ms(tail(during).p99)]);
    table.row(vec!["tailing e2e p99.9".into(), ms(tail(base).p99_9), ms(tail(during).p99_9)]);
    table.row(vec!["produce p99".into(), ms(produce(base).p99), ms(produce(during).p99)]);
    table.row(vec!["produce p99.9".into(), ms(produce(base).p99_9), ms(produce(during).p99_9)]);
    let mut text = table.render();
    let mut drain_json = Value::Null;
    if let Some(d) = &during.drain {
        let mbps = d.bytes as f64 / (1024.0 * 1024.0) / d.seconds.max(f64::MIN_POSITIVE);
        let mps = d.measured as f64 / d.seconds.max(f64::MIN_POSITIVE);
        text.push_str(&format!(
            "\ncatch-up drain: {} messages, {:.1} MiB in {:.2} s = {mbps:.1} MiB/s ({mps:.0} msg/s), {} complete passes over the backlog\n",
            d.measured,
            d.bytes as f64 / (1024.0 * 1024.0),
            d.seconds,
            d.passes,
        ));
        drain_json = json!({ "messages": d.measured, "bytes": d.bytes, "seconds": d.seconds, "mb_per_second": mbps, "messages_per_second": mps, "passes": d.passes });
    }
    let json = json!({
        "tailing_e2e_us": { "baseline": tail(base), "during_catch_up": tail(during) },
        "produce_us": { "baseline": produce(base), "during_catch_up": produce(during) },
        "drain": drain_json,
    });
    (text, json)
}

fn fixed_rate(brokers: &BrokerArgs, args: &FixedRateArgs) -> anyhow::Result<()> {
    anyhow::ensure!(!args.rates.is_empty() && args.rates.iter().all(|r| *r > 0.0), "--rates takes positive rates");
    let mut load = args.load.clone();
    load.messages = None;
    load.rate = args.rates.first().copied();
    let bench = setup(brokers, &load)?;
    let mut results = Vec::new();
    for rate in &args.rates {
        let step = PhaseSpec { rate: Some(*rate), ..spec(&format!("{rate} msg/s"), &load, load.consumers) };
        results.push(bench.run_phase(&step)?);
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "strand bench scenario fixed-rate: {}\n", load.describe(bench.partitions.len()))?;
    for result in &results {
        writeln!(out, "== {}\n{}", result.name, phase_table(result))?;
    }
    let mut table = Table::new(&["RATE (msg/s)", "E2E P50", "E2E P99", "E2E P99.9", "E2E MAX", "PRODUCE P99"]);
    let ms = |us: u64| format!("{:.3}", us as f64 / 1000.0);
    for (rate, r) in args.rates.iter().zip(&results) {
        let e2e = r.e2e.as_ref().map(|(l, _)| Percentiles::of(&l.total)).unwrap_or_default();
        let produce = r.produce.as_ref().map(|p| Percentiles::of(&p.latency.total)).unwrap_or_default();
        table.row(vec![format!("{rate}"), ms(e2e.p50), ms(e2e.p99), ms(e2e.p99_9), ms(e2e.max), ms(produce.p99)]);
    }
    writeln!(out, "== summary (ms)\n{}", table.render())?;
    let phases: Vec<Value> = results.iter().map(phase_json).collect();
    write_outputs(&bench, "scenario fixed-rate", json!({ "phases": phases, "rates": args.rates }), &results)
}
