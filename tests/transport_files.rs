//! Issue 14, finding 6: the `*_file` transport keys (`tls_ca_file`,
//! `tls_client_cert_file`, `tls_client_key_file`) must not let a record make
//! the host read any local file. They are refused unless the host allows a
//! directory (`TransportConfig::allowed_file_dirs`); then only regular files
//! whose resolved path lies inside it, of at most 1 MiB, are read; FIFOs and
//! devices are refused before any read; errors name the key, never the content.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use inferlink::resolve::ConfigValue;
use inferlink::transport::{HttpTransportBuilder, TransportConfig};
use inferlink::{Consumer, Error, ErrorKind, MemoryStore, Registry, Secret, Selector};

const FILE_KEYS: [&str; 3] = ["tls_ca_file", "tls_client_cert_file", "tls_client_key_file"];

/// Host defaults that allow `dir` for `*_file` keys.
fn allowing(dir: &Path) -> TransportConfig {
    let mut c = TransportConfig::default();
    c.allowed_file_dirs = vec![dir.to_path_buf()];
    c
}

/// Applies one key under `defaults` on another thread, so that a read that
/// blocks (the bug this guards against) fails the test instead of hanging it.
fn apply_bounded(
    defaults: TransportConfig,
    key: &str,
    value: &str,
) -> Result<TransportConfig, Error> {
    let (tx, rx) = mpsc::channel();
    let (key, value) = (key.to_owned(), value.to_owned());
    std::thread::spawn(move || {
        let _ = tx.send(defaults.apply_values([(key, ConfigValue::Plain(value))]));
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("reading the configuration must not block")
}

fn assert_refused(result: Result<TransportConfig, Error>, key: &str, words: &str) -> Error {
    let e = result.expect_err("the file must be refused");
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert_eq!(e.path(), Some(key), "{e}");
    assert!(e.message().contains(words), "expected {words:?} in: {e}");
    e
}

/// A CA certificate in PEM, made for the test.
fn ca_pem() -> String {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().pem()
}

#[test]
fn file_keys_are_refused_unless_the_host_allows_a_directory() {
    for key in FILE_KEYS {
        // /etc/hostname exists and is readable: the refusal is about policy.
        let e = assert_refused(
            apply_bounded(TransportConfig::default(), key, "/etc/hostname"),
            key,
            "allows no directory",
        );
        assert!(e.message().contains("_pem"), "names the inline key: {e}");
    }
}

#[test]
fn files_outside_the_allowed_directories_are_refused_even_through_symlinks() {
    let allowed = tempfile::tempdir().unwrap();
    let defaults = allowing(allowed.path());
    for key in FILE_KEYS {
        for outside in ["/etc/shadow", "/etc/passwd"] {
            let e = assert_refused(
                apply_bounded(defaults.clone(), key, outside),
                key,
                "outside the directories",
            );
            assert!(!e.to_string().contains("root:"), "no content: {e}");
        }
        let climbing = format!("{}/../../../etc/passwd", allowed.path().display());
        assert_refused(
            apply_bounded(defaults.clone(), key, &climbing),
            key,
            "outside the directories",
        );
    }
    let link = allowed.path().join("ca.pem");
    std::os::unix::fs::symlink("/etc/passwd", &link).unwrap();
    let e = assert_refused(
        apply_bounded(defaults.clone(), "tls_ca_file", link.to_str().unwrap()),
        "tls_ca_file",
        "outside the directories",
    );
    assert!(!e.to_string().contains("root:"), "no content: {e}");
    assert_refused(
        apply_bounded(defaults, "tls_ca_file", "relative/ca.pem"),
        "tls_ca_file",
        "not an absolute path",
    );
}

#[test]
fn a_fifo_is_refused_without_hanging() {
    let allowed = tempfile::tempdir().unwrap();
    let fifo = allowed.path().join("ca.pem");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    for key in FILE_KEYS {
        assert_refused(
            apply_bounded(allowing(allowed.path()), key, fifo.to_str().unwrap()),
            key,
            "not a regular file",
        );
    }
}

#[test]
fn devices_and_oversized_files_are_refused_without_reading_them() {
    // /dev/zero would never end: it is not a regular file.
    assert_refused(
        apply_bounded(allowing(Path::new("/dev")), "tls_ca_file", "/dev/zero"),
        "tls_ca_file",
        "not a regular file",
    );
    let allowed = tempfile::tempdir().unwrap();
    assert_refused(
        apply_bounded(
            allowing(allowed.path()),
            "tls_ca_file",
            allowed.path().to_str().unwrap(),
        ),
        "tls_ca_file",
        "not a regular file",
    );
    // A sparse 2 MiB file: over the 1 MiB cap.
    let big = allowed.path().join("big.pem");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(2 * 1024 * 1024)
        .unwrap();
    assert_refused(
        apply_bounded(
            allowing(allowed.path()),
            "tls_ca_file",
            big.to_str().unwrap(),
        ),
        "tls_ca_file",
        "larger than 1048576 bytes",
    );
    assert_eq!(inferlink::transport::PEM_FILE_MAX_BYTES, 1024 * 1024);
}

#[test]
fn an_allowed_pem_file_is_read_and_its_content_never_shown() {
    let allowed = tempfile::tempdir().unwrap();
    let pem = ca_pem();
    let file = allowed.path().join("ca.pem");
    std::fs::write(&file, &pem).unwrap();
    let c = apply_bounded(
        allowing(allowed.path()),
        "tls_ca_file",
        file.to_str().unwrap(),
    )
    .unwrap();
    assert_eq!(c.tls.ca_pem.as_deref(), Some(pem.trim()));

    // A symlink inside the directory to a file inside it is fine.
    let sub = allowed.path().join("current");
    std::os::unix::fs::symlink(&file, &sub).unwrap();
    let c = apply_bounded(
        allowing(allowed.path()),
        "tls_ca_file",
        sub.to_str().unwrap(),
    )
    .unwrap();
    assert_eq!(c.tls.ca_pem.as_deref(), Some(pem.trim()));

    // A file that is not PEM: the error names the key, not the content.
    let junk = allowed.path().join("junk.pem");
    std::fs::write(&junk, "planted-content-7 is not PEM").unwrap();
    let e = assert_refused(
        apply_bounded(
            allowing(allowed.path()),
            "tls_client_key_file",
            junk.to_str().unwrap(),
        ),
        "tls_client_key_file",
        "PEM",
    );
    assert!(!e.to_string().contains("planted-content-7"), "{e}");

    // A path from credentials (a secret) is never quoted either.
    let e = allowing(allowed.path())
        .apply_values([(
            "tls_ca_file",
            ConfigValue::Secret(Secret::new("/etc/secret-path-planted")),
        )])
        .unwrap_err();
    assert_eq!(e.path(), Some("tls_ca_file"));
    assert!(!e.to_string().contains("secret-path-planted"), "{e}");
}

/// The whole way: a registered record naming `/etc/shadow` (or a file the
/// host allows) as its CA file, resolved and built into a transport.
#[tokio::test]
async fn a_record_cannot_make_the_host_read_a_local_file() {
    let allowed = tempfile::tempdir().unwrap();
    let allowed_file: PathBuf = allowed.path().join("ca.pem");
    std::fs::write(&allowed_file, ca_pem()).unwrap();
    let registry = Registry::open(MemoryStore::new()).await.unwrap();
    for (id, path) in [
        ("shadow", "/etc/shadow".to_owned()),
        ("lab", allowed_file.display().to_string()),
    ] {
        registry
            .register_yaml(&format!(
                r#"
id: {id}
product: triton
version: "1"
services:
  - id: api
    resource: {id}-api
    category: prediction-serving
    configuration:
      tls_ca_file: "{path}"
    endpoints:
      - url: https://127.0.0.1:9/
"#
            ))
            .await
            .unwrap();
    }
    let shadow = registry
        .resolve(&Selector::resource("shadow-api"), &Consumer::anywhere())
        .unwrap();
    let lab = registry
        .resolve(&Selector::resource("lab-api"), &Consumer::anywhere())
        .unwrap();
    // The library's defaults allow no directory: both are refused.
    for found in [&shadow, &lab] {
        let e = HttpTransportBuilder::for_target(&found.target(), TransportConfig::default())
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        assert_eq!(e.path(), Some("tls_ca_file"), "{e}");
    }
    // A host that allows the lab directory gets the lab CA, still not /etc/shadow.
    let e =
        HttpTransportBuilder::for_target(&shadow.target(), allowing(allowed.path())).unwrap_err();
    assert!(e.message().contains("outside the directories"), "{e}");
    HttpTransportBuilder::for_target(&lab.target(), allowing(allowed.path()))
        .unwrap()
        .build()
        .unwrap();
}
