//! HTTP announce load generator for a tracker on this machine.
//!
//! ```text
//! http_load --target 127.0.0.1:6969 [--duration 10] [--connections 64] [--keepalive]
//!           [--torrents 10000] [--peers 100000] [--zipf 1.0] [--seeders 0.33]
//!           [--numwant 50] [--sources 4] [--timeout-ms 2000] [--warmup 0] [--seed 1] [--cpu N]
//!           [--tls CA.pem [--tls-name localhost]]
//! ```
//!
//! `--tls CA.pem`: HTTPS (rustls client, TLS 1.3 preferred, ALPN `http/1.1`), verifying the
//! tracker's certificate against the CA in that PEM file for the name `--tls-name`. Each new
//! connection does a full handshake (no session resumption), so in close mode the handshake
//! dominates; keep-alive mode measures the cost of record encryption per announce.
//!
//! `--connections` connections are kept busy, each from source address
//! `127.0.0.(1 + c % sources)`, one announce at a time (no pipelining). The simulated peers are
//! the same model as `udp_load` (same `--seed`, `--torrents`, `--peers`: same info_hashes, ports
//! and popularity), so a tracker's swarms look alike whichever protocol filled them.
//!
//! Without `--keepalive` every announce opens a connection, sends `Connection: close` and reads
//! the reply to its end (latency counts from `connect`). With `--keepalive` a connection carries
//! announce after announce (HTTP/1.1 persistent connection; latency counts from the request's
//! write); when the server closes it anyway (opentracker closes after each reply) the request is
//! sent again on a new connection and counted under `reconnects`, not as an error.
//!
//! A response is good when it is `200` with a complete body that decodes as bencode
//! (`wire::bencode::decode`) and holds no `failure reason`. Prints a summary and one
//! `RESULT k=v ...` line.

#[path = "common.rs"]
mod common;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Opts, Swarms, histogram, percentiles, record};
use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use opentracker_rs::wire::bencode;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Connecting,
    Writing,
    Reading,
}

struct Conn {
    stream: Option<TcpStream>,
    /// The TLS session (`--tls`), made with each new connection.
    tls: Option<rustls::ClientConnection>,
    state: State,
    source: usize,
    wbuf: Vec<u8>,
    wpos: usize,
    rbuf: Vec<u8>,
    /// When the current announce started (connect in close mode, write in keep-alive mode).
    started: Instant,
    /// Announces answered on this connection.
    served: u64,
    peer: usize,
}

struct Tally {
    ok: u64,
    failures: u64,
    bad_responses: u64,
    connect_errors: u64,
    io_errors: u64,
    timeouts: u64,
    reconnects: u64,
    connections: u64,
    peers_received: u64,
    latency: Histogram<u64>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            ok: 0,
            failures: 0,
            bad_responses: 0,
            connect_errors: 0,
            io_errors: 0,
            timeouts: 0,
            reconnects: 0,
            connections: 0,
            peers_received: 0,
            latency: histogram(),
        }
    }

    fn errors(&self) -> u64 {
        self.failures + self.bad_responses + self.connect_errors + self.io_errors
    }
}

struct Gen {
    target: SocketAddr,
    /// `--tls`: the client configuration and the server name to verify.
    tls: Option<(
        Arc<rustls::ClientConfig>,
        rustls::pki_types::ServerName<'static>,
    )>,
    keepalive: bool,
    numwant: i32,
    swarms: Swarms,
    announced: Vec<bool>,
    rng: fastrand::Rng,
    poll: Poll,
    conns: Vec<Conn>,
    t: Tally,
}

/// What a complete response said.
enum Outcome {
    Ok { peers: u64, close: bool },
    Failure { close: bool },
    Bad,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("http_load: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let o = Opts::from_env(&["keepalive"])?;
    let target: SocketAddr = o
        .get_str("target")
        .ok_or("--target ADDR is required")?
        .parse()
        .map_err(|e| format!("--target: {e}"))?;
    let duration = Duration::from_secs_f64(o.get("duration", 10.0)?);
    let warmup = Duration::from_secs_f64(o.get("warmup", 0.0)?);
    let connections: usize = o.get("connections", 64usize)?.clamp(1, 10_000);
    let keepalive = o.flag("keepalive");
    let seed: u64 = o.get("seed", 1)?;
    let torrents: u64 = o.get("torrents", 10_000)?;
    let peers: u64 = o.get("peers", 100_000)?;
    let zipf: f64 = o.get("zipf", 1.0)?;
    let seeders: f64 = o.get("seeders", 0.33)?;
    let numwant: i32 = o.get("numwant", 50)?;
    let sources: usize = if target.is_ipv6() {
        1
    } else {
        o.get("sources", 4usize)?.clamp(1, 250)
    };
    let timeout = Duration::from_millis(o.get("timeout-ms", 2000u64)?);
    let tls = match o.get_str("tls") {
        None => None,
        Some(ca) => {
            let name = o
                .get_str("tls-name")
                .unwrap_or_else(|| "localhost".to_owned());
            Some(tls_client(&ca, &name)?)
        }
    };
    let cpu: Option<usize> = o
        .get_str("cpu")
        .map(|c| c.parse())
        .transpose()
        .map_err(|_| "--cpu: not a number")?;
    o.finish()?;
    if let Some(cpu) = cpu {
        common::pin_to_cpu(cpu).map_err(|e| format!("--cpu {cpu}: {e}"))?;
    }
    let swarms = Swarms::new(seed, torrents, peers.max(1), zipf, seeders, sources);
    let mut g = Gen {
        target,
        tls,
        keepalive,
        numwant,
        announced: vec![false; swarms.peers()],
        swarms,
        rng: fastrand::Rng::with_seed(seed ^ 0xC0FFEE),
        poll: Poll::new().map_err(|e| e.to_string())?,
        conns: Vec::with_capacity(connections),
        t: Tally::new(),
    };
    let now = Instant::now();
    for c in 0..connections {
        g.conns.push(Conn {
            stream: None,
            tls: None,
            state: State::Connecting,
            source: c % sources,
            wbuf: Vec::with_capacity(512),
            wpos: 0,
            rbuf: Vec::with_capacity(4096),
            started: now,
            served: 0,
            peer: 0,
        });
        g.next_request(c, now);
    }
    let start = Instant::now();
    let end = start + warmup + duration;
    let mut measuring = warmup.is_zero();
    let mut measure_start = start;
    let mut events = Events::with_capacity(1024);
    let mut next_check = start + Duration::from_millis(50);
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if !measuring && now >= start + warmup {
            measuring = true;
            measure_start = now;
            g.t = Tally::new();
        }
        let wait = end
            .saturating_duration_since(now)
            .min(Duration::from_millis(10));
        if let Err(e) = g.poll.poll(&mut events, Some(wait)) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(format!("poll: {e}"));
            }
        }
        for ev in events.iter() {
            g.drive(ev.token().0);
        }
        let now = Instant::now();
        if now >= next_check {
            next_check = now + Duration::from_millis(50);
            for c in 0..g.conns.len() {
                if now.duration_since(g.conns[c].started) >= timeout {
                    g.t.timeouts += 1;
                    g.reopen(c, now);
                }
            }
        }
    }
    let secs = Instant::now()
        .duration_since(measure_start)
        .as_secs_f64()
        .max(1e-9);
    let t = &g.t;
    println!(
        "http_load {target} ({}{}): {} announces in {secs:.2} s = {:.0}/s over {} connections, {} errors, {} timeouts, {} reconnects, latency p50 {} us p99 {} us",
        if g.tls.is_some() { "TLS, " } else { "" },
        if keepalive {
            "keep-alive"
        } else {
            "one request per connection"
        },
        t.ok,
        t.ok as f64 / secs,
        t.connections,
        t.errors(),
        t.timeouts,
        t.reconnects,
        if t.latency.is_empty() {
            0
        } else {
            t.latency.value_at_quantile(0.5)
        },
        if t.latency.is_empty() {
            0
        } else {
            t.latency.value_at_quantile(0.99)
        },
    );
    println!(
        "RESULT kind={} mode={} duration_s={secs:.3} responses={} rps={:.1} errors={} timeouts={} failures={} bad_responses={} connect_errors={} io_errors={} reconnects={} connections={} peers_per_announce={:.2} {}",
        if g.tls.is_some() { "https" } else { "http" },
        if keepalive { "keepalive" } else { "close" },
        t.ok,
        t.ok as f64 / secs,
        t.errors(),
        t.timeouts,
        t.failures,
        t.bad_responses,
        t.connect_errors,
        t.io_errors,
        t.reconnects,
        t.connections,
        t.peers_received as f64 / t.ok.max(1) as f64,
        percentiles(&t.latency, "")
    );
    Ok(())
}

impl Gen {
    /// Picks a peer of connection `c`'s source address, writes its announce into `wbuf`, and
    /// makes sure the connection is open (opening one if needed).
    fn next_request(&mut self, c: usize, now: Instant) {
        let sources = self.swarms.sources;
        let per_source = self.swarms.peers().div_ceil(sources).max(1);
        let conn = &mut self.conns[c];
        // Peers p with p % sources == source: p = source + sources * k.
        let mut p = conn.source + sources * self.rng.usize(..per_source);
        if p >= self.swarms.peers() {
            p = conn.source.min(self.swarms.peers() - 1);
        }
        conn.peer = p;
        conn.wbuf.clear();
        conn.wpos = 0;
        conn.rbuf.clear();
        conn.started = now;
        write_announce(
            &mut conn.wbuf,
            &self.swarms.hashes[self.swarms.torrent_of[p] as usize],
            p,
            self.swarms.port_of(p),
            self.swarms.seeder[p],
            !self.announced[p],
            self.numwant,
            self.target,
            self.keepalive,
        );
        if conn.stream.is_none() {
            self.open(c);
        } else {
            conn.state = State::Writing;
        }
    }

    fn open(&mut self, c: usize) {
        let conn = &mut self.conns[c];
        let ip = common::source_ip(conn.source, self.target.is_ipv6());
        match connect_from(ip, self.target) {
            Ok(mut s) => {
                if let Err(e) = self.poll.registry().register(
                    &mut s,
                    Token(c),
                    Interest::READABLE | Interest::WRITABLE,
                ) {
                    eprintln!("http_load: register: {e}");
                    self.t.connect_errors += 1;
                    return;
                }
                conn.stream = Some(s);
                conn.tls = self.tls.as_ref().map(|(config, name)| {
                    rustls::ClientConnection::new(Arc::clone(config), name.clone())
                        .expect("TLS client session")
                });
                conn.state = State::Connecting;
                conn.served = 0;
                self.t.connections += 1;
            }
            Err(_) => {
                self.t.connect_errors += 1;
                // Retried by the timeout check (the request stays in wbuf).
            }
        }
    }

    /// Closes connection `c` and sends its current request again on a new one.
    fn reopen(&mut self, c: usize, now: Instant) {
        self.close(c);
        let conn = &mut self.conns[c];
        conn.wpos = 0;
        conn.rbuf.clear();
        conn.started = now;
        self.open(c);
    }

    fn close(&mut self, c: usize) {
        if let Some(mut s) = self.conns[c].stream.take() {
            let _ = self.poll.registry().deregister(&mut s);
        }
    }

    /// Advances connection `c` as far as it goes without blocking.
    fn drive(&mut self, c: usize) {
        loop {
            let conn = &mut self.conns[c];
            let Some(stream) = conn.stream.as_mut() else {
                return;
            };
            match conn.state {
                State::Connecting => {
                    match stream.peer_addr() {
                        Ok(_) => conn.state = State::Writing,
                        Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                            // Still connecting, unless the attempt failed.
                            if let Ok(Some(_)) | Err(_) = stream.take_error() {
                                self.t.connect_errors += 1;
                                let now = Instant::now();
                                self.reopen(c, now);
                            }
                            return;
                        }
                        Err(_) => {
                            self.t.connect_errors += 1;
                            let now = Instant::now();
                            self.reopen(c, now);
                            return;
                        }
                    }
                }
                State::Writing if conn.tls.is_some() => {
                    let tls = conn.tls.as_mut().expect("TLS session");
                    if conn.wpos < conn.wbuf.len() {
                        // rustls buffers the plaintext until the handshake is over.
                        let _ = tls.writer().write_all(&conn.wbuf[conn.wpos..]);
                        conn.wpos = conn.wbuf.len();
                    }
                    conn.state = State::Reading;
                }
                State::Writing => {
                    while conn.wpos < conn.wbuf.len() {
                        match stream.write(&conn.wbuf[conn.wpos..]) {
                            Ok(n) => conn.wpos += n,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(_) => return self.lost_connection(c),
                        }
                    }
                    conn.state = State::Reading;
                }
                State::Reading => {
                    let mut eof = false;
                    let mut chunk = [0u8; 8192];
                    if let Some(tls) = conn.tls.as_mut() {
                        match tls_pump(tls, stream, &mut conn.rbuf) {
                            Ok(e) => eof = e,
                            Err(_) => return self.lost_connection(c),
                        }
                    }
                    while conn.tls.is_none() {
                        match stream.read(&mut chunk) {
                            Ok(0) => {
                                eof = true;
                                break;
                            }
                            Ok(n) => conn.rbuf.extend_from_slice(&chunk[..n]),
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(_) => return self.lost_connection(c),
                        }
                    }
                    match parse_response(&conn.rbuf) {
                        None if eof => return self.lost_connection(c),
                        None => return,
                        Some(outcome) => {
                            let now = Instant::now();
                            let close = match outcome {
                                Outcome::Ok { peers, close } => {
                                    self.t.ok += 1;
                                    self.t.peers_received += peers;
                                    record(&mut self.t.latency, now.duration_since(conn.started));
                                    self.announced[conn.peer] = true;
                                    close
                                }
                                Outcome::Failure { close } => {
                                    self.t.failures += 1;
                                    close
                                }
                                Outcome::Bad => {
                                    self.t.bad_responses += 1;
                                    true
                                }
                            };
                            conn.served += 1;
                            if eof || close || !self.keepalive {
                                self.close(c);
                            }
                            // Next request: written at once on a kept-alive connection (the
                            // loop goes on), or once the new connection is up.
                            self.next_request(c, now);
                        }
                    }
                }
            }
        }
    }

    /// The connection ended before a whole response. On a keep-alive connection that already
    /// served a request and got no byte of this response, the server closed an idle persistent
    /// connection: resend on a new one (a reconnect). Anything else is an error.
    fn lost_connection(&mut self, c: usize) {
        let conn = &self.conns[c];
        if self.keepalive && conn.served > 0 && conn.rbuf.is_empty() {
            self.t.reconnects += 1;
        } else {
            self.t.io_errors += 1;
        }
        let now = Instant::now();
        let started = self.conns[c].started;
        self.reopen(c, now);
        // Keep the original start: the client waited for this reconnect too.
        self.conns[c].started = started;
    }
}

/// A rustls client configuration trusting the CA certificates in the PEM file `ca`, and the
/// server name to verify.
fn tls_client(
    ca: &str,
    name: &str,
) -> Result<
    (
        Arc<rustls::ClientConfig>,
        rustls::pki_types::ServerName<'static>,
    ),
    String,
> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).map_err(|e| format!("--tls {ca}: {e}"))? {
        roots
            .add(c.map_err(|e| format!("--tls {ca}: {e}"))?)
            .map_err(|e| format!("--tls {ca}: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let name = rustls::pki_types::ServerName::try_from(name.to_owned())
        .map_err(|e| format!("--tls-name {name}: {e}"))?;
    Ok((Arc::new(config), name))
}

/// Moves TLS records both ways as far as the socket allows and appends the plaintext received
/// to `rbuf`. `Ok(true)` at the end of the stream.
fn tls_pump(
    tls: &mut rustls::ClientConnection,
    stream: &mut TcpStream,
    rbuf: &mut Vec<u8>,
) -> io::Result<bool> {
    let mut eof = false;
    loop {
        let mut progress = false;
        while tls.wants_write() {
            match tls.write_tls(stream) {
                Ok(_) => progress = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if !eof {
            match tls.read_tls(stream) {
                Ok(0) => eof = true,
                Ok(_) => {
                    progress = true;
                    tls.process_new_packets()
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => progress = true,
                Err(e) => return Err(e),
            }
        }
        let mut chunk = [0u8; 8192];
        loop {
            match tls.reader().read(&mut chunk) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => rbuf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        if !progress || (eof && !tls.wants_write()) {
            return Ok(eof);
        }
    }
}

/// A non-blocking TCP connect from `ip` (port chosen by the kernel) to `target`.
fn connect_from(ip: std::net::IpAddr, target: SocketAddr) -> io::Result<TcpStream> {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(target),
        socket2::Type::STREAM,
        None,
    )?;
    s.set_nonblocking(true)?;
    s.set_nodelay(true)?;
    s.bind(&SocketAddr::new(ip, 0).into())?;
    match s.connect(&target.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(s.into()))
}

/// Writes a BEP 3 announce with every byte of the info_hash and peer_id percent-encoded.
#[allow(clippy::too_many_arguments)]
fn write_announce(
    out: &mut Vec<u8>,
    info_hash: &[u8; 20],
    peer: usize,
    port: u16,
    seeder: bool,
    first: bool,
    numwant: i32,
    target: SocketAddr,
    keepalive: bool,
) {
    out.extend_from_slice(b"GET /announce?info_hash=");
    percent_encode(out, info_hash);
    out.extend_from_slice(b"&peer_id=");
    percent_encode(out, &common::peer_id(peer as u64));
    let left = if seeder { 0 } else { 1 << 20 };
    let event = if first { "&event=started" } else { "" };
    let _ = write!(
        out,
        "&port={port}&uploaded=0&downloaded=0&left={left}{event}&numwant={numwant}&compact=1 HTTP/1.1\r\nHost: {target}\r\nUser-Agent: http_load\r\n"
    );
    if !keepalive {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

fn percent_encode(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        }
    }
}

/// `None` while the response is incomplete.
fn parse_response(buf: &[u8]) -> Option<Outcome> {
    let head_end = memchr::memmem::find(buf, b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..head_end]).ok();
    let Some(head) = head else {
        return Some(Outcome::Bad);
    };
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or("");
    let http10 = status.starts_with("HTTP/1.0");
    let code = status.split(' ').nth(1).unwrap_or("");
    let mut length = None;
    let mut close = http10;
    for l in lines {
        if let Some((name, value)) = l.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close")
                    || (http10 && !value.eq_ignore_ascii_case("keep-alive"));
            }
        }
    }
    let Some(length) = length else {
        return Some(Outcome::Bad);
    };
    if buf.len() < head_end + length {
        return None;
    }
    if code != "200" {
        return Some(Outcome::Bad);
    }
    let body = &buf[head_end..head_end + length];
    match bencode::decode(body) {
        Ok(v) if v.get(b"failure reason").is_some() => Some(Outcome::Failure { close }),
        Ok(v) => match v.get(b"peers").and_then(|p| p.as_bytes()) {
            Some(p) => Some(Outcome::Ok {
                peers: (p.len() / 6) as u64,
                close,
            }),
            None if v.get(b"peers").is_some() || v.get(b"peers6").is_some() => {
                Some(Outcome::Ok { peers: 0, close })
            }
            None => Some(Outcome::Bad),
        },
        Err(_) => Some(Outcome::Bad),
    }
}
