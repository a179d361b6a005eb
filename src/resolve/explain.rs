//! Explanations: how each filter of a selector narrowed the records.
//!
//! One algorithm serves both the registry (which has posting lists by id,
//! zone, product, service resource and service category, and its ids in
//! sorted order) and a plain slice of records (which has neither and is
//! scanned). With an index the first indexed filter reads only its posting
//! list, and the examples of what it dropped come from the first records in
//! id order, so a no-match explanation costs about what the query itself
//! reads, not the registry's size. Both paths give the same explanation.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use super::{Consumer, Selector, set};
use crate::error::printable;
use crate::model::{EndpointType, ExtensionRecord, Service};
use crate::store::StoredRecord;
use crate::version::VersionRequirement;

/// One step of an [`Explanation`]: a filter and how many candidates it left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExplainStep {
    /// What the filter checks, e.g. `product = kserve`.
    pub filter: String,
    /// What is counted (`records`, `services`, `endpoints`, `candidates`).
    pub unit: &'static str,
    /// How many were there before the filter.
    pub before: usize,
    /// How many passed.
    pub after: usize,
    /// Why the others were dropped (values seen, ids removed), shortened.
    pub dropped: Vec<String>,
}

/// Why a selector resolved as it did: each filter in order with what it removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// The filters applied, in order.
    pub steps: Vec<ExplainStep>,
    /// Candidates left at the end.
    pub candidates: usize,
}

impl Explanation {
    /// The step that removed the last candidates, if resolution failed.
    pub fn blocking_step(&self) -> Option<&ExplainStep> {
        self.steps.iter().find(|s| s.after == 0)
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for step in &self.steps {
            write!(
                f,
                "{}: {} of {} {} pass",
                printable(step.filter.clone(), 300),
                step.after,
                step.before,
                step.unit
            )?;
            if !step.dropped.is_empty() {
                write!(f, " (dropped: {})", step.dropped.join(", "))?;
            }
            writeln!(f)?;
        }
        write!(f, "{} candidate(s)", self.candidates)
    }
}

/// At most this many distinct examples of what a filter dropped are shown.
const MAX_DROPPED_SHOWN: usize = 8;
/// At most this many dropped items are looked at to find those examples, so
/// a filter whose dropped items all carry the same label stays cheap.
const MAX_DROPPED_LOOKED_AT: usize = 256;

/// The examples of what a filter dropped that an explanation shows: the
/// distinct labels of the first dropped items in id order (record id, then
/// service and endpoint position), then "and N more".
struct Examples {
    labels: Vec<String>,
    looked_at: usize,
}

impl Examples {
    fn new() -> Self {
        Examples {
            labels: Vec::new(),
            looked_at: 0,
        }
    }

    /// Whether another dropped item can still change what is shown.
    fn wants_more(&self) -> bool {
        self.labels.len() < MAX_DROPPED_SHOWN && self.looked_at < MAX_DROPPED_LOOKED_AT
    }

    fn offer(&mut self, label: impl FnOnce() -> String) {
        if !self.wants_more() {
            return;
        }
        self.looked_at += 1;
        let label = printable(label(), 200);
        if !self.labels.contains(&label) {
            self.labels.push(label);
        }
    }

    /// The labels, then "and N more" for the `dropped` items not shown.
    fn into_list(self, dropped: usize) -> Vec<String> {
        let more = dropped.saturating_sub(self.labels.len());
        let mut out = self.labels;
        if more > 0 {
            out.push(format!("and {more} more"));
        }
        out
    }
}

/// A field with posting lists in the registry's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IndexedField {
    /// The record id.
    Id,
    /// The record's zone.
    Zone,
    /// The record's product.
    Product,
    /// A service's resource.
    Resource,
    /// A service's category.
    Category,
}

/// Where an explanation reads records from.
pub(crate) trait RecordSource<'r> {
    /// How many records there are.
    fn record_count(&self) -> usize;
    /// How many services all records have together.
    fn service_count(&self) -> usize;
    /// Every record, in id order.
    fn in_id_order(&self) -> Box<dyn Iterator<Item = &'r Arc<StoredRecord>> + '_>;
    /// The records whose `field` is `key` (any order), or `None` when the
    /// source has no index for `field`.
    fn posting(&self, field: IndexedField, key: &str) -> Option<Vec<&'r Arc<StoredRecord>>>;
}

/// A slice of records without an index, scanned.
struct Scan<'r> {
    sorted: Vec<&'r Arc<StoredRecord>>,
}

impl<'r> RecordSource<'r> for Scan<'r> {
    fn record_count(&self) -> usize {
        self.sorted.len()
    }

    fn service_count(&self) -> usize {
        self.sorted.iter().map(|r| r.record.services.len()).sum()
    }

    fn in_id_order(&self) -> Box<dyn Iterator<Item = &'r Arc<StoredRecord>> + '_> {
        Box::new(self.sorted.iter().copied())
    }

    fn posting(&self, _: IndexedField, _: &str) -> Option<Vec<&'r Arc<StoredRecord>>> {
        None
    }
}

/// Explains how `selector` fares for `consumer` among `records`.
///
/// Without an index this reads every record (and sorts them by id);
/// [`crate::Registry::explain`] gives the same explanation from its indexes.
pub fn explain_in<'r>(
    records: impl IntoIterator<Item = &'r Arc<StoredRecord>>,
    selector: &Selector,
    consumer: &Consumer,
) -> Explanation {
    let mut sorted: Vec<&Arc<StoredRecord>> = records.into_iter().collect();
    sorted.sort_by(|a, b| a.record.id.cmp(&b.record.id));
    explain_from(&Scan { sorted }, selector, consumer)
}

/// The records still in the running, in id order; `All` until a filter ran.
enum Records<'r> {
    All,
    These(Vec<&'r Arc<StoredRecord>>),
}

/// A service of a record, by position.
type ServiceRef<'r> = (&'r Arc<StoredRecord>, usize);

fn service<'r>(&(r, i): &ServiceRef<'r>) -> &'r Service {
    &r.record.services[i]
}

fn services_of<'r>(
    records: impl IntoIterator<Item = &'r Arc<StoredRecord>>,
) -> Vec<ServiceRef<'r>> {
    records
        .into_iter()
        .flat_map(|r| (0..r.record.services.len()).map(move |i| (r, i)))
        .collect()
}

fn by_id(records: &mut [&Arc<StoredRecord>]) {
    records.sort_unstable_by(|a, b| a.record.id.cmp(&b.record.id));
}

/// The explanation being built over one source.
struct Explainer<'s, 'r> {
    source: &'s dyn RecordSource<'r>,
    records: Records<'r>,
    /// The services still in the running, once a service-level step ran.
    services: Option<Vec<ServiceRef<'r>>>,
    steps: Vec<ExplainStep>,
}

impl<'r> Explainer<'_, 'r> {
    fn push(
        &mut self,
        filter: String,
        unit: &'static str,
        before: usize,
        after: usize,
        examples: Examples,
    ) {
        self.steps.push(ExplainStep {
            filter,
            unit,
            before,
            after,
            dropped: examples.into_list(before - after),
        });
    }

    /// A record-level filter; `indexed` names its posting list, if any.
    fn record_step(
        &mut self,
        filter: String,
        indexed: Option<(IndexedField, &str)>,
        keep: &dyn Fn(&ExtensionRecord) -> bool,
        label: &dyn Fn(&ExtensionRecord) -> String,
    ) {
        let mut examples = Examples::new();
        let retain = |list: Vec<&'r Arc<StoredRecord>>, examples: &mut Examples| {
            let mut kept = Vec::new();
            for r in list {
                if keep(&r.record) {
                    kept.push(r);
                } else {
                    examples.offer(|| label(&r.record));
                }
            }
            kept
        };
        let (before, kept) = match std::mem::replace(&mut self.records, Records::All) {
            Records::These(list) => (list.len(), retain(list, &mut examples)),
            Records::All => {
                let before = self.source.record_count();
                match indexed.and_then(|(field, key)| self.source.posting(field, key)) {
                    Some(mut kept) => {
                        by_id(&mut kept);
                        for r in self.source.in_id_order() {
                            if !examples.wants_more() {
                                break;
                            }
                            if !keep(&r.record) {
                                examples.offer(|| label(&r.record));
                            }
                        }
                        (before, kept)
                    }
                    None => {
                        let all = self.source.in_id_order().collect();
                        (before, retain(all, &mut examples))
                    }
                }
            }
        };
        let after = kept.len();
        self.records = Records::These(kept);
        self.push(filter, "records", before, after, examples);
    }

    /// The services in the running, reading every record when no filter ran.
    fn take_services(&mut self) -> Vec<ServiceRef<'r>> {
        if let Some(services) = self.services.take() {
            return services;
        }
        match &self.records {
            Records::These(list) => services_of(list.iter().copied()),
            Records::All => services_of(self.source.in_id_order()),
        }
    }

    /// A service-level filter; `indexed` names its posting list, if any.
    fn service_step(
        &mut self,
        filter: String,
        indexed: Option<(IndexedField, &str)>,
        keep: &dyn Fn(&Service) -> bool,
        label: &dyn Fn(&Service) -> &str,
    ) {
        let mut examples = Examples::new();
        let first_over_all = self.services.is_none() && matches!(self.records, Records::All);
        let posting = indexed
            .filter(|_| first_over_all)
            .and_then(|(field, key)| self.source.posting(field, key));
        let (before, kept) = match posting {
            Some(mut records) => {
                by_id(&mut records);
                let mut kept = services_of(records);
                kept.retain(|s| keep(service(s)));
                'walk: for r in self.source.in_id_order() {
                    for svc in &r.record.services {
                        if !examples.wants_more() {
                            break 'walk;
                        }
                        if !keep(svc) {
                            examples.offer(|| label(svc).to_owned());
                        }
                    }
                }
                (self.source.service_count(), kept)
            }
            None => {
                let services = self.take_services();
                let before = services.len();
                let mut kept = Vec::new();
                for s in services {
                    if keep(service(&s)) {
                        kept.push(s);
                    } else {
                        examples.offer(|| label(service(&s)).to_owned());
                    }
                }
                (before, kept)
            }
        };
        let after = kept.len();
        self.services = Some(kept);
        self.push(filter, "services", before, after, examples);
    }
}

/// Explains `selector` for `consumer` over `source` (see the module docs).
pub(crate) fn explain_from<'r>(
    source: &dyn RecordSource<'r>,
    selector: &Selector,
    consumer: &Consumer,
) -> Explanation {
    let mut x = Explainer {
        source,
        records: Records::All,
        services: None,
        steps: Vec::new(),
    };
    let s = selector;
    if let Some(v) = set(&s.extension_id) {
        x.record_step(
            format!("extension_id = {v}"),
            Some((IndexedField::Id, v)),
            &|r| r.id == v,
            &|r| r.id.clone(),
        );
    }
    if let Some(v) = set(&s.zone) {
        x.record_step(
            format!("zone = {v}"),
            Some((IndexedField::Zone, v)),
            &|r| r.zone == v,
            &|r| format!("{} in zone {}", r.id, or_none(&r.zone)),
        );
    }
    if let Some(v) = set(&s.product) {
        x.record_step(
            format!("product = {v}"),
            Some((IndexedField::Product, v)),
            &|r| r.product == v,
            &|r| format!("{} is {}", r.id, or_none(&r.product)),
        );
    }
    if let Some(v) = set(&s.version) {
        match VersionRequirement::parse(v) {
            Ok(req) => x.record_step(
                format!("version {v}"),
                None,
                &|r| req.matches(&r.version),
                &|r| format!("have {}", or_none(&r.version)),
            ),
            Err(e) => x.record_step(format!("version {v} ({e})"), None, &|_| false, &|r| {
                r.id.clone()
            }),
        }
    }
    if let Some(v) = set(&s.service_id) {
        x.service_step(
            format!("service_id = {v}"),
            None,
            &|svc| svc.id == v,
            &|svc| &svc.id,
        );
    }
    if let Some(v) = set(&s.service_resource) {
        x.service_step(
            format!("service_resource = {v}"),
            Some((IndexedField::Resource, v)),
            &|svc| svc.resource == v,
            &|svc| &svc.resource,
        );
    }
    if let Some(v) = set(&s.service_category) {
        x.service_step(
            format!("service_category = {v}"),
            Some((IndexedField::Category, v)),
            &|svc| svc.category == v,
            &|svc| &svc.category,
        );
    }

    // Credentials.
    let project = set(&consumer.project);
    let user = set(&consumer.user);
    let services = x.take_services();
    let before = services.len();
    let mut examples = Examples::new();
    let mut eligible = Vec::new();
    for s in services {
        let (r, svc) = (&s.0.record, service(&s));
        let kept = !svc.authrequired
            || svc
                .credentials
                .iter()
                .any(|c| c.eligible_for(project, user));
        if kept {
            eligible.push(s);
        } else {
            examples.offer(|| format!("{}/{}", r.id, svc.id));
        }
    }
    let after = eligible.len();
    x.push(
        format!(
            "credentials eligible for project {}, user {} (services with authrequired)",
            project.unwrap_or("(none)"),
            user.unwrap_or("(none)")
        ),
        "services",
        before,
        after,
        examples,
    );

    // Endpoints.
    let czone = consumer.zone();
    let (mut total, mut kept) = (0, 0);
    let mut examples = Examples::new();
    for s in &eligible {
        let (r, svc) = (&s.0.record, service(s));
        let same_zone = !r.zone.is_empty() && czone == Some(r.zone.as_str());
        for e in &svc.endpoints {
            total += 1;
            if e.endpoint_type == EndpointType::External || same_zone {
                kept += 1;
            } else {
                examples.offer(|| format!("{} (internal to zone {})", e.url, or_none(&r.zone)));
            }
        }
    }
    x.push(
        format!(
            "endpoints reachable from zone {} (internal endpoints need the same zone)",
            czone.unwrap_or("(none)")
        ),
        "endpoints",
        total,
        kept,
        examples,
    );
    Explanation {
        steps: x.steps,
        candidates: kept,
    }
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { "(none)" } else { s }
}
