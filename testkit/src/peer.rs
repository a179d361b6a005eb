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
