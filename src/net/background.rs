//! Work the event loop does beside requests, in slices or on helper threads, so that none of it
//! stalls announces: the access-list reload (SIGHUP) with the purge of refused torrents, and the
//! state file (load at start, periodic and final writes).
//!
//! - Reload: SIGHUP wakes the `access-reload` thread ([`crate::access::reload`]), which parses the
//!   file and wakes the loop through a [`mio::Waker`] (token [`super::event_loop::WAKER`]). The
//!   loop swaps the list in (a pointer store) and then purges the torrents the new list refuses,
//!   [`PURGE_BUCKETS_PER_TURN`] buckets per loop turn. An unreadable file keeps the old list.
//! - State file: every `tracker.state_interval` seconds the loop collects the `downloaded` counts,
//!   [`SNAPSHOT_TORRENTS_PER_TURN`] torrents per turn, and hands them to the `state-writer`
//!   thread ([`crate::state::Writer`]). At SIGTERM/SIGINT one full snapshot is written before
//!   the process exits.
//!
//! - Certificates: SIGHUP also wakes the `tls-reload` thread ([`super::tls::Reloader`]) when
//!   HTTPS listeners exist; it re-reads every certificate/key pair, and the loop installs each
//!   good pair for new connections ([`Background::take_tls`]). A bad pair keeps the old one.
//!
//! While a purge or a snapshot runs, the loop polls without sleeping ([`Background::busy`]).

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::Waker;

use crate::access::Access;
use crate::access::reload::Reloader;
use crate::service::Tracker;
use crate::state::snapshot::Snapshot;
use crate::state::{self, Writer};

/// Store buckets purged per loop turn after a reload (of 4096; 1/256 of the torrents, about
/// 4,000 at a million torrents: under 2 ms per turn, measured with `examples/access_state_cost`).
pub const PURGE_BUCKETS_PER_TURN: usize = 16;

/// Torrents visited per loop turn while collecting a state-file snapshot (under 1 ms per turn,
/// measured with `examples/access_state_cost`).
pub const SNAPSHOT_TORRENTS_PER_TURN: usize = 16 * 1024;

/// What the background work needs from the configuration.
#[derive(Clone, Debug, Default)]
pub struct BackgroundConfig {
    /// The access policy loaded at start (before serving) and the file to reload it from on
    /// SIGHUP (`access.whitelist` / `access.blacklist`).
    pub access: Option<(Access, PathBuf)>,
    /// `tracker.state_file`: loaded at start, written periodically and at exit.
    pub state_file: Option<PathBuf>,
    /// `tracker.state_interval`, seconds between periodic writes; 0 = only at exit.
    pub state_interval: u32,
    /// The certificate/key pairs of the HTTPS listeners (`listen.tls`, `api.listen_tls`),
    /// re-read on SIGHUP; empty = none.
    pub tls: Vec<(PathBuf, PathBuf)>,
}

/// Timing of work done in slices, for the log.
#[derive(Debug)]
struct Slices {
    started: Instant,
    count: u32,
    longest: Duration,
    items: u64,
}

impl Slices {
    fn new() -> Self {
        Slices {
            started: Instant::now(),
            count: 0,
            longest: Duration::ZERO,
            items: 0,
        }
    }

    fn add(&mut self, took: Duration, items: u64) {
        self.count += 1;
        self.longest = self.longest.max(took);
        self.items += items;
    }
}

struct StateFile {
    path: PathBuf,
    writer: Writer,
    interval: Option<Duration>,
    next: Instant,
    snapshot: Option<(Snapshot, Slices)>,
}

/// The loop's background work; see the module documentation.
pub struct Background {
    reloader: Option<Reloader>,
    access_path: Option<PathBuf>,
    purge: Option<Slices>,
    state: Option<StateFile>,
    tls: Option<(super::tls::Reloader, Vec<(PathBuf, PathBuf)>)>,
}

impl Background {
    /// Installs the access policy in `tracker`, starts the reload thread (which wakes the loop
    /// through `waker`), loads the state file into the IPv4 store (a missing file is a first start;
    /// bad lines and read errors are logged, never fatal) and starts the state writer thread.
    ///
    /// Errors: the waker or a thread cannot be created.
    pub fn start(
        cfg: &BackgroundConfig,
        waker: &Arc<Waker>,
        tracker: &mut Tracker,
    ) -> io::Result<Self> {
        let mut bg = Background {
            reloader: None,
            access_path: None,
            purge: None,
            state: None,
            tls: None,
        };
        if !cfg.tls.is_empty() {
            let waker = Arc::clone(waker);
            let reloader = super::tls::Reloader::spawn_certificates(cfg.tls.clone(), move || {
                let _ = waker.wake();
            })?;
            bg.tls = Some((reloader, cfg.tls.clone()));
        }
        if let Some((access, path)) = &cfg.access {
            tracker.set_access(Some(access.clone()));
            let waker = Arc::clone(waker);
            bg.reloader = Some(Reloader::spawn(path.clone(), move || {
                let _ = waker.wake();
            })?);
            bg.access_path = Some(path.clone());
        }
        if let Some(path) = &cfg.state_file {
            load_state(path, tracker);
            let interval =
                (cfg.state_interval > 0).then(|| Duration::from_secs(cfg.state_interval.into()));
            bg.state = Some(StateFile {
                path: path.clone(),
                writer: Writer::spawn(path.clone())?,
                interval,
                next: Instant::now() + interval.unwrap_or(Duration::ZERO),
                snapshot: None,
            });
        }
        Ok(bg)
    }

    /// SIGHUP: asks the reload thread for a fresh list.
    pub fn on_sighup(&self) {
        if let Some((r, files)) = &self.tls {
            log::info!(
                "SIGHUP received: reloading {} TLS certificate/key pair(s)",
                files.len()
            );
            r.request();
        }
        match &self.reloader {
            Some(r) => {
                log::info!("SIGHUP received: reloading the access list");
                r.request();
            }
            None if self.tls.is_some() => {}
            None => log::info!("SIGHUP received: no access list configured, nothing to reload"),
        }
    }

    /// The waker fired: takes a finished reload, swaps the list in and starts the purge; or logs
    /// why the file could not be read and keeps the old list.
    pub fn on_wake(&mut self, tracker: &mut Tracker, now: u32) {
        let Some(result) = self.reloader.as_ref().and_then(Reloader::try_take) else {
            return;
        };
        let directive = tracker
            .access()
            .map_or("access list", |a| a.mode.directive());
        match result {
            Ok(loaded) => {
                for w in &loaded.warnings {
                    log::warn!("{directive}: {w}");
                }
                let n = loaded.list.len();
                let swap = Instant::now();
                let path = self
                    .access_path
                    .as_deref()
                    .unwrap_or(std::path::Path::new("?"))
                    .display();
                let reloaded = match tracker.reload_access_list(loaded.list, loaded.end_marker, now)
                {
                    Ok(r) => r,
                    Err(refused) => {
                        log::warn!("{directive} {path}: reload refused: {refused}");
                        return;
                    }
                };
                log::info!(
                    "{directive} {path} reloaded: {n} info_hashes, {} dropped, {} restored with \
                     their downloaded counts (read in {} ms, swapped in {} us); purging refused \
                     torrents",
                    reloaded.dropped,
                    reloaded.restored,
                    loaded.elapsed.as_millis(),
                    swap.elapsed().as_micros()
                );
                self.purge = Some(Slices::new());
            }
            Err(e) => {
                let n = tracker.access().map_or(0, |a| a.list.len());
                log::warn!("{directive}: {e}; keeping the previous list ({n} info_hashes)");
            }
        }
    }

    /// The waker fired: takes a finished certificate reload. Hands each good pair to `install`
    /// with its index ([`super::tls::Identities`]) before logging it as reloaded (so a reader
    /// of the log line finds it installed on every worker); logs each refused pair (and counts
    /// it in `tracker.stats.tls.reload_failed`), which keeps the previous one.
    pub fn take_tls(
        &mut self,
        tracker: &mut Tracker,
        mut install: impl FnMut(usize, Arc<rustls::ServerConfig>),
    ) {
        let Some((reloader, files)) = &self.tls else {
            return;
        };
        let Some(results) = reloader.try_take() else {
            return;
        };
        for (i, result) in results.into_iter().enumerate() {
            let (cert, key) = &files[i];
            match result {
                Ok(config) => {
                    install(i, config);
                    log::info!(
                        "TLS certificate {} reloaded (key {}); new connections use it",
                        cert.display(),
                        key.display()
                    );
                }
                Err(e) => {
                    tracker.stats.tls.reload_failed += 1;
                    log::warn!("TLS reload refused: {e}; keeping the previous certificate");
                }
            }
        }
    }

    /// True while a purge or a snapshot is running: the loop should poll without sleeping.
    pub fn busy(&self) -> bool {
        self.purge.is_some() || self.state.as_ref().is_some_and(|s| s.snapshot.is_some())
    }

    /// When the next periodic state write is due, if any.
    pub fn next_timer(&self) -> Option<Instant> {
        let s = self.state.as_ref()?;
        s.interval?;
        Some(s.next)
    }

    /// One loop turn's share: a purge slice, a snapshot slice, and the state-write timer.
    pub fn step(&mut self, tracker: &mut Tracker, now: Instant) {
        if let Some(p) = &mut self.purge {
            let t = Instant::now();
            let step = tracker.purge_step(PURGE_BUCKETS_PER_TURN);
            p.add(t.elapsed(), step.dropped);
            if step.done {
                log::info!(
                    "access purge done: {} torrents dropped in {} slices over {} ms, longest \
                     slice {} us",
                    p.items,
                    p.count,
                    p.started.elapsed().as_millis(),
                    p.longest.as_micros()
                );
                self.purge = None;
            }
        }
        let Some(s) = &mut self.state else {
            return;
        };
        if let Some((snap, slices)) = &mut s.snapshot {
            let t = Instant::now();
            let done = snap.step(&tracker.v4, &tracker.v6, SNAPSHOT_TORRENTS_PER_TURN);
            slices.add(t.elapsed(), 0);
            if done {
                let (snap, slices) = s.snapshot.take().expect("snapshot running");
                let (v4, v6) = snap.into_parts();
                log::debug!(
                    "state snapshot: {} + {} torrents with downloads in {} slices over {} ms, \
                     longest slice {} us",
                    v4.len(),
                    v6.len(),
                    slices.count,
                    slices.started.elapsed().as_millis(),
                    slices.longest.as_micros()
                );
                s.writer.submit(v4, v6);
            }
        } else if let Some(interval) = s.interval {
            if now >= s.next {
                if s.writer.busy() {
                    // The previous write is still going (slow disk): try again in a second.
                    s.next = now + Duration::from_secs(1);
                } else {
                    s.snapshot = Some((Snapshot::new(), Slices::new()));
                    s.next = now + interval;
                }
            }
        }
    }

    /// At exit (SIGTERM/SIGINT): writes the state file from one full snapshot and waits for the
    /// writer; stops the reload thread.
    pub fn shutdown(self, tracker: &Tracker) {
        drop(self.reloader);
        if let Some(s) = self.state {
            log::info!("writing state file {} before exit", s.path.display());
            let (v4, v6) = Snapshot::full(&tracker.v4, &tracker.v6).into_parts();
            s.writer.submit(v4, v6);
            s.writer.finish();
        }
    }
}

/// Loads the state file into `tracker` (IPv4 store; scrape sums both families), logging what
/// happened. Never fails.
fn load_state(path: &std::path::Path, tracker: &mut Tracker) {
    if !path.exists() {
        log::info!(
            "state file {} does not exist yet; it will be written",
            path.display()
        );
        return;
    }
    match state::load(path) {
        Ok(mut loaded) => {
            for w in &loaded.warnings {
                log::warn!("state file: {w}");
            }
            let start = Instant::now();
            // Sorted, every insert is an append (a file in random order took 2.2 s for a million
            // lines, sorted 0.07 s). Stable: of two lines for one hash, the later one wins.
            loaded.entries.sort_by_key(|e| e.0);
            for (hash, downloaded) in &loaded.entries {
                tracker.v4.set_downloaded(hash, *downloaded, 0);
            }
            log::info!(
                "state file {} loaded: {} torrents with downloads ({} bad lines; read in {} ms, \
                 stored in {} ms)",
                path.display(),
                loaded.entries.len(),
                loaded.bad_lines,
                loaded.elapsed.as_millis(),
                start.elapsed().as_millis()
            );
        }
        Err(e) => log::warn!("state file: {e}; starting without downloaded counts"),
    }
}
