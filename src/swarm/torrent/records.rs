//! The packed records of one swarm: [`PeerVec`], its layout (addresses, then META nibbles,
//! in one block: INLINE, in a slab slot or in a block of its own) as the [`super`] module docs
//! describe it, and the nibble helpers.
//!
//! All the unsafe code of a swarm's storage lives here, private to this module: the `Data`
//! union, the raw block pointer, `parts`/`parts_mut`, `relocate`, `free_storage` and `Drop`.
//! Code outside sees safe methods over byte slices; the blocks it hands in come from the
//! [`Slab`] passed to every method that can change `len`, and from the [`slab::Moved`] of that
//! same slab in [`PeerVec::apply_move`]. [`super`] re-exports the public items, so their paths
//! stay `swarm::torrent::*`.

use std::alloc::{self, Layout};
use std::fmt;
use std::ptr;

use crate::swarm::slab::{self, KEY, SLAB_BYTES, Slab};

/// META bit 3: the peer is a seeder (its last announce had `left=0`).
pub const SEEDER: u8 = 0x8;
/// META bits 0..2: the stamp, the tick of the peer's last announce mod 8.
pub const STAMP_MASK: u8 = 0x7;

/// Bytes of a block of `cap` records of `n`-byte addresses: the owner's key
/// ([`slab::KEY`] bytes), `cap * n` address bytes, `ceil(cap / 2)` META bytes.
pub const fn block_bytes(n: usize, cap: usize) -> usize {
    KEY + cap * n + cap.div_ceil(2)
}

/// The largest `len` whose block (in its size class) fits in [`SLAB_BYTES`].
const fn slab_max(n: usize) -> usize {
    let mut len = 1;
    while block_bytes(n, slab::class_cap(len + 1)) <= SLAB_BYTES {
        len += 1;
    }
    len
}

/// An integer with the order of the address bytes (memcmp order): the bytes big-endian in a
/// u128, for addresses of up to 16 bytes, else the first 16 bytes with the rest after them. One
/// integer comparison instead of a `memcmp` call per step of a binary search.
#[inline]
fn sort_key<const N: usize>(a: &[u8; N]) -> (u128, u32) {
    const { assert!(N <= 20, "addresses of up to 20 bytes") };
    let mut hi = [0u8; 16];
    let mut lo = [0u8; 4];
    let n = N.min(16);
    hi[..n].copy_from_slice(&a[..n]);
    if N > 16 {
        let m = (N - 16).min(4);
        lo[..m].copy_from_slice(&a[16..16 + m]);
    }
    (u128::from_be_bytes(hi), u32::from_be_bytes(lo))
}

/// The nibble of record `i` in packed META bytes (0 when out of range).
#[inline]
pub fn nibble(metas: &[u8], i: usize) -> u8 {
    metas.get(i / 2).map_or(0, |b| (b >> ((i & 1) * 4)) & 0xf)
}

/// True when the nibble of record `i` has any of the META `bits` (e.g. [`SEEDER`]) set; false
/// when out of range. Tests the bits in place, without extracting the nibble (the selection
/// calls this for every pick).
#[inline]
pub fn nibble_has(metas: &[u8], i: usize, bits: u8) -> bool {
    metas
        .get(i >> 1)
        .is_some_and(|b| b & ((bits & 0xf) << ((i & 1) << 2)) != 0)
}

/// Sets the nibble of record `i` (nothing when out of range).
#[inline]
fn set_nibble(metas: &mut [u8], i: usize, v: u8) {
    if let Some(b) = metas.get_mut(i / 2) {
        let sh = (i & 1) * 4;
        *b = (*b & !(0xf << sh)) | ((v & 0xf) << sh);
    }
}

/// Shifts nibbles `i..n` up by one (to `i + 1..=n`) and writes `v` at `i`. Needs
/// `metas.len() * 2 > n`.
fn nibble_insert(metas: &mut [u8], i: usize, n: usize, v: u8) {
    let k0 = i / 2;
    let Some(&first) = metas.get(k0) else {
        return;
    };
    // The byte holding nibble i: its high nibble always moves on to the next byte.
    let mut carry = first >> 4;
    metas[k0] = if i & 1 == 0 {
        (first << 4) | (v & 0xf)
    } else {
        (first & 0xf) | ((v & 0xf) << 4)
    };
    for b in metas.iter_mut().take(n / 2 + 1).skip(k0 + 1) {
        let o = *b;
        *b = (o << 4) | carry;
        carry = o >> 4;
    }
}

/// Shifts nibbles `i + 1..n` down by one (to `i..n - 1`), dropping nibble `i`.
fn nibble_remove(metas: &mut [u8], i: usize, n: usize) {
    let k0 = i / 2;
    let last = n.saturating_sub(1) / 2;
    if k0 >= metas.len() {
        return;
    }
    let next = |m: &[u8], k: usize| {
        if k < last {
            m.get(k + 1).copied().unwrap_or(0)
        } else {
            0
        }
    };
    let o = metas[k0];
    let nx = next(metas, k0);
    metas[k0] = if i & 1 == 0 {
        (o >> 4) | (nx << 4)
    } else {
        (o & 0xf) | (nx << 4)
    };
    for k in k0 + 1..=last.min(metas.len() - 1) {
        let nx = next(metas, k);
        metas[k] = (metas[k] >> 4) | (nx << 4);
    }
}

/// The record storage of one swarm: `len` records sorted by address, stored as the module docs
/// say. 16 bytes.
///
/// The unsafe part is small: `parts`, `parts_mut`, `relocate` and `Drop`. Everything else
/// works on the safe byte slices `parts` returns.
///
/// Invariants (checked by `debug_assert!` and by the tests):
/// 1. `len == 0`: no storage. `len == 1` and [`Self::INLINE`]: `data.inline` is the union field
///    last written and holds the address then the nibble.
/// 2. `2 <= len <= SLAB_MAX` (or `len == 1` for IPv6): `data.ptr` is slot `aux` of the slab's
///    class of `len` records, `block_bytes(class_cap(len))` initialized bytes.
/// 3. `len > SLAB_MAX`: `data.ptr` is a block of the global allocator with layout
///    `(block_bytes(aux), 1)`, all initialized, and `len <= aux`.
pub struct PeerVec<const N: usize> {
    len: u32,
    /// Slot number (slab storage) or capacity in records (own block); 0 otherwise.
    aux: u32,
    data: Data,
}

/// The 8 data bytes of a [`PeerVec`]: a block pointer or one inline record.
#[derive(Clone, Copy)]
union Data {
    ptr: *mut u8,
    inline: [u8; 8],
}

// SAFETY: a PeerVec owns its block (its own one, or its slab slot, which only it uses) and has
// no interior mutability, so it may move to or be shared with another thread (with its slab).
unsafe impl<const N: usize> Send for PeerVec<N> {}
// SAFETY: as above; `&PeerVec` only gives read access to the bytes.
unsafe impl<const N: usize> Sync for PeerVec<N> {}

/// Where the records of a swarm of some `len` live.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Empty,
    Inline,
    Slab,
    Own,
}

impl<const N: usize> PeerVec<N> {
    /// Whether one record (`N` bytes and the nibble) fits in the 8 inline bytes: true for IPv4,
    /// false for IPv6.
    pub const INLINE: bool = N < 8;
    /// Swarms of up to this many peers keep their block in the slab (see the module docs).
    pub const SLAB_MAX: usize = slab_max(N);

    /// A [`Slab`] for swarms of this address family.
    pub fn new_slab() -> Slab {
        Slab::new(|cap| block_bytes(N, cap))
    }

    /// An empty swarm (no storage).
    pub const fn new() -> Self {
        PeerVec {
            len: 0,
            aux: 0,
            data: Data { inline: [0; 8] },
        }
    }

    /// Number of peers.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True when there is no peer.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn kind(len: usize) -> Kind {
        if len == 0 {
            Kind::Empty
        } else if len == 1 && Self::INLINE {
            Kind::Inline
        } else if len <= Self::SLAB_MAX {
            Kind::Slab
        } else {
            Kind::Own
        }
    }

    /// Records the storage holds (its `cap`); 1 when INLINE, 0 when empty.
    pub fn capacity(&self) -> usize {
        let len = self.len();
        match Self::kind(len) {
            Kind::Empty => 0,
            Kind::Inline => 1,
            Kind::Slab => slab::class_cap(len),
            Kind::Own => self.aux as usize,
        }
    }

    /// True when the only record lives in the inline bytes (no block).
    pub fn is_inline(&self) -> bool {
        Self::kind(self.len()) == Kind::Inline
    }

    /// True when the records live in a slab slot.
    pub fn in_slab(&self) -> bool {
        Self::kind(self.len()) == Kind::Slab
    }

    /// Bytes of the block (0 when empty or INLINE).
    pub fn heap_bytes(&self) -> usize {
        match Self::kind(self.len()) {
            Kind::Empty | Kind::Inline => 0,
            _ => block_bytes(N, self.capacity()),
        }
    }

    /// The whole storage: (`cap * N` address bytes, `ceil(cap / 2)` META bytes).
    fn parts(&self) -> (&[u8], &[u8]) {
        match Self::kind(self.len()) {
            Kind::Empty => (&[], &[]),
            Kind::Inline => {
                // SAFETY: invariant 1: the inline field is the live one; any bytes are valid.
                let b = unsafe { &self.data.inline };
                b.split_at(N.min(7))
            }
            _ => {
                let cap = self.capacity();
                // SAFETY: invariants 2 and 3: ptr is a live block of block_bytes(N, cap)
                // initialized bytes used only by self, borrowed immutably for &self's lifetime.
                let all = unsafe { std::slice::from_raw_parts(self.data.ptr, block_bytes(N, cap)) };
                all[KEY..].split_at(cap * N)
            }
        }
    }

    /// Mutable view of [`Self::parts`].
    fn parts_mut(&mut self) -> (&mut [u8], &mut [u8]) {
        match Self::kind(self.len()) {
            Kind::Empty => (&mut [], &mut []),
            Kind::Inline => {
                // SAFETY: as in `parts`; &mut self gives exclusive access.
                let b = unsafe { &mut self.data.inline };
                b.split_at_mut(N.min(7))
            }
            _ => {
                let cap = self.capacity();
                // SAFETY: as in `parts`; &mut self gives exclusive access to the block.
                let all =
                    unsafe { std::slice::from_raw_parts_mut(self.data.ptr, block_bytes(N, cap)) };
                all[KEY..].split_at_mut(cap * N)
            }
        }
    }

    /// The capacity an own block for `new_len` records should have, given the current `len`
    /// and `aux`; `None` when the current own block stays.
    fn own_cap(&self, new_len: usize) -> Option<usize> {
        let len = self.len();
        if Self::kind(len) == Kind::Own {
            let cap = self.aux as usize;
            if new_len <= cap && new_len >= cap / 2 {
                return None;
            }
            if new_len > cap {
                return Some(new_len.max(cap + cap / 8));
            }
        }
        Some(new_len + new_len / 8)
    }

    /// The owner's key stored at the start of the block (zeros when INLINE or empty).
    pub fn key(&self) -> [u8; KEY] {
        let mut k = [0u8; KEY];
        if matches!(Self::kind(self.len()), Kind::Slab | Kind::Own) {
            // SAFETY: invariants 2 and 3: a block starts with KEY initialized bytes.
            unsafe { ptr::copy_nonoverlapping(self.data.ptr, k.as_mut_ptr(), KEY) };
        }
        k
    }

    /// Points a slab swarm at the slot its block was moved to (see [`slab::Moved`]); false
    /// (nothing changed) unless the swarm is in slot `m.from` of class `m.class`.
    pub fn apply_move(&mut self, m: &slab::Moved) -> bool {
        let len = self.len();
        if !self.in_slab() || slab::class_index(len) != m.class || self.aux != m.from {
            return false;
        }
        self.aux = m.to;
        self.data = Data { ptr: m.ptr };
        true
    }

    /// Moves the first `copy` records (`copy <= min(len, new_len)`) from the storage of the
    /// current `len` to the storage of `new_len` records, unless that is the same storage.
    /// A new block gets the old block's key, or `key` when there was no block. Does not change
    /// `len`; the caller sets it to `new_len` right after. Returns false (nothing changed) when
    /// no storage can be had (more than `u32::MAX` records). Freeing a slab slot may
    /// leave a move in the slab for the store to apply.
    fn relocate(&mut self, slab: &mut Slab, new_len: usize, copy: usize, key: &[u8; KEY]) -> bool {
        let len = self.len();
        let (old_kind, new_kind) = (Self::kind(len), Self::kind(new_len));
        debug_assert!(copy <= len.min(new_len));
        let new_cap = match new_kind {
            Kind::Empty => 0,
            Kind::Inline => 1,
            Kind::Slab => slab::class_cap(new_len),
            Kind::Own => match self.own_cap(new_len) {
                None => return true,
                Some(c) => c,
            },
        };
        let same = old_kind == new_kind
            && match old_kind {
                Kind::Empty | Kind::Inline => true,
                Kind::Slab => slab::class_index(len) == slab::class_index(new_len),
                Kind::Own => false, // own_cap said it moves
            };
        if same || new_cap > u32::MAX as usize {
            return same;
        }
        let key = match old_kind {
            Kind::Slab | Kind::Own => self.key(),
            _ => *key,
        };
        // Allocate the new storage.
        let mut new = PeerVec::<N> {
            len: new_len as u32,
            aux: 0,
            data: Data { inline: [0; 8] },
        };
        match new_kind {
            Kind::Empty | Kind::Inline => {}
            Kind::Slab => {
                let Some(s) = slab.alloc(new_len) else {
                    return false;
                };
                new.aux = s.id;
                new.data = Data { ptr: s.ptr };
            }
            Kind::Own => {
                let Ok(layout) = Layout::from_size_align(block_bytes(N, new_cap), 1) else {
                    return false;
                };
                // SAFETY: the layout's size is > 0 (new_cap > SLAB_MAX > 0).
                let p = unsafe { alloc::alloc_zeroed(layout) };
                if p.is_null() {
                    alloc::handle_alloc_error(layout);
                }
                new.aux = new_cap as u32;
                new.data = Data { ptr: p };
            }
        }
        if matches!(new_kind, Kind::Slab | Kind::Own) {
            // SAFETY: the new block starts with KEY bytes it owns.
            unsafe { ptr::copy_nonoverlapping(key.as_ptr(), new.data.ptr, KEY) };
        }
        // Copy the records.
        {
            let (oa, om) = self.parts();
            let (na, nm) = new.parts_mut();
            na[..copy * N].copy_from_slice(&oa[..copy * N]);
            // Both nibble arrays start at record 0: whole bytes copy (with an odd `copy`, the
            // spare high nibble of the last byte comes along; nothing reads past `len`).
            let m = copy.div_ceil(2);
            nm[..m].copy_from_slice(&om[..m]);
        }
        // Free the old storage and take the new.
        self.free_storage(slab);
        self.aux = new.aux;
        self.data = new.data;
        // `new` owns nothing any more (its storage moved to self); len 0 makes its drop a no-op.
        new.len = 0;
        true
    }

    /// Frees the storage of the current `len` (slab slot or own block). Leaves `data`/`aux`
    /// dangling: the caller overwrites them.
    fn free_storage(&mut self, slab: &mut Slab) {
        let len = self.len();
        match Self::kind(len) {
            Kind::Empty | Kind::Inline => {}
            Kind::Slab => slab.free(len, self.aux),
            Kind::Own => {
                if let Ok(layout) = Layout::from_size_align(block_bytes(N, self.aux as usize), 1) {
                    // SAFETY: invariant 3: ptr is a live block with exactly this layout, not
                    // used after this.
                    unsafe { alloc::dealloc(self.data.ptr, layout) };
                }
            }
        }
        self.aux = 0;
        self.data = Data { inline: [0; 8] };
    }

    /// The `len * N` address bytes, in sorted order.
    pub fn addrs(&self) -> &[u8] {
        let n = self.len() * N;
        self.parts().0.get(..n).unwrap_or(&[])
    }

    /// The packed META nibbles (at least `ceil(len / 2)` bytes; read them with [`nibble`]).
    pub fn metas(&self) -> &[u8] {
        self.parts().1
    }

    /// The compact address (N bytes) of record `i`, `None` if `i >= len`.
    pub fn addr(&self, i: usize) -> Option<&[u8; N]> {
        self.addrs().get(i.checked_mul(N)?..)?.first_chunk::<N>()
    }

    /// The META nibble of record `i`, `None` if `i >= len`.
    pub fn meta(&self, i: usize) -> Option<u8> {
        (i < self.len()).then(|| nibble(self.metas(), i))
    }

    /// Replaces the META nibble of record `i` (low 4 bits of `meta`); false (nothing changed) if
    /// `i >= len`.
    pub fn set_meta(&mut self, i: usize, meta: u8) -> bool {
        if i >= self.len() {
            return false;
        }
        set_nibble(self.parts_mut().1, i, meta);
        true
    }

    /// Binary search by compact address: `Ok(index)` of the record, or `Err(index)` where it
    /// would be inserted to keep the order.
    pub fn search(&self, addr: &[u8; N]) -> Result<usize, usize> {
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

    /// Inserts a record at `index` (which must be the position [`Self::search`] returned, to
    /// keep the order), moving the records to bigger storage when needed; `key` names the
    /// owner in a first block (see [`slab`]). Returns false (nothing changed) if `index > len`
    /// or the swarm cannot grow (`u32::MAX` records). The caller applies the slab's move.
    pub fn insert(
        &mut self,
        slab: &mut Slab,
        key: &[u8; KEY],
        index: usize,
        addr: &[u8; N],
        meta: u8,
    ) -> bool {
        let len = self.len();
        if index > len || len >= u32::MAX as usize {
            return false;
        }
        if !self.relocate(slab, len + 1, len, key) {
            return false;
        }
        self.len += 1;
        let (a, m) = self.parts_mut();
        a.copy_within(index * N..len * N, (index + 1) * N);
        a[index * N..index * N + N].copy_from_slice(addr);
        nibble_insert(m, index, len, meta);
        true
    }

    /// Removes record `index` and returns its META nibble, `None` if `index >= len`. May move
    /// the records to smaller storage (the caller applies the slab's move).
    pub fn remove(&mut self, slab: &mut Slab, index: usize) -> Option<u8> {
        let len = self.len();
        if index >= len {
            return None;
        }
        let (a, m) = self.parts_mut();
        let meta = nibble(m, index);
        a.copy_within((index + 1) * N..len * N, index * N);
        nibble_remove(m, index, len);
        // Shrinking always finds storage (or keeps the old one).
        self.relocate(slab, len - 1, len - 1, &[0; KEY]);
        self.len -= 1;
        Some(meta)
    }

    /// Keeps the records for which `keep(addr, meta)` is true, in order, with one compaction
    /// pass (each kept record moves at most once), then may move them to smaller storage (the
    /// caller applies the slab's move). Returns the number of records removed.
    pub fn retain(&mut self, slab: &mut Slab, mut keep: impl FnMut(&[u8; N], u8) -> bool) -> usize {
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
        self.relocate(slab, w, w, &[0; KEY]);
        self.len = w as u32;
        len - w
    }

    /// Removes every record and frees the storage (the caller applies the slab's move).
    pub fn clear(&mut self, slab: &mut Slab) {
        self.free_storage(slab);
        self.len = 0;
    }

    /// The records in order: (compact address, META nibble).
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8; N], u8)> + '_ {
        let metas = self.metas();
        self.addrs()
            .chunks_exact(N)
            .enumerate()
            .map(move |(i, rec)| {
                (
                    rec.first_chunk::<N>().unwrap_or(&[0u8; N]),
                    nibble(metas, i),
                )
            })
    }

    /// Checks the storage invariants (test helper).
    #[cfg(test)]
    pub(crate) fn check(&self) {
        let len = self.len();
        assert_eq!(self.addrs().len(), len * N);
        assert!(self.metas().len() * 2 >= len);
        if Self::kind(len) == Kind::Own {
            assert!(len <= self.aux as usize && len > Self::SLAB_MAX);
        }
        for w in self.addrs().chunks_exact(N).collect::<Vec<_>>().windows(2) {
            assert!(w[0] < w[1], "records not strictly sorted");
        }
    }
}

impl<const N: usize> Default for PeerVec<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Drop for PeerVec<N> {
    /// Frees an own block. A slab slot is not freed here (the slab is not at hand): the store
    /// clears a swarm before dropping it, and the slab frees every chunk when it is dropped.
    fn drop(&mut self) {
        if Self::kind(self.len()) == Kind::Own {
            if let Ok(layout) = Layout::from_size_align(block_bytes(N, self.aux as usize), 1) {
                // SAFETY: invariant 3: ptr is a live block with exactly this layout, not used
                // after this.
                unsafe { alloc::dealloc(self.data.ptr, layout) };
            }
        }
    }
}

const _: () = assert!(size_of::<PeerVec<6>>() == 16);

impl<const N: usize> fmt::Debug for PeerVec<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerVec")
            .field("len", &self.len)
            .field("cap", &self.capacity())
            .field("kind", &Self::kind(self.len()))
            .finish()
    }
}

#[cfg(test)]
mod tests;
