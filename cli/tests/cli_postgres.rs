//! The `inferlink` binary against a throwaway PostgreSQL cluster: a
//! `postgres://` (or `postgresql://`) store selects the PostgreSQL store.
//!
//! Skips with a `skipped:` line when the machine has no PostgreSQL server
//! binaries, unless `INFERLINK_REQUIRE_POSTGRES=1` (set by `scripts/test`).
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use inferlink_testkit::postgres::PgCluster;

const MINIO_SECRET: &str = "cMGiZff8KqS5xWQ4eagRujh1tDcbQyRP0bEJSBOf";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/seed004")
        .join(name)
}

/// The test master key (base64) every run gets: credential values are encrypted at rest.
const TEST_KEY: &str = "aW5mZXJsaW5rLXRlc3QtbWFzdGVyLWtleS0wMDAwMDE=";

/// The binary, with the test master key and no key file.
fn inferlink_cmd() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_inferlink"));
    cmd.env("INFERLINK_MASTER_KEY", TEST_KEY)
        .env_remove("INFERLINK_KEY_FILE");
    cmd
}

/// Runs the binary with the store given through `INFERLINK_STORE` (as the
/// docs recommend for URLs holding a password).
fn inferlink(store: &str, args: &[&str]) -> Output {
    inferlink_cmd()
        .args(args)
        .env("INFERLINK_STORE", store)
        .env_remove("INFERLINK_PG_SCHEMA")
        .stdin(Stdio::null())
        .output()
        .expect("the inferlink binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn ok(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(out));
    stdout(out)
}

#[test]
fn register_list_and_resolve_on_postgres() {
    let Some(mut cluster) = PgCluster::start_or_skip("register_list_and_resolve_on_postgres")
    else {
        return;
    };
    let url = cluster.url();
    let password = cluster.password().to_owned();

    for name in ["mlflow-0001.yaml", "minio-s3-storage.yaml"] {
        let path = fixture(name);
        let out = ok(&inferlink(
            &url,
            &["register", "-f", path.to_str().unwrap()],
        ));
        assert!(out.starts_with("registered "), "{out}");
    }
    assert_eq!(
        cluster
            .psql("SELECT string_agg(id, ',' ORDER BY id) FROM inferlink.records")
            .unwrap(),
        "minio-s3-storage,mlflow-0001",
        "the records are in the PostgreSQL schema"
    );

    // Another "host" reading through the postgresql:// spelling and --store.
    let other = url.replacen("postgres://", "postgresql://", 1);
    let out = inferlink_cmd()
        .args(["--store", &other, "list"])
        .env_remove("INFERLINK_STORE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let listing = ok(&out);
    assert!(listing.contains("minio-s3-storage"), "{listing}");
    assert!(listing.contains("mlflow-0001"), "{listing}");
    assert!(
        !listing.contains(MINIO_SECRET),
        "secrets stay hidden: {listing}"
    );

    let out = ok(&inferlink(
        &url,
        &[
            "resolve",
            "--service-resource",
            "s3",
            "--consumer-zone",
            "development-cluster",
            "--product",
            "minio",
        ],
    ));
    assert!(
        out.starts_with(
            "resolved:    minio-s3-storage/s3 (minio 4.1.3, zone development-cluster)\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("endpoint:    http://minio.minio:9000 (internal)\n"),
        "{out}"
    );
    assert!(out.contains("AWS_SECRET_ACCESS_KEY=<hidden>"), "{out}");
    assert!(!out.contains(MINIO_SECRET), "{out}");

    let out = ok(&inferlink(
        &url,
        &["get", "minio-s3-storage", "--show-secrets"],
    ));
    assert!(
        out.contains(MINIO_SECRET),
        "the stored secret round-trips: {out}"
    );

    // A registered id again is exit 2, as with SQLite.
    let path = fixture("minio-s3-storage.yaml");
    let out = inferlink(&url, &["register", "-f", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--upsert"), "{}", stderr(&out));

    // Another schema is another registry.
    let out = inferlink_cmd()
        .args(["--pg-schema", "elsewhere", "list", "-o", "json"])
        .env("INFERLINK_STORE", &url)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(ok(&out).trim(), "[]");

    let out = ok(&inferlink(&url, &["unregister", "mlflow-0001"]));
    assert!(out.contains("mlflow-0001"), "{out}");
    let out = inferlink(&url, &["get", "mlflow-0001"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));

    // Help never shows the store URL from the environment (it holds the password).
    let out = ok(&inferlink(&url, &["--help"]));
    assert!(out.contains("INFERLINK_STORE"), "{out}");
    assert!(!out.contains(&password), "{out}");

    // The server down: exit 3, one line, the server named, never the password.
    cluster.stop().unwrap();
    let out = inferlink(&url, &["list"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{}", cluster.port())),
        "{err}"
    );
    assert!(err.contains("cannot connect to PostgreSQL"), "{err}");
    assert!(!err.contains(&password), "{err}");
}

/// `keys status` and `keys rotate` work on a PostgreSQL store: after the
/// rotation the new key reads the credential values, the old one no longer does.
#[test]
fn keys_rotate_on_postgres() {
    let Some(cluster) = PgCluster::start_or_skip("keys_rotate_on_postgres") else {
        return;
    };
    let url = cluster.url();
    let dir = tempfile::tempdir().unwrap();
    let path = fixture("minio-s3-storage.yaml");
    ok(&inferlink(
        &url,
        &["register", "-f", path.to_str().unwrap()],
    ));

    let status = ok(&inferlink(&url, &["keys", "status"]));
    assert!(status.contains("(the configured key)"), "{status}");
    assert!(status.contains("schema inferlink"), "{status}");
    assert!(!status.contains(cluster.password()), "{status}");

    let new_key = dir.path().join("new.key");
    let out = ok(&inferlink(
        &url,
        &[
            "keys",
            "rotate",
            "--new-key-file",
            new_key.to_str().unwrap(),
        ],
    ));
    assert!(out.contains("data keys re-wrapped: 1"), "{out}");

    // The old key (still in INFERLINK_MASTER_KEY) cannot open the values any more.
    let out = inferlink(&url, &["get", "minio-s3-storage", "--show-secrets"]);
    assert_ne!(out.status.code(), Some(0), "{}", stdout(&out));
    // The new key file can.
    let out = inferlink_cmd()
        .env_remove("INFERLINK_MASTER_KEY")
        .env("INFERLINK_STORE", &url)
        .args(["--key-file", new_key.to_str().unwrap()])
        .args(["get", "minio-s3-storage", "--show-secrets"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let shown = ok(&out);
    assert!(!shown.contains("<hidden>"), "{shown}");
}
