//! Decompressing a produced batch's records, bounded. A batch of under a MiB may decompress to
//! gigabytes (a compression bomb), and snappy's block headers claim their length before a byte
//! is decoded, so output stops at `limit` bytes (`message.decompressed.max.bytes`) and the
//! batch is refused. The kafka-protocol crate's codecs have no such bound; these use the same
//! codec crates through `Read::take`.

use std::io::Read;

/// Kafka's snappy framing (snappy-java's SnappyOutputStream): this header (magic, version,
/// compatible version), then blocks of a big-endian u32 length and raw snappy bytes.
const XERIAL_HEADER: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
const XERIAL_MAGIC_BYTES: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecompressError {
    #[error("unknown compression codec {0}")]
    UnknownCodec(i16),
    #[error("records decompress to more than {limit} bytes (message.decompressed.max.bytes)")]
    TooLarge { limit: usize },
    #[error("compressed records could not be read: {0}")]
    Corrupt(String),
}

/// The records compressed with `codec` (a batch's attributes: 1 gzip, 2 snappy, 3 lz4, 4 zstd)
/// in `compressed`, if they are at most `limit` bytes.
pub fn decompress(codec: i16, compressed: &[u8], limit: usize) -> Result<Vec<u8>, DecompressError> {
    match codec {
        1 => read_bounded(flate2::read::GzDecoder::new(compressed), limit),
        2 => snappy(compressed, limit),
        3 => read_bounded(lz4::Decoder::new(compressed).map_err(corrupt)?, limit),
        4 => read_bounded(zstd::stream::read::Decoder::new(compressed).map_err(corrupt)?, limit),
        other => Err(DecompressError::UnknownCodec(other)),
    }
}

fn read_bounded(reader: impl Read, limit: usize) -> Result<Vec<u8>, DecompressError> {
    let mut out = Vec::new();
    reader.take(limit as u64 + 1).read_to_end(&mut out).map_err(corrupt)?;
    within(out.len(), limit)?;
    Ok(out)
}

fn snappy(compressed: &[u8], limit: usize) -> Result<Vec<u8>, DecompressError> {
    let mut decoder = snap::raw::Decoder::new();
    if compressed.get(..XERIAL_MAGIC_BYTES) != Some(&XERIAL_HEADER[..XERIAL_MAGIC_BYTES]) {
        // Raw snappy without the framing, as snappy-java reads it too.
        within(snap::raw::decompress_len(compressed).map_err(corrupt)?, limit)?;
        return decoder.decompress_vec(compressed).map_err(corrupt);
    }
    let mut blocks = compressed.get(XERIAL_HEADER.len()..).ok_or_else(|| corrupt("snappy header cut short"))?;
    let mut out = Vec::new();
    while let Some((length, rest)) = blocks.split_first_chunk::<4>() {
        let length = u32::from_be_bytes(*length) as usize;
        let block = rest.get(..length).ok_or_else(|| corrupt("snappy block past the end"))?;
        let start = out.len();
        let end = start.saturating_add(snap::raw::decompress_len(block).map_err(corrupt)?);
        within(end, limit)?;
        out.resize(end, 0);
        decoder.decompress(block, &mut out[start..]).map_err(corrupt)?;
        blocks = &rest[length..];
    }
    if !blocks.is_empty() {
        return Err(corrupt("snappy block length cut short"));
    }
    Ok(out)
}

fn within(len: usize, limit: usize) -> Result<(), DecompressError> {
    if len > limit {
        return Err(DecompressError::TooLarge { limit });
    }
    Ok(())
}

fn corrupt(error: impl std::fmt::Display) -> DecompressError {
    DecompressError::Corrupt(error.to_string())
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};

    use super::*;

    /// `plain` compressed by the kafka-protocol crate's codec for `codec`, as a client sends it.
    fn compressed(codec: i16, plain: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        let write = |buf: &mut BytesMut| -> anyhow::Result<()> {
            buf.extend_from_slice(plain);
            Ok(())
        };
        match codec {
            1 => Gzip::compress(&mut out, write),
            2 => Snappy::compress(&mut out, write),
            3 => Lz4::compress(&mut out, write),
            _ => Zstd::compress(&mut out, write),
        }
        .unwrap();
        out.to_vec()
    }

    #[test]
    fn every_codec_reads_back_what_a_client_compressed_up_to_the_limit_and_not_past_it() {
        let plain: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for codec in 1..=4 {
            let bytes = compressed(codec, &plain);
            assert_eq!(decompress(codec, &bytes, plain.len()).unwrap(), plain, "codec {codec}");
            assert_eq!(decompress(codec, &bytes, plain.len() - 1), Err(DecompressError::TooLarge { limit: plain.len() - 1 }));
        }
    }

    #[test]
    fn a_bomb_is_refused_without_decompressing_it_whole() {
        // 64 MiB of zeros compress at least 16 times (snappy's blocks the least); a 1 MiB limit
        // stops each codec early.
        let zeros = vec![0u8; 64 << 20];
        for codec in 1..=4 {
            let bomb = compressed(codec, &zeros);
            assert!(bomb.len() * 16 < zeros.len(), "codec {codec}: {} bytes", bomb.len());
            assert_eq!(decompress(codec, &bomb, 1 << 20), Err(DecompressError::TooLarge { limit: 1 << 20 }));
        }
    }

    #[test]
    fn garbage_and_unknown_codecs_are_errors() {
        for codec in 1..=4 {
            assert!(matches!(decompress(codec, b"certainly not compressed", 1 << 20), Err(DecompressError::Corrupt(_))), "codec {codec}");
        }
        assert_eq!(decompress(5, b"", 1 << 20), Err(DecompressError::UnknownCodec(5)));
    }
}
