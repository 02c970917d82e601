//! Slab storage for the record blocks of small swarms: no malloc per swarm, and no holes.
//!
//! # Why
//!
//! With one malloc block per swarm, swarms that grow together (every swarm of a tracker gains
//! peers at about the same rate) leave the heap full of freed blocks of the sizes every swarm
//! has already outgrown: glibc keeps them resident, and its own header and 16-byte rounding
//! add 8 to 23 bytes per block. Measured at 2,000 torrents x 100 peers: 8.9 bytes per peer in
//! use, 12.2 resident.
//!
//! # How
//!
//! A block of up to [`SLAB_BYTES`] bytes lives in a SLOT of its SIZE CLASS. A swarm's class is
//! a pure function of its peer count ([`class_cap`]): exact up to 64 records, then sixteen
//! classes per power of two (at most 1/16 of slack). A class is an array of `count` equal slots
//! numbered `0..count`, carved from CHUNKS of 16 KiB (64 KiB for slots over 682 bytes), so a
//! freed chunk is reused whole by the next chunk of any class.
//!
//! Every class is DENSE: its slots `0..count` are all in use. Allocation takes slot `count`;
//! freeing slot `i` moves the last slot into `i` (one copy of at most 4 KiB) and frees the last
//! chunk when it becomes empty. So a class never holds more than one partly used chunk, in
//! whatever order swarms grow and shrink, and memory follows the peers down as well as up.
//!
//! The price is a back reference: the first [`KEY`] bytes of every block hold its owner's key
//! (the store puts the first bytes of the info_hash there), and a free that moves a slot
//! returns a `Move` that the owner of the store must apply at once: find the swarm by the
//! key and point it at its new slot (`Slab::settle`). Until then that swarm's pointer is
//! stale. The store keeps that lookup to one binary search: a swarm whose 4-byte prefix is
//! shared by another torrent never takes a slot (see [`super::store`]).
//!
//! # Soundness
//!
//! A slot is raw memory, so everything that hands slots out or takes them back is private to
//! the crate (`Slab`, `Slot`, `Move`); code outside the crate reaches swarms only through
//! the store, which owns exactly one slab per address family. The slab is typed by the peer
//! length `N` and computes its block sizes itself, so it cannot be given the other family's
//! blocks or a wrong layout. The rules that the type system cannot express are checked in
//! release builds too (each is a comparison): a free names a slot in use of this very slab
//! (its address is compared), a `Move` must be settled before the slab allocates or frees
//! again, and dropping an unsettled `Move` panics.
//!
//! ```compile_fail,E0603
//! // Outside the crate there is no slab to allocate from or to free into.
//! let _slab = opentracker_rs::swarm::slab::Slab::<6>::new();
//! ```
//!
//! ```
//! // What is public is the geometry: class capacities and indexes.
//! use opentracker_rs::swarm::slab::{class_cap, class_index};
//! assert_eq!((class_cap(65), class_index(65)), (68, 64));
//! ```
//!
//! Slots hold raw bytes; the block layout is [`super::torrent`]'s. Every byte of a slot is
//! initialized (zeroed) when it is handed out.

use std::alloc::{self, Layout};

/// Bytes at the start of every block that name its owner (see the module docs).
pub const KEY: usize = 4;

/// Blocks up to this many bytes live in the slab; bigger ones are their own malloc block.
pub const SLAB_BYTES: usize = 4096;

/// Peer counts up to this one have a class of exactly that many records.
pub const EXACT_CLASSES: usize = 64;

/// A chunk holds at least this many slots.
pub const MIN_SLOTS_PER_CHUNK: usize = 24;

/// Chunk size in bytes of the classes whose slots are at most `SMALL_CHUNK / 24` bytes (682).
pub const SMALL_CHUNK: usize = 16384;

/// Chunk size in bytes of the other classes (slots up to [`SLAB_BYTES`]).
pub const BIG_CHUNK: usize = 65536;

/// The capacity (records) of the size class of a swarm of `len >= 1` records: `len` itself up
/// to [`EXACT_CLASSES`], above that `len` rounded up to a multiple of `2^(e - 4)` where
/// `2^e < len <= 2^(e + 1)` (sixteen classes per power of two). `len == 0` gives 0.
pub const fn class_cap(len: usize) -> usize {
    if len <= EXACT_CLASSES {
        return len;
    }
    let e = usize::BITS - 1 - (len - 1).leading_zeros();
    let shift = e - 4;
    (len + (1 << shift) - 1) >> shift << shift
}

/// The index of the size class of a swarm of `1 <= len` records (0-based, dense:
/// `class_index(1) == 0`, and consecutive classes have consecutive indexes).
pub fn class_index(len: usize) -> usize {
    if len <= EXACT_CLASSES {
        return len.saturating_sub(1);
    }
    let e = (usize::BITS - 1 - (len - 1).leading_zeros()) as usize;
    let shift = e - 4;
    // len in (2^e, 2^(e+1)]: k in 1..=16 steps of 2^shift above 2^e.
    let k = (len - (1 << e) + (1 << shift) - 1) >> shift;
    EXACT_CLASSES + (e - 6) * 16 + (k - 1)
}

/// Slot numbers stay below this: a swarm keeps its slot number in the low bits of a `u32`
/// whose top bits tag its storage (see [`super::torrent`]). A class that would need more
/// slots (hundreds of GiB of blocks) aborts as an allocation failure does.
pub(crate) const MAX_SLOTS: u32 = 1 << 29;

/// A slot: its number within its class, and the address of its first byte. Private to the
/// crate: only the store's swarms hold slots, each its own.
#[derive(Debug)]
pub(crate) struct Slot {
    /// Slot number within its class.
    pub(crate) id: u32,
    /// First byte of the slot (valid until the slot is freed or moved).
    pub(crate) ptr: *mut u8,
}

/// A block the slab moved to fill a hole: the swarm whose block starts with `key` and sat in
/// slot `from` of class `class` must now use slot `to` at `ptr`.
#[derive(Debug, PartialEq, Eq)]
struct Moved {
    key: [u8; KEY],
    class: usize,
    from: u32,
    to: u32,
    ptr: *mut u8,
}

/// What a [`Slab::free`] leaves to do: nothing, or re-point the swarm whose block the slab
/// moved into the freed slot ([`Slab::settle`], which the store calls through the swarm's
/// `adopt`). Until then that swarm's block pointer is stale, so:
///
/// - it is `#[must_use]`, and it is not `Clone`: one move, applied once;
/// - dropping a move that holds a block (instead of settling it) panics, in release builds too;
/// - the slab refuses to allocate or free while a move is pending (a panic, in release builds
///   too), so a stale pointer can never outlive the next change of the slab.
#[must_use = "the swarm whose block moved must be re-pointed (Slab::settle) before anything else"]
pub(crate) struct Move(Option<Moved>);

impl Move {
    /// No block moved.
    pub(crate) const NONE: Move = Move(None);

    /// True when no block moved (nothing to apply).
    #[inline]
    pub(crate) fn is_none(&self) -> bool {
        self.0.is_none()
    }

    /// The key of the moved block's owner (the first [`KEY`] bytes of its block), `None` when
    /// nothing moved.
    pub(crate) fn key(&self) -> Option<[u8; KEY]> {
        self.0.as_ref().map(|m| m.key)
    }
}

impl Drop for Move {
    fn drop(&mut self) {
        if let Some(m) = &self.0 {
            // Not while unwinding already: one panic is enough.
            if !std::thread::panicking() {
                panic!("a slab move was dropped without being applied: {m:?}");
            }
        }
    }
}

impl std::fmt::Debug for Move {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            None => f.write_str("Move::NONE"),
            Some(m) => m.fmt(f),
        }
    }
}

/// One size class: slots `0..count` in use, in `chunks`.
struct Class {
    /// Bytes per slot.
    slot: usize,
    /// Slots per chunk.
    per_chunk: usize,
    /// Bytes per chunk.
    chunk_bytes: usize,
    /// Chunk `c` holds slots `c * per_chunk ..`; exactly `ceil(count / per_chunk)` chunks.
    chunks: Vec<*mut u8>,
    /// Slots in use.
    count: u32,
}

impl Class {
    fn new(slot: usize) -> Self {
        let slot = slot.max(1);
        let chunk_bytes = if slot * MIN_SLOTS_PER_CHUNK <= SMALL_CHUNK {
            SMALL_CHUNK
        } else {
            BIG_CHUNK
        };
        Class {
            slot,
            per_chunk: chunk_bytes / slot,
            chunk_bytes,
            chunks: Vec::new(),
            count: 0,
        }
    }

    fn layout(&self) -> Layout {
        // chunk_bytes is a power of two far below isize::MAX; align 16 like malloc.
        Layout::from_size_align(self.chunk_bytes, 16).unwrap_or(Layout::new::<u128>())
    }

    /// Address of slot `id` (which must be below `count`, or `count` with its chunk present).
    fn ptr(&self, id: u32) -> *mut u8 {
        let (c, i) = (id as usize / self.per_chunk, id as usize % self.per_chunk);
        match self.chunks.get(c) {
            // SAFETY: i < per_chunk, so i * slot + slot <= chunk_bytes: inside chunk c.
            Some(p) => unsafe { p.add(i * self.slot) },
            None => std::ptr::null_mut(),
        }
    }

    fn alloc(&mut self) -> Option<Slot> {
        let id = self.count;
        // MAX_SLOTS slots of one class (hundreds of GiB) is out of memory in all but name;
        // failing here instead would leave a shrinking swarm without storage.
        if id >= MAX_SLOTS - 1 {
            alloc::handle_alloc_error(self.layout());
        }
        let next = id + 1;
        if id as usize / self.per_chunk >= self.chunks.len() {
            let layout = self.layout();
            // SAFETY: the layout has a non-zero size.
            let p = unsafe { alloc::alloc(layout) };
            if p.is_null() {
                alloc::handle_alloc_error(layout);
            }
            self.chunks.push(p);
        }
        self.count = next;
        let ptr = self.ptr(id);
        // SAFETY: the slot is `slot` bytes inside a live chunk, now owned by the caller.
        unsafe { std::ptr::write_bytes(ptr, 0, self.slot) };
        Some(Slot { id, ptr })
    }

    /// Frees slot `id` (which must be in use and start at `ptr`: checked, in release builds
    /// too), moving the last slot into it; returns the move, if any.
    fn free(&mut self, id: u32, ptr: *mut u8, class: usize) -> Option<Moved> {
        assert!(
            id < self.count && self.ptr(id) == ptr,
            "free of slot {id} of class {class}: not in use, or not this slab's"
        );
        let last = self.count - 1;
        let mut moved = None;
        if id != last {
            let (to, from) = (self.ptr(id), self.ptr(last));
            // SAFETY: two distinct in-use slots of `slot` bytes inside live chunks.
            unsafe { std::ptr::copy_nonoverlapping(from, to, self.slot) };
            let mut key = [0u8; KEY];
            // SAFETY: a slot is at least KEY bytes (every block starts with its key).
            unsafe { std::ptr::copy_nonoverlapping(to, key.as_mut_ptr(), KEY.min(self.slot)) };
            moved = Some(Moved {
                key,
                class,
                from: last,
                to: id,
                ptr: to,
            });
        }
        self.count = last;
        let needed = (self.count as usize).div_ceil(self.per_chunk);
        while self.chunks.len() > needed {
            if let Some(p) = self.chunks.pop() {
                // SAFETY: p was allocated by `alloc` with this layout; no slot in it is in use.
                unsafe { alloc::dealloc(p, self.layout()) };
            }
        }
        if self.chunks.capacity() > 2 * self.chunks.len() + 4 {
            self.chunks
                .shrink_to(self.chunks.len() + self.chunks.len() / 8);
        }
        moved
    }
}

impl Drop for Class {
    fn drop(&mut self) {
        let layout = self.layout();
        for p in self.chunks.drain(..) {
            // SAFETY: every chunk was allocated by `alloc` with this layout.
            unsafe { alloc::dealloc(p, layout) };
        }
    }
}

/// The slab of one store: one dense size class per [`class_index`], for the blocks of swarms
/// of `N`-byte peers (the block layout is [`super::torrent::block_bytes`]'s, so a slab of one
/// address family cannot hold the other's blocks). Private to the crate: only the store and
/// its swarms allocate and free slots.
pub(crate) struct Slab<const N: usize> {
    classes: Vec<Class>,
    /// The move the last free made, until its swarm adopts it: (class, from, to).
    pending: Option<(usize, u32, u32)>,
}

// SAFETY: the Slab owns its chunks exclusively (raw pointers only into its own allocations) and
// has no interior mutability.
unsafe impl<const N: usize> Send for Slab<N> {}
// SAFETY: as above; `&Slab` gives no access to the chunks.
unsafe impl<const N: usize> Sync for Slab<N> {}

impl<const N: usize> Slab<N> {
    /// An empty slab with every class whose blocks ([`super::torrent::block_bytes`] of `N`)
    /// fit in [`SLAB_BYTES`] (a few KiB of tables, no chunk yet).
    pub(crate) fn new() -> Self {
        let bytes = |i: usize| super::torrent::block_bytes(N, cap_of_index(i));
        let mut n = 0;
        while bytes(n) <= SLAB_BYTES {
            n += 1;
        }
        Slab {
            classes: (0..n).map(|i| Class::new(bytes(i).max(KEY))).collect(),
            pending: None,
        }
    }

    /// Panics (in release builds too) while a move is pending: the rule of [`Move`].
    fn check_no_pending(&self) {
        assert!(
            self.pending.is_none(),
            "the slab was used while a move was not applied: {:?}",
            self.pending
        );
    }

    /// A zeroed slot for a block of the class of `len >= 1` records. `None` if that class does
    /// not exist (the block is bigger than [`SLAB_BYTES`]). Aborts on allocation failure, as
    /// `Vec` does (and when a class would pass [`MAX_SLOTS`] slots). Panics while a move is
    /// pending.
    pub(crate) fn alloc(&mut self, len: usize) -> Option<Slot> {
        self.check_no_pending();
        self.classes.get_mut(class_index(len))?.alloc()
    }

    /// Gives back `slot` of the class of `len` records: its memory must not be used
    /// afterwards. If the class's last slot moved into it, the returned [`Move`] says which
    /// block went where, and must be settled before the slab is used again.
    ///
    /// Panics (in release builds too) while another move is pending, and when `slot` is not a
    /// slot in use of this slab's class of `len` (a slot of another slab, or freed already).
    pub(crate) fn free(&mut self, len: usize, slot: Slot) -> Move {
        self.check_no_pending();
        let i = class_index(len);
        let Some(c) = self.classes.get_mut(i) else {
            panic!("free of a slot of {len} records: no such class");
        };
        let moved = c.free(slot.id, slot.ptr, i);
        self.pending = moved.as_ref().map(|m| (m.class, m.from, m.to));
        Move(moved)
    }

    /// Settles `m` for the swarm whose block sits in slot `slot` of class `class`: when that is
    /// the slot the block was moved FROM, the move is done and the block's new slot is
    /// returned (the swarm must use it from now on); otherwise `m` comes back unchanged.
    pub(crate) fn settle(&mut self, mut m: Move, class: usize, slot: u32) -> Result<Slot, Move> {
        match m.0.take() {
            Some(x) if x.class == class && x.from == slot => {
                assert_eq!(
                    self.pending,
                    Some((x.class, x.from, x.to)),
                    "a move of another slab"
                );
                self.pending = None;
                Ok(Slot {
                    id: x.to,
                    ptr: x.ptr,
                })
            }
            other => {
                m.0 = other;
                Err(m)
            }
        }
    }

    /// Heap bytes of the slab: chunks plus its own tables. For stats.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.chunk_bytes()
            + self.classes.capacity() * size_of::<Class>()
            + self
                .classes
                .iter()
                .map(|c| c.chunks.capacity() * 8)
                .sum::<usize>()
    }

    /// Slots in use, all classes (test helper).
    #[cfg(test)]
    pub(crate) fn slots(&self) -> usize {
        self.classes.iter().map(|c| c.count as usize).sum()
    }

    /// Bytes of chunk memory allocated.
    pub(crate) fn chunk_bytes(&self) -> usize {
        self.classes
            .iter()
            .map(|c| c.chunks.len() * c.chunk_bytes)
            .sum()
    }
}

impl<const N: usize> std::fmt::Debug for Slab<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slab")
            .field("classes", &self.classes.len())
            .field("chunk_bytes", &self.chunk_bytes())
            .finish()
    }
}

/// The capacity of the class with index `i` (inverse of [`class_index`]).
fn cap_of_index(i: usize) -> usize {
    if i < EXACT_CLASSES {
        return i + 1;
    }
    let j = i - EXACT_CLASSES;
    let e = 6 + j / 16;
    let k = j % 16 + 1;
    (1 << e) + (k << (e - 4))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swarm::torrent::block_bytes;

    /// Bytes of a block of `len` IPv4 records in its class.
    fn bytes6(len: usize) -> usize {
        block_bytes(6, class_cap(len))
    }

    #[test]
    fn classes_are_dense_and_consistent() {
        assert_eq!(class_cap(0), 0);
        assert_eq!(class_cap(1), 1);
        assert_eq!(class_cap(64), 64);
        assert_eq!(class_cap(65), 68);
        assert_eq!(class_cap(100), 100);
        assert_eq!(class_cap(101), 104);
        assert_eq!(class_cap(129), 136);
        assert_eq!(class_cap(600), 608);
        let mut last = None;
        for len in 1..5000usize {
            let cap = class_cap(len);
            let i = class_index(len);
            assert!(cap >= len && cap - len <= len / 16, "len {len} cap {cap}");
            assert_eq!(cap_of_index(i), cap, "len {len}");
            assert_eq!(class_index(cap), i);
            match last {
                Some((li, lc)) if lc == cap => assert_eq!(li, i),
                Some((li, _)) => assert_eq!(li + 1, i, "len {len}"),
                None => assert_eq!(i, 0),
            }
            last = Some((i, cap));
        }
    }

    fn write(sl: &Slot, len: usize, tag: u32) {
        // SAFETY: the slot has bytes6(len) >= 8 bytes.
        unsafe {
            std::ptr::write_bytes(sl.ptr, tag as u8, bytes6(len));
            std::ptr::copy_nonoverlapping(tag.to_be_bytes().as_ptr(), sl.ptr, KEY);
        }
    }

    fn read(ptr: *mut u8, len: usize) -> (u32, Vec<u8>) {
        // SAFETY: as in `write`.
        let b = unsafe { std::slice::from_raw_parts(ptr, bytes6(len)) };
        (
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            b[KEY..].to_vec(),
        )
    }

    fn slot(id: u32, ptr: *mut u8) -> Slot {
        Slot { id, ptr }
    }

    #[test]
    fn free_moves_the_last_slot_and_releases_chunks() {
        let mut s = Slab::<6>::new();
        // Class of 10 records: 69-byte slots in 16 KiB chunks.
        let per_chunk = SMALL_CHUNK / bytes6(10);
        let n = 2 * per_chunk + 10;
        let mut slots: Vec<Slot> = (0..n).map(|_| s.alloc(10).unwrap()).collect();
        for (i, sl) in slots.iter().enumerate() {
            assert_eq!(sl.id as usize, i);
            write(sl, 10, i as u32);
        }
        assert_eq!(s.chunk_bytes(), 3 * SMALL_CHUNK);
        // Freeing the last slot moves nothing.
        let last = slots.pop().unwrap();
        assert!(s.free(10, last).is_none());
        // Freeing slot 3 moves the last one (tag n - 2) into it.
        let three = slot(3, slots[3].ptr);
        let m = s.free(10, three);
        assert_eq!(m.key(), Some(((n - 2) as u32).to_be_bytes()));
        let moved = s.settle(m, 9, (n - 2) as u32).unwrap();
        assert_eq!((moved.id, moved.ptr), (3, slots[3].ptr));
        assert_eq!(
            read(moved.ptr, 10),
            ((n - 2) as u32, vec![(n - 2) as u8; bytes6(10) - KEY])
        );
        slots.pop();
        // Down to two chunks' worth: the third chunk is freed.
        while slots.len() > 2 * per_chunk {
            let m = s.free(10, slot(0, slots[0].ptr));
            let last = (slots.len() - 1) as u32;
            if !m.is_none() {
                s.settle(m, 9, last).unwrap();
            }
            slots.pop();
        }
        assert_eq!(s.chunk_bytes(), 2 * SMALL_CHUNK);
        // Classes that do not fit the slab do not exist.
        assert!(s.alloc(700).is_none());
    }

    #[test]
    fn a_move_is_settled_only_by_the_slot_it_left() {
        let mut s = Slab::<6>::new();
        let a = s.alloc(2).unwrap();
        let b = s.alloc(2).unwrap();
        write(&b, 2, 7);
        let m = s.free(2, a);
        // Wrong class, wrong slot: the move comes back.
        let m = s.settle(m, 0, 1).unwrap_err();
        let m = s.settle(m, 1, 0).unwrap_err();
        let to = s.settle(m, 1, 1).unwrap();
        assert_eq!(to.id, 0);
        assert_eq!(read(to.ptr, 2).0, 7);
        assert!(s.free(2, to).is_none());
        assert_eq!(s.slots(), 0);
    }

    // The move rule and the ownership of slots are checked in release builds too: these run in
    // `cargo test --release` as well (tests always unwind, whatever the profile's `panic`).

    #[test]
    #[should_panic(expected = "a move was not applied")]
    fn the_slab_refuses_work_while_a_move_is_pending() {
        let mut s = Slab::<6>::new();
        let a = s.alloc(2).unwrap();
        let _b = s.alloc(2).unwrap();
        let m = s.free(2, a);
        std::mem::forget(m);
        let _ = s.alloc(2);
    }

    #[test]
    #[should_panic(expected = "dropped without being applied")]
    fn dropping_a_move_panics() {
        let mut s = Slab::<6>::new();
        let a = s.alloc(2).unwrap();
        let _b = s.alloc(2).unwrap();
        drop(s.free(2, a));
    }

    #[test]
    #[should_panic(expected = "not this slab's")]
    fn a_slot_of_another_slab_is_refused() {
        let mut s = Slab::<6>::new();
        let mut other = Slab::<6>::new();
        let _a = s.alloc(2).unwrap();
        let b = other.alloc(2).unwrap();
        let _ = s.free(2, b);
    }

    #[test]
    #[should_panic(expected = "not in use")]
    fn a_slot_freed_twice_is_refused() {
        let mut s = Slab::<6>::new();
        let a = s.alloc(2).unwrap();
        let copy = slot(a.id, a.ptr);
        assert!(s.free(2, a).is_none());
        let _ = s.free(2, copy);
    }

    #[test]
    fn random_churn_keeps_every_block_and_no_more_chunks_than_needed() {
        let mut s = Slab::<6>::new();
        let mut rng = fastrand::Rng::with_seed(3);
        // Owners: tag -> (len, slot id, ptr); the key is the tag.
        let mut live: std::collections::HashMap<u32, (usize, u32, *mut u8)> = Default::default();
        let mut next_tag = 0u32;
        for _ in 0..30000 {
            if live.is_empty() || rng.u8(..) < 140 {
                let len = rng.usize(1..500);
                let sl = s.alloc(len).unwrap();
                write(&sl, len, next_tag);
                live.insert(next_tag, (len, sl.id, sl.ptr));
                next_tag += 1;
            } else {
                let tag = *live.keys().nth(rng.usize(..live.len())).unwrap();
                let (len, id, ptr) = live.remove(&tag).unwrap();
                assert_eq!(read(ptr, len), (tag, vec![tag as u8; bytes6(len) - KEY]));
                let m = s.free(len, slot(id, ptr));
                if let Some(key) = m.key() {
                    let owner = u32::from_be_bytes(key);
                    let o = live.get_mut(&owner).expect("the moved block has an owner");
                    let to = s.settle(m, class_index(o.0), o.1).unwrap();
                    *o = (o.0, to.id, to.ptr);
                }
            }
        }
        for (tag, &(len, _, ptr)) in &live {
            assert_eq!(read(ptr, len).0, *tag);
        }
        // Dense: each class has exactly the chunks its count needs.
        for c in &s.classes {
            assert_eq!(c.chunks.len(), (c.count as usize).div_ceil(c.per_chunk));
        }
        let total: u32 = s.classes.iter().map(|c| c.count).sum();
        assert_eq!(total as usize, live.len());
    }
}
