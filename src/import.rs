//! Importing a set of records: plan what changes, then apply it all at once.
//!
//! An import makes the store hold the given records, for example the
//! contents of a git repository of record files. It runs in two steps:
//!
//! 1. [`ImportPlan::new`] (or [`ImportPlan::for_store`]) compares the records
//!    with a listing of the store and decides, per id, whether the import
//!    **creates** it, **updates** it, leaves it **unchanged**, or (with
//!    [`ImportOptions::prune`]) **deletes** it because the input does not have
//!    it. Every problem — an invalid record, an id given twice, a `<hidden>`
//!    credential value with no stored value to keep — is found here, before
//!    anything is written.
//! 2. [`ImportPlan::apply`] writes every change in one
//!    [`RegistryStore::write_all`] batch: all or nothing on the memory and
//!    SQLite stores. Each write is a compare-and-set against the revision the
//!    plan was made from (create only if still absent, update and delete only
//!    at the planned revision), so a record changed by someone else between
//!    planning and applying makes the whole import fail with
//!    [`ErrorKind::Conflict`] instead of overwriting that change.
//!
//! A credential value of `<hidden>` in the input means "keep the stored
//! value", as everywhere else: a record whose only difference is a hidden
//! secret is unchanged. For a record that does not exist yet there is no
//! stored value to keep, and the plan fails naming the value's path.
//!
//! ```
//! use inferlink::import::{ImportItem, ImportOptions, ImportPlan};
//! use inferlink::{MemoryStore, Registry, format};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let registry = Registry::open(MemoryStore::new()).await?;
//! let text = "id: minio\nproduct: minio\n---\nid: mlflow\nproduct: mlflow\n";
//! let items = format::parse_records(text)?
//!     .into_iter()
//!     .map(|record| ImportItem::new(record, "records.yaml"))
//!     .collect();
//! let plan = ImportPlan::for_store(registry.store().as_ref(), items, ImportOptions::default()).await?;
//! assert_eq!(plan.ids(inferlink::import::ImportAction::Create).count(), 2);
//! plan.apply(&registry).await?;
//! assert!(registry.get("mlflow").is_some());
//! # Ok::<(), inferlink::Error>(())
//! # }).unwrap();
//! ```

use std::collections::HashMap;
use std::fmt;

use crate::error::{Error, ErrorKind, Result};
use crate::model::ExtensionRecord;
use crate::registry::Registry;
use crate::store::{ListFilter, Listing, PutMode, RegistryStore, Revision, Validated, WriteOp};

/// A record to import, with the name of its source (a file name) for messages and reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportItem {
    /// The record.
    pub record: ExtensionRecord,
    /// Where it came from, e.g. `records/minio.yaml` or `standard input`.
    pub source: String,
}

impl ImportItem {
    /// A record read from `source`.
    pub fn new(record: ExtensionRecord, source: impl Into<String>) -> Self {
        ImportItem {
            record,
            source: source.into(),
        }
    }
}

/// Settings of an import.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Also delete every stored record that the input does not hold.
    pub prune: bool,
}

/// What an import does to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ImportAction {
    /// The record is not stored yet: it is created.
    Create,
    /// The record is stored with different contents: it is replaced.
    Update,
    /// The record is stored with the same contents: nothing is written.
    Unchanged,
    /// The record is stored but not in the input, and pruning is on: it is deleted.
    Delete,
}

impl ImportAction {
    /// Every action, in report order.
    pub const ALL: [ImportAction; 4] = [
        ImportAction::Create,
        ImportAction::Update,
        ImportAction::Unchanged,
        ImportAction::Delete,
    ];

    /// The action as a verb: `create`, `update`, `unchanged`, `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            ImportAction::Create => "create",
            ImportAction::Update => "update",
            ImportAction::Unchanged => "unchanged",
            ImportAction::Delete => "delete",
        }
    }

    /// The action once done: `created`, `updated`, `unchanged`, `deleted`.
    pub fn done(self) -> &'static str {
        match self {
            ImportAction::Create => "created",
            ImportAction::Update => "updated",
            ImportAction::Unchanged => "unchanged",
            ImportAction::Delete => "deleted",
        }
    }
}

impl fmt::Display for ImportAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The planned change of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedChange {
    id: String,
    action: ImportAction,
    source: Option<String>,
    base: Option<Revision>,
    /// The record to write (create, update), `<hidden>` values already restored.
    record: Option<ExtensionRecord>,
}

impl PlannedChange {
    /// The record id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// What the import does to it.
    pub fn action(&self) -> ImportAction {
        self.action
    }

    /// The source the record came from; `None` for a deletion.
    pub fn source(&self) -> Option<&str> {
        self.source.as_deref()
    }

    /// The stored revision the plan was made from; `None` for a creation.
    pub fn base_revision(&self) -> Option<Revision> {
        self.base
    }

    /// The write that carries out this change, if any.
    fn write(&self) -> Option<WriteOp> {
        match (self.action, &self.record, self.base) {
            (ImportAction::Create, Some(record), _) => {
                Some(WriteOp::Put(record.clone(), PutMode::Create))
            }
            (ImportAction::Update, Some(record), Some(base)) => {
                Some(WriteOp::Put(record.clone(), PutMode::Update(base)))
            }
            (ImportAction::Delete, _, Some(base)) => Some(WriteOp::Delete {
                id: self.id.clone(),
                expected: Some(base),
            }),
            _ => None,
        }
    }
}

/// Every change an import makes, sorted by record id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportPlan {
    changes: Vec<PlannedChange>,
    base: Revision,
}

impl ImportPlan {
    /// Plans the import of `items` into a store whose complete contents are `current`
    /// (a listing with [`ListFilter::all`]).
    ///
    /// Errors ([`ErrorKind::InvalidInput`]) carry the item's source as `file`
    /// context and its id as `record` context: an invalid record (with the
    /// field path), an id that appears twice (naming both sources), a
    /// `<hidden>` credential value for which no stored value exists (with the
    /// value's path).
    pub fn new(
        items: Vec<ImportItem>,
        current: &Listing,
        options: ImportOptions,
    ) -> Result<ImportPlan> {
        let stored: HashMap<&str, _> = current
            .records
            .iter()
            .map(|s| (s.record.id.as_str(), s))
            .collect();
        let mut seen: HashMap<String, String> = HashMap::with_capacity(items.len());
        let mut changes = Vec::with_capacity(items.len());
        for ImportItem { record, source } in items {
            let id = record.id.clone();
            let located = |e: Error| {
                e.with_context("file", source.clone())
                    .with_context("record", id.clone())
            };
            record.validate().map_err(located)?;
            if let Some(first) = seen.get(&id) {
                return Err(located(Error::invalid_at(
                    "id",
                    format!("record id \"{id}\" is given twice: also in {first}"),
                )));
            }
            seen.insert(id.clone(), source.clone());
            let mut wanted = record;
            let change = match stored.get(id.as_str()) {
                None => {
                    wanted
                        .restore_hidden_secrets(None)
                        .map_err(|e| located(nothing_to_keep(e, &id)))?;
                    PlannedChange {
                        id,
                        action: ImportAction::Create,
                        source: Some(source),
                        base: None,
                        record: Some(wanted),
                    }
                }
                Some(current) => {
                    wanted
                        .restore_hidden_secrets(Some(&current.record))
                        .map_err(located)?;
                    let same = wanted == current.record;
                    PlannedChange {
                        id,
                        action: if same {
                            ImportAction::Unchanged
                        } else {
                            ImportAction::Update
                        },
                        source: Some(source),
                        base: Some(current.revision),
                        record: (!same).then_some(wanted),
                    }
                }
            };
            changes.push(change);
        }
        if options.prune {
            for current in &current.records {
                if !seen.contains_key(&current.record.id) {
                    changes.push(PlannedChange {
                        id: current.record.id.clone(),
                        action: ImportAction::Delete,
                        source: None,
                        base: Some(current.revision),
                        record: None,
                    });
                }
            }
        }
        changes.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(ImportPlan {
            changes,
            base: current.revision,
        })
    }

    /// Lists every record of `store` and plans the import of `items` against it.
    pub async fn for_store(
        store: &dyn RegistryStore,
        items: Vec<ImportItem>,
        options: ImportOptions,
    ) -> Result<ImportPlan> {
        let current = store.list(&ListFilter::all()).await?;
        ImportPlan::new(items, &current, options)
    }

    /// Every planned change, sorted by record id.
    pub fn changes(&self) -> &[PlannedChange] {
        &self.changes
    }

    /// The ids of the records with this action, sorted.
    pub fn ids(&self, action: ImportAction) -> impl Iterator<Item = &str> {
        self.changes
            .iter()
            .filter(move |c| c.action == action)
            .map(|c| c.id.as_str())
    }

    /// True when applying the plan writes something (it creates, updates or deletes).
    pub fn has_writes(&self) -> bool {
        self.changes
            .iter()
            .any(|c| c.action != ImportAction::Unchanged)
    }

    /// The store's revision in the listing the plan was made from.
    pub fn base_revision(&self) -> Revision {
        self.base
    }

    /// The writes that carry out the plan, in record id order.
    pub fn writes(&self) -> Vec<WriteOp> {
        self.changes
            .iter()
            .filter_map(PlannedChange::write)
            .collect()
    }

    /// Applies the plan through `registry` (visible to its resolution when this
    /// returns); returns the revision of each write, in [`ImportPlan::writes`] order.
    ///
    /// See [`ImportPlan::apply_to_store`] for the errors.
    pub async fn apply(&self, registry: &Registry) -> Result<Vec<Revision>> {
        if !self.has_writes() {
            return Ok(Vec::new());
        }
        // `ImportPlan::new` validated every record it writes.
        registry
            .write_ops(self.writes(), Some(Validated::checked()))
            .await
            .map_err(|e| self.explain(e))
    }

    /// Applies the plan to `store` in one [`RegistryStore::write_all`] batch.
    ///
    /// A record created, changed or deleted by someone else since the plan was
    /// made fails the import with [`ErrorKind::Conflict`] naming it; on the
    /// memory and SQLite stores nothing of the import is written then. A plan
    /// without writes writes nothing and returns no revisions.
    pub async fn apply_to_store(&self, store: &dyn RegistryStore) -> Result<Vec<Revision>> {
        if !self.has_writes() {
            return Ok(Vec::new());
        }
        store
            .write_all_validated(self.writes(), Validated::checked())
            .await
            .map_err(|e| self.explain(e))
    }

    /// Turns the store's answer to a compare-and-set that lost into a `Conflict` naming the record.
    fn explain(&self, e: Error) -> Error {
        let Some(change) = e
            .context("record")
            .and_then(|id| self.changes.iter().find(|c| c.id == id))
        else {
            return e;
        };
        let what = match (change.action, e.kind()) {
            (ImportAction::Create, ErrorKind::AlreadyExists) => "was created",
            (ImportAction::Update | ImportAction::Delete, ErrorKind::NotFound) => "was deleted",
            (_, ErrorKind::Conflict) => "was changed",
            _ => return e,
        };
        let planned = match change.base {
            Some(revision) => format!("at revision {revision}"),
            None => "absent".to_owned(),
        };
        let mut conflict = Error::new(
            ErrorKind::Conflict,
            format!(
                "record \"{}\" {what} by someone else after this import was planned (it was {planned}); plan the import again",
                change.id
            ),
        )
        .with_context("record", change.id.clone());
        if let Some(source) = &change.source {
            conflict = conflict.with_context("file", source.clone());
        }
        conflict
    }
}

/// Rewords the `<hidden>` error of a record that is not stored yet.
fn nothing_to_keep(e: Error, id: &str) -> Error {
    let Some(path) = e.path() else {
        return e;
    };
    Error::invalid_at(
        path,
        format!(
            "is the placeholder \"<hidden>\", but record \"{id}\" is not stored yet, so there is no stored value to keep; \
             give the real value (records exported with secrets hidden can only update records that exist)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format;
    use crate::store::{MemoryStore, RegistryStoreExt};

    const RECORDS: &str = "
id: a
product: minio
services:
  - id: s3
    resource: s3
    credentials:
      - id: admin
        configuration:
          KEY: secret-a
---
id: b
product: mlflow
---
id: c
product: kserve
";

    fn items(text: &str, source: &str) -> Vec<ImportItem> {
        format::parse_records(text)
            .unwrap()
            .into_iter()
            .map(|r| ImportItem::new(r, source))
            .collect()
    }

    async fn seeded() -> MemoryStore {
        let store = MemoryStore::new();
        let records = format::parse_records(RECORDS).unwrap();
        store
            .put_all(records.into_iter().map(|r| (r, PutMode::Create)).collect())
            .await
            .unwrap();
        store
    }

    fn actions(plan: &ImportPlan) -> Vec<(String, ImportAction)> {
        plan.changes()
            .iter()
            .map(|c| (c.id().to_owned(), c.action()))
            .collect()
    }

    #[tokio::test]
    async fn plans_create_update_unchanged_and_delete() {
        let store = seeded().await;
        let input = "
id: a
product: minio
services:
  - id: s3
    resource: s3
    credentials:
      - id: admin
        configuration:
          KEY: <hidden>
---
id: b
product: mlflow
version: '2.0'
---
id: d
product: triton
";
        let plan = ImportPlan::for_store(&store, items(input, "in.yaml"), ImportOptions::default())
            .await
            .unwrap();
        assert_eq!(
            actions(&plan),
            [
                ("a".to_owned(), ImportAction::Unchanged),
                ("b".to_owned(), ImportAction::Update),
                ("d".to_owned(), ImportAction::Create),
            ]
        );
        let pruning = ImportPlan::for_store(
            &store,
            items(input, "in.yaml"),
            ImportOptions { prune: true },
        )
        .await
        .unwrap();
        assert_eq!(pruning.ids(ImportAction::Delete).collect::<Vec<_>>(), ["c"]);
        let revisions = pruning.apply_to_store(&store).await.unwrap();
        assert_eq!(revisions.len(), 3, "b, c and d are written; a is not");
        let listing = store.list(&ListFilter::all()).await.unwrap();
        let ids: Vec<_> = listing
            .records
            .iter()
            .map(|s| s.record.id.as_str())
            .collect();
        assert_eq!(ids, ["a", "b", "d"]);
        let a = store.get_required("a").await.unwrap();
        assert_eq!(
            a.record.services[0].credentials[0].configuration["KEY"].expose(),
            "secret-a"
        );
        assert_eq!(store.get_required("b").await.unwrap().record.version, "2.0");
        // Applying the same input again changes nothing.
        let again = ImportPlan::for_store(
            &store,
            items(input, "in.yaml"),
            ImportOptions { prune: true },
        )
        .await
        .unwrap();
        assert!(!again.has_writes(), "{again:?}");
        assert!(again.apply_to_store(&store).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_hidden_value_without_a_stored_record_fails_naming_file_and_path() {
        let store = MemoryStore::new();
        let input = "id: a\nservices:\n  - id: s\n    credentials:\n      - id: c\n        configuration:\n          KEY: <hidden>\n";
        let e = ImportPlan::for_store(&store, items(input, "a.yaml"), ImportOptions::default())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert_eq!(
            e.path(),
            Some("services[0].credentials[0].configuration.KEY")
        );
        assert_eq!(e.context("file"), Some("a.yaml"));
        assert_eq!(e.context("record"), Some("a"));
    }

    #[tokio::test]
    async fn an_id_given_twice_names_both_sources() {
        let store = MemoryStore::new();
        let mut input = items("id: a\n", "one.yaml");
        input.extend(items("id: a\nproduct: x\n", "two.yaml"));
        let e = ImportPlan::for_store(&store, input, ImportOptions::default())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(e.message().contains("one.yaml"), "{e}");
        assert_eq!(e.context("file"), Some("two.yaml"));
    }

    #[tokio::test]
    async fn an_invalid_record_is_refused_before_anything_is_written() {
        let store = MemoryStore::new();
        let mut input = items("id: a\n", "one.yaml");
        input.push(ImportItem::new(
            ExtensionRecord {
                id: "bad id".into(),
                ..Default::default()
            },
            "two.yaml",
        ));
        let e = ImportPlan::for_store(&store, input, ImportOptions::default())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert_eq!(e.path(), Some("id"));
        assert_eq!(e.context("file"), Some("two.yaml"));
    }

    #[tokio::test]
    async fn a_change_after_planning_is_a_conflict_and_nothing_is_written() {
        let input = "id: a\nproduct: minio\n---\nid: b\nproduct: changed\n---\nid: new\n";
        for (what, change) in [
            ("update", "update"),
            ("delete", "delete"),
            ("create", "create"),
            ("prune", "prune"),
        ] {
            let store = seeded().await;
            let plan = ImportPlan::for_store(
                &store,
                items(input, "in.yaml"),
                ImportOptions { prune: true },
            )
            .await
            .unwrap();
            assert_eq!(
                actions(&plan),
                [
                    ("a".to_owned(), ImportAction::Update),
                    ("b".to_owned(), ImportAction::Update),
                    ("c".to_owned(), ImportAction::Delete),
                    ("new".to_owned(), ImportAction::Create),
                ]
            );
            // Someone else writes between planning and applying.
            let (record, expect) = match change {
                "update" => {
                    store
                        .update_with("b", 1, |r| {
                            r.description = "theirs".into();
                            Ok(())
                        })
                        .await
                        .unwrap();
                    ("b", "was changed")
                }
                "delete" => {
                    store.delete("b", None).await.unwrap();
                    ("b", "was deleted")
                }
                "create" => {
                    let theirs = format::parse_records("id: new\nproduct: theirs\n").unwrap();
                    store
                        .put(theirs.into_iter().next().unwrap(), PutMode::Create)
                        .await
                        .unwrap();
                    ("new", "was created")
                }
                _ => {
                    store
                        .update_with("c", 1, |r| {
                            r.description = "theirs".into();
                            Ok(())
                        })
                        .await
                        .unwrap();
                    ("c", "was changed")
                }
            };
            let before = store.list(&ListFilter::all()).await.unwrap();
            let e = plan.apply_to_store(&store).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Conflict, "{what}: {e}");
            assert_eq!(e.context("record"), Some(record), "{what}: {e}");
            assert!(e.message().contains(expect), "{what}: {e}");
            let after = store.list(&ListFilter::all()).await.unwrap();
            assert_eq!(after.revision, before.revision, "{what}: nothing written");
            assert_eq!(after.records, before.records, "{what}: nothing written");
        }
    }

    #[tokio::test]
    async fn applying_through_a_registry_updates_its_index() {
        let registry = Registry::open(seeded().await).await.unwrap();
        let input = "id: a\nproduct: minio\n---\nid: d\nproduct: triton\n";
        let plan = ImportPlan::for_store(
            registry.store().as_ref(),
            items(input, "in.yaml"),
            ImportOptions { prune: true },
        )
        .await
        .unwrap();
        let revisions = plan.apply(&registry).await.unwrap();
        assert_eq!(revisions.len(), 4, "a updated, b and c deleted, d created");
        assert!(registry.revision() >= revisions[3]);
        let ids: Vec<_> = registry
            .list(&ListFilter::all())
            .iter()
            .map(|s| s.record.id.clone())
            .collect();
        assert_eq!(ids, ["a", "d"]);
        assert!(registry.get("a").unwrap().record.services.is_empty());
    }

    #[test]
    fn actions_read_as_verbs() {
        let words: Vec<_> = ImportAction::ALL
            .iter()
            .map(|a| (a.to_string(), a.done()))
            .collect();
        assert_eq!(
            words,
            [
                ("create".to_owned(), "created"),
                ("update".to_owned(), "updated"),
                ("unchanged".to_owned(), "unchanged"),
                ("delete".to_owned(), "deleted"),
            ]
        );
    }
}
