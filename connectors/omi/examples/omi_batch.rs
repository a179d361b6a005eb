//! Calls an Open Model Interface container: its `Status`, a batch through the
//! common connector API, and the same batch with per-item results.
//!
//! ```text
//! cargo run -p inferlink-omi --example omi_batch -- grpc://127.0.0.1:45000 textops text
//! ```
//!
//! Arguments: the endpoint URL, the model name, the input file name (default
//! `grpc://127.0.0.1:45000`, `textops`, `text`: the test model of
//! `testkit/servers/omi/launch.py`, started by `scripts/servers start omi`).

use bytes::Bytes;
use inferlink::{InferRequest, ModelRef, Selector, Tensor};
use inferlink_omi::{Files, OmiClient, RunOptions};
use inferlink_testkit::example::{ExampleConnection, connect_record, fill_record};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "grpc://127.0.0.1:45000".into());
    let model = ModelRef::new(args.next().unwrap_or_else(|| "textops".into()));
    let input = args.next().unwrap_or_else(|| "text".into());

    // 1. A record for the container (omi_batch.yaml beside this file), as an
    // operator registers it.
    let record = fill_record(include_str!("omi_batch.yaml"), &[("url", url)])?;
    // 2. The common API: files travel as BYTES tensors of shape [batch].
    let ExampleConnection {
        resolution,
        connector,
        ..
    } = connect_record(
        &record,
        &Selector::resource("omi"),
        inferlink_omi::factory(),
    )
    .await?;
    let metadata = connector.model_metadata(&model).await?;
    println!(
        "model {} {:?}: inputs {:?}, outputs {:?}",
        metadata.name,
        metadata.versions,
        metadata.inputs.iter().map(|s| &s.name).collect::<Vec<_>>(),
        metadata.outputs.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    let batch = Tensor::from_strings(&input, vec![2], ["hello", "wörld"])?;
    match connector
        .infer(&model, InferRequest::new().with_input(batch))
        .await
    {
        Ok(reply) => {
            for output in &reply.outputs {
                println!("{}: {:?}", output.name(), output.to_strings()?);
            }
        }
        Err(e) => println!("infer failed: {e}"),
    }

    // 3. The OMI client: typed Status and one result per item, failures included.
    let omi = OmiClient::from_target(&resolution.target())?;
    let status = omi.status().await?;
    println!(
        "status {} {:?}; batch size {}, run timeout {:?}",
        status.status_code, status.message, status.features.batch_size, status.timeout.run
    );
    let items: Vec<Files> = ["fine", "please fail"]
        .into_iter()
        .map(|t| Files::from([(input.clone(), Bytes::from(t))]))
        .collect();
    let outcome = omi.run(items, &RunOptions::new()).await?;
    for (i, item) in outcome.items.iter().enumerate() {
        match item {
            Ok(files) => println!("item {i}: files {:?}", files.keys().collect::<Vec<_>>()),
            Err(e) => println!("item {i} failed: {}", e.message),
        }
    }
    Ok(())
}
