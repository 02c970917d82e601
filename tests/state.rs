//! The state file against the real binary: written on SIGTERM and loaded at the next start,
//! written periodically, `-l`, and corrupt or partial files tolerated with FILE:LINE warnings.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;

fn hex_upper(h: &[u8; 20]) -> String {
    h.iter().map(|b| format!("{b:02X}")).collect()
}

fn config(state: &Path, extra: &str) -> String {
    format!(
        "listen.tcp 127.0.0.1:0\nlisten.tcp [::1]:0\ntracker.state_file {}\n{extra}",
        state.display()
    )
}

/// A peer that finishes: started as a leecher, then `completed` as a seeder.
fn complete(addr: SocketAddr, h: &[u8; 20], port: u16) {
    assert_eq!(
        get(addr, &announce(h, port, 10, "&event=started")).failure(),
        None
    );
    assert_eq!(
        get(addr, &announce(h, port, 0, "&event=completed")).failure(),
        None
    );
}

fn downloaded(addr: SocketAddr, h: &[u8; 20]) -> i64 {
    let r = get(addr, &format!("/scrape?info_hash={}", pct(h)));
    let v = r.bencode();
    v.get(b"files")
        .and_then(|f| f.get(h))
        .and_then(|d| d.get(b"downloaded"))
        .and_then(|d| d.as_int())
        .unwrap_or_else(|| panic!("no scrape entry: {:?}", String::from_utf8_lossy(&r.body)))
}

/// Waits (bounded) until the log holds `text` (the reader thread may lag behind the process).
fn wait_log(t: &Tracker, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !t.log_text().contains(text) {
        assert!(
            Instant::now() < deadline,
            "log never showed {text:?}:\n{}",
            t.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn state_path(name: &str) -> (PathBuf, PathBuf) {
    let dir = temp_dir(name);
    let path = dir.join("state");
    (dir, path)
}

#[test]
fn written_on_sigterm_and_loaded_at_next_start() {
    let (_dir, path) = state_path("state-exit");
    let (h1, h2, idle) = (hash(1), hash(0xff00_0000), hash(3));
    let mut t = Tracker::start("state-exit-1", &config(&path, ""));
    assert!(
        t.log_text().contains("does not exist yet"),
        "{}",
        t.log_text()
    );
    let (v4, v6) = (t.http_addr(false), t.http_addr(true));
    complete(v4, &h1, 7001);
    complete(v4, &h1, 7002);
    complete(v6, &h1, 7003); // counted in the IPv6 swarm: summed in the file
    complete(v6, &h2, 7001);
    get(v4, &announce(&idle, 7001, 10, "")); // no download: not written
    assert!(!path.exists(), "written before the interval");
    assert!(t.stop().success());
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        text,
        format!("{}:3\n{}:1\n", hex_upper(&h1), hex_upper(&h2)),
        "sorted by info_hash, IPv4 and IPv6 counts summed"
    );
    assert!(!state_tmp(&path).exists());
    wait_log(&t, "written: 2 torrents");

    // Next start: the counts are back (the torrents have no peers yet).
    let mut t = Tracker::start("state-exit-2", &config(&path, ""));
    assert!(
        t.log_text()
            .contains("loaded: 2 torrents with downloads (0 bad lines"),
        "{}",
        t.log_text()
    );
    let v4 = t.http_addr(false);
    assert_eq!(downloaded(v4, &h1), 3);
    assert_eq!(downloaded(v4, &h2), 1);
    // New downloads add to the loaded count, and the next write carries the sum.
    complete(v4, &h2, 7009);
    assert_eq!(downloaded(v4, &h2), 2);
    assert!(t.stop().success());
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format!("{}:3\n{}:2\n", hex_upper(&h1), hex_upper(&h2))
    );
}

fn state_tmp(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

#[test]
fn written_periodically_without_stopping() {
    let (_dir, path) = state_path("state-periodic");
    let h = hash(42);
    let t = Tracker::start(
        "state-periodic",
        &config(&path, "tracker.state_interval 1\n"),
    );
    let a = t.http_addr(false);
    complete(a, &h, 7001);
    let want = format!("{}:1\n", hex_upper(&h));
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::fs::read_to_string(&path).ok().as_deref() != Some(want.as_str()) {
        assert!(
            Instant::now() < deadline,
            "no periodic write: {}",
            t.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Still serving, and a later download shows up in a later write.
    complete(a, &h, 7002);
    let want = format!("{}:2\n", hex_upper(&h));
    while std::fs::read_to_string(&path).ok().as_deref() != Some(want.as_str()) {
        assert!(
            Instant::now() < deadline,
            "no second write: {}",
            t.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn interval_zero_writes_only_at_exit_and_dash_l_works() {
    let (_dir, path) = state_path("state-l");
    let h = hash(7);
    std::fs::write(&path, format!("{}:5\n", hex_upper(&h))).unwrap();
    let mut t = Tracker::start_with_args(
        "state-l",
        "listen.tcp 127.0.0.1:0\ntracker.state_interval 0\n",
        &["-l", path.to_str().unwrap()],
    );
    let a = t.http_addr(false);
    assert_eq!(downloaded(a, &h), 5);
    complete(a, &h, 7001);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format!("{}:5\n", hex_upper(&h))
    );
    assert!(t.stop().success());
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format!("{}:6\n", hex_upper(&h))
    );
}

#[test]
fn corrupt_and_partial_files_are_reported_and_never_stop_the_start() {
    let (_dir, path) = state_path("state-corrupt");
    let (good, ot, cut) = (hash(1), hash(2), hash(3));
    std::fs::write(
        &path,
        format!(
            "{}:4\nthis is not a state file\n{}:29921661:9\n{}:12x\n{}:7",
            hex_upper(&good),
            hex_upper(&ot).to_lowercase(),
            hex_upper(&hash(9)),
            hex_upper(&cut)
        ),
    )
    .unwrap();
    let t = Tracker::start("state-corrupt", &config(&path, ""));
    let log = t.log_text();
    let name = path.display().to_string();
    for want in [
        format!(
            "state file: {name}:2: expected HEX:DOWNLOADED or HEX:BASE:DOWNLOADED: \"this is not \
             a state file\"; line skipped"
        ),
        format!("state file: {name}:4: downloaded count is not a number"),
        format!("state file: {name}:5: last line has no newline (file cut short?); line skipped"),
        "loaded: 2 torrents with downloads (3 bad lines".to_owned(),
    ] {
        assert!(log.contains(&want), "missing {want:?} in:\n{log}");
    }
    let a = t.http_addr(false);
    assert_eq!(downloaded(a, &good), 4);
    assert_eq!(
        downloaded(a, &ot),
        9,
        "opentracker's 3-field statedump line"
    );
    let r = get(a, &format!("/scrape?info_hash={}", pct(&cut)));
    assert_eq!(
        r.bencode()
            .get(b"files")
            .and_then(|f| f.get(&cut))
            .and_then(|d| d.get(b"downloaded"))
            .and_then(|d| d.as_int()),
        Some(0),
        "the truncated line was skipped"
    );
    drop(t);

    // Binary junk, and a directory where the file should be: the tracker still starts.
    std::fs::write(&path, (0..=255u8).cycle().take(20_000).collect::<Vec<u8>>()).unwrap();
    let t = Tracker::start("state-junk", &config(&path, ""));
    assert!(t.log_text().contains("bad lines"), "{}", t.log_text());
    drop(t);
    let dir_path = temp_dir("state-is-dir");
    let t = Tracker::start("state-dir", &config(&dir_path, ""));
    assert!(
        t.log_text()
            .contains("not a regular file; starting without downloaded counts"),
        "{}",
        t.log_text()
    );
}
