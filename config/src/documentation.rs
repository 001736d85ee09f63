//! The documentation of each broker key, as DescribeConfigs returns it when asked: the comment
//! above the key in the embedded default.toml, so there is one text to keep up to date.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use crate::DEFAULT_TOML;

/// The comment block right above `key = ...` in default.toml, as one line.
pub fn documentation(key: &str) -> Option<&'static str> {
    static DOCS: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    DOCS.get_or_init(|| parse(DEFAULT_TOML)).get(key).map(String::as_str)
}

/// Each key's comment: the `#` lines directly above it (a blank line ends a block).
fn parse(text: &str) -> BTreeMap<String, String> {
    let mut docs = BTreeMap::new();
    let mut block: Vec<&str> = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(comment) = line.strip_prefix('#') {
            block.push(comment.trim());
        } else if let Some((key, _)) = line.split_once('=') {
            if !block.is_empty() {
                // A quoted key ("max.connections") is the same dotted name.
                docs.insert(key.trim().trim_matches('"').to_owned(), block.join(" "));
            }
            block.clear();
        } else {
            block.clear();
        }
    }
    docs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BrokerConfig;

    #[test]
    fn every_broker_key_has_its_comment_as_documentation() {
        for key in BrokerConfig::default_props().keys() {
            let doc = documentation(key).unwrap_or_else(|| panic!("{key} has no comment in default.toml"));
            assert!(!doc.is_empty() && !doc.contains('#'), "{key}: {doc}");
        }
        assert_eq!(
            documentation("num.partitions"),
            Some("Partitions of an auto-created topic, or a CreateTopics call that gives -1.")
        );
    }

    #[test]
    fn the_file_header_is_nobodys_documentation() {
        let docs = parse("# header\n\n# about a\n# more\na = 1\nb = 2\n");
        assert_eq!(docs.get("a").map(String::as_str), Some("about a more"));
        assert!(!docs.contains_key("b"));
    }
}
