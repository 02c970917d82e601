//! A BEP 15 client over a real UDP socket, built on the tracker's own codecs.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use opentracker_rs::types::Event;
use opentracker_rs::wire::udp::{
    AnnounceOptions, AnnounceRequest, ConnectRequest, InfoHashes, Response, ScrapeRequest,
    parse_response,
};

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
        let req = AnnounceRequest {
            connection_id: id,
            transaction_id: 77,
            info_hash: *h,
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
        };
        let mut out = Vec::new();
        req.emit(&mut out);
        out
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
