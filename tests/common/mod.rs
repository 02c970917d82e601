//! Test harness: starts the real `opentracker-rs` binary with a config file on loopback (port 0,
//! so the OS picks free ports), learns the bound addresses from its start-up log lines, and
//! stops it (SIGTERM) when dropped. Plus tiny HTTP and bencode helpers over real sockets.
#![allow(dead_code)]

pub mod hostile;
pub mod udp;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use opentracker_rs::wire::bencode::{Value, decode};

/// A running tracker process.
pub struct Tracker {
    pub child: Child,
    pub http: Vec<SocketAddr>,
    pub udp: Vec<SocketAddr>,
    /// REST API listeners (`api.listen`), in the order logged.
    pub api: Vec<SocketAddr>,
    /// HTTPS tracker listeners (`listen.tls`), in the order logged.
    pub https: Vec<SocketAddr>,
    /// HTTPS REST API listeners (`api.listen_tls`), in the order logged.
    pub api_https: Vec<SocketAddr>,
    pub dir: PathBuf,
    pub log: Arc<Mutex<Vec<String>>>,
}

/// A fresh, empty temp directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("otrs-{}-{}-{}", name, std::process::id(), n));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Whether the tests run with effective uid 0.
pub fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// `--allow-root` when running as root, else nothing: for tests that spawn the binary directly.
pub fn allow_root_arg() -> &'static [&'static str] {
    if is_root() { &["--allow-root"] } else { &[] }
}

/// The worker count the tests run trackers with: `OTRS_TEST_WORKERS` (the Makefile's second
/// pass sets 2), else 1. [`Tracker::start_as_is`] adds `tracker.workers N` to every config that
/// does not set it, so each integration test runs with one worker and with several, unchanged.
/// A test whose assertion is about one process's loop (which worker a request reaches is the
/// kernel's choice) checks `workers() == 1` for that assertion only, and says why.
pub fn workers() -> usize {
    std::env::var("OTRS_TEST_WORKERS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|&n| n >= 1)
        .unwrap_or(1)
}

/// `config` with `tracker.workers N` appended when [`workers`] is above 1 and the config does
/// not name `tracker.workers` itself.
pub fn with_workers(config: &str) -> String {
    let n = workers();
    if n > 1
        && !config
            .lines()
            .any(|l| l.trim_start().starts_with("tracker.workers"))
    {
        let sep = if config.is_empty() || config.ends_with('\n') {
            ""
        } else {
            "\n"
        };
        format!("{config}{sep}tracker.workers {n}\n")
    } else {
        config.to_owned()
    }
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_opentracker-rs")
}

impl Tracker {
    /// Starts the tracker with `config` (the text of a config file) and waits until it logged every
    /// listener. The config should bind port 0.
    pub fn start(name: &str, config: &str) -> Tracker {
        Self::start_with_args(name, config, &[])
    }

    /// Starts the tracker with extra flags. When the tests run as root (as in CI), `--allow-root`
    /// is added, since the tracker refuses root without `tracker.user`; tests of the privilege
    /// drop itself use [`Tracker::start_as_is`].
    pub fn start_with_args(name: &str, config: &str, extra: &[&str]) -> Tracker {
        let mut args = extra.to_vec();
        if is_root() {
            args.push("--allow-root");
        }
        Self::start_as_is(name, config, &args)
    }

    /// Starts the tracker with exactly these flags (no `--allow-root` added).
    pub fn start_as_is(name: &str, config: &str, extra: &[&str]) -> Tracker {
        Self::start_with_command(name, config, extra, |_| {})
    }

    /// As [`Tracker::start_as_is`], with `setup` applied to the command before it is spawned
    /// (a `pre_exec` that sets a resource limit, say).
    pub fn start_with_command(
        name: &str,
        config: &str,
        extra: &[&str],
        setup: impl FnOnce(&mut Command),
    ) -> Tracker {
        let dir = temp_dir(name);
        let conf = dir.join("opentracker.conf");
        let config = &with_workers(config);
        std::fs::write(&conf, config).unwrap();
        let expected_http = config
            .lines()
            .filter(|l| l.starts_with("listen.tcp"))
            .count();
        let expected_udp = config
            .lines()
            .filter(|l| l.starts_with("listen.udp ") || l.starts_with("listen.tcp_udp"))
            .count();
        let expected_api = config
            .lines()
            .filter(|l| l.starts_with("api.listen "))
            .count();
        let expected_https = config
            .lines()
            .filter(|l| l.starts_with("listen.tls"))
            .count();
        let expected_api_https = config
            .lines()
            .filter(|l| l.starts_with("api.listen_tls"))
            .count();
        let mut command = Command::new(binary());
        command
            .arg("-f")
            .arg(&conf)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        setup(&mut command);
        let mut child = command.spawn().expect("spawn tracker");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    log.lock().unwrap().push(line.clone());
                    let _ = tx.send(line);
                }
            });
        }
        let mut http = Vec::new();
        let mut udp = Vec::new();
        let mut api = Vec::new();
        let mut https = Vec::new();
        let mut api_https = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.len() < expected_http
            || udp.len() < expected_udp
            || api.len() < expected_api
            || https.len() < expected_https
            || api_https.len() < expected_api_https
        {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(l) => l,
                Err(_) => {
                    let _ = child.kill();
                    panic!("tracker did not start; log: {:#?}", log.lock().unwrap());
                }
            };
            if let Some(addr) = line.split("listening: http ").nth(1) {
                http.push(addr.trim().parse().unwrap());
            } else if let Some(addr) = line.split("listening: udp ").nth(1) {
                udp.push(addr.trim().parse().unwrap());
            } else if let Some(addr) = line.split("listening: https ").nth(1) {
                https.push(addr.trim().parse().unwrap());
            } else if let Some(addr) = line.split("listening: api https ").nth(1) {
                api_https.push(addr.trim().parse().unwrap());
            } else if let Some(addr) = line.split("listening: api ").nth(1) {
                api.push(addr.trim().parse().unwrap());
            }
        }
        Tracker {
            child,
            http,
            udp,
            api,
            https,
            api_https,
            dir,
            log,
        }
    }

    /// The first HTTP listener of the given family.
    pub fn http_addr(&self, v6: bool) -> SocketAddr {
        *self
            .http
            .iter()
            .find(|a| a.is_ipv6() == v6)
            .expect("listener of that family")
    }

    /// The first REST API listener of the given family.
    pub fn api_addr(&self, v6: bool) -> SocketAddr {
        *self
            .api
            .iter()
            .find(|a| a.is_ipv6() == v6)
            .expect("api listener of that family")
    }

    pub fn udp_addr(&self, v6: bool) -> SocketAddr {
        *self
            .udp
            .iter()
            .find(|a| a.is_ipv6() == v6)
            .expect("udp listener of that family")
    }

    pub fn signal(&self, sig: i32) {
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("tracker did not stop on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.signal(libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }

    pub fn bencode(&self) -> Value<'_> {
        decode(&self.body).unwrap_or_else(|e| {
            panic!(
                "bad bencode {:?}: {:?}",
                String::from_utf8_lossy(&self.body),
                e
            )
        })
    }

    /// The `failure reason` of a bencoded failure, if any.
    pub fn failure(&self) -> Option<String> {
        let v = decode(&self.body).ok()?;
        v.get(b"failure reason")
            .and_then(|r| r.as_bytes())
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }
}

/// Reads one response (by Content-Length) from a stream.
pub fn read_response(stream: &mut impl Read) -> Option<Response> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(0) => return None,
            Ok(_) => buf.push(byte[0]),
            Err(e) => panic!("read: {e}"),
        }
    }
    let head = String::from_utf8(buf).unwrap();
    let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().unwrap())
        })
        .expect("content-length");
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).unwrap();
    Some(Response { status, head, body })
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// One `GET` with `Connection: close`.
pub fn get(addr: SocketAddr, target: &str) -> Response {
    let mut s = connect(addr);
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: tracker\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    read_response(&mut s).expect("a response")
}

/// Sends raw bytes and reads one response.
pub fn raw(addr: SocketAddr, bytes: &[u8]) -> Option<Response> {
    let mut s = connect(addr);
    s.write_all(bytes).unwrap();
    read_response(&mut s)
}

/// Percent-encodes every byte (as some clients do).
pub fn pct(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

/// A 20-byte info_hash from a small number.
pub fn hash(n: u32) -> [u8; 20] {
    let mut h = [0x5au8; 20];
    h[..4].copy_from_slice(&n.to_be_bytes());
    h
}

/// The announce target for a peer of a torrent.
pub fn announce(info_hash: &[u8; 20], port: u16, left: u64, extra: &str) -> String {
    format!(
        "/announce?info_hash={}&peer_id=-TE0001-{:012}&port={port}&uploaded=0&downloaded=0&left={left}{extra}",
        pct(info_hash),
        port
    )
}

/// Config lines that turn the quotas per source off (issue #13): for tests that send many
/// peers, torrents or datagrams from 127.0.0.1 alone.
pub const QUOTAS_OFF: &str =
    "tracker.max_peers_per_source 0\ntracker.max_new_torrents_per_net 0\nudp.rate_limit 0\n";

pub fn config_loopback(extra: &str) -> String {
    format!("listen.tcp 127.0.0.1:0\nlisten.tcp [::1]:0\n{extra}\n")
}

pub fn path_exists(p: &Path) -> bool {
    p.exists()
}

/// A python interpreter that can `import module`: `python3` from PATH, or Debian's
/// `/usr/bin/python3` (where the `python3-*` packages install when PATH has another python).
/// Panics, naming the package to install, when neither can.
pub fn python_with(module: &str) -> &'static str {
    ["python3", "/usr/bin/python3"]
        .into_iter()
        .find(|py| {
            Command::new(py)
                .args(["-c", &format!("import {module}")])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .unwrap_or_else(|| panic!("python3 with {module} is required: run `make test-deps`"))
}

/// A UDP port on 127.0.0.1 that was free a moment ago, for a socket the tracker binds itself
/// (`livesync.cluster.listen` takes a known port). Picked in 20000-31999, below the kernel's
/// ephemeral range (32768-60999 by default), so no `bind` to port 0 of a test running in
/// parallel can take it before the tracker does (that happened: "cannot bind livesync ...
/// Address already in use"); calls in one process walk the range from a start derived from the
/// process id, so they never return the same port twice.
pub fn free_udp_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7_919) % SPAN,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..SPAN {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::Relaxed) % SPAN) as u16;
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free UDP port in {FIRST}..{}", FIRST + SPAN);
}
