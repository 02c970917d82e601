//! Tests of the MySQL backend against a real server: the shared bodies of `db::conformance`,
//! then its own. The server is the one [`TEST_URL_VAR`] names (`scripts/mariadb.sh start`
//! prints it); each test gets a database of its own, dropped at the end. Without the variable
//! the tests print SKIPPED, or fail under `CI=true`.
use super::*;
use crate::db::conformance::{self, Fixture, auth, hash};
use crate::db::{Db, KEY_LEN};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The environment variable with the URL of a database whose user may create and drop the
/// databases `DB_*` (`scripts/mariadb.sh` grants it).
pub(crate) const TEST_URL_VAR: &str = "OTRS_TEST_MYSQL_URL";

/// The server's URL, or `None` with SKIPPED printed; under `CI=true` a missing variable fails.
pub(crate) fn test_url(test: &str) -> Option<String> {
    match std::env::var(TEST_URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{test}: {TEST_URL_VAR} is not set under CI=true (scripts/mariadb.sh start)")
        }
        _ => {
            eprintln!(
                "SKIPPED {test}: {TEST_URL_VAR} is not set (scripts/mariadb.sh start prints it)"
            );
            None
        }
    }
}

/// `url` with its database replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url.split_at(url.find('?').unwrap_or(url.len()));
    let slash = base.rfind('/').expect("a URL with a database");
    format!("{}/{db}{query}", &base[..slash])
}

/// A fresh database `BASE_PID_N` on the test server, dropped when the fixture is.
pub(crate) struct MysqlFixture {
    server: String,
    name: String,
    pub(crate) url: String,
}

impl MysqlFixture {
    /// A new empty database, or `None` when there is no server to test against.
    pub(crate) fn new(test: &str) -> Option<Self> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let server = test_url(test)?;
        let opts = Opts::from_url(&server).expect("a valid test URL");
        let base = opts.get_db_name().expect("a test URL with a database");
        let name = format!(
            "{base}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = Conn::new(opts.clone()).expect("the test server");
        conn.query_drop(format!("DROP DATABASE IF EXISTS `{name}`"))
            .unwrap();
        conn.query_drop(format!("CREATE DATABASE `{name}`"))
            .unwrap();
        let url = with_database(&server, &name);
        Some(MysqlFixture { server, name, url })
    }

    /// A direct connection to the fixture's database.
    pub(crate) fn conn(&self) -> Conn {
        Conn::new(Opts::from_url(&self.url).unwrap()).unwrap()
    }
}

impl Drop for MysqlFixture {
    fn drop(&mut self) {
        if let Ok(mut conn) = Opts::from_url(&self.server)
            .map_err(mysql::Error::from)
            .and_then(Conn::new)
        {
            let _ = conn.query_drop(format!("DROP DATABASE IF EXISTS `{}`", self.name));
        }
    }
}

impl Fixture for MysqlFixture {
    type B = Mysql;
    fn open(&self) -> (Mysql, Loaded) {
        Mysql::open(&self.url).unwrap_or_else(|e| panic!("{e}"))
    }
    fn max_completed(&self) -> u64 {
        MAX_COMPLETED
    }
}

conformance::backend_conformance!(optional MysqlFixture::new(module_path!()));

/// torrust-tracker's statements (MySQL driver, after migration 20240730183500), in its order.
const TORRUST_SCHEMA: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS torrents (
        id integer PRIMARY KEY AUTO_INCREMENT,
        info_hash VARCHAR(40) NOT NULL UNIQUE,
        completed INTEGER DEFAULT 0 NOT NULL
    );",
    "CREATE TABLE IF NOT EXISTS `keys` (
      `id` INT NOT NULL AUTO_INCREMENT,
      `key` VARCHAR(32) NOT NULL,
      `valid_until` INT(10),
      PRIMARY KEY (`id`),
      UNIQUE (`key`)
    );",
    "CREATE TABLE IF NOT EXISTS whitelist (
        id integer PRIMARY KEY AUTO_INCREMENT,
        info_hash VARCHAR(40) NOT NULL UNIQUE
    );",
];

const KEY_A: &str = "YZSl4lMZupRuOpSRC3krIKR5BPB14nrJ";
const HASH_A: &str = "9c38422213e30bff212b30c360d26f9a02136422";

#[test]
fn redact_url_drops_only_the_password() {
    assert_eq!(
        redact_url("mysql://tracker:p@ss:w@rd@db.example:3306/torrust?prefer_socket=false"),
        "mysql://tracker@db.example:3306/torrust?prefer_socket=false"
    );
    assert_eq!(redact_url("mysql://u@h/d"), "mysql://u@h/d");
    assert_eq!(redact_url("mysql://h/d"), "mysql://h/d");
    assert_eq!(redact_url("garbage"), "(a database URL)");
}

#[test]
fn open_errors_never_show_the_password() {
    // Nothing listens on port 1 of the loopback: a connection error, fast.
    let e = Db::open_url("mysql://tracker:TopSecret123@127.0.0.1:1/torrust")
        .err()
        .unwrap();
    assert_eq!(e.kind, ErrorKind::Unreadable);
    let text = e.to_string();
    assert!(
        text.starts_with("mysql://tracker@127.0.0.1:1/torrust: cannot open the database: "),
        "{text}"
    );
    assert!(!text.contains("TopSecret123"), "{text}");
    let e = Db::open_url("mysql://tracker:TopSecret123@127.0.0.1:1/")
        .err()
        .unwrap();
    assert!(e.to_string().contains("names no database"), "{e}");
    assert!(!e.to_string().contains("TopSecret123"), "{e}");
}

#[test]
fn reads_and_writes_a_torrust_database() {
    let Some(fx) = MysqlFixture::new("reads_and_writes_a_torrust_database") else {
        return;
    };
    let mut conn = fx.conn();
    for sql in TORRUST_SCHEMA {
        conn.query_drop(sql).unwrap();
    }
    // As torrust binds them; and rows it would never write, skipped and counted.
    conn.exec_drop(
        "INSERT INTO `keys` (`key`, valid_until) VALUES (?, ?), (?, NULL), (?, ?)",
        (KEY_A, 1_700_000_000, "short", "B".repeat(KEY_LEN), -5),
    )
    .unwrap();
    conn.exec_drop(
        "INSERT INTO whitelist (info_hash) VALUES (?), (?)",
        (HASH_A.to_uppercase(), "not hex"),
    )
    .unwrap();
    conn.exec_drop(
        "INSERT INTO torrents (info_hash, completed) VALUES (?, 7), (?, -1)",
        (HASH_A, "9c38422213e30bff212b30c360d26f9a0213642z"),
    )
    .unwrap();
    let show_create = |conn: &mut Conn| -> Vec<String> {
        ["keys", "torrents", "whitelist"]
            .iter()
            .map(|t| {
                let row: Option<(String, String)> = conn
                    .query_first(format!("SHOW CREATE TABLE `{t}`"))
                    .unwrap();
                // The AUTO_INCREMENT counter moves with inserts; the definition must not.
                let sql = row.unwrap().1;
                sql.split(' ')
                    .filter(|w| !w.starts_with("AUTO_INCREMENT="))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    };
    let before = show_create(&mut conn);
    let (mut db, loaded) = fx.open();
    let h = parse_info_hash_hex(HASH_A).unwrap();
    assert_eq!(
        loaded.keys,
        [AuthKey {
            key: KEY_A.into(),
            valid_until: Some(1_700_000_000)
        }]
    );
    assert_eq!(loaded.whitelist, [h]);
    assert_eq!(loaded.completed, [(h, 7)]);
    assert_eq!(
        loaded.skipped,
        Skipped {
            keys: 2,
            whitelist: 1,
            torrents: 1
        }
    );
    // Writes in torrust's encoding; the tables keep their definitions.
    db.apply(&[
        Change::SetCompleted(h, 8),
        Change::AddWhitelist(hash(1)),
        Change::RemoveKey(KEY_A.to_lowercase()),
    ])
    .unwrap();
    let n: Option<u64> = conn
        .exec_first(
            "SELECT completed FROM torrents WHERE info_hash = ?",
            (HASH_A,),
        )
        .unwrap();
    assert_eq!(n, Some(8));
    let keys: Option<u64> = conn.query_first("SELECT count(*) FROM `keys`").unwrap();
    assert_eq!(keys, Some(3), "a key differing in case is another key");
    assert_eq!(show_create(&mut conn), before);
}

#[test]
fn valid_until_beyond_2038_is_refused_and_counts_are_clamped() {
    let Some(fx) = MysqlFixture::new("valid_until_beyond_2038") else {
        return;
    };
    let (mut db, _) = fx.open();
    let e = db
        .apply(&[
            Change::AddKey(auth(1, None)),
            Change::AddKey(auth(2, Some(MAX_VALID_UNTIL + 1))),
        ])
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput);
    assert!(e.to_string().contains("2038"), "{e}");
    db.apply(&[
        Change::AddKey(auth(2, Some(MAX_VALID_UNTIL))),
        Change::SetCompleted(hash(1), MAX_COMPLETED + 1),
    ])
    .unwrap();
    let loaded = db.load().unwrap();
    assert_eq!(loaded.keys, [auth(2, Some(MAX_VALID_UNTIL))]);
    assert_eq!(loaded.completed, [(hash(1), MAX_COMPLETED)]);
}

#[test]
fn a_missing_unique_index_is_a_schema_error() {
    let Some(fx) = MysqlFixture::new("a_missing_unique_index_is_a_schema_error") else {
        return;
    };
    fx.conn()
        .query_drop("CREATE TABLE whitelist (id INT PRIMARY KEY, info_hash VARCHAR(40))")
        .unwrap();
    let e = Mysql::open(&fx.url).err().unwrap();
    assert_eq!(e.kind, ErrorKind::Schema);
    assert!(
        e.to_string().contains("whitelist.info_hash is not UNIQUE"),
        "{e}"
    );
}

#[test]
fn a_killed_connection_is_opened_again() {
    let Some(fx) = MysqlFixture::new("a_killed_connection_is_opened_again") else {
        return;
    };
    let (mut db, _) = fx.open();
    db.apply(&[Change::AddKey(auth(1, None))]).unwrap();
    // The server ends the writer's connection (as after wait_timeout or a restart).
    let id: Option<u64> = db
        .conn
        .as_mut()
        .unwrap()
        .query_first("SELECT CONNECTION_ID()")
        .unwrap();
    fx.conn()
        .query_drop(format!("KILL CONNECTION {}", id.unwrap()))
        .unwrap();
    assert_eq!(
        db.apply(&[Change::AddKey(auth(2, None))]).unwrap(),
        [Applied::Inserted]
    );
    assert_eq!(db.load_keys().unwrap().0.len(), 2);
}
