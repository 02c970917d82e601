//! The event loop's side of persistence (`db.path`): what the database held is loaded into the
//! tracker at start, API writes go to the writer thread ([`crate::db::writer`]) and are answered
//! once committed, and `downloaded` counts are written behind in batches.
//!
//! - API writes: [`Persist`] is the API's [`OpSink`]: an [`Op`] becomes a writer request with a
//!   fresh id and the connection waits ([`crate::front::http::Outcome::Deferred`]); the loop
//!   never waits. The writer's completion wakes the loop ([`Persist::on_wake`]), which applies the
//!   change to RAM only now (so RAM never holds what the database refused) and hands the answer
//!   to the API server. A full writer queue or a stopped writer answers 503 at once.
//! - Counts: every announce that raised a torrent's `downloaded` marks the torrent
//!   ([`Tracker::take_completed`]); every [`COUNTS_EVERY`] the loop sends the marked torrents'
//!   counts as one batch (one transaction), unacknowledged. A `kill -9` loses at most the counts
//!   of the last [`COUNTS_EVERY`] and of a batch the writer had not committed yet.
//! - SIGHUP also reloads the whitelist table ([`Persist::reload_whitelist`]), beside the file.
//!   A reload (SIGHUP, `GET /api/v1/whitelist/reload`, the load at start) starts a purge of the
//!   torrents no longer allowed; [`Persist::step`] runs it, [`PURGE_BUCKETS_PER_TURN`] store
//!   buckets per loop turn (the access-list purge of [`super::background`] drives the same
//!   cursor when both run).

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::Waker;

use crate::access::keys::Key;
use crate::db::writer::{Completion, Outcome, Request, SendError, Writer};
use crate::db::{Applied, AuthKey, Db, Loaded};
use crate::front::api::{self, Op, OpResult, OpSink, Reply, Submitted, Waiter};
use crate::service::{Tracker, private};

/// How often the marked `downloaded` counts are sent to the writer (seconds).
pub const COUNTS_EVERY: Duration = Duration::from_secs(5);

/// Most marked torrents sent in one batch; the rest wait for the next one.
pub const COUNTS_BATCH_MAX: usize = 100_000;

/// Store buckets (of [`crate::swarm::store::BUCKETS`]) purged per loop turn after a whitelist
/// reload from the database: the access-list purge's slice, so a turn stalls no longer.
pub const PURGE_BUCKETS_PER_TURN: usize = super::background::PURGE_BUCKETS_PER_TURN;

/// The loop's handle on the database writer; see the module documentation.
pub struct Persist {
    writer: Writer,
    next_id: u64,
    waiting: HashMap<u64, (Op, Waiter)>,
    next_counts: Instant,
    /// Torrents dropped so far by the purge running after a whitelist reload.
    purged: u64,
}

impl Persist {
    /// Starts the writer thread on `db`; its completions wake the loop through `waker`.
    ///
    /// Errors: the thread cannot be spawned.
    pub fn start(db: Db, waker: Arc<Waker>) -> io::Result<Persist> {
        let writer = Writer::start(
            db,
            Box::new(move || {
                let _ = waker.wake();
            }),
        )?;
        Ok(Persist {
            writer,
            next_id: 0,
            waiting: HashMap::new(),
            next_counts: Instant::now() + COUNTS_EVERY,
            purged: 0,
        })
    }

    /// Installs what the database held: keys (those expired longer than
    /// [`private::EXPIRED_KEY_GRACE`] ago are skipped), whitelist entries and
    /// `downloaded` counts. A torrent with a count in the state file too keeps the larger of the
    /// two (both only ever grow, so the larger is the fresher). Logs what was loaded.
    pub fn load(loaded: Loaded, tracker: &mut Tracker, now: u32) {
        let unix = tracker.private.unix(now);
        let mut keys = 0;
        let mut expired = 0;
        for AuthKey { key, valid_until } in loaded.keys {
            match Key::parse(key.as_bytes()) {
                Some(k)
                    if valid_until
                        .is_none_or(|t| t.saturating_add(private::EXPIRED_KEY_GRACE) > unix) =>
                {
                    tracker.private.keys.insert(k, valid_until);
                    keys += 1;
                }
                Some(_) => expired += 1,
                None => {}
            }
        }
        let listed = loaded.whitelist.len();
        tracker.whitelist_replace(loaded.whitelist);
        let counts = loaded.completed.len();
        for (info_hash, count) in loaded.completed {
            let count = u32::try_from(count).unwrap_or(u32::MAX);
            let current = tracker
                .scrape_one(&info_hash, now)
                .map_or(0, |c| c.downloaded);
            if count > current {
                tracker.v4.set_downloaded(&info_hash, count, now);
            }
        }
        log::info!(
            "database loaded: {keys} keys ({expired} long expired, not loaded), {listed} whitelist \
             entries, {counts} downloaded counts"
        );
    }

    /// SIGHUP: reads the whitelist table again; the entries replace the API/database ones when
    /// the writer answers (a purge then drops the torrents no longer allowed).
    pub fn reload_whitelist(&mut self, tracker: &mut Tracker) {
        if let Submitted::Now(reply) = self.submit(tracker, Op::ReloadWhitelist, Waiter::INTERNAL) {
            log::warn!(
                "database: whitelist reload not started: {}",
                String::from_utf8_lossy(&reply.body)
            );
        }
    }

    /// The writer woke the loop: applies each completed [`Op`] to RAM and returns the answers
    /// for the connections that wait ([`Waiter::INTERNAL`] ones are applied and logged only).
    pub fn on_wake(&mut self, tracker: &mut Tracker) -> Vec<(Waiter, Reply)> {
        let mut out = Vec::new();
        while let Some(Completion { id, result }) = self.writer.poll_completed() {
            let Some((op, waiter)) = self.waiting.remove(&id) else {
                continue;
            };
            let result = match result {
                Ok(outcome) => op_result(&op, outcome),
                Err(e) => OpResult::Failed(e.to_string()),
            };
            let reply = api::complete(tracker, op, result);
            if waiter == Waiter::INTERNAL {
                log::info!("database: {op:?}: {}", String::from_utf8_lossy(&reply.body));
            } else {
                out.push((waiter, reply));
            }
        }
        out
    }

    /// When the next batch of counts is due.
    pub fn next_timer(&self) -> Instant {
        self.next_counts
    }

    /// One loop turn's share: a slice of the purge a whitelist reload started (nothing else
    /// drives it unless an access-list file is reloaded at the same time), and the marked
    /// `downloaded` counts once [`COUNTS_EVERY`] has passed. A full queue keeps them marked for
    /// the next batch.
    pub fn step(&mut self, tracker: &mut Tracker, now_loop: u32, now: Instant) {
        if tracker.purge_pending() {
            let step = tracker.purge_step(PURGE_BUCKETS_PER_TURN);
            self.purged += step.dropped;
            if step.done {
                log::info!(
                    "whitelist purge done: {} torrents no longer listed dropped",
                    self.purged
                );
                self.purged = 0;
            }
        }
        if now < self.next_counts {
            return;
        }
        self.next_counts = now + COUNTS_EVERY;
        let batch = counts_batch(tracker, now_loop, COUNTS_BATCH_MAX);
        if batch.is_empty() {
            return;
        }
        if let Err((e, batch)) = self.writer.send_counts(batch) {
            log::warn!(
                "database: {e}; {} counts wait for the next batch",
                batch.len()
            );
            for (h, _) in batch {
                tracker.mark_completed(h);
            }
        }
    }

    /// At exit: sends every marked count, lets the writer finish what is queued and stops it.
    pub fn shutdown(self, tracker: &mut Tracker, now_loop: u32) {
        let batch = counts_batch(tracker, now_loop, usize::MAX);
        if !batch.is_empty() {
            if let Err((e, batch)) = self.writer.send_counts(batch) {
                log::warn!("database: {e}; {} counts not written at exit", batch.len());
            }
        }
        let left = self.writer.stop();
        if !left.is_empty() {
            log::info!(
                "database: {} completions after the loop stopped",
                left.len()
            );
        }
    }
}

/// The marked torrents' `downloaded` counts over both families, at most `max` (the rest stay
/// marked).
fn counts_batch(tracker: &mut Tracker, now: u32, max: usize) -> Vec<(crate::types::InfoHash, u64)> {
    let marked = tracker.take_completed(max);
    marked
        .into_iter()
        .filter_map(|h| {
            tracker
                .scrape_one(&h, now)
                .map(|c| (h, u64::from(c.downloaded)))
        })
        .collect()
}

/// The writer's outcome in the API's terms.
fn op_result(op: &Op, outcome: Outcome) -> OpResult {
    match outcome {
        Outcome::Applied(Applied::AlreadyPresent) if matches!(op, Op::AddKey { .. }) => {
            OpResult::Duplicate
        }
        Outcome::Applied(Applied::NotFound) => OpResult::Missing,
        Outcome::Applied(_) => OpResult::Done,
        Outcome::Keys { keys, .. } => OpResult::Keys(
            keys.into_iter()
                .filter_map(|k| Key::parse(k.key.as_bytes()).map(|key| (key, k.valid_until)))
                .collect(),
        ),
        Outcome::Whitelist { info_hashes, .. } => OpResult::Whitelist(info_hashes),
    }
}

fn request_of(op: &Op) -> Request {
    match *op {
        Op::AddKey { key, valid_until } => Request::AddKey(AuthKey {
            key: key.as_str().to_owned(),
            valid_until,
        }),
        Op::RemoveKey(key) => Request::RemoveKey(key.as_str().to_owned()),
        Op::AddWhitelist(h) => Request::AddWhitelist(h),
        Op::RemoveWhitelist(h) => Request::RemoveWhitelist(h),
        Op::ReloadKeys => Request::ReloadKeys,
        Op::ReloadWhitelist => Request::ReloadWhitelist,
    }
}

impl OpSink for Persist {
    fn submit(&mut self, tracker: &mut Tracker, op: Op, waiter: Waiter) -> Submitted {
        let id = self.next_id;
        self.next_id += 1;
        match self.writer.send(id, request_of(&op)) {
            Ok(()) => {
                self.waiting.insert(id, (op, waiter));
                Submitted::Later
            }
            Err(e @ (SendError::Full | SendError::Stopped)) => {
                Submitted::Now(api::complete(tracker, op, OpResult::Failed(e.to_string())))
            }
        }
    }
}
