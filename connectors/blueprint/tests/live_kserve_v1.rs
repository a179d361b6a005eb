//! The shipped `kserve-v1` blueprint (`POST /v1/models/<m>:predict`,
//! instances in, predictions out) against the real-server harness's KServe
//! python model server 0.21.0 on 127.0.0.1: its `doubler` and `identity`
//! models answer V1 requests with `2 * x` and `x`. A missing venv skips
//! with a visible line, or fails under `INFERLINK_REQUIRE_LIVE=1`.

use inferlink::{Connectors, ErrorKind, InferRequest, ModelRef, Tensor};
use inferlink_testkit::live::{TestRecord, shared_server};
use inferlink_testkit::servers::ServerKind;

#[tokio::test]
async fn kserve_v1_through_the_blueprint() {
    let Some(server) = shared_server(ServerKind::KServe).await else {
        return;
    };
    let record = TestRecord::new("kserve-bp-0001", "http", "0.21.0", "kserve-v1")
        .setting("blueprint", "kserve-v1")
        .setting("retry_max_attempts", "1")
        .endpoint(&server.http_url());
    let connector = record
        .connect(Connectors::new().with(inferlink_blueprint::factory()))
        .await;
    assert!(connector.capabilities().infer && !connector.capabilities().embed);
    let rows = Tensor::new("x", vec![2, 3], vec![1.5f32, -2.0, 3.0, 4.0, 0.0, 6.25]).unwrap();
    let answer = connector
        .infer(&ModelRef::new("doubler"), InferRequest::from(rows.clone()))
        .await
        .unwrap();
    let out = answer.into_output("predictions").unwrap();
    assert_eq!(out.shape(), &[2, 3]);
    assert_eq!(
        out.to_f64_lossy().unwrap(),
        vec![3.0, -4.0, 6.0, 8.0, 0.0, 12.5]
    );
    let ints = Tensor::new("x", vec![3], vec![7i64, -1, 0]).unwrap();
    let same = connector
        .infer(&ModelRef::new("identity"), InferRequest::from(ints))
        .await
        .unwrap();
    let out = same.into_output("predictions").unwrap();
    assert_eq!(
        (out.shape(), out.to_f64_lossy().unwrap()),
        (&[3usize][..], vec![7.0, -1.0, 0.0])
    );
    // A model the server does not have: its 404, typed, naming the model.
    let e = connector
        .infer(
            &ModelRef::new("no-such-model"),
            InferRequest::from(rows.clone()),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert_eq!(e.model(), Some("no-such-model"));
    // A name that would leave its path segment stays inside it (and is unknown).
    let e = connector
        .infer(
            &ModelRef::new("doubler:predict?x=1"),
            InferRequest::from(rows),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
}
