//! The status page (`GET /stats/html`): one self-contained HTML document for a person, rendered
//! from a [`Snapshot`] and the top torrents. No script, no external asset (the styles are
//! inline, the chart is inline SVG), so it shows the same in any browser, behind any proxy,
//! and in a DOM dump; it reloads itself every [`REFRESH_SECONDS`].
//!
//! What it shows: torrents, peers, seeders and leechers per address family; requests per second
//! by protocol over the last minutes (the ring of [`super::history`]) and the request counts
//! since the start; refusals by reason; resident memory; uptime; the torrents with the most
//! peers.
//!
//! Pure, like [`super::report`]: numbers in, bytes out. The page is written in two parts,
//! because the top torrents need a walk over every torrent, which the HTTP front runs in slices
//! (`front::http::walk`): [`write_head`] writes everything up to the top torrents' rows when the
//! request comes, [`write_tail`] the rows and the end of the page when the walk is done.
//!
//! Each figure sits in an element with a stable `id` (`torrents`, `peers-ipv4`,
//! `refused-not-authorized`, `rate-http`, ...; see the functions), holding the plain decimal
//! number, so tests and scrapers can read the page; formatted values (memory, uptime) carry the
//! raw number in a `data-value` attribute.

use std::fmt::Write as _;

use super::history::{SAMPLE_SECONDS, SAMPLES, Sample};
use super::report::Snapshot;
use crate::types::InfoHash;

/// Seconds between two reloads of the page (`<meta http-equiv="refresh">`).
pub const REFRESH_SECONDS: u32 = 10;

/// Torrents listed in the top table.
pub const TOP_TORRENTS: usize = 10;

/// `Content-Type` of the page.
pub const CONTENT_TYPE: &str = "text/html; charset=utf-8";

/// One row of the top table: a torrent and its counts over both families.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopTorrent {
    /// The torrent.
    pub info_hash: InfoHash,
    /// Seeders.
    pub seeders: u64,
    /// Leechers.
    pub leechers: u64,
    /// Completed downloads counted (`downloaded`).
    pub downloaded: u64,
}

/// Appends the page up to the rows of the top-torrents table (opened with `<tbody>`): the
/// document head, the summary cards, the swarms by family, the request chart and counts, the
/// refusals.
pub fn write_head(out: &mut Vec<u8>, snap: &Snapshot<'_>) {
    let mut s = String::with_capacity(16 << 10);
    let st = snap.stats;
    let torrents = snap.torrents[0] + snap.torrents[1];
    let peers = snap.peers[0] + snap.peers[1];
    let seeders = snap.seeders[0] + snap.seeders[1];
    let leechers = peers.saturating_sub(seeders);
    let version = escape(snap.version);
    let uptime = duration_text(snap.uptime);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECONDS}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{version} status</title>\n<link rel=\"icon\" href=\"data:,\">\n\
         <style>{STYLE}</style>\n</head>\n<body>\n<header><h1>{version}</h1><p>up \
         <span id=\"uptime\" data-value=\"{up}\">{uptime}</span> &middot; this page reloads \
         every {REFRESH_SECONDS} s</p></header>\n",
        up = snap.uptime,
    );

    // Summary cards.
    s.push_str("<section class=\"cards\">\n");
    card(&mut s, "Torrents", "torrents", &torrents.to_string(), None);
    card(&mut s, "Peers", "peers", &peers.to_string(), None);
    card(&mut s, "Seeders", "seeders", &seeders.to_string(), None);
    card(&mut s, "Leechers", "leechers", &leechers.to_string(), None);
    let latest = st.history.latest();
    card(
        &mut s,
        "HTTP requests/s",
        "rate-http",
        &latest.map_or_else(|| "&ndash;".to_owned(), |l| rate_text(l.http_rate())),
        None,
    );
    card(
        &mut s,
        "UDP requests/s",
        "rate-udp",
        &latest.map_or_else(|| "&ndash;".to_owned(), |l| rate_text(l.udp_rate())),
        None,
    );
    match snap.rss_bytes {
        Some(rss) => card(
            &mut s,
            "Memory (RSS)",
            "memory",
            &bytes_text(rss),
            Some(rss),
        ),
        None => card(&mut s, "Memory (RSS)", "memory", "unknown", None),
    }
    card(
        &mut s,
        "Uptime",
        "uptime-card",
        &uptime,
        Some(u64::from(snap.uptime)),
    );
    s.push_str("</section>\n");

    // Swarms by family.
    s.push_str(
        "<section>\n<h2>Swarms by address family</h2>\n<table id=\"families\">\n\
         <tr><th></th><th>IPv4</th><th>IPv6</th><th>total</th></tr>\n",
    );
    for (label, id, v) in [
        ("Torrents", "torrents", snap.torrents),
        ("Peers", "peers", snap.peers),
        ("Seeders", "seeders", snap.seeders),
        (
            "Leechers",
            "leechers",
            [
                snap.peers[0].saturating_sub(snap.seeders[0]),
                snap.peers[1].saturating_sub(snap.seeders[1]),
            ],
        ),
    ] {
        let _ = writeln!(
            s,
            "<tr><th>{label}</th><td id=\"{id}-ipv4\">{}</td><td id=\"{id}-ipv6\">{}</td>\
             <td>{}</td></tr>",
            v[0],
            v[1],
            v[0] + v[1]
        );
    }
    s.push_str(
        "</table>\n<p class=\"note\">A torrent with peers of both families counts in each.</p>\n\
         </section>\n",
    );

    // Requests: the chart and the counts.
    let _ = write!(
        s,
        "<section>\n<h2>Requests per second, last {} minutes</h2>\n",
        SAMPLES as u32 * SAMPLE_SECONDS / 60
    );
    chart(&mut s, st.history.samples().copied().collect::<Vec<_>>());
    s.push_str(
        "<table id=\"requests\">\n<tr><th></th><th>announce</th><th>scrape</th><th>connect</th>\
         <th>failed</th><th>per second, last sample</th><th>per second, since start</th></tr>\n",
    );
    let up = f64::from(snap.uptime.max(1));
    for (index, (label, id, c)) in [
        ("HTTP IPv4", "http-ipv4", &st.http[0]),
        ("HTTP IPv6", "http-ipv6", &st.http[1]),
        ("UDP IPv4", "udp-ipv4", &st.udp[0]),
        ("UDP IPv6", "udp-ipv6", &st.udp[1]),
    ]
    .into_iter()
    .enumerate()
    {
        let total = c.announce + c.scrape + c.connect + c.failed;
        let _ = writeln!(
            s,
            "<tr><th>{label}</th><td id=\"{id}-announce\">{}</td><td id=\"{id}-scrape\">{}</td>\
             <td id=\"{id}-connect\">{}</td><td id=\"{id}-failed\">{}</td><td>{}</td><td>{}</td>\
             </tr>",
            c.announce,
            c.scrape,
            c.connect,
            c.failed,
            latest.map_or_else(|| "&ndash;".to_owned(), |l| rate_text(l.rate(index))),
            rate_text(total as f64 / up),
        );
    }
    s.push_str("</table>\n</section>\n");

    // Refusals.
    s.push_str(
        "<section>\n<h2>Refusals by reason</h2>\n<table id=\"refusals\">\n\
         <tr><th>reason</th><th>count</th></tr>\n",
    );
    let a = &st.auth_refused;
    let refused = a.not_authorized
        + a.missing_key
        + a.unknown_key
        + a.expired_key
        + st.refused_torrent_limit
        + st.refused_peer_limit
        + st.quota.new_torrents_per_net
        + st.quota.peers_per_source;
    let failed: u64 = st.http.iter().chain(&st.udp).map(|c| c.failed).sum();
    let u = &st.udp_invalid;
    let mut rows: Vec<(String, String, u64)> = [
        (
            "announce refused by the access list (info_hash not authorized)",
            "not-authorized",
            a.not_authorized,
        ),
        (
            "announce refused: private tracker, no key",
            "missing-key",
            a.missing_key,
        ),
        (
            "announce refused: unknown key",
            "unknown-key",
            a.unknown_key,
        ),
        (
            "announce refused: expired key",
            "expired-key",
            a.expired_key,
        ),
        (
            "announce refused: tracker.max_torrents reached",
            "torrent-limit",
            st.refused_torrent_limit,
        ),
        (
            "announce refused: tracker.max_peers reached",
            "peer-limit",
            st.refused_peer_limit,
        ),
        (
            "announce refused: tracker.max_new_torrents_per_net (the network's new torrents)",
            "new-torrents-per-net",
            st.quota.new_torrents_per_net,
        ),
        (
            "announce refused: tracker.max_peers_per_source (the address's peers in the swarm)",
            "peers-per-source",
            st.quota.peers_per_source,
        ),
        (
            "request with bad parameters (failure reason sent)",
            "bad-request",
            failed.saturating_sub(refused),
        ),
        (
            "TCP connection over http.max_connections",
            "tcp-over-limit",
            st.tcp_refused_over_limit,
        ),
        (
            "TCP connection refused: out of file descriptors",
            "tcp-no-fd",
            st.tcp_refused_no_fd,
        ),
        (
            "UDP: forged or expired connection_id",
            "udp-bad-connection-id",
            u.bad_connection_id,
        ),
        (
            "UDP: malformed datagram or request",
            "udp-malformed",
            u.malformed_header + u.malformed_request + u.bad_magic + u.unknown_action,
        ),
        (
            "UDP: source over udp.rate_limit (dropped unanswered)",
            "udp-rate-limited",
            st.quota.udp_rate_limited,
        ),
    ]
    .into_iter()
    .map(|(label, id, n)| (label.to_owned(), id.to_owned(), n))
    .collect();
    let mut statuses = st.http_status_errors.clone();
    statuses.sort_unstable();
    for (code, n) in statuses {
        if (400..500).contains(&code) {
            rows.push((format!("HTTP {code}"), format!("http-{code}"), n));
        }
    }
    for (label, id, n) in rows {
        let _ = writeln!(
            s,
            "<tr><th>{label}</th><td id=\"refused-{id}\">{n}</td></tr>"
        );
    }
    s.push_str("</table>\n</section>\n");

    // The top table, left open for the rows.
    let _ = write!(
        s,
        "<section>\n<h2>Top {TOP_TORRENTS} torrents by peers</h2>\n<table id=\"top\">\n<thead>\
         <tr><th>#</th><th class=\"hash\">info_hash</th><th>seeders</th><th>leechers</th><th>peers</th>\
         <th>completed</th></tr></thead>\n<tbody>\n"
    );
    out.extend_from_slice(s.as_bytes());
}

/// Appends the rows of the top table (`top`, most peers first) and the end of the page, with
/// links to the text stats at `/<stats_path>` and to `/metrics`.
pub fn write_tail(out: &mut Vec<u8>, top: &[TopTorrent], stats_path: &str) {
    let mut s = String::new();
    if top.is_empty() {
        s.push_str("<tr><td colspan=\"6\" class=\"note\">no torrent has peers</td></tr>\n");
    }
    for (rank, t) in top.iter().enumerate() {
        let mut hex = String::with_capacity(40);
        for b in t.info_hash {
            let _ = write!(hex, "{b:02x}");
        }
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td class=\"hash\">{hex}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td></tr>",
            rank + 1,
            t.seeders,
            t.leechers,
            t.seeders + t.leechers,
            t.downloaded
        );
    }
    let path = escape(stats_path);
    let _ = write!(
        s,
        "</tbody>\n</table>\n</section>\n<footer>Also: <a href=\"/{path}?mode=everything\">\
         /{path}?mode=everything</a> (XML), <a href=\"/{path}?mode=top100\">top 100</a>, \
         <a href=\"/metrics\">/metrics</a> (Prometheus).</footer>\n</body>\n</html>\n"
    );
    out.extend_from_slice(s.as_bytes());
}

/// One summary card; `raw` goes to `data-value` when the text is formatted.
fn card(s: &mut String, title: &str, id: &str, text: &str, raw: Option<u64>) {
    let data = raw
        .map(|v| format!(" data-value=\"{v}\""))
        .unwrap_or_default();
    let _ = writeln!(
        s,
        "<div class=\"card\"><div class=\"title\">{title}</div>\
         <div class=\"value\" id=\"card-{id}\"{data}>{text}</div></div>"
    );
}

/// Width, height and margins of the chart, in SVG units (pixels at scale 1).
const CHART_W: f64 = 760.0;
const CHART_H: f64 = 220.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// The request-rate chart: one line per protocol (both families summed), time on the x axis
/// (the last [`SAMPLES`] x [`SAMPLE_SECONDS`] seconds, now at the right).
fn chart(s: &mut String, samples: Vec<Sample>) {
    let _ = writeln!(
        s,
        "<svg id=\"chart\" viewBox=\"0 0 {CHART_W} {CHART_H}\" width=\"{CHART_W}\" \
         height=\"{CHART_H}\" role=\"img\" aria-label=\"requests per second by protocol\">"
    );
    let plot_w = CHART_W - LEFT - RIGHT;
    let plot_h = CHART_H - TOP - BOTTOM;
    let max = samples
        .iter()
        .map(|x| x.http_rate().max(x.udp_rate()))
        .fold(0.0, f64::max);
    let top = nice_ceiling(max);
    // Grid and y labels.
    for i in 0..=4 {
        let v = top * f64::from(i) / 4.0;
        let y = TOP + plot_h - plot_h * f64::from(i) / 4.0;
        let _ = writeln!(
            s,
            "<line class=\"grid\" x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\"/>\
             <text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT + plot_w,
            LEFT - 6.0,
            y + 4.0,
            rate_text(v)
        );
    }
    // X labels: minutes ago.
    let span = SAMPLES as u32 * SAMPLE_SECONDS;
    for m in (0..=span / 60).step_by(2) {
        let x = LEFT + plot_w - plot_w * f64::from(m * 60) / f64::from(span);
        let label = if m == 0 {
            "now".to_owned()
        } else {
            format!("-{m} min")
        };
        let _ = writeln!(
            s,
            "<text class=\"axis\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>",
            CHART_H - 8.0
        );
    }
    let Some(last) = samples.last() else {
        let _ = writeln!(
            s,
            "<text class=\"note\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">collecting: the \
             first sample is taken {SAMPLE_SECONDS} s after the start</text>\n</svg>",
            LEFT + plot_w / 2.0,
            TOP + plot_h / 2.0
        );
        return;
    };
    let x_of = |sample: &Sample| {
        let ago = f64::from(last.end - sample.end.min(last.end));
        LEFT + plot_w - plot_w * ago / f64::from(span)
    };
    let y_of = |v: f64| TOP + plot_h - if top > 0.0 { plot_h * v / top } else { 0.0 };
    for (class, rate) in [
        ("http", Sample::http_rate as fn(&Sample) -> f64),
        ("udp", Sample::udp_rate),
    ] {
        let mut points = String::new();
        for sample in &samples {
            let _ = write!(
                points,
                "{:.1},{:.1} ",
                x_of(sample).max(LEFT),
                y_of(rate(sample))
            );
        }
        let _ = writeln!(
            s,
            "<polyline class=\"{class}\" points=\"{}\"/>",
            points.trim_end()
        );
        if samples.len() == 1 {
            let _ = writeln!(
                s,
                "<circle class=\"{class}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\"/>",
                x_of(last),
                y_of(rate(last))
            );
        }
    }
    let _ = writeln!(
        s,
        "<text class=\"legend http\" x=\"{:.1}\" y=\"{:.1}\">&#9632; HTTP</text>\
         <text class=\"legend udp\" x=\"{:.1}\" y=\"{:.1}\">&#9632; UDP</text>\n</svg>",
        LEFT + 8.0,
        TOP + 14.0,
        LEFT + 78.0,
        TOP + 14.0
    );
}

/// A round number at or above `v` for the chart's top: 1, 2 or 5 times a power of ten
/// (at least 1).
fn nice_ceiling(v: f64) -> f64 {
    if v.is_nan() || v <= 1.0 {
        return 1.0;
    }
    let mut step = 1.0;
    while step * 10.0 < v {
        step *= 10.0;
    }
    for m in [1.0, 2.0, 5.0, 10.0] {
        if step * m >= v {
            return step * m;
        }
    }
    step * 10.0
}

/// A rate: one decimal below 100, none above.
fn rate_text(v: f64) -> String {
    if v < 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// Bytes as KiB, MiB or GiB with one decimal.
fn bytes_text(n: u64) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < units.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} bytes")
    } else {
        format!("{v:.1} {}", units[unit])
    }
}

/// Seconds as `2 d 3 h`, `3 h 4 min`, `4 min 5 s` or `5 s`.
fn duration_text(secs: u32) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d} d {h} h")
    } else if h > 0 {
        format!("{h} h {m} min")
    } else if m > 0 {
        format!("{m} min {s} s")
    } else {
        format!("{s} s")
    }
}

/// Text for HTML: `&`, `<`, `>`, `"` and `'` escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page's styles: system fonts, cards, plain tables, the chart's colours.
const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;\
margin:0 auto;max-width:1000px;padding:16px 24px;color:#1d2329;background:#f6f7f9}\
header h1{margin:0;font-size:24px}header p{margin:4px 0 16px;color:#56606b}\
h2{font-size:17px;margin:24px 0 8px}\
.cards{display:grid;grid-template-columns:repeat(4,1fr);gap:10px}\
.card{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:10px 12px}\
.card .title{font-size:12px;color:#56606b;text-transform:uppercase;letter-spacing:.04em}\
.card .value{font-size:24px;font-weight:600;margin-top:4px}\
table{border-collapse:collapse;background:#fff;border:1px solid #dde1e6;min-width:50%}\
th,td{padding:4px 10px;border-bottom:1px solid #eef0f3;text-align:right;font-size:14px}\
th:first-child,th.hash{text-align:left}td.hash{font-family:'DejaVu Sans Mono',monospace;\
text-align:left;font-size:13px}\
.note{color:#6b7580;font-size:13px}\
svg{background:#fff;border:1px solid #dde1e6;border-radius:6px;display:block;\
margin-bottom:10px;max-width:100%;height:auto}\
svg .grid{stroke:#e6e9ed;stroke-width:1}svg .axis{fill:#6b7580;font-size:11px}\
svg .note{fill:#6b7580;font-size:13px}\
svg polyline{fill:none;stroke-width:2}svg .http{stroke:#2f6fb3;fill:#2f6fb3}\
svg .udp{stroke:#d9782d;fill:#d9782d}svg polyline.http,svg polyline.udp{fill:none}\
svg text.legend{font-size:12px;stroke:none}\
footer{margin:24px 0 8px;color:#56606b;font-size:13px}a{color:#2f6fb3}";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Stats;

    fn snapshot(st: &Stats) -> Snapshot<'_> {
        Snapshot {
            stats: st,
            version: "opentracker-rs <9.9.9>",
            uptime: 3725,
            torrents: [3, 1],
            peers: [8, 2],
            seeders: [5, 0],
            rss_bytes: Some(12 << 20),
            tracker_id: None,
        }
    }

    fn page(st: &Stats, top: &[TopTorrent]) -> String {
        let mut out = Vec::new();
        write_head(&mut out, &snapshot(st));
        write_tail(&mut out, top, "ot/<stats>");
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn page_holds_the_figures_in_their_elements() {
        let mut st = Stats::default();
        st.http[0].announce = 40;
        st.udp[1].connect = 7;
        st.udp[0].failed = 3;
        st.auth_refused.not_authorized = 2;
        st.http_status(403);
        st.http_status(404);
        st.http_status(302);
        st.sample(10);
        let top = [TopTorrent {
            info_hash: [0xab; 20],
            seeders: 5,
            leechers: 3,
            downloaded: 9,
        }];
        let html = page(&st, &top);
        assert!(
            html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"),
            "{html}"
        );
        assert!(html.ends_with("</body>\n</html>\n"));
        for part in [
            "<meta http-equiv=\"refresh\" content=\"10\">",
            "<title>opentracker-rs &lt;9.9.9&gt; status</title>",
            "id=\"uptime\" data-value=\"3725\">1 h 2 min</span>",
            "id=\"card-torrents\">4</div>",
            "id=\"card-peers\">10</div>",
            "id=\"card-seeders\">5</div>",
            "id=\"card-leechers\">5</div>",
            "id=\"card-memory\" data-value=\"12582912\">12.0 MiB</div>",
            "id=\"card-rate-http\">4.0</div>",
            "id=\"card-rate-udp\">1.0</div>",
            "<td id=\"torrents-ipv4\">3</td><td id=\"torrents-ipv6\">1</td><td>4</td>",
            "<td id=\"leechers-ipv4\">3</td><td id=\"leechers-ipv6\">2</td>",
            "<td id=\"http-ipv4-announce\">40</td>",
            "<td id=\"udp-ipv6-connect\">7</td>",
            "<td id=\"refused-not-authorized\">2</td>",
            // Refusals are counted in `failed` too: of 3 failed, 2 were refused, 1 was bad.
            "<td id=\"refused-bad-request\">1</td>",
            "<th>HTTP 403</th><td id=\"refused-http-403\">1</td>",
            "<th>HTTP 404</th><td id=\"refused-http-404\">1</td>",
            "<polyline class=\"http\"",
            "<td class=\"hash\">abababababababababababababababababababab</td><td>5</td><td>3</td>\
             <td>8</td><td>9</td>",
            "<a href=\"/ot/&lt;stats&gt;?mode=everything\">",
        ] {
            assert!(html.contains(part), "{part} in\n{html}");
        }
        assert!(!html.contains("refused-http-302"));
        // Self-contained: nothing is loaded from anywhere (the icon is an empty data: URL, so
        // browsers do not ask for /favicon.ico).
        for external in ["<script", "src=", "url(", "@import"] {
            assert!(!html.contains(external), "{external}");
        }
        assert_eq!(html.matches("<link").count(), 1);
        assert!(html.contains("<link rel=\"icon\" href=\"data:,\">"));
    }

    #[test]
    fn empty_tracker_page() {
        let html = page(&Stats::default(), &[]);
        for part in [
            "id=\"card-rate-http\">&ndash;</div>",
            "collecting: the first sample is taken 10 s after the start",
            "no torrent has peers",
        ] {
            assert!(html.contains(part), "{part} in\n{html}");
        }
        assert!(!html.contains("<polyline"));
    }

    #[test]
    fn formats() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(1.5), 2.0);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(31.0), 50.0);
        assert_eq!(nice_ceiling(120_000.0), 200_000.0);
        assert_eq!(nice_ceiling(f64::NAN), 1.0);
        assert_eq!(bytes_text(100), "100 bytes");
        assert_eq!(bytes_text(1536), "1.5 KiB");
        assert_eq!(bytes_text(3 << 30), "3.0 GiB");
        assert_eq!(duration_text(5), "5 s");
        assert_eq!(duration_text(65), "1 min 5 s");
        assert_eq!(duration_text(90_000), "1 d 1 h");
        assert_eq!(rate_text(12.34), "12.3");
        assert_eq!(rate_text(1234.5), "1234");
        assert_eq!(
            escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }
}
