//! Slab storage for the record blocks of small swarms: no malloc per swarm, no holes that only
//! the swarm's old size could reuse.
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
//! A block of up to [`SLAB_BYTES`] bytes lives in a SLOT of its SIZE CLASS. A class is a set of
//! equal numbered slots, carved from CHUNKS of equal size (at least
//! [`MIN_SLOTS_PER_CHUNK`] slots, a power of two of at least 4 KiB, so a freed chunk is reused
//! whole by the next chunk of the same size). A swarm's class is a pure function of its peer
//! count ([`class_cap`]): small counts have exact classes, bigger ones sixteen classes per power
//! of two (at most 1/16 of slack). Rules:
//!
//! * allocation takes the lowest free slot of the lowest chunk that has one (each chunk has a
//!   bitmap of its free slots; a `BTreeSet` holds the numbers of the chunks with a free slot),
//!   else re-allocates the lowest released chunk, else adds a chunk at the end;
//! * a chunk whose slots are all free is freed at once (so a class that swarms leave in the
//!   order they came, as when every swarm grows in step, gives its memory back chunk by chunk),
//!   and released chunks at the end are forgotten;
//! * [`Slab::should_move`] tells the owner of a slot that a lower slot is free: the store's
//!   background sweep then moves the block down ([`super::torrent::PeerVec::compact`]), so a
//!   class that shrank becomes dense again and its upper chunks are freed. No back pointers are
//!   needed: only a slot's owner ever moves it.
//!
//! Slots hold raw bytes; the block layout is [`super::torrent`]'s. Memory of a freshly
//! allocated chunk is zeroed, and every byte of a slot is initialized from then on.

use std::alloc::{self, Layout};
use std::collections::BTreeSet;

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

/// A slot: its class, its number within the class, and the address of its first byte.
#[derive(Clone, Copy, Debug)]
pub struct Slot {
    /// Slot number within its class.
    pub id: u32,
    /// First byte of the slot (valid until the slot is freed).
    pub ptr: *mut u8,
}

/// One size class. A chunk starts with its HEADER, `1 + words` u64 words: the number of slots
/// in use, then a bitmap of the free slots (bit `i` set: slot `i` is free); the slots follow.
/// Keeping this in the chunk keeps the class's own table at 8 bytes per chunk, so it never
/// grows into a block big enough to leave a hole the chunks could not reuse.
struct Class {
    /// Bytes per slot.
    slot: usize,
    /// Bitmap words in a chunk header.
    words: usize,
    /// Slots per chunk.
    per_chunk: usize,
    /// Bytes per chunk.
    chunk_bytes: usize,
    /// Chunk `c` holds slots `c * per_chunk ..`; null when released.
    chunks: Vec<*mut u8>,
    /// Live chunks with a free slot (their numbers).
    avail: BTreeSet<u32>,
    /// Released chunks below the last one (their numbers), reused before a new chunk.
    released: BTreeSet<u32>,
}

impl Class {
    fn new(slot: usize) -> Self {
        let slot = slot.max(1);
        let chunk_bytes = if slot * MIN_SLOTS_PER_CHUNK <= SMALL_CHUNK {
            SMALL_CHUNK
        } else {
            BIG_CHUNK
        };
        let words = (chunk_bytes / slot).div_ceil(64);
        let per_chunk = (chunk_bytes - 8 * (1 + words)) / slot;
        Class {
            slot,
            words,
            per_chunk,
            chunk_bytes,
            chunks: Vec::new(),
            avail: BTreeSet::new(),
            released: BTreeSet::new(),
        }
    }

    fn layout(&self) -> Layout {
        // chunk_bytes is a power of two far below isize::MAX; align 16 like malloc.
        Layout::from_size_align(self.chunk_bytes, 16).unwrap_or(Layout::new::<u128>())
    }

    /// The header of live chunk `c`: `[used, bitmap words...]`; `None` if released or unknown.
    fn header(&self, c: usize) -> Option<&[u64]> {
        let p = *self.chunks.get(c)?;
        if p.is_null() {
            return None;
        }
        // SAFETY: a live chunk is chunk_bytes >= 8 * (1 + words) initialized bytes (zeroed at
        // allocation, written only through these headers and the slots after them), aligned to
        // 16, owned by self; the slice borrows &self.
        Some(unsafe { std::slice::from_raw_parts(p.cast::<u64>(), 1 + self.words) })
    }

    /// Mutable view of [`Self::header`].
    fn header_mut(&mut self, c: usize) -> Option<&mut [u64]> {
        let p = *self.chunks.get(c)?;
        if p.is_null() {
            return None;
        }
        // SAFETY: as in `header`; &mut self gives exclusive access.
        Some(unsafe { std::slice::from_raw_parts_mut(p.cast::<u64>(), 1 + self.words) })
    }

    /// The lowest free slot of live chunk `c`.
    fn lowest_free(&self, c: u32) -> Option<u32> {
        let h = self.header(c as usize)?;
        let (w, word) = h[1..].iter().enumerate().find(|(_, w)| **w != 0)?;
        let i = w * 64 + word.trailing_zeros() as usize;
        u32::try_from(c as usize * self.per_chunk + i).ok()
    }

    fn alloc(&mut self) -> Option<Slot> {
        let c = match self.avail.first() {
            Some(&c) => c,
            None => {
                let c = match self.released.pop_first() {
                    Some(c) => c,
                    None => {
                        let c = u32::try_from(self.chunks.len()).ok()?;
                        // Slot numbers of the new chunk must fit a u32.
                        u32::try_from((c as usize + 1) * self.per_chunk).ok()?;
                        self.chunks.push(std::ptr::null_mut());
                        c
                    }
                };
                let layout = self.layout();
                // SAFETY: the layout has a non-zero size.
                let p = unsafe { alloc::alloc_zeroed(layout) };
                if p.is_null() {
                    alloc::handle_alloc_error(layout);
                }
                self.chunks[c as usize] = p;
                let per_chunk = self.per_chunk;
                let h = self.header_mut(c as usize)?;
                for (w, word) in h[1..].iter_mut().enumerate() {
                    let bits = per_chunk.saturating_sub(w * 64).min(64);
                    *word = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
                }
                self.avail.insert(c);
                c
            }
        };
        let id = self.lowest_free(c)?;
        let i = id as usize - c as usize * self.per_chunk;
        let h = self.header_mut(c as usize)?;
        h[1 + i / 64] &= !(1u64 << (i % 64));
        h[0] += 1;
        if h[1..].iter().all(|w| *w == 0) {
            self.avail.remove(&c);
        }
        let off = 8 * (1 + self.words) + i * self.slot;
        // SAFETY: i < per_chunk, so off + slot <= chunk_bytes: inside the live chunk c.
        let ptr = unsafe { self.chunks[c as usize].add(off) };
        Some(Slot { id, ptr })
    }

    fn free(&mut self, id: u32) {
        let c = id as usize / self.per_chunk;
        let i = id as usize % self.per_chunk;
        let Some(h) = self.header_mut(c) else {
            debug_assert!(false, "free of a slot not allocated");
            return;
        };
        debug_assert!(h[0] > 0, "free in an empty chunk");
        debug_assert!(h[1 + i / 64] & (1u64 << (i % 64)) == 0, "double free");
        h[1 + i / 64] |= 1u64 << (i % 64);
        h[0] = h[0].saturating_sub(1);
        if h[0] > 0 {
            self.avail.insert(c as u32);
            return;
        }
        // The chunk is empty: give it back.
        self.release(c);
        self.avail.remove(&(c as u32));
        if c + 1 == self.chunks.len() {
            self.chunks.pop();
            while self.chunks.last().is_some_and(|p| p.is_null()) {
                self.chunks.pop();
                self.released.remove(&(self.chunks.len() as u32));
            }
            if self.chunks.capacity() > 2 * self.chunks.len() + 4 {
                self.chunks.shrink_to(self.chunks.len() + self.chunks.len() / 8);
            }
        } else {
            self.released.insert(c as u32);
        }
    }

    fn release(&mut self, c: usize) {
        let layout = self.layout();
        if let Some(slot) = self.chunks.get_mut(c) {
            let p = std::mem::replace(slot, std::ptr::null_mut());
            if !p.is_null() {
                // SAFETY: p was allocated by `alloc` with this same layout and is no longer
                // used (no slot of the chunk is in use).
                unsafe { alloc::dealloc(p, layout) };
            }
        }
    }
}

impl Drop for Class {
    fn drop(&mut self) {
        for c in 0..self.chunks.len() {
            self.release(c);
        }
    }
}

/// The slab of one store: a size class per [`class_index`], created on first use.
pub struct Slab {
    /// Bytes of a block of `cap` records: `block_bytes(cap)`.
    block_bytes: fn(usize) -> usize,
    classes: Vec<Class>,
}

// SAFETY: the Slab owns its chunks exclusively (raw pointers only into its own allocations) and
// has no interior mutability.
unsafe impl Send for Slab {}
// SAFETY: as above; `&Slab` gives no access to the chunks.
unsafe impl Sync for Slab {}

impl Slab {
    /// An empty slab whose blocks of `cap` records take `block_bytes(cap)` bytes. Sets up
    /// every class whose blocks fit in [`SLAB_BYTES`] at once (a few KiB, no chunk yet), so the
    /// class table is never reallocated while the store fills.
    pub fn new(block_bytes: fn(usize) -> usize) -> Self {
        let mut n = 0;
        while block_bytes(cap_of_index(n)) <= SLAB_BYTES {
            n += 1;
        }
        Slab {
            block_bytes,
            classes: (0..n)
                .map(|i| Class::new(block_bytes(cap_of_index(i))))
                .collect(),
        }
    }

    fn class(&mut self, len: usize) -> &mut Class {
        let i = class_index(len);
        while self.classes.len() <= i {
            let cap = cap_of_index(self.classes.len());
            let bytes = (self.block_bytes)(cap);
            self.classes.push(Class::new(bytes));
        }
        &mut self.classes[i]
    }

    /// A slot for a block of the class of `len >= 1` records (`block_bytes(class_cap(len))`
    /// bytes, initialized, content unspecified). `None` if the class has `u32::MAX` slots.
    /// Aborts on allocation failure, as `Vec` does.
    pub fn alloc(&mut self, len: usize) -> Option<Slot> {
        self.class(len).alloc()
    }

    /// Gives back slot `id` of the class of `len` records. The slot's memory must not be used
    /// afterwards.
    pub fn free(&mut self, len: usize, id: u32) {
        let i = class_index(len);
        if let Some(c) = self.classes.get_mut(i) {
            c.free(id);
        }
    }

    /// True when the class of `len` records has a free slot below `id` (the block would be
    /// better there: see the module docs).
    pub fn should_move(&self, len: usize, id: u32) -> bool {
        self.classes
            .get(class_index(len))
            .and_then(|c| c.lowest_free(*c.avail.first()?))
            .is_some_and(|f| f < id)
    }

    /// Heap bytes of the slab: chunks plus its own tables (the chunk sets counted at 4 bytes
    /// per entry: their B-tree nodes are not visible). For stats.
    pub fn heap_bytes(&self) -> usize {
        self.chunk_bytes()
            + self.classes.capacity() * size_of::<Class>()
            + self
                .classes
                .iter()
                .map(|c| c.chunks.capacity() * 8 + (c.avail.len() + c.released.len()) * 4)
                .sum::<usize>()
    }

    /// Bytes of chunk memory allocated.
    pub fn chunk_bytes(&self) -> usize {
        self.classes
            .iter()
            .map(|c| c.chunks.iter().filter(|p| !p.is_null()).count() * c.chunk_bytes)
            .sum()
    }
}

impl std::fmt::Debug for Slab {
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

    fn bytes7(cap: usize) -> usize {
        cap * 7
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

    #[test]
    fn lowest_slot_first_and_chunks_released() {
        let mut s = Slab::new(bytes7);
        // Class of 10 records: 70-byte slots in 16 KiB chunks, after a 40-byte header.
        let per_chunk = (SMALL_CHUNK - 40) / 70;
        let n = 2 * per_chunk + 100;
        let a: Vec<Slot> = (0..n).map(|_| s.alloc(10).unwrap()).collect();
        assert_eq!(s.classes[9].chunk_bytes, SMALL_CHUNK);
        assert_eq!(s.classes[9].per_chunk, per_chunk);
        for (i, sl) in a.iter().enumerate() {
            assert_eq!(sl.id, i as u32);
        }
        let chunks = 3;
        assert_eq!(s.chunk_bytes(), chunks * SMALL_CHUNK);
        // Free the whole first chunk: it is released at once.
        for sl in &a[..per_chunk] {
            s.free(10, sl.id);
        }
        assert_eq!(s.chunk_bytes(), (chunks - 1) * SMALL_CHUNK);
        // No live chunk has a free slot below 150; the last chunk's free slots come first.
        assert!(!s.should_move(10, 150));
        let mut extra = vec![s.alloc(10).unwrap()];
        assert_eq!(extra[0].id as usize, n);
        // A free slot in a live chunk is reused before anything else.
        let k = per_chunk + 10;
        s.free(10, a[k].id);
        assert!(s.should_move(10, k as u32 + 1) && !s.should_move(10, k as u32));
        let b = s.alloc(10).unwrap();
        assert_eq!(b.id as usize, k);
        // Once the live chunks are full, the released chunk is allocated again.
        while extra.len() < chunks * per_chunk - n {
            extra.push(s.alloc(10).unwrap());
        }
        assert_eq!(s.chunk_bytes(), (chunks - 1) * SMALL_CHUNK);
        let z = s.alloc(10).unwrap();
        assert_eq!(z.id, 0);
        assert_eq!(s.chunk_bytes(), chunks * SMALL_CHUNK);
        // Freeing everything gives every chunk back and forgets them.
        for sl in a[per_chunk..].iter().filter(|sl| sl.id as usize != k) {
            s.free(10, sl.id);
        }
        for sl in extra.iter().chain([&b, &z]) {
            s.free(10, sl.id);
        }
        assert!(s.classes[9].chunks.is_empty());
        assert!(s.classes[9].avail.is_empty() && s.classes[9].released.is_empty());
        assert_eq!(s.chunk_bytes(), 0);
        assert!(!s.should_move(10, 5));
    }

    #[test]
    fn slots_do_not_overlap() {
        let mut s = Slab::new(bytes7);
        let mut rng = fastrand::Rng::with_seed(3);
        let mut live: Vec<(usize, Slot, u8)> = Vec::new();
        for step in 0..20000u32 {
            if live.is_empty() || rng.u8(..) < 150 {
                let len = rng.usize(1..700);
                let sl = s.alloc(len).unwrap();
                let fill = step as u8;
                // SAFETY: the slot has block_bytes(class_cap(len)) bytes.
                unsafe { std::ptr::write_bytes(sl.ptr, fill, bytes7(class_cap(len))) };
                live.push((len, sl, fill));
            } else {
                let (len, sl, fill) = live.swap_remove(rng.usize(..live.len()));
                // SAFETY: as above; the slot is still allocated.
                let b = unsafe { std::slice::from_raw_parts(sl.ptr, bytes7(class_cap(len))) };
                assert!(b.iter().all(|&x| x == fill), "slot overwritten");
                s.free(len, sl.id);
            }
        }
        for (len, sl, _) in live {
            s.free(len, sl.id);
        }
        assert_eq!(s.chunk_bytes(), 0);
    }
}
