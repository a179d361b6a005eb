use super::*;
use serde_json::json;

fn encode(request: &InferRequest, form: V1TensorForm) -> Value {
    serde_json::to_value(encode_request(request, form).unwrap()).unwrap()
}

#[test]
fn ndarray_follows_the_shape_and_datatype() {
    let x = Tensor::new("x", vec![2, 2], vec![1.5f64, 2.0, -3.0, 4.25]).unwrap();
    let r = InferRequest::new()
        .with_id("p-1")
        .with_parameter("names", r#"["a","b"]"#)
        .with_parameter("team", "alpha")
        .with_input(x);
    assert_eq!(
        encode(&r, V1TensorForm::Ndarray),
        json!({"data": {"names": ["a", "b"], "ndarray": [[1.5, 2.0], [-3.0, 4.25]]},
               "meta": {"puid": "p-1", "tags": {"team": "alpha"}}})
    );
    let ints = Tensor::new("x", vec![3], vec![1i32, -2, 3]).unwrap();
    assert_eq!(
        encode(&InferRequest::new().with_input(ints), V1TensorForm::Ndarray),
        json!({"data": {"ndarray": [1, -2, 3]}})
    );
    let text = Tensor::from_strings("x", vec![1, 2], ["é", "b"]).unwrap();
    assert_eq!(
        encode(
            &InferRequest::new().with_input(text.with_parameter("names", "c1, c2")),
            V1TensorForm::Ndarray
        ),
        json!({"data": {"names": ["c1", "c2"], "ndarray": [["é", "b"]]}})
    );
    let flags = Tensor::new("x", vec![2], vec![true, false]).unwrap();
    assert_eq!(
        encode(
            &InferRequest::new().with_input(flags),
            V1TensorForm::Ndarray
        ),
        json!({"data": {"ndarray": [true, false]}})
    );
}

#[test]
fn tensor_form_is_flat_doubles() {
    let x = Tensor::new("x", vec![2, 2], vec![1.0f32, 2.0, 3.0, 4.0]).unwrap();
    assert_eq!(
        encode(&InferRequest::new().with_input(x), V1TensorForm::Tensor),
        json!({"data": {"tensor": {"shape": [2, 2], "values": [1.0, 2.0, 3.0, 4.0]}}})
    );
    let s = Tensor::from_strings("x", vec![1], ["a"]).unwrap();
    let e = encode_request(&InferRequest::new().with_input(s), V1TensorForm::Tensor).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}

#[test]
fn str_bin_and_json_payloads() {
    let one = |name: &str, bytes: &[u8]| {
        InferRequest::new().with_input(
            Tensor::from_byte_elements(name, vec![1], [Bytes::copy_from_slice(bytes)]).unwrap(),
        )
    };
    assert_eq!(
        encode(&one("strData", "héllo".as_bytes()), V1TensorForm::Ndarray),
        json!({"strData": "héllo"})
    );
    assert_eq!(
        encode(&one("binData", &[1, 2, 3, 255]), V1TensorForm::Ndarray),
        json!({"binData": "AQID/w=="})
    );
    assert_eq!(
        encode(&one("jsonData", br#"{"a":[1,2]}"#), V1TensorForm::Ndarray),
        json!({"jsonData": {"a": [1, 2]}})
    );
    for (name, bytes) in [("strData", &[0xff, 0xfe][..]), ("jsonData", b"{nope")] {
        let e = encode_request(&one(name, bytes), V1TensorForm::Ndarray).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{name}");
    }
}

#[test]
fn requests_that_cannot_be_sent_are_refused() {
    let e = encode_request(&InferRequest::new(), V1TensorForm::Ndarray).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let a = Tensor::from_vec("a", vec![1.0f32]);
    let two = InferRequest::new().with_input(a.clone()).with_input(a);
    let e = encode_request(&two, V1TensorForm::Ndarray).unwrap_err();
    assert!(e.message().contains("2 inputs"), "{e}");
    let nan = Tensor::from_vec("a", vec![f64::NAN]);
    let e =
        encode_request(&InferRequest::new().with_input(nan), V1TensorForm::Ndarray).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let raw = Tensor::from_byte_elements("a", vec![1], [Bytes::from_static(&[0xc3])]).unwrap();
    let e =
        encode_request(&InferRequest::new().with_input(raw), V1TensorForm::Ndarray).unwrap_err();
    assert!(e.message().contains("binData"), "{e}");
}

fn decode(v: Value) -> Result<InferResponse> {
    decode_response(decode_message(v.to_string().as_bytes())?)
}

#[test]
fn answers_decode_as_observed_from_seldon_core() {
    // The python microservice's answer (real-servers.md 3b), names replaced by t:0, t:1.
    let r = decode(json!({"data":{"names":["t:0","t:1"],"ndarray":[[2,4]]},
        "meta":{"metrics":[{"key":"doubler_calls","type":"COUNTER","value":1}],"tags":{"model":"doubler"}}}))
    .unwrap();
    let out = &r.outputs[0];
    assert_eq!(out.name(), DATA_OUTPUT);
    assert_eq!(out.datatype(), DataType::Int64);
    assert_eq!(out.shape(), &[1, 2]);
    assert_eq!(out.to_vec::<i64>().unwrap(), vec![2, 4]);
    assert_eq!(
        out.parameters().get("names"),
        Some(&Parameter::String(r#"["t:0","t:1"]"#.into()))
    );
    assert_eq!(
        r.parameters.get("model"),
        Some(&Parameter::String("doubler".into()))
    );
    let meta = match r.parameters.get(META_PARAMETER) {
        Some(Parameter::String(s)) => s.clone(),
        other => panic!("{other:?}"),
    };
    assert!(meta.contains("doubler_calls"), "{meta}");

    let r =
        decode(json!({"data":{"tensor":{"shape":[2,2],"values":[2,4,6,8]}},"meta":{"puid":"abc"}}))
            .unwrap();
    assert_eq!(r.id.as_deref(), Some("abc"));
    assert_eq!(r.outputs[0].datatype(), DataType::Fp64);
    assert_eq!(
        r.outputs[0].to_vec::<f64>().unwrap(),
        vec![2.0, 4.0, 6.0, 8.0]
    );

    let r = decode(json!({"data":{"ndarray":[[1.5, null],[2, 3]]}})).unwrap();
    let v = r.outputs[0].to_vec::<f64>().unwrap();
    assert_eq!(v[0], 1.5);
    assert!(v[1].is_nan());
    let r = decode(json!({"data":{"ndarray":[["a", 1], ["b", true]]}})).unwrap();
    assert_eq!(r.outputs[0].to_strings().unwrap(), ["a", "1", "b", "true"]);
    let r = decode(json!({"data":{"names":[],"ndarray":[]}})).unwrap();
    assert_eq!(r.outputs[0].shape(), &[0]);

    let r = decode(json!({"strData":"HÉLLO"})).unwrap();
    assert_eq!(r.outputs[0].name(), STR_DATA);
    assert_eq!(r.outputs[0].to_strings().unwrap(), ["HÉLLO"]);
    let r = decode(json!({"binData":"AwIB"})).unwrap();
    assert_eq!(
        r.outputs[0].to_byte_elements().unwrap()[0].as_ref(),
        &[3, 2, 1]
    );
    let r = decode(json!({"jsonData":{"a":[2,5.0]}})).unwrap();
    let text = r.outputs[0].to_strings().unwrap().remove(0);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"a":[2,5.0]})
    );
}

#[test]
fn bad_answers_are_protocol_errors() {
    for bad in [
        json!({"data":{"ndarray":[[1,2],[3]]}}),
        json!({"data":{"ndarray":[[1,2],3]}}),
        json!({"data":{"ndarray":[1,[2]]}}),
        json!({"data":{"tensor":{"shape":[3],"values":[1,2]}}}),
        json!({"binData":"***"}),
        json!({"data": 5}),
    ] {
        let e = decode(bad.clone()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol, "{bad}: {e}");
    }
    let e = decode(json!({"data":{"tftensor":{"dtype":"DT_FLOAT"}}})).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    let e = decode(
        json!({"status":{"code":-1,"info":"bad","reason":"MICROSERVICE_BAD_DATA","status":1}}),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}

#[test]
fn round_trip_through_the_mapping_keeps_values() {
    let x = Tensor::new(
        "x",
        vec![2, 3],
        (0..6).map(|i| i as f64 * 0.5).collect::<Vec<_>>(),
    )
    .unwrap();
    let m = encode_request(
        &InferRequest::new().with_input(x.clone()),
        V1TensorForm::Ndarray,
    )
    .unwrap();
    let r = decode_response(m).unwrap();
    assert_eq!(r.outputs[0].shape(), x.shape());
    assert_eq!(
        r.outputs[0].to_vec::<f64>().unwrap(),
        x.to_vec::<f64>().unwrap()
    );
}

#[test]
fn metadata_of_microservice_and_executor() {
    let raw: RawMetadata = serde_json::from_value(json!({"custom":{"author":"inferlink"},
        "inputs":[{"datatype":"FP64","name":"input","shape":[-1,-1]}],"name":"doubler",
        "outputs":[{"messagetype":"strData"}],"platform":"inferlink-test","versions":["1"]}))
    .unwrap();
    let md = metadata_from(raw, "x");
    assert_eq!(md.name, "doubler");
    assert_eq!(md.versions, ["1"]);
    assert_eq!(md.inputs[0].datatype, DataType::Fp64);
    assert_eq!(md.inputs[0].shape, vec![-1, -1]);
    assert_eq!(md.outputs[0].datatype, DataType::Bytes);
    assert_eq!(
        md.properties.get("author").map(String::as_str),
        Some("inferlink")
    );
    let raw: RawMetadata = serde_json::from_value(json!({"name":"example",
        "models":{"classifier":{}},"graphinputs":[{"messagetype":"tensor","schema":{"shape":[1,4]}}],
        "graphoutputs":[]}))
    .unwrap();
    let md = metadata_from(raw, "dep");
    assert_eq!(md.name, "example");
    assert_eq!(md.inputs[0].shape, vec![1, 4]);
    assert_eq!(
        md.properties.get("graph_models").map(String::as_str),
        Some("classifier")
    );
}
