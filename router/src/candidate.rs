//! One candidate of a router: its connector, settings, limiter, health
//! state (failures, cooldown, probes), load and latency, and metrics.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use inferlink_core::{ConnectTarget, InferenceConnector};
use tokio::time::Instant;

use crate::config::{RouterConfig, ServiceSettings};
use crate::limit::Limiter;
use crate::metrics::{CandidateMetrics, Labels};

/// Whether a candidate may get a call now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Availability {
    /// Healthy (or not yet failed often enough to be cooled down).
    Ready,
    /// Cooled down until then.
    Cooling(Instant),
    /// The cooldown is over: a health probe decides.
    ProbeDue,
}

#[derive(Debug, Default)]
struct HealthState {
    /// Failures in a row (errors that say the server is unavailable or too slow).
    failures: u32,
    /// No traffic before this instant.
    cooled_until: Option<Instant>,
}

/// A candidate service endpoint and what the router knows about it.
#[derive(Debug)]
pub(crate) struct Candidate {
    /// The target it was built from (without the router's keys), to tell
    /// whether a registry change touched it.
    pub target: ConnectTarget,
    pub connector: Arc<dyn InferenceConnector>,
    pub settings: ServiceSettings,
    pub limiter: Limiter,
    pub in_flight: AtomicU32,
    /// The latency average in nanoseconds, as f64 bits (0: no sample yet).
    latency_bits: AtomicU64,
    health: Mutex<HealthState>,
    /// Whether `health` may hold anything but the initial state (a failure
    /// or a cooldown): false lets the hot path skip the lock.
    troubled: AtomicBool,
    probing: AtomicBool,
    pub metrics: CandidateMetrics,
}

impl Candidate {
    pub fn new(
        target: ConnectTarget,
        connector: Arc<dyn InferenceConnector>,
        settings: ServiceSettings,
    ) -> Self {
        let service = if target.origin.is_empty() {
            target.service.clone()
        } else {
            format!("{}/{}", target.origin, target.service)
        };
        let labels = Labels {
            service,
            endpoint: connector.info().endpoint.clone(),
        };
        Candidate {
            limiter: Limiter::new(settings.limit),
            target,
            connector,
            settings,
            in_flight: AtomicU32::new(0),
            latency_bits: AtomicU64::new(0),
            health: Mutex::new(HealthState::default()),
            troubled: AtomicBool::new(false),
            probing: AtomicBool::new(false),
            metrics: CandidateMetrics::new(labels),
        }
    }

    fn health(&self) -> std::sync::MutexGuard<'_, HealthState> {
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn availability(&self, now: Instant) -> Availability {
        if !self.troubled.load(Ordering::Acquire) {
            return Availability::Ready;
        }
        match self.health().cooled_until {
            None => Availability::Ready,
            Some(until) if until > now => Availability::Cooling(until),
            Some(_) if self.probing.load(Ordering::Acquire) => {
                Availability::Cooling(now + Duration::from_millis(5))
            }
            Some(_) => Availability::ProbeDue,
        }
    }

    /// Whether the candidate is at its concurrency cap.
    pub fn is_full(&self) -> bool {
        self.settings
            .max_in_flight
            .is_some_and(|max| self.in_flight.load(Ordering::Relaxed) >= max)
    }

    /// The latency average (`None` before the first success).
    pub fn latency(&self) -> Option<Duration> {
        let nanos = f64::from_bits(self.latency_bits.load(Ordering::Relaxed));
        (nanos > 0.0).then(|| Duration::from_nanos(nanos as u64))
    }

    /// A call succeeded in `elapsed`: failures reset, latency averaged.
    pub fn succeeded(&self, elapsed: Duration, smoothing: f64) {
        if self.troubled.load(Ordering::Acquire) {
            let mut health = self.health();
            health.failures = 0;
            if health.cooled_until.is_none() {
                self.troubled.store(false, Ordering::Release);
            }
        }
        let sample = elapsed.as_nanos() as f64;
        let old = f64::from_bits(self.latency_bits.load(Ordering::Relaxed));
        let new = if old > 0.0 {
            old + smoothing * (sample - old)
        } else {
            sample.max(1.0)
        };
        self.latency_bits.store(new.to_bits(), Ordering::Relaxed);
    }

    /// A call failed in a way that says the server is unavailable: counts
    /// the failure and cools the candidate down at the threshold. True when
    /// this failure started a cooldown.
    pub fn failed(&self, now: Instant, config: &RouterConfig) -> bool {
        let mut health = self.health();
        self.troubled.store(true, Ordering::Release);
        health.failures = health.failures.saturating_add(1);
        if health.failures >= config.failure_threshold.max(1) && health.cooled_until.is_none() {
            health.cooled_until = Some(now + config.cooldown);
            drop(health);
            self.metrics.cooldown();
            tracing::warn!(
                service = %self.target.service,
                endpoint = %self.connector.info().endpoint,
                cooldown_ms = config.cooldown.as_millis() as u64,
                "router: candidate cooled down after repeated failures"
            );
            return true;
        }
        false
    }

    /// Runs a health probe if no other call is probing: a serving answer
    /// puts the candidate back in rotation, anything else cools it down for
    /// one more probe interval. True when the candidate may get traffic.
    pub async fn probe(&self, config: &RouterConfig, remaining: Duration) -> bool {
        if self
            .probing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        let budget = config.probe_interval.min(remaining);
        let serving = matches!(
            tokio::time::timeout(budget, self.connector.health()).await,
            Ok(Ok(health)) if health.is_serving()
        );
        {
            let mut health = self.health();
            if serving {
                health.failures = 0;
                health.cooled_until = None;
                self.troubled.store(false, Ordering::Release);
            } else {
                health.cooled_until = Some(Instant::now() + config.probe_interval);
            }
        }
        self.metrics.probe(serving);
        tracing::info!(
            service = %self.target.service,
            endpoint = %self.connector.info().endpoint,
            serving,
            "router: health probe of a cooled-down candidate"
        );
        self.probing.store(false, Ordering::Release);
        serving
    }

    /// Whether the candidate is cooled down now.
    pub fn is_cooled(&self) -> bool {
        self.troubled.load(Ordering::Acquire) && self.health().cooled_until.is_some()
    }
}
