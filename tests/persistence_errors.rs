//! Database failures against the real binary: a database that cannot be read at start is fatal
//! (the file and SQLite's message, a non-zero exit, nothing served); a database that fails at
//! run time (another connection holds the write lock) makes API writes answer 503 while
//! announces go on from RAM, and writes and counts succeed again once it clears.

mod api_common;
mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use api_common::*;
use common::{Tracker, get, hash};
use serde_json::json;

/// Runs the binary with `config`, expecting it to stop by itself within 20 s: (success, stderr).
fn run_to_exit(dir: &Path, config: &str) -> (bool, String) {
    let conf = dir.join("opentracker.conf");
    std::fs::write(&conf, config).unwrap();
    let mut child = Command::new(common::binary())
        .arg("-f")
        .arg(&conf)
        .args(common::allow_root_arg())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the tracker kept running");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.success(), err)
}

#[test]
fn an_unreadable_database_is_fatal_at_start() {
    let dir = Dir::new("persist-corrupt");
    let db = dir.db();
    let config = config("", Some(&db));
    let expect_fatal = |what: &str, message: &str| {
        let (ok, err) = run_to_exit(&dir.0, &config);
        assert!(!ok, "{what}: exit status 0\n{err}");
        let want = format!("opentracker-rs: db.path: {}: ", db.display());
        assert!(err.contains(&want), "{what}: no {want:?} in\n{err}");
        assert!(err.contains(message), "{what}: no {message:?} in\n{err}");
        assert!(!err.contains("listening:"), "{what}: served\n{err}");
        err
    };
    // Text, not a database.
    std::fs::write(&db, b"this is not a database, just text\n".repeat(200)).unwrap();
    expect_fatal("garbage", "file is not a database");
    // A SQLite file whose pages past the header were overwritten.
    std::fs::remove_file(&db).unwrap();
    {
        let mut conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(TORRUST_SCHEMA).unwrap();
        let tx = conn.transaction().unwrap();
        for n in 0..2000u32 {
            tx.execute(
                "INSERT INTO torrents (info_hash, completed) VALUES (?1, ?2)",
                rusqlite::params![hex(&hash(n)), n],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    let mut bytes = std::fs::read(&db).unwrap();
    assert!(bytes.len() > 3 * 4096, "{}", bytes.len());
    bytes[4096..].fill(0xff);
    std::fs::write(&db, &bytes).unwrap();
    expect_fatal("corrupt pages", "malformed");
    // A directory where the file should be.
    std::fs::remove_file(&db).unwrap();
    std::fs::create_dir(&db).unwrap();
    expect_fatal("a directory", "unable to open database file");
    std::fs::remove_dir(&db).unwrap();
    // Another program's tables of the same names.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("CREATE TABLE keys (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE)")
        .unwrap();
    drop(conn);
    expect_fatal("another schema", "table keys has no column valid_until");
    // A directory that does not exist.
    let missing = dir.0.join("no-such-dir/sqlite3.db");
    let (ok, err) = run_to_exit(&dir.0, &api_common::config("", Some(&missing)));
    assert!(!ok && err.contains(&missing.display().to_string()), "{err}");
    assert!(!missing.parent().unwrap().exists(), "nothing created");
}

/// A second connection that holds the database's write lock until dropped (an operator's
/// `sqlite3` shell in the middle of a transaction, a backup tool).
struct WriteLock(rusqlite::Connection);

impl WriteLock {
    fn take(db: &Path) -> WriteLock {
        let conn = rusqlite::Connection::open(db).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        WriteLock(conn)
    }

    fn release(self) {
        self.0.execute_batch("ROLLBACK").unwrap();
    }
}

#[test]
fn a_locked_database_answers_503_and_announces_go_on() {
    let dir = Dir::new("persist-locked");
    let db = dir.db();
    let t = Tracker::start("persist-locked", &config("", Some(&db)));
    let api = Api::of(&t, false);
    let (v4, v6) = (t.http_addr(false), t.http_addr(true));
    let key_a = "YZSl4lMZupRuOpSRC3krIKR5BPB14nrJ";
    let key_b = "rQp2ZKeY8mIOPgNv1HhXn6MW5T3jGs0d";
    api.add_key(key_a);
    let (h1, h2) = (hash(61), hash(62));
    api.whitelist_add(&h1);

    let lock = WriteLock::take(&db);
    // Writes wait for the lock (the writer's busy timeout) and are refused; nothing changes.
    let unavailable = (
        503,
        err("the database is not available; nothing was changed"),
    );
    let slow_write = std::thread::spawn(move || {
        let body = format!(r#"{{"key":"{key_b}","seconds_valid":null}}"#);
        let started = Instant::now();
        let answer = api.send("POST", "/api/v1/keys", Some(&body));
        (answer, started.elapsed())
    });
    // Meanwhile announces, scrapes and reads are served at once from RAM.
    std::thread::sleep(Duration::from_millis(100));
    for (i, addr) in [v4, v6, v4].into_iter().enumerate() {
        let started = Instant::now();
        complete(addr, None, &h2, 7000 + i as u16);
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "an announce waited {:?} for the database",
            started.elapsed()
        );
    }
    assert_eq!(scrape_downloaded(v4, None, &h2), Some(3));
    assert_eq!(api.keys(), [key_a]);
    let (answer, took) = slow_write.join().unwrap();
    assert_eq!(answer, unavailable);
    assert!(took >= Duration::from_millis(500), "refused after {took:?}");
    let path = |h: &[u8; 20]| format!("/api/v1/whitelist/{}", hex(h));
    assert_eq!(api.send("POST", &path(&h2), None), unavailable);
    assert_eq!(api.send("DELETE", &path(&h1), None), unavailable);
    let del = format!("/api/v1/key/{key_a}");
    assert_eq!(api.send("DELETE", &del, None), unavailable);
    assert_eq!(api.send("POST", "/api/v1/key/60", None), unavailable);
    // Reads of the database are not blocked by a writer (WAL): a reload works.
    assert_eq!(api.get("/api/v1/keys/reload"), (200, ok()));
    // RAM holds what the database holds.
    assert_eq!(api.keys(), [key_a]);
    assert_eq!(api.whitelist(), [hex(&h1)]);
    wait_log(&t, "api: database write failed");
    wait_log(&t, "database is locked");
    // The first batch of counts fails too (5 s after the start), and is kept for a retry.
    wait_log(&t, "downloaded counts kept, next attempt in");
    assert_eq!(db_completed_unlocked(&lock, &h2), None);

    // Once the lock is gone, writes succeed and the counts land.
    lock.release();
    api.add_key(key_b);
    assert_eq!(api.send("POST", &path(&h2), None), (200, ok()));
    assert_eq!(api.send("DELETE", &del, None), (200, ok()));
    assert_eq!(api.keys(), [key_b]);
    assert_eq!(api.whitelist(), [hex(&h1), hex(&h2)]);
    wait_for(70, "the counts after the retry", || {
        (db_completed(&db, &h2) == Some(3)).then_some(())
    });
    // The database holds exactly what was acknowledged.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let keys: Vec<String> = conn
        .prepare("SELECT key FROM keys ORDER BY key")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(keys, [key_b]);
    let (status, _) = api.get("/api/v1/stats");
    assert_eq!(status, 200);
    let r = get(v4, &common::announce(&h1, 7100, 1, ""));
    assert_eq!(r.failure(), None);
    assert_eq!(
        api.get("/api/v1/whitelist?limit=1"),
        (200, json!([hex(&h1)]))
    );
}

/// `completed` of a torrent as the lock holder sees it (its own connection, inside its
/// transaction).
fn db_completed_unlocked(lock: &WriteLock, h: &[u8; 20]) -> Option<i64> {
    lock.0
        .query_row(
            "SELECT completed FROM torrents WHERE info_hash = ?1",
            [hex(h)],
            |r| r.get(0),
        )
        .ok()
}
