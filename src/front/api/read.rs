//! The API's read-only routes: `GET /api/v1/stats`, `/torrents` and `/torrent/INFO_HASH`
//! (torrust's JSON shapes; see the parent module for the routing).

use std::net::SocketAddr;

use serde::Serialize;

use super::{MAX_LIMIT, Reply, error, hex, json, page, parse_info_hash};
use crate::service::Tracker;
use crate::stats::report::TextMode;
use crate::swarm::store::SwarmCounts;
use crate::types::InfoHash;
use crate::wire::http::{Request, Status};
use crate::wire::query::{self, name_is};

#[derive(Serialize)]
struct TorrentItem {
    info_hash: String,
    seeders: u64,
    completed: u64,
    leechers: u64,
}

#[derive(Serialize)]
struct PeerItem {
    peer_addr: String,
    seeder: bool,
}

#[derive(Serialize)]
struct TorrentDetail {
    info_hash: String,
    seeders: u64,
    completed: u64,
    leechers: u64,
    peers: Vec<PeerItem>,
}

/// torrust v3's `/api/v1/stats` object.
#[derive(Serialize)]
struct StatsJson {
    torrents: u64,
    seeders: u64,
    completed: u64,
    leechers: u64,
    tcp4_connections_handled: u64,
    tcp4_announces_handled: u64,
    tcp4_scrapes_handled: u64,
    tcp6_connections_handled: u64,
    tcp6_announces_handled: u64,
    tcp6_scrapes_handled: u64,
    udp4_connections_handled: u64,
    udp4_announces_handled: u64,
    udp4_scrapes_handled: u64,
    udp6_connections_handled: u64,
    udp6_announces_handled: u64,
    udp6_scrapes_handled: u64,
}

pub(super) fn stats(tracker: &Tracker, req: &Request<'_>, now: u32) -> Reply {
    let prometheus = query::pairs(req.query)
        .any(|(name, value)| name_is(name, b"format") && value == b"prometheus");
    if prometheus {
        let mut body = Vec::new();
        tracker.write_stats(TextMode::Prometheus, now, &mut body);
        return Reply {
            status: Status::Ok200,
            content_type: TextMode::Prometheus.content_type(),
            body,
        };
    }
    let s = &*tracker.stats_total();
    let (h4, h6, u4, u6) = (&s.http[0], &s.http[1], &s.udp[0], &s.udp[1]);
    let peers = tracker.peers();
    let seeders = tracker.v4.seeders() + tracker.v6.seeders();
    json(
        Status::Ok200,
        &StatsJson {
            torrents: tracker.v4.torrents() + tracker.v6.torrents(),
            seeders,
            completed: s.completed,
            leechers: peers.saturating_sub(seeders),
            tcp4_connections_handled: h4.announce + h4.scrape + h4.failed,
            tcp4_announces_handled: h4.announce,
            tcp4_scrapes_handled: h4.scrape,
            tcp6_connections_handled: h6.announce + h6.scrape + h6.failed,
            tcp6_announces_handled: h6.announce,
            tcp6_scrapes_handled: h6.scrape,
            udp4_connections_handled: u4.connect,
            udp4_announces_handled: u4.announce,
            udp4_scrapes_handled: u4.scrape,
            udp6_connections_handled: u6.connect,
            udp6_announces_handled: u6.announce,
            udp6_scrapes_handled: u6.scrape,
        },
    )
}

fn item(info_hash: &InfoHash, c: SwarmCounts) -> TorrentItem {
    TorrentItem {
        info_hash: hex(info_hash),
        seeders: u64::from(c.seeders),
        completed: u64::from(c.downloaded),
        leechers: u64::from(c.leechers),
    }
}

fn sum(a: SwarmCounts, b: SwarmCounts) -> SwarmCounts {
    SwarmCounts {
        seeders: a.seeders + b.seeders,
        leechers: a.leechers + b.leechers,
        downloaded: a.downloaded.saturating_add(b.downloaded),
    }
}

pub(super) fn torrents(tracker: &mut Tracker, req: &Request<'_>, now: u32) -> Result<Reply, Reply> {
    let mut wanted = Vec::new();
    for (name, value) in query::pairs(req.query) {
        if name_is(name, b"info_hash") {
            let mut buf = [0u8; 64];
            let n = query::percent_decode_into(value, &mut buf)
                .map_err(|_| error(Status::BadRequest400, "invalid info_hash"))?;
            let h = parse_info_hash(&buf[..n])
                .ok_or_else(|| error(Status::BadRequest400, "invalid info_hash"))?;
            if wanted.len() == MAX_LIMIT {
                return Err(error(Status::BadRequest400, "too many info_hashes"));
            }
            wanted.push(h);
        }
    }
    if !wanted.is_empty() {
        // As torrust: the known ones, in request order; pagination does not apply.
        let list: Vec<TorrentItem> = wanted
            .iter()
            .filter_map(|h| tracker.scrape_one(h, now).map(|c| item(h, c)))
            .collect();
        return Ok(json(Status::Ok200, &list));
    }
    let (offset, limit) = page(req)?;
    Ok(json(Status::Ok200, &torrent_page(tracker, offset, limit)))
}

/// Torrents in info_hash order over both families (counts summed), `offset` skipped, at most
/// `limit`. Walks both stores from the start in slices: O(offset + limit) torrents.
fn torrent_page(tracker: &Tracker, offset: usize, limit: usize) -> Vec<TorrentItem> {
    const SLICE: usize = 1024;
    struct Cursor {
        buf: std::collections::VecDeque<(InfoHash, SwarmCounts)>,
        from: Option<InfoHash>,
        done: bool,
    }
    fn fill<const N: usize>(c: &mut Cursor, store: &impl crate::swarm::shards::TorrentWalk<N>) {
        if c.buf.is_empty() && !c.done {
            let next = store.for_each_from(c.from.as_ref(), SLICE, |h, counts| {
                c.buf.push_back((*h, counts));
            });
            c.done = next.is_none();
            c.from = next;
        }
    }
    let new = || Cursor {
        buf: Default::default(),
        from: None,
        done: false,
    };
    let (mut a, mut b) = (new(), new());
    let mut out = Vec::new();
    let mut index = 0usize;
    while out.len() < limit {
        fill(&mut a, &tracker.v4);
        fill(&mut b, &tracker.v6);
        let next = match (a.buf.front(), b.buf.front()) {
            (None, None) => break,
            (Some(_), None) => a.buf.pop_front(),
            (None, Some(_)) => b.buf.pop_front(),
            (Some(x), Some(y)) if x.0 < y.0 => a.buf.pop_front(),
            (Some(x), Some(y)) if x.0 > y.0 => b.buf.pop_front(),
            _ => {
                let (h, x) = a.buf.pop_front().unwrap_or_default();
                let (_, y) = b.buf.pop_front().unwrap_or_default();
                Some((h, sum(x, y)))
            }
        };
        if let Some((h, counts)) = next {
            if index >= offset {
                out.push(item(&h, counts));
            }
            index += 1;
        }
    }
    out
}

pub(super) fn torrent(tracker: &mut Tracker, hash: &[u8], now: u32) -> Result<Reply, Reply> {
    let info_hash =
        parse_info_hash(hash).ok_or_else(|| error(Status::BadRequest400, "invalid info_hash"))?;
    let counts = tracker
        .scrape_one(&info_hash, now)
        .ok_or_else(|| error(Status::NotFound404, "torrent not known"))?;
    let mut peers = Vec::new();
    tracker.v4.for_each_peer(&info_hash, |addr, seeder| {
        peers.push(peer_item(addr, seeder))
    });
    tracker.v6.for_each_peer(&info_hash, |addr, seeder| {
        peers.push(peer_item(addr, seeder))
    });
    let detail = TorrentDetail {
        info_hash: hex(&info_hash),
        seeders: u64::from(counts.seeders),
        completed: u64::from(counts.downloaded),
        leechers: u64::from(counts.leechers),
        peers,
    };
    Ok(json(Status::Ok200, &detail))
}

fn peer_item(addr: &[u8], seeder: bool) -> PeerItem {
    let port = u16::from_be_bytes([addr[addr.len() - 2], addr[addr.len() - 1]]);
    let ip: std::net::IpAddr = match addr.len() {
        6 => <[u8; 4]>::try_from(&addr[..4])
            .map(Into::into)
            .unwrap_or([0u8; 4].into()),
        _ => <[u8; 16]>::try_from(&addr[..16])
            .map(Into::into)
            .unwrap_or([0u8; 16].into()),
    };
    PeerItem {
        peer_addr: SocketAddr::new(ip, port).to_string(),
        seeder,
    }
}
