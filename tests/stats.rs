//! Full scrape (streamed, chunked or close-delimited, gzip), `/stats` modes and Prometheus
//! `/metrics`, over real sockets on 127.0.0.1 and [::1] against the real binary.
//!
//! The Prometheus test parses our output with the reference Python parser
//! (`prometheus_client.parser`, Debian's python3-prometheus-client; `make test-deps` installs
//! it); without it that test fails with a message that says so.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::udp::Connected as UdpClient;
use common::*;
use opentracker_rs::types::Event;

/// A raw HTTP exchange: the response head and the raw body up to EOF (streamed responses end
/// with the connection).
struct Raw {
    head: String,
    body: Vec<u8>,
}

impl Raw {
    fn status(&self) -> u16 {
        self.head
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap()
    }
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
    /// The body as the client sees it: de-chunked if chunked, gunzipped if gzip.
    fn decoded(&self) -> Vec<u8> {
        let body = if self.header("transfer-encoding").as_deref() == Some("chunked") {
            dechunk(&self.body)
        } else {
            self.body.clone()
        };
        if self.header("content-encoding").as_deref() == Some("gzip") {
            assert_eq!(&body[..2], &[0x1f, 0x8b], "gzip magic");
            gunzip(&body)
        } else {
            body
        }
    }
}

/// Sends `request` as is and reads until the server closes.
fn exchange(addr: SocketAddr, request: &str) -> Raw {
    let mut s = connect(addr);
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).expect("read to EOF");
    let split = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("complete head");
    Raw {
        head: String::from_utf8(all[..split + 2].to_vec()).unwrap(),
        body: all[split + 4..].to_vec(),
    }
}

fn get_raw(addr: SocketAddr, target: &str, headers: &str) -> Raw {
    exchange(
        addr,
        &format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{headers}\r\n"),
    )
}

/// RFC 9112 §7.1 decoder, strict: every chunk `HEX\r\nDATA\r\n`, then exactly `0\r\n\r\n`.
fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap(), 16).unwrap();
        b = &b[eol + 2..];
        if size == 0 {
            assert_eq!(b, b"\r\n", "body ends with the last chunk");
            return out;
        }
        out.extend_from_slice(&b[..size]);
        assert_eq!(&b[size..size + 2], b"\r\n");
        b = &b[size + 2..];
    }
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

/// The full-scrape entry of one torrent.
fn entry(h: &[u8; 20], complete: u32, downloaded: u32, incomplete: u32) -> Vec<u8> {
    let mut e = b"20:".to_vec();
    e.extend_from_slice(h);
    e.extend_from_slice(
        format!("d8:completei{complete}e10:downloadedi{downloaded}e10:incompletei{incomplete}ee")
            .as_bytes(),
    );
    e
}

fn hex(h: &[u8; 20]) -> String {
    h.iter().map(|b| format!("{b:02X}")).collect()
}

/// The tests' tracker: loopback listeners, stats for 127.0.0.1, and full scrapes without the
/// per-address interval (these tests send several from one address; `extra` may set it).
fn stats_config(extra: &str) -> String {
    format!(
        "listen.tcp 127.0.0.1:0\nlisten.tcp [::1]:0\nlisten.udp 127.0.0.1:0\naccess.stats 127.0.0.1\n\
         tracker.fullscrape_interval 0\n{extra}\n"
    )
}

#[test]
fn full_scrape_exact_plain_gzip_chunked_and_http10() {
    let t = Tracker::start("fullscrape", &stats_config(""));
    let (a4, a6) = (t.http_addr(false), t.http_addr(true));
    let (h1, h2, h3) = (hash(1), hash(2), hash(3));
    // h1: an IPv4 seeder that completed, an IPv4 leecher, an IPv6 leecher: summed.
    get(a4, &announce(&h1, 6001, 0, "&event=completed"));
    get(a4, &announce(&h1, 6002, 10, ""));
    get(a6, &announce(&h1, 6003, 10, ""));
    // h2: an IPv4 leecher; h3: an IPv6 seeder only.
    get(a4, &announce(&h2, 6004, 10, ""));
    get(a6, &announce(&h3, 6005, 0, ""));
    let mut expect = b"d5:filesd".to_vec();
    expect.extend(entry(&h1, 1, 1, 2));
    expect.extend(entry(&h2, 0, 0, 1));
    expect.extend(entry(&h3, 1, 0, 0));
    expect.extend_from_slice(b"ee");

    // HTTP/1.1: chunked, closed after the body.
    let r = get_raw(a4, "/scrape", "");
    assert_eq!(r.status(), 200);
    assert_eq!(r.header("transfer-encoding").as_deref(), Some("chunked"));
    assert_eq!(r.header("connection").as_deref(), Some("close"));
    assert_eq!(r.header("content-length"), None);
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.header("content-type").as_deref(), Some("text/plain"));
    assert_eq!(dechunk(&r.body), expect);
    // The same over IPv6.
    assert_eq!(get_raw(a6, "/scrape", "").decoded(), expect);

    // gzip when asked.
    let gz = get_raw(a4, "/scrape", "Accept-Encoding: gzip, deflate\r\n");
    assert_eq!(gz.header("content-encoding").as_deref(), Some("gzip"));
    assert_eq!(gunzip(&dechunk(&gz.body)), expect);
    // Not when refused with q=0, nor for a "gzip" elsewhere in the request.
    for headers in [
        "Accept-Encoding: gzip;q=0\r\n",
        "Accept-Encoding: identity\r\nUser-Agent: gzipfan/1.0\r\n",
    ] {
        let r = get_raw(a4, "/scrape", headers);
        assert_eq!(r.header("content-encoding"), None, "{headers}");
        assert_eq!(dechunk(&r.body), expect, "{headers}");
    }

    // HTTP/1.0: no chunked framing, the body ends at close; gzip too.
    let r = exchange(a4, "GET /scrape HTTP/1.0\r\n\r\n");
    assert_eq!(r.status(), 200);
    assert_eq!(r.header("transfer-encoding"), None);
    assert_eq!(r.body, expect);
    let r = exchange(
        a4,
        "GET /scrape HTTP/1.0\r\nAccept-Encoding: x-gzip\r\n\r\n",
    );
    assert_eq!(r.header("content-encoding").as_deref(), Some("gzip"));
    assert_eq!(gunzip(&r.body), expect);

    // A scrape with an info_hash is still a normal scrape with a Content-Length.
    let r = get(a4, &format!("/scrape?info_hash={}", pct(&h3)));
    assert_eq!(
        r.body,
        [b"d5:filesd".to_vec(), entry(&h3, 1, 0, 0), b"ee".to_vec()].concat()
    );

    // One info line per full scrape, naming the address.
    // The log is read by a thread of the harness: wait (bounded) until it has every line.
    let deadline = Instant::now() + Duration::from_secs(5);
    while t.log_text().matches("full scrape by").count() < 7 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = t.log_text();
    assert_eq!(log.matches("full scrape by 127.0.0.1").count(), 6, "{log}");
    assert_eq!(log.matches("full scrape by ::1").count(), 1, "{log}");
}

#[test]
fn empty_tracker_full_scrape() {
    let t = Tracker::start("fullscrape-empty", &stats_config(""));
    let r = get_raw(t.http_addr(false), "/scrape", "");
    assert_eq!(r.body, b"b\r\nd5:filesdee\r\n0\r\n\r\n");
}

/// Reads a streamed response's head; returns it and the body bytes that came with it.
fn read_head(s: &mut TcpStream) -> (String, Vec<u8>) {
    let mut all = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed before the head");
        all.extend_from_slice(&buf[..n]);
        if let Some(p) = all.windows(4).position(|w| w == b"\r\n\r\n") {
            return (
                String::from_utf8_lossy(&all[..p]).into_owned(),
                all[p + 4..].to_vec(),
            );
        }
    }
}

fn metric(t: &Tracker, name: &str) -> f64 {
    let r = get(t.http_addr(false), "/metrics");
    assert_eq!(r.status, 200);
    let text = String::from_utf8(r.body).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in {text}"))
}

#[test]
fn full_scrape_of_50k_torrents_while_others_announce() {
    const N: u32 = 50_000;
    let t = Tracker::start("fullscrape-50k", &stats_config(QUOTAS_OFF));
    let a4 = t.http_addr(false);
    let udp = UdpClient::new(t.udp_addr(false));
    let hash_of = |i: u32| {
        let mut h = hash(i);
        h[4] = (i.wrapping_mul(2_654_435_761) >> 24) as u8;
        h
    };
    udp.fill(N, hash_of, Duration::from_secs(60));
    assert_eq!(
        get(a4, "/stats?mode=torr").body,
        format!("{N}\n0\nopentracker serving {N} torrents\nopentracker").into_bytes()
    );

    // A slow reader: a tiny receive buffer, reads the head and stops.
    let slow = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    slow.set_recv_buffer_size(4096).unwrap();
    slow.connect(&a4.into()).unwrap();
    let mut slow: TcpStream = slow.into();
    slow.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    slow.write_all(b"GET /scrape HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let (head, mut slow_body) = read_head(&mut slow);
    assert!(head.contains("Transfer-Encoding: chunked"), "{head}");

    // While it stalls, the loop serves everybody else: announces (HTTP, both families; UDP),
    // scrapes, and a complete second full scrape (gzip) from another client.
    let fresh = hash(0xfeed_0001);
    for i in 0..100u16 {
        let r = get(a4, &announce(&fresh, 10_000 + i, 1, ""));
        assert_eq!(
            r.bencode().get(b"incomplete").unwrap().as_int(),
            Some(i64::from(i) + 1)
        );
        let r = get(t.http_addr(true), &announce(&fresh, 20_000 + i, 0, ""));
        assert_eq!(
            r.bencode().get(b"complete").unwrap().as_int(),
            Some(i64::from(i) + 1)
        );
        udp.scrape(&fresh);
    }
    let other = get_raw(a4, "/scrape", "Accept-Encoding: gzip\r\n").decoded();
    let mut expect_other = b"d5:filesd".to_vec();
    let mut hashes: Vec<[u8; 20]> = (0..N).map(hash_of).collect();
    hashes.push(fresh);
    hashes.sort();
    for h in &hashes {
        expect_other.extend(if *h == fresh {
            entry(h, 100, 0, 100)
        } else {
            entry(h, 0, 0, 1)
        });
    }
    expect_other.extend_from_slice(b"ee");
    assert_eq!(other.len(), expect_other.len());
    assert!(other == expect_other, "second full scrape differs");
    // The slow one is still in progress: held by back-pressure, not finished, not buffered.
    assert_eq!(metric(&t, "opentracker_http_streams"), 1.0);

    // Now it reads the rest: a complete body with every torrent in order. The torrent
    // announced meanwhile sorts last, so the paused walk had not passed it yet and shows its
    // final counts.
    slow.read_to_end(&mut slow_body).unwrap();
    let slow_body = dechunk(&slow_body);
    if slow_body != expect_other {
        let at = slow_body
            .iter()
            .zip(&expect_other)
            .position(|(a, b)| a != b);
        panic!(
            "slow full scrape differs: {} vs {} bytes, first difference at {at:?}: {:?}",
            slow_body.len(),
            expect_other.len(),
            at.map(|i| String::from_utf8_lossy(
                &slow_body[i.saturating_sub(40)..(i + 80).min(slow_body.len())]
            ))
        );
    }
    assert_eq!(metric(&t, "opentracker_http_streams"), 0.0);
}

#[test]
fn full_scrape_rate_limit_429() {
    let t = Tracker::start(
        "fullscrape-limit",
        &stats_config("tracker.fullscrape_interval 3600"),
    );
    let (a4, a6) = (t.http_addr(false), t.http_addr(true));
    assert_eq!(get_raw(a4, "/scrape", "").status(), 200);
    let r = get(a4, "/scrape");
    assert_eq!(r.status, 429);
    assert_eq!(r.body, b"429 Too Many Requests\n");
    // Another address is not limited; normal scrapes never are.
    assert_eq!(get_raw(a6, "/scrape", "").status(), 200);
    assert_eq!(get(a6, "/scrape").status, 429);
    let r = get(a4, &format!("/scrape?info_hash={}", pct(&hash(1))));
    assert_eq!(r.status, 200);
    let herr = String::from_utf8(get(a4, "/stats?mode=herr").body).unwrap();
    assert!(herr.contains("\n429 LIM 2\n"), "{herr}");
}

#[test]
fn stats_access_allowed_and_refused() {
    // Only 127.0.0.1 may read the stats; [::1] may not.
    let t = Tracker::start("stats-access", &stats_config(""));
    let (a4, a6) = (t.http_addr(false), t.http_addr(true));
    assert_eq!(get(a4, "/stats").status, 200);
    assert_eq!(get(a4, "/metrics").status, 200);
    for target in [
        "/stats",
        "/stats?mode=everything",
        "/metrics",
        "/stats?mode=tpbs&format=bin",
    ] {
        let r = get(a6, target);
        assert_eq!(r.status, 403, "{target}");
        // The body says which directive opens the stats to this client.
        let body = String::from_utf8(r.body).unwrap();
        assert!(body.starts_with("403 Forbidden\n"), "{body}");
        assert!(body.contains("`access.stats ::1`"), "{body}");
    }
    assert_eq!(get(a6, "/stats/html").status, 403);
    // Exact path only (percent-decoded, as opentracker).
    assert_eq!(get(a4, "/st%61ts").status, 200);
    assert_eq!(get(a4, "/stats/").status, 404);
    drop(t);

    // A network (CIDR) and a custom path; no access.stats at all refuses everybody.
    let t = Tracker::start(
        "stats-access-v6",
        "listen.tcp 127.0.0.1:0\nlisten.tcp [::1]:0\naccess.stats ::/0\naccess.stats_path /ot/st\n",
    );
    assert_eq!(get(t.http_addr(true), "/ot/st").status, 200);
    assert_eq!(get(t.http_addr(true), "/stats").status, 404);
    assert_eq!(get(t.http_addr(false), "/ot/st").status, 403);
    drop(t);
    let t = Tracker::start("stats-access-none", &config_loopback(""));
    assert_eq!(get(t.http_addr(false), "/stats").status, 403);
    assert_eq!(get(t.http_addr(false), "/metrics").status, 403);
    let r = get(t.http_addr(false), "/stats/html");
    assert_eq!(r.status, 403);
    assert!(String::from_utf8(r.body).unwrap().contains(
        "/stats, /stats/html and /metrics are open only to the addresses in \
                       access.stats, and 127.0.0.1 is not one of them"
    ));
}

#[test]
fn status_page_shows_the_traffic() {
    let t = Tracker::start("status-page", &stats_config(""));
    let (a4, a6) = (t.http_addr(false), t.http_addr(true));
    // Over HTTP: torrent 0x31 with 3 IPv4 peers (one seeder) and 1 IPv6 peer, 0x32 with 1
    // IPv4 peer, and one bad request; over UDP two torrents of one peer each.
    let (h1, h2) = (hash(0x31), hash(0x32));
    get(a4, &announce(&h1, 7001, 0, "&event=completed"));
    get(a4, &announce(&h1, 7002, 5, ""));
    get(a4, &announce(&h1, 7003, 5, ""));
    get(a6, &announce(&h1, 7004, 5, ""));
    get(a4, &announce(&h2, 7005, 5, ""));
    assert!(get(a4, "/announce?port=1").failure().is_some());
    let udp = UdpClient::new(t.udp_addr(false));
    udp.fill(2, |i| hash(0x100 + i), Duration::from_secs(10));
    for version in ["HTTP/1.1", "HTTP/1.0"] {
        let r = exchange(
            a4,
            &format!("GET /stats/html {version}\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n"),
        );
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.header("content-type").as_deref(),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(r.header("content-encoding"), None, "never compressed");
        let page = String::from_utf8(r.decoded()).unwrap();
        assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
        assert!(page.ends_with("</html>\n"), "{page}");
        for part in [
            "<meta http-equiv=\"refresh\" content=\"10\">",
            "id=\"card-torrents\">5</div>", // 2 over HTTP IPv4 + 1 IPv6 + 2 over UDP
            "id=\"card-peers\">7</div>",
            "<td id=\"peers-ipv4\">6</td><td id=\"peers-ipv6\">1</td>",
            "<td id=\"seeders-ipv4\">1</td>",
            "<td id=\"http-ipv4-announce\">4</td>",
            "<td id=\"http-ipv6-announce\">1</td>",
            "<td id=\"http-ipv4-failed\">1</td>",
            "<td id=\"udp-ipv4-announce\">2</td>",
            "<td id=\"refused-bad-request\">1</td>",
            "<td id=\"refused-not-authorized\">0</td>",
            // The top torrent: h1, 1 seeder and 3 leechers over both families, 1 completed.
            "<td>1</td><td>3</td><td>4</td><td>1</td></tr>",
        ] {
            assert!(page.contains(part), "{part} in\n{page}");
        }
        let first_row = page.find("<td class=\"hash\">").unwrap();
        let hex: String = h1.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(&page[first_row + 17..first_row + 57], hex);
    }
    // Not a prefix match: only the exact path.
    assert_eq!(get(a4, "/stats/html/").status, 404);
    assert_eq!(get(a4, "/stats/htmlx").status, 404);
}

#[test]
fn stats_modes_formats() {
    let t = Tracker::start("stats-modes", &stats_config(""));
    let a = t.http_addr(false);
    let (h1, h2) = (hash(0x10), hash(0x20));
    get(a, &announce(&h1, 7001, 0, "&event=completed"));
    get(a, &announce(&h1, 7002, 0, "&event=completed"));
    get(a, &announce(&h1, 7003, 9, ""));
    get(t.http_addr(true), &announce(&h2, 7004, 9, ""));
    get(a, "/nothing"); // 404
    raw(a, b"PUT /announce HTTP/1.1\r\n\r\n"); // 405
    let text = |target: &str| {
        let r = get(a, target);
        assert_eq!(r.status, 200, "{target}");
        String::from_utf8(r.body).unwrap()
    };
    let peer = "4\n2\nopentracker serving 2 torrents\nopentracker";
    assert_eq!(text("/stats"), peer);
    assert_eq!(text("/stats?mode=peer"), peer);
    assert_eq!(
        text("/stats?mode=torr"),
        "2\n0\nopentracker serving 2 torrents\nopentracker"
    );
    let lines = |s: String| s.lines().map(str::to_owned).collect::<Vec<_>>();
    let conn = lines(text("/stats?mode=conn"));
    assert_eq!(conn.len(), 4);
    assert!(conn[3].starts_with("opentracker connections, "), "{conn:?}");
    let tcp4 = lines(text("/stats?mode=tcp4"));
    assert_eq!(tcp4[1], "4", "{tcp4:?}"); // four HTTP announces
    assert!(tcp4[2].ends_with(" hours)"), "{tcp4:?}");
    assert_eq!(lines(text("/stats?mode=udp4"))[..2], ["0", "0"]);
    assert_eq!(lines(text("/stats?mode=scrp"))[..2], ["0", "0"]);
    assert_eq!(lines(text("/stats?mode=completed"))[..2], ["2", "0"]);
    assert_eq!(
        text("/stats?mode=herr"),
        "302 RED 0\n400 BAD 0\n403 IP  0\n404 INV 1\n405 MTH 1\n413 BIG 0\n429 LIM 0\n\
         500 SRV 0\n503 BSY 0\n"
    );
    assert_eq!(
        text("/stats?mode=version"),
        format!("opentracker-rs {}\n", env!("CARGO_PKG_VERSION"))
    );
    let xml = text("/stats?mode=everything");
    for part in [
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<stats>\n",
        "<count_mutex>2</count_mutex>",
        "<peers>\n    <count>4</count>",
        "<seeds>\n    <count>2</count>",
        "<completed>\n    <count>2</count>",
        "<announce>4</announce>",
        "<count code=\"404 Not Found\">1</count>",
        "<count code=\"405 Method Not Allowed\">1</count>",
    ] {
        assert!(xml.contains(part), "{part} in {xml}");
    }
    assert!(
        get(a, "/stats?mode=everything")
            .header("content-type")
            .unwrap()
            .contains("xml")
    );

    // Walks: streamed (chunked), exact bodies.
    let walk = |target: &str| {
        let r = get_raw(a, target, "");
        assert_eq!(r.status(), 200, "{target}");
        assert_eq!(r.header("transfer-encoding").as_deref(), Some("chunked"));
        r.decoded()
    };
    let (x1, x2) = (hex(&h1), hex(&h2));
    assert_eq!(
        String::from_utf8(walk("/stats?mode=top10")).unwrap(),
        format!(
            "Top 10 torrents by peers:\n\t3\t{x1}\n\t1\t{x2}\nTop 10 torrents by seeds:\n\t2\t{x1}\n\
             Top 10 torrents by leechers:\n\t1\t{x1}\n\t1\t{x2}\n"
        )
    );
    assert!(
        String::from_utf8(walk("/stats?mode=top100"))
            .unwrap()
            .starts_with("Top 100 ")
    );
    assert_eq!(
        walk("/stats?mode=statedump"),
        format!("{x1}:2\n").into_bytes()
    );
    assert_eq!(
        walk("/stats?mode=tpbs&format=txt"),
        format!("{x1}:2:1\n{x2}:0:1\n").into_bytes()
    );
    assert_eq!(
        walk("/stats?mode=tpbs&format=txtp"),
        format!("{x1}:2:1:2\n{x2}:0:1:0\n").into_bytes()
    );
    let url = |h: &[u8; 20]| -> String {
        h.iter()
            .map(|&b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    assert_eq!(
        walk("/stats?mode=tpbs&format=url"),
        format!("{}:2:1\n{}:0:1\n", url(&h1), url(&h2)).into_bytes()
    );
    let mut bin = h1.to_vec();
    bin.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 1]);
    bin.extend_from_slice(&h2);
    bin.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(walk("/stats?mode=tpbs&format=bin"), bin);
    let ben = walk("/stats?mode=tpbs&format=ben");
    assert_eq!(
        ben,
        [
            b"d5:filesd".to_vec(),
            entry(&h1, 2, 2, 1),
            entry(&h2, 0, 0, 1),
            b"ee".to_vec()
        ]
        .concat()
    );
    // statedump and tpbs are gzipped only when asked.
    let r = get_raw(a, "/stats?mode=statedump", "Accept-Encoding: gzip\r\n");
    assert_eq!(r.header("content-encoding").as_deref(), Some("gzip"));
    assert_eq!(r.decoded(), format!("{x1}:2\n").into_bytes());

    // Unknown mode or format, tpbs without a format: 400 (and the connection stays usable).
    for target in [
        "/stats?mode=bogus",
        "/stats?mode=PEER",
        "/stats?mode=tpbs",
        "/stats?mode=tpbs&format=xml",
        "/stats?mode=%zz",
        "/stats?mode=peerpeerpeerpeerpeer",
    ] {
        let r = get(a, target);
        assert_eq!(r.status, 400, "{target}");
        assert_eq!(r.body, b"400 Bad Request\n");
    }
    let herr = text("/stats?mode=herr");
    assert!(herr.contains("\n400 BAD 6\n"), "{herr}");
}

/// Parses Prometheus text with the reference parser; returns (family name, type) pairs and
/// `name{k=v,...} value` sample lines (labels sorted).
fn parse_prometheus(text: &str) -> (Vec<(String, String)>, Vec<String>) {
    const SCRIPT: &str = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
for fam in text_string_to_metric_families(sys.stdin.read()):
    print("F", fam.name, fam.type)
    for s in fam.samples:
        labels = ",".join("%s=%s" % kv for kv in sorted(s.labels.items()))
        print("S", "%s%s %r" % (s.name, "{%s}" % labels if labels else "", float(s.value)))
"#;
    let mut child = Command::new(python_with("prometheus_client.parser"))
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "parser rejected the metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut fams = Vec::new();
    let mut samples = Vec::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        if let Some(f) = line.strip_prefix("F ") {
            let (n, t) = f.split_once(' ').unwrap();
            fams.push((n.to_owned(), t.to_owned()));
        } else if let Some(s) = line.strip_prefix("S ") {
            samples.push(s.to_owned());
        }
    }
    (fams, samples)
}

#[test]
fn prometheus_metrics_parse_and_match_traffic() {
    let t = Tracker::start("metrics", &stats_config(""));
    let (a4, a6) = (t.http_addr(false), t.http_addr(true));
    let h = hash(0x42);
    // HTTP: 3 announces over IPv4 (one completes), 2 over IPv6, 1 scrape over IPv4, 1 failure.
    get(a4, &announce(&h, 1, 9, ""));
    get(a4, &announce(&h, 2, 0, "&event=completed"));
    get(a4, &announce(&h, 3, 9, ""));
    get(a6, &announce(&h, 4, 9, ""));
    get(a6, &announce(&h, 5, 0, ""));
    get(a4, &format!("/scrape?info_hash={}", pct(&h)));
    assert!(get(a4, "/announce?port=1").failure().is_some());
    get(a4, "/missing");
    get(a4, "/missing");
    get_raw(a4, "/scrape", "Accept-Encoding: gzip\r\n");
    // UDP: 1 connect, 2 announces, 1 scrape, 1 datagram with a bad connection_id, 1 runt.
    let udp = UdpClient::new(t.udp_addr(false));
    udp.fill(2, |i| hash(0x100 + i), Duration::from_secs(10));
    udp.scrape(&h);
    let bad = UdpClient {
        sock: UdpSocket::bind("127.0.0.1:0").unwrap(),
        id: 0xdead_beef,
    };
    bad.sock.connect(t.udp_addr(false)).unwrap();
    bad.sock
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    bad.sock
        .send(&bad.announce_bytes(9, &h, 1, 0, Event::None))
        .unwrap();
    let mut buf = [0u8; 128];
    assert!(bad.sock.recv(&mut buf).is_ok(), "error reply");
    bad.sock.send(b"short").unwrap();

    // The runt has no reply: wait until the tracker counted it.
    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        let r = get(a4, "/metrics");
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("content-type").as_deref(),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        let text = String::from_utf8(r.body).unwrap();
        if text.contains("opentracker_udp_invalid_total{reason=\"malformed_header\"} 1")
            || Instant::now() > deadline
        {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (fams, samples) = parse_prometheus(&text);
    let has = |s: &str| samples.iter().any(|x| x == s);
    let value = |prefix: &str| -> f64 {
        samples
            .iter()
            .find_map(|x| x.strip_prefix(prefix)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{prefix} not in {samples:#?}"))
    };
    for (name, kind) in [
        ("opentracker_requests", "counter"),
        ("opentracker_http_responses", "counter"),
        ("opentracker_udp_invalid", "counter"),
        ("opentracker_torrents", "gauge"),
        ("opentracker_loop_longest_stall_seconds", "gauge"),
        ("process_resident_memory_bytes", "gauge"),
    ] {
        assert!(
            fams.iter().any(|(n, k)| n == name && k == kind),
            "{name} {kind} in {fams:?}"
        );
    }
    for s in [
        "opentracker_requests_total{family=ipv4,kind=announce,protocol=http} 3.0",
        "opentracker_requests_total{family=ipv6,kind=announce,protocol=http} 2.0",
        "opentracker_requests_total{family=ipv4,kind=scrape,protocol=http} 1.0",
        "opentracker_requests_total{family=ipv4,kind=connect,protocol=udp} 1.0",
        "opentracker_requests_total{family=ipv4,kind=announce,protocol=udp} 2.0",
        "opentracker_requests_total{family=ipv4,kind=scrape,protocol=udp} 1.0",
        "opentracker_requests_failed_total{family=ipv4,protocol=http} 1.0",
        "opentracker_requests_failed_total{family=ipv4,protocol=udp} 1.0",
        "opentracker_full_scrapes_total{encoding=gzip} 1.0",
        "opentracker_full_scrapes_total{encoding=identity} 0.0",
        "opentracker_http_responses_total{code=404} 2.0",
        "opentracker_http_responses_total{code=403} 0.0",
        "opentracker_udp_invalid_total{reason=bad_connection_id} 1.0",
        "opentracker_udp_invalid_total{reason=malformed_header} 1.0",
        "opentracker_torrents{family=ipv4} 3.0",
        "opentracker_torrents{family=ipv6} 1.0",
        "opentracker_seeders{family=ipv4} 1.0",
        "opentracker_leechers{family=ipv4} 4.0",
        "opentracker_seeders{family=ipv6} 1.0",
        "opentracker_leechers{family=ipv6} 1.0",
        "opentracker_completed_total 1.0",
        "opentracker_http_streams 0.0",
    ] {
        assert!(has(s), "{s} not in {samples:#?}");
    }
    // The only open connection is the /metrics request itself.
    assert_eq!(value("opentracker_http_connections"), 1.0);
    assert!(value("opentracker_tcp_accepted_total") >= 11.0);
    assert!(value("opentracker_bytes_total{direction=in}") > 1000.0);
    assert!(value("opentracker_bytes_total{direction=out}") > 1000.0);
    assert!(value("opentracker_loop_iterations_total") >= 1.0);
    assert!(value("opentracker_loop_longest_stall_seconds") > 0.0);
    assert!(value("process_resident_memory_bytes") > 1e6);
    assert!(value("opentracker_uptime_seconds") >= 0.0);
    assert!(has(&format!(
        "opentracker_info{{version={}}} 1.0",
        env!("CARGO_PKG_VERSION")
    )));
    // mode=prometheus is the same format.
    let r = get(a4, "/stats?mode=prometheus");
    assert!(
        String::from_utf8(r.body)
            .unwrap()
            .contains("# TYPE opentracker_requests_total counter")
    );
}

/// Measurement, not a test of speed (run it by hand, release build):
/// `cargo test --release --test stats -- --ignored --nocapture million`.
/// Fills 1 million torrents over UDP (loopback, bounded in time), then runs a plain and a gzip
/// full scrape while another client sends UDP scrapes one at a time, and prints the longest
/// round trip that client saw (how long the loop made others wait), next to the same figure
/// over a quiet period, and the loop's longest stall.
#[test]
#[ignore]
fn million_torrents_full_scrape_loop_stall() {
    const N: u32 = 1_000_000;
    let t = Tracker::start("fullscrape-1m", &stats_config(""));
    let a4 = t.http_addr(false);
    let udp = UdpClient::new(t.udp_addr(false));
    let hash_of = |i: u32| {
        let mut h = [0u8; 20];
        h[..8].copy_from_slice(
            &u64::from(i)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .to_be_bytes(),
        );
        h[8..12].copy_from_slice(&i.to_be_bytes());
        h
    };
    let t0 = Instant::now();
    udp.fill(N, hash_of, Duration::from_secs(300));
    let stall = || metric(&t, "opentracker_loop_longest_stall_seconds") * 1e3;
    println!(
        "filled {N} torrents over UDP in {:.1} s; longest loop stall so far {:.3} ms; RSS {:.0} MB",
        t0.elapsed().as_secs_f64(),
        stall(),
        metric(&t, "process_resident_memory_bytes") / 1e6
    );
    // Round trips of back-to-back UDP scrapes until `stop`; returns (count, longest).
    let probe = |stop: std::sync::Arc<std::sync::atomic::AtomicBool>| {
        let c = UdpClient::new(t.udp_addr(false));
        std::thread::spawn(move || {
            let (mut n, mut longest) = (0u32, Duration::ZERO);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let s = Instant::now();
                c.scrape(&[7; 20]);
                longest = longest.max(s.elapsed());
                n += 1;
            }
            (n, longest)
        })
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let quiet = probe(stop.clone());
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (n, longest) = quiet.join().unwrap();
    println!(
        "quiet 0.5 s: {n} UDP scrapes, longest round trip {:.3} ms",
        longest.as_secs_f64() * 1e3
    );
    for headers in ["", "Accept-Encoding: gzip\r\n"] {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let busy = probe(stop.clone());
        let t1 = Instant::now();
        let r = get_raw(a4, "/scrape", headers);
        let took = t1.elapsed();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (n, longest) = busy.join().unwrap();
        let body = r.decoded();
        assert!(body.ends_with(b"ee"));
        println!(
            "full scrape {:<5}: {:.1} MB on the wire, {:.1} MB bencode, {:.2} s; meanwhile {n} \
             UDP scrapes, longest round trip {:.3} ms; longest loop stall {:.3} ms",
            if headers.is_empty() { "plain" } else { "gzip" },
            r.body.len() as f64 / 1e6,
            body.len() as f64 / 1e6,
            took.as_secs_f64(),
            longest.as_secs_f64() * 1e3,
            stall()
        );
    }
}
