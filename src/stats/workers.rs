//! Counters of several workers (`tracker.workers`): each worker counts in its own [`Stats`]
//! (plain integers, no atomics on the hot path) and publishes a copy on a [`Board`] when a
//! reader asks (checked at the end of each loop turn) and once a second; `/stats` and
//! `/metrics` read the sum ([`Board::total`], fresh: see [`Board`]) with a per-worker
//! breakdown ([`WorkerCounts`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{RequestCounts, Stats};

/// Per-worker figures, for the `worker` label of `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerCounts {
    /// Requests answered or refused (announces, scrapes, connects, failed), HTTP and UDP.
    pub requests: u64,
    /// Iterations of this worker's loop.
    pub loop_iterations: u64,
    /// Longest busy stretch of one iteration, microseconds.
    pub longest_stall_us: u64,
    /// TLS handshakes completed on this worker's HTTPS listeners (`listen.tls`; worker 0's
    /// count includes the API's, `api.listen_tls`).
    pub tls_handshakes: u64,
}

impl WorkerCounts {
    fn of(s: &Stats) -> Self {
        WorkerCounts {
            requests: s.request_totals().iter().sum(),
            loop_iterations: s.loop_iterations,
            longest_stall_us: s.longest_stall_us,
            tls_handshakes: s.tls.completed,
        }
    }
}

/// One published [`Stats`] per worker (index = worker number), each behind its own lock: the
/// owner writes its slot at the end of a loop turn when a reader asked, and once a second;
/// readers (a `/stats` request on any worker) copy the slots.
///
/// Fresh on demand: a reader asks every worker for a new copy (a generation number and a
/// wake-up) and waits until each has published one taken after the request, at most
/// [`FRESH_WAIT`]: a worker publishes at the end of the turn it is in, so every request
/// answered before the reader asked is counted (a client that got its reply sees it in the
/// `/stats` it asks next, whichever worker serves either). While it waits, the reader keeps
/// publishing its own counters, so two workers reading at once do not wait for each other.
#[derive(Debug)]
pub struct Board {
    slots: Box<[Slot]>,
    /// Bumped by each reader; a slot whose `seen` is at least a reader's number was published
    /// after that reader asked.
    wanted: AtomicU64,
}

/// How a reader wakes a worker's loop (its `mio::Waker`, given by the loop).
pub type Wake = Arc<dyn Fn() + Send + Sync>;

#[derive(Default)]
struct Slot {
    stats: Mutex<Stats>,
    /// The value of `wanted` read just before the copy in `stats` was taken.
    seen: AtomicU64,
    /// Wakes the worker's loop so it publishes (none: it is not running yet).
    waker: Mutex<Option<Wake>>,
    /// The worker has stopped: its last copy is final, nobody waits for it.
    stopped: AtomicBool,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("seen", &self.seen)
            .field("stopped", &self.stopped)
            .finish_non_exhaustive()
    }
}

/// The longest a `/stats` reader waits for the other workers' fresh counters.
pub const FRESH_WAIT: Duration = Duration::from_millis(200);

impl Board {
    /// A board of `workers` empty slots.
    pub fn new(workers: usize) -> Self {
        Board {
            slots: (0..workers.max(1)).map(|_| Slot::default()).collect(),
            wanted: AtomicU64::new(0),
        }
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.slots.len()
    }

    /// Registers worker `index`'s wake-up: readers call it to have its counters published.
    pub fn set_waker(&self, index: usize, waker: Wake) {
        if let Some(slot) = self.slots.get(index) {
            *lock(&slot.waker) = Some(waker);
        }
    }

    /// Publishes worker `index`'s counters (a copy that reuses the slot's allocations); an
    /// index out of range is ignored. The loop calls it at the end of every turn.
    pub fn publish(&self, index: usize, stats: &Stats) {
        if let Some(slot) = self.slots.get(index) {
            let g = self.wanted.load(Ordering::Acquire);
            lock(&slot.stats).clone_from(stats);
            slot.seen.store(g, Ordering::Release);
        }
    }

    /// [`Board::publish`] if a reader asked for fresh counters since worker `index` last
    /// published (one atomic load otherwise). The loop calls it at the end of every turn, and
    /// [`Board::publish`] once a second: a copy of the counters costs about as much as a few
    /// requests, and with several workers a turn often serves only a few.
    #[inline]
    pub fn publish_if_wanted(&self, index: usize, stats: &Stats) {
        if let Some(slot) = self.slots.get(index) {
            if slot.seen.load(Ordering::Relaxed) < self.wanted.load(Ordering::Acquire) {
                self.publish(index, stats);
            }
        }
    }

    /// Worker `index` publishes its last counters and stops: readers no longer wait for it.
    pub fn retire(&self, index: usize, stats: &Stats) {
        self.publish(index, stats);
        if let Some(slot) = self.slots.get(index) {
            slot.stopped.store(true, Ordering::Release);
        }
    }

    /// Asks every other worker for fresh counters and waits for them (see the type's docs), at
    /// most [`FRESH_WAIT`].
    fn refresh(&self, index: usize, own: &Stats) {
        let want = self.wanted.fetch_add(1, Ordering::AcqRel) + 1;
        for (i, slot) in self.slots.iter().enumerate() {
            if i != index {
                if let Some(wake) = lock(&slot.waker).as_ref() {
                    wake();
                }
            }
        }
        let deadline = Instant::now() + FRESH_WAIT;
        loop {
            // Another reader may be waiting for us.
            self.publish(index, own);
            let fresh = self.slots.iter().enumerate().all(|(i, s)| {
                i == index
                    || s.stopped.load(Ordering::Acquire)
                    || lock(&s.waker).is_none()
                    || s.seen.load(Ordering::Acquire) >= want
            });
            if fresh || Instant::now() >= deadline {
                return;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    /// The sum of every worker's counters, with `own` (the live counters of worker `index`)
    /// in place of slot `index`, the others fresh (see the type's docs); [`Stats::workers`]
    /// lists each worker.
    pub fn total(&self, index: usize, own: &Stats) -> Stats {
        self.refresh(index, own);
        self.sum(index, own)
    }

    /// [`Board::total`] without asking for fresh counters: each worker's as last published.
    pub fn sum(&self, index: usize, own: &Stats) -> Stats {
        let mut total = own.clone();
        let mut per = vec![WorkerCounts::default(); self.slots.len()];
        if let Some(p) = per.get_mut(index) {
            *p = WorkerCounts::of(own);
        }
        for (i, slot) in self.slots.iter().enumerate() {
            if i == index {
                continue;
            }
            let s = lock(&slot.stats);
            per[i] = WorkerCounts::of(&s);
            total.add(&s);
        }
        total.workers = per;
        total
    }
}

/// Locks a board mutex; a poisoned one (a worker panicked while copying counters) still holds
/// usable counters.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn add_requests(a: &mut [RequestCounts; 2], b: &[RequestCounts; 2]) {
    for (x, y) in a.iter_mut().zip(b) {
        x.announce += y.announce;
        x.scrape += y.scrape;
        x.connect += y.connect;
        x.failed += y.failed;
    }
}

impl super::Livesync {
    /// Adds another worker's live sync counters: counts summed, lags the larger one. Every
    /// field is named, so a new counter cannot be forgotten.
    fn add(&mut self, other: &super::Livesync) {
        let super::Livesync {
            packets_sent,
            records_sent,
            send_failed,
            queue_dropped,
            packets_received,
            records_received,
            packets_refused,
            records_refused,
            completed,
            lag_last_ms,
            lag_max_ms,
        } = other;
        self.packets_sent += packets_sent;
        self.records_sent += records_sent;
        self.send_failed += send_failed;
        self.queue_dropped += queue_dropped;
        self.packets_received += packets_received;
        self.records_received += records_received;
        for (x, y) in self.packets_refused.iter_mut().zip(packets_refused) {
            *x += y;
        }
        for (x, y) in self.records_refused.iter_mut().zip(records_refused) {
            *x += y;
        }
        self.completed += completed;
        // Gauges of worker 0's sender (the others send nothing and stay at 0).
        self.lag_last_ms = self.lag_last_ms.max(*lag_last_ms);
        self.lag_max_ms = self.lag_max_ms.max(*lag_max_ms);
    }
}

impl Stats {
    /// Adds another worker's counters to these: counters and gauges are summed, the longest
    /// stall is the larger one, the request history is summed sample by sample (newest with
    /// newest). Live sync counters are summed too (every worker queues sync records; worker 0
    /// sends and receives), their lag gauges are the larger one. TLS handshakes are summed
    /// (every worker serves `listen.tls`; certificate reloads, `tls.reload_failed`, happen on
    /// worker 0 only, so they sum to its count). Every field is named here, so a new counter
    /// cannot be forgotten: the destructuring stops the build.
    pub fn add(&mut self, other: &Stats) {
        let Stats {
            http,
            udp,
            tcp_accepted,
            tcp_refused_over_limit,
            tcp_refused_no_fd,
            http_max_connections,
            http_max_connections_lowered_by,
            fullscrape_snapshots,
            fullscrape_shared,
            fullscrape_refused_busy,
            fullscrape_snapshot_bytes,
            quota,
            http_status_errors,
            completed,
            bytes_in,
            bytes_out,
            udp_invalid,
            udp_send_dropped,
            loop_iterations,
            longest_stall_us,
            fullscrapes,
            fullscrapes_gzip,
            http_connections,
            http_streams,
            refused_torrent_limit,
            refused_peer_limit,
            tcp_closed,
            auth_refused,
            livesync,
            tls,
            history,
            workers: _,
        } = other;
        add_requests(&mut self.http, http);
        add_requests(&mut self.udp, udp);
        self.tcp_accepted += tcp_accepted;
        self.tcp_refused_over_limit += tcp_refused_over_limit;
        self.tcp_refused_no_fd += tcp_refused_no_fd;
        // http_max_connections(_lowered_by): the same setting on every worker (one global
        // cap): the largest value, whichever worker's copy the sum started from.
        self.http_max_connections = self.http_max_connections.max(*http_max_connections);
        self.http_max_connections_lowered_by = self
            .http_max_connections_lowered_by
            .max(*http_max_connections_lowered_by);
        self.fullscrape_snapshots += fullscrape_snapshots;
        self.fullscrape_shared += fullscrape_shared;
        self.fullscrape_refused_busy += fullscrape_refused_busy;
        self.fullscrape_snapshot_bytes += fullscrape_snapshot_bytes;
        self.quota.new_torrents_per_net += quota.new_torrents_per_net;
        self.quota.peers_per_source += quota.peers_per_source;
        self.quota.udp_rate_limited += quota.udp_rate_limited;
        for &(code, n) in http_status_errors {
            match self.http_status_errors.iter_mut().find(|(c, _)| *c == code) {
                Some((_, m)) => *m += n,
                None => self.http_status_errors.push((code, n)),
            }
        }
        self.completed += completed;
        self.bytes_in += bytes_in;
        self.bytes_out += bytes_out;
        let u = &mut self.udp_invalid;
        u.malformed_header += udp_invalid.malformed_header;
        u.bad_magic += udp_invalid.bad_magic;
        u.unknown_action += udp_invalid.unknown_action;
        u.bad_connection_id += udp_invalid.bad_connection_id;
        u.malformed_request += udp_invalid.malformed_request;
        self.udp_send_dropped += udp_send_dropped;
        self.loop_iterations += loop_iterations;
        self.longest_stall_us = self.longest_stall_us.max(*longest_stall_us);
        self.fullscrapes += fullscrapes;
        self.fullscrapes_gzip += fullscrapes_gzip;
        // A gauge of every worker's connections already (the shared count, as of the last
        // request each served): the reader's own value is the freshest.
        let _ = http_connections;
        self.http_streams += http_streams;
        self.refused_torrent_limit += refused_torrent_limit;
        self.refused_peer_limit += refused_peer_limit;
        let c = &mut self.tcp_closed;
        c.by_client += tcp_closed.by_client;
        c.after_response += tcp_closed.after_response;
        c.idle_timeout += tcp_closed.idle_timeout;
        c.header_timeout += tcp_closed.header_timeout;
        c.slow_reader += tcp_closed.slow_reader;
        c.at_exit += tcp_closed.at_exit;
        let a = &mut self.auth_refused;
        a.missing_key += auth_refused.missing_key;
        a.unknown_key += auth_refused.unknown_key;
        a.expired_key += auth_refused.expired_key;
        a.not_authorized += auth_refused.not_authorized;
        self.livesync.add(livesync);
        let t = &mut self.tls;
        t.completed += tls.completed;
        t.failed += tls.failed;
        t.timed_out += tls.timed_out;
        t.micros += tls.micros;
        t.reload_failed += tls.reload_failed;
        self.history.add(history);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Family;

    #[test]
    fn the_board_sums_every_worker_and_lists_each() {
        let board = Board::new(3);
        let mut w1 = Stats::default();
        w1.udp[Family::V4 as usize].announce = 5;
        w1.http_status(404);
        w1.longest_stall_us = 70;
        w1.loop_iterations = 9;
        w1.tls.completed = 3;
        w1.tls.micros = 300;
        board.publish(1, &w1);
        let mut w2 = Stats::default();
        w2.udp[Family::V4 as usize].announce = 2;
        w2.http_status(404);
        w2.http_status(413);
        w2.completed = 1;
        board.publish(2, &w2);
        // Worker 0 reads with its live counters; its own slot is stale and ignored.
        board.publish(0, &Stats::default());
        let mut own = Stats::default();
        own.http[Family::V6 as usize].scrape = 4;
        own.longest_stall_us = 30;
        own.tls.completed = 1;
        own.tls.reload_failed = 1;
        let t = board.sum(0, &own);
        assert_eq!(t.udp[Family::V4 as usize].announce, 7);
        assert_eq!(t.http[Family::V6 as usize].scrape, 4);
        assert_eq!(t.http_status_count(404), 2);
        assert_eq!(t.http_status_count(413), 1);
        assert_eq!(t.completed, 1);
        assert_eq!(t.longest_stall_us, 70);
        assert_eq!(t.loop_iterations, 9);
        let requests: Vec<u64> = t.workers.iter().map(|w| w.requests).collect();
        assert_eq!(requests, [4, 5, 2]);
        assert_eq!(
            (t.tls.completed, t.tls.micros, t.tls.reload_failed),
            (4, 300, 1)
        );
        let tls: Vec<u64> = t.workers.iter().map(|w| w.tls_handshakes).collect();
        assert_eq!(tls, [1, 3, 0]);
    }

    /// Live sync with several workers: worker 0 sends and receives, every worker may drop
    /// records from a full queue; a reader on any worker sees the sum.
    #[test]
    fn live_sync_counters_are_summed_whichever_worker_reads() {
        let board = Board::new(2);
        let mut w0 = Stats::default();
        w0.livesync.records_sent = 10;
        w0.livesync.records_received = 4;
        w0.livesync.packets_refused[1] = 2;
        w0.livesync.queue_dropped = 1;
        w0.livesync.lag_max_ms = 900;
        board.publish(0, &w0);
        let mut w1 = Stats::default();
        w1.livesync.queue_dropped = 3;
        board.publish(1, &w1);
        for (reader, own) in [(0, &w0), (1, &w1)] {
            let l = board.sum(reader, own).livesync;
            assert_eq!((l.records_sent, l.records_received), (10, 4), "{reader}");
            assert_eq!(l.packets_refused[1], 2);
            assert_eq!(l.queue_dropped, 4);
            assert_eq!(l.lag_max_ms, 900);
        }
    }
}
