//! `tracker.workers 2` under a storm: many clients announcing and stopping over HTTP and UDP,
//! IPv4 and IPv6, at once, each request on its own connection or socket (so the kernel's
//! `SO_REUSEPORT` spreads them over both workers), while full scrapes are taken. Then every
//! swarm's counts must equal a model's (no peer lost or doubled across workers), every full
//! scrape taken during the storm must be well-formed bencode in info_hash order, the summed
//! counters must count every request once, and both workers must have served.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::udp::Client as UdpClient;
use common::{Tracker, announce, decode, get, hash};
use opentracker_rs::types::Event;
use opentracker_rs::wire::udp::{Response, parse_response};

const TORRENTS: u32 = 24;

/// Every client here sends from one loopback address: the per-source quotas and the
/// full-scrape interval are off, and every full scrape walks the store (no snapshot reused).
const QUOTAS_OFF: &str = "tracker.max_peers_per_source 0\ntracker.max_new_torrents_per_net 0\n\
                          udp.rate_limit 0\ntracker.fullscrape_interval 0\n\
                          http.fullscrape_max_age 0\n";
const PEERS_PER_CLIENT: u16 = 150;
const ROUNDS: u32 = 3;

fn torrent(i: u32) -> [u8; 20] {
    hash(7000 + i)
}

/// What one client thread leaves behind: per torrent, its (port, family v6?) peers still
/// there and whether each is a seeder; and the requests it sent.
#[derive(Default)]
struct Outcome {
    alive: HashMap<u32, Vec<(u16, bool, bool)>>,
    announces: u64,
}

/// Peer `j` of client `k`: its torrent, port and whether it seeds.
fn peer(k: u16, j: u16) -> (u32, u16, bool) {
    let t = (u32::from(j) * 7 + u32::from(k)) % TORRENTS;
    (t, 10_000 + k * 1000 + j, j % 3 == 0)
}

/// The event of peer `j` in `round`: started, then nothing, then every fourth peer stops.
fn event_of(round: u32, j: u16) -> Event {
    match round {
        0 => Event::Started,
        r if r == ROUNDS - 1 && j % 4 == 0 => Event::Stopped,
        _ => Event::None,
    }
}

/// A client over HTTP: a new connection per announce.
fn http_client(addr: SocketAddr, k: u16) -> Outcome {
    let mut out = Outcome::default();
    for round in 0..ROUNDS {
        for j in 0..PEERS_PER_CLIENT {
            let (t, port, seeder) = peer(k, j);
            let event = match event_of(round, j) {
                Event::Started => "&event=started",
                Event::Stopped => "&event=stopped",
                _ => "",
            };
            let left = if seeder { 0 } else { 100 };
            let r = get(addr, &announce(&torrent(t), port, left, event));
            assert_eq!(r.status, 200, "client {k} peer {j}");
            assert!(r.failure().is_none(), "{:?}", r.failure());
            out.announces += 1;
        }
    }
    for j in 0..PEERS_PER_CLIENT {
        let (t, port, seeder) = peer(k, j);
        if event_of(ROUNDS - 1, j) != Event::Stopped {
            out.alive
                .entry(t)
                .or_default()
                .push((port, addr.is_ipv6(), seeder));
        }
    }
    out
}

/// Sends `bytes` from a fresh socket (a new source port: maybe another worker) until a reply
/// comes (loopback rarely drops, but a full receive buffer may); announces are idempotent.
fn udp_exchange(tracker: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    for _ in 0..10 {
        let c = UdpClient::new(tracker);
        if let Some(reply) = c.send(bytes) {
            return reply;
        }
    }
    panic!("no UDP reply after 10 tries");
}

/// A client over UDP: one connect, then each announce from a fresh socket with that
/// connection_id (any worker must accept any worker's id).
fn udp_client(addr: SocketAddr, k: u16) -> Outcome {
    let mut out = Outcome::default();
    let id = UdpClient::new(addr).connect();
    let c = UdpClient::new(addr);
    for round in 0..ROUNDS {
        for j in 0..PEERS_PER_CLIENT {
            let (t, port, seeder) = peer(k, j);
            let left = if seeder { 0 } else { 100 };
            let bytes = c.announce_bytes(id, &torrent(t), port, left, event_of(round, j), 10);
            match parse_response(&udp_exchange(addr, &bytes)).unwrap() {
                Response::Announce(_) => {}
                other => panic!("client {k} peer {j}: {other:?}"),
            }
            out.announces += 1;
        }
    }
    for j in 0..PEERS_PER_CLIENT {
        let (t, port, seeder) = peer(k, j);
        if event_of(ROUNDS - 1, j) != Event::Stopped {
            out.alive
                .entry(t)
                .or_default()
                .push((port, addr.is_ipv6(), seeder));
        }
    }
    out
}

/// Checks one full scrape (HTTP/1.0: close-delimited, plain): bencode, `files` a dictionary
/// in info_hash order (the decoder refuses any other), each entry with the three counts.
/// Returns the number of torrents listed.
fn check_full_scrape(body: &[u8]) -> usize {
    let v = decode(body).unwrap_or_else(|e| panic!("full scrape is not bencode: {e:?}"));
    let files = v
        .get(b"files")
        .and_then(|f| f.as_dict())
        .expect("a files dictionary");
    for (h, e) in files {
        assert_eq!(h.len(), 20);
        for key in [&b"complete"[..], b"incomplete", b"downloaded"] {
            let n = e.get(key).and_then(|n| n.as_int());
            assert!(n.is_some_and(|n| n >= 0), "{key:?} of {h:?}");
        }
    }
    files.len()
}

/// A full scrape over HTTP/1.0 (plain, the body ends at the close): its status and body.
fn full_scrape(addr: SocketAddr) -> (u16, Vec<u8>) {
    let mut s = common::connect(addr);
    s.write_all(b"GET /scrape HTTP/1.0\r\n\r\n").unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let end = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&all[..end]).into_owned();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, all[end + 4..].to_vec())
}

fn metrics(t: &Tracker) -> String {
    let r = get(t.http_addr(false), "/metrics");
    assert_eq!(r.status, 200);
    String::from_utf8(r.body).unwrap()
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in {text}"))
}

#[test]
fn two_workers_lose_and_double_no_peer_under_a_storm() {
    let t = Tracker::start(
        "workers-storm",
        &format!(
            "listen.tcp 127.0.0.1:0\nlisten.tcp [::1]:0\nlisten.udp 127.0.0.1:0\n\
             listen.udp [::1]:0\naccess.stats 127.0.0.1\ntracker.workers 2\n{QUOTAS_OFF}"
        ),
    );
    // Logged right after the listeners (which the harness waited for).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !t.log_text().contains("2 workers serve") {
        assert!(Instant::now() < deadline, "{}", t.log_text());
        std::thread::sleep(Duration::from_millis(10));
    }
    let storm = Arc::new(AtomicBool::new(true));
    // Full scrapes during the storm.
    let scraper = {
        let storm = Arc::clone(&storm);
        let addr = t.http_addr(false);
        std::thread::spawn(move || {
            let mut taken = 0;
            while storm.load(Ordering::Acquire) || taken == 0 {
                let (status, body) = full_scrape(addr);
                assert_eq!(status, 200);
                assert!(check_full_scrape(&body) <= TORRENTS as usize);
                taken += 1;
            }
            taken
        })
    };
    let started = Instant::now();
    let mut clients = Vec::new();
    for k in 0..8u16 {
        let v6 = k % 2 == 1;
        let (http, udp) = (t.http_addr(v6), t.udp_addr(v6));
        clients.push(std::thread::spawn(move || {
            if k < 4 {
                http_client(http, k)
            } else {
                udp_client(udp, k)
            }
        }));
    }
    let outcomes: Vec<Outcome> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    storm.store(false, Ordering::Release);
    let scrapes = scraper.join().unwrap();
    assert!(scrapes >= 1);
    assert!(started.elapsed() < Duration::from_secs(60));

    // The model: per torrent, seeders and leechers over both families.
    let mut model: BTreeMap<[u8; 20], (u64, u64)> = BTreeMap::new();
    for o in &outcomes {
        for (t, peers) in &o.alive {
            let e = model.entry(torrent(*t)).or_default();
            for &(_, _, seeder) in peers {
                if seeder {
                    e.0 += 1;
                } else {
                    e.1 += 1;
                }
            }
        }
    }
    assert_eq!(model.len(), TORRENTS as usize);
    // Each torrent's counts over HTTP scrape (both families summed) and UDP scrape.
    let udp = UdpClient::new(t.udp_addr(false));
    let id = udp.connect();
    for (h, &(seeders, leechers)) in &model {
        let r = get(
            t.http_addr(true),
            &format!("/scrape?info_hash={}", common::pct(h)),
        );
        let v = r.bencode();
        let e = v.get(b"files").and_then(|f| f.get(h)).expect("scraped");
        assert_eq!(
            (
                e.get(b"complete").and_then(|n| n.as_int()),
                e.get(b"incomplete").and_then(|n| n.as_int())
            ),
            (Some(seeders as i64), Some(leechers as i64)),
            "torrent {h:?}"
        );
        let (s, _, l) = udp.scrape(id, &[*h])[0];
        assert_eq!((u64::from(s), u64::from(l)), (seeders, leechers));
    }
    // The full scrape after the storm lists every torrent.
    let (status, body) = full_scrape(t.http_addr(false));
    assert_eq!(status, 200);
    assert_eq!(check_full_scrape(&body), TORRENTS as usize);

    // Counters: every announce counted once, summed over the workers (each publishes at the
    // end of its loop turn: give the last turn a moment), and both workers served.
    let sent: u64 = outcomes.iter().map(|o| o.announces).sum();
    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        let text = metrics(&t);
        let counted: u64 = ["http", "udp"]
            .iter()
            .flat_map(|p| ["ipv4", "ipv6"].map(|f| (p, f)))
            .map(|(p, f)| {
                metric(
                    &text,
                    &format!(
                        "opentracker_requests_total{{protocol=\"{p}\",family=\"{f}\",kind=\"announce\"}}"
                    ),
                )
            })
            .sum();
        if counted == sent || Instant::now() > deadline {
            assert_eq!(counted, sent, "{text}");
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let peers: u64 = model.values().map(|(s, l)| s + l).sum();
    assert_eq!(
        metric(&text, "opentracker_torrents{family=\"ipv4\"}")
            + metric(&text, "opentracker_torrents{family=\"ipv6\"}"),
        2 * u64::from(TORRENTS),
        "every torrent has peers of both families"
    );
    let seeders: u64 = model.values().map(|(s, _)| s).sum();
    assert_eq!(
        metric(&text, "opentracker_seeders{family=\"ipv4\"}")
            + metric(&text, "opentracker_seeders{family=\"ipv6\"}"),
        seeders
    );
    assert_eq!(
        metric(&text, "opentracker_leechers{family=\"ipv4\"}")
            + metric(&text, "opentracker_leechers{family=\"ipv6\"}"),
        peers - seeders
    );
    for w in 0..2 {
        let n = metric(
            &text,
            &format!("opentracker_worker_requests_total{{worker=\"{w}\"}}"),
        );
        assert!(n > 0, "worker {w} served nothing:\n{text}");
    }
    drop(t);
}

/// A stop signal stops every worker and the state file is written once, with the counts of
/// announces served by either worker.
#[test]
fn sigterm_stops_every_worker_and_writes_the_state_once() {
    let dir = common::temp_dir("workers-state");
    let state = dir.join("state");
    let mut t = Tracker::start(
        "workers-sigterm",
        &format!(
            "listen.tcp 127.0.0.1:0\nlisten.udp 127.0.0.1:0\ntracker.workers 2\n\
             tracker.state_file {}\n{QUOTAS_OFF}",
            state.display()
        ),
    );
    // Completed downloads through many connections: both workers count some.
    for i in 0..40u16 {
        let h = torrent(u32::from(i % 4));
        let r = get(
            t.http_addr(false),
            &announce(&h, 30_000 + i, 0, "&event=completed"),
        );
        assert_eq!(r.status, 200);
    }
    let status = t.stop();
    assert!(status.success(), "{status:?}\n{}", t.log_text());
    let text = std::fs::read_to_string(&state).unwrap();
    let total: u64 = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(':').nth(1)?.trim().parse::<u64>().ok())
        .sum();
    assert_eq!(total, 40, "{text}");
    let log = t.log_text();
    assert_eq!(log.matches("signal 15 received").count(), 1, "{log}");
}

/// Requests answered by each of 2 workers, from `/metrics`.
fn per_worker(t: &Tracker) -> [u64; 2] {
    let text = metrics(t);
    [0, 1].map(|w| {
        metric(
            &text,
            &format!("opentracker_worker_requests_total{{worker=\"{w}\"}}"),
        )
    })
}

/// With `udp.steer_by_info_hash` (the default) the datagrams of ONE client socket are spread
/// by info_hash: announces and scrapes of torrents in odd store shards (64 shards: the top 6
/// bits of the info_hash) reach worker 1, even ones worker 0, and a connect goes by its
/// transaction_id's low byte (the test client's 0x1234: even, worker 0). Turned off, the
/// kernel's hash of the source address and port sends all of them to one worker.
#[test]
fn udp_requests_reach_the_worker_of_their_info_hash() {
    for steer in [true, false] {
        for v6 in [false, true] {
            let t = Tracker::start(
                "workers-steer",
                &format!(
                    "listen.tcp 127.0.0.1:0\nlisten.udp 127.0.0.1:0\nlisten.udp [::1]:0\n\
                     access.stats 127.0.0.1\ntracker.workers 2\nudp.steer_by_info_hash {}\n\
                     {QUOTAS_OFF}",
                    if steer { "on" } else { "off" }
                ),
            );
            let c = UdpClient::new(t.udp_addr(v6));
            let before = per_worker(&t);
            let id = c.connect();
            let (mut odd, mut even) = (0, 0);
            for i in 0..60u32 {
                let mut h = torrent(i);
                // Shard = h[0] >> 2: odd shards go to worker 1.
                h[0] = ((i as u8 % 64) << 2) | (h[0] & 3);
                if i % 64 % 2 == 1 {
                    odd += 1;
                } else {
                    even += 1;
                }
                if i % 5 == 0 {
                    assert_eq!(c.scrape(id, &[h]).len(), 1);
                } else {
                    c.announce(id, &h, 6881, 100, Event::Started, 10);
                }
            }
            let after = per_worker(&t);
            let served = [after[0] - before[0], after[1] - before[1]];
            if steer {
                assert_eq!(served, [1 + even, odd], "v6 {v6}");
            } else {
                assert!(
                    served == [61, 0] || served == [0, 61],
                    "v6 {v6}: {served:?}"
                );
            }
        }
    }
}

/// The scheduling policy (`sched(7)`: 0 `SCHED_OTHER`, 3 `SCHED_BATCH`) of the process's main
/// thread (worker 0) and of its `worker-N` threads, from `/proc/PID/task/TID/stat` (field 41).
fn worker_policies(t: &Tracker) -> Vec<(String, u32)> {
    let pid = t.child.id();
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let path = task.unwrap().path();
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        let (head, rest) = stat.rsplit_once(')').unwrap();
        let comm = head.split_once('(').unwrap().1.to_string();
        let tid: u32 = path.file_name().unwrap().to_str().unwrap().parse().unwrap();
        if tid != pid && !comm.starts_with("worker-") {
            continue;
        }
        // Fields from the third on; the policy is the 41st.
        let policy = rest
            .split_whitespace()
            .nth(41 - 3)
            .unwrap()
            .parse()
            .unwrap();
        out.push((if tid == pid { "main".into() } else { comm }, policy));
    }
    out.sort();
    out
}

/// `tracker.sched_batch` (on by default): with 2 workers both loops run under `SCHED_BATCH`;
/// turned off, or with one worker, under the default policy.
#[test]
fn workers_run_under_sched_batch_unless_turned_off() {
    for (workers, batch, want) in [
        (2, "", 3),
        (2, "tracker.sched_batch off\n", 0),
        (1, "tracker.sched_batch on\n", 0),
    ] {
        let t = Tracker::start(
            "workers-sched",
            &format!(
                "listen.tcp 127.0.0.1:0\nlisten.udp 127.0.0.1:0\ntracker.workers {workers}\n\
                 {batch}{QUOTAS_OFF}"
            ),
        );
        let expected: Vec<(String, u32)> = std::iter::once(("main".to_string(), want))
            .chain((1..workers).map(|i| (format!("worker-{i}"), want)))
            .collect();
        // A worker sets its policy as its thread starts: wait for it.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut seen = worker_policies(&t);
        while seen != expected && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            seen = worker_policies(&t);
        }
        assert_eq!(
            seen,
            expected,
            "workers {workers} {batch:?}\n{}",
            t.log_text()
        );
        // It serves under either policy: an announce over UDP, one over HTTP.
        let c = UdpClient::new(t.udp_addr(false));
        let id = c.connect();
        c.announce(id, &torrent(1), 6881, 100, Event::Started, 10);
        let r = get(t.http_addr(false), &announce(&torrent(2), 7000, 0, ""));
        assert_eq!(r.status, 200);
    }
}

/// CPUs in a `Cpus_allowed_list` value (`0-1`, `0,2-3`).
fn cpu_list(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => out.extend(a.parse::<usize>().unwrap()..=b.parse().unwrap()),
            None => out.push(part.parse().unwrap()),
        }
    }
    out
}

/// `Cpus_allowed_list` of a task's `/proc/.../status`.
fn allowed_cpus(status_path: &str) -> Vec<usize> {
    let status = std::fs::read_to_string(status_path).unwrap();
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap();
    cpu_list(line)
}

/// `tracker.cpu_affinity on` with 2 workers: worker i runs on the i-th CPU the process may use
/// (wrapping around); off (the default), every worker may use them all.
#[test]
fn cpu_affinity_pins_worker_i_to_the_ith_allowed_cpu() {
    // The tracker inherits this process's CPUs.
    let allowed = allowed_cpus("/proc/self/status");
    for on in [true, false] {
        let t = Tracker::start(
            "workers-affinity",
            &format!(
                "listen.tcp 127.0.0.1:0\nlisten.udp 127.0.0.1:0\ntracker.workers 2\n\
                 tracker.cpu_affinity {}\n{QUOTAS_OFF}",
                if on { "on" } else { "off" }
            ),
        );
        let pid = t.child.id();
        let expected: Vec<(String, Vec<usize>)> = if on {
            vec![
                ("main".into(), vec![allowed[0]]),
                ("worker-1".into(), vec![allowed[1 % allowed.len()]]),
            ]
        } else {
            vec![
                ("main".into(), allowed.clone()),
                ("worker-1".into(), allowed.clone()),
            ]
        };
        let seen = || -> Vec<(String, Vec<usize>)> {
            let mut out = Vec::new();
            for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
                let path = task.unwrap().path();
                let tid: u32 = path.file_name().unwrap().to_str().unwrap().parse().unwrap();
                let Ok(comm) = std::fs::read_to_string(path.join("comm")) else {
                    continue;
                };
                let name = if tid == pid {
                    "main".to_string()
                } else if comm.trim().starts_with("worker-") {
                    comm.trim().to_string()
                } else {
                    continue;
                };
                out.push((name, allowed_cpus(path.join("status").to_str().unwrap())));
            }
            out.sort();
            out
        };
        // A worker pins itself as its thread starts: wait for it.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut got = seen();
        while got != expected && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            got = seen();
        }
        assert_eq!(got, expected, "cpu_affinity {on}\n{}", t.log_text());
    }
}
