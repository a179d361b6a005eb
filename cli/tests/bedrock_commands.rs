//! `inferlink invoke`, `infer`, `embed`, `generate` and `rerank` with an
//! Amazon Bedrock record (product `bedrock`, SigV4 credentials in the
//! record). `invoke` goes to the harness's moto server, which checks the
//! signature and answers InvokeModel; the others go to a stand-in for
//! Bedrock (a scripted loopback server answering in the shapes AWS
//! documents: Titan's `{embedding, inputTextTokenCount}`, a ConverseStream
//! event stream, Rerank's `results`), which records what the binary sent.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use inferlink_bedrock::eventstream::{Message, encode_message};
use inferlink_testkit::fault::{Fault, FaultOptions, FaultServer};
use inferlink_testkit::keys::test_master_key_base64;
use inferlink_testkit::live::shared_server;
use inferlink_testkit::servers::ServerKind;
use serde_json::{Value, json};

const TITAN: &str = "amazon.titan-embed-text-v2:0";

/// A fresh registry holding one Bedrock record for `url`, signed with
/// `key_id`/`secret`; the binary runs on Tokio's blocking pool.
struct Registry {
    dir: tempfile::TempDir,
}

impl Registry {
    fn new(url: &str, key_id: &str, secret: &str) -> Registry {
        Registry::with_settings(url, key_id, secret, "")
    }

    /// As [`Registry::new`], with more configuration lines (indented for the service).
    fn with_settings(url: &str, key_id: &str, secret: &str, settings: &str) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let record = format!(
            "id: bedrock-test\nproduct: bedrock\nversion: \"2023-09-30\"\nservices:\n  - id: runtime\n    \
             resource: bedrock-runtime\n    category: generative-ai\n    configuration:\n      \
             region: us-east-1\n      auth: sigv4\n      retry_max_attempts: \"1\"\n{settings}    \
             endpoints:\n      - url: {url}\n    credentials:\n      - id: aws\n        scope: global\n        \
             configuration:\n          aws_access_key_id: {key_id}\n          \
             aws_secret_access_key: {secret}\n"
        );
        let file = dir.path().join("bedrock.yaml");
        std::fs::write(&file, record).unwrap();
        let registry = Registry { dir };
        let out = registry.run_blocking(&["register", "-f", file.to_str().unwrap()]);
        assert!(out.status.success(), "register: {}", text(&out.stderr));
        registry
    }

    fn store(&self) -> std::path::PathBuf {
        self.dir.path().join("registry.db")
    }

    fn run_blocking(&self, args: &[&str]) -> Output {
        run(&self.store(), args)
    }

    /// Runs `inferlink ARGS… --extension-id bedrock-test` and asserts success; standard output and error.
    async fn ok(&self, args: &[&str]) -> (String, String) {
        let (store, mut args): (_, Vec<String>) =
            (self.store(), args.iter().map(|a| a.to_string()).collect());
        args.extend(["--extension-id".to_owned(), "bedrock-test".to_owned()]);
        let out = tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run(&store, &args)
        })
        .await
        .unwrap();
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(out.status.success(), "{stdout}{stderr}");
        (stdout, stderr)
    }
}

fn run(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_inferlink"))
        .arg("--store")
        .arg(store)
        .args(args)
        .env_remove("INFERLINK_STORE")
        .env_remove("INFERLINK_KEY_FILE")
        .env_remove("AWS_BEARER_TOKEN_BEDROCK")
        .env("INFERLINK_MASTER_KEY", test_master_key_base64())
        .stdin(Stdio::null())
        .output()
        .expect("the inferlink binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A stand-in for Bedrock answering every request with `answer`.
async fn stand_in(answer: Fault) -> FaultServer {
    let options = FaultOptions {
        fallback: answer,
        ..FaultOptions::default()
    };
    FaultServer::start_with(Vec::new(), options).await.unwrap()
}

/// The stand-in and a registry whose record points at it (example keys).
async fn with_stand_in(answer: Fault) -> (FaultServer, Registry) {
    let server = stand_in(answer).await;
    let url = server.url();
    let registry = tokio::task::spawn_blocking(move || {
        Registry::new(
            &url,
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        )
    })
    .await
    .unwrap();
    (server, registry)
}

fn signed_for_bedrock(request: &inferlink_testkit::fault::RecordedRequest) {
    let auth = request.header("authorization").unwrap_or_default();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
        "{auth}"
    );
    assert!(auth.contains("/us-east-1/bedrock/aws4_request"), "{auth}");
}

#[tokio::test(flavor = "multi_thread")]
async fn invoke_reaches_moto_with_a_signed_invoke_model() {
    let Some(server) = shared_server(ServerKind::Moto).await else {
        return;
    };
    let path = server.instance_dir().join("credentials.json");
    let creds: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let field = |k: &str| creds[k].as_str().unwrap().to_owned();
    let (id, secret, role) = (
        field("access_key_id"),
        field("secret_access_key"),
        field("role_arn"),
    );
    // The user may not call Bedrock; the role it assumes through moto's STS may.
    let url = server.http_url();
    let extra = format!(
        "      aws_credential_source: assume_role\n      aws_role_arn: {role}\n      \
         aws_sts_endpoint_url: {url}\n"
    );
    let registry =
        tokio::task::spawn_blocking(move || Registry::with_settings(&url, &id, &secret, &extra))
            .await
            .unwrap();
    let (stdout, _) = registry
        .ok(&[
            "invoke",
            "--model",
            TITAN,
            "--body",
            r#"{"inputText": "hi"}"#,
            "--content-type",
            "application/json",
            // moto answers `*/*` (reqwest's default) with a 500; it JSON-encodes only for this.
            "--accept",
            "application/json",
        ])
        .await;
    assert_eq!(stdout.trim(), "{}");
}

#[tokio::test(flavor = "multi_thread")]
async fn embed_sends_one_titan_request_per_text() {
    let answer = json!({"embedding": [0.6, 0.8], "inputTextTokenCount": 2}).to_string();
    let (server, registry) = with_stand_in(Fault::json(200, &answer)).await;
    let (stdout, stderr) = registry
        .ok(&["embed", "--model", TITAN, "first text", "second text"])
        .await;
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{stdout}{stderr}");
    assert_eq!(lines[1]["index"], 1);
    assert_eq!(lines[1]["vector"], json!([0.6, 0.8]));
    let sent = server.recorded();
    assert_eq!(sent.len(), 2, "Titan takes one text per request");
    assert_eq!(
        sent[0].target,
        "/model/amazon.titan-embed-text-v2%3A0/invoke"
    );
    signed_for_bedrock(&sent[0]);
    // The two requests go out concurrently, in either order.
    let mut bodies: Vec<Value> = sent
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    bodies.sort_by_key(|b| b.to_string());
    let texts = [
        json!({"inputText": "first text"}),
        json!({"inputText": "second text"}),
    ];
    assert_eq!(bodies, texts);
}

#[tokio::test(flavor = "multi_thread")]
async fn infer_turns_a_bytes_tensor_into_embeddings() {
    let answer = json!({"embedding": [0.25, 0.5, 0.75], "inputTextTokenCount": 1}).to_string();
    let (server, registry) = with_stand_in(Fault::json(200, &answer)).await;
    let input = r#"{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["hello"]}"#;
    let (stdout, _) = registry
        .ok(&["infer", "--model", TITAN, "--input", input])
        .await;
    let answer: Value = serde_json::from_str(&stdout).unwrap();
    let output = &answer["outputs"][0];
    assert_eq!(output["name"], "embedding", "{stdout}");
    assert_eq!(output["datatype"], "FP32");
    assert_eq!(output["shape"], json!([1, 3]));
    assert_eq!(server.recorded().len(), 1);
}

fn event(event_type: &str, payload: Value) -> Vec<u8> {
    let message = Message::json_event(event_type, payload.to_string());
    encode_message(&message).unwrap().to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn generate_streams_a_converse_stream() {
    let frames = [
        event("messageStart", json!({"role": "assistant"})),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Bon"}}),
        ),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "jour"}}),
        ),
        event("contentBlockStop", json!({"contentBlockIndex": 0})),
        event("messageStop", json!({"stopReason": "end_turn"})),
        event(
            "metadata",
            json!({"usage": {"inputTokens": 4, "outputTokens": 2, "totalTokens": 6}, "metrics": {"latencyMs": 5}}),
        ),
    ];
    let stream =
        Fault::with_body(200, "application/vnd.amazon.eventstream", frames.concat()).chunked();
    let (server, registry) = with_stand_in(stream).await;
    let model = "anthropic.claude-3-haiku-20240307-v1:0";
    let (stdout, stderr) = registry
        .ok(&[
            "generate",
            "--model",
            model,
            "--max-tokens",
            "5",
            "--system",
            "Answer in French.",
            "Hello",
        ])
        .await;
    assert_eq!(stdout.trim(), "Bonjour");
    assert!(stderr.contains("finish reason stop"), "{stderr}");
    let sent = server.recorded();
    assert!(
        sent[0].target.ends_with("/converse-stream"),
        "{}",
        sent[0].target
    );
    signed_for_bedrock(&sent[0]);
    let body: Value = serde_json::from_slice(&sent[0].body).unwrap();
    assert_eq!(body["system"], json!([{"text": "Answer in French."}]));
    assert_eq!(body["inferenceConfig"]["maxTokens"], 5);
    assert_eq!(body["messages"][0]["content"][0]["text"], "Hello");
}

#[tokio::test(flavor = "multi_thread")]
async fn rerank_calls_the_agent_runtime() {
    let answer = json!({"results": [
        {"index": 1, "relevanceScore": 0.9},
        {"index": 0, "relevanceScore": 0.1},
    ]});
    let (server, registry) = with_stand_in(Fault::json(200, &answer.to_string())).await;
    let (stdout, _) = registry
        .ok(&[
            "rerank",
            "--model",
            "amazon.rerank-v1:0",
            "--query",
            "a managed AI service",
            "a cat",
            "Amazon Bedrock",
        ])
        .await;
    let hits: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(hits[0]["index"], 1, "{stdout}");
    assert_eq!(hits.len(), 2);
    let sent = server.recorded();
    assert_eq!(sent[0].target, "/rerank");
    signed_for_bedrock(&sent[0]);
    let body: Value = serde_json::from_slice(&sent[0].body).unwrap();
    let config = &body["rerankingConfiguration"]["bedrockRerankingConfiguration"];
    assert_eq!(
        config["modelConfiguration"]["modelArn"],
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.rerank-v1:0"
    );
    assert_eq!(body["sources"].as_array().unwrap().len(), 2);
}
