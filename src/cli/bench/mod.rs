//! `strand bench`: throughput and latency of any Kafka-compatible broker, measured with
//! librdkafka producers and consumers (the client most people run) on plain threads, or with
//! `--client protocol` the bench's own protocol clients (raw_produce/, raw_drain.rs), which
//! load the broker the same way at a fraction of the client CPU.
//!
//! Latency is recorded in HDR histograms from each record's intended send time: with `--rate`
//! the schedule is open loop, so a stalled broker delays every later send and that delay
//! counts (coordinated omission corrected). End-to-end latency uses the send time embedded in
//! the payload and the same monotonic clock on receipt.

mod command;
mod consumers;
mod cpu;
mod engine;
mod latency;
mod load_args;
mod payload;
mod phase_result;
mod plot;
mod producers;
mod progress;
mod raw_drain;
mod raw_produce;
mod report;
mod scenario;
mod topic_setup;

pub use command::{run, BenchArgs};
