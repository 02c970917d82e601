//! Measures what the access list and the state file cost at a million torrents:
//! parsing a list of 1M info_hashes (the reload thread's work), the loop's list swap and purge
//! slices, a state-file snapshot in slices, the writer's time, the load at start, and one
//! `allowed()` lookup. Prints figures; asserts nothing about time.
//!
//! Run: `cargo run --release --example access_state_cost [TORRENTS]` (default 1000000).

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use opentracker_rs::access::{self, Access, AccessList, Mode};
use opentracker_rs::net::background::{PURGE_BUCKETS_PER_TURN, SNAPSHOT_TORRENTS_PER_TURN};
use opentracker_rs::service::{Announce, Policy, Proto, Tracker};
use opentracker_rs::state::{self, snapshot::Snapshot};
use opentracker_rs::types::{Event, InfoHash};

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn us(d: Duration) -> String {
    format!("{} us", d.as_micros())
}

/// CPU time of this thread (excludes time the scheduler gave to other processes, which on a busy
/// machine dominates the wall-clock maximum of short slices).
fn cpu_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec to the pointer given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// "p50 X us, p99 Y us, max Z us" of slice times.
fn spread(mut v: Vec<Duration>) -> String {
    v.sort();
    let at = |q: f64| v[((v.len() - 1) as f64 * q) as usize].as_micros();
    format!(
        "p50 {} us, p99 {} us, max {} us",
        at(0.5),
        at(0.99),
        at(1.0)
    )
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = std::env::temp_dir().join(format!("otrs-cost-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = fastrand::Rng::with_seed(1);
    let hashes: Vec<InfoHash> = (0..n)
        .map(|_| std::array::from_fn(|_| rng.u8(..)))
        .collect();
    println!("torrents: {n}");

    // 1. Parse a whitelist of n hashes (what the reload thread does).
    let list_path = dir.join("whitelist.txt");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&list_path).unwrap());
        for h in &hashes {
            for b in h {
                write!(f, "{b:02x}").unwrap();
            }
            writeln!(f).unwrap();
        }
    }
    let size = std::fs::metadata(&list_path).unwrap().len();
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let loaded = access::load(&list_path).unwrap();
        best = best.min(t.elapsed());
        assert_eq!(loaded.list.len(), n);
    }
    println!(
        "parse whitelist ({} MB, {n} lines): {} (best of 3)",
        size / 1_000_000,
        ms(best)
    );

    // 2. A tracker with n torrents of one IPv4 peer each, all whitelisted.
    let mut tracker = Tracker::new(Policy::default());
    tracker.set_access(Some(Access::new(
        Mode::Whitelist,
        AccessList::from_hashes(hashes.clone()),
    )));
    let mut scratch = Vec::new();
    for (i, h) in hashes.iter().enumerate() {
        let a = Announce {
            info_hash: *h,
            port: 6881,
            left: Some(0),
            event: Event::Completed,
            numwant: Some(0),
        };
        let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i as u32));
        scratch.clear();
        let _ = tracker.announce(&a, ip, Proto::Udp, 0, &mut scratch);
    }
    assert_eq!(tracker.v4.torrents(), n as u64);

    // 3. allowed() on the hot path.
    let t = Instant::now();
    let mut hits = 0usize;
    for h in hashes.iter().take(1_000_000) {
        hits += usize::from(tracker.allowed(h));
    }
    let probes = hits.max(1);
    println!(
        "allowed() with {n} listed: {:.0} ns per lookup (random order)",
        t.elapsed().as_nanos() as f64 / probes as f64
    );

    // 4. Snapshot in slices, then the writer's work, then loading it back.
    let mut snap = Snapshot::new();
    let (mut times, mut cpu, t) = (Vec::new(), Vec::new(), Instant::now());
    loop {
        let (s, c) = (Instant::now(), cpu_now());
        let done = snap.step(&tracker.v4, &tracker.v6, SNAPSHOT_TORRENTS_PER_TURN);
        times.push(s.elapsed());
        cpu.push(cpu_now() - c);
        if done {
            break;
        }
    }
    let total = t.elapsed();
    let m = Instant::now();
    let entries = snap.finish();
    println!(
        "state snapshot ({SNAPSHOT_TORRENTS_PER_TURN} torrents/slice): {} slices (wall {}; cpu {}), \
         total {}; merge (writer thread) {}",
        times.len(),
        spread(times),
        spread(cpu),
        ms(total),
        ms(m.elapsed())
    );
    let state_path = dir.join("state");
    let t = Instant::now();
    state::save(&state_path, &entries).unwrap();
    println!(
        "state write (writer thread; {} MB, fsync + rename): {}",
        std::fs::metadata(&state_path).unwrap().len() / 1_000_000,
        ms(t.elapsed())
    );
    let t = Instant::now();
    let full = Snapshot::full(&tracker.v4, &tracker.v6).finish();
    println!("full snapshot at exit (one go): {}", ms(t.elapsed()));
    assert_eq!(full.len(), n);
    let t = Instant::now();
    let loaded = state::load(&state_path).unwrap();
    let parse = t.elapsed();
    let fresh = Tracker::new(Policy::default());
    let t = Instant::now();
    for (h, d) in &loaded.entries {
        fresh.v4.set_downloaded(h, *d, 0);
    }
    println!(
        "state load at start: parse {}, store {}",
        ms(parse),
        ms(t.elapsed())
    );
    assert_eq!(fresh.v4.torrents(), n as u64);
    drop(fresh);

    // 5. Reload to a list of half the hashes: swap, then purge in slices.
    let half = AccessList::from_hashes(hashes[..n / 2].to_vec());
    let t = Instant::now();
    tracker.replace_access_list(half);
    let swap = t.elapsed();
    let (mut times, mut cpu, mut dropped, t) = (Vec::new(), Vec::new(), 0, Instant::now());
    loop {
        let (s, c) = (Instant::now(), cpu_now());
        let step = tracker.purge_step(PURGE_BUCKETS_PER_TURN);
        times.push(s.elapsed());
        cpu.push(cpu_now() - c);
        dropped += step.dropped;
        if step.done {
            break;
        }
    }
    println!(
        "reload: swap {}; purge ({PURGE_BUCKETS_PER_TURN} buckets/slice) {} slices (wall {}; cpu \
         {}), total {}, {dropped} torrents dropped",
        us(swap),
        times.len(),
        spread(times),
        spread(cpu),
        ms(t.elapsed())
    );
    // For comparison: one Store::retain over everything that is left.
    let list = AccessList::from_hashes(hashes[..n / 4].to_vec());
    let t = Instant::now();
    tracker.v4.retain(|h| list.contains(h));
    println!(
        "for comparison, one unsliced Store::retain over {} torrents: {}",
        n / 2,
        ms(t.elapsed())
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
