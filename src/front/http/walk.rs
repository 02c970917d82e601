//! Streamed whole-store bodies: the full scrape (`GET /scrape` without `info_hash`), the
//! `/stats` modes that list every torrent (`statedump`, `tpbs`) or rank them (`top10`, `top100`),
//! and the status page (`/stats/html`), whose top-torrents table needs the same ranking.
//!
//! A [`Walk`] formats the entries of a [`Scan`] (every torrent in info_hash order over both
//! families, counts summed, refused torrents left out; see [`crate::service::scan`] for the
//! order and the consistency). The event loop calls [`Walk::step`] once per turn for each
//! streaming connection whose write buffer has room; each step visits at most
//! [`SLICE_TORRENTS`] torrents of each store, appends the next piece of the body
//! (gzip-compressed and chunk-framed if asked, see [`crate::wire::stream`]) and returns. So a
//! full scrape of a million torrents never holds the loop for long, and a slow reader never
//! makes us buffer the whole response: the server only asks for the next slice once the socket
//! took the previous one.

use crate::service::deniability::FakePeers;
use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::service::scan::Scan;
use crate::stats::html::{self, TOP_TORRENTS, TopTorrent};
use crate::swarm::shards::TorrentWalk;
use crate::swarm::store::SwarmCounts;
use crate::types::InfoHash;
use crate::wire::bencode;
use crate::wire::stream::{Framing, write_body_end, write_body_piece};

/// Torrents visited per store in one [`Walk::step`]. 2048 torrents make about 140 KB of bencode;
/// measured (release build, see `benches/fullscrape.rs`) well under 1 ms per step plain and about
/// 1-2 ms with gzip.
pub const SLICE_TORRENTS: usize = 2048;

/// The gzip level: 1 (fastest). Scrape output is repetitive, so level 1 already shrinks it
/// about 3x; higher levels cost loop time for a few percent.
pub const GZIP_LEVEL: u32 = 1;

/// What a walk writes for each torrent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkFormat {
    /// Full scrape (BEP 48 shape; also `/stats?mode=tpbs&format=ben`):
    /// `d5:filesd` + per torrent `20:<info_hash>d8:completei<seeders>e10:downloadedi<n>e`
    /// `10:incompletei<leechers>ee` + `ee`.
    Bencode,
    /// `/stats?mode=statedump`: `<HEX40>:<downloaded>\n` for every torrent with `downloaded > 0`
    /// (upper-case hex; the counts a restart would lose).
    StateDump,
    /// `tpbs&format=bin`: per torrent the 20-byte info_hash, seeders and leechers as big-endian
    /// u32 (28 bytes), as opentracker.
    TpbsBin,
    /// `tpbs&format=txt`: `<HEX40>:<seeders>:<leechers>\n`.
    TpbsTxt,
    /// `tpbs&format=txtp`: `<HEX40>:<seeders>:<leechers>:<downloaded>\n`.
    TpbsTxtp,
    /// `tpbs&format=url`: `<percent-encoded info_hash>:<seeders>:<leechers>\n` (RFC 3986
    /// unreserved bytes raw, the rest `%XX` upper case).
    TpbsUrl,
    /// `top10` / `top100`: the N torrents with the most peers, seeders, and leechers, written
    /// once the walk is done: `Top N torrents by peers:\n` then `\t<count>\t<HEX40>\n` lines,
    /// the same for `seeds` and `leechers`. Torrents with a zero count are not listed; ties keep
    /// info_hash order.
    Top(usize),
    /// `/stats/html`: the status page. The page's head (every figure but the top torrents) is
    /// the walk's preamble ([`Walk::html`]); the [`crate::stats::html::TOP_TORRENTS`]
    /// torrents with the most peers and the end of the page follow once the walk is done
    /// ([`crate::stats::html::write_tail`]).
    Html,
}

/// The N largest counts seen so far, largest first; `counts[i]` are the swarm counts of
/// `entries[i]`'s torrent (kept by [`Ranking::offer_with`] only).
#[derive(Debug, Default)]
struct Ranking {
    entries: Vec<(u64, InfoHash)>,
    counts: Vec<SwarmCounts>,
}

impl Ranking {
    fn offer(&mut self, n: usize, count: u64, info_hash: &InfoHash) {
        self.offer_with(n, count, info_hash, SwarmCounts::default());
    }

    fn offer_with(&mut self, n: usize, count: u64, info_hash: &InfoHash, counts: SwarmCounts) {
        if count == 0 || n == 0 {
            return;
        }
        if self.entries.len() == n && self.entries.last().is_some_and(|(c, _)| *c >= count) {
            return;
        }
        // After every entry with a count >= this one: ties keep walk (info_hash) order.
        let at = self.entries.partition_point(|(c, _)| *c >= count);
        self.entries.insert(at, (count, *info_hash));
        self.counts.insert(at, counts);
        self.counts.truncate(n);
        self.entries.truncate(n);
    }
}

#[derive(Debug, Default)]
struct Top {
    peers: Ranking,
    seeders: Ranking,
    leechers: Ranking,
}

/// A whole-store walk in progress; see the module doc.
pub struct Walk {
    framing: Framing,
    gzip: Option<GzEncoder<Vec<u8>>>,
    scan: Scan,
    started: bool,
    finished: bool,
    body: Body,
    /// The made-up peers a full scrape counts (`tracker.random_peers`), see [`Walk::count_fakes`].
    fakes: Option<FakePeers>,
}

/// The plain (not yet compressed or framed) body of a walk, written entry by entry.
struct Body {
    format: WalkFormat,
    plain: Vec<u8>,
    top: Option<Box<Top>>,
    torrents: u64,
    /// Written before the first entry (the status page's head).
    preamble: Vec<u8>,
    /// The stats path the status page links to.
    stats_path: String,
}

impl std::fmt::Debug for Walk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Walk")
            .field("format", &self.body.format)
            .field("framing", &self.framing)
            .field("gzip", &self.gzip.is_some())
            .field("torrents", &self.body.torrents)
            .field("finished", &self.finished)
            .finish()
    }
}

impl Walk {
    /// A walk from the first info_hash. `gzip`: compress the body (RFC 1952, level
    /// [`GZIP_LEVEL`]); the caller has sent `Content-Encoding: gzip` in the head.
    pub fn new(format: WalkFormat, framing: Framing, gzip: bool) -> Self {
        Walk {
            framing,
            gzip: gzip.then(|| GzEncoder::new(Vec::new(), Compression::new(GZIP_LEVEL))),
            scan: Scan::new(),
            started: false,
            finished: false,
            body: Body {
                format,
                plain: Vec::new(),
                top: match format {
                    WalkFormat::Top(_) | WalkFormat::Html => Some(Box::default()),
                    _ => None,
                },
                torrents: 0,
                preamble: Vec::new(),
                stats_path: String::new(),
            },
            fakes: None,
        }
    }

    /// Counts the made-up peers of each torrent (`tracker.random_peers`), as a scrape of one
    /// info_hash does: the full scrape's counts then agree with announce replies and scrapes.
    pub fn count_fakes(mut self, fakes: Option<FakePeers>) -> Self {
        self.fakes = fakes;
        self
    }

    /// A walk that writes the status page ([`WalkFormat::Html`], never compressed): `head`
    /// (from [`crate::stats::html::write_head`]) first, then the top torrents and the end of
    /// the page, whose links point at `/<stats_path>`.
    pub fn html(framing: Framing, head: Vec<u8>, stats_path: &str) -> Self {
        let mut walk = Walk::new(WalkFormat::Html, framing, false);
        walk.body.preamble = head;
        stats_path.clone_into(&mut walk.body.stats_path);
        walk
    }

    /// Entries (torrents) visited so far.
    pub fn torrents(&self) -> u64 {
        self.body.torrents
    }

    /// True once the whole body (and its end) has been written.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Visits up to `max` more torrents of each store (0 is read as 1) and appends the next
    /// piece of the body to `out` (framed; possibly nothing while gzip buffers). Returns true
    /// when the walk is finished: the body's end (the last chunk, the gzip trailer) is in `out`.
    /// Further calls write nothing and return true. Torrents for which `keep` is false (refused by
    /// the access list, while a reload's purge has not dropped them yet) are left out. The
    /// entries come in info_hash order ([`Scan::step`]).
    pub fn step(
        &mut self,
        v4: &impl TorrentWalk<6>,
        v6: &impl TorrentWalk<18>,
        keep: impl Fn(&InfoHash) -> bool,
        max: usize,
        out: &mut Vec<u8>,
    ) -> bool {
        if self.finished {
            return true;
        }
        self.body.plain.clear();
        if !self.started {
            self.started = true;
            if self.body.format == WalkFormat::Bencode {
                self.body.plain.extend_from_slice(b"d5:filesd");
            }
            let preamble = std::mem::take(&mut self.body.preamble);
            self.body.plain.extend_from_slice(&preamble);
        }
        let body = &mut self.body;
        let fakes = &self.fakes;
        let done = self.scan.step(v4, v6, keep, max, |h, c| {
            body.entry(h, fakes.as_ref().map_or(c, |f| f.inflate(h, c)))
        });
        if done {
            self.body.end();
        }
        self.emit(out, done);
        if done {
            self.finished = true;
        }
        self.finished
    }

    /// Moves `plain` into `out`: compressed if gzip, framed; with `last`, the end of the body.
    fn emit(&mut self, out: &mut Vec<u8>, last: bool) {
        let plain = &self.body.plain;
        match &mut self.gzip {
            None => write_body_piece(out, self.framing, plain),
            Some(enc) => {
                // Writing to a Vec cannot fail, and deflate does not fail on any input; if it
                // ever did, the body stays unfinished (no last chunk), which the client sees.
                let ok = enc.write_all(plain).is_ok() && (!last || enc.try_finish().is_ok());
                let compressed = enc.get_mut();
                write_body_piece(out, self.framing, compressed);
                compressed.clear();
                if !ok {
                    return;
                }
            }
        }
        if last {
            write_body_end(out, self.framing);
        }
    }
}

impl Body {
    /// Writes one torrent's entry to `plain` (or ranks it).
    fn entry(&mut self, h: &InfoHash, c: SwarmCounts) {
        self.torrents += 1;
        let out = &mut self.plain;
        match self.format {
            WalkFormat::Bencode => {
                bencode::put_bytes(out, h);
                out.extend_from_slice(b"d8:completei");
                put_u32(out, c.seeders);
                out.extend_from_slice(b"e10:downloadedi");
                put_u32(out, c.downloaded);
                out.extend_from_slice(b"e10:incompletei");
                put_u32(out, c.leechers);
                out.extend_from_slice(b"ee");
            }
            WalkFormat::StateDump => {
                if c.downloaded > 0 {
                    put_hex40(out, h);
                    out.push(b':');
                    put_u32(out, c.downloaded);
                    out.push(b'\n');
                }
            }
            WalkFormat::TpbsBin => {
                out.extend_from_slice(h);
                out.extend_from_slice(&c.seeders.to_be_bytes());
                out.extend_from_slice(&c.leechers.to_be_bytes());
            }
            WalkFormat::TpbsTxt | WalkFormat::TpbsTxtp | WalkFormat::TpbsUrl => {
                if self.format == WalkFormat::TpbsUrl {
                    put_urlencoded(out, h);
                } else {
                    put_hex40(out, h);
                }
                out.push(b':');
                put_u32(out, c.seeders);
                out.push(b':');
                put_u32(out, c.leechers);
                if self.format == WalkFormat::TpbsTxtp {
                    out.push(b':');
                    put_u32(out, c.downloaded);
                }
                out.push(b'\n');
            }
            WalkFormat::Top(n) => {
                if let Some(top) = self.top.as_deref_mut() {
                    let (s, l) = (u64::from(c.seeders), u64::from(c.leechers));
                    top.peers.offer(n, s + l, h);
                    top.seeders.offer(n, s, h);
                    top.leechers.offer(n, l, h);
                }
            }
            WalkFormat::Html => {
                if let Some(top) = self.top.as_deref_mut() {
                    let peers = u64::from(c.seeders) + u64::from(c.leechers);
                    top.peers.offer_with(TOP_TORRENTS, peers, h, c);
                }
            }
        }
    }

    /// Writes what follows the last entry.
    fn end(&mut self) {
        match self.format {
            WalkFormat::Bencode => self.plain.extend_from_slice(b"ee"),
            WalkFormat::Top(n) => {
                let Some(top) = self.top.take() else { return };
                for (title, ranking) in [
                    ("peers", &top.peers),
                    ("seeds", &top.seeders),
                    ("leechers", &top.leechers),
                ] {
                    let _ = writeln!(self.plain, "Top {n} torrents by {title}:");
                    for (count, h) in &ranking.entries {
                        self.plain.push(b'\t');
                        bencode::write_decimal(&mut self.plain, *count);
                        self.plain.push(b'\t');
                        put_hex40(&mut self.plain, h);
                        self.plain.push(b'\n');
                    }
                }
            }
            WalkFormat::Html => {
                let Some(top) = self.top.take() else { return };
                let rows: Vec<TopTorrent> = top
                    .peers
                    .entries
                    .iter()
                    .zip(&top.peers.counts)
                    .map(|((_, h), c)| TopTorrent {
                        info_hash: *h,
                        seeders: u64::from(c.seeders),
                        leechers: u64::from(c.leechers),
                        downloaded: u64::from(c.downloaded),
                    })
                    .collect();
                html::write_tail(&mut self.plain, &rows, &self.stats_path);
            }
            _ => {}
        }
    }
}

fn put_u32(out: &mut Vec<u8>, n: u32) {
    bencode::write_decimal(out, u64::from(n));
}

/// Appends the info_hash as 40 upper-case hex digits.
pub fn put_hex40(out: &mut Vec<u8>, h: &InfoHash) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    for b in h {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 15)]);
    }
}

fn put_urlencoded(out: &mut Vec<u8>, h: &InfoHash) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    for &b in h {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else {
            out.extend_from_slice(&[
                b'%',
                DIGITS[usize::from(b >> 4)],
                DIGITS[usize::from(b & 15)],
            ]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swarm::store::{Store, StoreConfig};
    use std::io::Read;

    fn h(n: u32) -> InfoHash {
        let mut h = [0u8; 20];
        h[..4].copy_from_slice(&n.to_be_bytes());
        h[19] = 0x7e;
        h
    }

    fn add<const N: usize>(s: &mut Store<N>, info_hash: &InfoHash, peer: [u8; N], seeder: bool) {
        s.add_peer(info_hash, &peer, seeder);
    }

    fn stores() -> (Store<6>, Store<18>) {
        (
            Store::new(StoreConfig::default()),
            Store::new(StoreConfig::default()),
        )
    }

    fn run(w: &mut Walk, v4: &Store<6>, v6: &Store<18>, max: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut steps = 0;
        while !w.step(v4, v6, |_| true, max, &mut out) {
            steps += 1;
            assert!(steps < 1_000_000);
        }
        assert!(w.step(v4, v6, |_| true, max, &mut out));
        out
    }

    fn entry(h: &InfoHash, s: u32, d: u32, l: u32) -> Vec<u8> {
        let mut e = b"20:".to_vec();
        e.extend_from_slice(h);
        e.extend_from_slice(
            format!("d8:completei{s}e10:downloadedi{d}e10:incompletei{l}ee").as_bytes(),
        );
        e
    }

    #[test]
    fn empty_store_full_scrape() {
        let (v4, v6) = stores();
        let mut w = Walk::new(WalkFormat::Bencode, Framing::CloseDelimited, false);
        assert_eq!(run(&mut w, &v4, &v6, 10), b"d5:filesdee");
        let mut w = Walk::new(WalkFormat::Bencode, Framing::Chunked, false);
        assert_eq!(run(&mut w, &v4, &v6, 10), b"b\r\nd5:filesdee\r\n0\r\n\r\n");
    }

    #[test]
    fn merge_sums_families_in_hash_order_for_any_slice_size() {
        let (mut v4, mut v6) = stores();
        // v4: 0..40 even, v6: multiples of 3 below 60; shared hashes summed.
        for n in (0..40).step_by(2) {
            add(&mut v4, &h(n), [10, 0, 0, 1, 0, n as u8], n % 4 == 0);
        }
        for n in (0..60).step_by(3) {
            let mut p = [0u8; 18];
            p[0] = 0x20;
            p[17] = n as u8;
            add(&mut v6, &h(n), p, false);
        }
        let mut expect = b"d5:filesd".to_vec();
        for n in 0..60u32 {
            let in4 = n < 40 && n % 2 == 0;
            let in6 = n % 3 == 0;
            if !in4 && !in6 {
                continue;
            }
            let s = u32::from(in4 && n % 4 == 0);
            let l = u32::from(in4 && n % 4 != 0) + u32::from(in6);
            expect.extend(entry(&h(n), s, s, l));
        }
        expect.extend_from_slice(b"ee");
        for max in [1, 2, 3, 5, 7, 1000] {
            let mut w = Walk::new(WalkFormat::Bencode, Framing::CloseDelimited, false);
            assert_eq!(run(&mut w, &v4, &v6, max), expect, "max {max}");
            assert_eq!(w.torrents(), 20 + 20 - 7);
        }
    }

    #[test]
    fn torrents_added_ahead_of_the_cursor_are_included_even_in_an_empty_store() {
        let (mut v4, mut v6) = stores();
        for n in 0..10 {
            add(&mut v4, &h(n * 10), [10, 0, 0, 1, 0, 1], false);
        }
        let mut w = Walk::new(WalkFormat::TpbsTxt, Framing::CloseDelimited, false);
        let mut out = Vec::new();
        assert!(!w.step(&v4, &v6, |_| true, 3, &mut out));
        // After the first slice: one torrent behind the cursor (missed), two ahead (included),
        // one in the so far empty IPv6 store, shared with IPv4 (summed).
        add(&mut v4, &h(5), [10, 0, 0, 1, 0, 1], false);
        add(&mut v4, &h(55), [10, 0, 0, 1, 0, 1], false);
        add(&mut v4, &h(95), [10, 0, 0, 1, 0, 1], false);
        let mut p6 = [0u8; 18];
        p6[0] = 0x20;
        add(&mut v6, &h(60), p6, true);
        while !w.step(&v4, &v6, |_| true, 3, &mut out) {}
        let hex = |n: u32| {
            let mut o = Vec::new();
            put_hex40(&mut o, &h(n));
            String::from_utf8(o).unwrap()
        };
        let mut expect = String::new();
        for n in [0, 10, 20, 30, 40, 50, 55, 60, 70, 80, 90, 95] {
            let (s, l) = if n == 60 { (1, 1) } else { (0, 1) };
            expect += &format!("{}:{s}:{l}\n", hex(n));
        }
        assert_eq!(String::from_utf8(out).unwrap(), expect);
    }

    #[test]
    fn gzip_decodes_to_plain() {
        let (mut v4, v6) = stores();
        for n in 0..5000 {
            add(&mut v4, &h(n * 7919), [10, 0, 0, 1, 0, 1], n % 3 == 0);
        }
        let mut w = Walk::new(WalkFormat::Bencode, Framing::CloseDelimited, false);
        let plain = run(&mut w, &v4, &v6, 300);
        let mut w = Walk::new(WalkFormat::Bencode, Framing::CloseDelimited, true);
        let gz = run(&mut w, &v4, &v6, 300);
        assert!(
            gz.len() < plain.len() / 2,
            "{} vs {}",
            gz.len(),
            plain.len()
        );
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, plain);
        assert!(crate::wire::bencode::decode(&plain).is_ok());
    }

    #[test]
    fn text_and_binary_formats() {
        let (mut v4, v6) = stores();
        let a = [0x5f; 20];
        let mut b = [0xab; 20];
        b[0] = b'z';
        add(&mut v4, &a, [10, 0, 0, 1, 0, 1], true);
        add(&mut v4, &a, [10, 0, 0, 2, 0, 1], false);
        add(&mut v4, &b, [10, 0, 0, 3, 0, 1], false);
        let hex_a = "5F".repeat(20);
        let hex_b = format!("7A{}", "AB".repeat(19));
        let text = |f| {
            let mut w = Walk::new(f, Framing::CloseDelimited, false);
            run(&mut w, &v4, &v6, 1)
        };
        assert_eq!(
            String::from_utf8(text(WalkFormat::TpbsTxt)).unwrap(),
            format!("{hex_a}:1:1\n{hex_b}:0:1\n")
        );
        assert_eq!(
            String::from_utf8(text(WalkFormat::TpbsTxtp)).unwrap(),
            format!("{hex_a}:1:1:1\n{hex_b}:0:1:0\n")
        );
        assert_eq!(
            String::from_utf8(text(WalkFormat::StateDump)).unwrap(),
            format!("{hex_a}:1\n")
        );
        assert_eq!(
            String::from_utf8(text(WalkFormat::TpbsUrl)).unwrap(),
            format!("{}:1:1\nz{}:0:1\n", "_".repeat(20), "%AB".repeat(19))
        );
        let mut bin = a.to_vec();
        bin.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
        bin.extend_from_slice(&b);
        bin.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(text(WalkFormat::TpbsBin), bin);
        assert_eq!(
            String::from_utf8(text(WalkFormat::Top(10))).unwrap(),
            format!(
                "Top 10 torrents by peers:\n\t2\t{hex_a}\n\t1\t{hex_b}\n\
                 Top 10 torrents by seeds:\n\t1\t{hex_a}\n\
                 Top 10 torrents by leechers:\n\t1\t{hex_a}\n\t1\t{hex_b}\n"
            )
        );
    }

    #[test]
    fn ranking_keeps_the_largest_in_order() {
        let mut r = Ranking::default();
        for (i, c) in [5u64, 1, 9, 5, 0, 7, 9, 2].iter().enumerate() {
            r.offer(3, *c, &h(i as u32));
        }
        let got: Vec<(u64, u32)> = r
            .entries
            .iter()
            .map(|(c, h)| (*c, u32::from_be_bytes([h[0], h[1], h[2], h[3]])))
            .collect();
        assert_eq!(got, [(9, 2), (9, 6), (7, 5)]);
    }

    #[test]
    fn status_page_walk_ranks_by_peers_after_the_head() {
        let (mut v4, mut v6) = stores();
        for n in 0..15u32 {
            // Torrent n gets n + 1 peers: 15 ranks first.
            for p in 0..=n {
                add(&mut v4, &h(n), [10, 0, n as u8, p as u8, 0, 1], p == 0);
            }
        }
        let mut p6 = [0u8; 18];
        p6[0] = 0x20;
        add(&mut v6, &h(3), p6, false);
        let mut head = b"<!DOCTYPE html>HEAD".to_vec();
        head.push(b'\n');
        for max in [1, 4, 1000] {
            let mut w = Walk::html(Framing::CloseDelimited, head.clone(), "st");
            let page = String::from_utf8(run(&mut w, &v4, &v6, max)).unwrap();
            assert!(
                page.starts_with("<!DOCTYPE html>HEAD\n<tr><td>1</td>"),
                "{page}"
            );
            assert!(page.ends_with("</html>\n"), "{page}");
            let hashes: Vec<&str> = page
                .match_indices("<td class=\"hash\">")
                .map(|(i, m)| &page[i + m.len()..i + m.len() + 8])
                .collect();
            assert_eq!(
                hashes,
                [
                    "0000000e", "0000000d", "0000000c", "0000000b", "0000000a", "00000009",
                    "00000008", "00000007", "00000006", "00000005"
                ]
            );
            // Counts over both families: seeders, leechers, peers, completed.
            assert!(
                page.contains("<td>1</td><td>14</td><td>15</td><td>1</td></tr>"),
                "{page}"
            );
            assert!(page.contains("href=\"/st?mode=everything\""), "{page}");
        }
        let (v4, v6) = stores();
        let mut w = Walk::html(Framing::CloseDelimited, Vec::new(), "stats");
        let page = String::from_utf8(run(&mut w, &v4, &v6, 10)).unwrap();
        assert!(page.contains("no torrent has peers"), "{page}");
    }
}
