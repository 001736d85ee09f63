//! Reading one size-prefixed request frame.

use bytes::Bytes;
use futures_lite::{AsyncRead, AsyncReadExt};

use crate::handlers::REQUEST_HEADER_MIN_BYTES;

/// Why a connection stops reading.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("connection closed by the client")]
    Closed,
    #[error("frame size {size} is outside [8, socket.request.max.bytes={max}]")]
    Size { size: i32, max: i32 },
    #[error("connection closed after {read} of a {size}-byte frame")]
    Truncated { size: i32, read: usize },
    #[error("reading: {0}")]
    Io(#[from] std::io::Error),
}

/// The buffer a frame starts with. It grows as bytes arrive, so a client that announces a
/// 100 MiB frame and sends four bytes costs this much, not 100 MiB.
const FRAME_BUFFER_INITIAL_BYTES: usize = 64 * 1024;

pub async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R, max: i32) -> Result<Bytes, FrameError> {
    let mut size = [0u8; 4];
    match reader.read_exact(&mut size).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let size = i32::from_be_bytes(size);
    let expected = match usize::try_from(size) {
        Ok(expected) if expected >= REQUEST_HEADER_MIN_BYTES && size <= max => expected,
        _ => return Err(FrameError::Size { size, max }),
    };
    // Read into exactly the frame's bytes, doubling the buffer as they arrive (a reader's
    // read_to_end would grow a full buffer past the frame to look for its end).
    let mut frame = vec![0u8; expected.min(FRAME_BUFFER_INITIAL_BYTES)];
    let mut read = 0;
    while read < expected {
        if read == frame.len() {
            frame.resize(expected.min(2 * read), 0);
        }
        match reader.read(&mut frame[read..]).await {
            Ok(0) => return Err(FrameError::Truncated { size, read }),
            Ok(n) => read += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Bytes::from(frame))
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
