//! The one table of every cap that reaches the wire: how many peers a reply carries (numwant
//! default and maximum, the hard maximum of the selection, one unfragmented UDP datagram per
//! family), how many of them may be made up (`tracker.random_peers`), and how many info_hashes
//! a scrape answers over HTTP and UDP. Every front and the deniability code ask here; nothing
//! else clamps these numbers on its own.
//!
//! | cap | HTTP | UDP over IPv4 | UDP over IPv6 |
//! |---|---|---|---|
//! | real peers asked for | `numwant`, else `tracker.numwant.default` (50); at most `tracker.numwant.max` (200; its bound [`NUMWANT_MAX`], 256, the selection's) | same | same |
//! | peers per announce reply, real + made-up | [`HTTP_MAX_PEERS`] (512) | [`UDP_V4_MAX_PEERS`] (242: 20 + 242 x 6 = 1472 bytes) | [`UDP_V6_MAX_PEERS`] (66: 20 + 66 x 18 = 1208 bytes) |
//! | made-up peers (`tracker.random_peers`, at most 200) | at most half the reply cap: 200 | 121 | 33 |
//! | info_hashes per scrape | `tracker.scrape.max_info_hashes` (64; more is a `failure reason`) | [`UDP_SCRAPE_MAX_HASHES`] (120; the rest ignored) | same |
//!
//! When made-up peers are on, the real peers of a reply are capped to the reply cap minus the
//! made-up ones.
//!
//! Unfragmented: an IPv4 reply of at most 1472 payload bytes fits one 1500-byte Ethernet frame
//! (1500 - 20 IPv4 header - 8 UDP header); an IPv6 one of at most 1232 bytes fits the IPv6
//! minimum MTU of 1280 (1280 - 40 - 8), so it crosses every IPv6 link whole. NATs and firewalls
//! often drop fragments, and a fragmented announce reply then never arrives. A UDP scrape reply
//! (8 + 12 per hash) is always smaller than its request (16 + 20 per hash), so it fragments only
//! if the request did.

use super::{Policy, Proto};
use crate::swarm::select;
use crate::types::Family;
use crate::wire::udp::MAX_SCRAPE_HASHES_PER_DATAGRAM;

/// Most real peers a client may ask for: the upper bound of `tracker.numwant.max` and
/// `tracker.numwant.default` in the config table, and the selection's own bound
/// ([`select::MAX_NUMWANT`]), so nothing asked for is cut silently.
pub const NUMWANT_MAX: usize = 256;

const _: () = assert!(NUMWANT_MAX == select::MAX_NUMWANT);

/// Most peers an HTTP announce reply carries, real and made-up together: [`NUMWANT_MAX`] real
/// plus as many made-up.
pub const HTTP_MAX_PEERS: usize = 2 * NUMWANT_MAX;

/// Largest UDP payload of an unfragmented IPv4 reply: a 1500-byte Ethernet frame minus the
/// 20-byte IPv4 and 8-byte UDP headers.
pub const UDP_V4_PAYLOAD: usize = 1500 - 20 - 8;

/// Largest UDP payload of an unfragmented IPv6 reply on any link: the IPv6 minimum MTU (1280)
/// minus the 40-byte IPv6 and 8-byte UDP headers.
pub const UDP_V6_PAYLOAD: usize = 1280 - 40 - 8;

/// Bytes of a BEP 15 announce reply before its peers.
const UDP_ANNOUNCE_HEAD: usize = 20;

/// Most peers one UDP announce reply over IPv4 carries: (1472 - 20) / 6 = 242.
pub const UDP_V4_MAX_PEERS: usize = (UDP_V4_PAYLOAD - UDP_ANNOUNCE_HEAD) / 6;

/// Most peers one UDP announce reply over IPv6 carries: 66 (20 + 66 x 18 = 1208 bytes, within
/// [`UDP_V6_PAYLOAD`]; as opentracker since 2024).
pub const UDP_V6_MAX_PEERS: usize = 66;

const _: () = assert!(UDP_V4_MAX_PEERS == 242);
const _: () = assert!(UDP_ANNOUNCE_HEAD + UDP_V4_MAX_PEERS * 6 <= UDP_V4_PAYLOAD);
const _: () = assert!(UDP_ANNOUNCE_HEAD + UDP_V6_MAX_PEERS * 18 <= UDP_V6_PAYLOAD);

/// Most info_hashes a UDP scrape answers; the rest of the request is ignored (BEP 15 replies
/// are positional, so a shorter reply is still correct for the hashes it covers). 120:
/// [`MAX_SCRAPE_HASHES_PER_DATAGRAM`].
pub const UDP_SCRAPE_MAX_HASHES: usize = MAX_SCRAPE_HASHES_PER_DATAGRAM;

/// Most bytes a UDP reply takes: the largest is an IPv4 announce with [`UDP_V4_MAX_PEERS`]
/// peers (1472 bytes).
pub const UDP_REPLY_MAX: usize = UDP_V4_PAYLOAD;

/// Most peers, real and made-up, one announce reply carries over `proto` to `family`:
/// [`HTTP_MAX_PEERS`] over HTTP, [`UDP_V4_MAX_PEERS`] or [`UDP_V6_MAX_PEERS`] over UDP.
pub fn reply_peers(proto: Proto, family: Family) -> usize {
    match (proto, family) {
        (Proto::Http, _) => HTTP_MAX_PEERS,
        (Proto::Udp, Family::V4) => UDP_V4_MAX_PEERS,
        (Proto::Udp, Family::V6) => UDP_V6_MAX_PEERS,
    }
}

/// How many peers to return: `requested` if given and not negative, else
/// `tracker.numwant.default`; never more than `tracker.numwant.max` (itself at most
/// [`NUMWANT_MAX`]) nor [`reply_peers`].
pub fn numwant(policy: &Policy, requested: Option<i32>, proto: Proto, family: Family) -> usize {
    let max = (policy.numwant_max as usize).min(NUMWANT_MAX);
    let want = match requested {
        Some(n) if n >= 0 => n as usize,
        _ => policy.numwant_default as usize,
    };
    want.min(max).min(reply_peers(proto, family))
}

/// How many made-up peers go into one reply: `tracker.random_peers` (`configured`, at most
/// [`MAX_RANDOM_PEERS`]), at most half of [`reply_peers`] (the real peers keep the other half at least); 0 when `numwant` is 0
/// (the client asked for no peers, or sent `stopped`).
pub fn random_peers(configured: u32, numwant: usize, proto: Proto, family: Family) -> usize {
    if configured == 0 || numwant == 0 {
        return 0;
    }
    (configured.min(MAX_RANDOM_PEERS) as usize).min(reply_peers(proto, family) / 2)
}

/// Largest `tracker.random_peers` value (the config table's bound).
pub const MAX_RANDOM_PEERS: u32 = 200;

/// Most info_hashes one scrape answers: `tracker.scrape.max_info_hashes` over HTTP (more is a
/// `failure reason`), [`UDP_SCRAPE_MAX_HASHES`] over UDP (the rest ignored).
pub fn scrape_hashes(policy: &Policy, proto: Proto) -> usize {
    match proto {
        Proto::Http => policy.max_scrape_hashes.max(1),
        Proto::Udp => UDP_SCRAPE_MAX_HASHES,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Family::*;
    use Proto::*;

    /// The numbers of the module's table.
    #[test]
    fn the_table() {
        assert_eq!(reply_peers(Http, V4), 512);
        assert_eq!(reply_peers(Http, V6), 512);
        assert_eq!(reply_peers(Udp, V4), 242);
        assert_eq!(reply_peers(Udp, V6), 66);
        assert_eq!(20 + 242 * 6, 1472);
        let p = Policy::default();
        assert_eq!(numwant(&p, None, Http, V4), 50);
        assert_eq!(numwant(&p, Some(-1), Udp, V4), 50);
        assert_eq!(numwant(&p, Some(1000), Http, V4), 200);
        assert_eq!(numwant(&p, Some(1000), Udp, V6), 66);
        let p = Policy {
            numwant_max: 256,
            ..Policy::default()
        };
        assert_eq!(numwant(&p, Some(1000), Http, V4), 256);
        assert_eq!(numwant(&p, Some(1000), Udp, V4), 242);
        assert_eq!(random_peers(5000, 1, Http, V4), 200);
        assert_eq!(random_peers(200, 1, Udp, V4), 121);
        assert_eq!(random_peers(200, 1, Udp, V6), 33);
        assert_eq!(random_peers(200, 0, Udp, V6), 0);
        assert_eq!(scrape_hashes(&Policy::default(), Http), 64);
        assert_eq!(scrape_hashes(&Policy::default(), Udp), 120);
    }

    /// The config table's bounds are this table's: a default config never asks for more than a
    /// reply can carry.
    #[test]
    fn config_bounds_agree() {
        let numwant_max = crate::config::DIRECTIVE_TABLE
            .iter()
            .find(|d| d.name == "tracker.numwant.max")
            .expect("directive");
        assert_eq!(
            numwant_max.syntax(),
            crate::config::Syntax::Number {
                min: 1,
                max: NUMWANT_MAX as u64
            }
        );
        let random = crate::config::DIRECTIVE_TABLE
            .iter()
            .find(|d| d.name == "tracker.random_peers")
            .expect("directive");
        assert_eq!(
            random.syntax(),
            crate::config::Syntax::Number {
                min: 0,
                max: u64::from(MAX_RANDOM_PEERS)
            }
        );
    }

    /// A UDP/IPv4 announce with made-up peers and the highest numwant fits one unfragmented
    /// datagram (1472 bytes), as the IPv6 one always did.
    #[test]
    fn udp_ipv4_reply_fits_one_datagram() {
        use crate::service::{Announce, Tracker};
        let mut t = Tracker::new(Policy {
            numwant_max: 256,
            random_peers: 200,
            ..Policy::default()
        });
        let mut peers = Vec::new();
        for i in 0..300u32 {
            let a = Announce {
                info_hash: [9; 20],
                port: 6881,
                left: Some(1),
                event: crate::types::Event::None,
                numwant: Some(0),
            };
            let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i);
            t.announce(&a, ip.into(), Http, 0, &mut peers).unwrap();
        }
        for (proto, family, ip, len, max) in [
            (Udp, V4, "10.9.9.9", 6, 242),
            (Udp, V6, "fd00::9", 18, 66),
            (Http, V4, "10.9.9.8", 6, 456),
        ] {
            let a = Announce {
                info_hash: [9; 20],
                port: 6881,
                left: Some(1),
                event: crate::types::Event::None,
                numwant: Some(i32::MAX),
            };
            peers.clear();
            let r = t
                .announce(&a, ip.parse().unwrap(), proto, 0, &mut peers)
                .unwrap();
            assert_eq!(r.family, family);
            if proto == Udp && family == V6 {
                // The swarm is IPv4 but for the requester: its made-up peers are IPv4 ones
                // (deniability follows the family mix), so nothing to list here.
                assert_eq!(peers.len(), 0);
            } else {
                // Full, give or take a few: the selection and the made-up peers are drawn at
                // random (one CI run listed 455 of 456), and this test is about the size cap.
                let n = peers.len() / len;
                assert!(
                    (max - 4..=max).contains(&n),
                    "{proto:?} {family:?}: {n} peers"
                );
            }
            assert!(peers.len() / len <= reply_peers(proto, family));
            if proto == Udp {
                assert!(20 + peers.len() <= UDP_REPLY_MAX);
            }
        }
    }
}
