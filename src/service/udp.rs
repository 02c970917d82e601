//! The UDP tracker's meaning (BEP 15): announce and scrape replies for requests whose
//! connection_id the server already checked. Same store, selection and counters as HTTP.

use std::net::IpAddr;

use super::{Announce, Proto, Tracker};
use crate::wire::udp::{
    AnnounceRequest, AnnounceResponse, ErrorResponse, MAX_SCRAPE_HASHES_PER_DATAGRAM,
    ScrapeEntries, ScrapeEntry, ScrapeRequest, ScrapeResponse,
};

/// Appends the announce reply to `out`: action 1, transaction_id, interval, leechers, seeders, then
/// the peers in compact form (6 bytes each for an IPv4 requester, 18 for IPv6; BEP 15 and its IPv6
/// rule: the peer size follows the family of the request). `peers` is a scratch buffer.
///
/// The `ip` field of the request is ignored: the peer is the datagram's source address (as
/// opentracker), so nobody can announce somebody else. `num_want` -1 (or any negative value)
/// means the default.
///
/// An info_hash the access list refuses gets an error packet (action 3) with
/// [`super::access::NOT_AUTHORIZED`] (opentracker sends a bare 8-byte header instead).
pub fn announce(
    tracker: &mut Tracker,
    req: &AnnounceRequest<'_>,
    ip: IpAddr,
    now: u32,
    peers: &mut Vec<u8>,
    out: &mut Vec<u8>,
) {
    if !tracker.allowed(&req.info_hash) {
        tracker.stats.udp[super::family_of(ip) as usize].failed += 1;
        ErrorResponse {
            transaction_id: req.transaction_id,
            message: super::access::NOT_AUTHORIZED.as_bytes(),
        }
        .emit(out);
        return;
    }
    let a = Announce {
        info_hash: req.info_hash,
        port: req.port,
        left: Some(req.left),
        event: req.event,
        numwant: Some(req.num_want),
    };
    peers.clear();
    let reply = match tracker.announce(&a, ip, Proto::Udp, now, peers) {
        Ok(r) => r,
        Err(refusal) => {
            // The connection_id proved the source, and the text (< 50 bytes) is shorter than
            // any announce (98 bytes): no amplification.
            tracker.stats.udp[super::family_of(ip) as usize].failed += 1;
            ErrorResponse {
                transaction_id: req.transaction_id,
                message: refusal.reason().as_bytes(),
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

/// Appends the scrape reply to `out`: action 2, transaction_id, then (seeders, completed,
/// leechers) for each info_hash in REQUEST order (BEP 15), zeros for unknown torrents and for
/// those the access list refuses. At most
/// [`MAX_SCRAPE_HASHES_PER_DATAGRAM`] (120) hashes are answered, so the reply fits one datagram
/// even over IPv6; the rest are ignored.
pub fn scrape(
    tracker: &mut Tracker,
    req: &ScrapeRequest<'_>,
    ip: IpAddr,
    now: u32,
    out: &mut Vec<u8>,
) {
    let head = ScrapeResponse {
        transaction_id: req.transaction_id,
        entries: ScrapeEntries::EMPTY,
    };
    head.emit(out);
    for h in req
        .info_hashes
        .truncated(MAX_SCRAPE_HASHES_PER_DATAGRAM)
        .iter()
    {
        let c = if tracker.allowed(h) {
            tracker.scrape_one(h, now).unwrap_or_default()
        } else {
            Default::default()
        };
        ScrapeEntry {
            seeders: c.seeders,
            completed: c.downloaded,
            leechers: c.leechers,
        }
        .emit(out);
    }
    tracker.stats.udp[super::family_of(ip) as usize].scrape += 1;
}
