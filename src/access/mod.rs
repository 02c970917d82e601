//! Access lists: `access.whitelist FILE` (only the listed info_hashes are served) or
//! `access.blacklist FILE` (the listed ones are refused), as opentracker's `ot_accesslist.c`.
//!
//! The list is a sorted, deduplicated `Vec` of 20-byte info_hashes (1 million hashes = 20 MB)
//! with an index by the top bits of the hash sized so that about 16 hashes share a slot (1 million
//! hashes: 16 bits, 256 KB), so a lookup reads one index entry and binary-searches some 320
//! contiguous bytes. It lives in an [`Arc`] so that the event loop can swap a new list in with a
//! pointer store while a helper thread parses the next one ([`reload`]).
//!
//! File format (as opentracker, a little more forgiving and a lot more talkative): one info_hash
//! per line as 40 hex digits, upper or lower case. Also accepted: surrounding blanks, CRLF line
//! ends, blank lines, whole-line `#` comments and a `#` comment after the hash. Any other line
//! (a short or long hash, a non-hex digit, text after the hash that is not a comment) is reported
//! as `FILE:LINE: reason` and skipped; opentracker silently ignores such lines.
//!
//! The line reader and the hex parser are [`crate::lines`], shared with the state file. This
//! module imports only `std`, [`crate::lines`] and [`crate::types`].

pub mod keys;
pub mod reload;

use std::fmt;
use std::io::{self, BufRead};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::lines::{Line, MAX_LINE, Warnings, for_each_line, open_regular, parse_hex40, quote};
use crate::types::InfoHash;

/// The failure reason sent for a refused announce, on HTTP (bencoded `failure reason`, BEP 3) and
/// UDP (error packet, action 3, BEP 15). opentracker's text, which clients know.
pub const NOT_AUTHORIZED: &str = "Requested download is not authorized for use with this tracker.";

/// Which way the list works.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `access.whitelist`: only listed info_hashes may announce.
    Whitelist,
    /// `access.blacklist`: listed info_hashes may not announce.
    Blacklist,
}

impl Mode {
    /// The directive's name (`access.whitelist` / `access.blacklist`), for log lines.
    pub fn directive(self) -> &'static str {
        match self {
            Mode::Whitelist => "access.whitelist",
            Mode::Blacklist => "access.blacklist",
        }
    }
}

/// Most index bits (2^20 slots = 4 MB of index, for lists of 16 million hashes and more).
const MAX_INDEX_BITS: u32 = 20;

/// The index slot of `h`: its top `bits` bits (0..=24).
fn slot_of(h: &InfoHash, bits: u32) -> usize {
    (u32::from_be_bytes([0, h[0], h[1], h[2]]) >> (24 - bits)) as usize
}

/// A sorted, deduplicated set of info_hashes with a prefix index.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessList {
    hashes: Vec<InfoHash>,
    /// Bits of the hash prefix that pick an index slot.
    bits: u32,
    /// `index[s]..index[s + 1]` is the range of hashes whose top `bits` bits are `s`.
    index: Box<[u32]>,
}

impl AccessList {
    /// Builds a list from hashes in any order; duplicates are dropped.
    ///
    /// More than `u32::MAX` hashes (80 GB) cannot be indexed: the excess is dropped.
    pub fn from_hashes(mut hashes: Vec<InfoHash>) -> Self {
        hashes.sort_unstable();
        hashes.dedup();
        hashes.truncate(u32::MAX as usize);
        hashes.shrink_to_fit();
        // About 16 hashes per slot: bits = log2(len) - 4, within 0..=MAX_INDEX_BITS.
        let bits = (usize::BITS - (hashes.len() / 16).leading_zeros()).min(MAX_INDEX_BITS);
        let mut index = vec![0u32; (1 << bits) + 1].into_boxed_slice();
        let mut pos = 0usize;
        for (slot, start) in index.iter_mut().enumerate() {
            while pos < hashes.len() && slot_of(&hashes[pos], bits) < slot {
                pos += 1;
            }
            *start = pos as u32;
        }
        AccessList {
            hashes,
            bits,
            index,
        }
    }

    /// An empty list (a whitelist that allows nothing, a blacklist that refuses nothing).
    pub fn empty() -> Self {
        Self::from_hashes(Vec::new())
    }

    /// True when `info_hash` is listed. A binary search over the hashes sharing its index slot
    /// (about 16); no allocation.
    pub fn contains(&self, info_hash: &InfoHash) -> bool {
        let s = slot_of(info_hash, self.bits);
        let (lo, hi) = (self.index[s] as usize, self.index[s + 1] as usize);
        self.hashes
            .get(lo..hi)
            .is_some_and(|run| run.binary_search(info_hash).is_ok())
    }

    /// Number of distinct hashes.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// True when the list holds no hash.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// The hashes, sorted ascending.
    pub fn hashes(&self) -> &[InfoHash] {
        &self.hashes
    }
}

impl fmt::Debug for AccessList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessList")
            .field("len", &self.hashes.len())
            .finish()
    }
}

/// The access policy in force: a mode and a shared list. Cloning shares the list.
#[derive(Clone, Debug)]
pub struct Access {
    /// Whitelist or blacklist.
    pub mode: Mode,
    /// The hashes; replaced as a whole on reload (pointer swap).
    pub list: Arc<AccessList>,
}

impl Access {
    /// A policy over `list`.
    pub fn new(mode: Mode, list: AccessList) -> Self {
        Access {
            mode,
            list: Arc::new(list),
        }
    }

    /// True when an announce for `info_hash` may be served: listed on a whitelist, or not listed
    /// on a blacklist.
    pub fn allows(&self, info_hash: &InfoHash) -> bool {
        self.list.contains(info_hash) == (self.mode == Mode::Whitelist)
    }
}

/// A list read from a file, with what was wrong in it.
#[derive(Debug)]
pub struct Loaded {
    /// The info_hashes of the good lines.
    pub list: AccessList,
    /// `FILE:LINE: reason` for the first [`MAX_WARNINGS`](crate::lines::MAX_WARNINGS) bad lines, then one summary line.
    pub warnings: Vec<String>,
    /// Lines skipped as bad.
    pub bad_lines: usize,
    /// True when the file's last non-blank line is [`END_MARKER`]: whoever wrote it says it is
    /// complete, so a reload may drop any share of the list (see
    /// `service::access::Tracker::reload_access_list`).
    pub end_marker: bool,
    /// Time spent reading and parsing (wall clock).
    pub elapsed: Duration,
}

/// Why one list line is bad.
fn check_line(line: &[u8]) -> Result<Option<InfoHash>, String> {
    let line = line.trim_ascii();
    if line.is_empty() || line[0] == b'#' {
        return Ok(None);
    }
    let (hash, rest) = match line
        .iter()
        .position(|b| b.is_ascii_whitespace() || *b == b'#')
    {
        Some(i) => (&line[..i], line[i..].trim_ascii_start()),
        None => (line, &b""[..]),
    };
    if !rest.is_empty() && rest[0] != b'#' {
        return Err(format!(
            "text after the info_hash is not a # comment: {}",
            quote(line)
        ));
    }
    if let Some(h) = parse_hex40(hash) {
        return Ok(Some(h));
    }
    let why = if hash.iter().all(u8::is_ascii_hexdigit) {
        format!("{} hex digits, an info_hash has 40", hash.len())
    } else {
        "not a hex info_hash (40 digits 0-9, a-f)".to_owned()
    };
    Err(format!("{why}: {}", quote(line)))
}

/// The line that marks a list file as complete when it is the file's last non-blank line
/// (spaces around it ignored). A reload of a file that ends with it may drop any share of the
/// list; without it, `access.reload_max_drop` applies (a file caught half-written by a SIGHUP).
pub const END_MARKER: &str = "# end";

/// Parses a list from `reader`; `origin` (the file name) prefixes warnings. Notes whether the
/// last non-blank line is [`END_MARKER`] ([`Loaded::end_marker`]).
///
/// Errors: only the reader's I/O errors; bad lines are warnings (see [`Loaded`]).
pub fn parse(reader: impl BufRead, origin: &str) -> io::Result<Loaded> {
    let start = Instant::now();
    let mut hashes = Vec::new();
    let mut warnings = Warnings::default();
    let mut end_marker = false;
    for_each_line(reader, |number, line| {
        let bytes = match line {
            Line::Full(b) | Line::Unterminated(b) => b,
            Line::TooLong => {
                warnings.bad_line(origin, number, format!("longer than {MAX_LINE} bytes"));
                end_marker = false;
                return;
            }
        };
        let trimmed = bytes.trim_ascii();
        if !trimmed.is_empty() {
            end_marker = trimmed == END_MARKER.as_bytes();
        }
        match check_line(bytes) {
            Ok(Some(h)) => hashes.push(h),
            Ok(None) => {}
            Err(why) => warnings.bad_line(origin, number, why),
        }
    })?;
    let list = AccessList::from_hashes(hashes);
    let (warnings, bad_lines) = warnings.finish(origin);
    Ok(Loaded {
        list,
        warnings,
        bad_lines,
        end_marker,
        elapsed: start.elapsed(),
    })
}

/// Reads and parses the list file at `path`.
///
/// Errors (text for the log, naming the file): the file is missing, unreadable or not a regular
/// file, e.g. `cannot read /etc/ot/whitelist: No such file or directory (os error 2)`.
pub fn load(path: &Path) -> Result<Loaded, String> {
    let origin = path.display().to_string();
    let reader = open_regular(path).map_err(|e| format!("cannot read {origin}: {e}"))?;
    parse(reader, &origin).map_err(|e| format!("cannot read {origin}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lines::MAX_WARNINGS;

    const A: &str = "0123456789abcdef0123456789abcdef01234567";

    fn h(byte: u8) -> InfoHash {
        [byte; 20]
    }

    fn hex(h: &InfoHash) -> String {
        h.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn parse_str(text: &str) -> Loaded {
        parse(text.as_bytes(), "wl.txt").unwrap()
    }

    #[test]
    fn accepts_every_allowed_form() {
        let upper = hex(&h(0xab)).to_uppercase();
        let text = format!(
            "# comment line\n\
             \n\
             {A}\n\
             \t  {}  \r\n\
             {upper}\n\
             {}# trailing comment\n\
             {}   # spaced comment\r\n\
             \x20 # indented comment\n\
             {}",
            hex(&h(0x01)),
            hex(&h(0x02)),
            hex(&h(0x03)),
            hex(&h(0x04)), // no final newline
        );
        let l = parse_str(&text);
        assert_eq!(l.warnings, Vec::<String>::new());
        assert_eq!(l.bad_lines, 0);
        let mut want = [
            parse_hex40(A.as_bytes()).unwrap(),
            h(0x01),
            h(0xab),
            h(0x02),
            h(0x03),
            h(0x04),
        ];
        want.sort();
        assert_eq!(l.list.hashes(), &want[..]);
    }

    #[test]
    fn bad_lines_are_reported_with_file_and_line_and_skipped() {
        let text = format!(
            "{A}\n\
             {A}0\n\
             0123\n\
             {}\n\
             {A} ubuntu.iso\n\
             \n\
             {}\n",
            A.replace('a', "g"),
            hex(&h(9)),
        );
        let l = parse_str(&text);
        assert_eq!(l.list.len(), 2);
        assert!(l.list.contains(&h(9)));
        assert_eq!(l.bad_lines, 4);
        assert_eq!(
            l.warnings,
            [
                format!("wl.txt:2: 41 hex digits, an info_hash has 40: \"{A}0\"; line skipped"),
                "wl.txt:3: 4 hex digits, an info_hash has 40: \"0123\"; line skipped".to_owned(),
                format!(
                    "wl.txt:4: not a hex info_hash (40 digits 0-9, a-f): \"{}\"; line skipped",
                    A.replace('a', "g")
                ),
                format!(
                    "wl.txt:5: text after the info_hash is not a # comment: \"{A} ubuntu.iso\"; \
                     line skipped"
                ),
            ]
        );
    }

    #[test]
    fn control_bytes_and_long_lines_are_quoted_safely() {
        let mut text = b"\x1b[31m\xff\n".to_vec();
        text.extend(std::iter::repeat_n(b'a', MAX_LINE * 3));
        text.extend_from_slice(b"\n");
        text.extend_from_slice(A.as_bytes());
        text.extend_from_slice(b"\n");
        let l = parse(&text[..], "x").unwrap();
        assert_eq!(l.list.len(), 1);
        assert_eq!(
            l.warnings,
            [
                "x:1: not a hex info_hash (40 digits 0-9, a-f): \"\\x1b[31m\\xff\"; line skipped",
                "x:2: longer than 4096 bytes; line skipped",
            ]
        );
    }

    #[test]
    fn warnings_are_capped_with_a_summary() {
        let text = "zz\n".repeat(MAX_WARNINGS + 5);
        let l = parse_str(&text);
        assert_eq!(l.bad_lines, MAX_WARNINGS + 5);
        assert_eq!(l.warnings.len(), MAX_WARNINGS + 1);
        assert_eq!(
            l.warnings.last().unwrap(),
            "wl.txt: 5 more bad lines skipped (not shown)"
        );
    }

    #[test]
    fn lookup_matches_a_linear_scan() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut hashes: Vec<InfoHash> = (0..5000)
            .map(|_| std::array::from_fn(|_| rng.u8(..)))
            .collect();
        // Edge slots and duplicates.
        hashes.extend([[0u8; 20], [0xff; 20], [0u8; 20]]);
        let list = AccessList::from_hashes(hashes.clone());
        assert_eq!(list.len(), 5002);
        assert_eq!(list.bits, 9); // 5002 / 16 = 312 -> 9 bits, 512 slots
        for x in &hashes {
            assert!(list.contains(x));
        }
        for _ in 0..5000 {
            let probe: InfoHash = std::array::from_fn(|_| rng.u8(..));
            assert_eq!(list.contains(&probe), hashes.contains(&probe));
        }
        assert!(!AccessList::empty().contains(&[0; 20]));
        // Every size from 0 to 40 (0 to 2 index bits) and the edges of the slot range.
        for len in 0..40u8 {
            let small: Vec<InfoHash> = (0..len).map(|i| [i.wrapping_mul(37); 20]).collect();
            let list = AccessList::from_hashes(small.clone());
            for i in 0..=255u8 {
                assert_eq!(list.contains(&[i; 20]), small.contains(&[i; 20]));
            }
        }
    }

    #[test]
    fn modes() {
        let list = AccessList::from_hashes(vec![h(1)]);
        let white = Access::new(Mode::Whitelist, list.clone());
        let black = Access::new(Mode::Blacklist, list);
        assert!(white.allows(&h(1)) && !white.allows(&h(2)));
        assert!(!black.allows(&h(1)) && black.allows(&h(2)));
        let empty_white = Access::new(Mode::Whitelist, AccessList::empty());
        assert!(!empty_white.allows(&h(1)));
    }

    #[test]
    fn load_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("otrs-access-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.txt");
        let e = load(&missing).unwrap_err();
        assert!(
            e.starts_with(&format!("cannot read {}: ", missing.display())),
            "{e}"
        );
        let e = load(&dir).unwrap_err();
        assert!(
            e.contains("not a regular file") || e.contains("directory"),
            "{e}"
        );
        let file = dir.join("wl.txt");
        std::fs::write(&file, format!("{A}\nbad\n")).unwrap();
        let l = load(&file).unwrap();
        assert_eq!(l.list.len(), 1);
        assert_eq!(
            l.warnings,
            [format!(
                "{}:2: 3 hex digits, an info_hash has 40: \"bad\"; line skipped",
                file.display()
            )]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn end_marker_only_as_the_last_non_blank_line() {
        assert!(parse_str(&format!("{A}\n# end\n")).end_marker);
        assert!(parse_str(&format!("{A}\n  # end  \r\n\n\n")).end_marker);
        assert!(parse_str("# end").end_marker);
        assert!(!parse_str(&format!("# end\n{A}\n")).end_marker);
        assert!(!parse_str(&format!("{A}\n# ending\n")).end_marker);
        assert!(!parse_str(&format!("{A}\n")).end_marker);
        assert!(!parse_str("").end_marker);
    }
}
