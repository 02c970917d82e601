//! Unit tests of [`super`]: percent-decoding, announce and scrape queries as real clients send
//! them, every error, and property tests.

use super::*;

/// 71021a166df5f9f9d74907c6be9aa41b9e1044e9 (opentracker reference H1).
const H1_BYTES: InfoHash = [
    0x71, 0x02, 0x1a, 0x16, 0x6d, 0xf5, 0xf9, 0xf9, 0xd7, 0x49, 0x07, 0xc6, 0xbe, 0x9a, 0xa4, 0x1b,
    0x9e, 0x10, 0x44, 0xe9,
];
/// H1 as Transmission sends it: unreserved bytes raw, the rest `%XX` upper case.
const H1_UPPER: &str = "q%02%1A%16m%F5%F9%F9%D7I%07%C6%BE%9A%A4%1B%9E%10D%E9";
/// H1 with lower-case escapes (libtorrent style).
const H1_LOWER: &str = "q%02%1a%16m%f5%f9%f9%d7I%07%c6%be%9a%a4%1b%9e%10D%e9";
/// 5f3054260ba3674a4a026b21941f316203b4923c (reference H2), every byte escaped (aria2 /
/// uTorrent style).
const H2_ALL: &str = "%5F%30%54%26%0B%A3%67%4A%4A%02%6B%21%94%1F%31%62%03%B4%92%3C";
const H2_BYTES: InfoHash = [
    0x5f, 0x30, 0x54, 0x26, 0x0b, 0xa3, 0x67, 0x4a, 0x4a, 0x02, 0x6b, 0x21, 0x94, 0x1f, 0x31, 0x62,
    0x03, 0xb4, 0x92, 0x3c,
];

fn announce(q: &str) -> Result<AnnounceQuery, QueryError> {
    parse_announce(q.as_bytes())
}

#[test]
fn percent_decode_basics() {
    let mut buf = [0u8; 32];
    assert_eq!(percent_decode_into(b"", &mut buf), Ok(0));
    assert_eq!(percent_decode_into(b"abc", &mut buf), Ok(3));
    assert_eq!(&buf[..3], b"abc");
    let n = percent_decode_into(b"%41%6a%6A+%2B%20", &mut buf).unwrap();
    assert_eq!(&buf[..n], b"Ajj++ ");
    let n = percent_decode_into(b"\xff\x80%ff", &mut buf).unwrap();
    assert_eq!(&buf[..n], b"\xff\x80\xff");
    assert_eq!(percent_decode_into(H1_UPPER.as_bytes(), &mut buf), Ok(20));
    assert_eq!(&buf[..20], &H1_BYTES);
}

#[test]
fn percent_decode_errors() {
    let mut buf = [0u8; 4];
    for bad in [&b"%"[..], b"%4", b"ab%", b"%zz", b"%4g", b"%g4", b"%%41"] {
        assert_eq!(
            percent_decode_into(bad, &mut buf),
            Err(QueryError::BadEscape),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(percent_decode_into(b"abcd", &mut buf), Ok(4));
    assert_eq!(
        percent_decode_into(b"abcde", &mut buf),
        Err(QueryError::TooLong)
    );
    assert_eq!(
        percent_decode_into(b"%41%42%43%44%45", &mut buf),
        Err(QueryError::TooLong)
    );
    assert_eq!(percent_decode_into(b"a", &mut []), Err(QueryError::TooLong));
}

#[test]
fn pair_splitting() {
    let got: Vec<_> = pairs(b"a=1&&b=&c&=x&d=e=f&").collect();
    assert_eq!(
        got,
        vec![
            (&b"a"[..], &b"1"[..]),
            (b"b", b""),
            (b"c", b""),
            (b"", b"x"),
            (b"d", b"e=f"),
        ]
    );
    assert_eq!(pairs(b"").count(), 0);
    assert_eq!(pairs(b"&&&").count(), 0);
}

#[test]
fn names_match_exactly() {
    assert!(name_is(b"info_hash", b"info_hash"));
    assert!(name_is(b"info%5Fhash", b"info_hash"));
    assert!(name_is(b"%69nfo_hash", b"info_hash"));
    assert!(!name_is(b"INFO_HASH", b"info_hash"));
    assert!(!name_is(b"info_hash2", b"info_hash"));
    assert!(!name_is(b"info_has", b"info_hash"));
    assert!(!name_is(b"info%5", b"info_"));
}

#[test]
fn libtorrent_qbittorrent_announce() {
    let q = format!(
        "info_hash={H1_LOWER}&peer_id=-qB4520-k8Rj3xkFmS!v&port=51413&uploaded=0&downloaded=0&left=1073741824&corrupt=0&key=5A3F1C2B&event=started&numwant=200&compact=1&no_peer_id=1&supportcrypto=1&redundant=0"
    );
    assert_eq!(
        announce(&q),
        Ok(AnnounceQuery {
            info_hash: H1_BYTES,
            peer_id: Some(*b"-qB4520-k8Rj3xkFmS!v"),
            port: 51413,
            left: Some(1_073_741_824),
            event: Event::Started,
            numwant: Some(200),
            compact: true,
            no_peer_id: true,
        })
    );
}

#[test]
fn transmission_announce() {
    let q = format!(
        "info_hash={H1_UPPER}&peer_id=-TR4050-9z1nqdh6ka0w&port=51413&uploaded=0&downloaded=0&left=0&numwant=80&key=1b6e7c9a&compact=1&supportcrypto=1&requirecrypto=0&corrupt=0&event=completed"
    );
    let a = announce(&q).unwrap();
    assert_eq!(a.info_hash, H1_BYTES);
    assert_eq!(a.peer_id, Some(*b"-TR4050-9z1nqdh6ka0w"));
    assert_eq!(a.left, Some(0));
    assert_eq!(a.event, Event::Completed);
    assert_eq!(a.numwant, Some(80));
    assert!(a.compact);
}

#[test]
fn aria2_announce() {
    let q = format!(
        "info_hash={H2_ALL}&peer_id=A2-1-36-0-%E1%8F%02%7Bc%C4%A9%00%DD%10&uploaded=0&downloaded=0&left=1048576&compact=1&key=A2c9Rq0Hb1nPx7Wz&numwant=50&no_peer_id=1&port=6881&event=started&supportcrypto=1"
    );
    let a = announce(&q).unwrap();
    assert_eq!(a.info_hash, H2_BYTES);
    assert_eq!(
        a.peer_id,
        Some(*b"A2-1-36-0-\xe1\x8f\x02\x7bc\xc4\xa9\x00\xdd\x10")
    );
    assert_eq!(a.port, 6881);
    assert_eq!(a.left, Some(1_048_576));
    assert_eq!(a.numwant, Some(50));
}

#[test]
fn utorrent_announce() {
    let q = format!(
        "info_hash={H1_LOWER}&peer_id=-UT355W-%8a%1b%c0%ff%13%7eA%02%d4%a5%b6Z&port=19432&uploaded=0&downloaded=0&left=734003200&corrupt=0&key=8C1E2F4D&event=stopped&numwant=200&compact=1&no_peer_id=1"
    );
    let a = announce(&q).unwrap();
    assert_eq!(a.port, 19432);
    assert_eq!(a.event, Event::Stopped);
    assert_eq!(
        a.peer_id,
        Some(*b"-UT355W-\x8a\x1b\xc0\xff\x13\x7eA\x02\xd4\xa5\xb6Z")
    );
}

#[test]
fn minimal_announce_defaults() {
    let a = announce(&format!("info_hash={H1_UPPER}&port=6881")).unwrap();
    assert_eq!(
        a,
        AnnounceQuery {
            info_hash: H1_BYTES,
            peer_id: None,
            port: 6881,
            left: None,
            event: Event::None,
            numwant: None,
            compact: true,
            no_peer_id: false,
        }
    );
}

#[test]
fn raw_unreserved_mixed_with_escapes() {
    // 20 bytes given as raw unreserved characters mixed with escapes of both cases, and
    // the same 20 bytes fully escaped: both decode to the same info_hash.
    let mixed = "abcde%00%01fghij%FE%FF%7E~-._%2a";
    let escaped = "%61%62%63%64%65%00%01%66%67%68%69%6a%fe%ff%7e%7e%2d%2e%5f%2A";
    let expected = *b"abcde\x00\x01fghij\xfe\xff~~-._*";
    let a = announce(&format!("info_hash={mixed}&port=1")).unwrap();
    assert_eq!(a.info_hash, expected);
    let b = announce(&format!("info_hash={escaped}&port=1")).unwrap();
    assert_eq!(b.info_hash, expected);
    // One byte more (21) is rejected.
    assert_eq!(
        announce(&format!("info_hash={mixed}%2A&port=1")),
        Err(QueryError::InvalidInfoHash)
    );
    // Raw bytes >= 0x80 are taken literally (opentracker would answer 400).
    let mut q = b"port=1&info_hash=".to_vec();
    q.extend_from_slice(&[0xff; 20]);
    assert_eq!(parse_announce(&q).unwrap().info_hash, [0xff; 20]);
    // '+' is a literal plus, not a space.
    let plus = announce("info_hash=%2B%2B%2B%2B%2B+++++++++++++++&port=1").unwrap();
    assert_eq!(plus.info_hash, [b'+'; 20]);
}

#[test]
fn info_hash_errors() {
    assert_eq!(announce("port=6881"), Err(QueryError::MissingInfoHash));
    assert_eq!(announce(""), Err(QueryError::MissingInfoHash));
    assert_eq!(
        announce("info_hash=&port=1"),
        Err(QueryError::InvalidInfoHash)
    );
    assert_eq!(
        announce("info_hash=0123456789012345678&port=1"),
        Err(QueryError::InvalidInfoHash)
    );
    assert_eq!(
        announce("info_hash=012345678901234567890&port=1"),
        Err(QueryError::InvalidInfoHash)
    );
    assert_eq!(
        announce("info_hash=0123456789012345678%zz&port=1"),
        Err(QueryError::InvalidInfoHash)
    );
    assert_eq!(
        announce("info_hash=0123456789012345678%4&port=1"),
        Err(QueryError::InvalidInfoHash)
    );
    assert_eq!(
        announce(&format!("info_hash={H1_UPPER}&port=1&info_hash={H1_UPPER}")),
        Err(QueryError::DuplicateInfoHash)
    );
    // Case-sensitive names: INFO_HASH is an unknown parameter.
    assert_eq!(
        announce(&format!("INFO_HASH={H1_UPPER}&port=1")),
        Err(QueryError::MissingInfoHash)
    );
    // A percent-encoded name is the same parameter.
    assert_eq!(
        announce(&format!("info%5fhash={H1_UPPER}&port=1")).map(|a| a.info_hash),
        Ok(H1_BYTES)
    );
}

#[test]
fn peer_id_errors() {
    let base = format!("info_hash={H1_UPPER}&port=1");
    assert_eq!(
        announce(&format!("{base}&peer_id=-qB4520-short")),
        Err(QueryError::InvalidPeerId)
    );
    assert_eq!(
        announce(&format!("{base}&peer_id=")),
        Err(QueryError::InvalidPeerId)
    );
    assert_eq!(
        announce(&format!("{base}&peer_id=-qB4520-k8Rj3xkFmS!vX")),
        Err(QueryError::InvalidPeerId)
    );
}

#[test]
fn port_boundaries() {
    let base = format!("info_hash={H1_UPPER}");
    let port = |p: &str| announce(&format!("{base}&port={p}")).map(|a| a.port);
    assert_eq!(port("1"), Ok(1));
    assert_eq!(port("65535"), Ok(65535));
    assert_eq!(port("06881"), Ok(6881));
    assert_eq!(port("%36%38%38%31"), Ok(6881));
    for bad in [
        "0",
        "65536",
        "-1",
        "",
        "68a1",
        "+80",
        " 80",
        "99999999999999999999999",
        "%",
    ] {
        assert_eq!(port(bad), Err(QueryError::InvalidPort), "port={bad}");
    }
    assert_eq!(announce(&base), Err(QueryError::MissingPort));
    // The last port wins.
    assert_eq!(port("1&port=2"), Ok(2));
}

#[test]
fn left_values() {
    let base = format!("info_hash={H1_UPPER}&port=1");
    let left = |l: &str| announce(&format!("{base}&left={l}")).map(|a| a.left);
    assert_eq!(left("0"), Ok(Some(0)));
    assert_eq!(left("18446744073709551615"), Ok(Some(u64::MAX)));
    for bad in ["", "12abc", "-1", "18446744073709551616", "1.5"] {
        assert_eq!(left(bad), Err(QueryError::InvalidLeft), "left={bad}");
    }
}

#[test]
fn event_values() {
    let base = format!("info_hash={H1_UPPER}&port=1");
    let event = |e: &str| announce(&format!("{base}&event={e}")).map(|a| a.event);
    assert_eq!(event("started"), Ok(Event::Started));
    assert_eq!(event("stopped"), Ok(Event::Stopped));
    assert_eq!(event("completed"), Ok(Event::Completed));
    assert_eq!(event("paused"), Ok(Event::None));
    assert_eq!(event(""), Ok(Event::None));
    assert_eq!(event("%73tarted"), Ok(Event::Started));
    for bad in [
        "Started",
        "start",
        "completedx",
        "none",
        "%zz",
        "stopped%00",
    ] {
        assert_eq!(event(bad), Err(QueryError::InvalidEvent), "event={bad}");
    }
}

#[test]
fn numwant_boundaries() {
    let base = format!("info_hash={H1_UPPER}&port=1");
    let nw = |n: &str| announce(&format!("{base}&numwant={n}")).map(|a| a.numwant);
    assert_eq!(nw("-1"), Ok(Some(-1)));
    assert_eq!(nw("0"), Ok(Some(0)));
    assert_eq!(nw("500"), Ok(Some(500)));
    assert_eq!(nw("2147483647"), Ok(Some(i32::MAX)));
    assert_eq!(nw("-2147483648"), Ok(Some(i32::MIN)));
    for bad in [
        "2147483648",
        "-2147483649",
        "",
        "-",
        "abc",
        "5x",
        "--1",
        "99999999999999999999",
    ] {
        assert_eq!(nw(bad), Err(QueryError::InvalidNumwant), "numwant={bad}");
    }
}

#[test]
fn compact_values() {
    let base = format!("info_hash={H1_UPPER}&port=1");
    let compact = |c: &str| announce(&format!("{base}&compact={c}")).map(|a| a.compact);
    assert_eq!(compact("1"), Ok(true));
    assert_eq!(compact("0"), Ok(false));
    assert_eq!(compact("000"), Ok(false));
    assert_eq!(compact("-0"), Ok(false));
    assert_eq!(compact("2"), Ok(true));
    assert_eq!(compact("-1"), Ok(true));
    assert_eq!(compact("99999999999999999999999999"), Ok(true));
    for bad in ["", "yes", "true", "1.0", "-"] {
        assert_eq!(
            compact(bad),
            Err(QueryError::InvalidCompact),
            "compact={bad}"
        );
    }
}

#[test]
fn unknown_params_ignored_even_if_malformed() {
    let q = format!("ip=%zz&key=%&info_hash={H1_UPPER}&uploaded=-5&port=1&no_peer_id&&x");
    assert_eq!(announce(&q).map(|a| a.port), Ok(1));
}

#[test]
fn scrape_multi() {
    let mut out = [[0u8; 20]; 4];
    let q = format!("info_hash={H1_UPPER}&info_hash={H2_ALL}&info_hash={H1_LOWER}");
    assert_eq!(parse_scrape(q.as_bytes(), &mut out), Ok(3));
    assert_eq!(out[0], H1_BYTES);
    assert_eq!(out[1], H2_BYTES);
    assert_eq!(out[2], H1_BYTES, "duplicates are kept in request order");
}

#[test]
fn scrape_limits_and_errors() {
    let mut out = [[0u8; 20]; 2];
    assert_eq!(parse_scrape(b"", &mut out), Ok(0));
    assert_eq!(parse_scrape(b"foo=bar&port=1", &mut out), Ok(0));
    let two = format!("info_hash={H1_UPPER}&info_hash={H2_ALL}");
    assert_eq!(parse_scrape(two.as_bytes(), &mut out), Ok(2));
    let three = format!("{two}&info_hash={H1_UPPER}");
    assert_eq!(
        parse_scrape(three.as_bytes(), &mut out),
        Err(QueryError::TooManyInfoHashes)
    );
    let short = format!("info_hash={H1_UPPER}&info_hash=abc");
    assert_eq!(
        parse_scrape(short.as_bytes(), &mut out),
        Err(QueryError::InvalidInfoHash)
    );
    assert_eq!(
        parse_scrape(b"info_hash=", &mut out),
        Err(QueryError::InvalidInfoHash)
    );
    assert_eq!(
        parse_scrape(format!("info_hash={H1_UPPER}").as_bytes(), &mut []),
        Err(QueryError::TooManyInfoHashes)
    );
}

#[test]
fn reasons_are_texts() {
    assert_eq!(QueryError::MissingInfoHash.reason(), "missing info_hash");
    assert_eq!(
        QueryError::InvalidInfoHash.to_string(),
        "info_hash must be 20 bytes"
    );
    assert_eq!(
        QueryError::InvalidPort.to_string(),
        QueryError::InvalidPort.reason()
    );
}

mod props {
    use super::super::*;
    use proptest::prelude::*;

    /// Percent-encodes every byte that is not an RFC 3986 unreserved character, choosing
    /// the hex case per byte from `upper`.
    fn encode(bytes: &[u8], upper: &[bool]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, &b) in bytes.iter().enumerate() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                out.push(b);
            } else if upper.get(i).copied().unwrap_or(true) {
                out.extend_from_slice(format!("%{b:02X}").as_bytes());
            } else {
                out.extend_from_slice(format!("%{b:02x}").as_bytes());
            }
        }
        out
    }

    const TOKENS: &[&[u8]] = &[
        b"info_hash=",
        b"port=",
        b"left=",
        b"event=",
        b"numwant=",
        b"compact=",
        b"peer_id=",
        b"&",
        b"=",
        b"%",
        b"%4",
        b"%41",
        b"-",
        b"0",
        b"9",
        b"abcdefghij",
        b"started",
        b"\xff",
    ];

    proptest! {
        #[test]
        fn percent_decode_never_panics(
            src in proptest::collection::vec(any::<u8>(), 0..128),
            cap in 0usize..160,
        ) {
            let mut dst = vec![0u8; cap];
            if let Ok(n) = percent_decode_into(&src, &mut dst) {
                prop_assert!(n <= cap && n <= src.len());
            }
        }

        #[test]
        fn encode_then_decode_is_identity(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
            upper in proptest::collection::vec(any::<bool>(), 64),
        ) {
            let encoded = encode(&bytes, &upper);
            let mut dst = [0u8; 64];
            let n = percent_decode_into(&encoded, &mut dst).unwrap();
            prop_assert_eq!(&dst[..n], &bytes[..]);
        }

        #[test]
        fn any_info_hash_roundtrips_through_announce_and_scrape(
            hash in any::<[u8; 20]>(),
            port in 1u16..,
            upper in proptest::collection::vec(any::<bool>(), 20),
        ) {
            let enc = String::from_utf8(encode(&hash, &upper)).unwrap();
            let q = format!("info_hash={enc}&port={port}&left=0&event=started");
            let a = parse_announce(q.as_bytes()).unwrap();
            prop_assert_eq!(a.info_hash, hash);
            prop_assert_eq!(a.port, port);
            let mut out = [[0u8; 20]; 1];
            prop_assert_eq!(parse_scrape(format!("info_hash={enc}").as_bytes(), &mut out), Ok(1));
            prop_assert_eq!(out[0], hash);
        }

        #[test]
        fn query_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_announce(&bytes);
            let mut out = [[0u8; 20]; 8];
            if let Ok(n) = parse_scrape(&bytes, &mut out) {
                prop_assert!(n <= out.len());
            }
        }

        #[test]
        fn query_parsers_never_panic_on_query_like_input(
            parts in proptest::collection::vec(
                proptest::sample::select(TOKENS),
                0..48,
            )
        ) {
            let bytes = parts.concat();
            let _ = parse_announce(&bytes);
            let mut out = [[0u8; 20]; 3];
            let _ = parse_scrape(&bytes, &mut out);
        }
    }
}

/// `no_peer_id`: advisory, so any value parses; only a non-zero integer or an empty value is
/// true.
#[test]
fn no_peer_id_values() {
    for (v, want) in [
        ("1", true),
        ("", true),
        ("0", false),
        ("x", false),
        ("2", true),
    ] {
        let a = announce(&format!(
            "info_hash={H1_UPPER}&port=1&compact=0&no_peer_id={v}"
        ))
        .unwrap();
        assert_eq!(a.no_peer_id, want, "no_peer_id={v}");
    }
    assert!(
        !announce(&format!("info_hash={H1_UPPER}&port=1"))
            .unwrap()
            .no_peer_id
    );
}
