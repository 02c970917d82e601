//! `tracker.random_peers N` (deniability) over real sockets: every announce reply carries the real
//! peers plus N made-up ones with public addresses of the requester's family, HTTP and UDP,
//! compact and not. The real peers here all come from loopback, so they are told apart by address.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use common::*;

/// Independent of the tracker's own table: std's predicates plus the ranges of the issue.
fn public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_unspecified()
        || o[0] == 0
        || o[0] >= 240
        || (o[0] == 100 && (64..128).contains(&o[1]))
        || (o[0] == 198 && (18..20).contains(&o[1]))
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        || (o[0] == 192 && o[1] == 88 && o[2] == 99))
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    (0x2000..0x4000).contains(&s[0])
        && !(ip.is_unique_local()
            || ip.is_unicast_link_local()
            || ip.is_multicast()
            || ip.is_loopback()
            || (s[0] == 0x2001 && s[1] < 0x200)
            || (s[0] == 0x2001 && s[1] == 0xdb8)
            || s[0] == 0x2002
            || s[0] == 0x3ffe
            || (s[0] == 0x3fff && s[1] < 0x1000))
}

/// Splits compact peers into (real, random) after checking every random one.
fn split(peers: &[u8], v6: bool) -> (Vec<(IpAddr, u16)>, usize) {
    let len = if v6 { 18 } else { 6 };
    assert_eq!(peers.len() % len, 0);
    let mut real = Vec::new();
    let mut random = 0;
    for p in peers.chunks_exact(len) {
        let port = u16::from_be_bytes([p[len - 2], p[len - 1]]);
        let ip: IpAddr = if v6 {
            IpAddr::from(<[u8; 16]>::try_from(&p[..16]).unwrap())
        } else {
            IpAddr::from(<[u8; 4]>::try_from(&p[..4]).unwrap())
        };
        if ip.is_loopback() {
            real.push((ip, port));
            continue;
        }
        random += 1;
        assert!(port >= 1024, "{ip}:{port}");
        match ip {
            IpAddr::V4(a) => assert!(!v6 && public_v4(a), "{a}"),
            IpAddr::V6(a) => assert!(v6 && public_v6(a), "{a}"),
        }
    }
    (real, random)
}

fn start(n: u32) -> Tracker {
    Tracker::start(
        "random-peers",
        &format!(
            "listen.tcp 127.0.0.1:0\nlisten.tcp [::1]:0\nlisten.udp 127.0.0.1:0\n\
             listen.udp [::1]:0\ntracker.random_peers {n}\n{QUOTAS_OFF}"
        ),
    )
}

#[test]
fn http_compact_and_peers6_carry_real_plus_random() {
    let t = start(7);
    for v6 in [false, true] {
        let addr = t.http_addr(v6);
        let h = hash(if v6 { 61 } else { 41 });
        for port in 1001..=1003 {
            get(addr, &announce(&h, port, 5, ""));
        }
        for round in 0..20 {
            let r = get(addr, &announce(&h, 2000, 5, ""));
            let v = r.bencode();
            let key: &[u8] = if v6 { b"peers6" } else { b"peers" };
            let peers = v.get(key).and_then(|p| p.as_bytes()).expect("peers");
            let (real, random) = split(peers, v6);
            assert_eq!(random, 7, "round {round}");
            let mut ports: Vec<u16> = real.iter().map(|&(_, p)| p).collect();
            ports.sort_unstable();
            assert_eq!(ports, [1001, 1002, 1003]);
            // Counts include the made-up peers: the 3 others, the requester and the 7.
            let count = |k: &[u8]| v.get(k).and_then(|c| c.as_int()).unwrap();
            assert_eq!(count(b"complete") + count(b"incomplete"), 4 + 7);
        }
    }
}

#[test]
fn http_non_compact_lists_random_dicts() {
    let t = start(5);
    let addr = t.http_addr(false);
    let h = hash(42);
    get(addr, &announce(&h, 3001, 0, ""));
    let r = get(addr, &announce(&h, 3002, 5, "&compact=0&no_peer_id=1"));
    let v = r.bencode();
    let list = v.get(b"peers").and_then(|p| p.as_list()).expect("list");
    assert_eq!(list.len(), 1 + 5);
    let mut random = 0;
    for d in list {
        let ip: IpAddr = std::str::from_utf8(d.get(b"ip").unwrap().as_bytes().unwrap())
            .unwrap()
            .parse()
            .unwrap();
        let port = d.get(b"port").unwrap().as_int().unwrap();
        if ip.is_loopback() {
            assert_eq!(port, 3001);
        } else {
            random += 1;
            assert!((1024..=65535).contains(&port));
            match ip {
                IpAddr::V4(a) => assert!(public_v4(a), "{a}"),
                IpAddr::V6(a) => panic!("v6 peer {a} for a v4 requester"),
            }
        }
    }
    assert_eq!(random, 5);
}

#[test]
fn no_peers_asked_no_random_peers() {
    let t = start(5);
    let addr = t.http_addr(false);
    let h = hash(43);
    let r = get(addr, &announce(&h, 4001, 5, "&numwant=0"));
    assert_eq!(
        r.bencode().get(b"peers").unwrap().as_bytes(),
        Some(&b""[..])
    );
    let r = get(addr, &announce(&h, 4001, 5, "&event=stopped"));
    assert_eq!(
        r.bencode().get(b"peers").unwrap().as_bytes(),
        Some(&b""[..])
    );
    // An empty swarm: only made-up peers.
    let r = get(addr, &announce(&hash(44), 4002, 5, ""));
    let (real, random) = split(
        r.bencode().get(b"peers").unwrap().as_bytes().unwrap(),
        false,
    );
    assert_eq!((real.len(), random), (0, 5));
}

/// BEP 15 by hand: connect, then announce with num_want; returns the peer bytes of the reply.
fn udp_announce(tracker: SocketAddr, info_hash: &[u8; 20], num_want: i32) -> Vec<u8> {
    let bind = if tracker.is_ipv6() {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    };
    let sock = UdpSocket::bind(bind).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut req = 0x41727101980u64.to_be_bytes().to_vec();
    req.extend_from_slice(&0u32.to_be_bytes()); // action connect
    req.extend_from_slice(&11u32.to_be_bytes()); // transaction_id
    sock.send_to(&req, tracker).unwrap();
    let mut buf = [0u8; 8192];
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    assert_eq!(n, 16);
    let connection_id = &buf[8..16];
    let mut req = connection_id.to_vec();
    req.extend_from_slice(&1u32.to_be_bytes()); // action announce
    req.extend_from_slice(&12u32.to_be_bytes()); // transaction_id
    req.extend_from_slice(info_hash);
    req.extend_from_slice(b"-TE0001-udprandompee");
    req.extend_from_slice(&0u64.to_be_bytes()); // downloaded
    req.extend_from_slice(&5u64.to_be_bytes()); // left
    req.extend_from_slice(&0u64.to_be_bytes()); // uploaded
    req.extend_from_slice(&0u32.to_be_bytes()); // event none
    req.extend_from_slice(&0u32.to_be_bytes()); // ip
    req.extend_from_slice(&0u32.to_be_bytes()); // key
    req.extend_from_slice(&num_want.to_be_bytes());
    req.extend_from_slice(&sock.local_addr().unwrap().port().to_be_bytes());
    assert_eq!(req.len(), 98);
    sock.send_to(&req, tracker).unwrap();
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    assert!(n >= 20, "{:?}", &buf[..n]);
    assert_eq!(&buf[..8], &[0, 0, 0, 1, 0, 0, 0, 12]);
    // Keep the socket bound until the test process ends: a dropped socket's port can be handed
    // out again, and two announces from one address and port are one peer, not two.
    KEEP_BOUND.lock().unwrap().push(sock);
    buf[20..n].to_vec()
}

static KEEP_BOUND: std::sync::Mutex<Vec<UdpSocket>> = std::sync::Mutex::new(Vec::new());

#[test]
fn udp_carries_real_plus_random() {
    let t = start(9);
    let addr = t.udp_addr(false);
    let h = hash(45);
    udp_announce(addr, &h, -1);
    udp_announce(addr, &h, -1);
    let peers = udp_announce(addr, &h, -1);
    let (real, random) = split(&peers, false);
    assert_eq!((real.len(), random), (2, 9));
    assert!(udp_announce(addr, &h, 0).is_empty());
}

#[test]
fn udp_over_ipv6_stays_within_66_peers() {
    let t = start(200);
    let addr = t.udp_addr(true);
    let h = hash(46);
    for _ in 0..40 {
        udp_announce(addr, &h, -1);
    }
    let peers = udp_announce(addr, &h, 200);
    assert_eq!(peers.len(), 66 * 18, "20 + 66 x 18 = 1208 bytes at most");
    let (real, random) = split(&peers, true);
    assert_eq!((real.len(), random), (33, 33));
    // Over HTTP the same requester family gets all 200.
    let r = get(t.http_addr(true), &announce(&h, 5000, 5, "&numwant=200"));
    let (real, random) = split(
        r.bencode().get(b"peers6").unwrap().as_bytes().unwrap(),
        true,
    );
    assert_eq!((real.len(), random), (41, 200));
}

/// The made-up peers of a torrent are the same in every reply of a window, over HTTP and UDP,
/// and the counts of announce replies, of a scrape and of the full scrape agree with the lists.
#[test]
fn made_up_peers_are_stable_and_counted_everywhere() {
    let t = start(12);
    let addr = t.http_addr(false);
    let h = hash(47);
    for port in 1001..=1002 {
        get(addr, &announce(&h, port, 5, ""));
    }
    let fakes = |peers: &[u8]| {
        let mut f: Vec<Vec<u8>> = peers
            .chunks_exact(6)
            .filter(|p| p[0] != 127)
            .map(<[u8]>::to_vec)
            .collect();
        f.sort();
        f
    };
    let r = get(addr, &announce(&h, 2000, 5, ""));
    let v = r.bencode();
    let first = v.get(b"peers").and_then(|p| p.as_bytes()).unwrap();
    split(first, false);
    let count = |k: &[u8]| v.get(k).and_then(|c| c.as_int()).unwrap();
    let (complete, incomplete) = (count(b"complete"), count(b"incomplete"));
    assert_eq!(
        complete + incomplete,
        3 + 12,
        "two others, the requester, 12 made up"
    );
    assert_eq!(first.len() / 6, 2 + 12);
    let again = get(addr, &announce(&h, 2000, 5, ""));
    let again = again.bencode();
    assert_eq!(
        fakes(first),
        fakes(again.get(b"peers").and_then(|p| p.as_bytes()).unwrap())
    );
    let udp = udp_announce(t.udp_addr(false), &h, -1);
    assert_eq!(fakes(first), fakes(&udp));
    // The UDP announce added a real leecher: two more announces settle the split.
    get(addr, &announce(&h, 2000, 5, ""));
    let r = get(addr, &announce(&h, 2000, 5, ""));
    let v = r.bencode();
    let count = |k: &[u8]| v.get(k).and_then(|c| c.as_int()).unwrap();
    let (complete, incomplete) = (count(b"complete"), count(b"incomplete"));
    let s = get(addr, &format!("/scrape?info_hash={}", pct(&h)));
    let s = s.bencode();
    let entry = s.get(b"files").unwrap().get(&h).unwrap();
    assert_eq!(entry.get(b"complete").unwrap().as_int(), Some(complete));
    assert_eq!(entry.get(b"incomplete").unwrap().as_int(), Some(incomplete));
    // The full scrape, over HTTP/1.0: the body ends at close.
    let full = {
        use std::io::{Read, Write};
        let mut s = connect(addr);
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(s, "GET /scrape HTTP/1.0\r\n\r\n").unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        let head = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        all[head + 4..].to_vec()
    };
    let full = opentracker_rs::wire::bencode::decode(&full).expect("bencode");
    let entry = full.get(b"files").unwrap().get(&h).unwrap();
    assert_eq!(entry.get(b"complete").unwrap().as_int(), Some(complete));
    assert_eq!(entry.get(b"incomplete").unwrap().as_int(), Some(incomplete));
}
