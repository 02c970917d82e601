//! The REST API (torrust v1 routes) against the real binary over loopback sockets: the read
//! routes (health check, stats, torrents, torrent detail), tokens, methods, limits and
//! keep-alive, each with and without `db.path`. Keys and whitelist writes: tests/api_writes.rs.

mod api_common;
mod common;

use std::io::Read;
use std::time::Duration;

use api_common::*;
use common::{Tracker, get, hash};
use opentracker_rs::types::Event;
use serde_json::{Value, json};

/// Runs `$body(with_db: bool)` once without and once with `db.path`.
macro_rules! with_and_without_db {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn ram_only() {
                super::$name(false)
            }
            #[test]
            fn with_db() {
                super::$name(true)
            }
        }
    )*};
}

with_and_without_db!(
    health_check,
    stats_match_the_announces,
    torrents_list_and_pagination,
    torrent_detail,
    every_v1_route_needs_a_token,
    keep_alive_and_pipelining,
);

/// A tracker with the API (and a database in its own directory when `with_db`).
fn start(name: &str, extra: &str, with_db: bool) -> (Tracker, Option<Dir>) {
    let dir = with_db.then(|| Dir::new(name));
    let db = dir.as_ref().map(Dir::db);
    let t = Tracker::start(name, &config(extra, db.as_deref()));
    (t, dir)
}

fn health_check(with_db: bool) {
    let (t, _dir) = start("api-health", "", with_db);
    for v6 in [false, true] {
        let addr = t.api_addr(v6);
        for auth in [Auth::None, Auth::Query("wrong-token-wrong-token")] {
            let r = call(addr, "GET", "/api/health_check", auth, None);
            assert_eq!(r.status, 200);
            assert_eq!(
                r.header("content-type").as_deref(),
                Some("application/json")
            );
            assert_eq!(r.body, br#"{"status":"Ok"}"#);
        }
        let r = call(addr, "POST", "/api/health_check", Auth::None, None);
        assert_eq!((r.status, json(&r)), (405, err("method not allowed")));
        for path in [
            "/",
            "/api",
            "/api/v2/stats",
            "/health_check",
            "/apix/v1/stats",
        ] {
            let r = call(addr, "GET", path, Auth::Query(TOKEN), None);
            assert_eq!((r.status, json(&r)), (404, err("not found")), "{path}");
        }
    }
}

/// torrust v3's `/api/v1/stats` fields, in its order (reference/trackers.md §1.8).
const STATS_FIELDS: [&str; 16] = [
    "torrents",
    "seeders",
    "completed",
    "leechers",
    "tcp4_connections_handled",
    "tcp4_announces_handled",
    "tcp4_scrapes_handled",
    "tcp6_connections_handled",
    "tcp6_announces_handled",
    "tcp6_scrapes_handled",
    "udp4_connections_handled",
    "udp4_announces_handled",
    "udp4_scrapes_handled",
    "udp6_connections_handled",
    "udp6_announces_handled",
    "udp6_scrapes_handled",
];

fn stats_match_the_announces(with_db: bool) {
    let (t, _dir) = start("api-stats", "", with_db);
    let api = Api::of(&t, false);
    let (status, zero) = api.get("/api/v1/stats");
    assert_eq!(status, 200);
    let zero_obj: serde_json::Map<String, Value> = STATS_FIELDS
        .iter()
        .map(|f| (f.to_string(), json!(0)))
        .collect();
    assert_eq!(zero, Value::Object(zero_obj), "a fresh tracker");

    // HTTP over IPv4: a leecher, a peer that completes (2 announces), a scrape, a failure.
    let h4 = t.http_addr(false);
    let (h1, h2, h3, h4_hash) = (hash(1), hash(2), hash(3), hash(4));
    assert_eq!(
        get(h4, &common::announce(&h1, 7001, 10, "&event=started")).failure(),
        None
    );
    complete(h4, None, &h1, 7002);
    let r = get(h4, &format!("/scrape?info_hash={}", common::pct(&h1)));
    assert_eq!(r.status, 200);
    let r = get(h4, "/announce?peer_id=-TE0001-000000000000&port=1");
    assert!(r.failure().is_some(), "an announce without info_hash fails");
    // HTTP over IPv6: one leecher.
    let r = get(t.http_addr(true), &common::announce(&h2, 7003, 10, ""));
    assert_eq!(r.failure(), None);
    // UDP over IPv4: connect, a seeder, a scrape; over IPv6: connect, a leecher.
    let u4 = Udp::new(t.udp_addr(false));
    let id = u4.connect();
    assert_eq!(u4.announce(id, &h3, 0, Event::Started), (0, 1));
    assert_eq!(u4.scrape(id, &[h3]), [(1, 0, 0)]);
    let u6 = Udp::new(t.udp_addr(true));
    let id = u6.connect();
    assert_eq!(u6.announce(id, &h4_hash, 5, Event::None), (1, 0));

    // The API's own requests (the ones above and this one) are not tracker requests.
    let r = call(api.addr, "GET", "/api/v1/stats", Auth::Query(TOKEN), None);
    assert_eq!(r.status, 200);
    let expected = json!({
        "torrents": 4,
        "seeders": 2,
        "completed": 1,
        "leechers": 3,
        "tcp4_connections_handled": 5,
        "tcp4_announces_handled": 3,
        "tcp4_scrapes_handled": 1,
        "tcp6_connections_handled": 1,
        "tcp6_announces_handled": 1,
        "tcp6_scrapes_handled": 0,
        "udp4_connections_handled": 1,
        "udp4_announces_handled": 1,
        "udp4_scrapes_handled": 1,
        "udp6_connections_handled": 1,
        "udp6_announces_handled": 1,
        "udp6_scrapes_handled": 0,
    });
    assert_eq!(json(&r), expected);
    // Field names exactly torrust's, in its order (JSON objects are unordered, but a diff of two
    // answers is easier to read this way).
    let text = String::from_utf8(r.body.clone()).unwrap();
    let positions: Vec<usize> = STATS_FIELDS
        .iter()
        .map(|f| text.find(&format!("\"{f}\":")).unwrap())
        .collect();
    assert!(positions.is_sorted(), "field order: {text}");

    // The same numbers as Prometheus text.
    let r = call(
        api.addr,
        "GET",
        "/api/v1/stats?format=prometheus",
        Auth::Bearer(TOKEN),
        None,
    );
    assert_eq!(r.status, 200);
    let ct = r.header("content-type").unwrap();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let text = String::from_utf8(r.body).unwrap();
    for line in [
        "opentracker_torrents{family=\"ipv4\"} 2",
        "opentracker_torrents{family=\"ipv6\"} 2",
        "opentracker_seeders{family=\"ipv4\"} 2",
        "opentracker_completed_total 1",
        "opentracker_requests_total{protocol=\"http\",family=\"ipv4\",kind=\"announce\"} 3",
        "opentracker_requests_total{protocol=\"udp\",family=\"ipv6\",kind=\"connect\"} 1",
        "opentracker_requests_failed_total{protocol=\"http\",family=\"ipv4\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
    }
    // Any other format value is the JSON object.
    let (status, v) = api.get("/api/v1/stats?format=json");
    assert_eq!((status, v), (200, expected));
}

/// One row of `/api/v1/torrents`.
fn row(h: &[u8; 20], seeders: u64, completed: u64, leechers: u64) -> Value {
    json!({"info_hash": hex(h), "seeders": seeders, "completed": completed, "leechers": leechers})
}

fn torrents_list_and_pagination(with_db: bool) {
    let (t, _dir) = start("api-torrents", "", with_db);
    let api = Api::of(&t, true);
    let (v4, v6) = (t.http_addr(false), t.http_addr(true));
    let ann = |addr, h: &[u8; 20], port, left| {
        assert_eq!(
            get(addr, &common::announce(h, port, left, "")).failure(),
            None
        );
    };
    // 10: an IPv4 leecher; 11: an IPv6 seeder; 12: in both families (counts summed);
    // 13: a peer that completed.
    ann(v4, &hash(10), 7100, 1);
    ann(v6, &hash(11), 7110, 0);
    ann(v4, &hash(12), 7120, 0);
    ann(v6, &hash(12), 7121, 1);
    complete(v4, None, &hash(13), 7130);
    let all = vec![
        row(&hash(10), 0, 0, 1),
        row(&hash(11), 1, 0, 0),
        row(&hash(12), 1, 0, 1),
        row(&hash(13), 1, 1, 0),
    ];
    let list = |query: &str| {
        let (status, v) = api.get(&format!("/api/v1/torrents{query}"));
        assert_eq!(status, 200, "{query}: {v}");
        v.as_array().unwrap().clone()
    };
    assert_eq!(list(""), all, "in info_hash order");
    assert_eq!(list("?offset=0&limit=4000"), all);
    assert_eq!(list("?offset=1&limit=2"), all[1..3]);
    assert_eq!(list("?offset=3&limit=10"), all[3..]);
    assert_eq!(list("?offset=2"), all[2..]);
    assert_eq!(list("?limit=1"), all[..1]);
    let none: Vec<Value> = Vec::new();
    assert_eq!(list("?limit=0"), none);
    assert_eq!(list("?offset=4"), none);
    assert_eq!(
        list("?offset=18446744073709551615&limit=18446744073709551615"),
        none
    );
    for bad in [
        "limit=abc",
        "offset=-1",
        "limit=",
        "offset=1.5",
        "limit=18446744073709551616",
    ] {
        let (status, v) = api.get(&format!("/api/v1/torrents?{bad}"));
        assert_eq!(
            (status, v),
            (400, err("offset and limit must be numbers")),
            "{bad}"
        );
    }
    // Repeated info_hash: the known ones in request order; pagination does not apply.
    let q = format!(
        "?info_hash={}&info_hash={}&info_hash={}&limit=1",
        hex(&hash(13)),
        hex(&hash(99)),
        hex(&hash(10)).to_uppercase()
    );
    assert_eq!(list(&q), [all[3].clone(), all[0].clone()]);
    assert_eq!(list(&format!("?info_hash={}", hex(&hash(98)))), none);
    for bad in [
        "zz",
        &hex(&hash(1))[..39],
        &format!("{}0", hex(&hash(1))),
        "",
    ] {
        let (status, v) = api.get(&format!("/api/v1/torrents?info_hash={bad}"));
        assert_eq!((status, v), (400, err("invalid info_hash")), "{bad:?}");
    }
}

#[test]
fn torrents_limit_is_capped_at_4000() {
    let (t, _dir) = start("api-cap", "", false);
    // 4003 torrents over one kept-alive connection, 100 requests per write.
    let mut conn = Conn::open(t.http_addr(false));
    for chunk in (0..4003u32).collect::<Vec<_>>().chunks(100) {
        let mut bytes = Vec::new();
        for &n in chunk {
            let target = common::announce(&hash(100_000 + n), 6881, 1, "");
            bytes.extend(format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes());
        }
        conn.send(&bytes);
        for _ in chunk {
            let r = conn.read();
            assert_eq!(r.failure(), None);
        }
    }
    let api = Api::of(&t, false);
    let len = |query: &str| {
        let (status, v) = api.get(&format!("/api/v1/torrents{query}"));
        assert_eq!(status, 200, "{query}");
        let list = v.as_array().unwrap().clone();
        (list.len(), list.first().map(|r| r["info_hash"].clone()))
    };
    let first = json!(hex(&hash(100_000)));
    assert_eq!(len(""), (4000, Some(first.clone())), "the default page");
    assert_eq!(len("?limit=5000"), (4000, Some(first.clone())), "capped");
    assert_eq!(len("?limit=4001"), (4000, Some(first)));
    assert_eq!(len("?offset=4000").0, 3);
    assert_eq!(len("?offset=3990&limit=100000").0, 13);
    assert_eq!(len("?offset=4003&limit=100000").0, 0);
    // So are the lists of keys and whitelist entries (same page rule), tested empty here.
    assert_eq!(api.get("/api/v1/keys?limit=99999"), (200, json!([])));
    assert_eq!(api.get("/api/v1/whitelist?limit=99999"), (200, json!([])));
}

fn torrent_detail(with_db: bool) {
    let (t, _dir) = start("api-torrent", "", with_db);
    let api = Api::of(&t, false);
    let h = hash(12);
    let ann = |v6, port, left| {
        let r = get(t.http_addr(v6), &common::announce(&h, port, left, ""));
        assert_eq!(r.failure(), None);
    };
    ann(false, 7121, 0);
    ann(false, 7120, 5);
    ann(true, 7122, 5);
    complete(t.http_addr(true), None, &h, 7123);
    let expected = json!({
        "info_hash": hex(&h),
        "seeders": 2,
        "completed": 1,
        "leechers": 2,
        "peers": [
            {"peer_addr": "127.0.0.1:7120", "seeder": false},
            {"peer_addr": "127.0.0.1:7121", "seeder": true},
            {"peer_addr": "[::1]:7122", "seeder": false},
            {"peer_addr": "[::1]:7123", "seeder": true},
        ],
    });
    let (status, v) = api.get(&format!("/api/v1/torrent/{}", hex(&h)));
    assert_eq!((status, &v), (200, &expected));
    // Upper-case hex and a trailing slash are the same torrent.
    let (status, v) = api.get(&format!("/api/v1/torrent/{}/", hex(&h).to_uppercase()));
    assert_eq!((status, &v), (200, &expected));

    let (status, v) = api.get(&format!("/api/v1/torrent/{}", hex(&hash(77))));
    assert_eq!((status, v), (404, err("torrent not known")));
    let long = format!("{}0", hex(&h));
    let non_hex = format!("{}g", &hex(&h)[..39]);
    for bad in [&hex(&h)[..39], &long, &non_hex, "%41%41", "x/y"] {
        let (status, v) = api.get(&format!("/api/v1/torrent/{bad}"));
        assert_eq!((status, v), (400, err("invalid info_hash")), "{bad}");
    }
    // A peer that stops leaves the list; the last one leaving keeps the torrent (completed 1).
    let r = get(
        t.http_addr(true),
        &common::announce(&h, 7123, 0, "&event=stopped"),
    );
    assert_eq!(r.failure(), None);
    let (_, v) = api.get(&format!("/api/v1/torrent/{}", hex(&h)));
    assert_eq!(v["peers"].as_array().unwrap().len(), 3);
    assert_eq!(
        (v["seeders"].clone(), v["leechers"].clone()),
        (json!(1), json!(2))
    );
}

/// Every `v1` route with a method it serves, and a body where it needs one.
fn v1_routes() -> Vec<(&'static str, String, Option<&'static str>)> {
    let h = hex(&hash(5));
    let key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    vec![
        ("GET", "/api/v1/stats".into(), None),
        ("GET", "/api/v1/stats?format=prometheus".into(), None),
        ("GET", "/api/v1/torrents".into(), None),
        ("GET", format!("/api/v1/torrents?info_hash={h}"), None),
        ("GET", format!("/api/v1/torrent/{h}"), None),
        (
            "POST",
            "/api/v1/keys".into(),
            Some(r#"{"key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","seconds_valid":null}"#),
        ),
        ("POST", "/api/v1/key/60".into(), None),
        ("DELETE", format!("/api/v1/key/{key}"), None),
        ("GET", "/api/v1/keys".into(), None),
        ("GET", "/api/v1/keys/reload".into(), None),
        ("POST", format!("/api/v1/whitelist/{h}"), None),
        ("DELETE", format!("/api/v1/whitelist/{h}"), None),
        ("GET", "/api/v1/whitelist".into(), None),
        ("GET", "/api/v1/whitelist/reload".into(), None),
        // Unknown v1 routes are behind the token too (nothing is revealed without it).
        ("GET", "/api/v1/nothing".into(), None),
    ]
}

fn every_v1_route_needs_a_token(with_db: bool) {
    let (mut t, _dir) = start("api-auth", "", with_db);
    let addr = t.api_addr(false);
    let wrong = "wrong-Token-0123456789";
    let refused = [
        Auth::None,
        Auth::Query(wrong),
        Auth::Bearer(wrong),
        Auth::Query(""),
        Auth::Bearer(""),
        // A prefix or an extension of a good token is not a good token.
        Auth::Query(&TOKEN[..TOKEN.len() - 1]),
        Auth::Bearer("s3cret-Token-0123456789x"),
    ];
    for (method, target, body) in v1_routes() {
        for auth in refused {
            let r = call(addr, method, &target, auth, body);
            assert_eq!(
                (r.status, json(&r)),
                (401, err("unauthorized")),
                "{method} {target} {auth:?}"
            );
        }
        // Another scheme, or the token as a header of another name, is refused as well.
        for header in [
            format!("Authorization: Basic {TOKEN}"),
            format!("Authorization: {TOKEN}"),
            format!("X-Token: {TOKEN}"),
        ] {
            let req = format!(
                "{method} {target} HTTP/1.1\r\nHost: a\r\n{header}\r\nConnection: close\r\n\r\n"
            );
            let r = common::raw(addr, req.as_bytes()).unwrap();
            assert_eq!(r.status, 401, "{method} {target} {header}");
        }
    }
    // Nothing changed behind the refusals.
    let api = Api::of(&t, false);
    assert_eq!(api.get("/api/v1/keys"), (200, json!([])));
    assert_eq!(api.get("/api/v1/whitelist"), (200, json!([])));

    // Each way of presenting a good token works, for every route (over IPv6 this time).
    let r = get(t.http_addr(false), &common::announce(&hash(5), 7050, 1, ""));
    assert_eq!(r.failure(), None);
    let addr6 = t.api_addr(true);
    let lower_bearer = |method: &str, target: &str| {
        let req = format!(
            "{method} {target} HTTP/1.1\r\nHost: a\r\nauthorization: bearer  {TOKEN2} \r\nConnection: close\r\n\r\n"
        );
        common::raw(addr6, req.as_bytes()).unwrap().status
    };
    let encoded: String = TOKEN.bytes().map(|b| format!("%{b:02X}")).collect();
    for (method, target, body) in v1_routes() {
        // The DELETEs follow the POSTs that created their key and whitelist entry.
        let expected = if target.ends_with("nothing") {
            404
        } else {
            200
        };
        if method == "POST" || method == "DELETE" {
            // Writes: once (a second POST of the same key would be a 409).
            let r = call(addr6, method, &target, Auth::Bearer(TOKEN), body);
            assert_eq!(r.status, expected, "{method} {target}");
            continue;
        }
        for auth in [Auth::Query(TOKEN), Auth::Bearer(TOKEN), Auth::Query(TOKEN2)] {
            let r = call(addr6, method, &target, auth, body);
            assert_eq!(r.status, expected, "{method} {target} {auth:?}");
        }
        let r = call(addr6, method, &target, Auth::Query(&encoded), body);
        assert_eq!(r.status, expected, "percent-encoded token: {target}");
        assert_eq!(lower_bearer(method, &target), expected, "{target}");
    }
    // A token given twice, once wrong: one good token is enough.
    let r = call(
        addr,
        "GET",
        &format!("/api/v1/stats?token={wrong}"),
        Auth::Bearer(TOKEN),
        None,
    );
    assert_eq!(r.status, 200);

    // No token, right or wrong, ever reaches the log (read it whole: stop the tracker first).
    assert!(t.stop().success());
    wait_log(&t, "counters:");
    let log = t.log_text();
    for secret in [TOKEN, TOKEN2, wrong, &encoded] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}

#[test]
fn wrong_method_is_405() {
    let (t, _dir) = start("api-405", "", false);
    let h = hex(&hash(5));
    let key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    for (method, target) in [
        ("POST", "/api/v1/stats".to_owned()),
        ("DELETE", "/api/v1/stats".to_owned()),
        ("PUT", "/api/v1/torrents".to_owned()),
        ("POST", format!("/api/v1/torrent/{h}")),
        ("DELETE", "/api/v1/keys".to_owned()),
        ("PATCH", "/api/v1/keys".to_owned()),
        ("POST", "/api/v1/keys/reload".to_owned()),
        ("GET", format!("/api/v1/key/{key}")),
        ("PUT", "/api/v1/key/60".to_owned()),
        ("GET", format!("/api/v1/whitelist/{h}")),
        ("PUT", format!("/api/v1/whitelist/{h}")),
        ("POST", "/api/v1/whitelist".to_owned()),
        ("DELETE", "/api/v1/whitelist/reload".to_owned()),
        ("HEAD", "/api/health_check".to_owned()),
    ] {
        let r = call(t.api_addr(false), method, &target, Auth::Query(TOKEN), None);
        assert_eq!(r.status, 405, "{method} {target}");
        if method != "HEAD" {
            assert_eq!(json(&r), err("method not allowed"), "{method} {target}");
        }
    }
    // Nothing was created by them.
    let api = Api::of(&t, false);
    assert_eq!(api.get("/api/v1/keys"), (200, json!([])));
    assert_eq!(api.get("/api/v1/whitelist"), (200, json!([])));
}

#[test]
fn bodies_and_heads_over_the_limits_are_413() {
    let (t, _dir) = start("api-413", "", false);
    let addr = t.api_addr(false);
    // A body of exactly 4096 bytes is read (a key request padded with spaces)...
    let key = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";
    let small = format!(r#"{{"key":"{key}","seconds_valid":null}}"#);
    let padded = format!("{small}{}", " ".repeat(4096 - small.len()));
    let r = call(
        addr,
        "POST",
        "/api/v1/keys",
        Auth::Query(TOKEN),
        Some(&padded),
    );
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    // ... one byte more is refused at once, before the body arrives, and the connection closes.
    let mut s = common::connect(addr);
    let head = format!(
        "POST /api/v1/keys?token={TOKEN} HTTP/1.1\r\nHost: a\r\nContent-Length: 4097\r\n\r\n"
    );
    std::io::Write::write_all(&mut s, head.as_bytes()).unwrap();
    let r = common::read_response(&mut s).unwrap();
    assert_eq!((r.status, json(&r)), (413, err("body too large")));
    let mut rest = Vec::new();
    assert_eq!(s.read_to_end(&mut rest).unwrap(), 0, "closed after the 413");
    // A huge Content-Length the same.
    let head = format!(
        "POST /api/v1/keys?token={TOKEN} HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n"
    );
    let r = common::raw(addr, head.as_bytes()).unwrap();
    assert!(matches!(r.status, 400 | 413), "{}", r.status);
    // A head over http.max_request_size (8192).
    let long = format!(
        "GET /api/v1/stats?token={TOKEN}&pad={} HTTP/1.1\r\nHost: a\r\n\r\n",
        "x".repeat(9000)
    );
    let r = common::raw(addr, long.as_bytes()).unwrap();
    assert_eq!((r.status, json(&r)), (413, err("request too large")));
    // A chunked body is refused (bodies come with Content-Length).
    let chunked = format!(
        "POST /api/v1/keys?token={TOKEN} HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    );
    let r = common::raw(addr, chunked.as_bytes()).unwrap();
    assert_eq!(r.status, 400);
    // Only the padded key was created.
    assert_eq!(Api::of(&t, false).keys(), [key]);
    // The tracker still serves.
    assert_eq!(
        call(addr, "GET", "/api/health_check", Auth::None, None).status,
        200
    );
}

fn keep_alive_and_pipelining(with_db: bool) {
    let (t, _dir) = start("api-keepalive", "", with_db);
    let key = "CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC";
    let h = hex(&hash(8));
    for v6 in [false, true] {
        let mut c = Conn::open(t.api_addr(v6));
        let keep = |method, target: &str, body| {
            request_bytes(method, target, Auth::Bearer(TOKEN), body, false)
        };
        // One after the other on the same connection, a write (deferred with a database) in
        // the middle.
        let body = format!(r#"{{"key":"{key}","seconds_valid":null}}"#);
        let steps: [(Vec<u8>, u16); 6] = [
            (keep("GET", "/api/health_check", None), 200),
            (keep("POST", "/api/v1/keys", Some(&body)), 200),
            (keep("GET", "/api/v1/keys", None), 200),
            (keep("GET", "/api/v1/nowhere", None), 404),
            (keep("DELETE", &format!("/api/v1/key/{key}"), None), 200),
            (keep("GET", "/api/v1/keys", None), 200),
        ];
        let mut bodies = Vec::new();
        for (bytes, status) in steps {
            c.send(&bytes);
            let r = c.read();
            assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&bytes));
            assert_eq!(r.header("connection").as_deref(), Some("keep-alive"));
            bodies.push(json(&r));
        }
        assert_eq!(bodies[1]["key"], key);
        assert_eq!(bodies[2][0]["key"], key);
        assert_eq!(bodies[5], json!([]));

        // Pipelined in one write: each answer in order, each read after the write before it
        // was applied.
        let mut bytes = Vec::new();
        bytes.extend(keep("POST", &format!("/api/v1/whitelist/{h}"), None));
        bytes.extend(keep("GET", "/api/v1/whitelist", None));
        bytes.extend(keep("DELETE", &format!("/api/v1/whitelist/{h}"), None));
        bytes.extend(keep("DELETE", &format!("/api/v1/whitelist/{h}"), None));
        bytes.extend(keep("GET", "/api/v1/whitelist", None));
        bytes.extend(request_bytes(
            "GET",
            "/api/v1/stats",
            Auth::Query(TOKEN),
            None,
            true,
        ));
        c.send(&bytes);
        let got: Vec<(u16, Value)> = (0..6)
            .map(|_| {
                let r = c.read();
                (r.status, json(&r))
            })
            .collect();
        assert_eq!(got[0], (200, ok()));
        assert_eq!(got[1], (200, json!([h])));
        assert_eq!(got[2], (200, ok()));
        assert_eq!(got[3], (404, err("info_hash not on the whitelist")));
        assert_eq!(got[4], (200, json!([])));
        assert_eq!(got[5].0, 200);
        // The last request asked to close.
        c.0.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut rest = Vec::new();
        assert_eq!(c.0.read_to_end(&mut rest).unwrap(), 0);
    }
}
