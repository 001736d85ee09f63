//! The group coordinator of one shard: the async shell around the [`GroupManager`].
//!
//! Three kinds of task drive it, all on this shard: request tasks (call the manager, then
//! await the answer's slot), one timer task (fires the manager's timers), and one loader-then-
//! writer task per owned __consumer_offsets partition. The writer takes everything queued for
//! its partition, appends it with one `Partition::produce(.., acks -1)` (one batch per queued
//! write, one fsync for all), and then runs the continuations in queue order, which is log
//! order: after a continuation runs, its records are durable. No RefCell borrow is held across
//! an await.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use futures_lite::future;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use strand_config::BrokerConfig;
use strand_shards::task::{sleep, spawn_local};
use tracing::{debug, error, warn};

use super::records::decode_record;
use super::{GroupConfig, GroupManager, GroupRequest, GroupResponse, Now, WriteError};
use crate::partition::Partition;
use crate::protocol::record_batch::{self, BatchHeader, BatchProducer};
use crate::shard::ShardState;

/// Bytes read per step when loading a partition. Kafka reads 5 MiB (offsets.load.buffer.size);
/// a shard loads all its partitions at once, so strand reads less per step.
const LOAD_READ_BYTES: usize = 1 << 20;

pub struct GroupCoordinator {
    manager: RefCell<GroupManager>,
}

impl GroupCoordinator {
    pub fn new(config: &BrokerConfig) -> Self {
        Self { manager: RefCell::new(GroupManager::new(GroupConfig::from_broker(config))) }
    }

    /// Answers one request for a group of `partition`.
    pub async fn handle(&self, partition: i32, request: GroupRequest) -> GroupResponse {
        if request.writes() {
            self.wait_for_room(partition).await;
        }
        let now = Now::current();
        match request {
            GroupRequest::Join(params) => {
                let slot = self.manager.borrow_mut().join_group(partition, params, now);
                GroupResponse::Join(slot.wait().await)
            }
            GroupRequest::Sync(params) => {
                let slot = self.manager.borrow_mut().sync_group(partition, params);
                GroupResponse::Sync(slot.wait().await)
            }
            GroupRequest::Heartbeat { group_id, member_id, group_instance_id, generation_id } => {
                let result = self.manager.borrow_mut().heartbeat(partition, &group_id, &member_id, group_instance_id.as_deref(), generation_id, now);
                GroupResponse::Heartbeat(result.err().map_or(0, |e| e.code()))
            }
            GroupRequest::Leave { group_id, members } => {
                GroupResponse::Leave(self.manager.borrow_mut().leave_group(partition, &group_id, members, now))
            }
            GroupRequest::OffsetCommit(params) => {
                let slot = self.manager.borrow_mut().commit_offsets(partition, params, now);
                GroupResponse::OffsetCommit(slot.wait().await)
            }
            GroupRequest::OffsetFetch { group_id, topics } => {
                GroupResponse::OffsetFetch(self.manager.borrow().fetch_offsets(partition, &group_id, topics))
            }
            GroupRequest::OffsetDelete { group_id, topics } => {
                let slot = self.manager.borrow_mut().delete_offsets(partition, &group_id, topics);
                GroupResponse::OffsetDelete(slot.wait().await)
            }
            GroupRequest::Describe { group_id, version } => {
                GroupResponse::Describe(self.manager.borrow().describe_group(partition, &group_id, version))
            }
            GroupRequest::Delete { group_ids } => {
                let slot = self.manager.borrow_mut().delete_groups(partition, group_ids);
                GroupResponse::Delete(slot.wait().await)
            }
            GroupRequest::List { states_filter, types_filter } => {
                let listed = self.manager.borrow().list_groups(&states_filter, &types_filter);
                GroupResponse::List(listed.map_err(|e| e.code()))
            }
        }
    }

    /// Waits while `partition`'s write queue is full: the request pushes back on its client.
    async fn wait_for_room(&self, partition: i32) {
        loop {
            let Some(listener) = self.manager.borrow().wait_for_room(partition) else { return };
            listener.await;
        }
    }

    /// Starts the timer task and the periodic offset expiration. Called once the shard serves.
    pub fn start(self: &Rc<Self>, shard: &Rc<ShardState>) {
        self.manager.borrow_mut().schedule_expiration(Now::current());
        spawn_local(Rc::clone(self).run_timers(Rc::clone(shard))).detach();
    }

    /// The shard is stopping: parked requests are answered NOT_COORDINATOR and so is every
    /// later one.
    pub fn shutdown(&self) {
        self.manager.borrow_mut().shutdown();
    }

    /// Deletes the committed offsets of deleted topics.
    pub fn on_topics_deleted(&self, topics: &[String]) {
        if !topics.is_empty() {
            self.manager.borrow_mut().on_topics_deleted(topics);
        }
    }

    async fn run_timers(self: Rc<Self>, shard: Rc<ShardState>) {
        loop {
            let (deadline, changed) = {
                let manager = self.manager.borrow();
                (manager.next_deadline(), manager.timers_changed())
            };
            let due = async {
                match deadline {
                    Some(deadline) => sleep(deadline.saturating_duration_since(Instant::now())).await,
                    None => future::pending::<()>().await,
                }
            };
            future::or(future::or(due, changed), shard.stopped()).await;
            if shard.is_stopping() {
                return;
            }
            self.manager.borrow_mut().on_timers(Now::current());
        }
    }

    /// This shard now owns a __consumer_offsets partition: load it, then write for it.
    pub fn load_partition(self: &Rc<Self>, shard: &Rc<ShardState>, partition: Rc<Partition>) {
        self.manager.borrow_mut().begin_load(partition.index);
        let (coordinator, shard) = (Rc::clone(self), Rc::clone(shard));
        spawn_local(async move {
            let index = partition.index;
            let started = Instant::now();
            match coordinator.load(&partition).await {
                Ok(records) => {
                    coordinator.manager.borrow_mut().finish_load(index, Now::current());
                    debug!(shard = %shard.id, partition = index, records, elapsed_ms = started.elapsed().as_millis() as u64, "group coordinator partition ready");
                    coordinator.run_writer(&shard, &partition).await;
                }
                Err(e) => {
                    error!(shard = %shard.id, partition = index, error = %e, "loading __consumer_offsets failed: its groups stay unavailable");
                    coordinator.manager.borrow_mut().abandon_load(index);
                }
            }
        })
        .detach();
    }

    /// Replays the partition from its log start to its high watermark; returns the number of
    /// records read.
    async fn load(&self, partition: &Partition) -> Result<usize, LoadError> {
        let offsets = partition.offsets();
        let (mut offset, end) = (offsets.log_start_offset, offsets.high_watermark);
        let mut count = 0;
        while offset < end {
            let read = partition.fetch(offset, LOAD_READ_BYTES, true).await.map_err(|e| LoadError::Read(e.to_string()))?;
            if read.records.is_empty() {
                break;
            }
            let start = offset;
            let mut batches = read.records;
            while batches.has_remaining() {
                let header = BatchHeader::parse(&batches).map_err(|e| LoadError::Batch { offset, reason: e.to_string() })?;
                if header.next_offset() <= offset {
                    // A batch before the one asked for: already replayed.
                    batches.advance(header.total_bytes().min(batches.remaining()));
                    continue;
                }
                let set = RecordBatchDecoder::decode(&mut batches).map_err(|e| LoadError::Batch { offset, reason: e.to_string() })?;
                let now = Now::current();
                let mut manager = self.manager.borrow_mut();
                for record in set.records.into_iter().filter(|r| !r.control && r.offset >= offset && r.offset < end) {
                    count += 1;
                    match decode_record(record.key.as_deref(), record.value.as_deref()) {
                        Ok(Some(decoded)) => manager.replay(partition.index, decoded, now),
                        Ok(None) => {}
                        Err(e) => warn!(partition = partition.index, offset = record.offset, error = %e, "skipping an undecodable record"),
                    }
                }
                offset = header.next_offset();
            }
            if offset == start {
                return Err(LoadError::Batch { offset, reason: "the read did not advance".into() });
            }
        }
        Ok(count)
    }

    async fn run_writer(&self, shard: &ShardState, partition: &Partition) {
        let index = partition.index;
        loop {
            let queued = {
                let manager = self.manager.borrow();
                if manager.has_writes(index) { None } else { manager.writes_queued(index) }
            };
            if let Some(queued) = queued {
                future::or(queued, shard.stopped()).await;
                if shard.is_stopping() && !self.manager.borrow().has_writes(index) {
                    return;
                }
                continue;
            }
            let writes = self.manager.borrow_mut().take_writes(index);
            let results = append(partition, writes.iter().map(|w| w.records.as_slice()), Now::current().wall_ms).await;
            let now = Now::current();
            let mut manager = self.manager.borrow_mut();
            for (write, result) in writes.into_iter().zip(results) {
                (write.then)(&mut manager, result, now);
            }
        }
    }
}

/// Appends each write as its own record batch, all in one produce (one durable wait), and
/// returns each write's outcome. A write whose batch is over max.message.bytes fails alone.
async fn append<'a>(partition: &Partition, writes: impl Iterator<Item = &'a [super::manager::Record]>, now_ms: i64) -> Vec<Result<(), WriteError>> {
    let max = usize::try_from(partition.config().max_message_bytes).unwrap_or(0);
    let mut buf = BytesMut::new();
    let mut results = Vec::new();
    for records in writes {
        let batch = encode_batch(records, now_ms);
        if batch.len() > max {
            results.push(Err(WriteError::TooLarge(format!("{} bytes over max.message.bytes {max}", batch.len()))));
        } else {
            buf.extend_from_slice(&batch);
            results.push(Ok(()));
        }
    }
    if buf.is_empty() {
        return results;
    }
    if let Err(e) = partition.produce(buf.freeze(), -1).await {
        let failure = WriteError::from_append(&e);
        for result in results.iter_mut().filter(|r| r.is_ok()) {
            *result = Err(failure.clone());
        }
    }
    results
}

/// One uncompressed record batch of `records` (offsets 0.., assigned again on append).
fn encode_batch(records: &[super::manager::Record], now_ms: i64) -> Bytes {
    let records = records.iter().map(|(key, value)| (Some(key.clone()), value.clone(), now_ms));
    record_batch::encode_batch(records, BatchProducer::NONE, Compression::None)
        .expect("an uncompressed batch always encodes")
        .freeze()
}

#[derive(Debug, thiserror::Error)]
enum LoadError {
    #[error("reading the log: {0}")]
    Read(String),
    #[error("batch at offset {offset} does not decode: {reason}")]
    Batch { offset: i64, reason: String },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::record_batch::split_batches;

    #[test]
    fn a_write_becomes_one_valid_batch_holding_all_its_records() {
        let records = vec![(Bytes::from_static(b"k1"), Some(Bytes::from_static(b"v1"))), (Bytes::from_static(b"k2"), None)];
        let batch = encode_batch(&records, 1234);
        let batches = split_batches(&batch).unwrap();
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].1.records_count, 2);
        let set = RecordBatchDecoder::decode(&mut batch.clone()).unwrap();
        assert_eq!(set.records[1].key.as_deref(), Some(&b"k2"[..]));
        assert_eq!(set.records[1].value, None);
    }
}
