//! Scrape requests and responses (BEP 15 action 2).

use super::*;
use crate::types::InfoHash;

#[test]
fn scrape_request_parse_and_emit() {
    let bytes = hex(&format!(
        "c855b5fb1a95a303 00000002 0badf00d {HASH_A} {HASH_B}"
    ));
    let Ok(Request::Scrape(s)) = parse_request(&bytes) else {
        panic!()
    };
    assert_eq!(s.connection_id, 0xc855_b5fb_1a95_a303);
    assert_eq!(s.transaction_id, 0x0bad_f00d);
    assert_eq!(s.info_hashes.count(), 2);
    let hashes: Vec<&InfoHash> = s.info_hashes.iter().collect();
    assert_eq!(hashes[0].as_slice(), hex(HASH_A));
    assert_eq!(hashes[1].as_slice(), hex(HASH_B));
    assert_eq!(s.info_hashes.get(1).map(|h| h.to_vec()), Some(hex(HASH_B)));
    assert_eq!(s.info_hashes.get(2), None);
    assert_eq!(emitted(|o| s.emit(o)), bytes);

    let one = s.info_hashes.truncated(1);
    assert_eq!(one.count(), 1);
    assert_eq!(one.as_bytes(), hex(HASH_A));
    assert_eq!(s.info_hashes.truncated(0).count(), 1);
    assert_eq!(s.info_hashes.truncated(500).count(), 2);
}

#[test]
fn scrape_request_from_hashes() {
    let hashes: [InfoHash; 2] = [
        hex(HASH_A).try_into().unwrap(),
        hex(HASH_B).try_into().unwrap(),
    ];
    let req = ScrapeRequest {
        connection_id: 1,
        transaction_id: 2,
        info_hashes: InfoHashes::from_hashes(&hashes).unwrap(),
    };
    let out = emitted(|o| req.emit(o));
    assert_eq!(
        out,
        hex(&format!(
            "0000000000000001 00000002 00000002 {HASH_A} {HASH_B}"
        ))
    );
    assert_eq!(InfoHashes::from_hashes(&[]), None);
}

#[test]
fn scrape_no_info_hash() {
    let bytes = hex("c855b5fb1a95a303 00000002 0badf00d");
    assert_eq!(parse_request(&bytes), Err(Error::NoInfoHash));
}

#[test]
fn scrape_truncated() {
    let full = hex(&format!(
        "c855b5fb1a95a303 00000002 0badf00d {HASH_A} {HASH_B}"
    ));
    // One whole hash and a partial one.
    assert_eq!(
        parse_request(&full[..16 + 20 + 19]),
        Err(Error::TruncatedScrape)
    );
    // Only a partial hash.
    assert_eq!(parse_request(&full[..16 + 1]), Err(Error::TruncatedScrape));
}

#[test]
fn scrape_response_parse_and_emit() {
    // (seeders, completed, leechers) = (3,1,1) (1,0,1) (0,0,0), in request order
    // (reference section 18.4).
    let bytes = hex("00000002 0badf00d 00000003 00000001 00000001
         00000001 00000000 00000001 00000000 00000000 00000000");
    let Ok(Response::Scrape(s)) = parse_response(&bytes) else {
        panic!()
    };
    assert_eq!(s.transaction_id, 0x0bad_f00d);
    assert_eq!(s.entries.count(), 3);
    let entries: Vec<_> = s.entries.iter().collect();
    assert_eq!(
        entries,
        vec![
            ScrapeEntry {
                seeders: 3,
                completed: 1,
                leechers: 1
            },
            ScrapeEntry {
                seeders: 1,
                completed: 0,
                leechers: 1
            },
            ScrapeEntry::default(),
        ]
    );
    assert_eq!(emitted(|o| s.emit(o)), bytes);

    // Streaming: header, then one entry per hash.
    let mut out = Vec::new();
    ScrapeResponse {
        transaction_id: 0x0bad_f00d,
        entries: ScrapeEntries::EMPTY,
    }
    .emit(&mut out);
    for e in &entries {
        assert_eq!(e.emit(&mut out), 12);
    }
    assert_eq!(out, bytes);
}

#[test]
fn scrape_response_empty_and_truncated() {
    let bytes = hex("00000002 0badf00d");
    let Ok(Response::Scrape(s)) = parse_response(&bytes) else {
        panic!()
    };
    assert_eq!(s.entries.count(), 0);
    assert_eq!(
        parse_response(&hex("00000002 0badf00d 00000003 00000001 000000")),
        Err(Error::TruncatedResponse)
    );
}
