//! The real-server harness: KServe, MLServer, Triton, pythie-serving, the Seldon Core v1
//! microservice, chassisml's OMI server, TorchServe, moto, multi-model-server,
//! MLflow's scoring server and llama-cpp-python's OpenAI-compatible server on
//! loopback for tests.
//!
//! The servers are Python programs installed into cached venvs by
//! `scripts/servers install` (docs/testing.md). This module drives the same
//! script: [`RunningServer::start`] runs `scripts/servers start`, which picks
//! free ports on 127.0.0.1, starts the server in its own process group,
//! waits until the server, each of its models and its gRPC port are ready,
//! and prints the ports. Dropping the [`RunningServer`] (or
//! [`RunningServer::stop`]) stops the whole process group.
//!
//! Every server is started with this process's PID as its parent: a watchdog
//! stops it within about a second after the test process exits, however it
//! exits. That is what makes [`shared`] safe: one server per kind, started on
//! first use and kept for the rest of the test binary, although Rust never
//! drops statics.
//!
//! When a venv is missing, tests should skip unless `INFERLINK_REQUIRE_LIVE=1`
//! (which `scripts/test` sets) makes that a failure; [`start_or_skip`] and
//! [`shared_or_skip`] do exactly that:
//!
//! ```no_run
//! use inferlink_testkit::servers::{self, ServerKind};
//!
//! #[test]
//! fn triton_answers() {
//!     let Some(server) = servers::shared_or_skip(ServerKind::Triton) else { return };
//!     let status = server.get_status("/v2/health/ready").unwrap();
//!     assert_eq!(status, 200);
//! }
//! ```
//!
//! Starting is blocking (seconds); from async tests call it before entering
//! the runtime or through `tokio::task::spawn_blocking`.
//!
//! The models each server serves, and which datatypes they accept over which
//! wire format, are described by [`ServerKind::models`] ([`TestModel`]).
//!
//! Linux only: process groups are inspected through `/proc`.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

pub use crate::server_models::{ALL_DATATYPES, Behaviour, TensorNames, TestModel, WireFormat};

/// The environment variable that turns a missing server into a failure.
pub const REQUIRE_LIVE_ENV: &str = "INFERLINK_REQUIRE_LIVE";

/// A model server the harness can start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServerKind {
    /// KServe's python model server 0.21.0 (V1 REST, V2 REST, V2 gRPC).
    KServe,
    /// Seldon MLServer 1.7.1 (V2 REST, V2 gRPC).
    MlServer,
    /// NVIDIA Triton 2.51.0 through PyTriton 0.7.0 (V2 REST, V2 gRPC).
    Triton,
    /// pythie-serving 3.4.3: TensorFlow Serving's gRPC `PredictionService/Predict`
    /// only (no REST, no metadata, no ModelService); table models.
    Pythie,
    /// The Seldon Core v1 python microservice 1.18.2 (Seldon protocol REST
    /// and gRPC; no `/v2` routes): one model, `doubler`.
    SeldonCore,
    /// chassisml 1.5.0's reference Open Model Interface server (gRPC `ModzyModel`).
    /// It serves one model per process, so this kind runs two: `textops` on
    /// [`RunningServer::grpc_port`] and `batcher` on [`RunningServer::http_port`]
    /// (which speaks OMI gRPC too; there is no HTTP side).
    Omi,
    /// TorchServe 0.12.0 with a torch stub: inference, management (model API
    /// on), gRPC inference, token authorization on; extra fields
    /// `management_url`, `key_file` ([`RunningServer::field`]).
    TorchServe,
    /// TorchServe 0.12.0 in KServe v2 mode (`service_envelope=kservev2`),
    /// model API off, token authorization on; same extra fields.
    TorchServeKServe,
    /// moto 5.2.5's server as the SageMaker Runtime, SigV4 verified: HTTP port
    /// only; the access key it accepts is in [`RunningServer::aws_credentials`].
    Moto,
    /// multi-model-server 1.1.11: the SageMaker container protocol (`/ping`,
    /// `/invocations?model_name=`) on the HTTP port, its management API on the gRPC port.
    Mms,
    /// `mlflow models serve` from mlflow-skinny 3.17.2: MLflow's scoring protocol
    /// (`/ping`, `/health`, `/version`, `POST /invocations`) on the HTTP port, one
    /// pyfunc model `doubler` (no model name in any path); no gRPC.
    Mlflow,
    /// llama-cpp-python 0.3.36's OpenAI-compatible server (`llama_cpp.server`), two
    /// processes in one process group: generation (SmolLM2-135M-Instruct Q4_1, model id
    /// [`LLAMA_CPP_GENERATION_MODEL`]) at [`RunningServer::http_url`], and embeddings
    /// (all-MiniLM-L6-v2, 384 dimensions, id [`LLAMA_CPP_EMBEDDING_MODEL`]) at
    /// [`RunningServer::embedding_url`]. No gRPC, no `/v1/rerank`.
    LlamaCpp,
    /// The same llama-cpp-python app serving the embedding model only
    /// ([`LLAMA_CPP_EMBEDDING_MODEL`], same settings), under uvicorn with several
    /// worker processes sharing the HTTP port (`INFERLINK_LLAMA_WORKERS`, default 2;
    /// `INFERLINK_LLAMA_THREADS` per worker, default 1), so it answers requests
    /// concurrently where `llama-cpp` answers one at a time. [`RunningServer::http_url`]
    /// and [`RunningServer::embedding_url`] are the same; no gRPC.
    LlamaCppWorkers,
}

/// The model id the `llama-cpp` kind's generation server answers to
/// (`/v1/chat/completions`, `/v1/completions`): SmolLM2-135M-Instruct, Q4_1.
pub const LLAMA_CPP_GENERATION_MODEL: &str = "smollm2-135m-instruct";

/// The model id the `llama-cpp` kind's embedding server answers to
/// (`/v1/embeddings`): sentence-transformers all-MiniLM-L6-v2, FP32, mean pooling.
pub const LLAMA_CPP_EMBEDDING_MODEL: &str = "all-minilm-l6-v2";

/// The length of the vectors [`LLAMA_CPP_EMBEDDING_MODEL`] returns.
pub const LLAMA_CPP_EMBEDDING_DIMENSIONS: usize = 384;

/// The context window (`--n_ctx`, in tokens) of the `llama-cpp` generation server;
/// a longer prompt is refused with 400.
pub const LLAMA_CPP_GENERATION_CONTEXT: usize = 2048;

/// The context window of the `llama-cpp` embedding server (all-MiniLM-L6-v2's 512
/// positions); a longer input is refused with 400.
pub const LLAMA_CPP_EMBEDDING_CONTEXT: usize = 512;

impl ServerKind {
    /// Every server kind.
    pub const ALL: [ServerKind; 13] = [
        ServerKind::KServe,
        ServerKind::MlServer,
        ServerKind::Triton,
        ServerKind::Pythie,
        ServerKind::SeldonCore,
        ServerKind::Omi,
        ServerKind::TorchServe,
        ServerKind::TorchServeKServe,
        ServerKind::Moto,
        ServerKind::Mms,
        ServerKind::Mlflow,
        ServerKind::LlamaCpp,
        ServerKind::LlamaCppWorkers,
    ];

    /// The name `scripts/servers` knows this server by.
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::KServe => "kserve",
            ServerKind::MlServer => "mlserver",
            ServerKind::Triton => "triton",
            ServerKind::Pythie => "pythie",
            ServerKind::SeldonCore => "seldon-core",
            ServerKind::Omi => "omi",
            ServerKind::TorchServe => "torchserve",
            ServerKind::TorchServeKServe => "torchserve-kserve",
            ServerKind::Moto => "moto",
            ServerKind::Mms => "mms",
            ServerKind::Mlflow => "mlflow",
            ServerKind::LlamaCpp => "llama-cpp",
            ServerKind::LlamaCppWorkers => "llama-cpp-workers",
        }
    }

    /// The models this server serves once it is ready.
    pub fn models(self) -> &'static [TestModel] {
        crate::server_models::models_of(self)
    }

    /// The model called `name`, if this server serves one.
    pub fn model(self, name: &str) -> Option<&'static TestModel> {
        self.models().iter().find(|m| m.name == name)
    }

    fn index(self) -> usize {
        match self {
            ServerKind::KServe => 0,
            ServerKind::MlServer => 1,
            ServerKind::Triton => 2,
            ServerKind::Pythie => 3,
            ServerKind::SeldonCore => 4,
            ServerKind::Omi => 5,
            ServerKind::TorchServe => 6,
            ServerKind::TorchServeKServe => 7,
            ServerKind::Moto => 8,
            ServerKind::Mms => 9,
            ServerKind::Mlflow => 10,
            ServerKind::LlamaCpp => 11,
            ServerKind::LlamaCppWorkers => 12,
        }
    }
}

impl fmt::Display for ServerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a server could not be started or stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HarnessError {
    /// The server's venv has not been built; tests may skip (see [`start_or_skip`]).
    NotInstalled {
        /// The server.
        kind: ServerKind,
        /// What the script said, including the command that installs it.
        message: String,
    },
    /// `scripts/servers` could not be run at all.
    Script {
        /// The script path.
        script: PathBuf,
        /// The operating system's error.
        message: String,
    },
    /// The server did not become ready, or exited while starting.
    Start {
        /// The server.
        kind: ServerKind,
        /// The script's exit status and the tail of the server log it printed.
        message: String,
    },
    /// The script reported success but its output lacked a field.
    Output {
        /// The server.
        kind: ServerKind,
        /// What was missing or malformed, with the output.
        message: String,
    },
    /// Stopping the server failed.
    Stop {
        /// The instance id.
        id: String,
        /// What the script said.
        message: String,
    },
}

impl HarnessError {
    /// True when the server is simply not installed (a skippable condition).
    pub fn is_not_installed(&self) -> bool {
        matches!(self, HarnessError::NotInstalled { .. })
    }
}

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HarnessError::NotInstalled { kind, message } => {
                write!(f, "{kind} is not installed: {message}")?;
                if !message.contains("scripts/servers install") {
                    write!(f, " (install with: scripts/servers install {kind})")?;
                }
                Ok(())
            }
            HarnessError::Script { script, message } => {
                write!(f, "cannot run {}: {message}", script.display())
            }
            HarnessError::Start { kind, message } => write!(f, "{kind} did not start: {message}"),
            HarnessError::Output { kind, message } => {
                write!(
                    f,
                    "unexpected output from `scripts/servers start {kind}`: {message}"
                )
            }
            HarnessError::Stop { id, message } => write!(f, "stopping {id} failed: {message}"),
        }
    }
}

impl std::error::Error for HarnessError {}

/// Options for [`RunningServer::start_with`]; the defaults pick free ports.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// The HTTP port (default: a free one).
    pub http_port: Option<u16>,
    /// The gRPC port (default: a free one).
    pub grpc_port: Option<u16>,
    /// The metrics port (default: a free one; KServe serves metrics on the HTTP port).
    pub metrics_port: Option<u16>,
    /// How long to wait for readiness (default 120 s in the script).
    pub ready_timeout: Option<Duration>,
    /// The process whose exit stops the server (default: this process).
    pub parent_pid: Option<u32>,
}

/// A server started by the harness; dropping it stops its process group.
#[derive(Debug)]
pub struct RunningServer {
    kind: ServerKind,
    id: String,
    pid: u32,
    pgid: u32,
    http_port: u16,
    grpc_port: u16,
    metrics_port: u16,
    log: PathBuf,
    ready_seconds: Option<f64>,
    fields: BTreeMap<String, String>,
    stopped: bool,
}

impl RunningServer {
    /// Starts `kind` on free loopback ports and waits until it is ready.
    pub fn start(kind: ServerKind) -> Result<RunningServer, HarnessError> {
        Self::start_with(kind, &StartOptions::default())
    }

    /// Starts `kind` with explicit options and waits until it is ready.
    pub fn start_with(
        kind: ServerKind,
        options: &StartOptions,
    ) -> Result<RunningServer, HarnessError> {
        let script = script_path();
        let mut cmd = Command::new("bash");
        cmd.arg(&script)
            .arg("start")
            .arg(kind.name())
            .stdin(Stdio::null());
        let parent = options.parent_pid.unwrap_or_else(std::process::id);
        cmd.arg("--parent-pid").arg(parent.to_string());
        if let Some(p) = options.http_port {
            cmd.arg("--http-port").arg(p.to_string());
        }
        if let Some(p) = options.grpc_port {
            cmd.arg("--grpc-port").arg(p.to_string());
        }
        if let Some(p) = options.metrics_port {
            cmd.arg("--metrics-port").arg(p.to_string());
        }
        if let Some(t) = options.ready_timeout {
            cmd.arg("--timeout").arg(t.as_secs().max(1).to_string());
        }
        let out = cmd.output().map_err(|e| HarnessError::Script {
            script: script.clone(),
            message: e.to_string(),
        })?;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        match out.status.code() {
            Some(0) => {}
            Some(3) => {
                let prefix = format!("servers: {kind}: ");
                let message = stderr.trim().trim_start_matches(&prefix).to_owned();
                return Err(HarnessError::NotInstalled { kind, message });
            }
            _ => {
                return Err(HarnessError::Start {
                    kind,
                    message: format!("{}\n{}", out.status, tail(&stderr, 60)),
                });
            }
        }
        let fields = parse_fields(&String::from_utf8_lossy(&out.stdout));
        let server = RunningServer::from_fields(kind, &fields)?;
        Ok(server)
    }

    fn from_fields(
        kind: ServerKind,
        fields: &BTreeMap<String, String>,
    ) -> Result<RunningServer, HarnessError> {
        let get = |key: &str| {
            fields
                .get(key)
                .cloned()
                .ok_or_else(|| HarnessError::Output {
                    kind,
                    message: format!("no `{key}=` line in {fields:?}"),
                })
        };
        fn num<T: std::str::FromStr>(
            kind: ServerKind,
            key: &str,
            value: String,
        ) -> Result<T, HarnessError> {
            value.parse().map_err(|_| HarnessError::Output {
                kind,
                message: format!("`{key}={value}` is not a number"),
            })
        }
        let id = get("id")?;
        // Build the value first so that a parse error below still stops the server.
        let mut server = RunningServer {
            kind,
            id,
            pid: 0,
            pgid: 0,
            http_port: 0,
            grpc_port: 0,
            metrics_port: 0,
            log: PathBuf::new(),
            ready_seconds: None,
            fields: fields.clone(),
            stopped: false,
        };
        server.pid = num(kind, "pid", get("pid")?)?;
        server.pgid = num(kind, "pgid", get("pgid")?)?;
        server.http_port = num(kind, "http_port", get("http_port")?)?;
        server.grpc_port = num(kind, "grpc_port", get("grpc_port")?)?;
        server.metrics_port = num(kind, "metrics_port", get("metrics_port")?)?;
        server.log = PathBuf::from(get("log")?);
        server.ready_seconds = fields.get("ready_seconds").and_then(|s| s.parse().ok());
        Ok(server)
    }

    /// A `key=value` line `scripts/servers start` printed, e.g. TorchServe's
    /// `management_url` and `key_file`.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }

    /// The server kind.
    pub fn kind(&self) -> ServerKind {
        self.kind
    }

    /// The instance id the script knows this server by (`scripts/servers stop --id`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The PID of the server's main process.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The server's process group (every process it started is in it).
    pub fn pgid(&self) -> u32 {
        self.pgid
    }

    /// The REST base URL, `http://127.0.0.1:<port>` (V1 and V2 share it; for
    /// [`ServerKind::LlamaCpp`] the generation server's, without `/v1`).
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// The REST address.
    pub fn http_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.http_port))
    }

    /// The gRPC address (`inference.GRPCInferenceService`).
    pub fn grpc_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.grpc_port))
    }

    /// The gRPC endpoint as a URL, `http://127.0.0.1:<port>` (what tonic expects).
    pub fn grpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    /// For [`ServerKind::LlamaCpp`] and [`ServerKind::LlamaCppWorkers`]: the
    /// embedding server's base URL, `http://127.0.0.1:<port>` (append
    /// `/v1/embeddings`); it serves [`LLAMA_CPP_EMBEDDING_MODEL`] only. `None` for
    /// other kinds.
    pub fn embedding_url(&self) -> Option<String> {
        self.embedding_addr().map(|addr| format!("http://{addr}"))
    }

    /// For [`ServerKind::LlamaCpp`]: the embedding server's address (the
    /// harness gives it the gRPC port slot); for [`ServerKind::LlamaCppWorkers`]
    /// the HTTP address. `None` for other kinds.
    pub fn embedding_addr(&self) -> Option<SocketAddr> {
        match self.kind {
            ServerKind::LlamaCpp => Some(SocketAddr::from(([127, 0, 0, 1], self.grpc_port))),
            ServerKind::LlamaCppWorkers => Some(self.http_addr()),
            _ => None,
        }
    }

    /// The HTTP port.
    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// The gRPC port.
    pub fn grpc_port(&self) -> u16 {
        self.grpc_port
    }

    /// The metrics port (Prometheus `/metrics`). KServe reserves it but serves
    /// metrics on the HTTP port.
    pub fn metrics_port(&self) -> u16 {
        self.metrics_port
    }

    /// The server's log file (kept after it stops).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The instance directory (the log file's), where launchers leave files
    /// such as moto's `credentials.json`.
    pub fn instance_dir(&self) -> &Path {
        self.log.parent().unwrap_or(Path::new("."))
    }

    /// For [`ServerKind::Moto`]: the access key id, secret access key and
    /// region of the IAM user the launcher created (the only key moto accepts).
    pub fn aws_credentials(&self) -> io::Result<(String, String, String)> {
        let text = std::fs::read_to_string(self.instance_dir().join("credentials.json"))?;
        let field = |name: &str| {
            let key = format!("\"{name}\": \"");
            let start = text.find(&key).map(|i| i + key.len());
            start
                .and_then(|s| text[s..].find('"').map(|e| text[s..s + e].to_owned()))
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("no {name} in credentials.json"),
                    )
                })
        };
        Ok((
            field("access_key_id")?,
            field("secret_access_key")?,
            field("region")?,
        ))
    }

    /// Seconds from launch to ready, as measured by the script.
    pub fn ready_seconds(&self) -> Option<f64> {
        self.ready_seconds
    }

    /// The models this server serves.
    pub fn models(&self) -> &'static [TestModel] {
        self.kind.models()
    }

    /// The names of the models this server serves.
    pub fn model_names(&self) -> Vec<&'static str> {
        self.models().iter().map(|m| m.name).collect()
    }

    /// Sends a plain `GET <path>` over HTTP/1.1 and returns the status code.
    ///
    /// A dependency-free probe for tests that have no HTTP client; bounded by
    /// 10 s timeouts on connect, write and read.
    pub fn get_status(&self, path: &str) -> io::Result<u16> {
        http_get_status(self.http_addr(), path)
    }

    /// Sends one HTTP/1.1 request to the HTTP port and returns the whole
    /// answer ([`http_request`]): for tests that check raw protocol facts.
    pub fn http(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> io::Result<HttpReply> {
        http_request(self.http_addr(), method, path, content_type, body)
    }

    /// Stops the server now (SIGTERM to its process group, then SIGKILL).
    pub fn stop(mut self) -> Result<(), HarnessError> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<(), HarnessError> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let script = script_path();
        let out = Command::new("bash")
            .arg(&script)
            .args(["stop", "--id", &self.id])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| HarnessError::Script {
                script: script.clone(),
                message: e.to_string(),
            })?;
        if !out.status.success() {
            return Err(HarnessError::Stop {
                id: self.id.clone(),
                message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        if process_group_alive(self.pgid) {
            return Err(HarnessError::Stop {
                id: self.id.clone(),
                message: format!("process group {} is still alive", self.pgid),
            });
        }
        Ok(())
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Err(e) = self.stop_inner() {
            eprintln!("inferlink-testkit: {e}");
        }
    }
}

/// True when `INFERLINK_REQUIRE_LIVE=1`: missing servers are failures, not skips.
pub fn require_live() -> bool {
    std::env::var(REQUIRE_LIVE_ENV).is_ok_and(|v| v == "1")
}

/// Starts `kind` for one test, or returns `None` after printing
/// `skipped: …` to stderr when its venv is not installed.
///
/// # Panics
///
/// When the venv is missing and [`require_live`] holds, and whenever an
/// installed server fails to start: both are test failures.
pub fn start_or_skip(kind: ServerKind) -> Option<RunningServer> {
    or_skip(kind, RunningServer::start(kind))
}

/// The one server of `kind` shared by every test of this test binary,
/// started on first use.
///
/// It is never dropped; the watchdog stops it when the test process exits.
/// Tests sharing it must not stop it or change its state.
pub fn shared(kind: ServerKind) -> Result<&'static RunningServer, HarnessError> {
    static SHARED: [OnceLock<Result<RunningServer, HarnessError>>; ServerKind::ALL.len()] =
        [const { OnceLock::new() }; ServerKind::ALL.len()];
    SHARED[kind.index()]
        .get_or_init(|| RunningServer::start(kind))
        .as_ref()
        .map_err(Clone::clone)
}

/// [`shared`], skipping (`None` plus a `skipped: …` line) when not installed.
///
/// # Panics
///
/// As [`start_or_skip`].
pub fn shared_or_skip(kind: ServerKind) -> Option<&'static RunningServer> {
    or_skip(kind, shared(kind))
}

/// The skip rule of [`start_or_skip`] for any start result, e.g. of
/// [`RunningServer::start_with`]: `Some` on success, `None` plus a
/// `skipped: …` line when not installed and live servers are not required.
///
/// # Panics
///
/// As [`start_or_skip`].
pub fn or_skip<T>(kind: ServerKind, result: Result<T, HarnessError>) -> Option<T> {
    match result {
        Ok(server) => Some(server),
        Err(e) if e.is_not_installed() && !require_live() => {
            // Straight to the stderr handle: libtest captures `eprintln!` of
            // passing tests, and a skip must stay visible.
            let _ = writeln!(
                io::stderr(),
                "skipped: {e}; {REQUIRE_LIVE_ENV}=1 turns this into a failure"
            );
            None
        }
        Err(e) if e.is_not_installed() => {
            panic!("{e} ({REQUIRE_LIVE_ENV}=1 requires every real server)")
        }
        Err(e) => panic!("real {kind} server: {e}"),
    }
}

/// The path of `scripts/servers` in this workspace.
pub fn script_path() -> PathBuf {
    repo_root().join("scripts").join("servers")
}

/// The workspace root (the directory holding `scripts/` and `testkit/`).
pub fn repo_root() -> PathBuf {
    // testkit/ is a direct child of the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// True while any process of process group `pgid` exists (reads `/proc`).
pub fn process_group_alive(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        else {
            return false;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        // Fields after the parenthesised command: state, ppid, pgrp, ...
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            return false;
        };
        let mut fields = rest.split(' ');
        let state = fields.next();
        let group = fields.nth(1).and_then(|g| g.parse::<u32>().ok());
        // A zombie has exited; its parent just has not reaped it yet.
        group == Some(pgid) && state != Some("Z")
    })
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bound, then
/// released), for a process a test starts itself on loopback. Panics when
/// loopback cannot be bound at all.
pub fn free_loopback_port() -> u16 {
    std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// True when something accepts TCP connections at `addr` (1 s connect timeout).
pub fn port_open(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

/// Sends `GET <path>` over HTTP/1.1 to `addr` and returns the status code.
pub fn http_get_status(addr: SocketAddr, path: &str) -> io::Result<u16> {
    let timeout = Duration::from_secs(10);
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    // One write: some servers (Triton's) drop connections whose request head
    // arrives in many small pieces.
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: */*\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    // The status line fits in the first few bytes; read at most 64 KiB.
    let mut head = Vec::new();
    stream.take(64 * 1024).read_to_end(&mut head)?;
    let text = String::from_utf8_lossy(&head);
    let line = text.lines().next().unwrap_or_default();
    let mut parts = line.split(' ');
    match (
        parts.next(),
        parts.next().and_then(|c| c.parse::<u16>().ok()),
    ) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") => Ok(code),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not an HTTP response: {line:?}"),
        )),
    }
}

/// An HTTP answer read by [`http_request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    /// The status code.
    pub status: u16,
    /// The header fields in order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked when the answer was chunked).
    pub body: Vec<u8>,
}

impl HttpReply {
    /// The first header field called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The largest answer [`http_request`] reads.
const MAX_REPLY_BYTES: u64 = 8 * 1024 * 1024;

/// Sends one HTTP/1.1 request (`Connection: close`, the head and body in one
/// write) to `addr` and reads the whole answer, up to 8 MiB.
///
/// A dependency-free client for tests that check what a server puts on the
/// wire; bounded by 10 s timeouts on connect, write and read.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> io::Result<HttpReply> {
    let timeout = Duration::from_secs(10);
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: */*\r\n");
    if let Some(ct) = content_type {
        request.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    request.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes)?;
    let mut raw = Vec::new();
    stream.take(MAX_REPLY_BYTES).read_to_end(&mut raw)?;
    parse_reply(&raw)
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

fn parse_reply(raw: &[u8]) -> io::Result<HttpReply> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid("no end of the HTTP head".into()))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split(' ');
    let status = match (
        parts.next(),
        parts.next().and_then(|c| c.parse::<u16>().ok()),
    ) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") => code,
        _ => return Err(invalid(format!("not an HTTP response: {status_line:?}"))),
    };
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut reply = HttpReply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    };
    if reply
        .header("transfer-encoding")
        .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
    {
        reply.body = dechunk(&reply.body)?;
    }
    Ok(reply)
}

fn dechunk(mut data: &[u8]) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| invalid("truncated chunk size".into()))?;
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| invalid(format!("bad chunk size {size_text:?}")))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if data.len() < size + 2 {
            return Err(invalid("truncated chunk".into()));
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

fn parse_fields(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_script_output() {
        let out = "name=triton\nid=triton-1\npid=10\npgid=10\nhttp_port=1\ngrpc_port=2\n\
                   metrics_port=3\nlog=/tmp/x/server.log\nmodels=doubler identity\n\
                   ready_seconds=6.5\nhttp_url=http://127.0.0.1:1\n";
        let mut s = RunningServer::from_fields(ServerKind::Triton, &parse_fields(out)).unwrap();
        s.stopped = true; // nothing was started
        assert_eq!(s.http_url(), "http://127.0.0.1:1");
        assert_eq!(s.grpc_addr().to_string(), "127.0.0.1:2");
        assert_eq!(s.metrics_port(), 3);
        assert_eq!(s.pgid(), 10);
        assert_eq!(s.ready_seconds(), Some(6.5));
        assert_eq!(s.log_path(), Path::new("/tmp/x/server.log"));
    }

    #[test]
    fn missing_or_bad_fields_are_output_errors() {
        let err = RunningServer::from_fields(ServerKind::KServe, &parse_fields("id=k\npid=x\n"))
            .unwrap_err();
        assert!(matches!(err, HarnessError::Output { .. }), "{err}");
        assert!(err.to_string().contains("pid=x"), "{err}");
    }

    #[test]
    fn parses_plain_and_chunked_replies() {
        let plain = parse_reply(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: 2\r\n\r\n{}",
        )
        .unwrap();
        assert_eq!(plain.status, 200);
        assert_eq!(plain.header("Content-Type"), Some("application/json"));
        assert_eq!(plain.text(), "{}");
        let chunked = parse_reply(
            b"HTTP/1.1 400 \r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(chunked.status, 400);
        assert_eq!(chunked.body, b"abcde");
        assert!(parse_reply(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(parse_reply(b"SSH-2.0\r\n\r\n").is_err());
        assert!(
            parse_reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab").is_err()
        );
    }

    #[test]
    fn script_is_found_from_the_testkit() {
        assert!(script_path().is_file(), "{}", script_path().display());
    }

    #[test]
    fn not_installed_names_the_install_command() {
        let e = HarnessError::NotInstalled {
            kind: ServerKind::MlServer,
            message: "venv missing".into(),
        };
        assert!(e.is_not_installed());
        assert!(
            e.to_string().contains("scripts/servers install mlserver"),
            "{e}"
        );
    }

    #[test]
    fn this_process_group_is_alive() {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let pgid: u32 = stat
            .rsplit_once(") ")
            .unwrap()
            .1
            .split(' ')
            .nth(2)
            .unwrap()
            .parse()
            .unwrap();
        assert!(process_group_alive(pgid));
        assert!(!process_group_alive(u32::MAX));
    }
}
