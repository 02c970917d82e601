//! The poll loop: one thread owns every socket and the store, so nothing on the hot path locks.
//!
//! Tokens: `0..` the TCP listeners, [`UDP_BASE`]`..` the UDP sockets, [`SIGNAL`] the signal pipe,
//! [`WAKER`] the helper threads' waker, [`CONN_BASE`]`..` the HTTP connections. Timers are not
//! threads: the poll timeout is the time to the next timer (a cleaning slice every
//! [`CLEAN_SLICE_MS`], an idle sweep every second, background work in [`super::background`]).
//!
//! Signals: SIGTERM and SIGINT stop the loop cleanly (state file written, sockets closed, exit
//! status 0); SIGHUP reloads the access list off the loop (see [`super::background`]).

use std::io;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use super::Listeners;
use super::background::{Background, BackgroundConfig};
use super::http_server::{HttpLimits, HttpServer};
use super::udp_server::UdpServer;
use crate::front::http::HttpSite;
use crate::front::udp::UdpHandler;
use crate::service::{Policy, Tracker};
use crate::swarm::store::BUCKETS;

/// First token of the UDP sockets.
pub const UDP_BASE: usize = 1 << 16;
/// Token of the signal pipe.
pub const SIGNAL: usize = (1 << 16) + (1 << 15);
/// Token of the waker that helper threads (access-list reload) use to wake the loop.
pub const WAKER: usize = SIGNAL + 1;
/// First token of HTTP connections.
pub const CONN_BASE: usize = 1 << 20;
/// Milliseconds between two cleaning slices.
pub const CLEAN_SLICE_MS: u64 = 100;

/// Everything the loop needs besides the sockets.
#[derive(Clone, Debug)]
pub struct LoopConfig {
    /// Announce/scrape policy.
    pub policy: Policy,
    /// HTTP site settings (redirect, proxies).
    pub site: HttpSite,
    /// HTTP limits.
    pub http: HttpLimits,
    /// Access list and state file (work done beside requests).
    pub background: BackgroundConfig,
}

/// How long one full cleaning sweep over every bucket takes: a quarter of the peer timeout, between
/// 1 s and 120 s (opentracker sweeps every 2 minutes). The store's expiry is exact whatever the
/// sweep's pace; the sweep only bounds how long expired peers hold memory and counts.
pub fn sweep_period(peer_timeout: u32) -> Duration {
    Duration::from_secs(u64::from((peer_timeout / 4).clamp(1, 120)))
}

/// Serves `listeners` until SIGTERM or SIGINT.
pub fn run(listeners: Listeners, cfg: LoopConfig) -> io::Result<()> {
    // Signals first: a SIGTERM that arrives once the listeners are announced must stop us cleanly.
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    let mut poll = Poll::new()?;
    let mut tracker = Tracker::new(cfg.policy.clone());
    // The state file is loaded before the listeners are announced: "listening" means ready.
    let mut background =
        Background::start(&cfg.background, poll.registry(), Token(WAKER), &mut tracker)?;
    for (_, addr) in &listeners.tcp {
        log::info!("listening: http {addr}");
    }
    for (_, addr) in &listeners.udp {
        log::info!("listening: udp {addr}");
    }
    let mut events = Events::with_capacity(1024);
    let mut http = HttpServer::new(
        listeners.tcp.into_iter().map(|(l, _)| l).collect(),
        cfg.http,
        CONN_BASE,
    )?;
    http.register(poll.registry(), 0)?;
    let mut udp: Vec<UdpServer> = listeners
        .udp
        .into_iter()
        .map(|(s, _)| UdpServer::new(s))
        .collect();
    for (i, u) in udp.iter_mut().enumerate() {
        u.register(poll.registry(), Token(UDP_BASE + i))?;
    }
    let mut udp_handler = UdpHandler::new()?;
    poll.registry()
        .register(&mut signals, Token(SIGNAL), mio::Interest::READABLE)?;

    let start = Instant::now();
    let slices_per_sweep =
        (sweep_period(cfg.policy.peer_timeout).as_millis() as u64 / CLEAN_SLICE_MS).max(1);
    let buckets_per_slice = (BUCKETS as u64).div_ceil(slices_per_sweep) as usize;
    let mut next_clean = start + Duration::from_millis(CLEAN_SLICE_MS);
    let mut next_idle = start + Duration::from_secs(1);
    let mut running = true;

    while running {
        let wake = next_clean.min(next_idle);
        let wake = background.next_timer().map_or(wake, |t| wake.min(t));
        let runnable = udp.iter().any(|u| u.pending)
            || background.busy()
            || http.streams_runnable()
            || http.has_pending();
        let timeout = if runnable {
            Duration::ZERO
        } else {
            wake.saturating_duration_since(Instant::now())
        };
        if let Err(e) = poll.poll(&mut events, Some(timeout)) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let t0 = Instant::now();
        let now = t0.duration_since(start).as_secs() as u32;
        for event in events.iter() {
            let token = event.token().0;
            if token < http.listener_count() {
                http.accept(token, poll.registry(), &mut tracker, &cfg.site, now);
            } else if (UDP_BASE..UDP_BASE + udp.len()).contains(&token) {
                udp[token - UDP_BASE].serve(&mut udp_handler, &mut tracker, now);
            } else if token == SIGNAL {
                for sig in signals.pending() {
                    match sig {
                        SIGHUP => background.on_sighup(),
                        _ => {
                            log::info!("signal {sig} received: stopping");
                            running = false;
                        }
                    }
                }
            } else if token == WAKER {
                background.on_wake(&mut tracker);
            } else if token >= CONN_BASE {
                http.ready(
                    event.token(),
                    event.is_readable() || event.is_read_closed() || event.is_error(),
                    event.is_writable() || event.is_write_closed() || event.is_error(),
                    poll.registry(),
                    &mut tracker,
                    &cfg.site,
                    now,
                );
            }
        }
        // Streamed responses (full scrape) get one slice each per turn.
        http.advance_streams(poll.registry(), &mut tracker, now);
        // Connections left with buffered requests by `http.max_pipelined` get another turn.
        http.serve_pending(poll.registry(), &mut tracker, &cfg.site, now);
        // Sockets left with queued datagrams by the fairness cap get another turn.
        for u in udp.iter_mut().filter(|u| u.pending) {
            u.serve(&mut udp_handler, &mut tracker, now);
        }
        if t0 >= next_clean {
            tracker.clean_step(now, buckets_per_slice);
            next_clean += Duration::from_millis(CLEAN_SLICE_MS);
            if next_clean < t0 {
                next_clean = t0 + Duration::from_millis(CLEAN_SLICE_MS);
            }
        }
        background.step(&mut tracker, t0);
        if t0 >= next_idle {
            http.sweep_idle(poll.registry(), &mut tracker, now);
            tracker.stats.sample(now);
            next_idle = t0 + Duration::from_secs(1);
        }
        let busy = t0.elapsed().as_micros() as u64;
        tracker.stats.loop_iterations += 1;
        tracker.stats.longest_stall_us = tracker.stats.longest_stall_us.max(busy);
    }
    background.shutdown(&tracker);
    log::info!(
        "stopped: {} torrents, {} peers, {} HTTP connections open",
        tracker.v4.torrents() + tracker.v6.torrents(),
        tracker.peers(),
        http.open_connections()
    );
    tracker.stats.tcp_closed.at_exit = http.open_connections() as u64;
    log::info!("counters: {}", tracker.stats.summary());
    Ok(())
}
