//! The knobs of a bench run: topic shape, message shape, client settings, pacing, length,
//! and where the results go.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::cpu::Process;
use super::engine::{client_name, Client};
use crate::cli::produce::{Acks, Compression};
use crate::cli::time_text::parse_duration;

#[derive(Args, Debug, Clone)]
pub struct LoadArgs {
    /// Topic to use; created with --partitions when missing.
    #[arg(long, short = 't', default_value = "strand-bench")]
    pub topic: String,
    /// Partitions of the topic when it is created.
    #[arg(long, short = 'p', default_value_t = 6)]
    pub partitions: i32,
    /// Record value size in bytes (at least 16: the send time and run id).
    #[arg(long, short = 's', default_value_t = 1024)]
    pub message_size: usize,
    /// Producer clients (threads).
    #[arg(long, default_value_t = 1)]
    pub producers: usize,
    /// Consumer clients (threads), each assigned a share of the partitions.
    #[arg(long, default_value_t = 1)]
    pub consumers: usize,
    /// What the producers and consumers are: librdkafka, or `protocol`, the Kafka protocol
    /// spoken by the bench itself with librdkafka's batching and fetching (the same load on
    /// the broker at a fraction of the client CPU; no retries and no -X properties).
    #[arg(long, value_enum, default_value_t = Client::Librdkafka)]
    pub client: Client,
    #[arg(long, value_enum, default_value_t = Acks::All)]
    pub acks: Acks,
    /// Producer batch.size in bytes.
    #[arg(long, default_value_t = 131_072)]
    pub batch_size: usize,
    /// Producer linger.ms.
    #[arg(long, default_value_t = 1)]
    pub linger_ms: u64,
    #[arg(long, value_enum, default_value_t = Compression::None)]
    pub compression: Compression,
    /// Give records keys (key = sequence number mod 1024), spreading them by the key hash.
    #[arg(long)]
    pub keys: bool,
    /// Target rate in messages per second over all producers: open loop, each message has an
    /// intended send time and latency counts from it (coordinated omission corrected). Without
    /// it producers send as fast as they can and latency counts from the actual send.
    #[arg(long)]
    pub rate: Option<f64>,
    /// How long to measure (after warmup), e.g. 30s, 2m.
    #[arg(long, short = 'd', value_parser = parse_duration, default_value = "10s")]
    pub duration: Duration,
    /// Measure this many messages instead of a duration.
    #[arg(long, short = 'n')]
    pub messages: Option<u64>,
    /// A broker process on this machine whose CPU to report beside the load generator's,
    /// over the same measured window.
    #[arg(long)]
    pub broker_pid: Option<u32>,
    /// Run this long before measuring: connections, metadata, batch sizes and caches settle.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    pub warmup: Duration,
    /// Write figures and raw histograms as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Draw latency over time and the percentile distribution to FILE.png.
    #[arg(long, value_name = "FILE.png")]
    pub plot: Option<PathBuf>,
}

impl LoadArgs {
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.partitions >= 1, "--partitions must be at least 1");
        anyhow::ensure!(self.producers >= 1, "--producers must be at least 1");
        anyhow::ensure!(self.consumers >= 1, "--consumers must be at least 1");
        anyhow::ensure!(self.message_size >= 16, "--message-size must be at least 16 (the send time and run id)");
        if let Some(rate) = self.rate {
            anyhow::ensure!(rate > 0.0 && rate.is_finite(), "--rate must be a positive number of messages per second");
        }
        anyhow::ensure!(self.messages != Some(0), "--messages must be at least 1");
        if let Some(pid) = self.broker_pid {
            anyhow::ensure!(Process::Pid(pid).cpu().is_some(), "--broker-pid {pid}: no such process whose CPU time this user may read");
        }
        Ok(())
    }

    /// librdkafka producer settings for this run. The client's queue keeps librdkafka's
    /// defaults: at max rate, produce latency includes the time a record waits in it.
    pub fn producer_config(&self) -> Vec<(&'static str, String)> {
        vec![
            ("acks", self.acks.config_value().to_owned()),
            ("compression.type", self.compression.config_value().to_owned()),
            ("batch.size", self.batch_size.to_string()),
            ("linger.ms", self.linger_ms.to_string()),
            ("enable.idempotence", "false".to_owned()),
            ("message.timeout.ms", "60000".to_owned()),
        ]
    }

    /// A one-line description for reports, with the topic's actual partition count.
    pub fn describe(&self, partitions: usize) -> String {
        let rate = self.rate.map_or("max rate".to_owned(), |r| format!("{r} msg/s target (open loop)"));
        let length = self.messages.map_or(format!("{:?}", self.duration), |n| format!("{n} messages"));
        format!(
            "topic {} ({} partitions), {} B messages, {} client, {} producer(s), {} consumer(s), acks={}, compression={}, \
             batch.size={}, linger.ms={}, keys={}, {rate}, {length} after {:?} warmup",
            self.topic,
            partitions,
            self.message_size,
            client_name(self.client),
            self.producers,
            self.consumers,
            self.acks.config_value(),
            self.compression.config_value(),
            self.batch_size,
            self.linger_ms,
            if self.keys { "on" } else { "off" },
            self.warmup,
        )
    }
}
