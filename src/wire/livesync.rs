//! Live sync packets: opentracker's cluster protocol (`ot_livesync.c`), plus our IPv6 and
//! authenticated packet types.
//!
//! A cluster of trackers tells each other about the announces each one served, so a peer
//! announced to one node is handed out by all of them. Each node batches records (one
//! info_hash plus one peer each) into a UDP datagram and sends it to the multicast group
//! [`MULTICAST_GROUP`] (or, beyond opentracker, to unicast peers). This module is the pure
//! codec: it reads and writes the packets and checks their MAC. Which packets a node sends,
//! from which source addresses it accepts them, and what a record does to the store are
//! decided elsewhere (`net/livesync.rs`, `service/`).
//!
//! The shape follows [`super::udp`]: [`SyncPacket`] is a typed view over a byte buffer (one
//! accessor per field, byte ranges in `mod field`), [`Record`] converts to and from the bytes
//! of one record, [`parse`] checks a whole datagram and [`Builder`] writes one.
//!
//! # Layouts
//!
//! Offsets in bytes; all integers big-endian (network order), as opentracker writes them.
//!
//! ```text
//! every packet        0 tracker_id [4] | 4 type u32 | 8 records ...
//!
//! type 0 (opentracker's OT_SYNC_PEER, "OT_SYNC_PEER4" since 2024), 28-byte records:
//!   record            0 info_hash [20] | 20 IPv4 address [4] | 24 port u16 | 26 flags u8 | 27 age u8
//! type 0 with `livesync.cluster.v6_records on` (opentracker built with WANT_V6), 40-byte records:
//!   record            0 info_hash [20] | 20 IPv6 address [16] | 36 port u16 | 38 flags u8 | 39 age u8
//! type 1 (IPv6 peers; opentracker's OT_SYNC_PEER6 since 2024), 40-byte records as above
//! type 0x6f74_7234 ("otr4", ours): type 0's 28-byte records, then a 16-byte MAC
//! type 0x6f74_7236 ("otr6", ours): type 1's 40-byte records, then a 16-byte MAC
//! ```
//!
//! - **tracker_id**: the sending process's instance id. opentracker copies its `uint32_t`
//!   (`random()` at start) into the packet in *host* order, so it is 4 opaque bytes here
//!   ([`TrackerId`]): compare them, never interpret them. A receiver drops packets carrying
//!   its own id.
//! - **The peer** in a record is opentracker's in-memory `ot_peer` copied raw: address and
//!   port in network order, then one flags byte and one age byte. The flags are
//!   [`Flags::SEEDING`] 0x80, [`Flags::COMPLETED`] 0x40, [`Flags::STOPPED`] 0x20 and
//!   [`Flags::FROM_SYNC`] 0x10 (set by a receiver on stored peers; opentracker never sends
//!   it). A stopped record removes the peer; any other record is applied as an announce with
//!   no reply. The age byte (minutes since the peer's last announce in the sender's store) is
//!   ignored on receipt; [`Builder`] writes 0.
//!   (`ot_livesync.h`'s comment shows a 2-byte flags field at 0x24: stale; the code copies
//!   the 8-byte `ot_peer`, so flags sit at packet offset 0x22 and age at 0x23 in the first
//!   record.)
//! - **opentracker's IPv6 build** (2021, `WANT_V6`) is an IPv6-only tracker whose `ot_peer`
//!   is 20 bytes (16-byte address). Its sync packets keep type 0 and the same header and
//!   flags; only the records grow to 40 bytes. A packet does not say which record size it
//!   uses, so the cluster's configuration does ([`Settings::v6_records`]): all type-0 packets
//!   are then read and written with 40-byte records, an IPv4 peer travelling v4-mapped
//!   (`::ffff:a.b.c.d`). A node configured for the wrong size reads garbage or reports
//!   [`Error::PartialRecord`] (when `8 + 40n` happens to be a multiple of 28, that is
//!   `n` a multiple of 7, it cannot even tell).
//! - **Type 1**, IPv6 peers alongside IPv4 ones: the 2021 opentracker (Debian's) has no room
//!   for them in type 0 and drops every type but 0, so they travel in type 1, whose record
//!   is the 18-byte address and port of BEP 7 plus flags and age. This is the layout and
//!   number opentracker itself gave its `OT_SYNC_PEER6` in 2024, so newer opentracker nodes
//!   read it too. An address that is v4-mapped reads as IPv4 ([`Record::peer`]).
//!   (That 2024 code reads type 0 wrongly: it copies the 8-byte peer to the front of its
//!   20-byte one and takes the flags from byte 18. Compatibility is with the 2021 code,
//!   Debian's.)
//! - **Authenticated types** (`livesync.cluster.secret`, ours): the same records, followed
//!   by a trailer of [`MAC_LEN`] bytes: HMAC-SHA256 keyed with the secret over every byte
//!   before the trailer (header included, so a tag cannot be moved to another type or
//!   tracker_id), truncated to its first 16 bytes (RFC 2104 section 5). Verified in constant
//!   time. With a secret set, [`parse`] refuses the unauthenticated types 0 and 1
//!   ([`Error::Unauthenticated`]); without one it refuses the authenticated types
//!   ([`Error::NoSecret`]), as opentracker drops every type it does not know. The MAC proves
//!   that a holder of the secret wrote the packet, not when: a captured packet can be
//!   replayed.
//!
//! # Sizes
//!
//! opentracker's send buffer is [`MAX_PACKET_LEN`] = 1480 bytes and it sends as soon as
//! another record might not fit, so its packets hold at most 52 records of 28 bytes (1464
//! bytes) or 36 of 40 (1448). [`Builder`] follows the same rule: a record is accepted while
//! the whole datagram, MAC included, stays within the limit, and [`Builder::push`] says when
//! the next record would not fit ([`Fill::Full`]) so the sender flushes. A full "otr4" packet
//! is exactly 1480 bytes; over IPv4 with a 1500-byte MTU that is fragmented (1472 is the
//! unfragmented maximum, 1452 over IPv6), so a unicast sender may pick a lower limit with
//! [`Builder::with_limit`]. The sender also flushes a non-empty packet [`MAX_DELAY_SECS`] after
//! the previous one.
//!
//! # Errors
//!
//! Parsing never allocates and never panics. A datagram is taken whole or not at all: short
//! packets, a trailing partial record, unknown types, a missing or bad MAC each give an
//! [`Error`] (where opentracker would apply the whole records before a partial one; it never
//! sends one). Work is linear in the datagram length (at most 64 KiB for UDP); the receiver
//! bounds how many datagrams it reads per turn.

use std::fmt;
use std::net::Ipv4Addr;

mod auth;
mod builder;
mod record;

pub use auth::Secret;
pub use builder::{BuildError, Builder, Fill};
pub use record::{Flags, Record, Records, RecordsIter};

/// The multicast group opentracker sends to and joins: 224.0.23.5 (`groupip_1` in
/// `ot_livesync.c`). `ot_livesync.h` says 224.0.42.5 and the sample config 224.0.42.23; the
/// code is what interoperates. Sent with TTL 1 and multicast loop off.
pub const MULTICAST_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 23, 5);

/// Seconds after which a sender flushes a packet that is not full (`LIVESYNC_MAXDELAY`).
pub const MAX_DELAY_SECS: u32 = 15;

/// The largest datagram [`Builder`] writes by default, in bytes: opentracker's send buffer
/// (`LIVESYNC_OUTGOING_BUFFSIZE_PEERS`). Header, records and MAC all count.
pub const MAX_PACKET_LEN: usize = 1480;

/// The largest UDP payload in bytes (65535 - 8 UDP - 20 IPv4 header): the upper bound of
/// [`Builder::with_limit`].
pub const MAX_UDP_PAYLOAD: usize = 65_507;

/// Length in bytes of the header every packet starts with (tracker_id, type).
pub const HEADER_LEN: usize = 8;

/// Length in bytes of an info_hash in a record.
pub const INFO_HASH_LEN: usize = 20;

/// Length in bytes of opentracker's IPv4 `ot_peer`: address 4, port 2, flags 1, age 1.
pub const PEER_V4_LEN: usize = 8;

/// Length in bytes of opentracker's IPv6 `ot_peer`: address 16, port 2, flags 1, age 1.
pub const PEER_V6_LEN: usize = 20;

/// Length in bytes of the MAC trailer of the authenticated types: HMAC-SHA256, truncated.
pub const MAC_LEN: usize = 16;

/// The length in bytes of the tracker_id at the start of every packet.
pub const TRACKER_ID_LEN: usize = 4;

/// A tracker instance id: 4 opaque bytes, random per process (opentracker: its `random()`
/// value in host byte order). Equal ids mean the same process.
pub type TrackerId = [u8; TRACKER_ID_LEN];

/// The `type` field at bytes 4..8 (big-endian u32).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum PacketType {
    /// `0`: opentracker's peer sync: 28-byte IPv4 records, or 40-byte records with
    /// [`Settings::v6_records`].
    PeerSync = 0,
    /// `1`: IPv6 peers in 40-byte records (opentracker's `OT_SYNC_PEER6` since 2024; dropped
    /// as unknown by the 2021 opentracker).
    PeerSyncV6 = 1,
    /// `0x6f747234` ("otr4"): type 0's 28-byte records, then a [`MAC_LEN`]-byte MAC. Ours.
    AuthPeerSync = 0x6f74_7234,
    /// `0x6f747236` ("otr6"): type 1's 40-byte records, then a [`MAC_LEN`]-byte MAC. Ours.
    AuthPeerSyncV6 = 0x6f74_7236,
}

impl PacketType {
    /// The type for a wire value, or `None` for any other value.
    pub const fn from_u32(value: u32) -> Option<PacketType> {
        match value {
            0 => Some(PacketType::PeerSync),
            1 => Some(PacketType::PeerSyncV6),
            0x6f74_7234 => Some(PacketType::AuthPeerSync),
            0x6f74_7236 => Some(PacketType::AuthPeerSyncV6),
            _ => None,
        }
    }

    /// Whether packets of this type end in a MAC trailer.
    pub const fn is_authenticated(self) -> bool {
        matches!(self, PacketType::AuthPeerSync | PacketType::AuthPeerSyncV6)
    }

    /// Length in bytes of the trailer after the records: [`MAC_LEN`] or 0.
    pub const fn trailer_len(self) -> usize {
        if self.is_authenticated() { MAC_LEN } else { 0 }
    }
}

/// The size of the records in a packet: which `ot_peer` follows each info_hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordLayout {
    /// 28-byte records: info_hash, IPv4 address, port, flags, age.
    V4,
    /// 40-byte records: info_hash, IPv6 address, port, flags, age.
    V6,
}

impl RecordLayout {
    /// Length in bytes of the peer part: [`PEER_V4_LEN`] (8) or [`PEER_V6_LEN`] (20).
    pub const fn peer_len(self) -> usize {
        match self {
            RecordLayout::V4 => PEER_V4_LEN,
            RecordLayout::V6 => PEER_V6_LEN,
        }
    }

    /// Length in bytes of one record: 28 or 40.
    pub const fn record_len(self) -> usize {
        INFO_HASH_LEN + self.peer_len()
    }

    /// Length in bytes of the address in the peer part: 4 or 16.
    pub const fn address_len(self) -> usize {
        self.peer_len() - 4
    }
}

/// Length in bytes of a 28-byte (IPv4) record.
pub const RECORD_V4_LEN: usize = RecordLayout::V4.record_len();

/// Length in bytes of a 40-byte (IPv6) record.
pub const RECORD_V6_LEN: usize = RecordLayout::V6.record_len();

/// The most records in one [`MAX_PACKET_LEN`] packet, for a layout and whether a MAC follows:
/// `(1480 - 8 - trailer) / record length`, that is 52 (28-byte records, with or without MAC)
/// or 36 (40-byte records, with or without MAC).
pub const fn max_records(layout: RecordLayout, packet_type: PacketType) -> usize {
    (MAX_PACKET_LEN - HEADER_LEN - packet_type.trailer_len()) / layout.record_len()
}

const _: () = assert!(max_records(RecordLayout::V4, PacketType::PeerSync) == 52);
const _: () = assert!(max_records(RecordLayout::V6, PacketType::PeerSyncV6) == 36);
const _: () = assert!(max_records(RecordLayout::V4, PacketType::AuthPeerSync) == 52);
const _: () = assert!(max_records(RecordLayout::V6, PacketType::AuthPeerSyncV6) == 36);

/// How a node reads and writes packets: the record size of type 0 and the optional secret.
/// Built once from the configuration.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// `livesync.cluster.v6_records on`: type-0 packets carry 40-byte records, as
    /// opentracker built with `WANT_V6` sends them. Default off (28-byte records).
    pub v6_records: bool,
    /// `livesync.cluster.secret`: when set, only the authenticated types are accepted and
    /// sent. Default unset: behave as opentracker.
    pub secret: Option<Secret>,
}

impl Settings {
    /// The record layout of a packet type under these settings.
    pub const fn layout(&self, packet_type: PacketType) -> RecordLayout {
        match packet_type {
            PacketType::PeerSync if self.v6_records => RecordLayout::V6,
            PacketType::PeerSync | PacketType::AuthPeerSync => RecordLayout::V4,
            PacketType::PeerSyncV6 | PacketType::AuthPeerSyncV6 => RecordLayout::V6,
        }
    }

    /// The packet type a sender uses for a peer of the given family under these settings:
    /// with a secret the authenticated types; else type 0 for IPv4, and for IPv6 type 1, or
    /// type 0 too with [`Settings::v6_records`] (whose 40-byte records carry both families).
    pub const fn packet_type_for(&self, ipv6: bool) -> PacketType {
        match (self.secret.is_some(), ipv6) {
            (true, false) => PacketType::AuthPeerSync,
            (true, true) => PacketType::AuthPeerSyncV6,
            (false, false) => PacketType::PeerSync,
            (false, true) if self.v6_records => PacketType::PeerSync,
            (false, true) => PacketType::PeerSyncV6,
        }
    }
}

/// Why a sync datagram was refused. The whole datagram is dropped; nothing is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Error {
    /// Shorter than the 8-byte header, or an authenticated type shorter than header + MAC.
    TooShort,
    /// A header (and MAC) without records. opentracker ignores packets of 8 bytes or less.
    NoRecords,
    /// A type this node does not know (carried here). opentracker drops these silently.
    UnknownType(u32),
    /// Type 0 or 1 while a secret is set: only authenticated packets are accepted.
    Unauthenticated,
    /// An authenticated type while no secret is set: it cannot be checked, so it is dropped
    /// like an unknown type.
    NoSecret,
    /// The MAC trailer does not match: a wrong secret, or the packet was altered.
    BadMac,
    /// The records do not end on a record boundary; `trailing` bytes are left over.
    PartialRecord {
        /// Bytes after the last whole record (1..record length).
        trailing: usize,
    },
}

impl Error {
    /// A short English text for logs. Stable: tests may match on it.
    pub const fn text(&self) -> &'static str {
        match self {
            Error::TooShort => "sync packet too short",
            Error::NoRecords => "sync packet without records",
            Error::UnknownType(_) => "unknown sync packet type",
            Error::Unauthenticated => "unauthenticated sync packet while a secret is set",
            Error::NoSecret => "authenticated sync packet but no secret is set",
            Error::BadMac => "sync packet MAC mismatch",
            Error::PartialRecord { .. } => "sync packet ends in a partial record",
        }
    }

    /// A stable snake_case name for the reason, for counters and metric labels
    /// (`too_short`, `no_records`, `unknown_type`, `unauthenticated`, `no_secret`, `bad_mac`,
    /// `partial_record`).
    pub const fn reason(&self) -> &'static str {
        match self {
            Error::TooShort => "too_short",
            Error::NoRecords => "no_records",
            Error::UnknownType(_) => "unknown_type",
            Error::Unauthenticated => "unauthenticated",
            Error::NoSecret => "no_secret",
            Error::BadMac => "bad_mac",
            Error::PartialRecord { .. } => "partial_record",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnknownType(t) => write!(f, "{} {t:#010x}", self.text()),
            Error::PartialRecord { trailing } => {
                write!(f, "{} ({trailing} trailing bytes)", self.text())
            }
            _ => f.write_str(self.text()),
        }
    }
}

impl std::error::Error for Error {}

/// Byte ranges of the fields: the packet header, then the fields of one record (`R_`,
/// relative to the record; the peer's fields depend on the [`RecordLayout`]).
mod field {
    pub type Field = core::ops::Range<usize>;

    pub const TRACKER_ID: Field = 0..4;
    pub const TYPE: Field = 4..8;

    pub const R_INFO_HASH: Field = 0..20;

    pub const R_V4_ADDRESS: Field = 20..24;
    pub const R_V4_PORT: Field = 24..26;
    pub const R_V4_FLAGS: usize = 26;
    pub const R_V4_AGE: usize = 27;

    pub const R_V6_ADDRESS: Field = 20..36;
    pub const R_V6_PORT: Field = 36..38;
    pub const R_V6_FLAGS: usize = 38;
    pub const R_V6_AGE: usize = 39;
}

/// Copies a field that a length check has proven present.
fn read_array<const N: usize>(data: &[u8], f: field::Field) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&data[f]);
    out
}

// ---------------------------------------------------------------------------------------------
// Packet view
// ---------------------------------------------------------------------------------------------

/// A typed view over a sync datagram.
///
/// [`SyncPacket::new_checked`] proves the 8-byte header present, so [`SyncPacket::tracker_id`]
/// and [`SyncPacket::packet_type`] never panic on a checked packet; on an unchecked one
/// shorter than 8 bytes they do. The records and MAC need the type (and [`Settings`]) to be
/// found: see [`parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> SyncPacket<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> SyncPacket<T> {
        SyncPacket { buffer }
    }

    /// Wraps a buffer, checking that the 8-byte header is present.
    ///
    /// Errors: [`Error::TooShort`] under 8 bytes.
    pub fn new_checked(buffer: T) -> Result<SyncPacket<T>, Error> {
        let packet = SyncPacket::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the length as [`SyncPacket::new_checked`] does.
    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::TooShort);
        }
        Ok(())
    }

    /// Returns the wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Bytes 0..4: the sender's tracker_id (opaque).
    pub fn tracker_id(&self) -> TrackerId {
        read_array(self.buffer.as_ref(), field::TRACKER_ID)
    }

    /// Bytes 4..8: the packet type, big-endian, not validated (see [`PacketType::from_u32`]).
    pub fn packet_type(&self) -> u32 {
        u32::from_be_bytes(read_array(self.buffer.as_ref(), field::TYPE))
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> SyncPacket<&'a T> {
    /// Bytes 8..: records and trailer (empty if none).
    pub fn payload(&self) -> &'a [u8] {
        self.buffer.as_ref().get(HEADER_LEN..).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> SyncPacket<T> {
    /// Sets bytes 0..4 (tracker_id).
    pub fn set_tracker_id(&mut self, value: &TrackerId) {
        self.buffer.as_mut()[field::TRACKER_ID].copy_from_slice(value);
    }

    /// Sets bytes 4..8 (packet type, big-endian).
    pub fn set_packet_type(&mut self, value: u32) {
        self.buffer.as_mut()[field::TYPE].copy_from_slice(&value.to_be_bytes());
    }
}

/// The tracker_id (bytes 0..4) of a datagram of at least 8 bytes, whatever else it holds.
///
/// Lets a receiver drop its own packets (and count them) before checking a MAC. `None` under
/// [`HEADER_LEN`] bytes.
pub fn peek_tracker_id(buf: &[u8]) -> Option<TrackerId> {
    SyncPacket::new_checked(buf).ok().map(|p| p.tracker_id())
}

// ---------------------------------------------------------------------------------------------
// Parsed packet
// ---------------------------------------------------------------------------------------------

/// A checked sync packet: header fields and its records, borrowed from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// The sender's instance id.
    pub tracker_id: TrackerId,
    /// The packet type.
    pub packet_type: PacketType,
    /// The records (at least one), whole; a MAC, if any, has been checked and cut off.
    pub records: Records<'a>,
}

/// Parses and checks a whole sync datagram.
///
/// In this order: [`Error::TooShort`] under 8 bytes; [`Error::UnknownType`];
/// [`Error::Unauthenticated`] for type 0 or 1 when `settings` has a secret, or
/// [`Error::NoSecret`] for an authenticated type when it has none; for authenticated types
/// [`Error::TooShort`] under 8 + 16 bytes and [`Error::BadMac`]; [`Error::NoRecords`] when no
/// byte is left for records; [`Error::PartialRecord`] when they do not end on a record
/// boundary (28 bytes, or 40 for type 1, the authenticated v6 type, and type 0 with
/// [`Settings::v6_records`]).
///
/// The tracker_id is not compared with the receiver's own: see [`peek_tracker_id`].
pub fn parse<'a>(buf: &'a [u8], settings: &Settings) -> Result<Packet<'a>, Error> {
    let packet = SyncPacket::new_checked(buf)?;
    let raw_type = packet.packet_type();
    let packet_type = PacketType::from_u32(raw_type).ok_or(Error::UnknownType(raw_type))?;
    let mut body = packet.payload();
    match (packet_type.is_authenticated(), &settings.secret) {
        (false, None) => {}
        (false, Some(_)) => return Err(Error::Unauthenticated),
        (true, None) => return Err(Error::NoSecret),
        (true, Some(secret)) => {
            let signed_len = buf.len().checked_sub(MAC_LEN).ok_or(Error::TooShort)?;
            if signed_len < HEADER_LEN {
                return Err(Error::TooShort);
            }
            let (signed, tag) = buf.split_at(signed_len);
            if !secret.verify(signed, tag) {
                return Err(Error::BadMac);
            }
            body = &signed[HEADER_LEN..];
        }
    }
    if body.is_empty() {
        return Err(Error::NoRecords);
    }
    let layout = settings.layout(packet_type);
    let trailing = body.len() % layout.record_len();
    if trailing != 0 {
        return Err(Error::PartialRecord { trailing });
    }
    Ok(Packet {
        tracker_id: packet.tracker_id(),
        packet_type,
        records: Records::new_unchecked(body, layout),
    })
}

#[cfg(test)]
mod tests;
