//! A peer as the store keeps it: its compact form, nothing else.
//!
//! The compact form is the address then the port, both in network order (big endian): 6 bytes for
//! IPv4 (BEP 23), 18 bytes for IPv6 (BEP 7 `peers6`). A response is a copy of these bytes, so the
//! store never converts on the announce path. Peer identity is (IP, port), as opentracker: the
//! peer_id is never stored, so two clients behind one address and port are one peer.
//!
//! The store's record (these bytes plus one META byte) is described in [`super::torrent`].

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

/// Length of an IPv4 compact peer in bytes (4 address + 2 port), BEP 23.
pub const V4_LEN: usize = 6;
/// Length of an IPv6 compact peer in bytes (16 address + 2 port), BEP 7.
pub const V6_LEN: usize = 18;

/// An IPv4 peer in compact form: 4 address bytes then 2 port bytes, network order (BEP 23).
pub type PeerV4 = [u8; V4_LEN];
/// An IPv6 peer in compact form: 16 address bytes then 2 port bytes, network order (BEP 7).
pub type PeerV6 = [u8; V6_LEN];

/// Builds the compact form of an IPv4 peer (address octets, then the port big endian).
pub fn peer_v4(ip: Ipv4Addr, port: u16) -> PeerV4 {
    let mut p = [0u8; V4_LEN];
    p[..4].copy_from_slice(&ip.octets());
    p[4..].copy_from_slice(&port.to_be_bytes());
    p
}

/// Builds the compact form of an IPv6 peer (address octets, then the port big endian).
pub fn peer_v6(ip: Ipv6Addr, port: u16) -> PeerV6 {
    let mut p = [0u8; V6_LEN];
    p[..16].copy_from_slice(&ip.octets());
    p[16..].copy_from_slice(&port.to_be_bytes());
    p
}

/// Reads an IPv4 compact peer (BEP 23): exactly 6 bytes, address then port, network order.
///
/// Returns `None` when `bytes` is not exactly 6 bytes long (for a response buffer, iterate with
/// `chunks_exact(6)`).
pub fn decode_v4(bytes: &[u8]) -> Option<SocketAddrV4> {
    let b: &[u8; V4_LEN] = bytes.try_into().ok()?;
    let ip = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
    Some(SocketAddrV4::new(ip, u16::from_be_bytes([b[4], b[5]])))
}

/// Reads an IPv6 compact peer (BEP 7): exactly 18 bytes, address then port, network order.
///
/// Returns `None` when `bytes` is not exactly 18 bytes long (flow info and scope id are 0).
pub fn decode_v6(bytes: &[u8]) -> Option<SocketAddrV6> {
    let b: &[u8; V6_LEN] = bytes.try_into().ok()?;
    let (addr, port) = b.split_at(16);
    let mut octets = [0u8; 16];
    octets.copy_from_slice(addr);
    let port = u16::from_be_bytes([port[0], port[1]]);
    Some(SocketAddrV6::new(Ipv6Addr::from(octets), port, 0, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_bytes_are_network_order() {
        let p = peer_v4(Ipv4Addr::new(10, 1, 2, 3), 6881);
        assert_eq!(p, [10, 1, 2, 3, 0x1a, 0xe1]);
        assert_eq!(decode_v4(&p), Some("10.1.2.3:6881".parse().unwrap()));
    }

    #[test]
    fn v6_bytes_are_network_order() {
        let ip: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let p = peer_v6(ip, 0x1234);
        let mut want = [0u8; 18];
        want[0] = 0x20;
        want[1] = 0x01;
        want[2] = 0x0d;
        want[3] = 0xb8;
        want[15] = 1;
        want[16] = 0x12;
        want[17] = 0x34;
        assert_eq!(p, want);
        assert_eq!(decode_v6(&p), Some("[2001:db8::1]:4660".parse().unwrap()));
    }

    #[test]
    fn decode_rejects_wrong_lengths() {
        assert_eq!(decode_v4(&[1, 2, 3, 4, 5]), None);
        assert_eq!(decode_v4(&[1, 2, 3, 4, 5, 6, 7]), None);
        assert_eq!(decode_v4(&[]), None);
        assert_eq!(decode_v6(&[0; 17]), None);
        assert_eq!(decode_v6(&[0; 19]), None);
    }

    #[test]
    fn memcmp_order_is_address_then_port() {
        let a = peer_v4(Ipv4Addr::new(1, 2, 3, 4), 65535);
        let b = peer_v4(Ipv4Addr::new(1, 2, 3, 5), 1);
        let c = peer_v4(Ipv4Addr::new(1, 2, 3, 5), 2);
        assert!(a < b && b < c);
    }
}
