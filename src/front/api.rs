//! The REST API (torrust-tracker's v1 routes and JSON shapes), served on its own listeners
//! (`api.listen`) by the same event loop and HTTP parser as the tracker.
//!
//! Routes (all under `/api`; every `v1` route needs a token, as `?token=SECRET` (torrust) or
//! `Authorization: Bearer SECRET`; compared in constant time, never logged):
//!
//! | method and path | answer |
//! |---|---|
//! | `GET /api/health_check` (no token) | `{"status":"Ok"}` |
//! | `GET /api/v1/stats[?format=prometheus]` | torrust's stats object, or the `/metrics` text |
//! | `GET /api/v1/torrents?offset=&limit=` or `?info_hash=..` (repeated) | `[{"info_hash","seeders","completed","leechers"}]` |
//! | `GET /api/v1/torrent/INFO_HASH` | `{"info_hash","seeders","completed","leechers","peers":[{"peer_addr","seeder"}]}` |
//! | `POST /api/v1/keys` with `{"key":null\|"..","seconds_valid":null\|N}` | `{"key","valid_until","expiry_time"}` |
//! | `POST /api/v1/key/SECONDS` | a new key, same shape |
//! | `DELETE /api/v1/key/KEY` | `{"status":"ok"}` |
//! | `GET /api/v1/keys?offset=&limit=` (ours) | `[{"key","valid_until","expiry_time"}]` |
//! | `GET /api/v1/keys/reload` | `{"status":"ok"}` |
//! | `POST`, `DELETE /api/v1/whitelist/INFO_HASH` | `{"status":"ok"}` |
//! | `GET /api/v1/whitelist?offset=&limit=` (ours) | `["INFO_HASH", ...]` |
//! | `GET /api/v1/whitelist/reload` | `{"status":"ok"}` |
//!
//! Errors are a JSON object `{"status":"error","message":TEXT}` with the right status: 400 (bad
//! info_hash, key, number or JSON), 401 (no or wrong token), 404 (unknown route, torrent, key or
//! whitelist entry), 405 (wrong method), 409 (a key that exists), 503 (the database failed or
//! its queue is full). torrust answers some of these with 500 or with 200 and a JSON string;
//! the README lists each difference.
//!
//! Writes (keys, whitelist) and reloads are [`Op`]s: the caller sends them to the database
//! writer and answers with [`complete`] once it has committed (the loop never waits), or, with
//! no database, applies them in RAM at once ([`ram_result`] then [`complete`]).

use serde::{Deserialize, Serialize};

mod read;

use crate::access::keys::Key;
use crate::config::ApiToken;
use crate::front::http::Outcome;
use crate::service::Tracker;
use crate::types::InfoHash;
use crate::wire::http::{HttpError, Request, Status, parse_request_with, write_head};
use crate::wire::query::{self, name_is};

/// Most items one list request returns (`limit` is capped to this), as torrust's default page.
pub const MAX_LIMIT: usize = 4000;

/// Largest request body read, in bytes (a key request is under 100 bytes).
pub const MAX_BODY: usize = 4096;

/// The API's settings.
#[derive(Clone, Debug, Default)]
pub struct ApiSite {
    /// The tokens accepted (`api.token`); none = every `v1` route answers 401.
    pub tokens: Vec<ApiToken>,
    /// `http.keepalive`: whether connections may stay open for more requests.
    pub keepalive: bool,
}

/// A write or reload that must reach the database before it is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Add a key (`valid_until` in Unix seconds, `None` = permanent).
    AddKey {
        /// The key.
        key: Key,
        /// Unix seconds, or permanent.
        valid_until: Option<u64>,
    },
    /// Remove a key.
    RemoveKey(Key),
    /// Add an info_hash to the whitelist.
    AddWhitelist(InfoHash),
    /// Remove an info_hash from the whitelist.
    RemoveWhitelist(InfoHash),
    /// Read the keys back from the database (torrust's `GET /api/v1/keys/reload`).
    ReloadKeys,
    /// Read the whitelist back from the database.
    ReloadWhitelist,
}

/// What the database (or RAM) said about an [`Op`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpResult {
    /// Committed.
    Done,
    /// `AddKey`: the key exists already (nothing changed).
    Duplicate,
    /// `RemoveKey` / `RemoveWhitelist`: there was no such row.
    Missing,
    /// `ReloadKeys`: the keys read.
    Keys(Vec<(Key, Option<u64>)>),
    /// `ReloadWhitelist`: the info_hashes read.
    Whitelist(Vec<InfoHash>),
    /// The database failed or is not reachable; nothing changed. The text is logged, not sent.
    Failed(String),
}

/// An API answer: status, content type and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The status.
    pub status: Status,
    /// `application/json`, or the Prometheus text type.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
}

/// Which connection waits for an [`Op`]'s answer: its slot in the API server and the serial
/// number it was accepted with (a slot is reused by later connections; the serial tells them
/// apart). [`Waiter::INTERNAL`] is an op the loop started itself (a reload on SIGHUP).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Waiter {
    /// The connection's slot.
    pub slot: usize,
    /// The connection's serial number.
    pub serial: u64,
}

impl Waiter {
    /// No connection waits: the answer is only applied and logged.
    pub const INTERNAL: Waiter = Waiter {
        slot: usize::MAX,
        serial: u64::MAX,
    };
}

/// What [`OpSink::submit`] did with an [`Op`].
#[derive(Debug)]
pub enum Submitted {
    /// Done (or refused) already: the answer.
    Now(Reply),
    /// Sent to the database writer: the answer comes with its completion, for `waiter`.
    Later,
}

/// Where the API's [`Op`]s go: RAM alone ([`RamOnly`]) or the database writer (the event loop's
/// persistence, which answers through [`complete`] once the writer committed).
pub trait OpSink {
    /// Runs or queues `op` for the connection `waiter`.
    fn submit(&mut self, tracker: &mut Tracker, op: Op, waiter: Waiter) -> Submitted;
}

/// No database (`db.path` unset): every [`Op`] is applied in RAM at once ([`ram_result`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct RamOnly;

impl OpSink for RamOnly {
    fn submit(&mut self, tracker: &mut Tracker, op: Op, _waiter: Waiter) -> Submitted {
        let result = ram_result(tracker, &op);
        Submitted::Now(complete(tracker, op, result))
    }
}

/// Writes `reply` as a whole response (status line, `Content-Type`, `Content-Length`, body).
pub fn write_reply(reply: &Reply, keep_alive: bool, out: &mut Vec<u8>) {
    write_head(
        out,
        reply.status,
        reply.content_type,
        reply.body.len(),
        keep_alive,
        &[],
    );
    out.extend_from_slice(&reply.body);
}

/// Serves the API request at the start of `data` (a connection's unread bytes): frames the head
/// and its body (`Content-Length`, at most [`MAX_BODY`] bytes; 413 beyond, 400 for a
/// `Transfer-Encoding` body), answers or submits the request's [`Op`] to `sink`, and appends the
/// response to `out`, or nothing when it comes later ([`Outcome::Deferred`]). A head over
/// `max_request_size` gets 413, a malformed one 400, one with more than `max_header_lines`
/// header lines 431 (all close the connection).
#[allow(clippy::too_many_arguments)]
pub fn serve_request(
    tracker: &mut Tracker,
    site: &ApiSite,
    sink: &mut dyn OpSink,
    data: &[u8],
    max_request_size: usize,
    max_header_lines: usize,
    waiter: Waiter,
    now: u32,
    out: &mut Vec<u8>,
) -> Outcome {
    let refuse = |tracker: &mut Tracker, out: &mut Vec<u8>, status: Status, text: &str| {
        tracker.stats.http_status(status.code());
        write_reply(&error(status, text), false, out);
        Outcome::Refused
    };
    let (req, head_len) = match parse_request_with(data, max_header_lines) {
        Ok(Some((_, len))) if len > max_request_size => {
            return refuse(
                tracker,
                out,
                Status::PayloadTooLarge413,
                "request too large",
            );
        }
        Ok(Some(found)) => found,
        Ok(None) if data.len() > max_request_size => {
            return refuse(
                tracker,
                out,
                Status::PayloadTooLarge413,
                "request too large",
            );
        }
        Ok(None) => return Outcome::Incomplete,
        Err(HttpError::TooManyHeaderLines) => {
            return refuse(
                tracker,
                out,
                Status::RequestHeaderFieldsTooLarge431,
                "too many header lines",
            );
        }
        Err(e) => return refuse(tracker, out, e.status(), "malformed request"),
    };
    if req.transfer_encoding {
        return refuse(
            tracker,
            out,
            Status::BadRequest400,
            "send the body with Content-Length",
        );
    }
    let body_len = req.content_length.unwrap_or(0);
    if body_len > MAX_BODY as u64 {
        return refuse(tracker, out, Status::PayloadTooLarge413, "body too large");
    }
    let len = head_len + body_len as usize;
    let Some(body) = data.get(head_len..len) else {
        return Outcome::Incomplete;
    };
    let keep_alive = site.keepalive && req.keep_alive;
    let reply = match handle(tracker, site, &req, body, now) {
        Handled::Reply(reply) => reply,
        Handled::Op(op) => match sink.submit(tracker, op, waiter) {
            Submitted::Now(reply) => reply,
            Submitted::Later => return Outcome::Deferred { len, keep_alive },
        },
    };
    if reply.status != Status::Ok200 {
        tracker.stats.http_status(reply.status.code());
    }
    write_reply(&reply, keep_alive, out);
    Outcome::Answered { len, keep_alive }
}

/// What [`handle`] decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Handled {
    /// Answer now.
    Reply(Reply),
    /// Run this [`Op`] first, then answer with [`complete`].
    Op(Op),
}

#[derive(Serialize)]
struct Message<'a> {
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

/// torrust's `AuthKey` JSON.
#[derive(Serialize)]
struct AuthKey<'a> {
    key: &'a str,
    valid_until: Option<u64>,
    expiry_time: Option<String>,
}

/// torrust's `POST /api/v1/keys` body.
#[derive(Deserialize)]
struct NewKey {
    key: Option<String>,
    seconds_valid: Option<u64>,
}

fn json(status: Status, value: &impl Serialize) -> Reply {
    Reply {
        status,
        content_type: "application/json",
        // Serializing these plain structs cannot fail.
        body: serde_json::to_vec(value).unwrap_or_default(),
    }
}

fn ok() -> Reply {
    json(
        Status::Ok200,
        &Message {
            status: "ok",
            message: None,
        },
    )
}

fn error(status: Status, message: &str) -> Reply {
    json(
        status,
        &Message {
            status: "error",
            message: Some(message),
        },
    )
}

/// The latest `valid_until` a new key may have, in Unix seconds: 9999-12-31 23:59:59 UTC, the
/// last second an `expiry_time` can be written for (four-digit years). A `seconds_valid` that
/// reaches beyond it is refused (400).
pub const MAX_VALID_UNTIL: u64 = 253_402_300_799;

/// `YYYY-MM-DD HH:MM:SS UTC` for a Unix time (torrust's `expiry_time`, without its
/// sub-second digits, which a whole-second `valid_until` does not have). `None` past
/// [`MAX_VALID_UNTIL`] (a key read from a database may lie that far).
fn expiry_time(unix: u64) -> Option<String> {
    use std::fmt::Write;
    if unix > MAX_VALID_UNTIL {
        return None;
    }
    let time = std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(unix))?;
    // humantime writes `YYYY-MM-DDTHH:MM:SSZ`; it fails (never panics here: no `to_string`)
    // past the year 9999.
    let mut text = String::new();
    write!(text, "{}", humantime::format_rfc3339_seconds(time)).ok()?;
    Some(format!(
        "{} UTC",
        text.trim_end_matches('Z').replacen('T', " ", 1)
    ))
}

fn auth_key(key: &Key, valid_until: Option<u64>) -> AuthKey<'_> {
    AuthKey {
        key: key.as_str(),
        valid_until,
        expiry_time: valid_until.and_then(expiry_time),
    }
}

fn hex(h: &InfoHash) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_info_hash(text: &[u8]) -> Option<InfoHash> {
    crate::lines::parse_hex40(text)
}

/// True when the request carries one of `site.tokens` (constant-time comparison of each).
fn authorized(site: &ApiSite, req: &Request<'_>) -> bool {
    let mut presented: Vec<Vec<u8>> = Vec::new();
    for (name, value) in query::pairs(req.query) {
        if name_is(name, b"token") {
            let mut buf = [0u8; 256];
            if let Ok(n) = query::percent_decode_into(value, &mut buf) {
                presented.push(buf[..n].to_vec());
            }
        }
    }
    if let Some(value) = req.authorization {
        let scheme = value.get(..7);
        if scheme.is_some_and(|s| s.eq_ignore_ascii_case(b"bearer ")) {
            presented.push(value[7..].trim_ascii().to_vec());
        }
    }
    let mut found = false;
    for p in &presented {
        for token in &site.tokens {
            found |= constant_time_eq::constant_time_eq(p, token.secret.as_bytes());
        }
    }
    found
}

/// `offset` and `limit` of a list request: `offset` defaults to 0, `limit` to and at most
/// [`MAX_LIMIT`]. Errors: a value that is not a decimal number.
fn page(req: &Request<'_>) -> Result<(usize, usize), Reply> {
    let mut offset = 0usize;
    let mut limit = MAX_LIMIT;
    for (name, value) in query::pairs(req.query) {
        let slot = if name_is(name, b"offset") {
            &mut offset
        } else if name_is(name, b"limit") {
            &mut limit
        } else {
            continue;
        };
        *slot = std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| error(Status::BadRequest400, "offset and limit must be numbers"))?;
    }
    Ok((offset, limit.min(MAX_LIMIT)))
}

/// Routes one API request. `body` is the request body (bounded by [`MAX_BODY`] by the caller);
/// `now` is the loop's clock (seconds since start).
pub fn handle(
    tracker: &mut Tracker,
    site: &ApiSite,
    req: &Request<'_>,
    body: &[u8],
    now: u32,
) -> Handled {
    let path = req.path.strip_suffix(b"/").unwrap_or(req.path);
    let Some(rest) = path.strip_prefix(b"/api/") else {
        return Handled::Reply(error(Status::NotFound404, "not found"));
    };
    let get = req.method == b"GET";
    if rest == b"health_check" {
        if !get {
            return Handled::Reply(error(Status::MethodNotAllowed405, "method not allowed"));
        }
        return Handled::Reply(json(
            Status::Ok200,
            &Message {
                status: "Ok",
                message: None,
            },
        ));
    }
    let Some(route) = rest.strip_prefix(b"v1/") else {
        return Handled::Reply(error(Status::NotFound404, "not found"));
    };
    if !authorized(site, req) {
        return Handled::Reply(error(Status::Unauthorized401, "unauthorized"));
    }
    match route_v1(tracker, req, route, body, now) {
        Ok(h) => h,
        Err(reply) => Handled::Reply(reply),
    }
}

fn route_v1(
    tracker: &mut Tracker,
    req: &Request<'_>,
    route: &[u8],
    body: &[u8],
    now: u32,
) -> Result<Handled, Reply> {
    let method = req.method;
    let (head, arg) = match route.iter().position(|&b| b == b'/') {
        Some(i) => (&route[..i], Some(&route[i + 1..])),
        None => (route, None),
    };
    let allow = |expected: &[u8]| {
        if method == expected {
            Ok(())
        } else {
            Err(error(Status::MethodNotAllowed405, "method not allowed"))
        }
    };
    let reply = match (head, arg) {
        (b"stats", None) => {
            allow(b"GET")?;
            read::stats(tracker, req, now)
        }
        (b"torrents", None) => {
            allow(b"GET")?;
            read::torrents(tracker, req, now)?
        }
        (b"torrent", Some(hash)) => {
            allow(b"GET")?;
            read::torrent(tracker, hash, now)?
        }
        (b"keys", None) if method == b"POST" => return new_key(tracker, body, now),
        (b"keys", None) => {
            allow(b"GET")?;
            let (offset, limit) = page(req)?;
            let keys = tracker.private.keys.page(offset, limit);
            let list: Vec<AuthKey<'_>> = keys.iter().map(|(k, v)| auth_key(k, *v)).collect();
            json(Status::Ok200, &list)
        }
        (b"keys", Some(b"reload")) => {
            allow(b"GET")?;
            return Ok(Handled::Op(Op::ReloadKeys));
        }
        (b"key", Some(arg)) if method == b"POST" => {
            let seconds = std::str::from_utf8(arg)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| error(Status::BadRequest400, "invalid key duration"))?;
            return generated_key(tracker, Some(seconds), now);
        }
        (b"key", Some(arg)) => {
            allow(b"DELETE")?;
            let key = Key::parse(arg).ok_or_else(|| error(Status::BadRequest400, "invalid key"))?;
            return Ok(Handled::Op(Op::RemoveKey(key)));
        }
        (b"whitelist", None) => {
            allow(b"GET")?;
            let (offset, limit) = page(req)?;
            let all = tracker.private.listed.sorted();
            let list: Vec<String> = all.iter().skip(offset).take(limit).map(hex).collect();
            json(Status::Ok200, &list)
        }
        (b"whitelist", Some(b"reload")) => {
            allow(b"GET")?;
            return Ok(Handled::Op(Op::ReloadWhitelist));
        }
        (b"whitelist", Some(hash)) => {
            let info_hash = parse_info_hash(hash)
                .ok_or_else(|| error(Status::BadRequest400, "invalid info_hash"))?;
            return match method {
                b"POST" => Ok(Handled::Op(Op::AddWhitelist(info_hash))),
                b"DELETE" => Ok(Handled::Op(Op::RemoveWhitelist(info_hash))),
                _ => Err(error(Status::MethodNotAllowed405, "method not allowed")),
            };
        }
        _ => error(Status::NotFound404, "not found"),
    };
    Ok(Handled::Reply(reply))
}

fn new_key(tracker: &Tracker, body: &[u8], now: u32) -> Result<Handled, Reply> {
    let request: NewKey = serde_json::from_slice(body)
        .map_err(|e| error(Status::BadRequest400, &format!("invalid JSON body: {e}")))?;
    match request.key {
        None => generated_key(tracker, request.seconds_valid, now),
        Some(text) => {
            let key = Key::parse(text.as_bytes()).ok_or_else(|| {
                error(
                    Status::BadRequest400,
                    "invalid key: 32 ASCII letters and digits expected",
                )
            })?;
            let valid_until = valid_until(tracker, request.seconds_valid, now)?;
            Ok(Handled::Op(Op::AddKey { key, valid_until }))
        }
    }
}

fn valid_until(tracker: &Tracker, seconds: Option<u64>, now: u32) -> Result<Option<u64>, Reply> {
    match seconds {
        None => Ok(None),
        Some(0) => Err(error(
            Status::BadRequest400,
            "invalid key duration: seconds_valid must be at least 1",
        )),
        Some(s) => match tracker.private.unix(now).checked_add(s) {
            Some(until) if until <= MAX_VALID_UNTIL => Ok(Some(until)),
            _ => Err(error(
                Status::BadRequest400,
                "invalid key duration: the key would expire after 9999-12-31 23:59:59 UTC",
            )),
        },
    }
}

fn generated_key(tracker: &Tracker, seconds: Option<u64>, now: u32) -> Result<Handled, Reply> {
    let valid_until = valid_until(tracker, seconds, now)?;
    let key = Key::generate().map_err(|e| error(Status::ServiceUnavailable503, &e))?;
    Ok(Handled::Op(Op::AddKey { key, valid_until }))
}

/// What RAM alone says about `op` (no database configured): the [`OpResult`] a database would
/// give, so [`complete`] applies it the same way. Reloads have nothing to read: `Done`.
pub fn ram_result(tracker: &Tracker, op: &Op) -> OpResult {
    match op {
        Op::AddKey { key, .. } if tracker.private.keys.get(key).is_some() => OpResult::Duplicate,
        Op::RemoveKey(key) if tracker.private.keys.get(key).is_none() => OpResult::Missing,
        Op::RemoveWhitelist(h) if !tracker.private.listed.contains(h) => OpResult::Missing,
        _ => OpResult::Done,
    }
}

/// Applies `op` to RAM when `result` says it was committed, and makes the answer.
pub fn complete(tracker: &mut Tracker, op: Op, result: OpResult) -> Reply {
    match (op, result) {
        (_, OpResult::Failed(why)) => {
            log::warn!("api: database write failed: {why}");
            error(
                Status::ServiceUnavailable503,
                "the database is not available; nothing was changed",
            )
        }
        (Op::AddKey { .. }, OpResult::Duplicate) => error(Status::Conflict409, "key exists"),
        (Op::AddKey { key, valid_until }, _) => {
            tracker.private.keys.insert(key, valid_until);
            json(Status::Ok200, &auth_key(&key, valid_until))
        }
        (Op::RemoveKey(_), OpResult::Missing) => error(Status::NotFound404, "key not known"),
        (Op::RemoveKey(key), _) => {
            tracker.private.keys.remove(&key);
            ok()
        }
        (Op::AddWhitelist(h), _) => {
            tracker.whitelist_add(h);
            ok()
        }
        (Op::RemoveWhitelist(_), OpResult::Missing) => {
            error(Status::NotFound404, "info_hash not on the whitelist")
        }
        (Op::RemoveWhitelist(h), _) => {
            tracker.whitelist_remove(&h);
            ok()
        }
        (Op::ReloadKeys, OpResult::Keys(keys)) => {
            tracker.private.keys.replace_all(keys);
            ok()
        }
        (Op::ReloadWhitelist, OpResult::Whitelist(list)) => {
            tracker.whitelist_replace(list);
            ok()
        }
        (Op::ReloadKeys | Op::ReloadWhitelist, _) => ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_time_is_written_up_to_the_year_9999_and_never_panics() {
        assert_eq!(expiry_time(0).as_deref(), Some("1970-01-01 00:00:00 UTC"));
        assert_eq!(
            expiry_time(1_796_180_568).as_deref(),
            Some("2026-12-02 03:02:48 UTC")
        );
        assert_eq!(
            expiry_time(MAX_VALID_UNTIL).as_deref(),
            Some("9999-12-31 23:59:59 UTC")
        );
        assert_eq!(expiry_time(MAX_VALID_UNTIL + 1), None);
        assert_eq!(expiry_time(i64::MAX as u64), None);
        assert_eq!(expiry_time(u64::MAX), None);
    }
}
