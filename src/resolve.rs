//! Selector resolution: from "what I need" to one service, endpoint and credential set.
//!
//! A [`Selector`] names what a workflow step or host feature needs (by id,
//! product, version, zone, service category or resource); a [`Consumer`]
//! says who asks and from where (zone, project, user). Resolution walks the
//! candidates — every (record, service, endpoint, credentials) combination
//! that passes the filters — and ranks them deterministically:
//!
//! 1. records in the consumer's zone first;
//! 2. the narrowest eligible credential scope (user, project, global, then no credentials);
//! 3. credentials marked `default: true` first;
//! 4. extension id, service id, endpoint position in the record, credentials id.
//!
//! Eligibility rules: credentials by scope ([`Credentials::eligible_for`]); a
//! service with `authrequired: true` and no eligible credentials is not a
//! candidate; internal endpoints only for a consumer in the record's zone.
//! When nothing matches, the error names the filter that removed the last
//! candidates. The full rules are in `docs/resolution.md`.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::model::{Credentials, Endpoint, EndpointType, ExtensionRecord, Service};
use crate::store::{Revision, StoredRecord};
use crate::target::{ConnectTarget, ToConnectTarget};
use crate::version::VersionRequirement;

mod explain;
pub use explain::{ExplainStep, Explanation, explain_in};
pub(crate) use explain::{IndexedField, RecordSource, explain_from};

/// What a consumer needs. Unset (or empty) fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    /// The selector's name, used in `{{ extension.NAME.… }}` expressions (required in workflow steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Only this record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension_id: Option<String>,
    /// Only the service with this id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_id: Option<String>,
    /// Only records in this zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Only records of this product.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// An exact version, or a version constraint (see `docs/version-constraints.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Only services of this category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_category: Option<String>,
    /// Only services of this resource type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_resource: Option<String>,
}

fn set(field: &Option<String>) -> Option<&str> {
    field.as_deref().filter(|s| !s.is_empty())
}

impl Selector {
    /// A selector for one record's service: `extension_id` and `service_id`.
    pub fn service(extension_id: &str, service_id: &str) -> Self {
        Selector {
            extension_id: Some(extension_id.into()),
            service_id: Some(service_id.into()),
            ..Default::default()
        }
    }

    /// A portable selector by service category.
    pub fn category(category: &str) -> Self {
        Selector {
            service_category: Some(category.into()),
            ..Default::default()
        }
    }

    /// A portable selector by service resource type.
    pub fn resource(resource: &str) -> Self {
        Selector {
            service_resource: Some(resource.into()),
            ..Default::default()
        }
    }

    /// The name, or `"selector"` when unnamed (for messages).
    pub fn display_name(&self) -> &str {
        set(&self.name).unwrap_or("selector")
    }

    /// Parses the version field; an invalid constraint is an [`ErrorKind::InvalidInput`] at `version`.
    fn version_requirement(&self) -> Result<Option<VersionRequirement>> {
        set(&self.version)
            .map(|v| {
                VersionRequirement::parse(v)
                    .map_err(|e| Error::invalid_at("version", e.to_string()))
            })
            .transpose()
    }
}

/// Who is asking, and from where.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consumer {
    /// The zone the consumer runs in; decides access to internal endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// The project the consumer works in; decides project- and user-scoped credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The user the consumer acts for; decides user-scoped credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

impl Consumer {
    /// A consumer outside every zone, with no project or user: external endpoints, global credentials.
    pub fn anywhere() -> Self {
        Consumer::default()
    }

    /// A consumer running in `zone`.
    pub fn in_zone(zone: &str) -> Self {
        Consumer {
            zone: Some(zone.into()),
            ..Default::default()
        }
    }

    /// The same consumer working in `project`.
    pub fn with_project(mut self, project: &str) -> Self {
        self.project = Some(project.into());
        self
    }

    /// The same consumer acting for `user`.
    pub fn with_user(mut self, user: &str) -> Self {
        self.user = Some(user.into());
        self
    }

    fn zone(&self) -> Option<&str> {
        set(&self.zone)
    }
}

pub use crate::target::ConfigValue;

/// One concrete choice: a record's service, one of its endpoints and (maybe) one credential set.
///
/// Cheap to clone (the record is shared). `Debug` and `Serialize` show ids and
/// plain values; credential values appear as `<hidden>`.
#[derive(Clone)]
pub struct Resolution {
    stored: Arc<StoredRecord>,
    service: usize,
    endpoint: usize,
    credentials: Option<usize>,
    same_zone: bool,
}

impl Resolution {
    /// The whole record the choice was made in.
    pub fn record(&self) -> &ExtensionRecord {
        &self.stored.record
    }

    /// The store revision of the record version this resolution was made from.
    pub fn revision(&self) -> Revision {
        self.stored.revision
    }

    /// The chosen service.
    pub fn service(&self) -> &Service {
        &self.record().services[self.service]
    }

    /// The chosen endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.service().endpoints[self.endpoint]
    }

    /// The chosen credential set, if the service has an eligible one.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.map(|i| &self.service().credentials[i])
    }

    /// True when the record is in the consumer's zone.
    pub fn in_consumer_zone(&self) -> bool {
        self.same_zone
    }

    /// Configuration merged in order extension < service < endpoint < credentials (later wins).
    pub fn configuration(&self) -> BTreeMap<String, ConfigValue> {
        let mut merged = BTreeMap::new();
        let plain = [
            &self.record().configuration,
            &self.service().configuration,
            &self.endpoint().configuration,
        ];
        for level in plain {
            for (k, v) in level {
                merged.insert(k.clone(), ConfigValue::Plain(v.clone()));
            }
        }
        if let Some(creds) = self.credentials() {
            for (k, v) in &creds.configuration {
                merged.insert(k.clone(), ConfigValue::Secret(v.clone()));
            }
        }
        merged
    }

    /// What a connector is built from: the endpoint URL, the merged
    /// configuration (secrets stay secret), the record's product and the
    /// service's resource; the origin names the record and service.
    pub fn target(&self) -> ConnectTarget {
        let mut target =
            ConnectTarget::new(self.record().product.clone(), self.endpoint().url.clone())
                .with_resource(self.service().resource.clone())
                .with_version(self.record().version.clone())
                .with_service(self.service().id.clone())
                .with_origin(self.record().id.clone());
        target.configuration = self.configuration();
        target
    }

    /// One configuration value from the merged configuration.
    pub fn config_value(&self, key: &str) -> Option<ConfigValue> {
        self.configuration().remove(key)
    }

    /// True when `other` gives a consumer exactly what this one gives: the
    /// same record, service, endpoint and credential set, with the same
    /// values (secrets compared by value). Descriptions, other services and
    /// the revision are not compared.
    pub(crate) fn same_choice(&self, other: &Resolution) -> bool {
        let (a, b) = (self.record(), other.record());
        let (sa, sb) = (self.service(), other.service());
        a.id == b.id
            && a.product == b.product
            && a.version == b.version
            && a.zone == b.zone
            && a.configuration == b.configuration
            && sa.id == sb.id
            && sa.resource == sb.resource
            && sa.category == sb.category
            && sa.configuration == sb.configuration
            && self.endpoint == other.endpoint
            && self.endpoint() == other.endpoint()
            && self.credentials() == other.credentials()
            && self.same_zone == other.same_zone
    }

    fn rank_key(&self) -> RankKey<'_> {
        let service = self.service();
        let creds = self.credentials();
        RankKey {
            zone: u8::from(!self.same_zone),
            breadth: creds.map_or(3, |c| c.scope.breadth()),
            not_default: u8::from(!creds.is_some_and(|c| c.default)),
            extension_id: &self.record().id,
            service_id: &service.id,
            endpoint: self.endpoint,
            credentials_id: creds.map_or("", |c| c.id.as_str()),
        }
    }

    fn summary(&self) -> ResolutionSummary<'_> {
        let service = self.service();
        let endpoint = self.endpoint();
        ResolutionSummary {
            extension_id: &self.record().id,
            product: &self.record().product,
            version: &self.record().version,
            zone: &self.record().zone,
            service_id: &service.id,
            service_resource: &service.resource,
            service_category: &service.category,
            endpoint_url: &endpoint.url,
            endpoint_type: endpoint.endpoint_type,
            credentials_id: self.credentials().map(|c| c.id.as_str()),
            credentials_scope: self.credentials().map(|c| c.scope.as_str()),
            configuration: self.configuration(),
        }
    }
}

#[derive(Serialize)]
struct ResolutionSummary<'a> {
    extension_id: &'a str,
    product: &'a str,
    version: &'a str,
    zone: &'a str,
    service_id: &'a str,
    service_resource: &'a str,
    service_category: &'a str,
    endpoint_url: &'a str,
    endpoint_type: EndpointType,
    #[serde(skip_serializing_if = "Option::is_none")]
    credentials_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    credentials_scope: Option<&'a str>,
    configuration: BTreeMap<String, ConfigValue>,
}

impl Serialize for Resolution {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.summary().serialize(serializer)
    }
}

impl fmt::Debug for Resolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolution")
            .field("extension_id", &self.record().id)
            .field("service_id", &self.service().id)
            .field("endpoint", &self.endpoint().url)
            .field("credentials_id", &self.credentials().map(|c| &c.id))
            .field("configuration", &self.configuration())
            .finish()
    }
}

impl fmt::Display for Resolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} at {} ({})",
            self.record().id,
            self.service().id,
            self.endpoint().url,
            self.endpoint().endpoint_type
        )?;
        if let Some(c) = self.credentials() {
            write!(f, " with credentials {} ({})", c.id, c.scope)?;
        }
        Ok(())
    }
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct RankKey<'a> {
    zone: u8,
    breadth: u8,
    not_default: u8,
    extension_id: &'a str,
    service_id: &'a str,
    endpoint: usize,
    credentials_id: &'a str,
}

/// A selector prepared for matching (version constraint parsed once).
#[derive(Debug)]
pub(crate) struct Matcher<'a> {
    selector: &'a Selector,
    version: Option<VersionRequirement>,
    consumer: &'a Consumer,
}

impl<'a> Matcher<'a> {
    pub(crate) fn new(selector: &'a Selector, consumer: &'a Consumer) -> Result<Self> {
        Ok(Matcher {
            version: selector.version_requirement()?,
            selector,
            consumer,
        })
    }

    fn record_matches(&self, r: &ExtensionRecord) -> bool {
        let s = self.selector;
        set(&s.extension_id).is_none_or(|v| v == r.id)
            && set(&s.zone).is_none_or(|v| v == r.zone)
            && set(&s.product).is_none_or(|v| v == r.product)
            && self.version.as_ref().is_none_or(|v| v.matches(&r.version))
    }

    fn service_matches(&self, svc: &Service) -> bool {
        let s = self.selector;
        set(&s.service_id).is_none_or(|v| v == svc.id)
            && set(&s.service_resource).is_none_or(|v| v == svc.resource)
            && set(&s.service_category).is_none_or(|v| v == svc.category)
    }

    fn in_zone(&self, r: &ExtensionRecord) -> bool {
        !r.zone.is_empty() && self.consumer.zone() == Some(r.zone.as_str())
    }

    fn endpoint_reachable(&self, same_zone: bool, e: &Endpoint) -> bool {
        e.endpoint_type == EndpointType::External || same_zone
    }

    fn eligible(&self, c: &Credentials) -> bool {
        c.eligible_for(set(&self.consumer.project), set(&self.consumer.user))
    }

    /// Calls `f` with every candidate of one record.
    pub(crate) fn for_each_candidate(
        &self,
        stored: &Arc<StoredRecord>,
        mut f: impl FnMut(Resolution),
    ) {
        let record = &stored.record;
        if !self.record_matches(record) {
            return;
        }
        let same_zone = self.in_zone(record);
        for (si, svc) in record.services.iter().enumerate() {
            if !self.service_matches(svc) {
                continue;
            }
            let any_eligible = svc.credentials.iter().any(|c| self.eligible(c));
            if svc.authrequired && !any_eligible {
                continue;
            }
            for (ei, ep) in svc.endpoints.iter().enumerate() {
                if !self.endpoint_reachable(same_zone, ep) {
                    continue;
                }
                let make = |credentials| Resolution {
                    stored: stored.clone(),
                    service: si,
                    endpoint: ei,
                    credentials,
                    same_zone,
                };
                if any_eligible {
                    for (ci, c) in svc.credentials.iter().enumerate() {
                        if self.eligible(c) {
                            f(make(Some(ci)));
                        }
                    }
                } else {
                    f(make(None));
                }
            }
        }
    }

    /// The best candidate among `records`, if any.
    pub(crate) fn best<'r>(
        &self,
        records: impl IntoIterator<Item = &'r Arc<StoredRecord>>,
    ) -> Option<Resolution> {
        let mut best: Option<Resolution> = None;
        for record in records {
            self.for_each_candidate(record, |candidate| {
                let better = match &best {
                    None => true,
                    Some(b) => candidate.rank_key().cmp(&b.rank_key()) == Ordering::Less,
                };
                if better {
                    best = Some(candidate);
                }
            });
        }
        best
    }

    /// Every candidate among `records`, ranked best first.
    pub(crate) fn all<'r>(
        &self,
        records: impl IntoIterator<Item = &'r Arc<StoredRecord>>,
    ) -> Vec<Resolution> {
        let mut out = Vec::new();
        for record in records {
            self.for_each_candidate(record, |c| out.push(c));
        }
        out.sort_by(|a, b| a.rank_key().cmp(&b.rank_key()));
        out
    }
}

/// Resolves `selector` for `consumer` by scanning `records` (no index).
///
/// [`crate::Registry::resolve`] does the same over its index; this function
/// serves hosts that keep records themselves, and is the baseline in the
/// resolution benchmark.
pub fn resolve_in(
    records: &[Arc<StoredRecord>],
    selector: &Selector,
    consumer: &Consumer,
) -> Result<Resolution> {
    let matcher = Matcher::new(selector, consumer)?;
    matcher
        .best(records)
        .ok_or_else(|| no_match(selector, &explain_in(records, selector, consumer)))
}

/// Every candidate for `selector` among `records`, ranked best first (no index).
pub fn resolve_all_in(
    records: &[Arc<StoredRecord>],
    selector: &Selector,
    consumer: &Consumer,
) -> Result<Vec<Resolution>> {
    let all = Matcher::new(selector, consumer)?.all(records);
    if all.is_empty() {
        return Err(no_match(selector, &explain_in(records, selector, consumer)));
    }
    Ok(all)
}

/// The [`ErrorKind::NoMatch`] error for `selector`, naming the filter that removed the last candidates.
pub(crate) fn no_match(selector: &Selector, explanation: &Explanation) -> Error {
    let name = selector.display_name();
    let passing = |n: usize, unit: &str| match n {
        1 => format!("1 {} passes", unit.trim_end_matches('s')),
        n => format!("{n} {unit} pass"),
    };
    let message = match explanation.blocking_step() {
        None => format!("{name}: no candidate matched"),
        Some(step) => {
            let dropped = if step.dropped.is_empty() {
                String::new()
            } else {
                format!(" ({})", step.dropped.join(", "))
            };
            let previous = explanation
                .steps
                .iter()
                .take_while(|s| !std::ptr::eq(*s, step))
                .last();
            match previous {
                // Say what the earlier filters kept, e.g. "2 records pass "product = kserve"".
                Some(prev) => format!(
                    "{name}: {} \"{}\"; none passes \"{}\"{dropped}",
                    passing(prev.after, prev.unit),
                    prev.filter,
                    step.filter
                ),
                None if step.before == 0 && step.unit == "records" => {
                    format!("{name}: the registry has no records")
                }
                None if step.before == 0 => {
                    format!("{name}: there are no {} to choose from", step.unit)
                }
                None => format!(
                    "{name}: none of {} {} passes \"{}\"{dropped}",
                    step.before, step.unit, step.filter
                ),
            }
        }
    };
    Error::new(ErrorKind::NoMatch, message)
}

impl ToConnectTarget for Resolution {
    fn to_connect_target(&self) -> ConnectTarget {
        self.target()
    }
}

/// Configuration merged in order extension < service < endpoint < credentials
/// (later wins); credential values stay secret.
fn merged_configuration(
    record: &ExtensionRecord,
    service: &Service,
    endpoint: &Endpoint,
    credentials: Option<&Credentials>,
) -> BTreeMap<String, ConfigValue> {
    let mut merged = BTreeMap::new();
    for level in [
        &record.configuration,
        &service.configuration,
        &endpoint.configuration,
    ] {
        for (k, v) in level {
            merged.insert(k.clone(), ConfigValue::Plain(v.clone()));
        }
    }
    if let Some(creds) = credentials {
        for (k, v) in &creds.configuration {
            merged.insert(k.clone(), ConfigValue::Secret(v.clone()));
        }
    }
    merged
}

fn target_of(
    record: &ExtensionRecord,
    service: &Service,
    endpoint: &Endpoint,
    credentials: Option<&Credentials>,
) -> ConnectTarget {
    let mut target = ConnectTarget::new(record.product.clone(), endpoint.url.clone())
        .with_resource(service.resource.clone())
        .with_version(record.version.clone())
        .with_service(service.id.clone())
        .with_origin(record.id.clone());
    target.configuration = merged_configuration(record, service, endpoint, credentials);
    target
}

/// Every target a record can resolve to, whoever the consumer: one per
/// service × endpoint × credential set (or no credential set when a service
/// has none), in record order. For checking a record against the connectors
/// (`inferlink check`) without a consumer's zone, project or user.
pub fn connect_targets(record: &ExtensionRecord) -> Vec<ConnectTarget> {
    let mut targets = Vec::new();
    for service in &record.services {
        let credentials: Vec<Option<&Credentials>> = if service.credentials.is_empty() {
            vec![None]
        } else {
            service.credentials.iter().map(Some).collect()
        };
        for endpoint in &service.endpoints {
            for creds in &credentials {
                targets.push(target_of(record, service, endpoint, *creds));
            }
        }
    }
    targets
}
