//! One client connection: a reader that parses frames and starts each request as its own
//! task, and a writer that sends the responses in request order. What one client can make the
//! broker hold is bounded: at most max.in.flight.requests.per.connection requests unanswered,
//! and no new request read while connection.response.buffer.max.bytes of responses wait to be
//! written (past either, the reader stops reading, which pushes back through TCP). A connection
//! with no progress for connections.max.idle.ms is closed, half-read frame or not.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::{future, AsyncWriteExt};
use strand_shards::net::TcpStream;
use strand_shards::task::{spawn_local, Task};
use tracing::{debug, warn};

use super::connection_state::ConnectionState;
use super::frame::{read_frame, FrameError};
use crate::handlers::{decode_request, dispatch, RequestError};
use crate::protocol::ResponseFrame;
use crate::shard::ShardState;

/// The most one write of a response hands the socket; see [`write_frame`].
const WRITE_PIECE_BYTES: usize = 256 << 10;

type Pending = Task<Result<Option<ResponseFrame>, RequestError>>;

/// Why the reader stopped reading requests.
enum ReadEnd {
    /// The client closed or sent something that cannot be answered (logged where it was
    /// found), the writer closed, or the broker is stopping: answer what was read.
    Finished,
    /// Nothing happened for connections.max.idle.ms.
    Idle,
}

pub async fn serve_connection(shard: Rc<ShardState>, stream: TcpStream, peer_addr: SocketAddr) {
    let peer = peer_addr.to_string();
    // Kafka shows a client's host as Java prints an address: "/" then the IP.
    let client_host: Rc<str> = format!("/{}", peer_addr.ip()).into();
    if let Err(e) = stream.set_nodelay(true) {
        debug!(peer, error = %e, "TCP_NODELAY not set");
    }
    let (reader, writer) = futures_lite::io::split(stream);
    let (queue, pending) = flume::bounded::<Pending>(shard.config.max_in_flight_requests_per_connection);
    let state = Rc::new(ConnectionState::new());
    let idle = Duration::from_millis(shard.config.connections_max_idle_ms);
    let writer_task = spawn_local(write_responses(writer, pending, Rc::clone(&state), peer.clone()));
    let end = read_requests(&shard, reader, &queue, &state, idle, &peer, client_host).await;
    drop(queue);
    if matches!(end, ReadEnd::Idle) {
        debug!(peer, idle_ms = shard.config.connections_max_idle_ms, "closing idle connection");
        return; // Dropping the writer task cancels it; the socket closes with both halves.
    }
    // Answer what was read, unless the client stops reading those answers for as long.
    let drained = future::or(
        async {
            writer_task.await;
            true
        },
        async {
            state.idle_for(idle).await;
            false
        },
    );
    if !drained.await {
        debug!(peer, "closing connection: its last responses went unread");
    }
}

/// Reads, decodes and starts requests until the client or the writer closes, the broker
/// stops or the connection is idle, whichever comes first, wherever the reader waits: for the
/// response buffer to drain, for a frame, or for room in the queue of requests in flight.
async fn read_requests<R: futures_lite::AsyncRead + Unpin>(
    shard: &Rc<ShardState>,
    mut reader: R,
    queue: &flume::Sender<Pending>,
    state: &Rc<ConnectionState>,
    idle: Duration,
    peer: &str,
    client_host: Rc<str>,
) -> ReadEnd {
    let max = shard.config.socket_request_max_bytes;
    let response_buffer_max = shard.config.connection_response_buffer_max_bytes;
    let reading = async {
        loop {
            state.response_buffer_below(response_buffer_max).await;
            let frame = match read_frame(&mut reader, max).await {
                Ok(frame) => frame,
                Err(FrameError::Closed) => return ReadEnd::Finished,
                Err(e) => return refuse(peer, &e),
            };
            let request = match decode_request(frame) {
                Ok(request) => request,
                Err(e) => return refuse(peer, &e),
            };
            let reserved = request.response_bytes_reserved();
            state.request_read(reserved);
            let handled = dispatch(Rc::clone(shard), request, Rc::clone(&client_host));
            let state_of_task = Rc::clone(state);
            let task = spawn_local(async move {
                let result = handled.await;
                state_of_task.request_processed(reserved, result.as_ref().map_or(0, |r| r.as_ref().map_or(0, ResponseFrame::len)));
                result
            });
            if queue.send_async(task).await.is_err() {
                return ReadEnd::Finished;
            }
        }
    };
    let stopping = async {
        future::or(shard.stopped(), state.closed()).await;
        ReadEnd::Finished
    };
    let idle = async {
        state.idle_for(idle).await;
        ReadEnd::Idle
    };
    future::or(reading, future::or(stopping, idle)).await
}

/// Logs why a connection stops being read; the requests read before are still answered.
fn refuse(peer: &str, error: &dyn std::fmt::Display) -> ReadEnd {
    warn!(peer, error = %error, "closing connection");
    ReadEnd::Finished
}

async fn write_responses<W: futures_lite::AsyncWrite + Unpin>(
    mut writer: W,
    pending: flume::Receiver<Pending>,
    state: Rc<ConnectionState>,
    peer: String,
) {
    while let Ok(task) = pending.recv_async().await {
        match task.await {
            Ok(Some(frame)) => {
                let written = write_frame(&mut writer, &frame).await;
                state.response_written(frame.len());
                if let Err(e) = written {
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
    state.close();
    let _ = writer.flush().await;
    let _ = writer.close().await;
}

/// Writes a response's parts in order, at most `WRITE_PIECE_BYTES` per write, letting other
/// tasks run after each `WRITE_PIECE_BYTES` written: a catch-up fetch of several MiB does not
/// hold the core for the whole copy into the socket.
async fn write_frame<W: futures_lite::AsyncWrite + Unpin>(writer: &mut W, frame: &ResponseFrame) -> std::io::Result<()> {
    let mut unyielded = 0;
    for piece in frame.parts().iter().flat_map(|part| part.chunks(WRITE_PIECE_BYTES)) {
        if unyielded >= WRITE_PIECE_BYTES {
            future::yield_now().await;
            unyielded = 0;
        }
        writer.write_all(piece).await?;
        unyielded += piece.len();
    }
    Ok(())
}
