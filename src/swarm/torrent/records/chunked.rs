//! Big swarms: the records of a swarm of more than [`PeerVec::CHUNK_MAX`] peers, in CHUNKS.
//!
//! A chunk is a flat swarm of 1 to `CHUNK_MAX` records (a block of its own of at most
//! [`super::CHUNK_BYTES`], never a slab slot), with its seeder count; the directory lists the
//! chunks in address order, so the swarm is still one sorted sequence (as a B-tree of two
//! levels). This bounds the cost of one change whatever the addresses: an IPv6 /64 gives an
//! attacker as many peer addresses as it wants, all adjacent, and one sorted block of a million
//! peers would move 18 MB for each insert at its front.
//!
//! - Lookup: a binary search over the chunks' first addresses, then one in the chunk.
//! - Insert: into its chunk (a memmove of at most 16 KiB); a full chunk is first split in two
//!   halves, each copied into a block of its own, and the directory grows by one entry (24
//!   bytes per chunk: 36 KB at a million IPv6 peers).
//! - Remove: from its chunk; a chunk under a quarter full is merged with a neighbour, or
//!   evened out with it when both would not fit one chunk, so after a split half a chunk of
//!   changes must happen before the next merge (no thrashing on a loop at a boundary).
//! - The whole swarm goes back to one block when it falls to `CHUNK_MAX / 2` records.
//!
//! A POSITION in a chunked swarm is `chunk << 16 | index in the chunk` (`CHUNK_MAX < 2^16`).
//! The seeder counts per chunk let the peer selection skip chunks without a candidate (see
//! [`crate::swarm::select`]). Every function here uses the safe methods of the chunks'
//! `PeerVec`s; the directory pointer itself is handled in [`super`].

#[cfg(test)]
use super::Kind;
use super::{Move, NO_SLAB, PeerVec, SEEDER, Slab, count_seeders, sort_key};

/// Bits of a position that hold the index within the chunk.
const SHIFT: usize = 16;
const _: () = assert!(PeerVec::<6>::CHUNK_MAX < 1 << SHIFT);
const _: () = assert!(PeerVec::<18>::CHUNK_MAX < 1 << SHIFT);

/// The position of record `o` of chunk `c`.
pub(super) fn pack(c: usize, o: usize) -> usize {
    c << SHIFT | o
}

/// The chunk and the index in it of a position.
pub(super) fn unpack(pos: usize) -> (usize, usize) {
    (pos >> SHIFT, pos & ((1 << SHIFT) - 1))
}

/// Chunks never use the slab, so their changes never move a slab block: checked (a move that
/// is not applied would also panic when dropped).
fn no_move(m: Move) {
    assert!(m.is_none(), "a chunk of a big swarm used the slab: {m:?}");
}

/// One chunk of a big swarm: its records (a flat, `NO_SLAB` swarm) and how many are seeders.
pub(crate) struct Chunk<const N: usize> {
    peers: PeerVec<N>,
    seeders: u32,
}

impl<const N: usize> Chunk<N> {
    fn new(peers: PeerVec<N>) -> Self {
        let seeders = count_seeders(peers.metas(), peers.len()) as u32;
        Chunk { peers, seeders }
    }

    /// The chunk's records (a flat swarm: see [`PeerVec::flat`]).
    pub(crate) fn peers(&self) -> &PeerVec<N> {
        &self.peers
    }

    /// The number of its records with the SEEDER bit.
    pub(crate) fn seeders(&self) -> usize {
        self.seeders as usize
    }

    /// The number of its records.
    pub(crate) fn len(&self) -> usize {
        self.peers.len()
    }

    fn recount(&mut self) {
        self.seeders = count_seeders(self.peers.metas(), self.peers.len()) as u32;
    }
}

/// The chunk directory of a big swarm (boxed behind the swarm's data pointer).
pub(super) struct Dir<const N: usize> {
    pub(super) chunks: Vec<Chunk<N>>,
}

impl<const N: usize> Dir<N> {
    const MAX: usize = PeerVec::<N>::CHUNK_MAX;

    /// [`PeerVec::search`]: the last chunk whose first address is not above `addr`, then a
    /// binary search in it.
    pub(super) fn search(&self, addr: &[u8; N]) -> Result<usize, usize> {
        let want = sort_key(addr);
        let c = self
            .chunks
            .partition_point(|ch| ch.peers.addr(0).is_some_and(|a| sort_key(a) <= want))
            .saturating_sub(1);
        match self.chunks.get(c).map(|ch| ch.peers.flat_search(addr)) {
            Some(Ok(o)) => Ok(pack(c, o)),
            Some(Err(o)) => Err(pack(c, o)),
            None => Err(0),
        }
    }

    /// [`PeerVec::set_meta`], keeping the chunk's seeder count.
    pub(super) fn set_meta(&mut self, pos: usize, meta: u8) -> bool {
        let (c, o) = unpack(pos);
        let Some(ch) = self.chunks.get_mut(c) else {
            return false;
        };
        let Some(old) = ch.peers.meta(o) else {
            return false;
        };
        ch.peers.set_meta(o, meta);
        match (old & SEEDER != 0, meta & SEEDER != 0) {
            (false, true) => ch.seeders += 1,
            (true, false) => ch.seeders -= 1,
            _ => {}
        }
        true
    }

    /// Inserts a record at position `pos` (from [`Self::search`]), splitting a full chunk
    /// first. Returns the record's position, `None` (nothing changed) if `pos` is out of range.
    pub(super) fn insert(
        &mut self,
        slab: &mut Slab<N>,
        pos: usize,
        addr: &[u8; N],
        meta: u8,
    ) -> Option<usize> {
        let (mut c, mut o) = unpack(pos);
        let len = self.chunks.get(c)?.len();
        if o > len {
            return None;
        }
        if len >= Self::MAX {
            let half = len / 2;
            let (tail, m) = self.chunks[c].peers.split_off(slab, half);
            no_move(m);
            self.chunks[c].recount();
            self.chunks.insert(c + 1, Chunk::new(tail));
            if o > half {
                c += 1;
                o -= half;
            }
        }
        let ch = &mut self.chunks[c];
        let key = ch.peers.key();
        no_move(ch.peers.flat_insert(slab, &key, o, addr, meta)?);
        ch.seeders += u32::from(meta & SEEDER != 0);
        Some(pack(c, o))
    }

    /// Removes the record at position `pos` and returns its META nibble; a chunk left under a
    /// quarter full is merged with or evened out with a neighbour.
    pub(super) fn remove(&mut self, slab: &mut Slab<N>, pos: usize) -> Option<u8> {
        let (c, o) = unpack(pos);
        let ch = self.chunks.get_mut(c)?;
        let (meta, m) = ch.peers.flat_remove(slab, o)?;
        no_move(m);
        ch.seeders -= u32::from(meta & SEEDER != 0);
        if ch.len() < Self::MAX / 4 {
            self.rebalance(slab, c);
        }
        Some(meta)
    }

    /// Chunk `c` is small: merges it with a neighbour (the next one, or the previous one for
    /// the last chunk) when both fit one chunk, else moves records between them so that each
    /// holds half. Nothing when there is one chunk.
    fn rebalance(&mut self, slab: &mut Slab<N>, c: usize) {
        if self.chunks.len() < 2 || c >= self.chunks.len() {
            return;
        }
        let a = if c + 1 < self.chunks.len() { c } else { c - 1 };
        let (la, lb) = (self.chunks[a].len(), self.chunks[a + 1].len());
        if la + lb <= Self::MAX {
            let mut b = self.chunks.remove(a + 1);
            let (m1, m2) = self.chunks[a].peers.append(slab, &mut b.peers);
            no_move(m1);
            no_move(m2);
            self.chunks[a].seeders += b.seeders;
            return;
        }
        let want = (la + lb) / 2;
        if la < want {
            // The first `want - la` records of b go to the end of a.
            let (rest, m) = self.chunks[a + 1].peers.split_off(slab, want - la);
            no_move(m);
            let mut front = std::mem::replace(&mut self.chunks[a + 1].peers, rest);
            let (m1, m2) = self.chunks[a].peers.append(slab, &mut front);
            no_move(m1);
            no_move(m2);
        } else {
            // The last `la - want` records of a go to the front of b.
            let (mut moved, m) = self.chunks[a].peers.split_off(slab, want);
            no_move(m);
            let mut b = std::mem::take(&mut self.chunks[a + 1].peers);
            let (m1, m2) = moved.append(slab, &mut b);
            no_move(m1);
            no_move(m2);
            self.chunks[a + 1].peers = moved;
        }
        self.chunks[a].recount();
        self.chunks[a + 1].recount();
    }

    /// Checks the directory's invariants for a swarm of `len` records (test helper).
    #[cfg(test)]
    pub(super) fn check(&self, len: usize) {
        assert!(self.chunks.len() >= 2, "a directory of one chunk");
        let mut total = 0;
        for (i, ch) in self.chunks.iter().enumerate() {
            assert!(ch.peers.kind() != Kind::Chunked && ch.peers.slab_forbidden());
            assert!(
                (1..=Self::MAX).contains(&ch.len()),
                "chunk {i} of {}",
                ch.len()
            );
            ch.peers.check();
            assert_eq!(
                ch.seeders(),
                count_seeders(ch.peers.metas(), ch.len()),
                "seeders of chunk {i}"
            );
            if let Some(next) = self.chunks.get(i + 1) {
                let last = ch.peers.addr(ch.len() - 1).expect("a last record");
                let first = next.peers.addr(0).expect("a first record");
                assert!(last < first, "chunks {i} and {} overlap", i + 1);
            }
            total += ch.len();
        }
        assert_eq!(total, len, "chunk lengths");
    }
}

/// Turns a flat swarm of `CHUNK_MAX` records or more into a chunked one of two chunks (records
/// `0..half` and `half..`); returns `half`.
pub(super) fn make_chunked<const N: usize>(v: &mut PeerVec<N>, slab: &mut Slab<N>) -> usize {
    let len = v.len();
    let tags = v.aux & NO_SLAB;
    let mut first = std::mem::take(v);
    v.aux = tags;
    let half = len / 2;
    let (second, m) = first.split_off(slab, half);
    no_move(m);
    let chunks = vec![Chunk::new(first), Chunk::new(second)];
    v.set_dir(Dir { chunks }, len);
    half
}

/// Turns a chunked swarm back into a flat one (its records in one block, or in the slab, inline
/// or nothing, as the flat rules say for its length). Returns the slab's move.
pub(super) fn flatten<const N: usize>(v: &mut PeerVec<N>, slab: &mut Slab<N>) -> Move {
    let tags = v.aux & NO_SLAB;
    let Some(dir) = v.take_dir() else {
        return Move::NONE;
    };
    let mut chunks = dir.chunks.into_iter();
    let Some(first) = chunks.next() else {
        return Move::NONE;
    };
    let mut acc = first.peers;
    for mut ch in chunks {
        let (m1, m2) = acc.append(slab, &mut ch.peers);
        no_move(m1);
        no_move(m2);
    }
    // The chunks are NO_SLAB; the swarm takes back its own tag.
    acc.aux = (acc.aux & !NO_SLAB) | tags;
    *v = acc;
    let (n, key) = (v.len(), v.key());
    v.relocate(slab, n, n, &key).unwrap_or(Move::NONE)
}

/// [`PeerVec::retain`] of a chunked swarm: each chunk in one pass, then empty chunks go, small
/// ones are merged, and a swarm left with `CHUNK_MAX / 2` records or fewer becomes flat.
pub(super) fn retain<const N: usize>(
    v: &mut PeerVec<N>,
    slab: &mut Slab<N>,
    keep: &mut impl FnMut(&[u8; N], u8) -> bool,
) -> (usize, Move) {
    let Some(d) = v.dir_mut() else {
        return (0, Move::NONE);
    };
    let mut removed = 0;
    for ch in d.chunks.iter_mut() {
        let mut seeders = 0u32;
        let (r, m) = ch.peers.flat_retain(slab, &mut |a, meta| {
            let k = keep(a, meta);
            seeders += u32::from(k && meta & SEEDER != 0);
            k
        });
        no_move(m);
        ch.seeders = seeders;
        removed += r;
    }
    d.chunks.retain(|ch| !ch.peers.is_empty());
    let mut i = 0;
    while i < d.chunks.len() && d.chunks.len() >= 2 {
        if d.chunks[i].len() < Dir::<N>::MAX / 4 {
            let before = d.chunks.len();
            d.rebalance(slab, i);
            if d.chunks.len() == before {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    let few = d.chunks.len() < 2;
    v.len -= removed as u32;
    if few || v.len() <= PeerVec::<N>::CHUNK_MAX / 2 {
        return (removed, flatten(v, slab));
    }
    (removed, Move::NONE)
}
