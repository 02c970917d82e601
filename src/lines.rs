//! Reading line-based text files: the access lists (`access.whitelist`, `access.blacklist`) and
//! the state file of downloaded counts (`tracker.state_file`). Bounded lines ([`MAX_LINE`]),
//! regular files only, 40-digit hex info_hashes, and warnings that name the file and the line
//! (the first [`MAX_WARNINGS`] one by one, then a count).
//!
//! A leaf: imports only `std` and [`crate::types`], so both [`crate::access`] and
//! [`crate::state`] use it without depending on each other.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use crate::types::InfoHash;

/// Longest line read from a list or state file, in bytes; a longer line is reported and skipped.
pub const MAX_LINE: usize = 4096;

/// Bad lines reported one by one; beyond this, one summary line counts the rest.
pub const MAX_WARNINGS: usize = 20;

/// Collects per-line warnings, reporting the first [`MAX_WARNINGS`] and counting the rest.
#[derive(Debug, Default)]
pub(crate) struct Warnings {
    pub(crate) list: Vec<String>,
    pub(crate) bad: usize,
}

impl Warnings {
    /// Counts a bad line; the first [`MAX_WARNINGS`] are kept as `ORIGIN:LINE: WHY; line skipped`.
    pub(crate) fn bad_line(&mut self, origin: &str, line: usize, why: impl fmt::Display) {
        self.bad += 1;
        if self.bad <= MAX_WARNINGS {
            self.list
                .push(format!("{origin}:{line}: {why}; line skipped"));
        }
    }

    /// The warnings (plus one summary line when more than [`MAX_WARNINGS`] lines were bad) and
    /// the number of bad lines.
    pub(crate) fn finish(mut self, origin: &str) -> (Vec<String>, usize) {
        if self.bad > MAX_WARNINGS {
            self.list.push(format!(
                "{origin}: {} more bad lines skipped (not shown)",
                self.bad - MAX_WARNINGS
            ));
        }
        (self.list, self.bad)
    }
}

/// One line of a text file as read by [`for_each_line`].
pub(crate) enum Line<'a> {
    /// The line's bytes without the `\n` (a `\r` before it stays).
    Full(&'a [u8]),
    /// The last line of the file had no `\n`.
    Unterminated(&'a [u8]),
    /// The line was longer than [`MAX_LINE`] bytes; its bytes were discarded.
    TooLong,
}

/// Calls `f(line_number, line)` for every line of `reader` (line numbers from 1), never holding
/// more than [`MAX_LINE`] bytes of one line. Errors: the reader's I/O errors.
pub(crate) fn for_each_line(
    mut reader: impl BufRead,
    mut f: impl FnMut(usize, Line<'_>),
) -> io::Result<()> {
    let mut buf = Vec::with_capacity(128);
    let mut number = 0;
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        number += 1;
        if buf.last() == Some(&b'\n') {
            buf.pop();
            f(number, Line::Full(&buf));
        } else if buf.len() > MAX_LINE {
            // Skip the rest of the over-long line.
            loop {
                buf.clear();
                let n = (&mut reader)
                    .take(MAX_LINE as u64)
                    .read_until(b'\n', &mut buf)?;
                if n == 0 || buf.last() == Some(&b'\n') {
                    break;
                }
            }
            f(number, Line::TooLong);
        } else {
            f(number, Line::Unterminated(&buf));
        }
    }
}

/// Opens `path` for reading a list or state file: a regular file only (a FIFO would block the
/// reader, a device would never end). Errors name nothing; the caller adds the path.
pub(crate) fn open_regular(path: &Path) -> io::Result<BufReader<File>> {
    let file = File::open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(BufReader::with_capacity(64 * 1024, file))
}

/// Decodes 40 hex digits (either case) into an info_hash; `None` for anything else.
pub fn parse_hex40(text: &[u8]) -> Option<InfoHash> {
    if text.len() != 40 {
        return None;
    }
    let mut out = [0u8; 20];
    for (o, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *o = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
    }
    Some(out)
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Quotes at most 60 bytes of a bad line for a warning, escaping non-printable bytes.
pub(crate) fn quote(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(60)];
    let more = if bytes.len() > cut.len() { "..." } else { "" };
    format!("\"{}{more}\"", cut.escape_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &[u8]) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        for_each_line(text, |n, line| {
            let s = match line {
                Line::Full(b) => format!("full {}", b.escape_ascii()),
                Line::Unterminated(b) => format!("last {}", b.escape_ascii()),
                Line::TooLong => "too long".to_owned(),
            };
            out.push((n, s));
        })
        .unwrap();
        out
    }

    #[test]
    fn lines_are_numbered_bounded_and_keep_cr() {
        let mut text = b"a\r\n\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', MAX_LINE + 1));
        text.extend_from_slice(b"\nb");
        assert_eq!(
            lines(&text),
            [
                (1, "full a\\r".to_owned()),
                (2, "full ".to_owned()),
                (3, "too long".to_owned()),
                (4, "last b".to_owned()),
            ]
        );
        assert_eq!(lines(&[b'y'; MAX_LINE])[0].0, 1);
        assert!(lines(b"").is_empty());
    }

    #[test]
    fn hex40_either_case_and_nothing_else() {
        let h = parse_hex40(b"00112233445566778899aabbccddeeffAABBCCDD").unwrap();
        assert_eq!(h[..2], [0x00, 0x11]);
        assert_eq!(h[18..], [0xcc, 0xdd]);
        assert!(parse_hex40(b"00112233445566778899aabbccddeeffAABBCCD").is_none());
        assert!(parse_hex40(b"00112233445566778899aabbccddeeffAABBCCDG").is_none());
        assert!(parse_hex40(b"").is_none());
    }

    #[test]
    fn quote_cuts_and_escapes() {
        assert_eq!(quote(b"ab\x01"), "\"ab\\x01\"");
        assert_eq!(quote(&[b'z'; 61]), format!("\"{}...\"", "z".repeat(60)));
    }
}
