//! A one-line dump of every counter, logged when the loop stops (`counters: ...`), so tests and
//! operators can check what the tracker did without a stats endpoint.

use std::fmt::Write as _;

use super::Stats;
use crate::types::Family;

impl Stats {
    /// Every counter as space-separated `name=value` pairs, names stable (tests parse them):
    /// `http.ipv4.announce`, `http.ipv4.scrape`, `http.ipv4.failed`, the same for `ipv6` and for
    /// `udp.*` (plus `udp.*.connect`), `http.status.CODE` for each non-200 status sent,
    /// `tcp.accepted`, `tcp.refused_over_limit`, `tcp.refused_no_fd`, `http.max_connections`,
    /// `http.max_connections_lowered_by`, `tcp.closed.{by_client,after_response,
    /// idle_timeout,header_timeout,slow_reader,at_exit}`, `udp.invalid.{malformed_header,
    /// bad_magic,unknown_action,bad_connection_id,malformed_request}`, `udp.send_dropped`,
    /// `refused.torrent_limit`, `refused.peer_limit`, `refused.not_authorized`,
    /// `fullscrape.{started,snapshots,shared,refused_busy}`, `completed`, `bytes_in`, `bytes_out`, `loop.longest_stall_us` (the longest busy stretch of
    /// one loop turn, microseconds; the largest of the workers').
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let mut put = |name: &str, v: u64| {
            if !out.is_empty() {
                out.push(' ');
            }
            // Writing to a String cannot fail.
            let _ = write!(out, "{name}={v}");
        };
        for (proto, counts) in [("http", &self.http), ("udp", &self.udp)] {
            for family in [Family::V4, Family::V6] {
                let c = &counts[family as usize];
                let l = family.label();
                put(&format!("{proto}.{l}.announce"), c.announce);
                put(&format!("{proto}.{l}.scrape"), c.scrape);
                put(&format!("{proto}.{l}.failed"), c.failed);
                if proto == "udp" {
                    put(&format!("{proto}.{l}.connect"), c.connect);
                }
            }
        }
        let mut statuses = self.http_status_errors.clone();
        statuses.sort_unstable();
        for (code, n) in statuses {
            put(&format!("http.status.{code}"), n);
        }
        put("tcp.accepted", self.tcp_accepted);
        put("tcp.refused_over_limit", self.tcp_refused_over_limit);
        put("tcp.refused_no_fd", self.tcp_refused_no_fd);
        put("http.max_connections", self.http_max_connections);
        put(
            "http.max_connections_lowered_by",
            self.http_max_connections_lowered_by,
        );
        let c = &self.tcp_closed;
        put("tcp.closed.by_client", c.by_client);
        put("tcp.closed.after_response", c.after_response);
        put("tcp.closed.idle_timeout", c.idle_timeout);
        put("tcp.closed.header_timeout", c.header_timeout);
        put("tcp.closed.slow_reader", c.slow_reader);
        put("tcp.closed.at_exit", c.at_exit);
        let u = &self.udp_invalid;
        put("udp.invalid.malformed_header", u.malformed_header);
        put("udp.invalid.bad_magic", u.bad_magic);
        put("udp.invalid.unknown_action", u.unknown_action);
        put("udp.invalid.bad_connection_id", u.bad_connection_id);
        put("udp.invalid.malformed_request", u.malformed_request);
        put("udp.rate_limited", self.quota.udp_rate_limited);
        put("udp.send_dropped", self.udp_send_dropped);
        put("refused.torrent_limit", self.refused_torrent_limit);
        put("refused.peer_limit", self.refused_peer_limit);
        put(
            "refused.new_torrents_per_net",
            self.quota.new_torrents_per_net,
        );
        put("refused.peers_per_source", self.quota.peers_per_source);
        let a = &self.auth_refused;
        put("refused.missing_key", a.missing_key);
        put("refused.unknown_key", a.unknown_key);
        put("refused.expired_key", a.expired_key);
        put("refused.not_authorized", a.not_authorized);
        put("fullscrape.started", self.fullscrapes);
        put("fullscrape.snapshots", self.fullscrape_snapshots);
        put("fullscrape.shared", self.fullscrape_shared);
        put("fullscrape.refused_busy", self.fullscrape_refused_busy);
        put("completed", self.completed);
        put("bytes_in", self.bytes_in);
        put("bytes_out", self.bytes_out);
        put("loop.longest_stall_us", self.longest_stall_us);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use crate::types::Family;

    #[test]
    fn summary_names_and_values() {
        let mut s = Stats::default();
        s.http[Family::V4 as usize].announce = 3;
        s.udp[Family::V6 as usize].connect = 2;
        s.http_status(404);
        s.http_status(400);
        s.http_status(404);
        s.tcp_closed.header_timeout = 5;
        let text = s.summary();
        for want in [
            "http.ipv4.announce=3 ",
            "udp.ipv6.connect=2 ",
            "http.status.400=1 http.status.404=2 tcp.accepted=0 ",
            "tcp.closed.header_timeout=5 ",
            "refused.torrent_limit=0 ",
        ] {
            assert!(text.contains(want), "{want} in {text}");
        }
        assert!(text.starts_with("http.ipv4.announce=3 http.ipv4.scrape=0"));
        assert!(!text.contains("http.ipv4.connect"));
    }
}
