//! The gRPC side: the OIP calls, made on the shared
//! [`GrpcTransport`] (channel, metadata, retry loop and limits from the
//! transport settings), and the conversions between the generated messages
//! and the tensor model.
//!
//! Inputs always travel as `raw_input_contents` (one little-endian block per
//! input, shared without copies when the tensor is already raw). Outputs are
//! read from `raw_output_contents` without copying (prost decodes `bytes`
//! fields as [`Bytes`] slices of the received frame), or from the typed
//! `*_contents` fields when a server sends those.

use std::collections::BTreeMap;

use bytes::Bytes;
use inferlink_core::transport::GrpcTransport;
use inferlink_core::transport::retry::Idempotency;
use inferlink_core::{
    DataType, Error, InferRequest, InferResponse, ModelMetadata, ModelRef, Parameter, Parameters,
    Result, Tensor, TensorSpec,
};
use prost::Message as _;

use crate::codec::{ServerMetadata, raw_bytes};
use crate::error::protocol;
use crate::proto::{self, infer_parameter::ParameterChoice};

/// The method paths of `inference.GRPCInferenceService`.
pub mod paths {
    /// `ServerLive`.
    pub const SERVER_LIVE: &str = "/inference.GRPCInferenceService/ServerLive";
    /// `ServerReady`.
    pub const SERVER_READY: &str = "/inference.GRPCInferenceService/ServerReady";
    /// `ModelReady`.
    pub const MODEL_READY: &str = "/inference.GRPCInferenceService/ModelReady";
    /// `ServerMetadata`.
    pub const SERVER_METADATA: &str = "/inference.GRPCInferenceService/ServerMetadata";
    /// `ModelMetadata`.
    pub const MODEL_METADATA: &str = "/inference.GRPCInferenceService/ModelMetadata";
    /// `ModelInfer`.
    pub const MODEL_INFER: &str = "/inference.GRPCInferenceService/ModelInfer";
}

/// The OIP calls, made on the shared gRPC transport.
#[derive(Clone, Debug)]
pub(crate) struct GrpcWire {
    pub(crate) transport: GrpcTransport,
}

impl GrpcWire {
    pub(crate) async fn server_live(&self) -> Result<bool> {
        let r: proto::ServerLiveResponse = self
            .transport
            .unary(
                paths::SERVER_LIVE,
                proto::ServerLiveRequest {},
                Idempotency::Safe,
                None,
            )
            .await?;
        Ok(r.live)
    }

    pub(crate) async fn server_ready(&self) -> Result<bool> {
        let r: proto::ServerReadyResponse = self
            .transport
            .unary(
                paths::SERVER_READY,
                proto::ServerReadyRequest {},
                Idempotency::Safe,
                None,
            )
            .await?;
        Ok(r.ready)
    }

    pub(crate) async fn model_ready(&self, model: &ModelRef) -> Result<bool> {
        let request = proto::ModelReadyRequest {
            name: model.name.clone(),
            version: model.version.clone().unwrap_or_default(),
        };
        let r: proto::ModelReadyResponse = self
            .transport
            .unary(paths::MODEL_READY, request, Idempotency::Safe, Some(model))
            .await?;
        Ok(r.ready)
    }

    pub(crate) async fn server_metadata(&self) -> Result<ServerMetadata> {
        let r: proto::ServerMetadataResponse = self
            .transport
            .unary(
                paths::SERVER_METADATA,
                proto::ServerMetadataRequest {},
                Idempotency::Safe,
                None,
            )
            .await?;
        Ok(ServerMetadata {
            name: r.name,
            version: r.version,
            extensions: r.extensions,
        })
    }

    pub(crate) async fn model_metadata(&self, model: &ModelRef) -> Result<ModelMetadata> {
        let request = proto::ModelMetadataRequest {
            name: model.name.clone(),
            version: model.version.clone().unwrap_or_default(),
        };
        let r = self
            .transport
            .unary(
                paths::MODEL_METADATA,
                request,
                Idempotency::Safe,
                Some(model),
            )
            .await?;
        model_metadata_from_proto(r).map_err(|e| self.transport.decorate(e, Some(model)))
    }

    pub(crate) async fn infer(
        &self,
        model: &ModelRef,
        request: InferRequest,
    ) -> Result<InferResponse> {
        let idempotency = Idempotency::marked(request.idempotent);
        let message = infer_request_into_proto(model, request)
            .map_err(|e| self.transport.decorate(e, Some(model)))?;
        let r = self
            .transport
            .unary(paths::MODEL_INFER, message, idempotency, Some(model))
            .await?;
        infer_response_from_proto(r).map_err(|e| self.transport.decorate(e, Some(model)))
    }
}

fn parameter_to_proto(p: &Parameter) -> proto::InferParameter {
    let choice = match p {
        Parameter::Bool(b) => ParameterChoice::BoolParam(*b),
        Parameter::Int(i) => ParameterChoice::Int64Param(*i),
        Parameter::Uint(u) => ParameterChoice::Uint64Param(*u),
        Parameter::Double(d) => ParameterChoice::DoubleParam(*d),
        Parameter::String(s) => ParameterChoice::StringParam(s.clone()),
    };
    proto::InferParameter {
        parameter_choice: Some(choice),
    }
}

fn parameters_to_proto(p: &Parameters) -> std::collections::HashMap<String, proto::InferParameter> {
    p.iter()
        .map(|(k, v)| (k.clone(), parameter_to_proto(v)))
        .collect()
}

fn parameter_from_proto(p: &proto::InferParameter) -> Option<Parameter> {
    Some(match p.parameter_choice.as_ref()? {
        ParameterChoice::BoolParam(b) => Parameter::Bool(*b),
        ParameterChoice::Int64Param(i) => Parameter::Int(*i),
        ParameterChoice::StringParam(s) => Parameter::String(s.clone()),
        ParameterChoice::DoubleParam(d) => Parameter::Double(*d),
        ParameterChoice::Uint64Param(u) => Parameter::Uint(*u),
    })
}

fn parameters_from_proto(
    p: &std::collections::HashMap<String, proto::InferParameter>,
) -> Parameters {
    p.iter()
        .filter_map(|(k, v)| Some((k.clone(), parameter_from_proto(v)?)))
        .collect()
}

fn shape_to_proto(shape: &[usize]) -> Vec<i64> {
    shape.iter().map(|&d| d as i64).collect()
}

/// The `ModelInferRequest` of a request: every input as raw contents.
pub fn infer_request_to_proto(
    model: &ModelRef,
    request: &InferRequest,
) -> Result<proto::ModelInferRequest> {
    let mut inputs = Vec::with_capacity(request.inputs.len());
    let mut raw = Vec::with_capacity(request.inputs.len());
    for t in &request.inputs {
        inputs.push(proto::model_infer_request::InferInputTensor {
            name: t.name().to_owned(),
            datatype: t.datatype().as_str().to_owned(),
            shape: shape_to_proto(t.shape()),
            parameters: parameters_to_proto(t.parameters()),
            contents: None,
        });
        raw.push(raw_bytes(t));
    }
    Ok(proto::ModelInferRequest {
        model_name: model.name.clone(),
        model_version: model.version.clone().unwrap_or_default(),
        id: request.id.clone().unwrap_or_default(),
        parameters: parameters_to_proto(&request.parameters),
        inputs,
        outputs: request
            .outputs
            .iter()
            .map(|o| proto::model_infer_request::InferRequestedOutputTensor {
                name: o.name.clone(),
                parameters: parameters_to_proto(&o.parameters),
            })
            .collect(),
        raw_input_contents: raw,
    })
}

/// [`infer_request_to_proto`] taking the request: each input's data becomes
/// its raw contents without a copy where [`Tensor::into_raw`] allows.
pub fn infer_request_into_proto(
    model: &ModelRef,
    mut request: InferRequest,
) -> Result<proto::ModelInferRequest> {
    let inputs = std::mem::take(&mut request.inputs);
    let mut message = infer_request_to_proto(model, &request)?;
    message.inputs.reserve(inputs.len());
    message.raw_input_contents.reserve(inputs.len());
    for (i, t) in inputs.into_iter().enumerate() {
        message
            .inputs
            .push(proto::model_infer_request::InferInputTensor {
                name: t.name().to_owned(),
                datatype: t.datatype().as_str().to_owned(),
                shape: shape_to_proto(t.shape()),
                parameters: parameters_to_proto(t.parameters()),
                contents: None,
            });
        let name = t.name().to_owned();
        message.raw_input_contents.push(t.into_raw().map_err(|e| {
            Error::invalid_at(format!("inputs[{i}]"), e.message().to_owned())
                .with_context("tensor", name)
        })?);
    }
    Ok(message)
}

/// The tensors of a `ModelInferResponse`: raw contents shared without
/// copying, typed contents converted.
///
/// Errors: [`ErrorKind::Protocol`](inferlink_core::ErrorKind::Protocol) naming the output (path `outputs[i]`)
/// for a negative dimension, an unknown datatype, a raw block count that
/// is not one per output, or data that does not fit the shape.
pub fn infer_response_from_proto(r: proto::ModelInferResponse) -> Result<InferResponse> {
    let raw = r.raw_output_contents;
    if !raw.is_empty() && raw.len() != r.outputs.len() {
        return Err(protocol(format!(
            "the response has {} raw_output_contents for {} outputs",
            raw.len(),
            r.outputs.len()
        )));
    }
    let mut outputs = Vec::with_capacity(r.outputs.len());
    for (i, o) in r.outputs.into_iter().enumerate() {
        let name = o.name.clone();
        let tensor = output_from_proto(o, raw.get(i).cloned()).map_err(|e| {
            e.with_path(format!("outputs[{i}]"))
                .with_context("output", name)
        })?;
        outputs.push(tensor);
    }
    Ok(InferResponse {
        model_name: r.model_name,
        model_version: Some(r.model_version).filter(|v| !v.is_empty()),
        id: Some(r.id).filter(|v| !v.is_empty()),
        outputs,
        parameters: parameters_from_proto(&r.parameters),
    })
}

fn output_from_proto(
    o: proto::model_infer_response::InferOutputTensor,
    raw: Option<Bytes>,
) -> Result<Tensor> {
    let as_protocol = |e: Error| protocol(e.message().to_owned());
    let datatype: DataType = o
        .datatype
        .parse()
        .map_err(|e: Error| protocol(e.message().to_owned()).with_path("datatype"))?;
    let shape = o
        .shape
        .iter()
        .enumerate()
        .map(|(d, &n)| {
            usize::try_from(n).map_err(|_| {
                protocol(format!("dimension {n} is negative")).with_path(format!("shape[{d}]"))
            })
        })
        .collect::<Result<Vec<usize>>>()?;
    let parameters = parameters_from_proto(&o.parameters);
    let tensor = match raw {
        Some(raw) => Tensor::from_raw(o.name, datatype, shape, raw).map_err(as_protocol)?,
        None => {
            let c = o.contents.unwrap_or_default();
            typed_from_contents(o.name, datatype, shape, c).map_err(as_protocol)?
        }
    };
    Ok(tensor.with_parameters(parameters))
}

fn typed_from_contents(
    name: String,
    datatype: DataType,
    shape: Vec<usize>,
    c: proto::InferTensorContents,
) -> Result<Tensor> {
    fn narrow<S, T>(name: &str, values: Vec<S>) -> Result<Vec<T>>
    where
        S: Copy + std::fmt::Display,
        T: TryFrom<S>,
    {
        values
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                T::try_from(v).map_err(|_| {
                    protocol(format!(
                        "output \"{}\" element {i} ({v}) is out of range for its datatype",
                        name.escape_debug()
                    ))
                })
            })
            .collect()
    }
    match datatype {
        DataType::Bool => Tensor::new(name, shape, c.bool_contents),
        DataType::Uint8 => {
            let v: Vec<u8> = narrow(&name, c.uint_contents)?;
            Tensor::new(name, shape, v)
        }
        DataType::Uint16 => {
            let v: Vec<u16> = narrow(&name, c.uint_contents)?;
            Tensor::new(name, shape, v)
        }
        DataType::Uint32 => Tensor::new(name, shape, c.uint_contents),
        DataType::Uint64 => Tensor::new(name, shape, c.uint64_contents),
        DataType::Int8 => {
            let v: Vec<i8> = narrow(&name, c.int_contents)?;
            Tensor::new(name, shape, v)
        }
        DataType::Int16 => {
            let v: Vec<i16> = narrow(&name, c.int_contents)?;
            Tensor::new(name, shape, v)
        }
        DataType::Int32 => Tensor::new(name, shape, c.int_contents),
        DataType::Int64 => Tensor::new(name, shape, c.int64_contents),
        DataType::Fp32 => Tensor::new(name, shape, c.fp32_contents),
        DataType::Fp64 => Tensor::new(name, shape, c.fp64_contents),
        DataType::Bytes => Tensor::from_byte_elements(name, shape, c.bytes_contents),
        DataType::Fp16 | DataType::Bf16 => {
            if shape.contains(&0) {
                Tensor::from_raw(name, datatype, shape, Bytes::new())
            } else {
                Err(protocol(format!(
                    "{datatype} output \"{}\" came without raw_output_contents (it has no typed form)",
                    name.escape_debug()
                )))
            }
        }
    }
}

/// Model metadata from its message; field 6 is read as OIP `properties`
/// (strings) or MLServer `parameters` (encoded `InferParameter`s).
pub fn model_metadata_from_proto(r: proto::ModelMetadataResponse) -> Result<ModelMetadata> {
    let specs = |list: Vec<proto::model_metadata_response::TensorMetadata>, field: &str| {
        list.into_iter()
            .enumerate()
            .map(|(i, t)| {
                Ok(TensorSpec {
                    datatype: crate::codec::metadata_datatype(&t.datatype, field, i, &t.name)?,
                    name: t.name,
                    shape: t.shape,
                    parameters: parameters_from_proto(&t.parameters),
                })
            })
            .collect::<Result<Vec<_>>>()
    };
    let mut properties = BTreeMap::new();
    for entry in r.properties {
        if let Some(text) = property_text(&entry.value) {
            properties.insert(entry.key, text);
        }
    }
    Ok(ModelMetadata {
        name: r.name,
        versions: r.versions,
        platform: r.platform,
        inputs: specs(r.inputs, "inputs")?,
        outputs: specs(r.outputs, "outputs")?,
        properties,
    })
}

/// A field-6 value as text: an encoded `InferParameter` when it decodes as
/// one with a value set (MLServer), else UTF-8 text (OIP).
fn property_text(value: &Bytes) -> Option<String> {
    // An InferParameter starts with the tag of one of its five fields.
    if matches!(value.first(), Some(0x08 | 0x10 | 0x1a | 0x21 | 0x28))
        && let Ok(p) = proto::InferParameter::decode(value.clone())
        && let Some(p) = parameter_from_proto(&p)
    {
        return Some(match p {
            Parameter::Bool(b) => b.to_string(),
            Parameter::Int(i) => i.to_string(),
            Parameter::Uint(u) => u.to_string(),
            Parameter::Double(d) => d.to_string(),
            Parameter::String(s) => s,
        });
    }
    std::str::from_utf8(value).ok().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use inferlink_core::ErrorKind;
    use inferlink_core::tensor::TensorData;

    #[test]
    fn request_inputs_travel_raw_in_order() {
        let a = Tensor::new("a", vec![2], vec![1.5f32, -2.0]).unwrap();
        let raw = Bytes::from_static(b"\x01\0\0\0x");
        let b = Tensor::from_raw("b", DataType::Bytes, vec![1], raw.clone()).unwrap();
        let req = InferRequest::new()
            .with_input(a)
            .with_input(b)
            .with_output("y")
            .with_id("r1")
            .with_parameter("priority", 2i64);
        let m = infer_request_to_proto(&ModelRef::new("m").with_version("3"), &req).unwrap();
        assert_eq!(
            (
                m.model_name.as_str(),
                m.model_version.as_str(),
                m.id.as_str()
            ),
            ("m", "3", "r1")
        );
        assert_eq!(m.inputs.len(), 2);
        assert!(m.inputs.iter().all(|i| i.contents.is_none()));
        assert_eq!(m.inputs[1].datatype, "BYTES");
        assert_eq!(
            &m.raw_input_contents[0][..],
            &[0, 0, 0xc0, 0x3f, 0, 0, 0, 0xc0]
        );
        // Raw tensors are shared, not copied.
        assert_eq!(m.raw_input_contents[1].as_ptr(), raw.as_ptr());
        // Taking the request gives the same message.
        let owned = infer_request_into_proto(&ModelRef::new("m").with_version("3"), req.clone());
        assert_eq!(owned.unwrap(), m);
        assert_eq!(m.outputs[0].name, "y");
        assert_eq!(
            m.parameters["priority"].parameter_choice,
            Some(ParameterChoice::Int64Param(2))
        );
        // The message survives the wire.
        let back = proto::ModelInferRequest::decode(m.encode_to_vec().as_slice()).unwrap();
        assert_eq!(back, m);
    }

    fn output(
        name: &str,
        datatype: &str,
        shape: Vec<i64>,
    ) -> proto::model_infer_response::InferOutputTensor {
        proto::model_infer_response::InferOutputTensor {
            name: name.into(),
            datatype: datatype.into(),
            shape,
            parameters: Default::default(),
            contents: None,
        }
    }

    #[test]
    fn raw_outputs_decode_without_copies() {
        let wire = proto::ModelInferResponse {
            model_name: "m".into(),
            model_version: "1".into(),
            id: String::new(),
            parameters: Default::default(),
            outputs: vec![output("y", "FP32", vec![2]), output("s", "BYTES", vec![1])],
            raw_output_contents: vec![
                Bytes::from_static(&[0, 0, 0x80, 0x3f, 0, 0, 0, 0x40]),
                Bytes::from_static(b"\x02\0\0\0hi"),
            ],
        };
        let encoded = Bytes::from(wire.encode_to_vec());
        let decoded = proto::ModelInferResponse::decode(encoded.clone()).unwrap();
        let r = infer_response_from_proto(decoded).unwrap();
        assert_eq!(r.model_version.as_deref(), Some("1"));
        assert_eq!(r.id, None);
        let y = r.require_output("y").unwrap();
        assert!(y.is_raw());
        assert_eq!(y.to_vec::<f32>().unwrap(), vec![1.0, 2.0]);
        // The tensor's bytes point into the received buffer.
        let TensorData::Raw(bytes) = y.data() else {
            panic!("raw")
        };
        let range = encoded.as_ptr() as usize..encoded.as_ptr() as usize + encoded.len();
        assert!(range.contains(&(bytes.as_ptr() as usize)));
        assert_eq!(
            r.outputs[1].to_byte_elements().unwrap(),
            vec![Bytes::from("hi")]
        );
    }

    #[test]
    fn typed_outputs_are_accepted_and_checked() {
        let mut o = output("y", "INT16", vec![3]);
        o.contents = Some(proto::InferTensorContents {
            int_contents: vec![1, -2, 300],
            ..Default::default()
        });
        let mut b = output("b", "BYTES", vec![2]);
        b.contents = Some(proto::InferTensorContents {
            bytes_contents: vec![Bytes::from("a"), Bytes::from("")],
            ..Default::default()
        });
        let r = infer_response_from_proto(proto::ModelInferResponse {
            outputs: vec![o.clone(), b],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(r.outputs[0].as_slice::<i16>().unwrap(), &[1, -2, 300]);
        assert_eq!(r.outputs[1].to_byte_elements().unwrap().len(), 2);

        o.datatype = "INT8".into();
        let e = infer_response_from_proto(proto::ModelInferResponse {
            outputs: vec![o.clone()],
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
        assert!(e.message().contains("(300) is out of range"), "{e}");
        assert_eq!(e.path(), Some("outputs[0]"));

        o.datatype = "INT16".into();
        o.shape = vec![4];
        let e = infer_response_from_proto(proto::ModelInferResponse {
            outputs: vec![o.clone()],
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
        assert_eq!(e.context("output"), Some("y"));

        o.shape = vec![-1];
        let e = infer_response_from_proto(proto::ModelInferResponse {
            outputs: vec![o],
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.path(), Some("outputs[0].shape[0]"));

        let e = infer_response_from_proto(proto::ModelInferResponse {
            outputs: vec![output("h", "FP16", vec![1])],
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.message().contains("without raw_output_contents"), "{e}");

        let e = infer_response_from_proto(proto::ModelInferResponse {
            outputs: vec![output("a", "FP32", vec![1]), output("b", "FP32", vec![1])],
            raw_output_contents: vec![Bytes::from_static(&[0; 4])],
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            e.message().contains("1 raw_output_contents for 2 outputs"),
            "{e}"
        );
    }

    #[test]
    fn metadata_field_6_decodes_both_variants() {
        let string_entry = proto::model_metadata_response::PropertyEntry {
            key: "owner".into(),
            value: Bytes::from("team-a"),
        };
        let param = proto::InferParameter {
            parameter_choice: Some(ParameterChoice::StringParam("np".into())),
        };
        let param_entry = proto::model_metadata_response::PropertyEntry {
            key: "content_type".into(),
            value: Bytes::from(param.encode_to_vec()),
        };
        let m = model_metadata_from_proto(proto::ModelMetadataResponse {
            name: "m".into(),
            versions: vec!["1".into()],
            platform: "onnx".into(),
            inputs: vec![proto::model_metadata_response::TensorMetadata {
                name: "x".into(),
                datatype: "FP32".into(),
                shape: vec![-1, 3],
                parameters: Default::default(),
            }],
            outputs: vec![],
            properties: vec![string_entry, param_entry],
        })
        .unwrap();
        assert_eq!(m.properties["owner"], "team-a");
        assert_eq!(m.properties["content_type"], "np");
        assert_eq!(m.inputs[0].shape, vec![-1, 3]);
        assert_eq!(m.inputs[0].datatype, DataType::Fp32);

        let e = model_metadata_from_proto(proto::ModelMetadataResponse {
            outputs: vec![proto::model_metadata_response::TensorMetadata {
                name: "z".into(),
                datatype: "STRING".into(),
                shape: vec![],
                parameters: Default::default(),
            }],
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.path(), Some("outputs[0].datatype"));
    }
}
