//! Starting, pinning and stopping the shard executors.

use std::future::Future;
use std::time::Duration;
use glommio::{ExecutorJoinHandle, LocalExecutorBuilder, Placement};
use tracing::warn;

use crate::{Inbox, Mesh, ShardId, ShardsError};

/// How to build the shards.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Number of shards; 0 means one per available core.
    pub shards: usize,
    /// Bytes each executor registers with io_uring for DMA buffers (counts against the
    /// locked-memory limit).
    pub io_memory_bytes: usize,
    /// Bound of each shard's mailbox.
    pub mailbox_max: usize,
    /// How long an idle shard keeps polling for work (its io_uring completions, timers and
    /// cross-shard messages) before it sleeps in the kernel. A sleeping shard is woken by the
    /// kernel, which on a VM costs tens of microseconds per wake-up; polling burns its core
    /// meanwhile. Zero sleeps at once. Only a shard pinned to a core polls.
    pub idle_poll: Duration,
}

/// The cores this process may run on.
pub fn available_cores() -> usize {
    core_affinity::get_core_ids().map_or(1, |ids| ids.len().max(1))
}

/// What a shard's main task is given.
pub struct ShardContext<M> {
    pub id: ShardId,
    pub shard_count: usize,
    pub mesh: Mesh<M>,
    pub inbox: Inbox<M>,
    pub stop: StopSignal,
}

/// Resolves once the runtime is asked to stop.
pub struct StopSignal {
    receiver: flume::Receiver<()>,
}

impl StopSignal {
    pub async fn wait(&self) {
        let _ = self.receiver.recv_async().await;
    }
}

/// The running shards.
pub struct Runtime {
    stops: Vec<flume::Sender<()>>,
    threads: Vec<ExecutorJoinHandle<()>>,
}

impl Runtime {
    /// Starts the shards; `main` runs as each shard's main task and the shard exits when it
    /// returns.
    pub fn start<M, F, Fut>(options: &RuntimeOptions, main: F) -> Result<Self, ShardsError>
    where
        M: Send + 'static,
        F: Fn(ShardContext<M>) -> Fut + Send + Clone + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let count = if options.shards == 0 { available_cores() } else { options.shards };
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        // The cpus glommio's placement accepts (none when it cannot read the topology).
        let glommio_cpus: Vec<usize> = glommio::CpuSet::online().map(|set| set.iter().map(|l| l.cpu).collect()).unwrap_or_default();
        let (mesh, inboxes) = Mesh::new(count, options.mailbox_max);
        let mut runtime = Self { stops: Vec::new(), threads: Vec::new() };
        for (index, inbox) in inboxes.into_iter().enumerate() {
            let id = ShardId(u16::try_from(index).expect("at most 65536 shards"));
            let (stop_sender, stop_receiver) = flume::bounded(1);
            let context = ShardContext {
                id,
                shard_count: count,
                mesh: mesh.clone(),
                inbox,
                stop: StopSignal { receiver: stop_receiver },
            };
            let core = (!cores.is_empty()).then(|| cores[index % cores.len()]);
            let main = main.clone();
            // glommio polls before sleeping only in an executor it pins itself, and it can pin
            // only to a cpu its own view of /sys lists; otherwise the thread pins itself.
            let glommio_pins = core.filter(|core| glommio_cpus.contains(&core.id));
            if core.is_some() && glommio_pins.is_none() && !options.idle_poll.is_zero() {
                warn!(shard = index, "glommio does not list this shard's cpu as online: the shard does not poll before it sleeps");
            }
            let placement = glommio_pins.map_or(Placement::Unbound, |core| Placement::Fixed(core.id));
            let handle = LocalExecutorBuilder::new(placement)
                .name(&format!("shard-{index}"))
                .io_memory(options.io_memory_bytes)
                .spin_before_park(options.idle_poll)
                .spawn(move || {
                    if let (Some(core), None) = (core, glommio_pins) {
                        core_affinity::set_for_current(core);
                    }
                    main(context)
                })
                .map_err(|e| ShardsError::Start { shard: id, source: e.into() })?;
            runtime.stops.push(stop_sender);
            runtime.threads.push(handle);
        }
        Ok(runtime)
    }

    pub fn shard_count(&self) -> usize {
        self.threads.len()
    }

    /// Asks every shard to stop; does not wait.
    pub fn stop(&self) {
        for stop in &self.stops {
            let _ = stop.try_send(());
        }
    }

    /// Waits for every shard to finish.
    pub fn join(self) -> Result<(), ShardsError> {
        let mut result = Ok(());
        for (index, thread) in self.threads.into_iter().enumerate() {
            let id = ShardId(u16::try_from(index).expect("at most 65536 shards"));
            if thread.join().is_err() {
                result = Err(ShardsError::Panicked(id));
            }
        }
        result
    }
}

/// Runs `future` to completion on a one-off executor on a new thread: for tests and offline
/// tools that need the runtime's I/O without the broker's shards.
pub fn run_one<T, F, Fut>(io_memory_bytes: usize, make: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
{
    LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(io_memory_bytes)
        .spawn(make)
        .expect("an executor starts")
        .join()
        .expect("the executor's future completes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Reply;

    enum Msg {
        Double(u64, Reply<u64>),
    }

    #[test]
    fn a_call_crosses_to_another_shard_and_returns_its_answer() {
        let (result_tx, result_rx) = flume::unbounded();
        let options = RuntimeOptions { shards: 2, io_memory_bytes: 128 << 10, mailbox_max: 4, idle_poll: Duration::ZERO };
        let runtime = Runtime::start(&options, move |ctx: ShardContext<Msg>| {
            let result_tx = result_tx.clone();
            async move {
                if ctx.id == ShardId(0) {
                    let answer = ctx.mesh.call(ShardId(1), |reply| Msg::Double(21, reply)).await;
                    result_tx.send(answer.expect("shard 1 answers")).expect("test alive");
                } else if let Some(Msg::Double(n, reply)) = ctx.inbox.recv().await {
                    reply.send(n * 2);
                }
            }
        })
        .expect("start");
        assert_eq!(result_rx.recv().expect("an answer"), 42);
        runtime.join().expect("clean exit");
    }
}
