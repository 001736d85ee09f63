//! A response that is not ready yet: the delayed operations of the coordinator.
//!
//! A JoinGroup or SyncGroup answer, or any answer that waits for its records to be durable,
//! is a slot the coordinator fills later; the request task awaits it (an event, not a poll).
//! Slots live on one shard and never cross it: the shard's answer to another shard is the
//! value taken out of the slot.

use std::cell::RefCell;
use std::rc::Rc;

use event_listener::Event;

pub struct ResponseSlot<T> {
    value: RefCell<Option<T>>,
    filled: std::cell::Cell<bool>,
    event: Event,
}

impl<T> ResponseSlot<T> {
    pub fn new() -> Rc<Self> {
        Rc::new(Self { value: RefCell::new(None), filled: std::cell::Cell::new(false), event: Event::new() })
    }

    /// A slot already holding its answer.
    pub fn ready(value: T) -> Rc<Self> {
        let slot = Self::new();
        slot.fill(value);
        slot
    }

    /// Stores the answer and wakes the waiter. Only the first answer counts: returns false
    /// (dropping `value`) if the slot was already filled.
    pub fn fill(&self, value: T) -> bool {
        if self.filled.get() {
            return false;
        }
        self.filled.set(true);
        *self.value.borrow_mut() = Some(value);
        self.event.notify(usize::MAX);
        true
    }

    pub fn is_filled(&self) -> bool {
        self.filled.get()
    }

    /// Takes the answer if it is there.
    pub fn take(&self) -> Option<T> {
        self.value.borrow_mut().take()
    }

    /// Waits for the answer and takes it. One waiter per slot.
    pub async fn wait(&self) -> T {
        loop {
            if let Some(value) = self.take() {
                return value;
            }
            let listener = self.event.listen();
            if let Some(value) = self.take() {
                return value;
            }
            listener.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_answer_wins() {
        let slot = ResponseSlot::new();
        assert!(!slot.is_filled());
        assert!(slot.fill(1));
        assert!(!slot.fill(2));
        assert_eq!(futures_lite::future::block_on(slot.wait()), 1);
    }

    #[test]
    fn a_waiter_wakes_when_the_slot_is_filled() {
        let slot: Rc<ResponseSlot<&str>> = ResponseSlot::new();
        let waiter = Rc::clone(&slot);
        let mut wait = Box::pin(async move { waiter.wait().await });
        assert!(futures_lite::future::block_on(futures_lite::future::poll_once(&mut wait)).is_none());
        slot.fill("joined");
        assert_eq!(futures_lite::future::block_on(wait), "joined");
    }
}
