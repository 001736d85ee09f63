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

/// A broker's hold on its listener address for as long as it runs.
///
/// The busy-port check ([`probe_listen_address`]) alone leaves a gap: two brokers starting at
/// the same moment could both pass it before either's shards bind, and then share the port
/// through SO_REUSEPORT. The claim is a Unix socket bound to an abstract name made of the
/// address: binding a name is atomic and exclusive, and the kernel releases it when the
/// process exits, even by SIGKILL. A broker takes the claim first and checks the port second,
/// so of two brokers on one address only one gets past the claim.
pub struct PortClaim {
    _socket: std::os::unix::net::UnixDatagram,
}

/// Claims `addr` and checks that it is free (retrying both for `wait` while a just-killed
/// broker's sockets are torn down). Returns the address with port 0 resolved.
pub fn claim_listen_address(addr: SocketAddr, wait: std::time::Duration) -> std::io::Result<(SocketAddr, PortClaim)> {
    if addr.port() == 0 {
        return claim_any_port(addr);
    }
    let deadline = std::time::Instant::now() + wait;
    let claim = retry_while_in_use(deadline, || claim_name(addr))?;
    retry_while_in_use(deadline, || probe_listen_address(addr))?;
    Ok((addr, claim))
}

/// Port 0: the kernel picks a free port, which then has a name to claim. Between the pick and
/// the claim another process may take the port (a broker picking too, a client's connection):
/// then another port is picked.
fn claim_any_port(addr: SocketAddr) -> std::io::Result<(SocketAddr, PortClaim)> {
    const PICKS: usize = 16;
    let mut last = None;
    for _ in 0..PICKS {
        let picked = probe_listen_address(addr)?;
        match claim_name(picked).and_then(|claim| probe_listen_address(picked).map(|_| claim)) {
            Ok(claim) => return Ok((picked, claim)),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::ErrorKind::AddrInUse.into()))
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

fn claim_name(addr: SocketAddr) -> std::io::Result<PortClaim> {
    use std::os::linux::net::SocketAddrExt;
    let name = std::os::unix::net::SocketAddr::from_abstract_name(format!("strand/listen/{addr}"))?;
    let socket = std::os::unix::net::UnixDatagram::bind_addr(&name)?;
    Ok(PortClaim { _socket: socket })
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
