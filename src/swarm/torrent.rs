//! One swarm of one address family: the sorted packed peers of one info_hash, with its counts.
//!
//! # Records
//!
//! A stored peer is a record of `N + 1` bytes: the `N` bytes of its compact form (see
//! [`super::peer`]; 6 for IPv4, 18 for IPv6) then one META byte:
//!
//! | bits | meaning |
//! |------|---------|
//! | 7 ([`SEEDER`]) | the peer announced `left=0` last time |
//! | 6 ([`COMPLETED`]) | its `event=completed` was already counted in `downloaded` during this stay |
//! | 0..5 ([`STAMP_MASK`]) | STAMP: the tick of its last announce, mod 64 (see [`super::clean`]) |
//!
//! Records are kept sorted by their `N` address bytes (memcmp order, i.e. by address then port,
//! as opentracker) in ONE contiguous byte buffer of interleaved records (stride `N + 1`). Lookup
//! is a binary search, a response is a copy of record prefixes, and there is no per-peer
//! allocation.
//!
//! # Memory
//!
//! A [`Torrent`] is 48 bytes. Its [`PeerVec`] holds either nothing, one record INLINE in its 8
//! data bytes (only when `N + 1 <= 8`, i.e. IPv4: most torrents of an open tracker have one peer
//! and then cost no heap block at all), or a pointer to a heap block of `cap * (N + 1)` bytes.
//!
//! Growth policy (std's doubling wastes up to half of the block): glibc's malloc hands out chunks
//! of `request + 8` bytes rounded up to 16 (at least 32), so every block is sized to fill its
//! chunk ([`fill_capacity`]). A full block of up to 4 KiB grows to the next chunk that holds one
//! more record (one 16-byte step, sometimes two for IPv6); a bigger one grows by 1/8. A block
//! shrinks only when peers are removed (stop, cleaning), when `len < cap / 2`, to the chunk that
//! holds `len + len / 8`: after a shrink the swarm can gain 1/8 or lose half before the next
//! reallocation, so add/remove at a boundary never reallocates every time. A swarm that falls
//! to one IPv4 peer goes back INLINE and frees its block; an empty swarm has no block.

use std::alloc::{self, Layout};
use std::fmt;
use std::ptr;

use crate::types::InfoHash;

/// META bit 7: the peer is a seeder (its last announce had `left=0`).
pub const SEEDER: u8 = 0x80;
/// META bit 6: the peer's `event=completed` was already counted in `downloaded` during this stay
/// (as opentracker's `PEER_FLAG_COMPLETED`).
pub const COMPLETED: u8 = 0x40;
/// META bits 0..5: the stamp, the tick of the peer's last announce mod 64.
pub const STAMP_MASK: u8 = 0x3f;

/// Bytes malloc adds to a request (glibc on 64-bit: one size word).
const MALLOC_OVERHEAD: usize = 8;
/// glibc chunk granularity in bytes.
const MALLOC_ALIGN: usize = 16;
/// glibc's smallest chunk in bytes.
const MALLOC_MIN_CHUNK: usize = 32;
/// Blocks up to this size (bytes) grow one chunk step at a time; bigger ones grow by 1/8.
const SMALL_BLOCK: usize = 4096;

/// The glibc malloc chunk size (bytes) that a request of `bytes` bytes occupies:
/// `bytes + 8` rounded up to 16, at least 32. Saturates instead of overflowing.
pub fn malloc_chunk(bytes: usize) -> usize {
    let c = bytes.saturating_add(MALLOC_OVERHEAD + MALLOC_ALIGN - 1) & !(MALLOC_ALIGN - 1);
    c.max(MALLOC_MIN_CHUNK)
}

/// The number of `record`-byte records that fill the malloc chunk holding `min_records`
/// records (so the block's slack is used, not wasted). At least `min_records`; `None` when the
/// block would exceed `isize::MAX` bytes or the count `u32::MAX` (the capacity field is a `u32`).
pub fn fill_capacity(min_records: usize, record: usize) -> Option<usize> {
    let record = record.max(1);
    let bytes = min_records.checked_mul(record)?;
    if bytes > isize::MAX as usize / 2 {
        return None;
    }
    let cap = (malloc_chunk(bytes) - MALLOC_OVERHEAD) / record;
    let cap = cap.max(min_records);
    (cap <= u32::MAX as usize).then_some(cap)
}

/// The record storage of one swarm: `len` records of `N + 1` bytes sorted by their first `N`
/// bytes, INLINE (IPv4, one peer), or in a heap block of `cap` records. 16 bytes.
///
/// The unsafe part is tiny: the private `storage`, `storage_mut` and `reshape` methods
/// and `Drop`. Everything else works on the safe byte slices `storage` returns.
///
/// Invariants (checked by `debug_assert!` and by the tests):
/// 1. `cap == 0`: no heap block. Then `len <= 1`, and `len == 1` only if `N + 1 <= 8`; the
///    record is `data.inline[..N + 1]`, and `data.inline` is the union field last written.
/// 2. `cap > 0`: `data.ptr` is a live block from `std::alloc` with layout `(cap * (N + 1), 1)`,
///    all of whose bytes are initialized (new tails are zeroed), and `len <= cap`.
pub struct PeerVec<const N: usize> {
    len: u32,
    cap: u32,
    data: Data,
}

/// The 8 data bytes of a [`PeerVec`]: a heap pointer or one inline record.
#[derive(Clone, Copy)]
union Data {
    ptr: *mut u8,
    inline: [u8; 8],
}

// SAFETY: a PeerVec owns its heap block exclusively (like a Vec<u8>) and has no interior
// mutability, so it may move to or be shared with another thread.
unsafe impl<const N: usize> Send for PeerVec<N> {}
// SAFETY: as above; `&PeerVec` only gives read access to the bytes.
unsafe impl<const N: usize> Sync for PeerVec<N> {}

impl<const N: usize> PeerVec<N> {
    /// Record length in bytes: the `N` compact bytes plus the META byte.
    pub const RECORD: usize = N + 1;
    /// Whether one record (`N + 1` bytes) fits in the 8 inline bytes: true for IPv4, false for
    /// IPv6.
    pub const INLINE: bool = N < 8;

    /// An empty swarm (no heap block).
    pub const fn new() -> Self {
        PeerVec {
            len: 0,
            cap: 0,
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

    /// Records allocated on the heap (0 when empty or INLINE).
    pub fn capacity(&self) -> usize {
        self.cap as usize
    }

    /// True when the only record lives in the inline bytes (no heap block).
    pub fn is_inline(&self) -> bool {
        self.cap == 0 && self.len == 1
    }

    /// Heap bytes requested from the allocator for this swarm (`cap * (N + 1)`; 0 when inline).
    pub fn heap_bytes(&self) -> usize {
        self.capacity() * Self::RECORD
    }

    /// Records this storage holds without reallocating.
    fn slots(&self) -> usize {
        if self.cap > 0 {
            self.cap as usize
        } else if Self::INLINE {
            1
        } else {
            0
        }
    }

    /// All initialized storage bytes: `cap * (N + 1)` heap bytes, or the 8 inline bytes.
    fn storage(&self) -> &[u8] {
        if self.cap == 0 {
            // SAFETY: with cap == 0 the inline field is the one last written (invariant 1), and
            // any bit pattern is a valid [u8; 8].
            unsafe { &self.data.inline }
        } else {
            // SAFETY: invariant 2: ptr is a live block of cap * RECORD initialized bytes owned
            // by self, borrowed immutably for the lifetime of &self.
            unsafe { std::slice::from_raw_parts(self.data.ptr, self.cap as usize * Self::RECORD) }
        }
    }

    /// Mutable view of [`Self::storage`].
    fn storage_mut(&mut self) -> &mut [u8] {
        if self.cap == 0 {
            // SAFETY: as in `storage`; &mut self gives exclusive access.
            unsafe { &mut self.data.inline }
        } else {
            // SAFETY: as in `storage`; &mut self gives exclusive access to the block.
            unsafe {
                std::slice::from_raw_parts_mut(self.data.ptr, self.cap as usize * Self::RECORD)
            }
        }
    }

    /// Moves the records to storage of `new_cap` heap records (`0` = no block: empty or
    /// INLINE), keeping the first `len` records. Requires `new_cap >= len`, except that
    /// `new_cap == 0` is allowed (and only allowed) when `len == 0` or (`len == 1` and
    /// [`Self::INLINE`]). Aborts on allocation failure,
    /// as `Vec` does.
    fn reshape(&mut self, new_cap: usize) {
        let len = self.len as usize;
        let r = Self::RECORD;
        debug_assert!(new_cap >= len || (new_cap == 0 && len == 1 && Self::INLINE));
        debug_assert!(new_cap > 0 || len == 0 || (len == 1 && Self::INLINE));
        debug_assert!(new_cap <= u32::MAX as usize);
        let old_cap = self.cap as usize;
        if new_cap == old_cap {
            return;
        }
        let new_bytes = new_cap * r;
        if new_cap == 0 {
            // Heap -> inline or empty: save the record (if any), free the block.
            let mut inline = [0u8; 8];
            if len == 1 {
                inline[..r].copy_from_slice(&self.storage()[..r]);
            }
            let old = Layout::from_size_align(old_cap * r, 1).expect("layout was valid at alloc");
            // SAFETY: cap > 0, so ptr is a live block allocated with exactly this layout.
            unsafe { alloc::dealloc(self.data.ptr, old) };
            self.data = Data { inline };
            self.cap = 0;
            return;
        }
        let new_layout = match Layout::from_size_align(new_bytes, 1) {
            Ok(l) => l,
            Err(_) => alloc::handle_alloc_error(Layout::new::<u8>()),
        };
        let p = if old_cap == 0 {
            // Empty or inline -> heap.
            // SAFETY: new_bytes > 0 (new_cap > 0 and RECORD > 0).
            let p = unsafe { alloc::alloc(new_layout) };
            if p.is_null() {
                alloc::handle_alloc_error(new_layout);
            }
            // SAFETY: the block has new_bytes >= len * r bytes; the inline field is the live one
            // (invariant 1) and holds len * r <= 8 bytes; the regions cannot overlap.
            unsafe {
                let src = self.data.inline;
                ptr::copy_nonoverlapping(src.as_ptr(), p, len * r);
                ptr::write_bytes(p.add(len * r), 0, new_bytes - len * r);
            }
            p
        } else {
            let old = Layout::from_size_align(old_cap * r, 1).expect("layout was valid at alloc");
            // SAFETY: ptr is live with layout `old` (invariant 2); new_bytes > 0 and fits isize
            // (checked by Layout::from_size_align above).
            let p = unsafe { alloc::realloc(self.data.ptr, old, new_bytes) };
            if p.is_null() {
                alloc::handle_alloc_error(new_layout);
            }
            if new_cap > old_cap {
                // SAFETY: bytes [old_cap*r, new_bytes) are inside the new block; zero them so the
                // whole block stays initialized (invariant 2).
                unsafe { ptr::write_bytes(p.add(old_cap * r), 0, new_bytes - old_cap * r) };
            }
            p
        };
        self.data = Data { ptr: p };
        self.cap = new_cap as u32;
    }

    /// The `len * (N + 1)` bytes of the records, in sorted order.
    pub fn as_bytes(&self) -> &[u8] {
        let n = self.len() * Self::RECORD;
        self.storage().get(..n).unwrap_or(&[])
    }

    /// Mutable view of [`Self::as_bytes`] (private: callers must keep the order).
    fn as_bytes_mut(&mut self) -> &mut [u8] {
        let n = self.len() * Self::RECORD;
        self.storage_mut().get_mut(..n).unwrap_or(&mut [])
    }

    /// The compact address (N bytes) of record `i`, `None` if `i >= len`.
    pub fn addr(&self, i: usize) -> Option<&[u8; N]> {
        let r = Self::RECORD;
        let rec = self.as_bytes().get(i.checked_mul(r)?..)?;
        rec.first_chunk::<N>()
    }

    /// The META byte of record `i`, `None` if `i >= len`.
    pub fn meta(&self, i: usize) -> Option<u8> {
        let at = i.checked_mul(Self::RECORD)? + N;
        self.as_bytes().get(at).copied()
    }

    /// Replaces the META byte of record `i`; false (nothing changed) if `i >= len`.
    pub fn set_meta(&mut self, i: usize, meta: u8) -> bool {
        let Some(at) = i.checked_mul(Self::RECORD).map(|x| x + N) else {
            return false;
        };
        match self.as_bytes_mut().get_mut(at) {
            Some(m) => {
                *m = meta;
                true
            }
            None => false,
        }
    }

    /// Binary search by compact address: `Ok(index)` of the record, or `Err(index)` where it
    /// would be inserted to keep the order.
    pub fn search(&self, addr: &[u8; N]) -> Result<usize, usize> {
        let bytes = self.as_bytes();
        let r = Self::RECORD;
        let (mut lo, mut hi) = (0usize, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let key = bytes.get(mid * r..mid * r + N).unwrap_or(&[]);
            match key.cmp(&addr[..]) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    /// Inserts a record at `index` (which must be the position [`Self::search`] returned, to
    /// keep the order), growing the storage by the growth policy. Returns false (nothing
    /// changed) if `index > len` or the swarm cannot grow (more than `u32::MAX` records).
    pub fn insert(&mut self, index: usize, addr: &[u8; N], meta: u8) -> bool {
        let len = self.len();
        if index > len {
            return false;
        }
        if len >= self.slots() {
            let r = Self::RECORD;
            let want = if len * r < SMALL_BLOCK {
                len + 1
            } else {
                len + len / 8
            };
            match fill_capacity(want, r) {
                Some(c) => self.reshape(c),
                None => return false,
            }
        }
        let r = Self::RECORD;
        let s = self.storage_mut();
        s.copy_within(index * r..len * r, (index + 1) * r);
        s[index * r..index * r + N].copy_from_slice(addr);
        s[index * r + N] = meta;
        self.len += 1;
        true
    }

    /// Removes record `index` (one memmove of the tail) and returns its META byte, `None` if
    /// `index >= len`. May shrink the storage (see the module docs).
    pub fn remove(&mut self, index: usize) -> Option<u8> {
        let len = self.len();
        if index >= len {
            return None;
        }
        let r = Self::RECORD;
        let s = self.as_bytes_mut();
        let meta = s[index * r + N];
        s.copy_within((index + 1) * r.., index * r);
        self.len -= 1;
        self.shrink_if_sparse();
        Some(meta)
    }

    /// Keeps the records for which `keep(addr, meta)` is true, in order, with one compaction
    /// pass (each kept record moves at most once), then may shrink the storage. Returns the
    /// number of records removed.
    pub fn retain(&mut self, mut keep: impl FnMut(&[u8; N], u8) -> bool) -> usize {
        let r = Self::RECORD;
        let len = self.len();
        let s = self.as_bytes_mut();
        let mut w = 0;
        for rd in 0..len {
            let rec = &s[rd * r..rd * r + r];
            let Some((addr, tail)) = rec.split_first_chunk::<N>() else {
                continue;
            };
            if keep(addr, tail[0]) {
                if w != rd {
                    s.copy_within(rd * r..rd * r + r, w * r);
                }
                w += 1;
            }
        }
        self.len = w as u32;
        self.shrink_if_sparse();
        len - w
    }

    /// Removes every record and frees the heap block.
    pub fn clear(&mut self) {
        self.len = 0;
        self.reshape(0);
    }

    /// The records in order: (compact address, META byte).
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8; N], u8)> + '_ {
        self.as_bytes()
            .chunks_exact(Self::RECORD)
            .map(|rec| match rec.split_first_chunk::<N>() {
                Some((addr, tail)) => (addr, tail.first().copied().unwrap_or(0)),
                None => (&[0u8; N], 0),
            })
    }

    /// Shrink rule: no block when empty, INLINE for one IPv4 record, else when
    /// `len < cap / 2` shrink to the chunk holding `len + len / 8`.
    fn shrink_if_sparse(&mut self) {
        let len = self.len();
        let cap = self.capacity();
        if cap == 0 {
            return;
        }
        if len == 0 || (len == 1 && Self::INLINE) {
            self.reshape(0);
        } else if len < cap / 2 {
            if let Some(c) = fill_capacity(len + len / 8, Self::RECORD) {
                if c < cap {
                    self.reshape(c);
                }
            }
        }
    }

    /// Checks the storage invariants (test helper).
    #[cfg(test)]
    pub(crate) fn check(&self) {
        let (len, cap) = (self.len(), self.capacity());
        if cap == 0 {
            assert!(
                len == 0 || (len == 1 && Self::INLINE),
                "len {len} with no block"
            );
        } else {
            assert!(len <= cap);
            assert!(len >= 2 || !Self::INLINE, "one IPv4 record must be inline");
            assert!(len > 0, "empty swarm with a block");
        }
        let b = self.as_bytes();
        assert_eq!(b.len(), len * Self::RECORD);
        for w in b.chunks_exact(Self::RECORD).collect::<Vec<_>>().windows(2) {
            assert!(w[0][..N] < w[1][..N], "records not strictly sorted");
        }
    }
}

impl<const N: usize> Default for PeerVec<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Drop for PeerVec<N> {
    fn drop(&mut self) {
        if self.cap > 0 {
            if let Ok(layout) = Layout::from_size_align(self.cap as usize * Self::RECORD, 1) {
                // SAFETY: cap > 0, so ptr is a live block allocated with exactly this layout
                // (invariant 2), and it is not used after this.
                unsafe { alloc::dealloc(self.data.ptr, layout) };
            }
        }
    }
}

impl<const N: usize> fmt::Debug for PeerVec<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerVec")
            .field("len", &self.len)
            .field("cap", &self.cap)
            .field("inline", &self.is_inline())
            .finish()
    }
}

/// One swarm: the peers of one info_hash in one address family, its counts and its clock.
/// 48 bytes, no padding.
///
/// `last_clean` is a tick (see [`super::clean`]): while the swarm has peers it is the tick it
/// was last cleaned (every stamp lies within `peer_ticks` before it); while it has none it is the
/// tick it became peerless, from which the torrent timeout runs.
#[derive(Debug)]
pub struct Torrent<const N: usize> {
    /// The info_hash (20 raw bytes).
    pub(super) info_hash: InfoHash,
    /// Completed downloads counted (BEP 48 `downloaded`, as opentracker's `down_count`).
    pub(super) downloaded: u32,
    /// Tick of the last cleaning (with peers) or since when it has been peerless.
    pub(super) last_clean: u32,
    /// Number of peers with the SEEDER bit.
    pub(super) seeders: u32,
    /// The sorted records.
    pub(super) peers: PeerVec<N>,
}

const _: () = assert!(size_of::<Torrent<6>>() == 48);
const _: () = assert!(size_of::<Torrent<18>>() == 48);
const _: () = assert!(size_of::<PeerVec<6>>() == 16);

impl<const N: usize> Torrent<N> {
    /// A peerless torrent created at tick `now_tick`.
    pub fn new(info_hash: InfoHash, now_tick: u32) -> Self {
        Torrent {
            info_hash,
            downloaded: 0,
            last_clean: now_tick,
            seeders: 0,
            peers: PeerVec::new(),
        }
    }

    /// The info_hash.
    pub fn info_hash(&self) -> &InfoHash {
        &self.info_hash
    }

    /// Completed downloads counted (`downloaded` in a scrape).
    pub fn downloaded(&self) -> u32 {
        self.downloaded
    }

    /// Number of seeders (`complete` in a scrape).
    pub fn seeders(&self) -> u32 {
        self.seeders
    }

    /// Number of leechers (`incomplete` in a scrape).
    pub fn leechers(&self) -> u32 {
        (self.peers.len() as u32).saturating_sub(self.seeders)
    }

    /// The peers.
    pub fn peers(&self) -> &PeerVec<N> {
        &self.peers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a4(i: u32) -> [u8; 6] {
        let b = i.to_be_bytes();
        [b[0], b[1], b[2], b[3], 0x1a, 0xe1]
    }

    #[test]
    fn chunk_math_matches_glibc() {
        assert_eq!(malloc_chunk(0), 32);
        assert_eq!(malloc_chunk(24), 32);
        assert_eq!(malloc_chunk(25), 48);
        assert_eq!(malloc_chunk(700), 720);
        // IPv4 records (7 bytes): 2 peers -> 32-byte chunk holding 3.
        assert_eq!(fill_capacity(2, 7), Some(3));
        assert_eq!(fill_capacity(4, 7), Some(5));
        assert_eq!(fill_capacity(10, 7), Some(10));
        assert_eq!(fill_capacity(100, 7), Some(101));
        // IPv6 records (19 bytes).
        assert_eq!(fill_capacity(1, 19), Some(1));
        assert_eq!(fill_capacity(2, 19), Some(2));
        assert_eq!(fill_capacity(3, 19), Some(3));
        assert_eq!(fill_capacity(usize::MAX / 2, 7), None);
        assert_eq!(fill_capacity(u32::MAX as usize + 1, 1), None);
    }

    #[test]
    fn inline_heap_transitions() {
        let mut v = PeerVec::<6>::new();
        assert!(v.is_empty() && !v.is_inline() && v.capacity() == 0);
        assert!(v.insert(0, &a4(5), 0x81));
        assert!(v.is_inline());
        assert_eq!(v.capacity(), 0);
        assert_eq!(v.as_bytes(), &[0, 0, 0, 5, 0x1a, 0xe1, 0x81]);
        v.check();
        assert!(v.insert(0, &a4(3), 0x02));
        assert!(!v.is_inline());
        assert_eq!(v.capacity(), 3);
        assert_eq!(
            v.as_bytes(),
            &[0, 0, 0, 3, 0x1a, 0xe1, 0x02, 0, 0, 0, 5, 0x1a, 0xe1, 0x81]
        );
        v.check();
        assert_eq!(v.remove(0), Some(0x02));
        assert!(v.is_inline());
        assert_eq!(v.as_bytes(), &[0, 0, 0, 5, 0x1a, 0xe1, 0x81]);
        v.check();
        assert_eq!(v.remove(0), Some(0x81));
        assert!(v.is_empty() && v.capacity() == 0);
        assert_eq!(v.as_bytes(), &[] as &[u8]);
        assert_eq!(v.remove(0), None);
        v.check();
    }

    #[test]
    fn ipv6_is_never_inline() {
        let mut v = PeerVec::<18>::new();
        let mut p = [0u8; 18];
        p[0] = 0x20;
        assert!(v.insert(0, &p, 7));
        assert!(!v.is_inline());
        assert_eq!(v.capacity(), 1);
        assert_eq!(v.as_bytes().len(), 19);
        assert_eq!(v.as_bytes()[18], 7);
        v.check();
        p[17] = 1;
        assert!(v.insert(1, &p, 8));
        assert_eq!(v.capacity(), 2);
        assert_eq!(v.remove(1), Some(8));
        assert_eq!(v.capacity(), 2, "no shrink at len == cap / 2");
        assert_eq!(v.remove(0), Some(7));
        assert_eq!(v.capacity(), 0);
        v.check();
    }

    #[test]
    fn random_inserts_stay_sorted() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut v = PeerVec::<6>::new();
        let mut model = std::collections::BTreeMap::new();
        for _ in 0..3000 {
            let a = a4(rng.u32(..2000));
            let m = rng.u8(..);
            match v.search(&a) {
                Ok(i) => {
                    assert!(model.contains_key(&a));
                    assert!(v.set_meta(i, m));
                }
                Err(i) => {
                    assert!(!model.contains_key(&a));
                    assert!(v.insert(i, &a, m));
                }
            }
            model.insert(a, m);
            v.check();
        }
        let got: Vec<_> = v.iter().map(|(a, m)| (*a, m)).collect();
        let want: Vec<_> = model.into_iter().collect();
        assert_eq!(got, want);
    }

    #[test]
    fn insert_out_of_range_is_refused() {
        let mut v = PeerVec::<6>::new();
        assert!(!v.insert(1, &a4(1), 0));
        assert!(v.is_empty());
        assert!(v.addr(0).is_none() && v.meta(0).is_none() && !v.set_meta(0, 1));
    }

    #[test]
    fn growth_fills_chunks_and_shrink_has_hysteresis() {
        let mut v = PeerVec::<6>::new();
        let mut caps = vec![];
        for i in 0..12 {
            assert!(v.insert(i, &a4(i as u32), 0));
            if caps.last() != Some(&v.capacity()) {
                caps.push(v.capacity());
            }
        }
        // 0 (inline), then chunks of 32, 48, 64, 80, 96 bytes.
        assert_eq!(caps, vec![0, 3, 5, 8, 10, 12]);
        // Remove down to 6 (== 12 / 2): no shrink yet.
        for _ in 0..6 {
            v.remove(0);
        }
        assert_eq!(v.capacity(), 12);
        // One more: 5 < 6 -> shrink to fill_capacity(5 + 0) = 5.
        v.remove(0);
        assert_eq!((v.len(), v.capacity()), (5, 5));
        // Add/remove at the boundary: one realloc up, none back down.
        assert!(v.insert(0, &a4(100), 0));
        assert_eq!(v.capacity(), 8);
        v.remove(0);
        assert_eq!(v.capacity(), 8);
        v.check();
    }

    #[test]
    fn large_blocks_grow_by_an_eighth() {
        let mut v = PeerVec::<6>::new();
        for i in 0..700u32 {
            let n = v.len();
            assert!(v.insert(n, &a4(i), 0));
        }
        let cap = v.capacity();
        assert!(cap * 7 > SMALL_BLOCK);
        while v.len() < cap {
            let n = v.len();
            assert!(v.insert(n, &a4(n as u32), 0));
        }
        let n = v.len();
        assert!(v.insert(n, &a4(n as u32), 0));
        let want = fill_capacity(cap + cap / 8, 7).unwrap();
        assert_eq!(v.capacity(), want);
        v.check();
    }

    #[test]
    fn retain_compacts_in_one_pass() {
        let mut v = PeerVec::<6>::new();
        for i in 0..40u32 {
            assert!(v.insert(i as usize, &a4(i), i as u8));
        }
        let removed = v.retain(|_, m| m % 3 == 0);
        assert_eq!(removed, 26);
        let metas: Vec<u8> = v.iter().map(|(_, m)| m).collect();
        assert_eq!(metas, (0..40).filter(|m| m % 3 == 0).collect::<Vec<u8>>());
        assert_eq!(v.addr(1), Some(&a4(3)));
        v.check();
        assert_eq!(v.capacity(), fill_capacity(14 + 1, 7).unwrap());
        assert_eq!(v.retain(|a, _| *a == a4(9)), 13);
        assert!(v.is_inline());
        v.check();
        v.clear();
        assert!(v.is_empty() && v.capacity() == 0);
    }

    #[test]
    fn torrent_counts() {
        let mut t = Torrent::<6>::new([1; 20], 9);
        assert_eq!(t.last_clean, 9);
        t.peers.insert(0, &a4(1), SEEDER);
        t.peers.insert(1, &a4(2), 0);
        t.seeders = 1;
        assert_eq!((t.seeders(), t.leechers(), t.downloaded()), (1, 1, 0));
        assert_eq!(t.info_hash(), &[1; 20]);
    }
}
