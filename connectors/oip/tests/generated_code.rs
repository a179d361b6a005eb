//! The gRPC code in `src/proto.rs` (client) and `tests/support/` (a test
//! server) is generated from `proto/inference.proto` with protox (a pure-Rust
//! proto compiler) and tonic-prost-build, and checked in, so building the
//! crate needs neither `protoc` nor a build script.
//!
//! This test regenerates both and fails when the checked-in files differ.
//! After editing the proto, run it once with `INFERLINK_REGENERATE=1` to
//! rewrite them:
//!
//! ```text
//! INFERLINK_REGENERATE=1 cargo test -p inferlink-oip --test generated_code
//! ```

use std::path::{Path, PathBuf};

const HEADER: &str = "// @generated from proto/inference.proto by tests/generated_code.rs \
(protox + tonic-prost-build). Do not edit; regenerate instead.\n\n";

fn generate(server: bool, out: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fds =
        protox::compile(["inference.proto"], [root.join("proto")]).expect("the proto compiles");
    let mut config = tonic_prost_build::configure()
        .build_client(!server)
        .build_server(server)
        .build_transport(false)
        .bytes(".")
        .out_dir(out);
    if server {
        // The test server reuses the crate's messages (`inferlink_oip::proto`):
        // its file holds only the service, so the messages exist once.
        config = config.extern_path(".inference", "::inferlink_oip::proto");
    }
    config.compile_fds(fds).expect("code generation");
    let text = std::fs::read_to_string(out.join("inference.rs")).expect("generated file");
    format!("{HEADER}{text}")
}

fn check(server: bool, target: PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let fresh = generate(server, dir.path());
    if std::env::var_os("INFERLINK_REGENERATE").is_some() {
        std::fs::write(&target, &fresh).unwrap();
        eprintln!("regenerated {}", target.display());
        return;
    }
    let current = std::fs::read_to_string(&target).unwrap_or_default();
    assert!(
        current == fresh,
        "{} is stale; regenerate it with INFERLINK_REGENERATE=1 cargo test -p inferlink-oip --test generated_code",
        target.display()
    );
}

#[test]
fn client_code_is_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    check(false, root.join("src/proto.rs"));
}

#[test]
fn test_server_code_is_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    check(true, root.join("tests/support/inference_server.rs"));
}
