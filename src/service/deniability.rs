//! Deniability (`tracker.random_peers N`): every torrent with real peers also has `N` made-up
//! peers, listed in announce replies among the real ones and counted in `complete`/`incomplete`
//! and in scrapes, so a peer list proves nobody's presence in a swarm.
//!
//! Made-up peers that hold up ([`Fakes`]):
//! - Stable: the made-up peers of a torrent are derived from a keyed hash (a random key per
//!   process) of the info_hash and a time window of `tracker.peer_timeout` seconds (how long a
//!   real peer stays listed without announcing), with a phase per torrent so that torrents do
//!   not all change at once. Within a window every reply, HTTP or UDP, lists the same ones:
//!   intersecting replies does not remove them.
//! - Counted: a reply's `complete`/`incomplete` include the made-up seeders and leechers of the
//!   requester's family, and a scrape (per info_hash, HTTP and UDP) those of both families, so
//!   a swarm of 3 does not list 53 peers. The counts are inflated on purpose: an operator who
//!   turns this on accepts that.
//! - Alike: the made-up peers follow the real swarm's address-family mix (an IPv4-only swarm
//!   gets IPv4 ones only) and its seeder share (smoothed: (S + 1) / (T + 2)), a seeder requester
//!   is sent made-up leechers only (as real seeders get only leechers), and their ports follow
//!   what clients use (Transmission's 51413, the classic 6881-6889, else any port from 1024).
//! - Public: a made-up peer has a random PUBLIC unicast address. Public means: never private
//!   (10/8, 172.16/12, 192.168/16, fc00::/7), loopback, link-local, multicast, broadcast,
//!   unspecified, CGNAT (100.64/10), `0/8`, `240/4`, benchmarking (198.18/15, 2001:2::/48),
//!   documentation (192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32, 3fff::/20), or
//!   another IANA special-purpose block (192.0.0/24, AS112, AMT, 6to4 relay 192.88.99/24, 6to4
//!   2002::/16, Teredo and the rest of 2001::/23). IPv6 addresses are drawn from global unicast
//!   2000::/3 only. Nobody is harmed by a client that tries to connect to such an address: at
//!   worst a SYN to an unused or unrelated public host, which is what any stale peer in any
//!   swarm already causes.
//!
//! A torrent without real peers has no made-up ones (a scrape of it stays true). A change of
//! window replaces all made-up peers of a torrent at once; the key changes at restart.
//!
//! Sizes are decided in the caps table ([`super::caps`]): a reply holds at most 512 peers in
//! all over HTTP, 242 over UDP/IPv4 and 66 over UDP/IPv6 (one unfragmented datagram). The
//! made-up peers take at most half of that limit (so at most 121 over UDP/IPv4 and 33 over
//! UDP/IPv6; a random subset of them when there are more) and the real peers are capped to the
//! rest. A `stopped` announce and `numwant=0` get no peers at all, made-up ones included.
//!
//! Not an opentracker feature: opentracker has no such option. The idea comes from tracker
//! operators who want to deny that a given address was listed.

use std::hash::BuildHasher;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::{Proto, caps};
use crate::swarm::store::SwarmCounts;
use crate::types::{Family, InfoHash};

pub use super::caps::MAX_RANDOM_PEERS;

/// Lowest port of a made-up peer (ports below are privileged and would look odd).
pub const MIN_PORT: u16 = 1024;

/// Most peers, real and made-up, one reply may carry over `proto` to `family`:
/// [`caps::reply_peers`] (512 over HTTP, 242 over UDP/IPv4, 66 over UDP/IPv6).
pub fn reply_limit(proto: Proto, family: Family) -> usize {
    caps::reply_peers(proto, family)
}

/// How many made-up peers go into one reply: [`caps::random_peers`] (`configured`, capped at
/// [`MAX_RANDOM_PEERS`] and at half of [`reply_limit`]; 0 when `numwant` is 0).
pub fn random_count(configured: u32, numwant: usize, proto: Proto, family: Family) -> usize {
    caps::random_peers(configured, numwant, proto, family)
}

/// IPv4 blocks that are not public unicast, as (first address, prefix length): IANA's
/// special-purpose registry (RFC 6890 and later) plus private, multicast and reserved space.
const V4_SPECIAL: &[(u32, u32)] = &[
    (0x0000_0000, 8),  // 0.0.0.0/8 "this network"
    (0x0a00_0000, 8),  // 10.0.0.0/8 private
    (0x6440_0000, 10), // 100.64.0.0/10 CGNAT (RFC 6598)
    (0x7f00_0000, 8),  // 127.0.0.0/8 loopback
    (0xa9fe_0000, 16), // 169.254.0.0/16 link-local
    (0xac10_0000, 12), // 172.16.0.0/12 private
    (0xc000_0000, 24), // 192.0.0.0/24 IETF protocol assignments
    (0xc000_0200, 24), // 192.0.2.0/24 TEST-NET-1 (documentation)
    (0xc01f_c400, 24), // 192.31.196.0/24 AS112-v4
    (0xc034_c100, 24), // 192.52.193.0/24 AMT
    (0xc058_6300, 24), // 192.88.99.0/24 6to4 relay anycast (deprecated)
    (0xc0a8_0000, 16), // 192.168.0.0/16 private
    (0xc0af_3000, 24), // 192.175.48.0/24 AS112 direct delegation
    (0xc612_0000, 15), // 198.18.0.0/15 benchmarking
    (0xc633_6400, 24), // 198.51.100.0/24 TEST-NET-2 (documentation)
    (0xcb00_7100, 24), // 203.0.113.0/24 TEST-NET-3 (documentation)
    (0xe000_0000, 4),  // 224.0.0.0/4 multicast
    (0xf000_0000, 4),  // 240.0.0.0/4 reserved, and 255.255.255.255 broadcast
];

/// IPv6 blocks inside 2000::/3 that are not ordinary global unicast, as (first address, prefix
/// length).
const V6_SPECIAL: &[(u128, u32)] = &[
    // 2001::/23 IETF protocol assignments: Teredo 2001::/32, benchmarking 2001:2::/48, AMT,
    // AS112, ORCHID 2001:10::/28 and 2001:20::/28, ...
    (0x2001_0000 << 96, 23),
    (0x2001_0db8 << 96, 32),      // 2001:db8::/32 documentation
    (0x2002 << 112, 16),          // 2002::/16 6to4
    (0x2620_004f_8000 << 80, 48), // 2620:4f:8000::/48 AS112 direct delegation
    (0x3ffe << 112, 16),          // 3ffe::/16 former 6bone, returned
    (0x3fff << 112, 20),          // 3fff::/20 documentation (RFC 9637)
];

/// Whether `ip` is a public unicast IPv4 address: outside every block of the module doc.
pub fn is_public_v4(ip: Ipv4Addr) -> bool {
    let a = u32::from(ip);
    !V4_SPECIAL
        .iter()
        .any(|&(base, len)| a >> (32 - len) == base >> (32 - len))
}

/// Whether `ip` is a public unicast IPv6 address: inside global unicast 2000::/3 and outside
/// every special block of the module doc.
pub fn is_public_v6(ip: Ipv6Addr) -> bool {
    let a = u128::from(ip);
    a >> 125 == 0b001
        && !V6_SPECIAL
            .iter()
            .any(|&(base, len)| a >> (128 - len) == base >> (128 - len))
}

/// Draws until the address is public. About 86% of IPv4 space and over 99% of 2000::/3 are, so
/// the loop ends after one or two draws; it is bounded anyway, and the last resort is a fixed
/// public address.
const MAX_DRAWS: usize = 64;

/// A random public unicast IPv4 address ([`is_public_v4`]).
pub fn random_v4(rng: &mut fastrand::Rng) -> Ipv4Addr {
    for _ in 0..MAX_DRAWS {
        let ip = Ipv4Addr::from(rng.u32(..));
        if is_public_v4(ip) {
            return ip;
        }
    }
    Ipv4Addr::new(1, 1, 1, 1)
}

/// A random public unicast IPv6 address in 2000::/3 ([`is_public_v6`]).
pub fn random_v6(rng: &mut fastrand::Rng) -> Ipv6Addr {
    for _ in 0..MAX_DRAWS {
        // Force the top three bits to 001 (2000::/3), keep 125 random bits.
        let bits = (rng.u128(..) >> 3) | (1u128 << 125);
        let ip = Ipv6Addr::from(bits);
        if is_public_v6(ip) {
            return ip;
        }
    }
    Ipv6Addr::new(0x2400, 0xcb00, 0, 0, 0, 0, 0, 1)
}

/// Appends `count` made-up peers of `family` in compact form (6 bytes for IPv4, 18 for IPv6:
/// address then port, network order) to `peers` and moves each to a random position among the
/// records that start at byte `start` (the real peers of this reply), so the positions of the
/// made-up peers are uniform. `peers[start..]` must be whole records.
///
/// No allocation beyond `peers` growing (it is a reused scratch buffer).
pub fn mix_in(
    peers: &mut Vec<u8>,
    start: usize,
    count: usize,
    family: Family,
    rng: &mut fastrand::Rng,
) {
    let record = match family {
        Family::V4 => 6,
        Family::V6 => 18,
    };
    let Some(tail) = peers.len().checked_sub(start) else {
        return;
    };
    let real = tail / record;
    peers.truncate(start + real * record);
    peers.reserve(count * record);
    let mut rec = [0u8; 18];
    for k in 0..count {
        let port = rng.u16(MIN_PORT..);
        match family {
            Family::V4 => rec[..4].copy_from_slice(&random_v4(rng).octets()),
            Family::V6 => rec[..16].copy_from_slice(&random_v6(rng).octets()),
        }
        rec[record - 2..record].copy_from_slice(&port.to_be_bytes());
        peers.extend_from_slice(&rec[..record]);
        // Inside-out shuffle step: the new record swaps with a uniform slot in 0..=i.
        let i = real + k;
        let j = rng.usize(..=i);
        if j != i {
            let (head, last) = peers[start..].split_at_mut(i * record);
            head[j * record..(j + 1) * record].swap_with_slice(&mut last[..record]);
        }
    }
}

/// A made-up peer's port, the way clients pick theirs: Transmission's default 51413 (15%), the
/// classic 6881-6889 (10%), else any port from [`MIN_PORT`] (random-at-install clients such as
/// qBittorrent and libtorrent's).
pub fn fake_port(rng: &mut fastrand::Rng) -> u16 {
    match rng.u32(0..100) {
        0..15 => 51413,
        15..25 => rng.u16(6881..=6889),
        _ => rng.u16(MIN_PORT..),
    }
}

/// How the made-up peers of one torrent split, from its real peers: the share of IPv6 ones and
/// of seeders, as thresholds out of 2^32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mix {
    v6: u64,
    seeders: u64,
}

impl Mix {
    /// The mix of a swarm whose real peers are `v4` and `v6`: IPv6 ones in proportion to the
    /// real IPv6 peers (all of `requester`'s family when there are none), seeders in
    /// proportion (S + 1) / (T + 2).
    pub fn of(v4: SwarmCounts, v6: SwarmCounts, requester: Family) -> Mix {
        let n4 = u64::from(v4.seeders) + u64::from(v4.leechers);
        let n6 = u64::from(v6.seeders) + u64::from(v6.leechers);
        let v6_share = match (n4 + n6, requester) {
            (0, Family::V4) => 0,
            (0, Family::V6) => 1 << 32,
            (total, _) => (n6 << 32) / total,
        };
        let seeders = u64::from(v4.seeders) + u64::from(v6.seeders);
        Mix {
            v6: v6_share,
            seeders: ((seeders + 1) << 32) / (n4 + n6 + 2),
        }
    }
}

/// Made-up seeders and leechers of one torrent, per family.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FakeCounts {
    /// IPv4 (seeders, leechers).
    pub v4: (u32, u32),
    /// IPv6 (seeders, leechers).
    pub v6: (u32, u32),
}

impl FakeCounts {
    /// The counts of `family`, as swarm counts (`downloaded` 0).
    pub fn of(&self, family: Family) -> SwarmCounts {
        let (seeders, leechers) = match family {
            Family::V4 => self.v4,
            Family::V6 => self.v6,
        };
        SwarmCounts {
            seeders,
            leechers,
            downloaded: 0,
        }
    }

    /// Both families together.
    pub fn total(&self) -> SwarmCounts {
        SwarmCounts {
            seeders: self.v4.0 + self.v6.0,
            leechers: self.v4.1 + self.v6.1,
            downloaded: 0,
        }
    }
}

/// One made-up peer before its address is drawn: its family, whether it seeds, and the seed of
/// its address and port.
#[derive(Clone, Copy, Debug)]
struct Draw {
    family: Family,
    seeder: bool,
    seed: u64,
}

/// The made-up peers of every torrent: a random key per process and the window length. See the
/// module doc. No allocation: a torrent's made-up peers are drawn again from the key whenever
/// needed (two 32-bit draws per peer to count them, an address and a port to list one).
#[derive(Clone, Debug)]
pub struct Fakes {
    key: std::hash::RandomState,
    window: u32,
}

impl Fakes {
    /// Made-up peers that change every `window` seconds (at least 1), under a fresh random key.
    pub fn new(window: u32) -> Self {
        Fakes {
            key: std::hash::RandomState::new(),
            window: window.max(1),
        }
    }

    /// The `n` made-up peers of `info_hash` at `now` (seconds), split by `mix`.
    fn draws(
        &self,
        info_hash: &InfoHash,
        now: u32,
        n: u32,
        mix: Mix,
    ) -> impl Iterator<Item = Draw> + use<> {
        let w = u64::from(self.window);
        let phase = self.key.hash_one((0u8, info_hash)) % w;
        let window = (u64::from(now) + phase) / w;
        let base = self.key.hash_one((1u8, info_hash, window));
        (0..u64::from(n.min(MAX_RANDOM_PEERS))).map(move |i| {
            let mut r = fastrand::Rng::with_seed(base ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let family = if u64::from(r.u32(..)) < mix.v6 {
                Family::V6
            } else {
                Family::V4
            };
            let seeder = u64::from(r.u32(..)) < mix.seeders;
            Draw {
                family,
                seeder,
                seed: r.u64(..),
            }
        })
    }

    /// How many of the `n` made-up peers of `info_hash` at `now` seed and leech, per family.
    pub fn counts(&self, info_hash: &InfoHash, now: u32, n: u32, mix: Mix) -> FakeCounts {
        let mut c = FakeCounts::default();
        for d in self.draws(info_hash, now, n, mix) {
            let slot = match d.family {
                Family::V4 => &mut c.v4,
                Family::V6 => &mut c.v6,
            };
            if d.seeder {
                slot.0 += 1;
            } else {
                slot.1 += 1;
            }
        }
        c
    }

    /// Appends up to `max` of the made-up peers of `info_hash` of `family` (leechers only when
    /// `leechers_only`, for a seeder requester) to `peers` in compact form, each at a random
    /// position among the records from byte `start` on (the real peers of this reply). All of
    /// them when they are `max` or fewer, else a uniform random subset (drawn with `rng`).
    /// Returns how many were written.
    #[allow(clippy::too_many_arguments)]
    pub fn write(
        &self,
        info_hash: &InfoHash,
        now: u32,
        n: u32,
        mix: Mix,
        family: Family,
        leechers_only: bool,
        max: usize,
        rng: &mut fastrand::Rng,
        peers: &mut Vec<u8>,
        start: usize,
    ) -> usize {
        let fits = |d: &Draw| d.family == family && !(leechers_only && d.seeder);
        let mut candidates = self.draws(info_hash, now, n, mix).filter(fits).count();
        let mut need = max.min(candidates);
        let record = match family {
            Family::V4 => 6,
            Family::V6 => 18,
        };
        let Some(tail) = peers.len().checked_sub(start) else {
            return 0;
        };
        let real = tail / record;
        peers.truncate(start + real * record);
        let mut written = 0;
        for d in self.draws(info_hash, now, n, mix).filter(fits) {
            if need == 0 {
                break;
            }
            // Selection sampling (Knuth's algorithm S): each of the remaining candidates is
            // taken with probability need / candidates.
            let take = rng.usize(..candidates) < need;
            candidates -= 1;
            if !take {
                continue;
            }
            need -= 1;
            peers.extend_from_slice(&fake_record(d.seed, family)[..record]);
            // Inside-out shuffle step: the new record swaps with a uniform slot in 0..=i.
            let i = real + written;
            let j = rng.usize(..=i);
            if j != i {
                let (head, last) = peers[start..].split_at_mut(i * record);
                head[j * record..(j + 1) * record].swap_with_slice(&mut last[..record]);
            }
            written += 1;
        }
        written
    }
}

/// The made-up peers as a whole-store scan counts them: [`Fakes`] with `tracker.random_peers`
/// and the time of the scan's start ([`super::Tracker::fake_peers`]).
#[derive(Clone, Debug)]
pub struct FakePeers {
    /// The key and window.
    pub fakes: Fakes,
    /// `tracker.random_peers`.
    pub n: u32,
    /// Seconds since start, at the scan's start.
    pub now: u32,
}

impl FakePeers {
    /// `c` (a torrent's real counts over both families) plus its made-up seeders and leechers of
    /// both families; unchanged without real peers. The split by family plays no part in a sum,
    /// so the summed counts decide it as the per-family ones would.
    pub fn inflate(&self, info_hash: &InfoHash, c: SwarmCounts) -> SwarmCounts {
        if c.seeders + c.leechers == 0 {
            return c;
        }
        let mix = Mix::of(c, SwarmCounts::default(), Family::V4);
        let f = self.fakes.counts(info_hash, self.now, self.n, mix).total();
        SwarmCounts {
            seeders: c.seeders + f.seeders,
            leechers: c.leechers + f.leechers,
            downloaded: c.downloaded,
        }
    }
}

/// The compact form of a made-up peer of `family` drawn from `seed` (the first 6 or 18 bytes
/// count).
fn fake_record(seed: u64, family: Family) -> [u8; 18] {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut rec = [0u8; 18];
    let len = match family {
        Family::V4 => {
            rec[..4].copy_from_slice(&random_v4(&mut rng).octets());
            6
        }
        Family::V6 => {
            rec[..16].copy_from_slice(&random_v6(&mut rng).octets());
            18
        }
    };
    rec[len - 2..len].copy_from_slice(&fake_port(&mut rng).to_be_bytes());
    rec
}

#[cfg(test)]
mod tests;
