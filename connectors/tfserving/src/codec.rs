//! TensorFlow Serving's REST JSON ⇄ inferlink's tensors, and the types the
//! REST and gRPC sides share (status, signatures, examples).
//!
//! # Tensor mapping
//!
//! | inferlink | TF dtype | REST JSON |
//! |---|---|---|
//! | `BOOL` | `DT_BOOL` | `true`/`false` |
//! | `UINT8`…`UINT64`, `INT8`…`INT64` | `DT_UINT8`…`DT_INT64` | integers |
//! | `FP16`, `BF16` | `DT_HALF`, `DT_BFLOAT16` | numbers |
//! | `FP32`, `FP64` | `DT_FLOAT`, `DT_DOUBLE` | numbers; non-finite as bare `NaN`, `Infinity`, `-Infinity` |
//! | `BYTES` | `DT_STRING` | a string when the element is UTF-8 and the tensor's name does not end in `_bytes`; else `{"b64": …}` |
//!
//! A tensor of shape `[2, 3]` is a nested array `[[a, b, c], [d, e, f]]`;
//! a scalar (shape `[]`) is a bare value.
//!
//! **Requests.** Columnar (the default): `{"signature_name"?, "inputs":
//! {name: tensor, …}}`, every input named. Row: `{"signature_name"?,
//! "instances": [{name: row, …}, …]}`, one object per index of the first
//! dimension, which every input must share (a scalar cannot be sent in row form).
//!
//! **Responses.** JSON carries no datatype, so outputs are typed from the
//! model's signature when it is known (the connector reads it once per model
//! and signature from the metadata API); otherwise by their values: all
//! booleans → `BOOL`, all strings or `{"b64"}` → `BYTES`, all integers →
//! `INT64` (or `UINT64` above `i64`), any other numbers → `FP32` (TF's
//! default float; a `DT_DOUBLE` output needs the signature to come back as
//! `FP64`). A response that names its outputs (`{"outputs": {name: …}}`,
//! `{"predictions": [{name: …}, …]}`) keeps the names; a single unnamed
//! output takes the signature's only output name, else the request's only
//! requested output name, else `outputs` (columnar) or `predictions` (row).
//! REST cannot select outputs, so requested outputs filter the answer here.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use inferlink_core::tensor::{bf16, f16};
use inferlink_core::{
    DataType, Error, ErrorKind, InferRequest, InferResponse, ModelMetadata, Result, Tensor,
    TensorData, TensorSpec,
};

pub mod json;

use json::{Json, Number};

use crate::config::RequestFormat;

/// The media type of every REST body.
pub const JSON: &str = "application/json";

/// The signature TF Serving uses when a request names none.
pub const DEFAULT_SIGNATURE: &str = "serving_default";

// ---------------------------------------------------------------------------
// Data types
// ---------------------------------------------------------------------------

/// TensorFlow's `DataType` enum values that map to inferlink datatypes.
pub const TF_DTYPES: [(i32, &str, DataType); 14] = [
    (1, "DT_FLOAT", DataType::Fp32),
    (2, "DT_DOUBLE", DataType::Fp64),
    (3, "DT_INT32", DataType::Int32),
    (4, "DT_UINT8", DataType::Uint8),
    (5, "DT_INT16", DataType::Int16),
    (6, "DT_INT8", DataType::Int8),
    (7, "DT_STRING", DataType::Bytes),
    (9, "DT_INT64", DataType::Int64),
    (10, "DT_BOOL", DataType::Bool),
    (14, "DT_BFLOAT16", DataType::Bf16),
    (17, "DT_UINT16", DataType::Uint16),
    (19, "DT_HALF", DataType::Fp16),
    (22, "DT_UINT32", DataType::Uint32),
    (23, "DT_UINT64", DataType::Uint64),
];

/// The TF enum value of an inferlink datatype.
pub fn tf_dtype(datatype: DataType) -> i32 {
    TF_DTYPES
        .iter()
        .find(|(_, _, d)| *d == datatype)
        .map_or(0, |(n, _, _)| *n)
}

/// The inferlink datatype of a TF enum value (`None`: no counterpart, e.g. complex types).
pub fn from_tf_dtype(value: i32) -> Option<DataType> {
    TF_DTYPES
        .iter()
        .find(|(n, _, _)| *n == value)
        .map(|(_, _, d)| *d)
}

/// The inferlink datatype of a TF dtype name (`"DT_FLOAT"`).
pub fn from_tf_dtype_name(name: &str) -> Option<DataType> {
    TF_DTYPES
        .iter()
        .find(|(_, n, _)| *n == name)
        .map(|(_, _, d)| *d)
}

// ---------------------------------------------------------------------------
// Shared types
// ---------------------------------------------------------------------------

/// The state of one model version (`ModelVersionStatus.State`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelState {
    /// `UNKNOWN` (0) or a value this client does not know.
    Unknown,
    /// `START` (10).
    Start,
    /// `LOADING` (20).
    Loading,
    /// `AVAILABLE` (30): serving.
    Available,
    /// `UNLOADING` (40).
    Unloading,
    /// `END` (50).
    End,
}

impl ModelState {
    /// The state of a proto enum value.
    pub fn from_number(n: i32) -> Self {
        match n {
            10 => ModelState::Start,
            20 => ModelState::Loading,
            30 => ModelState::Available,
            40 => ModelState::Unloading,
            50 => ModelState::End,
            _ => ModelState::Unknown,
        }
    }

    /// The state of its name (`"AVAILABLE"`).
    pub fn from_name(s: &str) -> Self {
        match s {
            "START" => ModelState::Start,
            "LOADING" => ModelState::Loading,
            "AVAILABLE" => ModelState::Available,
            "UNLOADING" => ModelState::Unloading,
            "END" => ModelState::End,
            _ => ModelState::Unknown,
        }
    }

    /// The protocol's name.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelState::Unknown => "UNKNOWN",
            ModelState::Start => "START",
            ModelState::Loading => "LOADING",
            ModelState::Available => "AVAILABLE",
            ModelState::Unloading => "UNLOADING",
            ModelState::End => "END",
        }
    }
}

/// One version's status, as `GetModelStatus` and `GET /v1/models/NAME` report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionStatus {
    /// The version number.
    pub version: i64,
    /// Its state.
    pub state: ModelState,
    /// The status code name (`"OK"`, …; REST) or number (gRPC, as text).
    pub error_code: String,
    /// The status message (empty when fine).
    pub error_message: String,
}

/// A signature's tensor (`TensorInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TfTensorInfo {
    /// The graph tensor name (`x:0`); callers use the signature's key instead.
    pub name: String,
    /// The datatype, when it has an inferlink counterpart.
    pub datatype: Option<DataType>,
    /// The TF dtype name (`DT_FLOAT`, or `DT_<number>` when unknown).
    pub dtype_name: String,
    /// The dimensions (-1: unknown size); `None` when the rank is unknown.
    pub shape: Option<Vec<i64>>,
}

/// One signature of a model (`SignatureDef`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Signature {
    /// `tensorflow/serving/predict`, `…/classify`, `…/regress`.
    pub method_name: String,
    /// Inputs by key.
    pub inputs: BTreeMap<String, TfTensorInfo>,
    /// Outputs by key.
    pub outputs: BTreeMap<String, TfTensorInfo>,
}

/// A model's signatures, as the metadata API reports them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TfModelMetadata {
    /// The model name.
    pub name: String,
    /// The version that answered, when reported.
    pub version: Option<i64>,
    /// Signatures by name.
    pub signatures: BTreeMap<String, Signature>,
}

impl TfModelMetadata {
    /// The signature used for `signature_name` (the default when `None`),
    /// or the only one when the model has exactly one.
    pub fn signature(&self, signature_name: Option<&str>) -> Option<(&str, &Signature)> {
        let want = signature_name.unwrap_or(DEFAULT_SIGNATURE);
        if let Some((k, s)) = self.signatures.get_key_value(want) {
            return Some((k.as_str(), s));
        }
        if signature_name.is_none() && self.signatures.len() == 1 {
            return self.signatures.iter().next().map(|(k, s)| (k.as_str(), s));
        }
        None
    }

    /// The common [`ModelMetadata`] of one signature.
    ///
    /// Inputs and outputs are named by signature key. When an input has an
    /// unknown rank or a datatype without inferlink counterpart, no inputs
    /// are declared (the common metadata cannot express them, and an empty
    /// list accepts any request); property `inputs_undeclared` says why.
    pub fn to_common(&self, signature_name: Option<&str>) -> Result<ModelMetadata> {
        let Some((sig_name, sig)) = self.signature(signature_name) else {
            let names: Vec<&str> = self.signatures.keys().map(String::as_str).collect();
            return Err(Error::new(
                ErrorKind::NotFound,
                format!(
                    "model \"{}\" has no signature \"{}\"; its signatures: [{}]",
                    self.name,
                    signature_name.unwrap_or(DEFAULT_SIGNATURE),
                    names.join(", ")
                ),
            ));
        };
        let mut properties = BTreeMap::new();
        properties.insert("signature_name".to_owned(), sig_name.to_owned());
        properties.insert("method_name".to_owned(), sig.method_name.clone());
        properties.insert(
            "signatures".to_owned(),
            self.signatures
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(","),
        );
        let specs =
            |map: &BTreeMap<String, TfTensorInfo>| -> std::result::Result<Vec<TensorSpec>, String> {
                map.iter()
                    .map(|(key, info)| match (info.datatype, &info.shape) {
                        (Some(d), Some(shape)) => {
                            Ok(TensorSpec::new(key.clone(), d, shape.clone()))
                        }
                        (None, _) => Err(format!("{key} is {}", info.dtype_name)),
                        (_, None) => Err(format!("{key} has an unknown rank")),
                    })
                    .collect()
            };
        let inputs = specs(&sig.inputs).unwrap_or_else(|why| {
            properties.insert("inputs_undeclared".to_owned(), why);
            Vec::new()
        });
        let outputs = specs(&sig.outputs).unwrap_or_else(|why| {
            properties.insert("outputs_undeclared".to_owned(), why);
            Vec::new()
        });
        Ok(ModelMetadata {
            name: self.name.clone(),
            versions: self.version.map(|v| v.to_string()).into_iter().collect(),
            platform: "tensorflow".to_owned(),
            inputs,
            outputs,
            properties,
        })
    }

    /// Output datatypes by key of one signature (hints for decoding JSON).
    pub fn output_types(&self, signature_name: Option<&str>) -> BTreeMap<String, DataType> {
        self.signature(signature_name)
            .map(|(_, s)| {
                s.outputs
                    .iter()
                    .filter_map(|(k, i)| Some((k.clone(), i.datatype?)))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// One feature of a `tf.Example`.
#[derive(Debug, Clone, PartialEq)]
pub enum Feature {
    /// A `bytes_list` (strings).
    Bytes(Vec<Bytes>),
    /// A `float_list`.
    Float(Vec<f32>),
    /// An `int64_list`.
    Int64(Vec<i64>),
}

/// A `tf.Example`: features by name.
pub type Example = BTreeMap<String, Feature>;

/// The input of Classify and Regress: examples, and optionally a context
/// example whose features every example shares.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Examples {
    /// The examples, one result each.
    pub examples: Vec<Example>,
    /// Shared features (must not repeat in the examples).
    pub context: Option<Example>,
}

impl Examples {
    /// Examples without context.
    pub fn new(examples: Vec<Example>) -> Self {
        Examples {
            examples,
            context: None,
        }
    }

    /// Sets the context example.
    pub fn with_context(mut self, context: Example) -> Self {
        self.context = Some(context);
        self
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.examples.is_empty() {
            return Err(Error::invalid(
                "classify/regress needs at least one example",
            ));
        }
        if let Some(ctx) = &self.context {
            for (i, ex) in self.examples.iter().enumerate() {
                if let Some(k) = ex.keys().find(|k| ctx.contains_key(*k)) {
                    return Err(Error::invalid_at(
                        format!("examples[{i}].{k}"),
                        "a context feature must not repeat in an example",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// One class of a classification: label (may be empty) and score.
#[derive(Debug, Clone, PartialEq)]
pub struct Class {
    /// The label.
    pub label: String,
    /// The score.
    pub score: f32,
}

// ---------------------------------------------------------------------------
// JSON writing
// ---------------------------------------------------------------------------

fn write_str(out: &mut String, s: &str) {
    // serde_json's string escaping.
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned()));
}

fn write_f64(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("Infinity");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Infinity");
    } else {
        let _ = write!(out, "{v:?}");
    }
}

fn write_f32(out: &mut String, v: f32) {
    if v.is_finite() {
        let _ = write!(out, "{v:?}");
    } else {
        write_f64(out, f64::from(v));
    }
}

fn write_bytes(out: &mut String, b: &[u8], force_b64: bool) {
    match std::str::from_utf8(b) {
        Ok(s) if !force_b64 => write_str(out, s),
        _ => {
            out.push_str("{\"b64\":\"");
            out.push_str(&B64.encode(b));
            out.push_str("\"}");
        }
    }
}

/// The elements of a tensor, typed, for writing.
enum Elements {
    Bool(Vec<bool>),
    I64(Vec<i64>),
    U64(Vec<u64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Bytes(Vec<Bytes>, bool),
}

impl Elements {
    fn of(t: &Tensor) -> Result<Elements> {
        fn ints<T: inferlink_core::tensor::Element + Into<i64>>(t: &Tensor) -> Result<Elements> {
            Ok(Elements::I64(
                t.to_vec::<T>()?.into_iter().map(Into::into).collect(),
            ))
        }
        Ok(match t.datatype() {
            DataType::Bool => Elements::Bool(t.to_vec()?),
            DataType::Uint8 => ints::<u8>(t)?,
            DataType::Uint16 => ints::<u16>(t)?,
            DataType::Uint32 => ints::<u32>(t)?,
            DataType::Int8 => ints::<i8>(t)?,
            DataType::Int16 => ints::<i16>(t)?,
            DataType::Int32 => ints::<i32>(t)?,
            DataType::Int64 => Elements::I64(t.to_vec()?),
            DataType::Uint64 => Elements::U64(t.to_vec()?),
            DataType::Fp16 => {
                Elements::F32(t.to_vec::<f16>()?.into_iter().map(f16::to_f32).collect())
            }
            DataType::Bf16 => {
                Elements::F32(t.to_vec::<bf16>()?.into_iter().map(bf16::to_f32).collect())
            }
            DataType::Fp32 => Elements::F32(t.to_vec()?),
            DataType::Fp64 => Elements::F64(t.to_vec()?),
            DataType::Bytes => Elements::Bytes(t.to_byte_elements()?, t.name().ends_with("_bytes")),
        })
    }

    fn write(&self, out: &mut String, i: usize) {
        match self {
            Elements::Bool(v) => out.push_str(if v[i] { "true" } else { "false" }),
            Elements::I64(v) => {
                let _ = write!(out, "{}", v[i]);
            }
            Elements::U64(v) => {
                let _ = write!(out, "{}", v[i]);
            }
            Elements::F32(v) => write_f32(out, v[i]),
            Elements::F64(v) => write_f64(out, v[i]),
            Elements::Bytes(v, force) => write_bytes(out, &v[i], *force),
        }
    }
}

/// Writes elements `offset..` of a tensor of `shape` as nested arrays.
fn write_nested(out: &mut String, e: &Elements, shape: &[usize], offset: usize) {
    match shape.split_first() {
        None => e.write(out, offset),
        Some((&n, rest)) => {
            let stride: usize = rest.iter().product();
            out.push('[');
            for i in 0..n {
                if i > 0 {
                    out.push(',');
                }
                write_nested(out, e, rest, offset + i * stride);
            }
            out.push(']');
        }
    }
}

/// The REST predict body of a request.
///
/// Errors ([`ErrorKind::InvalidInput`]): no inputs, an input given twice, or
/// (row format) a scalar input or inputs whose first dimensions differ.
pub fn encode_predict_request(
    request: &InferRequest,
    format: RequestFormat,
    signature_name: Option<&str>,
) -> Result<String> {
    if request.inputs.is_empty() {
        return Err(Error::invalid("a predict request needs at least one input"));
    }
    for (i, t) in request.inputs.iter().enumerate() {
        if request.inputs[..i].iter().any(|o| o.name() == t.name()) {
            return Err(
                Error::invalid(format!("input \"{}\" is given twice", t.name()))
                    .with_context("tensor", t.name()),
            );
        }
    }
    let elements: Vec<Elements> = request
        .inputs
        .iter()
        .map(Elements::of)
        .collect::<Result<_>>()?;
    let mut out = String::with_capacity(
        64 + 8 * request
            .inputs
            .iter()
            .map(Tensor::element_count)
            .sum::<usize>(),
    );
    out.push('{');
    if let Some(sig) = signature_name {
        out.push_str("\"signature_name\":");
        write_str(&mut out, sig);
        out.push(',');
    }
    match format {
        RequestFormat::Columnar => {
            out.push_str("\"inputs\":{");
            for (k, (t, e)) in request.inputs.iter().zip(&elements).enumerate() {
                if k > 0 {
                    out.push(',');
                }
                write_str(&mut out, t.name());
                out.push(':');
                write_nested(&mut out, e, t.shape(), 0);
            }
            out.push('}');
        }
        RequestFormat::Row => {
            let batch = |t: &Tensor| {
                t.shape().first().copied().ok_or_else(|| {
                    Error::invalid(format!(
                        "input \"{}\" is a scalar; the row format (instances) needs a batch \
                         dimension (use request_format: columnar)",
                        t.name()
                    ))
                    .with_context("tensor", t.name())
                })
            };
            let n = batch(&request.inputs[0])?;
            for t in &request.inputs[1..] {
                if batch(t)? != n {
                    return Err(Error::invalid(format!(
                        "row format (instances) needs every input to share the first dimension: \
                         \"{}\" has {}, \"{}\" has {n} (use request_format: columnar)",
                        t.name(),
                        t.shape()[0],
                        request.inputs[0].name()
                    ))
                    .with_context("tensor", t.name()));
                }
            }
            out.push_str("\"instances\":[");
            for row in 0..n {
                if row > 0 {
                    out.push(',');
                }
                out.push('{');
                for (k, (t, e)) in request.inputs.iter().zip(&elements).enumerate() {
                    if k > 0 {
                        out.push(',');
                    }
                    let rest = &t.shape()[1..];
                    let stride: usize = rest.iter().product();
                    write_str(&mut out, t.name());
                    out.push(':');
                    write_nested(&mut out, e, rest, row * stride);
                }
                out.push('}');
            }
            out.push(']');
        }
    }
    out.push('}');
    Ok(out)
}

fn write_example(out: &mut String, ex: &Example) {
    out.push('{');
    for (k, (name, f)) in ex.iter().enumerate() {
        if k > 0 {
            out.push(',');
        }
        write_str(out, name);
        out.push(':');
        let len = match f {
            Feature::Bytes(v) => v.len(),
            Feature::Float(v) => v.len(),
            Feature::Int64(v) => v.len(),
        };
        let write = |o: &mut String, i: usize| match f {
            Feature::Bytes(v) => write_bytes(o, &v[i], false),
            // `{:?}` keeps a fraction (`1.0`), so TF reads a float, not an int64.
            Feature::Float(v) => write_f32(o, v[i]),
            Feature::Int64(v) => {
                let _ = write!(o, "{}", v[i]);
            }
        };
        if len == 1 {
            write(out, 0);
        } else {
            out.push('[');
            for i in 0..len {
                if i > 0 {
                    out.push(',');
                }
                write(out, i);
            }
            out.push(']');
        }
    }
    out.push('}');
}

/// The REST classify/regress body.
pub fn encode_examples(examples: &Examples, signature_name: Option<&str>) -> Result<String> {
    examples.check()?;
    let mut out = String::from("{");
    if let Some(sig) = signature_name {
        out.push_str("\"signature_name\":");
        write_str(&mut out, sig);
        out.push(',');
    }
    if let Some(ctx) = &examples.context {
        out.push_str("\"context\":");
        write_example(&mut out, ctx);
        out.push(',');
    }
    out.push_str("\"examples\":[");
    for (i, ex) in examples.examples.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_example(&mut out, ex);
    }
    out.push_str("]}");
    Ok(out)
}

// ---------------------------------------------------------------------------
// JSON reading
// ---------------------------------------------------------------------------

pub(crate) fn protocol_at(path: impl Into<String>, message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Protocol, message).with_path(path)
}

/// Parses a response body (NaN/Infinity tolerated).
pub fn parse_body(body: &[u8]) -> Result<Json> {
    json::parse(body).map_err(|e| {
        Error::new(
            ErrorKind::Protocol,
            format!("the response body is not JSON: {e}"),
        )
    })
}

/// Walks nested arrays: the shape, and the leaves in row-major order.
fn collect<'a>(
    v: &'a Json,
    depth: usize,
    shape: &mut Vec<usize>,
    rank: &mut Option<usize>,
    leaves: &mut Vec<&'a Json>,
    path: &str,
) -> Result<()> {
    let ragged = || protocol_at(path.to_owned(), "the nested arrays are not rectangular");
    match v {
        Json::Arr(items) => {
            if rank.is_some_and(|r| depth >= r) {
                return Err(ragged());
            }
            if shape.len() == depth {
                shape.push(items.len());
            } else if shape[depth] != items.len() {
                return Err(ragged());
            }
            for item in items {
                collect(item, depth + 1, shape, rank, leaves, path)?;
            }
            Ok(())
        }
        leaf => {
            match *rank {
                None => {
                    if shape.len() != depth {
                        return Err(ragged());
                    }
                    *rank = Some(depth);
                }
                Some(r) if r != depth => return Err(ragged()),
                Some(_) => {}
            }
            leaves.push(leaf);
            Ok(())
        }
    }
}

fn leaf_bytes(v: &Json, path: &str) -> Result<Bytes> {
    if let Some(s) = v.as_str() {
        return Ok(Bytes::copy_from_slice(s.as_bytes()));
    }
    if let Some(b) = v.as_b64() {
        return B64
            .decode(b)
            .map(Bytes::from)
            .map_err(|e| protocol_at(path.to_owned(), format!("bad base64 in {{\"b64\"}}: {e}")));
    }
    Err(protocol_at(
        path.to_owned(),
        format!("expected a string or {{\"b64\": …}}, got {}", v.kind()),
    ))
}

fn leaf_num(v: &Json, path: &str) -> Result<Number> {
    match v {
        Json::Num(n) => Ok(*n),
        other => Err(protocol_at(
            path.to_owned(),
            format!("expected a number, got {}", other.kind()),
        )),
    }
}

fn leaf_int<T: TryFrom<i64> + TryFrom<u64>>(v: &Json, path: &str, dt: DataType) -> Result<T> {
    let n = leaf_num(v, path)?;
    let out_of_range = || protocol_at(path.to_owned(), format!("{n:?} does not fit {dt}"));
    match n {
        Number::Int(i) => T::try_from(i).map_err(|_| out_of_range()),
        Number::Uint(u) => T::try_from(u).map_err(|_| out_of_range()),
        Number::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
            T::try_from(f as i64).map_err(|_| out_of_range())
        }
        Number::Float(_) => Err(protocol_at(
            path.to_owned(),
            format!("{dt} output holds a non-integer {n:?}"),
        )),
    }
}

/// Guesses a datatype from JSON leaves (see the module docs).
fn infer_type(leaves: &[&Json], path: &str) -> Result<DataType> {
    let Some(first) = leaves.first() else {
        return Ok(DataType::Fp32);
    };
    let dt = match first {
        Json::Bool(_) => DataType::Bool,
        Json::Str(_) => DataType::Bytes,
        v if v.as_b64().is_some() => DataType::Bytes,
        Json::Num(_) => {
            let mut all_int = true;
            let mut big = false;
            for l in leaves {
                match l {
                    Json::Num(Number::Float(_)) => all_int = false,
                    Json::Num(Number::Uint(_)) => big = true,
                    Json::Num(Number::Int(_)) => {}
                    other => {
                        return Err(protocol_at(
                            path.to_owned(),
                            format!("mixed values: a number and {}", other.kind()),
                        ));
                    }
                }
            }
            match (all_int, big) {
                (true, false) => DataType::Int64,
                (true, true) => DataType::Uint64,
                _ => DataType::Fp32,
            }
        }
        other => {
            return Err(protocol_at(
                path.to_owned(),
                format!("cannot read {} as a tensor element", other.kind()),
            ));
        }
    };
    Ok(dt)
}

/// One output tensor from its JSON value (nested arrays of leaves).
pub fn decode_tensor(name: &str, v: &Json, hint: Option<DataType>, path: &str) -> Result<Tensor> {
    let mut shape = Vec::new();
    let mut rank = None;
    let mut leaves = Vec::new();
    collect(v, 0, &mut shape, &mut rank, &mut leaves, path)?;
    tensor_from_leaves(name, shape, &leaves, hint, path)
}

fn tensor_from_leaves(
    name: &str,
    shape: Vec<usize>,
    leaves: &[&Json],
    hint: Option<DataType>,
    path: &str,
) -> Result<Tensor> {
    let dt = match hint {
        Some(d) => d,
        None => infer_type(leaves, path)?,
    };
    fn map<T>(leaves: &[&Json], f: impl Fn(&Json) -> Result<T>) -> Result<Vec<T>> {
        leaves.iter().map(|l| f(l)).collect()
    }
    let data = match dt {
        DataType::Bool => TensorData::Bool(map(leaves, |l| match l {
            Json::Bool(b) => Ok(*b),
            other => Err(protocol_at(
                path.to_owned(),
                format!("expected a boolean, got {}", other.kind()),
            )),
        })?),
        DataType::Uint8 => TensorData::Uint8(map(leaves, |l| leaf_int(l, path, dt))?),
        DataType::Uint16 => TensorData::Uint16(map(leaves, |l| leaf_int(l, path, dt))?),
        DataType::Uint32 => TensorData::Uint32(map(leaves, |l| leaf_int(l, path, dt))?),
        DataType::Uint64 => TensorData::Uint64(map(leaves, |l| leaf_int(l, path, dt))?),
        DataType::Int8 => TensorData::Int8(map(leaves, |l| leaf_int(l, path, dt))?),
        DataType::Int16 => TensorData::Int16(map(leaves, |l| leaf_int(l, path, dt))?),
        DataType::Int32 => TensorData::Int32(map(leaves, |l| leaf_int(l, path, dt))?),
        DataType::Int64 => TensorData::Int64(map(leaves, |l| leaf_int(l, path, dt))?),
        DataType::Fp16 => TensorData::Fp16(map(leaves, |l| {
            Ok(f16::from_f64(leaf_num(l, path)?.as_f64()))
        })?),
        DataType::Bf16 => TensorData::Bf16(map(leaves, |l| {
            Ok(bf16::from_f64(leaf_num(l, path)?.as_f64()))
        })?),
        DataType::Fp32 => {
            TensorData::Fp32(map(leaves, |l| Ok(leaf_num(l, path)?.as_f64() as f32))?)
        }
        DataType::Fp64 => TensorData::Fp64(map(leaves, |l| Ok(leaf_num(l, path)?.as_f64()))?),
        DataType::Bytes => TensorData::Bytes(map(leaves, |l| leaf_bytes(l, path))?),
    };
    Tensor::from_data(name, dt, shape, data).map_err(|e| protocol_at(path.to_owned(), e.message()))
}

/// Whether a JSON object names outputs (not a `{"b64"}` value).
fn is_named(v: &Json) -> bool {
    matches!(v, Json::Obj(_)) && v.as_b64().is_none()
}

/// Decodes a predict response body.
///
/// `hints` are the signature's output datatypes by key; `single_name` the
/// name for a single unnamed output (see the module docs).
pub fn decode_predict_response(
    body: &[u8],
    hints: &BTreeMap<String, DataType>,
    request: &InferRequest,
) -> Result<InferResponse> {
    let doc = parse_body(body)?;
    let single_name = |fallback: &str| -> String {
        if hints.len() == 1 {
            return hints.keys().next().cloned().unwrap_or_default();
        }
        if request.outputs.len() == 1 {
            return request.outputs[0].name.clone();
        }
        fallback.to_owned()
    };
    let mut outputs = Vec::new();
    if let Some(out) = doc.get("outputs") {
        match out {
            Json::Obj(members) if is_named(out) => {
                for (k, v) in members {
                    outputs.push(decode_tensor(
                        k,
                        v,
                        hints.get(k).copied(),
                        &format!("outputs.{k}"),
                    )?);
                }
            }
            v => {
                let name = single_name("outputs");
                outputs.push(decode_tensor(
                    &name,
                    v,
                    hints.get(&name).copied(),
                    "outputs",
                )?);
            }
        }
    } else if let Some(preds) = doc.get("predictions") {
        let Json::Arr(rows) = preds else {
            return Err(protocol_at(
                "predictions",
                format!("expected an array, got {}", preds.kind()),
            ));
        };
        if rows.first().is_some_and(is_named) {
            // One object per row: stack each named output.
            let mut names: Vec<&str> = Vec::new();
            if let Json::Obj(m) = &rows[0] {
                names = m.iter().map(|(k, _)| k.as_str()).collect();
            }
            for name in names {
                let path = format!("predictions[*].{name}");
                let mut column = Vec::with_capacity(rows.len());
                for (i, row) in rows.iter().enumerate() {
                    let v = row.get(name).ok_or_else(|| {
                        protocol_at(
                            format!("predictions[{i}]"),
                            format!("row lacks output \"{name}\""),
                        )
                    })?;
                    column.push(v.clone());
                }
                outputs.push(decode_tensor(
                    name,
                    &Json::Arr(column),
                    hints.get(name).copied(),
                    &path,
                )?);
            }
        } else {
            let name = single_name("predictions");
            outputs.push(decode_tensor(
                &name,
                preds,
                hints.get(&name).copied(),
                "predictions",
            )?);
        }
    } else {
        return Err(Error::new(
            ErrorKind::Protocol,
            "the predict response has neither \"outputs\" nor \"predictions\"",
        ));
    }
    if !request.outputs.is_empty() {
        outputs.retain(|t| request.outputs.iter().any(|o| o.name == t.name()));
    }
    Ok(InferResponse {
        model_name: String::new(),
        model_version: None,
        id: None,
        outputs,
        parameters: Default::default(),
    })
}

/// Decodes `{"results": [[[label, score], …], …]}`.
pub fn decode_classify_response(body: &[u8]) -> Result<Vec<Vec<Class>>> {
    let doc = parse_body(body)?;
    top_array(&doc, "results", "classify")?
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let Json::Arr(pairs) = r else {
                return Err(protocol_at(
                    format!("results[{i}]"),
                    "expected an array of [label, score]",
                ));
            };
            pairs
                .iter()
                .enumerate()
                .map(|(j, p)| {
                    let path = format!("results[{i}][{j}]");
                    match p {
                        Json::Arr(lv) if lv.len() == 2 => Ok(Class {
                            label: lv[0]
                                .as_str()
                                .ok_or_else(|| {
                                    protocol_at(path.clone(), "the label is not a string")
                                })?
                                .to_owned(),
                            score: leaf_num(&lv[1], &path)?.as_f64() as f32,
                        }),
                        _ => Err(protocol_at(path, "expected [label, score]")),
                    }
                })
                .collect()
        })
        .collect()
}

/// Decodes `{"results": [v, …]}`.
pub fn decode_regress_response(body: &[u8]) -> Result<Vec<f32>> {
    let doc = parse_body(body)?;
    top_array(&doc, "results", "regress")?
        .iter()
        .enumerate()
        .map(|(i, v)| Ok(leaf_num(v, &format!("results[{i}]"))?.as_f64() as f32))
        .collect()
}

/// The array under `key` of a `what` response document (a Protocol error
/// naming the key when it is missing or not an array).
fn top_array<'a>(doc: &'a Json, key: &str, what: &str) -> Result<&'a [Json]> {
    match doc.get(key) {
        Some(Json::Arr(items)) => Ok(items),
        _ => Err(protocol_at(
            key,
            format!("the {what} response has no \"{key}\" array"),
        )),
    }
}

fn int_text(v: &Json, path: &str) -> Result<i64> {
    match v {
        Json::Str(s) => s
            .trim()
            .parse()
            .map_err(|_| protocol_at(path.to_owned(), format!("\"{s}\" is not an integer"))),
        Json::Num(Number::Int(i)) => Ok(*i),
        other => Err(protocol_at(
            path.to_owned(),
            format!("expected an integer, got {}", other.kind()),
        )),
    }
}

/// Decodes `{"model_version_status": [{"version", "state", "status"}, …]}`.
pub fn decode_status(body: &[u8]) -> Result<Vec<VersionStatus>> {
    let doc = parse_body(body)?;
    top_array(&doc, "model_version_status", "status")?
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let path = format!("model_version_status[{i}]");
            let status = s.get("status");
            Ok(VersionStatus {
                version: int_text(
                    s.get("version").unwrap_or(&Json::Null),
                    &format!("{path}.version"),
                )?,
                state: ModelState::from_name(s.get("state").and_then(Json::as_str).unwrap_or("")),
                error_code: status
                    .and_then(|st| st.get("error_code"))
                    .and_then(Json::as_str)
                    .unwrap_or("OK")
                    .to_owned(),
                error_message: status
                    .and_then(|st| st.get("error_message"))
                    .and_then(Json::as_str)
                    .unwrap_or("")
                    .to_owned(),
            })
        })
        .collect()
}

fn tensor_info(v: &Json, path: &str) -> Result<TfTensorInfo> {
    let dtype_name = v
        .get("dtype")
        .and_then(Json::as_str)
        .unwrap_or("DT_INVALID")
        .to_owned();
    let shape = match v.get("tensor_shape") {
        None => None,
        Some(s) if matches!(s.get("unknown_rank"), Some(Json::Bool(true))) => None,
        Some(s) => {
            let dims = match s.get("dim") {
                None => Vec::new(),
                Some(Json::Arr(d)) => d
                    .iter()
                    .enumerate()
                    .map(|(i, d)| {
                        int_text(
                            d.get("size").unwrap_or(&Json::Str("0".into())),
                            &format!("{path}.tensor_shape.dim[{i}]"),
                        )
                    })
                    .collect::<Result<_>>()?,
                Some(other) => {
                    return Err(protocol_at(
                        format!("{path}.tensor_shape.dim"),
                        format!("expected an array, got {}", other.kind()),
                    ));
                }
            };
            Some(dims)
        }
    };
    Ok(TfTensorInfo {
        name: v
            .get("name")
            .and_then(Json::as_str)
            .unwrap_or("")
            .to_owned(),
        datatype: from_tf_dtype_name(&dtype_name),
        dtype_name,
        shape,
    })
}

/// Decodes the REST metadata response (`signature_def` only).
pub fn decode_metadata(body: &[u8]) -> Result<TfModelMetadata> {
    let doc = parse_body(body)?;
    let spec = doc.get("model_spec");
    let name = spec
        .and_then(|s| s.get("name"))
        .and_then(Json::as_str)
        .unwrap_or("")
        .to_owned();
    let version = match spec.and_then(|s| s.get("version")) {
        Some(v) if !matches!(v, Json::Null) => Some(int_text(v, "model_spec.version")?),
        _ => None,
    };
    let defs = doc
        .get("metadata")
        .and_then(|m| m.get("signature_def"))
        .and_then(|m| m.get("signature_def"));
    let Some(Json::Obj(defs)) = defs else {
        return Err(protocol_at(
            "metadata.signature_def.signature_def",
            "the metadata response has no signature map",
        ));
    };
    let mut signatures = BTreeMap::new();
    for (sig, def) in defs {
        let path = format!("metadata.signature_def.signature_def.{sig}");
        let tensors = |key: &str| -> Result<BTreeMap<String, TfTensorInfo>> {
            match def.get(key) {
                None => Ok(BTreeMap::new()),
                Some(Json::Obj(m)) => m
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), tensor_info(v, &format!("{path}.{key}.{k}"))?)))
                    .collect(),
                Some(other) => Err(protocol_at(
                    format!("{path}.{key}"),
                    format!("expected an object, got {}", other.kind()),
                )),
            }
        };
        signatures.insert(
            sig.clone(),
            Signature {
                method_name: def
                    .get("method_name")
                    .and_then(Json::as_str)
                    .unwrap_or("")
                    .to_owned(),
                inputs: tensors("inputs")?,
                outputs: tensors("outputs")?,
            },
        );
    }
    Ok(TfModelMetadata {
        name,
        version,
        signatures,
    })
}

#[cfg(test)]
mod tests;
