//! The OMI connector against chassisml 1.5.0's reference OMI server
//! (`chassis.server.omi`, the server chassis-built containers run), started
//! on loopback by the real-server harness (`scripts/servers`, kind `omi`,
//! models in `testkit/servers/omi/launch.py`):
//!
//! * `textops` (gRPC port): `text` → `upper.txt` + `length.json`; text with
//!   `fail` in it raises, which chassis reports per item (an `error` file,
//!   `success` left true);
//! * `batcher` (the harness's "HTTP" port, also OMI gRPC): JSON lists
//!   doubled, batch size 2; a bad item makes chassis drop every output.
//!
//! The connectors come from records through `Connectors::connect`, as a
//! host gets them. A missing venv skips with a visible line, or fails under
//! `INFERLINK_REQUIRE_LIVE=1` (what `scripts/test` sets).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use inferlink::{
    Connectors, DataType, ErrorKind, InferRequest, InferenceConnector, InferenceConnectorExt,
    ModelRef, RawRequest, Tensor,
};
use inferlink_omi::{Files, OmiClient, OmiConfig, RunOptions, ShutdownOutcome};
use inferlink_testkit::connector::{
    BadInput, ConformanceSpec, Expect, InvokeCase, RoundTrip, Transform, run_connector_conformance,
};
use inferlink_testkit::live::{self, TestRecord, expect_error};
use inferlink_testkit::servers::{self, RunningServer, ServerKind, StartOptions};

/// The shared OMI servers (started on first use, off the async runtime).
async fn shared() -> Option<&'static RunningServer> {
    live::shared_server(ServerKind::Omi).await
}

/// A server of our own (for tests that stop it).
async fn own(options: StartOptions) -> Option<RunningServer> {
    live::own_server(ServerKind::Omi, options).await
}

fn textops_url(server: &RunningServer) -> String {
    format!("grpc://{}", server.grpc_addr())
}

fn batcher_url(server: &RunningServer) -> String {
    format!("grpc://{}", server.http_addr())
}

/// A connector for `url` from a record, through `Connectors::connect`.
async fn connector(url: &str, product: &str) -> Arc<dyn InferenceConnector> {
    TestRecord::new("live-omi", product, "1.5.0", "omi")
        .service_id("model")
        .setting("deadline_ms", "60000")
        .endpoint(url)
        .connect(Connectors::new().with(inferlink_omi::factory()))
        .await
}

fn client(url: &str) -> OmiClient {
    OmiClient::new(OmiConfig::new(url)).unwrap()
}

fn text_item(text: &str) -> Files {
    Files::from([("text".to_owned(), Bytes::from(text.to_owned()))])
}

fn upper(input: &Tensor) -> inferlink::Result<Tensor> {
    Transform::Uppercase.apply(input)
}

#[tokio::test]
async fn conformance_against_chassis_textops() {
    let Some(server) = shared().await else { return };
    let connector = connector(&textops_url(server), "chassisml").await;
    let round_trip = RoundTrip::sample(
        "textops",
        "text",
        DataType::Bytes,
        vec![3],
        Transform::Uppercase,
    )
    .output("upper.txt");
    let failing = Tensor::from_strings("text", vec![2], ["fine", "please fail"]).unwrap();
    let spec = ConformanceSpec::new()
        // The client refuses non-file tensors before sending: OMI carries files only.
        .bad_input(round_trip.wrong_shape())
        .bad_input(round_trip.wrong_datatype())
        // The model raises on item 1: an error for that item, so the call fails.
        .bad_input(BadInput::new(
            "textops/item_fails",
            "textops",
            InferRequest::new().with_input(failing),
            Expect::fails(ErrorKind::ModelError),
        ))
        .round_trip(round_trip)
        .round_trip(
            RoundTrip::new(
                "textops",
                Tensor::from_strings("text", vec![1], ["ünïcode straße"]).unwrap(),
                Transform::custom(upper),
            )
            .output("upper.txt")
            .label("textops/unicode"),
        )
        .invoke(InvokeCase::new(
            "textops",
            {
                let mut r = RawRequest::new("abc déf", "text/plain");
                r.headers.push((
                    inferlink_omi::HEADER_OUTPUT_FILE.to_owned(),
                    "upper.txt".to_owned(),
                ));
                r
            },
            |r| {
                if r.body.as_ref() != "ABC DÉF".as_bytes() {
                    return Err(format!("body {:?}", r.body));
                }
                if r.content_type.as_deref() != Some("text/plain") {
                    return Err(format!("content type {:?}", r.content_type));
                }
                Ok(())
            },
        ));
    let report = run_connector_conformance(connector.as_ref(), &spec).await;
    eprintln!("{report}");
    report.assert_passed();
    // What OMI lacks is declared, not faked: every check above ran (auth and
    // secrets are skipped because the reference server has no authentication).
    assert!(report.check("infer/textops/BYTES/raw").is_some());
    assert!(report.check("bad_input/textops/item_fails").is_some());
}

#[tokio::test]
async fn status_is_typed_and_becomes_metadata() {
    let Some(server) = shared().await else { return };
    let c = client(&textops_url(server));
    let s = c.status().await.unwrap();
    assert_eq!(s.status_code, 200);
    assert!(s.message.starts_with("Model"), "{}", s.message);
    assert_eq!(s.model.name, "textops");
    assert_eq!(s.model.version, "1.2.0");
    assert_eq!(s.model.author, "inferlink tests");
    assert_eq!(s.model.source, "chassis");
    assert_eq!(s.inputs.len(), 1);
    assert_eq!(s.inputs[0].filename, "text");
    assert_eq!(s.inputs[0].accepted_media_types, ["text/plain"]);
    let outputs: Vec<&str> = s.outputs.iter().map(|o| o.filename.as_str()).collect();
    assert_eq!(outputs, ["upper.txt", "length.json"]);
    assert_eq!(s.resources.required_ram, "256M");
    assert_eq!(s.resources.num_cpus, 0.5);
    assert_eq!(s.timeout.status, "20s");
    assert_eq!(s.timeout.run, "30s");
    assert_eq!(s.features.batch_size, 1);
    // The second client-side call is served from the kept answer.
    assert!(Arc::ptr_eq(&s, &c.status().await.unwrap()));
    let again = c.refresh_status().await.unwrap();
    assert_eq!(again.message, "Model Already Initialized.");

    let connector = connector(&textops_url(server), "omi").await;
    let md = connector
        .model_metadata(&ModelRef::new("textops"))
        .await
        .unwrap();
    assert_eq!(md.name, "textops");
    assert_eq!(md.versions, ["1.2.0"]);
    assert_eq!(md.input("text").unwrap().datatype, DataType::Bytes);
    assert_eq!(
        md.properties.get("timeout.run").map(String::as_str),
        Some("30s")
    );
    let listed = connector.models().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "textops");
    assert!(connector.model_ready(&"textops".into()).await.unwrap());
    expect_error(
        connector
            .model_ready(&ModelRef::new("textops").with_version("9"))
            .await,
        ErrorKind::NotFound,
        "",
    );
    connector.check_serving().await.unwrap();
    // infer_checked validates against the same metadata and passes files through.
    let out = connector
        .infer_checked(
            &"textops".into(),
            InferRequest::new().with_input(Tensor::from_strings("text", vec![1], ["x"]).unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(
        out.require_output("length.json")
            .unwrap()
            .to_strings()
            .unwrap(),
        ["{\"chars\": 1}"]
    );
}

#[tokio::test]
async fn per_item_failures_are_results_not_empty_outputs() {
    let Some(server) = shared().await else { return };
    let c = client(&textops_url(server));
    let outcome = c
        .run(
            vec![text_item("one"), text_item("do fail"), text_item("three")],
            &RunOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(outcome.status_code, 200);
    assert_eq!(outcome.items.len(), 3);
    let first = outcome.items[0].as_ref().unwrap();
    assert_eq!(first["upper.txt"], Bytes::from("ONE"));
    assert_eq!(first["length.json"], Bytes::from("{\"chars\": 3}"));
    let failed = outcome.items[1].as_ref().unwrap_err();
    assert_eq!(failed.index, 1);
    assert!(
        failed.message.contains("refuses input containing 'fail'"),
        "{failed}"
    );
    // chassis leaves `success` true for a per-item exception.
    assert!(failed.success_flag);
    assert_eq!(
        outcome.items[2].as_ref().unwrap()["upper.txt"],
        Bytes::from("THREE")
    );

    let e = outcome.into_files().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ModelError);
    assert_eq!(e.context("failed_items"), Some("1"));

    // Through the trait: the same batch is one ModelError naming the item and model.
    let connector = connector(&textops_url(server), "omi").await;
    let batch = Tensor::from_strings("text", vec![3], ["one", "do fail", "three"]).unwrap();
    let e = expect_error(
        connector
            .infer(&"textops".into(), InferRequest::new().with_input(batch))
            .await,
        ErrorKind::ModelError,
        "",
    );
    assert!(!e.is_retryable());
    assert_eq!(e.context("failed_items"), Some("1"));
    assert_eq!(e.model(), Some("textops"));
    assert_eq!(e.vendor(), Some("omi"));
    assert!(e.to_string().contains("1 of 3"), "{e}");
    for (body, kind, needle) in [
        // invoke of a failing item: the model's message, as a ModelError.
        ("fail now", ErrorKind::ModelError, "refuses"),
        // invoke without naming one of two output files is refused with the names.
        ("ok", ErrorKind::InvalidInput, "length.json, upper.txt"),
    ] {
        let request = RawRequest::new(body, "text/plain");
        live::expect_error(
            connector.invoke(&"textops".into(), request).await,
            kind,
            needle,
        );
    }
}

#[tokio::test]
async fn batch_failure_is_an_output_count_mismatch() {
    let Some(server) = shared().await else { return };
    let c = client(&batcher_url(server));
    let items = |bodies: &[&str]| -> Vec<Files> {
        bodies
            .iter()
            .map(|b| Files::from([("input".to_owned(), Bytes::from(b.to_string()))]))
            .collect()
    };
    // Three items, batch size 2: the server splits them; all come back in order.
    let ok = c
        .run(
            items(&["[1,2]", "[10]", "[-3]"]),
            &RunOptions::new().idempotent(),
        )
        .await
        .unwrap()
        .into_files()
        .unwrap();
    let results: Vec<&[u8]> = ok.iter().map(|f| f["results.json"].as_ref()).collect();
    assert_eq!(
        results,
        [
            b"{\"doubled\": [2, 4]}".as_slice(),
            b"{\"doubled\": [20]}",
            b"{\"doubled\": [-6]}"
        ]
    );
    assert_eq!(c.status().await.unwrap().features.batch_size, 2);
    // One bad item: chassis' batch path answers 200 with no outputs at all.
    let e = c
        .run(items(&["[1]", "{}", "[3]"]), &RunOptions::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ModelError);
    assert_eq!(e.context("inputs"), Some("3"));
    assert_eq!(e.context("outputs"), Some("0"));
    assert!(!e.is_retryable());
    assert_eq!(e.vendor_message(), Some("Inference executed"));

    let connector = connector(&batcher_url(server), "open-model-interface").await;
    let input = Tensor::from_strings("input", vec![2], ["[5]", "[]"]).unwrap();
    let reply = connector
        .infer(&"batcher".into(), InferRequest::new().with_input(input))
        .await
        .unwrap();
    assert_eq!(reply.model_version.as_deref(), Some("0.3.1"));
    assert_eq!(
        reply
            .require_output("results.json")
            .unwrap()
            .to_strings()
            .unwrap(),
        ["{\"doubled\": [10]}", "{\"doubled\": []}"]
    );
    let e = expect_error(
        connector
            .infer(&"textops".into(), InferRequest::new())
            .await,
        ErrorKind::NotFound,
        "",
    );
    assert!(e.to_string().contains("serves \"batcher\""), "{e}");
}

#[tokio::test]
async fn concurrent_first_calls_load_the_model_once_before_running() {
    // A fresh server: nothing has called Status yet, and chassis never answers
    // a Run before it. Eight concurrent first infers all succeed.
    let Some(server) = own(StartOptions::default()).await else {
        return;
    };
    let c = client(&textops_url(&server));
    let mut tasks = Vec::new();
    for i in 0..8 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let t = Tensor::from_strings("text", vec![1], [format!("item {i}")]).unwrap();
            c.infer(&"textops".into(), InferRequest::new().with_input(t))
                .await
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        let r = t.await.unwrap().unwrap();
        assert_eq!(
            r.require_output("upper.txt").unwrap().to_strings().unwrap(),
            [format!("ITEM {i}")]
        );
    }
    // One Status call reached the textops server (the batcher logs to the
    // same file but was never called): the client shared it among the eight.
    let log = std::fs::read_to_string(server.log_path()).unwrap();
    assert_eq!(
        log.matches("Completed call to Status Route").count(),
        1,
        "{log}"
    );
    assert!(!log.contains("Model Already Initialized."), "{log}");
    drop(server);
}

#[tokio::test]
async fn shutdown_stops_the_server_and_a_restarted_one_is_reloaded() {
    let Some(first) = own(StartOptions::default()).await else {
        return;
    };
    let url = textops_url(&first);
    let admin = client(&url);
    // A second client that ran before the restart keeps its Status answer.
    let user = client(&url);
    user.run(vec![text_item("before")], &RunOptions::new())
        .await
        .unwrap()
        .into_files()
        .unwrap();

    let outcome = admin.shutdown().await.unwrap();
    match &outcome {
        ShutdownOutcome::Acknowledged {
            status_code,
            message,
        } => {
            assert_eq!(*status_code, 200);
            assert_eq!(message, "Model Shutdown Successfully.");
        }
        ShutdownOutcome::ConnectionDropped => {}
    }
    eprintln!("shutdown: {outcome:?}");
    // The textops process stops itself, and the harness's launcher then stops
    // its group; wait (bounded) until every process of it is gone.
    let mut gone = false;
    for _ in 0..300 {
        if !servers::process_group_alive(first.pgid()) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "the OMI server still runs after Shutdown");
    assert!(!servers::port_open(first.grpc_addr()));
    let e = admin.health().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable());
    // Nothing to shut down any more: an error, not a silent success.
    let e = admin.shutdown().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");

    // A new server on the same port has not loaded its model. The user client
    // still holds the old Status: its Run gets chassis' "no model" answer, so
    // it calls Status again and repeats the Run once.
    let port = first.grpc_port();
    drop(first);
    let Some(second) = own(StartOptions {
        grpc_port: Some(port),
        ..StartOptions::default()
    })
    .await
    else {
        return;
    };
    let files = user
        .run(vec![text_item("after")], &RunOptions::new())
        .await
        .unwrap()
        .into_files()
        .unwrap();
    assert_eq!(files[0]["upper.txt"], Bytes::from("AFTER"));
    drop(second);
}

#[tokio::test]
async fn factory_validates_configuration_at_connect() {
    let e = expect_error(
        TestRecord::new("bad-omi", "OMI", "1", "omi")
            .service_id("model")
            .setting("explain", "perhaps")
            .endpoint("grpc://127.0.0.1:1")
            .try_connect(Connectors::new().with(inferlink_omi::factory()))
            .await,
        ErrorKind::Config,
        "",
    );
    assert_eq!(e.path(), Some("explain"));
    assert_eq!(e.vendor(), Some("omi"));
}
