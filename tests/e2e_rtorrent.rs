//! rtorrent as a real client (issue #13): a libtorrent seeder (python3-libtorrent) and an
//! rtorrent leecher (Debian's `rtorrent`, run as a daemon and driven over XML-RPC by
//! tests/e2e/rtorrent_leecher.py) download a small torrent through the tracker on IPv4
//! loopback, over HTTP and over UDP; then rtorrent stops the download.
//!
//! With its default `pieces.hash.on_completion.set = yes`, rtorrent 0.9.8 rechecks the file
//! when the download completes, which disables its trackers for a moment: the `completed`
//! event it queued then is dropped, and the tracker only ever sees `started` (left > 0) and
//! `stopped` (left = 0). Its log says so (`events_sent` in the script's result). The tracker
//! must still count that download once: the scrape says `downloaded` = 1 after the stop. With
//! the recheck off, rtorrent does send `completed` (then `stopped`): still one download.
//!
//! Needs `rtorrent` and `python3` with the `libtorrent` module (`make test-deps` installs
//! both); without them the tests fail with a message that says so.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

/// (complete, downloaded, incomplete) of one torrent by HTTP scrape.
fn scrape(t: &Tracker, h: &[u8; 20]) -> (i64, i64, i64) {
    let r = get(t.http_addr(false), &format!("/scrape?info_hash={}", pct(h)));
    let v = r.bencode();
    let e = v.get(b"files").unwrap().get(h).expect("torrent in scrape");
    let n = |k: &[u8]| e.get(k).unwrap().as_int().unwrap();
    (n(b"complete"), n(b"downloaded"), n(b"incomplete"))
}

/// Polls the scrape until it is `want` (bounded: an announce may still be on its way), then
/// asserts it.
fn scrape_becomes(t: &Tracker, h: &[u8; 20], want: (i64, i64, i64), when: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut got = scrape(t, h);
    while got != want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        got = scrape(t, h);
    }
    assert_eq!(
        got,
        want,
        "{when}: scrape (complete, downloaded, incomplete); tracker log:\n{}",
        t.log_text()
    );
}

/// The value of one `/metrics` sample, exactly as printed.
fn metric(t: &Tracker, sample: &str) -> u64 {
    let body = get(t.http_addr(false), "/metrics").body;
    String::from_utf8(body)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {sample} in /metrics"))
}

fn hex_decode(s: &str) -> [u8; 20] {
    let mut out = [0u8; 20];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

fn release(stdin: &mut ChildStdin) {
    writeln!(stdin, "go").unwrap();
}

/// One run: rtorrent downloads through a fresh tracker over `proto` ("http" or "udp"), with
/// its completion recheck on (no `completed` sent) or off.
fn run_rtorrent(proto: &str, hash_on_completion: bool) {
    assert!(
        Command::new("rtorrent")
            .arg("-h")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok(),
        "rtorrent is required: run `make test-deps` (Debian: rtorrent)"
    );
    let t = Tracker::start(
        "e2e-rtorrent",
        "listen.tcp_udp 127.0.0.1:0\naccess.stats 127.0.0.1\n",
    );
    let url = match proto {
        "http" => format!("http://{}/announce", t.http_addr(false)),
        _ => format!("udp://{}", t.udp_addr(false)),
    };
    let work = temp_dir(&format!("e2e-rtorrent-{proto}"));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/rtorrent_leecher.py");
    let mut cmd = Command::new(python_with("libtorrent"));
    cmd.arg(script)
        .args(["--announce", &url, "--workdir"])
        .arg(&work)
        .args(["--size-mib", "1", "--timeout", "60"]);
    if !hash_on_completion {
        cmd.arg("--no-hash-on-completion");
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3");
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut info_hash = None;
    let mut steps = Vec::new();
    let result = loop {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(90)) else {
            let _ = child.kill();
            panic!(
                "the rtorrent script gave no result; tracker log:\n{}",
                t.log_text()
            );
        };
        eprintln!("script: {line}");
        if let Some(h) = line.strip_prefix("INFO_HASH ") {
            info_hash = Some(hex_decode(h.trim()));
        } else if line == "COMPLETE" {
            // rtorrent has the whole file. The seeder and rtorrent are in the swarm; with the
            // recheck on, rtorrent told the tracker nothing since `started`: still a leecher,
            // no download counted yet. Without it, its `completed` counts the download.
            let h = info_hash.expect("INFO_HASH first");
            let want = if hash_on_completion {
                (1, 0, 1)
            } else {
                (2, 1, 0)
            };
            scrape_becomes(&t, &h, want, "rtorrent complete");
            steps.push(line);
            release(&mut stdin);
        } else if line == "STOPPED" {
            // rtorrent's `stopped` (left = 0): gone, and its download counted once.
            let h = info_hash.expect("INFO_HASH first");
            scrape_becomes(&t, &h, (1, 1, 0), "rtorrent stopped");
            steps.push(line);
            release(&mut stdin);
        } else if let Some(r) = line.strip_prefix("RESULT ") {
            break r.to_owned();
        }
    };
    let status = child.wait().unwrap();
    let v: serde_json::Value = serde_json::from_str(&result).expect("RESULT json");
    assert!(
        status.success() && v["ok"] == true,
        "{result}\ntracker log:\n{}",
        t.log_text()
    );
    assert_eq!(steps, ["COMPLETE", "STOPPED"]);
    // What rtorrent says it sent: no `completed` with the recheck on.
    let events: Vec<&str> = v["events_sent"]
        .as_array()
        .expect("events_sent")
        .iter()
        .filter_map(|e| e.as_str())
        .collect();
    let want_events: &[&str] = if hash_on_completion {
        &["started", "stopped"]
    } else {
        &["started", "completed", "stopped"]
    };
    assert_eq!(events, want_events, "{result}");
    // One download counted, and every announce came over `proto`.
    assert_eq!(metric(&t, "opentracker_completed_total"), 1);
    let announces = |p: &str| {
        metric(
            &t,
            &format!(
                "opentracker_requests_total{{protocol=\"{p}\",family=\"ipv4\",kind=\"announce\"}}"
            ),
        )
    };
    let other = if proto == "http" { "udp" } else { "http" };
    assert!(announces(proto) >= 3, "{proto} announces");
    assert_eq!(announces(other), 0, "{other} announces");
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn rtorrent_http_download_counted_without_completed() {
    run_rtorrent("http", true);
}

#[test]
fn rtorrent_udp_download_counted_without_completed() {
    run_rtorrent("udp", true);
}

#[test]
fn rtorrent_http_download_with_completed_counted_once() {
    run_rtorrent("http", false);
}

#[test]
fn rtorrent_udp_download_with_completed_counted_once() {
    run_rtorrent("udp", false);
}
