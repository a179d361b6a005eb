//! The registry: a store plus an in-memory index that resolution reads.
//!
//! [`Registry::open`] lists the store once, then follows its
//! [`RegistryStore::watch`] stream in a background task, so every change
//! committed through any handle of the store (in this process) reaches the
//! index without a restart. Resolution never touches the store: it is a
//! memory lookup through posting lists by product, service resource,
//! service category and zone.
//!
//! Writes made through the registry are visible to its own resolution as
//! soon as the write returns (read-your-writes).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, RwLock, RwLockReadGuard, Weak};
use std::time::Duration;

use futures_util::StreamExt;

use crate::env::{StepEnvironment, WorkflowStep};
use crate::error::{Error, ErrorKind, Result};
use crate::format;
use crate::model::ExtensionRecord;
use crate::resolve::{self, Consumer, Explanation, Matcher, Resolution, Selector};
use crate::store::{
    Change, ChangeEvent, ListFilter, PutMode, RegistryStore, Revision, StoredRecord,
};

/// A registry of extension records with fast, deterministic resolution.
pub struct Registry {
    store: Arc<dyn RegistryStore>,
    index: Arc<RwLock<Index>>,
    /// The latest revision the follower has applied.
    applied: tokio::sync::watch::Receiver<Revision>,
    follower: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("store", &self.store)
            .field("revision", &self.revision())
            .finish()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

type Posting = HashMap<Arc<str>, HashSet<Arc<str>>>;

#[derive(Debug, Default)]
struct Index {
    records: HashMap<Arc<str>, Arc<StoredRecord>>,
    /// Revision of the latest delete per id, so a late event cannot resurrect a record.
    deleted: HashMap<Arc<str>, Revision>,
    by_product: Posting,
    by_zone: Posting,
    by_resource: Posting,
    by_category: Posting,
    revision: Revision,
}

fn post(map: &mut Posting, key: &str, id: &Arc<str>) {
    if key.is_empty() {
        return;
    }
    match map.get_mut(key) {
        Some(set) => {
            set.insert(id.clone());
        }
        None => {
            map.insert(Arc::from(key), HashSet::from([id.clone()]));
        }
    }
}

fn unpost(map: &mut Posting, key: &str, id: &str) {
    if let Some(set) = map.get_mut(key) {
        set.remove(id);
        if set.is_empty() {
            map.remove(key);
        }
    }
}

impl Index {
    fn known_revision(&self, id: &str) -> Revision {
        self.records
            .get(id)
            .map(|e| e.revision)
            .or_else(|| self.deleted.get(id).copied())
            .unwrap_or(0)
    }

    fn apply(&mut self, event: &ChangeEvent) {
        self.revision = self.revision.max(event.revision);
        if event.revision <= self.known_revision(&event.id) {
            return;
        }
        self.remove(&event.id);
        match &event.change {
            Change::Put(stored) => self.insert(stored.clone()),
            Change::Delete => {
                self.deleted
                    .insert(Arc::from(event.id.as_str()), event.revision);
            }
        }
    }

    fn insert(&mut self, stored: Arc<StoredRecord>) {
        let id: Arc<str> = Arc::from(stored.record.id.as_str());
        self.deleted.remove(&*id);
        let record = &stored.record;
        post(&mut self.by_product, &record.product, &id);
        post(&mut self.by_zone, &record.zone, &id);
        for svc in &record.services {
            post(&mut self.by_resource, &svc.resource, &id);
            post(&mut self.by_category, &svc.category, &id);
        }
        self.records.insert(id, stored);
    }

    fn remove(&mut self, id: &str) {
        let Some(stored) = self.records.remove(id) else {
            return;
        };
        let r = &stored.record;
        unpost(&mut self.by_product, &r.product, id);
        unpost(&mut self.by_zone, &r.zone, id);
        for svc in &r.services {
            unpost(&mut self.by_resource, &svc.resource, id);
            unpost(&mut self.by_category, &svc.category, id);
        }
    }

    /// The records a selector can possibly match: the shortest posting list
    /// among the fields it sets, or every record when it sets none of them.
    fn candidates<'a>(
        &'a self,
        s: &Selector,
    ) -> Box<dyn Iterator<Item = &'a Arc<StoredRecord>> + 'a> {
        fn get(v: &Option<String>) -> Option<&str> {
            v.as_deref().filter(|x| !x.is_empty())
        }
        if let Some(id) = get(&s.extension_id) {
            return Box::new(self.records.get(id).into_iter());
        }
        let lists = [
            (get(&s.product), &self.by_product),
            (get(&s.zone), &self.by_zone),
            (get(&s.service_resource), &self.by_resource),
            (get(&s.service_category), &self.by_category),
        ];
        let mut shortest: Option<Option<&HashSet<Arc<str>>>> = None;
        for (key, map) in lists {
            if let Some(key) = key {
                let list = map.get(key);
                let len = list.map_or(0, HashSet::len);
                if shortest.is_none_or(|s| s.map_or(0, HashSet::len) > len) {
                    shortest = Some(list);
                }
            }
        }
        match shortest {
            None => Box::new(self.records.values()),
            Some(None) => Box::new(std::iter::empty()),
            Some(Some(ids)) => Box::new(ids.iter().filter_map(|id| self.records.get(id))),
        }
    }
}

impl Registry {
    /// Opens a registry over `store`: loads every record and starts following changes.
    ///
    /// Must be called inside a Tokio runtime (the follower is a spawned task,
    /// stopped when the registry is dropped).
    pub async fn open(store: impl RegistryStore) -> Result<Registry> {
        Registry::open_shared(Arc::new(store)).await
    }

    /// Like [`Registry::open`], for a store shared with other owners.
    pub async fn open_shared(store: Arc<dyn RegistryStore>) -> Result<Registry> {
        let listing = store.list(&ListFilter::all()).await?;
        let mut index = Index {
            revision: listing.revision,
            ..Default::default()
        };
        for stored in listing.records {
            index.insert(Arc::new(stored));
        }
        let index = Arc::new(RwLock::new(index));
        let (applied_tx, applied) = tokio::sync::watch::channel(listing.revision);
        let follower = tokio::spawn(follow(
            store.clone(),
            Arc::downgrade(&index),
            applied_tx,
            listing.revision,
        ));
        Ok(Registry {
            store,
            index,
            applied,
            follower,
        })
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<dyn RegistryStore> {
        &self.store
    }

    /// The latest store revision the index has caught up with.
    pub fn revision(&self) -> Revision {
        self.read().map(|i| i.revision).unwrap_or(0)
    }

    fn read(&self) -> Result<RwLockReadGuard<'_, Index>> {
        self.index.read().map_err(|_| poisoned())
    }

    async fn refresh(&self, id: &str) -> Result<()> {
        let event = match self.store.get(id).await? {
            Some(stored) => ChangeEvent {
                revision: stored.revision,
                id: id.to_owned(),
                change: Change::Put(Arc::new(stored)),
            },
            None => return Ok(()),
        };
        self.index.write().map_err(|_| poisoned())?.apply(&event);
        Ok(())
    }

    /// Validates and stores a new record ([`PutMode::Create`]).
    pub async fn register(&self, record: ExtensionRecord) -> Result<Revision> {
        self.put(record, PutMode::Create).await
    }

    /// Stores a record, creating or replacing it ([`PutMode::Overwrite`]).
    ///
    /// Credential values of `<hidden>` keep the stored values, so a record
    /// read with secrets hidden can be edited and written back.
    pub async fn upsert(&self, record: ExtensionRecord) -> Result<Revision> {
        self.put(record, PutMode::Overwrite).await
    }

    /// Stores a record with an explicit [`PutMode`].
    pub async fn put(&self, record: ExtensionRecord, mode: PutMode) -> Result<Revision> {
        let mut revisions = self.put_all(vec![record], mode).await?;
        revisions
            .pop()
            .ok_or_else(|| Error::new(ErrorKind::Internal, "a single write returned no revision"))
    }

    /// Writes several records with one mode; all or none where the store is
    /// transactional (memory, SQLite, PostgreSQL). Visible to resolution when it returns.
    pub async fn put_all(
        &self,
        records: Vec<ExtensionRecord>,
        mode: PutMode,
    ) -> Result<Vec<Revision>> {
        let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
        let revisions = self
            .store
            .put_all(records.into_iter().map(|r| (r, mode)).collect())
            .await?;
        let Some(&last) = revisions.iter().max() else {
            return Ok(revisions);
        };
        // The follower applies the batch from the change stream; wait for it
        // (bounded), and read the records back if it is slow or resubscribing.
        let mut applied = self.applied.clone();
        let caught_up =
            tokio::time::timeout(Duration::from_secs(2), applied.wait_for(|rev| *rev >= last))
                .await;
        if !matches!(caught_up, Ok(Ok(_))) {
            for id in &ids {
                self.refresh(id).await?;
            }
        }
        Ok(revisions)
    }

    /// Parses YAML or JSON holding one or more records and creates them all.
    ///
    /// The whole input is parsed and validated before the first write, and
    /// the records are written in one transaction (memory, SQLite and PostgreSQL stores).
    pub async fn register_yaml(&self, text: &str) -> Result<Vec<Revision>> {
        self.put_all(format::parse_records(text)?, PutMode::Create)
            .await
    }

    /// Deletes a record.
    pub async fn unregister(&self, id: &str) -> Result<Revision> {
        let revision = self.store.delete(id, None).await?;
        self.index
            .write()
            .map_err(|_| poisoned())?
            .apply(&ChangeEvent {
                revision,
                id: id.to_owned(),
                change: Change::Delete,
            });
        Ok(revision)
    }

    /// The record with this id, from the index.
    pub fn get(&self, id: &str) -> Option<Arc<StoredRecord>> {
        self.read().ok()?.records.get(id).cloned()
    }

    /// The records passing `filter`, sorted by id, from the index.
    pub fn list(&self, filter: &ListFilter) -> Vec<Arc<StoredRecord>> {
        let Ok(index) = self.read() else {
            return Vec::new();
        };
        let mut out: Vec<_> = index
            .records
            .values()
            .filter(|e| filter.matches(&e.record))
            .cloned()
            .collect();
        out.sort_by(|a, b| a.record.id.cmp(&b.record.id));
        out
    }

    /// The best candidate for `selector` and `consumer`.
    ///
    /// [`ErrorKind::NoMatch`] names the filter that removed the last
    /// candidates; [`ErrorKind::InvalidInput`] for an invalid version constraint.
    pub fn resolve(&self, selector: &Selector, consumer: &Consumer) -> Result<Resolution> {
        let matcher = Matcher::new(selector, consumer)?;
        let index = self.read()?;
        match matcher.best(index.candidates(selector)) {
            Some(found) => Ok(found),
            None => Err(resolve::no_match(
                selector,
                &resolve::explain_in(index.records.values(), selector, consumer),
            )),
        }
    }

    /// Every candidate for `selector` and `consumer`, best first; [`ErrorKind::NoMatch`] when none.
    pub fn resolve_all(&self, selector: &Selector, consumer: &Consumer) -> Result<Vec<Resolution>> {
        let matcher = Matcher::new(selector, consumer)?;
        let index = self.read()?;
        let all = matcher.all(index.candidates(selector));
        if all.is_empty() {
            return Err(resolve::no_match(
                selector,
                &resolve::explain_in(index.records.values(), selector, consumer),
            ));
        }
        Ok(all)
    }

    /// How each filter of `selector` narrowed the registry's records, in order.
    pub fn explain(&self, selector: &Selector, consumer: &Consumer) -> Result<Explanation> {
        let index = self.read()?;
        Ok(resolve::explain_in(
            index.records.values(),
            selector,
            consumer,
        ))
    }

    /// Resolves every selector of a workflow step and builds its environment.
    pub fn step_environment(
        &self,
        step: &WorkflowStep,
        consumer: &Consumer,
    ) -> Result<StepEnvironment> {
        step.resolve_with(|selector| self.resolve(selector, consumer))
    }
}

fn poisoned() -> Error {
    Error::new(
        ErrorKind::Internal,
        "registry index lock poisoned by a panic in another thread",
    )
}

/// Follows the store's change stream into the index until the registry is dropped.
async fn follow(
    store: Arc<dyn RegistryStore>,
    index: Weak<RwLock<Index>>,
    applied: tokio::sync::watch::Sender<Revision>,
    mut since: Revision,
) {
    const RETRY: Duration = Duration::from_millis(500);
    loop {
        match store.watch(since).await {
            Ok(mut stream) => {
                while let Some(item) = stream.next().await {
                    let Some(index) = index.upgrade() else {
                        return;
                    };
                    match item {
                        Ok(event) => {
                            since = since.max(event.revision);
                            match index.write() {
                                Ok(mut guard) => guard.apply(&event),
                                Err(_) => return,
                            }
                            applied.send_replace(since);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "registry watch failed; resubscribing");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "registry watch could not start; retrying"),
        }
        if index.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(RETRY).await;
    }
}
