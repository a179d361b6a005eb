//! Calls a Triton server through inferlink: resolve a record, connect,
//! infer, stream a decoupled model, run a stateful sequence, read
//! statistics.
//!
//! ```text
//! cargo run -p inferlink-triton --example triton_client -- http://127.0.0.1:8000 [ACCESS_TOKEN]
//! ```
//!
//! The models are the harness's (`testkit/servers/triton/server.py`):
//! `doubler`, `tokens` (decoupled) and `accumulate` (stateful). Start one
//! with `scripts/servers start triton` and pass its `http_url` (and, for
//! statistics, the `access_token` file of its instance directory).

use futures_util::StreamExt as _;
use inferlink::{InferRequest, ModelRef, Tensor};
use inferlink_testkit::example::connect_example;
use inferlink_triton::{Sequence, TritonClient, TritonConfig};

#[tokio::main]
async fn main() -> inferlink::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:8000".to_owned());
    let token = args.next();

    // 1. A record as a host keeps it (triton_client.yaml beside this file),
    // 2. connected through the factory.
    let connector = connect_example(
        include_str!("triton_client.yaml"),
        &[("url", &url)],
        inferlink_triton::factory(),
    )
    .await?;

    // 3. Plain inference.
    let input = Tensor::new("INPUT_1", vec![1, 3], vec![1.0f32, 2.0, 3.0])?;
    let reply = connector
        .infer(&ModelRef::new("doubler"), input.into())
        .await?;
    println!(
        "doubler: {:?}",
        reply.require_output("OUTPUT_1")?.to_vec::<f32>()?
    );

    // 4. A decoupled model, streamed (REST: generate_stream; gRPC: ModelStreamInfer).
    let words = Tensor::from_strings("text_input", vec![1], vec!["streamed one word at a time"])?;
    let mut stream = connector
        .infer_stream(&ModelRef::new("tokens"), words.into())
        .await?;
    while let Some(item) = stream.next().await {
        let response = item?;
        println!(
            "token: {:?}",
            response.require_output("text_output")?.to_strings()?
        );
    }

    // 5. A stateful model: one sequence id, start and end flags.
    let accumulate = ModelRef::new("accumulate");
    for (i, v) in [5i64, 7, 1].into_iter().enumerate() {
        let mut seq = Sequence::new(7);
        if i == 0 {
            seq = seq.start();
        }
        if i == 2 {
            seq = seq.end();
        }
        let request = seq.apply(InferRequest::from(Tensor::from_vec("VALUE", vec![v])));
        let sum = connector.infer(&accumulate, request).await?;
        println!(
            "running sum: {:?}",
            sum.require_output("SUM")?.to_vec::<i64>()?
        );
    }

    // 6. Triton's own calls through the client (restricted APIs need the token).
    let mut config = TritonConfig::new(url);
    config.access_token = token.map(inferlink::Secret::new);
    let client = TritonClient::new(config)?;
    match client
        .model_statistics(Some(&ModelRef::new("doubler")))
        .await
    {
        Ok(stats) => println!("doubler inferences: {}", stats[0].inference_count),
        Err(e) => println!("statistics: {e}"),
    }
    Ok(())
}
