//! The router: a connector over a selector's ranked candidates.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use inferlink::{Consumer, Registry, Selector};
use inferlink_core::transport::RetryRule;
use inferlink_core::transport::config::keys::RETRY_MAX_ATTEMPTS;
use inferlink_core::transport::retry::Idempotency;
use inferlink_core::{
    ConfigValue, ConnectTarget, ConnectorInfo, Connectors, Error, ErrorKind, Health,
    InferenceConnector, ModelRef, Result, Usage,
};
use tokio::time::Instant;

use crate::candidate::{Availability, Candidate};
use crate::config::{RouterConfig, ServiceSettings, Strategy};
use crate::limit::{Limiter, RateLimit};

/// Where a router's candidates come from, best first.
pub trait CandidateSource: Send + Sync + fmt::Debug {
    /// A number that changes whenever the candidates may have changed
    /// (read on every call: it must be cheap).
    fn revision(&self) -> u64;

    /// The candidates now, best first; an error when there are none.
    fn candidates(&self) -> Result<Vec<ConnectTarget>>;
}

/// The candidates of a selector in a registry ([`Registry::resolve_all`]),
/// followed as the registry changes.
#[derive(Debug)]
pub struct RegistrySource {
    registry: Arc<Registry>,
    selector: Selector,
    consumer: Consumer,
}

impl RegistrySource {
    /// The candidates `registry` ranks for `selector` and `consumer`.
    pub fn new(registry: Arc<Registry>, selector: Selector, consumer: Consumer) -> Self {
        RegistrySource {
            registry,
            selector,
            consumer,
        }
    }
}

impl CandidateSource for RegistrySource {
    fn revision(&self) -> u64 {
        self.registry.revision()
    }

    fn candidates(&self) -> Result<Vec<ConnectTarget>> {
        Ok(self
            .registry
            .resolve_all(&self.selector, &self.consumer)?
            .iter()
            .map(|r| r.target())
            .collect())
    }
}

/// A fixed list of targets, best first (for hosts without a registry).
#[derive(Debug, Clone)]
pub struct StaticSource(pub Vec<ConnectTarget>);

impl CandidateSource for StaticSource {
    fn revision(&self) -> u64 {
        0
    }

    fn candidates(&self) -> Result<Vec<ConnectTarget>> {
        if self.0.is_empty() {
            return Err(Error::new(ErrorKind::NoMatch, "the router has no targets"));
        }
        Ok(self.0.clone())
    }
}

/// The candidates built at one revision of the source.
#[derive(Debug)]
struct CandidateSet {
    revision: u64,
    candidates: Vec<Arc<Candidate>>,
}

/// Builds a [`Router`].
#[derive(Debug)]
pub struct RouterBuilder {
    source: Arc<dyn CandidateSource>,
    connectors: Arc<Connectors>,
    config: RouterConfig,
    consumer_limit: Option<Arc<Limiter>>,
}

impl RouterBuilder {
    /// Routes over `source`'s candidates, connecting through `connectors`.
    pub fn new(source: impl CandidateSource + 'static, connectors: Arc<Connectors>) -> Self {
        RouterBuilder {
            source: Arc::new(source),
            connectors,
            config: RouterConfig::default(),
            consumer_limit: None,
        }
    }

    /// Sets the whole configuration.
    pub fn config(mut self, config: RouterConfig) -> Self {
        self.config = config;
        self
    }

    /// Sets the strategy.
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.config.strategy = strategy;
        self
    }

    /// Limits every call of this router, whatever candidate serves it (the
    /// consumer's limit).
    pub fn consumer_limit(mut self, limit: RateLimit) -> Self {
        self.consumer_limit = Some(Arc::new(Limiter::new(limit)));
        self
    }

    /// Shares one consumer limiter between several routers (one consumer
    /// calling several selectors).
    pub fn shared_consumer_limit(mut self, limiter: Arc<Limiter>) -> Self {
        self.consumer_limit = Some(limiter);
        self
    }

    /// Builds the router: resolves and connects every candidate now. A
    /// candidate whose configuration is refused (a bad or unknown key) fails
    /// the build, so a typo is seen at once.
    pub async fn build(self) -> Result<Router> {
        let targets = self.source.candidates()?;
        let revision = self.source.revision();
        let mut candidates = Vec::with_capacity(targets.len());
        for target in targets {
            candidates.push(Arc::new(
                connect_candidate(&self.connectors, &self.config, target).await?,
            ));
        }
        let endpoints: Vec<&str> = candidates
            .iter()
            .map(|c| c.connector.info().endpoint.as_str())
            .collect();
        // The vendor is the candidates' when they share one (errors carry
        // the vendor of the candidate that failed), "router" otherwise.
        let vendor = match candidates.first() {
            Some(first)
                if candidates
                    .iter()
                    .all(|c| c.connector.info().vendor == first.connector.info().vendor) =>
            {
                first.connector.info().vendor.clone()
            }
            _ => "router".to_owned(),
        };
        let info = ConnectorInfo::new(
            vendor,
            format!("router:{}", self.config.strategy.as_str()),
            endpoints.join(", "),
        );
        Ok(Router {
            inner: Arc::new(Inner {
                source: self.source,
                connectors: self.connectors,
                config: self.config,
                consumer_limit: self.consumer_limit,
                seen: AtomicU64::new(revision),
                set: RwLock::new(Arc::new(CandidateSet {
                    revision,
                    candidates,
                })),
                refresh: tokio::sync::Mutex::new(()),
                turn: AtomicUsize::new(0),
                info,
            }),
        })
    }
}

async fn connect_candidate(
    connectors: &Connectors,
    config: &RouterConfig,
    mut target: ConnectTarget,
) -> Result<Candidate> {
    let origin = target.origin.clone();
    let tag = |e: Error| {
        if origin.is_empty() {
            e
        } else {
            e.with_context("record", origin.clone())
        }
    };
    ServiceSettings::check_route_keys(&target).map_err(tag)?;
    let settings = ServiceSettings::take_from(&mut target).map_err(tag)?;
    let identity = target.clone();
    if let Some(attempts) = config.transport_attempts {
        target
            .configuration
            .entry(RETRY_MAX_ATTEMPTS.to_owned())
            .or_insert_with(|| ConfigValue::Plain(attempts.to_string()));
    }
    let connector = connectors.connect_target(&target).await?;
    Ok(Candidate::new(identity, connector, settings))
}

/// A connector over the ranked candidates of a selector (or any
/// [`CandidateSource`]): each call goes to a candidate chosen by the
/// [`Strategy`], moves on to the next when a candidate fails before it could
/// have acted (or, for idempotent calls, whenever the failure is
/// transient), respects per-service and per-consumer rate limits and the
/// pauses servers ask for, and cools down candidates that fail repeatedly
/// until a health probe says they serve again. Registry changes take effect
/// on the next call. Cheap to clone.
///
/// Its capabilities are those its candidates offer (a call of a family goes
/// only to candidates that have it).
#[derive(Clone)]
pub struct Router {
    inner: Arc<Inner>,
}

struct Inner {
    source: Arc<dyn CandidateSource>,
    connectors: Arc<Connectors>,
    config: RouterConfig,
    consumer_limit: Option<Arc<Limiter>>,
    /// The revision of the current set (checked against the source per call).
    seen: AtomicU64,
    set: RwLock<Arc<CandidateSet>>,
    refresh: tokio::sync::Mutex<()>,
    /// Round-robin position.
    turn: AtomicUsize,
    info: ConnectorInfo,
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("source", &self.inner.source)
            .field("strategy", &self.inner.config.strategy)
            .field("candidates", &self.endpoints())
            .finish()
    }
}

/// What the router remembers of a candidate within one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tried {
    No,
    /// Throttled: may be tried again once its pause is over.
    Throttled,
    Failed,
}

impl Router {
    /// A router over the candidates `registry` ranks for `selector` and
    /// `consumer`, with the default configuration (ranked failover).
    pub async fn connect(
        registry: Arc<Registry>,
        connectors: Arc<Connectors>,
        selector: Selector,
        consumer: Consumer,
    ) -> Result<Router> {
        RouterBuilder::new(
            RegistrySource::new(registry, selector, consumer),
            connectors,
        )
        .build()
        .await
    }

    /// A builder (strategy, limits, deadline …).
    pub fn builder(
        source: impl CandidateSource + 'static,
        connectors: Arc<Connectors>,
    ) -> RouterBuilder {
        RouterBuilder::new(source, connectors)
    }

    /// The configuration in force.
    pub fn config(&self) -> &RouterConfig {
        &self.inner.config
    }

    /// The endpoints of the candidates now, best first.
    pub fn endpoints(&self) -> Vec<String> {
        self.snapshot()
            .candidates
            .iter()
            .map(|c| c.connector.info().endpoint.clone())
            .collect()
    }

    /// The endpoints of the candidates that are cooled down now.
    pub fn cooled_down(&self) -> Vec<String> {
        self.snapshot()
            .candidates
            .iter()
            .filter(|c| c.is_cooled())
            .map(|c| c.connector.info().endpoint.clone())
            .collect()
    }

    fn snapshot(&self) -> Arc<CandidateSet> {
        let set = self.inner.set.read().unwrap_or_else(|p| p.into_inner());
        Arc::clone(&set)
    }

    /// The candidates for the source as it is now (rebuilt first if it changed).
    async fn current(&self) -> Result<Arc<CandidateSet>> {
        let now = self.inner.source.revision();
        if self.inner.seen.load(Ordering::Acquire) == now {
            return Ok(self.snapshot());
        }
        let _one_at_a_time = self.inner.refresh.lock().await;
        let old = self.snapshot();
        let now = self.inner.source.revision();
        if old.revision == now {
            return Ok(old);
        }
        let targets = self.inner.source.candidates()?;
        let mut candidates = Vec::with_capacity(targets.len());
        let mut first_error = None;
        for target in targets {
            let mut stripped = target.clone();
            // Compare without the router's keys, as candidates store them.
            let _ = ServiceSettings::take_from(&mut stripped);
            let kept = old.candidates.iter().find(|c| {
                c.target == stripped && {
                    let mut again = target.clone();
                    ServiceSettings::take_from(&mut again).ok().as_ref() == Some(&c.settings)
                }
            });
            match kept {
                Some(same) => candidates.push(Arc::clone(same)),
                None => match connect_candidate(&self.inner.connectors, &self.inner.config, target)
                    .await
                {
                    Ok(c) => candidates.push(Arc::new(c)),
                    Err(e) => {
                        tracing::warn!(error = %e, "router: a candidate could not be connected; skipped");
                        first_error.get_or_insert(e);
                    }
                },
            }
        }
        if candidates.is_empty()
            && let Some(e) = first_error
        {
            return Err(e);
        }
        let set = Arc::new(CandidateSet {
            revision: now,
            candidates,
        });
        *self.inner.set.write().unwrap_or_else(|p| p.into_inner()) = Arc::clone(&set);
        self.inner.seen.store(now, Ordering::Release);
        tracing::debug!(
            revision = now,
            candidates = set.candidates.len(),
            "router: candidates refreshed"
        );
        Ok(set)
    }

    /// The order in which this call tries the eligible candidates.
    fn order(&self, set: &CandidateSet, eligible: Vec<usize>) -> Vec<usize> {
        let mut order = eligible;
        let candidates = &set.candidates;
        let weight = |i: usize| u64::from(candidates[i].settings.weight.max(1));
        match self.inner.config.strategy {
            Strategy::RankedFailover => {}
            Strategy::RoundRobin => {
                let total: u64 = order.iter().map(|&i| weight(i)).sum();
                let mut k = (self.inner.turn.fetch_add(1, Ordering::Relaxed) as u64) % total.max(1);
                let mut start = 0;
                for (pos, &i) in order.iter().enumerate() {
                    if k < weight(i) {
                        start = pos;
                        break;
                    }
                    k -= weight(i);
                }
                order.rotate_left(start);
            }
            Strategy::LeastInFlight => {
                let n = order.len().max(1);
                order.rotate_left(self.inner.turn.fetch_add(1, Ordering::Relaxed) % n);
                order.sort_by_key(|&i| {
                    u64::from(candidates[i].in_flight.load(Ordering::Relaxed)) * 1000 / weight(i)
                });
            }
            Strategy::LatencyWeighted => {
                let known = order.iter().filter_map(|&i| candidates[i].latency()).min();
                let score = |i: usize| {
                    let latency = candidates[i]
                        .latency()
                        .or(known)
                        .unwrap_or(Duration::from_millis(1));
                    weight(i) as f64 / latency.as_secs_f64().max(1e-6)
                };
                let total: f64 = order.iter().map(|&i| score(i)).sum();
                let mut pick = fastrand::f64() * total;
                let mut first = 0;
                for (pos, &i) in order.iter().enumerate() {
                    pick -= score(i);
                    if pick <= 0.0 {
                        first = pos;
                        break;
                    }
                }
                let chosen = order.remove(first);
                order.sort_by(|&a, &b| score(b).total_cmp(&score(a)));
                order.insert(0, chosen);
            }
        }
        order
    }

    /// Runs one call: picks candidates in order, honours limits, cooldowns
    /// and pauses, and moves on after failures the retry rule allows.
    async fn route<T, F, Fut>(
        &self,
        model: Option<&ModelRef>,
        idempotency: Idempotency,
        has: fn(&dyn InferenceConnector) -> bool,
        usage: fn(&T) -> Option<Usage>,
        mut call: F,
    ) -> Result<T>
    where
        F: FnMut(Arc<dyn InferenceConnector>) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let config = &self.inner.config;
        let call_start = Instant::now();
        let deadline = call_start + config.deadline;
        let set = self.current().await?;
        let eligible: Vec<usize> = (0..set.candidates.len())
            .filter(|&i| has(set.candidates[i].connector.as_ref()))
            .collect();
        if eligible.is_empty() {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "no candidate of this router supports this call",
            ));
        }
        if let Some(limiter) = &self.inner.consumer_limit {
            wait_for(limiter, deadline).await?;
        }
        let eligible_count = eligible.len();
        let order = self.order(&set, eligible);
        let mut tried = vec![Tried::No; set.candidates.len()];
        let max_attempts = eligible_count + config.extra_attempts as usize;
        let mut attempts = 0usize;
        let mut last_error: Option<Error> = None;
        let model_label: std::borrow::Cow<'_, str> = match (config.metrics, model) {
            (true, Some(model)) if model.version.is_none() => model.name.as_str().into(),
            (true, Some(model)) => model.to_string().into(),
            _ => "".into(),
        };
        let mut first_pick = true;
        loop {
            if attempts >= max_attempts {
                return Err(give_up(last_error, attempts));
            }
            // One clock read per pick (the call's start for the first one).
            let now = if first_pick {
                first_pick = false;
                call_start
            } else {
                Instant::now()
            };
            let mut chosen = None;
            let mut earliest: Option<Instant> = None;
            let mut held_by_limit = false;
            let mut sooner = |at: Instant| {
                earliest = Some(earliest.map_or(at, |e: Instant| e.min(at)));
            };
            for &i in &order {
                let candidate = &set.candidates[i];
                if tried[i] == Tried::Failed {
                    continue;
                }
                match candidate.availability(now) {
                    Availability::Ready => {}
                    Availability::Cooling(until) => {
                        sooner(until);
                        continue;
                    }
                    Availability::ProbeDue => {
                        let remaining = deadline.saturating_duration_since(now);
                        if !candidate.probe(config, remaining).await {
                            sooner(Instant::now() + config.probe_interval);
                            continue;
                        }
                    }
                }
                if candidate.is_full() {
                    sooner(now + Duration::from_millis(1));
                    continue;
                }
                match candidate.limiter.try_acquire(now) {
                    Ok(()) => {
                        chosen = Some(i);
                        break;
                    }
                    Err(wait) => {
                        held_by_limit = true;
                        sooner(now + wait);
                    }
                }
            }
            let Some(i) = chosen else {
                match earliest {
                    Some(at) if at < deadline => {
                        tokio::time::sleep_until(at).await;
                        continue;
                    }
                    Some(_) if last_error.is_none() => {
                        let kind = if held_by_limit {
                            ErrorKind::RateLimited
                        } else {
                            ErrorKind::Unavailable
                        };
                        return Err(Error::new(
                            kind,
                            format!(
                                "no candidate can take the call within the deadline of {} ms \
                                 (cooled down, at their concurrency cap or rate limit)",
                                config.deadline.as_millis()
                            ),
                        ));
                    }
                    _ => return Err(give_up(last_error, attempts)),
                }
            };
            let candidate = &set.candidates[i];
            let series = config
                .metrics
                .then(|| candidate.metrics.series(&model_label));
            if let Some(series) = &series {
                if attempts > 0 {
                    series.retries.increment(1);
                }
                series.requests.increment(1);
                series.in_flight.increment(1.0);
            }
            attempts += 1;
            candidate.in_flight.fetch_add(1, Ordering::Relaxed);
            let started = now;
            let remaining = deadline.saturating_duration_since(started);
            let outcome =
                match tokio::time::timeout(remaining, call(Arc::clone(&candidate.connector))).await
                {
                    Ok(outcome) => outcome,
                    Err(_) => Err(Error::new(
                        ErrorKind::Timeout,
                        format!(
                            "the router's deadline of {} ms passed during the call",
                            config.deadline.as_millis()
                        ),
                    )
                    .with_endpoint(candidate.connector.info().endpoint.clone())),
                };
            let elapsed = started.elapsed();
            candidate.in_flight.fetch_sub(1, Ordering::Relaxed);
            if let Some(series) = &series {
                series.in_flight.decrement(1.0);
                series.latency.record(elapsed.as_secs_f64());
            }
            let error = match outcome {
                Ok(value) => {
                    candidate.succeeded(elapsed, config.latency_smoothing);
                    if let Some(used) = usage(&value) {
                        let prompt = used.prompt_tokens.unwrap_or(0);
                        let completion = used.completion_tokens.unwrap_or(0);
                        let total = used.total_tokens.unwrap_or(prompt + completion);
                        if let Some(series) = &series {
                            candidate.metrics.tokens(series, prompt, completion);
                        }
                        candidate.limiter.spend_tokens(total);
                        if let Some(limiter) = &self.inner.consumer_limit {
                            limiter.spend_tokens(total);
                        }
                    }
                    return Ok(value);
                }
                Err(error) => error,
            };
            if let Some(series) = &series {
                candidate.metrics.error(series, error.kind());
            }
            let rule = RetryRule::of_error(&error).unwrap_or(match error.kind() {
                ErrorKind::RateLimited => RetryRule::Always,
                _ => RetryRule::IfIdempotent,
            });
            let after = Instant::now();
            if error.kind() == ErrorKind::RateLimited {
                let pause = crate::limit::pause_of(&error).unwrap_or(config.default_retry_after);
                candidate.limiter.pause(after, pause);
                candidate.metrics.throttled();
                tried[i] = Tried::Throttled;
            } else if error.is_retryable() {
                candidate.failed(after, config);
                tried[i] = Tried::Failed;
            } else {
                return Err(error);
            }
            if !error.is_retryable() || !rule.allows(idempotency) {
                return Err(error.with_context("router_attempts", attempts.to_string()));
            }
            tracing::debug!(
                endpoint = %candidate.connector.info().endpoint,
                error = %error,
                "router: trying another candidate"
            );
            if let Some(series) = &series {
                series.failovers.increment(1);
            }
            last_error = Some(error);
        }
    }
}

async fn wait_for(limiter: &Limiter, deadline: Instant) -> Result<()> {
    loop {
        let now = Instant::now();
        match limiter.try_acquire(now) {
            Ok(()) => return Ok(()),
            Err(wait) if now + wait < deadline => tokio::time::sleep(wait).await,
            Err(wait) => {
                return Err(Error::new(
                    ErrorKind::RateLimited,
                    format!(
                        "the consumer's rate limit lets the next call through in {} ms, past the deadline",
                        wait.as_millis()
                    ),
                ));
            }
        }
    }
}

fn give_up(last: Option<Error>, attempts: usize) -> Error {
    match last {
        Some(e) => e.with_context("router_attempts", attempts.to_string()),
        None => Error::new(
            ErrorKind::Unavailable,
            "no candidate was available for the call",
        ),
    }
}

impl Router {
    /// Runs a call of a family through [`Router::route`] (used by the family impls).
    pub(crate) async fn dispatch<T, F, Fut>(
        &self,
        model: Option<&ModelRef>,
        idempotency: Idempotency,
        has: fn(&dyn InferenceConnector) -> bool,
        usage: fn(&T) -> Option<Usage>,
        call: F,
    ) -> Result<T>
    where
        F: FnMut(Arc<dyn InferenceConnector>) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        self.route(model, idempotency, has, usage, call).await
    }

    /// Whether any candidate now has a family.
    pub(crate) fn any_has(&self, has: fn(&dyn InferenceConnector) -> bool) -> bool {
        self.snapshot()
            .candidates
            .iter()
            .any(|c| has(c.connector.as_ref()))
    }

    /// The health of the first candidate (in ranked order) that is not
    /// cooled down and answers serving; otherwise the last answer.
    pub(crate) async fn first_health(&self) -> Result<Health> {
        let set = self.current().await?;
        let mut last = Err(Error::new(
            ErrorKind::Unavailable,
            "every candidate is cooled down",
        ));
        for candidate in &set.candidates {
            if candidate.is_cooled() {
                continue;
            }
            let answer = candidate.connector.health().await;
            if matches!(&answer, Ok(h) if h.is_serving()) {
                return answer;
            }
            last = answer;
        }
        last
    }

    pub(crate) fn info_ref(&self) -> &ConnectorInfo {
        &self.inner.info
    }
}
