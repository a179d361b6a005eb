use std::io::Read as _;

use inferlink_core::kit::ConnectorConfig;
use inferlink_core::{DataType, InferRequest, Parameter, Tensor};
use inferlink_oip::TensorEncoding;
use serde_json::json;

use super::*;
use crate::{Sequence, classification};

fn request(sizes: &[usize]) -> InferRequest {
    let mut r = InferRequest::new();
    for (i, n) in sizes.iter().enumerate() {
        r = r.with_input(Tensor::from_vec(format!("in{i}"), vec![1.0f32; *n]));
    }
    r
}

#[test]
fn threshold_picks_binary_per_input() {
    let r = request(&[4, 1024, 1025]);
    // 4096 bytes: 1024 FP32 elements reach it, 4 do not.
    assert_eq!(
        binary_inputs(&r, TensorMode::Threshold(4096)),
        vec![false, true, true]
    );
    assert_eq!(
        binary_inputs(&r, TensorMode::Threshold(0)),
        vec![true, true, true]
    );
    assert_eq!(
        binary_inputs(&r, TensorMode::Fixed(TensorEncoding::Json)),
        vec![false, false, false]
    );
    let body = encode_infer_request(&r, TensorMode::Threshold(4096)).unwrap();
    let json_len = body.json_len.expect("binary section present");
    let header: serde_json::Value = serde_json::from_slice(&body.to_bytes()[..json_len]).unwrap();
    assert_eq!(header["inputs"][0]["data"].as_array().unwrap().len(), 4);
    assert_eq!(header["inputs"][1]["parameters"]["binary_data_size"], 4096);
    assert_eq!(header["parameters"]["binary_data_output"], true);
    assert_eq!(body.len(), json_len + 4096 + 4100);
}

#[test]
fn small_requests_stay_json_and_half_floats_go_binary() {
    let body = encode_infer_request(&request(&[3]), TensorMode::Threshold(4096)).unwrap();
    assert_eq!(body.json_len, None);
    let header: serde_json::Value = serde_json::from_slice(&body.to_bytes()).unwrap();
    assert!(
        header
            .get("parameters")
            .is_none_or(|p| p.get("binary_data_output").is_none())
    );
    let half =
        InferRequest::new().with_input(Tensor::fp16_from_f32("h", vec![2], &[1.0, 2.0]).unwrap());
    assert_eq!(
        binary_inputs(&half, TensorMode::Threshold(4096)),
        vec![true]
    );
}

#[test]
fn compression_round_trips() {
    let body =
        br#"{"inputs":[{"name":"x","shape":[3],"datatype":"FP32","data":[1,2,3]}]}"#.repeat(20);
    assert!(compress(&body, Compression::None).unwrap().is_none());
    for compression in [Compression::Gzip, Compression::Deflate] {
        let packed = compress(&body, compression).unwrap().unwrap();
        let mut out = Vec::new();
        match compression {
            Compression::Gzip => flate2::read::GzDecoder::new(&packed[..]).read_to_end(&mut out),
            _ => flate2::read::ZlibDecoder::new(&packed[..]).read_to_end(&mut out),
        }
        .unwrap();
        assert_eq!(out, body, "{compression}");
        assert!(packed.len() < body.len(), "{compression}");
    }
}

#[test]
fn sse_events_split_across_chunks() {
    let mut p = SseParser::new();
    assert!(p.push(b"data: {\"a\":").unwrap().is_empty());
    let ev = p
        .push(b"1}\n\n: comment\r\ndata: x\r\ndata: y\r\n\r\ndata: tail")
        .unwrap();
    assert_eq!(
        ev,
        vec![
            Bytes::from_static(b"{\"a\":1}"),
            Bytes::from_static(b"x\ny")
        ]
    );
    assert_eq!(p.finish(), Some(Bytes::from_static(b"tail")));
    assert_eq!(p.finish(), None);
}

#[test]
fn sse_long_lines_in_small_chunks_keep_their_bytes() {
    // The parser remembers how far it searched for a line end, so a long line
    // in one-byte chunks is scanned once; every byte must still arrive once.
    let line: Vec<u8> = b"data: "
        .iter()
        .copied()
        .chain((0..20_000).map(|i| b'a' + (i % 26) as u8))
        .collect();
    let mut p = SseParser::new();
    let mut events = Vec::new();
    for chunk in line
        .chunks(1)
        .chain([&b"\r\n"[..], b"data: z\n", b"\n", b"data: w"])
    {
        events.extend(p.push(chunk).unwrap());
    }
    assert_eq!(events.len(), 1);
    assert_eq!(&events[0][..], [&line[6..], b"\nz"].concat().as_slice());
    assert_eq!(p.finish(), Some(Bytes::from_static(b"w")));
}

#[test]
fn sse_event_size_is_bounded() {
    let mut p = SseParser::new();
    let big = vec![b'x'; MAX_EVENT_BYTES + 1];
    let err = p.push(&big).unwrap_err();
    assert_eq!(err.kind(), inferlink_core::ErrorKind::Protocol);
}

#[test]
fn generate_events_become_responses_and_errors() {
    let r = GenerateResponse::from_json(
        br#"{"INDEX":2,"model_name":"tokens","model_version":"1","text_output":"ccc","score":0.5,"flags":[true,false]}"#,
    )
    .unwrap();
    assert_eq!(r.text_output(), Some("ccc"));
    assert_eq!(r.model_version.as_deref(), Some("1"));
    let t = r.into_infer_response().unwrap();
    assert_eq!(t.model_name, "tokens");
    assert_eq!(
        t.require_output("INDEX").unwrap().to_vec::<i64>().unwrap(),
        vec![2]
    );
    assert_eq!(
        t.require_output("text_output")
            .unwrap()
            .to_strings()
            .unwrap(),
        vec!["ccc"]
    );
    assert_eq!(
        t.require_output("score").unwrap().datatype(),
        DataType::Fp64
    );
    assert_eq!(
        t.require_output("flags").unwrap().to_vec::<bool>().unwrap(),
        vec![true, false]
    );

    let err =
        GenerateResponse::from_json(br#"{"error":"Request for unknown model: 'x' is not found"}"#)
            .unwrap_err();
    assert_eq!(err.kind(), inferlink_core::ErrorKind::NotFound);
    assert!(err.vendor_message().unwrap().contains("unknown model"));
    assert_eq!(
        GenerateResponse::from_json(b"[1]").unwrap_err().kind(),
        inferlink_core::ErrorKind::Protocol
    );
    let mixed = GenerateResponse::from_json(br#"{"m":[1,"a"]}"#).unwrap();
    assert_eq!(
        mixed.into_infer_response().unwrap_err().kind(),
        inferlink_core::ErrorKind::Protocol
    );
}

#[test]
fn infer_requests_map_to_generate_fields() {
    let r = InferRequest::new()
        .with_id("r1")
        .with_input(Tensor::from_strings("text_input", vec![1], vec!["hi there"]).unwrap())
        .with_input(Tensor::from_vec("max_tokens", vec![5i32]))
        .with_input(Tensor::from_vec("weights", vec![0.5f32, 1.5]))
        .with_parameter("temperature", 0.25f64);
    let g = GenerateRequest::from_infer(&r).unwrap();
    let body: serde_json::Value = serde_json::from_slice(&g.to_json().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"id":"r1","text_input":"hi there","max_tokens":5,"weights":[0.5,1.5],"parameters":{"temperature":0.25}})
    );
    let bad = InferRequest::new().with_input(
        Tensor::from_byte_elements("text_input", vec![1], vec![Bytes::from_static(&[0xff])])
            .unwrap(),
    );
    let err = GenerateRequest::from_infer(&bad).unwrap_err();
    assert_eq!(err.kind(), inferlink_core::ErrorKind::InvalidInput);
    assert_eq!(err.path(), Some("inputs[0]"));
}

#[test]
fn repository_statistics_and_config_decode() {
    let idx = decode_repository_index(
        br#"[{"name":"repo_identity"},{"name":"m","version":"1","state":"READY","reason":""}]"#,
    )
    .unwrap();
    assert_eq!(idx[0].state, None);
    assert_eq!(idx[1].state.as_deref(), Some("READY"));
    assert_eq!(idx[1].reason, None);
    assert_eq!(
        decode_repository_index(b"{}").unwrap_err().kind(),
        inferlink_core::ErrorKind::Protocol
    );

    let stats = decode_statistics(
        br#"{"model_stats":[{"name":"doubler","version":"1","last_inference":17,"inference_count":4,"execution_count":3,
            "inference_stats":{"success":{"count":4,"ns":100}},"response_stats":{},"batch_stats":[],"memory_usage":[]}]}"#,
    )
    .unwrap();
    assert_eq!(stats[0].inference_count, 4);
    assert_eq!(
        stats[0].inference_stats.success,
        DurationStat { count: 4, ns: 100 }
    );
    assert_eq!(stats[0].inference_stats.fail, DurationStat::default());

    let c = decode_model_config(
        br#"{"name":"tokens","platform":"","backend":"python","max_batch_size":0,
            "input":[{"name":"text_input","data_type":"TYPE_STRING","dims":[1]}],
            "output":[{"name":"text_output","data_type":"TYPE_STRING","dims":[1]}],
            "model_transaction_policy":{"decoupled":true}}"#,
    )
    .unwrap();
    assert!(c.decoupled);
    assert_eq!(c.stateful, Some(false));
    assert_eq!(c.inputs[0].data_type, "TYPE_STRING");
    assert!(c.json.is_some());
}

#[test]
fn sequence_and_classification_parameters() {
    let r = Sequence::new(42).start().apply(InferRequest::new());
    assert_eq!(r.parameters.get("sequence_id"), Some(&Parameter::Int(42)));
    assert_eq!(
        r.parameters.get("sequence_start"),
        Some(&Parameter::Bool(true))
    );
    assert_eq!(
        r.parameters.get("sequence_end"),
        Some(&Parameter::Bool(false))
    );
    let r = Sequence::new(u64::MAX).end().apply(InferRequest::new());
    assert_eq!(
        r.parameters.get("sequence_id"),
        Some(&Parameter::Uint(u64::MAX))
    );
    let r = Sequence::named("chat-7").apply(InferRequest::new());
    assert_eq!(
        r.parameters.get("sequence_id"),
        Some(&Parameter::String("chat-7".into()))
    );

    let r = classification(InferRequest::new().with_output("OUT"), "OUT", 3);
    assert_eq!(r.outputs.len(), 1);
    assert_eq!(
        r.outputs[0].parameters.get("classification"),
        Some(&Parameter::Int(3))
    );
}

#[test]
fn config_keys() {
    use crate::config::{TritonConfig, keys};
    use inferlink_core::ConfigValue;
    let plain = |k: &str, v: &str| (k.to_owned(), ConfigValue::Plain(v.to_owned()));
    let c = TritonConfig::new("http://127.0.0.1:8000")
        .apply_values(vec![
            plain(keys::BINARY_THRESHOLD_BYTES, "100"),
            plain(keys::REQUEST_COMPRESSION, "gzip"),
            plain(keys::ACCESS_TOKEN, "tok-123"),
        ])
        .unwrap();
    assert_eq!(c.tensor_mode, TensorMode::Threshold(100));
    assert_eq!(c.compression, Compression::Gzip);
    assert!(!format!("{c:?}").contains("tok-123"));
    let oip = c.oip_with_token();
    assert!(
        oip.transport
            .headers
            .iter()
            .any(|h| h.name == "triton-access-token")
    );

    let c = TritonConfig::new("grpc://127.0.0.1:8001")
        .apply_values(vec![
            plain(keys::ACCESS_TOKEN, "t"),
            plain("tensor_encoding", "json"),
        ])
        .unwrap();
    assert_eq!(c.tensor_mode, TensorMode::Fixed(TensorEncoding::Json));
    assert!(
        c.oip_with_token()
            .transport
            .headers
            .iter()
            .any(|h| h.name == "triton-grpc-protocol-triton-access-token")
    );

    for (k, v) in [
        (keys::BINARY_THRESHOLD_BYTES, "big"),
        (keys::REQUEST_COMPRESSION, "brotli"),
    ] {
        let err = TritonConfig::new("http://h")
            .apply_values(vec![plain(k, v)])
            .unwrap_err();
        assert_eq!(err.kind(), inferlink_core::ErrorKind::Config);
        assert_eq!(err.path(), Some(k));
    }
    let err = TritonConfig::new("http://h")
        .apply_values(vec![
            plain("tensor_encoding", "binary"),
            plain(keys::BINARY_THRESHOLD_BYTES, "1"),
        ])
        .unwrap_err();
    assert_eq!(err.kind(), inferlink_core::ErrorKind::Config);
}

#[test]
fn prometheus_samples_with_labels_escapes_and_specials() {
    let text = "# HELP nv_inference_request_success Number of successful inference requests\n\
                # TYPE nv_inference_request_success counter\n\
                nv_inference_request_success{model=\"doubler\",version=\"1\"} 3\n\
                \n\
                nv_gpu_utilization NaN\n\
                odd{path=\"a\\\\b\",quote=\"say \\\"hi\\\"\",nl=\"x\\ny\",} +Inf 1700000000\n";
    let samples = parse_metrics(text).unwrap();
    assert_eq!(samples.len(), 3);
    assert_eq!(samples[0].name, "nv_inference_request_success");
    assert_eq!(samples[0].label("model"), Some("doubler"));
    assert_eq!(samples[0].label("version"), Some("1"));
    assert_eq!(samples[0].value, 3.0);
    assert!(samples[1].labels.is_empty() && samples[1].value.is_nan());
    assert_eq!(samples[2].label("path"), Some("a\\b"));
    assert_eq!(samples[2].label("quote"), Some("say \"hi\""));
    assert_eq!(samples[2].label("nl"), Some("x\ny"));
    assert_eq!(samples[2].value, f64::INFINITY);
}

#[test]
fn bad_metric_lines_name_the_line() {
    for (text, line, why) in [
        ("ok 1\nno_value\n", 2, "no value"),
        ("x{model=\"a} 1\n", 1, "not closed"),
        ("x{model=a} 1\n", 1, "not quoted"),
        ("x{model=\"\\t\"} 1\n", 1, "bad escape"),
        ("x 1\n\n# c\nx{a=\"1\"} one\n", 4, "not a number"),
        ("x{a=\"1\"\n", 1, "not closed"),
    ] {
        let e = parse_metrics(text).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol, "{text:?}");
        assert!(
            e.to_string().contains(&format!("line {line}")),
            "{text:?}: {e}"
        );
        assert!(e.to_string().contains(why), "{text:?}: {e}");
    }
}

#[test]
fn metrics_url_is_checked_when_read() {
    use crate::config::TritonConfig;
    use inferlink_core::ConfigValue;
    let plain = |k: &str, v: &str| (k.to_owned(), ConfigValue::Plain(v.to_owned()));
    let c = TritonConfig::new("http://127.0.0.1:8000")
        .apply_values([plain("metrics_url", "http://127.0.0.1:8002")])
        .unwrap();
    assert_eq!(c.metrics_url.as_deref(), Some("http://127.0.0.1:8002"));
    for bad in ["ftp://127.0.0.1:8002", "not a url"] {
        let e = TritonConfig::new("http://127.0.0.1:8000")
            .apply_values([plain("metrics_url", bad)])
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{bad}");
        assert!(e.to_string().contains("metrics_url"), "{bad}: {e}");
    }
}
