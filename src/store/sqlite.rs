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
//! see every committed write.
//!
//! # Watching across processes
//!
//! [`RegistryStore::watch`] streams see every commit to the file, whoever made
//! it:
//!
//! * writes through this [`SqliteStore`] (or its clones) are published to its
//!   watchers as they commit, without waiting for a poll;
//! * commits by other connections (another `SqliteStore` on the same file, the
//!   `inferlink` CLI, another process) are noticed by a poller: while at least
//!   one watch stream is open, a background thread (`inferlink-poll`) asks
//!   SQLite for `PRAGMA data_version` every [`SqliteOptions::poll_interval`]
//!   (default 200 ms) on a connection of its own. That value changes whenever
//!   another connection commits. The poller then reads the head revision and,
//!   when it is ahead of what the watchers were told, makes each watcher read
//!   `changes WHERE revision > last` from the change log, in revision order.
//!
//! The poller runs in autocommit mode and never holds a read transaction
//! open, so in WAL mode every poll sees the latest commit and never blocks
//! writers or checkpoints. Events are delivered in strictly increasing
//! revision order, none twice; a record changed several times between two
//! polls is delivered once, at its latest version (the change log keeps only
//! the latest change per record). The poller thread stops when the last watch
//! stream is dropped (or the store with it), and starts again with the next
//! `watch`. An in-memory store has no other connections and no poller.
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
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, Row, TransactionBehavior};

use super::feed::{ChangeLog, Feed};
use super::{
    Change, ChangeEvent, ChangeStream, ListFilter, Listing, PutMode, RegistryStore, Revision,
    StoredRecord, check_delete, prepare_put,
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
    /// How often open watch streams check the file for commits made by other
    /// connections or processes (see the module documentation). Writes through
    /// this store reach its watchers at once regardless. Must be positive.
    /// Default: 200 milliseconds.
    pub poll_interval: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            busy_timeout: Duration::from_secs(5),
            synchronous_full: true,
            poll_interval: Duration::from_millis(200),
        }
    }
}

/// A [`RegistryStore`] in one SQLite file: durable, shareable between processes.
///
/// Cloning shares the same connection; the file is closed when the last
/// clone (including the one inside every open watch stream) is dropped.
/// While watch streams are open, a poller thread with a second connection
/// of its own follows other processes' commits (see the module
/// documentation); it stops, closing that connection, once the last watch
/// stream is dropped.
///
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
    feed: Arc<Feed>,
    path: Option<PathBuf>,
    /// The cross-process poller's switch (file-backed stores only).
    poller: Arc<PollControl>,
    options: SqliteOptions,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.poller.close();
    }
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
        if options.poll_interval.is_zero() {
            return Err(config_error(
                "the SQLite store's poll_interval must be positive (the default is 200 ms)",
            ));
        }
        prepare_file(path)?;
        check_not_truncated(path)?;
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
                feed: Arc::new(Feed::new()),
                path,
                poller: Arc::new(PollControl::default()),
                options: options.clone(),
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

/// The first 16 bytes of every SQLite database file.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Refuses a database file shorter than its own header says it is (cut off by
/// a failed copy, a full disk or a broken transfer) before SQLite reads or
/// writes it, so the damage is reported at open and the file stays as it is.
///
/// The check is skipped while a `-wal` or `-journal` side file exists: pages
/// may then legitimately live outside the main file (another connection is
/// using it, or a crashed one left a journal that SQLite will recover).
fn check_not_truncated(path: &Path) -> Result<()> {
    use std::io::Read;
    let shown = path.display();
    let read_error = |e| io_error(e, format!("cannot read the SQLite store at \"{shown}\""));
    let file = fs::File::open(path).map_err(read_error)?;
    let len = file.metadata().map_err(read_error)?.len();
    let mut header = Vec::with_capacity(100);
    file.take(100)
        .read_to_end(&mut header)
        .map_err(read_error)?;
    let truncated = |why: String| {
        Err(Error::new(
            ErrorKind::Storage,
            format!(
                "the SQLite store at \"{shown}\" is truncated: {why}; restore it from a backup (the file was not modified)"
            ),
        )
        .with_context("store", "sqlite"))
    };
    if header.is_empty() {
        // A new (or emptied) file: SQLite initialises it.
        return Ok(());
    }
    let magic = header.len().min(SQLITE_MAGIC.len());
    if header[..magic] != SQLITE_MAGIC[..magic] {
        // Not a SQLite file at all: SQLite itself reports that.
        return Ok(());
    }
    if header.len() < 100 {
        return truncated(format!(
            "it is {len} bytes long, shorter than the 100-byte SQLite header"
        ));
    }
    let side_file = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        Path::new(&name).exists()
    };
    if side_file("-wal") || side_file("-journal") {
        return Ok(());
    }
    let be32 = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        n if n >= 512 && n.is_power_of_two() => u64::from(n),
        // An invalid page size: SQLite reports the file as malformed.
        _ => return Ok(()),
    };
    // The page count at offset 28 is only valid when the change counter (24)
    // matches the "version valid for" number (92).
    let pages = u64::from(be32(28));
    if pages > 0 && be32(24) == be32(92) && len < pages * page_size {
        return truncated(format!(
            "it is {len} bytes long, but its header describes {pages} pages of {page_size} bytes ({} bytes)",
            pages * page_size
        ));
    }
    if len % page_size != 0 {
        return truncated(format!(
            "it is {len} bytes long, not a whole number of {page_size}-byte pages"
        ));
    }
    Ok(())
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
    let current = match read_raw(&tx, id)? {
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
    let (next, next_sql) = next_revision(&tx)?;
    tx.prepare_cached("DELETE FROM records WHERE id = ?1")
        .and_then(|mut stmt| stmt.execute([id]))
        .map_err(fail)?;
    log_change(&tx, id, next_sql, true).map_err(fail)?;
    tx.commit().map_err(fail)?;
    feed.publish(ChangeEvent {
        revision: next,
        id: id.to_owned(),
        change: Change::Delete,
    });
    Ok(next)
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

// --- Watching other connections -------------------------------------------------

/// Switches the cross-process poller thread on and off.
#[derive(Debug, Default)]
struct PollControl {
    state: Mutex<PollState>,
    wake: Condvar,
}

#[derive(Debug, Default)]
struct PollState {
    /// A poller thread is running (or starting).
    running: bool,
    /// The store is gone: no poller may start, a running one stops.
    closed: bool,
}

impl PollControl {
    fn lock(&self) -> MutexGuard<'_, PollState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the poller to check whether it should stop.
    fn nudge(&self) {
        let _state = self.lock();
        self.wake.notify_all();
    }

    fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_all();
    }
}

/// Wakes the poller when a watch stream is dropped, so it stops promptly once
/// the last one is gone.
struct PollerGuard(Arc<PollControl>);

impl Drop for PollerGuard {
    fn drop(&mut self) {
        self.0.nudge();
    }
}

/// A watch stream that keeps the poller informed of its end.
struct Watching {
    // Declared first so the feed subscription is dropped before the guard wakes the poller.
    stream: ChangeStream,
    _guard: PollerGuard,
}

impl futures_core::Stream for Watching {
    type Item = Result<ChangeEvent>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.stream.as_mut().poll_next(cx)
    }
}

impl SqliteStore {
    /// Starts the poller thread unless one is running. Call after subscribing.
    fn ensure_poller(&self, path: &Path) -> Result<()> {
        let inner = &self.inner;
        let mut state = inner.poller.lock();
        if state.running || state.closed {
            return Ok(());
        }
        let feed = Arc::clone(&inner.feed);
        let control = Arc::clone(&inner.poller);
        let path = path.to_owned();
        let options = inner.options.clone();
        std::thread::Builder::new()
            .name("inferlink-poll".into())
            .spawn(move || poll_loop(&feed, &control, &path, &options))
            .map_err(|e| {
                Error::new(
                    ErrorKind::Internal,
                    "cannot start the thread that watches the SQLite file for other processes' writes",
                )
                .with_source(e)
                .with_context("store", "sqlite")
            })?;
        state.running = true;
        Ok(())
    }
}

/// The poller thread: checks `PRAGMA data_version` every poll interval while
/// anyone watches, and announces the head revision when it moved.
fn poll_loop(feed: &Feed, control: &PollControl, path: &Path, options: &SqliteOptions) {
    let mut poller = Poller {
        path,
        options,
        conn: None,
        seen: None,
        failing: false,
    };
    let mut state = control.lock();
    loop {
        // Checked under the control lock: `watch` subscribes before it looks
        // at `running`, so either it sees this thread running or this thread
        // sees its subscription.
        if state.closed || feed.watchers() == 0 {
            state.running = false;
            return;
        }
        drop(state);
        poller.poll(feed);
        state = control.lock();
        if state.closed || feed.watchers() == 0 {
            continue;
        }
        state = control
            .wake
            .wait_timeout(state, options.poll_interval)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
}

/// The poller's own connection and what it saw last.
struct Poller<'a> {
    path: &'a Path,
    options: &'a SqliteOptions,
    conn: Option<Connection>,
    /// The `data_version` at the last successful poll.
    seen: Option<i64>,
    /// The last poll failed (logged once until it works again).
    failing: bool,
}

impl Poller<'_> {
    fn poll(&mut self, feed: &Feed) {
        match self.check(feed) {
            Ok(()) => self.failing = false,
            Err(e) => {
                if !self.failing {
                    tracing::warn!(error = %e, "cannot check the SQLite store for other processes' writes; retrying every poll interval");
                }
                self.failing = true;
                // Start over with a fresh connection.
                self.conn = None;
                self.seen = None;
            }
        }
    }

    fn check(&mut self, feed: &Feed) -> Result<()> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => {
                // No CREATE: if the file is gone, there is nothing to watch.
                let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                let conn = Connection::open_with_flags(self.path, flags)
                    .map_err(|e| open_error(e, self.path))?;
                conn.busy_timeout(self.options.busy_timeout)
                    .map_err(|e| open_error(e, self.path))?;
                self.conn.insert(conn)
            }
        };
        // Read the version before the head: a commit in between shows up in
        // the head now and changes the version again for the next poll.
        let version: i64 = conn
            .pragma_query_value(None, "data_version", |row| row.get(0))
            .map_err(|e| db_error(e, "cannot read the SQLite data version"))?;
        if self.seen == Some(version) {
            return Ok(());
        }
        feed.announce_head(read_head(conn)?);
        self.seen = Some(version);
        Ok(())
    }
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

    async fn delete(&self, id: &str, expected: Option<Revision>) -> Result<Revision> {
        let id = id.to_owned();
        self.run(move |conn, feed| delete_blocking(conn, feed, &id, expected))
            .await
    }

    async fn watch(&self, since: Revision) -> Result<ChangeStream> {
        // Subscribe first, then make sure the poller runs (see `poll_loop`).
        let stream = self.inner.feed.watch(Arc::new(self.clone()), since);
        let Some(path) = &self.inner.path else {
            return Ok(stream);
        };
        self.ensure_poller(path)?;
        Ok(Box::pin(Watching {
            stream,
            _guard: PollerGuard(Arc::clone(&self.inner.poller)),
        }))
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
        let before = fs::read(&path).unwrap();
        let e = SqliteStore::open(&path).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Storage, "{e}");
        assert!(e.message().contains("newer inferlink"), "{e}");
        assert!(e.message().contains("schema version 7"), "{e}");
        assert!(e.to_string().contains("r.db"), "{e}");
        assert!(fs::read(&path).unwrap() == before, "the file is untouched");
        let version: i64 = Connection::open(&path)
            .unwrap()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, 7, "the newer schema version is kept");
    }

    /// A copy of a store file with `count` records, closed (no side files left).
    fn closed_store_file(dir: &Path, count: usize) -> (PathBuf, Vec<u8>) {
        let path = dir.join("full.db");
        let store = SqliteStore::open(&path).unwrap();
        {
            let mut conn = store.inner.lock();
            let feed = Feed::new();
            let records = (0..count)
                .map(|i| {
                    let mut r = record(&format!("rec-{i:03}"), "s");
                    r.description = "padding ".repeat(40);
                    (r, PutMode::Create)
                })
                .collect();
            put_all_blocking(&mut conn, &feed, records).unwrap();
        }
        drop(store);
        let wal = dir.join("full.db-wal");
        assert!(!wal.exists(), "closing the last connection removes the WAL");
        let bytes = fs::read(&path).unwrap();
        (path, bytes)
    }

    #[test]
    fn a_truncated_file_is_a_storage_error_and_stays_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let (_, bytes) = closed_store_file(dir.path(), 60);
        let page = 4096;
        assert!(bytes.len() >= 4 * page, "several pages: {}", bytes.len());
        let cuts = [
            10,
            50,
            99,
            100,
            page,
            page + 1,
            bytes.len() / 2,
            bytes.len() - page,
            bytes.len() - 1,
        ];
        for cut in cuts {
            let path = dir.path().join(format!("cut-{cut}.db"));
            fs::write(&path, &bytes[..cut]).unwrap();
            let e = SqliteStore::open(&path).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Storage, "cut at {cut}: {e}");
            assert!(e.message().contains("truncated"), "cut at {cut}: {e}");
            assert!(e.message().contains(&format!("cut-{cut}.db")), "{e}");
            assert!(e.message().contains(&format!("{cut} bytes")), "{e}");
            assert_eq!(e.context("store"), Some("sqlite"));
            assert!(
                fs::read(&path).unwrap() == bytes[..cut],
                "cut at {cut}: the file is untouched"
            );
        }
        // The complete file still opens, with every record.
        let path = dir.path().join("whole.db");
        fs::write(&path, &bytes).unwrap();
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(
            store
                .inner
                .lock()
                .query_row("SELECT COUNT(*) FROM records", [], |r| r.get::<_, i64>(0))
                .unwrap(),
            60
        );
        // An empty file is a new store.
        let empty = dir.path().join("empty.db");
        fs::write(&empty, b"").unwrap();
        SqliteStore::open(&empty).unwrap();
    }

    #[test]
    fn a_zero_poll_interval_is_a_config_error() {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteOptions {
            poll_interval: Duration::ZERO,
            ..SqliteOptions::default()
        };
        let e = SqliteStore::open_with(dir.path().join("r.db"), options).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        assert!(e.message().contains("poll_interval"), "{e}");
        assert!(!dir.path().join("r.db").exists(), "nothing created");
    }

    /// Options with a poll interval.
    fn polling(interval: Duration) -> SqliteOptions {
        SqliteOptions {
            poll_interval: interval,
            ..SqliteOptions::default()
        }
    }

    /// The next event of `stream`, within 10 seconds.
    async fn next_event(stream: &mut ChangeStream) -> ChangeEvent {
        use futures_util::StreamExt;
        match tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
            Ok(Some(Ok(event))) => event,
            Ok(Some(Err(e))) => panic!("the watch failed: {e}"),
            Ok(None) => panic!("the watch ended"),
            Err(_) => panic!("no watch event within 10 s"),
        }
    }

    /// Waits (up to 10 s) until the poller's `running` flag is `want`.
    async fn poller_running(store: &Inner, want: bool) {
        for _ in 0..1000 {
            if store.poller.lock().running == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the poller did not become running={want} within 10 s");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_watch_sees_commits_of_another_instance() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let watcher = SqliteStore::open_with(&path, polling(Duration::from_millis(20))).unwrap();
        let writer = SqliteStore::open(&path).unwrap();
        let mut stream = watcher.watch(0).await.unwrap();
        let r1 = writer.put(record("a", "1"), PutMode::Create).await.unwrap();
        let r2 = writer.put(record("b", "1"), PutMode::Create).await.unwrap();
        let r3 = writer.delete("a", Some(r1)).await.unwrap();
        let mut seen = Vec::new();
        while seen.last().is_none_or(|(rev, _)| *rev < r3) {
            let event = next_event(&mut stream).await;
            seen.push((event.revision, event.id));
        }
        // "a" was deleted before the watcher may have read it: its latest change is the delete.
        assert_eq!(seen.last(), Some(&(r3, "a".to_owned())));
        assert!(seen.contains(&(r2, "b".to_owned())), "{seen:?}");
        assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "{seen:?}");
        // Its own writes still arrive, in order after the other instance's.
        let r4 = watcher
            .put(record("c", "1"), PutMode::Create)
            .await
            .unwrap();
        assert_eq!(next_event(&mut stream).await.revision, r4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_own_write_after_a_foreign_one_delivers_both_without_a_poll() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        // The poller checks once when it starts, then not for an hour.
        let watcher = SqliteStore::open_with(&path, polling(Duration::from_secs(3600))).unwrap();
        let writer = SqliteStore::open(&path).unwrap();
        let mut stream = watcher.watch(0).await.unwrap();
        let r0 = watcher
            .put(record("seed", "1"), PutMode::Create)
            .await
            .unwrap();
        assert_eq!(next_event(&mut stream).await.revision, r0);
        let foreign = writer
            .put(record("theirs", "1"), PutMode::Create)
            .await
            .unwrap();
        let own = watcher
            .put(record("ours", "1"), PutMode::Create)
            .await
            .unwrap();
        assert_eq!(foreign + 1, own);
        let first = next_event(&mut stream).await;
        assert_eq!((first.revision, first.id.as_str()), (foreign, "theirs"));
        let second = next_event(&mut stream).await;
        assert_eq!((second.revision, second.id.as_str()), (own, "ours"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_poller_runs_only_while_someone_watches() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let store = SqliteStore::open_with(&path, polling(Duration::from_secs(3600))).unwrap();
        assert!(!store.inner.poller.lock().running, "no watcher, no poller");
        let one = store.watch(0).await.unwrap();
        let two = store.watch(0).await.unwrap();
        poller_running(&store.inner, true).await;
        drop(one);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(store.inner.poller.lock().running, "one watcher is left");
        // Dropping the last one wakes the poller at once (the interval is an hour).
        drop(two);
        poller_running(&store.inner, false).await;
        // It starts again for a new watcher, and stops when the store goes away.
        let three = store.watch(0).await.unwrap();
        poller_running(&store.inner, true).await;
        let control = Arc::clone(&store.inner.poller);
        drop(store);
        assert!(control.lock().running, "the stream keeps the store open");
        drop(three);
        for _ in 0..1000 {
            if !control.lock().running {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let state = control.lock();
        assert!(!state.running, "the poller stops with the store");
        assert!(state.closed);
    }

    #[tokio::test]
    async fn an_in_memory_store_has_no_poller() {
        let store = SqliteStore::open_in_memory().unwrap();
        let mut stream = store.watch(0).await.unwrap();
        let rev = store.put(record("a", "1"), PutMode::Create).await.unwrap();
        assert_eq!(next_event(&mut stream).await.revision, rev);
        assert!(!store.inner.poller.lock().running);
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
