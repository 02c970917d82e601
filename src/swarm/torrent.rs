//! One swarm of one address family: the sorted packed peers of one info_hash, with its counts.
//!
//! # Records
//!
//! A stored peer is its `N`-byte compact form (see [`super::peer`]; 6 bytes for IPv4, 18 for
//! IPv6) plus a 4-bit META nibble:
//!
//! | bits | meaning |
//! |------|---------|
//! | 3 ([`SEEDER`]) | the peer announced `left=0` last time |
//! | 0..2 ([`STAMP_MASK`]) | STAMP: the tick of its last announce, mod 8 (see [`super::clean`]) |
//!
//! A swarm's storage is one BLOCK of `cap` records: first the owner's key ([`slab::KEY`] bytes,
//! the start of its info_hash, so the store can find the swarm whose block the slab moved),
//! then the `cap` addresses back to back
//! (`cap * N` bytes, sorted by their bytes: memcmp order, i.e. by address then port, as
//! opentracker), then the `cap` nibbles packed two per byte (`ceil(cap / 2)` bytes; record `i`'s
//! nibble is the low half of byte `i / 2` when `i` is even, the high half when odd). So an IPv4
//! peer costs 6.5 bytes, an IPv6 peer 18.5, plus 4 bytes per swarm; lookup is a binary search over the addresses, and
//! a run of peers for a response is a plain copy of addresses.
//!
//! # Where the block lives
//!
//! The storage follows the peer count `len`, and one sticky mark of the swarm (`NO_SLAB`, set by
//! the store for a torrent whose 4-byte info_hash prefix another torrent shares: see
//! [`super::store`]):
//!
//! | `len` | storage |
//! |-------|---------|
//! | 0 | none |
//! | 1, IPv4 ([`PeerVec::INLINE`]) | INLINE in the [`PeerVec`]'s 8 data bytes: no heap at all (most torrents of an open tracker have one peer) |
//! | up to `PeerVec::SLAB_MAX` (608 IPv4, 216 IPv6: blocks up to 4 KiB) | a slot of the store's `Slab`, in the size class of `len` (`slab::class_cap`: exact up to 64 records, then at most 1/16 slack); with `NO_SLAB`, a block of its own as below |
//! | up to [`PeerVec::CHUNK_MAX`] (2,520 IPv4, 885 IPv6: blocks up to 16 KiB) | a block of its own from the global allocator, `cap` records (kept in the `PeerVec`), grown by 1/8 when full, shrunk to `len + len / 8` when under half full |
//! | more | CHUNKS: sorted blocks of their own of at most `CHUNK_MAX` records, listed in a directory in address order (a two-level B-tree); back to one block at `CHUNK_MAX / 2` |
//!
//! A change of `len` that changes the storage copies the records to the new storage and frees
//! the old; otherwise records move in place (one memmove of the addresses, one shift of the
//! nibbles), within one chunk for a big swarm, so one change moves at most 16 KiB whatever the
//! addresses (an IPv6 /64 gives a client all the adjacent addresses it wants). Slab blocks
//! belong to the `Slab`: every method that can change `len` takes it, and a swarm must be
//! cleared before it is dropped or its slot stays taken until the slab is dropped (the store
//! does this; see [`super::store`]). Freeing a slot may move another swarm's block into it: the
//! method returns the slab's `Move`, and the store re-points that swarm before anything else
//! touches it.
//!
//! # What safe code can do
//!
//! Reading is public: the counts, the records, a search. Every method that changes the storage
//! (insert, remove, retain, clear, the META update, the slab moves) is private to the crate,
//! so only the store, with its one slab, changes a swarm:
//!
//! ```compile_fail,E0624
//! use opentracker_rs::swarm::torrent::PeerVec;
//! let mut v = PeerVec::<6>::new();
//! // error[E0624]: method `clear` is private
//! let _ = v.clear(&mut PeerVec::<6>::new_slab());
//! ```
//!
//! ```
//! use opentracker_rs::swarm::torrent::PeerVec;
//! let v = PeerVec::<6>::new();
//! assert_eq!((v.len(), v.search(&[1, 2, 3, 4, 0, 80])), (0, Err(0)));
//! assert_eq!(v.iter().count(), 0);
//! ```
//!
//! The records and all the unsafe code behind them live in a private module; [`PeerVec`], the
//! META bits and the nibble helpers are re-exported here.
//!
//! [`slab::KEY`]: super::slab::KEY
//! `Slab`: super::slab::Slab
//! `slab::class_cap`: super::slab::class_cap

mod records;

#[cfg(test)]
pub(crate) use records::tests::Alone;
pub use records::{CHUNK_BYTES, PeerVec, SEEDER, STAMP_MASK, block_bytes, nibble, nibble_has};
pub(crate) use records::{Chunk, next_with_seeder_bit};

use crate::types::InfoHash;

/// One swarm: the peers of one info_hash in one address family, its counts and its clock.
/// 48 bytes, no padding.
///
/// `last_clean` is a tick (see [`super::clean`]): while the swarm has peers it is the tick it
/// was last cleaned (every stamp lies within `peer_ticks` before it); while it has none it is the
/// tick it became peerless, from which the torrent timeout runs.
#[derive(Debug)]
pub struct Torrent<const N: usize> {
    /// The info_hash (20 raw bytes).
    pub(super) info_hash: InfoHash,
    /// Completed downloads counted (BEP 48 `downloaded`, as opentracker's `down_count`).
    pub(super) downloaded: u32,
    /// Tick of the last cleaning (with peers) or since when it has been peerless.
    pub(super) last_clean: u32,
    /// Number of peers with the SEEDER bit.
    pub(super) seeders: u32,
    /// The sorted records.
    pub(super) peers: PeerVec<N>,
}

const _: () = assert!(size_of::<Torrent<6>>() == 48);
const _: () = assert!(size_of::<Torrent<18>>() == 48);

impl<const N: usize> Torrent<N> {
    /// A peerless torrent created at tick `now_tick`.
    pub fn new(info_hash: InfoHash, now_tick: u32) -> Self {
        Torrent {
            info_hash,
            downloaded: 0,
            last_clean: now_tick,
            seeders: 0,
            peers: PeerVec::new(),
        }
    }

    /// The info_hash.
    pub fn info_hash(&self) -> &InfoHash {
        &self.info_hash
    }

    /// Completed downloads counted (`downloaded` in a scrape).
    pub fn downloaded(&self) -> u32 {
        self.downloaded
    }

    /// Number of seeders (`complete` in a scrape).
    pub fn seeders(&self) -> u32 {
        self.seeders
    }

    /// Number of leechers (`incomplete` in a scrape).
    pub fn leechers(&self) -> u32 {
        (self.peers.len() as u32).saturating_sub(self.seeders)
    }

    /// The peers.
    pub fn peers(&self) -> &PeerVec<N> {
        &self.peers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swarm::slab::KEY;
    use crate::swarm::torrent::Alone;

    const K: [u8; KEY] = [9, 9, 9, 9];

    fn a4(i: u32) -> [u8; 6] {
        let b = i.to_be_bytes();
        [b[0], b[1], b[2], b[3], 0x1a, 0xe1]
    }

    #[test]
    fn torrent_counts() {
        let mut s = PeerVec::<6>::new_slab();
        let mut t = Torrent::<6>::new([1; 20], 9);
        assert_eq!(t.last_clean, 9);
        t.peers.insert_alone(&mut s, &K, 0, &a4(1), SEEDER);
        t.peers.insert_alone(&mut s, &K, 1, &a4(2), 0);
        t.seeders = 1;
        assert_eq!((t.seeders(), t.leechers(), t.downloaded()), (1, 1, 0));
        assert_eq!(t.info_hash(), &[1; 20]);
        t.peers.clear_alone(&mut s);
    }
}
