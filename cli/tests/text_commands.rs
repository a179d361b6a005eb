//! The text commands (`embed`, `rerank`, `generate`, `batch --task embed`)
//! of the `inferlink` binary against the real llama-cpp-python server of the
//! testkit harness (all-MiniLM-L6-v2 embeddings, SmolLM2-135M-Instruct
//! generation). Skipped (with a `skipped:` line) when its venv is not
//! installed, unless `INFERLINK_REQUIRE_LIVE=1`.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use inferlink_testkit::keys::test_master_key_base64;
use inferlink_testkit::servers::{
    LLAMA_CPP_EMBEDDING_DIMENSIONS, LLAMA_CPP_EMBEDDING_MODEL, LLAMA_CPP_GENERATION_MODEL,
    RunningServer, ServerKind, shared_or_skip,
};
use serde_json::Value;

fn command(store: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_inferlink"));
    cmd.arg("--store")
        .arg(store)
        .args(args)
        .env_remove("INFERLINK_STORE")
        .env_remove("INFERLINK_KEY_FILE")
        .env("INFERLINK_MASTER_KEY", test_master_key_base64());
    cmd
}

/// Runs `inferlink --store STORE ARGS…` with `stdin` as standard input.
fn cli_with_input(store: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = command(store, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the inferlink binary runs");
    let mut pipe = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut pipe, stdin.as_bytes()).unwrap();
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn cli(store: &Path, args: &[&str]) -> Output {
    command(store, args)
        .stdin(Stdio::null())
        .output()
        .expect("the inferlink binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
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

/// Asserts exit status `code`; returns standard error.
fn fails(out: Output, code: i32, what: &str) -> String {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{what}: {stderr}");
    stderr
}

/// One record with two services: the harness's embedding server (`tasks:
/// embed`, texts over 2 000 bytes refused by the connector) and its
/// generation server (`tasks: generate`).
fn register(server: &RunningServer, dir: &Path, store: &Path) {
    let file = dir.join("llama.yaml");
    std::fs::write(
        &file,
        format!(
            "id: local-llama\nproduct: llama-cpp\nversion: \"0.3.36\"\nservices:\n  - id: embed\n    resource: openai-compatible\n    category: embedding\n    configuration:\n      tasks: embed\n      embed_max_bytes: \"2000\"\n      deadline_ms: \"120000\"\n    endpoints:\n      - url: {}\n  - id: generate\n    resource: openai-compatible\n    category: text-generation\n    configuration:\n      tasks: generate\n      deadline_ms: \"120000\"\n    endpoints:\n      - url: {}\n",
            server.embedding_url().expect("llama-cpp has an embedding server"),
            server.http_url()
        ),
    )
    .unwrap();
    ok(
        cli(store, &["register", "-f", file.to_str().unwrap()]),
        "register",
    );
}

/// The shared llama-cpp server, and a fresh registry (in a temporary
/// directory) holding its record; `None` when skipped.
fn registered() -> Option<(tempfile::TempDir, std::path::PathBuf)> {
    let server = shared_or_skip(ServerKind::LlamaCpp)?;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("registry.db");
    register(server, dir.path(), &store);
    Some((dir, store))
}

fn vectors(stdout: &str) -> Vec<Vec<f64>> {
    stdout
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let doc: Value = serde_json::from_str(line).unwrap();
            assert_eq!(doc["index"], i, "in input order: {line}");
            doc["vector"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect()
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

#[test]
fn embed_rerank_and_generate_reach_a_real_llama_cpp_server() {
    let Some((dir, store)) = registered() else {
        return;
    };
    let embed = [
        "embed",
        "--service-category",
        "embedding",
        "--model",
        LLAMA_CPP_EMBEDDING_MODEL,
    ];

    // Texts as arguments: one vector each, in order, of the model's length.
    let mut args = embed.to_vec();
    args.extend([
        "A cat sits on the mat.",
        "A kitten is lying on the rug.",
        "Quarterly earnings of the bank rose by four percent.",
    ]);
    let out = cli(&store, &args);
    let summary = text(&out.stderr);
    let found = vectors(&ok(out, "embed"));
    assert_eq!(found.len(), 3);
    for v in &found {
        assert_eq!(v.len(), LLAMA_CPP_EMBEDDING_DIMENSIONS);
        assert!(v.iter().all(|x| x.is_finite()));
    }
    assert!(
        cosine(&found[0], &found[1]) > cosine(&found[0], &found[2]),
        "the paraphrase is closer than the unrelated text"
    );
    assert!(summary.contains("3 vectors of 384 dimensions"), "{summary}");

    // The same texts from standard input (CRLF lines), normalised: unit
    // length, same directions.
    let mut args = embed.to_vec();
    args.push("--normalize");
    let out = cli_with_input(
        &store,
        &args,
        "A cat sits on the mat.\r\nA kitten is lying on the rug.\r\n",
    );
    let unit = vectors(&ok(out, "embed --normalize from stdin"));
    assert_eq!(unit.len(), 2);
    for (u, v) in unit.iter().zip(&found) {
        let norm = u.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "unit length: {norm}");
        assert!(cosine(u, v) > 0.9999, "same direction");
    }

    // From a file; an empty line is refused (exit 2) naming it, nothing sent.
    let file = dir.path().join("texts.txt");
    std::fs::write(&file, "first\nsecond\n").unwrap();
    let mut args = embed.to_vec();
    args.extend(["--file", file.to_str().unwrap()]);
    assert_eq!(vectors(&ok(cli(&store, &args), "embed --file")).len(), 2);
    std::fs::write(&file, "first\n\nthird\n").unwrap();
    let stderr = fails(cli(&store, &args), 2, "an empty line");
    assert!(stderr.contains("line 2"), "{stderr}");
    // A text over the record's embed_max_bytes: InvalidInput, exit 2.
    let long = "word ".repeat(500);
    let mut args = embed.to_vec();
    args.push(&long);
    let stderr = fails(cli(&store, &args), 2, "a text over embed_max_bytes");
    assert!(
        stderr.contains("InvalidInput") || stderr.contains("bytes"),
        "{stderr}"
    );

    // The embedding server does not rerank or generate: Unsupported, exit 2,
    // with what to do about it.
    let stderr = fails(
        cli(
            &store,
            &[
                "rerank",
                "--service-category",
                "embedding",
                "--model",
                LLAMA_CPP_EMBEDDING_MODEL,
                "--query",
                "cats",
                "a cat",
                "a bank",
            ],
        ),
        2,
        "rerank on an embedding server",
    );
    assert!(stderr.contains("does not support reranking"), "{stderr}");
    assert!(stderr.contains("tasks"), "{stderr}");
    let stderr = fails(
        cli(
            &store,
            &[
                "generate",
                "--service-category",
                "embedding",
                "--model",
                LLAMA_CPP_EMBEDDING_MODEL,
                "hello",
            ],
        ),
        2,
        "generate on an embedding server",
    );
    assert!(
        stderr.contains("does not support text generation"),
        "{stderr}"
    );

    // Generation: greedy, a few tokens, streamed and not; the same text both
    // ways, the finish reason on standard error.
    let generate = |extra: &[&str]| {
        let mut args = vec![
            "generate",
            "--service-category",
            "text-generation",
            "--model",
            LLAMA_CPP_GENERATION_MODEL,
            "--max-tokens",
            "12",
            "--temperature",
            "0",
        ];
        args.extend_from_slice(extra);
        args.push("Name three colours.");
        let out = cli(&store, &args);
        let stderr = text(&out.stderr);
        (ok(out, "generate"), stderr)
    };
    let (streamed, stderr) = generate(&[]);
    assert!(!streamed.trim().is_empty(), "generated text: {stderr}");
    assert!(stderr.contains("generate: finish reason "), "{stderr}");
    let (whole, _) = generate(&["--no-stream"]);
    assert_eq!(streamed, whole, "streamed pieces add up to the whole text");
    let (with_system, stderr) = generate(&["--system", "Answer in French."]);
    assert!(!with_system.trim().is_empty(), "{stderr}");
    // The prompt from standard input, as a bare completion.
    let out = cli_with_input(
        &store,
        &[
            "generate",
            "--service-category",
            "text-generation",
            "--model",
            LLAMA_CPP_GENERATION_MODEL,
            "--max-tokens",
            "5",
            "--completion",
        ],
        "The capital of France is",
    );
    let stderr = text(&out.stderr);
    assert!(!ok(out, "generate --completion").is_empty(), "{stderr}");
    assert!(
        stderr.contains("finish reason length") || stderr.contains("finish reason stop"),
        "{stderr}"
    );
}

/// `batch --task embed --model MODEL --service-category CATEGORY --input IN
/// --output OUT EXTRA…`.
fn batch_embed_args(
    model: &str,
    category: &str,
    input: &Path,
    output: &Path,
    extra: &[&str],
) -> Vec<String> {
    let mut args: Vec<String> = [
        "batch",
        "--task",
        "embed",
        "--model",
        model,
        "--service-category",
        category,
        "--input",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(input.to_str().unwrap().to_owned());
    args.push("--output".into());
    args.push(output.to_str().unwrap().to_owned());
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// A one-line input `{"text": TEXT}` in `dir` and the arguments of a
/// `batch --task embed` over it; returns them and the output's path.
fn one_line_batch(
    dir: &Path,
    text: &str,
    model: &str,
    category: &str,
) -> (Vec<String>, std::path::PathBuf) {
    let input = dir.join("one-line.jsonl");
    std::fs::write(&input, format!("{}\n", serde_json::json!({ "text": text }))).unwrap();
    let output = dir.join("one-line-out.jsonl");
    (
        batch_embed_args(model, category, &input, &output, &[]),
        output,
    )
}

fn refs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Every record of the output, by line number: the latest answer of each.
fn answers(path: &Path) -> (Vec<Value>, BTreeMap<u64, Value>) {
    let all: Vec<Value> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let latest = all
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r.clone()))
        .collect();
    (all, latest)
}

#[test]
fn batch_embed_resumes_after_a_kill_and_records_failed_lines() {
    let Some((dir, store)) = registered() else {
        return;
    };

    // 120 lines: 2 not JSON-with-a-text, 1 over embed_max_bytes (refused by
    // the connector, so its group is sent again text by text), a blank line
    // (skipped), ids as strings and numbers.
    const LINES: u64 = 120;
    let bad = [9u64, 44];
    let too_long = 77u64;
    let blank = 100u64;
    let mut input = String::new();
    for n in 1..=LINES {
        let line = match n {
            9 => "{not json".to_owned(),
            44 => r#"{"id": "doc-44", "txt": "a typo'd field"}"#.to_owned(),
            77 => serde_json::json!({"id": "doc-77", "text": "word ".repeat(500)}).to_string(),
            100 => String::new(),
            n if n % 2 == 0 => {
                serde_json::json!({"id": format!("doc-{n}"), "text": format!("Document {n} is about cats.")}).to_string()
            }
            n => serde_json::json!({"id": n, "text": format!("Document {n} is about trains.")})
                .to_string(),
        };
        input.push_str(&line);
        input.push('\n');
    }
    let input_path = dir.path().join("corpus.jsonl");
    std::fs::write(&input_path, &input).unwrap();
    let output_path = dir.path().join("vectors.jsonl");
    let args = |extra: &[&str]| {
        batch_embed_args(
            LLAMA_CPP_EMBEDDING_MODEL,
            "embedding",
            &input_path,
            &output_path,
            extra,
        )
    };

    // An interrupted run: one line per request, one at a time, killed
    // (SIGKILL, no chance to clean up) once some answers are on disk.
    let slow = args(&["--batch-size", "1", "--concurrency", "1"]);
    let slow = refs(&slow);
    let mut child = command(&store, &slow)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let written = loop {
        let lines = std::fs::read_to_string(&output_path)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if lines >= 15 {
            break lines;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            panic!("the batch ended ({status}) before it could be interrupted: {stderr}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no 15 answers within 120 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let (before, _) = answers(&output_path);
    assert!(
        before.len() >= written && (before.len() as u64) < LINES - 1,
        "interrupted mid-run"
    );
    // As if the kill had landed in the middle of a write.
    let mut cut = std::fs::read_to_string(&output_path).unwrap();
    cut.push_str("{\"line\": 11, \"vec");
    std::fs::write(&output_path, cut).unwrap();

    // Resumed with the default grouping: only the lines not yet answered run.
    let out = cli(&store, &slow[..slow.len() - 4]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "some lines failed: {}",
        text(&out.stderr)
    );
    let summary = text(&out.stdout);
    let skipped = before.len();
    assert!(
        summary.contains(&format!("{} lines:", LINES - 1))
            && summary.contains(&format!("{skipped} skipped (already answered)")),
        "{summary}"
    );
    let (all, latest) = answers(&output_path);
    assert_eq!(
        all.len() as u64,
        LINES - 1,
        "each non-blank line answered exactly once"
    );
    assert_eq!(
        latest.keys().copied().collect::<Vec<_>>(),
        (1..=LINES).filter(|n| *n != blank).collect::<Vec<_>>()
    );
    let mut first_vectors = BTreeMap::new();
    for (n, record) in &latest {
        if bad.contains(n) || *n == too_long {
            assert_eq!(record["error"]["kind"], "InvalidInput", "{record}");
            assert!(record.get("vector").is_none());
            continue;
        }
        let vector = record["vector"]
            .as_array()
            .unwrap_or_else(|| panic!("{record}"));
        assert_eq!(vector.len(), LLAMA_CPP_EMBEDDING_DIMENSIONS, "{record}");
        let id = if n % 2 == 0 {
            serde_json::json!(format!("doc-{n}"))
        } else {
            serde_json::json!(n)
        };
        assert_eq!(record["id"], id, "the id is copied");
        first_vectors.insert(*n, vector.clone());
    }
    assert_eq!(latest[&44]["id"], "doc-44", "a failed line keeps its id");
    assert_eq!(latest[&77]["id"], "doc-77");

    // --retry-failed runs the three failed lines again, and only them; their
    // new answers are errors again (the input is still wrong).
    let out = cli(&store, &refs(&args(&["--retry-failed"])));
    assert_eq!(out.status.code(), Some(3));
    let summary = text(&out.stdout);
    assert!(
        summary.contains(&format!("0 answered, 3 failed, {} skipped", LINES - 4)),
        "{summary}"
    );
    // A run with nothing left to do sends nothing and succeeds.
    let summary = ok(cli(&store, &refs(&args(&[]))), "a finished batch");
    assert!(
        summary.contains(&format!("0 answered, 0 failed, {} skipped", LINES - 1)),
        "{summary}"
    );
    // The same text gives the same vector whichever run and group embedded it.
    let (one_line, repeat_out) = one_line_batch(
        dir.path(),
        "Document 2 is about cats.",
        LLAMA_CPP_EMBEDDING_MODEL,
        "embedding",
    );
    ok(cli(&store, &refs(&one_line)), "a one-line batch");
    let (one, _) = answers(&repeat_out);
    let a: Vec<f64> = one[0]["vector"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    let b: Vec<f64> = first_vectors[&2]
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert!(cosine(&a, &b) > 0.9999, "same text, same vector");
}

#[test]
fn batch_embed_is_unsupported_on_a_generation_server_before_anything_runs() {
    let Some((dir, store)) = registered() else {
        return;
    };
    let (args, output) = one_line_batch(
        dir.path(),
        "hello",
        LLAMA_CPP_GENERATION_MODEL,
        "text-generation",
    );
    let stderr = fails(
        cli(&store, &refs(&args)),
        2,
        "batch --task embed on a generation server",
    );
    assert!(stderr.contains("does not support embeddings"), "{stderr}");
    assert!(
        !output.exists(),
        "no output file for a run that cannot start"
    );
}
