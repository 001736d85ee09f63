//! Reading one size-prefixed request frame.

use bytes::Bytes;
use futures_lite::{AsyncRead, AsyncReadExt};

/// Why a connection stops reading.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("connection closed by the client")]
    Closed,
    #[error("frame size {size} is outside [8, socket.request.max.bytes={max}]")]
    Size { size: i32, max: i32 },
    #[error("reading: {0}")]
    Io(#[from] std::io::Error),
}

/// Smallest request: api_key, api_version, correlation_id.
const REQUEST_HEADER_MIN_BYTES: i32 = 8;

pub async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R, max: i32) -> Result<Bytes, FrameError> {
    let mut size = [0u8; 4];
    match reader.read_exact(&mut size).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let size = i32::from_be_bytes(size);
    if !(REQUEST_HEADER_MIN_BYTES..=max).contains(&size) {
        return Err(FrameError::Size { size, max });
    }
    let mut frame = vec![0u8; usize::try_from(size).expect("checked positive")];
    reader.read_exact(&mut frame).await?;
    Ok(Bytes::from(frame))
}
