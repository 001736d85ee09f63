//! `strand topic ...`: create, list, describe, alter-config, add-partitions, delete, through
//! the Kafka admin APIs (CreateTopics, Metadata, ListOffsets, DescribeConfigs, AlterConfigs,
//! CreatePartitions, DeleteTopics).

use std::io::Write as _;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use futures_lite::future::block_on;
use rdkafka::admin::{AlterConfig, NewPartitions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::metadata::MetadataTopic;

use super::brokers::BrokerArgs;
use super::kafka_error::{explain, explain_code};
use super::table::Table;

#[derive(Args, Debug)]
pub struct TopicArgs {
    #[command(flatten)]
    pub brokers: BrokerArgs,
    #[command(subcommand)]
    pub command: TopicCommand,
}

#[derive(Subcommand, Debug)]
pub enum TopicCommand {
    /// Create a topic.
    #[command(after_help = "Examples:\n  strand topic create orders -p 6\n  \
        strand topic create audit -p 3 -c retention.ms=86400000 -c cleanup.policy=compact")]
    Create {
        name: String,
        /// Partitions; the broker's num.partitions when left out.
        #[arg(short = 'p', long)]
        partitions: Option<i32>,
        /// Replication factor; the broker's default when left out.
        #[arg(short = 'r', long)]
        replication_factor: Option<i32>,
        /// Topic config, KEY=VALUE; repeatable.
        #[arg(short = 'c', long = "config", value_name = "KEY=VALUE", value_parser = key_value)]
        configs: Vec<(String, String)>,
    },
    /// List topics with their partition counts.
    #[command(after_help = "Example:\n  strand topic list")]
    List {
        /// Also list internal topics (__consumer_offsets).
        #[arg(long)]
        internal: bool,
    },
    /// Partitions, leaders, log start offsets and high watermarks, and configs.
    #[command(after_help = "Example:\n  strand topic describe orders")]
    Describe { name: String },
    /// Set topic configs (AlterConfigs).
    #[command(after_help = "Example:\n  strand topic alter-config orders -c retention.ms=3600000")]
    AlterConfig {
        name: String,
        /// KEY=VALUE; repeatable.
        #[arg(short = 'c', long = "config", value_name = "KEY=VALUE", value_parser = key_value, required = true)]
        configs: Vec<(String, String)>,
    },
    /// Grow a topic to TOTAL partitions (CreatePartitions).
    #[command(after_help = "Example:\n  strand topic add-partitions orders -n 12")]
    AddPartitions {
        name: String,
        /// The new total number of partitions.
        #[arg(short = 'n', long = "total")]
        total: usize,
    },
    /// Delete topics.
    #[command(after_help = "Example:\n  strand topic delete orders")]
    Delete {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// "KEY=VALUE" -> (KEY, VALUE).
pub fn key_value(text: &str) -> Result<(String, String), String> {
    let (key, value) = text.split_once('=').ok_or_else(|| format!("'{text}' is not KEY=VALUE"))?;
    if key.trim().is_empty() {
        return Err(format!("'{text}' has an empty key"));
    }
    Ok((key.trim().to_owned(), value.to_owned()))
}

pub fn run(args: &TopicArgs) -> anyhow::Result<()> {
    let b = &args.brokers;
    match &args.command {
        TopicCommand::Create { name, partitions, replication_factor, configs } => {
            create(b, name, partitions.unwrap_or(-1), replication_factor.unwrap_or(-1), configs)
        }
        TopicCommand::List { internal } => list(b, *internal),
        TopicCommand::Describe { name } => describe(b, name),
        TopicCommand::AlterConfig { name, configs } => alter_config(b, name, configs),
        TopicCommand::AddPartitions { name, total } => add_partitions(b, name, *total),
        TopicCommand::Delete { names } => delete(b, names),
    }
}

fn create(b: &BrokerArgs, name: &str, partitions: i32, replication: i32, configs: &[(String, String)]) -> anyhow::Result<()> {
    let admin = b.admin()?;
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(replication));
    for (key, value) in configs {
        topic = topic.set(key, value);
    }
    let context = format!("topic create {name} (CreateTopics)");
    let results = block_on(admin.create_topics([&topic], &b.admin_options())).map_err(|e| explain(&context, &e))?;
    for result in results {
        result.map_err(|(_, code)| explain_code(&context, code))?;
    }
    writeln!(std::io::stdout(), "created topic {name}")?;
    Ok(())
}

fn list(b: &BrokerArgs, internal: bool) -> anyhow::Result<()> {
    let consumer = b.consumer(None)?;
    let metadata = consumer.fetch_metadata(None, b.timeout).map_err(|e| explain("topic list", &e))?;
    let mut topics: Vec<&MetadataTopic> =
        metadata.topics().iter().filter(|t| internal || !t.name().starts_with("__")).collect();
    topics.sort_by_key(|t| t.name());
    let mut table = Table::new(&["TOPIC", "PARTITIONS"]);
    for t in topics {
        table.row(vec![t.name().to_owned(), t.partitions().len().to_string()]);
    }
    write!(std::io::stdout(), "{}", table.render())?;
    Ok(())
}

/// The metadata of one topic, or the broker's error for it.
pub fn topic_partitions(consumer: &BaseConsumer, b: &BrokerArgs, name: &str) -> anyhow::Result<Vec<PartitionInfo>> {
    let context = format!("topic {name}");
    let metadata = consumer.fetch_metadata(Some(name), b.timeout).map_err(|e| explain(&context, &e))?;
    let topic = metadata.topics().iter().find(|t| t.name() == name);
    let topic = topic.with_context(|| format!("{context}: not in the broker's Metadata answer"))?;
    if let Some(error) = topic.error() {
        return Err(explain_code(&context, error.into()));
    }
    let mut partitions: Vec<PartitionInfo> = topic
        .partitions()
        .iter()
        .map(|p| PartitionInfo { id: p.id(), leader: p.leader(), replicas: p.replicas().to_vec(), isr: p.isr().to_vec() })
        .collect();
    partitions.sort_by_key(|p| p.id);
    Ok(partitions)
}

/// One partition as Metadata describes it.
#[derive(Debug, Clone)]
pub struct PartitionInfo {
    pub id: i32,
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

fn ids(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

fn describe(b: &BrokerArgs, name: &str) -> anyhow::Result<()> {
    let consumer = b.consumer(None)?;
    let partitions = topic_partitions(&consumer, b, name)?;
    let mut out = String::new();
    out.push_str(&format!("topic       {name}\npartitions  {}\n\n", partitions.len()));
    let mut table = Table::new(&["PARTITION", "LEADER", "REPLICAS", "ISR", "LOG_START_OFFSET", "HIGH_WATERMARK", "RECORDS"]);
    for p in &partitions {
        let context = format!("offsets of {name}-{}", p.id);
        let (low, high) = consumer.fetch_watermarks(name, p.id, b.timeout).map_err(|e| explain(&context, &e))?;
        table.row(vec![
            p.id.to_string(),
            p.leader.to_string(),
            ids(&p.replicas),
            ids(&p.isr),
            low.to_string(),
            high.to_string(),
            (high - low).to_string(),
        ]);
    }
    out.push_str(&table.render());
    out.push('\n');
    out.push_str(&configs_text(b, name));
    write!(std::io::stdout(), "{out}")?;
    Ok(())
}

/// The topic's configs by DescribeConfigs, or one line saying why there are none.
fn configs_text(b: &BrokerArgs, name: &str) -> String {
    let described = b.admin().and_then(|admin| {
        let results = block_on(admin.describe_configs([&ResourceSpecifier::Topic(name)], &b.admin_options()))
            .map_err(|e| explain("DescribeConfigs", &e))?;
        let first = results.into_iter().next().context("DescribeConfigs: empty answer")?;
        first.map_err(|code| explain_code("DescribeConfigs", code))
    });
    match described {
        Ok(resource) => {
            let mut table = Table::new(&["CONFIG", "VALUE", "SOURCE"]);
            let mut entries: Vec<_> = resource.entries.iter().collect();
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            for e in entries {
                let value = if e.is_sensitive { "(sensitive)".to_owned() } else { e.value.clone().unwrap_or_default() };
                table.row(vec![e.name.clone(), value, format!("{:?}", e.source)]);
            }
            format!("configs:\n{}", table.render())
        }
        Err(e) => format!("configs: not available ({e})\n"),
    }
}

fn alter_config(b: &BrokerArgs, name: &str, configs: &[(String, String)]) -> anyhow::Result<()> {
    let admin = b.admin()?;
    let mut alter = AlterConfig::new(ResourceSpecifier::Topic(name));
    for (key, value) in configs {
        alter = alter.set(key, value);
    }
    let context = format!("topic alter-config {name} (AlterConfigs)");
    let results = block_on(admin.alter_configs([&alter], &b.admin_options())).map_err(|e| explain(&context, &e))?;
    for result in results {
        result.map_err(|(_, code)| explain_code(&context, code))?;
    }
    writeln!(std::io::stdout(), "altered configs of topic {name}")?;
    Ok(())
}

fn add_partitions(b: &BrokerArgs, name: &str, total: usize) -> anyhow::Result<()> {
    let admin = b.admin()?;
    let context = format!("topic add-partitions {name} (CreatePartitions)");
    let request = NewPartitions::new(name, total);
    let results =
        block_on(admin.create_partitions([&request], &b.admin_options())).map_err(|e| explain(&context, &e))?;
    for result in results {
        result.map_err(|(_, code)| explain_code(&context, code))?;
    }
    writeln!(std::io::stdout(), "topic {name} now has {total} partitions")?;
    Ok(())
}

fn delete(b: &BrokerArgs, names: &[String]) -> anyhow::Result<()> {
    let admin = b.admin()?;
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let context = format!("topic delete {} (DeleteTopics)", refs.join(" "));
    let results = block_on(admin.delete_topics(&refs, &b.admin_options())).map_err(|e| explain(&context, &e))?;
    let mut out = std::io::stdout().lock();
    let mut failed = None;
    for result in results {
        match result {
            Ok(name) => writeln!(out, "deleted topic {name}")?,
            Err((name, code)) => failed = Some(explain_code(&format!("topic delete {name}"), code)),
        }
    }
    failed.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_split_at_the_first_equals_sign() {
        assert_eq!(key_value("a.b=c=d"), Ok(("a.b".into(), "c=d".into())));
        assert_eq!(key_value("k="), Ok(("k".into(), String::new())));
        assert!(key_value("novalue").is_err());
        assert!(key_value("=v").is_err());
    }
}
