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
mod flat;
mod nibbles;

pub(crate) use chunked::Chunk;
use chunked::{Dir, pack, unpack};
use nibbles::{copy_nibbles, nibble_insert, nibble_remove, segment, set_nibble, sort_key};
pub(crate) use nibbles::{count_seeders, next_with_seeder_bit};
pub use nibbles::{nibble, nibble_has};

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

/// The record storage of one swarm: `len` records sorted by address, stored as the module docs
/// say. 16 bytes.
///
/// The unsafe part is small: `parts`, `parts_mut`, `relocate`, `free_storage`, `dir`,
/// `dir_mut` and `Drop`. Everything else works on the safe byte slices `parts` returns, or on
/// the chunks' own `PeerVec`s.
///
/// `aux` holds the storage tags in its top bits (`NO_SLAB`, `OWN`, `CHUNKED`) and a slot
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

    /// The number of records whose compact address lies in `lo..=hi` (memcmp order, as the
    /// records are sorted): with `lo` and `hi` a prefix padded with 0x00 and 0xff bytes, the
    /// peers of one source (an IPv4 address with any port, an IPv6 /64). Two binary searches,
    /// plus the lengths of the chunks the range spans in a big swarm: never a scan of the
    /// records.
    pub fn count_between(&self, lo: &[u8; N], hi: &[u8; N]) -> usize {
        if lo > hi {
            return 0;
        }
        let from = match self.search(lo) {
            Ok(p) | Err(p) => p,
        };
        // One past the last record <= hi (in a chunked swarm, the next index of its chunk).
        let to = match self.search(hi) {
            Ok(p) => p + 1,
            Err(p) => p,
        };
        let chunks = self.chunks();
        if chunks.is_empty() {
            return to.saturating_sub(from);
        }
        let ((c1, o1), (c2, o2)) = (unpack(from), unpack(to));
        if c1 >= c2 {
            return o2.saturating_sub(o1);
        }
        let first = chunks.get(c1).map_or(0, |c| c.len().saturating_sub(o1));
        let middle: usize = chunks
            .get(c1 + 1..c2)
            .map_or(0, |cs| cs.iter().map(Chunk::len).sum());
        first + middle + o2
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
