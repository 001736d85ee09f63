//! The coordinator's timers, keyed as Kafka keys them: scheduling a key again replaces its
//! deadline, cancelling removes it. One task per shard sleeps until the earliest deadline and
//! hands the expired keys to the group manager; [`Timers::changed`] wakes it when a deadline
//! moves.
//!
//! Bound: at most one timer per member (session), one join and one sync timer per group, and
//! the expiration timer, so the map is bounded by the groups and members the shard holds.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use event_listener::{Event, EventListener};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TimerKey {
    /// A member's session: expires unless the member heartbeats (or is mid-rebalance).
    Heartbeat { group_id: String, member_id: String },
    /// The join phase of a rebalance.
    Join { group_id: String },
    /// The wait for every member's SyncGroup after a join phase.
    Sync { group_id: String },
    /// The periodic search for expired offsets and empty groups.
    Expiration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerAction {
    ExpireHeartbeat,
    CompleteJoin,
    /// The first rebalance of an empty group: wait `delay_ms` more while members keep joining,
    /// up to `remaining_ms` in all.
    InitialRebalance { delay_ms: i32, remaining_ms: i32 },
    ExpirePendingSync { generation_id: i32 },
    CleanupGroupMetadata,
}

#[derive(Default)]
pub struct Timers {
    by_key: HashMap<TimerKey, (Instant, u64)>,
    queue: BTreeMap<(Instant, u64), (TimerKey, TimerAction)>,
    sequence: u64,
    changed: Event,
}

impl Timers {
    /// Sets `key` to fire `action` at `deadline`, replacing its previous deadline.
    pub fn schedule(&mut self, key: TimerKey, deadline: Instant, action: TimerAction) {
        self.cancel(&key);
        self.sequence += 1;
        let slot = (deadline, self.sequence);
        self.by_key.insert(key.clone(), slot);
        self.queue.insert(slot, (key, action));
        self.changed.notify(usize::MAX);
    }

    pub fn cancel(&mut self, key: &TimerKey) {
        if let Some(slot) = self.by_key.remove(key) {
            self.queue.remove(&slot);
        }
    }

    pub fn is_scheduled(&self, key: &TimerKey) -> bool {
        self.by_key.contains_key(key)
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.queue.keys().next().map(|(deadline, _)| *deadline)
    }

    /// Removes and returns every timer due at `now`, earliest first.
    pub fn pop_expired(&mut self, now: Instant) -> Vec<(TimerKey, TimerAction)> {
        let mut expired = Vec::new();
        while let Some(entry) = self.queue.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (key, action) = entry.remove();
            self.by_key.remove(&key);
            expired.push((key, action));
        }
        expired
    }

    /// Resolves after the next schedule.
    pub fn changed(&self) -> EventListener {
        self.changed.listen()
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn join(group: &str) -> TimerKey {
        TimerKey::Join { group_id: group.into() }
    }

    #[test]
    fn timers_fire_in_deadline_order_and_only_when_due() {
        let now = Instant::now();
        let mut timers = Timers::default();
        timers.schedule(join("b"), now + Duration::from_millis(20), TimerAction::CompleteJoin);
        timers.schedule(join("a"), now + Duration::from_millis(10), TimerAction::CompleteJoin);
        assert_eq!(timers.next_deadline(), Some(now + Duration::from_millis(10)));
        assert!(timers.pop_expired(now).is_empty());
        let fired: Vec<TimerKey> =
            timers.pop_expired(now + Duration::from_millis(30)).into_iter().map(|(k, _)| k).collect();
        assert_eq!(fired, vec![join("a"), join("b")]);
        assert!(timers.is_empty());
    }

    #[test]
    fn scheduling_a_key_again_replaces_its_deadline_and_action() {
        let now = Instant::now();
        let mut timers = Timers::default();
        timers.schedule(join("g"), now, TimerAction::CompleteJoin);
        let later = now + Duration::from_secs(5);
        let action = TimerAction::InitialRebalance { delay_ms: 5, remaining_ms: 0 };
        timers.schedule(join("g"), later, action);
        assert_eq!(timers.len(), 1);
        assert!(timers.pop_expired(now).is_empty());
        assert_eq!(timers.pop_expired(later), vec![(join("g"), action)]);
    }

    #[test]
    fn a_cancelled_timer_never_fires() {
        let now = Instant::now();
        let mut timers = Timers::default();
        timers.schedule(join("g"), now, TimerAction::CompleteJoin);
        timers.cancel(&join("g"));
        assert!(!timers.is_scheduled(&join("g")));
        assert!(timers.pop_expired(now + Duration::from_secs(1)).is_empty());
    }
}
