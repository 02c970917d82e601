//! Code shared by the load generators (`udp_load`, `http_load`) and the benchmark driver
//! (`bench_run`): command-line options, the deterministic swarm model (info_hashes, peers,
//! popularity), latency histograms and the one-line `RESULT key=value ...` report that the
//! driver parses.
//!
//! Included with `#[path]` by each example; not every example uses every item.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use hdrhistogram::Histogram;
use opentracker_rs::types::{InfoHash, PeerId};

/// `--key value` and `--flag` options, in any order. Unknown keys are an error when read with
/// [`Opts::finish`], so a typo never silently falls back to a default.
pub struct Opts {
    values: BTreeMap<String, String>,
    used: std::cell::RefCell<Vec<String>>,
    /// Words that are not options (a subcommand).
    pub positional: Vec<String>,
}

impl Opts {
    /// Parses `std::env::args()`. `flags` lists the options that take no value.
    pub fn from_env(flags: &[&str]) -> Result<Opts, String> {
        Self::parse(std::env::args().skip(1), flags)
    }

    /// Parses `args`. `flags` lists the options that take no value.
    pub fn parse(args: impl IntoIterator<Item = String>, flags: &[&str]) -> Result<Opts, String> {
        let mut values = BTreeMap::new();
        let mut positional = Vec::new();
        let mut it = args.into_iter();
        while let Some(a) = it.next() {
            if let Some(key) = a.strip_prefix("--") {
                if let Some((k, v)) = key.split_once('=') {
                    values.insert(k.to_owned(), v.to_owned());
                } else if flags.contains(&key) {
                    values.insert(key.to_owned(), "true".to_owned());
                } else {
                    let v = it.next().ok_or_else(|| format!("--{key} needs a value"))?;
                    values.insert(key.to_owned(), v);
                }
            } else {
                positional.push(a);
            }
        }
        Ok(Opts {
            values,
            used: Default::default(),
            positional,
        })
    }

    /// The value of `--key` parsed as `T`, or `default`.
    pub fn get<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, String> {
        self.used.borrow_mut().push(key.to_owned());
        match self.values.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{key}: cannot parse {v:?}")),
        }
    }

    /// The value of `--key` as a string, if given.
    pub fn get_str(&self, key: &str) -> Option<String> {
        self.used.borrow_mut().push(key.to_owned());
        self.values.get(key).cloned()
    }

    /// Whether the flag `--key` was given.
    pub fn flag(&self, key: &str) -> bool {
        self.used.borrow_mut().push(key.to_owned());
        self.values.contains_key(key)
    }

    /// Errors if an option was given that no `get`/`flag` call asked for.
    pub fn finish(&self) -> Result<(), String> {
        let used = self.used.borrow();
        for k in self.values.keys() {
            if !used.iter().any(|u| u == k) {
                return Err(format!("unknown option --{k}"));
            }
        }
        Ok(())
    }
}

/// SplitMix64: a tiny, well-mixed bijection on u64, used to derive every value of the model
/// from (seed, index) so that the driver can regenerate the info_hashes for a whitelist.
pub fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The info_hash of torrent `index` for `seed`: 20 pseudo-random bytes, unique per index
/// (the first 8 bytes are a bijection of the index), so torrents spread over the store's
/// buckets as real SHA-1 hashes do.
pub fn info_hash(seed: u64, index: u64) -> InfoHash {
    let a = splitmix(index ^ seed.rotate_left(17));
    let b = splitmix(a ^ 0x5151_5151);
    let c = splitmix(b ^ seed);
    let mut h = [0u8; 20];
    h[..8].copy_from_slice(&a.to_be_bytes());
    h[8..16].copy_from_slice(&b.to_be_bytes());
    h[16..].copy_from_slice(&c.to_be_bytes()[..4]);
    h
}

/// Lower-case hex of an info_hash (whitelist files, 40 characters).
pub fn hex(h: &InfoHash) -> String {
    let mut s = String::with_capacity(40);
    for b in h {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The whitelist text for torrents `0..count`: one 40-hex info_hash per line.
pub fn whitelist_text(seed: u64, count: u64) -> String {
    let mut s = String::with_capacity(count as usize * 41);
    for i in 0..count {
        s.push_str(&hex(&info_hash(seed, i)));
        s.push('\n');
    }
    s
}

/// A peer_id in Azureus style (`-LG0001-` + 12 digits of the peer's index).
pub fn peer_id(index: u64) -> PeerId {
    let mut id = *b"-LG0001-000000000000";
    let mut n = index;
    for b in id[8..].iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
    id
}

/// Source address number `i` of `count`: `127.0.0.1`, `127.0.0.2`, ... (IPv4 loopback), or
/// `::1` for every `i` when the target is IPv6.
pub fn source_ip(i: usize, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
    } else {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i % 250) as u8))
    }
}

/// The simulated peers: peer `p` sends from source address `p % sources`, listens on port
/// `1024 + (p / sources) % 64000` (so every peer is a distinct (address, port) pair for up to
/// `sources * 64000` peers), announces torrent `torrent_of[p]` (drawn from the popularity
/// law) and is a seeder with the configured share.
pub struct Swarms {
    /// Torrents `0..torrents` (info_hash from [`info_hash`]).
    pub torrents: u64,
    /// Info_hashes, by torrent index.
    pub hashes: Vec<InfoHash>,
    /// Torrent of each peer.
    pub torrent_of: Vec<u32>,
    /// Seeder flag of each peer.
    pub seeder: Vec<bool>,
    /// Source addresses.
    pub sources: usize,
    /// Cumulative popularity, for scrapes.
    pub popularity: Zipf,
}

impl Swarms {
    /// Builds the model. `zipf` is the popularity exponent (0 = uniform, 1 = classic Zipf: the
    /// most popular torrent gets about `peers / ln(torrents)` peers).
    pub fn new(
        seed: u64,
        torrents: u64,
        peers: u64,
        zipf: f64,
        seeders: f64,
        sources: usize,
    ) -> Swarms {
        let popularity = Zipf::new(torrents.max(1), zipf);
        let mut rng = fastrand::Rng::with_seed(seed ^ 0xA11CE);
        let torrent_of = (0..peers)
            .map(|_| popularity.sample(&mut rng) as u32)
            .collect();
        let seeder = (0..peers).map(|_| rng.f64() < seeders).collect();
        Swarms {
            torrents,
            hashes: (0..torrents).map(|i| info_hash(seed, i)).collect(),
            torrent_of,
            seeder,
            sources: sources.max(1),
            popularity,
        }
    }

    /// Number of simulated peers.
    pub fn peers(&self) -> usize {
        self.torrent_of.len()
    }

    /// The source address index of peer `p`.
    pub fn source_of(&self, p: usize) -> usize {
        p % self.sources
    }

    /// The listening port announced by peer `p`.
    pub fn port_of(&self, p: usize) -> u16 {
        peer_port(p, self.sources)
    }
}

/// The port announced by peer `p` when peers are spread over `sources` addresses.
pub fn peer_port(p: usize, sources: usize) -> u16 {
    1024 + ((p / sources.max(1)) % 64000) as u16
}

/// A Zipf-like popularity law over `0..n`: rank `k` has weight `1 / (k + 1)^s`. Sampled by a
/// binary search over the cumulative weights (8 bytes per torrent).
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    /// The law over `0..n` with exponent `s` (0 = uniform).
    pub fn new(n: u64, s: f64) -> Zipf {
        let mut cdf = Vec::with_capacity(n as usize);
        let mut acc = 0.0;
        for k in 0..n {
            acc += 1.0 / ((k + 1) as f64).powf(s);
            cdf.push(acc);
        }
        for c in cdf.iter_mut() {
            *c /= acc;
        }
        Zipf { cdf }
    }

    /// One draw.
    pub fn sample(&self, rng: &mut fastrand::Rng) -> usize {
        let u = rng.f64();
        self.cdf
            .partition_point(|&c| c < u)
            .min(self.cdf.len().saturating_sub(1))
    }
}

/// A latency histogram in microseconds, 1 µs to 60 s, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// Records `d` (clamped to the histogram's range).
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    let us = (d.as_micros() as u64).clamp(1, 60_000_000);
    let _ = h.record(us);
}

/// Percentiles as `p50_us=.. p90_us=.. p99_us=.. p999_us=.. max_us=..` (all 0 when empty).
pub fn percentiles(h: &Histogram<u64>, prefix: &str) -> String {
    if h.is_empty() {
        return format!(
            "{prefix}p50_us=0 {prefix}p90_us=0 {prefix}p99_us=0 {prefix}p999_us=0 {prefix}max_us=0"
        );
    }
    format!(
        "{prefix}p50_us={} {prefix}p90_us={} {prefix}p99_us={} {prefix}p999_us={} {prefix}max_us={}",
        h.value_at_quantile(0.50),
        h.value_at_quantile(0.90),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max()
    )
}

/// Parses a `RESULT k=v k=v ...` line into a map (the driver's side of the report).
pub fn parse_result(line: &str) -> Option<BTreeMap<String, String>> {
    let rest = line.strip_prefix("RESULT ")?;
    Some(
        rest.split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    )
}

/// Pins the calling thread (and the process, if single-threaded) to `cpu`, as `taskset -c`.
/// Errors are returned, not fatal: a machine with one CPU still runs the benchmark.
pub fn pin_to_cpu(cpu: usize) -> std::io::Result<()> {
    // SAFETY: cpu_set_t is a plain bit set; CPU_ZERO/CPU_SET only write inside it, and
    // sched_setaffinity reads `size_of::<cpu_set_t>()` bytes of it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
