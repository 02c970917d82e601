//! Property tests over whole request paths (the per-parser ones live next to each parser in
//! `src/wire/`): random and half-valid inputs into the HTTP and UDP paths with a real store, using
//! the fuzz targets' checks (`fuzz/checks.rs`), plus the framing properties the HTTP server relies
//! on for truncated and pipelined requests.

use proptest::prelude::*;

#[allow(dead_code)]
mod checks {
    include!("../fuzz/checks.rs");
}

use opentracker_rs::wire::http::parse_request;

const HEADS: &[&str] = &[
    "GET /announce?info_hash=%71%02%1a%16%6d%f5%f9%f9%d7%49%07%c6%be%9a%a4%1b%9e%10%44%e9&port=6881&left=0 HTTP/1.1\r\nHost: t\r\n\r\n",
    "GET /scrape?info_hash=aaaaaaaaaaaaaaaaaaaa&info_hash=bbbbbbbbbbbbbbbbbbbb HTTP/1.0\r\n\r\n",
    "GET /a?info_hash=12345678901234567890&port=1&compact=0&numwant=5 HTTP/1.1\r\nConnection: close\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n",
    "GET / HTTP/1.1\r\n\r\n",
];

fn udp_header(action: u32) -> Vec<u8> {
    let mut b = 0x41727101980u64.to_be_bytes().to_vec();
    b.extend_from_slice(&action.to_be_bytes());
    b.extend_from_slice(&7u32.to_be_bytes());
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn http_path_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        checks::http_request(&bytes);
        checks::http_handle(&bytes);
    }

    #[test]
    fn http_path_any_query(query in proptest::collection::vec(any::<u8>(), 0..300), scrape in any::<bool>()) {
        // A valid head around a random query: reaches the announce and scrape code.
        let mut head = if scrape { b"GET /scrape?".to_vec() } else { b"GET /announce?".to_vec() };
        head.extend(query.iter().map(|&b| if b.is_ascii_whitespace() || b < 0x20 { b'+' } else { b }));
        head.extend_from_slice(b" HTTP/1.1\r\n\r\n");
        checks::http_handle(&head);
        checks::query(&query);
    }

    #[test]
    fn truncated_heads_are_incomplete_and_pipelined_heads_split_exactly(
        which in proptest::collection::vec(0..HEADS.len(), 1..5),
        cut in any::<prop::sample::Index>(),
    ) {
        let heads: Vec<&str> = which.iter().map(|&i| HEADS[i]).collect();
        let all = heads.concat();
        // Every proper prefix of the first head is "not complete yet", never an error.
        let first = heads[0].as_bytes();
        let n = cut.index(first.len());
        prop_assert!(matches!(parse_request(&first[..n]), Ok(None)), "prefix {n}");
        // Pipelined heads come apart exactly at their boundaries.
        let mut rest = all.as_bytes();
        for h in &heads {
            let (_, used) = parse_request(rest).unwrap().unwrap();
            prop_assert_eq!(used, h.len());
            rest = &rest[used..];
        }
        prop_assert!(rest.is_empty());
    }

    #[test]
    fn udp_path_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        checks::udp_packet(&bytes);
        checks::udp_handler(&bytes);
    }

    #[test]
    fn udp_path_valid_header_random_body(
        action in 0u32..5,
        tail in proptest::collection::vec(any::<u8>(), 0..250),
        v6 in any::<bool>(),
    ) {
        let mut d = vec![u8::from(v6)];
        d.extend_from_slice(&udp_header(action));
        d.extend_from_slice(&tail);
        checks::udp_handler(&d);
        checks::udp_packet(&d[1..]);
    }
}
