//! Quotas per source (issue #13) against the real binary, from several source addresses on
//! loopback (127.0.0.x, another /24 of 127/8, and ::1): new torrents per network per minute,
//! peers per address per swarm, and the UDP rate limit per source. Each test checks the exact
//! bytes the client gets and ends with the tracker's exit counters.

mod common;

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use common::hostile::*;
use common::udp::Client;
use common::*;
use opentracker_rs::types::Event;

/// One `GET` with `Connection: close` from the source address `src`.
fn get_from(src: IpAddr, addr: SocketAddr, target: &str) -> Response {
    let domain = socket2::Domain::for_address(addr);
    let s = socket2::Socket::new(domain, socket2::Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::new(src, 0).into()).unwrap();
    s.connect_timeout(&addr.into(), Duration::from_secs(5))
        .unwrap();
    let mut s: TcpStream = s.into();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: tracker\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    read_response(&mut s).expect("a response")
}

/// A BEP 15 client sending from `src`.
fn udp_from(src: &str, tracker: SocketAddr) -> Client {
    let sock = UdpSocket::bind(src).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    Client { sock, tracker }
}

/// The exact bencoded failure body for `reason`.
fn failure_body(reason: &str) -> Vec<u8> {
    format!("d14:failure reason{}:{reason}e", reason.len()).into_bytes()
}

/// The exact BEP 15 error packet for `reason` (transaction_id 77, as `Client` sends).
fn udp_error(reason: &str) -> Vec<u8> {
    let mut p = vec![0, 0, 0, 3, 0, 0, 0, 77];
    p.extend_from_slice(reason.as_bytes());
    p
}

const NEW_TORRENTS: &str = "too many new torrents from your network: retry later";
const PEERS: &str = "too many peers from your address in this swarm";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn new_torrents_per_network_over_http_and_udp() {
    let mut t = Tracker::start(
        "quota-new",
        "listen.tcp 127.0.0.1:0\nlisten.udp 127.0.0.1:0\nlisten.udp [::1]:0\n\
         tracker.max_new_torrents_per_net 3\ntracker.max_peers_per_source 0\n",
    );
    let a = t.http_addr(false);
    // 127.0.0.0/24 creates three torrents, from two of its hosts.
    for (n, src) in [(1, "127.0.0.1"), (2, "127.0.0.2"), (3, "127.0.0.1")] {
        let r = get_from(ip(src), a, &announce(&hash(n), 1000, 1, ""));
        assert!(r.failure().is_none(), "{:?}", r.failure());
    }
    // The fourth, from any host of the /24: refused, exact bytes.
    for src in ["127.0.0.1", "127.0.0.9"] {
        let r = get_from(ip(src), a, &announce(&hash(4), 1000, 1, ""));
        assert_eq!(r.status, 200);
        assert_eq!(r.body, failure_body(NEW_TORRENTS));
    }
    // Known torrents keep working for the network.
    let r = get_from(ip("127.0.0.9"), a, &announce(&hash(1), 1001, 1, ""));
    assert!(r.failure().is_none());
    assert_eq!(r.bencode().get(b"incomplete").unwrap().as_int(), Some(2));
    // Another /24 of loopback has its own quota.
    let r = get_from(ip("127.0.1.1"), a, &announce(&hash(4), 1000, 1, ""));
    assert!(r.failure().is_none());
    // UDP from 127.0.2.1: three new torrents, then the error packet (exact bytes).
    let u = udp_from("127.0.2.1:0", t.udp_addr(false));
    let id = u.connect();
    for n in 10..13 {
        u.announce(id, &hash(n), 6881, 5, Event::Started, 10);
    }
    let req = u.announce_bytes(id, &hash(13), 6881, 5, Event::Started, 10);
    assert_eq!(u.send(&req).unwrap(), udp_error(NEW_TORRENTS));
    // IPv6 (::1, a /48 of its own): its own quota of three.
    let u6 = udp_from("[::1]:0", t.udp_addr(true));
    let id6 = u6.connect();
    for n in 20..23 {
        u6.announce(id6, &hash(n), 6881, 5, Event::Started, 10);
    }
    let req = u6.announce_bytes(id6, &hash(23), 6881, 5, Event::Started, 10);
    assert_eq!(u6.send(&req).unwrap(), udp_error(NEW_TORRENTS));
    // Nothing was stored for the refused ones.
    let s = u.scrape(id, &[hash(13), hash(23)]);
    assert_eq!(s, [(0, 0, 0), (0, 0, 0)]);
    let c = stop_and_count(&mut t);
    assert_eq!(count(&c, "refused.new_torrents_per_net"), 4, "{c:?}");
    assert_eq!(count(&c, "http.ipv4.failed"), 2, "{c:?}");
    assert_eq!(count(&c, "udp.ipv4.failed"), 1, "{c:?}");
    assert_eq!(count(&c, "udp.ipv6.failed"), 1, "{c:?}");
    assert_eq!(count(&c, "refused.peers_per_source"), 0, "{c:?}");
}

#[test]
fn peers_per_address_per_swarm_over_http_and_udp() {
    let mut t = Tracker::start(
        "quota-peers",
        "listen.tcp 127.0.0.1:0\nlisten.udp 127.0.0.1:0\nlisten.udp [::1]:0\n\
         tracker.max_peers_per_source 2\n",
    );
    let a = t.http_addr(false);
    let h = hash(7);
    for port in [1000, 1001] {
        let r = get_from(ip("127.0.0.1"), a, &announce(&h, port, 1, ""));
        assert!(r.failure().is_none(), "{:?}", r.failure());
    }
    // A third port of 127.0.0.1 in the swarm: refused, exact bytes.
    let r = get_from(ip("127.0.0.1"), a, &announce(&h, 1002, 1, ""));
    assert_eq!(r.body, failure_body(PEERS));
    // A refresh of a known peer, even a completion, is never refused.
    let r = get_from(
        ip("127.0.0.1"),
        a,
        &announce(&h, 1001, 0, "&event=completed"),
    );
    assert!(r.failure().is_none(), "{:?}", r.failure());
    // Another address of the same /24 is another source; another swarm another count.
    let r = get_from(ip("127.0.0.2"), a, &announce(&h, 1002, 1, ""));
    assert!(r.failure().is_none());
    let r = get_from(ip("127.0.0.1"), a, &announce(&hash(8), 1002, 1, ""));
    assert!(r.failure().is_none());
    // UDP from 127.0.0.3, same swarm: two ports, then the error packet.
    let u = udp_from("127.0.0.3:0", t.udp_addr(false));
    let id = u.connect();
    for port in [6881, 6882] {
        u.announce(id, &h, port, 5, Event::Started, 10);
    }
    let req = u.announce_bytes(id, &h, 6883, 5, Event::Started, 10);
    assert_eq!(u.send(&req).unwrap(), udp_error(PEERS));
    // Stopping one makes room.
    u.announce(id, &h, 6881, 5, Event::Stopped, 10);
    let (_, leechers, seeders, _) = u.announce(id, &h, 6883, 5, Event::Started, 10);
    assert_eq!((leechers, seeders), (4, 1));
    // IPv6 ::1 (its /64): the same rule.
    let u6 = udp_from("[::1]:0", t.udp_addr(true));
    let id6 = u6.connect();
    for port in [6881, 6882] {
        u6.announce(id6, &h, port, 5, Event::Started, 10);
    }
    let req = u6.announce_bytes(id6, &h, 6883, 5, Event::Started, 10);
    assert_eq!(u6.send(&req).unwrap(), udp_error(PEERS));
    let c = stop_and_count(&mut t);
    assert_eq!(count(&c, "refused.peers_per_source"), 3, "{c:?}");
    assert_eq!(count(&c, "http.ipv4.failed"), 1, "{c:?}");
    assert_eq!(count(&c, "udp.ipv4.failed"), 1, "{c:?}");
    assert_eq!(count(&c, "udp.ipv6.failed"), 1, "{c:?}");
}

#[test]
fn udp_rate_limit_drops_a_flooding_source_only() {
    let mut t = Tracker::start(
        "quota-udp-rate",
        "listen.tcp 127.0.0.1:0\nlisten.udp 127.0.0.1:0\nlisten.udp [::1]:0\n\
         udp.rate_limit 1\nudp.rate_burst 20\n",
    );
    let tracker = t.udp_addr(false);
    // 127.0.0.5 sends 60 connects at once: 20 (the burst) are answered, plus at most one a
    // second the sending took; the rest get no answer at all.
    let flood = udp_from("127.0.0.5:0", tracker);
    flood
        .sock
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let start = Instant::now();
    for _ in 0..60 {
        flood
            .sock
            .send_to(&UdpClient::connect_bytes(1), tracker)
            .unwrap();
    }
    let took = start.elapsed().as_secs() + 1;
    let mut buf = [0u8; 64];
    let mut answered = 0u64;
    while let Ok((n, _)) = flood.sock.recv_from(&mut buf) {
        assert_eq!(n, 16);
        answered += 1;
    }
    assert!(
        (20..=20 + took).contains(&answered),
        "{answered} answered in {took} s"
    );
    // Another source of the same /24 is served meanwhile, and so is ::1.
    let other = udp_from("127.0.0.6:0", tracker);
    let id = other.connect();
    other.announce(id, &hash(1), 6881, 5, Event::Started, 10);
    let v6 = udp_from("[::1]:0", t.udp_addr(true));
    v6.connect();
    let c = stop_and_count(&mut t);
    assert_eq!(count(&c, "udp.rate_limited"), 60 - answered, "{c:?}");
    assert_eq!(count(&c, "udp.ipv4.connect"), answered + 1, "{c:?}");
    assert_eq!(count(&c, "udp.ipv4.announce"), 1, "{c:?}");
    assert_eq!(count(&c, "udp.ipv6.connect"), 1, "{c:?}");
}

#[test]
fn quota_counters_in_metrics_and_stats() {
    let mut t = Tracker::start(
        "quota-metrics",
        "listen.tcp 127.0.0.1:0\nlisten.udp 127.0.0.1:0\naccess.stats 127.0.0.1\n\
         tracker.max_peers_per_source 1\nudp.rate_limit 1\nudp.rate_burst 1\n",
    );
    let a = t.http_addr(false);
    assert!(get(a, &announce(&hash(1), 1, 1, "")).failure().is_none());
    assert_eq!(
        get(a, &announce(&hash(1), 2, 1, "")).failure().as_deref(),
        Some(PEERS)
    );
    let u = udp_from("127.0.0.7:0", t.udp_addr(false));
    u.sock
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    for _ in 0..5 {
        u.sock
            .send_to(&UdpClient::connect_bytes(1), t.udp_addr(false))
            .unwrap();
    }
    let mut buf = [0u8; 64];
    let mut answered = 0;
    while u.sock.recv_from(&mut buf).is_ok() {
        answered += 1;
    }
    let limited = 5 - answered;
    assert!(limited >= 3, "{answered} answered");
    let m = String::from_utf8(get(a, "/metrics").body).unwrap();
    for line in [
        "opentracker_refused_total{reason=\"peers_per_source\"} 1".to_string(),
        "opentracker_refused_total{reason=\"new_torrents_per_net\"} 0".to_string(),
        format!("opentracker_udp_rate_limited_total {limited}"),
    ] {
        assert!(m.lines().any(|l| l == line), "{line} in\n{m}");
    }
    // The status page, read to the end (HTTP/1.0: not chunked).
    let mut s = connect(a);
    s.write_all(b"GET /stats/html HTTP/1.0\r\n\r\n").unwrap();
    let mut html = String::new();
    std::io::Read::read_to_string(&mut s, &mut html).unwrap();
    assert!(html.contains("<td id=\"refused-peers-per-source\">1</td>"));
    assert!(html.contains(&format!(
        "<td id=\"refused-udp-rate-limited\">{limited}</td>"
    )));
    let c = stop_and_count(&mut t);
    assert_eq!(count(&c, "udp.rate_limited"), limited, "{c:?}");
}

/// One source sending from many ports: with `tracker.workers 2` the kernel spreads its
/// datagrams over both workers (by address and port), and the workers share one rate table, so
/// the source gets its one rate in total, not one per worker.
#[test]
fn udp_rate_limit_is_one_for_a_source_on_many_ports() {
    const PORTS: usize = 16;
    const EACH: usize = 10;
    let mut t = Tracker::start(
        "quota-udp-rate-ports",
        "listen.tcp 127.0.0.1:0\nlisten.udp 127.0.0.1:0\nudp.rate_limit 1\nudp.rate_burst 20\n",
    );
    let tracker = t.udp_addr(false);
    let socks: Vec<UdpSocket> = (0..PORTS)
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.8:0").unwrap();
            s.set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            s
        })
        .collect();
    // 160 connects from 16 ports of 127.0.0.8, in turn: the burst (20) is answered, plus at
    // most one a second the sending took.
    let start = Instant::now();
    for _ in 0..EACH {
        for s in &socks {
            s.send_to(&UdpClient::connect_bytes(1), tracker).unwrap();
        }
    }
    let took = start.elapsed().as_secs() + 1;
    let mut buf = [0u8; 64];
    let mut answered = 0u64;
    let mut ports_answered = 0;
    for s in &socks {
        let before = answered;
        while let Ok((n, _)) = s.recv_from(&mut buf) {
            assert_eq!(n, 16);
            answered += 1;
        }
        ports_answered += usize::from(answered > before);
    }
    assert!(
        (20..=20 + took).contains(&answered),
        "{answered} answered in {took} s from {PORTS} ports (answers reached \
         {ports_answered} ports), bound {}",
        20 + took
    );
    let c = stop_and_count(&mut t);
    let sent = (PORTS * EACH) as u64;
    assert_eq!(count(&c, "udp.rate_limited"), sent - answered, "{c:?}");
    assert_eq!(count(&c, "udp.ipv4.connect"), answered, "{c:?}");
}
