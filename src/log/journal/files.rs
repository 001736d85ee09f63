//! The journal's files: which there are, and reading one for replay.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use strand_io::{fs, FileReader, IoError, IoMode};

use super::record::records_to_replay;

/// Bytes read at a time when a journal file is replayed.
const REPLAY_READ_BYTES: usize = 1 << 20;

/// The payloads of the records a replay takes from the file at `path`.
pub(super) async fn read_records(path: &Path) -> Result<Vec<Bytes>, IoError> {
    let reader = FileReader::open(path, IoMode::Direct).await?;
    let size = usize::try_from(reader.size().await?).unwrap_or(usize::MAX);
    let mut file = Vec::with_capacity(size);
    while file.len() < size {
        let chunk = reader.read_at(file.len() as u64, REPLAY_READ_BYTES.min(size - file.len())).await?;
        if chunk.is_empty() {
            break;
        }
        file.extend_from_slice(&chunk);
    }
    Ok(records_to_replay(&file))
}

pub(super) struct JournalFile {
    pub path: PathBuf,
    pub generation: u64,
    pub shard: usize,
    pub shard_count: usize,
}

/// The journal files in `dir`, named `<generation>-<shard>-of-<shard count>.journal` (none
/// when `dir` does not exist: a broker that never ran with the journal has no directory).
pub(super) async fn journal_files(dir: &Path) -> Result<Vec<JournalFile>, IoError> {
    let mut files = Vec::new();
    for path in fs::list_dir(dir).await? {
        let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".journal")) else {
            continue;
        };
        let Some((generation, rest)) = name.split_once('-') else { continue };
        let Some((shard, shard_count)) = rest.split_once("-of-") else { continue };
        if let (Ok(generation), Ok(shard), Ok(shard_count)) = (generation.parse(), shard.parse(), shard_count.parse()) {
            files.push(JournalFile { path: path.clone(), generation, shard, shard_count });
        }
    }
    files.sort_by_key(|f| (f.generation, f.shard));
    Ok(files)
}
