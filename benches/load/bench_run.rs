//! The benchmark driver behind `make bench`, `make bench-compare`, `make bench-memory` and
//! `make bench-smoke` (see BENCHMARKS.md).
//!
//! ```text
//! bench_run bench    [options]   opentracker-rs alone: UDP mix, HTTP close, HTTP keep-alive
//! bench_run compare  [options]   the same scenarios against opentracker-rs AND opentracker,
//!                                alternating them, with the ratio ours/opentracker
//! bench_run memory   [options]   bytes per peer for 2,000x100, 20,000x10, 200,000x1 (both)
//! bench_run smoke    [options]   each load generator for 2 s against opentracker-rs, and 1 s
//!                                against floor_server; exit 1 unless every run got answers and
//!                                no errors
//! bench_run fullscrape [options] opentracker-rs with --fs-torrents (1,000,000) torrents: full
//!                                scrapes (plain, gzip) while UDP announces go on; the announces'
//!                                worst latency bounds how long the loop was blocked
//! bench_run floor    [options]   the UDP mix and HTTP close against floor_server (constant
//!                                replies, no state; `mmsg`, and `single` for UDP only),
//!                                opentracker-rs and opentracker, alternating, with the ratios
//!                                to opentracker: what the kernel leaves to win in user space
//! bench_run scale    [options]   the UDP mix and HTTP keep-alive against opentracker-rs with
//!                                each worker count of --workers (1,2), tracker and load
//!                                generator UNPINNED, with responses per tracker-CPU-second and
//!                                the ratios to the first count (issue #11); a count above 1
//!                                needs `tracker.workers` in the build (else it is skipped and
//!                                said so); exit 1 if a run had errors or no responses
//!
//! options: --bin-dir DIR          opentracker-rs and examples/ (default: next to this binary)
//!          --opentracker PATH     default /usr/bin/opentracker
//!          --tracker-cpu 0 --load-cpu 1 | --no-pin
//!          --duration 10 --warmup 2 --rounds 1
//!          --only udp,http-close,http-keepalive
//!          --ours-whitelist auto|on|off  give opentracker-rs the same whitelist: `auto` does
//!                                when `opentracker-rs --check-config` accepts access.whitelist
//!          --torrents 10000 --peers 100000 --connections 64 --sockets 16 --window 8
//!          --shapes 2000x100,20000x10,200000x1 --fill-order rounds|torrents|random (memory)
//!          --fs-torrents 1000000 (fullscrape)
//!          --workers N            write `tracker.workers N` into opentracker-rs's config
//!                                (scale: a list, default 1,2)
//!          --ours-config 'LINE;LINE'  more lines for opentracker-rs's config (`;` separates
//!                                them), e.g. `udp.steer_by_info_hash off`
//! ```
//!
//! Each tracker runs pinned to one CPU (`taskset -c`), each load generator to the other. For
//! every run the driver reads the tracker's utime+stime from `/proc/PID/stat` before and after,
//! so it reports responses per second AND responses per second of tracker CPU time: on a
//! 2-core machine the load generator may saturate first, and the second figure is then the
//! fair one. Both trackers serve the same info_hashes: opentracker (Debian's build is
//! IPv4-only and whitelist-only) gets a whitelist generated from the benchmark's info_hashes,
//! and a config under a temp dir.

#[path = "common.rs"]
mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::Opts;
use opentracker_rs::types::Event;
use opentracker_rs::wire::udp::{
    AnnounceOptions, AnnounceRequest, ConnectRequest, Response, parse_response,
};

type Result<T> = std::result::Result<T, String>;

/// Seed of the benchmark's info_hashes (the whitelist is generated from it).
const SEED: u64 = 1;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Ours,
    Opentracker,
    /// `floor_server --udp-mode mmsg` (bench_run floor).
    FloorMmsg,
    /// `floor_server --udp-mode single` (bench_run floor, UDP only).
    FloorSingle,
}

impl Which {
    fn name(self) -> &'static str {
        match self {
            Which::Ours => "opentracker-rs",
            Which::Opentracker => "opentracker",
            Which::FloorMmsg => "floor (mmsg)",
            Which::FloorSingle => "floor (single)",
        }
    }
}

/// Which trackers `scenarios` runs, and how it sums them up.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Bench,
    Compare,
    Floor,
}

struct Settings {
    bin_dir: PathBuf,
    examples: PathBuf,
    opentracker: PathBuf,
    tracker_cpu: Option<usize>,
    load_cpu: Option<usize>,
    duration: f64,
    warmup: f64,
    rounds: usize,
    only: Vec<String>,
    ours_whitelist: String,
    torrents: u64,
    peers: u64,
    connections: usize,
    sockets: usize,
    window: usize,
    shapes: Vec<(u64, u64)>,
    fill_order: String,
    fs_torrents: u64,
    /// `--workers`: `tracker.workers` values (empty: the directive is not written).
    workers: Vec<usize>,
    /// `--ours-config`: more lines for opentracker-rs's config, each ending with a newline.
    ours_config: String,
}

/// A running tracker.
struct Tracker {
    which: Which,
    child: Child,
    udp: SocketAddr,
    http: SocketAddr,
    _dir: TempDir,
    whitelisted: bool,
}

impl Drop for Tracker {
    fn drop(&mut self) {
        // SIGINT: opentracker's clean stop (SIGTERM has no handler there); ours handles both.
        // SAFETY: kill() with our own child's pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Result<TempDir> {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("otrs-bench-{}-{name}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        // opentracker drops privileges to `nobody` when started as root: it must read the
        // whitelist after that.
        set_mode(&dir, 0o755);
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}

fn main() {
    match run() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("bench_run: {e}");
            std::process::exit(2);
        }
    }
}

fn run() -> Result<i32> {
    let o = Opts::from_env(&["no-pin"])?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let examples = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    let default_bin = examples.parent().map(Path::to_path_buf).unwrap_or_default();
    let bin_dir = o
        .get_str("bin-dir")
        .map(PathBuf::from)
        .unwrap_or(default_bin);
    let cmd = o.positional.first().cloned().unwrap_or_default();
    // `scale` runs unpinned: the workers of a tracker must have every CPU to spread over.
    let pin = !o.flag("no-pin") && cmd != "scale";
    let s = Settings {
        examples: bin_dir.join("examples"),
        bin_dir,
        opentracker: o
            .get_str("opentracker")
            .unwrap_or_else(|| "/usr/bin/opentracker".into())
            .into(),
        tracker_cpu: pin.then(|| o.get("tracker-cpu", 0usize)).transpose()?,
        load_cpu: pin.then(|| o.get("load-cpu", 1usize)).transpose()?,
        duration: o.get("duration", 10.0)?,
        warmup: o.get("warmup", 2.0)?,
        rounds: o.get("rounds", 1usize)?.max(1),
        only: o
            .get_str("only")
            .map(|v| v.split(',').map(str::to_owned).collect())
            .unwrap_or_default(),
        ours_whitelist: o.get_str("ours-whitelist").unwrap_or_else(|| "auto".into()),
        torrents: o.get("torrents", 10_000)?,
        peers: o.get("peers", 100_000)?,
        connections: o.get("connections", 64)?,
        sockets: o.get("sockets", 16)?,
        window: o.get("window", 8)?,
        fill_order: o.get_str("fill-order").unwrap_or_else(|| "rounds".into()),
        ours_config: o
            .get_str("ours-config")
            .unwrap_or_default()
            .split(';')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| format!("{l}\n"))
            .collect(),
        fs_torrents: o.get("fs-torrents", 1_000_000)?,
        workers: match o.get_str("workers") {
            None => Vec::new(),
            Some(v) => v
                .split(',')
                .map(|w| match w.trim().parse::<usize>() {
                    Ok(n) if n >= 1 => Ok(n),
                    _ => Err(format!("--workers: {w:?} is not a count of at least 1")),
                })
                .collect::<Result<_>>()?,
        },
        shapes: parse_shapes(
            &o.get_str("shapes")
                .unwrap_or_else(|| "2000x100,20000x10,200000x1".into()),
        )?,
    };
    o.finish()?;
    if pin && cmd != "smoke" {
        check_taskset()?;
    }
    match cmd.as_str() {
        "bench" => scenarios(&s, Mode::Bench),
        "compare" => scenarios(&s, Mode::Compare),
        "floor" => scenarios(&s, Mode::Floor),
        "memory" => memory(&s),
        "smoke" => smoke(&s),
        "fullscrape" => fullscrape(&s),
        "scale" => scale(&s),
        _ => Err(
            "usage: bench_run bench|compare|floor|memory|smoke|fullscrape|scale [options] (see the source's header)"
                .into(),
        ),
    }
}

fn parse_shapes(v: &str) -> Result<Vec<(u64, u64)>> {
    v.split(',')
        .map(|s| {
            let (t, n) = s
                .split_once('x')
                .ok_or_else(|| format!("--shapes: {s:?} is not TxN"))?;
            Ok((
                t.trim()
                    .parse()
                    .map_err(|_| format!("--shapes: bad {t:?}"))?,
                n.trim()
                    .parse()
                    .map_err(|_| format!("--shapes: bad {n:?}"))?,
            ))
        })
        .collect()
}

fn check_taskset() -> Result<()> {
    match Command::new("taskset")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => Ok(()),
        Err(_) => Err("taskset not found (Debian: util-linux); or run with --no-pin".into()),
    }
}

/// `taskset -c CPU program` when pinning, else `program`.
fn pinned(cpu: Option<usize>, program: &Path) -> Command {
    match cpu {
        Some(c) => {
            let mut cmd = Command::new("taskset");
            cmd.arg("-c").arg(c.to_string()).arg(program);
            cmd
        }
        None => Command::new(program),
    }
}

// ---------------------------------------------------------------------------------------------
// Starting trackers
// ---------------------------------------------------------------------------------------------

/// Writes the whitelist of torrents `0..torrents` into `dir`.
fn write_whitelist(dir: &Path, torrents: u64) -> Result<PathBuf> {
    let path = dir.join("whitelist.txt");
    std::fs::write(&path, common::whitelist_text(SEED, torrents))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    set_mode(&path, 0o644);
    Ok(path)
}

/// Whether this opentracker-rs build accepts `access.whitelist` (`--check-config`).
fn ours_supports_whitelist(s: &Settings) -> Result<bool> {
    let dir = TempDir::new("check")?;
    let wl = write_whitelist(&dir.0, 1)?;
    let conf = dir.0.join("check.conf");
    std::fs::write(
        &conf,
        format!(
            "listen.tcp_udp 127.0.0.1:0\naccess.whitelist {}\n",
            wl.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let st = Command::new(s.bin_dir.join("opentracker-rs"))
        .arg("-f")
        .arg(&conf)
        .arg("--check-config")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("{}: {e}", s.bin_dir.join("opentracker-rs").display()))?;
    Ok(st.success())
}

/// Whether this opentracker-rs build accepts `tracker.workers 2` (`--check-config`).
fn ours_supports_workers(s: &Settings) -> Result<bool> {
    let dir = TempDir::new("check-workers")?;
    let conf = dir.0.join("check.conf");
    std::fs::write(&conf, "listen.tcp_udp 127.0.0.1:0\ntracker.workers 2\n")
        .map_err(|e| e.to_string())?;
    let st = Command::new(s.bin_dir.join("opentracker-rs"))
        .arg("-f")
        .arg(&conf)
        .arg("--check-config")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("{}: {e}", s.bin_dir.join("opentracker-rs").display()))?;
    Ok(st.success())
}

/// The `tracker.workers` value of the commands other than `scale` (the first of --workers),
/// after checking that the build accepts the directive.
fn workers_option(s: &Settings) -> Result<Option<usize>> {
    match s.workers.first() {
        None => Ok(None),
        Some(&n) if ours_supports_workers(s)? => Ok(Some(n)),
        Some(_) => Err(
            "--workers: this opentracker-rs build refuses tracker.workers (see --check-config)"
                .into(),
        ),
    }
}

fn ours_whitelist(s: &Settings) -> Result<bool> {
    match s.ours_whitelist.as_str() {
        "on" => Ok(true),
        "off" => Ok(false),
        "auto" => ours_supports_whitelist(s),
        other => Err(format!(
            "--ours-whitelist: {other:?} is not auto, on or off"
        )),
    }
}

fn start(s: &Settings, which: Which, torrents: u64, whitelist: bool) -> Result<Tracker> {
    match which {
        Which::Ours => start_ours(s, torrents, whitelist, workers_option(s)?),
        Which::Opentracker => start_opentracker(s, torrents),
        Which::FloorMmsg => start_floor(s, which, "mmsg"),
        Which::FloorSingle => start_floor(s, which, "single"),
    }
}

/// Reads `listening: udp ADDR` and `listening: http ADDR` lines from `out` (a tracker's log or
/// floor_server's stdout) for up to 20 s, then keeps draining it so the child never blocks on
/// a full pipe. Kills `child` when they do not come.
fn listening(
    child: &mut Child,
    out: impl std::io::Read + Send + 'static,
    name: &str,
) -> Result<(SocketAddr, SocketAddr)> {
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(|l| l.ok()) {
            let _ = tx.send(line);
        }
    });
    let (mut http, mut udp) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(20);
    while http.is_none() || udp.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).map_err(|_| {
            let _ = child.kill();
            format!("{name} did not start (no `listening:` lines within 20 s)")
        })?;
        if let Some(a) = line.split("listening: http ").nth(1) {
            http = a.trim().parse().ok();
        } else if let Some(a) = line.split("listening: udp ").nth(1) {
            udp = a.trim().parse().ok();
        }
    }
    std::thread::spawn(move || while rx.recv().is_ok() {});
    Ok((udp.ok_or("no udp address")?, http.ok_or("no http address")?))
}

/// floor_server (an example) on ports chosen by the kernel.
fn start_floor(s: &Settings, which: Which, udp_mode: &str) -> Result<Tracker> {
    let bin = s.examples.join("floor_server");
    let mut child = pinned(s.tracker_cpu, &bin)
        .args([
            "--udp",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--udp-mode",
            udp_mode,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (udp, http) = listening(&mut child, stdout, which.name())?;
    let t = Tracker {
        which,
        child,
        udp,
        http,
        _dir: TempDir::new("floor")?,
        whitelisted: false,
    };
    wait_ready(&t, 1)?;
    Ok(t)
}

/// opentracker-rs with a generated config; `workers`: the `tracker.workers` line, if any.
fn start_ours(
    s: &Settings,
    torrents: u64,
    whitelist: bool,
    workers: Option<usize>,
) -> Result<Tracker> {
    let dir = TempDir::new("ours")?;
    // The load generators send from one address: the per-source quotas (issue #13) would
    // refuse or drop nearly all of it, so they are off here; and full scrapes go without the
    // per-address interval (the fullscrape scenario sends several).
    let mut conf = String::from(
        "listen.tcp_udp 127.0.0.1:0\nudp.rate_limit 0\ntracker.max_new_torrents_per_net 0\n\
         tracker.max_peers_per_source 0\ntracker.fullscrape_interval 0\n",
    );
    if let Some(n) = workers {
        conf.push_str(&format!("tracker.workers {n}\n"));
    }
    conf.push_str(&s.ours_config);
    // SAFETY: geteuid has no preconditions. As root the tracker refuses to serve without a
    // user to switch to; the benchmark does not care about privileges, so it allows root.
    if unsafe { libc::geteuid() } == 0 {
        conf.push_str("tracker.allow_root on\n");
    }
    if whitelist {
        let wl = write_whitelist(&dir.0, torrents)?;
        conf.push_str(&format!("access.whitelist {}\n", wl.display()));
    }
    let path = dir.0.join("opentracker-rs.conf");
    std::fs::write(&path, conf).map_err(|e| e.to_string())?;
    let bin = s.bin_dir.join("opentracker-rs");
    let mut child = pinned(s.tracker_cpu, &bin)
        .arg("-f")
        .arg(&path)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let (udp, http) = listening(&mut child, stderr, "opentracker-rs")?;
    let t = Tracker {
        which: Which::Ours,
        child,
        udp,
        http,
        _dir: dir,
        whitelisted: whitelist,
    };
    wait_ready(&t, torrents)?;
    Ok(t)
}

fn free_port() -> Result<u16> {
    for _ in 0..50 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = l.local_addr().map_err(|e| e.to_string())?.port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err("no free port pair".into())
}

fn start_opentracker(s: &Settings, torrents: u64) -> Result<Tracker> {
    if !s.opentracker.exists() {
        return Err(format!(
            "{} not found: install Debian's package (apt-get install opentracker; `make bench-compare` does)",
            s.opentracker.display()
        ));
    }
    let dir = TempDir::new("ot")?;
    let wl = write_whitelist(&dir.0, torrents)?;
    let port = free_port()?;
    let conf = dir.0.join("opentracker.conf");
    // Debian's build: IPv4 only, whitelist only (so the whitelist is required), /stats only
    // for blessed addresses.
    std::fs::write(
        &conf,
        format!(
            "listen.tcp_udp 127.0.0.1:{port}\naccess.whitelist {}\naccess.stats 127.0.0.1\n",
            wl.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    set_mode(&conf, 0o644);
    let log = std::fs::File::create(dir.0.join("opentracker.log")).map_err(|e| e.to_string())?;
    let child = pinned(s.tracker_cpu, &s.opentracker)
        .arg("-f")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("{}: {e}", s.opentracker.display()))?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let t = Tracker {
        which: Which::Opentracker,
        child,
        udp: addr,
        http: addr,
        _dir: dir,
        whitelisted: true,
    };
    wait_ready(&t, torrents)?;
    Ok(t)
}

/// Waits until the tracker answers a UDP announce for the LAST whitelisted info_hash with a
/// real reply (opentracker loads its whitelist in a thread after start; until then it answers
/// 8 bytes), then removes that probe peer again (`stopped`).
fn wait_ready(t: &Tracker, torrents: u64) -> Result<()> {
    let sock = UdpSocket::bind("127.0.0.250:0").map_err(|e| format!("bind probe: {e}"))?;
    sock.connect(t.udp).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(|e| e.to_string())?;
    let hash = common::info_hash(SEED, torrents.max(1) - 1);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut buf = [0u8; 2048];
    let mut out = Vec::new();
    let mut connection_id = None;
    while Instant::now() < deadline {
        out.clear();
        match connection_id {
            None => {
                ConnectRequest { transaction_id: 7 }.emit(&mut out);
            }
            Some(id) => {
                probe_announce(id, hash, Event::Started).emit(&mut out);
            }
        }
        let _ = sock.send(&out);
        if let Ok(n) = sock.recv(&mut buf) {
            match parse_response(&buf[..n]) {
                Ok(Response::Connect(c)) => connection_id = Some(c.connection_id),
                Ok(Response::Announce(_)) => {
                    out.clear();
                    probe_announce(connection_id.unwrap_or(0), hash, Event::Stopped).emit(&mut out);
                    let _ = sock.send(&out);
                    let _ = sock.recv(&mut buf);
                    return Ok(());
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
    Err(format!(
        "{} did not answer announces within 60 s",
        t.which.name()
    ))
}

fn probe_announce(
    connection_id: u64,
    info_hash: [u8; 20],
    event: Event,
) -> AnnounceRequest<'static> {
    AnnounceRequest {
        connection_id,
        transaction_id: 8,
        info_hash,
        peer_id: *b"-LG0001-probeprobe00",
        downloaded: 0,
        left: 1,
        uploaded: 0,
        event,
        ip: std::net::Ipv4Addr::UNSPECIFIED,
        key: 0,
        num_want: 0,
        port: 1,
        options: AnnounceOptions::EMPTY,
    }
}

// ---------------------------------------------------------------------------------------------
// /proc
// ---------------------------------------------------------------------------------------------

/// utime + stime of `pid` (all threads) in seconds.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // Fields after the command name (which may hold spaces) start at field 3 (state).
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or("bad /proc stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11).and_then(|v| v.parse().ok()).ok_or("no utime")?;
    let stime: f64 = f.get(12).and_then(|v| v.parse().ok()).ok_or("no stime")?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok((utime + stime) / hz)
}

/// (VmRSS, RssAnon) of `pid` in kB.
fn rss_kb(pid: u32) -> Result<(u64, u64)> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("RssAnon:")))
}

// ---------------------------------------------------------------------------------------------
// Load generator runs
// ---------------------------------------------------------------------------------------------

struct Run {
    result: BTreeMap<String, String>,
    summary: String,
    cpu: f64,
    wall: f64,
}

impl Run {
    fn num(&self, key: &str) -> f64 {
        self.result
            .get(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }
}

/// Runs a load generator (`udp_load` or `http_load`) against `t`, measuring the tracker's CPU.
fn load(s: &Settings, t: &Tracker, program: &str, args: &[String]) -> Result<Run> {
    let bin = s.examples.join(program);
    let cpu0 = cpu_seconds(t.child.id())?;
    let t0 = Instant::now();
    let out = pinned(s.load_cpu, &bin)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds(t.child.id())? - cpu0;
    let text = String::from_utf8_lossy(&out.stdout);
    let result = text.lines().find_map(common::parse_result).ok_or_else(|| {
        format!(
            "{program} printed no RESULT line (exit {}): {text}",
            out.status
        )
    })?;
    let summary = text
        .lines()
        .find(|l| !l.starts_with("RESULT"))
        .unwrap_or("")
        .to_owned();
    if !out.status.success() {
        return Err(format!("{program} failed ({}): {summary}", out.status));
    }
    Ok(Run {
        result,
        summary,
        cpu,
        wall,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Udp,
    HttpClose,
    HttpKeepalive,
}

impl Scenario {
    const ALL: [Scenario; 3] = [Scenario::Udp, Scenario::HttpClose, Scenario::HttpKeepalive];

    fn key(self) -> &'static str {
        match self {
            Scenario::Udp => "udp",
            Scenario::HttpClose => "http-close",
            Scenario::HttpKeepalive => "http-keepalive",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Scenario::Udp => "UDP announce+scrape (100:1)",
            Scenario::HttpClose => "HTTP announce, one per connection",
            Scenario::HttpKeepalive => "HTTP announce, keep-alive",
        }
    }
}

fn model_args(s: &Settings, t: &Tracker, duration: f64) -> Vec<String> {
    vec![
        "--target".into(),
        t.udp.to_string(),
        "--duration".into(),
        duration.to_string(),
        "--seed".into(),
        SEED.to_string(),
        "--torrents".into(),
        s.torrents.to_string(),
        "--peers".into(),
        s.peers.to_string(),
    ]
}

fn scenario_run(s: &Settings, t: &Tracker, sc: Scenario, duration: f64) -> Result<Run> {
    let mut args = model_args(s, t, duration);
    match sc {
        Scenario::Udp => {
            args.extend([
                "--sockets".into(),
                s.sockets.to_string(),
                "--window".into(),
                s.window.to_string(),
            ]);
            load(s, t, "udp_load", &args)
        }
        Scenario::HttpClose | Scenario::HttpKeepalive => {
            args[1] = t.http.to_string();
            args.extend(["--connections".into(), s.connections.to_string()]);
            if sc == Scenario::HttpKeepalive {
                args.push("--keepalive".into());
            }
            load(s, t, "http_load", &args)
        }
    }
}

struct Figures {
    rps: f64,
    per_cpu: f64,
    cpu_share: f64,
    errors: f64,
    timeouts: f64,
    p50: f64,
    p99: f64,
}

fn figures(r: &Run) -> Figures {
    let responses = r.num("responses");
    Figures {
        rps: r.num("rps"),
        per_cpu: if r.cpu > 0.0 { responses / r.cpu } else { 0.0 },
        cpu_share: r.cpu / r.wall.max(1e-9),
        errors: r.num("errors"),
        timeouts: r.num("timeouts"),
        p50: r.num("p50_us"),
        p99: r.num("p99_us"),
    }
}

fn fmt_k(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1}k", v / 1000.0)
    } else {
        format!("{v:.0}")
    }
}

fn print_row(sc: Scenario, which: Which, f: &Figures) {
    println!(
        "{:<36} {:<15} {:>10}/s {:>12}/CPU-s  tracker CPU {:>4.0}%  errors {:<4} timeouts {:<4} p50 {:>6} us  p99 {:>6} us",
        sc.title(),
        which.name(),
        fmt_k(f.rps),
        fmt_k(f.per_cpu),
        f.cpu_share * 100.0,
        f.errors,
        f.timeouts,
        f.p50,
        f.p99
    );
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

fn scenarios(s: &Settings, mode: Mode) -> Result<i32> {
    let whitelist = ours_whitelist(s)?;
    let order = match mode {
        Mode::Bench => vec![Which::Ours],
        Mode::Compare => vec![Which::Ours, Which::Opentracker],
        Mode::Floor => vec![
            Which::FloorMmsg,
            Which::FloorSingle,
            Which::Ours,
            Which::Opentracker,
        ],
    };
    // The floor serves HTTP one way whatever its UDP mode, and keep-alive is not its question.
    let floor_skips = |w: Which, sc: Scenario| {
        mode == Mode::Floor
            && (sc == Scenario::HttpKeepalive || (w == Which::FloorSingle && sc != Scenario::Udp))
    };
    println!(
        "# {} torrents (Zipf 1.0), {} simulated peers, {} s per run, {} round(s); tracker on CPU {}, load on CPU {}",
        s.torrents,
        s.peers,
        s.duration,
        s.rounds,
        s.tracker_cpu.map_or("any".into(), |c| c.to_string()),
        s.load_cpu.map_or("any".into(), |c| c.to_string())
    );
    println!(
        "# opentracker-rs {} the whitelist{}",
        if whitelist { "gets" } else { "runs WITHOUT" },
        if whitelist {
            ""
        } else {
            " (this build refuses access.whitelist; opentracker checks every announce against it)"
        }
    );
    if mode == Mode::Floor {
        println!(
            "# floor_server: constant replies, no state, only the action read (a lower bound of a tracker's user-space work); mmsg: 64 datagrams per recvmmsg/sendmmsg, single: recvfrom+sendto per datagram"
        );
    }
    let mut trackers = Vec::new();
    for &w in &order {
        let t = start(s, w, s.torrents, w == Which::Opentracker || whitelist)?;
        // Warm-up: fill the swarms through UDP so every scenario sees the same populated store.
        if s.warmup > 0.0 {
            let r = scenario_run(s, &t, Scenario::Udp, s.warmup)?;
            println!("# warm-up {:<15} {}", w.name(), r.summary);
        }
        trackers.push(t);
    }
    let mut table: Vec<(Scenario, Vec<(Which, Figures)>)> = Vec::new();
    let mut failed = false;
    for sc in Scenario::ALL {
        if !s.only.is_empty() && !s.only.iter().any(|o| o == sc.key()) {
            continue;
        }
        if order.iter().all(|&w| floor_skips(w, sc)) {
            continue;
        }
        let mut per: Vec<(Which, Vec<Figures>)> = order.iter().map(|&w| (w, Vec::new())).collect();
        for round in 0..s.rounds {
            // Alternate which tracker goes first from round to round.
            let mut idx: Vec<usize> = (0..trackers.len()).collect();
            if round % 2 == 1 {
                idx.reverse();
            }
            for i in idx {
                let t = &trackers[i];
                if floor_skips(t.which, sc) {
                    continue;
                }
                let r = scenario_run(s, t, sc, s.duration)?;
                let f = figures(&r);
                if f.errors > 0.0 || f.rps == 0.0 {
                    failed = true;
                }
                print_row(sc, t.which, &f);
                println!("    {}", r.summary);
                per[i].1.push(f);
            }
        }
        let med: Vec<(Which, Figures)> = per
            .into_iter()
            .filter(|(_, fs)| !fs.is_empty())
            .map(|(w, fs)| {
                (
                    w,
                    Figures {
                        rps: median(fs.iter().map(|f| f.rps).collect()),
                        per_cpu: median(fs.iter().map(|f| f.per_cpu).collect()),
                        cpu_share: median(fs.iter().map(|f| f.cpu_share).collect()),
                        errors: fs.iter().map(|f| f.errors).sum(),
                        timeouts: fs.iter().map(|f| f.timeouts).sum(),
                        p50: median(fs.iter().map(|f| f.p50).collect()),
                        p99: median(fs.iter().map(|f| f.p99).collect()),
                    },
                )
            })
            .collect();
        table.push((sc, med));
    }
    println!();
    if mode == Mode::Floor {
        floor_table(&table);
    } else if mode == Mode::Compare {
        println!(
            "{:<36} {:>14} {:>14} {:>12} {:>14}",
            "scenario", "ours resp/s", "ot resp/s", "ratio resp/s", "ratio resp/CPU-s"
        );
        for (sc, med) in &table {
            let (ours, ot) = (&med[0].1, &med[1].1);
            println!(
                "{:<36} {:>14} {:>14} {:>11.2}x {:>15.2}x",
                sc.title(),
                fmt_k(ours.rps),
                fmt_k(ot.rps),
                ours.rps / ot.rps.max(1e-9),
                ours.per_cpu / ot.per_cpu.max(1e-9)
            );
        }
    } else {
        println!("{:<36} {:>14} {:>16}", "scenario", "resp/s", "resp/CPU-s");
        for (sc, med) in &table {
            println!(
                "{:<36} {:>14} {:>16}",
                sc.title(),
                fmt_k(med[0].1.rps),
                fmt_k(med[0].1.per_cpu)
            );
        }
    }
    if failed {
        println!("# WARNING: some runs had errors or no responses (see rows above)");
    }
    Ok(0)
}

/// `bench_run scale` (issue #11): opentracker-rs with each worker count of `--workers`
/// (default 1,2), tracker and load generator unpinned, the UDP mix and HTTP keep-alive;
/// responses per second of the tracker's CPU time (all its threads, `/proc/PID/stat`) for
/// each, and the ratio to the first count. The target of the issue: 2 workers within 10% of
/// 1 worker's responses per CPU-second. A count above 1 needs `tracker.workers` (checked with
/// `--check-config`); without it that count is skipped, and a count of 1 runs without the
/// directive (the default). Exit 1 when a run had errors or no responses.
fn scale(s: &Settings) -> Result<i32> {
    let whitelist = ours_whitelist(s)?;
    let supported = ours_supports_workers(s)?;
    let counts = if s.workers.is_empty() {
        vec![1, 2]
    } else {
        s.workers.clone()
    };
    println!(
        "# {} torrents (Zipf 1.0), {} simulated peers, {} s per run, {} round(s); tracker and load generator unpinned ({} CPUs)",
        s.torrents,
        s.peers,
        s.duration,
        s.rounds,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "# opentracker-rs {} the whitelist; this build {} tracker.workers",
        if whitelist { "gets" } else { "runs WITHOUT" },
        if supported { "accepts" } else { "REFUSES" }
    );
    let mut trackers: Vec<(usize, Tracker)> = Vec::new();
    for &n in &counts {
        let directive = if supported {
            Some(n)
        } else if n == 1 {
            None
        } else {
            println!(
                "# {n} workers: cannot run, this opentracker-rs build has no tracker.workers (issue #11)"
            );
            continue;
        };
        let t = start_ours(s, s.torrents, whitelist, directive)?;
        if s.warmup > 0.0 {
            let r = scenario_run(s, &t, Scenario::Udp, s.warmup)?;
            println!("# warm-up {n} worker(s): {}", r.summary);
        }
        trackers.push((n, t));
    }
    let mut failed = false;
    let mut table: Vec<(Scenario, Vec<(usize, Figures)>)> = Vec::new();
    for sc in [Scenario::Udp, Scenario::HttpKeepalive] {
        if !s.only.is_empty() && !s.only.iter().any(|o| o == sc.key()) {
            continue;
        }
        let mut per: Vec<Vec<Figures>> = trackers.iter().map(|_| Vec::new()).collect();
        for round in 0..s.rounds {
            let mut idx: Vec<usize> = (0..trackers.len()).collect();
            if round % 2 == 1 {
                idx.reverse();
            }
            for i in idx {
                let (n, t) = &trackers[i];
                let r = scenario_run(s, t, sc, s.duration)?;
                let f = figures(&r);
                if f.errors > 0.0 || f.rps == 0.0 {
                    failed = true;
                }
                println!(
                    "{:<36} {n} worker(s) {:>10}/s {:>12}/CPU-s  tracker CPU {:>4.0}%  errors {:<4} timeouts {:<4} p50 {:>6} us  p99 {:>6} us",
                    sc.title(),
                    fmt_k(f.rps),
                    fmt_k(f.per_cpu),
                    f.cpu_share * 100.0,
                    f.errors,
                    f.timeouts,
                    f.p50,
                    f.p99
                );
                println!("    {}", r.summary);
                per[i].push(f);
            }
        }
        let med = per
            .into_iter()
            .zip(trackers.iter().map(|(n, _)| *n))
            .map(|(fs, n)| {
                (
                    n,
                    Figures {
                        rps: median(fs.iter().map(|f| f.rps).collect()),
                        per_cpu: median(fs.iter().map(|f| f.per_cpu).collect()),
                        cpu_share: median(fs.iter().map(|f| f.cpu_share).collect()),
                        errors: fs.iter().map(|f| f.errors).sum(),
                        timeouts: fs.iter().map(|f| f.timeouts).sum(),
                        p50: median(fs.iter().map(|f| f.p50).collect()),
                        p99: median(fs.iter().map(|f| f.p99).collect()),
                    },
                )
            })
            .collect();
        table.push((sc, med));
    }
    println!();
    println!(
        "{:<36} {:>8} {:>12} {:>14} {:>6} {:>12} {:>16}",
        "scenario", "workers", "resp/s", "resp/CPU-s", "CPU", "x resp/s", "x resp/CPU-s"
    );
    for (sc, med) in &table {
        let Some((_, base)) = med.first() else {
            continue;
        };
        for (n, f) in med {
            println!(
                "{:<36} {:>8} {:>12} {:>14} {:>5.0}% {:>11.2}x {:>15.2}x",
                sc.title(),
                n,
                fmt_k(f.rps),
                fmt_k(f.per_cpu),
                f.cpu_share * 100.0,
                f.rps / base.rps.max(1e-9),
                f.per_cpu / base.per_cpu.max(1e-9)
            );
        }
    }
    println!(
        "# target (issue #11): with 2 workers, responses per tracker-CPU-second within 10% of 1 worker's (x resp/CPU-s >= 0.90)"
    );
    if failed {
        println!("# WARNING: some runs had errors or no responses (see rows above)");
        return Ok(1);
    }
    Ok(0)
}

/// `bench_run floor`'s summary: per scenario and server, the medians and the ratios to
/// opentracker.
fn floor_table(table: &[(Scenario, Vec<(Which, Figures)>)]) {
    println!(
        "{:<36} {:<15} {:>10} {:>12} {:>5} {:>13} {:>15}",
        "scenario", "server", "resp/s", "resp/CPU-s", "CPU", "x ot resp/s", "x ot resp/CPU-s"
    );
    for (sc, med) in table {
        let ot = med
            .iter()
            .find(|(w, _)| *w == Which::Opentracker)
            .map(|m| &m.1);
        for (w, f) in med {
            let ratio = |a: f64, b: Option<f64>| {
                b.map_or("-".into(), |b| format!("{:.2}x", a / b.max(1e-9)))
            };
            println!(
                "{:<36} {:<15} {:>10} {:>12} {:>4.0}% {:>13} {:>15}",
                sc.title(),
                w.name(),
                fmt_k(f.rps),
                fmt_k(f.per_cpu),
                f.cpu_share * 100.0,
                ratio(f.rps, ot.map(|o| o.rps)),
                ratio(f.per_cpu, ot.map(|o| o.per_cpu))
            );
        }
        if let Some(ot) = ot {
            println!(
                "{:<36} 2x opentracker per CPU-s = {} resp/CPU-s",
                sc.title(),
                fmt_k(2.0 * ot.per_cpu)
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Memory
// ---------------------------------------------------------------------------------------------

fn memory(s: &Settings) -> Result<i32> {
    let whitelist = ours_whitelist(s)?;
    let mut order = vec![Which::Ours];
    if s.opentracker.exists() {
        order.push(Which::Opentracker);
    } else {
        println!(
            "# {} not found: measuring opentracker-rs only",
            s.opentracker.display()
        );
    }
    println!(
        "# memory per peer: fresh tracker per shape, warmed with 1 s of connects, filled over UDP (numwant 0, 1/3 seeders, fill order {}); (VmRSS after - VmRSS before) / peers; opentracker-rs {} the whitelist",
        s.fill_order,
        if whitelist { "gets" } else { "runs without" }
    );
    let mut rows = Vec::new();
    let mut failed = false;
    for &(torrents, per) in &s.shapes {
        let mut row = Vec::new();
        for &w in &order {
            let t = start(s, w, torrents, w == Which::Opentracker || whitelist)?;
            // Warm-up with connects only (no peer is stored): every receive and reply buffer
            // the tracker allocated up front gets touched now, not during the fill, so the
            // delta is the store's growth alone.
            let warm: Vec<String> = vec![
                "--target".into(),
                t.udp.to_string(),
                "--connect-only".into(),
                "--duration".into(),
                "1".into(),
                "--peers".into(),
                "10000".into(),
                "--torrents".into(),
                "1".into(),
                "--sockets".into(),
                "16".into(),
                "--window".into(),
                "64".into(),
            ];
            load(s, &t, "udp_load", &warm)?;
            std::thread::sleep(Duration::from_millis(500));
            let (before, anon_before) = rss_kb(t.child.id())?;
            let args: Vec<String> = vec![
                "--target".into(),
                t.udp.to_string(),
                "--fill".into(),
                "--seed".into(),
                SEED.to_string(),
                "--torrents".into(),
                torrents.to_string(),
                "--peers-per-torrent".into(),
                per.to_string(),
                "--sockets".into(),
                s.sockets.to_string(),
                "--window".into(),
                s.window.to_string(),
                "--fill-order".into(),
                s.fill_order.clone(),
            ];
            let r = load(s, &t, "udp_load", &args)?;
            std::thread::sleep(Duration::from_secs(1));
            let (after, anon_after) = rss_kb(t.child.id())?;
            let peers = torrents * per;
            let scraped = r.num("peers_scraped") as u64;
            if scraped != peers {
                failed = true;
            }
            let bpp = (after.saturating_sub(before) * 1024) as f64 / peers as f64;
            println!(
                "{:>7} x {:<4} {:<15} VmRSS {:>7} -> {:>7} kB (RssAnon {:>7} -> {:>7} kB)  {:>6.1} bytes/peer  (tracker holds {scraped} of {peers} peers{})",
                torrents,
                per,
                w.name(),
                before,
                after,
                anon_before,
                anon_after,
                bpp,
                if t.whitelisted {
                    ", whitelist loaded"
                } else {
                    ""
                }
            );
            row.push((w, bpp));
            drop(t);
        }
        rows.push(((torrents, per), row));
    }
    println!();
    for ((torrents, per), row) in &rows {
        let cells: Vec<String> = row
            .iter()
            .map(|(w, b)| format!("{} {b:.1} B/peer", w.name()))
            .collect();
        let ratio = if row.len() == 2 {
            format!("  (ours/ot {:.2})", row[0].1 / row[1].1.max(1e-9))
        } else {
            String::new()
        };
        println!("{torrents:>7} x {per:<4} {}{ratio}", cells.join("   "));
    }
    if failed {
        println!("# WARNING: a tracker did not hold every announced peer (see rows above)");
        return Ok(1);
    }
    Ok(0)
}

// ---------------------------------------------------------------------------------------------
// Smoke
// ---------------------------------------------------------------------------------------------

/// Each load generator briefly against opentracker-rs, so they never rot (CI).
fn smoke(s: &Settings) -> Result<i32> {
    let t = start_ours(s, 1000, false, workers_option(s)?)?;
    let small = |dur: &str| -> Vec<String> {
        vec![
            "--duration".into(),
            dur.into(),
            "--torrents".into(),
            "1000".into(),
            "--peers".into(),
            "5000".into(),
        ]
    };
    let mut runs: Vec<(&str, &str, Vec<String>)> = Vec::new();
    let d = s.duration.min(2.0).to_string();
    let mut udp = vec!["--target".into(), t.udp.to_string()];
    udp.extend(small(&d));
    runs.push(("udp mix", "udp_load", udp));
    // Another seed: torrents the mix run did not touch, so the scrape check is exact.
    let mut fill = vec![
        "--target".into(),
        t.udp.to_string(),
        "--fill".into(),
        "--seed".into(),
        "99".into(),
    ];
    fill.extend(["--torrents".into(), "100".into()]);
    fill.extend([
        "--peers-per-torrent".into(),
        "10".into(),
        "--duration".into(),
        "30".into(),
    ]);
    runs.push(("udp fill", "udp_load", fill));
    let mut close = vec![
        "--target".into(),
        t.http.to_string(),
        "--connections".into(),
        "8".into(),
    ];
    close.extend(small(&d));
    runs.push(("http close", "http_load", close.clone()));
    let mut ka = close;
    ka.push("--keepalive".into());
    runs.push(("http keep-alive", "http_load", ka));
    // The floor server of `bench_run floor`, so it does not rot either.
    let floor = start_floor(s, Which::FloorMmsg, "mmsg")?;
    let mut floor_udp = vec!["--target".into(), floor.udp.to_string()];
    floor_udp.extend(small("1"));
    let mut floor_http = vec![
        "--target".into(),
        floor.http.to_string(),
        "--connections".into(),
        "8".into(),
    ];
    floor_http.extend(small("1"));
    let mut all: Vec<(&str, &Tracker, &str, Vec<String>)> =
        runs.into_iter().map(|(n, p, a)| (n, &t, p, a)).collect();
    all.push(("floor udp mix", &floor, "udp_load", floor_udp));
    all.push(("floor http close", &floor, "http_load", floor_http));
    let (mut passed, mut failed) = (0, 0);
    for (name, tracker, program, args) in all {
        let r = load(s, tracker, program, &args);
        let ok = match &r {
            Ok(r) => {
                let good = r.num("responses") > 0.0
                    && r.num("errors") == 0.0
                    && (program != "udp_load"
                        || !args.iter().any(|a| a == "--fill")
                        || r.num("peers_scraped") == 1000.0);
                println!(
                    "smoke {name}: {} {}",
                    if good { "ok" } else { "FAILED" },
                    r.summary
                );
                good
            }
            Err(e) => {
                println!("smoke {name}: FAILED {e}");
                false
            }
        };
        if ok {
            passed += 1;
        } else {
            failed += 1;
        }
    }
    println!("bench-smoke: {passed} passed, {failed} failed");
    Ok(if failed == 0 { 0 } else { 1 })
}

// ---------------------------------------------------------------------------------------------
// Full scrape
// ---------------------------------------------------------------------------------------------

/// One `GET /scrape` (full scrape) on a new connection; returns (status line, headers, body
/// bytes, seconds). The body is read to the end of the connection (`Connection: close`).
fn get_full_scrape(addr: SocketAddr, gzip: bool) -> Result<(String, String, usize, f64)> {
    use std::io::{Read, Write};
    let t0 = Instant::now();
    let mut c = std::net::TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    c.set_read_timeout(Some(Duration::from_secs(120)))
        .map_err(|e| e.to_string())?;
    let req = format!(
        "GET /scrape HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{}\r\n",
        if gzip {
            "Accept-Encoding: gzip\r\n"
        } else {
            ""
        }
    );
    c.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut head = Vec::new();
    let mut body = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = c.read(&mut buf).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            break;
        }
        if let Some(end) = memchr::memmem::find(&head, b"\r\n\r\n") {
            let _ = end;
            body += n;
        } else {
            head.extend_from_slice(&buf[..n]);
            if let Some(end) = memchr::memmem::find(&head, b"\r\n\r\n") {
                body += head.len() - end - 4;
                head.truncate(end);
                head.extend_from_slice(b"\r\n\r\n");
            }
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let status = text.lines().next().unwrap_or("").to_owned();
    Ok((status, text, body, t0.elapsed().as_secs_f64()))
}

fn fullscrape(s: &Settings) -> Result<i32> {
    let whitelist = ours_whitelist(s)?;
    let n = s.fs_torrents;
    let t = start_ours(s, n, whitelist, workers_option(s)?)?;
    println!(
        "# full scrape of {n} torrents x 1 peer, filled over UDP; UDP announces (20,000 peers on the 10,000 most popular torrents) run meanwhile"
    );
    let fill: Vec<String> = vec![
        "--target".into(),
        t.udp.to_string(),
        "--fill".into(),
        "--seed".into(),
        SEED.to_string(),
        "--torrents".into(),
        n.to_string(),
        "--peers-per-torrent".into(),
        "1".into(),
    ];
    let r = load(s, &t, "udp_load", &fill)?;
    println!("# fill: {}", r.summary);
    // Does this build serve full scrapes? (Before the feature, /scrape without info_hash is a
    // bencoded failure.)
    let (status, _, body, _) = get_full_scrape(t.http, false)?;
    if !status.contains(" 200") || body < (n as usize) * 50 {
        println!(
            "# this opentracker-rs build does not serve full scrapes ({status}, {body} bytes): nothing to measure"
        );
        return Ok(0);
    }
    let mix = |secs: &str| -> Vec<String> {
        vec![
            "--target".into(),
            t.udp.to_string(),
            "--duration".into(),
            secs.into(),
            "--seed".into(),
            SEED.to_string(),
            "--torrents".into(),
            "10000".into(),
            "--peers".into(),
            "20000".into(),
        ]
    };
    let base = load(s, &t, "udp_load", &mix("6"))?;
    println!(
        "announces alone:            max latency {:>8.1} ms, p99.9 {:>6.1} ms  ({})",
        base.num("announce_max_us") / 1000.0,
        base.num("announce_p999_us") / 1000.0,
        base.summary
    );
    for gzip in [false, true] {
        let bin = s.examples.join("udp_load");
        let child = pinned(s.load_cpu, &bin)
            .args(mix("6"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{}: {e}", bin.display()))?;
        std::thread::sleep(Duration::from_secs(1));
        let (status, head, body, secs) = get_full_scrape(t.http, gzip)?;
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out.stdout);
        let res = text
            .lines()
            .find_map(common::parse_result)
            .unwrap_or_default();
        let num = |k: &str| {
            res.get(k)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let encoded = head.to_ascii_lowercase().contains("content-encoding: gzip");
        println!(
            "full scrape {:<5} {status}: {body} bytes{} in {:.0} ms; announces meanwhile: max latency {:>8.1} ms, p99.9 {:>6.1} ms, {} errors, {} timeouts",
            if gzip { "gzip" } else { "plain" },
            if gzip && !encoded {
                " (NOT gzip-encoded)"
            } else {
                ""
            },
            secs * 1000.0,
            num("announce_max_us") / 1000.0,
            num("announce_p999_us") / 1000.0,
            num("errors"),
            num("timeouts")
        );
    }
    println!(
        "# the loop's longest stall is at most the worst announce latency above minus a round trip"
    );
    Ok(0)
}
