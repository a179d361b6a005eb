//! The gRPC code in `src/proto.rs` (messages) and `tests/support/omi_server.rs`
//! (a test server's service, over the crate's messages) is generated from `proto/model.proto` with protox (a
//! pure-Rust proto compiler) and tonic-prost-build, and checked in, so
//! building the crate needs neither `protoc` nor a build script.
//!
//! This test regenerates both and fails when the checked-in files differ.
//! After editing the proto, run it once with `INFERLINK_REGENERATE=1` to
//! rewrite them:
//!
//! ```text
//! INFERLINK_REGENERATE=1 cargo test -p inferlink-omi --test generated_code
//! ```

use std::path::{Path, PathBuf};

const HEADER: &str = "// @generated from proto/model.proto by tests/generated_code.rs \
(protox + tonic-prost-build). Do not edit; regenerate instead.\n\n";

fn generate(server: bool, out: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fds = protox::compile(["model.proto"], [root.join("proto")]).expect("the proto compiles");
    let mut config = tonic_prost_build::configure()
        .build_client(false)
        .build_server(server)
        .build_transport(false)
        .bytes(".")
        .out_dir(out);
    if server {
        // The test server reuses the crate's messages (`inferlink_omi::proto`):
        // its file holds only the service, so the messages exist once.
        for message in fds.file.iter().flat_map(|f| &f.message_type) {
            let name = message.name();
            config = config.extern_path(
                format!(".{name}"),
                format!("::inferlink_omi::proto::{name}"),
            );
        }
    }
    config.compile_fds(fds).expect("code generation");
    // The proto has no package, so prost names the file after the empty package.
    let text = std::fs::read_to_string(out.join("_.rs")).expect("generated file");
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
        "{} is stale; regenerate it with INFERLINK_REGENERATE=1 cargo test -p inferlink-omi --test generated_code",
        target.display()
    );
}

#[test]
fn message_code_is_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    check(false, root.join("src/proto.rs"));
}

#[test]
fn test_server_code_is_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    check(true, root.join("tests/support/omi_server.rs"));
}

#[test]
fn method_paths_have_no_package() {
    // The reference server routes /ModzyModel/<Method>; a package would break
    // every call. The paths the client sends (src/client.rs, `paths`) are the
    // ones the proto generates (the test server's routes).
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let server = std::fs::read_to_string(root.join("tests/support/omi_server.rs")).unwrap();
    let client = std::fs::read_to_string(root.join("src/client.rs")).unwrap();
    for method in ["Status", "Run", "Shutdown"] {
        let path = format!("\"/ModzyModel/{method}\"");
        assert!(server.contains(&path), "the generated server lacks {path}");
        assert!(client.contains(&path), "src/client.rs lacks {path}");
    }
}
