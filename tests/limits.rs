//! Hostile-input limits, each hit on purpose against the real binary over loopback: the header
//! deadline (slowloris), pipelining beyond `http.max_pipelined`, a client that does not read its
//! answers (`http.max_write_buffer`), `http.max_connections`, and the store bounds
//! (`tracker.max_torrents`, `tracker.max_peers`) over HTTP and UDP. Each test ends by checking the
//! tracker's exit counters, so what the client saw and what the tracker counted must agree.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use common::hostile::*;
use common::*;
use opentracker_rs::types::Event;
use opentracker_rs::wire::udp::{Response, parse_response};

/// Waits (bounded) until the server closes `s`: true if it did within `limit`.
fn closed_by_server_within(s: &mut TcpStream, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn slowloris_is_closed_by_the_header_deadline() {
    let mut t = Tracker::start(
        "slowloris",
        &config_loopback("http.header_timeout 2\nhttp.idle_timeout 60\n"),
    );
    let a = t.http_addr(false);
    let mut slow = connect(a);
    let head = b"GET /announce?info_hash=";
    let start = Instant::now();
    let mut closed = false;
    // One byte every 300 ms: always active, never complete.
    for (i, b) in head.iter().cycle().enumerate() {
        if slow.write_all(&[*b]).is_err() || closed_by_server_within(&mut slow, Duration::ZERO) {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
        // Meanwhile a normal client is served at once.
        if i == 3 {
            let r = get(a, &announce(&hash(1), 1000, 0, ""));
            assert_eq!(r.status, 200);
            assert!(r.failure().is_none());
        }
        if start.elapsed() > Duration::from_secs(10) {
            break;
        }
    }
    let took = start.elapsed();
    assert!(closed, "slowloris connection still open after {took:?}");
    // Deadline 2 s, checked once a second on whole seconds.
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(5),
        "{took:?}"
    );
    let c = stop_and_count(&mut t);
    assert_eq!(count(&c, "tcp.closed.header_timeout"), 1, "{c:?}");
    assert_eq!(count(&c, "tcp.closed.idle_timeout"), 0, "{c:?}");
    assert_eq!(count(&c, "http.ipv4.announce"), 1, "{c:?}");
}

#[test]
fn a_silent_connection_is_closed_by_the_idle_timeout_not_the_header_deadline() {
    let mut t = Tracker::start(
        "idle",
        &config_loopback("http.header_timeout 1\nhttp.idle_timeout 2\n"),
    );
    let mut s = connect(t.http_addr(false));
    let start = Instant::now();
    assert!(closed_by_server_within(&mut s, Duration::from_secs(6)));
    assert!(
        start.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        start.elapsed()
    );
    let c = stop_and_count(&mut t);
    assert_eq!(count(&c, "tcp.closed.idle_timeout"), 1, "{c:?}");
    assert_eq!(count(&c, "tcp.closed.header_timeout"), 0, "{c:?}");
}

#[test]
fn pipelined_requests_beyond_the_budget_are_all_answered() {
    let mut t = Tracker::start(
        "pipelined",
        &config_loopback(&format!("http.max_pipelined 2\n{QUOTAS_OFF}")),
    );
    let a = t.http_addr(false);
    let h = hash(2);
    let mut s = connect(a);
    // 400 keep-alive requests in one write: about 60 KiB, more than one read of the server
    // (16 KiB), answered two per loop turn; the last asks to close.
    let mut batch = Vec::new();
    let n = 400;
    for i in 0..n {
        let conn = if i == n - 1 { "close" } else { "keep-alive" };
        write!(
            batch,
            "GET {} HTTP/1.1\r\nHost: t\r\nConnection: {conn}\r\n\r\n",
            announce(&h, 20000 + i as u16, 1, "&numwant=0")
        )
        .unwrap();
    }
    assert!(batch.len() > 48 * 1024);
    s.write_all(&batch).unwrap();
    for i in 0..n {
        let r = read_response(&mut s).unwrap_or_else(|| panic!("response {i} missing"));
        assert_eq!(r.status, 200);
        assert!(r.failure().is_none());
        let leechers = r.bencode().get(b"incomplete").unwrap().as_int();
        assert_eq!(leechers, Some(i as i64 + 1));
    }
    assert!(read_response(&mut s).is_none(), "closed after the last");
    let c = stop_and_count(&mut t);
    assert_eq!(count(&c, "http.ipv4.announce"), n as u64, "{c:?}");
    assert_eq!(count(&c, "tcp.closed.after_response"), 1, "{c:?}");
}

#[test]
fn a_client_that_does_not_read_is_dropped_at_max_write_buffer() {
    let mut t = Tracker::start(
        "slowreader",
        &config_loopback(&format!(
            "http.max_write_buffer 4096\nhttp.max_pipelined 32\n{QUOTAS_OFF}"
        )),
    );
    let a = t.http_addr(false);
    let h = hash(3);
    // A swarm of 200 peers, so each non-compact answer is about 7 KiB.
    let mut s = connect(a);
    let mut batch = Vec::new();
    for i in 0..200u16 {
        write!(
            batch,
            "GET {} HTTP/1.1\r\n\r\n",
            announce(&h, 30000 + i, 1, "&numwant=0")
        )
        .unwrap();
    }
    s.write_all(&batch).unwrap();
    for _ in 0..200 {
        assert_eq!(read_response(&mut s).unwrap().status, 200);
    }
    drop(s);
    // Now ask for all 200 peers, non-compact, again and again, without reading.
    let mut slow = connect(a);
    slow.set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let one = format!(
        "GET {} HTTP/1.1\r\n\r\n",
        announce(&h, 30000, 1, "&numwant=200&compact=0&no_peer_id=1")
    );
    let start = Instant::now();
    let mut dropped = false;
    while start.elapsed() < Duration::from_secs(20) {
        if slow.write_all(one.repeat(50).as_bytes()).is_err() {
            dropped = true;
            break;
        }
    }
    assert!(
        dropped,
        "the server never dropped a client that does not read"
    );
    // Another client is served normally.
    let r = get(a, &announce(&h, 40000, 0, "&numwant=5"));
    assert_eq!(r.status, 200);
    let c = stop_and_count(&mut t);
    assert_eq!(count(&c, "tcp.closed.slow_reader"), 1, "{c:?}");
}

#[test]
fn connections_over_max_connections_are_closed_at_once() {
    let mut t = Tracker::start("maxconn", &config_loopback("http.max_connections 4\n"));
    let a = t.http_addr(false);
    let held: Vec<TcpStream> = (0..4).map(|_| connect(a)).collect();
    // Let the tracker accept all four before the fifth comes.
    std::thread::sleep(Duration::from_millis(200));
    let mut extra = connect(a);
    let start = Instant::now();
    assert!(closed_by_server_within(&mut extra, Duration::from_secs(2)));
    assert!(start.elapsed() < Duration::from_secs(1));
    // One held connection still works; after closing one, a new client is served.
    let mut first = held.into_iter().next().unwrap();
    write!(
        first,
        "GET {} HTTP/1.1\r\nConnection: close\r\n\r\n",
        announce(&hash(4), 1, 1, "")
    )
    .unwrap();
    assert_eq!(read_response(&mut first).unwrap().status, 200);
    let _ = first.shutdown(Shutdown::Both);
    drop(first);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(get(a, &announce(&hash(4), 2, 1, "")).status, 200);
    let c = stop_and_count(&mut t);
    assert_eq!(count(&c, "tcp.refused_over_limit"), 1, "{c:?}");
    assert_eq!(count(&c, "tcp.accepted"), 6, "{c:?}");
    // Every accepted connection is accounted for.
    let ended = count(&c, "tcp.refused_over_limit")
        + [
            "by_client",
            "after_response",
            "idle_timeout",
            "header_timeout",
            "slow_reader",
            "at_exit",
        ]
        .iter()
        .map(|k| count(&c, &format!("tcp.closed.{k}")))
        .sum::<u64>();
    assert_eq!(ended, 6, "{c:?}");
}

#[test]
fn a_full_tracker_refuses_new_torrents_and_keeps_serving_existing_swarms() {
    let mut t = Tracker::start(
        "maxtorrents",
        "listen.tcp 127.0.0.1:0\nlisten.udp 127.0.0.1:0\ntracker.max_torrents 2\n",
    );
    let a = t.http_addr(false);
    for n in [10, 11] {
        let r = get(a, &announce(&hash(n), 1, 1, ""));
        assert!(r.failure().is_none(), "{:?}", r.failure());
    }
    let r = get(a, &announce(&hash(12), 1, 1, ""));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.failure().as_deref(),
        Some("tracker is full: no new torrents accepted")
    );
    // Over UDP the same refusal is a BEP 15 error, no longer than the request.
    let u = UdpClient::new(t.udp_addr(false));
    let id = u.connect();
    let req = UdpClient::announce_bytes(id, hash(13), 2, 5, Event::Started);
    let reply = u.send(&req).expect("a reply");
    assert!(reply.len() <= req.len());
    match parse_response(&reply) {
        Ok(Response::Error(e)) => assert_eq!(
            e.message_str(),
            Some("tracker is full: no new torrents accepted")
        ),
        other => panic!("{other:?}"),
    }
    // Existing swarms take new peers, over both protocols.
    let r = get(a, &announce(&hash(10), 2, 0, ""));
    assert!(r.failure().is_none());
    assert_eq!(r.bencode().get(b"complete").unwrap().as_int(), Some(1));
    let reply = u
        .send(&UdpClient::announce_bytes(
            id,
            hash(11),
            3,
            5,
            Event::Started,
        ))
        .unwrap();
    assert!(matches!(parse_response(&reply), Ok(Response::Announce(_))));
    // A scrape of the refused torrent shows nothing was stored.
    let s = get(a, &format!("/scrape?info_hash={}", pct(&hash(12))));
    let files = s.bencode();
    let e = files.get(b"files").unwrap().get(&hash(12)).unwrap();
    assert_eq!(e.get(b"incomplete").unwrap().as_int(), Some(0));
    let c = stop_and_count(&mut t);
    assert_eq!(count(&c, "refused.torrent_limit"), 2, "{c:?}");
    assert_eq!(count(&c, "http.ipv4.failed"), 1, "{c:?}");
    assert_eq!(count(&c, "udp.ipv4.failed"), 1, "{c:?}");
    assert_eq!(count(&c, "http.ipv4.announce"), 3, "{c:?}");
    assert_eq!(count(&c, "udp.ipv4.announce"), 1, "{c:?}");
}

#[test]
fn a_full_tracker_refuses_new_peers_but_known_peers_keep_announcing() {
    let mut t = Tracker::start("maxpeers", &config_loopback("tracker.max_peers 3\n"));
    let a = t.http_addr(false);
    for port in 1..=3 {
        assert!(
            get(a, &announce(&hash(20), port, 1, ""))
                .failure()
                .is_none()
        );
    }
    let r = get(a, &announce(&hash(20), 4, 1, ""));
    assert_eq!(
        r.failure().as_deref(),
        Some("tracker is full: no new peers accepted")
    );
    let r = get(a, &announce(&hash(20), 2, 0, ""));
    assert!(r.failure().is_none());
    assert_eq!(r.bencode().get(b"complete").unwrap().as_int(), Some(1));
    // stopped frees a place.
    assert!(
        get(a, &announce(&hash(20), 1, 1, "&event=stopped"))
            .failure()
            .is_none()
    );
    assert!(get(a, &announce(&hash(20), 4, 1, "")).failure().is_none());
    let c = stop_and_count(&mut t);
    assert_eq!(count(&c, "refused.peer_limit"), 1, "{c:?}");
}
