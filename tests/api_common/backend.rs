//! The database of a persistence test, SQLite (`db.path`) or MySQL / MariaDB (`db.url`), so the
//! same test body runs against both ("one test body, two backends", as `db::conformance` in the
//! unit tests). [`both_backends!`] writes the two `#[test]` functions of each body.
//!
//! The MySQL variant needs a server: `OTRS_TEST_MYSQL_URL` (printed by
//! `scripts/mariadb.sh start`, which `.ci/run` runs) names a database whose user may create and
//! drop the databases `DB_*`; each test gets one of its own. Without the variable the MySQL
//! variants print SKIPPED, and fail under `CI=true`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mysql::prelude::Queryable;

use super::{Dir, TORRUST_SCHEMA};

/// The environment variable naming the test server (see the module docs). Not
/// `OPENTRACKER_RS_...`: the tracker reads every such variable as a directive and refuses
/// unknown ones.
pub const TEST_MYSQL_URL: &str = "OTRS_TEST_MYSQL_URL";

/// torrust-tracker's MySQL statements, as its MySQL driver runs them (after its migration
/// 20240730183500: `valid_until` may be NULL).
pub const TORRUST_MYSQL_SCHEMA: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS whitelist (
        id integer PRIMARY KEY AUTO_INCREMENT,
        info_hash VARCHAR(40) NOT NULL UNIQUE
    );",
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
];

/// The MySQL server's URL, or `None` after printing SKIPPED; under `CI=true` a missing
/// variable fails the test.
pub fn test_mysql_url(test: &str) -> Option<String> {
    match std::env::var(TEST_MYSQL_URL) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{test}: {TEST_MYSQL_URL} is not set under CI=true (scripts/mariadb.sh start)")
        }
        _ => {
            eprintln!(
                "SKIPPED {test} (MySQL): {TEST_MYSQL_URL} is not set; \
                 `scripts/mariadb.sh start` starts a server and prints it"
            );
            None
        }
    }
}

/// A database of its own on the test server, dropped with it.
pub struct MysqlDb {
    server: String,
    name: String,
    /// The URL of this database (for `db.url`).
    pub url: String,
}

impl MysqlDb {
    fn new(server: String) -> MysqlDb {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let opts = mysql::Opts::from_url(&server).expect("a valid test URL");
        let base = opts.get_db_name().expect("a test URL with a database");
        let name = format!(
            "{base}_e{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = mysql::Conn::new(opts.clone()).expect("the test MySQL server");
        conn.query_drop(format!("DROP DATABASE IF EXISTS `{name}`"))
            .unwrap();
        conn.query_drop(format!("CREATE DATABASE `{name}`"))
            .unwrap();
        let (base_url, query) = server.split_at(server.find('?').unwrap_or(server.len()));
        let slash = base_url.rfind('/').expect("a URL with a database");
        let url = format!("{}/{name}{query}", &base_url[..slash]);
        MysqlDb { server, name, url }
    }

    fn conn(&self) -> mysql::Conn {
        let opts = mysql::OptsBuilder::from_opts(mysql::Opts::from_url(&self.url).unwrap())
            .read_timeout(Some(Duration::from_secs(10)));
        mysql::Conn::new(opts).unwrap()
    }
}

impl Drop for MysqlDb {
    fn drop(&mut self) {
        let conn = mysql::Opts::from_url(&self.server)
            .map_err(mysql::Error::from)
            .and_then(mysql::Conn::new);
        if let Ok(mut conn) = conn {
            let _ = conn.query_drop(format!("DROP DATABASE IF EXISTS `{}`", self.name));
        }
    }
}

/// Which database a test's tracker uses.
pub enum Store {
    /// `db.path DIR/sqlite3.db`.
    Sqlite(PathBuf),
    /// `db.url URL`.
    Mysql(MysqlDb),
}

/// A test's database and a directory for its other files (state file, logs), removed at the
/// end with the database.
pub struct TestDb {
    /// The backend and its database.
    pub store: Store,
    dir: Dir,
}

impl TestDb {
    /// A SQLite file in a new directory.
    pub fn sqlite(name: &str) -> Option<TestDb> {
        let dir = Dir::new(name);
        Some(TestDb {
            store: Store::Sqlite(dir.db()),
            dir,
        })
    }

    /// A new database on the test server, or `None` (SKIPPED) without one.
    pub fn mysql(name: &str) -> Option<TestDb> {
        let server = test_mysql_url(name)?;
        Some(TestDb {
            store: Store::Mysql(MysqlDb::new(server)),
            dir: Dir::new(name),
        })
    }

    /// The directory for the test's other files.
    pub fn dir(&self) -> &Path {
        &self.dir.0
    }

    /// The config line that selects this database.
    pub fn config_line(&self) -> String {
        match &self.store {
            Store::Sqlite(path) => format!("db.path {}", path.display()),
            Store::Mysql(db) => format!("db.url {}", db.url),
        }
    }

    /// True for the MySQL variant.
    pub fn is_mysql(&self) -> bool {
        matches!(self.store, Store::Mysql(_))
    }

    /// Creates torrust's tables with torrust's own statements for this backend.
    pub fn create_torrust_schema(&self) {
        match &self.store {
            Store::Sqlite(path) => rusqlite::Connection::open(path)
                .unwrap()
                .execute_batch(TORRUST_SCHEMA)
                .unwrap(),
            Store::Mysql(db) => {
                let mut conn = db.conn();
                for sql in TORRUST_MYSQL_SCHEMA {
                    conn.query_drop(sql).unwrap();
                }
            }
        }
    }

    /// Inserts keys as torrust binds them (`valid_until` as decimal text, `None` = NULL), in
    /// one transaction.
    pub fn insert_keys(&self, keys: &[(&str, Option<String>)]) {
        match &self.store {
            Store::Sqlite(path) => {
                let mut conn = rusqlite::Connection::open(path).unwrap();
                let tx = conn.transaction().unwrap();
                for (key, until) in keys {
                    tx.execute(
                        "INSERT INTO keys (key, valid_until) VALUES (?1, ?2)",
                        rusqlite::params![key, until],
                    )
                    .unwrap();
                }
                tx.commit().unwrap();
            }
            Store::Mysql(db) => {
                let mut conn = db.conn();
                let mut tx = conn.start_transaction(mysql::TxOpts::default()).unwrap();
                tx.exec_batch(
                    "INSERT INTO `keys` (`key`, valid_until) VALUES (?, ?)",
                    keys.iter().map(|(k, until)| (*k, until.clone())),
                )
                .unwrap();
                tx.commit().unwrap();
            }
        }
    }

    /// Inserts an info_hash (its hex text) into `whitelist`.
    pub fn insert_whitelist(&self, hex: &str) {
        self.exec("INSERT INTO whitelist (info_hash) VALUES (?)", &[hex]);
    }

    /// Deletes every `whitelist` row.
    pub fn clear_whitelist(&self) {
        self.exec("DELETE FROM whitelist", &[]);
    }

    /// Sets a torrent's `completed` (insert or update), the count bound as decimal text.
    pub fn save_completed(&self, hex: &str, n: u64) {
        let sql = match self.store {
            Store::Sqlite(_) => {
                "INSERT INTO torrents (info_hash, completed) VALUES (?1, ?2) \
                 ON CONFLICT(info_hash) DO UPDATE SET completed = ?2"
            }
            Store::Mysql(_) => {
                "INSERT INTO torrents (info_hash, completed) VALUES (?, ?) \
                 ON DUPLICATE KEY UPDATE completed = VALUES(completed)"
            }
        };
        self.exec(sql, &[hex, &n.to_string()]);
    }

    fn exec(&self, sql: &str, params: &[&str]) {
        match &self.store {
            Store::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).unwrap();
                conn.busy_timeout(Duration::from_secs(5)).unwrap();
                conn.execute(sql, rusqlite::params_from_iter(params))
                    .unwrap();
            }
            Store::Mysql(db) => {
                let params: Vec<mysql::Value> = params.iter().map(|p| (*p).into()).collect();
                db.conn().exec_drop(sql, params).unwrap();
            }
        }
    }

    /// Rows of `keys`.
    pub fn count_keys(&self) -> i64 {
        match &self.store {
            Store::Sqlite(path) => rusqlite::Connection::open(path)
                .unwrap()
                .query_row("SELECT count(*) FROM keys", [], |r| r.get(0))
                .unwrap(),
            Store::Mysql(db) => db
                .conn()
                .query_first("SELECT count(*) FROM `keys`")
                .unwrap()
                .unwrap(),
        }
    }

    /// Rows of `keys` with this key.
    pub fn has_key(&self, key: &str) -> bool {
        match &self.store {
            Store::Sqlite(path) => {
                rusqlite::Connection::open(path)
                    .unwrap()
                    .query_row("SELECT count(*) FROM keys WHERE key = ?1", [key], |r| {
                        r.get::<_, i64>(0)
                    })
                    .unwrap()
                    > 0
            }
            Store::Mysql(db) => {
                db.conn()
                    .exec_first::<i64, _, _>(
                        "SELECT count(*) FROM `keys` WHERE BINARY `key` = ?",
                        (key,),
                    )
                    .unwrap()
                    .unwrap()
                    > 0
            }
        }
    }

    /// `completed` of a torrent, read by a second connection; `None` when there is no row (or
    /// the database cannot be read yet).
    pub fn completed(&self, h: &[u8; 20]) -> Option<i64> {
        match &self.store {
            Store::Sqlite(path) => super::db_completed(path, h),
            Store::Mysql(db) => db
                .conn()
                .exec_first(
                    "SELECT completed FROM torrents WHERE info_hash = ?",
                    (super::hex(h),),
                )
                .ok()?,
        }
    }

    /// The tables' definitions (without MySQL's moving AUTO_INCREMENT counter), to check that
    /// the tracker never alters them.
    pub fn schema(&self) -> Vec<String> {
        match &self.store {
            Store::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).unwrap();
                let mut stmt = conn
                    .prepare("SELECT name, sql FROM sqlite_master ORDER BY name")
                    .unwrap();
                let rows = stmt
                    .query_map([], |r| {
                        Ok(format!(
                            "{}: {}",
                            r.get::<_, String>(0)?,
                            r.get::<_, Option<String>>(1)?.unwrap_or_default()
                        ))
                    })
                    .unwrap();
                rows.collect::<Result<_, _>>().unwrap()
            }
            Store::Mysql(db) => {
                let mut conn = db.conn();
                let tables: Vec<String> = conn.query("SHOW TABLES").unwrap();
                let mut out = Vec::new();
                for t in tables {
                    let (_, sql): (String, String) = conn
                        .query_first(format!("SHOW CREATE TABLE `{t}`"))
                        .unwrap()
                        .unwrap();
                    let sql: Vec<&str> = sql
                        .split(' ')
                        .filter(|w| !w.starts_with("AUTO_INCREMENT="))
                        .collect();
                    out.push(sql.join(" "));
                }
                out.sort();
                out
            }
        }
    }

    /// The latest `valid_until` the backend's torrust schema holds: past the year 9999 in
    /// SQLite (INTEGER), 2038-01-19 in MySQL (`INT(10)`).
    pub fn far_valid_until(&self) -> u64 {
        match self.store {
            Store::Sqlite(_) => 253_402_300_800,
            Store::Mysql(_) => i32::MAX as u64,
        }
    }
}

/// For each named test body `fn NAME(db: TestDb)`, a `#[test]` in `mod sqlite` and one in
/// `mod mysql` that call it with a fresh database of that backend (the MySQL one is SKIPPED
/// without a server, see the module docs).
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    if let Some(db) = $crate::api_common::TestDb::sqlite(stringify!($name)) {
                        super::$name(db);
                    }
                }
            )*
        }
        mod mysql {
            $(
                #[test]
                fn $name() {
                    if let Some(db) = $crate::api_common::TestDb::mysql(stringify!($name)) {
                        super::$name(db);
                    }
                }
            )*
        }
    };
}
