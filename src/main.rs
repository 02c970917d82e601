//! `opentracker-rs`: command line, config, binding, then the event loop.
//!
//! Exit status: 0 after SIGTERM/SIGINT or `-h`/`--check-config`; 1 for a config error (printed as
//! `FILE:LINE: DIRECTIVE: message` before anything is bound) or a socket that cannot be bound.

use std::process::ExitCode;

use opentracker_rs::access::{self, Access, Mode};
use opentracker_rs::config::{self, Command, Config};
use opentracker_rs::net::background::BackgroundConfig;
use opentracker_rs::net::event_loop::{self, LoopConfig};
use opentracker_rs::net::http_server::HttpLimits;
use opentracker_rs::net::{self, UdpBuffers};
use opentracker_rs::service::Policy;
use opentracker_rs::service::http::HttpSite;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp_secs()
        .init();
    let command = match config::parse_args(std::env::args_os().skip(1)) {
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
            Ok(()) => {
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

/// Directives this build parses but cannot honour yet: refusing them beats silently ignoring them.
fn check_supported(cfg: &Config) -> Result<(), String> {
    let mut missing = Vec::new();
    if cfg.rootdir.is_some() {
        missing.push("tracker.rootdir");
    }
    if cfg.user.is_some() {
        missing.push("tracker.user");
    }
    if cfg.livesync_listen.is_some() || !cfg.livesync_node_ips.is_empty() {
        missing.push("livesync.cluster.*");
    }
    if !cfg.stats_allowed.is_empty() {
        missing.push("access.stats");
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("not supported yet: {}", missing.join(", ")))
    }
}

fn run(cfg: Config) -> ExitCode {
    for w in &cfg.warnings {
        log::warn!("{w}");
    }
    if let Err(e) = check_supported(&cfg) {
        eprintln!("opentracker-rs: {e}");
        return ExitCode::FAILURE;
    }
    let buffers = UdpBuffers {
        recv: cfg.udp.recv_buffer,
        send: cfg.udp.send_buffer,
    };
    let listeners = match net::bind(&cfg.listen_tcp, &cfg.listen_udp, buffers) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("opentracker-rs: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Files named in the config are read after binding (and, once privileges are dropped, after
    // that too), before serving.
    let access = match load_access(&cfg) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("opentracker-rs: {e}");
            return ExitCode::FAILURE;
        }
    };
    let loop_cfg = LoopConfig {
        policy: Policy {
            announce_interval: cfg.announce_interval,
            numwant_default: cfg.numwant_default,
            numwant_max: cfg.numwant_max,
            max_scrape_hashes: cfg.max_scrape_hashes as usize,
            peer_timeout: cfg.peer_timeout,
            torrent_timeout: cfg.torrent_timeout,
        },
        site: HttpSite {
            redirect_url: cfg.redirect_url.clone(),
            proxies: cfg.proxies.clone(),
            keepalive: cfg.http.keepalive,
        },
        http: HttpLimits {
            max_connections: cfg.http.max_connections,
            max_request_size: cfg.http.max_request_size,
            idle_timeout: cfg.http.idle_timeout,
        },
        background: BackgroundConfig {
            access,
            state_file: cfg.state_file.clone(),
            state_interval: cfg.state_interval,
        },
    };
    match event_loop::run(listeners, loop_cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("opentracker-rs: event loop failed: {e}");
            ExitCode::FAILURE
        }
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
