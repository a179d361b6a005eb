//! Issue 14: the operator's host-only transport settings for the CLI's
//! connector commands — `INFERLINK_ENDPOINT_POLICY` (the `public-only`
//! preset, an allow-list, `@FILE`) and `INFERLINK_ALLOW_FILE_DIRS` (where a
//! record's `tls_*_file` keys may read).
//!
//! The server is a hand-written loopback stand-in (a thread answering every
//! request `200` with an empty body, counting connections): what is tested
//! is whether the CLI connects at all, which needs no real model server.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use inferlink_testkit::keys::test_master_key_base64;

/// Runs `inferlink --store STORE ARGS…` with the given extra environment.
fn cli(store: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_inferlink"));
    command
        .arg("--store")
        .arg(store)
        .args(args)
        .env_remove("INFERLINK_STORE")
        .env_remove("INFERLINK_KEY_FILE")
        .env_remove("INFERLINK_ENDPOINT_POLICY")
        .env_remove("INFERLINK_ALLOW_FILE_DIRS")
        .env("INFERLINK_MASTER_KEY", test_master_key_base64())
        .stdin(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("the inferlink binary runs")
}

/// The stand-in server: answers every request on a connection with
/// `200 OK`, empty body; counts accepted connections. Runs until the test
/// process ends (each read waits at most 5 s).
fn stand_in_server() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&connections);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            seen.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = [0u8; 4096];
                let mut head = Vec::new();
                loop {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                    while let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                        head.drain(..end + 4);
                        if stream
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            });
        }
    });
    (port, connections)
}

fn register(store: &Path, dir: &Path, id: &str, url: &str, extra: &str) {
    let file = dir.join(format!("{id}.yaml"));
    std::fs::write(
        &file,
        format!(
            "id: {id}\nproduct: oip\nversion: \"1\"\nservices:\n  - id: v2\n    resource: inference-v2\n    category: prediction-serving\n    configuration:\n      deadline_ms: \"5000\"\n{extra}    endpoints:\n      - url: {url}\n"
        ),
    )
    .unwrap();
    let out = cli(store, &[], &["register", "-f", file.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn the_public_only_policy_refuses_a_loopback_endpoint_and_an_allow_list_admits_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("registry.db");
    let (port, connections) = stand_in_server();
    register(
        &store,
        dir.path(),
        "local",
        &format!("http://127.0.0.1:{port}"),
        "",
    );
    register(
        &store,
        dir.path(),
        "by-name",
        &format!("http://localhost:{port}"),
        "",
    );

    // Without a policy the CLI reaches the server.
    let out = cli(&store, &[], &["health", "--extension-id", "local"]);
    assert!(out.status.success(), "{out:?}");
    let reached = connections.load(Ordering::SeqCst);
    assert!(reached >= 1);

    // The preset: refused by address and by name, nothing connects, exit 3.
    for id in ["local", "by-name"] {
        let out = cli(
            &store,
            &[("INFERLINK_ENDPOINT_POLICY", "public-only")],
            &["health", "--extension-id", id],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{id}: {stderr}");
        assert!(stderr.contains("endpoint policy"), "{id}: {stderr}");
        assert!(stderr.contains("loopback"), "{id}: {stderr}");
    }
    assert_eq!(
        connections.load(Ordering::SeqCst),
        reached,
        "nothing connected"
    );

    // An allow-list on top of the preset, from the variable and from a file.
    let policy_file = dir.path().join("policy");
    std::fs::write(&policy_file, "# lab\npublic-only\n127.0.0.1\n").unwrap();
    let from_file = format!("@{}", policy_file.display());
    for policy in ["public-only, 127.0.0.1", from_file.as_str()] {
        for id in ["local", "by-name"] {
            let out = cli(
                &store,
                &[("INFERLINK_ENDPOINT_POLICY", policy)],
                &["health", "--extension-id", id],
            );
            assert!(out.status.success(), "{policy} {id}: {out:?}");
        }
    }

    // A policy that is not one is a usage error naming the variable.
    let out = cli(
        &store,
        &[("INFERLINK_ENDPOINT_POLICY", "not*a*rule")],
        &["health", "--extension-id", "local"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("INFERLINK_ENDPOINT_POLICY"), "{stderr}");
}

#[test]
fn tls_file_keys_need_a_directory_the_operator_allows() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("registry.db");
    register(
        &store,
        dir.path(),
        "shadow",
        "https://127.0.0.1:9",
        "      tls_ca_file: /etc/shadow\n",
    );
    let allowed = tempfile::tempdir().unwrap();
    for env in [
        vec![],
        vec![(
            "INFERLINK_ALLOW_FILE_DIRS",
            allowed.path().to_str().unwrap(),
        )],
    ] {
        let out = cli(&store, &env, &["health", "--extension-id", "shadow"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{env:?}: {stderr}");
        assert!(stderr.contains("tls_ca_file"), "{env:?}: {stderr}");
    }
}
