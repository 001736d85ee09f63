//! message.timestamp.type: whose clock a record's timestamp is.

use std::fmt;
use std::str::FromStr;

/// `CreateTime` keeps the producer's timestamps (checked against the
/// message.timestamp.before/after.max.ms window); `LogAppendTime` has the broker stamp every
/// batch with its own clock on append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampType {
    #[default]
    CreateTime,
    LogAppendTime,
}

impl FromStr for TimestampType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "CreateTime" => Ok(Self::CreateTime),
            "LogAppendTime" => Ok(Self::LogAppendTime),
            other => Err(format!("'{other}' is not CreateTime or LogAppendTime")),
        }
    }
}

impl fmt::Display for TimestampType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::CreateTime => "CreateTime",
            Self::LogAppendTime => "LogAppendTime",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafkas_two_names_parse_and_print_back() {
        for text in ["CreateTime", "LogAppendTime"] {
            assert_eq!(text.parse::<TimestampType>().unwrap().to_string(), text);
        }
        assert!("createtime".parse::<TimestampType>().is_err());
    }
}
