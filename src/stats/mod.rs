//! Counters of what the tracker did, their recent past ([`history`]), and the `/stats`,
//! Prometheus ([`report`]) and HTML status page ([`html`]) output.
//!
//! The loop is single-threaded and owns one [`Stats`] value, so counters are plain `u64`s incremented
//! without atomics or locks on the hot path. When the tracker grows to several loops (DESIGN.md,
//! growth path), each loop keeps its own `Stats` and the output sums them.

pub mod history;
pub mod html;
pub mod report;
mod summary;

use crate::types::Family;

/// Requests counted per protocol and family.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// Announces answered with peers (or, for `stopped`, with counts).
    pub announce: u64,
    /// Scrapes answered (a multi-hash scrape counts once).
    pub scrape: u64,
    /// BEP 15 connect requests answered (UDP only).
    pub connect: u64,
    /// Requests refused with a bencoded `failure reason` or a BEP 15 error packet.
    pub failed: u64,
}

/// Every counter of one event loop. Plain integers, read by `/stats` and `/metrics`.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// HTTP requests by family (index [`Family`] as usize).
    pub http: [RequestCounts; 2],
    /// UDP requests by family.
    pub udp: [RequestCounts; 2],
    /// TCP connections accepted.
    pub tcp_accepted: u64,
    /// TCP connections closed at once because `http.max_connections` were open.
    pub tcp_refused_over_limit: u64,
    /// HTTP responses with a non-200 status (framing errors, 404, 405, 413), by status code.
    pub http_status_errors: Vec<(u16, u64)>,
    /// `event=completed` announces that raised a torrent's `downloaded` count.
    pub completed: u64,
    /// Bytes read from and written to HTTP connections and UDP sockets.
    pub bytes_in: u64,
    /// See [`Stats::bytes_in`].
    pub bytes_out: u64,
    /// UDP datagrams dropped or refused before reaching the store, by reason.
    pub udp_invalid: UdpInvalid,
    /// UDP replies the kernel would not take (full send buffer, unreachable address): dropped.
    pub udp_send_dropped: u64,
    /// Iterations of the event loop.
    pub loop_iterations: u64,
    /// Longest time one loop iteration spent working (not waiting), in microseconds.
    pub longest_stall_us: u64,
    /// Full scrapes started (`GET /scrape` without info_hash), gzip or not.
    pub fullscrapes: u64,
    /// Of [`Stats::fullscrapes`], those sent gzip-compressed.
    pub fullscrapes_gzip: u64,
    /// HTTP connections open, as of the last request served (a gauge the HTTP server sets).
    pub http_connections: u64,
    /// Streamed responses (full scrapes, `/stats` walks) being written (a gauge the HTTP
    /// server sets).
    pub http_streams: u64,
    /// Announces refused because `tracker.max_torrents` torrents were held (HTTP and UDP).
    pub refused_torrent_limit: u64,
    /// Announces refused because `tracker.max_peers` peers were held (HTTP and UDP).
    pub refused_peer_limit: u64,
    /// Announces refused because the access list (whitelist or blacklist) refuses the
    /// info_hash (HTTP and UDP; also counted in `failed`).
    pub refused_not_authorized: u64,
    /// How HTTP connections ended, besides `tcp_refused_over_limit` (hostile-input limits).
    pub tcp_closed: TcpClosed,
    /// Requests per protocol and family over the last minutes ([`Stats::sample`]).
    pub history: history::History,
}

/// HTTP connections closed, by who or what closed them. With `tcp_refused_over_limit` and the
/// connections still open, these add up to `tcp_accepted`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpClosed {
    /// The client closed (end of stream) or the socket failed (reset, write error).
    pub by_client: u64,
    /// Closed by us after a response: `Connection: close`, HTTP/1.0, an error status (400, 413).
    pub after_response: u64,
    /// No read or write progress for `http.idle_timeout` seconds.
    pub idle_timeout: u64,
    /// A request head not complete `http.header_timeout` seconds after its first byte
    /// (slowloris).
    pub header_timeout: u64,
    /// More than `http.max_write_buffer` response bytes left unsent after a write.
    pub slow_reader: u64,
    /// Still open when the loop stopped.
    pub at_exit: u64,
}

impl Stats {
    /// Counts one HTTP response with a non-200 status code.
    pub fn http_status(&mut self, code: u16) {
        match self.http_status_errors.iter_mut().find(|(c, _)| *c == code) {
            Some((_, n)) => *n += 1,
            None => self.http_status_errors.push((code, 1)),
        }
    }

    /// Requests so far (announces, scrapes, connects, failed) per series of
    /// [`history::SERIES`]: HTTP IPv4, HTTP IPv6, UDP IPv4, UDP IPv6.
    pub fn request_totals(&self) -> [u64; 4] {
        let sum = |c: &RequestCounts| c.announce + c.scrape + c.connect + c.failed;
        let (v4, v6) = (Family::V4 as usize, Family::V6 as usize);
        [
            sum(&self.http[v4]),
            sum(&self.http[v6]),
            sum(&self.udp[v4]),
            sum(&self.udp[v6]),
        ]
    }

    /// Lets [`Stats::history`] take a sample if one is due; `now` in seconds since the start.
    /// Cheap (a comparison) when none is: the loop calls it about once a second.
    pub fn sample(&mut self, now: u32) {
        let totals = self.request_totals();
        self.history.record(now, totals);
    }

    /// How many HTTP responses had status `code` (0 if none).
    pub fn http_status_count(&self, code: u16) -> u64 {
        self.http_status_errors
            .iter()
            .find(|(c, _)| *c == code)
            .map_or(0, |(_, n)| *n)
    }
}

/// UDP datagrams that were not served, by reason (BEP 15 handling in `front::udp`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UdpInvalid {
    /// Shorter than 16 bytes, or longer than the receive buffer: dropped silently.
    pub malformed_header: u64,
    /// A connect without the protocol magic: dropped silently (not a BEP 15 client).
    pub bad_magic: u64,
    /// An action other than connect, announce or scrape.
    pub unknown_action: u64,
    /// A connection_id that is forged or older than two windows.
    pub bad_connection_id: u64,
    /// An announce or scrape that does not parse (truncated, bad event, bad option, no hash).
    pub malformed_request: u64,
}
