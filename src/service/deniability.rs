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
mod tests {
    use super::*;
    use ipnet::{Ipv4Net, Ipv6Net};

    /// The same blocks, written as text and checked through `ipnet`, so a typo in the hex table
    /// cannot hide in both places.
    const V4_TEXT: &[&str] = &[
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.31.196.0/24",
        "192.52.193.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "192.175.48.0/24",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "255.255.255.255/32",
    ];
    const V6_TEXT: &[&str] = &[
        "::/128",
        "::1/128",
        "::ffff:0:0/96",
        "64:ff9b::/96",
        "64:ff9b:1::/48",
        "100::/64",
        "2001::/23",
        "2001::/32",
        "2001:2::/48",
        "2001:10::/28",
        "2001:20::/28",
        "2001:db8::/32",
        "2002::/16",
        "2620:4f:8000::/48",
        "3ffe::/16",
        "3fff::/20",
        "5f00::/16",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    ];

    fn v4_nets() -> Vec<Ipv4Net> {
        V4_TEXT.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn v6_nets() -> Vec<Ipv6Net> {
        V6_TEXT.iter().map(|n| n.parse().unwrap()).collect()
    }

    /// Special by std's methods or by the text list: the independent oracle.
    fn v4_special(ip: Ipv4Addr, nets: &[Ipv4Net]) -> bool {
        ip.is_private()
            || ip.is_loopback()
            || ip.is_link_local()
            || ip.is_multicast()
            || ip.is_broadcast()
            || ip.is_documentation()
            || ip.is_unspecified()
            || nets.iter().any(|n| n.contains(&ip))
    }

    fn v6_special(ip: Ipv6Addr, nets: &[Ipv6Net]) -> bool {
        ip.is_loopback()
            || ip.is_multicast()
            || ip.is_unspecified()
            || ip.is_unique_local()
            || ip.is_unicast_link_local()
            || ip.to_ipv4_mapped().is_some()
            || !"2000::/3".parse::<Ipv6Net>().unwrap().contains(&ip)
            || nets.iter().any(|n| n.contains(&ip))
    }

    #[test]
    fn classification_of_known_addresses() {
        for text in [
            "0.1.2.3",
            "10.1.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "169.254.1.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(!is_public_v4(text.parse().unwrap()), "{text}");
        }
        for text in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
        ] {
            assert!(is_public_v4(text.parse().unwrap()), "{text}");
        }
        for text in [
            "::",
            "::1",
            "::ffff:1.2.3.4",
            "64:ff9b::1.2.3.4",
            "2001::1",
            "2001:0:4136:e378::1",
            "2001:2::1",
            "2001:db8::1",
            "2001:1ff::1",
            "2002:c000:204::1",
            "2620:4f:8000::1",
            "3ffe::1",
            "3fff::1",
            "3fff:fff::1",
            "4000::1",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "ff02::1",
        ] {
            assert!(!is_public_v6(text.parse().unwrap()), "{text}");
        }
        for text in [
            "2001:200::1",
            "2001:4860:4860::8888",
            "2003::1",
            "2400:cb00::1",
            "2620:4f:8001::1",
            "2a00:1450::1",
            "3ffd:ffff::1",
            "3fff:1000::1",
        ] {
            assert!(is_public_v6(text.parse().unwrap()), "{text}");
        }
    }

    #[test]
    fn random_v4_never_special() {
        let mut rng = fastrand::Rng::with_seed(1);
        let nets = v4_nets();
        let mut first_octets = [false; 256];
        for _ in 0..200_000 {
            let ip = random_v4(&mut rng);
            assert!(!v4_special(ip, &nets), "{ip}");
            first_octets[ip.octets()[0] as usize] = true;
        }
        // Spread over the whole space, not stuck in one block.
        assert!(first_octets.iter().filter(|&&b| b).count() > 200);
        assert!(is_public_v4(Ipv4Addr::new(1, 1, 1, 1)));
    }

    #[test]
    fn random_v6_never_special() {
        let mut rng = fastrand::Rng::with_seed(2);
        let nets = v6_nets();
        let mut top = std::collections::HashSet::new();
        for _ in 0..200_000 {
            let ip = random_v6(&mut rng);
            assert!(!v6_special(ip, &nets), "{ip}");
            top.insert(ip.segments()[0]);
        }
        assert!(top.len() > 5000, "{}", top.len());
        assert!(is_public_v6(Ipv6Addr::new(
            0x2400, 0xcb00, 0, 0, 0, 0, 0, 1
        )));
    }

    #[test]
    fn table_agrees_with_the_oracle_at_every_edge() {
        // The first address of every /16, and each special block's edges and their neighbours:
        // the hex table and the oracle must agree on all of them.
        let nets = v4_nets();
        let mut probes: Vec<u32> = (0u32..1 << 16).map(|n| n << 16).collect();
        for net in &nets {
            let (lo, hi) = (u32::from(net.network()), u32::from(net.broadcast()));
            probes.extend([
                lo.wrapping_sub(1),
                lo,
                lo.wrapping_add(1),
                hi.wrapping_sub(1),
                hi,
                hi.wrapping_add(1),
            ]);
        }
        for ip in probes.into_iter().map(Ipv4Addr::from) {
            assert_eq!(is_public_v4(ip), !v4_special(ip, &nets), "{ip}");
        }
        let nets6 = v6_nets();
        let mut probes6: Vec<u128> = (0u128..1 << 16).map(|n| n << 112).collect();
        for net in &nets6 {
            let (lo, hi) = (u128::from(net.network()), u128::from(net.broadcast()));
            probes6.extend([
                lo.wrapping_sub(1),
                lo,
                lo.wrapping_add(1),
                hi.wrapping_sub(1),
                hi,
                hi.wrapping_add(1),
            ]);
        }
        for ip in probes6.into_iter().map(Ipv6Addr::from) {
            assert_eq!(is_public_v6(ip), !v6_special(ip, &nets6), "{ip}");
        }
    }

    #[test]
    fn counts_and_limits() {
        use Family::*;
        use Proto::*;
        assert_eq!(random_count(0, 50, Http, V4), 0);
        assert_eq!(random_count(10, 0, Http, V4), 0);
        assert_eq!(random_count(10, 1, Http, V4), 10);
        assert_eq!(random_count(200, 50, Http, V6), 200);
        assert_eq!(random_count(5000, 50, Udp, V4), 121);
        assert_eq!(random_count(10, 50, Udp, V6), 10);
        assert_eq!(random_count(100, 50, Udp, V6), 33);
        assert_eq!(reply_limit(Udp, V6), 66);
        assert_eq!(reply_limit(Udp, V4), 242);
    }

    fn records(peers: &[u8], len: usize) -> Vec<Vec<u8>> {
        peers.chunks_exact(len).map(<[u8]>::to_vec).collect()
    }

    #[test]
    fn mix_in_keeps_real_peers_and_adds_count() {
        let mut rng = fastrand::Rng::with_seed(3);
        for (family, len) in [(Family::V4, 6), (Family::V6, 18)] {
            for real in [0usize, 1, 7, 50] {
                let mut peers = b"prefix".to_vec();
                // Real peers: private addresses (a random one never is), distinct ports.
                let real_recs: Vec<Vec<u8>> = (0..real)
                    .map(|i| {
                        let mut r = vec![0u8; len];
                        r[0] = 10;
                        r[len - 2..].copy_from_slice(&(i as u16 + 1).to_be_bytes());
                        r
                    })
                    .collect();
                for r in &real_recs {
                    peers.extend_from_slice(r);
                }
                mix_in(&mut peers, 6, 20, family, &mut rng);
                assert_eq!(&peers[..6], b"prefix");
                let recs = records(&peers[6..], len);
                assert_eq!(recs.len(), real + 20);
                let kept: Vec<&Vec<u8>> = recs.iter().filter(|r| r[0] == 10).collect();
                assert_eq!(kept.len(), real);
                for r in &real_recs {
                    assert!(kept.contains(&r));
                }
                for r in recs.iter().filter(|r| r[0] != 10) {
                    let port = u16::from_be_bytes([r[len - 2], r[len - 1]]);
                    assert!(port >= MIN_PORT);
                    if len == 6 {
                        assert!(is_public_v4(Ipv4Addr::new(r[0], r[1], r[2], r[3])));
                    } else {
                        let a: [u8; 16] = r[..16].try_into().unwrap();
                        assert!(is_public_v6(Ipv6Addr::from(a)));
                    }
                }
            }
        }
    }

    #[test]
    fn mix_in_positions_are_spread() {
        // 10 real peers + 10 random: every slot holds a random peer in some runs and a real one
        // in others, and the first slot is random about half of the time.
        let mut rng = fastrand::Rng::with_seed(4);
        let mut random_at = [0u32; 20];
        let runs = 4000;
        for _ in 0..runs {
            let mut peers = Vec::new();
            for i in 0..10u8 {
                peers.extend_from_slice(&[10, 0, 0, i, 0, 1]);
            }
            mix_in(&mut peers, 0, 10, Family::V4, &mut rng);
            for (slot, r) in peers.chunks_exact(6).enumerate() {
                if r[0] != 10 {
                    random_at[slot] += 1;
                }
            }
        }
        for (slot, &n) in random_at.iter().enumerate() {
            assert!((1600..2400).contains(&n), "slot {slot}: {n} of {runs}");
        }
    }

    #[test]
    fn mix_in_tolerates_odd_input() {
        let mut rng = fastrand::Rng::with_seed(5);
        let mut peers = vec![1, 2, 3];
        mix_in(&mut peers, 10, 3, Family::V4, &mut rng); // start beyond the end: nothing
        assert_eq!(peers, [1, 2, 3]);
        let mut peers = vec![10, 0, 0, 1, 0, 1, 9, 9]; // a partial record is dropped
        mix_in(&mut peers, 0, 1, Family::V4, &mut rng);
        assert_eq!(peers.len(), 12);
    }
}

#[cfg(test)]
mod tracker_tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use super::super::{Announce, Policy, Proto, Tracker};
    use crate::types::Event;

    fn announce(t: &mut Tracker, ip: &str, numwant: Option<i32>, proto: Proto) -> Vec<u8> {
        let a = Announce {
            info_hash: [7; 20],
            port: 6881,
            left: Some(1),
            event: Event::None,
            numwant,
        };
        let mut peers = Vec::new();
        t.announce(&a, ip.parse::<IpAddr>().unwrap(), proto, 100, &mut peers)
            .expect("no limits set");
        peers
    }

    #[test]
    fn replies_carry_real_plus_random_peers() {
        let mut t = Tracker::new(Policy {
            random_peers: 10,
            ..Policy::default()
        });
        // The first peer of an empty swarm gets only made-up peers.
        assert_eq!(
            announce(&mut t, "10.0.0.1", None, Proto::Http).len(),
            10 * 6
        );
        announce(&mut t, "10.0.0.2", None, Proto::Udp);
        let peers = announce(&mut t, "10.0.0.3", None, Proto::Udp);
        assert_eq!(peers.len(), (2 + 10) * 6);
        let real = peers.chunks_exact(6).filter(|p| p[0] == 10).count();
        assert_eq!(real, 2);
        // numwant=0: no peers at all.
        assert!(announce(&mut t, "10.0.0.4", Some(0), Proto::Http).is_empty());
        // The store holds only the real peers.
        assert_eq!(t.peers(), 4);
    }

    #[test]
    fn udp_over_ipv6_stays_within_66_peers() {
        let mut t = Tracker::new(Policy {
            random_peers: 200,
            numwant_max: 200,
            ..Policy::default()
        });
        for i in 1..=80 {
            announce(&mut t, &format!("fd00::{i:x}"), Some(200), Proto::Http);
        }
        let udp = announce(&mut t, "fd00::ffff", Some(200), Proto::Udp);
        assert_eq!(udp.len(), 66 * 18);
        let real = udp.chunks_exact(18).filter(|p| p[0] == 0xfd).count();
        assert_eq!(real, 33);
        let http = announce(&mut t, "fd00::fffe", Some(200), Proto::Http);
        assert_eq!(http.len(), (81 + 200) * 18);
    }

    fn announce_at(
        t: &mut Tracker,
        ip: &str,
        left: u64,
        numwant: Option<i32>,
        proto: Proto,
        now: u32,
    ) -> (Vec<u8>, crate::swarm::store::SwarmCounts) {
        let a = Announce {
            info_hash: [8; 20],
            port: 6881,
            left: Some(left),
            event: Event::None,
            numwant,
        };
        let mut peers = Vec::new();
        let r = t
            .announce(&a, ip.parse::<IpAddr>().unwrap(), proto, now, &mut peers)
            .expect("no limits set");
        (peers, r.counts)
    }

    fn fakes_of(peers: &[u8], len: usize) -> Vec<Vec<u8>> {
        let mut f: Vec<Vec<u8>> = peers
            .chunks_exact(len)
            .filter(|p| p[0] != 10 && p[0] != 0xfd)
            .map(<[u8]>::to_vec)
            .collect();
        f.sort();
        f
    }

    /// Two announces in one window, over HTTP and over UDP, list the same made-up peers; every
    /// one is public; the counts match the peer list; a scrape counts the same ones.
    #[test]
    fn made_up_peers_are_stable_counted_and_public() {
        use super::{is_public_v4, is_public_v6};
        let mut t = Tracker::new(Policy {
            random_peers: 20,
            ..Policy::default()
        });
        for i in 1..=3 {
            announce_at(
                &mut t,
                &format!("10.0.0.{i}"),
                i % 2,
                None,
                Proto::Http,
                100,
            );
        }
        let (first, counts) = announce_at(&mut t, "10.0.0.9", 5, None, Proto::Http, 100);
        let (again, _) = announce_at(&mut t, "10.0.0.9", 5, None, Proto::Udp, 101);
        let fakes = fakes_of(&first, 6);
        assert_eq!(
            fakes.len(),
            20,
            "an IPv4-only swarm gets IPv4 made-up peers only"
        );
        assert_eq!(fakes, fakes_of(&again, 6));
        for f in &fakes {
            assert!(is_public_v4(Ipv4Addr::new(f[0], f[1], f[2], f[3])), "{f:?}");
            assert!(u16::from_be_bytes([f[4], f[5]]) >= super::MIN_PORT);
        }
        // Every peer is listed: the others and the made-up ones, and the requester counts.
        assert_eq!(
            (counts.seeders + counts.leechers) as usize,
            first.len() / 6 + 1
        );
        // A scrape counts the same made-up peers (the swarm did not change since).
        let (_, counts) = announce_at(&mut t, "10.0.0.9", 5, None, Proto::Http, 102);
        let s = t.scrape_entry(&[8; 20], true, 102).unwrap();
        assert_eq!((s.seeders, s.leechers), (counts.seeders, counts.leechers));
        // The real counts stay in the store.
        assert_eq!(t.scrape_one(&[8; 20], 102).unwrap().leechers, 3);
        // Another window: other made-up peers.
        let (later, _) = announce_at(&mut t, "10.0.0.9", 5, None, Proto::Http, 100 + 2 * 2700);
        assert_ne!(fakes, fakes_of(&later, 6));
        // A torrent nobody announced has none: a scrape of it stays zeros.
        assert_eq!(
            t.scrape_entry(&[1; 20], true, 102).unwrap(),
            crate::swarm::store::SwarmCounts::default()
        );

        // A dual-stack swarm: made-up peers of both families, each listed to its family.
        for i in 1..=3 {
            announce_at(&mut t, &format!("fd00::{i}"), 5, None, Proto::Http, 102);
        }
        announce_at(&mut t, "fd00::9", 5, None, Proto::Http, 102);
        // Steady state (the split follows the swarm as it was before each announce).
        let (v6, c6) = announce_at(&mut t, "fd00::9", 5, None, Proto::Http, 102);
        let (v4, c4) = announce_at(&mut t, "10.0.0.9", 5, None, Proto::Http, 102);
        let (f6, f4) = (fakes_of(&v6, 18), fakes_of(&v4, 6));
        assert_eq!(f6.len() + f4.len(), 20);
        assert!(
            !f6.is_empty() && !f4.is_empty(),
            "{} {}",
            f6.len(),
            f4.len()
        );
        for f in &f6 {
            let a: [u8; 16] = f[..16].try_into().unwrap();
            assert!(is_public_v6(Ipv6Addr::from(a)), "{f:?}");
        }
        assert_eq!((c6.seeders + c6.leechers) as usize, v6.len() / 18 + 1);
        assert_eq!((c4.seeders + c4.leechers) as usize, v4.len() / 6 + 1);
        let s = t.scrape_entry(&[8; 20], true, 102).unwrap();
        assert_eq!(
            (s.seeders, s.leechers),
            (c4.seeders + c6.seeders, c4.leechers + c6.leechers)
        );
    }

    /// A seeder is sent made-up leechers only, as it is sent real leechers only.
    #[test]
    fn a_seeder_gets_made_up_leechers_only() {
        let mut t = Tracker::new(Policy {
            random_peers: 50,
            ..Policy::default()
        });
        for i in 1..=4 {
            announce_at(&mut t, &format!("10.0.0.{i}"), 0, None, Proto::Http, 7);
        }
        announce_at(&mut t, "10.0.0.5", 5, None, Proto::Http, 7);
        let (peers, counts) = announce_at(&mut t, "10.0.0.6", 0, None, Proto::Http, 7);
        let real_leechers = 1;
        let fake_leechers = counts.leechers as usize - real_leechers;
        assert!(fake_leechers > 0 && fake_leechers < 50);
        assert_eq!(peers.len() / 6, real_leechers + fake_leechers);
    }
}
