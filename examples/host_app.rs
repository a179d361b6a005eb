//! A host application embedding inferlink: a small HTTP service that keeps a
//! registry, resolves per request, and calls model servers through routers
//! (`inferlink-router`) over every candidate of the selector, following
//! registry changes and failing over when a candidate is down.
//!
//! ```text
//! cargo run --example host_app -- --store registry.db [--listen 127.0.0.1:8080]
//! cargo run --example host_app -- --store postgres://user@127.0.0.1:5432/db
//! cargo run --example host_app -- --store registry.db --endpoint-policy public-only
//!
//! POST /infer/{category}/{model}    body: {"inputs": [{"name", "datatype", "shape", "data"}]}
//!                                   header X-Project: alpha (optional; picks project credentials)
//! GET  /health/{category}
//! GET  /metrics                     the routers' metrics, Prometheus text format
//! ```
//!
//! `{category}` is a service category (`prediction-serving`): the same request
//! reaches Seldon on one installation and KServe on another. The registry is
//! an SQLite file (or a PostgreSQL URL) that operators edit with the
//! `inferlink` CLI while this service runs; the next request uses the change.
//! Credential values are encrypted at rest: set `INFERLINK_MASTER_KEY` or
//! `INFERLINK_KEY_FILE` as for the CLI.
//!
//! Records are written by other people, so the service can restrict where
//! they may point it: `--endpoint-policy SPEC` (or `INFERLINK_ENDPOINT_POLICY`)
//! sets the transport's endpoint policy — `public-only` for endpoints you do
//! not trust (no loopback, link-local, private or cloud metadata addresses),
//! networks and host patterns to allow, `deny:CIDR`, or `@FILE` — and
//! `--allow-file-dir DIR` (or `INFERLINK_ALLOW_FILE_DIRS`) names the
//! directories a record's `tls_*_file` keys may read (none by default). See
//! docs/transport.md.
//!
//! Errors come back as `{"error": {"kind", "message", "retryable", "vendor",
//! "endpoint", "model"}}` with a status that says whose problem it is: 400
//! for the caller's input, 404 when nothing in the registry matches or the
//! model is unknown, 502/503/504 when the model server fails, is down or is
//! slow. Messages never contain secrets (inferlink's errors never do).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use inferlink::prelude::TensorInference as _;
use inferlink::store::{PostgresOptions, PostgresStore, SqliteOptions, SqliteStore};
use inferlink::transport::HostTransportSettings;
use inferlink::{
    Connectors, Consumer, DataType, Error, ErrorKind, InferRequest, InferenceConnector, ModelRef,
    Registry, Selector, Tensor,
};
use inferlink_router::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// What every request handler shares.
struct App {
    registry: Arc<Registry>,
    connectors: Arc<Connectors>,
    /// One router per (category, project), created on first use.
    live: Mutex<HashMap<(String, Option<String>), Router>>,
    /// Renders the metrics recorded since start (`GET /metrics`).
    metrics: PrometheusHandle,
}

impl App {
    /// The router for a category and project: resolved and connected once,
    /// then following the registry.
    async fn connector(&self, category: &str, project: Option<String>) -> Result<Router, Error> {
        let key = (category.to_owned(), project.clone());
        let mut live = self.live.lock().await;
        if let Some(found) = live.get(&key) {
            return Ok(found.clone());
        }
        let consumer = Consumer {
            project,
            ..Consumer::anywhere()
        };
        let connector = Router::connect(
            Arc::clone(&self.registry),
            Arc::clone(&self.connectors),
            Selector::category(category),
            consumer,
        )
        .await?;
        live.insert(key, connector.clone());
        Ok(connector)
    }
}

/// An inferlink error as the HTTP answer a caller of this service wants.
struct ApiError(Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = match e.kind() {
            ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound | ErrorKind::NoMatch => StatusCode::NOT_FOUND,
            ErrorKind::Unavailable | ErrorKind::RateLimited => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::Unsupported => StatusCode::NOT_IMPLEMENTED,
            ErrorKind::Config => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_GATEWAY,
        };
        let body = json!({ "error": {
            "kind": format!("{:?}", e.kind()),
            "message": e.message(),
            "retryable": e.is_retryable(),
            "vendor": e.vendor(),
            "endpoint": e.endpoint(),
            "model": e.model(),
        }});
        (status, Json(body)).into_response()
    }
}

/// `POST /infer/{category}/{model}`.
async fn infer(
    State(app): State<Arc<App>>,
    Path((category, model)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    let request = parse_inputs(&body)?;
    let project = headers
        .get("x-project")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let connector = app.connector(&category, project).await?;
    let response = connector.infer(&ModelRef::new(model), request).await?;
    let outputs: Vec<Value> = response
        .outputs
        .iter()
        .map(|t| {
            let data = if t.datatype() == DataType::Bytes {
                json!(t.to_strings()?)
            } else {
                json!(t.to_f64_lossy()?)
            };
            Ok(json!({ "name": t.name(), "datatype": t.datatype().as_str(), "shape": t.shape(), "data": data }))
        })
        .collect::<Result<_, Error>>()?;
    let served_by = connector.info();
    Ok(Json(json!({
        "model_name": response.model_name,
        "outputs": outputs,
        "served_by": { "vendor": served_by.vendor, "endpoint": served_by.endpoint },
    })))
}

/// `GET /health/{category}`.
async fn health(
    State(app): State<Arc<App>>,
    Path(category): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let connector = app.connector(&category, None).await?;
    let health = connector.health().await?;
    let info = connector.info();
    Ok(Json(json!({
        "live": health.live,
        "ready": health.ready,
        "vendor": info.vendor,
        "endpoint": info.endpoint,
    })))
}

/// `GET /metrics`: every router's series in the Prometheus text format.
async fn metrics_text(State(app): State<Arc<App>>) -> String {
    app.metrics.render()
}

/// `{"inputs": [{"name", "datatype", "shape", "data"}]}` with FP32, INT64 or
/// BYTES tensors and flat `data` (enough for an example; the CLI's `infer`
/// accepts every datatype).
fn parse_inputs(body: &Value) -> Result<InferRequest, Error> {
    let inputs = body
        .get("inputs")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::invalid_at("inputs", "expected a list of tensors"))?;
    let mut request = InferRequest::new();
    for (i, t) in inputs.iter().enumerate() {
        let at = |field: &str| format!("inputs[{i}].{field}");
        let name = t
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::invalid_at(at("name"), "missing"))?;
        let shape: Vec<usize> = t
            .get("shape")
            .and_then(Value::as_array)
            .and_then(|dims| {
                dims.iter()
                    .map(|d| d.as_u64().map(|d| d as usize))
                    .collect()
            })
            .ok_or_else(|| Error::invalid_at(at("shape"), "expected a list of sizes"))?;
        let data = t
            .get("data")
            .and_then(Value::as_array)
            .ok_or_else(|| Error::invalid_at(at("data"), "expected a flat list"))?;
        let datatype = t.get("datatype").and_then(Value::as_str).unwrap_or("");
        let tensor = match datatype {
            "FP32" => {
                let values: Option<Vec<f32>> =
                    data.iter().map(|v| v.as_f64().map(|v| v as f32)).collect();
                Tensor::new(
                    name,
                    shape,
                    values.ok_or_else(|| Error::invalid_at(at("data"), "expected numbers"))?,
                )
            }
            "INT64" => {
                let values: Option<Vec<i64>> = data.iter().map(Value::as_i64).collect();
                Tensor::new(
                    name,
                    shape,
                    values.ok_or_else(|| Error::invalid_at(at("data"), "expected integers"))?,
                )
            }
            "BYTES" => {
                let values: Option<Vec<String>> =
                    data.iter().map(|v| v.as_str().map(str::to_owned)).collect();
                Tensor::from_byte_elements(
                    name,
                    shape,
                    values.ok_or_else(|| Error::invalid_at(at("data"), "expected strings"))?,
                )
            }
            other => {
                return Err(Error::invalid_at(
                    at("datatype"),
                    format!("{other:?} is not one of FP32, INT64, BYTES in this example"),
                ));
            }
        }
        .map_err(|e| Error::invalid_at(at("data"), e.message().to_owned()))?;
        request = request.with_input(tensor);
    }
    Ok(request)
}

/// Opens the registry: a `postgres://` URL, or an SQLite file.
async fn open_registry(store: &str) -> Result<Registry, Error> {
    let key_provider = inferlink::crypto::default_key_provider()?;
    if store.starts_with("postgres://") || store.starts_with("postgresql://") {
        let options = PostgresOptions {
            key_provider,
            ..PostgresOptions::default()
        };
        Registry::open(PostgresStore::connect(store, options).await?).await
    } else {
        let options = SqliteOptions {
            key_provider,
            ..SqliteOptions::default()
        };
        Registry::open(SqliteStore::open_with(store, options)?).await
    }
}

/// Every connector crate (`inferlink-connectors`; the record's product
/// picks one). The host's endpoint policy and file directories travel in
/// every target, over each connector's own transport defaults and under the
/// record's keys.
fn connectors(host: &HostTransportSettings) -> Connectors {
    inferlink_connectors::all().with_host_transport(host.clone())
}

const USAGE: &str = "usage: host_app --store PATH|postgres://URL [--listen ADDR:PORT] \
                     [--endpoint-policy SPEC|@FILE] [--allow-file-dir DIR]...";

#[tokio::main]
async fn main() {
    let mut store = None;
    let mut listen: SocketAddr = "127.0.0.1:8080".parse().expect("static address");
    let mut policy: Option<String> = None;
    let mut file_dirs: Vec<std::path::PathBuf> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--store", Some(value)) => store = Some(value),
            ("--listen", Some(value)) => match value.parse() {
                Ok(addr) => listen = addr,
                Err(e) => fail(&format!("--listen {value}: {e}")),
            },
            ("--endpoint-policy", Some(value)) => policy = Some(value),
            ("--allow-file-dir", Some(value)) => file_dirs.push(value.into()),
            _ => fail(USAGE),
        }
    }
    let Some(store) = store else {
        fail(USAGE);
    };
    // Flags win over the environment variables of the same settings.
    let mut host = match HostTransportSettings::from_env() {
        Ok(from_env) => from_env,
        Err(e) => fail(&format!("{e}")),
    };
    let dirs = std::env::join_paths(&file_dirs).unwrap_or_else(|e| fail(&format!("{e}")));
    match HostTransportSettings::from_values(policy.as_deref(), Some(&dirs)) {
        Ok(flags) => {
            if flags.endpoint_policy.is_some() {
                host.endpoint_policy = flags.endpoint_policy;
            }
            if !flags.allowed_file_dirs.is_empty() {
                host.allowed_file_dirs = flags.allowed_file_dirs;
            }
        }
        Err(e) => fail(&format!("--endpoint-policy / --allow-file-dir: {e}")),
    }
    if let Some(policy) = &host.endpoint_policy {
        eprintln!("host_app: endpoint policy {policy:?}");
    }
    let registry = match open_registry(&store).await {
        Ok(r) => r,
        Err(e) => fail(&format!("cannot open the registry: {e}")),
    };
    let metrics = match PrometheusBuilder::new().install_recorder() {
        Ok(handle) => handle,
        Err(e) => fail(&format!("cannot install the metrics recorder: {e}")),
    };
    let upkeep = metrics.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    let app = Arc::new(App {
        registry: Arc::new(registry),
        connectors: Arc::new(connectors(&host)),
        live: Mutex::new(HashMap::new()),
        metrics,
    });
    let router = axum::Router::new()
        .route("/infer/{category}/{model}", post(infer))
        .route("/health/{category}", get(health))
        .route("/metrics", get(metrics_text))
        .with_state(app);
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => fail(&format!("cannot listen on {listen}: {e}")),
    };
    eprintln!("host_app: listening on http://{listen}");
    if let Err(e) = axum::serve(listener, router).await {
        fail(&format!("server error: {e}"));
    }
}

fn fail(message: &str) -> ! {
    eprintln!("host_app: {message}");
    std::process::exit(2);
}
