//! The state file (`tracker.state_file PATH`, `-l PATH`): every torrent's `downloaded` count
//! survives a restart without a database.
//!
//! Format: one line per torrent with `downloaded > 0`, `<40 HEX>:<downloaded>\n` (info_hash in
//! upper-case hex, count in decimal), sorted by info_hash. Reading also accepts opentracker's
//! `mode=statedump` lines `<40 HEX>:<base minute>:<downloaded>` (the base minute is ignored),
//! either case, CRLF, blank lines and `#` comment lines. A bad line is reported as `FILE:LINE:
//! reason` and skipped; so is a last line without `\n` (a write cut short). Nothing in the file
//! can stop the tracker from starting.
//!
//! Writing is crash-safe: the lines go to `PATH.tmp`, which is fsynced and renamed over `PATH`
//! (then the directory is fsynced), so a reader sees the old file or the new one, never a mix.
//! The event loop collects the counts in slices ([`snapshot::Snapshot`]) and a [`Writer`] thread
//! formats and writes them, so a million torrents never stall announces.

pub mod snapshot;

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::lines::{Line, MAX_LINE, Warnings, for_each_line, open_regular, parse_hex40, quote};
use crate::types::InfoHash;

/// One torrent's line: its info_hash and `downloaded` count.
pub type Entry = (InfoHash, u32);

/// A state file read at start.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The entries of the good lines with a count above 0, in file order.
    pub entries: Vec<Entry>,
    /// `FILE:LINE: reason` for the first bad lines, then one summary line; also a read error.
    pub warnings: Vec<String>,
    /// Lines skipped as bad.
    pub bad_lines: usize,
    /// Time spent reading and parsing (wall clock).
    pub elapsed: Duration,
}

fn decimal(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 20 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// One line: `Ok(None)` for blank and comment lines.
fn check_line(line: &[u8]) -> Result<Option<Entry>, String> {
    let line = line.trim_ascii();
    if line.is_empty() || line[0] == b'#' {
        return Ok(None);
    }
    let fields: Vec<&[u8]> = line.splitn(4, |&b| b == b':').collect();
    let (hash, count) = match fields[..] {
        [hash, count] => (hash, count),
        [hash, base, count] => {
            if decimal(base).is_none() {
                return Err(format!("base minute is not a number: {}", quote(line)));
            }
            (hash, count)
        }
        _ => {
            return Err(format!(
                "expected HEX:DOWNLOADED or HEX:BASE:DOWNLOADED: {}",
                quote(line)
            ));
        }
    };
    let info_hash = parse_hex40(hash)
        .ok_or_else(|| format!("not a 40-digit hex info_hash: {}", quote(line)))?;
    let downloaded = match decimal(count) {
        Some(n) => u32::try_from(n)
            .map_err(|_| format!("downloaded count above {}: {}", u32::MAX, quote(line)))?,
        None => return Err(format!("downloaded count is not a number: {}", quote(line))),
    };
    Ok((downloaded > 0).then_some((info_hash, downloaded)))
}

/// Parses a state file from `reader`; `origin` (the file name) prefixes warnings. Never fails: a
/// read error ends the parse with the entries read so far and a warning.
pub fn parse(reader: impl BufRead, origin: &str) -> Loaded {
    let start = Instant::now();
    let mut entries = Vec::new();
    let mut warnings = Warnings::default();
    let mut lines = 0;
    let result = for_each_line(reader, |number, line| {
        lines = number;
        match line {
            Line::Full(bytes) => match check_line(bytes) {
                Ok(Some(e)) => entries.push(e),
                Ok(None) => {}
                Err(why) => warnings.bad_line(origin, number, why),
            },
            Line::Unterminated(bytes) => {
                if !bytes.trim_ascii().is_empty() {
                    warnings.bad_line(origin, number, "last line has no newline (file cut short?)");
                }
            }
            Line::TooLong => {
                warnings.bad_line(origin, number, format!("longer than {MAX_LINE} bytes"))
            }
        }
    });
    let (mut warnings, bad_lines) = warnings.finish(origin);
    if let Err(e) = result {
        warnings.push(format!(
            "{origin}: read error after line {lines}: {e}; the rest is ignored"
        ));
    }
    Loaded {
        entries,
        warnings,
        bad_lines,
        elapsed: start.elapsed(),
    }
}

/// Reads the state file at `path`.
///
/// Errors (text for the log, naming the file): it cannot be opened or is not a regular file.
/// The caller tells "missing" (a first start) apart with `path.exists()`.
pub fn load(path: &Path) -> Result<Loaded, String> {
    let origin = path.display().to_string();
    let reader = open_regular(path).map_err(|e| format!("cannot read {origin}: {e}"))?;
    Ok(parse(reader, &origin))
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Writes `entries` as state file lines (`<40 HEX>:<downloaded>\n`) to `out`.
pub fn write_lines(out: &mut impl Write, entries: &[Entry]) -> io::Result<()> {
    let mut line = [0u8; 40 + 1 + 10 + 1];
    line[40] = b':';
    for (hash, downloaded) in entries {
        for (i, b) in hash.iter().enumerate() {
            line[2 * i] = HEX[usize::from(b >> 4)];
            line[2 * i + 1] = HEX[usize::from(b & 15)];
        }
        let mut digits = [0u8; 10];
        let mut n = *downloaded;
        let mut k = digits.len();
        loop {
            k -= 1;
            digits[k] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let len = digits.len() - k;
        line[41..41 + len].copy_from_slice(&digits[k..]);
        line[41 + len] = b'\n';
        out.write_all(&line[..42 + len])?;
    }
    Ok(())
}

/// `PATH.tmp`: where [`save`] writes before the rename.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut s = OsString::from(path.as_os_str());
    s.push(".tmp");
    PathBuf::from(s)
}

/// Writes `entries` to `PATH.tmp`, fsyncs it, renames it to `path` and fsyncs the directory
/// (best effort), so `path` holds the old state or the new one after a crash.
///
/// Errors: creating, writing, syncing or renaming fails (`PATH.tmp` is removed then).
pub fn save(path: &Path, entries: &[Entry]) -> io::Result<()> {
    let tmp = temp_path(path);
    let write = || -> io::Result<()> {
        let mut out = BufWriter::with_capacity(256 * 1024, File::create(&tmp)?);
        write_lines(&mut out, entries)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Merges two lists sorted by info_hash into one, summing the counts of a hash in both
/// (saturating): the IPv4 and IPv6 stores keep separate `downloaded` counts, scrape sums them.
pub fn merge_sum(a: Vec<Entry>, b: Vec<Entry>) -> Vec<Entry> {
    if b.is_empty() {
        return a;
    }
    if a.is_empty() {
        return b;
    }
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push((a[i].0, a[i].1.saturating_add(b[j].1)));
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// A thread that writes state files, one at a time, so the event loop never waits for a disk.
pub struct Writer {
    jobs: Option<Sender<(Vec<Entry>, Vec<Entry>)>>,
    busy: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer thread (named `state-writer`) for the state file at `path`. Each write
    /// is logged (info on success with the count and time, warning on failure).
    ///
    /// Errors: the thread cannot be spawned.
    pub fn spawn(path: PathBuf) -> io::Result<Self> {
        let (tx, rx) = mpsc::channel::<(Vec<Entry>, Vec<Entry>)>();
        let busy = Arc::new(AtomicBool::new(false));
        let flag = busy.clone();
        let thread = thread::Builder::new()
            .name("state-writer".to_owned())
            .spawn(move || {
                for (v4, v6) in rx {
                    let start = Instant::now();
                    let entries = merge_sum(v4, v6);
                    match save(&path, &entries) {
                        Ok(()) => log::info!(
                            "state file {} written: {} torrents in {} ms",
                            path.display(),
                            entries.len(),
                            start.elapsed().as_millis()
                        ),
                        Err(e) => {
                            log::warn!("cannot write state file {}: {e}", path.display())
                        }
                    }
                    flag.store(false, Ordering::Release);
                }
            })?;
        Ok(Writer {
            jobs: Some(tx),
            busy,
            thread: Some(thread),
        })
    }

    /// True while a write is queued or running.
    pub fn busy(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }

    /// Queues a write of the entries of both families, each sorted by info_hash (the writer
    /// merges them with [`merge_sum`]). Never blocks.
    pub fn submit(&self, v4: Vec<Entry>, v6: Vec<Entry>) {
        if let Some(tx) = &self.jobs {
            self.busy.store(true, Ordering::Release);
            if tx.send((v4, v6)).is_err() {
                self.busy.store(false, Ordering::Release);
            }
        }
    }

    /// Waits until every queued write is done and stops the thread.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(byte: u8) -> InfoHash {
        [byte; 20]
    }

    #[test]
    fn writes_exact_lines() {
        let mut out = Vec::new();
        write_lines(
            &mut out,
            &[(h(0x0a), 1), (h(0xf0), u32::MAX), ([0x12; 20], 40)],
        )
        .unwrap();
        let want = format!(
            "{}:1\n{}:4294967295\n{}:40\n",
            "0A".repeat(20),
            "F0".repeat(20),
            "12".repeat(20)
        );
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }

    #[test]
    fn reads_both_formats_and_round_trips() {
        let entries = vec![(h(1), 5), (h(2), 1), (h(0xfe), 123_456)];
        let mut out = Vec::new();
        write_lines(&mut out, &entries).unwrap();
        let l = parse(&out[..], "s");
        assert_eq!(l.entries, entries);
        assert!(l.warnings.is_empty());

        // opentracker's statedump, lower case, CRLF, comments, blank lines, a zero count.
        let text = format!(
            "# dump\r\n\r\n{}:29921661:7\r\n  {}:3  \n{}:0\n{}:12:0\n",
            "5f".repeat(20),
            "AB".repeat(20),
            "01".repeat(20),
            "02".repeat(20)
        );
        let l = parse(text.as_bytes(), "s");
        assert_eq!(l.entries, [(h(0x5f), 7), (h(0xab), 3)]);
        assert_eq!(l.bad_lines, 0, "{:?}", l.warnings);
    }

    #[test]
    fn bad_and_truncated_lines_are_reported_and_skipped() {
        let good = "11".repeat(20);
        let text = format!(
            "{good}:1\n\
             {good}\n\
             {good}:x\n\
             {good}:4294967296\n\
             {good}:-1\n\
             {}:1\n\
             {good}:1:2:3\n\
             {good}:zz:3\n\
             {good}:9\n\
             {good}:12",
            "11".repeat(19),
        );
        let l = parse(text.as_bytes(), "state");
        assert_eq!(l.entries, [(h(0x11), 1), (h(0x11), 9)]);
        assert_eq!(l.bad_lines, 8);
        let q = |s: &str| format!("\"{s}\"");
        assert_eq!(
            l.warnings,
            [
                format!(
                    "state:2: expected HEX:DOWNLOADED or HEX:BASE:DOWNLOADED: {}; line skipped",
                    q(&good)
                ),
                format!(
                    "state:3: downloaded count is not a number: {}; line skipped",
                    q(&format!("{good}:x"))
                ),
                format!(
                    "state:4: downloaded count above 4294967295: {}; line skipped",
                    q(&format!("{good}:4294967296"))
                ),
                format!(
                    "state:5: downloaded count is not a number: {}; line skipped",
                    q(&format!("{good}:-1"))
                ),
                format!(
                    "state:6: not a 40-digit hex info_hash: {}; line skipped",
                    q(&format!("{}:1", "11".repeat(19)))
                ),
                format!(
                    "state:7: expected HEX:DOWNLOADED or HEX:BASE:DOWNLOADED: {}; line skipped",
                    q(&format!("{good}:1:2:3"))
                ),
                format!(
                    "state:8: base minute is not a number: {}; line skipped",
                    q(&format!("{good}:zz:3"))
                ),
                "state:10: last line has no newline (file cut short?); line skipped".to_owned(),
            ]
        );
        // Binary junk never panics.
        let junk: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        let l = parse(&junk[..], "junk");
        assert!(l.entries.is_empty());
    }

    #[test]
    fn merge_sums_common_hashes() {
        let a = vec![(h(1), 1), (h(3), 3), (h(5), u32::MAX)];
        let b = vec![(h(2), 2), (h(3), 30), (h(5), 1), (h(6), 6)];
        assert_eq!(
            merge_sum(a.clone(), b),
            [
                (h(1), 1),
                (h(2), 2),
                (h(3), 33),
                (h(5), u32::MAX),
                (h(6), 6)
            ]
        );
        assert_eq!(merge_sum(a.clone(), Vec::new()), a);
        assert_eq!(merge_sum(Vec::new(), a.clone()), a);
    }

    #[test]
    fn save_replaces_atomically_and_writer_thread_writes() {
        let dir = std::env::temp_dir().join(format!("otrs-state-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state");
        save(&path, &[(h(1), 2)]).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}:2\n", "01".repeat(20))
        );
        assert!(!temp_path(&path).exists());

        let w = Writer::spawn(path.clone()).unwrap();
        w.submit(vec![(h(3), 4), (h(5), 1)], vec![(h(4), 1), (h(5), 2)]);
        w.finish();
        assert_eq!(
            load(&path).unwrap().entries,
            [(h(3), 4), (h(4), 1), (h(5), 3)]
        );

        // A directory in the way: an error, and no PATH.tmp left behind.
        let blocked = dir.join("blocked");
        std::fs::create_dir_all(blocked.join("x")).unwrap();
        assert!(save(&blocked, &[(h(1), 1)]).is_err());
        assert!(!temp_path(&blocked).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
