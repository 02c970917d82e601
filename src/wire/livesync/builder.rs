//! [`Builder`]: accumulates records into one sync packet until the next would not fit.

use std::fmt;

use super::{
    HEADER_LEN, MAX_PACKET_LEN, MAX_UDP_PAYLOAD, PacketType, Record, RecordLayout, Secret,
    Settings, SyncPacket, TrackerId,
};

/// Whether a [`Builder`] has room for another record after a push.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fill {
    /// Another record fits.
    Room,
    /// The next record would pass the limit: send the packet ([`Builder::emit`]) and
    /// [`Builder::clear`] it before pushing again.
    Full,
}

/// Why a [`Builder`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BuildError {
    /// [`Builder::push`] on a full packet; nothing was added.
    Full,
    /// An IPv6 peer for a packet of 28-byte (IPv4) records; nothing was added.
    WrongFamily,
    /// An authenticated packet type without a secret in the [`Settings`].
    NoSecret,
    /// A limit that does not hold one record (header, one record, MAC) or exceeds
    /// [`MAX_UDP_PAYLOAD`], or is below the bytes already in the packet.
    BadLimit,
}

impl BuildError {
    /// A short English text for logs. Stable: tests may match on it.
    pub const fn text(&self) -> &'static str {
        match self {
            BuildError::Full => "sync packet is full",
            BuildError::WrongFamily => "IPv6 peer in a packet of IPv4 records",
            BuildError::NoSecret => "authenticated sync packet type without a secret",
            BuildError::BadLimit => "sync packet size limit cannot hold one record",
        }
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

impl std::error::Error for BuildError {}

/// Builds one sync packet at a time: the header, records as they come, and the MAC when the
/// packet is sent.
///
/// Records are accepted while the datagram (header, records and MAC) stays within the limit,
/// [`MAX_PACKET_LEN`] (1480 bytes, opentracker's buffer) unless [`Builder::with_limit`] says
/// otherwise: 52 records of 28 bytes or 36 of 40. [`Builder::push`] reports [`Fill::Full`]
/// when the next record would not fit, which is when opentracker sends. The buffer is
/// allocated once; [`Builder::clear`] keeps it.
///
/// ```
/// use opentracker_rs::wire::livesync::{self, Builder, Fill, Flags, PacketType, Record, Settings};
///
/// let settings = Settings::default();
/// let mut builder = Builder::new(*b"node", PacketType::PeerSync, &settings).unwrap();
/// let record = Record {
///     info_hash: [0xab; 20],
///     peer: "10.0.0.1:6881".parse().unwrap(),
///     flags: Flags::SEEDING,
/// };
/// assert_eq!(builder.push(&record), Ok(Fill::Room));
/// let mut datagram = Vec::new();
/// assert_eq!(builder.emit(&mut datagram), 8 + 28);
/// builder.clear();
/// let packet = livesync::parse(&datagram, &settings).unwrap();
/// assert_eq!(packet.records.iter().next(), Some(record));
/// ```
#[derive(Clone, Debug)]
pub struct Builder {
    /// Header and records; the MAC is added by `emit`.
    buf: Vec<u8>,
    packet_type: PacketType,
    layout: RecordLayout,
    secret: Option<Secret>,
    limit: usize,
}

impl Builder {
    /// An empty packet of `packet_type` from `tracker_id`, with the record layout and secret
    /// of `settings`, limited to [`MAX_PACKET_LEN`] bytes.
    ///
    /// Errors: [`BuildError::NoSecret`] for an authenticated type when `settings` has no
    /// secret.
    pub fn new(
        tracker_id: TrackerId,
        packet_type: PacketType,
        settings: &Settings,
    ) -> Result<Builder, BuildError> {
        let secret = match (packet_type.is_authenticated(), &settings.secret) {
            (true, None) => return Err(BuildError::NoSecret),
            (true, Some(secret)) => Some(secret.clone()),
            (false, _) => None,
        };
        let mut buf = Vec::with_capacity(MAX_PACKET_LEN);
        buf.resize(HEADER_LEN, 0);
        let mut header = SyncPacket::new_unchecked(&mut buf[..]);
        header.set_tracker_id(&tracker_id);
        header.set_packet_type(packet_type as u32);
        Ok(Builder {
            buf,
            packet_type,
            layout: settings.layout(packet_type),
            secret,
            limit: MAX_PACKET_LEN,
        })
    }

    /// The same builder with another limit on the datagram length in bytes (for instance
    /// 1472 to stay unfragmented over IPv4 on a 1500-byte MTU, 1452 over IPv6).
    ///
    /// Errors: [`BuildError::BadLimit`] when `limit` cannot hold the header, one record and
    /// the MAC, exceeds [`MAX_UDP_PAYLOAD`], or is below [`Builder::packet_len`].
    pub fn with_limit(mut self, limit: usize) -> Result<Builder, BuildError> {
        let smallest = HEADER_LEN + self.layout.record_len() + self.packet_type.trailer_len();
        if limit < smallest || limit > MAX_UDP_PAYLOAD || limit < self.packet_len() {
            return Err(BuildError::BadLimit);
        }
        self.limit = limit;
        Ok(self)
    }

    /// The packet type written in the header.
    pub const fn packet_type(&self) -> PacketType {
        self.packet_type
    }

    /// The record layout (28- or 40-byte records).
    pub const fn layout(&self) -> RecordLayout {
        self.layout
    }

    /// The limit on the datagram length, in bytes.
    pub const fn limit(&self) -> usize {
        self.limit
    }

    /// The most records one packet holds under the limit.
    pub const fn capacity(&self) -> usize {
        (self.limit - HEADER_LEN - self.packet_type.trailer_len()) / self.layout.record_len()
    }

    /// The number of records in the packet.
    pub fn len(&self) -> usize {
        (self.buf.len() - HEADER_LEN) / self.layout.record_len()
    }

    /// Whether the packet holds no record.
    pub fn is_empty(&self) -> bool {
        self.buf.len() == HEADER_LEN
    }

    /// Whether the next record would pass the limit.
    pub fn is_full(&self) -> bool {
        self.packet_len() + self.layout.record_len() > self.limit
    }

    /// The length in bytes of the datagram [`Builder::emit`] would write now, MAC included
    /// (0 when empty).
    pub fn packet_len(&self) -> usize {
        if self.is_empty() {
            0
        } else {
            self.buf.len() + self.packet_type.trailer_len()
        }
    }

    /// Adds a record (its age byte 0) and says whether another one fits.
    ///
    /// In a packet of 40-byte records an IPv4 peer is written v4-mapped. Errors:
    /// [`BuildError::Full`] when the packet is already full, [`BuildError::WrongFamily`] for an
    /// IPv6 peer in 28-byte records; the packet is then unchanged.
    pub fn push(&mut self, record: &Record) -> Result<Fill, BuildError> {
        if self.is_full() {
            return Err(BuildError::Full);
        }
        record.emit(self.layout, &mut self.buf)?;
        Ok(if self.is_full() {
            Fill::Full
        } else {
            Fill::Room
        })
    }

    /// Appends the datagram (header, records, and for authenticated types the MAC over all
    /// of them) to `out`, and returns the bytes appended: [`Builder::packet_len`]. An empty
    /// packet appends nothing and returns 0: it is not worth sending (receivers drop it).
    pub fn emit(&self, out: &mut Vec<u8>) -> usize {
        if self.is_empty() {
            return 0;
        }
        out.extend_from_slice(&self.buf);
        if let Some(secret) = &self.secret {
            out.extend_from_slice(&secret.tag(&self.buf));
        }
        self.packet_len()
    }

    /// Removes every record, keeping the header and the buffer, for the next packet.
    pub fn clear(&mut self) {
        self.buf.truncate(HEADER_LEN);
    }
}
