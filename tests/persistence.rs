//! `db.path` (SQLite) and `db.url` (MySQL / MariaDB) against the real binary, each body run
//! with both (`both_backends!`; the MySQL runs need `OTRS_TEST_MYSQL_URL`, see
//! tests/api_common/backend.rs): keys, whitelist entries and `downloaded` counts survive a
//! clean stop, a `kill -9` after a batch and a `kill -9` in the middle of a burst of writes
//! (every acknowledged write is there); a database made with torrust's statements and rows is
//! read; `tracker.state_file` and the database together give each torrent the larger count.
//! Start-up and run-time database failures: tests/persistence_errors.rs.

mod api_common;
mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api_common::*;
use common::{Tracker, get, hash};
use serde_json::{Value, json};

const KEY_A: &str = "YZSl4lMZupRuOpSRC3krIKR5BPB14nrJ";
const KEY_B: &str = "rQp2ZKeY8mIOPgNv1HhXn6MW5T3jGs0d";
const KEY_C: &str = "c0ffee00c0ffee00c0ffee00c0ffee00";
const KEY_D: &str = "FarFarAwayFarFarAwayFarFarAway00";

fn start(name: &str, extra: &str, db: &TestDb) -> Tracker {
    Tracker::start(name, &config_with(extra, db))
}

both_backends!(
    a_clean_stop_writes_what_is_pending_and_a_restart_loads_it,
    counts_are_written_behind_in_batches_and_survive_kill_9,
    kill_9_during_a_burst_keeps_every_acknowledged_write,
    reads_a_database_made_by_torrust,
    state_file_and_database_each_torrent_gets_the_larger_count,
    sighup_and_the_api_reload_the_whitelist_table_in_listed_mode,
);

/// SIGKILL, then reap.
fn kill_9(t: &mut Tracker) {
    t.child.kill().unwrap();
    t.child.wait().unwrap();
}

/// Every key over all pages of `GET /api/v1/keys`, as full objects.
fn all_keys(api: &Api) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let (status, v) = api.get(&format!("/api/v1/keys?offset={}", out.len()));
        assert_eq!(status, 200);
        let page = v.as_array().unwrap().clone();
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

fn a_clean_stop_writes_what_is_pending_and_a_restart_loads_it(dir: TestDb) {
    let started = Instant::now();
    let mut t = start("persist-clean-1", "tracker.mode private_listed", &dir);
    let api = Api::of(&t, false);
    api.add_key(KEY_A);
    let timed = api.new_key(r#"{"key":null,"seconds_valid":3600}"#);
    let timed_key = timed["key"].as_str().unwrap().to_owned();
    let (h1, h2, h3) = (hash(1), hash(2), hash(3));
    api.whitelist_add(&h1);
    api.whitelist_add(&h2);
    api.whitelist_add(&h3);
    assert_eq!(
        api.send("DELETE", &format!("/api/v1/whitelist/{}", hex(&h3)), None),
        (200, ok())
    );
    let (v4, v6) = (t.http_addr(false), t.http_addr(true));
    complete(v4, Some(KEY_A), &h1, 7001);
    complete(v4, Some(KEY_A), &h1, 7002);
    complete(v6, Some(&timed_key), &h1, 7003);
    complete(v6, Some(KEY_A), &h2, 7004);
    let keys_before = all_keys(&api);
    assert_eq!(keys_before.len(), 2);
    // Acknowledged writes are in the file already; the counts wait for their batch (every 5 s
    // from the start), unless this machine was slow enough to reach it.
    let db = &dir;
    assert_eq!(db.count_keys(), 2);
    if started.elapsed() < Duration::from_secs(4) {
        assert_eq!(db.completed(&h1), None, "counts are written behind");
    }
    assert!(t.stop().success());
    wait_log(&t, "counters:");
    assert_eq!(db.completed(&h1), Some(3), "written at SIGTERM");
    assert_eq!(db.completed(&h2), Some(1));

    let t = start("persist-clean-2", "tracker.mode private_listed", &dir);
    wait_log(
        &t,
        "database loaded: 2 keys (0 long expired, not loaded), 2 whitelist entries, 2 downloaded counts",
    );
    let api = Api::of(&t, true);
    assert_eq!(all_keys(&api), keys_before);
    assert_eq!(api.whitelist(), [hex(&h1), hex(&h2)]);
    let v4 = t.http_addr(false);
    assert_eq!(scrape_downloaded(v4, Some(KEY_A), &h1), Some(3));
    assert_eq!(scrape_downloaded(v4, Some(&timed_key), &h2), Some(1));
    assert_eq!(scrape_downloaded(v4, Some(KEY_A), &h3), None, "not listed");
    // The keys and the list gate announces again; counts go on from the loaded value.
    complete(v4, Some(&timed_key), &h2, 7005);
    assert_eq!(scrape_downloaded(v4, Some(KEY_A), &h2), Some(2));
    let r = get(v4, &announce_keyed(Some(KEY_B), &h1, 7006, 1, ""));
    assert!(r.failure().unwrap().contains("unknown authentication key"));
    let r = get(v4, &announce_keyed(Some(KEY_A), &h3, 7006, 1, ""));
    assert!(r.failure().unwrap().contains("not authorized"));
}

fn counts_are_written_behind_in_batches_and_survive_kill_9(dir: TestDb) {
    let db = &dir;
    let mut t = start("persist-batch-1", "", &dir);
    let v4 = t.http_addr(false);
    let (h1, h2) = (hash(11), hash(12));
    let before = Instant::now();
    complete(v4, None, &h1, 7001);
    complete(t.http_addr(true), None, &h1, 7002);
    complete(v4, None, &h2, 7003);
    // One batch every 5 seconds: both counts land in the same transaction.
    wait_for(15, "the batch of counts", || {
        (db.completed(&h1) == Some(2)).then_some(())
    });
    assert_eq!(db.completed(&h2), Some(1));
    assert!(before.elapsed() < Duration::from_secs(12));
    // Later changes go in the next batch, only the changed torrent.
    complete(v4, None, &h1, 7004);
    wait_for(15, "the next batch", || {
        (db.completed(&h1) == Some(3)).then_some(())
    });
    assert_eq!(db.completed(&h2), Some(1));
    kill_9(&mut t);

    let t = start("persist-batch-2", "", &dir);
    let v4 = t.http_addr(false);
    assert_eq!(scrape_downloaded(v4, None, &h1), Some(3));
    assert_eq!(scrape_downloaded(v4, None, &h2), Some(1));
    let api = Api::of(&t, false);
    let (_, v) = api.get("/api/v1/torrents");
    let want = json!([
        {"info_hash": hex(&h1), "seeders": 0, "completed": 3, "leechers": 0},
        {"info_hash": hex(&h2), "seeders": 0, "completed": 1, "leechers": 0},
    ]);
    assert_eq!(v, want, "loaded counts, no peers");
}

/// Sends one request on a fresh connection; the status, or `None` when the tracker died first.
fn try_call(addr: SocketAddr, method: &str, target: &str, body: Option<&str>) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(&request_bytes(
        method,
        target,
        Auth::Bearer(TOKEN),
        body,
        true,
    ))
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace().nth(1)?.parse().ok()
}

/// A key from a number: 32 alphanumerics.
fn numbered_key(prefix: char, n: u32) -> String {
    format!("{prefix}{n:031}")
}

fn kill_9_during_a_burst_keeps_every_acknowledged_write(dir: TestDb) {
    let db = &dir;
    // Before the burst: keys that the burst deletes (in the database from the start)...
    let doomed: Vec<String> = (0..1000).map(|n| numbered_key('D', n)).collect();
    db.create_torrust_schema();
    let rows: Vec<(&str, Option<String>)> = doomed.iter().map(|k| (k.as_str(), None)).collect();
    db.insert_keys(&rows);
    let mut t = start("persist-burst-1", "", &dir);
    let addr = t.api_addr(false);
    let http = t.http_addr(false);
    // ... and counts committed by a batch.
    let counted: Vec<[u8; 20]> = (0..5).map(|n| hash(500 + n)).collect();
    for (i, h) in counted.iter().enumerate() {
        complete(http, None, h, 7000 + i as u16);
    }
    wait_for(15, "the first batch of counts", || {
        counted
            .iter()
            .all(|h| db.completed(h) == Some(1))
            .then_some(())
    });

    // The burst: four writers and a stream of completions; each ends when the kill cuts it.
    let added = Arc::new(Mutex::new(Vec::new()));
    let deleted = Arc::new(Mutex::new(Vec::new()));
    let listed = Arc::new(Mutex::new(Vec::new()));
    let completions = Arc::new(Mutex::new(vec![1u32; counted.len()]));
    let mut threads = Vec::new();
    for worker in 0..2u32 {
        let added = added.clone();
        threads.push(std::thread::spawn(move || {
            for n in 0.. {
                let key = numbered_key('K', worker * 1_000_000 + n);
                let body = format!(r#"{{"key":"{key}","seconds_valid":null}}"#);
                match try_call(addr, "POST", "/api/v1/keys", Some(&body)) {
                    Some(200) => added.lock().unwrap().push(key),
                    Some(s) => panic!("POST key: {s}"),
                    None => break,
                }
            }
        }));
    }
    {
        let (doomed, deleted) = (doomed.clone(), deleted.clone());
        threads.push(std::thread::spawn(move || {
            for key in doomed {
                match try_call(addr, "DELETE", &format!("/api/v1/key/{key}"), None) {
                    Some(200) => deleted.lock().unwrap().push(key),
                    Some(s) => panic!("DELETE key: {s}"),
                    None => break,
                }
            }
        }));
    }
    {
        let listed = listed.clone();
        threads.push(std::thread::spawn(move || {
            for n in 0..100_000 {
                let h = hash(1_000_000 + n);
                match try_call(
                    addr,
                    "POST",
                    &format!("/api/v1/whitelist/{}", hex(&h)),
                    None,
                ) {
                    Some(200) => listed.lock().unwrap().push(hex(&h)),
                    Some(s) => panic!("POST whitelist: {s}"),
                    None => break,
                }
            }
        }));
    }
    {
        let (counted, completions) = (counted.clone(), completions.clone());
        threads.push(std::thread::spawn(move || {
            'outer: for round in 0u32.. {
                for (i, h) in counted.iter().enumerate() {
                    let port = (1024 + (round * 8 + i as u32) % 60_000) as u16;
                    for (left, event) in [(10, "&event=started"), (0, "&event=completed")] {
                        let target = common::announce(h, port, left, event);
                        let sent = TcpStream::connect(http).and_then(|mut s| {
                            s.set_read_timeout(Some(Duration::from_secs(5)))?;
                            write!(s, "GET {target} HTTP/1.1\r\nConnection: close\r\n\r\n")?;
                            let mut b = Vec::new();
                            s.read_to_end(&mut b).map(|_| b)
                        });
                        match sent {
                            Ok(b) if !b.is_empty() => {}
                            _ => break 'outer,
                        }
                    }
                    // Both answered: the count rose (only ever counted as an upper bound).
                    completions.lock().unwrap()[i] += 1;
                }
            }
        }));
    }
    // Kill in the middle of it: once every stream has had some writes acknowledged.
    wait_for(60, "acknowledged writes of every kind", || {
        let enough = added.lock().unwrap().len() >= 300
            && deleted.lock().unwrap().len() >= 150
            && listed.lock().unwrap().len() >= 150;
        enough.then_some(())
    });
    kill_9(&mut t);
    for th in threads {
        th.join().unwrap();
    }
    let added = added.lock().unwrap().clone();
    let deleted = deleted.lock().unwrap().clone();
    let listed = listed.lock().unwrap().clone();
    let completions = completions.lock().unwrap().clone();
    assert!(deleted.len() < doomed.len(), "the kill came mid-burst");
    eprintln!(
        "acknowledged before the kill: {} keys added, {} deleted, {} whitelisted; \
         completions {completions:?}",
        added.len(),
        deleted.len(),
        listed.len()
    );

    let t = start("persist-burst-2", "", &dir);
    let api = Api::of(&t, false);
    let keys: std::collections::HashSet<String> = all_keys(&api)
        .iter()
        .map(|k| k["key"].as_str().unwrap().to_owned())
        .collect();
    for k in &added {
        assert!(keys.contains(k), "acknowledged key {k} lost");
    }
    for k in &deleted {
        assert!(!keys.contains(k), "acknowledged deletion of {k} lost");
    }
    let whitelist: std::collections::HashSet<String> = api.whitelist().into_iter().collect();
    for h in &listed {
        assert!(
            whitelist.contains(h),
            "acknowledged whitelist entry {h} lost"
        );
    }
    // Counts: at least what the batch committed before the burst, at most what was done
    // (a few seconds of counts may be lost to a kill -9, never more).
    let http = t.http_addr(false);
    for (h, done) in counted.iter().zip(&completions) {
        let n = scrape_downloaded(http, None, h).unwrap();
        assert!(
            (1..=i64::from(*done) + 1).contains(&n),
            "count {n}, done {done}"
        );
    }
    // The database is whole: a write works after the restart.
    api.add_key(KEY_A);
}

fn reads_a_database_made_by_torrust(dir: TestDb) {
    let db = &dir;
    let now = unix_now();
    let (h1, h2, h3) = (hash(21), hash(22), hash(23));
    db.create_torrust_schema();
    // As torrust binds them: numbers as decimal text, NULL for a permanent key.
    // KEY_D: the latest its valid_until column holds (beyond the year 9999 in SQLite: loaded,
    // listed without an expiry_time; 2038-01-19 in MySQL's INT(10)).
    let far = db.far_valid_until();
    db.insert_keys(&[
        (KEY_A, None),
        (KEY_B, Some((now + 3600).to_string())),
        (KEY_C, Some((now - 7200).to_string())),
        (KEY_D, Some(far.to_string())),
    ]);
    for h in [&h1, &h2] {
        db.insert_whitelist(&hex(h));
    }
    db.save_completed(&hex(&h1), 7);
    db.save_completed(&hex(&h2), 0);
    db.save_completed(&hex(&h3), 4);
    let before = db.schema();

    let t = start("persist-torrust", "tracker.mode private_listed", &dir);
    wait_log(
        &t,
        "database loaded: 3 keys (1 long expired, not loaded), 2 whitelist entries, 3 downloaded counts",
    );
    let api = Api::of(&t, false);
    let mut want = vec![
        json!({"key": KEY_A, "valid_until": null, "expiry_time": null}),
        json!({"key": KEY_B, "valid_until": now + 3600, "expiry_time": utc(now + 3600)}),
        json!({
            "key": KEY_D,
            "valid_until": far,
            "expiry_time": if db.is_mysql() { json!(utc(far)) } else { json!(null) }
        }),
    ];
    want.sort_by(|a, b| a["key"].as_str().cmp(&b["key"].as_str()));
    assert_eq!(all_keys(&api), want);
    assert_eq!(api.whitelist(), [hex(&h1), hex(&h2)]);

    let (v4, v6) = (t.http_addr(false), t.http_addr(true));
    for key in [KEY_A, KEY_B, KEY_D] {
        let r = get(v4, &announce_keyed(Some(key), &h1, 7001, 1, ""));
        assert_eq!(r.failure(), None, "{key}");
    }
    let r = get(v6, &announce_keyed(Some(KEY_C), &h1, 7002, 1, ""));
    assert!(
        r.failure().unwrap().contains("unknown authentication key"),
        "expired two hours ago (past the grace): not loaded"
    );
    let r = get(v6, &announce_keyed(Some(KEY_A), &h3, 7002, 1, ""));
    assert!(
        r.failure().unwrap().contains("not authorized"),
        "h3 is not listed"
    );
    // The completed counts are loaded (torrust stores them but never reads them back).
    assert_eq!(scrape_downloaded(v4, Some(KEY_B), &h1), Some(7));
    assert_eq!(scrape_downloaded(v6, Some(KEY_A), &h2), Some(0));
    complete(v6, Some(KEY_A), &h1, 7003);
    assert_eq!(scrape_downloaded(v4, Some(KEY_A), &h1), Some(8));

    // Writes land in the same database in torrust's encoding, and its tables are unchanged.
    assert_eq!(
        api.send("DELETE", &format!("/api/v1/key/{KEY_B}"), None),
        (200, ok())
    );
    assert!(!db.has_key(KEY_B));
    drop(t);
    assert_eq!(db.completed(&h1), Some(8));
    assert_eq!(db.schema(), before);
}

fn state_file_and_database_each_torrent_gets_the_larger_count(dir: TestDb) {
    let db = &dir;
    let state = dir.dir().join("state");
    let (h1, h2, h3, h4) = (hash(31), hash(32), hash(33), hash(34));
    let upper = |h: &[u8; 20]| hex(h).to_uppercase();
    std::fs::write(
        &state,
        format!("{}:10\n{}:2\n{}:6\n", upper(&h1), upper(&h2), upper(&h4)),
    )
    .unwrap();
    db.create_torrust_schema();
    for (h, n) in [(&h1, 5), (&h2, 8), (&h3, 3)] {
        db.save_completed(&hex(h), n);
    }
    let extra = format!("tracker.state_file {}", state.display());
    let mut t = start("persist-both-1", &extra, &dir);
    let v4 = t.http_addr(false);
    for (h, n) in [(&h1, 10), (&h2, 8), (&h3, 3), (&h4, 6)] {
        assert_eq!(scrape_downloaded(v4, None, h), Some(n), "{}", hex(h));
    }
    // A new download: both files get the new count at the stop.
    complete(v4, None, &h2, 7001);
    assert!(t.stop().success());
    wait_log(&t, "counters:");
    assert_eq!(db.completed(&h2), Some(9));
    let text = std::fs::read_to_string(&state).unwrap();
    assert!(text.contains(&format!("{}:9\n", upper(&h2))), "{text}");
    // And the next start agrees, from either.
    let t = start("persist-both-2", &extra, &dir);
    let v4 = t.http_addr(false);
    for (h, n) in [(&h1, 10), (&h2, 9), (&h3, 3), (&h4, 6)] {
        assert_eq!(scrape_downloaded(v4, None, h), Some(n), "{}", hex(h));
    }
}

fn sighup_and_the_api_reload_the_whitelist_table_in_listed_mode(dir: TestDb) {
    let t = start("persist-hup", "tracker.mode listed", &dir);
    let v4 = t.http_addr(false);
    let h = hash(41);
    let refused = || get(v4, &common::announce(&h, 7001, 1, "")).failure();
    assert!(refused().is_some());
    dir.insert_whitelist(&hex(&h));
    assert!(refused().is_some(), "not before the reload");
    t.signal(libc::SIGHUP);
    wait_for(10, "the whitelist reload", || {
        refused().is_none().then_some(())
    });
    // And a row deleted behind the tracker's back drops the torrent at the next reload (the
    // API's this time).
    dir.clear_whitelist();
    let api = Api::of(&t, false);
    assert_eq!(api.get("/api/v1/whitelist/reload"), (200, ok()));
    assert!(refused().is_some());
    assert_eq!(api.whitelist(), Vec::<String>::new());
    // The purge runs in slices, at least one per loop turn (a turn every 100 ms when idle).
    wait_for(40, "the purge of the torrent", || {
        let (status, _) = api.get(&format!("/api/v1/torrent/{}", hex(&h)));
        (status == 404).then_some(())
    });
}
