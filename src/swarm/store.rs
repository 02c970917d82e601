//! The store: info_hash -> swarm, for one address family.
//!
//! `Store<6>` holds IPv4 peers, `Store<18>` IPv6 peers (a dual-stack tracker owns one of each;
//! a peer is stored in the store of the family it announced from). The store is a fixed array
//! of [`BUCKETS`] buckets, chosen by the top 12 bits of the info_hash, each holding its
//! [`Torrent`]s sorted by info_hash ([`super::bucket`]: one vector, or sorted chunks of at most
//! [`CHUNK_TORRENTS`] when a bucket is big), so lookup is a binary search and walking the
//! buckets in order visits every torrent in info_hash order (the full scrape needs no index).
//!
//! Everything is in values the caller owns: no I/O, no clock (time is `now: u32`, seconds since
//! the process started, monotonic), no global state, no randomness but the `fastrand::Rng`
//! passed in. Each kind of change has one function ([`Store::announce`], [`Store::stop`],
//! [`Store::clean_step`], [`Store::retain`], [`Store::set_downloaded`]) so live sync can hook
//! them later. Totals (torrents, peers, seeders) are kept up to date incrementally.
//!
//! Memory: a torrent costs 48 bytes in its bucket plus its record block (6.5 bytes per IPv4
//! peer; none for one IPv4 peer), which lives in the store's slab up to 4 KiB; see
//! [`super::torrent`] and [`super::slab`]. Buckets (and chunks) grow by `max(1, len / 64)`
//! entries, not by doubling: all buckets grow together, and every reallocation leaves a hole of
//! a size the other buckets have outgrown, so small steps waste the least (one torrent per peer,
//! measured: 58.8 / 63.0 bytes per peer at 200,000 / 1,000,000 torrents growing by `len / 8`,
//! 53.5 / 52.3 by `len / 64`). The copy that a step costs is no more than the memmove of
//! inserting into the bucket. A bucket shrinks (to `len + len / 8`) when it falls under half
//! full after removals. A torrent leaving the store is cleared first, so its slab slot is given
//! back.
//!
//! # Cost under chosen keys
//!
//! Info_hashes and peer addresses are chosen by clients, so the layout must not let one client
//! make every change expensive. Each change costs at most one chunk's memmove, whatever the
//! keys: a bucket of more than [`CHUNK_TORRENTS`] torrents (24 KiB) is split into sorted
//! chunks ([`super::bucket`]), and a swarm of more than `PeerVec::CHUNK_MAX` peers (16 KiB of
//! records) too ([`super::torrent`]). A block the slab moves is found again by its 4-byte key
//! (the info_hash prefix) in one binary search, because of the PREFIX RULE: a torrent whose
//! 4-byte prefix another torrent of the store shares never takes a slab slot (its swarm gets a
//! block of its own from the allocator, a few bytes more per peer). The store enforces it when
//! it creates a torrent: if a neighbour in the bucket has the same prefix, both are marked
//! (sticky until they are dropped) and the neighbour's block leaves the slab. So the owner of a
//! moved block is the only torrent with that key, and `apply_move` checks it (in release
//! builds too) instead of scanning every torrent that shares the prefix (300,000 of them cost a
//! millisecond per move). Random info_hashes share 4 bytes rarely (about 3,000 pairs among
//! 5,000,000 torrents), so the slab's memory figures stay as they were.
//!
//! `make bench-adversarial` (`examples/bench_adversarial.rs`) measures both shapes of the issue
//! (#13) next to a random workload; BENCHMARKS.md has the figures.

use super::bucket::{Bucket, Pos};
use super::clean::{self, CleanStats, Ticks, clean_torrent, must_drop};
use super::select::select_peers;
use super::slab::{KEY, Move, Slab};
use super::torrent::{PeerVec, SEEDER, Torrent};
use crate::types::{Event, InfoHash};

pub use super::bucket::CHUNK_TORRENTS;

/// Number of buckets: the top 12 bits of the info_hash pick one.
pub const BUCKETS: usize = 4096;

/// The bucket of an info_hash: its top 12 bits (`h[0] << 4 | h[1] >> 4`), in `0..BUCKETS`.
pub fn bucket_of(info_hash: &InfoHash) -> usize {
    bucket_of_key(&key_of(info_hash))
}

/// The bucket of a block key (the first [`KEY`] bytes of an info_hash).
fn bucket_of_key(key: &[u8; KEY]) -> usize {
    ((key[0] as usize) << 4) | ((key[1] as usize) >> 4)
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
    /// Finished downloads counted (`downloaded`): see [`Store::announce`] for when one counts.
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

/// What a swarm holds of one source ([`Store::source_peers`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourcePeers {
    /// The store has a torrent for the info_hash.
    pub torrent: bool,
    /// Its swarm holds the peer itself (address and port): an announce refreshes it.
    pub peer: bool,
    /// Peers of the swarm from the same source (the address prefix asked for); 0 (not
    /// counted) when `peer` is true.
    pub same_source: usize,
}

/// The RAM store of one address family; `N` is the compact peer length (6 or 18 bytes).
pub struct Store<const N: usize> {
    buckets: Box<[Bucket<N>]>,
    /// `buckets.len() - 1`: a store holds a power-of-two number of buckets, the bucket of an
    /// info_hash is `bucket_of(info_hash) & mask` (see [`Store::with_buckets`]).
    mask: usize,
    /// Storage of the record blocks of swarms up to 4 KiB.
    slab: Slab<N>,
    config: StoreConfig,
    ticks: Ticks,
    /// Next bucket the background sweep visits.
    cursor: usize,
    torrents: u64,
    peers: u64,
    seeders: u64,
    /// Downloads counted since the store was made (see [`Store::completions`]).
    completions: u64,
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

/// Counts one completion in `t`: `downloaded` rises by one (it stays at `u32::MAX` once there),
/// and a rise is added to the store's `completions`.
fn count_completion<const N: usize>(t: &mut Torrent<N>, completions: &mut u64) {
    if let Some(d) = t.downloaded.checked_add(1) {
        t.downloaded = d;
        *completions += 1;
    }
}

/// The key of a torrent's record block (see [`super::slab`]): the first bytes of its
/// info_hash, which also give its bucket.
fn key_of(info_hash: &InfoHash) -> [u8; KEY] {
    let mut k = [0u8; KEY];
    k.copy_from_slice(&info_hash[..KEY]);
    k
}

/// Applies a move of the slab (nothing when nothing moved): the swarm whose block was moved is
/// found by its key (bucket, then one binary search: by the prefix rule of the module docs, the
/// only torrent with that 4-byte prefix) and pointed at its new slot.
///
/// Panics, in release builds too, when that torrent is not the owner: a broken prefix rule
/// would leave a swarm pointing at a freed slot, and stopping is the only safe answer.
#[inline]
fn apply_move<const N: usize>(buckets: &mut [Bucket<N>], slab: &mut Slab<N>, m: Move) {
    if !m.is_none() {
        find_and_move(buckets, slab, m);
    }
}

/// [`apply_move`] when a block moved.
#[inline(never)]
fn find_and_move<const N: usize>(buckets: &mut [Bucket<N>], slab: &mut Slab<N>, m: Move) {
    let Some(key) = m.key() else {
        return;
    };
    // The smallest info_hash with this prefix: the owner is the first torrent at or after it.
    let mut lowest = [0u8; 20];
    lowest[..KEY].copy_from_slice(&key);
    // A shard's store holds a power-of-two share of the buckets: the low bits of the bucket.
    let b = bucket_of_key(&key) & (buckets.len() - 1);
    let owner = buckets.get_mut(b).and_then(|v| {
        let pos = v.lower_bound(&lowest, false)?;
        v.get_mut(pos).filter(|t| t.info_hash[..KEY] == key[..])
    });
    let Some(t) = owner else {
        panic!("a moved slab block has no torrent with its key: {m:?}");
    };
    if let Err(m) = t.peers.adopt(slab, m) {
        panic!("the only torrent with a moved block's key does not own it: {m:?}");
    }
}

impl<const N: usize> Store<N> {
    /// An empty store (allocates the bucket array: `BUCKETS` x 144 bytes, 576 KiB).
    pub fn new(config: StoreConfig) -> Self {
        Self::with_buckets(config, BUCKETS)
    }

    /// An empty store of `buckets` buckets (a power of two in `1..=BUCKETS`, else rounded up to
    /// one and capped at [`BUCKETS`]): the bucket of an info_hash is the low bits of its
    /// [`bucket_of`]. A shard of [`super::shards::Shards`] holds `BUCKETS / shards` of them, the
    /// buckets whose top bits are the shard's number, so a walk of the shards in order, each in
    /// bucket order, is still in info_hash order. Allocates `buckets` x 144 bytes.
    pub fn with_buckets(config: StoreConfig, buckets: usize) -> Self {
        let n = buckets.clamp(1, BUCKETS).next_power_of_two();
        Store {
            buckets: (0..n).map(|_| Bucket::new()).collect(),
            mask: n - 1,
            slab: PeerVec::<N>::new_slab(),
            config,
            ticks: Ticks::new(config.peer_timeout, config.torrent_timeout),
            cursor: 0,
            torrents: 0,
            peers: 0,
            seeders: 0,
            completions: 0,
        }
    }

    /// The bucket of `info_hash` in this store: [`bucket_of`] masked to the store's count.
    #[inline]
    fn local(&self, info_hash: &InfoHash) -> usize {
        bucket_of(info_hash) & self.mask
    }

    /// Number of buckets (a power of two, [`BUCKETS`] unless made [`Store::with_buckets`]).
    pub fn bucket_count(&self) -> usize {
        self.mask + 1
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

    /// Downloads counted since the store was made: every rise of a torrent's `downloaded` by
    /// [`Store::announce`] (see its rules), none by [`Store::set_downloaded`]. A caller
    /// compares it before and after an announce to learn whether that announce counted one.
    pub fn completions(&self) -> u64 {
        self.completions
    }

    /// True when the info_hash has a torrent (no cleaning).
    pub fn contains(&self, info_hash: &InfoHash) -> bool {
        self.buckets[self.local(info_hash)].find(info_hash).is_ok()
    }

    /// True when the info_hash has a torrent holding `peer` (no cleaning: a peer that expired
    /// but was not cleaned yet still counts). Two binary searches; used by the capacity check
    /// (`tracker.max_peers`), which runs only once the store is full.
    pub fn contains_peer(&self, info_hash: &InfoHash, peer: &[u8; N]) -> bool {
        let bucket = &self.buckets[self.local(info_hash)];
        match bucket.find(info_hash) {
            Ok(i) => bucket[i].peers.search(peer).is_ok(),
            Err(_) => false,
        }
    }

    /// What the torrent of `info_hash` holds of `peer`'s source, for the per-source quotas
    /// (`service::quota`): whether the torrent and the peer are known, and, for a peer not yet
    /// known, how many stored peers share its first `prefix` bytes (4 of 6: the same IPv4
    /// address, any port; 8 of 18: the same IPv6 /64). One torrent lookup and at most three
    /// binary searches (records are sorted, so a source's peers are adjacent: a range, never
    /// a scan). No cleaning: peers expired but not yet swept count.
    pub fn source_peers(&self, info_hash: &InfoHash, peer: &[u8; N], prefix: usize) -> SourcePeers {
        let bucket = &self.buckets[self.local(info_hash)];
        let Ok(i) = bucket.find(info_hash) else {
            return SourcePeers::default();
        };
        let peers = &bucket[i].peers;
        if peers.search(peer).is_ok() {
            return SourcePeers {
                torrent: true,
                peer: true,
                same_source: 0,
            };
        }
        let prefix = prefix.min(N);
        let (mut lo, mut hi) = (*peer, *peer);
        lo[prefix..].fill(0);
        hi[prefix..].fill(0xff);
        SourcePeers {
            torrent: true,
            peer: false,
            same_source: peers.count_between(&lo, &hi),
        }
    }

    /// Heap bytes requested from the allocator by the store (bucket array, bucket vectors,
    /// slab chunks, record blocks of their own), without malloc's own overhead. Walks every
    /// torrent: for stats, not for the hot path.
    pub fn heap_bytes(&self) -> u64 {
        let mut n = (self.buckets.len() * size_of::<Bucket<N>>()) as u64;
        n += self.slab.heap_bytes() as u64;
        for v in self.buckets.iter() {
            n += v.heap_bytes() as u64;
            n += v
                .iter()
                .filter(|t| !t.peers.in_slab())
                .map(|t| t.peers.heap_bytes() as u64)
                .sum::<u64>();
        }
        n
    }

    /// Cleans the torrent at `pos` of bucket `b` at `now_tick`, fixing the totals. Returns true
    /// when it must be dropped (the caller removes it or reuses it).
    fn clean_at(&mut self, b: usize, pos: Pos, now_tick: u32) -> bool {
        let Some(t) = self.buckets[b].get_mut(pos) else {
            return false;
        };
        let (o, m) = clean_torrent(&mut self.slab, t, now_tick, &self.ticks);
        apply_move(&mut self.buckets, &mut self.slab, m);
        self.peers -= u64::from(o.peers_removed);
        self.seeders -= u64::from(o.seeders_removed);
        o.drop
    }

    /// Removes the torrent at `pos` of bucket `b`, fixing the totals.
    fn remove_torrent(&mut self, b: usize, pos: Pos) {
        if let Some(mut t) = self.buckets[b].remove(pos) {
            self.torrents -= 1;
            self.peers -= t.peers.len() as u64;
            self.seeders -= u64::from(t.seeders);
            let m = t.peers.clear(&mut self.slab);
            apply_move(&mut self.buckets, &mut self.slab, m);
        }
    }

    /// Inserts `t` at `pos` of bucket `b` (a chunk grows by `max(1, len / 64)` entries, a full
    /// one is split) and returns where it is. Keeps the prefix rule (module docs): when a
    /// neighbour has the same 4-byte prefix, both are marked as never taking a slab slot, and
    /// the neighbour's block leaves the slab.
    fn insert_torrent(&mut self, b: usize, pos: Pos, t: Torrent<N>) -> Pos {
        let key = key_of(&t.info_hash);
        let pos = self.buckets[b].insert(pos, t);
        self.torrents += 1;
        let mut shared = false;
        for n in [self.buckets[b].prev(pos), self.buckets[b].next(pos)]
            .into_iter()
            .flatten()
        {
            let Some(nt) = self.buckets[b].get_mut(n) else {
                continue;
            };
            if key_of(&nt.info_hash) == key {
                shared = true;
                let m = nt.peers.forbid_slab(&mut self.slab);
                apply_move(&mut self.buckets, &mut self.slab, m);
            }
        }
        if shared {
            if let Some(t) = self.buckets[b].get_mut(pos) {
                // A new torrent has no peers yet: this only sets the mark.
                let m = t.peers.forbid_slab(&mut self.slab);
                apply_move(&mut self.buckets, &mut self.slab, m);
            }
        }
        pos
    }

    /// Finds the torrent, cleaning it first; a torrent the cleaning drops is removed.
    /// `Ok(pos)`: present at `pos` of bucket `b`; `Err(pos)`: absent, would go at `pos`.
    fn find_cleaned(&mut self, b: usize, info_hash: &InfoHash, now_tick: u32) -> Result<Pos, Pos> {
        let found = self.buckets[b].find(info_hash);
        if let Ok(pos) = found {
            if self.clean_at(b, pos, now_tick) {
                self.remove_torrent(b, pos);
                // The removal may have merged chunks: search again.
                return self.buckets[b].find(info_hash);
            }
        }
        found
    }

    /// Announce (BEP 3; counts as opentracker, plus the downloads clients never announce):
    /// inserts or updates the peer, stamped with the current tick, then appends up to
    /// `numwant` selected peers (N bytes each, compact form; see [`super::select`]) to `out`
    /// and returns the swarm's counts INCLUDING the announcing peer.
    ///
    /// The torrent is cleaned (expiry) first and created if unknown. A new peer adds to the
    /// peers (and seeders if `seeder`). A known peer is refreshed, and seeder<->leecher changes
    /// fix the seeders count. `Stopped` removes the peer as [`Store::stop`] does (after the
    /// count below) and selects nothing.
    ///
    /// `downloaded` counts one finished download (a COMPLETION, also counted in
    /// [`Store::completions`]) when:
    /// - a STORED LEECHER reports `left=0` (`seeder`), whatever the event: `completed`, none,
    ///   `started`, or `stopped` (counted, then the peer is removed). rtorrent never sends
    ///   `completed`: the `left=0` of its next announce, or of its `stopped`, is all a tracker
    ///   learns of its download (issue #13);
    /// - a peer the swarm does not hold sends `completed` with `left=0` (as opentracker, and as
    ///   BEP 3 means the event: a download finished, whose earlier announces this store lost
    ///   to a restart, an expiry, or another tracker).
    ///
    /// Never twice for one stay of a peer: a stored SEEDER counts nothing, whatever it sends
    /// (a repeated `completed`, a `completed` after its `left=0` was counted, a re-announce).
    /// Nothing else counts: `left>0` (even with `completed`), a new peer's `left=0` without
    /// `completed` (a seeder joining), a `stopped` of a peer the swarm does not hold. A seeder
    /// that reports `left>0` again is a leecher again, and its next `left=0` counts again: the
    /// seeder bit is all the store keeps of a peer, no memory is spent on a "counted" flag
    /// (opentracker counts a `completed` after any announce without it; we count less).
    pub fn announce(
        &mut self,
        req: &AnnounceInput<'_, N>,
        now: u32,
        rng: &mut fastrand::Rng,
        out: &mut Vec<u8>,
    ) -> SwarmCounts {
        if req.event == Event::Stopped {
            return self.remove_peer(req.info_hash, req.peer, req.seeder, now);
        }
        let now_tick = self.ticks.tick(now);
        let b = self.local(req.info_hash);
        let i = match self.find_cleaned(b, req.info_hash, now_tick) {
            Ok(i) => i,
            Err(i) => self.insert_torrent(b, i, Torrent::new(*req.info_hash, now_tick)),
        };
        let Some(t) = self.buckets[b].get_mut(i) else {
            return SwarmCounts::default();
        };
        // The stamp tick never lies before last_clean, keeping the invariant of clean.rs even if
        // `now` went backwards.
        let tick = t.last_clean.max(now_tick);
        t.last_clean = tick;
        let stamp = clean::stamp(tick);
        // A new peer counts a completion only with `completed` (see above).
        let completed = req.event == Event::Completed && req.seeder;
        let seeder_bit = if req.seeder { SEEDER } else { 0 };
        let mut moved = Move::NONE;
        let requester = match t.peers.search(req.peer) {
            Ok(p) => {
                let old = t.peers.meta(p).unwrap_or(0);
                let meta = stamp | seeder_bit;
                if req.seeder && old & SEEDER == 0 {
                    // A stored leecher reports left=0: a finished download, whatever the event.
                    count_completion(t, &mut self.completions);
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
                match t
                    .peers
                    .insert(&mut self.slab, &key_of(req.info_hash), p, req.peer, meta)
                {
                    Some((p, m)) => {
                        moved = m;
                        self.peers += 1;
                        if req.seeder {
                            t.seeders += 1;
                            self.seeders += 1;
                        }
                        if completed {
                            count_completion(t, &mut self.completions);
                        }
                        Some(p)
                    }
                    None => None,
                }
            }
        };
        apply_move(&mut self.buckets, &mut self.slab, moved);
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

    /// `event=stopped` (as opentracker's `remove_peer_from_torrent`) without the request's
    /// `left`: removes the peer if present and returns the counts after removal; all zeros if
    /// the torrent is unknown. Never creates a torrent, never counts a completion (a `stopped`
    /// announce goes through [`Store::announce`], which counts the `left=0` of a stored
    /// leecher). The torrent is cleaned first; if it ends up peerless it is dropped when
    /// `downloaded == 0`, else kept (see [`super::clean`]).
    pub fn stop(&mut self, info_hash: &InfoHash, peer: &[u8; N], now: u32) -> SwarmCounts {
        self.remove_peer(info_hash, peer, false, now)
    }

    /// [`Store::stop`], and when `finished` (the `stopped` announce said `left=0`) and the
    /// peer was a stored leecher, one completion counted before it goes.
    fn remove_peer(
        &mut self,
        info_hash: &InfoHash,
        peer: &[u8; N],
        finished: bool,
        now: u32,
    ) -> SwarmCounts {
        let now_tick = self.ticks.tick(now);
        let b = self.local(info_hash);
        let Ok(i) = self.find_cleaned(b, info_hash, now_tick) else {
            return SwarmCounts::default();
        };
        let Some(t) = self.buckets[b].get_mut(i) else {
            return SwarmCounts::default();
        };
        let Ok(p) = t.peers.search(peer) else {
            return counts_of(t);
        };
        let (meta, m) = t.peers.remove(&mut self.slab, p).unwrap_or((0, Move::NONE));
        apply_move(&mut self.buckets, &mut self.slab, m);
        let Some(t) = self.buckets[b].get_mut(i) else {
            return SwarmCounts::default();
        };
        self.peers -= 1;
        if meta & SEEDER != 0 {
            t.seeders -= 1;
            self.seeders -= 1;
        } else if finished {
            // A stored leecher leaves with left=0 (rtorrent's only sign of a finished download).
            count_completion(t, &mut self.completions);
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
        let b = self.local(info_hash);
        let i = self.find_cleaned(b, info_hash, now_tick).ok()?;
        self.buckets[b].get(i).map(counts_of)
    }

    /// Background sweep: cleans every torrent of the next `buckets` buckets (at most
    /// [`Store::bucket_count`]; round-robin cursor), dropping expired peers and dead torrents. The caller
    /// spreads a whole sweep over time, e.g. all 4096 buckets per `peer_timeout / 4`.
    pub fn clean_step(&mut self, now: u32, buckets: usize) -> CleanStats {
        let count = self.bucket_count();
        let mut st = CleanStats::default();
        for _ in 0..buckets.min(count) {
            let b = self.cursor % count;
            let o = self.clean_bucket(now, b);
            st.buckets += o.buckets;
            st.peers_removed += o.peers_removed;
            st.seeders_removed += o.seeders_removed;
            st.torrents_removed += o.torrents_removed;
            self.cursor = (self.cursor + 1) % count;
        }
        st
    }

    /// Cleans every torrent of bucket `b` (a local index, `0..bucket_count()`; out of range:
    /// nothing), as one step of [`Store::clean_step`] without moving its cursor. The sharded
    /// store's sweep ([`super::shards::Shards::clean_step`]) keeps its own cursor.
    pub fn clean_bucket(&mut self, now: u32, b: usize) -> CleanStats {
        let now_tick = self.ticks.tick(now);
        let mut st = CleanStats::default();
        let ticks = self.ticks;
        if b < self.bucket_count() {
            // Clean in place first (a freed slot may move another swarm of this very bucket,
            // found by binary search: the bucket must stay whole and sorted meanwhile), then
            // drop the torrents the cleaning condemned (peerless: they hold no storage).
            let mut at = self.buckets[b].first();
            while let Some(pos) = at {
                if let Some(t) = self.buckets[b].get_mut(pos) {
                    let (o, m) = clean_torrent(&mut self.slab, t, now_tick, &ticks);
                    apply_move(&mut self.buckets, &mut self.slab, m);
                    st.peers_removed += u64::from(o.peers_removed);
                    st.seeders_removed += u64::from(o.seeders_removed);
                }
                at = self.buckets[b].next(pos);
            }
            let v = &mut self.buckets[b];
            let mut dropped = 0u64;
            v.retain(|t| {
                let d = must_drop(t, now_tick, &ticks);
                dropped += u64::from(d);
                !d
            });
            st.torrents_removed += dropped;
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
        let mut b = from.map_or(0, |h| self.local(h));
        let mut visited = 0;
        let mut last = None;
        while let Some(v) = self.buckets.get(b) {
            let start = match from {
                Some(h) if b == self.local(h) => v.lower_bound(h, true),
                _ => v.first(),
            };
            if let Some(pos) = start {
                for t in v.iter_from(pos) {
                    if visited == max {
                        return last;
                    }
                    f(&t.info_hash, counts_of(t));
                    last = Some(t.info_hash);
                    visited += 1;
                }
            }
            b += 1;
        }
        None
    }

    /// Calls `f(address, seeder)` for every peer of `info_hash` in address order (`address`:
    /// the compact form, N bytes, network order), for the API's torrent detail. No cleaning:
    /// peers expired but not yet swept are included, as in a full scrape.
    pub fn for_each_peer(&self, info_hash: &InfoHash, mut f: impl FnMut(&[u8; N], bool)) {
        let bucket = &self.buckets[self.local(info_hash)];
        if let Ok(i) = bucket.binary_search_by(|t| t.info_hash.cmp(info_hash)) {
            for (addr, meta) in bucket[i].peers.iter() {
                f(addr, meta & SEEDER != 0);
            }
        }
    }

    /// Drops the torrents for which `keep(info_hash)` is false (e.g. after an access-list
    /// reload), fixing the totals. Walks every torrent: see [`Store::retain_buckets`] for slices.
    pub fn retain(&mut self, keep: impl FnMut(&InfoHash) -> bool) {
        self.retain_buckets(0..self.bucket_count(), keep);
    }

    /// [`Store::retain`] over the buckets in `buckets` only (a range within
    /// `0..bucket_count()`; the excess is ignored), so a caller can spread the walk over several loop turns. Returns the
    /// number of torrents dropped.
    pub fn retain_buckets(
        &mut self,
        buckets: std::ops::Range<usize>,
        mut keep: impl FnMut(&InfoHash) -> bool,
    ) -> u64 {
        let (mut torrents, mut peers, mut seeders) = (0u64, 0u64, 0u64);
        let end = buckets.end.min(self.bucket_count());
        let start = buckets.start.min(end);
        for b in start..end {
            // Clear the condemned in place first (see `clean_step`), then drop them: after
            // that they are the only peerless torrents with `downloaded == 0`.
            let mut at = self.buckets[b].first();
            while let Some(pos) = at {
                if let Some(t) = self.buckets[b].get_mut(pos) {
                    if !keep(&t.info_hash) {
                        torrents += 1;
                        peers += t.peers.len() as u64;
                        seeders += u64::from(t.seeders);
                        t.seeders = 0;
                        t.downloaded = 0;
                        let m = t.peers.clear(&mut self.slab);
                        apply_move(&mut self.buckets, &mut self.slab, m);
                    }
                }
                at = self.buckets[b].next(pos);
            }
            self.buckets[b].retain(|t| !(t.peers.is_empty() && t.downloaded == 0));
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
        let b = self.local(info_hash);
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
        assert_eq!(self.buckets.len(), self.mask + 1);
        for (b, v) in self.buckets.iter().enumerate() {
            if v.is_empty() {
                continue;
            }
            v.check();
            let all: Vec<&Torrent<N>> = v.iter().collect();
            for w in all.windows(2) {
                assert!(w[0].info_hash < w[1].info_hash, "bucket {b} not sorted");
            }
            for (k, t) in all.iter().enumerate() {
                assert_eq!(self.local(&t.info_hash), b);
                t.peers.check();
                if t.peers.heap_bytes() > 0 {
                    assert_eq!(t.peers.key(), key_of(&t.info_hash), "block key");
                }
                // The prefix rule: torrents sharing a 4-byte prefix are all marked, and a
                // swarm in the slab is the only torrent with its prefix.
                let key = key_of(&t.info_hash);
                let shares = [k.checked_sub(1), Some(k + 1)]
                    .into_iter()
                    .flatten()
                    .filter_map(|j| all.get(j))
                    .any(|n| key_of(&n.info_hash) == key);
                if shares {
                    assert!(t.peers.slab_forbidden(), "a shared prefix not marked");
                }
                if t.peers.in_slab() {
                    assert!(!shares && !t.peers.slab_forbidden());
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
        let v = &self.buckets[self.local(info_hash)];
        v.find(info_hash).ok().map(|i| &v[i])
    }

    /// The bucket of an info_hash (test helper).
    pub(crate) fn bucket(&self, info_hash: &InfoHash) -> &Bucket<N> {
        &self.buckets[self.local(info_hash)]
    }

    /// Announces `peer` into `info_hash` at time 0 with numwant 0: a seeder as `completed`, a
    /// leecher as `started` (test helper for the code that walks stores).
    pub(crate) fn add_peer(&mut self, info_hash: &InfoHash, peer: &[u8; N], seeder: bool) {
        let event = if seeder {
            Event::Completed
        } else {
            Event::Started
        };
        let req = AnnounceInput {
            info_hash,
            peer,
            seeder,
            event,
            numwant: 0,
        };
        self.announce(&req, 0, &mut fastrand::Rng::with_seed(1), &mut Vec::new());
    }
}

#[cfg(test)]
mod tests;
