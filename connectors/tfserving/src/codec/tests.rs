use super::*;

fn req(inputs: Vec<Tensor>) -> InferRequest {
    InferRequest {
        inputs,
        ..InferRequest::default()
    }
}

#[test]
fn columnar_bodies_nest_by_shape_and_name_every_input() {
    let a = Tensor::new("a", vec![2, 2], vec![1i32, -2, 3, 4]).unwrap();
    let b = Tensor::new("b", vec![3], vec![true, false, true]).unwrap();
    let s = Tensor::scalar("s", 0.5f64);
    let body = encode_predict_request(&req(vec![a, b, s]), RequestFormat::Columnar, None).unwrap();
    assert_eq!(
        body,
        r#"{"inputs":{"a":[[1,-2],[3,4]],"b":[true,false,true],"s":0.5}}"#
    );
}

#[test]
fn row_bodies_split_the_first_dimension() {
    let a = Tensor::new("a", vec![2, 2], vec![1.0f32, 2.0, 3.0, 4.0]).unwrap();
    let b = Tensor::from_strings("b", vec![2], ["x", "y"]).unwrap();
    let body = encode_predict_request(&req(vec![a, b]), RequestFormat::Row, Some("sig")).unwrap();
    assert_eq!(
        body,
        r#"{"signature_name":"sig","instances":[{"a":[1.0,2.0],"b":"x"},{"a":[3.0,4.0],"b":"y"}]}"#
    );
    let e = encode_predict_request(&req(vec![]), RequestFormat::Row, None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let twice = vec![
        Tensor::from_vec("a", vec![1u8]),
        Tensor::from_vec("a", vec![2u8]),
    ];
    let e = encode_predict_request(&req(twice), RequestFormat::Columnar, None).unwrap_err();
    assert!(e.message().contains("given twice"), "{e}");
}

#[test]
fn values_use_tf_json_forms() {
    let f = Tensor::new("f", vec![4], vec![f32::NAN, f32::NEG_INFINITY, 1e20, -0.0]).unwrap();
    let h = Tensor::new("h", vec![1], vec![f16::from_f32(1.5)]).unwrap();
    let u = Tensor::new("u", vec![1], vec![u64::MAX]).unwrap();
    let bin = Tensor::from_byte_elements("raw", vec![2], [&b"\xff\x00"[..], b"ok"]).unwrap();
    let named = Tensor::from_byte_elements("img_bytes", vec![1], [&b"ok"[..]]).unwrap();
    let quote = Tensor::from_strings("q", vec![1], ["a\"b\n"]).unwrap();
    let body = encode_predict_request(
        &req(vec![f, h, u, bin, named, quote]),
        RequestFormat::Columnar,
        None,
    )
    .unwrap();
    assert_eq!(
        body,
        r#"{"inputs":{"f":[NaN,-Infinity,1e20,-0.0],"h":[1.5],"u":[18446744073709551615],"raw":[{"b64":"/wA="},"ok"],"img_bytes":[{"b64":"b2s="}],"q":["a\"b\n"]}}"#
    );
}

#[test]
fn examples_keep_float_and_int_apart() {
    let mut ex = Example::new();
    ex.insert("f".into(), Feature::Float(vec![1.0]));
    ex.insert("i".into(), Feature::Int64(vec![1, 2]));
    ex.insert(
        "s".into(),
        Feature::Bytes(vec![Bytes::from("t"), Bytes::from_static(b"\xfe")]),
    );
    let mut ctx = Example::new();
    ctx.insert("c".into(), Feature::Float(vec![0.25, 2.0]));
    let body = encode_examples(&Examples::new(vec![ex]).with_context(ctx), Some("cls")).unwrap();
    assert_eq!(
        body,
        r#"{"signature_name":"cls","context":{"c":[0.25,2.0]},"examples":[{"f":1.0,"i":[1,2],"s":["t",{"b64":"/g=="}]}]}"#
    );
    assert!(encode_examples(&Examples::default(), None).is_err());
}

#[test]
fn outputs_are_typed_by_hints_or_by_value() {
    let body = br#"{"outputs": {"a": [[1, 2], [3, 4]], "b": [1.5, NaN], "c": ["x", {"b64": "/w=="}], "d": [true], "e": [1, 2.5]}}"#;
    let mut hints = BTreeMap::new();
    hints.insert("a".to_owned(), DataType::Int16);
    let r = decode_predict_response(body, &hints, &InferRequest::new()).unwrap();
    let a = r.require_output("a").unwrap();
    assert_eq!(a.shape(), &[2, 2]);
    assert_eq!(a.as_slice::<i16>().unwrap(), &[1, 2, 3, 4]);
    let b = r.require_output("b").unwrap();
    assert_eq!(b.datatype(), DataType::Fp32);
    assert!(b.as_slice::<f32>().unwrap()[1].is_nan());
    let c = r.require_output("c").unwrap().to_byte_elements().unwrap();
    assert_eq!(c, vec![Bytes::from("x"), Bytes::from_static(b"\xff")]);
    assert_eq!(r.require_output("d").unwrap().datatype(), DataType::Bool);
    assert_eq!(r.require_output("e").unwrap().datatype(), DataType::Fp32);

    // Integers without hints are INT64; beyond i64 UINT64.
    let r = decode_predict_response(
        br#"{"outputs": [1, 18446744073709551615]}"#,
        &BTreeMap::new(),
        &InferRequest::new(),
    )
    .unwrap();
    assert_eq!(r.outputs[0].name(), "outputs");
    assert_eq!(r.outputs[0].datatype(), DataType::Uint64);
    let r = decode_predict_response(
        br#"{"outputs": 7}"#,
        &BTreeMap::new(),
        &InferRequest::new().with_output("y"),
    )
    .unwrap();
    assert_eq!(r.outputs[0].name(), "y");
    assert_eq!(r.outputs[0].shape(), &[] as &[usize]);
}

#[test]
fn row_responses_stack_rows() {
    let body = br#"{"predictions": [{"p": [0.5, 0.5], "k": 1}, {"p": [0.25, 0.75], "k": 0}]}"#;
    let r = decode_predict_response(body, &BTreeMap::new(), &InferRequest::new()).unwrap();
    let p = r.require_output("p").unwrap();
    assert_eq!(p.shape(), &[2, 2]);
    assert_eq!(
        r.require_output("k").unwrap().to_vec::<i64>().unwrap(),
        vec![1, 0]
    );
    let mut hints = BTreeMap::new();
    hints.insert("scores".to_owned(), DataType::Fp64);
    let r = decode_predict_response(
        br#"{"predictions": [[1.0], [2.0]]}"#,
        &hints,
        &InferRequest::new(),
    )
    .unwrap();
    assert_eq!(r.outputs[0].name(), "scores");
    assert_eq!(r.outputs[0].as_slice::<f64>().unwrap(), &[1.0, 2.0]);
    let e = decode_predict_response(
        br#"{"predictions": [{"p": 1}, {"q": 2}]}"#,
        &BTreeMap::new(),
        &InferRequest::new(),
    )
    .unwrap_err();
    assert_eq!(e.path(), Some("predictions[1]"));
}

#[test]
fn malformed_outputs_are_protocol_errors_with_paths() {
    let none = BTreeMap::new();
    let r = InferRequest::new();
    for (body, path) in [
        (
            &br#"{"outputs": {"a": [[1, 2], [3]]}}"#[..],
            Some("outputs.a"),
        ),
        (br#"{"outputs": {"a": [[1], 2]}}"#, Some("outputs.a")),
        (br#"{"outputs": {"a": [1, "x"]}}"#, Some("outputs.a")),
        (br#"{"outputs": {"a": [{"b64": "!!"}]}}"#, Some("outputs.a")),
        (br#"{"predictions": 3}"#, Some("predictions")),
        (br#"{"result": []}"#, None),
        (b"<html>", None),
    ] {
        let e = decode_predict_response(body, &none, &r).unwrap_err();
        assert_eq!(
            e.kind(),
            ErrorKind::Protocol,
            "{}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(e.path(), path, "{e}");
    }
    let mut hints = BTreeMap::new();
    hints.insert("a".to_owned(), DataType::Int8);
    let e = decode_predict_response(br#"{"outputs": {"a": [300]}}"#, &hints, &r).unwrap_err();
    assert!(e.message().contains("does not fit INT8"), "{e}");
    let e = decode_predict_response(br#"{"outputs": {"a": [1.5]}}"#, &hints, &r).unwrap_err();
    assert!(e.message().contains("non-integer"), "{e}");
}

#[test]
fn results_status_and_metadata_decode() {
    let c = decode_classify_response(br#"{"results": [[["cat", 0.75], ["", 0.25]], []]}"#).unwrap();
    assert_eq!(
        c[0][0],
        Class {
            label: "cat".into(),
            score: 0.75
        }
    );
    assert!(c[1].is_empty());
    assert!(decode_classify_response(br#"{"result": []}"#).is_err());
    assert!(decode_classify_response(br#"{"results": [[[1, 0.5]]]}"#).is_err());
    assert_eq!(
        decode_regress_response(br#"{"results": [1, 2.5, NaN]}"#).unwrap()[1],
        2.5
    );

    let s = decode_status(br#"{"model_version_status": [{"version": "123", "state": "LOADING", "status": {"error_code": "OK", "error_message": ""}}]}"#).unwrap();
    assert_eq!(s[0].version, 123);
    assert_eq!(s[0].state, ModelState::Loading);
    assert!(decode_status(br#"{"model_version_status": [{"version": "x"}]}"#).is_err());

    let md = decode_metadata(br#"{"model_spec": {"name": "m", "signature_name": "", "version": "4"},
      "metadata": {"signature_def": {"signature_def": {
        "serving_default": {"method_name": "tensorflow/serving/predict",
          "inputs": {"x": {"dtype": "DT_FLOAT", "tensor_shape": {"dim": [{"size": "-1", "name": ""}, {"size": "3"}], "unknown_rank": false}, "name": "x:0"}},
          "outputs": {"y": {"dtype": "DT_COMPLEX64", "tensor_shape": {"unknown_rank": true}, "name": "y:0"}}},
        "other": {"method_name": "tensorflow/serving/classify", "inputs": {}, "outputs": {}}}}}}"#).unwrap();
    assert_eq!(md.version, Some(4));
    let common = md.to_common(None).unwrap();
    assert_eq!(common.inputs[0].shape, vec![-1, 3]);
    assert!(common.outputs.is_empty());
    assert!(
        common.properties["outputs_undeclared"].contains("DT_COMPLEX64"),
        "{common:?}"
    );
    assert_eq!(common.properties["signatures"], "other,serving_default");
    assert_eq!(
        md.to_common(Some("other")).unwrap().properties["method_name"],
        "tensorflow/serving/classify"
    );
    assert_eq!(
        md.to_common(Some("nope")).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(md.output_types(None).is_empty());
    assert!(decode_metadata(br#"{"model_spec": {}}"#).is_err());
}

#[test]
fn dtype_tables_agree() {
    for (n, name, d) in TF_DTYPES {
        assert_eq!(tf_dtype(d), n);
        assert_eq!(from_tf_dtype(n), Some(d));
        assert_eq!(from_tf_dtype_name(name), Some(d));
    }
    assert_eq!(from_tf_dtype(8), None);
    for d in DataType::ALL {
        assert_ne!(tf_dtype(d), 0, "{d}");
    }
}
