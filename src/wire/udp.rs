//! BEP 15 UDP tracker packets, with the BEP 41 announce options.
//!
//! The shape follows smoltcp's `wire` modules: [`RequestPacket`] and [`ResponsePacket`] are
//! typed views over a byte buffer (one accessor per field, byte ranges in `mod field`), and
//! plain structs ([`ConnectRequest`], [`AnnounceRequest`], ..., [`ErrorResponse`]) convert to and
//! from them with `parse` and `emit`. [`parse_request`] and [`parse_response`] dispatch on the
//! action. All integers are big-endian (network order); all lengths are in bytes.
//!
//! Parsing never allocates and never panics: every failure is an [`Error`], whose
//! [`Error::text`] is short enough to go back to the client in an action 3 reply.
//! Parsed structs borrow variable-length parts (BEP 41 options, scrape info_hashes, peers,
//! scrape entries, error messages) from the datagram.
//!
//! Every `emit` appends the packet to a caller-owned `Vec<u8>` and returns the number of
//! bytes appended: the server clears and reuses one buffer per datagram slot, so once its
//! capacity has grown to the largest reply nothing is allocated per datagram.
//!
//! Request layouts (offsets in bytes, BEP 15):
//!
//! ```text
//! every request   0 connection_id u64 | 8 action u32 | 12 transaction_id u32
//! connect   (0)   connection_id = PROTOCOL_ID, 16 bytes in all
//! announce  (1)   16 info_hash [20] | 36 peer_id [20] | 56 downloaded u64 | 64 left u64
//!                 72 uploaded u64 | 80 event u32 | 84 ip u32 | 88 key u32 | 92 num_want i32
//!                 96 port u16 | 98 BEP 41 options (optional, to the end of the datagram)
//! scrape    (2)   16 info_hash [20] x N, N >= 1
//! ```
//!
//! Response layouts:
//!
//! ```text
//! every response  0 action u32 | 4 transaction_id u32
//! connect   (0)   8 connection_id u64                          16 bytes
//! announce  (1)   8 interval u32 | 12 leechers u32 | 16 seeders u32 | 20 peers:
//!                 6 bytes each (IPv4 + port) or 18 bytes each (IPv6 + port)
//! scrape    (2)   8 (seeders u32, completed u32, leechers u32) x N, in request order
//! error     (3)   8 message, to the end of the datagram
//! ```
//!
//! This file holds what both directions share: the lengths, [`Action`], [`Error`], the field
//! byte ranges and the big-endian readers, and the `peek_*` functions. The requests live in
//! the `request` module, the BEP 41 options in `options`, the responses in `response`; all
//! three are private and re-exported here, so every item's path is `wire::udp::*`.

use std::fmt;

mod options;
mod request;
mod response;

pub use options::*;
pub use request::*;
pub use response::*;

/// The magic `protocol_id` that fills the connection_id field of a connect request
/// (BEP 15, "connect"): `0x41727101980`, sent as 8 bytes big-endian `00 00 04 17 27 10 19 80`.
pub const PROTOCOL_ID: u64 = 0x0417_2710_1980;

/// Length in bytes of the header every request starts with (connection_id, action,
/// transaction_id), which is also the whole connect request (BEP 15).
pub const REQUEST_HEADER_LEN: usize = 16;

/// Length in bytes of a connect request (BEP 15).
pub const CONNECT_REQUEST_LEN: usize = 16;

/// Minimum length in bytes of an announce request: the fixed fields up to and including
/// `port` (BEP 15). Longer datagrams carry BEP 41 options after byte 98.
pub const ANNOUNCE_MIN_LEN: usize = 98;

/// Length in bytes of the header every response starts with (action, transaction_id).
pub const RESPONSE_HEADER_LEN: usize = 8;

/// Length in bytes of a connect response (BEP 15).
pub const CONNECT_RESPONSE_LEN: usize = 16;

/// Length in bytes of an announce response without peers (BEP 15).
pub const ANNOUNCE_RESPONSE_HEADER_LEN: usize = 20;

/// Length in bytes of one info_hash in a scrape request (BEP 15).
pub const INFO_HASH_LEN: usize = 20;

/// Length in bytes of one scrape response entry: seeders, completed, leechers, each a
/// big-endian u32 (BEP 15).
pub const SCRAPE_ENTRY_LEN: usize = 12;

/// Length in bytes of one compact IPv4 peer in an announce response: 4 address bytes then a
/// 2-byte port, network order (BEP 15, BEP 23).
pub const PEER_V4_LEN: usize = 6;

/// Length in bytes of one compact IPv6 peer in an announce response: 16 address bytes then a
/// 2-byte port, network order (BEP 15, "IPv6").
pub const PEER_V6_LEN: usize = 18;

/// The Ethernet MTU in bytes: the largest IP packet that crosses a typical link unfragmented.
pub const ETHERNET_MTU: usize = 1500;

/// Largest UDP payload in bytes that fits one [`ETHERNET_MTU`] datagram over IPv6 (the worse
/// case): 1500 - 40 (IPv6 header) - 8 (UDP header) = 1452.
pub const MAX_UDP_PAYLOAD: usize = ETHERNET_MTU - 40 - 8;

/// The most info_hashes one scrape reply can answer in a single unfragmented datagram:
/// (1452 payload bytes ([`MAX_UDP_PAYLOAD`]) - 8 header bytes) / 12 bytes per entry
/// = 1444 / 12 = **120**.
///
/// The parser reports every hash of a request; the server truncates to this (or a smaller
/// configured) number. opentracker answers at most 75 (its reply is then 908 bytes); the
/// requirement is at least 74 (the number BEP 15 clients plan around).
pub const MAX_SCRAPE_HASHES_PER_DATAGRAM: usize =
    (MAX_UDP_PAYLOAD - RESPONSE_HEADER_LEN) / SCRAPE_ENTRY_LEN;

const _: () = assert!(MAX_SCRAPE_HASHES_PER_DATAGRAM == 120);
const _: () = assert!(
    RESPONSE_HEADER_LEN + MAX_SCRAPE_HASHES_PER_DATAGRAM * SCRAPE_ENTRY_LEN <= MAX_UDP_PAYLOAD
);

/// The `action` field of requests and responses (BEP 15).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Action {
    /// `0`: get a connection_id.
    Connect = 0,
    /// `1`: announce.
    Announce = 1,
    /// `2`: scrape.
    Scrape = 2,
    /// `3`: error (responses only).
    Error = 3,
}

impl Action {
    /// The action for a wire value, or `None` for values other than 0..=3.
    pub const fn from_u32(value: u32) -> Option<Action> {
        match value {
            0 => Some(Action::Connect),
            1 => Some(Action::Announce),
            2 => Some(Action::Scrape),
            3 => Some(Action::Error),
            _ => None,
        }
    }
}

/// Why a datagram could not be parsed. Each variant has a short, stable [`text`](Error::text)
/// that the server may send back in an action 3 (error) reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Error {
    /// A request shorter than 16 bytes, or a response shorter than 8 bytes: no header.
    TooShort,
    /// A connect request whose first 8 bytes are not [`PROTOCOL_ID`] (BEP 15).
    BadMagic,
    /// An action this side does not handle: requests accept 0..=2, responses 0..=3.
    UnknownAction(u32),
    /// An announce request shorter than [`ANNOUNCE_MIN_LEN`] (98) bytes.
    TruncatedAnnounce,
    /// An announce `event` other than 0 (none), 1 (completed), 2 (started), 3 (stopped).
    BadEvent,
    /// A BEP 41 option whose length byte or data runs past the end of the datagram.
    BadOption,
    /// A scrape request whose info_hash list does not end on a 20-byte boundary.
    TruncatedScrape,
    /// A scrape request with no info_hash (exactly 16 bytes).
    NoInfoHash,
    /// A response shorter than its action requires (connect 16, announce 20 bytes), or a
    /// scrape response whose entries do not end on a 12-byte boundary.
    TruncatedResponse,
    /// An announce response whose peer bytes are not a whole number of 6-byte (IPv4) or
    /// 18-byte (IPv6) peers, as asked.
    BadPeerList,
}

impl Error {
    /// A short English text for the error, without a trailing NUL (for action 3 replies and
    /// logs). Stable: clients and tests may match on it.
    pub const fn text(&self) -> &'static str {
        match self {
            Error::TooShort => "packet too short",
            Error::BadMagic => "bad protocol_id in connect",
            Error::UnknownAction(_) => "unknown action",
            Error::TruncatedAnnounce => "announce shorter than 98 bytes",
            Error::BadEvent => "invalid event",
            Error::BadOption => "malformed BEP 41 option",
            Error::TruncatedScrape => "scrape has a partial info_hash",
            Error::NoInfoHash => "scrape without info_hash",
            Error::TruncatedResponse => "response truncated",
            Error::BadPeerList => "peer list length is not a whole number of peers",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnknownAction(action) => write!(f, "{} {action}", self.text()),
            _ => f.write_str(self.text()),
        }
    }
}

impl std::error::Error for Error {}

/// Byte ranges of the fields (BEP 15). Request fields first, then response fields (`R_`),
/// then the fields of one scrape response entry (`E_`, relative to the entry).
mod field {
    pub type Field = core::ops::Range<usize>;
    pub type Rest = core::ops::RangeFrom<usize>;

    pub const CONNECTION_ID: Field = 0..8;
    pub const ACTION: Field = 8..12;
    pub const TRANSACTION_ID: Field = 12..16;

    pub const INFO_HASH: Field = 16..36;
    pub const PEER_ID: Field = 36..56;
    pub const DOWNLOADED: Field = 56..64;
    pub const LEFT: Field = 64..72;
    pub const UPLOADED: Field = 72..80;
    pub const EVENT: Field = 80..84;
    pub const IP: Field = 84..88;
    pub const KEY: Field = 88..92;
    pub const NUM_WANT: Field = 92..96;
    pub const PORT: Field = 96..98;
    pub const OPTIONS: Rest = 98..;

    pub const INFO_HASHES: Rest = 16..;

    pub const R_ACTION: Field = 0..4;
    pub const R_TRANSACTION_ID: Field = 4..8;
    pub const R_CONNECTION_ID: Field = 8..16;
    pub const R_INTERVAL: Field = 8..12;
    pub const R_LEECHERS: Field = 12..16;
    pub const R_SEEDERS: Field = 16..20;
    pub const R_PEERS: Rest = 20..;
    pub const R_BODY: Rest = 8..;

    pub const E_SEEDERS: Field = 0..4;
    pub const E_COMPLETED: Field = 4..8;
    pub const E_LEECHERS: Field = 8..12;
}

// Fixed-width big-endian readers and writers. They index the buffer, so they are only called
// on ranges a length check (`check_len`) has already proven present.

fn read_array<const N: usize>(data: &[u8], f: field::Field) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&data[f]);
    out
}

fn read_u16(data: &[u8], f: field::Field) -> u16 {
    u16::from_be_bytes(read_array(data, f))
}

fn read_u32(data: &[u8], f: field::Field) -> u32 {
    u32::from_be_bytes(read_array(data, f))
}

fn read_u64(data: &[u8], f: field::Field) -> u64 {
    u64::from_be_bytes(read_array(data, f))
}

fn write_bytes(data: &mut [u8], f: field::Field, value: &[u8]) {
    data[f].copy_from_slice(value);
}

/// Reads a big-endian u32 at `at` without ever panicking (`None` past the end).
fn get_u32(data: &[u8], at: usize) -> Option<u32> {
    let bytes = data.get(at..at.checked_add(4)?)?;
    let mut out = [0u8; 4];
    out.copy_from_slice(bytes);
    Some(u32::from_be_bytes(out))
}

/// Grows `out` by `len` zero bytes and returns the new tail, for an emitter to fill.
fn append(out: &mut Vec<u8>, len: usize) -> &mut [u8] {
    let start = out.len();
    out.resize(start + len, 0);
    &mut out[start..]
}

/// The connection_id (bytes 0..8) of a request of at least 16 bytes, whatever else it holds.
///
/// For the server to decide about an error reply when the rest does not parse. Returns
/// `None` for datagrams shorter than [`REQUEST_HEADER_LEN`].
pub fn peek_connection_id(buf: &[u8]) -> Option<u64> {
    let bytes = buf.get(field::CONNECTION_ID)?;
    if buf.len() < REQUEST_HEADER_LEN {
        return None;
    }
    let mut out = [0u8; 8];
    out.copy_from_slice(bytes);
    Some(u64::from_be_bytes(out))
}

/// The action (bytes 8..12) of a request of at least 16 bytes, known or not.
/// Returns `None` for datagrams shorter than [`REQUEST_HEADER_LEN`].
pub fn peek_action(buf: &[u8]) -> Option<u32> {
    if buf.len() < REQUEST_HEADER_LEN {
        return None;
    }
    get_u32(buf, field::ACTION.start)
}

/// The transaction_id (bytes 12..16) of a request of at least 16 bytes, whatever else it
/// holds: the value an error reply must echo (BEP 15). Returns `None` for datagrams shorter
/// than [`REQUEST_HEADER_LEN`].
pub fn peek_transaction_id(buf: &[u8]) -> Option<u32> {
    if buf.len() < REQUEST_HEADER_LEN {
        return None;
    }
    get_u32(buf, field::TRANSACTION_ID.start)
}

#[cfg(test)]
mod tests;
