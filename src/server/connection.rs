//! One client connection: a reader that parses frames and starts each request as its own
//! task, and a writer that sends the responses in request order. At most
//! max.in.flight.requests.per.connection requests are unanswered; past that the reader stops
//! reading, which pushes back on the client through TCP.

use std::cell::Cell;
use std::rc::Rc;

use bytes::Bytes;
use event_listener::Event;
use futures_lite::{future, AsyncWriteExt};
use strand_shards::net::TcpStream;
use strand_shards::task::{spawn_local, Task};
use tracing::{debug, warn};

use super::frame::{read_frame, FrameError};
use crate::handlers::{decode_request, dispatch, RequestError};
use crate::shard::ShardState;

/// Set by the writer when the connection must close (a request that cannot be answered, or a
/// failed write), so the reader stops too.
#[derive(Default)]
struct Closing {
    closed: Cell<bool>,
    event: Event,
}

impl Closing {
    fn close(&self) {
        self.closed.set(true);
        self.event.notify(usize::MAX);
    }

    async fn wait(&self) {
        while !self.closed.get() {
            let listener = self.event.listen();
            if self.closed.get() {
                return;
            }
            listener.await;
        }
    }
}

type Pending = Task<Result<Option<Bytes>, RequestError>>;

pub async fn serve_connection(shard: Rc<ShardState>, stream: TcpStream) {
    let peer_addr = stream.peer_addr().ok();
    let peer = peer_addr.map(|a| a.to_string()).unwrap_or_default();
    // Kafka shows a client's host as Java prints an address: "/" then the IP.
    let client_host: Rc<str> = peer_addr.map(|a| format!("/{}", a.ip())).unwrap_or_default().into();
    if let Err(e) = stream.set_nodelay(true) {
        debug!(peer, error = %e, "TCP_NODELAY not set");
    }
    let (mut reader, writer) = futures_lite::io::split(stream);
    let (queue, pending) = flume::bounded::<Pending>(shard.config.max_in_flight_requests_per_connection);
    let closing = Rc::new(Closing::default());
    let writer_task = spawn_local(write_responses(writer, pending, Rc::clone(&closing), peer.clone()));
    let max = shard.config.socket_request_max_bytes;
    loop {
        let frame = future::or(async { Some(read_frame(&mut reader, max).await) }, async {
            future::or(shard.stopped(), closing.wait()).await;
            None
        })
        .await;
        let frame = match frame {
            None => break,
            Some(Ok(frame)) => frame,
            Some(Err(FrameError::Closed)) => break,
            Some(Err(e)) => {
                warn!(peer, error = %e, "closing connection");
                break;
            }
        };
        let request = match decode_request(frame) {
            Ok(request) => request,
            Err(e) => {
                warn!(peer, error = %e, "closing connection");
                break;
            }
        };
        let task = spawn_local(dispatch(Rc::clone(&shard), request, Rc::clone(&client_host)));
        if queue.send_async(task).await.is_err() {
            break;
        }
    }
    drop(queue);
    writer_task.await;
}

async fn write_responses<W: futures_lite::AsyncWrite + Unpin>(
    mut writer: W,
    pending: flume::Receiver<Pending>,
    closing: Rc<Closing>,
    peer: String,
) {
    while let Ok(task) = pending.recv_async().await {
        match task.await {
            Ok(Some(frame)) => {
                if let Err(e) = writer.write_all(&frame).await {
                    debug!(peer, error = %e, "write failed; closing connection");
                    break;
                }
            }
            Ok(None) => {}
            Err(e) => {
                warn!(peer, error = %e, "closing connection");
                break;
            }
        }
    }
    closing.close();
    let _ = writer.flush().await;
    let _ = writer.close().await;
}
