//! `opentracker-rs`: command line, config, binding, privilege drop, then the event loop.
//!
//! Exit status: 0 after SIGTERM/SIGINT or `-h`/`--check-config`; 1 for a config error (printed as
//! `FILE:LINE: DIRECTIVE: message` before anything is bound), a socket that cannot be bound, a
//! refused or failed privilege drop (see [`run`] for the order of the start-up steps).

use std::process::ExitCode;

use opentracker_rs::access::{self, Access, Mode};
use opentracker_rs::config::{self, Command, Config};
use opentracker_rs::daemon::{self, Detached, PidFile};
use opentracker_rs::db::Db;
use opentracker_rs::front::api::ApiSite;
use opentracker_rs::front::http::HttpSite;
use opentracker_rs::net::background::BackgroundConfig;
use opentracker_rs::net::event_loop::{self, LoopConfig};
use opentracker_rs::net::http_server::{HttpLimits, fds};
use opentracker_rs::net::livesync::{self, LivesyncConfig};
use opentracker_rs::net::{self, UdpBuffers};
use opentracker_rs::privileges;
use opentracker_rs::service::Policy;
use opentracker_rs::service::stats::StatsAccess;

fn main() -> ExitCode {
    let (args, env) = (std::env::args_os().skip(1), std::env::vars_os());
    let command = match config::parse_args_with_env(args, env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("opentracker-rs: {e}");
            return ExitCode::FAILURE;
        }
    };
    match command {
        Command::Help => {
            print!("{}", config::usage());
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("{}", config::version());
            ExitCode::SUCCESS
        }
        Command::CheckConfig(cfg) => match check_supported(&cfg) {
            Ok(_) => {
                print!("{}", cfg.to_config_text());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("opentracker-rs: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Run(cfg) => run(cfg),
    }
}

/// Checks what the config parser cannot check alone (values that cannot work together at run
/// time): the live sync settings, `None` when live sync is off, with their warnings.
fn check_supported(cfg: &Config) -> Result<(Option<LivesyncConfig>, Vec<String>), String> {
    LivesyncConfig::from_config(cfg).map_err(|e| e.to_string())
}

/// Logs go to stderr (`RUST_LOG`, default `info`); without colours when they end up in a file.
fn init_logging(cfg: &Config) {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    builder.format_timestamp_secs();
    if cfg.log_file.is_some() || cfg.daemon {
        builder.write_style(env_logger::WriteStyle::Never);
    }
    builder.init();
}

/// Start-up, in this order (each step's errors exit 1):
/// 1. config checks; the user is looked up (the passwd database is outside the chroot) and the
///    root policy applied, before anything is bound;
/// 2. bind every listener (errors still on the terminal);
/// 3. open the log file and `/dev/null` with the start-up credentials, outside the chroot;
/// 4. `-D`: fork and `setsid` ([`daemon::detach`]); from here on errors reach the terminal
///    through the waiting parent;
/// 5. write the pid file (before the drop, so it may live in `/run`);
/// 6. chroot/chdir to `tracker.rootdir` (or `/` with `-D`), switch to `tracker.user`;
/// 7. files read from here on (access lists, state file) are resolved INSIDE the chroot and read
///    with the dropped privileges, as opentracker;
/// 8. redirect stderr to the log file (or `/dev/null` with `-D`), report ready, serve.
fn run(cfg: Config) -> ExitCode {
    init_logging(&cfg);
    // A SIGTERM from now until the loop's own handlers are in place stops cleanly once the loop
    // starts (also in the child of -D, which inherits the handler).
    if let Err(e) = event_loop::catch_early_stop() {
        eprintln!("opentracker-rs: cannot install signal handlers: {e}");
        return ExitCode::FAILURE;
    }
    for w in &cfg.warnings {
        log::warn!("{w}");
    }
    let livesync_cfg = match check_supported(&cfg) {
        Ok((livesync_cfg, warnings)) => {
            for w in &warnings {
                log::warn!("{w}");
            }
            livesync_cfg
        }
        Err(e) => {
            eprintln!("opentracker-rs: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Step 1: whom to become, and whether running as root is allowed.
    let user = match cfg.user.as_deref().map(privileges::lookup_user).transpose() {
        Ok(u) => u,
        Err(e) => {
            eprintln!("opentracker-rs: {e}");
            return ExitCode::FAILURE;
        }
    };
    let as_root = privileges::running_as_root();
    if let Err(e) = privileges::check_root(as_root, user.as_ref(), cfg.allow_root) {
        eprintln!("opentracker-rs: {e}");
        return ExitCode::FAILURE;
    }
    // Step 2: bind (every worker's copy of the tracker listeners, with tracker.workers).
    let buffers = UdpBuffers {
        recv: cfg.udp.recv_buffer,
        send: cfg.udp.send_buffer,
    };
    let workers = cfg.worker_count();
    let bound = net::bind_for_workers(
        &cfg.listen_tcp,
        &cfg.listen_udp,
        &cfg.api_listen,
        buffers,
        workers,
    );
    let mut listeners = match bound {
        Ok(l) => l,
        Err(e) => {
            eprintln!("opentracker-rs: {e}");
            return ExitCode::FAILURE;
        }
    };
    if workers > 1 && cfg.udp.steer_by_info_hash {
        for (socket, addr) in &listeners.udp {
            if let Err(e) =
                net::udp_steer::attach(socket, workers, opentracker_rs::swarm::shards::SHARDS)
            {
                log::warn!(
                    "udp {addr}: cannot steer datagrams to workers by info_hash ({e}); the \
                     kernel spreads them by source address and port"
                );
            }
        }
    }
    if let Err(e) = net::bind_tls(&mut listeners, &cfg.listen_tls, &cfg.api_listen_tls) {
        eprintln!("opentracker-rs: {e}");
        return ExitCode::FAILURE;
    }
    if let Some(lc) = &livesync_cfg {
        match livesync::bind(lc) {
            Ok(sockets) => listeners.livesync = sockets,
            Err(e) => {
                eprintln!("opentracker-rs: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    // Step 3: files that live outside the chroot. The log file's path is kept absolute (the
    // working directory changes below) for the reopen on SIGHUP.
    let log_path = cfg
        .log_file
        .as_deref()
        .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.to_owned()));
    let opened = (|| -> Result<_, String> {
        let log = cfg.log_file.as_deref().map(daemon::open_log).transpose()?;
        let null = if cfg.daemon {
            Some(daemon::open_null()?)
        } else {
            None
        };
        Ok((log, null))
    })();
    let (log_file, null) = match opened {
        Ok(files) => files,
        Err(e) => {
            eprintln!("opentracker-rs: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Step 4: detach. Only the child returns; no thread exists yet.
    let mut detached = None;
    if cfg.daemon {
        match daemon::detach() {
            Ok(d) => detached = Some(d),
            Err(e) => {
                eprintln!("opentracker-rs: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let fail = |detached: Option<Detached>, e: &str| {
        match detached {
            Some(d) => d.fail(e),
            None => eprintln!("opentracker-rs: {e}"),
        }
        ExitCode::FAILURE
    };
    // Step 5: pid file.
    let pid_file = match cfg.pid_file.as_deref().map(PidFile::create).transpose() {
        Ok(p) => p,
        Err(e) => return fail(detached, &e),
    };
    // A start that fails from here on takes its pid file along, unless a chroot may have
    // happened (the path would then name another file).
    let fail = |detached: Option<Detached>, chrooted: bool, e: &str| {
        if let Some(p) = &pid_file {
            if !chrooted {
                let _ = p.remove();
            }
        }
        fail(detached, e)
    };
    // Step 6: chroot / chdir and user switch.
    // The database is opened after the fork of -D (SQLite connections must not cross a fork)
    // and before the chroot and the privilege drop (as the pid file), so its path is the
    // operator's; a file that cannot be opened or read stops the start here.
    // db.url is opened here too: its errors name the URL without the password.
    let opened = match (&cfg.db_path, &cfg.db_url) {
        (Some(path), _) => Some(Db::open(path).map_err(|e| format!("db.path: {e}"))),
        (None, Some(url)) => Some(Db::open_url(url.expose()).map_err(|e| format!("db.url: {e}"))),
        (None, None) => None,
    };
    let db = match opened.transpose() {
        Ok(db) => db,
        Err(e) => return fail(detached, false, &e),
    };
    if cfg.daemon && cfg.rootdir.is_none() {
        if let Err(e) = std::env::set_current_dir("/") {
            let e = format!("cannot change directory to /: {e}");
            return fail(detached, false, &e);
        }
    }
    let chrooted = match cfg.rootdir.as_deref().map(privileges::enter_rootdir) {
        None => false,
        Some(Ok(place)) => place == privileges::Rootdir::Chrooted,
        Some(Err(e)) => return fail(detached, false, &e),
    };
    // SIGHUP reopens the log file by its path (logrotate without copytruncate), unless a chroot
    // makes the path name another file.
    if let Some(path) = &log_path {
        if chrooted {
            log::info!(
                "log file {} is not reopened on SIGHUP (outside the chroot): rotate it with \
                 copytruncate",
                path.display()
            );
        } else {
            daemon::reopen_log_on_sighup(path);
        }
    }
    if let Some(id) = &user {
        if let Err(e) = privileges::switch_user(id) {
            return fail(detached, chrooted, &e);
        }
    }
    // Step 7: files named in the config are read here, inside the chroot and with the dropped
    // privileges (as opentracker): the access list now, the state file when the loop starts.
    // A missing access list is fatal (opentracker would silently serve nothing from it).
    let access = match load_access(&cfg) {
        Ok(a) => a,
        Err(e) => return fail(detached, chrooted, &e),
    };

    // Step 8: output, readiness.
    let redirected = match (&log_file, &null) {
        (Some(log), _) => daemon::redirect_output(log, null.as_ref()),
        (None, Some(null)) => daemon::redirect_output(null, Some(null)),
        (None, None) => Ok(()),
    };
    if let Err(e) = redirected {
        return fail(detached, chrooted, &e);
    }
    drop((log_file, null));
    if let Some(d) = detached {
        d.ready();
    }
    log::info!(
        "running as uid {} gid {}{}{}",
        nix::unistd::getuid(),
        nix::unistd::getgid(),
        match (&cfg.rootdir, chrooted) {
            (Some(dir), true) => format!(", chrooted to {}", dir.display()),
            (Some(dir), false) => format!(", in {}", dir.display()),
            _ => String::new(),
        },
        if cfg.daemon { ", detached" } else { "" },
    );
    // Room for http.max_connections under the open-files limit: raised toward the hard limit,
    // or the cap lowered to what fits (said once, here).
    let listening = listeners.tcp.len()
        + listeners.udp.len()
        + listeners.api.len()
        + listeners.tls.len()
        + listeners.api_tls.len()
        + listeners.livesync.len();
    let fds = fds::fit_connections(cfg.http.max_connections, listening);
    fds.log();
    let loop_cfg = LoopConfig {
        policy: Policy {
            announce_interval: cfg.announce_interval,
            numwant_default: cfg.numwant_default,
            numwant_max: cfg.numwant_max,
            max_scrape_hashes: cfg.max_scrape_hashes as usize,
            peer_timeout: cfg.peer_timeout,
            torrent_timeout: cfg.torrent_timeout,
            random_peers: cfg.random_peers,
            max_torrents: cfg.max_torrents,
            max_peers: cfg.max_peers,
            reload_max_drop: cfg.reload_max_drop,
            max_new_torrents_per_net: cfg.max_new_torrents_per_net,
            max_peers_per_source: cfg.max_peers_per_source,
            udp_rate_limit: cfg.udp.rate_limit,
            udp_rate_burst: cfg.udp.rate_burst,
        },
        site: HttpSite {
            redirect_url: cfg.redirect_url.clone(),
            proxies: cfg.proxies.clone(),
            proxy_header: cfg.proxy_header,
            keepalive: cfg.http.keepalive,
            stats: StatsAccess {
                path: cfg.stats_path.clone(),
                allowed: cfg.stats_allowed.clone(),
            },
            fullscrape_interval: cfg.fullscrape_interval,
            fullscrape_max_age: cfg.http.fullscrape_max_age,
            fullscrape_max_streams: cfg.http.fullscrape_max_streams,
        },
        http: HttpLimits {
            max_connections: fds.max_connections,
            max_connections_configured: cfg.http.max_connections,
            max_request_size: cfg.http.max_request_size,
            max_header_lines: cfg.http.max_header_lines,
            idle_timeout: cfg.http.idle_timeout,
            header_timeout: cfg.http.header_timeout,
            max_pipelined: cfg.http.max_pipelined,
            max_write_buffer: cfg.http.max_write_buffer,
        },
        background: BackgroundConfig {
            access,
            state_file: cfg.state_file.clone(),
            state_interval: cfg.state_interval,
            tls: listeners
                .identities
                .as_ref()
                .map_or_else(Vec::new, |ids| ids.files.clone()),
        },
        mode: cfg.mode,
        api: ApiSite {
            tokens: cfg.api_tokens.clone(),
            keepalive: cfg.http.keepalive,
        },
        livesync: livesync_cfg,
        on_sighup: Some(daemon::reopen_log),
        cpu_affinity: cfg.cpu_affinity,
        sched_batch: cfg.sched_batch,
    };
    // Tests widen the start-up window a stop signal may hit (debug builds only).
    #[cfg(debug_assertions)]
    if let Some(ms) = std::env::var("OTRS_TEST_DELAY_BEFORE_LOOP_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    let status = match event_loop::run(listeners, loop_cfg, db) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("opentracker-rs: event loop failed: {e}");
            ExitCode::FAILURE
        }
    };
    if let Some(p) = pid_file {
        remove_pid_file(&p, chrooted);
    }
    status
}

/// Removes the pid file at exit, when its path still means the same file: not from inside a
/// chroot (the path would resolve elsewhere). After a user switch the directory is often not
/// writable any more; that is logged, not an error.
fn remove_pid_file(p: &PidFile, chrooted: bool) {
    if chrooted {
        log::info!(
            "pid file {} left in place (outside the chroot)",
            p.path().display()
        );
        return;
    }
    if let Err(e) = p.remove() {
        log::warn!("cannot remove pid file {}: {e}", p.path().display());
    }
}

/// Loads `access.whitelist` / `access.blacklist` before serving. Bad lines are logged as warnings
/// and skipped; a missing or unreadable file is fatal at start (opentracker would silently serve
/// nothing from a whitelist it cannot read).
fn load_access(cfg: &Config) -> Result<Option<(Access, std::path::PathBuf)>, String> {
    let (mode, path) = match (&cfg.whitelist, &cfg.blacklist) {
        (Some(p), _) => (Mode::Whitelist, p),
        (None, Some(p)) => (Mode::Blacklist, p),
        (None, None) => return Ok(None),
    };
    let loaded = access::load(path).map_err(|e| format!("{}: {e}", mode.directive()))?;
    for w in &loaded.warnings {
        log::warn!("{}: {w}", mode.directive());
    }
    log::info!(
        "{} {}: {} info_hashes loaded in {} ms ({} bad lines)",
        mode.directive(),
        path.display(),
        loaded.list.len(),
        loaded.elapsed.as_millis(),
        loaded.bad_lines
    );
    Ok(Some((Access::new(mode, loaded.list), path.clone())))
}
