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

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use crate::types::{Event, InfoHash, PeerId};

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

// ---------------------------------------------------------------------------------------------
// Request view
// ---------------------------------------------------------------------------------------------

/// A typed view over a request datagram (client to tracker, BEP 15).
///
/// [`RequestPacket::new_checked`] proves the length its action needs: 16 bytes for every
/// request and 98 for an announce. The header accessors (`connection_id`, `action`,
/// `transaction_id`) are then always safe; the announce accessors (`info_hash` ... `port`)
/// index bytes 16..98 and panic on a shorter buffer, so call them only when
/// `action() == 1` on a checked packet (as [`AnnounceRequest::parse`] does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> RequestPacket<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> RequestPacket<T> {
        RequestPacket { buffer }
    }

    /// Wraps a buffer, checking that it holds the fields its action needs.
    ///
    /// Errors: [`Error::TooShort`] under 16 bytes, [`Error::TruncatedAnnounce`] for an
    /// announce under 98 bytes. Unknown actions are not rejected here.
    pub fn new_checked(buffer: T) -> Result<RequestPacket<T>, Error> {
        let packet = RequestPacket::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the length as [`RequestPacket::new_checked`] does.
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < REQUEST_HEADER_LEN {
            return Err(Error::TooShort);
        }
        if self.action() == Action::Announce as u32 && len < ANNOUNCE_MIN_LEN {
            return Err(Error::TruncatedAnnounce);
        }
        Ok(())
    }

    /// Returns the wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Bytes 0..8: the connection_id; in a connect request the magic [`PROTOCOL_ID`].
    pub fn connection_id(&self) -> u64 {
        read_u64(self.buffer.as_ref(), field::CONNECTION_ID)
    }

    /// Bytes 8..12: the action (0 connect, 1 announce, 2 scrape), not validated.
    pub fn action(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::ACTION)
    }

    /// Bytes 12..16: the transaction_id chosen by the client, echoed in the reply.
    pub fn transaction_id(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::TRANSACTION_ID)
    }

    /// Announce bytes 16..36: the info_hash.
    pub fn info_hash(&self) -> InfoHash {
        read_array(self.buffer.as_ref(), field::INFO_HASH)
    }

    /// Announce bytes 36..56: the peer_id.
    pub fn peer_id(&self) -> PeerId {
        read_array(self.buffer.as_ref(), field::PEER_ID)
    }

    /// Announce bytes 56..64: bytes downloaded this session.
    pub fn downloaded(&self) -> u64 {
        read_u64(self.buffer.as_ref(), field::DOWNLOADED)
    }

    /// Announce bytes 64..72: bytes left to download (0 = seeder).
    pub fn left(&self) -> u64 {
        read_u64(self.buffer.as_ref(), field::LEFT)
    }

    /// Announce bytes 72..80: bytes uploaded this session.
    pub fn uploaded(&self) -> u64 {
        read_u64(self.buffer.as_ref(), field::UPLOADED)
    }

    /// Announce bytes 80..84: the raw event (0 none, 1 completed, 2 started, 3 stopped).
    pub fn event(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::EVENT)
    }

    /// Announce bytes 84..88: the IPv4 address the client asks for (0 = the source address).
    pub fn ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_array::<4>(self.buffer.as_ref(), field::IP))
    }

    /// Announce bytes 88..92: the client's key.
    pub fn key(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::KEY)
    }

    /// Announce bytes 92..96: numwant, signed (-1 = the tracker's default).
    pub fn num_want(&self) -> i32 {
        i32::from_be_bytes(read_array(self.buffer.as_ref(), field::NUM_WANT))
    }

    /// Announce bytes 96..98: the port the client listens on.
    pub fn port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::PORT)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> RequestPacket<&'a T> {
    /// Announce bytes 98..: the raw BEP 41 options (empty if there are none).
    pub fn options(&self) -> &'a [u8] {
        self.buffer.as_ref().get(field::OPTIONS).unwrap_or(&[])
    }

    /// Scrape bytes 16..: the raw info_hash list (empty if there is none).
    pub fn info_hashes(&self) -> &'a [u8] {
        self.buffer.as_ref().get(field::INFO_HASHES).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> RequestPacket<T> {
    /// Sets bytes 0..8 (connection_id, or [`PROTOCOL_ID`] in a connect request).
    pub fn set_connection_id(&mut self, value: u64) {
        write_bytes(
            self.buffer.as_mut(),
            field::CONNECTION_ID,
            &value.to_be_bytes(),
        );
    }

    /// Sets bytes 8..12 (action).
    pub fn set_action(&mut self, value: u32) {
        write_bytes(self.buffer.as_mut(), field::ACTION, &value.to_be_bytes());
    }

    /// Sets bytes 12..16 (transaction_id).
    pub fn set_transaction_id(&mut self, value: u32) {
        write_bytes(
            self.buffer.as_mut(),
            field::TRANSACTION_ID,
            &value.to_be_bytes(),
        );
    }

    /// Sets announce bytes 16..36 (info_hash).
    pub fn set_info_hash(&mut self, value: &InfoHash) {
        write_bytes(self.buffer.as_mut(), field::INFO_HASH, value);
    }

    /// Sets announce bytes 36..56 (peer_id).
    pub fn set_peer_id(&mut self, value: &PeerId) {
        write_bytes(self.buffer.as_mut(), field::PEER_ID, value);
    }

    /// Sets announce bytes 56..64 (downloaded, bytes).
    pub fn set_downloaded(&mut self, value: u64) {
        write_bytes(
            self.buffer.as_mut(),
            field::DOWNLOADED,
            &value.to_be_bytes(),
        );
    }

    /// Sets announce bytes 64..72 (left, bytes).
    pub fn set_left(&mut self, value: u64) {
        write_bytes(self.buffer.as_mut(), field::LEFT, &value.to_be_bytes());
    }

    /// Sets announce bytes 72..80 (uploaded, bytes).
    pub fn set_uploaded(&mut self, value: u64) {
        write_bytes(self.buffer.as_mut(), field::UPLOADED, &value.to_be_bytes());
    }

    /// Sets announce bytes 80..84 (raw event).
    pub fn set_event(&mut self, value: u32) {
        write_bytes(self.buffer.as_mut(), field::EVENT, &value.to_be_bytes());
    }

    /// Sets announce bytes 84..88 (ip).
    pub fn set_ip(&mut self, value: Ipv4Addr) {
        write_bytes(self.buffer.as_mut(), field::IP, &value.octets());
    }

    /// Sets announce bytes 88..92 (key).
    pub fn set_key(&mut self, value: u32) {
        write_bytes(self.buffer.as_mut(), field::KEY, &value.to_be_bytes());
    }

    /// Sets announce bytes 92..96 (numwant).
    pub fn set_num_want(&mut self, value: i32) {
        write_bytes(self.buffer.as_mut(), field::NUM_WANT, &value.to_be_bytes());
    }

    /// Sets announce bytes 96..98 (port).
    pub fn set_port(&mut self, value: u16) {
        write_bytes(self.buffer.as_mut(), field::PORT, &value.to_be_bytes());
    }
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

/// A parsed request (client to tracker), see [`parse_request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// Action 0.
    Connect(ConnectRequest),
    /// Action 1.
    Announce(AnnounceRequest<'a>),
    /// Action 2.
    Scrape(ScrapeRequest<'a>),
}

/// Parses any request datagram, dispatching on the action at bytes 8..12 (BEP 15).
///
/// Errors: [`Error::TooShort`] under 16 bytes; [`Error::UnknownAction`] for actions other
/// than 0, 1, 2; otherwise the errors of [`ConnectRequest::parse`],
/// [`AnnounceRequest::parse`] and [`ScrapeRequest::parse`]. The connection_id of announce
/// and scrape is returned, not checked: that is the server's job.
pub fn parse_request(buf: &[u8]) -> Result<Request<'_>, Error> {
    let packet = RequestPacket::new_checked(buf)?;
    match Action::from_u32(packet.action()) {
        Some(Action::Connect) => ConnectRequest::parse(&packet).map(Request::Connect),
        Some(Action::Announce) => AnnounceRequest::parse(&packet).map(Request::Announce),
        Some(Action::Scrape) => ScrapeRequest::parse(&packet).map(Request::Scrape),
        _ => Err(Error::UnknownAction(packet.action())),
    }
}

impl Request<'_> {
    /// The transaction_id of the request, to echo in the reply.
    pub fn transaction_id(&self) -> u32 {
        match self {
            Request::Connect(r) => r.transaction_id,
            Request::Announce(r) => r.transaction_id,
            Request::Scrape(r) => r.transaction_id,
        }
    }

    /// Appends the request to `out`; returns the number of bytes appended.
    pub fn emit(&self, out: &mut Vec<u8>) -> usize {
        match self {
            Request::Connect(r) => r.emit(out),
            Request::Announce(r) => r.emit(out),
            Request::Scrape(r) => r.emit(out),
        }
    }
}

/// A connect request (BEP 15, action 0): 16 bytes, `PROTOCOL_ID, 0, transaction_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectRequest {
    /// Chosen by the client, echoed in the reply.
    pub transaction_id: u32,
}

impl ConnectRequest {
    /// Parses a checked packet whose action is 0. Bytes after the 16th are ignored.
    ///
    /// Errors: [`Error::BadMagic`] if bytes 0..8 are not [`PROTOCOL_ID`];
    /// [`Error::UnknownAction`] if the action is not 0.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &RequestPacket<&T>) -> Result<Self, Error> {
        packet.check_len()?;
        if packet.action() != Action::Connect as u32 {
            return Err(Error::UnknownAction(packet.action()));
        }
        if packet.connection_id() != PROTOCOL_ID {
            return Err(Error::BadMagic);
        }
        Ok(ConnectRequest {
            transaction_id: packet.transaction_id(),
        })
    }

    /// Length in bytes of the emitted request: 16.
    pub const fn buffer_len(&self) -> usize {
        CONNECT_REQUEST_LEN
    }

    /// Appends the 16-byte request to `out`; returns 16.
    pub fn emit(&self, out: &mut Vec<u8>) -> usize {
        let mut packet = RequestPacket::new_unchecked(append(out, CONNECT_REQUEST_LEN));
        packet.set_connection_id(PROTOCOL_ID);
        packet.set_action(Action::Connect as u32);
        packet.set_transaction_id(self.transaction_id);
        CONNECT_REQUEST_LEN
    }
}

/// An announce request (BEP 15, action 1): 98 bytes of fixed fields, then optional BEP 41
/// options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnounceRequest<'a> {
    /// The connection_id the tracker gave this client (not checked by the parser).
    pub connection_id: u64,
    /// Chosen by the client, echoed in the reply.
    pub transaction_id: u32,
    /// The swarm announced to.
    pub info_hash: InfoHash,
    /// The client's peer_id.
    pub peer_id: PeerId,
    /// Bytes downloaded this session.
    pub downloaded: u64,
    /// Bytes left to download; 0 makes the peer a seeder.
    pub left: u64,
    /// Bytes uploaded this session.
    pub uploaded: u64,
    /// The event (wire values 0..=3).
    pub event: Event,
    /// The IPv4 address the client asks to be listed at; `0.0.0.0` = the source address.
    /// (opentracker ignores it and always uses the source address.)
    pub ip: Ipv4Addr,
    /// The client's key.
    pub key: u32,
    /// numwant: how many peers the client wants; -1 = the tracker's default.
    pub num_want: i32,
    /// The port the client listens on (host order here, network order on the wire).
    pub port: u16,
    /// The BEP 41 options after byte 98, validated.
    pub options: AnnounceOptions<'a>,
}

impl<'a> AnnounceRequest<'a> {
    /// Parses a packet whose action is 1.
    ///
    /// Errors: [`Error::TooShort`] / [`Error::TruncatedAnnounce`] (under 16 / 98 bytes),
    /// [`Error::UnknownAction`] if the action is not 1, [`Error::BadEvent`] for an event
    /// above 3, [`Error::BadOption`] for a truncated BEP 41 option.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &RequestPacket<&'a T>,
    ) -> Result<AnnounceRequest<'a>, Error> {
        packet.check_len()?;
        if packet.action() != Action::Announce as u32 {
            return Err(Error::UnknownAction(packet.action()));
        }
        let event = match packet.event() {
            0 => Event::None,
            1 => Event::Completed,
            2 => Event::Started,
            3 => Event::Stopped,
            _ => return Err(Error::BadEvent),
        };
        Ok(AnnounceRequest {
            connection_id: packet.connection_id(),
            transaction_id: packet.transaction_id(),
            info_hash: packet.info_hash(),
            peer_id: packet.peer_id(),
            downloaded: packet.downloaded(),
            left: packet.left(),
            uploaded: packet.uploaded(),
            event,
            ip: packet.ip(),
            key: packet.key(),
            num_want: packet.num_want(),
            port: packet.port(),
            options: AnnounceOptions::parse(packet.options())?,
        })
    }

    /// Length in bytes of the emitted request: 98 + the options' length.
    pub fn buffer_len(&self) -> usize {
        ANNOUNCE_MIN_LEN + self.options.as_bytes().len()
    }

    /// Appends the request (options copied verbatim) to `out`; returns its length.
    pub fn emit(&self, out: &mut Vec<u8>) -> usize {
        let len = self.buffer_len();
        let buf = append(out, len);
        let mut packet = RequestPacket::new_unchecked(&mut *buf);
        packet.set_connection_id(self.connection_id);
        packet.set_action(Action::Announce as u32);
        packet.set_transaction_id(self.transaction_id);
        packet.set_info_hash(&self.info_hash);
        packet.set_peer_id(&self.peer_id);
        packet.set_downloaded(self.downloaded);
        packet.set_left(self.left);
        packet.set_uploaded(self.uploaded);
        packet.set_event(self.event as u32);
        packet.set_ip(self.ip);
        packet.set_key(self.key);
        packet.set_num_want(self.num_want);
        packet.set_port(self.port);
        buf[field::OPTIONS].copy_from_slice(self.options.as_bytes());
        len
    }
}

/// BEP 41 option type `0x0`: EndOfOptions, one byte; option parsing stops here.
pub const OPTION_END: u8 = 0x0;
/// BEP 41 option type `0x1`: NOP, one byte (padding).
pub const OPTION_NOP: u8 = 0x1;
/// BEP 41 option type `0x2`: URLData, then a length byte and that many bytes of the tracker
/// URL's path and query; several URLData options are concatenated in order.
pub const OPTION_URL_DATA: u8 = 0x2;

/// One BEP 41 option of an announce request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnounceOption<'a> {
    /// Type 0x1, padding.
    Nop,
    /// Type 0x2: a chunk of the announce URL's path and query (at most 255 bytes).
    UrlData(&'a [u8]),
    /// Any other type except 0x0, skipped by its length byte as BEP 41 allows for future
    /// options: `(type, data)`.
    Unknown(u8, &'a [u8]),
}

/// The BEP 41 options of an announce request: the bytes after byte 98, known to be well
/// formed (every length byte and its data present before the end or an EndOfOptions).
///
/// Bytes after an EndOfOptions (0x0) are ignored but kept, so emit after parse is exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AnnounceOptions<'a> {
    raw: &'a [u8],
}

impl<'a> AnnounceOptions<'a> {
    /// No options.
    pub const EMPTY: AnnounceOptions<'static> = AnnounceOptions { raw: &[] };

    /// Validates raw option bytes (BEP 41): 0x0 ends the options, 0x1 is one byte, every
    /// other type is followed by a length byte and that many data bytes.
    ///
    /// Errors: [`Error::BadOption`] if a length byte or data runs past the end.
    pub fn parse(raw: &'a [u8]) -> Result<AnnounceOptions<'a>, Error> {
        let mut iter = OptionIter { rest: raw };
        while let Some(option) = iter.next_option() {
            option?;
        }
        Ok(AnnounceOptions { raw })
    }

    /// The raw bytes, as received.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }

    /// True when there are no option bytes at all.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The options in order, up to the first EndOfOptions.
    pub fn iter(&self) -> OptionIter<'a> {
        OptionIter { rest: self.raw }
    }

    /// The URLData chunks in order; concatenated they are the path and query of the announce
    /// URL (e.g. `/announce?key=abc`, BEP 41). Not copied.
    pub fn url_data(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.iter().filter_map(|option| match option {
            AnnounceOption::UrlData(chunk) => Some(chunk),
            _ => None,
        })
    }

    /// Total length in bytes of the URL data (sum of the URLData chunks).
    pub fn url_data_len(&self) -> usize {
        self.url_data().map(<[u8]>::len).sum()
    }

    /// Appends `url` (path and query) as URLData options of at most 255 bytes each, for a
    /// client building a request; returns the number of bytes appended. No EndOfOptions is
    /// added (the end of the datagram ends the options).
    pub fn emit_url_data(url: &[u8], out: &mut Vec<u8>) -> usize {
        let start = out.len();
        for chunk in url.chunks(u8::MAX as usize) {
            out.push(OPTION_URL_DATA);
            out.push(chunk.len() as u8);
            out.extend_from_slice(chunk);
        }
        out.len() - start
    }
}

impl<'a> IntoIterator for AnnounceOptions<'a> {
    type Item = AnnounceOption<'a>;
    type IntoIter = OptionIter<'a>;
    fn into_iter(self) -> OptionIter<'a> {
        self.iter()
    }
}

/// Iterator over the BEP 41 options of an [`AnnounceOptions`]; ends at EndOfOptions or at the
/// end of the bytes. Yields nothing past a malformed option (which a parsed
/// [`AnnounceOptions`] cannot hold).
#[derive(Debug, Clone)]
pub struct OptionIter<'a> {
    rest: &'a [u8],
}

impl<'a> OptionIter<'a> {
    fn next_option(&mut self) -> Option<Result<AnnounceOption<'a>, Error>> {
        let (&kind, after_kind) = self.rest.split_first()?;
        match kind {
            OPTION_END => {
                self.rest = &[];
                None
            }
            OPTION_NOP => {
                self.rest = after_kind;
                Some(Ok(AnnounceOption::Nop))
            }
            _ => {
                let Some((&len, after_len)) = after_kind.split_first() else {
                    self.rest = &[];
                    return Some(Err(Error::BadOption));
                };
                let Some(data) = after_len.get(..len as usize) else {
                    self.rest = &[];
                    return Some(Err(Error::BadOption));
                };
                self.rest = after_len.get(len as usize..).unwrap_or(&[]);
                Some(Ok(if kind == OPTION_URL_DATA {
                    AnnounceOption::UrlData(data)
                } else {
                    AnnounceOption::Unknown(kind, data)
                }))
            }
        }
    }
}

impl<'a> Iterator for OptionIter<'a> {
    type Item = AnnounceOption<'a>;
    fn next(&mut self) -> Option<AnnounceOption<'a>> {
        self.next_option()?.ok()
    }
}

/// A scrape request (BEP 15, action 2): the header then 20-byte info_hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScrapeRequest<'a> {
    /// The connection_id the tracker gave this client (not checked by the parser).
    pub connection_id: u64,
    /// Chosen by the client, echoed in the reply.
    pub transaction_id: u32,
    /// The info_hashes, in request order, all of them: the server truncates to its maximum
    /// (see [`MAX_SCRAPE_HASHES_PER_DATAGRAM`] and [`InfoHashes::truncated`]).
    pub info_hashes: InfoHashes<'a>,
}

impl<'a> ScrapeRequest<'a> {
    /// Parses a packet whose action is 2.
    ///
    /// Errors: [`Error::TooShort`] under 16 bytes, [`Error::UnknownAction`] if the action is
    /// not 2, [`Error::NoInfoHash`] at exactly 16 bytes, [`Error::TruncatedScrape`] if the
    /// hashes do not end on a 20-byte boundary.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &RequestPacket<&'a T>,
    ) -> Result<ScrapeRequest<'a>, Error> {
        packet.check_len()?;
        if packet.action() != Action::Scrape as u32 {
            return Err(Error::UnknownAction(packet.action()));
        }
        Ok(ScrapeRequest {
            connection_id: packet.connection_id(),
            transaction_id: packet.transaction_id(),
            info_hashes: InfoHashes::new(packet.info_hashes())?,
        })
    }

    /// Length in bytes of the emitted request: 16 + 20 per info_hash.
    pub fn buffer_len(&self) -> usize {
        REQUEST_HEADER_LEN + self.info_hashes.as_bytes().len()
    }

    /// Appends the request to `out`; returns its length.
    pub fn emit(&self, out: &mut Vec<u8>) -> usize {
        let len = self.buffer_len();
        let buf = append(out, len);
        let mut packet = RequestPacket::new_unchecked(&mut *buf);
        packet.set_connection_id(self.connection_id);
        packet.set_action(Action::Scrape as u32);
        packet.set_transaction_id(self.transaction_id);
        buf[field::INFO_HASHES].copy_from_slice(self.info_hashes.as_bytes());
        len
    }
}

/// A non-empty list of 20-byte info_hashes borrowed from a scrape request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InfoHashes<'a> {
    raw: &'a [u8],
}

impl<'a> InfoHashes<'a> {
    /// Wraps raw hash bytes.
    ///
    /// Errors: [`Error::NoInfoHash`] if empty, [`Error::TruncatedScrape`] if the length is not
    /// a multiple of 20.
    pub fn new(raw: &'a [u8]) -> Result<InfoHashes<'a>, Error> {
        if raw.is_empty() {
            Err(Error::NoInfoHash)
        } else if raw.len() % INFO_HASH_LEN != 0 {
            Err(Error::TruncatedScrape)
        } else {
            Ok(InfoHashes { raw })
        }
    }

    /// Borrows a list of hashes (for building a request); `None` if `hashes` is empty.
    pub fn from_hashes(hashes: &'a [InfoHash]) -> Option<InfoHashes<'a>> {
        (!hashes.is_empty()).then_some(InfoHashes {
            raw: hashes.as_flattened(),
        })
    }

    /// Number of info_hashes (at least 1).
    pub fn count(&self) -> usize {
        self.raw.len() / INFO_HASH_LEN
    }

    /// The `index`-th info_hash in request order.
    pub fn get(&self, index: usize) -> Option<&'a InfoHash> {
        let start = index.checked_mul(INFO_HASH_LEN)?;
        let bytes = self.raw.get(start..start.checked_add(INFO_HASH_LEN)?)?;
        bytes.try_into().ok()
    }

    /// The info_hashes in request order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'a InfoHash> + 'a {
        // `chunks_exact` never yields a short chunk, so the conversion never fails; the
        // unreachable fallback keeps this free of panics without losing `ExactSizeIterator`.
        const ZERO: InfoHash = [0; INFO_HASH_LEN];
        let raw = self.raw;
        raw.chunks_exact(INFO_HASH_LEN)
            .map(|chunk| <&InfoHash>::try_from(chunk).unwrap_or(&ZERO))
    }

    /// The first `max` hashes (all of them if there are fewer; at least one even if `max` is
    /// 0, since the list is never empty).
    pub fn truncated(&self, max: usize) -> InfoHashes<'a> {
        let keep = max.clamp(1, self.count()) * INFO_HASH_LEN;
        InfoHashes {
            raw: self.raw.get(..keep).unwrap_or(self.raw),
        }
    }

    /// The raw bytes: `count() * 20`.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }
}

// ---------------------------------------------------------------------------------------------
// Response view
// ---------------------------------------------------------------------------------------------

/// A typed view over a response datagram (tracker to client, BEP 15).
///
/// [`ResponsePacket::new_checked`] proves the length its action needs (8 bytes for every
/// response, 16 for connect, 20 for announce). `connection_id` needs 16 bytes and
/// `interval`/`leechers`/`seeders` 20: they panic on a shorter buffer, so call them only for
/// the matching action on a checked packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponsePacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ResponsePacket<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> ResponsePacket<T> {
        ResponsePacket { buffer }
    }

    /// Wraps a buffer, checking the length its action needs.
    ///
    /// Errors: [`Error::TooShort`] under 8 bytes, [`Error::TruncatedResponse`] for a connect
    /// under 16 or an announce under 20 bytes, or scrape entries not a multiple of 12 bytes.
    pub fn new_checked(buffer: T) -> Result<ResponsePacket<T>, Error> {
        let packet = ResponsePacket::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the length as [`ResponsePacket::new_checked`] does.
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < RESPONSE_HEADER_LEN {
            return Err(Error::TooShort);
        }
        let ok = match Action::from_u32(self.action()) {
            Some(Action::Connect) => len >= CONNECT_RESPONSE_LEN,
            Some(Action::Announce) => len >= ANNOUNCE_RESPONSE_HEADER_LEN,
            Some(Action::Scrape) => (len - RESPONSE_HEADER_LEN) % SCRAPE_ENTRY_LEN == 0,
            Some(Action::Error) | None => true,
        };
        if ok {
            Ok(())
        } else {
            Err(Error::TruncatedResponse)
        }
    }

    /// Returns the wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Bytes 0..4: the action (0 connect, 1 announce, 2 scrape, 3 error).
    pub fn action(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::R_ACTION)
    }

    /// Bytes 4..8: the transaction_id echoed from the request.
    pub fn transaction_id(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::R_TRANSACTION_ID)
    }

    /// Connect bytes 8..16: the connection_id.
    pub fn connection_id(&self) -> u64 {
        read_u64(self.buffer.as_ref(), field::R_CONNECTION_ID)
    }

    /// Announce bytes 8..12: the interval in seconds.
    pub fn interval(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::R_INTERVAL)
    }

    /// Announce bytes 12..16: the number of leechers in the swarm.
    pub fn leechers(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::R_LEECHERS)
    }

    /// Announce bytes 16..20: the number of seeders in the swarm.
    pub fn seeders(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::R_SEEDERS)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> ResponsePacket<&'a T> {
    /// Announce bytes 20..: the packed peers (empty if none).
    pub fn peers(&self) -> &'a [u8] {
        self.buffer.as_ref().get(field::R_PEERS).unwrap_or(&[])
    }

    /// Bytes 8..: scrape entries or the error message (empty if none).
    pub fn body(&self) -> &'a [u8] {
        self.buffer.as_ref().get(field::R_BODY).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ResponsePacket<T> {
    /// Sets bytes 0..4 (action).
    pub fn set_action(&mut self, value: u32) {
        write_bytes(self.buffer.as_mut(), field::R_ACTION, &value.to_be_bytes());
    }

    /// Sets bytes 4..8 (transaction_id).
    pub fn set_transaction_id(&mut self, value: u32) {
        write_bytes(
            self.buffer.as_mut(),
            field::R_TRANSACTION_ID,
            &value.to_be_bytes(),
        );
    }

    /// Sets connect bytes 8..16 (connection_id).
    pub fn set_connection_id(&mut self, value: u64) {
        write_bytes(
            self.buffer.as_mut(),
            field::R_CONNECTION_ID,
            &value.to_be_bytes(),
        );
    }

    /// Sets announce bytes 8..12 (interval, seconds).
    pub fn set_interval(&mut self, value: u32) {
        write_bytes(
            self.buffer.as_mut(),
            field::R_INTERVAL,
            &value.to_be_bytes(),
        );
    }

    /// Sets announce bytes 12..16 (leechers).
    pub fn set_leechers(&mut self, value: u32) {
        write_bytes(
            self.buffer.as_mut(),
            field::R_LEECHERS,
            &value.to_be_bytes(),
        );
    }

    /// Sets announce bytes 16..20 (seeders).
    pub fn set_seeders(&mut self, value: u32) {
        write_bytes(self.buffer.as_mut(), field::R_SEEDERS, &value.to_be_bytes());
    }
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/// A parsed response (tracker to client), see [`parse_response`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response<'a> {
    /// Action 0.
    Connect(ConnectResponse),
    /// Action 1.
    Announce(AnnounceResponse<'a>),
    /// Action 2.
    Scrape(ScrapeResponse<'a>),
    /// Action 3.
    Error(ErrorResponse<'a>),
}

/// Parses any response datagram, dispatching on the action at bytes 0..4 (BEP 15). For the
/// load generator and tests.
///
/// Errors: [`Error::TooShort`] under 8 bytes, [`Error::UnknownAction`] for actions above 3,
/// [`Error::TruncatedResponse`] (see [`ResponsePacket::new_checked`]). Note that
/// opentracker's 8-byte announce reply for a refused info_hash is `TruncatedResponse`.
pub fn parse_response(buf: &[u8]) -> Result<Response<'_>, Error> {
    let packet = ResponsePacket::new_checked(buf)?;
    match Action::from_u32(packet.action()) {
        Some(Action::Connect) => ConnectResponse::parse(&packet).map(Response::Connect),
        Some(Action::Announce) => AnnounceResponse::parse(&packet).map(Response::Announce),
        Some(Action::Scrape) => ScrapeResponse::parse(&packet).map(Response::Scrape),
        Some(Action::Error) => ErrorResponse::parse(&packet).map(Response::Error),
        None => Err(Error::UnknownAction(packet.action())),
    }
}

impl Response<'_> {
    /// The transaction_id echoed by the tracker.
    pub fn transaction_id(&self) -> u32 {
        match self {
            Response::Connect(r) => r.transaction_id,
            Response::Announce(r) => r.transaction_id,
            Response::Scrape(r) => r.transaction_id,
            Response::Error(r) => r.transaction_id,
        }
    }

    /// Appends the response to `out`; returns the number of bytes appended.
    pub fn emit(&self, out: &mut Vec<u8>) -> usize {
        match self {
            Response::Connect(r) => r.emit(out),
            Response::Announce(r) => r.emit(out),
            Response::Scrape(r) => r.emit(out),
            Response::Error(r) => r.emit(out),
        }
    }
}

/// Checks the length and that the action is `want`.
fn check_response<T: AsRef<[u8]> + ?Sized>(
    packet: &ResponsePacket<&T>,
    want: Action,
) -> Result<(), Error> {
    packet.check_len()?;
    if packet.action() != want as u32 {
        return Err(Error::UnknownAction(packet.action()));
    }
    Ok(())
}

/// A connect response (BEP 15, action 0): 16 bytes, `0, transaction_id, connection_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectResponse {
    /// Echoed from the request.
    pub transaction_id: u32,
    /// The id the client must send in its announces and scrapes.
    pub connection_id: u64,
}

impl ConnectResponse {
    /// Parses a packet whose action is 0. Bytes after the 16th are ignored.
    ///
    /// Errors: as [`ResponsePacket::new_checked`]; [`Error::UnknownAction`] if the action is
    /// not 0.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &ResponsePacket<&T>) -> Result<Self, Error> {
        check_response(packet, Action::Connect)?;
        Ok(ConnectResponse {
            transaction_id: packet.transaction_id(),
            connection_id: packet.connection_id(),
        })
    }

    /// Length in bytes of the emitted response: 16.
    pub const fn buffer_len(&self) -> usize {
        CONNECT_RESPONSE_LEN
    }

    /// Appends the 16-byte response to `out`; returns 16.
    pub fn emit(&self, out: &mut Vec<u8>) -> usize {
        let mut packet = ResponsePacket::new_unchecked(append(out, CONNECT_RESPONSE_LEN));
        packet.set_action(Action::Connect as u32);
        packet.set_transaction_id(self.transaction_id);
        packet.set_connection_id(self.connection_id);
        CONNECT_RESPONSE_LEN
    }
}

/// An announce response (BEP 15, action 1): 20 bytes, then compact peers.
///
/// The peers are passed already packed: 6 bytes per IPv4 peer or 18 per IPv6 peer (address
/// then port, network order), never mixed in one response. To write the peers straight into
/// the output buffer, emit with `peers: &[]` (the 20-byte header) and append them after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnounceResponse<'a> {
    /// Echoed from the request.
    pub transaction_id: u32,
    /// Seconds the client should wait before the next announce.
    pub interval: u32,
    /// Leechers in the swarm.
    pub leechers: u32,
    /// Seeders in the swarm.
    pub seeders: u32,
    /// Packed peers, 6 or 18 bytes each.
    pub peers: &'a [u8],
}

impl<'a> AnnounceResponse<'a> {
    /// Parses a packet whose action is 1. The peer bytes are not interpreted here: the
    /// family depends on the socket, see [`peers_v4`](Self::peers_v4) and
    /// [`peers_v6`](Self::peers_v6).
    ///
    /// Errors: as [`ResponsePacket::new_checked`]; [`Error::UnknownAction`] if the action is
    /// not 1.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &ResponsePacket<&'a T>,
    ) -> Result<AnnounceResponse<'a>, Error> {
        check_response(packet, Action::Announce)?;
        Ok(AnnounceResponse {
            transaction_id: packet.transaction_id(),
            interval: packet.interval(),
            leechers: packet.leechers(),
            seeders: packet.seeders(),
            peers: packet.peers(),
        })
    }

    /// The peers read as IPv4 (6 bytes each).
    ///
    /// Errors: [`Error::BadPeerList`] if the length is not a multiple of 6.
    pub fn peers_v4(&self) -> Result<impl ExactSizeIterator<Item = SocketAddrV4> + 'a, Error> {
        if self.peers.len() % PEER_V4_LEN != 0 {
            return Err(Error::BadPeerList);
        }
        Ok(self.peers.chunks_exact(PEER_V4_LEN).map(|chunk| {
            let ip: [u8; 4] = read_array(chunk, 0..4);
            SocketAddrV4::new(Ipv4Addr::from(ip), read_u16(chunk, 4..6))
        }))
    }

    /// The peers read as IPv6 (18 bytes each).
    ///
    /// Errors: [`Error::BadPeerList`] if the length is not a multiple of 18.
    pub fn peers_v6(&self) -> Result<impl ExactSizeIterator<Item = SocketAddrV6> + 'a, Error> {
        if self.peers.len() % PEER_V6_LEN != 0 {
            return Err(Error::BadPeerList);
        }
        Ok(self.peers.chunks_exact(PEER_V6_LEN).map(|chunk| {
            let ip: [u8; 16] = read_array(chunk, 0..16);
            SocketAddrV6::new(Ipv6Addr::from(ip), read_u16(chunk, 16..18), 0, 0)
        }))
    }

    /// Length in bytes of the emitted response: 20 + the peers' length.
    pub fn buffer_len(&self) -> usize {
        ANNOUNCE_RESPONSE_HEADER_LEN + self.peers.len()
    }

    /// Appends the response to `out`; returns its length.
    pub fn emit(&self, out: &mut Vec<u8>) -> usize {
        let len = self.buffer_len();
        let buf = append(out, len);
        let mut packet = ResponsePacket::new_unchecked(&mut *buf);
        packet.set_action(Action::Announce as u32);
        packet.set_transaction_id(self.transaction_id);
        packet.set_interval(self.interval);
        packet.set_leechers(self.leechers);
        packet.set_seeders(self.seeders);
        buf[field::R_PEERS].copy_from_slice(self.peers);
        len
    }
}

/// One entry of a scrape response (BEP 15): 12 bytes, three big-endian u32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ScrapeEntry {
    /// Peers with nothing left to download.
    pub seeders: u32,
    /// Times the torrent was completed (opentracker's `downloaded`).
    pub completed: u32,
    /// Peers still downloading.
    pub leechers: u32,
}

impl ScrapeEntry {
    /// Reads one 12-byte entry; `None` if `bytes` is not exactly 12 bytes long.
    pub fn from_bytes(bytes: &[u8]) -> Option<ScrapeEntry> {
        if bytes.len() != SCRAPE_ENTRY_LEN {
            return None;
        }
        Some(ScrapeEntry {
            seeders: read_u32(bytes, field::E_SEEDERS),
            completed: read_u32(bytes, field::E_COMPLETED),
            leechers: read_u32(bytes, field::E_LEECHERS),
        })
    }

    /// The 12 wire bytes of the entry.
    pub fn to_bytes(&self) -> [u8; SCRAPE_ENTRY_LEN] {
        let mut out = [0u8; SCRAPE_ENTRY_LEN];
        write_bytes(&mut out, field::E_SEEDERS, &self.seeders.to_be_bytes());
        write_bytes(&mut out, field::E_COMPLETED, &self.completed.to_be_bytes());
        write_bytes(&mut out, field::E_LEECHERS, &self.leechers.to_be_bytes());
        out
    }

    /// Appends the 12-byte entry to `out`; returns 12. The server emits a
    /// [`ScrapeResponse`] with no entries (the 8-byte header), then one entry per requested
    /// info_hash in request order (zeros for an unknown torrent).
    pub fn emit(&self, out: &mut Vec<u8>) -> usize {
        out.extend_from_slice(&self.to_bytes());
        SCRAPE_ENTRY_LEN
    }
}

/// A scrape response (BEP 15, action 2): 8 bytes, then one 12-byte [`ScrapeEntry`] per
/// requested info_hash, in request order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScrapeResponse<'a> {
    /// Echoed from the request.
    pub transaction_id: u32,
    /// The packed entries, `12 * n` bytes (n may be 0).
    pub entries: ScrapeEntries<'a>,
}

impl<'a> ScrapeResponse<'a> {
    /// Parses a packet whose action is 2 (zero entries allowed, as opentracker answers a
    /// scrape without hashes).
    ///
    /// Errors: as [`ResponsePacket::new_checked`]; [`Error::UnknownAction`] if the action is
    /// not 2.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &ResponsePacket<&'a T>,
    ) -> Result<ScrapeResponse<'a>, Error> {
        check_response(packet, Action::Scrape)?;
        Ok(ScrapeResponse {
            transaction_id: packet.transaction_id(),
            entries: ScrapeEntries::new(packet.body())?,
        })
    }

    /// Length in bytes of the emitted response: 8 + 12 per entry.
    pub fn buffer_len(&self) -> usize {
        RESPONSE_HEADER_LEN + self.entries.as_bytes().len()
    }

    /// Appends the response to `out`; returns its length.
    pub fn emit(&self, out: &mut Vec<u8>) -> usize {
        let len = self.buffer_len();
        let buf = append(out, len);
        let mut packet = ResponsePacket::new_unchecked(&mut *buf);
        packet.set_action(Action::Scrape as u32);
        packet.set_transaction_id(self.transaction_id);
        buf[field::R_BODY].copy_from_slice(self.entries.as_bytes());
        len
    }
}

/// Packed scrape response entries: a byte slice whose length is a multiple of 12.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScrapeEntries<'a> {
    raw: &'a [u8],
}

impl<'a> ScrapeEntries<'a> {
    /// No entries.
    pub const EMPTY: ScrapeEntries<'static> = ScrapeEntries { raw: &[] };

    /// Wraps packed entries.
    ///
    /// Errors: [`Error::TruncatedResponse`] if the length is not a multiple of 12.
    pub fn new(raw: &'a [u8]) -> Result<ScrapeEntries<'a>, Error> {
        if raw.len() % SCRAPE_ENTRY_LEN != 0 {
            return Err(Error::TruncatedResponse);
        }
        Ok(ScrapeEntries { raw })
    }

    /// Number of entries.
    pub fn count(&self) -> usize {
        self.raw.len() / SCRAPE_ENTRY_LEN
    }

    /// The entries in order (the request's order).
    pub fn iter(&self) -> impl ExactSizeIterator<Item = ScrapeEntry> + 'a {
        let raw = self.raw;
        raw.chunks_exact(SCRAPE_ENTRY_LEN)
            .map(|chunk| ScrapeEntry::from_bytes(chunk).unwrap_or_default())
    }

    /// The raw bytes: `count() * 12`.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }
}

/// An error response (BEP 15, action 3): `3, transaction_id`, then the message.
///
/// Our choice: the message is emitted **without** a NUL terminator (BEP 15 gives it as a
/// string running to the end of the datagram); opentracker appends a NUL. [`Self::parse`]
/// strips one trailing NUL, so both read the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorResponse<'a> {
    /// Echoed from the request.
    pub transaction_id: u32,
    /// The message bytes (normally ASCII, e.g. [`Error::text`]).
    pub message: &'a [u8],
}

impl<'a> ErrorResponse<'a> {
    /// Parses a packet whose action is 3; one trailing NUL is dropped from the message.
    ///
    /// Errors: [`Error::TooShort`] under 8 bytes; [`Error::UnknownAction`] if the action is
    /// not 3.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &ResponsePacket<&'a T>,
    ) -> Result<ErrorResponse<'a>, Error> {
        check_response(packet, Action::Error)?;
        let body = packet.body();
        let message = body.strip_suffix(&[0]).unwrap_or(body);
        Ok(ErrorResponse {
            transaction_id: packet.transaction_id(),
            message,
        })
    }

    /// The message as UTF-8 text, if it is.
    pub fn message_str(&self) -> Option<&'a str> {
        std::str::from_utf8(self.message).ok()
    }

    /// Length in bytes of the emitted response: 8 + the message's length.
    pub fn buffer_len(&self) -> usize {
        RESPONSE_HEADER_LEN + self.message.len()
    }

    /// Appends the response (no NUL) to `out`; returns its length.
    pub fn emit(&self, out: &mut Vec<u8>) -> usize {
        let len = self.buffer_len();
        let buf = append(out, len);
        let mut packet = ResponsePacket::new_unchecked(&mut *buf);
        packet.set_action(Action::Error as u32);
        packet.set_transaction_id(self.transaction_id);
        buf[field::R_BODY].copy_from_slice(self.message);
        len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes a hex string, ignoring spaces (test helper).
    fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        assert!(digits.len() % 2 == 0, "odd hex string");
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect()
    }

    const HASH_A: &str = "11cb1c59d061f1d50de15bfcf01009c4d6eb02e5";
    const HASH_B: &str = "71021a166df5f9f9d74907c6be9aa41b9e1044e9";
    const PEER_ID: &str = "2d5452333030302d6162636465666768696a6b6c"; // "-TR3000-abcdefghijkl"

    /// A 98-byte announce: connection_id c855b5fb1a95a303, transaction_id fe3b4c57,
    /// info_hash HASH_A, peer_id PEER_ID, downloaded 0x1000, left 0x2000, uploaded 0x3000,
    /// event 2 (started), ip 10.0.0.1, key 0xdeadbeef, num_want -1, port 40001.
    fn announce_bytes() -> Vec<u8> {
        hex(&format!(
            "c855b5fb1a95a303 00000001 fe3b4c57 {HASH_A} {PEER_ID}
             0000000000001000 0000000000002000 0000000000003000
             00000002 0a000001 deadbeef ffffffff 9c41"
        ))
    }

    fn announce_repr(options: AnnounceOptions<'_>) -> AnnounceRequest<'_> {
        AnnounceRequest {
            connection_id: 0xc855_b5fb_1a95_a303,
            transaction_id: 0xfe3b_4c57,
            info_hash: hex(HASH_A).try_into().unwrap(),
            peer_id: *b"-TR3000-abcdefghijkl",
            downloaded: 0x1000,
            left: 0x2000,
            uploaded: 0x3000,
            event: Event::Started,
            ip: Ipv4Addr::new(10, 0, 0, 1),
            key: 0xdead_beef,
            num_want: -1,
            port: 40001,
            options,
        }
    }

    fn emitted<F: FnOnce(&mut Vec<u8>) -> usize>(emit: F) -> Vec<u8> {
        let mut out = Vec::new();
        let n = emit(&mut out);
        assert_eq!(n, out.len());
        out
    }

    // ---- constants ----

    #[test]
    fn constants() {
        assert_eq!(
            PROTOCOL_ID.to_be_bytes(),
            [0, 0, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80]
        );
        assert_eq!(PROTOCOL_ID, 0x41727101980);
        assert_eq!(MAX_UDP_PAYLOAD, 1452);
        assert_eq!(MAX_SCRAPE_HASHES_PER_DATAGRAM, 120);
        const { assert!(MAX_SCRAPE_HASHES_PER_DATAGRAM >= 74) };
        // 121 entries would not fit.
        const { assert!(RESPONSE_HEADER_LEN + 121 * SCRAPE_ENTRY_LEN > MAX_UDP_PAYLOAD) };
    }

    // ---- connect ----

    #[test]
    fn connect_request_parse() {
        // Real exchange with opentracker (reference section 18.4).
        let bytes = hex("0000041727101980 00000000 d7f4336a");
        let req = parse_request(&bytes).unwrap();
        assert_eq!(
            req,
            Request::Connect(ConnectRequest {
                transaction_id: 0xd7f4_336a
            })
        );
        assert_eq!(req.transaction_id(), 0xd7f4_336a);
    }

    #[test]
    fn connect_request_ignores_trailing_bytes() {
        let bytes = hex("0000041727101980 00000000 d7f4336a 0102");
        assert!(matches!(parse_request(&bytes), Ok(Request::Connect(_))));
    }

    #[test]
    fn connect_request_emit() {
        let out = emitted(|o| {
            ConnectRequest {
                transaction_id: 0xd7f4_336a,
            }
            .emit(o)
        });
        assert_eq!(out, hex("0000041727101980 00000000 d7f4336a"));
    }

    #[test]
    fn connect_bad_magic() {
        let bytes = hex("0000041727101981 00000000 d7f4336a");
        assert_eq!(parse_request(&bytes), Err(Error::BadMagic));
        let zero = hex("0000000000000000 00000000 d7f4336a");
        assert_eq!(parse_request(&zero), Err(Error::BadMagic));
    }

    #[test]
    fn connect_response_parse_and_emit() {
        let bytes = hex("00000000 d7f4336a c855b5fb1a95a303");
        let want = ConnectResponse {
            transaction_id: 0xd7f4_336a,
            connection_id: 0xc855_b5fb_1a95_a303,
        };
        assert_eq!(parse_response(&bytes), Ok(Response::Connect(want)));
        assert_eq!(emitted(|o| want.emit(o)), bytes);
        assert_eq!(want.buffer_len(), 16);
    }

    #[test]
    fn connect_response_truncated() {
        let bytes = hex("00000000 d7f4336a c855b5fb1a95a3");
        assert_eq!(parse_response(&bytes), Err(Error::TruncatedResponse));
    }

    // ---- announce ----

    #[test]
    fn announce_request_parse() {
        let bytes = announce_bytes();
        assert_eq!(bytes.len(), 98);
        let req = parse_request(&bytes).unwrap();
        assert_eq!(
            req,
            Request::Announce(announce_repr(AnnounceOptions::EMPTY))
        );

        let packet = RequestPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.event(), 2);
        assert_eq!(packet.num_want(), -1);
        assert_eq!(packet.port(), 0x9c41);
        assert_eq!(packet.options(), &[] as &[u8]);
    }

    #[test]
    fn announce_request_emit() {
        let out = emitted(|o| announce_repr(AnnounceOptions::EMPTY).emit(o));
        assert_eq!(out, announce_bytes());
    }

    #[test]
    fn announce_every_event() {
        let mut bytes = announce_bytes();
        for (raw, event) in [
            (0u8, Event::None),
            (1, Event::Completed),
            (2, Event::Started),
            (3, Event::Stopped),
        ] {
            bytes[83] = raw;
            match parse_request(&bytes) {
                Ok(Request::Announce(a)) => assert_eq!(a.event, event),
                other => panic!("event {raw}: {other:?}"),
            }
        }
    }

    #[test]
    fn announce_bad_event() {
        let mut bytes = announce_bytes();
        bytes[83] = 4;
        assert_eq!(parse_request(&bytes), Err(Error::BadEvent));
        bytes[80] = 0x01; // 0x01000004
        assert_eq!(parse_request(&bytes), Err(Error::BadEvent));
    }

    #[test]
    fn announce_truncated() {
        let bytes = announce_bytes();
        assert_eq!(parse_request(&bytes[..97]), Err(Error::TruncatedAnnounce));
        assert_eq!(parse_request(&bytes[..16]), Err(Error::TruncatedAnnounce));
        assert_eq!(
            RequestPacket::new_checked(&bytes[..97]).map(|_| ()),
            Err(Error::TruncatedAnnounce)
        );
    }

    #[test]
    fn announce_num_want_values() {
        let mut bytes = announce_bytes();
        bytes[92..96].copy_from_slice(&hex("000000c8"));
        let Ok(Request::Announce(a)) = parse_request(&bytes) else {
            panic!()
        };
        assert_eq!(a.num_want, 200);
        bytes[92..96].copy_from_slice(&hex("80000000"));
        let Ok(Request::Announce(a)) = parse_request(&bytes) else {
            panic!()
        };
        assert_eq!(a.num_want, i32::MIN);
    }

    #[test]
    fn announce_response_v4() {
        // Real opentracker reply (reference section 18.4): interval 1690, 1 leecher,
        // 0 seeders, peer 127.0.0.1:40001.
        let bytes = hex("00000001 fe3b4c57 0000069a 00000001 00000000 7f000001 9c41");
        let Ok(Response::Announce(a)) = parse_response(&bytes) else {
            panic!("{:?}", parse_response(&bytes))
        };
        assert_eq!(a.transaction_id, 0xfe3b_4c57);
        assert_eq!(a.interval, 1690);
        assert_eq!(a.leechers, 1);
        assert_eq!(a.seeders, 0);
        let peers: Vec<_> = a.peers_v4().unwrap().collect();
        assert_eq!(peers, vec![SocketAddrV4::new(Ipv4Addr::LOCALHOST, 40001)]);
        assert_eq!(a.peers_v6().map(|_| ()), Err(Error::BadPeerList));
        assert_eq!(emitted(|o| a.emit(o)), bytes);
    }

    #[test]
    fn announce_response_v6() {
        let bytes = hex("00000001 00000007 00000708 00000002 00000003
             20010db8000000000000000000000001 1ae1
             00000000000000000000000000000001 c8d5");
        let Ok(Response::Announce(a)) = parse_response(&bytes) else {
            panic!()
        };
        assert_eq!((a.interval, a.leechers, a.seeders), (1800, 2, 3));
        let peers: Vec<_> = a.peers_v6().unwrap().collect();
        assert_eq!(
            peers,
            vec![
                SocketAddrV6::new("2001:db8::1".parse().unwrap(), 6881, 0, 0),
                SocketAddrV6::new(Ipv6Addr::LOCALHOST, 51413, 0, 0),
            ]
        );
        // 36 bytes are also 6 IPv4 peers: the caller says which family it asked on.
        assert_eq!(a.peers_v4().unwrap().len(), 6);
    }

    #[test]
    fn announce_response_header_only_then_peers() {
        let header = AnnounceResponse {
            transaction_id: 1,
            interval: 1800,
            leechers: 0,
            seeders: 1,
            peers: &[],
        };
        let mut out = Vec::new();
        assert_eq!(header.emit(&mut out), 20);
        out.extend_from_slice(&hex("c0a80001 1ae1"));
        assert_eq!(
            out,
            hex("00000001 00000001 00000708 00000000 00000001 c0a80001 1ae1")
        );
    }

    #[test]
    fn announce_response_bad_peers_and_truncated() {
        let bytes = hex("00000001 fe3b4c57 0000069a 00000001 00000000 7f000001 9c");
        let Ok(Response::Announce(a)) = parse_response(&bytes) else {
            panic!()
        };
        assert_eq!(a.peers_v4().map(|_| ()), Err(Error::BadPeerList));
        // opentracker's 8-byte reply for a refused info_hash.
        assert_eq!(
            parse_response(&hex("00000001 a0c2ccaf")),
            Err(Error::TruncatedResponse)
        );
        assert_eq!(
            parse_response(&hex("00000001 a0c2ccaf 0000069a 00000001 000000")),
            Err(Error::TruncatedResponse)
        );
    }

    // ---- BEP 41 options ----

    #[test]
    fn options_url_data_split_in_two_with_nop_and_end() {
        // NOP, URLData "/announce" (9 bytes), URLData "?key=abc" (8 bytes), EndOfOptions,
        // then garbage that must be ignored.
        let mut bytes = announce_bytes();
        bytes.extend_from_slice(&hex(
            "01 02 09 2f616e6e6f756e6365 02 08 3f6b65793d616263 00 ff ff",
        ));
        let Ok(Request::Announce(a)) = parse_request(&bytes) else {
            panic!("{:?}", parse_request(&bytes))
        };
        let options: Vec<_> = a.options.iter().collect();
        assert_eq!(
            options,
            vec![
                AnnounceOption::Nop,
                AnnounceOption::UrlData(b"/announce"),
                AnnounceOption::UrlData(b"?key=abc"),
            ]
        );
        let url: Vec<u8> = a.options.url_data().flatten().copied().collect();
        assert_eq!(url, b"/announce?key=abc");
        assert_eq!(a.options.url_data_len(), 17);
        // Emit keeps the bytes verbatim.
        assert_eq!(emitted(|o| a.emit(o)), bytes);
    }

    #[test]
    fn options_end_of_options_only() {
        let mut bytes = announce_bytes();
        bytes.push(0x00);
        let Ok(Request::Announce(a)) = parse_request(&bytes) else {
            panic!()
        };
        assert_eq!(a.options.iter().count(), 0);
        assert_eq!(a.options.url_data_len(), 0);
        // Trailing zero padding is common and harmless.
        bytes.extend_from_slice(&[0; 4]);
        assert!(parse_request(&bytes).is_ok());
    }

    #[test]
    fn options_unknown_type_skipped() {
        let mut bytes = announce_bytes();
        bytes.extend_from_slice(&hex("07 02 aabb 02 01 2f"));
        let Ok(Request::Announce(a)) = parse_request(&bytes) else {
            panic!()
        };
        let options: Vec<_> = a.options.iter().collect();
        assert_eq!(
            options,
            vec![
                AnnounceOption::Unknown(7, &[0xaa, 0xbb]),
                AnnounceOption::UrlData(b"/")
            ]
        );
    }

    #[test]
    fn options_truncated() {
        let base = announce_bytes();
        // Type without a length byte.
        let mut bytes = base.clone();
        bytes.push(0x02);
        assert_eq!(parse_request(&bytes), Err(Error::BadOption));
        // Length past the end.
        let mut bytes = base.clone();
        bytes.extend_from_slice(&hex("02 09 2f616e6e6f756e63"));
        assert_eq!(parse_request(&bytes), Err(Error::BadOption));
        // A good option then a truncated one.
        let mut bytes = base.clone();
        bytes.extend_from_slice(&hex("01 02 01 2f 05 03 00"));
        assert_eq!(parse_request(&bytes), Err(Error::BadOption));
        // But the same truncation after EndOfOptions is ignored.
        let mut bytes = base;
        bytes.extend_from_slice(&hex("02 01 2f 00 02 09"));
        assert!(parse_request(&bytes).is_ok());
    }

    #[test]
    fn options_emit_url_data_chunks() {
        let mut out = Vec::new();
        assert_eq!(
            AnnounceOptions::emit_url_data(b"/announce?key=abc", &mut out),
            19
        );
        assert_eq!(out, hex("02 11 2f616e6e6f756e63653f6b65793d616263"));

        let long = [b'a'; 300];
        let mut out = Vec::new();
        assert_eq!(AnnounceOptions::emit_url_data(&long, &mut out), 304);
        assert_eq!((out[0], out[1], out[257], out[258]), (2, 255, 2, 45));
        let options = AnnounceOptions::parse(&out).unwrap();
        assert_eq!(options.url_data().count(), 2);
        assert_eq!(options.url_data_len(), 300);
    }

    #[test]
    fn options_url_data_zero_length() {
        let options = AnnounceOptions::parse(&[0x02, 0x00]).unwrap();
        assert_eq!(
            options.iter().collect::<Vec<_>>(),
            vec![AnnounceOption::UrlData(b"")]
        );
    }

    // ---- scrape ----

    #[test]
    fn scrape_request_parse_and_emit() {
        let bytes = hex(&format!(
            "c855b5fb1a95a303 00000002 0badf00d {HASH_A} {HASH_B}"
        ));
        let Ok(Request::Scrape(s)) = parse_request(&bytes) else {
            panic!()
        };
        assert_eq!(s.connection_id, 0xc855_b5fb_1a95_a303);
        assert_eq!(s.transaction_id, 0x0bad_f00d);
        assert_eq!(s.info_hashes.count(), 2);
        let hashes: Vec<&InfoHash> = s.info_hashes.iter().collect();
        assert_eq!(hashes[0].as_slice(), hex(HASH_A));
        assert_eq!(hashes[1].as_slice(), hex(HASH_B));
        assert_eq!(s.info_hashes.get(1).map(|h| h.to_vec()), Some(hex(HASH_B)));
        assert_eq!(s.info_hashes.get(2), None);
        assert_eq!(emitted(|o| s.emit(o)), bytes);

        let one = s.info_hashes.truncated(1);
        assert_eq!(one.count(), 1);
        assert_eq!(one.as_bytes(), hex(HASH_A));
        assert_eq!(s.info_hashes.truncated(0).count(), 1);
        assert_eq!(s.info_hashes.truncated(500).count(), 2);
    }

    #[test]
    fn scrape_request_from_hashes() {
        let hashes: [InfoHash; 2] = [
            hex(HASH_A).try_into().unwrap(),
            hex(HASH_B).try_into().unwrap(),
        ];
        let req = ScrapeRequest {
            connection_id: 1,
            transaction_id: 2,
            info_hashes: InfoHashes::from_hashes(&hashes).unwrap(),
        };
        let out = emitted(|o| req.emit(o));
        assert_eq!(
            out,
            hex(&format!(
                "0000000000000001 00000002 00000002 {HASH_A} {HASH_B}"
            ))
        );
        assert_eq!(InfoHashes::from_hashes(&[]), None);
    }

    #[test]
    fn scrape_no_info_hash() {
        let bytes = hex("c855b5fb1a95a303 00000002 0badf00d");
        assert_eq!(parse_request(&bytes), Err(Error::NoInfoHash));
    }

    #[test]
    fn scrape_truncated() {
        let full = hex(&format!(
            "c855b5fb1a95a303 00000002 0badf00d {HASH_A} {HASH_B}"
        ));
        // One whole hash and a partial one.
        assert_eq!(
            parse_request(&full[..16 + 20 + 19]),
            Err(Error::TruncatedScrape)
        );
        // Only a partial hash.
        assert_eq!(parse_request(&full[..16 + 1]), Err(Error::TruncatedScrape));
    }

    #[test]
    fn scrape_response_parse_and_emit() {
        // (seeders, completed, leechers) = (3,1,1) (1,0,1) (0,0,0), in request order
        // (reference section 18.4).
        let bytes = hex("00000002 0badf00d 00000003 00000001 00000001
             00000001 00000000 00000001 00000000 00000000 00000000");
        let Ok(Response::Scrape(s)) = parse_response(&bytes) else {
            panic!()
        };
        assert_eq!(s.transaction_id, 0x0bad_f00d);
        assert_eq!(s.entries.count(), 3);
        let entries: Vec<_> = s.entries.iter().collect();
        assert_eq!(
            entries,
            vec![
                ScrapeEntry {
                    seeders: 3,
                    completed: 1,
                    leechers: 1
                },
                ScrapeEntry {
                    seeders: 1,
                    completed: 0,
                    leechers: 1
                },
                ScrapeEntry::default(),
            ]
        );
        assert_eq!(emitted(|o| s.emit(o)), bytes);

        // Streaming: header, then one entry per hash.
        let mut out = Vec::new();
        ScrapeResponse {
            transaction_id: 0x0bad_f00d,
            entries: ScrapeEntries::EMPTY,
        }
        .emit(&mut out);
        for e in &entries {
            assert_eq!(e.emit(&mut out), 12);
        }
        assert_eq!(out, bytes);
    }

    #[test]
    fn scrape_response_empty_and_truncated() {
        let bytes = hex("00000002 0badf00d");
        let Ok(Response::Scrape(s)) = parse_response(&bytes) else {
            panic!()
        };
        assert_eq!(s.entries.count(), 0);
        assert_eq!(
            parse_response(&hex("00000002 0badf00d 00000003 00000001 000000")),
            Err(Error::TruncatedResponse)
        );
    }

    // ---- error ----

    #[test]
    fn error_response_emit_no_nul() {
        let e = ErrorResponse {
            transaction_id: 0xd639_4810,
            message: Error::BadEvent.text().as_bytes(),
        };
        let out = emitted(|o| e.emit(o));
        assert_eq!(out, hex("00000003 d6394810 696e76616c6964206576656e74"));
        assert_eq!(parse_response(&out), Ok(Response::Error(e)));
    }

    #[test]
    fn error_response_opentracker_nul_stripped() {
        // opentracker's 33-byte reply (reference section 7), NUL included.
        let mut bytes = hex("00000003 d6394810");
        bytes.extend_from_slice(b"Connection ID missmatch.\0");
        assert_eq!(bytes.len(), 33);
        let Ok(Response::Error(e)) = parse_response(&bytes) else {
            panic!()
        };
        assert_eq!(e.transaction_id, 0xd639_4810);
        assert_eq!(e.message_str(), Some("Connection ID missmatch."));
    }

    #[test]
    fn error_response_empty_message() {
        let bytes = hex("00000003 00000001");
        let Ok(Response::Error(e)) = parse_response(&bytes) else {
            panic!()
        };
        assert_eq!(e.message, b"");
    }

    // ---- dispatch errors and peeks ----

    #[test]
    fn request_too_short() {
        assert_eq!(parse_request(&[]), Err(Error::TooShort));
        let bytes = hex("0000041727101980 00000000 d7f433");
        assert_eq!(parse_request(&bytes), Err(Error::TooShort));
        assert_eq!(peek_transaction_id(&bytes), None);
        assert_eq!(peek_connection_id(&bytes), None);
        assert_eq!(peek_action(&bytes), None);
    }

    #[test]
    fn request_unknown_action() {
        let bytes = hex("c855b5fb1a95a303 00000003 d7f4336a");
        assert_eq!(parse_request(&bytes), Err(Error::UnknownAction(3)));
        let bytes = hex("c855b5fb1a95a303 ffffffff d7f4336a");
        assert_eq!(parse_request(&bytes), Err(Error::UnknownAction(u32::MAX)));
        assert_eq!(Error::UnknownAction(4).to_string(), "unknown action 4");
    }

    #[test]
    fn response_too_short_and_unknown_action() {
        assert_eq!(
            parse_response(&hex("00000000 d7f433")),
            Err(Error::TooShort)
        );
        assert_eq!(
            parse_response(&hex("00000004 d7f4336a")),
            Err(Error::UnknownAction(4))
        );
    }

    #[test]
    fn peeks_on_unparsable_requests() {
        // A truncated announce still yields its ids for the error reply.
        let bytes = announce_bytes();
        assert_eq!(parse_request(&bytes[..50]), Err(Error::TruncatedAnnounce));
        assert_eq!(
            peek_connection_id(&bytes[..50]),
            Some(0xc855_b5fb_1a95_a303)
        );
        assert_eq!(peek_action(&bytes[..50]), Some(1));
        assert_eq!(peek_transaction_id(&bytes[..16]), Some(0xfe3b_4c57));
    }

    #[test]
    fn typed_parse_rejects_other_action() {
        let connect = hex("0000041727101980 00000000 d7f4336a");
        let packet = RequestPacket::new_checked(&connect[..]).unwrap();
        assert_eq!(
            AnnounceRequest::parse(&packet).map(|_| ()),
            Err(Error::UnknownAction(0))
        );
        assert_eq!(
            ScrapeRequest::parse(&packet).map(|_| ()),
            Err(Error::UnknownAction(0))
        );
        let reply = hex("00000000 d7f4336a c855b5fb1a95a303");
        let packet = ResponsePacket::new_checked(&reply[..]).unwrap();
        assert_eq!(
            ErrorResponse::parse(&packet).map(|_| ()),
            Err(Error::UnknownAction(0))
        );
    }

    #[test]
    fn error_texts_distinct_and_short() {
        let all = [
            Error::TooShort,
            Error::BadMagic,
            Error::UnknownAction(9),
            Error::TruncatedAnnounce,
            Error::BadEvent,
            Error::BadOption,
            Error::TruncatedScrape,
            Error::NoInfoHash,
            Error::TruncatedResponse,
            Error::BadPeerList,
        ];
        for (i, a) in all.iter().enumerate() {
            assert!(!a.text().is_empty() && a.text().len() < 64 && a.text().is_ascii());
            for b in &all[i + 1..] {
                assert_ne!(a.text(), b.text());
            }
        }
    }

    #[test]
    fn emit_appends_after_existing_bytes() {
        let mut out = vec![0xee];
        let n = ConnectResponse {
            transaction_id: 1,
            connection_id: 2,
        }
        .emit(&mut out);
        assert_eq!(n, 16);
        assert_eq!(out, hex("ee 00000000 00000001 0000000000000002"));
    }

    // ---- property tests ----

    mod prop {
        use super::super::*;
        use proptest::prelude::*;

        /// Walks everything a parsed value exposes, to reach every lazy path.
        fn touch_request(req: &Request<'_>) {
            match req {
                Request::Connect(c) => {
                    let _ = c.transaction_id;
                }
                Request::Announce(a) => {
                    let _ = a.options.iter().count();
                    let _ = a.options.url_data_len();
                }
                Request::Scrape(s) => {
                    let n = s.info_hashes.iter().count();
                    assert_eq!(n, s.info_hashes.count());
                    assert!(n >= 1);
                    let _ = s.info_hashes.truncated(MAX_SCRAPE_HASHES_PER_DATAGRAM);
                }
            }
            let mut out = Vec::new();
            req.emit(&mut out);
        }

        fn touch_response(resp: &Response<'_>) {
            match resp {
                Response::Announce(a) => {
                    let _ = a.peers_v4().map(|p| p.count());
                    let _ = a.peers_v6().map(|p| p.count());
                }
                Response::Scrape(s) => {
                    assert_eq!(s.entries.iter().count(), s.entries.count());
                }
                Response::Error(e) => {
                    let _ = e.message_str();
                }
                Response::Connect(_) => {}
            }
        }

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
                if let Ok(req) = parse_request(&bytes) {
                    touch_request(&req);
                }
                if let Ok(resp) = parse_response(&bytes) {
                    touch_response(&resp);
                }
                let _ = peek_connection_id(&bytes);
                let _ = peek_action(&bytes);
                let _ = peek_transaction_id(&bytes);
                let _ = AnnounceOptions::parse(&bytes).map(|o| o.iter().count());
                let _ = InfoHashes::new(&bytes).map(|h| h.iter().count());
                let _ = ScrapeEntries::new(&bytes).map(|e| e.iter().count());
            }

            #[test]
            fn arbitrary_headers_with_valid_action(
                action in 0u32..4,
                tail in proptest::collection::vec(any::<u8>(), 0..300),
            ) {
                // Steer random bytes into each parser instead of relying on luck.
                let mut bytes = PROTOCOL_ID.to_be_bytes().to_vec();
                bytes.extend_from_slice(&action.to_be_bytes());
                bytes.extend_from_slice(&tail);
                if let Ok(req) = parse_request(&bytes) {
                    touch_request(&req);
                }
                let mut resp = action.to_be_bytes().to_vec();
                resp.extend_from_slice(&tail);
                if let Ok(r) = parse_response(&resp) {
                    touch_response(&r);
                }
            }

            #[test]
            fn announce_round_trip(
                connection_id in any::<u64>(),
                transaction_id in any::<u32>(),
                info_hash in any::<[u8; 20]>(),
                peer_id in any::<[u8; 20]>(),
                downloaded in any::<u64>(),
                left in any::<u64>(),
                uploaded in any::<u64>(),
                event in 0u32..4,
                ip in any::<[u8; 4]>(),
                key in any::<u32>(),
                num_want in any::<i32>(),
                port in any::<u16>(),
                url in proptest::collection::vec(any::<u8>(), 0..600),
            ) {
                let mut options = Vec::new();
                AnnounceOptions::emit_url_data(&url, &mut options);
                let event = match event { 0 => Event::None, 1 => Event::Completed, 2 => Event::Started, _ => Event::Stopped };
                let req = AnnounceRequest {
                    connection_id, transaction_id, info_hash, peer_id, downloaded, left, uploaded,
                    event, ip: Ipv4Addr::from(ip), key, num_want, port,
                    options: AnnounceOptions::parse(&options).unwrap(),
                };
                let mut out = Vec::new();
                prop_assert_eq!(req.emit(&mut out), 98 + options.len());
                prop_assert_eq!(parse_request(&out), Ok(Request::Announce(req)));
                let joined: Vec<u8> = req.options.url_data().flatten().copied().collect();
                prop_assert_eq!(joined, url);
            }

            #[test]
            fn scrape_and_responses_round_trip(
                transaction_id in any::<u32>(),
                hashes in proptest::collection::vec(any::<[u8; 20]>(), 1..130),
                entries in proptest::collection::vec(any::<[u8; 12]>(), 0..130),
                peers in proptest::collection::vec(any::<u8>(), 0..400),
                message in proptest::collection::vec(1u8.., 0..100),
                connection_id in any::<u64>(),
            ) {
                let scrape = Request::Scrape(ScrapeRequest {
                    connection_id, transaction_id,
                    info_hashes: InfoHashes::from_hashes(&hashes).unwrap(),
                });
                let connect = Request::Connect(ConnectRequest { transaction_id });
                for req in [scrape, connect] {
                    let mut out = Vec::new();
                    req.emit(&mut out);
                    prop_assert_eq!(parse_request(&out), Ok(req));
                }
                let flat = entries.as_flattened();
                let responses = [
                    Response::Connect(ConnectResponse { transaction_id, connection_id }),
                    Response::Announce(AnnounceResponse {
                        transaction_id, interval: connection_id as u32, leechers: 7, seeders: 9,
                        peers: &peers,
                    }),
                    Response::Scrape(ScrapeResponse {
                        transaction_id, entries: ScrapeEntries::new(flat).unwrap(),
                    }),
                    Response::Error(ErrorResponse { transaction_id, message: &message }),
                ];
                for resp in responses {
                    let mut out = Vec::new();
                    resp.emit(&mut out);
                    prop_assert_eq!(parse_response(&out), Ok(resp));
                }
            }
        }
    }
}
