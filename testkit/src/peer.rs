//! Python peers: a harness venv's interpreter running a test's own script
//! (botocore from the `moto` venv, for the AWS connectors' cross-checks).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use serde_json::Value;

use crate::servers::{self, ServerKind};

/// The interpreter of `kind`'s venv, or `None` after a visible `skipped:`
/// line when it is not installed and live peers are not required
/// (`INFERLINK_REQUIRE_LIVE=1` makes a missing venv a panic).
pub fn venv_python(kind: ServerKind) -> Option<PathBuf> {
    static FOUND: Mutex<Vec<(ServerKind, Result<PathBuf, String>)>> = Mutex::new(Vec::new());
    let mut found = FOUND.lock().unwrap_or_else(|e| e.into_inner());
    if !found.iter().any(|(k, _)| *k == kind) {
        let result = Command::new("bash")
            .arg(servers::script_path())
            .args(["venv", kind.name()])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| e.to_string())
            .and_then(|out| {
                let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_owned();
                if out.status.success() {
                    Ok(PathBuf::from(text(&out.stdout)).join("bin/python"))
                } else {
                    Err(text(&out.stderr))
                }
            });
        found.push((kind, result));
    }
    let result = &found.iter().find(|(k, _)| *k == kind)?.1;
    match result {
        Ok(path) => Some(path.clone()),
        Err(e) if !servers::require_live() => {
            let _ = writeln!(
                std::io::stderr(),
                "skipped: the {kind} venv (a Python peer) is not installed: {e}; {}=1 turns this into a failure",
                servers::REQUIRE_LIVE_ENV
            );
            None
        }
        Err(e) => panic!("the {kind} venv (a Python peer) is required: {e}"),
    }
}

/// Runs `python script command` with `request` as JSON on standard input
/// and returns the JSON it prints; panics (the test fails) when the script
/// fails or prints something else.
pub fn run_json(python: &Path, script: &Path, command: &str, request: &Value) -> Value {
    let mut child = Command::new(python)
        .arg(script)
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the Python peer");
    let written = child
        .stdin
        .take()
        .expect("the peer's standard input")
        .write_all(request.to_string().as_bytes());
    let out = child.wait_with_output().expect("the Python peer ran");
    written.expect("the request reached the peer");
    assert!(
        out.status.success(),
        "{} {command} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the Python peer prints JSON")
}

/// The static AWS key pair (and session token) a botocore check signs with.
#[derive(Debug, Clone, Copy)]
pub struct AwsKeys<'a> {
    /// The access key id.
    pub access_key: &'a str,
    /// The secret access key.
    pub secret_key: &'a str,
    /// The session token of temporary credentials.
    pub token: Option<&'a str>,
}

/// The `Authorization` header botocore's `SigV4Auth` computes for exactly
/// the request `sent` (its signed headers, its body) to `url`, at the fixed
/// time of `testkit/servers/moto/botocore_peer_common.py`, for `service`
/// in `region`: run through `script`'s `sign` command, which that module
/// provides. Compare it with the request's own `Authorization`.
pub fn botocore_authorization(
    python: &Path,
    script: &Path,
    url: &str,
    sent: &crate::fault::RecordedRequest,
    region: &str,
    service: &str,
    keys: AwsKeys<'_>,
) -> Option<String> {
    let auth = sent.header("authorization")?;
    let signed = auth.split("SignedHeaders=").nth(1)?.split(',').next()?;
    let headers: Vec<(&str, &str)> = signed
        .split(';')
        .filter(|h| !matches!(*h, "x-amz-date" | "x-amz-security-token"))
        .map(|h| (h, sent.header(h).unwrap_or_default()))
        .collect();
    let mut request = serde_json::json!({
        "method": sent.method,
        "url": format!("{url}{}", sent.target),
        "headers": headers,
        "body_hex": sent.body.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        "region": region,
        "service": service,
        "access_key": keys.access_key,
        "secret_key": keys.secret_key,
    });
    if let Some(token) = keys.token {
        request["token"] = serde_json::json!(token);
    }
    let answer = run_json(python, script, "sign", &request);
    answer["headers"]["authorization"]
        .as_str()
        .map(str::to_owned)
}
