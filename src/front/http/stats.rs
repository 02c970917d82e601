//! `GET /<access.stats_path>?mode=...[&format=...]` (opentracker's `/stats`) and `GET /metrics`
//! (Prometheus), for the addresses in `access.stats` only.
//!
//! Access is decided by [`StatsAccess::allows`] (the client's address: the TCP peer, or the
//! address a trusted `access.proxy` names); others get `403`.
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
use crate::stats::report::TextMode;
use crate::wire::http::{Request, Status, Version, accepts_gzip, write_error, write_head};
use crate::wire::query::{self, name_is};
use crate::wire::stream::{Framing, write_stream_head};

/// Whether `path` (decoded, without leading `/`) is the stats path (`access.stats_path`) or
/// `metrics`; `Some(true)` for `metrics`.
pub fn route(access: &StatsAccess, path: &[u8]) -> Option<bool> {
    if path == access.path.as_bytes() {
        Some(false)
    } else if path == b"metrics" {
        Some(true)
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

/// Serves a stats request (already routed: `metrics` tells `/metrics` from the stats path).
/// Appends a whole response to `out`, or, for a walk mode, the head of a streamed response and
/// the walk in `stream`. Returns whether the connection stays open (never after a stream).
#[allow(clippy::too_many_arguments)]
pub fn serve(
    tracker: &mut Tracker,
    access: &StatsAccess,
    req: &Request<'_>,
    metrics: bool,
    ip: IpAddr,
    keep_alive: bool,
    now: u32,
    stream: &mut Option<Box<Walk>>,
    out: &mut Vec<u8>,
) -> bool {
    if !access.allows(ip) {
        return error(tracker, Status::Forbidden403, keep_alive, out);
    }
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
        assert_eq!(route(&a, b"stats"), Some(false));
        assert_eq!(route(&a, b"metrics"), Some(true));
        assert_eq!(route(&a, b"stats/"), None);
        assert_eq!(route(&a, b"statsx"), None);
    }
}
