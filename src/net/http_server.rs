//! HTTP connections: accept, bounded reads, request framing, buffered writes, keep-alive, idle
//! timeout and a cap on open connections. What a request means is decided in
//! [`crate::front::http`]; this module only moves bytes.
//!
//! Limits (all from the config file):
//! - `http.max_connections`: when that many are open, a new connection is accepted and closed at
//!   once (counted as `tcp_refused_over_limit`), so the backlog never fills with clients that wait.
//! - `http.max_request_size`: a request head larger than this gets `413` and the connection closes.
//! - `http.max_header_lines`: a request head with more header lines gets `431` and the
//!   connection closes.
//! - A head that arrives in pieces is framed by a [`HeadScan`] kept with the connection: each
//!   read looks only at the new bytes, and the front parses the head once, when it is complete
//!   (or wrong, or over the size limit). The work per byte received stays constant however the
//!   client splits its head (one byte per packet at worst).
//! - Out of file descriptors (EMFILE, ENFILE at `accept`): a spare descriptor held for the
//!   purpose is closed, the newcomer accepted and closed at once (it sees a clean close instead
//!   of waiting in the backlog until its own timeout), the spare reopened; counted as
//!   `tcp_refused_no_fd`, logged at most once per [`fds::LOG_INTERVAL`] with the count since the
//!   last line. If the spare is gone too (with several workers, which share one descriptor
//!   table, another may take the descriptor it freed), the newcomer waits in the backlog and is
//!   accepted again at the next sweep (logged apart, not counted as refused). At start, [`fds::fit_connections`] raises the soft open-files limit and lowers
//!   `http.max_connections` to what fits.
//! - A listener yields at most [`MAX_ACCEPTS_PER_TURN`] connections per loop turn; the rest of
//!   its backlog is taken on the next turns (the listener goes on a pending list, served without
//!   waiting for readiness), so a burst of connections cannot hold the loop for long.
//! - `http.idle_timeout`: a connection with no read or write progress for that many seconds is
//!   closed (also a client that sends half a request and stops).
//! - `http.header_timeout`: a request head must be complete that many seconds after its first
//!   byte arrived, or the connection is closed without a reply (slowloris: one byte a second keeps
//!   a connection active, so the idle timeout alone does not catch it).
//! - `http.max_pipelined`: at most that many requests of one connection are answered per
//!   readiness event or loop turn. The others stay buffered (ours, or the kernel's) and the
//!   connection goes on a pending list that is served on the next loop turn without waiting for
//!   readiness: mio is edge-triggered, so no new event would come for bytes already received.
//! - While a response waits for a slow reader, nothing more is read from that connection
//!   (back-pressure): its unread requests stay in the kernel's buffer, not in ours.
//! - `http.max_write_buffer`: if more response bytes than that are still unsent after a write,
//!   the connection is dropped (a client that sends requests but does not read the answers).
//!   Back-pressure keeps a reading client far below it: one turn queues at most `max_pipelined`
//!   responses.
//!
//! Streamed responses (full scrape, `/stats` walks): the request leaves a [`Stream`] on its
//! connection (the "producer"): a [`Walk`](crate::front::http::walk::Walk) of its own (`/stats`
//! walks), or a reader of the shared full-scrape snapshot of its encoding
//! ([`crate::front::http::snapshot`]). The loop
//! calls [`HttpServer::advance_streams`] once per turn; it asks each producer for more only
//! while that connection's unsent bytes are under [`STREAM_HIGH_WATER`], so a slow reader holds
//! at most that plus one slice in its write buffer, and many full scrapes share the loop with
//! everything else: per turn, one slice of each walk, at most one slice of each snapshot being
//! built (when a reader waits for it), and at most [`TURN_BYTES`] copied from snapshots to all
//! readers together ([`PIECE_BYTES`] each, taking turns). A streamed response is the last one
//! on its connection (it is closed once the body is sent), and its connection reads nothing
//! more, so `http.max_write_buffer` does not apply to it.
//!
//! HTTPS: a connection accepted on a TLS listener (`listen.tls`, `api.listen_tls`) reads and
//! writes through its [`TlsConn`] (see [`super::tls`]); all of the above applies to its
//! plaintext unchanged. Its handshake counts against `http.header_timeout` from accept. A plain
//! connection pays one branch per read and write for this.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};

use crate::front::api::{Reply, Waiter, write_reply};
use crate::front::http::snapshot::{PIECE_BYTES, TURN_BYTES};
use crate::front::http::walk::SLICE_TORRENTS;
use crate::front::http::{Outcome, Scratch, Stream};
use crate::service::Tracker;
use crate::stats::TlsHandshakes;

use super::tls::TlsConn;

pub mod fds;
mod front;
pub use front::{ApiFront, Front, HeadLimits};

use crate::wire::http::HeadScan;
use fds::{Refusal, Spare, Throttle};

/// Limits of the HTTP server, from the config file (`http.*`).
#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    /// Most open connections (`http.max_connections`).
    pub max_connections: usize,
    /// Most bytes of one request head (`http.max_request_size`).
    pub max_request_size: usize,
    /// Most header lines of one request head (`http.max_header_lines`).
    pub max_header_lines: usize,
    /// `http.max_connections` as configured, before [`fds::fit_connections`] lowered
    /// `max_connections` to what the open-files limit allows (equal when it did not).
    pub max_connections_configured: usize,
    /// Seconds without progress before a connection is closed (`http.idle_timeout`).
    pub idle_timeout: u32,
    /// Seconds from the first byte of a request head to its end (`http.header_timeout`).
    pub header_timeout: u32,
    /// Requests answered per connection per readiness event or loop turn (`http.max_pipelined`).
    pub max_pipelined: usize,
    /// Bytes of responses left unsent after a write before the connection is dropped
    /// (`http.max_write_buffer`).
    pub max_write_buffer: usize,
}

/// Bytes read from a socket at once.
const READ_CHUNK: usize = 16 * 1024;

/// Connections taken from one listener's backlog per loop turn (accepted, or refused over a
/// limit); the rest wait for the next turn. A one-request connection is read, answered and
/// closed within its accept (about 30 us of tracker CPU, kernel included, in a release build:
/// BENCHMARKS.md's one-announce-per-connection figure), so a turn spends about 4 ms at most on
/// newcomers however many arrive at once.
pub const MAX_ACCEPTS_PER_TURN: usize = 128;

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
    /// How far the head at the start of `rbuf` was framed (reset when bytes are taken from
    /// the front of `rbuf`).
    scan: HeadScan,
    /// Response bytes not written yet, from `wpos`.
    wbuf: Vec<u8>,
    wpos: usize,
    /// Seconds (loop clock) of the last read or write progress.
    last_active: u32,
    /// Close once `wbuf` is written.
    closing: bool,
    /// Currently registered for WRITABLE (instead of READABLE).
    want_write: bool,
    /// The end of stream was read (the client closed its side).
    eof: bool,
    /// A readiness event said the client closed its side or the socket has an error
    /// ([`HttpServer::note_read_closed`]): from then on reads go on until the socket would
    /// block, a short read proves nothing (see [`HttpServer::read_and_serve`]).
    hup: bool,
    /// Seconds (loop clock) when the first byte of the incomplete head in `rbuf` arrived.
    head_since: Option<u32>,
    /// On the pending list: requests may be buffered here or in the kernel.
    queued: bool,
    /// The streamed response being written, if any (see the module doc).
    producer: Option<Stream>,
    /// Registered with the poll (a connection served at once after `accept` never is).
    registered: bool,
    /// Told apart from earlier connections in the same slot ([`Waiter`]).
    serial: u64,
    /// Waiting for a deferred answer ([`Outcome::Deferred`]); `Some(keep_alive)`. Nothing is
    /// read or served meanwhile.
    waiting: Option<bool>,
    /// The TLS session of an HTTPS connection; `None` for plain HTTP.
    tls: Option<Box<TlsConn>>,
}

/// Why a connection is closed (counted in [`crate::stats::TcpClosed`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Close {
    ByClient,
    AfterResponse,
    Idle,
    HeaderTimeout,
    SlowReader,
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
    /// Slots to serve on the next loop turn without a readiness event (`http.max_pipelined`).
    pending: Vec<usize>,
    /// The other half of `pending`, swapped in while the list is served (no allocation per turn).
    pending_spare: Vec<usize>,
    /// Slots of connections with a producer.
    streaming: Vec<usize>,
    /// Listeners whose backlog was left by [`MAX_ACCEPTS_PER_TURN`] on an earlier turn: accepted
    /// from again by this turn's [`HttpServer::serve_pending`], without a readiness event (mio
    /// is edge-triggered, so none would come for connections already waiting).
    accept_pending: Vec<usize>,
    /// Listeners left with a backlog during this turn: pending from the next turn on (so that
    /// one turn takes at most [`MAX_ACCEPTS_PER_TURN`] from a listener).
    accept_later: Vec<usize>,
    /// Serial number of the next connection accepted.
    next_serial: u64,
    /// Per listener: the index in `tls_configs` of its certificate, `None` for plain HTTP.
    listener_tls: Vec<Option<usize>>,
    /// TLS server configurations (certificate/key pairs), replaced on reload.
    tls_configs: Vec<Arc<rustls::ServerConfig>>,
    /// With several workers (`tracker.workers`): the connections open over every worker's
    /// server, so `http.max_connections` bounds them all ([`HttpServer::share_open_count`]).
    open_everywhere: Option<Arc<std::sync::atomic::AtomicUsize>>,
    /// The descriptor given up to refuse a newcomer when the process has no other
    /// (see the module doc).
    spare: Spare,
    /// Newcomers refused for want of a descriptor, logged at most once per interval.
    no_fd: Throttle,
    /// Accepts that failed for want of a descriptor and could not refuse the newcomer either
    /// (the spare was gone: with several workers another one may take the descriptor freed for
    /// a moment), logged the same way; the newcomer waits in the backlog.
    no_spare: Throttle,
    /// Some newcomer was left in a backlog by such a failure: [`HttpServer::retry_accepts`]
    /// accepts again (mio is edge-triggered, so no new event would come for it).
    accept_retry: bool,
    /// Other accept failures, logged the same way.
    accept_errors: Throttle,
}

impl HttpServer {
    /// Takes the bound listeners; connection tokens are `token_base + slot`.
    pub fn new(
        listeners: Vec<std::net::TcpListener>,
        limits: HttpLimits,
        token_base: usize,
    ) -> io::Result<Self> {
        let listeners: Vec<TcpListener> =
            listeners.into_iter().map(TcpListener::from_std).collect();
        Ok(HttpServer {
            listener_tls: vec![None; listeners.len()],
            tls_configs: Vec::new(),
            listeners,
            conns: Vec::new(),
            free: Vec::new(),
            open: 0,
            limits,
            token_base,
            scratch: Scratch::default(),
            read_buf: vec![0; READ_CHUNK].into_boxed_slice(),
            pending: Vec::new(),
            pending_spare: Vec::new(),
            streaming: Vec::new(),
            accept_pending: Vec::new(),
            accept_later: Vec::new(),
            next_serial: 0,
            spare: Spare::open(),
            no_fd: Throttle::default(),
            no_spare: Throttle::default(),
            accept_retry: false,
            accept_errors: Throttle::default(),
            open_everywhere: None,
        })
    }

    /// Counts this server's open connections in `count` too, which the servers of the other
    /// workers share, and applies `http.max_connections` to that total: the bound stays
    /// global with `tracker.workers` above 1 (exact but for connections accepted at the same
    /// instant by two workers: at most one over per other worker).
    pub fn share_open_count(&mut self, count: Arc<std::sync::atomic::AtomicUsize>) {
        count.fetch_add(self.open, std::sync::atomic::Ordering::Relaxed);
        self.open_everywhere = Some(count);
    }

    /// Connections open now over every worker sharing the count, else [`Self::open_connections`].
    fn open_total(&self) -> usize {
        self.open_everywhere
            .as_ref()
            .map_or(self.open, |c| c.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Sets the gauges of the connection cap in `stats`: `http.max_connections` in effect, and
    /// by how much the open-files limit lowered it ([`fds::fit_connections`]).
    pub fn publish_limits(&self, stats: &mut crate::stats::Stats) {
        stats.http_max_connections = self.limits.max_connections as u64;
        stats.http_max_connections_lowered_by =
            self.limits
                .max_connections_configured
                .saturating_sub(self.limits.max_connections) as u64;
    }

    /// Adds HTTPS listeners after the plain ones (call before [`HttpServer::register`]): each
    /// with the index of its certificate/key pair in `configs`
    /// ([`super::tls::Identities::configs`]), which this server keeps.
    pub fn add_tls_listeners(
        &mut self,
        listeners: Vec<(std::net::TcpListener, usize)>,
        configs: &[Arc<rustls::ServerConfig>],
    ) {
        for (l, index) in listeners {
            self.listeners.push(TcpListener::from_std(l));
            self.listener_tls.push(Some(index));
        }
        self.tls_configs = configs.to_vec();
    }

    /// Replaces certificate/key pair `index` (a reload): new connections use `config`, open ones
    /// keep theirs. An unknown index is ignored.
    pub fn set_tls_config(&mut self, index: usize, config: Arc<rustls::ServerConfig>) {
        if let Some(c) = self.tls_configs.get_mut(index) {
            *c = config;
        }
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

    /// Accepts the pending connections on listener `index`, at most [`MAX_ACCEPTS_PER_TURN`]
    /// (the listener then goes on the pending list, see [`HttpServer::serve_pending`]).
    ///
    /// The cheap path for one-request clients: a new connection is read at once, before it is
    /// registered with the poll (under load its request has usually arrived by the time it is
    /// accepted). Served and closed there, it costs `accept`, `read`, `write` and `close` and
    /// never touches epoll. Only a connection that stays open is registered.
    pub fn accept<F: Front>(
        &mut self,
        index: usize,
        registry: &Registry,
        tracker: &mut Tracker,
        front: &mut F,
        now: u32,
    ) {
        // This call serves the listener's backlog for this turn.
        self.accept_pending.retain(|&i| i != index);
        for _ in 0..MAX_ACCEPTS_PER_TURN {
            let (stream, addr): (TcpStream, SocketAddr) = match self.listeners[index].accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if fds::is_exhaustion(&e) => {
                    // The newcomer waits in the backlog: refuse it cleanly with the spare
                    // descriptor, then go on with the backlog.
                    let refusal = self.spare.refuse(&self.listeners[index]);
                    if refusal == Refusal::NothingWaiting {
                        // EMFILE comes before the backlog is looked at: it was empty.
                        return;
                    }
                    if refusal == Refusal::Refused {
                        tracker.stats.tcp_refused_no_fd += 1;
                        if let Some(n) = self.no_fd.note(now) {
                            log_no_fd(n, &e);
                        }
                        continue;
                    }
                    // Failed: the newcomer stays in the backlog until the next sweep.
                    self.accept_retry = true;
                    if let Some(n) = self.no_spare.note(now) {
                        log_no_spare(n, &e);
                    }
                    return;
                }
                Err(e) => {
                    // Others (ENOBUFS, ENOMEM, ...): retry on the next readiness event.
                    if let Some(n) = self.accept_errors.note(now) {
                        log::warn!("accept failed ({e}): {n} failure(s) since the last line");
                    }
                    return;
                }
            };
            tracker.stats.tcp_accepted += 1;
            if self.open_total() >= self.limits.max_connections {
                tracker.stats.tcp_refused_over_limit += 1;
                drop(stream);
                continue;
            }
            let tls = match self.listener_tls[index] {
                None => None,
                Some(i) => match TlsConn::new(&self.tls_configs[i]) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        log::warn!("cannot start a TLS session: {e}");
                        continue;
                    }
                },
            };
            let slot = self.free.pop().unwrap_or_else(|| {
                self.conns.push(None);
                self.conns.len() - 1
            });
            // TCP_NODELAY is inherited from the listener (Linux): no setsockopt per connection.
            self.conns[slot] = Some(Conn {
                stream,
                remote: addr.ip(),
                rbuf: Vec::new(),
                scan: HeadScan::default(),
                wbuf: Vec::new(),
                wpos: 0,
                last_active: now,
                closing: false,
                want_write: false,
                eof: false,
                hup: false,
                // The handshake counts against the header deadline.
                head_since: tls.as_ref().map(|_| now),
                queued: false,
                producer: None,
                registered: false,
                serial: self.next_serial,
                waiting: None,
                tls,
            });
            self.next_serial += 1;
            self.open += 1;
            if let Some(c) = &self.open_everywhere {
                c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            let token = Token(self.token_base + slot);
            let result = self.read_and_serve(slot, registry, token, tracker, front, now);
            self.settle(slot, registry, token, result, tracker);
        }
        // The budget is spent and the backlog may hold more: the next turn goes on.
        if !self.accept_later.contains(&index) {
            self.accept_later.push(index);
        }
    }

    /// After serving: closes the connection if `result` says so or if it is done (closing, all
    /// written, no stream), otherwise makes sure it is registered with the poll.
    fn settle(
        &mut self,
        slot: usize,
        registry: &Registry,
        token: Token,
        result: Result<(), Close>,
        tracker: &mut Tracker,
    ) {
        let Some(Some(conn)) = self.conns.get_mut(slot) else {
            return;
        };
        if let Err(why) = result {
            self.close(slot, registry, why, tracker);
        } else if conn.closing && conn.wpos == conn.wbuf.len() && conn.producer.is_none() {
            let why = if conn.eof {
                Close::ByClient
            } else {
                Close::AfterResponse
            };
            self.close(slot, registry, why, tracker);
        } else if !conn.registered {
            let interest = if conn.want_write {
                Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            match registry.register(&mut conn.stream, token, interest) {
                Ok(()) => conn.registered = true,
                Err(e) => {
                    log::warn!("cannot register connection: {e}");
                    self.close(slot, registry, Close::ByClient, tracker);
                }
            }
        }
    }

    /// Handles one readiness event of a connection (a token at or above the connection base):
    /// a hang-up or an error it carries is noted first ([`HttpServer::note_read_closed`]), then
    /// the connection is served as readable on readability, hang-up or error, and as writable
    /// on writability, write hang-up or error ([`HttpServer::ready`]).
    pub fn on_event<F: Front>(
        &mut self,
        event: &mio::event::Event,
        registry: &Registry,
        tracker: &mut Tracker,
        front: &mut F,
        now: u32,
    ) {
        if event.is_read_closed() || event.is_error() {
            self.note_read_closed(event.token());
        }
        self.ready(
            event.token(),
            event.is_readable() || event.is_read_closed() || event.is_error(),
            event.is_writable() || event.is_write_closed() || event.is_error(),
            registry,
            tracker,
            front,
            now,
        );
    }

    /// Marks the connection of `token` as closed by the client on its side or in error, as a
    /// readiness event said (mio's `is_read_closed` or `is_error`): call it before
    /// [`HttpServer::ready`] for that event. See [`Conn::hup`].
    fn note_read_closed(&mut self, token: Token) {
        let slot = token.0.wrapping_sub(self.token_base);
        if let Some(Some(conn)) = self.conns.get_mut(slot) {
            conn.hup = true;
        }
    }

    /// Handles readiness of the connection with `token` (see [`HttpServer::on_event`]).
    #[allow(clippy::too_many_arguments)]
    fn ready<F: Front>(
        &mut self,
        token: Token,
        readable: bool,
        writable: bool,
        registry: &Registry,
        tracker: &mut Tracker,
        front: &mut F,
        now: u32,
    ) {
        let slot = token.0 - self.token_base;
        let Some(Some(conn)) = self.conns.get_mut(slot) else {
            return;
        };
        let mut result = Ok(());
        if writable && conn.want_write {
            result = flush(conn, tracker, now);
            if result.is_ok() && conn.wpos == conn.wbuf.len() && !conn.closing {
                // Drained: listen for requests again, and read what arrived meanwhile.
                result = set_interest(conn, registry, token, false);
                if result.is_ok() {
                    result = self.read_and_serve(slot, registry, token, tracker, front, now);
                }
            }
        } else if readable && !conn.want_write && conn.producer.is_none() && conn.waiting.is_none()
        {
            result = self.read_and_serve(slot, registry, token, tracker, front, now);
        }
        self.settle(slot, registry, token, result, tracker);
    }

    /// True when some connection has requests left for the next loop turn, or some listener
    /// connections left in its backlog by [`MAX_ACCEPTS_PER_TURN`]: the loop must then poll
    /// without sleeping.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty() || !self.accept_pending.is_empty() || !self.accept_later.is_empty()
    }

    /// Accepts from the listeners left with a backlog by [`MAX_ACCEPTS_PER_TURN`], then serves
    /// the connections left with buffered requests by `http.max_pipelined` (or with bytes not
    /// read yet), each as if it had become readable. Call once per loop turn.
    pub fn serve_pending<F: Front>(
        &mut self,
        registry: &Registry,
        tracker: &mut Tracker,
        front: &mut F,
        now: u32,
    ) {
        // At most a few listeners. Those left with a backlog again, or during this turn's
        // events, are served on the next turn.
        while let Some(&index) = self.accept_pending.first() {
            self.accept(index, registry, tracker, front, now);
        }
        std::mem::swap(&mut self.accept_pending, &mut self.accept_later);
        if self.pending.is_empty() {
            return;
        }
        let mut list = std::mem::take(&mut self.pending_spare);
        std::mem::swap(&mut list, &mut self.pending);
        for &slot in &list {
            if let Some(Some(conn)) = self.conns.get_mut(slot) {
                conn.queued = false;
                let token = Token(self.token_base + slot);
                self.ready(token, true, false, registry, tracker, front, now);
            }
        }
        list.clear();
        self.pending_spare = list;
    }

    /// Serves requests buffered from earlier reads, then reads (edge-triggered: until the socket
    /// would block, unless a limit stops us first) and serves every complete request, up to
    /// `http.max_pipelined` per call; writes the responses. A connection stopped by the budget
    /// goes on the pending list. `Err` when the connection is to be closed now.
    ///
    /// A short read (fewer bytes than asked) of a plain connection counts as "would block":
    /// the socket was empty at that moment, and bytes arriving later raise a new readiness
    /// event (epoll reports each arrival after the event was fetched; a FIN that came before
    /// it is in that event's flags: [`HttpServer::note_read_closed`], after which reads go on
    /// to `WouldBlock`). That saves a read that would fail, on the next loop turn, for most
    /// keep-alive requests when the loop is not saturated. Not for TLS, whose reads return
    /// plaintext of records that may stay buffered.
    fn read_and_serve<F: Front>(
        &mut self,
        slot: usize,
        registry: &Registry,
        token: Token,
        tracker: &mut Tracker,
        front: &mut F,
        now: u32,
    ) -> Result<(), Close> {
        let limits = self.limits;
        tracker.stats.http_connections = self.open_total() as u64;
        let conn = self.conns[slot].as_mut().expect("open slot");
        let mut budget = limits.max_pipelined.max(1);
        let mut drained = false;
        // `rbuf` holds bytes not parsed since they arrived: kept from an earlier call (an
        // incomplete head, or requests left by the budget) or appended by a read below.
        let mut fresh = true;
        // The last read was short: the socket was empty then (see above).
        let mut short = false;
        loop {
            if fresh && budget > 0 && !conn.rbuf.is_empty() && head_ready(conn, &limits) {
                let buf = std::mem::take(&mut conn.rbuf);
                let served = serve_buffer(
                    conn,
                    slot,
                    &buf,
                    &mut budget,
                    tracker,
                    front,
                    now,
                    &mut self.scratch,
                    &limits,
                );
                keep_rest(conn, buf, served, now);
            }
            fresh = false;
            if conn.closing || budget == 0 || !conn.wbuf.is_empty() || conn.waiting.is_some() {
                break;
            }
            if short {
                drained = true;
                break;
            }
            let n = match read(conn, &mut self.read_buf, &mut tracker.stats.tls) {
                Ok(0) => {
                    // The client half-closed: answer what it sent, then close.
                    conn.closing = true;
                    conn.eof = true;
                    drained = true;
                    break;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    drained = true;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(Close::ByClient),
            };
            tracker.stats.bytes_in += n as u64;
            conn.last_active = now;
            short = n < self.read_buf.len() && conn.tls.is_none() && !conn.hup;
            if !conn.rbuf.is_empty() {
                conn.rbuf.extend_from_slice(&self.read_buf[..n]);
                fresh = true;
                continue;
            }
            // The common case: a whole request in one read, parsed in place (no copy).
            let served = serve_buffer(
                conn,
                slot,
                &self.read_buf[..n],
                &mut budget,
                tracker,
                front,
                now,
                &mut self.scratch,
                &limits,
            );
            if served.consumed == n {
                conn.head_since = None;
            } else {
                // Already parsed: kept, not served again until more bytes arrive (or, if the
                // budget stopped us, on the next turn through the pending list).
                let rest = self.read_buf[served.consumed..n].to_vec();
                let served = Served {
                    consumed: 0,
                    ..served
                };
                conn.scan = HeadScan::default();
                keep_rest(conn, rest, served, now);
            }
        }
        if conn.producer.is_some() && !self.streaming.contains(&slot) {
            self.streaming.push(slot);
            tracker.stats.http_streams = self.streaming.len() as u64;
        }
        if conn.wpos < conn.wbuf.len() {
            flush(conn, tracker, now)?;
            if conn.wpos < conn.wbuf.len() {
                if conn.wbuf.len() - conn.wpos > limits.max_write_buffer {
                    return Err(Close::SlowReader);
                }
                return set_interest(conn, registry, token, true);
            }
        }
        if conn.tls.as_ref().is_some_and(|t| t.wants_write()) {
            // Handshake records the socket did not take: wait until it is writable.
            return set_interest(conn, registry, token, true);
        }
        if conn.closing || conn.waiting.is_some() {
            // Waiting: `deliver` puts the connection back on the pending list.
            return Ok(());
        }
        // Stopped by the budget or to flush, not because the socket was empty: come back on the
        // next turn (no readiness event will come for bytes already received).
        let more = !(drained || short) || (budget == 0 && !conn.rbuf.is_empty());
        if more && !conn.queued {
            conn.queued = true;
            self.pending.push(slot);
        }
        Ok(())
    }

    /// True when some streaming connection has room for its next slice, so the loop should
    /// poll without waiting.
    pub fn streams_runnable(&self) -> bool {
        self.streaming.iter().any(|&slot| {
            matches!(&self.conns[slot], Some(c) if c.wbuf.len() - c.wpos < STREAM_HIGH_WATER)
        })
    }

    /// Gives each streaming connection with room in its write buffer more of its body (a walk:
    /// one slice of [`SLICE_TORRENTS`] torrents per store; a full-scrape snapshot reader: up to
    /// [`PIECE_BYTES`], within [`TURN_BYTES`] for all of them, after one slice of each snapshot
    /// a reader waits for) and writes what the socket takes. A finished connection is closed
    /// once its last bytes are written. See the module doc.
    pub fn advance_streams(&mut self, registry: &Registry, tracker: &mut Tracker, now: u32) {
        let snapshots = self.scratch.snapshots();
        snapshots.build(&tracker.v4, &tracker.v6, |h| tracker.allowed(h));
        snapshots.sweep(now);
        let mut budget = TURN_BYTES;
        let mut i = 0;
        while i < self.streaming.len() {
            if budget == 0 {
                // Out of budget: the next turn starts with the readers not served in this one.
                self.streaming.rotate_left(i);
                break;
            }
            let slot = self.streaming[i];
            let token = Token(self.token_base + slot);
            let Some(conn) = self.conns[slot].as_mut() else {
                self.streaming.swap_remove(i);
                continue;
            };
            let unsent = conn.wbuf.len() - conn.wpos;
            if unsent >= STREAM_HIGH_WATER {
                // Waits for the socket: the last flush stopped at WouldBlock.
                i += 1;
                continue;
            }
            let finished = match conn.producer.as_mut() {
                None => {
                    self.streaming.swap_remove(i);
                    continue;
                }
                Some(Stream::Snapshot(reader)) if !self.scratch.snapshots().ready(reader) => {
                    // Waits for the next slice of the build.
                    i += 1;
                    continue;
                }
                Some(producer) => {
                    // Drop what was written already, so the buffer stays bounded.
                    conn.wbuf.drain(..conn.wpos);
                    conn.wpos = 0;
                    match producer {
                        Stream::Walk(walk) => walk.step(
                            &tracker.v4,
                            &tracker.v6,
                            |h| tracker.allowed(h),
                            SLICE_TORRENTS,
                            &mut conn.wbuf,
                        ),
                        Stream::Snapshot(reader) => {
                            let room = (STREAM_HIGH_WATER - unsent).min(PIECE_BYTES).min(budget);
                            let before = conn.wbuf.len();
                            let done = self.scratch.snapshots().feed(reader, room, &mut conn.wbuf);
                            budget -= (conn.wbuf.len() - before).min(budget);
                            done
                        }
                    }
                }
            };
            if finished {
                if let Some(Stream::Snapshot(reader)) = conn.producer.take() {
                    self.scratch.snapshots().leave(reader);
                }
            }
            let result = flush(conn, tracker, now).and_then(|()| {
                if conn.wpos == conn.wbuf.len() {
                    Ok(())
                } else {
                    set_interest(conn, registry, token, true)
                }
            });
            let done = finished && conn.wpos == conn.wbuf.len();
            if finished || result.is_err() {
                self.streaming.swap_remove(i);
            } else {
                i += 1;
            }
            match result {
                Err(why) => self.close(slot, registry, why, tracker),
                Ok(()) if done => self.close(slot, registry, Close::AfterResponse, tracker),
                Ok(()) => {}
            }
        }
        tracker.stats.http_streams = self.streaming.len() as u64;
        tracker.stats.fullscrape_snapshot_bytes = self.scratch.snapshots().bytes() as u64;
    }

    /// Writes the deferred answer `reply` to the connection `waiter` names, if it is still open
    /// and waiting (a connection closed meanwhile is gone; its slot may serve another one, which
    /// the serial number tells apart). The connection then serves what it has buffered, on the
    /// next loop turn.
    pub fn deliver(
        &mut self,
        waiter: Waiter,
        reply: &Reply,
        registry: &Registry,
        tracker: &mut Tracker,
        now: u32,
    ) {
        let Some(Some(conn)) = self.conns.get_mut(waiter.slot) else {
            return;
        };
        if conn.serial != waiter.serial {
            return;
        }
        let Some(keep_alive) = conn.waiting.take() else {
            return;
        };
        if reply.status.code() != 200 {
            tracker.stats.http_status(reply.status.code());
        }
        write_reply(reply, keep_alive, &mut conn.wbuf);
        conn.closing |= !keep_alive;
        let token = Token(self.token_base + waiter.slot);
        let mut result = flush(conn, tracker, now);
        if result.is_ok() && conn.wpos < conn.wbuf.len() {
            result = set_interest(conn, registry, token, true);
        } else if result.is_ok() && !conn.closing && !conn.queued {
            conn.queued = true;
            self.pending.push(waiter.slot);
        }
        self.settle(waiter.slot, registry, token, result, tracker);
    }

    /// Accepts again on every listener if an accept left a newcomer in a backlog (out of file
    /// descriptors with no spare to refuse it: see [`HttpServer::accept`]); nothing otherwise.
    /// Call about once a second, after [`HttpServer::sweep_idle`] took the spare back.
    pub fn retry_accepts<F: Front>(
        &mut self,
        registry: &Registry,
        tracker: &mut Tracker,
        front: &mut F,
        now: u32,
    ) {
        if std::mem::take(&mut self.accept_retry) {
            for index in 0..self.listeners.len() {
                self.accept(index, registry, tracker, front, now);
            }
        }
    }

    /// Closes connections whose request head is older than `http.header_timeout` seconds, then
    /// those idle for `http.idle_timeout` seconds or more; logs the accept failures counted
    /// since the last line once [`fds::LOG_INTERVAL`] passed, and takes the spare descriptor
    /// back if it could not be reopened. Call about once a second.
    pub fn sweep_idle(&mut self, registry: &Registry, tracker: &mut Tracker, now: u32) {
        if let Some(n) = self.no_fd.flush(now) {
            log::warn!(
                "accept: out of file descriptors: {n} new connection(s) refused since the last \
                 line"
            );
        }
        if let Some(n) = self.no_spare.flush(now) {
            log::warn!(
                "accept: out of file descriptors and no spare descriptor: {n} newcomer(s) left \
                 in the backlog since the last line"
            );
        }
        if let Some(n) = self.accept_errors.flush(now) {
            log::warn!("accept failed: {n} failure(s) since the last line");
        }
        self.spare.reopen();
        let limits = self.limits;
        for slot in 0..self.conns.len() {
            let why = match &self.conns[slot] {
                Some(c)
                    if c.head_since
                        .is_some_and(|t| now.saturating_sub(t) >= limits.header_timeout) =>
                {
                    Close::HeaderTimeout
                }
                Some(c) if now.saturating_sub(c.last_active) >= limits.idle_timeout => Close::Idle,
                _ => continue,
            };
            self.close(slot, registry, why, tracker);
        }
    }

    fn close(&mut self, slot: usize, registry: &Registry, why: Close, tracker: &mut Tracker) {
        // No epoll_ctl(DEL): closing the socket (dropping `conn`) removes it from the epoll set,
        // and mio keeps no state per registration on Linux. One system call less per connection.
        let _ = registry;
        if let Some(mut conn) = self.conns[slot].take() {
            if let Some(tls) = conn.tls.as_mut() {
                let t = &mut tracker.stats.tls;
                match (tls.handshaking(), why) {
                    (true, Close::HeaderTimeout) => t.timed_out += 1,
                    (true, _) => t.failed += 1,
                    (false, Close::ByClient) => {}
                    (false, _) => tls.close_notify(&mut conn.stream),
                }
            }
            match conn.producer.take() {
                Some(Stream::Snapshot(reader)) => {
                    self.streaming.retain(|&s| s != slot);
                    self.scratch.snapshots().leave(reader);
                }
                Some(Stream::Walk(_)) => self.streaming.retain(|&s| s != slot),
                None => {}
            }
            self.free.push(slot);
            self.open -= 1;
            if let Some(c) = &self.open_everywhere {
                c.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            }
            let c = &mut tracker.stats.tcp_closed;
            match why {
                Close::ByClient => c.by_client += 1,
                Close::AfterResponse => c.after_response += 1,
                Close::Idle => c.idle_timeout += 1,
                Close::HeaderTimeout => c.header_timeout += 1,
                Close::SlowReader => c.slow_reader += 1,
            }
        }
    }
}

/// What [`serve_buffer`] did with a buffer.
#[derive(Clone, Copy, Debug)]
struct Served {
    /// Bytes of complete requests consumed from the start of the buffer.
    consumed: usize,
    /// At least one request was answered.
    answered: bool,
    /// Stopped at an incomplete head (its bytes start at `consumed`).
    partial: bool,
}

/// Answers the complete requests at the start of `data`, at most `budget` of them (decremented),
/// appending the responses to the connection's write buffer. Stops at an incomplete head, at a
/// request that closes the connection, or when the budget is spent.
#[allow(clippy::too_many_arguments)]
fn serve_buffer<F: Front>(
    conn: &mut Conn,
    slot: usize,
    data: &[u8],
    budget: &mut usize,
    tracker: &mut Tracker,
    front: &mut F,
    now: u32,
    scratch: &mut Scratch,
    limits: &HttpLimits,
) -> Served {
    let mut served = Served {
        consumed: 0,
        answered: false,
        partial: false,
    };
    let waiter = Waiter {
        slot,
        serial: conn.serial,
    };
    while served.consumed < data.len() && !conn.closing && conn.waiting.is_none() && *budget > 0 {
        match front.serve(
            tracker,
            &data[served.consumed..],
            &HeadLimits {
                max_request_size: limits.max_request_size,
                max_header_lines: limits.max_header_lines,
            },
            conn.remote,
            waiter,
            now,
            scratch,
            &mut conn.wbuf,
        ) {
            Outcome::Deferred { len, keep_alive } => {
                served.consumed += len;
                served.answered = true;
                *budget -= 1;
                conn.waiting = Some(keep_alive);
            }
            Outcome::Answered { len, keep_alive } => {
                served.consumed += len;
                served.answered = true;
                *budget -= 1;
                if !keep_alive {
                    conn.closing = true;
                }
                if let Some(stream) = scratch.take_stream() {
                    // A streamed response is the last on its connection (see the module doc).
                    conn.producer = Some(stream);
                    conn.closing = true;
                }
            }
            Outcome::Incomplete => {
                served.partial = true;
                break;
            }
            Outcome::Refused => {
                conn.closing = true;
                conn.rbuf = Vec::new();
            }
        }
    }
    served
}

/// Keeps the unconsumed rest of `buf` as the connection's read buffer (reusing `buf`'s
/// allocation), and starts or stops the header clock: a new incomplete head starts it now, an
/// incomplete head that got more bytes keeps its start, no incomplete head stops it.
fn keep_rest(conn: &mut Conn, mut buf: Vec<u8>, served: Served, now: u32) {
    if conn.closing {
        conn.rbuf = Vec::new();
        conn.scan = HeadScan::default();
        conn.head_since = None;
        return;
    }
    if served.consumed > 0 {
        // The head at the front of the buffer changed: frame the rest from its start.
        conn.scan = HeadScan::default();
    }
    buf.drain(..served.consumed);
    conn.rbuf = buf;
    conn.head_since = if !served.partial {
        None
    } else if served.answered || conn.head_since.is_none() {
        Some(now)
    } else {
        conn.head_since
    };
}

/// Whether the bytes in the connection's read buffer are worth handing to the front: the head
/// at their start is complete or wrong by its [`HeadScan`] (which looks only at the bytes that
/// arrived since the last call), or the buffer passed `http.max_request_size` (413). An
/// incomplete head under the limits waits for more bytes without being parsed again.
fn head_ready(conn: &mut Conn, limits: &HttpLimits) -> bool {
    match conn.scan.scan(&conn.rbuf, limits.max_header_lines) {
        Ok(None) => conn.rbuf.len() > limits.max_request_size,
        Ok(Some(_)) | Err(_) => true,
    }
}

/// Logs newcomers refused for want of a descriptor, the first after a quiet interval: `count`
/// since the last line, this one included (each accepted and closed with the spare descriptor).
fn log_no_fd(count: u64, e: &io::Error) {
    log::warn!(
        "accept: out of file descriptors ({e}): {count} new connection(s) refused since the last \
         line (accepted and closed at once); raise the open-files limit (ulimit -n, systemd \
         LimitNOFILE=) or lower http.max_connections"
    );
}

/// Logs accepts that failed for want of a descriptor while the spare could not be used either,
/// the first after a quiet interval: `count` since the last line, this one included (each
/// newcomer waits in the backlog until [`HttpServer::retry_accepts`]).
fn log_no_spare(count: u64, e: &io::Error) {
    log::warn!(
        "accept: out of file descriptors ({e}) and no spare descriptor: {count} newcomer(s) \
         left in the backlog since the last line; raise the open-files limit (ulimit -n, \
         systemd LimitNOFILE=) or lower http.max_connections"
    );
}

/// Reads from the connection's socket, through its TLS session if it has one (plaintext out).
#[inline]
fn read(conn: &mut Conn, buf: &mut [u8], stats: &mut TlsHandshakes) -> io::Result<usize> {
    match conn.tls.as_mut() {
        None => conn.stream.read(buf),
        Some(tls) => tls.read(&mut conn.stream, buf, stats),
    }
}

/// Writes as much of `wbuf` as the socket takes. `Err` on a write error.
fn flush(conn: &mut Conn, tracker: &mut Tracker, now: u32) -> Result<(), Close> {
    if let Some(tls) = conn.tls.as_mut() {
        // Records queued by a read (handshake) go first; the caller looks at `wants_write`.
        match tls.flush(&mut conn.stream) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(_) => return Err(Close::ByClient),
        }
    }
    while conn.wpos < conn.wbuf.len() {
        let data = &conn.wbuf[conn.wpos..];
        let written = match conn.tls.as_mut() {
            None => conn.stream.write(data),
            Some(tls) => tls.write(&mut conn.stream, data),
        };
        match written {
            Ok(0) => return Err(Close::ByClient),
            Ok(n) => {
                conn.wpos += n;
                tracker.stats.bytes_out += n as u64;
                conn.last_active = now;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(Close::ByClient),
        }
    }
    conn.wbuf.clear();
    conn.wpos = 0;
    if conn.wbuf.capacity() > KEEP_WBUF && conn.producer.is_none() {
        conn.wbuf = Vec::new();
    }
    Ok(())
}

fn set_interest(
    conn: &mut Conn,
    registry: &Registry,
    token: Token,
    write: bool,
) -> Result<(), Close> {
    if conn.want_write == write && conn.registered {
        return Ok(());
    }
    let interest = if write {
        Interest::WRITABLE
    } else {
        Interest::READABLE
    };
    conn.want_write = write;
    let result = if conn.registered {
        registry.reregister(&mut conn.stream, token, interest)
    } else {
        registry.register(&mut conn.stream, token, interest)
    };
    conn.registered = true;
    result.map_err(|_| Close::ByClient)
}

#[cfg(test)]
mod tests;
