//! The transport's tracing output: spans carry vendor, endpoint, model and
//! attempt, and never a secret. Its own test binary, so the subscriber it
//! installs sees every callsite.
#![cfg(feature = "http")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use inferlink::transport::{HttpTransport, RequestSpec, TransportConfig};
use inferlink_testkit::fault::{Fault, FaultServer};

/// A tracing writer that keeps everything written.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn spans_name_the_call_and_never_carry_secrets() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let server = FaultServer::start([Fault::status(503), Fault::status(401)])
        .await
        .unwrap();
    let mut config = TransportConfig::from_pairs([
        ("auth_bearer_token", "tok-planted-1"),
        ("header_X-Api-Key", "also-not-secret"),
    ])
    .unwrap();
    config.retry.backoff_base = Duration::from_millis(5);
    config.retry.backoff_max = Duration::from_millis(10);
    let transport = HttpTransport::builder(server.url())
        .vendor("fault")
        .config(config)
        .build()
        .unwrap();
    let error = transport
        .send(
            RequestSpec::post("v2/models/m/infer", "{}")
                .model("m")
                .idempotent(),
        )
        .await
        .unwrap_err();
    assert_eq!(error.context("attempts"), Some("2"));
    assert_eq!(server.requests(), 2);

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("inferlink.http{"), "{logs}");
    assert!(logs.contains("vendor=fault"), "{logs}");
    assert!(logs.contains("model=m"), "{logs}");
    assert!(logs.contains("inferlink.attempt{attempt=2"), "{logs}");
    assert!(logs.contains("retrying"), "{logs}");
    assert!(
        !logs.contains("tok-planted"),
        "a secret reached the logs: {logs}"
    );
}
