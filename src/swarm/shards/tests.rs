//! Unit tests of [`super`]: routing to shards, walks in info_hash order across shards, totals
//! (the global limits' counts), cleaning and retain over shard boundaries, and concurrent
//! announces from several threads against a model.

use super::*;
use crate::swarm::peer::peer_v4;
use crate::types::Event;
use std::net::Ipv4Addr;
use std::sync::Arc;

fn cfg() -> StoreConfig {
    StoreConfig {
        peer_timeout: 100,
        torrent_timeout: 1000,
    }
}

/// An info_hash whose top 12 bits are `bucket`, the rest `tail`.
fn hash_in(bucket: usize, tail: u8) -> InfoHash {
    let mut h = [tail; 20];
    h[0] = (bucket >> 4) as u8;
    h[1] = ((bucket & 15) << 4) as u8 | (tail & 15);
    h
}

fn announce(s: &Shards<6>, h: &InfoHash, last: u8, event: Event, now: u32) -> SwarmCounts {
    let peer = peer_v4(Ipv4Addr::new(10, 0, 0, last), 6881);
    let req = AnnounceInput {
        info_hash: h,
        peer: &peer,
        seeder: false,
        event,
        numwant: 50,
    };
    s.announce(&req, now, &mut fastrand::Rng::with_seed(1), &mut Vec::new())
}

#[test]
fn routing_is_the_top_bits_of_the_bucket() {
    let s = Shards::<6>::new(cfg());
    assert_eq!(s.shard_count(), SHARDS);
    let per = BUCKETS / SHARDS;
    for b in [0, 1, per - 1, per, 5 * per + 3, BUCKETS - 1] {
        let h = hash_in(b, 7);
        assert_eq!(bucket_of(&h), b);
        assert_eq!(s.shard_of(&h), b / per, "bucket {b}");
    }
    // Counts requested that are not powers of two are rounded up, and capped.
    assert_eq!(Shards::<6>::with_shards(cfg(), 3).shard_count(), 4);
    assert_eq!(Shards::<6>::with_shards(cfg(), 0).shard_count(), 1);
    assert_eq!(
        Shards::<6>::with_shards(cfg(), 1 << 20).shard_count(),
        BUCKETS
    );
}

#[test]
fn totals_follow_every_shard() {
    let s = Shards::<6>::new(cfg());
    for b in 0..256 {
        announce(&s, &hash_in(b * 16, 1), 1, Event::Started, 0);
        announce(&s, &hash_in(b * 16, 1), 2, Event::Started, 0);
    }
    assert_eq!((s.torrents(), s.peers(), s.seeders()), (256, 512, 0));
    for b in 0..128 {
        announce(&s, &hash_in(b * 16, 1), 1, Event::Stopped, 0);
    }
    assert_eq!((s.torrents(), s.peers()), (256, 384));
    s.check_invariants();
    assert!(s.contains(&hash_in(0, 1)));
    assert!(!s.contains(&hash_in(1, 1)));
    let p = peer_v4(Ipv4Addr::new(10, 0, 0, 2), 6881);
    assert!(s.contains_peer(&hash_in(16, 1), &p));
}

/// Every walk slice size gives every torrent once, in info_hash order, across shard
/// boundaries (shards empty at the start, the middle and the end included).
#[test]
fn walks_are_in_info_hash_order_across_shards() {
    let s = Shards::<6>::new(cfg());
    let mut expect = Vec::new();
    for b in (64..BUCKETS - 64).step_by(37) {
        for tail in [3, 9] {
            let h = hash_in(b, tail);
            announce(&s, &h, 1, Event::Started, 0);
            expect.push(h);
        }
    }
    expect.sort();
    for max in [1, 2, 5, 63, 64, 65, 1000, expect.len(), 100_000] {
        let mut got = Vec::new();
        let mut from = None;
        loop {
            let before = got.len();
            from = Shards::for_each_from(&s, from.as_ref(), max, |h, c| {
                assert_eq!(c.leechers, 1);
                got.push(*h);
            });
            assert!(got.len() - before <= max);
            if from.is_none() {
                break;
            }
        }
        assert_eq!(got, expect, "max {max}");
    }
}

#[test]
fn cleaning_and_retain_cover_every_shard() {
    let s = Shards::<6>::new(cfg());
    for b in (0..BUCKETS).step_by(7) {
        announce(&s, &hash_in(b, 2), 1, Event::Started, 0);
    }
    let n = s.torrents();
    // Retain over a range that crosses shard boundaries.
    let dropped = s.retain_buckets(60..200, |h| bucket_of(h) % 2 == 0);
    let odd = (60..200).filter(|b| b % 7 == 0 && b % 2 == 1).count() as u64;
    assert_eq!(dropped, odd);
    assert_eq!(s.torrents(), n - odd);
    s.check_invariants();
    // A whole sweep well after the timeout drops every peer and every torrent.
    let st = s.clean_step(10_000, BUCKETS);
    assert_eq!(st.buckets, BUCKETS);
    assert_eq!((s.torrents(), s.peers()), (0, 0));
    s.check_invariants();
}

/// Four threads announce and stop into the same torrents at once: the totals and each swarm
/// equal the model (every peer of thread `t` ends started iff its index is even).
#[test]
fn concurrent_announces_lose_nothing() {
    let s = Arc::new(Shards::<6>::new(cfg()));
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                for round in 0..3 {
                    for i in 0..200usize {
                        let h = hash_in(i * 20 % BUCKETS, (i % 3) as u8);
                        let ev = if round == 2 && i % 2 == 1 {
                            Event::Stopped
                        } else {
                            Event::Started
                        };
                        announce(&s, &h, t + 1, ev, 0);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    s.check_invariants();
    for i in 0..200usize {
        let h = hash_in(i * 20 % BUCKETS, (i % 3) as u8);
        let want = if i % 2 == 0 { 4 } else { 0 };
        assert_eq!(
            s.scrape(&h, 0).map_or(0, |c| c.leechers),
            want,
            "torrent {i}"
        );
    }
    assert_eq!(s.peers(), 100 * 4);
}
