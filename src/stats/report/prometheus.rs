//! The Prometheus text exposition of the counters (`/metrics`, `/stats?mode=prometheus`).

use std::fmt::Write as _;

use super::{Snapshot, http_codes};
use crate::stats::workers::WorkerCounts;
use crate::stats::{LIVESYNC_PACKET_REFUSALS, LIVESYNC_RECORD_REFUSALS};
use crate::types::Family;

/// A per-worker `/metrics` family: its name, its help text and the figure it shows.
type PerWorker = (&'static str, &'static str, fn(&WorkerCounts) -> u64);

/// One metric family: `# HELP` and `# TYPE` once, then its samples.
fn family(s: &mut String, name: &str, kind: &str, help: &str) {
    let _ = write!(s, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
}

/// Prometheus text exposition format 0.0.4 (one `# HELP` and `# TYPE` per family, label
/// values are fixed identifiers, so no escaping is needed). Metrics (counters end in
/// `_total`):
///
/// | metric | labels | meaning |
/// |---|---|---|
/// | `opentracker_info` | `version` | always 1 |
/// | `opentracker_uptime_seconds` | | seconds since start |
/// | `opentracker_requests_total` | `protocol` (http, udp), `family` (ipv4, ipv6), `kind` (announce, scrape, connect; connect is UDP only) | requests answered |
/// | `opentracker_requests_failed_total` | `protocol`, `family` | answered with a `failure reason` / BEP 15 error |
/// | `opentracker_full_scrapes_total` | `encoding` (identity, gzip) | full scrapes started |
/// | `opentracker_http_responses_total` | `code` | HTTP responses with a status other than 200 |
/// | `opentracker_udp_invalid_total` | `reason` (malformed_header, bad_magic, unknown_action, bad_connection_id, malformed_request) | UDP datagrams not served |
/// | `opentracker_refused_total` | `reason` (not_authorized, missing_key, unknown_key, expired_key, torrent_limit, peer_limit) | announces refused by the access list or `tracker.mode`, or by the capacity limits |
/// | `opentracker_udp_send_dropped_total` | | UDP replies the kernel refused |
/// | `opentracker_tcp_accepted_total`, `opentracker_tcp_refused_total` | | TCP connections accepted; closed at once over `http.max_connections` |
/// | `opentracker_tcp_refused_no_fd_total` | | TCP connections accepted and closed at once for want of a file descriptor (EMFILE, ENFILE) |
/// | `opentracker_http_connections` | | HTTP connections open |
/// | `opentracker_http_max_connections`, `opentracker_http_max_connections_lowered` | | `http.max_connections` in effect; by how much the open-files limit lowered it at start |
/// | `opentracker_http_streams` | | streamed responses (full scrapes, stats walks) in progress |
/// | `opentracker_full_scrape_snapshots_total`, `opentracker_full_scrapes_shared_total` | | full-scrape snapshots built; full scrapes served from one another request started |
/// | `opentracker_full_scrapes_refused_total` | | full scrapes refused (503) over `http.fullscrape_max_streams` |
/// | `opentracker_full_scrape_snapshot_bytes` | | bytes held by full-scrape snapshots |
/// | `opentracker_torrents`, `opentracker_seeders`, `opentracker_leechers` | `family` | store contents |
/// | `opentracker_completed_total` | | downloads counted (`completed`, or a stored leecher's first `left=0`) |
/// | `opentracker_bytes_total` | `direction` (in, out) | bytes read and written, HTTP and UDP |
/// | `opentracker_loop_iterations_total` | | event loop iterations |
/// | `opentracker_worker_requests_total`, `opentracker_worker_loop_iterations_total`, `opentracker_worker_tls_handshakes_total` | `worker` (0, 1, ...) | with `tracker.workers` above 1 only: requests, loop iterations and completed TLS handshakes per worker (the other families are sums over the workers) |
/// | `opentracker_loop_longest_stall_seconds` | | longest busy stretch of one loop iteration |
/// | `opentracker_livesync_packets_total`, `opentracker_livesync_records_total` | `direction` (sent, received) | live sync datagrams sent (per destination) and accepted; records sent and applied |
/// | `opentracker_livesync_packets_refused_total` | `reason` (not_node, own_id, too_short, no_records, unknown_type, unauthenticated, no_secret, bad_mac, partial_record) | live sync datagrams refused |
/// | `opentracker_livesync_records_refused_total` | `reason` (not_authorized, capacity, bad_peer) | records of accepted datagrams not applied |
/// | `opentracker_livesync_send_failed_total`, `opentracker_livesync_queue_dropped_total` | | datagrams the kernel refused; records dropped from a full send queue |
/// | `opentracker_livesync_completed_total` | | downloads learnt from other nodes |
/// | `opentracker_livesync_lag_seconds` | `stat` (last, max) | how long the oldest record of a packet waited in the sender |
/// | `process_resident_memory_bytes` | | RSS (`/proc/self/statm`); absent if unreadable |
pub fn write_prometheus(s: &mut String, snap: &Snapshot<'_>) {
    let st = snap.stats;
    let fams = [Family::V4, Family::V6];
    family(s, "opentracker_info", "gauge", "Version of the tracker.");
    let version = snap
        .version
        .rsplit(' ')
        .next()
        .unwrap_or(snap.version)
        .replace(['"', '\\', '\n'], "");
    let _ = writeln!(s, "opentracker_info{{version=\"{version}\"}} 1");
    family(
        s,
        "opentracker_uptime_seconds",
        "gauge",
        "Seconds since the tracker started.",
    );
    let _ = writeln!(s, "opentracker_uptime_seconds {}", snap.uptime);

    family(
        s,
        "opentracker_requests_total",
        "counter",
        "Requests answered, by protocol, address family and kind.",
    );
    for f in fams {
        let h = &st.http[f as usize];
        let u = &st.udp[f as usize];
        for (proto, kind, n) in [
            ("http", "announce", h.announce),
            ("http", "scrape", h.scrape),
            ("udp", "connect", u.connect),
            ("udp", "announce", u.announce),
            ("udp", "scrape", u.scrape),
        ] {
            let _ = writeln!(
                s,
                "opentracker_requests_total{{protocol=\"{proto}\",family=\"{}\",kind=\"{kind}\"}} {n}",
                f.label()
            );
        }
    }
    family(
        s,
        "opentracker_requests_failed_total",
        "counter",
        "Requests answered with a failure reason (HTTP) or an error packet (UDP).",
    );
    for f in fams {
        for (proto, n) in [
            ("http", st.http[f as usize].failed),
            ("udp", st.udp[f as usize].failed),
        ] {
            let _ = writeln!(
                s,
                "opentracker_requests_failed_total{{protocol=\"{proto}\",family=\"{}\"}} {n}",
                f.label()
            );
        }
    }
    family(
        s,
        "opentracker_full_scrapes_total",
        "counter",
        "Full scrapes started, by content encoding.",
    );
    let _ = writeln!(
        s,
        "opentracker_full_scrapes_total{{encoding=\"identity\"}} {}",
        st.fullscrapes - st.fullscrapes_gzip.min(st.fullscrapes)
    );
    let _ = writeln!(
        s,
        "opentracker_full_scrapes_total{{encoding=\"gzip\"}} {}",
        st.fullscrapes_gzip
    );
    for (name, help, v) in [
        (
            "opentracker_full_scrape_snapshots_total",
            "Full-scrape snapshots built (walks of the store), plain and gzip.",
            st.fullscrape_snapshots,
        ),
        (
            "opentracker_full_scrapes_shared_total",
            "Full scrapes served from a snapshot another request had started.",
            st.fullscrape_shared,
        ),
        (
            "opentracker_full_scrapes_refused_total",
            "Full scrapes refused with 503 over http.fullscrape_max_streams.",
            st.fullscrape_refused_busy,
        ),
    ] {
        family(s, name, "counter", help);
        let _ = writeln!(s, "{name} {v}");
    }
    family(
        s,
        "opentracker_full_scrape_snapshot_bytes",
        "gauge",
        "Bytes held by full-scrape snapshots.",
    );
    let _ = writeln!(
        s,
        "opentracker_full_scrape_snapshot_bytes {}",
        st.fullscrape_snapshot_bytes
    );
    family(
        s,
        "opentracker_http_responses_total",
        "counter",
        "HTTP responses with a status other than 200, by status code.",
    );
    for (code, _, n) in http_codes(st) {
        let _ = writeln!(s, "opentracker_http_responses_total{{code=\"{code}\"}} {n}");
    }
    family(
        s,
        "opentracker_udp_invalid_total",
        "counter",
        "UDP datagrams not served, by reason.",
    );
    let i = &st.udp_invalid;
    for (reason, n) in [
        ("malformed_header", i.malformed_header),
        ("bad_magic", i.bad_magic),
        ("unknown_action", i.unknown_action),
        ("bad_connection_id", i.bad_connection_id),
        ("malformed_request", i.malformed_request),
    ] {
        let _ = writeln!(
            s,
            "opentracker_udp_invalid_total{{reason=\"{reason}\"}} {n}"
        );
    }
    family(
        s,
        "opentracker_refused_total",
        "counter",
        "Announces refused, by reason (also counted as failed requests).",
    );
    let a = &st.auth_refused;
    for (reason, n) in [
        ("not_authorized", a.not_authorized),
        ("missing_key", a.missing_key),
        ("unknown_key", a.unknown_key),
        ("expired_key", a.expired_key),
        ("torrent_limit", st.refused_torrent_limit),
        ("peer_limit", st.refused_peer_limit),
        ("new_torrents_per_net", st.quota.new_torrents_per_net),
        ("peers_per_source", st.quota.peers_per_source),
    ] {
        let _ = writeln!(s, "opentracker_refused_total{{reason=\"{reason}\"}} {n}");
    }
    for (name, help, n) in [
        (
            "opentracker_udp_send_dropped_total",
            "UDP replies the kernel would not take.",
            st.udp_send_dropped,
        ),
        (
            "opentracker_udp_rate_limited_total",
            "UDP datagrams dropped unanswered: their source was over udp.rate_limit.",
            st.quota.udp_rate_limited,
        ),
        (
            "opentracker_tcp_accepted_total",
            "TCP connections accepted.",
            st.tcp_accepted,
        ),
        (
            "opentracker_tcp_refused_total",
            "TCP connections closed at once because http.max_connections were open.",
            st.tcp_refused_over_limit,
        ),
        (
            "opentracker_tcp_refused_no_fd_total",
            "TCP connections accepted and closed at once for want of a file descriptor.",
            st.tcp_refused_no_fd,
        ),
        (
            "opentracker_completed_total",
            "Downloads counted: completed events, and stored leechers reporting left=0 with any event.",
            st.completed,
        ),
        (
            "opentracker_loop_iterations_total",
            "Iterations of the event loop.",
            st.loop_iterations,
        ),
    ] {
        family(s, name, "counter", help);
        let _ = writeln!(s, "{name} {n}");
    }
    let per_worker: [PerWorker; 3] = [
        (
            "opentracker_worker_requests_total",
            "Requests (announce, scrape, connect, failed; HTTP and UDP) per worker.",
            |w| w.requests,
        ),
        (
            "opentracker_worker_loop_iterations_total",
            "Iterations of each worker's event loop.",
            |w| w.loop_iterations,
        ),
        (
            "opentracker_worker_tls_handshakes_total",
            "TLS handshakes completed on each worker's HTTPS listeners.",
            |w| w.tls_handshakes,
        ),
    ];
    if !st.workers.is_empty() {
        for (name, help, value) in per_worker {
            family(s, name, "counter", help);
            for (i, w) in st.workers.iter().enumerate() {
                let _ = writeln!(s, "{name}{{worker=\"{i}\"}} {}", value(w));
            }
        }
    }
    family(
        s,
        "opentracker_tls_handshakes_total",
        "counter",
        "TLS handshakes of HTTPS listeners, by result (ok, failed, timeout).",
    );
    let t = &st.tls;
    for (result, n) in [
        ("ok", t.completed),
        ("failed", t.failed),
        ("timeout", t.timed_out),
    ] {
        let _ = writeln!(
            s,
            "opentracker_tls_handshakes_total{{result=\"{result}\"}} {n}"
        );
    }
    family(
        s,
        "opentracker_tls_handshake_seconds_total",
        "counter",
        "Time from accept to the end of each completed TLS handshake, summed.",
    );
    let _ = writeln!(
        s,
        "opentracker_tls_handshake_seconds_total {}.{:06}",
        t.micros / 1_000_000,
        t.micros % 1_000_000
    );
    family(
        s,
        "opentracker_tls_reload_failed_total",
        "counter",
        "Certificate reloads (SIGHUP) refused; the previous certificate stays.",
    );
    let _ = writeln!(s, "opentracker_tls_reload_failed_total {}", t.reload_failed);
    family(
        s,
        "opentracker_http_connections",
        "gauge",
        "HTTP connections open.",
    );
    let _ = writeln!(s, "opentracker_http_connections {}", st.http_connections);
    for (name, help, n) in [
        (
            "opentracker_http_max_connections",
            "http.max_connections in effect.",
            st.http_max_connections,
        ),
        (
            "opentracker_http_max_connections_lowered",
            "By how much the open-files limit lowered http.max_connections at start.",
            st.http_max_connections_lowered_by,
        ),
    ] {
        family(s, name, "gauge", help);
        let _ = writeln!(s, "{name} {n}");
    }
    family(
        s,
        "opentracker_http_streams",
        "gauge",
        "Streamed responses (full scrapes, stats walks) being written.",
    );
    let _ = writeln!(s, "opentracker_http_streams {}", st.http_streams);
    for (name, help, v) in [
        (
            "opentracker_torrents",
            "Torrents in the store of each address family.",
            snap.torrents,
        ),
        (
            "opentracker_seeders",
            "Seeders in the store of each address family.",
            snap.seeders,
        ),
        (
            "opentracker_leechers",
            "Leechers in the store of each address family.",
            [
                snap.peers[0].saturating_sub(snap.seeders[0]),
                snap.peers[1].saturating_sub(snap.seeders[1]),
            ],
        ),
    ] {
        family(s, name, "gauge", help);
        for f in fams {
            let _ = writeln!(s, "{name}{{family=\"{}\"}} {}", f.label(), v[f as usize]);
        }
    }
    family(
        s,
        "opentracker_bytes_total",
        "counter",
        "Bytes read and written on HTTP connections and UDP sockets.",
    );
    let _ = writeln!(
        s,
        "opentracker_bytes_total{{direction=\"in\"}} {}",
        st.bytes_in
    );
    let _ = writeln!(
        s,
        "opentracker_bytes_total{{direction=\"out\"}} {}",
        st.bytes_out
    );
    family(
        s,
        "opentracker_loop_longest_stall_seconds",
        "gauge",
        "Longest time one event loop iteration spent working.",
    );
    let _ = writeln!(
        s,
        "opentracker_loop_longest_stall_seconds {}",
        st.longest_stall_us as f64 / 1e6
    );
    write_livesync(s, &st.livesync);
    if let Some(rss) = snap.rss_bytes {
        family(
            s,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
        );
        let _ = writeln!(s, "process_resident_memory_bytes {rss}");
    }
}

/// The live sync families of [`write_prometheus`].
fn write_livesync(s: &mut String, l: &crate::stats::Livesync) {
    for (name, help, sent, received) in [
        (
            "opentracker_livesync_packets_total",
            "Live sync datagrams sent (one per destination) and accepted.",
            l.packets_sent,
            l.packets_received,
        ),
        (
            "opentracker_livesync_records_total",
            "Live sync records sent and applied.",
            l.records_sent,
            l.records_received,
        ),
    ] {
        family(s, name, "counter", help);
        let _ = writeln!(s, "{name}{{direction=\"sent\"}} {sent}");
        let _ = writeln!(s, "{name}{{direction=\"received\"}} {received}");
    }
    family(
        s,
        "opentracker_livesync_packets_refused_total",
        "counter",
        "Live sync datagrams refused, by reason.",
    );
    for (reason, n) in LIVESYNC_PACKET_REFUSALS.iter().zip(l.packets_refused) {
        let _ = writeln!(
            s,
            "opentracker_livesync_packets_refused_total{{reason=\"{reason}\"}} {n}"
        );
    }
    family(
        s,
        "opentracker_livesync_records_refused_total",
        "counter",
        "Records of accepted live sync datagrams not applied, by reason.",
    );
    for (reason, n) in LIVESYNC_RECORD_REFUSALS.iter().zip(l.records_refused) {
        let _ = writeln!(
            s,
            "opentracker_livesync_records_refused_total{{reason=\"{reason}\"}} {n}"
        );
    }
    for (name, help, n) in [
        (
            "opentracker_livesync_send_failed_total",
            "Live sync datagrams the kernel would not send.",
            l.send_failed,
        ),
        (
            "opentracker_livesync_queue_dropped_total",
            "Live sync records dropped from a full send queue.",
            l.queue_dropped,
        ),
        (
            "opentracker_livesync_completed_total",
            "Downloads counted from records learnt by live sync.",
            l.completed,
        ),
    ] {
        family(s, name, "counter", help);
        let _ = writeln!(s, "{name} {n}");
    }
    family(
        s,
        "opentracker_livesync_lag_seconds",
        "gauge",
        "How long the oldest record of a live sync packet waited in the sender: last packet, largest.",
    );
    let _ = writeln!(
        s,
        "opentracker_livesync_lag_seconds{{stat=\"last\"}} {}",
        l.lag_last_ms as f64 / 1e3
    );
    let _ = writeln!(
        s,
        "opentracker_livesync_lag_seconds{{stat=\"max\"}} {}",
        l.lag_max_ms as f64 / 1e3
    );
}
