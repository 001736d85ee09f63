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

/// Holds a broker's listener address from the busy-port check until its shards listen.
///
/// The check ([`probe_listen_address`]) binds without SO_REUSEPORT, so it fails where anything
/// listens; but once it is released, a second broker starting at the same moment could pass
/// its own check before the first broker's shards bind, and both would then share the port
/// through SO_REUSEPORT. The claim closes that gap: a socket bound with SO_REUSEPORT but not
/// SO_REUSEADDR, and not listening (so no connection lands on it), which the shards' sockets
/// may join (same user, both SO_REUSEPORT) but every other check's bind conflicts with. Drop
/// it once the shards listen.
pub struct PortClaim {
    _socket: Socket,
}

/// Checks `addr` is free (retrying for `wait` while a just-killed broker's sockets are torn
/// down) and claims it. Returns the address with port 0 resolved.
pub fn claim_listen_address(addr: SocketAddr, wait: std::time::Duration) -> std::io::Result<(SocketAddr, PortClaim)> {
    let deadline = std::time::Instant::now() + wait;
    let resolved = loop {
        match probe_listen_address(addr) {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            result => break result?,
        }
    };
    let domain = if resolved.is_ipv6() { Domain::IPV6 } else { Domain::IPV4 };
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_port(true)?;
    socket.bind(&resolved.into())?;
    Ok((resolved, PortClaim { _socket: socket }))
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
