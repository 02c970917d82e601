//! A minimal HTTP/1.x request-head parser and response-head writer (RFC 9112 subset).
//!
//! A tracker needs only the request line and a handful of headers, so [`parse_request`] reads
//! exactly that: it finds the blank line with `memchr`, splits the request line, and picks out
//! `Connection`, `X-Forwarded-For`, `X-Real-IP`, `Accept-Encoding`, `Content-Length`,
//! `Transfer-Encoding` and `Authorization` (for the REST API). Everything it returns borrows from the caller's buffer; it never
//! allocates and never panics. The body is never read (a request with one is flagged by
//! [`Request::has_body`] so the server can refuse it or close after replying).
//!
//! The size limit is the caller's: [`parse_request`] returns `Ok(None)` until the head is
//! complete, and the server answers 413 when its bounded buffer fills first (opentracker
//! answers 500 past 8192 bytes). The number of header lines is capped by
//! [`parse_request_with`] (`http.max_header_lines`; 431 beyond it).
//!
//! A head that arrives in pieces (a byte at a time, at worst) is framed by a [`HeadScan`] kept
//! with the connection: each call looks only at the bytes that arrived since the last one and
//! checks each line once as it completes, with the same rules as the parser, so the server
//! hands the buffer to [`parse_request_with`] once, when the head is complete or wrong, and the
//! work per byte received stays constant (a parser restarted from the first byte on every read
//! costs the square of the head's length).

use std::fmt;

use memchr::memchr;

use super::bencode::write_decimal;

/// How many `X-Forwarded-For` header lines before the last one a [`Request`] keeps.
pub const EARLIER_FORWARDED: usize = 3;

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
    /// The target up to the first `?` (all of it when there is none), not decoded. For an
    /// absolute-form target (`http://host/announce?...`, RFC 9112 §3.2.2) the scheme and
    /// authority are left out, so it routes like the origin form (`/announce`).
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
    /// The values of the up to [`EARLIER_FORWARDED`] `X-Forwarded-For` headers before the last,
    /// most recent last, empty where there are fewer (a proxy that adds its own header line,
    /// as HAProxy does, instead of appending to the list). Read together with
    /// [`Request::x_forwarded_for`] they are one list (RFC 9110 §5.3); more lines lose the
    /// earliest ones.
    pub x_forwarded_for_earlier: [&'a [u8]; EARLIER_FORWARDED],
    /// The value of the last `X-Real-IP` header, trimmed.
    pub x_real_ip: Option<&'a [u8]>,
    /// The value of the last `Accept-Encoding` header, trimmed; see [`accepts_gzip`].
    pub accept_encoding: Option<&'a [u8]>,
    /// True if the request announces a body: a `Content-Length` other than 0 or any
    /// `Transfer-Encoding` header. The body is not part of the parsed head.
    pub has_body: bool,
    /// The value of the last `Content-Length` header (bytes; saturates at `u64::MAX`), `None`
    /// without one. The body itself is not part of the parsed head: it follows at the offset
    /// [`parse_request`] returns.
    pub content_length: Option<u64>,
    /// True when a `Transfer-Encoding` header was sent (a body of unknown framing for us).
    pub transfer_encoding: bool,
    /// The value of the last `Authorization` header, trimmed (e.g. `Bearer SECRET`). Secret: never
    /// log it.
    pub authorization: Option<&'a [u8]>,
}

/// Why a request head was rejected. Every variant answers 400 ([`HttpError::status`]) but
/// [`HttpError::TooManyHeaderLines`] (431).
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
    /// More header lines than the cap given to [`parse_request_with`] (`http.max_header_lines`):
    /// 431 Request Header Fields Too Large (RFC 6585 §5). Reported as soon as the line past the
    /// cap is complete.
    TooManyHeaderLines,
}

impl HttpError {
    /// The status to answer with: 400 Bad Request for a malformed head, 431 Request Header
    /// Fields Too Large for [`HttpError::TooManyHeaderLines`].
    pub fn status(&self) -> Status {
        match self {
            HttpError::TooManyHeaderLines => Status::RequestHeaderFieldsTooLarge431,
            _ => Status::BadRequest400,
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HttpError::BadRequestLine => "malformed HTTP request line",
            HttpError::BadVersion => "unsupported HTTP version",
            HttpError::BadHeader => "malformed HTTP header line",
            HttpError::TooManyHeaderLines => "too many HTTP header lines",
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
    /// 401: an API request without a valid token.
    Unauthorized401,
    /// 403: stats or API from an address not allowed.
    Forbidden403,
    /// 404: unknown path.
    NotFound404,
    /// 405: a method other than GET.
    MethodNotAllowed405,
    /// 409: an API write that conflicts with what exists (a key that exists).
    Conflict409,
    /// 413: the head did not fit the connection's read buffer.
    PayloadTooLarge413,
    /// 429: rate limited.
    TooManyRequests429,
    /// 431: more header lines than `http.max_header_lines` (RFC 6585 §5).
    RequestHeaderFieldsTooLarge431,
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
            Status::Unauthorized401 => 401,
            Status::Forbidden403 => 403,
            Status::NotFound404 => 404,
            Status::MethodNotAllowed405 => 405,
            Status::Conflict409 => 409,
            Status::PayloadTooLarge413 => 413,
            Status::TooManyRequests429 => 429,
            Status::RequestHeaderFieldsTooLarge431 => 431,
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
            Status::Unauthorized401 => "Unauthorized",
            Status::Forbidden403 => "Forbidden",
            Status::NotFound404 => "Not Found",
            Status::MethodNotAllowed405 => "Method Not Allowed",
            Status::Conflict409 => "Conflict",
            Status::PayloadTooLarge413 => "Payload Too Large",
            Status::TooManyRequests429 => "Too Many Requests",
            Status::RequestHeaderFieldsTooLarge431 => "Request Header Fields Too Large",
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

/// Parses one request head at the start of `buf`, without a cap on its header lines: as
/// [`parse_request_with`] with `usize::MAX`.
pub fn parse_request(buf: &[u8]) -> Result<Option<(Request<'_>, usize)>, HttpError> {
    parse_request_with(buf, usize::MAX)
}

/// Parses one request head at the start of `buf`, with at most `max_header_lines` header lines
/// (the lines between the request line and the blank line).
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
/// Errors: [`HttpError::BadRequestLine`], [`HttpError::BadVersion`], [`HttpError::BadHeader`]
/// (400), [`HttpError::TooManyHeaderLines`] (431). An error is reported as soon as the
/// offending line is complete, and junk whose first bytes cannot be a method is rejected even
/// before its first line ends. No size limit is applied here. A [`HeadScan`] fed the same
/// bytes in any number of pieces reports the same end and the same errors.
pub fn parse_request_with(
    buf: &[u8],
    max_header_lines: usize,
) -> Result<Option<(Request<'_>, usize)>, HttpError> {
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
    let mut lines = 0usize;
    loop {
        let Some((line, next)) = next_line(buf, pos) else {
            return Ok(None);
        };
        pos = next;
        if line.is_empty() {
            break;
        }
        lines += 1;
        if lines > max_header_lines {
            return Err(HttpError::TooManyHeaderLines);
        }
        let (name, value) = split_header(line)?;
        if name.eq_ignore_ascii_case(b"connection") {
            conn_close |= header_list_contains_token(value, b"close");
            conn_keep_alive |= header_list_contains_token(value, b"keep-alive");
        } else if name.eq_ignore_ascii_case(b"x-forwarded-for") {
            if let Some(previous) = req.x_forwarded_for {
                req.x_forwarded_for_earlier.rotate_left(1);
                req.x_forwarded_for_earlier[EARLIER_FORWARDED - 1] = previous;
            }
            req.x_forwarded_for = Some(value);
        } else if name.eq_ignore_ascii_case(b"x-real-ip") {
            req.x_real_ip = Some(value);
        } else if name.eq_ignore_ascii_case(b"accept-encoding") {
            req.accept_encoding = Some(value);
        } else if name.eq_ignore_ascii_case(b"content-length") {
            let length = content_length(value)?;
            if length > 0 {
                req.has_body = true;
            }
            req.content_length = Some(length);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            req.has_body = true;
            req.transfer_encoding = true;
        } else if name.eq_ignore_ascii_case(b"authorization") {
            req.authorization = Some(value);
        }
    }
    req.keep_alive = match req.version {
        Version::Http11 => !conn_close,
        Version::Http10 => conn_keep_alive && !conn_close,
    };
    Ok(Some((req, pos)))
}

/// A `Content-Length` value: decimal digits only (bytes; saturates at `u64::MAX`).
fn content_length(value: &[u8]) -> Result<u64, HttpError> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(HttpError::BadHeader);
    }
    Ok(value.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// The checks [`parse_request_with`] makes of one complete header line (line end removed).
fn check_header_line(line: &[u8]) -> Result<(), HttpError> {
    let (name, value) = split_header(line)?;
    if name.eq_ignore_ascii_case(b"content-length") {
        content_length(value)?;
    }
    Ok(())
}

/// Incremental framing of one request head, kept per connection while the head arrives in
/// pieces: where the last call stopped, the line being read, and the header lines so far.
///
/// [`HeadScan::scan`] is called with the whole buffer each time more bytes arrived (the same
/// head at the start of the buffer, longer); it looks only at the new bytes (and the line end
/// they complete), checks each line once as it completes with the same rules as
/// [`parse_request_with`] (request line, header syntax, `Content-Length`, the partial method,
/// the line cap), and says whether the head is complete yet. So its answer for a buffer is
/// the parser's (complete at the same offset, the same error, or incomplete), however the
/// bytes were split, at a cost linear in the head's length in total. Once it reports an end
/// or an error, the caller parses the buffer once with [`parse_request_with`]. After bytes
/// were taken from the front of the buffer, start a new scan ([`HeadScan::default`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeadScan {
    /// Offset of the first byte not looked at yet.
    scanned: usize,
    /// Offset of the first byte of the line not complete yet.
    line_start: usize,
    /// The request line was complete (and checked): the lines after it are header lines.
    in_headers: bool,
    /// Header lines complete so far.
    lines: usize,
    /// While the request line is incomplete: its bytes up to here are known to be method bytes
    /// (`tchar`), or, once `method_done`, the method ended at a space.
    method_checked: usize,
    /// The partial request line's method ended (a space was seen): nothing more to check
    /// before its line end.
    method_done: bool,
    /// Where the head ends (past its blank line), once found; or the error found.
    outcome: Option<Result<usize, HttpError>>,
    /// Bytes looked at in total, by the search for line ends, the check of each complete line
    /// and the check of a partial method: what the scan costs, for tests and benchmarks.
    examined: u64,
}

impl HeadScan {
    /// Frames the head at the start of `buf` (the bytes given to earlier calls, followed by
    /// new ones), with at most `max_header_lines` header lines: `Ok(None)` while incomplete,
    /// `Ok(Some(end))` once the blank line ended it at `end` bytes, or the error
    /// [`parse_request_with`] returns for `buf`. Once an end or an error was found, later
    /// calls return it again without looking at `buf`.
    ///
    /// `buf` must start with the bytes given to the previous calls since this scan began (a
    /// shorter buffer counts as incomplete and changes nothing).
    pub fn scan(
        &mut self,
        buf: &[u8],
        max_header_lines: usize,
    ) -> Result<Option<usize>, HttpError> {
        if let Some(outcome) = self.outcome {
            return outcome.map(Some);
        }
        if buf.len() < self.scanned {
            return Ok(None);
        }
        let result = self.scan_new(buf, max_header_lines);
        match result {
            Ok(None) => {}
            Ok(Some(end)) => self.outcome = Some(Ok(end)),
            Err(e) => self.outcome = Some(Err(e)),
        }
        result
    }

    fn scan_new(
        &mut self,
        buf: &[u8],
        max_header_lines: usize,
    ) -> Result<Option<usize>, HttpError> {
        while let Some(i) = memchr(b'\n', &buf[self.scanned..]) {
            let nl = self.scanned + i;
            self.examined += i as u64 + 1;
            self.scanned = nl + 1;
            let line = &buf[self.line_start..nl];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            self.line_start = nl + 1;
            self.examined += line.len() as u64;
            if !self.in_headers {
                if !line.is_empty() {
                    parse_request_line(line)?;
                    self.in_headers = true;
                }
                // A new line starts: its method is not checked yet.
                self.method_checked = self.line_start;
                self.method_done = false;
                continue;
            }
            if line.is_empty() {
                return Ok(Some(nl + 1));
            }
            self.lines += 1;
            if self.lines > max_header_lines {
                return Err(HttpError::TooManyHeaderLines);
            }
            check_header_line(line)?;
        }
        self.examined += (buf.len() - self.scanned) as u64;
        self.scanned = buf.len();
        if !self.in_headers {
            self.check_method(buf)?;
        }
        Ok(None)
    }

    /// [`check_partial_method`] over the bytes of the unfinished request line not checked yet.
    fn check_method(&mut self, buf: &[u8]) -> Result<(), HttpError> {
        if self.method_done {
            return Ok(());
        }
        let mut i = self.method_checked.max(self.line_start);
        while i < buf.len() {
            let b = buf[i];
            if b == b' ' {
                self.method_done = true;
                break;
            }
            if b == b'\r' {
                // Allowed as the method's last byte, the first half of a line end not yet
                // received, or right before the space that ends the method.
                match buf.get(i + 1) {
                    None => break,
                    Some(b' ') => {
                        self.method_done = true;
                        break;
                    }
                    Some(_) => return Err(HttpError::BadRequestLine),
                }
            }
            if !is_tchar(b) {
                return Err(HttpError::BadRequestLine);
            }
            i += 1;
        }
        // A `\r` left at the end is looked at again when the next byte arrives.
        self.examined += (i - self.method_checked.max(self.line_start)) as u64;
        self.method_checked = i;
        Ok(())
    }

    /// Header lines complete so far.
    pub fn header_lines(&self) -> usize {
        self.lines
    }

    /// Bytes this scan has looked at so far, in total over every call: each byte at most three
    /// times (line-end search, line check, method check), plus one per call (a `\r` at the
    /// end of a partial method is looked at again). A parser started again from the first byte
    /// on every read would look at about n²/2 for a head of n bytes sent a byte at a time.
    pub fn examined(&self) -> u64 {
        self.examined
    }
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
    // The absolute form (`http://host:port/announce?...`, RFC 9112 §3.2.2) routes like the
    // origin form: the scheme and authority are dropped from the path.
    let origin = origin_form(target_token);

    let quirk = count >= 3 && tokens[2].starts_with(b"?") && !origin.contains(&b'?');
    let (target, path, query, version_token) = if quirk {
        if count > 4 {
            return Err(HttpError::BadRequestLine);
        }
        // Both tokens are sub-slices of `line`, so the span between them is too.
        let start = subslice_offset(line, target_token);
        let end = subslice_offset(line, tokens[2]) + tokens[2].len();
        let version = (count == 4).then_some(tokens[3]);
        (&line[start..end], origin, &tokens[2][1..], version)
    } else {
        if count > 3 {
            return Err(HttpError::BadRequestLine);
        }
        let (path, query) = match memchr(b'?', origin) {
            Some(q) => (&origin[..q], &origin[q + 1..]),
            None => (origin, &origin[origin.len()..]),
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
        x_forwarded_for_earlier: [&[]; EARLIER_FORWARDED],
        x_real_ip: None,
        accept_encoding: None,
        has_body: false,
        content_length: None,
        transfer_encoding: false,
        authorization: None,
    })
}

/// The origin-form part of a request target: for an absolute-form target (`http://` or
/// `https://`, any case, RFC 9112 §3.2.2) what follows its authority (from the first `/` or `?`
/// after `://`; empty when there is neither), otherwise the target itself.
fn origin_form(target: &[u8]) -> &[u8] {
    let rest = if target.len() >= 7 && target[..7].eq_ignore_ascii_case(b"http://") {
        &target[7..]
    } else if target.len() >= 8 && target[..8].eq_ignore_ascii_case(b"https://") {
        &target[8..]
    } else {
        return target;
    };
    let start = rest
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(rest.len());
    &rest[start..]
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
mod tests;
