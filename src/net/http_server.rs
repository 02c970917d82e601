//! HTTP connections: accept, bounded reads, request framing, buffered writes, keep-alive, idle
//! timeout and a cap on open connections. What a request means is decided in
//! [`crate::service::http`]; this module only moves bytes.
//!
//! Limits (all from the config file):
//! - `http.max_connections`: when that many are open, a new connection is accepted and closed at
//!   once (counted as `tcp_refused_over_limit`), so the backlog never fills with clients that wait.
//! - `http.max_request_size`: a request head larger than this gets `413` and the connection closes.
//! - `http.idle_timeout`: a connection with no read or write progress for that many seconds is
//!   closed (also a client that sends half a request and stops).
//! - While a response waits for a slow reader, nothing more is read from that connection
//!   (back-pressure): its unread requests stay in the kernel's buffer, not in ours.
//!
//! Streamed responses (full scrape, `/stats` walks): the request leaves a [`Walk`] on its
//! connection (the "producer"). The loop calls [`HttpServer::advance_streams`] once per turn;
//! it asks each producer for one more slice only while that connection's unsent bytes are
//! under [`STREAM_HIGH_WATER`], so a slow reader holds at most that plus one slice in memory,
//! and many full scrapes share the loop with everything else slice by slice. A streamed
//! response is the last one on its connection (it is closed once the body is sent).

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};

use crate::service::Tracker;
use crate::service::http::{HttpSite, Scratch, handle};
use crate::service::walk::{SLICE_TORRENTS, Walk};
use crate::wire::http::{Status, parse_request, write_error};

/// Limits of the HTTP server, from the config file (`http.*`).
#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    /// Most open connections (`http.max_connections`).
    pub max_connections: usize,
    /// Most bytes of one request head (`http.max_request_size`).
    pub max_request_size: usize,
    /// Seconds without progress before a connection is closed (`http.idle_timeout`).
    pub idle_timeout: u32,
}

/// Bytes read from a socket at once.
const READ_CHUNK: usize = 16 * 1024;

/// A write buffer larger than this is freed after it drained (one large response must not pin
/// memory for the connection's whole life).
const KEEP_WBUF: usize = 64 * 1024;

/// A streaming connection gets its next slice only while fewer unsent bytes than this wait in
/// its write buffer (bytes).
pub const STREAM_HIGH_WATER: usize = 256 * 1024;

struct Conn {
    stream: TcpStream,
    remote: IpAddr,
    /// Bytes of a request head not complete yet.
    rbuf: Vec<u8>,
    /// Response bytes not written yet, from `wpos`.
    wbuf: Vec<u8>,
    wpos: usize,
    /// Seconds (loop clock) of the last read or write progress.
    last_active: u32,
    /// Close once `wbuf` is written.
    closing: bool,
    /// Currently registered for WRITABLE (instead of READABLE).
    want_write: bool,
    /// The streamed response being written, if any (see the module doc).
    producer: Option<Box<Walk>>,
}

/// The HTTP side of the event loop: listeners and open connections.
pub struct HttpServer {
    listeners: Vec<TcpListener>,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    open: usize,
    limits: HttpLimits,
    token_base: usize,
    scratch: Scratch,
    read_buf: Box<[u8]>,
    /// Slots of connections with a producer.
    streaming: Vec<usize>,
}

impl HttpServer {
    /// Takes the bound listeners; connection tokens are `token_base + slot`.
    pub fn new(
        listeners: Vec<std::net::TcpListener>,
        limits: HttpLimits,
        token_base: usize,
    ) -> io::Result<Self> {
        let listeners = listeners.into_iter().map(TcpListener::from_std).collect();
        Ok(HttpServer {
            listeners,
            conns: Vec::new(),
            free: Vec::new(),
            open: 0,
            limits,
            token_base,
            scratch: Scratch::default(),
            read_buf: vec![0; READ_CHUNK].into_boxed_slice(),
            streaming: Vec::new(),
        })
    }

    /// Registers the listeners with tokens `first..first + n`.
    pub fn register(&mut self, registry: &Registry, first: usize) -> io::Result<()> {
        for (i, l) in self.listeners.iter_mut().enumerate() {
            registry.register(l, Token(first + i), Interest::READABLE)?;
        }
        Ok(())
    }

    /// Number of listeners.
    pub fn listener_count(&self) -> usize {
        self.listeners.len()
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.open
    }

    /// Accepts every pending connection on listener `index`.
    pub fn accept(&mut self, index: usize, registry: &Registry, tracker: &mut Tracker, now: u32) {
        loop {
            let (mut stream, addr): (TcpStream, SocketAddr) = match self.listeners[index].accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: log and retry on the next readiness event.
                    log::warn!("accept failed: {e}");
                    return;
                }
            };
            tracker.stats.tcp_accepted += 1;
            if self.open >= self.limits.max_connections {
                tracker.stats.tcp_refused_over_limit += 1;
                drop(stream);
                continue;
            }
            let slot = self.free.pop().unwrap_or_else(|| {
                self.conns.push(None);
                self.conns.len() - 1
            });
            if let Err(e) = registry.register(
                &mut stream,
                Token(self.token_base + slot),
                Interest::READABLE,
            ) {
                log::warn!("cannot register connection: {e}");
                self.free.push(slot);
                continue;
            }
            let _ = stream.set_nodelay(true);
            self.conns[slot] = Some(Conn {
                stream,
                remote: addr.ip(),
                rbuf: Vec::new(),
                wbuf: Vec::new(),
                wpos: 0,
                last_active: now,
                closing: false,
                want_write: false,
                producer: None,
            });
            self.open += 1;
        }
    }

    /// Handles readiness of the connection with `token`.
    #[allow(clippy::too_many_arguments)]
    pub fn ready(
        &mut self,
        token: Token,
        readable: bool,
        writable: bool,
        registry: &Registry,
        tracker: &mut Tracker,
        site: &HttpSite,
        now: u32,
    ) {
        let slot = token.0 - self.token_base;
        let Some(Some(conn)) = self.conns.get_mut(slot) else {
            return;
        };
        let mut alive = true;
        if writable && conn.want_write {
            alive = flush(conn, tracker, now);
            if alive && conn.wpos == conn.wbuf.len() && !conn.closing {
                // Drained: listen for requests again, and read what arrived meanwhile.
                alive = set_interest(conn, registry, token, false);
                if alive {
                    alive = self.read_and_serve(slot, registry, token, tracker, site, now);
                }
            }
        } else if readable && !conn.want_write && conn.producer.is_none() {
            alive = self.read_and_serve(slot, registry, token, tracker, site, now);
        }
        if !alive {
            self.close(slot, registry);
        } else if let Some(Some(conn)) = self.conns.get(slot) {
            if conn.closing && conn.wpos == conn.wbuf.len() && conn.producer.is_none() {
                self.close(slot, registry);
            }
        }
    }

    /// Reads until the socket is drained (edge-triggered), serves every complete request, writes the
    /// responses. Returns false when the connection is to be closed now.
    fn read_and_serve(
        &mut self,
        slot: usize,
        registry: &Registry,
        token: Token,
        tracker: &mut Tracker,
        site: &HttpSite,
        now: u32,
    ) -> bool {
        let limits = self.limits;
        let conn = self.conns[slot].as_mut().expect("open slot");
        loop {
            let n = match conn.stream.read(&mut self.read_buf) {
                Ok(0) => {
                    // The client half-closed: answer what it sent, then close.
                    conn.closing = true;
                    break;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            };
            tracker.stats.bytes_in += n as u64;
            conn.last_active = now;
            let mut pending = std::mem::take(&mut conn.rbuf);
            let data: &[u8] = if pending.is_empty() {
                &self.read_buf[..n]
            } else {
                pending.extend_from_slice(&self.read_buf[..n]);
                &pending
            };
            let mut consumed = 0;
            while consumed < data.len() && !conn.closing {
                match parse_request(&data[consumed..]) {
                    Ok(Some((req, len))) => {
                        if len > limits.max_request_size {
                            too_large(conn, tracker);
                            break;
                        }
                        consumed += len;
                        tracker.stats.http_connections = self.open as u64;
                        let keep = if req.has_body {
                            // We never read bodies; the framing of what follows is unknown.
                            tracker.stats.http_status(400);
                            write_error(&mut conn.wbuf, Status::BadRequest400, false);
                            false
                        } else {
                            handle(
                                tracker,
                                site,
                                &req,
                                conn.remote,
                                now,
                                &mut self.scratch,
                                &mut conn.wbuf,
                            )
                        };
                        if !keep {
                            conn.closing = true;
                        }
                        if let Some(walk) = self.scratch.take_stream() {
                            conn.producer = Some(walk);
                            self.streaming.push(slot);
                            tracker.stats.http_streams = self.streaming.len() as u64;
                            conn.closing = true;
                        }
                    }
                    Ok(None) => {
                        if data.len() - consumed > limits.max_request_size {
                            too_large(conn, tracker);
                        }
                        break;
                    }
                    Err(e) => {
                        tracker.stats.http_status(e.status().code());
                        write_error(&mut conn.wbuf, e.status(), false);
                        conn.closing = true;
                    }
                }
            }
            if !conn.closing && consumed < data.len() {
                let rest = data[consumed..].to_vec();
                pending.clear();
                pending.extend_from_slice(&rest);
                conn.rbuf = pending;
            }
            if conn.closing || !conn.wbuf.is_empty() {
                break;
            }
        }
        if conn.wpos < conn.wbuf.len() {
            if !flush(conn, tracker, now) {
                return false;
            }
            if conn.wpos < conn.wbuf.len() {
                return set_interest(conn, registry, token, true);
            }
        }
        !conn.closing || conn.producer.is_some()
    }

    /// True when some streaming connection has room for its next slice, so the loop should
    /// poll without waiting.
    pub fn streams_runnable(&self) -> bool {
        self.streaming.iter().any(|&slot| {
            matches!(&self.conns[slot], Some(c) if c.wbuf.len() - c.wpos < STREAM_HIGH_WATER)
        })
    }

    /// Gives each streaming connection with room in its write buffer one more slice
    /// ([`SLICE_TORRENTS`] torrents per store) and writes what the socket takes. A finished
    /// connection is closed once its last bytes are written. See the module doc.
    pub fn advance_streams(&mut self, registry: &Registry, tracker: &mut Tracker, now: u32) {
        let mut i = 0;
        while i < self.streaming.len() {
            let slot = self.streaming[i];
            let token = Token(self.token_base + slot);
            let Some(conn) = self.conns[slot].as_mut() else {
                self.streaming.swap_remove(i);
                continue;
            };
            if conn.wbuf.len() - conn.wpos >= STREAM_HIGH_WATER {
                // Waits for the socket: the last flush stopped at WouldBlock.
                i += 1;
                continue;
            }
            let Some(walk) = conn.producer.as_mut() else {
                self.streaming.swap_remove(i);
                continue;
            };
            // Drop what was written already, so the buffer stays bounded.
            conn.wbuf.drain(..conn.wpos);
            conn.wpos = 0;
            let finished = walk.step(
                &tracker.v4,
                &tracker.v6,
                |h| tracker.allowed(h),
                SLICE_TORRENTS,
                &mut conn.wbuf,
            );
            if finished {
                conn.producer = None;
            }
            let alive = flush(conn, tracker, now)
                && (conn.wpos == conn.wbuf.len() || set_interest(conn, registry, token, true));
            let done = finished && conn.wpos == conn.wbuf.len();
            if finished || !alive {
                self.streaming.swap_remove(i);
            } else {
                i += 1;
            }
            if !alive || done {
                self.close(slot, registry);
            }
        }
        tracker.stats.http_streams = self.streaming.len() as u64;
    }

    /// Closes connections idle for `http.idle_timeout` seconds or more.
    pub fn sweep_idle(&mut self, registry: &Registry, now: u32) {
        let timeout = self.limits.idle_timeout;
        for slot in 0..self.conns.len() {
            let idle = matches!(&self.conns[slot], Some(c) if now.saturating_sub(c.last_active) >= timeout);
            if idle {
                self.close(slot, registry);
            }
        }
    }

    fn close(&mut self, slot: usize, registry: &Registry) {
        if let Some(mut conn) = self.conns[slot].take() {
            if conn.producer.is_some() {
                self.streaming.retain(|&s| s != slot);
            }
            let _ = registry.deregister(&mut conn.stream);
            self.free.push(slot);
            self.open -= 1;
        }
    }
}

fn too_large(conn: &mut Conn, tracker: &mut Tracker) {
    tracker.stats.http_status(413);
    write_error(&mut conn.wbuf, Status::PayloadTooLarge413, false);
    conn.closing = true;
    conn.rbuf = Vec::new();
}

/// Writes as much of `wbuf` as the socket takes. Returns false on a write error.
fn flush(conn: &mut Conn, tracker: &mut Tracker, now: u32) -> bool {
    while conn.wpos < conn.wbuf.len() {
        match conn.stream.write(&conn.wbuf[conn.wpos..]) {
            Ok(0) => return false,
            Ok(n) => {
                conn.wpos += n;
                tracker.stats.bytes_out += n as u64;
                conn.last_active = now;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
    conn.wbuf.clear();
    conn.wpos = 0;
    if conn.wbuf.capacity() > KEEP_WBUF && conn.producer.is_none() {
        conn.wbuf = Vec::new();
    }
    true
}

fn set_interest(conn: &mut Conn, registry: &Registry, token: Token, write: bool) -> bool {
    if conn.want_write == write {
        return true;
    }
    let interest = if write {
        Interest::WRITABLE
    } else {
        Interest::READABLE
    };
    conn.want_write = write;
    registry
        .reregister(&mut conn.stream, token, interest)
        .is_ok()
}
