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

use bytes::{BufMut, Bytes};
use event_listener::Event;
use strand_io::{fs, IoError, RingFile, PAGE_BYTES};
use strand_shards::task::{spawn_local, Task};
use tracing::{info, warn};
use uuid::Uuid;

use self::files::journal_files;
use self::record::{align_up, encode_file_header, encode_record, Submission, RECORD_HEADER_BYTES};
use super::PartitionLog;

mod files;
mod record;
mod replay;

/// The journal's directory under `log.dirs`.
pub const JOURNAL_DIR: &str = "journal";

const QUARTERS: u64 = 4;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
