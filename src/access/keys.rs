//! Authentication keys of a private tracker (torrust's format and semantics).
//!
//! A key is 32 ASCII alphanumerics (`[0-9A-Za-z]`, torrust's `Alphanumeric`), valid until a Unix
//! time in seconds or forever. Clients put it in the announce URL's path: `/announce/KEY` over
//! HTTP, and the same path carried in BEP 41's URL-data option over UDP.
//!
//! The hot path ([`Keys::check`]) is one lookup in a `HashMap` keyed by the 32 raw bytes
//! (SipHash with a random key: the keys are chosen by clients, so the map must not be floodable);
//! no allocation, no database. Expiry is checked at use, so a key is refused from the second its
//! validity ends; expired keys are also dropped from RAM by [`Keys::purge_expired`], a bounded
//! number per call, in order of expiry (a min-heap of `(valid_until, key)`), so the timer never
//! walks the whole map.
//!
//! This module imports only `std` and `getrandom`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;

/// Length of a key in bytes (ASCII characters): 32, as torrust.
pub const KEY_LEN: usize = 32;

/// An authentication key: exactly 32 ASCII alphanumerics. The only way to make one is
/// [`Key::parse`] or [`Key::generate`], so every `Key` is well-formed text.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key([u8; KEY_LEN]);

impl Key {
    /// Reads a key from its text form: exactly [`KEY_LEN`] bytes, each `[0-9A-Za-z]`.
    /// `None` for anything else (wrong length, any other byte).
    pub fn parse(text: &[u8]) -> Option<Key> {
        let bytes: [u8; KEY_LEN] = text.try_into().ok()?;
        bytes
            .iter()
            .all(u8::is_ascii_alphanumeric)
            .then_some(Key(bytes))
    }

    /// A new random key from the OS's random source (`getrandom`), each character uniform over
    /// the 62 alphanumerics (rejection sampling, no modulo bias).
    ///
    /// Errors: the OS random source failed, as its message.
    pub fn generate() -> Result<Key, String> {
        const ALPHABET: &[u8; 62] =
            b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let mut out = [0u8; KEY_LEN];
        let mut filled = 0;
        let mut pool = [0u8; 64];
        while filled < KEY_LEN {
            getrandom::fill(&mut pool).map_err(|e| format!("getrandom: {e}"))?;
            // 248 = 4 x 62: bytes at or above it would favour the first characters.
            for &b in pool.iter().filter(|&&b| b < 248) {
                if filled == KEY_LEN {
                    break;
                }
                out[filled] = ALPHABET[usize::from(b % 62)];
                filled += 1;
            }
        }
        Ok(Key(out))
    }

    /// The key as text (32 ASCII alphanumerics).
    pub fn as_str(&self) -> &str {
        // Every constructor checks the bytes are ASCII alphanumerics.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The key's 32 bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for Key {
    /// Keys are secrets: debug output shows only the first four characters.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({}…)", &self.as_str()[..4])
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of [`Keys::check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyCheck {
    /// Known and valid now.
    Valid,
    /// Not a known key.
    Unknown,
    /// Known, but its `valid_until` has passed.
    Expired,
}

/// The keys known to the tracker: key -> `valid_until` (Unix seconds; `None` = permanent).
#[derive(Default)]
pub struct Keys {
    map: HashMap<Key, Option<u64>>,
    /// `(valid_until, key)` of every key inserted with an expiry, soonest first. Entries whose key
    /// was removed or re-inserted since are stale and skipped by the purge.
    expiry: BinaryHeap<Reverse<(u64, Key)>>,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keys({} keys)", self.map.len())
    }
}

impl Keys {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `key` may be used at `unix_now` (seconds since the Unix epoch). A key whose
    /// `valid_until` is `unix_now` or earlier is [`KeyCheck::Expired`]. One hash lookup.
    #[inline]
    pub fn check(&self, key: &Key, unix_now: u64) -> KeyCheck {
        match self.map.get(key) {
            None => KeyCheck::Unknown,
            Some(Some(until)) if *until <= unix_now => KeyCheck::Expired,
            Some(_) => KeyCheck::Valid,
        }
    }

    /// The key's `valid_until` (`Some(None)` = permanent), or `None` when it is not known.
    pub fn get(&self, key: &Key) -> Option<Option<u64>> {
        self.map.get(key).copied()
    }

    /// Adds `key`, or replaces its `valid_until` when it is already known. Returns true when the
    /// key was new.
    pub fn insert(&mut self, key: Key, valid_until: Option<u64>) -> bool {
        if let Some(until) = valid_until {
            self.expiry.push(Reverse((until, key)));
        }
        let new = self.map.insert(key, valid_until).is_none();
        self.compact_heap();
        new
    }

    /// Removes `key`. Returns true when it was known.
    pub fn remove(&mut self, key: &Key) -> bool {
        let known = self.map.remove(key).is_some();
        self.compact_heap();
        known
    }

    /// Replaces every key with `keys` (a reload from the database).
    pub fn replace_all(&mut self, keys: impl IntoIterator<Item = (Key, Option<u64>)>) {
        self.map.clear();
        self.expiry.clear();
        for (key, until) in keys {
            self.insert(key, until);
        }
    }

    /// Drops up to `max` keys whose `valid_until` is at or before `unix_now`, soonest first.
    /// Returns how many were dropped. Cost: O(log n) per heap entry looked at, at most about
    /// `2 * max` entries (stale entries of removed or re-inserted keys count too).
    pub fn purge_expired(&mut self, unix_now: u64, max: usize) -> usize {
        let mut dropped = 0;
        let mut looked = 0;
        while dropped < max && looked < max.saturating_mul(2).max(1) {
            let Some(Reverse((until, key))) = self.expiry.peek().copied() else {
                break;
            };
            if until > unix_now {
                break;
            }
            self.expiry.pop();
            looked += 1;
            // Stale when the key was removed or re-inserted with another expiry.
            if self.map.get(&key) == Some(&Some(until)) {
                self.map.remove(&key);
                dropped += 1;
            }
        }
        dropped
    }

    /// Number of keys held (expired ones not yet purged included).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every key with its `valid_until`, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&Key, &Option<u64>)> {
        self.map.iter()
    }

    /// A page of the keys sorted by key text: `offset` keys skipped, at most `limit` returned.
    /// Sorts every key (O(n log n)): for the API, not the hot path.
    pub fn page(&self, offset: usize, limit: usize) -> Vec<(Key, Option<u64>)> {
        let mut all: Vec<(Key, Option<u64>)> = self.map.iter().map(|(k, v)| (*k, *v)).collect();
        all.sort_unstable_by_key(|e| e.0);
        all.into_iter().skip(offset).take(limit).collect()
    }

    /// Rebuilds the expiry heap without stale entries once they outnumber live ones, so a client
    /// that inserts and removes keys in a loop cannot grow it without bound.
    fn compact_heap(&mut self) {
        if self.expiry.len() <= 2 * self.map.len() + 1024 {
            return;
        }
        let live = self
            .map
            .iter()
            .filter_map(|(k, v)| v.map(|until| Reverse((until, *k))));
        self.expiry = live.collect();
    }
}

/// Finds the key in an announce or scrape URL path as torrust routes it: the segment after
/// `announce/` or `scrape/` (`/announce/KEY`, `/announce/KEY/`, `/announce/KEY?...`). Leading
/// slashes are skipped. Returns `None` when the path has no such segment or it is empty; the
/// segment is returned as sent (it may not be a well-formed [`Key`]).
///
/// Used for HTTP paths and for the path in BEP 41's URL-data option (UDP).
pub fn key_in_path(path: &[u8]) -> Option<&[u8]> {
    let path = match path.iter().position(|&b| b != b'/') {
        Some(start) => &path[start..],
        None => return None,
    };
    let path = match path.iter().position(|&b| b == b'?') {
        Some(end) => &path[..end],
        None => path,
    };
    let rest = path
        .strip_prefix(b"announce/")
        .or_else(|| path.strip_prefix(b"scrape/"))?;
    let end = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
    let key = &rest[..end];
    (!key.is_empty()).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(c: u8) -> Key {
        Key::parse(&[c; KEY_LEN]).unwrap()
    }

    #[test]
    fn parse_accepts_exactly_32_alphanumerics() {
        assert!(Key::parse(b"YZSl4lMZupRuOpSRC3krIKR5BPB14nrJ").is_some());
        assert!(Key::parse(b"YZSl4lMZupRuOpSRC3krIKR5BPB14nr").is_none());
        assert!(Key::parse(b"YZSl4lMZupRuOpSRC3krIKR5BPB14nrJx").is_none());
        assert!(Key::parse(b"YZSl4lMZupRuOpSRC3krIKR5BPB14nr-").is_none());
        assert!(Key::parse(b"YZSl4lMZupRuOpSRC3krIKR5BPB14nr\xc3").is_none());
        assert!(Key::parse(b"").is_none());
    }

    #[test]
    fn generated_keys_are_well_formed_and_differ() {
        let a = Key::generate().unwrap();
        let b = Key::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(Key::parse(a.as_str().as_bytes()), Some(a));
        assert_eq!(a.as_str().len(), KEY_LEN);
    }

    #[test]
    fn debug_does_not_show_the_whole_key() {
        let text = format!("{:?}", k(b'a'));
        assert_eq!(text, "Key(aaaa…)");
    }

    #[test]
    fn check_at_the_expiry_boundary() {
        let mut keys = Keys::new();
        keys.insert(k(b'a'), Some(100));
        keys.insert(k(b'b'), None);
        assert_eq!(keys.check(&k(b'a'), 99), KeyCheck::Valid);
        assert_eq!(keys.check(&k(b'a'), 100), KeyCheck::Expired);
        assert_eq!(keys.check(&k(b'b'), u64::MAX), KeyCheck::Valid);
        assert_eq!(keys.check(&k(b'c'), 0), KeyCheck::Unknown);
    }

    #[test]
    fn insert_replaces_and_remove_reports() {
        let mut keys = Keys::new();
        assert!(keys.insert(k(b'a'), Some(10)));
        assert!(!keys.insert(k(b'a'), None));
        assert_eq!(keys.get(&k(b'a')), Some(None));
        assert!(keys.remove(&k(b'a')));
        assert!(!keys.remove(&k(b'a')));
        assert!(keys.is_empty());
    }

    #[test]
    fn purge_drops_expired_keys_in_bounded_slices() {
        let mut keys = Keys::new();
        for (i, c) in (b'a'..=b'j').enumerate() {
            keys.insert(k(c), Some(10 + i as u64));
        }
        keys.insert(k(b'z'), None);
        assert_eq!(keys.purge_expired(9, 100), 0);
        assert_eq!(keys.purge_expired(14, 3), 3);
        assert_eq!(keys.purge_expired(14, 3), 2);
        assert_eq!(keys.purge_expired(14, 3), 0);
        assert_eq!(keys.len(), 6);
        assert_eq!(keys.purge_expired(1000, 100), 5);
        assert_eq!(keys.len(), 1);
        assert_eq!(keys.check(&k(b'z'), 1000), KeyCheck::Valid);
    }

    #[test]
    fn purge_skips_stale_heap_entries() {
        let mut keys = Keys::new();
        keys.insert(k(b'a'), Some(10));
        // Re-inserted as permanent: the heap entry for 10 is stale.
        keys.insert(k(b'a'), None);
        keys.insert(k(b'b'), Some(10));
        keys.remove(&k(b'b'));
        keys.insert(k(b'b'), Some(50));
        assert_eq!(keys.purge_expired(20, 10), 0);
        assert_eq!(keys.len(), 2);
        assert_eq!(keys.purge_expired(50, 10), 1);
        assert_eq!(keys.get(&k(b'a')), Some(None));
    }

    #[test]
    fn heap_stays_bounded_under_insert_remove_churn() {
        let mut keys = Keys::new();
        for i in 0..100_000u64 {
            keys.insert(k(b'a'), Some(1_000_000 + i));
            keys.remove(&k(b'a'));
        }
        assert!(keys.expiry.len() <= 1024 + 1);
    }

    #[test]
    fn page_is_sorted_and_bounded() {
        let mut keys = Keys::new();
        for c in [b'd', b'a', b'c', b'b'] {
            keys.insert(k(c), None);
        }
        let page: Vec<Key> = keys.page(1, 2).into_iter().map(|(k, _)| k).collect();
        assert_eq!(page, vec![k(b'b'), k(b'c')]);
        assert!(keys.page(10, 2).is_empty());
    }

    #[test]
    fn key_in_path_finds_torrust_routes() {
        assert_eq!(key_in_path(b"/announce/abc"), Some(&b"abc"[..]));
        assert_eq!(key_in_path(b"//announce/abc/"), Some(&b"abc"[..]));
        assert_eq!(key_in_path(b"/announce/abc?x=1"), Some(&b"abc"[..]));
        assert_eq!(key_in_path(b"/scrape/abc"), Some(&b"abc"[..]));
        assert_eq!(key_in_path(b"announce/abc"), Some(&b"abc"[..]));
        assert_eq!(key_in_path(b"/announce"), None);
        assert_eq!(key_in_path(b"/announce/"), None);
        assert_eq!(key_in_path(b"/announce?info_hash=x"), None);
        assert_eq!(key_in_path(b"/announce.php/abc"), None);
        assert_eq!(key_in_path(b""), None);
        assert_eq!(key_in_path(b"///"), None);
    }
}
