//! Cross-shard messaging: one bounded mailbox per shard, typed requests, typed replies.
//!
//! A request type `M` (an enum in the broker) carries its own [`Reply<T>`] for its answer, so
//! each kind of request has its own response type. Mailboxes are bounded: a sender awaits room,
//! which pushes back on the client whose request is crossing.

use crate::{ShardId, ShardsError};

/// The sending side of every shard's mailbox, cloned into every shard.
pub struct Mesh<M> {
    mailboxes: Vec<flume::Sender<M>>,
}

impl<M> Clone for Mesh<M> {
    fn clone(&self) -> Self {
        Self { mailboxes: self.mailboxes.clone() }
    }
}

/// The receiving side of one shard's mailbox.
pub struct Inbox<M> {
    receiver: flume::Receiver<M>,
}

/// The answer slot of one request. Dropping it unanswered makes the caller see
/// [`ShardsError::Stopped`].
pub struct Reply<T> {
    sender: flume::Sender<T>,
}

/// The waiting side of a [`Reply`] made with [`Reply::pair`].
pub struct PendingReply<T> {
    receiver: flume::Receiver<T>,
}

impl<T> PendingReply<T> {
    /// The answer, or None if the [`Reply`] was dropped unanswered.
    pub async fn wait(self) -> Option<T> {
        self.receiver.recv_async().await.ok()
    }
}

impl<T> Reply<T> {
    /// A reply slot and its waiting side, for a request handled without crossing shards.
    pub fn pair() -> (Self, PendingReply<T>) {
        let (sender, receiver) = flume::bounded(1);
        (Self { sender }, PendingReply { receiver })
    }

    pub fn send(self, value: T) {
        // The caller may have given up (its connection closed); nothing to do then.
        let _ = self.sender.send(value);
    }
}

impl<M: Send + 'static> Mesh<M> {
    pub(crate) fn new(shards: usize, mailbox_max: usize) -> (Self, Vec<Inbox<M>>) {
        let (mailboxes, inboxes) = (0..shards)
            .map(|_| {
                let (sender, receiver) = flume::bounded(mailbox_max);
                (sender, Inbox { receiver })
            })
            .unzip();
        (Self { mailboxes }, inboxes)
    }

    pub fn shard_count(&self) -> usize {
        self.mailboxes.len()
    }

    /// Sends a request to `to` and awaits its answer. `make` wraps the reply slot into the
    /// request message.
    pub async fn call<T>(&self, to: ShardId, make: impl FnOnce(Reply<T>) -> M) -> Result<T, ShardsError> {
        let (sender, receiver) = flume::bounded(1);
        self.send(to, make(Reply { sender })).await?;
        receiver.recv_async().await.map_err(|_| ShardsError::Stopped(to))
    }

    /// Sends a message that expects no answer.
    pub async fn send(&self, to: ShardId, message: M) -> Result<(), ShardsError> {
        self.mailboxes[to.index()].send_async(message).await.map_err(|_| ShardsError::Stopped(to))
    }
}

impl<M> Inbox<M> {
    /// The next message, or None once every sender is gone.
    pub async fn recv(&self) -> Option<M> {
        self.receiver.recv_async().await.ok()
    }
}
