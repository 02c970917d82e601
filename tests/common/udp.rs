//! A BEP 15 client over a real UDP socket, built on the tracker's own codecs.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use opentracker_rs::types::Event;
use opentracker_rs::wire::udp::{
    AnnounceOptions, AnnounceRequest, ConnectRequest, InfoHashes, Response, ScrapeRequest,
    parse_response,
};

/// An announce (BEP 15) of peer_id `-TE0001-abcdefghijkl`, key 1, no options.
pub fn announce_request(
    connection_id: u64,
    transaction_id: u32,
    info_hash: &[u8; 20],
    port: u16,
    left: u64,
    event: Event,
    num_want: i32,
) -> Vec<u8> {
    let mut out = Vec::new();
    AnnounceRequest {
        connection_id,
        transaction_id,
        info_hash: *info_hash,
        peer_id: *b"-TE0001-abcdefghijkl",
        downloaded: 0,
        left,
        uploaded: 0,
        event,
        ip: std::net::Ipv4Addr::UNSPECIFIED,
        key: 1,
        num_want,
        port,
        options: AnnounceOptions::EMPTY,
    }
    .emit(&mut out);
    out
}

/// A UDP tracker client bound to loopback of the tracker's family.
pub struct Client {
    pub sock: UdpSocket,
    pub tracker: SocketAddr,
}

impl Client {
    pub fn new(tracker: SocketAddr) -> Client {
        let bind = if tracker.is_ipv6() {
            "[::1]:0"
        } else {
            "127.0.0.1:0"
        };
        let sock = UdpSocket::bind(bind).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(1500)))
            .unwrap();
        Client { sock, tracker }
    }

    pub fn port(&self) -> u16 {
        self.sock.local_addr().unwrap().port()
    }

    /// Sends raw bytes, returns the reply (None on timeout).
    pub fn send(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        self.sock.send_to(bytes, self.tracker).unwrap();
        let mut buf = [0u8; 4096];
        match self.sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                assert_eq!(from, self.tracker);
                Some(buf[..n].to_vec())
            }
            Err(_) => None,
        }
    }

    pub fn connect(&self) -> u64 {
        let mut out = Vec::new();
        ConnectRequest {
            transaction_id: 0x1234,
        }
        .emit(&mut out);
        let reply = self.send(&out).expect("connect reply");
        assert_eq!(reply.len(), 16);
        match parse_response(&reply).unwrap() {
            Response::Connect(c) => {
                assert_eq!(c.transaction_id, 0x1234);
                c.connection_id
            }
            other => panic!("{other:?}"),
        }
    }

    pub fn announce_bytes(
        &self,
        id: u64,
        h: &[u8; 20],
        port: u16,
        left: u64,
        event: Event,
        num_want: i32,
    ) -> Vec<u8> {
        announce_request(id, 77, h, port, left, event, num_want)
    }

    /// Announce; returns (interval, leechers, seeders, peers bytes).
    pub fn announce(
        &self,
        id: u64,
        h: &[u8; 20],
        port: u16,
        left: u64,
        event: Event,
        num_want: i32,
    ) -> (u32, u32, u32, Vec<u8>) {
        let reply = self
            .send(&self.announce_bytes(id, h, port, left, event, num_want))
            .expect("announce reply");
        match parse_response(&reply).unwrap() {
            Response::Announce(a) => {
                assert_eq!(a.transaction_id, 77);
                (a.interval, a.leechers, a.seeders, a.peers.to_vec())
            }
            other => panic!("{other:?}"),
        }
    }

    pub fn scrape_bytes(&self, id: u64, hashes: &[[u8; 20]]) -> Vec<u8> {
        let req = ScrapeRequest {
            connection_id: id,
            transaction_id: 99,
            info_hashes: InfoHashes::from_hashes(hashes).unwrap(),
        };
        let mut out = Vec::new();
        req.emit(&mut out);
        out
    }

    /// Scrape; returns (seeders, completed, leechers) per hash.
    pub fn scrape(&self, id: u64, hashes: &[[u8; 20]]) -> Vec<(u32, u32, u32)> {
        let reply = self
            .send(&self.scrape_bytes(id, hashes))
            .expect("scrape reply");
        match parse_response(&reply).unwrap() {
            Response::Scrape(s) => {
                assert_eq!(s.transaction_id, 99);
                s.entries
                    .iter()
                    .map(|e| (e.seeders, e.completed, e.leechers))
                    .collect()
            }
            other => panic!("{other:?}"),
        }
    }

    pub fn expect_error(&self, bytes: &[u8]) -> String {
        let reply = self.send(bytes).expect("an error reply");
        assert!(
            reply.len() <= bytes.len(),
            "error reply larger than the request"
        );
        match parse_response(&reply).unwrap() {
            Response::Error(e) => String::from_utf8_lossy(e.message).into_owned(),
            other => panic!("{other:?}"),
        }
    }

    pub fn expect_silence(&self, bytes: &[u8]) {
        assert_eq!(self.send(bytes), None, "expected no reply to {bytes:?}");
    }
}

impl Client {
    /// An announce whose BEP 41 options carry `url` (the announce URL's path and query, e.g.
    /// `/announce/KEY`) as URL data; returns the raw reply.
    pub fn announce_with_url(
        &self,
        id: u64,
        h: &[u8; 20],
        port: u16,
        left: u64,
        event: Event,
        url: &[u8],
    ) -> Vec<u8> {
        let mut out = self.announce_bytes(id, h, port, left, event, -1);
        AnnounceOptions::emit_url_data(url, &mut out);
        self.send(&out).expect("announce reply")
    }
}

/// A BEP 15 client whose socket is `connect`ed to the tracker, with its connection_id: for
/// tests that fill a store with many announces and time round trips.
pub struct Connected {
    pub sock: UdpSocket,
    pub id: u64,
}

impl Connected {
    /// Binds loopback of the tracker's family and connects (BEP 15), up to 20 tries 500 ms
    /// apart; panics without a reply.
    pub fn new(tracker: SocketAddr) -> Connected {
        let sock = Client::new(tracker).sock;
        sock.connect(tracker).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut out = Vec::new();
        ConnectRequest { transaction_id: 1 }.emit(&mut out);
        for _ in 0..20 {
            sock.send(&out).unwrap();
            let mut buf = [0u8; 64];
            let reply = sock.recv(&mut buf).ok().map(|n| parse_response(&buf[..n]));
            if let Some(Ok(Response::Connect(c))) = reply {
                return Connected {
                    sock,
                    id: c.connection_id,
                };
            }
        }
        panic!("no UDP connect reply");
    }

    /// An announce of transaction `tid` (numwant 0).
    pub fn announce_bytes(
        &self,
        tid: u32,
        h: &[u8; 20],
        port: u16,
        left: u64,
        event: Event,
    ) -> Vec<u8> {
        announce_request(self.id, tid, h, port, left, event, 0)
    }

    /// One leecher (this socket's address, port 7000) in each of `hash_of(0..n)`, up to 256
    /// announces in flight; what got no reply is sent again. Panics after `limit`.
    pub fn fill(&self, n: u32, hash_of: impl Fn(u32) -> [u8; 20], limit: Duration) {
        const WINDOW: u32 = 256;
        let deadline = std::time::Instant::now() + limit;
        let mut done = vec![false; n as usize];
        let (mut next, mut left) = (0u32, n);
        let mut buf = [0u8; 256];
        while left > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "UDP fill too slow: {left} left"
            );
            let (mut sent, mut i) = (0, next);
            while sent < WINDOW && i < n {
                if !done[i as usize] {
                    let bytes = self.announce_bytes(i, &hash_of(i), 7000, 5, Event::Started);
                    let _ = self.sock.send(&bytes);
                    sent += 1;
                }
                i += 1;
            }
            for _ in 0..sent {
                let Ok(len) = self.sock.recv(&mut buf) else {
                    break;
                };
                if let Ok(Response::Announce(a)) = parse_response(&buf[..len]) {
                    let t = a.transaction_id as usize;
                    if t < done.len() && !done[t] {
                        done[t] = true;
                        left -= 1;
                    }
                }
            }
            while next < n && done[next as usize] {
                next += 1;
            }
        }
    }

    /// One announce (port 7001), waiting for its reply (resent after 500 ms, 20 tries); the
    /// round trip.
    pub fn announce_rtt(&self, tid: u32, h: &[u8; 20]) -> Duration {
        let bytes = self.announce_bytes(tid, h, 7001, 5, Event::Started);
        let t = std::time::Instant::now();
        let mut buf = [0u8; 512];
        for _ in 0..20 {
            self.sock.send(&bytes).unwrap();
            let reply = self
                .sock
                .recv(&mut buf)
                .ok()
                .map(|n| parse_response(&buf[..n]));
            if matches!(reply, Some(Ok(Response::Announce(a))) if a.transaction_id == tid) {
                return t.elapsed();
            }
        }
        panic!("no announce reply in 10 s");
    }

    /// Scrapes `h` and checks a scrape reply comes.
    pub fn scrape(&self, h: &[u8; 20]) {
        let mut out = Vec::new();
        ScrapeRequest {
            connection_id: self.id,
            transaction_id: 5,
            info_hashes: InfoHashes::from_hashes(&[*h]).unwrap(),
        }
        .emit(&mut out);
        self.sock.send(&out).unwrap();
        let mut buf = [0u8; 64];
        let n = self.sock.recv(&mut buf).expect("scrape reply");
        assert!(matches!(parse_response(&buf[..n]), Ok(Response::Scrape(_))));
    }
}
