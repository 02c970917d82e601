//! Tests of the configuration: defaults, `finish`, errors, `--check-config` output.

use super::*;

fn sa(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

#[test]
fn defaults() {
    let c = Config::default();
    assert!(c.listen_tcp.is_empty() && c.listen_udp.is_empty());
    assert_eq!(c.stats_path, "stats");
    assert_eq!(
        (c.announce_interval, c.numwant_default, c.numwant_max),
        (1800, 50, 200)
    );
    assert_eq!(
        (c.peer_timeout, c.torrent_timeout, c.max_scrape_hashes),
        (2700, 86400, 64)
    );
    assert_eq!((c.max_torrents, c.max_peers), (5_000_000, 50_000_000));
    assert_eq!(
        c.http,
        HttpConfig {
            max_connections: 10000,
            max_request_size: 8192,
            idle_timeout: 30,
            keepalive: true,
            header_timeout: 10,
            max_pipelined: 16,
            max_write_buffer: 262144,
        }
    );
    assert_eq!(
        c.udp,
        UdpConfig {
            recv_buffer: 8388608,
            send_buffer: 8388608
        }
    );
}

#[test]
fn finish_adds_default_listeners_only_when_nothing_is_bound() {
    let both = [sa("0.0.0.0:6969"), sa("[::]:6969")];
    let mut c = Config::default();
    c.finish().unwrap();
    assert_eq!(c.listen_tcp, both);
    assert_eq!(c.listen_udp, both);
    c.finish().unwrap(); // idempotent
    assert_eq!(c.listen_tcp, both);

    let mut tcp_only = Config::default();
    tcp_only.listen_tcp.push(sa("127.0.0.1:80"));
    tcp_only.finish().unwrap();
    assert_eq!(tcp_only.listen_tcp, [sa("127.0.0.1:80")]);
    assert!(tcp_only.listen_udp.is_empty());

    let mut udp_only = Config::default();
    parse_str("listen.udp 127.0.0.1:0\n", "o.conf", &mut udp_only).unwrap();
    udp_only.finish().unwrap();
    assert!(udp_only.listen_tcp.is_empty());
    assert_eq!(udp_only.listen_udp, [sa("127.0.0.1:0")]);
}

#[test]
fn finish_checks_numwant_in_any_order() {
    let mut c = Config::default();
    // Order in the file does not matter: the check runs on the final values.
    parse_str(
        "tracker.numwant.default 300\ntracker.numwant.max 400\n",
        "o.conf",
        &mut c,
    )
    .unwrap();
    assert_eq!(c.finish(), Ok(()));

    let mut c = Config::default();
    parse_str("tracker.numwant.max 20\n", "o.conf", &mut c).unwrap();
    assert_eq!(
        c.finish().unwrap_err().to_string(),
        "configuration: tracker.numwant.default: 50 is larger than tracker.numwant.max (20)"
    );
}

#[test]
fn finish_warns_about_short_peer_timeout() {
    let mut c = Config::default();
    parse_str("tracker.peer_timeout 600\n", "o.conf", &mut c).unwrap();
    c.finish().unwrap();
    c.finish().unwrap();
    assert_eq!(
        c.warnings,
        [
            "configuration: tracker.peer_timeout: 600 s is shorter than \
          tracker.announce_interval (1800 s); peers will expire between announces"
        ]
    );
}

#[test]
fn error_display_forms() {
    let mut e = ConfigError {
        origin: "opentracker.conf".into(),
        line: Some(12),
        directive: "listen.tcp".into(),
        message: "invalid address \"1.2.3.4:99999\": port out of range".into(),
    };
    assert_eq!(
        e.to_string(),
        "opentracker.conf:12: listen.tcp: invalid address \"1.2.3.4:99999\": port out of range"
    );
    e.line = None;
    assert_eq!(
        e.to_string(),
        "opentracker.conf: listen.tcp: invalid address \"1.2.3.4:99999\": port out of range"
    );
    e.directive.clear();
    assert_eq!(
        e.to_string(),
        "opentracker.conf: invalid address \"1.2.3.4:99999\": port out of range"
    );
}

/// A config with every field away from its default.
fn everything() -> Config {
    let text = "\
listen.udp.workers 2
listen.tcp_udp 127.0.0.1:0
listen.tcp [::1]:8080
listen.udp [fe80::1%3]:6881
listen.udp 10.0.0.1
access.blacklist /etc/ot/black list.txt
access.stats 127.0.0.1
access.stats 10.0.0.0/8
access.stats ::1
access.stats_path /my/stats
access.proxy fd00::/8
tracker.rootdir /var/lib/ot
tracker.user _ot
tracker.redirect_url https://example.org/#top
livesync.cluster.listen 224.0.42.23
livesync.cluster.node_ip 10.0.0.2
tracker.state_file state.dump
tracker.allow_root on
tracker.pid_file /run/ot.pid
tracker.log_file ot.log
tracker.state_interval 60
tracker.announce_interval 900
tracker.numwant.default 25
tracker.numwant.max 100
tracker.peer_timeout 1200
tracker.torrent_timeout 7200
tracker.scrape.max_info_hashes 74
tracker.random_peers 7
tracker.fullscrape_interval 300
tracker.max_torrents 1000000
tracker.max_peers 5000000
http.max_connections 123
http.max_request_size 4096
http.idle_timeout 5
http.header_timeout 3
http.max_pipelined 4
http.max_write_buffer 65536
http.keepalive no
udp.recv_buffer 0
udp.send_buffer 65536
";
    let mut c = Config::default();
    parse_str(text, "all.conf", &mut c).unwrap();
    c.finish().unwrap();
    c
}

fn without_notes(mut c: Config) -> Config {
    c.sources.clear();
    c.warnings.clear();
    c
}

#[test]
fn to_config_text_round_trips() {
    for original in [everything(), Config::default(), {
        let mut c = Config::default();
        c.finish().unwrap();
        c
    }] {
        let text = original.to_config_text();
        let mut again = Config::default();
        parse_str(&text, "check.conf", &mut again).unwrap();
        assert_eq!(
            without_notes(again),
            without_notes(original.clone()),
            "{text}"
        );
    }
}

#[test]
fn to_config_text_exact() {
    let text = everything().to_config_text();
    let body: Vec<&str> = text.lines().skip(2).collect();
    assert_eq!(
        body,
        [
            "listen.udp.workers 2",
            "# listen.tcp_udp (written as listen.tcp and listen.udp)",
            "listen.tcp 127.0.0.1:0",
            "listen.tcp [::1]:8080",
            "listen.udp 127.0.0.1:0",
            "listen.udp [fe80::1%3]:6881",
            "listen.udp 10.0.0.1:6969",
            "# access.whitelist (not set)",
            "access.blacklist /etc/ot/black list.txt",
            "access.stats 127.0.0.1",
            "access.stats 10.0.0.0/8",
            "access.stats ::1",
            "access.stats_path my/stats",
            "access.proxy fd00::/8",
            "tracker.rootdir /var/lib/ot",
            "tracker.user _ot",
            "tracker.redirect_url https://example.org/#top",
            "livesync.cluster.listen 224.0.42.23:9696",
            "livesync.cluster.node_ip 10.0.0.2",
            "# batchsync.cluster.admin_ip (obsolete, ignored)",
            "tracker.state_file state.dump",
            "tracker.allow_root on",
            "tracker.pid_file /run/ot.pid",
            "tracker.log_file ot.log",
            "tracker.state_interval 60",
            "tracker.announce_interval 900",
            "tracker.numwant.default 25",
            "tracker.numwant.max 100",
            "tracker.peer_timeout 1200",
            "tracker.torrent_timeout 7200",
            "tracker.scrape.max_info_hashes 74",
            "tracker.random_peers 7",
            "tracker.fullscrape_interval 300",
            "tracker.max_torrents 1000000",
            "tracker.max_peers 5000000",
            "http.max_connections 123",
            "http.max_request_size 4096",
            "http.idle_timeout 5",
            "http.header_timeout 3",
            "http.max_pipelined 4",
            "http.max_write_buffer 65536",
            "http.keepalive off",
            "udp.recv_buffer 0",
            "udp.send_buffer 65536",
        ]
    );
    assert!(text.starts_with("# opentracker-rs "), "{text}");
    assert!(
        text.contains("# sources: defaults, file all.conf\n"),
        "{text}"
    );
}

#[test]
fn to_config_text_names_every_directive() {
    let text = Config::default().to_config_text();
    for name in DIRECTIVES {
        let set = format!("\n{name} ");
        let unset = format!("\n# {name} (");
        assert!(
            text.contains(&set) || text.contains(&unset),
            "{name} missing in:\n{text}"
        );
    }
}
