//! What the live tests of the tensor blueprints share.

use std::sync::Arc;

use inferlink::{Connectors, ErrorKind, InferRequest, InferResponse, InferenceConnector};
use inferlink::{ModelRef, Tensor};
use inferlink_testkit::live::{TestRecord, shared_server};
use inferlink_testkit::servers::ServerKind;

/// A connector for the shared server of `kind` through the shipped
/// `blueprint`, from a registered record (product `http`) of server
/// `version`; `None` when the server's venv is missing (the harness prints
/// why, or fails under `INFERLINK_REQUIRE_LIVE=1`).
pub async fn through_blueprint(
    kind: ServerKind,
    blueprint: &str,
    version: &str,
) -> Option<Arc<dyn InferenceConnector>> {
    let server = shared_server(kind).await?;
    let id = format!("{blueprint}-bp-0001");
    let record = TestRecord::new(&id, "http", version, blueprint)
        .setting("blueprint", blueprint)
        .setting("retry_max_attempts", "1")
        .endpoint(&server.http_url());
    let factories = Connectors::new().with(inferlink_blueprint::factory());
    let connector = record.connect(factories).await;
    assert!(connector.capabilities().infer && !connector.capabilities().embed);
    Some(connector)
}

/// The shape and the elements (as `f64`) of an answer's `predictions`.
pub fn predictions(answer: InferResponse) -> (Vec<usize>, Vec<f64>) {
    let out = answer.into_output("predictions").unwrap();
    (out.shape().to_vec(), out.to_f64_lossy().unwrap())
}

/// A model the server does not have is its 404, typed and naming the
/// model; so is a name that would leave its path segment (`escape`), which
/// stays inside it.
pub async fn unknown_models_are_not_found(
    connector: &Arc<dyn InferenceConnector>,
    input: &Tensor,
    escape: &str,
) {
    for name in ["no-such-model", escape] {
        let e = connector
            .infer(&ModelRef::new(name), InferRequest::from(input.clone()))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{name}: {e}");
        assert_eq!(e.model(), Some(name));
    }
}
