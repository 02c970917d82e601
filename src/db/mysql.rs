//! The MySQL / MariaDB backend (`db.url mysql://USER:PASS@HOST[:PORT]/DB`): torrust's MySQL
//! schema, the `mysql` crate's synchronous client (one connection, owned by the writer thread).
//!
//! Schema (torrust's MySQL driver; created when missing, never altered): `whitelist(id,
//! info_hash VARCHAR(40) NOT NULL UNIQUE)`, `torrents(id, info_hash VARCHAR(40) NOT NULL
//! UNIQUE, completed INTEGER DEFAULT 0 NOT NULL)`, `` `keys`(id, `key` VARCHAR(32) NOT NULL
//! UNIQUE, valid_until INT(10)) `` (NULL = permanent). The encoding is the SQLite backend's:
//! info_hash as 40 lower-case hex digits, `valid_until` in Unix seconds.
//!
//! Differences from SQLite that follow from the column types, as torrust has them:
//! - `completed` and `valid_until` are signed 32-bit `INT`s: a count above [`MAX_COMPLETED`] is
//!   written as [`MAX_COMPLETED`] (as SQLite clamps at `i64::MAX`), a key valid after
//!   [`MAX_VALID_UNTIL`] (2038-01-19) is refused with [`ErrorKind::InvalidInput`];
//! - MySQL compares `VARCHAR`s without case by default, so in a table torrust created two keys
//!   that differ only in case are one key for the UNIQUE index; removals still match the exact
//!   key. Keys are 32 random alphanumerics, so this never happens by chance.
//!
//! Durability: each [`Backend::apply`] is one InnoDB transaction, committed before it returns
//! (with MySQL's default `innodb_flush_log_at_trx_commit=1` the commit is on disk).
//!
//! Connection failures: a connection kept from an earlier call is checked (`COM_PING`) before
//! each transaction and opened again when the server closed it (after `wait_timeout`, or a
//! restart); a connection lost in the middle of a call is dropped, and the next call connects
//! again. Otherwise the error goes back to the
//! writer, which answers 503 for an API write and retries the counts. Connect, read and write
//! timeouts ([`CONNECT_TIMEOUT`], [`IO_TIMEOUT`]) keep a silent server from holding the writer.
//!
//! The password never leaves this module but to the server: the origin in messages is the URL
//! without it ([`redact_url`]).

use std::time::Duration;

use mysql::prelude::Queryable;
use mysql::{Conn, Opts, OptsBuilder, Row, TxOpts, Value};

use super::{
    Applied, AuthKey, Backend, BadRows, Change, DbError, ErrorKind, Loaded, Skipped, info_hash_hex,
    is_valid_key, parse_info_hash_hex,
};
use crate::types::InfoHash;

/// Largest `completed` count the `INTEGER` column holds; larger counts are written as this.
pub const MAX_COMPLETED: u64 = i32::MAX as u64;

/// Latest `valid_until` the `INT(10)` column holds (2038-01-19 03:14:07 UTC).
pub const MAX_VALID_UNTIL: u64 = i32::MAX as u64;

/// How long a connection attempt waits for the server's TCP handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a read or a write on the connection may block before the call fails.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// torrust's statements (MySQL driver), run for the tables that are missing.
const CREATE_TABLES: [(&str, &str); 3] = [
    (
        "whitelist",
        "CREATE TABLE IF NOT EXISTS whitelist (
            id integer PRIMARY KEY AUTO_INCREMENT,
            info_hash VARCHAR(40) NOT NULL UNIQUE
        );",
    ),
    (
        "keys",
        "CREATE TABLE IF NOT EXISTS `keys` (
          `id` INT NOT NULL AUTO_INCREMENT,
          `key` VARCHAR(32) NOT NULL,
          `valid_until` INT(10),
          PRIMARY KEY (`id`),
          UNIQUE (`key`)
        );",
    ),
    (
        "torrents",
        "CREATE TABLE IF NOT EXISTS torrents (
            id integer PRIMARY KEY AUTO_INCREMENT,
            info_hash VARCHAR(40) NOT NULL UNIQUE,
            completed INTEGER DEFAULT 0 NOT NULL
        );",
    ),
];

/// The columns each table must have, the first being the one that must be UNIQUE.
const COLUMNS: [(&str, &[&str]); 3] = [
    ("whitelist", &["info_hash"]),
    ("keys", &["key", "valid_until"]),
    ("torrents", &["info_hash", "completed"]),
];

/// MySQL's error for a duplicate value in a UNIQUE index (`ER_DUP_ENTRY`).
const ER_DUP_ENTRY: u16 = 1062;

/// `mysql://USER:PASS@HOST/DB` without the password: `mysql://USER@HOST/DB`. Text that does
/// not look like a URL with user information is returned up to its `://` and host only.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(a database URL)".to_owned();
    };
    let path_at = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(path_at);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}@{host}{tail}")
        }
        None => format!("{scheme}://{authority}{tail}"),
    }
}

/// A MySQL or MariaDB database in torrust's schema: one connection (opened again after a
/// failure), owned by one thread at a time.
pub struct Mysql {
    opts: Opts,
    conn: Option<Conn>,
    origin: String,
    /// False for torrust's schema before its migration 20240730183500 (`valid_until NOT NULL`).
    permanent_keys: bool,
}

fn kind_of(e: &mysql::Error) -> ErrorKind {
    match e {
        mysql::Error::MySqlError(e) => match e.code {
            // Lock wait timeout, deadlock.
            1205 | 1213 => ErrorKind::Busy,
            // --read-only, read-only transaction, INSERT/UPDATE/DELETE denied.
            1290 | 1792 | 1142 => ErrorKind::ReadOnly,
            // Table full, disk full, out of disk space.
            1114 | 1021 | 3 => ErrorKind::Full,
            // Access denied, unknown database, too many connections.
            1044 | 1045 | 1049 | 1040 | 1203 => ErrorKind::Unreadable,
            _ => ErrorKind::Other,
        },
        mysql::Error::IoError(_)
        | mysql::Error::CodecError(_)
        | mysql::Error::UrlError(_)
        | mysql::Error::DriverError(
            mysql::DriverError::CouldNotConnect(_) | mysql::DriverError::ConnectTimeout,
        ) => ErrorKind::Unreadable,
        _ => ErrorKind::Other,
    }
}

/// True when the connection can no longer be trusted (anything but the server's answer to a
/// statement, or the server saying it closed the connection).
fn connection_lost(e: &mysql::Error) -> bool {
    match e {
        // Server shutdown, connection killed, server gone, lost connection, idle timeout.
        mysql::Error::MySqlError(e) => matches!(e.code, 1053 | 1927 | 2006 | 2013 | 4031),
        mysql::Error::FromValueError(_) | mysql::Error::FromRowError(_) => false,
        _ => true,
    }
}

fn error(origin: &str, what: &str, e: &mysql::Error) -> DbError {
    DbError::new(kind_of(e), origin, what, e.to_string())
}

/// A cell for a log line: numbers as they are, text quoted (at most 60 bytes).
fn show(v: &Value) -> String {
    match v {
        Value::NULL => "NULL".to_owned(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Bytes(b) => {
            let t = String::from_utf8_lossy(b);
            let cut: String = t.chars().take(60).collect();
            format!("{cut:?}")
        }
        other => format!("{other:?}"),
    }
}

/// A non-negative integer cell (the binary protocol gives `Int`; text is read too).
fn non_negative(v: &Value) -> Option<u64> {
    match v {
        Value::Int(i) => u64::try_from(*i).ok(),
        Value::UInt(u) => Some(*u),
        Value::Bytes(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    }
}

fn text(v: &Value) -> Option<&str> {
    match v {
        Value::Bytes(b) => std::str::from_utf8(b).ok(),
        _ => None,
    }
}

/// The three cells of a row (missing cells read as NULL).
fn cells(row: &Row) -> [Value; 3] {
    std::array::from_fn(|i| row.as_ref(i).cloned().unwrap_or(Value::NULL))
}

fn read_keys(q: &mut impl Queryable, origin: &str) -> mysql::Result<(Vec<AuthKey>, usize)> {
    let rows: Vec<Row> = q.exec("SELECT id, `key`, valid_until FROM `keys`", ())?;
    let mut bad = BadRows::new(origin, "keys");
    let mut keys = Vec::new();
    for row in &rows {
        let [id, key, until] = cells(row);
        let Some(key_text) = text(&key).filter(|k| is_valid_key(k)) else {
            bad.skip(
                &show(&id),
                format!("key {} is not 32 ASCII letters and digits", show(&key)),
            );
            continue;
        };
        let valid_until = match &until {
            Value::NULL => None,
            v => match non_negative(v) {
                Some(t) => Some(t),
                None => {
                    bad.skip(
                        &show(&id),
                        format!("valid_until {} is not Unix seconds", show(&until)),
                    );
                    continue;
                }
            },
        };
        keys.push(AuthKey {
            key: key_text.to_owned(),
            valid_until,
        });
    }
    keys.sort_by(|a, b| a.key.cmp(&b.key));
    keys.dedup_by(|a, b| a.key == b.key);
    Ok((keys, bad.finish()))
}

fn read_whitelist(q: &mut impl Queryable, origin: &str) -> mysql::Result<(Vec<InfoHash>, usize)> {
    let rows: Vec<Row> = q.exec("SELECT id, info_hash FROM whitelist", ())?;
    let mut bad = BadRows::new(origin, "whitelist");
    let mut list = Vec::new();
    for row in &rows {
        let [id, hash, _] = cells(row);
        match text(&hash).and_then(parse_info_hash_hex) {
            Some(h) => list.push(h),
            None => bad.skip(
                &show(&id),
                format!("info_hash {} is not 40 hex digits", show(&hash)),
            ),
        }
    }
    list.sort_unstable();
    list.dedup();
    Ok((list, bad.finish()))
}

fn read_torrents(
    q: &mut impl Queryable,
    origin: &str,
) -> mysql::Result<(Vec<(InfoHash, u64)>, usize)> {
    let rows: Vec<Row> = q.exec("SELECT id, info_hash, completed FROM torrents", ())?;
    let mut bad = BadRows::new(origin, "torrents");
    let mut counts = Vec::new();
    for row in &rows {
        let [id, hash, completed] = cells(row);
        let Some(h) = text(&hash).and_then(parse_info_hash_hex) else {
            bad.skip(
                &show(&id),
                format!("info_hash {} is not 40 hex digits", show(&hash)),
            );
            continue;
        };
        let Some(n) = non_negative(&completed) else {
            bad.skip(
                &show(&id),
                format!("completed {} is not a count", show(&completed)),
            );
            continue;
        };
        counts.push((h, n));
    }
    // Largest count first within a hash, so dedup keeps it.
    counts.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    counts.dedup_by(|a, b| a.0 == b.0);
    Ok((counts, bad.finish()))
}

/// Checks one table's columns and UNIQUE index; returns whether each column is NOT NULL.
fn check_table(conn: &mut Conn, table: &str, columns: &[&str]) -> Result<Vec<bool>, String> {
    let read = |e: mysql::Error| e.to_string();
    let found: Vec<(String, String)> = conn
        .exec(
            "SELECT COLUMN_NAME, IS_NULLABLE FROM information_schema.COLUMNS
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
            (table,),
        )
        .map_err(read)?;
    let mut not_null = Vec::new();
    for want in columns {
        match found
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(want))
        {
            Some((_, nullable)) => not_null.push(nullable.eq_ignore_ascii_case("NO")),
            None => return Err(format!("table {table} has no column {want}")),
        }
    }
    // A UNIQUE index (or the primary key) on that one column.
    let unique: Option<u64> = conn
        .exec_first(
            "SELECT count(*) FROM (
                 SELECT INDEX_NAME FROM information_schema.STATISTICS
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND NON_UNIQUE = 0
                 GROUP BY INDEX_NAME
                 HAVING count(*) = 1 AND max(COLUMN_NAME) = ?
             ) AS u",
            (table, columns[0]),
        )
        .map_err(read)?;
    if unique.unwrap_or(0) == 0 {
        return Err(format!("column {table}.{} is not UNIQUE", columns[0]));
    }
    Ok(not_null)
}

impl Mysql {
    /// Connects to the database `url` names (`mysql://USER:PASS@HOST[:PORT]/DB`, with the
    /// `mysql` crate's URL parameters), creates torrust's tables that are missing, checks their
    /// columns and UNIQUE indexes, and loads everything. The database itself must exist.
    ///
    /// Errors, each naming the URL without its password and carrying the server's or the
    /// driver's message: [`ErrorKind::Unreadable`] (a URL the driver refuses, no server, access
    /// denied, unknown database), [`ErrorKind::Schema`] (a table lacks a column or a UNIQUE
    /// index of torrust's schema), any other kind for a statement refused (no CREATE privilege:
    /// [`ErrorKind::ReadOnly`]).
    pub fn open(url: &str) -> Result<(Self, Loaded), DbError> {
        let origin = redact_url(url);
        let opts = Opts::from_url(url).map_err(|e| {
            DbError::new(
                ErrorKind::Unreadable,
                &origin,
                "cannot open the database",
                e.to_string(),
            )
        })?;
        if opts.get_db_name().is_none_or(str::is_empty) {
            return Err(DbError::new(
                ErrorKind::Unreadable,
                &origin,
                "cannot open the database",
                "the URL names no database (mysql://USER:PASS@HOST/DB)",
            ));
        }
        let mut builder = OptsBuilder::from_opts(opts)
            .tcp_connect_timeout(Some(CONNECT_TIMEOUT))
            .read_timeout(Some(IO_TIMEOUT))
            .write_timeout(Some(IO_TIMEOUT));
        // The driver would switch from 127.0.0.1 to the server's Unix socket, whose path is
        // gone after a chroot: stay on TCP unless the URL asks.
        if !url.contains("prefer_socket=") && !url.contains("socket=") {
            builder = builder.prefer_socket(false);
        }
        let mut db = Mysql {
            opts: Opts::from(builder),
            conn: None,
            origin,
            permanent_keys: true,
        };
        if let Err(e) = db.connect() {
            return Err(error(&db.origin, "cannot open the database", &e));
        }
        db.create_and_check()?;
        let loaded = db.load()?;
        Ok((db, loaded))
    }

    fn connect(&mut self) -> mysql::Result<&mut Conn> {
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => Conn::new(self.opts.clone())?,
        };
        Ok(self.conn.insert(conn))
    }

    /// Runs `f` on the connection. A connection kept from an earlier call is checked first
    /// (`COM_PING`) and opened again if the server closed it (`wait_timeout`, a restart), so
    /// nothing is written on a dead connection; a connection lost during `f` is dropped, and
    /// the next call connects again.
    fn with_conn<T>(
        &mut self,
        f: impl FnOnce(&mut Conn, &str) -> mysql::Result<T>,
    ) -> mysql::Result<T> {
        if let Some(conn) = self.conn.as_mut() {
            if let Err(e) = conn.ping() {
                log::info!(
                    "{}: the connection was lost ({e}); connecting again",
                    self.origin
                );
                self.conn = None;
            }
        }
        let origin = self.origin.clone();
        let result = self.connect().and_then(|c| f(c, &origin));
        if result.as_ref().is_err_and(connection_lost) {
            self.conn = None;
        }
        result
    }

    fn create_and_check(&mut self) -> Result<(), DbError> {
        let origin = self.origin.clone();
        let creating = |e: &mysql::Error| error(&origin, "cannot create torrust's tables", e);
        let mut permanent_keys = true;
        let conn = self.connect().map_err(|e| creating(&e))?;
        for (table, sql) in CREATE_TABLES {
            let exists: Option<u64> = conn
                .exec_first(
                    "SELECT count(*) FROM information_schema.TABLES
                     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
                    (table,),
                )
                .map_err(|e| creating(&e))?;
            if exists.unwrap_or(0) == 0 {
                conn.query_drop(sql).map_err(|e| creating(&e))?;
                log::info!("{origin}: created table {table} (torrust schema)");
            }
        }
        for (table, columns) in COLUMNS {
            let not_null = check_table(conn, table, columns).map_err(|why| {
                DbError::new(
                    ErrorKind::Schema,
                    &origin,
                    "not torrust's schema",
                    format!("{why} (expected whitelist(info_hash UNIQUE), keys(key UNIQUE, valid_until), torrents(info_hash UNIQUE, completed))"),
                )
            })?;
            if table == "keys" && not_null[1] {
                permanent_keys = false;
                log::warn!(
                    "{origin}: keys.valid_until is NOT NULL (torrust's schema before its \
                     migration 20240730183500): permanent keys cannot be stored until it is run"
                );
            }
        }
        self.permanent_keys = permanent_keys;
        Ok(())
    }
}

fn apply_one(tx: &mut mysql::Transaction<'_>, change: &Change) -> mysql::Result<Applied> {
    let removed = |n: u64| {
        if n == 0 {
            Applied::NotFound
        } else {
            Applied::Deleted
        }
    };
    // A duplicate is the server's ER_DUP_ENTRY; InnoDB undoes that statement only, and the
    // transaction goes on.
    let insert = |tx: &mut mysql::Transaction<'_>, sql: &str, params: Vec<Value>| match tx
        .exec_drop(sql, params)
    {
        Ok(()) => Ok(Applied::Inserted),
        Err(mysql::Error::MySqlError(e)) if e.code == ER_DUP_ENTRY => Ok(Applied::AlreadyPresent),
        Err(e) => Err(e),
    };
    Ok(match change {
        Change::AddKey(k) => {
            let until = k.valid_until.map_or(Value::NULL, Value::from);
            insert(
                tx,
                "INSERT INTO `keys` (`key`, valid_until) VALUES (?, ?)",
                vec![Value::from(k.key.as_str()), until],
            )?
        }
        Change::RemoveKey(key) => {
            // The index finds the row; BINARY keeps a case-insensitive collation from matching
            // another key.
            tx.exec_drop(
                "DELETE FROM `keys` WHERE `key` = ? AND BINARY `key` = ?",
                (key.as_str(), key.as_str()),
            )?;
            removed(tx.affected_rows())
        }
        Change::AddWhitelist(h) => insert(
            tx,
            "INSERT INTO whitelist (info_hash) VALUES (?)",
            vec![Value::from(info_hash_hex(h))],
        )?,
        Change::RemoveWhitelist(h) => {
            tx.exec_drop(
                "DELETE FROM whitelist WHERE info_hash = ?",
                (info_hash_hex(h),),
            )?;
            removed(tx.affected_rows())
        }
        Change::SetCompleted(h, n) => {
            tx.exec_drop(
                "INSERT INTO torrents (info_hash, completed) VALUES (?, ?)
                 ON DUPLICATE KEY UPDATE completed = VALUES(completed)",
                (info_hash_hex(h), (*n).min(MAX_COMPLETED)),
            )?;
            Applied::Written
        }
    })
}

impl Backend for Mysql {
    fn origin(&self) -> &str {
        &self.origin
    }

    fn load(&mut self) -> Result<Loaded, DbError> {
        let loaded = self.with_conn(|conn, origin| {
            let mut tx =
                conn.start_transaction(TxOpts::default().set_with_consistent_snapshot(true))?;
            let (keys, bad_keys) = read_keys(&mut tx, origin)?;
            let (whitelist, bad_list) = read_whitelist(&mut tx, origin)?;
            let (completed, bad_torrents) = read_torrents(&mut tx, origin)?;
            tx.commit()?;
            Ok(Loaded {
                keys,
                whitelist,
                completed,
                skipped: Skipped {
                    keys: bad_keys,
                    whitelist: bad_list,
                    torrents: bad_torrents,
                },
            })
        });
        loaded.map_err(|e| error(&self.origin, "cannot read the database", &e))
    }

    fn load_keys(&mut self) -> Result<(Vec<AuthKey>, usize), DbError> {
        self.with_conn(read_keys)
            .map_err(|e| error(&self.origin, "cannot read the keys", &e))
    }

    fn load_whitelist(&mut self) -> Result<(Vec<InfoHash>, usize), DbError> {
        self.with_conn(read_whitelist)
            .map_err(|e| error(&self.origin, "cannot read the whitelist", &e))
    }

    fn apply(&mut self, changes: &[Change]) -> Result<Vec<Applied>, DbError> {
        for c in changes {
            c.check(&self.origin)?;
            if let Change::AddKey(AuthKey {
                valid_until: Some(t),
                ..
            }) = c
            {
                if *t > MAX_VALID_UNTIL {
                    return Err(DbError::new(
                        ErrorKind::InvalidInput,
                        &self.origin,
                        "refused key",
                        format!(
                            "valid_until {t} is above {MAX_VALID_UNTIL} (2038-01-19), the \
                             largest value of keys.valid_until INT(10) in torrust's MySQL schema"
                        ),
                    ));
                }
            }
        }
        let permanent = |c: &Change| matches!(c, Change::AddKey(k) if k.valid_until.is_none());
        if !self.permanent_keys && changes.iter().any(permanent) {
            return Err(DbError::new(
                ErrorKind::Schema,
                &self.origin,
                "cannot store a permanent key",
                "keys.valid_until is NOT NULL (torrust's schema before its migration \
                 20240730183500); run that migration to allow permanent keys",
            ));
        }
        let result = self.with_conn(|conn, _| {
            let mut tx = conn.start_transaction(TxOpts::default())?;
            let mut out = Vec::with_capacity(changes.len());
            for c in changes {
                out.push(apply_one(&mut tx, c)?);
            }
            tx.commit()?;
            Ok(out)
        });
        result.map_err(|e| error(&self.origin, "cannot write", &e))
    }
}

#[cfg(test)]
pub(crate) mod tests;
