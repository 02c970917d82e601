//! The randomized test of the store against a simple model: real ages, no packing, no mod 8.

use super::*;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
struct MPeer {
    seeder: bool,
    tick: u32,
}

#[derive(Clone, Debug, Default)]
struct MTorrent<const N: usize> {
    peers: BTreeMap<[u8; N], MPeer>,
    downloaded: u32,
    empty_since: u32,
}

impl<const N: usize> MTorrent<N> {
    fn counts(&self) -> SwarmCounts {
        let s = self.peers.values().filter(|p| p.seeder).count() as u32;
        sc(s, self.peers.len() as u32 - s, self.downloaded)
    }
}

/// The store's semantics with real ages, no packing, no mod 8.
struct Model<const N: usize> {
    t: BTreeMap<InfoHash, MTorrent<N>>,
    /// Rises of a `downloaded` count by announces (the store's `completions`).
    completions: u64,
    tick_secs: u32,
    peer_ticks: u32,
    torrent_ticks: u32,
    cursor: usize,
}

impl<const N: usize> Model<N> {
    fn new(c: StoreConfig) -> Self {
        let tick_secs = c.peer_timeout.div_ceil(4).max(1);
        Model {
            t: BTreeMap::new(),
            completions: 0,
            tick_secs,
            peer_ticks: c.peer_timeout.div_ceil(tick_secs),
            torrent_ticks: c.torrent_timeout.div_ceil(tick_secs),
            cursor: 0,
        }
    }

    /// Cleans one torrent; true = drop it.
    fn clean_one(t: &mut MTorrent<N>, now: u32, pt: u32, tt: u32) -> bool {
        if t.peers.is_empty() {
            return t.downloaded == 0 || now - t.empty_since > tt;
        }
        t.peers.retain(|_, p| now - p.tick <= pt);
        if t.peers.is_empty() {
            t.empty_since = now;
            return t.downloaded == 0;
        }
        false
    }

    fn clean(&mut self, h: &InfoHash, now: u32) {
        let (pt, tt) = (self.peer_ticks, self.torrent_ticks);
        if let Some(t) = self.t.get_mut(h) {
            if Self::clean_one(t, now, pt, tt) {
                self.t.remove(h);
            }
        }
    }

    fn announce(
        &mut self,
        h: &InfoHash,
        peer: &[u8; N],
        seeder: bool,
        ev: Event,
        now: u32,
    ) -> SwarmCounts {
        if ev == Event::Stopped {
            return self.remove(h, peer, seeder, now);
        }
        let now = now / self.tick_secs;
        self.clean(h, now);
        let t = self.t.entry(*h).or_insert_with(|| MTorrent {
            empty_since: now,
            ..Default::default()
        });
        // A completion: a stored leecher's left=0 whatever the event, a new peer's `completed`
        // with left=0.
        let counts = match t.peers.get_mut(peer) {
            Some(p) => {
                let counts = seeder && !p.seeder;
                p.seeder = seeder;
                p.tick = now;
                counts
            }
            None => {
                t.peers.insert(*peer, MPeer { seeder, tick: now });
                ev == Event::Completed && seeder
            }
        };
        if counts && t.downloaded < u32::MAX {
            t.downloaded += 1;
            self.completions += 1;
        }
        t.counts()
    }

    fn stop(&mut self, h: &InfoHash, peer: &[u8; N], now: u32) -> SwarmCounts {
        self.remove(h, peer, false, now)
    }

    /// A stop; `finished` (left=0) counts a completion when the peer was a stored leecher.
    fn remove(&mut self, h: &InfoHash, peer: &[u8; N], finished: bool, now: u32) -> SwarmCounts {
        let now = now / self.tick_secs;
        self.clean(h, now);
        let Some(t) = self.t.get_mut(h) else {
            return SwarmCounts::default();
        };
        let removed = t.peers.remove(peer);
        if finished && removed.as_ref().is_some_and(|p| !p.seeder) && t.downloaded < u32::MAX {
            t.downloaded += 1;
            self.completions += 1;
        }
        if removed.is_some() && t.peers.is_empty() {
            if t.downloaded == 0 {
                self.t.remove(h);
                return SwarmCounts::default();
            }
            t.empty_since = now;
        }
        t.counts()
    }

    fn scrape(&mut self, h: &InfoHash, now: u32) -> Option<SwarmCounts> {
        self.clean(h, now / self.tick_secs);
        self.t.get(h).map(|t| t.counts())
    }

    fn clean_step(&mut self, now: u32, k: usize) {
        let now = now / self.tick_secs;
        let k = k.min(BUCKETS);
        let (pt, tt, cur) = (self.peer_ticks, self.torrent_ticks, self.cursor);
        self.t.retain(|h, t| {
            let off = (bucket_of(h) + BUCKETS - cur) % BUCKETS;
            !(off < k && Self::clean_one(t, now, pt, tt))
        });
        self.cursor = (cur + k) % BUCKETS;
    }

    fn set_downloaded(&mut self, h: &InfoHash, d: u32, now: u32) {
        let now = now / self.tick_secs;
        self.clean(h, now);
        match self.t.get_mut(h) {
            Some(t) => {
                t.downloaded = d;
                if d == 0 && t.peers.is_empty() {
                    self.t.remove(h);
                }
            }
            None if d > 0 => {
                self.t.insert(
                    *h,
                    MTorrent {
                        peers: BTreeMap::new(),
                        downloaded: d,
                        empty_since: now,
                    },
                );
            }
            None => {}
        }
    }

    fn totals(&self) -> (u64, u64, u64) {
        let peers = self.t.values().map(|t| t.peers.len() as u64).sum();
        let seeders = self.t.values().map(|t| t.counts().seeders as u64).sum();
        (self.t.len() as u64, peers, seeders)
    }
}

fn compare_all<const N: usize>(s: &Store<N>, m: &Model<N>) {
    let mut got = vec![];
    assert_eq!(
        s.for_each_from(None, usize::MAX, |h, c| got.push((*h, c))),
        None
    );
    let want: Vec<_> = m.t.iter().map(|(h, t)| (*h, t.counts())).collect();
    assert_eq!(got, want);
    for (h, mt) in &m.t {
        let t = s.get(h).unwrap();
        let peers: Vec<_> = t.peers().iter().map(|(a, meta)| (*a, meta)).collect();
        let want: Vec<_> = mt
            .peers
            .iter()
            .map(|(a, p)| {
                let meta = (p.tick & 7) as u8 | if p.seeder { SEEDER } else { 0 };
                (*a, meta)
            })
            .collect();
        assert_eq!(peers, want);
    }
}

fn run_model<const N: usize>(seed: u64, c: StoreConfig, steps: usize, mk: impl Fn(u8) -> [u8; N]) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut s = Store::<N>::new(c);
    let mut m = Model::<N>::new(c);
    let tick = m.tick_secs;
    let hashes: Vec<InfoHash> = (0..24)
        .map(|i| {
            let mut h = [0u8; 20];
            h[0] = [0x00, 0x00, 0x7f, 0xff][i % 4];
            h[1] = [0x00, 0x0f, 0x10, 0xff][(i / 4) % 4];
            h[19] = i as u8;
            h
        })
        .collect();
    let mut now = 0u32;
    for step in 0..steps {
        let h = hashes[rng.usize(..hashes.len())];
        let peer = mk(rng.u8(..24));
        match rng.u8(..100) {
            0..=59 => {
                let seeder = rng.bool();
                let ev = [
                    Event::None,
                    Event::Started,
                    Event::Completed,
                    Event::Completed,
                    Event::Stopped,
                ][rng.usize(..5)];
                let numwant = [0usize, 1, 3, 10, 50, 300][rng.usize(..6)];
                let req = AnnounceInput {
                    info_hash: &h,
                    peer: &peer,
                    seeder,
                    event: ev,
                    numwant,
                };
                let mut out = vec![];
                let got = s.announce(&req, now, &mut rng, &mut out);
                let want = m.announce(&h, &peer, seeder, ev, now);
                assert_eq!(got, want, "step {step} announce");
                // The selection: from the swarm, never self, distinct, right count/kind/order.
                let k = out.len() / N;
                assert_eq!(out.len(), k * N);
                let sel: Vec<[u8; N]> =
                    out.chunks_exact(N).map(|c| c.try_into().unwrap()).collect();
                if ev == Event::Stopped {
                    assert_eq!(k, 0);
                } else {
                    let mt = &m.t[&h];
                    let cands = mt
                        .peers
                        .iter()
                        .filter(|(a, p)| **a != peer && !(seeder && p.seeder))
                        .count();
                    assert_eq!(k, numwant.min(cands));
                    assert_eq!(sel.iter().collect::<HashSet<_>>().len(), k);
                    let kinds: Vec<bool> = sel.iter().map(|a| mt.peers[a].seeder).collect();
                    assert!(!sel.contains(&peer));
                    assert!(!seeder || kinds.iter().all(|s| !s));
                    assert!(kinds.windows(2).all(|w| !w[0] || w[1]));
                }
            }
            60..=72 => assert_eq!(
                s.stop(&h, &peer, now),
                m.stop(&h, &peer, now),
                "step {step} stop"
            ),
            73..=82 => assert_eq!(s.scrape(&h, now), m.scrape(&h, now), "step {step} scrape"),
            83..=92 => {
                let k = [1usize, 17, 300, 1024, 4096, 5000][rng.usize(..6)];
                s.clean_step(now, k);
                m.clean_step(now, k);
            }
            93..=96 => {
                let d = [0u32, 0, 1, 7, u32::MAX][rng.usize(..5)];
                s.set_downloaded(&h, d, now);
                m.set_downloaded(&h, d, now);
            }
            97 => {
                let bit = rng.u8(..8);
                s.retain(|h| h[19] >> bit & 1 == 0);
                m.t.retain(|h, _| h[19] >> bit & 1 == 0);
            }
            _ => {
                assert_eq!(s.contains(&h), m.t.contains_key(&h));
            }
        }
        // Time: mostly small steps, sometimes around the timeouts, rarely very long gaps.
        now += match rng.u8(..100) {
            0..=59 => 0,
            60..=89 => rng.u32(..3) * tick,
            90..=97 => rng.u32(..40) * tick + rng.u32(..tick),
            _ => rng.u32(..2000) * tick,
        };
        s.check_invariants();
        assert_eq!(
            (s.torrents(), s.peers(), s.seeders()),
            m.totals(),
            "step {step} totals"
        );
        assert_eq!(s.completions(), m.completions, "step {step} completions");
        if step % 64 == 0 {
            compare_all(&s, &m);
        }
    }
    compare_all(&s, &m);
}

fn v4(i: u8) -> [u8; 6] {
    [10, 0, i / 4, i, 0x1a, i % 3]
}

fn v6(i: u8) -> [u8; 18] {
    let mut a = [0u8; 18];
    a[0] = 0x20;
    a[1] = i % 5;
    a[15] = i;
    a[17] = i % 2;
    a
}

#[test]
fn model_ipv4() {
    for seed in 0..12 {
        for c in [cfg(2, 30), cfg(10, 60), cfg(2700, 86400), cfg(0, 0)] {
            run_model::<6>(seed, c, 3000, v4);
        }
    }
}

#[test]
fn model_ipv6() {
    for seed in 100..106 {
        for c in [cfg(2, 30), cfg(10, 60), cfg(2700, 86400)] {
            run_model::<18>(seed, c, 3000, v6);
        }
    }
}

/// Many more cases; run with `cargo test --release --lib model_many -- --ignored`.
#[test]
#[ignore]
fn model_many() {
    for seed in 1000..1300 {
        for c in [
            cfg(1, 5),
            cfg(2, 30),
            cfg(31, 40),
            cfg(64, 200),
            cfg(2700, 86400),
        ] {
            run_model::<6>(seed, c, 4000, v4);
        }
        run_model::<18>(seed, cfg(10, 60), 2000, v6);
    }
}
