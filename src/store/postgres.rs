//! The shared store: PostgreSQL, for several host instances over one database.
//!
//! # Layout
//!
//! Everything lives in one schema (default `inferlink`, see
//! [`PostgresOptions::schema`]):
//!
//! * `schema_version(version, applied_at, applied_by)`: one row per applied
//!   migration step. [`PostgresStore::connect`] applies the missing steps in
//!   one transaction under a transaction-scoped advisory lock, so several
//!   hosts starting at once do not race; a schema written by a newer
//!   inferlink is refused before anything is touched.
//! * `head(id = 1, revision)`: the store's revision counter, one row.
//! * `records(id, revision, body)`: the current version of every record; the
//!   body is the record as compact JSON, credential values included (see
//!   *Security*).
//! * `changes(revision, record_id, deleted)`: the change log, compacted to
//!   the latest change per record id (`record_id` is unique). Deletions stay
//!   as tombstones so a watcher resuming from an old revision learns about
//!   them.
//!
//! # Revisions: a locked counter row, not a sequence
//!
//! Every write transaction starts by locking the `head` row
//! (`SELECT … FOR UPDATE`), takes its revisions from it and stores the new
//! value before committing. The lock is held until commit, so write
//! transactions run one after the other and **revision order is commit
//! order**: a transaction can only take revision `r + 1` after the one that
//! took `r` has committed (or rolled back).
//!
//! A PostgreSQL sequence would not give that. `nextval` hands out numbers
//! outside transaction order: a transaction may draw 7, another draw 8 and
//! commit first. A watcher that reads the log at that moment sees 8, moves
//! its position to 8, and `WHERE revision > 8` then skips 7 forever when it
//! commits a moment later. With the counter row, any snapshot that shows a
//! revision also shows every smaller one, so `WHERE revision > last` never
//! skips and never repeats. The cost is that writes are serialised (a
//! registry is written rarely and read constantly, so that is the right
//! trade); compare-and-set checks happen after the lock is taken, inside the
//! same transaction, so they are exact.
//!
//! # Watch
//!
//! Each write transaction also sends `NOTIFY <schema>_changes` (payload: the
//! new head revision). One listening connection per store (opened on the
//! first [`RegistryStore::watch`], outside the pool) turns notifications into
//! wake-ups; every watcher then reads the log itself with
//! `… WHERE revision > last ORDER BY revision` (in pages), from its own
//! position. Notifications are only hints: they may be lost (the listening
//! connection drops, the server restarts) or coalesced, and nothing depends
//! on their payload. After every (re)connection of the listener every watcher
//! reads the log again, and it also does so every
//! [`PostgresOptions::watch_resync_interval`] as a safety net, so no change
//! is lost or delivered twice. The listener reconnects on its own with a
//! bounded exponential backoff ([`PostgresOptions::watch_backoff_min`] …
//! [`PostgresOptions::watch_backoff_max`]).
//!
//! While PostgreSQL is unreachable a watch stream waits and retries (with
//! the same backoff) instead of failing: temporary outages yield no error
//! items. Permanent errors (a corrupt record) are yielded as an error item;
//! polling the stream again retries.
//!
//! # Connections and failures
//!
//! Operations use a `deadpool-postgres` pool ([`PostgresOptions::pool_size`]
//! connections). A pooled connection that died (server restart, network) is
//! dropped and replaced on its next use, so the store recovers by itself
//! once the server is back. A connection that fails before a transaction
//! commits is retried once on a fresh connection (nothing was committed); a
//! failure while committing is reported as a retryable
//! [`ErrorKind::Unavailable`] error saying the write may or may not have been
//! applied. Serialization failures and deadlocks are retried up to three
//! times, then reported as retryable [`ErrorKind::Unavailable`].
//!
//! # TLS
//!
//! TLS is rustls with the *ring* provider (no OpenSSL, no process-wide
//! default provider installed). inferlink always verifies the server's
//! certificate chain and host name (what libpq calls `verify-full`), against
//! the CA file when one is given, else against the system's trust store.
//! See [`TlsMode`].
//!
//! # Security
//!
//! Record bodies hold credential values **in clear text** (as the SQLite
//! store does); encryption at rest is planned. The password of the
//! connection string never appears in `Debug` output, errors or logs: the
//! store only ever shows `postgres://user@host:port/dbname`.

use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{
    Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime, TimeoutType,
};
use futures_util::StreamExt;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::sync::watch;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::error::SqlState;
use tokio_postgres::{AsyncMessage, Row};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::feed::ChangeLog;
use super::{
    Change, ChangeEvent, ChangeStream, ListFilter, Listing, PutMode, RegistryStore, Revision,
    StoredRecord, WriteOp as StoreWriteOp, check_delete, prepare_put,
};
use crate::crypto::{self, DataKey, DataKeyInfo, KeyProvider, Keyring, TagCheck, WrappedKey};
use crate::error::{Error, ErrorKind, Result};
use crate::format::{Format, ParseLimits, parse_documents_as};
use crate::model::ExtensionRecord;

/// Schema migrations, applied in order; step `i` moves the schema to version `i + 1`.
///
/// `{s}` stands for the (validated) schema name. Append new steps at the
/// end; never edit a released step.
const MIGRATIONS: &[&str] = &[
    // 1: the revision counter, records and the compacted change log.
    "CREATE TABLE {s}.head (
         id smallint PRIMARY KEY CHECK (id = 1),
         revision bigint NOT NULL CHECK (revision >= 0)
     );
     INSERT INTO {s}.head (id, revision) VALUES (1, 0);
     CREATE TABLE {s}.records (
         id text COLLATE \"C\" PRIMARY KEY,
         revision bigint NOT NULL,
         body text NOT NULL
     );
     CREATE TABLE {s}.changes (
         revision bigint PRIMARY KEY,
         record_id text COLLATE \"C\" NOT NULL UNIQUE,
         deleted boolean NOT NULL
     );",
    // 2: data keys for encryption at rest (wrapped by the master key; one active).
    "CREATE TABLE {s}.data_keys (
         id text COLLATE \"C\" PRIMARY KEY,
         kek_id text NOT NULL,
         wrapped bytea NOT NULL,
         created timestamptz NOT NULL DEFAULT now(),
         active boolean NOT NULL
     );
     CREATE UNIQUE INDEX data_keys_one_active ON {s}.data_keys (active) WHERE active;",
    // 3: an integrity tag per record (see `crypto::TagCheck`); rows written
    // before it have none until the first keyed operation migrates the store.
    "ALTER TABLE {s}.records ADD COLUMN mac text;",
];

/// How many log entries a watcher reads per query.
const PAGE: i64 = 500;
/// How often a transaction rolled back by a serialization failure or deadlock is retried.
const SERIALIZATION_RETRIES: u32 = 3;
/// The `application_name` of pooled connections.
const APP_NAME: &str = "inferlink";
/// The `application_name` of the listening connection.
const LISTENER_APP_NAME: &str = "inferlink-listener";

/// Whether and how connections use TLS; see [`PostgresOptions::tls_mode`].
///
/// In every mode that uses TLS the server's certificate chain and host name
/// are verified (libpq's `verify-full`): against
/// [`PostgresOptions::tls_ca_file`] when set, else against the system's
/// trust store. inferlink never accepts an unverified certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain TCP, no TLS.
    Disable,
    /// TLS when the server offers it, plain TCP when it does not. A server
    /// that offers TLS with a certificate that does not verify is an error,
    /// not a fallback to plain TCP.
    Prefer,
    /// TLS or no connection.
    Require,
}

/// Settings of a [`PostgresStore`]; [`PostgresOptions::default`] suits most uses.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// The key-encryption key that protects credential values at rest (see
    /// [`crate::crypto`]). `None` (the default): records without credential
    /// values only; writing one with them is an [`ErrorKind::Config`] error.
    /// Every host sharing the database needs the same master key.
    pub key_provider: Option<Arc<dyn KeyProvider>>,
    /// Most connections the pool keeps open (the listening connection of
    /// watchers comes on top). Default: 8.
    pub pool_size: usize,
    /// How long opening one connection (TCP, TLS, authentication) may take. Default: 5 s.
    pub connect_timeout: Duration,
    /// How long an operation waits for a free pooled connection. Default: 10 s.
    pub acquire_timeout: Duration,
    /// How long one store operation may take in all, retries included,
    /// before it fails with a retryable [`ErrorKind::Timeout`]. Default: 30 s.
    pub operation_timeout: Duration,
    /// The schema holding the store's tables (created if missing): lowercase
    /// ASCII letters, digits and `_`, starting with a letter or `_`, at most
    /// 48 characters. Several stores can share one database under different
    /// schemas. Default: `inferlink`.
    pub schema: String,
    /// TLS mode. `None` (the default) takes `sslmode` from the connection
    /// string (`disable`, `prefer`, `require`; in URL form also `allow`,
    /// read as `prefer`, and `verify-ca`/`verify-full`, read as `require`);
    /// when it has none, [`TlsMode::Require`] (verified) for any host not on
    /// this machine, and [`TlsMode::Prefer`] when every host is `localhost`,
    /// a loopback address or a Unix socket. `sslmode=prefer` (or
    /// `Some(TlsMode::Prefer)`) is the explicit opt-out for a remote server
    /// without TLS.
    pub tls_mode: Option<TlsMode>,
    /// A PEM file with the CA certificate(s) that sign the server's
    /// certificate. `None` (the default) takes `sslrootcert` from a URL
    /// connection string, or else trusts the system's CA store.
    pub tls_ca_file: Option<PathBuf>,
    /// First delay before the listening connection of watchers reconnects.
    /// Default: 100 ms.
    pub watch_backoff_min: Duration,
    /// Longest delay between reconnection attempts (the delay doubles from
    /// the minimum up to this). Default: 5 s.
    pub watch_backoff_max: Duration,
    /// How often a watcher reads the log even without a notification, in case
    /// one was lost silently. Default: 30 s.
    pub watch_resync_interval: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            key_provider: None,
            pool_size: 8,
            connect_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(30),
            schema: "inferlink".to_owned(),
            tls_mode: None,
            tls_ca_file: None,
            watch_backoff_min: Duration::from_millis(100),
            watch_backoff_max: Duration::from_secs(5),
            watch_resync_interval: Duration::from_secs(30),
        }
    }
}

/// A [`RegistryStore`] in a PostgreSQL database, shared by any number of hosts.
///
/// Cloning shares the connection pool. Every instance (in this process or
/// another host) over the same database and schema sees the same records,
/// revisions and change log; each instance's watchers follow every
/// instance's writes through `LISTEN`/`NOTIFY` (see the module docs).
/// Needs a Tokio runtime with the time and I/O drivers.
///
/// `Debug` shows the target without the password.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    sql: Sql,
    /// `postgres://user@host:port/dbname`, never the password.
    target: String,
    schema: String,
    channel: String,
    options: PostgresOptions,
    /// The configuration and TLS connector of the listening connection.
    listen_config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    /// Bumped on every notification and every (re)connection of the listener.
    wake: Arc<watch::Sender<u64>>,
    /// How many times the listening connection has been established.
    listens: Arc<AtomicU64>,
    listener: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The unwrapped data keys, loaded on first need.
    keyring: tokio::sync::Mutex<Option<Arc<Keyring>>>,
    /// `prepare` found (or made) an active data key that authenticates records.
    prepared: AtomicBool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let handle = self
            .listener
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            handle.abort();
        }
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.inner.target)
            .field("schema", &self.inner.schema)
            .finish_non_exhaustive()
    }
}

/// The SQL text of every statement, with the schema name filled in.
struct Sql {
    lock_head: String,
    update_head: String,
    get_record: String,
    get_revision: String,
    upsert_record: String,
    delete_record: String,
    log_change: String,
    list: String,
    changes: String,
    data_keys: String,
    insert_data_key: String,
}

impl Sql {
    fn new(s: &str) -> Sql {
        Sql {
            lock_head: format!("SELECT revision FROM {s}.head WHERE id = 1 FOR UPDATE"),
            // Stores the new head and queues the notification in one round trip.
            update_head: format!(
                "WITH moved AS (UPDATE {s}.head SET revision = $1 WHERE id = 1 RETURNING revision)
                 SELECT pg_notify($2, revision::text) FROM moved"
            ),
            get_record: format!("SELECT revision, body, mac FROM {s}.records WHERE id = $1"),
            get_revision: format!("SELECT revision FROM {s}.records WHERE id = $1"),
            upsert_record: format!(
                "INSERT INTO {s}.records (id, revision, body, mac) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (id) DO UPDATE SET revision = excluded.revision, body = excluded.body, mac = excluded.mac"
            ),
            delete_record: format!("DELETE FROM {s}.records WHERE id = $1"),
            log_change: format!(
                "INSERT INTO {s}.changes (revision, record_id, deleted) VALUES ($1, $2, $3)
                 ON CONFLICT (record_id) DO UPDATE SET revision = excluded.revision, deleted = excluded.deleted"
            ),
            // One statement, so the head and the rows come from one snapshot.
            list: format!(
                "SELECT h.revision, r.id, r.revision, r.body, r.mac
                 FROM {s}.head AS h LEFT JOIN {s}.records AS r ON true
                 WHERE h.id = 1 ORDER BY r.id"
            ),
            data_keys: format!(
                "SELECT id, kek_id, wrapped, active FROM {s}.data_keys ORDER BY created, id"
            ),
            // Hosts that start at once may both make a first key: one wins.
            insert_data_key: format!(
                "INSERT INTO {s}.data_keys (id, kek_id, wrapped, active) VALUES ($1, $2, $3, true)
                 ON CONFLICT DO NOTHING"
            ),
            changes: format!(
                "SELECT c.revision, c.record_id, c.deleted, r.revision, r.body, r.mac
                 FROM {s}.changes AS c LEFT JOIN {s}.records AS r ON r.id = c.record_id
                 WHERE c.revision > $1 ORDER BY c.revision LIMIT $2"
            ),
        }
    }
}

impl PostgresStore {
    /// Connects to the database, creates or migrates the schema, and returns the store.
    ///
    /// `connection` is a URL (`postgres://user:password@host:port/dbname?…`
    /// or `postgresql://…`) or a libpq-style `key=value` string. Errors never
    /// show the password:
    ///
    /// * a malformed connection string, an invalid option or an unreadable
    ///   CA file: [`ErrorKind::Config`];
    /// * the server is down, unreachable or does not answer within
    ///   [`PostgresOptions::connect_timeout`]: a retryable
    ///   [`ErrorKind::Unavailable`] (nothing is created);
    /// * rejected credentials: [`ErrorKind::Unauthenticated`];
    /// * a schema written by a newer inferlink: [`ErrorKind::Storage`]
    ///   (nothing is changed).
    pub async fn connect(connection: &str, options: PostgresOptions) -> Result<PostgresStore> {
        validate_options(&options)?;
        let (connection, url_tls) = split_tls_parameters(connection)?;
        let mut config: tokio_postgres::Config = connection.parse().map_err(|e| {
            let detail = config_parse_detail(&e);
            Error::new(
                ErrorKind::Config,
                format!(
                    "invalid PostgreSQL connection string: {detail} (the string is not shown because it may contain a password)"
                ),
            )
            .with_context("store", "postgres")
        })?;
        let target = describe_target(&config);
        let explicit = url_tls.mode.or_else(|| {
            names_sslmode(&connection).then(|| match config.get_ssl_mode() {
                SslMode::Disable => TlsMode::Disable,
                SslMode::Require => TlsMode::Require,
                _ => TlsMode::Prefer,
            })
        });
        let mode = options
            .tls_mode
            .or(explicit)
            .unwrap_or_else(|| default_tls_mode(config.get_hosts()));
        let ca_file = options.tls_ca_file.clone().or(url_tls.ca_file);
        let tls = tls_connector(mode, ca_file.as_deref(), &target)?;
        config.ssl_mode(match mode {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            TlsMode::Require => SslMode::Require,
        });
        config.connect_timeout(options.connect_timeout);
        if config.get_application_name().is_none() {
            config.application_name(APP_NAME);
        }

        let mut listen_config = config.clone();
        listen_config
            .application_name(LISTENER_APP_NAME)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .keepalives_interval(Duration::from_secs(10))
            .keepalives_retries(3);

        let manager = Manager::from_config(
            config,
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.acquire_timeout))
            .create_timeout(Some(options.connect_timeout))
            .recycle_timeout(Some(options.connect_timeout))
            .build()
            .map_err(|e| {
                Error::new(
                    ErrorKind::Internal,
                    format!("cannot build the PostgreSQL connection pool: {e}"),
                )
                .with_context("store", "postgres")
            })?;

        let schema = options.schema.clone();
        let store = PostgresStore {
            inner: Arc::new(Inner {
                pool,
                sql: Sql::new(&schema),
                target,
                channel: format!("{schema}_changes"),
                schema,
                options,
                listen_config,
                tls,
                wake: Arc::new(watch::channel(0).0),
                listens: Arc::new(AtomicU64::new(0)),
                listener: Mutex::new(None),
                keyring: tokio::sync::Mutex::new(None),
                prepared: AtomicBool::new(false),
            }),
        };
        store.migrate(MIGRATIONS).await?;
        Ok(store)
    }

    /// Where the store is, as `postgres://user@host:port/dbname` (never the password).
    pub fn target(&self) -> &str {
        &self.inner.target
    }

    /// The schema holding the store's tables.
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// How many times the listening connection of watchers has been
    /// established (0 before the first watch; each reconnection adds one).
    pub fn watch_connections(&self) -> u64 {
        self.inner.listens.load(Ordering::Relaxed)
    }

    fn error(&self, kind: ErrorKind, message: impl Into<String>) -> Error {
        Error::new(kind, message)
            .with_context("store", "postgres")
            .with_context("database", self.inner.target.clone())
    }

    /// Maps a driver error that happened while doing `what`.
    fn pg_error(&self, e: &tokio_postgres::Error, what: &str) -> Error {
        let (kind, detail) = classify(e);
        self.error(kind, format!("{what}: {detail}"))
    }

    /// Maps a pool error (no connection could be had).
    fn pool_error(&self, e: &PoolError) -> Error {
        let options = &self.inner.options;
        match e {
            PoolError::Timeout(TimeoutType::Wait) => self.error(
                ErrorKind::Unavailable,
                format!(
                    "all {} pooled PostgreSQL connections stayed busy for {:?}; try again, or raise the pool size",
                    options.pool_size, options.acquire_timeout
                ),
            ),
            PoolError::Timeout(TimeoutType::Create | TimeoutType::Recycle) => self.error(
                ErrorKind::Unavailable,
                format!(
                    "cannot connect to PostgreSQL: no answer within the connect timeout of {:?}; is the server up and reachable? (retryable)",
                    options.connect_timeout
                ),
            ),
            PoolError::Backend(e) => {
                let (kind, detail) = classify(e);
                let hint = if kind == ErrorKind::Unavailable {
                    "; is the server running and reachable? (retryable)"
                } else {
                    ""
                };
                let detail = detail
                    .strip_prefix("the connection to PostgreSQL failed: ")
                    .unwrap_or(&detail);
                self.error(kind, format!("cannot connect to PostgreSQL: {detail}{hint}"))
            }
            PoolError::Closed => self.error(
                ErrorKind::Unavailable,
                "the PostgreSQL connection pool is closed",
            ),
            other => self.error(
                ErrorKind::Internal,
                format!("cannot get a PostgreSQL connection: {other}"),
            ),
        }
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.inner.pool.get().await.map_err(|e| self.pool_error(&e))
    }

    /// Bounds `fut` by the operation timeout.
    async fn bounded<T>(
        &self,
        what: &str,
        ambiguous: bool,
        fut: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let limit = self.inner.options.operation_timeout;
        match tokio::time::timeout(limit, fut).await {
            Ok(result) => result,
            Err(_) => {
                let tail = if ambiguous {
                    "; it may or may not have been applied: read the record to find out"
                } else {
                    ""
                };
                Err(self.error(
                    ErrorKind::Timeout,
                    format!("{what} did not complete within {limit:?}{tail}"),
                ))
            }
        }
    }

    // --- Migrations -------------------------------------------------------------

    /// Brings the schema to `steps.len()` in one transaction under an advisory lock.
    async fn migrate(&self, steps: &[&str]) -> Result<()> {
        let schema = &self.inner.schema;
        let what = format!("cannot prepare the schema \"{schema}\"");
        let mut client = self.client().await?;
        let fail = |e: tokio_postgres::Error| self.pg_error(&e, &what);
        let tx = client.transaction().await.map_err(fail)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&advisory_key(schema)])
            .await
            .map_err(fail)?;
        let exists: bool = tx
            .query_one(
                "SELECT to_regclass($1) IS NOT NULL",
                &[&format!("{schema}.schema_version")],
            )
            .await
            .and_then(|row| row.try_get(0))
            .map_err(fail)?;
        let current: i32 = if exists {
            tx.query_one(
                &format!("SELECT COALESCE(MAX(version), 0) FROM {schema}.schema_version"),
                &[],
            )
            .await
            .and_then(|row| row.try_get(0))
            .map_err(fail)?
        } else {
            0
        };
        let known = i32::try_from(steps.len()).unwrap_or(i32::MAX);
        if current > known {
            // Dropping the transaction rolls it back: nothing was changed.
            return Err(self.error(
                ErrorKind::Storage,
                format!(
                    "the PostgreSQL schema \"{schema}\" was created by a newer inferlink (schema version {current}; this version knows up to {known}); upgrade inferlink to use it"
                ),
            ));
        }
        if current < 0 {
            return Err(self.error(
                ErrorKind::Storage,
                format!(
                    "the PostgreSQL schema \"{schema}\" has an invalid schema version {current}"
                ),
            ));
        }
        if current == known {
            return tx.commit().await.map_err(fail);
        }
        if !exists {
            tx.batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {schema};
                 CREATE TABLE {schema}.schema_version (
                     version integer PRIMARY KEY,
                     applied_at timestamptz NOT NULL DEFAULT now(),
                     applied_by text NOT NULL
                 );"
            ))
            .await
            .map_err(fail)?;
        }
        let applied_by = format!("inferlink {}", env!("CARGO_PKG_VERSION"));
        for (index, step) in steps.iter().enumerate().skip(current as usize) {
            let version = i32::try_from(index + 1).unwrap_or(i32::MAX);
            let step_failed = |e: tokio_postgres::Error| {
                self.pg_error(
                    &e,
                    &format!("cannot migrate the schema \"{schema}\" to version {version}"),
                )
            };
            tx.batch_execute(&step.replace("{s}", schema))
                .await
                .map_err(step_failed)?;
            tx.execute(
                &format!(
                    "INSERT INTO {schema}.schema_version (version, applied_by) VALUES ($1, $2)"
                ),
                &[&version, &applied_by],
            )
            .await
            .map_err(step_failed)?;
        }
        tx.commit().await.map_err(fail)?;
        tracing::debug!(schema = %schema, from = current, to = known, "migrated the PostgreSQL store");
        Ok(())
    }

    // --- Writes -----------------------------------------------------------------

    /// Runs `ops` in one write transaction, retrying when that is known to be safe.
    async fn write(&self, ops: Vec<WriteOp>) -> Result<Vec<Revision>> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let keys = self.keyring_for_writing(&ops).await?;
        let keys = keys.as_deref();
        let what = if ops.len() == 1 {
            "the write"
        } else {
            "the batch write"
        };
        self.bounded(what, true, async {
            let mut connection_retries = 0;
            let mut serialization_retries = 0;
            loop {
                match self.write_once(&ops, keys).await {
                    Ok(revisions) => return Ok(revisions),
                    Err(Failure::Retry(e, Cause::Connection)) if connection_retries < 1 => {
                        connection_retries += 1;
                        tracing::debug!(error = %e, "PostgreSQL connection failed before commit; retrying on a fresh connection");
                    }
                    Err(Failure::Retry(e, Cause::Serialization))
                        if serialization_retries < SERIALIZATION_RETRIES =>
                    {
                        serialization_retries += 1;
                        tracing::debug!(error = %e, "PostgreSQL rolled back a write; retrying");
                    }
                    Err(Failure::Retry(e, _) | Failure::Final(e)) => return Err(e),
                }
            }
        })
        .await
    }

    async fn write_once(
        &self,
        ops: &[WriteOp],
        keys: Option<&Keyring>,
    ) -> Result<Vec<Revision>, Failure> {
        let sql = &self.inner.sql;
        let mut client = self.client().await.map_err(Failure::Final)?;
        let before = |e: tokio_postgres::Error| self.before_commit(&e, "cannot write");
        let tx = client.transaction().await.map_err(before)?;
        let head_row = tx
            .query_opt(
                &tx.prepare_cached(&sql.lock_head).await.map_err(before)?,
                &[],
            )
            .await
            .map_err(before)?
            .ok_or_else(|| {
                Failure::Final(self.error(
                    ErrorKind::Storage,
                    "the store's revision counter row is missing: the schema is damaged",
                ))
            })?;
        let mut head: i64 = head_row.try_get(0).map_err(before)?;
        if keys.is_none() && ops.iter().any(|op| matches!(op, WriteOp::Put(..))) {
            let keyed: bool = tx
                .query_one(
                    &format!(
                        "SELECT EXISTS (SELECT 1 FROM {}.data_keys)",
                        self.inner.schema
                    ),
                    &[],
                )
                .await
                .map_err(before)?
                .try_get(0)
                .map_err(before)?;
            if keyed {
                return Err(Failure::Final(self.error(
                    ErrorKind::Config,
                    format!(
                        "this store is protected by an encryption key (its records carry integrity tags), and no key is configured, so nothing can be written to it; configure the key it was set up with (INFERLINK_MASTER_KEY, or the key file), or {}",
                        crypto::NO_KEY_HELP
                    ),
                )));
            }
        }
        let mut revisions = Vec::with_capacity(ops.len());
        for op in ops {
            let id = op.id();
            let with_id = |f: Failure| f.map(|e| e.with_context("record", id.to_owned()));
            let failed = |e: tokio_postgres::Error| {
                self.before_commit(&e, &format!("cannot write record \"{id}\""))
            };
            head = head.checked_add(1).ok_or_else(|| {
                Failure::Final(self.error(ErrorKind::Storage, "the revision counter is exhausted"))
            })?;
            match op {
                WriteOp::Put(record, mode) => {
                    let row = tx
                        .query_opt(
                            &tx.prepare_cached(&sql.get_record).await.map_err(failed)?,
                            &[&id],
                        )
                        .await
                        .map_err(failed)?;
                    let mut record = record.clone();
                    // The stored version's values are needed only to keep
                    // `<hidden>` ones: a complete record leaves them sealed.
                    let keeps_values = record.has_hidden_placeholders();
                    let current = match row.map(|row| {
                        let mut stored = self.decode_row(id, &row, 0)?;
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
                        None => None,
                        Some(Ok(stored)) => Some(stored),
                        // A complete replacement needs nothing from the stored
                        // version: let it repair a corrupt record.
                        Some(Err(e))
                            if *mode == PutMode::Overwrite && !record.has_hidden_placeholders() =>
                        {
                            tracing::warn!(record = %id, "replacing a corrupt stored record: {e}");
                            None
                        }
                        Some(Err(e)) => return Err(with_id(Failure::Final(e))),
                    };
                    prepare_put(&mut record, *mode, current.as_ref())
                        .map_err(|e| with_id(Failure::Final(e)))?;
                    let body =
                        encode_body(&record, keys).map_err(|e| with_id(Failure::Final(e)))?;
                    let revision = Revision::try_from(head).unwrap_or_default();
                    let tag = keys
                        .map(|keys| keys.record_tag(id, revision, &crypto::BodyDigest::of(&body)));
                    tx.execute(
                        &tx.prepare_cached(&sql.upsert_record)
                            .await
                            .map_err(failed)?,
                        &[&id, &head, &body, &tag],
                    )
                    .await
                    .map_err(failed)?;
                    tx.execute(
                        &tx.prepare_cached(&sql.log_change).await.map_err(failed)?,
                        &[&head, &id, &false],
                    )
                    .await
                    .map_err(failed)?;
                }
                WriteOp::Delete(_, expected) => {
                    let row = tx
                        .query_opt(
                            &tx.prepare_cached(&sql.get_revision).await.map_err(failed)?,
                            &[&id],
                        )
                        .await
                        .map_err(failed)?;
                    let current = match row {
                        None => None,
                        Some(row) => match (
                            row.try_get::<_, i64>(0).ok().and_then(positive_revision),
                            expected,
                        ) {
                            (Some(revision), _) => Some(revision),
                            // An unconditional delete may remove a record whose revision is unreadable.
                            (None, None) => Some(0),
                            (None, Some(_)) => {
                                return Err(Failure::Final(
                                    self.corrupt(id, "its revision is not a positive integer"),
                                ));
                            }
                        },
                    };
                    check_delete(id, *expected, current).map_err(|e| with_id(Failure::Final(e)))?;
                    tx.execute(
                        &tx.prepare_cached(&sql.delete_record)
                            .await
                            .map_err(failed)?,
                        &[&id],
                    )
                    .await
                    .map_err(failed)?;
                    tx.execute(
                        &tx.prepare_cached(&sql.log_change).await.map_err(failed)?,
                        &[&head, &id, &true],
                    )
                    .await
                    .map_err(failed)?;
                }
            }
            revisions.push(Revision::try_from(head).unwrap_or_default());
        }
        let moved = tx
            .execute(
                &tx.prepare_cached(&sql.update_head).await.map_err(before)?,
                &[&head, &self.inner.channel],
            )
            .await
            .map_err(before)?;
        if moved != 1 {
            return Err(Failure::Final(self.error(
                ErrorKind::Storage,
                "the store's revision counter row is missing: the schema is damaged",
            )));
        }
        tx.commit().await.map_err(|e| {
            let (kind, detail) = classify(&e);
            match serialization_failure(&e) {
                // The server answered: it rolled the transaction back.
                true => Failure::Retry(
                    self.error(kind, format!("cannot commit the write: {detail}")),
                    Cause::Serialization,
                ),
                false if kind == ErrorKind::Unavailable => Failure::Final(self.error(
                    kind,
                    format!(
                        "the connection to PostgreSQL failed while committing ({detail}); the write may or may not have been applied: read the record to find out, then retry"
                    ),
                )),
                false => Failure::Final(self.error(kind, format!("cannot commit the write: {detail}"))),
            }
        })?;
        Ok(revisions)
    }

    /// Maps an error that happened before `COMMIT` was sent: nothing was committed.
    fn before_commit(&self, e: &tokio_postgres::Error, what: &str) -> Failure {
        let error = self.pg_error(e, what);
        match retry_cause(e) {
            Some(cause) => Failure::Retry(error, cause),
            None => Failure::Final(error),
        }
    }

    // --- Reads ------------------------------------------------------------------

    /// Runs a read, retrying once on a fresh connection when the first one fails.
    async fn read<T, F, Fut>(&self, what: &str, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        self.bounded(what, false, async {
            let mut retries = 0;
            loop {
                match attempt().await {
                    Ok(value) => return Ok(value),
                    Err(Failure::Retry(e, _)) if retries < 1 => {
                        retries += 1;
                        tracing::debug!(error = %e, "PostgreSQL read failed; retrying on a fresh connection");
                    }
                    Err(Failure::Retry(e, _) | Failure::Final(e)) => return Err(e),
                }
            }
        })
        .await
    }

    async fn get_once(&self, id: &str) -> Result<Option<(StoredRecord, TagCheck)>, Failure> {
        let client = self.client().await.map_err(Failure::Final)?;
        let failed = |e: tokio_postgres::Error| {
            self.before_commit(&e, &format!("cannot read record \"{id}\""))
        };
        let stmt = client
            .prepare_cached(&self.inner.sql.get_record)
            .await
            .map_err(failed)?;
        let row = client.query_opt(&stmt, &[&id]).await.map_err(failed)?;
        row.map(|row| self.decode_checked(id, &row, 0))
            .transpose()
            .map_err(Failure::Final)
    }

    async fn list_once(&self, filter: &ListFilter) -> Result<(Listing, Vec<TagCheck>), Failure> {
        let client = self.client().await.map_err(Failure::Final)?;
        let failed = |e: tokio_postgres::Error| self.before_commit(&e, "cannot list records");
        let stmt = client
            .prepare_cached(&self.inner.sql.list)
            .await
            .map_err(failed)?;
        let rows = client.query(&stmt, &[]).await.map_err(failed)?;
        let mut revision = 0;
        let mut records = Vec::new();
        let mut checks = Vec::new();
        for row in rows {
            revision = row
                .try_get::<_, i64>(0)
                .ok()
                .and_then(|r| Revision::try_from(r).ok())
                .ok_or_else(|| {
                    Failure::Final(self.error(
                        ErrorKind::Storage,
                        "the store's revision counter is not a valid revision",
                    ))
                })?;
            let Some(id) = row.try_get::<_, Option<String>>(1).map_err(failed)? else {
                continue;
            };
            let (stored, check) = self.decode_checked(&id, &row, 2).map_err(Failure::Final)?;
            if filter.matches(&stored.record) {
                records.push(stored);
                checks.push(check);
            }
        }
        Ok((Listing { records, revision }, checks))
    }

    /// Up to `limit` log entries after `since`, in revision order.
    async fn changes_once(
        &self,
        since: Revision,
        limit: i64,
    ) -> Result<Vec<(ChangeEvent, Option<TagCheck>)>, Failure> {
        let client = self.client().await.map_err(Failure::Final)?;
        let failed =
            |e: tokio_postgres::Error| self.before_commit(&e, "cannot read the change log");
        let stmt = client
            .prepare_cached(&self.inner.sql.changes)
            .await
            .map_err(failed)?;
        let rows = client
            .query(&stmt, &[&sql_revision(since), &limit])
            .await
            .map_err(failed)?;
        let mut events = Vec::with_capacity(rows.len());
        for row in rows {
            let id: String = row.try_get(1).map_err(failed)?;
            let log_corrupt = |why: &str| {
                Failure::Final(
                    self.error(
                        ErrorKind::Storage,
                        format!("the change log entry of record \"{id}\" is corrupt: {why}"),
                    )
                    .with_context("record", id.clone()),
                )
            };
            let revision = row
                .try_get::<_, i64>(0)
                .ok()
                .and_then(positive_revision)
                .ok_or_else(|| log_corrupt("its revision is not a positive integer"))?;
            let deleted: bool = row.try_get(2).map_err(failed)?;
            let (change, check) = if deleted {
                (Change::Delete, None)
            } else {
                if row.try_get::<_, Option<i64>>(3).map_err(failed)?.is_none() {
                    return Err(log_corrupt("it records a write but the record is missing"));
                }
                let (stored, check) = self.decode_checked(&id, &row, 3).map_err(Failure::Final)?;
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
                    id,
                    change,
                },
                check,
            ));
        }
        Ok(events)
    }

    async fn changes_page(&self, since: Revision, limit: i64) -> Result<Vec<ChangeEvent>> {
        self.prepare().await?;
        let mut events = self
            .read("reading the change log", || self.changes_once(since, limit))
            .await?;
        let mut records = Vec::new();
        for (event, check) in &mut events {
            if let (Change::Put(stored), Some(check)) = (&mut event.change, check.take()) {
                // Fresh from the decoder: not shared yet.
                let stored = Arc::get_mut(stored).ok_or_else(|| {
                    Error::new(ErrorKind::Internal, "a fresh change event is shared")
                })?;
                records.push((stored, check));
            }
        }
        self.open_records(records).await?;
        Ok(events.into_iter().map(|(event, _)| event).collect())
    }

    /// Decodes `revision` and `body` from columns `at` and `at + 1` of `row`.
    fn decode_row(&self, id: &str, row: &Row, at: usize) -> Result<StoredRecord> {
        self.decode_checked(id, row, at).map(|(stored, _)| stored)
    }

    /// [`Self::decode_row`], with the tag (column `at + 2`) and what checking it needs.
    fn decode_checked(&self, id: &str, row: &Row, at: usize) -> Result<(StoredRecord, TagCheck)> {
        let revision = row
            .try_get::<_, i64>(at)
            .ok()
            .and_then(positive_revision)
            .ok_or_else(|| self.corrupt(id, "its revision is not a positive integer"))?;
        let body: String = row
            .try_get(at + 1)
            .map_err(|_| self.corrupt(id, "its body is not text"))?;
        let record = decode_body(id, &body).map_err(|why| self.corrupt(id, &why))?;
        let tag: Option<String> = row
            .try_get(at + 2)
            .map_err(|_| self.corrupt(id, "its integrity tag is not text"))?;
        Ok((StoredRecord { record, revision }, TagCheck::new(&body, tag)))
    }

    fn corrupt(&self, id: &str, why: &str) -> Error {
        self.error(
            ErrorKind::Storage,
            format!(
                "stored record \"{id}\" is corrupt: {why}; delete it, or overwrite it with a complete record"
            ),
        )
        .with_context("record", id)
    }

    // --- Keys -------------------------------------------------------------------

    /// The store's data keys, unwrapped: from the cache when it holds every id
    /// in `need`, else loaded (and, with `create`, a first data key made when
    /// the store has none). `None` without a key provider.
    async fn keyring(&self, need: &BTreeSet<String>, create: bool) -> Result<Option<Arc<Keyring>>> {
        let Some(provider) = self.inner.options.key_provider.clone() else {
            return Ok(None);
        };
        let mut cache = self.inner.keyring.lock().await;
        if let Some(keys) = cache.as_ref()
            && need.iter().all(|id| keys.contains(id))
        {
            return Ok(Some(Arc::clone(keys)));
        }
        let mut rows = self.read_data_keys().await?;
        if create && !rows.iter().any(|row| row.3) {
            let key = DataKey::generate()?;
            let wrapped = key
                .wrap_with(&*provider)
                .await
                .map_err(|e| e.with_context("store", "postgres"))?;
            let client = self.client().await?;
            client
                .execute(
                    &self.inner.sql.insert_data_key,
                    &[&key.id(), &wrapped.kek_id, &wrapped.bytes],
                )
                .await
                .map_err(|e| self.pg_error(&e, "cannot store a new data key"))?;
            rows = self.read_data_keys().await?;
        }
        let rows = rows
            .into_iter()
            .map(|(id, kek_id, bytes, active)| (id, WrappedKey { kek_id, bytes }, active))
            .collect();
        let Some(keyring) = crypto::unwrap_keyring(rows, &*provider, need, "postgres").await?
        else {
            return Ok(None);
        };
        let keyring = Arc::new(keyring);
        *cache = Some(Arc::clone(&keyring));
        Ok(Some(keyring))
    }

    /// Before the first operation with a key provider: migrates the store
    /// unless its active data key authenticates records (a store written
    /// before integrity tags, or one without a data key that holds records).
    /// The migration makes a new data key and, in one transaction that also
    /// locks the revision counter (so no write runs meanwhile), seals every
    /// value under it, tags every record and deletes the old key. Records
    /// it cannot read are left untagged (reads keep refusing them).
    async fn prepare(&self) -> Result<()> {
        let Some(provider) = self.inner.options.key_provider.clone() else {
            return Ok(());
        };
        if self.inner.prepared.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut last = None;
        // Twice: another host may migrate at the same moment (a conflict), then its key is read.
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
            if old.as_ref().is_some_and(|keys| keys.authenticates()) {
                self.inner.prepared.store(true, Ordering::Release);
                return Ok(());
            }
            let new_key = DataKey::generate()?;
            let wrapped = new_key
                .wrap_with(&*provider)
                .await
                .map_err(|e| e.with_context("store", "postgres"))?;
            let new_keys = Keyring::new(new_key);
            match self.migrate_keys(old.as_deref(), &new_keys, &wrapped).await {
                Ok(None) => return Ok(()),
                Ok(Some(records)) => {
                    tracing::info!(
                        records,
                        data_key = %new_keys.active_id(),
                        "migrated the PostgreSQL store: every record now carries an integrity tag"
                    );
                    *self.inner.keyring.lock().await = Some(Arc::new(new_keys));
                    self.inner.prepared.store(true, Ordering::Release);
                    return Ok(());
                }
                Err(e) if e.kind() == ErrorKind::Conflict => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::new(ErrorKind::Internal, "migration did not complete")))
    }

    /// The migration transaction of [`Self::prepare`]; `None` when there is
    /// nothing to migrate (no data key and no record: the first write makes an
    /// integrity key), else how many records were tagged.
    async fn migrate_keys(
        &self,
        old: Option<&Keyring>,
        new: &Keyring,
        wrapped: &WrappedKey,
    ) -> Result<Option<usize>> {
        let s = &self.inner.schema;
        let mut client = self.client().await?;
        let failed = |e: tokio_postgres::Error| self.pg_error(&e, "cannot migrate the store");
        let tx = client.transaction().await.map_err(failed)?;
        tx.query(&self.inner.sql.lock_head, &[])
            .await
            .map_err(failed)?;
        let ids: Vec<String> = tx
            .query(&format!("SELECT id FROM {s}.data_keys ORDER BY id"), &[])
            .await
            .map_err(failed)?
            .iter()
            .map(|row| row.try_get(0))
            .collect::<std::result::Result<_, _>>()
            .map_err(failed)?;
        if ids != old.map(Keyring::key_ids).unwrap_or_default() {
            return Err(self.error(
                ErrorKind::Conflict,
                "the store's data keys were changed by another host during the migration; nothing was changed",
            ));
        }
        let rows = tx
            .query(
                &format!("SELECT id, revision, body, mac FROM {s}.records"),
                &[],
            )
            .await
            .map_err(failed)?;
        if old.is_none() && rows.is_empty() {
            return Ok(None);
        }
        tx.execute(
            &format!(
                "INSERT INTO {s}.data_keys (id, kek_id, wrapped, active) VALUES ($1, $2, $3, false)"
            ),
            &[&new.active_id(), &wrapped.kek_id, &wrapped.bytes],
        )
        .await
        .map_err(failed)?;
        let update = format!("UPDATE {s}.records SET body = $1, mac = $2 WHERE id = $3");
        let mut tagged = 0;
        for row in rows {
            let id: String = row.try_get(0).map_err(failed)?;
            let resealed = self.decode_row(&id, &row, 1).and_then(|mut stored| {
                if crypto::record_has_secrets(&stored.record) {
                    crypto::check_sealed(&stored.record)?;
                    crypto::open_record(&mut stored.record, old)?;
                }
                let body = encode_body(&stored.record, Some(new))?;
                let tag = new.record_tag(&id, stored.revision, &crypto::BodyDigest::of(&body));
                Ok((body, tag))
            });
            match resealed {
                Ok((body, tag)) => {
                    tx.execute(&update, &[&body, &tag, &id])
                        .await
                        .map_err(failed)?;
                    tagged += 1;
                }
                Err(e) => {
                    tracing::warn!(record = %id, "not tagging an unreadable record during the migration: {e}");
                }
            }
        }
        tx.execute(
            &format!("DELETE FROM {s}.data_keys WHERE id <> $1"),
            &[&new.active_id()],
        )
        .await
        .map_err(failed)?;
        tx.execute(
            &format!("UPDATE {s}.data_keys SET active = true WHERE id = $1"),
            &[&new.active_id()],
        )
        .await
        .map_err(failed)?;
        tx.commit().await.map_err(failed)?;
        Ok(Some(tagged))
    }

    /// The store's data keys (ids, wrapping master key, age; never key bytes),
    /// what `inferlink keys status` shows.
    pub async fn data_keys(&self) -> Result<Vec<DataKeyInfo>> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT id, kek_id, extract(epoch FROM created)::bigint, active
                     FROM {}.data_keys ORDER BY created, id",
                    self.inner.schema
                ),
                &[],
            )
            .await
            .map_err(|e| self.pg_error(&e, "cannot read the data keys"))?;
        rows.iter()
            .map(|row| {
                Ok(DataKeyInfo {
                    id: row.try_get(0)?,
                    kek_id: row.try_get(1)?,
                    created: row.try_get(2)?,
                    active: row.try_get(3)?,
                })
            })
            .collect::<std::result::Result<_, tokio_postgres::Error>>()
            .map_err(|e| self.pg_error(&e, "cannot read the data keys"))
    }

    /// Re-wraps every data key not wrapped by `to`'s current master key
    /// (unwrapped with this store's key provider), in one transaction; returns
    /// how many. The store's half of `inferlink keys rotate`: values are not
    /// touched, and hosts that hold the data key keep working. A concurrent
    /// change of the data keys is an [`ErrorKind::Conflict`] and changes nothing.
    pub async fn rewrap_data_keys(&self, to: &dyn KeyProvider) -> Result<usize> {
        let provider = self.inner.options.key_provider.clone().ok_or_else(|| {
            self.error(
                ErrorKind::Config,
                format!(
                    "no encryption key is configured for this store; {}",
                    crypto::NO_KEY_HELP
                ),
            )
        })?;
        let target = to.key_id().await?;
        let mut updates = Vec::new();
        for (id, kek_id, bytes, _) in self.read_data_keys().await? {
            if kek_id == target {
                continue;
            }
            let old = WrappedKey { kek_id, bytes };
            let key = DataKey::unwrap_with(&id, &old, &*provider)
                .await
                .map_err(|e| e.with_context("store", "postgres"))?;
            let new = key
                .wrap_with(to)
                .await
                .map_err(|e| e.with_context("store", "postgres"))?;
            updates.push((id, old, new));
        }
        if updates.is_empty() {
            return Ok(0);
        }
        let mut client = self.client().await?;
        let failed = |e: tokio_postgres::Error| self.pg_error(&e, "cannot re-wrap the data keys");
        let tx = client.transaction().await.map_err(failed)?;
        let update = format!(
            "UPDATE {}.data_keys SET kek_id = $1, wrapped = $2
             WHERE id = $3 AND kek_id = $4 AND wrapped = $5",
            self.inner.schema
        );
        for (id, old, new) in &updates {
            let changed = tx
                .execute(
                    &update,
                    &[&new.kek_id, &new.bytes, id, &old.kek_id, &old.bytes],
                )
                .await
                .map_err(failed)?;
            if changed != 1 {
                return Err(self.error(
                    ErrorKind::Conflict,
                    format!(
                        "data key \"{id}\" was changed by another host while it was re-wrapped; nothing was changed, run the command again"
                    ),
                ));
            }
        }
        tx.commit().await.map_err(failed)?;
        *self.inner.keyring.lock().await = None;
        Ok(updates.len())
    }

    /// Every stored data key: id, master key id, wrapped bytes, active.
    async fn read_data_keys(&self) -> Result<Vec<(String, String, Vec<u8>, bool)>> {
        let client = self.client().await?;
        let rows = client
            .query(&self.inner.sql.data_keys, &[])
            .await
            .map_err(|e| self.pg_error(&e, "cannot read the data keys"))?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get(0)?,
                    row.try_get(1)?,
                    row.try_get(2)?,
                    row.try_get(3)?,
                ))
            })
            .collect::<std::result::Result<_, tokio_postgres::Error>>()
            .map_err(|e| self.pg_error(&e, "cannot read the data keys"))
    }

    /// The keyring for writing `ops`: with a key provider always (every
    /// record gets an integrity tag); without one `None`, and an error when a
    /// put has credential values.
    async fn keyring_for_writing(&self, ops: &[WriteOp]) -> Result<Option<Arc<Keyring>>> {
        self.prepare().await?;
        if self.inner.options.key_provider.is_some() {
            return self.keyring(&BTreeSet::new(), true).await;
        }
        let Some(first) = ops.iter().find_map(|op| match op {
            WriteOp::Put(record, _) if crypto::record_has_secrets(record) => Some(record),
            _ => None,
        }) else {
            return Ok(None);
        };
        match self.keyring(&BTreeSet::new(), true).await? {
            Some(keys) => Ok(Some(keys)),
            None => Err(crypto::no_key_error(&first.id).with_context("store", "postgres")),
        }
    }

    /// Checks records just read and opens their sealed credential values:
    /// the integrity tag of each (with a key provider), then the values, then
    /// the record rules of a write ([`super::check_stored`]). A record that
    /// fails is an error naming it.
    async fn open_records(&self, records: Vec<(&mut StoredRecord, TagCheck)>) -> Result<()> {
        let mut need = BTreeSet::new();
        let mut secrets = false;
        for (stored, check) in &records {
            crypto::check_sealed(&stored.record)
                .map_err(|e| e.with_context("store", "postgres"))?;
            let ids = crypto::sealed_key_ids(&stored.record);
            secrets |= !ids.is_empty();
            need.extend(ids);
            need.extend(check.key_id().map(str::to_owned));
        }
        // With a key provider every record must carry a valid tag (`prepare`
        // made sure the store has an integrity key); without one, tags cannot
        // be checked, and such a reader can open no credential value either.
        let verify = self.inner.options.key_provider.is_some();
        let keys = if records.is_empty() || (!verify && !secrets) {
            None
        } else {
            self.keyring(&need, false).await?
        };
        for (stored, check) in records {
            if verify {
                let id = &stored.record.id;
                let keys = keys.as_deref().ok_or_else(|| {
                    crypto::tampered_error(
                        id,
                        "the store holds no data key to check it with",
                        "postgres",
                    )
                })?;
                keys.verify_record_tag(id, stored.revision, &check, "postgres")?;
            }
            crypto::open_record(&mut stored.record, keys.as_deref())
                .map_err(|e| e.with_context("store", "postgres"))?;
            super::check_stored(&stored.record, "postgres")?;
        }
        Ok(())
    }

    // --- Watch ------------------------------------------------------------------

    /// Starts the listening connection unless it runs already.
    fn ensure_listener(&self) {
        let mut slot = self
            .inner
            .listener
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let listener = Listener {
            config: self.inner.listen_config.clone(),
            tls: self.inner.tls.clone(),
            channel: self.inner.channel.clone(),
            target: self.inner.target.clone(),
            wake: Arc::clone(&self.inner.wake),
            listens: Arc::clone(&self.inner.listens),
            connect_timeout: self.inner.options.connect_timeout,
            backoff: Backoff::new(
                self.inner.options.watch_backoff_min,
                self.inner.options.watch_backoff_max,
            ),
        };
        *slot = Some(tokio::spawn(listener.run()));
    }
}

/// One step of a write transaction.
enum WriteOp {
    Put(ExtensionRecord, PutMode),
    Delete(String, Option<Revision>),
}

impl WriteOp {
    fn id(&self) -> &str {
        match self {
            WriteOp::Put(record, _) => &record.id,
            WriteOp::Delete(id, _) => id,
        }
    }
}

/// Why a failed attempt may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    /// The connection failed before anything was committed.
    Connection,
    /// The server rolled the transaction back (serialization failure, deadlock).
    Serialization,
}

/// A failed attempt: retry-safe, or final.
enum Failure {
    Retry(Error, Cause),
    Final(Error),
}

impl Failure {
    fn map(self, f: impl FnOnce(Error) -> Error) -> Failure {
        match self {
            Failure::Retry(e, cause) => Failure::Retry(f(e), cause),
            Failure::Final(e) => Failure::Final(f(e)),
        }
    }
}

// --- Bodies -------------------------------------------------------------------
//
// The one pair of functions that turns a record into the stored body and
// back. Credential values are sealed in `encode_body`; `decode_body` leaves
// them sealed, and `PostgresStore::open_records` opens them after the read
// (opening may need to load data keys, which is asynchronous).

/// The stored body of `record`: compact JSON, credential values sealed with `keys`.
fn encode_body(record: &ExtensionRecord, keys: Option<&Keyring>) -> Result<String> {
    crypto::seal_record_body(record, keys)
}

/// Reads a stored body back; the error is a reason for a "corrupt" message,
/// never quoting the body (it holds credential values).
fn decode_body(id: &str, body: &str) -> std::result::Result<ExtensionRecord, String> {
    if !body.trim_start().starts_with('{') {
        return Err("its body is not a JSON object".to_owned());
    }
    let mut docs =
        parse_documents_as::<ExtensionRecord>(body, Format::Json, &ParseLimits::default())
            .map_err(|e| match e.path() {
                Some(path) => format!("its JSON body cannot be read at {path}"),
                None => "its JSON body cannot be read".to_owned(),
            })?;
    let record = match (docs.pop(), docs.is_empty()) {
        (Some(record), true) => record,
        _ => return Err("its body is not exactly one record".to_owned()),
    };
    if record.id != id {
        return Err("its body holds a record with another id".to_owned());
    }
    Ok(record)
}

fn positive_revision(value: i64) -> Option<Revision> {
    Revision::try_from(value).ok().filter(|r| *r > 0)
}

/// A revision as an SQL bigint (revisions above `i64::MAX` never exist, so saturating is exact for comparisons).
fn sql_revision(revision: Revision) -> i64 {
    i64::try_from(revision).unwrap_or(i64::MAX)
}

// --- Errors -------------------------------------------------------------------

/// The kind and a password-free description of a driver error.
fn classify(e: &tokio_postgres::Error) -> (ErrorKind, String) {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        let text = format!("{} (SQLSTATE {})", db.message(), code.code());
        let class = &code.code()[..2.min(code.code().len())];
        let kind = if serialization_failure(e) {
            return (
                ErrorKind::Unavailable,
                format!("PostgreSQL rolled the transaction back: {text}; try again"),
            );
        } else if *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW
            || *code == SqlState::READ_ONLY_SQL_TRANSACTION
            || class == "08"
            || class == "53"
        {
            ErrorKind::Unavailable
        } else if *code == SqlState::QUERY_CANCELED {
            ErrorKind::Timeout
        } else if class == "28" {
            ErrorKind::Unauthenticated
        } else if *code == SqlState::INSUFFICIENT_PRIVILEGE {
            ErrorKind::PermissionDenied
        } else if *code == SqlState::INVALID_CATALOG_NAME {
            ErrorKind::Config
        } else {
            ErrorKind::Storage
        };
        return (kind, text);
    }
    if e.is_closed() {
        return (
            ErrorKind::Unavailable,
            "the connection to PostgreSQL was closed".to_owned(),
        );
    }
    let source = std::error::Error::source(e).map(ToString::to_string);
    let io = std::error::Error::source(e).and_then(|s| s.downcast_ref::<std::io::Error>());
    let top = e.to_string();
    // A certificate that does not verify (rustls reports it as invalid data)
    // is a configuration problem; other I/O failures during the handshake are
    // the network's.
    let tls_rejected = top == "error performing TLS handshake"
        && io.is_none_or(|io| io.kind() == std::io::ErrorKind::InvalidData);
    if let Some(io) = io.filter(|_| !tls_rejected) {
        return (
            ErrorKind::Unavailable,
            format!("the connection to PostgreSQL failed: {io}"),
        );
    }
    let with_source = match &source {
        Some(s) => format!("{top}: {s}"),
        None => top.clone(),
    };
    match top.as_str() {
        "timeout waiting for server" => (
            ErrorKind::Unavailable,
            "PostgreSQL did not answer within the connect timeout".to_owned(),
        ),
        "error performing TLS handshake" => (
            ErrorKind::Config,
            format!(
                "the TLS handshake with PostgreSQL failed ({}); give the CA that signs the server's certificate (sslrootcert=… or PostgresOptions::tls_ca_file), or use sslmode=disable on a trusted network",
                source.as_deref().unwrap_or("no detail")
            ),
        ),
        "authentication error" => (ErrorKind::Unauthenticated, with_source),
        "invalid connection string" | "invalid configuration" => (ErrorKind::Config, with_source),
        _ => (ErrorKind::Storage, with_source),
    }
}

fn serialization_failure(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(code) if *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED
    )
}

/// Whether an error before commit may be retried, and why.
fn retry_cause(e: &tokio_postgres::Error) -> Option<Cause> {
    if serialization_failure(e) {
        return Some(Cause::Serialization);
    }
    match classify(e).0 {
        ErrorKind::Unavailable => Some(Cause::Connection),
        _ => None,
    }
}

/// The reason a connection string does not parse, without quoting any of it.
fn config_parse_detail(e: &tokio_postgres::Error) -> String {
    match std::error::Error::source(e).map(ToString::to_string) {
        Some(s) if s.starts_with("unknown option") || s.starts_with("invalid value for option") => {
            s
        }
        _ => "it is not a valid URL or key=value string".to_owned(),
    }
}

fn validate_options(options: &PostgresOptions) -> Result<()> {
    let config = |message: String| {
        Err(Error::new(ErrorKind::Config, message).with_context("store", "postgres"))
    };
    let schema = options.schema.as_str();
    let valid = !schema.is_empty()
        && schema.len() <= 48
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !schema.as_bytes()[0].is_ascii_digit()
        && !schema.starts_with("pg_");
    if !valid {
        return config(format!(
            "invalid PostgreSQL schema name \"{schema}\": use 1 to 48 lowercase ASCII letters, digits and underscores, not starting with a digit or \"pg_\""
        ));
    }
    if options.pool_size == 0 {
        return config("the PostgreSQL pool size must be at least 1".to_owned());
    }
    for (name, value) in [
        ("connect timeout", options.connect_timeout),
        ("acquire timeout", options.acquire_timeout),
        ("operation timeout", options.operation_timeout),
        ("watch backoff minimum", options.watch_backoff_min),
        ("watch resync interval", options.watch_resync_interval),
    ] {
        if value.is_zero() {
            return config(format!("the PostgreSQL {name} must be longer than zero"));
        }
    }
    if options.watch_backoff_max < options.watch_backoff_min {
        return config(
            "the PostgreSQL watch backoff maximum must not be shorter than its minimum".to_owned(),
        );
    }
    Ok(())
}

/// The key of the advisory lock that serialises migrations of one schema.
fn advisory_key(schema: &str) -> i64 {
    // FNV-1a: stable across builds and platforms, unlike std's hashers.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in b"inferlink-migrate:".iter().chain(schema.as_bytes()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

// --- Connection strings and TLS -------------------------------------------------

/// Whether a `key=value` connection string sets `sslmode` itself (URLs are
/// handled by [`split_tls_parameters`]).
fn names_sslmode(connection: &str) -> bool {
    !connection.starts_with("postgres://")
        && !connection.starts_with("postgresql://")
        && connection
            .split_whitespace()
            .any(|token| token == "sslmode" || token.starts_with("sslmode="))
}

/// The TLS mode when neither the options nor the connection string choose
/// one: [`TlsMode::Require`] (verified, so it cannot be stripped by someone
/// on the path) unless every host is on this machine (`localhost`, a
/// loopback address or a Unix socket), where [`TlsMode::Prefer`] keeps local
/// clusters without TLS working.
fn default_tls_mode(hosts: &[Host]) -> TlsMode {
    let local = |host: &Host| match host {
        Host::Tcp(name) => {
            let name = name.trim_start_matches('[').trim_end_matches(']');
            name.eq_ignore_ascii_case("localhost")
                || name
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        #[cfg(unix)]
        Host::Unix(_) => true,
    };
    if !hosts.is_empty() && hosts.iter().all(local) {
        TlsMode::Prefer
    } else {
        TlsMode::Require
    }
}

/// TLS settings found in a URL's query.
#[derive(Debug, Default, PartialEq, Eq)]
struct UrlTls {
    mode: Option<TlsMode>,
    ca_file: Option<PathBuf>,
}

/// Takes `sslmode` and `sslrootcert` out of a URL connection string (the
/// driver knows neither `verify-full` nor `sslrootcert`); other strings pass unchanged.
fn split_tls_parameters(connection: &str) -> Result<(String, UrlTls)> {
    let is_url = ["postgres://", "postgresql://"]
        .iter()
        .any(|p| connection.starts_with(p));
    let mut tls = UrlTls::default();
    let Some((base, query)) = connection.split_once('?').filter(|_| is_url) else {
        return Ok((connection.to_owned(), tls));
    };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decoded = || -> String {
            url::form_urlencoded::parse(format!("v={value}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        match key {
            "sslmode" => {
                tls.mode = Some(match decoded().as_str() {
                    "disable" => TlsMode::Disable,
                    "allow" | "prefer" => TlsMode::Prefer,
                    "require" | "verify-ca" | "verify-full" => TlsMode::Require,
                    _ => {
                        return Err(Error::new(
                            ErrorKind::Config,
                            "invalid PostgreSQL connection string: sslmode must be disable, allow, prefer, require, verify-ca or verify-full",
                        )
                        .with_context("store", "postgres"));
                    }
                });
            }
            "sslrootcert" => tls.ca_file = Some(PathBuf::from(decoded())),
            _ => kept.push(pair),
        }
    }
    let rebuilt = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rebuilt, tls))
}

/// `postgres://user@host:port,…/dbname`: the connection target without the password.
fn describe_target(config: &tokio_postgres::Config) -> String {
    let hosts = config.get_hosts();
    let ports = config.get_ports();
    let mut shown = Vec::with_capacity(hosts.len().max(1));
    for (i, host) in hosts.iter().enumerate() {
        let name = match host {
            Host::Tcp(name) if name.contains(':') => format!("[{name}]"),
            Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            Host::Unix(path) => path.display().to_string(),
        };
        let port = ports
            .get(i)
            .or_else(|| ports.first())
            .copied()
            .unwrap_or(5432);
        shown.push(format!("{name}:{port}"));
    }
    if shown.is_empty() {
        shown.push(format!(
            "localhost:{}",
            ports.first().copied().unwrap_or(5432)
        ));
    }
    let user = config
        .get_user()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let dbname = config.get_dbname().or(config.get_user()).unwrap_or("");
    format!("postgres://{user}{}/{dbname}", shown.join(","))
}

/// The rustls connector for `mode`: verified against `ca_file` or the system's roots.
fn tls_connector(mode: TlsMode, ca_file: Option<&Path>, target: &str) -> Result<MakeRustlsConnect> {
    let config_error = |message: String| {
        Error::new(ErrorKind::Config, message)
            .with_context("store", "postgres")
            .with_context("database", target.to_owned())
    };
    let mut roots = rustls::RootCertStore::empty();
    if let Some(path) = ca_file {
        let shown = path.display();
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|iter| iter.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(|e| {
                config_error(format!(
                    "cannot read the PostgreSQL CA file \"{shown}\": {e}"
                ))
            })?;
        if certs.is_empty() {
            return Err(config_error(format!(
                "the PostgreSQL CA file \"{shown}\" holds no PEM certificate"
            )));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| {
                config_error(format!(
                    "the PostgreSQL CA file \"{shown}\" holds an unusable certificate: {e}"
                ))
            })?;
        }
    } else if mode != TlsMode::Disable {
        let found = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(found.certs);
        if roots.is_empty() && mode == TlsMode::Require {
            return Err(config_error(
                "TLS is required but the system has no trusted CA certificates; give the CA file that signs the server's certificate (sslrootcert=… or PostgresOptions::tls_ca_file)".to_owned(),
            ));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| config_error(format!("cannot set up TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

// --- The listening connection --------------------------------------------------

/// A bounded exponential backoff with a little jitter.
#[derive(Debug, Clone)]
struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max,
            next: min,
        }
    }

    fn reset(&mut self) {
        self.next = self.min;
    }

    /// The next delay: the current step plus up to a quarter of it, then the step doubles.
    fn next_delay(&mut self) -> Duration {
        let step = self.next;
        self.next = (step * 2).min(self.max);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let jitter = step / 4 * (nanos % 1000) / 1000;
        (step + jitter).min(self.max.max(self.min))
    }
}

/// The task that keeps one `LISTEN` connection open and wakes watchers.
struct Listener {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    channel: String,
    target: String,
    wake: Arc<watch::Sender<u64>>,
    listens: Arc<AtomicU64>,
    connect_timeout: Duration,
    backoff: Backoff,
}

impl Listener {
    async fn run(mut self) {
        let mut failures = 0u32;
        loop {
            match self.listen_once().await {
                Ok(ended) => {
                    failures = 0;
                    self.backoff.reset();
                    tracing::warn!(database = %self.target, "lost the PostgreSQL listening connection ({ended}); reconnecting");
                }
                Err(e) => {
                    failures += 1;
                    if failures == 1 {
                        tracing::warn!(database = %self.target, error = %e, "cannot open the PostgreSQL listening connection; retrying with backoff");
                    } else {
                        tracing::debug!(database = %self.target, error = %e, attempt = failures, "PostgreSQL listening connection still unavailable");
                    }
                }
            }
            // Changes committed while the listener is down produce no
            // notification here; the wake-up after the next LISTEN makes
            // every watcher read the log for them.
            tokio::time::sleep(self.backoff.next_delay()).await;
        }
    }

    /// Connects, listens, and returns when the connection ends (with why).
    async fn listen_once(&self) -> std::result::Result<String, String> {
        let (client, mut connection) =
            match tokio::time::timeout(self.connect_timeout, self.config.connect(self.tls.clone()))
                .await
            {
                Err(_) => return Err(format!("no answer within {:?}", self.connect_timeout)),
                Ok(Err(e)) => return Err(classify(&e).1),
                Ok(Ok(pair)) => pair,
            };
        let wake = Arc::clone(&self.wake);
        let driver = tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(AsyncMessage::Notification(_)) => {
                        wake.send_modify(|n| *n = n.wrapping_add(1));
                    }
                    Ok(_) => {}
                    Err(e) => return classify(&e).1,
                }
            }
            "the server closed it".to_owned()
        });
        if let Err(e) = client
            .batch_execute(&format!("LISTEN {}", self.channel))
            .await
        {
            driver.abort();
            return Err(classify(&e).1);
        }
        self.listens.fetch_add(1, Ordering::Relaxed);
        // Anything committed before LISTEN took effect is found by this resync.
        self.wake.send_modify(|n| *n = n.wrapping_add(1));
        tracing::debug!(database = %self.target, channel = %self.channel, "listening for PostgreSQL store changes");
        let ended = driver
            .await
            .unwrap_or_else(|e| format!("its task ended: {e}"));
        drop(client);
        Ok(ended)
    }
}

/// The state of one watch stream.
struct WatchState {
    store: PostgresStore,
    wake: watch::Receiver<u64>,
    last: Revision,
    backlog: VecDeque<ChangeEvent>,
    /// Read the log before waiting (start, a full page, a failed read).
    pending: bool,
    backoff: Backoff,
}

impl WatchState {
    async fn next(&mut self) -> Option<Result<ChangeEvent>> {
        loop {
            if let Some(event) = self.backlog.pop_front() {
                if event.revision > self.last {
                    self.last = event.revision;
                    return Some(Ok(event));
                }
                continue;
            }
            if !self.pending {
                let resync = self.store.inner.options.watch_resync_interval;
                // A timeout is the periodic resync; an error means the store is gone.
                if let Ok(Err(_)) = tokio::time::timeout(resync, self.wake.changed()).await {
                    return None;
                }
            }
            // Mark the wake-up seen before reading, so a notification that
            // arrives during the read triggers another read.
            self.wake.borrow_and_update();
            match self.store.changes_page(self.last, PAGE).await {
                Ok(events) => {
                    self.pending = events.len() as i64 >= PAGE;
                    self.backlog = events.into();
                    self.backoff.reset();
                }
                Err(e) if e.is_retryable() => {
                    self.pending = true;
                    tracing::debug!(error = %e, "a PostgreSQL watcher cannot read the change log; retrying");
                    tokio::time::sleep(self.backoff.next_delay()).await;
                }
                Err(e) => {
                    self.pending = true;
                    tokio::time::sleep(self.backoff.next_delay()).await;
                    return Some(Err(e));
                }
            }
        }
    }
}

#[async_trait]
impl ChangeLog for PostgresStore {
    async fn changes_since(&self, since: Revision) -> Result<Vec<ChangeEvent>> {
        let mut all = Vec::new();
        let mut last = since;
        loop {
            let page = self.changes_page(last, PAGE).await?;
            let full = page.len() as i64 >= PAGE;
            if let Some(event) = page.last() {
                last = event.revision;
            }
            all.extend(page);
            if !full {
                return Ok(all);
            }
        }
    }
}

#[async_trait]
impl RegistryStore for PostgresStore {
    async fn get(&self, id: &str) -> Result<Option<StoredRecord>> {
        self.prepare()
            .await
            .map_err(|e| match e.context("record") {
                Some(_) => e,
                None => e.with_context("record", id.to_owned()),
            })?;
        let mut stored = self.read("reading a record", || self.get_once(id)).await?;
        self.open_records(stored.iter_mut().map(|(s, c)| (s, c.clone())).collect())
            .await?;
        Ok(stored.map(|(stored, _)| stored))
    }

    async fn list(&self, filter: &ListFilter) -> Result<Listing> {
        self.prepare().await?;
        let (mut listing, checks) = self
            .read("listing records", || self.list_once(filter))
            .await?;
        self.open_records(listing.records.iter_mut().zip(checks).collect())
            .await?;
        Ok(listing)
    }

    async fn write_all(&self, ops: Vec<StoreWriteOp>) -> Result<Vec<Revision>> {
        self.write(
            ops.into_iter()
                .map(|op| match op {
                    StoreWriteOp::Put(record, mode) => WriteOp::Put(record, mode),
                    StoreWriteOp::Delete { id, expected } => WriteOp::Delete(id, expected),
                })
                .collect(),
        )
        .await
    }

    async fn put(&self, record: ExtensionRecord, mode: PutMode) -> Result<Revision> {
        let mut revisions = self.write(vec![WriteOp::Put(record, mode)]).await?;
        revisions
            .pop()
            .ok_or_else(|| Error::new(ErrorKind::Internal, "a single write returned no revision"))
    }

    async fn put_all(&self, records: Vec<(ExtensionRecord, PutMode)>) -> Result<Vec<Revision>> {
        self.write(
            records
                .into_iter()
                .map(|(record, mode)| WriteOp::Put(record, mode))
                .collect(),
        )
        .await
    }

    async fn delete(&self, id: &str, expected: Option<Revision>) -> Result<Revision> {
        let mut revisions = self
            .write(vec![WriteOp::Delete(id.to_owned(), expected)])
            .await?;
        revisions
            .pop()
            .ok_or_else(|| Error::new(ErrorKind::Internal, "a single delete returned no revision"))
    }

    async fn watch(&self, since: Revision) -> Result<ChangeStream> {
        self.ensure_listener();
        let options = &self.inner.options;
        let state = WatchState {
            store: self.clone(),
            wake: self.inner.wake.subscribe(),
            last: since,
            backlog: VecDeque::new(),
            pending: true,
            backoff: Backoff::new(options.watch_backoff_min, options.watch_backoff_max),
        };
        Ok(Box::pin(futures_util::stream::unfold(
            state,
            |mut state| async move { state.next().await.map(|item| (item, state)) },
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_is_required_by_default_for_remote_hosts_only() {
        let mode = |connection: &str| {
            let config: tokio_postgres::Config = connection.parse().unwrap();
            default_tls_mode(config.get_hosts())
        };
        for remote in [
            "postgres://u@db.example.com/x",
            "postgres://u@10.0.0.5:5432/x",
            "host=db.internal user=u",
            "host=127.0.0.1,db.example.com user=u",
        ] {
            assert_eq!(mode(remote), TlsMode::Require, "{remote}");
        }
        for local in [
            "postgres://u@127.0.0.1:5432/x",
            "postgres://u@localhost/x",
            "postgres://u@[::1]:5432/x",
            "host=/var/run/postgresql user=u",
            "host=127.0.0.2 user=u",
        ] {
            assert_eq!(mode(local), TlsMode::Prefer, "{local}");
        }
        assert!(names_sslmode("host=db sslmode=prefer"));
        assert!(names_sslmode("host=db sslmode = disable"));
        assert!(!names_sslmode("host=db user=sslmodest"));
        assert!(!names_sslmode("postgres://u@db/x?sslmode=prefer"));
    }

    #[test]
    fn tls_parameters_are_taken_out_of_urls_only() {
        let (rest, tls) = split_tls_parameters(
            "postgres://u:p%40ss@db:5433/reg?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fca%20file.pem",
        )
        .unwrap();
        assert_eq!(rest, "postgres://u:p%40ss@db:5433/reg?application_name=x");
        assert_eq!(tls.mode, Some(TlsMode::Require));
        assert_eq!(tls.ca_file, Some(PathBuf::from("/etc/ca file.pem")));

        let (rest, tls) = split_tls_parameters("postgresql://h/db?sslmode=disable").unwrap();
        assert_eq!(rest, "postgresql://h/db");
        assert_eq!(tls.mode, Some(TlsMode::Disable));

        let kv = "host=h user=u password=secret sslmode=require";
        let (rest, tls) = split_tls_parameters(kv).unwrap();
        assert_eq!(rest, kv);
        assert_eq!(tls, UrlTls::default());

        let e = split_tls_parameters("postgres://u:hunter2@h/db?sslmode=sometimes").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn targets_never_show_the_password() {
        let config: tokio_postgres::Config = "postgres://alice:hunter2@db.example:6543/registry"
            .parse()
            .unwrap();
        assert_eq!(
            describe_target(&config),
            "postgres://alice@db.example:6543/registry"
        );
        let config: tokio_postgres::Config = "host=a,b port=1,2 user=bob password=hunter2"
            .parse()
            .unwrap();
        assert_eq!(describe_target(&config), "postgres://bob@a:1,b:2/bob");
    }

    #[tokio::test]
    async fn malformed_connection_strings_are_config_errors_without_the_password() {
        for bad in [
            "postgres://alice:hunter2@db:notaport/registry",
            "postgres://alice:hunter2@db/registry?frobnicate=1",
            "host=db password=hunter2 frobnicate=yes",
            "host='unterminated password=hunter2",
        ] {
            let e = PostgresStore::connect(bad, PostgresOptions::default())
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}: {e}");
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains("hunter2"), "{shown}");
        }
        let e = PostgresStore::connect(
            "postgres://alice:hunter2@db/registry?frobnicate=1",
            PostgresOptions::default(),
        )
        .await
        .unwrap_err();
        assert!(e.message().contains("unknown option `frobnicate`"), "{e}");
    }

    #[tokio::test]
    async fn bad_options_are_config_errors() {
        let cases = [
            PostgresOptions {
                schema: "Has-Caps".into(),
                ..Default::default()
            },
            PostgresOptions {
                schema: "pg_catalog".into(),
                ..Default::default()
            },
            PostgresOptions {
                schema: "1st".into(),
                ..Default::default()
            },
            PostgresOptions {
                schema: "x; DROP TABLE y".into(),
                ..Default::default()
            },
            PostgresOptions {
                pool_size: 0,
                ..Default::default()
            },
            PostgresOptions {
                watch_backoff_max: Duration::from_millis(1),
                ..Default::default()
            },
        ];
        for options in cases {
            let e = PostgresStore::connect("postgres://u@127.0.0.1:1/db", options.clone())
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{options:?}: {e}");
        }
    }

    #[tokio::test]
    async fn a_missing_or_empty_ca_file_is_a_config_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing-ca.pem");
        let empty = dir.path().join("empty-ca.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        for file in [&missing, &empty] {
            let options = PostgresOptions {
                tls_mode: Some(TlsMode::Require),
                tls_ca_file: Some(file.clone()),
                ..Default::default()
            };
            let e = PostgresStore::connect("postgres://u:hunter2@127.0.0.1:1/db", options)
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{e}");
            assert!(e.message().contains(&file.display().to_string()), "{e}");
            assert!(!e.to_string().contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn bodies_round_trip_and_bad_bodies_never_quote_values() {
        let record = crate::format::parse_records(
            "id: r\nservices:\n  - id: s\n    credentials:\n      - id: c\n        configuration:\n          KEY: planted-secret\n",
        )
        .unwrap()
        .remove(0);
        // Without keys a record with credential values cannot be encoded.
        let e = encode_body(&record, None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        let keys = Keyring::new(DataKey::generate().unwrap());
        let body = encode_body(&record, Some(&keys)).unwrap();
        assert!(!body.contains("planted-secret"), "{body}");
        assert!(body.contains(crypto::SEALED_PREFIX), "{body}");
        let mut back = decode_body("r", &body).unwrap();
        crypto::open_record(&mut back, Some(&keys)).unwrap();
        assert_eq!(back, record);
        assert!(
            decode_body("other", &body)
                .unwrap_err()
                .contains("another id")
        );
        for bad in [
            "[]",
            "{\"id\": \"r\", ",
            r#"{"id":"r","services":[{"id":"s","credentials":[{"id":"c","scope":"planted-secret"}]}]}"#,
        ] {
            let why = decode_body("r", bad).unwrap_err();
            assert!(!why.contains("planted-secret"), "{why}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let delays: Vec<_> = (0..5).map(|_| b.next_delay()).collect();
        assert!(delays[0] >= Duration::from_millis(100) && delays[0] <= Duration::from_millis(125));
        assert!(delays[1] >= Duration::from_millis(200) && delays[1] <= Duration::from_millis(250));
        assert!(delays[2..].iter().all(|d| *d <= Duration::from_millis(350)));
        assert!(delays[3] >= Duration::from_millis(350));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(125));
    }

    #[test]
    fn advisory_keys_are_stable_and_distinct() {
        assert_eq!(advisory_key("inferlink"), advisory_key("inferlink"));
        assert_ne!(advisory_key("inferlink"), advisory_key("inferlink2"));
    }
}
