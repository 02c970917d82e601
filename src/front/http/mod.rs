//! The HTTP front: routing, status lines, and the bencoded announce (BEP 3, BEP 23 compact,
//! BEP 7 `peers6`) and scrape (BEP 48) responses. Takes a parsed request head, asks
//! [`crate::service`] what it means, writes a whole response (head and body), or the head of a
//! streamed one ([`walk`]).
//!
//! Routing, as opentracker (so existing announce URLs keep working): after the leading `/`s, a
//! path starting with `a` is an announce (`/announce`, `/announce.php`, `/a`), a path starting with
//! `sc` is a scrape (without `info_hash`: a full scrape, streamed in slices, see
//! [`walk`]), the stats path and `/metrics` are the stats ([`stats`]; checked
//! first, exact match), the empty path redirects to `tracker.redirect_url` (or 404), anything
//! else is 404. Only `GET` is served (others: 405). torrust's keyed routes `/announce/KEY` and
//! `/scrape/KEY` route the same; the key counts in a private `tracker.mode`
//! ([`crate::service::private`]) and is ignored otherwise. A private tracker answers a full
//! scrape without a valid key with an empty `files` dictionary.
//!
//! Application errors (a bad `port`, a short `info_hash`, ...) are answered with status 200 and a
//! bencoded `failure reason` (BEP 3), which is what clients show their users. Framing errors get an
//! HTTP status and a closed connection from [`serve_request`] (400 for a malformed head or one
//! with a body, 413 for a head over `http.max_request_size`, 431 for more header lines than
//! `http.max_header_lines`).

pub mod snapshot;
pub mod stats;
pub mod walk;

use std::net::IpAddr;

use ipnet::IpNet;

use self::snapshot::{Reader, Snapshots};
use self::walk::Walk;
use crate::access::keys::key_in_path;
use crate::config::ProxyHeader;
use crate::service::stats::StatsAccess;
use crate::service::{Announce, Proto, Tracker, caps, family_of};
use crate::swarm::store::SwarmCounts;
use crate::types::{Family, InfoHash};
use crate::wire::bencode;
use crate::wire::http::{
    self, Status, accepts_gzip, parse_request_with, write_error, write_head, write_redirect,
};
use crate::wire::query::{self, QueryError, name_is, parse_announce, parse_scrape};
use crate::wire::stream::write_stream_head;

/// Site settings of the HTTP tracker, from the config file.
#[derive(Clone, Debug, Default)]
pub struct HttpSite {
    /// `tracker.redirect_url`: where `GET /` goes (302); `None` answers 404.
    pub redirect_url: Option<String>,
    /// `access.proxy`: addresses whose `proxy_header` names the peer.
    pub proxies: Vec<IpNet>,
    /// `access.proxy_header`: the header a trusted proxy names the peer in.
    pub proxy_header: ProxyHeader,
    /// `http.keepalive`: whether connections may stay open for more requests.
    pub keepalive: bool,
    /// `access.stats`, `access.stats_path`: who may read `/stats` and `/metrics`.
    pub stats: StatsAccess,
    /// `tracker.fullscrape_interval`: seconds between two full scrapes from one address
    /// (IPv6: one /64); 0 = no limit. A full scrape within the interval gets 429.
    pub fullscrape_interval: u32,
    /// `http.fullscrape_max_age`: seconds a full-scrape snapshot is shared with later requests
    /// ([`snapshot`]); 0 = every full scrape builds its own.
    pub fullscrape_max_age: u32,
    /// `http.fullscrape_max_streams`: full scrapes sent at once at most, by every worker
    /// together ([`crate::service::quota::StreamCount`]); one more gets 503 with
    /// `Retry-After` ([`RETRY_AFTER_SECS`]). 0 = no cap.
    pub fullscrape_max_streams: usize,
}

/// The `Retry-After` (seconds) of a full scrape refused over `http.fullscrape_max_streams`:
/// about what a full scrape of a million torrents takes to send on a fast link.
pub const RETRY_AFTER_SECS: u32 = 10;

/// A streamed response a request started ([`Scratch::take_stream`]).
#[derive(Debug)]
pub enum Stream {
    /// A walk of its own: the `/stats` walk modes and the status page.
    Walk(Box<Walk>),
    /// A full scrape: a reader of the shared snapshot of its encoding
    /// ([`Scratch::snapshots`]).
    Snapshot(Reader),
}

/// Buffers reused from request to request, so the hot path does not allocate; plus the state
/// of the HTTP side that outlives a request (the full-scrape rate limit) and the streamed
/// response a request may have started ([`Scratch::take_stream`]).
#[derive(Default)]
pub struct Scratch {
    peers: Vec<u8>,
    body: Vec<u8>,
    hashes: Vec<InfoHash>,
    stream: Option<Box<Walk>>,
    reader: Option<Reader>,
    snapshots: Snapshots,
}

impl Scratch {
    /// The stream [`handle`] started, if its response is streamed: `handle` wrote the head, the
    /// server writes the body (a walk: [`Walk::step`] until it returns true; a full scrape:
    /// [`Snapshots::feed`] until it returns true, then [`Snapshots::leave`]), then closes the
    /// connection.
    pub fn take_stream(&mut self) -> Option<Stream> {
        match self.reader.take() {
            Some(r) => Some(Stream::Snapshot(r)),
            None => self.stream.take().map(Stream::Walk),
        }
    }

    /// The full-scrape snapshots of this server, which its full scrapes read.
    pub fn snapshots(&mut self) -> &mut Snapshots {
        &mut self.snapshots
    }
}

/// What [`serve_request`] made of the bytes at the start of a connection's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// No complete request head yet, and fewer bytes than `http.max_request_size`: wait for
    /// more. Nothing was written.
    Incomplete,
    /// A request of `len` bytes (its head) was answered: the response, or the head of a
    /// streamed one ([`Scratch::take_stream`]), is in `out`. `keep_alive`: whether the
    /// connection may serve another request.
    Answered {
        /// Bytes of the request consumed from the start of the buffer.
        len: usize,
        /// The connection stays open (see [`handle`]).
        keep_alive: bool,
    },
    /// A request of `len` bytes was taken, and its answer comes later (an API write waiting for
    /// the database): the server writes it when it arrives, and reads nothing more from the
    /// connection until then. Never returned by the tracker front.
    Deferred {
        /// Bytes of the request consumed from the start of the buffer.
        len: usize,
        /// The connection stays open after the answer.
        keep_alive: bool,
    },
    /// The bytes are no HTTP request we serve: a head over `http.max_request_size` (413) or a
    /// malformed one (400, from [`crate::wire::http`]). The error response is in
    /// `out`; the connection closes after it, and what follows is not read.
    Refused,
}

/// Serves the request at the start of `data` (a connection's unread bytes), appending the
/// response to `out`: frames the head ([`parse_request_with`]), enforces `http.max_request_size`
/// (`max_request_size` bytes, 413) and `http.max_header_lines` (`max_header_lines` lines
/// between the request line and the blank line, 431), refuses requests with a body (400: we never read bodies,
/// so the framing of what follows is unknown), and hands the head to [`handle`]. Counts every
/// error status. See [`Outcome`].
#[allow(clippy::too_many_arguments)]
pub fn serve_request(
    tracker: &mut Tracker,
    site: &HttpSite,
    data: &[u8],
    max_request_size: usize,
    max_header_lines: usize,
    remote: IpAddr,
    now: u32,
    scratch: &mut Scratch,
    out: &mut Vec<u8>,
) -> Outcome {
    let refuse = |tracker: &mut Tracker, out: &mut Vec<u8>, status: Status| {
        tracker.stats.http_status(status.code());
        write_error(out, status, false);
        Outcome::Refused
    };
    match parse_request_with(data, max_header_lines) {
        Ok(Some((_, len))) if len > max_request_size => {
            refuse(tracker, out, Status::PayloadTooLarge413)
        }
        Ok(Some((req, len))) => {
            if req.has_body {
                tracker.stats.http_status(400);
                write_error(out, Status::BadRequest400, false);
                return Outcome::Answered {
                    len,
                    keep_alive: false,
                };
            }
            let keep_alive = handle(tracker, site, &req, remote, now, scratch, out);
            Outcome::Answered { len, keep_alive }
        }
        Ok(None) if data.len() > max_request_size => {
            refuse(tracker, out, Status::PayloadTooLarge413)
        }
        Ok(None) => Outcome::Incomplete,
        Err(e) => refuse(tracker, out, e.status()),
    }
}

/// Handles one request head and appends the whole response to `out`.
///
/// `remote` is the TCP peer's address. The connection stays open (the return value) when the
/// request asks for it and `site.keepalive` allows it. A full scrape and the stats modes that
/// walk every torrent only write the response head to `out`; their body comes from the walk
/// left in [`Scratch::take_stream`], and the return value is false.
pub fn handle(
    tracker: &mut Tracker,
    site: &HttpSite,
    req: &http::Request<'_>,
    remote: IpAddr,
    now: u32,
    scratch: &mut Scratch,
    out: &mut Vec<u8>,
) -> bool {
    let keep_alive = site.keepalive && req.keep_alive;
    if req.method != b"GET" {
        tracker.stats.http_status(405);
        write_error(out, Status::MethodNotAllowed405, keep_alive);
        return keep_alive;
    }
    let path = trim_slashes(req.path);
    let mut decoded = [0u8; 64];
    let path = match query::percent_decode_into(path, &mut decoded) {
        Ok(n) => &decoded[..n],
        Err(_) => {
            tracker.stats.http_status(404);
            write_error(out, Status::NotFound404, keep_alive);
            return keep_alive;
        }
    };
    if path.is_empty() {
        match &site.redirect_url {
            Some(url) => {
                tracker.stats.http_status(302);
                write_redirect(out, url, keep_alive);
            }
            None => {
                tracker.stats.http_status(404);
                write_error(out, Status::NotFound404, keep_alive);
            }
        }
        return keep_alive;
    }
    scratch.body.clear();
    let peer_ip = match peer_address(site, req, remote) {
        Ok(ip) => ip,
        Err(reason) => {
            bencode::failure(&mut scratch.body, reason);
            return finish_ok(scratch, keep_alive, out);
        }
    };
    let family = family_of(peer_ip);
    if let Some(metrics) = stats::route(&site.stats, path) {
        return stats::serve(
            tracker,
            &site.stats,
            req,
            metrics,
            peer_ip,
            keep_alive,
            now,
            &mut scratch.stream,
            out,
        );
    }
    // torrust's routes: `/announce/KEY`, `/scrape/KEY` (accepted and ignored when public).
    let key = key_in_path(path);
    if path.starts_with(b"sc") && !query::pairs(req.query).any(|(n, _)| name_is(n, b"info_hash")) {
        if !tracker.scrape_key_ok(key, now) {
            // A private tracker lists nothing to a client without a valid key.
            scratch.body.extend_from_slice(b"d5:filesdee");
            return finish_ok(scratch, keep_alive, out);
        }
        return full_scrape(tracker, site, req, peer_ip, now, scratch, out, keep_alive);
    }
    if path[0] == b'a' {
        announce(tracker, req.query, key, peer_ip, family, now, scratch);
    } else if path.starts_with(b"sc") {
        scrape(tracker, req.query, key, family, now, scratch);
    } else {
        tracker.stats.http_status(404);
        write_error(out, Status::NotFound404, keep_alive);
        return keep_alive;
    }
    finish_ok(scratch, keep_alive, out)
}

fn finish_ok(scratch: &Scratch, keep_alive: bool, out: &mut Vec<u8>) -> bool {
    write_head(
        out,
        Status::Ok200,
        "text/plain",
        scratch.body.len(),
        keep_alive,
        &[],
    );
    out.extend_from_slice(&scratch.body);
    keep_alive
}

fn trim_slashes(mut path: &[u8]) -> &[u8] {
    while let [b'/', rest @ ..] = path {
        path = rest;
    }
    path
}

/// The peer's address: the TCP source, unless that source is a trusted proxy (`access.proxy`)
/// that names the client in `access.proxy_header` (`X-Forwarded-For` by default, or
/// `X-Real-IP`; the other header is ignored). The header's list (every line of it, in order) is
/// walked right to left past trusted proxies, and the first address that is not one is the
/// peer: what the client wrote itself, further left, is never believed. A list of trusted
/// proxies only names its leftmost; a trusted proxy that sends no header is itself the client.
///
/// Errors: the entry the walk stops at is no IP address.
fn peer_address(
    site: &HttpSite,
    req: &http::Request<'_>,
    remote: IpAddr,
) -> Result<IpAddr, &'static str> {
    let remote = remote.to_canonical();
    let trusted = |ip: &IpAddr| site.proxies.iter().any(|net| net.contains(ip));
    if site.proxies.is_empty() || !trusted(&remote) {
        return Ok(remote);
    }
    let (last, earlier): (_, &[&[u8]]) = match site.proxy_header {
        ProxyHeader::XForwardedFor => (req.x_forwarded_for, &req.x_forwarded_for_earlier),
        ProxyHeader::XRealIp => (req.x_real_ip, &[]),
    };
    let Some(last) = last else {
        return Ok(remote);
    };
    let entries = std::iter::once(last)
        .chain(earlier.iter().rev().copied())
        .flat_map(|line| line.rsplit(|&b| b == b','))
        .map(|entry| entry.trim_ascii())
        .filter(|entry| !entry.is_empty());
    let mut leftmost = None;
    for entry in entries {
        let ip = std::str::from_utf8(entry)
            .ok()
            .and_then(|s| s.parse::<IpAddr>().ok())
            .map(|ip| ip.to_canonical())
            .ok_or("the proxy's forwarded-address header holds no valid address")?;
        if !trusted(&ip) {
            return Ok(ip);
        }
        leftmost = Some(ip);
    }
    Ok(leftmost.unwrap_or(remote))
}

fn fail(tracker: &mut Tracker, family: Family, body: &mut Vec<u8>, err: QueryError) {
    tracker.requests(Proto::Http, family).failed += 1;
    bencode::failure(body, err.reason());
}

fn announce(
    tracker: &mut Tracker,
    query: &[u8],
    key: Option<&[u8]>,
    ip: IpAddr,
    family: Family,
    now: u32,
    scratch: &mut Scratch,
) {
    let q = match parse_announce(query) {
        Ok(q) => q,
        Err(e) => return fail(tracker, family, &mut scratch.body, e),
    };
    let a = Announce {
        info_hash: q.info_hash,
        port: q.port,
        left: q.left,
        event: q.event,
        numwant: q.numwant,
    };
    scratch.peers.clear();
    let reply = match tracker.serve_announce(&a, key, ip, Proto::Http, now, &mut scratch.peers) {
        Ok(r) => r,
        Err(e) => return bencode::failure(&mut scratch.body, e.reason()),
    };
    let body = &mut scratch.body;
    let peer_len = if family == Family::V4 { 6 } else { 18 };
    body.push(b'd');
    put_counts(body, &reply.counts);
    bencode::put_bytes(body, b"interval");
    bencode::put_int(body, i64::from(reply.interval));
    bencode::put_bytes(body, b"min interval");
    bencode::put_int(body, i64::from(reply.min_interval));
    bencode::put_bytes(body, b"peers");
    if !q.compact && q.no_peer_id {
        // BEP 3's original form, without `peer id` as `no_peer_id` allows (we store no peer
        // ids): the dicts carry `ip` and `port` only. Both families go in `peers`. A
        // `compact=0` without `no_peer_id` gets the compact form (BEP 23 lets a tracker answer
        // compact whatever was asked), since dicts without the `peer id` BEP 3 promises would
        // break a client that reads it.
        body.push(b'l');
        for p in scratch.peers.chunks_exact(peer_len) {
            let (ip, port) = decode_peer(p);
            body.push(b'd');
            bencode::put_bytes(body, b"ip");
            bencode::put_bytes(body, ip.to_string().as_bytes());
            bencode::put_bytes(body, b"port");
            bencode::put_int(body, i64::from(port));
            body.push(b'e');
        }
        body.push(b'e');
    } else if family == Family::V4 {
        bencode::put_bytes(body, &scratch.peers);
    } else {
        // BEP 7: IPv6 peers go in `peers6`; an empty `peers` stays for clients that require it.
        bencode::put_bytes(body, b"");
        bencode::put_bytes(body, b"peers6");
        bencode::put_bytes(body, &scratch.peers);
    }
    body.push(b'e');
}

/// Writes `complete`, `downloaded`, `incomplete` (sorted keys, BEP 48 names).
fn put_counts(body: &mut Vec<u8>, c: &SwarmCounts) {
    bencode::put_bytes(body, b"complete");
    bencode::put_int(body, i64::from(c.seeders));
    bencode::put_bytes(body, b"downloaded");
    bencode::put_int(body, i64::from(c.downloaded));
    bencode::put_bytes(body, b"incomplete");
    bencode::put_int(body, i64::from(c.leechers));
}

fn decode_peer(p: &[u8]) -> (IpAddr, u16) {
    let port = u16::from_be_bytes([p[p.len() - 2], p[p.len() - 1]]);
    let ip = if p.len() == 6 {
        IpAddr::from(<[u8; 4]>::try_from(&p[..4]).expect("4 bytes"))
    } else {
        IpAddr::from(<[u8; 16]>::try_from(&p[..16]).expect("16 bytes"))
    };
    (ip, port)
}

/// Full scrape: a scrape without `info_hash` lists every torrent, sorted by info_hash, counts
/// summed over both families (the body is built in slices by [`Walk`], into a snapshot shared
/// with the full scrapes of the next `http.fullscrape_max_age` seconds, see [`snapshot`]);
/// gzip-compressed when `Accept-Encoding` allows it. Refused with 503 and `Retry-After` when
/// `http.fullscrape_max_streams` full scrapes are being sent (by every worker together), and with 429 when the address had
/// one less than `tracker.fullscrape_interval` seconds ago. Logs `full scrape by IP` at info,
/// as opentracker.
#[allow(clippy::too_many_arguments)]
fn full_scrape(
    tracker: &mut Tracker,
    site: &HttpSite,
    req: &http::Request<'_>,
    ip: IpAddr,
    now: u32,
    scratch: &mut Scratch,
    out: &mut Vec<u8>,
    keep_alive: bool,
) -> bool {
    // The cap counts the full scrapes of every worker; the permit leaves with the reader.
    let Some(permit) = tracker.open_fullscrape_stream(site.fullscrape_max_streams) else {
        tracker.stats.http_status(503);
        tracker.stats.fullscrape_refused_busy += 1;
        let status = Status::ServiceUnavailable503;
        let body = format!("{} {}\n", status.code(), status.reason());
        let retry = RETRY_AFTER_SECS.to_string();
        write_head(
            out,
            status,
            "text/plain",
            body.len(),
            keep_alive,
            &[("Retry-After", &retry)],
        );
        out.extend_from_slice(body.as_bytes());
        return keep_alive;
    };
    if !tracker.allow_full_scrape(ip, now, site.fullscrape_interval) {
        tracker.stats.http_status(429);
        write_error(out, Status::TooManyRequests429, keep_alive);
        return keep_alive;
    }
    let gzip = accepts_gzip(req.accept_encoding);
    log::info!("full scrape by {ip}{}", if gzip { " (gzip)" } else { "" });
    tracker.stats.fullscrapes += 1;
    tracker.stats.fullscrapes_gzip += u64::from(gzip);
    let framing = stats::framing_for(req.version);
    write_stream_head(out, "text/plain", framing, gzip);
    let (mut reader, shared) =
        scratch
            .snapshots
            .join(gzip, framing, now, site.fullscrape_max_age, || {
                tracker.fake_peers(now)
            });
    if shared {
        tracker.stats.fullscrape_shared += 1;
    } else {
        tracker.stats.fullscrape_snapshots += 1;
    }
    reader.hold(permit);
    scratch.reader = Some(reader);
    false
}

/// Scrape (BEP 48): `d5:filesd<hash>d8:completei..e10:downloadedi..e10:incompletei..ee...ee`.
/// Keys are sorted and unique (valid bencode, unlike opentracker's request order). An info_hash
/// the tracker does not know is answered with zeros, so a client can tell "no peers" from a
/// failed request; one the access list refuses is left out (as opentracker for unknown ones;
/// both decided by [`Tracker::scrape_entry`]). In a private `tracker.mode` a scrape without a
/// valid key (`/scrape/KEY`) gets zeros for every info_hash, as torrust.
/// More than `tracker.scrape.max_info_hashes` hashes get a `failure reason` (opentracker
/// silently answers the first 64; a client that knows can split its request).
fn scrape(
    tracker: &mut Tracker,
    query: &[u8],
    key: Option<&[u8]>,
    family: Family,
    now: u32,
    scratch: &mut Scratch,
) {
    let keyed = tracker.scrape_key_ok(key, now);
    let max = caps::scrape_hashes(&tracker.policy, Proto::Http);
    scratch.hashes.resize(max, [0; 20]);
    let n = match parse_scrape(query, &mut scratch.hashes) {
        Ok(0) => {
            return fail(
                tracker,
                family,
                &mut scratch.body,
                QueryError::MissingInfoHash,
            );
        }
        Ok(n) => n,
        Err(e) => return fail(tracker, family, &mut scratch.body, e),
    };
    let hashes = &mut scratch.hashes[..n];
    hashes.sort_unstable();
    let body = &mut scratch.body;
    body.extend_from_slice(b"d5:filesd");
    let mut last: Option<&InfoHash> = None;
    for h in hashes.iter() {
        if last == Some(h) {
            continue;
        }
        last = Some(h);
        let Some(counts) = tracker.scrape_entry(h, keyed, now) else {
            continue;
        };
        bencode::put_bytes(body, h);
        body.push(b'd');
        put_counts(body, &counts);
        body.push(b'e');
    }
    body.extend_from_slice(b"ee");
    tracker.requests(Proto::Http, family).scrape += 1;
}
