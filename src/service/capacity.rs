//! Upper bounds on what the store holds (`tracker.max_torrents`, `tracker.max_peers`), so random
//! info_hashes or forged peers cannot exhaust memory. One check for both protocols: it runs inside
//! [`Tracker::announce`], before the store is touched.
//!
//! Cost: two comparisons while the store is below its bounds; once a bound is reached, one or two
//! binary searches per announce (is the torrent known, is the peer known). Counts include peers
//! that expired but were not cleaned yet, so the bounds are reached slightly early, never late;
//! the background cleaning frees room as peers stop announcing.

use std::net::IpAddr;

use super::{Announce, Tracker};
use crate::swarm::peer::{peer_v4, peer_v6};
use crate::types::Event;

/// Why an announce was refused without changing the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `tracker.max_torrents` torrents are held and the announce names a new info_hash.
    TorrentLimit,
    /// `tracker.max_peers` peers are held and the announce would add a peer.
    PeerLimit,
}

impl Refusal {
    /// The text sent to the client: HTTP `failure reason` (BEP 3) or the message of a BEP 15
    /// error packet. Clients show it to their users and retry at their next interval.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::TorrentLimit => "tracker is full: no new torrents accepted",
            Refusal::PeerLimit => "tracker is full: no new peers accepted",
        }
    }
}

impl Tracker {
    /// Torrents held over both families.
    pub fn torrents(&self) -> u64 {
        self.v4.torrents() + self.v6.torrents()
    }

    /// Refuses an announce that would create a torrent while `max_torrents` are held, or add a
    /// peer while `max_peers` are held (0 = no bound). `stopped` is never refused (it only frees
    /// room); a known peer of a known torrent always may announce. A torrent is known per
    /// family (BEP 7 keeps the IPv4 and IPv6 swarms apart, each costs a store entry), so the
    /// bounds are exact. Counts the refusal.
    pub(super) fn check_capacity(&mut self, a: &Announce, ip: IpAddr) -> Result<(), Refusal> {
        let (max_t, max_p) = (self.policy.max_torrents, self.policy.max_peers);
        let torrents_full = max_t != 0 && self.torrents() >= max_t;
        let peers_full = max_p != 0 && self.peers() >= max_p;
        if (!torrents_full && !peers_full) || a.event == Event::Stopped {
            return Ok(());
        }
        let (known_torrent, known_peer) = match ip.to_canonical() {
            IpAddr::V4(ip4) => {
                let peer = peer_v4(ip4, a.port);
                let t = self.v4.contains(&a.info_hash);
                (
                    t,
                    t && peers_full && self.v4.contains_peer(&a.info_hash, &peer),
                )
            }
            IpAddr::V6(ip6) => {
                let peer = peer_v6(ip6, a.port);
                let t = self.v6.contains(&a.info_hash);
                (
                    t,
                    t && peers_full && self.v6.contains_peer(&a.info_hash, &peer),
                )
            }
        };
        let refusal = if torrents_full && !known_torrent {
            Some(Refusal::TorrentLimit)
        } else if peers_full && !known_peer {
            Some(Refusal::PeerLimit)
        } else {
            None
        };
        match refusal {
            None => Ok(()),
            Some(r) => {
                match r {
                    Refusal::TorrentLimit => self.stats.refused_torrent_limit += 1,
                    Refusal::PeerLimit => self.stats.refused_peer_limit += 1,
                }
                Err(r)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use super::super::{Announce, Policy, Proto, Tracker};
    use super::Refusal;
    use crate::types::Event;

    fn tracker(max_torrents: u64, max_peers: u64) -> Tracker {
        Tracker::new(Policy {
            max_torrents,
            max_peers,
            ..Policy::default()
        })
    }

    fn ann(h: u8, port: u16, event: Event) -> Announce {
        Announce {
            info_hash: [h; 20],
            port,
            left: Some(1),
            event,
            numwant: None,
        }
    }

    const V4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1));

    fn go(t: &mut Tracker, a: &Announce, ip: IpAddr) -> Result<u32, Refusal> {
        let mut peers = Vec::new();
        t.announce(a, ip, Proto::Http, 1, &mut peers)
            .map(|r| r.counts.leechers)
    }

    #[test]
    fn torrent_limit_refuses_new_torrents_only() {
        let mut t = tracker(2, 0);
        assert_eq!(go(&mut t, &ann(1, 1, Event::Started), V4), Ok(1));
        assert_eq!(go(&mut t, &ann(2, 1, Event::Started), V4), Ok(1));
        // Full: a third torrent is refused and nothing changes.
        assert_eq!(
            go(&mut t, &ann(3, 1, Event::Started), V4),
            Err(Refusal::TorrentLimit)
        );
        assert_eq!((t.torrents(), t.peers()), (2, 2));
        assert_eq!(t.stats.refused_torrent_limit, 1);
        // Existing swarms keep working: new peers join, known peers refresh.
        assert_eq!(go(&mut t, &ann(1, 2, Event::None), V4), Ok(2));
        assert_eq!(go(&mut t, &ann(1, 1, Event::None), V4), Ok(2));
        // The IPv6 half of a swarm is a store entry of its own: refused too (exact bound).
        assert_eq!(
            go(&mut t, &ann(2, 1, Event::None), V6),
            Err(Refusal::TorrentLimit)
        );
        // Stopping frees room; then a new torrent is accepted.
        assert_eq!(go(&mut t, &ann(1, 1, Event::Stopped), V4), Ok(1));
        assert_eq!(go(&mut t, &ann(1, 2, Event::Stopped), V4), Ok(0));
        assert_eq!(go(&mut t, &ann(3, 1, Event::Started), V4), Ok(1));
        assert_eq!(t.torrents(), 2);
        assert_eq!(t.stats.refused_torrent_limit, 2);
    }

    #[test]
    fn peer_limit_refuses_new_peers_only() {
        let mut t = tracker(0, 3);
        for port in 1..=3 {
            assert!(go(&mut t, &ann(7, port, Event::Started), V4).is_ok());
        }
        assert_eq!(
            go(&mut t, &ann(7, 4, Event::Started), V4),
            Err(Refusal::PeerLimit)
        );
        assert_eq!(
            go(&mut t, &ann(8, 1, Event::Started), V4),
            Err(Refusal::PeerLimit)
        );
        assert_eq!(
            go(&mut t, &ann(7, 4, Event::Started), V6),
            Err(Refusal::PeerLimit)
        );
        assert_eq!((t.torrents(), t.peers()), (1, 3));
        // Known peers refresh; stopped always works.
        assert_eq!(go(&mut t, &ann(7, 2, Event::None), V4), Ok(3));
        assert_eq!(go(&mut t, &ann(7, 99, Event::Stopped), V4), Ok(3));
        assert_eq!(go(&mut t, &ann(7, 2, Event::Stopped), V4), Ok(2));
        assert_eq!(go(&mut t, &ann(7, 4, Event::Started), V4), Ok(3));
        assert_eq!(t.stats.refused_peer_limit, 3);
    }

    #[test]
    fn no_limits_by_default() {
        let mut t = Tracker::new(Policy::default());
        for h in 0..=255u8 {
            assert!(go(&mut t, &ann(h, 1, Event::Started), V4).is_ok());
        }
        assert_eq!(t.torrents(), 256);
    }
}
