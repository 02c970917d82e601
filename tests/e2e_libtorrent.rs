//! Real clients: a libtorrent seeder and a libtorrent leecher (python3-libtorrent) that can only
//! meet through our tracker (DHT, LSD, PEX, UPnP, NAT-PMP off) download a few MiB over loopback,
//! over HTTP and UDP, IPv4 and IPv6. The script verifies the data byte for byte; while both
//! sessions still run, this test scrapes the tracker and checks it shows the swarm.
//!
//! Private tracking: the same swarm through a `tracker.mode private` tracker with a key made
//! through the REST API, in the announce URL's path (`/announce/KEY`; over UDP libtorrent sends
//! that path as BEP 41 URL data); and libtorrent refused with a missing, an unknown and an
//! expired key.
//!
//! Needs `python3` with the `libtorrent` module (`make test-deps` installs it); without it the
//! tests fail with a message that says so.

mod common;
mod tls_pki;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;

fn hex_decode(s: &str) -> [u8; 20] {
    let mut out = [0u8; 20];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

/// Scrape counts (complete, downloaded, incomplete) over HTTP; `key` for a private tracker.
fn scrape_http(t: &Tracker, v6: bool, key: Option<&str>, h: &[u8; 20]) -> (i64, i64, i64) {
    let path = key.map_or("/scrape".to_owned(), |k| format!("/scrape/{k}"));
    let r = get(t.http_addr(v6), &format!("{path}?info_hash={}", pct(h)));
    let v = r.bencode();
    let e = v.get(b"files").unwrap().get(h).expect("torrent in scrape");
    let n = |k: &[u8]| e.get(k).unwrap().as_int().unwrap();
    (n(b"complete"), n(b"downloaded"), n(b"incomplete"))
}

fn run_swarm(proto: &str, v6: bool) {
    let t = Tracker::start(
        "e2e",
        "listen.tcp_udp 127.0.0.1:0\nlisten.tcp_udp [::1]:0\ntracker.announce_interval 30\n",
    );
    run_swarm_on(&t, proto, v6, None);
}

/// The announce URL of `t` for `proto` and family; `/announce/KEY` with a key.
fn announce_url(t: &Tracker, proto: &str, v6: bool, key: Option<&str>) -> String {
    let host = if v6 { "[::1]" } else { "127.0.0.1" };
    let port = if proto == "http" {
        t.http_addr(v6).port()
    } else {
        t.udp_addr(v6).port()
    };
    let path = key.map_or("/announce".to_owned(), |k| format!("/announce/{k}"));
    format!("{proto}://{host}:{port}{path}")
}

/// A seeder and a leecher download through `t`, announcing to `/announce[/KEY]`.
fn run_swarm_on(t: &Tracker, proto: &str, v6: bool, key: Option<&str>) {
    run_swarm_url(t, &announce_url(t, proto, v6, key), v6, key, None);
}

/// As [`run_swarm_on`] with the announce URL given; `ca`: the PEM file libtorrent trusts for
/// an https:// tracker (OpenSSL's `SSL_CERT_FILE`).
fn run_swarm_url(t: &Tracker, url: &str, v6: bool, key: Option<&str>, ca: Option<&Path>) {
    let python = python_with("libtorrent");
    let proto = url.split(':').next().unwrap();
    let work = temp_dir(&format!("e2e-{proto}-{}", if v6 { 6 } else { 4 }));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/libtorrent_swarm.py");
    let mut cmd = Command::new(python);
    if let Some(ca) = ca {
        cmd.env("SSL_CERT_FILE", ca);
    }
    let mut child = cmd
        .arg(script)
        .args(["--announce", url, "--family", if v6 { "6" } else { "4" }])
        .arg("--workdir")
        .arg(&work)
        .args(["--size-mib", "4", "--timeout", "90", "--hold"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut info_hash = None;
    let mut result = None;
    let mut held = false;
    while result.is_none() {
        let line = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "libtorrent script gave no result; tracker log:\n{}",
                    t.log_text()
                );
            }
        };
        eprintln!("script: {line}");
        if let Some(h) = line.strip_prefix("INFO_HASH ") {
            info_hash = Some(hex_decode(h.trim()));
        } else if line.starts_with("HOLDING") {
            // Both sessions still run: the tracker must show the swarm now. The leecher finished
            // (event=completed, left=0): two seeders, one download.
            // The leecher's `completed` announce may still be on its way: poll (bounded).
            let h = info_hash.expect("info_hash before HOLDING");
            let deadline = std::time::Instant::now() + Duration::from_secs(15);
            let mut counts = scrape_http(t, v6, key, &h);
            while counts != (2, 1, 0) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
                counts = scrape_http(t, v6, key, &h);
            }
            assert_eq!(
                counts,
                (2, 1, 0),
                "scrape (complete, downloaded, incomplete)"
            );
            held = true;
            let mut stdin = child.stdin.take().unwrap();
            writeln!(stdin, "release").unwrap();
        } else if let Some(r) = line.strip_prefix("RESULT ") {
            result = Some(r.to_string());
        }
    }
    let status = child.wait().unwrap();
    let result = result.unwrap();
    assert!(
        status.success() && result.contains("\"ok\": true"),
        "{result}\ntracker log:\n{}",
        t.log_text()
    );
    assert!(held, "the script never paused for the scrape");
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn libtorrent_swarm_http_ipv4() {
    run_swarm("http", false);
}

#[test]
fn libtorrent_swarm_http_ipv6() {
    run_swarm("http", true);
}

/// Over `https://` with a certificate from a test CA that libtorrent is told to trust.
fn run_swarm_https(v6: bool) {
    let dir = temp_dir(&format!("e2e-https-{}", if v6 { 6 } else { 4 }));
    let pki = tls_pki::TestPki::new(&dir);
    let t = Tracker::start(
        "e2e-https",
        &format!(
            "listen.tcp 127.0.0.1:0\nlisten.tcp [::1]:0\ntracker.announce_interval 30\n\
             listen.tls 127.0.0.1:0 {c} {k}\nlisten.tls [::1]:0 {c} {k}\n",
            c = pki.cert.display(),
            k = pki.key.display()
        ),
    );
    let addr = *t.https.iter().find(|a| a.is_ipv6() == v6).unwrap();
    let url = format!("https://{addr}/announce");
    run_swarm_url(&t, &url, v6, None, Some(&pki.ca));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn libtorrent_swarm_https_ipv4() {
    run_swarm_https(false);
}

#[test]
fn libtorrent_swarm_https_ipv6() {
    run_swarm_https(true);
}

/// libtorrent refuses our certificate when it does not trust the CA: it does verify.
#[test]
fn libtorrent_https_untrusted_ca_refused() {
    let dir = temp_dir("e2e-https-untrusted");
    let pki = tls_pki::TestPki::new(&dir);
    let other = tls_pki::TestPki::new(&dir.join("other"));
    let t = Tracker::start(
        "e2e-https-untrusted",
        &format!(
            "listen.tcp 127.0.0.1:0\nlisten.tls 127.0.0.1:0 {} {}\naccess.stats 127.0.0.1\n",
            pki.cert.display(),
            pki.key.display()
        ),
    );
    let url = format!("https://{}/announce", t.https[0]);
    let python = python_with("libtorrent");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/libtorrent_swarm.py");
    let out = Command::new(python)
        .env("SSL_CERT_FILE", &other.ca)
        .arg(script)
        .args(["--announce", &url, "--family", "4"])
        .arg("--workdir")
        .arg(dir.join("work"))
        .args(["--size-mib", "1", "--timeout", "30", "--expect-refusal", ""])
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("REFUSED"),
        "libtorrent should fail to announce to an untrusted certificate:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The tracker saw libtorrent abort the handshakes (after our certificate), never a request.
    // With `tracker.workers 2` the HTTPS listener's worker publishes its counters once per
    // loop turn, so the failed handshake may show a moment after libtorrent gave up: read
    // again for up to 3 s.
    let sample = |metrics: &str, name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap()
    };
    let failed = "opentracker_tls_handshakes_total{result=\"failed\"}";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let metrics = loop {
        let m = String::from_utf8(get(t.http_addr(false), "/metrics").body).unwrap();
        if sample(&m, failed) >= 1 || std::time::Instant::now() > deadline {
            break m;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(
        sample(&metrics, "opentracker_tls_handshakes_total{result=\"ok\"}"),
        0
    );
    assert!(sample(&metrics, failed) >= 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn libtorrent_swarm_udp_ipv4() {
    run_swarm("udp", false);
}

#[test]
fn libtorrent_swarm_udp_ipv6() {
    run_swarm("udp", true);
}

const TOKEN: &str = "0123456789abcdef0123";

/// A private tracker (RAM keys) with its API on IPv4 loopback.
fn private_tracker() -> Tracker {
    Tracker::start(
        "e2e-private",
        &format!(
            "listen.tcp_udp 127.0.0.1:0\nlisten.tcp_udp [::1]:0\ntracker.announce_interval 30\n\
             tracker.mode private\napi.listen 127.0.0.1:0\napi.token e2e {TOKEN}\n"
        ),
    )
}

/// A key made through the API, valid for `seconds`.
fn api_key(t: &Tracker, seconds: u64) -> String {
    let body = format!("{{\"key\":null,\"seconds_valid\":{seconds}}}");
    let req = format!(
        "POST /api/v1/keys?token={TOKEN} HTTP/1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let r = raw(t.api_addr(false), req.as_bytes()).expect("api answer");
    assert_eq!(r.status, 200);
    let text = String::from_utf8(r.body).unwrap();
    text.split("\"key\":\"").nth(1).unwrap()[..32].to_owned()
}

/// libtorrent announces to `url` and must be refused with a reason containing `reason`; the
/// script prints the reason libtorrent shows (`REFUSED <reason>`).
fn expect_refusal(url: &str, v6: bool, reason: &str) {
    let python = python_with("libtorrent");
    let work = temp_dir("e2e-refused");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/libtorrent_swarm.py");
    let out = Command::new(python)
        .arg(script)
        .args(["--announce", url, "--family", if v6 { "6" } else { "4" }])
        .arg("--workdir")
        .arg(&work)
        .args([
            "--size-mib",
            "1",
            "--timeout",
            "30",
            "--expect-refusal",
            reason,
        ])
        .stderr(Stdio::inherit())
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert!(out.status.success(), "{stdout}");
    let shown = stdout
        .lines()
        .find_map(|l| l.strip_prefix("REFUSED "))
        .expect("REFUSED line");
    assert!(shown.contains(reason), "{shown}");
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn libtorrent_private_http_ipv4_with_key() {
    let t = private_tracker();
    let key = api_key(&t, 3600);
    run_swarm_on(&t, "http", false, Some(&key));
}

#[test]
fn libtorrent_private_udp_ipv4_with_key_in_bep41_url_data() {
    let t = private_tracker();
    let key = api_key(&t, 3600);
    run_swarm_on(&t, "udp", false, Some(&key));
}

#[test]
fn libtorrent_private_udp_ipv6_with_key_in_bep41_url_data() {
    let t = private_tracker();
    let key = api_key(&t, 3600);
    run_swarm_on(&t, "udp", true, Some(&key));
}

/// What libtorrent shows for a refusal over `proto`: the tracker's text over HTTP. Over UDP,
/// libtorrent 2.0 takes the error packet's message from the start of the datagram (its action
/// field, whose first byte is 0), so it always shows an empty failure message: only the
/// refusal itself can be checked there (tests/private.rs checks our UDP error texts).
fn shown(proto: &str, reason: &'static str) -> &'static str {
    if proto == "http" {
        reason
    } else {
        "tracker sent a failure message"
    }
}

#[test]
fn libtorrent_private_refusals_show_the_reason() {
    let t = private_tracker();
    let unknown = "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ";
    for proto in ["http", "udp"] {
        let url = announce_url(&t, proto, false, Some(unknown));
        expect_refusal(&url, false, shown(proto, "unknown authentication key"));
        let url = announce_url(&t, proto, false, None);
        expect_refusal(&url, false, shown(proto, "missing key"));
    }
    // A key valid for one second, then expired (polled, bounded).
    let key = api_key(&t, 1);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let r = get(
            t.http_addr(false),
            &announce(&[1; 20], 6881, 0, "").replacen("/announce", &format!("/announce/{key}"), 1),
        );
        if r.failure().is_some_and(|f| f.contains("expired")) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the key never expired"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for proto in ["http", "udp"] {
        let url = announce_url(&t, proto, false, Some(&key));
        expect_refusal(&url, false, shown(proto, "key has expired"));
    }
    // Every refusal was counted by its reason.
    let metrics = get(
        t.api_addr(false),
        &format!("/api/v1/stats?format=prometheus&token={TOKEN}"),
    );
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    for reason in ["missing_key", "unknown_key", "expired_key"] {
        let line = format!("opentracker_refused_total{{reason=\"{reason}\"}} ");
        let n: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix(&line))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        assert!(n >= 2, "{reason}: {n}\n{text}");
    }
}
