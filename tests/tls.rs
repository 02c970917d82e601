//! HTTPS listeners (`listen.tls`, `api.listen_tls`) against real clients: curl over IPv4 and
//! IPv6, rustls clients for TLS 1.2 and 1.3 with ALPN, a client that stalls mid-handshake, and
//! certificate reloads on SIGHUP (an expired pair refused, a good one served to new
//! connections while an open connection stays). Certificates come from a CA the test makes
//! (rcgen). The libtorrent announces over https:// are in `e2e_libtorrent.rs`.

mod common;
mod tls_pki;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use common::*;
use tls_pki::{TestPki, get_keep_alive, peer_leaf, pem_leaf};

const TOKEN: &str = "0123456789abcdef0123";

fn tls_tracker(name: &str, pki: &TestPki, extra: &str) -> Tracker {
    let (c, k) = (pki.cert.display(), pki.key.display());
    Tracker::start(
        name,
        &format!(
            "listen.tcp 127.0.0.1:0\nlisten.tls 127.0.0.1:0 {c} {k}\nlisten.tls [::1]:0 {c} {k}\n\
             api.listen_tls 127.0.0.1:0 {c} {k}\napi.token test {TOKEN}\n\
             access.stats 127.0.0.1\n{extra}"
        ),
    )
}

fn https(t: &Tracker, v6: bool) -> SocketAddr {
    *t.https.iter().find(|a| a.is_ipv6() == v6).unwrap()
}

/// Waits (bounded) until the Prometheus sample `line_start` reads `want`; panics with the last
/// value otherwise.
fn wait_metric(t: &Tracker, line_start: &str, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let v = metric(t, line_start);
        if v == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{line_start} is {v}, want {want}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One Prometheus sample from the tracker's plain-HTTP `/metrics`.
fn metric(t: &Tracker, line_start: &str) -> u64 {
    let r = get(t.http_addr(false), "/metrics");
    let text = String::from_utf8(r.body).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(line_start)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{line_start} not in /metrics:\n{text}"))
}

fn curl(args: &[&str]) -> (bool, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl (apt install curl)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn curl_announces_over_https_on_ipv4_and_ipv6_and_reads_the_api() {
    let dir = temp_dir("tls-curl");
    let pki = TestPki::new(&dir);
    let t = tls_tracker("tls-curl", &pki, "");
    let ca = pki.ca.to_str().unwrap();
    for v6 in [false, true] {
        let addr = https(&t, v6);
        let host = if v6 { "[::1]" } else { "127.0.0.1" };
        let url = format!(
            "https://{host}:{}{}",
            addr.port(),
            announce(&hash(7), 4000 + u16::from(v6), 0, "")
        );
        let (ok, out) = curl(&["--cacert", ca, &url]);
        assert!(ok && out.contains("8:interval"), "{url}: {out}");
        // Without the CA, curl refuses the certificate: it is really checked.
        let (ok, out) = curl(&[&url]);
        assert!(!ok, "curl without the CA accepted: {out}");
        // TLS 1.2 only and TLS 1.3 only both work, with ALPN http/1.1.
        for v in [
            ["--tlsv1.2", "--tls-max", "1.2"],
            ["--tlsv1.3", "--tls-max", "1.3"],
        ] {
            let (ok, out) = curl(&["-v", "--cacert", ca, v[0], v[1], v[2], &url]);
            let want = if v[0] == "--tlsv1.2" {
                "TLSv1.2"
            } else {
                "TLSv1.3"
            };
            assert!(ok && out.contains(want), "{v:?}: {out}");
            assert!(out.contains("http/1.1"), "ALPN: {out}");
        }
    }
    // The API over https.
    let api = t.api_https[0];
    let url = format!(
        "https://localhost:{}/api/v1/stats?token={TOKEN}",
        api.port()
    );
    let (ok, out) = curl(&["--cacert", ca, &url]);
    assert!(ok && out.contains("torrents"), "{url}: {out}");
    let url = format!("https://localhost:{}/api/v1/stats", api.port());
    let (ok, out) = curl(&["--cacert", ca, "-w", "%{http_code}", &url]);
    assert!(ok && out.ends_with("401"), "{url}: {out}");
    // Handshakes counted: 2 families x 3 good ones + the API's 2; the 2 refused by curl failed.
    wait_metric(&t, "opentracker_tls_handshakes_total{result=\"ok\"}", 8);
    wait_metric(&t, "opentracker_tls_handshakes_total{result=\"failed\"}", 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rustls_client_keep_alive_over_tls12_and_tls13() {
    let dir = temp_dir("tls-keepalive");
    let pki = TestPki::new(&dir);
    let t = tls_tracker("tls-keepalive", &pki, "");
    let versions = [
        (&rustls::version::TLS13, rustls::ProtocolVersion::TLSv1_3),
        (&rustls::version::TLS12, rustls::ProtocolVersion::TLSv1_2),
    ];
    for (v6, (offer, version)) in [
        (false, versions[0]),
        (true, versions[1]),
        (false, versions[1]),
    ] {
        let mut s = pki.connect_with(https(&t, v6), &[offer]);
        assert_eq!(s.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
        assert_eq!(s.conn.protocol_version(), Some(version));
        for i in 0..50 {
            let (status, body) = get_keep_alive(&mut s, &announce(&hash(i), 5000, 1, ""));
            assert_eq!(status, 200);
            assert!(decode(&body).unwrap().get(b"interval").is_some());
        }
        // /metrics on the same connection (access.stats allows 127.0.0.1, not ::1).
        let (status, body) = get_keep_alive(&mut s, "/metrics");
        assert_eq!(status, if v6 { 403 } else { 200 });
        if !v6 {
            let text = String::from_utf8(body).unwrap();
            assert!(text.contains("opentracker_tls_handshakes_total{result=\"ok\"}"));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn plain_http_on_a_tls_port_is_a_failed_handshake() {
    let dir = temp_dir("tls-plain");
    let pki = TestPki::new(&dir);
    let t = tls_tracker("tls-plain", &pki, "");
    let mut s = TcpStream::connect(https(&t, false)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /announce HTTP/1.1\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(!buf.starts_with(b"HTTP"), "a plain answer on a TLS port");
    wait_metric(&t, "opentracker_tls_handshakes_total{result=\"failed\"}", 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_client_stalled_mid_handshake_is_closed_at_the_header_deadline() {
    let dir = temp_dir("tls-stall");
    let pki = TestPki::new(&dir);
    let t = tls_tracker("tls-stall", &pki, "http.header_timeout 2\n");
    let mut s = TcpStream::connect(https(&t, false)).unwrap();
    // The start of a ClientHello record, then nothing.
    s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap_or(0);
    let took = started.elapsed();
    assert_eq!(n, 0, "closed without an answer");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "closed after {took:?}"
    );
    wait_metric(
        &t,
        "opentracker_tls_handshakes_total{result=\"timeout\"}",
        1,
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Waits (bounded) for a log line containing `text`, `count` times.
fn wait_log(t: &Tracker, text: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while t.log_text().matches(text).count() < count {
        assert!(
            Instant::now() < deadline,
            "no {text:?} in log:\n{}",
            t.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sighup_reload_refuses_an_expired_certificate_and_serves_a_good_one_to_new_connections() {
    let dir = temp_dir("tls-reload");
    let pki = TestPki::new(&dir);
    let t = tls_tracker("tls-reload", &pki, "");
    let addr = https(&t, false);
    let first = pem_leaf(&pki.cert);
    let mut old = pki.connect(addr);
    assert_eq!(peer_leaf(&old), first);
    assert_eq!(
        get_keep_alive(&mut old, &announce(&hash(1), 6001, 0, "")).0,
        200
    );

    // An expired certificate: refused, the old one keeps serving.
    let day = Duration::from_secs(86_400);
    let now = SystemTime::now();
    std::fs::write(&pki.cert, pki.server_cert_pem(now - 30 * day, now - day)).unwrap();
    t.signal(libc::SIGHUP);
    wait_log(&t, "TLS reload refused", 1);
    assert!(t.log_text().contains("expired"), "{}", t.log_text());
    assert_eq!(peer_leaf(&pki.connect(addr)), first);
    wait_metric(&t, "opentracker_tls_reload_failed_total", 1);

    // A key that does not belong to the certificate: refused too.
    let good = pki.server_cert_pem(now - day, now + 90 * day);
    std::fs::write(&pki.cert, &good).unwrap();
    let key = std::fs::read(&pki.key).unwrap();
    std::fs::write(
        &pki.key,
        rcgen::KeyPair::generate().unwrap().serialize_pem(),
    )
    .unwrap();
    t.signal(libc::SIGHUP);
    wait_log(&t, "TLS reload refused", 2);
    assert_eq!(peer_leaf(&pki.connect(addr)), first);

    // The good pair: new connections get it, the open one stays open and keeps working.
    std::fs::write(&pki.key, key).unwrap();
    t.signal(libc::SIGHUP);
    wait_log(&t, "reloaded (key", 1);
    let second = pem_leaf(&pki.cert);
    assert_ne!(first, second);
    let mut new = pki.connect(addr);
    assert_eq!(peer_leaf(&new), second);
    assert_eq!(
        get_keep_alive(&mut new, &announce(&hash(1), 6002, 0, "")).0,
        200
    );
    assert_eq!(
        get_keep_alive(&mut old, &announce(&hash(1), 6001, 0, "")).0,
        200
    );
    assert_eq!(peer_leaf(&old), first);
    // The API listener shares the pair: reloaded too.
    assert_eq!(peer_leaf(&pki.connect(t.api_https[0])), second);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_pair_at_start_is_fatal_and_names_the_listener() {
    let dir = temp_dir("tls-start");
    let pki = TestPki::new(&dir);
    let conf = dir.join("ot.conf");
    std::fs::write(
        &conf,
        format!(
            "listen.tcp 127.0.0.1:0\nlisten.tls 127.0.0.1:0 {} {}\n",
            pki.cert.display(),
            dir.join("missing.pem").display()
        ),
    )
    .unwrap();
    let out = Command::new(binary())
        .arg("-f")
        .arg(&conf)
        .args(allow_root_arg())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("TLS listener 127.0.0.1:0") && err.contains("missing.pem"),
        "{err}"
    );
    // --check-config prints the directives back.
    let out = Command::new(binary())
        .arg("-f")
        .arg(&conf)
        .arg("--check-config")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\nlisten.tls 127.0.0.1:0 "), "{text}");
    assert!(text.contains("# api.listen_tls"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A full scrape (a streamed response, chunked) over HTTPS to a client that reads late: the
/// whole body arrives, and the connection ends with a TLS close_notify.
#[test]
fn full_scrape_streams_over_https_and_ends_with_close_notify() {
    let dir = temp_dir("tls-fullscrape");
    let pki = TestPki::new(&dir);
    let t = tls_tracker("tls-fullscrape", &pki, "");
    let addr = https(&t, false);
    let mut s = pki.connect(addr);
    let torrents = 3000;
    for i in 0..torrents {
        assert_eq!(
            get_keep_alive(&mut s, &announce(&hash(i), 7000, 1, "")).0,
            200
        );
    }
    let mut s = pki.connect(addr);
    s.write_all(b"GET /scrape HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .expect("the body, then close_notify (no truncation)");
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&raw[..head_end]).to_lowercase();
    assert!(head.starts_with("http/1.1 200") && head.contains("transfer-encoding: chunked"));
    let mut body = Vec::new();
    let mut b = &raw[head_end..];
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap(), 16).unwrap();
        b = &b[eol + 2..];
        if size == 0 {
            break;
        }
        body.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
    let v = decode(&body).unwrap();
    let files = v.get(b"files").unwrap();
    for i in [0, torrents / 2, torrents - 1] {
        assert!(
            files.get(&hash(i)).is_some(),
            "torrent {i} in the full scrape"
        );
    }
    assert!(body.len() > 3000 * 50, "{} bytes", body.len());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `http.max_connections` counts HTTPS connections too: over the cap, a new one is closed at
/// once, before any handshake.
#[test]
fn the_connection_cap_counts_https_connections() {
    let dir = temp_dir("tls-cap");
    let pki = TestPki::new(&dir);
    let t = tls_tracker("tls-cap", &pki, "http.max_connections 2\n");
    let addr = https(&t, false);
    let mut first = pki.connect(addr);
    let second = pki.connect(addr);
    let mut third = TcpStream::connect(addr).unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(third.read(&mut buf).unwrap_or(0), 0, "closed at once");
    // Room for the plain /metrics request (the cap counts every HTTP connection).
    drop(second);
    std::thread::sleep(Duration::from_millis(200));
    wait_metric(&t, "opentracker_tcp_refused_total", 1);
    assert_eq!(
        get_keep_alive(&mut first, &announce(&hash(1), 7001, 0, "")).0,
        200
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The per-worker count of completed TLS handshakes (`tracker.workers` above 1), from one
/// `/metrics` read.
fn worker_handshakes(t: &Tracker) -> [u64; 2] {
    [0, 1].map(|w| {
        metric(
            t,
            &format!("opentracker_worker_tls_handshakes_total{{worker=\"{w}\"}}"),
        )
    })
}

/// Opens new HTTPS connections (each from a new source port, which the kernel's
/// `SO_REUSEPORT` hash sends to either worker), checks each presents `leaf` and answers an
/// announce, until every worker's handshake count is above `above` (bounded). Returns how
/// many connections it made.
fn connect_until_every_worker_served(
    t: &Tracker,
    pki: &TestPki,
    addr: SocketAddr,
    leaf: &[u8],
    above: [u64; 2],
) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut made = 0;
    loop {
        for _ in 0..8 {
            let mut s = pki.connect(addr);
            assert_eq!(
                peer_leaf(&s),
                leaf,
                "connection {made} got another certificate"
            );
            let port = 8000 + (made % 1000) as u16;
            assert_eq!(
                get_keep_alive(&mut s, &announce(&hash(1), port, 0, "")).0,
                200
            );
            made += 1;
        }
        let per = worker_handshakes(t);
        if per[0] > above[0] && per[1] > above[1] {
            return made;
        }
        assert!(
            Instant::now() < deadline,
            "after {made} connections one worker served no TLS: {per:?} (before: {above:?})"
        );
    }
}

/// With 2 workers every worker serves its own copy of each `listen.tls` listener (the
/// handshakes spread over both), the TLS counters are summed, and a certificate reloaded on
/// SIGHUP reaches every worker: all new connections, on either worker, present it.
#[test]
fn two_workers_both_serve_https_and_both_take_a_reloaded_certificate() {
    let dir = temp_dir("tls-workers");
    let pki = TestPki::new(&dir);
    let t = tls_tracker("tls-workers", &pki, "tracker.workers 2\n");
    let addr = https(&t, false);
    let first = pem_leaf(&pki.cert);
    let made = connect_until_every_worker_served(&t, &pki, addr, &first, [0, 0]);
    let before = worker_handshakes(&t);
    assert_eq!(before[0] + before[1], made, "{before:?}");
    wait_metric(&t, "opentracker_tls_handshakes_total{result=\"ok\"}", made);

    // A new certificate (same key): after the reload every connection, on either worker,
    // presents it.
    let day = Duration::from_secs(86_400);
    let now = SystemTime::now();
    std::fs::write(&pki.cert, pki.server_cert_pem(now - day, now + 90 * day)).unwrap();
    t.signal(libc::SIGHUP);
    wait_log(&t, "reloaded (key", 1);
    let second = pem_leaf(&pki.cert);
    assert_ne!(first, second);
    let again = connect_until_every_worker_served(&t, &pki, addr, &second, before);
    wait_metric(
        &t,
        "opentracker_tls_handshakes_total{result=\"ok\"}",
        made + again,
    );
    // The API's HTTPS listener (worker 0) shares the pair: reloaded too.
    assert_eq!(peer_leaf(&pki.connect(t.api_https[0])), second);
    let _ = std::fs::remove_dir_all(&dir);
}
