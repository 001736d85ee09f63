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
use super::engine::{client_name, Client, PhaseSpec};
use super::phase_result::PhaseResult;
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
    /// Baseline and catch-up phases alternate this many times, each --duration long; the
    /// summary merges the rounds of each kind. On a shared disk whose speed drifts over tens
    /// of seconds, several short rounds put the slow stretches on both sides.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: u32,
    /// What drains the backlog (whatever `--client` is). `protocol` sends librdkafka's Fetch
    /// requests but only counts the records: with the load generator on one core, the tailing
    /// clients then do not share it with a librdkafka consumer's work (the catch-up consumer is
    /// usually elsewhere).
    #[arg(long, value_enum, default_value_t = Client::Librdkafka)]
    pub catch_up_client: Client,
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
    let several = args.rounds > 1;
    let mut pairs = Vec::new();
    for round in 1..=args.rounds {
        let name = |kind: &str| if several { format!("{kind} {round}") } else { kind.to_owned() };
        let baseline = bench.run_phase(&spec(&name("baseline"), &load, load.consumers))?;
        let during = PhaseSpec {
            drain_consumers: args.catch_up_consumers.max(1),
            drain_repeat: true,
            drain_client: args.catch_up_client,
            ..spec(&name("catch-up"), &load, load.consumers)
        };
        let during = bench.run_phase(&during)?;
        pairs.push((baseline, during));
    }

    let mut out = std::io::stdout().lock();
    let drainer = client_name(args.catch_up_client);
    writeln!(
        out,
        "strand bench scenario catch-up: {}\nbacklog {} MiB ({wanted} messages), catch-up client: {drainer}\n",
        load.describe(bench.partitions.len()),
        args.backlog_mb
    )?;
    for result in results.iter().chain(pairs.iter().flat_map(|(base, during)| [base, during])) {
        writeln!(out, "== {}\n{}", result.name, phase_table(result))?;
    }
    let base = PhaseResult::joined("baseline", &pairs.iter().map(|(base, _)| base).collect::<Vec<_>>());
    let during = PhaseResult::joined("catch-up", &pairs.iter().map(|(_, during)| during).collect::<Vec<_>>());
    let summary = catch_up_summary(&base, &during);
    let rounds = rounds_figures(&pairs);
    if several {
        writeln!(out, "== rounds (p99, ms: baseline -> during catch-up)\n{}", rounds.0)?;
        writeln!(out, "== summary ({} rounds merged)\n{}", args.rounds, summary.0)?;
    } else {
        writeln!(out, "== summary\n{}", summary.0)?;
    }
    results.extend(pairs.into_iter().flat_map(|(base, during)| [base, during]));
    let phases: Vec<Value> = results.iter().map(phase_json).collect();
    let body = json!({ "phases": phases, "summary": summary.1, "backlog_mb": args.backlog_mb, "rounds": args.rounds, "rounds_p99": rounds.1, "catch_up_client": drainer });
    write_outputs(&bench, "scenario catch-up", body, &[base, during])
}

/// Each round's tailing and produce p99, baseline beside catch-up, as a table and as JSON: how
/// much the rounds differ.
fn rounds_figures(pairs: &[(PhaseResult, PhaseResult)]) -> (String, Value) {
    let tail = |r: &PhaseResult| r.e2e.as_ref().map(|(l, _)| Percentiles::of(&l.total).p99).unwrap_or_default();
    let produce = |r: &PhaseResult| r.produce.as_ref().map(|p| Percentiles::of(&p.latency.total).p99).unwrap_or_default();
    let mut table = Table::new(&["ROUND", "TAILING E2E P99", "RISE", "PRODUCE P99", "RISE"]);
    let mut rounds = Vec::new();
    for (i, (base, during)) in pairs.iter().enumerate() {
        let (tail_base, tail_during, produce_base, produce_during) = (tail(base), tail(during), produce(base), produce(during));
        table.row(vec![
            (i + 1).to_string(),
            format!("{} -> {}", ms(tail_base), ms(tail_during)),
            rise(tail_base, tail_during),
            format!("{} -> {}", ms(produce_base), ms(produce_during)),
            rise(produce_base, produce_during),
        ]);
        rounds.push(json!({
            "tailing_e2e_p99_us": { "baseline": tail_base, "during_catch_up": tail_during },
            "produce_p99_us": { "baseline": produce_base, "during_catch_up": produce_during },
        }));
    }
    (table.render(), Value::Array(rounds))
}

fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

/// How many times the baseline figure the figure during catch-up is.
fn rise(base: u64, during: u64) -> String {
    format!("{:.2}x", during as f64 / base.max(1) as f64)
}

/// The with/without comparison as a table and as JSON.
fn catch_up_summary(base: &PhaseResult, during: &PhaseResult) -> (String, Value) {
    let tail = |r: &PhaseResult| r.e2e.as_ref().map(|(l, _)| Percentiles::of(&l.total)).unwrap_or_default();
    let produce = |r: &PhaseResult| r.produce.as_ref().map(|p| Percentiles::of(&p.latency.total)).unwrap_or_default();
    let mut table = Table::new(&["(ms)", "BASELINE", "DURING CATCH-UP", "RISE"]);
    let mut row = |what: &str, base: u64, during: u64| table.row(vec![what.into(), ms(base), ms(during), rise(base, during)]);
    let (tail_base, tail_during, produce_base, produce_during) = (tail(base), tail(during), produce(base), produce(during));
    row("tailing e2e p50", tail_base.p50, tail_during.p50);
    row("tailing e2e p99", tail_base.p99, tail_during.p99);
    row("tailing e2e p99.9", tail_base.p99_9, tail_during.p99_9);
    row("produce p99", produce_base.p99, produce_during.p99);
    row("produce p99.9", produce_base.p99_9, produce_during.p99_9);
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
        "tailing_e2e_us": { "baseline": tail_base, "during_catch_up": tail_during },
        "produce_us": { "baseline": produce_base, "during_catch_up": produce_during },
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
