//! Counters of what the tracker did, their recent past ([`history`]), and the `/stats`,
//! Prometheus ([`report`]) and HTML status page ([`html`]) output.
//!
//! Each event loop (worker, `tracker.workers`) owns one [`Stats`] value, so counters are plain
//! `u64`s incremented without atomics or locks on the hot path; with several workers the output
//! reads their sum ([`workers::Board`]).

pub mod history;
pub mod html;
pub mod report;
mod summary;
pub mod workers;

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
    /// TCP connections accepted and closed at once because the process had no file descriptor
    /// left (EMFILE, ENFILE), with the spare descriptor (`net::http_server::fds`).
    pub tcp_refused_no_fd: u64,
    /// `http.max_connections` in effect (a gauge the HTTP server sets at start): the
    /// configured value, or less when the open-files limit could not hold it.
    pub http_max_connections: u64,
    /// By how many connections the open-files limit lowered `http.max_connections` at start
    /// (0 when it did not).
    pub http_max_connections_lowered_by: u64,
    /// HTTP responses with a non-200 status (framing errors, 404, 405, 413), by status code.
    pub http_status_errors: Vec<(u16, u64)>,
    /// Announces that raised a torrent's `downloaded` count: `event=completed`, or a stored
    /// leecher's first `left=0` whatever the event (`swarm::store::Store::announce`).
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
    /// Full-scrape snapshots built (one per encoding per `http.fullscrape_max_age`, see
    /// `front::http::snapshot`): the full scrapes that walked the store.
    pub fullscrape_snapshots: u64,
    /// Full scrapes served from a snapshot another full scrape had started (no walk of their
    /// own). With [`Stats::fullscrape_snapshots`] they add up to [`Stats::fullscrapes`].
    pub fullscrape_shared: u64,
    /// Full scrapes refused with 503 because `http.fullscrape_max_streams` were being sent.
    pub fullscrape_refused_busy: u64,
    /// Bytes the full-scrape snapshots hold now (a gauge the HTTP server sets).
    pub fullscrape_snapshot_bytes: u64,
    /// HTTP connections open (over every worker with `tracker.workers`), as of the last request
    /// served (a gauge the HTTP server sets).
    pub http_connections: u64,
    /// Streamed responses (full scrapes, `/stats` walks) being written (a gauge the HTTP
    /// server sets).
    pub http_streams: u64,
    /// Announces refused because `tracker.max_torrents` torrents were held (HTTP and UDP).
    pub refused_torrent_limit: u64,
    /// Announces refused because `tracker.max_peers` peers were held (HTTP and UDP).
    pub refused_peer_limit: u64,
    /// How HTTP connections ended, besides `tcp_refused_over_limit` (hostile-input limits).
    pub tcp_closed: TcpClosed,
    /// Announces refused by the tracker's mode (keys, whitelist), HTTP and UDP.
    pub auth_refused: AuthRefused,
    /// Requests refused or dropped by the quotas per source (`service::quota`).
    pub quota: QuotaRefused,
    /// Live sync (cluster) packets and records sent, received and refused.
    pub livesync: Livesync,
    /// TLS handshakes of the HTTPS listeners (`listen.tls`, `api.listen_tls`).
    pub tls: TlsHandshakes,
    /// Requests per protocol and family over the last minutes ([`Stats::sample`]).
    pub history: history::History,
    /// With `tracker.workers` above 1, in the sum `/stats` and `/metrics` read
    /// ([`workers::Board::total`]): each worker's figures, indexed by worker. Empty otherwise.
    pub workers: Vec<workers::WorkerCounts>,
}

/// Announces refused by `tracker.mode` (see `service::private`), by reason, HTTP and UDP
/// together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuthRefused {
    /// Private mode, no key in the announce URL.
    pub missing_key: u64,
    /// A key that is not known (or not 32 alphanumerics).
    pub unknown_key: u64,
    /// A known key past its `valid_until`.
    pub expired_key: u64,
    /// An info_hash the access list refuses: not on the whitelist (listed modes, or an
    /// `access.whitelist` file), or on the blacklist.
    pub not_authorized: u64,
}

/// Requests refused or dropped by the quotas per source (`service::quota`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuotaRefused {
    /// Announces refused because their network (IPv4 /24, IPv6 /48) created
    /// `tracker.max_new_torrents_per_net` torrents within a minute (HTTP and UDP).
    pub new_torrents_per_net: u64,
    /// Announces of a new peer refused because the swarm held `tracker.max_peers_per_source`
    /// peers of its source (IPv4 address, IPv6 /64), HTTP and UDP.
    pub peers_per_source: u64,
    /// UDP datagrams dropped unanswered: their source (IPv4 address, IPv6 /64) was over
    /// `udp.rate_limit`.
    pub udp_rate_limited: u64,
}

/// TLS handshakes on HTTPS connections (`net::tls`), by outcome, and the time they took.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlsHandshakes {
    /// Handshakes completed.
    pub completed: u64,
    /// Handshakes that failed: a protocol error or alert (an untrusted certificate, no common
    /// version or cipher suite, not TLS at all), or the client closed before the end.
    pub failed: u64,
    /// Handshakes not complete `http.header_timeout` seconds after the connection was accepted
    /// (the connection is closed; also counted in `tcp_closed.header_timeout`).
    pub timed_out: u64,
    /// Wall-clock time from accept to the end of each completed handshake, summed, in
    /// microseconds (mostly the client's round trips, not the tracker's CPU).
    pub micros: u64,
    /// Certificate reloads (SIGHUP) that failed and kept the previous certificate.
    pub reload_failed: u64,
}

/// HTTP connections closed, by who or what closed them. With `tcp_refused_over_limit` and the
/// connections still open, these add up to `tcp_accepted` (`tcp_refused_no_fd` is apart: those
/// were never counted as accepted).
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

/// Why a live sync datagram was refused as a whole (the labels of
/// `opentracker_livesync_packets_refused_total`): the source is not named by
/// `livesync.cluster.node_ip`, the packet carries our own tracker_id, then the reasons of
/// [`crate::wire::livesync::Error::reason`].
pub const LIVESYNC_PACKET_REFUSALS: [&str; 9] = [
    "not_node",
    "own_id",
    "too_short",
    "no_records",
    "unknown_type",
    "unauthenticated",
    "no_secret",
    "bad_mac",
    "partial_record",
];

/// Why one record of an accepted live sync packet was not applied (the labels of
/// `opentracker_livesync_records_refused_total`): the access list refuses the info_hash,
/// `tracker.max_torrents` / `tracker.max_peers` are reached, or the peer's port is 0.
pub const LIVESYNC_RECORD_REFUSALS: [&str; 3] = ["not_authorized", "capacity", "bad_peer"];

/// Live sync counters (`net::livesync`, `service::sync`). All zero when live sync is off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Livesync {
    /// Datagrams sent (one per destination: the multicast group or each unicast peer).
    pub packets_sent: u64,
    /// Records sent, counted once per packet built (not per destination).
    pub records_sent: u64,
    /// Datagrams the kernel refused to send (full buffer, unreachable peer): dropped.
    pub send_failed: u64,
    /// Records dropped before sending because the queue held [`crate::service::sync::MAX_QUEUED`]
    /// records (a loop turn served more announces than that).
    pub queue_dropped: u64,
    /// Datagrams accepted (source allowed, other tracker_id, well formed, MAC checked).
    pub packets_received: u64,
    /// Records of accepted datagrams applied to the store.
    pub records_received: u64,
    /// Datagrams refused, by reason, indexed as [`LIVESYNC_PACKET_REFUSALS`].
    pub packets_refused: [u64; LIVESYNC_PACKET_REFUSALS.len()],
    /// Records not applied, by reason, indexed as [`LIVESYNC_RECORD_REFUSALS`].
    pub records_refused: [u64; LIVESYNC_RECORD_REFUSALS.len()],
    /// Records received by sync that raised a torrent's `downloaded` count (not in
    /// [`Stats::completed`], which counts this node's clients only).
    pub completed: u64,
    /// Lag of the last packet sent, in milliseconds: how long its oldest record waited in the
    /// sender (at most `livesync.cluster.max_delay`). The network adds its own (LAN: well under
    /// a millisecond).
    pub lag_last_ms: u64,
    /// The largest [`Livesync::lag_last_ms`] seen.
    pub lag_max_ms: u64,
}

impl Livesync {
    /// Counts a refused datagram; `reason` is one of [`LIVESYNC_PACKET_REFUSALS`] (another
    /// text counts nothing).
    pub fn refuse_packet(&mut self, reason: &str) {
        if let Some(i) = LIVESYNC_PACKET_REFUSALS.iter().position(|r| *r == reason) {
            self.packets_refused[i] += 1;
        }
    }

    /// Datagrams refused for `reason` (0 for an unknown reason).
    pub fn packets_refused_for(&self, reason: &str) -> u64 {
        LIVESYNC_PACKET_REFUSALS
            .iter()
            .position(|r| *r == reason)
            .map_or(0, |i| self.packets_refused[i])
    }

    /// Every refused datagram, whatever the reason.
    pub fn packets_refused_total(&self) -> u64 {
        self.packets_refused.iter().sum()
    }
}
