//! The state one shard owns, and how it answers shard requests.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;

use event_listener::Event;
use futures_lite::future;
use strand_config::BrokerConfig;
use strand_shards::task::{join_all, sleep, spawn_local};
use strand_shards::{Mesh, Reply, ShardId, ShardsError};
use tracing::{error, warn};

use super::{PartitionAppend, PartitionRead, PartitionSize, ShardRequest};
use crate::cluster::{owner_shard, ControllerRequest, MetadataImage};
use crate::group::GroupCoordinator;
use crate::log::{AppendInfo, BrokerWrites, LogRead, LogShared, PartitionLog};
use crate::partition::{Partition, PartitionError};

pub struct ShardState {
    pub id: ShardId,
    pub shard_count: usize,
    pub config: Arc<BrokerConfig>,
    mesh: Mesh<ShardRequest>,
    image: RefCell<Arc<MetadataImage>>,
    /// Set once the first metadata image is applied: the shard may serve.
    ready: Cell<bool>,
    ready_event: Event,
    pub(super) partitions: RefCell<HashMap<(String, i32), Rc<Partition>>>,
    controller: RefCell<Option<flume::Sender<ControllerRequest>>>,
    stopping: Cell<bool>,
    stop_event: Event,
    /// The tail cache and catch-up read scheduler this shard's logs share.
    pub log_shared: LogShared,
    /// The coordinator of the groups whose __consumer_offsets partitions live here.
    pub groups: Rc<GroupCoordinator>,
}

impl ShardState {
    /// `writes` is the broker's, shared by its shards (the catch-up read size follows it).
    pub fn new(id: ShardId, shard_count: usize, config: Arc<BrokerConfig>, mesh: Mesh<ShardRequest>, writes: Arc<BrokerWrites>) -> Rc<Self> {
        Rc::new(Self {
            groups: Rc::new(GroupCoordinator::new(&config)),
            config: Arc::clone(&config),
            id,
            shard_count,
            mesh,
            image: RefCell::new(Arc::new(MetadataImage::default())),
            ready: Cell::new(false),
            ready_event: Event::new(),
            partitions: RefCell::new(HashMap::new()),
            controller: RefCell::new(None),
            stopping: Cell::new(false),
            stop_event: Event::new(),
            log_shared: LogShared::new(&config, writes),
        })
    }

    pub(super) fn image_slot(&self) -> &RefCell<Arc<MetadataImage>> {
        &self.image
    }

    pub fn image(&self) -> Arc<MetadataImage> {
        Arc::clone(&self.image.borrow())
    }

    pub fn owner(&self, topic: &str, partition: i32) -> ShardId {
        owner_shard(topic, partition, self.shard_count)
    }

    pub fn partition(&self, topic: &str, partition: i32) -> Option<Rc<Partition>> {
        self.partitions.borrow().get(&(topic.to_owned(), partition)).cloned()
    }

    /// Reads a fetch's partitions owned here in the fetch's order, as Kafka fills a fetch: each
    /// gets at most its own limit and what `max_bytes` has left; until one has records a read
    /// returns at least one batch (KIP-74), after that never more than what is left (a
    /// partition whose next batch is longer gets nothing and the next one is tried). When the
    /// limits fit in `max_bytes` together, the partitions are read at once instead, each with
    /// its own limit: what that serves past the rules above (a later partition's batch longer
    /// than its limit) the fetch handler cuts away.
    pub async fn fetch_partitions(&self, reads: Vec<PartitionRead>, max_bytes: usize) -> Vec<Result<LogRead, PartitionError>> {
        let partitions: Vec<_> = reads.iter().map(|r| self.local_partition(&r.topic, r.partition)).collect();
        if reads.iter().map(|r| r.max_bytes).fold(0usize, usize::saturating_add) <= max_bytes {
            let work = reads
                .iter()
                .zip(partitions)
                .map(|(read, partition)| {
                    let (offset, limit) = (read.offset, read.max_bytes);
                    async move { partition?.fetch(offset, limit, true).await }
                })
                .collect();
            return join_all(work).await;
        }
        let mut results = Vec::with_capacity(reads.len());
        let (mut left, mut min_one) = (max_bytes, true);
        for (read, partition) in reads.iter().zip(partitions) {
            let result = match partition {
                Ok(p) => p.fetch(read.offset, read.max_bytes.min(left), min_one).await,
                Err(e) => Err(e),
            };
            if let Ok(got) = &result {
                if !got.records.is_empty() {
                    min_one = false;
                    left = left.saturating_sub(got.records.len());
                }
            }
            results.push(result);
        }
        results
    }

    /// Appends a produce request's partitions this shard owns, all at once, and answers in
    /// their order once every one is appended (and durable, for acks 1 and -1).
    pub async fn produce_partitions(&self, appends: Vec<PartitionAppend>, acks: i16) -> Vec<Result<AppendInfo, PartitionError>> {
        let work = appends
            .into_iter()
            .map(|append| {
                let partition = self.local_partition(&append.topic, append.partition);
                async move { partition?.produce(append.records, acks).await }
            })
            .collect();
        join_all(work).await
    }

    fn local_partition(&self, topic: &str, partition: i32) -> Result<Rc<Partition>, PartitionError> {
        self.partition(topic, partition).ok_or(PartitionError::UnknownTopicOrPartition)
    }

    pub fn set_controller(&self, requests: flume::Sender<ControllerRequest>) {
        *self.controller.borrow_mut() = Some(requests);
    }

    /// Sends `make(reply)` to shard `to` and awaits the answer; to this shard it is handled
    /// in place.
    pub async fn call<T>(self: &Rc<Self>, to: ShardId, make: impl FnOnce(Reply<T>) -> ShardRequest) -> Result<T, ShardsError> {
        if to == self.id {
            let (reply, pending) = Reply::pair();
            Rc::clone(self).handle(make(reply)).await;
            pending.wait().await.ok_or(ShardsError::Stopped(to))
        } else {
            self.mesh.call(to, make).await
        }
    }

    /// Sends a new metadata image to every shard (this one included) and waits until all have
    /// applied it.
    /// The shards apply it at the same time (at start, each recovers its partitions in
    /// parallel with the others).
    pub async fn broadcast_metadata(self: &Rc<Self>, image: Arc<MetadataImage>) -> Result<(), ShardsError> {
        let applying: Vec<_> = (0..self.shard_count)
            .map(|index| {
                let to = ShardId(u16::try_from(index).expect("shard count fits u16"));
                let (shard, image) = (Rc::clone(self), Arc::clone(&image));
                spawn_local(async move { shard.call(to, |reply| ShardRequest::ApplyMetadata { image, reply }).await })
            })
            .collect();
        for applied in applying {
            applied.await?;
        }
        Ok(())
    }

    /// Tells every shard that all have applied the first metadata image (recovered their
    /// partitions), so each may start its journal and listening: no client reaches a shard
    /// while a partition on another is still being recovered. Then, if every shard's
    /// partitions took what the last run's journal held for them, its files are deleted.
    pub async fn announce_serving(self: &Rc<Self>) -> Result<(), ShardsError> {
        let mut untaken = 0;
        for index in 0..self.shard_count {
            let to = ShardId(u16::try_from(index).expect("shard count fits u16"));
            untaken += self.call(to, |reply| ShardRequest::Serve { reply }).await?;
        }
        if untaken == 0 {
            if let Err(e) = self.log_shared.journal.delete_earlier_generations().await {
                warn!(error = %e, "deleting replayed journal files");
            }
        } else {
            warn!(partitions = untaken, "journal files of the last run kept: partitions that failed to open have batches in them");
        }
        Ok(())
    }

    /// Starts this shard's journal once its partitions are open; answers how many partitions
    /// of the image did not take what the last run's journal held for them (their open failed).
    async fn start_journal(&self) -> usize {
        let journal = &self.log_shared.journal;
        let image = self.image();
        // Entries of partitions that no longer exist go; a failed open keeps its own.
        journal.retain_replay(|topic, partition, id| image.topic(topic).is_some_and(|t| t.id == id && partition < t.partitions));
        let untaken = journal
            .untaken_replay()
            .into_iter()
            .inspect(|(topic, partition, _, entries)| {
                error!(shard = %self.id, topic = %topic, partition, entries, "journal entries not replayed: the partition did not open");
            })
            .count();
        if let Err(e) = journal.start(usize::from(self.id.0), self.shard_count).await {
            error!(shard = %self.id, error = %e, "journal did not start: strict partitions fdatasync their segments");
        }
        untaken
    }

    /// Waits until shard 0 announces that every shard has applied the first metadata image.
    pub async fn wait_ready(&self) {
        loop {
            if self.ready.get() {
                return;
            }
            let listener = self.ready_event.listen();
            if self.ready.get() {
                return;
            }
            listener.await;
        }
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.get()
    }

    /// Stops serving: waiters on [`ShardState::stopped`] wake, and the group coordinator
    /// answers its parked requests NOT_COORDINATOR so connections can drain.
    pub fn begin_stop(&self) {
        self.stopping.set(true);
        self.stop_event.notify(usize::MAX);
        self.groups.shutdown();
    }

    /// Resolves once the shard begins stopping.
    pub async fn stopped(&self) {
        loop {
            if self.stopping.get() {
                return;
            }
            let listener = self.stop_event.listen();
            if self.stopping.get() {
                return;
            }
            listener.await;
        }
    }

    /// Answers one shard request.
    pub async fn handle(self: Rc<Self>, request: ShardRequest) {
        match request {
            ShardRequest::Produce { appends, acks, reply } => {
                reply.send(self.produce_partitions(appends, acks).await);
            }
            ShardRequest::Fetch { reads, max_bytes, reply } => {
                reply.send(self.fetch_partitions(reads, max_bytes).await);
            }
            ShardRequest::WaitForData { waits, max_wait, reply } => {
                self.wait_for_data(&waits, max_wait).await;
                reply.send(());
            }
            ShardRequest::ListOffset { topic, partition, timestamp, reply } => {
                let result = match self.local_partition(&topic, partition) {
                    Ok(p) => p.list_offset(timestamp).await,
                    Err(e) => Err(e),
                };
                reply.send(result);
            }
            ShardRequest::DescribeProducers { topic, partition, reply } => {
                reply.send(self.local_partition(&topic, partition).map(|p| p.log.producers()));
            }
            ShardRequest::DeleteRecords { topic, partition, offset, reply } => {
                let result = match self.local_partition(&topic, partition) {
                    Ok(p) => p.delete_records(offset).await,
                    Err(e) => Err(e),
                };
                reply.send(result);
            }
            ShardRequest::PartitionSizes { reply } => {
                let sizes = self
                    .partitions
                    .borrow()
                    .values()
                    .map(|p| PartitionSize { topic: p.topic.clone(), partition: p.index, size_bytes: p.log.size_bytes() })
                    .collect();
                reply.send(sizes);
            }
            ShardRequest::ApplyMetadata { image, reply } => {
                self.apply_metadata(image).await;
                reply.send(());
            }
            ShardRequest::Serve { reply } => {
                let untaken = self.start_journal().await;
                self.ready.set(true);
                self.ready_event.notify(usize::MAX);
                reply.send(untaken);
            }
            ShardRequest::Group { partition, request, reply } => {
                let groups = Rc::clone(&self.groups);
                reply.send(groups.handle(partition, request).await);
            }
            ShardRequest::Controller(request) => {
                let controller = self.controller.borrow().clone();
                match controller {
                    Some(controller) => {
                        if controller.send_async(request).await.is_err() {
                            warn!(shard = %self.id, "controller has stopped; request dropped");
                        }
                    }
                    None => warn!(shard = %self.id, "controller request sent to a shard without one"),
                }
            }
        }
    }

    /// Waits until one of `waits` (topic, partition, offset) has data past its offset, the
    /// shard stops, or `max_wait` passes.
    async fn wait_for_data(&self, waits: &[(String, i32, i64)], max_wait: std::time::Duration) {
        let logs: Vec<_> = waits
            .iter()
            .filter_map(|(topic, partition, offset)| Some((self.partition(topic, *partition)?.log.clone(), *offset)))
            .collect();
        if logs.is_empty() {
            sleep(max_wait).await;
            return;
        }
        let timeout = async {
            sleep(max_wait).await;
        };
        future::or(self.stopped(), future::or(timeout, Self::any_data(&logs))).await;
    }

    /// Resolves when any of the logs has data past its offset.
    async fn any_data(logs: &[(Rc<PartitionLog>, i64)]) {
        let mut waits: Vec<_> = logs.iter().map(|(log, offset)| Box::pin(log.wait_for_data_after(*offset))).collect();
        future::poll_fn(|cx| {
            for wait in &mut waits {
                if wait.as_mut().poll(cx).is_ready() {
                    return std::task::Poll::Ready(());
                }
            }
            std::task::Poll::Pending
        })
        .await;
    }
}
