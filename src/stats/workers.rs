//! Counters of several workers (`tracker.workers`): each worker counts in its own [`Stats`]
//! (plain integers, no atomics on the hot path) and publishes a copy on a [`Board`] at the end
//! of each loop turn; `/stats` and `/metrics` read the sum ([`Board::total`]) with a per-worker
//! breakdown ([`WorkerCounts`]). A worker's figures are at most one of its loop turns old.

use std::sync::Mutex;

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
}

impl WorkerCounts {
    fn of(s: &Stats) -> Self {
        WorkerCounts {
            requests: s.request_totals().iter().sum(),
            loop_iterations: s.loop_iterations,
            longest_stall_us: s.longest_stall_us,
        }
    }
}

/// One published [`Stats`] per worker (index = worker number), each behind its own lock: the
/// owner writes its slot once per loop turn, readers (a `/stats` request on any worker) copy
/// the slots. Uncontended but for those reads.
#[derive(Debug)]
pub struct Board {
    slots: Box<[Mutex<Stats>]>,
}

impl Board {
    /// A board of `workers` empty slots.
    pub fn new(workers: usize) -> Self {
        Board {
            slots: (0..workers.max(1))
                .map(|_| Mutex::new(Stats::default()))
                .collect(),
        }
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.slots.len()
    }

    /// Publishes worker `index`'s counters (a copy that reuses the slot's allocations); an
    /// index out of range is ignored.
    pub fn publish(&self, index: usize, stats: &Stats) {
        if let Some(slot) = self.slots.get(index) {
            slot.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone_from(stats);
        }
    }

    /// The sum of every worker's counters, with `own` (the live counters of worker `index`,
    /// fresher than its slot) in place of slot `index`; [`Stats::workers`] lists each worker.
    pub fn total(&self, index: usize, own: &Stats) -> Stats {
        let mut total = own.clone();
        let mut per = vec![WorkerCounts::default(); self.slots.len()];
        if let Some(p) = per.get_mut(index) {
            *p = WorkerCounts::of(own);
        }
        for (i, slot) in self.slots.iter().enumerate() {
            if i == index {
                continue;
            }
            let s = slot
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            per[i] = WorkerCounts::of(&s);
            total.add(&s);
        }
        total.workers = per;
        total
    }
}

fn add_requests(a: &mut [RequestCounts; 2], b: &[RequestCounts; 2]) {
    for (x, y) in a.iter_mut().zip(b) {
        x.announce += y.announce;
        x.scrape += y.scrape;
        x.connect += y.connect;
        x.failed += y.failed;
    }
}

impl Stats {
    /// Adds another worker's counters to these: counters and gauges are summed, the longest
    /// stall is the larger one, the request history is summed sample by sample (newest with
    /// newest). Live sync and TLS counters are worker 0's alone (the other workers run
    /// neither) and are left as they are. Every field is named here, so a new counter cannot
    /// be forgotten: the destructuring stops the build.
    pub fn add(&mut self, other: &Stats) {
        let Stats {
            http,
            udp,
            tcp_accepted,
            tcp_refused_over_limit,
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
            livesync: _,
            tls: _,
            history,
            workers: _,
        } = other;
        add_requests(&mut self.http, http);
        add_requests(&mut self.udp, udp);
        self.tcp_accepted += tcp_accepted;
        self.tcp_refused_over_limit += tcp_refused_over_limit;
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
        self.http_connections += http_connections;
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
        let t = board.total(0, &own);
        assert_eq!(t.udp[Family::V4 as usize].announce, 7);
        assert_eq!(t.http[Family::V6 as usize].scrape, 4);
        assert_eq!(t.http_status_count(404), 2);
        assert_eq!(t.http_status_count(413), 1);
        assert_eq!(t.completed, 1);
        assert_eq!(t.longest_stall_us, 70);
        assert_eq!(t.loop_iterations, 9);
        let requests: Vec<u64> = t.workers.iter().map(|w| w.requests).collect();
        assert_eq!(requests, [4, 5, 2]);
    }
}
