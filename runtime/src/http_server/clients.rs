//! The per-client connection cap: at most so many connections at once from one client
//! address, counted from accept until the TCP connection closes (an upgraded websocket
//! included), so that one address cannot take the connections others need.

use crate::client_addr;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// The connections each client address holds.
#[derive(Debug)]
pub(super) struct ClientSlots {
    max_per_client: usize,
    exempt: Arc<[IpAddr]>,
    held: Mutex<HashMap<IpAddr, usize>>,
}

/// What the cap says of a new connection.
#[derive(Debug)]
pub(super) enum Admission {
    /// Served; the slot is given back when it drops.
    Counted(ClientSlot),
    /// Served, and not counted: no cap, or a trusted proxy.
    Exempt,
    /// Its address holds all it may: close it.
    Refused,
}

impl ClientSlots {
    /// `max_per_client` connections per address (0: no cap); `exempt` addresses have none.
    pub(super) fn new(max_per_client: usize, exempt: Arc<[IpAddr]>) -> Arc<Self> {
        Arc::new(Self {
            max_per_client,
            exempt,
            held: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a slot for a connection from `peer`, if its address has one left.
    pub(super) fn admit(self: &Arc<Self>, peer: IpAddr) -> Admission {
        if self.max_per_client == 0 || client_addr::is_listed(peer, &self.exempt) {
            return Admission::Exempt;
        }
        let key = client_addr::limit_key(peer);
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let count = held.entry(key).or_insert(0);
        if *count >= self.max_per_client {
            return Admission::Refused;
        }
        *count += 1;
        Admission::Counted(ClientSlot {
            slots: self.clone(),
            key,
        })
    }
}

/// One connection's place in its address's count.
#[derive(Debug)]
pub(super) struct ClientSlot {
    slots: Arc<ClientSlots>,
    key: IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut held = self
            .slots
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = held.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_address_holds_at_most_its_share_and_gets_each_slot_back() {
        let slots = ClientSlots::new(2, Arc::from([ip("10.0.0.9")]));
        let a = slots.admit(ip("192.0.2.1"));
        let b = slots.admit(ip("::ffff:192.0.2.1"));
        assert!(matches!(a, Admission::Counted(_)));
        assert!(matches!(b, Admission::Counted(_)));
        assert!(matches!(slots.admit(ip("192.0.2.1")), Admission::Refused));
        assert!(matches!(
            slots.admit(ip("192.0.2.2")),
            Admission::Counted(_)
        ));
        assert!(matches!(slots.admit(ip("10.0.0.9")), Admission::Exempt));
        drop(a);
        assert!(matches!(
            slots.admit(ip("192.0.2.1")),
            Admission::Counted(_)
        ));
        drop(b);
        assert!(slots.held.lock().unwrap().is_empty());
    }

    #[test]
    fn no_cap_when_the_maximum_is_zero() {
        let slots = ClientSlots::new(0, Arc::from([]));
        assert!(matches!(slots.admit(ip("192.0.2.1")), Admission::Exempt));
    }
}
