//! The packed records of one swarm: [`PeerVec`], its layout (addresses, then META nibbles,
//! in one block: INLINE, in a slab slot, in a block of its own, or in CHUNKS for a big swarm)
//! as the [`super`] module docs describe it, and the nibble helpers.
//!
//! All the unsafe code of a swarm's storage lives here, private to this module: the `Data`
//! union, the raw block and directory pointers, `parts`/`parts_mut`, `relocate`,
//! `free_storage`, `dir`/`dir_mut` and `Drop`. Code outside sees safe methods over byte slices;
//! the blocks it hands in come from the [`Slab`] passed to every method that can change `len`,
//! and from a [`Move`] of that same slab in [`PeerVec::adopt`]. Every method that changes the
//! storage is private to the crate (only the store calls them, with its one slab) and returns
//! the slab's [`Move`], which the store must apply. The big-swarm algorithms (chunks kept
//! sorted, split and merged) are in the child module `chunked`, over safe methods only.
//! [`super`] re-exports the public items, so their paths stay `swarm::torrent::*`.

use std::alloc::{self, Layout};
use std::fmt;
use std::ptr;

use crate::swarm::slab::{self, KEY, Move, SLAB_BYTES, Slab, Slot};

mod chunked;

pub(crate) use chunked::Chunk;
use chunked::{Dir, pack, unpack};

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

/// Bytes of the block of one chunk of a big swarm, at most (16 KiB: one insert or remove moves at
/// most this many bytes, a few hundred nanoseconds).
pub const CHUNK_BYTES: usize = 16384;

/// The most records whose block fits in [`CHUNK_BYTES`].
const fn chunk_max(n: usize) -> usize {
    let mut m = 1;
    while block_bytes(n, m + 1) <= CHUNK_BYTES {
        m += 1;
    }
    m
}

/// `aux` bit 31, sticky: the swarm never takes a slab slot (its torrent shares its 4-byte
/// info_hash prefix with another one; see [`crate::swarm::store`]).
const NO_SLAB: u32 = 1 << 31;
/// `aux` bit 30: the records are in a block of their own; the low bits are its capacity.
const OWN: u32 = 1 << 30;
/// `aux` bit 29: the records are in chunks; `data.ptr` is the chunk directory.
const CHUNKED: u32 = 1 << 29;
/// `aux` low bits: the slot number (slab) or the capacity in records (own block).
const LOW: u32 = CHUNKED - 1;
const _: () = assert!(slab::MAX_SLOTS <= CHUNKED);

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

/// The first record in `from..end` whose SEEDER bit is `seeder` (a seeder when true, a leecher
/// when false), `None` if there is none. 16 records per step (one `u64` of nibbles) where
/// aligned, so a scan of a whole chunk of a big swarm costs about a hundred steps.
pub(crate) fn next_with_seeder_bit(
    metas: &[u8],
    from: usize,
    end: usize,
    seeder: bool,
) -> Option<usize> {
    let end = end.min(metas.len() * 2);
    let hit = |i: usize| nibble_has(metas, i, SEEDER) == seeder;
    let mut i = from;
    while i < end && i % 16 != 0 {
        if hit(i) {
            return Some(i);
        }
        i += 1;
    }
    // The SEEDER bit of every nibble: bit 3 of each half byte.
    const MASK: u64 = 0x8888_8888_8888_8888;
    while i + 16 <= end {
        let Some(bytes) = metas
            .get(i / 2..i / 2 + 8)
            .and_then(|b| b.first_chunk::<8>())
        else {
            break;
        };
        let w = u64::from_le_bytes(*bytes);
        let hits = if seeder { w & MASK } else { !w & MASK };
        if hits != 0 {
            // Byte k of the word holds records 2k (low half) and 2k + 1 (high half).
            return Some(i + (hits.trailing_zeros() / 4) as usize);
        }
        i += 16;
    }
    while i < end {
        if hit(i) {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// The number of records in `0..n` with the SEEDER bit.
pub(crate) fn count_seeders(metas: &[u8], n: usize) -> usize {
    let n = n.min(metas.len() * 2);
    let whole = metas[..n / 2]
        .iter()
        .map(|b| (b & 0x88).count_ones() as usize)
        .sum::<usize>();
    whole + usize::from(n % 2 == 1 && nibble_has(metas, n - 1, SEEDER))
}

/// Copies nibbles `from..from + n` of `src` to `to..to + n` of `dst` (whole bytes when both
/// start on a byte).
fn copy_nibbles(src: &[u8], from: usize, dst: &mut [u8], to: usize, n: usize) {
    if from % 2 == 0 && to % 2 == 0 {
        let whole = n / 2;
        if let (Some(s), Some(d)) = (
            src.get(from / 2..from / 2 + whole),
            dst.get_mut(to / 2..to / 2 + whole),
        ) {
            d.copy_from_slice(s);
        }
        if n % 2 == 1 {
            set_nibble(dst, to + n - 1, nibble(src, from + n - 1));
        }
        return;
    }
    for k in 0..n {
        set_nibble(dst, to + k, nibble(src, from + k));
    }
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

/// The records of one flat run (addresses, META bytes) in order: (compact address, nibble).
fn segment<'a, const N: usize>(
    (addrs, metas): (&'a [u8], &'a [u8]),
) -> impl Iterator<Item = (&'a [u8; N], u8)> + 'a {
    addrs.chunks_exact(N).enumerate().map(move |(i, rec)| {
        (
            rec.first_chunk::<N>().unwrap_or(&[0u8; N]),
            nibble(metas, i),
        )
    })
}

/// The record storage of one swarm: `len` records sorted by address, stored as the module docs
/// say. 16 bytes.
///
/// The unsafe part is small: `parts`, `parts_mut`, `relocate`, `free_storage`, `dir`,
/// `dir_mut` and `Drop`. Everything else works on the safe byte slices `parts` returns, or on
/// the chunks' own `PeerVec`s.
///
/// `aux` holds the storage tags in its top bits ([`NO_SLAB`], [`OWN`], [`CHUNKED`]) and a slot
/// number or a capacity in its low bits. Invariants (checked by `check` in the tests; the
/// ownership of a slab slot is checked by the slab in release builds too):
/// 1. `len == 0`: no storage. `len == 1`, [`Self::INLINE`] and no tag but `NO_SLAB`:
///    `data.inline` is the union field last written and holds the address then the nibble.
/// 2. No tag (so not `NO_SLAB`), `len <= SLAB_MAX` (and `len >= 2` for IPv4): `data.ptr` is slot
///    `aux` of the slab's class of `len` records, `block_bytes(class_cap(len))` initialized
///    bytes.
/// 3. `OWN`: `data.ptr` is a block of the global allocator with layout
///    `(block_bytes(aux & LOW), 1)`, all initialized, and `len <= aux & LOW <= ` a little over
///    [`Self::CHUNK_MAX`].
/// 4. `CHUNKED`: `data.ptr` is a `Box<Dir<N>>` (see the `chunked` module): at least two
///    chunks, each a flat `NO_SLAB` swarm of 1 to [`Self::CHUNK_MAX`] records, in order, whose
///    lengths sum to `len`, and `len > CHUNK_MAX / 2`.
pub struct PeerVec<const N: usize> {
    len: u32,
    /// Storage tags and slot number (slab storage) or capacity in records (own block).
    aux: u32,
    data: Data,
}

/// The 8 data bytes of a [`PeerVec`]: a block or directory pointer, or one inline record.
#[derive(Clone, Copy)]
union Data {
    ptr: *mut u8,
    inline: [u8; 8],
}

// SAFETY: a PeerVec owns its block (its own one, or its slab slot, which only it uses) and its
// chunks, and has no interior mutability, so it may move to or be shared with another thread
// (with its slab).
unsafe impl<const N: usize> Send for PeerVec<N> {}
// SAFETY: as above; `&PeerVec` only gives read access to the bytes.
unsafe impl<const N: usize> Sync for PeerVec<N> {}

/// Where the records of a swarm live.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Empty,
    Inline,
    Slab,
    Own,
    Chunked,
}

impl<const N: usize> PeerVec<N> {
    /// Whether one record (`N` bytes and the nibble) fits in the 8 inline bytes: true for IPv4,
    /// false for IPv6.
    pub const INLINE: bool = N < 8;
    /// Swarms of up to this many peers keep their block in the slab (see the module docs).
    pub const SLAB_MAX: usize = slab_max(N);
    /// The most records of one block of its own, and of one chunk of a big swarm: those whose
    /// block fits in [`CHUNK_BYTES`] (2,520 IPv4, 885 IPv6 peers). A swarm with more is kept in
    /// chunks; it goes back to one block when it falls to half of this.
    pub const CHUNK_MAX: usize = chunk_max(N);

    /// A [`Slab`] for swarms of this address family.
    pub(crate) fn new_slab() -> Slab<N> {
        Slab::new()
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
    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True when there is no peer.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    fn kind(&self) -> Kind {
        if self.len == 0 {
            Kind::Empty
        } else if self.aux & (OWN | CHUNKED) != 0 {
            if self.aux & CHUNKED != 0 {
                Kind::Chunked
            } else {
                Kind::Own
            }
        } else if self.len == 1 && Self::INLINE {
            Kind::Inline
        } else {
            Kind::Slab
        }
    }

    /// The capacity of the block of a slab or own swarm (records).
    #[inline]
    fn block_cap(&self) -> usize {
        if self.aux & OWN != 0 {
            (self.aux & LOW) as usize
        } else {
            slab::class_cap(self.len())
        }
    }

    /// Records the storage holds (its `cap`); 1 when INLINE, 0 when empty, the sum of the
    /// chunks' capacities when chunked.
    pub fn capacity(&self) -> usize {
        match self.kind() {
            Kind::Empty => 0,
            Kind::Inline => 1,
            Kind::Slab => slab::class_cap(self.len()),
            Kind::Own => (self.aux & LOW) as usize,
            Kind::Chunked => self.chunks().iter().map(|c| c.peers().capacity()).sum(),
        }
    }

    /// True when the only record lives in the inline bytes (no block).
    pub fn is_inline(&self) -> bool {
        self.kind() == Kind::Inline
    }

    /// True when the records live in a slab slot.
    pub fn in_slab(&self) -> bool {
        self.kind() == Kind::Slab
    }

    /// True when the records live in chunks (a swarm of more than [`Self::CHUNK_MAX`] peers).
    pub fn is_chunked(&self) -> bool {
        self.kind() == Kind::Chunked
    }

    /// True when the swarm may never take a slab slot (see [`Self::forbid_slab`]).
    pub(crate) fn slab_forbidden(&self) -> bool {
        self.aux & NO_SLAB != 0
    }

    /// Bytes of the block (0 when empty or INLINE; blocks and chunk directory when chunked).
    pub fn heap_bytes(&self) -> usize {
        match self.kind() {
            Kind::Empty | Kind::Inline => 0,
            Kind::Slab | Kind::Own => block_bytes(N, self.capacity()),
            Kind::Chunked => {
                size_of::<Dir<N>>()
                    + self
                        .dir()
                        .map_or(0, |d| d.chunks.capacity() * size_of::<Chunk<N>>())
                    + self
                        .chunks()
                        .iter()
                        .map(|c| c.peers().heap_bytes())
                        .sum::<usize>()
            }
        }
    }

    /// The whole storage of a flat swarm: (`cap * N` address bytes, `ceil(cap / 2)` META
    /// bytes); empty when chunked.
    #[inline]
    fn parts(&self) -> (&[u8], &[u8]) {
        match self.kind() {
            Kind::Empty | Kind::Chunked => (&[], &[]),
            Kind::Inline => {
                // SAFETY: invariant 1: the inline field is the live one; any bytes are valid.
                let b = unsafe { &self.data.inline };
                b.split_at(N.min(7))
            }
            Kind::Slab | Kind::Own => {
                let cap = self.block_cap();
                // SAFETY: invariants 2 and 3: ptr is a live block of block_bytes(N, cap)
                // initialized bytes used only by self, borrowed immutably for &self's lifetime.
                let all = unsafe { std::slice::from_raw_parts(self.data.ptr, block_bytes(N, cap)) };
                all[KEY..].split_at(cap * N)
            }
        }
    }

    /// Mutable view of [`Self::parts`].
    #[inline]
    fn parts_mut(&mut self) -> (&mut [u8], &mut [u8]) {
        match self.kind() {
            Kind::Empty | Kind::Chunked => (&mut [], &mut []),
            Kind::Inline => {
                // SAFETY: as in `parts`; &mut self gives exclusive access.
                let b = unsafe { &mut self.data.inline };
                b.split_at_mut(N.min(7))
            }
            Kind::Slab | Kind::Own => {
                let cap = self.block_cap();
                // SAFETY: as in `parts`; &mut self gives exclusive access to the block.
                let all =
                    unsafe { std::slice::from_raw_parts_mut(self.data.ptr, block_bytes(N, cap)) };
                all[KEY..].split_at_mut(cap * N)
            }
        }
    }

    /// The chunk directory of a chunked swarm.
    #[inline]
    fn dir(&self) -> Option<&Dir<N>> {
        if self.kind() != Kind::Chunked {
            return None;
        }
        // SAFETY: invariant 4: ptr is a live Box<Dir<N>> owned by self, borrowed immutably for
        // &self's lifetime.
        Some(unsafe { &*(self.data.ptr as *const Dir<N>) })
    }

    /// Mutable view of [`Self::dir`].
    #[inline]
    fn dir_mut(&mut self) -> Option<&mut Dir<N>> {
        if self.kind() != Kind::Chunked {
            return None;
        }
        // SAFETY: as in `dir`; &mut self gives exclusive access.
        Some(unsafe { &mut *(self.data.ptr as *mut Dir<N>) })
    }

    /// Turns a flat swarm's storage into a chunked one holding `dir` (whose chunks hold the
    /// records): the flat storage must be empty already (len 0). Keeps the `NO_SLAB` tag.
    fn set_dir(&mut self, dir: Dir<N>, len: usize) {
        debug_assert!(self.is_empty());
        self.aux = (self.aux & NO_SLAB) | CHUNKED;
        self.data = Data {
            ptr: Box::into_raw(Box::new(dir)) as *mut u8,
        };
        self.len = len as u32;
    }

    /// Takes the directory of a chunked swarm, leaving it empty (keeps the `NO_SLAB` tag).
    fn take_dir(&mut self) -> Option<Dir<N>> {
        if self.kind() != Kind::Chunked {
            return None;
        }
        // SAFETY: invariant 4: ptr came from Box::into_raw in set_dir; len 0 and no CHUNKED
        // tag below mean nothing else will use or free it.
        let dir = unsafe { Box::from_raw(self.data.ptr as *mut Dir<N>) };
        self.len = 0;
        self.aux &= NO_SLAB;
        self.data = Data { inline: [0; 8] };
        Some(*dir)
    }

    /// The chunks of a chunked swarm, in order (empty when flat).
    pub(crate) fn chunks(&self) -> &[Chunk<N>] {
        self.dir().map_or(&[], |d| &d.chunks[..])
    }

    /// The capacity an own block for `new_len` records should have, given the current storage;
    /// `None` when the current own block stays.
    /// Capacities stay within [`Self::CHUNK_MAX`] (or `new_len`, if more).
    fn own_cap(&self, new_len: usize) -> Option<usize> {
        let grown = |c: usize| c.min(Self::CHUNK_MAX).max(new_len);
        if self.kind() == Kind::Own {
            let cap = (self.aux & LOW) as usize;
            if new_len <= cap && new_len >= cap / 2 {
                return None;
            }
            if new_len > cap {
                return Some(grown(cap + cap / 8));
            }
        }
        Some(grown(new_len + new_len / 8))
    }

    /// The owner's key stored at the start of the block (zeros when INLINE or empty; the first
    /// chunk's when chunked).
    pub fn key(&self) -> [u8; KEY] {
        let mut k = [0u8; KEY];
        match self.kind() {
            Kind::Slab | Kind::Own => {
                // SAFETY: invariants 2 and 3: a block starts with KEY initialized bytes.
                unsafe { ptr::copy_nonoverlapping(self.data.ptr, k.as_mut_ptr(), KEY) };
            }
            Kind::Chunked => {
                if let Some(c) = self.chunks().first() {
                    k = c.peers().key();
                }
            }
            Kind::Empty | Kind::Inline => {}
        }
        k
    }

    /// Points a slab swarm at the slot its block was moved to: settles `m` with the slab when
    /// this swarm is the one in the slot the block left (see [`Slab::settle`]); otherwise gives
    /// `m` back, nothing changed.
    pub(crate) fn adopt(&mut self, slab: &mut Slab<N>, m: Move) -> Result<(), Move> {
        if self.kind() != Kind::Slab {
            return Err(m);
        }
        let Slot { id, ptr } = slab.settle(m, slab::class_index(self.len()), self.aux & LOW)?;
        self.aux = id;
        self.data = Data { ptr };
        Ok(())
    }

    /// Marks the swarm as one that never takes a slab slot (sticky), moving its records out of
    /// the slab into a block of its own if they are there. The store does this for every
    /// torrent whose 4-byte info_hash prefix another torrent shares, so the owner of a block the
    /// slab moves is always the only torrent with the block's key. The caller applies the
    /// returned move.
    pub(crate) fn forbid_slab(&mut self, slab: &mut Slab<N>) -> Move {
        self.aux |= NO_SLAB;
        if self.kind() != Kind::Slab {
            return Move::NONE;
        }
        let len = self.len();
        let key = self.key();
        // Moving to an own block of the same length always finds storage (or aborts).
        self.relocate(slab, len, len, &key).unwrap_or(Move::NONE)
    }

    /// The flat storage kind for `new_len` records of this swarm.
    fn flat_target(&self, new_len: usize) -> Kind {
        if new_len == 0 {
            Kind::Empty
        } else if new_len == 1 && Self::INLINE {
            Kind::Inline
        } else if new_len <= Self::SLAB_MAX && self.aux & NO_SLAB == 0 {
            Kind::Slab
        } else {
            Kind::Own
        }
    }

    /// Moves the first `copy` records (`copy <= min(len, new_len)`) of a flat swarm from the
    /// storage of the current `len` to the flat storage for `new_len` records, unless that is
    /// the same storage. A new block gets the old block's key, or `key` when there was no block.
    /// Does not change `len`; the caller sets it to `new_len` right after. Returns `None`
    /// (nothing changed) when no storage can be had (a block of more than `LOW` records), else
    /// the slab's move from freeing the old slot (for the store to apply).
    fn relocate(
        &mut self,
        slab: &mut Slab<N>,
        new_len: usize,
        copy: usize,
        key: &[u8; KEY],
    ) -> Option<Move> {
        let len = self.len();
        let old_kind = self.kind();
        let new_kind = self.flat_target(new_len);
        debug_assert!(copy <= len.min(new_len) && old_kind != Kind::Chunked);
        let new_cap = match new_kind {
            Kind::Empty | Kind::Chunked => 0,
            Kind::Inline => 1,
            Kind::Slab => slab::class_cap(new_len),
            Kind::Own => match self.own_cap(new_len) {
                None => return Some(Move::NONE),
                Some(c) => c,
            },
        };
        let same = old_kind == new_kind
            && match old_kind {
                Kind::Empty | Kind::Inline => true,
                Kind::Slab => slab::class_index(len) == slab::class_index(new_len),
                Kind::Own | Kind::Chunked => false, // own_cap said it moves
            };
        if same {
            return Some(Move::NONE);
        }
        if new_cap > LOW as usize {
            return None;
        }
        let key = match old_kind {
            Kind::Slab | Kind::Own => self.key(),
            _ => *key,
        };
        // Allocate the new storage.
        let mut new = PeerVec::<N> {
            len: new_len as u32,
            aux: self.aux & NO_SLAB,
            data: Data { inline: [0; 8] },
        };
        match new_kind {
            Kind::Empty | Kind::Inline | Kind::Chunked => {}
            Kind::Slab => {
                let s = slab.alloc(new_len)?;
                new.aux = s.id;
                new.data = Data { ptr: s.ptr };
            }
            Kind::Own => {
                let layout = Layout::from_size_align(block_bytes(N, new_cap), 1).ok()?;
                // SAFETY: the layout's size is > 0 (a block holds at least KEY bytes).
                let p = unsafe { alloc::alloc_zeroed(layout) };
                if p.is_null() {
                    alloc::handle_alloc_error(layout);
                }
                new.aux |= OWN | new_cap as u32;
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
        let moved = self.free_storage(slab);
        self.aux = new.aux;
        self.data = new.data;
        // `new` owns nothing any more (its storage moved to self); len 0 makes its drop a no-op.
        new.len = 0;
        Some(moved)
    }

    /// Frees the storage of the current `len` (slab slot, own block or chunks), keeping only
    /// the `NO_SLAB` tag; `data` is zeroed. Does not change `len`: the caller sets it. Returns
    /// the slab's move when a slot was freed.
    fn free_storage(&mut self, slab: &mut Slab<N>) -> Move {
        let moved = match self.kind() {
            Kind::Empty | Kind::Inline => Move::NONE,
            Kind::Slab => {
                // SAFETY: invariant 2: ptr is the slot's address.
                let ptr = unsafe { self.data.ptr };
                slab.free(
                    self.len(),
                    Slot {
                        id: self.aux & LOW,
                        ptr,
                    },
                )
            }
            Kind::Own => {
                let layout = Layout::from_size_align(block_bytes(N, (self.aux & LOW) as usize), 1);
                if let Ok(layout) = layout {
                    // SAFETY: invariant 3: ptr is a live block with exactly this layout, not
                    // used after this.
                    unsafe { alloc::dealloc(self.data.ptr, layout) };
                }
                Move::NONE
            }
            Kind::Chunked => {
                let len = self.len;
                // The chunks never use the slab: dropping them frees their own blocks.
                drop(self.take_dir());
                self.len = len;
                Move::NONE
            }
        };
        self.aux &= NO_SLAB;
        self.data = Data { inline: [0; 8] };
        moved
    }

    /// The address bytes and META bytes of a flat swarm (`len * N` bytes, and at least
    /// `ceil(len / 2)` bytes; read them with [`nibble`]); `None` when chunked.
    #[inline]
    pub(crate) fn flat(&self) -> Option<(&[u8], &[u8])> {
        if self.kind() == Kind::Chunked {
            return None;
        }
        let (a, m) = self.parts();
        Some((a.get(..self.len() * N).unwrap_or(&[]), m))
    }

    /// The `len * N` address bytes of a flat swarm, in sorted order (empty when chunked: see
    /// [`Self::iter`]).
    pub(crate) fn addrs(&self) -> &[u8] {
        self.flat().map_or(&[], |(a, _)| a)
    }

    /// The packed META nibbles of a flat swarm (at least `ceil(len / 2)` bytes; empty when
    /// chunked).
    pub(crate) fn metas(&self) -> &[u8] {
        self.flat().map_or(&[], |(_, m)| m)
    }

    /// The compact address (N bytes) of the record at position `pos` (see [`Self::search`]),
    /// `None` if there is none.
    #[inline]
    pub fn addr(&self, pos: usize) -> Option<&[u8; N]> {
        if let Some(d) = self.dir() {
            let (c, o) = unpack(pos);
            return d.chunks.get(c)?.peers().addr(o);
        }
        self.addrs().get(pos.checked_mul(N)?..)?.first_chunk::<N>()
    }

    /// The META nibble of the record at position `pos`, `None` if there is none.
    #[inline]
    pub fn meta(&self, pos: usize) -> Option<u8> {
        if let Some(d) = self.dir() {
            let (c, o) = unpack(pos);
            return d.chunks.get(c)?.peers().meta(o);
        }
        (pos < self.len()).then(|| nibble(self.metas(), pos))
    }

    /// Replaces the META nibble of the record at position `pos` (low 4 bits of `meta`); false
    /// (nothing changed) if there is none.
    #[inline]
    pub(crate) fn set_meta(&mut self, pos: usize, meta: u8) -> bool {
        if let Some(d) = self.dir_mut() {
            return d.set_meta(pos, meta);
        }
        if pos >= self.len() {
            return false;
        }
        set_nibble(self.parts_mut().1, pos, meta);
        true
    }

    /// Binary search by compact address: `Ok(pos)` of the record, or `Err(pos)` where it would
    /// be inserted to keep the order. A POSITION is the record's index in a flat swarm; in a
    /// chunked one it is `chunk << 16 | index in the chunk` (valid until the next change).
    #[inline]
    pub fn search(&self, addr: &[u8; N]) -> Result<usize, usize> {
        if let Some(d) = self.dir() {
            return d.search(addr);
        }
        self.flat_search(addr)
    }

    /// [`Self::search`] in a flat swarm.
    #[inline]
    fn flat_search(&self, addr: &[u8; N]) -> Result<usize, usize> {
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

    /// Inserts a record at position `pos` (which must be the position [`Self::search`]
    /// returned, to keep the order), moving the records to bigger storage when needed (a swarm
    /// growing past [`Self::CHUNK_MAX`] is split into chunks); `key` names the owner in a first
    /// block (see [`slab`]). Returns the position the record ended up at and the slab's move
    /// (which the caller must apply), or `None` (nothing changed) if `pos` is out of range or
    /// the swarm cannot grow (`u32::MAX` records).
    pub(crate) fn insert(
        &mut self,
        slab: &mut Slab<N>,
        key: &[u8; KEY],
        pos: usize,
        addr: &[u8; N],
        meta: u8,
    ) -> Option<(usize, Move)> {
        let len = self.len();
        if len >= u32::MAX as usize {
            return None;
        }
        let mut pos = pos;
        if self.kind() != Kind::Chunked && len >= Self::CHUNK_MAX {
            if pos > len {
                return None;
            }
            let half = chunked::make_chunked(self, slab);
            pos = if pos <= half {
                pack(0, pos)
            } else {
                pack(1, pos - half)
            };
        }
        if let Some(d) = self.dir_mut() {
            let pos = d.insert(slab, pos, addr, meta)?;
            self.len += 1;
            return Some((pos, Move::NONE));
        }
        let moved = self.flat_insert(slab, key, pos, addr, meta)?;
        Some((pos, moved))
    }

    /// [`Self::insert`] at index `index` of a flat swarm, staying flat whatever its length.
    fn flat_insert(
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

    /// Removes the record at position `pos` and returns its META nibble with the slab's move
    /// (which the caller must apply), `None` if there is no such record. May move the records
    /// to smaller storage (a chunked swarm that falls to half of [`Self::CHUNK_MAX`] becomes
    /// one block again).
    pub(crate) fn remove(&mut self, slab: &mut Slab<N>, pos: usize) -> Option<(u8, Move)> {
        if let Some(d) = self.dir_mut() {
            let meta = d.remove(slab, pos)?;
            self.len -= 1;
            let moved = if self.len() <= Self::CHUNK_MAX / 2 {
                chunked::flatten(self, slab)
            } else {
                Move::NONE
            };
            return Some((meta, moved));
        }
        self.flat_remove(slab, pos)
    }

    /// [`Self::remove`] at index `index` of a flat swarm.
    fn flat_remove(&mut self, slab: &mut Slab<N>, index: usize) -> Option<(u8, Move)> {
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

    /// Keeps the records for which `keep(addr, meta)` is true, in order, with one compaction
    /// pass (each kept record moves at most once), then may move them to smaller storage.
    /// Returns the number of records removed and the slab's move (which the caller must apply).
    pub(crate) fn retain(
        &mut self,
        slab: &mut Slab<N>,
        mut keep: impl FnMut(&[u8; N], u8) -> bool,
    ) -> (usize, Move) {
        if self.kind() == Kind::Chunked {
            return chunked::retain(self, slab, &mut keep);
        }
        self.flat_retain(slab, &mut keep)
    }

    /// [`Self::retain`] of a flat swarm.
    fn flat_retain(
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
    fn copy_range(&self, slab: &mut Slab<N>, from: usize, to: usize) -> PeerVec<N> {
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
    fn split_off(&mut self, slab: &mut Slab<N>, at: usize) -> (PeerVec<N>, Move) {
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
    fn append(&mut self, slab: &mut Slab<N>, other: &mut PeerVec<N>) -> (Move, Move) {
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

    /// Removes every record and frees the storage; returns the slab's move (which the caller
    /// must apply). The `NO_SLAB` tag stays.
    pub(crate) fn clear(&mut self, slab: &mut Slab<N>) -> Move {
        let moved = self.free_storage(slab);
        self.len = 0;
        moved
    }

    /// The records in order: (compact address, META nibble).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8; N], u8)> + '_ {
        self.flat()
            .into_iter()
            .chain(self.chunks().iter().filter_map(|c| c.peers().flat()))
            .flat_map(segment::<N>)
    }

    /// Checks the storage invariants (test helper).
    #[cfg(test)]
    pub(crate) fn check(&self) {
        let len = self.len();
        match self.kind() {
            Kind::Chunked => {
                let d = self.dir().expect("a directory");
                d.check(len);
                assert!(len > Self::CHUNK_MAX / 2, "a chunked swarm of {len}");
            }
            k => {
                assert_eq!(self.addrs().len(), len * N);
                assert!(self.metas().len() * 2 >= len);
                if k == Kind::Own {
                    let cap = (self.aux & LOW) as usize;
                    assert!(len <= cap && cap <= Self::CHUNK_MAX + Self::CHUNK_MAX / 8);
                    assert!(len <= Self::CHUNK_MAX, "a flat swarm of {len}");
                }
                if k == Kind::Slab {
                    assert!(!self.slab_forbidden(), "a slab swarm marked NO_SLAB");
                    assert!(len <= Self::SLAB_MAX);
                }
                for w in self.addrs().chunks_exact(N).collect::<Vec<_>>().windows(2) {
                    assert!(w[0] < w[1], "records not strictly sorted");
                }
            }
        }
    }
}

impl<const N: usize> Default for PeerVec<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Drop for PeerVec<N> {
    /// Frees an own block or the chunks. A slab slot is not freed here (the slab is not at
    /// hand): the store clears a swarm before dropping it, and the slab frees every chunk when
    /// it is dropped.
    fn drop(&mut self) {
        match self.kind() {
            Kind::Own => {
                let layout = Layout::from_size_align(block_bytes(N, (self.aux & LOW) as usize), 1);
                if let Ok(layout) = layout {
                    // SAFETY: invariant 3: ptr is a live block with exactly this layout, not
                    // used after this.
                    unsafe { alloc::dealloc(self.data.ptr, layout) };
                }
            }
            Kind::Chunked => drop(self.take_dir()),
            Kind::Empty | Kind::Inline | Kind::Slab => {}
        }
    }
}

const _: () = assert!(size_of::<PeerVec<6>>() == 16);

impl<const N: usize> fmt::Debug for PeerVec<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerVec")
            .field("len", &self.len)
            .field("cap", &self.capacity())
            .field("kind", &self.kind())
            .field("no_slab", &self.slab_forbidden())
            .finish()
    }
}

#[cfg(test)]
pub(crate) mod tests;
