//! The stats, protocol-neutral: who may read them ([`StatsAccess`], `access.stats`) and the
//! text reports of [`crate::stats::report`] filled in from the tracker's counters and stores
//! ([`Tracker::write_stats`]).
//!
//! Access: the client's address (the TCP peer, or the address a trusted `access.proxy` names)
//! must be in one of the `access.stats` networks; an IPv4-mapped IPv6 address
//! (`::ffff:a.b.c.d`) compares as IPv4. With no `access.stats` line nobody may read them (as
//! opentracker built with `WANT_RESTRICT_STATS`, Debian's build).
//!
//! The HTTP front serves them as `GET /<access.stats_path>?mode=...`, the status page
//! `GET /<access.stats_path>/html` and `GET /metrics` (`front::http::stats`: routing, the mode
//! keywords, status codes, the streamed modes).

use std::net::IpAddr;

use ipnet::IpNet;

use super::Tracker;
use crate::stats::report::{self, Snapshot, TextMode};
use crate::stats::{Stats, html};

/// Who may read the stats, and where (`access.stats`, `access.stats_path`).
#[derive(Clone, Debug)]
pub struct StatsAccess {
    /// The stats path without leading `/` (`access.stats_path`, default `stats`), where the HTTP
    /// front serves them.
    pub path: String,
    /// Networks allowed to read `/stats`, `/stats/html` and `/metrics` (`access.stats`); empty =
    /// nobody.
    pub allowed: Vec<IpNet>,
}

impl Default for StatsAccess {
    /// `access.stats_path`'s and `access.stats`'s defaults, from the config table.
    fn default() -> Self {
        let defaults = crate::config::Config::default();
        StatsAccess {
            path: defaults.stats_path,
            allowed: defaults.stats_allowed,
        }
    }
}

impl StatsAccess {
    /// Whether `ip` may read the stats. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) compare
    /// as IPv4, on either side: a peer seen as `::ffff:10.0.0.1` matches `10.0.0.0/8`, and a
    /// rule written `::ffff:10.0.0.0/104` matches `10.0.0.1`.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.allowed.iter().any(|net| match (net, ip) {
            (IpNet::V6(n), IpAddr::V4(v4))
                if n.prefix_len() >= 96 && n.network().to_ipv4_mapped().is_some() =>
            {
                n.contains(&v4.to_ipv6_mapped())
            }
            _ => net.contains(&ip),
        })
    }
}

impl Tracker {
    /// Appends the text report `text` (one of opentracker's `/stats` modes, or the Prometheus
    /// exposition) to `body`: the counters, the torrents, peers and seeders per family, the
    /// version, `now` as the uptime in seconds and, for Prometheus only, the resident memory.
    pub fn write_stats(&self, text: TextMode, now: u32, body: &mut Vec<u8>) {
        let stats = self.stats_total();
        let snap = self.snapshot(&stats, now, text == TextMode::Prometheus);
        report::write_mode(body, text, &snap);
    }

    /// Appends the head of the status page (`/stats/html`, [`html::write_head`]): every figure
    /// but the top torrents, with the resident memory; `now` is the uptime in seconds.
    pub fn write_status_page_head(&self, now: u32, body: &mut Vec<u8>) {
        let stats = self.stats_total();
        html::write_head(body, &self.snapshot(&stats, now, true));
    }

    /// The counters every report reads: this worker's own with one worker, else the sum over
    /// every worker ([`crate::stats::workers::Board::total`]: this worker's live counters and
    /// the others' as of their last loop turn), with the per-worker figures.
    pub fn stats_total(&self) -> std::borrow::Cow<'_, Stats> {
        match &self.board {
            None => std::borrow::Cow::Borrowed(&self.stats),
            Some((index, board)) => std::borrow::Cow::Owned(board.total(*index, &self.stats)),
        }
    }

    /// The counters and store sizes as a report reads them; `rss`: read the resident memory.
    fn snapshot<'a>(&'a self, stats: &'a Stats, now: u32, rss: bool) -> Snapshot<'a> {
        Snapshot {
            stats,
            version: crate::version::VERSION,
            uptime: now,
            torrents: [self.v4.torrents(), self.v6.torrents()],
            peers: [self.v4.peers(), self.v6.peers()],
            seeders: [self.v4.seeders(), self.v6.seeders()],
            rss_bytes: if rss { report::resident_bytes() } else { None },
            tracker_id: self.sync.as_ref().map(|outbox| outbox.tracker_id()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_by_network_and_mapped_v4() {
        let a = StatsAccess {
            path: "stats".into(),
            allowed: vec!["127.0.0.1/32".parse().unwrap(), "fd00::/8".parse().unwrap()],
        };
        let ok = |s: &str| a.allows(s.parse().unwrap());
        assert!(ok("127.0.0.1"));
        assert!(ok("::ffff:127.0.0.1"));
        assert!(ok("fd12::1"));
        assert!(!ok("127.0.0.2"));
        assert!(!ok("::1"));
        let mapped_rule = StatsAccess {
            path: "stats".into(),
            allowed: vec!["::ffff:10.0.0.0/104".parse().unwrap()],
        };
        assert!(mapped_rule.allows("10.1.2.3".parse().unwrap()));
        assert!(!mapped_rule.allows("11.1.2.3".parse().unwrap()));
        let all_v6 = StatsAccess {
            path: "stats".into(),
            allowed: vec!["::/0".parse().unwrap()],
        };
        assert!(all_v6.allows("2001:db8::1".parse().unwrap()));
        assert!(!all_v6.allows("127.0.0.1".parse().unwrap()));
        assert!(!StatsAccess::default().allows("127.0.0.1".parse().unwrap()));
    }
}
