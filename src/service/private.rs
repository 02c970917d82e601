//! Private and listed tracking: torrust's four modes, checked in one place for HTTP and UDP.
//!
//! - `public`: every info_hash, no key (opentracker's behaviour).
//! - `listed`: only whitelisted info_hashes; the whitelist is the union of `access.whitelist`'s
//!   file and the entries added through the API (kept in the database when `db.path` is set).
//! - `private`: every announce carries a valid key (`/announce/KEY` over HTTP, the same path in
//!   BEP 41's URL data over UDP); a scrape without a valid key gets zeros (as torrust).
//! - `private_listed`: both.
//!
//! Each refusal has its own text ([`AuthError::reason`]) and counter
//! ([`crate::stats::AuthRefused`]). Keys are checked in RAM ([`Keys::check`]: one hash lookup, no
//! allocation); time is a parameter: `now` is the loop's seconds since start and
//! [`Private::unix_at_start`] turns it into Unix seconds, so expiry is testable without sleeping.
//! An expired key is refused at once, and dropped from RAM [`EXPIRED_KEY_GRACE`] later.

use std::collections::HashSet;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::Tracker;
use crate::access::keys::{Key, KeyCheck, Keys};
pub use crate::config::TrackerMode;
use crate::types::InfoHash;

/// Seconds an expired key stays in RAM before the timer drops it: meanwhile a client that
/// uses it is told its key *expired* (and can renew it) rather than that it is unknown.
pub const EXPIRED_KEY_GRACE: u64 = 3600;

/// Why an announce was refused by the mode (HTTP: bencoded `failure reason`; UDP: BEP 15 error
/// packet, action 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthError {
    /// Private mode and the announce URL has no key.
    MissingKey,
    /// The key is not a known key (or not 32 alphanumerics).
    UnknownKey,
    /// The key is known but its `valid_until` has passed.
    ExpiredKey,
    /// Listed mode and the info_hash is not on the whitelist.
    NotListed,
}

impl AuthError {
    /// The failure reason sent to the client. The not-listed text is opentracker's (which
    /// clients know); the key texts start with `Authentication error:` as torrust's do, without
    /// torrust's source locations. Each is at most 90 bytes, so a UDP error packet (8 + text) is
    /// never larger than the 98-byte announce that caused it (no amplification).
    pub fn reason(self) -> &'static str {
        match self {
            AuthError::MissingKey => {
                "Authentication error: missing key (private tracker: announce to /announce/KEY)"
            }
            AuthError::UnknownKey => "Authentication error: unknown authentication key",
            AuthError::ExpiredKey => "Authentication error: the authentication key has expired",
            AuthError::NotListed => crate::access::NOT_AUTHORIZED,
        }
    }
}

/// The private-tracking state of a [`Tracker`]: mode, keys and the whitelist entries that do not
/// come from `access.whitelist`'s file. Cloning shares the keys and the entries (every worker
/// of `tracker.workers` sees the same ones); the mode and the clock are copied.
#[derive(Clone, Debug, Default)]
pub struct Private {
    /// The mode in force (`tracker.mode`; `access.whitelist` implies a listed mode). Set before
    /// the workers start, then only read.
    pub mode: TrackerMode,
    /// The authentication keys (shared by every worker).
    pub keys: SharedKeys,
    /// Whitelist entries added through the API or loaded from the database (shared by every
    /// worker).
    pub listed: SharedListed,
    /// Unix time (seconds) of loop second 0: `unix_at_start + now` is the Unix time of a request.
    /// Each worker keeps its own, set from the wall clock each loop turn.
    pub unix_at_start: u64,
}

/// Reads a lock shared between workers; poisoned means a worker panicked holding it (a bug,
/// never input): panic too.
fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read()
        .expect("a worker panicked while holding the keys or the whitelist")
}

/// Writes a lock shared between workers (see [`read`]).
fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write()
        .expect("a worker panicked while holding the keys or the whitelist")
}

/// The authentication keys every worker shares: [`Keys`] behind a read-write lock. The hot path
/// (a private mode's announce) takes the read lock for one hash lookup; writes come from worker
/// 0 (API, database, expiry timer). The methods are [`Keys`]'s, each under the lock.
#[derive(Clone, Debug, Default)]
pub struct SharedKeys(Arc<RwLock<Keys>>);

impl SharedKeys {
    /// [`Keys::check`].
    #[inline]
    pub fn check(&self, key: &Key, unix_now: u64) -> KeyCheck {
        read(&self.0).check(key, unix_now)
    }
    /// [`Keys::get`].
    pub fn get(&self, key: &Key) -> Option<Option<u64>> {
        read(&self.0).get(key)
    }
    /// [`Keys::insert`].
    pub fn insert(&self, key: Key, valid_until: Option<u64>) -> bool {
        write(&self.0).insert(key, valid_until)
    }
    /// [`Keys::remove`].
    pub fn remove(&self, key: &Key) -> bool {
        write(&self.0).remove(key)
    }
    /// [`Keys::replace_all`].
    pub fn replace_all(&self, keys: impl IntoIterator<Item = (Key, Option<u64>)>) {
        write(&self.0).replace_all(keys)
    }
    /// [`Keys::purge_expired`].
    pub fn purge_expired(&self, unix_now: u64, max: usize) -> usize {
        write(&self.0).purge_expired(unix_now, max)
    }
    /// [`Keys::len`].
    pub fn len(&self) -> usize {
        read(&self.0).len()
    }
    /// [`Keys::is_empty`].
    pub fn is_empty(&self) -> bool {
        read(&self.0).is_empty()
    }
    /// [`Keys::page`].
    pub fn page(&self, offset: usize, limit: usize) -> Vec<(Key, Option<u64>)> {
        read(&self.0).page(offset, limit)
    }
}

/// The API/database whitelist entries every worker shares: a set behind a read-write lock
/// (read on the hot path in listed modes, one hash lookup; written by worker 0).
#[derive(Clone, Debug, Default)]
pub struct SharedListed(Arc<RwLock<HashSet<InfoHash>>>);

impl SharedListed {
    /// True when `info_hash` is an entry.
    #[inline]
    pub fn contains(&self, info_hash: &InfoHash) -> bool {
        read(&self.0).contains(info_hash)
    }
    /// Adds an entry; true when it was new.
    pub fn insert(&self, info_hash: InfoHash) -> bool {
        write(&self.0).insert(info_hash)
    }
    /// Removes an entry; true when it existed.
    pub fn remove(&self, info_hash: &InfoHash) -> bool {
        write(&self.0).remove(info_hash)
    }
    /// Replaces every entry.
    pub fn replace(&self, entries: HashSet<InfoHash>) {
        *write(&self.0) = entries;
    }
    /// Number of entries.
    pub fn len(&self) -> usize {
        read(&self.0).len()
    }
    /// True when there is no entry.
    pub fn is_empty(&self) -> bool {
        read(&self.0).is_empty()
    }
    /// Every entry, sorted (a copy: for the API's list).
    pub fn sorted(&self) -> Vec<InfoHash> {
        let mut all: Vec<InfoHash> = read(&self.0).iter().copied().collect();
        all.sort_unstable();
        all
    }
}

impl Private {
    /// The Unix time, in seconds, of loop second `now`.
    #[inline]
    pub fn unix(&self, now: u32) -> u64 {
        self.unix_at_start + u64::from(now)
    }
}

impl Tracker {
    /// The mode's check for an announce, before [`Tracker::announce`]: in a listed mode the
    /// info_hash must be whitelisted (file or API/database entries, [`Tracker::allowed`]; a
    /// blacklist file is checked in every mode), in a private mode `key` (the raw path segment,
    /// as sent) must be a valid key at `now`. Counts the refusal.
    ///
    /// Errors: the [`AuthError`] to send; the store is not touched.
    #[inline]
    pub fn authorize(
        &mut self,
        info_hash: &InfoHash,
        key: Option<&[u8]>,
        now: u32,
    ) -> Result<(), AuthError> {
        let result = self.check_authorization(info_hash, key, now);
        if let Err(e) = result {
            let refused = &mut self.stats.auth_refused;
            match e {
                AuthError::MissingKey => refused.missing_key += 1,
                AuthError::UnknownKey => refused.unknown_key += 1,
                AuthError::ExpiredKey => refused.expired_key += 1,
                AuthError::NotListed => refused.not_authorized += 1,
            }
        }
        result
    }

    fn check_authorization(
        &self,
        info_hash: &InfoHash,
        key: Option<&[u8]>,
        now: u32,
    ) -> Result<(), AuthError> {
        if self.private.mode.private() {
            self.check_key(key, now)?;
        }
        if self.allowed(info_hash) {
            Ok(())
        } else {
            Err(AuthError::NotListed)
        }
    }

    /// True when a scrape may see counts: always outside private modes, and with a valid key
    /// in them (torrust answers zeros otherwise). Counts nothing.
    #[inline]
    pub fn scrape_key_ok(&self, key: Option<&[u8]>, now: u32) -> bool {
        !self.private.mode.private() || self.check_key(key, now).is_ok()
    }

    fn check_key(&self, key: Option<&[u8]>, now: u32) -> Result<(), AuthError> {
        let text = key.ok_or(AuthError::MissingKey)?;
        let key = Key::parse(text).ok_or(AuthError::UnknownKey)?;
        match self.private.keys.check(&key, self.private.unix(now)) {
            KeyCheck::Valid => Ok(()),
            KeyCheck::Unknown => Err(AuthError::UnknownKey),
            KeyCheck::Expired => Err(AuthError::ExpiredKey),
        }
    }

    /// True when the tracker serves only listed info_hashes (a listed mode, or an
    /// `access.whitelist` file).
    #[inline]
    pub fn listed_only(&self) -> bool {
        self.private.mode.listed()
            || self
                .access()
                .is_some_and(|a| a.mode == crate::access::Mode::Whitelist)
    }

    /// Adds an API/database whitelist entry. Returns true when it was new.
    pub fn whitelist_add(&mut self, info_hash: InfoHash) -> bool {
        self.private.listed.insert(info_hash)
    }

    /// Removes an API/database whitelist entry and, in a listed mode, drops the torrent's
    /// peers and counts from both stores unless the whitelist file still lists it (as a list
    /// reload purges). Returns true when the entry existed.
    pub fn whitelist_remove(&mut self, info_hash: &InfoHash) -> bool {
        let existed = self.private.listed.remove(info_hash);
        if existed && !self.allowed(info_hash) {
            let b = crate::swarm::store::bucket_of(info_hash);
            self.v4.retain_buckets(b..b + 1, |h| h != info_hash);
            self.v6.retain_buckets(b..b + 1, |h| h != info_hash);
        }
        existed
    }

    /// Replaces the API/database whitelist entries (a reload from the database) and, when only
    /// listed info_hashes are served, starts a purge of the torrents no longer allowed (the
    /// caller runs it in slices: [`Tracker::purge_step`]).
    pub fn whitelist_replace(&mut self, entries: impl IntoIterator<Item = InfoHash>) {
        self.private.listed.replace(entries.into_iter().collect());
        if self.listed_only() {
            self.start_purge();
        }
    }

    /// Drops up to `max` keys that expired [`EXPIRED_KEY_GRACE`] seconds or more before `now`
    /// (the timer calls this, a slice per turn). Returns how many were dropped.
    pub fn purge_expired_keys(&mut self, now: u32, max: usize) -> usize {
        let cutoff = self.private.unix(now).saturating_sub(EXPIRED_KEY_GRACE);
        self.private.keys.purge_expired(cutoff, max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::Policy;

    const KEY: &[u8] = b"YZSl4lMZupRuOpSRC3krIKR5BPB14nrJ";
    const H: InfoHash = [7; 20];

    fn tracker(mode: TrackerMode) -> Tracker {
        let mut t = Tracker::new(Policy::default());
        t.private.mode = mode;
        t.private.unix_at_start = 1_000_000;
        t.private
            .keys
            .insert(Key::parse(KEY).unwrap(), Some(1_000_100));
        t
    }

    #[test]
    fn public_mode_needs_nothing() {
        let mut t = tracker(TrackerMode::Public);
        assert_eq!(t.authorize(&H, None, 0), Ok(()));
        assert_eq!(t.authorize(&H, Some(b"junk"), 0), Ok(()));
        assert!(t.scrape_key_ok(None, 0));
    }

    #[test]
    fn private_mode_checks_the_key_at_now() {
        let mut t = tracker(TrackerMode::Private);
        assert_eq!(t.authorize(&H, None, 0), Err(AuthError::MissingKey));
        assert_eq!(
            t.authorize(&H, Some(b"short"), 0),
            Err(AuthError::UnknownKey)
        );
        let other = b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        assert_eq!(t.authorize(&H, Some(other), 0), Err(AuthError::UnknownKey));
        assert_eq!(t.authorize(&H, Some(KEY), 99), Ok(()));
        assert_eq!(t.authorize(&H, Some(KEY), 100), Err(AuthError::ExpiredKey));
        assert!(t.scrape_key_ok(Some(KEY), 99));
        assert!(!t.scrape_key_ok(Some(KEY), 100));
        assert!(!t.scrape_key_ok(None, 0));
        let r = t.stats.auth_refused;
        assert_eq!(
            (
                r.missing_key,
                r.unknown_key,
                r.expired_key,
                r.not_authorized
            ),
            (1, 2, 1, 0)
        );
    }

    #[test]
    fn listed_modes_use_the_api_entries() {
        let mut t = tracker(TrackerMode::Listed);
        assert_eq!(t.authorize(&H, None, 0), Err(AuthError::NotListed));
        assert!(t.whitelist_add(H));
        assert!(!t.whitelist_add(H));
        assert_eq!(t.authorize(&H, None, 0), Ok(()));
        let mut t = tracker(TrackerMode::PrivateListed);
        t.whitelist_add(H);
        assert_eq!(t.authorize(&H, None, 0), Err(AuthError::MissingKey));
        assert_eq!(
            t.authorize(&[8; 20], Some(KEY), 0),
            Err(AuthError::NotListed)
        );
        assert_eq!(t.authorize(&H, Some(KEY), 0), Ok(()));
        assert_eq!(t.stats.auth_refused.not_authorized, 1);
    }

    #[test]
    fn removing_an_entry_drops_the_torrent() {
        let mut t = tracker(TrackerMode::Listed);
        t.whitelist_add(H);
        let a = crate::service::Announce {
            info_hash: H,
            port: 6881,
            left: Some(1),
            event: crate::types::Event::Started,
            numwant: None,
        };
        let ip = "10.0.0.1".parse().unwrap();
        t.announce(&a, ip, crate::service::Proto::Http, 0, &mut Vec::new())
            .unwrap();
        assert!(t.v4.contains(&H));
        assert!(t.whitelist_remove(&H));
        assert!(!t.v4.contains(&H));
        assert!(!t.whitelist_remove(&H));
    }

    #[test]
    fn expired_keys_are_purged_by_the_timer_after_the_grace() {
        let mut t = tracker(TrackerMode::Private);
        let grace = EXPIRED_KEY_GRACE as u32;
        assert_eq!(t.purge_expired_keys(100, 10), 0);
        assert_eq!(
            t.authorize(&H, Some(KEY), 100 + grace - 1),
            Err(AuthError::ExpiredKey)
        );
        assert_eq!(t.purge_expired_keys(100 + grace - 1, 10), 0);
        assert_eq!(t.purge_expired_keys(100 + grace, 10), 1);
        assert!(t.private.keys.is_empty());
        assert_eq!(
            t.authorize(&H, Some(KEY), 100 + grace),
            Err(AuthError::UnknownKey)
        );
    }
}
