//! Unit tests of [`super`]: block geometry, the nibble shifts, the moves between inline,
//! slab and own storage, and the slab moves, against models.

use super::*;

const K: [u8; KEY] = [9, 9, 9, 9];

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
    assert!(v.insert(&mut s, &K, 0, &a4(5), 0x9));
    assert!(v.is_inline() && !v.in_slab());
    assert_eq!(v.addrs(), &[0, 0, 0, 5, 0x1a, 0xe1]);
    assert_eq!(v.meta(0), Some(0x9));
    assert_eq!(s.chunk_bytes(), 0);
    v.check();
    assert!(v.insert(&mut s, &K, 0, &a4(3), 0x2));
    assert!(v.in_slab());
    assert_eq!(v.capacity(), 2);
    assert_eq!(v.addrs(), &[0, 0, 0, 3, 0x1a, 0xe1, 0, 0, 0, 5, 0x1a, 0xe1]);
    assert_eq!(
        (v.meta(0), v.meta(1), v.meta(2)),
        (Some(0x2), Some(0x9), None)
    );
    assert_eq!(s.chunk_bytes(), slab::SMALL_CHUNK);
    v.check();
    assert_eq!(v.remove(&mut s, 0), Some(0x2));
    assert!(v.is_inline());
    assert_eq!(v.addrs(), &[0, 0, 0, 5, 0x1a, 0xe1]);
    assert_eq!(v.meta(0), Some(0x9));
    assert_eq!(s.chunk_bytes(), 0, "the slot was given back");
    assert_eq!(v.remove(&mut s, 0), Some(0x9));
    assert!(v.is_empty() && v.capacity() == 0);
    assert_eq!(v.addrs(), &[] as &[u8]);
    assert_eq!(v.remove(&mut s, 0), None);
    v.check();
}

#[test]
fn ipv6_is_never_inline() {
    let mut s = PeerVec::<18>::new_slab();
    let mut v = PeerVec::<18>::new();
    let mut p = [0u8; 18];
    p[0] = 0x20;
    assert!(v.insert(&mut s, &K, 0, &p, 7));
    assert!(!v.is_inline() && v.in_slab());
    assert_eq!(v.capacity(), 1);
    assert_eq!(v.addrs().len(), 18);
    assert_eq!(v.meta(0), Some(7));
    v.check();
    p[17] = 1;
    assert!(v.insert(&mut s, &K, 1, &p, 8));
    assert_eq!(v.capacity(), 2);
    assert_eq!(v.remove(&mut s, 1), Some(8));
    assert_eq!(v.remove(&mut s, 0), Some(7));
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
                        assert_eq!(v.remove(&mut s, i), model.remove(&a));
                    }
                }
                Err(i) => {
                    assert!(!model.contains_key(&a));
                    if grow {
                        assert!(v.insert(&mut s, &K, i, &a, m));
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
    v.clear(&mut s);
    assert_eq!(s.chunk_bytes(), 0);
}

#[test]
fn insert_out_of_range_is_refused() {
    let mut s = PeerVec::<6>::new_slab();
    let mut v = PeerVec::<6>::new();
    assert!(!v.insert(&mut s, &K, 1, &a4(1), 0));
    assert!(v.is_empty());
    assert!(v.addr(0).is_none() && v.meta(0).is_none() && !v.set_meta(0, 1));
}

#[test]
fn own_blocks_grow_by_an_eighth_and_shrink_with_hysteresis() {
    let mut s = PeerVec::<6>::new_slab();
    let mut v = PeerVec::<6>::new();
    let max = PeerVec::<6>::SLAB_MAX;
    for i in 0..=max {
        assert!(v.insert(&mut s, &K, i, &a4(i as u32), 0));
    }
    // max + 1 records: own block of (max + 1) * 9 / 8.
    assert!(!v.in_slab());
    let cap = (max + 1) + (max + 1) / 8;
    assert_eq!(v.capacity(), cap);
    assert_eq!(s.chunk_bytes(), 0);
    while v.len() < cap {
        let n = v.len();
        assert!(v.insert(&mut s, &K, n, &a4(n as u32), 0));
    }
    assert_eq!(v.capacity(), cap);
    let n = v.len();
    assert!(v.insert(&mut s, &K, n, &a4(n as u32), 0));
    assert_eq!(v.capacity(), cap + cap / 8);
    // Removing down to half keeps the block; below the slab limit moves into the slab.
    v.retain(&mut s, |a, _| {
        u32::from_be_bytes([a[0], a[1], a[2], a[3]]) < 650
    });
    assert_eq!(v.len(), 650);
    assert_eq!(v.capacity(), cap + cap / 8);
    v.retain(&mut s, |a, _| {
        u32::from_be_bytes([a[0], a[1], a[2], a[3]]) % 2 == 0
    });
    assert!(v.in_slab() && v.len() == 325);
    assert_eq!(v.capacity(), 336);
    v.check();
    assert_eq!(v.addr(1), Some(&a4(2)));
    v.clear(&mut s);
    assert_eq!(s.chunk_bytes(), 0);
}

#[test]
fn retain_compacts_in_one_pass() {
    let mut s = PeerVec::<6>::new_slab();
    let mut v = PeerVec::<6>::new();
    for i in 0..40u32 {
        assert!(v.insert(&mut s, &K, i as usize, &a4(i), (i % 16) as u8));
    }
    let removed = v.retain(&mut s, |a, _| a[3] % 3 == 0);
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
    assert_eq!(v.retain(&mut s, |a, _| *a == a4(9)), 13);
    assert!(v.is_inline());
    v.check();
    v.clear(&mut s);
    assert!(v.is_empty() && v.capacity() == 0);
    assert_eq!(s.chunk_bytes(), 0);
}

#[test]
fn slab_moves_are_applied_by_key() {
    let mut s = PeerVec::<6>::new_slab();
    // 600 swarms of 10 (69-byte blocks, 237 per 16 KiB chunk: 3 chunks), keyed by number.
    let mut vs: Vec<PeerVec<6>> = (0..600).map(|_| PeerVec::new()).collect();
    for (k, v) in vs.iter_mut().enumerate() {
        let key = (k as u32).to_be_bytes();
        for i in 0..10u32 {
            assert!(v.insert(&mut s, &key, i as usize, &a4(k as u32 * 100 + i), 1));
        }
        assert_eq!(v.key(), key);
    }
    assert_eq!(s.chunk_bytes(), 3 * slab::SMALL_CHUNK);
    // Empty every other swarm; apply each move to the swarm named by its key.
    for k in (0..600).step_by(2) {
        vs[k].clear(&mut s);
        if let Some(m) = s.take_moved() {
            let owner = u32::from_be_bytes(m.key) as usize;
            assert!(vs[owner].apply_move(&m));
            assert!(!vs[owner].apply_move(&m), "only from the old slot");
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
        vs[k].clear(&mut s);
        if let Some(m) = s.take_moved() {
            assert!(vs[u32::from_be_bytes(m.key) as usize].apply_move(&m));
        }
    }
    assert_eq!(s.chunk_bytes(), 0);
}
