//! `strand produce TOPIC`: one record per line of stdin, with optional keys (split at
//! `--key-separator`) and headers, through librdkafka's producer.

use std::io::{BufRead, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use clap::{Args, ValueEnum};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;

use super::brokers::BrokerArgs;
use super::kafka_error::{explain, explain_code};
use super::topic::key_value;

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    echo hello | strand produce orders\n  \
    printf 'k1:v1\\nk2:v2\\n' | strand produce orders --key-separator : -H origin=cli\n  \
    strand produce orders --acks 1 --compression zstd -p 0 < lines.txt")]
pub struct ProduceArgs {
    #[command(flatten)]
    pub brokers: BrokerArgs,
    pub topic: String,
    /// Split each line at the first SEP into key and value.
    #[arg(long, short = 'K', value_name = "SEP")]
    pub key_separator: Option<String>,
    /// Header KEY=VALUE added to every record; repeatable.
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE", value_parser = key_value)]
    pub headers: Vec<(String, String)>,
    /// Acknowledgements to wait for: 0, 1 or all.
    #[arg(long, value_enum, default_value_t = Acks::All)]
    pub acks: Acks,
    #[arg(long, value_enum, default_value_t = Compression::None)]
    pub compression: Compression,
    /// Partition for every record; by default the client's partitioner picks (by key).
    #[arg(short = 'p', long)]
    pub partition: Option<i32>,
}

/// Kafka's acks values.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    #[value(name = "0")]
    None,
    #[value(name = "1")]
    Leader,
    #[value(name = "all", alias = "-1")]
    All,
}

impl Acks {
    pub fn config_value(self) -> &'static str {
        match self {
            Self::None => "0",
            Self::Leader => "1",
            Self::All => "all",
        }
    }
}

/// Kafka's compression.type values.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    pub fn config_value(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        }
    }
}

/// Counts delivery reports; keeps the first failure's error.
#[derive(Default)]
struct Deliveries {
    delivered: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<RDKafkaErrorCode>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((error, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let code = error.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail);
                if let Ok(mut first) = self.first_error.lock() {
                    first.get_or_insert(code);
                }
            }
        }
    }
}

/// A line of input as key and value.
fn split_line<'a>(line: &'a [u8], separator: Option<&[u8]>) -> (Option<&'a [u8]>, &'a [u8]) {
    let Some(sep) = separator.filter(|s| !s.is_empty()) else { return (None, line) };
    match line.windows(sep.len()).position(|w| w == sep) {
        Some(at) => (Some(&line[..at]), &line[at + sep.len()..]),
        None => (None, line),
    }
}

fn trim_newline(mut line: &[u8]) -> &[u8] {
    if let Some(rest) = line.strip_suffix(b"\n") {
        line = rest;
    }
    line.strip_suffix(b"\r").unwrap_or(line)
}

pub fn run(args: &ProduceArgs) -> anyhow::Result<()> {
    args.brokers.probe()?;
    let config = args.brokers.client_config_with(&[
        ("acks", args.acks.config_value().to_owned()),
        ("compression.type", args.compression.config_value().to_owned()),
        ("linger.ms", "5".to_owned()),
        ("message.timeout.ms", "30000".to_owned()),
        ("enable.idempotence", "false".to_owned()),
    ])?;
    let producer: BaseProducer<Deliveries> = config
        .create_with_context(Deliveries::default())
        .map_err(|e| anyhow::anyhow!("creating the producer: {e}"))?;
    let mut headers = OwnedHeaders::new();
    for (key, value) in &args.headers {
        headers = headers.insert(Header { key, value: Some(value) });
    }
    let separator = args.key_separator.as_deref().map(str::as_bytes);
    let mut input = std::io::stdin().lock();
    let mut line = Vec::new();
    let mut sent = 0u64;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let (key, value) = split_line(trim_newline(&line), separator);
        let mut record = BaseRecord::to(&args.topic).payload(value).headers(headers.clone());
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(partition) = args.partition {
            record = record.partition(partition);
        }
        send(&producer, record, &args.topic)?;
        sent += 1;
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(60)).map_err(|e| explain(&format!("produce {}", args.topic), &e))?;
    report(&producer, &args.topic, sent)
}

/// Sends one record, waiting while the client's queue is full.
fn send<'a>(producer: &BaseProducer<Deliveries>, mut record: BaseRecord<'a, [u8], [u8]>, topic: &str) -> anyhow::Result<()> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                producer.poll(Duration::from_millis(50));
            }
            Err((e, _)) => return Err(explain(&format!("produce {topic}"), &e)),
        }
    }
}

fn report(producer: &BaseProducer<Deliveries>, topic: &str, sent: u64) -> anyhow::Result<()> {
    let deliveries = producer.context();
    let failed = deliveries.failed.load(Ordering::Relaxed);
    if failed > 0 {
        let code = deliveries.first_error.lock().ok().and_then(|first| *first).unwrap_or(RDKafkaErrorCode::Fail);
        let failure = explain_code(&format!("produce {topic}"), code);
        anyhow::bail!("{failure} ({failed} of {sent} records not delivered)");
    }
    writeln!(std::io::stderr(), "produced {sent} records to {topic}")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_at_the_first_separator_only() {
        assert_eq!(split_line(b"k:v:w", Some(b":")), (Some(&b"k"[..]), &b"v:w"[..]));
        assert_eq!(split_line(b"no-key", Some(b":")), (None, &b"no-key"[..]));
        assert_eq!(split_line(b"k::v", Some(b"::")), (Some(&b"k"[..]), &b"v"[..]));
        assert_eq!(split_line(b"k:v", None), (None, &b"k:v"[..]));
    }

    #[test]
    fn line_endings_are_trimmed() {
        assert_eq!(trim_newline(b"a\r\n"), b"a");
        assert_eq!(trim_newline(b"a\n"), b"a");
        assert_eq!(trim_newline(b"a"), b"a");
    }
}
