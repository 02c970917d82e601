//! The test lab: network namespaces joined by veth pairs to a bridge, tracker processes inside
//! them, and HTTP and UDP from the test threads into them.
//!
//! A [`Lab`] makes one namespace per node (`10.77.0.N/24` on its `sync0`, loopback up) and a
//! hub namespace holding the bridge `br0` (multicast snooping off, so multicast floods to every
//! port) with `10.77.0.100/24`, from where the test talks to the nodes. Both veth ends are
//! created directly inside their namespaces, so the machine's own namespace never sees an
//! interface or an address, and no route leads out: every packet stays between the lab's
//! namespaces. Dropping the lab deletes every namespace it made (their veth pairs and the
//! bridge go with them), also when the test panicked; namespaces left by a killed test run
//! (named after a process that is gone) are deleted by the next lab.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::common::{self, Response};

/// The prefix of every namespace a lab makes: `otrs-lab-<pid>-<n>-<role>`.
const PREFIX: &str = "otrs-lab-";

/// The hub's address: where the test's requests come from.
pub const HUB_IP: &str = "10.77.0.100";

/// The address of node `i` (0-based): `10.77.0.<i + 1>`.
pub fn node_ip(i: usize) -> String {
    format!("10.77.0.{}", i + 1)
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Namespaces of earlier runs whose process is gone: deleted.
fn remove_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let pid: i32 = rest
            .split('-')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        // SAFETY: kill with signal 0 only checks whether the process exists.
        let alive = pid > 0 && unsafe { libc::kill(pid, 0) } == 0;
        if !alive {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

/// Namespaces for `n` nodes and a hub with the bridge.
pub struct Lab {
    /// The hub namespace (the bridge, [`HUB_IP`]).
    pub hub: String,
    /// One namespace per node, in order.
    pub nodes: Vec<String>,
    made: Vec<String>,
}

impl Lab {
    /// A lab of `n` nodes, or `None` (after saying why on stderr) when the tests do not run
    /// as root: network namespaces need it. CI runs as root.
    pub fn new(test: &str, n: usize) -> Option<Lab> {
        if !common::is_root() {
            eprintln!("SKIPPED {test}: network namespaces need root (CI runs as root)");
            return None;
        }
        remove_stale();
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let id = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::SeqCst)
        );
        let mut lab = Lab {
            hub: format!("{id}-hub"),
            nodes: (0..n).map(|i| format!("{id}-n{i}")).collect(),
            made: Vec::new(),
        };
        if let Err(e) = lab.build() {
            panic!("cannot build the lab: {e}");
        }
        Some(lab)
    }

    fn build(&mut self) -> Result<(), String> {
        let hub = self.hub.clone();
        ip(&["netns", "add", &hub])?;
        self.made.push(hub.clone());
        ip(&["-n", &hub, "link", "set", "lo", "up"])?;
        ip(&[
            "-n",
            &hub,
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ])?;
        ip(&[
            "-n",
            &hub,
            "addr",
            "add",
            &format!("{HUB_IP}/24"),
            "dev",
            "br0",
        ])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        for (i, ns) in self.nodes.clone().iter().enumerate() {
            ip(&["netns", "add", ns])?;
            self.made.push(ns.clone());
            let port = format!("p{i}");
            ip(&[
                "link", "add", "sync0", "netns", ns, "type", "veth", "peer", "name", &port,
                "netns", &hub,
            ])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            let addr = format!("{}/24", node_ip(i));
            ip(&["-n", ns, "addr", "add", &addr, "dev", "sync0"])?;
            ip(&["-n", ns, "link", "set", "sync0", "up"])?;
            ip(&["-n", &hub, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &hub, "link", "set", &port, "up"])?;
        }
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.made.iter().rev() {
            if let Err(e) = ip(&["netns", "del", ns]) {
                eprintln!("lab cleanup: {e}");
            }
        }
    }
}

/// Runs `f` on a new thread that entered network namespace `ns` first (a thread's network
/// namespace is its own: the sockets it opens live there), or on the current one when `ns` is
/// `None`.
pub fn in_netns<R: Send + 'static>(ns: Option<&str>, f: impl FnOnce() -> R + Send + 'static) -> R {
    let Some(ns) = ns else {
        return f();
    };
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        use std::os::fd::AsRawFd;
        // SAFETY: setns on a namespace file we hold open; it changes this thread only.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// A tracker process, started in a namespace (`ip netns exec`) or in ours.
pub struct Node {
    child: Child,
    /// Its HTTP listener.
    pub http: SocketAddr,
    /// Its live sync tracker_id (8 hex digits, as logged).
    pub tracker_id: [u8; 4],
    /// The namespace requests to it are sent from (the hub), `None` for our own.
    pub via: Option<String>,
    log: Arc<Mutex<Vec<String>>>,
    dir: PathBuf,
}

impl Node {
    /// Starts the tracker with `config` inside namespace `ns` (or here), reached from `via`;
    /// waits until it logged its HTTP listener and its live sync tracker_id. With
    /// `OTRS_TEST_WORKERS`, `tracker.workers N` is added unless `config` sets it
    /// ([`common::with_workers`]).
    pub fn start(name: &str, ns: Option<&str>, via: Option<&str>, config: &str) -> Node {
        let dir = common::temp_dir(name);
        let conf = dir.join("opentracker.conf");
        std::fs::write(&conf, common::with_workers(config)).unwrap();
        let mut cmd = match ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, common::binary()]);
                c
            }
            None => Command::new(common::binary()),
        };
        cmd.arg("-f").arg(&conf).args(common::allow_root_arg());
        let mut child = cmd
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tracker");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<String>();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    log.lock().unwrap().push(line.clone());
                    let _ = tx.send(line);
                }
            });
        }
        let (mut http, mut tracker_id) = (None, None);
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.is_none() || tracker_id.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{name} did not start; log: {:#?}", log.lock().unwrap());
            };
            if let Some(addr) = line.split("listening: http ").nth(1) {
                http = Some(addr.trim().parse().unwrap());
            } else if let Some(rest) = line.split("livesync: tracker id ").nth(1) {
                tracker_id = Some(hex4(&rest[..8]));
            }
        }
        Node {
            child,
            http: http.unwrap(),
            tracker_id: tracker_id.unwrap(),
            via: via.map(str::to_owned),
            log,
            dir,
        }
    }

    /// One `GET` (Connection: close) from the `via` namespace.
    pub fn get(&self, target: &str) -> Response {
        let (addr, target) = (self.http, target.to_owned());
        in_netns(self.via.as_deref(), move || common::get(addr, &target))
    }

    /// The compact IPv4 peers of an announce's reply, as addresses.
    pub fn announce_peers(&self, target: &str) -> Vec<SocketAddr> {
        let r = self.get(target);
        assert_eq!(r.status, 200, "{target}");
        let v = r.bencode();
        let peers = v
            .get(b"peers")
            .and_then(|p| p.as_bytes())
            .unwrap_or_else(|| panic!("no peers in {:?}", String::from_utf8_lossy(&r.body)));
        peers
            .chunks_exact(6)
            .map(|p| SocketAddr::from(([p[0], p[1], p[2], p[3]], u16::from_be_bytes([p[4], p[5]]))))
            .collect()
    }

    /// (complete, downloaded, incomplete) of a torrent by scrape; zeros when unknown.
    pub fn scrape(&self, h: &[u8; 20]) -> (i64, i64, i64) {
        let r = self.get(&format!("/scrape?info_hash={}", common::pct(h)));
        let v = r.bencode();
        let Some(e) = v.get(b"files").and_then(|f| f.get(h)) else {
            return (0, 0, 0);
        };
        let n = |k: &[u8]| e.get(k).and_then(|x| x.as_int()).unwrap_or(-1);
        (n(b"complete"), n(b"downloaded"), n(b"incomplete"))
    }

    /// The value of one sample of `/metrics` (`name{labels}` exactly as printed), 0 if absent.
    pub fn metric(&self, sample: &str) -> f64 {
        let r = self.get("/metrics");
        let text = String::from_utf8_lossy(&r.body).into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
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

fn hex4(s: &str) -> [u8; 4] {
    let mut out = [0u8; 4];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex tracker id");
    }
    out
}

/// Sends one UDP datagram from `from` (an address of namespace `ns`, or ours) to `to`.
pub fn send_udp(ns: Option<&str>, from: &str, to: SocketAddr, data: Vec<u8>) {
    let from = format!("{from}:0");
    in_netns(ns, move || {
        let s = UdpSocket::bind(&from).unwrap_or_else(|e| panic!("bind {from}: {e}"));
        s.send_to(&data, to).unwrap();
    });
}

/// Polls `check` every 50 ms until it returns true or `secs` seconds passed; returns whether
/// it did.
pub fn eventually(secs: u64, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
