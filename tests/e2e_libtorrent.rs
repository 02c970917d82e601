//! Real clients: a libtorrent seeder and a libtorrent leecher (python3-libtorrent) that can only
//! meet through our tracker (DHT, LSD, PEX, UPnP, NAT-PMP off) download a few MiB over loopback,
//! over HTTP and UDP, IPv4 and IPv6. The script verifies the data byte for byte; while both
//! sessions still run, this test scrapes the tracker and checks it shows the swarm.
//!
//! Needs `python3` with the `libtorrent` module (`make test-deps` installs it); without it the
//! tests fail with a message that says so.

mod common;

use std::io::{BufRead, BufReader, Write};
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

/// Scrape counts (complete, downloaded, incomplete) over HTTP.
fn scrape_http(t: &Tracker, v6: bool, h: &[u8; 20]) -> (i64, i64, i64) {
    let r = get(t.http_addr(v6), &format!("/scrape?info_hash={}", pct(h)));
    let v = r.bencode();
    let e = v.get(b"files").unwrap().get(h).expect("torrent in scrape");
    let n = |k: &[u8]| e.get(k).unwrap().as_int().unwrap();
    (n(b"complete"), n(b"downloaded"), n(b"incomplete"))
}

fn run_swarm(proto: &str, v6: bool) {
    let python = python_with("libtorrent");
    let t = Tracker::start(
        "e2e",
        "listen.tcp_udp 127.0.0.1:0\nlisten.tcp_udp [::1]:0\ntracker.announce_interval 30\n",
    );
    let (host, addr) = if v6 {
        (
            "[::1]".to_string(),
            if proto == "http" {
                t.http_addr(true)
            } else {
                t.udp_addr(true)
            },
        )
    } else {
        (
            "127.0.0.1".to_string(),
            if proto == "http" {
                t.http_addr(false)
            } else {
                t.udp_addr(false)
            },
        )
    };
    let url = match proto {
        "http" => format!("http://{host}:{}/announce", addr.port()),
        _ => format!("udp://{host}:{}/announce", addr.port()),
    };
    let work = temp_dir(&format!("e2e-{proto}-{}", if v6 { 6 } else { 4 }));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/libtorrent_swarm.py");
    let mut child = Command::new(python)
        .arg(script)
        .args(["--announce", &url, "--family", if v6 { "6" } else { "4" }])
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
            let mut counts = scrape_http(&t, v6, &h);
            while counts != (2, 1, 0) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
                counts = scrape_http(&t, v6, &h);
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

#[test]
fn libtorrent_swarm_udp_ipv4() {
    run_swarm("udp", false);
}

#[test]
fn libtorrent_swarm_udp_ipv6() {
    run_swarm("udp", true);
}
