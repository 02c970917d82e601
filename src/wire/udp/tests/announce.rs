//! Announce requests and responses (BEP 15 action 1).

use super::*;
use std::net::{Ipv6Addr, SocketAddrV4, SocketAddrV6};

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
