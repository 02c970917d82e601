//! Unit tests of [`super`]: real datagrams (opentracker exchanges) next to the code, every
//! error, and property tests. Announce, BEP 41 options, scrape and the property tests have
//! their own files under `tests/`.

use super::*;
use crate::types::Event;
use std::net::Ipv4Addr;

mod announce;
mod options;
mod prop;
mod scrape;

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
