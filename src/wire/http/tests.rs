//! Unit tests of [`super`]: real client request heads, the response-head writers, and
//! property tests over arbitrary bytes.

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
fn content_length_and_authorization_values() {
    let (req, _) = parse_ok(
        b"POST /api/v1/keys HTTP/1.1\r\nAuthorization:  Bearer abc \r\nContent-Length: 27\r\n\r\n",
    );
    assert_eq!(req.content_length, Some(27));
    assert_eq!(req.authorization, Some(&b"Bearer abc"[..]));
    assert!(!req.transfer_encoding);
    let (req, _) = parse_ok(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(req.content_length, None);
    assert_eq!(req.authorization, None);
    let (req, _) = parse_ok(b"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n");
    assert_eq!(req.content_length, Some(u64::MAX));
    let (req, _) = parse_ok(b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert!(req.transfer_encoding);
}

#[test]
fn body_detection() {
    let (req, consumed) = parse_ok(b"POST /announce HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
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

/// RFC 9112 §3.2.2: a server must accept the absolute form; it routes like the origin form.
#[test]
fn absolute_form_routes_like_origin_form() {
    let head = b"GET http://tracker.example.org:6969/announce?info_hash=x&port=1 HTTP/1.1\r\n\r\n";
    let (req, _) = parse_ok(head);
    assert_eq!(req.path, b"/announce");
    assert_eq!(req.query, b"info_hash=x&port=1");
    assert_eq!(
        req.target,
        &b"http://tracker.example.org:6969/announce?info_hash=x&port=1"[..]
    );
    let (req, _) = parse_ok(b"GET HTTPS://[::1]:443/scrape HTTP/1.1\r\n\r\n");
    assert_eq!((req.path, req.query), (&b"/scrape"[..], &b""[..]));
    // No path at all: the root (RFC 9112 §3.2.2 says "/").
    let (req, _) = parse_ok(b"GET http://tracker.example.org HTTP/1.1\r\n\r\n");
    assert_eq!(req.path, b"");
    let (req, _) = parse_ok(b"GET http://tracker.example.org?a=1 HTTP/1.0\r\n\r\n");
    assert_eq!((req.path, req.query), (&b""[..], &b"a=1"[..]));
    // opentracker's space-before-`?` quirk works after an absolute target too.
    let (req, _) = parse_ok(b"GET http://h/announce ?info_hash=x HTTP/1.1\r\n\r\n");
    assert_eq!(
        (req.path, req.query),
        (&b"/announce"[..], &b"info_hash=x"[..])
    );
    // A path that merely looks like a scheme stays a path.
    let (req, _) = parse_ok(b"GET /http://h/announce HTTP/1.1\r\n\r\n");
    assert_eq!(req.path, b"/http://h/announce");
}

mod scan;
