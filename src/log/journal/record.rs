//! The journal's on-disk format: the file's header page, records, their entries, and which
//! records of a file a replay takes.

use bytes::{Buf, BufMut, Bytes};
use strand_io::PAGE_BYTES;
use uuid::Uuid;

use super::JournalKey;

const MAGIC: &[u8; 4] = b"SJNL";
/// magic, crc, sequence, payload length, entry count.
pub(super) const RECORD_HEADER_BYTES: usize = 4 + 4 + 8 + 4 + 4;

/// Batches one partition writer hands the journal in one round.
pub(super) struct Submission {
    /// Its place in the queue: it is durable once the journal's durable ticket reaches it.
    pub ticket: u64,
    pub key: Bytes,
    pub batches: Vec<Bytes>,
}

impl Submission {
    pub fn encoded_len(&self) -> usize {
        self.key.len() + 4 + self.batches.iter().map(Bytes::len).sum::<usize>()
    }
}

pub(super) fn align_up(n: u64) -> u64 {
    n.div_ceil(PAGE_BYTES) * PAGE_BYTES
}

const FILE_MAGIC: &[u8; 4] = b"SJNF";

/// The file's first page: magic, nonce, crc32c of the nonce.
pub(super) fn encode_file_header(buf: &mut [u8], nonce: u64) {
    buf.fill(0);
    buf[..4].copy_from_slice(FILE_MAGIC);
    buf[4..12].copy_from_slice(&nonce.to_be_bytes());
    let crc = crc32c::crc32c(&buf[4..12]);
    buf[12..16].copy_from_slice(&crc.to_be_bytes());
}

/// The nonce of a file whose first page is `page`, if it is a journal's.
fn decode_file_header(page: &[u8]) -> Option<u64> {
    let nonce = page.get(4..12)?;
    let crc = page.get(12..16)?;
    (page.get(..4)? == FILE_MAGIC && crc32c::crc32c(nonce).to_be_bytes() == crc)
        .then(|| u64::from_be_bytes(nonce.try_into().expect("8 bytes")))
}

/// A record's CRC: of its bytes after the CRC field, seeded with the file's nonce.
fn record_crc(nonce: u64, bytes: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&nonce.to_be_bytes()), bytes)
}

/// Encodes a record into `buf` (zero padded after `len` bytes).
pub(super) fn encode_record(buf: &mut [u8], nonce: u64, sequence: u64, entries: &[Submission], len: usize) {
    let (header, mut body) = buf.split_at_mut(RECORD_HEADER_BYTES);
    let payload_len = len - RECORD_HEADER_BYTES;
    for entry in entries {
        body.put_slice(&entry.key);
        let batches_len: usize = entry.batches.iter().map(Bytes::len).sum();
        body.put_u32(u32::try_from(batches_len).expect("an entry fits in a quarter"));
        for batch in &entry.batches {
            body.put_slice(batch);
        }
    }
    body.fill(0);
    let mut h = &mut header[8..];
    h.put_u64(sequence);
    h.put_u32(u32::try_from(payload_len).expect("a record fits in a quarter"));
    h.put_u32(u32::try_from(entries.len()).expect("a record's entries fit u32"));
    let crc = record_crc(nonce, &buf[8..len]);
    buf[..4].copy_from_slice(MAGIC);
    buf[4..8].copy_from_slice(&crc.to_be_bytes());
}

/// A valid record's sequence number and payload, if one starts at `page`.
fn decode_record(page: &[u8], nonce: u64) -> Option<(u64, Bytes, usize)> {
    if page.len() < RECORD_HEADER_BYTES || &page[..4] != MAGIC {
        return None;
    }
    let crc = u32::from_be_bytes(page[4..8].try_into().ok()?);
    let mut h = &page[8..RECORD_HEADER_BYTES];
    let sequence = h.get_u64();
    let payload_len = usize::try_from(h.get_u32()).ok()?;
    let len = RECORD_HEADER_BYTES.checked_add(payload_len)?;
    if len > page.len() || record_crc(nonce, &page[8..len]) != crc {
        return None;
    }
    Some((sequence, Bytes::copy_from_slice(&page[RECORD_HEADER_BYTES..len]), len))
}

/// A record payload's entries; a malformed entry ends them (its record's CRC held, so this
/// only happens with a format this build does not know).
pub(super) fn decode_entries(payload: &Bytes) -> Vec<(JournalKey, Bytes)> {
    let mut entries = Vec::new();
    let mut rest = payload.clone();
    while rest.len() >= 16 + 4 + 2 {
        let topic_id = Uuid::from_slice(&rest[..16]).expect("16 bytes");
        rest.advance(16);
        let partition = rest.get_i32();
        let name_len = usize::from(rest.get_u16());
        if rest.len() < name_len + 4 {
            break;
        }
        let Ok(topic) = String::from_utf8(rest[..name_len].to_vec()) else { break };
        rest.advance(name_len);
        let len = usize::try_from(rest.get_u32()).unwrap_or(usize::MAX);
        if rest.len() < len {
            break;
        }
        let bytes = rest.split_to(len);
        if bytes.is_empty() && rest.iter().all(|b| *b == 0) {
            break;
        }
        entries.push((JournalKey { topic, partition, topic_id }, bytes));
    }
    entries
}

/// The payloads of the records to replay from a journal file: the longest run of consecutive
/// sequence numbers ending at the newest valid record. Rounds are written one after another,
/// each fdatasync'ed before the next, so only the newest can be torn; older records outside
/// the run were overwritten in part, and a checkpoint made them durable in their segments.
pub(super) fn records_to_replay(file: &[u8]) -> Vec<Bytes> {
    let mut found: Vec<(u64, Bytes)> = Vec::new();
    let page = usize::try_from(PAGE_BYTES).expect("small");
    let Some(nonce) = decode_file_header(file) else { return Vec::new() };
    let mut at = page;
    while at < file.len() {
        match decode_record(&file[at..], nonce) {
            Some((sequence, payload, len)) => {
                found.push((sequence, payload));
                at += len.div_ceil(page) * page;
            }
            None => at += page,
        }
    }
    found.sort_by_key(|(sequence, _)| *sequence);
    let mut start = found.len();
    while start > 0 && (start == found.len() || found[start - 1].0 + 1 == found[start].0) {
        start -= 1;
    }
    found.drain(start..).map(|(_, payload)| payload).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE: u64 = 0x5eed;

    fn record(sequence: u64, entries: &[Submission]) -> Vec<u8> {
        record_with(NONCE, sequence, entries)
    }

    fn record_with(nonce: u64, sequence: u64, entries: &[Submission]) -> Vec<u8> {
        let len = RECORD_HEADER_BYTES + entries.iter().map(Submission::encoded_len).sum::<usize>();
        let mut buf = vec![0u8; usize::try_from(align_up(len as u64)).unwrap()];
        encode_record(&mut buf, nonce, sequence, entries, len);
        buf
    }

    /// A journal file: the header page, then `records`.
    fn file(records: &[Vec<u8>]) -> Vec<u8> {
        let mut file = vec![0u8; 4096];
        encode_file_header(&mut file, NONCE);
        for record in records {
            file.extend_from_slice(record);
        }
        file
    }

    fn key(topic: &str, partition: i32) -> JournalKey {
        JournalKey { topic: topic.to_owned(), partition, topic_id: Uuid::from_u128(7) }
    }

    fn submission(topic: &str, partition: i32, fill: u8, len: usize) -> Submission {
        Submission { ticket: 0, key: key(topic, partition).encode(), batches: vec![Bytes::from(vec![fill; len]), Bytes::from(vec![fill; 3])] }
    }

    #[test]
    fn records_round_trip_with_their_entries() {
        let file = file(&[record(1, &[submission("a", 0, 1, 10), submission("b", 3, 2, 5000)])]);
        let records = records_to_replay(&file);
        assert_eq!(records.len(), 1);
        let entries = decode_entries(&records[0]);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].0, key("a", 0));
        assert_eq!(entries[0].1.len(), 13);
        assert_eq!(entries[1].0, key("b", 3));
        assert!(entries[1].1[..5000].iter().all(|b| *b == 2));
    }

    #[test]
    fn replay_takes_the_consecutive_run_ending_at_the_newest_record() {
        // A wrapped ring: 7 and 8 at the start, 4 (older, partly overwritten run) after them,
        // a torn 9 (bad crc) at the end.
        let mut records = Vec::new();
        for (i, sequence) in [7u64, 8, 4].iter().enumerate() {
            records.push(record(*sequence, &[submission("t", i32::try_from(i).unwrap(), 1, 100)]));
        }
        let mut torn = record(9, &[submission("t", 9, 1, 100)]);
        torn[RECORD_HEADER_BYTES + 2] ^= 0xff;
        records.push(torn);
        // A record of another file (or a value embedding one) with a higher sequence: its CRC
        // is not seeded with this file's nonce.
        records.push(record_with(NONCE + 1, 1000, &[submission("t", 10, 1, 100)]));
        let records = records_to_replay(&file(&records));
        let partitions: Vec<i32> = records.iter().map(|r| decode_entries(r)[0].0.partition).collect();
        assert_eq!(partitions, vec![0, 1], "7 and 8 only: 4 is not part of the run, 9 is torn, 1000 is not this file's");
    }

    #[test]
    fn a_zeroed_or_garbage_file_replays_nothing() {
        assert!(records_to_replay(&vec![0u8; 64 << 10]).is_empty());
        assert!(records_to_replay(&file(&[])).is_empty());
        let mut headless = file(&[record(1, &[submission("a", 0, 1, 10)])]);
        headless[..4096].fill(0);
        assert!(records_to_replay(&headless).is_empty(), "no nonce, no records");
        let garbage: Vec<u8> = (0..65536u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        assert!(records_to_replay(&garbage).is_empty());
    }
}
