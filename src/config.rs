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
//! Each directive is declared once, in the table below ([`DIRECTIVE_TABLE`]): its name, field,
//! type, bounds, unit, default and doc. The struct fields, their defaults, the parser, the
//! `--check-config` output and the list [`DIRECTIVES`] all come from it (see `config/table.rs`),
//! so adding a directive is one entry plus its use. Defaults live there and nowhere else: the
//! service's policy and the store read [`Config::default`].
//!
//! Flow: [`parse_args_with_env`] starts from [`Config::default`], applies the `-f` files, then
//! the environment (`OPENTRACKER_RS_CONFIG` and `OPENTRACKER_RS_<DIRECTIVE>`, see
//! [`apply_env`]), then the other flags in command-line order (as opentracker's getopt loop),
//! then calls [`Config::finish`], which adds the default listeners when nothing was bound and
//! checks values against each other.
//! `--check-config` prints [`Config::to_config_text`], which parses back to the same
//! `Config`.
//!
//! A leaf: nothing here imports from the rest of the crate but the version text
//! (`crate::version`, itself a leaf).

use std::fmt;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use ipnet::IpNet;

mod args;
mod env;
mod file;
mod private;
mod proxy;
mod special;
mod table;
mod tls;
mod value;
mod workers;

pub use args::{parse_args, parse_args_with_env, usage, version};
pub use env::{ENV_CONFIG, ENV_PREFIX, apply_env, env_name};
pub use file::{MAX_FILE_SIZE, parse_file, parse_str};
pub use private::{ApiToken, DbUrl, TrackerMode};
pub use proxy::ProxyHeader;
pub use table::{Directive, MASK, Syntax};
pub use tls::TlsListen;
pub use workers::{Workers, allowed_cpus};

/// Port of a listen address written without one (`listen.tcp_udp 1.2.3.4`), and of the
/// default listeners: 6969, as opentracker.
pub const DEFAULT_PORT: u16 = 6969;

/// Port of an `api.listen` address written without one: 1212, as torrust's API.
pub const API_DEFAULT_PORT: u16 = 1212;

/// Port of `livesync.cluster.listen` written without one: 9696, as opentracker
/// (`LIVESYNC_PORT`).
pub const LIVESYNC_DEFAULT_PORT: u16 = 9696;

table::directives! {
    /// The effective configuration: one field per directive (its doc names the directive, the
    /// unit, the bounds and the default), plus the flag-only and bookkeeping fields.
    /// [`Config::default`] holds all defaults with empty listener lists.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Config {
        // opentracker's directives.

        /// opentracker starts N blocking UDP threads per UDP socket; opentracker-rs maps a
        /// non-zero value onto `tracker.workers` (N event loops, each serving every listener)
        /// when `tracker.workers` is left at its default ([`Config::worker_count`]); 0 = not set.
        "listen.udp.workers" => udp_workers: u32 = 0, [0..=1024], "threads",
            hook special::udp_workers;
        /// HTTP and UDP listeners on the same address (port 6969 when none is given); adds to
        /// `listen_tcp` and `listen_udp`, and `--check-config` writes it as those two.
        [repeatable] "listen.tcp_udp", apply special::listen_tcp_udp,
            Syntax::Address { default_port: DEFAULT_PORT },
            note "(written as listen.tcp and listen.udp)";
        /// TCP (HTTP) listen addresses, in order: `listen.tcp`, `listen.tcp_udp`, `-i IP -p
        /// PORT`. Port 0 = OS-assigned. Default (applied by [`Config::finish`] only when neither
        /// list has an entry): `0.0.0.0:6969` and `[::]:6969`. The `[::]` socket must be bound
        /// with `IPV6_V6ONLY` so both can coexist.
        "listen.tcp" => listen_tcp: Vec<SocketAddr>, [DEFAULT_PORT, "TCP"];
        /// UDP (BEP 15) listen addresses: `listen.udp`, `listen.tcp_udp`, `-i IP -P PORT`.
        /// Same default rule as `listen_tcp`.
        "listen.udp" => listen_udp: Vec<SocketAddr>, [DEFAULT_PORT, "UDP"];
        /// `ADDRESS CERT KEY` (opentracker-rs's own, repeatable): an HTTPS tracker listener
        /// (port 6969 when none is given) with its PEM certificate chain and private key; TLS
        /// 1.2 and 1.3, ALPN `http/1.1`, the `http.*` limits. The files are read at start
        /// (before the chroot) and again on SIGHUP; a bad new pair keeps the old one.
        "listen.tls" => listen_tls: Vec<TlsListen>, [DEFAULT_PORT, "TLS"];
        /// `-w PATH`: file of hex info_hashes; only those may announce. Read after the chroot
        /// (relative to `rootdir`), as opentracker. Exclusive with `blacklist`.
        "access.whitelist" => whitelist: Option<PathBuf>, hook special::whitelist;
        /// `-b PATH`: file of hex info_hashes that may not announce. Exclusive with `whitelist`.
        "access.blacklist" => blacklist: Option<PathBuf>, hook special::blacklist;
        /// `-A IP|CIDR` (repeatable): who may read the stats path. A single address is a /32
        /// or /128 network. Addresses are stored as written: a v4 client seen as
        /// `::ffff:a.b.c.d` on a dual-stack socket must be unmapped before matching.
        "access.stats" => stats_allowed: Vec<IpNet>;
        /// The stats URL path, stored without leading `/` (as opentracker). Never empty, never
        /// holds `?`.
        "access.stats_path" => stats_path: String = String::from("stats"),
            hook special::stats_path;
        /// Repeatable: proxies whose `access.proxy_header` is believed. The header's list is
        /// walked right to left past these addresses; the first one not among them is the
        /// peer.
        "access.proxy" => proxies: Vec<IpNet>;
        /// Opentracker-rs's own: a reload (SIGHUP) that would drop more than this share of the
        /// access list's hashes is refused and the old list kept (a file caught half-written),
        /// unless the file's last non-blank line is `# end` (`access::END_MARKER`); 100 turns
        /// the check off.
        "access.reload_max_drop" => reload_max_drop: u32 = 50, [0..=100], "percent";
        /// Opentracker-rs's own: the header a trusted proxy names the client in,
        /// `X-Forwarded-For` (the default) or `X-Real-IP`; the other one is ignored.
        "access.proxy_header" => proxy_header: ProxyHeader;
        /// `-d DIR`: chroot target (as root) or chdir target, after binding.
        "tracker.rootdir" => rootdir: Option<PathBuf>;
        /// `-u NAME`: user to switch to after binding (opentracker defaults to `nobody` when run
        /// as root; `None` here leaves that choice to `main`).
        "tracker.user" => user: Option<String>;
        /// `-r URL`: `GET /` answers 302 to this URL. Not checked beyond "no control
        /// characters".
        "tracker.redirect_url" => redirect_url: Option<String>;
        /// `-i IP -s PORT`: turns live sync on (see `net::livesync`). IP is the local interface
        /// address: the multicast group 224.0.23.5 is joined on it and packets leave from it
        /// (0.0.0.0: the kernel's choice); with `livesync.cluster.peer` lines it is the unicast
        /// address bound. PORT (9696 when none is given) is where packets are received, and,
        /// unlike opentracker (always 9696), where they are sent to the group.
        "livesync.cluster.listen" => livesync_listen: Option<SocketAddr>,
            [LIVESYNC_DEFAULT_PORT];
        /// Repeatable: the source addresses (or networks, `IP/LEN`) whose live sync packets are
        /// applied; packets from any other source are dropped (none: every packet is).
        "livesync.cluster.node_ip" => livesync_node_ips: Vec<IpNet>;
        /// Repeatable (opentracker-rs's own): unicast live sync for networks without multicast;
        /// packets go to each `ADDRESS[:PORT]` (IPv4 or IPv6, port 9696 by default) instead of
        /// the multicast group. Turns live sync on, on 0.0.0.0:9696 if no `listen` is given.
        "livesync.cluster.peer" => livesync_peers: Vec<SocketAddr>,
            [LIVESYNC_DEFAULT_PORT, "livesync"];
        /// Opentracker-rs's own: a secret shared by every node; packets then carry an
        /// HMAC-SHA256 tag (our packet types) and packets without a valid one are dropped.
        /// Unset: opentracker's packets, unauthenticated.
        [secret] "livesync.cluster.secret" => livesync_secret: Option<String>;
        /// Type-0 packets carry 40-byte records (16-byte addresses), as opentracker built with
        /// `WANT_V6` sends them; every node of the cluster must agree.
        "livesync.cluster.v6_records" => livesync_v6_records: bool = false;
        /// A packet that is not full is sent this long after the previous packet at the latest
        /// (opentracker's `LIVESYNC_MAXDELAY`, 15 s); 0 sends at the end of every loop turn.
        "livesync.cluster.max_delay" => livesync_max_delay: u32 = 15, [0..=300], "seconds";
        /// Obsolete (opentracker never parsed it): accepted with a warning and ignored.
        [repeatable] "batchsync.cluster.admin_ip", apply special::obsolete_batchsync,
            Syntax::Network, note "(obsolete, ignored)";

        // opentracker-rs's own directives.

        /// `-l PATH`: the `downloaded` counts, loaded at start (as opentracker's `-l`), written
        /// every `state_interval` and at exit (see `crate::state`; the directive is
        /// opentracker-rs's own). Read after the chroot.
        "tracker.state_file" => state_file: Option<PathBuf>;
        /// `--allow-root`: serve as root when no `user` is set; off by default, so starting as
        /// root without `tracker.user` is refused (opentracker instead switches to `nobody`).
        "tracker.allow_root" => allow_root: bool = false;
        /// `--pid-file PATH`: the tracker's process id (decimal and a newline) is written here
        /// after binding, before the chroot and the privilege drop, and removed at a clean exit
        /// when still reachable. Default: none.
        "tracker.pid_file" => pid_file: Option<PathBuf>;
        /// `--log-file PATH`: once the tracker is ready to serve, its stderr (the log) is
        /// appended to this file, opened before the chroot. Default: none (stderr; `/dev/null`
        /// with `-D`).
        "tracker.log_file" => log_file: Option<PathBuf>;
        /// Seconds between two writes of `state_file`; 0 writes it only at exit
        /// (SIGTERM/SIGINT).
        "tracker.state_interval" => state_interval: u32 = 600, [0..=86_400], "seconds";
        /// Base `interval` sent to clients (as opentracker, which adds a random -180..+179 s).
        "tracker.announce_interval" => announce_interval: u32 = 1800, [1..=86_400], "seconds";
        /// Peers returned when the client sends no numwant (as opentracker). Must not exceed
        /// `numwant_max`.
        "tracker.numwant.default" => numwant_default: u32 = 50, [0..=256], "peers";
        /// Cap on numwant (as opentracker). The bound is the selection's
        /// (`service::caps::NUMWANT_MAX`); UDP replies are capped lower, to one datagram.
        "tracker.numwant.max" => numwant_max: u32 = 200, [1..=256], "peers";
        /// A peer that has not announced for this long is dropped (at most a quarter of it
        /// later, see `swarm::clean`; 45 min, as opentracker).
        "tracker.peer_timeout" => peer_timeout: u32 = 2700, [1..=86_400], "seconds";
        /// An empty torrent with downloads is forgotten after this long (24 h, as
        /// opentracker).
        "tracker.torrent_timeout" => torrent_timeout: u32 = 86_400, [1..=2_592_000], "seconds";
        /// Info_hashes answered per scrape (as opentracker's `OT_MAXMULTISCRAPE_COUNT`).
        "tracker.scrape.max_info_hashes" => max_scrape_hashes: u32 = 64, [1..=1024],
            "info_hashes";
        /// Made-up peers with random public addresses mixed into each announce reply that
        /// carries peers; 0 = off. The bound is `service::caps::MAX_RANDOM_PEERS`.
        "tracker.random_peers" => random_peers: u32 = 0, [0..=200], "peers";
        /// Seconds between two full scrapes (`GET /scrape` without info_hash) from one address
        /// (IPv6: one /64); 0 = no limit. A full scrape within the interval gets 429
        /// (opentracker's compile-time `WANT_MODEST_FULLSCRAPES`: 300 s, 402). The default is
        /// opentracker's 300 s: one host cannot take every `http.fullscrape_max_streams` slot
        /// or pull the whole store over and over; a client that wants every count that often
        /// is better served by scrapes of its own info_hashes.
        "tracker.fullscrape_interval" => fullscrape_interval: u32 = 300, [0..=86_400], "seconds";
        /// Most torrents held over both address families (0 = no limit). When reached, an
        /// announce that would create a torrent is refused (HTTP `failure reason` / UDP error
        /// "tracker is full: no new torrents"); existing torrents keep working. Bounds the
        /// memory random info_hashes can take: the default is about 250 MB of torrent entries
        /// at most (48-byte entries, one inline peer each).
        "tracker.max_torrents" => max_torrents: u64 = 5_000_000, [0..=1 << 40], "torrents";
        /// Most peers held over both families (0 = no limit). When reached, an announce that
        /// would add a peer is refused ("tracker is full: no new peers"); known peers keep
        /// announcing, `stopped` always works. The default is about 0.4-0.75 GB in IPv4 swarms
        /// (8-15 bytes per peer, `make bench-memory`), so a flood of made-up peers cannot take
        /// all memory of a small machine.
        "tracker.max_peers" => max_peers: u64 = 50_000_000, [0..=1 << 40], "peers";
        /// Opentracker-rs's own: torrents the announces from one network (an IPv4 /24, an
        /// IPv6 /48) may create per minute, as a token bucket holding one minute's worth (0 =
        /// no quota). Beyond it an announce for an unknown info_hash is refused ("too many new
        /// torrents from your network"); known torrents keep working. The default lets a
        /// seedbox's 10,000 torrents through in the first minute after a restart of this
        /// RAM-only tracker, and caps what one network alone can hold at about 450,000
        /// torrents (a torrent lives as long as its peers: `peer_timeout` = 45 minutes), a
        /// tenth of `max_torrents`. Counted per source in a fixed table, see `service::quota`.
        "tracker.max_new_torrents_per_net" => max_new_torrents_per_net: u32 = 10_000,
            [0..=1_000_000], "torrents per minute";
        /// Opentracker-rs's own: peers one source (an IPv4 address, any port; an IPv6 /64) may
        /// have in one swarm (0 = no quota). Beyond it an announce that would add a peer is
        /// refused ("too many peers from your address in this swarm"); a known peer's refresh
        /// never is, and `stopped` always works.
        "tracker.max_peers_per_source" => max_peers_per_source: u32 = 8, [0..=1_000_000],
            "peers";
        /// Who may announce (torrust's modes): `public` (anyone, any info_hash), `listed`
        /// (whitelisted info_hashes only: the `access.whitelist` file and the API/database
        /// entries), `private` (a valid key in the announce URL, `/announce/KEY`; over UDP in
        /// BEP 41's URL data), `private_listed` (both). An `access.whitelist` file makes any
        /// mode listed.
        "tracker.mode" => mode: TrackerMode;
        /// Opentracker-rs's own: event loops (threads) serving the tracker, each with its own
        /// copy of every `listen.tcp` and `listen.udp` socket (bound with `SO_REUSEPORT`, so
        /// the kernel spreads datagrams and connections) over one shared store; `auto` = one
        /// per CPU the process may use. 1 (the default) is one loop, as before. Side work
        /// (access-list reload, state file, database, REST API, HTTPS listeners, cleaning)
        /// stays on the first worker; with live sync, so do its sockets (every worker's
        /// announces are sent).
        "tracker.workers" => workers: Workers = Workers::Count(1), [1..=1024], "threads";
        /// Opentracker-rs's own: pin worker i to the i-th CPU the process may use (wrapping
        /// around), with `tracker.workers` above 1.
        "tracker.cpu_affinity" => cpu_affinity: bool = false;
        /// Opentracker-rs's own: with `tracker.workers` above 1, run every worker under the
        /// kernel's `SCHED_BATCH` policy (`sched(7)`; same nice value, no privilege needed): a
        /// worker woken by a request no longer preempts the thread running on its CPU (another
        /// worker, another process) but waits for that thread's time slice to end, and then
        /// answers everything queued in the meantime in one turn. On CPUs shared by workers and
        /// other load this cuts context switches per response 6-fold (UDP) to 14-fold (HTTP
        /// keep-alive) (BENCHMARKS.md, issue #11); on idle CPUs a worker runs at once, as
        /// before. Off: the default policy (`SCHED_OTHER`).
        "tracker.sched_batch" => sched_batch: bool = true;
        /// REST API listen addresses (torrust's v1 API, port 1212 when none is given); none = no
        /// API. Served by the event loop with the HTTP limits of `http.*`.
        "api.listen" => api_listen: Vec<SocketAddr>, [API_DEFAULT_PORT, "API"];
        /// `ADDRESS CERT KEY`: REST API listeners over HTTPS (port 1212 when none is given),
        /// as `listen.tls`.
        "api.listen_tls" => api_listen_tls: Vec<TlsListen>, [API_DEFAULT_PORT, "API TLS"];
        /// `LABEL SECRET`: a token the API accepts (`?token=SECRET` or `Authorization: Bearer
        /// SECRET`); the secret is at least 16 characters and never printed or logged.
        [secret] "api.token" => api_tokens: Vec<ApiToken>;
        /// SQLite database of keys, whitelist entries and `downloaded` counts (torrust's schema;
        /// created when missing, WAL mode); none = RAM only. Opened before the chroot and the
        /// privilege drop; the tracker's user needs write access to its directory (SQLite's
        /// `-wal` and `-shm` files).
        "db.path" => db_path: Option<PathBuf>;
        /// The same data in a MySQL or MariaDB database instead (torrust's MySQL schema; tables
        /// created when missing, the database itself must exist): `mysql://USER:PASS@HOST[:PORT]/DB`
        /// (port 3306 by default). Exclusive with `db.path`. The password is never printed or
        /// logged (`--check-config` writes `mysql://USER:(secret)@HOST/DB`). With
        /// `tracker.rootdir`, name the host by IP address: reconnections happen after the chroot.
        [secret] "db.url" => db_url: Option<DbUrl>;
    } and {
        /// `-D` / `--daemon` (flag only): detach from the terminal after binding. Default off
        /// (foreground, as systemd's `Type=simple` wants).
        pub daemon: bool,
        /// HTTP server limits (`http.*`).
        pub http: HttpConfig,
        /// UDP socket settings (`udp.*`).
        pub udp: UdpConfig,
        /// Where values came from, lowest precedence first: `file PATH` per config file,
        /// `OPENTRACKER_RS_CONFIG`, `environment (VARIABLE, ...)`, `command line` if any flag
        /// other than `-f` was given. Empty = defaults only. Informational (printed by
        /// `--check-config`).
        pub sources: Vec<String>,
        /// Non-fatal findings for `main` to log, each `ORIGIN[:LINE]: DIRECTIVE: TEXT`
        /// (obsolete directives, ignored settings, suspicious combinations).
        pub warnings: Vec<String>,
    }

    /// HTTP server limits. Directives `http.*`; opentracker-rs's own (opentracker hard-codes
    /// them).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct HttpConfig in http {
        /// Open TCP connections at most.
        "http.max_connections" => max_connections: usize = 10_000, [1..=1_000_000],
            "connections";
        /// Largest request head buffered (as opentracker's `G_INBUF_SIZE`).
        "http.max_request_size" => max_request_size: usize = 8192, [256..=1 << 20], "bytes";
        /// Most header lines in a request head (the lines between the request line and the
        /// blank line); more get 431 Request Header Fields Too Large and the connection closes.
        /// Clients send 5 to 15, proxies add a few (Apache's `LimitRequestFields` is 100;
        /// opentracker has no cap but its 8192-byte head).
        "http.max_header_lines" => max_header_lines: usize = 64, [1..=10_000], "lines";
        /// A connection idle this long is closed (as opentracker's `OT_CLIENT_TIMEOUT`).
        "http.idle_timeout" => idle_timeout: u32 = 30, [1..=3600], "seconds";
        /// A request head must be complete this long after its first byte, or the connection
        /// is closed without a reply (slowloris).
        "http.header_timeout" => header_timeout: u32 = 10, [1..=3600], "seconds";
        /// Requests answered per connection per loop turn; the others stay buffered and are
        /// answered on the next turns.
        "http.max_pipelined" => max_pipelined: usize = 16, [1..=1024], "requests";
        /// Response bytes a connection may leave unsent after a write before it is dropped (a
        /// client that sends but does not read); the default is 256 KiB.
        "http.max_write_buffer" => max_write_buffer: usize = 256 << 10, [1024..=1 << 30],
            "bytes";
        /// Honour `Connection: keep-alive` (opentracker's default build closes after one
        /// reply).
        "http.keepalive" => keepalive: bool = true;
        /// Seconds a full-scrape body (one per encoding: plain, gzip) is shared: every full
        /// scrape that arrives within this long after a build started reads that build
        /// (`front::http::snapshot`); 0 = every full scrape walks the store for itself. Counts
        /// in a full scrape may be this much older than the store.
        "http.fullscrape_max_age" => fullscrape_max_age: u32 = 30, [0..=3600], "seconds";
        /// Full scrapes sent at once at most; one more gets `503` with `Retry-After` (counted).
        /// 0 = no cap.
        "http.fullscrape_max_streams" => fullscrape_max_streams: usize = 64, [0..=100_000],
            "streams";
    }

    /// UDP socket settings. Directives `udp.*`; opentracker-rs's own.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct UdpConfig in udp {
        /// `SO_RCVBUF` to request (8 MiB by default); 0 keeps the OS default. The kernel may
        /// cap it (`net.core.rmem_max`).
        "udp.recv_buffer" => recv_buffer: usize = 8 << 20, [0..=1 << 30], "bytes";
        /// `SO_SNDBUF` to request, as `recv_buffer`; 0 keeps the OS default.
        "udp.send_buffer" => send_buffer: usize = 8 << 20, [0..=1 << 30], "bytes";
        /// UDP requests per second one source (an IPv4 address, an IPv6 /64) may send, in a
        /// token bucket of `udp.rate_burst` (0 = no limit). Beyond it datagrams get no answer
        /// at all (counted); the client retries with BEP 15's timeouts. Far above what real
        /// clients send, even a seedbox announcing its 10,000 torrents at start-up.
        "udp.rate_limit" => rate_limit: u32 = 500, [0..=10_000_000], "requests per second";
        /// The bucket of `udp.rate_limit`: requests one source may send at once.
        "udp.rate_burst" => rate_burst: u32 = 10_000, [1..=100_000_000], "requests";
        /// With `tracker.workers` above 1: deliver each announce and scrape to the worker of its
        /// info_hash's store shard (a classic BPF program on the `SO_REUSEPORT` group), so a
        /// swarm is served by one core; off, the kernel spreads datagrams by source address
        /// and port ([`crate::net::udp_steer`]).
        "udp.steer_by_info_hash" => steer_by_info_hash: bool = true;
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
    /// The number of event loops to start: `tracker.workers` resolved (`auto`: the CPUs the
    /// process may use), or, when `tracker.workers` is left at 1, opentracker's
    /// `listen.udp.workers` if it is not 0.
    pub fn worker_count(&self) -> usize {
        match self.workers {
            Workers::Count(1) if self.udp_workers > 0 => self.udp_workers as usize,
            w => w.resolve(),
        }
    }

    /// Completes a parsed configuration; idempotent ([`parse_args`] already calls it).
    ///
    /// - If none of `listen_tcp`, `listen_udp`, `listen_tls` has an entry, the first two get `0.0.0.0:6969` and
    ///   `[::]:6969` (opentracker binds `0.0.0.0:6969` TCP+UDP when nothing was bound; we add
    ///   IPv6). If only one protocol was bound, the other stays empty, as opentracker.
    /// - Pushes a warning when `peer_timeout < announce_interval` (peers would expire
    ///   between two announces), and when `api.listen` is set without an `api.token`.
    /// - Refuses one address (port other than 0) in two TCP listeners (`listen.tcp`,
    ///   `api.listen`, `listen.tls`, `api.listen_tls`).
    ///
    /// Errors: `configuration: tracker.numwant.default: N is larger than
    /// tracker.numwant.max (M)`; `configuration: api.listen: ADDR is also a tracker listener
    /// (listen.tcp)`; `configuration: db.url: db.path and db.url are exclusive ...`.
    pub fn finish(&mut self) -> Result<(), ConfigError> {
        if self.db_path.is_some() && self.db_url.is_some() {
            return Err(ConfigError {
                origin: "configuration".to_owned(),
                line: None,
                directive: "db.url".to_owned(),
                message: "db.path and db.url are exclusive: one database, a SQLite file or a \
                          MySQL / MariaDB server"
                    .to_owned(),
            });
        }
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
        if self.listen_tcp.is_empty() && self.listen_udp.is_empty() && self.listen_tls.is_empty() {
            let defaults = [
                SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), DEFAULT_PORT),
                SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), DEFAULT_PORT),
            ];
            self.listen_tcp.extend(defaults);
            self.listen_udp.extend(defaults);
        }
        if let Some(addr) = self
            .api_listen
            .iter()
            .find(|a| a.port() != 0 && self.listen_tcp.contains(a))
        {
            return Err(ConfigError {
                origin: "configuration".to_owned(),
                line: None,
                directive: "api.listen".to_owned(),
                message: format!("{addr} is also a tracker listener (listen.tcp)"),
            });
        }
        let plain = self
            .listen_tcp
            .iter()
            .chain(&self.api_listen)
            .map(|a| (a, "listen.tcp"));
        let tls = (self.listen_tls.iter().chain(&self.api_listen_tls)).map(|t| (&t.addr, "TLS"));
        let mut seen: Vec<&SocketAddr> = Vec::new();
        for (addr, kind) in plain.chain(tls) {
            if addr.port() != 0 && seen.contains(&addr) {
                return Err(ConfigError {
                    origin: "configuration".to_owned(),
                    line: None,
                    directive: if kind == "TLS" {
                        "listen.tls"
                    } else {
                        "api.listen"
                    }
                    .to_owned(),
                    message: format!("{addr} is configured for two TCP listeners"),
                });
            }
            seen.push(addr);
        }
        if !(self.api_listen.is_empty() && self.api_listen_tls.is_empty())
            && self.api_tokens.is_empty()
        {
            let warning = "configuration: api.listen: no api.token is set; every /api/v1 \
                           request will be refused (401)"
                .to_owned();
            if !self.warnings.contains(&warning) {
                self.warnings.push(warning);
            }
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
    /// directive of [`DIRECTIVE_TABLE`] appears, in that order, one line per value; one without
    /// a value as a `# NAME NOTE` comment (`# tracker.user (not set)`). Listeners are written as
    /// `listen.tcp` and `listen.udp` lines (so `listen.tcp_udp` and the obsolete
    /// `batchsync.cluster.admin_ip` are comments); secret values read [`MASK`]. [`parse_str`] on
    /// the result gives back an equal `Config` (except `sources`, `warnings` and secrets).
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
        for directive in DIRECTIVE_TABLE {
            let values = directive.values(self, true);
            if values.is_empty() {
                let _ = writeln!(out, "# {} {}", directive.name, directive.note);
            }
            for value in values {
                let _ = writeln!(out, "{} {value}", directive.name);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
