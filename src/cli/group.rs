//! `strand group ...`: list, describe (members, assignments, committed offsets, lag),
//! reset-offsets and delete, through Kafka's group APIs (ListGroups, DescribeGroups,
//! OffsetFetch, OffsetCommit, DeleteGroups) as librdkafka speaks them.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;

use clap::{ArgGroup, Args, Subcommand};
use futures_lite::future::block_on;
use kafka_protocol::messages::ApiKey;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::groups::GroupInfo;
use rdkafka::{Offset, TopicPartitionList};

use super::broker_apis::BrokerApis;
use super::brokers::BrokerArgs;
use super::group_assignment;
use super::group_offsets::{offsets, reset_targets, TopicPartitionKey};
use super::kafka_error::{explain, explain_code};
use super::offset_spec::ResetTo;
use super::table::Table;
use super::time_text::parse_rfc3339_ms;
use super::topic::topic_partitions;

#[derive(Args, Debug)]
pub struct GroupArgs {
    #[command(flatten)]
    pub brokers: BrokerArgs,
    #[command(subcommand)]
    pub command: GroupCommand,
}

#[derive(Subcommand, Debug)]
pub enum GroupCommand {
    /// List consumer groups with their state and member count.
    #[command(after_help = "Example:\n  strand group list")]
    List,
    /// Members, assignments, and per partition the committed offset, log end offset and lag.
    #[command(after_help = "Example:\n  strand group describe billing")]
    Describe { group: String },
    /// Move a group's committed offsets for a topic (dry run unless --execute).
    #[command(
        group(ArgGroup::new("target").required(true).args(["to_earliest", "to_latest", "to_offset", "to_datetime"])),
        after_help = "Examples:\n  \
            strand group reset-offsets billing --topic orders --to-earliest\n  \
            strand group reset-offsets billing --topic orders --to-datetime 2024-05-01T00:00:00Z --execute"
    )]
    ResetOffsets {
        group: String,
        #[arg(long)]
        topic: String,
        #[arg(long)]
        to_earliest: bool,
        #[arg(long)]
        to_latest: bool,
        #[arg(long, value_name = "OFFSET")]
        to_offset: Option<i64>,
        /// RFC 3339 time or epoch milliseconds.
        #[arg(long, value_name = "TIME")]
        to_datetime: Option<String>,
        /// Commit the new offsets; without it only shows them. The group must have no members.
        #[arg(long)]
        execute: bool,
    },
    /// Delete a consumer group (it must have no members).
    #[command(after_help = "Example:\n  strand group delete billing")]
    Delete { group: String },
}

pub fn run(args: &GroupArgs) -> anyhow::Result<()> {
    let b = &args.brokers;
    match &args.command {
        GroupCommand::List => list(b),
        GroupCommand::Describe { group } => describe(b, group),
        GroupCommand::ResetOffsets { group, topic, to_earliest, to_latest, to_offset, to_datetime, execute } => {
            let to = match (to_earliest, to_latest, to_offset, to_datetime) {
                (true, _, _, _) => ResetTo::Earliest,
                (_, true, _, _) => ResetTo::Latest,
                (_, _, Some(n), _) => ResetTo::Offset(*n),
                (_, _, _, Some(text)) => ResetTo::Datetime(datetime_ms(text)?),
                _ => anyhow::bail!("give one of --to-earliest, --to-latest, --to-offset, --to-datetime"),
            };
            reset_offsets(b, group, topic, to, *execute)
        }
        GroupCommand::Delete { group } => delete(b, group),
    }
}

fn datetime_ms(text: &str) -> anyhow::Result<i64> {
    match text.trim().parse::<i64>() {
        Ok(ms) => Ok(ms),
        Err(_) => parse_rfc3339_ms(text).map_err(|e| anyhow::anyhow!("--to-datetime {e}")),
    }
}

fn list(b: &BrokerArgs) -> anyhow::Result<()> {
    BrokerApis::fetch(b)?.require("group list", &[ApiKey::ListGroups, ApiKey::DescribeGroups])?;
    let consumer = b.consumer(None)?;
    let groups = consumer.fetch_group_list(None, b.timeout).map_err(|e| explain("group list (ListGroups)", &e))?;
    let mut table = Table::new(&["GROUP", "STATE", "MEMBERS", "PROTOCOL_TYPE"]);
    let mut rows: Vec<&GroupInfo> = groups.groups().iter().collect();
    rows.sort_by_key(|g| g.name());
    for g in rows {
        table.row(vec![g.name().to_owned(), g.state().to_owned(), g.members().len().to_string(), g.protocol_type().to_owned()]);
    }
    write!(std::io::stdout(), "{}", table.render())?;
    Ok(())
}

/// The group's DescribeGroups answer: (state, protocol, members as (member id, client id,
/// host, assigned partitions)).
type Member = (String, String, String, Vec<TopicPartitionKey>);

fn describe_group(consumer: &BaseConsumer, b: &BrokerArgs, group: &str) -> anyhow::Result<(String, String, Vec<Member>)> {
    let context = format!("group {group} (DescribeGroups)");
    let list = consumer.fetch_group_list(Some(group), b.timeout).map_err(|e| explain(&context, &e))?;
    let Some(info) = list.groups().iter().find(|g| g.name() == group) else {
        return Ok(("Dead".to_owned(), String::new(), Vec::new()));
    };
    let members = info
        .members()
        .iter()
        .map(|m| {
            let assigned = m.assignment().map(group_assignment::decode).unwrap_or_default();
            (m.id().to_owned(), m.client_id().to_owned(), m.client_host().to_owned(), assigned)
        })
        .collect();
    Ok((info.state().to_owned(), info.protocol().to_owned(), members))
}

/// Every partition of every topic (internal ones aside): OffsetFetch then tells which ones the
/// group has committed offsets for, even when it has no members to say which topics it reads.
fn all_partitions(consumer: &BaseConsumer, b: &BrokerArgs) -> anyhow::Result<Vec<TopicPartitionKey>> {
    let metadata = consumer.fetch_metadata(None, b.timeout).map_err(|e| explain("Metadata", &e))?;
    let mut keys = Vec::new();
    for topic in metadata.topics().iter().filter(|t| !t.name().starts_with("__")) {
        for p in topic.partitions() {
            keys.push((topic.name().to_owned(), p.id()));
        }
    }
    Ok(keys)
}

fn describe(b: &BrokerArgs, group: &str) -> anyhow::Result<()> {
    let apis = BrokerApis::fetch(b)?;
    apis.require(&format!("group describe {group}"), &[ApiKey::FindCoordinator, ApiKey::OffsetFetch])?;
    let consumer = b.consumer(Some(group))?;
    // Without DescribeGroups the offsets can still be shown, without members.
    let (state, protocol, members) = if apis.has(ApiKey::DescribeGroups) {
        describe_group(&consumer, b, group)?
    } else {
        ("unknown (the broker does not serve DescribeGroups)".to_owned(), "-".to_owned(), Vec::new())
    };
    let owner: BTreeMap<TopicPartitionKey, usize> =
        members.iter().enumerate().flat_map(|(i, m)| m.3.iter().map(move |tp| (tp.clone(), i))).collect();
    let offsets = offsets(&consumer, &all_partitions(&consumer, b)?, b.timeout)?;
    let shown: BTreeSet<&TopicPartitionKey> =
        offsets.iter().filter(|(k, o)| o.committed.is_some() || owner.contains_key(*k)).map(|(k, _)| k).collect();
    if state == "Dead" && shown.is_empty() {
        anyhow::bail!("group {group}: GROUP_ID_NOT_FOUND (no members and no committed offsets); hint: check the name with `strand group list`");
    }
    let mut out = format!("group     {group}\nstate     {state}\nprotocol  {protocol}\nmembers   {}\n\n", members.len());
    let mut table = Table::new(&["TOPIC", "PARTITION", "CURRENT_OFFSET", "LOG_END_OFFSET", "LAG", "MEMBER", "CLIENT_ID", "HOST"]);
    let dash = || "-".to_owned();
    for key in shown {
        let o = offsets[key];
        let member = owner.get(key).map(|&i| &members[i]);
        table.row(vec![
            key.0.clone(),
            key.1.to_string(),
            o.committed.map_or_else(dash, |c| c.to_string()),
            o.log_end_offset.to_string(),
            o.lag().map_or_else(dash, |l| l.to_string()),
            member.map_or_else(dash, |m| m.0.clone()),
            member.map_or_else(dash, |m| m.1.clone()),
            member.map_or_else(dash, |m| m.2.clone()),
        ]);
    }
    out.push_str(&table.render());
    write!(std::io::stdout(), "{out}")?;
    Ok(())
}

fn reset_offsets(b: &BrokerArgs, group: &str, topic: &str, to: ResetTo, execute: bool) -> anyhow::Result<()> {
    let apis = BrokerApis::fetch(b)?;
    let needed = [ApiKey::FindCoordinator, ApiKey::OffsetFetch, ApiKey::OffsetCommit];
    apis.require(&format!("group reset-offsets {group}"), &needed)?;
    let consumer = b.consumer(Some(group))?;
    let partitions: Vec<i32> = topic_partitions(&consumer, b, topic)?.iter().map(|p| p.id).collect();
    let keys: Vec<TopicPartitionKey> = partitions.iter().map(|&p| (topic.to_owned(), p)).collect();
    let current = offsets(&consumer, &keys, b.timeout)?;
    let targets = reset_targets(&consumer, topic, &partitions, to, b.timeout)?;
    let mut table = Table::new(&["TOPIC", "PARTITION", "CURRENT_OFFSET", "NEW_OFFSET"]);
    let mut commit = TopicPartitionList::new();
    for (&partition, &target) in &targets {
        let committed = current.get(&(topic.to_owned(), partition)).and_then(|o| o.committed);
        table.row(vec![topic.to_owned(), partition.to_string(), committed.map_or("-".to_owned(), |c| c.to_string()), target.to_string()]);
        commit.add_partition_offset(topic, partition, Offset::Offset(target)).map_err(|e| explain("reset", &e))?;
    }
    let mut out = std::io::stdout().lock();
    write!(out, "{}", table.render())?;
    if !execute {
        writeln!(out, "\ndry run: nothing committed; add --execute to commit these offsets")?;
        return Ok(());
    }
    // Kafka refuses commits from outside an active group anyway; checking first gives the reason.
    let (state, _, members) =
        if apis.has(ApiKey::DescribeGroups) { describe_group(&consumer, b, group)? } else { Default::default() };
    if !members.is_empty() {
        anyhow::bail!("group {group} is {state} with {} members; hint: stop its consumers first (Kafka only resets offsets of an empty group)", members.len());
    }
    consumer
        .commit(&commit, CommitMode::Sync)
        .map_err(|e| explain(&format!("group reset-offsets {group} (OffsetCommit)"), &e))?;
    writeln!(out, "\ncommitted new offsets for group {group}")?;
    Ok(())
}

fn delete(b: &BrokerArgs, group: &str) -> anyhow::Result<()> {
    BrokerApis::fetch(b)?.require(&format!("group delete {group}"), &[ApiKey::FindCoordinator, ApiKey::DeleteGroups])?;
    let admin = b.admin()?;
    let context = format!("group delete {group} (DeleteGroups)");
    let results = block_on(admin.delete_groups(&[group], &b.admin_options())).map_err(|e| explain(&context, &e))?;
    for result in results {
        result.map_err(|(_, code)| explain_code(&context, code))?;
    }
    writeln!(std::io::stdout(), "deleted group {group}")?;
    Ok(())
}

#[cfg(test)]
#[path = "group_tests.rs"]
mod tests;
