//! What a shard's catch-up reads hold for fetches to come ([`super::CatchUpReads`]): slots of
//! bytes read, or being read, ahead of a consumer's next fetch or past what a fetch used, and
//! how room is made among them.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use event_listener::{Event, EventListener};
use strand_io::{FileIdentity, FileReader};

/// A read ahead no fetch has taken for this long may make room for others: its consumer
/// stopped, or went elsewhere. A consumer catching up fetches far more often.
const UNUSED_READ_AHEAD: Duration = Duration::from_secs(1);

/// Slots held per shard at most, whatever their size, so a lookup's scan stays short.
const SLOTS_MAX: usize = 256;

/// Bytes of a file held for a fetch to come: the rest of a read a fetch used part of, or a
/// read started ahead of a consumer's next fetch. Matched to fetches by the open file, not
/// its path, so bytes of a file replaced or recreated at the same path are never served; a
/// file may have several (consumers at different positions).
pub(super) struct Readahead {
    pub(super) file: FileIdentity,
    /// For [`super::CatchUpReads::invalidate`].
    pub(super) path: PathBuf,
    pub(super) position: u64,
    pub(super) fill: Fill,
    /// Read ahead of a fetch that has not come yet: another read ahead evicts it only once
    /// it is `UNUSED_READ_AHEAD` old.
    pub(super) ahead: bool,
    /// When it landed or was last used.
    pub(super) touched: Instant,
}

pub(super) enum Fill {
    /// The read is in flight; `done` fires when it lands or fails.
    Reading { len: usize, done: Rc<Event> },
    Ready(Bytes),
}

impl Readahead {
    pub(super) fn new(reader: &FileReader, position: u64, fill: Fill, ahead: bool) -> Self {
        Self { file: reader.identity(), path: reader.path().to_owned(), position, fill, ahead, touched: Instant::now() }
    }

    pub(super) fn held_bytes(&self) -> usize {
        match &self.fill {
            Fill::Reading { len, .. } => *len,
            Fill::Ready(bytes) => bytes.len(),
        }
    }

    /// Whether a read of `len` bytes at `position` of `reader`'s file is served from here:
    /// one starting where this starts (a read ahead of it, even if shorter, or still in
    /// flight), or one within the bytes here.
    pub(super) fn serves(&self, reader: &FileReader, position: u64, len: usize) -> bool {
        self.file.is(reader)
            && match position.checked_sub(self.position) {
                Some(0) => true,
                Some(from) => matches!(&self.fill, Fill::Ready(bytes) if usize::try_from(from).is_ok_and(|from| from.saturating_add(len) <= bytes.len())),
                None => false,
            }
    }

    /// Whether making room may drop it: not while its read is in flight, nor while it is a
    /// recent read ahead no fetch has used (a surer bet than whatever would replace it).
    fn evictable(&self) -> bool {
        matches!(self.fill, Fill::Ready(_)) && !(self.ahead && self.touched.elapsed() < UNUSED_READ_AHEAD)
    }
}

/// What the readahead holds for a read.
pub(super) enum Lookup {
    Hit(Bytes),
    /// A read ahead of this very position is in flight.
    Wait(EventListener),
    Miss,
}

/// Makes room for one more slot of `len` bytes within `budget` and `SLOTS_MAX` by dropping
/// the least recently used slots that hold bytes, except recent reads ahead no fetch has used
/// yet and reads in flight. Drops nothing, and is false, when that would not be enough.
pub(super) fn make_room(slots: &mut VecDeque<Readahead>, len: usize, budget: usize) -> bool {
    let held: usize = slots.iter().map(Readahead::held_bytes).sum();
    let (mut bytes_over, mut slots_over) = ((held + len).saturating_sub(budget), (slots.len() + 1).saturating_sub(SLOTS_MAX));
    let (evictable_bytes, evictable_slots) = slots
        .iter()
        .filter(|s| s.evictable())
        .fold((0, 0), |(bytes, count), s| (bytes + s.held_bytes(), count + 1));
    if evictable_bytes < bytes_over || evictable_slots < slots_over {
        return false;
    }
    let mut index = 0;
    while (bytes_over > 0 || slots_over > 0) && index < slots.len() {
        if slots[index].evictable() {
            bytes_over = bytes_over.saturating_sub(slots[index].held_bytes());
            slots_over = slots_over.saturating_sub(1);
            drop(slots.remove(index));
        } else {
            index += 1;
        }
    }
    true
}
