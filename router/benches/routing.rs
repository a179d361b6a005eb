//! What routing and its metrics add to a call, in process: a no-op
//! connector called directly, through a router (one and two candidates,
//! ranked failover and round robin), and through a router with a
//! Prometheus recorder installed (`metrics-exporter-prometheus`), all in
//! the same run. The figures are in docs/performance.md.
//!
//! ```sh
//! cargo bench -p inferlink-router --bench routing
//! ```

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use inferlink::{
    ConnectTarget, ConnectorFactory, ConnectorInfo, Connectors, Health, InferRequest,
    InferResponse, InferenceConnector, ModelRef, Result, Tensor, TensorInference, async_trait,
};
use inferlink_router::{RouterBuilder, RouterConfig, StaticSource, Strategy};

/// Answers every call at once with an empty response: only the cost of the
/// layers above it is measured.
#[derive(Debug)]
struct Noop(ConnectorInfo);

#[async_trait]
impl InferenceConnector for Noop {
    fn info(&self) -> &ConnectorInfo {
        &self.0
    }
    async fn health(&self) -> Result<Health> {
        Ok(Health::SERVING)
    }
    fn as_tensor_inference(&self) -> Option<&dyn TensorInference> {
        Some(self)
    }
}

#[async_trait]
impl TensorInference for Noop {
    async fn infer(&self, _model: &ModelRef, _request: InferRequest) -> Result<InferResponse> {
        Ok(InferResponse::default())
    }
}

#[derive(Debug)]
struct NoopFactory;

#[async_trait]
impl ConnectorFactory for NoopFactory {
    fn vendor(&self) -> &str {
        "noop"
    }
    fn products(&self) -> &[&str] {
        &["noop"]
    }
    async fn connect(&self, target: &ConnectTarget) -> Result<Arc<dyn InferenceConnector>> {
        Ok(Arc::new(Noop(ConnectorInfo::new(
            "noop",
            "in-process",
            &target.url,
        ))))
    }
}

fn targets(n: usize) -> Vec<ConnectTarget> {
    (0..n)
        .map(|i| {
            ConnectTarget::new("noop", format!("http://127.0.0.1:{}", 9000 + i)).with_service("api")
        })
        .collect()
}

/// Times `iters` sequential calls inside one `block_on`.
fn time_calls(
    rt: &tokio::runtime::Runtime,
    connector: &dyn InferenceConnector,
    request: &InferRequest,
    iters: u64,
) -> Duration {
    let model = ModelRef::new("m");
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            let answer = connector.infer(&model, request.clone()).await;
            black_box(answer.is_ok());
        }
        start.elapsed()
    })
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let connectors = Arc::new(Connectors::new().with(NoopFactory));
    let direct = rt
        .block_on(connectors.connect_target(&targets(1)[0]))
        .unwrap();
    let router = |n: usize, strategy: Strategy, metrics: bool| {
        rt.block_on(
            RouterBuilder::new(StaticSource(targets(n)), Arc::clone(&connectors))
                .config(RouterConfig {
                    strategy,
                    metrics,
                    ..RouterConfig::default()
                })
                .build(),
        )
        .unwrap()
    };
    let failover_1 = router(1, Strategy::RankedFailover, false);
    let failover_2 = router(2, Strategy::RankedFailover, false);
    let round_robin_2 = router(2, Strategy::RoundRobin, false);
    let metered = router(2, Strategy::RankedFailover, true);
    let request = InferRequest::new().with_input(Tensor::from_vec("x", vec![1.0f32, 2.0]));

    let mut group = c.benchmark_group("routing");
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("direct", |b| {
        b.iter_custom(|iters| time_calls(&rt, direct.as_ref(), &request, iters))
    });
    group.bench_function("router_failover_1", |b| {
        b.iter_custom(|iters| time_calls(&rt, &failover_1, &request, iters))
    });
    group.bench_function("router_failover_2", |b| {
        b.iter_custom(|iters| time_calls(&rt, &failover_2, &request, iters))
    });
    group.bench_function("router_round_robin_2", |b| {
        b.iter_custom(|iters| time_calls(&rt, &round_robin_2, &request, iters))
    });
    // `router_failover_2` with per-call metrics on and a Prometheus
    // recorder installed for this thread (the runtime is current-thread);
    // the routers above have per-call metrics off.
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    {
        let _local = metrics::set_default_local_recorder(&recorder);
        group.bench_function("router_failover_2_prometheus", |b| {
            b.iter_custom(|iters| time_calls(&rt, &metered, &request, iters))
        });
    }
    group.finish();

    // The same variants interleaved: 201 rounds, each timing 2 000 calls
    // of every variant in turn, so load on a shared machine hits all of
    // them alike; the median per-call time of each, and the differences.
    let variants: [(&str, &dyn InferenceConnector); 3] = [
        ("direct", direct.as_ref()),
        ("router_failover_2", &failover_2),
        ("router_failover_2_prometheus", &metered),
    ];
    let mut per_call: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for _ in 0..201 {
        for (i, (name, connector)) in variants.iter().enumerate() {
            let took = if name.ends_with("prometheus") {
                let _local = metrics::set_default_local_recorder(&recorder);
                time_calls(&rt, *connector, &request, 2_000)
            } else {
                time_calls(&rt, *connector, &request, 2_000)
            };
            per_call[i].push(took.as_nanos() as f64 / 2_000.0);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let medians: Vec<f64> = per_call.iter_mut().map(median).collect();
    for ((name, _), m) in variants.iter().zip(&medians) {
        println!("interleaved p50 {name}: {m:.0} ns/call");
    }
    println!(
        "interleaved p50 routing overhead (router_failover_2 - direct): {:.0} ns; \
         metrics overhead (prometheus - router_failover_2): {:.0} ns",
        medians[1] - medians[0],
        medians[2] - medians[1]
    );
    let rendered = handle.render();
    assert!(
        rendered.contains("inferlink_router_requests_total"),
        "the recorder saw the router's series"
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
