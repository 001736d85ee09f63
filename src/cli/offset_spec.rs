//! Where a consumer starts (`--from`) and where a group's offsets are reset to, as typed on
//! the command line, and their translation into librdkafka offsets.

use std::str::FromStr;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::kafka_error::explain;
use super::time_text::parse_rfc3339_ms;

/// `--from`: `beginning`, `end`, an offset `N`, `-N` (N records before the end, as kcat's
/// `-o -N`), a timestamp as `@MS` (epoch milliseconds) or RFC 3339.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    Beginning,
    End,
    Offset(i64),
    BeforeEnd(i64),
    Timestamp(i64),
}

impl FromStr for StartFrom {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        match text {
            "beginning" | "earliest" | "start" => return Ok(Self::Beginning),
            "end" | "latest" => return Ok(Self::End),
            _ => {}
        }
        if let Some(ms) = text.strip_prefix('@') {
            return ms.parse().map(Self::Timestamp).map_err(|e| format!("'{text}': @ takes epoch milliseconds: {e}"));
        }
        if let Some(back) = text.strip_prefix('-') {
            if let Ok(n) = back.parse::<i64>() {
                return Ok(Self::BeforeEnd(n));
            }
        }
        if let Ok(offset) = text.parse::<i64>() {
            return Ok(Self::Offset(offset));
        }
        parse_rfc3339_ms(text).map(Self::Timestamp).map_err(|_| {
            format!("'{text}' is not beginning, end, an offset, -N, @EPOCH_MS or an RFC 3339 timestamp")
        })
    }
}

impl StartFrom {
    /// The librdkafka offset for every partition, timestamps resolved with ListOffsets.
    pub fn resolve(
        self,
        consumer: &BaseConsumer,
        topic: &str,
        partitions: &[i32],
        timeout: Duration,
    ) -> anyhow::Result<Vec<(i32, Offset)>> {
        let fixed = match self {
            Self::Beginning => Offset::Beginning,
            Self::End => Offset::End,
            Self::Offset(n) => Offset::Offset(n),
            Self::BeforeEnd(n) => Offset::OffsetTail(n),
            Self::Timestamp(ms) => return offsets_for_timestamp(consumer, topic, partitions, ms, timeout),
        };
        Ok(partitions.iter().map(|&p| (p, fixed)).collect())
    }
}

/// The first offset with a timestamp at or after `ms` in each partition (the end when there is
/// none), by ListOffsets.
pub fn offsets_for_timestamp(
    consumer: &BaseConsumer,
    topic: &str,
    partitions: &[i32],
    ms: i64,
    timeout: Duration,
) -> anyhow::Result<Vec<(i32, Offset)>> {
    let mut query = TopicPartitionList::new();
    for &p in partitions {
        query
            .add_partition_offset(topic, p, Offset::Offset(ms))
            .map_err(|e| explain("offsets by timestamp", &e))?;
    }
    let found = consumer
        .offsets_for_times(query, timeout)
        .map_err(|e| explain(&format!("offsets of {topic} at timestamp {ms}"), &e))?;
    Ok(found.elements().iter().map(|e| (e.partition(), e.offset())).collect())
}

/// `group reset-offsets` targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTo {
    Earliest,
    Latest,
    Offset(i64),
    Datetime(i64),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_values_cover_every_form() {
        let parse = |s: &str| s.parse::<StartFrom>();
        assert_eq!(parse("beginning"), Ok(StartFrom::Beginning));
        assert_eq!(parse("end"), Ok(StartFrom::End));
        assert_eq!(parse("42"), Ok(StartFrom::Offset(42)));
        assert_eq!(parse("-10"), Ok(StartFrom::BeforeEnd(10)));
        assert_eq!(parse("@1700000000000"), Ok(StartFrom::Timestamp(1_700_000_000_000)));
        assert_eq!(parse("2023-11-14T22:13:20Z"), Ok(StartFrom::Timestamp(1_700_000_000_000)));
        assert_eq!(parse("2023-11-15T00:13:20+02:00"), Ok(StartFrom::Timestamp(1_700_000_000_000)));
        assert!(parse("tomorrow").is_err());
        assert!(parse("@soon").is_err());
    }
}
