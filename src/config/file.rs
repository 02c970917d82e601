//! The config file: opentracker's syntax (`opentracker.c:parse_configfile`) with every error
//! fatal, and [`apply`], the one way into the directive table for files and the command line.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::table::Applied;
use super::{Config, ConfigError, DIRECTIVE_TABLE};

/// Largest config file read, in bytes (1 MiB): `-f /dev/zero` fails instead of eating memory.
pub const MAX_FILE_SIZE: u64 = 1 << 20;

/// Reads and applies the config file at `path` to `cfg`, line by line, in order (as
/// opentracker's `-f`; later values overwrite earlier ones, repeatable directives append).
///
/// Errors (the first one stops parsing; `cfg` may be partly updated):
/// - the file cannot be opened or read, or is larger than [`MAX_FILE_SIZE`]:
///   `PATH: cannot read config file: OS ERROR` (opentracker only warns; here it is fatal);
/// - any line error of [`parse_str`], with `origin` = `path` as written.
pub fn parse_file(path: &Path, cfg: &mut Config) -> Result<(), ConfigError> {
    let origin = path.display().to_string();
    let read_error = |why: String| ConfigError {
        origin: origin.clone(),
        line: None,
        directive: String::new(),
        message: format!("cannot read config file: {why}"),
    };
    let file = File::open(path).map_err(|e| read_error(e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| read_error(e.to_string()))?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(read_error(format!("larger than {MAX_FILE_SIZE} bytes")));
    }
    parse_lines(&bytes, &origin, cfg)
}

/// Applies config text to `cfg`; `origin` names it in errors and warnings (a file name).
///
/// Syntax (as opentracker): one `name value` directive per line; leading and trailing
/// whitespace is trimmed; empty lines and lines whose first non-blank character is `#` are
/// ignored; there are no inline comments (the whole rest of the line is the value, so URLs
/// may hold `#`); the name ends at the first space or tab. Unlike opentracker, lines are not
/// cut at 512 bytes, and every error is fatal.
///
/// Errors, `ORIGIN:LINE: DIRECTIVE: MESSAGE` (line numbers from 1):
/// `unknown directive`, `missing value`, `control character in value`,
/// `line is not valid UTF-8`, and each directive's value errors, e.g.
/// `opentracker.conf:12: listen.tcp: invalid address "1.2.3.4:99999": port out of range`.
/// Warnings (obsolete directives) are pushed to [`Config::warnings`] in the same format.
pub fn parse_str(text: &str, origin: &str, cfg: &mut Config) -> Result<(), ConfigError> {
    parse_lines(text.as_bytes(), origin, cfg)
}

fn parse_lines(bytes: &[u8], origin: &str, cfg: &mut Config) -> Result<(), ConfigError> {
    let source = format!("file {origin}");
    if !cfg.sources.contains(&source) {
        cfg.sources.push(source);
    }
    for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line_no = index + 1;
        let fail = |directive: &str, message: String| ConfigError {
            origin: origin.to_owned(),
            line: Some(line_no),
            directive: directive.to_owned(),
            message,
        };
        let line = std::str::from_utf8(raw)
            .map_err(|_| fail("", "line is not valid UTF-8".to_owned()))?
            .trim_ascii();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = match line.split_once([' ', '\t']) {
            Some((name, value)) => (name, value.trim_ascii()),
            None => (line, ""),
        };
        match apply(cfg, name, value) {
            Ok(None) => {}
            Ok(Some(warning)) => cfg
                .warnings
                .push(format!("{origin}:{line_no}: {name}: {warning}")),
            Err(message) => return Err(fail(name, message)),
        }
    }
    Ok(())
}

/// Applies one directive to `cfg`: finds it in [`DIRECTIVE_TABLE`], checks the value is not
/// empty and holds no control character (tabs allowed), then lets the directive parse and store
/// it. Shared by the file parser and the command line (whose flags map onto directives).
/// `Ok(Some(text))` is a warning for the caller to record.
///
/// Errors: `unknown directive` (`not supported: ...` for opentracker's FIFO directives),
/// `missing value`, `control character in value`, and the directive's own value errors (for a
/// secret directive with the value replaced by [`super::MASK`] wherever they quote it).
pub(crate) fn apply(cfg: &mut Config, name: &str, value: &str) -> Applied {
    let Some(directive) = DIRECTIVE_TABLE.iter().find(|d| d.name == name) else {
        return Err(match name {
            "access.fifo_add" | "access.fifo_delete" => {
                "not supported: dynamic access lists (FIFOs) are not implemented".to_owned()
            }
            _ => "unknown directive".to_owned(),
        });
    };
    if value.is_empty() {
        return Err("missing value".to_owned());
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err("control character in value".to_owned());
    }
    let applied = directive.apply(cfg, value);
    if directive.secret {
        // An error that quotes the value must not print the secret.
        return applied.map_err(|message| message.replace(value, super::MASK));
    }
    applied
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DIRECTIVES;
    use ipnet::IpNet;
    use std::net::SocketAddr;
    use std::path::PathBuf;

    fn sa(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    fn net(text: &str) -> IpNet {
        text.parse().unwrap()
    }

    /// An operator's config in opentracker's style: comments, blank lines, indentation,
    /// every opentracker directive (and the commented-out examples opentracker ships).
    const SAMPLE: &str = "\
# opentracker config file
#

# I)   Addresses to listen on. Port 6969 is implied when none is given.
#
#      listen.udp.workers must come before the listen lines it is meant for.
listen.udp.workers 0
listen.tcp_udp 0.0.0.0
listen.tcp_udp [::1]:6970
   listen.tcp 192.168.0.1:80
listen.udp\t10.0.0.5:6971
# listen.tcp_udp 10.0.0.9

# II)  Whitelist of info_hashes, one hex hash per line.
access.whitelist /etc/opentracker/whitelist.txt
#access.blacklist ./blacklist

# III) Who may see /stats, and under which path.
access.stats 127.0.0.1
access.stats 10.0.0.0/8
access.stats_path /ot-stats

# IV)  Proxies whose X-Forwarded-For is believed.
access.proxy 10.0.0.1
access.proxy fd00::/8

# V)   Where to chroot, whom to become, where / redirects to.
tracker.rootdir /usr/local/etc/opentracker
tracker.user    _opentracker
tracker.redirect_url https://example.org/tracker#about

# VI)  Live sync cluster.
livesync.cluster.listen 224.0.42.23:9696
livesync.cluster.node_ip 10.0.0.2
livesync.cluster.node_ip 10.0.0.3

# VII) Obsolete, opentracker ignores it.
batchsync.cluster.admin_ip 10.1.1.1
";

    #[test]
    fn opentracker_sample_config() {
        let mut cfg = Config::default();
        parse_str(SAMPLE, "opentracker.conf", &mut cfg).unwrap();
        assert_eq!(cfg.udp_workers, 0);
        assert_eq!(
            cfg.listen_tcp,
            [sa("0.0.0.0:6969"), sa("[::1]:6970"), sa("192.168.0.1:80")]
        );
        assert_eq!(
            cfg.listen_udp,
            [sa("0.0.0.0:6969"), sa("[::1]:6970"), sa("10.0.0.5:6971")]
        );
        assert_eq!(
            cfg.whitelist,
            Some(PathBuf::from("/etc/opentracker/whitelist.txt"))
        );
        assert_eq!(cfg.blacklist, None);
        assert_eq!(cfg.stats_allowed, [net("127.0.0.1/32"), net("10.0.0.0/8")]);
        assert_eq!(cfg.stats_path, "ot-stats");
        assert_eq!(cfg.proxies, [net("10.0.0.1/32"), net("fd00::/8")]);
        assert_eq!(
            cfg.rootdir,
            Some(PathBuf::from("/usr/local/etc/opentracker"))
        );
        assert_eq!(cfg.user.as_deref(), Some("_opentracker"));
        // No inline comments: the '#' stays in the URL.
        assert_eq!(
            cfg.redirect_url.as_deref(),
            Some("https://example.org/tracker#about")
        );
        assert_eq!(cfg.livesync_listen, Some(sa("224.0.42.23:9696")));
        assert_eq!(
            cfg.livesync_node_ips,
            [net("10.0.0.2/32"), net("10.0.0.3/32")]
        );
        assert_eq!(
            cfg.warnings,
            [
                "opentracker.conf:38: batchsync.cluster.admin_ip: obsolete (opentracker never \
              parsed it); ignored"
            ]
        );
        assert_eq!(cfg.sources, ["file opentracker.conf"]);
        // Everything else keeps its default.
        let d = Config::default();
        assert_eq!(cfg.announce_interval, d.announce_interval);
        assert_eq!(cfg.http, d.http);
        assert_eq!(cfg.udp, d.udp);
    }

    #[test]
    fn own_directives() {
        let text = "tracker.announce_interval 900\n\
                    tracker.numwant.default 30\n\
                    tracker.numwant.max 100\n\
                    tracker.peer_timeout 1800\n\
                    tracker.torrent_timeout 3600\n\
                    tracker.scrape.max_info_hashes 74\n\
                    tracker.state_file /var/lib/ot/state\n\
                    tracker.allow_root yes\n\
                    tracker.pid_file /run/ot.pid\n\
                    tracker.log_file /var/log/ot.log\n\
                    tracker.random_peers 20\n\
                    tracker.state_interval 0\n\
                    http.max_connections 500\n\
                    http.max_request_size 4096\n\
                    http.idle_timeout 10\n\
                    http.keepalive off\n\
                    http.header_timeout 7\n\
                    http.max_pipelined 2\n\
                    http.max_write_buffer 4096\n\
                    tracker.max_torrents 100\n\
                    tracker.max_peers 0\n\
                    udp.recv_buffer 1048576\n\
                    udp.send_buffer 0\n";
        let mut cfg = Config::default();
        parse_str(text, "x.conf", &mut cfg).unwrap();
        assert_eq!(cfg.announce_interval, 900);
        assert_eq!(cfg.numwant_default, 30);
        assert_eq!(cfg.numwant_max, 100);
        assert_eq!(cfg.peer_timeout, 1800);
        assert_eq!(cfg.torrent_timeout, 3600);
        assert_eq!(cfg.max_scrape_hashes, 74);
        assert_eq!(cfg.state_file, Some(PathBuf::from("/var/lib/ot/state")));
        assert!(cfg.allow_root);
        assert_eq!(cfg.pid_file, Some(PathBuf::from("/run/ot.pid")));
        assert_eq!(cfg.log_file, Some(PathBuf::from("/var/log/ot.log")));
        assert_eq!(cfg.random_peers, 20);
        assert_eq!(cfg.state_interval, 0);
        assert_eq!(cfg.http.max_connections, 500);
        assert_eq!(cfg.http.max_request_size, 4096);
        assert_eq!(cfg.http.idle_timeout, 10);
        assert!(!cfg.http.keepalive);
        assert_eq!(cfg.http.header_timeout, 7);
        assert_eq!(cfg.http.max_pipelined, 2);
        assert_eq!(cfg.http.max_write_buffer, 4096);
        assert_eq!((cfg.max_torrents, cfg.max_peers), (100, 0));
        assert_eq!(cfg.udp.recv_buffer, 1 << 20);
        assert_eq!(cfg.udp.send_buffer, 0);
        assert!(cfg.warnings.is_empty());
    }

    fn err(text: &str) -> String {
        let mut cfg = Config::default();
        parse_str(text, "opentracker.conf", &mut cfg)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn errors_name_file_line_and_directive() {
        let cases: &[(&str, &str)] = &[
            (
                "# c\n\nlisten.tcp 1.2.3.4:99999\n",
                "opentracker.conf:3: listen.tcp: invalid address \"1.2.3.4:99999\": port out of range",
            ),
            (
                "foo.bar 1\n",
                "opentracker.conf:1: foo.bar: unknown directive",
            ),
            (
                "listen.tcp=1.2.3.4\n",
                "opentracker.conf:1: listen.tcp=1.2.3.4: unknown directive",
            ),
            (
                "listen.tcp\n",
                "opentracker.conf:1: listen.tcp: missing value",
            ),
            (
                "listen.tcp   \t \n",
                "opentracker.conf:1: listen.tcp: missing value",
            ),
            (
                "access.whitelist /a\naccess.blacklist /b\n",
                "opentracker.conf:2: access.blacklist: access.whitelist and access.blacklist are exclusive",
            ),
            (
                "access.blacklist /b\n  access.whitelist /a\n",
                "opentracker.conf:2: access.whitelist: access.whitelist and access.blacklist are exclusive",
            ),
            (
                "access.stats 10.0.0.0/40\n",
                "opentracker.conf:1: access.stats: invalid address or network \"10.0.0.0/40\": prefix length must be 0..=32",
            ),
            (
                "access.proxy proxy.local\n",
                "opentracker.conf:1: access.proxy: invalid address or network \"proxy.local\": not an IP address",
            ),
            (
                "access.stats_path /\n",
                "opentracker.conf:1: access.stats_path: stats path is empty",
            ),
            (
                "access.stats_path /stats?x\n",
                "opentracker.conf:1: access.stats_path: stats path \"/stats?x\" contains '?' and could never match",
            ),
            (
                "listen.tcp_udp 1.2.3.4\nlisten.udp 1.2.3.4:6969\n",
                "opentracker.conf:2: listen.udp: UDP listener 1.2.3.4:6969 is already configured",
            ),
            (
                "tracker.numwant.max 0\n",
                "opentracker.conf:1: tracker.numwant.max: value 0 is out of range 1..=256",
            ),
            (
                "tracker.numwant.max 513\n",
                "opentracker.conf:1: tracker.numwant.max: value 513 is out of range 1..=256",
            ),
            (
                "tracker.peer_timeout 0\n",
                "opentracker.conf:1: tracker.peer_timeout: value 0 is out of range 1..=86400",
            ),
            (
                "tracker.scrape.max_info_hashes 0\n",
                "opentracker.conf:1: tracker.scrape.max_info_hashes: value 0 is out of range 1..=1024",
            ),
            (
                "tracker.announce_interval 30m\n",
                "opentracker.conf:1: tracker.announce_interval: invalid number \"30m\": expected decimal digits",
            ),
            (
                "tracker.random_peers 201\n",
                "opentracker.conf:1: tracker.random_peers: value 201 is out of range 0..=200",
            ),
            (
                "tracker.allow_root sometimes\n",
                "opentracker.conf:1: tracker.allow_root: invalid boolean \"sometimes\": expected on/off, yes/no, true/false or 1/0",
            ),
            (
                "http.max_request_size 100\n",
                "opentracker.conf:1: http.max_request_size: value 100 is out of range 256..=1048576",
            ),
            (
                "http.keepalive maybe\n",
                "opentracker.conf:1: http.keepalive: invalid boolean \"maybe\": expected on/off, yes/no, true/false or 1/0",
            ),
            (
                "listen.udp.workers 5000\n",
                "opentracker.conf:1: listen.udp.workers: value 5000 is out of range 0..=1024",
            ),
            (
                "livesync.cluster.listen 224.0.42.23:x\n",
                "opentracker.conf:1: livesync.cluster.listen: invalid address \"224.0.42.23:x\": port is not a decimal number",
            ),
            (
                "access.fifo_add /run/ot/add\n",
                "opentracker.conf:1: access.fifo_add: not supported: dynamic access lists (FIFOs) are not implemented",
            ),
            (
                "tracker.user no\u{7}body\n",
                "opentracker.conf:1: tracker.user: control character in value",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(err(text), *want, "{text:?}");
        }
    }

    #[test]
    fn invalid_utf8_line_is_named() {
        let mut cfg = Config::default();
        let e = parse_lines(b"# ok\ntracker.user \xff\n", "o.conf", &mut cfg).unwrap_err();
        assert_eq!(e.to_string(), "o.conf:2: line is not valid UTF-8");
    }

    #[test]
    fn whitespace_comments_and_line_endings() {
        let text = "  \t# indented comment\r\n\r\n\ttracker.user\t  nobody  \r\n#tracker.user root\n\
                    tracker.redirect_url http://a/b c\n";
        let mut cfg = Config::default();
        parse_str(text, "o.conf", &mut cfg).unwrap();
        assert_eq!(cfg.user.as_deref(), Some("nobody"));
        // Inner whitespace belongs to the value.
        assert_eq!(cfg.redirect_url.as_deref(), Some("http://a/b c"));
    }

    #[test]
    fn long_lines_are_not_cut() {
        let url = format!("https://example.org/{}", "a".repeat(1000));
        let text = format!("tracker.redirect_url {url}\n");
        let mut cfg = Config::default();
        parse_str(&text, "o.conf", &mut cfg).unwrap();
        assert_eq!(cfg.redirect_url, Some(url));
    }

    #[test]
    fn later_values_win_and_lists_append() {
        let text = "tracker.user a\ntracker.user b\naccess.whitelist /x\naccess.whitelist /y\n\
                    listen.tcp 127.0.0.1:0\nlisten.tcp 127.0.0.1:0\n";
        let mut cfg = Config::default();
        parse_str(text, "o.conf", &mut cfg).unwrap();
        assert_eq!(cfg.user.as_deref(), Some("b"));
        assert_eq!(cfg.whitelist, Some(PathBuf::from("/y")));
        // Port 0 may repeat: each bind gets its own OS-assigned port.
        assert_eq!(cfg.listen_tcp, [sa("127.0.0.1:0"), sa("127.0.0.1:0")]);
    }

    #[test]
    fn udp_workers_warns() {
        let mut cfg = Config::default();
        parse_str("listen.udp.workers 4\n", "o.conf", &mut cfg).unwrap();
        assert_eq!(cfg.udp_workers, 4);
        assert_eq!(
            cfg.warnings,
            [
                "o.conf:1: listen.udp.workers: mapped onto tracker.workers 4 (event loops serving \
              every listener) unless tracker.workers is set"
            ]
        );
    }

    #[test]
    fn parse_file_reads_a_temp_file() {
        let path = std::env::temp_dir().join(format!(
            "otrs-config-test-{}-parse-file.conf",
            std::process::id()
        ));
        std::fs::write(&path, "listen.tcp 127.0.0.1:0\n\nlisten.udp nope\n").unwrap();
        let mut cfg = Config::default();
        let e = parse_file(&path, &mut cfg).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            e.to_string(),
            format!(
                "{}:3: listen.udp: invalid address \"nope\": not an IP address (host names are not resolved)",
                path.display()
            )
        );
        assert_eq!(cfg.listen_tcp, [sa("127.0.0.1:0")]);
    }

    #[test]
    fn parse_file_missing_is_an_error() {
        let path = Path::new("/nonexistent/opentracker-rs/ot.conf");
        let e = parse_file(path, &mut Config::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/nonexistent/opentracker-rs/ot.conf: cannot read config file: \
             No such file or directory (os error 2)"
        );
    }

    #[test]
    fn parse_file_rejects_a_directory() {
        let e = parse_file(&std::env::temp_dir(), &mut Config::default()).unwrap_err();
        assert!(e.message.starts_with("cannot read config file: "), "{e}");
        assert_eq!(e.line, None);
    }

    #[test]
    fn random_input_never_panics() {
        // Directive names with values glued from address-like fragments and odd bytes.
        let pieces = [
            "[", "]", ":", "::", "%", "/", "1", "0", "255.", "99999", "ffff", "#", " ", "\t", "é",
            "\u{0}", "\r", "-", "on", "1.2.3.4", "[::1]", "/33",
        ];
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..20_000 {
            let name = DIRECTIVES[rng.usize(..DIRECTIVES.len())];
            let mut line = format!("{name} ");
            for _ in 0..rng.usize(0..6) {
                line.push_str(pieces[rng.usize(..pieces.len())]);
            }
            let mut cfg = Config::default();
            let _ = parse_str(&line, "fuzz.conf", &mut cfg);
            let mut bytes = line.into_bytes();
            if let Some(b) = bytes.last_mut() {
                *b = rng.u8(..);
            }
            let _ = parse_lines(&bytes, "fuzz.conf", &mut cfg);
        }
    }

    #[test]
    fn every_directive_is_handled() {
        // Each known directive must get past the table lookup: a value error or success,
        // never "unknown directive".
        for name in DIRECTIVES {
            let mut cfg = Config::default();
            if let Err(e) = apply(&mut cfg, name, "1") {
                assert_ne!(e, "unknown directive", "{name}");
            }
        }
    }
}
