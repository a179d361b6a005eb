//! The shipped `kserve-v1` blueprint (`POST /v1/models/<m>:predict`,
//! instances in, predictions out) against the real-server harness's KServe
//! python model server 0.21.0 on 127.0.0.1: its `doubler` and `identity`
//! models answer V1 requests with `2 * x` and `x`. A missing venv skips
//! with a visible line, or fails under `INFERLINK_REQUIRE_LIVE=1`.

mod common;

use inferlink::{InferRequest, ModelRef, Tensor};
use inferlink_testkit::servers::ServerKind;

#[tokio::test]
async fn kserve_v1_through_the_blueprint() {
    let Some(connector) =
        common::through_blueprint(ServerKind::KServe, "kserve-v1", "0.21.0").await
    else {
        return;
    };
    let rows = Tensor::new("x", vec![2, 3], vec![1.5f32, -2.0, 3.0, 4.0, 0.0, 6.25]).unwrap();
    let answer = connector
        .infer(&ModelRef::new("doubler"), InferRequest::from(rows.clone()))
        .await
        .unwrap();
    assert_eq!(
        common::predictions(answer),
        (vec![2, 3], vec![3.0, -4.0, 6.0, 8.0, 0.0, 12.5])
    );
    let ints = Tensor::new("x", vec![3], vec![7i64, -1, 0]).unwrap();
    let same = connector
        .infer(&ModelRef::new("identity"), InferRequest::from(ints))
        .await
        .unwrap();
    assert_eq!(common::predictions(same), (vec![3], vec![7.0, -1.0, 0.0]));
    common::unknown_models_are_not_found(&connector, &rows, "doubler:predict?x=1").await;
}
