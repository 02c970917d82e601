//! The sharded store: one [`Store`] per shard, each behind its own lock, shared by every worker
//! (`tracker.workers`; opentracker's way: a lock per bucket group, contention is rare when the
//! shards far outnumber the threads).
//!
//! # Routing
//!
//! The shard of an info_hash is the top bits of its [`bucket_of`] (the top 12 bits of the
//! info_hash): with `S` shards, shard `s` holds the global buckets `s * BUCKETS/S ..
//! (s + 1) * BUCKETS/S`, as the `BUCKETS/S` buckets of its own [`Store::with_buckets`] (the low
//! bits of the bucket). Memory is the same as one store of [`BUCKETS`] buckets (576 KiB of
//! bucket heads per family, whatever `S`). Walking the shards in order, each in bucket order,
//! visits every torrent in info_hash order, so the full scrape, the state file and the API's
//! lists need no index and no merge.
//!
//! # Locks
//!
//! A request locks only its shard, for the time of one store call (an announce: a few hundred
//! ns). Each shard has its own slab ([`super::slab`]): a freed slot moves another block of the
//! *same* shard, and the owner the move re-points (found by its key, which gives its bucket) is
//! in the same shard too, so the shard's lock covers everything a move touches. Walks (full
//! scrape, state file, API lists, `/stats` totals, cleaning, access-list purges) take one shard
//! at a time for one slice, never two locks at once, so no lock order exists to get wrong.
//!
//! # Why [`SHARDS`] = 64
//!
//! Two workers announcing into random torrents meet in the same shard with probability 1/64 per
//! request, and then wait for one store call (well under a microsecond); 64 shards keep that
//! near nothing up to 16 workers (1/64 per pair) while each shard still holds 64 buckets, so
//! the per-shard fixed cost (a lock, a slab's size classes, counters on their own cache line)
//! stays small next to the store. A swarm hot enough that all workers announce into it meets
//! in one shard whatever `S` is: that case is bounded by the store call's length, not by `S`.
//!
//! # Totals
//!
//! The torrents, peers and seeders over every shard are kept in three atomics: a store call
//! that changed its shard's totals adds the difference (under the shard's lock; an announce that
//! only refreshes a known peer, the common case, changes nothing and writes nothing), and
//! [`Shards::torrents`] and friends are one load each, so the capacity check of every announce
//! (`tracker.max_torrents`, `tracker.max_peers`) costs no walk of the shards. They are exact when
//! no change is in flight, otherwise off by at most the changes running at that instant (one per
//! worker), and the three are not read together (seeders may briefly exceed peers). So the
//! global bounds can be overshot by at most `workers - 1` (the check and the change are two
//! steps, as between two nodes of a cluster). Summing 64 per-shard counts instead cost about
//! 1,000 instructions per announce (callgrind, the UDP mix).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};

use super::clean::{CleanStats, Ticks};
use super::store::{AnnounceInput, BUCKETS, Store, StoreConfig, SwarmCounts, bucket_of};
use crate::types::InfoHash;

/// Shards per family by default (see the module docs): a power of two, at most [`BUCKETS`].
pub const SHARDS: usize = 64;

/// One shard: its store behind its lock, and its torrent count mirrored for lock-free reads
/// (a walk asks whether later shards hold anything). Aligned to 128 bytes so two shards never
/// share a cache line (nor the adjacent-line prefetch).
#[repr(align(128))]
struct Shard<const N: usize> {
    store: Mutex<Store<N>>,
    torrents: AtomicU64,
}

/// The totals of a store: torrents, peers, seeders.
#[inline]
fn totals_of<const N: usize>(s: &Store<N>) -> [u64; 3] {
    [s.torrents(), s.peers(), s.seeders()]
}

/// Totals over every shard, each on its own cache line (see the module docs: "Totals").
#[repr(align(128))]
#[derive(Default)]
struct Total(AtomicU64);

/// The store of one address family shared by every worker: `N` is the compact peer length (6 for
/// IPv4, 18 for IPv6). Every method takes `&self` and locks the shard(s) it needs; see the
/// module docs for the routing, the locks and how exact the totals are.
pub struct Shards<const N: usize> {
    shards: Box<[Shard<N>]>,
    /// Torrents, peers, seeders over every shard.
    totals: [Total; 3],
    /// `bucket_of(info_hash) >> shift` is the shard.
    shift: u32,
    config: StoreConfig,
    ticks: Ticks,
    /// Next global bucket (`0..BUCKETS`) the background sweep visits.
    cursor: AtomicUsize,
}

/// The walks every sorted store offers, for the code that builds responses or files in slices
/// (full scrape, state file, API lists): one [`Store`], or the [`Shards`] of every worker.
pub trait TorrentWalk<const N: usize> {
    /// Number of torrents (for sizing buffers; may be stale by the time it is used).
    fn torrents(&self) -> u64;

    /// Calls `f(info_hash, counts)` for up to `max` torrents (0 is read as 1) after `from`
    /// (exclusive; `None` = from the start), in info_hash order. Returns the last info_hash
    /// visited while more torrents may follow (pass it as `from` next time), `None` when the
    /// walk is finished. No cleaning. See [`Store::for_each_from`].
    fn for_each_from(
        &self,
        from: Option<&InfoHash>,
        max: usize,
        f: impl FnMut(&InfoHash, SwarmCounts),
    ) -> Option<InfoHash>;
}

impl<const N: usize> TorrentWalk<N> for Store<N> {
    fn torrents(&self) -> u64 {
        Store::torrents(self)
    }

    fn for_each_from(
        &self,
        from: Option<&InfoHash>,
        max: usize,
        f: impl FnMut(&InfoHash, SwarmCounts),
    ) -> Option<InfoHash> {
        Store::for_each_from(self, from, max, f)
    }
}

impl<const N: usize, T: TorrentWalk<N>> TorrentWalk<N> for std::sync::Arc<T> {
    fn torrents(&self) -> u64 {
        T::torrents(self)
    }

    fn for_each_from(
        &self,
        from: Option<&InfoHash>,
        max: usize,
        f: impl FnMut(&InfoHash, SwarmCounts),
    ) -> Option<InfoHash> {
        T::for_each_from(self, from, max, f)
    }
}

impl<const N: usize> TorrentWalk<N> for Shards<N> {
    fn torrents(&self) -> u64 {
        Shards::torrents(self)
    }

    fn for_each_from(
        &self,
        from: Option<&InfoHash>,
        max: usize,
        f: impl FnMut(&InfoHash, SwarmCounts),
    ) -> Option<InfoHash> {
        Shards::for_each_from(self, from, max, f)
    }
}

impl<const N: usize> Shards<N> {
    /// An empty store of [`SHARDS`] shards.
    pub fn new(config: StoreConfig) -> Self {
        Self::with_shards(config, SHARDS)
    }

    /// An empty store of `shards` shards (a power of two in `1..=BUCKETS`, else rounded up to
    /// one and capped at [`BUCKETS`]), each a [`Store`] of `BUCKETS / shards` buckets.
    pub fn with_shards(config: StoreConfig, shards: usize) -> Self {
        let s = shards.clamp(1, BUCKETS).next_power_of_two();
        let per_shard = BUCKETS / s;
        Shards {
            shards: (0..s)
                .map(|_| Shard {
                    store: Mutex::new(Store::with_buckets(config, per_shard)),
                    torrents: AtomicU64::new(0),
                })
                .collect(),
            totals: Default::default(),
            shift: per_shard.trailing_zeros(),
            config,
            ticks: Ticks::new(config.peer_timeout, config.torrent_timeout),
            cursor: AtomicUsize::new(0),
        }
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The shard of an info_hash: the top `log2(shards)` bits of its [`bucket_of`].
    #[inline]
    pub fn shard_of(&self, info_hash: &InfoHash) -> usize {
        bucket_of(info_hash) >> self.shift
    }

    /// Locks shard `i`. A poisoned lock means a worker panicked inside the store (a broken
    /// invariant, see [`Store`]'s `apply_move`): nothing can be trusted, so this panics too.
    fn lock(&self, i: usize) -> MutexGuard<'_, Store<N>> {
        self.shards[i]
            .store
            .lock()
            .expect("a worker panicked while holding a store shard's lock")
    }

    /// Runs `f` on the store of `info_hash`'s shard under its lock, then adds what it changed
    /// to the totals. The one way a request reaches the store.
    #[inline]
    pub fn with<R>(&self, info_hash: &InfoHash, f: impl FnOnce(&mut Store<N>) -> R) -> R {
        self.with_shard(self.shard_of(info_hash), f)
    }

    /// [`Shards::with`] for shard `i` (`0..shard_count()`).
    #[inline]
    pub fn with_shard<R>(&self, i: usize, f: impl FnOnce(&mut Store<N>) -> R) -> R {
        let shard = &self.shards[i];
        let mut store = self.lock(i);
        let before = totals_of(&store);
        let r = f(&mut store);
        let after = totals_of(&store);
        if after != before {
            for ((total, a), b) in self.totals.iter().zip(after).zip(before) {
                // A wrapping add of the difference: the totals never go below zero.
                total.0.fetch_add(a.wrapping_sub(b), Relaxed);
            }
            shard.torrents.store(after[0], Relaxed);
        }
        r
    }

    /// The configuration.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// The store's ticks (tick length in seconds, timeouts in ticks).
    pub fn ticks(&self) -> &Ticks {
        &self.ticks
    }

    /// Number of torrents over every shard (see the module docs: "Totals").
    #[inline]
    pub fn torrents(&self) -> u64 {
        self.totals[0].0.load(Relaxed)
    }

    /// Number of peers over every shard.
    #[inline]
    pub fn peers(&self) -> u64 {
        self.totals[1].0.load(Relaxed)
    }

    /// Number of seeders over every shard.
    #[inline]
    pub fn seeders(&self) -> u64 {
        self.totals[2].0.load(Relaxed)
    }

    /// [`Store::announce`] in the info_hash's shard.
    pub fn announce(
        &self,
        req: &AnnounceInput<'_, N>,
        now: u32,
        rng: &mut fastrand::Rng,
        out: &mut Vec<u8>,
    ) -> SwarmCounts {
        self.with(req.info_hash, |s| s.announce(req, now, rng, out))
    }

    /// [`Store::stop`] in the info_hash's shard.
    pub fn stop(&self, info_hash: &InfoHash, peer: &[u8; N], now: u32) -> SwarmCounts {
        self.with(info_hash, |s| s.stop(info_hash, peer, now))
    }

    /// [`Store::scrape`] in the info_hash's shard.
    pub fn scrape(&self, info_hash: &InfoHash, now: u32) -> Option<SwarmCounts> {
        self.with(info_hash, |s| s.scrape(info_hash, now))
    }

    /// [`Store::set_downloaded`] in the info_hash's shard.
    pub fn set_downloaded(&self, info_hash: &InfoHash, downloaded: u32, now: u32) {
        self.with(info_hash, |s| s.set_downloaded(info_hash, downloaded, now))
    }

    /// [`Store::contains`].
    pub fn contains(&self, info_hash: &InfoHash) -> bool {
        self.lock(self.shard_of(info_hash)).contains(info_hash)
    }

    /// [`Store::contains_peer`].
    pub fn contains_peer(&self, info_hash: &InfoHash, peer: &[u8; N]) -> bool {
        self.lock(self.shard_of(info_hash))
            .contains_peer(info_hash, peer)
    }

    /// [`Store::source_peers`] in the info_hash's shard.
    pub fn source_peers(
        &self,
        info_hash: &InfoHash,
        peer: &[u8; N],
        prefix: usize,
    ) -> super::store::SourcePeers {
        self.lock(self.shard_of(info_hash))
            .source_peers(info_hash, peer, prefix)
    }

    /// [`Store::for_each_peer`], under the shard's lock: `f` must be short (it is called
    /// for every peer of one torrent).
    pub fn for_each_peer(&self, info_hash: &InfoHash, f: impl FnMut(&[u8; N], bool)) {
        self.lock(self.shard_of(info_hash))
            .for_each_peer(info_hash, f)
    }

    /// Heap bytes of every shard ([`Store::heap_bytes`]); walks every torrent, one shard locked
    /// at a time.
    pub fn heap_bytes(&self) -> u64 {
        (0..self.shards.len())
            .map(|i| self.lock(i).heap_bytes())
            .sum()
    }

    /// Background sweep: cleans the next `buckets` global buckets (at most [`BUCKETS`];
    /// round-robin cursor shared by every caller), one shard locked at a time for one bucket.
    pub fn clean_step(&self, now: u32, buckets: usize) -> CleanStats {
        let per_shard = BUCKETS >> self.shards.len().trailing_zeros();
        let mut st = CleanStats::default();
        for _ in 0..buckets.min(BUCKETS) {
            let g = self.cursor.fetch_add(1, Relaxed) % BUCKETS;
            let o = self.with_shard(g / per_shard, |s| s.clean_bucket(now, g % per_shard));
            st.buckets += o.buckets;
            st.peers_removed += o.peers_removed;
            st.seeders_removed += o.seeders_removed;
            st.torrents_removed += o.torrents_removed;
        }
        // The cursor wraps at usize::MAX, a multiple of BUCKETS minus one: the order holds.
        st
    }

    /// [`Store::retain_buckets`] over the global buckets in `buckets` (within `0..BUCKETS`;
    /// the excess is ignored), one shard locked at a time. Returns the torrents dropped.
    pub fn retain_buckets(
        &self,
        buckets: std::ops::Range<usize>,
        mut keep: impl FnMut(&InfoHash) -> bool,
    ) -> u64 {
        let per_shard = BUCKETS >> self.shards.len().trailing_zeros();
        let end = buckets.end.min(BUCKETS);
        let mut b = buckets.start.min(end);
        let mut dropped = 0;
        while b < end {
            let shard = b / per_shard;
            let stop = end.min((shard + 1) * per_shard);
            let local = (b % per_shard)..(stop - shard * per_shard);
            dropped += self.with_shard(shard, |s| s.retain_buckets(local, &mut keep));
            b = stop;
        }
        dropped
    }

    /// Drops the torrents for which `keep(info_hash)` is false, shard by shard.
    pub fn retain(&self, keep: impl FnMut(&InfoHash) -> bool) {
        self.retain_buckets(0..BUCKETS, keep);
    }

    /// [`Store::for_each_from`] over the shards in order: each shard is locked for its part of
    /// the slice only. Returns the last info_hash visited while more torrents may follow
    /// (`None`: the walk is finished).
    pub fn for_each_from(
        &self,
        from: Option<&InfoHash>,
        max: usize,
        mut f: impl FnMut(&InfoHash, SwarmCounts),
    ) -> Option<InfoHash> {
        let max = max.max(1);
        let first = from.map_or(0, |h| self.shard_of(h));
        let mut visited = 0usize;
        let mut last = from.copied();
        for i in first..self.shards.len() {
            let start = if i == first { from } else { None };
            let more = self.lock(i).for_each_from(start, max - visited, |h, c| {
                visited += 1;
                last = Some(*h);
                f(h, c);
            });
            if more.is_some() {
                return more;
            }
            if visited == max {
                // This shard is done; more follow if a later shard holds a torrent.
                let rest = self.shards[i + 1..]
                    .iter()
                    .any(|s| s.torrents.load(Relaxed) > 0);
                return if rest { last } else { None };
            }
        }
        None
    }

    /// Checks every shard's invariants ([`Store`]'s test helper) and that each torrent is in
    /// the shard its info_hash routes to.
    #[cfg(test)]
    pub(crate) fn check_invariants(&self) {
        let mut sum = [0u64; 3];
        for i in 0..self.shards.len() {
            let s = self.lock(i);
            s.check_invariants();
            s.for_each_from(None, usize::MAX, |h, _| assert_eq!(self.shard_of(h), i));
            assert_eq!(s.torrents(), self.shards[i].torrents.load(Relaxed));
            for (x, t) in sum.iter_mut().zip(totals_of(&s)) {
                *x += t;
            }
        }
        assert_eq!(sum, [self.torrents(), self.peers(), self.seeders()]);
    }

    /// The `downloaded` count of one torrent, without cleaning (test helper; `None` if
    /// unknown).
    #[cfg(test)]
    pub(crate) fn get(&self, info_hash: &InfoHash) -> Option<TorrentView> {
        self.lock(self.shard_of(info_hash))
            .get(info_hash)
            .map(|t| TorrentView {
                downloaded: t.downloaded(),
            })
    }
}

/// A copy of one torrent's `downloaded` count, taken under its shard's lock (test helper).
#[cfg(test)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct TorrentView {
    downloaded: u32,
}

#[cfg(test)]
impl TorrentView {
    /// `downloaded`.
    pub(crate) fn downloaded(&self) -> u32 {
        self.downloaded
    }
}

impl<const N: usize> std::fmt::Debug for Shards<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shards")
            .field("shards", &self.shards.len())
            .field("config", &self.config)
            .field("torrents", &self.torrents())
            .field("peers", &self.peers())
            .finish()
    }
}

#[cfg(test)]
mod tests;
