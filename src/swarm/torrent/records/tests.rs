//! Unit tests of [`super`]: block geometry, the nibble shifts, the moves between inline,
//! slab and own storage, and the slab moves, against models.

use super::*;

const K: [u8; KEY] = [9, 9, 9, 9];

/// The mutators for a swarm alone in its slab, where no other block can move: each checks that
/// the slab's move is empty (and gives the old return shapes).
pub(crate) trait Alone<const N: usize> {
    fn insert_alone(
        &mut self,
        s: &mut Slab<N>,
        k: &[u8; KEY],
        i: usize,
        a: &[u8; N],
        m: u8,
    ) -> bool;
    fn remove_alone(&mut self, s: &mut Slab<N>, i: usize) -> Option<u8>;
    fn retain_alone(&mut self, s: &mut Slab<N>, keep: impl FnMut(&[u8; N], u8) -> bool) -> usize;
    fn clear_alone(&mut self, s: &mut Slab<N>);
}

impl<const N: usize> Alone<N> for PeerVec<N> {
    fn insert_alone(
        &mut self,
        s: &mut Slab<N>,
        k: &[u8; KEY],
        i: usize,
        a: &[u8; N],
        m: u8,
    ) -> bool {
        match self.insert(s, k, i, a, m) {
            Some((_, mv)) => {
                assert!(mv.is_none());
                true
            }
            None => false,
        }
    }

    fn remove_alone(&mut self, s: &mut Slab<N>, i: usize) -> Option<u8> {
        let (meta, mv) = self.remove(s, i)?;
        assert!(mv.is_none());
        Some(meta)
    }

    fn retain_alone(&mut self, s: &mut Slab<N>, keep: impl FnMut(&[u8; N], u8) -> bool) -> usize {
        let (n, mv) = self.retain(s, keep);
        assert!(mv.is_none());
        n
    }

    fn clear_alone(&mut self, s: &mut Slab<N>) {
        assert!(self.clear(s).is_none());
    }
}

fn a4(i: u32) -> [u8; 6] {
    let b = i.to_be_bytes();
    [b[0], b[1], b[2], b[3], 0x1a, 0xe1]
}

#[test]
fn geometry() {
    assert_eq!(block_bytes(6, 1), 11);
    assert_eq!(block_bytes(6, 2), 17);
    assert_eq!(block_bytes(6, 100), 654);
    assert_eq!(block_bytes(18, 3), 60);
    assert_eq!(PeerVec::<6>::SLAB_MAX, 608);
    assert_eq!(PeerVec::<18>::SLAB_MAX, 216);
    assert!(block_bytes(6, slab::class_cap(608)) <= SLAB_BYTES);
    assert!(block_bytes(6, slab::class_cap(609)) > SLAB_BYTES);
}

#[test]
fn nibble_shifts_match_a_model() {
    let mut rng = fastrand::Rng::with_seed(11);
    for cap in 1..40usize {
        for _ in 0..50 {
            let mut m = vec![0u8; cap.div_ceil(2)];
            let mut model: Vec<u8> = Vec::new();
            for _ in 0..cap {
                let i = rng.usize(..=model.len());
                let v = rng.u8(..16);
                nibble_insert(&mut m, i, model.len(), v);
                model.insert(i, v);
                for (j, &x) in model.iter().enumerate() {
                    assert_eq!(nibble(&m, j), x, "insert cap {cap}");
                    assert_eq!(nibble_has(&m, j, SEEDER), x & SEEDER != 0);
                }
            }
            while !model.is_empty() {
                let i = rng.usize(..model.len());
                nibble_remove(&mut m, i, model.len());
                model.remove(i);
                for (j, &x) in model.iter().enumerate() {
                    assert_eq!(nibble(&m, j), x, "remove cap {cap}");
                }
            }
        }
    }
}

#[test]
fn inline_slab_transitions() {
    let mut s = PeerVec::<6>::new_slab();
    let mut v = PeerVec::<6>::new();
    assert!(v.is_empty() && !v.is_inline() && v.capacity() == 0);
    assert!(v.insert_alone(&mut s, &K, 0, &a4(5), 0x9));
    assert!(v.is_inline() && !v.in_slab());
    assert_eq!(v.addrs(), &[0, 0, 0, 5, 0x1a, 0xe1]);
    assert_eq!(v.meta(0), Some(0x9));
    assert_eq!(s.chunk_bytes(), 0);
    v.check();
    assert!(v.insert_alone(&mut s, &K, 0, &a4(3), 0x2));
    assert!(v.in_slab());
    assert_eq!(v.capacity(), 2);
    assert_eq!(v.addrs(), &[0, 0, 0, 3, 0x1a, 0xe1, 0, 0, 0, 5, 0x1a, 0xe1]);
    assert_eq!(
        (v.meta(0), v.meta(1), v.meta(2)),
        (Some(0x2), Some(0x9), None)
    );
    assert_eq!(s.chunk_bytes(), slab::SMALL_CHUNK);
    v.check();
    assert_eq!(v.remove_alone(&mut s, 0), Some(0x2));
    assert!(v.is_inline());
    assert_eq!(v.addrs(), &[0, 0, 0, 5, 0x1a, 0xe1]);
    assert_eq!(v.meta(0), Some(0x9));
    assert_eq!(s.chunk_bytes(), 0, "the slot was given back");
    assert_eq!(v.remove_alone(&mut s, 0), Some(0x9));
    assert!(v.is_empty() && v.capacity() == 0);
    assert_eq!(v.addrs(), &[] as &[u8]);
    assert_eq!(v.remove_alone(&mut s, 0), None);
    v.check();
}

#[test]
fn ipv6_is_never_inline() {
    let mut s = PeerVec::<18>::new_slab();
    let mut v = PeerVec::<18>::new();
    let mut p = [0u8; 18];
    p[0] = 0x20;
    assert!(v.insert_alone(&mut s, &K, 0, &p, 7));
    assert!(!v.is_inline() && v.in_slab());
    assert_eq!(v.capacity(), 1);
    assert_eq!(v.addrs().len(), 18);
    assert_eq!(v.meta(0), Some(7));
    v.check();
    p[17] = 1;
    assert!(v.insert_alone(&mut s, &K, 1, &p, 8));
    assert_eq!(v.capacity(), 2);
    assert_eq!(v.remove_alone(&mut s, 1), Some(8));
    assert_eq!(v.remove_alone(&mut s, 0), Some(7));
    assert_eq!(v.capacity(), 0);
    assert_eq!(s.chunk_bytes(), 0);
    v.check();
}

#[test]
fn random_inserts_removes_match_a_model() {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut s = PeerVec::<6>::new_slab();
    let mut v = PeerVec::<6>::new();
    let mut model = std::collections::BTreeMap::new();
    // Up past SLAB_MAX (own block) and back down.
    for round in 0..2 {
        for _ in 0..3000 {
            let a = a4(rng.u32(..1500));
            let m = rng.u8(..16);
            let grow = round == 0 || rng.u8(..4) == 0;
            match v.search(&a) {
                Ok(i) => {
                    assert!(model.contains_key(&a));
                    if grow {
                        assert!(v.set_meta(i, m));
                        model.insert(a, m);
                    } else {
                        assert_eq!(v.remove_alone(&mut s, i), model.remove(&a));
                    }
                }
                Err(i) => {
                    assert!(!model.contains_key(&a));
                    if grow {
                        assert!(v.insert_alone(&mut s, &K, i, &a, m));
                        model.insert(a, m);
                    }
                }
            }
            v.check();
            if round == 0 && model.len() > PeerVec::<6>::SLAB_MAX {
                assert!(!v.in_slab() && v.capacity() >= v.len());
            }
        }
        let got: Vec<_> = v.iter().map(|(a, m)| (*a, m)).collect();
        let want: Vec<_> = model.iter().map(|(a, m)| (*a, *m)).collect();
        assert_eq!(got, want);
    }
    v.clear_alone(&mut s);
    assert_eq!(s.chunk_bytes(), 0);
}

#[test]
fn insert_out_of_range_is_refused() {
    let mut s = PeerVec::<6>::new_slab();
    let mut v = PeerVec::<6>::new();
    assert!(!v.insert_alone(&mut s, &K, 1, &a4(1), 0));
    assert!(v.is_empty());
    assert!(v.addr(0).is_none() && v.meta(0).is_none() && !v.set_meta(0, 1));
}

#[test]
fn own_blocks_grow_by_an_eighth_and_shrink_with_hysteresis() {
    let mut s = PeerVec::<6>::new_slab();
    let mut v = PeerVec::<6>::new();
    let max = PeerVec::<6>::SLAB_MAX;
    for i in 0..=max {
        assert!(v.insert_alone(&mut s, &K, i, &a4(i as u32), 0));
    }
    // max + 1 records: own block of (max + 1) * 9 / 8.
    assert!(!v.in_slab());
    let cap = (max + 1) + (max + 1) / 8;
    assert_eq!(v.capacity(), cap);
    assert_eq!(s.chunk_bytes(), 0);
    while v.len() < cap {
        let n = v.len();
        assert!(v.insert_alone(&mut s, &K, n, &a4(n as u32), 0));
    }
    assert_eq!(v.capacity(), cap);
    let n = v.len();
    assert!(v.insert_alone(&mut s, &K, n, &a4(n as u32), 0));
    assert_eq!(v.capacity(), cap + cap / 8);
    // Removing down to half keeps the block; below the slab limit moves into the slab.
    v.retain_alone(&mut s, |a, _| {
        u32::from_be_bytes([a[0], a[1], a[2], a[3]]) < 650
    });
    assert_eq!(v.len(), 650);
    assert_eq!(v.capacity(), cap + cap / 8);
    v.retain_alone(&mut s, |a, _| {
        u32::from_be_bytes([a[0], a[1], a[2], a[3]]) % 2 == 0
    });
    assert!(v.in_slab() && v.len() == 325);
    assert_eq!(v.capacity(), 336);
    v.check();
    assert_eq!(v.addr(1), Some(&a4(2)));
    v.clear_alone(&mut s);
    assert_eq!(s.chunk_bytes(), 0);
}

#[test]
fn retain_compacts_in_one_pass() {
    let mut s = PeerVec::<6>::new_slab();
    let mut v = PeerVec::<6>::new();
    for i in 0..40u32 {
        assert!(v.insert_alone(&mut s, &K, i as usize, &a4(i), (i % 16) as u8));
    }
    let removed = v.retain_alone(&mut s, |a, _| a[3] % 3 == 0);
    assert_eq!(removed, 26);
    let metas: Vec<u8> = v.iter().map(|(_, m)| m).collect();
    assert_eq!(
        metas,
        (0..40u8)
            .filter(|i| i % 3 == 0)
            .map(|i| i % 16)
            .collect::<Vec<u8>>()
    );
    assert_eq!(v.addr(1), Some(&a4(3)));
    assert_eq!(v.capacity(), 14);
    v.check();
    assert_eq!(v.retain_alone(&mut s, |a, _| *a == a4(9)), 13);
    assert!(v.is_inline());
    v.check();
    v.clear_alone(&mut s);
    assert!(v.is_empty() && v.capacity() == 0);
    assert_eq!(s.chunk_bytes(), 0);
}

#[test]
fn slab_moves_are_applied_by_key() {
    let mut s = PeerVec::<6>::new_slab();
    // 600 swarms of 10 (69-byte blocks, 237 per 16 KiB chunk: 3 chunks), keyed by number.
    let mut vs: Vec<PeerVec<6>> = (0..600).map(|_| PeerVec::new()).collect();
    // Applies a move to the swarm named by its key, as the store does.
    fn apply(vs: &mut [PeerVec<6>], s: &mut Slab<6>, m: Move) {
        if let Some(key) = m.key() {
            let owner = u32::from_be_bytes(key) as usize;
            vs[owner].adopt(s, m).unwrap();
        }
    }
    for k in 0..600 {
        let key = (k as u32).to_be_bytes();
        for i in 0..10u32 {
            let (_, m) = vs[k]
                .insert(&mut s, &key, i as usize, &a4(k as u32 * 100 + i), 1)
                .unwrap();
            apply(&mut vs, &mut s, m);
        }
        assert_eq!(vs[k].key(), key);
    }
    assert_eq!(s.chunk_bytes(), 3 * slab::SMALL_CHUNK);
    // Empty every other swarm; apply each move to the swarm named by its key.
    for k in (0..600).step_by(2) {
        let m = vs[k].clear(&mut s);
        if let Some(key) = m.key() {
            let owner = u32::from_be_bytes(key) as usize;
            // Only the swarm in the slot the block left can adopt it.
            let m = vs[(owner + 1) % 600].adopt(&mut s, m).unwrap_err();
            vs[owner].adopt(&mut s, m).unwrap();
        }
    }
    // 300 blocks need two chunks: the third was given back at once.
    assert_eq!(s.chunk_bytes(), 2 * slab::SMALL_CHUNK);
    for (k, v) in vs.iter().enumerate().skip(1).step_by(2) {
        assert_eq!(v.key(), (k as u32).to_be_bytes());
        assert_eq!(v.len(), 10);
        assert_eq!(v.addr(9), Some(&a4(k as u32 * 100 + 9)));
        assert!(v.iter().all(|(_, m)| m == 1));
    }
    for k in 0..600 {
        let m = vs[k].clear(&mut s);
        apply(&mut vs, &mut s, m);
    }
    assert_eq!(s.chunk_bytes(), 0);
}

/// An IPv6 peer of `2001:db8:1:2::/64` with interface id `iid`.
fn a6(iid: u64) -> [u8; 18] {
    let mut a = [0u8; 18];
    a[..8].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2]);
    a[8..16].copy_from_slice(&iid.to_be_bytes());
    a[16..].copy_from_slice(&[0x1a, 0xe1]);
    a
}

/// Random inserts, removes, meta changes and retains on one swarm, up past `CHUNK_MAX` (so it
/// is chunked, split and merged) and back down to nothing, against a `BTreeMap`.
fn chunked_matches_a_model<const N: usize>(seed: u64, addr: impl Fn(u32) -> [u8; N]) {
    let max = PeerVec::<N>::CHUNK_MAX;
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut s = PeerVec::<N>::new_slab();
    let mut v = PeerVec::<N>::new();
    let mut model = std::collections::BTreeMap::new();
    let space = (5 * max) as u32;
    let mut was_chunked = false;
    for round in 0..6 {
        let grow_share = [230u8, 200, 128, 60, 128, 20][round];
        for step in 0..6 * max {
            let a = addr(rng.u32(..space));
            let m = rng.u8(..16);
            let grow = rng.u8(..) < grow_share;
            match v.search(&a) {
                Ok(p) => {
                    assert_eq!(v.addr(p), Some(&a));
                    assert_eq!(v.meta(p), model.get(&a).copied());
                    if grow {
                        assert!(v.set_meta(p, m));
                        model.insert(a, m);
                    } else {
                        assert_eq!(v.remove_alone(&mut s, p), model.remove(&a));
                    }
                }
                Err(p) => {
                    if grow {
                        let (at, mv) = v.insert(&mut s, &K, p, &a, m).unwrap();
                        assert!(mv.is_none());
                        assert_eq!((v.addr(at), v.meta(at)), (Some(&a), Some(m)));
                        model.insert(a, m);
                    }
                }
            }
            assert_eq!(v.len(), model.len());
            was_chunked |= v.is_chunked();
            if step % 97 == 0 {
                v.check();
            }
        }
        v.check();
        if round == 3 {
            // A retain that keeps a fifth, by address and by META.
            let removed = v.retain_alone(&mut s, |a, m| (a[N - 3] ^ m) % 5 == 0);
            let before = model.len();
            model.retain(|a, m| (a[N - 3] ^ *m) % 5 == 0);
            assert_eq!(removed, before - model.len());
            v.check();
        }
        let got: Vec<_> = v.iter().map(|(a, m)| (*a, m)).collect();
        let want: Vec<_> = model.iter().map(|(a, m)| (*a, *m)).collect();
        assert_eq!(got, want, "round {round}");
        let seeders = want.iter().filter(|(_, m)| m & SEEDER != 0).count();
        let chunk_seeders: usize = v.chunks().iter().map(|c| c.seeders()).sum();
        if v.is_chunked() {
            assert_eq!(chunk_seeders, seeders);
        }
    }
    assert!(was_chunked, "the swarm never grew past CHUNK_MAX");
    v.retain_alone(&mut s, |_, _| false);
    assert!(v.is_empty() && v.capacity() == 0);
    assert_eq!(s.chunk_bytes(), 0);
}

#[test]
fn chunked_swarms_match_a_model() {
    chunked_matches_a_model::<6>(21, a4);
    chunked_matches_a_model::<18>(22, |i| a6(u64::from(i)));
}

#[test]
fn chunk_geometry() {
    assert_eq!(PeerVec::<6>::CHUNK_MAX, 2520);
    assert_eq!(PeerVec::<18>::CHUNK_MAX, 885);
    assert!(block_bytes(6, 2520) <= CHUNK_BYTES && block_bytes(6, 2521) > CHUNK_BYTES);
    assert!(block_bytes(18, 885) <= CHUNK_BYTES && block_bytes(18, 886) > CHUNK_BYTES);
}

#[test]
fn front_inserts_and_removes_stay_in_the_first_chunk() {
    // An IPv6 /64 in descending order: every insert at the front.
    let max = PeerVec::<18>::CHUNK_MAX;
    let mut s = PeerVec::<18>::new_slab();
    let mut v = PeerVec::<18>::new();
    let n = 20 * max as u64;
    for iid in (1..=n).rev() {
        let p = v.search(&a6(iid)).unwrap_err();
        assert_eq!(p, 0, "the front");
        assert!(v.insert_alone(&mut s, &K, p, &a6(iid), (iid % 16) as u8));
    }
    v.check();
    let chunks = v.chunks().len();
    assert!(
        (20..=40).contains(&chunks),
        "{chunks} chunks of at least half"
    );
    // A loop of insert/remove below the lowest: one chunk's memmove, no split or merge.
    for _ in 0..3 * max {
        let p = v.search(&a6(0)).unwrap_err();
        assert!(v.insert_alone(&mut s, &K, p, &a6(0), SEEDER));
        assert_eq!(v.remove_alone(&mut s, 0), Some(SEEDER));
    }
    v.check();
    assert_eq!(v.chunks().len(), chunks);
    // Position arithmetic: the first record of the second chunk.
    let second = v.chunks()[0].len() as u64 + 1;
    assert_eq!(v.search(&a6(second)), Ok(1 << 16));
    assert_eq!(v.addr(1 << 16), Some(&a6(second)));
    assert_eq!(v.meta(1 << 16), Some((second % 16) as u8));
    assert_eq!(v.addr(999 << 16), None);
    assert!(v.insert(&mut s, &K, 999 << 16, &a6(u64::MAX), 0).is_none());
    assert!(v.remove(&mut s, 999 << 16).is_none());
    // Removing from the front down to half of CHUNK_MAX: one block again, then the slab.
    while v.len() > max / 2 {
        v.remove_alone(&mut s, 0).unwrap();
    }
    assert!(!v.is_chunked() && !v.in_slab());
    v.check();
    while v.len() > 3 {
        v.remove_alone(&mut s, 0).unwrap();
    }
    assert!(v.in_slab());
    v.check();
    v.clear_alone(&mut s);
    assert_eq!(s.chunk_bytes(), 0);
}

#[test]
fn a_swarm_kept_off_the_slab_uses_blocks_of_its_own() {
    let mut s = PeerVec::<6>::new_slab();
    let mut v = PeerVec::<6>::new();
    for i in 0..3 {
        assert!(v.insert_alone(&mut s, &K, i, &a4(i as u32), 0));
    }
    assert!(v.in_slab());
    assert_eq!(s.slots(), 1);
    // Out of the slab, records and key kept.
    assert!(v.forbid_slab(&mut s).is_none());
    assert!(!v.in_slab() && v.slab_forbidden());
    assert_eq!(s.slots(), 0);
    assert_eq!(v.key(), K);
    assert_eq!(v.addr(2), Some(&a4(2)));
    v.check();
    // It grows, shrinks to one (inline: no block at all) and grows again: never the slab.
    for i in 3..40 {
        assert!(v.insert_alone(&mut s, &K, i, &a4(i as u32), 0));
        assert!(!v.in_slab());
    }
    v.retain_alone(&mut s, |a, _| a[3] == 7);
    assert!(v.is_inline() && v.slab_forbidden());
    assert!(v.insert_alone(&mut s, &K, 1, &a4(8), 0));
    assert!(!v.in_slab() && s.slots() == 0);
    v.check();
    // IPv6: one record needs a block; it is one of its own.
    let mut s6 = PeerVec::<18>::new_slab();
    let mut w = PeerVec::<18>::new();
    assert!(w.forbid_slab(&mut s6).is_none());
    assert!(w.insert_alone(&mut s6, &K, 0, &a6(1), 0));
    assert!(!w.in_slab() && s6.slots() == 0 && w.capacity() == 1);
    w.check();
    w.clear_alone(&mut s6);
    v.clear_alone(&mut s);
}

#[test]
fn leechers_are_found_sixteen_at_a_time() {
    // 200 seeders with leechers at 0, 17, 63, 64 and 199; odd and even starts.
    let mut metas = vec![0x88u8; 100];
    for i in [0usize, 17, 63, 64, 199] {
        set_nibble(&mut metas, i, 0x3);
    }
    let model = |from: usize, end: usize, s: bool| {
        (from..end).find(|&i| nibble_has(&metas, i, SEEDER) == s)
    };
    for from in 0..201 {
        for end in [0usize, 1, 17, 18, 64, 65, 100, 199, 200] {
            for s in [false, true] {
                assert_eq!(
                    next_with_seeder_bit(&metas, from, end, s),
                    model(from, end, s),
                    "from {from} end {end} seeder {s}"
                );
            }
        }
    }
    assert_eq!(count_seeders(&metas, 200), 195);
    assert_eq!(count_seeders(&metas, 199), 195);
    assert_eq!(count_seeders(&metas, 1), 0);
}
