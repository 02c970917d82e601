//! Unit tests of [`super`]: hand-made packets in opentracker's format (the bytes written out),
//! our own types, the 1480-byte boundary, the MAC, every error. Property tests in
//! `tests/prop.rs`.

use super::*;
use crate::types::InfoHash;
use std::net::{Ipv6Addr, SocketAddr};

mod prop;

/// Decodes a hex string, ignoring whitespace (test helper).
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

fn hash(s: &str) -> InfoHash {
    hex(s).try_into().unwrap()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn record(info_hash: &str, peer: &str, flags: Flags) -> Record {
    Record {
        info_hash: hash(info_hash),
        peer: sa(peer),
        flags,
    }
}

fn secret(s: &str) -> Secret {
    Secret::new(s.as_bytes()).unwrap()
}

fn with_secret(s: &str) -> Settings {
    Settings {
        v6_records: false,
        secret: Some(secret(s)),
    }
}

fn v6_records() -> Settings {
    Settings {
        v6_records: true,
        secret: None,
    }
}

/// Builds a packet of `records` and returns its bytes.
fn build(id: TrackerId, t: PacketType, settings: &Settings, records: &[Record]) -> Vec<u8> {
    let mut b = Builder::new(id, t, settings).unwrap();
    for r in records {
        b.push(r).unwrap();
    }
    let mut out = Vec::new();
    assert_eq!(b.emit(&mut out), out.len());
    out
}

/// An opentracker (2021, IPv4 build) peer-sync packet with two records, as `livesync_tell`
/// fills its buffer: tracker_id 1a2b3c4d (opaque), type 0, then per record the info_hash and
/// the 8-byte `ot_peer` (address, port, flags, age).
fn opentracker_v4_packet() -> Vec<u8> {
    hex(&format!(
        "1a2b3c4d 00000000
         {HASH_A} 0a000001 1ae1 80 00
         {HASH_B} c0a80102 c8d5 20 07"
    ))
}

// ---- constants ----

#[test]
fn constants() {
    assert_eq!(MULTICAST_GROUP, Ipv4Addr::new(224, 0, 23, 5));
    assert!(MULTICAST_GROUP.is_multicast());
    assert_eq!(MAX_PACKET_LEN, 1480);
    assert_eq!(MAX_DELAY_SECS, 15);
    assert_eq!((RECORD_V4_LEN, RECORD_V6_LEN), (28, 40));
    assert_eq!(RecordLayout::V4.address_len(), 4);
    assert_eq!(RecordLayout::V6.address_len(), 16);
    // Our type numbers spell "otr4" / "otr6" in a hex dump.
    assert_eq!(&(PacketType::AuthPeerSync as u32).to_be_bytes(), b"otr4");
    assert_eq!(&(PacketType::AuthPeerSyncV6 as u32).to_be_bytes(), b"otr6");
    for t in [
        PacketType::PeerSync,
        PacketType::PeerSyncV6,
        PacketType::AuthPeerSync,
        PacketType::AuthPeerSyncV6,
    ] {
        assert_eq!(PacketType::from_u32(t as u32), Some(t));
    }
    assert_eq!(PacketType::from_u32(2), None);
    assert_eq!(PacketType::from_u32(0x6f74_7235), None);
}

// ---- opentracker's type 0 ----

#[test]
fn opentracker_packet_parses() {
    let bytes = opentracker_v4_packet();
    assert_eq!(bytes.len(), 8 + 2 * 28);
    let p = parse(&bytes, &Settings::default()).unwrap();
    assert_eq!(p.tracker_id, [0x1a, 0x2b, 0x3c, 0x4d]);
    assert_eq!(p.packet_type, PacketType::PeerSync);
    assert_eq!(p.records.len(), 2);
    assert_eq!(p.records.layout(), RecordLayout::V4);
    let records: Vec<Record> = p.records.iter().collect();
    assert_eq!(
        records,
        [
            record(HASH_A, "10.0.0.1:6881", Flags::SEEDING),
            // The age byte (7) is ignored.
            record(HASH_B, "192.168.1.2:51413", Flags::STOPPED),
        ]
    );
    assert!(records[0].flags.seeding() && !records[0].flags.stopped());
    assert!(records[1].flags.stopped() && !records[1].flags.seeding());
    assert_eq!(p.records.iter().len(), 2);
    assert_eq!(p.records.into_iter().count(), 2);
}

#[test]
fn builder_writes_opentracker_bytes() {
    let records = [
        record(HASH_A, "10.0.0.1:6881", Flags::SEEDING),
        record(HASH_B, "192.168.1.2:51413", Flags::STOPPED),
    ];
    let bytes = build(
        [0x1a, 0x2b, 0x3c, 0x4d],
        PacketType::PeerSync,
        &Settings::default(),
        &records,
    );
    // As opentracker's packet, with the age written 0.
    let mut want = opentracker_v4_packet();
    *want.last_mut().unwrap() = 0;
    assert_eq!(bytes, want);
}

#[test]
fn flags_bytes() {
    // Seeder that completed (0xc0), from sync (0x10), and an unknown bit (0x01) kept.
    let bytes = hex(&format!(
        "00000001 00000000
         {HASH_A} 7f000001 0050 c0 00
         {HASH_A} 7f000002 0050 10 00
         {HASH_A} 7f000003 0050 01 2d"
    ));
    let p = parse(&bytes, &Settings::default()).unwrap();
    let flags: Vec<Flags> = p.records.iter().map(|r| r.flags).collect();
    assert_eq!(flags[0], Flags::SEEDING | Flags::COMPLETED);
    assert!(flags[0].completed() && flags[0].seeding());
    assert!(flags[1].from_sync());
    assert_eq!(flags[2].bits(), 0x01);
    assert_eq!(flags[2], Flags::from_bits(1));
    assert!(!flags[2].seeding() && !flags[2].completed() && !flags[2].stopped());
    assert!(Flags::LEECHING.contains(Flags::LEECHING));
    assert_eq!(
        format!("{:?}", flags[0] | Flags::STOPPED | Flags::FROM_SYNC),
        "Flags(0xf0 SEEDING COMPLETED STOPPED FROM_SYNC)"
    );
    assert_eq!(format!("{:?}", Flags::LEECHING), "Flags(0x00)");
}

#[test]
fn field_offsets_in_the_packet() {
    // ot_livesync.h's comment puts the flags at 0x24; the code copies the 8-byte ot_peer, so
    // in the first record the port is at 0x20, flags at 0x22 and age at 0x23.
    let bytes = build(
        *b"abcd",
        PacketType::PeerSync,
        &Settings::default(),
        &[record(HASH_A, "1.2.3.4:258", Flags::SEEDING)],
    );
    assert_eq!(&bytes[0x1c..0x20], &[1, 2, 3, 4]);
    assert_eq!(&bytes[0x20..0x22], &[1, 2]);
    assert_eq!(bytes[0x22], 0x80);
    assert_eq!(bytes[0x23], 0);
}

// ---- opentracker's IPv6 build: type 0, 40-byte records ----

/// An opentracker 2021 `WANT_V6` peer-sync packet: type 0, 20-byte `ot_peer` (16-byte
/// address), so 40-byte records.
fn opentracker_v6_build_packet() -> Vec<u8> {
    hex(&format!(
        "cafebabe 00000000
         {HASH_A} 20010db8000000000000000000000001 1ae1 80 00
         {HASH_B} 00000000000000000000ffff0a000002 c8d5 40 03"
    ))
}

#[test]
fn v6_build_packet_with_v6_records() {
    let bytes = opentracker_v6_build_packet();
    assert_eq!(bytes.len(), 8 + 2 * 40);
    let p = parse(&bytes, &v6_records()).unwrap();
    assert_eq!(p.packet_type, PacketType::PeerSync);
    assert_eq!(p.records.layout(), RecordLayout::V6);
    let records: Vec<Record> = p.records.iter().collect();
    assert_eq!(
        records,
        [
            record(HASH_A, "[2001:db8::1]:6881", Flags::SEEDING),
            // A v4-mapped address reads as IPv4.
            record(HASH_B, "10.0.0.2:51413", Flags::COMPLETED),
        ]
    );
    // Written back: the IPv4 peer goes v4-mapped, the age 0.
    let again = build(
        *b"\xca\xfe\xba\xbe",
        PacketType::PeerSync,
        &v6_records(),
        &records,
    );
    let mut want = bytes.clone();
    *want.last_mut().unwrap() = 0;
    assert_eq!(again, want);
}

#[test]
fn v6_build_packet_misread_without_v6_records() {
    // 80 record bytes are not a whole number of 28-byte records.
    let bytes = opentracker_v6_build_packet();
    assert_eq!(
        parse(&bytes, &Settings::default()),
        Err(Error::PartialRecord { trailing: 80 % 28 })
    );
    // And an IPv4-build packet read as 40-byte records: 56 % 40.
    assert_eq!(
        parse(&opentracker_v4_packet(), &v6_records()),
        Err(Error::PartialRecord { trailing: 16 })
    );
}

// ---- type 1: IPv6 peers ----

#[test]
fn type_1_packet() {
    let bytes = hex(&format!(
        "00c0ffee 00000001
         {HASH_B} 20010db8000000000000000000000002 c8d5 a0 00"
    ));
    for settings in [Settings::default(), v6_records()] {
        let p = parse(&bytes, &settings).unwrap();
        assert_eq!(p.packet_type, PacketType::PeerSyncV6);
        let r = p.records.iter().next().unwrap();
        assert_eq!(r.peer, sa("[2001:db8::2]:51413"));
        assert_eq!(r.flags, Flags::SEEDING | Flags::STOPPED);
    }
    let again = build(
        [0x00, 0xc0, 0xff, 0xee],
        PacketType::PeerSyncV6,
        &Settings::default(),
        &[record(
            HASH_B,
            "[2001:db8::2]:51413",
            Flags::SEEDING | Flags::STOPPED,
        )],
    );
    assert_eq!(again, bytes);
}

#[test]
fn packet_type_for_each_family() {
    let plain = Settings::default();
    assert_eq!(plain.packet_type_for(false), PacketType::PeerSync);
    assert_eq!(plain.packet_type_for(true), PacketType::PeerSyncV6);
    let v6 = v6_records();
    assert_eq!(v6.packet_type_for(false), PacketType::PeerSync);
    assert_eq!(v6.packet_type_for(true), PacketType::PeerSync);
    assert_eq!(v6.layout(PacketType::PeerSync), RecordLayout::V6);
    let auth = with_secret("s");
    assert_eq!(auth.packet_type_for(false), PacketType::AuthPeerSync);
    assert_eq!(auth.packet_type_for(true), PacketType::AuthPeerSyncV6);
    assert_eq!(auth.layout(PacketType::AuthPeerSync), RecordLayout::V4);
    assert_eq!(auth.layout(PacketType::AuthPeerSyncV6), RecordLayout::V6);
}

#[test]
fn wrong_family() {
    let mut b = Builder::new(*b"abcd", PacketType::PeerSync, &Settings::default()).unwrap();
    let v6 = record(HASH_A, "[2001:db8::1]:1", Flags::LEECHING);
    assert_eq!(b.push(&v6), Err(BuildError::WrongFamily));
    assert!(b.is_empty());
    let mut out = Vec::new();
    assert_eq!(
        v6.emit(RecordLayout::V4, &mut out),
        Err(BuildError::WrongFamily)
    );
    assert!(out.is_empty());
    // IPv4 into 40-byte records: v4-mapped.
    let v4 = record(HASH_A, "10.1.2.3:80", Flags::LEECHING);
    assert_eq!(v4.emit(RecordLayout::V6, &mut out), Ok(40));
    assert_eq!(
        &out[20..36],
        &Ipv4Addr::new(10, 1, 2, 3).to_ipv6_mapped().octets()
    );
    assert_eq!(Record::parse(&out, RecordLayout::V6), Some(v4));
    assert_eq!(Record::parse(&out, RecordLayout::V4), None);
    assert_eq!(Record::parse(&out[..39], RecordLayout::V6), None);
    // An IPv6 peer that is not mapped stays IPv6.
    let ip: Ipv6Addr = "::1".parse().unwrap();
    assert!(ip.to_ipv4_mapped().is_none());
}

// ---- the 1480-byte boundary ----

/// The i-th distinct IPv4 record.
fn nth_v4(i: usize) -> Record {
    let i = i as u32;
    Record {
        info_hash: [i as u8; 20],
        peer: SocketAddr::new(Ipv4Addr::from(0x0a00_0000 + i).into(), 6881),
        flags: Flags::LEECHING,
    }
}

/// The i-th distinct IPv6 record.
fn nth_v6(i: usize) -> Record {
    Record {
        info_hash: [i as u8; 20],
        peer: SocketAddr::new(
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i as u16).into(),
            6881,
        ),
        flags: Flags::SEEDING,
    }
}

/// Fills a builder until it reports full, checking at every step that it reports full exactly
/// when the next record would pass 1480 bytes, and for opentracker's types that this is
/// opentracker's rule (send once the buffer holds at least 1480 - record length bytes).
fn fill(settings: &Settings, t: PacketType, nth: fn(usize) -> Record) -> (usize, Vec<u8>) {
    let mut b = Builder::new(*b"fill", t, settings).unwrap();
    let record_len = b.layout().record_len();
    let mut n = 0;
    loop {
        let fill = b.push(&nth(n)).unwrap();
        n += 1;
        assert_eq!(b.len(), n);
        let next_would_pass = b.packet_len() + record_len > MAX_PACKET_LEN;
        assert_eq!(fill == Fill::Full, next_would_pass, "after {n} records");
        if !t.is_authenticated() {
            // opentracker's types: exactly when opentracker sends.
            let opentracker_sends = b.packet_len() >= MAX_PACKET_LEN - record_len;
            assert_eq!(fill == Fill::Full, opentracker_sends, "after {n} records");
        }
        assert!(b.packet_len() <= MAX_PACKET_LEN);
        if fill == Fill::Full {
            break;
        }
    }
    assert!(b.is_full());
    assert_eq!(b.capacity(), n);
    assert_eq!(b.push(&nth(n)), Err(BuildError::Full));
    assert_eq!(b.len(), n);
    let mut out = Vec::new();
    assert_eq!(b.emit(&mut out), b.packet_len());
    // The packet parses back to the same records.
    let p = parse(&out, settings).unwrap();
    assert_eq!(p.records.len(), n);
    assert!(p.records.iter().enumerate().all(|(i, r)| r == nth(i)));
    // After clear the builder takes records again, header unchanged.
    b.clear();
    assert!(b.is_empty() && !b.is_full());
    assert_eq!(b.packet_len(), 0);
    assert_eq!(b.push(&nth(0)), Ok(Fill::Room));
    let mut again = Vec::new();
    b.emit(&mut again);
    assert_eq!(&again[..8], &out[..8]);
    (n, out)
}

#[test]
fn boundary_type_0() {
    let (n, out) = fill(&Settings::default(), PacketType::PeerSync, nth_v4);
    // 52 records, 1464 bytes: opentracker's largest packet.
    assert_eq!((n, out.len()), (52, 1464));
    assert_eq!(n, max_records(RecordLayout::V4, PacketType::PeerSync));
}

#[test]
fn boundary_40_byte_records() {
    let (n, out) = fill(&Settings::default(), PacketType::PeerSyncV6, nth_v6);
    assert_eq!((n, out.len()), (36, 1448));
    let (n, out) = fill(&v6_records(), PacketType::PeerSync, nth_v6);
    assert_eq!((n, out.len()), (36, 1448));
}

#[test]
fn boundary_authenticated() {
    let settings = with_secret("boundary");
    let (n, out) = fill(&settings, PacketType::AuthPeerSync, nth_v4);
    // 8 + 52 * 28 + 16: exactly the limit.
    assert_eq!((n, out.len()), (52, 1480));
    let (n, out) = fill(&settings, PacketType::AuthPeerSyncV6, nth_v6);
    assert_eq!((n, out.len()), (36, 1464));
}

#[test]
fn lower_limit() {
    let settings = with_secret("limit");
    let b = Builder::new(*b"lim!", PacketType::AuthPeerSync, &settings).unwrap();
    // 1472 keeps an IPv4 datagram within a 1500-byte MTU: (1472 - 8 - 16) / 28 = 51.
    let mut b = b.with_limit(1472).unwrap();
    assert_eq!(b.limit(), 1472);
    assert_eq!(b.capacity(), 51);
    for i in 0..50 {
        assert_eq!(b.push(&nth_v4(i)), Ok(Fill::Room));
    }
    assert_eq!(b.push(&nth_v4(50)), Ok(Fill::Full));
    assert_eq!(b.packet_len(), 8 + 51 * 28 + 16);
    // Limits that cannot hold one record, exceed UDP, or cut the records already in.
    for bad in [0, 8 + 28 + 15, MAX_UDP_PAYLOAD + 1, 8 + 28 * 51 + 15] {
        assert_eq!(
            b.clone().with_limit(bad).err(),
            Some(BuildError::BadLimit),
            "{bad}"
        );
    }
    let b = b.with_limit(8 + 28 + 16 + 28 * 50).unwrap();
    assert!(b.is_full());
    let one = Builder::new(*b"lim!", PacketType::PeerSync, &Settings::default())
        .unwrap()
        .with_limit(8 + 28)
        .unwrap();
    assert_eq!(one.capacity(), 1);
}

#[test]
fn empty_builder_emits_nothing() {
    let b = Builder::new(*b"none", PacketType::PeerSync, &Settings::default()).unwrap();
    let mut out = Vec::new();
    assert_eq!(b.emit(&mut out), 0);
    assert!(out.is_empty());
    assert_eq!(b.packet_type(), PacketType::PeerSync);
}

// ---- authentication ----

#[test]
fn hmac_sha256_truncated() {
    // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?",
    // HMAC-SHA256 = 5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843.
    let s = secret("Jefe");
    let tag = s.tag(b"what do ya want for nothing?");
    assert_eq!(tag.to_vec(), hex("5bdcc146bf60754e6a042426089575c7"));
    assert!(s.verify(b"what do ya want for nothing?", &tag));
    assert!(!s.verify(b"what do ya want for nothing!", &tag));
    assert!(!s.verify(b"what do ya want for nothing?", &tag[..15]));
    assert!(!s.verify(b"what do ya want for nothing?", &[]));
    assert!(Secret::new(b"").is_none());
    assert_eq!(format!("{s:?}"), "Secret(..)");
}

/// An "otr4" packet with one record, MAC keyed with "cluster secret" (computed
/// independently: HMAC-SHA256 over the 36 bytes before it, first 16 bytes).
fn otr4_packet() -> Vec<u8> {
    hex(&format!(
        "6e6f6465 6f747234
         {HASH_A} 0a000001 1ae1 c0 00
         b9704093850772a0793ff0721e530e68"
    ))
}

#[test]
fn authenticated_v4_bytes() {
    let settings = with_secret("cluster secret");
    let rec = record(HASH_A, "10.0.0.1:6881", Flags::SEEDING | Flags::COMPLETED);
    let bytes = build(*b"node", PacketType::AuthPeerSync, &settings, &[rec]);
    assert_eq!(bytes, otr4_packet());
    let p = parse(&bytes, &settings).unwrap();
    assert_eq!(p.tracker_id, *b"node");
    assert_eq!(p.packet_type, PacketType::AuthPeerSync);
    // The MAC is cut off: one record, no more.
    assert_eq!(p.records.as_bytes().len(), 28);
    assert_eq!(p.records.iter().collect::<Vec<_>>(), [rec]);
}

#[test]
fn authenticated_v6_bytes() {
    let settings = with_secret("cluster secret");
    let rec = record(HASH_B, "[2001:db8::1]:51413", Flags::STOPPED);
    let bytes = build(*b"node", PacketType::AuthPeerSyncV6, &settings, &[rec]);
    assert_eq!(
        bytes,
        hex(&format!(
            "6e6f6465 6f747236
             {HASH_B} 20010db8000000000000000000000001 c8d5 20 00
             42dcf7f0b1e9dcfd73c58593acfb45f7"
        ))
    );
    assert_eq!(
        parse(&bytes, &settings).unwrap().records.iter().next(),
        Some(rec)
    );
}

#[test]
fn every_altered_byte_is_refused() {
    let settings = with_secret("cluster secret");
    let good = otr4_packet();
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x01;
        let err = parse(&bad, &settings).unwrap_err();
        // Bytes 4..8 are the type: 0x6f747235 is not a type; the rest fail the MAC.
        let want = if (4..8).contains(&i) {
            Error::UnknownType(u32::from_be_bytes(bad[4..8].try_into().unwrap()))
        } else {
            Error::BadMac
        };
        assert_eq!(err, want, "byte {i}");
    }
}

#[test]
fn wrong_secret_is_refused() {
    let bytes = otr4_packet();
    assert_eq!(
        parse(&bytes, &with_secret("wrong secret")),
        Err(Error::BadMac)
    );
    assert_eq!(
        parse(&bytes, &with_secret("cluster secret!")),
        Err(Error::BadMac)
    );
    assert!(parse(&bytes, &with_secret("cluster secret")).is_ok());
}

#[test]
fn secret_policy() {
    // With a secret, opentracker's packets are refused...
    assert_eq!(
        parse(&opentracker_v4_packet(), &with_secret("s")),
        Err(Error::Unauthenticated)
    );
    // ...and without one, ours are (as opentracker drops unknown types).
    assert_eq!(
        parse(&otr4_packet(), &Settings::default()),
        Err(Error::NoSecret)
    );
    assert_eq!(
        Builder::new(*b"node", PacketType::AuthPeerSync, &Settings::default()).err(),
        Some(BuildError::NoSecret)
    );
    // A plain type may still be built with a secret set (the receiver decides).
    assert!(Builder::new(*b"node", PacketType::PeerSync, &with_secret("s")).is_ok());
}

#[test]
fn authenticated_short_and_empty() {
    let settings = with_secret("cluster secret");
    let s = secret("cluster secret");
    // Shorter than header + MAC.
    let short = hex("6e6f6465 6f747234 00112233445566778899aabbccddee");
    assert_eq!(short.len(), 8 + 15);
    assert_eq!(parse(&short, &settings), Err(Error::TooShort));
    // Header and a valid MAC, no record.
    let mut empty = hex("6e6f6465 6f747234");
    empty.extend_from_slice(&s.tag(&empty.clone()));
    assert_eq!(parse(&empty, &settings), Err(Error::NoRecords));
    // A partial record under a valid MAC.
    let mut partial = hex(&format!("6e6f6465 6f747234 {HASH_A} 0a000001"));
    partial.extend_from_slice(&s.tag(&partial.clone()));
    assert_eq!(
        parse(&partial, &settings),
        Err(Error::PartialRecord { trailing: 24 })
    );
}

// ---- errors ----

#[test]
fn short_and_bad_packets() {
    let d = Settings::default();
    assert_eq!(parse(&[], &d), Err(Error::TooShort));
    assert_eq!(parse(&hex("1a2b3c4d 000000"), &d), Err(Error::TooShort));
    // opentracker ignores packets of 8 bytes or less.
    assert_eq!(parse(&hex("1a2b3c4d 00000000"), &d), Err(Error::NoRecords));
    assert_eq!(
        parse(
            &hex(&format!("1a2b3c4d 00000002 {HASH_A} 0a000001 1ae1 80 00")),
            &d
        ),
        Err(Error::UnknownType(2))
    );
    // A partial trailing record refuses the whole packet.
    let mut partial = opentracker_v4_packet();
    partial.extend_from_slice(&hex("0102030405"));
    assert_eq!(
        parse(&partial, &d),
        Err(Error::PartialRecord { trailing: 5 })
    );
    let mut cut = opentracker_v4_packet();
    cut.pop();
    assert_eq!(parse(&cut, &d), Err(Error::PartialRecord { trailing: 27 }));
}

#[test]
fn error_texts() {
    assert_eq!(
        Error::UnknownType(2).to_string(),
        "unknown sync packet type 0x00000002"
    );
    assert_eq!(
        Error::PartialRecord { trailing: 5 }.to_string(),
        "sync packet ends in a partial record (5 trailing bytes)"
    );
    assert_eq!(Error::BadMac.to_string(), "sync packet MAC mismatch");
    let all = [
        Error::TooShort,
        Error::NoRecords,
        Error::UnknownType(9),
        Error::Unauthenticated,
        Error::NoSecret,
        Error::BadMac,
        Error::PartialRecord { trailing: 1 },
    ];
    let reasons: Vec<&str> = all.iter().map(Error::reason).collect();
    assert_eq!(
        reasons,
        [
            "too_short",
            "no_records",
            "unknown_type",
            "unauthenticated",
            "no_secret",
            "bad_mac",
            "partial_record"
        ]
    );
    assert_eq!(BuildError::Full.to_string(), "sync packet is full");
}

// ---- view ----

#[test]
fn view_and_peek() {
    let bytes = opentracker_v4_packet();
    assert_eq!(peek_tracker_id(&bytes), Some([0x1a, 0x2b, 0x3c, 0x4d]));
    assert_eq!(peek_tracker_id(&bytes[..7]), None);
    let view = SyncPacket::new_checked(&bytes[..]).unwrap();
    assert_eq!(view.packet_type(), 0);
    assert_eq!(view.payload().len(), 56);
    assert_eq!(SyncPacket::new_checked(&bytes[..7]), Err(Error::TooShort));
    let mut buf = [0u8; 8];
    let mut view = SyncPacket::new_unchecked(&mut buf[..]);
    view.set_tracker_id(b"wxyz");
    view.set_packet_type(0x0102_0304);
    assert_eq!(view.tracker_id(), *b"wxyz");
    assert_eq!(view.packet_type(), 0x0102_0304);
    assert_eq!(buf, *b"wxyz\x01\x02\x03\x04");
    assert_eq!(
        Records::new(&bytes[8..], RecordLayout::V4).map(|r| r.len()),
        Ok(2)
    );
    assert_eq!(
        Records::new(&bytes[9..], RecordLayout::V4),
        Err(Error::PartialRecord { trailing: 27 })
    );
    assert!(Records::new(&[], RecordLayout::V6).unwrap().is_empty());
}
