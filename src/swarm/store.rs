//! The store: info_hash -> swarm, for one address family.
//!
//! `Store<6>` holds IPv4 peers, `Store<18>` IPv6 peers (a dual-stack tracker owns one of each;
//! a peer is stored in the store of the family it announced from). The store is a fixed array
//! of [`BUCKETS`] buckets, chosen by the top 12 bits of the info_hash, each a `Vec` of
//! [`Torrent`]s sorted by info_hash, so lookup is a binary search and walking the buckets in
//! order visits every torrent in info_hash order (the full scrape needs no index).
//!
//! Everything is in values the caller owns: no I/O, no clock (time is `now: u32`, seconds since
//! the process started, monotonic), no global state, no randomness but the `fastrand::Rng`
//! passed in. Each kind of change has one function ([`Store::announce`], [`Store::stop`],
//! [`Store::clean_step`], [`Store::retain`], [`Store::set_downloaded`]) so live sync can hook
//! them later. Totals (torrents, peers, seeders) are kept up to date incrementally.
//!
//! Memory: a torrent costs 48 bytes in its bucket plus its record block (6.5 bytes per IPv4
//! peer; none for one IPv4 peer), which lives in the store's [`Slab`] up to 4 KiB; see
//! [`super::torrent`] and [`super::slab`]. Buckets grow by `max(1, len / 64)` entries, not by
//! doubling: all buckets grow together, and every reallocation leaves a hole of a size the
//! other buckets have outgrown, so small steps waste the least (one torrent per peer, measured:
//! 58.8 / 63.0 bytes per peer at 200,000 / 1,000,000 torrents growing by `len / 8`, 53.5 / 52.3
//! by `len / 64`). The copy that a step costs is no more than the memmove of inserting into the
//! bucket. A bucket shrinks (to `len + len / 8`) when it falls under half full after removals.
//! A torrent leaving the store is cleared first, so its slab slot is given back.

use super::clean::{self, CleanStats, Ticks, clean_torrent, must_drop};
use super::select::select_peers;
use super::slab::{KEY, Slab};
use super::torrent::{PeerVec, SEEDER, Torrent};
use crate::types::{Event, InfoHash};

/// Number of buckets: the top 12 bits of the info_hash pick one.
pub const BUCKETS: usize = 4096;

/// The bucket of an info_hash: its top 12 bits (`h[0] << 4 | h[1] >> 4`), in `0..BUCKETS`.
pub fn bucket_of(info_hash: &InfoHash) -> usize {
    ((info_hash[0] as usize) << 4) | ((info_hash[1] as usize) >> 4)
}

/// Timeouts of the store, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// A peer that has not announced for this long is dropped (seconds, default 2700 = 45 min,
    /// opentracker's `OT_PEER_TIMEOUT`). Precision: 1/32 of it (see [`super::clean`]).
    pub peer_timeout: u32,
    /// A torrent that has had no peer for this long is dropped even though it has a
    /// `downloaded` count (seconds, default 86400 = 24 h, opentracker's `OT_TORRENT_TIMEOUT`).
    /// A peerless torrent with `downloaded == 0` is dropped at once.
    pub torrent_timeout: u32,
}

impl Default for StoreConfig {
    /// The defaults of the config table (`tracker.peer_timeout`, `tracker.torrent_timeout`).
    fn default() -> Self {
        let c = crate::config::Config::default();
        StoreConfig {
            peer_timeout: c.peer_timeout,
            torrent_timeout: c.torrent_timeout,
        }
    }
}

/// The counts of one swarm, as an announce or scrape response gives them (BEP 48 / BEP 15).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SwarmCounts {
    /// Peers with `left=0` (`complete`).
    pub seeders: u32,
    /// Peers with `left>0` (`incomplete`).
    pub leechers: u32,
    /// `event=completed` announces counted, once per peer per stay (`downloaded`).
    pub downloaded: u32,
}

/// One announce, as the store needs it (the caller has parsed and checked it).
#[derive(Clone, Copy, Debug)]
pub struct AnnounceInput<'a, const N: usize> {
    /// The torrent's info_hash.
    pub info_hash: &'a InfoHash,
    /// The peer in compact form (N bytes: address then port, network order).
    pub peer: &'a [u8; N],
    /// True when the peer announced `left=0`.
    pub seeder: bool,
    /// The event; `Stopped` is handled as [`Store::stop`].
    pub event: Event,
    /// Peers wanted, already clamped by the caller (0 = none; more than
    /// [`super::select::MAX_NUMWANT`] is clamped to it).
    pub numwant: usize,
}

/// The RAM store of one address family; `N` is the compact peer length (6 or 18 bytes).
pub struct Store<const N: usize> {
    buckets: Box<[Vec<Torrent<N>>]>,
    /// Storage of the record blocks of swarms up to 4 KiB.
    slab: Slab,
    config: StoreConfig,
    ticks: Ticks,
    /// Next bucket the background sweep visits.
    cursor: usize,
    torrents: u64,
    peers: u64,
    seeders: u64,
}

/// The IPv4 store (6-byte peers, BEP 23).
pub type StoreV4 = Store<6>;
/// The IPv6 store (18-byte peers, BEP 7).
pub type StoreV6 = Store<18>;

fn counts_of<const N: usize>(t: &Torrent<N>) -> SwarmCounts {
    SwarmCounts {
        seeders: t.seeders(),
        leechers: t.leechers(),
        downloaded: t.downloaded(),
    }
}

/// The key of a torrent's record block (see [`super::slab`]): the first bytes of its
/// info_hash, which also give its bucket.
fn key_of(info_hash: &InfoHash) -> [u8; KEY] {
    let mut k = [0u8; KEY];
    k.copy_from_slice(&info_hash[..KEY]);
    k
}

/// Applies the move the slab's last free made, if any: the swarm whose block was moved is
/// found by its key (bucket, then binary search on the info_hash prefix; several torrents may
/// share the prefix, the one in the moved slot is the owner) and pointed at its new slot.
fn apply_move<const N: usize>(buckets: &mut [Vec<Torrent<N>>], slab: &mut Slab) {
    let Some(m) = slab.take_moved() else {
        return;
    };
    let b = (usize::from(m.key[0]) << 4) | usize::from(m.key[1] >> 4);
    if let Some(v) = buckets.get_mut(b) {
        let start = v.partition_point(|t| t.info_hash[..KEY] < m.key[..]);
        for t in v[start..].iter_mut() {
            if t.info_hash[..KEY] != m.key[..] {
                break;
            }
            if t.peers.apply_move(&m) {
                return;
            }
        }
    }
    debug_assert!(false, "a moved block has no owner: {m:?}");
}

/// Frees bucket slack after removals: below half full, shrink to `len + len / 8`.
fn shrink_bucket<T>(v: &mut Vec<T>) {
    if (v.is_empty() && v.capacity() > 0) || v.len() < v.capacity() / 2 {
        v.shrink_to(v.len() + v.len() / 8);
    }
}

impl<const N: usize> Store<N> {
    /// An empty store (allocates the bucket array: `BUCKETS` x 24 bytes).
    pub fn new(config: StoreConfig) -> Self {
        Store {
            buckets: (0..BUCKETS).map(|_| Vec::new()).collect(),
            slab: PeerVec::<N>::new_slab(),
            config,
            ticks: Ticks::new(config.peer_timeout, config.torrent_timeout),
            cursor: 0,
            torrents: 0,
            peers: 0,
            seeders: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// The store's ticks (tick length in seconds, timeouts in ticks).
    pub fn ticks(&self) -> &Ticks {
        &self.ticks
    }

    /// Number of torrents (including peerless ones kept for their `downloaded` count).
    pub fn torrents(&self) -> u64 {
        self.torrents
    }

    /// Number of peers (seeders and leechers; expired peers count until cleaned).
    pub fn peers(&self) -> u64 {
        self.peers
    }

    /// Number of seeders.
    pub fn seeders(&self) -> u64 {
        self.seeders
    }

    /// True when the info_hash has a torrent (no cleaning).
    pub fn contains(&self, info_hash: &InfoHash) -> bool {
        self.buckets[bucket_of(info_hash)]
            .binary_search_by(|t| t.info_hash.cmp(info_hash))
            .is_ok()
    }

    /// True when the info_hash has a torrent holding `peer` (no cleaning: a peer that expired
    /// but was not cleaned yet still counts). Two binary searches; used by the capacity check
    /// (`tracker.max_peers`), which runs only once the store is full.
    pub fn contains_peer(&self, info_hash: &InfoHash, peer: &[u8; N]) -> bool {
        let bucket = &self.buckets[bucket_of(info_hash)];
        match bucket.binary_search_by(|t| t.info_hash.cmp(info_hash)) {
            Ok(i) => bucket[i].peers.search(peer).is_ok(),
            Err(_) => false,
        }
    }

    /// Heap bytes requested from the allocator by the store (bucket array, bucket vectors,
    /// slab chunks, record blocks of their own), without malloc's own overhead. Walks every
    /// torrent: for stats, not for the hot path.
    pub fn heap_bytes(&self) -> u64 {
        let mut n = (self.buckets.len() * size_of::<Vec<Torrent<N>>>()) as u64;
        n += self.slab.heap_bytes() as u64;
        for v in self.buckets.iter() {
            n += (v.capacity() * size_of::<Torrent<N>>()) as u64;
            n += v
                .iter()
                .filter(|t| !t.peers.in_slab())
                .map(|t| t.peers.heap_bytes() as u64)
                .sum::<u64>();
        }
        n
    }

    /// Cleans torrent `i` of bucket `b` at `now_tick`, fixing the totals. Returns true when it
    /// must be dropped (the caller removes it or reuses it).
    fn clean_at(&mut self, b: usize, i: usize, now_tick: u32) -> bool {
        let Some(t) = self.buckets[b].get_mut(i) else {
            return false;
        };
        let o = clean_torrent(&mut self.slab, t, now_tick, &self.ticks);
        apply_move(&mut self.buckets, &mut self.slab);
        self.peers -= u64::from(o.peers_removed);
        self.seeders -= u64::from(o.seeders_removed);
        o.drop
    }

    /// Removes torrent `i` of bucket `b`, fixing the totals.
    fn remove_torrent(&mut self, b: usize, i: usize) {
        let v = &mut self.buckets[b];
        if i < v.len() {
            let mut t = v.remove(i);
            self.torrents -= 1;
            self.peers -= t.peers.len() as u64;
            self.seeders -= u64::from(t.seeders);
            shrink_bucket(v);
            t.peers.clear(&mut self.slab);
            apply_move(&mut self.buckets, &mut self.slab);
        }
    }

    /// Inserts `t` at position `i` of bucket `b` (growing the bucket by `max(1, len / 64)`).
    fn insert_torrent(&mut self, b: usize, i: usize, t: Torrent<N>) {
        let v = &mut self.buckets[b];
        if v.len() == v.capacity() {
            v.reserve_exact((v.len() / 64).max(1));
        }
        v.insert(i.min(v.len()), t);
        self.torrents += 1;
    }

    /// Finds the torrent, cleaning it first; a torrent the cleaning drops is removed.
    /// `Ok(i)`: present at `i` of bucket `b`; `Err(i)`: absent, would go at `i`.
    fn find_cleaned(
        &mut self,
        b: usize,
        info_hash: &InfoHash,
        now_tick: u32,
    ) -> Result<usize, usize> {
        let found = self.buckets[b].binary_search_by(|t| t.info_hash.cmp(info_hash));
        if let Ok(i) = found {
            if self.clean_at(b, i, now_tick) {
                self.remove_torrent(b, i);
                return Err(i);
            }
        }
        found
    }

    /// Announce (BEP 3; counts as opentracker): inserts or updates the peer, stamped with the
    /// current tick, then appends up to `numwant` selected peers (N bytes each, compact form;
    /// see [`super::select`]) to `out` and returns the swarm's counts INCLUDING the announcing
    /// peer.
    ///
    /// The torrent is cleaned (expiry) first and created if unknown. A new peer adds to the
    /// peers (and seeders if `seeder`). A known peer is refreshed, and seeder<->leecher changes
    /// fix the seeders count. `Completed` with `seeder` counts one `downloaded` when the peer
    /// was not stored as a seeder (new, or a leecher until now): each finished download counts
    /// once, and a seeder repeating `completed` counts nothing (opentracker counts a repeat
    /// after any announce without `completed`). `Completed` from a leecher never counts.
    /// `Stopped` is handled as [`Store::stop`] and selects nothing.
    pub fn announce(
        &mut self,
        req: &AnnounceInput<'_, N>,
        now: u32,
        rng: &mut fastrand::Rng,
        out: &mut Vec<u8>,
    ) -> SwarmCounts {
        if req.event == Event::Stopped {
            return self.stop(req.info_hash, req.peer, now);
        }
        let now_tick = self.ticks.tick(now);
        let b = bucket_of(req.info_hash);
        let i = match self.find_cleaned(b, req.info_hash, now_tick) {
            Ok(i) => i,
            Err(i) => {
                self.insert_torrent(b, i, Torrent::new(*req.info_hash, now_tick));
                i
            }
        };
        let Some(t) = self.buckets[b].get_mut(i) else {
            return SwarmCounts::default();
        };
        // The stamp tick never lies before last_clean, keeping the invariant of clean.rs even if
        // `now` went backwards.
        let tick = t.last_clean.max(now_tick);
        t.last_clean = tick;
        let stamp = clean::stamp(tick);
        let completed = req.event == Event::Completed && req.seeder;
        let seeder_bit = if req.seeder { SEEDER } else { 0 };
        let requester = match t.peers.search(req.peer) {
            Ok(p) => {
                let old = t.peers.meta(p).unwrap_or(0);
                let meta = stamp | seeder_bit;
                if completed && old & SEEDER == 0 {
                    t.downloaded = t.downloaded.saturating_add(1);
                }
                match (old & SEEDER != 0, req.seeder) {
                    (false, true) => {
                        t.seeders += 1;
                        self.seeders += 1;
                    }
                    (true, false) => {
                        t.seeders -= 1;
                        self.seeders -= 1;
                    }
                    _ => {}
                }
                t.peers.set_meta(p, meta);
                Some(p)
            }
            Err(p) => {
                let meta = stamp | seeder_bit;
                if t.peers
                    .insert(&mut self.slab, &key_of(req.info_hash), p, req.peer, meta)
                {
                    self.peers += 1;
                    if req.seeder {
                        t.seeders += 1;
                        self.seeders += 1;
                    }
                    if completed {
                        t.downloaded = t.downloaded.saturating_add(1);
                    }
                    Some(p)
                } else {
                    None
                }
            }
        };
        apply_move(&mut self.buckets, &mut self.slab);
        let Some(t) = self.buckets[b].get_mut(i) else {
            return SwarmCounts::default();
        };
        let counts = counts_of(t);
        if requester.is_none() && t.peers.is_empty() && t.downloaded == 0 {
            // The swarm could not grow (u32::MAX peers) and the torrent is empty: do not keep it.
            self.remove_torrent(b, i);
            return counts;
        }
        let seeders = t.seeders as usize;
        select_peers(
            &t.peers,
            seeders,
            requester,
            req.seeder,
            req.numwant,
            rng,
            out,
        );
        counts
    }

    /// `event=stopped` (as opentracker's `remove_peer_from_torrent`): removes the peer if
    /// present and returns the counts after removal; all zeros if the torrent is unknown. Never
    /// creates a torrent. The torrent is cleaned first; if it ends up peerless it is dropped
    /// when `downloaded == 0`, else kept (see [`super::clean`]).
    pub fn stop(&mut self, info_hash: &InfoHash, peer: &[u8; N], now: u32) -> SwarmCounts {
        let now_tick = self.ticks.tick(now);
        let b = bucket_of(info_hash);
        let Ok(i) = self.find_cleaned(b, info_hash, now_tick) else {
            return SwarmCounts::default();
        };
        let Some(t) = self.buckets[b].get_mut(i) else {
            return SwarmCounts::default();
        };
        let Ok(p) = t.peers.search(peer) else {
            return counts_of(t);
        };
        let meta = t.peers.remove(&mut self.slab, p).unwrap_or(0);
        apply_move(&mut self.buckets, &mut self.slab);
        let Some(t) = self.buckets[b].get_mut(i) else {
            return SwarmCounts::default();
        };
        self.peers -= 1;
        if meta & SEEDER != 0 {
            t.seeders -= 1;
            self.seeders -= 1;
        }
        if t.peers.is_empty() {
            if t.downloaded == 0 {
                self.remove_torrent(b, i);
                return SwarmCounts::default();
            }
            // Peerless from now on.
            t.last_clean = t.last_clean.max(now_tick);
        }
        counts_of(t)
    }

    /// Scrape (BEP 48): the counts of one torrent after cleaning it; `None` if unknown (or
    /// dropped by the cleaning). Never creates a torrent.
    pub fn scrape(&mut self, info_hash: &InfoHash, now: u32) -> Option<SwarmCounts> {
        let now_tick = self.ticks.tick(now);
        let b = bucket_of(info_hash);
        let i = self.find_cleaned(b, info_hash, now_tick).ok()?;
        self.buckets[b].get(i).map(counts_of)
    }

    /// Background sweep: cleans every torrent of the next `buckets` buckets (at most
    /// [`BUCKETS`]; round-robin cursor), dropping expired peers and dead torrents. The caller
    /// spreads a whole sweep over time, e.g. all 4096 buckets per `peer_timeout / 4`.
    pub fn clean_step(&mut self, now: u32, buckets: usize) -> CleanStats {
        let now_tick = self.ticks.tick(now);
        let mut st = CleanStats::default();
        let ticks = self.ticks;
        for _ in 0..buckets.min(BUCKETS) {
            let b = self.cursor % BUCKETS;
            // Clean in place first (a freed slot may move another swarm of this very bucket,
            // found by binary search: the bucket must stay whole and sorted meanwhile), then
            // drop the torrents the cleaning condemned (peerless: they hold no storage).
            for i in 0..self.buckets[b].len() {
                let o = clean_torrent(&mut self.slab, &mut self.buckets[b][i], now_tick, &ticks);
                apply_move(&mut self.buckets, &mut self.slab);
                st.peers_removed += u64::from(o.peers_removed);
                st.seeders_removed += u64::from(o.seeders_removed);
            }
            let v = &mut self.buckets[b];
            let before = v.len();
            v.retain(|t| !must_drop(t, now_tick, &ticks));
            st.torrents_removed += (before - v.len()) as u64;
            shrink_bucket(v);
            self.cursor = (self.cursor + 1) % BUCKETS;
            st.buckets += 1;
        }
        self.peers -= st.peers_removed;
        self.seeders -= st.seeders_removed;
        self.torrents -= st.torrents_removed;
        st
    }

    /// Walks the torrents in info_hash order, for a full scrape built in slices: calls
    /// `f(info_hash, counts)` for up to `max` torrents (0 is read as 1) after `from` (exclusive;
    /// `None` = from the start). Returns the last info_hash visited while more torrents follow
    /// (pass it as `from` next time), `None` when the walk is finished. No cleaning (counts may
    /// include expired peers not yet swept, as opentracker's full scrape).
    pub fn for_each_from(
        &self,
        from: Option<&InfoHash>,
        max: usize,
        mut f: impl FnMut(&InfoHash, SwarmCounts),
    ) -> Option<InfoHash> {
        let max = max.max(1);
        let (mut b, mut pos) = match from {
            None => (0, 0),
            Some(h) => {
                let b = bucket_of(h);
                (b, self.buckets[b].partition_point(|t| t.info_hash <= *h))
            }
        };
        let mut visited = 0;
        let mut last = None;
        while let Some(v) = self.buckets.get(b) {
            for t in v.get(pos..).unwrap_or(&[]) {
                if visited == max {
                    return last;
                }
                f(&t.info_hash, counts_of(t));
                last = Some(t.info_hash);
                visited += 1;
            }
            b += 1;
            pos = 0;
        }
        None
    }

    /// Drops the torrents for which `keep(info_hash)` is false (e.g. after an access-list
    /// reload), fixing the totals. Walks every torrent: see [`Store::retain_buckets`] for slices.
    pub fn retain(&mut self, keep: impl FnMut(&InfoHash) -> bool) {
        self.retain_buckets(0..BUCKETS, keep);
    }

    /// [`Store::retain`] over the buckets in `buckets` only (a range within `0..BUCKETS`; the
    /// excess is ignored), so a caller can spread the walk over several loop turns. Returns the
    /// number of torrents dropped.
    pub fn retain_buckets(
        &mut self,
        buckets: std::ops::Range<usize>,
        mut keep: impl FnMut(&InfoHash) -> bool,
    ) -> u64 {
        let (mut torrents, mut peers, mut seeders) = (0u64, 0u64, 0u64);
        let end = buckets.end.min(BUCKETS);
        let start = buckets.start.min(end);
        for b in start..end {
            // Clear the condemned in place first (see `clean_step`), then drop them: after
            // that they are the only peerless torrents with `downloaded == 0`.
            for i in 0..self.buckets[b].len() {
                let t = &mut self.buckets[b][i];
                if keep(&t.info_hash) {
                    continue;
                }
                torrents += 1;
                peers += t.peers.len() as u64;
                seeders += u64::from(t.seeders);
                t.seeders = 0;
                t.downloaded = 0;
                t.peers.clear(&mut self.slab);
                apply_move(&mut self.buckets, &mut self.slab);
            }
            let v = &mut self.buckets[b];
            v.retain(|t| !(t.peers.is_empty() && t.downloaded == 0));
            shrink_bucket(v);
        }
        self.torrents -= torrents;
        self.peers -= peers;
        self.seeders -= seeders;
        torrents
    }

    /// Sets a torrent's `downloaded` count (state file load, as opentracker's `-l`), creating a
    /// peerless torrent if needed (peerless from `now`). Setting 0 on a peerless torrent drops
    /// it; setting 0 on an unknown one does nothing. The torrent is cleaned first.
    pub fn set_downloaded(&mut self, info_hash: &InfoHash, downloaded: u32, now: u32) {
        let now_tick = self.ticks.tick(now);
        let b = bucket_of(info_hash);
        match self.find_cleaned(b, info_hash, now_tick) {
            Ok(i) => {
                if let Some(t) = self.buckets[b].get_mut(i) {
                    t.downloaded = downloaded;
                    if downloaded == 0 && t.peers.is_empty() {
                        self.remove_torrent(b, i);
                    }
                }
            }
            Err(i) => {
                if downloaded > 0 {
                    let mut t = Torrent::new(*info_hash, now_tick);
                    t.downloaded = downloaded;
                    self.insert_torrent(b, i, t);
                }
            }
        }
    }
}

impl<const N: usize> std::fmt::Debug for Store<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("config", &self.config)
            .field("torrents", &self.torrents)
            .field("peers", &self.peers)
            .field("seeders", &self.seeders)
            .finish()
    }
}

#[cfg(test)]
impl<const N: usize> Store<N> {
    /// Recounts everything and checks every invariant of the store (test helper).
    pub(crate) fn check_invariants(&self) {
        use super::clean::age;
        use super::torrent::STAMP_MASK;
        let (mut torrents, mut peers, mut seeders) = (0u64, 0u64, 0u64);
        let mut in_slab = 0usize;
        assert_eq!(self.buckets.len(), BUCKETS);
        for (b, v) in self.buckets.iter().enumerate() {
            for w in v.windows(2) {
                assert!(w[0].info_hash < w[1].info_hash, "bucket {b} not sorted");
            }
            for t in v {
                assert_eq!(bucket_of(&t.info_hash), b);
                t.peers.check();
                if t.peers.heap_bytes() > 0 {
                    assert_eq!(t.peers.key(), key_of(&t.info_hash), "block key");
                }
                in_slab += usize::from(t.peers.in_slab());
                let s = t.peers.iter().filter(|(_, m)| m & SEEDER != 0).count() as u32;
                assert_eq!(s, t.seeders, "seeders of {:?}", t.info_hash);
                assert!(
                    !(t.peers.is_empty() && t.downloaded == 0),
                    "peerless torrent with downloaded 0 kept"
                );
                for (_, m) in t.peers.iter() {
                    // Stamps lie in [last_clean - T, last_clean].
                    let st = m & STAMP_MASK;
                    let a = age(t.last_clean.wrapping_add(1), st) - 1;
                    assert!(a <= self.ticks.peer_ticks, "stamp outside the window");
                }
                torrents += 1;
                peers += t.peers.len() as u64;
                seeders += u64::from(t.seeders);
            }
        }
        assert_eq!(
            (torrents, peers, seeders),
            (self.torrents, self.peers, self.seeders),
            "totals differ from a recount"
        );
        assert_eq!(
            self.slab.slots(),
            in_slab,
            "slab slots in use vs swarms in the slab"
        );
    }

    /// The torrent of an info_hash (test helper).
    pub(crate) fn get(&self, info_hash: &InfoHash) -> Option<&Torrent<N>> {
        let v = &self.buckets[bucket_of(info_hash)];
        v.binary_search_by(|t| t.info_hash.cmp(info_hash))
            .ok()
            .map(|i| &v[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swarm::peer::peer_v4;
    use std::collections::{BTreeMap, HashSet};
    use std::net::Ipv4Addr;

    const H1: InfoHash = [0x11; 20];
    const H2: InfoHash = [0x22; 20];

    fn p4(last: u8, port: u16) -> [u8; 6] {
        peer_v4(Ipv4Addr::new(10, 0, 0, last), port)
    }

    fn cfg(peer_timeout: u32, torrent_timeout: u32) -> StoreConfig {
        StoreConfig {
            peer_timeout,
            torrent_timeout,
        }
    }

    fn sc(seeders: u32, leechers: u32, downloaded: u32) -> SwarmCounts {
        SwarmCounts {
            seeders,
            leechers,
            downloaded,
        }
    }

    /// Announce helper: returns the counts and the selected peers.
    fn ann<const N: usize>(
        s: &mut Store<N>,
        h: &InfoHash,
        peer: &[u8; N],
        seeder: bool,
        event: Event,
        numwant: usize,
        now: u32,
    ) -> (SwarmCounts, Vec<u8>) {
        let mut rng = fastrand::Rng::with_seed(1);
        let mut out = vec![];
        let req = AnnounceInput {
            info_hash: h,
            peer,
            seeder,
            event,
            numwant,
        };
        let c = s.announce(&req, now, &mut rng, &mut out);
        s.check_invariants();
        (c, out)
    }

    #[test]
    fn first_announce_creates_and_counts_itself() {
        let mut s = StoreV4::new(StoreConfig::default());
        let (c, out) = ann(&mut s, &H1, &p4(1, 6881), false, Event::Started, 50, 0);
        assert_eq!(c, sc(0, 1, 0));
        assert!(out.is_empty(), "never self");
        assert_eq!((s.torrents(), s.peers(), s.seeders()), (1, 1, 0));
        assert!(s.contains(&H1) && !s.contains(&H2));
        let (c, out) = ann(&mut s, &H1, &p4(2, 6881), true, Event::None, 50, 1);
        assert_eq!(c, sc(1, 1, 0));
        assert_eq!(out, vec![10, 0, 0, 1, 0x1a, 0xe1]);
        let (_, out) = ann(&mut s, &H1, &p4(1, 6881), false, Event::None, 50, 2);
        assert_eq!(out, vec![10, 0, 0, 2, 0x1a, 0xe1]);
    }

    #[test]
    fn duplicates_are_the_same_peer() {
        let mut s = StoreV4::new(StoreConfig::default());
        for now in 0..5 {
            let (c, _) = ann(&mut s, &H1, &p4(1, 6881), false, Event::None, 50, now);
            assert_eq!(c, sc(0, 1, 0));
        }
        // Same IP, other port: another peer.
        let (c, _) = ann(&mut s, &H1, &p4(1, 6882), false, Event::None, 50, 5);
        assert_eq!(c, sc(0, 2, 0));
        assert_eq!(s.peers(), 2);
    }

    #[test]
    fn seeder_leecher_transitions() {
        let mut s = StoreV4::new(StoreConfig::default());
        let p = p4(1, 1);
        assert_eq!(
            ann(&mut s, &H1, &p, false, Event::None, 0, 0).0,
            sc(0, 1, 0)
        );
        assert_eq!(ann(&mut s, &H1, &p, true, Event::None, 0, 0).0, sc(1, 0, 0));
        assert_eq!(s.seeders(), 1);
        assert_eq!(ann(&mut s, &H1, &p, true, Event::None, 0, 0).0, sc(1, 0, 0));
        assert_eq!(
            ann(&mut s, &H1, &p, false, Event::None, 0, 0).0,
            sc(0, 1, 0)
        );
        assert_eq!(s.seeders(), 0);
    }

    #[test]
    fn completed_counts_once_per_finished_download_and_only_for_seeders() {
        let mut s = StoreV4::new(StoreConfig::default());
        let p = p4(1, 1);
        // Completed with left > 0: never counts.
        assert_eq!(
            ann(&mut s, &H1, &p, false, Event::Completed, 0, 0).0,
            sc(0, 1, 0)
        );
        // Leecher -> seeder with completed: counts.
        assert_eq!(
            ann(&mut s, &H1, &p, true, Event::Completed, 0, 1).0,
            sc(1, 0, 1)
        );
        // A seeder repeating completed: no.
        assert_eq!(
            ann(&mut s, &H1, &p, true, Event::Completed, 0, 2).0,
            sc(1, 0, 1)
        );
        // A seeder announcing without completed, then with it: still no.
        ann(&mut s, &H1, &p, true, Event::None, 0, 3);
        assert_eq!(
            ann(&mut s, &H1, &p, true, Event::Completed, 0, 3).0,
            sc(1, 0, 1)
        );
        // Back to leecher and finished again (a new download): counts.
        ann(&mut s, &H1, &p, false, Event::None, 0, 3);
        assert_eq!(
            ann(&mut s, &H1, &p, true, Event::Completed, 0, 4).0,
            sc(1, 0, 2)
        );
        // A new peer that arrives completed counts at once.
        let q = p4(2, 1);
        assert_eq!(
            ann(&mut s, &H1, &q, true, Event::Completed, 0, 5).0,
            sc(2, 0, 3)
        );
        // Leaving and coming back completed counts again.
        assert_eq!(s.stop(&H1, &p, 6), sc(1, 0, 3));
        assert_eq!(
            ann(&mut s, &H1, &p, true, Event::Completed, 0, 7).0,
            sc(2, 0, 4)
        );
        s.check_invariants();
    }

    #[test]
    fn stop_known_and_unknown() {
        let mut s = StoreV4::new(StoreConfig::default());
        assert_eq!(s.stop(&H1, &p4(1, 1), 0), sc(0, 0, 0));
        assert_eq!(s.torrents(), 0, "stop never creates a torrent");
        ann(&mut s, &H1, &p4(1, 1), true, Event::None, 0, 0);
        ann(&mut s, &H1, &p4(2, 1), false, Event::None, 0, 0);
        assert_eq!(s.stop(&H1, &p4(3, 1), 1), sc(1, 1, 0), "unknown peer");
        assert_eq!(s.stop(&H1, &p4(1, 1), 1), sc(0, 1, 0));
        s.check_invariants();
        // Stopped passed to announce is a stop and selects nothing.
        let (c, out) = ann(&mut s, &H1, &p4(2, 1), false, Event::Stopped, 50, 2);
        assert_eq!((c, out.len()), (sc(0, 0, 0), 0));
        assert_eq!(
            (s.torrents(), s.peers()),
            (0, 0),
            "empty with downloaded 0: dropped"
        );
        assert!(!s.contains(&H1));
    }

    #[test]
    fn empty_torrent_with_downloaded_is_kept_then_times_out() {
        // peer 4 s, torrent 100 s: 1-second ticks.
        let mut s = StoreV4::new(cfg(4, 100));
        ann(&mut s, &H1, &p4(1, 1), true, Event::Completed, 0, 0);
        assert_eq!(s.stop(&H1, &p4(1, 1), 5), sc(0, 0, 1));
        assert_eq!((s.torrents(), s.peers()), (1, 0));
        assert_eq!(s.get(&H1).unwrap().peers().capacity(), 0);
        assert_eq!(s.scrape(&H1, 105), Some(sc(0, 0, 1)));
        s.check_invariants();
        assert_eq!(s.scrape(&H1, 106), None);
        assert_eq!(s.torrents(), 0);
        // The same by the sweep, after the last peer expired.
        ann(&mut s, &H2, &p4(1, 1), true, Event::Completed, 0, 200);
        assert_eq!(s.clean_step(204, BUCKETS).peers_removed, 0);
        let st = s.clean_step(205, BUCKETS);
        assert_eq!(
            (st.peers_removed, st.seeders_removed, st.torrents_removed),
            (1, 1, 0)
        );
        assert_eq!(s.clean_step(305, BUCKETS).torrents_removed, 0);
        assert_eq!(s.clean_step(306, BUCKETS).torrents_removed, 1);
        assert_eq!(s.torrents(), 0);
        s.check_invariants();
    }

    #[test]
    fn peerless_torrent_revived_keeps_downloaded_until_timeout() {
        let mut s = StoreV4::new(cfg(4, 100));
        ann(&mut s, &H1, &p4(1, 1), true, Event::Completed, 0, 0);
        s.stop(&H1, &p4(1, 1), 0);
        assert_eq!(
            ann(&mut s, &H1, &p4(2, 1), false, Event::None, 0, 50).0,
            sc(0, 1, 1)
        );
        s.stop(&H1, &p4(2, 1), 50);
        // Peerless since 50; at 151 it is past the timeout: the count is forgotten.
        assert_eq!(
            ann(&mut s, &H1, &p4(2, 1), false, Event::None, 0, 151).0,
            sc(0, 1, 0)
        );
        assert_eq!(s.torrents(), 1);
    }

    #[test]
    fn expiry_boundaries() {
        for (timeout, tick_secs) in [(2u32, 1u32), (4, 1), (10, 3), (2700, 675)] {
            let mut s = StoreV4::new(cfg(timeout, 86400));
            assert_eq!(s.ticks().tick_secs, tick_secs);
            let t = s.ticks().peer_ticks;
            // Announce at the first second of tick 1000.
            let t0 = 1000 * tick_secs;
            ann(&mut s, &H1, &p4(1, 1), false, Event::None, 0, t0);
            ann(&mut s, &H1, &p4(2, 1), false, Event::None, 0, t0);
            // Keep peer 2 alive every tick; peer 1 lives through tick 1000 + T.
            let last_alive = (1000 + t + 1) * tick_secs - 1;
            for now in (t0..=last_alive).step_by(tick_secs as usize) {
                ann(&mut s, &H1, &p4(2, 1), false, Event::None, 0, now);
            }
            assert_eq!(
                s.scrape(&H1, last_alive),
                Some(sc(0, 2, 0)),
                "timeout {timeout}"
            );
            assert!(last_alive - t0 >= timeout);
            assert_eq!(
                s.scrape(&H1, last_alive + 1),
                Some(sc(0, 1, 0)),
                "timeout {timeout}"
            );
            s.check_invariants();
            // A long gap with no clean at all: everything expired, nothing misread mod 8.
            for gap_ticks in [t + 1, 7, 8, 9, 8 + t, 63, 64, 65, 1000] {
                let mut s = StoreV4::new(cfg(timeout, 86400));
                ann(&mut s, &H1, &p4(1, 1), true, Event::None, 0, t0);
                let later = t0 + gap_ticks * tick_secs;
                assert_eq!(s.scrape(&H1, later), None, "gap {gap_ticks} ticks");
                assert_eq!((s.peers(), s.seeders(), s.torrents()), (0, 0, 0));
            }
            // A gap of exactly T ticks keeps the peer.
            let mut s = StoreV4::new(cfg(timeout, 86400));
            ann(&mut s, &H1, &p4(1, 1), true, Event::None, 0, t0);
            assert_eq!(s.scrape(&H1, t0 + t * tick_secs), Some(sc(1, 0, 0)));
        }
    }

    #[test]
    fn clean_step_visits_all_buckets_round_robin() {
        let mut s = StoreV4::new(cfg(10, 100));
        // One torrent in each of 64 buckets spread over the range.
        for k in 0..64u32 {
            let b = (k * 64 + 3) as usize;
            let mut h = [7u8; 20];
            h[0] = (b >> 4) as u8;
            h[1] = ((b & 15) << 4) as u8;
            assert_eq!(bucket_of(&h), b);
            ann(&mut s, &h, &p4(1, 1), false, Event::None, 0, 0);
        }
        assert_eq!(s.torrents(), 64);
        let mut removed = 0;
        let mut visited = 0;
        for _ in 0..4 {
            let st = s.clean_step(100, 1024);
            assert_eq!(st.buckets, 1024);
            visited += st.buckets;
            removed += st.torrents_removed;
            assert_eq!(st.peers_removed, st.torrents_removed);
            s.check_invariants();
        }
        assert_eq!((visited, removed), (4096, 64));
        assert_eq!(s.torrents(), 0);
        assert_eq!(s.clean_step(100, 100_000).buckets, BUCKETS);
        assert_eq!(s.clean_step(100, 0).buckets, 0);
    }

    #[test]
    fn clean_step_cursor_moves_by_the_step() {
        let mut s = StoreV4::new(cfg(10, 100));
        let mut h = [0u8; 20];
        h[0] = 0x01; // bucket 16
        ann(&mut s, &h, &p4(1, 1), false, Event::None, 0, 0);
        assert_eq!(s.clean_step(50, 16).torrents_removed, 0, "buckets 0..16");
        assert_eq!(s.clean_step(50, 1).torrents_removed, 1, "bucket 16");
    }

    #[test]
    fn inline_heap_through_the_store() {
        let mut s = StoreV4::new(StoreConfig::default());
        ann(&mut s, &H1, &p4(1, 1), false, Event::None, 0, 0);
        assert!(s.get(&H1).unwrap().peers().is_inline());
        ann(&mut s, &H1, &p4(2, 1), false, Event::None, 0, 0);
        assert!(s.get(&H1).unwrap().peers().in_slab());
        assert_eq!(s.get(&H1).unwrap().peers().capacity(), 2);
        s.stop(&H1, &p4(1, 1), 0);
        assert!(s.get(&H1).unwrap().peers().is_inline());
        s.stop(&H1, &p4(2, 1), 0);
        assert!(s.get(&H1).is_none());
        s.check_invariants();
    }

    #[test]
    fn ipv6_store() {
        let mut s = StoreV6::new(StoreConfig::default());
        let mut a = [0u8; 18];
        a[0] = 0x20;
        a[17] = 1;
        let mut b = a;
        b[15] = 9;
        let (c, out) = ann(&mut s, &H1, &a, false, Event::None, 50, 0);
        assert_eq!((c, out.len()), (sc(0, 1, 0), 0));
        assert!(!s.get(&H1).unwrap().peers().is_inline());
        assert_eq!(s.get(&H1).unwrap().peers().capacity(), 1);
        let (c, out) = ann(&mut s, &H1, &b, true, Event::Completed, 50, 0);
        assert_eq!(c, sc(1, 1, 1));
        assert_eq!(out, a.to_vec());
        assert_eq!(s.stop(&H1, &a, 1), sc(1, 0, 1));
        assert_eq!(s.get(&H1).unwrap().peers().capacity(), 1);
        s.check_invariants();
    }

    #[test]
    fn announce_selection_rules() {
        let mut s = StoreV4::new(StoreConfig::default());
        for i in 0..100u8 {
            ann(&mut s, &H1, &p4(i, 1), i % 4 == 0, Event::None, 0, 0);
        }
        // A seeder gets only leechers (75 of them), never itself.
        let (c, out) = ann(&mut s, &H1, &p4(0, 1), true, Event::None, 200, 1);
        assert_eq!(c, sc(25, 75, 0));
        assert_eq!(out.len(), 75 * 6);
        assert!(out.chunks_exact(6).all(|p| p[3] % 4 != 0));
        // A leecher gets everyone else, leechers first.
        let (_, out) = ann(&mut s, &H1, &p4(1, 1), false, Event::None, 200, 1);
        assert_eq!(out.len(), 99 * 6);
        let kinds: Vec<bool> = out.chunks_exact(6).map(|p| p[3] % 4 == 0).collect();
        assert_eq!(kinds.iter().filter(|&&k| !k).count(), 74);
        assert!(kinds.windows(2).all(|w| !w[0] || w[1]));
        // numwant smaller than the swarm: exactly numwant, distinct.
        let (_, out) = ann(&mut s, &H1, &p4(1, 1), false, Event::None, 30, 1);
        let set: HashSet<&[u8]> = out.chunks_exact(6).collect();
        assert_eq!((out.len(), set.len()), (30 * 6, 30));
        assert!(!set.contains(&p4(1, 1)[..]));
        let (_, out) = ann(&mut s, &H1, &p4(1, 1), false, Event::None, 0, 1);
        assert!(out.is_empty());
    }

    #[test]
    fn for_each_from_order_and_resumption() {
        let mut s = StoreV4::new(StoreConfig::default());
        let mut rng = fastrand::Rng::with_seed(11);
        let mut want = vec![];
        for i in 0..300u32 {
            let mut h = [0u8; 20];
            rng.fill(&mut h);
            if i % 3 == 0 {
                h[0] = 0x42; // crowd one bucket range
                h[1] = 0x40;
            }
            ann(&mut s, &h, &p4(1, 1), i % 2 == 0, Event::Completed, 0, 0);
            want.push(h);
        }
        want.sort();
        want.dedup();
        for max in [1usize, 7, 100, 299, 300, 1000] {
            let mut got = vec![];
            let mut from = None;
            let mut calls = 0;
            loop {
                let mut n = 0;
                let next = s.for_each_from(from.as_ref(), max, |h, c| {
                    got.push(*h);
                    assert_eq!(c.leechers + c.seeders, 1);
                    n += 1;
                });
                calls += 1;
                assert!(n <= max);
                match next {
                    Some(h) => {
                        assert_eq!(n, max);
                        assert_eq!(Some(&h), got.last());
                        from = Some(h);
                    }
                    None => break,
                }
            }
            assert_eq!(got, want, "max {max}");
            assert_eq!(calls, want.len().div_ceil(max).max(1));
        }
        // Resuming from an info_hash that is not stored continues after it.
        let mut first = None;
        s.for_each_from(
            Some(&[
                0x42, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ]),
            1,
            |h, _| first = Some(*h),
        );
        let expect = want.iter().find(|h| {
            h[..2] >= [0x42, 0x40][..]
                && **h
                    > [
                        0x42, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                    ]
        });
        assert_eq!(first.as_ref(), expect);
        let empty = StoreV4::new(StoreConfig::default());
        assert_eq!(empty.for_each_from(None, 10, |_, _| panic!()), None);
    }

    #[test]
    fn retain_fixes_totals() {
        let mut s = StoreV4::new(StoreConfig::default());
        for i in 0..50u8 {
            let h = [i; 20];
            for j in 0..(i % 5) + 1 {
                ann(&mut s, &h, &p4(j, 1), j % 2 == 0, Event::None, 0, 0);
            }
        }
        s.retain(|h| h[0] % 2 == 0);
        s.check_invariants();
        assert_eq!(s.torrents(), 25);
        assert!(s.contains(&[4; 20]) && !s.contains(&[5; 20]));
        s.retain(|_| false);
        assert_eq!((s.torrents(), s.peers(), s.seeders()), (0, 0, 0));
        s.check_invariants();
    }

    #[test]
    fn set_downloaded_rules() {
        let mut s = StoreV4::new(cfg(4, 100));
        s.set_downloaded(&H1, 0, 0);
        assert_eq!(s.torrents(), 0);
        s.set_downloaded(&H1, 42, 0);
        assert_eq!(s.scrape(&H1, 1), Some(sc(0, 0, 42)));
        assert_eq!(
            ann(&mut s, &H1, &p4(1, 1), true, Event::Completed, 0, 2).0,
            sc(1, 0, 43)
        );
        s.set_downloaded(&H1, 0, 3);
        assert_eq!(s.scrape(&H1, 3), Some(sc(1, 0, 0)), "kept: it has a peer");
        s.stop(&H1, &p4(1, 1), 4);
        assert_eq!(s.torrents(), 0);
        s.set_downloaded(&H2, 5, 0);
        s.set_downloaded(&H2, 0, 1);
        assert_eq!(s.torrents(), 0);
        s.set_downloaded(&H2, 5, 0);
        assert_eq!(s.scrape(&H2, 100), Some(sc(0, 0, 5)));
        assert_eq!(s.scrape(&H2, 101), None);
        s.check_invariants();
    }

    #[test]
    fn slab_memory_follows_the_peers_in_any_order() {
        let mut s = StoreV4::new(StoreConfig::default());
        let mut rng = fastrand::Rng::with_seed(5);
        // 300 torrents x 30 peers announced in random order, with prefix-sharing info_hashes
        // (the slab's owner lookup must tell them apart by slot).
        let mut ops: Vec<(InfoHash, [u8; 6])> = vec![];
        for t in 0..300u32 {
            let mut h = [0u8; 20];
            h[..4].copy_from_slice(&[0x42, 0x42, 0, (t % 3) as u8]);
            h[16..].copy_from_slice(&t.to_be_bytes());
            for p in 0..30u8 {
                ops.push((h, p4(p, t as u16)));
            }
        }
        rng.shuffle(&mut ops);
        for (h, p) in &ops {
            ann(&mut s, h, p, rng.bool(), Event::None, 0, 0);
        }
        s.check_invariants();
        assert_eq!(s.peers(), 9000);
        // Dense classes: exactly the chunks 300 blocks of 30 need (16 KiB chunks).
        let slot = super::super::torrent::block_bytes(6, 30);
        let per_chunk = super::super::slab::SMALL_CHUNK / slot;
        assert_eq!(
            s.slab.chunk_bytes(),
            300usize.div_ceil(per_chunk) * super::super::slab::SMALL_CHUNK
        );
        // Everyone leaves, in another random order: all slab memory is given back.
        rng.shuffle(&mut ops);
        for (k, (h, p)) in ops.iter().enumerate() {
            s.stop(h, p, 1);
            if k % 1000 == 0 {
                s.check_invariants();
            }
        }
        s.check_invariants();
        assert_eq!((s.torrents(), s.peers()), (0, 0));
        assert_eq!(s.slab.chunk_bytes(), 0);
    }

    #[test]
    fn time_going_backwards_does_not_break_anything() {
        let mut s = StoreV4::new(cfg(4, 100));
        ann(&mut s, &H1, &p4(1, 1), false, Event::None, 0, 500);
        ann(&mut s, &H1, &p4(2, 1), true, Event::None, 0, 400);
        assert_eq!(s.scrape(&H1, 300), Some(sc(1, 1, 0)));
        s.clean_step(0, BUCKETS);
        assert_eq!(s.peers(), 2);
        s.check_invariants();
        assert_eq!(s.scrape(&H1, 504), Some(sc(1, 1, 0)));
        assert_eq!(s.scrape(&H1, 505), None);
    }

    // ---- randomized test against a simple model ----

    #[derive(Clone, Debug)]
    struct MPeer {
        seeder: bool,
        tick: u32,
    }

    #[derive(Clone, Debug, Default)]
    struct MTorrent<const N: usize> {
        peers: BTreeMap<[u8; N], MPeer>,
        downloaded: u32,
        empty_since: u32,
    }

    impl<const N: usize> MTorrent<N> {
        fn counts(&self) -> SwarmCounts {
            let s = self.peers.values().filter(|p| p.seeder).count() as u32;
            sc(s, self.peers.len() as u32 - s, self.downloaded)
        }
    }

    /// The store's semantics with real ages, no packing, no mod 8.
    struct Model<const N: usize> {
        t: BTreeMap<InfoHash, MTorrent<N>>,
        tick_secs: u32,
        peer_ticks: u32,
        torrent_ticks: u32,
        cursor: usize,
    }

    impl<const N: usize> Model<N> {
        fn new(c: StoreConfig) -> Self {
            let tick_secs = c.peer_timeout.div_ceil(4).max(1);
            Model {
                t: BTreeMap::new(),
                tick_secs,
                peer_ticks: c.peer_timeout.div_ceil(tick_secs),
                torrent_ticks: c.torrent_timeout.div_ceil(tick_secs),
                cursor: 0,
            }
        }

        /// Cleans one torrent; true = drop it.
        fn clean_one(t: &mut MTorrent<N>, now: u32, pt: u32, tt: u32) -> bool {
            if t.peers.is_empty() {
                return t.downloaded == 0 || now - t.empty_since > tt;
            }
            t.peers.retain(|_, p| now - p.tick <= pt);
            if t.peers.is_empty() {
                t.empty_since = now;
                return t.downloaded == 0;
            }
            false
        }

        fn clean(&mut self, h: &InfoHash, now: u32) {
            let (pt, tt) = (self.peer_ticks, self.torrent_ticks);
            if let Some(t) = self.t.get_mut(h) {
                if Self::clean_one(t, now, pt, tt) {
                    self.t.remove(h);
                }
            }
        }

        fn announce(
            &mut self,
            h: &InfoHash,
            peer: &[u8; N],
            seeder: bool,
            ev: Event,
            now: u32,
        ) -> SwarmCounts {
            if ev == Event::Stopped {
                return self.stop(h, peer, now);
            }
            let now = now / self.tick_secs;
            self.clean(h, now);
            let t = self.t.entry(*h).or_insert_with(|| MTorrent {
                empty_since: now,
                ..Default::default()
            });
            let completed = ev == Event::Completed && seeder;
            match t.peers.get_mut(peer) {
                Some(p) => {
                    if completed && !p.seeder {
                        t.downloaded = t.downloaded.saturating_add(1);
                    }
                    p.seeder = seeder;
                    p.tick = now;
                }
                None => {
                    t.peers.insert(*peer, MPeer { seeder, tick: now });
                    t.downloaded = t.downloaded.saturating_add(u32::from(completed));
                }
            }
            t.counts()
        }

        fn stop(&mut self, h: &InfoHash, peer: &[u8; N], now: u32) -> SwarmCounts {
            let now = now / self.tick_secs;
            self.clean(h, now);
            let Some(t) = self.t.get_mut(h) else {
                return SwarmCounts::default();
            };
            if t.peers.remove(peer).is_some() && t.peers.is_empty() {
                if t.downloaded == 0 {
                    self.t.remove(h);
                    return SwarmCounts::default();
                }
                t.empty_since = now;
            }
            t.counts()
        }

        fn scrape(&mut self, h: &InfoHash, now: u32) -> Option<SwarmCounts> {
            self.clean(h, now / self.tick_secs);
            self.t.get(h).map(|t| t.counts())
        }

        fn clean_step(&mut self, now: u32, k: usize) {
            let now = now / self.tick_secs;
            let k = k.min(BUCKETS);
            let (pt, tt, cur) = (self.peer_ticks, self.torrent_ticks, self.cursor);
            self.t.retain(|h, t| {
                let off = (bucket_of(h) + BUCKETS - cur) % BUCKETS;
                !(off < k && Self::clean_one(t, now, pt, tt))
            });
            self.cursor = (cur + k) % BUCKETS;
        }

        fn set_downloaded(&mut self, h: &InfoHash, d: u32, now: u32) {
            let now = now / self.tick_secs;
            self.clean(h, now);
            match self.t.get_mut(h) {
                Some(t) => {
                    t.downloaded = d;
                    if d == 0 && t.peers.is_empty() {
                        self.t.remove(h);
                    }
                }
                None if d > 0 => {
                    self.t.insert(
                        *h,
                        MTorrent {
                            peers: BTreeMap::new(),
                            downloaded: d,
                            empty_since: now,
                        },
                    );
                }
                None => {}
            }
        }

        fn totals(&self) -> (u64, u64, u64) {
            let peers = self.t.values().map(|t| t.peers.len() as u64).sum();
            let seeders = self.t.values().map(|t| t.counts().seeders as u64).sum();
            (self.t.len() as u64, peers, seeders)
        }
    }

    fn compare_all<const N: usize>(s: &Store<N>, m: &Model<N>) {
        let mut got = vec![];
        assert_eq!(
            s.for_each_from(None, usize::MAX, |h, c| got.push((*h, c))),
            None
        );
        let want: Vec<_> = m.t.iter().map(|(h, t)| (*h, t.counts())).collect();
        assert_eq!(got, want);
        for (h, mt) in &m.t {
            let t = s.get(h).unwrap();
            let peers: Vec<_> = t.peers().iter().map(|(a, meta)| (*a, meta)).collect();
            let want: Vec<_> = mt
                .peers
                .iter()
                .map(|(a, p)| {
                    let meta = (p.tick & 7) as u8 | if p.seeder { SEEDER } else { 0 };
                    (*a, meta)
                })
                .collect();
            assert_eq!(peers, want);
        }
    }

    fn run_model<const N: usize>(
        seed: u64,
        c: StoreConfig,
        steps: usize,
        mk: impl Fn(u8) -> [u8; N],
    ) {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut s = Store::<N>::new(c);
        let mut m = Model::<N>::new(c);
        let tick = m.tick_secs;
        let hashes: Vec<InfoHash> = (0..24)
            .map(|i| {
                let mut h = [0u8; 20];
                h[0] = [0x00, 0x00, 0x7f, 0xff][i % 4];
                h[1] = [0x00, 0x0f, 0x10, 0xff][(i / 4) % 4];
                h[19] = i as u8;
                h
            })
            .collect();
        let mut now = 0u32;
        for step in 0..steps {
            let h = hashes[rng.usize(..hashes.len())];
            let peer = mk(rng.u8(..24));
            match rng.u8(..100) {
                0..=59 => {
                    let seeder = rng.bool();
                    let ev = [
                        Event::None,
                        Event::Started,
                        Event::Completed,
                        Event::Completed,
                        Event::Stopped,
                    ][rng.usize(..5)];
                    let numwant = [0usize, 1, 3, 10, 50, 300][rng.usize(..6)];
                    let req = AnnounceInput {
                        info_hash: &h,
                        peer: &peer,
                        seeder,
                        event: ev,
                        numwant,
                    };
                    let mut out = vec![];
                    let got = s.announce(&req, now, &mut rng, &mut out);
                    let want = m.announce(&h, &peer, seeder, ev, now);
                    assert_eq!(got, want, "step {step} announce");
                    // The selection: from the swarm, never self, distinct, right count/kind/order.
                    let k = out.len() / N;
                    assert_eq!(out.len(), k * N);
                    let sel: Vec<[u8; N]> =
                        out.chunks_exact(N).map(|c| c.try_into().unwrap()).collect();
                    if ev == Event::Stopped {
                        assert_eq!(k, 0);
                    } else {
                        let mt = &m.t[&h];
                        let cands = mt
                            .peers
                            .iter()
                            .filter(|(a, p)| **a != peer && !(seeder && p.seeder))
                            .count();
                        assert_eq!(k, numwant.min(cands));
                        assert_eq!(sel.iter().collect::<HashSet<_>>().len(), k);
                        let kinds: Vec<bool> = sel.iter().map(|a| mt.peers[a].seeder).collect();
                        assert!(!sel.contains(&peer));
                        assert!(!seeder || kinds.iter().all(|s| !s));
                        assert!(kinds.windows(2).all(|w| !w[0] || w[1]));
                    }
                }
                60..=72 => assert_eq!(
                    s.stop(&h, &peer, now),
                    m.stop(&h, &peer, now),
                    "step {step} stop"
                ),
                73..=82 => assert_eq!(s.scrape(&h, now), m.scrape(&h, now), "step {step} scrape"),
                83..=92 => {
                    let k = [1usize, 17, 300, 1024, 4096, 5000][rng.usize(..6)];
                    s.clean_step(now, k);
                    m.clean_step(now, k);
                }
                93..=96 => {
                    let d = [0u32, 0, 1, 7, u32::MAX][rng.usize(..5)];
                    s.set_downloaded(&h, d, now);
                    m.set_downloaded(&h, d, now);
                }
                97 => {
                    let bit = rng.u8(..8);
                    s.retain(|h| h[19] >> bit & 1 == 0);
                    m.t.retain(|h, _| h[19] >> bit & 1 == 0);
                }
                _ => {
                    assert_eq!(s.contains(&h), m.t.contains_key(&h));
                }
            }
            // Time: mostly small steps, sometimes around the timeouts, rarely very long gaps.
            now += match rng.u8(..100) {
                0..=59 => 0,
                60..=89 => rng.u32(..3) * tick,
                90..=97 => rng.u32(..40) * tick + rng.u32(..tick),
                _ => rng.u32(..2000) * tick,
            };
            s.check_invariants();
            assert_eq!(
                (s.torrents(), s.peers(), s.seeders()),
                m.totals(),
                "step {step} totals"
            );
            if step % 64 == 0 {
                compare_all(&s, &m);
            }
        }
        compare_all(&s, &m);
    }

    fn v4(i: u8) -> [u8; 6] {
        [10, 0, i / 4, i, 0x1a, i % 3]
    }

    fn v6(i: u8) -> [u8; 18] {
        let mut a = [0u8; 18];
        a[0] = 0x20;
        a[1] = i % 5;
        a[15] = i;
        a[17] = i % 2;
        a
    }

    #[test]
    fn model_ipv4() {
        for seed in 0..12 {
            for c in [cfg(2, 30), cfg(10, 60), cfg(2700, 86400), cfg(0, 0)] {
                run_model::<6>(seed, c, 3000, v4);
            }
        }
    }

    #[test]
    fn model_ipv6() {
        for seed in 100..106 {
            for c in [cfg(2, 30), cfg(10, 60), cfg(2700, 86400)] {
                run_model::<18>(seed, c, 3000, v6);
            }
        }
    }

    /// Many more cases; run with `cargo test --release --lib model_many -- --ignored`.
    #[test]
    #[ignore]
    fn model_many() {
        for seed in 1000..1300 {
            for c in [
                cfg(1, 5),
                cfg(2, 30),
                cfg(31, 40),
                cfg(64, 200),
                cfg(2700, 86400),
            ] {
                run_model::<6>(seed, c, 4000, v4);
            }
            run_model::<18>(seed, cfg(10, 60), 2000, v6);
        }
    }

    // ---- memory: heap bytes per peer, with a counting allocator ----

    mod counting {
        use std::alloc::{GlobalAlloc, Layout, System};
        use std::cell::Cell;

        thread_local! {
            /// Bytes requested by this thread (allocations minus frees).
            pub static REQUESTED: Cell<i64> = const { Cell::new(0) };
            /// The same in glibc chunks (request + 8 rounded up to 16, min 32).
            pub static CHUNKS: Cell<i64> = const { Cell::new(0) };
        }

        /// The glibc chunk of a request: `size + 8` rounded up to 16, at least 32.
        fn malloc_chunk(size: usize) -> usize {
            ((size + 8 + 15) & !15).max(32)
        }

        fn note(size: usize, sign: i64) {
            let chunk = malloc_chunk(size) as i64;
            let _ = REQUESTED.try_with(|c| c.set(c.get() + sign * size as i64));
            let _ = CHUNKS.try_with(|c| c.set(c.get() + sign * chunk));
        }

        /// Counts per thread, so tests running in parallel do not disturb each other.
        pub struct Counting;

        // SAFETY: forwards every call to System unchanged; the counters touch no heap memory.
        unsafe impl GlobalAlloc for Counting {
            unsafe fn alloc(&self, l: Layout) -> *mut u8 {
                // SAFETY: same contract as the caller's.
                let p = unsafe { System.alloc(l) };
                if !p.is_null() {
                    note(l.size(), 1);
                }
                p
            }
            unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
                // SAFETY: same contract as the caller's.
                let p = unsafe { System.alloc_zeroed(l) };
                if !p.is_null() {
                    note(l.size(), 1);
                }
                p
            }
            unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
                note(l.size(), -1);
                // SAFETY: same contract as the caller's.
                unsafe { System.dealloc(p, l) }
            }
            unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
                // SAFETY: same contract as the caller's.
                let q = unsafe { System.realloc(p, l, new) };
                if !q.is_null() {
                    note(l.size(), -1);
                    note(new, 1);
                }
                q
            }
        }

        #[global_allocator]
        static A: Counting = Counting;

        pub fn now() -> (i64, i64) {
            (REQUESTED.with(|c| c.get()), CHUNKS.with(|c| c.get()))
        }
    }

    /// Fills a fresh store with `torrents` x `peers` IPv4 peers (random info_hashes and
    /// addresses, peers announcing in rounds) and returns heap bytes per peer: (requested,
    /// glibc chunks, requested including the bucket array).
    fn measure(torrents: usize, peers: usize) -> (f64, f64, f64) {
        let mut rng = fastrand::Rng::with_seed(77);
        let hashes: Vec<InfoHash> = (0..torrents)
            .map(|_| {
                let mut h = [0u8; 20];
                rng.fill(&mut h);
                h
            })
            .collect();
        let mut out = Vec::with_capacity(64);
        let before_new = counting::now();
        let mut s = StoreV4::new(StoreConfig::default());
        let (r0, c0) = counting::now();
        for _ in 0..peers {
            for h in &hashes {
                let mut a = [0u8; 6];
                rng.fill(&mut a);
                let req = AnnounceInput {
                    info_hash: h,
                    peer: &a,
                    seeder: false,
                    event: Event::None,
                    numwant: 0,
                };
                s.announce(&req, 0, &mut rng, &mut out);
            }
        }
        let (r1, c1) = counting::now();
        let n = (torrents * peers) as f64;
        // Exact but for the slab's free-slot sets (B-tree nodes, estimated).
        let err = s.heap_bytes() as i64 - (r1 - before_new.0);
        assert!(
            err.abs() <= (r1 - before_new.0) / 100,
            "heap_bytes off by {err}"
        );
        drop(s);
        (
            (r1 - r0) as f64 / n,
            (c1 - c0) as f64 / n,
            (r1 - before_new.0) as f64 / n,
        )
    }

    /// Run with `cargo test --lib heap_bytes_per_peer -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn heap_bytes_per_peer() {
        for (t, p, target) in [(2_000, 100, 8.0), (20_000, 10, 14.0), (200_000, 1, 60.0)] {
            let (req, chunks, with_array) = measure(t, p);
            println!(
                "{t} torrents x {p} peers: {req:.2} B/peer requested, {chunks:.2} B/peer in glibc chunks \
                 ({with_array:.2} with the bucket array); target {target}"
            );
            assert!(chunks <= target, "{chunks} > {target}");
        }
    }
}
