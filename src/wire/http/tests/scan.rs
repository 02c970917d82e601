//! Tests of [`HeadScan`] (incremental framing) and of the header-line cap: the scan agrees
//! with [`parse_request_with`] on every prefix, however the head is split, and its work per
//! byte stays constant.

use super::super::*;
use proptest::prelude::*;

/// What the parser says of `buf`: incomplete, complete at an offset, or an error.
fn parser_says(buf: &[u8], max_lines: usize) -> Result<Option<usize>, HttpError> {
    parse_request_with(buf, max_lines).map(|found| found.map(|(_, end)| end))
}

/// Feeds `head` to one scan in the pieces `cuts` makes (sorted offsets), checking after each
/// piece that the scan says what the parser says of the bytes so far. Returns the scan.
fn feed_in_pieces(head: &[u8], cuts: &[usize], max_lines: usize) -> HeadScan {
    let mut scan = HeadScan::default();
    let mut ends: Vec<usize> = cuts.iter().copied().filter(|&c| c < head.len()).collect();
    ends.push(head.len());
    for end in ends {
        let prefix = &head[..end];
        let expected = parser_says(prefix, max_lines);
        assert_eq!(
            scan.scan(prefix, max_lines),
            expected,
            "prefix {:?} of {:?}",
            String::from_utf8_lossy(prefix),
            String::from_utf8_lossy(head)
        );
        if expected != Ok(None) {
            break;
        }
    }
    scan
}

const HEADS: &[&[u8]] = &[
    b"GET /announce?info_hash=%01&port=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    b"GET /a HTTP/1.0\n\n",
    b"\r\n\r\nGET /a HTTP/1.1\r\nHost: t\r\n\n",
    b"GET /a\r\n\r\n",
    b"GET /announce ?info_hash=x HTTP/1.1\r\nX-Forwarded-For: 10.0.0.1\r\n\r\nGET /next",
    b"GET\r /a HTTP/1.1\r\n\r\n",
    b"POST /api/v1/key HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
    // Errors at each stage: junk method, bad request line, bad version, bad header, bad
    // Content-Length, an obs-fold line.
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    b"GE\rT /a HTTP/1.1\r\n\r\n",
    b"GET\r\r /a HTTP/1.1\r\n\r\n",
    b"GET /a HTTP/1.1 extra\r\nHost: t\r\n\r\n",
    b"GET /a HTTP/2.0\r\nHost: t\r\n\r\n",
    b"GET /a HTTP/1.1\r\nHost t\r\n\r\n",
    b"GET /a HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
    b"GET /a HTTP/1.1\r\nHost: t\r\n folded\r\n\r\n",
    b"\n\nG@T /a HTTP/1.1\r\n\r\n",
    // Incomplete to the end.
    b"GET /announce?info_hash=",
    b"GET /a HTTP/1.1\r\nHost: t\r\n",
];

fn many_lines(n: usize) -> Vec<u8> {
    let mut head = b"GET /announce?info_hash=x HTTP/1.1\r\n".to_vec();
    for i in 0..n {
        head.extend_from_slice(format!("X-Header-{i}: value {i}\r\n").as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    head
}

#[test]
fn split_at_every_byte_boundary_parses_the_same_as_one_piece() {
    let mut heads: Vec<Vec<u8>> = HEADS.iter().map(|h| h.to_vec()).collect();
    heads.push(many_lines(8));
    heads.push(many_lines(9));
    for head in &heads {
        let whole = parser_says(head, 8);
        // One piece.
        let mut one = HeadScan::default();
        assert_eq!(
            one.scan(head, 8),
            whole,
            "{:?}",
            String::from_utf8_lossy(head)
        );
        // Two pieces, split at every offset.
        for cut in 0..=head.len() {
            feed_in_pieces(head, &[cut], 8);
        }
        // A byte at a time.
        let every: Vec<usize> = (0..head.len()).collect();
        feed_in_pieces(head, &every, 8);
    }
}

#[test]
fn header_lines_over_the_cap_get_431() {
    let at_cap = many_lines(64);
    let (req, end) = parse_request_with(&at_cap, 64).unwrap().unwrap();
    assert_eq!(end, at_cap.len());
    assert_eq!(req.path, b"/announce");
    let over = many_lines(65);
    assert_eq!(
        parse_request_with(&over, 64),
        Err(HttpError::TooManyHeaderLines)
    );
    assert_eq!(
        HttpError::TooManyHeaderLines.status(),
        Status::RequestHeaderFieldsTooLarge431
    );
    assert_eq!(Status::RequestHeaderFieldsTooLarge431.code(), 431);
    assert_eq!(
        Status::RequestHeaderFieldsTooLarge431.reason(),
        "Request Header Fields Too Large"
    );
    // Reported as soon as line 65 is complete, before the blank line.
    let line_65_end = over.len() - 2;
    assert_eq!(
        parse_request_with(&over[..line_65_end], 64),
        Err(HttpError::TooManyHeaderLines)
    );
    assert_eq!(parse_request_with(&over[..line_65_end - 1], 64), Ok(None));
    let mut scan = HeadScan::default();
    assert_eq!(scan.scan(&over[..line_65_end - 1], 64), Ok(None));
    assert_eq!(scan.header_lines(), 64);
    assert_eq!(
        scan.scan(&over[..line_65_end], 64),
        Err(HttpError::TooManyHeaderLines)
    );
    // Without a cap (`parse_request`), the same head parses.
    assert!(parse_request(&over).unwrap().is_some());
}

#[test]
fn work_per_byte_stays_constant_when_a_head_arrives_a_byte_at_a_time() {
    for lines in [4, 16, 64] {
        let head = many_lines(lines);
        let mut scan = HeadScan::default();
        let mut end = None;
        for n in 1..=head.len() {
            end = scan.scan(&head[..n], 64).unwrap();
            if end.is_some() {
                assert_eq!(n, head.len());
            }
        }
        assert_eq!(end, Some(head.len()));
        let n = head.len() as u64;
        // Each byte looked at three times at most (line ends, line checks, method) and one
        // more per call; a parser started again from the first byte on every read would look
        // at n(n+1)/2 bytes (n is 150 to 2,000 here).
        assert!(
            scan.examined() <= 3 * n + n,
            "{} bytes looked at for a head of {n}",
            scan.examined()
        );
        assert!(scan.examined() >= n);
        assert!(scan.examined() * 10 < n * (n + 1) / 2);
    }
    // A method that stops at a `\r`, one byte at a time: each call looks at the new byte and
    // the `\r` again at most.
    let head = b"GETXXXXXXXXXXXXXXXXXXXXXXXXXXXXX";
    let mut scan = HeadScan::default();
    for n in 1..=head.len() {
        assert_eq!(scan.scan(&head[..n], 64), Ok(None));
    }
    assert!(scan.examined() <= 3 * head.len() as u64);
}

#[test]
fn a_finished_scan_keeps_its_answer() {
    let head = b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n";
    let mut scan = HeadScan::default();
    assert_eq!(scan.scan(head, 64), Ok(Some(19)));
    let examined = scan.examined();
    assert_eq!(scan.scan(head, 64), Ok(Some(19)));
    assert_eq!(scan.examined(), examined, "not looked at again");
    // A shorter buffer than what was scanned changes nothing.
    let mut scan = HeadScan::default();
    assert_eq!(scan.scan(b"GET /a", 64), Ok(None));
    assert_eq!(scan.scan(b"GET", 64), Ok(None));
    assert_eq!(scan.scan(b"GET /a HTTP/1.1\n\n", 64), Ok(Some(17)));
}

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
    b"12",
    b"x",
    b"\t",
    b",",
    b"\x01",
    b"@",
];

proptest! {
    #[test]
    fn scan_agrees_with_the_parser_however_the_bytes_are_split(
        parts in proptest::collection::vec(proptest::sample::select(TOKENS), 0..40),
        cuts in proptest::collection::vec(0usize..200, 0..12),
        max_lines in 0usize..4,
    ) {
        let head = parts.concat();
        let mut cuts = cuts;
        cuts.sort_unstable();
        feed_in_pieces(&head, &cuts, max_lines);
    }

    #[test]
    fn scan_agrees_with_the_parser_on_arbitrary_bytes(
        head in proptest::collection::vec(any::<u8>(), 0..128),
        cuts in proptest::collection::vec(0usize..128, 0..8),
    ) {
        let mut cuts = cuts;
        cuts.sort_unstable();
        feed_in_pieces(&head, &cuts, 3);
    }
}
