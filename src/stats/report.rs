//! The `/stats` text modes (opentracker's formats, `ot_stats.c`) and the Prometheus text
//! exposition format (`/metrics`, `/stats?mode=prometheus`), rendered from a [`Snapshot`].
//!
//! Pure: a snapshot of plain numbers goes in, bytes come out. The walks over every torrent
//! (`top10`, `statedump`, `tpbs`) are not here but in `front::http::walk`, which the loop runs
//! in slices.
//!
//! Counts over both families: a torrent known in the IPv4 and in the IPv6 store counts once in
//! each (`torrents` is the sum of the two stores' counts; the exact union would need a walk).

use std::fmt::Write as _;

use super::Stats;

mod prometheus;
pub use prometheus::write_prometheus;

/// Everything the text modes and the metrics show, read at request time.
#[derive(Clone, Copy, Debug)]
pub struct Snapshot<'a> {
    /// The loop's counters.
    pub stats: &'a Stats,
    /// `opentracker-rs X.Y.Z`.
    pub version: &'a str,
    /// Seconds since the tracker started.
    pub uptime: u32,
    /// Torrents per store, indexed by [`Family`](crate::types::Family) as usize.
    pub torrents: [u64; 2],
    /// Peers (seeders and leechers) per store.
    pub peers: [u64; 2],
    /// Seeders per store.
    pub seeders: [u64; 2],
    /// Resident set size of the process in bytes ([`resident_bytes`]), if known.
    pub rss_bytes: Option<u64>,
    /// This process's live sync tracker_id (4 opaque bytes, written as 8 hex digits) when live
    /// sync is on.
    pub tracker_id: Option<[u8; 4]>,
}

impl Snapshot<'_> {
    fn torrents(&self) -> u64 {
        self.torrents[0] + self.torrents[1]
    }
    fn peers(&self) -> u64 {
        self.peers[0] + self.peers[1]
    }
    fn seeders(&self) -> u64 {
        self.seeders[0] + self.seeders[1]
    }
    /// HTTP announces, scrapes over both families.
    fn http(&self) -> (u64, u64) {
        let h = &self.stats.http;
        (h[0].announce + h[1].announce, h[0].scrape + h[1].scrape)
    }
    /// UDP connects, announces, scrapes over both families.
    fn udp(&self) -> (u64, u64, u64) {
        let u = &self.stats.udp;
        (
            u[0].connect + u[1].connect,
            u[0].announce + u[1].announce,
            u[0].scrape + u[1].scrape,
        )
    }
    /// Every UDP datagram received: served, refused, or dropped by `udp.rate_limit`.
    fn udp_packets(&self) -> u64 {
        let (c, a, s) = self.udp();
        let i = &self.stats.udp_invalid;
        c + a
            + s
            + i.malformed_header
            + i.bad_magic
            + i.unknown_action
            + i.bad_connection_id
            + i.malformed_request
            + self.stats.quota.udp_rate_limited
    }
}

/// The simple `/stats` modes (`?mode=`), each a few lines of text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextMode {
    /// `peer` (the default): peers, seeders, torrents.
    Peer,
    /// `torr`: torrents.
    Torr,
    /// `conn`: TCP connections + UDP datagrams, and successful announces + connects.
    Conn,
    /// `tcp4`: TCP connections and HTTP announces (both families, despite the name).
    Tcp4,
    /// `udp4`: UDP datagrams and announces + connects (both families).
    Udp4,
    /// `scrp`: HTTP and UDP scrapes.
    Scrp,
    /// `completed`: completed events.
    Completed,
    /// `syncs`: live sync records received and sent.
    Syncs,
    /// `herr`: HTTP responses by status code.
    Herr,
    /// `everything`: XML in opentracker's shape.
    Everything,
    /// `version`: the version line.
    Version,
    /// `prometheus` (and `GET /metrics`): Prometheus text format 0.0.4.
    Prometheus,
}

impl TextMode {
    /// The mode for a `mode=` value (exact, case-sensitive, as opentracker), if it is a text
    /// mode.
    pub fn parse(mode: &[u8]) -> Option<TextMode> {
        Some(match mode {
            b"peer" => TextMode::Peer,
            b"torr" => TextMode::Torr,
            b"conn" => TextMode::Conn,
            b"tcp4" => TextMode::Tcp4,
            b"udp4" => TextMode::Udp4,
            b"scrp" => TextMode::Scrp,
            b"completed" => TextMode::Completed,
            b"syncs" => TextMode::Syncs,
            b"herr" => TextMode::Herr,
            b"everything" => TextMode::Everything,
            b"version" => TextMode::Version,
            b"prometheus" => TextMode::Prometheus,
            _ => return None,
        })
    }

    /// The `Content-Type` of the mode's response.
    pub fn content_type(self) -> &'static str {
        match self {
            TextMode::Everything => "text/xml",
            TextMode::Prometheus => PROMETHEUS_CONTENT_TYPE,
            _ => "text/plain",
        }
    }
}

/// `Content-Type` of the Prometheus text exposition format.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The status codes `herr`, `everything` and the metrics always list (others appear once
/// counted), with `herr`'s four-letter tags.
pub const HTTP_CODES: [(u16, &str); 9] = [
    (302, "RED"),
    (400, "BAD"),
    (403, "IP "),
    (404, "INV"),
    (405, "MTH"),
    (413, "BIG"),
    (429, "LIM"),
    (500, "SRV"),
    (503, "BSY"),
];

/// Appends the body of `mode` to `out`.
///
/// Formats (lines separated by `\n`; the MRTG-style modes have four lines: two values, the
/// uptime, a title, as opentracker, without a final newline):
/// - `peer`: `<peers>\n<seeders>\nopentracker serving <torrents> torrents\nopentracker`
/// - `torr`: `<torrents>\n0\nopentracker serving <torrents> torrents\nopentracker`
/// - `conn`: `<tcp accepts + udp datagrams>\n<announces + udp connects>\n<s> seconds (<h>
///   hours)\nopentracker connections, <x> conns/s :: <y> success/s.`
/// - `tcp4`, `udp4`, `scrp`, `completed`: the same shape with their counters.
/// - `syncs`: `<live sync records received>\n<records sent>\n<uptime>\nopentracker livesync,
///   <n> records/s received.` (opentracker prints the records received and a 0).
/// - `herr`: one line per status code, `<code> <tag> <count>\n` (302 RED, 400 BAD, 403 IP,
///   404 INV, 405 MTH, 413 BIG, 429 LIM, 500 SRV, 503 BSY), each the real count of responses
///   with that status (opentracker prints the wrong slots for three of them).
/// - `everything`: XML (see [`write_everything`]); `version`: `opentracker-rs X.Y.Z\n`;
///   `prometheus`: see [`write_prometheus`].
pub fn write_mode(out: &mut Vec<u8>, mode: TextMode, snap: &Snapshot<'_>) {
    let mut s = String::new();
    let up = u64::from(snap.uptime.max(1));
    let uptime = format!("{} seconds ({} hours)", snap.uptime, snap.uptime / 3600);
    let st = snap.stats;
    let (http_announce, http_scrape) = snap.http();
    let (udp_connect, udp_announce, udp_scrape) = snap.udp();
    // `write!` to a String cannot fail.
    let _ = match mode {
        TextMode::Peer => write!(
            s,
            "{}\n{}\nopentracker serving {} torrents\nopentracker",
            snap.peers(),
            snap.seeders(),
            snap.torrents()
        ),
        TextMode::Torr => write!(
            s,
            "{}\n0\nopentracker serving {} torrents\nopentracker",
            snap.torrents(),
            snap.torrents()
        ),
        TextMode::Conn => {
            let a = st.tcp_accepted + snap.udp_packets();
            let b = http_announce + udp_announce + udp_connect;
            write!(
                s,
                "{a}\n{b}\n{uptime}\nopentracker connections, {} conns/s :: {} success/s.",
                a / up,
                b / up
            )
        }
        TextMode::Tcp4 => {
            let (a, b) = (st.tcp_accepted, http_announce);
            write!(
                s,
                "{a}\n{b}\n{uptime}\nopentracker tcp4 stats, {} conns/s :: {} success/s.",
                a / up,
                b / up
            )
        }
        TextMode::Udp4 => {
            let (a, b) = (snap.udp_packets(), udp_announce + udp_connect);
            write!(
                s,
                "{a}\n{b}\n{uptime}\nopentracker udp4 stats, {} conns/s :: {} success/s.",
                a / up,
                b / up
            )
        }
        TextMode::Scrp => write!(
            s,
            "{http_scrape}\n{udp_scrape}\n{uptime}\nopentracker scrape stats, {} scrape/s (tcp and udp)",
            (http_scrape + udp_scrape) / up
        ),
        TextMode::Completed => write!(
            s,
            "{}\n0\n{uptime}\nopentracker, {} completed/h.",
            st.completed,
            st.completed * 3600 / up
        ),
        TextMode::Syncs => {
            let l = &st.livesync;
            write!(
                s,
                "{}\n{}\n{uptime}\nopentracker livesync, {} records/s received.",
                l.records_received,
                l.records_sent,
                l.records_received / up
            )
        }
        TextMode::Herr => {
            for (code, tag, n) in http_codes(st) {
                let _ = writeln!(s, "{code} {tag} {n}");
            }
            Ok(())
        }
        TextMode::Version => writeln!(s, "{}", snap.version),
        TextMode::Everything => {
            write_everything(&mut s, snap);
            Ok(())
        }
        TextMode::Prometheus => {
            write_prometheus(&mut s, snap);
            Ok(())
        }
    };
    out.extend_from_slice(s.as_bytes());
}

/// `(code, herr tag, count)` for the codes of [`HTTP_CODES`], then any other counted code
/// (tag `---`), in code order.
fn http_codes(st: &Stats) -> Vec<(u16, &'static str, u64)> {
    let mut v: Vec<(u16, &'static str, u64)> = HTTP_CODES
        .iter()
        .map(|&(code, tag)| (code, tag, st.http_status_count(code)))
        .collect();
    for &(code, n) in &st.http_status_errors {
        if !HTTP_CODES.iter().any(|&(c, _)| c == code) {
            v.push((code, "---", n));
        }
    }
    v.sort_by_key(|e| e.0);
    v
}

/// `mode=everything`: opentracker's XML shape (`<stats>` with `version`, `uptime`,
/// `torrents/count_mutex` and `count_iterator` (both the store count), `peers/count`,
/// `seeds/count`, `completed/count`, `connections/tcp/{accept,announce,scrape}`,
/// `connections/udp/{overall,connect,announce,scrape,missmatch}`, `connections/livesync/count`
/// (records received), `debug/http_error/count code="..."`), with `tracker_id` (8 hex digits)
/// when live sync is on, without what we do not have (renew histogram, mutex stalls) and with
/// the loop's own figures under `debug/loop`, the connection cap under
/// `debug/http_connections` (`max` in effect, `max_lowered_by` the open-files limit, and
/// `refused_no_fd` newcomers closed for want of a descriptor), and the full scrapes' under
/// `debug/fullscrape` (`started`, `snapshots` built, `shared`, `refused_busy`).
pub fn write_everything(s: &mut String, snap: &Snapshot<'_>) {
    let st = snap.stats;
    let (http_announce, http_scrape) = snap.http();
    let (udp_connect, udp_announce, udp_scrape) = snap.udp();
    let tracker_id = snap.tracker_id.map_or(String::new(), |id| {
        format!("\n  <tracker_id>{}</tracker_id>", hex4(id))
    });
    let _ = write!(
        s,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<stats>{tracker_id}\n  <version>{}</version>\n  \
         <uptime>{}</uptime>\n  <torrents>\n    <count_mutex>{t}</count_mutex>\n    \
         <count_iterator>{t}</count_iterator>\n  </torrents>\n  <peers>\n    <count>{}</count>\n  \
         </peers>\n  <seeds>\n    <count>{}</count>\n  </seeds>\n  <completed>\n    \
         <count>{}</count>\n  </completed>\n  <connections>\n    <tcp>\n      \
         <accept>{}</accept>\n      <announce>{}</announce>\n      <scrape>{}</scrape>\n    \
         </tcp>\n    <udp>\n      <overall>{}</overall>\n      <connect>{}</connect>\n      \
         <announce>{}</announce>\n      <scrape>{}</scrape>\n      <missmatch>{}</missmatch>\n    \
         </udp>\n    <livesync>\n      <count>{}</count>\n    </livesync>\n  </connections>\n  <debug>\n    <http_error>\n",
        snap.version,
        snap.uptime,
        snap.peers(),
        snap.seeders(),
        st.completed,
        st.tcp_accepted,
        http_announce,
        http_scrape,
        snap.udp_packets(),
        udp_connect,
        udp_announce,
        udp_scrape,
        st.udp_invalid.bad_connection_id,
        st.livesync.records_received,
        t = snap.torrents(),
    );
    for (code, _, n) in http_codes(st) {
        let reason = status_reason(code);
        let _ = writeln!(s, "      <count code=\"{code} {reason}\">{n}</count>");
    }
    let _ = write!(
        s,
        "    </http_error>\n    <loop>\n      <iterations>{}</iterations>\n      \
         <longest_stall_us>{}</longest_stall_us>\n    </loop>\n    <http_connections>\n      \
         <max>{}</max>\n      <max_lowered_by>{}</max_lowered_by>\n      \
         <refused_no_fd>{}</refused_no_fd>\n    </http_connections>\n    <fullscrape>\n      \
         <started>{}</started>\n      <snapshots>{}</snapshots>\n      <shared>{}</shared>\n      \
         <refused_busy>{}</refused_busy>\n    </fullscrape>\n  </debug>\n</stats>\n",
        st.loop_iterations,
        st.longest_stall_us,
        st.http_max_connections,
        st.http_max_connections_lowered_by,
        st.tcp_refused_no_fd,
        st.fullscrapes,
        st.fullscrape_snapshots,
        st.fullscrape_shared,
        st.fullscrape_refused_busy
    );
}

/// Four bytes as 8 lowercase hex digits.
fn hex4(id: [u8; 4]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

fn status_reason(code: u16) -> &'static str {
    match code {
        302 => "Found",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Other",
    }
}

/// The process's resident set size in bytes: the second field of `/proc/self/statm` (pages)
/// times the page size. `None` where `/proc` is not available or unreadable. One small file
/// read: for the stats request, not the hot path.
pub fn resident_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = text.split_ascii_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions; it returns -1 on error.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let page = u64::try_from(page).ok().filter(|&p| p > 0)?;
    pages.checked_mul(page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::RequestCounts;

    fn stats() -> Stats {
        let mut st = Stats {
            tcp_accepted: 10,
            completed: 4,
            ..Stats::default()
        };
        st.http[0] = RequestCounts {
            announce: 5,
            scrape: 2,
            connect: 0,
            failed: 1,
        };
        st.http[1].announce = 1;
        st.udp[0] = RequestCounts {
            announce: 7,
            scrape: 3,
            connect: 6,
            failed: 2,
        };
        st.udp_invalid.bad_connection_id = 2;
        st.http_status(404);
        st.http_status(404);
        st.http_status(429);
        st.http_status(418);
        st
    }

    fn render(mode: TextMode, st: &Stats) -> String {
        let snap = Snapshot {
            stats: st,
            version: "opentracker-rs 9.9.9",
            uptime: 7200,
            torrents: [3, 1],
            peers: [8, 2],
            seeders: [5, 0],
            rss_bytes: Some(4096),
            tracker_id: None,
        };
        let mut out = Vec::new();
        write_mode(&mut out, mode, &snap);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn mrtg_modes() {
        let st = stats();
        assert_eq!(
            render(TextMode::Peer, &st),
            "10\n5\nopentracker serving 4 torrents\nopentracker"
        );
        assert_eq!(
            render(TextMode::Torr, &st),
            "4\n0\nopentracker serving 4 torrents\nopentracker"
        );
        // udp datagrams: 6 + 7 + 3 + 2 invalid = 18; tcp 10.
        assert_eq!(
            render(TextMode::Conn, &st),
            "28\n19\n7200 seconds (2 hours)\nopentracker connections, 0 conns/s :: 0 success/s."
        );
        assert_eq!(
            render(TextMode::Tcp4, &st),
            "10\n6\n7200 seconds (2 hours)\nopentracker tcp4 stats, 0 conns/s :: 0 success/s."
        );
        assert_eq!(
            render(TextMode::Udp4, &st),
            "18\n13\n7200 seconds (2 hours)\nopentracker udp4 stats, 0 conns/s :: 0 success/s."
        );
        assert_eq!(
            render(TextMode::Scrp, &st),
            "2\n3\n7200 seconds (2 hours)\nopentracker scrape stats, 0 scrape/s (tcp and udp)"
        );
        assert_eq!(
            render(TextMode::Completed, &st),
            "4\n0\n7200 seconds (2 hours)\nopentracker, 2 completed/h."
        );
        assert_eq!(render(TextMode::Version, &st), "opentracker-rs 9.9.9\n");
    }

    #[test]
    fn herr_counts_by_real_code() {
        assert_eq!(
            render(TextMode::Herr, &stats()),
            "302 RED 0\n400 BAD 0\n403 IP  0\n404 INV 2\n405 MTH 0\n413 BIG 0\n418 --- 1\n\
             429 LIM 1\n500 SRV 0\n503 BSY 0\n"
        );
    }

    #[test]
    fn everything_is_xml_with_our_counters() {
        let x = render(TextMode::Everything, &stats());
        assert!(x.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<stats>\n"));
        for part in [
            "<count_mutex>4</count_mutex>",
            "<peers>\n    <count>10</count>",
            "<seeds>\n    <count>5</count>",
            "<tcp>\n      <accept>10</accept>\n      <announce>6</announce>\n      <scrape>2</scrape>",
            "<overall>18</overall>",
            "<missmatch>2</missmatch>",
            "<count code=\"404 Not Found\">2</count>",
            "<count code=\"429 Too Many Requests\">1</count>",
        ] {
            assert!(x.contains(part), "{part} in {x}");
        }
        assert!(x.ends_with("</debug>\n</stats>\n"));
    }

    #[test]
    fn prometheus_families_are_declared_once() {
        let p = render(TextMode::Prometheus, &stats());
        let mut declared = Vec::new();
        for line in p.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap();
                assert!(!declared.contains(&name.to_owned()), "{name} twice");
                declared.push(name.to_owned());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert!(
                    declared.iter().any(|d| d == name),
                    "{name} sampled before its TYPE"
                );
            }
        }
        for line in [
            "opentracker_info{version=\"9.9.9\"} 1",
            "opentracker_requests_total{protocol=\"udp\",family=\"ipv4\",kind=\"connect\"} 6",
            "opentracker_requests_total{protocol=\"http\",family=\"ipv6\",kind=\"announce\"} 1",
            "opentracker_http_responses_total{code=\"404\"} 2",
            "opentracker_udp_invalid_total{reason=\"bad_connection_id\"} 2",
            "opentracker_leechers{family=\"ipv4\"} 3",
            "process_resident_memory_bytes 4096",
        ] {
            assert!(p.lines().any(|l| l == line), "{line} in\n{p}");
        }
    }

    #[test]
    fn resident_bytes_reads_proc() {
        let rss = resident_bytes().expect("/proc/self/statm");
        assert!(rss > 100_000, "{rss}");
    }
}
