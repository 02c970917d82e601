//! Expiry: peers that stopped announcing age out, with no per-peer timer and no clock.
//!
//! # Ticks
//!
//! Time is `now: u32`, seconds since the process started, passed in by the caller. The store
//! counts in TICKS of `tick_secs = max(1, ceil(peer_timeout / 4))` seconds, so the peer timeout
//! is `T = ceil(peer_timeout / tick_secs) <= 4` ticks and `now_tick = now / tick_secs`. A peer
//! whose last announce was at tick `s` is EXPIRED once `now_tick - s > T`. It therefore lives at
//! least `peer_timeout` seconds and less than `(T + 1) * tick_secs` seconds after its last
//! announce, i.e. at most about 1.25 x `peer_timeout` (2700 s: tick 675 s, T = 4, a peer lives
//! 2700 to 3374 s; opentracker, with nine 5-minute pools, 2400 to 2700 s; 10 s: tick 3 s,
//! T = 4, a peer announced at second 100, tick 33, is alive until second 113 and expired at
//! 114, the start of tick 38).
//!
//! # Stamps are 3 bits, and that is enough
//!
//! A peer stores only `stamp = tick mod 8` (3 bits of its META nibble: a stored IPv4 peer is
//! 6.5 bytes). Every torrent stores `last_clean`, the tick at which it was last cleaned.
//! Cleaning happens on every access of the torrent (announce, stop, scrape) and in the
//! background sweep, but only when `now_tick != last_clean`; it drops the expired peers and
//! sets `last_clean = now_tick`. An announce cleans first, so it stamps at
//! `now_tick == last_clean`. Hence the INVARIANT: every stamp of a stored peer lies in
//! `[last_clean - T, last_clean]` (peers older than that were dropped at `last_clean`, peers
//! announced since were stamped at `last_clean`).
//!
//! When a torrent is cleaned at `now_tick = last_clean + d` with `d >= 1`:
//! * `d > T`: every real age is `>= d > T`: all peers are expired; drop them all without looking.
//! * `d <= T`: every real age lies in `[d, d + T]`, a subset of `[1, 2T] ⊆ [1, 8]`. Eight
//!   consecutive values are told apart by their value mod 8, so
//!   `age = ((now_tick - stamp - 1) mod 8) + 1` is the EXACT age (the `- 1 .. + 1` maps a
//!   residue 0 to 8, which happens when `T = 4 = d`).
//!
//! So ages are exact however late the sweep runs: a torrent nobody touches for a week is found
//! with `d > T` and emptied, never misread. Expired peers go in one compaction pass
//! (`super::torrent::PeerVec::retain`), not one memmove per peer.
//!
//! If `now` ever goes backwards (it must not: the caller passes a monotonic clock), nothing is
//! cleaned until it catches up; no peer is lost and nothing panics.
//!
//! # Empty torrents (as opentracker)
//!
//! A torrent whose last peer left or expired is dropped at once if its `downloaded` is 0. If
//! `downloaded > 0` it stays, peerless (no storage), so its completed count survives a quiet
//! period; `last_clean` then holds the tick it became peerless, and it is dropped once it has
//! been peerless for more than `torrent_timeout` seconds (`torrent_ticks` ticks; opentracker's
//! `OT_TORRENT_TIMEOUT` is 24 h). A torrent with peers is never dropped for idleness.

use super::slab::{Move, Slab};
use super::torrent::{SEEDER, STAMP_MASK, Torrent};

/// The largest peer timeout in ticks: `2T` consecutive ages must be told apart by a 3-bit stamp.
pub const MAX_PEER_TICKS: u32 = 4;

/// The store's clock, derived from the configured timeouts (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticks {
    /// Seconds per tick: `max(1, ceil(peer_timeout / 4))`.
    pub tick_secs: u32,
    /// Peer timeout in ticks, `T = ceil(peer_timeout / tick_secs)`, at most 4. A peer is
    /// expired when its age in ticks is greater than this.
    pub peer_ticks: u32,
    /// Torrent timeout in ticks, `ceil(torrent_timeout / tick_secs)`: a peerless torrent is
    /// dropped when it has been peerless for more than this.
    pub torrent_ticks: u32,
}

impl Ticks {
    /// Derives the ticks from `peer_timeout` and `torrent_timeout` in seconds.
    pub fn new(peer_timeout: u32, torrent_timeout: u32) -> Self {
        let tick_secs = peer_timeout.div_ceil(MAX_PEER_TICKS).max(1);
        Ticks {
            tick_secs,
            peer_ticks: peer_timeout.div_ceil(tick_secs),
            torrent_ticks: torrent_timeout.div_ceil(tick_secs),
        }
    }

    /// The tick of `now` (seconds since start).
    pub fn tick(&self, now: u32) -> u32 {
        now / self.tick_secs
    }
}

/// The 3-bit stamp of a tick (`tick mod 8`), as stored in a META nibble.
pub fn stamp(tick: u32) -> u8 {
    (tick & STAMP_MASK as u32) as u8
}

/// Age in ticks, in `1..=8`, of a peer stamped `stamp` (3 bits) seen at `now_tick`. Exact when
/// the real age is in `1..=8`, which the module's invariant guarantees whenever it is called
/// (during a cleaning with `1 <= now_tick - last_clean <= T`).
pub fn age(now_tick: u32, stamp: u8) -> u32 {
    (now_tick.wrapping_sub(stamp as u32).wrapping_sub(1) & STAMP_MASK as u32) + 1
}

/// What cleaning one torrent did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CleanOutcome {
    /// Peers removed (expired).
    pub peers_removed: u32,
    /// Of those, seeders.
    pub seeders_removed: u32,
    /// The torrent must be dropped: it is peerless and has `downloaded == 0` or has been
    /// peerless for more than the torrent timeout. The caller removes it from its bucket.
    pub drop: bool,
}

/// Totals of a [`super::store::Store::clean_step`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CleanStats {
    /// Buckets visited.
    pub buckets: usize,
    /// Peers removed (expired).
    pub peers_removed: u64,
    /// Of those, seeders.
    pub seeders_removed: u64,
    /// Torrents dropped (peerless with `downloaded == 0`, or peerless past the torrent timeout).
    pub torrents_removed: u64,
}

/// True when a PEERLESS torrent must go at `now_tick`: its `downloaded` is 0, or it has been
/// peerless (since `last_clean`) for more than the torrent timeout. The drop rule of
/// `clean_torrent`, as a pure test.
pub fn must_drop<const N: usize>(t: &Torrent<N>, now_tick: u32, ticks: &Ticks) -> bool {
    t.peers.is_empty()
        && (t.downloaded == 0 || now_tick.saturating_sub(t.last_clean) > ticks.torrent_ticks)
}

/// Cleans one torrent at `now_tick`: drops its expired peers (fixing its seeders count) and
/// says whether the torrent itself must go. Does nothing to the peers when
/// `now_tick <= last_clean`. See the module docs for why the 3-bit stamps are exact. `slab` is
/// the store's slab: the swarm's storage may shrink, and the returned move must be applied by
/// the caller (the store).
pub(crate) fn clean_torrent<const N: usize>(
    slab: &mut Slab<N>,
    t: &mut Torrent<N>,
    now_tick: u32,
    ticks: &Ticks,
) -> (CleanOutcome, Move) {
    let mut out = CleanOutcome::default();
    if t.peers.is_empty() {
        // Peerless: last_clean is the tick it became peerless.
        out.drop = must_drop(t, now_tick, ticks);
        return (out, Move::NONE);
    }
    if now_tick <= t.last_clean {
        return (out, Move::NONE);
    }
    let d = now_tick - t.last_clean;
    let moved = if d > ticks.peer_ticks {
        out.peers_removed = t.peers.len() as u32;
        out.seeders_removed = t.seeders;
        t.peers.clear(slab)
    } else {
        let mut seeders_removed = 0u32;
        let (removed, moved) = t.peers.retain(slab, |_, meta| {
            let alive = age(now_tick, meta & STAMP_MASK) <= ticks.peer_ticks;
            if !alive && meta & SEEDER != 0 {
                seeders_removed += 1;
            }
            alive
        });
        out.peers_removed = removed as u32;
        out.seeders_removed = seeders_removed;
        moved
    };
    t.seeders = t.seeders.saturating_sub(out.seeders_removed);
    t.last_clean = now_tick;
    if t.peers.is_empty() {
        out.drop = t.downloaded == 0;
    }
    (out, moved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swarm::torrent::PeerVec;

    #[test]
    fn tick_math() {
        assert_eq!(
            Ticks::new(2700, 86400),
            Ticks {
                tick_secs: 675,
                peer_ticks: 4,
                torrent_ticks: 128
            }
        );
        assert_eq!(
            Ticks::new(2, 30),
            Ticks {
                tick_secs: 1,
                peer_ticks: 2,
                torrent_ticks: 30
            }
        );
        assert_eq!(Ticks::new(10, 0).tick_secs, 3);
        assert_eq!(Ticks::new(10, 0).peer_ticks, 4);
        assert_eq!(Ticks::new(4, 0).peer_ticks, 4);
        assert_eq!(Ticks::new(5, 0).tick_secs, 2);
        assert_eq!(Ticks::new(5, 0).peer_ticks, 3);
        assert_eq!(Ticks::new(0, 0).tick_secs, 1);
        assert_eq!(Ticks::new(0, 0).peer_ticks, 0);
        assert_eq!(Ticks::new(u32::MAX, u32::MAX).peer_ticks, 4);
        for pt in 1..5000 {
            let t = Ticks::new(pt, 0);
            assert!(t.peer_ticks <= MAX_PEER_TICKS && t.peer_ticks >= 1);
            assert!(
                t.peer_ticks * t.tick_secs >= pt,
                "a peer lives at least peer_timeout"
            );
            assert!(
                (t.peer_ticks + 1) * t.tick_secs <= pt + pt / 4 + 4,
                "and not much longer ({pt})"
            );
        }
        assert_eq!(Ticks::new(2700, 0).tick(674), 0);
        assert_eq!(Ticks::new(2700, 0).tick(675), 1);
    }

    #[test]
    fn age_is_exact_in_1_to_8() {
        for base in [0u32, 5, 7, 8, 1000, u32::MAX - 100] {
            for real in 1..=8u32 {
                let now = base.wrapping_add(real);
                assert_eq!(age(now, stamp(base)), real, "base {base} real {real}");
            }
        }
    }

    fn torrent_with(slab: &mut Slab<6>, stamps: &[(u32, bool)], last_clean: u32) -> Torrent<6> {
        let mut t = Torrent::<6>::new([0; 20], last_clean);
        for (i, &(tick, seeder)) in stamps.iter().enumerate() {
            let meta = stamp(tick) | if seeder { SEEDER } else { 0 };
            let (_, m) = t
                .peers
                .insert(slab, &[0; 4], i, &[i as u8, 0, 0, 0, 0, 1], meta)
                .unwrap();
            assert!(m.is_none(), "one swarm alone in its slab moves nothing");
            t.seeders += seeder as u32;
        }
        t
    }

    /// [`clean_torrent`] of a torrent alone in its slab: no block moves.
    fn clean<const N: usize>(
        slab: &mut Slab<N>,
        t: &mut Torrent<N>,
        now_tick: u32,
        ticks: &Ticks,
    ) -> CleanOutcome {
        let (o, m) = clean_torrent(slab, t, now_tick, ticks);
        assert!(m.is_none());
        o
    }

    #[test]
    fn boundary_t4_is_exact() {
        // T = 4; stamps at last_clean - 4 .. last_clean, cleaned at last_clean + 4.
        let ticks = Ticks::new(2700, 86400);
        let mut slab = PeerVec::<6>::new_slab();
        let lc = 100;
        let mut t = torrent_with(
            &mut slab,
            &[(lc - 4, true), (lc - 1, false), (lc, true)],
            lc,
        );
        let o = clean(&mut slab, &mut t, lc + 4, &ticks);
        // Ages 8 and 5 expire; age 4 (stamp lc) survives: 8 must not read as 0.
        assert_eq!(
            o,
            CleanOutcome {
                peers_removed: 2,
                seeders_removed: 1,
                drop: false
            }
        );
        assert_eq!(t.peers.len(), 1);
        assert_eq!(t.peers.meta(0), Some(stamp(lc) | SEEDER));
        assert_eq!((t.seeders, t.last_clean), (1, lc + 4));
    }

    #[test]
    fn long_gap_drops_everything() {
        let ticks = Ticks::new(4, 30);
        let mut slab = PeerVec::<6>::new_slab();
        let mut t = torrent_with(&mut slab, &[(50, true), (50, false)], 50);
        t.downloaded = 3;
        // 5 ticks later everyone is expired; 8 + 2 later the stamps would alias as age 2.
        let o = clean(&mut slab, &mut t, 50 + 10, &ticks);
        assert_eq!(
            o,
            CleanOutcome {
                peers_removed: 2,
                seeders_removed: 1,
                drop: false
            }
        );
        assert!(t.peers.is_empty() && t.peers.capacity() == 0);
        assert_eq!(slab.chunk_bytes(), 0);
        assert_eq!((t.seeders, t.last_clean), (0, 60));
        // Peerless since tick 60: kept through 60 + 30, dropped after.
        assert!(!clean(&mut slab, &mut t, 90, &ticks).drop);
        assert!(clean(&mut slab, &mut t, 91, &ticks).drop);
    }

    #[test]
    fn same_tick_or_backwards_does_nothing() {
        let ticks = Ticks::new(2, 30);
        let mut slab = PeerVec::<6>::new_slab();
        let mut t = torrent_with(&mut slab, &[(10, false)], 10);
        assert_eq!(
            clean(&mut slab, &mut t, 10, &ticks),
            CleanOutcome::default()
        );
        assert_eq!(clean(&mut slab, &mut t, 3, &ticks), CleanOutcome::default());
        assert_eq!((t.peers.len(), t.last_clean), (1, 10));
        // 2-second timeout: alive at +2, gone at +3, and the empty torrent (downloaded 0) drops.
        assert_eq!(clean(&mut slab, &mut t, 12, &ticks).peers_removed, 0);
        let o = clean(&mut slab, &mut t, 13, &ticks);
        assert_eq!((o.peers_removed, o.drop), (1, true));
    }

    #[test]
    fn peerless_with_zero_downloaded_drops() {
        let ticks = Ticks::new(2, 30);
        let mut slab = PeerVec::<6>::new_slab();
        let mut t = Torrent::<6>::new([0; 20], 5);
        assert!(clean(&mut slab, &mut t, 5, &ticks).drop);
    }
}
