//! BEP 15 requests (client to tracker): the [`RequestPacket`] view, [`parse_request`], and
//! the connect, announce and scrape requests with their `parse`/`emit`.

use std::net::Ipv4Addr;

use super::options::AnnounceOptions;
use super::{
    ANNOUNCE_MIN_LEN, Action, CONNECT_REQUEST_LEN, Error, INFO_HASH_LEN, PROTOCOL_ID,
    REQUEST_HEADER_LEN, append, field, read_array, read_u16, read_u32, read_u64, write_bytes,
};
use crate::types::{Event, InfoHash, PeerId};

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

/// A scrape request (BEP 15, action 2): the header then 20-byte info_hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScrapeRequest<'a> {
    /// The connection_id the tracker gave this client (not checked by the parser).
    pub connection_id: u64,
    /// Chosen by the client, echoed in the reply.
    pub transaction_id: u32,
    /// The info_hashes, in request order, all of them: the server truncates to its maximum
    /// (see [`MAX_SCRAPE_HASHES_PER_DATAGRAM`] and [`InfoHashes::truncated`]).
    ///
    /// [`MAX_SCRAPE_HASHES_PER_DATAGRAM`]: super::MAX_SCRAPE_HASHES_PER_DATAGRAM
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
