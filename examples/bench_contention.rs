//! `make bench-contention`: K threads announcing into one shared store, without sockets
//! (issue #11, "Measure"). Which way of sharing the store scales with the cores?
//!
//! Built around today's single-threaded [`Store<6>`] (public API only): the benchmark splits
//! the info_hash space into S shards by the info_hash's top bits, each shard one `Store<6>`,
//! and compares ways for K threads to reach them:
//!
//! - `mutex`: each shard is a `Mutex<Store<6>>`; a request locks its shard, announces, unlocks
//!   (opentracker's way: a lock per bucket). Run for every S of `--shards` (1, 16, 256).
//! - `channel`: shard `s` is owned by worker `s % K`, which holds it for the whole run; a worker
//!   announces its own requests for its shards directly and forwards the others, `--batch` (32)
//!   at a time, over a `std::sync::mpsc` channel to the owner, which announces them and sends
//!   back the counts and the selected peers (aquatic's way: socket workers and swarm workers).
//!   At most 8 batches per worker are in flight; a worker with nothing to do blocks in
//!   `recv_timeout` (as a server's worker blocks in epoll). Run with the largest S.
//! - `mutex-batch` (the "anything better" candidate): a worker takes `--batch` requests (one
//!   `recvmmsg` batch), sorts them by shard and locks each shard once for its run of requests;
//!   a shard found locked (`try_lock`) is deferred to the end of the batch instead of waited
//!   for. Run with the largest S.
//! - `none` (K = 1 only): one thread holds its shard for the whole run: the announce alone,
//!   without a lock (the baseline of the lock's cost).
//!
//! Workloads (requests generated before the clock starts, so the timed loop reads them from an
//! array; a thread starts at its own offset):
//!
//! - `random`: `--torrents` (1,000,000) torrents x `--peers` (4) peer slots, every torrent
//!   equally likely;
//! - `zipf`: the same torrents drawn with Zipf(`--zipf`, 1.0) popularity (the top torrent gets
//!   about 7% of the announces);
//! - `hot`: one torrent with `--hot-peers` (10,000) peer slots.
//!
//! A request picks a peer slot at random; one in 16 is `stopped`, the others re-announce with
//! no event (the peer comes back if it had stopped), numwant 50, a third of the slots seeders.
//! Every store is filled first (each slot announced once). Time never advances (no cleaning).
//!
//! Printed, per workload: the hold time of a lock (the announce itself, sampled one request in
//! 64 with two clock reads inside the lock: p50, p99 and the mean up to p99, in ns), the
//! announce's CPU cost without any lock (`none`), the cost of an uncontended
//! lock + unlock, and per design, S and K: announces per second, announces per CPU-second of
//! the process (`getrusage`: the machine is shared, and K = 8 on 2 cores is oversubscribed),
//! the share of lock acquisitions that found the lock taken (`try_lock` failed), and the
//! ratios K=2/K=1 and K=8/K=1. At the end, a projection for 16 and 64 workers from the
//! measured hold times, the share of requests landing in the busiest shard, and a request's
//! whole cost in a tracker (`--request-us`, default 4 us: `make bench` measures about 240,000
//! UDP responses per tracker-CPU-second, syscalls included), for the measured S and for 1,024
//! and 4,096 shards (with the hold time of the largest measured S).
//!
//! Run: `cargo run --release --example bench_contention -- [--secs 2] [--threads 1,2,8]
//! [--shards 1,16,256] [--workloads random,zipf,hot] [--designs none,mutex,channel,mutex-batch]
//! [--torrents N] [--peers N] [--hot-peers N] [--zipf S] [--batch N] [--request-us US]`.
//!
//! Note: every shard here is a whole `Store<6>` with its own 4,096 buckets (576 KiB), of which a
//! shard uses 4096/S (the shard and the bucket are both chosen by the top bits); a real sharded
//! store would split the buckets instead. Per shard the torrents per bucket are the same as in
//! one store, so the announce costs the same.

#[path = "../benches/load/common.rs"]
mod common;

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Barrier, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use common::Opts;
use opentracker_rs::swarm::store::{AnnounceInput, Store, StoreConfig, SwarmCounts};
use opentracker_rs::types::{Event, InfoHash};

/// `now` for every announce: time stands still, nothing expires.
const NOW: u32 = 100;
/// Requests generated per workload (shared by the threads, each from its own offset).
const REQUESTS: usize = 1 << 22;
/// One request in this many has its lock hold time measured.
const SAMPLE: u64 = 64;
/// Batches a `channel` worker may have in flight.
const MAX_IN_FLIGHT: usize = 8;
/// numwant of every announce.
const NUMWANT: usize = 50;

type Result<T> = std::result::Result<T, String>;

/// One announce of the workload.
#[derive(Clone, Copy)]
struct Req {
    /// Index into the info_hash table.
    torrent: u32,
    peer: [u8; 6],
    seeder: bool,
    stop: bool,
}

/// A forwarded announce (`channel`): what a socket worker would hand a swarm worker.
struct Fwd {
    info_hash: InfoHash,
    peer: [u8; 6],
    seeder: bool,
    stop: bool,
}

/// The answers to one forwarded batch: counts, and the selected peers of each back to back.
struct Replies {
    counts: Vec<SwarmCounts>,
    lens: Vec<u16>,
    peers: Vec<u8>,
}

enum Msg {
    Requests(usize, Vec<Fwd>),
    Replies(Replies),
}

struct Settings {
    secs: f64,
    threads: Vec<usize>,
    shards: Vec<usize>,
    workloads: Vec<String>,
    designs: Vec<String>,
    torrents: usize,
    peers: usize,
    hot_peers: usize,
    zipf: f64,
    batch: usize,
    request_us: f64,
}

/// What one run measured.
#[derive(Default, Clone)]
struct Outcome {
    announces: u64,
    wall: f64,
    cpu: f64,
    /// Lock acquisitions, and how many found the lock taken.
    locks: u64,
    contended: u64,
    /// Sampled hold times (ns).
    holds: Vec<u64>,
}

impl Outcome {
    fn rate(&self) -> f64 {
        self.announces as f64 / self.wall.max(1e-9)
    }
    fn per_cpu(&self) -> f64 {
        self.announces as f64 / self.cpu.max(1e-9)
    }
    fn contended_pct(&self) -> f64 {
        100.0 * self.contended as f64 / (self.locks.max(1)) as f64
    }
}

/// Per-thread tallies, merged into an [`Outcome`].
#[derive(Default)]
struct Tally {
    announces: u64,
    locks: u64,
    contended: u64,
    holds: Vec<u64>,
}

fn list<T: std::str::FromStr>(o: &Opts, key: &str, default: &str) -> Result<Vec<T>> {
    o.get_str(key)
        .unwrap_or_else(|| default.into())
        .split(',')
        .map(|v| {
            v.trim()
                .parse()
                .map_err(|_| format!("--{key}: cannot parse {v:?}"))
        })
        .collect()
}

fn main() {
    if let Err(e) = run() {
        eprintln!("bench_contention: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<()> {
    let o = Opts::from_env(&[])?;
    let s = Settings {
        secs: o.get("secs", 2.0)?,
        threads: list(&o, "threads", "1,2,8")?,
        shards: list(&o, "shards", "1,16,256")?,
        workloads: list(&o, "workloads", "random,zipf,hot")?,
        designs: list(&o, "designs", "none,mutex,channel,mutex-batch")?,
        torrents: o.get("torrents", 1_000_000)?,
        peers: o.get("peers", 4)?,
        hot_peers: o.get("hot-peers", 10_000)?,
        zipf: o.get("zipf", 1.0)?,
        batch: o.get::<usize>("batch", 32)?.max(1),
        request_us: o.get("request-us", 4.0)?,
    };
    o.finish()?;
    for &sh in &s.shards {
        if !sh.is_power_of_two() || sh > 65536 {
            return Err(format!("--shards: {sh} is not a power of two up to 65536"));
        }
    }
    if s.torrents == 0 || s.peers == 0 || s.hot_peers == 0 {
        return Err("--torrents, --peers and --hot-peers must be at least 1".into());
    }
    for d in &s.designs {
        if !["none", "mutex", "channel", "mutex-batch"].contains(&d.as_str()) {
            return Err(format!("--designs: unknown design {d:?}"));
        }
    }
    for w in &s.workloads {
        if !["random", "zipf", "hot"].contains(&w.as_str()) {
            return Err(format!("--workloads: unknown workload {w:?}"));
        }
    }
    let max_s = s.shards.iter().copied().max().unwrap_or(1);
    println!(
        "# {} CPUs, load average {}; {} s per run; {} torrents x {} peer slots, hot torrent {} slots; numwant {NUMWANT}, 1/16 stopped; batch {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        s.secs,
        s.torrents,
        s.peers,
        s.hot_peers,
        s.batch
    );
    let lock_ns = uncontended_lock_ns();
    println!("# uncontended Mutex lock+unlock: {lock_ns:.1} ns (one thread, std::sync::Mutex)");

    // Torrents 0..torrents, then the hot one.
    let mut hashes: Vec<InfoHash> = (0..s.torrents as u64)
        .map(|i| common::info_hash(7, i))
        .collect();
    hashes.push(common::info_hash(8, 0));
    let hot = s.torrents as u32;

    // Every (design, S) to run, each on its own filled set of shards.
    let mut configs: Vec<(String, usize)> = Vec::new();
    for d in &s.designs {
        match d.as_str() {
            "mutex" => configs.extend(s.shards.iter().map(|&n| (d.clone(), n))),
            "none" => configs.push((d.clone(), 1)),
            _ => configs.push((d.clone(), max_s)),
        }
    }
    let mut shard_counts: Vec<usize> = configs.iter().map(|c| c.1).collect();
    shard_counts.sort_unstable();
    shard_counts.dedup();

    let workloads: Vec<(String, Vec<Req>)> = s
        .workloads
        .iter()
        .map(|w| (w.clone(), requests(&s, w, hot)))
        .collect();

    // results[(workload, design, S, K)]
    let mut results: Vec<(String, String, usize, usize, Outcome)> = Vec::new();
    for &n in &shard_counts {
        let t0 = Instant::now();
        let shards = fill(&s, &hashes, n, hot);
        let (torrents, peers): (u64, u64) = shards.iter().fold((0, 0), |(t, p), m| {
            let g = lock(m).0;
            (t + g.torrents(), p + g.peers())
        });
        println!(
            "# S={n}: filled {torrents} torrents, {peers} peers in {:.1} s",
            t0.elapsed().as_secs_f64()
        );
        for (w, reqs) in &workloads {
            for (d, cn) in &configs {
                if *cn != n {
                    continue;
                }
                let ks: Vec<usize> = if d == "none" {
                    vec![1]
                } else {
                    s.threads.clone()
                };
                for k in ks {
                    let out = match d.as_str() {
                        "none" => run_none(&s, &shards, &hashes, reqs),
                        "mutex" => run_mutex(&s, &shards, &hashes, reqs, k),
                        "mutex-batch" => run_batch(&s, &shards, &hashes, reqs, k),
                        _ => run_channel(&s, &shards, &hashes, reqs, k),
                    };
                    println!(
                        "{w:<7} {d:<12} S={n:<4} K={k}: {:>7.3} M announces/s {:>7.3} M/CPU-s  CPU {:>4.0}%  contended {:>5.2}%  hold p50 {}",
                        out.rate() / 1e6,
                        out.per_cpu() / 1e6,
                        100.0 * out.cpu / out.wall.max(1e-9),
                        out.contended_pct(),
                        if out.holds.is_empty() {
                            "-".to_owned()
                        } else {
                            format!("{} ns", pct(&out.holds, 0.5))
                        }
                    );
                    results.push((w.clone(), d.clone(), n, k, out));
                }
            }
        }
    }
    summary(&s, &results, lock_ns, &workloads, &hashes);
    Ok(())
}

/// The p-quantile of `v` (0 when empty).
fn pct(v: &[u64], p: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    let mut v = v.to_vec();
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p) as usize]
}

fn summary(
    s: &Settings,
    results: &[(String, String, usize, usize, Outcome)],
    lock_ns: f64,
    workloads: &[(String, Vec<Req>)],
    hashes: &[InfoHash],
) {
    let find = |w: &str, d: &str, n: usize, k: usize| {
        results
            .iter()
            .find(|r| r.0 == w && r.1 == d && r.2 == n && r.3 == k)
            .map(|r| &r.4)
    };
    println!();
    println!(
        "## Hold time: the announce inside the lock (mutex, K=1, sampled 1 in {SAMPLE}; mean of the samples up to p99, so a preemption inside the lock does not count)"
    );
    println!(
        "{:<8} {:>6} {:>10} {:>10} {:>10} {:>22}",
        "workload", "S", "p50 ns", "p99 ns", "mean ns", "none: CPU ns/announce"
    );
    let mut hold_of = Vec::new();
    for (w, _) in workloads {
        let none = find(w, "none", 1, 1).map(|o| 1e9 / o.per_cpu());
        for &n in &s.shards {
            if let Some(o) = find(w, "mutex", n, 1) {
                let mean = trimmed_mean(&o.holds);
                println!(
                    "{:<8} {:>6} {:>10} {:>10} {:>10.0} {:>22}",
                    w,
                    n,
                    pct(&o.holds, 0.5),
                    pct(&o.holds, 0.99),
                    mean,
                    none.map_or("-".into(), |v| format!("{v:.0}"))
                );
                hold_of.push((w.clone(), n, mean));
            }
        }
    }
    println!("uncontended lock+unlock: {lock_ns:.1} ns");
    println!();
    println!(
        "## Announces per second (M/s) and per CPU-second; ratios to K={}",
        s.threads.first().copied().unwrap_or(1)
    );
    let mut designs: Vec<(String, usize)> = Vec::new();
    for r in results {
        if !designs.iter().any(|d| d.0 == r.1 && d.1 == r.2) {
            designs.push((r.1.clone(), r.2));
        }
    }
    let base_k = s.threads.first().copied().unwrap_or(1);
    for (w, _) in workloads {
        for (d, n) in &designs {
            if d == "none" {
                continue;
            }
            let Some(base) = find(w, d, *n, base_k) else {
                continue;
            };
            let mut line = format!("{w:<7} {d:<12} S={n:<4}");
            for &k in &s.threads {
                if let Some(o) = find(w, d, *n, k) {
                    line.push_str(&format!(
                        "  K={k} {:>6.3} M/s ({:.2}x, per CPU-s {:.2}x)",
                        o.rate() / 1e6,
                        o.rate() / base.rate().max(1e-9),
                        o.per_cpu() / base.per_cpu().max(1e-9)
                    ));
                }
            }
            println!("{line}");
        }
    }
    // The projection: a worker spends `request_us` per request, of which `hold` inside a shard
    // lock; the busiest shard receives a share `busiest` of all requests. With W workers at
    // full speed, that shard's lock is held a fraction W * busiest * hold / request of the time
    // (its utilisation u); a request finds it taken with probability about u (u >= 1: the
    // shard is the bottleneck, the total is capped at request/(busiest*hold) workers' worth).
    println!();
    println!(
        "## Projection: W workers, a request costs {:.1} us in all (--request-us), the hold time above inside the lock",
        s.request_us
    );
    println!(
        "{:<8} {:>6} {:>9} {:>11} {:>13} {:>13} {:>15}",
        "workload", "S", "hold ns", "busiest %", "u at W=16", "u at W=64", "max workers"
    );
    let max_s = s.shards.iter().copied().max().unwrap_or(1);
    let mut projected = s.shards.clone();
    projected.extend([1024, 4096].into_iter().filter(|&n| n > max_s));
    for (w, reqs) in workloads {
        for &n in &projected {
            let Some(&(_, _, hold)) = hold_of.iter().find(|h| h.0 == *w && h.1 == n.min(max_s))
            else {
                continue;
            };
            let busiest = busiest_share(reqs, hashes, n);
            let u = |workers: f64| workers * busiest * hold / (s.request_us * 1000.0);
            let cap = (s.request_us * 1000.0) / (busiest * hold).max(1e-9);
            println!(
                "{:<8} {:>6} {:>9.0} {:>10.2}% {:>13.3} {:>13.3} {:>15.0}",
                w,
                n,
                hold,
                100.0 * busiest,
                u(16.0),
                u(64.0),
                cap
            );
        }
    }
    println!(
        "# u: the busiest shard's lock utilisation (about the chance that a request finds it taken); max workers: where u reaches 1 and that shard caps the total"
    );
}

/// The mean of the samples up to the 99th percentile (0 when empty).
fn trimmed_mean(v: &[u64]) -> f64 {
    let cut = pct(v, 0.99);
    let kept: Vec<u64> = v.iter().copied().filter(|&x| x <= cut).collect();
    kept.iter().sum::<u64>() as f64 / kept.len().max(1) as f64
}

/// The share of `reqs` that lands in the most requested of `n` shards.
fn busiest_share(reqs: &[Req], hashes: &[InfoHash], n: usize) -> f64 {
    let shift = shift_of(n);
    let mut counts = vec![0u64; n];
    for r in reqs {
        counts[shard_of(&hashes[r.torrent as usize], shift)] += 1;
    }
    *counts.iter().max().unwrap_or(&0) as f64 / reqs.len().max(1) as f64
}

/// ns per lock+unlock of an uncontended `std::sync::Mutex`.
fn uncontended_lock_ns() -> f64 {
    let m = Mutex::new(0u64);
    let n = 20_000_000u64;
    let t0 = Instant::now();
    for _ in 0..n {
        let mut g = black_box(&m).lock().unwrap_or_else(|e| e.into_inner());
        *g += 1;
    }
    t0.elapsed().as_nanos() as f64 / n as f64
}

/// Right shift that turns the top 16 bits of an info_hash into a shard of `n` (a power of 2).
fn shift_of(n: usize) -> u32 {
    16 - n.trailing_zeros()
}

#[inline]
fn shard_of(h: &InfoHash, shift: u32) -> usize {
    (((h[0] as u32) << 8 | h[1] as u32) >> shift) as usize
}

/// The compact peer of slot `slot` of torrent `torrent` (a pseudo-random address and port).
fn peer_of(torrent: u32, slot: u32) -> [u8; 6] {
    let x = common::splitmix(((torrent as u64) << 32) | slot as u64);
    let b = x.to_be_bytes();
    [b[0], b[1], b[2], b[3], b[4], b[5] | 1]
}

fn requests(s: &Settings, workload: &str, hot: u32) -> Vec<Req> {
    let mut rng = fastrand::Rng::with_seed(11);
    let zipf = (workload == "zipf").then(|| common::Zipf::new(s.torrents as u64, s.zipf));
    (0..REQUESTS)
        .map(|_| {
            let (torrent, slot) = match workload {
                "hot" => (hot, rng.u32(..s.hot_peers as u32)),
                _ => {
                    let t = match &zipf {
                        Some(z) => z.sample(&mut rng) as u32,
                        None => rng.u32(..s.torrents as u32),
                    };
                    (t, rng.u32(..s.peers as u32))
                }
            };
            Req {
                torrent,
                peer: peer_of(torrent, slot),
                seeder: slot % 3 == 0,
                stop: rng.u32(..16) == 0,
            }
        })
        .collect()
}

/// `n` shards, every slot of every torrent announced once (numwant 0).
fn fill(s: &Settings, hashes: &[InfoHash], n: usize, hot: u32) -> Vec<Mutex<Store<6>>> {
    let shift = shift_of(n);
    let shards: Vec<Mutex<Store<6>>> = (0..n)
        .map(|_| Mutex::new(Store::new(StoreConfig::default())))
        .collect();
    let mut rng = fastrand::Rng::with_seed(3);
    let mut out = Vec::new();
    let mut one = |t: u32, slot: u32, shards: &[Mutex<Store<6>>]| {
        let h = &hashes[t as usize];
        let peer = peer_of(t, slot);
        let mut g = lock(&shards[shard_of(h, shift)]).0;
        out.clear();
        g.announce(
            &AnnounceInput {
                info_hash: h,
                peer: &peer,
                seeder: slot % 3 == 0,
                event: Event::Started,
                numwant: 0,
            },
            NOW,
            &mut rng,
            &mut out,
        );
    };
    for t in 0..s.torrents as u32 {
        for slot in 0..s.peers as u32 {
            one(t, slot, &shards);
        }
    }
    for slot in 0..s.hot_peers as u32 {
        one(hot, slot, &shards);
    }
    shards
}

/// Locks `m`; the bool says whether it was taken by another thread first.
#[inline]
fn lock<T>(m: &Mutex<T>) -> (MutexGuard<'_, T>, bool) {
    match m.try_lock() {
        Ok(g) => (g, false),
        Err(TryLockError::Poisoned(p)) => (p.into_inner(), false),
        Err(TryLockError::WouldBlock) => (m.lock().unwrap_or_else(|e| e.into_inner()), true),
    }
}

/// One announce of `r` into `store`.
#[inline]
fn announce(
    store: &mut Store<6>,
    info_hash: &InfoHash,
    peer: &[u8; 6],
    seeder: bool,
    stop: bool,
    rng: &mut fastrand::Rng,
    out: &mut Vec<u8>,
) -> SwarmCounts {
    out.clear();
    store.announce(
        &AnnounceInput {
            info_hash,
            peer,
            seeder,
            event: if stop { Event::Stopped } else { Event::None },
            numwant: NUMWANT,
        },
        NOW,
        rng,
        out,
    )
}

/// CPU seconds (user + system) of the whole process so far.
fn process_cpu() -> f64 {
    // SAFETY: an all-zero rusage is a valid value; getrusage writes one rusage to the pointer.
    let r = unsafe {
        let mut r: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut r);
        r
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(r.ru_utime) + tv(r.ru_stime)
}

/// Runs `k` threads of `body(thread, stop)` for `secs`, measuring wall and CPU time from the
/// moment they all start until they all return.
fn timed<F>(secs: f64, k: usize, body: F) -> Outcome
where
    F: Fn(usize, &AtomicBool) -> Tally + Sync,
{
    let stop = AtomicBool::new(false);
    let barrier = Barrier::new(k + 1);
    let (tallies, wall, cpu) = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..k)
            .map(|i| {
                let (stop, barrier, body) = (&stop, &barrier, &body);
                sc.spawn(move || {
                    barrier.wait();
                    body(i, stop)
                })
            })
            .collect();
        barrier.wait();
        let (t0, c0) = (Instant::now(), process_cpu());
        std::thread::sleep(Duration::from_secs_f64(s_or(secs)));
        stop.store(true, Ordering::Relaxed);
        let tallies: Vec<Tally> = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect();
        (tallies, t0.elapsed().as_secs_f64(), process_cpu() - c0)
    });
    let mut o = Outcome {
        wall,
        cpu,
        ..Default::default()
    };
    for t in tallies {
        o.announces += t.announces;
        o.locks += t.locks;
        o.contended += t.contended;
        o.holds.extend(t.holds);
    }
    o
}

fn s_or(secs: f64) -> f64 {
    if secs.is_finite() && secs > 0.0 {
        secs
    } else {
        1.0
    }
}

/// The start of thread `i` of `k` in the request array.
fn start(i: usize, k: usize, len: usize) -> usize {
    i * (len / k.max(1))
}

/// `none`: one thread holds the only shard (S=1) for the whole run.
fn run_none(
    s: &Settings,
    shards: &[Mutex<Store<6>>],
    hashes: &[InfoHash],
    reqs: &[Req],
) -> Outcome {
    timed(s.secs, 1, |_, stop| {
        let mut t = Tally::default();
        let mut g = lock(&shards[0]).0;
        let mut rng = fastrand::Rng::with_seed(1);
        let mut out = Vec::with_capacity(NUMWANT * 6);
        let mut idx = 0;
        while !stop.load(Ordering::Relaxed) {
            for _ in 0..64 {
                let r = &reqs[idx];
                idx = if idx + 1 == reqs.len() { 0 } else { idx + 1 };
                let h = &hashes[r.torrent as usize];
                black_box(announce(
                    &mut g, h, &r.peer, r.seeder, r.stop, &mut rng, &mut out,
                ));
            }
            t.announces += 64;
        }
        t
    })
}

/// `mutex`: a request locks its shard.
fn run_mutex(
    s: &Settings,
    shards: &[Mutex<Store<6>>],
    hashes: &[InfoHash],
    reqs: &[Req],
    k: usize,
) -> Outcome {
    let shift = shift_of(shards.len());
    timed(s.secs, k, |i, stop| {
        let mut t = Tally {
            holds: Vec::with_capacity(1 << 16),
            ..Default::default()
        };
        let mut rng = fastrand::Rng::with_seed(i as u64 + 1);
        let mut out = Vec::with_capacity(NUMWANT * 6);
        let mut idx = start(i, k, reqs.len());
        while !stop.load(Ordering::Relaxed) {
            for _ in 0..64 {
                let r = &reqs[idx];
                idx = if idx + 1 == reqs.len() { 0 } else { idx + 1 };
                let h = &hashes[r.torrent as usize];
                let (mut g, waited) = lock(&shards[shard_of(h, shift)]);
                t.contended += waited as u64;
                if t.locks % SAMPLE == 0 {
                    let t0 = Instant::now();
                    black_box(announce(
                        &mut g, h, &r.peer, r.seeder, r.stop, &mut rng, &mut out,
                    ));
                    let ns = t0.elapsed().as_nanos() as u64;
                    drop(g);
                    t.holds.push(ns);
                } else {
                    black_box(announce(
                        &mut g, h, &r.peer, r.seeder, r.stop, &mut rng, &mut out,
                    ));
                    drop(g);
                }
                t.locks += 1;
            }
            t.announces += 64;
        }
        t
    })
}

/// `mutex-batch`: a batch sorted by shard, one lock per shard's run, busy shards deferred.
fn run_batch(
    s: &Settings,
    shards: &[Mutex<Store<6>>],
    hashes: &[InfoHash],
    reqs: &[Req],
    k: usize,
) -> Outcome {
    let shift = shift_of(shards.len());
    let b = s.batch;
    timed(s.secs, k, |i, stop| {
        let mut t = Tally::default();
        let mut rng = fastrand::Rng::with_seed(i as u64 + 1);
        let mut out = Vec::with_capacity(NUMWANT * 6);
        let mut idx = start(i, k, reqs.len());
        // (shard, request index)
        let mut batch: Vec<(usize, usize)> = Vec::with_capacity(b);
        let mut deferred: Vec<(usize, usize)> = Vec::with_capacity(b);
        while !stop.load(Ordering::Relaxed) {
            batch.clear();
            for _ in 0..b {
                let h = &hashes[reqs[idx].torrent as usize];
                batch.push((shard_of(h, shift), idx));
                idx = if idx + 1 == reqs.len() { 0 } else { idx + 1 };
            }
            batch.sort_unstable_by_key(|e| e.0);
            deferred.clear();
            let mut j = 0;
            while j < batch.len() {
                let sh = batch[j].0;
                let end = j + batch[j..].iter().take_while(|e| e.0 == sh).count();
                match shards[sh].try_lock() {
                    Ok(mut g) => {
                        t.locks += 1;
                        for &(_, ri) in &batch[j..end] {
                            let r = &reqs[ri];
                            let h = &hashes[r.torrent as usize];
                            black_box(announce(
                                &mut g, h, &r.peer, r.seeder, r.stop, &mut rng, &mut out,
                            ));
                        }
                    }
                    Err(_) => deferred.extend_from_slice(&batch[j..end]),
                }
                j = end;
            }
            let mut j = 0;
            while j < deferred.len() {
                let sh = deferred[j].0;
                let end = j + deferred[j..].iter().take_while(|e| e.0 == sh).count();
                let (mut g, waited) = lock(&shards[sh]);
                t.locks += 1;
                t.contended += waited as u64 + 1;
                for &(_, ri) in &deferred[j..end] {
                    let r = &reqs[ri];
                    let h = &hashes[r.torrent as usize];
                    black_box(announce(
                        &mut g, h, &r.peer, r.seeder, r.stop, &mut rng, &mut out,
                    ));
                }
                j = end;
            }
            t.announces += b as u64;
        }
        t
    })
}

/// `channel`: shard `s` owned by worker `s % k`; requests for the others forwarded in batches.
fn run_channel(
    s: &Settings,
    shards: &[Mutex<Store<6>>],
    hashes: &[InfoHash],
    reqs: &[Req],
    k: usize,
) -> Outcome {
    let shift = shift_of(shards.len());
    let b = s.batch;
    let mut txs: Vec<Sender<Msg>> = Vec::new();
    let mut rxs: Vec<Mutex<Option<Receiver<Msg>>>> = Vec::new();
    for _ in 0..k {
        let (tx, rx) = channel();
        txs.push(tx);
        rxs.push(Mutex::new(Some(rx)));
    }
    let finished = AtomicUsize::new(0);
    let in_flight_all = AtomicI64::new(0);
    timed(s.secs, k, |i, stop| {
        let mut t = Tally::default();
        let Some(rx) = lock(&rxs[i]).0.take() else {
            return t;
        };
        // This worker's shards, held for the whole run: i, i + k, i + 2k, ...
        let mut owned: Vec<MutexGuard<'_, Store<6>>> = (i..shards.len())
            .step_by(k)
            .map(|j| lock(&shards[j]).0)
            .collect();
        let mut rng = fastrand::Rng::with_seed(i as u64 + 1);
        let mut out = Vec::with_capacity(NUMWANT * 6);
        let mut idx = start(i, k, reqs.len());
        let mut outgoing: Vec<Vec<Fwd>> = (0..k).map(|_| Vec::new()).collect();
        let mut in_flight = 0usize;
        let mut generating = true;
        // A message received by the blocking wait at the end of the previous iteration.
        let mut next: Option<Msg> = None;
        loop {
            let mut progress = false;
            if generating && stop.load(Ordering::Relaxed) {
                generating = false;
                finished.fetch_add(1, Ordering::SeqCst);
            }
            if generating && in_flight < MAX_IN_FLIGHT {
                progress = true;
                for _ in 0..b {
                    let r = &reqs[idx];
                    idx = if idx + 1 == reqs.len() { 0 } else { idx + 1 };
                    let h = &hashes[r.torrent as usize];
                    let sh = shard_of(h, shift);
                    let owner = sh % k;
                    if owner == i {
                        black_box(announce(
                            &mut owned[sh / k],
                            h,
                            &r.peer,
                            r.seeder,
                            r.stop,
                            &mut rng,
                            &mut out,
                        ));
                        t.announces += 1;
                    } else {
                        outgoing[owner].push(Fwd {
                            info_hash: *h,
                            peer: r.peer,
                            seeder: r.seeder,
                            stop: r.stop,
                        });
                    }
                }
                for (owner, v) in outgoing.iter_mut().enumerate() {
                    if !v.is_empty() {
                        let batch = std::mem::replace(v, Vec::with_capacity(b));
                        in_flight += 1;
                        in_flight_all.fetch_add(1, Ordering::SeqCst);
                        let _ = txs[owner].send(Msg::Requests(i, batch));
                    }
                }
            }
            while let Some(m) = next.take().or_else(|| rx.try_recv().ok()) {
                progress = true;
                match m {
                    Msg::Requests(from, batch) => {
                        let mut rep = Replies {
                            counts: Vec::with_capacity(batch.len()),
                            lens: Vec::with_capacity(batch.len()),
                            peers: Vec::with_capacity(batch.len() * 64),
                        };
                        for f in &batch {
                            let sh = shard_of(&f.info_hash, shift);
                            let c = announce(
                                &mut owned[sh / k],
                                &f.info_hash,
                                &f.peer,
                                f.seeder,
                                f.stop,
                                &mut rng,
                                &mut out,
                            );
                            rep.counts.push(c);
                            rep.lens.push(out.len() as u16);
                            rep.peers.extend_from_slice(&out);
                        }
                        let _ = txs[from].send(Msg::Replies(rep));
                    }
                    Msg::Replies(rep) => {
                        black_box(&rep.peers);
                        t.announces += rep.counts.len() as u64;
                        in_flight -= 1;
                        in_flight_all.fetch_sub(1, Ordering::SeqCst);
                    }
                }
            }
            if !generating
                && finished.load(Ordering::SeqCst) == k
                && in_flight_all.load(Ordering::SeqCst) == 0
            {
                break;
            }
            if !progress {
                // Nothing to do: sleep until a message comes (as a worker blocks in epoll).
                next = rx.recv_timeout(Duration::from_micros(500)).ok();
            }
        }
        drop(owned);
        t
    })
}
