//! HTTP tracker over real sockets on 127.0.0.1 and [::1], against the real binary.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use common::*;

fn start() -> Tracker {
    Tracker::start("http", &config_loopback(""))
}

fn peers4(v: &Value<'_>) -> Vec<(String, u16)> {
    v.get(b"peers")
        .and_then(|p| p.as_bytes())
        .expect("compact peers")
        .chunks(6)
        .map(|c| {
            (
                format!("{}.{}.{}.{}", c[0], c[1], c[2], c[3]),
                u16::from_be_bytes([c[4], c[5]]),
            )
        })
        .collect()
}

fn int(v: &Value<'_>, key: &[u8]) -> i64 {
    v.get(key)
        .and_then(|x| x.as_int())
        .unwrap_or_else(|| panic!("no int {}", String::from_utf8_lossy(key)))
}

#[test]
fn announce_compact_exact_bytes_and_counts() {
    let t = start();
    let a = t.http_addr(false);
    let h = hash(1);
    let r = get(a, &announce(&h, 6881, 100, "&event=started"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type").as_deref(), Some("text/plain"));
    let v = r.bencode();
    assert_eq!(int(&v, b"complete"), 0);
    assert_eq!(int(&v, b"incomplete"), 1);
    assert_eq!(int(&v, b"downloaded"), 0);
    let interval = int(&v, b"interval");
    assert!((1620..=1980).contains(&interval), "interval {interval}");
    assert_eq!(int(&v, b"min interval"), interval / 2);
    // Never the requester itself.
    assert_eq!(v.get(b"peers").unwrap().as_bytes(), Some(&b""[..]));

    // A seeder joins and gets the leecher, in exact compact bytes.
    let r = get(a, &announce(&h, 6882, 0, "&event=started&compact=1"));
    let v = r.bencode();
    assert_eq!(
        v.get(b"peers").unwrap().as_bytes(),
        Some(&[127, 0, 0, 1, 0x1a, 0xe1][..])
    );
    assert_eq!(int(&v, b"complete"), 1);
    assert_eq!(int(&v, b"incomplete"), 1);
    // The whole body, byte for byte, apart from the jittered interval.
    let expect = format!(
        "d8:completei1e10:downloadedi0e10:incompletei1e8:intervali{}e12:min intervali{}e5:peers6:",
        int(&v, b"interval"),
        int(&v, b"min interval")
    );
    let mut expect = expect.into_bytes();
    expect.extend_from_slice(&[127, 0, 0, 1, 0x1a, 0xe1, b'e']);
    assert_eq!(r.body, expect);

    // The leecher re-announces and gets the seeder.
    let v = get(a, &announce(&h, 6881, 100, ""))
        .bencode()
        .to_owned_peers();
    assert_eq!(v, vec![("127.0.0.1".to_string(), 6882)]);
}

trait OwnedPeers {
    fn to_owned_peers(&self) -> Vec<(String, u16)>;
}
impl OwnedPeers for Value<'_> {
    fn to_owned_peers(&self) -> Vec<(String, u16)> {
        peers4(self)
    }
}

#[test]
fn announce_non_compact_lists_ip_and_port() {
    let t = start();
    let a = t.http_addr(false);
    let h = hash(2);
    get(a, &announce(&h, 7001, 5, ""));
    let r = get(a, &announce(&h, 7002, 5, "&compact=0&no_peer_id=1"));
    let v = r.bencode();
    let list = v
        .get(b"peers")
        .and_then(|p| p.as_list())
        .expect("list of peers");
    assert_eq!(list.len(), 1);
    assert_eq!(
        list[0].get(b"ip").unwrap().as_bytes(),
        Some(&b"127.0.0.1"[..])
    );
    assert_eq!(list[0].get(b"port").unwrap().as_int(), Some(7001));
    assert!(list[0].get(b"peer id").is_none());
}

/// `compact=0` alone gets the compact form (BEP 23: a tracker may answer compact whatever was
/// asked; we store no peer ids, so dicts would lack the `peer id` BEP 3 promises); with
/// `no_peer_id=1` the dicts stay.
#[test]
fn announce_compact_0_without_no_peer_id_gets_compact() {
    let t = start();
    let a = t.http_addr(false);
    let h = hash(4);
    get(a, &announce(&h, 7101, 5, ""));
    let r = get(a, &announce(&h, 7102, 5, "&compact=0"));
    let mut expect = vec![127, 0, 0, 1];
    expect.extend_from_slice(&7101u16.to_be_bytes());
    assert_eq!(
        r.bencode().get(b"peers").unwrap().as_bytes(),
        Some(&expect[..])
    );
    let r = get(a, &announce(&h, 7102, 5, "&compact=0&no_peer_id=0"));
    assert_eq!(
        r.bencode().get(b"peers").unwrap().as_bytes(),
        Some(&expect[..])
    );
}

#[test]
fn announce_over_ipv6_uses_peers6() {
    let t = start();
    let a = t.http_addr(true);
    let h = hash(3);
    get(a, &announce(&h, 8001, 5, ""));
    let r = get(a, &announce(&h, 8002, 5, ""));
    let v = r.bencode();
    assert_eq!(v.get(b"peers").unwrap().as_bytes(), Some(&b""[..]));
    let mut expect = [0u8; 18];
    expect[15] = 1;
    expect[16..].copy_from_slice(&8001u16.to_be_bytes());
    assert_eq!(v.get(b"peers6").unwrap().as_bytes(), Some(&expect[..]));
    // IPv4 swarm of the same torrent is separate: an IPv4 peer sees nobody...
    let v4 = get(t.http_addr(false), &announce(&h, 8003, 5, ""));
    assert_eq!(
        v4.bencode().get(b"peers").unwrap().as_bytes(),
        Some(&b""[..])
    );
    // ...but scrape counts both families.
    let s = get(
        t.http_addr(false),
        &format!("/scrape?info_hash={}", pct(&h)),
    );
    let files = s.bencode();
    let entry = files.get(b"files").unwrap().get(&h).unwrap();
    assert_eq!(entry.get(b"incomplete").unwrap().as_int(), Some(3));
}

#[test]
fn scrape_one_many_unknown() {
    let t = start();
    let a = t.http_addr(false);
    let (h1, h2, unknown) = (hash(10), hash(9), hash(11));
    get(a, &announce(&h1, 9001, 0, ""));
    get(a, &announce(&h1, 9002, 10, ""));
    get(a, &announce(&h2, 9003, 10, ""));
    let r = get(a, &format!("/scrape?info_hash={}", pct(&h1)));
    assert_eq!(
        r.body,
        [
            b"d5:filesd20:".as_slice(),
            &h1,
            b"d8:completei1e10:downloadedi0e10:incompletei1eeee"
        ]
        .concat()
    );
    // Many: sorted keys, duplicates once, unknown hashes answered with zeros.
    let r = get(
        a,
        &format!(
            "/scrape?info_hash={}&info_hash={}&info_hash={}&info_hash={}",
            pct(&h1),
            pct(&unknown),
            pct(&h2),
            pct(&h1)
        ),
    );
    let expect = [
        b"d5:filesd20:".as_slice(),
        &h2,
        b"d8:completei0e10:downloadedi0e10:incompletei1ee20:",
        &h1,
        b"d8:completei1e10:downloadedi0e10:incompletei1ee20:",
        &unknown,
        b"d8:completei0e10:downloadedi0e10:incompletei0eeee",
    ]
    .concat();
    assert_eq!(r.body, expect);
    r.bencode(); // canonical: the strict decoder accepts it
}

#[test]
fn stopped_removes_and_completed_counts_once() {
    let t = start();
    let a = t.http_addr(false);
    let h = hash(20);
    get(a, &announce(&h, 1001, 10, "&event=started"));
    get(a, &announce(&h, 1002, 10, "&event=started"));
    // Completed with left>0 does not count.
    get(a, &announce(&h, 1002, 10, "&event=completed"));
    let v = get(a, &announce(&h, 1001, 0, "&event=completed"))
        .bencode()
        .clone_counts();
    assert_eq!(v, (1, 1, 1));
    // Twice from the same peer: counted once.
    let v = get(a, &announce(&h, 1001, 0, "&event=completed"))
        .bencode()
        .clone_counts();
    assert_eq!(v, (1, 1, 1));
    // Stopped removes the peer, the reply has the counts after removal and no peers.
    let r = get(a, &announce(&h, 1002, 10, "&event=stopped"));
    let v = r.bencode();
    assert_eq!(v.clone_counts(), (1, 0, 1));
    assert_eq!(v.get(b"peers").unwrap().as_bytes(), Some(&b""[..]));
    let r = get(a, &announce(&h, 1003, 10, ""));
    assert_eq!(peers4(&r.bencode()), vec![("127.0.0.1".to_string(), 1001)]);
}

trait Counts {
    fn clone_counts(&self) -> (i64, i64, i64);
}
impl Counts for Value<'_> {
    /// (complete, incomplete, downloaded)
    fn clone_counts(&self) -> (i64, i64, i64) {
        (
            int(self, b"complete"),
            int(self, b"incomplete"),
            int(self, b"downloaded"),
        )
    }
}

#[test]
fn numwant_default_max_and_zero() {
    let t = Tracker::start(
        "numwant",
        &config_loopback(&format!(
            "tracker.numwant.default 5\ntracker.numwant.max 8\n{QUOTAS_OFF}"
        )),
    );
    let a = t.http_addr(false);
    let h = hash(30);
    for port in 2000..2020 {
        get(a, &announce(&h, port, 10, "&numwant=0"));
    }
    let n = |extra: &str| peers4(&get(a, &announce(&h, 3000, 10, extra)).bencode()).len();
    assert_eq!(n(""), 5);
    assert_eq!(n("&numwant=-1"), 5);
    assert_eq!(n("&numwant=3"), 3);
    assert_eq!(n("&numwant=100"), 8);
    assert_eq!(n("&numwant=0"), 0);
    // Random, without duplicates, never self.
    let peers = peers4(&get(a, &announce(&h, 3000, 10, "&numwant=8")).bencode());
    let mut ports: Vec<u16> = peers.iter().map(|p| p.1).collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 8);
    assert!(!ports.contains(&3000));
}

#[test]
fn peers_expire_after_peer_timeout() {
    let t = Tracker::start("expiry", &config_loopback("tracker.peer_timeout 2"));
    let a = t.http_addr(false);
    let h = hash(40);
    get(a, &announce(&h, 4001, 10, ""));
    let r = get(a, &announce(&h, 4002, 10, ""));
    assert_eq!(peers4(&r.bencode()).len(), 1);
    std::thread::sleep(Duration::from_millis(4200));
    let s = get(a, &format!("/scrape?info_hash={}", pct(&h)));
    let v = s.bencode();
    assert_eq!(
        v.get(b"files")
            .unwrap()
            .get(&h)
            .unwrap()
            .get(b"incomplete")
            .unwrap()
            .as_int(),
        Some(0)
    );
    let r = get(a, &announce(&h, 4003, 10, ""));
    assert_eq!(peers4(&r.bencode()), vec![]);
}

#[test]
fn keep_alive_two_requests_on_one_connection() {
    let t = start();
    let a = t.http_addr(false);
    let h = hash(50);
    let mut s = connect(a);
    write!(
        s,
        "GET {} HTTP/1.1\r\nHost: x\r\n\r\n",
        announce(&h, 5001, 1, "")
    )
    .unwrap();
    let r1 = read_response(&mut s).unwrap();
    assert_eq!(r1.status, 200);
    assert_eq!(r1.header("connection"), Some("keep-alive".into()));
    write!(
        s,
        "GET {} HTTP/1.1\r\nHost: x\r\n\r\n",
        announce(&h, 5002, 1, "")
    )
    .unwrap();
    let r2 = read_response(&mut s).unwrap();
    assert_eq!(peers4(&r2.bencode()), vec![("127.0.0.1".to_string(), 5001)]);
    // Pipelined: two requests in one write, two responses in order.
    write!(
        s,
        "GET {} HTTP/1.1\r\n\r\nGET /scrape?info_hash={} HTTP/1.1\r\nConnection: close\r\n\r\n",
        announce(&h, 5003, 1, ""),
        pct(&h)
    )
    .unwrap();
    let r3 = read_response(&mut s).unwrap();
    assert_eq!(peers4(&r3.bencode()).len(), 2);
    let r4 = read_response(&mut s).unwrap();
    assert_eq!(r4.header("connection"), Some("close".into()));
    assert!(
        read_response(&mut s).is_none(),
        "closed after Connection: close"
    );
    // HTTP/1.0 without keep-alive: closed after one response.
    let mut s = connect(a);
    write!(s, "GET {} HTTP/1.0\r\n\r\n", announce(&h, 5004, 1, "")).unwrap();
    assert_eq!(read_response(&mut s).unwrap().status, 200);
    assert!(read_response(&mut s).is_none());
}

#[test]
fn bad_requests_get_clear_answers_and_change_nothing() {
    let t = start();
    let a = t.http_addr(false);
    let h = hash(60);
    let short = &h[..19];
    let cases: Vec<(String, &str)> = vec![
        ("/announce?port=1&left=0".into(), "info_hash"),
        (
            format!("/announce?info_hash={}&port=1&left=0", pct(short)),
            "info_hash",
        ),
        (
            format!("/announce?info_hash={0}&info_hash={0}&port=1", pct(&h)),
            "info_hash",
        ),
        (format!("/announce?info_hash={}&left=0", pct(&h)), "port"),
        (
            format!("/announce?info_hash={}&port=70000", pct(&h)),
            "port",
        ),
        (format!("/announce?info_hash={}&port=0", pct(&h)), "port"),
        (
            format!("/announce?info_hash={}&port=1&numwant=abc", pct(&h)),
            "numwant",
        ),
        (
            format!("/announce?info_hash={}&port=1&left=12abc", pct(&h)),
            "left",
        ),
        (
            format!("/announce?info_hash={}&port=1&event=bogus", pct(&h)),
            "event",
        ),
        (
            format!("/announce?info_hash={}&port=1&compact=x", pct(&h)),
            "compact",
        ),
        (format!("/announce?info_hash=%zz{}&port=1", pct(short)), ""),
        (
            format!("/announce?info_hash={}&peer_id=short&port=1", pct(&h)),
            "peer_id",
        ),
        ("/scrape?info_hash=".into(), "info_hash"),
        (format!("/scrape?info_hash={}", pct(short)), "info_hash"),
    ];
    for (target, word) in &cases {
        let r = get(a, target);
        assert_eq!(r.status, 200, "{target}");
        let reason = r
            .failure()
            .unwrap_or_else(|| panic!("no failure for {target}: {:?}", r.body));
        assert!(reason.contains(word), "{target}: {reason}");
    }
    // Framing errors get a status.
    let statuses: Vec<(&[u8], u16)> = vec![
        (b"POST /announce HTTP/1.1\r\n\r\n", 405),
        (b"GET /nothing-here HTTP/1.1\r\n\r\n", 404),
        (b"GET / HTTP/1.1\r\n\r\n", 404),
        (b"GET /announce HTTP/9.9\r\n\r\n", 400),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
        (
            b"GET /announce HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
            400,
        ),
        (b"GET /announce HTTP/1.1\r\nBadHeaderLine\r\n\r\n", 400),
    ];
    for (bytes, status) in statuses {
        let r = raw(a, bytes)
            .unwrap_or_else(|| panic!("no response to {:?}", String::from_utf8_lossy(bytes)));
        assert_eq!(r.status, status, "{:?}", String::from_utf8_lossy(bytes));
    }
    // An oversized head: 413 and close.
    let mut big = b"GET /announce?".to_vec();
    big.extend(std::iter::repeat_n(b'a', 10_000));
    big.extend_from_slice(b" HTTP/1.1\r\n\r\n");
    assert_eq!(raw(a, &big).unwrap().status, 413);
    // Garbage then close without a full head: nothing breaks.
    {
        let mut s = connect(a);
        s.write_all(b"GET /ann").unwrap();
    }
    // Nothing was stored by any of that, and a good request is served.
    let s = get(a, &format!("/scrape?info_hash={}", pct(&h)));
    assert_eq!(
        s.bencode()
            .get(b"files")
            .unwrap()
            .get(&h)
            .unwrap()
            .get(b"incomplete")
            .unwrap()
            .as_int(),
        Some(0)
    );
    let r = get(a, &announce(&h, 6000, 1, ""));
    assert_eq!(r.bencode().get(b"incomplete").unwrap().as_int(), Some(1));
}

#[test]
fn redirect_when_configured() {
    let t = Tracker::start(
        "redirect",
        &config_loopback("tracker.redirect_url https://example.invalid/"),
    );
    let r = get(t.http_addr(false), "/");
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location").as_deref(),
        Some("https://example.invalid/")
    );
}

#[test]
fn forwarded_address_only_from_configured_proxies() {
    let t = Tracker::start("proxy", &config_loopback("access.proxy 127.0.0.0/8"));
    let a = t.http_addr(false);
    let h = hash(70);
    let mut s = connect(a);
    write!(
        s,
        "GET {} HTTP/1.1\r\nX-Forwarded-For: 10.9.9.9, 203.0.113.7\r\nConnection: close\r\n\r\n",
        announce(&h, 7777, 1, "")
    )
    .unwrap();
    read_response(&mut s).unwrap();
    let r = get(a, &announce(&h, 7778, 1, ""));
    assert_eq!(
        peers4(&r.bencode()),
        vec![("203.0.113.7".to_string(), 7777)]
    );
    // Over [::1] the proxy list does not match: the header is ignored.
    let a6 = t.http_addr(true);
    let mut s = connect(a6);
    write!(
        s,
        "GET {} HTTP/1.1\r\nX-Real-IP: 198.51.100.1\r\nConnection: close\r\n\r\n",
        announce(&h, 7779, 1, "")
    )
    .unwrap();
    read_response(&mut s).unwrap();
    let r = get(a, &announce(&h, 7780, 1, "&numwant=10"));
    assert!(!peers4(&r.bencode()).iter().any(|p| p.0 == "198.51.100.1"));
}

/// Sends one announce for `h` on `port` with `headers` (each ending in CRLF), then returns the
/// peers a plain announce on `port + 1` sees.
fn announce_via_proxy(
    a: std::net::SocketAddr,
    h: &[u8; 20],
    port: u16,
    headers: &str,
) -> Vec<(String, u16)> {
    let mut s = connect(a);
    write!(
        s,
        "GET {} HTTP/1.1\r\n{headers}Connection: close\r\n\r\n",
        announce(h, port, 1, "")
    )
    .unwrap();
    let r = read_response(&mut s).unwrap();
    assert_eq!(r.failure(), None);
    peers4(&get(a, &announce(h, port + 1, 1, "")).bencode())
        .into_iter()
        .filter(|p| p.1 == port)
        .collect()
}

/// `access.proxy_header`: only the configured header counts, its list (all its lines) is
/// walked right to left past trusted proxies, and the first untrusted address is the peer.
#[test]
fn proxy_header_walk_right_to_left() {
    let t = Tracker::start(
        "proxywalk",
        &config_loopback("access.proxy 127.0.0.0/8\naccess.proxy 10.0.0.0/8"),
    );
    let a = t.http_addr(false);
    // Behind two proxies (10.1.1.1 saw the client, loopback saw 10.1.1.1); the client's own
    // forged entry (6.6.6.6) is further left and never believed.
    let got = announce_via_proxy(
        a,
        &hash(71),
        7000,
        "X-Forwarded-For: 6.6.6.6, 203.0.113.9, 10.1.1.1\r\n",
    );
    assert_eq!(got, vec![("203.0.113.9".to_string(), 7000)]);
    // A proxy that adds its own header line (HAProxy): the lines are one list.
    let got = announce_via_proxy(
        a,
        &hash(72),
        7010,
        "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 203.0.113.10, 10.2.2.2\r\n",
    );
    assert_eq!(got, vec![("203.0.113.10".to_string(), 7010)]);
    // X-Real-IP is not the configured header: ignored, the proxy is the client.
    let got = announce_via_proxy(a, &hash(73), 7020, "X-Real-IP: 198.51.100.7\r\n");
    assert_eq!(got, vec![("127.0.0.1".to_string(), 7020)]);
    // Only trusted proxies in the list: the leftmost.
    let got = announce_via_proxy(
        a,
        &hash(74),
        7030,
        "X-Forwarded-For: 10.3.3.3, 10.4.4.4\r\n",
    );
    assert_eq!(got, vec![("10.3.3.3".to_string(), 7030)]);

    // nginx with `proxy_set_header X-Real-IP $remote_addr`: the client's X-Forwarded-For is
    // passed through and must not win.
    let t = Tracker::start(
        "proxyrealip",
        &config_loopback("access.proxy 127.0.0.1\naccess.proxy_header X-Real-IP"),
    );
    let a = t.http_addr(false);
    let got = announce_via_proxy(
        a,
        &hash(75),
        7040,
        "X-Forwarded-For: 6.6.6.6\r\nX-Real-IP: 198.51.100.8\r\n",
    );
    assert_eq!(got, vec![("198.51.100.8".to_string(), 7040)]);
}

#[test]
fn sigterm_stops_cleanly() {
    let mut t = start();
    let st = t.stop();
    assert!(st.success(), "{st:?}");
}

#[test]
fn many_connections_at_once_all_served() {
    let t = Tracker::start("http", &config_loopback(QUOTAS_OFF));
    let a = t.http_addr(false);
    let h = hash(80);
    let mut streams: Vec<_> = (0..200).map(|_| connect(a)).collect();
    for (i, s) in streams.iter_mut().enumerate() {
        write!(
            s,
            "GET {} HTTP/1.1\r\nConnection: close\r\n\r\n",
            announce(&h, 10000 + i as u16, 1, "&numwant=0")
        )
        .unwrap();
    }
    for s in streams.iter_mut() {
        assert_eq!(read_response(s).unwrap().status, 200);
    }
    let s = get(a, &format!("/scrape?info_hash={}", pct(&h)));
    assert_eq!(
        s.bencode()
            .get(b"files")
            .unwrap()
            .get(&h)
            .unwrap()
            .get(b"incomplete")
            .unwrap()
            .as_int(),
        Some(200)
    );
}

/// A request followed at once by the client's FIN (a half-close) is answered and the
/// connection closed at once: the FIN comes with the request's readiness event, so the server
/// reads on to the end of stream instead of taking its short read of the request for "nothing
/// more" (then only `http.idle_timeout`, 60 s here, would close it).
#[test]
fn a_request_sent_with_the_clients_fin_is_answered_and_closed() {
    let t = Tracker::start("http-fin", &config_loopback("http.idle_timeout 60"));
    for i in 0..20u16 {
        let mut s = TcpStream::connect(t.http_addr(false)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // Accepted and registered before the request comes (not served at the accept).
        std::thread::sleep(Duration::from_millis(20));
        let target = announce(&hash(1), 7000 + i, 0, "");
        s.write_all(format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
            .unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let started = Instant::now();
        let mut all = Vec::new();
        s.read_to_end(&mut all)
            .unwrap_or_else(|e| panic!("request {i}: not closed by the server: {e}"));
        assert!(started.elapsed() < Duration::from_secs(2), "request {i}");
        assert!(all.starts_with(b"HTTP/1.1 200"), "request {i}: {all:?}");
    }
}
