//! The flat-run operations of [`PeerVec`]: search, insert, remove and retain over one sorted
//! run of records, and the copies that split and join runs (the chunks of a big swarm). Safe
//! code over the byte slices `parts`/`parts_mut` give; the storage moves are in the parent.

use super::*;

impl<const N: usize> PeerVec<N> {
    /// [`Self::search`] in a flat swarm.
    #[inline]
    pub(super) fn flat_search(&self, addr: &[u8; N]) -> Result<usize, usize> {
        let bytes = self.addrs();
        let want = sort_key(addr);
        let (mut lo, mut hi) = (0usize, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let Some(key) = bytes.get(mid * N..).and_then(|b| b.first_chunk::<N>()) else {
                return Err(lo);
            };
            match sort_key(key).cmp(&want) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    /// [`Self::insert`] at index `index` of a flat swarm, staying flat whatever its length.
    pub(super) fn flat_insert(
        &mut self,
        slab: &mut Slab<N>,
        key: &[u8; KEY],
        index: usize,
        addr: &[u8; N],
        meta: u8,
    ) -> Option<Move> {
        let len = self.len();
        if index > len || len >= u32::MAX as usize {
            return None;
        }
        let moved = self.relocate(slab, len + 1, len, key)?;
        self.len += 1;
        let (a, m) = self.parts_mut();
        a.copy_within(index * N..len * N, (index + 1) * N);
        a[index * N..index * N + N].copy_from_slice(addr);
        nibble_insert(m, index, len, meta);
        Some(moved)
    }

    /// [`Self::remove`] at index `index` of a flat swarm.
    pub(super) fn flat_remove(&mut self, slab: &mut Slab<N>, index: usize) -> Option<(u8, Move)> {
        let len = self.len();
        if index >= len {
            return None;
        }
        let (a, m) = self.parts_mut();
        let meta = nibble(m, index);
        a.copy_within((index + 1) * N..len * N, index * N);
        nibble_remove(m, index, len);
        // Shrinking always finds storage (or keeps the old one).
        let moved = self
            .relocate(slab, len - 1, len - 1, &[0; KEY])
            .unwrap_or(Move::NONE);
        self.len -= 1;
        Some((meta, moved))
    }

    /// [`Self::retain`] of a flat swarm.
    pub(super) fn flat_retain(
        &mut self,
        slab: &mut Slab<N>,
        keep: &mut impl FnMut(&[u8; N], u8) -> bool,
    ) -> (usize, Move) {
        let len = self.len();
        let (a, m) = self.parts_mut();
        let mut w = 0;
        for rd in 0..len {
            let Some(addr) = a.get(rd * N..).and_then(|s| s.first_chunk::<N>()) else {
                continue;
            };
            let meta = nibble(m, rd);
            if keep(addr, meta) {
                if w != rd {
                    a.copy_within(rd * N..rd * N + N, w * N);
                    set_nibble(m, w, meta);
                }
                w += 1;
            }
        }
        let moved = self.relocate(slab, w, w, &[0; KEY]).unwrap_or(Move::NONE);
        self.len = w as u32;
        (len - w, moved)
    }

    /// A new flat swarm holding a copy of records `from..to` of this flat swarm, in a block of
    /// its own with 1/8 of room (or inline), marked `NO_SLAB`: a chunk of a big swarm.
    pub(super) fn copy_range(&self, slab: &mut Slab<N>, from: usize, to: usize) -> PeerVec<N> {
        let to = to.min(self.len());
        let from = from.min(to);
        let n = to - from;
        let mut out = PeerVec::<N> {
            len: 0,
            aux: NO_SLAB,
            data: Data { inline: [0; 8] },
        };
        // From no storage to a fresh own block (or the inline bytes): nothing is freed, so no
        // move; the allocation succeeds or aborts.
        if let Some(fresh) = out.relocate(slab, n, 0, &self.key()) {
            assert!(fresh.is_none(), "a fresh chunk freed a slot");
            out.len = n as u32;
            let (sa, sm) = self.parts();
            let (oa, om) = out.parts_mut();
            oa[..n * N].copy_from_slice(&sa[from * N..to * N]);
            copy_nibbles(sm, from, om, 0, n);
        }
        out
    }

    /// Splits a flat swarm at `at`: this one keeps records `0..at`, the returned one gets
    /// `at..len`; both end in blocks of their own sized to their records, marked `NO_SLAB`
    /// (chunks of a big swarm). Returns the slab's move of freeing the old storage.
    pub(super) fn split_off(&mut self, slab: &mut Slab<N>, at: usize) -> (PeerVec<N>, Move) {
        let len = self.len();
        let at = at.min(len);
        let tail = self.copy_range(slab, at, len);
        let head = self.copy_range(slab, 0, at);
        let moved = self.free_storage(slab);
        self.len = 0;
        *self = head;
        (tail, moved)
    }

    /// Appends the records of `other` (all greater than this swarm's) to this flat swarm;
    /// `other` ends empty. Returns the slab's moves of both (`other` first).
    pub(super) fn append(&mut self, slab: &mut Slab<N>, other: &mut PeerVec<N>) -> (Move, Move) {
        let (len, n) = (self.len(), other.len());
        let key = if self.is_empty() {
            other.key()
        } else {
            self.key()
        };
        let Some(moved) = self.relocate(slab, len + n, len, &key) else {
            return (Move::NONE, Move::NONE);
        };
        self.len = (len + n) as u32;
        {
            let (oa, om) = other.parts();
            let (a, m) = self.parts_mut();
            a[len * N..(len + n) * N].copy_from_slice(&oa[..n * N]);
            copy_nibbles(om, 0, m, len, n);
        }
        let freed = other.free_storage(slab);
        other.len = 0;
        (freed, moved)
    }
}
