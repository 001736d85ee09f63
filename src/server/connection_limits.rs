//! max.connections and max.connections.per.ip, counted across every shard.
//!
//! Every shard accepts on the same port (SO_REUSEPORT) and the kernel picks the shard, so a
//! per-shard budget (max / shards each) would refuse a client whose connections happen to hash
//! onto one shard while others sit empty, and a per-IP limit of 1 could not be split at all. The
//! counts are therefore one table shared by all shards, behind a mutex held for one hash map
//! update per accept and per close: never across an await, and uncontended in practice, since
//! accepts are rare next to requests. This is the one piece of state shards share, and it
//! holds no Kafka data.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConnectionRefused {
    #[error("max.connections={max} connections are open")]
    Broker { max: usize },
    #[error("max.connections.per.ip={max} connections from {ip} are open")]
    PerIp { ip: IpAddr, max: usize },
}

pub struct ConnectionLimits {
    max_connections: usize,
    max_connections_per_ip: usize,
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    open: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Held by an admitted connection; dropping it gives its place back.
pub struct ConnectionPermit {
    limits: Arc<ConnectionLimits>,
    ip: IpAddr,
}

impl ConnectionLimits {
    pub fn new(max_connections: usize, max_connections_per_ip: usize) -> Arc<Self> {
        Arc::new(Self { max_connections, max_connections_per_ip, counts: Mutex::default() })
    }

    /// Counts a connection from `ip` in, or says which limit it is past.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionPermit, ConnectionRefused> {
        let mut counts = self.lock();
        if counts.open >= self.max_connections {
            return Err(ConnectionRefused::Broker { max: self.max_connections });
        }
        if counts.per_ip.get(&ip).copied().unwrap_or(0) >= self.max_connections_per_ip {
            return Err(ConnectionRefused::PerIp { ip, max: self.max_connections_per_ip });
        }
        *counts.per_ip.entry(ip).or_insert(0) += 1;
        counts.open += 1;
        Ok(ConnectionPermit { limits: Arc::clone(self), ip })
    }

    // The counts stay consistent even if a holder panicked: every update is one statement.
    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut counts = self.limits.lock();
        counts.open -= 1;
        if let Some(from_ip) = counts.per_ip.get_mut(&self.ip) {
            *from_ip -= 1;
            if *from_ip == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn the_connection_past_the_per_ip_limit_is_refused_and_a_close_frees_its_place() {
        let limits = ConnectionLimits::new(100, 2);
        let first = limits.admit(ip(1)).unwrap();
        let _second = limits.admit(ip(1)).unwrap();
        assert_eq!(limits.admit(ip(1)).err(), Some(ConnectionRefused::PerIp { ip: ip(1), max: 2 }));
        let _other = limits.admit(ip(2)).unwrap();
        drop(first);
        assert!(limits.admit(ip(1)).is_ok());
    }

    #[test]
    fn the_connection_past_the_broker_limit_is_refused_whatever_its_ip() {
        let limits = ConnectionLimits::new(2, 100);
        let permits = [limits.admit(ip(1)).unwrap(), limits.admit(ip(2)).unwrap()];
        assert_eq!(limits.admit(ip(3)).err(), Some(ConnectionRefused::Broker { max: 2 }));
        drop(permits);
        assert_eq!(limits.lock().open, 0);
        assert!(limits.admit(ip(3)).is_ok());
    }

    #[test]
    fn a_zero_per_ip_limit_refuses_everything_and_leaves_no_entry() {
        let limits = ConnectionLimits::new(10, 0);
        assert!(limits.admit(ip(1)).is_err());
        assert!(limits.lock().per_ip.is_empty());
    }
}
