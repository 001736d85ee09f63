//! Starting and stopping a broker: the shards, and on each the same sequence.
//!
//! Start, per shard: probe the data device, start the inbox, (shard 0) load the cluster metadata
//! and start the controller, apply the first metadata image (recovering every partition placed
//! here), bind the listener, report ready. Stop, in reverse: stop accepting and reading
//! requests, let in-flight requests finish (bounded), close every partition (queued appends
//! made durable, files sealed), exit.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use strand_config::BrokerConfig;
use strand_io::fs;
use strand_shards::net::TcpListener;
use strand_shards::task::{spawn_background, spawn_local};
use strand_shards::{Inbox, Runtime, RuntimeOptions, ShardContext, ShardId};
use tracing::{info, warn};

use crate::cluster::Controller;
use crate::log::BrokerWrites;
use crate::server::{accept_loop, ConnectionLimits, Connections};
use crate::shard::{ShardRequest, ShardState};

/// How long a stopping shard waits for open connections' in-flight requests.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// A running broker.
pub struct Broker {
    runtime: Runtime,
}

impl Broker {
    /// Starts every shard and waits until all serve on `listen`, or one fails to start.
    pub fn start(mut config: BrokerConfig, listen: SocketAddr) -> Result<Self, anyhow::Error> {
        // glommio resolves no relative directory path ("." fails with EBADF): the shards only
        // ever see absolute ones.
        config.log_dirs = std::path::absolute(&config.log_dirs)?;
        let config = Arc::new(config);
        let options = RuntimeOptions {
            shards: config.shards,
            io_memory_bytes: config.shard_io_memory_bytes,
            mailbox_max: config.shard_inbox_max,
            idle_poll: std::time::Duration::from_micros(config.shard_idle_poll_us),
        };
        let (started_tx, started_rx) = flume::unbounded::<Result<ShardId, String>>();
        let shard_config = Arc::clone(&config);
        let limits = ConnectionLimits::new(config.max_connections, config.max_connections_per_ip);
        let writes = BrokerWrites::new();
        let runtime = Runtime::start(&options, move |ctx: ShardContext<ShardRequest>| {
            let shard = ShardStart { config: Arc::clone(&shard_config), limits: Arc::clone(&limits), writes: Arc::clone(&writes), listen };
            run_shard(ctx, shard, started_tx.clone())
        })?;
        let broker = Self { runtime };
        for _ in 0..broker.runtime.shard_count() {
            match started_rx.recv() {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    broker.stop();
                    return Err(anyhow::anyhow!(e));
                }
                Err(_) => {
                    broker.stop();
                    return Err(anyhow::anyhow!("a shard exited during start"));
                }
            }
        }
        info!(listen = %listen, shards = broker.runtime.shard_count(), node_id = config.node_id,
              log_io_mode = %config.log_io_mode, "strand is serving");
        Ok(broker)
    }

    pub fn shard_count(&self) -> usize {
        self.runtime.shard_count()
    }

    /// Stops every shard and waits for them.
    pub fn stop(self) {
        self.runtime.stop();
        if let Err(e) = self.runtime.join() {
            warn!(error = %e, "a shard did not stop cleanly");
        }
    }
}

/// What every shard starts from.
struct ShardStart {
    config: Arc<BrokerConfig>,
    /// Connection counts, shared by every shard's accept loop.
    limits: Arc<ConnectionLimits>,
    /// When any shard last wrote: catch-up reads stay short on every shard while one writes.
    writes: Arc<BrokerWrites>,
    listen: SocketAddr,
}

async fn run_shard(ctx: ShardContext<ShardRequest>, start: ShardStart, started: flume::Sender<Result<ShardId, String>>) {
    let ShardStart { config, limits, writes, listen } = start;
    let shard = ShardState::new(ctx.id, ctx.shard_count, Arc::clone(&config), ctx.mesh.clone(), writes);
    // Before this shard opens any file, even for another shard's request (a metadata image
    // whose partitions it recovers): glommio settles how it reads the device on the first open.
    if let Err(e) = settle_data_dir(&shard).await {
        let _ = started.send(Err(e));
        return;
    }
    spawn_local(serve_inbox(Rc::clone(&shard), ctx.inbox)).detach();
    let start = futures_lite::future::or(async { Some(start_shard(&shard, listen).await) }, async {
        ctx.stop.wait().await;
        None
    });
    let listener = match start.await {
        Some(Ok(listener)) => listener,
        Some(Err(e)) => {
            let _ = started.send(Err(e));
            return;
        }
        None => return,
    };
    shard.groups.start(&shard);
    let _ = started.send(Ok(ctx.id));
    let connections = Rc::new(Connections::default());
    let accepting = spawn_local(accept_loop(Rc::clone(&shard), listener, Rc::clone(&connections), limits));
    let retention = spawn_background(Rc::clone(&shard).run_retention());
    let compaction = spawn_background(Rc::clone(&shard).run_compaction());
    let io_latency_log = spawn_background(Rc::clone(&shard).run_io_latency_log());
    ctx.stop.wait().await;
    info!(shard = %ctx.id, connections = connections.count(), "stopping");
    shard.begin_stop();
    accepting.await;
    retention.await;
    compaction.await;
    io_latency_log.await;
    let left = connections.drain(DRAIN_LIMIT).await;
    if left > 0 {
        warn!(shard = %ctx.id, connections = left, "connections still open after the drain limit");
    }
    shard.close_partitions().await;
    info!(shard = %ctx.id, "stopped");
}

/// Creates the data directory, settles, for this shard, how its device is read
/// ([`fs::probe_device`]), and reads what the last run's journal holds for it.
async fn settle_data_dir(shard: &ShardState) -> Result<(), String> {
    let dir = &shard.config.log_dirs;
    fs::create_dir_all(dir).await.map_err(|e| format!("data directory {}: {e}", dir.display()))?;
    fs::probe_device(dir, &format!("shard-{}", shard.id)).await.map_err(|e| e.to_string())?;
    // Before any partition opens: what the last run's journal holds for this shard's ones.
    let owns = |topic: &str, partition: i32| shard.owner(topic, partition) == shard.id;
    shard.log_shared.journal.load(usize::from(shard.id.0), shard.shard_count, owns).await.map_err(|e| format!("reading the journal: {e}"))
}

async fn start_shard(shard: &Rc<ShardState>, listen: SocketAddr) -> Result<TcpListener, String> {
    if shard.id == ShardId(0) {
        let mut controller = Controller::load(Rc::clone(shard)).await.map_err(|e| e.to_string())?;
        controller.create_internal_topics().await.map_err(|e| format!("creating internal topics: {e}"))?;
        let image = controller.image();
        let (requests_tx, requests_rx) = flume::bounded(shard.config.shard_inbox_max);
        shard.set_controller(requests_tx);
        spawn_local(controller.run(requests_rx)).detach();
        shard.broadcast_metadata(image).await.map_err(|e| format!("applying metadata: {e}"))?;
        shard.announce_serving().await.map_err(|e| format!("starting shards: {e}"))?;
    } else {
        shard.wait_ready().await;
    }
    strand_shards::net::bind_reuseport(listen).map_err(|e| format!("listener {listen}: {e}"))
}

/// Answers requests from other shards, each as its own task.
async fn serve_inbox(shard: Rc<ShardState>, inbox: Inbox<ShardRequest>) {
    while let Some(request) = inbox.recv().await {
        spawn_local(Rc::clone(&shard).handle(request)).detach();
    }
}
