//! Tests of the SQLite backend (the shared ones in `db::conformance`, then its own).
use super::*;
use crate::db::Db;
use crate::db::conformance::Fixture;
use crate::db::conformance::{self, auth, hash};
use rusqlite::types::Null;
use tempfile::TempDir;

/// A fresh SQLite file in its own temporary directory.
pub(crate) struct SqliteFixture {
    _dir: TempDir,
    pub(crate) path: PathBuf,
}

impl SqliteFixture {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sqlite3.db");
        SqliteFixture { _dir: dir, path }
    }
}

impl Fixture for SqliteFixture {
    type B = Sqlite;
    fn open(&self) -> (Sqlite, Loaded) {
        Sqlite::open(&self.path).unwrap_or_else(|e| panic!("{e}"))
    }
}

conformance::backend_conformance!(SqliteFixture::new());

/// torrust-tracker's statements (SQLite driver), in its order.
const TORRUST_SCHEMA: &str = "
        CREATE TABLE IF NOT EXISTS whitelist (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            info_hash TEXT NOT NULL UNIQUE
        );
        CREATE TABLE IF NOT EXISTS keys (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            key TEXT NOT NULL UNIQUE,
            valid_until INTEGER
         );
        CREATE TABLE IF NOT EXISTS torrents (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            info_hash TEXT NOT NULL UNIQUE,
            completed INTEGER DEFAULT 0 NOT NULL
        );";

const KEY_A: &str = "YZSl4lMZupRuOpSRC3krIKR5BPB14nrJ";
const KEY_B: &str = "rQp2ZKeY8mIOPgNv1HhXn6MW5T3jGs0d";
const HASH_A: &str = "9c38422213e30bff212b30c360d26f9a02136422";
const HASH_B: &str = "443c7602b4fde83d1154d6d9da48808418b181b6";

#[test]
fn reads_a_torrust_database() {
    let fx = SqliteFixture::new();
    let conn = Connection::open(&fx.path).unwrap();
    conn.execute_batch(TORRUST_SCHEMA).unwrap();
    // As torrust writes them: numbers bound as decimal text.
    let add_key = "INSERT INTO keys (key, valid_until) VALUES (?1, ?2)";
    conn.execute(add_key, [KEY_A, "1726668380"]).unwrap();
    conn.execute(add_key, params![KEY_B, Null]).unwrap();
    conn.execute("INSERT INTO whitelist (info_hash) VALUES (?)", [HASH_A])
        .unwrap();
    let save = "INSERT INTO torrents (info_hash, completed) VALUES (?1, ?2) \
                ON CONFLICT(info_hash) DO UPDATE SET completed = ?2";
    conn.execute(save, [HASH_B, "3"]).unwrap();
    conn.execute(save, [HASH_B, "12"]).unwrap();
    conn.execute(save, [HASH_A, "0"]).unwrap();
    // Rows torrust's own parser would choke on, and one written by hand in upper case.
    conn.execute(add_key, ["short", "1"]).unwrap();
    conn.execute(add_key, [&KEY_A.to_lowercase(), "soon"])
        .unwrap();
    conn.execute(add_key, params![KEY_A.replace('Y', "-"), Null])
        .unwrap();
    conn.execute("INSERT INTO whitelist (info_hash) VALUES ('xyz')", [])
        .unwrap();
    conn.execute(
        "INSERT INTO whitelist (info_hash) VALUES (?)",
        [HASH_B.to_uppercase()],
    )
    .unwrap();
    conn.execute(save, ["0000000000000000000000000000000000000001", "-1"])
        .unwrap();
    conn.execute(save, ["not hex", "5"]).unwrap();
    drop(conn);

    let (mut db, loaded) = Sqlite::open(&fx.path).unwrap();
    let h = |s: &str| crate::db::parse_info_hash_hex(s).unwrap();
    let mut want_list = vec![h(HASH_A), h(HASH_B)];
    want_list.sort();
    let mut want_keys = vec![
        AuthKey {
            key: KEY_A.into(),
            valid_until: Some(1_726_668_380),
        },
        AuthKey {
            key: KEY_B.into(),
            valid_until: None,
        },
    ];
    want_keys.sort_by(|a, b| a.key.cmp(&b.key));
    let mut want_counts = vec![(h(HASH_A), 0), (h(HASH_B), 12)];
    want_counts.sort();
    assert_eq!(
        loaded,
        Loaded {
            keys: want_keys,
            whitelist: want_list,
            completed: want_counts,
            skipped: Skipped {
                keys: 3,
                whitelist: 1,
                torrents: 2
            },
        }
    );

    // What we write reads back in torrust's encoding.
    db.apply(&[
        Change::AddKey(auth(7, Some(1_800_000_000))),
        Change::AddWhitelist(hash(0xab)),
        Change::SetCompleted(hash(0xab), 3),
    ])
    .unwrap();
    drop(db);
    let conn = Connection::open(&fx.path).unwrap();
    let (kind, until): (String, i64) = conn
        .query_row(
            "SELECT typeof(valid_until), valid_until FROM keys WHERE key = ?1",
            [auth(7, None).key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((kind.as_str(), until), ("integer", 1_800_000_000));
    let hex = info_hash_hex(&hash(0xab));
    assert_eq!(hex, format!("ab{}", "0".repeat(36) + "ad"));
    let listed: i64 = conn
        .query_row(
            "SELECT count(*) FROM whitelist WHERE info_hash = ?1",
            [&hex],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(listed, 1);
    let (kind, n): (String, i64) = conn
        .query_row(
            "SELECT typeof(completed), completed FROM torrents WHERE info_hash = ?1",
            [&hex],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((kind.as_str(), n), ("integer", 3));
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn creates_torrusts_exact_tables() {
    fn tables(path: &Path) -> Vec<String> {
        let conn = Connection::open(path).unwrap();
        let sql = "SELECT sql FROM sqlite_master WHERE type = 'table' ORDER BY name";
        let mut stmt = conn.prepare(sql).unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }
    let fx = SqliteFixture::new();
    let (db, _) = fx.open();
    let sync: i64 = db
        .conn
        .pragma_query_value(None, "synchronous", |r| r.get(0))
        .unwrap();
    assert_eq!(sync, 2, "synchronous=FULL");
    drop(db);
    let theirs = SqliteFixture::new();
    let conn = Connection::open(&theirs.path).unwrap();
    conn.execute_batch(TORRUST_SCHEMA).unwrap();
    let ours = tables(&fx.path);
    assert_eq!(ours.len(), 4, "3 tables and sqlite_sequence: {ours:?}");
    assert_eq!(ours, tables(&theirs.path));
}

#[test]
fn old_torrust_schema_refuses_permanent_keys_clearly() {
    let fx = SqliteFixture::new();
    let conn = Connection::open(&fx.path).unwrap();
    conn.execute_batch(
        &TORRUST_SCHEMA.replace("valid_until INTEGER\n", "valid_until INTEGER NOT NULL\n"),
    )
    .unwrap();
    drop(conn);
    let (mut db, _) = fx.open();
    let e = db.apply(&[Change::AddKey(auth(1, None))]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Schema);
    assert!(e.to_string().contains("20240730183500"), "{e}");
    assert_eq!(
        db.apply(&[Change::AddKey(auth(1, Some(9)))]).unwrap(),
        [Applied::Inserted]
    );
}

#[test]
fn garbage_file_is_an_error_naming_the_file() {
    let fx = SqliteFixture::new();
    std::fs::write(&fx.path, b"this is not a database, just text\n".repeat(200)).unwrap();
    let e = Sqlite::open(&fx.path).err().unwrap();
    assert_eq!(e.kind, ErrorKind::Unreadable);
    let text = e.to_string();
    assert!(text.starts_with(&fx.path.display().to_string()), "{text}");
    assert!(text.contains("file is not a database"), "{text}");
    let e = Db::open(&fx.path).err().unwrap();
    assert!(e.to_string().contains("file is not a database"), "{e}");
}

#[test]
fn corrupt_pages_are_an_error_naming_the_file() {
    let fx = SqliteFixture::new();
    let (mut db, _) = fx.open();
    let many: Vec<Change> = (0..2000u32)
        .map(|n| {
            let mut h = [0u8; 20];
            h[..4].copy_from_slice(&n.to_be_bytes());
            Change::SetCompleted(h, u64::from(n))
        })
        .collect();
    db.apply(&many).unwrap();
    drop(db); // the last connection checkpoints the WAL into the file
    let mut bytes = std::fs::read(&fx.path).unwrap();
    assert!(bytes.len() > 3 * 4096);
    for b in &mut bytes[4096..] {
        *b = 0xff;
    }
    std::fs::write(&fx.path, &bytes).unwrap();
    let e = Sqlite::open(&fx.path).err().unwrap();
    assert_eq!(e.kind, ErrorKind::Unreadable, "{e}");
    assert!(
        e.to_string().starts_with(&fx.path.display().to_string()),
        "{e}"
    );
    assert!(e.to_string().contains("malformed"), "{e}");
}

#[test]
fn a_directory_is_an_error_naming_it() {
    let fx = SqliteFixture::new();
    std::fs::create_dir(&fx.path).unwrap();
    let e = Sqlite::open(&fx.path).err().unwrap();
    assert_eq!(e.kind, ErrorKind::Unreadable, "{e}");
    assert!(
        e.to_string().starts_with(&fx.path.display().to_string()),
        "{e}"
    );
    let e = Sqlite::open(&fx.path.join("missing-dir/x.db"))
        .err()
        .unwrap();
    assert!(e.to_string().contains("missing-dir/x.db"), "{e}");
}

#[test]
fn other_schemas_are_refused() {
    for (sql, why) in [
        (
            "CREATE TABLE keys (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE)",
            "table keys has no column valid_until",
        ),
        (
            "CREATE TABLE whitelist (id INTEGER PRIMARY KEY, info_hash TEXT NOT NULL)",
            "column whitelist.info_hash is not UNIQUE",
        ),
        (
            "CREATE TABLE torrents (id INTEGER PRIMARY KEY, info_hash TEXT, completed INTEGER,
             UNIQUE (info_hash, completed))",
            "column torrents.info_hash is not UNIQUE",
        ),
    ] {
        let fx = SqliteFixture::new();
        Connection::open(&fx.path)
            .unwrap()
            .execute_batch(sql)
            .unwrap();
        let e = Sqlite::open(&fx.path).err().unwrap();
        assert_eq!(e.kind, ErrorKind::Schema, "{e}");
        assert!(e.to_string().contains(why), "{e}");
        assert!(
            e.to_string().starts_with(&fx.path.display().to_string()),
            "{e}"
        );
    }
}

#[test]
fn apply_rolls_back_on_a_database_error() {
    let fx = SqliteFixture::new();
    let (mut db, _) = fx.open();
    let other = Connection::open(&fx.path).unwrap();
    other.execute_batch("DROP TABLE whitelist").unwrap();
    let e = db
        .apply(&[Change::AddKey(auth(1, None)), Change::AddWhitelist(hash(1))])
        .unwrap_err();
    assert!(e.to_string().contains("no such table: whitelist"), "{e}");
    assert!(db.load_keys().unwrap().0.is_empty());
}

#[test]
fn db_opens_sqlite() {
    let fx = SqliteFixture::new();
    let (mut db, loaded) = Db::open(&fx.path).unwrap();
    assert_eq!(loaded, Loaded::default());
    assert_eq!(db.origin(), fx.path.display().to_string());
    db.apply(&[Change::AddWhitelist(hash(1))]).unwrap();
    assert_eq!(db.load_whitelist().unwrap().0, [hash(1)]);
    assert_eq!(db.load().unwrap().whitelist, [hash(1)]);
    let Db::Sqlite(inner) = &db else {
        panic!("db.path opens SQLite")
    };
    assert_eq!(inner.path(), fx.path);
}
