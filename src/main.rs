//! `opentracker-rs`: command line, config, binding, then the event loop.
//!
//! Exit status: 0 after SIGTERM/SIGINT or `-h`/`--check-config`; 1 for a config error (printed as
//! `FILE:LINE: DIRECTIVE: message` before anything is bound) or a socket that cannot be bound.

use std::process::ExitCode;

use opentracker_rs::config::{self, Command, Config};
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
    if cfg.whitelist.is_some() {
        missing.push("access.whitelist");
    }
    if cfg.blacklist.is_some() {
        missing.push("access.blacklist");
    }
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
    let loop_cfg = LoopConfig {
        policy: Policy {
            announce_interval: cfg.announce_interval,
            numwant_default: cfg.numwant_default,
            numwant_max: cfg.numwant_max,
            max_scrape_hashes: cfg.max_scrape_hashes as usize,
            peer_timeout: cfg.peer_timeout,
            torrent_timeout: cfg.torrent_timeout,
            max_torrents: cfg.max_torrents,
            max_peers: cfg.max_peers,
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
            header_timeout: cfg.http.header_timeout,
            max_pipelined: cfg.http.max_pipelined,
            max_write_buffer: cfg.http.max_write_buffer,
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
