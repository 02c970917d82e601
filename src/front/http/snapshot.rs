//! Shared full-scrape snapshots: one body per encoding (plain bencode, gzip), built once in
//! slices and read by every full scrape that arrives within `http.fullscrape_max_age` seconds.
//!
//! Without them, each full scrape walks the whole store and formats (and compresses) its own
//! copy of the body: 300 parallel gzip full scrapes of a million torrents cost 300 times the
//! formatting and compression of one, and every loop turn runs one slice of each (issue #13,
//! "full-scrape floods"). With them:
//!
//! - A [`Snapshot`] holds the body as it would be sent with no framing (the bencode, or its gzip
//!   stream), and the [`Walk`] that is still building it. The walk is the one a single full
//!   scrape ran before (same entries, same gzip level; in slices of [`BUILD_SLICE_TORRENTS`]
//!   torrents per store), so a reply from a snapshot is byte for byte what a fresh walk would
//!   send at that moment (tested, gzip bytes too), and the gzip body inflates to the plain one.
//! - A request that arrives while its encoding's snapshot is younger than the max age (counted
//!   from the start of its build) gets a [`Reader`] on it from the first byte, also while it is
//!   being built: it streams the body as it grows, and never waits for the end of the build.
//!   Waiting would hold every reader's bytes back for the whole build (seconds at a million
//!   torrents) for nothing: the bytes already built are final.
//! - The build advances one slice per loop turn, and only when a reader has caught up with it
//!   and has room for more ([`Snapshots::build`]): the snapshot grows at the pace of its fastest
//!   reader, as a walk grows at the pace of its one reader, and a snapshot nobody reads costs
//!   nothing. At most one slice per encoding per turn, and a half one, so a turn that builds
//!   and copies holds the loop no longer than one full scrape's walk held it.
//! - Each reader's framing (chunked for HTTP/1.1, close-delimited for HTTP/1.0) is added as its
//!   bytes are copied to the connection ([`Snapshots::feed`]).
//! - A snapshot nobody reads is dropped once it is older than the max age, or as soon as a newer
//!   one of its encoding exists ([`Snapshots::sweep`]). A slow reader keeps its snapshot alive;
//!   at most [`MAX_GENERATIONS`] of one encoding live at once, so when slow readers hold an
//!   older one and the newest aged out too, a new request reads the newest although it is older
//!   than the max age (memory bound over freshness).
//! - Snapshots are per HTTP server, so per worker (`tracker.workers N`): each event loop
//!   builds its own, so a flood of full scrapes spread over the workers costs at most N builds
//!   per encoding per max age. The cap on full scrapes being sent
//!   (`http.fullscrape_max_streams`) is one for every worker together: each [`Reader`] holds a
//!   permit of the count the workers share ([`crate::service::quota::StreamCount`]).
//! - With a max age of 0 nothing is shared: every full scrape builds its own snapshot (as
//!   much work as before, plus a copy of the body in memory).
//!
//! Consistency is the walk's (see [`crate::service::scan`]): counts are read slice by slice, a
//! slice when the first reader asks for it. Made-up peers (`tracker.random_peers`) are counted
//! with the time window of the build's start.
//!
//! Memory: a snapshot holds its whole body, in blocks of [`BLOCK_BYTES`]: at a million torrents
//! of one peer each, 12.4 MB gzip and 70 MB plain (`make bench-fullscrape`; real counts vary
//! more and compress less).

use crate::front::http::walk::{SLICE_TORRENTS, Walk, WalkFormat};
use crate::service::deniability::FakePeers;
use crate::service::quota::StreamPermit;
use crate::swarm::shards::TorrentWalk;
use crate::types::InfoHash;
use crate::wire::stream::{Framing, write_body_end, write_body_piece};

/// Most snapshots of one encoding kept at once (the newest, and older ones slow readers still
/// read); see the module doc.
pub const MAX_GENERATIONS: usize = 2;

/// Torrents per store in one build step: half a walk's [`SLICE_TORRENTS`], so that a turn that
/// builds a slice and copies [`TURN_BYTES`] to readers holds the loop no longer than one slice
/// of a full scrape's walk did before snapshots.
pub const BUILD_SLICE_TORRENTS: usize = SLICE_TORRENTS / 2;

/// Most bytes one reader gets from its snapshot per loop turn (besides its framing).
pub const PIECE_BYTES: usize = 64 * 1024;

/// Most bytes all readers together get per loop turn: copying and writing them takes well
/// under a millisecond, so a flood of readers never holds the loop longer than one slice of
/// the build.
pub const TURN_BYTES: usize = 1 << 20;

/// Bytes per block of a snapshot's body.
pub const BLOCK_BYTES: usize = 1 << 20;

/// One shared body; see the module doc.
struct Snapshot {
    /// Names the snapshot for its readers (never reused).
    id: u64,
    gzip: bool,
    /// Seconds (loop clock) when the build started.
    started: u32,
    /// The walk still building the body; `None` once the body is complete.
    walk: Option<Box<Walk>>,
    /// The body so far, unframed, in blocks of [`BLOCK_BYTES`] (the last one partly filled): a
    /// growing body is never moved, which for tens of megabytes would hold the loop.
    blocks: Vec<Vec<u8>>,
    /// Bytes of the body so far.
    len: usize,
    /// Readers holding a [`Reader`] on it.
    readers: usize,
    /// A reader caught up with the build and has room: build the next slice.
    wanted: bool,
}

/// Where one full scrape stands in its snapshot. Not `Clone`: hand it back with
/// [`Snapshots::leave`] (or let [`Snapshots::feed`] say it finished, then leave) so the
/// snapshot knows it is no longer read.
#[derive(Debug)]
#[must_use = "a reader must be handed back with Snapshots::leave"]
pub struct Reader {
    id: u64,
    framing: Framing,
    /// Bytes of the snapshot's body already given to this reader.
    pos: usize,
    /// The stream's place under `http.fullscrape_max_streams`, counted by every worker
    /// together: given back when the reader is dropped, by whatever path ends the stream.
    permit: Option<StreamPermit>,
}

impl Reader {
    /// Holds `permit` (one stream of [`crate::service::quota::StreamCount`]) until this reader
    /// is dropped or handed back ([`Snapshots::leave`]).
    pub fn hold(&mut self, permit: StreamPermit) {
        self.permit = Some(permit);
    }

    /// Bytes of the body given to this reader so far (unframed).
    pub fn position(&self) -> usize {
        self.pos
    }
}

/// The snapshots of one HTTP server (one per encoding, and older ones still being read); see
/// the module doc.
#[derive(Default)]
pub struct Snapshots {
    list: Vec<Snapshot>,
    next_id: u64,
    /// The max age given to the last [`Snapshots::join`] (seconds), for [`Snapshots::sweep`].
    max_age: u32,
    /// One build step's output, before it is appended to its snapshot.
    piece: Vec<u8>,
}

impl Snapshot {
    /// Appends `bytes` to the body, filling the last block before starting a new one.
    fn append(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len();
        while !bytes.is_empty() {
            match self.blocks.last_mut() {
                Some(last) if last.len() < BLOCK_BYTES => {
                    let n = (BLOCK_BYTES - last.len()).min(bytes.len());
                    last.extend_from_slice(&bytes[..n]);
                    bytes = &bytes[n..];
                }
                _ => self.blocks.push(Vec::with_capacity(BLOCK_BYTES)),
            }
        }
    }
}

impl std::fmt::Debug for Snapshots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshots")
            .field("snapshots", &self.list.len())
            .field("readers", &self.readers())
            .field("bytes", &self.bytes())
            .finish()
    }
}

impl Snapshots {
    /// A reader for a full scrape at `now` (seconds), from the first byte of the newest snapshot
    /// of its encoding (`gzip`) if that one is younger than `max_age` seconds (or if
    /// [`MAX_GENERATIONS`] are alive, see the module doc); otherwise a new snapshot is started,
    /// its made-up peers from `fakes` ([`Walk::count_fakes`]). `framing`: the reader's
    /// (the request's version). Returns the reader and whether it shares a snapshot that was
    /// there before (false: it started one).
    pub fn join(
        &mut self,
        gzip: bool,
        framing: Framing,
        now: u32,
        max_age: u32,
        fakes: impl FnOnce() -> Option<FakePeers>,
    ) -> (Reader, bool) {
        self.max_age = max_age;
        self.sweep(now);
        let alive = self.list.iter().filter(|s| s.gzip == gzip).count();
        let newest = self.list.iter_mut().rev().find(|s| s.gzip == gzip);
        if let Some(s) = newest {
            let fresh = now.saturating_sub(s.started) < max_age;
            if fresh || (max_age > 0 && alive >= MAX_GENERATIONS) {
                s.readers += 1;
                s.wanted = true;
                let reader = Reader {
                    id: s.id,
                    framing,
                    pos: 0,
                    permit: None,
                };
                return (reader, true);
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        let walk =
            Walk::new(WalkFormat::Bencode, Framing::CloseDelimited, gzip).count_fakes(fakes());
        self.list.push(Snapshot {
            id,
            gzip,
            started: now,
            walk: Some(Box::new(walk)),
            blocks: Vec::new(),
            len: 0,
            readers: 1,
            wanted: true,
        });
        (
            Reader {
                id,
                framing,
                pos: 0,
                permit: None,
            },
            false,
        )
    }

    /// Builds one more slice ([`BUILD_SLICE_TORRENTS`] torrents per store) of each snapshot a
    /// reader waits for (it keeps waiting if the slice added no bytes: gzip buffers). Call once
    /// per loop turn, before [`Snapshots::feed`]. `keep`: whether a torrent is listed (the
    /// access list), as for a walk.
    pub fn build(
        &mut self,
        v4: &impl TorrentWalk<6>,
        v6: &impl TorrentWalk<18>,
        keep: impl Fn(&InfoHash) -> bool,
    ) {
        for s in &mut self.list {
            if !s.wanted {
                continue;
            }
            s.wanted = false;
            let Some(walk) = s.walk.as_mut() else {
                continue;
            };
            self.piece.clear();
            let done = walk.step(v4, v6, &keep, BUILD_SLICE_TORRENTS, &mut self.piece);
            s.append(&self.piece);
            if done {
                s.walk = None;
                if let Some(last) = s.blocks.last_mut() {
                    last.shrink_to_fit();
                }
            } else {
                // gzip may keep a whole slice in its window: the readers still wait.
                s.wanted = self.piece.is_empty();
            }
        }
    }

    /// Gives `reader` up to `room` more bytes of its body (at least one byte if `room` is 0),
    /// framed, appended to `out`. Returns true when the reader has its whole body (with the end
    /// of its framing): hand it back with [`Snapshots::leave`]. A reader that caught up with a
    /// build in progress gets nothing and asks for the next slice.
    pub fn feed(&mut self, reader: &mut Reader, room: usize, out: &mut Vec<u8>) -> bool {
        let Some(s) = self.list.iter_mut().find(|s| s.id == reader.id) else {
            // Never: a snapshot with readers is kept. Ending here leaves the body unfinished
            // (no last chunk), which the client can tell.
            return true;
        };
        let off = reader.pos % BLOCK_BYTES;
        let block = s
            .blocks
            .get(reader.pos / BLOCK_BYTES)
            .map_or(&[][..], |b| &b[off..]);
        let n = block.len().min(room.max(1));
        write_body_piece(out, reader.framing, &block[..n]);
        reader.pos += n;
        if reader.pos < s.len {
            return false;
        }
        if s.walk.is_some() {
            s.wanted = true;
            return false;
        }
        write_body_end(out, reader.framing);
        true
    }

    /// True when `reader` has bytes it was not given yet, or its body is complete: feeding it
    /// makes progress. False when it waits for the next slice of the build.
    pub fn ready(&self, reader: &Reader) -> bool {
        self.list
            .iter()
            .find(|s| s.id == reader.id)
            .is_none_or(|s| reader.pos < s.len || s.walk.is_none())
    }

    /// Hands `reader` back: its snapshot has one reader less (and is dropped by
    /// [`Snapshots::sweep`] once nobody reads it and it aged out).
    pub fn leave(&mut self, reader: Reader) {
        if let Some(s) = self.list.iter_mut().find(|s| s.id == reader.id) {
            s.readers -= 1;
        }
    }

    /// Drops the snapshots nobody reads that are older than the max age or have a newer one of
    /// their encoding. Call about once per loop turn (cheap: a few entries).
    pub fn sweep(&mut self, now: u32) {
        let max_age = self.max_age;
        let mut newer = [false; 2];
        // Newest first: an older snapshot of an encoding already seen has a newer one.
        for i in (0..self.list.len()).rev() {
            let s = &self.list[i];
            let seen = std::mem::replace(&mut newer[usize::from(s.gzip)], true);
            let aged = now.saturating_sub(s.started) >= max_age;
            if s.readers == 0 && (aged || seen) {
                self.list.remove(i);
            }
        }
    }

    /// Full scrapes reading a snapshot now.
    pub fn readers(&self) -> usize {
        self.list.iter().map(|s| s.readers).sum()
    }

    /// Bytes the snapshots hold (their bodies so far, allocated capacity).
    pub fn bytes(&self) -> usize {
        self.list
            .iter()
            .flat_map(|s| &s.blocks)
            .map(Vec::capacity)
            .sum()
    }

    /// Snapshots held now.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True when no snapshot is held.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swarm::store::{Store, StoreConfig};
    use std::io::Read;

    fn h(n: u32) -> InfoHash {
        let mut h = [0u8; 20];
        h[..8].copy_from_slice(
            &u64::from(n)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .to_be_bytes(),
        );
        h
    }

    fn add<const N: usize>(s: &mut Store<N>, info_hash: &InfoHash, peer: [u8; N], seeder: bool) {
        s.add_peer(info_hash, &peer, seeder);
    }

    /// Stores of `n` torrents (several slices), a few in both families.
    fn stores(n: u32) -> (Store<6>, Store<18>) {
        let mut v4 = Store::new(StoreConfig::default());
        let mut v6 = Store::new(StoreConfig::default());
        for i in 0..n {
            let ip = (0x0a00_0000u32 + i).to_be_bytes();
            add(
                &mut v4,
                &h(i),
                [ip[0], ip[1], ip[2], ip[3], 0x1a, 0xe1],
                i % 3 == 0,
            );
            if i % 7 == 0 {
                let mut p = [0u8; 18];
                p[0] = 0x20;
                p[12..16].copy_from_slice(&i.to_be_bytes());
                add(&mut v6, &h(i), p, false);
            }
        }
        (v4, v6)
    }

    /// What a fresh walk of its own sends (today's full scrape): the whole framed body.
    fn fresh(v4: &Store<6>, v6: &Store<18>, gzip: bool, framing: Framing) -> Vec<u8> {
        let mut w = Walk::new(WalkFormat::Bencode, framing, gzip);
        let mut out = Vec::new();
        while !w.step(v4, v6, |_| true, SLICE_TORRENTS, &mut out) {}
        out
    }

    /// Feeds `reader` (`room` bytes per turn) until it finishes, building as the server does.
    fn read_all(
        snaps: &mut Snapshots,
        mut reader: Reader,
        room: usize,
        v4: &Store<6>,
        v6: &Store<18>,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..1_000_000 {
            snaps.build(v4, v6, |_| true);
            if snaps.feed(&mut reader, room, &mut out) {
                snaps.leave(reader);
                return out;
            }
        }
        panic!("reader never finished");
    }

    fn dechunk(mut b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let eol = b.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap(), 16).unwrap();
            b = &b[eol + 2..];
            if size == 0 {
                assert_eq!(b, b"\r\n");
                return out;
            }
            out.extend_from_slice(&b[..size]);
            assert_eq!(&b[size..size + 2], b"\r\n");
            b = &b[size + 2..];
        }
    }

    #[test]
    fn replies_are_byte_identical_to_a_fresh_walk_for_every_pace_and_framing() {
        let (v4, v6) = stores(20_000);
        for gzip in [false, true] {
            let plain_walk = fresh(&v4, &v6, false, Framing::CloseDelimited);
            let walk = fresh(&v4, &v6, gzip, Framing::CloseDelimited);
            let walk_chunked = fresh(&v4, &v6, gzip, Framing::Chunked);
            assert_eq!(dechunk(&walk_chunked), walk);
            let mut snaps = Snapshots::default();
            // Readers that join at different points of the build, at different paces.
            let (first, shared) = snaps.join(gzip, Framing::CloseDelimited, 100, 30, || None);
            assert!(!shared);
            let mut first = first;
            let mut early = Vec::new();
            for _ in 0..3 {
                snaps.build(&v4, &v6, |_| true);
                assert!(!snaps.feed(&mut first, 100_000, &mut early));
            }
            let (late, shared) = snaps.join(gzip, Framing::Chunked, 129, 30, || None);
            assert!(shared);
            let rest = read_all(&mut snaps, first, 100_000, &v4, &v6);
            early.extend(rest);
            assert!(early == walk, "gzip {gzip}: reader that started the build");
            let late = read_all(&mut snaps, late, 777, &v4, &v6);
            assert!(
                dechunk(&late) == walk,
                "gzip {gzip}: chunked reader that joined late"
            );
            // After the build: a reader of the complete snapshot.
            let (r, shared) = snaps.join(gzip, Framing::CloseDelimited, 129, 30, || None);
            assert!(shared);
            assert!(read_all(&mut snaps, r, 5000, &v4, &v6) == walk);
            assert_eq!(snaps.len(), 1, "one snapshot served them all");
            if gzip {
                let mut back = Vec::new();
                flate2::read::GzDecoder::new(&walk[..])
                    .read_to_end(&mut back)
                    .unwrap();
                assert!(
                    back == plain_walk,
                    "the gzip body inflates to the plain one"
                );
            }
        }
    }

    #[test]
    fn a_snapshot_is_built_once_per_encoding_and_only_as_fast_as_it_is_read() {
        let (v4, v6) = stores(3 * SLICE_TORRENTS as u32);
        let mut snaps = Snapshots::default();
        let (mut a, _) = snaps.join(false, Framing::Chunked, 0, 30, || None);
        let (b, shared) = snaps.join(false, Framing::CloseDelimited, 1, 30, || None);
        assert!(shared);
        let (c, shared) = snaps.join(true, Framing::CloseDelimited, 1, 30, || None);
        assert!(!shared, "one snapshot per encoding");
        assert_eq!((snaps.len(), snaps.readers()), (2, 3));
        snaps.leave(c);
        // Nobody caught up with the build: no slice is built beyond the first one asked for.
        snaps.build(&v4, &v6, |_| true);
        let len = snaps.bytes();
        snaps.build(&v4, &v6, |_| true);
        assert_eq!(snaps.bytes(), len, "no reader waits: nothing built");
        let mut out = Vec::new();
        assert!(!snaps.feed(&mut a, usize::MAX, &mut out));
        assert!(!snaps.ready(&a));
        snaps.build(&v4, &v6, |_| true);
        assert!(snaps.ready(&a));
        let c = snaps.join(true, Framing::CloseDelimited, 1, 30, || None).0;
        snaps.leave(a);
        snaps.leave(b);
        snaps.leave(c);
        // Nobody reads them, but they are young: kept for the next request.
        snaps.sweep(29);
        assert_eq!(snaps.len(), 2);
        let (d, shared) = snaps.join(true, Framing::Chunked, 29, 30, || None);
        assert!(shared);
        // Aged out: a new request starts a new one; the old one goes once nobody reads it.
        let (e, shared) = snaps.join(true, Framing::Chunked, 31, 30, || None);
        assert!(!shared);
        assert_eq!(
            snaps.len(),
            2,
            "the old gzip one is still read; the plain one aged out"
        );
        snaps.leave(d);
        snaps.sweep(31);
        assert_eq!(snaps.len(), 1);
        snaps.leave(e);
        snaps.sweep(61);
        assert!(snaps.is_empty());
        assert_eq!(snaps.bytes(), 0);
    }

    #[test]
    fn slow_readers_hold_at_most_two_generations() {
        let (v4, v6) = stores(10);
        let mut snaps = Snapshots::default();
        let (a, _) = snaps.join(false, Framing::Chunked, 0, 10, || None);
        let (b, shared) = snaps.join(false, Framing::Chunked, 10, 10, || None);
        assert!(!shared);
        // Both are read, and the newest aged out: the next one reads the newest anyway.
        let (c, shared) = snaps.join(false, Framing::Chunked, 25, 10, || None);
        assert!(shared);
        assert_eq!(snaps.len(), MAX_GENERATIONS);
        for r in [a, b, c] {
            assert!(read_all(&mut snaps, r, 1 << 20, &v4, &v6).ends_with(b"0\r\n\r\n"));
        }
        // Age 0: nothing shared.
        let (d, _) = snaps.join(false, Framing::Chunked, 30, 0, || None);
        let (e, shared) = snaps.join(false, Framing::Chunked, 30, 0, || None);
        assert!(!shared);
        snaps.leave(d);
        snaps.leave(e);
        snaps.sweep(30);
        assert!(snaps.is_empty());
    }
}
