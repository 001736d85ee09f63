//! Framing a response: size prefix, response header (its version follows the API's), body.
//!
//! A response is encoded as a list of byte strings written one after another. Byte strings the
//! body already holds and names as `shared` (a Fetch response's record batches, straight from the
//! tail cache or a catch-up read) go into the list as they are instead of being copied into the
//! encoded buffer: a catch-up fetch of several MiB is then a few hundred bytes of encoding, not
//! a copy that holds the shard's core for half a millisecond.

use std::ops::Range;

use bytes::buf::UninitSlice;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::buf::ByteBufMut;
use kafka_protocol::protocol::Encodable;

/// Shared byte strings shorter than this are copied: a part costs a write of its own.
pub const SHARED_MIN_BYTES: usize = 16 << 10;

/// An encoded response: its parts, written in order, make the frame.
#[derive(Debug, Default)]
pub struct ResponseFrame {
    parts: Vec<Bytes>,
    len: usize,
}

impl ResponseFrame {
    /// The frame's length in bytes, size prefix included.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn parts(&self) -> &[Bytes] {
        &self.parts
    }

    /// The frame as one byte string (copies when it has several parts).
    #[cfg(test)]
    pub fn to_bytes(&self) -> Bytes {
        match self.parts.as_slice() {
            [one] => one.clone(),
            parts => parts.concat().into(),
        }
    }
}

/// Encodes `body` at `version` as a complete frame, referencing rather than copying the byte
/// strings of `shared` (in the order the body encodes them; see [`FrameBuf`]). Fails only if
/// the body does not fit the version (a bug: handlers build bodies for the version they were
/// asked).
pub fn encode_response<R: Encodable>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &R,
    shared: &[Bytes],
) -> Result<ResponseFrame, anyhow::Error> {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let header_version = api_key.response_header_version(version);
    let size = header.compute_size(header_version)? + body.compute_size(version)?;
    let referenced: usize = shared.iter().filter(|part| is_referenced(part)).map(Bytes::len).sum();
    let mut buf = FrameBuf::new(4 + size.saturating_sub(referenced), shared);
    buf.put_i32(i32::try_from(size)?);
    header.encode(&mut buf, header_version)?;
    body.encode(&mut buf, version)?;
    let frame = buf.finish();
    anyhow::ensure!(frame.len == 4 + size, "encoded {} bytes, computed {}", frame.len, 4 + size);
    Ok(frame)
}

/// Whether a shared byte string goes out as a part of its own rather than copied.
fn is_referenced(part: &[u8]) -> bool {
    part.len() >= SHARED_MIN_BYTES
}

/// The buffer a response is encoded into. A `put_slice` of exactly the next shared byte
/// string (the same memory: kafka-protocol writes a `Bytes` field with one `put_slice` of its
/// contents) closes the part being written and adds the shared string as a part of its own;
/// anything else is copied. Offsets (kafka-protocol's `ByteBufMut`) count the whole frame.
struct FrameBuf<'a> {
    parts: Vec<Bytes>,
    /// Bytes in `parts`.
    closed: usize,
    current: BytesMut,
    shared: &'a [Bytes],
}

impl<'a> FrameBuf<'a> {
    fn new(capacity: usize, shared: &'a [Bytes]) -> Self {
        Self { parts: Vec::with_capacity(2 * shared.len() + 1), closed: 0, current: BytesMut::with_capacity(capacity), shared }
    }

    fn close_current(&mut self) {
        if !self.current.is_empty() {
            let part = self.current.split().freeze();
            self.closed += part.len();
            self.parts.push(part);
        }
    }

    fn finish(mut self) -> ResponseFrame {
        self.close_current();
        ResponseFrame { len: self.closed, parts: self.parts }
    }

    /// Where `r`, a range of the whole frame, lies in `current`. Only gaps use ranges, and
    /// only while the part they are in is still open: message encoders use none.
    fn local(&self, r: Range<usize>) -> Range<usize> {
        assert!(r.start >= self.closed, "range {r:?} reaches into a closed part of the frame");
        r.start - self.closed..r.end - self.closed
    }
}

// SAFETY: kafka-protocol's ByteBufMut requires BufMut, an unsafe trait. Every method forwards
// to `current`, a BytesMut, whose BufMut implementation upholds the trait's contract
// (`put_slice` only chooses between adding a whole part and BytesMut's own copy).
#[allow(unsafe_code)]
unsafe impl BufMut for FrameBuf<'_> {
    fn remaining_mut(&self) -> usize {
        self.current.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller has initialised `cnt` bytes of `chunk_mut`, which is current's.
        unsafe { self.current.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.current.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        if let Some((next, rest)) = self.shared.split_first() {
            if next.as_ptr() == src.as_ptr() && next.len() == src.len() {
                self.shared = rest;
                if is_referenced(src) {
                    self.close_current();
                    self.closed += next.len();
                    self.parts.push(next.clone());
                    return;
                }
            }
        }
        self.current.extend_from_slice(src);
    }
}

impl ByteBufMut for FrameBuf<'_> {
    fn offset(&self) -> usize {
        self.closed + self.current.len()
    }

    fn seek(&mut self, offset: usize) {
        let local = self.local(offset..offset);
        self.current.resize(local.start, 0);
    }

    fn range(&mut self, r: Range<usize>) -> &mut [u8] {
        let local = self.local(r);
        &mut self.current[local]
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::{FetchResponse, TopicName};
    use kafka_protocol::protocol::StrBytes;

    use super::*;

    fn fetch_response(records: &[Bytes]) -> FetchResponse {
        let partitions = records
            .iter()
            .enumerate()
            .map(|(i, r)| PartitionData::default().with_partition_index(i as i32).with_records(Some(r.clone())))
            .collect();
        FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
            .with_topic(TopicName(StrBytes::from_static_str("t")))
            .with_partitions(partitions)])
    }

    #[test]
    fn shared_records_are_parts_of_their_own_and_the_frame_matches_a_plain_encoding() {
        let records = [Bytes::from(vec![7u8; 40 << 10]), Bytes::from(vec![1u8; 100]), Bytes::from(vec![9u8; 20 << 10])];
        let response = fetch_response(&records);
        for version in [4, 11, 12, 13] {
            let plain = encode_response(ApiKey::Fetch, version, 42, &response, &[]).unwrap();
            let shared = encode_response(ApiKey::Fetch, version, 42, &response, &records).unwrap();
            assert_eq!(plain.parts().len(), 1);
            assert_eq!(shared.to_bytes(), plain.to_bytes(), "version {version}");
            assert_eq!(shared.len(), plain.len());
            // The two large record sets are the very same memory; the small one was copied.
            let referenced: Vec<_> = shared.parts().iter().filter(|p| records.iter().any(|r| r.as_ptr() == p.as_ptr())).collect();
            assert_eq!(referenced.len(), 2, "version {version}");
            // Encoded bytes before, between and (flexible versions: tagged fields) after them.
            let expected_parts = if version >= 12 { 5 } else { 4 };
            assert_eq!(shared.parts().len(), expected_parts, "version {version}");
        }
    }

    #[test]
    fn shared_strings_out_of_order_are_copied() {
        let records = [Bytes::from(vec![7u8; 40 << 10]), Bytes::from(vec![9u8; 20 << 10])];
        let response = fetch_response(&records);
        let reversed = [records[1].clone(), records[0].clone()];
        let plain = encode_response(ApiKey::Fetch, 12, 1, &response, &[]).unwrap();
        let shared = encode_response(ApiKey::Fetch, 12, 1, &response, &reversed).unwrap();
        assert_eq!(shared.to_bytes(), plain.to_bytes());
    }
}
