//! The records of `__consumer_offsets`, in Kafka's own formats (group-coordinator schemas
//! OffsetCommitKey/Value and GroupMetadataKey/Value), so the log reads as Kafka's would.
//!
//! Key: `version: i16` then the key struct; the version names the record type: 0 and 1 an
//! OffsetCommitKey `(group: string, topic: string, partition: i32)`, 2 a GroupMetadataKey
//! `(group: string)`; later versions are Kafka's new-protocol records, which strand skips.
//! Value: `version: i16` then the value struct, or a null value (tombstone) to delete the key.
//! strand writes OffsetCommitValue v3 (v1 when the commit carries its own expiry) and
//! GroupMetadataValue v3, like Kafka 3.x/4.x; it reads versions 0-4 of both (v4 is flexible:
//! compact strings and tagged fields).

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// A record key of __consumer_offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKey {
    OffsetCommit { group: String, topic: String, partition: i32 },
    GroupMetadata { group: String },
}

/// OffsetCommitValue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitValue {
    pub offset: i64,
    /// -1 when unknown.
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
    /// Only commits of OffsetCommit v2-v4 with an explicit retention time have one.
    pub expire_timestamp_ms: Option<i64>,
}

/// GroupMetadataValue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadataValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    /// -1 when unknown.
    pub current_state_timestamp_ms: i64,
    pub members: Vec<MemberMetadata>,
}

/// GroupMetadataValue.MemberMetadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMetadata {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// One decoded record: its key and, unless a tombstone, its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoordinatorRecord {
    OffsetCommit { group: String, topic: String, partition: i32, value: Option<OffsetCommitValue> },
    GroupMetadata { group: String, value: Option<GroupMetadataValue> },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("record is truncated")]
    Truncated,
    #[error("record has a null key")]
    NullKey,
    #[error("{what} version {version} is unknown")]
    UnknownVersion { what: &'static str, version: i16 },
    #[error("record string is not UTF-8")]
    NotUtf8,
    #[error("record field {0} is null but may not be")]
    UnexpectedNull(&'static str),
}

const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
const GROUP_METADATA_KEY_VERSION: i16 = 2;
const OFFSET_COMMIT_VALUE_VERSION: i16 = 3;
const OFFSET_COMMIT_VALUE_WITH_EXPIRY_VERSION: i16 = 1;
const GROUP_METADATA_VALUE_VERSION: i16 = 3;
/// The first flexible version of both value types.
const FLEXIBLE_VALUE_VERSION: i16 = 4;

pub fn encode_key(key: &RecordKey) -> Bytes {
    let mut buf = BytesMut::new();
    match key {
        RecordKey::OffsetCommit { group, topic, partition } => {
            buf.put_i16(OFFSET_COMMIT_KEY_VERSION);
            put_string(&mut buf, group);
            put_string(&mut buf, topic);
            buf.put_i32(*partition);
        }
        RecordKey::GroupMetadata { group } => {
            buf.put_i16(GROUP_METADATA_KEY_VERSION);
            put_string(&mut buf, group);
        }
    }
    buf.freeze()
}

pub fn encode_offset_commit_value(value: &OffsetCommitValue) -> Bytes {
    let mut buf = BytesMut::new();
    match value.expire_timestamp_ms {
        Some(expire) => {
            buf.put_i16(OFFSET_COMMIT_VALUE_WITH_EXPIRY_VERSION);
            buf.put_i64(value.offset);
            put_string(&mut buf, &value.metadata);
            buf.put_i64(value.commit_timestamp_ms);
            buf.put_i64(expire);
        }
        None => {
            buf.put_i16(OFFSET_COMMIT_VALUE_VERSION);
            buf.put_i64(value.offset);
            buf.put_i32(value.leader_epoch);
            put_string(&mut buf, &value.metadata);
            buf.put_i64(value.commit_timestamp_ms);
        }
    }
    buf.freeze()
}

pub fn encode_group_metadata_value(value: &GroupMetadataValue) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(GROUP_METADATA_VALUE_VERSION);
    put_string(&mut buf, &value.protocol_type);
    buf.put_i32(value.generation);
    put_nullable_string(&mut buf, value.protocol.as_deref());
    put_nullable_string(&mut buf, value.leader.as_deref());
    buf.put_i64(value.current_state_timestamp_ms);
    buf.put_i32(i32::try_from(value.members.len()).expect("members fit i32"));
    for member in &value.members {
        put_string(&mut buf, &member.member_id);
        put_nullable_string(&mut buf, member.group_instance_id.as_deref());
        put_string(&mut buf, &member.client_id);
        put_string(&mut buf, &member.client_host);
        buf.put_i32(member.rebalance_timeout_ms);
        buf.put_i32(member.session_timeout_ms);
        put_bytes(&mut buf, &member.subscription);
        put_bytes(&mut buf, &member.assignment);
    }
    buf.freeze()
}

/// Decodes one record. `Ok(None)`: a record type strand does not use (Kafka's records of the
/// new consumer and share group protocols), to be skipped.
pub fn decode_record(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<Option<CoordinatorRecord>, RecordError> {
    let mut key = Reader::new(key.ok_or(RecordError::NullKey)?, false);
    match key.i16()? {
        0 | 1 => {
            let group = key.string()?;
            let topic = key.string()?;
            let partition = key.i32()?;
            let value = value.map(decode_offset_commit_value).transpose()?;
            Ok(Some(CoordinatorRecord::OffsetCommit { group, topic, partition, value }))
        }
        2 => {
            let group = key.string()?;
            let value = value.map(decode_group_metadata_value).transpose()?;
            Ok(Some(CoordinatorRecord::GroupMetadata { group, value }))
        }
        _ => Ok(None),
    }
}

fn decode_offset_commit_value(bytes: &[u8]) -> Result<OffsetCommitValue, RecordError> {
    let version = Reader::new(bytes, false).i16()?;
    if !(0..=FLEXIBLE_VALUE_VERSION).contains(&version) {
        return Err(RecordError::UnknownVersion { what: "OffsetCommitValue", version });
    }
    let mut r = Reader::new(&bytes[2..], version >= FLEXIBLE_VALUE_VERSION);
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = r.string()?;
    let commit_timestamp_ms = r.i64()?;
    let expire_timestamp_ms = if version == 1 { Some(r.i64()?).filter(|t| *t != -1) } else { None };
    r.skip_tagged_fields()?;
    Ok(OffsetCommitValue { offset, leader_epoch, metadata, commit_timestamp_ms, expire_timestamp_ms })
}

fn decode_group_metadata_value(bytes: &[u8]) -> Result<GroupMetadataValue, RecordError> {
    let version = Reader::new(bytes, false).i16()?;
    if !(0..=FLEXIBLE_VALUE_VERSION).contains(&version) {
        return Err(RecordError::UnknownVersion { what: "GroupMetadataValue", version });
    }
    let mut r = Reader::new(&bytes[2..], version >= FLEXIBLE_VALUE_VERSION);
    let protocol_type = r.string()?;
    let generation = r.i32()?;
    let protocol = r.nullable_string()?;
    let leader = r.nullable_string()?;
    let current_state_timestamp_ms = if version >= 2 { r.i64()? } else { -1 };
    let count = r.array_len()?;
    let mut members = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let member_id = r.string()?;
        let group_instance_id = if version >= 3 { r.nullable_string()? } else { None };
        let client_id = r.string()?;
        let client_host = r.string()?;
        let rebalance_timeout_ms = if version >= 1 { r.i32()? } else { -1 };
        let session_timeout_ms = r.i32()?;
        let subscription = r.bytes()?;
        let assignment = r.bytes()?;
        r.skip_tagged_fields()?;
        members.push(MemberMetadata {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    r.skip_tagged_fields()?;
    Ok(GroupMetadataValue { protocol_type, generation, protocol, leader, current_state_timestamp_ms, members })
}

fn put_string(buf: &mut BytesMut, text: &str) {
    buf.put_i16(i16::try_from(text.len()).expect("strings of records fit i16"));
    buf.put_slice(text.as_bytes());
}

fn put_nullable_string(buf: &mut BytesMut, text: Option<&str>) {
    match text {
        Some(text) => put_string(buf, text),
        None => buf.put_i16(-1),
    }
}

fn put_bytes(buf: &mut BytesMut, bytes: &[u8]) {
    buf.put_i32(i32::try_from(bytes.len()).expect("bytes of records fit i32"));
    buf.put_slice(bytes);
}

/// Reads Kafka's primitive types, classic or flexible (compact) encoding.
struct Reader<'a> {
    buf: &'a [u8],
    flexible: bool,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], flexible: bool) -> Self {
        Self { buf, flexible }
    }

    fn need(&self, n: usize) -> Result<(), RecordError> {
        if self.buf.remaining() < n {
            return Err(RecordError::Truncated);
        }
        Ok(())
    }

    fn i16(&mut self) -> Result<i16, RecordError> {
        self.need(2)?;
        Ok(self.buf.get_i16())
    }

    fn i32(&mut self) -> Result<i32, RecordError> {
        self.need(4)?;
        Ok(self.buf.get_i32())
    }

    fn i64(&mut self) -> Result<i64, RecordError> {
        self.need(8)?;
        Ok(self.buf.get_i64())
    }

    fn unsigned_varint(&mut self) -> Result<u32, RecordError> {
        let mut value = 0u32;
        for shift in (0..35).step_by(7) {
            self.need(1)?;
            let byte = self.buf.get_u8();
            value |= u32::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(RecordError::Truncated)
    }

    /// A length, or None for null.
    fn length(&mut self, classic: impl FnOnce(&mut Self) -> Result<i64, RecordError>) -> Result<Option<usize>, RecordError> {
        let len = if self.flexible { i64::from(self.unsigned_varint()?) - 1 } else { classic(self)? };
        Ok(usize::try_from(len).ok())
    }

    fn raw(&mut self, len: usize) -> Result<&'a [u8], RecordError> {
        self.need(len)?;
        let (head, tail) = self.buf.split_at(len);
        self.buf = tail;
        Ok(head)
    }

    fn nullable_string(&mut self) -> Result<Option<String>, RecordError> {
        let Some(len) = self.length(|r| r.i16().map(i64::from))? else { return Ok(None) };
        let raw = self.raw(len)?;
        std::str::from_utf8(raw).map(|s| Some(s.to_owned())).map_err(|_| RecordError::NotUtf8)
    }

    fn string(&mut self) -> Result<String, RecordError> {
        self.nullable_string()?.ok_or(RecordError::UnexpectedNull("string"))
    }

    fn bytes(&mut self) -> Result<Bytes, RecordError> {
        let len = self.length(|r| r.i32().map(i64::from))?.ok_or(RecordError::UnexpectedNull("bytes"))?;
        Ok(Bytes::copy_from_slice(self.raw(len)?))
    }

    fn array_len(&mut self) -> Result<usize, RecordError> {
        self.length(|r| r.i32().map(i64::from))?.ok_or(RecordError::UnexpectedNull("array"))
    }

    fn skip_tagged_fields(&mut self) -> Result<(), RecordError> {
        if !self.flexible {
            return Ok(());
        }
        for _ in 0..self.unsigned_varint()? {
            let _tag = self.unsigned_varint()?;
            let size = self.unsigned_varint()?;
            self.raw(usize::try_from(size).map_err(|_| RecordError::Truncated)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group_value(members: usize) -> GroupMetadataValue {
        GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 7,
            protocol: Some("range".into()),
            leader: Some("m-0".into()),
            current_state_timestamp_ms: 1_700_000_000_000,
            members: (0..members)
                .map(|i| MemberMetadata {
                    member_id: format!("m-{i}"),
                    group_instance_id: (i % 2 == 1).then(|| format!("instance-{i}")),
                    client_id: "rdkafka".into(),
                    client_host: "/127.0.0.1".into(),
                    rebalance_timeout_ms: 300_000,
                    session_timeout_ms: 45_000,
                    subscription: Bytes::from(vec![i as u8; i]),
                    assignment: Bytes::from(vec![0xA5; 3 * i]),
                })
                .collect(),
        }
    }

    #[test]
    fn offset_commit_records_round_trip_in_both_written_versions() {
        let key = RecordKey::OffsetCommit { group: "g".into(), topic: "orders".into(), partition: 4 };
        for expire in [None, Some(1234)] {
            let value = OffsetCommitValue {
                offset: 42,
                leader_epoch: if expire.is_some() { -1 } else { 3 },
                metadata: "meta".into(),
                commit_timestamp_ms: 99,
                expire_timestamp_ms: expire,
            };
            let record = decode_record(Some(&encode_key(&key)), Some(&encode_offset_commit_value(&value))).unwrap();
            let expected = CoordinatorRecord::OffsetCommit { group: "g".into(), topic: "orders".into(), partition: 4, value: Some(value) };
            assert_eq!(record, Some(expected));
        }
    }

    #[test]
    fn group_metadata_records_round_trip_for_any_member_count() {
        for members in [0, 1, 2, 17] {
            let value = group_value(members);
            let key = encode_key(&RecordKey::GroupMetadata { group: "g".into() });
            let record = decode_record(Some(&key), Some(&encode_group_metadata_value(&value))).unwrap();
            assert_eq!(record, Some(CoordinatorRecord::GroupMetadata { group: "g".into(), value: Some(value) }));
        }
    }

    #[test]
    fn a_null_value_is_a_tombstone() {
        let key = encode_key(&RecordKey::GroupMetadata { group: "gone".into() });
        assert_eq!(decode_record(Some(&key), None).unwrap(), Some(CoordinatorRecord::GroupMetadata { group: "gone".into(), value: None }));
    }

    #[test]
    fn the_key_layout_is_kafkas() {
        let key = encode_key(&RecordKey::OffsetCommit { group: "g".into(), topic: "t".into(), partition: 1 });
        assert_eq!(&key[..], &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 1]);
        let value = OffsetCommitValue { offset: 5, leader_epoch: -1, metadata: String::new(), commit_timestamp_ms: 6, expire_timestamp_ms: None };
        let encoded = encode_offset_commit_value(&value);
        assert_eq!(&encoded[..2], &[0, 3]);
        assert_eq!(encoded.len(), 2 + 8 + 4 + 2 + 8);
    }

    #[test]
    fn a_flexible_v4_value_decodes() {
        // OffsetCommitValue v4: offset, leader epoch, compact string "ab", timestamp, no tags.
        let mut buf = BytesMut::new();
        buf.put_i16(4);
        buf.put_i64(10);
        buf.put_i32(2);
        buf.put_u8(3);
        buf.put_slice(b"ab");
        buf.put_i64(77);
        buf.put_u8(1);
        buf.put_u8(0);
        buf.put_u8(1);
        buf.put_u8(9);
        let key = encode_key(&RecordKey::OffsetCommit { group: "g".into(), topic: "t".into(), partition: 0 });
        let Some(CoordinatorRecord::OffsetCommit { value: Some(value), .. }) = decode_record(Some(&key), Some(&buf)).unwrap() else {
            panic!("an offset commit");
        };
        assert_eq!((value.offset, value.leader_epoch, value.metadata.as_str(), value.commit_timestamp_ms), (10, 2, "ab", 77));
    }

    #[test]
    fn new_protocol_records_are_skipped_and_garbage_is_an_error() {
        assert_eq!(decode_record(Some(&[0, 3, 0, 1, b'g']), Some(b"x")).unwrap(), None);
        assert_eq!(decode_record(Some(&[0, 1, 0, 9, b'g']), None), Err(RecordError::Truncated));
        assert_eq!(decode_record(None, None), Err(RecordError::NullKey));
        let key = encode_key(&RecordKey::GroupMetadata { group: "g".into() });
        assert!(matches!(decode_record(Some(&key), Some(&[0, 9])), Err(RecordError::UnknownVersion { version: 9, .. })));
        let value = encode_group_metadata_value(&group_value(3));
        for cut in 0..value.len() {
            assert!(decode_record(Some(&key), Some(&value[..cut])).is_err(), "cut at {cut}");
        }
    }
}
