//! Unit tests of [`super`]: announce, stop, scrape, cleaning and the slab through the store;
//! the randomized model test in [`model`], the memory measurement in [`memory`].

use super::*;
use crate::swarm::peer::peer_v4;
use std::collections::HashSet;
use std::net::Ipv4Addr;

mod memory;
mod model;
mod source;

const H1: InfoHash = [0x11; 20];
const H2: InfoHash = [0x22; 20];

fn p4(last: u8, port: u16) -> [u8; 6] {
    peer_v4(Ipv4Addr::new(10, 0, 0, last), port)
}

fn cfg(peer_timeout: u32, torrent_timeout: u32) -> StoreConfig {
    StoreConfig {
        peer_timeout,
        torrent_timeout,
    }
}

fn sc(seeders: u32, leechers: u32, downloaded: u32) -> SwarmCounts {
    SwarmCounts {
        seeders,
        leechers,
        downloaded,
    }
}

/// Announce helper: returns the counts and the selected peers.
fn ann<const N: usize>(
    s: &mut Store<N>,
    h: &InfoHash,
    peer: &[u8; N],
    seeder: bool,
    event: Event,
    numwant: usize,
    now: u32,
) -> (SwarmCounts, Vec<u8>) {
    let mut rng = fastrand::Rng::with_seed(1);
    let mut out = vec![];
    let req = AnnounceInput {
        info_hash: h,
        peer,
        seeder,
        event,
        numwant,
    };
    let c = s.announce(&req, now, &mut rng, &mut out);
    s.check_invariants();
    (c, out)
}

#[test]
fn first_announce_creates_and_counts_itself() {
    let mut s = StoreV4::new(StoreConfig::default());
    let (c, out) = ann(&mut s, &H1, &p4(1, 6881), false, Event::Started, 50, 0);
    assert_eq!(c, sc(0, 1, 0));
    assert!(out.is_empty(), "never self");
    assert_eq!((s.torrents(), s.peers(), s.seeders()), (1, 1, 0));
    assert!(s.contains(&H1) && !s.contains(&H2));
    let (c, out) = ann(&mut s, &H1, &p4(2, 6881), true, Event::None, 50, 1);
    assert_eq!(c, sc(1, 1, 0));
    assert_eq!(out, vec![10, 0, 0, 1, 0x1a, 0xe1]);
    let (_, out) = ann(&mut s, &H1, &p4(1, 6881), false, Event::None, 50, 2);
    assert_eq!(out, vec![10, 0, 0, 2, 0x1a, 0xe1]);
}

#[test]
fn duplicates_are_the_same_peer() {
    let mut s = StoreV4::new(StoreConfig::default());
    for now in 0..5 {
        let (c, _) = ann(&mut s, &H1, &p4(1, 6881), false, Event::None, 50, now);
        assert_eq!(c, sc(0, 1, 0));
    }
    // Same IP, other port: another peer.
    let (c, _) = ann(&mut s, &H1, &p4(1, 6882), false, Event::None, 50, 5);
    assert_eq!(c, sc(0, 2, 0));
    assert_eq!(s.peers(), 2);
}

#[test]
fn seeder_leecher_transitions() {
    let mut s = StoreV4::new(StoreConfig::default());
    let p = p4(1, 1);
    assert_eq!(
        ann(&mut s, &H1, &p, false, Event::None, 0, 0).0,
        sc(0, 1, 0)
    );
    // A stored leecher's left=0 counts a download, without `completed` (issue #13).
    assert_eq!(ann(&mut s, &H1, &p, true, Event::None, 0, 0).0, sc(1, 0, 1));
    assert_eq!(s.seeders(), 1);
    assert_eq!(ann(&mut s, &H1, &p, true, Event::None, 0, 0).0, sc(1, 0, 1));
    assert_eq!(
        ann(&mut s, &H1, &p, false, Event::None, 0, 0).0,
        sc(0, 1, 1)
    );
    assert_eq!(s.seeders(), 0);
}

#[test]
fn completed_counts_once_per_finished_download_and_only_for_seeders() {
    let mut s = StoreV4::new(StoreConfig::default());
    let p = p4(1, 1);
    // Completed with left > 0: never counts.
    assert_eq!(
        ann(&mut s, &H1, &p, false, Event::Completed, 0, 0).0,
        sc(0, 1, 0)
    );
    // Leecher -> seeder with completed: counts.
    assert_eq!(
        ann(&mut s, &H1, &p, true, Event::Completed, 0, 1).0,
        sc(1, 0, 1)
    );
    // A seeder repeating completed: no.
    assert_eq!(
        ann(&mut s, &H1, &p, true, Event::Completed, 0, 2).0,
        sc(1, 0, 1)
    );
    // A seeder announcing without completed, then with it: still no.
    ann(&mut s, &H1, &p, true, Event::None, 0, 3);
    assert_eq!(
        ann(&mut s, &H1, &p, true, Event::Completed, 0, 3).0,
        sc(1, 0, 1)
    );
    // Back to leecher and finished again (a new download): counts.
    ann(&mut s, &H1, &p, false, Event::None, 0, 3);
    assert_eq!(
        ann(&mut s, &H1, &p, true, Event::Completed, 0, 4).0,
        sc(1, 0, 2)
    );
    // A new peer that arrives completed counts at once.
    let q = p4(2, 1);
    assert_eq!(
        ann(&mut s, &H1, &q, true, Event::Completed, 0, 5).0,
        sc(2, 0, 3)
    );
    // Leaving and coming back completed counts again.
    assert_eq!(s.stop(&H1, &p, 6), sc(1, 0, 3));
    assert_eq!(
        ann(&mut s, &H1, &p, true, Event::Completed, 0, 7).0,
        sc(2, 0, 4)
    );
    s.check_invariants();
}

/// Every transition of the completion rule (issue #13, [`Store::announce`]): what the swarm
/// holds of the peer before, what it announces, and whether one download is counted.
#[test]
fn completions_every_transition() {
    #[derive(Clone, Copy, Debug)]
    enum Was {
        Unknown,
        Leecher,
        Seeder,
    }
    use Event::{Completed, None as Plain, Started, Stopped};
    use Was::{Leecher, Seeder, Unknown};
    // (held before, left=0?, event, counted, held after: Some(seeder) or None)
    let cases = [
        (Unknown, false, Started, 0, Some(false)),
        (Unknown, false, Completed, 0, Some(false)),
        (Unknown, true, Plain, 0, Some(true)),
        (Unknown, true, Started, 0, Some(true)),
        (Unknown, true, Completed, 1, Some(true)),
        (Unknown, true, Stopped, 0, None),
        (Unknown, false, Stopped, 0, None),
        (Leecher, false, Plain, 0, Some(false)),
        (Leecher, false, Completed, 0, Some(false)),
        (Leecher, false, Stopped, 0, None),
        (Leecher, true, Plain, 1, Some(true)),
        (Leecher, true, Started, 1, Some(true)),
        (Leecher, true, Completed, 1, Some(true)),
        (Leecher, true, Stopped, 1, None),
        (Seeder, true, Plain, 0, Some(true)),
        (Seeder, true, Started, 0, Some(true)),
        (Seeder, true, Completed, 0, Some(true)),
        (Seeder, true, Stopped, 0, None),
        (Seeder, false, Plain, 0, Some(false)),
        (Seeder, false, Stopped, 0, None),
    ];
    for (was, left0, event, counted, after) in cases {
        let case = format!("{was:?} then left=0 {left0}, {event:?}");
        let mut s = StoreV4::new(StoreConfig::default());
        let p = p4(1, 1);
        // Another peer keeps the torrent alive whatever happens to `p`.
        ann(&mut s, &H1, &p4(9, 9), false, Started, 0, 0);
        match was {
            Unknown => {}
            Leecher => drop(ann(&mut s, &H1, &p, false, Started, 0, 0)),
            // A seeder from the start: joining with left=0 counts nothing.
            Seeder => drop(ann(&mut s, &H1, &p, true, Started, 0, 0)),
        }
        assert_eq!(s.completions(), 0, "{case}: setup");
        let (c, out) = ann(&mut s, &H1, &p, left0, event, 50, 1);
        assert_eq!(c.downloaded, counted, "{case}: downloaded");
        assert_eq!(s.completions(), u64::from(counted), "{case}: completions");
        assert_eq!(s.scrape(&H1, 1).unwrap().downloaded, counted, "{case}");
        let held = s
            .get(&H1)
            .and_then(|t| t.peers().search(&p).ok().map(|i| t.peers().meta(i)));
        assert_eq!(
            held.map(|m| m.unwrap_or(0) & SEEDER != 0),
            after,
            "{case}: held after"
        );
        if event == Stopped {
            assert!(out.is_empty(), "{case}: a stop selects nothing");
        }
        // Never twice: the same announce again counts nothing more (a stopped peer that
        // stops again is unknown; a seeder that repeats itself is a seeder).
        let (c, _) = ann(&mut s, &H1, &p, left0, event, 0, 2);
        assert_eq!(c.downloaded, counted, "{case}: repeated");
    }
}

#[test]
fn a_stopped_last_leecher_that_finished_keeps_its_torrent() {
    // rtorrent's sequence alone in a swarm: started with left>0, stopped with left=0. The
    // torrent is kept (peerless) for its count.
    let mut s = StoreV4::new(cfg(4, 100));
    let p = p4(1, 1);
    assert_eq!(
        ann(&mut s, &H1, &p, false, Event::Started, 0, 0).0,
        sc(0, 1, 0)
    );
    assert_eq!(
        ann(&mut s, &H1, &p, true, Event::Stopped, 0, 1).0,
        sc(0, 0, 1)
    );
    assert_eq!((s.torrents(), s.peers(), s.completions()), (1, 0, 1));
    assert_eq!(s.scrape(&H1, 2), Some(sc(0, 0, 1)));
    // A leecher that expired before its left=0 is a stranger: nothing counts.
    ann(&mut s, &H2, &p, false, Event::Started, 0, 10);
    assert_eq!(
        ann(&mut s, &H2, &p, true, Event::None, 0, 20).0,
        sc(1, 0, 0)
    );
    // `Store::stop` (no `left`) never counts, even for a leecher.
    ann(&mut s, &H2, &p4(2, 2), false, Event::Started, 0, 20);
    assert_eq!(s.stop(&H2, &p4(2, 2), 20), sc(1, 0, 0));
    // At u32::MAX the count stays, and no completion is counted.
    s.set_downloaded(&H2, u32::MAX, 20);
    ann(&mut s, &H2, &p4(3, 3), false, Event::Started, 0, 20);
    assert_eq!(
        ann(&mut s, &H2, &p4(3, 3), true, Event::None, 0, 20)
            .0
            .downloaded,
        u32::MAX
    );
    assert_eq!(s.completions(), 1);
    s.check_invariants();
}

#[test]
fn stop_known_and_unknown() {
    let mut s = StoreV4::new(StoreConfig::default());
    assert_eq!(s.stop(&H1, &p4(1, 1), 0), sc(0, 0, 0));
    assert_eq!(s.torrents(), 0, "stop never creates a torrent");
    ann(&mut s, &H1, &p4(1, 1), true, Event::None, 0, 0);
    ann(&mut s, &H1, &p4(2, 1), false, Event::None, 0, 0);
    assert_eq!(s.stop(&H1, &p4(3, 1), 1), sc(1, 1, 0), "unknown peer");
    assert_eq!(s.stop(&H1, &p4(1, 1), 1), sc(0, 1, 0));
    s.check_invariants();
    // Stopped passed to announce is a stop and selects nothing.
    let (c, out) = ann(&mut s, &H1, &p4(2, 1), false, Event::Stopped, 50, 2);
    assert_eq!((c, out.len()), (sc(0, 0, 0), 0));
    assert_eq!(
        (s.torrents(), s.peers()),
        (0, 0),
        "empty with downloaded 0: dropped"
    );
    assert!(!s.contains(&H1));
}

#[test]
fn empty_torrent_with_downloaded_is_kept_then_times_out() {
    // peer 4 s, torrent 100 s: 1-second ticks.
    let mut s = StoreV4::new(cfg(4, 100));
    ann(&mut s, &H1, &p4(1, 1), true, Event::Completed, 0, 0);
    assert_eq!(s.stop(&H1, &p4(1, 1), 5), sc(0, 0, 1));
    assert_eq!((s.torrents(), s.peers()), (1, 0));
    assert_eq!(s.get(&H1).unwrap().peers().capacity(), 0);
    assert_eq!(s.scrape(&H1, 105), Some(sc(0, 0, 1)));
    s.check_invariants();
    assert_eq!(s.scrape(&H1, 106), None);
    assert_eq!(s.torrents(), 0);
    // The same by the sweep, after the last peer expired.
    ann(&mut s, &H2, &p4(1, 1), true, Event::Completed, 0, 200);
    assert_eq!(s.clean_step(204, BUCKETS).peers_removed, 0);
    let st = s.clean_step(205, BUCKETS);
    assert_eq!(
        (st.peers_removed, st.seeders_removed, st.torrents_removed),
        (1, 1, 0)
    );
    assert_eq!(s.clean_step(305, BUCKETS).torrents_removed, 0);
    assert_eq!(s.clean_step(306, BUCKETS).torrents_removed, 1);
    assert_eq!(s.torrents(), 0);
    s.check_invariants();
}

#[test]
fn peerless_torrent_revived_keeps_downloaded_until_timeout() {
    let mut s = StoreV4::new(cfg(4, 100));
    ann(&mut s, &H1, &p4(1, 1), true, Event::Completed, 0, 0);
    s.stop(&H1, &p4(1, 1), 0);
    assert_eq!(
        ann(&mut s, &H1, &p4(2, 1), false, Event::None, 0, 50).0,
        sc(0, 1, 1)
    );
    s.stop(&H1, &p4(2, 1), 50);
    // Peerless since 50; at 151 it is past the timeout: the count is forgotten.
    assert_eq!(
        ann(&mut s, &H1, &p4(2, 1), false, Event::None, 0, 151).0,
        sc(0, 1, 0)
    );
    assert_eq!(s.torrents(), 1);
}

#[test]
fn expiry_boundaries() {
    for (timeout, tick_secs) in [(2u32, 1u32), (4, 1), (10, 3), (2700, 675)] {
        let mut s = StoreV4::new(cfg(timeout, 86400));
        assert_eq!(s.ticks().tick_secs, tick_secs);
        let t = s.ticks().peer_ticks;
        // Announce at the first second of tick 1000.
        let t0 = 1000 * tick_secs;
        ann(&mut s, &H1, &p4(1, 1), false, Event::None, 0, t0);
        ann(&mut s, &H1, &p4(2, 1), false, Event::None, 0, t0);
        // Keep peer 2 alive every tick; peer 1 lives through tick 1000 + T.
        let last_alive = (1000 + t + 1) * tick_secs - 1;
        for now in (t0..=last_alive).step_by(tick_secs as usize) {
            ann(&mut s, &H1, &p4(2, 1), false, Event::None, 0, now);
        }
        assert_eq!(
            s.scrape(&H1, last_alive),
            Some(sc(0, 2, 0)),
            "timeout {timeout}"
        );
        assert!(last_alive - t0 >= timeout);
        assert_eq!(
            s.scrape(&H1, last_alive + 1),
            Some(sc(0, 1, 0)),
            "timeout {timeout}"
        );
        s.check_invariants();
        // A long gap with no clean at all: everything expired, nothing misread mod 8.
        for gap_ticks in [t + 1, 7, 8, 9, 8 + t, 63, 64, 65, 1000] {
            let mut s = StoreV4::new(cfg(timeout, 86400));
            ann(&mut s, &H1, &p4(1, 1), true, Event::None, 0, t0);
            let later = t0 + gap_ticks * tick_secs;
            assert_eq!(s.scrape(&H1, later), None, "gap {gap_ticks} ticks");
            assert_eq!((s.peers(), s.seeders(), s.torrents()), (0, 0, 0));
        }
        // A gap of exactly T ticks keeps the peer.
        let mut s = StoreV4::new(cfg(timeout, 86400));
        ann(&mut s, &H1, &p4(1, 1), true, Event::None, 0, t0);
        assert_eq!(s.scrape(&H1, t0 + t * tick_secs), Some(sc(1, 0, 0)));
    }
}

#[test]
fn clean_step_visits_all_buckets_round_robin() {
    let mut s = StoreV4::new(cfg(10, 100));
    // One torrent in each of 64 buckets spread over the range.
    for k in 0..64u32 {
        let b = (k * 64 + 3) as usize;
        let mut h = [7u8; 20];
        h[0] = (b >> 4) as u8;
        h[1] = ((b & 15) << 4) as u8;
        assert_eq!(bucket_of(&h), b);
        ann(&mut s, &h, &p4(1, 1), false, Event::None, 0, 0);
    }
    assert_eq!(s.torrents(), 64);
    let mut removed = 0;
    let mut visited = 0;
    for _ in 0..4 {
        let st = s.clean_step(100, 1024);
        assert_eq!(st.buckets, 1024);
        visited += st.buckets;
        removed += st.torrents_removed;
        assert_eq!(st.peers_removed, st.torrents_removed);
        s.check_invariants();
    }
    assert_eq!((visited, removed), (4096, 64));
    assert_eq!(s.torrents(), 0);
    assert_eq!(s.clean_step(100, 100_000).buckets, BUCKETS);
    assert_eq!(s.clean_step(100, 0).buckets, 0);
}

#[test]
fn clean_step_cursor_moves_by_the_step() {
    let mut s = StoreV4::new(cfg(10, 100));
    let mut h = [0u8; 20];
    h[0] = 0x01; // bucket 16
    ann(&mut s, &h, &p4(1, 1), false, Event::None, 0, 0);
    assert_eq!(s.clean_step(50, 16).torrents_removed, 0, "buckets 0..16");
    assert_eq!(s.clean_step(50, 1).torrents_removed, 1, "bucket 16");
}

#[test]
fn inline_heap_through_the_store() {
    let mut s = StoreV4::new(StoreConfig::default());
    ann(&mut s, &H1, &p4(1, 1), false, Event::None, 0, 0);
    assert!(s.get(&H1).unwrap().peers().is_inline());
    ann(&mut s, &H1, &p4(2, 1), false, Event::None, 0, 0);
    assert!(s.get(&H1).unwrap().peers().in_slab());
    assert_eq!(s.get(&H1).unwrap().peers().capacity(), 2);
    s.stop(&H1, &p4(1, 1), 0);
    assert!(s.get(&H1).unwrap().peers().is_inline());
    s.stop(&H1, &p4(2, 1), 0);
    assert!(s.get(&H1).is_none());
    s.check_invariants();
}

#[test]
fn ipv6_store() {
    let mut s = StoreV6::new(StoreConfig::default());
    let mut a = [0u8; 18];
    a[0] = 0x20;
    a[17] = 1;
    let mut b = a;
    b[15] = 9;
    let (c, out) = ann(&mut s, &H1, &a, false, Event::None, 50, 0);
    assert_eq!((c, out.len()), (sc(0, 1, 0), 0));
    assert!(!s.get(&H1).unwrap().peers().is_inline());
    assert_eq!(s.get(&H1).unwrap().peers().capacity(), 1);
    let (c, out) = ann(&mut s, &H1, &b, true, Event::Completed, 50, 0);
    assert_eq!(c, sc(1, 1, 1));
    assert_eq!(out, a.to_vec());
    assert_eq!(s.stop(&H1, &a, 1), sc(1, 0, 1));
    assert_eq!(s.get(&H1).unwrap().peers().capacity(), 1);
    s.check_invariants();
}

#[test]
fn announce_selection_rules() {
    let mut s = StoreV4::new(StoreConfig::default());
    for i in 0..100u8 {
        ann(&mut s, &H1, &p4(i, 1), i % 4 == 0, Event::None, 0, 0);
    }
    // A seeder gets only leechers (75 of them), never itself.
    let (c, out) = ann(&mut s, &H1, &p4(0, 1), true, Event::None, 200, 1);
    assert_eq!(c, sc(25, 75, 0));
    assert_eq!(out.len(), 75 * 6);
    assert!(out.chunks_exact(6).all(|p| p[3] % 4 != 0));
    // A leecher gets everyone else, leechers first.
    let (_, out) = ann(&mut s, &H1, &p4(1, 1), false, Event::None, 200, 1);
    assert_eq!(out.len(), 99 * 6);
    let kinds: Vec<bool> = out.chunks_exact(6).map(|p| p[3] % 4 == 0).collect();
    assert_eq!(kinds.iter().filter(|&&k| !k).count(), 74);
    assert!(kinds.windows(2).all(|w| !w[0] || w[1]));
    // numwant smaller than the swarm: exactly numwant, distinct.
    let (_, out) = ann(&mut s, &H1, &p4(1, 1), false, Event::None, 30, 1);
    let set: HashSet<&[u8]> = out.chunks_exact(6).collect();
    assert_eq!((out.len(), set.len()), (30 * 6, 30));
    assert!(!set.contains(&p4(1, 1)[..]));
    let (_, out) = ann(&mut s, &H1, &p4(1, 1), false, Event::None, 0, 1);
    assert!(out.is_empty());
}

#[test]
fn for_each_from_order_and_resumption() {
    let mut s = StoreV4::new(StoreConfig::default());
    let mut rng = fastrand::Rng::with_seed(11);
    let mut want = vec![];
    for i in 0..300u32 {
        let mut h = [0u8; 20];
        rng.fill(&mut h);
        if i % 3 == 0 {
            h[0] = 0x42; // crowd one bucket range
            h[1] = 0x40;
        }
        ann(&mut s, &h, &p4(1, 1), i % 2 == 0, Event::Completed, 0, 0);
        want.push(h);
    }
    want.sort();
    want.dedup();
    for max in [1usize, 7, 100, 299, 300, 1000] {
        let mut got = vec![];
        let mut from = None;
        let mut calls = 0;
        loop {
            let mut n = 0;
            let next = s.for_each_from(from.as_ref(), max, |h, c| {
                got.push(*h);
                assert_eq!(c.leechers + c.seeders, 1);
                n += 1;
            });
            calls += 1;
            assert!(n <= max);
            match next {
                Some(h) => {
                    assert_eq!(n, max);
                    assert_eq!(Some(&h), got.last());
                    from = Some(h);
                }
                None => break,
            }
        }
        assert_eq!(got, want, "max {max}");
        assert_eq!(calls, want.len().div_ceil(max).max(1));
    }
    // Resuming from an info_hash that is not stored continues after it.
    let mut first = None;
    s.for_each_from(
        Some(&[
            0x42, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ]),
        1,
        |h, _| first = Some(*h),
    );
    let expect = want.iter().find(|h| {
        h[..2] >= [0x42, 0x40][..]
            && **h
                > [
                    0x42, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                ]
    });
    assert_eq!(first.as_ref(), expect);
    let empty = StoreV4::new(StoreConfig::default());
    assert_eq!(empty.for_each_from(None, 10, |_, _| panic!()), None);
}

#[test]
fn retain_fixes_totals() {
    let mut s = StoreV4::new(StoreConfig::default());
    for i in 0..50u8 {
        let h = [i; 20];
        for j in 0..(i % 5) + 1 {
            ann(&mut s, &h, &p4(j, 1), j % 2 == 0, Event::None, 0, 0);
        }
    }
    s.retain(|h| h[0] % 2 == 0);
    s.check_invariants();
    assert_eq!(s.torrents(), 25);
    assert!(s.contains(&[4; 20]) && !s.contains(&[5; 20]));
    s.retain(|_| false);
    assert_eq!((s.torrents(), s.peers(), s.seeders()), (0, 0, 0));
    s.check_invariants();
}

#[test]
fn set_downloaded_rules() {
    let mut s = StoreV4::new(cfg(4, 100));
    s.set_downloaded(&H1, 0, 0);
    assert_eq!(s.torrents(), 0);
    s.set_downloaded(&H1, 42, 0);
    assert_eq!(s.scrape(&H1, 1), Some(sc(0, 0, 42)));
    assert_eq!(
        ann(&mut s, &H1, &p4(1, 1), true, Event::Completed, 0, 2).0,
        sc(1, 0, 43)
    );
    s.set_downloaded(&H1, 0, 3);
    assert_eq!(s.scrape(&H1, 3), Some(sc(1, 0, 0)), "kept: it has a peer");
    s.stop(&H1, &p4(1, 1), 4);
    assert_eq!(s.torrents(), 0);
    s.set_downloaded(&H2, 5, 0);
    s.set_downloaded(&H2, 0, 1);
    assert_eq!(s.torrents(), 0);
    s.set_downloaded(&H2, 5, 0);
    assert_eq!(s.scrape(&H2, 100), Some(sc(0, 0, 5)));
    assert_eq!(s.scrape(&H2, 101), None);
    s.check_invariants();
}

#[test]
fn slab_memory_follows_the_peers_in_any_order() {
    let mut s = StoreV4::new(StoreConfig::default());
    let mut rng = fastrand::Rng::with_seed(5);
    // 300 torrents x 30 peers announced in random order, all in one bucket (the slab's owner
    // lookup finds each by its 4-byte prefix: torrents that share one stay out of the slab,
    // see `shared_prefixes_stay_out_of_the_slab`).
    let mut ops: Vec<(InfoHash, [u8; 6])> = vec![];
    for t in 0..300u32 {
        let mut h = [0u8; 20];
        h[..4].copy_from_slice(&[0x42, 0x42, (t >> 8) as u8, t as u8]);
        h[16..].copy_from_slice(&t.to_be_bytes());
        for p in 0..30u8 {
            ops.push((h, p4(p, t as u16)));
        }
    }
    rng.shuffle(&mut ops);
    for (h, p) in &ops {
        ann(&mut s, h, p, rng.bool(), Event::None, 0, 0);
    }
    s.check_invariants();
    assert_eq!(s.peers(), 9000);
    // Dense classes: exactly the chunks 300 blocks of 30 need (16 KiB chunks).
    let slot = super::super::torrent::block_bytes(6, 30);
    let per_chunk = super::super::slab::SMALL_CHUNK / slot;
    assert_eq!(
        s.slab.chunk_bytes(),
        300usize.div_ceil(per_chunk) * super::super::slab::SMALL_CHUNK
    );
    // Everyone leaves, in another random order: all slab memory is given back.
    rng.shuffle(&mut ops);
    for (k, (h, p)) in ops.iter().enumerate() {
        s.stop(h, p, 1);
        if k % 1000 == 0 {
            s.check_invariants();
        }
    }
    s.check_invariants();
    assert_eq!((s.torrents(), s.peers()), (0, 0));
    assert_eq!(s.slab.chunk_bytes(), 0);
}

#[test]
fn time_going_backwards_does_not_break_anything() {
    let mut s = StoreV4::new(cfg(4, 100));
    ann(&mut s, &H1, &p4(1, 1), false, Event::None, 0, 500);
    ann(&mut s, &H1, &p4(2, 1), true, Event::None, 0, 400);
    assert_eq!(s.scrape(&H1, 300), Some(sc(1, 1, 0)));
    s.clean_step(0, BUCKETS);
    assert_eq!(s.peers(), 2);
    s.check_invariants();
    assert_eq!(s.scrape(&H1, 504), Some(sc(1, 1, 0)));
    assert_eq!(s.scrape(&H1, 505), None);
}

/// [`ann`] without the invariant check after each announce (for loops over big stores; the
/// callers check every so often).
fn quiet<const N: usize>(
    s: &mut Store<N>,
    h: &InfoHash,
    peer: &[u8; N],
    seeder: bool,
    event: Event,
    numwant: usize,
    now: u32,
) -> (SwarmCounts, Vec<u8>) {
    let mut rng = fastrand::Rng::with_seed(1);
    let mut out = vec![];
    let req = AnnounceInput {
        info_hash: h,
        peer,
        seeder,
        event,
        numwant,
    };
    let c = s.announce(&req, now, &mut rng, &mut out);
    (c, out)
}

/// An IPv6 peer of `2001:db8:1:2::/64` (one subnet: as many addresses as a client wants).
fn p6(iid: u64) -> [u8; 18] {
    let mut a = [0u8; 18];
    a[..8].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2]);
    a[8..16].copy_from_slice(&iid.to_be_bytes());
    a[16..].copy_from_slice(&[0x1a, 0xe1]);
    a
}

#[test]
fn shared_prefixes_stay_out_of_the_slab() {
    let mut s = StoreV4::new(StoreConfig::default());
    let mut rng = fastrand::Rng::with_seed(8);
    // 300 torrents x 12 peers in random order, in three groups sharing 4 bytes, and one
    // torrent alone with its prefix in the same bucket.
    let group = |t: u32| {
        let mut h = [0u8; 20];
        h[..4].copy_from_slice(&[0x42, 0x42, 0, (t % 3) as u8]);
        h[16..].copy_from_slice(&t.to_be_bytes());
        h
    };
    let mut alone = [0u8; 20];
    alone[..4].copy_from_slice(&[0x42, 0x42, 1, 0]);
    let mut ops: Vec<(InfoHash, [u8; 6])> = vec![];
    for t in 0..300u32 {
        for p in 0..12u8 {
            ops.push((group(t), p4(p, t as u16)));
        }
    }
    for p in 0..12u8 {
        ops.push((alone, p4(p, 1)));
    }
    rng.shuffle(&mut ops);
    for (k, (h, p)) in ops.iter().enumerate() {
        quiet(&mut s, h, p, rng.bool(), Event::None, 0, 0);
        if k % 500 == 0 {
            s.check_invariants();
        }
    }
    s.check_invariants();
    for t in 0..300 {
        let t = s.get(&group(t)).unwrap();
        assert!(t.peers().slab_forbidden() && !t.peers().in_slab());
        assert_eq!(t.peers().len(), 12);
    }
    assert!(s.get(&alone).unwrap().peers().in_slab());
    assert_eq!(s.slab.slots(), 1);
    // A new torrent next to the lone one, with its prefix: the lone one leaves the slab.
    let mut twin = alone;
    twin[19] = 1;
    quiet(&mut s, &twin, &p4(1, 1), false, Event::Started, 0, 0);
    assert!(!s.get(&alone).unwrap().peers().in_slab());
    assert_eq!(s.slab.slots(), 0);
    assert_eq!(s.get(&alone).unwrap().peers().len(), 12);
    // Everyone leaves, in another order: everything is given back.
    ops.push((twin, p4(1, 1)));
    rng.shuffle(&mut ops);
    for (k, (h, p)) in ops.iter().enumerate() {
        s.stop(h, p, 1);
        if k % 500 == 0 {
            s.check_invariants();
        }
    }
    assert_eq!((s.torrents(), s.peers()), (0, 0));
    assert_eq!(s.slab.chunk_bytes(), 0);
    s.check_invariants();
}

#[test]
fn moves_find_their_owner_among_neighbours_in_the_slab() {
    // Torrents with distinct prefixes in one bucket, growing and shrinking in random order: the
    // slab moves blocks between them all the time, and each move finds its one owner.
    let mut s = StoreV4::new(StoreConfig::default());
    let mut rng = fastrand::Rng::with_seed(9);
    let h = |t: u8| {
        let mut h = [0u8; 20];
        h[..4].copy_from_slice(&[0x42, 0x42, t, 7]);
        h
    };
    for step in 0..20_000u32 {
        let t = rng.u8(..64);
        let p = p4(rng.u8(..40), 1);
        if rng.u8(..3) == 0 {
            s.stop(&h(t), &p, 0);
        } else {
            quiet(&mut s, &h(t), &p, false, Event::None, 0, 0);
        }
        if step % 1000 == 0 {
            s.check_invariants();
        }
    }
    s.check_invariants();
    assert!(s.slab.slots() > 0);
}

#[test]
fn a_crowded_bucket_is_chunked_and_stays_cheap_at_its_front() {
    // 5,000 torrents in one bucket (one peer each), created in descending order: every
    // creation lands at the front.
    let mut s = StoreV4::new(StoreConfig::default());
    let h = |t: u32| {
        let mut h = [0x42u8; 20];
        h[4..8].copy_from_slice(&t.to_be_bytes());
        h
    };
    for t in (1..=5000u32).rev() {
        quiet(&mut s, &h(t), &p4(1, 1), false, Event::Started, 0, 0);
    }
    s.check_invariants();
    let chunks = s.bucket(&h(1)).chunk_count();
    assert!(chunks >= 5000 / CHUNK_TORRENTS, "{chunks} chunks");
    // The lowest torrent's only peer stops (the torrent goes) and starts (it comes back).
    let low = h(0);
    for round in 0..2000 {
        quiet(&mut s, &low, &p4(2, 2), false, Event::Started, 0, 0);
        assert_eq!(s.stop(&low, &p4(2, 2), 0), sc(0, 0, 0));
        if round % 500 == 0 {
            s.check_invariants();
        }
    }
    assert_eq!(
        s.bucket(&h(1)).chunk_count(),
        chunks,
        "no split or merge in the loop"
    );
    // The full scrape still walks them in order.
    let mut got = vec![];
    s.for_each_from(None, usize::MAX, |h, _| got.push(*h));
    assert_eq!(got, (1..=5000).map(h).collect::<Vec<_>>());
    let mut resumed = vec![];
    let mut from = None;
    while let Some(next) = s.for_each_from(from.as_ref(), 333, |h, _| resumed.push(*h)) {
        from = Some(next);
    }
    assert_eq!(resumed, got);
    // They expire; the bucket is one vector again.
    s.clean_step(100_000, BUCKETS);
    assert_eq!(s.torrents(), 0);
    assert_eq!(s.bucket(&h(1)).chunk_count(), 1);
    s.check_invariants();
}

#[test]
fn a_big_swarm_from_one_subnet() {
    // One IPv6 torrent, 5 x CHUNK_MAX peers of one /64 announced from the highest down (each
    // insert at the front), a third of them seeders.
    let mut s = StoreV6::new(cfg(2700, 86400));
    let n = 5 * super::super::torrent::PeerVec::<18>::CHUNK_MAX as u64;
    for iid in (1..=n).rev() {
        let (c, _) = quiet(&mut s, &H1, &p6(iid), iid % 3 == 0, Event::Started, 0, 0);
        assert_eq!(c.seeders + c.leechers, (n - iid + 1) as u32);
    }
    assert!(s.get(&H1).unwrap().peers().is_chunked());
    assert_eq!(s.seeders(), n / 3);
    // Selection, refresh and seeder changes at known peers, in a chunked swarm.
    let (c, out) = quiet(&mut s, &H1, &p6(5), false, Event::None, 50, 1);
    assert_eq!((c.seeders as u64, c.leechers as u64), (n / 3, n - n / 3));
    assert_eq!(out.len(), 50 * 18);
    assert!(!out.chunks_exact(18).any(|p| p == p6(5)));
    let (c, out) = quiet(&mut s, &H1, &p6(5), true, Event::Completed, 50, 1);
    assert_eq!((c.seeders as u64, c.downloaded), (n / 3 + 1, 1));
    assert!(out.chunks_exact(18).all(|p| {
        let iid = u64::from_be_bytes(p[8..16].try_into().unwrap());
        iid % 3 != 0 && iid != 5
    }));
    // Stop most of them from the front: back to one block, then to the slab.
    for iid in 1..=n - 100 {
        s.stop(&H1, &p6(iid), 2);
        if iid % 1000 == 0 {
            s.check_invariants();
        }
    }
    assert!(!s.get(&H1).unwrap().peers().is_chunked());
    assert!(s.get(&H1).unwrap().peers().in_slab());
    s.check_invariants();
    // Grow again and let everyone expire through the sweep.
    for iid in (1..=n).rev() {
        quiet(&mut s, &H1, &p6(iid), false, Event::None, 0, 3);
    }
    s.check_invariants();
    let st = s.clean_step(3 + 5 * 675, BUCKETS);
    assert_eq!(st.peers_removed, n);
    assert_eq!(
        (s.torrents(), s.peers()),
        (1, 0),
        "kept for its downloaded count"
    );
    s.check_invariants();
}

#[test]
fn big_swarms_match_a_model() {
    // Three torrents, peers from 4 x CHUNK_MAX addresses: announces (seeder flips, completed),
    // stops, scrapes and a few expiries, against maps.
    use std::collections::BTreeMap;
    let max = super::super::torrent::PeerVec::<18>::CHUNK_MAX as u32;
    let mut rng = fastrand::Rng::with_seed(10);
    let mut s = StoreV6::new(cfg(2700, 86400));
    let hashes = [H1, H2, [0x33; 20]];
    // Per torrent: peer -> (seeder, last announce), downloaded.
    type Peers = BTreeMap<[u8; 18], (bool, u32)>;
    let mut model: Vec<(Peers, u32)> = vec![Default::default(); 3];
    let mut now = 0u32;
    let mut biggest = 0;
    let tick = s.ticks().tick_secs;
    let peer_ticks = s.ticks().peer_ticks;
    for step in 0..40_000u32 {
        let t = rng.usize(..3);
        let p = p6(u64::from(rng.u32(..4 * max)));
        let (m, dl) = &mut model[t];
        // The model's expiry, as the store cleans on access.
        let expire = |m: &mut Peers| m.retain(|_, (_, at)| now / tick - *at / tick <= peer_ticks);
        match rng.u8(..10) {
            0..=6 => {
                let seeder = rng.bool();
                let ev = if rng.u8(..8) == 0 {
                    Event::Completed
                } else {
                    Event::None
                };
                let (c, _) = quiet(&mut s, &hashes[t], &p, seeder, ev, 50, now);
                expire(m);
                let was = m.insert(p, (seeder, now));
                // A stored leecher's left=0, or a new peer's `completed` with left=0.
                let finished = match was {
                    Some((was_seeder, _)) => !was_seeder,
                    None => ev == Event::Completed,
                };
                if seeder && finished {
                    *dl += 1;
                }
                let seeders = m.values().filter(|(s, _)| *s).count() as u32;
                assert_eq!(c, sc(seeders, m.len() as u32 - seeders, *dl), "step {step}");
            }
            7..=8 => {
                let c = s.stop(&hashes[t], &p, now);
                expire(m);
                m.remove(&p);
                let seeders = m.values().filter(|(s, _)| *s).count() as u32;
                if m.is_empty() && *dl == 0 {
                    assert_eq!(c, sc(0, 0, 0));
                } else {
                    assert_eq!(c, sc(seeders, m.len() as u32 - seeders, *dl), "step {step}");
                }
            }
            _ => {
                if rng.u16(..2000) == 0 {
                    // A long pause: everyone expires.
                    now += 10 * tick * peer_ticks;
                } else {
                    now += rng.u32(..2);
                }
            }
        }
        biggest = biggest.max(model[t].0.len());
        if step % 4000 == 0 {
            s.check_invariants();
        }
    }
    s.check_invariants();
    assert!(
        biggest > max as usize,
        "no swarm grew past a chunk: {biggest}"
    );
}
