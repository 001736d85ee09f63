//! `strand dump segment FILE`: offline inspection of a partition's files with the broker's own
//! parsers. A `.log` lists every record batch (position, offsets, count, timestamps, size, CRC,
//! compression) and says how the file ends (clean, zeroed preallocated space, or damage); an
//! `.index` lists (relative offset, position) entries, a `.timeindex` (timestamp, relative
//! offset) entries, each marking where the broker's validity check would cut it.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use strand::log::{IndexBytes, OffsetIndex, TimeIndex};
use strand::protocol::record_batch::{verify_batch, BatchError, BatchHeader, LOG_OVERHEAD_BYTES};

use super::table::Table;
use super::time_text::format_ms;

#[derive(Args, Debug)]
pub struct DumpArgs {
    #[command(subcommand)]
    pub command: DumpCommand,
}

#[derive(Subcommand, Debug)]
pub enum DumpCommand {
    /// Print a segment file (.log, .index or .timeindex) of a partition directory.
    #[command(after_help = "Examples:\n  \
        strand dump segment strand-data/orders-0/00000000000000000000.log\n  \
        strand dump segment strand-data/orders-0/00000000000000000000.index")]
    Segment { file: PathBuf },
}

pub fn run(args: &DumpArgs) -> anyhow::Result<()> {
    let DumpCommand::Segment { file } = &args.command;
    let text = match file.extension().and_then(|e| e.to_str()) {
        Some("log") => dump_log(file)?,
        Some("index") => dump_offset_index(file)?,
        Some("timeindex") => dump_time_index(file)?,
        _ => anyhow::bail!("{}: expected a .log, .index or .timeindex file", file.display()),
    };
    std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes())?;
    Ok(())
}

/// The base offset in a segment file's name (20 digits), if it has one.
fn base_offset(path: &Path) -> Option<i64> {
    let stem = path.file_stem()?.to_str()?;
    (stem.len() == 20).then(|| stem.parse().ok())?
}

fn compression_name(header: &BatchHeader) -> String {
    match header.compression() {
        0 => "none".to_owned(),
        1 => "gzip".to_owned(),
        2 => "snappy".to_owned(),
        3 => "lz4".to_owned(),
        4 => "zstd".to_owned(),
        other => format!("unknown({other})"),
    }
}

/// How a batch's check came out: CRC ok or BAD, or what else is wrong.
fn check_text(batch: &[u8]) -> String {
    match verify_batch(batch) {
        Ok(_) => "ok".to_owned(),
        Err(BatchError::CrcMismatch) => "BAD".to_owned(),
        Err(other) => format!("ok ({other})"),
    }
}

pub fn dump_log(path: &Path) -> anyhow::Result<String> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let file_bytes = file.metadata()?.len();
    let mut table = Table::new(&[
        "POSITION", "BASE_OFFSET", "LAST_OFFSET", "COUNT", "BASE_TIMESTAMP", "MAX_TIMESTAMP", "SIZE", "CRC", "COMPRESSION",
    ]);
    let (mut position, mut batches, mut records, mut bad) = (0u64, 0u64, 0i64, 0u64);
    let ending = loop {
        if position >= file_bytes {
            break format!("end of file at position {position}");
        }
        let mut prefix = [0u8; LOG_OVERHEAD_BYTES];
        if file_bytes - position < LOG_OVERHEAD_BYTES as u64 {
            break format!("{} trailing bytes at position {position}: too short for a batch", file_bytes - position);
        }
        file.seek(SeekFrom::Start(position))?;
        file.read_exact(&mut prefix)?;
        if prefix.iter().all(|&b| b == 0) && rest_is_zero(&mut file, position)? {
            break format!("zeroed (preallocated) space from position {position} to {file_bytes}");
        }
        let length = i32::from_be_bytes(prefix[8..12].try_into().expect("4 bytes"));
        let total = usize::try_from(length).ok().and_then(|n| n.checked_add(LOG_OVERHEAD_BYTES));
        let Some(total) = total.filter(|&t| (t as u64) <= file_bytes - position) else {
            break format!("damage at position {position}: batch length {length} runs past the end of the file");
        };
        let mut batch = vec![0u8; total];
        file.seek(SeekFrom::Start(position))?;
        file.read_exact(&mut batch)?;
        let header = match BatchHeader::parse(&batch) {
            Ok(header) => header,
            Err(e) => break format!("damage at position {position}: {e}"),
        };
        let check = check_text(&batch);
        bad += u64::from(check != "ok");
        table.row(vec![
            position.to_string(),
            header.base_offset.to_string(),
            header.last_offset().to_string(),
            header.records_count.to_string(),
            format_ms(header.base_timestamp),
            format_ms(header.max_timestamp),
            total.to_string(),
            check,
            compression_name(&header),
        ]);
        batches += 1;
        records += i64::from(header.records_count);
        position += total as u64;
    };
    let mut out = format!("{} ({file_bytes} bytes)\n", path.display());
    if let Some(base) = base_offset(path) {
        let _ = writeln!(out, "segment base offset {base}");
    }
    out.push('\n');
    if !table.is_empty() {
        out.push_str(&table.render());
        out.push('\n');
    }
    let _ = writeln!(out, "{batches} batches, {records} records, {position} bytes of batches, {bad} failing their check");
    let _ = writeln!(out, "{ending}");
    Ok(out)
}

/// True when every byte from `position` to the end of the file is zero.
fn rest_is_zero(file: &mut File, position: u64) -> anyhow::Result<bool> {
    file.seek(SeekFrom::Start(position))?;
    let mut chunk = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut chunk)?;
        if n == 0 {
            return Ok(true);
        }
        if chunk[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
    }
}

fn read_index(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// The size of the `.log` beside an index, which bounds its valid positions.
fn sibling_log_bytes(path: &Path) -> Option<u64> {
    std::fs::metadata(path.with_extension("log")).ok().map(|m| m.len())
}

pub fn dump_offset_index(path: &Path) -> anyhow::Result<String> {
    let stored = read_index(path)?;
    let log_bytes = sibling_log_bytes(path);
    let valid = OffsetIndex::valid_prefix(&stored, log_bytes.unwrap_or(u64::MAX)).len() / 8;
    let index = OffsetIndex::from_bytes(IndexBytes::Owned(stored.clone()));
    let base = base_offset(path).unwrap_or(0);
    let mut table = Table::new(&["ENTRY", "RELATIVE_OFFSET", "OFFSET", "POSITION", "VALID"]);
    for i in 0..index.len() {
        let (relative, position) = index.entry(i);
        let ok = if i < valid { "yes" } else { "no" };
        table.row(vec![i.to_string(), relative.to_string(), (base + i64::from(relative)).to_string(), position.to_string(), ok.to_owned()]);
    }
    Ok(index_text(path, stored.len(), 8, index.len(), valid, &table))
}

pub fn dump_time_index(path: &Path) -> anyhow::Result<String> {
    let stored = read_index(path)?;
    let valid = TimeIndex::valid_prefix(&stored, u32::MAX).len() / 12;
    let index = TimeIndex::from_bytes(IndexBytes::Owned(stored.clone()));
    let base = base_offset(path).unwrap_or(0);
    let mut table = Table::new(&["ENTRY", "TIMESTAMP", "TIME", "RELATIVE_OFFSET", "OFFSET", "VALID"]);
    for i in 0..index.len() {
        let (timestamp, relative) = index.entry(i);
        let ok = if i < valid { "yes" } else { "no" };
        table.row(vec![
            i.to_string(),
            timestamp.to_string(),
            format_ms(timestamp),
            relative.to_string(),
            (base + i64::from(relative)).to_string(),
            ok.to_owned(),
        ]);
    }
    Ok(index_text(path, stored.len(), 12, index.len(), valid, &table))
}

fn index_text(path: &Path, bytes: usize, entry_bytes: usize, entries: usize, valid: usize, table: &Table) -> String {
    let mut out = format!("{} ({bytes} bytes, {entry_bytes}-byte entries)\n\n", path.display());
    if !table.is_empty() {
        out.push_str(&table.render());
        out.push('\n');
    }
    let _ = writeln!(out, "{entries} entries, {valid} valid (the broker keeps the valid prefix)");
    if !bytes.is_multiple_of(entry_bytes) {
        let _ = writeln!(out, "{} trailing bytes: a torn entry", bytes % entry_bytes);
    }
    out
}

#[cfg(test)]
#[path = "dump_tests.rs"]
mod tests;
