//! Read-only memory maps of sealed files (segment indexes): lookups binary-search them without
//! holding the whole index in the shard's memory.

use std::path::Path;

use memmap2::Mmap;

use crate::fs::blocking;
use crate::{IoError, Result};

/// A read-only map of a file that is never written again (an empty file maps to no bytes).
pub struct MappedFile {
    map: Option<Mmap>,
}

impl MappedFile {
    /// Maps `path`. The open and mmap run on the blocking pool; later page faults read from the
    /// page cache, as Kafka's mapped indexes do.
    pub async fn open(path: &Path) -> Result<Self> {
        let owned = path.to_owned();
        let map = blocking(move || -> std::io::Result<Option<Mmap>> {
            let file = std::fs::File::open(&owned)?;
            if file.metadata()?.len() == 0 {
                return Ok(None);
            }
            // SAFETY: strand maps only sealed index files, which are never written, truncated or
            // replaced while mapped; deleting one (retention) keeps the mapping valid until it
            // is dropped.
            #[allow(unsafe_code)]
            let map = unsafe { Mmap::map(&file)? };
            Ok(Some(map))
        })
        .await
        .map_err(|e| IoError::os("map", path, e))?;
        Ok(Self { map })
    }

    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or_default()
    }
}
