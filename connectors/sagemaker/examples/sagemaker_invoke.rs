//! Calls a SageMaker endpoint through a registry record, the way a host does.
//!
//! ```sh
//! export AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=…      # or put them in the record
//! cargo run -p inferlink-sagemaker --example sagemaker_invoke -- \
//!     https://runtime.sagemaker.eu-west-1.amazonaws.com my-endpoint '{"instances": [[1.0, 2.0]]}'
//! # a SageMaker model container on this machine (no signing):
//! cargo run -p inferlink-sagemaker --example sagemaker_invoke -- \
//!     http://127.0.0.1:8080 model '{"instances": [1, 2]}' container
//! ```

use inferlink::{ModelRef, RawRequest};
use inferlink_testkit::example::connect_example;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, endpoint, body, rest @ ..] = args.as_slice() else {
        eprintln!(
            "usage: sagemaker_invoke <endpoint-url> <endpoint-name> <json-body> [runtime|container]"
        );
        std::process::exit(2);
    };
    let api = rest.first().map_or("runtime", String::as_str);

    // The record is sagemaker_invoke.yaml beside this file.
    let connector = connect_example(
        include_str!("sagemaker_invoke.yaml"),
        &[("url", url.as_str()), ("api", api)],
        inferlink_sagemaker::factory(),
    )
    .await?;

    let answer = connector
        .invoke(
            &ModelRef::new(endpoint.as_str()),
            RawRequest::json(body.clone()),
        )
        .await?;
    for (name, value) in &answer.headers {
        println!("{name}: {value}");
    }
    println!("{}", String::from_utf8_lossy(&answer.body));
    Ok(())
}
