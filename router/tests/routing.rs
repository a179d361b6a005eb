//! The router's decisions (order, failover, cooldown and probes, pauses,
//! limits, registry changes, capabilities) over in-process stand-in
//! connectors whose answers each test scripts. The same behaviour against
//! real servers is in `live.rs`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use inferlink::{
    ConnectTarget, ConnectorFactory, ConnectorInfo, Connectors, Consumer, Error, ErrorKind, Health,
    InferRequest, InferResponse, InferenceConnector, MemoryStore, ModelRef, RawInvocation,
    RawRequest, RawResponse, Registry, Result, Selector, TensorInference, async_trait,
};
use inferlink_router::{RateLimit, RouterConfig, StaticSource, Strategy};
use inferlink_router::{Router, RouterBuilder};

/// How a stand-in endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Ok,
    /// Connection refused: nothing was sent (the transport's rule `always`).
    Refused,
    /// Connection reset after sending: the server may have acted (`if_idempotent`).
    Reset,
    /// 429 with a Retry-After in milliseconds.
    Throttled(u64),
    /// A model error (not retryable).
    Broken,
    /// Answers after this many milliseconds.
    Slow(u64),
}

/// The scripted world: each URL's mode and what each URL received.
#[derive(Debug, Default)]
struct World {
    modes: Mutex<HashMap<String, Mode>>,
    calls: Mutex<HashMap<String, usize>>,
    probes: Mutex<HashMap<String, usize>>,
}

impl World {
    fn set(&self, url: &str, mode: Mode) {
        self.modes.lock().unwrap().insert(url.to_owned(), mode);
    }
    fn mode(&self, url: &str) -> Mode {
        *self.modes.lock().unwrap().get(url).unwrap_or(&Mode::Ok)
    }
    fn calls(&self, url: &str) -> usize {
        *self.calls.lock().unwrap().get(url).unwrap_or(&0)
    }
    fn probes(&self, url: &str) -> usize {
        *self.probes.lock().unwrap().get(url).unwrap_or(&0)
    }
}

/// An in-process stand-in for a server: answers as its URL's [`Mode`] says.
#[derive(Debug)]
struct Scripted {
    info: ConnectorInfo,
    world: Arc<World>,
    raw: bool,
}

impl Scripted {
    async fn answer(&self) -> Result<()> {
        let url = &self.info.endpoint;
        *self
            .world
            .calls
            .lock()
            .unwrap()
            .entry(url.clone())
            .or_default() += 1;
        let transient = |kind, rule: &str| {
            Error::new(kind, format!("{url} scripted failure"))
                .with_endpoint(url.clone())
                .with_context("retry", rule.to_owned())
        };
        match self.world.mode(url) {
            Mode::Ok => Ok(()),
            Mode::Slow(ms) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(())
            }
            Mode::Refused => Err(transient(ErrorKind::Unavailable, "always")),
            Mode::Reset => Err(transient(ErrorKind::Unavailable, "if_idempotent")),
            Mode::Throttled(ms) => Err(transient(ErrorKind::RateLimited, "always")
                .with_context("server_retry_after_ms", ms.to_string())),
            Mode::Broken => Err(Error::new(ErrorKind::ModelError, "the model failed")),
        }
    }
}

#[async_trait]
impl InferenceConnector for Scripted {
    fn info(&self) -> &ConnectorInfo {
        &self.info
    }
    async fn health(&self) -> Result<Health> {
        let url = &self.info.endpoint;
        *self
            .world
            .probes
            .lock()
            .unwrap()
            .entry(url.clone())
            .or_default() += 1;
        Ok(Health {
            live: true,
            ready: self.world.mode(url) == Mode::Ok,
        })
    }
    fn as_tensor_inference(&self) -> Option<&dyn TensorInference> {
        Some(self)
    }
    fn as_raw_invocation(&self) -> Option<&dyn RawInvocation> {
        self.raw.then_some(self as _)
    }
    fn as_embedding(&self) -> Option<&dyn inferlink::Embedding> {
        Some(self)
    }
}

/// Every embedding costs 300 prompt tokens, as the stand-in reports it.
#[async_trait]
impl inferlink::Embedding for Scripted {
    async fn embed(
        &self,
        _model: &ModelRef,
        request: inferlink::EmbedRequest,
    ) -> Result<inferlink::EmbedResponse> {
        self.answer().await?;
        let usage = inferlink::Usage {
            prompt_tokens: Some(300),
            completion_tokens: None,
            total_tokens: Some(300),
        };
        Ok(
            inferlink::EmbedResponse::new(vec![vec![1.0]; request.texts.len()])?
                .with_usage(Some(usage)),
        )
    }
}

#[async_trait]
impl TensorInference for Scripted {
    async fn infer(&self, model: &ModelRef, _request: InferRequest) -> Result<InferResponse> {
        self.answer().await?;
        Ok(InferResponse {
            model_name: model.name.clone(),
            id: Some(self.info.endpoint.clone()),
            ..InferResponse::default()
        })
    }
}

#[async_trait]
impl RawInvocation for Scripted {
    async fn invoke(&self, _model: &ModelRef, _request: RawRequest) -> Result<RawResponse> {
        self.answer().await?;
        Ok(RawResponse {
            body: self.info.endpoint.clone().into(),
            content_type: None,
            headers: Vec::new(),
        })
    }
}

/// Builds [`Scripted`] connectors; URLs containing `raw` also take `invoke`.
#[derive(Debug)]
struct ScriptedFactory {
    world: Arc<World>,
    built: AtomicUsize,
}

#[async_trait]
impl ConnectorFactory for ScriptedFactory {
    fn vendor(&self) -> &str {
        "scripted"
    }
    fn products(&self) -> &[&str] {
        &["scripted"]
    }
    async fn connect(&self, target: &ConnectTarget) -> Result<Arc<dyn InferenceConnector>> {
        self.built.fetch_add(1, Ordering::SeqCst);
        inferlink::kit::check_keys(target, &[inferlink::transport::config::KEY_SET])?;
        Ok(Arc::new(Scripted {
            info: ConnectorInfo::new("scripted", "test", &target.url),
            world: Arc::clone(&self.world),
            raw: target.url.contains("raw"),
        }))
    }
}

fn setup() -> (Arc<World>, Arc<Connectors>) {
    let world = Arc::new(World::default());
    let mut connectors = Connectors::new();
    connectors.register(ScriptedFactory {
        world: Arc::clone(&world),
        built: AtomicUsize::new(0),
    });
    (world, Arc::new(connectors))
}

fn target(url: &str, pairs: &[(&str, &str)]) -> ConnectTarget {
    let mut t = ConnectTarget::new("scripted", url).with_service("api");
    for (k, v) in pairs {
        t = t.with_value(*k, inferlink::ConfigValue::Plain((*v).into()));
    }
    t
}

fn fast_config(strategy: Strategy) -> RouterConfig {
    RouterConfig {
        strategy,
        cooldown: Duration::from_millis(200),
        probe_interval: Duration::from_millis(50),
        deadline: Duration::from_secs(5),
        ..RouterConfig::default()
    }
}

async fn router(connectors: &Arc<Connectors>, urls: &[&str], config: RouterConfig) -> Router {
    let targets = urls.iter().map(|u| target(u, &[])).collect();
    RouterBuilder::new(StaticSource(targets), Arc::clone(connectors))
        .config(config)
        .build()
        .await
        .unwrap()
}

async fn call(router: &Router, idempotent: bool) -> Result<String> {
    let mut request = InferRequest::new();
    request.idempotent = idempotent;
    let response = router.infer(&ModelRef::new("m"), request).await?;
    Ok(response.id.unwrap())
}

fn caps(router: &Router) -> inferlink::Capabilities {
    (router as &dyn InferenceConnector).capabilities()
}

const A: &str = "http://127.0.0.1:9101";
const B: &str = "http://127.0.0.1:9102";
const C: &str = "http://127.0.0.1:9103";

#[tokio::test]
async fn failover_cooldown_probe_and_return() {
    let (world, connectors) = setup();
    let router = router(&connectors, &[A, B], fast_config(Strategy::RankedFailover)).await;
    assert_eq!(
        call(&router, false).await.unwrap(),
        A,
        "the best candidate first"
    );

    world.set(A, Mode::Refused);
    for _ in 0..20 {
        assert_eq!(
            call(&router, false).await.unwrap(),
            B,
            "refused: nothing sent, so failover even when not idempotent"
        );
    }
    assert_eq!(
        world.calls(A),
        1 + 3,
        "three failures cool A down; then it gets no call"
    );
    assert_eq!(router.cooled_down(), vec![A.to_owned()]);

    // A serves again: after the cooldown a probe puts it back.
    world.set(A, Mode::Ok);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(call(&router, false).await.unwrap(), A);
    assert!(
        world.probes(A) >= 1,
        "a health probe ran before A got traffic"
    );
    assert!(router.cooled_down().is_empty());
}

#[tokio::test]
async fn a_failed_probe_keeps_the_candidate_out() {
    let (world, connectors) = setup();
    let router = router(&connectors, &[A, B], fast_config(Strategy::RankedFailover)).await;
    world.set(A, Mode::Refused);
    for _ in 0..3 {
        call(&router, false).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(250)).await;
    let before = world.calls(A);
    for _ in 0..5 {
        assert_eq!(call(&router, false).await.unwrap(), B);
    }
    assert_eq!(
        world.calls(A),
        before,
        "the probe said not serving: no call went to A"
    );
    assert!(world.probes(A) >= 1);
}

#[tokio::test]
async fn the_transport_rule_decides_for_calls_that_may_have_reached_the_server() {
    let (world, connectors) = setup();
    let router = router(&connectors, &[A, B], fast_config(Strategy::RankedFailover)).await;
    world.set(A, Mode::Reset);
    let e = call(&router, false).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(
        world.calls(B),
        0,
        "not idempotent and maybe processed: not resent"
    );
    assert_eq!(
        call(&router, true).await.unwrap(),
        B,
        "idempotent: resent to B"
    );

    world.set(A, Mode::Broken);
    let e = call(&router, true).await.unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::ModelError,
        "a model error is not a reason to fail over"
    );
    assert_eq!(world.calls(B), 1);
}

#[tokio::test]
async fn every_candidate_down_gives_the_last_error_within_the_deadline() {
    let (world, connectors) = setup();
    let router = router(&connectors, &[A, B], fast_config(Strategy::RankedFailover)).await;
    world.set(A, Mode::Refused);
    world.set(B, Mode::Refused);
    let e = call(&router, true).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(e.context("router_attempts"), Some("2"));
    assert_eq!((world.calls(A), world.calls(B)), (1, 1));
}

#[tokio::test]
async fn round_robin_follows_the_weights() {
    let (world, connectors) = setup();
    let targets = vec![
        target(A, &[]),
        target(B, &[("route_weight", "1")]),
        target(C, &[("route_weight", "2")]),
    ];
    let router = RouterBuilder::new(StaticSource(targets), connectors)
        .strategy(Strategy::RoundRobin)
        .build()
        .await
        .unwrap();
    for _ in 0..400 {
        call(&router, false).await.unwrap();
    }
    assert_eq!(
        (world.calls(A), world.calls(B), world.calls(C)),
        (100, 100, 200)
    );
}

#[tokio::test]
async fn least_in_flight_avoids_the_busy_candidate() {
    let (world, connectors) = setup();
    let router = router(&connectors, &[A, B], fast_config(Strategy::LeastInFlight)).await;
    world.set(A, Mode::Slow(300));
    world.set(B, Mode::Slow(300));
    let first = {
        let router = router.clone();
        tokio::spawn(async move { call(&router, false).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = call(&router, false).await.unwrap();
    let first = first.await.unwrap().unwrap();
    assert_ne!(first, second, "the second call went to the idle candidate");
}

#[tokio::test]
async fn latency_weighting_prefers_the_fast_candidate() {
    let (world, connectors) = setup();
    let router = router(&connectors, &[A, B], fast_config(Strategy::LatencyWeighted)).await;
    world.set(A, Mode::Slow(20));
    for _ in 0..100 {
        call(&router, false).await.unwrap();
    }
    assert!(
        world.calls(B) > 3 * world.calls(A),
        "fast B {} vs slow A {}",
        world.calls(B),
        world.calls(A)
    );
}

#[tokio::test]
async fn max_in_flight_holds_calls_back() {
    let (world, connectors) = setup();
    let router = RouterBuilder::new(
        StaticSource(vec![
            target(A, &[("route_max_in_flight", "1")]),
            target(B, &[]),
        ]),
        connectors,
    )
    .build()
    .await
    .unwrap();
    world.set(A, Mode::Slow(200));
    let first = {
        let router = router.clone();
        tokio::spawn(async move { call(&router, false).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(call(&router, false).await.unwrap(), B, "A is at its cap");
    assert_eq!(first.await.unwrap().unwrap(), A);
}

#[tokio::test(start_paused = true)]
async fn a_429_pauses_the_candidate_for_its_retry_after() {
    let (world, connectors) = setup();
    let only_a = router(&connectors, &[A], fast_config(Strategy::RankedFailover)).await;
    world.set(A, Mode::Throttled(2000));
    let start = tokio::time::Instant::now();
    let task = {
        let router = only_a.clone();
        tokio::spawn(async move { call(&router, false).await })
    };
    tokio::time::sleep(Duration::from_millis(1999)).await;
    assert_eq!(world.calls(A), 1, "nothing is sent during the pause");
    world.set(A, Mode::Ok);
    assert_eq!(task.await.unwrap().unwrap(), A);
    assert!(start.elapsed() >= Duration::from_secs(2));
    assert_eq!(world.calls(A), 2);

    // With another candidate, the throttled one is skipped while paused.
    let both = router(&connectors, &[A, B], fast_config(Strategy::RankedFailover)).await;
    world.set(A, Mode::Throttled(1000));
    assert_eq!(call(&both, false).await.unwrap(), B);
    world.set(A, Mode::Ok);
    assert_eq!(call(&both, false).await.unwrap(), B, "A is paused");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(call(&both, false).await.unwrap(), A, "the pause is over");
}

#[tokio::test(start_paused = true)]
async fn rate_limits_per_service_and_per_consumer() {
    let (world, connectors) = setup();
    let service_limited = RouterBuilder::new(
        StaticSource(vec![target(
            A,
            &[("route_requests_per_second", "10"), ("route_burst", "1")],
        )]),
        Arc::clone(&connectors),
    )
    .build()
    .await
    .unwrap();
    let start = tokio::time::Instant::now();
    for _ in 0..51 {
        call(&service_limited, false).await.unwrap();
    }
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_millis(5100),
        "{took:?}"
    );

    let consumer_limited = RouterBuilder::new(StaticSource(vec![target(B, &[])]), connectors)
        .consumer_limit(RateLimit::per_minute(120.0).with_burst(1.0))
        .build()
        .await
        .unwrap();
    let start = tokio::time::Instant::now();
    for _ in 0..11 {
        call(&consumer_limited, false).await.unwrap();
    }
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_millis(5100),
        "{took:?}"
    );
    assert_eq!((world.calls(A), world.calls(B)), (51, 11));
}

#[tokio::test]
async fn route_keys_are_checked_and_never_reach_the_connector() {
    let (_world, connectors) = setup();
    let typo = RouterBuilder::new(
        StaticSource(vec![target(A, &[("route_wieght", "2")])]),
        Arc::clone(&connectors),
    )
    .build()
    .await
    .unwrap_err();
    assert_eq!(typo.kind(), ErrorKind::Config);
    assert!(
        typo.message().contains("did you mean \"route_weight\""),
        "{typo}"
    );
    // The stand-in's factory refuses keys it does not know: the router's
    // keys are removed before it is called.
    RouterBuilder::new(
        StaticSource(vec![target(
            A,
            &[("route_weight", "2"), ("route_max_in_flight", "4")],
        )]),
        connectors,
    )
    .build()
    .await
    .unwrap();
}

#[tokio::test]
async fn capabilities_are_what_the_candidates_offer() {
    let (world, connectors) = setup();
    let tensors_only = router(&connectors, &[A], fast_config(Strategy::RankedFailover)).await;
    assert!(caps(&tensors_only).infer);
    assert!(!caps(&tensors_only).invoke);
    let e = tensors_only
        .invoke(&ModelRef::new("m"), RawRequest::json("{}"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);

    let raw = "http://127.0.0.1:9104/raw";
    let mixed = router(
        &connectors,
        &[A, raw],
        fast_config(Strategy::RankedFailover),
    )
    .await;
    assert!(caps(&mixed).infer && caps(&mixed).invoke);
    let answer = mixed
        .invoke(&ModelRef::new("m"), RawRequest::json("{}"))
        .await
        .unwrap();
    assert_eq!(
        answer.body,
        raw.as_bytes(),
        "invoke goes only to the candidate that has it"
    );
    assert_eq!(world.calls(A), 0);
}

fn record(id: &str, url: &str) -> inferlink::ExtensionRecord {
    let yaml = format!(
        r#"
id: {id}
product: scripted
version: "1.0.0"
description: replica {id}
services:
  - id: api
    resource: scripted
    category: prediction-serving
    endpoints:
      - url: {url}
        type: external
"#
    );
    inferlink::format::parse_records(&yaml)
        .unwrap()
        .pop()
        .unwrap()
}

#[tokio::test]
async fn registry_changes_take_effect_on_the_next_call() {
    let (world, connectors) = setup();
    let registry = Arc::new(Registry::open(MemoryStore::new()).await.unwrap());
    registry.register(record("r1", A)).await.unwrap();
    registry.register(record("r2", B)).await.unwrap();
    let router = RouterBuilder::new(
        inferlink_router::RegistrySource::new(
            Arc::clone(&registry),
            Selector::category("prediction-serving"),
            Consumer::anywhere(),
        ),
        connectors,
    )
    .strategy(Strategy::RoundRobin)
    .build()
    .await
    .unwrap();
    assert_eq!(router.endpoints().len(), 2);
    for _ in 0..4 {
        call(&router, false).await.unwrap();
    }
    assert_eq!((world.calls(A), world.calls(B)), (2, 2));

    registry.register(record("r3", C)).await.unwrap();
    for _ in 0..3 {
        call(&router, false).await.unwrap();
    }
    assert_eq!(
        world.calls(C),
        1,
        "the added replica is in rotation at once"
    );
    assert_eq!(router.endpoints().len(), 3);

    registry.unregister("r1").await.unwrap();
    let before = world.calls(A);
    for _ in 0..6 {
        call(&router, false).await.unwrap();
    }
    assert_eq!(world.calls(A), before, "the removed replica gets no call");

    // A moved endpoint: the new URL gets the calls.
    let moved = "http://127.0.0.1:9105";
    registry.upsert(record("r2", moved)).await.unwrap();
    for _ in 0..4 {
        call(&router, false).await.unwrap();
    }
    assert_eq!(world.calls(moved), 2);
}

#[tokio::test]
async fn metrics_count_requests_errors_failovers_and_latency() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let _local = metrics::set_default_local_recorder(&recorder);
    let (world, connectors) = setup();
    let router = router(&connectors, &[A, B], fast_config(Strategy::RankedFailover)).await;
    world.set(A, Mode::Refused);
    for _ in 0..5 {
        call(&router, false).await.unwrap();
    }
    let text = handle.render();
    let value = |series: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no series {series} in\n{text}"))
    };
    let a = format!("service=\"api\",endpoint=\"{A}\",model=\"m\"");
    let b = format!("service=\"api\",endpoint=\"{B}\",model=\"m\"");
    assert_eq!(
        value(&format!("inferlink_router_requests_total{{{a}}}")),
        3.0
    );
    assert_eq!(
        value(&format!("inferlink_router_requests_total{{{b}}}")),
        5.0
    );
    assert_eq!(
        value(&format!("inferlink_router_failovers_total{{{a}}}")),
        3.0
    );
    assert_eq!(
        value(&format!("inferlink_router_retries_total{{{b}}}")),
        3.0
    );
    assert_eq!(
        value(&format!(
            "inferlink_router_errors_total{{{a},kind=\"unavailable\"}}"
        )),
        3.0
    );
    assert_eq!(
        value(&format!(
            "inferlink_router_request_duration_seconds_count{{{b}}}"
        )),
        5.0
    );
    assert_eq!(value(&format!("inferlink_router_in_flight{{{b}}}")), 0.0);
    assert_eq!(
        value(&format!(
            "inferlink_router_cooldowns_total{{service=\"api\",endpoint=\"{A}\"}}"
        )),
        1.0
    );
}

#[tokio::test(start_paused = true)]
async fn tokens_per_minute_follow_the_reported_usage() {
    let (world, connectors) = setup();
    let router = RouterBuilder::new(
        StaticSource(vec![target(A, &[("route_tokens_per_minute", "600")])]),
        Arc::clone(&connectors),
    )
    .config(RouterConfig {
        deadline: Duration::from_secs(60),
        ..RouterConfig::default()
    })
    .build()
    .await
    .unwrap();
    let model = ModelRef::new("e");
    let embed = |router: &Router| {
        let router = router.clone();
        let model = model.clone();
        async move {
            inferlink::Embedding::embed(&router, &model, inferlink::EmbedRequest::new(["a"])).await
        }
    };
    let start = tokio::time::Instant::now();
    embed(&router).await.unwrap();
    embed(&router).await.unwrap();
    assert!(
        start.elapsed() < Duration::from_millis(1),
        "600 tokens: two calls at once"
    );
    // The budget is spent: the next call waits until the balance is
    // positive again (10 tokens/s), and leaves it 299 tokens in debt.
    embed(&router).await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(100));
    embed(&router).await.unwrap();
    assert!(
        start.elapsed() >= Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(world.calls(A), 4);

    // A wait longer than the deadline fails at once, as rate limited.
    let short = RouterBuilder::new(
        StaticSource(vec![target(B, &[("route_tokens_per_minute", "600")])]),
        connectors,
    )
    .config(RouterConfig {
        deadline: Duration::from_secs(5),
        ..RouterConfig::default()
    })
    .build()
    .await
    .unwrap();
    for _ in 0..3 {
        embed(&short).await.unwrap();
    }
    let before = tokio::time::Instant::now();
    let e = embed(&short).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
    assert_eq!(
        before.elapsed(),
        Duration::ZERO,
        "no wait that cannot succeed"
    );
    assert_eq!(world.calls(B), 3);
}
