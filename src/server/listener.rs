//! Accepting connections on one shard until it stops. A connection past max.connections or
//! max.connections.per.ip (counted across shards) is closed as soon as it is accepted, as Kafka
//! does.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures_lite::future;
use strand_shards::net::TcpListener;
use strand_shards::task::{sleep, spawn_local};
use tracing::warn;

use super::connection::serve_connection;
use super::{ConnectionLimits, Connections};
use crate::shard::ShardState;

/// Pause after a failed accept (such as EMFILE) so a persistent failure does not spin.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(50);

pub async fn accept_loop(
    shard: Rc<ShardState>,
    listener: TcpListener,
    connections: Rc<Connections>,
    limits: Arc<ConnectionLimits>,
) {
    loop {
        let accepted = future::or(async { Some(listener.accept().await) }, async {
            shard.stopped().await;
            None
        })
        .await;
        match accepted {
            None => return,
            Some(Ok(stream)) => {
                let (peer, permit) = match stream.peer_addr().map(|peer| (peer, limits.admit(peer.ip()))) {
                    Ok((peer, Ok(permit))) => (peer, permit),
                    Ok((peer, Err(refused))) => {
                        warn!(shard = %shard.id, peer = %peer, reason = %refused, "closing new connection");
                        continue;
                    }
                    Err(e) => {
                        warn!(shard = %shard.id, error = %e, "closing new connection: no peer address");
                        continue;
                    }
                };
                let shard = Rc::clone(&shard);
                let connections = Rc::clone(&connections);
                spawn_local(async move {
                    let _open = connections.open();
                    let _permit = permit;
                    serve_connection(shard, stream, peer).await;
                })
                .detach();
            }
            Some(Err(e)) => {
                warn!(shard = %shard.id, error = %e, "accept failed");
                sleep(ACCEPT_RETRY_DELAY).await;
            }
        }
    }
}
