//! Whole-store scans in slices, and who may start one.
//!
//! A [`Scan`] visits every torrent of both stores in info_hash order; a torrent known in the IPv4
//! and the IPv6 store is one entry with the counts summed (as a scrape, BEP 48), and torrents the
//! access list refuses are left out. What a front makes of the entries is its own business: the
//! HTTP front writes the full scrape and the `/stats` walks from them
//! (`front::http::walk`); an API front could list torrents the same way.
//!
//! A scan holds a cursor per store (the last info_hash visited). Each [`Scan::step`] reads at
//! most `max` torrents of each store and returns, so a scan of a million torrents never holds
//! the event loop for long. The two stores are walked in step with a merge (see
//! [`Scan::step`]).
//!
//! Consistency: counts are read slice by slice, so they are not one snapshot. A torrent added
//! behind the cursor while the scan runs is missed, one added ahead of it is included, one
//! removed ahead of it is left out; counts are as of the slice that read them, and may include
//! expired peers the background sweep has not removed yet (no cleaning during the scan, as
//! opentracker's full scrape).
//!
//! [`FullScrapeLimiter`] decides how often one address may start a full scrape
//! (`tracker.fullscrape_interval`).

use std::net::IpAddr;

use crate::swarm::shards::TorrentWalk;
use crate::swarm::store::SwarmCounts;
use crate::types::InfoHash;

/// Where a store's scan stands: before its first torrent (`None`) or after this info_hash.
/// There is no "done" per store: a store that ran out may get new torrents ahead of its cursor
/// while the other store's scan goes on, and those are included.
type Cursor = Option<InfoHash>;

/// A whole-store scan in progress; see the module doc.
#[derive(Debug, Default)]
pub struct Scan {
    v4: Cursor,
    v6: Cursor,
    finished: bool,
    batch4: Vec<(InfoHash, SwarmCounts)>,
    batch6: Vec<(InfoHash, SwarmCounts)>,
}

impl Scan {
    /// A scan from the first info_hash.
    pub fn new() -> Self {
        Self::default()
    }

    /// True once every torrent has been visited.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Visits up to `max` more torrents of each store (0 is read as 1) and calls
    /// `entry(info_hash, counts)` for each, in info_hash order, counts summed over both
    /// families. Torrents for which `keep` is false (refused by the access list, while a
    /// reload's purge has not dropped them yet) are skipped. Returns true when the scan is
    /// finished; further calls visit nothing and return true.
    ///
    /// Merge of the two stores: each step reads up to `max` torrents after each cursor; if a
    /// store has more torrents than it gave, entries beyond the smaller "last read" info_hash
    /// are left for the next step, so the entries stay in info_hash order and each step makes
    /// progress (the store whose batch ends first is visited whole).
    pub fn step(
        &mut self,
        v4: &impl TorrentWalk<6>,
        v6: &impl TorrentWalk<18>,
        keep: impl Fn(&InfoHash) -> bool,
        max: usize,
        mut entry: impl FnMut(&InfoHash, SwarmCounts),
    ) -> bool {
        if self.finished {
            return true;
        }
        let max = max.max(1);
        let more4 = fetch(v4, self.v4, max, &mut self.batch4);
        let more6 = fetch(v6, self.v6, max, &mut self.batch6);
        let last = |b: &[(InfoHash, SwarmCounts)]| b.last().map(|(h, _)| *h);
        let limit = match (more4, more6) {
            (true, true) => last(&self.batch4).min(last(&self.batch6)),
            (true, false) => last(&self.batch4),
            (false, true) => last(&self.batch6),
            (false, false) => None,
        };
        let within = |h: &InfoHash| limit.is_none_or(|l| *h <= l);
        let (mut i, mut j) = (0, 0);
        loop {
            let a = self.batch4.get(i).filter(|(h, _)| within(h)).copied();
            let b = self.batch6.get(j).filter(|(h, _)| within(h)).copied();
            let (hash, counts) = match (a, b) {
                (None, None) => break,
                (Some(a), None) => {
                    i += 1;
                    a
                }
                (None, Some(b)) => {
                    j += 1;
                    b
                }
                (Some(a), Some(b)) => {
                    if a.0 < b.0 {
                        i += 1;
                        a
                    } else if b.0 < a.0 {
                        j += 1;
                        b
                    } else {
                        i += 1;
                        j += 1;
                        (a.0, sum(a.1, b.1))
                    }
                }
            };
            if keep(&hash) {
                entry(&hash, counts);
            }
        }
        self.v4 = advance(self.v4, &self.batch4, i);
        self.v6 = advance(self.v6, &self.batch6, j);
        // Neither store had more than it gave, and (no limit) every entry was visited.
        self.finished = !more4 && !more6;
        self.finished
    }
}

/// Reads up to `max` torrents of `store` after `cursor` into `batch`; true if more follow.
fn fetch<const N: usize>(
    store: &impl TorrentWalk<N>,
    cursor: Cursor,
    max: usize,
    batch: &mut Vec<(InfoHash, SwarmCounts)>,
) -> bool {
    batch.clear();
    store
        .for_each_from(cursor.as_ref(), max, |h, c| batch.push((*h, c)))
        .is_some()
}

/// The cursor after `used` entries of `batch` were visited.
fn advance(cursor: Cursor, batch: &[(InfoHash, SwarmCounts)], used: usize) -> Cursor {
    match used.checked_sub(1).and_then(|last| batch.get(last)) {
        Some((h, _)) => Some(*h),
        None => cursor,
    }
}

fn sum(a: SwarmCounts, b: SwarmCounts) -> SwarmCounts {
    SwarmCounts {
        seeders: a.seeders.saturating_add(b.seeders),
        leechers: a.leechers.saturating_add(b.leechers),
        downloaded: a.downloaded.saturating_add(b.downloaded),
    }
}

/// Most addresses [`FullScrapeLimiter`] remembers.
pub const LIMITER_ENTRIES: usize = 4096;

/// The per-address rate limit of full scrapes (`tracker.fullscrape_interval`): remembers when
/// each address last got one. IPv4 addresses count one by one, IPv6 addresses by their /64
/// (one host usually holds a whole /64). Bounded: at most [`LIMITER_ENTRIES`] addresses; when
/// full, entries older than the interval are pruned, and if all are recent the request is
/// refused (the tracker is being flooded with full scrapes from that many addresses).
#[derive(Debug, Default)]
pub struct FullScrapeLimiter {
    recent: Vec<(u128, u32)>,
}

impl FullScrapeLimiter {
    /// Whether `ip` may have a full scrape at `now` (seconds) given `interval` (seconds; 0 =
    /// always). Records the scrape when it is allowed.
    pub fn allow(&mut self, ip: IpAddr, now: u32, interval: u32) -> bool {
        if interval == 0 {
            return true;
        }
        let key = match ip.to_canonical() {
            IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
            IpAddr::V6(v6) => u128::from(v6) & !u128::from(u64::MAX),
        };
        let fresh = |t: u32| now.saturating_sub(t) < interval;
        if let Some(slot) = self.recent.iter_mut().find(|(k, _)| *k == key) {
            if fresh(slot.1) {
                return false;
            }
            slot.1 = now;
            return true;
        }
        if self.recent.len() >= LIMITER_ENTRIES {
            self.recent.retain(|(_, t)| fresh(*t));
            if self.recent.len() >= LIMITER_ENTRIES {
                return false;
            }
        }
        self.recent.push((key, now));
        true
    }

    /// Addresses remembered now.
    pub fn len(&self) -> usize {
        self.recent.len()
    }

    /// True when no address is remembered.
    pub fn is_empty(&self) -> bool {
        self.recent.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swarm::store::{Store, StoreConfig};

    fn h(n: u32) -> InfoHash {
        let mut h = [0u8; 20];
        h[..4].copy_from_slice(&n.to_be_bytes());
        h[19] = 0x7e;
        h
    }

    fn add<const N: usize>(s: &mut Store<N>, info_hash: &InfoHash, peer: [u8; N]) {
        s.add_peer(info_hash, &peer, false);
    }

    #[test]
    fn keep_filters_and_finished_stays_finished() {
        let mut v4 = Store::<6>::new(StoreConfig::default());
        let v6 = Store::<18>::new(StoreConfig::default());
        for n in 0..10 {
            add(&mut v4, &h(n), [10, 0, 0, 1, 0, 1]);
        }
        let mut scan = Scan::new();
        let mut seen = Vec::new();
        let odd = |x: &InfoHash| x[3] % 2 == 1;
        while !scan.step(&v4, &v6, odd, 3, |x, c| seen.push((x[3], c.leechers))) {}
        assert!(scan.is_finished());
        assert_eq!(seen, [(1, 1), (3, 1), (5, 1), (7, 1), (9, 1)]);
        assert!(scan.step(&v4, &v6, |_| true, 3, |_, _| panic!("finished")));
    }

    #[test]
    fn limiter_per_address_with_bound() {
        let mut l = FullScrapeLimiter::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        let b_same64: IpAddr = "2001:db8::ffff:2".parse().unwrap();
        assert!(l.allow(a, 100, 0));
        assert!(l.is_empty());
        assert!(l.allow(a, 100, 60));
        assert!(!l.allow(a, 159, 60));
        assert!(!l.allow(mapped, 120, 60));
        assert!(l.allow(a, 160, 60));
        assert!(l.allow(b, 160, 60));
        assert!(!l.allow(b_same64, 161, 60));
        // Fill the table: fresh entries refuse newcomers, stale ones are pruned.
        for i in 0..LIMITER_ENTRIES as u32 - 2 {
            assert!(l.allow(IpAddr::from((0x0b00_0000 + i).to_be_bytes()), 200, 60));
        }
        assert_eq!(l.len(), LIMITER_ENTRIES);
        let newcomer: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(!l.allow(newcomer, 210, 60));
        assert!(l.allow(newcomer, 300, 60));
        assert_eq!(l.len(), 1);
    }
}
