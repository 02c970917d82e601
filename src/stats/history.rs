//! The recent past of the request counters: a small ring of samples, one every
//! [`SAMPLE_SECONDS`], for the rates over the last minutes that the status page
//! (`/stats/html`) draws. The counters themselves only grow; a rate needs two readings.
//!
//! The loop calls [`super::Stats::sample`] about once a second; a sample is taken when
//! [`SAMPLE_SECONDS`] have passed since the last one (counted from the tracker's start), so a
//! loop that was busy for longer just makes one longer sample ([`Sample::seconds`]). The ring
//! holds [`SAMPLES`] samples (10 minutes), 40 bytes each, allocated on the first sample.

use std::collections::VecDeque;

/// Seconds between two samples.
pub const SAMPLE_SECONDS: u32 = 10;

/// Samples kept: 60 x 10 s, the last 10 minutes.
pub const SAMPLES: usize = 60;

/// The series of a sample, in the order of [`Sample::requests`]: HTTP over IPv4 and IPv6, UDP
/// over IPv4 and IPv6.
pub const SERIES: [&str; 4] = ["HTTP IPv4", "HTTP IPv6", "UDP IPv4", "UDP IPv6"];

/// The requests of one interval.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    /// End of the interval, in seconds since the tracker started.
    pub end: u32,
    /// Length of the interval in seconds (at least 1; [`SAMPLE_SECONDS`] unless the loop was
    /// late).
    pub seconds: u32,
    /// Requests in the interval (announces, scrapes, connects, failed), per [`SERIES`].
    pub requests: [u64; 4],
}

impl Sample {
    /// Requests per second of series `index` of [`SERIES`] (0 for an index out of range).
    pub fn rate(&self, index: usize) -> f64 {
        let n = self.requests.get(index).copied().unwrap_or(0);
        n as f64 / f64::from(self.seconds.max(1))
    }

    /// Requests per second over HTTP (both families).
    pub fn http_rate(&self) -> f64 {
        self.rate(0) + self.rate(1)
    }

    /// Requests per second over UDP (both families).
    pub fn udp_rate(&self) -> f64 {
        self.rate(2) + self.rate(3)
    }
}

/// The ring of the last [`SAMPLES`] samples, oldest first.
#[derive(Clone, Debug, Default)]
pub struct History {
    ring: VecDeque<Sample>,
    last_end: u32,
    last_totals: [u64; 4],
}

impl History {
    /// Takes a sample if [`SAMPLE_SECONDS`] have passed since the last one (or since the
    /// start): the growth of `totals` (the counters' values now, per [`SERIES`]) since then.
    /// Returns whether a sample was taken. A total smaller than before (never, for counters
    /// that only grow) counts as 0.
    pub fn record(&mut self, now: u32, totals: [u64; 4]) -> bool {
        if now < self.last_end.saturating_add(SAMPLE_SECONDS) {
            return false;
        }
        let mut requests = [0; 4];
        for (i, r) in requests.iter_mut().enumerate() {
            *r = totals[i].saturating_sub(self.last_totals[i]);
        }
        if self.ring.len() == SAMPLES {
            self.ring.pop_front();
        }
        self.ring.push_back(Sample {
            end: now,
            seconds: (now - self.last_end).max(1),
            requests,
        });
        self.last_end = now;
        self.last_totals = totals;
        true
    }

    /// Adds `other`'s samples to these, newest with newest: the workers of `tracker.workers`
    /// sample on the same [`SAMPLE_SECONDS`] boundaries of one start (give or take a busy loop
    /// turn). Samples only one side has are left as they are.
    pub fn add(&mut self, other: &History) {
        for (mine, theirs) in self.ring.iter_mut().rev().zip(other.ring.iter().rev()) {
            for (a, b) in mine.requests.iter_mut().zip(theirs.requests) {
                *a += b;
            }
        }
    }

    /// The samples, oldest first (at most [`SAMPLES`]).
    pub fn samples(&self) -> impl ExactSizeIterator<Item = &Sample> + DoubleEndedIterator {
        self.ring.iter()
    }

    /// The newest sample, if one was taken.
    pub fn latest(&self) -> Option<&Sample> {
        self.ring.back()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_every_ten_seconds_and_keeps_the_last_sixty() {
        let mut h = History::default();
        assert!(h.latest().is_none());
        assert!(!h.record(0, [0; 4]));
        assert!(!h.record(9, [5, 0, 0, 0]));
        assert!(h.record(10, [20, 1, 30, 0]));
        let s = *h.latest().unwrap();
        assert_eq!(
            s,
            Sample {
                end: 10,
                seconds: 10,
                requests: [20, 1, 30, 0]
            }
        );
        assert_eq!((s.http_rate(), s.udp_rate(), s.rate(9)), (2.1, 3.0, 0.0));
        // A late loop makes one longer sample.
        assert!(h.record(35, [70, 1, 30, 0]));
        let s = *h.latest().unwrap();
        assert_eq!((s.seconds, s.requests[0], s.http_rate()), (25, 50, 2.0));
        for i in 0..100u32 {
            h.record(40 + i * 10, [100 + u64::from(i); 4]);
        }
        assert_eq!(h.samples().len(), SAMPLES);
        let ends: Vec<u32> = h.samples().map(|s| s.end).collect();
        assert_eq!(ends.first(), Some(&(40 + 40 * 10)));
        assert_eq!(ends.last(), Some(&(40 + 99 * 10)));
        assert!(ends.windows(2).all(|w| w[1] == w[0] + 10));
        // Counters that went back (never happens) count as nothing.
        assert!(h.record(5000, [0; 4]));
        assert_eq!(h.latest().unwrap().requests, [0; 4]);
    }
}
