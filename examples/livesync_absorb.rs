//! Measures live sync (issue 12) on loopback with the real binary: the sync lag between two
//! nodes, and the records per second one node absorbs while it serves UDP announces.
//!
//! ```text
//! cargo build --release --bin opentracker-rs --example udp_load --example livesync_absorb
//! target/release/examples/livesync_absorb [--duration 5] [--tracker PATH] [--udp-load PATH]
//! ```
//!
//! 1. **Lag**: nodes A and B, unicast peers of each other on 127.0.0.1. An HTTP announce of a
//!    new peer to A, then B is scraped in a tight loop until the peer shows. Six rounds after
//!    pauses longer than `max_delay` (the first record after a pause is sent at once), then
//!    20 rounds while `udp_load` keeps A busy (packets fill with 52 records long before
//!    `max_delay`; A's `opentracker_livesync_lag_seconds` gives the sender's share). Between
//!    the two, a trickle of announces waits up to `max_delay` (15 s), as in opentracker.
//! 2. **Absorb**: node B alone; `udp_load` (connect/announce/scrape mix, 10,000 torrents) for
//!    `--duration` seconds without sync traffic, then again while this program sends B
//!    full 52-record sync packets (type 0, random peers of 100,000 torrents) as fast as it can
//!    from 127.0.0.1 (a node_ip). Prints the announces per second of both runs and the records
//!    applied per second (B's counters), and the records the kernel dropped (sent - applied).
//!
//! Figures only; nothing is asserted. On a 2-core machine the tracker, the load generator and
//! the sync sender share the cores, so the figures are a floor.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use opentracker_rs::wire::livesync::{Builder, Fill, Flags, PacketType, Record, Settings};

struct Proc {
    child: Child,
    http: SocketAddr,
    udp: Option<SocketAddr>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

fn start(tracker: &str, config: &str) -> Proc {
    let dir = std::env::temp_dir().join(format!("livesync-absorb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join(format!("{}.conf", fastrand::u32(..)));
    std::fs::write(&conf, config).unwrap();
    let mut cmd = Command::new(tracker);
    cmd.arg("-f").arg(&conf);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        cmd.arg("--allow-root");
    }
    let mut child = cmd
        .env("RUST_LOG", "warn,opentracker_rs::net=info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tracker binary (build it with --release)");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let (mut http, mut udp) = (None, None);
    let want_udp = config.contains("listen.udp");
    while http.is_none() || (want_udp && udp.is_none()) {
        let line = lines.next().expect("tracker log").unwrap();
        if let Some(a) = line.split("listening: http ").nth(1) {
            http = Some(a.trim().parse().unwrap());
        } else if let Some(a) = line.split("listening: udp ").nth(1) {
            udp = Some(a.trim().parse().unwrap());
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Proc {
        child,
        http: http.unwrap(),
        udp,
    }
}

fn get(addr: SocketAddr, target: &str) -> String {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

fn metric(addr: SocketAddr, sample: &str) -> f64 {
    get(addr, "/metrics")
        .lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

fn pct(h: &[u8; 20]) -> String {
    h.iter().map(|b| format!("%{b:02X}")).collect()
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn node_conf(own: u16, other: u16, extra: &str) -> String {
    format!(
        "listen.tcp 127.0.0.1:0\naccess.stats 127.0.0.1\nlivesync.cluster.listen 127.0.0.1:{own}\n\
         livesync.cluster.peer 127.0.0.1:{other}\nlivesync.cluster.node_ip 127.0.0.0/8\n\
         udp.rate_limit 0\ntracker.max_new_torrents_per_net 0\ntracker.max_peers_per_source 0\n{extra}"
    )
}

fn median_max(mut v: Vec<Duration>) -> String {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "median {:.2} ms, max {:.2} ms",
        ms(v[v.len() / 2]),
        ms(v[v.len() - 1])
    )
}

/// One round: a new peer announced to A, B scraped until it counts it.
fn lag_round(a: &Proc, b: &Proc, round: u32) -> Duration {
    let mut h = [0x42u8; 20];
    h[..4].copy_from_slice(&round.to_be_bytes());
    let t0 = Instant::now();
    get(
        a.http,
        &format!(
            "/announce?info_hash={}&peer_id=-LA0001-000000000000&port=6881&left=5",
            pct(&h)
        ),
    );
    let want = "10:incompletei1e";
    loop {
        let r = get(b.http, &format!("/scrape?info_hash={}", pct(&h)));
        if r.contains(want) {
            return t0.elapsed();
        }
        if t0.elapsed() > Duration::from_secs(30) {
            panic!("B never learnt the peer");
        }
    }
}

fn lag(tracker: &str, load: &str) {
    // After a pause longer than max_delay the first record is sent at once: max_delay 3 keeps
    // the pauses short (the rule is the same at 15).
    let (pa, pb) = (free_port(), free_port());
    let a = start(
        tracker,
        &node_conf(pa, pb, "livesync.cluster.max_delay 3\n"),
    );
    let b = start(
        tracker,
        &node_conf(pb, pa, "livesync.cluster.max_delay 3\n"),
    );
    let quiet: Vec<Duration> = (0..6)
        .map(|r| {
            std::thread::sleep(Duration::from_millis(3500));
            lag_round(&a, &b, r)
        })
        .collect();
    println!(
        "lag after a pause (announce to A until B's scrape shows it, HTTP round trips \
         included): {}",
        median_max(quiet)
    );
    drop((a, b));
    // Under load packets fill (52 records) long before max_delay (15 s, the default).
    let (pa, pb) = (free_port(), free_port());
    let a = start(
        tracker,
        &format!("listen.udp 127.0.0.1:0\n{}", node_conf(pa, pb, "")),
    );
    let b = start(tracker, &node_conf(pb, pa, ""));
    let udp = a.udp.unwrap();
    let load = load.to_owned();
    let busy = std::thread::spawn(move || udp_load(&load, udp, 12));
    std::thread::sleep(Duration::from_secs(1));
    let loaded: Vec<Duration> = (0..20)
        .map(|r| {
            std::thread::sleep(Duration::from_millis(200));
            lag_round(&a, &b, 1000 + r)
        })
        .collect();
    let rate = busy.join().unwrap();
    println!(
        "lag while A serves {rate:.0} UDP announces/s (max_delay 15): {}; A's \
         opentracker_livesync_lag_seconds max {} s",
        median_max(loaded),
        metric(a.http, "opentracker_livesync_lag_seconds{stat=\"max\"}")
    );
}

fn udp_load(path: &str, target: SocketAddr, secs: u64) -> f64 {
    let out = Command::new(path)
        .args([
            "--target",
            &target.to_string(),
            "--duration",
            &secs.to_string(),
        ])
        .args(["--torrents", "10000", "--peers", "100000"])
        .stderr(Stdio::null())
        .output()
        .expect("udp_load (build it with --release --example udp_load)");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("RESULT "))
        .expect("RESULT line");
    let field = |k: &str| {
        line.split(' ')
            .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    field("announce") / secs as f64
}

/// Sends full type-0 packets to `to` until `stop`, paced to `rate` records per second (0: as
/// fast as it can).
fn blast(to: SocketAddr, rate: u64, stop: Arc<AtomicBool>, sent: Arc<AtomicU64>) {
    let t0 = Instant::now();
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let settings = Settings::default();
    let mut b = Builder::new(*b"blst", PacketType::PeerSync, &settings).unwrap();
    let mut rng = fastrand::Rng::with_seed(7);
    let mut out = Vec::with_capacity(1500);
    while !stop.load(Ordering::Relaxed) {
        if rate > 0 {
            let due = sent.load(Ordering::Relaxed) as f64 / rate as f64;
            let ahead = due - t0.elapsed().as_secs_f64();
            if ahead > 0.0 {
                std::thread::sleep(Duration::from_secs_f64(ahead));
            }
        }
        b.clear();
        loop {
            let mut info_hash = [0u8; 20];
            info_hash[..4].copy_from_slice(&rng.u32(..100_000).to_be_bytes());
            let r = Record {
                info_hash,
                peer: SocketAddr::from((rng.u32(..).to_be_bytes(), rng.u16(1..))),
                flags: if rng.bool() {
                    Flags::SEEDING
                } else {
                    Flags::LEECHING
                },
            };
            if b.push(&r) == Ok(Fill::Full) {
                break;
            }
        }
        out.clear();
        b.emit(&mut out);
        if s.send_to(&out, to).is_ok() {
            sent.fetch_add(b.len() as u64, Ordering::Relaxed);
        }
    }
}

fn absorb(tracker: &str, load: &str, secs: u64) {
    let port = free_port();
    let b = start(
        tracker,
        &format!(
            "listen.udp 127.0.0.1:0\n{}tracker.max_peers 0\n",
            node_conf(port, 9, "")
        ),
    );
    let udp = b.udp.unwrap();
    let base = udp_load(load, udp, secs);
    println!("announces/s served without sync traffic: {base:.0}");
    let to: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let key = "opentracker_livesync_records_total{direction=\"received\"}";
    for rate in [25_000, 100_000, 400_000, 0] {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let before = metric(b.http, key);
        let t0 = Instant::now();
        let blaster = {
            let (stop, sent) = (stop.clone(), sent.clone());
            std::thread::spawn(move || blast(to, rate, stop, sent))
        };
        let with = udp_load(load, udp, secs);
        stop.store(true, Ordering::Relaxed);
        blaster.join().unwrap();
        let elapsed = t0.elapsed().as_secs_f64();
        std::thread::sleep(Duration::from_millis(300));
        let applied = metric(b.http, key) - before;
        let sent = sent.load(Ordering::Relaxed) as f64;
        println!(
            "sync offered {}: {with:.0} announces/s served and {:.0} records/s applied \
             ({:.0} records/s sent, {:.1}% dropped by the kernel before B read them)",
            if rate == 0 {
                "as fast as one thread sends".to_owned()
            } else {
                format!("{rate} records/s")
            },
            applied / elapsed,
            sent / elapsed,
            100.0 * (1.0 - applied / sent.max(1.0))
        );
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut secs = 5u64;
    let mut tracker = "target/release/opentracker-rs".to_owned();
    let mut load = "target/release/examples/udp_load".to_owned();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--duration" => secs = args.next().unwrap().parse().unwrap(),
            "--tracker" => tracker = args.next().unwrap(),
            "--udp-load" => load = args.next().unwrap(),
            _ => panic!("unknown argument {a}"),
        }
    }
    lag(&tracker, &load);
    absorb(&tracker, &load, secs);
}
