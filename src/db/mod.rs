//! Persistence of auth keys, whitelisted info_hashes and per-torrent `downloaded` counts
//! (`db.path FILE`), in torrust-tracker's database schema so that an operator moving from torrust
//! points `db.path` at its `sqlite3.db` and keeps keys, list and counts.
//!
//! The schema (torrust schema, SQLite driver; created when missing, never altered):
//!
//! | table | columns | our encoding |
//! |---|---|---|
//! | `whitelist` | `id INTEGER PRIMARY KEY AUTOINCREMENT`, `info_hash TEXT NOT NULL UNIQUE` | info_hash as 40 lower-case hex digits |
//! | `torrents` | `id ...`, `info_hash TEXT NOT NULL UNIQUE`, `completed INTEGER DEFAULT 0 NOT NULL` | the `downloaded` count (scrape's `downloaded`, BEP 48) |
//! | `keys` | `id ...`, `key TEXT NOT NULL UNIQUE`, `valid_until INTEGER` (NULL = permanent) | key: 32 ASCII alphanumerics; valid_until: Unix seconds |
//!
//! How the pieces fit:
//! - [`Db::open`] (at start, before serving) opens or creates the file, creates missing tables,
//!   checks the columns and loads everything ([`Loaded`]). An unreadable or corrupt file is a
//!   [`DbError`] naming the file and SQLite's message; the caller stops. Rows that do not parse
//!   (bad hex, a key not in torrust's format, a negative number) are skipped, logged as
//!   warnings and counted in [`Skipped`]; they never stop the start.
//! - [`writer::Writer`] owns the database afterwards, on its own thread. The event loop never
//!   touches the disk: it sends requests over a bounded channel and gets completions back through
//!   a queue and a wake-up callback.
//! - [`Backend`] is what the writer needs from a database: SQLite ([`sqlite::Sqlite`], `db.path`)
//!   or MySQL / MariaDB ([`mysql::Mysql`], `db.url`, torrust's MySQL schema), checked by the
//!   same test bodies (`db::conformance`).
//!
//! Unlike torrust, the `completed` counts are loaded back at start (torrust v3 stores them but
//! never reads them, its issue #1634).

pub mod mysql;
pub mod sqlite;
pub mod writer;

#[cfg(test)]
mod conformance;

use std::fmt;
use std::path::Path;

use crate::types::InfoHash;

/// Length of an auth key in characters (torrust's `AUTH_KEY_LENGTH`).
pub const KEY_LEN: usize = 32;

/// An auth key as stored in the `keys` table (torrust's `PeerKey`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AuthKey {
    /// The key: [`KEY_LEN`] ASCII alphanumerics (`[0-9A-Za-z]`), case-sensitive.
    pub key: String,
    /// End of validity in Unix seconds (UTC); `None` = permanent (a NULL `valid_until`).
    pub valid_until: Option<u64>,
}

/// True if `key` has torrust's key format: exactly [`KEY_LEN`] ASCII alphanumerics.
pub fn is_valid_key(key: &str) -> bool {
    key.len() == KEY_LEN && key.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The text form of an info_hash in the database: 40 lower-case hex digits (torrust's
/// `InfoHash::to_string`).
pub fn info_hash_hex(info_hash: &InfoHash) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(40);
    for b in info_hash {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    out
}

/// Parses 40 hex digits (either case, as torrust reads them) into an info_hash; `None` for any
/// other text.
pub fn parse_info_hash_hex(text: &str) -> Option<InfoHash> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let text = text.as_bytes();
    if text.len() != 40 {
        return None;
    }
    let mut out = [0u8; 20];
    for (o, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *o = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(out)
}

/// Rows skipped at a load because they do not parse (each one is also logged as a warning,
/// the first few in full).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Skipped {
    /// `keys` rows: a key not in torrust's format, or a `valid_until` that is not a non-negative
    /// integer.
    pub keys: usize,
    /// `whitelist` rows: an info_hash that is not 40 hex digits.
    pub whitelist: usize,
    /// `torrents` rows: a bad info_hash or a `completed` that is not a non-negative integer.
    pub torrents: usize,
}

/// Bad rows logged one by one at a load, per table; beyond this, one summary line.
pub(crate) const MAX_ROW_WARNINGS: usize = 10;

/// Counts the skipped rows of one table and logs the first few (every backend's loads).
pub(crate) struct BadRows<'a> {
    origin: &'a str,
    table: &'static str,
    count: usize,
}

impl<'a> BadRows<'a> {
    /// No bad row yet in `table` of the database `origin` (its file or URL, for the log).
    pub(crate) fn new(origin: &'a str, table: &'static str) -> Self {
        BadRows {
            origin,
            table,
            count: 0,
        }
    }

    /// Counts one bad row (`id` as the backend shows it) and logs it while few were.
    pub(crate) fn skip(&mut self, id: &str, why: String) {
        self.count += 1;
        if self.count <= MAX_ROW_WARNINGS {
            log::warn!(
                "{}: table {}, row id {id}: {why}; row skipped",
                self.origin,
                self.table
            );
        }
    }

    /// Logs how many more were skipped than were logged; returns the count.
    pub(crate) fn finish(self) -> usize {
        if self.count > MAX_ROW_WARNINGS {
            log::warn!(
                "{}: table {}: {} more bad rows skipped ({} in all)",
                self.origin,
                self.table,
                self.count - MAX_ROW_WARNINGS,
                self.count
            );
        }
        self.count
    }
}

/// Everything the database holds, read at start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Loaded {
    /// The `keys` rows, sorted by key.
    pub keys: Vec<AuthKey>,
    /// The `whitelist` rows, sorted and deduplicated.
    pub whitelist: Vec<InfoHash>,
    /// The `torrents` rows as (info_hash, downloaded), sorted by info_hash; a hash present twice
    /// (rows differing only in hex case) keeps the larger count.
    pub completed: Vec<(InfoHash, u64)>,
    /// Rows that did not parse.
    pub skipped: Skipped,
}

/// One change to the database; [`Backend::apply`] writes a list of them in one transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Inserts a key; an existing key is left as it is ([`Applied::AlreadyPresent`]).
    AddKey(AuthKey),
    /// Deletes a key by its text.
    RemoveKey(String),
    /// Inserts an info_hash into `whitelist`; an existing one gives [`Applied::AlreadyPresent`].
    AddWhitelist(InfoHash),
    /// Deletes an info_hash from `whitelist`.
    RemoveWhitelist(InfoHash),
    /// Sets a torrent's `completed` count to an absolute value (insert or update).
    SetCompleted(InfoHash, u64),
}

impl Change {
    /// Checks what the database cannot hold, before any write: a key not in torrust's format
    /// (see [`is_valid_key`]), a `valid_until` above `i64::MAX` (SQLite's INTEGER is signed).
    ///
    /// Errors: [`ErrorKind::InvalidInput`], with `origin` as the error's origin.
    pub fn check(&self, origin: &str) -> Result<(), DbError> {
        let bad_key = |key: &str| {
            DbError::new(
                ErrorKind::InvalidInput,
                origin,
                "refused key",
                format!("{key:?} is not {KEY_LEN} ASCII letters and digits"),
            )
        };
        match self {
            Change::AddKey(k) => {
                if !is_valid_key(&k.key) {
                    return Err(bad_key(&k.key));
                }
                if k.valid_until.is_some_and(|t| i64::try_from(t).is_err()) {
                    return Err(DbError::new(
                        ErrorKind::InvalidInput,
                        origin,
                        "refused key",
                        format!(
                            "valid_until {} is above {}",
                            k.valid_until.unwrap_or(0),
                            i64::MAX
                        ),
                    ));
                }
            }
            Change::RemoveKey(key) if !is_valid_key(key) => return Err(bad_key(key)),
            _ => {}
        }
        Ok(())
    }
}

/// What one [`Change`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// A new row ([`Change::AddKey`], [`Change::AddWhitelist`]).
    Inserted,
    /// The key or info_hash was already there; nothing changed. For a key the API answers 409.
    AlreadyPresent,
    /// The row existed and is gone ([`Change::RemoveKey`], [`Change::RemoveWhitelist`]).
    Deleted,
    /// There was no such row; nothing changed.
    NotFound,
    /// A count was written ([`Change::SetCompleted`]).
    Written,
}

/// What kind of failure a [`DbError`] is, for the caller's choice of answer (an API write
/// answers 503 for all but [`ErrorKind::InvalidInput`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file cannot be opened or read, or is not a database (garbage, corrupt, permissions).
    Unreadable,
    /// A table lacks a column or a UNIQUE constraint of torrust's schema.
    Schema,
    /// Another connection holds the lock longer than the busy timeout.
    Busy,
    /// The file or its directory is read-only.
    ReadOnly,
    /// The disk is full.
    Full,
    /// A change the database cannot hold (see [`Change::check`]); retrying will not help.
    InvalidInput,
    /// The writer thread has stopped (or panicked); nothing more will be written.
    Stopped,
    /// Any other failure of the database.
    Other,
}

/// A database failure. Display: `ORIGIN: WHAT: MESSAGE`, e.g.
/// `/var/lib/tracker.db: cannot open the database: file is not a database`, where the message is
/// SQLite's own (or the driver's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbError {
    /// The kind of failure.
    pub kind: ErrorKind,
    /// The database: the file's path (or a URL without its password).
    pub origin: String,
    /// What was being done, e.g. `cannot open the database`.
    pub what: String,
    /// The database's own message.
    pub message: String,
}

impl DbError {
    /// An error of `kind` from `origin` while doing `what`.
    pub fn new(
        kind: ErrorKind,
        origin: &str,
        what: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        DbError {
            kind,
            origin: origin.to_owned(),
            what: what.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.origin, self.what, self.message)
    }
}

impl std::error::Error for DbError {}

/// What the writer thread needs from a database. One value is one connection, used from one
/// thread at a time (`Send`, not `Sync`).
///
/// Contract, checked for every backend by the same test bodies:
/// - the schema is torrust's (see the module docs), created when missing;
/// - [`Backend::apply`] is all or nothing: one transaction, committed durably before it returns
///   `Ok` (so a completion sent after it survives a `kill -9` of the process);
/// - a duplicate key or info_hash is [`Applied::AlreadyPresent`], not an error;
/// - loads skip and count rows that do not parse (see [`Skipped`]).
///
/// Each backend opens with its own constructor ([`sqlite::Sqlite::open`] takes a path,
/// [`mysql::Mysql::open`] a URL), which creates the missing tables and loads everything; errors
/// there ([`ErrorKind::Unreadable`], [`ErrorKind::Schema`], ...) are fatal at start.
pub trait Backend: Send {
    /// The database for messages: a file path (or a URL without its password).
    fn origin(&self) -> &str;

    /// Reads all three tables again, in one read transaction.
    ///
    /// Errors: the database cannot be read.
    fn load(&mut self) -> Result<Loaded, DbError>;

    /// Reads the `keys` table again (torrust's `GET /api/v1/keys/reload`): the keys sorted by key,
    /// and the number of rows skipped.
    ///
    /// Errors: the database cannot be read.
    fn load_keys(&mut self) -> Result<(Vec<AuthKey>, usize), DbError>;

    /// Reads the `whitelist` table again (torrust's `GET /api/v1/whitelist/reload`): the
    /// info_hashes sorted and deduplicated, and the number of rows skipped.
    ///
    /// Errors: the database cannot be read.
    fn load_whitelist(&mut self) -> Result<(Vec<InfoHash>, usize), DbError>;

    /// Writes `changes` in order in one transaction and returns what each did (same length and
    /// order). Nothing is written unless everything is.
    ///
    /// Errors: a change fails [`Change::check`], or the database fails (busy, read-only, full,
    /// ...); then nothing was written.
    fn apply(&mut self, changes: &[Change]) -> Result<Vec<Applied>, DbError>;
}

/// The database the configuration names: `db.path` (SQLite) or `db.url` (MySQL / MariaDB).
pub enum Db {
    /// A SQLite file (torrust's `sqlite3` driver).
    Sqlite(sqlite::Sqlite),
    /// A MySQL or MariaDB database (torrust's `mysql` driver).
    Mysql(mysql::Mysql),
}

impl Db {
    /// Opens the SQLite file at `path` (`db.path`) and loads everything; see
    /// [`sqlite::Sqlite::open`].
    ///
    /// Errors: as [`sqlite::Sqlite::open`]; fatal for the caller at start.
    pub fn open(path: &Path) -> Result<(Db, Loaded), DbError> {
        let (db, loaded) = sqlite::Sqlite::open(path)?;
        Ok((Db::Sqlite(db), loaded))
    }

    /// Connects to the MySQL / MariaDB database `url` names (`db.url
    /// mysql://USER:PASS@HOST[:PORT]/DB`) and loads everything; see [`mysql::Mysql::open`].
    /// Error texts carry the URL without its password.
    ///
    /// Errors: as [`mysql::Mysql::open`]; fatal for the caller at start.
    pub fn open_url(url: &str) -> Result<(Db, Loaded), DbError> {
        let (db, loaded) = mysql::Mysql::open(url)?;
        Ok((Db::Mysql(db), loaded))
    }
}

impl Backend for Db {
    fn origin(&self) -> &str {
        match self {
            Db::Sqlite(db) => db.origin(),
            Db::Mysql(db) => db.origin(),
        }
    }

    fn load(&mut self) -> Result<Loaded, DbError> {
        match self {
            Db::Sqlite(db) => db.load(),
            Db::Mysql(db) => db.load(),
        }
    }

    fn load_keys(&mut self) -> Result<(Vec<AuthKey>, usize), DbError> {
        match self {
            Db::Sqlite(db) => db.load_keys(),
            Db::Mysql(db) => db.load_keys(),
        }
    }

    fn load_whitelist(&mut self) -> Result<(Vec<InfoHash>, usize), DbError> {
        match self {
            Db::Sqlite(db) => db.load_whitelist(),
            Db::Mysql(db) => db.load_whitelist(),
        }
    }

    fn apply(&mut self, changes: &[Change]) -> Result<Vec<Applied>, DbError> {
        match self {
            Db::Sqlite(db) => db.apply(changes),
            Db::Mysql(db) => db.apply(changes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_case() {
        let h: InfoHash = core::array::from_fn(|i| (i as u8).wrapping_mul(37));
        let text = info_hash_hex(&h);
        assert_eq!(text.len(), 40);
        assert_eq!(text, text.to_ascii_lowercase());
        assert_eq!(parse_info_hash_hex(&text), Some(h));
        assert_eq!(parse_info_hash_hex(&text.to_ascii_uppercase()), Some(h));
        assert_eq!(parse_info_hash_hex(&text[..39]), None);
        assert_eq!(parse_info_hash_hex(&format!("{}g", &text[..39])), None);
        assert_eq!(parse_info_hash_hex(""), None);
        // A multi-byte character must not panic.
        assert_eq!(parse_info_hash_hex(&format!("é{}", &text[..38])), None);
    }

    #[test]
    fn key_format_is_torrusts() {
        assert!(is_valid_key("YZSl4lMZupRuOpSRC3krIKR5BPB14nrJ"));
        assert!(!is_valid_key("YZSl4lMZupRuOpSRC3krIKR5BPB14nr"));
        assert!(!is_valid_key("YZSl4lMZupRuOpSRC3krIKR5BPB14nrJx"));
        assert!(!is_valid_key("YZSl4lMZupRuOpSRC3krIKR5BPB14nr-"));
        assert!(!is_valid_key("YZSl4lMZupRuOpSRC3krIKR5BPB14né"));
    }

    #[test]
    fn check_refuses_what_the_database_cannot_hold() {
        let ok = AuthKey {
            key: "a".repeat(KEY_LEN),
            valid_until: Some(i64::MAX as u64),
        };
        assert_eq!(Change::AddKey(ok.clone()).check("db"), Ok(()));
        let far = AuthKey {
            valid_until: Some(i64::MAX as u64 + 1),
            ..ok
        };
        let e = Change::AddKey(far).check("db").unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidInput);
        let e = Change::RemoveKey("short".into()).check("f.db").unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidInput);
        assert!(
            e.to_string().starts_with("f.db: refused key: \"short\""),
            "{e}"
        );
        assert_eq!(Change::SetCompleted([0; 20], u64::MAX).check("db"), Ok(()));
    }
}
