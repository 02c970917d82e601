//! The access check for every front, and the purge of torrents a new list refuses.
//!
//! One place decides: [`Tracker::allowed`] is called by [`Tracker::serve_announce`],
//! [`Tracker::scrape_entry`] and the whole-store scans. A refused announce gets
//! [`NOT_AUTHORIZED`] (HTTP: bencoded `failure reason`; UDP: an action 3 error packet), a refused
//! info_hash in a scrape is left out (HTTP) or answered with zeros (UDP, whose replies are
//! positional).
//!
//! After a reload ([`Tracker::replace_access_list`]) the new list applies to the very next request;
//! the torrents it refuses are then dropped from both stores by [`Tracker::purge_step`], a few
//! buckets per loop turn, so a store of a million torrents is never walked in one go.

use super::Tracker;
use super::private::Private;
pub use crate::access::NOT_AUTHORIZED;
use crate::access::{Access, AccessList, Mode};
use crate::swarm::store::BUCKETS;
use crate::types::InfoHash;

/// What one [`Tracker::purge_step`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PurgeStep {
    /// Torrents dropped in this step (both families).
    pub dropped: u64,
    /// True when the purge has visited every bucket (or none was running).
    pub done: bool,
}

impl Tracker {
    /// True when an announce or scrape for `info_hash` may be served: not on the blacklist file,
    /// and, when only listed info_hashes are served (a listed `tracker.mode` or an
    /// `access.whitelist` file), on the whitelist file or among the API/database entries
    /// ([`super::private`]). A binary search and at most one hash lookup; no allocation.
    #[inline]
    pub fn allowed(&self, info_hash: &InfoHash) -> bool {
        allowed_by(self.access.as_ref(), &self.private, info_hash)
    }

    /// The access policy in force, if any.
    pub fn access(&self) -> Option<&Access> {
        self.access.as_ref()
    }

    /// Installs the access policy at start (before serving); no purge, stores are expected empty
    /// or already consistent. `None` serves every info_hash.
    pub fn set_access(&mut self, access: Option<Access>) {
        self.access = access;
        self.purge_next = None;
    }

    /// Swaps in a reloaded list (same mode) and starts a purge of the torrents it refuses, from the
    /// first bucket (a purge already running restarts). The old list is freed when the last
    /// reference goes. Returns false, changing nothing, when no access list is configured.
    pub fn replace_access_list(&mut self, list: AccessList) -> bool {
        let Some(access) = self.access.as_mut() else {
            return false;
        };
        access.list = std::sync::Arc::new(list);
        self.purge_next = Some(0);
        true
    }

    /// Starts (or restarts) a purge of the torrents [`Tracker::allowed`] refuses, from the first
    /// bucket.
    pub fn start_purge(&mut self) {
        self.purge_next = Some(0);
    }

    /// True while a purge is running.
    pub fn purge_pending(&self) -> bool {
        self.purge_next.is_some()
    }

    /// Purges the next `buckets` buckets (at least 1) of both stores of torrents the access list
    /// refuses, peers and `downloaded` counts included.
    pub fn purge_step(&mut self, buckets: usize) -> PurgeStep {
        let Some(start) = self.purge_next else {
            return PurgeStep {
                dropped: 0,
                done: true,
            };
        };
        let end = start.saturating_add(buckets.max(1)).min(BUCKETS);
        let Tracker {
            v4,
            v6,
            access,
            private,
            ..
        } = self;
        let keep = |h: &InfoHash| allowed_by(access.as_ref(), private, h);
        let dropped = v4.retain_buckets(start..end, keep) + v6.retain_buckets(start..end, keep);
        let done = end >= BUCKETS;
        self.purge_next = (!done).then_some(end);
        PurgeStep { dropped, done }
    }
}

/// [`Tracker::allowed`] over the fields it reads, so a purge can call it while it changes the
/// stores.
#[inline]
fn allowed_by(access: Option<&Access>, private: &Private, info_hash: &InfoHash) -> bool {
    let listed_mode = private.mode.listed();
    match access {
        None => !listed_mode || private.listed.contains(info_hash),
        Some(a) => match a.mode {
            Mode::Whitelist => a.list.contains(info_hash) || private.listed.contains(info_hash),
            Mode::Blacklist => {
                !a.list.contains(info_hash) && (!listed_mode || private.listed.contains(info_hash))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Mode;
    use crate::service::{Announce, Policy, Proto};
    use crate::types::Event;
    use std::net::IpAddr;

    fn h(a: u8) -> InfoHash {
        let mut x = [0x33u8; 20];
        x[0] = a;
        x
    }

    fn announce(t: &mut Tracker, hash: InfoHash, ip: &str) {
        let a = Announce {
            info_hash: hash,
            port: 6881,
            left: Some(1),
            event: Event::Started,
            numwant: None,
        };
        let ip: IpAddr = ip.parse().unwrap();
        t.announce(&a, ip, Proto::Http, 0, &mut Vec::new())
            .expect("no limits set");
    }

    #[test]
    fn purge_drops_refused_torrents_of_both_families_in_slices() {
        let mut t = Tracker::new(Policy::default());
        assert!(t.allowed(&h(1)));
        assert!(!t.replace_access_list(AccessList::empty()));
        t.set_access(Some(Access::new(
            Mode::Whitelist,
            AccessList::from_hashes(vec![h(1), h(0x80), h(0xf0)]),
        )));
        for x in [h(1), h(0x80), h(0xf0)] {
            announce(&mut t, x, "10.0.0.1");
            announce(&mut t, x, "2001:db8::1");
        }
        assert_eq!(t.v4.torrents() + t.v6.torrents(), 6);
        assert!(!t.allowed(&h(2)));

        // New list: h(0x80) is gone, h(2) is new.
        assert!(t.replace_access_list(AccessList::from_hashes(vec![h(1), h(2), h(0xf0)])));
        assert!(!t.allowed(&h(0x80)) && t.allowed(&h(2)));
        assert!(t.purge_pending());
        let mut steps = 0;
        let mut dropped = 0;
        loop {
            let s = t.purge_step(1000);
            steps += 1;
            dropped += s.dropped;
            if s.done {
                break;
            }
        }
        assert_eq!((steps, dropped), (5, 2)); // 4096 buckets / 1000 per step
        assert!(!t.purge_pending());
        assert_eq!(
            t.purge_step(1),
            PurgeStep {
                dropped: 0,
                done: true
            }
        );
        assert_eq!(t.v4.torrents() + t.v6.torrents(), 4);
        assert!(t.scrape_one(&h(0x80), 0).is_none());
        assert_eq!(t.scrape_one(&h(1), 0).unwrap().leechers, 2);
        t.v4.check_invariants();
        t.v6.check_invariants();
    }
}
