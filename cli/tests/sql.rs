//! `inferlink sql` (cargo feature `sql`) against the real llama-cpp-python
//! embedding server of the testkit harness (all-MiniLM-L6-v2): on this
//! machine, and on a Ballista scheduler with two executor processes
//! (`inferlink-ballista-scheduler` / `-executor`, built by
//! `cargo build -p inferlink-ballista`, next to the `inferlink` binary).
//! Live tests are skipped (with a `skipped:` line) when the venv is not
//! installed, unless `INFERLINK_REQUIRE_LIVE=1`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use inferlink::connector::LiveConnector;
use inferlink::{
    Connectors, Consumer, EmbedRequest, InferenceConnector, ModelRef, Registry, Selector,
};
use inferlink_testkit::keys::{open_keyed_sqlite, test_master_key_base64};
use inferlink_testkit::servers::{
    LLAMA_CPP_EMBEDDING_DIMENSIONS, LLAMA_CPP_EMBEDDING_MODEL, RunningServer, ServerKind,
    require_live, shared_or_skip,
};
use serde_json::Value;

fn command(store: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_inferlink"));
    cmd.arg("--store")
        .arg(store)
        .args(args)
        .env_remove("INFERLINK_STORE")
        .env_remove("INFERLINK_KEY_FILE")
        .env("INFERLINK_MASTER_KEY", test_master_key_base64())
        .stdin(Stdio::null());
    cmd
}

fn run(store: &Path, args: &[&str]) -> Output {
    command(store, args)
        .output()
        .expect("the inferlink binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts success; returns standard output.
fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The embedding service's target, as the SQL functions take it.
fn target() -> String {
    format!("category=embedding,model={LLAMA_CPP_EMBEDDING_MODEL}")
}

/// A registry (SQLite, in `dir`) with one record for the harness's embedding
/// server; texts over 2 000 bytes are refused by the connector.
fn register(server: &RunningServer, dir: &Path) -> PathBuf {
    let store = dir.join("registry.db");
    let file = dir.join("llama.yaml");
    std::fs::write(
        &file,
        format!(
            "id: local-llama\nproduct: llama-cpp\nversion: \"0.3.36\"\nservices:\n  - id: embed\n    resource: openai-compatible\n    category: embedding\n    configuration:\n      tasks: embed\n      embed_max_bytes: \"2000\"\n      deadline_ms: \"120000\"\n    endpoints:\n      - url: {}\n",
            server.embedding_url().expect("llama-cpp has an embedding server"),
        ),
    )
    .unwrap();
    ok(
        run(&store, &["register", "-f", file.to_str().unwrap()]),
        "register",
    );
    store
}

/// `corpus.jsonl` with `lines` texts (`{"id": N, "text": …}`, ids from 1),
/// and the same as `corpus.parquet` (written by `inferlink sql` itself).
fn corpus(dir: &Path, store: &Path, texts: &[String]) -> (PathBuf, PathBuf) {
    let jsonl = dir.join("corpus.jsonl");
    let mut body = String::new();
    for (i, t) in texts.iter().enumerate() {
        body.push_str(&serde_json::json!({"id": i as i64 + 1, "text": t}).to_string());
        body.push('\n');
    }
    std::fs::write(&jsonl, body).unwrap();
    let parquet = dir.join("corpus.parquet");
    let table = format!("c={}", jsonl.display());
    ok(
        run(
            store,
            &[
                "sql",
                "--table",
                &table,
                "--output",
                parquet.to_str().unwrap(),
                "SELECT CAST(id AS BIGINT) AS id, text FROM c ORDER BY id",
            ],
        ),
        "jsonl to parquet",
    );
    (jsonl, parquet)
}

fn corpus_texts(n: usize) -> Vec<String> {
    let topics = [
        "cats",
        "trains",
        "rivers",
        "compilers",
        "bread",
        "violins",
        "glaciers",
    ];
    (1..=n)
        .map(|i| {
            format!(
                "Document {i} is about {} and {}.",
                topics[i % 7],
                topics[(i / 7) % 7]
            )
        })
        .collect()
}

/// The connector's own vectors for `texts`: the record resolved in the
/// CLI's registry, `embed` called directly, 64 texts a call.
fn reference_vectors(store: &Path, texts: &[String]) -> Vec<Vec<f32>> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let registry = Registry::open(open_keyed_sqlite(store).unwrap())
            .await
            .unwrap();
        let connectors = Arc::new(Connectors::new().with(inferlink_openai::factory()));
        let live = LiveConnector::connect(
            &registry,
            connectors,
            Selector::category("embedding"),
            Consumer::default(),
        )
        .await
        .unwrap();
        let live: &dyn InferenceConnector = &live;
        let model = ModelRef::new(LLAMA_CPP_EMBEDDING_MODEL);
        let mut all = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(64) {
            let answer = live
                .embed(&model, EmbedRequest::new(chunk.to_vec()))
                .await
                .unwrap();
            all.extend(answer.vectors);
        }
        all
    })
}

/// `{"id": N, "vector": [...]}` lines (or `{"id": N, "r": {"value": …, "error": …}}`).
fn json_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn vector(value: &Value) -> Vec<f32> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("a vector: {value}"))
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// Asserts `got` is the reference vector of its row: same length, every
/// component within 1e-3, and returns the largest difference seen. The
/// server's numbers depend slightly on which texts share a request (seen:
/// 2e-4 between a text sent alone and in a group of 64); two different
/// texts' vectors differ by ~1e-2 and more in some component.
fn assert_same_vector(got: &[f32], want: &[f32], what: &str) -> f32 {
    assert_eq!(got.len(), want.len(), "{what}: dimensions");
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-3, "{what}: differs by {worst}");
    worst
}

const EMBED_QUERY: &str = "SELECT id, embed('{T}', text) AS vector FROM corpus ORDER BY id";

/// The proofs of a 10 000-row corpus: `inferlink sql` here gives every row
/// the vector the connector's `embed` returns for it; the same query on a
/// Ballista scheduler with two executor processes gives the same rows, and
/// both executors answered some of them (their `rows answered` reports).
/// One test, so that the corpus is embedded three times, not four.
#[test]
fn a_10000_row_corpus_here_and_on_ballista_gets_the_connectors_vectors() {
    let Some(server) = shared_or_skip(ServerKind::LlamaCpp) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = register(server, dir.path());
    let texts = corpus_texts(10_000);
    let (_, parquet) = corpus(dir.path(), &store, &texts);
    let out = dir.path().join("vectors.jsonl");
    let table = format!("corpus={}", parquet.display());
    let query = EMBED_QUERY.replace("{T}", &target());
    let summary = ok(
        run(
            &store,
            &[
                "sql",
                "--table",
                &table,
                "--output",
                out.to_str().unwrap(),
                &query,
            ],
        ),
        "sql embed",
    );
    assert!(summary.contains("10000 rows written"), "{summary}");
    let local = json_lines(&out);
    assert_eq!(local.len(), 10_000);
    let want = reference_vectors(&store, &texts);
    let mut worst = 0.0f32;
    for (i, row) in local.iter().enumerate() {
        assert_eq!(row["id"], i as i64 + 1, "rows in id order");
        let got = vector(&row["vector"]);
        assert_eq!(got.len(), LLAMA_CPP_EMBEDDING_DIMENSIONS);
        worst = worst.max(assert_same_vector(
            &got,
            &want[i],
            &format!("row {}", i + 1),
        ));
    }
    eprintln!("10000 rows: largest component difference from the connector's embed: {worst:e}");

    let Some((_scheduler, executors, url)) = cluster(dir.path(), &store) else {
        return;
    };
    let parts = split_corpus(dir.path(), &store, &parquet);
    let table = format!("corpus={}/", parts.display());
    let remote = dir.path().join("cluster.jsonl");
    ok(
        run(
            &store,
            &[
                "sql",
                "--cluster",
                &url,
                "--table",
                &table,
                "-o",
                remote.to_str().unwrap(),
                &query,
            ],
        ),
        "cluster",
    );
    let remote = json_lines(&remote);
    assert_eq!(remote.len(), 10_000);
    let mut worst = 0.0f32;
    for (l, r) in local.iter().zip(&remote) {
        assert_eq!(l["id"], r["id"]);
        let what = format!("id {}", r["id"]);
        worst = worst.max(assert_same_vector(
            &vector(&r["vector"]),
            &vector(&l["vector"]),
            &what,
        ));
    }
    let answered: Vec<u64> = executors.iter().map(Process::rows_answered).collect();
    eprintln!(
        "cluster: rows answered per executor {answered:?}; largest difference from here: {worst:e}"
    );
    assert!(
        answered.iter().all(|&n| n > 0),
        "both executors worked: {answered:?}"
    );
    assert_eq!(answered.iter().sum::<u64>(), 10_000, "{answered:?}");
}

#[test]
fn a_row_the_connector_refuses_fails_the_query_or_only_its_own_row() {
    let Some(server) = shared_or_skip(ServerKind::LlamaCpp) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = register(server, dir.path());
    // Row 7 is over the record's embed_max_bytes (refused before sending);
    // row 9 is empty (null, not sent).
    let mut texts = corpus_texts(40);
    texts[6] = "word ".repeat(500);
    texts[8] = String::new();
    let (_, parquet) = corpus(dir.path(), &store, &texts);
    let table = format!("corpus={}", parquet.display());

    let query = EMBED_QUERY.replace("{T}", &target());
    let failed = run(&store, &["sql", "--table", &table, &query]);
    assert_eq!(failed.status.code(), Some(2), "{}", text(&failed.stderr));
    let stderr = text(&failed.stderr);
    assert!(
        stderr.contains("2000") && stderr.contains("embed"),
        "{stderr}"
    );

    let out = dir.path().join("errors.jsonl");
    let query = format!(
        "SELECT id, try_embed('{}', text) AS r FROM corpus ORDER BY id",
        target()
    );
    ok(
        run(
            &store,
            &[
                "sql",
                "--table",
                &table,
                "--output",
                out.to_str().unwrap(),
                &query,
            ],
        ),
        "try_embed",
    );
    let rows = json_lines(&out);
    assert_eq!(rows.len(), 40);
    let want = reference_vectors(
        &store,
        &texts
            .iter()
            .filter(|t| !t.is_empty() && t.len() <= 2000)
            .cloned()
            .collect::<Vec<_>>(),
    );
    let mut next = want.iter();
    for (i, row) in rows.iter().enumerate() {
        let r = &row["r"];
        match i + 1 {
            7 => {
                assert!(r.get("value").is_none_or(Value::is_null), "{row}");
                let error = r["error"].as_str().unwrap();
                assert!(error.contains("2000"), "{error}");
            }
            9 => {
                assert!(r.get("value").is_none_or(Value::is_null), "{row}");
                assert!(r.get("error").is_none_or(Value::is_null), "{row}");
            }
            n => {
                assert!(r.get("error").is_none_or(Value::is_null), "row {n}: {row}");
                assert_same_vector(
                    &vector(&r["value"]),
                    next.next().unwrap(),
                    &format!("row {n}"),
                );
            }
        }
    }
}

#[test]
fn bad_tables_targets_and_queries_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("registry.db");
    let csv = dir.path().join("t.csv");
    std::fs::write(&csv, "id,text\n1,hello\n").unwrap();
    let table = format!("t={}", csv.display());
    let cases: [(&[&str], &str); 5] = [
        (&["sql", "--table", "t=notes.txt", "SELECT 1"], ".parquet"),
        (&["sql", "--table", "no-equals", "SELECT 1"], "NAME=FILE"),
        (&["sql", "--table", &table, "SELECT nope FROM t"], "nope"),
        (
            &[
                "sql",
                "--table",
                &table,
                "SELECT embed('category=embedding', text) FROM t",
            ],
            "names no model",
        ),
        (
            &[
                "sql",
                "--table",
                &table,
                "SELECT embed('model=m,password=x', text) FROM t",
            ],
            "unknown target key",
        ),
    ];
    for (args, says) in cases {
        let out = run(&store, args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    // A target that resolves to nothing: not found (exit 1), named.
    let out = run(
        &store,
        &[
            "sql",
            "--table",
            &table,
            "SELECT embed('category=nothing-here,model=m', text) FROM t",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    // CSV in, CSV out, no model call: the plain SQL path works.
    let result = dir.path().join("out.csv");
    ok(
        run(
            &store,
            &[
                "sql",
                "--table",
                &table,
                "-o",
                result.to_str().unwrap(),
                "SELECT id, upper(text) AS t FROM t",
            ],
        ),
        "plain sql",
    );
    assert_eq!(std::fs::read_to_string(&result).unwrap(), "id,t\n1,HELLO\n");
}

/// The Ballista binaries, next to the `inferlink` binary.
fn ballista_binary(name: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_BIN_EXE_inferlink")).with_file_name(name);
    path.exists().then_some(path)
}

/// A Ballista process of this test: its own process group, stopped by PID
/// (SIGKILL) when dropped; its standard error goes to `log`.
struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    fn start(binary: &Path, args: &[String], log: PathBuf, store: &Path) -> Process {
        use std::os::unix::process::CommandExt as _;
        let child = Command::new(binary)
            .args(args)
            .env("INFERLINK_STORE", store)
            .env("INFERLINK_MASTER_KEY", test_master_key_base64())
            .env_remove("INFERLINK_KEY_FILE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .process_group(0)
            .spawn()
            .unwrap();
        Process { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Rows the executor says its functions answered (its last report).
    fn rows_answered(&self) -> u64 {
        self.log()
            .lines()
            .rev()
            .find_map(|l| {
                l.strip_prefix("inferlink-ballista-executor: rows answered ")
                    .and_then(|n| n.trim().parse().ok())
            })
            .unwrap_or(0)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits (at most 60 s) until `addr` accepts connections.
fn wait_listening(port: u16, what: &Process) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "not listening on {port}:\n{}",
            what.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A scheduler and two executors on loopback; `None` (skipped) when the
/// binaries were not built.
fn cluster(dir: &Path, store: &Path) -> Option<(Process, Vec<Process>, String)> {
    let (Some(scheduler_bin), Some(executor_bin)) = (
        ballista_binary("inferlink-ballista-scheduler"),
        ballista_binary("inferlink-ballista-executor"),
    ) else {
        assert!(
            !require_live(),
            "build the Ballista binaries: cargo build -p inferlink-ballista"
        );
        eprintln!(
            "skipped: the Ballista binaries are not built (cargo build -p inferlink-ballista)"
        );
        return None;
    };
    let port = inferlink_testkit::servers::free_loopback_port();
    let scheduler = Process::start(
        &scheduler_bin,
        &[
            "--port".into(),
            port.to_string(),
            // A killed executor is found dead within seconds, not minutes.
            "--executor-timeout-seconds".into(),
            "6".into(),
            "--expire-interval-seconds".into(),
            "1".into(),
        ],
        dir.join("scheduler.log"),
        store,
    );
    wait_listening(port, &scheduler);
    let executors: Vec<Process> = (0..2)
        .map(|i| {
            let (flight, grpc) = (
                inferlink_testkit::servers::free_loopback_port(),
                inferlink_testkit::servers::free_loopback_port(),
            );
            let executor = Process::start(
                &executor_bin,
                &[
                    "--scheduler".into(),
                    format!("127.0.0.1:{port}"),
                    "--port".into(),
                    flight.to_string(),
                    "--grpc-port".into(),
                    grpc.to_string(),
                    // One task at a time each: the scan's two partitions land
                    // on both executors.
                    "--vcores".into(),
                    "1".into(),
                    "--heartbeat-seconds".into(),
                    "1".into(),
                    "--work-dir".into(),
                    dir.join(format!("executor-{i}")).display().to_string(),
                ],
                dir.join(format!("executor-{i}.log")),
                store,
            );
            std::fs::create_dir_all(dir.join(format!("executor-{i}"))).unwrap();
            wait_listening(flight, &executor);
            executor
        })
        .collect();
    Some((scheduler, executors, format!("df://127.0.0.1:{port}")))
}

/// The corpus as 4 Parquet files (so that the scan has several tasks).
fn split_corpus(dir: &Path, store: &Path, parquet: &Path) -> PathBuf {
    let parts = dir.join("parts");
    std::fs::create_dir_all(&parts).unwrap();
    let table = format!("c={}", parquet.display());
    for k in 0..4 {
        let file = parts.join(format!("part-{k}.parquet"));
        let query = format!("SELECT id, text FROM c WHERE id % 4 = {k} ORDER BY id");
        ok(
            run(
                store,
                &[
                    "sql",
                    "--table",
                    &table,
                    "-o",
                    file.to_str().unwrap(),
                    &query,
                ],
            ),
            "split",
        );
    }
    parts
}

#[test]
fn an_executor_killed_mid_query() {
    let Some(server) = shared_or_skip(ServerKind::LlamaCpp) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = register(server, dir.path());
    // 4 000 rows: two partitions of 2 000, one per executor.
    let texts = corpus_texts(4_000);
    let (_, parquet) = corpus(dir.path(), &store, &texts);
    let Some((_scheduler, mut executors, url)) = cluster(dir.path(), &store) else {
        return;
    };
    let parts = split_corpus(dir.path(), &store, &parquet);
    let table = format!("corpus={}/", parts.display());
    let query = EMBED_QUERY.replace("{T}", &target());
    let out = dir.path().join("cluster.jsonl");
    let mut client = command(
        &store,
        &[
            "sql",
            "--cluster",
            &url,
            "--table",
            &table,
            "-o",
            out.to_str().unwrap(),
            &query,
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Kill executor 0 (SIGKILL, by PID) once it has answered some rows.
    let deadline = Instant::now() + Duration::from_secs(900);
    while executors[0].rows_answered() == 0 {
        assert!(
            Instant::now() < deadline,
            "executor 0 never worked:\n{}",
            executors[0].log()
        );
        assert!(
            client.try_wait().unwrap().is_none(),
            "the query ended before the kill"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let before_kill = executors[0].rows_answered();
    executors[0].kill();
    // The client ends (no hang) within the bound.
    let status = loop {
        if let Some(status) = client.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the query hangs after the executor was killed"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let output = client.wait_with_output().unwrap();
    eprintln!(
        "killed executor 0 after {before_kill} rows; executor 1 answered {}; client: {status}\n{}",
        executors[1].rows_answered(),
        text(&output.stderr)
    );
    assert!(status.success(), "{}", text(&output.stderr));
    let rows = json_lines(&out);
    assert_eq!(rows.len(), 4_000, "every row, once");
    // Every 10th row checked against the connector (the server is slow here).
    let sample: Vec<String> = texts.iter().step_by(10).cloned().collect();
    let want = reference_vectors(&store, &sample);
    for (k, row) in rows.iter().enumerate() {
        assert_eq!(row["id"], k as i64 + 1, "every id once, in order");
        let got = vector(&row["vector"]);
        assert_eq!(got.len(), LLAMA_CPP_EMBEDDING_DIMENSIONS);
        if k % 10 == 0 {
            assert_same_vector(&got, &want[k / 10], &format!("id {}", k + 1));
        }
    }
}
