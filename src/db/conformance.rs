//! Test bodies every [`Backend`] must pass ("one test body, two backends"): a backend's tests
//! define a [`Fixture`] (a fresh, empty database reopened on each call) and expand
//! [`backend_conformance!`] with it (`optional` when the fixture may be missing: the MySQL one
//! without a server to test against).

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::time::{Duration, Instant};

use super::writer::{Completion, Options, Outcome, Request, SendError, Writer};
use super::{Applied, AuthKey, Backend, Change, DbError, ErrorKind, Loaded, Skipped};
use crate::types::InfoHash;

/// A database under test.
pub(crate) trait Fixture {
    /// The backend's type.
    type B: Backend + 'static;
    /// Opens the fixture's database (the same one at every call).
    fn open(&self) -> (Self::B, Loaded);
    /// The largest `completed` count the backend stores (larger counts are written as this).
    fn max_completed(&self) -> u64 {
        i64::MAX as u64
    }
}

/// Expands to one `#[test]` per conformance body, each calling it with a new `$fixture`.
macro_rules! backend_conformance {
    (optional $fixture:expr) => {
        $crate::db::conformance::backend_conformance!(@optional $fixture;
            empty_database_loads_empty,
            reopen_keeps_everything,
            duplicates_and_missing_rows,
            counts_are_absolute_values,
            apply_is_all_or_nothing_on_bad_input,
            reloads_read_current_rows,
            writer_completes_in_order,
            writer_stop_flushes_everything,
            writer_refuses_when_full,
        );
    };
    (@optional $fixture:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                if let Some(fixture) = $fixture {
                    $crate::db::conformance::$name(&fixture);
                }
            }
        )*
    };
    ($fixture:expr) => {
        $crate::db::conformance::backend_conformance!(@tests $fixture;
            empty_database_loads_empty,
            reopen_keeps_everything,
            duplicates_and_missing_rows,
            counts_are_absolute_values,
            apply_is_all_or_nothing_on_bad_input,
            reloads_read_current_rows,
            writer_completes_in_order,
            writer_stop_flushes_everything,
            writer_refuses_when_full,
        );
    };
    (@tests $fixture:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::db::conformance::$name(&$fixture);
            }
        )*
    };
}
pub(crate) use backend_conformance;

pub(crate) fn hash(n: u8) -> InfoHash {
    let mut h = [0u8; 20];
    h[0] = n;
    h[19] = n.wrapping_mul(7);
    h
}

pub(crate) fn key(n: u8) -> String {
    format!("Key{n:03}{}", "x".repeat(26))
}

pub(crate) fn auth(n: u8, valid_until: Option<u64>) -> AuthKey {
    AuthKey {
        key: key(n),
        valid_until,
    }
}

/// A `notify` callback that signals the returned receiver.
pub(crate) fn notifier() -> (Box<dyn Fn() + Send>, Receiver<()>) {
    let (tx, rx) = mpsc::channel();
    (
        Box::new(move || {
            let _ = tx.send(());
        }),
        rx,
    )
}

/// Waits (at most 20 s) for `n` completions.
pub(crate) fn completions(writer: &Writer, woken: &Receiver<()>, n: usize) -> Vec<Completion> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut out = Vec::new();
    loop {
        while let Some(c) = writer.poll_completed() {
            out.push(c);
        }
        if out.len() >= n {
            return out;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "{} of {n} completions after 20 s",
            out.len()
        );
        let _ = woken.recv_timeout(left.min(Duration::from_millis(100)));
    }
}

fn ok(c: &Completion) -> &Outcome {
    match &c.result {
        Ok(o) => o,
        Err(e) => panic!("request {} failed: {e}", c.id),
    }
}

pub(crate) fn empty_database_loads_empty(f: &impl Fixture) {
    let (_db, loaded) = f.open();
    assert_eq!(loaded, Loaded::default());
    let (_db, loaded) = f.open();
    assert_eq!(loaded, Loaded::default());
}

pub(crate) fn reopen_keeps_everything(f: &impl Fixture) {
    let (mut db, _) = f.open();
    let changes = [
        Change::AddKey(auth(2, Some(1_700_000_000))),
        Change::AddKey(auth(1, None)),
        Change::AddWhitelist(hash(9)),
        Change::AddWhitelist(hash(3)),
        Change::SetCompleted(hash(5), 42),
        Change::SetCompleted(hash(4), 1),
    ];
    let applied = db.apply(&changes).unwrap();
    use Applied::*;
    assert_eq!(
        applied,
        [Inserted, Inserted, Inserted, Inserted, Written, Written]
    );
    drop(db);
    let (_db, loaded) = f.open();
    assert_eq!(
        loaded,
        Loaded {
            keys: vec![auth(1, None), auth(2, Some(1_700_000_000))],
            whitelist: vec![hash(3), hash(9)],
            completed: vec![(hash(4), 1), (hash(5), 42)],
            skipped: Skipped::default(),
        }
    );
}

pub(crate) fn duplicates_and_missing_rows(f: &impl Fixture) {
    let (mut db, _) = f.open();
    use Applied::*;
    let first = db.apply(&[Change::AddKey(auth(1, Some(100)))]).unwrap();
    assert_eq!(first, [Inserted]);
    // A duplicate key is an outcome, not a driver error, and leaves the row as it was.
    let again = db.apply(&[Change::AddKey(auth(1, Some(999)))]).unwrap();
    assert_eq!(again, [AlreadyPresent]);
    let applied = db
        .apply(&[
            Change::AddWhitelist(hash(1)),
            Change::AddWhitelist(hash(1)),
            Change::RemoveKey(key(7)),
            Change::RemoveWhitelist(hash(7)),
            Change::RemoveWhitelist(hash(1)),
            Change::RemoveWhitelist(hash(1)),
        ])
        .unwrap();
    assert_eq!(
        applied,
        [
            Inserted,
            AlreadyPresent,
            NotFound,
            NotFound,
            Deleted,
            NotFound
        ]
    );
    assert_eq!(db.apply(&[Change::RemoveKey(key(1))]).unwrap(), [Deleted]);
    assert_eq!(db.apply(&[Change::RemoveKey(key(1))]).unwrap(), [NotFound]);
    assert_eq!(
        db.apply(&[Change::AddKey(auth(1, None))]).unwrap(),
        [Inserted]
    );
    drop(db);
    let (_db, loaded) = f.open();
    assert_eq!(loaded.keys, [auth(1, None)]);
    assert!(loaded.whitelist.is_empty());
}

pub(crate) fn counts_are_absolute_values(f: &impl Fixture) {
    let (mut db, _) = f.open();
    db.apply(&[Change::SetCompleted(hash(1), 3)]).unwrap();
    db.apply(&[
        Change::SetCompleted(hash(1), 7),
        Change::SetCompleted(hash(2), 0),
    ])
    .unwrap();
    db.apply(&[Change::SetCompleted(hash(3), u64::MAX)])
        .unwrap();
    drop(db);
    let (_db, loaded) = f.open();
    assert_eq!(
        loaded.completed,
        [(hash(1), 7), (hash(2), 0), (hash(3), f.max_completed())]
    );
}

pub(crate) fn apply_is_all_or_nothing_on_bad_input(f: &impl Fixture) {
    let (mut db, _) = f.open();
    let bad = AuthKey {
        key: "short".into(),
        valid_until: None,
    };
    let e: DbError = db
        .apply(&[Change::AddKey(auth(1, None)), Change::AddKey(bad)])
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput);
    assert!(e.to_string().contains("\"short\""), "{e}");
    let (keys, skipped) = db.load_keys().unwrap();
    assert!(keys.is_empty());
    assert_eq!(skipped, 0);
}

pub(crate) fn reloads_read_current_rows(f: &impl Fixture) {
    let (mut db, _) = f.open();
    db.apply(&[
        Change::AddKey(auth(3, Some(5))),
        Change::AddKey(auth(1, None)),
        Change::AddWhitelist(hash(2)),
        Change::AddWhitelist(hash(1)),
    ])
    .unwrap();
    assert_eq!(
        db.load_keys().unwrap(),
        (vec![auth(1, None), auth(3, Some(5))], 0)
    );
    assert_eq!(db.load_whitelist().unwrap(), (vec![hash(1), hash(2)], 0));
    let all = db.load().unwrap();
    assert_eq!(all.keys.len(), 2);
    assert_eq!(all.whitelist.len(), 2);
}

pub(crate) fn writer_completes_in_order(f: &impl Fixture) {
    let (db, _) = f.open();
    let (notify, woken) = notifier();
    let writer = Writer::start(db, notify).unwrap();
    let requests = [
        Request::AddKey(auth(1, Some(1_800_000_000))),
        Request::AddKey(auth(1, None)),
        Request::RemoveKey(key(9)),
        Request::AddKey(AuthKey {
            key: "bad key".into(),
            valid_until: None,
        }),
        Request::AddWhitelist(hash(4)),
        Request::RemoveWhitelist(hash(5)),
        Request::ReloadKeys,
        Request::AddWhitelist(hash(6)),
        Request::ReloadWhitelist,
    ];
    for (id, r) in requests.into_iter().enumerate() {
        writer.send(100 + id as u64, r).unwrap();
    }
    writer
        .send_counts(vec![(hash(1), 5), (hash(2), 6)])
        .unwrap();
    writer.send_counts(vec![(hash(1), 8)]).unwrap();
    let got = completions(&writer, &woken, 9);
    assert_eq!(
        got.iter().map(|c| c.id).collect::<Vec<_>>(),
        (100..109).collect::<Vec<_>>()
    );
    use Applied::*;
    assert_eq!(ok(&got[0]), &Outcome::Applied(Inserted));
    assert_eq!(ok(&got[1]), &Outcome::Applied(AlreadyPresent));
    assert_eq!(ok(&got[2]), &Outcome::Applied(NotFound));
    assert_eq!(
        got[3].result.as_ref().unwrap_err().kind,
        ErrorKind::InvalidInput
    );
    assert_eq!(ok(&got[4]), &Outcome::Applied(Inserted));
    assert_eq!(ok(&got[5]), &Outcome::Applied(NotFound));
    assert_eq!(
        ok(&got[6]),
        &Outcome::Keys {
            keys: vec![auth(1, Some(1_800_000_000))],
            skipped: 0
        }
    );
    assert_eq!(ok(&got[7]), &Outcome::Applied(Inserted));
    assert_eq!(
        ok(&got[8]),
        &Outcome::Whitelist {
            info_hashes: vec![hash(4), hash(6)],
            skipped: 0
        }
    );
    assert!(writer.stop().is_empty());
    let (_db, loaded) = f.open();
    assert_eq!(loaded.completed, [(hash(1), 8), (hash(2), 6)]);
}

pub(crate) fn writer_stop_flushes_everything(f: &impl Fixture) {
    let (db, _) = f.open();
    let (notify, _woken) = notifier();
    let writer = Writer::start(db, notify).unwrap();
    for n in 0..50u8 {
        writer
            .send(u64::from(n), Request::AddKey(auth(n, None)))
            .unwrap();
        writer
            .send_counts(vec![(hash(n), u64::from(n)), (hash(0), u64::from(n))])
            .unwrap();
    }
    let left = writer.stop();
    assert_eq!(left.len(), 50);
    assert!(left.iter().all(|c| c.result.is_ok()));
    let (_db, loaded) = f.open();
    assert_eq!(loaded.keys.len(), 50);
    assert_eq!(loaded.completed.len(), 50);
    assert_eq!(loaded.completed[0], (hash(0), 49));
    assert_eq!(loaded.completed[49], (hash(49), 49));
}

/// A backend whose `apply` signals `entered` and then waits for `release` (until it is dropped).
pub(crate) struct Gated<B> {
    inner: B,
    entered: SyncSender<()>,
    release: Receiver<()>,
}

impl<B: Backend> Backend for Gated<B> {
    fn origin(&self) -> &str {
        self.inner.origin()
    }
    fn load(&mut self) -> Result<Loaded, DbError> {
        self.inner.load()
    }
    fn load_keys(&mut self) -> Result<(Vec<AuthKey>, usize), DbError> {
        self.inner.load_keys()
    }
    fn load_whitelist(&mut self) -> Result<(Vec<InfoHash>, usize), DbError> {
        self.inner.load_whitelist()
    }
    fn apply(&mut self, changes: &[Change]) -> Result<Vec<Applied>, DbError> {
        let _ = self.entered.try_send(());
        let _ = self.release.recv();
        self.inner.apply(changes)
    }
}

pub(crate) fn writer_refuses_when_full(f: &impl Fixture) {
    let (inner, _) = f.open();
    let (entered_tx, entered) = mpsc::sync_channel(16);
    let (release, release_rx) = mpsc::channel();
    let gated = Gated {
        inner,
        entered: entered_tx,
        release: release_rx,
    };
    let (notify, woken) = notifier();
    let options = Options {
        capacity: 4,
        ..Options::default()
    };
    let writer = Writer::start_with(gated, options, notify).unwrap();
    writer.send(0, Request::AddKey(auth(0, None))).unwrap();
    entered
        .recv_timeout(Duration::from_secs(20))
        .expect("the writer reaches apply");
    // The writer is busy with request 0; the channel holds 4 more, then refuses.
    for n in 1..=4u8 {
        writer
            .send(u64::from(n), Request::AddKey(auth(n, None)))
            .unwrap();
    }
    assert_eq!(
        writer.send(5, Request::AddKey(auth(5, None))),
        Err(SendError::Full)
    );
    let (e, back) = writer.send_counts(vec![(hash(1), 1)]).unwrap_err();
    assert_eq!((e, back), (SendError::Full, vec![(hash(1), 1)]));
    drop(release);
    let got = completions(&writer, &woken, 5);
    assert_eq!(
        got.iter().map(|c| c.id).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4]
    );
    assert!(
        got.iter()
            .all(|c| ok(c) == &Outcome::Applied(Applied::Inserted))
    );
    // Room again.
    writer.send(5, Request::AddKey(auth(5, None))).unwrap();
    assert_eq!(writer.stop().len(), 1);
    let (_db, loaded) = f.open();
    assert_eq!(loaded.keys.len(), 6);
}
