//! Tests of the made-up peers: addresses, sizes, and through the tracker.
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

mod tracker_tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use crate::service::{Announce, Policy, Proto, Tracker};
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

        // Another window: other made-up peers. Last, since the clock only goes forward: at
        // this time the other peers have expired, and the announce may clean them.
        let (later, _) = announce_at(&mut t, "10.0.0.9", 5, None, Proto::Http, 100 + 2 * 2700);
        assert_ne!(fakes, fakes_of(&later, 6));
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
