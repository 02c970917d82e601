//! Issue 13, "partial heads" and "out of file descriptors", against the real binary over
//! loopback: the header-line cap (`http.max_header_lines`, 431), a head sent a byte at a time,
//! and a tracker started with a low open-files limit (set by the test, soft = hard = 64) that
//! lowers its connection cap, says so once, refuses newcomers cleanly when descriptors run out,
//! keeps serving UDP and the connections it holds, and logs one line per interval with a count.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use common::hostile::*;
use common::*;

/// A scrape target for one unknown info_hash: its answer depends on nothing else.
fn scrape_target() -> String {
    format!("/scrape?info_hash={}", pct(&hash(7)))
}

/// A head with `lines` header lines (`Host` and `Connection` included).
fn head_with_lines(lines: usize) -> Vec<u8> {
    let mut head = format!("GET {} HTTP/1.1\r\nHost: t\r\n", scrape_target()).into_bytes();
    for i in 0..lines - 2 {
        head.extend_from_slice(format!("X-Filler-{i}: value\r\n").as_bytes());
    }
    head.extend_from_slice(b"Connection: close\r\n\r\n");
    head
}

/// Everything the server sends until it closes (bounded).
fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// True if the server closes `s` within `limit` (end of stream or reset).
fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut buf = [0u8; 512];
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
fn a_head_over_the_line_cap_gets_431() {
    let mut t = Tracker::start("heads-431", &config_loopback("http.max_header_lines 8\n"));
    let a = t.http_addr(false);
    // 8 lines: served.
    let mut s = connect(a);
    s.write_all(&head_with_lines(8)).unwrap();
    let ok = read_to_close(&mut s);
    assert!(ok.starts_with(b"HTTP/1.1 200 OK\r\n"), "{ok:?}");
    // 9 lines: 431, exact bytes, then close.
    let mut s = connect(a);
    s.write_all(&head_with_lines(9)).unwrap();
    let refused = read_to_close(&mut s);
    assert_eq!(
        String::from_utf8_lossy(&refused),
        "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain\r\n\
         Content-Length: 36\r\nConnection: close\r\n\r\n431 Request Header Fields Too Large\n"
    );
    // The same head in pieces (a line at a time): refused as soon as line 9 is complete,
    // before the blank line.
    let mut s = connect(a);
    s.set_nodelay(true).unwrap();
    let head = head_with_lines(9);
    let text = String::from_utf8_lossy(&head[..head.len() - 2]).into_owned();
    for line in text.split_inclusive('\n') {
        s.write_all(line.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let refused = read_to_close(&mut s);
    assert!(
        refused.starts_with(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{refused:?}"
    );
    let c = stop_and_count(&mut t);
    assert_eq!(count(&c, "http.status.431"), 2, "{c:?}");
    assert_eq!(count(&c, "http.ipv4.scrape"), 1, "{c:?}");
}

#[test]
fn a_head_sent_a_byte_at_a_time_gets_the_answer_of_one_piece() {
    let mut t = Tracker::start("heads-bytes", &config_loopback(""));
    let a = t.http_addr(false);
    let head = head_with_lines(12);
    let mut s = connect(a);
    s.write_all(&head).unwrap();
    let whole = read_to_close(&mut s);
    assert!(whole.starts_with(b"HTTP/1.1 200 OK\r\n"), "{whole:?}");
    let mut s = connect(a);
    s.set_nodelay(true).unwrap();
    for b in &head {
        s.write_all(&[*b]).unwrap();
        std::thread::sleep(Duration::from_micros(300));
    }
    assert_eq!(read_to_close(&mut s), whole);
    let c = stop_and_count(&mut t);
    assert_eq!(count(&c, "http.ipv4.scrape"), 2, "{c:?}");
    assert_eq!(count(&c, "tcp.closed.header_timeout"), 0, "{c:?}");
}

/// The count in an "out of file descriptors" log line (`...: N new connection(s) refused`).
fn refused_in(line: &str) -> u64 {
    let before = line
        .split(" new connection(s) refused")
        .next()
        .unwrap_or_default();
    before
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line}"))
}

/// The log lines of newcomers refused for want of a descriptor (those left in the backlog for
/// want of a spare are logged apart).
fn no_fd_lines(t: &Tracker) -> Vec<String> {
    t.log_text()
        .lines()
        .filter(|l| l.contains("out of file descriptors") && l.contains("refused since the last"))
        .map(str::to_owned)
        .collect()
}

/// Descriptors of process `pid` numbered below `limit`: those that count against an
/// open-files limit of `limit` for a new one (the lowest free number is taken; a descriptor
/// inherited from the test harness above the limit, such as cargo's jobserver pipe, does not
/// make room).
fn fds_below(pid: u32, limit: u64) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
                .filter(|&fd| fd < limit)
                .count()
        })
        .unwrap_or(0)
}

/// Waits (bounded) until the tracker holds `n` descriptors under `LIMIT`.
fn wait_for_fds(pid: u32, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while fds_below(pid, LIMIT) != n {
        assert!(
            Instant::now() < deadline,
            "{} descriptors, not {n}",
            fds_below(pid, LIMIT)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The open-files limit the tracker is started with (soft and hard).
const LIMIT: u64 = 64;

#[test]
fn out_of_file_descriptors_newcomers_are_refused_cleanly() {
    let config = "listen.tcp 127.0.0.1:0\nlisten.udp 127.0.0.1:0\napi.listen 127.0.0.1:0\n\
                  access.stats 127.0.0.1\nhttp.idle_timeout 120\nhttp.header_timeout 120\n";
    let mut t = Tracker::start_with_command("heads-fds", config, allow_root_arg(), |c| {
        // SAFETY: only async-signal-safe calls (setrlimit) between fork and exec.
        unsafe {
            c.pre_exec(|| {
                let r = libc::rlimit {
                    rlim_cur: LIMIT,
                    rlim_max: LIMIT,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &r) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    let pid = t.child.id();
    let http = t.http_addr(false);
    let api = t.api[0];
    // Three listening sockets and a reserve of 32: 64 - 35 = 29 connections.
    let cap = 29;
    let lowered: Vec<String> = t
        .log_text()
        .lines()
        .filter(|l| l.contains("http.max_connections lowered"))
        .map(str::to_owned)
        .collect();
    assert_eq!(lowered.len(), 1, "{}", t.log_text());
    assert!(
        lowered[0].contains("open-files limit (RLIMIT_NOFILE) is 64 (hard limit 64)")
            && lowered[0].contains("lowered from 10000 to 29 (by 9971)"),
        "{}",
        lowered[0]
    );
    let metrics = get(http, "/metrics");
    let body = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(
        body.contains("\nopentracker_http_max_connections 29\n")
            && body.contains("\nopentracker_http_max_connections_lowered 9971\n"),
        "{body}"
    );

    // The cap holds: 29 connections stay open, the 30th is closed at once (over the limit).
    // (The /metrics connection is closed by the server just after its answer was read.)
    std::thread::sleep(Duration::from_millis(300));
    let base = fds_below(pid, LIMIT);
    let mut held: Vec<TcpStream> = (0..cap).map(|_| connect(http)).collect();
    wait_for_fds(pid, base + cap);
    let mut over = connect(http);
    assert!(closed_within(&mut over, Duration::from_secs(2)));

    // API connections take the descriptors that are left.
    let free = LIMIT as usize - fds_below(pid, LIMIT);
    assert!(free > 0 && free < cap, "{free} descriptors free");
    let api_held: Vec<TcpStream> = (0..free).map(|_| connect(api)).collect();
    wait_for_fds(pid, LIMIT as usize);

    // No descriptor left: newcomers are accepted and closed at once, not left in the backlog.
    let newcomers: u64 = 20;
    let started = Instant::now();
    for i in 0..newcomers {
        let mut s = connect(http);
        assert!(
            closed_within(&mut s, Duration::from_secs(2)),
            "newcomer {i} left hanging"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    // One log line for the burst, with its count, not one per attempt (the log is read by a
    // thread of ours: give it a moment).
    // Each worker (`tracker.workers`) logs for its own accepts: at most one line per worker
    // per interval.
    let w = workers();
    std::thread::sleep(Duration::from_millis(200));
    let lines = no_fd_lines(&t);
    assert!(
        (1..=w).contains(&lines.len()),
        "{lines:#?} {}",
        t.log_text()
    );
    for line in &lines {
        assert_eq!(refused_in(line), 1, "{line}");
        assert!(line.contains("accepted and closed at once"), "{line}");
    }

    // UDP and the connections held keep working.
    let udp = UdpClient::new(t.udp_addr(false));
    udp.connect();
    let s = &mut held[0];
    write!(s, "GET {} HTTP/1.1\r\nHost: t\r\n\r\n", scrape_target()).unwrap();
    let r = read_response(s).expect("an answer on a held connection");
    assert_eq!(r.status, 200);

    // The rest of the burst is logged once the interval passed (the idle sweep), in one line.
    // With one worker every newcomer meets EMFILE. With several, the workers share one
    // descriptor table: a newcomer can reach a worker while another has let its spare go for a
    // moment, so its `accept` succeeds and it is refused over the connection cap instead
    // (accepted and closed at once all the same, counted as `tcp.refused_over_limit`, which is
    // not logged). The lines then add up to `tcp.refused_no_fd`, checked after the stop.
    let total = |lines: &[String]| lines.iter().map(|l| refused_in(l)).sum::<u64>();
    if w == 1 {
        let deadline = Instant::now() + Duration::from_secs(15);
        while total(&no_fd_lines(&t)) < newcomers {
            assert!(Instant::now() < deadline, "{}", t.log_text());
            std::thread::sleep(Duration::from_millis(100));
        }
        let lines = no_fd_lines(&t);
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert_eq!(total(&lines), newcomers, "{lines:#?}");
        assert_eq!(refused_in(&lines[1]), newcomers - 1, "{}", lines[1]);
    } else {
        // Every worker's pending count is logged by its sweep within the interval (10 s).
        let flushed = started + Duration::from_secs(13);
        std::thread::sleep(flushed.saturating_duration_since(Instant::now()));
    }

    // Descriptors back: a new connection is served again.
    drop(held.drain(..5));
    wait_for_fds(pid, LIMIT as usize - 5);
    let r = get(http, &scrape_target());
    assert_eq!(r.status, 200);
    drop(api_held);

    let c = stop_and_count(&mut t);
    let no_fd = count(&c, "tcp.refused_no_fd");
    let over_limit = count(&c, "tcp.refused_over_limit");
    if w == 1 {
        assert_eq!(no_fd, newcomers, "{c:?}");
        assert_eq!(over_limit, 1, "{c:?}");
    } else {
        // The 30th connection above, then every newcomer by one way or the other.
        assert!(no_fd >= 1, "{c:?}");
        assert_eq!(no_fd + over_limit, newcomers + 1, "{c:?}");
        let lines = no_fd_lines(&t);
        assert!(lines.len() <= 2 * w, "{lines:#?}");
        assert_eq!(total(&lines), no_fd, "{lines:#?} {c:?}");
    }
    assert_eq!(count(&c, "http.max_connections"), 29, "{c:?}");
    assert_eq!(count(&c, "http.max_connections_lowered_by"), 9971, "{c:?}");
}
