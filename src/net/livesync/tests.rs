//! Unit tests of the live sync sockets, sender and receiver.

use super::*;
use crate::service::{Announce, Policy, Proto};

fn settings() -> Settings {
    Settings::default()
}

fn packet(id: TrackerId, records: &[Record], settings: &Settings) -> Vec<u8> {
    let ty = settings.packet_type_for(records[0].peer.is_ipv6());
    let mut b = Builder::new(id, ty, settings).unwrap();
    for r in records {
        b.push(r).unwrap();
    }
    let mut out = Vec::new();
    b.emit(&mut out);
    out
}

fn rec(peer: &str, flags: Flags) -> Record {
    Record {
        info_hash: [3; 20],
        peer: peer.parse().unwrap(),
        flags,
    }
}

fn nodes() -> Vec<IpNet> {
    vec![
        "10.0.0.0/24".parse().unwrap(),
        "fd00::2/128".parse().unwrap(),
    ]
}

fn src(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn datagrams_are_checked_then_applied() {
    let mut t = Tracker::new(Policy::default());
    t.enable_sync(*b"self");
    let s = settings();
    let good = packet(
        *b"node",
        &[
            rec("1.2.3.4:6881", Flags::LEECHING),
            rec("1.2.3.5:6881", Flags::SEEDING),
        ],
        &s,
    );
    let n = |t: &mut Tracker, data: &[u8], from: &str| {
        handle_datagram(data, src(from), &nodes(), &s, *b"self", t, 1)
    };
    assert_eq!(n(&mut t, &good, "10.0.1.1:9696"), 0);
    assert_eq!(
        n(
            &mut t,
            &packet(*b"self", &[rec("1.2.3.4:1", Flags::LEECHING)], &s),
            "10.0.0.2:9696"
        ),
        0
    );
    assert_eq!(n(&mut t, &good[..good.len() - 3], "10.0.0.2:9696"), 0);
    assert_eq!(n(&mut t, &good[..5], "10.0.0.2:9696"), 0);
    assert_eq!(t.peers(), 0);
    assert_eq!(n(&mut t, &good, "[::ffff:10.0.0.2]:9696"), 2);
    assert_eq!(n(&mut t, &good, "[fd00::2]:9696"), 2);
    let l = &t.stats.livesync;
    assert_eq!(l.packets_refused_for("not_node"), 1);
    assert_eq!(l.packets_refused_for("own_id"), 1);
    assert_eq!(l.packets_refused_for("partial_record"), 1);
    assert_eq!(l.packets_refused_for("too_short"), 1);
    assert_eq!((l.packets_received, l.records_received), (2, 4));
    assert_eq!(t.peers(), 2);
    // Applied records are never queued for sending.
    assert!(t.sync.as_ref().unwrap().is_empty());
    let c = t.scrape_one(&[3; 20], 1).unwrap();
    assert_eq!((c.seeders, c.leechers), (1, 1));
    let stop = packet(*b"node", &[rec("1.2.3.4:6881", Flags::STOPPED)], &s);
    assert_eq!(n(&mut t, &stop, "10.0.0.9:1"), 1);
    assert_eq!(t.peers(), 1);
}

#[test]
fn secret_is_required_when_set() {
    let mut t = Tracker::new(Policy::default());
    let with = Settings {
        v6_records: false,
        secret: Secret::new(b"right secret"),
    };
    let wrong = Settings {
        v6_records: false,
        secret: Secret::new(b"wrong secret"),
    };
    let r = [rec("[2001:db8::7]:6881", Flags::SEEDING)];
    let h = |t: &mut Tracker, data: &[u8]| {
        handle_datagram(data, src("10.0.0.2:1"), &nodes(), &with, *b"self", t, 1)
    };
    assert_eq!(h(&mut t, &packet(*b"node", &r, &settings())), 0);
    assert_eq!(h(&mut t, &packet(*b"node", &r, &wrong)), 0);
    assert_eq!(h(&mut t, &packet(*b"node", &r, &with)), 1);
    let l = &t.stats.livesync;
    assert_eq!(l.packets_refused_for("unauthenticated"), 1);
    assert_eq!(l.packets_refused_for("bad_mac"), 1);
    assert_eq!(t.v6.peers(), 1);
}

proptest::proptest! {
    /// Any datagram from a node changes the store only through whole records of a packet
    /// that parses; nothing panics.
    #[test]
    fn random_datagrams_change_nothing_unless_they_parse(
        data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        header in proptest::prelude::any::<bool>(),
    ) {
        let mut data = data;
        if header && data.len() >= 8 {
            data[4..8].copy_from_slice(&0u32.to_be_bytes());
        }
        let mut t = Tracker::new(Policy::default());
        let s = settings();
        let applied =
            handle_datagram(&data, src("10.0.0.2:1"), &nodes(), &s, *b"self", &mut t, 1);
        match livesync::parse(&data, &s) {
            Ok(p) if data[..4] != *b"self" => {
                proptest::prop_assert!(applied <= p.records.len());
            }
            _ => {
                proptest::prop_assert_eq!(applied, 0);
                proptest::prop_assert_eq!(t.peers(), 0);
                proptest::prop_assert_eq!(t.stats.livesync.packets_refused_total(), 1);
            }
        }
    }
}

#[test]
fn flags_round_trip_through_changes() {
    for (flags, seeder, event) in [
        (Flags::LEECHING, false, Event::None),
        (Flags::SEEDING, true, Event::None),
        (Flags::SEEDING | Flags::COMPLETED, true, Event::Completed),
        (Flags::COMPLETED, false, Event::None),
        (Flags::STOPPED, false, Event::Stopped),
        (Flags::SEEDING | Flags::STOPPED, true, Event::Stopped),
        (Flags::FROM_SYNC | Flags::SEEDING, true, Event::None),
    ] {
        let change = change_of(&rec("10.9.9.9:5", flags));
        assert_eq!((change.seeder, change.event), (seeder, event), "{flags:?}");
        if !flags.from_sync() && flags != Flags::COMPLETED {
            assert_eq!(flags_of(&change), flags);
        }
    }
}

#[test]
fn config_from_directives() {
    let parse = |text: &str| {
        let mut cfg = Config::default();
        crate::config::parse_str(text, "test.conf", &mut cfg).unwrap();
        LivesyncConfig::from_config(&cfg)
    };
    let (off, warnings) = parse("livesync.cluster.node_ip 10.0.0.2\n").unwrap();
    assert!(off.is_none() && warnings.len() == 1);
    let (on, warnings) = parse("livesync.cluster.listen 10.0.0.1\n").unwrap();
    let on = on.unwrap();
    assert_eq!(on.mode, Mode::Multicast);
    assert_eq!(on.listen, src("10.0.0.1:9696"));
    assert_eq!(on.max_delay, Duration::from_secs(15));
    assert!(warnings[0].contains("node_ip"), "{warnings:?}");
    assert_eq!(on.bind_addresses(), vec![src("0.0.0.0:9696")]);
    let (uni, _) = parse(
        "livesync.cluster.listen 10.0.0.1:9000\nlivesync.cluster.peer 10.0.0.2\n\
         livesync.cluster.peer [fd00::3]:9001\nlivesync.cluster.node_ip 10.0.0.0/24\n\
         livesync.cluster.secret 0123456789abcdef\nlivesync.cluster.v6_records on\n",
    )
    .unwrap();
    let uni = uni.unwrap();
    assert_eq!(
        uni.mode,
        Mode::Unicast(vec![src("10.0.0.2:9696"), src("[fd00::3]:9001")])
    );
    assert_eq!(
        uni.bind_addresses(),
        vec![src("10.0.0.1:9000"), src("[::]:9000")]
    );
    assert!(uni.settings.secret.is_some() && uni.settings.v6_records);
    let (peers_only, _) = parse("livesync.cluster.peer 10.0.0.2\n").unwrap();
    assert_eq!(peers_only.unwrap().listen, src("0.0.0.0:9696"));
    for (text, want) in [
        (
            "livesync.cluster.listen 224.0.42.23\n",
            "configuration: livesync.cluster.listen: 224.0.42.23 is a multicast address",
        ),
        (
            "livesync.cluster.listen [fd00::1]\n",
            "configuration: livesync.cluster.listen: fd00::1 is an IPv6 address",
        ),
        (
            "livesync.cluster.peer 0.0.0.0\n",
            "configuration: livesync.cluster.peer: 0.0.0.0:9696 cannot receive",
        ),
    ] {
        let e = parse(text).unwrap_err().to_string();
        assert!(e.starts_with(want), "{e}");
    }
}

#[test]
fn sender_fills_packets_and_respects_the_delay() {
    // Unicast to a socket of our own, on loopback.
    let sink = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sink.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let cfg = LivesyncConfig {
        listen: src("127.0.0.1:0"),
        mode: Mode::Unicast(vec![sink.local_addr().unwrap()]),
        node_ips: Vec::new(),
        settings: Settings::default(),
        max_delay: Duration::from_secs(15),
        recv_buffer: 0,
    };
    let sockets = bind(&cfg).unwrap();
    let mut t = Tracker::new(Policy::default());
    let start = Instant::now();
    let mut l = Livesync::new(sockets, &cfg, &mut t, start).unwrap();
    let id = l.tracker_id();
    let announce = |t: &mut Tracker, i: u32| {
        let a = Announce {
            info_hash: [9; 20],
            port: 1000 + i as u16,
            left: Some(1),
            event: Event::None,
            numwant: Some(0),
        };
        let ip = IpAddr::from([10, 0, (i >> 8) as u8, i as u8]);
        t.serve_announce(&a, None, ip, Proto::Udp, 1, &mut Vec::new())
            .unwrap();
    };
    // The first record after a quiet spell goes out at once.
    announce(&mut t, 0);
    l.step(&mut t, 1, start);
    let mut buf = [0u8; 2048];
    let (n, _) = sink.recv_from(&mut buf).unwrap();
    assert_eq!(n, 8 + 28);
    assert_eq!(&buf[..4], &id);
    // The next ones wait for the delay, unless a packet fills (52 records of 28 bytes).
    for i in 1..=60 {
        announce(&mut t, i);
    }
    l.step(&mut t, 1, start + Duration::from_secs(1));
    let (n, _) = sink.recv_from(&mut buf).unwrap();
    assert_eq!(n, 8 + 52 * 28);
    assert_eq!(l.next_timer(), Some(start + Duration::from_secs(16)));
    l.step(&mut t, 2, start + Duration::from_secs(2));
    sink.set_nonblocking(true).unwrap();
    assert!(sink.recv_from(&mut buf).is_err(), "8 records wait");
    l.step(&mut t, 16, start + Duration::from_secs(16));
    sink.set_nonblocking(false).unwrap();
    let (n, _) = sink.recv_from(&mut buf).unwrap();
    assert_eq!(n, 8 + 8 * 28);
    let st = &t.stats.livesync;
    assert_eq!((st.packets_sent, st.records_sent), (3, 61));
    assert_eq!(st.lag_last_ms, 15_000);
    assert_eq!(l.next_timer(), None);
    let parsed = livesync::parse(&buf[..n], &Settings::default()).unwrap();
    assert_eq!(parsed.records.len(), 8);
}
