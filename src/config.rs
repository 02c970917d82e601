//! Configuration: opentracker's config file and command line, plus opentracker-rs's own
//! settings in the same style.
//!
//! An opentracker operator's `opentracker.conf` and flags work unchanged (see
//! `shared/reference/opentracker.md` §3 and §4), with one deliberate difference: every
//! problem is fatal. opentracker prints `Unhandled line in config file` and carries on, or
//! only warns when `-f` names a missing file; a tracker that silently starts without its
//! whitelist or on the wrong address is worse than one that refuses to start. So every
//! function here returns a [`ConfigError`] naming the file, the line and the directive, and
//! `main` exits non-zero before binding anything. Nothing here opens a socket.
//!
//! Flow: [`parse_args`] starts from [`Config::default`], applies flags and `-f` files left
//! to right (as opentracker's getopt loop), then calls [`Config::finish`], which adds the
//! default listeners when nothing was bound and checks values against each other.
//! `--check-config` prints [`Config::to_config_text`], which parses back to the same
//! `Config`.

use std::fmt;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use ipnet::IpNet;

mod args;
mod file;
mod value;

pub use args::{parse_args, usage, version};
pub use file::{DIRECTIVES, MAX_FILE_SIZE, parse_file, parse_str};

/// Port of a listen address written without one (`listen.tcp_udp 1.2.3.4`), and of the
/// default listeners: 6969, as opentracker.
pub const DEFAULT_PORT: u16 = 6969;

/// Port of `livesync.cluster.listen` written without one: 9696, as opentracker
/// (`LIVESYNC_PORT`).
pub const LIVESYNC_DEFAULT_PORT: u16 = 9696;

/// The effective configuration. Every field names its directive, its flag, its unit and its
/// default; [`Config::default`] holds all defaults with empty listener lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// TCP (HTTP) listen addresses, in order: `listen.tcp`, `listen.tcp_udp`, `-i IP -p PORT`.
    /// Port 0 = OS-assigned. Default (applied by [`Config::finish`] only when neither list
    /// has an entry): `0.0.0.0:6969` and `[::]:6969`. The `[::]` socket must be bound with
    /// `IPV6_V6ONLY` so both can coexist.
    pub listen_tcp: Vec<SocketAddr>,
    /// UDP (BEP 15) listen addresses: `listen.udp`, `listen.tcp_udp`, `-i IP -P PORT`.
    /// Same default rule as `listen_tcp`.
    pub listen_udp: Vec<SocketAddr>,
    /// `listen.udp.workers N` (0..=1024, default 0). opentracker starts N blocking UDP
    /// threads per UDP socket; opentracker-rs serves UDP in its single-threaded loop, so
    /// the value is only recorded (a non-zero value adds a warning).
    pub udp_workers: u32,
    /// `access.whitelist PATH` / `-w PATH`: file of hex info_hashes; only those may announce.
    /// Read after the chroot (relative to `rootdir`), as opentracker. Exclusive with `blacklist`.
    pub whitelist: Option<PathBuf>,
    /// `access.blacklist PATH` / `-b PATH`: file of hex info_hashes that may not announce.
    /// Exclusive with `whitelist`.
    pub blacklist: Option<PathBuf>,
    /// `access.stats IP|CIDR` (repeatable) / `-A IP|CIDR`: who may read the stats path.
    /// A single address is a /32 or /128 network. Addresses are stored as written: a v4
    /// client seen as `::ffff:a.b.c.d` on a dual-stack socket must be unmapped before matching.
    pub stats_allowed: Vec<IpNet>,
    /// `access.stats_path PATH`: the stats URL path, stored without leading `/`; default
    /// `stats` (as opentracker). Never empty, never holds `?`.
    pub stats_path: String,
    /// `access.proxy IP|CIDR` (repeatable): peers whose `X-Forwarded-For` is believed.
    pub proxies: Vec<IpNet>,
    /// `tracker.rootdir DIR` / `-d DIR`: chroot target (as root) or chdir target, after binding.
    pub rootdir: Option<PathBuf>,
    /// `tracker.user NAME` / `-u NAME`: user to switch to after binding (opentracker
    /// defaults to `nobody` when run as root; `None` here leaves that choice to `main`).
    pub user: Option<String>,
    /// `tracker.redirect_url URL` / `-r URL`: `GET /` answers 302 to this URL. Not checked
    /// beyond "no control characters".
    pub redirect_url: Option<String>,
    /// `tracker.state_file PATH` / `-l PATH`: the `downloaded` counts, loaded at start (as
    /// opentracker's `-l`), written every `state_interval` and at exit (see [`crate::state`];
    /// the directive is opentracker-rs's own). Read after the chroot.
    pub state_file: Option<PathBuf>,
    /// `tracker.allow_root on|off` / `--allow-root`: serve as root when no `user` is set;
    /// default off, so starting as root without `tracker.user` is refused (opentracker instead
    /// switches to `nobody`).
    pub allow_root: bool,
    /// `tracker.pid_file PATH` / `--pid-file PATH`: the tracker's process id (decimal and a
    /// newline) is written here after binding, before the chroot and the privilege drop, and
    /// removed at a clean exit when still reachable. Default: none.
    pub pid_file: Option<PathBuf>,
    /// `tracker.log_file PATH` / `--log-file PATH`: once the tracker is ready to serve, its
    /// stderr (the log) is appended to this file, opened before the chroot. Default: none
    /// (stderr; `/dev/null` with `-D`).
    pub log_file: Option<PathBuf>,
    /// `-D` / `--daemon` (flag only): detach from the terminal after binding. Default off
    /// (foreground, as systemd's `Type=simple` wants).
    pub daemon: bool,
    /// `tracker.state_interval S`: seconds between two writes of `state_file`, 0..=86400,
    /// default 600; 0 writes it only at exit (SIGTERM/SIGINT). opentracker-rs's own.
    pub state_interval: u32,
    /// `livesync.cluster.listen IP[:PORT]` (default port 9696) / `-i IP -s PORT`. Parsed only.
    pub livesync_listen: Option<SocketAddr>,
    /// `livesync.cluster.node_ip IP|CIDR` (repeatable): peers allowed to send live sync. Parsed only.
    pub livesync_node_ips: Vec<IpNet>,
    /// `tracker.announce_interval S`: base `interval` sent to clients, seconds, 1..=86400,
    /// default 1800 (as opentracker, which adds a random -180..+179 s).
    pub announce_interval: u32,
    /// `tracker.numwant.default N`: peers returned when the client sends no numwant,
    /// 0..=512, default 50 (as opentracker). Must not exceed `numwant_max`.
    pub numwant_default: u32,
    /// `tracker.numwant.max N`: cap on numwant, 1..=512, default 200 (as opentracker).
    pub numwant_max: u32,
    /// `tracker.peer_timeout S`: a peer that has not announced for this long is dropped (at
    /// most `S / 4` later, see `swarm::clean`), seconds, 1..=86400, default 2700 (45 min, as
    /// opentracker).
    pub peer_timeout: u32,
    /// `tracker.torrent_timeout S`: an empty torrent with downloads is forgotten after this
    /// long, seconds, 1..=2592000, default 86400 (24 h, as opentracker).
    pub torrent_timeout: u32,
    /// `tracker.scrape.max_info_hashes N`: info_hashes answered per scrape, 1..=1024,
    /// default 64 (as opentracker's `OT_MAXMULTISCRAPE_COUNT`).
    pub max_scrape_hashes: u32,
    /// `tracker.random_peers N`: made-up peers with random public addresses mixed into each
    /// announce reply that carries peers, 0..=200, default 0 (off). opentracker-rs's own.
    pub random_peers: u32,
    /// `tracker.fullscrape_interval S`: seconds between two full scrapes (`GET /scrape`
    /// without info_hash) from one address (IPv6: one /64), 0..=86400, default 0 = no limit;
    /// a full scrape within the interval gets 429 (opentracker's compile-time
    /// `WANT_MODEST_FULLSCRAPES`: 300 s, 402).
    pub fullscrape_interval: u32,
    /// `tracker.max_torrents N`: most torrents held over both address families, 0..=2^40,
    /// default 5,000,000 (0 = no limit). When reached, an announce that would create a torrent is refused
    /// (HTTP `failure reason` / UDP error "tracker is full: no new torrents"); existing torrents keep
    /// working. Bounds the memory random info_hashes can take.
    pub max_torrents: u64,
    /// `tracker.max_peers N`: most peers held over both families, 0..=2^40, default
    /// 50,000,000 (0 = no limit). When reached, an announce that would add a peer is refused ("tracker is full: no
    /// new peers"); known peers keep announcing, `stopped` always works.
    pub max_peers: u64,
    /// HTTP server limits (`http.*`).
    pub http: HttpConfig,
    /// UDP socket settings (`udp.*`).
    pub udp: UdpConfig,
    /// Where values came from, in order of first use: `file PATH` per config file,
    /// `command line` if any flag other than `-f` was given. Empty = defaults only.
    /// Informational (printed by `--check-config`).
    pub sources: Vec<String>,
    /// Non-fatal findings for `main` to log, each `ORIGIN[:LINE]: DIRECTIVE: TEXT`
    /// (obsolete directives, ignored settings, suspicious combinations).
    pub warnings: Vec<String>,
}

/// HTTP server limits. Directives `http.*`; opentracker-rs's own (opentracker hard-codes them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpConfig {
    /// `http.max_connections N`: open TCP connections at most, 1..=1000000, default 10000.
    pub max_connections: usize,
    /// `http.max_request_size BYTES`: largest request head buffered, 256..=1048576, default
    /// 8192 (as opentracker's `G_INBUF_SIZE`).
    pub max_request_size: usize,
    /// `http.idle_timeout S`: a connection idle this long is closed, seconds, 1..=3600,
    /// default 30 (as opentracker's `OT_CLIENT_TIMEOUT`).
    pub idle_timeout: u32,
    /// `http.keepalive on|off`: honour `Connection: keep-alive`; default on (opentracker's
    /// default build closes after one reply).
    pub keepalive: bool,
    /// `http.header_timeout S`: a request head must be complete this many seconds after its
    /// first byte, or the connection is closed without a reply (slowloris), 1..=3600, default 10.
    pub header_timeout: u32,
    /// `http.max_pipelined N`: requests answered per connection per loop turn, 1..=1024,
    /// default 16; the others stay buffered and are answered on the next turns.
    pub max_pipelined: usize,
    /// `http.max_write_buffer BYTES`: response bytes a connection may leave unsent after a
    /// write before it is dropped (a client that sends but does not read), 1024..=2^30,
    /// default 262144 (256 KiB).
    pub max_write_buffer: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_connections: 10_000,
            max_request_size: 8192,
            idle_timeout: 30,
            keepalive: true,
            header_timeout: 10,
            max_pipelined: 16,
            max_write_buffer: 256 << 10,
        }
    }
}

/// UDP socket settings. Directives `udp.*`; opentracker-rs's own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpConfig {
    /// `udp.recv_buffer BYTES`: `SO_RCVBUF` to request, 0..=1073741824, default 8 MiB;
    /// 0 keeps the OS default. The kernel may cap it (`net.core.rmem_max`).
    pub recv_buffer: usize,
    /// `udp.send_buffer BYTES`: `SO_SNDBUF`, same range and default; 0 keeps the OS default.
    pub send_buffer: usize,
}

impl Default for UdpConfig {
    fn default() -> Self {
        UdpConfig {
            recv_buffer: 8 << 20,
            send_buffer: 8 << 20,
        }
    }
}

impl Default for Config {
    /// All defaults; listener lists empty (see [`Config::finish`]).
    fn default() -> Self {
        Config {
            listen_tcp: Vec::new(),
            listen_udp: Vec::new(),
            udp_workers: 0,
            whitelist: None,
            blacklist: None,
            stats_allowed: Vec::new(),
            stats_path: "stats".to_owned(),
            proxies: Vec::new(),
            rootdir: None,
            user: None,
            redirect_url: None,
            state_file: None,
            allow_root: false,
            pid_file: None,
            log_file: None,
            daemon: false,
            state_interval: 600,
            livesync_listen: None,
            livesync_node_ips: Vec::new(),
            announce_interval: 1800,
            numwant_default: 50,
            numwant_max: 200,
            peer_timeout: 2700,
            torrent_timeout: 86_400,
            max_scrape_hashes: 64,
            random_peers: 0,
            fullscrape_interval: 0,
            max_torrents: crate::service::capacity::DEFAULT_MAX_TORRENTS,
            max_peers: crate::service::capacity::DEFAULT_MAX_PEERS,
            http: HttpConfig::default(),
            udp: UdpConfig::default(),
            sources: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Start the tracker with this (finished) configuration.
    Run(Config),
    /// `--check-config`: print [`Config::to_config_text`] and exit 0.
    CheckConfig(Config),
    /// `-h` / `--help`: print [`usage`] and exit 0.
    Help,
    /// `-v` / `--version`: print [`version`] and exit 0.
    Version,
}

/// A fatal configuration problem. `main` prints it and exits non-zero before binding.
///
/// Display: `ORIGIN:LINE: DIRECTIVE: MESSAGE` for a file line
/// (`opentracker.conf:12: listen.tcp: invalid address "1.2.3.4:99999": port out of range`),
/// `ORIGIN: DIRECTIVE: MESSAGE` without a line (`command line: -p: ...`), and
/// `ORIGIN: MESSAGE` when no directive applies (`ot.conf: cannot read config file: ...`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file name as given, `command line`, or `configuration` (cross checks in
    /// [`Config::finish`]).
    pub origin: String,
    /// 1-based line number in the file, if the error belongs to a line.
    pub line: Option<usize>,
    /// The directive (`listen.tcp`) or flag (`-p`); empty for file-level errors.
    pub directive: String,
    /// What is wrong, in words an operator can act on.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.directive.is_empty() {
            write!(f, ": {}", self.directive)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Completes a parsed configuration; idempotent ([`parse_args`] already calls it).
    ///
    /// - If neither `listen_tcp` nor `listen_udp` has an entry, both get `0.0.0.0:6969` and
    ///   `[::]:6969` (opentracker binds `0.0.0.0:6969` TCP+UDP when nothing was bound; we add
    ///   IPv6). If only one protocol was bound, the other stays empty, as opentracker.
    /// - Pushes a warning when `peer_timeout < announce_interval` (peers would expire
    ///   between two announces).
    ///
    /// Errors: `configuration: tracker.numwant.default: N is larger than
    /// tracker.numwant.max (M)`.
    pub fn finish(&mut self) -> Result<(), ConfigError> {
        if self.numwant_default > self.numwant_max {
            return Err(ConfigError {
                origin: "configuration".to_owned(),
                line: None,
                directive: "tracker.numwant.default".to_owned(),
                message: format!(
                    "{} is larger than tracker.numwant.max ({})",
                    self.numwant_default, self.numwant_max
                ),
            });
        }
        if self.listen_tcp.is_empty() && self.listen_udp.is_empty() {
            let defaults = [
                SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), DEFAULT_PORT),
                SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), DEFAULT_PORT),
            ];
            self.listen_tcp.extend(defaults);
            self.listen_udp.extend(defaults);
        }
        if self.peer_timeout < self.announce_interval {
            let warning = format!(
                "configuration: tracker.peer_timeout: {} s is shorter than \
                 tracker.announce_interval ({} s); peers will expire between announces",
                self.peer_timeout, self.announce_interval
            );
            if !self.warnings.contains(&warning) {
                self.warnings.push(warning);
            }
        }
        Ok(())
    }

    /// The effective configuration in the config-file syntax, for `--check-config`: every
    /// directive of [`DIRECTIVES`] appears, in that order; unset ones as a `# name (not set)`
    /// comment. Listeners are written as `listen.tcp` and `listen.udp` lines (so
    /// `listen.tcp_udp` and the obsolete `batchsync.cluster.admin_ip` are comments). [`parse_str`] on the
    /// result gives back an equal `Config` (except `sources` and `warnings`).
    pub fn to_config_text(&self) -> String {
        let mut out = String::new();
        let sources = if self.sources.is_empty() {
            "defaults".to_owned()
        } else {
            format!("defaults, {}", self.sources.join(", "))
        };
        // `write!` to a String cannot fail; the results are ignored on purpose.
        let _ = writeln!(out, "# {} effective configuration", version());
        let _ = writeln!(out, "# sources: {sources}");
        // One line per value; a directive without a value becomes a `# name NOTE` comment.
        let mut put = |name: &str, values: Vec<String>, note: &str| {
            if values.is_empty() {
                let _ = writeln!(out, "# {name} {note}");
            }
            for v in values {
                let _ = writeln!(out, "{name} {v}");
            }
        };
        let unset = "(not set)";
        let one = |v: String| vec![v];
        let path = |p: &Option<PathBuf>| p.iter().map(|p| p.display().to_string()).collect();
        let text = |t: &Option<String>| t.iter().cloned().collect();
        let addrs = |list: &[SocketAddr]| list.iter().map(|a| a.to_string()).collect();
        let nets = |list: &[IpNet]| list.iter().map(value::net_text).collect();

        put("listen.udp.workers", one(self.udp_workers.to_string()), "");
        put(
            "listen.tcp_udp",
            Vec::new(),
            "(written as listen.tcp and listen.udp)",
        );
        put("listen.tcp", addrs(&self.listen_tcp), unset);
        put("listen.udp", addrs(&self.listen_udp), unset);
        put("access.whitelist", path(&self.whitelist), unset);
        put("access.blacklist", path(&self.blacklist), unset);
        put("access.stats", nets(&self.stats_allowed), unset);
        put("access.stats_path", one(self.stats_path.clone()), "");
        put("access.proxy", nets(&self.proxies), unset);
        put("tracker.rootdir", path(&self.rootdir), unset);
        put("tracker.user", text(&self.user), unset);
        put("tracker.redirect_url", text(&self.redirect_url), unset);
        let livesync = self.livesync_listen.as_slice();
        put("livesync.cluster.listen", addrs(livesync), unset);
        put(
            "livesync.cluster.node_ip",
            nets(&self.livesync_node_ips),
            unset,
        );
        put(
            "batchsync.cluster.admin_ip",
            Vec::new(),
            "(obsolete, ignored)",
        );
        put("tracker.state_file", path(&self.state_file), unset);
        let allow_root = if self.allow_root { "on" } else { "off" };
        put("tracker.allow_root", one(allow_root.to_owned()), "");
        put("tracker.pid_file", path(&self.pid_file), unset);
        put("tracker.log_file", path(&self.log_file), unset);
        let n = |v: u32| one(v.to_string());
        put("tracker.state_interval", n(self.state_interval), "");
        let z = |v: usize| one(v.to_string());
        put("tracker.announce_interval", n(self.announce_interval), "");
        put("tracker.numwant.default", n(self.numwant_default), "");
        put("tracker.numwant.max", n(self.numwant_max), "");
        put("tracker.peer_timeout", n(self.peer_timeout), "");
        put("tracker.torrent_timeout", n(self.torrent_timeout), "");
        put(
            "tracker.scrape.max_info_hashes",
            n(self.max_scrape_hashes),
            "",
        );
        put("tracker.random_peers", n(self.random_peers), "");
        put(
            "tracker.fullscrape_interval",
            n(self.fullscrape_interval),
            "",
        );
        put(
            "tracker.max_torrents",
            one(self.max_torrents.to_string()),
            "",
        );
        put("tracker.max_peers", one(self.max_peers.to_string()), "");
        put("http.max_connections", z(self.http.max_connections), "");
        put("http.max_request_size", z(self.http.max_request_size), "");
        put("http.idle_timeout", n(self.http.idle_timeout), "");
        put("http.header_timeout", n(self.http.header_timeout), "");
        put("http.max_pipelined", z(self.http.max_pipelined), "");
        put("http.max_write_buffer", z(self.http.max_write_buffer), "");
        let keepalive = if self.http.keepalive { "on" } else { "off" };
        put("http.keepalive", one(keepalive.to_owned()), "");
        put("udp.recv_buffer", z(self.udp.recv_buffer), "");
        put("udp.send_buffer", z(self.udp.send_buffer), "");
        out
    }
}

#[cfg(test)]
mod tests;
