//! `make bench-adversarial`: the store's announce cost under attacker-shaped workloads, next to
//! a random workload on the same store (issue #13, "sorted vectors under chosen keys").
//!
//! Two stores, filled in-process through the public [`Store`] API (no sockets):
//!
//! - IPv4, `--torrents` (5,000,000) torrents: `--torrents - --group` random info_hashes with
//!   one peer each, and a GROUP of `--group` (300,000) info_hashes sharing their first 4 bytes
//!   (`42 42 42 42`), two peers each, announced in ascending order.
//!   - `random`: a new peer `started` (numwant 50) in a random torrent, then `stopped`.
//!   - `group create`: the group's own fill (300,000 torrents created in one bucket).
//!   - `lowest loop`: the only peer of the lowest group info_hash `stopped` then `started`,
//!     in a loop: each stop drops the torrent (`downloaded` is 0) and each start creates it
//!     again at the front of the group.
//!   - `move loop`: a third peer `started`/`stopped` alternately on the two highest group
//!     torrents: with one slab per store, every start frees a slot whose refill moves the other
//!     one's block, and the owner of a moved block is looked up by its 4-byte prefix.
//! - IPv6, one torrent with `--swarm` (1,000,000) peers from one /64 (`2001:db8:1:2::/64`,
//!   random interface ids, a third of them leechers), announced in ascending address order.
//!   - `random`: a new peer at a random address of the /64 `started` (numwant 50), then
//!     `stopped`.
//!   - `lowest loop`: a peer below every other one (`2001:db8:1:2::`) `started` then
//!     `stopped`, in a loop.
//!   - `seeder asks`: after almost every leecher became a seeder (34 leechers are left among a
//!     million), a seeder re-announces (numwant 50): the selection looks for leechers.
//!
//! # How a worst case is told from the machine's noise
//!
//! Each announce is timed alone (wall clock). On a shared machine, and in a VM whose vCPU the
//! host deschedules, single samples of any operation reach hundreds of microseconds now and
//! then, which says nothing about the store. So the whole measurement runs `--runs` (3) times,
//! in child processes doing exactly the same operations (same seeds; the later runs do as many
//! operations per workload as the first did in `--secs` seconds), and the cost of an operation
//! is the LEAST of its timings: an interruption rarely hits the same operation in every run,
//! while what the store does (a memmove, a chunk split, a page fault on fresh memory) costs
//! the same each time. A sample during which the thread was switched out (`getrusage`'s
//! involuntary context switches) counts as missing; an operation missing in every run is
//! dropped.
//!
//! Printed per workload: operations, median, p99, p99.9, max of the per-operation minimum
//! (microseconds), and the max of the first run alone; then per store the worst repeatable
//! shaped announce (the loops) over the random workload's median (target: at most 10x), and
//! the same including the shaped fill, whose operations each happen once (a crowded bucket's
//! chunk list doubling, say). `--top K` lists the K slowest operations of each workload.
//!
//! Run: `cargo run --release --example bench_adversarial -- [--torrents N] [--group N]
//! [--swarm N] [--secs S] [--runs N] [--top K] [--only v4|v6]`.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use opentracker_rs::swarm::store::{AnnounceInput, Store, StoreConfig};
use opentracker_rs::types::{Event, InfoHash};

/// `now` for every announce: one tick, so no cleaning runs during a workload.
const NOW: u32 = 100;

/// A sample the scheduler interrupted.
const MISSING: u64 = u64::MAX;

#[derive(Clone)]
struct Args {
    torrents: usize,
    group: usize,
    swarm: usize,
    secs: f64,
    only: Option<String>,
    /// Identical runs per store (the minimum per operation is kept).
    runs: usize,
    /// Print the this many slowest operations of each workload (index: microseconds).
    top: usize,
    /// Child mode: write the samples to this file.
    replica: Option<String>,
    /// Child mode: iterations per workload (instead of `secs`).
    counts: Option<Vec<usize>>,
}

fn args() -> Args {
    let mut a = Args {
        torrents: 5_000_000,
        group: 300_000,
        swarm: 1_000_000,
        secs: 2.0,
        only: None,
        runs: 3,
        top: 0,
        replica: None,
        counts: None,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        let val = v.get(i + 1).cloned().unwrap_or_default();
        match v[i].as_str() {
            "--torrents" => a.torrents = val.parse().expect("--torrents N"),
            "--group" => a.group = val.parse().expect("--group N"),
            "--swarm" => a.swarm = val.parse().expect("--swarm N"),
            "--secs" => a.secs = val.parse().expect("--secs S"),
            "--only" => a.only = Some(val),
            "--top" => a.top = val.parse().expect("--top K"),
            "--runs" => a.runs = val.parse::<usize>().expect("--runs N").max(1),
            "--replica" => a.replica = Some(val),
            "--counts" => {
                a.counts = Some(
                    val.split(',')
                        .map(|c| c.parse().expect("--counts"))
                        .collect(),
                )
            }
            other => panic!("unknown option {other} (see the source's docs)"),
        }
        i += 2;
    }
    assert!(a.group <= a.torrents, "--group must not exceed --torrents");
    a
}

/// Involuntary context switches of this thread so far.
fn switches() -> i64 {
    // SAFETY: an all-zero rusage is a valid value; getrusage writes one rusage to the pointer.
    unsafe {
        let mut r: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_THREAD, &mut r);
        r.ru_nivcsw
    }
}

/// What a workload is, for the summary.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// The baseline.
    Random,
    /// A shaped operation an attacker can repeat forever.
    Loop,
    /// A shaped fill: each operation happens once (growth of the crowded structures).
    Fill,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Random => "random",
            Kind::Loop => "loop",
            Kind::Fill => "fill",
        }
    }

    fn parse(s: &str) -> Kind {
        match s {
            "loop" => Kind::Loop,
            "fill" => Kind::Fill,
            _ => Kind::Random,
        }
    }
}

/// The per-operation times of one workload in one run, and how many iterations it ran.
struct Workload {
    name: &'static str,
    kind: Kind,
    ns: Vec<u64>,
    iterations: usize,
}

impl Workload {
    fn new(name: &'static str, kind: Kind) -> Self {
        Workload {
            name,
            kind,
            // Room for every sample up front: growing this vector while timing would copy
            // megabytes between two operations and slow the next one down.
            ns: Vec::with_capacity(1 << 23),
            iterations: 0,
        }
    }

    /// Times `f` once ([`MISSING`] when the thread was switched out meanwhile).
    fn time<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let s0 = switches();
        let t0 = Instant::now();
        let r = std::hint::black_box(f());
        let d = t0.elapsed();
        self.ns.push(if switches() == s0 {
            d.as_nanos() as u64
        } else {
            MISSING
        });
        r
    }
}

/// Iterations of a loop or of the random workload run before the timed ones (their first
/// allocations and cold misses are not what an attacker can repeat).
const WARM: usize = 64;

/// Runs `step(i)` `warm` times untimed, then for the given number of iterations, or until
/// `secs` are spent.
fn run(
    secs: f64,
    count: Option<usize>,
    warm: usize,
    w: &mut Workload,
    mut step: impl FnMut(usize, &mut Workload),
) {
    for i in 0..warm {
        step(i, w);
    }
    w.ns.clear();
    let end = Instant::now() + Duration::from_secs_f64(secs.min(1e6));
    let mut i = 0;
    loop {
        match count {
            Some(n) if i >= n => break,
            None if Instant::now() >= end => break,
            _ => {}
        }
        step(warm + i, w);
        i += 1;
    }
    w.iterations = i;
}

/// The caller's side of an announce: the random source and the output buffer.
struct Client {
    rng: fastrand::Rng,
    out: Vec<u8>,
}

impl Client {
    fn new(seed: u64) -> Self {
        Client {
            rng: fastrand::Rng::with_seed(seed),
            out: Vec::with_capacity(50 * 18),
        }
    }

    fn announce<const N: usize>(
        &mut self,
        s: &mut Store<N>,
        h: &InfoHash,
        peer: &[u8; N],
        seeder: bool,
        event: Event,
        numwant: usize,
    ) {
        self.out.clear();
        let req = AnnounceInput {
            info_hash: h,
            peer,
            seeder,
            event,
            numwant,
        };
        s.announce(&req, NOW, &mut self.rng, &mut self.out);
    }
}

fn group_hash(i: usize) -> InfoHash {
    let mut h = [0x42u8; 20];
    h[4..12].copy_from_slice(&(i as u64).to_be_bytes());
    h[12..].fill(0);
    h
}

fn v4(x: u32, port: u16) -> [u8; 6] {
    let b = x.to_be_bytes();
    let p = port.to_be_bytes();
    [b[0], b[1], b[2], b[3], p[0], p[1]]
}

/// The IPv4 store's workloads (one run).
fn ipv4_store(a: &Args) -> Vec<Workload> {
    let count = |i: usize| a.counts.as_ref().map(|c| c[i]);
    let mut c = Client::new(1);
    let mut rng = fastrand::Rng::with_seed(11);
    let mut s = Store::<6>::new(StoreConfig::default());
    let randoms = a.torrents - a.group;
    println!(
        "IPv4 store: {randoms} random torrents (1 peer each) + a group of {} sharing 4 bytes (2 peers each)",
        a.group
    );
    let t0 = Instant::now();
    let mut hashes: Vec<InfoHash> = Vec::with_capacity(randoms);
    for i in 0..randoms {
        let mut h = [0u8; 20];
        rng.fill(&mut h);
        c.announce(
            &mut s,
            &h,
            &v4(i as u32, 6881),
            i % 3 == 0,
            Event::Started,
            0,
        );
        hashes.push(h);
    }
    println!(
        "  filled the random torrents in {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    let mut group = Workload::new("group create (2 peers each)", Kind::Fill);
    let t0 = Instant::now();
    let n = a.group;
    run(f64::MAX, Some(n), 0, &mut group, |i, w| {
        let h = group_hash(i + 1);
        for p in 0..2u16 {
            let peer = v4(0x0a00_0000 + i as u32, 1000 + p);
            w.time(|| c.announce(&mut s, &h, &peer, false, Event::Started, 0));
        }
    });
    println!(
        "  filled the group in {:.1} s; store: {} torrents, {} peers",
        t0.elapsed().as_secs_f64(),
        s.torrents(),
        s.peers()
    );

    // Random workload: a new peer started in a random torrent, then stopped.
    let mut random = Workload::new("random (started + stopped)", Kind::Random);
    run(a.secs, count(1), WARM, &mut random, |i, w| {
        let h = hashes[rng.usize(..hashes.len())];
        let p = v4(0xc000_0000 | i as u32, 7000);
        w.time(|| c.announce(&mut s, &h, &p, false, Event::Started, 50));
        w.time(|| c.announce(&mut s, &h, &p, false, Event::Stopped, 0));
    });

    // The lowest group torrent: its only peer stops (the torrent goes) and starts again.
    let low = group_hash(0);
    let lp = v4(0x0b00_0000, 1);
    c.announce(&mut s, &low, &lp, false, Event::Started, 0);
    let mut lowest = Workload::new("lowest loop (stopped + started)", Kind::Loop);
    run(a.secs, count(2), WARM, &mut lowest, |_, w| {
        w.time(|| c.announce(&mut s, &low, &lp, false, Event::Stopped, 0));
        w.time(|| c.announce(&mut s, &low, &lp, false, Event::Started, 50));
    });

    // A third peer on the two highest group torrents, alternately.
    let highs = [
        group_hash(a.group),
        group_hash(a.group.saturating_sub(1).max(1)),
    ];
    let tp = v4(0x0c00_0000, 3);
    let mut moves = Workload::new("move loop (started + stopped)", Kind::Loop);
    run(a.secs, count(3), WARM, &mut moves, |i, w| {
        let h = highs[i % 2];
        w.time(|| c.announce(&mut s, &h, &tp, false, Event::Started, 50));
        w.time(|| c.announce(&mut s, &h, &tp, false, Event::Stopped, 0));
    });
    vec![group, random, lowest, moves]
}

fn v6(iid: u64, port: u16) -> [u8; 18] {
    let mut a = [0u8; 18];
    a[..8].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2]);
    a[8..16].copy_from_slice(&iid.to_be_bytes());
    a[16..].copy_from_slice(&port.to_be_bytes());
    a
}

/// The IPv6 swarm's workloads (one run).
fn ipv6_swarm(a: &Args) -> Vec<Workload> {
    let count = |i: usize| a.counts.as_ref().map(|c| c[i]);
    let mut c = Client::new(2);
    let mut rng = fastrand::Rng::with_seed(12);
    let mut s = Store::<18>::new(StoreConfig::default());
    let h = [0x66u8; 20];
    println!(
        "IPv6 swarm: one torrent, {} peers from 2001:db8:1:2::/64",
        a.swarm
    );
    let mut iids: Vec<u64> = (0..a.swarm).map(|_| rng.u64(1 << 32..)).collect();
    iids.sort_unstable();
    iids.dedup();
    let t0 = Instant::now();
    for (i, &iid) in iids.iter().enumerate() {
        c.announce(&mut s, &h, &v6(iid, 6881), i % 3 != 0, Event::Started, 0);
    }
    println!(
        "  filled in {:.1} s: {} peers, {} seeders",
        t0.elapsed().as_secs_f64(),
        s.peers(),
        s.seeders()
    );

    let mut random = Workload::new("random (started + stopped)", Kind::Random);
    run(a.secs, count(0), WARM, &mut random, |_, w| {
        let p = v6(rng.u64(1 << 32..), 7000);
        w.time(|| c.announce(&mut s, &h, &p, false, Event::Started, 50));
        w.time(|| c.announce(&mut s, &h, &p, false, Event::Stopped, 0));
    });

    let low = v6(0, 1);
    let mut lowest = Workload::new("lowest loop (started + stopped)", Kind::Loop);
    run(a.secs, count(1), WARM, &mut lowest, |_, w| {
        w.time(|| c.announce(&mut s, &h, &low, false, Event::Started, 50));
        w.time(|| c.announce(&mut s, &h, &low, false, Event::Stopped, 0));
    });

    // Most leechers become seeders; a few remain, spread over the swarm.
    for (i, &iid) in iids.iter().enumerate() {
        if i % 3 == 0 && i % 30_000 != 0 {
            c.announce(&mut s, &h, &v6(iid, 6881), true, Event::None, 0);
        }
    }
    println!(
        "  then {} seeders, {} leechers",
        s.seeders(),
        s.peers() - s.seeders()
    );
    let seeder = v6(iids[1], 6881);
    let mut asks = Workload::new("seeder asks (34 leechers)", Kind::Loop);
    run(a.secs, count(2), WARM, &mut asks, |_, w| {
        w.time(|| c.announce(&mut s, &h, &seeder, true, Event::None, 50));
    });
    vec![random, lowest, asks]
}

/// Child mode: runs one store's workloads and writes `name|kind|iterations|ns ns ...` lines.
fn replica(a: &Args, path: &str) {
    let ws = match a.only.as_deref() {
        Some("v6") => ipv6_swarm(a),
        _ => ipv4_store(a),
    };
    let mut f = BufWriter::new(std::fs::File::create(path).expect("replica file"));
    for w in ws {
        write!(f, "{}|{}|{}|", w.name, w.kind.name(), w.iterations).expect("write");
        for (i, ns) in w.ns.iter().enumerate() {
            if i > 0 {
                f.write_all(b" ").expect("write");
            }
            write!(f, "{ns}").expect("write");
        }
        f.write_all(b"\n").expect("write");
    }
    f.flush().expect("write");
}

/// One workload as read back from a replica's file.
struct Read {
    name: String,
    kind: Kind,
    iterations: usize,
    ns: Vec<u64>,
}

fn read_replica(path: &str) -> Vec<Read> {
    let f = BufReader::new(std::fs::File::open(path).expect("replica file"));
    f.lines()
        .map(|l| {
            let l = l.expect("read");
            let mut p = l.splitn(4, '|');
            let name = p.next().unwrap_or("").to_string();
            let kind = Kind::parse(p.next().unwrap_or(""));
            let iterations = p.next().and_then(|x| x.parse().ok()).unwrap_or(0);
            let ns = p
                .next()
                .unwrap_or("")
                .split(' ')
                .filter(|x| !x.is_empty())
                .map(|x| x.parse().expect("a sample"))
                .collect();
            Read {
                name,
                kind,
                iterations,
                ns,
            }
        })
        .collect()
}

fn quantile(v: &[u64], q: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// Runs one store `--runs` times in child processes and prints the per-operation minimum.
fn measure(a: &Args, which: &str) {
    let exe = std::env::current_exe().expect("own path");
    let dir = std::env::temp_dir();
    let file = |k: usize| {
        dir.join(format!(
            "bench_adversarial.{}.{which}.{k}",
            std::process::id()
        ))
        .display()
        .to_string()
    };
    let mut base = vec![
        "--torrents".to_string(),
        a.torrents.to_string(),
        "--group".into(),
        a.group.to_string(),
        "--swarm".into(),
        a.swarm.to_string(),
        "--secs".into(),
        a.secs.to_string(),
        "--only".into(),
        which.into(),
    ];
    let spawn = |args: &[String], quiet: bool| {
        let out = Command::new(&exe)
            .args(args)
            .output()
            .expect("run a replica");
        if !quiet {
            print!("{}", String::from_utf8_lossy(&out.stdout));
        }
        assert!(
            out.status.success(),
            "a replica failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let mut first = base.clone();
    first.extend(["--replica".into(), file(1)]);
    spawn(&first, false);
    let r1 = read_replica(&file(1));
    let _ = std::fs::remove_file(file(1));
    let counts: Vec<String> = r1.iter().map(|w| w.iterations.to_string()).collect();
    base.extend(["--counts".into(), counts.join(",")]);
    // Per workload: the per-operation minimum over the runs so far.
    let mut min: Vec<Vec<u64>> = r1.iter().map(|w| w.ns.clone()).collect();
    for k in 2..=a.runs {
        let mut args = base.clone();
        args.extend(["--replica".into(), file(k)]);
        spawn(&args, true);
        let rk = read_replica(&file(k));
        let _ = std::fs::remove_file(file(k));
        for (m, w) in min.iter_mut().zip(&rk) {
            assert_eq!(m.len(), w.ns.len(), "the runs differ in {}", w.name);
            for (x, &y) in m.iter_mut().zip(&w.ns) {
                *x = (*x).min(y);
            }
        }
    }
    println!(
        "  per operation, the least of {} identical runs (us):        ops     median        p99      p99.9        max   (max of run 1; dropped)",
        a.runs
    );
    let (mut worst_loop, mut worst_fill, mut random_median) = (0u64, 0u64, 0u64);
    for (w1, m) in r1.iter().zip(&min) {
        let mut both: Vec<u64> = m.iter().copied().filter(|&x| x != MISSING).collect();
        let dropped = m.len() - both.len();
        both.sort_unstable();
        let max1 = w1
            .ns
            .iter()
            .filter(|&&x| x != MISSING)
            .max()
            .copied()
            .unwrap_or(0);
        let us = |ns: u64| ns as f64 / 1000.0;
        let max = both.last().copied().unwrap_or(0);
        println!(
            "  {:<36} {:>24} {:>10.2} {:>10.2} {:>10.2} {:>10.2}   ({:.2}; {dropped})",
            w1.name,
            both.len(),
            us(quantile(&both, 0.5)),
            us(quantile(&both, 0.99)),
            us(quantile(&both, 0.999)),
            us(max),
            us(max1),
        );
        if a.top > 0 {
            let mut idx: Vec<(u64, usize)> = m
                .iter()
                .enumerate()
                .filter(|&(_, &x)| x != MISSING)
                .map(|(i, &x)| (x, i))
                .collect();
            idx.sort_unstable_by(|x, y| y.cmp(x));
            let top: Vec<String> = idx
                .iter()
                .take(a.top)
                .map(|&(x, i)| format!("{i}: {:.1}", us(x)))
                .collect();
            println!("      slowest (operation: us): {}", top.join(", "));
        }
        match w1.kind {
            Kind::Random => random_median = quantile(&both, 0.5),
            Kind::Loop => worst_loop = worst_loop.max(max),
            Kind::Fill => worst_fill = worst_fill.max(max),
        }
    }
    let med = random_median.max(1) as f64;
    let (ratio_loop, ratio_all) = (
        worst_loop as f64 / med,
        worst_loop.max(worst_fill) as f64 / med,
    );
    println!(
        "  => repeatable shaped announces (loops): worst {:.2} us = {ratio_loop:.1}x the random workload's median ({:.2} us); target <= 10x: {}",
        worst_loop as f64 / 1000.0,
        med / 1000.0,
        if ratio_loop <= 10.0 { "met" } else { "NOT met" }
    );
    if worst_fill > 0 {
        println!(
            "  => with the one-off growth of the shaped fill: worst {:.2} us = {ratio_all:.1}x",
            worst_loop.max(worst_fill) as f64 / 1000.0,
        );
    }
    println!(
        "RESULT store={which} worst_loop_ns={worst_loop} worst_fill_ns={worst_fill} random_median_ns={random_median} ratio_loop={ratio_loop:.2} ratio_all={ratio_all:.2}"
    );
}

fn main() {
    let a = args();
    if let Some(path) = a.replica.clone() {
        replica(&a, &path);
        return;
    }
    let t0 = Instant::now();
    if a.only.as_deref() != Some("v6") {
        measure(&a, "v4");
    }
    if a.only.as_deref() != Some("v4") {
        measure(&a, "v6");
    }
    println!("total {:.1} s", t0.elapsed().as_secs_f64());
}
