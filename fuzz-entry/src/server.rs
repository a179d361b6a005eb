//! Decoders of data from a server: one entry point per connector family.

use std::collections::BTreeMap;

use bytes::Bytes;
use inferlink::{DataType, InferRequest, ModelRef, Tensor};
use prost::Message as _;

use crate::{assert_bounded, datatype_of, split_selector};

/// A request with one input of `datatype` (what the answer is decoded against).
fn request_with(datatype: Option<DataType>) -> InferRequest {
    let input = match datatype.unwrap_or(DataType::Fp32) {
        DataType::Bytes => Tensor::from_strings("input-0", vec![1], vec!["x"]),
        DataType::Bool => Tensor::new("input-0", vec![1], vec![true]),
        DataType::Int64 => Tensor::new("input-0", vec![1], vec![1i64]),
        DataType::Uint8 => Tensor::new("input-0", vec![1], vec![1u8]),
        DataType::Fp64 => Tensor::new("input-0", vec![1], vec![1f64]),
        _ => Tensor::new("input-0", vec![1], vec![1f32]),
    };
    InferRequest::new().with_input(input.expect("a valid one-element tensor"))
}

/// Chunk sizes 1–64 from `selector`: how a stream decoder is fed.
fn chunk_size(selector: u8) -> usize {
    usize::from(selector % 64) + 1
}

/// OIP (KServe V2, Triton) REST: an inference answer without binary data, and
/// the JSON metadata, model list and error bodies, all from the same bytes.
pub fn oip_json(data: &[u8]) {
    use inferlink_oip::codec;
    if let Ok(response) = codec::decode_infer_response(Bytes::copy_from_slice(data), None) {
        assert_bounded(&response.outputs, data.len(), "oip_json");
    }
    let _ = codec::decode_server_metadata(data);
    let _ = codec::decode_model_metadata(data);
    let _ = codec::decode_model_list(data);
    let _ = codec::error_message(data);
}

/// OIP REST with binary tensor data: the first line is the
/// `Inference-Header-Content-Length` value, the rest the body.
pub fn oip_binary(data: &[u8]) {
    use inferlink_oip::codec;
    let (header, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &data[data.len()..]),
    };
    let Ok(json_len) = codec::parse_header_length(Some(header)) else {
        return;
    };
    if let Ok(response) = codec::decode_infer_response(Bytes::copy_from_slice(body), json_len) {
        assert_bounded(&response.outputs, body.len(), "oip_binary");
    }
}

/// OIP gRPC: a `ModelInferResponse` (even selector) or a
/// `ModelMetadataResponse` (odd) in protobuf bytes.
pub fn oip_grpc(data: &[u8]) {
    use inferlink_oip::{grpc, proto};
    let (selector, rest) = split_selector(data);
    if selector % 2 == 0 {
        let Ok(message) = proto::ModelInferResponse::decode(rest) else {
            return;
        };
        if let Ok(response) = grpc::infer_response_from_proto(message) {
            assert_bounded(&response.outputs, rest.len(), "oip_grpc");
        }
    } else if let Ok(message) = proto::ModelMetadataResponse::decode(rest) {
        let _ = grpc::model_metadata_from_proto(message);
    }
}

/// KServe V1: a `{"predictions": …}` answer, with a configured datatype and
/// an input hint chosen by the selector.
pub fn kserve_v1(data: &[u8]) {
    use inferlink_kserve::codec::{DecodeOptions, decode_predictions};
    let (selector, body) = split_selector(data);
    let hint = datatype_of(selector >> 4).unwrap_or(DataType::Fp32);
    let inputs = [("output-0", hint), ("x", DataType::Int64)];
    let options = DecodeOptions {
        output_name: "output-0",
        datatype: datatype_of(selector & 0x0f).filter(|_| selector & 0x80 != 0),
        inputs: &inputs[..1 + usize::from(selector & 0x40 != 0)],
    };
    if let Ok(tensors) = decode_predictions(body, &options) {
        assert_bounded(&tensors, body.len(), "kserve_v1");
    }
}

/// Seldon Core V1: a `SeldonMessage` answer, and an `ndarray` value on its own.
pub fn seldon(data: &[u8]) {
    use inferlink_seldon::codec;
    if let Ok(message) = codec::decode_message(data)
        && let Ok(response) = codec::decode_response(message)
    {
        assert_bounded(&response.outputs, data.len(), "seldon");
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data)
        && let Ok(tensor) = codec::tensor_from_ndarray(&value)
    {
        assert_bounded(&[tensor], data.len(), "seldon ndarray");
    }
}

/// TF Serving REST: predict (row or columnar), classify, regress, model
/// status and metadata answers, chosen by the selector.
pub fn tfserving_rest(data: &[u8]) {
    use inferlink_tfserving::codec;
    let (selector, body) = split_selector(data);
    match selector % 5 {
        0 => {
            let mut hints = BTreeMap::new();
            if let Some(dt) = datatype_of(selector / 5) {
                hints.insert("scores".to_owned(), dt);
            }
            let mut request = request_with(None);
            if selector & 0x80 != 0 {
                request = request.with_output("scores");
            }
            if let Ok(response) = codec::decode_predict_response(body, &hints, &request) {
                assert_bounded(&response.outputs, body.len(), "tfserving predict");
            }
        }
        1 => {
            let _ = codec::decode_classify_response(body);
        }
        2 => {
            let _ = codec::decode_regress_response(body);
        }
        3 => {
            let _ = codec::decode_status(body);
        }
        _ => {
            if let Ok(metadata) = codec::decode_metadata(body) {
                let _ = metadata.to_common(None);
                let _ = metadata.output_types(None);
            }
        }
    }
}

/// TF Serving gRPC: a `PredictResponse` (even selector) or a
/// `GetModelMetadataResponse` (odd) in protobuf bytes.
pub fn tfserving_grpc(data: &[u8]) {
    use inferlink_tfserving::grpc;
    use inferlink_tfserving::proto::tensorflow::serving as tfs;
    let (selector, rest) = split_selector(data);
    if selector % 2 == 0 {
        let Ok(message) = tfs::PredictResponse::decode(rest) else {
            return;
        };
        if let Ok((tensors, _version)) = grpc::predict_outputs(message) {
            // One repeated value may fill a tensor (TensorFlow's constant tensors), up to MAX_FILL.
            assert_bounded(&tensors, rest.len().max(grpc::MAX_FILL), "tfserving_grpc");
        }
    } else if let Ok(message) = tfs::GetModelMetadataResponse::decode(rest)
        && let Ok(metadata) = grpc::metadata_from_proto(message)
    {
        let _ = metadata.to_common(None);
    }
}

/// TorchServe: a `/predictions` answer or a KServe V1 answer (selector bit 0),
/// decoded against a request whose input datatype the selector chooses.
pub fn torchserve(data: &[u8]) {
    use inferlink_torchserve::codec;
    let (selector, body) = split_selector(data);
    let request = request_with(datatype_of(selector >> 1));
    let decoded = if selector % 2 == 0 {
        codec::decode_predictions(body, &request)
    } else {
        codec::decode_kserve_v1(body, &request)
    };
    if let Ok(response) = decoded {
        assert_bounded(&response.outputs, body.len(), "torchserve");
    }
}

/// SageMaker JSON answers, with a hint and a configured datatype chosen by the selector.
pub fn sagemaker_json(data: &[u8]) {
    use inferlink_sagemaker::codec;
    let (selector, body) = split_selector(data);
    let hint = datatype_of(selector & 0x0f);
    let forced = datatype_of(selector >> 4).filter(|_| selector & 0x80 != 0);
    if let Ok(response) = codec::decode_infer_response(body, hint, forced) {
        assert_bounded(&response.outputs, body.len(), "sagemaker_json");
    }
}

/// SageMaker response streams: AWS event-stream frames fed in chunks whose
/// size the selector chooses, and the whole input as one frame.
pub fn sagemaker_eventstream(data: &[u8]) {
    use inferlink_sagemaker::eventstream::{MessageDecoder, decode_message};
    let (selector, stream) = split_selector(data);
    let mut decoder = MessageDecoder::new();
    let mut payload_bytes = 0usize;
    'feed: for chunk in stream.chunks(chunk_size(selector)) {
        decoder.push(chunk);
        loop {
            match decoder.next_message() {
                Ok(Some(message)) => payload_bytes += message.payload.len(),
                Ok(None) => break,
                Err(_) => break 'feed,
            }
        }
    }
    assert!(
        payload_bytes <= stream.len(),
        "payloads larger than the stream"
    );
    let _ = decoder.finish();
    let _ = decode_message(Bytes::copy_from_slice(stream));
}

/// OMI: a `Run` answer (even selector, for 1–4 input items) read into
/// tensors, or a `Status` answer (odd), in protobuf bytes.
pub fn omi(data: &[u8]) {
    use inferlink_omi::codec;
    let (selector, rest) = split_selector(data);
    if selector % 2 == 1 {
        if let Ok(status) = codec::decode_status_bytes(rest) {
            let _ = status.to_model_metadata();
        }
        return;
    }
    let inputs = usize::from((selector >> 1) % 4) + 1;
    let Ok(outcome) = codec::decode_run_bytes(rest, inputs) else {
        return;
    };
    let Ok(files) = outcome.into_files() else {
        return;
    };
    let status = codec::decode_status_bytes(&[]).expect("an empty Status decodes");
    let request = InferRequest::new().with_input(
        Tensor::from_strings("text", vec![inputs], vec!["x"; inputs]).expect("a valid tensor"),
    );
    if let Ok(response) = codec::response_from_items(&ModelRef::new("m"), &status, &request, files)
    {
        assert_bounded(&response.outputs, rest.len(), "omi");
    }
}

/// Triton `generate_stream`: server-sent events fed in chunks whose size the
/// selector chooses, each event's data read as a generate answer.
pub fn triton_sse(data: &[u8]) {
    use inferlink_triton::GenerateResponse;
    use inferlink_triton::codec::SseParser;
    let (selector, stream) = split_selector(data);
    let mut parser = SseParser::new();
    let mut events = Vec::new();
    for chunk in stream.chunks(chunk_size(selector)) {
        match parser.push(chunk) {
            Ok(more) => events.extend(more),
            Err(_) => return,
        }
    }
    events.extend(parser.finish());
    for event in events {
        assert!(
            event.len() <= stream.len(),
            "an event larger than the stream"
        );
        if let Ok(answer) = GenerateResponse::from_json(&event) {
            let _ = answer.text_output();
            if let Ok(response) = answer.into_infer_response() {
                assert_bounded(&response.outputs, event.len(), "triton generate");
            }
        }
    }
}

/// Triton's Prometheus text metrics, repository index, statistics and model
/// configuration answers, chosen by the selector.
pub fn triton_metrics(data: &[u8]) {
    use inferlink_triton::codec;
    let (selector, body) = split_selector(data);
    match selector % 4 {
        0 => {
            if let Ok(samples) = codec::parse_metrics(&String::from_utf8_lossy(body)) {
                for sample in &samples {
                    let _ = sample.label("model");
                }
            }
        }
        1 => {
            let _ = codec::decode_repository_index(body);
        }
        2 => {
            let _ = codec::decode_statistics(body);
        }
        _ => {
            let _ = codec::decode_model_config(body);
        }
    }
}
