//! The gRPC side: TensorProto ⇄ tensors, and the calls made on the shared
//! [`GrpcTransport`] (channel, retry loop and limits from the transport
//! settings).
//!
//! **Requests** carry numeric tensors as `tensor_content` (raw little-endian
//! bytes, shared without copies when the tensor is already raw) by default,
//! or in the typed `*_val` fields with `grpc_tensor_encoding: typed`;
//! `BYTES` tensors always use `string_val` (TF has no `tensor_content` form
//! for strings).
//!
//! **Responses** are read from `tensor_content` (kept as a raw tensor over
//! the received frame) or from the typed field of the dtype. A typed field
//! with a single value for a larger shape is that value repeated (TF's
//! convention for constant tensors, up to [`MAX_FILL`] elements and [`MAX_FILL_BYTES`] bytes); any other
//! count mismatch is a
//! [`ErrorKind::Protocol`] error.

use std::collections::HashMap;
use std::sync::Arc;

use inferlink_core::tensor::{bf16, f16};
use inferlink_core::transport::retry::Idempotency;
use inferlink_core::transport::{GrpcTransport, TransportConfig};
use inferlink_core::{DataType, Error, ErrorKind, ModelRef, Result, Tensor, TensorData};
use prost::Message as _;

use crate::codec::{
    Class, Examples, Feature, ModelState, Signature, TfModelMetadata, TfTensorInfo, VersionStatus,
    from_tf_dtype, tf_dtype,
};
use crate::config::{GrpcTensorEncoding, VersionChoice};
use crate::error::TfServingGrpcClassifier;
use crate::proto::tensorflow as tf;
use crate::proto::tensorflow::serving as tfs;

/// The method paths of TF Serving's `PredictionService` and `ModelService`.
pub mod paths {
    /// `PredictionService/Predict`.
    pub const PREDICT: &str = "/tensorflow.serving.PredictionService/Predict";
    /// `PredictionService/Classify`.
    pub const CLASSIFY: &str = "/tensorflow.serving.PredictionService/Classify";
    /// `PredictionService/Regress`.
    pub const REGRESS: &str = "/tensorflow.serving.PredictionService/Regress";
    /// `PredictionService/GetModelMetadata`.
    pub const GET_MODEL_METADATA: &str = "/tensorflow.serving.PredictionService/GetModelMetadata";
    /// `ModelService/GetModelStatus`.
    pub const GET_MODEL_STATUS: &str = "/tensorflow.serving.ModelService/GetModelStatus";
}

// ---------------------------------------------------------------------------
// Conversions
// ---------------------------------------------------------------------------

fn shape_proto(shape: &[usize]) -> tf::TensorShapeProto {
    dims_proto(shape.iter().map(|&d| d as i64))
}

/// A known-rank `TensorShapeProto` of unnamed dimensions (`-1`: unknown size).
pub fn dims_proto(dims: impl IntoIterator<Item = i64>) -> tf::TensorShapeProto {
    tf::TensorShapeProto {
        dim: dims
            .into_iter()
            .map(|size| tf::tensor_shape_proto::Dim {
                size,
                name: String::new(),
            })
            .collect(),
        unknown_rank: false,
    }
}

/// The TensorProto of a tensor, in the given encoding.
pub fn tensor_to_proto(t: &Tensor, encoding: GrpcTensorEncoding) -> Result<tf::TensorProto> {
    let mut p = tf::TensorProto {
        dtype: tf_dtype(t.datatype()),
        tensor_shape: Some(shape_proto(t.shape())),
        ..Default::default()
    };
    if t.datatype() == DataType::Bytes {
        p.string_val = t.to_byte_elements()?;
        return Ok(p);
    }
    if encoding == GrpcTensorEncoding::Content {
        p.tensor_content = t.to_raw()?;
        return Ok(p);
    }
    match t.datatype() {
        DataType::Fp32 => p.float_val = t.to_vec()?,
        DataType::Fp64 => p.double_val = t.to_vec()?,
        DataType::Int32 => p.int_val = t.to_vec()?,
        DataType::Int16 => p.int_val = t.to_vec::<i16>()?.into_iter().map(i32::from).collect(),
        DataType::Int8 => p.int_val = t.to_vec::<i8>()?.into_iter().map(i32::from).collect(),
        DataType::Uint8 => p.int_val = t.to_vec::<u8>()?.into_iter().map(i32::from).collect(),
        DataType::Uint16 => p.int_val = t.to_vec::<u16>()?.into_iter().map(i32::from).collect(),
        DataType::Int64 => p.int64_val = t.to_vec()?,
        DataType::Bool => p.bool_val = t.to_vec()?,
        DataType::Uint32 => p.uint32_val = t.to_vec()?,
        DataType::Uint64 => p.uint64_val = t.to_vec()?,
        DataType::Fp16 => {
            p.half_val = t
                .to_vec::<f16>()?
                .into_iter()
                .map(|h| i32::from(h.to_bits()))
                .collect();
        }
        DataType::Bf16 => {
            p.half_val = t
                .to_vec::<bf16>()?
                .into_iter()
                .map(|h| i32::from(h.to_bits()))
                .collect();
        }
        DataType::Bytes => {}
    }
    Ok(p)
}

fn proto_error(name: &str, what: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Protocol, format!("output \"{name}\" {what}"))
        .with_context("output", name)
}

/// The most elements one repeated typed value may fill (a server cannot make
/// the client allocate without bound by declaring a huge shape).
pub const MAX_FILL: usize = 1 << 26;

/// The most bytes the elements filled from one repeated value may take (64 MiB,
/// half the default `response_max_bytes`): a few bytes of answer never make the
/// client allocate more than this.
pub const MAX_FILL_BYTES: usize = 64 << 20;

/// `values` stretched to `count` elements (a single value repeats).
fn fill<T: Clone>(name: &str, field: &str, values: Vec<T>, count: usize) -> Result<Vec<T>> {
    if values.len() == count {
        return Ok(values);
    }
    if values.len() == 1 {
        let bytes = count.saturating_mul(std::mem::size_of::<T>());
        if count > MAX_FILL || bytes > MAX_FILL_BYTES {
            return Err(proto_error(
                name,
                format!(
                    "repeats one {field} value {count} times (more than {MAX_FILL} values \
                     or {MAX_FILL_BYTES} bytes)"
                ),
            ));
        }
        return Ok(vec![values[0].clone(); count]);
    }
    if values.is_empty() {
        return Err(proto_error(
            name,
            format!("has {count} elements but no {field} values or tensor_content"),
        ));
    }
    Err(proto_error(
        name,
        format!("has {} {field} values for {count} elements", values.len()),
    ))
}

fn narrow<T: TryFrom<i32>>(name: &str, values: Vec<i32>, dt: DataType) -> Result<Vec<T>> {
    values
        .into_iter()
        .map(|v| {
            T::try_from(v).map_err(|_| proto_error(name, format!("value {v} does not fit {dt}")))
        })
        .collect()
}

/// The tensor of a TensorProto: raw over `tensor_content` (no copy), or
/// converted from the dtype's typed field.
pub fn tensor_from_proto(name: &str, p: tf::TensorProto) -> Result<Tensor> {
    let dt = from_tf_dtype(p.dtype).ok_or_else(|| {
        proto_error(
            name,
            format!("has dtype {} with no inferlink counterpart", p.dtype),
        )
    })?;
    let shape_proto = p.tensor_shape.unwrap_or_default();
    if shape_proto.unknown_rank {
        return Err(proto_error(name, "has an unknown rank"));
    }
    let shape: Vec<usize> = shape_proto
        .dim
        .iter()
        .map(|d| {
            usize::try_from(d.size)
                .map_err(|_| proto_error(name, format!("has dimension {}", d.size)))
        })
        .collect::<Result<_>>()?;
    let count = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| proto_error(name, "has too many elements"))?;
    let wrap = |e: Error| proto_error(name, e.message());
    if !p.tensor_content.is_empty() && dt != DataType::Bytes {
        return Tensor::from_raw(name, dt, shape, p.tensor_content).map_err(wrap);
    }
    let data = match dt {
        DataType::Fp32 => TensorData::Fp32(fill(name, "float_val", p.float_val, count)?),
        DataType::Fp64 => TensorData::Fp64(fill(name, "double_val", p.double_val, count)?),
        DataType::Int32 => TensorData::Int32(fill(name, "int_val", p.int_val, count)?),
        DataType::Int16 => {
            TensorData::Int16(narrow(name, fill(name, "int_val", p.int_val, count)?, dt)?)
        }
        DataType::Int8 => {
            TensorData::Int8(narrow(name, fill(name, "int_val", p.int_val, count)?, dt)?)
        }
        DataType::Uint8 => {
            TensorData::Uint8(narrow(name, fill(name, "int_val", p.int_val, count)?, dt)?)
        }
        DataType::Uint16 => {
            TensorData::Uint16(narrow(name, fill(name, "int_val", p.int_val, count)?, dt)?)
        }
        DataType::Int64 => TensorData::Int64(fill(name, "int64_val", p.int64_val, count)?),
        DataType::Bool => TensorData::Bool(fill(name, "bool_val", p.bool_val, count)?),
        DataType::Uint32 => TensorData::Uint32(fill(name, "uint32_val", p.uint32_val, count)?),
        DataType::Uint64 => TensorData::Uint64(fill(name, "uint64_val", p.uint64_val, count)?),
        DataType::Fp16 => TensorData::Fp16(
            fill(name, "half_val", p.half_val, count)?
                .into_iter()
                .map(|b| f16::from_bits(b as u16))
                .collect(),
        ),
        DataType::Bf16 => TensorData::Bf16(
            fill(name, "half_val", p.half_val, count)?
                .into_iter()
                .map(|b| bf16::from_bits(b as u16))
                .collect(),
        ),
        DataType::Bytes => TensorData::Bytes(if count == 0 {
            Vec::new()
        } else {
            fill(name, "string_val", p.string_val, count)?
        }),
    };
    Tensor::from_data(name, dt, shape, data).map_err(wrap)
}

/// The ModelSpec of a call.
pub fn model_spec(
    model: &ModelRef,
    version: &VersionChoice,
    signature: Option<&str>,
) -> tfs::ModelSpec {
    tfs::ModelSpec {
        name: model.name.clone(),
        version_choice: match version {
            VersionChoice::Latest => None,
            VersionChoice::Number(n) => {
                Some(tfs::model_spec::VersionChoice::Version(tfs::Int64Value {
                    value: *n,
                }))
            }
            VersionChoice::Label(l) => {
                Some(tfs::model_spec::VersionChoice::VersionLabel(l.clone()))
            }
        },
        signature_name: signature.unwrap_or_default().to_owned(),
    }
}

fn example_proto(ex: &crate::codec::Example) -> tf::Example {
    tf::Example {
        features: Some(tf::Features {
            feature: ex
                .iter()
                .map(|(k, f)| {
                    let kind = match f {
                        Feature::Bytes(v) => {
                            tf::feature::Kind::BytesList(tf::BytesList { value: v.clone() })
                        }
                        Feature::Float(v) => {
                            tf::feature::Kind::FloatList(tf::FloatList { value: v.clone() })
                        }
                        Feature::Int64(v) => {
                            tf::feature::Kind::Int64List(tf::Int64List { value: v.clone() })
                        }
                    };
                    (k.clone(), tf::Feature { kind: Some(kind) })
                })
                .collect(),
        }),
    }
}

/// The `Input` of Classify/Regress.
pub fn input_proto(examples: &Examples) -> tfs::Input {
    let list: Vec<tf::Example> = examples.examples.iter().map(example_proto).collect();
    let kind = match &examples.context {
        None => tfs::input::Kind::ExampleList(tfs::ExampleList { examples: list }),
        Some(ctx) => tfs::input::Kind::ExampleListWithContext(tfs::ExampleListWithContext {
            examples: list,
            context: Some(example_proto(ctx)),
        }),
    };
    tfs::Input { kind: Some(kind) }
}

fn info_from_proto(i: tf::TensorInfo) -> TfTensorInfo {
    let shape = i
        .tensor_shape
        .filter(|s| !s.unknown_rank)
        .map(|s| s.dim.iter().map(|d| d.size).collect());
    TfTensorInfo {
        name: i.name,
        datatype: from_tf_dtype(i.dtype),
        dtype_name: tf::DataType::try_from(i.dtype)
            .map(|d| d.as_str_name().to_owned())
            .unwrap_or_else(|_| format!("DT_{}", i.dtype)),
        shape,
    }
}

/// The signatures of a `GetModelMetadataResponse`.
pub fn metadata_from_proto(r: tfs::GetModelMetadataResponse) -> Result<TfModelMetadata> {
    let spec = r.model_spec.unwrap_or_default();
    let Some(any) = r.metadata.get("signature_def") else {
        return Err(Error::new(
            ErrorKind::Protocol,
            "the metadata response has no signature_def entry",
        ));
    };
    let map = tfs::SignatureDefMap::decode(any.value.clone()).map_err(|e| {
        Error::new(
            ErrorKind::Protocol,
            format!("signature_def is not a SignatureDefMap: {e}"),
        )
    })?;
    let signatures = map
        .signature_def
        .into_iter()
        .map(|(k, s)| {
            (
                k,
                Signature {
                    method_name: s.method_name,
                    inputs: s
                        .inputs
                        .into_iter()
                        .map(|(k, i)| (k, info_from_proto(i)))
                        .collect(),
                    outputs: s
                        .outputs
                        .into_iter()
                        .map(|(k, i)| (k, info_from_proto(i)))
                        .collect(),
                },
            )
        })
        .collect();
    let version = match spec.version_choice {
        Some(tfs::model_spec::VersionChoice::Version(v)) => Some(v.value),
        _ => None,
    };
    Ok(TfModelMetadata {
        name: spec.name,
        version,
        signatures,
    })
}

// ---------------------------------------------------------------------------
// The wire
// ---------------------------------------------------------------------------

/// The TF Serving calls, made on the shared gRPC transport.
#[derive(Clone, Debug)]
pub(crate) struct GrpcWire {
    pub(crate) transport: GrpcTransport,
}

impl GrpcWire {
    /// A lazy channel to `target` (an `http`/`https` URL) with the
    /// transport's settings.
    pub(crate) fn new(target: &str, cfg: &TransportConfig, vendor: &str) -> Result<GrpcWire> {
        let transport = GrpcTransport::builder(target, cfg.clone())
            .vendor(vendor)
            .classifier(Arc::new(TfServingGrpcClassifier))
            .build()?;
        Ok(GrpcWire { transport })
    }

    pub(crate) async fn status(
        &self,
        model: &ModelRef,
        spec: tfs::ModelSpec,
    ) -> Result<Vec<VersionStatus>> {
        let request = tfs::GetModelStatusRequest {
            model_spec: Some(spec),
        };
        let r: tfs::GetModelStatusResponse = self
            .transport
            .unary(
                paths::GET_MODEL_STATUS,
                request,
                Idempotency::Safe,
                Some(model),
            )
            .await?;
        Ok(r.model_version_status
            .into_iter()
            .map(|s| {
                let status = s.status.unwrap_or_default();
                VersionStatus {
                    version: s.version,
                    state: ModelState::from_number(s.state),
                    error_code: status.error_code.to_string(),
                    error_message: status.error_message,
                }
            })
            .collect())
    }

    pub(crate) async fn metadata(
        &self,
        model: &ModelRef,
        spec: tfs::ModelSpec,
    ) -> Result<TfModelMetadata> {
        let request = tfs::GetModelMetadataRequest {
            model_spec: Some(spec),
            metadata_field: vec!["signature_def".to_owned()],
        };
        let r = self
            .transport
            .unary(
                paths::GET_MODEL_METADATA,
                request,
                Idempotency::Safe,
                Some(model),
            )
            .await?;
        metadata_from_proto(r).map_err(|e| self.transport.decorate(e, Some(model)))
    }

    pub(crate) async fn predict(
        &self,
        model: &ModelRef,
        request: tfs::PredictRequest,
        idempotency: Idempotency,
    ) -> Result<tfs::PredictResponse> {
        self.transport
            .unary(paths::PREDICT, request, idempotency, Some(model))
            .await
    }

    pub(crate) async fn classify(
        &self,
        model: &ModelRef,
        spec: tfs::ModelSpec,
        examples: &Examples,
    ) -> Result<Vec<Vec<Class>>> {
        let request = tfs::ClassificationRequest {
            model_spec: Some(spec),
            input: Some(input_proto(examples)),
        };
        let r: tfs::ClassificationResponse = self
            .transport
            .unary(paths::CLASSIFY, request, Idempotency::Safe, Some(model))
            .await?;
        Ok(r.result
            .unwrap_or_default()
            .classifications
            .into_iter()
            .map(|c| {
                c.classes
                    .into_iter()
                    .map(|k| Class {
                        label: k.label,
                        score: k.score,
                    })
                    .collect()
            })
            .collect())
    }

    pub(crate) async fn regress(
        &self,
        model: &ModelRef,
        spec: tfs::ModelSpec,
        examples: &Examples,
    ) -> Result<Vec<f32>> {
        let request = tfs::RegressionRequest {
            model_spec: Some(spec),
            input: Some(input_proto(examples)),
        };
        let r: tfs::RegressionResponse = self
            .transport
            .unary(paths::REGRESS, request, Idempotency::Safe, Some(model))
            .await?;
        Ok(r.result
            .unwrap_or_default()
            .regressions
            .into_iter()
            .map(|r| r.value)
            .collect())
    }
}

/// Builds the PredictRequest of inputs.
pub fn predict_request(
    spec: tfs::ModelSpec,
    inputs: &[Tensor],
    outputs: &[String],
    encoding: GrpcTensorEncoding,
) -> Result<tfs::PredictRequest> {
    let mut map = HashMap::with_capacity(inputs.len());
    for t in inputs {
        if map
            .insert(t.name().to_owned(), tensor_to_proto(t, encoding)?)
            .is_some()
        {
            return Err(
                Error::invalid(format!("input \"{}\" is given twice", t.name()))
                    .with_context("tensor", t.name()),
            );
        }
    }
    Ok(tfs::PredictRequest {
        model_spec: Some(spec),
        inputs: map,
        output_filter: outputs.to_vec(),
    })
}

/// The output tensors of a PredictResponse, sorted by name.
pub fn predict_outputs(r: tfs::PredictResponse) -> Result<(Vec<Tensor>, Option<i64>)> {
    let version = match r.model_spec.and_then(|s| s.version_choice) {
        Some(tfs::model_spec::VersionChoice::Version(v)) => Some(v.value),
        _ => None,
    };
    let mut outputs: Vec<(String, tf::TensorProto)> = r.outputs.into_iter().collect();
    outputs.sort_by(|a, b| a.0.cmp(&b.0));
    let tensors = outputs
        .into_iter()
        .map(|(k, p)| tensor_from_proto(&k, p))
        .collect::<Result<_>>()?;
    Ok((tensors, version))
}

#[cfg(test)]
mod tests;
