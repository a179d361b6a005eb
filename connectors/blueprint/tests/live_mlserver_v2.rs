//! The shipped `mlserver-v2` blueprint (`POST /v2/models/<m>/infer`, the
//! Open Inference Protocol's REST call) against the real-server harness's
//! Seldon MLServer 1.7.1 on 127.0.0.1: its `doubler` (×2 in the input's
//! own type), `identity` and `tiny-sklearn` (a real scikit-learn
//! LogisticRegression) models. A missing venv skips with a visible line, or
//! fails under `INFERLINK_REQUIRE_LIVE=1`.

mod common;

use common::predictions;
use inferlink::{InferRequest, ModelRef, Tensor};
use inferlink_testkit::servers::ServerKind;

#[tokio::test]
async fn mlserver_v2_rest_through_the_blueprint() {
    // FP32 [2, 3] through `doubler`: the shape comes back from the answer.
    let rows = Tensor::new(
        "input-0",
        vec![2, 3],
        vec![1.5f32, -2.0, 3.0, 4.0, 0.0, 6.25],
    )
    .unwrap();
    let Some(connector) =
        common::through_blueprint(ServerKind::MlServer, "mlserver-v2", "1.7.1").await
    else {
        return;
    };
    let infer = |model: &'static str, input: Tensor| {
        let connector = connector.clone();
        async move {
            let answer = connector
                .infer(&ModelRef::new(model), InferRequest::from(input))
                .await
                .unwrap();
            let (shape, elements) = predictions(answer);
            println!("{model}: shape {shape:?}, elements {elements:?}");
            (shape, elements)
        }
    };
    assert_eq!(
        infer("doubler", rows.clone()).await,
        (vec![2, 3], vec![3.0, -4.0, 6.0, 8.0, 0.0, 12.5])
    );
    // INT64 through `identity`: unchanged.
    let ints = Tensor::new("input-0", vec![3, 1], vec![7i64, -1, 0]).unwrap();
    assert_eq!(
        infer("identity", ints).await,
        (vec![3, 1], vec![7.0, -1.0, 0.0])
    );
    // A real scikit-learn model: its input is named `predict`, FP64 [n, 2].
    let points = Tensor::new("predict", vec![2, 2], vec![0.2f64, 0.1, 2.5, 2.5]).unwrap();
    assert_eq!(
        infer("tiny-sklearn", points).await,
        (vec![2, 1], vec![0.0, 1.0])
    );
    common::unknown_models_are_not_found(&connector, &rows, "doubler/infer?x=1").await;
}
