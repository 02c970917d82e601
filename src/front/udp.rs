//! The UDP front (BEP 15): what a datagram means and the bytes that go back. [`UdpHandler`]
//! holds the request policy (connect, connection_id checks, which bad datagram gets an error
//! packet and which gets silence); [`announce`] and [`scrape`] turn the service's typed replies
//! into BEP 15 packets. Same store, selection, caps and counters as HTTP: they are decided in
//! [`crate::service`]. The sockets and batches are [`crate::net::udp_server`]'s.

use crate::access::keys::key_in_path;
use std::io;
use std::net::{IpAddr, SocketAddr};

use super::conn_id::ConnectionIds;
use crate::service::{Announce, Proto, Tracker, caps, family_of};
use crate::wire::udp::{
    self, AnnounceRequest, AnnounceResponse, ConnectResponse, ErrorResponse, Request,
    ScrapeEntries, ScrapeEntry, ScrapeRequest, ScrapeResponse,
};

/// Most bytes one reply takes: [`caps::UDP_REPLY_MAX`], an IPv4 announce with 242 peers (1472
/// bytes, one unfragmented datagram). The server reserves this much per reply slot.
pub const REPLY_CAPACITY: usize = caps::UDP_REPLY_MAX;

/// The BEP 15 request policy: connect, connection_id checks, and which bad datagram gets an error
/// packet and which gets silence.
///
/// The rule against reflection and amplification: before a connection_id proved that the sender
/// receives packets at its source address, a reply is never longer than the request. So:
/// - fewer than 16 bytes, or longer than the receive buffer: silence (no transaction_id to echo);
/// - a connect without the magic: silence (not a BEP 15 client);
/// - connect: a 16-byte reply to a 16-byte request (never larger);
/// - a wrong or expired connection_id: an error packet ("connection_id expired or invalid"),
///   cut to the request's length, so the client knows to connect again;
/// - with a valid connection_id: an error packet for an unknown action or a malformed announce or
///   scrape, a normal reply otherwise.
///
/// Error packets are cut to the request's length in every case (one rule, easy to audit; the
/// texts are short enough that only a few-byte request loses part of its text).
///
/// Error packets carry no trailing NUL (opentracker adds one; clients read the length).
///
/// Before any of this, a source (IPv4 address, IPv6 /64) over `udp.rate_limit` gets silence
/// ([`Tracker::udp_admit`], `service::quota`).
pub struct UdpHandler {
    ids: ConnectionIds,
    peers: Vec<u8>,
}

impl UdpHandler {
    /// A handler with a fresh random connection_id key.
    pub fn new() -> io::Result<Self> {
        Ok(UdpHandler {
            ids: ConnectionIds::new_random()?,
            peers: Vec::with_capacity(REPLY_CAPACITY),
        })
    }

    /// Another worker's handler (`tracker.workers`): the same connection_id key, so a client
    /// may connect through one worker and announce through another.
    pub fn worker(&self) -> Self {
        UdpHandler {
            ids: self.ids.clone(),
            peers: Vec::with_capacity(REPLY_CAPACITY),
        }
    }

    /// Handles one datagram from `src`; appends the reply to `out` (empty) and returns whether to
    /// send it.
    pub fn handle(
        &mut self,
        tracker: &mut Tracker,
        data: &[u8],
        truncated: bool,
        src: SocketAddr,
        now: u32,
        out: &mut Vec<u8>,
    ) -> bool {
        // The per-source rate limit (`udp.rate_limit`) comes first: a source over it gets no
        // answer at all, whatever it sent (counted in `udp.rate_limited`).
        if !tracker.udp_admit(src.ip(), now) {
            return false;
        }
        let (Some(connection_id), Some(transaction_id)) = (
            udp::peek_connection_id(data),
            udp::peek_transaction_id(data),
        ) else {
            tracker.stats.udp_invalid.malformed_header += 1;
            return false;
        };
        if truncated {
            tracker.stats.udp_invalid.malformed_header += 1;
            return false;
        }
        let ip = src.ip().to_canonical();
        let family = family_of(ip);
        let is_connect = udp::peek_action(data) == Some(0);
        if !is_connect && !self.ids.check(connection_id, ip, now) {
            tracker.stats.udp_invalid.bad_connection_id += 1;
            tracker.requests(Proto::Udp, family).failed += 1;
            error_reply(
                out,
                transaction_id,
                b"connection_id expired or invalid",
                data.len(),
            );
            return true;
        }
        match udp::parse_request(data) {
            Ok(Request::Connect(c)) => {
                ConnectResponse {
                    transaction_id: c.transaction_id,
                    connection_id: self.ids.make(ip, now),
                }
                .emit(out);
                tracker.requests(Proto::Udp, family).connect += 1;
            }
            Ok(Request::Announce(a)) => {
                announce(tracker, &a, ip, now, &mut self.peers, out);
            }
            Ok(Request::Scrape(s)) => {
                scrape(tracker, &s, ip, now, out);
            }
            Err(udp::Error::BadMagic) => {
                tracker.stats.udp_invalid.bad_magic += 1;
                return false;
            }
            Err(e) => {
                if matches!(e, udp::Error::UnknownAction(_)) {
                    tracker.stats.udp_invalid.unknown_action += 1;
                } else {
                    tracker.stats.udp_invalid.malformed_request += 1;
                }
                tracker.requests(Proto::Udp, family).failed += 1;
                error_reply(out, transaction_id, e.text().as_bytes(), data.len());
            }
        }
        true
    }
}

/// Appends a BEP 15 error packet (action 3) with `message` cut so the packet is at most `max_len`
/// bytes (at least the 8-byte header).
fn error_reply(out: &mut Vec<u8>, transaction_id: u32, message: &[u8], max_len: usize) {
    let room = max_len.saturating_sub(udp::RESPONSE_HEADER_LEN);
    let message = &message[..message.len().min(room)];
    ErrorResponse {
        transaction_id,
        message,
    }
    .emit(out);
}

/// Appends the announce reply to `out`: action 1, transaction_id, interval, leechers, seeders, then
/// the peers in compact form (6 bytes each for an IPv4 requester, 18 for IPv6; BEP 15 and its IPv6
/// rule: the peer size follows the family of the request). `peers` is a scratch buffer.
///
/// The `ip` field of the request is ignored: the peer is the datagram's source address (as
/// opentracker), so nobody can announce somebody else. `num_want` -1 (or any negative value)
/// means the default.
///
/// In a private `tracker.mode` the key is read from BEP 41's URL data (`/announce/KEY`, the path
/// of the client's `udp://HOST:PORT/announce/KEY`), as the HTTP front reads it from the path.
///
/// An announce the service refuses ([`crate::service::AnnounceError`]) gets an error packet
/// (action 3) with its reason; for an info_hash the access list refuses that is
/// [`crate::access::NOT_AUTHORIZED`] (opentracker sends a bare 8-byte header instead).
pub fn announce(
    tracker: &mut Tracker,
    req: &AnnounceRequest<'_>,
    ip: IpAddr,
    now: u32,
    peers: &mut Vec<u8>,
    out: &mut Vec<u8>,
) {
    let a = Announce {
        info_hash: req.info_hash,
        port: req.port,
        left: Some(req.left),
        event: req.event,
        numwant: Some(req.num_want),
    };
    // A private tracker's key travels in the announce URL's path, `/announce/KEY`, which BEP 41
    // carries as URL data; read only when a key is needed (BEP 41 data is at most a few hundred
    // bytes in practice; more is cut off here and then fails the key check).
    let mut url = [0u8; URL_DATA_MAX];
    let key = if tracker.private.mode.private() {
        let n = req.options.copy_url_data(&mut url);
        key_in_path(&url[..n])
    } else {
        None
    };
    peers.clear();
    let reply = match tracker.serve_announce(&a, key, ip, Proto::Udp, now, peers) {
        Ok(r) => r,
        Err(e) => {
            // The connection_id proved the source, and the texts (64 bytes at most) are shorter
            // than any announce request (98 bytes): no amplification.
            ErrorResponse {
                transaction_id: req.transaction_id,
                message: e.reason().as_bytes(),
            }
            .emit(out);
            return;
        }
    };
    let head = AnnounceResponse {
        transaction_id: req.transaction_id,
        interval: reply.interval,
        leechers: reply.counts.leechers,
        seeders: reply.counts.seeders,
        peers: &[],
    };
    head.emit(out);
    out.extend_from_slice(peers);
}

/// Most bytes of BEP 41 URL data read for a key: `/announce/` and a 32-character key fit many
/// times over.
const URL_DATA_MAX: usize = 256;

/// Appends the scrape reply to `out`: action 2, transaction_id, then (seeders, completed,
/// leechers) for each info_hash in REQUEST order (BEP 15), zeros for unknown torrents and for
/// those the access list refuses, and every count zero in a private `tracker.mode` (a BEP 15
/// scrape has no room for a key). At most [`caps::scrape_hashes`] (120) hashes are answered;
/// the rest are ignored.
pub fn scrape(
    tracker: &mut Tracker,
    req: &ScrapeRequest<'_>,
    ip: IpAddr,
    now: u32,
    out: &mut Vec<u8>,
) {
    // BEP 15 scrapes carry no options, so no key: a private tracker answers zeros (as torrust
    // answers a scrape without a valid key).
    let keyed = tracker.scrape_key_ok(None, now);
    let head = ScrapeResponse {
        transaction_id: req.transaction_id,
        entries: ScrapeEntries::EMPTY,
    };
    head.emit(out);
    for h in req
        .info_hashes
        .truncated(caps::scrape_hashes(&tracker.policy, Proto::Udp))
        .iter()
    {
        let c = tracker.scrape_entry(h, keyed, now).unwrap_or_default();
        ScrapeEntry {
            seeders: c.seeders,
            completed: c.downloaded,
            leechers: c.leechers,
        }
        .emit(out);
    }
    tracker.requests(Proto::Udp, family_of(ip)).scrape += 1;
}
