//! `tracker.mode` against every kind of request: HTTP announce, scrape and full scrape, UDP
//! announce (with the key in BEP 41 URL data) and scrape, over IPv4 and IPv6, with keys and
//! whitelist entries made through the REST API (RAM only here; tests/persistence.rs covers the
//! database). Real binary, real sockets on loopback.

mod common;

use std::time::{Duration, Instant};

use common::udp::Client;
use common::*;
use opentracker_rs::types::Event;
use opentracker_rs::wire::udp::{Response as UdpResponse, parse_response};

const TOKEN: &str = "0123456789abcdef0123";
const MISSING: &str =
    "Authentication error: missing key (private tracker: announce to /announce/KEY)";
const UNKNOWN: &str = "Authentication error: unknown authentication key";
const EXPIRED: &str = "Authentication error: the authentication key has expired";
const NOT_LISTED: &str = "Requested download is not authorized for use with this tracker.";

fn start(mode: &str) -> Tracker {
    Tracker::start(
        &format!("private-{mode}"),
        &format!(
            "listen.tcp_udp 127.0.0.1:0\nlisten.tcp_udp [::1]:0\napi.listen 127.0.0.1:0\n\
             api.token test {TOKEN}\ntracker.mode {mode}\n"
        ),
    )
}

/// An API request with the token; returns (status, body).
fn api(t: &Tracker, method: &str, path: &str, body: &str) -> (u16, String) {
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let r = raw(t.api_addr(false), req.as_bytes()).expect("api response");
    (r.status, String::from_utf8_lossy(&r.body).into_owned())
}

/// A new key valid for `seconds` (or permanent), made through the API.
fn new_key(t: &Tracker, seconds: Option<u64>) -> String {
    let body = match seconds {
        Some(s) => format!("{{\"key\":null,\"seconds_valid\":{s}}}"),
        None => "{\"key\":null,\"seconds_valid\":null}".to_owned(),
    };
    let (status, text) = api(t, "POST", "/api/v1/keys", &body);
    assert_eq!(status, 200, "{text}");
    let key = text
        .split("\"key\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("key in the answer")
        .to_owned();
    assert_eq!(key.len(), 32, "{text}");
    key
}

fn whitelist(t: &Tracker, h: &[u8; 20]) {
    let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
    let (status, text) = api(t, "POST", &format!("/api/v1/whitelist/{hex}"), "");
    assert_eq!(status, 200, "{text}");
}

/// An HTTP announce to `/announce[/KEY]`: `Ok(complete)` or `Err(failure reason)`.
fn http_announce(t: &Tracker, v6: bool, key: Option<&str>, h: &[u8; 20]) -> Result<i64, String> {
    let target = announce(h, 6881, 0, "&compact=1");
    let target = match key {
        Some(k) => target.replacen("/announce", &format!("/announce/{k}"), 1),
        None => target,
    };
    let r = get(t.http_addr(v6), &target);
    assert_eq!(r.status, 200);
    match r.failure() {
        Some(reason) => Err(reason),
        None => Ok(r.bencode().get(b"complete").unwrap().as_int().unwrap()),
    }
}

/// An HTTP scrape of one hash: (complete, downloaded, incomplete); absent = `None`.
fn http_scrape(t: &Tracker, v6: bool, key: Option<&str>, h: &[u8; 20]) -> Option<(i64, i64, i64)> {
    let path = match key {
        Some(k) => format!("/scrape/{k}"),
        None => "/scrape".to_owned(),
    };
    let r = get(t.http_addr(v6), &format!("{path}?info_hash={}", pct(h)));
    assert_eq!(r.status, 200);
    let v = r.bencode();
    let e = v.get(b"files").unwrap().get(h)?;
    let n = |k: &[u8]| e.get(k).unwrap().as_int().unwrap();
    Some((n(b"complete"), n(b"downloaded"), n(b"incomplete")))
}

/// A UDP announce with `url` as BEP 41 URL data: `Ok(seeders)` or `Err(error message)`.
fn udp_announce(t: &Tracker, v6: bool, url: Option<&str>, h: &[u8; 20]) -> Result<u32, String> {
    let c = Client::new(t.udp_addr(v6));
    let id = c.connect();
    let reply = c.announce_with_url(id, h, 6882, 0, Event::Started, url.unwrap_or("").as_bytes());
    match parse_response(&reply).unwrap() {
        UdpResponse::Announce(a) => Ok(a.seeders),
        UdpResponse::Error(e) => Err(String::from_utf8_lossy(e.message).into_owned()),
        other => panic!("{other:?}"),
    }
}

fn udp_scrape(t: &Tracker, v6: bool, h: &[u8; 20]) -> (u32, u32, u32) {
    let c = Client::new(t.udp_addr(v6));
    let id = c.connect();
    c.scrape(id, &[*h])[0]
}

/// A full scrape over HTTP/1.0 (the body ends at close): the body.
fn full_scrape_http10(t: &Tracker, path: &str) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut s = connect(t.http_addr(false));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\n\r\n").unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).expect("read to EOF");
    let split = all.windows(4).position(|w| w == b"\r\n\r\n").expect("head");
    all[split + 4..].to_vec()
}

fn metric(t: &Tracker, reason: &str) -> u64 {
    let (status, text) = api(t, "GET", "/api/v1/stats?format=prometheus", "");
    assert_eq!(status, 200);
    let name = format!("opentracker_refused_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&name))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} in {text}"))
}

#[test]
fn public_mode_serves_everyone_and_ignores_keys() {
    let t = start("public");
    for v6 in [false, true] {
        let h = hash(1 + v6 as u32);
        assert_eq!(http_announce(&t, v6, None, &h), Ok(1));
        // torrust's keyed route works on a public tracker too (the key is ignored).
        assert_eq!(http_announce(&t, v6, Some("not-a-key"), &h), Ok(1));
        assert_eq!(udp_announce(&t, v6, None, &h), Ok(2));
        assert_eq!(http_scrape(&t, v6, None, &h), Some((2, 0, 0)));
        assert_eq!(udp_scrape(&t, v6, &h), (2, 0, 0));
    }
}

#[test]
fn private_mode_over_http_and_udp_both_families() {
    let t = start("private");
    let key = new_key(&t, None);
    let bogus = "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ";
    for v6 in [false, true] {
        let h = hash(10 + v6 as u32);
        // HTTP announce: missing, unknown, malformed, valid.
        assert_eq!(http_announce(&t, v6, None, &h), Err(MISSING.into()));
        assert_eq!(http_announce(&t, v6, Some(bogus), &h), Err(UNKNOWN.into()));
        assert_eq!(
            http_announce(&t, v6, Some("short"), &h),
            Err(UNKNOWN.into())
        );
        assert_eq!(http_announce(&t, v6, Some(&key), &h), Ok(1));
        // UDP announce: the key is read from BEP 41 URL data.
        assert_eq!(udp_announce(&t, v6, None, &h), Err(MISSING.into()));
        assert_eq!(
            udp_announce(&t, v6, Some("/announce"), &h),
            Err(MISSING.into())
        );
        let url = format!("/announce/{bogus}");
        assert_eq!(udp_announce(&t, v6, Some(&url), &h), Err(UNKNOWN.into()));
        let url = format!("/announce/{key}");
        assert_eq!(udp_announce(&t, v6, Some(&url), &h), Ok(2));
        // With a query after the key, as a client may send it.
        let url = format!("/announce/{key}?passkey=x");
        assert_eq!(udp_announce(&t, v6, Some(&url), &h), Ok(2));
        // Scrapes: zeros without a valid key (as torrust), counts with one.
        assert_eq!(http_scrape(&t, v6, None, &h), Some((0, 0, 0)));
        assert_eq!(http_scrape(&t, v6, Some(bogus), &h), Some((0, 0, 0)));
        assert_eq!(http_scrape(&t, v6, Some(&key), &h), Some((2, 0, 0)));
        // BEP 15 scrapes have no room for a key: always zeros.
        assert_eq!(udp_scrape(&t, v6, &h), (0, 0, 0));
    }
    // Full scrape: nothing listed without a valid key, everything with one.
    let r = get(t.http_addr(false), "/scrape");
    assert_eq!(r.body, b"d5:filesdee");
    let body = full_scrape_http10(&t, &format!("/scrape/{key}"));
    let v = decode(&body).expect("bencoded full scrape");
    assert!(v.get(b"files").unwrap().get(&hash(10)).is_some());
    assert!(v.get(b"files").unwrap().get(&hash(11)).is_some());
    assert_eq!(metric(&t, "missing_key"), 6);
    assert_eq!(metric(&t, "unknown_key"), 6);
    assert_eq!(metric(&t, "expired_key"), 0);
    // A deleted key stops working at once.
    let (status, _) = api(&t, "DELETE", &format!("/api/v1/key/{key}"), "");
    assert_eq!(status, 200);
    assert_eq!(
        http_announce(&t, false, Some(&key), &hash(10)),
        Err(UNKNOWN.into())
    );
    let url = format!("/announce/{key}");
    assert_eq!(
        udp_announce(&t, true, Some(&url), &hash(11)),
        Err(UNKNOWN.into())
    );
}

#[test]
fn an_expired_key_is_refused_with_its_own_text() {
    let t = start("private");
    let key = new_key(&t, Some(1));
    let h = hash(20);
    assert_eq!(http_announce(&t, false, Some(&key), &h), Ok(1));
    // valid_until is whole seconds: within two seconds the key has expired.
    let deadline = Instant::now() + Duration::from_secs(5);
    while http_announce(&t, false, Some(&key), &h).is_ok() {
        assert!(Instant::now() < deadline, "the key never expired");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        http_announce(&t, false, Some(&key), &h),
        Err(EXPIRED.into())
    );
    let url = format!("/announce/{key}");
    assert_eq!(udp_announce(&t, false, Some(&url), &h), Err(EXPIRED.into()));
    assert_eq!(udp_announce(&t, true, Some(&url), &h), Err(EXPIRED.into()));
    assert_eq!(http_scrape(&t, false, Some(&key), &h), Some((0, 0, 0)));
    assert!(metric(&t, "expired_key") >= 3);
}

#[test]
fn listed_mode_serves_api_whitelist_entries_only() {
    let t = start("listed");
    let (listed, other) = (hash(30), hash(31));
    whitelist(&t, &listed);
    for v6 in [false, true] {
        assert_eq!(http_announce(&t, v6, None, &other), Err(NOT_LISTED.into()));
        assert_eq!(udp_announce(&t, v6, None, &other), Err(NOT_LISTED.into()));
        assert!(http_announce(&t, v6, None, &listed).is_ok());
        assert!(udp_announce(&t, v6, None, &listed).is_ok());
        // A scrape leaves out what is not listed (HTTP), or answers zeros (UDP).
        assert_eq!(http_scrape(&t, v6, None, &other), None);
        assert_eq!(udp_scrape(&t, v6, &other), (0, 0, 0));
        // Both families' peers of the same torrent count in a scrape.
        let seeders = 2 + 2 * i64::from(v6);
        assert_eq!(http_scrape(&t, v6, None, &listed), Some((seeders, 0, 0)));
    }
    assert_eq!(metric(&t, "not_authorized"), 4);
    // Removing the entry drops the torrent and refuses it again.
    let hex: String = listed.iter().map(|b| format!("{b:02x}")).collect();
    let (status, _) = api(&t, "DELETE", &format!("/api/v1/whitelist/{hex}"), "");
    assert_eq!(status, 200);
    assert_eq!(http_scrape(&t, false, None, &listed), None);
    assert_eq!(
        http_announce(&t, false, None, &listed),
        Err(NOT_LISTED.into())
    );
}

#[test]
fn private_listed_mode_needs_both() {
    let t = start("private_listed");
    let key = new_key(&t, Some(3600));
    let (listed, other) = (hash(40), hash(41));
    whitelist(&t, &listed);
    for v6 in [false, true] {
        assert_eq!(http_announce(&t, v6, None, &listed), Err(MISSING.into()));
        assert_eq!(
            http_announce(&t, v6, Some(&key), &other),
            Err(NOT_LISTED.into())
        );
        assert_eq!(http_announce(&t, v6, Some(&key), &listed), Ok(1));
        let url = format!("/announce/{key}");
        assert_eq!(udp_announce(&t, v6, None, &listed), Err(MISSING.into()));
        assert_eq!(
            udp_announce(&t, v6, Some(&url), &other),
            Err(NOT_LISTED.into())
        );
        assert_eq!(udp_announce(&t, v6, Some(&url), &listed), Ok(2));
        assert_eq!(http_scrape(&t, v6, Some(&key), &other), None);
        assert_eq!(http_scrape(&t, v6, None, &listed), Some((0, 0, 0)));
    }
}

#[test]
fn a_whitelist_file_with_api_entries_is_their_union() {
    let dir = temp_dir("private-union");
    let list = dir.join("whitelist");
    let (in_file, in_api, neither) = (hash(50), hash(51), hash(52));
    let hex = |h: &[u8; 20]| -> String { h.iter().map(|b| format!("{b:02x}")).collect() };
    std::fs::write(&list, format!("{}\n", hex(&in_file))).unwrap();
    let t = Tracker::start(
        "private-union",
        &format!(
            "listen.tcp_udp 127.0.0.1:0\napi.listen 127.0.0.1:0\napi.token test {TOKEN}\n\
             access.whitelist {}\n",
            list.display()
        ),
    );
    whitelist(&t, &in_api);
    assert!(http_announce(&t, false, None, &in_file).is_ok());
    assert!(http_announce(&t, false, None, &in_api).is_ok());
    assert_eq!(
        http_announce(&t, false, None, &neither),
        Err(NOT_LISTED.into())
    );
    let _ = std::fs::remove_dir_all(&dir);
}
