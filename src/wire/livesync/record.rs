//! One record of a sync packet (an info_hash and opentracker's `ot_peer`), its flags, and the
//! list of records of a checked packet.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::BitOr;
use std::slice::ChunksExact;

use super::builder::BuildError;
use super::{Error, RecordLayout, field, read_array};
use crate::types::InfoHash;

/// The flags byte of a record's peer (opentracker's `PEER_FLAG_*`). Unknown bits are kept as
/// received and ignored.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Flags(u8);

impl Flags {
    /// No flag: a leecher (`PEER_FLAG_LEECHING`, 0x00).
    pub const LEECHING: Flags = Flags(0x00);
    /// 0x80: the peer is a seeder (it announced `left=0`).
    pub const SEEDING: Flags = Flags(0x80);
    /// 0x40: the peer announced `event=completed`; opentracker keeps it only with
    /// [`Flags::SEEDING`] ("whoever claims to have completed must be a seeder").
    pub const COMPLETED: Flags = Flags(0x40);
    /// 0x20: the peer announced `event=stopped`; the record removes it.
    pub const STOPPED: Flags = Flags(0x20);
    /// 0x10: the peer was learnt from sync. Set by a receiver on the peers it stores;
    /// opentracker never sends it and ignores it on receipt.
    pub const FROM_SYNC: Flags = Flags(0x10);

    /// The flags for a raw byte, unknown bits included.
    pub const fn from_bits(bits: u8) -> Flags {
        Flags(bits)
    }

    /// The raw byte.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// [`Flags::SEEDING`] is set.
    pub const fn seeding(self) -> bool {
        self.contains(Flags::SEEDING)
    }

    /// [`Flags::COMPLETED`] is set.
    pub const fn completed(self) -> bool {
        self.contains(Flags::COMPLETED)
    }

    /// [`Flags::STOPPED`] is set.
    pub const fn stopped(self) -> bool {
        self.contains(Flags::STOPPED)
    }

    /// [`Flags::FROM_SYNC`] is set.
    pub const fn from_sync(self) -> bool {
        self.contains(Flags::FROM_SYNC)
    }
}

impl BitOr for Flags {
    type Output = Flags;

    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Flags({:#04x}", self.0)?;
        for (flag, name) in [
            (Flags::SEEDING, " SEEDING"),
            (Flags::COMPLETED, " COMPLETED"),
            (Flags::STOPPED, " STOPPED"),
            (Flags::FROM_SYNC, " FROM_SYNC"),
        ] {
            if self.contains(flag) {
                f.write_str(name)?;
            }
        }
        f.write_str(")")
    }
}

/// One record: which torrent, which peer, and what the peer announced.
///
/// The age byte is not kept: it is ignored on receipt and written as 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Record {
    /// The torrent.
    pub info_hash: InfoHash,
    /// The peer's address and port. From a 40-byte record, a v4-mapped address
    /// (`::ffff:a.b.c.d`) reads as IPv4; flow info and scope id are 0.
    pub peer: SocketAddr,
    /// The peer's flags.
    pub flags: Flags,
}

impl Record {
    /// Reads one record of `layout` from exactly [`RecordLayout::record_len`] bytes.
    ///
    /// Returns `None` when `bytes` has another length.
    pub fn parse(bytes: &[u8], layout: RecordLayout) -> Option<Record> {
        if bytes.len() != layout.record_len() {
            return None;
        }
        let info_hash = read_array(bytes, field::R_INFO_HASH);
        let (ip, port, flags) = match layout {
            RecordLayout::V4 => (
                IpAddr::V4(Ipv4Addr::from(read_array::<4>(bytes, field::R_V4_ADDRESS))),
                read_array::<2>(bytes, field::R_V4_PORT),
                bytes[field::R_V4_FLAGS],
            ),
            RecordLayout::V6 => {
                let ip = Ipv6Addr::from(read_array::<16>(bytes, field::R_V6_ADDRESS));
                let ip = match ip.to_ipv4_mapped() {
                    Some(v4) => IpAddr::V4(v4),
                    None => IpAddr::V6(ip),
                };
                (
                    ip,
                    read_array::<2>(bytes, field::R_V6_PORT),
                    bytes[field::R_V6_FLAGS],
                )
            }
        };
        Some(Record {
            info_hash,
            peer: SocketAddr::new(ip, u16::from_be_bytes(port)),
            flags: Flags(flags),
        })
    }

    /// Appends the record in `layout` to `out` (age byte 0) and returns the bytes appended
    /// (28 or 40).
    ///
    /// In a 40-byte record an IPv4 peer is written v4-mapped. Errors:
    /// [`BuildError::WrongFamily`] for an IPv6 peer in a 28-byte record; nothing is appended.
    pub fn emit(&self, layout: RecordLayout, out: &mut Vec<u8>) -> Result<usize, BuildError> {
        let (v4, v6);
        let address: &[u8] = match (layout, self.peer.ip()) {
            (RecordLayout::V4, IpAddr::V4(ip)) => {
                v4 = ip.octets();
                &v4
            }
            (RecordLayout::V4, IpAddr::V6(_)) => return Err(BuildError::WrongFamily),
            (RecordLayout::V6, IpAddr::V4(ip)) => {
                v6 = ip.to_ipv6_mapped().octets();
                &v6
            }
            (RecordLayout::V6, IpAddr::V6(ip)) => {
                v6 = ip.octets();
                &v6
            }
        };
        let (address_at, port_at, flags_at, age_at) = match layout {
            RecordLayout::V4 => (
                field::R_V4_ADDRESS,
                field::R_V4_PORT,
                field::R_V4_FLAGS,
                field::R_V4_AGE,
            ),
            RecordLayout::V6 => (
                field::R_V6_ADDRESS,
                field::R_V6_PORT,
                field::R_V6_FLAGS,
                field::R_V6_AGE,
            ),
        };
        let start = out.len();
        out.resize(start + layout.record_len(), 0);
        let rec = &mut out[start..];
        rec[field::R_INFO_HASH].copy_from_slice(&self.info_hash);
        rec[address_at].copy_from_slice(address);
        rec[port_at].copy_from_slice(&self.peer.port().to_be_bytes());
        rec[flags_at] = self.flags.0;
        rec[age_at] = 0;
        Ok(layout.record_len())
    }
}

/// The records of a checked packet: whole records of one layout, borrowed from the datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Records<'a> {
    bytes: &'a [u8],
    layout: RecordLayout,
}

impl<'a> Records<'a> {
    /// Wraps record bytes, checking that they end on a record boundary.
    ///
    /// Errors: [`Error::PartialRecord`] otherwise. Empty input is an empty list.
    pub fn new(bytes: &'a [u8], layout: RecordLayout) -> Result<Records<'a>, Error> {
        match bytes.len() % layout.record_len() {
            0 => Ok(Records::new_unchecked(bytes, layout)),
            trailing => Err(Error::PartialRecord { trailing }),
        }
    }

    /// Wraps record bytes without checking; a trailing partial record is then skipped by
    /// [`Records::iter`] and not counted.
    pub(super) const fn new_unchecked(bytes: &'a [u8], layout: RecordLayout) -> Records<'a> {
        Records { bytes, layout }
    }

    /// The layout (28- or 40-byte records).
    pub const fn layout(&self) -> RecordLayout {
        self.layout
    }

    /// The raw record bytes.
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The number of records.
    pub const fn len(&self) -> usize {
        self.bytes.len() / self.layout.record_len()
    }

    /// Whether there is no record.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The records, in packet order.
    pub fn iter(&self) -> RecordsIter<'a> {
        RecordsIter {
            chunks: self.bytes.chunks_exact(self.layout.record_len()),
            layout: self.layout,
        }
    }
}

impl<'a> IntoIterator for Records<'a> {
    type Item = Record;
    type IntoIter = RecordsIter<'a>;

    fn into_iter(self) -> RecordsIter<'a> {
        self.iter()
    }
}

/// Iterator over the [`Record`]s of [`Records`], in packet order.
#[derive(Clone, Debug)]
pub struct RecordsIter<'a> {
    chunks: ChunksExact<'a, u8>,
    layout: RecordLayout,
}

impl Iterator for RecordsIter<'_> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        // Every chunk has the record length, so parse always succeeds.
        Record::parse(self.chunks.next()?, self.layout)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.chunks.size_hint()
    }
}

impl ExactSizeIterator for RecordsIter<'_> {}
