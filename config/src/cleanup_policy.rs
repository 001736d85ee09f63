//! cleanup.policy: what happens to old data of a partition.

use std::fmt;
use std::str::FromStr;

/// `delete` (retention by time and size), `compact` (keep the newest record per key), or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    pub delete: bool,
    pub compact: bool,
}

impl FromStr for CleanupPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() {
            return Err("must be delete, compact or both".to_owned());
        }
        let mut policy = Self { delete: false, compact: false };
        for part in s.split(',').map(str::trim) {
            match part {
                "delete" => policy.delete = true,
                "compact" => policy.compact = true,
                other => return Err(format!("'{other}' is not delete or compact")),
            }
        }
        Ok(policy)
    }
}

impl fmt::Display for CleanupPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match (self.compact, self.delete) {
            (true, true) => "compact,delete",
            (true, false) => "compact",
            _ => "delete",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_policies_parse_in_either_order() {
        let both: CleanupPolicy = "delete, compact".parse().unwrap();
        assert!(both.delete && both.compact);
        assert_eq!(both.to_string(), "compact,delete");
        assert!("shred".parse::<CleanupPolicy>().is_err());
        assert_eq!("".parse::<CleanupPolicy>(), Err("must be delete, compact or both".to_owned()));
    }
}
