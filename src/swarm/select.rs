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
//!
//! # Big swarms
//!
//! A swarm of more than [`PeerVec::CHUNK_MAX`] peers is stored in chunks (see
//! [`super::torrent`]); the rule is the same over the chunks taken in order as one array, and
//! the cost stays bounded however the swarm is made up: the slices are walked with one cursor
//! over the chunks (each chunk passed once per selection), a chunk without a candidate is
//! skipped by its seeder count, and inside a chunk the next leecher is found 16 records per
//! step. So a seeder asking in a swarm of a million seeders and a few leechers costs a pass
//! over the chunk list and a few chunk scans, not a walk over a million records.

use super::torrent::{Chunk, PeerVec, SEEDER, next_with_seeder_bit, nibble_has};

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
    let Some((bytes, metas)) = peers.flat() else {
        return select_chunked(
            peers.chunks(),
            len,
            seeders,
            requester,
            seeder,
            numwant,
            rng,
            out,
        );
    };
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

/// Where the next candidate is searched for, in a chunked swarm.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    /// Any record but the requester.
    Any,
    /// A record with (true) or without (false) the SEEDER bit, but the requester.
    Seeder(bool),
}

/// [`select_peers`] over the chunks of a big swarm (at least two, in order); positions are
/// `chunk << 16 | index`, as [`PeerVec::search`] gives them.
#[allow(clippy::too_many_arguments)]
fn select_chunked<const N: usize>(
    chunks: &[Chunk<N>],
    len: usize,
    seeders: usize,
    requester: Option<usize>,
    seeder: bool,
    numwant: usize,
    rng: &mut fastrand::Rng,
    out: &mut Vec<u8>,
) -> usize {
    const SHIFT: usize = 16;
    let req = requester.map(|p| (p >> SHIFT, p & ((1 << SHIFT) - 1)));
    let metas_of = |c: usize| chunks[c].peers().flat().map_or(&[][..], |(_, m)| m);
    let is_seeder = |(c, o): (usize, usize)| nibble_has(metas_of(c), o, SEEDER);
    let seeders = seeders.min(len);
    let pool = if seeder { len - seeders } else { len };
    let self_in_pool = req.is_some_and(|(c, o)| {
        c < chunks.len() && o < chunks[c].len() && !(seeder && is_seeder((c, o)))
    });
    let candidates = pool - usize::from(self_in_pool && pool > 0);
    // The first record at or after (c, o) that `want` accepts, skipping whole chunks that
    // have none (by their seeder counts).
    let next = |mut c: usize, mut o: usize, want: Want| -> Option<(usize, usize)> {
        while c < chunks.len() {
            let ch = &chunks[c];
            let n = ch.len();
            let has = match want {
                Want::Any => true,
                Want::Seeder(true) => ch.seeders() > 0,
                Want::Seeder(false) => ch.seeders() < n,
            };
            if has && o < n {
                let found = match want {
                    Want::Any => Some(o),
                    Want::Seeder(s) => next_with_seeder_bit(metas_of(c), o, n, s),
                };
                if let Some(f) = found {
                    if Some((c, f)) != req {
                        return Some((c, f));
                    }
                    o = f + 1;
                    continue;
                }
            }
            c += 1;
            o = 0;
        }
        None
    };
    let push = |out: &mut Vec<u8>, (c, o): (usize, usize)| {
        if let Some(addr) = chunks[c].peers().addr(o) {
            out.extend_from_slice(addr);
        }
    };
    let candidate_kind = if seeder {
        Want::Seeder(false)
    } else {
        Want::Any
    };

    if candidates <= numwant {
        // Every candidate: the leechers, then (for a leecher) the seeders.
        out.reserve(candidates * N);
        let mut written = 0;
        let passes: &[bool] = if seeder { &[false] } else { &[false, true] };
        for &s in passes {
            let mut at = next(0, 0, Want::Seeder(s));
            while let Some((c, o)) = at {
                push(out, (c, o));
                written += 1;
                at = next(c, o + 1, Want::Seeder(s));
            }
        }
        return written;
    }

    // Sample: the slices of the flat rule over the global index, with a cursor (chunk `cc`
    // whose first record has global index `base`) that only moves forward.
    let mut picks = [(0u32, 0u32); MAX_NUMWANT];
    let mut k = 0usize;
    let step = ((len as u64) << 32) / numwant as u64;
    let (mut cc, mut base) = (0usize, 0usize);
    let (mut start, mut after) = (0usize, 0usize);
    for slice in 0..numwant {
        let end = if slice + 1 == numwant {
            len
        } else {
            (((slice as u64 + 1) * step) >> 32) as usize
        };
        let pos = start + rng.usize(..end.saturating_sub(start).max(1));
        start = end;
        let j = pos.max(after);
        while cc < chunks.len() && base + chunks[cc].len() <= j {
            base += chunks[cc].len();
            cc += 1;
        }
        if cc >= chunks.len() {
            break;
        }
        let Some((c, o)) = next(cc, j - base, candidate_kind) else {
            break;
        };
        while cc < c {
            base += chunks[cc].len();
            cc += 1;
        }
        picks[k] = (c as u32, o as u32);
        k += 1;
        after = base + o + 1;
    }
    if k < numwant {
        // Wrap around: the first candidates not picked yet (picks[..first] is in order).
        let first = k;
        let mut p = 0usize;
        let mut at = next(0, 0, candidate_kind);
        while k < numwant {
            let Some((c, o)) = at else {
                break;
            };
            let here = (c as u32, o as u32);
            while p < first && picks[p] < here {
                p += 1;
            }
            if !(p < first && picks[p] == here) {
                picks[k] = here;
                k += 1;
            }
            at = next(c, o + 1, candidate_kind);
        }
    }
    let picks = &picks[..k];
    out.reserve(k * N);
    let at = |&(c, o): &(u32, u32)| (c as usize, o as usize);
    for p in picks.iter().map(at).filter(|&p| !is_seeder(p)) {
        push(out, p);
    }
    for p in picks.iter().map(at).filter(|&p| is_seeder(p)) {
        push(out, p);
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swarm::torrent::Alone;
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
            assert!(v.insert_alone(slab, &[0; 4], i as usize, &[0, 0, hi, lo, 0, 1], meta));
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

    /// A chunked swarm of `n` IPv4 peers 0.0.i.i:1 (more than `CHUNK_MAX`), in a leaked slab.
    fn big_swarm(n: u16, seeder: impl Fn(u16) -> bool) -> (PeerVec<6>, usize) {
        let slab = Box::leak(Box::new(PeerVec::<6>::new_slab()));
        let mut v = PeerVec::<6>::new();
        let mut s = 0;
        for i in 0..n {
            let [hi, lo] = i.to_be_bytes();
            let a = [0, 0, hi, lo, 0, 1];
            let meta = if seeder(i) { SEEDER } else { 0 };
            s += seeder(i) as usize;
            let pos = v.search(&a).unwrap_err();
            assert!(v.insert_alone(slab, &[0; 4], pos, &a, meta));
        }
        assert!(v.is_chunked());
        (v, s)
    }

    /// The position of peer `i` in a swarm built by `swarm` or `big_swarm`.
    fn pos_of(v: &PeerVec<6>, i: u16) -> usize {
        let [hi, lo] = i.to_be_bytes();
        v.search(&[0, 0, hi, lo, 0, 1]).unwrap()
    }

    #[test]
    fn chunked_sample_properties() {
        let mut rng = fastrand::Rng::with_seed(43);
        let max = PeerVec::<6>::CHUNK_MAX as u16;
        for round in 0..18 {
            let n = rng.u16(max + 1..4 * max);
            // Dense, sparse, or almost no leechers (one per 997 peers).
            let (v, s) = match round % 3 {
                0 => big_swarm(n, |i| i % 3 == 0),
                1 => big_swarm(n, |i| i.wrapping_mul(7919) % 10 < 9),
                _ => big_swarm(n, |i| i % 997 != 5),
            };
            for _ in 0..12 {
                let req = rng.u16(..n);
                let p = pos_of(&v, req);
                let seeder_req = v.meta(p).unwrap() & SEEDER != 0;
                let numwant = [1usize, 10, 50, 200, 256, 300][rng.usize(..6)];
                let mut out = vec![];
                let k = select_peers(&v, s, Some(p), seeder_req, numwant, &mut rng, &mut out);
                let got = ids(&out);
                assert_eq!(got.len(), k);
                let is_seeder = |i: u16| v.meta(pos_of(&v, i)).unwrap() & SEEDER != 0;
                let candidates = (0..n)
                    .filter(|&i| i != req && !(seeder_req && is_seeder(i)))
                    .count();
                assert_eq!(k, numwant.min(candidates).min(MAX_NUMWANT));
                let set: HashSet<u16> = got.iter().copied().collect();
                assert_eq!(set.len(), k, "no duplicates");
                assert!(!set.contains(&req), "never self");
                let flags: Vec<bool> = got.iter().map(|&i| is_seeder(i)).collect();
                if seeder_req {
                    assert!(flags.iter().all(|&f| !f), "seeder gets only leechers");
                }
                assert!(flags.windows(2).all(|w| !w[0] || w[1]), "leechers first");
            }
        }
    }

    #[test]
    fn chunked_sample_spreads_over_the_whole_swarm() {
        let (v, s) = big_swarm(6000, |i| i % 3 == 0);
        let mut rng = fastrand::Rng::with_seed(4);
        let mut seen = vec![0u32; 6000];
        let me = pos_of(&v, 3000);
        for _ in 0..6000 {
            let mut out = vec![];
            let k = select_peers(&v, s, Some(me), false, 50, &mut rng, &mut out);
            assert_eq!(k, 50);
            for i in ids(&out) {
                seen[i as usize] += 1;
            }
        }
        assert_eq!(seen[3000], 0);
        // 6000 * 50 / 5999 ~ 50 picks each.
        let odd: Vec<usize> = (0..6000)
            .filter(|&i| i != 3000 && !(10..150).contains(&seen[i]))
            .collect();
        assert!(odd.is_empty(), "picked too rarely or too often: {odd:?}");
    }

    #[test]
    fn a_seeder_among_seeders_gets_the_few_leechers() {
        // Leechers only in the first and the last chunk, the requester a seeder in between.
        let n = 6 * PeerVec::<6>::CHUNK_MAX as u16;
        let (v, s) = big_swarm(n, |i| !(i == 3 || i == 7 || i >= n - 2));
        let mut rng = fastrand::Rng::with_seed(6);
        let mut out = vec![];
        let me = pos_of(&v, n / 2);
        let k = select_peers(&v, s, Some(me), true, 50, &mut rng, &mut out);
        assert_eq!(k, 4);
        assert_eq!(ids(&out), vec![3, 7, n - 2, n - 1]);
        // Fewer wanted than there are: a sample of them, still only leechers.
        let mut out = vec![];
        let k = select_peers(&v, s, Some(me), true, 3, &mut rng, &mut out);
        assert_eq!(k, 3);
        assert!(ids(&out).iter().all(|i| [3, 7, n - 2, n - 1].contains(i)));
        // A leecher asking gets a sample of everyone, the leechers in it first.
        let mut out = vec![];
        let k = select_peers(&v, s, Some(pos_of(&v, 7)), false, 200, &mut rng, &mut out);
        assert_eq!(k, 200);
        let got = ids(&out);
        let leechers = got
            .iter()
            .take_while(|i| [3, n - 2, n - 1].contains(i))
            .count();
        assert!(
            got[leechers..]
                .iter()
                .all(|i| ![3, 7, n - 2, n - 1].contains(i))
        );
    }
}
