//! A minimal HTTP/1.x request-head parser and response-head writer (RFC 9112 subset).
//!
//! A tracker needs only the request line and a handful of headers, so [`parse_request`] reads
//! exactly that: it finds the blank line with `memchr`, splits the request line, and picks out
//! `Connection`, `X-Forwarded-For`, `X-Real-IP`, `Accept-Encoding`, `Content-Length` and
//! `Transfer-Encoding`. Everything it returns borrows from the caller's buffer; it never
//! allocates and never panics. The body is never read (a request with one is flagged by
//! [`Request::has_body`] so the server can refuse it or close after replying).
//!
//! The size limit is the caller's: [`parse_request`] returns `Ok(None)` until the head is
//! complete, and the server answers 413 when its bounded buffer fills first (opentracker
//! answers 500 past 8192 bytes).

use std::fmt;

use memchr::memchr;

use super::bencode::write_decimal;

/// The HTTP version of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// `HTTP/1.0`, or a request line without a version (HTTP/0.9 style `GET /path`), which
    /// opentracker also serves.
    Http10,
    /// `HTTP/1.1`.
    Http11,
}

/// A parsed request head. Every slice borrows from the buffer given to [`parse_request`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// The method token exactly as sent (`GET`, `POST`, `get`, ...): the server decides.
    pub method: &'a [u8],
    /// The raw request target, not decoded. With the space-before-`?` quirk (see
    /// [`parse_request`]) it spans both tokens, e.g. `/announce ?info_hash=...`.
    pub target: &'a [u8],
    /// The target up to the first `?` (all of it when there is none), not decoded.
    pub path: &'a [u8],
    /// The bytes after the first `?` (empty when there is none), not decoded.
    pub query: &'a [u8],
    /// The protocol version.
    pub version: Version,
    /// Whether the connection may stay open after the response: HTTP/1.1 unless a
    /// `Connection` header lists `close`; HTTP/1.0 only when one lists `keep-alive` and none
    /// lists `close` (RFC 9112 §9.3).
    pub keep_alive: bool,
    /// The value of the last `X-Forwarded-For` header, trimmed of spaces/tabs (the header is a
    /// list; the caller picks the element it trusts).
    pub x_forwarded_for: Option<&'a [u8]>,
    /// The value of the last `X-Real-IP` header, trimmed.
    pub x_real_ip: Option<&'a [u8]>,
    /// The value of the last `Accept-Encoding` header, trimmed; see [`accepts_gzip`].
    pub accept_encoding: Option<&'a [u8]>,
    /// True if the request announces a body: a `Content-Length` other than 0 or any
    /// `Transfer-Encoding` header. The body is not part of the parsed head.
    pub has_body: bool,
}

/// Why a request head was rejected. Every variant answers 400 ([`HttpError::status`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpError {
    /// The request line is not `METHOD SP target [SP HTTP/1.x]`: too few or too many tokens,
    /// a method that is not an RFC 9110 token, or control bytes in the line.
    BadRequestLine,
    /// The version is neither `HTTP/1.0` nor `HTTP/1.1` (e.g. `HTTP/2.0`, `FOO`).
    BadVersion,
    /// A header line without `:`, with an empty name or whitespace in the name, a folded
    /// (obs-fold) continuation line, or a `Content-Length` that is not decimal digits.
    BadHeader,
}

impl HttpError {
    /// The status to answer with: 400 Bad Request for every malformed head.
    pub fn status(&self) -> Status {
        Status::BadRequest400
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HttpError::BadRequestLine => "malformed HTTP request line",
            HttpError::BadVersion => "unsupported HTTP version",
            HttpError::BadHeader => "malformed HTTP header line",
        })
    }
}

impl std::error::Error for HttpError {}

/// The response statuses the tracker sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// 200: announce, scrape, stats, and bencoded `failure reason` answers (BEP 3).
    Ok200,
    /// 302: `GET /` with a configured redirect URL (as opentracker).
    Found302,
    /// 400: malformed request or query.
    BadRequest400,
    /// 403: stats or API from an address not allowed.
    Forbidden403,
    /// 404: unknown path.
    NotFound404,
    /// 405: a method other than GET.
    MethodNotAllowed405,
    /// 413: the head did not fit the connection's read buffer.
    PayloadTooLarge413,
    /// 429: rate limited.
    TooManyRequests429,
    /// 500: internal error.
    InternalError500,
    /// 503: overloaded or shutting down.
    ServiceUnavailable503,
}

impl Status {
    /// The numeric code, e.g. 404.
    pub fn code(self) -> u16 {
        match self {
            Status::Ok200 => 200,
            Status::Found302 => 302,
            Status::BadRequest400 => 400,
            Status::Forbidden403 => 403,
            Status::NotFound404 => 404,
            Status::MethodNotAllowed405 => 405,
            Status::PayloadTooLarge413 => 413,
            Status::TooManyRequests429 => 429,
            Status::InternalError500 => 500,
            Status::ServiceUnavailable503 => 503,
        }
    }

    /// The reason phrase of RFC 9110 §15, e.g. `Not Found`.
    pub fn reason(self) -> &'static str {
        match self {
            Status::Ok200 => "OK",
            Status::Found302 => "Found",
            Status::BadRequest400 => "Bad Request",
            Status::Forbidden403 => "Forbidden",
            Status::NotFound404 => "Not Found",
            Status::MethodNotAllowed405 => "Method Not Allowed",
            Status::PayloadTooLarge413 => "Payload Too Large",
            Status::TooManyRequests429 => "Too Many Requests",
            Status::InternalError500 => "Internal Server Error",
            Status::ServiceUnavailable503 => "Service Unavailable",
        }
    }
}

/// RFC 9110 §5.6.2 `tchar`: the bytes allowed in a method or header name.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `s` without leading and trailing spaces/tabs.
fn trim_ows(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_ows(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|&b| !is_ows(b)).map_or(start, |i| i + 1);
    &s[start..end]
}

/// Finds the next line in `buf[from..]`: returns (line without its `\n` and optional `\r`,
/// offset just past the `\n`), or `None` if no `\n` follows.
fn next_line(buf: &[u8], from: usize) -> Option<(&[u8], usize)> {
    let rest = &buf[from..];
    let nl = memchr(b'\n', rest)?;
    let line = &rest[..nl];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Some((line, from + nl + 1))
}

/// Parses one request head at the start of `buf`.
///
/// Returns `Ok(None)` while the head is incomplete (no blank line yet), or
/// `Ok(Some((request, consumed)))` where `consumed` is the length in bytes of the head
/// including its blank line, so `&buf[consumed..]` is whatever follows (a body, or a pipelined
/// request). Lines may end in CRLF or bare LF, so the blank line may be `\r\n\r\n`, `\n\n`,
/// `\r\n\n` or `\n\r\n`. Empty lines before the request line are skipped (RFC 9112 §2.2).
///
/// Request line: `METHOD SP target [SP HTTP/1.0|HTTP/1.1]`, tokens separated by one or more
/// spaces; no version means [`Version::Http10`] (HTTP/0.9 style, served by opentracker too).
/// Quirk kept from opentracker (`ot_http.c`, "stupid clients"): `GET /announce ?info_hash=...
/// HTTP/1.1`, where the token after a `?`-less path starts with `?`, takes that token as the
/// query (with or without a version after it).
///
/// Headers: names are matched case-insensitively, values are trimmed of spaces/tabs, unknown
/// headers are ignored; see [`Request`] for the ones read.
///
/// Errors (all 400): [`HttpError::BadRequestLine`], [`HttpError::BadVersion`],
/// [`HttpError::BadHeader`]. An error is reported as soon as the offending line is complete,
/// and junk whose first bytes cannot be a method is rejected even before its first line ends.
/// No size limit is applied here.
pub fn parse_request(buf: &[u8]) -> Result<Option<(Request<'_>, usize)>, HttpError> {
    // Skip empty lines before the request line.
    let mut pos = 0;
    let (line, mut pos) = loop {
        match next_line(buf, pos) {
            Some((b"", next)) => pos = next,
            Some(found) => break found,
            None => {
                check_partial_method(&buf[pos..])?;
                return Ok(None);
            }
        }
    };
    let mut req = parse_request_line(line)?;

    let mut conn_close = false;
    let mut conn_keep_alive = false;
    loop {
        let Some((line, next)) = next_line(buf, pos) else {
            return Ok(None);
        };
        pos = next;
        if line.is_empty() {
            break;
        }
        let (name, value) = split_header(line)?;
        if name.eq_ignore_ascii_case(b"connection") {
            conn_close |= header_list_contains_token(value, b"close");
            conn_keep_alive |= header_list_contains_token(value, b"keep-alive");
        } else if name.eq_ignore_ascii_case(b"x-forwarded-for") {
            req.x_forwarded_for = Some(value);
        } else if name.eq_ignore_ascii_case(b"x-real-ip") {
            req.x_real_ip = Some(value);
        } else if name.eq_ignore_ascii_case(b"accept-encoding") {
            req.accept_encoding = Some(value);
        } else if name.eq_ignore_ascii_case(b"content-length") {
            if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
                return Err(HttpError::BadHeader);
            }
            if value.iter().any(|&b| b != b'0') {
                req.has_body = true;
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            req.has_body = true;
        }
    }
    req.keep_alive = match req.version {
        Version::Http11 => !conn_close,
        Version::Http10 => conn_keep_alive && !conn_close,
    };
    Ok(Some((req, pos)))
}

/// Rejects an unfinished first line whose method part already contains a non-token byte
/// (TLS handshakes, binary junk), so the caller need not wait for its buffer to fill.
fn check_partial_method(partial: &[u8]) -> Result<(), HttpError> {
    let method_end = memchr(b' ', partial).unwrap_or(partial.len());
    let method = &partial[..method_end];
    // A trailing '\r' may be the first half of a line end not yet received.
    let method = method.strip_suffix(b"\r").unwrap_or(method);
    if method.iter().all(|&b| is_tchar(b)) {
        Ok(())
    } else {
        Err(HttpError::BadRequestLine)
    }
}

/// Parses `METHOD SP target [SP version]` (line end already removed).
fn parse_request_line(line: &[u8]) -> Result<Request<'_>, HttpError> {
    if line.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(HttpError::BadRequestLine);
    }
    // Up to five tokens are meaningful; more is an error.
    let mut tokens: [&[u8]; 5] = [&[]; 5];
    let mut count = 0;
    for token in line.split(|&b| b == b' ').filter(|t| !t.is_empty()) {
        if count == tokens.len() {
            return Err(HttpError::BadRequestLine);
        }
        tokens[count] = token;
        count += 1;
    }
    let method = tokens[0];
    if count < 2 || !method.iter().all(|&b| is_tchar(b)) {
        return Err(HttpError::BadRequestLine);
    }
    let target_token = tokens[1];

    let quirk = count >= 3 && tokens[2].starts_with(b"?") && !target_token.contains(&b'?');
    let (target, path, query, version_token) = if quirk {
        if count > 4 {
            return Err(HttpError::BadRequestLine);
        }
        // Both tokens are sub-slices of `line`, so the span between them is too.
        let start = subslice_offset(line, target_token);
        let end = subslice_offset(line, tokens[2]) + tokens[2].len();
        let version = (count == 4).then_some(tokens[3]);
        (&line[start..end], target_token, &tokens[2][1..], version)
    } else {
        if count > 3 {
            return Err(HttpError::BadRequestLine);
        }
        let (path, query) = match memchr(b'?', target_token) {
            Some(q) => (&target_token[..q], &target_token[q + 1..]),
            None => (target_token, &target_token[target_token.len()..]),
        };
        let version = (count == 3).then_some(tokens[2]);
        (target_token, path, query, version)
    };
    let version = match version_token {
        None => Version::Http10,
        Some(b"HTTP/1.1") => Version::Http11,
        Some(b"HTTP/1.0") => Version::Http10,
        Some(_) => return Err(HttpError::BadVersion),
    };
    Ok(Request {
        method,
        target,
        path,
        query,
        version,
        keep_alive: false,
        x_forwarded_for: None,
        x_real_ip: None,
        accept_encoding: None,
        has_body: false,
    })
}

/// Byte offset of `sub` inside `outer`; `sub` must be a sub-slice of `outer` (it is, at every
/// call site: tokens come from splitting `outer`). Saturates instead of panicking.
fn subslice_offset(outer: &[u8], sub: &[u8]) -> usize {
    (sub.as_ptr() as usize)
        .saturating_sub(outer.as_ptr() as usize)
        .min(outer.len())
}

/// Splits `Name: value` into (name, trimmed value).
fn split_header(line: &[u8]) -> Result<(&[u8], &[u8]), HttpError> {
    let colon = memchr(b':', line).ok_or(HttpError::BadHeader)?;
    let name = &line[..colon];
    // Empty names, whitespace before the colon and obs-fold lines (leading whitespace) are
    // rejected, as RFC 9112 §5.1/§5.2 allow.
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Err(HttpError::BadHeader);
    }
    Ok((name, trim_ows(&line[colon + 1..])))
}

/// True if the comma-separated header list `value` (e.g. a `Connection` value) has an element
/// equal to `token`, compared case-insensitively after trimming spaces/tabs (RFC 9110 §5.6.1).
/// Elements with parameters (`a;b=c`) only match their full text.
pub fn header_list_contains_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|element| trim_ows(element).eq_ignore_ascii_case(token))
}

/// Whether a gzip-encoded body is acceptable under the `Accept-Encoding` value given
/// (RFC 9110 §12.5.3). `None` (no header) means no.
///
/// Elements are `coding[;q=weight]`, names case-insensitive. An element for `gzip` or
/// `x-gzip` decides (the highest weight among them); otherwise `*` decides; otherwise no. A
/// weight of 0 (`q=0`, `q=0.0`, `q=0.000`) means "not acceptable"; any other valid weight, or
/// none, means acceptable. Elements with a malformed weight are ignored; `identity` plays no
/// part. Unlike opentracker, which looks for the substring `gzip` anywhere in the request.
pub fn accepts_gzip(accept_encoding: Option<&[u8]>) -> bool {
    let Some(value) = accept_encoding else {
        return false;
    };
    let mut gzip: Option<bool> = None;
    let mut star: Option<bool> = None;
    for element in value.split(|&b| b == b',') {
        let mut parts = element.split(|&b| b == b';');
        let coding = trim_ows(parts.next().unwrap_or_default());
        let mut accepted = Some(true);
        for param in parts {
            let param = trim_ows(param);
            let (name, weight) = match memchr(b'=', param) {
                Some(eq) => (trim_ows(&param[..eq]), trim_ows(&param[eq + 1..])),
                None => (param, &param[param.len()..]),
            };
            if name.eq_ignore_ascii_case(b"q") {
                accepted = parse_qvalue_nonzero(weight);
            }
        }
        let Some(accepted) = accepted else { continue };
        let slot = if coding.eq_ignore_ascii_case(b"gzip") || coding.eq_ignore_ascii_case(b"x-gzip")
        {
            &mut gzip
        } else if coding == b"*" {
            &mut star
        } else {
            continue;
        };
        *slot = Some(slot.unwrap_or(false) || accepted);
    }
    gzip.or(star).unwrap_or(false)
}

/// Parses an RFC 9110 §12.4.2 qvalue (`0[.ddd]` or `1[.000]`): `Some(weight > 0)`, or `None`
/// when malformed.
fn parse_qvalue_nonzero(q: &[u8]) -> Option<bool> {
    let (int, frac) = match memchr(b'.', q) {
        Some(dot) => (&q[..dot], &q[dot + 1..]),
        None => (q, &q[q.len()..]),
    };
    if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    match int {
        b"0" => Some(frac.iter().any(|&b| b != b'0')),
        b"1" if frac.iter().all(|&b| b == b'0') => Some(true),
        _ => None,
    }
}

/// Appends `s` to `out` without CR, LF or NUL, so a header name or value from configuration
/// cannot split the response (header injection).
fn put_header_text(out: &mut Vec<u8>, s: &str) {
    out.extend(s.bytes().filter(|&b| !matches!(b, b'\r' | b'\n' | 0)));
}

/// Writes a response head:
/// `HTTP/1.1 <code> <reason>\r\nContent-Type: <content_type>\r\nContent-Length: <n>\r\n`
/// `Connection: close|keep-alive\r\n`, then each `extra_headers` pair as `Name: value\r\n`, then
/// `\r\n`. `content_length` is the body size in bytes. `Connection: keep-alive` is written
/// too because HTTP/1.0 clients only keep a connection open when told. CR, LF and NUL are
/// dropped from `content_type` and the extra headers.
pub fn write_head(
    out: &mut Vec<u8>,
    status: Status,
    content_type: &str,
    content_length: usize,
    keep_alive: bool,
    extra_headers: &[(&str, &str)],
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    write_decimal(out, u64::from(status.code()));
    out.push(b' ');
    out.extend_from_slice(status.reason().as_bytes());
    out.extend_from_slice(b"\r\nContent-Type: ");
    put_header_text(out, content_type);
    out.extend_from_slice(b"\r\nContent-Length: ");
    write_decimal(out, content_length as u64);
    out.extend_from_slice(if keep_alive {
        b"\r\nConnection: keep-alive\r\n"
    } else {
        b"\r\nConnection: close\r\n"
    });
    for (name, value) in extra_headers {
        put_header_text(out, name);
        out.extend_from_slice(b": ");
        put_header_text(out, value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes a complete `text/plain` error response whose body is `<code> <reason>\n`
/// (e.g. `404 Not Found\n`).
pub fn write_error(out: &mut Vec<u8>, status: Status, keep_alive: bool) {
    let reason = status.reason();
    // "NNN " + reason + "\n"
    let body_len = 4 + reason.len() + 1;
    write_head(out, status, "text/plain", body_len, keep_alive, &[]);
    write_decimal(out, u64::from(status.code()));
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.push(b'\n');
}

/// Writes a complete `302 Found` response with `Location: <location>` and an empty body (as
/// opentracker's `GET /` with `tracker.redirect_url`). CR, LF and NUL are dropped from
/// `location`.
pub fn write_redirect(out: &mut Vec<u8>, location: &str, keep_alive: bool) {
    write_head(
        out,
        Status::Found302,
        "text/plain",
        0,
        keep_alive,
        &[("Location", location)],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const H1: &str = "q%02%1A%16m%F5%F9%F9%D7I%07%C6%BE%9A%A4%1B%9E%10D%E9";

    fn parse_ok(buf: &[u8]) -> (Request<'_>, usize) {
        parse_request(buf)
            .expect("valid head")
            .expect("complete head")
    }

    #[test]
    fn qbittorrent_announce() {
        let head = format!(
            "GET /announce?info_hash={H1}&peer_id=-qB4520-k8Rj3xkFmS!v&port=51413&uploaded=0&downloaded=0&left=1000&corrupt=0&key=5A3F1C2B&event=started&numwant=200&compact=1&no_peer_id=1&supportcrypto=1&redundant=0 HTTP/1.1\r\n\
             Host: tracker.example.org:6969\r\n\
             User-Agent: qBittorrent/4.5.2\r\n\
             Accept-Encoding: gzip\r\n\
             Connection: close\r\n\
             \r\n"
        );
        let (req, consumed) = parse_ok(head.as_bytes());
        assert_eq!(consumed, head.len());
        assert_eq!(req.method, b"GET");
        assert_eq!(req.path, b"/announce");
        assert!(req.query.starts_with(b"info_hash=q%02%1A"));
        assert!(req.query.ends_with(b"&redundant=0"));
        assert_eq!(req.target.len(), "/announce?".len() + req.query.len());
        assert_eq!(req.version, Version::Http11);
        assert!(!req.keep_alive);
        assert_eq!(req.accept_encoding, Some(&b"gzip"[..]));
        assert!(accepts_gzip(req.accept_encoding));
        assert_eq!(req.x_forwarded_for, None);
        assert!(!req.has_body);
    }

    #[test]
    fn transmission_announce() {
        let head = format!(
            "GET /announce?info_hash={H1}&peer_id=-TR4050-9z1nqdh6ka0w&port=51413&uploaded=0&downloaded=0&left=0&numwant=80&key=1B6E7C9A&compact=1&supportcrypto=1&event=started HTTP/1.1\r\n\
             Host: tracker.example.org\r\n\
             User-Agent: Transmission/4.0.5\r\n\
             Accept: */*\r\n\
             Accept-Encoding: deflate, gzip, br, zstd\r\n\
             \r\n"
        );
        let (req, consumed) = parse_ok(head.as_bytes());
        assert_eq!(consumed, head.len());
        assert_eq!(req.path, b"/announce");
        assert!(req.query.ends_with(b"&event=started"));
        assert!(req.keep_alive, "HTTP/1.1 defaults to keep-alive");
        assert_eq!(req.accept_encoding, Some(&b"deflate, gzip, br, zstd"[..]));
        assert!(accepts_gzip(req.accept_encoding));
    }

    #[test]
    fn aria2_announce() {
        let head = format!(
            "GET /announce?info_hash={H1}&peer_id=A2-1-36-0-%E1%8F%02%7Bc%C4%A9%00%DD%10&uploaded=0&downloaded=0&left=1048576&compact=1&key=A2c9Rq0Hb1nPx7Wz&numwant=50&no_peer_id=1&port=6881&event=started&supportcrypto=1 HTTP/1.1\r\n\
             User-Agent: aria2/1.36.0\r\n\
             Accept: */*\r\n\
             Host: tracker.example.org:6969\r\n\
             Pragma: no-cache\r\n\
             Cache-Control: no-cache\r\n\
             \r\n"
        );
        let (req, consumed) = parse_ok(head.as_bytes());
        assert_eq!(consumed, head.len());
        assert!(req.keep_alive);
        assert_eq!(req.accept_encoding, None);
        assert!(!accepts_gzip(req.accept_encoding));
        assert!(req.query.contains(&b'&'));
    }

    #[test]
    fn curl_scrape_http10() {
        let head = format!(
            "GET /scrape?info_hash={H1} HTTP/1.0\r\nHost: 127.0.0.1:6969\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n"
        );
        let (req, _) = parse_ok(head.as_bytes());
        assert_eq!(req.path, b"/scrape");
        assert_eq!(req.query, format!("info_hash={H1}").as_bytes());
        assert_eq!(req.version, Version::Http10);
        assert!(!req.keep_alive, "HTTP/1.0 defaults to close");

        let ka = b"GET /stats HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n";
        let (req, _) = parse_ok(ka);
        assert!(req.keep_alive);
        assert_eq!(req.query, b"");
        assert_eq!(req.path, b"/stats");
    }

    #[test]
    fn connection_token_lists() {
        let (req, _) = parse_ok(b"GET / HTTP/1.1\r\nConnection: Upgrade, CLOSE\r\n\r\n");
        assert!(!req.keep_alive);
        let (req, _) = parse_ok(b"GET / HTTP/1.1\r\nConnection: closed\r\n\r\n");
        assert!(req.keep_alive, "`closed` is not `close`");
        // close wins over keep-alive, across several Connection headers.
        let (req, _) =
            parse_ok(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nconnection:\tclose \r\n\r\n");
        assert!(!req.keep_alive);
    }

    #[test]
    fn proxy_headers_take_the_last() {
        let head = b"GET /announce HTTP/1.1\r\n\
            X-Forwarded-For: 203.0.113.9\r\n\
            x-forwarded-for:  198.51.100.7, 10.0.0.2 \t\r\n\
            X-REAL-IP: 192.0.2.1\r\n\r\n";
        let (req, _) = parse_ok(head);
        assert_eq!(req.x_forwarded_for, Some(&b"198.51.100.7, 10.0.0.2"[..]));
        assert_eq!(req.x_real_ip, Some(&b"192.0.2.1"[..]));
    }

    #[test]
    fn body_detection() {
        let (req, consumed) =
            parse_ok(b"POST /announce HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
        assert_eq!(req.method, b"POST");
        assert!(req.has_body);
        assert_eq!(consumed, 46);
        let (req, _) = parse_ok(b"GET / HTTP/1.1\r\nContent-Length: 000\r\n\r\n");
        assert!(!req.has_body);
        let (req, _) = parse_ok(b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert!(req.has_body);
        assert_eq!(
            parse_request(b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
            Err(HttpError::BadHeader)
        );
        assert_eq!(
            parse_request(b"GET / HTTP/1.1\r\nContent-Length:\r\n\r\n"),
            Err(HttpError::BadHeader)
        );
    }

    #[test]
    fn incomplete_heads() {
        let full = b"GET /announce?info_hash=abc HTTP/1.1\r\nHost: x\r\n\r\n";
        for cut in 0..full.len() {
            assert_eq!(parse_request(&full[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(parse_ok(full).1, full.len());
        // The last line end half received.
        assert_eq!(parse_request(b"GET / HTTP/1.1\r\n\r"), Ok(None));
    }

    #[test]
    fn line_end_variants() {
        for (head, len) in [
            (&b"GET /a HTTP/1.1\r\n\r\nX"[..], 19),
            (b"GET /a HTTP/1.1\n\nX", 17),
            (b"GET /a HTTP/1.1\r\n\nX", 18),
            (b"GET /a HTTP/1.1\n\r\nX", 18),
            (b"GET /a HTTP/1.1\nHost: h\n\nX", 25),
            (b"GET /a\r\n\r\nX", 10),
        ] {
            let (req, consumed) = parse_ok(head);
            assert_eq!(consumed, len, "{:?}", String::from_utf8_lossy(head));
            assert_eq!(&head[consumed..], b"X");
            assert_eq!(req.path, b"/a");
        }
    }

    #[test]
    fn leading_empty_lines_skipped() {
        let (req, consumed) = parse_ok(b"\r\n\nGET /a HTTP/1.1\r\n\r\n");
        assert_eq!(req.path, b"/a");
        assert_eq!(consumed, 22);
        assert_eq!(parse_request(b"\r\n\r\n"), Ok(None));
    }

    #[test]
    fn pipelined_heads() {
        let buf = b"GET /announce?info_hash=a HTTP/1.1\r\nHost: h\r\n\r\nGET /scrape?info_hash=b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
        let (first, consumed) = parse_ok(buf);
        assert_eq!(first.path, b"/announce");
        assert!(first.keep_alive);
        assert_eq!(consumed, 47);
        assert!(buf[consumed..].starts_with(b"GET /scrape"));
        let (second, consumed2) = parse_ok(&buf[consumed..]);
        assert_eq!(second.path, b"/scrape");
        assert_eq!(second.query, b"info_hash=b");
        assert!(!second.keep_alive);
        assert_eq!(consumed + consumed2, buf.len());
    }

    #[test]
    fn missing_version_is_http10() {
        let (req, consumed) = parse_ok(b"GET /scrape\r\n\r\n");
        assert_eq!(req.version, Version::Http10);
        assert!(!req.keep_alive);
        assert_eq!(req.target, b"/scrape");
        assert_eq!(consumed, 15);
    }

    #[test]
    fn space_before_question_mark_quirk() {
        let (req, _) = parse_ok(b"GET /announce ?info_hash=abc&port=1 HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(req.path, b"/announce");
        assert_eq!(req.query, b"info_hash=abc&port=1");
        assert_eq!(req.target, b"/announce ?info_hash=abc&port=1");
        assert_eq!(req.version, Version::Http11);
        // Without a version too.
        let (req, _) = parse_ok(b"GET /announce ?info_hash=abc\r\n\r\n");
        assert_eq!(req.query, b"info_hash=abc");
        assert_eq!(req.version, Version::Http10);
        // A token not starting with '?' is not the quirk.
        assert_eq!(
            parse_request(b"GET /announce info_hash=abc HTTP/1.1\r\n\r\n"),
            Err(HttpError::BadRequestLine)
        );
        // The path already has a query: no quirk, too many tokens.
        assert_eq!(
            parse_request(b"GET /announce?a=1 ?b=2 HTTP/1.1\r\n\r\n"),
            Err(HttpError::BadRequestLine)
        );
        assert_eq!(
            parse_request(b"GET /announce ?a=1 HTTP/1.1 extra\r\n\r\n"),
            Err(HttpError::BadRequestLine)
        );
        assert_eq!(
            parse_request(b"GET /announce ?a=1 HTTP/2.0\r\n\r\n"),
            Err(HttpError::BadVersion)
        );
    }

    #[test]
    fn bad_request_lines() {
        for head in [
            &b"GET\r\n\r\n"[..],
            b"   \r\n\r\n",
            b"GET /a HTTP/1.1 x\r\n\r\n",
            b"GE(T /a HTTP/1.1\r\n\r\n",
            b"GET /a\0b HTTP/1.1\r\n\r\n",
            b"GET /a\rb HTTP/1.1\r\n\r\n",
            b"GET\t/a HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(
                parse_request(head),
                Err(HttpError::BadRequestLine),
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
        // Junk is rejected before any line end arrives.
        assert_eq!(
            parse_request(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
            Err(HttpError::BadRequestLine)
        );
        assert_eq!(
            parse_request(b"\r\n\x00\x00"),
            Err(HttpError::BadRequestLine)
        );
        // ... but a plausible method prefix waits.
        assert_eq!(parse_request(b"GE"), Ok(None));
        assert_eq!(parse_request(b"GET /announce?info"), Ok(None));
    }

    #[test]
    fn bad_versions() {
        for head in [
            &b"GET / HTTP/2.0\r\n\r\n"[..],
            b"GET / FOO\r\n\r\n",
            b"GET / http/1.1\r\n\r\n",
            b"GET / HTTP/1.2\r\n\r\n",
        ] {
            assert_eq!(parse_request(head), Err(HttpError::BadVersion));
        }
    }

    #[test]
    fn bad_headers() {
        for head in [
            &b"GET / HTTP/1.1\r\nNoColonHere\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\n: empty-name\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost : h\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n",
        ] {
            assert_eq!(parse_request(head), Err(HttpError::BadHeader));
        }
        // Reported as soon as the line is complete, before the blank line.
        assert_eq!(
            parse_request(b"GET / HTTP/1.1\r\nbroken\r\nHost: h"),
            Err(HttpError::BadHeader)
        );
        assert_eq!(HttpError::BadHeader.status(), Status::BadRequest400);
        assert_eq!(HttpError::BadVersion.status().code(), 400);
        assert_eq!(
            HttpError::BadRequestLine.to_string(),
            "malformed HTTP request line"
        );
    }

    #[test]
    fn huge_header_lines() {
        let big = "a".repeat(64 * 1024);
        let head = format!("GET /announce HTTP/1.1\r\nX-Junk: {big}\r\nConnection: close\r\n\r\n");
        let (req, consumed) = parse_ok(head.as_bytes());
        assert_eq!(consumed, head.len());
        assert!(!req.keep_alive);
        // Unterminated: incomplete, the caller's limit decides (413).
        let partial = format!("GET /announce HTTP/1.1\r\nX-Junk: {big}");
        assert_eq!(parse_request(partial.as_bytes()), Ok(None));
        let long_target = format!("GET /announce?{big} HTTP/1.1\r\n\r\n");
        assert_eq!(parse_ok(long_target.as_bytes()).0.query.len(), big.len());
    }

    #[test]
    fn header_list_tokens() {
        assert!(header_list_contains_token(b"close", b"close"));
        assert!(header_list_contains_token(
            b"Keep-Alive, Upgrade",
            b"upgrade"
        ));
        assert!(header_list_contains_token(
            b" x ,\tKEEP-ALIVE\t",
            b"keep-alive"
        ));
        assert!(!header_list_contains_token(
            b"keep-alive-ish",
            b"keep-alive"
        ));
        assert!(!header_list_contains_token(b"", b"close"));
        assert!(!header_list_contains_token(b"clo se", b"close"));
    }

    #[test]
    fn gzip_negotiation() {
        let yes: &[&[u8]] = &[
            b"gzip",
            b"GZIP",
            b"x-gzip",
            b"deflate, gzip, br, zstd",
            b"gzip, deflate",
            b"gzip;q=1.0, identity; q=0.5, *;q=0",
            b"*",
            b"br;q=1, *;q=0.1",
            b"gzip ; q=0.001",
            b"gzip;Q=1",
            b"gzip;level=1",
            b"gzip;q=0, x-gzip;q=0.5",
        ];
        for v in yes {
            assert!(accepts_gzip(Some(v)), "{:?}", String::from_utf8_lossy(v));
        }
        let no: &[&[u8]] = &[
            b"",
            b"identity",
            b"deflate, br",
            b"gzip;q=0",
            b"gzip;q=0.0",
            b"gzip; q=0.000",
            b"gzip;q=0, *",
            b"*;q=0",
            b"gzipfan",
            b"gzip;q=2",
            b"gzip;q=0.0001",
            b"gzip;q=",
            b"gzip;q=abc",
        ];
        for v in no {
            assert!(!accepts_gzip(Some(v)), "{:?}", String::from_utf8_lossy(v));
        }
        assert!(!accepts_gzip(None));
    }

    #[test]
    fn statuses() {
        assert_eq!(Status::Ok200.code(), 200);
        assert_eq!(Status::PayloadTooLarge413.code(), 413);
        assert_eq!(Status::PayloadTooLarge413.reason(), "Payload Too Large");
        assert_eq!(Status::ServiceUnavailable503.code(), 503);
        assert_eq!(Status::Found302.reason(), "Found");
    }

    #[test]
    fn write_head_bytes() {
        let mut out = Vec::new();
        write_head(&mut out, Status::Ok200, "text/plain", 98, false, &[]);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 98\r\nConnection: close\r\n\r\n"
        );
        out.clear();
        write_head(
            &mut out,
            Status::Ok200,
            "text/plain",
            0,
            true,
            &[("Content-Encoding", "gzip")],
        );
        assert_eq!(
            out,
            &b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 0\r\nConnection: keep-alive\r\nContent-Encoding: gzip\r\n\r\n"[..]
        );
    }

    #[test]
    fn write_error_bytes() {
        let mut out = Vec::new();
        write_error(&mut out, Status::NotFound404, false);
        assert_eq!(
            out,
            &b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 14\r\nConnection: close\r\n\r\n404 Not Found\n"[..]
        );
        out.clear();
        write_error(&mut out, Status::PayloadTooLarge413, true);
        let text = std::str::from_utf8(&out).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert_eq!(body, "413 Payload Too Large\n");
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
    }

    #[test]
    fn write_redirect_bytes_and_injection() {
        let mut out = Vec::new();
        write_redirect(&mut out, "https://example.invalid/", false);
        assert_eq!(
            out,
            &b"HTTP/1.1 302 Found\r\nContent-Type: text/plain\r\nContent-Length: 0\r\nConnection: close\r\nLocation: https://example.invalid/\r\n\r\n"[..]
        );
        out.clear();
        write_redirect(&mut out, "https://x/\r\nSet-Cookie: a=b", true);
        assert!(out.ends_with(b"Location: https://x/Set-Cookie: a=b\r\n\r\n"));
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        const TOKENS: &[&[u8]] = &[
            b"GET",
            b" ",
            b"/announce",
            b"?",
            b"HTTP/1.1",
            b"HTTP/1.0",
            b"\r\n",
            b"\n",
            b"\r",
            b":",
            b"Connection",
            b"close",
            b"Content-Length",
            b"0",
            b"X-Forwarded-For",
            b"\t",
            b",",
            b"a=b",
            b"&",
        ];

        proptest! {
            #[test]
            fn parse_request_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
                if let Ok(Some((req, consumed))) = parse_request(&bytes) {
                    prop_assert!(consumed <= bytes.len());
                    prop_assert!(req.path.len() <= req.target.len());
                }
            }

            #[test]
            fn parse_request_never_panics_on_http_like_input(
                parts in proptest::collection::vec(
                    proptest::sample::select(TOKENS),
                    0..40,
                )
            ) {
                let bytes = parts.concat();
                if let Ok(Some((_, consumed))) = parse_request(&bytes) {
                    prop_assert!(consumed <= bytes.len());
                }
            }

            #[test]
            fn complete_prefix_stays_complete(extra in proptest::collection::vec(any::<u8>(), 0..64)) {
                // Appending bytes after a complete head never changes the parse.
                let head = b"GET /announce?x=1 HTTP/1.1\r\nHost: h\r\n\r\n";
                let mut buf = head.to_vec();
                buf.extend_from_slice(&extra);
                let (req, consumed) = parse_request(&buf).unwrap().unwrap();
                prop_assert_eq!(consumed, head.len());
                prop_assert_eq!(req.query, &b"x=1"[..]);
            }

            #[test]
            fn accepts_gzip_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
                let _ = accepts_gzip(Some(&bytes));
                let _ = header_list_contains_token(&bytes, b"close");
            }
        }
    }
}
