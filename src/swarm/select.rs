//! Which peers go back in an announce response.
//!
//! # The rule
//!
//! * CANDIDATES are the peers of the same swarm in the same store (so the same address family),
//!   never the requester itself. A SEEDER requester gets only leechers: seeders are of no use
//!   to it (chihaya does the same; opentracker sends everyone). A LEECHER requester gets seeders
//!   and leechers from the whole swarm.
//! * If there are at most `numwant` candidates, all of them are returned.
//! * Otherwise a random sample spread over the swarm (opentracker's idea, our own code): the
//!   sorted record array is cut into `numwant` equal slices; in each slice a random position is
//!   drawn and the first candidate at or after it (and after the previous pick) is taken. If
//!   that runs off the end of the array, the remaining picks are the first not yet picked
//!   candidates from the start. No record is picked twice, so exactly `numwant` distinct peers
//!   are returned, spread over the address space rather than clumped. Cost: O(numwant + skipped
//!   records), no allocation besides `out`.
//! * Output order: all picked leechers first, then the picked seeders (a client that wants few
//!   peers reads the useful ones first), each in the order picked.
//! * Each peer is written as its `N` compact bytes (BEP 23 / BEP 7), straight into `out`.

use super::torrent::{PeerVec, SEEDER, nibble_has};

/// The largest `numwant` honoured; bigger values are clamped to it (the caller already clamps
/// to its own limit, opentracker's is 200).
pub const MAX_NUMWANT: usize = 256;

/// Appends up to `numwant` (clamped to [`MAX_NUMWANT`]) peers of `peers` to `out`, `N` bytes
/// each, following the module's rule, and returns how many were written.
///
/// `requester` is the index of the announcing peer's own record (skipped), `None` if it is not
/// stored; `seeder` says whether the requester is a seeder (then only leechers are candidates);
/// `seeders` is the swarm's seeder count (the records with the SEEDER bit).
pub fn select_peers<const N: usize>(
    peers: &PeerVec<N>,
    seeders: usize,
    requester: Option<usize>,
    seeder: bool,
    numwant: usize,
    rng: &mut fastrand::Rng,
    out: &mut Vec<u8>,
) -> usize {
    let numwant = numwant.min(MAX_NUMWANT);
    let len = peers.len();
    if numwant == 0 || len == 0 {
        return 0;
    }
    let bytes = peers.addrs();
    let metas = peers.metas();
    let is_seeder = |i: usize| nibble_has(metas, i, SEEDER);
    let is_candidate = |i: usize| Some(i) != requester && !(seeder && is_seeder(i));
    let seeders = seeders.min(len);
    let pool = if seeder { len - seeders } else { len };
    let self_in_pool = requester.is_some_and(|i| i < len && !(seeder && is_seeder(i)));
    let candidates = pool - usize::from(self_in_pool && pool > 0);
    let push = |out: &mut Vec<u8>, i: usize| {
        if let Some(addr) = bytes.get(i * N..i * N + N) {
            out.extend_from_slice(addr);
        }
    };

    if candidates <= numwant {
        out.reserve(candidates * N);
        let mut written = 0;
        for i in (0..len).filter(|&i| is_candidate(i) && !is_seeder(i)) {
            push(out, i);
            written += 1;
        }
        if !seeder {
            for i in (0..len).filter(|&i| is_candidate(i) && is_seeder(i)) {
                push(out, i);
                written += 1;
            }
        }
        return written;
    }

    // Sample: candidates > numwant, so len > numwant and every slice is at least 1 wide.
    let mut picks = [0u32; MAX_NUMWANT];
    let mut k = 0usize;
    let mut next = 0usize;
    // Slice boundaries in 32.32 fixed point: one division per call instead of two per slice
    // (a 64-bit division costs tens of cycles). `len < 2^32` (a u32 count) and
    // `(slice + 1) * step <= len << 32`, so nothing overflows; `step >= 2^32` because
    // `len > numwant`, so every slice is at least one record wide; the last slice ends at `len`.
    let step = ((len as u64) << 32) / numwant as u64;
    let mut start = 0usize;
    for slice in 0..numwant {
        let end = if slice + 1 == numwant {
            len
        } else {
            (((slice as u64 + 1) * step) >> 32) as usize
        };
        let pos = start + rng.usize(..end.saturating_sub(start).max(1));
        start = end;
        let mut j = pos.max(next);
        while j < len && !is_candidate(j) {
            j += 1;
        }
        if j >= len {
            break;
        }
        picks[k] = j as u32;
        k += 1;
        next = j + 1;
    }
    if k < numwant {
        // Wrap around: take the first candidates not picked yet (picks[..first] is ascending).
        let first = k;
        let mut p = 0usize;
        let mut j = 0usize;
        while k < numwant && j < len {
            if p < first && picks[p] as usize == j {
                p += 1;
            } else if is_candidate(j) {
                picks[k] = j as u32;
                k += 1;
            }
            j += 1;
        }
    }
    let picks = &picks[..k];
    out.reserve(k * N);
    for &i in picks.iter().filter(|&&i| !is_seeder(i as usize)) {
        push(out, i as usize);
    }
    for &i in picks.iter().filter(|&&i| is_seeder(i as usize)) {
        push(out, i as usize);
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// A swarm of `n` IPv4 peers 0.0.i.i:1; peer i is a seeder when `seeder(i)`.
    fn swarm(n: u16, seeder: impl Fn(u16) -> bool) -> (PeerVec<6>, usize) {
        // The records live in a slab that must outlive the swarm: leak it (tests only).
        let slab = Box::leak(Box::new(PeerVec::<6>::new_slab()));
        let mut v = PeerVec::<6>::new();
        let mut s = 0;
        for i in 0..n {
            let [hi, lo] = i.to_be_bytes();
            let meta = if seeder(i) { SEEDER } else { 0 };
            s += seeder(i) as usize;
            assert!(v.insert(slab, &[0; 4], i as usize, &[0, 0, hi, lo, 0, 1], meta));
        }
        (v, s)
    }

    fn ids(out: &[u8]) -> Vec<u16> {
        out.chunks_exact(6)
            .map(|c| u16::from_be_bytes([c[2], c[3]]))
            .collect()
    }

    #[test]
    fn small_swarm_all_candidates_leechers_first() {
        let (v, s) = swarm(6, |i| i % 2 == 0);
        let mut rng = fastrand::Rng::with_seed(1);
        let mut out = vec![];
        // Leecher requester (index 3): everyone else, leechers then seeders.
        let n = select_peers(&v, s, Some(3), false, 50, &mut rng, &mut out);
        assert_eq!(n, 5);
        assert_eq!(ids(&out), vec![1, 5, 0, 2, 4]);
        assert_eq!(&out[..6], &[0, 0, 0, 1, 0, 1]);
        // Seeder requester (index 2): only the leechers.
        out.clear();
        let n = select_peers(&v, s, Some(2), true, 50, &mut rng, &mut out);
        assert_eq!((n, ids(&out)), (3, vec![1, 3, 5]));
    }

    #[test]
    fn numwant_zero_and_empty() {
        let (v, s) = swarm(10, |_| false);
        let mut rng = fastrand::Rng::with_seed(1);
        let mut out = vec![9];
        assert_eq!(
            select_peers(&v, s, Some(0), false, 0, &mut rng, &mut out),
            0
        );
        let e = PeerVec::<6>::new();
        assert_eq!(select_peers(&e, 0, None, false, 50, &mut rng, &mut out), 0);
        assert_eq!(out, vec![9], "out untouched");
    }

    #[test]
    fn sample_properties() {
        let mut rng = fastrand::Rng::with_seed(42);
        for _ in 0..300 {
            let n = rng.u16(1..400);
            let density = rng.u16(0..=10);
            let (v, s) = swarm(n, |i| i.wrapping_mul(7919) % 10 < density);
            let req = rng.usize(..n as usize);
            let seeder_req = v.meta(req).unwrap() & SEEDER != 0;
            let numwant = rng.usize(0..300);
            let mut out = vec![];
            let k = select_peers(&v, s, Some(req), seeder_req, numwant, &mut rng, &mut out);
            let got = ids(&out);
            assert_eq!(got.len(), k);
            let candidates = (0..n as usize)
                .filter(|&i| i != req && !(seeder_req && v.meta(i).unwrap() & SEEDER != 0))
                .count();
            assert_eq!(k, numwant.min(candidates).min(MAX_NUMWANT));
            let set: HashSet<u16> = got.iter().copied().collect();
            assert_eq!(set.len(), k, "no duplicates");
            assert!(!set.contains(&(req as u16)), "never self");
            let seeder_flags: Vec<bool> = got
                .iter()
                .map(|&i| v.meta(i as usize).unwrap() & SEEDER != 0)
                .collect();
            if seeder_req {
                assert!(
                    seeder_flags.iter().all(|&f| !f),
                    "seeder gets only leechers"
                );
            }
            // Leechers first: no leecher after a seeder.
            assert!(seeder_flags.windows(2).all(|w| !w[0] || w[1]));
        }
    }

    #[test]
    fn sample_spreads_over_the_whole_swarm() {
        let (v, s) = swarm(1000, |i| i % 3 == 0);
        let mut rng = fastrand::Rng::with_seed(3);
        let mut seen = vec![0u32; 1000];
        for _ in 0..2000 {
            let mut out = vec![];
            let k = select_peers(&v, s, Some(500), false, 50, &mut rng, &mut out);
            assert_eq!(k, 50);
            for i in ids(&out) {
                seen[i as usize] += 1;
            }
        }
        assert_eq!(seen[500], 0);
        let never: Vec<usize> = (0..1000).filter(|&i| i != 500 && seen[i] == 0).collect();
        assert!(never.is_empty(), "never picked: {never:?}");
        // Roughly even: 2000 * 50 / 999 ~ 100 picks each.
        assert!(
            seen.iter()
                .enumerate()
                .all(|(i, &c)| i == 500 || (40..300).contains(&c))
        );
    }

    #[test]
    fn wraps_around_when_candidates_are_at_the_front() {
        // Seeder requester; the only leechers are the first 30 of 1000 peers.
        let (v, s) = swarm(1000, |i| i >= 30);
        let mut rng = fastrand::Rng::with_seed(5);
        for _ in 0..50 {
            let mut out = vec![];
            let k = select_peers(&v, s, Some(999), true, 20, &mut rng, &mut out);
            assert_eq!(k, 20);
            let got = ids(&out);
            assert!(got.iter().all(|&i| i < 30));
            assert_eq!(got.iter().collect::<HashSet<_>>().len(), 20);
        }
    }

    #[test]
    fn requester_not_stored_and_numwant_clamped() {
        let (v, s) = swarm(600, |i| i % 2 == 1);
        let mut rng = fastrand::Rng::with_seed(9);
        let mut out = vec![];
        let k = select_peers(&v, s, None, false, 10_000, &mut rng, &mut out);
        assert_eq!(k, MAX_NUMWANT);
        assert_eq!(out.len(), MAX_NUMWANT * 6);
        let mut out = vec![];
        assert_eq!(
            select_peers(&v, s, None, true, 1000, &mut rng, &mut out),
            256
        );
        let mut out = vec![];
        assert_eq!(
            select_peers(&v, s, None, true, 300, &mut rng, &mut out),
            256
        );
    }
}
