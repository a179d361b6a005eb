//! The freshness check fails when the checked-in file is stale (edited,
//! missing, or behind an edited proto), packages nest as modules, and the
//! method-path check catches a misspelt path, all on a throwaway copy of a
//! two-package fixture.

use std::fs;
use std::path::Path;

use inferlink_protogen::{ProtoMessages, ProtogenError};

/// A crate directory with the fixture protos and freshly generated messages.
fn fixture_crate() -> (tempfile::TempDir, ProtoMessages) {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    fs::create_dir_all(dir.path().join("proto")).unwrap();
    fs::create_dir_all(dir.path().join("src")).unwrap();
    for name in ["outer.proto", "inner.proto"] {
        fs::copy(fixtures.join(name), dir.path().join("proto").join(name)).unwrap();
    }
    let messages = ProtoMessages::new(dir.path(), &["outer.proto", "inner.proto"], "src/proto.rs");
    messages.regenerate().unwrap();
    (dir, messages)
}

#[test]
fn fresh_code_passes_and_stale_code_fails() {
    let (dir, messages) = fixture_crate();
    messages.check().unwrap();
    let output = dir.path().join("src/proto.rs");

    // A hand edit of the generated file.
    let text = fs::read_to_string(&output).unwrap();
    fs::write(&output, text.replace("pub x: i64", "pub x: i32")).unwrap();
    assert!(matches!(messages.check(), Err(ProtogenError::Stale { .. })));

    // A missing file.
    fs::remove_file(&output).unwrap();
    assert!(matches!(messages.check(), Err(ProtogenError::Stale { .. })));

    // A proto edited after the code was generated.
    messages.regenerate().unwrap();
    messages.check().unwrap();
    let proto = dir.path().join("proto/outer.proto");
    let text = fs::read_to_string(&proto).unwrap();
    fs::write(
        &proto,
        text.replace("bytes label = 2;", "bytes label = 2;\n  string note = 3;"),
    )
    .unwrap();
    let e = messages.check().unwrap_err();
    assert!(e.to_string().contains("is stale"), "{e}");
}

#[test]
#[should_panic(expected = "is stale")]
fn assert_fresh_panics_on_stale_code() {
    let (dir, messages) = fixture_crate();
    fs::write(dir.path().join("src/proto.rs"), "// old\n").unwrap();
    // With the variable set, assert_fresh would rewrite the file instead.
    assert!(std::env::var_os(inferlink_protogen::REGENERATE_VAR).is_none());
    messages.assert_fresh();
}

#[test]
fn packages_nest_as_modules_and_bytes_are_bytes() {
    let (_dir, messages) = fixture_crate();
    let code = messages.generate().unwrap();
    assert!(code.starts_with("// @generated from proto/outer.proto, proto/inner.proto"));
    let outer = code.find("pub mod demo {").expect("module demo");
    let inner = code
        .find("    pub mod inner {")
        .expect("module demo::inner");
    assert!(outer < inner);
    assert!(code.contains("pub struct Point"));
    assert!(code.contains("::prost::bytes::Bytes"), "{code}");
    // Messages only: no client or server stubs.
    assert!(!code.contains("plotter_client") && !code.contains("plotter_server"));
}

#[test]
fn method_paths_come_from_the_protos() {
    let (dir, messages) = fixture_crate();
    assert_eq!(
        messages.method_paths().unwrap(),
        ["/demo.inner.Plotter/Plot", "/demo.inner.Plotter/Trace"]
    );
    let client = dir.path().join("src/client.rs");
    fs::write(
        &client,
        "const PLOT: &str = \"/demo.inner.Plotter/Plot\";\n",
    )
    .unwrap();
    messages.check_paths_declared(&["src/client.rs"]).unwrap();
    // A misspelt method.
    fs::write(
        &client,
        "const PLOT: &str = \"/demo.inner.Plotter/Plott\";\n",
    )
    .unwrap();
    let e = messages
        .check_paths_declared(&["src/client.rs"])
        .unwrap_err();
    assert!(e.to_string().contains("Plott"), "{e}");
    // A constant named after another method (swapped paths).
    fs::write(
        &client,
        "const TRACE: &str =\n    \"/demo.inner.Plotter/Plot\";\n",
    )
    .unwrap();
    let e = messages
        .check_paths_declared(&["src/client.rs"])
        .unwrap_err();
    assert!(e.to_string().contains("should be PLOT"), "{e}");
    // A file that names no method of the protos at all.
    fs::write(&client, "const PLOT: &str = \"/demo.Plotter/Plot\";\n").unwrap();
    assert!(matches!(
        messages.check_paths_declared(&["src/client.rs"]),
        Err(ProtogenError::UndeclaredPath { .. })
    ));
}
