//! `GET /<access.stats_path>?mode=...[&format=...]` (opentracker's `/stats`), the status page
//! `GET /<access.stats_path>/html` and `GET /metrics` (Prometheus), for the addresses in
//! `access.stats` only.
//!
//! Access is decided by [`StatsAccess::allows`] (the client's address: the TCP peer, or the
//! address a trusted `access.proxy` names); others get `403`, whose body says which directive
//! opens the stats to them ([`forbidden`]).
//!
//! The status page ([`crate::stats::html`]) is streamed like the walk modes below: its head
//! with every figure is written at once, the top torrents follow from a walk over every
//! torrent, then the connection closes. Never compressed.
//!
//! Modes (`mode=`, exact keywords; default `peer`): the text modes of
//! [`crate::stats::report::TextMode`] (`peer`, `torr`, `conn`, `tcp4`, `udp4`, `scrp`,
//! `completed`, `syncs`, `herr`, `everything`, `version`, `prometheus`) answer at once with a
//! `Content-Length`; the modes that walk every torrent (`top10`, `top100`, `statedump`, `tpbs`
//! with `format=ben|bin|txt|txtp|url`) are streamed in slices ([`super::walk`]), gzip-compressed
//! when the request's `Accept-Encoding` allows it (`top10`/`top100` never are). An unknown mode
//! or format, or `tpbs` without `format` (which hangs opentracker), gets `400`. `/metrics`
//! ignores the query and always answers the Prometheus format.

use std::net::IpAddr;

use super::walk::{Walk, WalkFormat};
use crate::service::Tracker;
use crate::service::stats::StatsAccess;
use crate::stats::html;
use crate::stats::report::TextMode;
use crate::wire::http::{Request, Status, Version, accepts_gzip, write_error, write_head};
use crate::wire::query::{self, name_is};
use crate::wire::stream::{Framing, write_stream_head};

/// The resources of the stats, by path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatsPage {
    /// `/<access.stats_path>`: opentracker's text modes (`?mode=`).
    Text,
    /// `/<access.stats_path>/html`: the status page.
    Html,
    /// `/metrics`: Prometheus.
    Metrics,
}

/// Which stats resource `path` (decoded, without leading `/`) names, if any: the stats path
/// (`access.stats_path`), that path + `/html`, or `metrics`. Exact matches only.
pub fn route(access: &StatsAccess, path: &[u8]) -> Option<StatsPage> {
    let stats = access.path.as_bytes();
    if path == stats {
        Some(StatsPage::Text)
    } else if path.strip_prefix(stats) == Some(b"/html") {
        Some(StatsPage::Html)
    } else if path == b"metrics" {
        Some(StatsPage::Metrics)
    } else {
        None
    }
}

/// Longest `mode=`/`format=` value looked at; longer values are unknown (400).
const MAX_WORD: usize = 16;

/// A decoded `mode=` or `format=` value, or `Err` when undecodable or too long.
fn word(raw: &[u8]) -> Result<([u8; MAX_WORD], usize), ()> {
    let mut buf = [0u8; MAX_WORD];
    let n = query::percent_decode_into(raw, &mut buf).map_err(|_| ())?;
    Ok((buf, n))
}

/// Serves a stats request (already routed to `page` by [`route`]). Appends a whole response to
/// `out`, or, for the status page and the walk modes, the head of a streamed response and the
/// walk in `stream`. Returns whether the connection stays open (never after a stream).
#[allow(clippy::too_many_arguments)]
pub fn serve(
    tracker: &mut Tracker,
    access: &StatsAccess,
    req: &Request<'_>,
    page: StatsPage,
    ip: IpAddr,
    keep_alive: bool,
    now: u32,
    stream: &mut Option<Box<Walk>>,
    out: &mut Vec<u8>,
) -> bool {
    if !access.allows(ip) {
        tracker.stats.http_status(403);
        forbidden(&access.path, ip, keep_alive, out);
        return keep_alive;
    }
    if page == StatsPage::Html {
        let mut head = Vec::with_capacity(16 << 10);
        tracker.write_status_page_head(now, &mut head);
        let framing = framing_for(req.version);
        write_stream_head(out, html::CONTENT_TYPE, framing, false);
        *stream = Some(Box::new(Walk::html(framing, head, &access.path)));
        return false;
    }
    let metrics = page == StatsPage::Metrics;
    let mut mode: Result<([u8; MAX_WORD], usize), ()> = Ok((*b"peer\0\0\0\0\0\0\0\0\0\0\0\0", 4));
    let mut format = None;
    if !metrics {
        for (name, value) in query::pairs(req.query) {
            if name_is(name, b"mode") {
                mode = word(value);
            } else if name_is(name, b"format") {
                format = Some(word(value));
            }
        }
    }
    let mode = match &mode {
        Ok((buf, n)) => &buf[..*n],
        Err(()) => return error(tracker, Status::BadRequest400, keep_alive, out),
    };
    let text = if metrics {
        Some(TextMode::Prometheus)
    } else {
        TextMode::parse(mode)
    };
    if let Some(text) = text {
        let mut body = Vec::new();
        tracker.write_stats(text, now, &mut body);
        write_head(
            out,
            Status::Ok200,
            text.content_type(),
            body.len(),
            keep_alive,
            &[],
        );
        out.extend_from_slice(&body);
        return keep_alive;
    }
    let format = match format {
        None => None,
        Some(Ok((buf, n))) => Some((buf, n)),
        Some(Err(())) => return error(tracker, Status::BadRequest400, keep_alive, out),
    };
    let format = format.as_ref().map(|(buf, n)| &buf[..*n]);
    let walk = match (mode, format) {
        (b"top10", _) => WalkFormat::Top(10),
        (b"top100", _) => WalkFormat::Top(100),
        (b"statedump", _) => WalkFormat::StateDump,
        (b"tpbs", Some(b"ben")) => WalkFormat::Bencode,
        (b"tpbs", Some(b"bin")) => WalkFormat::TpbsBin,
        (b"tpbs", Some(b"txt")) => WalkFormat::TpbsTxt,
        (b"tpbs", Some(b"txtp")) => WalkFormat::TpbsTxtp,
        (b"tpbs", Some(b"url")) => WalkFormat::TpbsUrl,
        _ => return error(tracker, Status::BadRequest400, keep_alive, out),
    };
    let gzip = !matches!(walk, WalkFormat::Top(_)) && accepts_gzip(req.accept_encoding);
    let content_type = if walk == WalkFormat::TpbsBin {
        "application/octet-stream"
    } else {
        "text/plain"
    };
    let framing = framing_for(req.version);
    write_stream_head(out, content_type, framing, gzip);
    *stream = Some(Box::new(Walk::new(walk, framing, gzip)));
    false
}

/// Chunked for HTTP/1.1 requests, close-delimited for HTTP/1.0 ([`crate::wire::stream`]).
pub fn framing_for(version: Version) -> Framing {
    match version {
        Version::Http11 => Framing::Chunked,
        Version::Http10 => Framing::CloseDelimited,
    }
}

/// Writes the `403 Forbidden` of the stats: `403 Forbidden` and a line that names the paths,
/// the client's address and the directive, flag and variable that would open them to it
/// (`access.stats`, `-A`, `OPENTRACKER_RS_ACCESS__STATS`), so a new user is not left guessing.
pub fn forbidden(stats_path: &str, ip: IpAddr, keep_alive: bool, out: &mut Vec<u8>) {
    let ip = ip.to_canonical();
    let body = format!(
        "403 Forbidden\n/{stats_path}, /{stats_path}/html and /metrics are open only to the \
         addresses in access.stats, and {ip} is not one of them. To open them to it, add \
         `access.stats {ip}` to the config file (or -A {ip} on the command line, or \
         OPENTRACKER_RS_ACCESS__STATS={ip} in the environment).\n"
    );
    write_head(
        out,
        Status::Forbidden403,
        "text/plain",
        body.len(),
        keep_alive,
        &[],
    );
    out.extend_from_slice(body.as_bytes());
}

fn error(tracker: &mut Tracker, status: Status, keep_alive: bool, out: &mut Vec<u8>) -> bool {
    tracker.stats.http_status(status.code());
    write_error(out, status, keep_alive);
    keep_alive
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let a = StatsAccess::default();
        assert_eq!(route(&a, b"stats"), Some(StatsPage::Text));
        assert_eq!(route(&a, b"stats/html"), Some(StatsPage::Html));
        assert_eq!(route(&a, b"metrics"), Some(StatsPage::Metrics));
        assert_eq!(route(&a, b"stats/"), None);
        assert_eq!(route(&a, b"statsx"), None);
        assert_eq!(route(&a, b"stats/htmlx"), None);
        assert_eq!(route(&a, b"metrics/html"), None);
        let custom = StatsAccess {
            path: "ot/st".into(),
            allowed: Vec::new(),
        };
        assert_eq!(route(&custom, b"ot/st/html"), Some(StatsPage::Html));
        assert_eq!(route(&custom, b"stats/html"), None);
    }

    #[test]
    fn forbidden_names_the_directive() {
        let mut out = Vec::new();
        forbidden("stats", "::ffff:192.0.2.7".parse().unwrap(), true, &mut out);
        let text = String::from_utf8(out).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{head}");
        assert!(
            head.contains(&format!("Content-Length: {}", body.len())),
            "{head}"
        );
        assert!(body.starts_with("403 Forbidden\n/stats, /stats/html and /metrics "));
        assert!(body.contains("192.0.2.7 is not one of them"), "{body}");
        assert!(body.contains("`access.stats 192.0.2.7`"), "{body}");
        assert!(body.contains("-A 192.0.2.7"), "{body}");
    }
}
