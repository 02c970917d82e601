//! The directives that need more than a field's parser: checks against other directives,
//! warnings, and directives without a field of their own. Each function is named in its
//! directive's entry of the table (`config.rs`); the field ones get the standard setter.

use std::net::SocketAddr;

use super::table::{Applied, Setter};
use super::{Config, DEFAULT_PORT, value};

/// Error text for `access.whitelist` together with `access.blacklist`.
pub(crate) const EXCLUSIVE: &str = "access.whitelist and access.blacklist are exclusive";

/// `listen.udp.workers`: recorded, with a note when not 0 (opentracker starts N UDP threads
/// per socket; this tracker starts N event loops instead, unless `tracker.workers` says
/// otherwise: [`Config::worker_count`]).
pub(super) fn udp_workers(cfg: &mut Config, text: &str, set: Setter<Config>) -> Applied {
    set(cfg, text)?;
    if cfg.udp_workers > 0 {
        return Ok(Some(format!(
            "mapped onto tracker.workers {} (event loops serving every listener) unless \
             tracker.workers is set",
            cfg.udp_workers
        )));
    }
    Ok(None)
}

/// `listen.tcp_udp ADDRESS[:PORT]`: one listener of each protocol on the same address.
///
/// Errors: the address's, or `TCP|UDP listener ADDRESS is already configured` (nothing is
/// added then).
pub(super) fn listen_tcp_udp(cfg: &mut Config, text: &str) -> Applied {
    let addr = value::socket_addr(text, DEFAULT_PORT)?;
    check_new_listener(&cfg.listen_tcp, addr, "TCP")?;
    check_new_listener(&cfg.listen_udp, addr, "UDP")?;
    cfg.listen_tcp.push(addr);
    cfg.listen_udp.push(addr);
    Ok(None)
}

/// `access.whitelist`: refused when a blacklist is set ([`EXCLUSIVE`]).
pub(super) fn whitelist(cfg: &mut Config, text: &str, set: Setter<Config>) -> Applied {
    if cfg.blacklist.is_some() {
        return Err(EXCLUSIVE.to_owned());
    }
    set(cfg, text).map(|()| None)
}

/// `access.blacklist`: refused when a whitelist is set ([`EXCLUSIVE`]).
pub(super) fn blacklist(cfg: &mut Config, text: &str, set: Setter<Config>) -> Applied {
    if cfg.whitelist.is_some() {
        return Err(EXCLUSIVE.to_owned());
    }
    set(cfg, text).map(|()| None)
}

/// `access.stats_path`: stored without leading `/`; never empty, never holding `?` (a path
/// with a query could never match a request path).
pub(super) fn stats_path(cfg: &mut Config, text: &str, set: Setter<Config>) -> Applied {
    let path = text.trim_start_matches('/');
    if path.is_empty() {
        return Err("stats path is empty".to_owned());
    }
    if path.contains('?') {
        return Err(format!(
            "stats path \"{text}\" contains '?' and could never match"
        ));
    }
    set(cfg, path).map(|()| None)
}

/// `batchsync.cluster.admin_ip`: obsolete, accepted with a warning and ignored.
pub(super) fn obsolete_batchsync(_: &mut Config, _: &str) -> Applied {
    Ok(Some(
        "obsolete (opentracker never parsed it); ignored".to_owned(),
    ))
}

/// Appends `addr` to a listener list unless it is already there (`kind`: `TCP`, `UDP`).
pub(crate) fn add_listener(
    list: &mut Vec<SocketAddr>,
    addr: SocketAddr,
    kind: &str,
) -> Result<(), String> {
    check_new_listener(list, addr, kind)?;
    list.push(addr);
    Ok(())
}

/// A second bind of the same address would fail at start-up; say so now. Port 0 (an
/// OS-assigned port) may repeat.
fn check_new_listener(list: &[SocketAddr], addr: SocketAddr, kind: &str) -> Result<(), String> {
    if addr.port() != 0 && list.contains(&addr) {
        return Err(format!("{kind} listener {addr} is already configured"));
    }
    Ok(())
}
