//! How `strand consume` prints a record: a kcat-style `--format` template or JSON lines.
//!
//! Template placeholders (kcat's): %k key, %v (or %s) value, %h headers as k=v,k2=v2,
//! %p partition, %o offset, %t topic, %T timestamp (epoch ms), %K / %S key / value length
//! (-1 for null), %% a percent sign; escapes \n \t \\. A null key or value prints as nothing.

use std::str::FromStr;

use serde_json::{json, Value};

/// One record as consumed, borrowed from the client's message.
#[derive(Debug, Clone, Default)]
pub struct RecordView<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    /// Epoch milliseconds, when the record has one.
    pub timestamp: Option<i64>,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: Vec<(&'a str, Option<&'a [u8]>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(Vec<u8>),
    Key,
    Value,
    KeyLength,
    ValueLength,
    Headers,
    Partition,
    Offset,
    Topic,
    Timestamp,
}

/// A parsed `--format` template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

impl Default for Template {
    /// The value and a newline, as kcat prints by default.
    fn default() -> Self {
        Self { pieces: vec![Piece::Value, Piece::Literal(b"\n".to_vec())] }
    }
}

impl FromStr for Template {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut pieces = Vec::new();
        let mut literal = Vec::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            let piece = match c {
                '%' => match chars.next() {
                    Some('k') => Piece::Key,
                    Some('v' | 's') => Piece::Value,
                    Some('K') => Piece::KeyLength,
                    Some('S') => Piece::ValueLength,
                    Some('h') => Piece::Headers,
                    Some('p') => Piece::Partition,
                    Some('o') => Piece::Offset,
                    Some('t') => Piece::Topic,
                    Some('T') => Piece::Timestamp,
                    Some('%') => {
                        literal.push(b'%');
                        continue;
                    }
                    Some(other) => return Err(format!("unknown placeholder %{other} in '{text}'")),
                    None => return Err(format!("'{text}' ends with a lone %")),
                },
                '\\' => {
                    let escaped = match chars.next() {
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some('r') => '\r',
                        Some('\\') | None => '\\',
                        Some(other) => return Err(format!("unknown escape \\{other} in '{text}'")),
                    };
                    literal.extend_from_slice(escaped.encode_utf8(&mut [0; 4]).as_bytes());
                    continue;
                }
                c => {
                    literal.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                    continue;
                }
            };
            if !literal.is_empty() {
                pieces.push(Piece::Literal(std::mem::take(&mut literal)));
            }
            pieces.push(piece);
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Ok(Self { pieces })
    }
}

impl Template {
    /// Appends the rendered record to `out`.
    pub fn render(&self, record: &RecordView<'_>, out: &mut Vec<u8>) {
        use std::io::Write as _;
        let length = |bytes: Option<&[u8]>| bytes.map_or(-1, |b| i64::try_from(b.len()).unwrap_or(i64::MAX));
        for piece in &self.pieces {
            // Writing into a Vec cannot fail.
            let _ = match piece {
                Piece::Literal(bytes) => out.write_all(bytes),
                Piece::Key => out.write_all(record.key.unwrap_or_default()),
                Piece::Value => out.write_all(record.value.unwrap_or_default()),
                Piece::KeyLength => write!(out, "{}", length(record.key)),
                Piece::ValueLength => write!(out, "{}", length(record.value)),
                Piece::Headers => out.write_all(headers_text(record).as_bytes()),
                Piece::Partition => write!(out, "{}", record.partition),
                Piece::Offset => write!(out, "{}", record.offset),
                Piece::Topic => out.write_all(record.topic.as_bytes()),
                Piece::Timestamp => write!(out, "{}", record.timestamp.unwrap_or(-1)),
            };
        }
    }
}

fn headers_text(record: &RecordView<'_>) -> String {
    let pairs: Vec<String> = record
        .headers
        .iter()
        .map(|(k, v)| format!("{k}={}", String::from_utf8_lossy(v.unwrap_or_default())))
        .collect();
    pairs.join(",")
}

/// One JSON object per record: topic, partition, offset, timestamp (ms), key, value (UTF-8,
/// lossy; null when absent) and headers as [key, value] pairs in order.
pub fn to_json(record: &RecordView<'_>) -> Value {
    let text = |bytes: Option<&[u8]>| bytes.map(|b| String::from_utf8_lossy(b).into_owned());
    let headers: Vec<Value> = record.headers.iter().map(|(k, v)| json!([k, text(*v)])).collect();
    json!({
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
        "key": text(record.key),
        "value": text(record.value),
        "headers": headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> RecordView<'static> {
        RecordView {
            topic: "orders",
            partition: 2,
            offset: 17,
            timestamp: Some(1_700_000_000_000),
            key: Some(b"k1"),
            value: Some(b"hello"),
            headers: vec![("origin", Some(b"cli")), ("empty", None)],
        }
    }

    fn render(template: &str, record: &RecordView<'_>) -> String {
        let mut out = Vec::new();
        template.parse::<Template>().unwrap().render(record, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_placeholder_renders_its_field() {
        let text = render("%t/%p@%o %T %k=%v [%h] %K %S 100%%\\n", &record());
        assert_eq!(text, "orders/2@17 1700000000000 k1=hello [origin=cli,empty=] 2 5 100%\n");
    }

    #[test]
    fn null_keys_print_as_nothing_and_length_minus_one() {
        let r = RecordView { key: None, ..record() };
        assert_eq!(render("[%k] %K %s\\t", &r), "[] -1 hello\t");
    }

    #[test]
    fn unknown_placeholders_and_escapes_are_refused() {
        assert!("%q".parse::<Template>().is_err());
        assert!("abc%".parse::<Template>().is_err());
        assert!("\\x".parse::<Template>().is_err());
    }

    #[test]
    fn the_default_template_is_the_value_and_a_newline() {
        let mut out = Vec::new();
        Template::default().render(&record(), &mut out);
        assert_eq!(out, b"hello\n");
    }

    #[test]
    fn json_lines_keep_nulls_and_header_order() {
        let r = RecordView { key: None, ..record() };
        let v = to_json(&r);
        assert_eq!(v["key"], Value::Null);
        assert_eq!(v["value"], "hello");
        assert_eq!(v["headers"], json!([["origin", "cli"], ["empty", null]]));
        assert_eq!(v["offset"], 17);
    }
}
