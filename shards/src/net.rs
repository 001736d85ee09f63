//! Networking on the current shard: every shard binds the same address with SO_REUSEPORT and
//! the kernel spreads connections across them.

use std::net::SocketAddr;
use std::os::unix::io::{FromRawFd, IntoRawFd};

pub use glommio::net::{TcpListener, TcpStream};
use socket2::{Domain, Protocol, Socket, Type};

/// Backlog of each shard's listening socket.
const LISTEN_BACKLOG: i32 = 1024;

/// Checks that `addr` is free for a new broker and resolves port 0, before the shards bind it
/// with SO_REUSEPORT (which would let a second broker share the port instead of failing).
/// SO_REUSEADDR (without SO_REUSEPORT) still fails on a port something listens on, but not on
/// one that only has connections in TIME-WAIT, which a broker killed with SIGKILL leaves
/// behind for a minute for every idle connection the kernel closed for it.
pub fn probe_listen_address(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let domain = if addr.is_ipv6() { Domain::IPV6 } else { Domain::IPV4 };
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1)?;
    socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not an IP socket address"))
}

/// Binds a listener for this shard with SO_REUSEPORT and SO_REUSEADDR.
///
/// glommio's own `TcpListener::bind` sets only SO_REUSEPORT. Connections the broker closes
/// first then sit in TIME-WAIT without SO_REUSEADDR, and for a minute after a restart no plain
/// bind of the port (the broker's busy-port check) succeeds. Setting both avoids that.
pub fn bind_reuseport(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let domain = if addr.is_ipv6() { Domain::IPV6 } else { Domain::IPV4 };
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    let fd = socket.into_raw_fd();
    // SAFETY: `fd` is a bound, listening TCP socket whose ownership `into_raw_fd` just gave up;
    // the listener becomes its only owner and closes it.
    #[allow(unsafe_code)]
    let listener = unsafe { TcpListener::from_raw_fd(fd) };
    Ok(listener)
}
