//! Announces keep being answered while the REST API creates 10,000 keys in a SQLite database:
//! the loop never waits for the database (writes are answered once the writer thread committed,
//! through the waker). The worst and 99th-percentile UDP announce latency during the burst are
//! printed (the figure; machines here are shared, so they are reported, not asserted
//! beyond "every announce was answered within the client's timeout").

mod common;

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::udp::Client;
use common::*;
use opentracker_rs::types::Event;

const TOKEN: &str = "0123456789abcdef0123";
const KEYS: usize = 10_000;
const API_CONNECTIONS: usize = 16;

/// Reads one HTTP response on a keep-alive connection: (status, body).
fn read_one(s: &mut std::net::TcpStream, buf: &mut Vec<u8>) -> (u16, Vec<u8>) {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.trim().parse().ok())
                .expect("content-length");
            if buf.len() >= end + 4 + len {
                let status = head[9..12].parse().unwrap();
                let body = buf[end + 4..end + 4 + len].to_vec();
                buf.drain(..end + 4 + len);
                return (status, body);
            }
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).expect("read");
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn announces_keep_their_latency_while_the_api_creates_10000_keys() {
    let db_dir = temp_dir("api-load-db");
    // Quotas off: the announcer sends up to 1,000 datagrams a second from 127.0.0.1 for as
    // long as the keys take, past `udp.rate_limit` (500/s after a burst of 10,000) on a slow
    // run (it was dropped after about 25 s once).
    let t = Tracker::start(
        "api-load",
        &format!(
            "listen.udp 127.0.0.1:0\napi.listen 127.0.0.1:0\napi.token load {TOKEN}\n\
             tracker.mode private\ndb.path {}\n{QUOTAS_OFF}",
            db_dir.join("sqlite3.db").display()
        ),
    );
    let udp = t.udp_addr(false);
    let api = t.api_addr(false);
    let done = Arc::new(AtomicBool::new(false));
    let key = {
        // One key for the announcer, made first.
        let mut s = connect(api);
        let body = "{\"key\":null,\"seconds_valid\":null}";
        write!(
            s,
            "POST /api/v1/keys?token={TOKEN} HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let (status, body) = read_one(&mut s, &mut Vec::new());
        assert_eq!(status, 200);
        String::from_utf8(body).unwrap()[8..40].to_owned()
    };
    let announcer = {
        let done = done.clone();
        std::thread::spawn(move || {
            let c = Client::new(udp);
            let id = c.connect();
            let url = format!("/announce/{key}");
            let mut latencies = Vec::new();
            let mut n = 0u32;
            while !done.load(Ordering::Relaxed) {
                let h = hash(n % 1000);
                let t0 = Instant::now();
                let reply = c.announce_with_url(id, &h, 6881, 0, Event::None, url.as_bytes());
                latencies.push(t0.elapsed());
                assert_eq!(reply[3], 1, "an announce reply, not an error: {reply:?}");
                n += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            latencies
        })
    };
    let started = Instant::now();
    let creators: Vec<_> = (0..API_CONNECTIONS)
        .map(|_| {
            std::thread::spawn(move || {
                let mut s = connect(api);
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                let mut buf = Vec::new();
                for _ in 0..KEYS / API_CONNECTIONS {
                    let body = "{\"key\":null,\"seconds_valid\":86400}";
                    write!(
                        s,
                        "POST /api/v1/keys HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n\
                         Content-Length: {}\r\n\r\n{body}",
                        body.len()
                    )
                    .unwrap();
                    let (status, body) = read_one(&mut s, &mut buf);
                    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
                }
            })
        })
        .collect();
    for c in creators {
        c.join().unwrap();
    }
    let took = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let mut latencies = announcer.join().unwrap();
    latencies.sort();
    let worst = *latencies.last().unwrap();
    let p99 = latencies[latencies.len() * 99 / 100];
    let median = latencies[latencies.len() / 2];
    eprintln!(
        "api_load: {KEYS} keys over {API_CONNECTIONS} connections in {:.2} s ({:.0} keys/s); \
         {} UDP announces meanwhile: median {:?}, p99 {:?}, worst {:?}",
        took.as_secs_f64(),
        KEYS as f64 / took.as_secs_f64(),
        latencies.len(),
        median,
        p99,
        worst
    );
    assert!(latencies.len() > 10, "the announcer ran");
    // Every key is there: the list pages through all of them (plus the announcer's).
    let mut total = 0;
    for page in 0.. {
        let r = get(
            api,
            &format!(
                "/api/v1/keys?token={TOKEN}&offset={}&limit=4000",
                page * 4000
            ),
        );
        assert_eq!(r.status, 200);
        let n = String::from_utf8_lossy(&r.body).matches("\"key\":").count();
        total += n;
        if n < 4000 {
            break;
        }
    }
    assert_eq!(total, KEYS / API_CONNECTIONS * API_CONNECTIONS + 1);
    drop(t);
    let _ = std::fs::remove_dir_all(&db_dir);
}
