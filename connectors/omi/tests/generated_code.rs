//! `src/proto.rs` holds the prost messages of `proto/model.proto`, generated
//! by inferlink-protogen and checked in, so building the crate needs neither
//! `protoc` nor a build script. These tests fail when it is stale
//! (`INFERLINK_REGENERATE=1 cargo test -p inferlink-omi --test
//! generated_code` rewrites it) or when a method path is misspelt.

inferlink_protogen::generated_code_tests! {
    protos: ["model.proto"],
    method_paths_in: ["src/client.rs", "tests/fake_server.rs"],
}

#[test]
fn method_paths_have_no_package() {
    // The reference server routes /ModzyModel/<Method>; a package would break
    // every call. The client (src/client.rs, `paths`) sends and the test
    // server routes each of them.
    let declared = messages().method_paths().unwrap();
    assert_eq!(
        declared,
        [
            "/ModzyModel/Status",
            "/ModzyModel/Run",
            "/ModzyModel/Shutdown"
        ]
    );
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in ["src/client.rs", "tests/fake_server.rs"] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        for path in &declared {
            assert!(text.contains(&format!("\"{path}\"")), "{file} lacks {path}");
        }
    }
}
