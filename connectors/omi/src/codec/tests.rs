use super::*;
use inferlink_core::tensor::RequestedOutput;

fn status() -> OmiStatus {
    let mut s = OmiStatus::from(proto::StatusResponse {
        status_code: 200,
        status: "OK".into(),
        message: "Model Initialized Successfully.".into(),
        model_info: Some(proto::ModelInfo {
            model_name: "textops".into(),
            model_version: "1.2.0".into(),
            model_type: "grpc".into(),
            source: "chassis".into(),
            ..Default::default()
        }),
        inputs: vec![proto::ModelInput {
            filename: "text".into(),
            accepted_media_types: vec!["text/plain".into(), "text/markdown".into()],
            max_size: "1M".into(),
            description: "UTF-8 text".into(),
        }],
        outputs: vec![proto::ModelOutput {
            filename: "upper.txt".into(),
            media_type: "text/plain".into(),
            max_size: "1M".into(),
            description: String::new(),
        }],
        resources: Some(proto::ModelResources {
            required_ram: "256M".into(),
            num_cpus: 0.5,
            num_gpus: 0,
        }),
        timeout: Some(proto::ModelTimeout {
            status: "20s".into(),
            run: "30s".into(),
        }),
        features: Some(proto::ModelFeatures {
            batch_size: 4,
            ..Default::default()
        }),
        ..Default::default()
    });
    s.description.summary = "upper-cases".into();
    s
}

fn item(pairs: &[(&str, &str)], success: bool) -> proto::OutputItem {
    proto::OutputItem {
        output: pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Bytes::from(v.to_string())))
            .collect(),
        success,
    }
}

fn ok_response(items: Vec<proto::OutputItem>) -> proto::RunResponse {
    proto::RunResponse {
        status_code: 200,
        status: "OK".into(),
        message: "Inference executed".into(),
        outputs: items,
    }
}

#[test]
fn status_becomes_metadata() {
    let md = status().to_model_metadata();
    assert_eq!(md.name, "textops");
    assert_eq!(md.versions, ["1.2.0"]);
    assert_eq!(md.platform, "omi/grpc");
    let input = md.input("text").unwrap();
    assert_eq!(input.datatype, DataType::Bytes);
    assert_eq!(input.shape, [-1]);
    assert_eq!(
        input.parameters.get("accepted_media_types"),
        Some(&"text/plain,text/markdown".into())
    );
    let output = md.output("upper.txt").unwrap();
    assert_eq!(
        output.parameters.get("media_type"),
        Some(&"text/plain".into())
    );
    assert!(!output.parameters.contains_key("description"));
    for (k, v) in [
        ("resources.required_ram", "256M"),
        ("resources.num_cpus", "0.5"),
        ("timeout.run", "30s"),
        ("timeout.status", "20s"),
        ("features.batch_size", "4"),
        ("description.summary", "upper-cases"),
        ("source", "chassis"),
    ] {
        assert_eq!(md.properties.get(k).map(String::as_str), Some(v), "{k}");
    }
    assert!(!md.properties.contains_key("model_author"));
}

#[test]
fn not_ready_status_is_an_error() {
    let mut s = status();
    assert!(s.is_ready() && s.error().is_none());
    s.status_code = 500;
    s.status = "Internal Server Error".into();
    s.message = "Model Failed to Initialize.".into();
    let e = s.error().unwrap();
    assert_eq!(e.kind(), ErrorKind::ModelError);
    assert!(e.to_string().contains("Model Failed to Initialize."), "{e}");
}

#[test]
fn tensors_become_items() {
    let text = Tensor::from_strings("text", vec![3], ["a", "b", "ü"]).unwrap();
    let items = items_from_request(&InferRequest::new().with_input(text), &status()).unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[2]["text"], Bytes::from("ü"));
    assert!(items.iter().all(|i| i.len() == 1));
}

#[test]
fn bad_tensors_are_invalid_input_naming_them() {
    let s = status();
    let cases: Vec<(InferRequest, &str)> = vec![
        (InferRequest::new(), "at least one input"),
        (
            InferRequest::new().with_input(Tensor::from_vec("text", vec![1.0f32])),
            "FP32",
        ),
        (
            InferRequest::new()
                .with_input(Tensor::from_strings("text", vec![1, 1], ["a"]).unwrap()),
            "shape",
        ),
        (
            InferRequest::new()
                .with_input(Tensor::from_strings("text", vec![0], Vec::<String>::new()).unwrap()),
            "no batch items",
        ),
        (
            InferRequest::new().with_input(Tensor::from_strings("image", vec![1], ["a"]).unwrap()),
            "input files: [text]",
        ),
        (
            InferRequest::new()
                .with_input(Tensor::from_strings("text", vec![1], ["a"]).unwrap())
                .with_input(Tensor::from_strings("text", vec![1], ["b"]).unwrap()),
            "twice",
        ),
    ];
    for (request, words) in cases {
        let e = items_from_request(&request, &s).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains(words), "{words}: {e}");
    }
    // Undeclared names pass when the model declares no inputs at all.
    let mut open = status();
    open.inputs.clear();
    let req = InferRequest::new()
        .with_input(Tensor::from_strings("a", vec![2], ["1", "2"]).unwrap())
        .with_input(Tensor::from_strings("b", vec![1], ["x"]).unwrap());
    let e = items_from_request(&req, &open).unwrap_err();
    assert!(e.to_string().contains("first input has 2"), "{e}");
}

#[test]
fn run_items_are_classified() {
    let r = ok_response(vec![
        item(&[("upper.txt", "A")], true),
        item(&[("error", "boom")], true),
        item(&[("error", "bad")], false),
        item(&[], false),
        item(&[("error", "x"), ("upper.txt", "Y")], true),
    ]);
    let outcome = decode_run(r, 5).unwrap();
    assert!(!outcome.all_succeeded());
    let failures: Vec<&ItemError> = outcome.failures().collect();
    assert_eq!(failures.len(), 3);
    assert_eq!(failures[0].index, 1);
    assert_eq!(failures[0].message, "boom");
    assert!(failures[0].success_flag);
    assert_eq!(failures[1].index, 2);
    assert!(!failures[1].success_flag);
    assert!(failures[2].message.contains("without a message"));
    // A model may legitimately give an `error` file next to others.
    assert_eq!(outcome.items[4].as_ref().unwrap().len(), 2);
    let e = outcome.into_files().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ModelError);
    assert!(!e.is_retryable());
    assert_eq!(e.context("failed_items"), Some("1,2,3"));
    assert!(e.to_string().contains("3 of 5"), "{e}");
    assert!(e.to_string().contains("item 1: boom"), "{e}");
}

#[test]
fn output_count_must_match_input_count() {
    let e = decode_run(ok_response(vec![]), 2).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ModelError);
    assert_eq!(e.context("inputs"), Some("2"));
    assert_eq!(e.context("outputs"), Some("0"));
    let e = decode_run(ok_response(vec![item(&[("a", "1")], true); 3]), 2).unwrap_err();
    assert!(e.to_string().contains("3 output item(s) for 2"), "{e}");
    let mut bad = ok_response(vec![]);
    bad.status_code = 503;
    bad.status = "Service Unavailable".into();
    let e = decode_run(bad, 0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.is_retryable());
}

#[test]
fn items_become_tensors() {
    let s = status();
    let items: Vec<Files> = ["A", "B"]
        .iter()
        .map(|t| {
            Files::from([
                ("upper.txt".to_owned(), Bytes::from(*t)),
                ("n.json".to_owned(), Bytes::from("1")),
            ])
        })
        .collect();
    let req = InferRequest::new().with_id("r1");
    let r = response_from_items(&ModelRef::new("textops"), &s, &req, items.clone()).unwrap();
    assert_eq!(r.model_name, "textops");
    assert_eq!(r.model_version.as_deref(), Some("1.2.0"));
    assert_eq!(r.id.as_deref(), Some("r1"));
    assert_eq!(r.outputs.len(), 2);
    let upper = r.require_output("upper.txt").unwrap();
    assert_eq!(upper.shape(), [2]);
    assert_eq!(upper.to_strings().unwrap(), ["A", "B"]);
    assert_eq!(
        upper.parameters().get("media_type"),
        Some(&"text/plain".into())
    );

    let mut req = InferRequest::new();
    req.outputs.push(RequestedOutput::named("n.json"));
    let r = response_from_items(&ModelRef::new("textops"), &s, &req, items.clone()).unwrap();
    assert_eq!(r.outputs.len(), 1);
    assert_eq!(r.outputs[0].name(), "n.json");

    let req = InferRequest::new().with_output("nope");
    let e = response_from_items(&ModelRef::new("textops"), &s, &req, items.clone()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);

    let mut ragged = items;
    ragged[1].remove("n.json");
    let e = response_from_items(&ModelRef::new("textops"), &s, &InferRequest::new(), ragged)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol);
    assert!(e.to_string().contains("batch item 1"), "{e}");
}
