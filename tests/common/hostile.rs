//! Helpers for the hostile-input tests (limits, soak): the tracker's exit counters, its process
//! figures from /proc, and a minimal BEP 15 client.

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use opentracker_rs::types::Event;
use opentracker_rs::wire::udp::{ConnectRequest, Response, parse_response};

use super::Tracker;

/// Stops the tracker (SIGTERM, must exit 0) and returns the counters of its `counters:` exit
/// line (`name=value` pairs, see `Stats::summary`).
pub fn stop_and_count(t: &mut Tracker) -> BTreeMap<String, u64> {
    let st = t.stop();
    assert!(st.success(), "exit status {st:?}");
    // The stderr reader thread may lag behind the exit a little.
    for _ in 0..100 {
        if let Some(c) = counters(&t.log_text()) {
            return c;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no counters line in the log:\n{}", t.log_text());
}

/// Parses the last `counters: ` line of a log.
pub fn counters(log: &str) -> Option<BTreeMap<String, u64>> {
    let line = log
        .lines()
        .rev()
        .find_map(|l| l.split("counters: ").nth(1))?;
    Some(
        line.split_whitespace()
            .filter_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                Some((k.to_string(), v.parse().ok()?))
            })
            .collect(),
    )
}

/// A counter, 0 when absent (`http.status.N` lines appear only once used).
pub fn count(c: &BTreeMap<String, u64>, name: &str) -> u64 {
    c.get(name).copied().unwrap_or(0)
}

/// Open file descriptors of a process (entries of /proc/PID/fd).
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// A field of /proc/PID/status in KiB (`VmRSS`, `VmHWM`).
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Datagrams the kernel dropped on the UDP socket bound to `port` (IPv4, /proc/net/udp `drops`
/// column): what the socket queue could not hold.
pub fn udp_drops(port: u16) -> u64 {
    let text = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
    let want = format!(":{port:04X}");
    text.lines()
        .skip(1)
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|a| a.ends_with(&want))
        })
        .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        .sum()
}

/// A blocking BEP 15 client socket.
pub struct UdpClient {
    pub sock: UdpSocket,
    pub tracker: SocketAddr,
}

impl UdpClient {
    pub fn new(tracker: SocketAddr) -> UdpClient {
        let bind = if tracker.is_ipv6() {
            "[::1]:0"
        } else {
            "127.0.0.1:0"
        };
        let sock = UdpSocket::bind(bind).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(1500)))
            .unwrap();
        UdpClient { sock, tracker }
    }

    /// Sends and waits for one reply (None after the read timeout).
    pub fn send(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        self.sock.send_to(bytes, self.tracker).unwrap();
        let mut buf = [0u8; 4096];
        self.sock.recv(&mut buf).ok().map(|n| buf[..n].to_vec())
    }

    pub fn connect_bytes(transaction_id: u32) -> Vec<u8> {
        let mut out = Vec::new();
        ConnectRequest { transaction_id }.emit(&mut out);
        out
    }

    /// Connects; panics without a reply.
    pub fn connect(&self) -> u64 {
        let reply = self.send(&Self::connect_bytes(7)).expect("connect reply");
        match parse_response(&reply) {
            Ok(Response::Connect(c)) => c.connection_id,
            other => panic!("not a connect reply: {other:?}"),
        }
    }

    /// An announce with transaction_id 0xabcd and numwant -1 (the tracker's default).
    pub fn announce_bytes(
        connection_id: u64,
        info_hash: [u8; 20],
        port: u16,
        left: u64,
        event: Event,
    ) -> Vec<u8> {
        super::udp::announce_request(connection_id, 0xabcd, &info_hash, port, left, event, -1)
    }
}
