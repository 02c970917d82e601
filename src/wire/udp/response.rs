//! BEP 15 responses (tracker to client): the [`ResponsePacket`] view, [`parse_response`], and
//! the connect, announce, scrape and error responses with their `parse`/`emit`.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use super::{
    ANNOUNCE_RESPONSE_HEADER_LEN, Action, CONNECT_RESPONSE_LEN, Error, PEER_V4_LEN, PEER_V6_LEN,
    RESPONSE_HEADER_LEN, SCRAPE_ENTRY_LEN, append, field, read_array, read_u16, read_u32, read_u64,
    write_bytes,
};

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
