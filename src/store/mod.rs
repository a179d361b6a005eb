//! Pluggable record stores.
//!
//! [`RegistryStore`] is the one small trait every backend implements: get,
//! list, put with compare-and-set, delete, and watch. Each write gets a new
//! revision from one store-wide counter, so revisions increase across all
//! records, and `watch(since)` can resume from any revision it has seen.
//!
//! Shipped stores: [`MemoryStore`] (tests, ephemeral hosts); with the
//! default `store-sqlite` feature, `SqliteStore` (the embedded durable
//! default); with the `store-postgres` feature, `PostgresStore` (one
//! PostgreSQL database shared by many hosts). Every store runs the
//! conformance suite in `inferlink-testkit`.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use futures_core::Stream;

use crate::error::{Error, ErrorKind, Result};
use crate::model::ExtensionRecord;

mod feed;
mod memory;
#[cfg(feature = "store-postgres")]
mod postgres;
#[cfg(feature = "store-sqlite")]
mod sqlite;

pub use feed::ChangeLog;
pub use memory::MemoryStore;
#[cfg(feature = "store-postgres")]
pub use postgres::{PostgresOptions, PostgresStore, TlsMode};
#[cfg(feature = "store-sqlite")]
pub use sqlite::{SqliteOptions, SqliteStore};

/// A store-wide, strictly increasing write counter. `0` means "before any write".
pub type Revision = u64;

/// A record as stored, with the revision of its last write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// The record.
    pub record: ExtensionRecord,
    /// The revision of the write that produced this version.
    pub revision: Revision,
}

/// How a put treats an existing record with the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PutMode {
    /// Write only if no record has this id; otherwise [`ErrorKind::AlreadyExists`].
    Create,
    /// Write whether or not the record exists.
    Overwrite,
    /// Write only if the stored record is at exactly this revision; otherwise
    /// [`ErrorKind::Conflict`] (or [`ErrorKind::NotFound`] when it is gone).
    Update(Revision),
}

/// One write of a [`RegistryStore::write_all`] batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// Validate and write a record, as [`RegistryStore::put`] does.
    Put(ExtensionRecord, PutMode),
    /// Delete a record, as [`RegistryStore::delete`] does.
    Delete {
        /// The id of the record.
        id: String,
        /// With a revision, delete only if the record is still at it (compare-and-set).
        expected: Option<Revision>,
    },
}

impl WriteOp {
    /// The id of the record this write changes.
    pub fn id(&self) -> &str {
        match self {
            WriteOp::Put(record, _) => &record.id,
            WriteOp::Delete { id, .. } => id,
        }
    }
}

/// Which records a [`RegistryStore::list`] returns. Empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Only records with this product.
    pub product: Option<String>,
    /// Only records in this zone.
    pub zone: Option<String>,
    /// Only records with a service of this resource.
    pub service_resource: Option<String>,
    /// Only records with a service of this category.
    pub service_category: Option<String>,
}

impl ListFilter {
    /// A filter that keeps every record.
    pub fn all() -> Self {
        ListFilter::default()
    }

    /// True when `record` passes every set field.
    pub fn matches(&self, record: &ExtensionRecord) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        eq(&self.product, &record.product)
            && eq(&self.zone, &record.zone)
            && (self.service_resource.is_none() && self.service_category.is_none()
                || record.services.iter().any(|s| {
                    eq(&self.service_resource, &s.resource)
                        && eq(&self.service_category, &s.category)
                }))
    }
}

/// The result of a list: matching records (sorted by id) and the store's revision at that moment.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Matching records, sorted by id.
    pub records: Vec<StoredRecord>,
    /// The store's latest revision when the listing was taken; pass it to
    /// [`RegistryStore::watch`] to follow changes from there without a gap.
    pub revision: Revision,
}

/// What happened to a record.
#[derive(Debug, Clone)]
pub enum Change {
    /// Created or replaced; the new version.
    Put(Arc<StoredRecord>),
    /// Deleted.
    Delete,
}

/// One change to the store.
#[derive(Debug, Clone)]
pub struct ChangeEvent {
    /// The revision of this change.
    pub revision: Revision,
    /// The record id.
    pub id: String,
    /// What happened.
    pub change: Change,
}

/// A stream of change events in increasing revision order.
pub type ChangeStream = Pin<Box<dyn Stream<Item = Result<ChangeEvent>> + Send>>;

/// The storage backend of a registry.
///
/// Implementations must be safe to share between tasks and must make each
/// put and delete atomic: a reader sees a record entirely before or entirely
/// after a write, and compare-and-set checks happen in the same transaction as
/// the write.
///
/// Secrets: a credential value of `<hidden>` in a put means "keep the stored
/// value" (see [`ExtensionRecord::restore_hidden_secrets`]); on
/// [`PutMode::Create`] it is an [`ErrorKind::InvalidInput`] error.
#[async_trait]
pub trait RegistryStore: fmt::Debug + Send + Sync + 'static {
    /// The record with this id, if any.
    async fn get(&self, id: &str) -> Result<Option<StoredRecord>>;

    /// The records passing `filter`, sorted by id, with the store's current revision.
    async fn list(&self, filter: &ListFilter) -> Result<Listing>;

    /// Validates and writes `record`; returns the revision of the write.
    async fn put(&self, record: ExtensionRecord, mode: PutMode) -> Result<Revision>;

    /// Writes several records, each with its own mode; returns their revisions in order.
    ///
    /// Memory, SQLite and PostgreSQL stores write all of them in one transaction, or none
    /// (the error names the failing record in its `record` context). This
    /// provided version, for stores that do not override it, writes them one
    /// by one and stops at the first error.
    async fn put_all(&self, records: Vec<(ExtensionRecord, PutMode)>) -> Result<Vec<Revision>> {
        let mut revisions = Vec::with_capacity(records.len());
        for (record, mode) in records {
            let id = record.id.clone();
            revisions.push(
                self.put(record, mode)
                    .await
                    .map_err(|e| e.with_context("record", id))?,
            );
        }
        Ok(revisions)
    }

    /// [`RegistryStore::write_all`] for puts whose records inferlink itself
    /// validated just before ([`ExtensionRecord::validate`], when parsing an
    /// input or planning an import), so a store may skip validating them a
    /// second time. Only this crate can make a [`Validated`]; the provided
    /// version validates again (calls `write_all`).
    #[doc(hidden)]
    async fn write_all_validated(
        &self,
        ops: Vec<WriteOp>,
        proof: Validated,
    ) -> Result<Vec<Revision>> {
        let _ = proof;
        self.write_all(ops).await
    }

    /// Applies puts and deletes in order; returns the revision of each, in order.
    ///
    /// Later writes see the effect of earlier ones (a delete then a create of
    /// one id works). Memory and SQLite stores apply the whole batch in one
    /// transaction, or nothing (the error names the failing record in its
    /// `record` context), and publish its changes to watchers only after it
    /// has committed. This provided version, for stores that do not override
    /// it, applies the writes one by one and stops at the first error, so it is
    /// **not** atomic: stores that can should override it.
    async fn write_all(&self, ops: Vec<WriteOp>) -> Result<Vec<Revision>> {
        let mut revisions = Vec::with_capacity(ops.len());
        for op in ops {
            let id = op.id().to_owned();
            let revision = match op {
                WriteOp::Put(record, mode) => self.put(record, mode).await,
                WriteOp::Delete { id, expected } => self.delete(&id, expected).await,
            };
            revisions.push(revision.map_err(|e| e.with_context("record", id))?);
        }
        Ok(revisions)
    }

    /// Deletes the record with this id; with `expected`, only if it is at that revision.
    ///
    /// Returns the revision of the delete. [`ErrorKind::NotFound`] when absent,
    /// [`ErrorKind::Conflict`] when at another revision.
    async fn delete(&self, id: &str, expected: Option<Revision>) -> Result<Revision>;

    /// Every change with a revision greater than `since`, then live changes as they commit.
    ///
    /// The stream yields at least the latest state of every record changed after
    /// `since` (intermediate versions of one record may be skipped), in
    /// increasing revision order. `watch(0)` replays the current contents,
    /// including deletions of records that existed before.
    async fn watch(&self, since: Revision) -> Result<ChangeStream>;
}

/// Conveniences over any [`RegistryStore`].
#[async_trait]
pub trait RegistryStoreExt: RegistryStore {
    /// The record with this id, or [`ErrorKind::NotFound`].
    async fn get_required(&self, id: &str) -> Result<StoredRecord> {
        self.get(id)
            .await?
            .ok_or_else(|| Error::not_found(format!("no record with id \"{id}\"")))
    }

    /// Reads the record, applies `edit` and writes it back with compare-and-set,
    /// retrying on [`ErrorKind::Conflict`] up to `attempts` times.
    async fn update_with<F>(&self, id: &str, attempts: usize, mut edit: F) -> Result<Revision>
    where
        F: FnMut(&mut ExtensionRecord) -> Result<()> + Send,
    {
        let mut last = None;
        for _ in 0..attempts.max(1) {
            let current = self.get_required(id).await?;
            let mut record = current.record;
            edit(&mut record)?;
            match self.put(record, PutMode::Update(current.revision)).await {
                Err(e) if e.kind() == ErrorKind::Conflict => last = Some(e),
                other => return other,
            }
        }
        Err(last.unwrap_or_else(|| Error::new(ErrorKind::Conflict, "update did not complete")))
    }
}

impl<T: RegistryStore + ?Sized> RegistryStoreExt for T {}

/// Proof that the records of a write were validated by inferlink moments
/// before ([`RegistryStore::write_all_validated`]); only this crate makes one.
#[derive(Debug, Clone, Copy)]
pub struct Validated(());

impl Validated {
    /// Made only where every record of the write has just passed
    /// [`ExtensionRecord::validate`] and has not changed since.
    pub(crate) fn checked() -> Validated {
        Validated(())
    }
}

/// Checks a put against the currently stored version (shared by every store).
///
/// Validates `record`, enforces `mode` against `current`, and restores
/// `<hidden>` credential values from `current`.
pub fn prepare_put(
    record: &mut ExtensionRecord,
    mode: PutMode,
    current: Option<&StoredRecord>,
) -> Result<()> {
    prepare_checked_put(record, mode, current, None)
}

/// [`prepare_put`], skipping the validation when `validated` proves it ran.
pub(crate) fn prepare_checked_put(
    record: &mut ExtensionRecord,
    mode: PutMode,
    current: Option<&StoredRecord>,
    validated: Option<Validated>,
) -> Result<()> {
    if validated.is_none() {
        record.validate()?;
    }
    match (mode, current) {
        (PutMode::Create, Some(_)) => {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("a record with id \"{}\" already exists", record.id),
            ));
        }
        (PutMode::Update(_), None) => {
            return Err(Error::not_found(format!(
                "no record with id \"{}\" to update",
                record.id
            )));
        }
        (PutMode::Update(expected), Some(stored)) if stored.revision != expected => {
            return Err(conflict(&record.id, expected, stored.revision));
        }
        _ => {}
    }
    let previous = match mode {
        PutMode::Create => None,
        _ => current.map(|c| &c.record),
    };
    record.restore_hidden_secrets(previous)
}

/// Checks a record read back from a store with the rules of a write
/// ([`ExtensionRecord::validate`]), so a row changed outside inferlink (an
/// edited SQLite file, an `UPDATE` by a database writer) is an
/// [`ErrorKind::Storage`] error naming the record and the offending path,
/// never data. Cheap: no parsing beyond what `validate` does (each endpoint
/// URL once). `store` names the store in the error's context.
pub fn check_stored(record: &ExtensionRecord, store: &'static str) -> Result<()> {
    record.validate().map_err(|e| {
        let at = e.path().map(|p| format!(" at {p}")).unwrap_or_default();
        Error::new(
            ErrorKind::Storage,
            format!(
                "stored record {} fails validation{at} ({}): it was changed outside inferlink; delete it, or overwrite it with a valid record",
                crate::model::preview(&record.id),
                e.message()
            ),
        )
        .with_context("store", store)
        .with_context("record", record.id.clone())
    })
}

/// Checks a delete against the currently stored revision (shared by every store).
pub fn check_delete(id: &str, expected: Option<Revision>, current: Option<Revision>) -> Result<()> {
    match (expected, current) {
        (_, None) => Err(Error::not_found(format!("no record with id \"{id}\""))),
        (Some(want), Some(have)) if want != have => Err(conflict(id, want, have)),
        _ => Ok(()),
    }
}

fn conflict(id: &str, expected: Revision, actual: Revision) -> Error {
    Error::new(
        ErrorKind::Conflict,
        format!(
            "record \"{id}\" is at revision {actual}, not {expected}: it was changed by someone else; read it again and retry"
        ),
    )
}
