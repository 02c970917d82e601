//! Helpers shared by the REST API and persistence tests (tests/api*.rs, tests/persistence*.rs):
//! configs with `api.listen` and `db.path`, an API client over real sockets (token in the query,
//! as a Bearer header, or none), a tiny BEP 15 client, torrust's SQLite schema, and polling with
//! deadlines; `backend.rs`: a test's database, SQLite or MySQL ([`TestDb`], `both_backends!`). Built on `tests/common` (the harness that starts the real binary).
#![allow(dead_code)]

use std::io::Write;
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{self, Response, Tracker};

mod backend;
pub use backend::*;
use opentracker_rs::types::Event;
use opentracker_rs::wire::udp::{
    AnnounceOptions, AnnounceRequest, ConnectRequest, InfoHashes, ScrapeRequest, parse_response,
};

/// The token every test tracker accepts (`api.token site TOKEN`).
pub const TOKEN: &str = "s3cret-Token-0123456789";
/// A second accepted token (several `api.token` lines).
pub const TOKEN2: &str = "another-token-abcdefghij";

/// torrust-tracker's SQLite statements, exactly as its SQLite driver runs them.
pub const TORRUST_SCHEMA: &str = "
        CREATE TABLE IF NOT EXISTS whitelist (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            info_hash TEXT NOT NULL UNIQUE
        );
        CREATE TABLE IF NOT EXISTS keys (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            key TEXT NOT NULL UNIQUE,
            valid_until INTEGER
         );
        CREATE TABLE IF NOT EXISTS torrents (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            info_hash TEXT NOT NULL UNIQUE,
            completed INTEGER DEFAULT 0 NOT NULL
        );";

/// A config with HTTP and UDP tracker listeners and API listeners on both loopbacks (port 0),
/// the two tokens, `extra` lines, and `db.path` when given.
pub fn config(extra: &str, db: Option<&Path>) -> String {
    let mut c = format!(
        "listen.tcp 127.0.0.1:0\nlisten.tcp [::1]:0\nlisten.udp 127.0.0.1:0\nlisten.udp [::1]:0\n\
         api.listen 127.0.0.1:0\napi.listen [::1]:0\napi.token site {TOKEN}\n\
         api.token ops {TOKEN2}\n{extra}\n"
    );
    if let Some(db) = db {
        c.push_str(&format!("db.path {}\n", db.display()));
    }
    c
}

/// [`config`] with the line that selects `db` (`db.path` or `db.url`).
pub fn config_with(extra: &str, db: &TestDb) -> String {
    format!("{}{}\n", config(extra, None), db.config_line())
}

/// A directory that outlives the trackers started on it (a database kept across restarts),
/// removed when dropped.
pub struct Dir(pub PathBuf);

impl Dir {
    pub fn new(name: &str) -> Dir {
        Dir(common::temp_dir(name))
    }

    pub fn db(&self) -> PathBuf {
        self.0.join("sqlite3.db")
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How a request presents its token.
#[derive(Clone, Copy, Debug)]
pub enum Auth<'a> {
    /// No token.
    None,
    /// `?token=` (torrust's way), appended to the query.
    Query(&'a str),
    /// `Authorization: Bearer`.
    Bearer(&'a str),
}

/// The bytes of one API request. `Content-Length` is sent when there is a body.
pub fn request_bytes(
    method: &str,
    target: &str,
    auth: Auth<'_>,
    body: Option<&str>,
    close: bool,
) -> Vec<u8> {
    let target = match auth {
        Auth::Query(t) => {
            let sep = if target.contains('?') { '&' } else { '?' };
            format!("{target}{sep}token={t}")
        }
        _ => target.to_owned(),
    };
    let mut out = format!("{method} {target} HTTP/1.1\r\nHost: api\r\n");
    if let Auth::Bearer(t) = auth {
        out.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if close {
        out.push_str("Connection: close\r\n");
    }
    if let Some(b) = body {
        out.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    out.push_str("\r\n");
    out.push_str(body.unwrap_or(""));
    out.into_bytes()
}

/// One API request on a fresh connection.
pub fn call(
    addr: SocketAddr,
    method: &str,
    target: &str,
    auth: Auth<'_>,
    body: Option<&str>,
) -> Response {
    let mut s = common::connect(addr);
    s.write_all(&request_bytes(method, target, auth, body, true))
        .unwrap();
    common::read_response(&mut s).unwrap_or_else(|| panic!("no response to {method} {target}"))
}

/// The body as JSON; panics (showing it) when it is not.
pub fn json(r: &Response) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {} {:?}",
            r.status,
            String::from_utf8_lossy(&r.body)
        )
    })
}

/// An API client with the right token (`?token=`).
#[derive(Clone, Copy)]
pub struct Api {
    pub addr: SocketAddr,
}

impl Api {
    pub fn of(t: &Tracker, v6: bool) -> Api {
        Api {
            addr: t.api_addr(v6),
        }
    }

    /// Any request, with the token; returns (status, JSON body).
    pub fn send(&self, method: &str, target: &str, body: Option<&str>) -> (u16, Value) {
        let r = call(self.addr, method, target, Auth::Query(TOKEN), body);
        assert_eq!(
            r.header("content-type").as_deref(),
            Some("application/json"),
            "{method} {target}: {}",
            r.head
        );
        (r.status, json(&r))
    }

    pub fn get(&self, target: &str) -> (u16, Value) {
        self.send("GET", target, None)
    }

    /// `POST /api/v1/keys` with `body`; 200 expected, returns the AuthKey object.
    pub fn new_key(&self, body: &str) -> Value {
        let (status, v) = self.send("POST", "/api/v1/keys", Some(body));
        assert_eq!(status, 200, "POST /api/v1/keys {body}: {v}");
        v
    }

    /// Adds a permanent key given by its text (200 expected).
    pub fn add_key(&self, key: &str) {
        let v = self.new_key(&format!(r#"{{"key":"{key}","seconds_valid":null}}"#));
        assert_eq!(v["key"], key);
    }

    pub fn whitelist_add(&self, h: &[u8; 20]) {
        let (status, v) = self.send("POST", &format!("/api/v1/whitelist/{}", hex(h)), None);
        assert_eq!((status, v), (200, ok()));
    }

    /// Every key text in `GET /api/v1/keys` (one page of up to 4000).
    pub fn keys(&self) -> Vec<String> {
        let (status, v) = self.get("/api/v1/keys");
        assert_eq!(status, 200, "{v}");
        v.as_array()
            .unwrap()
            .iter()
            .map(|k| k["key"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Every entry of `GET /api/v1/whitelist`.
    pub fn whitelist(&self) -> Vec<String> {
        let (status, v) = self.get("/api/v1/whitelist");
        assert_eq!(status, 200, "{v}");
        v.as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap().to_owned())
            .collect()
    }
}

/// `{"status":"ok"}`.
pub fn ok() -> Value {
    serde_json::json!({"status": "ok"})
}

/// The error object the API answers with.
pub fn err(message: &str) -> Value {
    serde_json::json!({"status": "error", "message": message})
}

/// 40 lower-case hex digits.
pub fn hex(h: &[u8; 20]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// Unix seconds now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `YYYY-MM-DD HH:MM:SS UTC` for Unix seconds (the civil-from-days algorithm, written out here
/// so the test does not share the tracker's formatter).
pub fn utc(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Polls `f` every 20 ms until it returns `Some`, for at most `secs` seconds.
pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (bounded) until the tracker's log holds `text`.
pub fn wait_log(t: &Tracker, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !t.log_text().contains(text) {
        assert!(
            Instant::now() < deadline,
            "log never showed {text:?}:\n{}",
            t.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An HTTP announce target with an optional key path segment (`/announce/KEY`).
pub fn announce_keyed(
    key: Option<&str>,
    h: &[u8; 20],
    port: u16,
    left: u64,
    extra: &str,
) -> String {
    let plain = common::announce(h, port, left, extra);
    match key {
        Some(k) => plain.replacen("/announce", &format!("/announce/{k}"), 1),
        None => plain,
    }
}

/// A peer that finishes over HTTP: `started` as a leecher, then `completed` as a seeder.
/// Raises the torrent's `downloaded` by one.
pub fn complete(addr: SocketAddr, key: Option<&str>, h: &[u8; 20], port: u16) {
    for (left, event) in [(10, "&event=started"), (0, "&event=completed")] {
        let r = common::get(addr, &announce_keyed(key, h, port, left, event));
        assert_eq!(r.failure(), None, "announce {event}");
    }
}

/// The HTTP scrape's `downloaded` for `h` (through `/scrape/KEY` when a key is given); `None`
/// when the torrent is not in the answer.
pub fn scrape_downloaded(addr: SocketAddr, key: Option<&str>, h: &[u8; 20]) -> Option<i64> {
    let path = match key {
        Some(k) => format!("/scrape/{k}"),
        None => "/scrape".to_owned(),
    };
    let r = common::get(addr, &format!("{path}?info_hash={}", common::pct(h)));
    assert_eq!(r.status, 200);
    let v = r.bencode();
    v.get(b"files")
        .and_then(|f| f.get(h))
        .and_then(|d| d.get(b"downloaded"))
        .and_then(|d| d.as_int())
}

/// `completed` of a torrent in the database file, read by a second connection (the WAL lets it
/// read while the tracker writes).
pub fn db_completed(db: &Path, h: &[u8; 20]) -> Option<i64> {
    let conn = rusqlite::Connection::open(db).ok()?;
    conn.busy_timeout(Duration::from_secs(2)).ok()?;
    conn.query_row(
        "SELECT completed FROM torrents WHERE info_hash = ?1",
        [hex(h)],
        |r| r.get(0),
    )
    .ok()
}

/// A BEP 15 client on a loopback socket of the tracker's family.
pub struct Udp {
    pub sock: UdpSocket,
    pub tracker: SocketAddr,
}

impl Udp {
    pub fn new(tracker: SocketAddr) -> Udp {
        let bind = if tracker.is_ipv6() {
            "[::1]:0"
        } else {
            "127.0.0.1:0"
        };
        let sock = UdpSocket::bind(bind).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        Udp { sock, tracker }
    }

    pub fn port(&self) -> u16 {
        self.sock.local_addr().unwrap().port()
    }

    fn exchange(&self, bytes: &[u8]) -> Vec<u8> {
        self.sock.send_to(bytes, self.tracker).unwrap();
        let mut buf = [0u8; 2048];
        let (n, _) = self.sock.recv_from(&mut buf).expect("a UDP reply");
        buf[..n].to_vec()
    }

    pub fn connect(&self) -> u64 {
        let mut out = Vec::new();
        ConnectRequest { transaction_id: 1 }.emit(&mut out);
        match parse_response(&self.exchange(&out)).unwrap() {
            opentracker_rs::wire::udp::Response::Connect(c) => c.connection_id,
            other => panic!("{other:?}"),
        }
    }

    /// Announces (port = the socket's port); returns (leechers, seeders).
    pub fn announce(&self, id: u64, h: &[u8; 20], left: u64, event: Event) -> (u32, u32) {
        let mut out = Vec::new();
        AnnounceRequest {
            connection_id: id,
            transaction_id: 2,
            info_hash: *h,
            peer_id: *b"-TE0001-udpudpudpudp",
            downloaded: 0,
            left,
            uploaded: 0,
            event,
            ip: std::net::Ipv4Addr::UNSPECIFIED,
            key: 7,
            num_want: -1,
            port: self.port(),
            options: AnnounceOptions::EMPTY,
        }
        .emit(&mut out);
        match parse_response(&self.exchange(&out)).unwrap() {
            opentracker_rs::wire::udp::Response::Announce(a) => (a.leechers, a.seeders),
            other => panic!("{other:?}"),
        }
    }

    /// Scrapes; returns (seeders, completed, leechers) per hash.
    pub fn scrape(&self, id: u64, hashes: &[[u8; 20]]) -> Vec<(u32, u32, u32)> {
        let mut out = Vec::new();
        ScrapeRequest {
            connection_id: id,
            transaction_id: 3,
            info_hashes: InfoHashes::from_hashes(hashes).unwrap(),
        }
        .emit(&mut out);
        match parse_response(&self.exchange(&out)).unwrap() {
            opentracker_rs::wire::udp::Response::Scrape(s) => s
                .entries
                .iter()
                .map(|e| (e.seeders, e.completed, e.leechers))
                .collect(),
            other => panic!("{other:?}"),
        }
    }
}

/// A keep-alive connection for several requests in a row.
pub struct Conn(pub TcpStream);

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        Conn(common::connect(addr))
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.0.write_all(bytes).unwrap();
    }

    pub fn read(&mut self) -> Response {
        common::read_response(&mut self.0).expect("a response on the kept-alive connection")
    }
}
