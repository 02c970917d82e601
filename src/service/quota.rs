//! Quotas per source (issue #13): `tracker.max_torrents` and `tracker.max_peers` are global, so
//! one host could fill them and lock everyone else out. Three quotas bound what one source
//! takes, for HTTP and UDP alike:
//!
//! | quota | source | directive (default) | beyond it | counter |
//! |---|---|---|---|---|
//! | new torrents | IPv4 /24, IPv6 /48 | `tracker.max_new_torrents_per_net` (10,000 a minute) | the announce gets a failure reason, the store is unchanged | `refused.new_torrents_per_net` |
//! | peers in one swarm | IPv4 address, IPv6 /64 | `tracker.max_peers_per_source` (8) | the announce of a new peer gets a failure reason; a refresh never does | `refused.peers_per_source` |
//! | UDP requests | IPv4 address, IPv6 /64 | `udp.rate_limit` (500/s), `udp.rate_burst` (10,000) | no answer at all | `udp.rate_limited` |
//!
//! An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is the IPv4 source. An IPv6 host owns a /64
//! (privacy addresses rotate inside it), a site a /48; the IPv4 equivalents are the address
//! (behind a NAT, a household) and the /24. The source is the peer's address as the fronts
//! give it: behind a reverse proxy, the one `access.proxy_header` names (without
//! `access.proxy`, every HTTP client is the proxy, and shares its quotas). Records received
//! from live sync nodes pass no quota: each node applies them to its own clients.
//!
//! # Rates in constant memory
//!
//! The two rates (new torrents, UDP requests) are token buckets kept in a [`RateTable`]: a
//! fixed array of slots (16,384 for networks, 128 KiB; 65,536 for UDP sources, 512 KiB), never
//! a map that grows with the sources. A source is hashed with SipHash-1-3 under a random key
//! drawn from the OS at start ([`RandomState`]), so nobody can aim at another source's slots.
//! Each source has two slots (the two halves of its hash); a slot holds a "theoretical arrival
//! time" (GCRA: the time at which the bucket would be full again, in units of `1 / rate`
//! second), and a source's bucket is the least loaded of its two slots (a count-min sketch with
//! conservative update). Sources sharing a slot share its budget only when they collide in
//! both, and even then a source is never refused for less than its own traffic: collisions can
//! only make a quota stricter for the few sources involved, never looser. Time is the loop's
//! `now` in whole seconds, so buckets refill once a second.
//!
//! # One table for every worker
//!
//! With `tracker.workers N` the kernel spreads a source's datagrams over the workers by address
//! and port, so a per-worker table would give a source sending from several ports up to N
//! times its rate. Both tables are shared by every worker ([`Quotas::for_worker`]), and a slot
//! is an `AtomicU64` (the GCRA time is the whole state of a bucket: one word), so the
//! per-datagram check takes no lock: [`RateTable::admit`] raises the source's slots by
//! compare-and-swap and is exact when workers spend from one source at once (tested with
//! threads). The new-torrents quota checks before the announce and commits after it succeeded
//! ([`RateTable::check`], [`RateTable::commit`]); two workers creating torrents for one
//! network in the same instant may both pass on the last unit of its budget.
//!
//! # Full scrapes being sent
//!
//! `http.fullscrape_max_streams` is a cap on the full scrapes every worker sends together: a
//! [`StreamCount`] shared like the tables, taken before a full scrape starts and handed back by
//! dropping its [`StreamPermit`], which the stream holds until it ends, by any path (body
//! sent, client gone, timeout, server stopping).
//!
//! # Peers per source, by a range search
//!
//! A swarm's records are sorted by address then port, so the peers of one source are adjacent:
//! [`crate::swarm::store::Store::source_peers`] counts them with two binary searches (and the
//! chunk lengths a big swarm's range spans), never a scan. Peers that expired but were not
//! swept yet still count, for at most a quarter of `peer_timeout`.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::{Announce, AnnounceError, AnnounceReply, Policy, Proto, Tracker};
use crate::swarm::peer::{peer_v4, peer_v6};
use crate::types::Event;

/// Slots of the table of new torrents per network (8 bytes each: 128 KiB).
pub const NET_SLOTS: usize = 1 << 14;
/// Slots of the table of UDP requests per source (8 bytes each: 512 KiB).
pub const SOURCE_SLOTS: usize = 1 << 16;
/// Bytes of an IPv4 record that name its source (the address, without the port).
pub const V4_SOURCE_BYTES: usize = 4;
/// Bytes of an IPv6 record that name its source (the /64).
pub const V6_SOURCE_BYTES: usize = 8;

/// Why an announce was refused by a quota, without changing the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The announce names an unknown info_hash and its network (IPv4 /24, IPv6 /48) created
    /// `tracker.max_new_torrents_per_net` torrents within the last minute.
    NewTorrentsPerNet,
    /// The announce would add a peer to a swarm that holds `tracker.max_peers_per_source`
    /// peers of its source (IPv4 address, IPv6 /64) already.
    PeersPerSource,
}

impl Refusal {
    /// The text sent to the client: HTTP `failure reason` (BEP 3) or the message of a BEP 15
    /// error packet (at most 64 bytes, shorter than any BEP 15 announce).
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::NewTorrentsPerNet => "too many new torrents from your network: retry later",
            Refusal::PeersPerSource => "too many peers from your address in this swarm",
        }
    }
}

/// A source as a quota sees it: the family and the address cut to the quota's prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SourceKey {
    /// IPv6 (else IPv4).
    pub v6: bool,
    /// The address's first bits (the rest zero), as a number.
    pub prefix: u128,
}

impl SourceKey {
    /// `ip` cut to its first `v4_bits` (IPv4, IPv4-mapped IPv6 included) or `v6_bits` bits
    /// (more than the address has: the whole address).
    pub fn of(ip: IpAddr, v4_bits: u32, v6_bits: u32) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(32 - v4_bits.min(32)).unwrap_or(0);
                SourceKey {
                    v6: false,
                    prefix: u128::from(u32::from(a) & mask),
                }
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX.checked_shl(128 - v6_bits.min(128)).unwrap_or(0);
                SourceKey {
                    v6: true,
                    prefix: u128::from(a) & mask,
                }
            }
        }
    }

    /// The network of the new-torrent quota: IPv4 /24, IPv6 /48.
    pub fn net(ip: IpAddr) -> Self {
        Self::of(ip, 24, 48)
    }

    /// The host of the UDP rate limit: the IPv4 address, the IPv6 /64.
    pub fn host(ip: IpAddr) -> Self {
        Self::of(ip, 32, 64)
    }
}

/// A fixed table of token buckets (GCRA) in hashed slots: see the module docs. Time and costs
/// are in the caller's units; `capacity` is the bucket size in the same units. Shared by
/// reference between threads (`tracker.workers`): every slot is an atomic word, updated by
/// compare-and-swap, never under a lock.
pub struct RateTable {
    /// Theoretical arrival times; 0 = an empty slot (full bucket).
    slots: Box<[AtomicU64]>,
    hasher: RandomState,
}

/// What [`RateTable::check`] granted: the slots to raise by [`RateTable::commit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    slots: [usize; 2],
    tat: u64,
}

impl RateTable {
    /// A table of `slots` slots (rounded up to a power of two, at least 2), all empty, with a
    /// fresh random hash key.
    pub fn new(slots: usize) -> Self {
        let n = slots.max(2).next_power_of_two();
        RateTable {
            slots: (0..n).map(|_| AtomicU64::new(0)).collect(),
            hasher: RandomState::new(),
        }
    }

    /// The number of slots (constant: the table never grows).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Always false: a table has at least two slots.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn slots_of(&self, key: SourceKey) -> [usize; 2] {
        let h = self.hasher.hash_one(key);
        let mask = self.slots.len() - 1;
        [h as usize & mask, (h >> 32) as usize & mask]
    }

    /// Slot `i`'s theoretical arrival time (0 outside the table: never, `slots_of` masks).
    fn load(&self, i: usize) -> u64 {
        self.slots.get(i).map_or(0, |s| s.load(Ordering::Acquire))
    }

    /// Whether `key` may spend `cost` at time `now` with a bucket of `capacity` (all in the
    /// same units), without changing the table: `Some` grant to [`Self::commit`], or `None`.
    pub fn check(&self, key: SourceKey, now: u64, cost: u64, capacity: u64) -> Option<Grant> {
        let slots = self.slots_of(key);
        let tat = self.load(slots[0]).min(self.load(slots[1]));
        let next = tat.max(now).checked_add(cost)?;
        (next <= now.saturating_add(capacity)).then_some(Grant { slots, tat: next })
    }

    /// Spends what [`Self::check`] granted (conservative update: each slot rises to the
    /// source's new time at most). Between a check and its commit another thread may spend
    /// from the same slots: both are charged, but against the same starting point; use
    /// [`Self::admit`] where that matters.
    pub fn commit(&self, g: Grant) {
        for i in g.slots {
            if let Some(s) = self.slots.get(i) {
                s.fetch_max(g.tat, Ordering::AcqRel);
            }
        }
    }

    /// [`Self::check`] and [`Self::commit`] as one step, exact when several threads spend from
    /// the same slots at once: true when `key` spent `cost` at `now`.
    ///
    /// The source's lighter slot is raised by compare-and-swap from the very value the
    /// decision read, after the other slot was raised to the new time: so when the swap
    /// succeeds, the source's bucket (the least of its two slots) was exactly what the
    /// decision saw, and another thread can decide again only once both slots show this
    /// spending. A failed swap (another thread spent meanwhile) decides again from the new
    /// values; the other slot's early raise can then only make the bucket stricter, never
    /// looser, as a collision can.
    pub fn admit(&self, key: SourceKey, now: u64, cost: u64, capacity: u64) -> bool {
        let [i, j] = self.slots_of(key);
        let (Some(a), Some(b)) = (self.slots.get(i), self.slots.get(j)) else {
            return false;
        };
        loop {
            let (va, vb) = (a.load(Ordering::Acquire), b.load(Ordering::Acquire));
            let (lighter, other, tat) = if vb < va { (b, a, vb) } else { (a, b, va) };
            let Some(next) = tat.max(now).checked_add(cost) else {
                return false;
            };
            if next > now.saturating_add(capacity) {
                return false;
            }
            if i != j {
                other.fetch_max(next, Ordering::AcqRel);
            }
            if lighter
                .compare_exchange(tat, next, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return true;
            }
        }
    }
}

/// A rate of `rate` events per `period` seconds per source, with a bucket of `burst` events,
/// over a [`RateTable`]. Units: one second is `rate` units, one event costs `period` units.
/// Shared by reference between threads (every worker spends from the same table).
pub struct Limiter {
    table: RateTable,
    rate: u64,
    period: u64,
    burst: u64,
}

impl Limiter {
    /// A limiter over a table of `slots` slots.
    pub fn new(slots: usize, rate: u32, period: u32, burst: u32) -> Self {
        Limiter {
            table: RateTable::new(slots),
            rate: u64::from(rate),
            period: u64::from(period.max(1)),
            burst: u64::from(burst.max(1)),
        }
    }

    /// Whether `key` may have one more event at `now` (seconds), without spending it.
    pub fn check(&self, key: SourceKey, now: u32) -> Option<Grant> {
        self.table.check(
            key,
            u64::from(now) * self.rate,
            self.period,
            self.burst * self.period,
        )
    }

    /// Spends a grant of [`Self::check`].
    pub fn commit(&self, g: Grant) {
        self.table.commit(g);
    }

    /// Checks and spends one event of `key` at `now` ([`RateTable::admit`]: exact across
    /// threads): false when over the rate.
    pub fn admit(&self, key: SourceKey, now: u32) -> bool {
        self.table.admit(
            key,
            u64::from(now) * self.rate,
            self.period,
            self.burst * self.period,
        )
    }
}

/// The rate tables of one tracker, and the count of full scrapes being sent; shared by every
/// worker (`tracker.workers`: [`Quotas::for_worker`]), so a source's quota is one whatever
/// worker its requests reach (a UDP source's datagrams reach the worker its address and port
/// hash to). A table is `None` where its directive is 0 (no table allocated). The tables are
/// atomic words ([`RateTable`]): no lock on the per-datagram path.
pub struct Quotas {
    new_torrents: Option<Arc<Limiter>>,
    udp: Option<Arc<Limiter>>,
    fullscrape_streams: Arc<StreamCount>,
}

impl Quotas {
    /// The tables `policy` asks for: new torrents per network per minute (bucket: one minute's
    /// worth), UDP requests per source per second (bucket: `udp_rate_burst`).
    pub fn new(policy: &Policy) -> Self {
        Quotas {
            new_torrents: (policy.max_new_torrents_per_net > 0).then(|| {
                Arc::new(Limiter::new(
                    NET_SLOTS,
                    policy.max_new_torrents_per_net,
                    60,
                    policy.max_new_torrents_per_net,
                ))
            }),
            udp: (policy.udp_rate_limit > 0).then(|| {
                Arc::new(Limiter::new(
                    SOURCE_SLOTS,
                    policy.udp_rate_limit,
                    1,
                    policy.udp_rate_burst,
                ))
            }),
            fullscrape_streams: Arc::default(),
        }
    }

    /// The quotas of another worker: the same tables and stream count.
    pub fn for_worker(&self) -> Self {
        Quotas {
            new_torrents: self.new_torrents.clone(),
            udp: self.udp.clone(),
            fullscrape_streams: Arc::clone(&self.fullscrape_streams),
        }
    }
}

/// Full scrapes being sent by every worker together, against `http.fullscrape_max_streams`
/// (as opentracker's one process): [`StreamCount::open`] counts one in, the [`StreamPermit`] it
/// returns counts it out when dropped, whatever path ends the stream.
#[derive(Debug, Default)]
pub struct StreamCount(AtomicUsize);

impl StreamCount {
    /// One more stream if fewer than `max` are open (0 = no cap): its permit, or `None` at
    /// the cap. Never over the cap, also when workers ask at once.
    pub fn open(self: &Arc<Self>, max: usize) -> Option<StreamPermit> {
        let max = if max == 0 { usize::MAX } else { max };
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| StreamPermit(Arc::clone(self)))
    }

    /// Streams open now, in every worker.
    pub fn current(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

/// One open full-scrape stream of a [`StreamCount`]: dropping it (once, by construction)
/// counts the stream out. Not `Clone`.
#[derive(Debug)]
pub struct StreamPermit(Arc<StreamCount>);

impl Drop for StreamPermit {
    fn drop(&mut self) {
        (self.0).0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Tracker {
    /// [`Tracker::announce`] after the source's quotas: refuses, without touching the store,
    /// the announce of a new peer into a swarm holding `max_peers_per_source` peers of its
    /// source, and the announce that would create a torrent beyond its network's
    /// `max_new_torrents_per_net` (charged only when the torrent was created). `stopped` and a
    /// known peer's refresh are never refused by a quota. Counts each refusal.
    ///
    /// Errors: [`AnnounceError::Quota`], or [`AnnounceError::Capacity`] from the announce.
    pub(super) fn announce_within_quotas(
        &mut self,
        a: &Announce,
        ip: IpAddr,
        proto: Proto,
        now: u32,
        peers: &mut Vec<u8>,
    ) -> Result<AnnounceReply, AnnounceError> {
        let max_peers = self.policy.max_peers_per_source as usize;
        if a.event == Event::Stopped || (max_peers == 0 && self.quotas.new_torrents.is_none()) {
            return self
                .announce(a, ip, proto, now, peers)
                .map_err(AnnounceError::Capacity);
        }
        let src = match ip.to_canonical() {
            IpAddr::V4(ip4) => {
                self.v4
                    .source_peers(&a.info_hash, &peer_v4(ip4, a.port), V4_SOURCE_BYTES)
            }
            IpAddr::V6(ip6) => {
                self.v6
                    .source_peers(&a.info_hash, &peer_v6(ip6, a.port), V6_SOURCE_BYTES)
            }
        };
        if max_peers != 0 && !src.peer && src.same_source >= max_peers {
            self.stats.quota.peers_per_source += 1;
            return Err(AnnounceError::Quota(Refusal::PeersPerSource));
        }
        let grant = match (&self.quotas.new_torrents, src.torrent) {
            (Some(l), false) => match l.check(SourceKey::net(ip), now) {
                Some(g) => Some(g),
                None => {
                    self.stats.quota.new_torrents_per_net += 1;
                    return Err(AnnounceError::Quota(Refusal::NewTorrentsPerNet));
                }
            },
            _ => None,
        };
        let reply = self
            .announce(a, ip, proto, now, peers)
            .map_err(AnnounceError::Capacity)?;
        if let (Some(g), Some(l)) = (grant, &self.quotas.new_torrents) {
            l.commit(g);
        }
        Ok(reply)
    }

    /// Counts one more full scrape being sent, by any worker, if fewer than `max` are
    /// (`http.fullscrape_max_streams`, 0 = no cap): the permit to hold while the stream lasts
    /// (dropping it counts the stream out), or `None` at the cap.
    pub fn open_fullscrape_stream(&self, max: usize) -> Option<StreamPermit> {
        self.quotas.fullscrape_streams.open(max)
    }

    /// Full scrapes being sent now by every worker together.
    pub fn fullscrape_streams(&self) -> usize {
        self.quotas.fullscrape_streams.current()
    }

    /// The UDP rate limit (`udp.rate_limit`): whether a datagram from `ip` at `now` (seconds)
    /// is within its source's rate (IPv4 address, IPv6 /64), spending one request if so. A
    /// datagram over the rate is counted (`udp.rate_limited`) and must get no answer. Always
    /// true when the limit is off.
    pub fn udp_admit(&mut self, ip: IpAddr, now: u32) -> bool {
        let Some(l) = &self.quotas.udp else {
            return true;
        };
        if l.admit(SourceKey::host(ip), now) {
            return true;
        }
        self.stats.quota.udp_rate_limited += 1;
        false
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use super::super::{Announce, AnnounceError, Policy, Proto, Tracker};
    use super::{Limiter, RateTable, Refusal, SourceKey};
    use crate::types::Event;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    fn v6(s: &str) -> IpAddr {
        s.parse::<Ipv6Addr>().unwrap().into()
    }

    #[test]
    fn source_keys_cut_to_their_prefix() {
        assert_eq!(
            SourceKey::net(v4(10, 1, 2, 3)),
            SourceKey::net(v4(10, 1, 2, 200))
        );
        assert_ne!(
            SourceKey::net(v4(10, 1, 2, 3)),
            SourceKey::net(v4(10, 1, 3, 3))
        );
        assert_eq!(
            SourceKey::net(v6("2001:db8:1::1")),
            SourceKey::net(v6("2001:db8:1:ffff::9"))
        );
        assert_ne!(
            SourceKey::net(v6("2001:db8:1::1")),
            SourceKey::net(v6("2001:db8:2::1"))
        );
        assert_eq!(
            SourceKey::host(v6("2001:db8:0:1::1")),
            SourceKey::host(v6("2001:db8:0:1:ffff::9"))
        );
        assert_ne!(
            SourceKey::host(v4(10, 0, 0, 1)),
            SourceKey::host(v4(10, 0, 0, 2))
        );
        // IPv4-mapped is IPv4; an IPv6 address with the same low bits is not.
        assert_eq!(
            SourceKey::host(v6("::ffff:10.0.0.1")),
            SourceKey::host(v4(10, 0, 0, 1))
        );
        assert_ne!(
            SourceKey::of(v6("::a00:1"), 32, 128),
            SourceKey::of(v4(10, 0, 0, 1), 32, 128)
        );
        assert_eq!(SourceKey::of(v4(1, 2, 3, 4), 0, 0).prefix, 0);
        assert_eq!(SourceKey::of(v4(1, 2, 3, 4), 99, 999).prefix, 0x0102_0304);
        assert_eq!(SourceKey::of(v6("::1"), 99, 999).prefix, 1);
    }

    #[test]
    fn table_is_a_token_bucket_per_key() {
        let t = RateTable::new(1000);
        assert_eq!(t.len(), 1024);
        let a = SourceKey::host(v4(10, 0, 0, 1));
        let b = SourceKey::host(v4(10, 0, 0, 2));
        // Bucket of 5 units, cost 1, at time 100: five pass, the sixth does not.
        for _ in 0..5 {
            let g = t.check(a, 100, 1, 5).unwrap();
            t.commit(g);
        }
        assert_eq!(t.check(a, 100, 1, 5), None);
        // A check alone spends nothing.
        assert!(t.check(b, 100, 1, 5).is_some());
        assert!(t.check(b, 100, 1, 5).is_some());
        // Another key has its own bucket (unless both of its slots collide with `a`'s, which
        // the random key makes unlikely but possible: then it is stricter, never looser).
        let bs = t.slots_of(b);
        if !bs.iter().all(|s| t.slots_of(a).contains(s)) {
            for _ in 0..5 {
                let g = t.check(b, 100, 1, 5).unwrap();
                t.commit(g);
            }
        }
        // Time refills: two units later, two more pass.
        for _ in 0..2 {
            let g = t.check(a, 102, 1, 5).unwrap();
            t.commit(g);
        }
        assert_eq!(t.check(a, 102, 1, 5), None);
        // A long pause refills the whole bucket and no more.
        for _ in 0..5 {
            let g = t.check(a, 10_000, 1, 5).unwrap();
            t.commit(g);
        }
        assert_eq!(t.check(a, 10_000, 1, 5), None);
        // The table never grows.
        assert_eq!(t.len(), 1024);
    }

    #[test]
    fn limiter_rates_per_second_and_per_minute() {
        // 3 a second, bucket of 6.
        let l = Limiter::new(64, 3, 1, 6);
        let k = SourceKey::host(v4(10, 0, 0, 1));
        assert_eq!((0..10).filter(|_| l.admit(k, 5)).count(), 6);
        assert_eq!((0..10).filter(|_| l.admit(k, 6)).count(), 3);
        assert_eq!((0..10).filter(|_| l.admit(k, 8)).count(), 6);
        // 120 a minute, bucket of one minute: 120 at once, then 2 a second.
        let l = Limiter::new(64, 120, 60, 120);
        assert_eq!((0..500).filter(|_| l.admit(k, 0)).count(), 120);
        assert_eq!((0..500).filter(|_| l.admit(k, 1)).count(), 2);
        assert_eq!((0..500).filter(|_| l.admit(k, 31)).count(), 60);
        assert_eq!((0..500).filter(|_| l.admit(k, 1000)).count(), 120);
    }

    #[test]
    fn many_sources_in_constant_memory_keep_their_own_budget() {
        // 100,000 networks through 16,384 slots, one new torrent each in the same second (far
        // more than a real tracker sees in a minute), and one network at its limit: a quiet
        // network still gets nearly its 100 (measured: worst 90, mean 92), because it loses
        // budget only to the load of the less loaded of its two slots.
        let l = Limiter::new(super::NET_SLOTS, 100, 60, 100);
        let loud = SourceKey::net(v4(203, 0, 113, 1));
        assert_eq!((0..1000).filter(|_| l.admit(loud, 0)).count(), 100);
        for i in 0..100_000u32 {
            let ip = IpAddr::V4(Ipv4Addr::from(i << 8));
            assert!(l.admit(SourceKey::net(ip), 0));
        }
        // What each quiet network may spend now, read from its slots without spending (had
        // each spent its budget, the later ones would meet the earlier ones' full buckets
        // in the table: two slots of 200 x 2 spent ones, 1 run in 10 saw a network get 0).
        let budget = |k: SourceKey| {
            let [i, j] = l.table.slots_of(k);
            let tat = l.table.load(i).min(l.table.load(j));
            ((l.burst * l.period).saturating_sub(tat) / l.period) as usize
        };
        let quiet = |i: u32| SourceKey::net(IpAddr::V4(Ipv4Addr::from((0xc0a8_0000 + i) << 8)));
        let got: Vec<usize> = (0..200u32).map(|i| budget(quiet(i))).collect();
        // The budget read is the budget spent.
        assert_eq!((0..100).filter(|_| l.admit(quiet(0), 0)).count(), got[0]);
        let worst = got.iter().min().copied().unwrap_or(0);
        let mean = got.iter().sum::<usize>() / got.len();
        eprintln!("quiet networks: worst {worst}, mean {mean} of 100");
        assert!(worst >= 80 && mean >= 88, "worst {worst}, mean {mean}");
    }

    #[test]
    fn admit_is_exact_across_threads() {
        // 4 threads spend from one source at once (a source whose datagrams reach 4 workers):
        // together they get the bucket and no more, the same as one thread.
        let l = std::sync::Arc::new(Limiter::new(64, 1000, 1, 5000));
        let k = SourceKey::host(v4(10, 0, 0, 1));
        let got: usize = (0..4)
            .map(|_| {
                let l = std::sync::Arc::clone(&l);
                std::thread::spawn(move || (0..20_000).filter(|_| l.admit(k, 7)).count())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(got, 5000);
        // A second later, the rate's worth more, split between the threads.
        let got: usize = (0..4)
            .map(|_| {
                let l = std::sync::Arc::clone(&l);
                std::thread::spawn(move || (0..2000).filter(|_| l.admit(k, 8)).count())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(got, 1000);
    }

    #[test]
    fn admit_with_both_halves_in_one_slot() {
        // A table of 2 slots: some keys hash both halves to one slot; each still gets its
        // bucket exactly (nothing else spends here).
        for i in 0..32u8 {
            let t = RateTable::new(2);
            let k = SourceKey::host(v4(10, 0, 1, i));
            assert_eq!((0..10).filter(|_| t.admit(k, 100, 1, 4)).count(), 4);
            assert!(t.admit(k, 101, 1, 4));
            assert!(!t.admit(k, 101, 1, 4));
        }
    }

    #[test]
    fn stream_count_caps_and_counts_out_once() {
        let q = super::Quotas::new(&Policy::default());
        let other = q.for_worker();
        let a = q.fullscrape_streams.open(2).unwrap();
        let b = other.fullscrape_streams.open(2).unwrap();
        // Two open in all: a third is refused by either worker.
        assert!(q.fullscrape_streams.open(2).is_none());
        assert!(other.fullscrape_streams.open(2).is_none());
        assert_eq!(q.fullscrape_streams.current(), 2);
        drop(a);
        assert_eq!(other.fullscrape_streams.current(), 1);
        let c = other.fullscrape_streams.open(2).unwrap();
        drop((b, c));
        assert_eq!(q.fullscrape_streams.current(), 0);
        // No cap: counted all the same.
        let many: Vec<_> = (0..100)
            .map(|_| q.fullscrape_streams.open(0).unwrap())
            .collect();
        assert_eq!(other.fullscrape_streams.current(), 100);
        drop(many);
        assert_eq!(q.fullscrape_streams.current(), 0);
    }

    fn tracker(new_per_net: u32, per_source: u32) -> Tracker {
        Tracker::new(Policy {
            max_new_torrents_per_net: new_per_net,
            max_peers_per_source: per_source,
            ..Policy::default()
        })
    }

    fn ann(h: u32, port: u16, event: Event) -> Announce {
        let mut info_hash = [0u8; 20];
        info_hash[..4].copy_from_slice(&h.to_be_bytes());
        Announce {
            info_hash,
            port,
            left: Some(1),
            event,
            numwant: None,
        }
    }

    fn go(t: &mut Tracker, a: &Announce, ip: IpAddr, now: u32) -> Result<u32, AnnounceError> {
        let mut peers = Vec::new();
        t.serve_announce(a, None, ip, Proto::Udp, now, &mut peers)
            .map(|r| r.counts.leechers)
    }

    const NEW: Result<u32, AnnounceError> = Err(AnnounceError::Quota(Refusal::NewTorrentsPerNet));
    const PEERS: Result<u32, AnnounceError> = Err(AnnounceError::Quota(Refusal::PeersPerSource));

    #[test]
    fn new_torrents_per_network_and_minute() {
        let mut t = tracker(5, 0);
        let a = v4(192, 0, 2, 1);
        for h in 0..5 {
            assert_eq!(go(&mut t, &ann(h, 1, Event::Started), a, 10), Ok(1));
        }
        // The sixth new torrent of 192.0.2.0/24 is refused, from any host of it; the store is
        // unchanged.
        assert_eq!(go(&mut t, &ann(5, 1, Event::Started), a, 10), NEW);
        assert_eq!(
            go(&mut t, &ann(5, 1, Event::Started), v4(192, 0, 2, 99), 10),
            NEW
        );
        assert_eq!((t.torrents(), t.peers()), (5, 5));
        assert_eq!(t.stats.quota.new_torrents_per_net, 2);
        assert_eq!(t.stats.udp[0].failed, 2);
        // Known torrents keep working for the same network; stopped too.
        assert_eq!(
            go(&mut t, &ann(0, 2, Event::None), v4(192, 0, 2, 7), 10),
            Ok(2)
        );
        assert_eq!(
            go(&mut t, &ann(0, 2, Event::Stopped), v4(192, 0, 2, 7), 10),
            Ok(1)
        );
        // Another /24 has its own quota.
        assert_eq!(
            go(&mut t, &ann(5, 1, Event::Started), v4(192, 0, 3, 1), 10),
            Ok(1)
        );
        // A minute refills it: 5 a minute is one every 12 s.
        assert_eq!(go(&mut t, &ann(6, 1, Event::Started), a, 21), NEW);
        assert_eq!(go(&mut t, &ann(6, 1, Event::Started), a, 22), Ok(1));
        assert_eq!(go(&mut t, &ann(7, 1, Event::Started), a, 22), NEW);
        for h in 7..11 {
            assert_eq!(go(&mut t, &ann(h, 1, Event::Started), a, 100), Ok(1));
        }
        // IPv6: per /48; the IPv6 half of a known IPv4 torrent is a store entry of its own.
        for h in 0..5 {
            let ip = v6(&format!("2001:db8:1:{h}::1"));
            assert_eq!(go(&mut t, &ann(h, 1, Event::Started), ip, 100), Ok(1));
        }
        assert_eq!(
            go(
                &mut t,
                &ann(5, 1, Event::Started),
                v6("2001:db8:1:ff::1"),
                100
            ),
            NEW
        );
        assert_eq!(
            go(&mut t, &ann(5, 1, Event::Started), v6("2001:db8:2::1"), 100),
            Ok(1)
        );
    }

    #[test]
    fn refused_by_capacity_charges_nothing() {
        let mut t = Tracker::new(Policy {
            max_new_torrents_per_net: 2,
            max_peers_per_source: 0,
            max_torrents: 1,
            ..Policy::default()
        });
        let a = v4(10, 0, 0, 1);
        assert_eq!(go(&mut t, &ann(0, 1, Event::Started), a, 0), Ok(1));
        for h in 1..10 {
            assert!(matches!(
                go(&mut t, &ann(h, 1, Event::Started), a, 0),
                Err(AnnounceError::Capacity(_))
            ));
        }
        assert_eq!(go(&mut t, &ann(0, 1, Event::Stopped), a, 0), Ok(0));
        assert_eq!(go(&mut t, &ann(1, 1, Event::Started), a, 0), Ok(1));
    }

    #[test]
    fn peers_per_source_in_one_swarm() {
        let mut t = tracker(0, 3);
        let a = v4(10, 0, 0, 1);
        for port in 1..=3 {
            assert_eq!(
                go(&mut t, &ann(1, port, Event::Started), a, 0),
                Ok(port as u32)
            );
        }
        // A fourth port of the same address: refused, store unchanged.
        assert_eq!(go(&mut t, &ann(1, 4, Event::Started), a, 0), PEERS);
        assert_eq!(t.peers(), 3);
        assert_eq!(t.stats.quota.peers_per_source, 1);
        // Refreshes and completed of known peers always pass.
        assert_eq!(go(&mut t, &ann(1, 2, Event::None), a, 0), Ok(3));
        assert_eq!(go(&mut t, &ann(1, 3, Event::Completed), a, 0), Ok(3));
        // Other addresses, other swarms: their own count.
        assert_eq!(
            go(&mut t, &ann(1, 4, Event::Started), v4(10, 0, 0, 2), 0),
            Ok(4)
        );
        assert_eq!(go(&mut t, &ann(2, 4, Event::Started), a, 0), Ok(1));
        // Stopping one makes room.
        assert_eq!(go(&mut t, &ann(1, 1, Event::Stopped), a, 0), Ok(3));
        assert_eq!(go(&mut t, &ann(1, 4, Event::Started), a, 0), Ok(4));
        // IPv6: one /64 is one source, whatever the host part.
        for i in 1..=3 {
            let ip = v6(&format!("2001:db8:0:7::{i}"));
            assert_eq!(go(&mut t, &ann(1, 6881, Event::Started), ip, 0), Ok(i));
        }
        assert_eq!(
            go(
                &mut t,
                &ann(1, 6881, Event::Started),
                v6("2001:db8:0:7:ffff::1"),
                0
            ),
            PEERS
        );
        assert_eq!(
            go(
                &mut t,
                &ann(1, 6881, Event::Started),
                v6("2001:db8:0:8::1"),
                0
            ),
            Ok(4)
        );
        // IPv4-mapped IPv6 is the IPv4 address.
        assert_eq!(
            go(&mut t, &ann(1, 9, Event::Started), v6("::ffff:10.0.0.1"), 0),
            PEERS
        );
    }

    #[test]
    fn udp_rate_limit_drops_and_counts() {
        let mut t = Tracker::new(Policy {
            udp_rate_limit: 2,
            udp_rate_burst: 4,
            ..Policy::default()
        });
        let a = v4(127, 0, 0, 2);
        assert_eq!((0..10).filter(|_| t.udp_admit(a, 0)).count(), 4);
        assert_eq!(t.stats.quota.udp_rate_limited, 6);
        assert_eq!((0..10).filter(|_| t.udp_admit(a, 1)).count(), 2);
        // One /64 is one source.
        let b = v6("2001:db8::1");
        let c = v6("2001:db8::2");
        assert_eq!((0..3).filter(|_| t.udp_admit(b, 1)).count(), 3);
        assert_eq!((0..3).filter(|_| t.udp_admit(c, 1)).count(), 1);
        // Off: everything passes.
        let mut off = Tracker::new(Policy {
            udp_rate_limit: 0,
            ..Policy::default()
        });
        assert!((0..100_000).all(|_| off.udp_admit(a, 0)));
        assert_eq!(off.stats.quota.udp_rate_limited, 0);
    }

    #[test]
    fn defaults_let_a_seedbox_restart_through() {
        // 10,000 torrents from one host in the first minute, 10,000 UDP requests at once.
        let mut t = Tracker::new(Policy::default());
        let a = v4(198, 51, 100, 7);
        for h in 0..10_000 {
            assert!(t.udp_admit(a, 0));
            assert_eq!(go(&mut t, &ann(h, 51413, Event::Started), a, 0), Ok(1));
        }
        assert_eq!(t.stats.quota.new_torrents_per_net, 0);
        assert_eq!(t.stats.quota.udp_rate_limited, 0);
    }
}
