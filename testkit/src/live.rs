//! Plumbing the connectors' live tests share: the shared real server started
//! off the async runtime, a connector built from one registered record (as a
//! host gets it through [`Connectors::connect`]), the usual check of a
//! conformance report, and which addresses listen on a port.
//!
//! ```no_run
//! use inferlink_testkit::live::{self, TestRecord};
//! use inferlink_testkit::servers::ServerKind;
//! # async fn demo(factory: impl inferlink::ConnectorFactory + 'static) {
//! let Some(server) = live::shared_server(ServerKind::KServe).await else { return };
//! let connector = TestRecord::new("live-kserve", "kserve", "0.21.0", "kserve-predictor")
//!     .setting("protocol", "v2")
//!     .setting("deadline_ms", "60000")
//!     .endpoint(&server.http_url())
//!     .connect(inferlink::Connectors::new().with(factory))
//!     .await;
//! # let _ = connector;
//! # }
//! ```

use std::sync::Arc;

use inferlink::{
    ConfigValue, ConnectTarget, ConnectorFactory, Connectors, Consumer, DataType, Error, ErrorKind,
    InferenceConnector, MemoryStore, Registry, Resolution, Result, Selector,
};

use crate::connector::{CheckStatus, ConformanceReport, ConformanceSpec, RoundTrip, Transform};
use crate::servers::{self, RunningServer, ServerKind, StartOptions, WireFormat};

/// The binary-wide shared server of `kind` ([`servers::shared_or_skip`]),
/// started on Tokio's blocking pool so an async test does not block its
/// runtime. `None` means skipped (the venv is not installed and
/// `INFERLINK_REQUIRE_LIVE` is unset).
pub async fn shared_server(kind: ServerKind) -> Option<&'static RunningServer> {
    tokio::task::spawn_blocking(move || servers::shared_or_skip(kind))
        .await
        .expect("starting the server")
}

/// A server of `kind` of the test's own (for tests that stop or disturb it),
/// started with `options` on Tokio's blocking pool; `None` means skipped.
pub async fn own_server(kind: ServerKind, options: StartOptions) -> Option<RunningServer> {
    tokio::task::spawn_blocking(move || {
        servers::or_skip(kind, RunningServer::start_with(kind, &options))
    })
    .await
    .expect("starting the server")
}

/// The server's gRPC port as a connector URL (`grpc://127.0.0.1:<port>`).
pub fn grpc_url(server: &RunningServer) -> String {
    format!("grpc://{}", server.grpc_addr())
}

/// The server's REST URL and its gRPC connector URL ([`grpc_url`]), for
/// tests that check the same thing over both.
pub fn rest_and_grpc_urls(server: &RunningServer) -> [String; 2] {
    [server.http_url(), grpc_url(server)]
}

/// Plain configuration values for a client under test against a scripted
/// server: three attempts 1 ms apart, a 10 s deadline and 5 s per request,
/// then `overrides` (which win), ready for a config's `apply_values`.
pub fn fake_server_values<'a>(overrides: &[(&'a str, &'a str)]) -> Vec<(&'a str, ConfigValue)> {
    let mut values = std::collections::BTreeMap::from([
        ("retry_max_attempts", "3"),
        ("retry_backoff_base_ms", "1"),
        ("deadline_ms", "10000"),
        ("timeout_request_ms", "5000"),
    ]);
    values.extend(overrides.iter().copied());
    values
        .into_iter()
        .map(|(k, v)| (k, ConfigValue::Plain(v.to_owned())))
        .collect()
}

/// One credential block of a [`TestRecord`].
#[derive(Debug, Clone)]
struct Credential {
    id: String,
    scope: Option<String>,
    values: Vec<(String, String)>,
}

/// One extension record with one service and one endpoint, written as the
/// YAML a host registers. Values are written as quoted YAML strings.
#[derive(Debug, Clone)]
pub struct TestRecord {
    id: String,
    product: String,
    version: String,
    service_id: String,
    resource: String,
    category: String,
    auth_required: Option<bool>,
    settings: Vec<(String, String)>,
    credentials: Vec<Credential>,
    url: String,
}

impl TestRecord {
    /// A record `id` of `product` `version` whose service (id `api`,
    /// category `prediction-serving`) has the resource `resource`.
    pub fn new(id: &str, product: &str, version: &str, resource: &str) -> Self {
        TestRecord {
            id: id.to_owned(),
            product: product.to_owned(),
            version: version.to_owned(),
            service_id: "api".to_owned(),
            resource: resource.to_owned(),
            category: "prediction-serving".to_owned(),
            auth_required: None,
            settings: Vec::new(),
            credentials: Vec::new(),
            url: String::new(),
        }
    }

    /// The service's id (default `api`).
    pub fn service_id(mut self, id: &str) -> Self {
        self.service_id = id.to_owned();
        self
    }

    /// The service's `authrequired` flag (left out unless set).
    pub fn auth_required(mut self, required: bool) -> Self {
        self.auth_required = Some(required);
        self
    }

    /// One service configuration key.
    pub fn setting(mut self, key: &str, value: &str) -> Self {
        self.settings.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Several service configuration keys.
    pub fn settings(mut self, pairs: &[(&str, &str)]) -> Self {
        for (key, value) in pairs {
            self = self.setting(key, value);
        }
        self
    }

    /// A credential `id` (with `scope`, when given) holding `values`.
    pub fn credential(mut self, id: &str, scope: Option<&str>, values: &[(&str, &str)]) -> Self {
        self.credentials.push(Credential {
            id: id.to_owned(),
            scope: scope.map(str::to_owned),
            values: values
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        });
        self
    }

    /// The service's endpoint URL.
    pub fn endpoint(mut self, url: &str) -> Self {
        self.url = url.to_owned();
        self
    }

    /// The record as registry YAML.
    pub fn yaml(&self) -> String {
        let mut y = format!(
            "id: {}\nproduct: {}\nversion: {}\nservices:\n  - id: {}\n    resource: {}\n    \
             category: {}\n",
            self.id,
            self.product,
            quoted(&self.version),
            self.service_id,
            self.resource,
            self.category
        );
        if let Some(required) = self.auth_required {
            y.push_str(&format!("    authrequired: {required}\n"));
        }
        if !self.settings.is_empty() {
            y.push_str("    configuration:\n");
            for (key, value) in &self.settings {
                y.push_str(&format!("      {key}: {}\n", quoted(value)));
            }
        }
        if !self.credentials.is_empty() {
            y.push_str("    credentials:\n");
            for c in &self.credentials {
                y.push_str(&format!("      - id: {}\n", c.id));
                if let Some(scope) = &c.scope {
                    y.push_str(&format!("        scope: {scope}\n"));
                }
                y.push_str("        configuration:\n");
                for (key, value) in &c.values {
                    y.push_str(&format!("          {key}: {}\n", quoted(value)));
                }
            }
        }
        y.push_str(&format!("    endpoints:\n      - url: {}\n", self.url));
        y
    }

    /// Registers the record in a fresh in-memory registry, resolves its
    /// resource for any consumer and connects through `connectors`.
    pub async fn try_connect(&self, connectors: Connectors) -> Result<Arc<dyn InferenceConnector>> {
        let selector = Selector::resource(&self.resource);
        let resolution = try_resolve_record(&self.yaml(), &selector).await?;
        connectors.connect(&resolution).await
    }

    /// [`try_connect`](Self::try_connect), panicking with the record's id
    /// and the error when any step fails.
    pub async fn connect(&self, connectors: Connectors) -> Arc<dyn InferenceConnector> {
        match self.try_connect(connectors).await {
            Ok(c) => c,
            Err(e) => panic!("connecting record {}: {e}", self.id),
        }
    }
}

/// Registers `yaml` in a fresh in-memory registry and resolves `selector`
/// for any consumer: the host's steps before `Connectors::connect`.
pub async fn try_resolve_record(yaml: &str, selector: &Selector) -> Result<Resolution> {
    let registry = Registry::open(MemoryStore::new()).await?;
    registry.register_yaml(yaml).await?;
    registry.resolve(selector, &Consumer::anywhere())
}

/// [`try_resolve_record`], panicking with the error when a step fails.
pub async fn resolve_record(yaml: &str, selector: &Selector) -> Resolution {
    match try_resolve_record(yaml, selector).await {
        Ok(resolution) => resolution,
        Err(e) => panic!("registering and resolving the record: {e}\n{yaml}"),
    }
}

/// `value` as a double-quoted YAML string (JSON string syntax is valid YAML).
fn quoted(value: &str) -> String {
    serde_json::Value::String(value.to_owned()).to_string()
}

/// A round trip of a sample `datatype` tensor `input` of `shape` through
/// the harness's doubling `model` ([`RoundTrip::sample`] with
/// [`Transform::Double`]).
pub fn doubled(model: &str, input: &str, datatype: DataType, shape: &[usize]) -> RoundTrip {
    RoundTrip::sample(model, input, datatype, shape.to_vec(), Transform::Double)
}

/// Round trips for every datatype the harness's `doubler` of `kind`
/// (KServe's or MLServer's) takes over `wire`. Their metadata declares
/// `input-0` as FP32 `[-1]`, so FP32 goes there with shape `[4]`; the other
/// datatypes use undeclared names (`input-<i>` → `output-<i>`) with shape
/// `[2, 3]`.
///
/// # Panics
///
/// When `kind` has no `doubler` model.
pub fn doubler_round_trips(kind: ServerKind, wire: WireFormat) -> Vec<RoundTrip> {
    let doubler = kind.model("doubler").expect("a doubler model");
    let mut round_trips = Vec::new();
    for (i, dt) in doubler.datatypes(wire).iter().enumerate() {
        let datatype: DataType = dt.parse().expect("a datatype name");
        let (name, shape) = if datatype == DataType::Fp32 {
            ("input-0".to_owned(), vec![4])
        } else {
            (format!("input-{}", i + 1), vec![2, 3])
        };
        round_trips.push(doubled("doubler", &name, datatype, &shape));
    }
    round_trips
}

/// [`RoundTrip::sample`] over a table: one round trip through `model` per
/// `(input name, datatype, shape)`, each expecting `transform`'s answer.
pub fn sample_round_trips(
    model: &str,
    transform: Transform,
    inputs: &[(&str, DataType, &[usize])],
) -> Vec<RoundTrip> {
    inputs
        .iter()
        .map(|(name, datatype, shape)| {
            RoundTrip::sample(model, name, *datatype, shape.to_vec(), transform.clone())
        })
        .collect()
}

/// `spec` with every round trip of `round_trips` added.
pub fn with_round_trips(
    spec: ConformanceSpec,
    round_trips: impl IntoIterator<Item = RoundTrip>,
) -> ConformanceSpec {
    round_trips
        .into_iter()
        .fold(spec, ConformanceSpec::round_trip)
}

/// The names of the models `c` lists, in its order (panics when listing
/// fails).
pub async fn model_names(c: &dyn InferenceConnector) -> Vec<String> {
    let listed = c.models().await.expect("listing the models");
    listed.into_iter().map(|m| m.name).collect()
}

/// Panics unless every failed check of `report` is allowed, and unless at
/// least `min_passed` checks passed. `allowed` holds `(check name, text its
/// failure must contain)`: a check the server cannot pass by its
/// configuration, with the reason it must give. The message starts with
/// `case` (which test case this is) and lists the unexpected failures and
/// the whole report.
pub fn assert_conformance(
    case: &str,
    report: &ConformanceReport,
    allowed: &[(&str, &str)],
    min_passed: usize,
) {
    let unexpected: Vec<String> = report
        .failures()
        .filter(|c| {
            let CheckStatus::Failed(why) = &c.status else {
                return true;
            };
            !allowed
                .iter()
                .any(|(name, reason)| c.name == *name && why.contains(reason))
        })
        .map(|c| format!("{}: {:?}", c.name, c.status))
        .collect();
    assert!(
        unexpected.is_empty(),
        "{case}: {} failed checks against {}:\n{}\n{report}",
        unexpected.len(),
        report.connector,
        unexpected.join("\n")
    );
    let passed = report
        .checks
        .iter()
        .filter(|c| c.status == CheckStatus::Passed)
        .count();
    assert!(
        passed >= min_passed,
        "{case}: only {passed} checks passed (at least {min_passed} expected):\n{report}"
    );
}

/// The error of a call that must fail finally: its kind is one of `kinds`,
/// its message contains `needle` and it is not retryable. Panics (naming
/// what was expected and what came) otherwise; returns the error for
/// further checks.
pub fn expect_final_error<T: std::fmt::Debug>(
    result: Result<T>,
    kinds: &[ErrorKind],
    needle: &str,
) -> Error {
    let e = match result {
        Ok(v) => panic!("expected a {kinds:?} error containing {needle:?}, got {v:?}"),
        Err(e) => e,
    };
    assert!(kinds.contains(&e.kind()), "expected {kinds:?}: {e}");
    assert!(
        e.to_string().contains(needle),
        "expected {needle:?} in: {e}"
    );
    assert!(!e.is_retryable(), "a final error was marked retryable: {e}");
    e
}

/// The error of a call that must fail: its kind is `kind` and its
/// displayed form (message and context) contains `needle` (`""` checks the
/// kind only). Panics, naming what was expected and what came, otherwise;
/// returns the error for further checks.
pub fn expect_error<T: std::fmt::Debug>(result: Result<T>, kind: ErrorKind, needle: &str) -> Error {
    let e = match result {
        Ok(v) => panic!("expected a {kind:?} error containing {needle:?}, got {v:?}"),
        Err(e) => e,
    };
    assert_eq!(e.kind(), kind, "{e}");
    assert!(
        e.to_string().contains(needle),
        "expected {needle:?} in: {e}"
    );
    e
}

/// A factory's unknown-key rule, checked with one mistyped key:
/// `target(typo)` is refused with a suggestion of `key`
/// ([`assert_suggests_key`]) while an upper-case `environment_key` and an
/// `x_team` key beside it are ignored, and `target(key)` connects. Returns
/// the refusal and the connector for the crate's own checks.
pub async fn assert_factory_refuses_typo(
    factory: &dyn ConnectorFactory,
    target: impl Fn(&str) -> ConnectTarget,
    (typo, key): (&str, &str),
    environment_key: &str,
) -> (Error, Arc<dyn InferenceConnector>) {
    let with_ignored_keys = |name: &str| {
        target(name)
            .with_plain(environment_key, "left for environments")
            .with_plain("x_team", "the user's own")
    };
    let refused = match factory.connect(&with_ignored_keys(typo)).await {
        Ok(c) => panic!("the mistyped key {typo:?} was accepted: {:?}", c.info()),
        Err(e) => e,
    };
    assert_suggests_key(&refused, typo, key);
    let connector = match factory.connect(&with_ignored_keys(key)).await {
        Ok(c) => c,
        Err(e) => panic!("the correct key {key:?} was refused: {e}"),
    };
    (refused, connector)
}

/// Panics unless `error` is the refusal of a mistyped configuration key:
/// kind [`ErrorKind::Config`], path `key`, and a message that suggests the
/// nearest known key (`did you mean "<suggestion>"`).
pub fn assert_suggests_key(error: &Error, key: &str, suggestion: &str) {
    assert_eq!(error.kind(), ErrorKind::Config, "{error}");
    assert_eq!(error.path(), Some(key), "{error}");
    let hint = format!("did you mean \"{suggestion}\"");
    assert!(error.message().contains(&hint), "{error}");
}

/// Panics unless something listens on `port` and every listening address
/// is loopback: `127.0.0.1`, or gRPC's IPv4-mapped `::ffff:127.0.0.1`.
pub fn assert_listens_on_loopback_only(port: u16) {
    let addrs = listen_addresses(port);
    assert!(!addrs.is_empty(), "nothing listens on {port}");
    assert!(
        addrs
            .iter()
            .all(|a| a == "127.0.0.1" || a == "::ffff:127.0.0.1"),
        "port {port} listens on {addrs:?}"
    );
}

/// The local addresses listening (TCP state `LISTEN`) on `port`, read from
/// `/proc/net/tcp` and `/proc/net/tcp6`; empty where those do not exist.
pub fn listen_addresses(port: u16) -> Vec<String> {
    let mut found = Vec::new();
    for (file, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        let Ok(table) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in table.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 4 || cols[3] != "0A" {
                continue;
            }
            let Some((addr, p)) = cols[1].split_once(':') else {
                continue;
            };
            if u16::from_str_radix(p, 16).ok() != Some(port) {
                continue;
            }
            let bytes: Vec<u8> = (0..addr.len() / 2)
                .map(|i| u8::from_str_radix(&addr[2 * i..2 * i + 2], 16).unwrap_or(0))
                .collect();
            let ordered: Vec<u8> = bytes
                .chunks(4)
                .flat_map(|w| w.iter().rev().copied())
                .collect();
            found.push(if v6 && ordered.len() >= 16 {
                let mut a = [0u8; 16];
                a.copy_from_slice(&ordered[..16]);
                std::net::Ipv6Addr::from(a).to_string()
            } else if ordered.len() >= 4 {
                std::net::Ipv4Addr::new(ordered[0], ordered[1], ordered[2], ordered[3]).to_string()
            } else {
                continue;
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_yaml_quotes_values_and_lists_credentials() {
        let yaml = TestRecord::new("r", "p", "1.0", "res")
            .service_id("svc")
            .auth_required(true)
            .setting("deadline_ms", "60000")
            .credential("token", Some("global"), &[("access_token", "a\"b")])
            .endpoint("http://127.0.0.1:1")
            .yaml();
        assert_eq!(
            yaml,
            "id: r\nproduct: p\nversion: \"1.0\"\nservices:\n  - id: svc\n    resource: res\n    \
             category: prediction-serving\n    authrequired: true\n    configuration:\n      \
             deadline_ms: \"60000\"\n    credentials:\n      - id: token\n        scope: global\n        \
             configuration:\n          access_token: \"a\\\"b\"\n    endpoints:\n      - url: http://127.0.0.1:1\n"
        );
    }
}
