//! The Seldon Core v1 wire format: [`SeldonMessage`] and its mapping to and
//! from inferlink's tensors.
//!
//! # Tensor mapping (`infer` over v1)
//!
//! A SeldonMessage carries **one** payload, so a v1 request has exactly one
//! input tensor:
//!
//! | input tensor | SeldonMessage |
//! |---|---|
//! | named `strData`, `BYTES`, one UTF-8 element | `strData` |
//! | named `binData`, `BYTES`, one element | `binData` (base64) |
//! | named `jsonData`, `BYTES`, one element of JSON text | `jsonData` |
//! | anything else, `v1_tensor_form: ndarray` (default) | `data.ndarray`: nested lists following the shape; `BOOL` as booleans, integers as integers, floats as numbers (NaN/Inf refused), `BYTES` as UTF-8 strings |
//! | anything else, `v1_tensor_form: tensor` | `data.tensor {shape, values}`: numbers only, as doubles |
//!
//! `data.names` comes from a `names` parameter (of the request or of the
//! tensor): a JSON array of strings (`["a","b"]`) or a comma-separated list.
//! The request id becomes `meta.puid`; other request parameters become
//! `meta.tags`. A rank-0 tensor is sent as a one-element list. Requested
//! outputs are ignored (the protocol cannot select outputs).
//!
//! The response becomes **one** output tensor:
//!
//! | SeldonMessage | output tensor |
//! |---|---|
//! | `data.ndarray` | `data`, shape from the nesting; `BOOL` if every leaf is a boolean, `INT64` if every leaf is an integer (written without fraction), `FP64` for numbers otherwise (`null` = NaN), `BYTES` for strings (and for mixed leaves, each as its JSON text) |
//! | `data.tensor` | `data`, `FP64`, its shape |
//! | `strData` / `binData` / `jsonData` | `strData` / `binData` / `jsonData`, `BYTES` `[1]` (JSON text for `jsonData`, with parameter `content_type: json`) |
//!
//! `data.names` becomes the output's `names` parameter (JSON array text);
//! `meta.puid` the response id; scalar `meta.tags` response parameters; the
//! whole `meta` (metrics, routing, requestPath …) the response parameter
//! `seldon_meta` (JSON text). A `status` of `FAILURE` in a 2xx answer is an
//! error ([`crate::error::status_error`]).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use inferlink_core::kit;
use inferlink_core::kit::json::Leaf;
use inferlink_core::{
    DataType, Error, ErrorKind, InferRequest, InferResponse, Parameter, Parameters, Result, Tensor,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use crate::config::V1TensorForm;

/// The output tensor name of `data.ndarray` / `data.tensor` answers.
pub const DATA_OUTPUT: &str = "data";
/// The tensor name that maps to `strData`.
pub const STR_DATA: &str = "strData";
/// The tensor name that maps to `binData`.
pub const BIN_DATA: &str = "binData";
/// The tensor name that maps to `jsonData`.
pub const JSON_DATA: &str = "jsonData";
/// The parameter carrying `data.names`.
pub const NAMES_PARAMETER: &str = "names";
/// The response parameter carrying the whole `meta` as JSON text.
pub const META_PARAMETER: &str = "seldon_meta";

/// A Seldon Core v1 message (`seldon.protos.SeldonMessage` in its JSON form).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeldonMessage {
    /// Success or failure, with a code and text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Prediction id, tags, routing, request path, metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// Names plus `ndarray` or `tensor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<DefaultData>,
    /// Binary payload, base64 text on the wire.
    #[serde(default, rename = "binData", skip_serializing_if = "Option::is_none")]
    pub bin_data: Option<String>,
    /// Text payload.
    #[serde(default, rename = "strData", skip_serializing_if = "Option::is_none")]
    pub str_data: Option<String>,
    /// Any JSON payload.
    #[serde(default, rename = "jsonData", skip_serializing_if = "Option::is_none")]
    pub json_data: Option<Value>,
}

/// `DefaultData`: column names and one of `ndarray`, `tensor`, `tftensor`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DefaultData {
    /// Column (feature) names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// Flat doubles with a shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tensor: Option<SeldonTensor>,
    /// Nested JSON lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ndarray: Option<Value>,
    /// A TensorFlow `TensorProto` in JSON (passed through, not decoded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tftensor: Option<Value>,
}

/// `Tensor {shape, values}`: row-major doubles.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeldonTensor {
    /// The shape.
    #[serde(default)]
    pub shape: Vec<i64>,
    /// The values, flat.
    #[serde(default)]
    pub values: Vec<f64>,
}

/// `Meta`: everything Seldon attaches to a prediction.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// The prediction's unique id (also header `Seldon-Puid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub puid: Option<String>,
    /// Tags added by the graph's components.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub tags: Map<String, Value>,
    /// Router decisions.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub routing: Map<String, Value>,
    /// Component name → image of the components that ran.
    #[serde(default, rename = "requestPath", skip_serializing_if = "Map::is_empty")]
    pub request_path: Map<String, Value>,
    /// Custom metrics.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<Value>,
}

/// `Status`: Seldon's error envelope (`{"status": {…}}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// An HTTP-like code (`-1` from the python wrapper).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    /// The message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<String>,
    /// A machine-readable reason, e.g. `MICROSERVICE_BAD_DATA`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `SUCCESS`/`FAILURE`, as a name (executor) or a number 0/1 (python wrapper).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
}

impl Status {
    /// True when the status says `FAILURE` (name or number 1).
    pub fn is_failure(&self) -> bool {
        match &self.status {
            Some(Value::String(s)) => s.eq_ignore_ascii_case("FAILURE"),
            Some(Value::Number(n)) => n.as_i64() == Some(1),
            _ => false,
        }
    }
}

/// `Feedback`: a request, the response it got, a reward and the truth.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    /// The request that was predicted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<SeldonMessage>,
    /// The response it got.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<SeldonMessage>,
    /// The reward.
    #[serde(default)]
    pub reward: f64,
    /// The right answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truth: Option<SeldonMessage>,
}

/// Decodes a SeldonMessage body.
pub fn decode_message(body: &[u8]) -> Result<SeldonMessage> {
    serde_json::from_slice(body).map_err(|e| protocol(format!("not a SeldonMessage: {e}")))
}

/// The SeldonMessage of a tensor request (see the module documentation).
pub fn encode_request(request: &InferRequest, form: V1TensorForm) -> Result<SeldonMessage> {
    let input = match request.inputs.as_slice() {
        [one] => one,
        [] => {
            return Err(invalid(
                "a Seldon v1 request needs one input tensor, got none",
            ));
        }
        many => {
            return Err(invalid(format!(
                "a SeldonMessage carries one payload, but the request has {} inputs (send them \
                 as one tensor, or use invoke with a raw SeldonMessage)",
                many.len()
            )));
        }
    };
    let mut message = SeldonMessage::default();
    let single_bytes = || -> Result<Bytes> {
        if input.datatype() != DataType::Bytes || input.element_count() != 1 {
            return Err(invalid(format!(
                "input \"{}\" must be a BYTES tensor with one element",
                input.name()
            )));
        }
        Ok(input.to_byte_elements()?.remove(0))
    };
    match input.name() {
        STR_DATA => {
            let b = single_bytes()?;
            let s = std::str::from_utf8(&b)
                .map_err(|_| invalid("strData must be UTF-8 text (use binData for bytes)"))?;
            message.str_data = Some(s.to_owned());
        }
        BIN_DATA => message.bin_data = Some(BASE64.encode(single_bytes()?)),
        JSON_DATA => {
            let b = single_bytes()?;
            let v: Value = serde_json::from_slice(&b)
                .map_err(|e| invalid(format!("jsonData is not JSON text: {e}")))?;
            message.json_data = Some(v);
        }
        _ => {
            let names = names_of(request.parameters.get(NAMES_PARAMETER))
                .or_else(|| names_of(input.parameters().get(NAMES_PARAMETER)))
                .unwrap_or_default();
            let mut data = DefaultData {
                names,
                ..DefaultData::default()
            };
            match form {
                V1TensorForm::Ndarray => data.ndarray = Some(ndarray_of(input)?),
                V1TensorForm::Tensor => data.tensor = Some(tensor_of(input)?),
            }
            message.data = Some(data);
        }
    }
    let mut meta = Meta {
        puid: request.id.clone(),
        ..Meta::default()
    };
    for (k, v) in &request.parameters {
        if k != NAMES_PARAMETER {
            meta.tags.insert(k.clone(), parameter_json(v));
        }
    }
    if meta != Meta::default() {
        message.meta = Some(meta);
    }
    Ok(message)
}

fn names_of(p: Option<&Parameter>) -> Option<Vec<String>> {
    let Parameter::String(s) = p? else {
        return None;
    };
    let s = s.trim();
    if s.starts_with('[')
        && let Ok(list) = serde_json::from_str::<Vec<String>>(s)
    {
        return Some(list);
    }
    Some(
        s.split(',')
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect(),
    )
}

fn parameter_json(p: &Parameter) -> Value {
    match p {
        Parameter::Bool(b) => Value::Bool(*b),
        Parameter::Int(i) => Value::from(*i),
        Parameter::Uint(u) => Value::from(*u),
        Parameter::Double(d) => Number::from_f64(*d).map_or(Value::Null, Value::Number),
        Parameter::String(s) => Value::String(s.clone()),
    }
}

fn float_json(v: f64, name: &str) -> Result<Value> {
    Number::from_f64(v).map(Value::Number).ok_or_else(|| {
        invalid(format!(
            "input \"{name}\" holds {v}, which JSON cannot carry"
        ))
    })
}

/// The flat JSON leaves of a tensor, in row-major order.
fn leaves(input: &Tensor) -> Result<Vec<Value>> {
    fn json<T: inferlink_core::tensor::Element + Into<Value>>(t: &Tensor) -> Result<Vec<Value>> {
        Ok(t.to_vec::<T>()?.into_iter().map(Into::into).collect())
    }
    let name = input.name();
    Ok(match input.datatype() {
        DataType::Bool => json::<bool>(input)?,
        DataType::Uint8 => json::<u8>(input)?,
        DataType::Uint16 => json::<u16>(input)?,
        DataType::Uint32 => json::<u32>(input)?,
        DataType::Uint64 => json::<u64>(input)?,
        DataType::Int8 => json::<i8>(input)?,
        DataType::Int16 => json::<i16>(input)?,
        DataType::Int32 => json::<i32>(input)?,
        DataType::Int64 => json::<i64>(input)?,
        DataType::Fp16 | DataType::Bf16 | DataType::Fp32 | DataType::Fp64 => input
            .to_f64_lossy()?
            .into_iter()
            .map(|v| float_json(v, name))
            .collect::<Result<_>>()?,
        DataType::Bytes => input
            .to_byte_elements()?
            .into_iter()
            .map(|b| match String::from_utf8(b.to_vec()) {
                Ok(s) => Ok(Value::String(s)),
                Err(_) => Err(invalid(format!(
                    "input \"{name}\" has a BYTES element that is not UTF-8; an ndarray carries \
                     text only (send bytes as a one-element tensor named binData)"
                ))),
            })
            .collect::<Result<_>>()?,
    })
}

fn ndarray_of(input: &Tensor) -> Result<Value> {
    let flat = leaves(input)?;
    let shape = input.shape();
    if shape.is_empty() {
        return Ok(Value::Array(flat));
    }
    Ok(nest(&mut flat.into_iter(), shape))
}

fn nest(values: &mut impl Iterator<Item = Value>, shape: &[usize]) -> Value {
    match shape {
        [] => values.next().unwrap_or(Value::Null),
        [n] => Value::Array(values.by_ref().take(*n).collect()),
        [n, rest @ ..] => Value::Array((0..*n).map(|_| nest(values, rest)).collect()),
    }
}

fn tensor_of(input: &Tensor) -> Result<SeldonTensor> {
    if matches!(input.datatype(), DataType::Bytes | DataType::Bool) {
        return Err(invalid(format!(
            "input \"{}\" is {}; data.tensor carries numbers only (use v1_tensor_form: ndarray)",
            input.name(),
            input.datatype()
        )));
    }
    let shape = if input.shape().is_empty() {
        vec![1]
    } else {
        input.shape().iter().map(|&d| d as i64).collect()
    };
    Ok(SeldonTensor {
        shape,
        values: input.to_f64_lossy()?,
    })
}

/// The tensor response of a SeldonMessage (see the module documentation).
pub fn decode_response(message: SeldonMessage) -> Result<InferResponse> {
    if let Some(status) = &message.status
        && status.is_failure()
    {
        return Err(crate::error::status_error(status, None));
    }
    let mut response = InferResponse::default();
    let mut parameters = Parameters::new();
    if let Some(meta) = &message.meta {
        response.id = meta.puid.clone();
        for (k, v) in &meta.tags {
            if let Some(p) = scalar_parameter(v) {
                parameters.insert(k.clone(), p);
            }
        }
        let text = serde_json::to_string(meta).map_err(|e| protocol(e.to_string()))?;
        parameters.insert(META_PARAMETER.to_owned(), Parameter::String(text));
    }
    response.parameters = parameters;
    if let Some(data) = message.data {
        let mut tensor = if let Some(t) = data.tensor {
            let shape = t
                .shape
                .iter()
                .map(|&d| {
                    usize::try_from(d).map_err(|_| protocol(format!("data.tensor.shape has {d}")))
                })
                .collect::<Result<Vec<_>>>()?;
            Tensor::new(DATA_OUTPUT, shape, t.values)
                .map_err(|e| protocol(format!("data.tensor: {}", e.message())))?
        } else if let Some(nd) = data.ndarray {
            tensor_from_ndarray(&nd)?
        } else if data.tftensor.is_some() {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "the answer holds data.tftensor, which the tensor mapping does not decode \
                 (use invoke for the raw SeldonMessage)",
            ));
        } else {
            Tensor::new(DATA_OUTPUT, vec![0], Vec::<f64>::new())?
        };
        if !data.names.is_empty() {
            let names = serde_json::to_string(&data.names).map_err(|e| protocol(e.to_string()))?;
            tensor = tensor.with_parameter(NAMES_PARAMETER, names);
        }
        response.outputs.push(tensor);
    } else if let Some(s) = message.str_data {
        response
            .outputs
            .push(Tensor::from_strings(STR_DATA, vec![1], [s])?);
    } else if let Some(b) = message.bin_data {
        let bytes = BASE64
            .decode(b.trim())
            .map_err(|e| protocol(format!("binData is not base64: {e}")))?;
        response.outputs.push(Tensor::from_byte_elements(
            BIN_DATA,
            vec![1],
            [Bytes::from(bytes)],
        )?);
    } else if let Some(j) = message.json_data {
        let text = serde_json::to_string(&j).map_err(|e| protocol(e.to_string()))?;
        response.outputs.push(
            Tensor::from_strings(JSON_DATA, vec![1], [text])?
                .with_parameter("content_type", "json"),
        );
    }
    Ok(response)
}

fn scalar_parameter(v: &Value) -> Option<Parameter> {
    Some(match v {
        Value::Bool(b) => Parameter::Bool(*b),
        Value::String(s) => Parameter::String(s.clone()),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Parameter::Int(i)
            } else if let Some(u) = n.as_u64() {
                Parameter::Uint(u)
            } else {
                Parameter::Double(n.as_f64()?)
            }
        }
        _ => return None,
    })
}

/// The tensor of a `data.ndarray` (shape from the nesting, datatype from the leaves).
pub fn tensor_from_ndarray(nd: &Value) -> Result<Tensor> {
    // A bare scalar is rank 0; objects are leaves (they become JSON text).
    let (shape, flat) = kit::json::nested_leaves(nd, "data.ndarray", Leaf::NotArray)?;
    leaves_to_tensor(flat, shape)
}

fn leaves_to_tensor(flat: Vec<&Value>, shape: Vec<usize>) -> Result<Tensor> {
    let name = DATA_OUTPUT;
    if flat.is_empty() {
        return Tensor::new(name, shape, Vec::<f64>::new());
    }
    if flat.iter().all(|v| v.is_boolean()) {
        let values: Vec<bool> = flat.iter().filter_map(|v| v.as_bool()).collect();
        return Tensor::new(name, shape, values);
    }
    let numeric = flat.iter().all(|v| v.is_number() || v.is_null());
    if numeric {
        if flat.iter().all(|v| v.is_i64()) {
            let values: Vec<i64> = flat.iter().filter_map(|v| v.as_i64()).collect();
            return Tensor::new(name, shape, values);
        }
        let values: Vec<f64> = flat
            .iter()
            .map(|v| v.as_f64().unwrap_or(f64::NAN))
            .collect();
        return Tensor::new(name, shape, values);
    }
    let texts = flat.iter().map(|v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    Tensor::from_strings(name, shape, texts)
}

/// The request body of [`encode_request`] as JSON bytes.
pub fn to_body(message: &SeldonMessage) -> Result<Bytes> {
    serde_json::to_vec(message)
        .map(Bytes::from)
        .map_err(|e| invalid(format!("the SeldonMessage cannot be encoded: {e}")))
}

/// Model metadata as the microservice (`SeldonModelMetadata`) or the
/// executor (`SeldonGraphMetadata`) answers it, reduced to what inferlink keeps.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct RawMetadata {
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) versions: Option<Vec<Value>>,
    #[serde(default)]
    pub(crate) platform: Option<String>,
    #[serde(default)]
    pub(crate) inputs: Option<Vec<Value>>,
    #[serde(default)]
    pub(crate) outputs: Option<Vec<Value>>,
    #[serde(default, rename = "graphinputs")]
    pub(crate) graph_inputs: Option<Vec<Value>>,
    #[serde(default, rename = "graphoutputs")]
    pub(crate) graph_outputs: Option<Vec<Value>>,
    #[serde(default)]
    pub(crate) custom: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    pub(crate) models: Option<BTreeMap<String, Value>>,
}

/// A `SeldonMessageMetadata` entry as a tensor spec: `datatype` if it
/// names an OIP datatype, else `BYTES` for `strData`/`binData`/`jsonData`
/// message types and `FP64` otherwise; `shape` (or `schema.shape`), else `[-1]`.
pub(crate) fn tensor_spec(v: &Value, index: usize) -> inferlink_core::TensorSpec {
    let name = v
        .get("name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map_or_else(|| format!("{DATA_OUTPUT}-{index}"), str::to_owned);
    let messagetype = v.get("messagetype").and_then(Value::as_str).unwrap_or("");
    let datatype = v
        .get("datatype")
        .and_then(Value::as_str)
        .and_then(|d| d.parse::<DataType>().ok())
        .unwrap_or(match messagetype {
            "strData" | "binData" | "jsonData" => DataType::Bytes,
            _ => DataType::Fp64,
        });
    let shape_of =
        |s: &Value| -> Option<Vec<i64>> { s.as_array()?.iter().map(Value::as_i64).collect() };
    let shape = v
        .get("shape")
        .and_then(shape_of)
        .or_else(|| {
            v.get("schema")
                .and_then(|s| s.get("shape"))
                .and_then(shape_of)
        })
        .unwrap_or_else(|| vec![-1]);
    let mut spec = inferlink_core::TensorSpec::new(name, datatype, shape);
    if !messagetype.is_empty() {
        spec.parameters.insert(
            "messagetype".to_owned(),
            Parameter::String(messagetype.to_owned()),
        );
    }
    spec
}

pub(crate) fn metadata_from(raw: RawMetadata, name: &str) -> inferlink_core::ModelMetadata {
    let specs = |list: Option<Vec<Value>>| -> Vec<inferlink_core::TensorSpec> {
        list.unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, v)| tensor_spec(v, i))
            .collect()
    };
    let mut md = inferlink_core::ModelMetadata {
        name: raw
            .name
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| name.to_owned()),
        versions: raw
            .versions
            .unwrap_or_default()
            .iter()
            .filter_map(|v| match v {
                Value::String(s) if !s.is_empty() => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect(),
        platform: raw.platform.unwrap_or_default(),
        inputs: specs(raw.inputs.or(raw.graph_inputs)),
        outputs: specs(raw.outputs.or(raw.graph_outputs)),
        ..inferlink_core::ModelMetadata::default()
    };
    for (k, v) in raw.custom.unwrap_or_default() {
        let text = match v {
            Value::String(s) => s,
            other => other.to_string(),
        };
        md.properties.insert(k, text);
    }
    if let Some(models) = raw.models {
        let names: Vec<&str> = models.keys().map(String::as_str).collect();
        md.properties
            .insert("graph_models".to_owned(), names.join(","));
    }
    md
}

pub(crate) fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, message)
}

pub(crate) fn protocol(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Protocol, message)
}

#[cfg(test)]
mod tests;
