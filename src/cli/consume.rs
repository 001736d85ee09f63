//! `strand consume TOPIC`: read records and print them with a `--format` template or as JSON
//! lines; either assigned every partition (no group, nothing committed) or as a member of
//! `--group`. Stops after `-n COUNT`, at the end of every partition with `-e`, or on Ctrl-C.

use std::collections::BTreeSet;
use std::io::{BufWriter, IsTerminal as _, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use kafka_protocol::messages::ApiKey;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::TopicPartitionList;

use super::broker_apis::BrokerApis;
use super::brokers::BrokerArgs;
use super::kafka_error::explain;
use super::offset_spec::StartFrom;
use super::record_format::{to_json, RecordView, Template};
use super::topic::topic_partitions;

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    strand consume orders --from beginning -e\n  \
    strand consume orders -n 10 --format '%p/%o %k=%v [%h]\\n'\n  \
    strand consume orders --from 2024-05-01T12:00:00Z --json\n  \
    strand consume orders --group billing\n\n\
    --from: beginning, end, an offset N, -N (N before the end), @EPOCH_MS or an RFC 3339 time.\n\
    --format placeholders (kcat's): %k key, %v or %s value, %h headers, %p partition, %o offset,\n  \
    %t topic, %T timestamp (ms), %K / %S key / value length, %% percent; \\n \\t escapes.")]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub brokers: BrokerArgs,
    pub topic: String,
    /// Where to start; with --group, only for partitions without a committed offset
    /// (beginning or end).
    #[arg(long, short = 'o', default_value = "beginning", allow_hyphen_values = true)]
    pub from: StartFrom,
    /// Consume as a member of this consumer group (subscribe; offsets are committed).
    #[arg(long, short = 'g')]
    pub group: Option<String>,
    /// Only these partitions (without --group); repeatable.
    #[arg(long, short = 'p')]
    pub partition: Vec<i32>,
    /// Exit after COUNT records.
    #[arg(short = 'n', long)]
    pub count: Option<u64>,
    /// Exit once every partition is read to its end.
    #[arg(short = 'e', long)]
    pub exit_at_end: bool,
    /// Output template, e.g. '%k\t%v\n' (default: the value and a newline).
    #[arg(long, short = 'f')]
    pub format: Option<Template>,
    /// One JSON object per line: topic, partition, offset, timestamp, key, value, headers.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
}

/// The group.id librdkafka requires for assign(); never joined, never committed to.
pub const ASSIGN_GROUP_ID: &str = "strand-cli-assign";

pub fn run(args: &ConsumeArgs) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))?;
    }
    let consumer = match &args.group {
        Some(group) => subscribe(args, group)?,
        None => assign(args)?,
    };
    let template = args.format.clone().unwrap_or_default();
    let mut out = Output { writer: BufWriter::new(std::io::stdout().lock()), interactive: std::io::stdout().is_terminal() };
    let mut consumed = 0u64;
    let mut at_end: BTreeSet<i32> = BTreeSet::new();
    let mut buffer = Vec::new();
    while !stop.load(Ordering::Relaxed) && args.count.is_none_or(|n| consumed < n) {
        match consumer.poll(Duration::from_millis(200)) {
            None => out.flush()?,
            Some(Ok(message)) => {
                at_end.remove(&message.partition());
                buffer.clear();
                render(&message, args.json, &template, &mut buffer);
                if !out.write(&buffer)? {
                    return Ok(()); // the reader went away (| head)
                }
                if args.group.is_some() {
                    // Only what was printed is committed (auto commit of stored offsets).
                    consumer.store_offset_from_message(&message).map_err(|e| explain("storing the offset", &e))?;
                }
                consumed += 1;
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                at_end.insert(partition);
                if args.exit_at_end && all_at_end(&consumer, &at_end)? {
                    break;
                }
            }
            Some(Err(e)) => {
                let failure = explain(&format!("consume {}", args.topic), &e);
                if matches!(e, KafkaError::MessageConsumptionFatal(_)) {
                    return Err(failure);
                }
                eprintln!("strand: {failure}");
            }
        }
    }
    out.flush()?;
    if std::io::stderr().is_terminal() {
        eprintln!("consumed {consumed} records");
    }
    Ok(())
}

/// True when every assigned partition has reported its end since its last record.
fn all_at_end(consumer: &BaseConsumer, at_end: &BTreeSet<i32>) -> anyhow::Result<bool> {
    let assignment = consumer.assignment().map_err(|e| explain("assignment", &e))?;
    let elements = assignment.elements();
    Ok(!elements.is_empty() && elements.iter().all(|e| at_end.contains(&e.partition())))
}

/// Every (or each `-p`) partition assigned at the `--from` offsets; no group involved.
fn assign(args: &ConsumeArgs) -> anyhow::Result<BaseConsumer> {
    let b = &args.brokers;
    // librdkafka's assign() wants a group.id, though nothing is committed or joined.
    let config = b.client_config_with(&[
        ("group.id", ASSIGN_GROUP_ID.to_owned()),
        ("enable.auto.commit", "false".to_owned()),
        ("enable.auto.offset.store", "false".to_owned()),
        ("enable.partition.eof", args.exit_at_end.to_string()),
        ("auto.offset.reset", "earliest".to_owned()),
        ("allow.auto.create.topics", "false".to_owned()),
    ])?;
    b.probe()?;
    let consumer: BaseConsumer = config.create().map_err(|e| anyhow::anyhow!("creating the consumer: {e}"))?;
    let mut partitions: Vec<i32> = topic_partitions(&consumer, b, &args.topic)?.iter().map(|p| p.id).collect();
    if !args.partition.is_empty() {
        if let Some(missing) = args.partition.iter().find(|p| !partitions.contains(p)) {
            anyhow::bail!("consume {}: partition {missing} does not exist ({} partitions)", args.topic, partitions.len());
        }
        partitions.retain(|p| args.partition.contains(p));
    }
    let offsets = args.from.resolve(&consumer, &args.topic, &partitions, b.timeout)?;
    let mut list = TopicPartitionList::new();
    for (partition, offset) in offsets {
        list.add_partition_offset(&args.topic, partition, offset).map_err(|e| explain("assign", &e))?;
    }
    consumer.assign(&list).map_err(|e| explain(&format!("consume {}", args.topic), &e))?;
    Ok(consumer)
}

/// A group member subscribed to the topic; committed offsets win over `--from`.
fn subscribe(args: &ConsumeArgs, group: &str) -> anyhow::Result<BaseConsumer> {
    let reset = match args.from {
        StartFrom::Beginning => "earliest",
        StartFrom::End => "latest",
        other => anyhow::bail!("with --group, --from is beginning or end (for partitions without a committed offset), not {other:?}"),
    };
    if !args.partition.is_empty() {
        anyhow::bail!("-p selects partitions without a group; with --group the coordinator assigns them");
    }
    let b = &args.brokers;
    let needed = [ApiKey::FindCoordinator, ApiKey::JoinGroup, ApiKey::SyncGroup, ApiKey::Heartbeat, ApiKey::OffsetFetch, ApiKey::OffsetCommit];
    BrokerApis::fetch(b)?.require(&format!("consume {} --group {group}", args.topic), &needed)?;
    let config = b.client_config_with(&[
        ("group.id", group.to_owned()),
        ("enable.auto.commit", "true".to_owned()),
        ("enable.auto.offset.store", "false".to_owned()),
        ("enable.partition.eof", args.exit_at_end.to_string()),
        ("auto.offset.reset", reset.to_owned()),
    ])?;
    b.probe()?;
    let consumer: BaseConsumer = config.create().map_err(|e| anyhow::anyhow!("creating the consumer: {e}"))?;
    topic_partitions(&consumer, b, &args.topic)?;
    consumer.subscribe(&[&args.topic]).map_err(|e| explain(&format!("consume {} --group {group}", args.topic), &e))?;
    Ok(consumer)
}

fn render(message: &BorrowedMessage<'_>, json: bool, template: &Template, buffer: &mut Vec<u8>) {
    let headers = message
        .headers()
        .map(|h| h.iter().map(|header| (header.key, header.value)).collect())
        .unwrap_or_default();
    let record = RecordView {
        topic: message.topic(),
        partition: message.partition(),
        offset: message.offset(),
        timestamp: message.timestamp().to_millis(),
        key: message.key(),
        value: message.payload(),
        headers,
    };
    if json {
        buffer.extend_from_slice(to_json(&record).to_string().as_bytes());
        buffer.push(b'\n');
    } else {
        template.render(&record, buffer);
    }
}

/// Buffered stdout that tells a closed pipe apart from other write errors.
struct Output<W: Write> {
    writer: W,
    interactive: bool,
}

impl<W: Write> Output<W> {
    /// False when the reader has gone away.
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<bool> {
        let result = self.writer.write_all(bytes).and_then(|()| if self.interactive { self.writer.flush() } else { Ok(()) });
        match result {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
            other => other.map(|()| true),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.writer.flush() {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            other => other,
        }
    }
}
