//! The registry: a store plus an in-memory index that resolution reads.
//!
//! [`Registry::open`] lists the store once, then follows its
//! [`RegistryStore::watch`] stream in a background task, so every change the
//! store's watch reports reaches the index without a restart: writes through
//! any handle of the store in this process, and, for a
//! [`SqliteStore`](crate::SqliteStore), commits by other processes sharing
//! the file (noticed within its poll interval). Resolution never touches the
//! store: it is a memory lookup through posting lists by product, service
//! resource, service category and zone.
//!
//! Writes made through the registry are visible to its own resolution as
//! soon as the write returns (read-your-writes).
//!
//! A host may give the registry [`RecordValidator`]s
//! ([`Registry::with_validator`]): every record written through it —
//! `register`, `upsert`, `put_all`, `register_yaml`, the puts of
//! `write_all` — passes each validator before anything is stored, so a
//! record its connectors would refuse (an unknown configuration key, a
//! blueprint template naming an unknown parameter) is refused when it is
//! registered, with the path of the problem. [`Connectors`] is one: it runs
//! each target's factory check
//! ([`ConnectorFactory::check`](crate::ConnectorFactory::check)). A registry
//! without validators stores every well-formed record, as before.
//!
//! [`Registry::watch_resolution`] turns one selector into a
//! [`LiveResolution`]: the current answer, then a new one each time the
//! answer changes (an endpoint moved, a credential rotated, a better
//! candidate registered, the chosen record deleted).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, RwLock, RwLockReadGuard, Weak};
use std::time::Duration;

use futures_util::StreamExt;

use crate::connector::Connectors;
use crate::env::{StepEnvironment, WorkflowStep};
use crate::error::{Error, ErrorKind, Result};
use crate::format;
use crate::model::ExtensionRecord;
use crate::resolve::{self, Consumer, Explanation, IndexedField, Matcher, Resolution, Selector};
use crate::store::{
    Change, ChangeEvent, ListFilter, PutMode, RegistryStore, Revision, StoredRecord, Validated,
    WriteOp,
};

/// A registry of extension records with fast, deterministic resolution.
pub struct Registry {
    store: Arc<dyn RegistryStore>,
    index: Arc<RwLock<Index>>,
    /// The latest revision the follower has applied.
    applied: tokio::sync::watch::Receiver<Revision>,
    follower: tokio::task::JoinHandle<()>,
    validators: Vec<Arc<dyn RecordValidator>>,
}

/// A check a record must pass before a [`Registry`] stores it
/// ([`Registry::with_validator`]).
///
/// Validators run before the write, on the record as given (credential
/// values may be `<hidden>` in an upsert); a refusal is returned as is and
/// nothing of the write is stored. Connector crates need not know the
/// registry: [`Connectors`] implements it over its factories' checks.
pub trait RecordValidator: Send + Sync + fmt::Debug {
    /// `Ok` when the record may be stored; else an error (for
    /// configuration, an [`ErrorKind::Config`] error whose path names the
    /// key or blueprint part at fault).
    fn validate(&self, record: &ExtensionRecord) -> Result<()>;
}

/// Every target of the record ([`resolve::connect_targets`]) through the
/// check of the factory that serves it ([`Connectors::check_target`]);
/// targets no factory serves pass. The error names the record and service.
impl RecordValidator for Connectors {
    fn validate(&self, record: &ExtensionRecord) -> Result<()> {
        for target in resolve::connect_targets(record) {
            self.check_target(&target)
                .map_err(|e| e.with_context("service", target.service.clone()))?;
        }
        Ok(())
    }
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
    /// Every record id in order, so an explanation can show the first
    /// records a filter dropped without sorting the registry.
    ids: BTreeSet<Arc<str>>,
    /// How many services the records have together.
    service_count: usize,
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
        self.service_count += record.services.len();
        self.ids.insert(id.clone());
        self.records.insert(id, stored);
    }

    fn remove(&mut self, id: &str) {
        let Some(stored) = self.records.remove(id) else {
            return;
        };
        let r = &stored.record;
        self.ids.remove(id);
        self.service_count -= r.services.len();
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

impl<'r> resolve::RecordSource<'r> for &'r Index {
    fn record_count(&self) -> usize {
        self.records.len()
    }

    fn service_count(&self) -> usize {
        self.service_count
    }

    fn in_id_order(&self) -> Box<dyn Iterator<Item = &'r Arc<StoredRecord>> + '_> {
        let records = &self.records;
        Box::new(self.ids.iter().filter_map(move |id| records.get(id)))
    }

    fn posting(&self, field: IndexedField, key: &str) -> Option<Vec<&'r Arc<StoredRecord>>> {
        let map = match field {
            IndexedField::Id => return Some(self.records.get(key).into_iter().collect()),
            IndexedField::Zone => &self.by_zone,
            IndexedField::Product => &self.by_product,
            IndexedField::Resource => &self.by_resource,
            IndexedField::Category => &self.by_category,
        };
        let records = &self.records;
        Some(
            map.get(key)
                .into_iter()
                .flatten()
                .filter_map(|id| records.get(id))
                .collect(),
        )
    }
}

impl Index {
    /// How `selector` fares for `consumer`, from the posting lists.
    fn explain(&self, selector: &Selector, consumer: &Consumer) -> Explanation {
        resolve::explain_from(&self, selector, consumer)
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
            validators: Vec::new(),
        })
    }

    /// The same registry refusing, from now on, the records `validator`
    /// refuses (see [`RecordValidator`]); validators run in the order added.
    ///
    /// ```no_run
    /// # async fn demo(store: inferlink::MemoryStore) -> inferlink::Result<()> {
    /// use inferlink::{Connectors, Registry};
    /// let connectors = Connectors::new(); // .with(each connector crate's factory())
    /// let registry = Registry::open(store).await?.with_validator(connectors);
    /// # Ok(()) }
    /// ```
    pub fn with_validator(mut self, validator: impl RecordValidator + 'static) -> Self {
        self.validators.push(Arc::new(validator));
        self
    }

    /// Runs every validator on `record`.
    fn validate(&self, record: &ExtensionRecord) -> Result<()> {
        self.validators
            .iter()
            .try_for_each(|validator| validator.validate(record))
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
        for record in &records {
            self.validate(record)?;
        }
        let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
        let revisions = self
            .store
            .put_all(records.into_iter().map(|r| (r, mode)).collect())
            .await?;
        let Some(&last) = revisions.iter().max() else {
            return Ok(revisions);
        };
        if !self.caught_up(last).await {
            for id in &ids {
                self.refresh(id).await?;
            }
        }
        Ok(revisions)
    }

    /// Applies puts and deletes in order, with [`RegistryStore::write_all`]:
    /// all or none where the store is transactional (memory, SQLite).
    /// Visible to resolution when it returns.
    pub async fn write_all(&self, ops: Vec<WriteOp>) -> Result<Vec<Revision>> {
        self.write_ops(ops, None).await
    }

    /// [`Registry::write_all`]; `validated` when inferlink has just validated
    /// every record of `ops` (parsed input, an import plan).
    pub(crate) async fn write_ops(
        &self,
        ops: Vec<WriteOp>,
        validated: Option<Validated>,
    ) -> Result<Vec<Revision>> {
        for op in &ops {
            if let WriteOp::Put(record, _) = op {
                self.validate(record)?;
            }
        }
        let ids: Vec<String> = ops.iter().map(|op| op.id().to_owned()).collect();
        let revisions = match validated {
            Some(proof) => self.store.write_all_validated(ops, proof).await?,
            None => self.store.write_all(ops).await?,
        };
        let Some(&last) = revisions.iter().max() else {
            return Ok(revisions);
        };
        if !self.caught_up(last).await {
            // Read back each id's latest state: a put refreshes it, a delete
            // (the id is gone from the store) is applied at its revision.
            let mut latest: HashMap<&str, Revision> = HashMap::new();
            for (id, &revision) in ids.iter().zip(&revisions) {
                latest.insert(id, revision);
            }
            for (id, revision) in latest {
                if self.store.get(id).await?.is_some() {
                    self.refresh(id).await?;
                } else {
                    self.index
                        .write()
                        .map_err(|_| poisoned())?
                        .apply(&ChangeEvent {
                            revision,
                            id: id.to_owned(),
                            change: Change::Delete,
                        });
                }
            }
        }
        Ok(revisions)
    }

    /// Waits (bounded) until the follower has applied revision `last` from
    /// the change stream; false when it is slow or resubscribing.
    async fn caught_up(&self, last: Revision) -> bool {
        let mut applied = self.applied.clone();
        let waited =
            tokio::time::timeout(Duration::from_secs(2), applied.wait_for(|rev| *rev >= last))
                .await;
        matches!(waited, Ok(Ok(_)))
    }

    /// Parses YAML or JSON holding one or more records and creates them all.
    ///
    /// The whole input is parsed and validated before the first write, and
    /// the records are written in one transaction (memory, SQLite and PostgreSQL stores).
    pub async fn register_yaml(&self, text: &str) -> Result<Vec<Revision>> {
        let records = format::parse_records(text)?;
        // `parse_records` validated every record: the store need not again.
        let ops = records
            .into_iter()
            .map(|r| WriteOp::Put(r, PutMode::Create))
            .collect();
        self.write_ops(ops, Some(Validated::checked())).await
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
        index
            .ids
            .iter()
            .filter_map(|id| index.records.get(id))
            .filter(|e| filter.matches(&e.record))
            .cloned()
            .collect()
    }

    /// The best candidate for `selector` and `consumer`.
    ///
    /// [`ErrorKind::NoMatch`] names the filter that removed the last
    /// candidates; [`ErrorKind::InvalidInput`] for an invalid version constraint.
    pub fn resolve(&self, selector: &Selector, consumer: &Consumer) -> Result<Resolution> {
        resolve_in_index(&self.index, selector, consumer)
    }

    /// Follows the resolution of `selector` for `consumer` as the registry changes.
    ///
    /// The returned [`LiveResolution`] yields the current outcome first, then
    /// a new one whenever the outcome changes. An invalid selector (a bad
    /// version constraint) is an [`ErrorKind::InvalidInput`] error here,
    /// since it could never resolve. See [`LiveResolution`] for an example.
    pub fn watch_resolution(
        &self,
        selector: Selector,
        consumer: Consumer,
    ) -> Result<LiveResolution> {
        Matcher::new(&selector, &consumer)?;
        Ok(LiveResolution {
            selector,
            consumer,
            index: Arc::downgrade(&self.index),
            applied: self.applied.clone(),
            last: None,
        })
    }

    /// Every candidate for `selector` and `consumer`, best first; [`ErrorKind::NoMatch`] when none.
    pub fn resolve_all(&self, selector: &Selector, consumer: &Consumer) -> Result<Vec<Resolution>> {
        let matcher = Matcher::new(selector, consumer)?;
        let index = self.read()?;
        let all = matcher.all(index.candidates(selector));
        if all.is_empty() {
            return Err(resolve::no_match(
                selector,
                &index.explain(selector, consumer),
            ));
        }
        Ok(all)
    }

    /// How each filter of `selector` narrowed the registry's records, in order.
    ///
    /// Built from the index: the first filter on an indexed field (id, zone,
    /// product, service resource, service category) reads only its posting
    /// list, so the cost follows the records the selector reaches, not the
    /// registry's size; the same explanation as [`resolve::explain_in`].
    pub fn explain(&self, selector: &Selector, consumer: &Consumer) -> Result<Explanation> {
        let index = self.read()?;
        Ok(index.explain(selector, consumer))
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

/// The best candidate for `selector` in `index`, or the no-match error.
fn resolve_in_index(
    index: &RwLock<Index>,
    selector: &Selector,
    consumer: &Consumer,
) -> Result<Resolution> {
    let matcher = Matcher::new(selector, consumer)?;
    let index = index.read().map_err(|_| poisoned())?;
    match matcher.best(index.candidates(selector)) {
        Some(found) => Ok(found),
        None => Err(resolve::no_match(
            selector,
            &index.explain(selector, consumer),
        )),
    }
}

/// A resolution that follows the registry: see [`Registry::watch_resolution`].
///
/// [`next`](LiveResolution::next) yields the current outcome on the first
/// call, then waits until the outcome changes and yields the new one:
///
/// * the chosen endpoint's URL or configuration changed, a credential was
///   rotated, the record's version, zone or configuration changed;
/// * another candidate now ranks first (a better one was registered, the
///   chosen one stopped being eligible);
/// * no candidate is left (the chosen record was deleted): an error item,
///   normally [`ErrorKind::NoMatch`] explaining which filter removed the
///   candidates; then, when a candidate appears again, a resolution.
///
/// Changes that leave the outcome as it was (an unrelated record, a
/// description, a record written again unchanged) yield nothing. Consecutive
/// errors of the same kind are yielded once. Several changes applied in a
/// burst may be folded into one new outcome: a consumer always gets the
/// latest, never a stale one.
///
/// The registry's index learns about changes from the store's watch, so a
/// change made by another process reaches a live resolution as soon as the
/// store reports it (SQLite: within its poll interval). `next` returns `None`
/// once the [`Registry`] is dropped. It is cancel-safe: dropping a pending
/// `next` loses nothing.
///
/// ```
/// use inferlink::{Consumer, MemoryStore, Registry, Selector};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let registry = Registry::open(MemoryStore::new()).await?;
/// let minio = |url: &str, key: &str| format!(
///     "id: minio\nproduct: minio\nservices:\n  - id: s3\n    resource: s3\n    endpoints:\n      - url: {url}\n    credentials:\n      - id: ops\n        configuration:\n          AWS_SECRET_ACCESS_KEY: {key}\n"
/// );
/// registry.register_yaml(&minio("http://minio-a:9000", "k1")).await?;
///
/// let mut live = registry.watch_resolution(Selector::resource("s3"), Consumer::anywhere())?;
/// let first = live.next().await.expect("the registry is open")?;
/// assert_eq!(first.endpoint().url, "http://minio-a:9000");
///
/// // An operator moves the endpoint and rotates the key (here through the
/// // same registry; the CLI writing the same SQLite file works alike).
/// let moved = inferlink::format::parse_records(&minio("http://minio-b:9000", "k2"))?;
/// registry.put_all(moved, inferlink::PutMode::Overwrite).await?;
///
/// let next = live.next().await.expect("the registry is open")?;
/// assert_eq!(next.endpoint().url, "http://minio-b:9000");
/// assert_eq!(next.config_value("AWS_SECRET_ACCESS_KEY").unwrap().expose(), "k2");
///
/// // Deleting the record yields a no-match error; registering it again recovers.
/// registry.unregister("minio").await?;
/// let gone = live.next().await.expect("the registry is open").unwrap_err();
/// assert_eq!(gone.kind(), inferlink::ErrorKind::NoMatch);
/// # Ok::<(), inferlink::Error>(())
/// # }).unwrap();
/// ```
pub struct LiveResolution {
    selector: Selector,
    consumer: Consumer,
    index: Weak<RwLock<Index>>,
    applied: tokio::sync::watch::Receiver<Revision>,
    /// The last outcome yielded: a resolution, or the kind of the error.
    last: Option<std::result::Result<Resolution, ErrorKind>>,
}

impl fmt::Debug for LiveResolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveResolution")
            .field("selector", &self.selector)
            .field("consumer", &self.consumer)
            .field("last", &self.last)
            .finish()
    }
}

impl LiveResolution {
    /// The selector being followed.
    pub fn selector(&self) -> &Selector {
        &self.selector
    }

    /// The consumer it is resolved for.
    pub fn consumer(&self) -> &Consumer {
        &self.consumer
    }

    /// The latest registry revision applied to the index this follows,
    /// including this process's own writes (a cheap read: compare two values
    /// to know whether anything changed). 0 once the registry is dropped.
    pub fn seen_revision(&self) -> Revision {
        self.index
            .upgrade()
            .and_then(|index| index.read().ok().map(|i| i.revision))
            .unwrap_or(0)
    }

    /// The outcome right now, without waiting (and without affecting what
    /// [`next`](LiveResolution::next) yields). [`ErrorKind::Unavailable`] once
    /// the registry is dropped.
    pub fn current(&self) -> Result<Resolution> {
        let index = self.index.upgrade().ok_or_else(|| {
            Error::new(
                ErrorKind::Unavailable,
                "the registry this live resolution follows was dropped",
            )
        })?;
        resolve_in_index(&index, &self.selector, &self.consumer)
    }

    /// The current outcome on the first call; afterwards, waits until the
    /// outcome differs from the last one yielded and returns it. `None` when
    /// the registry has been dropped.
    pub async fn next(&mut self) -> Option<Result<Resolution>> {
        loop {
            if self.last.is_some() {
                self.applied.changed().await.ok()?;
            } else {
                // Mark the current revision seen before reading the index, so
                // a change applied after this read wakes the next wait.
                self.applied.borrow_and_update();
            }
            let index = self.index.upgrade()?;
            let outcome = resolve_in_index(&index, &self.selector, &self.consumer);
            drop(index);
            let changed = match (&self.last, &outcome) {
                (None, _) => true,
                (Some(Ok(before)), Ok(now)) => !before.same_choice(now),
                (Some(Err(before)), Err(now)) => *before != now.kind(),
                _ => true,
            };
            if changed {
                self.last = Some(match &outcome {
                    Ok(found) => Ok(found.clone()),
                    Err(e) => Err(e.kind()),
                });
                return Some(outcome);
            }
        }
    }

    /// The same sequence as repeated [`next`](LiveResolution::next) calls, as a `Stream`.
    pub fn into_stream(self) -> impl futures_core::Stream<Item = Result<Resolution>> + Send {
        futures_util::stream::unfold(self, |mut live| async move {
            let item = live.next().await?;
            Some((item, live))
        })
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
