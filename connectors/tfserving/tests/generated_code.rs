//! The gRPC code in `src/proto.rs` (client) and `tests/support/tfs_server.rs`
//! (a test server) is generated from `proto/*.proto` with protox (a pure-Rust
//! proto compiler) and tonic-prost-build, and checked in, so building the
//! crate needs neither `protoc` nor a build script.
//!
//! The two proto packages (`tensorflow`, `tensorflow.serving`) become nested
//! modules of one file: `tensorflow` with `tensorflow::serving` inside it,
//! which is where the generated `super::TensorProto` paths point.
//!
//! This test regenerates both files and fails when the checked-in ones
//! differ. After editing a proto, run it once with `INFERLINK_REGENERATE=1`:
//!
//! ```text
//! INFERLINK_REGENERATE=1 cargo test -p inferlink-tfserving --test generated_code
//! ```

use std::path::{Path, PathBuf};

const HEADER: &str = "// @generated from proto/*.proto by tests/generated_code.rs \
(protox + tonic-prost-build). Do not edit; regenerate instead.\n\n";

fn indent(text: &str, by: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{by}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn generate(server: bool, out: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fds = protox::compile(["tensorflow_serving.proto"], [root.join("proto")])
        .expect("the protos compile");
    let mut config = tonic_prost_build::configure()
        .build_client(!server)
        .build_server(server)
        .build_transport(false)
        .bytes(".")
        .out_dir(out);
    if server {
        // The test server reuses the crate's messages (`inferlink_tfserving::proto`):
        // its file holds only the services, so the messages exist once.
        config = config.extern_path(".tensorflow", "::inferlink_tfserving::proto::tensorflow");
    }
    config.compile_fds(fds).expect("code generation");
    // With the messages external, a package without services yields no file.
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap_or_default();
    let tf = read("tensorflow.rs");
    let serving = read("tensorflow.serving.rs");
    format!(
        "{HEADER}pub mod tensorflow {{\n{}\n    pub mod serving {{\n{}\n    }}\n}}\n",
        indent(&tf, "    "),
        indent(&serving, "        ")
    )
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
        "{} is stale; regenerate it with INFERLINK_REGENERATE=1 cargo test -p inferlink-tfserving --test generated_code",
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
    check(true, root.join("tests/support/tfs_server.rs"));
}
