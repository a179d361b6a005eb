use super::*;
use inferlink_core::tensor::TensorData;
use proptest::prelude::*;
use serde_json::{Value, json};

fn request(inputs: Vec<Tensor>) -> InferRequest {
    inputs
        .into_iter()
        .fold(InferRequest::new(), InferRequest::with_input)
}

fn json_of(body: &RestBody) -> Value {
    let end = body.json_len.unwrap_or(body.len());
    serde_json::from_slice(&body.to_bytes()[..end]).unwrap()
}

/// One tensor of every fixed-size datatype JSON can carry, with its JSON data.
fn json_cases() -> Vec<(Tensor, Value)> {
    vec![
        (
            Tensor::new("b", vec![3], vec![true, false, true]).unwrap(),
            json!([true, false, true]),
        ),
        (
            Tensor::new("u8", vec![2], vec![0u8, 255]).unwrap(),
            json!([0, 255]),
        ),
        (
            Tensor::new("u16", vec![2], vec![1u16, 65535]).unwrap(),
            json!([1, 65535]),
        ),
        (
            Tensor::new("u32", vec![2], vec![1u32, u32::MAX]).unwrap(),
            json!([1, u32::MAX]),
        ),
        (
            Tensor::new("u64", vec![1], vec![u64::MAX]).unwrap(),
            json!([u64::MAX]),
        ),
        (
            Tensor::new("i8", vec![2], vec![-128i8, 127]).unwrap(),
            json!([-128, 127]),
        ),
        (
            Tensor::new("i16", vec![1], vec![-300i16]).unwrap(),
            json!([-300]),
        ),
        (
            Tensor::new("i32", vec![2, 2], vec![1i32, -2, 3, -4]).unwrap(),
            json!([1, -2, 3, -4]),
        ),
        (
            Tensor::new("i64", vec![1], vec![i64::MIN]).unwrap(),
            json!([i64::MIN]),
        ),
        (
            Tensor::new("f32", vec![3], vec![1.5f32, -0.25, 3.0]).unwrap(),
            json!([1.5, -0.25, 3.0]),
        ),
        (
            Tensor::new("f64", vec![2], vec![1e300f64, -2.5]).unwrap(),
            json!([1e300, -2.5]),
        ),
        (
            Tensor::from_byte_elements("s", vec![2], ["hello", "wörld"]).unwrap(),
            json!(["hello", "wörld"]),
        ),
    ]
}

#[test]
fn every_json_datatype_encodes_flat_both_typed_and_raw() {
    for (t, data) in json_cases() {
        let raw = Tensor::from_raw(
            t.name(),
            t.datatype(),
            t.shape().to_vec(),
            t.to_raw().unwrap(),
        )
        .unwrap();
        for tensor in [t.clone(), raw] {
            let body = encode_infer_request(&request(vec![tensor]), TensorEncoding::Json).unwrap();
            assert_eq!(body.json_len, None);
            assert_eq!(body.content_type(), "application/json");
            let v = json_of(&body);
            let input = &v["inputs"][0];
            assert_eq!(input["name"], t.name());
            assert_eq!(input["datatype"], t.datatype().as_str());
            assert_eq!(input["shape"], json!(t.shape()));
            assert_eq!(input["data"], data, "{}", t.name());
            assert!(input.get("parameters").is_none());
        }
    }
}

#[test]
fn every_json_datatype_decodes_back_typed() {
    for (t, data) in json_cases() {
        let body = json!({
            "model_name": "m",
            "outputs": [{"name": t.name(), "datatype": t.datatype().as_str(),
                         "shape": t.shape(), "data": data}]
        });
        let r = decode_infer_response(Bytes::from(body.to_string()), None).unwrap();
        let out = &r.outputs[0];
        assert!(!out.is_raw());
        assert_eq!(out.datatype(), t.datatype());
        assert_eq!(out.to_raw().unwrap(), t.to_raw().unwrap(), "{}", t.name());
    }
}

#[test]
fn fp16_and_bf16_encode_as_json_numbers_in_json_mode() {
    let h = Tensor::new("h", vec![2], vec![f16::from_f32(0.1), f16::from_f32(-2.5)]).unwrap();
    let raw = Tensor::from_raw(
        "b",
        DataType::Bf16,
        vec![1],
        bf16::from_f32(1.5).to_le_bytes().to_vec().into(),
    )
    .unwrap();
    let body = encode_infer_request(&request(vec![h.clone(), raw]), TensorEncoding::Json).unwrap();
    let v = json_of(&body);
    // The shortest f32 text of each half value, which reads back to the same half.
    assert_eq!(v["inputs"][0]["data"], json!([0.099975586, -2.5]));
    assert_eq!(v["inputs"][1]["data"], json!([1.5]));
    let resp = json!({"outputs":[{"name":"h","datatype":"FP16","shape":[2],"data": v["inputs"][0]["data"]}]});
    let r = decode_infer_response(Bytes::from(resp.to_string()), None).unwrap();
    assert_eq!(r.outputs[0].to_raw().unwrap(), h.to_raw().unwrap());
}

#[test]
fn fp16_and_bf16_decode_from_json_numbers() {
    let body = r#"{"outputs":[
        {"name":"h","datatype":"FP16","shape":[2],"data":[1.5,-2]},
        {"name":"b","datatype":"BF16","shape":[1],"data":[0.5]}]}"#;
    let r = decode_infer_response(Bytes::from(body), None).unwrap();
    assert_eq!(
        r.outputs[0].to_vec::<f16>().unwrap(),
        vec![f16::from_f32(1.5), f16::from_f32(-2.0)]
    );
    assert_eq!(
        r.outputs[1].to_vec::<bf16>().unwrap(),
        vec![bf16::from_f32(0.5)]
    );
}

#[test]
fn json_mode_refuses_what_json_cannot_carry_and_says_what_to_do() {
    let cases = [
        Tensor::new("h", vec![1], vec![f16::INFINITY]).unwrap(),
        Tensor::from_raw(
            "b",
            DataType::Bf16,
            vec![1],
            Bytes::from(bf16::NAN.to_le_bytes().to_vec()),
        )
        .unwrap(),
        Tensor::from_byte_elements("s", vec![1], [vec![0xffu8, 0xfe]]).unwrap(),
        Tensor::new("nan", vec![2], vec![1.0f32, f32::NAN]).unwrap(),
        Tensor::from_raw(
            "inf",
            DataType::Fp64,
            vec![1],
            Bytes::from(f64::INFINITY.to_le_bytes().to_vec()),
        )
        .unwrap(),
    ];
    for t in cases {
        let ok = Tensor::new("first", vec![1], vec![1i32]).unwrap();
        let e =
            encode_infer_request(&request(vec![ok, t.clone()]), TensorEncoding::Json).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{}", t.name());
        assert_eq!(e.path(), Some("inputs[1]"));
        assert_eq!(e.context("tensor"), Some(t.name()));
        assert!(e.message().contains("tensor_encoding: binary"), "{e}");
    }
}

#[test]
fn auto_mode_sends_only_unencodable_inputs_binary() {
    let h = Tensor::new("h", vec![2], vec![f16::from_f32(1.0), f16::from_f32(2.0)]).unwrap();
    let x = Tensor::new("x", vec![2], vec![1.0f32, 2.0]).unwrap();
    let body = encode_infer_request(&request(vec![x, h.clone()]), TensorEncoding::Auto).unwrap();
    let n = body.json_len.unwrap();
    assert_eq!(body.content_type(), "application/octet-stream");
    let v = json_of(&body);
    assert_eq!(v["inputs"][0]["data"], json!([1.0, 2.0]));
    assert!(v["inputs"][1].get("data").is_none());
    assert_eq!(v["inputs"][1]["parameters"]["binary_data_size"], 4);
    assert!(
        v.get("parameters").is_none(),
        "auto does not ask for binary outputs"
    );
    assert_eq!(&body.to_bytes()[n..], &h.to_raw().unwrap()[..]);
}

#[test]
fn binary_mode_frames_inputs_and_asks_for_binary_outputs() {
    let a = Tensor::new("a", vec![2, 2], vec![1u32, 2, 3, 4]).unwrap();
    let b = Tensor::new("b", vec![3], vec![true, false, true]).unwrap();
    let s = Tensor::from_byte_elements("s", vec![2], ["ab", ""]).unwrap();
    let req = request(vec![a, b, s.clone()])
        .with_id("r1")
        .with_output("y")
        .with_output("z")
        .with_parameter("priority", 1i64);
    let mut req = req;
    req.outputs[1]
        .parameters
        .insert(BINARY_DATA.into(), false.into());
    let body = encode_infer_request(&req, TensorEncoding::Binary).unwrap();
    let n = body.json_len.unwrap();
    let v = json_of(&body);
    assert_eq!(v["id"], "r1");
    assert_eq!(
        v["parameters"],
        json!({"priority": 1, "binary_data_output": true})
    );
    let sizes: Vec<Value> = v["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["parameters"]["binary_data_size"].clone())
        .collect();
    assert_eq!(sizes, vec![json!(16), json!(3), json!(10)]);
    assert!(
        v["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i.get("data").is_none())
    );
    // Per-output binary_data unless the caller chose.
    assert_eq!(
        v["outputs"][0],
        json!({"name": "y", "parameters": {"binary_data": true}})
    );
    assert_eq!(
        v["outputs"][1],
        json!({"name": "z", "parameters": {"binary_data": false}})
    );
    // The binary section: u32 LE, bools as bytes, length-prefixed BYTES.
    let tail = &body.to_bytes()[n..];
    assert_eq!(tail.len(), 29);
    assert_eq!(
        &tail[..16],
        &[1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0]
    );
    assert_eq!(&tail[16..19], &[1, 0, 1]);
    assert_eq!(&tail[19..], b"\x02\0\0\0ab\0\0\0\0");
}

#[test]
fn binary_request_of_raw_tensors_copies_once_and_exactly() {
    let raw = Bytes::from(
        (0..4000u32)
            .flat_map(|i| (i as f32).to_le_bytes())
            .collect::<Vec<u8>>(),
    );
    let t = Tensor::from_raw("x", DataType::Fp32, vec![1000, 4], raw.clone()).unwrap();
    let body = encode_infer_request(&request(vec![t]), TensorEncoding::Binary).unwrap();
    let n = body.json_len.unwrap();
    assert_eq!(&body.to_bytes()[n..], &raw[..]);
    // The buffer was sized up front: no slack beyond the JSON guess.
    assert_eq!(body.len(), n + raw.len());
}

#[test]
fn parameters_are_kept_and_codec_parameters_win() {
    let t = Tensor::new("x", vec![1], vec![1.0f32])
        .unwrap()
        .with_parameter("content_type", "np")
        .with_parameter(BINARY_DATA_SIZE, 999i64);
    let body = encode_infer_request(&request(vec![t.clone()]), TensorEncoding::Binary).unwrap();
    let v = json_of(&body);
    assert_eq!(
        v["inputs"][0]["parameters"],
        json!({"content_type": "np", "binary_data_size": 4})
    );
    let body = encode_infer_request(&request(vec![t]), TensorEncoding::Json).unwrap();
    assert_eq!(
        json_of(&body)["inputs"][0]["parameters"]["content_type"],
        "np"
    );
    let bad = request(vec![]).with_parameter("x", f64::NAN);
    let e = encode_infer_request(&bad, TensorEncoding::Json).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}

#[test]
fn nested_arrays_nulls_and_leniencies_decode() {
    // KServe: explicit nulls; MLServer: null data elements as NaN; nested data.
    let body = r#"{"model_name":"doubler","model_version":null,"id":"abc","parameters":null,
        "outputs":[{"name":"output-0","shape":[2,2],"datatype":"FP32","parameters":null,
                    "data":[[2.0,4.0],[6.0,null]]}]}"#;
    let r = decode_infer_response(Bytes::from(body), None).unwrap();
    assert_eq!(r.model_name, "doubler");
    assert_eq!(r.model_version, None);
    assert_eq!(r.id.as_deref(), Some("abc"));
    let v = r.outputs[0].to_vec::<f32>().unwrap();
    assert_eq!(&v[..3], &[2.0, 4.0, 6.0]);
    assert!(v[3].is_nan());
    // `data` before `datatype` and `shape`, unknown fields ignored.
    let body = r#"{"outputs":[{"data":[[1,2],[3,4]],"name":"z","extra":{"a":[1]},
        "datatype":"INT32","shape":[2,2]}],"unknown":true}"#;
    let r = decode_infer_response(Bytes::from(body), None).unwrap();
    assert_eq!(r.outputs[0].as_slice::<i32>().unwrap(), &[1, 2, 3, 4]);
    // Versions as numbers, integral floats for ints, string dims, bools as 0/1.
    let body = r#"{"model_name":"m","model_version":1,"outputs":[
        {"name":"i","shape":["2"],"datatype":"INT64","data":[1.0,-2]},
        {"name":"b","shape":[2],"datatype":"BOOL","data":[0,true]}]}"#;
    let r = decode_infer_response(Bytes::from(body), None).unwrap();
    assert_eq!(r.model_version.as_deref(), Some("1"));
    assert_eq!(r.outputs[0].to_vec::<i64>().unwrap(), vec![1, -2]);
    assert_eq!(r.outputs[1].to_vec::<bool>().unwrap(), vec![false, true]);
    // Parameters of every JSON type; nested ones kept as JSON text.
    let body = r#"{"parameters":{"a":true,"b":-3,"c":18446744073709551615,"d":0.5,"e":"s",
        "f":{"k":1},"g":null},"outputs":[]}"#;
    let r = decode_infer_response(Bytes::from(body), None).unwrap();
    assert_eq!(r.parameters["a"], Parameter::Bool(true));
    assert_eq!(r.parameters["b"], Parameter::Int(-3));
    assert_eq!(r.parameters["c"], Parameter::Uint(u64::MAX));
    assert_eq!(r.parameters["d"], Parameter::Double(0.5));
    assert_eq!(r.parameters["e"], Parameter::String("s".into()));
    assert_eq!(r.parameters["f"], Parameter::String(r#"{"k":1}"#.into()));
    assert!(!r.parameters.contains_key("g"));
    assert!(r.outputs.is_empty());
}

fn protocol_error(body: &str) -> Error {
    let e = decode_infer_response(Bytes::from(body.to_owned()), None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
    e
}

#[test]
fn malformed_json_is_a_protocol_error_with_a_path() {
    let e = protocol_error(r#"{"outputs": [{"name": "y", "data": [1, 2,"#);
    assert!(e.message().contains("not the expected JSON"), "{e}");
    let e = protocol_error(
        r#"{"outputs":[{"name":"y","datatype":"FP32","shape":[2],"data":[1,"x"]}]}"#,
    );
    assert_eq!(e.path(), Some("outputs[0].data[1]"));
    assert_eq!(e.context("output"), Some("y"));
    assert!(
        e.message()
            .contains("element 1 (a string) is not a FP32 value"),
        "{e}"
    );
    // The same with `data` before `datatype` (decoded in a second step).
    let e = protocol_error(
        r#"{"outputs":[{"name":"y","data":[1,"x"],"datatype":"FP32","shape":[2]}]}"#,
    );
    assert_eq!(e.path(), Some("outputs[0].data"));
    assert_eq!(e.context("output"), Some("y"));
    assert!(e.message().contains("element 1 (a string)"), "{e}");
    let e =
        protocol_error(r#"{"outputs":[{"name":"y","datatype":"UINT8","shape":[1],"data":[256]}]}"#);
    assert!(e.message().contains("(256) is not a UINT8 value"), "{e}");
    let e =
        protocol_error(r#"{"outputs":[{"name":"y","datatype":"FP99","shape":[1],"data":[1]}]}"#);
    assert_eq!(e.path(), Some("outputs[0].datatype"));
    let e =
        protocol_error(r#"{"outputs":[{"name":"y","datatype":"FP32","shape":[-1],"data":[1]}]}"#);
    assert_eq!(e.path(), Some("outputs[0].shape[0]"));
    let e =
        protocol_error(r#"{"outputs":[{"name":"y","datatype":"FP32","shape":[3],"data":[1,2]}]}"#);
    assert_eq!(e.path(), Some("outputs[0]"));
    assert!(e.message().contains("needs 3 elements, got 2"), "{e}");
    let e = protocol_error(r#"{"outputs":[{"name":"y","datatype":"FP32","shape":[1]}]}"#);
    assert!(
        e.message().contains("neither data nor binary_data_size"),
        "{e}"
    );
    let e = protocol_error(r#"{"outputs":[{"datatype":"FP32","shape":[1],"data":[1]}]}"#);
    assert!(e.message().contains("name"), "{e}");
    let e = protocol_error(r#"{"outputs":{}}"#);
    assert_eq!(e.path(), Some("outputs"));
    protocol_error(r#"{"outputs":[]} trailing"#);
    protocol_error("");
    // An empty tensor needs no data.
    let r = decode_infer_response(
        Bytes::from(r#"{"outputs":[{"name":"e","datatype":"FP32","shape":[0,3]}]}"#),
        None,
    )
    .unwrap();
    assert_eq!(r.outputs[0].element_count(), 0);
}

/// A binary response: JSON header, then the outputs' bytes.
fn binary_response(header: &Value, tail: &[u8]) -> (Bytes, usize) {
    let mut body = serde_json::to_vec(header).unwrap();
    let n = body.len();
    body.extend_from_slice(tail);
    (Bytes::from(body), n)
}

#[test]
fn binary_outputs_are_slices_of_the_body() {
    let header = json!({"model_name":"doubler","model_version":"1","outputs":[
        {"name":"OUTPUT_1","datatype":"FP32","shape":[2,2],"parameters":{"binary_data_size":16}},
        {"name":"T","datatype":"BYTES","shape":[2],"parameters":{"binary_data_size":10}},
        {"name":"J","datatype":"INT32","shape":[1],"data":[7]}]});
    let mut tail: Vec<u8> = [2.0f32, 4.0, 6.0, 8.0]
        .iter()
        .flat_map(|f| f.to_le_bytes())
        .collect();
    tail.extend_from_slice(b"\x02\0\0\0ab\0\0\0\0");
    let (body, n) = binary_response(&header, &tail);
    let r = decode_infer_response(body.clone(), Some(n)).unwrap();
    let y = r.require_output("OUTPUT_1").unwrap();
    assert!(y.is_raw());
    assert!(
        y.parameters().is_empty(),
        "binary_data_size is framing, not kept"
    );
    assert_eq!(y.to_vec::<f32>().unwrap(), vec![2.0, 4.0, 6.0, 8.0]);
    let TensorData::Raw(raw) = y.data() else {
        panic!("raw")
    };
    assert_eq!(raw.as_ptr(), body[n..].as_ptr(), "no copy");
    assert_eq!(
        r.require_output("T").unwrap().to_byte_elements().unwrap(),
        vec![Bytes::from("ab"), Bytes::new()]
    );
    assert_eq!(
        r.require_output("J").unwrap().as_slice::<i32>().unwrap(),
        &[7]
    );
}

#[test]
fn binary_framing_is_checked_strictly() {
    let header = json!({"outputs":[
        {"name":"a","datatype":"FP32","shape":[1],"parameters":{"binary_data_size":4}},
        {"name":"b","datatype":"FP32","shape":[2],"parameters":{"binary_data_size":8}}]});
    // Header length beyond the body.
    let (body, _) = binary_response(&header, &[0; 12]);
    let e = decode_infer_response(body.clone(), Some(body.len() + 1)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol);
    assert!(
        e.message().contains("Inference-Header-Content-Length"),
        "{e}"
    );
    // Sizes beyond the binary data: names the output.
    let (body, n) = binary_response(&header, &[0; 10]);
    let e = decode_infer_response(body, Some(n)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol);
    assert_eq!(e.context("output"), Some("b"));
    assert_eq!(e.path(), Some("outputs[1].parameters.binary_data_size"));
    // Bytes left over.
    let (body, n) = binary_response(&header, &[0; 13]);
    let e = decode_infer_response(body, Some(n)).unwrap_err();
    assert!(e.message().contains("add up to 12"), "{e}");
    // A size that does not fit the shape.
    let bad = json!({"outputs":[{"name":"a","datatype":"FP32","shape":[2],"parameters":{"binary_data_size":4}}]});
    let (body, n) = binary_response(&bad, &[0; 4]);
    let e = decode_infer_response(body, Some(n)).unwrap_err();
    assert_eq!(
        (e.kind(), e.path()),
        (ErrorKind::Protocol, Some("outputs[0]"))
    );
    // Malformed BYTES framing.
    let bad = json!({"outputs":[{"name":"s","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":5}}]});
    let (body, n) = binary_response(&bad, b"\x09\0\0\0x");
    let e = decode_infer_response(body, Some(n)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol);
    assert_eq!(e.context("output"), Some("s"));
    // A negative or non-integer size.
    let bad = json!({"outputs":[{"name":"a","datatype":"FP32","shape":[1],"parameters":{"binary_data_size":-4}}]});
    let (body, n) = binary_response(&bad, &[0; 4]);
    assert_eq!(
        decode_infer_response(body, Some(n)).unwrap_err().kind(),
        ErrorKind::Protocol
    );
    // A binary section nobody claims.
    let (body, n) = binary_response(&json!({"outputs": []}), &[1, 2]);
    assert_eq!(
        decode_infer_response(body, Some(n)).unwrap_err().kind(),
        ErrorKind::Protocol
    );
}

#[test]
fn header_length_values_are_parsed_strictly() {
    assert_eq!(parse_header_length(None).unwrap(), None);
    assert_eq!(parse_header_length(Some(b"145")).unwrap(), Some(145));
    assert_eq!(parse_header_length(Some(b" 7 ")).unwrap(), Some(7));
    for bad in [&b"-1"[..], b"x", b"", b"1.5"] {
        assert_eq!(
            parse_header_length(Some(bad)).unwrap_err().kind(),
            ErrorKind::Protocol
        );
    }
}

#[test]
fn every_fixed_datatype_round_trips_binary() {
    let mut cases: Vec<Tensor> = json_cases().into_iter().map(|(t, _)| t).collect();
    cases.push(Tensor::new("h", vec![2], vec![f16::from_f32(0.5), f16::NEG_INFINITY]).unwrap());
    cases.push(Tensor::new("bf", vec![1], vec![bf16::from_f32(-3.0)]).unwrap());
    cases.push(Tensor::new("nan", vec![1], vec![f32::NAN]).unwrap());
    for t in cases {
        // Encode as a request, then read the same bytes back as a response.
        let body = encode_infer_request(&request(vec![t.clone()]), TensorEncoding::Binary).unwrap();
        let n = body.json_len.unwrap();
        let size = binary_len(&t);
        let header = json!({"outputs":[{"name": t.name(), "datatype": t.datatype().as_str(),
            "shape": t.shape(), "parameters": {"binary_data_size": size}}]});
        let (resp, m) = binary_response(&header, &body.to_bytes()[n..]);
        let r = decode_infer_response(resp, Some(m)).unwrap();
        assert_eq!(
            r.outputs[0].to_raw().unwrap(),
            t.to_raw().unwrap(),
            "{}",
            t.name()
        );
    }
}

#[test]
fn model_metadata_tolerates_real_server_shapes() {
    // KServe: versions null, empty platform and tensors.
    let m = decode_model_metadata(
        br#"{"name":"doubler","versions":null,"platform":"","inputs":[],"outputs":[]}"#,
    )
    .unwrap();
    assert_eq!(m.name, "doubler");
    assert!(m.versions.is_empty());
    // KServe gRPC-ish minimum: only the name.
    assert_eq!(decode_model_metadata(br#"{"name":"x"}"#).unwrap().name, "x");
    // Triton.
    let m = decode_model_metadata(
        br#"{"name":"doubler","versions":["1"],"platform":"python",
        "inputs":[{"name":"INPUT_1","datatype":"FP32","shape":[-1,-1]}],
        "outputs":[{"name":"OUTPUT_1","datatype":"FP32","shape":[-1,-1]}]}"#,
    )
    .unwrap();
    assert_eq!(m.versions, vec!["1"]);
    assert_eq!(m.inputs[0].shape, vec![-1, -1]);
    assert_eq!(m.outputs[0].datatype, DataType::Fp32);
    // MLServer: parameters on the model and tensors; OIP properties.
    let m = decode_model_metadata(
        br#"{"name":"d","versions":[],"platform":"","parameters":{"content_type":"np"},
        "properties":{"owner":"a"},
        "inputs":[{"name":"input-0","datatype":"FP32","shape":[-1,-1],"parameters":{"content_type":"np"}}],
        "outputs":null}"#,
    )
    .unwrap();
    assert_eq!(m.properties["content_type"], "np");
    assert_eq!(m.properties["owner"], "a");
    assert_eq!(
        m.inputs[0].parameters["content_type"],
        Parameter::String("np".into())
    );
    let e = decode_model_metadata(
        br#"{"name":"d","inputs":[{"name":"x","datatype":"STRING","shape":[1]}]}"#,
    )
    .unwrap_err();
    assert_eq!(
        (e.kind(), e.path()),
        (ErrorKind::Protocol, Some("inputs[0].datatype"))
    );
    let e = decode_model_metadata(
        br#"{"name":"d","inputs":[{"name":"x","datatype":"FP32","shape":[1.5]}]}"#,
    )
    .unwrap_err();
    assert_eq!(e.path(), Some("inputs[0].shape[0]"));
}

#[test]
fn server_metadata_and_model_lists_decode() {
    let s = decode_server_metadata(
        br#"{"name":"triton","version":"2.51.0","extensions":["binary_tensor_data"]}"#,
    )
    .unwrap();
    assert_eq!((s.name.as_str(), s.version.as_str()), ("triton", "2.51.0"));
    assert_eq!(s.extensions, vec!["binary_tensor_data"]);
    assert!(
        decode_server_metadata(br#"{"name":"mlserver","extensions":null}"#)
            .unwrap()
            .extensions
            .is_empty()
    );
    let l = decode_model_list(br#"{"models":["doubler","x"]}"#).unwrap();
    assert_eq!(
        l.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        vec!["doubler", "x"]
    );
    let l = decode_model_list(
        br#"[{"name":"doubler","state":"READY","reason":""},{"name":"t","version":"v1","state":"READY"}]"#,
    )
    .unwrap();
    assert_eq!(l[0].state.as_deref(), Some("READY"));
    assert_eq!(l[0].version, None);
    assert_eq!(l[1].version.as_deref(), Some("v1"));
    assert_eq!(
        decode_model_list(b"{}").unwrap_err().kind(),
        ErrorKind::Protocol
    );
    assert_eq!(
        error_message(br#"{"error":"Model nope not found"}"#).as_deref(),
        Some("Model nope not found")
    );
    assert_eq!(error_message(b"Internal Server Error"), None);
}

#[test]
fn tensor_encoding_words() {
    for e in [
        TensorEncoding::Json,
        TensorEncoding::Binary,
        TensorEncoding::Auto,
    ] {
        assert_eq!(e.as_str().parse::<TensorEncoding>().unwrap(), e);
    }
    assert_eq!(
        "xml".parse::<TensorEncoding>().unwrap_err().kind(),
        ErrorKind::Config
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn fp32_json_round_trips(values in proptest::collection::vec(-1e30f32..1e30, 0..64)) {
        let n = values.len();
        let t = Tensor::new("x", vec![n], values.clone()).unwrap();
        let body = encode_infer_request(&request(vec![t]), TensorEncoding::Json).unwrap();
        let v = json_of(&body);
        let resp = json!({"outputs":[{"name":"x","datatype":"FP32","shape":[n],"data": v["inputs"][0]["data"]}]});
        let r = decode_infer_response(Bytes::from(resp.to_string()), None).unwrap();
        prop_assert_eq!(r.outputs[0].to_vec::<f32>().unwrap(), values);
    }

    #[test]
    fn i64_and_bytes_binary_round_trip(
        ints in proptest::collection::vec(any::<i64>(), 0..32),
        strings in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..12), 0..8),
    ) {
        let a = Tensor::new("a", vec![ints.len()], ints.clone()).unwrap();
        let s = Tensor::from_byte_elements("s", vec![strings.len()], strings.clone()).unwrap();
        let body = encode_infer_request(&request(vec![a.clone(), s.clone()]), TensorEncoding::Binary).unwrap();
        let n = body.json_len.unwrap();
        let header = json!({"outputs":[
            {"name":"a","datatype":"INT64","shape":[ints.len()],"parameters":{"binary_data_size": binary_len(&a)}},
            {"name":"s","datatype":"BYTES","shape":[strings.len()],"parameters":{"binary_data_size": binary_len(&s)}}]});
        let (resp, m) = binary_response(&header, &body.to_bytes()[n..]);
        let r = decode_infer_response(resp, Some(m)).unwrap();
        prop_assert_eq!(r.outputs[0].to_vec::<i64>().unwrap(), ints);
        let back: Vec<Vec<u8>> = r.outputs[1].to_byte_elements().unwrap().iter().map(|b| b.to_vec()).collect();
        prop_assert_eq!(back, strings);
    }

    #[test]
    fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256), split in 0usize..300) {
        let body = Bytes::from(body);
        let _ = decode_infer_response(body.clone(), Some(split));
        let _ = decode_infer_response(body.clone(), None);
        let _ = decode_model_metadata(&body);
    }
}

#[test]
fn the_owned_encoding_sends_the_same_bytes_without_copying_numbers() {
    let values: Vec<f32> = (0..4096).map(|i| i as f32).collect();
    let memory = values.as_ptr().cast::<u8>();
    let inputs = vec![
        Tensor::new("big", vec![4096], values).unwrap(),
        Tensor::new("h", vec![1], vec![half::f16::from_f32(1.5)]).unwrap(),
        Tensor::new("small", vec![2], vec![1i32, -2]).unwrap(),
        Tensor::from_byte_elements("s", vec![1], vec!["text"]).unwrap(),
    ];
    for encoding in [TensorEncoding::Binary, TensorEncoding::Auto] {
        let borrowed = encode_infer_request(&request(inputs.clone()), encoding).unwrap();
        let owned = encode_infer_request_owned(request(inputs.clone()), encoding).unwrap();
        assert_eq!(owned.to_bytes(), borrowed.to_bytes(), "{encoding:?}");
        assert_eq!(owned.json_len, borrowed.json_len);
        assert_eq!(owned.len(), owned.to_bytes().len());
    }
    let owned = encode_infer_request_owned(request(inputs), TensorEncoding::Binary).unwrap();
    assert_eq!(owned.binary.len(), 4, "one part per binary input");
    if cfg!(target_endian = "little") {
        assert_eq!(
            owned.binary[0].as_ptr(),
            memory,
            "the FP32 input is sent from its own memory"
        );
    }
    let parts: Vec<Bytes> = owned.clone().into_parts().collect();
    assert_eq!(parts[0], owned.json);
    assert_eq!(parts.len(), 5);
}
