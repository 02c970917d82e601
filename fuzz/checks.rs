// The fuzz targets' bodies, shared by `fuzz/fuzz_targets/*.rs` (cargo-fuzz, nightly) and by
// `tests/fuzz_corpus.rs` (stable: replays the seed corpus and the checked-in crash cases on every
// `cargo test`). Included with `include!`, so it names the library by its crate path only.
//
// Each function takes any byte string and panics only if a property of the code under test fails:
// a parser panicking or reading out of bounds is caught by the fuzzer itself; the asserts here
// check what a parse result or a reply promises.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use opentracker_rs::front::http::{HttpSite, Scratch, handle};
use opentracker_rs::front::udp::UdpHandler;
use opentracker_rs::service::{Policy, Tracker};
use opentracker_rs::wire::{bencode, http, query, udp};

/// `wire::http::parse_request`: a complete head consumes at most the input, its path and query
/// lie inside its target, and appending bytes after a complete head does not change it.
pub fn http_request(data: &[u8]) {
    match http::parse_request(data) {
        Ok(Some((req, used))) => {
            assert!(used <= data.len());
            assert!(req.path.len() <= req.target.len());
            assert!(req.query.len() <= req.target.len());
            let mut longer = data[..used].to_vec();
            longer.extend_from_slice(b"GET / HTTP/1.1\r\n");
            let (again, used2) = http::parse_request(&longer)
                .expect("a complete head stays valid")
                .expect("and complete");
            assert_eq!(used2, used);
            assert_eq!(again.target, req.target);
        }
        Ok(None) => {}
        Err(e) => {
            let code = e.status().code();
            assert!((400..600).contains(&code));
        }
    }
}

/// `wire::query`: percent-decoding never writes more than it read, the announce and scrape
/// parsers return a value or a typed error with a reason text.
pub fn query(data: &[u8]) {
    let mut dst = [0u8; 64];
    if let Ok(n) = query::percent_decode_into(data, &mut dst) {
        assert!(n <= data.len() && n <= dst.len());
    }
    match query::parse_announce(data) {
        Ok(a) => assert!(a.port != 0),
        Err(e) => assert!(!e.reason().is_empty()),
    }
    let mut hashes = [[0u8; 20]; 4];
    match query::parse_scrape(data, &mut hashes) {
        Ok(n) => assert!(n <= hashes.len()),
        Err(e) => assert!(!e.reason().is_empty()),
    }
    for (name, _value) in query::pairs(data) {
        let _ = query::name_is(name, b"info_hash");
    }
}

/// `wire::bencode::decode`: anything accepted is canonical, so writing the value back gives the
/// same bytes.
pub fn bencode(data: &[u8]) {
    if let Ok(v) = bencode::decode(data) {
        let mut out = Vec::new();
        rewrite(&v, &mut out);
        assert_eq!(out, data, "decode accepted non-canonical bencode");
    }
}

fn rewrite(v: &bencode::Value<'_>, out: &mut Vec<u8>) {
    use bencode::Value;
    match v {
        Value::Int(n) => bencode::put_int(out, *n),
        Value::Bytes(b) => bencode::put_bytes(out, b),
        Value::List(items) => {
            bencode::begin_list(out);
            items.iter().for_each(|i| rewrite(i, out));
            bencode::end(out);
        }
        Value::Dict(pairs) => {
            bencode::begin_dict(out);
            for (k, v) in pairs.iter() {
                bencode::put_bytes(out, k);
                rewrite(v, out);
            }
            bencode::end(out);
        }
    }
}

/// `wire::udp`: request and response parsers; whatever parses emits back to the same bytes
/// (trailing bytes a connect ignores aside).
pub fn udp_packet(data: &[u8]) {
    let _ = (
        udp::peek_connection_id(data),
        udp::peek_action(data),
        udp::peek_transaction_id(data),
    );
    if let Ok(req) = udp::parse_request(data) {
        let mut out = Vec::new();
        let n = req.emit(&mut out);
        assert_eq!(n, out.len());
        match req {
            udp::Request::Connect(_) => assert_eq!(&out[..], &data[..16]),
            _ => assert_eq!(udp::parse_request(&out), Ok(req)),
        }
    }
    if let Ok(resp) = udp::parse_response(data) {
        // The parser drops one trailing NUL of an error message (opentracker sends one), so a
        // message that still ends in NUL cannot come back the same: not a round trip.
        let nul_tail = matches!(&resp, udp::Response::Error(e) if e.message.last() == Some(&0));
        if !nul_tail {
            let mut out = Vec::new();
            resp.emit(&mut out);
            assert_eq!(udp::parse_response(&out), Ok(resp));
        }
    }
}

/// The whole UDP request path (`front::udp::UdpHandler` + `service` + the store) from
/// a source that never connected: no reply is longer than its request (no amplification), and
/// nothing is stored. The first byte picks the source family.
pub fn udp_handler(data: &[u8]) {
    let mut tracker = Tracker::new(Policy::default());
    let mut handler = UdpHandler::new().expect("random key");
    let src = if data.first().is_some_and(|b| b & 1 == 1) {
        SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 6881)
    } else {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 6881)
    };
    let mut out = Vec::new();
    let datagram = data.get(1..).unwrap_or_default();
    if handler.handle(&mut tracker, datagram, false, src, 100, &mut out) {
        assert!(
            out.len() <= datagram.len(),
            "reply of {} bytes to a request of {}",
            out.len(),
            datagram.len()
        );
    }
    assert_eq!(
        tracker.peers() + tracker.v4.torrents() + tracker.v6.torrents(),
        0
    );
}

/// The whole HTTP request path (`front::http::handle` + `service` + the store) for any head that
/// parses: the response is one well-formed HTTP/1.1 message whose Content-Length is its body
/// length; a 200 body is valid bencode; a refused request (error status or `failure reason`)
/// stores nothing.
pub fn http_handle(data: &[u8]) {
    let Ok(Some((req, _))) = http::parse_request(data) else {
        return;
    };
    let mut tracker = Tracker::new(Policy::default());
    let site = HttpSite {
        redirect_url: Some("https://example.invalid/".to_owned()),
        proxies: vec!["127.0.0.0/8".parse().expect("net")],
        keepalive: true,
        stats: Default::default(),
        fullscrape_interval: 0,
        fullscrape_max_age: 0,
        fullscrape_max_streams: 0,
        proxy_header: Default::default(),
    };
    let mut scratch = Scratch::default();
    let mut out = Vec::new();
    let remote = IpAddr::V4(Ipv4Addr::LOCALHOST);
    handle(
        &mut tracker,
        &site,
        &req,
        remote,
        100,
        &mut scratch,
        &mut out,
    );
    assert!(out.starts_with(b"HTTP/1.1 "));
    let head_end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head")
        + 4;
    let head = std::str::from_utf8(&out[..head_end]).expect("ASCII head");
    if scratch.take_stream().is_some() {
        // A streamed response (full scrape, /stats walk): its body comes in slices later; the
        // head frames it as chunked (HTTP/1.1) or close-delimited (HTTP/1.0).
        assert!(head.contains("Transfer-Encoding: chunked") || head.contains("Connection: close"));
        return;
    }
    let body = &out[head_end..];
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("Content-Length")
        .parse()
        .expect("a number");
    assert_eq!(length, body.len());
    let ok = head.starts_with("HTTP/1.1 200 ");
    let mut failed = !ok;
    if ok {
        let v = bencode::decode(body).expect("a 200 body is bencode");
        failed = v.get(b"failure reason").is_some();
    }
    if failed {
        assert_eq!(
            tracker.peers() + tracker.v4.torrents() + tracker.v6.torrents(),
            0
        );
    }
}
