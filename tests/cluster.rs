//! Live sync: trackers that share their peers (issue 12).
//!
//! - On loopback, without root: two nodes over unicast (a peer announced to one is in the
//!   other's replies; stopped removes it; seeders and completions carry over), hostile sync
//!   input (short, partial, unknown type, forged own id, sources not in node_ip, floods)
//!   changes nothing, and the config checks.
//! - In network namespaces (root; CI runs as root, elsewhere these tests say SKIPPED): three
//!   nodes on a bridge ([`lab`]), over multicast, over unicast, with a secret (a node with the
//!   wrong one is refused), and real clients: a libtorrent seeder announcing only to node A
//!   and a leecher only to node B complete a download.
//!
//! Every node runs with `livesync.cluster.max_delay 1`, so a record waits at most a second.

mod common;
#[path = "cluster/lab.rs"]
mod lab;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{announce, free_udp_port, hash};
use lab::{HUB_IP, Lab, Node, eventually, node_ip, send_udp};
use opentracker_rs::wire::livesync::{Builder, Flags, Record, Secret, Settings};

/// Seconds a change may take to reach every node (max_delay 1 plus scheduling).
const SYNC_SECS: u64 = 10;

/// A type-0 packet (or an authenticated one with `secret`) from `id` with one record.
fn packet(id: [u8; 4], record: Record, secret: Option<&str>) -> Vec<u8> {
    let settings = Settings {
        v6_records: false,
        secret: secret.and_then(|s| Secret::new(s.as_bytes())),
    };
    let ty = settings.packet_type_for(record.peer.is_ipv6());
    let mut b = Builder::new(id, ty, &settings).unwrap();
    b.push(&record).unwrap();
    let mut out = Vec::new();
    b.emit(&mut out);
    out
}

fn leecher(h: &[u8; 20], peer: &str) -> Record {
    Record {
        info_hash: *h,
        peer: peer.parse().unwrap(),
        flags: Flags::LEECHING,
    }
}

fn peer(ip: &str, port: u16) -> SocketAddr {
    format!("{ip}:{port}").parse().unwrap()
}

/// The config of one node: HTTP on `http`, stats for everyone, live sync lines.
fn node_config(http: &str, sync: &str) -> String {
    format!(
        "listen.tcp {http}\naccess.stats 0.0.0.0/0\ntracker.announce_interval 60\n\
         livesync.cluster.max_delay 1\n{sync}\n"
    )
}

/// The scenario every cluster runs: `nodes[0]`, `[1]`, `[2]` are A, B, C; requests come from
/// `client` (one address, peers told apart by port).
fn share_peers(nodes: &[Node], client: &str) {
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let h = hash(12);
    // A leecher announced to A reaches B and C.
    a.get(&announce(&h, 7001, 100, "&event=started"));
    for (name, n) in [("B", b), ("C", c)] {
        assert!(
            eventually(SYNC_SECS, || n.scrape(&h) == (0, 0, 1)),
            "{name} never learnt the leecher: {:?}\n{}",
            n.scrape(&h),
            n.log_text()
        );
    }
    // ... and is in B's reply to another peer.
    let got = b.announce_peers(&announce(&h, 7002, 100, "&numwant=50"));
    assert!(got.contains(&peer(client, 7001)), "B's reply {got:?}");
    // A seeder that completed on C: a seeder and a download everywhere.
    c.get(&announce(&h, 7003, 0, "&event=completed"));
    for (name, n) in [("A", a), ("B", b), ("C", c)] {
        assert!(
            eventually(SYNC_SECS, || n.scrape(&h) == (1, 1, 2)),
            "{name}: {:?}",
            n.scrape(&h)
        );
    }
    // The leecher of B completes: counted once on every node.
    b.get(&announce(&h, 7002, 0, "&event=completed"));
    for (name, n) in [("A", a), ("B", b), ("C", c)] {
        assert!(
            eventually(SYNC_SECS, || n.scrape(&h) == (2, 2, 1)),
            "{name}: {:?}",
            n.scrape(&h)
        );
    }
    // Stopped (at A, where it started) removes the first leecher everywhere.
    a.get(&announce(&h, 7001, 100, "&event=stopped"));
    for (name, n) in [("A", a), ("B", b), ("C", c)] {
        assert!(
            eventually(SYNC_SECS, || n.scrape(&h) == (2, 2, 0)),
            "{name}: {:?}",
            n.scrape(&h)
        );
    }
    let mut got = c.announce_peers(&announce(&h, 7004, 100, "&numwant=50"));
    got.sort();
    assert_eq!(got, [peer(client, 7002), peer(client, 7003)], "C's reply");
    for n in nodes {
        assert!(n.metric("opentracker_livesync_records_total{direction=\"received\"}") >= 3.0);
        assert!(n.metric("opentracker_livesync_packets_total{direction=\"sent\"}") >= 1.0);
        assert_eq!(
            n.metric("opentracker_livesync_packets_refused_total{reason=\"bad_mac\"}"),
            0.0
        );
    }
}

/// A packet from an address not in node_ip, and one carrying A's own tracker_id from B's
/// address: A ignores both.
fn refuse_strangers_and_forgeries(lab: &Lab, nodes: &[Node], sync_port: u16) {
    let a = &nodes[0];
    let a_sync = peer(&node_ip(0), sync_port);
    let h = hash(13);
    let not_node = a.metric("opentracker_livesync_packets_refused_total{reason=\"not_node\"}");
    let good = packet(*b"zzzz", leecher(&h, "192.0.2.1:6881"), None);
    send_udp(Some(&lab.hub), HUB_IP, a_sync, good);
    assert!(
        eventually(SYNC_SECS, || a.metric(
            "opentracker_livesync_packets_refused_total{reason=\"not_node\"}"
        ) > not_node),
        "A did not refuse the hub's packet"
    );
    let forged = packet(a.tracker_id, leecher(&h, "192.0.2.2:6881"), None);
    send_udp(Some(&lab.nodes[1]), &node_ip(1), a_sync, forged);
    assert!(
        eventually(SYNC_SECS, || a.metric(
            "opentracker_livesync_packets_refused_total{reason=\"own_id\"}"
        ) >= 1.0),
        "A did not refuse its own id"
    );
    // A real packet from B's address is taken: the two above were refused for who sent them.
    let real = packet(*b"bbbb", leecher(&h, "192.0.2.3:6881"), None);
    send_udp(Some(&lab.nodes[1]), &node_ip(1), a_sync, real);
    assert!(
        eventually(SYNC_SECS, || a.scrape(&h) == (0, 0, 1)),
        "{:?}",
        a.scrape(&h)
    );
}

/// Three nodes in a lab; `sync(i)` is node i's live sync config.
fn start_nodes(lab: &Lab, name: &str, sync: impl Fn(usize) -> String) -> Vec<Node> {
    (0..3)
        .map(|i| {
            let cfg = node_config(&format!("{}:6969", node_ip(i)), &sync(i));
            Node::start(
                &format!("{name}-{i}"),
                Some(&lab.nodes[i]),
                Some(&lab.hub),
                &cfg,
            )
        })
        .collect()
}

#[test]
fn three_nodes_over_multicast() {
    let Some(lab) = Lab::new("three_nodes_over_multicast", 3) else {
        return;
    };
    let nodes = start_nodes(&lab, "mcast", |i| {
        format!(
            "livesync.cluster.listen {}:9696\nlivesync.cluster.node_ip 10.77.0.0/29\n",
            node_ip(i)
        )
    });
    share_peers(&nodes, HUB_IP);
    refuse_strangers_and_forgeries(&lab, &nodes, 9696);
}

#[test]
fn three_nodes_over_unicast() {
    let Some(lab) = Lab::new("three_nodes_over_unicast", 3) else {
        return;
    };
    let nodes = start_nodes(&lab, "ucast", |i| {
        // Every node shares one list, itself included (skipped), and names each node.
        let mut s = format!("livesync.cluster.listen {}:9700\n", node_ip(i));
        for j in 0..3 {
            s += &format!(
                "livesync.cluster.peer {ip}:9700\nlivesync.cluster.node_ip {ip}\n",
                ip = node_ip(j)
            );
        }
        s
    });
    assert!(nodes[0].log_text().contains("is this node: skipped"));
    share_peers(&nodes, HUB_IP);
    refuse_strangers_and_forgeries(&lab, &nodes, 9700);
}

#[test]
fn a_node_with_the_wrong_secret_is_refused() {
    let Some(lab) = Lab::new("a_node_with_the_wrong_secret_is_refused", 3) else {
        return;
    };
    let nodes = start_nodes(&lab, "secret", |i| {
        let secret = if i < 2 {
            "the-right-cluster-secret"
        } else {
            "some-other-wrong-secret!"
        };
        format!(
            "livesync.cluster.listen {}:9696\nlivesync.cluster.node_ip 10.77.0.0/29\n\
             livesync.cluster.secret {secret}\n",
            node_ip(i)
        )
    });
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let h = hash(14);
    a.get(&announce(&h, 7001, 100, ""));
    assert!(eventually(SYNC_SECS, || b.scrape(&h) == (0, 0, 1)));
    c.get(&announce(&h, 7002, 0, ""));
    for n in [a, b] {
        assert!(
            eventually(SYNC_SECS, || n.metric(
                "opentracker_livesync_packets_refused_total{reason=\"bad_mac\"}"
            ) >= 1.0),
            "C's packets were not refused"
        );
    }
    assert!(c.metric("opentracker_livesync_packets_refused_total{reason=\"bad_mac\"}") >= 1.0);
    // C learnt nothing, A and B never got C's seeder.
    assert_eq!(c.scrape(&h), (1, 0, 0));
    assert_eq!(a.scrape(&h), (0, 0, 1));
    assert_eq!(b.scrape(&h), (0, 0, 1));
    // An unauthenticated packet (opentracker's) from a node address is refused too.
    let plain = packet(*b"otrk", leecher(&h, "192.0.2.9:6881"), None);
    send_udp(
        Some(&lab.nodes[2]),
        &node_ip(2),
        peer(&node_ip(0), 9696),
        plain,
    );
    assert!(eventually(SYNC_SECS, || a.metric(
        "opentracker_livesync_packets_refused_total{reason=\"unauthenticated\"}"
    ) >= 1.0));
    assert_eq!(a.scrape(&h), (0, 0, 1));
}

/// Real clients: a libtorrent seeder announces to A only, a leecher to B only; they meet
/// because A told B about the seeder.
#[test]
fn libtorrent_download_across_two_nodes() {
    let Some(lab) = Lab::new("libtorrent_download_across_two_nodes", 3) else {
        return;
    };
    let python = common::python_with("libtorrent");
    let nodes = start_nodes(&lab, "lt", |i| {
        format!(
            "livesync.cluster.listen {}:9696\nlivesync.cluster.node_ip 10.77.0.0/29\n",
            node_ip(i)
        )
    });
    let work = common::temp_dir("cluster-lt");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/libtorrent_swarm.py");
    // The clients live in node C's namespace (10.77.0.3), trackers A and B are across the
    // bridge.
    let mut child = Command::new("ip")
        .args(["netns", "exec", &lab.nodes[2], python, script])
        .args([
            "--announce",
            &format!("http://{}:6969/announce", node_ip(0)),
        ])
        .args([
            "--leecher-announce",
            &format!("http://{}:6969/announce", node_ip(1)),
        ])
        .args(["--listen-ip", &node_ip(2), "--family", "4"])
        .arg("--workdir")
        .arg(&work)
        .args(["--size-mib", "4", "--timeout", "90", "--hold"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut info_hash = None;
    let mut result = None;
    while result.is_none() {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(120)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("libtorrent gave no result; A:\n{}", nodes[0].log_text());
        };
        eprintln!("script: {line}");
        if let Some(h) = line.strip_prefix("INFO_HASH ") {
            let h = h.trim();
            let mut out = [0u8; 20];
            for (i, b) in out.iter_mut().enumerate() {
                *b = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap();
            }
            info_hash = Some(out);
        } else if line.starts_with("HOLDING") {
            // Both nodes show the swarm: two seeders, one download.
            let h = info_hash.expect("INFO_HASH first");
            for (name, n) in [("A", &nodes[0]), ("B", &nodes[1])] {
                assert!(
                    eventually(15, || n.scrape(&h) == (2, 1, 0)),
                    "{name}: {:?}",
                    n.scrape(&h)
                );
            }
            writeln!(child.stdin.take().unwrap(), "release").unwrap();
        } else if let Some(r) = line.strip_prefix("RESULT ") {
            result = Some(r.to_owned());
        }
    }
    let status = child.wait().unwrap();
    let result = result.unwrap();
    assert!(
        status.success() && result.contains("\"ok\": true"),
        "{result}\nA:\n{}\nB:\n{}",
        nodes[0].log_text(),
        nodes[1].log_text()
    );
    let _ = std::fs::remove_dir_all(&work);
}

/// Two nodes on loopback, each the other's unicast peer; 127.0.0.1 is the only node_ip.
fn loopback_pair(name: &str, extra: &str) -> (Node, Node, u16) {
    let (pa, pb) = (free_udp_port(), free_udp_port());
    let conf = |own: u16, other: u16| {
        node_config(
            "127.0.0.1:0",
            &format!(
                "livesync.cluster.listen 127.0.0.1:{own}\nlivesync.cluster.peer 127.0.0.1:{other}\n\
                 livesync.cluster.node_ip 127.0.0.1\n{extra}"
            ),
        )
    };
    let a = Node::start(&format!("{name}-a"), None, None, &conf(pa, pb));
    let b = Node::start(&format!("{name}-b"), None, None, &conf(pb, pa));
    (a, b, pa)
}

#[test]
fn two_nodes_on_loopback_share_peers() {
    let (a, b, _) = loopback_pair("pair", "");
    let h = hash(21);
    a.get(&announce(&h, 7001, 100, ""));
    assert!(
        eventually(SYNC_SECS, || b.scrape(&h) == (0, 0, 1)),
        "{}",
        b.log_text()
    );
    let got = b.announce_peers(&announce(&h, 7002, 100, "&numwant=50"));
    assert_eq!(got, vec![peer("127.0.0.1", 7001)]);
    b.get(&announce(&h, 7002, 0, "&event=completed"));
    assert!(eventually(SYNC_SECS, || a.scrape(&h) == (1, 1, 1)));
    a.get(&announce(&h, 7001, 100, "&event=stopped"));
    assert!(eventually(SYNC_SECS, || b.scrape(&h) == (1, 1, 0)));
    // mode=syncs: records received, records sent.
    let syncs = String::from_utf8(b.get("/stats?mode=syncs").body).unwrap();
    let mut lines = syncs.lines();
    assert_eq!(lines.next(), Some("2"), "{syncs}");
    assert_eq!(lines.next(), Some("2"), "{syncs}");
    let everything = String::from_utf8(a.get("/stats?mode=everything").body).unwrap();
    let id: String = a.tracker_id.iter().map(|b| format!("{b:02x}")).collect();
    assert!(everything.contains(&format!("<tracker_id>{id}</tracker_id>")));
    assert!(
        everything.contains("<livesync>\n      <count>2</count>"),
        "{everything}"
    );
    assert!(a.metric("opentracker_livesync_lag_seconds{stat=\"max\"}") <= 1.5);
}

#[test]
fn hostile_sync_input_changes_nothing() {
    let (a, b, pa) = loopback_pair("hostile", "");
    let to = peer("127.0.0.1", pa);
    let h = hash(22);
    let good = packet(*b"node", leecher(&h, "192.0.2.1:6881"), None);
    let mut partial = good.clone();
    partial.push(0);
    let mut unknown = good.clone();
    unknown[4..8].copy_from_slice(&7u32.to_be_bytes());
    let authenticated = packet(
        *b"node",
        leecher(&h, "192.0.2.1:6881"),
        Some("a-secret-we-lack"),
    );
    let port0 = packet(*b"node", leecher(&h, "192.0.2.1:0"), None);
    for (data, from) in [
        (good[..7].to_vec(), "127.0.0.1"),
        (good[..8].to_vec(), "127.0.0.1"),
        (partial, "127.0.0.1"),
        (unknown, "127.0.0.1"),
        (authenticated, "127.0.0.1"),
        (
            packet(a.tracker_id, leecher(&h, "192.0.2.1:6881"), None),
            "127.0.0.1",
        ),
        (good.clone(), "127.0.0.2"),
        (vec![0xff; 65_000], "127.0.0.1"),
        (port0, "127.0.0.1"),
    ] {
        send_udp(None, from, to, data);
    }
    // A flood of well-formed packets from a stranger: read in bounded turns, all refused
    // (the kernel drops what does not fit the socket's buffer).
    let stranger = std::net::UdpSocket::bind("127.0.0.3:0").unwrap();
    for _ in 0..20_000 {
        let _ = stranger.send_to(&good, to);
    }
    let refused = |reason: &str| {
        a.metric(&format!(
            "opentracker_livesync_packets_refused_total{{reason=\"{reason}\"}}"
        ))
    };
    assert!(
        eventually(SYNC_SECS, || refused("not_node") >= 100.0),
        "{}",
        refused("not_node")
    );
    for reason in [
        "too_short",
        "no_records",
        "partial_record",
        "unknown_type",
        "no_secret",
        "own_id",
    ] {
        assert!(refused(reason) >= 1.0, "{reason}");
    }
    assert_eq!(
        a.metric("opentracker_livesync_records_refused_total{reason=\"bad_peer\"}"),
        1.0
    );
    assert_eq!(a.scrape(&h), (0, 0, 0));
    // Still serving, still syncing.
    a.get(&announce(&h, 7001, 0, ""));
    assert!(eventually(SYNC_SECS, || b.scrape(&h) == (1, 0, 0)));
}

#[test]
fn check_config_masks_the_secret_and_refuses_a_group_address() {
    let dir = common::temp_dir("sync-check");
    let conf = dir.join("ot.conf");
    std::fs::write(
        &conf,
        "livesync.cluster.listen 10.0.0.1\nlivesync.cluster.node_ip 10.0.0.0/24\n\
         livesync.cluster.secret do-not-print-me-0123\n",
    )
    .unwrap();
    let out = Command::new(common::binary())
        .arg("-f")
        .arg(&conf)
        .arg("--check-config")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("livesync.cluster.secret (secret)"), "{text}");
    assert!(!text.contains("do-not-print-me"), "{text}");
    assert!(
        text.contains("livesync.cluster.node_ip 10.0.0.0/24"),
        "{text}"
    );
    std::fs::write(&conf, "livesync.cluster.listen 224.0.42.23\n").unwrap();
    let out = Command::new(common::binary())
        .arg("-f")
        .arg(&conf)
        .arg("--check-config")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("livesync.cluster.listen: 224.0.42.23 is a multicast address"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    // -i IP -s PORT as opentracker.
    let out = Command::new(common::binary())
        .args(["-i", "10.0.0.1", "-s", "9000", "--check-config"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("livesync.cluster.listen 10.0.0.1:9000"),
        "{text}"
    );
}

/// Two nodes on IPv6 loopback, unicast: IPv6 peers travel in type 1 (or, with
/// `livesync.cluster.v6_records on`, in type 0 with 40-byte records).
fn ipv6_pair(name: &str, extra: &str) {
    let port = || {
        std::net::UdpSocket::bind("[::1]:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (pa, pb) = (port(), port());
    let conf = |own: u16, other: u16| {
        format!(
            "listen.tcp [::1]:0\naccess.stats ::1\nlivesync.cluster.max_delay 1\n\
             livesync.cluster.listen [::1]:{own}\nlivesync.cluster.peer [::1]:{other}\n\
             livesync.cluster.node_ip ::1\n{extra}"
        )
    };
    let a = Node::start(&format!("{name}-a"), None, None, &conf(pa, pb));
    let b = Node::start(&format!("{name}-b"), None, None, &conf(pb, pa));
    let h = hash(23);
    a.get(&announce(&h, 7001, 0, ""));
    assert!(
        eventually(SYNC_SECS, || b.scrape(&h) == (1, 0, 0)),
        "{}",
        b.log_text()
    );
    let r = b.get(&announce(&h, 7002, 100, "&numwant=50"));
    let v = r.bencode();
    let peers6 = v.get(b"peers6").and_then(|p| p.as_bytes()).unwrap();
    let mut want = std::net::Ipv6Addr::LOCALHOST.octets().to_vec();
    want.extend_from_slice(&7001u16.to_be_bytes());
    assert_eq!(peers6, &want[..]);
}

#[test]
fn ipv6_peers_over_ipv6_unicast() {
    ipv6_pair("v6", "");
}

#[test]
fn ipv6_peers_in_opentracker_v6_records() {
    ipv6_pair("v6rec", "livesync.cluster.v6_records on\n");
}

/// A's UDP listener, from its log.
fn udp_listener(n: &Node) -> SocketAddr {
    n.log_text()
        .lines()
        .find_map(|l| l.split("listening: udp ").nth(1))
        .map(|a| a.trim().parse().unwrap())
        .expect("udp listener in the log")
}

/// Requests served by workers 0 and 1 of a node with `tracker.workers 2`, from `/metrics`.
fn worker_requests(n: &Node) -> [f64; 2] {
    [0, 1].map(|i| {
        n.metric(&format!(
            "opentracker_worker_requests_total{{worker=\"{i}\"}}"
        ))
    })
}

/// Node A with `tracker.workers 2` and a UDP listener, node B as the other tests' nodes; no
/// per-source quotas (every peer is 127.0.0.1). `max_delay` is A's. UDP steering off: one swarm's
/// announces must reach both workers (the kernel spreads the clients' source ports).
fn two_worker_pair(name: &str, max_delay: u32) -> (Node, Node, SocketAddr) {
    let (pa, pb) = (free_udp_port(), free_udp_port());
    let conf = |own: u16, other: u16, extra: &str| {
        format!(
            "listen.tcp 127.0.0.1:0\naccess.stats 0.0.0.0/0\ntracker.announce_interval 60\n\
             tracker.max_peers_per_source 0\nudp.rate_limit 0\n\
             livesync.cluster.listen 127.0.0.1:{own}\nlivesync.cluster.peer 127.0.0.1:{other}\n\
             livesync.cluster.node_ip 127.0.0.1\n{extra}"
        )
    };
    let a = Node::start(
        &format!("{name}-a"),
        None,
        None,
        &conf(
            pa,
            pb,
            &format!(
                "listen.udp 127.0.0.1:0\ntracker.workers 2\n\
                 livesync.cluster.max_delay {max_delay}\nudp.steer_by_info_hash off\n"
            ),
        ),
    );
    let b = Node::start(
        &format!("{name}-b"),
        None,
        None,
        &conf(pb, pa, "livesync.cluster.max_delay 1\n"),
    );
    // Logged once the workers are started, after the lines `Node::start` waits for.
    assert!(
        eventually(10, || a.log_text().contains("2 workers serve")),
        "A runs one worker:\n{}",
        a.log_text()
    );
    let udp = udp_listener(&a);
    (a, b, udp)
}

/// Issue #11: live sync with `tracker.workers 2`. Many UDP clients (one socket each, so the
/// kernel spreads them over both workers' sockets) announce to A; every announce reaches B,
/// whichever worker served it, and B's leecher is in the replies of both workers.
#[test]
fn a_node_with_two_workers_sends_what_every_worker_served() {
    use common::udp::Client;
    use opentracker_rs::types::Event;
    let (a, b, a_udp) = two_worker_pair("workers2", 1);
    let (h_b, h_c) = (hash(31), hash(32));
    // B's leecher, known to A's store and so to both of A's workers.
    b.get(&announce(&h_b, 7000, 100, ""));
    assert!(
        eventually(SYNC_SECS, || a.scrape(&h_b) == (0, 0, 1)),
        "{}",
        a.log_text()
    );
    let leecher_b = [127, 0, 0, 1, 0x1b, 0x58]; // 127.0.0.1:7000
    let before = worker_requests(&a);
    let (mut n, mut stopped, mut completed, mut records) = (0u32, 0u32, 0u32, 0u32);
    loop {
        for _ in 0..50 {
            let c = Client::new(a_udp);
            let id = c.connect();
            let port = 20_000 + n as u16;
            // A seeder is given leechers only: B's, the only one.
            let (_, leechers, _, peers) = c.announce(id, &h_b, port, 0, Event::Started, 200);
            assert_eq!((leechers, &peers[..]), (1, &leecher_b[..]), "client {n}");
            records += 1;
            if n % 3 == 0 {
                c.announce(id, &h_c, port, 100, Event::Started, 0);
                c.announce(id, &h_c, port, 0, Event::Completed, 0);
                completed += 1;
                records += 2;
            }
            if n % 5 == 0 {
                c.announce(id, &h_b, port, 0, Event::Stopped, 0);
                stopped += 1;
                records += 1;
            }
            n += 1;
        }
        let now = worker_requests(&a);
        if (0..2).all(|i| now[i] - before[i] >= 20.0) {
            break;
        }
        assert!(
            n < 1000,
            "one worker served (nearly) everything: {before:?} -> {now:?}"
        );
    }
    let want_b = (i64::from(n - stopped), 0, 1);
    let want_c = (i64::from(completed), i64::from(completed), 0);
    assert_eq!((a.scrape(&h_b), a.scrape(&h_c)), (want_b, want_c));
    assert!(
        eventually(SYNC_SECS, || (b.scrape(&h_b), b.scrape(&h_c))
            == (want_b, want_c)),
        "B: {:?} {:?}, want {want_b:?} {want_c:?}",
        b.scrape(&h_b),
        b.scrape(&h_c)
    );
    // Every record sent once (summed over A's workers), none dropped, all applied by B.
    let sent = "opentracker_livesync_records_total{direction=\"sent\"}";
    let received = "opentracker_livesync_records_total{direction=\"received\"}";
    assert!(
        eventually(SYNC_SECS, || a.metric(sent) == f64::from(records)),
        "A sent {} of {records}",
        a.metric(sent)
    );
    assert_eq!(a.metric("opentracker_livesync_queue_dropped_total"), 0.0);
    assert_eq!(b.metric(received), f64::from(records));
    // A received B's one record: /metrics shows the sums whichever worker answers.
    for _ in 0..8 {
        assert_eq!(a.metric(received), 1.0);
    }
    assert!(!a.log_text().contains("live sync runs with one worker"));
}

/// Records that wait for `max_delay` when A stops are sent at exit, those of worker 1
/// included: the workers move their last records to the queue before worker 0 sends it.
#[test]
fn records_waiting_at_exit_are_sent_whichever_worker_served_them() {
    use common::udp::Client;
    use opentracker_rs::types::Event;
    let (a, b, a_udp) = two_worker_pair("workers2-exit", 60);
    let h = hash(33);
    // The first record after a quiet spell goes at once; the next ones wait 60 s.
    let first = Client::new(a_udp);
    let id = first.connect();
    first.announce(id, &h, 21_000, 100, Event::Started, 0);
    assert!(eventually(SYNC_SECS, || b.scrape(&h) == (0, 0, 1)));
    let before = worker_requests(&a);
    // Fewer than a packet's 52 records, so none fills one and goes early.
    let clients = 40u16;
    for i in 1..=clients {
        let c = Client::new(a_udp);
        let id = c.connect();
        c.announce(id, &h, 21_000 + i, 100, Event::Started, 0);
    }
    let now = worker_requests(&a);
    assert!(
        (0..2).all(|i| now[i] > before[i]),
        "one worker served all {clients} clients: {before:?} -> {now:?}"
    );
    let all = (0, 0, 1 + i64::from(clients));
    assert_eq!(a.scrape(&h), all);
    assert_eq!(b.scrape(&h), (0, 0, 1), "the records went before the stop");
    drop(a);
    assert!(
        eventually(SYNC_SECS, || b.scrape(&h) == all),
        "B after A's exit: {:?}",
        b.scrape(&h)
    );
}
