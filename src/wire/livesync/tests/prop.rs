//! Property tests: arbitrary bytes never panic under any settings, records round-trip through
//! [`Builder`] and [`parse`], and any altered authenticated packet is refused.

use super::super::*;
use proptest::prelude::*;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// The four combinations of record size and secret.
fn all_settings() -> [Settings; 4] {
    let secret = || Secret::new(b"prop secret");
    [
        Settings::default(),
        Settings {
            v6_records: true,
            secret: None,
        },
        Settings {
            v6_records: false,
            secret: secret(),
        },
        Settings {
            v6_records: true,
            secret: secret(),
        },
    ]
}

/// Parses under every settings and walks whatever parsed.
fn check_any(bytes: &[u8]) {
    for settings in all_settings() {
        let _ = peek_tracker_id(bytes);
        match parse(bytes, &settings) {
            Ok(p) => {
                assert!(!p.records.is_empty());
                assert_eq!(p.records.iter().count(), p.records.len());
                let trailer = p.packet_type.trailer_len();
                assert_eq!(
                    HEADER_LEN + p.records.len() * p.records.layout().record_len() + trailer,
                    bytes.len()
                );
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
}

/// The address a record reads back as: v4-mapped IPv6 becomes IPv4.
fn canonical(peer: SocketAddr) -> SocketAddr {
    match peer.ip() {
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), peer.port()),
            None => SocketAddr::new(IpAddr::V6(ip), peer.port()),
        },
        IpAddr::V4(_) => peer,
    }
}

fn any_record(v6: bool) -> impl Strategy<Value = Record> {
    let ip: BoxedStrategy<IpAddr> = if v6 {
        prop_oneof![
            any::<[u8; 16]>().prop_map(|o| IpAddr::V6(Ipv6Addr::from(o))),
            any::<[u8; 4]>().prop_map(|o| IpAddr::V4(o.into())),
        ]
        .boxed()
    } else {
        any::<[u8; 4]>().prop_map(|o| IpAddr::V4(o.into())).boxed()
    };
    (any::<[u8; 20]>(), ip, any::<u16>(), any::<u8>()).prop_map(|(info_hash, ip, port, flags)| {
        Record {
            info_hash,
            peer: SocketAddr::new(ip, port),
            flags: Flags::from_bits(flags),
        }
    })
}

fn any_type() -> impl Strategy<Value = PacketType> {
    prop_oneof![
        Just(PacketType::PeerSync),
        Just(PacketType::PeerSyncV6),
        Just(PacketType::AuthPeerSync),
        Just(PacketType::AuthPeerSyncV6),
    ]
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        check_any(&bytes);
    }

    /// Random bodies behind each known type, to reach the MAC and record checks.
    #[test]
    fn arbitrary_bodies_never_panic(
        t in any_type(),
        id in any::<[u8; 4]>(),
        body in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut bytes = id.to_vec();
        bytes.extend_from_slice(&(t as u32).to_be_bytes());
        bytes.extend_from_slice(&body);
        check_any(&bytes);
    }

    #[test]
    fn records_round_trip(
        settings_index in 0usize..4,
        ipv6 in any::<bool>(),
        id in any::<[u8; 4]>(),
        seed in proptest::collection::vec(any_record(true), 1..80),
    ) {
        let settings = all_settings()[settings_index].clone();
        let t = settings.packet_type_for(ipv6);
        let layout = settings.layout(t);
        let mut builder = Builder::new(id, t, &settings).unwrap();
        // Records of the family the layout holds.
        let records: Vec<Record> = seed
            .into_iter()
            .filter(|r| layout == RecordLayout::V6 || r.peer.is_ipv4())
            .collect();
        let mut pushed = Vec::new();
        for r in &records {
            match builder.push(r) {
                Ok(Fill::Room) => pushed.push(*r),
                Ok(Fill::Full) => {
                    pushed.push(*r);
                    break;
                }
                Err(e) => panic!("push: {e}"),
            }
        }
        prop_assert!(builder.len() <= max_records(layout, t));
        let mut out = Vec::new();
        let n = builder.emit(&mut out);
        prop_assert_eq!(n, out.len());
        prop_assert!(out.len() <= MAX_PACKET_LEN);
        if pushed.is_empty() {
            prop_assert_eq!(n, 0);
            return Ok(());
        }
        let p = parse(&out, &settings).unwrap();
        prop_assert_eq!(p.tracker_id, id);
        prop_assert_eq!(p.packet_type, t);
        let back: Vec<Record> = p.records.iter().collect();
        let want: Vec<Record> = pushed
            .iter()
            .map(|r| Record { peer: canonical(r.peer), ..*r })
            .collect();
        prop_assert_eq!(back, want);
    }

    #[test]
    fn altered_authenticated_packets_are_refused(
        ipv6 in any::<bool>(),
        records in proptest::collection::vec(any_record(false), 1..10),
        at in any::<prop::sample::Index>(),
        xor in 1u8..,
    ) {
        let settings = all_settings()[2].clone();
        let t = settings.packet_type_for(ipv6);
        let mut builder = Builder::new(*b"auth", t, &settings).unwrap();
        for r in &records {
            builder.push(r).unwrap();
        }
        let mut out = Vec::new();
        builder.emit(&mut out);
        prop_assert!(parse(&out, &settings).is_ok());
        let i = at.index(out.len());
        out[i] ^= xor;
        prop_assert!(parse(&out, &settings).is_err());
        // Dropping the last byte, or adding one, is refused too.
        let mut cut = out.clone();
        cut[i] ^= xor;
        cut.pop();
        prop_assert!(parse(&cut, &settings).is_err());
        cut.push(0);
        cut.push(0);
        prop_assert!(parse(&cut, &settings).is_err());
    }
}
