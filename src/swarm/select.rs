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
//! over the chunks (each chunk passed once per selection) that keeps the current chunk's
//! records at hand (a pick costs what it costs in a flat swarm, and the picks are the same as
//! over one flat array of the same records for the same random draws), a chunk without a
//! candidate is skipped by its seeder count, and inside a chunk the next leecher is found 16
//! records per step. So a seeder asking in a swarm of a million seeders and a few leechers costs a pass
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

/// The records of chunk `c`: (address bytes, META bytes, records, seeders); all empty past the
/// last chunk.
#[inline]
fn run_of<const N: usize>(chunks: &[Chunk<N>], c: usize) -> (&[u8], &[u8], usize, usize) {
    match chunks
        .get(c)
        .and_then(|ch| Some((ch.peers().flat()?, ch.len(), ch.seeders())))
    {
        Some(((a, m), n, s)) => (a, m, n, s),
        None => (&[], &[], 0, 0),
    }
}

/// From chunk `c` (whose first record has swarm index `base`), the chunk holding the record of
/// index `j`, skipping over chunks by their lengths alone (and, with `leechers`, over chunks
/// without a leecher, moving `j` past them): (chunk, index of its first record, `j`). Past the
/// last chunk: (`chunks.len()`, the swarm's length, `j`). A walk over many chunks reads only
/// the directory, not the chunks' records.
#[inline]
fn skip<const N: usize>(
    chunks: &[Chunk<N>],
    mut c: usize,
    mut base: usize,
    mut j: usize,
    leechers: bool,
) -> (usize, usize, usize) {
    while let Some(ch) = chunks.get(c) {
        let n = ch.len();
        if j < base + n && !(leechers && ch.seeders() >= n) {
            break;
        }
        (c, base) = (c + 1, base + n);
        j = j.max(base);
    }
    (c, base, j)
}

/// The swarm index of the first record at or after index `j` that `want` accepts and that is
/// not the requester (`req`: chunk, index in it), skipping whole chunks without one by their
/// seeder counts; `None` when there is none. `at` is a cursor (chunk, index of its first
/// record) that moves forward from where the last call left it, back to the start only when
/// `j` lies before it. For the paths that run at most once per selection (every candidate, the
/// wrap-around); the sample's own loop is inlined in [`select_chunked`].
fn next_from<const N: usize>(
    chunks: &[Chunk<N>],
    at: &mut (usize, usize),
    mut j: usize,
    want: Want,
    req: (usize, usize),
) -> Option<usize> {
    if j < at.1 {
        *at = (0, 0);
    }
    let (mut c, mut base) = *at;
    let result = loop {
        let Some(ch) = chunks.get(c) else {
            break None;
        };
        let (n, seeders) = (ch.len(), ch.seeders());
        let none = match want {
            Want::Any => false,
            Want::Seeder(true) => seeders == 0,
            Want::Seeder(false) => seeders >= n,
        };
        if j >= base + n || none {
            (c, base) = (c + 1, base + n);
            j = j.max(base);
            continue;
        }
        let (_, metas, _, _) = run_of(chunks, c);
        let o = j - base;
        let found = match want {
            Want::Any => Some(o),
            Want::Seeder(s) => next_with_seeder_bit(metas, o, n, s),
        };
        match found {
            Some(f) if (c, f) != req => break Some(base + f),
            Some(f) => j = base + f + 1,
            None => j = base + n,
        }
    };
    *at = (c, base);
    result
}

/// [`select_peers`] over the chunks of a big swarm (at least two, in order); positions are
/// `chunk << 16 | index`, as [`PeerVec::search`] gives them. The same rule, and the same picks
/// for the same random draws, as over one flat array of the same records: the slices and the
/// picks are indexes in the whole swarm, mapped to chunks by cursors that move forward only
/// and keep the current chunk's records at hand, so a pick costs about what it costs in a flat
/// swarm.
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
    // The requester's position (chunk, index); one that matches nothing when not stored.
    let req = requester.map_or((usize::MAX, usize::MAX), |p| {
        (p >> SHIFT, p & ((1 << SHIFT) - 1))
    });
    let seeders = seeders.min(len);
    let pool = if seeder { len - seeders } else { len };
    let self_in_pool = {
        let (_, metas, n, _) = run_of(chunks, req.0);
        req.1 < n && !(seeder && nibble_has(metas, req.1, SEEDER))
    };
    let candidates = pool - usize::from(self_in_pool && pool > 0);
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
        let mut cur = (0, 0);
        for &s in passes {
            let mut at = next_from(chunks, &mut cur, 0, Want::Seeder(s), req);
            while let Some(j) = at {
                let (addrs, _, _, _) = run_of(chunks, cur.0);
                let o = (j - cur.1) * N;
                if let Some(addr) = addrs.get(o..o + N) {
                    out.extend_from_slice(addr);
                }
                written += 1;
                at = next_from(chunks, &mut cur, j + 1, Want::Seeder(s), req);
            }
        }
        return written;
    }

    // Sample: the slices of the flat rule over the swarm's indexes, with a cursor (chunk `c`,
    // whose first record has index `base`, and its META bytes, length and seeders) that only
    // moves forward. A pick is kept as its position (chunk, index in it): positions are in the
    // order of the swarm's indexes.
    let mut picks = [(0u32, 0u32); MAX_NUMWANT];
    let mut k = 0usize;
    let step = ((len as u64) << 32) / numwant as u64;
    let (mut start, mut after) = (0usize, 0usize);
    let (mut c, mut base) = (0usize, 0usize);
    let (_, mut metas, mut n, mut chunk_seeders) = run_of(chunks, 0);
    for slice in 0..numwant {
        let end = if slice + 1 == numwant {
            len
        } else {
            (((slice as u64 + 1) * step) >> 32) as usize
        };
        let pos = start + rng.usize(..end.saturating_sub(start).max(1));
        start = end;
        let mut j = pos.max(after);
        // The first candidate at or after j.
        let found = loop {
            if j >= base + n {
                if c >= chunks.len() {
                    break None;
                }
                // On to the chunk holding j, by the chunks' counts alone (a seeder skips
                // those without a leecher), then its records.
                (c, base) = (c + 1, base + n);
                (c, base, j) = skip(chunks, c, base, j, seeder);
                (_, metas, n, chunk_seeders) = run_of(chunks, c);
                continue;
            }
            let o = j - base;
            let f = if seeder {
                // A seeder gets leechers only.
                let hit = if chunk_seeders < n {
                    next_with_seeder_bit(metas, o, n, false)
                } else {
                    None
                };
                match hit {
                    Some(f) => f,
                    None => {
                        j = base + n;
                        continue;
                    }
                }
            } else {
                o
            };
            if (c, f) == req {
                j = base + f + 1;
                continue;
            }
            break Some(f);
        };
        let Some(o) = found else {
            break;
        };
        picks[k] = (c as u32, o as u32);
        k += 1;
        after = base + o + 1;
    }
    if k < numwant {
        // Wrap around: the first candidates not picked yet (picks[..first] is ascending).
        let first = k;
        let mut p = 0usize;
        let mut cur = (0, 0);
        let mut at = next_from(chunks, &mut cur, 0, candidate_kind, req);
        while k < numwant {
            let Some(j) = at else {
                break;
            };
            let here = (cur.0 as u32, (j - cur.1) as u32);
            while p < first && picks[p] < here {
                p += 1;
            }
            if !(p < first && picks[p] == here) {
                picks[k] = here;
                k += 1;
            }
            at = next_from(chunks, &mut cur, j + 1, candidate_kind, req);
        }
    }
    let picks = &picks[..k];
    out.reserve(k * N);
    // The picked leechers, then the picked seeders, each in the order picked; a chunk's records
    // are read again only when the chunk changes.
    for want_seeder in [false, true] {
        let mut last = usize::MAX;
        let (mut addrs, mut metas) = (&[][..], &[][..]);
        for &(c, o) in picks {
            let (c, o) = (c as usize, o as usize);
            if c != last {
                (addrs, metas, _, _) = run_of(chunks, c);
                last = c;
            }
            if nibble_has(metas, o, SEEDER) == want_seeder {
                if let Some(addr) = addrs.get(o * N..o * N + N) {
                    out.extend_from_slice(addr);
                }
            }
        }
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

    /// The rule of the module docs over a plain array of (address, seeder) records, written
    /// out as directly as possible: what a flat swarm of these records would return.
    fn rule(
        recs: &[([u8; 6], bool)],
        requester: Option<usize>,
        seeder: bool,
        numwant: usize,
        rng: &mut fastrand::Rng,
    ) -> Vec<u8> {
        let numwant = numwant.min(MAX_NUMWANT);
        let len = recs.len();
        let cand = |i: usize| Some(i) != requester && !(seeder && recs[i].1);
        let all: Vec<usize> = (0..len).filter(|&i| cand(i)).collect();
        let picks: Vec<usize> = if all.len() <= numwant {
            all
        } else {
            let mut picks = vec![];
            let step = ((len as u64) << 32) / numwant as u64;
            let (mut start, mut next) = (0, 0);
            for slice in 0..numwant {
                let end = if slice + 1 == numwant {
                    len
                } else {
                    (((slice as u64 + 1) * step) >> 32) as usize
                };
                let pos = start + rng.usize(..(end - start).max(1));
                start = end;
                match (pos.max(next)..len).find(|&j| cand(j)) {
                    Some(j) => {
                        picks.push(j);
                        next = j + 1;
                    }
                    None => break,
                }
            }
            let more: Vec<usize> = all.iter().copied().filter(|j| !picks.contains(j)).collect();
            let missing = numwant - picks.len();
            picks.extend(more.into_iter().take(missing));
            picks
        };
        let mut out = vec![];
        for want_seeder in [false, true] {
            for &i in picks.iter().filter(|&&i| recs[i].1 == want_seeder) {
                out.extend_from_slice(&recs[i].0);
            }
        }
        out
    }

    #[test]
    fn chunked_selection_picks_what_the_rule_picks_over_one_array() {
        let max = PeerVec::<6>::CHUNK_MAX as u16;
        let mut draw = fastrand::Rng::with_seed(77);
        for round in 0..12 {
            let n = draw.u16(max + 1..5 * max);
            let (v, s) = match round % 4 {
                0 => big_swarm(n, |i| i % 3 == 0),
                1 => big_swarm(n, |i| i.wrapping_mul(7919) % 10 < 9),
                2 => big_swarm(n, |i| i % 997 != 5),
                _ => big_swarm(n, |i| i >= n - 40),
            };
            let recs: Vec<([u8; 6], bool)> = v.iter().map(|(a, m)| (*a, m & SEEDER != 0)).collect();
            assert_eq!(recs.len(), n as usize);
            for _ in 0..20 {
                let req = draw.usize(..n as usize + 1);
                let (p, index) = if req == n as usize {
                    (None, None)
                } else {
                    (Some(pos_of(&v, req as u16)), Some(req))
                };
                let seeder_req = index.map_or(draw.bool(), |i| recs[i].1);
                let numwant = [1usize, 7, 50, 200, 256, 300][draw.usize(..6)];
                let seed = draw.u64(..);
                let mut out = vec![];
                let k = select_peers(
                    &v,
                    s,
                    p,
                    seeder_req,
                    numwant,
                    &mut fastrand::Rng::with_seed(seed),
                    &mut out,
                );
                let want = rule(
                    &recs,
                    index,
                    seeder_req,
                    numwant,
                    &mut fastrand::Rng::with_seed(seed),
                );
                assert_eq!(k * 6, out.len());
                assert_eq!(out, want, "round {round}, n {n}, numwant {numwant}");
            }
        }
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
