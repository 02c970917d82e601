//! Percent-decoding and the announce / scrape query strings (BEP 3 "Trackers", BEP 23, BEP 48).
//!
//! Everything here works on the raw query bytes that [`super::http::parse_request`] returns
//! (after the `?`, not decoded) and decodes values on the fly: no allocation, no panics.
//! Unknown parameters are ignored. Parameter names are matched exactly and case-sensitively
//! (as opentracker); a percent-encoded name (`info%5Fhash`) matches too.
//!
//! Decoding is more lenient than opentracker's (`scan_urlencoded_query.c`): any byte other
//! than a `%XX` escape is taken literally, including raw bytes >= 0x80 and characters such as
//! `#` or `|` that opentracker rejects with 400. `+` stays `+` (it is not a space), as in
//! opentracker.

use std::fmt;

use crate::types::{Event, InfoHash, PeerId};

/// Why a query was rejected. [`QueryError::reason`] is the text for the bencoded
/// `failure reason` (BEP 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryError {
    /// A `%` not followed by two hex digits ([`percent_decode_into`]).
    BadEscape,
    /// The decoded value does not fit the output buffer ([`percent_decode_into`]).
    TooLong,
    /// Announce without `info_hash` (BEP 3: required).
    MissingInfoHash,
    /// An `info_hash` that is not exactly 20 bytes after decoding, or has a bad escape.
    InvalidInfoHash,
    /// Announce with more than one `info_hash` (as opentracker: 400).
    DuplicateInfoHash,
    /// A `peer_id` that is not exactly 20 bytes after decoding, or has a bad escape.
    InvalidPeerId,
    /// Announce without `port` (BEP 3: required).
    MissingPort,
    /// A `port` that is not a decimal in 1..=65535.
    InvalidPort,
    /// A `left` that is not a decimal u64.
    InvalidLeft,
    /// An `event` other than `started`, `stopped`, `completed`, `paused` or empty.
    InvalidEvent,
    /// A `numwant` that is not a decimal in the i32 range.
    InvalidNumwant,
    /// A `compact` that is not a decimal integer.
    InvalidCompact,
    /// A scrape with more `info_hash` parameters than the caller's maximum.
    TooManyInfoHashes,
}

impl QueryError {
    /// A short human text for the bencoded `failure reason` (our own wording).
    pub fn reason(&self) -> &'static str {
        match self {
            QueryError::BadEscape => "malformed percent-escape in query",
            QueryError::TooLong => "query value too long",
            QueryError::MissingInfoHash => "missing info_hash",
            QueryError::InvalidInfoHash => "info_hash must be 20 bytes",
            QueryError::DuplicateInfoHash => "more than one info_hash in announce",
            QueryError::InvalidPeerId => "peer_id must be 20 bytes",
            QueryError::MissingPort => "missing port",
            QueryError::InvalidPort => "invalid port (must be 1-65535)",
            QueryError::InvalidLeft => "invalid left (must be a non-negative integer)",
            QueryError::InvalidEvent => "invalid event",
            QueryError::InvalidNumwant => "invalid numwant",
            QueryError::InvalidCompact => "invalid compact (must be an integer)",
            QueryError::TooManyInfoHashes => "too many info_hash values in scrape",
        }
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for QueryError {}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// An iterator over the decoded bytes of a percent-encoded value; yields `Err(BadEscape)` once
/// and then ends if it meets a bad or truncated escape.
struct Decoded<'a> {
    src: &'a [u8],
    failed: bool,
}

impl<'a> Decoded<'a> {
    fn new(src: &'a [u8]) -> Self {
        Decoded { src, failed: false }
    }
}

impl Iterator for Decoded<'_> {
    type Item = Result<u8, QueryError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let (&first, rest) = self.src.split_first()?;
        if first != b'%' {
            self.src = rest;
            return Some(Ok(first));
        }
        match rest {
            [hi, lo, tail @ ..] => match (hex_value(*hi), hex_value(*lo)) {
                (Some(hi), Some(lo)) => {
                    self.src = tail;
                    Some(Ok(hi << 4 | lo))
                }
                _ => {
                    self.failed = true;
                    Some(Err(QueryError::BadEscape))
                }
            },
            _ => {
                self.failed = true;
                Some(Err(QueryError::BadEscape))
            }
        }
    }
}

/// Percent-decodes `src` into `dst` and returns the number of bytes written.
///
/// `%XX` with hex digits of either case becomes one byte; every other byte is copied as is
/// (`+` stays `+`; raw bytes >= 0x80 are accepted, more lenient than opentracker, which
/// rejects them). Errors: [`QueryError::BadEscape`] for a `%` not followed by two hex digits
/// (including at the end), [`QueryError::TooLong`] when the output would exceed `dst.len()`.
/// On error `dst` may hold a partial result. No allocation.
pub fn percent_decode_into(src: &[u8], dst: &mut [u8]) -> Result<usize, QueryError> {
    let mut n = 0;
    for byte in Decoded::new(src) {
        let byte = byte?;
        let slot = dst.get_mut(n).ok_or(QueryError::TooLong)?;
        *slot = byte;
        n += 1;
    }
    Ok(n)
}

/// An iterator over the raw `(name, value)` pairs of a query string, split on `&` (see
/// [`pairs`]).
#[derive(Clone, Debug)]
pub struct Pairs<'a> {
    rest: Option<&'a [u8]>,
}

/// Splits a raw query (`a=1&b=2`) into raw, still percent-encoded `(name, value)` pairs.
///
/// Pairs are separated by `&`; empty pairs (`a=1&&b=2`, a trailing `&`) are skipped; a pair
/// without `=` has an empty value; the value runs from the first `=` to the next `&` (it may
/// contain further `=`). Decode with [`percent_decode_into`]; compare names with [`name_is`].
pub fn pairs(query: &[u8]) -> Pairs<'_> {
    Pairs { rest: Some(query) }
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let rest = self.rest?;
            let (pair, tail) = match memchr::memchr(b'&', rest) {
                Some(amp) => (&rest[..amp], Some(&rest[amp + 1..])),
                None => (rest, None),
            };
            self.rest = tail;
            if pair.is_empty() {
                continue;
            }
            return Some(match memchr::memchr(b'=', pair) {
                Some(eq) => (&pair[..eq], &pair[eq + 1..]),
                None => (pair, &pair[pair.len()..]),
            });
        }
    }
}

/// True if the raw parameter name `raw` decodes to exactly `name` (case-sensitive). A raw
/// name without `%` is compared directly; one with a bad escape matches nothing.
pub fn name_is(raw: &[u8], name: &[u8]) -> bool {
    if !raw.contains(&b'%') {
        return raw == name;
    }
    decoded_eq(raw, name)
}

/// True if `raw` percent-decodes (without error) to exactly `expected`.
fn decoded_eq(raw: &[u8], expected: &[u8]) -> bool {
    let mut want = expected.iter();
    for byte in Decoded::new(raw) {
        match (byte, want.next()) {
            (Ok(b), Some(&w)) if b == w => {}
            _ => return false,
        }
    }
    want.next().is_none()
}

/// Decodes a value that must be exactly 20 bytes (info_hash, peer_id).
fn decode_20(raw: &[u8], err: QueryError) -> Result<[u8; 20], QueryError> {
    let mut out = [0u8; 20];
    match percent_decode_into(raw, &mut out) {
        Ok(20) => Ok(out),
        _ => Err(err),
    }
}

/// Parses a percent-encoded unsigned decimal (`[0-9]+`, leading zeros allowed) into a u64.
/// `None` if empty, not all digits, a bad escape, or overflow.
fn decode_u64(raw: &[u8]) -> Option<u64> {
    let mut n: u64 = 0;
    let mut any = false;
    for byte in Decoded::new(raw) {
        let d = byte.ok()?;
        if !d.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        any = true;
    }
    any.then_some(n)
}

/// Parses a percent-encoded signed decimal (`-?[0-9]+`) into an i64. `None` if malformed or
/// out of range.
fn decode_i64(raw: &[u8]) -> Option<i64> {
    let negative = raw.first() == Some(&b'-');
    let digits = if negative { &raw[1..] } else { raw };
    let magnitude = decode_u64(digits)?;
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Whether a percent-encoded `-?[0-9]+` of any length is non-zero; `None` if malformed.
fn decode_integer_is_nonzero(raw: &[u8]) -> Option<bool> {
    let digits = raw.strip_prefix(b"-").unwrap_or(raw);
    let mut nonzero = false;
    let mut any = false;
    for byte in Decoded::new(digits) {
        let d = byte.ok()?;
        if !d.is_ascii_digit() {
            return None;
        }
        nonzero |= d != b'0';
        any = true;
    }
    any.then_some(nonzero)
}

/// The parameters of an HTTP announce that the tracker uses (BEP 3 "Trackers").
/// `uploaded`, `downloaded`, `key`, `ip`, `corrupt`, `supportcrypto`, ... are ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnnounceQuery {
    /// The torrent, 20 raw bytes (required).
    pub info_hash: InfoHash,
    /// The client's peer_id, 20 raw bytes, if sent. Validated here; the swarm never stores it
    /// (a peer is its address and port, as opentracker).
    pub peer_id: Option<PeerId>,
    /// The peer's listening port, host order, 1..=65535 (required).
    pub port: u16,
    /// Bytes the client still has to download; `None` when absent (read as a leecher, as
    /// opentracker). `Some(0)` means seeder.
    pub left: Option<u64>,
    /// The announce event ([`Event::None`] when absent, empty or `paused`).
    pub event: Event,
    /// Peers wanted, as sent (may be negative or huge: the service clamps it); `None` when
    /// absent.
    pub numwant: Option<i32>,
    /// Whether the client accepts the compact peer list (BEP 23). True when absent.
    pub compact: bool,
    /// Whether the client sent `no_peer_id` with a non-zero integer (or an empty value): it
    /// accepts peer dicts without `peer id`. False when absent or not an integer (the
    /// parameter is advisory, so a bad value is no error).
    pub no_peer_id: bool,
}

/// Parses an announce query (raw bytes after `?`). Unknown parameters are ignored; a repeated
/// parameter other than `info_hash` is validated each time and the last one counts.
///
/// Rules:
/// * `info_hash`: required ([`QueryError::MissingInfoHash`]); exactly 20 bytes after
///   percent-decoding, else [`QueryError::InvalidInfoHash`] (BEP 3); a second one is
///   [`QueryError::DuplicateInfoHash`] (as opentracker).
/// * `peer_id`: optional; if present exactly 20 bytes, else [`QueryError::InvalidPeerId`]
///   (BEP 3 length; optional as in opentracker).
/// * `port`: required ([`QueryError::MissingPort`], BEP 3); decimal 1..=65535, else
///   [`QueryError::InvalidPort`] (unlike opentracker, no wrap of negatives, no port 0).
/// * `left`: optional (absent = leecher, as opentracker); decimal u64, else
///   [`QueryError::InvalidLeft`] (unlike opentracker, `left=12abc` is an error, not a seeder).
/// * `event`: `started`, `stopped`, `completed` (BEP 3), `paused` (BEP 21, read as
///   [`Event::None`]), empty or absent ([`Event::None`]); anything else
///   [`QueryError::InvalidEvent`].
/// * `numwant`: optional signed decimal in the i32 range, else [`QueryError::InvalidNumwant`]
///   (BEP 3 optional; clamping is the service's).
/// * `compact`: absent -> true (BEP 23); `0` -> false; any other integer -> true; a
///   non-integer -> [`QueryError::InvalidCompact`].
/// * `no_peer_id`: any non-zero integer, or an empty value -> true; else false, never an error.
///
/// The first error met, in parameter order, is returned; the missing checks come last.
pub fn parse_announce(query: &[u8]) -> Result<AnnounceQuery, QueryError> {
    let mut info_hash: Option<InfoHash> = None;
    let mut peer_id = None;
    let mut port = None;
    let mut left = None;
    let mut event = Event::None;
    let mut numwant = None;
    let mut compact = true;
    let mut no_peer_id = false;

    for (name, value) in pairs(query) {
        if name_is(name, b"info_hash") {
            if info_hash.is_some() {
                return Err(QueryError::DuplicateInfoHash);
            }
            info_hash = Some(decode_20(value, QueryError::InvalidInfoHash)?);
        } else if name_is(name, b"peer_id") {
            peer_id = Some(decode_20(value, QueryError::InvalidPeerId)?);
        } else if name_is(name, b"port") {
            let p = decode_u64(value)
                .and_then(|p| u16::try_from(p).ok())
                .filter(|&p| p != 0)
                .ok_or(QueryError::InvalidPort)?;
            port = Some(p);
        } else if name_is(name, b"left") {
            left = Some(decode_u64(value).ok_or(QueryError::InvalidLeft)?);
        } else if name_is(name, b"event") {
            event = parse_event(value)?;
        } else if name_is(name, b"numwant") {
            let n = decode_i64(value)
                .and_then(|n| i32::try_from(n).ok())
                .ok_or(QueryError::InvalidNumwant)?;
            numwant = Some(n);
        } else if name_is(name, b"compact") {
            compact = decode_integer_is_nonzero(value).ok_or(QueryError::InvalidCompact)?;
        } else if name_is(name, b"no_peer_id") {
            no_peer_id = value.is_empty() || decode_integer_is_nonzero(value).unwrap_or(false);
        }
    }

    Ok(AnnounceQuery {
        info_hash: info_hash.ok_or(QueryError::MissingInfoHash)?,
        peer_id,
        port: port.ok_or(QueryError::MissingPort)?,
        left,
        event,
        numwant,
        compact,
        no_peer_id,
    })
}

fn parse_event(raw: &[u8]) -> Result<Event, QueryError> {
    let mut buf = [0u8; 9]; // the longest, "completed"
    let n = percent_decode_into(raw, &mut buf).map_err(|_| QueryError::InvalidEvent)?;
    match &buf[..n] {
        b"" | b"paused" => Ok(Event::None),
        b"started" => Ok(Event::Started),
        b"stopped" => Ok(Event::Stopped),
        b"completed" => Ok(Event::Completed),
        _ => Err(QueryError::InvalidEvent),
    }
}

/// Parses a scrape query (BEP 48): writes each `info_hash` (20 raw bytes after decoding, in
/// request order, duplicates kept) into `out` and returns how many there were. The caller's
/// maximum is `out.len()` (opentracker answers at most 64).
///
/// Errors: [`QueryError::InvalidInfoHash`] for a value that is not 20 bytes or has a bad
/// escape; [`QueryError::TooManyInfoHashes`] for more than `out.len()` of them. Other
/// parameters are ignored. No `info_hash` at all is `Ok(0)`: the caller decides between a
/// full scrape and an error.
pub fn parse_scrape(query: &[u8], out: &mut [InfoHash]) -> Result<usize, QueryError> {
    let mut n = 0;
    for (name, value) in pairs(query) {
        if name_is(name, b"info_hash") {
            let hash = decode_20(value, QueryError::InvalidInfoHash)?;
            let slot = out.get_mut(n).ok_or(QueryError::TooManyInfoHashes)?;
            *slot = hash;
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests;
