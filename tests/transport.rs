//! The shared HTTP transport against the testkit fault server and a local
//! rustls server: retries, deadlines, error mapping, limits, gzip, headers,
//! auth, endpoint policy and TLS. Everything runs on 127.0.0.1; every wait is
//! bounded by the transport's deadline or the fault server's own limits.
#![cfg(feature = "http")]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use inferlink::transport::{
    ErrorClass, ErrorResponse, HeaderValue, HttpTransport, Method, RequestSigner, RequestSpec,
    SigningRequest, TransportConfig,
};
use inferlink::{Consumer, ErrorKind, MemoryStore, Registry, Selector};
use inferlink_testkit::fault::{Fault, FaultOptions, FaultServer, envelope};

/// Settings that keep every test short: small backoff, a few seconds of deadline.
fn quick() -> TransportConfig {
    let mut c = TransportConfig::default();
    c.retry.max_attempts = 5;
    c.retry.backoff_base = Duration::from_millis(5);
    c.retry.backoff_max = Duration::from_millis(20);
    c.timeout_connect = Duration::from_secs(2);
    c.timeout_request = Duration::from_secs(3);
    c.deadline = Duration::from_secs(5);
    c
}

fn transport(server: &FaultServer, config: TransportConfig) -> HttpTransport {
    HttpTransport::builder(server.url())
        .vendor("fault")
        .config(config)
        .build()
        .expect("transport builds")
}

async fn server(script: impl IntoIterator<Item = Fault>) -> FaultServer {
    FaultServer::start(script)
        .await
        .expect("fault server starts")
}

// ---------------------------------------------------------------- retries

#[tokio::test]
async fn status_503_twice_then_success_takes_three_attempts() {
    let s = server([Fault::status(503), Fault::status(503)]).await;
    let r = transport(&s, quick())
        .send(RequestSpec::get("v2/health/ready"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.attempts(), 3);
    assert_eq!(s.requests(), 3);
}

#[tokio::test]
async fn unsafe_post_is_retried_after_429_and_503_rejections() {
    let s = server([Fault::status(429), Fault::status(503)]).await;
    let r = transport(&s, quick())
        .send(RequestSpec::post("v2/models/m/infer", "{}"))
        .await
        .unwrap();
    assert_eq!(r.attempts(), 3);
    assert_eq!(s.requests(), 3);
}

#[tokio::test]
async fn unsafe_post_is_not_retried_after_502_but_get_is() {
    let s = server([Fault::status(502)]).await;
    let e = transport(&s, quick())
        .send(RequestSpec::post("infer", "{}"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(s.requests(), 1);

    let s = server([Fault::status(502), Fault::status(504)]).await;
    let r = transport(&s, quick())
        .send(RequestSpec::get("meta"))
        .await
        .unwrap();
    assert_eq!(r.attempts(), 3);
    // An inference marked idempotent is retried like a GET.
    let s = server([Fault::status(502)]).await;
    let r = transport(&s, quick())
        .send(RequestSpec::post("infer", "{}").idempotent())
        .await
        .unwrap();
    assert_eq!(r.attempts(), 2);
}

#[tokio::test]
async fn post_reset_after_the_request_was_read_is_not_retried() {
    let s = server([Fault::ResetAfterRead]).await;
    let e = transport(&s, quick())
        .send(RequestSpec::post("v2/models/m/infer", "{}").model("m"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(s.requests(), 1);
    assert_eq!(e.context("attempts"), Some("1"));
    assert_eq!(e.context("model"), Some("m"));
    assert_eq!(e.context("vendor"), Some("fault"));
}

#[tokio::test]
async fn post_reset_before_the_request_was_read_is_indistinguishable_and_not_retried() {
    // Over HTTP/1.1 the client has already written the request when the
    // reset arrives, so it cannot prove the server did not read it.
    let s = server([Fault::ResetBeforeRead]).await;
    let e = transport(&s, quick())
        .send(RequestSpec::post("infer", "{}"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(s.requests(), 1);
}

#[tokio::test]
async fn get_is_retried_after_resets() {
    let s = server([Fault::ResetBeforeRead, Fault::ResetAfterRead]).await;
    let r = transport(&s, quick())
        .send(RequestSpec::get("x"))
        .await
        .unwrap();
    assert_eq!(r.attempts(), 3);
    assert_eq!(s.requests(), 3);
}

#[tokio::test]
async fn post_that_never_reached_the_server_is_retried() {
    // The port refuses connections (TCP RST to the SYN) for 800 ms: the
    // first attempts provably sent nothing, so even a POST is retried.
    let s = FaultServer::start_with(
        [],
        FaultOptions {
            refuse_for: Duration::from_millis(800),
            ..FaultOptions::default()
        },
    )
    .await
    .unwrap();
    let mut c = quick();
    c.retry.max_attempts = 100;
    c.retry.backoff_base = Duration::from_millis(50);
    c.retry.backoff_max = Duration::from_millis(100);
    let r = transport(&s, c)
        .send(RequestSpec::post("infer", "{}"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.attempts() >= 2, "attempts: {}", r.attempts());
    assert_eq!(s.requests(), 1, "only the last attempt reached the server");
}

#[tokio::test]
async fn refused_connections_use_up_the_attempts_and_say_so() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut c = quick();
    c.retry.max_attempts = 3;
    let t = HttpTransport::builder(format!("http://127.0.0.1:{port}/"))
        .config(c)
        .build()
        .unwrap();
    let e = t.send(RequestSpec::post("infer", "{}")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(e.context("attempts"), Some("3"));
    assert!(e.message().contains("cannot connect"), "{e}");
}

#[tokio::test]
async fn retry_after_seconds_is_honoured() {
    let s = server([Fault::retry_after(429, 1)]).await;
    let started = Instant::now();
    let r = transport(&s, quick())
        .send(RequestSpec::get("x"))
        .await
        .unwrap();
    assert_eq!(r.attempts(), 2);
    assert_eq!(s.requests(), 2);
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[tokio::test]
async fn retry_after_http_date_is_honoured() {
    let when = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(3));
    let s = server([Fault::status(503).header("Retry-After", &when)]).await;
    let started = Instant::now();
    let r = transport(&s, quick())
        .send(RequestSpec::get("x"))
        .await
        .unwrap();
    assert_eq!(r.attempts(), 2);
    // The date has one-second resolution: at least 2 s of the 3 remain.
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[tokio::test]
async fn retry_after_past_the_deadline_is_a_timeout_without_waiting() {
    let s = server([Fault::retry_after(429, 30)]).await;
    let mut c = quick();
    c.deadline = Duration::from_millis(500);
    let e = transport(&s, c)
        .send(RequestSpec::get("x"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert!(e.message().contains("retry after 30000 ms"), "{e}");
    assert!(
        e.message().contains("slow down"),
        "the last error is kept: {e}"
    );
    assert_eq!(s.requests(), 1);
}

// ---------------------------------------------------------------- time limits

#[tokio::test]
async fn a_stalled_server_gives_a_timeout_within_the_deadline() {
    let s = server([Fault::Stall {
        max: Duration::from_secs(10),
    }])
    .await;
    let mut c = quick();
    c.deadline = Duration::from_millis(300);
    let e = transport(&s, c)
        .send(RequestSpec::get("x"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert!(e.message().contains("deadline of 300 ms"), "{e}");
    assert_eq!(s.requests(), 1);
}

#[tokio::test]
async fn a_stalled_attempt_is_retried_only_when_safe() {
    let stall = || Fault::Stall {
        max: Duration::from_secs(10),
    };
    let mut c = quick();
    c.timeout_request = Duration::from_millis(200);
    let s = server([stall()]).await;
    let r = transport(&s, c.clone())
        .send(RequestSpec::get("x"))
        .await
        .unwrap();
    assert_eq!(r.attempts(), 2);

    let s = server([stall()]).await;
    let e = transport(&s, c)
        .send(RequestSpec::post("infer", "{}"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert_eq!(s.requests(), 1);
}

#[tokio::test]
async fn slow_drip_arrives_whole_or_times_out() {
    let body: Vec<u8> = (0..20u8).collect();
    let s = server([Fault::SlowDrip {
        body: body.clone(),
        chunk: 4,
        interval: Duration::from_millis(10),
    }])
    .await;
    let r = transport(&s, quick())
        .send(RequestSpec::get("x"))
        .await
        .unwrap();
    assert_eq!(r.body().as_ref(), body.as_slice());

    let s = server([Fault::SlowDrip {
        body,
        chunk: 1,
        interval: Duration::from_millis(100),
    }])
    .await;
    let mut c = quick();
    c.timeout_request = Duration::from_millis(300);
    let e = transport(&s, c)
        .send(RequestSpec::post("infer", "{}"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert_eq!(s.requests(), 1);
}

// ---------------------------------------------------------------- streaming

/// Reads a streamed body to its end: the bytes, and the error that ended it.
async fn drain(
    stream: inferlink::transport::HttpStream,
) -> (Vec<u8>, usize, Option<inferlink::Error>) {
    use futures_util::StreamExt as _;
    let mut body = stream.into_body();
    let (mut bytes, mut chunks) = (Vec::new(), 0);
    while let Some(item) = body.next().await {
        match item {
            Ok(chunk) => {
                chunks += 1;
                bytes.extend_from_slice(&chunk);
            }
            Err(e) => {
                assert!(
                    body.next().await.is_none(),
                    "the stream ends after an error"
                );
                return (bytes, chunks, Some(e));
            }
        }
    }
    (bytes, chunks, None)
}

#[tokio::test]
async fn a_stream_may_outlive_the_attempt_timeout_while_chunks_keep_coming() {
    let body: Vec<u8> = (0..8u8).collect();
    let drip = || Fault::SlowDrip {
        body: body.clone(),
        chunk: 1,
        interval: Duration::from_millis(100),
    };
    let mut c = quick();
    c.timeout_request = Duration::from_millis(300);
    // The whole body takes ~800 ms: too long for one attempt of `send`...
    let s = server([drip()]).await;
    let e = transport(&s, c.clone())
        .send(RequestSpec::get("x").max_attempts(1))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    // ...but each chunk comes within 300 ms of the last, so the stream is whole.
    let s = server([drip()]).await;
    let stream = transport(&s, c)
        .send_streaming(RequestSpec::get("x"))
        .await
        .unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    assert_eq!(stream.content_type(), Some("application/octet-stream"));
    let (bytes, chunks, error) = drain(stream).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(bytes, body);
    assert!(chunks > 1, "the body arrived in {chunks} chunk(s)");
}

#[tokio::test]
async fn a_silent_stream_ends_with_a_timeout_item() {
    let s = server([Fault::SlowDrip {
        body: vec![7; 4],
        chunk: 2,
        interval: Duration::from_millis(1500),
    }])
    .await;
    let mut c = quick();
    c.timeout_request = Duration::from_millis(300);
    let stream = transport(&s, c)
        .send_streaming(RequestSpec::get("x").model("m"))
        .await
        .unwrap();
    let (bytes, _, error) = drain(stream).await;
    assert_eq!(
        bytes,
        vec![7, 7],
        "the first chunk arrives before the silence"
    );
    let e = error.expect("a timeout ends the stream");
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert!(e.message().contains("300 ms"), "{e}");
    assert_eq!(e.model(), Some("m"));
    assert_eq!(e.vendor(), Some("fault"));
}

#[tokio::test]
async fn a_stream_is_retried_before_its_head_and_maps_error_statuses() {
    let s = server([
        Fault::status(503),
        Fault::status(503),
        Fault::text(200, "data: one\n\n"),
    ])
    .await;
    let stream = transport(&s, quick())
        .send_streaming(RequestSpec::post("generate_stream", "{}").idempotent())
        .await
        .unwrap();
    assert_eq!(stream.attempts(), 3);
    let (bytes, _, error) = drain(stream).await;
    assert!(error.is_none());
    assert_eq!(bytes, b"data: one\n\n");

    let s = server([envelope::kserve_not_found()]).await;
    let e = transport(&s, quick())
        .send_streaming(RequestSpec::post("generate_stream", "{}"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn a_truncated_stream_ends_with_an_unavailable_error() {
    let s = server([Fault::Truncated {
        declared: 100,
        sent: vec![1; 10],
    }])
    .await;
    let stream = transport(&s, quick())
        .send_streaming(RequestSpec::get("x"))
        .await
        .unwrap();
    let (bytes, _, error) = drain(stream).await;
    assert_eq!(bytes.len(), 10);
    assert_eq!(
        error.expect("truncation is an error").kind(),
        ErrorKind::Unavailable
    );
}

// ---------------------------------------------------------------- bodies

#[tokio::test]
async fn a_body_cut_short_is_unavailable_and_retried_only_when_safe() {
    // The connection ends before the declared length (a server killed
    // mid-answer), cleanly or with a reset: a connection failure. A POST
    // is not sent again; a GET is retried and answered.
    type MakeFault = fn() -> Fault;
    let cases: [(&str, MakeFault, &str); 2] = [
        (
            "truncated",
            || Fault::Truncated {
                declared: 100,
                sent: b"{\"outputs\":".to_vec(),
            },
            "truncated",
        ),
        (
            "reset mid-body",
            || Fault::ResetMidBody {
                status: 200,
                declared: 1000,
                sent: vec![b'a'; 10],
            },
            "reset",
        ),
    ];
    for (case, fault, words) in cases {
        let s = server([fault()]).await;
        let e = transport(&s, quick())
            .send(RequestSpec::post("infer", "{}"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{case}: {e}");
        assert!(e.message().contains(words), "{case}: {e}");
        assert_eq!(
            s.requests(),
            1,
            "{case}: an unsafe request is not sent again"
        );

        let s = server([fault()]).await;
        let r = transport(&s, quick())
            .send(RequestSpec::get("x"))
            .await
            .unwrap();
        assert_eq!(r.attempts(), 2, "{case}");
        assert_eq!(s.requests(), 2, "{case}");
    }
}

#[tokio::test]
async fn malformed_json_is_a_protocol_error_naming_where() {
    let s = server([
        Fault::malformed_json(),
        Fault::json(200, r#"{"outputs":[{"name":"y","data":"x"}]}"#),
    ])
    .await;
    let t = transport(&s, quick());
    let r = t.send(RequestSpec::get("x").model("m")).await.unwrap();
    let e = r.json::<serde_json::Value>().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol);
    assert!(e.message().contains("line 1 column"), "{e}");
    assert_eq!(e.context("model"), Some("m"));

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Out {
        name: String,
        data: Vec<f32>,
    }
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Reply {
        outputs: Vec<Out>,
    }
    let r = t.send(RequestSpec::get("x")).await.unwrap();
    let e = r.json::<Reply>().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol);
    assert_eq!(e.path(), Some("outputs[0].data"));
}

#[tokio::test]
async fn oversized_bodies_are_refused_while_reading() {
    let mut c = quick();
    c.response_max_bytes = 1024;
    for fault in [
        Fault::oversized(64 * 1024),
        Fault::oversized(64 * 1024).chunked(),
    ] {
        let s = server([fault]).await;
        let e = transport(&s, c.clone())
            .send(RequestSpec::get("x"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
        assert!(e.message().contains("response_max_bytes"), "{e}");
        assert_eq!(s.requests(), 1, "a size error is not retried");
    }
    let s = server([Fault::oversized(1024)]).await;
    let r = transport(&s, c).send(RequestSpec::get("x")).await.unwrap();
    assert_eq!(r.body().len(), 1024);
}

#[tokio::test]
async fn gzip_bodies_are_decoded_when_on() {
    let json = r#"{"outputs":[1,2,3]}"#;
    let s = server([Fault::gzip_json(json)]).await;
    let r = transport(&s, quick())
        .send(RequestSpec::get("x"))
        .await
        .unwrap();
    assert_eq!(r.text().unwrap(), json);
    let sent = s.recorded();
    assert!(
        sent[0]
            .header("accept-encoding")
            .unwrap_or("")
            .contains("gzip")
    );

    let mut c = quick();
    c.gzip = false;
    let s = server([Fault::gzip_json(json)]).await;
    let r = transport(&s, c).send(RequestSpec::get("x")).await.unwrap();
    assert_eq!(
        &r.body()[..2],
        &[0x1f, 0x8b],
        "left encoded when gzip is off"
    );
    assert!(
        !s.recorded()[0]
            .header("accept-encoding")
            .unwrap_or("")
            .contains("gzip")
    );
}

#[tokio::test]
async fn any_status_returns_the_response_without_retrying() {
    let s = server([Fault::json(503, r#"{"ready":false}"#)]).await;
    let r = transport(&s, quick())
        .send(RequestSpec::get("v2/health/ready").any_status())
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(s.requests(), 1);
}

// ---------------------------------------------------------------- error envelopes

#[tokio::test]
async fn every_vendor_envelope_maps_to_its_kind_and_keeps_the_message() {
    let cases = [
        (
            envelope::kserve_not_found(),
            ErrorKind::NotFound,
            "Model with name nope does not exist.",
            None,
        ),
        (
            envelope::triton_text_plain(),
            ErrorKind::InvalidInput,
            "unexpected inference input 'WRONG'",
            None,
        ),
        (
            envelope::fastapi_invalid(),
            ErrorKind::InvalidInput,
            "body.11: JSON decode error",
            Some("json_invalid"),
        ),
        (
            envelope::mlserver_internal(),
            ErrorKind::ModelError,
            "Internal Server Error",
            None,
        ),
        (
            envelope::torchserve_not_found(),
            ErrorKind::NotFound,
            "Model not found: nope",
            Some("ModelNotFoundException"),
        ),
        (
            envelope::torchserve_invalid_key(),
            ErrorKind::InvalidInput,
            "Token Authorization failed",
            Some("InvalidKeyException"),
        ),
        (
            envelope::seldon_internal(),
            ErrorKind::ModelError,
            "cannot reshape array",
            Some("MICROSERVICE_INTERNAL_ERROR"),
        ),
        (
            envelope::moto_signature(),
            ErrorKind::PermissionDenied,
            "The request signature we calculated",
            Some("SignatureDoesNotMatch"),
        ),
        (
            envelope::mlflow_bad_request(),
            ErrorKind::InvalidInput,
            "must be a JSON dictionary",
            Some("BAD_REQUEST"),
        ),
        (
            envelope::sagemaker_throttling(),
            ErrorKind::InvalidInput,
            "Rate exceeded",
            Some("ThrottlingException"),
        ),
    ];
    for (fault, kind, text, code) in cases {
        let s = server([fault]).await;
        let e = transport(&s, quick())
            .send(RequestSpec::post("v2/models/nope/infer", "{}").model("nope"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), kind, "{e}");
        assert!(e.message().contains(text), "{e}");
        assert_eq!(e.context("vendor_code"), code, "{e}");
        assert_eq!(e.context("model"), Some("nope"));
        assert_eq!(e.context("attempts"), Some("1"));
        assert!(
            e.context("endpoint")
                .unwrap()
                .ends_with("/v2/models/nope/infer")
        );
        assert!(!e.is_retryable(), "{e}");
        assert_eq!(s.requests(), 1);
    }
}

#[tokio::test]
async fn a_classifier_turns_vendor_throttling_into_a_retry() {
    let classifier = |r: &ErrorResponse<'_>| match r.vendor.and_then(|v| v.code.as_deref()) {
        Some("ThrottlingException") => Some(ErrorClass::rejected(ErrorKind::RateLimited)),
        Some("InvalidKeyException") => Some(ErrorClass::fatal(ErrorKind::Unauthenticated)),
        _ => None,
    };
    let s = server([
        envelope::sagemaker_throttling(),
        envelope::torchserve_invalid_key(),
    ])
    .await;
    let t = HttpTransport::builder(s.url())
        .config(quick())
        .classifier(Arc::new(classifier))
        .build()
        .unwrap();
    let e = t
        .send(RequestSpec::post("invocations", "{}"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    assert_eq!(e.context("attempts"), Some("2"));
    assert_eq!(s.requests(), 2);
}

// ---------------------------------------------------------------- headers and auth

#[tokio::test]
async fn header_values_with_line_breaks_fail_before_sending() {
    let s = server([]).await;
    let t = transport(&s, quick());
    for (name, value) in [
        ("X-Trace", "a\r\nX-Evil: 1"),
        ("X-Trace", "a\nb"),
        ("X-Nul", "a\0b"),
        ("Bad Name", "v"),
    ] {
        let e = t
            .send(RequestSpec::get("x").header(name, value))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(e.message().contains(name), "{e}");
        assert!(!e.to_string().contains("Evil"), "{e}");
    }
    assert_eq!(s.requests(), 0);
}

#[tokio::test]
async fn path_segments_are_encoded_and_escapes_refused() {
    let s = server([]).await;
    let t = transport(&s, quick());
    t.send(RequestSpec::segments(
        Method::GET,
        &["v2", "models", "my model/1", "ready"],
    ))
    .await
    .unwrap();
    assert_eq!(s.recorded()[0].target, "/v2/models/my%20model%2F1/ready");
    let e = t
        .send(RequestSpec::segments(Method::GET, &["v2", ".."]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = t.send(RequestSpec::get("a/../../b")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(s.requests(), 1);
}

#[tokio::test]
async fn auth_headers_are_sent_and_never_shown() {
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: [Case<'_>; 3] = [
        (
            &[("auth_bearer_token", "tok-planted-1")],
            "authorization",
            "Bearer tok-planted-1",
        ),
        (
            &[
                ("auth_basic_username", "user"),
                ("auth_basic_password", "pw-planted-2"),
            ],
            "authorization",
            "Basic dXNlcjpwdy1wbGFudGVkLTI=",
        ),
        (
            &[
                ("auth_header_name", "X-Api-Key"),
                ("auth_header_value", "key-planted-3"),
            ],
            "x-api-key",
            "key-planted-3",
        ),
    ];
    for (pairs, header, expected) in cases {
        let s = server([Fault::status(503)]).await;
        let mut pairs = pairs.to_vec();
        pairs.extend([
            ("retry_backoff_base_ms", "5"),
            ("retry_backoff_max_ms", "10"),
            ("header_X-Tenant", "alpha"),
        ]);
        let config = TransportConfig::from_pairs(pairs).unwrap();
        let t = transport(&s, config);
        t.send(RequestSpec::get("x")).await.unwrap();
        for sent in s.recorded() {
            assert_eq!(sent.header(header), Some(expected));
            assert_eq!(sent.header("x-tenant"), Some("alpha"));
            assert!(sent.header("user-agent").unwrap().starts_with("inferlink/"));
        }
        let shown = format!("{t:?}");
        assert!(!shown.contains("planted"), "{shown}");
    }
}

#[derive(Debug, Default)]
struct CountingSigner(AtomicU32);

#[async_trait::async_trait]
impl RequestSigner for CountingSigner {
    async fn sign(&self, request: &mut SigningRequest<'_>) -> inferlink::Result<()> {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        let value = format!(
            "n={n};len={};path={}",
            request.body.len(),
            request.url.path()
        );
        request
            .headers
            .insert("x-signature", HeaderValue::from_str(&value).unwrap());
        Ok(())
    }
}

#[tokio::test]
async fn the_signer_signs_every_attempt() {
    let s = server([Fault::status(503)]).await;
    let signer = Arc::new(CountingSigner::default());
    let t = HttpTransport::builder(s.url())
        .config(quick())
        .signer(signer.clone())
        .build()
        .unwrap();
    t.send(RequestSpec::post("endpoints/e/invocations", "12345"))
        .await
        .unwrap();
    assert_eq!(signer.0.load(Ordering::SeqCst), 2);
    let sent = s.recorded();
    assert_eq!(
        sent[0].header("x-signature"),
        Some("n=1;len=5;path=/endpoints/e/invocations")
    );
    assert_eq!(
        sent[1].header("x-signature"),
        Some("n=2;len=5;path=/endpoints/e/invocations")
    );
    assert_eq!(sent[1].body, b"12345");

    // A body in parts is signed whole and sent whole.
    t.send(
        RequestSpec::post("endpoints/e/invocations", "").body_parts([
            bytes::Bytes::from_static(b"{\"a\":1}"),
            bytes::Bytes::from_static(b"tail"),
        ]),
    )
    .await
    .unwrap();
    let last = s.recorded().pop().unwrap();
    assert_eq!(
        last.header("x-signature"),
        Some("n=3;len=11;path=/endpoints/e/invocations")
    );
    assert_eq!(last.body, b"{\"a\":1}tail");
}

#[tokio::test]
async fn a_body_in_parts_arrives_whole_with_its_exact_length_and_is_retried_whole() {
    let big = bytes::Bytes::from(vec![0xA5u8; 300_000]);
    let parts = [
        bytes::Bytes::from_static(b"{\"inputs\":[]}"),
        bytes::Bytes::new(),
        big.clone(),
        bytes::Bytes::from_static(b"end"),
    ];
    let s = server([Fault::status(503)]).await;
    let spec = RequestSpec::post("infer", "").body_parts(parts.clone());
    assert_eq!(spec.body_len(), 13 + 300_000 + 3);
    assert_eq!(spec.body_bytes().len(), spec.body_len());
    transport(&s, quick()).send(spec).await.unwrap();
    let sent = s.recorded();
    assert_eq!(sent.len(), 2, "the 503 is retried");
    for request in &sent {
        assert_eq!(request.header("content-length"), Some("300016"));
        assert_eq!(request.header("transfer-encoding"), None);
        assert_eq!(&request.body[..13], b"{\"inputs\":[]}");
        assert_eq!(&request.body[13..300_013], big.as_ref());
        assert_eq!(&request.body[300_013..], b"end");
    }
}

// ---------------------------------------------------------------- endpoint policy

#[tokio::test]
async fn the_endpoint_policy_denies_before_connecting_and_allows_loopback() {
    use inferlink::transport::EndpointPolicy;
    let s = server([]).await;

    let mut c = quick();
    c.endpoint_policy = Some(EndpointPolicy::new().allow_network("10.0.0.0/8").unwrap());
    let e = HttpTransport::builder(s.url())
        .config(c.clone())
        .build()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);

    // A host name is resolved and only allowed addresses are used.
    let by_name = format!("http://localhost:{}/", s.addr().port());
    let t = HttpTransport::builder(&by_name).config(c).build().unwrap();
    let e = t.send(RequestSpec::post("infer", "{}")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert_eq!(e.context("attempts"), Some("1"));
    assert_eq!(s.connections(), 0, "nothing connected");

    let mut c = quick();
    c.endpoint_policy = Some(EndpointPolicy::new().allow_network("127.0.0.1/8").unwrap());
    let t = HttpTransport::builder(s.url())
        .config(c.clone())
        .build()
        .unwrap();
    t.send(RequestSpec::get("x")).await.unwrap();
    let t = HttpTransport::builder(&by_name).config(c).build().unwrap();
    t.send(RequestSpec::get("x")).await.unwrap();
    assert_eq!(s.requests(), 2);
}

// ---------------------------------------------------------------- resolution

#[tokio::test]
async fn a_transport_from_a_resolution_reads_keys_and_keeps_secrets() {
    let s = server([]).await;
    let registry = Registry::open(MemoryStore::new()).await.unwrap();
    registry
        .register_yaml(&format!(
            r#"
id: triton-local
product: triton
version: "2.50.0"
zone: lab
configuration:
  timeout_request_ms: "2000"
services:
  - id: api
    resource: triton-api
    category: prediction-serving
    endpoints:
      - url: {url}
        type: internal
        configuration:
          header_X-Tenant: alpha
    credentials:
      - id: token
        configuration:
          auth_bearer_token: tok-planted-9
"#,
            url = s.url()
        ))
        .await
        .unwrap();
    let found = registry
        .resolve(&Selector::resource("triton-api"), &Consumer::in_zone("lab"))
        .unwrap();
    let t = HttpTransport::from_target(&found.target()).unwrap();
    assert_eq!(t.vendor(), "triton");
    assert_eq!(t.config().timeout_request, Duration::from_secs(2));
    assert!(!format!("{t:?}").contains("tok-planted-9"));
    t.send(RequestSpec::get("v2/health/live")).await.unwrap();
    let sent = s.recorded();
    assert_eq!(
        sent[0].header("authorization"),
        Some("Bearer tok-planted-9")
    );
    assert_eq!(sent[0].header("x-tenant"), Some("alpha"));
}

#[tokio::test]
async fn seed_seldon_placeholders_are_config_errors_that_quote_nothing() {
    let registry = Registry::open(MemoryStore::new()).await.unwrap();
    let yaml =
        std::fs::read_to_string("tests/fixtures/seed004/seldon-core-production.yaml").unwrap();
    registry.register_yaml(&yaml).await.unwrap();
    let found = registry
        .resolve(
            &Selector::resource("seldon-core-api"),
            &Consumer::anywhere().with_project("alpha"),
        )
        .unwrap();
    let e = HttpTransport::from_target(&found.target()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(
        ["CLIENT_CERT", "CLIENT_KEY", "CLUSTER_CERT_AUTH"].contains(&e.path().unwrap()),
        "{e}"
    );
    assert!(!e.to_string().contains("LS0t"), "{e}");
}

// ---------------------------------------------------------------- TLS

struct Pki {
    ca_pem: String,
    server_cert_pem: String,
    server_key_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
}

fn pki() -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "inferlink test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    client_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "inferlink client");
    let client = client_params.signed_by(&client_key, &ca).unwrap();
    Pki {
        ca_pem: ca.pem(),
        server_cert_pem: server.pem(),
        server_key_pem: server_key.serialize_pem(),
        client_cert_pem: client.pem(),
        client_key_pem: client_key.serialize_pem(),
    }
}

/// A loopback HTTPS server answering every request with `200 tls-ok`;
/// `client_ca` makes it require a client certificate. Stops when dropped.
struct TlsServer {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn tls_server(pki: &Pki, require_client_cert: bool) -> TlsServer {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let certs = vec![CertificateDer::from_pem_slice(pki.server_cert_pem.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(pki.server_key_pem.as_bytes()).unwrap();
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let config = if require_client_cert {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap())
            .unwrap();
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        builder
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .unwrap()
    } else {
        builder
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap()
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            conns.spawn(async move {
                let Ok(Ok(mut tls)) =
                    tokio::time::timeout(Duration::from_secs(5), acceptor.accept(stream)).await
                else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
                    match tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf)).await {
                        Ok(Ok(n)) if n > 0 => head.extend_from_slice(&buf[..n]),
                        _ => return,
                    }
                }
                let _ = tls
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\ntls-ok",
                    )
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    TlsServer { port, task }
}

#[tokio::test]
async fn tls_with_a_custom_ca_and_skip_verify_only_when_opted_in() {
    let pki = pki();
    let server = tls_server(&pki, false).await;
    let url = format!("https://127.0.0.1:{}/", server.port);

    let c = TransportConfig::from_pairs([("tls_ca_pem", pki.ca_pem.as_str())]).unwrap();
    let t = HttpTransport::builder(&url).config(c).build().unwrap();
    let r = t.send(RequestSpec::get("x")).await.unwrap();
    assert_eq!(r.text().unwrap(), "tls-ok");

    // The same CA given base64-encoded, under the seed's key name.
    let b64 = base64::engine::general_purpose::STANDARD.encode(&pki.ca_pem);
    let c = TransportConfig::from_pairs([("CLUSTER_CERT_AUTH", b64.as_str())]).unwrap();
    let t = HttpTransport::builder(format!("https://localhost:{}/", server.port))
        .config(c)
        .build()
        .unwrap();
    t.send(RequestSpec::get("x")).await.unwrap();

    // Without the CA the server is not trusted, and nothing is retried.
    let t = HttpTransport::builder(&url)
        .config(quick())
        .build()
        .unwrap();
    let e = t.send(RequestSpec::get("x")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.message().contains("certificate"), "{e}");
    assert_eq!(e.context("attempts"), Some("1"));

    // Skipping verification works, but only when asked for.
    let c = TransportConfig::from_pairs([("tls_insecure_skip_verify", "true")]).unwrap();
    let t = HttpTransport::builder(&url).config(c).build().unwrap();
    assert_eq!(
        t.send(RequestSpec::get("x")).await.unwrap().text().unwrap(),
        "tls-ok"
    );
}

#[tokio::test]
async fn mutual_tls_with_a_client_certificate() {
    let pki = pki();
    let server = tls_server(&pki, true).await;
    let url = format!("https://127.0.0.1:{}/", server.port);

    // Seed 004 style: base64 PEM under CLIENT_CERT / CLIENT_KEY / CLUSTER_CERT_AUTH.
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let c = TransportConfig::from_pairs([
        ("CLUSTER_CERT_AUTH", b64(&pki.ca_pem)),
        ("CLIENT_CERT", b64(&pki.client_cert_pem)),
        ("CLIENT_KEY", b64(&pki.client_key_pem)),
    ])
    .unwrap();
    assert!(!format!("{c:?}").contains("PRIVATE KEY"));
    let t = HttpTransport::builder(&url).config(c).build().unwrap();
    assert_eq!(
        t.send(RequestSpec::get("x")).await.unwrap().text().unwrap(),
        "tls-ok"
    );

    // Without a client certificate the server refuses.
    let mut c = TransportConfig::from_pairs([("tls_ca_pem", pki.ca_pem.as_str())]).unwrap();
    c.retry.max_attempts = 2;
    let t = HttpTransport::builder(&url).config(c).build().unwrap();
    let e = t.send(RequestSpec::post("infer", "{}")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    assert!(!e.is_retryable());
    assert_eq!(
        e.context("attempts"),
        Some("1"),
        "a refused client certificate is not retried"
    );

    // A certificate without its key is a configuration error.
    let e = TransportConfig::from_pairs([("tls_client_cert_pem", pki.client_cert_pem.as_str())])
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert_eq!(e.path(), Some("tls_client_key_pem"));
}
