//! An in-memory store: fast, complete, and gone when the process ends.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use super::feed::{ChangeLog, Feed};
use super::{
    Change, ChangeEvent, ChangeStream, ListFilter, Listing, PutMode, RegistryStore, Revision,
    StoredRecord, Validated, WriteOp, check_delete, prepare_checked_put, prepare_put,
};
use crate::error::{Error, ErrorKind, Result};
use crate::model::ExtensionRecord;

/// A [`RegistryStore`] kept in memory. Cloning shares the same contents.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    feed: Feed,
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            state: Mutex::new(State::default()),
            feed: Feed::new(),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    records: BTreeMap<String, Arc<StoredRecord>>,
    /// Latest change per record id, keyed by revision (deletions stay as tombstones).
    log: BTreeMap<Revision, ChangeEvent>,
    log_by_id: HashMap<String, Revision>,
    head: Revision,
}

impl State {
    fn commit(&mut self, id: &str, change: Change) -> ChangeEvent {
        self.head += 1;
        let event = ChangeEvent {
            revision: self.head,
            id: id.to_owned(),
            change,
        };
        if let Some(old) = self.log_by_id.insert(id.to_owned(), self.head) {
            self.log.remove(&old);
        }
        self.log.insert(self.head, event.clone());
        event
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>> {
        self.inner.state.lock().map_err(|_| {
            Error::new(
                ErrorKind::Internal,
                "memory store lock poisoned by a panic in another thread",
            )
        })
    }

    /// Applies `ops` in one step (see [`RegistryStore::write_all`]).
    fn write_checked(
        &self,
        ops: Vec<WriteOp>,
        validated: Option<Validated>,
    ) -> Result<Vec<Revision>> {
        let mut state = self.lock()?;
        // Check every write against the state as the earlier ones leave it
        // (`None`: deleted in this batch), then commit all.
        let mut staged: HashMap<String, Option<Arc<StoredRecord>>> = HashMap::new();
        let mut order = Vec::with_capacity(ops.len());
        for (i, op) in ops.into_iter().enumerate() {
            let id = op.id().to_owned();
            let current = match staged.get(&id) {
                Some(staged) => staged.clone(),
                None => state.records.get(&id).cloned(),
            };
            let revision = state.head + 1 + i as Revision;
            let change = match op {
                WriteOp::Put(mut record, mode) => {
                    prepare_checked_put(&mut record, mode, current.as_deref(), validated)
                        .map_err(|e| e.with_context("record", id.clone()))?;
                    Change::Put(Arc::new(StoredRecord { record, revision }))
                }
                WriteOp::Delete { expected, .. } => {
                    check_delete(&id, expected, current.map(|c| c.revision))
                        .map_err(|e| e.with_context("record", id.clone()))?;
                    Change::Delete
                }
            };
            let after = match &change {
                Change::Put(stored) => Some(stored.clone()),
                Change::Delete => None,
            };
            staged.insert(id.clone(), after);
            order.push((id, change));
        }
        let mut revisions = Vec::with_capacity(order.len());
        for (id, change) in order {
            match &change {
                Change::Put(stored) => {
                    state.records.insert(id.clone(), stored.clone());
                }
                Change::Delete => {
                    state.records.remove(&id);
                }
            }
            let event = state.commit(&id, change);
            revisions.push(event.revision);
            self.inner.feed.publish(event);
        }
        Ok(revisions)
    }
}

#[async_trait]
impl ChangeLog for MemoryStore {
    async fn changes_since(&self, since: Revision) -> Result<Vec<ChangeEvent>> {
        let state = self.lock()?;
        Ok(state
            .log
            .range(since.saturating_add(1)..)
            .map(|(_, e)| e.clone())
            .collect())
    }
}

#[async_trait]
impl RegistryStore for MemoryStore {
    async fn get(&self, id: &str) -> Result<Option<StoredRecord>> {
        Ok(self.lock()?.records.get(id).map(|r| (**r).clone()))
    }

    async fn list(&self, filter: &ListFilter) -> Result<Listing> {
        let state = self.lock()?;
        Ok(Listing {
            records: state
                .records
                .values()
                .filter(|r| filter.matches(&r.record))
                .map(|r| (**r).clone())
                .collect(),
            revision: state.head,
        })
    }

    async fn put(&self, record: ExtensionRecord, mode: PutMode) -> Result<Revision> {
        let mut revisions = self.put_all(vec![(record, mode)]).await?;
        revisions
            .pop()
            .ok_or_else(|| Error::new(ErrorKind::Internal, "a single write returned no revision"))
    }

    async fn put_all(&self, records: Vec<(ExtensionRecord, PutMode)>) -> Result<Vec<Revision>> {
        let mut state = self.lock()?;
        // Check every write against the state as the earlier ones leave it, then commit all.
        let mut staged: HashMap<String, Arc<StoredRecord>> = HashMap::new();
        let mut order = Vec::with_capacity(records.len());
        for (i, (mut record, mode)) in records.into_iter().enumerate() {
            let current = staged
                .get(&record.id)
                .or_else(|| state.records.get(&record.id))
                .cloned();
            let id = record.id.clone();
            prepare_put(&mut record, mode, current.as_deref())
                .map_err(|e| e.with_context("record", id.clone()))?;
            let stored = Arc::new(StoredRecord {
                record,
                revision: state.head + 1 + i as Revision,
            });
            staged.insert(id.clone(), stored.clone());
            order.push((id, stored));
        }
        let mut revisions = Vec::with_capacity(order.len());
        for (id, stored) in order {
            let event = state.commit(&id, Change::Put(stored.clone()));
            state.records.insert(id, stored);
            revisions.push(event.revision);
            self.inner.feed.publish(event);
        }
        Ok(revisions)
    }

    async fn write_all(&self, ops: Vec<WriteOp>) -> Result<Vec<Revision>> {
        self.write_checked(ops, None)
    }

    async fn write_all_validated(
        &self,
        ops: Vec<WriteOp>,
        proof: Validated,
    ) -> Result<Vec<Revision>> {
        self.write_checked(ops, Some(proof))
    }

    async fn delete(&self, id: &str, expected: Option<Revision>) -> Result<Revision> {
        let mut state = self.lock()?;
        check_delete(id, expected, state.records.get(id).map(|r| r.revision))?;
        state.records.remove(id);
        let event = state.commit(id, Change::Delete);
        self.inner.feed.publish(event.clone());
        Ok(event.revision)
    }

    async fn watch(&self, since: Revision) -> Result<ChangeStream> {
        Ok(self.inner.feed.watch(Arc::new(self.clone()), since))
    }
}
