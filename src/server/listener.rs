//! Accepting connections on one shard until it stops.

use std::rc::Rc;
use std::time::Duration;

use futures_lite::future;
use strand_shards::net::TcpListener;
use strand_shards::task::{sleep, spawn_local};
use tracing::warn;

use super::connection::serve_connection;
use super::Connections;
use crate::shard::ShardState;

/// Pause after a failed accept (such as EMFILE) so a persistent failure does not spin.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(50);

pub async fn accept_loop(shard: Rc<ShardState>, listener: TcpListener, connections: Rc<Connections>) {
    loop {
        let accepted = future::or(async { Some(listener.accept().await) }, async {
            shard.stopped().await;
            None
        })
        .await;
        match accepted {
            None => return,
            Some(Ok(stream)) => {
                let shard = Rc::clone(&shard);
                let connections = Rc::clone(&connections);
                spawn_local(async move {
                    let _open = connections.open();
                    serve_connection(shard, stream).await;
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
