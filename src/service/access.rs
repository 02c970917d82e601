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
        self.publish_access();
    }

    /// Swaps in a reloaded list (same mode) and starts a purge of the torrents it refuses, from the
    /// first bucket (a purge already running restarts). The old list is freed when the last
    /// reference goes. Returns false, changing nothing, when no access list is configured.
    /// [`Tracker::reload_access_list`] is the checked form a SIGHUP uses, which keeps the
    /// `downloaded` counts of the torrents purged.
    pub fn replace_access_list(&mut self, list: AccessList) -> bool {
        let Some(access) = self.access.as_mut() else {
            return false;
        };
        access.list = std::sync::Arc::new(list);
        self.purge_next = Some(0);
        self.publish_access();
        true
    }

    /// Swaps in a list read on a reload (SIGHUP), unless it would drop more than
    /// `access.reload_max_drop` percent of the hashes of the list in force (a file caught while
    /// being rewritten) and the file does not end with [`crate::access::END_MARKER`]
    /// (`end_marker`); 100 percent turns the check off. Then as
    /// [`Tracker::replace_access_list`], keeping the `downloaded` counts of the torrents the
    /// new list refuses (before the purge drops them) and restoring the kept counts of
    /// torrents it serves again (as torrents without peers, from `now`).
    ///
    /// Errors: [`ReloadRefused`] (nothing changed); no access list configured is
    /// `Ok` with nothing done.
    pub fn reload_access_list(
        &mut self,
        list: AccessList,
        end_marker: bool,
        now: u32,
    ) -> Result<Reloaded, ReloadRefused> {
        let Some(access) = self.access.as_ref() else {
            return Ok(Reloaded::default());
        };
        let old = access.list.hashes();
        let dropped = Difference::new(old, list.hashes()).count();
        let max_percent = self.policy.reload_max_drop;
        if !end_marker
            && max_percent < 100
            && dropped as u64 * 100 > u64::from(max_percent) * old.len() as u64
        {
            return Err(ReloadRefused {
                dropped,
                of: old.len(),
                max_percent,
            });
        }
        let old = access.list.clone();
        self.replace_access_list(list);
        // Keep the counts of the torrents the new list refuses. A hash whose verdict may have
        // changed is in exactly one of the two lists.
        let new = self
            .access
            .as_ref()
            .map(|a| a.list.clone())
            .unwrap_or(old.clone());
        for h in SymmetricDifference::new(old.hashes(), new.hashes()) {
            if self.allowed(h) {
                continue;
            }
            let counts = [
                self.v4.scrape(h, now).map_or(0, |c| c.downloaded),
                self.v6.scrape(h, now).map_or(0, |c| c.downloaded),
            ];
            if counts != [0, 0] {
                self.purged_downloads.insert(*h, counts);
            }
        }
        let mut restored = 0;
        let back: Vec<InfoHash> = self
            .purged_downloads
            .keys()
            .filter(|h| self.allowed(h))
            .copied()
            .collect();
        for h in back {
            let Some([d4, d6]) = self.purged_downloads.remove(&h) else {
                continue;
            };
            if d4 > self.v4.scrape(&h, now).map_or(0, |c| c.downloaded) {
                self.v4.set_downloaded(&h, d4, now);
            }
            if d6 > self.v6.scrape(&h, now).map_or(0, |c| c.downloaded) {
                self.v6.set_downloaded(&h, d6, now);
            }
            restored += 1;
        }
        Ok(Reloaded { dropped, restored })
    }

    /// Torrents whose `downloaded` counts are kept aside because the access list refuses them
    /// (see [`Tracker::reload_access_list`]).
    pub fn purged_downloads(&self) -> usize {
        self.purged_downloads.len()
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

/// What [`Tracker::reload_access_list`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reloaded {
    /// Hashes of the old list not in the new one.
    pub dropped: usize,
    /// Torrents served again whose kept `downloaded` counts were restored.
    pub restored: usize,
}

/// A reload refused by `access.reload_max_drop`: the list in force stays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReloadRefused {
    /// Hashes of the list in force the new file lacks.
    pub dropped: usize,
    /// Hashes of the list in force.
    pub of: usize,
    /// `access.reload_max_drop`, percent.
    pub max_percent: u32,
}

impl std::fmt::Display for ReloadRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the new file drops {} of {} info_hashes, more than access.reload_max_drop {}%; \
             keeping the previous list (a file written in place may have been read half-written: \
             write it to a temporary file and rename it, end it with a line \"{}\" to confirm a \
             large drop, or raise access.reload_max_drop)",
            self.dropped,
            self.of,
            self.max_percent,
            crate::access::END_MARKER
        )
    }
}

/// The hashes of sorted `a` that are not in sorted `b`, in order (a merge walk).
struct Difference<'a> {
    a: std::slice::Iter<'a, InfoHash>,
    b: std::iter::Peekable<std::slice::Iter<'a, InfoHash>>,
}

impl<'a> Difference<'a> {
    fn new(a: &'a [InfoHash], b: &'a [InfoHash]) -> Self {
        Difference {
            a: a.iter(),
            b: b.iter().peekable(),
        }
    }
}

impl<'a> Iterator for Difference<'a> {
    type Item = &'a InfoHash;
    fn next(&mut self) -> Option<&'a InfoHash> {
        'outer: for x in self.a.by_ref() {
            while let Some(y) = self.b.peek() {
                match (*y).cmp(x) {
                    std::cmp::Ordering::Less => {
                        self.b.next();
                    }
                    std::cmp::Ordering::Equal => continue 'outer,
                    std::cmp::Ordering::Greater => break,
                }
            }
            return Some(x);
        }
        None
    }
}

/// The hashes in exactly one of two sorted lists.
struct SymmetricDifference<'a>(std::iter::Chain<Difference<'a>, Difference<'a>>);

impl<'a> SymmetricDifference<'a> {
    fn new(a: &'a [InfoHash], b: &'a [InfoHash]) -> Self {
        SymmetricDifference(Difference::new(a, b).chain(Difference::new(b, a)))
    }
}

impl<'a> Iterator for SymmetricDifference<'a> {
    type Item = &'a InfoHash;
    fn next(&mut self) -> Option<&'a InfoHash> {
        self.0.next()
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

    fn completed(t: &mut Tracker, hash: InfoHash, ip: &str) {
        let a = Announce {
            info_hash: hash,
            port: 6881,
            left: Some(0),
            event: Event::Completed,
            numwant: None,
        };
        t.announce(&a, ip.parse().unwrap(), Proto::Http, 0, &mut Vec::new())
            .expect("no limits set");
    }

    fn purge(t: &mut Tracker) {
        while !t.purge_step(BUCKETS).done {}
    }

    /// A reload that races a rewrite: a big drop is refused unless the file says it is complete;
    /// the counts of purged torrents come back when they are listed again.
    #[test]
    fn reload_refuses_big_drops_and_keeps_purged_counts() {
        let mut t = Tracker::new(Policy::default());
        let all: Vec<InfoHash> = (1..=10).map(h).collect();
        t.set_access(Some(Access::new(
            Mode::Whitelist,
            AccessList::from_hashes(all.clone()),
        )));
        completed(&mut t, h(1), "10.0.0.1");
        completed(&mut t, h(1), "2001:db8::1");
        completed(&mut t, h(2), "10.0.0.2");
        // A half-written file: 3 of 10 hashes (7 dropped, over 50%): refused, nothing changes.
        let e = t
            .reload_access_list(AccessList::from_hashes(all[7..].to_vec()), false, 5)
            .unwrap_err();
        assert_eq!((e.dropped, e.of, e.max_percent), (7, 10, 50));
        assert!(e.to_string().contains("# end"), "{e}");
        assert!(t.allowed(&h(1)) && !t.purge_pending());
        // The same file with the marker: accepted, h(1) and h(2) purged, their counts kept.
        let r = t
            .reload_access_list(AccessList::from_hashes(all[7..].to_vec()), true, 5)
            .unwrap();
        assert_eq!(
            r,
            Reloaded {
                dropped: 7,
                restored: 0
            }
        );
        purge(&mut t);
        assert!(t.scrape_one(&h(1), 5).is_none());
        assert_eq!(t.purged_downloads(), 2);
        // A drop within the share needs no marker; listing h(1) and h(2) again restores them.
        let mut back = all[7..].to_vec();
        back.extend([h(1), h(2)]);
        let r = t
            .reload_access_list(AccessList::from_hashes(back), false, 9)
            .unwrap();
        assert_eq!(
            r,
            Reloaded {
                dropped: 0,
                restored: 2
            }
        );
        assert_eq!(t.scrape_one(&h(1), 9).unwrap().downloaded, 2);
        assert_eq!(t.v4.get(&h(1)).unwrap().downloaded(), 1);
        assert_eq!(t.v6.get(&h(1)).unwrap().downloaded(), 1);
        assert_eq!(t.scrape_one(&h(2), 9).unwrap().downloaded, 1);
        assert_eq!(t.purged_downloads(), 0);
        // 100% turns the check off: an empty file is taken.
        t.policy.reload_max_drop = 100;
        assert!(t.reload_access_list(AccessList::empty(), false, 9).is_ok());
        assert!(!t.allowed(&h(1)));
        t.v4.check_invariants();
        t.v6.check_invariants();
    }
}
