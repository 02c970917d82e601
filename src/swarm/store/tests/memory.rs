//! Memory: heap bytes per peer, measured with a counting allocator. The allocator is the
//! global one of the whole library test binary; only the ignored measurement reads it.

use super::*;

mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        /// Bytes requested by this thread (allocations minus frees).
        pub static REQUESTED: Cell<i64> = const { Cell::new(0) };
        /// The same in glibc chunks (request + 8 rounded up to 16, min 32).
        pub static CHUNKS: Cell<i64> = const { Cell::new(0) };
    }

    /// The glibc chunk of a request: `size + 8` rounded up to 16, at least 32.
    fn malloc_chunk(size: usize) -> usize {
        ((size + 8 + 15) & !15).max(32)
    }

    fn note(size: usize, sign: i64) {
        let chunk = malloc_chunk(size) as i64;
        let _ = REQUESTED.try_with(|c| c.set(c.get() + sign * size as i64));
        let _ = CHUNKS.try_with(|c| c.set(c.get() + sign * chunk));
    }

    /// Counts per thread, so tests running in parallel do not disturb each other.
    pub struct Counting;

    // SAFETY: forwards every call to System unchanged; the counters touch no heap memory.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            // SAFETY: same contract as the caller's.
            let p = unsafe { System.alloc(l) };
            if !p.is_null() {
                note(l.size(), 1);
            }
            p
        }
        unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
            // SAFETY: same contract as the caller's.
            let p = unsafe { System.alloc_zeroed(l) };
            if !p.is_null() {
                note(l.size(), 1);
            }
            p
        }
        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            note(l.size(), -1);
            // SAFETY: same contract as the caller's.
            unsafe { System.dealloc(p, l) }
        }
        unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
            // SAFETY: same contract as the caller's.
            let q = unsafe { System.realloc(p, l, new) };
            if !q.is_null() {
                note(l.size(), -1);
                note(new, 1);
            }
            q
        }
    }

    #[global_allocator]
    static A: Counting = Counting;

    pub fn now() -> (i64, i64) {
        (REQUESTED.with(|c| c.get()), CHUNKS.with(|c| c.get()))
    }
}

/// Fills a fresh store with `torrents` x `peers` IPv4 peers (random info_hashes and
/// addresses, peers announcing in rounds) and returns heap bytes per peer: (requested,
/// glibc chunks, requested including the bucket array).
fn measure(torrents: usize, peers: usize) -> (f64, f64, f64) {
    let mut rng = fastrand::Rng::with_seed(77);
    let hashes: Vec<InfoHash> = (0..torrents)
        .map(|_| {
            let mut h = [0u8; 20];
            rng.fill(&mut h);
            h
        })
        .collect();
    let mut out = Vec::with_capacity(64);
    let before_new = counting::now();
    let mut s = StoreV4::new(StoreConfig::default());
    let (r0, c0) = counting::now();
    for _ in 0..peers {
        for h in &hashes {
            let mut a = [0u8; 6];
            rng.fill(&mut a);
            let req = AnnounceInput {
                info_hash: h,
                peer: &a,
                seeder: false,
                event: Event::None,
                numwant: 0,
            };
            s.announce(&req, 0, &mut rng, &mut out);
        }
    }
    let (r1, c1) = counting::now();
    let n = (torrents * peers) as f64;
    // Exact but for the slab's free-slot sets (B-tree nodes, estimated).
    let err = s.heap_bytes() as i64 - (r1 - before_new.0);
    assert!(
        err.abs() <= (r1 - before_new.0) / 100,
        "heap_bytes off by {err}"
    );
    drop(s);
    (
        (r1 - r0) as f64 / n,
        (c1 - c0) as f64 / n,
        (r1 - before_new.0) as f64 / n,
    )
}

/// Run with `cargo test --lib heap_bytes_per_peer -- --ignored --nocapture`.
#[test]
#[ignore]
fn heap_bytes_per_peer() {
    for (t, p, target) in [(2_000, 100, 8.0), (20_000, 10, 14.0), (200_000, 1, 60.0)] {
        let (req, chunks, with_array) = measure(t, p);
        println!(
            "{t} torrents x {p} peers: {req:.2} B/peer requested, {chunks:.2} B/peer in glibc chunks \
             ({with_array:.2} with the bucket array); target {target}"
        );
        assert!(chunks <= target, "{chunks} > {target}");
    }
}
