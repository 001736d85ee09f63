//! The bytes of an index, in its on-disk encoding: owned and growing for the active segment,
//! memory-mapped for a sealed one, so sealed indexes cost the shard no heap.

use strand_io::MappedFile;

pub enum IndexBytes {
    Owned(Vec<u8>),
    Mapped(MappedFile),
}

impl Default for IndexBytes {
    fn default() -> Self {
        Self::Owned(Vec::new())
    }
}

impl IndexBytes {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Self::Owned(bytes) => bytes,
            Self::Mapped(map) => map.bytes(),
        }
    }

    pub fn push(&mut self, entry: &[u8]) {
        match self {
            Self::Owned(bytes) => bytes.extend_from_slice(entry),
            Self::Mapped(_) => panic!("a sealed segment's index is never appended to"),
        }
    }

    /// Heap bytes held (a mapped index holds none).
    pub fn heap_bytes(&self) -> usize {
        match self {
            Self::Owned(bytes) => bytes.capacity(),
            Self::Mapped(_) => 0,
        }
    }
}
