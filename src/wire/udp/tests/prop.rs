//! Property tests: arbitrary bytes never panic, and every packet round-trips.

use super::super::*;
use crate::types::Event;
use proptest::prelude::*;
use std::net::Ipv4Addr;

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
