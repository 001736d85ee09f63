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
/// A bind with SO_REUSEADDR (without SO_REUSEPORT) fails on a port something listens on, but
/// not on one that only has connections in TIME-WAIT, which a broker killed with SIGKILL leaves
/// behind for a minute for every idle connection the kernel closed for it. The socket never
/// listens: a client connecting while it exists would be reset when it closes.
pub fn probe_listen_address(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let domain = if addr.is_ipv6() { Domain::IPV6 } else { Domain::IPV4 };
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not an IP socket address"))
}

/// Holds a broker's listener address from the busy-port check until its shards listen.
///
/// The check ([`probe_listen_address`]) binds without SO_REUSEPORT, so it fails where anything
/// listens; but the shards bind only after recovery, and until they do a second broker could
/// pass the same check, and both would then share the port through SO_REUSEPORT. Two holds
/// close that gap:
/// - a startup lock taken before the check: a Unix socket bound to an abstract name made of
///   the port. Binding a name is atomic and exclusive, and the kernel releases it when the
///   process exits, even by SIGKILL. So brokers on one port, on the same address or
///   overlapping ones (0.0.0.0 and 127.0.0.1), pass the check one at a time, and each sees the
///   one before it listening.
/// - a TCP socket bound to the address with SO_REUSEPORT but not SO_REUSEADDR, and not
///   listening (no connection lands on it): the shards' sockets join it (same user, both
///   SO_REUSEPORT), and another program's bind of the port conflicts with it during recovery.
///
/// Drop it once the shards listen.
pub struct PortClaim {
    _startup: std::os::unix::net::UnixDatagram,
    _socket: Socket,
}

/// Claims `addr` and checks that it is free (retrying for `wait` while another broker starts
/// on the port, or a just-killed one's sockets are torn down). Returns the address with port 0
/// resolved.
pub fn claim_listen_address(addr: SocketAddr, wait: std::time::Duration) -> std::io::Result<(SocketAddr, PortClaim)> {
    if addr.port() == 0 {
        return claim_any_port(addr);
    }
    let deadline = std::time::Instant::now() + wait;
    Ok((addr, retry_while_in_use(deadline, || claim(addr))?))
}

/// Port 0: the kernel picks a free port, which is then claimed. Between the pick and the
/// claim another process may take the port (a broker picking too, a client's connection):
/// then another port is picked.
fn claim_any_port(addr: SocketAddr) -> std::io::Result<(SocketAddr, PortClaim)> {
    const PICKS: usize = 16;
    let mut last = None;
    for _ in 0..PICKS {
        let picked = probe_listen_address(addr)?;
        match claim(picked) {
            Ok(claim) => return Ok((picked, claim)),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::ErrorKind::AddrInUse.into()))
}

/// Takes the startup lock, checks the port, and holds it; see [`PortClaim`].
fn claim(addr: SocketAddr) -> std::io::Result<PortClaim> {
    let startup = lock_port(addr.port())?;
    probe_listen_address(addr)?;
    Ok(PortClaim { _startup: startup, _socket: hold_port(addr)? })
}

/// `attempt` until it succeeds, fails otherwise than with the address in use, or `deadline`.
fn retry_while_in_use<T>(deadline: std::time::Instant, attempt: impl Fn() -> std::io::Result<T>) -> std::io::Result<T> {
    loop {
        match attempt() {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            result => return result,
        }
    }
}

/// The startup lock of [`PortClaim`]: fails with the address in use while another broker
/// holds it.
fn lock_port(port: u16) -> std::io::Result<std::os::unix::net::UnixDatagram> {
    use std::os::linux::net::SocketAddrExt;
    let name = std::os::unix::net::SocketAddr::from_abstract_name(format!("strand/listener-port/{port}"))?;
    std::os::unix::net::UnixDatagram::bind_addr(&name)
}

/// The TCP hold of [`PortClaim`].
fn hold_port(addr: SocketAddr) -> std::io::Result<Socket> {
    let domain = if addr.is_ipv6() { Domain::IPV6 } else { Domain::IPV4 };
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
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
