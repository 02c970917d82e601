//! One bucket of a store: the torrents whose info_hash starts with the bucket's 12 bits, sorted
//! by info_hash, in CHUNKS of at most [`CHUNK_TORRENTS`].
//!
//! A bucket is picked by bits of the info_hash that the client chooses, so one bucket can hold
//! any number of torrents: announcing 300,000 info_hashes that share a prefix puts them all in
//! one bucket. As one sorted vector, each insert or remove at its front would move the whole
//! bucket (14 MB at 300,000 torrents). So a bucket of more than [`CHUNK_TORRENTS`] torrents
//! is split into sorted chunks, as [`super::torrent`] splits a big swarm:
//!
//! - A bucket of up to [`CHUNK_TORRENTS`] torrents is one `Vec` (the common case: 1,220
//!   torrents per bucket at 5,000,000 random torrents make 2 to 4 chunks), grown by
//!   `max(1, len / 64)` entries and shrunk when under half full, exactly as before (see
//!   [`super::store`] for why).
//! - Above that, a list of chunks, each a `Vec` of 1 to [`CHUNK_TORRENTS`] torrents, in order.
//!   An insert into a full chunk splits it in two halves; a chunk under a quarter full after
//!   a removal is merged with a neighbour (or evened out with it). One change moves at most
//!   one chunk (24 KiB) plus one entry of the chunk list (24 bytes per chunk: 19 KB for
//!   300,000 torrents in one bucket, 300 KB if all 5,000,000 were).
//! - Walking the chunks in order still visits the torrents in info_hash order, so the full
//!   scrape and every cursor by info_hash work as before.
//! - The chunk list keeps the first 8 bytes of each chunk's first info_hash beside the chunk,
//!   so finding the chunk reads the list alone, not each chunk's first torrent; and up to
//!   [`INLINE_CHUNKS`] chunks (what a bucket of a store of random torrents needs: 3 or 4 at
//!   5,000,000 torrents) live inside the bucket itself (144 bytes instead of 24, 576 KiB per
//!   store), so a lookup there costs the cache misses of a flat bucket: measured, the random
//!   workload of `make bench-adversarial` at 5,000,000 torrents has the same median as with
//!   one vector per bucket (0.83 vs 0.82 us), where a chunk list behind a pointer cost 55%
//!   more.
//!
//! A [`Pos`] names a torrent (or an insertion point) by chunk and index; it is valid until the
//! bucket next changes.

use std::cmp::Ordering;

use smallvec::{SmallVec, smallvec};

use super::torrent::Torrent;
use crate::types::InfoHash;

/// Torrents per chunk of a bucket, at most (24 KiB of 48-byte entries).
pub const CHUNK_TORRENTS: usize = 512;

/// A position in a bucket: chunk number and index in the chunk (chunk 0 in a flat bucket).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    chunk: u32,
    index: u32,
}

impl Pos {
    fn new(chunk: usize, index: usize) -> Self {
        Pos {
            chunk: chunk as u32,
            index: index as u32,
        }
    }
}

/// The torrents of one bucket, sorted by info_hash (see the module docs). 144 bytes: a flat
/// bucket's vector, or up to [`INLINE_CHUNKS`] chunks inline.
pub struct Bucket<const N: usize> {
    repr: Repr<N>,
}

const _: () = assert!(size_of::<Bucket<6>>() == 144);

enum Repr<const N: usize> {
    /// Up to [`CHUNK_TORRENTS`] torrents (more only transiently, never after a change).
    Flat(Vec<Torrent<N>>),
    /// At least two non-empty chunks of at most [`CHUNK_TORRENTS`], in order; up to
    /// [`INLINE_CHUNKS`] of them inside the bucket itself.
    Chunked(Chunks<N>),
}

/// Chunks kept inside the bucket (not behind a pointer): enough for the buckets of a store of
/// random torrents (3 or 4 chunks at 5,000,000 torrents), so finding a torrent there costs no
/// more cache misses than in a flat bucket.
pub const INLINE_CHUNKS: usize = 4;

/// The chunk list of a chunked bucket.
type Chunks<const N: usize> = SmallVec<[Chunk<N>; INLINE_CHUNKS]>;

/// A chunk of a chunked bucket, with the routing key of its first torrent next to it, so the
/// search for a chunk reads only the chunk list (one cache line for a few chunks) instead of
/// each chunk's first torrent.
struct Chunk<const N: usize> {
    /// The first 8 bytes of the first torrent's info_hash, big-endian (its order).
    key: u64,
    v: Vec<Torrent<N>>,
}

/// The routing key of an info_hash: its first 8 bytes, big-endian.
fn route_key(h: &InfoHash) -> u64 {
    let mut k = [0u8; 8];
    k.copy_from_slice(&h[..8]);
    u64::from_be_bytes(k)
}

impl<const N: usize> Chunk<N> {
    fn new(v: Vec<Torrent<N>>) -> Self {
        let mut c = Chunk { key: 0, v };
        c.rekey();
        c
    }

    /// Sets the key from the first torrent (after a change at the front).
    fn rekey(&mut self) {
        self.key = self.v.first().map_or(0, |t| route_key(&t.info_hash));
    }

    /// True when the chunk's first torrent is below `h` (`or_equal`: or equal to it).
    fn starts_before(&self, h: &InfoHash, or_equal: bool) -> bool {
        let k = route_key(h);
        if self.key != k {
            return self.key < k;
        }
        match self.v.first() {
            Some(t) if or_equal => t.info_hash <= *h,
            Some(t) => t.info_hash < *h,
            None => false,
        }
    }
}

impl<const N: usize> Default for Bucket<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// Frees chunk slack after removals: below half full, shrink to `len + len / 8`.
fn shrink_chunk<T>(v: &mut Vec<T>) {
    if (v.is_empty() && v.capacity() > 0) || v.len() < v.capacity() / 2 {
        v.shrink_to(v.len() + v.len() / 8);
    }
}

/// Inserts into a chunk, growing it by `max(1, len / 64)` entries when full.
fn insert_grow<T>(v: &mut Vec<T>, i: usize, t: T) {
    if v.len() == v.capacity() {
        v.reserve_exact((v.len() / 64).max(1));
    }
    v.insert(i.min(v.len()), t);
}

/// Splits a chunk in halves: it keeps the lower half (shrunk to `len + len / 64`), the upper
/// half comes back in a vector of its own with as much room.
fn split_chunk<T>(v: &mut Vec<T>) -> Vec<T> {
    let half = v.len() / 2;
    let n = v.len() - half;
    let mut tail = Vec::with_capacity(n + n / 64);
    tail.extend(v.drain(half..));
    v.shrink_to(half + half / 64);
    tail
}

impl<const N: usize> Bucket<N> {
    /// An empty bucket (no allocation).
    pub const fn new() -> Self {
        Bucket {
            repr: Repr::Flat(Vec::new()),
        }
    }

    /// Chunk `c`.
    #[inline]
    fn chunk(&self, c: usize) -> Option<&Vec<Torrent<N>>> {
        match &self.repr {
            Repr::Flat(v) => (c == 0).then_some(v),
            Repr::Chunked(cs) => cs.get(c).map(|ch| &ch.v),
        }
    }

    /// Chunk `c`, mutably. Callers must not change which torrent is first (the routing key):
    /// the torrents' own fields only.
    #[inline]
    fn chunk_mut(&mut self, c: usize) -> Option<&mut Vec<Torrent<N>>> {
        match &mut self.repr {
            Repr::Flat(v) => (c == 0).then_some(v),
            Repr::Chunked(cs) => cs.get_mut(c).map(|ch| &mut ch.v),
        }
    }

    /// The chunks in order.
    fn chunk_iter(&self) -> impl Iterator<Item = &Vec<Torrent<N>>> + '_ {
        let (one, many): (Option<&Vec<Torrent<N>>>, &[Chunk<N>]) = match &self.repr {
            Repr::Flat(v) => (Some(v), &[]),
            Repr::Chunked(cs) => (None, &cs[..]),
        };
        one.into_iter().chain(many.iter().map(|ch| &ch.v))
    }

    /// The last chunk whose first torrent is below `h` (`or_equal`: or equal), 0 if none.
    #[inline]
    fn route(&self, h: &InfoHash, or_equal: bool) -> usize {
        match &self.repr {
            Repr::Flat(_) => 0,
            Repr::Chunked(cs) => cs
                .partition_point(|ch| ch.starts_before(h, or_equal))
                .saturating_sub(1),
        }
    }

    /// True when the bucket holds no torrent.
    pub fn is_empty(&self) -> bool {
        match &self.repr {
            Repr::Flat(v) => v.is_empty(),
            Repr::Chunked(cs) => cs.iter().all(|c| c.v.is_empty()),
        }
    }

    /// The number of torrents (walks the chunk list).
    pub fn len(&self) -> usize {
        self.chunk_iter().map(|c| c.len()).sum()
    }

    /// Binary search with `f` (the ordering of a torrent against the target, as
    /// [`slice::binary_search_by`]): `Ok(pos)` of a match, or `Err(pos)` where the target would
    /// be inserted to keep the order.
    pub fn binary_search_by(&self, mut f: impl FnMut(&Torrent<N>) -> Ordering) -> Result<Pos, Pos> {
        // The last chunk whose first torrent is not above the target.
        let c = match &self.repr {
            Repr::Flat(_) => 0,
            Repr::Chunked(cs) => cs
                .partition_point(|ch| ch.v.first().is_some_and(|t| f(t) != Ordering::Greater))
                .saturating_sub(1),
        };
        match self.chunk(c).map(|ch| ch.binary_search_by(&mut f)) {
            Some(Ok(i)) => Ok(Pos::new(c, i)),
            Some(Err(i)) => Err(Pos::new(c, i)),
            None => Err(Pos::default()),
        }
    }

    /// The torrent of an info_hash: `Ok(pos)`, or `Err(pos)` where it would go. The chunk is
    /// found by the routing keys of the chunk list.
    #[inline]
    pub fn find(&self, info_hash: &InfoHash) -> Result<Pos, Pos> {
        let c = self.route(info_hash, true);
        match self
            .chunk(c)
            .map(|ch| ch.binary_search_by(|t| t.info_hash.cmp(info_hash)))
        {
            Some(Ok(i)) => Ok(Pos::new(c, i)),
            Some(Err(i)) => Err(Pos::new(c, i)),
            None => Err(Pos::default()),
        }
    }

    /// The position of the first torrent at or after `h` (`after`: strictly after), `None` when
    /// there is none.
    pub fn lower_bound(&self, h: &InfoHash, after: bool) -> Option<Pos> {
        let mut c = self.route(h, after);
        loop {
            let ch = self.chunk(c)?;
            let i = ch.partition_point(|t| {
                if after {
                    t.info_hash <= *h
                } else {
                    t.info_hash < *h
                }
            });
            if i < ch.len() {
                return Some(Pos::new(c, i));
            }
            c += 1;
        }
    }

    /// The position of the first torrent for which `before` is false (`before` must be true for
    /// a prefix of the bucket in order, as [`slice::partition_point`]); `None` when there is
    /// none.
    pub fn partition_point(&self, mut before: impl FnMut(&Torrent<N>) -> bool) -> Option<Pos> {
        let c = match &self.repr {
            Repr::Flat(_) => 0,
            Repr::Chunked(cs) => cs.partition_point(|ch| ch.v.last().is_some_and(&mut before)),
        };
        let ch = self.chunk(c)?;
        let i = ch.partition_point(before);
        (i < ch.len()).then(|| Pos::new(c, i))
    }

    /// The torrent at `pos`.
    #[inline]
    pub fn get(&self, pos: Pos) -> Option<&Torrent<N>> {
        self.chunk(pos.chunk as usize)?.get(pos.index as usize)
    }

    /// The torrent at `pos`, mutably.
    #[inline]
    pub fn get_mut(&mut self, pos: Pos) -> Option<&mut Torrent<N>> {
        self.chunk_mut(pos.chunk as usize)?
            .get_mut(pos.index as usize)
    }

    /// The position of the first torrent, `None` when empty.
    pub fn first(&self) -> Option<Pos> {
        self.get(Pos::default()).map(|_| Pos::default())
    }

    /// The position after `pos`, `None` at the end.
    pub fn next(&self, pos: Pos) -> Option<Pos> {
        let (c, i) = (pos.chunk as usize, pos.index as usize + 1);
        if self.chunk(c).is_some_and(|ch| i < ch.len()) {
            return Some(Pos::new(c, i));
        }
        self.chunk(c + 1)
            .filter(|ch| !ch.is_empty())
            .map(|_| Pos::new(c + 1, 0))
    }

    /// The position before `pos`, `None` at the start.
    pub fn prev(&self, pos: Pos) -> Option<Pos> {
        let (c, i) = (pos.chunk as usize, pos.index as usize);
        if i > 0 {
            return Some(Pos::new(c, i - 1));
        }
        let prev = self.chunk(c.checked_sub(1)?)?;
        (!prev.is_empty()).then(|| Pos::new(c - 1, prev.len() - 1))
    }

    /// Inserts `t` at `pos` (from a search that said where it goes) and returns where it is
    /// now: a full chunk is split first.
    pub fn insert(&mut self, pos: Pos, t: Torrent<N>) -> Pos {
        let (mut c, mut i) = (pos.chunk as usize, pos.index as usize);
        if let Repr::Flat(v) = &mut self.repr {
            if v.len() < CHUNK_TORRENTS {
                insert_grow(v, i, t);
                return Pos::new(0, i.min(v.len() - 1));
            }
            let first = Chunk::new(std::mem::take(v));
            self.repr = Repr::Chunked(smallvec![first]);
            c = 0;
        }
        let Repr::Chunked(cs) = &mut self.repr else {
            unreachable!("a flat bucket returned above");
        };
        c = c.min(cs.len() - 1);
        if cs[c].v.len() >= CHUNK_TORRENTS {
            let tail = split_chunk(&mut cs[c].v);
            let half = cs[c].v.len();
            cs.insert(c + 1, Chunk::new(tail));
            if i > half {
                c += 1;
                i -= half;
            }
        }
        let ch = &mut cs[c];
        insert_grow(&mut ch.v, i, t);
        if i == 0 {
            ch.rekey();
        }
        Pos::new(c, i.min(ch.v.len() - 1))
    }

    /// Removes and returns the torrent at `pos`; a chunk left under a quarter full is merged
    /// with or evened out with a neighbour, and a bucket left with one chunk is flat again.
    pub fn remove(&mut self, pos: Pos) -> Option<Torrent<N>> {
        let (c, i) = (pos.chunk as usize, pos.index as usize);
        match &mut self.repr {
            Repr::Flat(v) => {
                if i >= v.len() {
                    return None;
                }
                let t = v.remove(i);
                shrink_chunk(v);
                Some(t)
            }
            Repr::Chunked(cs) => {
                let ch = cs.get_mut(c)?;
                if i >= ch.v.len() {
                    return None;
                }
                let t = ch.v.remove(i);
                if i == 0 {
                    ch.rekey();
                }
                if ch.v.len() < CHUNK_TORRENTS / 4 {
                    rebalance(cs, c);
                } else {
                    shrink_chunk(&mut ch.v);
                }
                self.normalize();
                Some(t)
            }
        }
    }

    /// Keeps the torrents for which `keep` is true (in order), then merges small chunks.
    pub fn retain(&mut self, mut keep: impl FnMut(&Torrent<N>) -> bool) {
        match &mut self.repr {
            Repr::Flat(v) => {
                v.retain(&mut keep);
                shrink_chunk(v);
            }
            Repr::Chunked(cs) => {
                for ch in cs.iter_mut() {
                    ch.v.retain(&mut keep);
                    shrink_chunk(&mut ch.v);
                    ch.rekey();
                }
                cs.retain(|ch| !ch.v.is_empty());
                if cs.iter().map(|ch| ch.v.len()).sum::<usize>() <= CHUNK_TORRENTS / 2 {
                    // Few are left: one vector again.
                    let mut all = Vec::new();
                    for ch in cs.drain(..) {
                        all.extend(ch.v);
                    }
                    all.shrink_to(all.len() + all.len() / 8);
                    cs.push(Chunk::new(all));
                }
                let mut i = 0;
                while i < cs.len() && cs.len() >= 2 {
                    if cs[i].v.len() < CHUNK_TORRENTS / 4 {
                        let before = cs.len();
                        rebalance(cs, i);
                        if cs.len() == before {
                            i += 1;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
        }
        self.normalize();
    }

    /// A chunked bucket left with fewer than two chunks becomes flat.
    fn normalize(&mut self) {
        if let Repr::Chunked(cs) = &mut self.repr {
            if cs.len() < 2 {
                let v = cs.pop().map(|ch| ch.v).unwrap_or_default();
                self.repr = Repr::Flat(v);
            }
        }
    }

    /// The torrents in info_hash order.
    pub fn iter(&self) -> impl Iterator<Item = &Torrent<N>> + '_ {
        self.chunk_iter().flat_map(|ch| ch.iter())
    }

    /// The torrents from `pos` on, in order.
    pub fn iter_from(&self, pos: Pos) -> impl Iterator<Item = &Torrent<N>> + '_ {
        let c = pos.chunk as usize;
        let head = self
            .chunk(c)
            .and_then(|ch| ch.get(pos.index as usize..))
            .unwrap_or(&[]);
        head.iter()
            .chain(self.chunk_iter().skip(c + 1).flat_map(|ch| ch.iter()))
    }

    /// Heap bytes of the bucket's vectors (entries reserved, and the chunk list), not of the
    /// swarms' blocks.
    pub fn heap_bytes(&self) -> usize {
        let entries: usize = self
            .chunk_iter()
            .map(|ch| ch.capacity() * size_of::<Torrent<N>>())
            .sum();
        match &self.repr {
            Repr::Flat(_) => entries,
            Repr::Chunked(cs) if cs.spilled() => entries + cs.capacity() * size_of::<Chunk<N>>(),
            Repr::Chunked(_) => entries,
        }
    }

    /// Checks the bucket's shape (test helper): chunk sizes, counts and routing keys; the
    /// order is checked by the store.
    #[cfg(test)]
    pub(crate) fn check(&self) {
        match &self.repr {
            Repr::Flat(v) => assert!(v.len() <= CHUNK_TORRENTS, "flat bucket of {}", v.len()),
            Repr::Chunked(cs) => {
                assert!(cs.len() >= 2, "a chunked bucket of one chunk");
                for ch in cs {
                    assert!(
                        (1..=CHUNK_TORRENTS).contains(&ch.v.len()),
                        "chunk of {}",
                        ch.v.len()
                    );
                    assert_eq!(ch.key, route_key(&ch.v[0].info_hash), "routing key");
                }
            }
        }
    }

    /// The number of chunks (test helper).
    #[cfg(test)]
    pub(crate) fn chunk_count(&self) -> usize {
        match &self.repr {
            Repr::Flat(_) => 1,
            Repr::Chunked(cs) => cs.len(),
        }
    }
}

/// Chunk `c` is small: merges it with a neighbour (the next one, or the previous one for the
/// last chunk) when both fit one chunk, else moves torrents between them so each holds half.
fn rebalance<const N: usize>(cs: &mut Chunks<N>, c: usize) {
    if cs.len() < 2 || c >= cs.len() {
        return;
    }
    let a = if c + 1 < cs.len() { c } else { c - 1 };
    let (la, lb) = (cs[a].v.len(), cs[a + 1].v.len());
    if la + lb <= CHUNK_TORRENTS {
        let b = cs.remove(a + 1);
        cs[a].v.reserve_exact(b.v.len());
        cs[a].v.extend(b.v);
        cs[a].rekey();
        return;
    }
    let want = (la + lb) / 2;
    if la < want {
        let moved: Vec<Torrent<N>> = cs[a + 1].v.drain(..want - la).collect();
        cs[a].v.reserve_exact(moved.len());
        cs[a].v.extend(moved);
        shrink_chunk(&mut cs[a + 1].v);
    } else {
        let moved: Vec<Torrent<N>> = cs[a].v.drain(want..).collect();
        shrink_chunk(&mut cs[a].v);
        let b = &mut cs[a + 1].v;
        b.reserve_exact(moved.len());
        b.splice(0..0, moved);
    }
    cs[a].rekey();
    cs[a + 1].rekey();
}

impl<const N: usize> std::ops::Index<Pos> for Bucket<N> {
    type Output = Torrent<N>;

    /// The torrent at `pos`; panics when there is none (positions come from a search).
    fn index(&self, pos: Pos) -> &Torrent<N> {
        match self.get(pos) {
            Some(t) => t,
            None => panic!("no torrent at {pos:?}"),
        }
    }
}

impl<'a, const N: usize> IntoIterator for &'a Bucket<N> {
    type Item = &'a Torrent<N>;
    type IntoIter = Box<dyn Iterator<Item = &'a Torrent<N>> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(i: u32) -> Torrent<6> {
        let mut h = [0x42u8; 20];
        h[4..8].copy_from_slice(&i.to_be_bytes());
        Torrent::new(h, 0)
    }

    fn keys(b: &Bucket<6>) -> Vec<u32> {
        b.iter()
            .map(|t| u32::from_be_bytes(t.info_hash[4..8].try_into().unwrap()))
            .collect()
    }

    #[test]
    fn matches_a_sorted_vector_under_random_changes() {
        let mut rng = fastrand::Rng::with_seed(5);
        let mut b = Bucket::<6>::new();
        let mut model: Vec<u32> = vec![];
        for round in 0..6 {
            for _ in 0..6000 {
                let k = rng.u32(..20_000);
                let grow = round % 2 == 0 || rng.u8(..5) == 0;
                match b.find(&t(k).info_hash) {
                    Ok(p) => {
                        assert_eq!(b[p].info_hash, t(k).info_hash);
                        if !grow {
                            let gone = b.remove(p).unwrap();
                            assert_eq!(gone.info_hash, t(k).info_hash);
                            model.retain(|&x| x != k);
                        }
                    }
                    Err(p) => {
                        if grow {
                            let at = b.insert(p, t(k));
                            assert_eq!(b[at].info_hash, t(k).info_hash);
                            let i = model.partition_point(|&x| x < k);
                            model.insert(i, k);
                        }
                    }
                }
                b.check();
            }
            assert_eq!(keys(&b), model, "round {round}");
            if round == 4 {
                b.retain(|t| t.info_hash[7] % 7 == 0);
                model.retain(|k| (k & 0xff) % 7 == 0);
                b.check();
                assert_eq!(keys(&b), model);
            }
        }
        // Walking: next/prev/iter_from agree with the order.
        let mut p = b.first();
        let mut n = 0;
        let mut last = None;
        while let Some(pos) = p {
            assert_eq!(b.prev(pos), last);
            assert_eq!(b.iter_from(pos).count(), model.len() - n);
            last = Some(pos);
            p = b.next(pos);
            n += 1;
        }
        assert_eq!(n, model.len());
    }

    #[test]
    fn front_inserts_move_one_chunk_and_the_bucket_stays_chunked() {
        let mut b = Bucket::<6>::new();
        // Descending: every insert lands at the front.
        for k in (0..20_000u32).rev() {
            let p = b.find(&t(k).info_hash).unwrap_err();
            assert_eq!(p, Pos::default());
            b.insert(p, t(k));
        }
        b.check();
        assert!(b.chunk_count() >= 20_000 / CHUNK_TORRENTS);
        assert_eq!(keys(&b), (0..20_000).collect::<Vec<_>>());
        // A loop of remove/insert at the front never merges or splits forever.
        for _ in 0..1000 {
            let gone = b.remove(Pos::default()).unwrap();
            let p = b.find(&gone.info_hash).unwrap_err();
            b.insert(p, gone);
            b.check();
        }
        // Down to a few: flat again.
        b.retain(|t| t.info_hash[7] < 5);
        b.check();
        assert!(
            b.chunk_count() >= 2,
            "395 torrents: chunks at least a quarter full"
        );
        assert_eq!(b.len(), 5 * (20_000 / 256) + 5);
        b.retain(|t| t.info_hash[7] < 2);
        b.check();
        assert_eq!(b.chunk_count(), 1, "158 torrents: one vector");
        let p = b.partition_point(|t| t.info_hash[4..8] < 5000u32.to_be_bytes()[..]);
        assert_eq!(b.get(p.unwrap()).unwrap().info_hash, t(5120).info_hash);
        assert_eq!(b.len(), 2 * (20_000 / 256) + 2);
        assert!(b.partition_point(|_| true).is_none());
        let lb = |k: u32, after: bool| {
            b.lower_bound(&t(k).info_hash, after)
                .map(|p| b[p].info_hash)
        };
        assert_eq!(lb(5000, false), Some(t(5120).info_hash));
        assert_eq!(lb(5120, false), Some(t(5120).info_hash));
        assert_eq!(lb(5120, true), Some(t(5121).info_hash));
        assert_eq!(lb(19_969, true), None);
    }
}
