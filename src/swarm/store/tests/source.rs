//! [`Store::source_peers`]: the peers of one source in a swarm, counted by a range search, in
//! flat and in chunked swarms, IPv4 (address) and IPv6 (/64).

use super::*;
use crate::swarm::peer::peer_v6;
use crate::swarm::torrent::PeerVec;
use std::net::Ipv6Addr;

fn add<const N: usize>(s: &mut Store<N>, h: &InfoHash, peer: &[u8; N]) {
    let mut rng = fastrand::Rng::with_seed(1);
    let req = AnnounceInput {
        info_hash: h,
        peer,
        seeder: false,
        event: Event::Started,
        numwant: 0,
    };
    s.announce(&req, 1, &mut rng, &mut Vec::new());
}

fn v4(a: u8, b: u8, port: u16) -> [u8; 6] {
    peer_v4(Ipv4Addr::new(10, 0, a, b), port)
}

#[test]
fn unknown_torrent_and_known_peer() {
    let mut s = StoreV4::new(StoreConfig::default());
    assert_eq!(s.source_peers(&H1, &v4(0, 1, 1), 4), SourcePeers::default());
    add(&mut s, &H1, &v4(0, 1, 1));
    let known = s.source_peers(&H1, &v4(0, 1, 1), 4);
    assert_eq!((known.torrent, known.peer), (true, true));
    let other_port = s.source_peers(&H1, &v4(0, 1, 2), 4);
    assert_eq!(
        other_port,
        SourcePeers {
            torrent: true,
            peer: false,
            same_source: 1
        }
    );
    assert_eq!(s.source_peers(&H2, &v4(0, 1, 1), 4), SourcePeers::default());
}

#[test]
fn counts_one_address_among_neighbours() {
    let mut s = StoreV4::new(StoreConfig::default());
    // Neighbours on both sides: 10.0.0.{1,3} and ports at the ends of the range.
    for port in [1, 2, 65535] {
        add(&mut s, &H1, &v4(0, 1, port));
        add(&mut s, &H1, &v4(0, 3, port));
    }
    for port in [0x00ff, 0xff00, 1, 65535, 7] {
        add(&mut s, &H1, &v4(0, 2, port));
    }
    s.check_invariants();
    assert_eq!(s.source_peers(&H1, &v4(0, 2, 9), 4).same_source, 5);
    assert_eq!(s.source_peers(&H1, &v4(0, 1, 9), 4).same_source, 3);
    assert_eq!(s.source_peers(&H1, &v4(0, 4, 9), 4).same_source, 0);
    assert_eq!(s.source_peers(&H1, &v4(0, 0, 9), 4).same_source, 0);
    // A shorter prefix: the /24.
    assert_eq!(s.source_peers(&H1, &v4(0, 9, 9), 3).same_source, 11);
}

#[test]
fn counts_across_the_chunks_of_a_big_swarm() {
    let mut s = StoreV4::new(StoreConfig::default());
    let many = PeerVec::<6>::CHUNK_MAX * 3;
    // Other sources before and after, and one source with `many` ports spanning chunks.
    for b in 0..200u16 {
        add(&mut s, &H1, &v4(0, 1, b + 1));
        add(&mut s, &H1, &v4(0, 3, b + 1));
    }
    for port in 1..=many as u16 {
        add(&mut s, &H1, &v4(0, 2, port));
    }
    assert!(s.get(&H1).unwrap().peers().is_chunked());
    s.check_invariants();
    assert_eq!(s.source_peers(&H1, &v4(0, 2, 0), 4).same_source, many);
    assert_eq!(s.source_peers(&H1, &v4(0, 1, 999), 4).same_source, 200);
    assert_eq!(s.source_peers(&H1, &v4(0, 3, 999), 4).same_source, 200);
    assert_eq!(s.source_peers(&H1, &v4(0, 9, 1), 4).same_source, 0);
    assert_eq!(s.source_peers(&H1, &v4(0, 0, 1), 4).same_source, 0);
    assert_eq!(s.source_peers(&H1, &v4(0, 0, 1), 3).same_source, many + 400);
    // A count against a recount by iteration.
    let recount = s
        .get(&H1)
        .unwrap()
        .peers()
        .iter()
        .filter(|(a, _)| a[..4] == [10, 0, 0, 2])
        .count();
    assert_eq!(recount, many);
}

#[test]
fn ipv6_counts_by_slash_64() {
    let mut s = StoreV6::new(StoreConfig::default());
    let a = |net: u16, host: u16, port: u16| {
        peer_v6(Ipv6Addr::new(0x2001, 0xdb8, 0, net, 0, 0, 0, host), port)
    };
    for host in 1..=5 {
        add(&mut s, &H1, &a(1, host, 6881));
    }
    add(&mut s, &H1, &a(0, 1, 6881));
    add(&mut s, &H1, &a(2, 1, 6881));
    assert_eq!(s.source_peers(&H1, &a(1, 99, 1), 8).same_source, 5);
    assert_eq!(s.source_peers(&H1, &a(2, 99, 1), 8).same_source, 1);
    assert_eq!(s.source_peers(&H1, &a(3, 99, 1), 8).same_source, 0);
    assert!(s.source_peers(&H1, &a(1, 3, 6881), 8).peer);
}
