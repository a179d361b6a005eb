//! The embedded durable store: one SQLite file (WAL mode, bundled SQLite).
//!
//! # Layout
//!
//! * `records(id, revision, body)`: the current version of every record; the
//!   body is the record as compact JSON, every credential value *sealed*
//!   (encrypted, see [`crate::crypto`]).
//! * `data_keys(id, kek_id, wrapped, created, active)`: the store's data key
//!   (DEK), wrapped by the key-encryption key of the configured
//!   [`KeyProvider`]; during a data key rotation, briefly, more than one.
//! * `store_meta(key, value)`: flags; `plaintext_bodies` marks a file
//!   migrated from schema 1 whose credential values are still in clear text.
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
//! Credential values are encrypted at rest: each is sealed with
//! XChaCha20-Poly1305 under the store's data key, which is kept only wrapped
//! by the key-encryption key of [`SqliteOptions::key_provider`]. The data key
//! is made on the first write of a credential value, unwrapped on the first
//! read or write that needs it, and then cached. Without a key provider the
//! store keeps records without credential values and refuses (with an
//! [`ErrorKind::Config`] error saying how to make a key) to write any with
//! them. SQLite's `secure_delete` is on, so replaced bodies are zeroed rather
//! than left in free pages.
//!
//! A file written by schema 1 (clear-text values) is migrated: with a key
//! provider, its values are sealed by the first operation on the store (and
//! the WAL checkpointed); without one, opening it fails if any record holds
//! credential values. See `docs/keys.md`.
//!
//! On Unix the file is created with mode `0600` (its directory, when created
//! here, with `0700`); SQLite gives its `-wal` and `-shm` side files the same
//! mode. Secret values never appear in errors or logs.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, Row, TransactionBehavior};

use super::feed::{ChangeLog, Feed};
use super::{
    Change, ChangeEvent, ChangeStream, ListFilter, Listing, PutMode, RegistryStore, Revision,
    StoredRecord, Validated, WriteOp, check_delete, prepare_checked_put,
};
use crate::crypto::{
    self, DataKey, DataKeyInfo, DataKeyRotation, KeyProvider, Keyring, MasterKey,
    StaticKeyProvider, TagCheck, WrappedKey,
};
use crate::error::{Error, ErrorKind, Result};
use crate::format::{Format, ParseLimits, parse_documents_as};
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
    // 2: wrapped data keys for encryption at rest; schema-1 bodies are marked
    // as holding clear-text values until they are sealed.
    "CREATE TABLE data_keys (
         id TEXT PRIMARY KEY,
         kek_id TEXT NOT NULL,
         wrapped BLOB NOT NULL,
         created INTEGER NOT NULL,
         active INTEGER NOT NULL DEFAULT 0
     );
     CREATE UNIQUE INDEX data_keys_one_active ON data_keys (active) WHERE active = 1;
     CREATE TABLE store_meta (
         key TEXT PRIMARY KEY,
         value TEXT NOT NULL
     );
     INSERT INTO store_meta (key, value)
         SELECT 'plaintext_bodies', 'schema 1' WHERE EXISTS (SELECT 1 FROM records);",
    // 3: an integrity tag per record (see `crypto::TagCheck`); rows written
    // before it have none until the first keyed operation migrates the store.
    "ALTER TABLE records ADD COLUMN mac TEXT;",
];

/// The `store_meta` key marking clear-text bodies left by schema 1.
const PLAINTEXT_FLAG: &str = "plaintext_bodies";

/// Settings of a [`SqliteStore`]; [`SqliteOptions::default`] suits most uses.
#[derive(Debug, Clone)]
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
    /// The key-encryption key that protects credential values at rest. `None`
    /// (the default): records without credential values only. The CLI passes
    /// [`crypto::default_key_provider`].
    pub key_provider: Option<Arc<dyn KeyProvider>>,
}

impl SqliteOptions {
    /// These options with `provider` as the key provider.
    pub fn with_key_provider(mut self, provider: Arc<dyn KeyProvider>) -> Self {
        self.key_provider = Some(provider);
        self
    }
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            busy_timeout: Duration::from_secs(5),
            synchronous_full: true,
            key_provider: None,
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
    /// The KEK source; `None`: no credential values can be written or read.
    provider: Option<Arc<dyn KeyProvider>>,
    /// The unwrapped data keys, loaded on first need.
    keyring: tokio::sync::Mutex<Option<Arc<Keyring>>>,
    /// Schema-1 clear-text bodies remain to be sealed (done by the first operation).
    plaintext_pending: AtomicBool,
    /// `prepare` found (or made) an active data key that authenticates records.
    prepared: AtomicBool,
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
            .field("key_provider", &self.inner.provider)
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
    ///
    /// Credential values are sealed as in a file, under a random key made for
    /// this store and never written anywhere.
    pub fn open_in_memory() -> Result<SqliteStore> {
        let conn = Connection::open_in_memory()
            .map_err(|e| db_error(e, "cannot open an in-memory SQLite database"))?;
        let ephemeral = StaticKeyProvider::new(MasterKey::generate()?)
            .with_source("an ephemeral key of an in-memory store");
        let options = SqliteOptions::default().with_key_provider(Arc::new(ephemeral));
        SqliteStore::init(conn, None, &options)
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
        // Replaced bodies and data keys are overwritten with zeros, not left in free pages.
        conn.pragma_update(None, "secure_delete", "ON")
            .map_err(setup)?;
        migrate(&mut conn, MIGRATIONS, &label)?;
        let plaintext_pending =
            check_plaintext_bodies(&conn, options.key_provider.is_some(), &label)?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                feed: Arc::new(Feed::new()),
                path,
                provider: options.key_provider.clone(),
                keyring: tokio::sync::Mutex::new(None),
                plaintext_pending: AtomicBool::new(plaintext_pending),
                prepared: AtomicBool::new(false),
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

// --- Keys ---------------------------------------------------------------------------

impl SqliteStore {
    /// The store's data keys, unwrapped: from the cache when it holds every id
    /// in `need`, else loaded (and, with `create`, a first data key made when
    /// the store has none). `None` without a key provider.
    async fn keyring(&self, need: &BTreeSet<String>, create: bool) -> Result<Option<Arc<Keyring>>> {
        let Some(provider) = self.inner.provider.clone() else {
            return Ok(None);
        };
        let mut cache = self.inner.keyring.lock().await;
        if let Some(keys) = cache.as_ref()
            && need.iter().all(|id| keys.contains(id))
        {
            return Ok(Some(Arc::clone(keys)));
        }
        let mut rows = self.run(|conn, _| read_data_keys(conn)).await?;
        if create && !rows.iter().any(|row| row.active) {
            let key = DataKey::generate()?;
            let wrapped = key.wrap_with(&*provider).await.map_err(key_error)?;
            let id = key.id().to_owned();
            rows = self
                .run(move |conn, _| insert_first_data_key(conn, &id, &wrapped))
                .await?;
        }
        let rows = rows
            .into_iter()
            .map(|row| (row.id, row.wrapped, row.active))
            .collect();
        let Some(keyring) = crypto::unwrap_keyring(rows, &*provider, need, "sqlite").await? else {
            return Ok(None);
        };
        let keyring = Arc::new(keyring);
        *cache = Some(Arc::clone(&keyring));
        Ok(Some(keyring))
    }

    /// The keyring for writing `records`: with a key provider always (every
    /// record gets an integrity tag); without one `None`, and an error when
    /// a record has credential values.
    async fn keyring_for_writing<'a>(
        &self,
        mut records: impl Iterator<Item = &'a ExtensionRecord>,
    ) -> Result<Option<Arc<Keyring>>> {
        let first = records.find(|r| crypto::record_has_secrets(r));
        if self.inner.provider.is_some() && first.is_none() {
            return self.keyring(&BTreeSet::new(), true).await;
        }
        let Some(first) = first else {
            return Ok(None);
        };
        match self.keyring(&BTreeSet::new(), true).await {
            Ok(Some(keys)) => Ok(Some(keys)),
            Ok(None) => Err(crypto::no_key_error(&first.id).with_context("store", "sqlite")),
            Err(e) => Err(about_record(e, &first.id, "encrypt")),
        }
    }

    /// Checks records just read and opens their sealed credential values
    /// (all or nothing per record): the integrity tag of each (with a key
    /// provider), then the values, then the record rules of a write
    /// ([`super::check_stored`]). A record that fails is an error naming it.
    async fn open_records(&self, records: Vec<(&mut StoredRecord, TagCheck)>) -> Result<()> {
        let mut need = BTreeSet::new();
        let mut first = None;
        for (stored, check) in &records {
            let record = &stored.record;
            crypto::check_sealed(record).map_err(|e| e.with_context("store", "sqlite"))?;
            let ids = crypto::sealed_key_ids(record);
            if first.is_none() && !ids.is_empty() {
                first = Some(record.id.clone());
            }
            need.extend(ids);
            need.extend(check.key_id().map(str::to_owned));
        }
        // With a key provider every record must carry a valid tag (`prepare`
        // made sure the store has an integrity key); without one, tags cannot
        // be checked, and such a reader can open no credential value either.
        let verify = self.inner.provider.is_some();
        let keys = if records.is_empty() || (!verify && first.is_none()) {
            None
        } else {
            self.keyring(&need, false).await.map_err(|e| match &first {
                Some(first) => about_record(e, first, "decrypt"),
                None => e,
            })?
        };
        for (stored, check) in records {
            if verify {
                let id = &stored.record.id;
                let keys = keys.as_deref().ok_or_else(|| {
                    crypto::tampered_error(
                        id,
                        "the store holds no data key to check it with",
                        "sqlite",
                    )
                })?;
                keys.verify_record_tag(id, stored.revision, &check, "sqlite")?;
            }
            crypto::open_record(&mut stored.record, keys.as_deref())
                .map_err(|e| e.with_context("store", "sqlite"))?;
            super::check_stored(&stored.record, "sqlite")?;
        }
        Ok(())
    }

    /// Before the first operation with a key provider: migrates the store
    /// unless its active data key authenticates records (a store written
    /// before integrity tags, or with schema-1 clear-text bodies, or with no
    /// data key yet). The migration makes a new data key and, in one
    /// transaction, seals every value under it, tags every record and
    /// deletes the old key (see [`reseal_blocking`]). Once per store handle.
    async fn prepare(&self) -> Result<()> {
        if self.inner.provider.is_none() || self.inner.prepared.load(Ordering::Acquire) {
            return Ok(());
        }
        let provider = self.required_provider()?;
        let mut last = None;
        // Twice: another process may migrate at the same moment (a conflict), then its key is read.
        for _ in 0..2 {
            *self.inner.keyring.lock().await = None;
            let old = match self.keyring(&BTreeSet::new(), false).await {
                Ok(old) => old,
                // The wrong key (or none that unwraps): the operation itself
                // fails with the same error, naming the record it needed
                // the key for; reads check tags regardless of this step.
                Err(e) if e.kind() == ErrorKind::Config => return Ok(()),
                Err(e) => return Err(e),
            };
            let plaintext = self.inner.plaintext_pending.load(Ordering::Acquire);
            if !plaintext && old.as_ref().is_some_and(|keys| keys.authenticates()) {
                self.inner.prepared.store(true, Ordering::Release);
                return Ok(());
            }
            // No key and no record yet: nothing to migrate; the first write
            // makes an integrity key. Checked again by the next operation.
            if old.is_none() && !plaintext && !self.run(|conn, _| has_records(conn)).await? {
                return Ok(());
            }
            let new_key = DataKey::generate()?;
            let wrapped = new_key.wrap_with(&*provider).await.map_err(key_error)?;
            let new_keys = Arc::new(Keyring::new(new_key));
            let for_task = Arc::clone(&new_keys);
            let mode = Reseal::Migrate { plaintext };
            match self
                .run(move |conn, _| {
                    reseal_blocking(conn, old.as_deref(), &for_task, &wrapped, mode)
                })
                .await
            {
                Ok(done) => {
                    tracing::info!(
                        records = done.records,
                        data_key = %done.new_key,
                        "migrated the SQLite store: every record now carries an integrity tag"
                    );
                    *self.inner.keyring.lock().await = Some(new_keys);
                    self.inner.plaintext_pending.store(false, Ordering::Release);
                    self.inner.prepared.store(true, Ordering::Release);
                    return Ok(());
                }
                Err(e) if e.kind() == ErrorKind::Conflict => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::new(ErrorKind::Internal, "migration did not complete")))
    }

    /// Applies `ops` in one transaction (see [`RegistryStore::write_all`]).
    async fn write_checked(
        &self,
        ops: Vec<WriteOp>,
        validated: Option<Validated>,
    ) -> Result<Vec<Revision>> {
        self.prepare().await?;
        let mut ops = ops;
        let mut keys = self.keyring_for_writing(put_records(&ops)).await?;
        // Once more after reloading the keys, if another process replaced the data key.
        for _ in 0..2 {
            let task_keys = keys.clone();
            let written = self
                .run(move |conn, feed| {
                    write_all_blocking(conn, feed, ops, task_keys.as_deref(), validated)
                })
                .await?;
            match written {
                Written::Done(revisions) => return Ok(revisions),
                Written::StaleKeys(back) => {
                    ops = back;
                    *self.inner.keyring.lock().await = None;
                    keys = self.keyring_for_writing(put_records(&ops)).await?;
                }
            }
        }
        Err(Error::new(
            ErrorKind::Unavailable,
            "the store's data key keeps changing (a key rotation is running); try again",
        )
        .with_retryable(true)
        .with_context("store", "sqlite"))
    }

    /// The store's data keys (ids, wrapping key ids, creation times; never key bytes).
    pub async fn data_keys(&self) -> Result<Vec<DataKeyInfo>> {
        self.prepare().await?;
        let rows = self.run(|conn, _| read_data_keys(conn)).await?;
        Ok(rows
            .into_iter()
            .map(|row| DataKeyInfo {
                id: row.id,
                kek_id: row.wrapped.kek_id,
                created: row.created,
                active: row.active,
            })
            .collect())
    }

    /// The store's key provider, or a [`ErrorKind::Config`] error saying how to configure one.
    fn required_provider(&self) -> Result<Arc<dyn KeyProvider>> {
        self.inner.provider.clone().ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                format!(
                    "no encryption key is configured for this store; {}",
                    crypto::NO_KEY_HELP
                ),
            )
            .with_context("store", "sqlite")
        })
    }

    /// Re-wraps every data key not wrapped by `to`'s current KEK: unwrapped
    /// with this store's key provider, wrapped with `to`, written in one
    /// transaction. Returns how many were re-wrapped.
    ///
    /// This is the store's half of a KEK rotation (`inferlink keys rotate`):
    /// values are not touched, and processes that hold the data key keep
    /// working. A concurrent change of the data keys makes it fail with
    /// [`ErrorKind::Conflict`] and change nothing; run it again.
    pub async fn rewrap_data_keys(&self, to: &dyn KeyProvider) -> Result<usize> {
        self.prepare().await?;
        let provider = self.required_provider()?;
        let target = to.key_id().await?;
        let rows = self.run(|conn, _| read_data_keys(conn)).await?;
        let mut updates = Vec::new();
        for row in rows.into_iter().filter(|row| row.wrapped.kek_id != target) {
            let key = DataKey::unwrap_with(&row.id, &row.wrapped, &*provider)
                .await
                .map_err(key_error)?;
            let rewrapped = key.wrap_with(to).await.map_err(key_error)?;
            updates.push((row, rewrapped));
        }
        let count = updates.len();
        if count > 0 {
            self.run(move |conn, _| rewrap_blocking(conn, updates))
                .await?;
        }
        Ok(count)
    }

    /// Replaces the store's data key: makes a new one and re-encrypts every
    /// credential value under it, in one transaction, then removes the old
    /// key(s). Revisions do not change (the records' contents do not).
    ///
    /// Other processes that cached the old data key notice on their next
    /// write (which then loads the new one) or read.
    pub async fn rotate_data_key(&self) -> Result<DataKeyRotation> {
        self.prepare().await?;
        let provider = self.required_provider()?;
        let mut cache = self.inner.keyring.lock().await;
        *cache = None;
        drop(cache);
        let old = self.keyring(&BTreeSet::new(), false).await?;
        let new_key = DataKey::generate()?;
        let wrapped = new_key.wrap_with(&*provider).await.map_err(key_error)?;
        let new_keys = Arc::new(Keyring::new(new_key));
        let for_task = Arc::clone(&new_keys);
        let rotation = self
            .run(move |conn, _| {
                reseal_blocking(conn, old.as_deref(), &for_task, &wrapped, Reseal::Rotate)
            })
            .await?;
        *self.inner.keyring.lock().await = Some(new_keys);
        Ok(rotation)
    }
}

fn key_error(e: Error) -> Error {
    e.with_context("store", "sqlite")
}

/// Restates a key error as one about reading or writing `record`.
fn about_record(e: Error, record: &str, verb: &str) -> Error {
    if e.context("record").is_some() {
        return e;
    }
    Error::new(
        e.kind(),
        format!(
            "cannot {verb} the credential values of record \"{record}\": {}",
            e.message()
        ),
    )
    .with_context("store", "sqlite")
    .with_context("record", record)
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
            Err(_) => crypto::create_private_dir(parent).map_err(|e| {
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

// --- Data keys (blocking) ---------------------------------------------------------

/// A `data_keys` row.
struct DataKeyRow {
    id: String,
    wrapped: WrappedKey,
    created: i64,
    active: bool,
}

fn read_data_keys(conn: &Connection) -> Result<Vec<DataKeyRow>> {
    conn.prepare_cached(
        "SELECT id, kek_id, wrapped, created, active FROM data_keys ORDER BY created, id",
    )
    .and_then(|mut stmt| {
        stmt.query_map([], |row| {
            Ok(DataKeyRow {
                id: row.get(0)?,
                wrapped: WrappedKey {
                    kek_id: row.get(1)?,
                    bytes: row.get(2)?,
                },
                created: row.get(3)?,
                active: row.get::<_, i64>(4)? != 0,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()
    })
    .map_err(|e| db_error(e, "cannot read the store's data keys"))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Stores the first data key, unless another connection stored one first; returns the rows.
fn insert_first_data_key(
    conn: &mut Connection,
    id: &str,
    wrapped: &WrappedKey,
) -> Result<Vec<DataKeyRow>> {
    let fail = |e| db_error(e, "cannot store the store's data key");
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(fail)?;
    let has_active: bool = tx
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM data_keys WHERE active = 1)",
            [],
            |row| row.get(0),
        )
        .map_err(fail)?;
    if !has_active {
        tx.execute(
            "INSERT INTO data_keys (id, kek_id, wrapped, created, active) VALUES (?1, ?2, ?3, ?4, 1)",
            rusqlite::params![id, wrapped.kek_id, wrapped.bytes, unix_now()],
        )
        .map_err(fail)?;
    }
    tx.commit().map_err(fail)?;
    read_data_keys(conn)
}

fn rewrap_blocking(conn: &mut Connection, updates: Vec<(DataKeyRow, WrappedKey)>) -> Result<()> {
    let fail = |e| db_error(e, "cannot re-wrap the store's data keys");
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(fail)?;
    for (row, wrapped) in &updates {
        let changed = tx
            .execute(
                "UPDATE data_keys SET kek_id = ?1, wrapped = ?2
                 WHERE id = ?3 AND kek_id = ?4 AND wrapped = ?5",
                rusqlite::params![
                    wrapped.kek_id,
                    wrapped.bytes,
                    row.id,
                    row.wrapped.kek_id,
                    row.wrapped.bytes
                ],
            )
            .map_err(fail)?;
        if changed != 1 {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "data key \"{}\" was changed by another process while it was re-wrapped; nothing was changed, run the command again",
                    row.id
                ),
            )
            .with_context("store", "sqlite"));
        }
    }
    tx.commit().map_err(fail)
}

/// Reads every record (sealed) inside `tx`; undecodable ones are returned as errors in place.
fn read_all_raw(tx: &Connection) -> Result<Vec<RawRecord>> {
    tx.prepare_cached("SELECT id, revision, body, mac FROM records ORDER BY id")
        .and_then(|mut stmt| {
            stmt.query_map([], |row| RawRecord::from_row(row, 0))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(|e| db_error(e, "cannot read records"))
}

/// Moves the WAL's content into the database file and empties the WAL (best effort).
fn checkpoint(conn: &Connection) {
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::debug!("WAL checkpoint after re-encryption did not complete: {e}");
    }
}

fn has_records(conn: &mut Connection) -> Result<bool> {
    conn.query_row("SELECT EXISTS (SELECT 1 FROM records)", [], |row| {
        row.get(0)
    })
    .map_err(|e| db_error(e, "cannot read records"))
}

/// Why [`reseal_blocking`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reseal {
    /// `keys rotate --data-key`: every record's tag must verify under the old keys first.
    Rotate,
    /// The first keyed operation on a store without an integrity key: rows
    /// have no tags yet (trust on first use); `plaintext`: schema-1
    /// clear-text values are sealed too.
    Migrate {
        /// Schema-1 clear-text bodies remain.
        plaintext: bool,
    },
}

/// Makes `new` the store's only data key, in one transaction: every record's
/// credential values are opened with `old` and sealed under `new`, and every
/// record is tagged under `new`; revisions do not change.
///
/// [`Reseal::Rotate`] first checks each record's tag under `old` (a
/// tampered record stops the rotation, naming it, so a rotation never
/// launders it). [`Reseal::Migrate`] skips, with a warning, records it cannot
/// read (they stay untagged, so reads keep refusing them until they are
/// overwritten or deleted).
fn reseal_blocking(
    conn: &mut Connection,
    old: Option<&Keyring>,
    new: &Keyring,
    wrapped: &WrappedKey,
    mode: Reseal,
) -> Result<DataKeyRotation> {
    let fail = |e| db_error(e, "cannot replace the store's data key");
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(fail)?;
    let retired: Vec<String> = tx
        .prepare("SELECT id FROM data_keys ORDER BY id")
        .and_then(|mut stmt| {
            stmt.query_map([], |row| row.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()
        })
        .map_err(fail)?;
    let known: Vec<String> = old.map(Keyring::key_ids).unwrap_or_default();
    if retired != known {
        return Err(Error::new(
            ErrorKind::Conflict,
            "the store's data keys were changed by another process during the rotation; nothing was changed, run the command again",
        )
        .with_context("store", "sqlite"));
    }
    tx.execute(
        "INSERT INTO data_keys (id, kek_id, wrapped, created, active) VALUES (?1, ?2, ?3, ?4, 0)",
        rusqlite::params![new.active_id(), wrapped.kek_id, wrapped.bytes, unix_now()],
    )
    .map_err(fail)?;
    let mut records = 0;
    for raw in read_all_raw(&tx)? {
        let id = raw.id.clone();
        let resealed = reseal_one(raw, old, new, mode);
        let (revision, body, secrets) = match (resealed, mode) {
            (Ok(done), _) => done,
            (Err(e), Reseal::Migrate { .. }) => {
                tracing::warn!(record = %id, "not tagging an unreadable record during the migration: {e}");
                continue;
            }
            (Err(e), Reseal::Rotate) => return Err(e),
        };
        let tag = new.record_tag(&id, revision, &crypto::BodyDigest::of(&body));
        tx.prepare_cached("UPDATE records SET body = ?1, mac = ?2 WHERE id = ?3")
            .and_then(|mut stmt| stmt.execute([&body, &tag, &id]))
            .map_err(|e| db_error(e, format!("cannot write record \"{id}\"")))?;
        records += usize::from(secrets);
    }
    tx.execute("DELETE FROM data_keys WHERE id <> ?1", [new.active_id()])
        .map_err(fail)?;
    tx.execute(
        "UPDATE data_keys SET active = 1 WHERE id = ?1",
        [new.active_id()],
    )
    .map_err(fail)?;
    tx.execute("DELETE FROM store_meta WHERE key = ?1", [PLAINTEXT_FLAG])
        .map_err(fail)?;
    tx.commit().map_err(fail)?;
    checkpoint(conn);
    Ok(DataKeyRotation {
        new_key: new.active_id().to_owned(),
        retired,
        records,
    })
}

/// One record of [`reseal_blocking`]: its revision, new body, and whether it has credential values.
fn reseal_one(
    raw: RawRecord,
    old: Option<&Keyring>,
    new: &Keyring,
    mode: Reseal,
) -> Result<(Revision, String, bool)> {
    let (mut stored, check) = raw.decode_checked()?;
    let record = &mut stored.record;
    let secrets = crypto::record_has_secrets(record);
    if mode == Reseal::Rotate {
        let old = old.ok_or_else(|| {
            crypto::tampered_error(
                &record.id,
                "the store holds no data key to check it with",
                "sqlite",
            )
        })?;
        old.verify_record_tag(&record.id, stored.revision, &check, "sqlite")?;
    }
    let clear_text = record
        .services
        .iter()
        .flat_map(|s| &s.credentials)
        .flat_map(|c| c.configuration.values())
        .any(|v| !crypto::is_sealed(v.expose()));
    // Schema-1 bodies hold clear-text values: they are sealed as they are.
    if !(clear_text && mode == (Reseal::Migrate { plaintext: true })) && secrets {
        crypto::check_sealed(record)?;
        crypto::open_record(record, old)?;
    }
    let body = crypto::seal_record_body(record, Some(new))?;
    Ok((stored.revision, body, secrets))
}

/// At open: whether clear-text bodies from schema 1 remain to be sealed.
///
/// Clears the flag when no record has credential values; without a key
/// provider, refuses a file whose records have some.
fn check_plaintext_bodies(conn: &Connection, has_key: bool, label: &str) -> Result<bool> {
    let fail = |e| db_error(e, format!("cannot open {label}"));
    let flagged: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM store_meta WHERE key = ?1)",
            [PLAINTEXT_FLAG],
            |row| row.get(0),
        )
        .map_err(fail)?;
    if !flagged {
        return Ok(false);
    }
    let mut secrets = false;
    for raw in read_all_raw(conn)? {
        secrets |= match raw.decode() {
            Ok(stored) => crypto::record_has_secrets(&stored.record),
            // Cannot tell: assume it holds some.
            Err(_) => true,
        };
    }
    if !secrets {
        conn.execute("DELETE FROM store_meta WHERE key = ?1", [PLAINTEXT_FLAG])
            .map_err(fail)?;
        return Ok(false);
    }
    if !has_key {
        return Err(Error::new(
            ErrorKind::Config,
            format!(
                "{label} was written by an older inferlink and holds credential values in clear text; configure an encryption key and open it again, and they will be encrypted: {}",
                crypto::NO_KEY_HELP
            ),
        )
        .with_context("store", "sqlite"));
    }
    Ok(true)
}

// --- Rows ---------------------------------------------------------------------

/// A `records` row as read, before decoding (decoding happens outside rusqlite's callbacks).
struct RawRecord {
    id: String,
    revision: Option<i64>,
    body: Option<String>,
    mac: Option<String>,
}

impl RawRecord {
    /// Reads `id`, `revision`, `body`, `mac` from columns `at` to `at + 3`.
    fn from_row(row: &Row<'_>, at: usize) -> rusqlite::Result<RawRecord> {
        let id = String::from_utf8_lossy(row.get_ref(at)?.as_bytes().unwrap_or_default()).into();
        let revision = row.get_ref(at + 1)?.as_i64().ok();
        let body = text(row.get_ref(at + 2)?);
        let mac = text(row.get_ref(at + 3)?);
        Ok(RawRecord {
            id,
            revision,
            body,
            mac,
        })
    }

    fn decode(self) -> Result<StoredRecord> {
        self.decode_checked().map(|(stored, _)| stored)
    }

    /// Decodes the row, with what checking its integrity tag needs.
    fn decode_checked(self) -> Result<(StoredRecord, TagCheck)> {
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
        let check = TagCheck::new(&body, self.mac);
        Ok((StoredRecord { record, revision }, check))
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
    conn.prepare_cached("SELECT id, revision, body, mac FROM records WHERE id = ?1")
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
///
/// `keys` seals the record's credential values (and opens the stored
/// version's, which `<hidden>` values keep); without it the record must have none.
fn write_record(
    tx: &Connection,
    mut record: ExtensionRecord,
    mode: PutMode,
    keys: Option<&Keyring>,
    validated: Option<Validated>,
) -> Result<StoredRecord> {
    let id = record.id.clone();
    let fail = |e| db_error(e, format!("cannot write record \"{id}\""));
    // The stored version's values are needed only to keep `<hidden>` ones: a
    // complete record leaves them sealed (no decryption per write).
    let keeps_values = record.has_hidden_placeholders();
    let current = match read_raw(tx, &id)? {
        None => None,
        Some(raw) => match raw.decode().and_then(|mut stored| {
            // Without keys the new record has no credential values, so
            // nothing is taken from the stored one's (still sealed) values.
            if keys.is_some() {
                crypto::check_sealed(&stored.record)?;
                if keeps_values {
                    crypto::open_record(&mut stored.record, keys)?;
                }
            }
            Ok(stored)
        }) {
            Ok(stored) => Some(stored),
            // A complete replacement needs nothing from the stored version:
            // let it repair a corrupt record.
            Err(e) if mode == PutMode::Overwrite && !keeps_values => {
                tracing::warn!(record = %id, "replacing a corrupt stored record: {e}");
                None
            }
            Err(e) => return Err(e),
        },
    };
    prepare_checked_put(&mut record, mode, current.as_ref(), validated)?;
    let body = crypto::seal_record_body(&record, keys)?;
    let (next, next_sql) = next_revision(tx)?;
    let tag = keys.map(|keys| keys.record_tag(&id, next, &crypto::BodyDigest::of(&body)));
    tx.prepare_cached(
        "INSERT INTO records (id, revision, body, mac) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (id) DO UPDATE SET revision = excluded.revision, body = excluded.body, mac = excluded.mac",
    )
    .and_then(|mut stmt| stmt.execute(rusqlite::params![id, next_sql, body, tag]))
    .map_err(fail)?;
    log_change(tx, &id, next_sql, false).map_err(fail)?;
    Ok(StoredRecord {
        record,
        revision: next,
    })
}

/// The records a batch of writes puts.
fn put_records(ops: &[WriteOp]) -> impl Iterator<Item = &ExtensionRecord> {
    ops.iter().filter_map(|op| match op {
        WriteOp::Put(record, _) => Some(record),
        WriteOp::Delete { .. } => None,
    })
}

/// What a write transaction did.
enum Written {
    /// Committed, with these revisions.
    Done(Vec<Revision>),
    /// Nothing written: the store's active data key is not the cached one
    /// (another process replaced it); reload the keys and try again with these writes.
    StaleKeys(Vec<WriteOp>),
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

/// Refuses a write without a key to a store that has a data key: its records
/// carry integrity tags, and a record written without one would be refused
/// by every keyed reader.
fn refuse_keyless_write(tx: &Connection) -> Result<()> {
    let keyed: bool = tx
        .query_row("SELECT EXISTS (SELECT 1 FROM data_keys)", [], |row| {
            row.get(0)
        })
        .map_err(|e| db_error(e, "cannot write records"))?;
    if keyed {
        return Err(config_error(format!(
            "this store is protected by an encryption key (its records carry integrity tags), and no key is configured, so nothing can be written to it; configure the key it was set up with (INFERLINK_MASTER_KEY, or the key file), or {}",
            crypto::NO_KEY_HELP
        )));
    }
    Ok(())
}

/// Applies puts and deletes in one transaction: all of them, or none.
fn write_all_blocking(
    conn: &mut Connection,
    feed: &Feed,
    ops: Vec<WriteOp>,
    keys: Option<&Keyring>,
    validated: Option<Validated>,
) -> Result<Written> {
    let fail = |e| db_error(e, "cannot write records");
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(fail)?;
    if let Some(keys) = keys {
        let active: Option<String> = tx
            .query_row("SELECT id FROM data_keys WHERE active = 1", [], |row| {
                row.get(0)
            })
            .optional()
            .map_err(fail)?;
        if active.as_deref() != Some(keys.active_id()) {
            return Ok(Written::StaleKeys(ops));
        }
    } else {
        refuse_keyless_write(&tx)?;
    }
    let mut events = Vec::with_capacity(ops.len());
    for op in ops {
        let id = op.id().to_owned();
        let in_record = |e: Error| e.with_context("record", id.clone());
        let event = match op {
            WriteOp::Put(record, mode) => {
                let stored = write_record(&tx, record, mode, keys, validated).map_err(in_record)?;
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
    Ok(Written::Done(
        events
            .into_iter()
            .map(|event| {
                let revision = event.revision;
                feed.publish(event);
                revision
            })
            .collect(),
    ))
}

fn list_blocking(conn: &mut Connection, filter: &ListFilter) -> Result<(Listing, Vec<TagCheck>)> {
    let fail = |e| db_error(e, "cannot list records");
    // One read transaction: the rows and the head revision are one snapshot.
    let tx = conn.transaction().map_err(fail)?;
    let raws = tx
        .prepare_cached("SELECT id, revision, body, mac FROM records ORDER BY id")
        .and_then(|mut stmt| {
            stmt.query_map([], |row| RawRecord::from_row(row, 0))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(fail)?;
    let revision = read_head(&tx)?;
    tx.commit().map_err(fail)?;
    let mut records = Vec::new();
    let mut checks = Vec::new();
    for raw in raws {
        let (stored, check) = raw.decode_checked()?;
        if filter.matches(&stored.record) {
            records.push(stored);
            checks.push(check);
        }
    }
    Ok((Listing { records, revision }, checks))
}

fn changes_blocking(
    conn: &mut Connection,
    since: Revision,
) -> Result<Vec<(ChangeEvent, Option<TagCheck>)>> {
    let fail = |e| db_error(e, "cannot read the change log");
    struct RawChange {
        revision: Option<i64>,
        id: String,
        deleted: bool,
        record: Option<RawRecord>,
    }
    let raws = conn
        .prepare_cached(
            "SELECT c.revision, c.record_id, c.deleted, r.id, r.revision, r.body, r.mac
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
        let (change, check) = if raw.deleted {
            (Change::Delete, None)
        } else {
            let (stored, check) = raw
                .record
                .ok_or_else(|| log_corrupt("it records a write but the record is missing"))?
                .decode_checked()?;
            if stored.revision != revision {
                return Err(log_corrupt(
                    "its revision differs from the stored record's revision",
                ));
            }
            (Change::Put(Arc::new(stored)), Some(check))
        };
        events.push((
            ChangeEvent {
                revision,
                id: raw.id,
                change,
            },
            check,
        ));
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
        self.prepare().await?;
        let mut events = self
            .run(move |conn, _| changes_blocking(conn, since))
            .await?;
        let records = events
            .iter_mut()
            .filter_map(|(event, check)| match (&mut event.change, check.take()) {
                (Change::Put(stored), Some(check)) => Some((Arc::make_mut(stored), check)),
                _ => None,
            })
            .collect();
        self.open_records(records).await?;
        Ok(events.into_iter().map(|(event, _)| event).collect())
    }
}

#[async_trait]
impl RegistryStore for SqliteStore {
    async fn get(&self, id: &str) -> Result<Option<StoredRecord>> {
        self.prepare()
            .await
            .map_err(|e| match e.context("record") {
                Some(_) => e,
                None => e.with_context("record", id.to_owned()),
            })?;
        let id = id.to_owned();
        let mut stored = self
            .run(move |conn, _| {
                read_raw(conn, &id)?
                    .map(RawRecord::decode_checked)
                    .transpose()
            })
            .await?;
        self.open_records(stored.iter_mut().map(|(s, c)| (s, c.clone())).collect())
            .await?;
        Ok(stored.map(|(stored, _)| stored))
    }

    async fn list(&self, filter: &ListFilter) -> Result<Listing> {
        self.prepare().await?;
        let filter = filter.clone();
        let (mut listing, checks) = self
            .run(move |conn, _| list_blocking(conn, &filter))
            .await?;
        self.open_records(listing.records.iter_mut().zip(checks).collect())
            .await?;
        Ok(listing)
    }

    async fn put(&self, record: ExtensionRecord, mode: PutMode) -> Result<Revision> {
        let mut revisions = self.put_all(vec![(record, mode)]).await?;
        revisions
            .pop()
            .ok_or_else(|| Error::new(ErrorKind::Internal, "a single write returned no revision"))
    }

    async fn put_all(&self, records: Vec<(ExtensionRecord, PutMode)>) -> Result<Vec<Revision>> {
        let ops = records
            .into_iter()
            .map(|(record, mode)| WriteOp::Put(record, mode))
            .collect();
        self.write_all(ops).await
    }

    async fn write_all(&self, ops: Vec<WriteOp>) -> Result<Vec<Revision>> {
        self.write_checked(ops, None).await
    }

    async fn write_all_validated(
        &self,
        ops: Vec<WriteOp>,
        proof: Validated,
    ) -> Result<Vec<Revision>> {
        self.write_checked(ops, Some(proof)).await
    }

    async fn delete(&self, id: &str, expected: Option<Revision>) -> Result<Revision> {
        self.prepare().await?;
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

    fn test_key() -> MasterKey {
        MasterKey::from_bytes(zeroize::Zeroizing::new([42u8; 32]))
    }

    fn keyed_options() -> SqliteOptions {
        SqliteOptions::default().with_key_provider(Arc::new(StaticKeyProvider::new(test_key())))
    }

    fn open_keyed(path: &Path) -> SqliteStore {
        SqliteStore::open_with(path, keyed_options()).unwrap()
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
        let store = open_keyed(&path);
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
        assert_eq!(version, 3);
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
            let ops = (0..count)
                .map(|i| {
                    let mut r = record(&format!("rec-{i:03}"), "s");
                    r.services[0].credentials.clear();
                    r.description = "padding ".repeat(40);
                    WriteOp::Put(r, PutMode::Create)
                })
                .collect();
            write_all_blocking(&mut conn, &feed, ops, None, None).unwrap();
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
            ..keyed_options()
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
        let writer = open_keyed(&path);
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
        let writer = open_keyed(&path);
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
            ..keyed_options()
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

    // --- Encryption at rest -------------------------------------------------------

    const PLANTED: &str = "s3cr3t-PLANTED-4f1c2b";

    fn file_bytes(path: &Path) -> Vec<u8> {
        let mut all = Vec::new();
        for suffix in ["", "-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            if let Ok(bytes) = fs::read(PathBuf::from(name)) {
                all.extend(bytes);
            }
        }
        all
    }

    fn contains(haystack: &[u8], needle: &str) -> bool {
        haystack
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
    }

    fn body_of(store: &SqliteStore, id: &str) -> String {
        store
            .inner
            .lock()
            .query_row("SELECT body FROM records WHERE id = ?1", [id], |r| r.get(0))
            .unwrap()
    }

    fn head(store: &SqliteStore) -> i64 {
        store
            .inner
            .lock()
            .query_row("SELECT COALESCE(MAX(revision), 0) FROM changes", [], |r| {
                r.get(0)
            })
            .unwrap()
    }

    #[tokio::test]
    async fn a_planted_secret_never_reaches_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let store = open_keyed(&path);
        store
            .put(record("a", PLANTED), PutMode::Create)
            .await
            .unwrap();
        let mut edited = record("a", "<hidden>");
        edited.description = "edited, secret kept".into();
        store.put(edited, PutMode::Overwrite).await.unwrap();
        store
            .put_all(vec![(record("b", PLANTED), PutMode::Create)])
            .await
            .unwrap();
        // Before a checkpoint: the WAL holds the writes.
        assert!(fs::metadata(dir.path().join("r.db-wal")).unwrap().len() > 0);
        assert!(!contains(&file_bytes(&path), PLANTED));
        assert!(!contains(&file_bytes(&path), "s3cr3t"));
        checkpoint(&store.inner.lock());
        assert!(!contains(&file_bytes(&path), PLANTED));
        // …and yet it reads back.
        let back = store.get("a").await.unwrap().unwrap();
        assert_eq!(
            back.record.services[0].credentials[0].configuration["KEY"].expose(),
            PLANTED
        );
        assert_eq!(back.record.description, "edited, secret kept");
        let body = body_of(&store, "a");
        assert!(body.contains("inferlink:enc:v1:"), "{body}");
        drop(store);
        assert!(!contains(&file_bytes(&path), PLANTED));
    }

    #[tokio::test]
    async fn without_a_key_secrets_are_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let store = SqliteStore::open(&path).unwrap();
        let mut bare = record("bare", "x");
        bare.services[0].credentials[0].configuration.clear();
        store.put(bare.clone(), PutMode::Create).await.unwrap();
        let before = head(&store);
        let e = store
            .put_all(vec![
                (record("other", "y"), PutMode::Create),
                (record("secret", PLANTED), PutMode::Create),
            ])
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        assert!(e.message().contains("inferlink keys init"), "{e}");
        assert!(e.message().contains("INFERLINK_MASTER_KEY"), "{e}");
        assert!(e.message().contains("\"other\""), "{e}");
        assert!(!e.to_string().contains(PLANTED));
        assert_eq!(head(&store), before);
        assert!(store.get("secret").await.unwrap().is_none());
        assert!(store.data_keys().await.unwrap().is_empty());
        // Records without secrets keep working.
        assert_eq!(store.get("bare").await.unwrap().unwrap().record, bare);
        assert_eq!(
            store.list(&ListFilter::all()).await.unwrap().records.len(),
            1
        );
        drop(store);
        assert!(!contains(&file_bytes(&path), PLANTED));
    }

    #[tokio::test]
    async fn a_keyed_store_read_without_or_with_the_wrong_key_fails_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let store = open_keyed(&path);
        store
            .put(record("a", PLANTED), PutMode::Create)
            .await
            .unwrap();
        drop(store);
        let original = fs::read(&path).unwrap();

        let no_key = SqliteStore::open(&path).unwrap();
        let e = no_key.get("a").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        assert!(e.message().contains("\"a\""), "{e}");
        assert_eq!(e.context("record"), Some("a"));
        let e = no_key
            .put(record("a", "new"), PutMode::Overwrite)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        drop(no_key);
        assert_eq!(fs::read(&path).unwrap(), original, "file untouched");

        let wrong = SqliteOptions::default().with_key_provider(Arc::new(StaticKeyProvider::new(
            MasterKey::generate().unwrap(),
        )));
        let store = SqliteStore::open_with(&path, wrong).unwrap();
        for e in [
            store.get("a").await.unwrap_err(),
            store.list(&ListFilter::all()).await.unwrap_err(),
            store
                .put(record("a", "overwrite"), PutMode::Overwrite)
                .await
                .unwrap_err(),
            store
                .put(record("b", "new"), PutMode::Create)
                .await
                .unwrap_err(),
        ] {
            assert_eq!(e.kind(), ErrorKind::Config, "{e}");
            assert!(e.message().contains("wrong key"), "{e}");
            assert!(e.context("record").is_some(), "{e}");
            assert!(!e.to_string().contains(PLANTED));
        }
        drop(store);
        assert_eq!(fs::read(&path).unwrap(), original, "file untouched");
        // The right key still reads it.
        let store = open_keyed(&path);
        assert!(store.get("a").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn altered_or_moved_ciphertexts_are_errors_naming_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_keyed(&dir.path().join("r.db"));
        store
            .put(record("a", "one"), PutMode::Create)
            .await
            .unwrap();
        let rev_b = store
            .put(record("b", "two"), PutMode::Create)
            .await
            .unwrap();
        let body_a = body_of(&store, "a");
        let body_b = body_of(&store, "b");
        let sealed_a = body_a
            .split('"')
            .find(|part| part.starts_with("inferlink:enc:"))
            .unwrap()
            .to_owned();
        let sealed_b = body_b
            .split('"')
            .find(|part| part.starts_with("inferlink:enc:"))
            .unwrap()
            .to_owned();
        let mut flipped = sealed_b.clone().into_bytes();
        let last = flipped.len() - 3;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        let cut = sealed_b[..sealed_b.len() - 20].to_owned();
        let newer = sealed_b.replace(":v1:", ":v2:");
        for (bad, why) in [
            (sealed_a.as_str(), "moved here"),
            (flipped.as_str(), "authentication failed"),
            (cut.as_str(), "cannot be decrypted"),
            (newer.as_str(), "unknown format version"),
            ("plain", "clear text"),
        ] {
            let body = body_b.replace(&sealed_b, bad);
            // Tagged as if by the store itself, so the values' own checks are what fails.
            let tag = store
                .inner
                .keyring
                .lock()
                .await
                .as_ref()
                .unwrap()
                .record_tag("b", rev_b, &crypto::BodyDigest::of(&body));
            store
                .inner
                .lock()
                .execute(
                    "UPDATE records SET body = ?1, mac = ?2 WHERE id = 'b'",
                    [&body, &tag],
                )
                .unwrap();
            let e = store.get("b").await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Storage, "{why}: {e}");
            assert!(e.message().contains(why), "{why}: {e}");
            assert!(e.message().contains("record \"b\""), "{e}");
            assert_eq!(e.context("record"), Some("b"));
            // A keep-the-secret update cannot proceed either, and changes nothing.
            let e = store
                .put(record("b", "<hidden>"), PutMode::Update(rev_b))
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Storage, "{e}");
            assert_eq!(body_of(&store, "b"), body);
            // The other record is fine.
            assert!(store.get("a").await.unwrap().is_some());
        }
    }

    /// A schema-1 file, as the previous release wrote it, with one clear-text secret.
    fn schema_1_file(path: &Path) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        let body =
            crate::format::to_json_compact(&record("old", PLANTED), crate::format::Secrets::Reveal)
                .unwrap();
        conn.execute(
            "INSERT INTO records (id, revision, body) VALUES ('old', 1, ?1)",
            [&body],
        )
        .unwrap();
        conn.execute_batch("INSERT INTO changes VALUES (1, 'old', 0)")
            .unwrap();
    }

    #[tokio::test]
    async fn clear_text_bodies_of_schema_1_are_sealed_when_a_key_is_configured() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        schema_1_file(&path);
        assert!(contains(&file_bytes(&path), PLANTED));
        // No key: refused, with the way out.
        let e = SqliteStore::open(&path).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        assert!(e.message().contains("clear text"), "{e}");
        assert!(e.message().contains("inferlink keys init"), "{e}");
        // With a key: the first operation seals them; revisions stay.
        let store = open_keyed(&path);
        let back = store.get("old").await.unwrap().unwrap();
        assert_eq!(back.revision, 1);
        assert_eq!(
            back.record.services[0].credentials[0].configuration["KEY"].expose(),
            PLANTED
        );
        assert!(body_of(&store, "old").contains("inferlink:enc:v1:"));
        drop(store);
        assert!(
            !contains(&file_bytes(&path), PLANTED),
            "no clear text left in the file"
        );
        // Now it even opens without a key (records read as "no key configured").
        let no_key = SqliteStore::open(&path).unwrap();
        assert_eq!(
            no_key.get("old").await.unwrap_err().kind(),
            ErrorKind::Config
        );
    }

    #[tokio::test]
    async fn a_schema_1_file_without_secrets_needs_no_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute_batch(
            r#"INSERT INTO records VALUES ('plain', 1, '{"id":"plain"}');
               INSERT INTO changes VALUES (1, 'plain', 0);"#,
        )
        .unwrap();
        drop(conn);
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.get("plain").await.unwrap().unwrap().revision, 1);
    }

    #[tokio::test]
    async fn rewrapping_moves_the_data_key_to_a_new_master_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let running = open_keyed(&path);
        running
            .put(record("a", PLANTED), PutMode::Create)
            .await
            .unwrap();
        let before = running.data_keys().await.unwrap();
        assert_eq!(before.len(), 1);
        assert_eq!(before[0].kek_id, test_key().id());
        let new_key = MasterKey::generate().unwrap();
        let new_provider = StaticKeyProvider::new(new_key.clone());
        assert_eq!(running.rewrap_data_keys(&new_provider).await.unwrap(), 1);
        assert_eq!(
            running.rewrap_data_keys(&new_provider).await.unwrap(),
            0,
            "idempotent"
        );
        let after = running.data_keys().await.unwrap();
        assert_eq!(after[0].id, before[0].id, "same data key");
        assert_eq!(after[0].kek_id, new_key.id());
        // The running store keeps its cached data key: no downtime.
        running
            .put(record("b", "two"), PutMode::Create)
            .await
            .unwrap();
        assert!(running.get("a").await.unwrap().is_some());
        // A store with the new key reads everything; the old key no longer unwraps.
        let fresh = SqliteStore::open_with(
            &path,
            SqliteOptions::default().with_key_provider(Arc::new(new_provider)),
        )
        .unwrap();
        assert_eq!(
            fresh.list(&ListFilter::all()).await.unwrap().records.len(),
            2
        );
        let old = open_keyed(&path);
        let e = old.get("a").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        assert!(e.message().contains("wrong key"), "{e}");
    }

    #[tokio::test]
    async fn a_new_data_key_re_encrypts_every_value_and_other_stores_follow() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let one = open_keyed(&path);
        let other = open_keyed(&path);
        one.put(record("a", "one"), PutMode::Create).await.unwrap();
        let mut bare = record("bare", "x");
        bare.services[0].credentials[0].configuration.clear();
        one.put(bare, PutMode::Create).await.unwrap();
        assert!(
            other.get("a").await.unwrap().is_some(),
            "caches the old key"
        );
        let old_id = one.data_keys().await.unwrap()[0].id.clone();
        let revision = head(&one);
        let rotation = one.rotate_data_key().await.unwrap();
        assert_eq!(rotation.retired, vec![old_id.clone()]);
        assert_eq!(rotation.records, 1);
        assert_ne!(rotation.new_key, old_id);
        assert_eq!(head(&one), revision, "no new revisions");
        let keys = one.data_keys().await.unwrap();
        assert_eq!(keys.len(), 1);
        assert!(keys[0].active);
        assert_eq!(keys[0].id, rotation.new_key);
        let body = body_of(&one, "a");
        assert!(
            body.contains(&rotation.new_key) && !body.contains(&old_id),
            "{body}"
        );
        // The other store reads the re-encrypted value and writes under the new key.
        assert_eq!(
            other.get("a").await.unwrap().unwrap().record.services[0].credentials[0].configuration
                ["KEY"]
                .expose(),
            "one"
        );
        other
            .put(record("c", "three"), PutMode::Create)
            .await
            .unwrap();
        assert!(body_of(&other, "c").contains(&rotation.new_key));
        assert_eq!(one.list(&ListFilter::all()).await.unwrap().records.len(), 3);
    }

    #[tokio::test]
    async fn a_writer_with_a_stale_data_key_reloads_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let one = open_keyed(&path);
        let other = open_keyed(&path);
        one.put(record("a", "one"), PutMode::Create).await.unwrap();
        other
            .put(record("b", "two"), PutMode::Create)
            .await
            .unwrap();
        let rotation = one.rotate_data_key().await.unwrap();
        // `other` still caches the retired key and writes without reading first.
        other
            .put(record("c", "three"), PutMode::Create)
            .await
            .unwrap();
        assert!(body_of(&other, "c").contains(&rotation.new_key));
        assert_eq!(one.list(&ListFilter::all()).await.unwrap().records.len(), 3);
    }

    #[test]
    fn debug_never_shows_key_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_keyed(&dir.path().join("r.db"));
        let shown = format!("{store:?}");
        assert!(shown.contains(test_key().id()), "{shown}");
        assert!(!shown.contains(&*test_key().to_base64()), "{shown}");
    }
}
