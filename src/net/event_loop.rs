//! The poll loop: one thread owns every socket and the store, so nothing on the hot path locks.
//!
//! Tokens: `0..` the TCP listeners, [`UDP_BASE`]`..` the UDP sockets, [`SIGNAL`] the signal pipe,
//! [`WAKER`] the helper threads' waker, [`LIVESYNC_BASE`]`..` the live sync sockets,
//! [`CONN_BASE`]`..` the HTTP connections. Timers are not
//! threads: the poll timeout is the time to the next timer (a cleaning slice every
//! [`CLEAN_SLICE_MS`], an idle sweep every second, background work in [`super::background`]).
//!
//! Signals: SIGTERM and SIGINT stop the loop cleanly (state file written, sockets closed, exit
//! status 0); SIGHUP reloads the access list off the loop (see [`super::background`]).
//!
//! Workers (`tracker.workers N`): [`run`] is worker 0, which serves everything as above; it
//! starts N - 1 more threads ([`run_worker`]), each a loop of the same kind over its own copies
//! of the tracker's TCP, UDP and HTTPS listeners ([`super::Listeners::workers`], `SO_REUSEPORT`)
//! and the shared store, serving announces, scrapes, full scrapes and `/stats` only. Side work
//! stays on worker 0: signals, access-list and certificate reloads, the state file, the
//! database, live sync's sockets (each worker moves its turn's sync records to a queue worker
//! 0 sends from), the REST API (its HTTPS listeners too), the cleaning sweep and the key
//! expiry. The others take a new access list within one turn ([`Tracker::refresh`]) and a
//! reloaded certificate at the start of their next turn ([`SharedConfigs`]); the keys and API
//! whitelist are shared. On SIGTERM worker 0 stops the others (a flag and their wakers), waits
//! for them, then sends the last sync records and writes the state once.

use std::io;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use std::sync::Arc;

use super::Listeners;
use super::background::{Background, BackgroundConfig};
use super::http_server::{ApiFront, HttpLimits, HttpServer};
use super::livesync::{Livesync, LivesyncConfig};
use super::persist::Persist;
use super::tls::SharedConfigs;
use super::udp_server::UdpServer;
use crate::config::TrackerMode;
use crate::db::{Db, Loaded};
use crate::front::api::{ApiSite, OpSink, RamOnly};
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
/// First token of the live sync sockets (at most two).
pub const LIVESYNC_BASE: usize = SIGNAL + 64;
/// First token of the REST API listeners (`api.listen`).
pub const API_LISTEN_BASE: usize = SIGNAL + 1024;
/// First token of HTTP connections.
pub const CONN_BASE: usize = 1 << 20;
/// First token of REST API connections.
pub const API_CONN_BASE: usize = 1 << 29;
/// Expired keys dropped from RAM per second, at most ([`Tracker::purge_expired_keys`]).
pub const KEYS_PURGED_PER_SECOND: usize = 1024;
/// Milliseconds between two cleaning slices.
pub const CLEAN_SLICE_MS: u64 = 100;

/// SIGTERM/SIGINT caught before [`run`] installed its own handlers ([`catch_early_stop`]).
static EARLY_STOP: std::sync::OnceLock<Arc<std::sync::atomic::AtomicBool>> =
    std::sync::OnceLock::new();

/// Catches SIGTERM and SIGINT from now until [`run`] takes over, so a stop asked for during the
/// start-up (after the fork of `-D`, while files load) is honoured cleanly once the loop
/// starts (pid file removed, state written) instead of killing the process half-started.
/// Call early in `main`, before the fork.
///
/// Errors: the handlers cannot be installed.
pub fn catch_early_stop() -> io::Result<()> {
    let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [SIGTERM, SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&flag))?;
    }
    let _ = EARLY_STOP.set(flag);
    Ok(())
}

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
    /// `tracker.mode`.
    pub mode: TrackerMode,
    /// REST API settings (tokens); its listeners come with the other sockets.
    pub api: ApiSite,
    /// Live sync (`livesync.cluster.*`), when on; its sockets are in [`Listeners::livesync`].
    pub livesync: Option<LivesyncConfig>,
    /// Called on SIGHUP besides the access-list reload (`main` reopens the log file).
    pub on_sighup: Option<fn()>,
    /// `tracker.cpu_affinity`: with several workers, pin worker i to the i-th CPU the process
    /// may use.
    pub cpu_affinity: bool,
    /// `tracker.sched_batch`: with several workers, run every worker under `SCHED_BATCH`.
    pub sched_batch: bool,
}

/// The other workers, as worker 0 holds them.
struct Workers {
    /// Set to stop every worker; each is woken through its waker to see it.
    stop: Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<(std::thread::JoinHandle<io::Result<()>>, Arc<mio::Waker>)>,
}

impl Workers {
    /// Stops every worker and waits for it. A worker that failed or panicked is logged.
    fn stop(self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        for (_, waker) in &self.threads {
            let _ = waker.wake();
        }
        for (i, (thread, _)) in self.threads.into_iter().enumerate() {
            match thread.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => log::error!("worker {} failed: {e}", i + 1),
                Err(_) => log::error!("worker {} panicked", i + 1),
            }
        }
    }
}

/// Pins the calling thread to `cpu` (`sched_setaffinity`); a failure is logged, not fatal.
fn pin_to(cpu: usize, worker: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes within it for
    // cpu < CPU_SETSIZE (checked); sched_setaffinity(0, ...) reads the set for this thread.
    let ok = cpu < libc::CPU_SETSIZE as usize
        && unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) == 0
        };
    if ok {
        log::info!("worker {worker} pinned to CPU {cpu}");
    } else {
        log::warn!(
            "worker {worker}: cannot pin to CPU {cpu}: {}",
            io::Error::last_os_error()
        );
    }
}

/// Puts the calling thread under `SCHED_BATCH` (`tracker.sched_batch`, `sched(7)`): its
/// wake-ups no longer preempt the thread running on the CPU; it runs when that thread's slice
/// ends or it sleeps. The nice value is kept. A failure is logged, not fatal: the worker runs
/// under the policy it has.
fn use_batch_scheduling(worker: usize) {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler(0, ...) changes the calling thread and reads `param`.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) } != 0 {
        log::warn!(
            "worker {worker}: cannot use SCHED_BATCH: {}",
            io::Error::last_os_error()
        );
    }
}

/// What a worker other than 0 needs besides its sockets and its tracker.
struct WorkerConfig {
    index: usize,
    site: HttpSite,
    http: HttpLimits,
    start: Instant,
    stop: Arc<std::sync::atomic::AtomicBool>,
    open: Arc<std::sync::atomic::AtomicUsize>,
    cpu: Option<usize>,
    /// `tracker.sched_batch` (the count is above 1 here).
    sched_batch: bool,
    /// The certificates of the HTTPS listeners, as worker 0 last loaded them (`None` without
    /// `listen.tls`).
    tls: Option<Arc<SharedConfigs>>,
}

/// Starts workers 1..N over `sockets`, each with a tracker over `tracker`'s shared state
/// ([`Tracker::worker`]) and a UDP handler with `udp`'s connection_id key; `tls`: the
/// certificates of their HTTPS listeners (`None` without `listen.tls`).
#[allow(clippy::too_many_arguments)] // each is one thing worker 0 hands over; no natural group
fn start_workers(
    sockets: Vec<super::WorkerListeners>,
    tracker: &Tracker,
    udp: &UdpHandler,
    cfg: &LoopConfig,
    start: Instant,
    open: &Arc<std::sync::atomic::AtomicUsize>,
    cpus: &[usize],
    tls: Option<&Arc<SharedConfigs>>,
) -> io::Result<Workers> {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut threads = Vec::new();
    for (i, sockets) in sockets.into_iter().enumerate() {
        let index = i + 1;
        let poll = Poll::new()?;
        let waker = Arc::new(mio::Waker::new(poll.registry(), Token(WAKER))?);
        let wc = WorkerConfig {
            index,
            site: cfg.site.clone(),
            http: cfg.http,
            start,
            stop: Arc::clone(&stop),
            open: Arc::clone(open),
            cpu: (cfg.cpu_affinity && !cpus.is_empty()).then(|| cpus[index % cpus.len()]),
            sched_batch: cfg.sched_batch,
            tls: tls.cloned(),
        };
        let worker_tracker = tracker.worker(index);
        let wake = Arc::clone(&waker);
        worker_tracker.set_stats_wake(Arc::new(move || {
            let _ = wake.wake();
        }));
        let handler = udp.worker();
        let thread = std::thread::Builder::new()
            .name(format!("worker-{index}"))
            .spawn(move || run_worker(wc, poll, sockets, worker_tracker, handler))?;
        threads.push((thread, waker));
    }
    Ok(Workers { stop, threads })
}

/// Worker `index` (1..N): serves its copies of the tracker's listeners until worker 0 sets the
/// stop flag. Announces, scrapes (full ones too, in slices), `/stats`; no side work.
fn run_worker(
    wc: WorkerConfig,
    mut poll: Poll,
    sockets: super::WorkerListeners,
    mut tracker: Tracker,
    mut udp_handler: UdpHandler,
) -> io::Result<()> {
    if wc.sched_batch {
        use_batch_scheduling(wc.index);
    }
    if let Some(cpu) = wc.cpu {
        pin_to(cpu, wc.index);
    }
    let mut events = Events::with_capacity(1024);
    let mut http = HttpServer::new(sockets.tcp, wc.http, CONN_BASE)?;
    // The certificates as loaded at start (generation 0); a reload shows in a new generation.
    let mut tls_seen = 0;
    if let Some(shared) = &wc.tls {
        let (generation, configs) = shared.current();
        tls_seen = generation;
        http.add_tls_listeners(sockets.tls, &configs);
    }
    http.share_open_count(Arc::clone(&wc.open));
    http.register(poll.registry(), 0)?;
    let mut udp: Vec<UdpServer> = sockets.udp.into_iter().map(UdpServer::new).collect();
    for (i, u) in udp.iter_mut().enumerate() {
        u.register(poll.registry(), Token(UDP_BASE + i))?;
    }
    let site = wc.site;
    let mut next_idle = Instant::now() + Duration::from_secs(1);
    while !wc.stop.load(std::sync::atomic::Ordering::Acquire) {
        let runnable =
            udp.iter().any(|u| u.pending) || http.streams_runnable() || http.has_pending();
        let timeout = if runnable {
            Duration::ZERO
        } else {
            next_idle.saturating_duration_since(Instant::now())
        };
        if let Err(e) = poll.poll(&mut events, Some(timeout)) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let t0 = Instant::now();
        let now = t0.duration_since(wc.start).as_secs() as u32;
        tracker.private.unix_at_start = unix_seconds().saturating_sub(u64::from(now));
        tracker.refresh();
        // A certificate reload on worker 0: new connections from this turn on use it.
        if let Some((generation, configs)) = wc.tls.as_ref().and_then(|t| t.changed_since(tls_seen))
        {
            tls_seen = generation;
            for (i, config) in configs.into_iter().enumerate() {
                http.set_tls_config(i, config);
            }
        }
        for event in events.iter() {
            let token = event.token().0;
            if token < http.listener_count() {
                http.accept(token, poll.registry(), &mut tracker, &mut &site, now);
            } else if (UDP_BASE..UDP_BASE + udp.len()).contains(&token) {
                udp[token - UDP_BASE].serve(&mut udp_handler, &mut tracker, now);
            } else if token >= CONN_BASE {
                http.on_event(event, poll.registry(), &mut tracker, &mut &site, now);
            }
            // WAKER: the stop flag, checked at the top of the loop.
        }
        http.advance_streams(poll.registry(), &mut tracker, now);
        http.serve_pending(poll.registry(), &mut tracker, &mut &site, now);
        for u in udp.iter_mut().filter(|u| u.pending) {
            u.serve(&mut udp_handler, &mut tracker, now);
        }
        if t0 >= next_idle {
            http.sweep_idle(poll.registry(), &mut tracker, now);
            http.retry_accepts(poll.registry(), &mut tracker, &mut &site, now);
            tracker.stats.sample(now);
            tracker.publish_stats();
            next_idle = t0 + Duration::from_secs(1);
        }
        // Live sync: the turn's records go to the queue worker 0 sends from.
        tracker.publish_sync();
        let busy = t0.elapsed().as_micros() as u64;
        tracker.stats.loop_iterations += 1;
        tracker.stats.longest_stall_us = tracker.stats.longest_stall_us.max(busy);
        tracker.publish_stats_if_wanted();
    }
    // Before worker 0 sends its last packets (it waits for this thread).
    tracker.publish_sync();
    tracker.stats.tcp_closed.at_exit = http.open_connections() as u64;
    tracker.retire_stats();
    Ok(())
}

/// Seconds since the Unix epoch, by the wall clock (0 before 1970).
fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Where API writes go: the database writer when there is one, else RAM.
fn sink<'a>(persist: &'a mut Option<Persist>, ram: &'a mut RamOnly) -> &'a mut dyn OpSink {
    match persist {
        Some(p) => p,
        None => ram,
    }
}

/// How long one full cleaning sweep over every bucket takes: a quarter of the peer timeout, between
/// 1 s and 120 s (opentracker sweeps every 2 minutes). The store's expiry is exact whatever the
/// sweep's pace; the sweep only bounds how long expired peers hold memory and counts.
pub fn sweep_period(peer_timeout: u32) -> Duration {
    Duration::from_secs(u64::from((peer_timeout / 4).clamp(1, 120)))
}

/// Serves `listeners` until SIGTERM or SIGINT. `db` is the database opened at start with what
/// it held (`db.path`), or `None` (RAM only).
pub fn run(mut listeners: Listeners, cfg: LoopConfig, db: Option<(Db, Loaded)>) -> io::Result<()> {
    let worker_sockets = std::mem::take(&mut listeners.workers);
    let worker_count = worker_sockets.len() + 1;
    // Signals first: a SIGTERM that arrives once the listeners are announced must stop us cleanly.
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    // From here on `signals` sees every stop; one that came earlier was caught by the flag.
    let stopped_early = EARLY_STOP
        .get()
        .is_some_and(|f| f.load(std::sync::atomic::Ordering::SeqCst));
    let mut poll = Poll::new()?;
    let mut tracker = Tracker::new(cfg.policy.clone());
    tracker.private.mode = cfg.mode;
    tracker.private.unix_at_start = unix_seconds();
    if worker_count > 1 {
        tracker.join_board(0, Arc::new(crate::stats::workers::Board::new(worker_count)));
    }
    // One waker for every helper thread (mio allows one per poll).
    let waker = Arc::new(mio::Waker::new(poll.registry(), Token(WAKER))?);
    // The state file and the database are loaded before the listeners are announced:
    // "listening" means ready.
    let mut background = Background::start(&cfg.background, &waker, &mut tracker)?;
    let mut persist = match db {
        Some((db, loaded)) => {
            Persist::load(loaded, &mut tracker, 0);
            tracker.track_completed();
            Some(Persist::start(db, Arc::clone(&waker))?)
        }
        None => None,
    };
    let mut ram = RamOnly;
    if cfg.mode != TrackerMode::Public {
        log::info!("tracker.mode {}", cfg.mode.name());
    }
    if persist.is_none() && (cfg.mode != TrackerMode::Public || !listeners.api.is_empty()) {
        log::info!(
            "no db.path: keys and API whitelist entries live in RAM only and are lost at restart"
        );
    }
    for (_, addr) in &listeners.tcp {
        log::info!("listening: http {addr}");
    }
    for (_, addr) in &listeners.udp {
        log::info!("listening: udp {addr}");
    }
    for (_, addr) in &listeners.api {
        log::info!("listening: api {addr}");
    }
    // Live sync: sockets bound by `main`, tracker_id drawn, the store's hook turned on.
    let mut livesync = match &cfg.livesync {
        Some(lc) => {
            let sockets = std::mem::take(&mut listeners.livesync);
            let mut l = Livesync::new(sockets, lc, &mut tracker, Instant::now())?;
            l.register(poll.registry(), LIVESYNC_BASE)?;
            Some(l)
        }
        None => None,
    };
    let mut events = Events::with_capacity(1024);
    for (_, addr, _) in &listeners.tls {
        log::info!("listening: https {addr}");
    }
    for (_, addr, _) in &listeners.api_tls {
        log::info!("listening: api https {addr}");
    }
    let mut http = HttpServer::new(
        listeners.tcp.into_iter().map(|(l, _)| l).collect(),
        cfg.http,
        CONN_BASE,
    )?;
    // `http.max_connections` over every worker's tracker listeners.
    let open_everywhere = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    if worker_count > 1 {
        http.share_open_count(Arc::clone(&open_everywhere));
    }
    let mut api = HttpServer::new(
        listeners.api.into_iter().map(|(l, _)| l).collect(),
        cfg.http,
        API_CONN_BASE,
    )?;
    // With several workers, each serves its own copies of the `listen.tls` listeners with the
    // certificates worker 0 loads (and reloads).
    let mut shared_tls = None;
    if let Some(ids) = &listeners.identities {
        let tls = |list: Vec<(std::net::TcpListener, _, usize)>| {
            list.into_iter().map(|(l, _, i)| (l, i)).collect()
        };
        http.add_tls_listeners(tls(listeners.tls), &ids.configs);
        api.add_tls_listeners(tls(listeners.api_tls), &ids.configs);
        if worker_count > 1 {
            shared_tls = Some(Arc::new(SharedConfigs::new(&ids.configs)));
        }
    }
    http.register(poll.registry(), 0)?;
    http.publish_limits(&mut tracker.stats);
    api.register(poll.registry(), API_LISTEN_BASE)?;
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
    // The other workers start once the state is loaded; they share `start` (so the loop
    // seconds and the connection_id windows agree) and the connection_id key.
    let cpus = if cfg.cpu_affinity && worker_count > 1 {
        crate::config::allowed_cpus()
    } else {
        Vec::new()
    };
    if let Some(&cpu) = cpus.first() {
        pin_to(cpu, 0);
    }
    if cfg.sched_batch && worker_count > 1 {
        use_batch_scheduling(0);
        log::info!("{worker_count} workers under SCHED_BATCH (tracker.sched_batch)");
    }
    let workers = start_workers(
        worker_sockets,
        &tracker,
        &udp_handler,
        &cfg,
        start,
        &open_everywhere,
        &cpus,
        shared_tls.as_ref(),
    )?;
    if worker_count > 1 {
        let wake = Arc::clone(&waker);
        tracker.set_stats_wake(Arc::new(move || {
            let _ = wake.wake();
        }));
        log::info!("{worker_count} workers serve the tracker listeners");
    }
    let slices_per_sweep =
        (sweep_period(cfg.policy.peer_timeout).as_millis() as u64 / CLEAN_SLICE_MS).max(1);
    let buckets_per_slice = (BUCKETS as u64).div_ceil(slices_per_sweep) as usize;
    let mut next_clean = start + Duration::from_millis(CLEAN_SLICE_MS);
    let mut next_idle = start + Duration::from_secs(1);
    let mut running = true;
    if stopped_early {
        log::info!("stop signal received during start-up: stopping");
        running = false;
    }

    while running {
        let wake = next_clean.min(next_idle);
        let wake = background.next_timer().map_or(wake, |t| wake.min(t));
        let wake = persist.as_ref().map_or(wake, |p| wake.min(p.next_timer()));
        let wake = livesync
            .as_ref()
            .and_then(Livesync::next_timer)
            .map_or(wake, |t| wake.min(t));
        let runnable = udp.iter().any(|u| u.pending)
            || livesync.as_ref().is_some_and(Livesync::runnable)
            || background.busy()
            || http.streams_runnable()
            || http.has_pending()
            || api.has_pending()
            || tracker.purge_pending();
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
        // Key expiry and new keys' `valid_until` count in Unix seconds: `unix_at_start + now`
        // follows the wall clock to the second (one vDSO clock read per turn).
        tracker.private.unix_at_start = unix_seconds().saturating_sub(u64::from(now));
        tracker.refresh();
        for event in events.iter() {
            let token = event.token().0;
            if token < http.listener_count() {
                http.accept(token, poll.registry(), &mut tracker, &mut &cfg.site, now);
            } else if (API_LISTEN_BASE..API_LISTEN_BASE + api.listener_count()).contains(&token) {
                let mut front = ApiFront {
                    site: &cfg.api,
                    sink: sink(&mut persist, &mut ram),
                };
                api.accept(
                    token - API_LISTEN_BASE,
                    poll.registry(),
                    &mut tracker,
                    &mut front,
                    now,
                );
            } else if (UDP_BASE..UDP_BASE + udp.len()).contains(&token) {
                udp[token - UDP_BASE].serve(&mut udp_handler, &mut tracker, now);
            } else if token == SIGNAL {
                for sig in signals.pending() {
                    match sig {
                        SIGHUP => {
                            if let Some(f) = cfg.on_sighup {
                                f();
                            }
                            background.on_sighup();
                            if tracker.listed_only() {
                                if let Some(p) = persist.as_mut() {
                                    p.reload_whitelist(&mut tracker);
                                }
                            }
                        }
                        _ => {
                            log::info!("signal {sig} received: stopping");
                            running = false;
                        }
                    }
                }
            } else if token == WAKER {
                background.on_wake(&mut tracker, now);
                background.take_tls(&mut tracker, |i, config| {
                    if let Some(shared) = &shared_tls {
                        shared.set(i, Arc::clone(&config));
                    }
                    http.set_tls_config(i, Arc::clone(&config));
                    api.set_tls_config(i, config);
                });
                if let Some(p) = persist.as_mut() {
                    for (waiter, reply) in p.on_wake(&mut tracker) {
                        api.deliver(waiter, &reply, poll.registry(), &mut tracker, now);
                    }
                }
            } else if token >= API_CONN_BASE {
                let mut front = ApiFront {
                    site: &cfg.api,
                    sink: sink(&mut persist, &mut ram),
                };
                api.on_event(event, poll.registry(), &mut tracker, &mut front, now);
            } else if let Some(l) = livesync.as_mut().filter(|l| l.owns(token)) {
                l.readable(token, &mut tracker, now);
            } else if token >= CONN_BASE {
                http.on_event(event, poll.registry(), &mut tracker, &mut &cfg.site, now);
            }
        }
        // Streamed responses (full scrape) get one slice each per turn.
        http.advance_streams(poll.registry(), &mut tracker, now);
        // Connections left with buffered requests by `http.max_pipelined` get another turn.
        http.serve_pending(poll.registry(), &mut tracker, &mut &cfg.site, now);
        let mut front = ApiFront {
            site: &cfg.api,
            sink: sink(&mut persist, &mut ram),
        };
        api.serve_pending(poll.registry(), &mut tracker, &mut front, now);
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
        if let Some(p) = persist.as_mut() {
            p.step(&mut tracker, now, t0);
        }
        // Live sync: datagrams left from the turn, then the records of the turn's announces.
        if let Some(l) = &mut livesync {
            l.step(&mut tracker, now, Instant::now());
        }
        if t0 >= next_idle {
            http.sweep_idle(poll.registry(), &mut tracker, now);
            api.sweep_idle(poll.registry(), &mut tracker, now);
            http.retry_accepts(poll.registry(), &mut tracker, &mut &cfg.site, now);
            let mut front = ApiFront {
                site: &cfg.api,
                sink: sink(&mut persist, &mut ram),
            };
            api.retry_accepts(poll.registry(), &mut tracker, &mut front, now);
            tracker.purge_expired_keys(now, KEYS_PURGED_PER_SECOND);
            tracker.stats.sample(now);
            tracker.publish_stats();
            next_idle = t0 + Duration::from_secs(1);
        }
        let busy = t0.elapsed().as_micros() as u64;
        tracker.stats.loop_iterations += 1;
        tracker.stats.longest_stall_us = tracker.stats.longest_stall_us.max(busy);
        tracker.publish_stats_if_wanted();
    }
    // Every worker stops before the state is written, so it holds their last announces.
    workers.stop();
    if let Some(l) = &mut livesync {
        l.flush(&mut tracker);
    }
    background.shutdown(&tracker);
    if let Some(p) = persist {
        let now = start.elapsed().as_secs() as u32;
        p.shutdown(&mut tracker, now);
    }
    log::info!(
        "stopped: {} torrents, {} peers, {} HTTP connections open",
        tracker.v4.torrents() + tracker.v6.torrents(),
        tracker.peers(),
        http.open_connections()
    );
    tracker.stats.tcp_closed.at_exit = http.open_connections() as u64;
    log::info!("counters: {}", tracker.stats_as_published().summary());
    Ok(())
}
