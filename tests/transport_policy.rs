//! Issue 14: the endpoint policy's `public-only` preset (for hosts that call
//! endpoints they do not trust) against loopback servers, over HTTP and
//! gRPC, by address and by a name that resolves to a denied address; and an
//! allow-list that admits the loopback server again.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use inferlink::ErrorKind;
use inferlink::transport::{
    EndpointPolicy, GrpcTransport, HttpTransport, Idempotency, RequestSpec, TransportConfig,
};
use inferlink_testkit::fault::FaultServer;

fn with_policy(policy: EndpointPolicy) -> TransportConfig {
    let mut c = TransportConfig::default();
    c.retry.max_attempts = 3;
    c.retry.backoff_base = Duration::from_millis(5);
    c.retry.backoff_max = Duration::from_millis(20);
    c.timeout_connect = Duration::from_secs(2);
    c.timeout_request = Duration::from_secs(3);
    c.deadline = Duration::from_secs(5);
    c.endpoint_policy = Some(policy);
    c
}

#[tokio::test]
async fn the_public_only_preset_refuses_a_loopback_http_server_by_address_and_by_name() {
    let s = FaultServer::start([]).await.unwrap();
    let c = with_policy(EndpointPolicy::public_only());

    let e = HttpTransport::builder(s.url())
        .config(c.clone())
        .build()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(!e.is_retryable());
    assert!(
        e.message().contains("127.0.0.1") && e.message().contains("loopback"),
        "the error says what and why: {e}"
    );

    // `localhost` is a name: resolved, and every address it has is loopback.
    let by_name = format!("http://localhost:{}/", s.addr().port());
    let t = HttpTransport::builder(&by_name).config(c).build().unwrap();
    let e = t.send(RequestSpec::post("infer", "{}")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(e.message().contains("resolves to no address"), "{e}");
    assert!(e.message().contains("loopback"), "{e}");
    assert_eq!(e.context("attempts"), Some("1"), "never retried: {e}");
    assert_eq!(s.connections(), 0, "nothing connected");
}

#[tokio::test]
async fn an_allow_list_admits_the_loopback_server_over_the_preset() {
    let s = FaultServer::start([]).await.unwrap();
    let policy = EndpointPolicy::from_spec("public-only, 127.0.0.1").unwrap();
    let c = with_policy(policy);
    let t = HttpTransport::builder(s.url())
        .config(c.clone())
        .build()
        .unwrap();
    t.send(RequestSpec::get("x")).await.unwrap();
    let by_name = format!("http://localhost:{}/", s.addr().port());
    let t = HttpTransport::builder(&by_name).config(c).build().unwrap();
    t.send(RequestSpec::get("x")).await.unwrap();
    assert_eq!(s.requests(), 2);

    // Only the address allowed: the rest of 127.0.0.0/8 stays denied.
    let e = HttpTransport::builder(format!("http://127.0.0.2:{}/", s.addr().port()))
        .config(with_policy(
            EndpointPolicy::from_spec("public-only, 127.0.0.1").unwrap(),
        ))
        .build()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
}

/// A TCP listener that counts the connections it accepts (and closes them):
/// enough to see whether a gRPC channel dialled it.
async fn counting_listener() -> (u16, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (port, count, task)
}

#[tokio::test]
async fn the_preset_applies_to_grpc_by_address_and_by_name() {
    let (port, connections, task) = counting_listener().await;
    let preset = with_policy(EndpointPolicy::public_only());

    let e = GrpcTransport::builder(format!("http://127.0.0.1:{port}"), preset.clone())
        .build()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(e.message().contains("loopback"), "{e}");

    // By name: the channel resolves `localhost` through the policy and dials nothing.
    let t = GrpcTransport::builder(format!("http://localhost:{port}"), preset)
        .build()
        .unwrap();
    let e = t
        .unary::<(), ()>("/test.Service/Call", (), Idempotency::Safe, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(e.message().contains("resolves to no address"), "{e}");
    assert!(!e.is_retryable(), "{e}");
    assert_eq!(connections.load(Ordering::SeqCst), 0, "nothing dialled");

    // Allowed again: the same name reaches the listener (which then hangs
    // up, so the call fails, but after connecting).
    let allowed = with_policy(EndpointPolicy::from_spec("public-only 127.0.0.1").unwrap());
    let t = GrpcTransport::builder(format!("http://localhost:{port}"), allowed)
        .build()
        .unwrap();
    let e = t
        .unary::<(), ()>("/test.Service/Call", (), Idempotency::Unsafe, None)
        .await
        .unwrap_err();
    assert_ne!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(connections.load(Ordering::SeqCst) >= 1, "dialled: {e}");
    task.abort();
}
