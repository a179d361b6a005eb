//! Calls a TorchServe through inferlink: a record with the endpoints and tokens,
//! resolution, a connector, then health, raw and tensor inference, a streamed
//! prediction, and the model list.
//!
//! Start the test server and point the example at it:
//!
//! ```text
//! scripts/servers install torchserve
//! scripts/servers start torchserve          # prints http_url, management_url, key_file
//! TORCHSERVE_URL=http://127.0.0.1:PORT TORCHSERVE_MANAGEMENT_URL=http://127.0.0.1:PORT \
//! TORCHSERVE_KEY_FILE=/path/to/key_file.json \
//!   cargo run -p inferlink-torchserve --example torchserve_basics
//! scripts/servers stop torchserve
//! ```

use futures_util::StreamExt;
use inferlink::{InferRequest, ModelRef, RawRequest, Tensor};
use inferlink_testkit::example::connect_example;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (Ok(url), Ok(management), Ok(key_file)) = (
        std::env::var("TORCHSERVE_URL"),
        std::env::var("TORCHSERVE_MANAGEMENT_URL"),
        std::env::var("TORCHSERVE_KEY_FILE"),
    ) else {
        eprintln!(
            "set TORCHSERVE_URL, TORCHSERVE_MANAGEMENT_URL and TORCHSERVE_KEY_FILE \
             (see the comment at the top of this example)"
        );
        std::process::exit(2);
    };
    // TorchServe writes its tokens to key_file.json when it starts.
    let keys: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(key_file)?)?;
    let key = |section: &str| keys[section]["key"].as_str().unwrap_or_default().to_owned();

    // 1. The record an operator registers (torchserve_basics.yaml beside
    // this file; tokens in credentials stay secret), 2. resolved and connected.
    let connector = connect_example(
        include_str!("torchserve_basics.yaml"),
        &[
            ("url", url),
            ("management", management),
            ("inference_key", key("inference")),
            ("management_key", key("management")),
        ],
        inferlink_torchserve::factory(),
    )
    .await?;
    println!("health: {:?}", connector.health().await?);

    // 3. Raw payloads, as the handler defines them.
    let raw = connector
        .invoke(
            &ModelRef::new("doubler"),
            RawRequest::json("[1, 2.5, true]"),
        )
        .await?;
    println!("invoke: {}", String::from_utf8_lossy(&raw.body));

    // 4. Tensors, through the nested-JSON mapping.
    let input = Tensor::new("x", vec![2, 2], vec![1i32, 2, 3, 4])?;
    let reply = connector
        .infer(
            &ModelRef::new("doubler"),
            InferRequest::new().with_input(input),
        )
        .await?;
    let out = reply.require_output("output-0")?;
    println!(
        "infer: {} {:?} {:?}",
        out.datatype(),
        out.shape(),
        out.to_vec::<i32>()?
    );

    // 5. A streamed prediction, chunk by chunk.
    let stream = connector
        .invoke_stream(
            &ModelRef::new("streamer"),
            RawRequest::json(r#"{"n": 3, "word": "token"}"#),
        )
        .await?;
    let mut body = stream.body;
    while let Some(chunk) = body.next().await {
        print!("stream: {}", String::from_utf8_lossy(&chunk?));
    }

    // 6. The management API.
    for model in connector.models().await? {
        println!("model: {}", model.name);
    }
    Ok(())
}
