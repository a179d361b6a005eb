//! Calls a KServe model through an ingress, as a host application does:
//! register a record, resolve it, connect through the KServe factory, infer.
//!
//! ```sh
//! # a KServe model server (or an ingress in front of one) at $KSERVE_URL:
//! KSERVE_URL=http://127.0.0.1:8080 cargo run -p inferlink-kserve --example kserve_infer
//! # through an ingress that routes doubler.models.example.com:
//! KSERVE_URL=http://ingress:80 KSERVE_ISVC=doubler KSERVE_NAMESPACE=models \
//!     cargo run -p inferlink-kserve --example kserve_infer
//! ```
//!
//! The record it registers is `kserve_infer.yaml` beside this file, with
//! `{url}`-style placeholders filled from these variables.
//!
//! Optional: `KSERVE_PROTOCOL` (`v1`, `v2`, `v2-grpc`, `auto`), `KSERVE_MODEL`
//! (default `doubler`), `KSERVE_INPUT` (default `input-0`).

use inferlink::{InferenceConnectorExt, ModelRef, Tensor};
use inferlink_testkit::example::connect_example;

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> inferlink::Result<()> {
    let isvc = env("KSERVE_ISVC", "");
    let namespace = if isvc.is_empty() {
        String::new()
    } else {
        env("KSERVE_NAMESPACE", "default")
    };
    let values = [
        ("url", env("KSERVE_URL", "http://127.0.0.1:8080")),
        ("protocol", env("KSERVE_PROTOCOL", "auto")),
        ("isvc", isvc),
        ("namespace", namespace),
    ];
    let connector = connect_example(
        include_str!("kserve_infer.yaml"),
        &values,
        inferlink_kserve::factory(),
    )
    .await?;

    let model = ModelRef::new(env("KSERVE_MODEL", "doubler"));
    let rows = vec![vec![1.0f32, 2.0, 3.0], vec![4.0, 5.0, 6.0]];
    let input = Tensor::from_rows(env("KSERVE_INPUT", "input-0"), &rows)?;
    let output = connector.infer_one(&model, input).await?;
    println!(
        "{} {:?}: {:?}",
        output.name(),
        output.shape(),
        output.to_f32_rows()?
    );
    Ok(())
}
