//! `GET /<access.stats_path>?mode=...[&format=...]` (opentracker's `/stats`) and `GET /metrics`
//! (Prometheus), for the addresses in `access.stats` only.
//!
//! Access: the client's address (the TCP peer, or the address a trusted `access.proxy` names)
//! must be in one of the `access.stats` networks; an IPv4-mapped IPv6 address
//! (`::ffff:a.b.c.d`) compares as IPv4. Others get `403`. With no `access.stats` line nobody may
//! read them (as opentracker built with `WANT_RESTRICT_STATS`, Debian's build).
//!
//! Modes (`mode=`, exact keywords; default `peer`): the text modes of
//! [`crate::stats::report::TextMode`] (`peer`, `torr`, `conn`, `tcp4`, `udp4`, `scrp`,
//! `completed`, `herr`, `everything`, `version`, `prometheus`) answer at once with a
//! `Content-Length`; the modes that walk every torrent (`top10`, `top100`, `statedump`, `tpbs`
//! with `format=ben|bin|txt|txtp|url`) are streamed in slices ([`super::walk`]), gzip-compressed
//! when the request's `Accept-Encoding` allows it (`top10`/`top100` never are). An unknown mode
//! or format, or `tpbs` without `format` (which hangs opentracker), gets `400`. `/metrics`
//! ignores the query and always answers the Prometheus format.

use std::net::IpAddr;

use ipnet::IpNet;

use super::Tracker;
use super::walk::{Walk, WalkFormat};
use crate::stats::report::{self, Snapshot, TextMode};
use crate::wire::http::{Request, Status, Version, accepts_gzip, write_error, write_head};
use crate::wire::query::{self, name_is};
use crate::wire::stream::{Framing, write_stream_head};

/// Who may read the stats, and where (`access.stats`, `access.stats_path`).
#[derive(Clone, Debug)]
pub struct StatsAccess {
    /// The stats path without leading `/` (`access.stats_path`, default `stats`).
    pub path: String,
    /// Networks allowed to read `/stats` and `/metrics` (`access.stats`); empty = nobody.
    pub allowed: Vec<IpNet>,
}

impl Default for StatsAccess {
    fn default() -> Self {
        StatsAccess {
            path: "stats".to_owned(),
            allowed: Vec::new(),
        }
    }
}

impl StatsAccess {
    /// Whether `path` (decoded, without leading `/`) is the stats path or `metrics`; `Some(true)`
    /// for `metrics`.
    pub fn route(&self, path: &[u8]) -> Option<bool> {
        if path == self.path.as_bytes() {
            Some(false)
        } else if path == b"metrics" {
            Some(true)
        } else {
            None
        }
    }

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
        let snap = Snapshot {
            stats: &tracker.stats,
            version: crate::version::VERSION,
            uptime: now,
            torrents: [tracker.v4.torrents(), tracker.v6.torrents()],
            peers: [tracker.v4.peers(), tracker.v6.peers()],
            seeders: [tracker.v4.seeders(), tracker.v6.seeders()],
            rss_bytes: if text == TextMode::Prometheus {
                report::resident_bytes()
            } else {
                None
            },
        };
        let mut body = Vec::new();
        report::write_mode(&mut body, text, &snap);
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

    #[test]
    fn routes() {
        let a = StatsAccess::default();
        assert_eq!(a.route(b"stats"), Some(false));
        assert_eq!(a.route(b"metrics"), Some(true));
        assert_eq!(a.route(b"stats/"), None);
        assert_eq!(a.route(b"statsx"), None);
    }
}
