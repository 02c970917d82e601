//! The REST API's writes against the real binary: keys (`POST /api/v1/keys`,
//! `POST /api/v1/key/SECONDS`, `DELETE /api/v1/key/KEY`, the list, the reload) and whitelist
//! entries (`POST`/`DELETE /api/v1/whitelist/HASH`, the list, the reload), each with and without
//! `db.path`; and what they do to a private or listed tracker's announces over HTTP and UDP.

mod api_common;
mod common;

use std::path::Path;

use api_common::*;
use common::{Tracker, get, hash};
use opentracker_rs::types::Event;
use serde_json::{Value, json};

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
    keys_endpoints,
    far_expiry_is_refused_not_fatal,
    whitelist_endpoints,
    private_mode_takes_keys_from_the_api,
    listed_mode_takes_the_whitelist_from_the_api,
);

const KEY_A: &str = "YZSl4lMZupRuOpSRC3krIKR5BPB14nrJ";
const KEY_B: &str = "rQp2ZKeY8mIOPgNv1HhXn6MW5T3jGs0d";

fn start(name: &str, extra: &str, with_db: bool) -> (Tracker, Option<Dir>) {
    let dir = with_db.then(|| Dir::new(name));
    let db = dir.as_ref().map(Dir::db);
    let t = Tracker::start(name, &config(extra, db.as_deref()));
    (t, dir)
}

/// Checks an AuthKey object: exactly `key`, `valid_until`, `expiry_time`; the key is 32 ASCII
/// alphanumerics; `valid_until` is `seconds` after a time in `[before, after]` (or null), and
/// `expiry_time` is it written as torrust does (null with it). Returns (key, valid_until).
fn check_auth_key(v: &Value, seconds: Option<u64>, before: u64, after: u64) -> (String, Value) {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"));
    let mut fields: Vec<&str> = obj.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["expiry_time", "key", "valid_until"], "{v}");
    let key = v["key"].as_str().unwrap().to_owned();
    assert_eq!(key.len(), 32, "{key}");
    assert!(key.bytes().all(|b| b.is_ascii_alphanumeric()), "{key}");
    match seconds {
        None => {
            assert_eq!(v["valid_until"], Value::Null, "{v}");
            assert_eq!(v["expiry_time"], Value::Null, "{v}");
        }
        Some(s) => {
            let until = v["valid_until"].as_u64().unwrap_or_else(|| panic!("{v}"));
            assert!(
                (before + s..=after + s).contains(&until),
                "valid_until {until} not {s} s after [{before}, {after}]"
            );
            assert_eq!(v["expiry_time"], json!(utc(until)), "{v}");
        }
    }
    (key, v["valid_until"].clone())
}

/// The key list's entry for `key`.
fn listed(key: &str, valid_until: &Value) -> Value {
    let expiry = valid_until.as_u64().map(utc);
    json!({"key": key, "valid_until": valid_until, "expiry_time": expiry})
}

/// Writes `sql` into the tracker's database from a second connection (an operator's shell).
fn db_exec(db: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    conn.execute_batch(sql).unwrap();
}

fn keys_endpoints(with_db: bool) {
    let (t, dir) = start("api-keys", "", with_db);
    let api = Api::of(&t, false);
    assert_eq!(api.get("/api/v1/keys"), (200, json!([])));

    // A generated permanent key.
    let before = unix_now();
    let v = api.new_key(r#"{"key":null,"seconds_valid":null}"#);
    let (gen1, _) = check_auth_key(&v, None, before, unix_now());
    // A given key, valid for an hour.
    let before = unix_now();
    let v = api.new_key(&format!(r#"{{"key":"{KEY_A}","seconds_valid":3600}}"#));
    let (key, until_a) = check_auth_key(&v, Some(3600), before, unix_now());
    assert_eq!(key, KEY_A);
    // A generated key valid for two minutes; a given permanent key; missing fields are null.
    let before = unix_now();
    let v = api.new_key(r#"{"key":null,"seconds_valid":120}"#);
    let (gen2, until_2) = check_auth_key(&v, Some(120), before, unix_now());
    let v = api.new_key(&format!(r#"{{"key":"{KEY_B}"}}"#));
    check_auth_key(&v, None, 0, 0);
    let v = api.new_key("{}");
    let (gen3, _) = check_auth_key(&v, None, 0, 0);
    // torrust's older route: POST /api/v1/key/SECONDS.
    let before = unix_now();
    let (status, v) = api.send("POST", "/api/v1/key/600", None);
    assert_eq!(status, 200, "{v}");
    let (gen4, until_4) = check_auth_key(&v, Some(600), before, unix_now());
    let all = [&gen1, &gen2, &gen3, &gen4];
    assert!(all.iter().all(|k| *k != KEY_A && *k != KEY_B));
    let distinct: std::collections::HashSet<&&String> = all.iter().collect();
    assert_eq!(distinct.len(), 4, "generated keys differ");

    // Duplicates: 409, and the first key stays as it was.
    for body in [
        format!(r#"{{"key":"{KEY_A}","seconds_valid":3600}}"#),
        format!(r#"{{"key":"{KEY_A}","seconds_valid":null}}"#),
        format!(r#"{{"key":"{gen1}","seconds_valid":10}}"#),
    ] {
        let (status, v) = api.send("POST", "/api/v1/keys", Some(&body));
        assert_eq!((status, v), (409, err("key exists")), "{body}");
    }
    // Bad JSON and bad keys: 400.
    let long_key = format!("{KEY_A}x");
    for body in [
        "",
        "{",
        "not json",
        "[]",
        r#"{"key":5,"seconds_valid":null}"#,
        r#"{"key":null,"seconds_valid":-1}"#,
        r#"{"key":null,"seconds_valid":"10"}"#,
        r#"{"key":null,"seconds_valid":1.5}"#,
    ] {
        let (status, v) = api.send("POST", "/api/v1/keys", Some(body));
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(v["status"], "error", "{body}");
        let message = v["message"].as_str().unwrap();
        assert!(
            message.starts_with("invalid JSON body"),
            "{body}: {message}"
        );
    }
    for key in [
        "short",
        &KEY_A[..31],
        &long_key,
        "YZSl4lMZupRuOpSRC3krIKR5BPB14nr-",
        "YZSl4lMZupRuOpSRC3krIKR5BPB14n\u{e9}",
        "",
    ] {
        let body = format!(r#"{{"key":"{key}","seconds_valid":null}}"#);
        let (status, v) = api.send("POST", "/api/v1/keys", Some(&body));
        let want = err("invalid key: 32 ASCII letters and digits expected");
        assert_eq!((status, v), (400, want), "{key:?}");
    }
    let (status, v) = api.send(
        "POST",
        "/api/v1/keys",
        Some(r#"{"key":null,"seconds_valid":0}"#),
    );
    let zero = err("invalid key duration: seconds_valid must be at least 1");
    assert_eq!((status, v), (400, zero.clone()));
    assert_eq!(api.send("POST", "/api/v1/key/0", None), (400, zero));
    for bad in ["abc", "-5", "1.5", "99999999999999999999", ""] {
        let (status, v) = api.send("POST", &format!("/api/v1/key/{bad}"), None);
        if bad.is_empty() {
            // `/api/v1/key/` is `/api/v1/key` (a trailing slash is dropped): no such route.
            assert_eq!((status, v), (404, err("not found")));
        } else {
            assert_eq!((status, v), (400, err("invalid key duration")), "{bad}");
        }
    }

    // The list: sorted by key, with torrust's fields.
    let mut want = vec![
        listed(&gen1, &Value::Null),
        listed(KEY_A, &until_a),
        listed(&gen2, &until_2),
        listed(KEY_B, &Value::Null),
        listed(&gen3, &Value::Null),
        listed(&gen4, &until_4),
    ];
    want.sort_by(|a, b| a["key"].as_str().cmp(&b["key"].as_str()));
    assert_eq!(api.get("/api/v1/keys"), (200, json!(want)));
    assert_eq!(
        api.get("/api/v1/keys?offset=1&limit=2"),
        (200, json!(want[1..3]))
    );
    assert_eq!(api.get("/api/v1/keys?offset=5"), (200, json!(want[5..])));
    assert_eq!(api.get("/api/v1/keys?offset=6"), (200, json!([])));
    assert_eq!(api.get("/api/v1/keys?limit=0"), (200, json!([])));
    let (status, _) = api.get("/api/v1/keys?limit=many");
    assert_eq!(status, 400);

    // Delete: ok, then 404; a bad key is 400.
    let del = |key: &str| api.send("DELETE", &format!("/api/v1/key/{key}"), None);
    assert_eq!(del(KEY_A), (200, ok()));
    assert_eq!(del(KEY_A), (404, err("key not known")));
    assert_eq!(
        del("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        (404, err("key not known"))
    );
    for bad in ["short", "YZSl4lMZupRuOpSRC3krIKR5BPB14nr-", &long_key] {
        assert_eq!(del(bad), (400, err("invalid key")), "{bad}");
    }
    want.retain(|k| k["key"] != KEY_A);
    assert_eq!(api.get("/api/v1/keys"), (200, json!(want)));
    // A deleted key can be added again.
    api.add_key(KEY_A);
    assert_eq!(del(KEY_A), (200, ok()));

    // Reload: RAM and the database agree, so nothing changes...
    assert_eq!(api.get("/api/v1/keys/reload"), (200, ok()));
    assert_eq!(api.get("/api/v1/keys"), (200, json!(want)));
    // ... and with a database, rows an operator wrote or deleted behind the tracker's back
    // count once reloaded.
    if let Some(dir) = dir {
        let far = unix_now() + 86_400;
        db_exec(
            &dir.db(),
            &format!(
                "INSERT INTO keys (key, valid_until) VALUES ('{KEY_A}', {far});
                 INSERT INTO keys (key, valid_until) VALUES ('bad key', NULL);
                 DELETE FROM keys WHERE key = '{gen1}';"
            ),
        );
        assert_eq!(
            api.get("/api/v1/keys"),
            (200, json!(want)),
            "not before reload"
        );
        assert_eq!(api.get("/api/v1/keys/reload"), (200, ok()));
        want.retain(|k| k["key"] != gen1.as_str());
        want.push(listed(KEY_A, &json!(far)));
        want.sort_by(|a, b| a["key"].as_str().cmp(&b["key"].as_str()));
        assert_eq!(api.get("/api/v1/keys"), (200, json!(want)));
    }
}

/// Keys expiring after 9999-12-31 23:59:59 UTC (the last `expiry_time` that can be written)
/// are refused; this used to stop the tracker.
fn far_expiry_is_refused_not_fatal(with_db: bool) {
    let (t, _dir) = start("api-far", "", with_db);
    let api = Api::of(&t, false);
    let too_far = err("invalid key duration: the key would expire after 9999-12-31 23:59:59 UTC");
    let last = 253_402_300_799 - unix_now();
    for seconds in [last + 10, 253_402_300_800, u64::MAX] {
        let route = api.send("POST", &format!("/api/v1/key/{seconds}"), None);
        assert_eq!(route, (400, too_far.clone()), "{seconds}");
        let body = format!(r#"{{"key":"{KEY_A}","seconds_valid":{seconds}}}"#);
        let (status, v) = api.send("POST", "/api/v1/keys", Some(&body));
        assert_eq!((status, v), (400, too_far.clone()), "{seconds}");
    }
    // Up to then is fine (the clock may tick between our time and the tracker's).
    let v = api.new_key(&format!(
        r#"{{"key":"{KEY_A}","seconds_valid":{}}}"#,
        last - 5
    ));
    let until = v["valid_until"].as_u64().unwrap();
    assert!(
        until <= 253_402_300_799 && until > 253_402_300_799 - 10,
        "{v}"
    );
    assert!(
        v["expiry_time"]
            .as_str()
            .unwrap()
            .starts_with("9999-12-31 23:59:"),
        "{v}"
    );
    assert_eq!(api.keys(), [KEY_A]);
    assert_eq!(api.get("/api/health_check"), (200, json!({"status": "Ok"})));
}

fn whitelist_endpoints(with_db: bool) {
    let (t, dir) = start("api-whitelist", "", with_db);
    let api = Api::of(&t, true);
    let path = |h: &str| format!("/api/v1/whitelist/{h}");
    assert_eq!(api.get("/api/v1/whitelist"), (200, json!([])));
    let (a, b, c) = (hex(&hash(3)), hex(&hash(1)), hex(&hash(2)));
    assert_eq!(api.send("POST", &path(&a), None), (200, ok()));
    assert_eq!(
        api.send("POST", &path(&b.to_uppercase()), None),
        (200, ok())
    );
    assert_eq!(api.send("POST", &path(&c), None), (200, ok()));
    // Adding an entry twice is not an error.
    assert_eq!(api.send("POST", &path(&a), None), (200, ok()));
    let long = format!("{a}0");
    for bad in ["zz", &a[..39], &long, "%41", "x/y"] {
        for method in ["POST", "DELETE"] {
            let want = (400, err("invalid info_hash"));
            assert_eq!(api.send(method, &path(bad), None), want, "{method} {bad}");
        }
    }
    // The list: lower-case hex, sorted; paginated.
    assert_eq!(api.get("/api/v1/whitelist"), (200, json!([b, c, a])));
    assert_eq!(api.get("/api/v1/whitelist?offset=1"), (200, json!([c, a])));
    assert_eq!(
        api.get("/api/v1/whitelist?offset=1&limit=1"),
        (200, json!([c]))
    );
    assert_eq!(api.get("/api/v1/whitelist?offset=3"), (200, json!([])));
    assert_eq!(api.get("/api/v1/whitelist?limit=0"), (200, json!([])));
    assert_eq!(api.get("/api/v1/whitelist?offset=x").0, 400);
    // Delete: ok, then 404.
    assert_eq!(
        api.send("DELETE", &path(&c.to_uppercase()), None),
        (200, ok())
    );
    let gone = (404, err("info_hash not on the whitelist"));
    assert_eq!(api.send("DELETE", &path(&c), None), gone);
    assert_eq!(api.get("/api/v1/whitelist"), (200, json!([b, a])));

    assert_eq!(api.get("/api/v1/whitelist/reload"), (200, ok()));
    assert_eq!(api.get("/api/v1/whitelist"), (200, json!([b, a])));
    if let Some(dir) = dir {
        // Rows written behind the tracker's back count once reloaded (upper-case hex too; a bad
        // row is skipped).
        let d = hex(&hash(4));
        db_exec(
            &dir.db(),
            &format!(
                "INSERT INTO whitelist (info_hash) VALUES ('{}');
                 INSERT INTO whitelist (info_hash) VALUES ('not hex');
                 DELETE FROM whitelist WHERE info_hash = '{b}';",
                d.to_uppercase()
            ),
        );
        assert_eq!(api.get("/api/v1/whitelist"), (200, json!([b, a])));
        assert_eq!(api.get("/api/v1/whitelist/reload"), (200, ok()));
        assert_eq!(api.get("/api/v1/whitelist"), (200, json!([a, d])));
    }
}

fn private_mode_takes_keys_from_the_api(with_db: bool) {
    let (t, _dir) = start("api-private", "tracker.mode private", with_db);
    let api = Api::of(&t, false);
    let (v4, v6) = (t.http_addr(false), t.http_addr(true));
    let h = hash(40);
    let refused = |addr, key: Option<&str>| {
        get(addr, &announce_keyed(key, &h, 7400, 1, ""))
            .failure()
            .unwrap_or_else(|| panic!("announce with {key:?} was served"))
    };
    assert!(refused(v4, None).contains("missing key"));
    assert!(refused(v4, Some(KEY_A)).contains("unknown authentication key"));

    // A key made through the API works at once, over both families, for announces and scrapes.
    api.add_key(KEY_A);
    for addr in [v4, v6] {
        let r = get(addr, &announce_keyed(Some(KEY_A), &h, 7400, 1, ""));
        assert_eq!(r.failure(), None);
    }
    complete(v4, Some(KEY_A), &h, 7401);
    assert_eq!(scrape_downloaded(v4, Some(KEY_A), &h), Some(1));
    assert_eq!(scrape_downloaded(v4, None, &h), Some(0), "no key: zeros");
    // A generated one too, and a time-bound one.
    let generated = api.new_key(r#"{"key":null,"seconds_valid":3600}"#)["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = get(v6, &announce_keyed(Some(&generated), &h, 7402, 1, ""));
    assert_eq!(r.failure(), None);
    let (_, v) = api.get(&format!("/api/v1/torrent/{}", hex(&h)));
    assert_eq!(
        (v["seeders"].clone(), v["leechers"].clone()),
        (json!(1), json!(3))
    );

    // Deleted: refused from the next announce on (the other key still works).
    assert_eq!(
        api.send("DELETE", &format!("/api/v1/key/{KEY_A}"), None),
        (200, ok())
    );
    for addr in [v4, v6] {
        assert!(refused(addr, Some(KEY_A)).contains("unknown authentication key"));
    }
    assert_eq!(
        scrape_downloaded(v4, Some(KEY_A), &h),
        Some(0),
        "a deleted key sees zeros"
    );
    assert_eq!(
        get(v4, &announce_keyed(Some(&generated), &h, 7402, 1, "")).failure(),
        None
    );

    // A key valid for 2 seconds works now and is refused once its time is over, as expired
    // (the timer keeps an expired key in RAM for an hour, so its user is told why).
    let short = api.new_key(r#"{"key":null,"seconds_valid":2}"#)["key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        get(v4, &announce_keyed(Some(&short), &h, 7403, 1, "")).failure(),
        None
    );
    let reason = wait_for(6, "the 2-second key to expire", || {
        get(v4, &announce_keyed(Some(&short), &h, 7403, 1, "")).failure()
    });
    assert!(reason.contains("key has expired"), "{reason}");
}

fn listed_mode_takes_the_whitelist_from_the_api(with_db: bool) {
    let (t, _dir) = start("api-listed", "tracker.mode listed", with_db);
    let api = Api::of(&t, false);
    let (v4, v6) = (t.http_addr(false), t.http_addr(true));
    let (h, other) = (hash(50), hash(51));
    let not_authorized = "Requested download is not authorized for use with this tracker.";
    let ann = |addr, h: &[u8; 20], port| get(addr, &common::announce(h, port, 1, "")).failure();
    assert_eq!(ann(v4, &h, 7500).as_deref(), Some(not_authorized));

    api.whitelist_add(&h);
    assert_eq!(ann(v4, &h, 7500), None);
    assert_eq!(ann(v6, &h, 7501), None);
    complete(v4, None, &h, 7502);
    let u = Udp::new(t.udp_addr(false));
    let id = u.connect();
    // (A UDP reply counts the requester's family: 7500 and 7502, and itself.)
    assert_eq!(u.announce(id, &h, 0, Event::Started), (1, 2));
    assert_eq!(ann(v4, &other, 7500).as_deref(), Some(not_authorized));
    assert_eq!(scrape_downloaded(v4, None, &h), Some(1));
    let (status, v) = api.get(&format!("/api/v1/torrent/{}", hex(&h)));
    assert_eq!(status, 200);
    assert_eq!(v["peers"].as_array().unwrap().len(), 4);

    // Removed: the torrent, its peers and its count are dropped at once, and announces refused.
    assert_eq!(
        api.send("DELETE", &format!("/api/v1/whitelist/{}", hex(&h)), None),
        (200, ok())
    );
    let (status, v) = api.get(&format!("/api/v1/torrent/{}", hex(&h)));
    assert_eq!((status, v), (404, err("torrent not known")));
    assert_eq!(api.get("/api/v1/torrents"), (200, json!([])));
    assert_eq!(scrape_downloaded(v4, None, &h), None);
    assert_eq!(ann(v6, &h, 7501).as_deref(), Some(not_authorized));
    // Listed again: a fresh swarm.
    api.whitelist_add(&h);
    assert_eq!(ann(v4, &h, 7500), None);
    let (_, v) = api.get(&format!("/api/v1/torrent/{}", hex(&h)));
    assert_eq!(
        (v["completed"].clone(), v["leechers"].clone()),
        (json!(0), json!(1))
    );
}
