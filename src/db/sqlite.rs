//! The SQLite backend (torrust schema, SQLite driver), with the bundled SQLite library.
//!
//! Durability: the file is put in WAL mode (`PRAGMA journal_mode=WAL`) with
//! `PRAGMA synchronous=FULL`, so each commit fsyncs the write-ahead log before [`Backend::apply`]
//! returns: a committed key survives a `kill -9` of the process and also a power cut. The cost,
//! one fsync per transaction, is paid once per group of API writes and once per batch of
//! counts (the writer groups them), not per announce. WAL also lets an operator read the file
//! (`sqlite3 tracker.db`) while the tracker writes.
//!
//! Encoding, as torrust writes it: info_hash as 40 lower-case hex digits, `valid_until` and
//! `completed` as INTEGERs (torrust binds them as decimal text, which the INTEGER column stores as
//! an integer: the same value on disk). Reads accept hex in either case; removals and count
//! updates match the lower-case text (the UNIQUE index is used), as torrust does.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior, params};

use super::{
    Applied, AuthKey, Backend, BadRows, Change, DbError, ErrorKind, Loaded, Skipped, info_hash_hex,
    is_valid_key, parse_info_hash_hex,
};
use crate::types::InfoHash;

/// How long a statement waits for a lock held by another connection (an operator's `sqlite3`
/// shell, a backup) before it fails with [`ErrorKind::Busy`]; [`Sqlite::set_busy_timeout`]
/// changes it.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(1);

/// torrust's statements (SQLite driver), run for the tables that are missing.
const CREATE_TABLES: [(&str, &str); 3] = [
    (
        "whitelist",
        "CREATE TABLE IF NOT EXISTS whitelist (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            info_hash TEXT NOT NULL UNIQUE
        );",
    ),
    (
        "keys",
        "CREATE TABLE IF NOT EXISTS keys (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            key TEXT NOT NULL UNIQUE,
            valid_until INTEGER
         );",
    ),
    (
        "torrents",
        "CREATE TABLE IF NOT EXISTS torrents (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            info_hash TEXT NOT NULL UNIQUE,
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

/// A SQLite database in torrust's schema: one connection, owned by one thread at a time.
pub struct Sqlite {
    conn: Connection,
    path: PathBuf,
    origin: String,
    /// False for torrust's schema before its migration 20240730183500 (`valid_until NOT NULL`).
    permanent_keys: bool,
}

fn kind_of(e: &rusqlite::Error) -> ErrorKind {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => ErrorKind::Busy,
        Some(ErrorCode::ReadOnly) => ErrorKind::ReadOnly,
        Some(ErrorCode::DiskFull) => ErrorKind::Full,
        Some(
            ErrorCode::NotADatabase
            | ErrorCode::DatabaseCorrupt
            | ErrorCode::CannotOpen
            | ErrorCode::PermissionDenied
            | ErrorCode::SystemIoFailure,
        ) => ErrorKind::Unreadable,
        _ => ErrorKind::Other,
    }
}

fn error(origin: &str, what: &str, e: rusqlite::Error) -> DbError {
    DbError::new(kind_of(&e), origin, what, e.to_string())
}

/// A cell for a log line: numbers as they are, text quoted (at most 60 bytes), blobs by size.
fn show(v: ValueRef<'_>) -> String {
    match v {
        ValueRef::Null => "NULL".to_owned(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(r) => r.to_string(),
        ValueRef::Text(t) => {
            let t = String::from_utf8_lossy(t);
            let cut: String = t.chars().take(60).collect();
            format!("{cut:?}")
        }
        ValueRef::Blob(b) => format!("a blob of {} bytes", b.len()),
    }
}

fn non_negative(v: ValueRef<'_>) -> Option<u64> {
    match v {
        ValueRef::Integer(i) => u64::try_from(i).ok(),
        _ => None,
    }
}

fn text(v: ValueRef<'_>) -> Option<&str> {
    match v {
        ValueRef::Text(t) => std::str::from_utf8(t).ok(),
        _ => None,
    }
}

fn read_keys(conn: &Connection, origin: &str) -> rusqlite::Result<(Vec<AuthKey>, usize)> {
    let mut stmt = conn.prepare("SELECT id, key, valid_until FROM keys")?;
    let mut rows = stmt.query([])?;
    let mut bad = BadRows::new(origin, "keys");
    let mut keys = Vec::new();
    while let Some(row) = rows.next()? {
        let (id, key, until) = (row.get_ref(0)?, row.get_ref(1)?, row.get_ref(2)?);
        let Some(key_text) = text(key).filter(|k| is_valid_key(k)) else {
            bad.skip(
                &show(id),
                format!("key {} is not 32 ASCII letters and digits", show(key)),
            );
            continue;
        };
        let valid_until = match until {
            ValueRef::Null => None,
            v => match non_negative(v) {
                Some(t) => Some(t),
                None => {
                    bad.skip(
                        &show(id),
                        format!("valid_until {} is not Unix seconds", show(until)),
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

fn read_whitelist(conn: &Connection, origin: &str) -> rusqlite::Result<(Vec<InfoHash>, usize)> {
    let mut stmt = conn.prepare("SELECT id, info_hash FROM whitelist")?;
    let mut rows = stmt.query([])?;
    let mut bad = BadRows::new(origin, "whitelist");
    let mut list = Vec::new();
    while let Some(row) = rows.next()? {
        let (id, hash) = (row.get_ref(0)?, row.get_ref(1)?);
        match text(hash).and_then(parse_info_hash_hex) {
            Some(h) => list.push(h),
            None => bad.skip(
                &show(id),
                format!("info_hash {} is not 40 hex digits", show(hash)),
            ),
        }
    }
    list.sort_unstable();
    list.dedup();
    Ok((list, bad.finish()))
}

fn read_torrents(
    conn: &Connection,
    origin: &str,
) -> rusqlite::Result<(Vec<(InfoHash, u64)>, usize)> {
    let mut stmt = conn.prepare("SELECT id, info_hash, completed FROM torrents")?;
    let mut rows = stmt.query([])?;
    let mut bad = BadRows::new(origin, "torrents");
    let mut counts = Vec::new();
    while let Some(row) = rows.next()? {
        let (id, hash, completed) = (row.get_ref(0)?, row.get_ref(1)?, row.get_ref(2)?);
        let Some(h) = text(hash).and_then(parse_info_hash_hex) else {
            bad.skip(
                &show(id),
                format!("info_hash {} is not 40 hex digits", show(hash)),
            );
            continue;
        };
        let Some(n) = non_negative(completed) else {
            bad.skip(
                &show(id),
                format!("completed {} is not a count", show(completed)),
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

/// Checks one table's columns and UNIQUE constraint; returns whether its second column is
/// declared NOT NULL.
fn check_table(conn: &Connection, table: &str, columns: &[&str]) -> Result<Vec<bool>, String> {
    let read = |e: rusqlite::Error| e.to_string();
    let mut stmt = conn
        .prepare("SELECT name, \"notnull\" FROM pragma_table_info(?1)")
        .map_err(read)?;
    let found: Vec<(String, bool)> = stmt
        .query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(read)?
        .collect::<Result<_, _>>()
        .map_err(read)?;
    let mut not_null = Vec::new();
    for want in columns {
        match found
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(want))
        {
            Some((_, nn)) => not_null.push(*nn),
            None => return Err(format!("table {table} has no column {want}")),
        }
    }
    let mut stmt = conn
        .prepare(
            "SELECT count(*) FROM pragma_index_list(?1) AS l
             WHERE l.\"unique\" = 1
               AND (SELECT count(*) FROM pragma_index_info(l.name)) = 1
               AND (SELECT name FROM pragma_index_info(l.name)) = ?2 COLLATE NOCASE",
        )
        .map_err(read)?;
    let unique: i64 = stmt
        .query_row([table, columns[0]], |r| r.get(0))
        .map_err(read)?;
    if unique == 0 {
        return Err(format!("column {table}.{} is not UNIQUE", columns[0]));
    }
    Ok(not_null)
}

impl Sqlite {
    /// Opens (creating when missing) the SQLite file at `path`: sets WAL mode and
    /// `synchronous=FULL`, creates torrust's tables that are missing, checks their columns and
    /// UNIQUE constraints, and loads everything.
    ///
    /// Errors, each naming the file and carrying SQLite's message:
    /// [`ErrorKind::Unreadable`] (cannot open or create, not a database, corrupt),
    /// [`ErrorKind::ReadOnly`] (WAL mode and the tables need a writable file and directory),
    /// [`ErrorKind::Busy`] (locked by another process for longer than
    /// [`DEFAULT_BUSY_TIMEOUT`]), [`ErrorKind::Schema`] (a table lacks a column or a UNIQUE
    /// constraint of torrust's schema).
    pub fn open(path: &Path) -> Result<(Self, Loaded), DbError> {
        let origin = path.display().to_string();
        let opening = |e| error(&origin, "cannot open the database", e);
        // No SQLITE_OPEN_URI: the path is a file name, even if it starts with `file:`.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(opening)?;
        conn.busy_timeout(DEFAULT_BUSY_TIMEOUT).map_err(opening)?;
        // The first statement to read the file: garbage fails here ("file is not a database").
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(opening)?;
        if !mode.eq_ignore_ascii_case("wal") {
            log::warn!("{origin}: WAL mode refused (journal_mode is {mode}); writes still commit");
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(opening)?;
        let mut db = Sqlite {
            conn,
            path: path.to_owned(),
            origin,
            permanent_keys: true,
        };
        db.create_and_check()?;
        let loaded = db.load()?;
        Ok((db, loaded))
    }

    fn create_and_check(&mut self) -> Result<(), DbError> {
        let origin = self.origin.clone();
        let creating = |e| error(&origin, "cannot create torrust's tables", e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(creating)?;
        for (table, sql) in CREATE_TABLES {
            let exists: i64 = tx
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                    [table],
                    |r| r.get(0),
                )
                .map_err(creating)?;
            if exists == 0 {
                tx.execute_batch(sql).map_err(creating)?;
                log::info!("{origin}: created table {table} (torrust schema)");
            }
        }
        for (table, columns) in COLUMNS {
            let not_null = check_table(&tx, table, columns).map_err(|why| {
                DbError::new(
                    ErrorKind::Schema,
                    &origin,
                    "not torrust's schema",
                    format!("{why} (expected whitelist(info_hash UNIQUE), keys(key UNIQUE, valid_until), torrents(info_hash UNIQUE, completed))"),
                )
            })?;
            if table == "keys" && not_null[1] {
                self.permanent_keys = false;
                log::warn!(
                    "{origin}: keys.valid_until is NOT NULL (torrust's schema before its \
                     migration 20240730183500): permanent keys cannot be stored until it is run"
                );
            }
        }
        tx.commit().map_err(creating)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sets how long a statement waits for another connection's lock before failing with
    /// [`ErrorKind::Busy`] (default [`DEFAULT_BUSY_TIMEOUT`]). The writer thread waits this long
    /// at most per transaction, while its requests queue.
    ///
    /// Errors: SQLite refuses the setting.
    pub fn set_busy_timeout(&mut self, timeout: Duration) -> Result<(), DbError> {
        self.conn
            .busy_timeout(timeout)
            .map_err(|e| error(&self.origin, "cannot set the busy timeout", e))
    }
}

fn apply_one(tx: &rusqlite::Transaction<'_>, change: &Change) -> rusqlite::Result<Applied> {
    let added = |n: usize| {
        if n == 0 {
            Applied::AlreadyPresent
        } else {
            Applied::Inserted
        }
    };
    let removed = |n: usize| {
        if n == 0 {
            Applied::NotFound
        } else {
            Applied::Deleted
        }
    };
    Ok(match change {
        Change::AddKey(k) => {
            let until = k.valid_until.map(|t| i64::try_from(t).unwrap_or(i64::MAX));
            added(tx.prepare_cached(
                    "INSERT INTO keys (key, valid_until) VALUES (?1, ?2) ON CONFLICT(key) DO NOTHING",
                )?
                .execute(params![k.key, until])?)
        }
        Change::RemoveKey(key) => removed(
            tx.prepare_cached("DELETE FROM keys WHERE key = ?1")?
                .execute([key])?,
        ),
        Change::AddWhitelist(h) => added(
            tx.prepare_cached(
                "INSERT INTO whitelist (info_hash) VALUES (?1) ON CONFLICT(info_hash) DO NOTHING",
            )?
            .execute([info_hash_hex(h)])?,
        ),
        Change::RemoveWhitelist(h) => removed(
            tx.prepare_cached("DELETE FROM whitelist WHERE info_hash = ?1")?
                .execute([info_hash_hex(h)])?,
        ),
        Change::SetCompleted(h, n) => {
            tx.prepare_cached(
                "INSERT INTO torrents (info_hash, completed) VALUES (?1, ?2)
                     ON CONFLICT(info_hash) DO UPDATE SET completed = excluded.completed",
            )?
            .execute(params![
                info_hash_hex(h),
                i64::try_from(*n).unwrap_or(i64::MAX)
            ])?;
            Applied::Written
        }
    })
}

impl Backend for Sqlite {
    fn origin(&self) -> &str {
        &self.origin
    }

    fn load(&mut self) -> Result<Loaded, DbError> {
        let origin = self.origin.clone();
        let reading = |e| error(&origin, "cannot read the database", e);
        let tx = self.conn.transaction().map_err(reading)?;
        let (keys, bad_keys) = read_keys(&tx, &origin).map_err(reading)?;
        let (whitelist, bad_list) = read_whitelist(&tx, &origin).map_err(reading)?;
        let (completed, bad_torrents) = read_torrents(&tx, &origin).map_err(reading)?;
        tx.commit().map_err(reading)?;
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
    }

    fn load_keys(&mut self) -> Result<(Vec<AuthKey>, usize), DbError> {
        read_keys(&self.conn, &self.origin)
            .map_err(|e| error(&self.origin, "cannot read the keys", e))
    }

    fn load_whitelist(&mut self) -> Result<(Vec<InfoHash>, usize), DbError> {
        read_whitelist(&self.conn, &self.origin)
            .map_err(|e| error(&self.origin, "cannot read the whitelist", e))
    }

    fn apply(&mut self, changes: &[Change]) -> Result<Vec<Applied>, DbError> {
        for c in changes {
            c.check(&self.origin)?;
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
        let origin = self.origin.clone();
        let writing = |e| error(&origin, "cannot write", e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(writing)?;
        let mut out = Vec::with_capacity(changes.len());
        for c in changes {
            out.push(apply_one(&tx, c).map_err(writing)?);
        }
        tx.commit().map_err(writing)?;
        Ok(out)
    }
}

#[cfg(test)]
pub(crate) mod tests;
