//! The shard journal (`shard.journal.bytes`): one write-ahead file per shard that makes the
//! strict-mode appends of all the shard's partitions durable with one fdatasync per round.
//!
//! Without it each strict partition fdatasyncs its own segment after every write: with 16
//! partitions that is 16 fdatasyncs per round, each writing the inode whose size the append
//! changed, and each waiting behind a catch-up read in flight. With it a partition writer
//! writes its segment as before (O_DIRECT, no fdatasync), hands the same batches to the
//! journal and publishes (acks, wakes fetches) once the journal says they are durable. The
//! journal task takes what was handed to it since its last round (at most a quarter of the
//! ring: a round is one record), encodes it into one record
//! straight into the DMA buffer, writes it to its [`RingFile`] (a file created full of zeros
//! and then only overwritten, so its fdatasync has no metadata to write) and fdatasyncs once.
//!
//! Reuse: the ring is four quarters; a record never spans two. When the journal leaves a
//! quarter it starts a checkpoint: the active segment of every partition that journaled since
//! the last one is fdatasync'ed, one after another, through a second handle on the file and not
//! by its writer (which may itself be waiting for the journal: asking it would deadlock); the
//! writer persists index entries at its own fdatasyncs (roll, close). The journal enters a
//! quarter only once the checkpoint started when it last left that quarter is done, so a
//! record is overwritten only after its batches are durable in their segment. A checkpoint has
//! three quarters of the journal's time to finish. A failed checkpoint or journal write fails
//! the journal: it is out of use until the restart, and every partition whose batches were
//! waiting for it, and every later round, fdatasyncs its own segment instead (which also covers
//! what it had journaled); the journal's records stay for the replay.
//!
//! File: a header page (magic `SJNF`, a random nonce, its crc32c), then the ring. Record (page
//! aligned, one per round): magic `SJNL`, crc32c (seeded with the nonce) of everything after
//! it, sequence number (consecutive), payload length, entry count, then entries: topic id (16
//! bytes), partition (i32), topic name (u16 length + bytes), batches (u32 length + the stored
//! batches).
//!
//! On the bench VM it measured slower end to end than an fdatasync per partition, so it is off
//! by default (docs/benchmarks.md, *Levers measured*).
//!
//! Files: `<log.dirs>/journal/<generation>-<shard>-of-<shards>.journal`. Each start is a new
//! generation (one more than any file found). Before serving, every shard reads the journal
//! files of earlier generations ([`Journal::load`]), keeps the entries of the partitions it
//! owns, and each partition, after its own recovery, appends those batches past its recovered
//! end and fdatasyncs them. Once every partition with entries has, shard 0 deletes the earlier
//! generations; a partition whose open failed keeps them (and its entries, for a later open).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::rc::{Rc, Weak};

use bytes::{Buf, BufMut, Bytes};
use event_listener::Event;
use strand_io::{fs, FileReader, IoError, IoMode, RingFile, PAGE_BYTES};
use strand_shards::task::{spawn_local, Task};
use tracing::{info, warn};
use uuid::Uuid;

use super::PartitionLog;

/// The journal's directory under `log.dirs`.
pub const JOURNAL_DIR: &str = "journal";

const MAGIC: &[u8; 4] = b"SJNL";
/// magic, crc, sequence, payload length, entry count.
const RECORD_HEADER_BYTES: usize = 4 + 4 + 8 + 4 + 4;
const QUARTERS: u64 = 4;
/// Bytes read at a time when a journal file is replayed.
const REPLAY_READ_BYTES: usize = 1 << 20;

/// Which partition a journal entry belongs to: a recreated topic of the same name has a new id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JournalKey {
    pub topic: String,
    pub partition: i32,
    pub topic_id: Uuid,
}

impl JournalKey {
    /// The entry prefix: topic id, partition, topic name.
    pub(super) fn encode(&self) -> Bytes {
        let name = self.topic.as_bytes();
        let mut out = Vec::with_capacity(16 + 4 + 2 + name.len());
        out.put_slice(self.topic_id.as_bytes());
        out.put_i32(self.partition);
        out.put_u16(u16::try_from(name.len()).expect("topic names are at most 249 bytes"));
        out.put_slice(name);
        Bytes::from(out)
    }
}

/// Per partition (topic, index): the topic id and batches of each entry, oldest first.
type ReplayEntries = HashMap<(String, i32), Vec<(Uuid, Bytes)>>;

/// Batches one partition writer hands the journal in one round.
struct Submission {
    /// Its place in the queue: it is durable once the journal's durable ticket reaches it.
    ticket: u64,
    key: Bytes,
    batches: Vec<Bytes>,
}

impl Submission {
    fn encoded_len(&self) -> usize {
        self.key.len() + 4 + self.batches.iter().map(Bytes::len).sum::<usize>()
    }
}

/// Where the next record goes.
struct Ring {
    file: Rc<RingFile>,
    /// The quarter being written, and where in the file the last record ended.
    quarter: u64,
    position: u64,
    next_sequence: u64,
    /// Per quarter: the checkpoint started when the journal last left it.
    checkpoints: Vec<Option<Task<Result<(), String>>>>,
}

pub struct Journal {
    bytes: u64,
    dir: PathBuf,
    /// This start's generation; earlier ones are replayed.
    generation: Cell<u64>,
    /// Entries of earlier generations for partitions this shard owns, until each opens.
    replay: RefCell<ReplayEntries>,
    ring: RefCell<Option<Ring>>,
    /// 0 until started.
    quarter_bytes: Cell<u64>,
    active: Cell<bool>,
    queue: RefCell<VecDeque<Submission>>,
    /// The next submission's ticket, and the last ticket made durable (a round writes a prefix
    /// of the queue).
    next_ticket: Cell<u64>,
    durable_ticket: Cell<u64>,
    /// Written in the file's first page and mixed into every record's CRC, so bytes that only
    /// look like a record (a stale one of another generation, or a producer's value that embeds
    /// one) are never replayed.
    nonce: Cell<u64>,
    failure: RefCell<Option<String>>,
    /// Partitions that journaled since the last checkpoint started.
    dirty: RefCell<Vec<Weak<PartitionLog>>>,
    work: Event,
    progress: Event,
    task: RefCell<Option<Task<()>>>,
    rounds: Cell<u64>,
    checkpoints_started: Cell<u64>,
}

impl Journal {
    /// A journal of `bytes` (0: none) under `log_dirs`, not started.
    pub fn new(log_dirs: &Path, bytes: u64) -> Self {
        Self {
            bytes,
            dir: log_dirs.join(JOURNAL_DIR),
            generation: Cell::new(1),
            replay: RefCell::new(HashMap::new()),
            ring: RefCell::new(None),
            quarter_bytes: Cell::new(0),
            active: Cell::new(false),
            queue: RefCell::new(VecDeque::new()),
            next_ticket: Cell::new(1),
            durable_ticket: Cell::new(0),
            nonce: Cell::new(0),
            failure: RefCell::new(None),
            dirty: RefCell::new(Vec::new()),
            work: Event::new(),
            progress: Event::new(),
            task: RefCell::new(None),
            rounds: Cell::new(0),
            checkpoints_started: Cell::new(0),
        }
    }

    /// Rounds written and checkpoints started since the journal started.
    pub fn stats(&self) -> (u64, u64) {
        (self.rounds.get(), self.checkpoints_started.get())
    }

    /// Reads the journal files of earlier starts and keeps the entries of the partitions
    /// `owns` says are this shard's, for [`Journal::take_replay`]; sets this start's
    /// generation. Runs before the shard opens any partition. A shard of `shard_count` reads
    /// only its own file of a generation written by as many shards (placement is the same).
    /// Each file is read whole: `shard.journal.bytes` is at most 1 GiB.
    pub async fn load(&self, shard: usize, shard_count: usize, owns: impl Fn(&str, i32) -> bool) -> Result<(), IoError> {
        let files = journal_files(&self.dir).await?;
        let generation = files.iter().map(|f| f.generation).max().unwrap_or(0) + 1;
        self.generation.set(generation);
        let mut replay = ReplayEntries::new();
        for file in &files {
            if file.shard_count == shard_count && file.shard != shard {
                continue;
            }
            let records = read_records(&file.path).await?;
            let mut batches = 0usize;
            for (key, bytes) in records.iter().flat_map(decode_entries) {
                if owns(&key.topic, key.partition) {
                    batches += 1;
                    replay.entry((key.topic, key.partition)).or_default().push((key.topic_id, bytes));
                }
            }
            info!(file = %file.path.display(), records = records.len(), entries = batches, "journal read for replay");
        }
        *self.replay.borrow_mut() = replay;
        Ok(())
    }

    /// The batch runs of earlier generations for `key`, oldest first (each a run of whole
    /// batches as written), without entries of an earlier topic of the same name. They stay
    /// until [`Journal::replayed`] says they are durable in the partition's log.
    pub fn replay_for(&self, key: &JournalKey) -> Vec<Bytes> {
        let replay = self.replay.borrow();
        let entries = replay.get(&(key.topic.clone(), key.partition)).map(Vec::as_slice).unwrap_or_default();
        entries.iter().filter(|(id, _)| *id == key.topic_id).map(|(_, bytes)| bytes.clone()).collect()
    }

    /// `key`'s partition holds what [`Journal::replay_for`] gave it, durably.
    pub fn replayed(&self, key: &JournalKey) {
        self.replay.borrow_mut().remove(&(key.topic.clone(), key.partition));
    }

    /// Partitions with replay entries that were never taken (their open failed), as
    /// (topic, partition, topic id) with the entry count.
    pub fn untaken_replay(&self) -> Vec<(String, i32, Uuid, usize)> {
        let replay = self.replay.borrow();
        replay
            .iter()
            .flat_map(|((topic, partition), entries)| {
                let mut ids: Vec<Uuid> = entries.iter().map(|(id, _)| *id).collect();
                ids.sort();
                ids.dedup();
                ids.into_iter().map(move |id| {
                    let count = entries.iter().filter(|(e, _)| *e == id).count();
                    (topic.clone(), *partition, id, count)
                })
            })
            .collect()
    }

    /// Keeps only the replay entries `keep` says a partition may still open with (one whose
    /// open failed, to be retried); the others belong to partitions that no longer exist.
    pub fn retain_replay(&self, keep: impl Fn(&str, i32, Uuid) -> bool) {
        let mut replay = self.replay.borrow_mut();
        for ((topic, partition), entries) in replay.iter_mut() {
            entries.retain(|(id, _)| keep(topic, *partition, *id));
        }
        replay.retain(|_, entries| !entries.is_empty());
    }

    /// Creates this start's file (`shard`'s of this generation) and starts the journal task.
    /// With `shard.journal.bytes` 0 it does nothing.
    pub async fn start(self: &Rc<Self>, shard: usize, shard_count: usize) -> Result<(), IoError> {
        if self.bytes == 0 {
            return Ok(());
        }
        fs::create_dir_all(&self.dir).await?;
        let path = self.dir.join(format!("{}-{shard}-of-{shard_count}.journal", self.generation.get()));
        let file = RingFile::create(&path, self.bytes).await?;
        let nonce = Uuid::new_v4().as_u64_pair().0;
        let page = usize::try_from(PAGE_BYTES).expect("small");
        file.write_with(0, page, |buf| encode_file_header(buf, nonce)).await?;
        file.sync().await?;
        fs::sync_dir(&self.dir).await?;
        self.nonce.set(nonce);
        // The ring is everything after the header page.
        self.quarter_bytes.set((file.size() - PAGE_BYTES) / QUARTERS / PAGE_BYTES * PAGE_BYTES);
        *self.ring.borrow_mut() = Some(Ring {
            file: Rc::new(file),
            quarter: 0,
            position: 0,
            next_sequence: 1,
            checkpoints: (0..QUARTERS).map(|_| None).collect(),
        });
        self.active.set(true);
        let task = spawn_local(Rc::clone(self).run());
        *self.task.borrow_mut() = Some(task);
        info!(file = %path.display(), bytes = self.bytes, "journal started");
        Ok(())
    }

    /// Deletes the journal files of earlier generations (every shard has replayed them).
    pub async fn delete_earlier_generations(&self) -> Result<(), IoError> {
        let files = journal_files(&self.dir).await?;
        let mut deleted = 0usize;
        for file in files.iter().filter(|f| f.generation < self.generation.get()) {
            fs::remove_file(&file.path).await?;
            deleted += 1;
        }
        if deleted > 0 {
            fs::sync_dir(&self.dir).await?;
            info!(files = deleted, "replayed journal files deleted");
        }
        Ok(())
    }

    /// Whether an append of `bytes` batch bytes goes through the journal: it is running and
    /// one record holds it (larger rounds fdatasync their segment instead).
    pub fn takes(&self, bytes: usize) -> bool {
        self.active.get() && self.max_entry_bytes().is_some_and(|max| bytes <= max)
    }

    /// The most batch bytes one entry may hold: a record fills at most a quarter.
    fn max_entry_bytes(&self) -> Option<usize> {
        // The entry header: topic id, partition, a 249-byte name, the batches' length.
        let quarter = usize::try_from(self.quarter_bytes.get()).ok().filter(|q| *q > 0)?;
        Some(quarter - RECORD_HEADER_BYTES - (16 + 4 + 2 + 249 + 4))
    }

    fn file(&self) -> Rc<RingFile> {
        Rc::clone(&self.ring.borrow().as_ref().expect("a running journal has a ring").file)
    }

    /// Makes `batches` of `log` durable in the journal; returns once they are.
    pub async fn append(&self, log: &Rc<PartitionLog>, key: &Bytes, batches: Vec<Bytes>) -> Result<(), String> {
        if let Some(failure) = self.failure.borrow().as_ref() {
            return Err(failure.clone());
        }
        if !log.journal_dirty.replace(true) {
            self.dirty.borrow_mut().push(Rc::downgrade(log));
        }
        let ticket = self.next_ticket.replace(self.next_ticket.get() + 1);
        self.queue.borrow_mut().push_back(Submission { ticket, key: key.clone(), batches });
        self.work.notify(1);
        loop {
            let listener = self.progress.listen();
            if self.durable_ticket.get() >= ticket {
                return Ok(());
            }
            if let Some(failure) = self.failure.borrow().as_ref() {
                return Err(failure.clone());
            }
            listener.await;
        }
    }

    async fn run(self: Rc<Self>) {
        loop {
            let listener = self.work.listen();
            let record = self.take_record();
            let Some(last) = record.last().map(|s| s.ticket) else {
                listener.await;
                continue;
            };
            let len = RECORD_HEADER_BYTES + record.iter().map(Submission::encoded_len).sum::<usize>();
            let written = match self.write_record(record, len).await {
                Ok(()) => self.file().sync().await.map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            if let Err(e) = written {
                warn!(error = %e, "journal failed: its partitions fdatasync their own segments until the restart");
                *self.failure.borrow_mut() = Some(format!("journal: {e}"));
                self.active.set(false);
                self.queue.borrow_mut().clear();
                self.progress.notify(usize::MAX);
                return;
            }
            self.rounds.set(self.rounds.get() + 1);
            self.durable_ticket.set(last);
            self.progress.notify(usize::MAX);
        }
    }

    /// The queue's head, as much of it as one record holds: a round is one record, so the
    /// records on disk are each whole or torn, never a round half durable.
    fn take_record(&self) -> Vec<Submission> {
        let max = usize::try_from(self.quarter_bytes.get()).expect("a quarter fits in memory");
        let mut queue = self.queue.borrow_mut();
        let mut len = RECORD_HEADER_BYTES;
        let mut count = 0;
        for submission in queue.iter() {
            len += submission.encoded_len();
            if count > 0 && len > max {
                break;
            }
            count += 1;
        }
        queue.drain(..count).collect()
    }

    async fn write_record(&self, entries: Vec<Submission>, len: usize) -> Result<(), String> {
        let padded = usize::try_from(align_up(len as u64)).expect("a record fits in memory");
        let (position, sequence) = self.place(padded as u64).await?;
        let nonce = self.nonce.get();
        self.file()
            .write_with(PAGE_BYTES + position, padded, |buf| encode_record(buf, nonce, sequence, &entries, len))
            .await
            .map_err(|e| e.to_string())
    }

    /// Where in the ring (after the header page) a record of `len` bytes goes, and its sequence
    /// number: after the last one, or at the start of the next quarter (starting a checkpoint
    /// of the one left, and waiting for the one that lets the next quarter be overwritten).
    async fn place(&self, len: u64) -> Result<(u64, u64), String> {
        let (position, quarter) = {
            let ring = self.ring.borrow();
            let ring = ring.as_ref().expect("a running journal has a ring");
            (ring.position, ring.quarter)
        };
        let (position, entering) = placement(position, quarter, len, self.quarter_bytes.get());
        if let Some(entering) = entering {
            let checkpoint = self.start_checkpoint();
            let waited = {
                let mut ring = self.ring.borrow_mut();
                let ring = ring.as_mut().expect("a running journal has a ring");
                ring.checkpoints[usize::try_from(quarter).expect("small")] = Some(checkpoint);
                ring.quarter = entering;
                ring.checkpoints[usize::try_from(entering).expect("small")].take()
            };
            if let Some(waited) = waited {
                waited.await?;
            }
        }
        let mut ring = self.ring.borrow_mut();
        let ring = ring.as_mut().expect("a running journal has a ring");
        ring.position = position + len;
        let sequence = ring.next_sequence;
        ring.next_sequence += 1;
        Ok((position, sequence))
    }

    /// Every partition that journaled since the last checkpoint fdatasyncs its segment.
    fn start_checkpoint(&self) -> Task<Result<(), String>> {
        self.checkpoints_started.set(self.checkpoints_started.get() + 1);
        let logs: Vec<Rc<PartitionLog>> = std::mem::take(&mut *self.dirty.borrow_mut())
            .into_iter()
            .filter_map(|log| log.upgrade())
            .inspect(|log| log.journal_dirty.set(false))
            .collect();
        spawn_local(async move {
            for log in logs {
                log.sync_segment().await?;
            }
            Ok(())
        })
    }
}

/// Where a record of `len` bytes goes when the last one ended at `position` in `quarter`: right
/// there if it fits in the quarter, else at the start of the next quarter, which it enters.
fn placement(position: u64, quarter: u64, len: u64, quarter_bytes: u64) -> (u64, Option<u64>) {
    if position + len <= (quarter + 1) * quarter_bytes {
        (position, None)
    } else {
        let next = (quarter + 1) % QUARTERS;
        (next * quarter_bytes, Some(next))
    }
}

fn align_up(n: u64) -> u64 {
    n.div_ceil(PAGE_BYTES) * PAGE_BYTES
}

const FILE_MAGIC: &[u8; 4] = b"SJNF";

/// The file's first page: magic, nonce, crc32c of the nonce.
fn encode_file_header(buf: &mut [u8], nonce: u64) {
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
fn encode_record(buf: &mut [u8], nonce: u64, sequence: u64, entries: &[Submission], len: usize) {
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
fn decode_entries(payload: &Bytes) -> Vec<(JournalKey, Bytes)> {
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
fn records_to_replay(file: &[u8]) -> Vec<Bytes> {
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

async fn read_records(path: &Path) -> Result<Vec<Bytes>, IoError> {
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

struct JournalFile {
    path: PathBuf,
    generation: u64,
    shard: usize,
    shard_count: usize,
}

/// The journal files in `dir`, named `<generation>-<shard>-of-<shard count>.journal`.
async fn journal_files(dir: &Path) -> Result<Vec<JournalFile>, IoError> {
    fs::create_dir_all(dir).await?;
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
    fn a_record_goes_after_the_last_one_or_into_the_next_quarter_whole() {
        const Q: u64 = 1 << 20;
        assert_eq!(placement(0, 0, Q, Q), (0, None), "a record may fill a quarter");
        assert_eq!(placement(Q - 4096, 0, 4096, Q), (Q - 4096, None));
        assert_eq!(placement(Q - 4096, 0, 8192, Q), (Q, Some(1)), "records never span quarters");
        // A quarter filled to its last byte: the next record enters the next quarter (the
        // position alone would say it is already in it).
        assert_eq!(placement(2 * Q, 1, 4096, Q), (2 * Q, Some(2)));
        assert_eq!(placement(4 * Q, 3, 4096, Q), (0, Some(0)), "the last quarter wraps to the first");
        assert_eq!(placement(3 * Q + 8192, 3, Q, Q), (0, Some(0)));
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
