//! The embedded durable store: one SQLite file (WAL mode, bundled SQLite).
//!
//! # Layout
//!
//! * `records(id, revision, body)`: the current version of every record; the
//!   body is the record as compact JSON, credential values included.
//! * `changes(revision, record_id, deleted)`: the change log, compacted to the
//!   latest change per record id. Deletions stay as tombstones so a watcher
//!   resuming from an old revision learns about them. The store's head
//!   revision is the largest revision in this table.
//! * `PRAGMA user_version` holds the schema version; [`SqliteStore::open`]
//!   migrates older files step by step and refuses files written by a newer
//!   inferlink.
//!
//! # Sharing the file
//!
//! Several stores (in this process or others, e.g. the CLI and a host) may
//! open the same file: writes take SQLite's write lock (`BEGIN IMMEDIATE`) and
//! compute the next revision inside that transaction, so revisions stay unique
//! and compare-and-set stays exact across processes. Reads (`get`, `list`)
//! see every committed write. Live [`RegistryStore::watch`] events are only
//! delivered for writes made through the same [`SqliteStore`] (or its clones);
//! noticing other processes' writes while watching is not implemented yet.
//!
//! # Security
//!
//! The file holds credential values **in clear text**. On Unix it is created
//! with mode `0600` (its directory, when created here, with `0700`); SQLite
//! gives its `-wal` and `-shm` side files the same mode. Encryption at rest is
//! planned for a later release. Secret values never appear in errors or logs.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, Row, TransactionBehavior};

use super::feed::{ChangeLog, Feed};
use super::{
    Change, ChangeEvent, ChangeStream, ListFilter, Listing, PutMode, RegistryStore, Revision,
    StoredRecord, WriteOp, check_delete, prepare_put,
};
use crate::error::{Error, ErrorKind, Result};
use crate::format::{Format, ParseLimits, Secrets, parse_documents_as, to_json_compact};
use crate::model::ExtensionRecord;

/// Schema migrations, applied in order; step `i` moves the file to schema version `i + 1`.
///
/// Append new steps at the end; never edit a released step.
const MIGRATIONS: &[&str] = &[
    // 1: records and the compacted change log.
    "CREATE TABLE records (
         id TEXT PRIMARY KEY,
         revision INTEGER NOT NULL,
         body TEXT NOT NULL
     );
     CREATE TABLE changes (
         revision INTEGER PRIMARY KEY,
         record_id TEXT NOT NULL,
         deleted INTEGER NOT NULL
     );
     CREATE INDEX changes_record_id ON changes (record_id);",
];

/// Settings of a [`SqliteStore`]; [`SqliteOptions::default`] suits most uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    /// How long a statement waits for another connection's lock before failing
    /// with a retryable [`ErrorKind::Unavailable`] error. Default: 5 seconds.
    pub busy_timeout: Duration,
    /// `true` (the default): `synchronous=FULL`, every commit is on disk before
    /// the write returns. `false`: `synchronous=NORMAL`, faster, but the last
    /// commits may be lost on power failure (never corrupted).
    pub synchronous_full: bool,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            busy_timeout: Duration::from_secs(5),
            synchronous_full: true,
        }
    }
}

/// A [`RegistryStore`] in one SQLite file: durable, shareable between processes.
///
/// Cloning shares the same connection; the file is closed when the last
/// clone (including the one inside every open watch stream) is dropped.
/// Operations run on Tokio's blocking thread pool, so they need a Tokio
/// runtime; opening does not.
///
/// A record whose stored body cannot be decoded makes `get`, `list` and
/// `watch` fail with an [`ErrorKind::Storage`] error naming it; deleting it,
/// or overwriting it ([`PutMode::Overwrite`], without `<hidden>` values),
/// repairs the store.
///
/// ```
/// use inferlink::store::{ListFilter, RegistryStore, SqliteStore};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let dir = std::env::temp_dir().join(format!("inferlink-doc-{}", std::process::id()));
/// let store = SqliteStore::open(dir.join("registry.db"))?;
/// let listing = store.list(&ListFilter::all()).await?;
/// assert!(listing.records.is_empty());
/// # drop(store);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), inferlink::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Mutex<Connection>,
    feed: Feed,
    path: Option<PathBuf>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held cannot leave a half-written state
        // behind: an open transaction rolls back when it is dropped during
        // unwinding, so the connection stays usable.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store in the file at `path`, with default options.
    ///
    /// Missing parent directories are created. See [`SqliteStore::open_with`].
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore> {
        SqliteStore::open_with(path, SqliteOptions::default())
    }

    /// Opens (creating if needed) the store in the file at `path`.
    ///
    /// A new file gets mode `0600` and new directories `0700` on Unix. The
    /// schema is created or migrated. Errors name the path: a directory or an
    /// unusable parent is an [`ErrorKind::Config`] error; a file that is not a
    /// SQLite database, or one written by a newer inferlink, an
    /// [`ErrorKind::Storage`] error.
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<SqliteStore> {
        let path = path.as_ref();
        prepare_file(path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(e, path))?;
        SqliteStore::init(conn, Some(path.to_owned()), &options)
    }

    /// A store in a private in-memory database (for tests): gone when the last clone is dropped.
    pub fn open_in_memory() -> Result<SqliteStore> {
        let conn = Connection::open_in_memory()
            .map_err(|e| db_error(e, "cannot open an in-memory SQLite database"))?;
        SqliteStore::init(conn, None, &SqliteOptions::default())
    }

    /// The database file, or `None` for an in-memory store.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    fn init(
        mut conn: Connection,
        path: Option<PathBuf>,
        options: &SqliteOptions,
    ) -> Result<SqliteStore> {
        let label = match &path {
            Some(p) => format!("the SQLite store at \"{}\"", p.display()),
            None => "the in-memory SQLite store".to_owned(),
        };
        let setup = |e| db_error(e, format!("cannot open {label}"));
        conn.busy_timeout(options.busy_timeout).map_err(setup)?;
        let journal: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(setup)?;
        if path.is_some() && !journal.eq_ignore_ascii_case("wal") {
            tracing::warn!(
                journal_mode = %journal,
                "{label}: WAL mode is not available on this file system; concurrent readers will wait for writers"
            );
        }
        let synchronous = if options.synchronous_full {
            "FULL"
        } else {
            "NORMAL"
        };
        conn.pragma_update(None, "synchronous", synchronous)
            .map_err(setup)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(setup)?;
        migrate(&mut conn, MIGRATIONS, &label)?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                feed: Feed::new(),
                path,
            }),
        })
    }

    /// Runs `f` on the blocking pool while holding the connection.
    async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &Feed) -> Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.lock();
            f(&mut conn, &inner.feed)
        })
        .await
        .map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("a SQLite store task did not complete: {e}"),
            )
            .with_context("store", "sqlite")
        })?
    }
}

/// Creates the parent directory (0700) and an empty file (0600) when missing,
/// so SQLite never creates the file with the process umask's looser mode.
fn prepare_file(path: &Path) -> Result<()> {
    let shown = path.display();
    if path.as_os_str().is_empty() {
        return Err(config_error(
            "the SQLite store path is empty; give the path of a database file",
        ));
    }
    match fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {
            return Err(config_error(format!(
                "cannot open the SQLite store at \"{shown}\": it is a directory; give the path of a database file inside it, e.g. \"{}\"",
                path.join("registry.db").display()
            )));
        }
        Ok(_) => return Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) => {}
        Err(e) => {
            return Err(io_error(
                e,
                format!("cannot open the SQLite store at \"{shown}\""),
            ));
        }
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        match fs::metadata(parent) {
            Ok(meta) if !meta.is_dir() => {
                return Err(config_error(format!(
                    "cannot open the SQLite store at \"{shown}\": \"{}\" is not a directory",
                    parent.display()
                )));
            }
            Ok(_) => {}
            Err(_) => create_private_dir(parent).map_err(|e| {
                io_error(
                    e,
                    format!(
                        "cannot create the directory \"{}\" for the SQLite store",
                        parent.display()
                    ),
                )
            })?,
        }
    }
    match create_private_file(path) {
        Ok(()) => Ok(()),
        // Someone else created it in between: fine, SQLite opens theirs.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io_error(
            e,
            format!("cannot create the SQLite store file \"{shown}\""),
        )),
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> io::Result<()> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map(drop)
}

/// Brings the schema to `steps.len()`, applying the missing steps in one transaction.
fn migrate(conn: &mut Connection, steps: &[&str], label: &str) -> Result<()> {
    let fail = |e| db_error(e, format!("cannot migrate the schema of {label}"));
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(fail)?;
    let found: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(fail)?;
    let known = steps.len();
    let current = usize::try_from(found).map_err(|_| {
        Error::new(
            ErrorKind::Storage,
            format!("{label} has an invalid schema version {found}"),
        )
        .with_context("store", "sqlite")
    })?;
    if current > known {
        return Err(Error::new(
            ErrorKind::Storage,
            format!(
                "{label} was created by a newer inferlink (schema version {current}; this version knows up to {known}); upgrade inferlink to use it"
            ),
        )
        .with_context("store", "sqlite"));
    }
    if current == known {
        return Ok(());
    }
    for (index, step) in steps.iter().enumerate().skip(current) {
        tx.execute_batch(step).map_err(|e| {
            db_error(
                e,
                format!("cannot migrate {label} to schema version {}", index + 1),
            )
        })?;
    }
    let version = i64::try_from(known).unwrap_or(i64::MAX);
    tx.pragma_update(None, "user_version", version)
        .map_err(fail)?;
    tx.commit().map_err(fail)?;
    tracing::debug!(from = current, to = known, "migrated {label}");
    Ok(())
}

// --- Errors -------------------------------------------------------------------

/// Maps a SQLite error: lock contention is a retryable [`ErrorKind::Unavailable`], the rest storage errors.
fn db_error(e: rusqlite::Error, what: impl Into<String>) -> Error {
    let what = what.into();
    let error = match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Error::new(
            ErrorKind::Unavailable,
            format!(
                "{what}: the database is locked by another connection or process and the busy timeout expired; try again"
            ),
        )
        .with_retryable(true)
        .with_source(e),
        _ => Error::storage(what, e),
    };
    error.with_context("store", "sqlite")
}

fn open_error(e: rusqlite::Error, path: &Path) -> Error {
    db_error(
        e,
        format!("cannot open the SQLite store at \"{}\"", path.display()),
    )
}

fn config_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Config, message).with_context("store", "sqlite")
}

fn io_error(e: io::Error, what: String) -> Error {
    let kind = match e.kind() {
        io::ErrorKind::PermissionDenied | io::ErrorKind::NotADirectory => ErrorKind::Config,
        _ => ErrorKind::Storage,
    };
    Error::new(kind, what)
        .with_source(e)
        .with_context("store", "sqlite")
}

fn corrupt(id: &str, why: &str) -> Error {
    Error::new(
        ErrorKind::Storage,
        format!(
            "stored record \"{id}\" is corrupt: {why}; delete it, or overwrite it with a complete record"
        ),
    )
    .with_context("store", "sqlite")
    .with_context("record", id)
}

// --- Rows ---------------------------------------------------------------------

/// A `records` row as read, before decoding (decoding happens outside rusqlite's callbacks).
struct RawRecord {
    id: String,
    revision: Option<i64>,
    body: Option<String>,
}

impl RawRecord {
    /// Reads `id`, `revision`, `body` from columns `at`, `at + 1`, `at + 2`.
    fn from_row(row: &Row<'_>, at: usize) -> rusqlite::Result<RawRecord> {
        let id = String::from_utf8_lossy(row.get_ref(at)?.as_bytes().unwrap_or_default()).into();
        let revision = row.get_ref(at + 1)?.as_i64().ok();
        let body = text(row.get_ref(at + 2)?);
        Ok(RawRecord { id, revision, body })
    }

    fn decode(self) -> Result<StoredRecord> {
        let id = self.id.as_str();
        let revision = positive_revision(self.revision)
            .ok_or_else(|| corrupt(id, "its revision is not a positive integer"))?;
        let body = self
            .body
            .ok_or_else(|| corrupt(id, "its body is not UTF-8 text"))?;
        if !body.trim_start().starts_with('{') {
            return Err(corrupt(id, "its body is not a JSON object"));
        }
        // Only the field path of a decoding error is reported: serde messages
        // may quote values, and bodies hold credential values.
        let mut docs =
            parse_documents_as::<ExtensionRecord>(&body, Format::Json, &ParseLimits::default())
                .map_err(|e| match e.path() {
                    Some(path) => corrupt(id, &format!("its JSON body cannot be read at {path}")),
                    None => corrupt(id, "its JSON body cannot be read"),
                })?;
        let record = match (docs.pop(), docs.is_empty()) {
            (Some(record), true) => record,
            _ => return Err(corrupt(id, "its body is not exactly one record")),
        };
        if record.id != id {
            return Err(corrupt(id, "its body holds a record with another id"));
        }
        Ok(StoredRecord { record, revision })
    }
}

fn text(value: ValueRef<'_>) -> Option<String> {
    let bytes = value.as_bytes().ok()?;
    std::str::from_utf8(bytes).ok().map(str::to_owned)
}

fn positive_revision(value: Option<i64>) -> Option<Revision> {
    value
        .and_then(|r| Revision::try_from(r).ok())
        .filter(|r| *r > 0)
}

/// A revision as an SQL integer (revisions above `i64::MAX` never exist, so saturating is exact for comparisons).
fn sql_revision(revision: Revision) -> i64 {
    i64::try_from(revision).unwrap_or(i64::MAX)
}

fn read_raw(conn: &Connection, id: &str) -> Result<Option<RawRecord>> {
    conn.prepare_cached("SELECT id, revision, body FROM records WHERE id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([id], |row| RawRecord::from_row(row, 0))
                .optional()
        })
        .map_err(|e| db_error(e, format!("cannot read record \"{id}\"")))
}

fn read_head(conn: &Connection) -> Result<Revision> {
    let head: i64 = conn
        .query_row(
            "SELECT COALESCE(MAX(revision), 0) FROM changes",
            [],
            |row| row.get(0),
        )
        .map_err(|e| db_error(e, "cannot read the store's revision"))?;
    Revision::try_from(head).map_err(|_| {
        Error::new(
            ErrorKind::Storage,
            format!("the change log is corrupt: its latest revision is {head}"),
        )
        .with_context("store", "sqlite")
    })
}

/// The revision the next write gets.
fn next_revision(conn: &Connection) -> Result<(Revision, i64)> {
    let next = read_head(conn)?
        .checked_add(1)
        .and_then(|next| Some((next, i64::try_from(next).ok()?)));
    match next {
        Some(pair) => Ok(pair),
        None => Err(
            Error::new(ErrorKind::Storage, "the revision counter is exhausted")
                .with_context("store", "sqlite"),
        ),
    }
}

/// Records `id`'s latest change at `revision`, dropping its older log entries.
fn log_change(conn: &Connection, id: &str, revision: i64, deleted: bool) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM changes WHERE record_id = ?1")?
        .execute([id])?;
    conn.prepare_cached("INSERT INTO changes (revision, record_id, deleted) VALUES (?1, ?2, ?3)")?
        .execute(rusqlite::params![revision, id, deleted])?;
    Ok(())
}

/// Validates and writes one record inside an open write transaction.
fn write_record(
    tx: &Connection,
    mut record: ExtensionRecord,
    mode: PutMode,
) -> Result<StoredRecord> {
    let id = record.id.clone();
    let fail = |e| db_error(e, format!("cannot write record \"{id}\""));
    let current = match read_raw(tx, &id)? {
        None => None,
        Some(raw) => match raw.decode() {
            Ok(stored) => Some(stored),
            // A complete replacement needs nothing from the stored version:
            // let it repair a corrupt record.
            Err(e) if mode == PutMode::Overwrite && !record.has_hidden_placeholders() => {
                tracing::warn!(record = %id, "replacing a corrupt stored record: {e}");
                None
            }
            Err(e) => return Err(e),
        },
    };
    prepare_put(&mut record, mode, current.as_ref())?;
    let body = to_json_compact(&record, Secrets::Reveal)?;
    let (next, next_sql) = next_revision(tx)?;
    tx.prepare_cached(
        "INSERT INTO records (id, revision, body) VALUES (?1, ?2, ?3)
         ON CONFLICT (id) DO UPDATE SET revision = excluded.revision, body = excluded.body",
    )
    .and_then(|mut stmt| stmt.execute(rusqlite::params![id, next_sql, body]))
    .map_err(fail)?;
    log_change(tx, &id, next_sql, false).map_err(fail)?;
    Ok(StoredRecord {
        record,
        revision: next,
    })
}

/// Writes `records` in one transaction: all of them, or none.
fn put_all_blocking(
    conn: &mut Connection,
    feed: &Feed,
    records: Vec<(ExtensionRecord, PutMode)>,
) -> Result<Vec<Revision>> {
    let fail = |e| db_error(e, "cannot write records");
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(fail)?;
    let mut written = Vec::with_capacity(records.len());
    for (record, mode) in records {
        let id = record.id.clone();
        written.push(write_record(&tx, record, mode).map_err(|e| e.with_context("record", id))?);
    }
    tx.commit().map_err(fail)?;
    Ok(written
        .into_iter()
        .map(|stored| {
            let revision = stored.revision;
            feed.publish(ChangeEvent {
                revision,
                id: stored.record.id.clone(),
                change: Change::Put(Arc::new(stored)),
            });
            revision
        })
        .collect())
}

fn delete_blocking(
    conn: &mut Connection,
    feed: &Feed,
    id: &str,
    expected: Option<Revision>,
) -> Result<Revision> {
    let fail = |e| db_error(e, format!("cannot delete record \"{id}\""));
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(fail)?;
    let next = delete_record(&tx, id, expected)?;
    tx.commit().map_err(fail)?;
    feed.publish(ChangeEvent {
        revision: next,
        id: id.to_owned(),
        change: Change::Delete,
    });
    Ok(next)
}

/// Checks and deletes one record inside an open write transaction; returns the delete's revision.
fn delete_record(tx: &Connection, id: &str, expected: Option<Revision>) -> Result<Revision> {
    let fail = |e| db_error(e, format!("cannot delete record \"{id}\""));
    let current = match read_raw(tx, id)? {
        None => None,
        Some(raw) => match (positive_revision(raw.revision), expected) {
            (Some(revision), _) => Some(revision),
            // An unconditional delete may remove a record whose revision is unreadable.
            (None, None) => Some(0),
            (None, Some(_)) => {
                return Err(corrupt(id, "its revision is not a positive integer"));
            }
        },
    };
    check_delete(id, expected, current)?;
    let (next, next_sql) = next_revision(tx)?;
    tx.prepare_cached("DELETE FROM records WHERE id = ?1")
        .and_then(|mut stmt| stmt.execute([id]))
        .map_err(fail)?;
    log_change(tx, id, next_sql, true).map_err(fail)?;
    Ok(next)
}

/// Applies puts and deletes in one transaction: all of them, or none.
fn write_all_blocking(
    conn: &mut Connection,
    feed: &Feed,
    ops: Vec<WriteOp>,
) -> Result<Vec<Revision>> {
    let fail = |e| db_error(e, "cannot write records");
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(fail)?;
    let mut events = Vec::with_capacity(ops.len());
    for op in ops {
        let id = op.id().to_owned();
        let in_record = |e: Error| e.with_context("record", id.clone());
        let event = match op {
            WriteOp::Put(record, mode) => {
                let stored = write_record(&tx, record, mode).map_err(in_record)?;
                ChangeEvent {
                    revision: stored.revision,
                    id: id.clone(),
                    change: Change::Put(Arc::new(stored)),
                }
            }
            WriteOp::Delete { expected, .. } => ChangeEvent {
                revision: delete_record(&tx, &id, expected).map_err(in_record)?,
                id: id.clone(),
                change: Change::Delete,
            },
        };
        events.push(event);
    }
    tx.commit().map_err(fail)?;
    Ok(events
        .into_iter()
        .map(|event| {
            let revision = event.revision;
            feed.publish(event);
            revision
        })
        .collect())
}

fn list_blocking(conn: &mut Connection, filter: &ListFilter) -> Result<Listing> {
    let fail = |e| db_error(e, "cannot list records");
    // One read transaction: the rows and the head revision are one snapshot.
    let tx = conn.transaction().map_err(fail)?;
    let raws = tx
        .prepare_cached("SELECT id, revision, body FROM records ORDER BY id")
        .and_then(|mut stmt| {
            stmt.query_map([], |row| RawRecord::from_row(row, 0))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(fail)?;
    let revision = read_head(&tx)?;
    tx.commit().map_err(fail)?;
    let mut records = Vec::new();
    for raw in raws {
        let stored = raw.decode()?;
        if filter.matches(&stored.record) {
            records.push(stored);
        }
    }
    Ok(Listing { records, revision })
}

fn changes_blocking(conn: &mut Connection, since: Revision) -> Result<Vec<ChangeEvent>> {
    let fail = |e| db_error(e, "cannot read the change log");
    struct RawChange {
        revision: Option<i64>,
        id: String,
        deleted: bool,
        record: Option<RawRecord>,
    }
    let raws = conn
        .prepare_cached(
            "SELECT c.revision, c.record_id, c.deleted, r.id, r.revision, r.body
             FROM changes AS c LEFT JOIN records AS r ON r.id = c.record_id
             WHERE c.revision > ?1
             ORDER BY c.revision",
        )
        .and_then(|mut stmt| {
            stmt.query_map([sql_revision(since)], |row| {
                let record = match row.get_ref(3)? {
                    ValueRef::Null => None,
                    _ => Some(RawRecord::from_row(row, 3)?),
                };
                Ok(RawChange {
                    revision: row.get_ref(0)?.as_i64().ok(),
                    id: String::from_utf8_lossy(row.get_ref(1)?.as_bytes().unwrap_or_default())
                        .into(),
                    deleted: row.get_ref(2)?.as_i64().is_ok_and(|d| d != 0),
                    record,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(fail)?;
    let mut events = Vec::with_capacity(raws.len());
    for raw in raws {
        let log_corrupt = |why: &str| {
            Error::new(
                ErrorKind::Storage,
                format!(
                    "the change log entry of record \"{}\" is corrupt: {why}",
                    raw.id
                ),
            )
            .with_context("store", "sqlite")
            .with_context("record", raw.id.clone())
        };
        let revision = positive_revision(raw.revision)
            .ok_or_else(|| log_corrupt("its revision is not a positive integer"))?;
        let change = if raw.deleted {
            Change::Delete
        } else {
            let stored = raw
                .record
                .ok_or_else(|| log_corrupt("it records a write but the record is missing"))?
                .decode()?;
            if stored.revision != revision {
                return Err(log_corrupt(
                    "its revision differs from the stored record's revision",
                ));
            }
            Change::Put(Arc::new(stored))
        };
        events.push(ChangeEvent {
            revision,
            id: raw.id,
            change,
        });
    }
    Ok(events)
}

#[async_trait]
impl ChangeLog for SqliteStore {
    async fn changes_since(&self, since: Revision) -> Result<Vec<ChangeEvent>> {
        self.run(move |conn, _| changes_blocking(conn, since)).await
    }
}

#[async_trait]
impl RegistryStore for SqliteStore {
    async fn get(&self, id: &str) -> Result<Option<StoredRecord>> {
        let id = id.to_owned();
        self.run(move |conn, _| read_raw(conn, &id)?.map(RawRecord::decode).transpose())
            .await
    }

    async fn list(&self, filter: &ListFilter) -> Result<Listing> {
        let filter = filter.clone();
        self.run(move |conn, _| list_blocking(conn, &filter)).await
    }

    async fn put(&self, record: ExtensionRecord, mode: PutMode) -> Result<Revision> {
        let mut revisions = self
            .run(move |conn, feed| put_all_blocking(conn, feed, vec![(record, mode)]))
            .await?;
        revisions
            .pop()
            .ok_or_else(|| Error::new(ErrorKind::Internal, "a single write returned no revision"))
    }

    async fn put_all(&self, records: Vec<(ExtensionRecord, PutMode)>) -> Result<Vec<Revision>> {
        self.run(move |conn, feed| put_all_blocking(conn, feed, records))
            .await
    }

    async fn write_all(&self, ops: Vec<WriteOp>) -> Result<Vec<Revision>> {
        self.run(move |conn, feed| write_all_blocking(conn, feed, ops))
            .await
    }

    async fn delete(&self, id: &str, expected: Option<Revision>) -> Result<Revision> {
        let id = id.to_owned();
        self.run(move |conn, feed| delete_blocking(conn, feed, &id, expected))
            .await
    }

    async fn watch(&self, since: Revision) -> Result<ChangeStream> {
        Ok(self.inner.feed.watch(Arc::new(self.clone()), since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Credentials, Endpoint, Service};
    use crate::secret::Secret;

    fn record(id: &str, secret: &str) -> ExtensionRecord {
        ExtensionRecord {
            id: id.to_owned(),
            product: "minio".to_owned(),
            services: vec![Service {
                id: "s3".to_owned(),
                resource: "s3".to_owned(),
                endpoints: vec![Endpoint {
                    url: "http://minio:9000".to_owned(),
                    ..Default::default()
                }],
                credentials: vec![Credentials {
                    id: "admin".to_owned(),
                    configuration: [("KEY".to_owned(), Secret::new(secret))].into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn raw_exec(store: &SqliteStore, sql: &str) {
        store.inner.lock().execute_batch(sql).unwrap();
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn new_files_and_directories_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/deeper/registry.db");
        let store = SqliteStore::open(&path).unwrap();
        store
            .put(record("a", "planted-secret"), PutMode::Create)
            .await
            .unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("nested")), 0o700);
        assert_eq!(mode(&dir.path().join("nested/deeper")), 0o700);
        let wal = dir.path().join("nested/deeper/registry.db-wal");
        assert!(wal.exists(), "WAL mode is on");
        assert_eq!(mode(&wal), 0o600);
        assert_eq!(store.path(), Some(path.as_path()));
    }

    #[test]
    fn debug_shows_only_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let store = SqliteStore::open(&path).unwrap();
        let shown = format!("{store:?}");
        assert!(shown.starts_with("SqliteStore"), "{shown}");
        assert!(shown.contains("r.db"), "{shown}");
        assert_eq!(SqliteStore::open_in_memory().unwrap().path(), None);
    }

    #[test]
    fn a_directory_is_a_config_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let e = SqliteStore::open(dir.path()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        assert!(e.message().contains("is a directory"), "{e}");
        assert!(
            e.message().contains(&dir.path().display().to_string()),
            "{e}"
        );
    }

    #[test]
    fn a_file_under_a_file_is_a_config_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        fs::write(&file, "x").unwrap();
        let e = SqliteStore::open(file.join("registry.db")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        assert!(e.message().contains("is not a directory"), "{e}");
    }

    #[test]
    fn a_non_database_file_is_a_storage_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        fs::write(
            &path,
            "this is not a database, just some text that is long enough ".repeat(20),
        )
        .unwrap();
        let e = SqliteStore::open(&path).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Storage, "{e}");
        assert!(e.to_string().contains("notes.txt"), "{e}");
        assert_eq!(e.context("store"), Some("sqlite"));
    }

    #[test]
    fn schema_version_is_set_and_reopen_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        drop(SqliteStore::open(&path).unwrap());
        let store = SqliteStore::open(&path).unwrap();
        let version: i64 = store
            .inner
            .lock()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        assert_eq!(version, 1);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        drop(SqliteStore::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 7)
            .unwrap();
        let e = SqliteStore::open(&path).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Storage, "{e}");
        assert!(e.message().contains("newer inferlink"), "{e}");
        assert!(e.message().contains("schema version 7"), "{e}");
        assert!(e.to_string().contains("r.db"), "{e}");
    }

    #[test]
    fn a_failing_migration_step_rolls_back_every_step() {
        let mut conn = Connection::open_in_memory().unwrap();
        let steps = [MIGRATIONS[0], "CREATE TABLE broken ("];
        let e = migrate(&mut conn, &steps, "test db").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Storage, "{e}");
        assert!(e.message().contains("schema version 2"), "{e}");
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, 0);
        let tables: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'records'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0, "step 1 was rolled back");
        // Applying only the known steps then works, and later steps apply on top.
        migrate(&mut conn, &steps[..1], "test db").unwrap();
        migrate(
            &mut conn,
            &[MIGRATIONS[0], "CREATE TABLE extra (x)"],
            "test db",
        )
        .unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, 2);
    }

    #[tokio::test]
    async fn a_corrupt_body_is_a_storage_error_never_a_panic() {
        let store = SqliteStore::open_in_memory().unwrap();
        store
            .put(record("good", "s1"), PutMode::Create)
            .await
            .unwrap();
        let rev = store
            .put(record("bad", "s2"), PutMode::Create)
            .await
            .unwrap();
        for body in [
            "'{\"id\": \"bad\", '",
            "'[]'",
            "'{\"id\": \"other\"}'",
            "'{\"id\": \"bad\", \"services\": 5}'",
            "x'FF00'",
            "NULL",
        ] {
            let sql = format!("UPDATE records SET body = {body} WHERE id = 'bad'");
            if body == "NULL" {
                // The schema forbids it; a corrupt file might still have it.
                assert!(store.inner.lock().execute_batch(&sql).is_err());
                continue;
            }
            raw_exec(&store, &sql);
            let e = store.get("bad").await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Storage, "{body}: {e}");
            assert!(e.message().contains("\"bad\""), "{e}");
            assert!(e.message().contains("corrupt"), "{e}");
            assert_eq!(e.context("record"), Some("bad"));
            let e = store.list(&ListFilter::all()).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Storage, "{e}");
            let e = store
                .put(record("bad", "s3"), PutMode::Update(rev))
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Storage, "{e}");
            let e = store.changes_since(0).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Storage, "{e}");
        }
        // A full overwrite repairs it; a delete also works on a corrupt record.
        store
            .put(record("bad", "s4"), PutMode::Overwrite)
            .await
            .unwrap();
        let back = store.get("bad").await.unwrap().unwrap();
        assert_eq!(
            back.record.services[0].credentials[0].configuration["KEY"].expose(),
            "s4"
        );
        raw_exec(
            &store,
            "UPDATE records SET body = 'garbage' WHERE id = 'bad'",
        );
        store.delete("bad", None).await.unwrap();
        assert!(store.get("bad").await.unwrap().is_none());
        assert_eq!(
            store.list(&ListFilter::all()).await.unwrap().records.len(),
            1
        );
    }

    #[tokio::test]
    async fn corrupt_errors_do_not_quote_secret_values() {
        let store = SqliteStore::open_in_memory().unwrap();
        store.put(record("r", "x"), PutMode::Create).await.unwrap();
        raw_exec(
            &store,
            r#"UPDATE records SET body = '{"id":"r","services":[{"id":"s","credentials":[{"id":"c","configuration":{"KEY":"planted-secret"}, "scope": "planted-secret"}]}]}' WHERE id = 'r'"#,
        );
        let e = store.get("r").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Storage, "{e}");
        assert!(!format!("{e} {e:?}").contains("planted-secret"), "{e}");
        assert!(
            e.message().contains("services[0].credentials[0].scope"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn lock_contention_is_unavailable_and_retryable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let options = SqliteOptions {
            busy_timeout: Duration::from_millis(50),
            ..SqliteOptions::default()
        };
        let store = SqliteStore::open_with(&path, options).unwrap();
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let e = store
            .put(record("a", "s"), PutMode::Create)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert!(e.is_retryable());
        assert!(e.message().contains("locked"), "{e}");
        // Reads are not blocked by a writer in WAL mode.
        assert!(store.get("a").await.unwrap().is_none());
        other.execute_batch("ROLLBACK").unwrap();
        store.put(record("a", "s"), PutMode::Create).await.unwrap();
    }

    #[tokio::test]
    async fn the_change_log_keeps_one_entry_per_record() {
        let store = SqliteStore::open_in_memory().unwrap();
        store.put(record("a", "1"), PutMode::Create).await.unwrap();
        store.put(record("b", "1"), PutMode::Create).await.unwrap();
        store
            .put(record("a", "2"), PutMode::Overwrite)
            .await
            .unwrap();
        let deleted = store.delete("b", None).await.unwrap();
        let rows: Vec<(i64, String, i64)> = {
            let conn = store.inner.lock();
            let mut stmt = conn
                .prepare("SELECT revision, record_id, deleted FROM changes ORDER BY revision")
                .unwrap();
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        };
        assert_eq!(rows, vec![(3, "a".to_owned(), 0), (4, "b".to_owned(), 1)]);
        assert_eq!(deleted, 4);
        assert_eq!(store.list(&ListFilter::all()).await.unwrap().revision, 4);
    }
}
