//! Calls a Seldon model through a record, as a host application does.
//!
//! ```text
//! cargo run -p inferlink-seldon --example seldon -- URL [v1|v2|v2-grpc] [MODEL]
//! ```
//!
//! For example, against the harness's servers (`scripts/servers start seldon-core`
//! or `scripts/servers start mlserver`):
//!
//! ```text
//! cargo run -p inferlink-seldon --example seldon -- http://127.0.0.1:PORT v1 doubler
//! cargo run -p inferlink-seldon --example seldon -- http://127.0.0.1:PORT v2 tiny-sklearn
//! ```
//!
//! It registers the record `seldon.yaml` (beside this file) with the URL and
//! protocol filled in, resolves `service_category:
//! prediction-serving`, connects through `inferlink_seldon::factory()`, checks
//! health and sends two rows of two FP64 features.

use inferlink::{InferRequest, ModelRef, Tensor};
use inferlink_testkit::example::connect_example;

#[tokio::main(flavor = "current_thread")]
async fn main() -> inferlink::Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(url) = args.next() else {
        eprintln!("usage: seldon URL [v1|v2|v2-grpc] [MODEL]");
        std::process::exit(2);
    };
    let protocol = args.next().unwrap_or_else(|| "v1".to_owned());
    let model = args.next().unwrap_or_else(|| "doubler".to_owned());

    let connector = connect_example(
        include_str!("seldon.yaml"),
        &[("url", url.as_str()), ("protocol", &protocol)],
        inferlink_seldon::factory(),
    )
    .await?;
    println!("health: {:?}", connector.health().await?);

    let name = if protocol == "v1" { "x" } else { "predict" };
    let x = Tensor::new(name, vec![2, 2], vec![0.2f64, 0.1, 2.5, 2.5])?;
    let reply = connector
        .infer(&ModelRef::new(model), InferRequest::new().with_input(x))
        .await?;
    for output in &reply.outputs {
        println!(
            "{} {} {:?}: {:?}",
            output.name(),
            output.datatype(),
            output.shape(),
            output.to_f64_lossy()?
        );
    }
    Ok(())
}
