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
        (c.max_new_torrents_per_net, c.max_peers_per_source),
        (10_000, 8)
    );
    assert_eq!(
        c.http,
        HttpConfig {
            max_connections: 10000,
            max_request_size: 8192,
            max_header_lines: 64,
            idle_timeout: 30,
            keepalive: true,
            header_timeout: 10,
            max_pipelined: 16,
            max_write_buffer: 262144,
            fullscrape_max_age: 30,
            fullscrape_max_streams: 64,
        }
    );
    assert_eq!(c.fullscrape_interval, 300);
    assert_eq!(
        c.udp,
        UdpConfig {
            recv_buffer: 8388608,
            send_buffer: 8388608,
            rate_limit: 500,
            rate_burst: 10_000,
            steer_by_info_hash: true,
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
        "tracker.numwant.default 230\ntracker.numwant.max 240\n",
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
listen.tls [::1]:8443 /etc/ot/fullchain.pem /etc/ot/privkey.pem
listen.tls 127.0.0.1 cert.pem key.pem
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
tracker.mode private_listed
api.listen 127.0.0.1
api.listen [::1]:8081
db.path /var/lib/ot/sqlite3.db
http.max_connections 123
http.max_request_size 4096
http.max_header_lines 32
http.idle_timeout 5
http.header_timeout 3
http.max_pipelined 4
http.max_write_buffer 65536
http.keepalive no
http.fullscrape_max_age 5
http.fullscrape_max_streams 8
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
            "listen.tls [::1]:8443 /etc/ot/fullchain.pem /etc/ot/privkey.pem",
            "listen.tls 127.0.0.1:6969 cert.pem key.pem",
            "# access.whitelist (not set)",
            "access.blacklist /etc/ot/black list.txt",
            "access.stats 127.0.0.1",
            "access.stats 10.0.0.0/8",
            "access.stats ::1",
            "access.stats_path my/stats",
            "access.proxy fd00::/8",
            "access.reload_max_drop 50",
            "access.proxy_header X-Forwarded-For",
            "tracker.rootdir /var/lib/ot",
            "tracker.user _ot",
            "tracker.redirect_url https://example.org/#top",
            "livesync.cluster.listen 224.0.42.23:9696",
            "livesync.cluster.node_ip 10.0.0.2",
            "# livesync.cluster.peer (not set)",
            "# livesync.cluster.secret (not set)",
            "livesync.cluster.v6_records off",
            "livesync.cluster.max_delay 15",
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
            "tracker.max_new_torrents_per_net 10000",
            "tracker.max_peers_per_source 8",
            "tracker.mode private_listed",
            "tracker.workers 1",
            "tracker.cpu_affinity off",
            "tracker.sched_batch on",
            "api.listen 127.0.0.1:1212",
            "api.listen [::1]:8081",
            "# api.listen_tls (not set)",
            "# api.token (not set)",
            "db.path /var/lib/ot/sqlite3.db",
            "# db.url (not set)",
            "http.max_connections 123",
            "http.max_request_size 4096",
            "http.max_header_lines 32",
            "http.idle_timeout 5",
            "http.header_timeout 3",
            "http.max_pipelined 4",
            "http.max_write_buffer 65536",
            "http.keepalive off",
            "http.fullscrape_max_age 5",
            "http.fullscrape_max_streams 8",
            "udp.recv_buffer 0",
            "udp.send_buffer 65536",
            "udp.rate_limit 500",
            "udp.rate_burst 10000",
            "udp.steer_by_info_hash on",
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

/// Names in the style of a directive: dotted lower-case words (`tracker.numwant.max`).
fn looks_like_directive(word: &str) -> bool {
    word.contains('.')
        && word.split('.').all(|part| {
            part.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}

#[test]
fn sample_config_documents_every_directive_and_its_default() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/opentracker.conf.sample");
    let sample = std::fs::read_to_string(path).unwrap();
    // A directive is documented by a line that starts with its name, commented out or not
    // (`# tracker.numwant.max N   most peers ...`, `# tracker.numwant.max 200`).
    let lines: Vec<&str> = sample
        .lines()
        .map(|l| l.trim_start().trim_start_matches('#').trim())
        .collect();
    let documented: std::collections::BTreeSet<&str> = lines
        .iter()
        .filter_map(|l| l.split_ascii_whitespace().next())
        .filter(|w| looks_like_directive(w))
        .collect();
    let table: std::collections::BTreeSet<&str> = DIRECTIVES.iter().copied().collect();
    let missing: Vec<_> = table.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&table).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "opentracker.conf.sample lacks {missing:?}; it documents {unknown:?}, not in the table"
    );
    // "The values shown are the defaults": each default appears as `[# ]NAME VALUE`.
    let defaults = Config::default();
    for directive in DIRECTIVE_TABLE {
        for value in directive.values(&defaults, true) {
            let line = format!("{} {value}", directive.name);
            assert!(
                lines.contains(&line.as_str()),
                "opentracker.conf.sample does not show the default `{line}`"
            );
        }
    }
}

#[test]
fn table_is_enumerable_and_its_defaults_parse_back() {
    let names: Vec<&str> = DIRECTIVE_TABLE.iter().map(|d| d.name).collect();
    assert_eq!(names, DIRECTIVES);
    let mut env_names = std::collections::HashSet::new();
    for d in DIRECTIVE_TABLE {
        assert!(looks_like_directive(d.name), "{}", d.name);
        // The environment variable of the next issue is derived from the name alone.
        let env = format!(
            "OPENTRACKER_RS_{}",
            d.name.replace('.', "__").to_ascii_uppercase()
        );
        assert!(
            env_names.insert(env),
            "{} gives a duplicate variable",
            d.name
        );
        assert!(!d.doc().is_empty(), "{} has no doc", d.name);
        let _ = d.syntax();
        // The default, printed, is a value the directive accepts and changes nothing.
        let defaults = d.values(&Config::default(), false);
        assert!(d.repeatable || defaults.len() <= 1, "{}", d.name);
        let mut c = Config::default();
        for v in &defaults {
            assert_eq!(file::apply(&mut c, d.name, v), Ok(None), "{} {v}", d.name);
        }
        assert_eq!(c, Config::default(), "{}", d.name);
    }
    let syntax = |name: &str| {
        let d = DIRECTIVE_TABLE.iter().find(|d| d.name == name).unwrap();
        (d.syntax(), d.unit, d.repeatable)
    };
    assert_eq!(
        syntax("tracker.announce_interval"),
        (Syntax::Number { min: 1, max: 86400 }, "seconds", false)
    );
    assert_eq!(
        syntax("listen.tcp"),
        (Syntax::Address { default_port: 6969 }, "", true)
    );
    assert!(syntax("listen.tcp_udp").2);
    assert_eq!(syntax("http.keepalive"), (Syntax::Switch, "", false));
    assert_eq!(syntax("access.proxy"), (Syntax::Network, "", true));
    assert_eq!(syntax("tracker.user"), (Syntax::Text, "", false));
    assert_eq!(syntax("tracker.rootdir"), (Syntax::Path, "", false));
}

/// The kinds of values the next directives need, declared the way `config.rs` declares the
/// current ones: an enumeration, `N|auto`, a repeatable value of two words with a secret part,
/// repeatable listeners, a secret, a section.
mod next {
    use std::net::SocketAddr;
    use std::ops::RangeInclusive;

    use crate::config::table::{Applied, Field, MASK, Setter, Syntax, directives};

    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub enum Mode {
        #[default]
        Public,
        Listed,
        Private,
        PrivateListed,
    }

    const MODES: [(&str, Mode); 4] = [
        ("public", Mode::Public),
        ("listed", Mode::Listed),
        ("private", Mode::Private),
        ("private_listed", Mode::PrivateListed),
    ];

    impl Field for Mode {
        type Spec = ();
        fn set(&mut self, text: &str, (): &()) -> Result<(), String> {
            *self = MODES
                .iter()
                .find(|(name, _)| *name == text)
                .map(|(_, mode)| *mode)
                .ok_or_else(|| {
                    format!("invalid mode \"{text}\": expected public, listed, private or private_listed")
                })?;
            Ok(())
        }
        fn texts(&self) -> Vec<String> {
            MODES
                .iter()
                .filter(|(_, mode)| mode == self)
                .map(|(name, _)| (*name).to_owned())
                .collect()
        }
        fn syntax((): &()) -> Syntax {
            Syntax::Choice(&["public", "listed", "private", "private_listed"])
        }
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Workers {
        Auto,
        Count(u32),
    }

    impl Field for Workers {
        type Spec = RangeInclusive<u32>;
        fn set(&mut self, text: &str, spec: &Self::Spec) -> Result<(), String> {
            *self = if text == "auto" {
                Workers::Auto
            } else {
                let mut n = 0;
                n.set(text, spec)?;
                Workers::Count(n)
            };
            Ok(())
        }
        fn texts(&self) -> Vec<String> {
            vec![match self {
                Workers::Auto => "auto".to_owned(),
                Workers::Count(n) => n.to_string(),
            }]
        }
        fn syntax(_: &Self::Spec) -> Syntax {
            Syntax::Other("N|auto")
        }
    }

    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Token {
        pub label: String,
        pub secret: String,
    }

    impl Field for Vec<Token> {
        type Spec = ();
        const REPEATABLE: bool = true;
        fn set(&mut self, text: &str, (): &()) -> Result<(), String> {
            let (label, secret) = text
                .split_once([' ', '\t'])
                .map(|(label, secret)| (label, secret.trim_ascii()))
                .ok_or_else(|| format!("expected LABEL SECRET, got \"{text}\""))?;
            self.push(Token {
                label: label.to_owned(),
                secret: secret.to_owned(),
            });
            Ok(())
        }
        fn texts(&self) -> Vec<String> {
            self.iter()
                .map(|t| format!("{} {}", t.label, t.secret))
                .collect()
        }
        fn masked(&self) -> Vec<String> {
            self.iter().map(|t| format!("{} {MASK}", t.label)).collect()
        }
        fn syntax((): &()) -> Syntax {
            Syntax::Other("LABEL SECRET")
        }
    }

    /// A hook on a section's field: warns about a URL without a scheme.
    fn db_url(cfg: &mut Next, text: &str, set: Setter<Next>) -> Applied {
        set(cfg, text)?;
        Ok((!text.contains("://")).then(|| "no scheme; sqlite:// assumed".to_owned()))
    }

    directives! {
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct Next {
            /// Who may announce.
            "tracker.mode" => mode: Mode;
            /// Event loops to run.
            "tracker.workers" => workers: Workers = Workers::Auto, [1..=64], "threads";
            /// API listeners.
            "api.listen" => api_listen: Vec<SocketAddr>, [8080, "API"];
            /// API tokens.
            [secret] "api.token" => tokens: Vec<Token>;
        } and {
            pub db: Db,
        }
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct Db in db {
            /// The database.
            [secret] "db.url" => url: Option<String>, hook db_url;
        }
    }
}

#[test]
fn the_table_expresses_the_next_directives() {
    use next::{DIRECTIVE_TABLE, DIRECTIVES, Mode, Next, Workers};
    let find = |name: &str| DIRECTIVE_TABLE.iter().find(|d| d.name == name).unwrap();
    let mut c = Next::default();
    assert_eq!((c.mode, c.workers), (Mode::Public, Workers::Auto));
    let mut apply = |name: &str, text: &str| find(name).apply(&mut c, text);
    assert_eq!(apply("tracker.mode", "private_listed"), Ok(None));
    assert_eq!(
        apply("tracker.mode", "open"),
        Err("invalid mode \"open\": expected public, listed, private or private_listed".into())
    );
    assert_eq!(apply("tracker.workers", "8"), Ok(None));
    assert_eq!(
        apply("tracker.workers", "65"),
        Err("value 65 is out of range 1..=64".into())
    );
    assert_eq!(apply("api.listen", "127.0.0.1"), Ok(None));
    assert_eq!(
        apply("api.listen", "127.0.0.1:8080"),
        Err("API listener 127.0.0.1:8080 is already configured".into())
    );
    assert_eq!(apply("api.token", "alice s3cret"), Ok(None));
    assert_eq!(apply("api.token", "bob \thunter2"), Ok(None));
    assert_eq!(
        apply("db.url", "/var/lib/ot.db"),
        Ok(Some("no scheme; sqlite:// assumed".into()))
    );
    assert_eq!(c.db.url.as_deref(), Some("/var/lib/ot.db"));
    let print = |masked: bool| -> Vec<String> {
        DIRECTIVE_TABLE
            .iter()
            .flat_map(|d| {
                let values = d.values(&c, masked);
                values.into_iter().map(move |v| format!("{} {v}", d.name))
            })
            .collect()
    };
    assert_eq!(
        print(true),
        [
            "tracker.mode private_listed",
            "tracker.workers 8",
            "api.listen 127.0.0.1:8080",
            "api.token alice (secret)",
            "api.token bob (secret)",
            "db.url (secret)",
        ]
    );
    assert_eq!(
        print(false)[3..],
        [
            "api.token alice s3cret",
            "api.token bob hunter2",
            "db.url /var/lib/ot.db"
        ]
    );
    // Enumerable with syntax, flags and default, as environment variables will need.
    assert_eq!(
        DIRECTIVES,
        [
            "tracker.mode",
            "tracker.workers",
            "api.listen",
            "api.token",
            "db.url"
        ]
    );
    let mode = find("tracker.mode");
    assert_eq!(
        mode.syntax(),
        Syntax::Choice(&["public", "listed", "private", "private_listed"])
    );
    assert_eq!(mode.values(&Next::default(), false), ["public"]);
    let workers = find("tracker.workers");
    assert_eq!(workers.syntax(), Syntax::Other("N|auto"));
    assert_eq!(workers.values(&Next::default(), false), ["auto"]);
    assert_eq!(workers.unit, "threads");
    let token = find("api.token");
    assert!(token.repeatable && token.secret && !mode.repeatable && !mode.secret);
    assert!(find("api.listen").repeatable && find("db.url").secret);
    assert_eq!(find("db.url").doc(), "The database.");
}

#[test]
fn api_tokens_are_masked_and_checked() {
    let mut c = Config::default();
    let text = "api.listen 127.0.0.1:0\napi.token site 0123456789abcdef0123\napi.token ops s3cr3t-s3cr3t-s3cr3t\n";
    parse_str(text, "api.conf", &mut c).unwrap();
    c.finish().unwrap();
    assert_eq!(c.api_tokens.len(), 2);
    assert_eq!(c.api_tokens[0].secret, "0123456789abcdef0123");
    let out = c.to_config_text();
    assert!(
        out.contains("api.token site (secret)\napi.token ops (secret)\n"),
        "{out}"
    );
    assert!(
        !out.contains("0123456789abcdef0123") && !out.contains("s3cr3t"),
        "{out}"
    );
    assert!(!format!("{:?}", c.api_tokens).contains("0123456789"));
    let err = |text: &str| {
        let mut c = Config::default();
        parse_str(text, "api.conf", &mut c).unwrap_err().to_string()
    };
    assert_eq!(
        err("api.token site short"),
        "api.conf:1: api.token: the secret of token \"site\" is shorter than 16 characters"
    );
    assert_eq!(
        err("api.token site"),
        "api.conf:1: api.token: expected LABEL SECRET"
    );
    assert_eq!(
        err("api.token a 0123456789abcdef\napi.token a 0123456789abcdefg"),
        "api.conf:2: api.token: token \"a\" is already configured"
    );
    assert_eq!(
        err("tracker.mode secret"),
        "api.conf:1: tracker.mode: invalid mode \"secret\": expected public, listed, private or private_listed"
    );
}

#[test]
fn api_listener_checks() {
    let mut c = Config::default();
    parse_str(
        "listen.tcp 127.0.0.1:7000\napi.listen 127.0.0.1:7000\n",
        "a.conf",
        &mut c,
    )
    .unwrap();
    assert_eq!(
        c.finish().unwrap_err().to_string(),
        "configuration: api.listen: 127.0.0.1:7000 is also a tracker listener (listen.tcp)"
    );
    let mut c = Config::default();
    parse_str("api.listen 127.0.0.1:7001\n", "a.conf", &mut c).unwrap();
    c.finish().unwrap();
    assert!(
        c.warnings.iter().any(|w| w.contains("no api.token is set")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn db_url_masks_only_the_password() {
    let mut c = Config::default();
    let text = "db.url mysql://tracker:p@ss:w0rd@db.example:3306/torrust?prefer_socket=false\n";
    parse_str(text, "db.conf", &mut c).unwrap();
    c.finish().unwrap();
    let url = c.db_url.as_ref().unwrap();
    assert_eq!(
        url.expose(),
        "mysql://tracker:p@ss:w0rd@db.example:3306/torrust?prefer_socket=false"
    );
    let masked = "mysql://tracker:(secret)@db.example:3306/torrust?prefer_socket=false";
    assert_eq!(url.masked(), masked);
    assert_eq!(url.to_string(), masked);
    assert!(!format!("{c:?}").contains("w0rd"));
    let out = c.to_config_text();
    assert!(out.contains(&format!("\ndb.url {masked}\n")), "{out}");
    assert!(!out.contains("w0rd"), "{out}");
    // Without a password there is nothing to mask.
    assert_eq!(
        DbUrl::parse("mysql://tracker@db/torrust").unwrap().masked(),
        "mysql://tracker@db/torrust"
    );
}

#[test]
fn db_url_errors_and_exclusive_with_db_path() {
    let err = |text: &str| {
        let mut c = Config::default();
        match parse_str(text, "db.conf", &mut c) {
            Err(e) => e.to_string(),
            Ok(()) => c.finish().unwrap_err().to_string(),
        }
    };
    for (url, why) in [
        ("postgres://u:TopSecret@h/d", "not a mysql:// URL"),
        ("mysql://u:TopSecret@h", "no database"),
        ("mysql://u:TopSecret@h/", "no database"),
        ("mysql://h/d", "no user"),
        ("mysql://:TopSecret@h/d", "no user"),
        ("mysql://u:TopSecret@/d", "no host"),
        ("mysql://u:Top Secret@h/d", "blanks"),
    ] {
        let e = err(&format!("db.url {url}"));
        assert!(e.starts_with("db.conf:1: db.url: "), "{e}");
        assert!(e.contains(why), "{url}: {e}");
        assert!(!e.contains("Secret"), "{e}");
    }
    assert_eq!(
        err("db.path /var/lib/ot.db\ndb.url mysql://u:p@h/d"),
        "configuration: db.url: db.path and db.url are exclusive: one database, a SQLite file \
         or a MySQL / MariaDB server"
    );
}

#[test]
fn tls_listeners_take_three_words_and_refuse_a_taken_address() {
    let mut c = Config::default();
    let e = parse_str("listen.tls 127.0.0.1:443 cert.pem\n", "t.conf", &mut c).unwrap_err();
    assert_eq!(
        e.to_string(),
        "t.conf:1: listen.tls: expected ADDRESS CERT KEY (three words), got 2 word(s)"
    );
    let mut c = Config::default();
    let text = "listen.tls 127.0.0.1:443 c k\nlisten.tls 127.0.0.1:443 c2 k2\n";
    let e = parse_str(text, "t.conf", &mut c).unwrap_err();
    assert!(e.to_string().contains("already configured"), "{e}");
    let mut c = Config::default();
    let text = "listen.tcp 127.0.0.1:443\napi.listen_tls 127.0.0.1:443 c k\n";
    parse_str(text, "t.conf", &mut c).unwrap();
    let e = c.finish().unwrap_err();
    assert!(e.to_string().contains("two TCP listeners"), "{e}");
    // Only TLS listeners: no default plain listeners are added.
    let mut c = Config::default();
    parse_str("listen.tls [::]:443 c k\n", "t.conf", &mut c).unwrap();
    c.finish().unwrap();
    assert!(c.listen_tcp.is_empty() && c.listen_udp.is_empty());
    assert_eq!(c.api_listen_tls, []);
    assert_eq!(c.listen_tls[0].addr.port(), 443);
}

/// `tracker.workers` (default 1, `auto`), and opentracker's `listen.udp.workers` mapped onto
/// it when `tracker.workers` is left at 1.
#[test]
fn worker_count_from_tracker_workers_or_udp_workers() {
    let count = |text: &str| {
        let mut c = Config::default();
        parse_str(text, "w.conf", &mut c).unwrap();
        c.worker_count()
    };
    assert_eq!(count(""), 1);
    assert_eq!(count("tracker.workers 3\n"), 3);
    assert_eq!(count("listen.udp.workers 2\n"), 2);
    assert_eq!(count("listen.udp.workers 2\ntracker.workers 4\n"), 4);
    assert_eq!(
        count("tracker.workers auto\n"),
        crate::config::allowed_cpus().len()
    );
    let mut c = Config::default();
    let e = parse_str("tracker.workers 0\n", "w.conf", &mut c).unwrap_err();
    assert!(e.to_string().contains("tracker.workers"), "{e}");
}
