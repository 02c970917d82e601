//! UDP tracker (BEP 15) over real sockets on 127.0.0.1 and [::1], against the real binary.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use common::udp::Client;
use common::*;
use opentracker_rs::types::Event;
use opentracker_rs::wire::udp::{ConnectRequest, Response, parse_response};

fn start() -> Tracker {
    Tracker::start("udp", "listen.udp 127.0.0.1:0\nlisten.udp [::1]:0\n")
}

#[test]
fn connect_announce_scrape_ipv4() {
    let t = start();
    let addr = t.udp_addr(false);
    let leecher = Client::new(addr);
    let seeder = Client::new(addr);
    let h = hash(100);
    let id = leecher.connect();
    let (interval, leechers, seeders, peers) =
        leecher.announce(id, &h, leecher.port(), 10, Event::Started, -1);
    assert!((1620..=1980).contains(&interval));
    assert_eq!((leechers, seeders), (1, 0));
    assert!(peers.is_empty(), "never the requester itself");

    // The same connection_id works from another source port of the same address.
    let (_, leechers, seeders, peers) =
        seeder.announce(id, &h, seeder.port(), 0, Event::Completed, -1);
    assert_eq!((leechers, seeders), (1, 1));
    let mut expect = vec![127, 0, 0, 1];
    expect.extend_from_slice(&leecher.port().to_be_bytes());
    assert_eq!(peers, expect, "6-byte peer of the leecher");

    assert_eq!(
        leecher.scrape(id, &[h, hash(101)]),
        vec![(1, 1, 1), (0, 0, 0)]
    );

    // stopped: 20-byte reply with counts after removal.
    let reply = leecher
        .send(&leecher.announce_bytes(id, &h, leecher.port(), 10, Event::Stopped, -1))
        .unwrap();
    assert_eq!(reply.len(), 20);
    assert_eq!(leecher.scrape(id, &[h]), vec![(1, 1, 0)]);
    // numwant 0: counts only.
    let (_, _, _, peers) = leecher.announce(id, &h, 5555, 10, Event::None, 0);
    assert!(peers.is_empty());
    let (_, _, _, peers) = leecher.announce(id, &h, 5556, 10, Event::None, 1);
    assert_eq!(peers.len(), 6);
}

#[test]
fn announce_over_ipv6_returns_18_byte_peers() {
    let t = start();
    let addr = t.udp_addr(true);
    let a = Client::new(addr);
    let b = Client::new(addr);
    let h = hash(110);
    let id = a.connect();
    a.announce(id, &h, a.port(), 10, Event::Started, -1);
    let (_, leechers, _, peers) = b.announce(id, &h, b.port(), 10, Event::Started, -1);
    assert_eq!(leechers, 2);
    let mut expect = vec![0u8; 15];
    expect.push(1);
    expect.extend_from_slice(&a.port().to_be_bytes());
    assert_eq!(peers, expect);
}

#[test]
fn scrape_of_74_and_more_hashes_in_request_order() {
    let t = start();
    let c = Client::new(t.udp_addr(false));
    let id = c.connect();
    let hashes: Vec<[u8; 20]> = (0..130).map(|i| hash(1000 + 130 - i)).collect();
    c.announce(id, &hashes[3], 4000, 0, Event::None, 0);
    let got = c.scrape(id, &hashes[..74]);
    assert_eq!(got.len(), 74);
    assert_eq!(got[3], (1, 0, 0));
    assert!(
        got.iter()
            .enumerate()
            .all(|(i, e)| i == 3 || *e == (0, 0, 0))
    );
    // More than fit one datagram: the first 120 are answered.
    let got = c.scrape(id, &hashes);
    assert_eq!(got.len(), 120);
}

#[test]
fn many_peers_numwant_bounds() {
    let t = Tracker::start(
        "udpnumwant",
        &format!(
            "listen.udp 127.0.0.1:0\ntracker.numwant.default 7\ntracker.numwant.max 30\n\
             {QUOTAS_OFF}"
        ),
    );
    let c = Client::new(t.udp_addr(false));
    let id = c.connect();
    let h = hash(120);
    for port in 1..=40u16 {
        c.announce(id, &h, port, 1, Event::None, 0);
    }
    assert_eq!(c.announce(id, &h, 9999, 1, Event::None, -1).3.len(), 7 * 6);
    assert_eq!(c.announce(id, &h, 9999, 1, Event::None, 10).3.len(), 10 * 6);
    assert_eq!(
        c.announce(id, &h, 9999, 1, Event::None, 1000).3.len(),
        30 * 6
    );
}

#[test]
fn bad_datagrams_each_followed_by_a_good_one() {
    let t = start();
    let c = Client::new(t.udp_addr(false));
    let id = c.connect();
    let h = hash(130);
    let good = |c: &Client| {
        let (_, leechers, _, _) = c.announce(id, &h, 1234, 1, Event::None, 0);
        assert_eq!(leechers, 1);
    };
    // Too short: silence.
    c.expect_silence(&[0u8; 15]);
    good(&c);
    // Connect with a wrong magic: silence.
    let mut bad = Vec::new();
    ConnectRequest { transaction_id: 5 }.emit(&mut bad);
    bad[0] ^= 0xff;
    c.expect_silence(&bad);
    good(&c);
    // Unknown action with a valid id: error packet.
    let mut unknown = c.announce_bytes(id, &h, 1, 1, Event::None, 0);
    unknown[8..12].copy_from_slice(&9u32.to_be_bytes());
    let msg = c.expect_error(&unknown);
    assert!(msg.contains("action"), "{msg}");
    good(&c);
    // Forged connection id: error, no larger than the request.
    let forged = c.announce_bytes(id ^ 0x5555, &h, 1, 1, Event::None, 0);
    let msg = c.expect_error(&forged);
    assert!(msg.contains("connection_id"), "{msg}");
    // A 16-byte scrape header with a forged id: the error is cut to 16 bytes.
    let mut tiny = c.scrape_bytes(id ^ 1, &[h]);
    tiny.truncate(16);
    let reply = c.send(&tiny).unwrap();
    assert_eq!(reply.len(), 16);
    good(&c);
    // Truncated announce (97 bytes) with a valid id: error.
    let mut short = c.announce_bytes(id, &h, 1, 1, Event::None, 0);
    short.truncate(97);
    c.expect_error(&short);
    good(&c);
    // Bad event value.
    let mut bad_event = c.announce_bytes(id, &h, 1, 1, Event::None, 0);
    bad_event[80..84].copy_from_slice(&7u32.to_be_bytes());
    c.expect_error(&bad_event);
    good(&c);
    // Scrape with a partial hash.
    let mut partial = c.scrape_bytes(id, &[h]);
    partial.truncate(30);
    c.expect_error(&partial);
    good(&c);
    // Trailing bytes after 98: BEP 41 NOP + end of options are accepted.
    let mut opts = c.announce_bytes(id, &h, 1235, 1, Event::None, 0);
    opts.extend_from_slice(&[1, 2, 5, b'/', b'a', b'n', b'n', b'?', 0]);
    let reply = c.send(&opts).unwrap();
    assert!(matches!(
        parse_response(&reply).unwrap(),
        Response::Announce(_)
    ));
    // None of the bad ones changed the swarm: two good peers (1234, 1235), nobody else.
    assert_eq!(c.scrape(id, &[h]), vec![(0, 0, 2)]);
}

#[test]
fn connection_id_is_bound_to_the_address() {
    // An id made for 127.0.0.1 is not valid from 127.0.0.2. (Expiry after two 2-minute windows
    // is tested in front::conn_id with time as a parameter.)
    let t = Tracker::start("udpaddr", "listen.udp 0.0.0.0:0\n");
    let port = t.udp[0].port();
    let a = Client::new(SocketAddr::from(([127, 0, 0, 1], port)));
    let id = a.connect();
    let sock = UdpSocket::bind("127.0.0.2:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let b = Client {
        sock,
        tracker: SocketAddr::from(([127, 0, 0, 1], port)),
    };
    let msg = b.expect_error(&b.announce_bytes(id, &hash(140), 1, 1, Event::None, 0));
    assert!(msg.contains("connection_id"));
    let id_b = b.connect();
    assert_ne!(id, id_b);
    b.announce(id_b, &hash(140), 1, 1, Event::None, 0);
}

/// Port 0 is refused over UDP as over HTTP, with the same text, and changes nothing.
#[test]
fn port_zero_is_refused_as_over_http() {
    let t = Tracker::start(
        "udpport0",
        "listen.udp 127.0.0.1:0\nlisten.tcp 127.0.0.1:0\n",
    );
    let c = Client::new(t.udp_addr(false));
    let id = c.connect();
    let h = hash(150);
    let msg = c.expect_error(&c.announce_bytes(id, &h, 0, 1, Event::Started, -1));
    let http = get(t.http_addr(false), &announce(&h, 0, 1, ""));
    assert_eq!(Some(msg), http.failure());
    assert_eq!(c.scrape(id, &[h]), vec![(0, 0, 0)]);
}
