//! Calls a TensorFlow Serving model through inferlink: registers a record
//! (`tfserving_predict.yaml` beside this file),
//! resolves it, connects, predicts (columnar and row form), reads the
//! signature, and regresses over `tf.Example`s.
//!
//! ```text
//! cargo run -p inferlink-tfserving --example tfserving_predict
//! TFSERVING_URL=http://127.0.0.1:8501 cargo run -p inferlink-tfserving --example tfserving_predict
//! ```
//!
//! Without `TFSERVING_URL` it starts the testkit's `tfserving_rest_fake`
//! (a stand-in written from TF Serving's REST documentation) on loopback;
//! with it, it calls your server, which must serve TF Serving's
//! `half_plus_two` example model (signatures `serving_default` and
//! `regress_x_to_y`).

use inferlink::{InferRequest, ModelRef, Tensor};
use inferlink_core::kit::ConnectorConfig;
use inferlink_testkit::example::connect_example;
use inferlink_testkit::tfserving_rest_fake::TfServingRestFake;
use inferlink_tfserving::{Examples, Feature, TfServingConfig, TfServingConnector};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (_fake, url) = match std::env::var("TFSERVING_URL") {
        Ok(url) => (None, url),
        Err(_) => {
            let fake = TfServingRestFake::start().await?;
            let url = fake.url();
            println!("no TFSERVING_URL: using tfserving_rest_fake at {url}");
            (Some(fake), url)
        }
    };

    let connector = connect_example(
        include_str!("tfserving_predict.yaml"),
        &[("url", &url)],
        inferlink_tfserving::factory(),
    )
    .await?;
    println!("health: {:?}", connector.health().await?);

    let model = ModelRef::new("half_plus_two");
    let md = connector.model_metadata(&model).await?;
    for input in &md.inputs {
        println!("input {} {} {:?}", input.name, input.datatype, input.shape);
    }

    let x = Tensor::new("x", vec![3], vec![1.0f32, 2.0, 5.0])?;
    let y = connector
        .infer(&model, InferRequest::new().with_input(x.clone()))
        .await?
        .into_single_output()?;
    println!("columnar: {} = {:?}", y.name(), y.to_vec::<f32>()?);

    // Version 1 through its label, and the row ("instances") form.
    let row = inferlink_tfserving::TfServingClient::new(TfServingConfig::from_pairs(
        &url,
        &[("request_format", "row"), ("model_version_label", "stable")],
    )?)?;
    let y = row
        .predict(&model, InferRequest::from(x))
        .await?
        .into_single_output()?;
    println!("row, label stable: {:?}", y.to_vec::<f32>()?);

    // Regress over examples with the regression signature.
    let regress: TfServingConnector = inferlink_tfserving::TfServingClient::new(
        TfServingConfig::from_pairs(&url, &[("signature_name", "regress_x_to_y")])?,
    )?;
    let examples = Examples::new(
        [1.0f32, 3.0]
            .into_iter()
            .map(|x| {
                [("x".to_owned(), Feature::Float(vec![x]))]
                    .into_iter()
                    .collect()
            })
            .collect(),
    );
    println!("regress: {:?}", regress.regress(&model, &examples).await?);
    Ok(())
}
