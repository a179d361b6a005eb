//! The router's metrics, through the `metrics` crate facade: the host
//! installs the recorder (Prometheus, OpenTelemetry bridge, StatsD …) it
//! wants; without one every update is a no-op.
//!
//! Every series has the labels `service` (record/service), `endpoint` (the
//! connector's endpoint, without user info or query) and `model`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use inferlink_core::ErrorKind;
use metrics::{Counter, Gauge, Histogram};

/// The metric names (all prefixed `inferlink_router_`).
pub mod names {
    /// Counter: calls sent to a candidate (every attempt counts once).
    pub const REQUESTS: &str = "inferlink_router_requests_total";
    /// Counter: failed attempts, with the label `kind` (the error kind, e.g. `unavailable`).
    pub const ERRORS: &str = "inferlink_router_errors_total";
    /// Counter: attempts after the first within one call (same or other candidate).
    pub const RETRIES: &str = "inferlink_router_retries_total";
    /// Counter: calls moved away from this candidate to another after a failure.
    pub const FAILOVERS: &str = "inferlink_router_failovers_total";
    /// Histogram: seconds from sending an attempt to its answer.
    pub const LATENCY: &str = "inferlink_router_request_duration_seconds";
    /// Gauge: attempts in flight now.
    pub const IN_FLIGHT: &str = "inferlink_router_in_flight";
    /// Counter: tokens the server reported, with the label `type` (`prompt` or `completion`).
    pub const TOKENS: &str = "inferlink_router_tokens_total";
    /// Counter: times a candidate was cooled down (no `model` label).
    pub const COOLDOWNS: &str = "inferlink_router_cooldowns_total";
    /// Counter: health probes of a cooled-down candidate, with the label
    /// `outcome` (`serving` or `failed`; no `model` label).
    pub const PROBES: &str = "inferlink_router_probes_total";
    /// Counter: 429 answers that paused a candidate (no `model` label).
    pub const THROTTLED: &str = "inferlink_router_throttled_total";
}

/// The label values of one candidate.
#[derive(Debug, Clone)]
pub(crate) struct Labels {
    pub service: String,
    pub endpoint: String,
}

/// Handles of one (candidate, model) pair, registered once and reused.
#[derive(Debug)]
pub(crate) struct ModelSeries {
    pub requests: Counter,
    pub retries: Counter,
    pub failovers: Counter,
    pub latency: Histogram,
    pub in_flight: Gauge,
    model: String,
}

/// The series of one candidate, per model.
#[derive(Debug)]
pub(crate) struct CandidateMetrics {
    labels: Labels,
    by_model: RwLock<HashMap<String, Arc<ModelSeries>>>,
}

impl CandidateMetrics {
    pub fn new(labels: Labels) -> Self {
        CandidateMetrics {
            labels,
            by_model: RwLock::new(HashMap::new()),
        }
    }

    fn base(&self, model: &str) -> [(&'static str, String); 3] {
        [
            ("service", self.labels.service.clone()),
            ("endpoint", self.labels.endpoint.clone()),
            ("model", model.to_owned()),
        ]
    }

    /// The handles for `model` (registered on first use).
    pub fn series(&self, model: &str) -> Arc<ModelSeries> {
        if let Ok(map) = self.by_model.read()
            && let Some(found) = map.get(model)
        {
            return Arc::clone(found);
        }
        let labels = self.base(model);
        let series = Arc::new(ModelSeries {
            requests: metrics::counter!(names::REQUESTS, &labels),
            retries: metrics::counter!(names::RETRIES, &labels),
            failovers: metrics::counter!(names::FAILOVERS, &labels),
            latency: metrics::histogram!(names::LATENCY, &labels),
            in_flight: metrics::gauge!(names::IN_FLIGHT, &labels),
            model: model.to_owned(),
        });
        if let Ok(mut map) = self.by_model.write() {
            // Bounded: model names come from the host's calls; past 1024
            // distinct names the handles are not cached.
            if map.len() < 1024 {
                map.insert(model.to_owned(), Arc::clone(&series));
            }
        }
        series
    }

    pub fn error(&self, series: &ModelSeries, kind: ErrorKind) {
        let [s, e, m] = self.base(&series.model);
        metrics::counter!(
            names::ERRORS,
            &[s, e, m, ("kind", kind.as_str().replace(' ', "_"))]
        )
        .increment(1);
    }

    pub fn tokens(&self, series: &ModelSeries, prompt: u64, completion: u64) {
        for (kind, count) in [("prompt", prompt), ("completion", completion)] {
            if count > 0 {
                let [s, e, m] = self.base(&series.model);
                metrics::counter!(names::TOKENS, &[s, e, m, ("type", kind.to_owned())])
                    .increment(count);
            }
        }
    }

    fn candidate_labels(&self) -> [(&'static str, String); 2] {
        [
            ("service", self.labels.service.clone()),
            ("endpoint", self.labels.endpoint.clone()),
        ]
    }

    pub fn cooldown(&self) {
        metrics::counter!(names::COOLDOWNS, &self.candidate_labels()).increment(1);
    }

    pub fn probe(&self, serving: bool) {
        let [s, e] = self.candidate_labels();
        let outcome = if serving { "serving" } else { "failed" };
        metrics::counter!(names::PROBES, &[s, e, ("outcome", outcome.to_owned())]).increment(1);
    }

    pub fn throttled(&self) {
        metrics::counter!(names::THROTTLED, &self.candidate_labels()).increment(1);
    }
}
