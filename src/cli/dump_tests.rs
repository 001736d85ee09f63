//! Segment dumps of files written here: batches hand-encoded with kafka-protocol's encoder,
//! indexes with the broker's own index types.

use super::*;
use kafka_protocol::records::Compression;
use strand::protocol::record_batch::{assign_offsets, encode_batch, BatchProducer};

fn batch(base_offset: i64, count: usize, timestamp: i64, compression: Compression) -> Vec<u8> {
    let records = (0..count).map(|i| (None, Some(bytes::Bytes::from(format!("value-{i}"))), timestamp + i as i64));
    let mut batch = encode_batch(records, BatchProducer::NONE, compression).unwrap();
    assign_offsets(&mut batch, base_offset, 0);
    batch.to_vec()
}

fn lines_with(text: &str, needle: &str) -> usize {
    text.lines().filter(|l| l.contains(needle)).count()
}

#[test]
fn a_log_dump_lists_every_batch_and_the_zeroed_tail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("00000000000000000100.log");
    let mut bytes = batch(100, 3, 1_700_000_000_000, Compression::None);
    let first = bytes.len();
    bytes.extend(batch(103, 2, 1_700_000_001_000, Compression::Gzip));
    bytes.extend(vec![0u8; 4096]);
    std::fs::write(&path, &bytes).unwrap();
    let text = dump_log(&path).unwrap();
    assert!(text.contains("segment base offset 100"), "{text}");
    assert!(text.contains("2 batches, 5 records"), "{text}");
    assert!(text.contains(&format!("zeroed (preallocated) space from position {}", bytes.len() - 4096)), "{text}");
    let row = text.lines().find(|l| l.starts_with(&format!("{first:>8}"))).expect("second batch row");
    assert!(row.contains(" 103 ") && row.contains(" 104 ") && row.contains("gzip") && row.contains("ok"), "{row}");
    assert!(text.contains("2023-11-14T22:13:20.000Z"), "{text}");
}

#[test]
fn a_flipped_byte_shows_as_a_bad_crc_and_a_cut_batch_as_damage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("00000000000000000000.log");
    let mut bytes = batch(0, 2, 1000, Compression::None);
    let last = bytes.len() - 1;
    bytes[last] ^= 0xFF;
    let second = batch(2, 4, 2000, Compression::None);
    bytes.extend_from_slice(&second[..second.len() - 5]);
    std::fs::write(&path, &bytes).unwrap();
    let text = dump_log(&path).unwrap();
    assert_eq!(lines_with(&text, " BAD "), 1, "{text}");
    assert!(text.contains("1 batches, 2 records"), "{text}");
    assert!(text.contains("damage at position"), "{text}");
    assert!(text.contains("runs past the end of the file"), "{text}");
}

#[test]
fn an_offset_index_dump_lists_entries_and_marks_the_invalid_tail() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("00000000000000000010.log"), vec![1u8; 10_000]).unwrap();
    let path = dir.path().join("00000000000000000010.index");
    let mut index = OffsetIndex::default();
    index.append(5, 4100);
    index.append(9, 8200);
    let mut stored = index.encoded_from(0).to_vec();
    stored.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]); // offsets do not grow: invalid
    stored.extend_from_slice(&[7, 7]);
    std::fs::write(&path, &stored).unwrap();
    let text = dump_offset_index(&path).unwrap();
    assert!(text.contains("3 entries, 2 valid"), "{text}");
    assert!(text.contains("2 trailing bytes: a torn entry"), "{text}");
    let row = text.lines().find(|l| l.contains("8200")).unwrap();
    assert!(row.contains(" 19 ") && row.ends_with("yes"), "{row}");
    assert_eq!(text.lines().filter(|l| l.ends_with(" no")).count(), 1, "{text}");
}

#[test]
fn a_time_index_dump_shows_timestamps_and_absolute_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("00000000000000000010.timeindex");
    let mut index = TimeIndex::default();
    index.maybe_append(1_700_000_000_000, 0);
    index.maybe_append(1_700_000_005_000, 4);
    std::fs::write(&path, index.encoded_from(0)).unwrap();
    let text = dump_time_index(&path).unwrap();
    assert!(text.contains("2 entries, 2 valid"), "{text}");
    let row = text.lines().find(|l| l.contains("1700000005000")).unwrap();
    assert!(row.contains("2023-11-14T22:13:25.000Z") && row.contains(" 14 "), "{row}");
}
