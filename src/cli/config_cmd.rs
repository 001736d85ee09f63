//! `strand config print` and `strand config check FILE`: the effective broker config as TOML
//! with Kafka key names, and a validity check of a config file. Offline: no broker involved.

use std::fmt::Write as _;
use std::path::Path;

use strand_config::{BrokerConfig, ConfigError, Props};

use super::serve::BrokerConfigArgs;

/// The config `serve` would run with (defaults, then the file, then flags), as TOML, one
/// `key = value` line per key, sorted. Printing it and loading the output gives the same config.
pub fn effective_toml(args: &BrokerConfigArgs) -> Result<String, ConfigError> {
    let file = args.file_text()?;
    // Validate exactly as serve does, so print never shows a config serve would refuse.
    BrokerConfig::load(&file, args.overrides())?;
    let mut props = BrokerConfig::default_props();
    props.overlay(Props::from_toml(&file)?)?;
    props.overlay(args.overrides())?;
    Ok(render(&props))
}

fn render(props: &Props) -> String {
    let mut out = String::from("# strand effective broker config (defaults, then file, then flags)\n");
    for key in props.keys() {
        let value = props.get(key).expect("key listed by keys()");
        // TOML dotted keys are Kafka's names unquoted: `log.segment.bytes = 1073741824`. A name
        // another extends (max.connections, max.connections.per.ip) is quoted: a bare dotted key
        // cannot be both a value and a table.
        let extended = props.keys().any(|other| other.strip_prefix(key).is_some_and(|rest| rest.starts_with('.')));
        if extended {
            let _ = writeln!(out, "\"{key}\" = {value}");
        } else {
            let _ = writeln!(out, "{key} = {value}");
        }
    }
    out
}

/// Loads `path` as `serve --config path` would.
pub fn check(path: &Path) -> Result<(), ConfigError> {
    BrokerConfig::load_file(path, Props::default()).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_config_loads_back_to_the_same_config() {
        let args = BrokerConfigArgs { shards: Some(3), listen: Some("127.0.0.1:9999".into()), ..Default::default() };
        let printed = effective_toml(&args).unwrap();
        assert!(printed.contains("shards = 3\n"), "{printed}");
        assert!(printed.contains("listeners = \"127.0.0.1:9999\"\n"), "{printed}");
        assert!(printed.contains("log.segment.bytes = 1073741824\n"), "{printed}");
        let reloaded = BrokerConfig::load(&printed, Props::default()).unwrap();
        assert_eq!(reloaded, args.load().unwrap());
    }

    #[test]
    fn a_file_with_an_unknown_key_fails_the_check_with_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "num.partitons = 3\n").unwrap();
        let err = check(&path).unwrap_err().to_string();
        assert_eq!(err, "unknown config key 'num.partitons'");
        std::fs::write(&path, "num.partitions = 3\n").unwrap();
        check(&path).unwrap();
    }
}
