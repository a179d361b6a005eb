//! The REST wire format of the Open Inference Protocol ⇄ inferlink's tensor model.
//!
//! * **JSON** ([`TensorEncoding::Json`]): tensors as flat JSON arrays (the
//!   only form every server accepts); nested arrays are accepted when
//!   decoding. `BYTES` elements are JSON strings.
//! * **Binary tensor data extension** ([`TensorEncoding::Binary`]): a JSON
//!   header followed by the tensors' raw little-endian bytes; the header's
//!   length travels in `Inference-Header-Content-Length`, each tensor's byte
//!   count in its `binary_data_size` parameter. Response outputs are sliced
//!   out of the body without copying ([`bytes::Bytes::slice`]).
//! * [`TensorEncoding::Auto`]: JSON, except for the tensors JSON cannot
//!   carry (`BYTES` that are not UTF-8, NaN or infinite floats) or that most
//!   servers refuse in JSON (`FP16`, `BF16`), which travel binary.
//!
//! Every decoding error is an [`ErrorKind::Protocol`] error whose path names
//! the place in the response (`outputs[1].data`) and whose context names
//! the output; every encoding error an [`ErrorKind::InvalidInput`] error
//! naming the input.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use half::{bf16, f16};
use inferlink_core::tensor::TensorData;
use inferlink_core::{
    DataType, Error, ErrorKind, InferRequest, InferResponse, ModelInfo, ModelMetadata, Parameter,
    Parameters, Result, Tensor, TensorSpec,
};
use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The header that carries the JSON part's length in a binary body.
pub const HEADER_CONTENT_LENGTH: &str = "inference-header-content-length";
/// The media type of a body that uses the binary tensor data extension.
pub const OCTET_STREAM: &str = "application/octet-stream";
/// The media type of a pure JSON body.
pub const JSON: &str = "application/json";

/// Per-tensor parameter: the tensor's byte count in the binary section.
pub const BINARY_DATA_SIZE: &str = "binary_data_size";
/// Per-output parameter: return this output in binary.
pub const BINARY_DATA: &str = "binary_data";
/// Request parameter: return every output in binary.
pub const BINARY_DATA_OUTPUT: &str = "binary_data_output";

/// How tensors travel in REST requests (configuration key `tensor_encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TensorEncoding {
    /// Every tensor as JSON; tensors JSON cannot carry (BYTES that are not
    /// UTF-8, NaN or infinite floats) are an [`ErrorKind::InvalidInput`]
    /// error saying so. FP16 and BF16 are written as numbers: MLServer takes
    /// them, Triton and KServe refuse them (400). Works with every server.
    #[default]
    Json,
    /// Every input in binary, and every output asked for in binary (the
    /// server must implement the binary tensor data extension: Triton and
    /// KServe do, MLServer does not).
    Binary,
    /// JSON, except inputs JSON cannot carry and FP16/BF16 inputs, which go
    /// binary; outputs as the server chooses.
    Auto,
}

impl TensorEncoding {
    /// The configuration word: `json`, `binary` or `auto`.
    pub fn as_str(self) -> &'static str {
        match self {
            TensorEncoding::Json => "json",
            TensorEncoding::Binary => "binary",
            TensorEncoding::Auto => "auto",
        }
    }
}

impl fmt::Display for TensorEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TensorEncoding {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(TensorEncoding::Json),
            "binary" => Ok(TensorEncoding::Binary),
            "auto" => Ok(TensorEncoding::Auto),
            _ => Err(Error::new(
                ErrorKind::Config,
                format!(
                    "tensor encoding \"{}\" is not one of json, binary, auto",
                    s.escape_debug()
                ),
            )),
        }
    }
}

/// An encoded REST request body: a JSON document, followed by binary tensor
/// data when some inputs travel binary. The parts are kept apart so the
/// transport sends them back to back without joining them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestBody {
    /// The JSON document: the whole body, or the header before the binary data.
    pub json: Bytes,
    /// The binary tensor data after the JSON, one part per binary input in
    /// input order; empty when the body is pure JSON.
    pub binary: Vec<Bytes>,
    /// When binary data follows the JSON: the JSON header's length, to send as
    /// `Inference-Header-Content-Length` with `Content-Type: application/octet-stream`.
    pub json_len: Option<usize>,
}

impl RestBody {
    /// The `Content-Type` this body is sent with.
    pub fn content_type(&self) -> &'static str {
        if self.json_len.is_some() {
            OCTET_STREAM
        } else {
            JSON
        }
    }

    /// The body's total length in bytes.
    pub fn len(&self) -> usize {
        self.json.len() + self.binary.iter().map(Bytes::len).sum::<usize>()
    }

    /// True when the body has no bytes at all (never the case for a valid request).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole body in one buffer (copies when there is binary data).
    pub fn to_bytes(&self) -> Bytes {
        if self.binary.is_empty() {
            return self.json.clone();
        }
        let mut out = Vec::with_capacity(self.len());
        out.extend_from_slice(&self.json);
        for part in &self.binary {
            out.extend_from_slice(part);
        }
        Bytes::from(out)
    }

    /// The parts in sending order: the JSON, then each binary tensor.
    pub fn into_parts(self) -> impl Iterator<Item = Bytes> {
        std::iter::once(self.json).chain(self.binary)
    }
}

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

/// True for the datatypes most servers refuse in JSON (FP16, BF16: Triton
/// and KServe answer 400), so [`TensorEncoding::Auto`] sends them binary.
pub fn prefers_binary(tensor: &Tensor) -> bool {
    matches!(tensor.datatype(), DataType::Fp16 | DataType::Bf16)
}

/// Why a tensor cannot travel as JSON at all, if it cannot: BYTES that are
/// not UTF-8, NaN or infinite floats.
pub fn json_obstacle(tensor: &Tensor) -> Option<String> {
    fn non_finite<T: Copy>(values: &[T], finite: impl Fn(T) -> bool) -> Option<usize> {
        values.iter().position(|&v| !finite(v))
    }
    let raw_non_finite = |size: usize, finite: &dyn Fn(&[u8]) -> bool| match tensor.data() {
        TensorData::Raw(raw) => raw.chunks_exact(size).position(|c| !finite(c)),
        _ => None,
    };
    let at = match tensor.datatype() {
        DataType::Fp16 => match tensor.as_slice::<f16>() {
            Some(v) => non_finite(v, f16::is_finite),
            None => raw_non_finite(2, &|c| f16::from_le_bytes([c[0], c[1]]).is_finite()),
        },
        DataType::Bf16 => match tensor.as_slice::<bf16>() {
            Some(v) => non_finite(v, bf16::is_finite),
            None => raw_non_finite(2, &|c| bf16::from_le_bytes([c[0], c[1]]).is_finite()),
        },
        DataType::Fp32 => match tensor.as_slice::<f32>() {
            Some(v) => non_finite(v, f32::is_finite),
            None => raw_non_finite(4, &|c| {
                f32::from_le_bytes([c[0], c[1], c[2], c[3]]).is_finite()
            }),
        },
        DataType::Fp64 => match tensor.as_slice::<f64>() {
            Some(v) => non_finite(v, f64::is_finite),
            None => raw_non_finite(8, &|c| {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                f64::from_le_bytes(a).is_finite()
            }),
        },
        DataType::Bytes => {
            let elements = tensor.to_byte_elements().ok()?;
            let i = elements
                .iter()
                .position(|e| std::str::from_utf8(e).is_err())?;
            return Some(format!(
                "BYTES element {i} is not UTF-8 text, which JSON cannot carry"
            ));
        }
        _ => None,
    };
    at.map(|i| format!("element {i} is NaN or infinite, which JSON cannot carry"))
}

/// The byte count of a tensor in the binary section (its raw little-endian
/// layout; BYTES with their 4-byte length prefixes).
pub fn raw_len(tensor: &Tensor) -> usize {
    binary_len(tensor)
}

/// The binary section's byte count of a tensor.
fn binary_len(tensor: &Tensor) -> usize {
    match tensor.data() {
        TensorData::Raw(raw) => raw.len(),
        TensorData::Bytes(elements) => elements.iter().map(|e| 4 + e.len()).sum(),
        _ => tensor.element_count() * tensor.datatype().element_size().unwrap_or(0),
    }
}

/// Appends a tensor's raw little-endian layout to `out` in one pass.
///
/// Typed numeric data is copied as one block on little-endian machines.
pub fn put_raw(out: &mut Vec<u8>, tensor: &Tensor) {
    fn put<T: bytemuck::NoUninit>(out: &mut Vec<u8>, values: &[T], le: impl Fn(&T, &mut [u8])) {
        if cfg!(target_endian = "little") {
            out.extend_from_slice(bytemuck::cast_slice(values));
        } else {
            let size = std::mem::size_of::<T>();
            let start = out.len();
            out.resize(start + std::mem::size_of_val(values), 0);
            for (dst, v) in out[start..].chunks_exact_mut(size).zip(values) {
                le(v, dst);
            }
        }
    }
    macro_rules! le {
        () => {
            |v, dst: &mut [u8]| dst.copy_from_slice(&v.to_le_bytes())
        };
    }
    match tensor.data() {
        TensorData::Raw(raw) => out.extend_from_slice(raw),
        TensorData::Bool(v) => put(out, v, |b, dst| dst[0] = u8::from(*b)),
        TensorData::Uint8(v) => out.extend_from_slice(v),
        TensorData::Int8(v) => put(out, v, le!()),
        TensorData::Uint16(v) => put(out, v, le!()),
        TensorData::Int16(v) => put(out, v, le!()),
        TensorData::Uint32(v) => put(out, v, le!()),
        TensorData::Int32(v) => put(out, v, le!()),
        TensorData::Uint64(v) => put(out, v, le!()),
        TensorData::Int64(v) => put(out, v, le!()),
        TensorData::Fp16(v) => put(out, v, le!()),
        TensorData::Bf16(v) => put(out, v, le!()),
        TensorData::Fp32(v) => put(out, v, le!()),
        TensorData::Fp64(v) => put(out, v, le!()),
        TensorData::Bytes(elements) => {
            for e in elements {
                // Element lengths are checked (< 4 GiB) when the tensor is built.
                out.extend_from_slice(&(e.len() as u32).to_le_bytes());
                out.extend_from_slice(e);
            }
        }
        // `TensorData` is non-exhaustive; a future variant falls back to the tensor's own layout.
        _ => {
            if let Ok(raw) = tensor.to_raw() {
                out.extend_from_slice(&raw);
            }
        }
    }
}

/// A tensor's raw little-endian layout: shared without copying when held
/// raw, else written in one pass (the gRPC `raw_input_contents` form).
pub fn raw_bytes(tensor: &Tensor) -> Bytes {
    if let TensorData::Raw(raw) = tensor.data() {
        return raw.clone();
    }
    let mut out = Vec::with_capacity(binary_len(tensor));
    put_raw(&mut out, tensor);
    Bytes::from(out)
}

/// Encodes an inference request for `POST /v2/models/{name}/infer`.
///
/// Binary inputs are shared when held raw and copied once otherwise; see
/// [`encode_infer_request_owned`] for the form that never copies numbers.
///
/// Errors: [`ErrorKind::InvalidInput`] naming the input (path
/// `inputs[i]`) when a tensor cannot travel in the chosen encoding.
pub fn encode_infer_request(request: &InferRequest, encoding: TensorEncoding) -> Result<RestBody> {
    let binary = binary_flags(request, encoding)?;
    encode_infer_request_with(request, &binary, encoding == TensorEncoding::Binary)
}

/// [`encode_infer_request`] taking the request: binary inputs become body
/// parts without a copy (raw tensors are shared; typed numbers hand over their
/// memory on little-endian machines, see [`Tensor::into_raw`]).
pub fn encode_infer_request_owned(
    request: InferRequest,
    encoding: TensorEncoding,
) -> Result<RestBody> {
    let binary = binary_flags(&request, encoding)?;
    encode_infer_request_owned_with(request, &binary, encoding == TensorEncoding::Binary)
}

/// Encodes an inference request with the encoding chosen per input:
/// `binary[i]` sends input `i` in the binary section (the caller checked that
/// the others can travel as JSON, e.g. with [`json_obstacle`]), and
/// `binary_outputs` asks for every output in binary (`binary_data_output`
/// and `binary_data` on each requested output). For vendor crates that pick
/// per tensor, such as Triton's size threshold.
///
/// Errors: [`ErrorKind::InvalidInput`] when `binary` does not have one entry
/// per input, or a JSON input cannot be written.
pub fn encode_infer_request_with(
    request: &InferRequest,
    binary: &[bool],
    binary_outputs: bool,
) -> Result<RestBody> {
    let json = json_document(request, binary, binary_outputs)?;
    let parts = request
        .inputs
        .iter()
        .zip(binary)
        .filter(|(_, b)| **b)
        .map(|(t, _)| raw_bytes(t))
        .collect();
    Ok(rest_body(json, parts))
}

/// [`encode_infer_request_with`] taking the request, without copying binary
/// inputs (see [`encode_infer_request_owned`]).
pub fn encode_infer_request_owned_with(
    request: InferRequest,
    binary: &[bool],
    binary_outputs: bool,
) -> Result<RestBody> {
    let json = json_document(&request, binary, binary_outputs)?;
    let mut parts = Vec::new();
    for (i, (t, _)) in request
        .inputs
        .into_iter()
        .zip(binary)
        .enumerate()
        .filter(|(_, (_, b))| **b)
    {
        let name = t.name().to_owned();
        parts.push(t.into_raw().map_err(|e| {
            Error::invalid_at(format!("inputs[{i}]"), e.message().to_owned())
                .with_context("tensor", name)
        })?);
    }
    Ok(rest_body(json, parts))
}

fn rest_body(json: Vec<u8>, binary: Vec<Bytes>) -> RestBody {
    let json_len = (!binary.is_empty()).then_some(json.len());
    RestBody {
        json: Bytes::from(json),
        binary,
        json_len,
    }
}

/// Which inputs travel binary under `encoding`; an input JSON cannot carry
/// under [`TensorEncoding::Json`] is an error naming it.
fn binary_flags(request: &InferRequest, encoding: TensorEncoding) -> Result<Vec<bool>> {
    let mut binary = Vec::with_capacity(request.inputs.len());
    for (i, t) in request.inputs.iter().enumerate() {
        let as_binary = match encoding {
            TensorEncoding::Binary => true,
            TensorEncoding::Json => {
                if let Some(why) = json_obstacle(t) {
                    return Err(input_error(
                        i,
                        t,
                        format!(
                            "{why}; set tensor_encoding: binary (the server must support the \
                             binary tensor data extension) or protocol: grpc"
                        ),
                    ));
                }
                false
            }
            TensorEncoding::Auto => prefers_binary(t) || json_obstacle(t).is_some(),
        };
        binary.push(as_binary);
    }
    Ok(binary)
}

/// The JSON document of a request whose inputs travel binary per `binary`.
fn json_document(request: &InferRequest, binary: &[bool], binary_outputs: bool) -> Result<Vec<u8>> {
    if binary.len() != request.inputs.len() {
        return Err(Error::invalid(format!(
            "{} binary flags for {} inputs",
            binary.len(),
            request.inputs.len()
        )));
    }
    let header = JsonRequest {
        request,
        binary,
        binary_outputs,
    };
    // JSON numbers take a few bytes each; start big enough for typical data.
    let json_guess = 256
        + request
            .inputs
            .iter()
            .zip(binary)
            .filter(|(_, b)| !**b)
            .map(|(t, _)| t.element_count().saturating_mul(12))
            .fold(0usize, usize::saturating_add);
    let mut out = Vec::with_capacity(json_guess.min(1 << 30));
    serde_json::to_writer(&mut out, &header)
        .map_err(|e| Error::invalid(format!("the request cannot be written as JSON: {e}")))?;
    Ok(out)
}

fn input_error(i: usize, t: &Tensor, why: String) -> Error {
    Error::invalid_at(
        format!("inputs[{i}]"),
        format!("input \"{}\": {why}", t.name().escape_debug()),
    )
    .with_context("tensor", t.name())
}

struct JsonRequest<'a> {
    request: &'a InferRequest,
    binary: &'a [bool],
    binary_outputs: bool,
}

impl Serialize for JsonRequest<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let r = self.request;
        let mut m = s.serialize_map(None)?;
        if let Some(id) = &r.id {
            m.serialize_entry("id", id)?;
        }
        let extra: &[(&str, Parameter)] = if self.binary_outputs {
            &[(BINARY_DATA_OUTPUT, Parameter::Bool(true))]
        } else {
            &[]
        };
        if !r.parameters.is_empty() || !extra.is_empty() {
            m.serialize_entry("parameters", &Params(&r.parameters, extra))?;
        }
        m.serialize_entry(
            "inputs",
            &Seq(r
                .inputs
                .iter()
                .zip(self.binary)
                .map(|(t, &b)| JsonInput(t, b))),
        )?;
        if !r.outputs.is_empty() {
            let binary_outputs = self.binary_outputs;
            m.serialize_entry(
                "outputs",
                &Seq(r.outputs.iter().map(|o| {
                    let asked = binary_outputs && !o.parameters.contains_key(BINARY_DATA);
                    JsonRequestedOutput(&o.name, &o.parameters, asked)
                })),
            )?;
        }
        m.end()
    }
}

/// Serializes an iterator as a JSON array (cloned per use).
struct Seq<I>(I);

impl<I> Serialize for Seq<I>
where
    I: Iterator + Clone,
    I::Item: Serialize,
{
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_seq(self.0.clone())
    }
}

/// Parameters plus entries the codec adds (which win over the caller's).
struct Params<'a>(&'a Parameters, &'a [(&'a str, Parameter)]);

impl Serialize for Params<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for (k, v) in self.0 {
            if !self.1.iter().any(|(e, _)| e == k) {
                m.serialize_entry(k, &JsonParam(v))?;
            }
        }
        for (k, v) in self.1 {
            m.serialize_entry(k, &JsonParam(v))?;
        }
        m.end()
    }
}

/// A parameter value; non-finite doubles are an error rather than `null`.
struct JsonParam<'a>(&'a Parameter);

impl Serialize for JsonParam<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self.0 {
            Parameter::Double(d) if !d.is_finite() => Err(serde::ser::Error::custom(
                "a parameter is NaN or infinite, which JSON cannot carry",
            )),
            p => p.serialize(s),
        }
    }
}

struct JsonInput<'a>(&'a Tensor, bool);

impl Serialize for JsonInput<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let (t, binary) = (self.0, self.1);
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("name", t.name())?;
        m.serialize_entry("shape", t.shape())?;
        m.serialize_entry("datatype", t.datatype().as_str())?;
        if binary {
            let size = [(BINARY_DATA_SIZE, Parameter::Int(binary_len(t) as i64))];
            m.serialize_entry("parameters", &Params(t.parameters(), &size))?;
        } else {
            if !t.parameters().is_empty() {
                m.serialize_entry("parameters", &Params(t.parameters(), &[]))?;
            }
            m.serialize_entry("data", &JsonData(t))?;
        }
        m.end()
    }
}

struct JsonRequestedOutput<'a>(&'a str, &'a Parameters, bool);

impl Serialize for JsonRequestedOutput<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("name", self.0)?;
        let extra: &[(&str, Parameter)] = if self.2 {
            &[(BINARY_DATA, Parameter::Bool(true))]
        } else {
            &[]
        };
        if !self.1.is_empty() || !extra.is_empty() {
            m.serialize_entry("parameters", &Params(self.1, extra))?;
        }
        m.end()
    }
}

/// A tensor's elements as a flat JSON array.
struct JsonData<'a>(&'a Tensor);

impl Serialize for JsonData<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        fn seq<S: Serializer, T: Serialize>(
            s: S,
            values: impl ExactSizeIterator<Item = T>,
        ) -> std::result::Result<S::Ok, S::Error> {
            let mut q = s.serialize_seq(Some(values.len()))?;
            for v in values {
                q.serialize_element(&v)?;
            }
            q.end()
        }
        fn floats<S: Serializer, T: Serialize + Copy>(
            s: S,
            values: impl ExactSizeIterator<Item = T>,
            finite: impl Fn(T) -> bool,
        ) -> std::result::Result<S::Ok, S::Error> {
            let mut q = s.serialize_seq(Some(values.len()))?;
            for v in values {
                if !finite(v) {
                    return Err(serde::ser::Error::custom(
                        "a value is NaN or infinite, which JSON cannot carry",
                    ));
                }
                q.serialize_element(&v)?;
            }
            q.end()
        }
        fn raw<const N: usize, T: 'static>(
            raw: &Bytes,
            f: fn([u8; N]) -> T,
        ) -> impl ExactSizeIterator<Item = T> + '_ {
            raw.chunks_exact(N).map(move |c| {
                let mut a = [0u8; N];
                a.copy_from_slice(c);
                f(a)
            })
        }
        let t = self.0;
        match (t.data(), t.datatype()) {
            (TensorData::Bool(v), _) => seq(s, v.iter()),
            (TensorData::Uint8(v), _) => seq(s, v.iter()),
            (TensorData::Uint16(v), _) => seq(s, v.iter()),
            (TensorData::Uint32(v), _) => seq(s, v.iter()),
            (TensorData::Uint64(v), _) => seq(s, v.iter()),
            (TensorData::Int8(v), _) => seq(s, v.iter()),
            (TensorData::Int16(v), _) => seq(s, v.iter()),
            (TensorData::Int32(v), _) => seq(s, v.iter()),
            (TensorData::Int64(v), _) => seq(s, v.iter()),
            (TensorData::Fp32(v), _) => floats(s, v.iter().copied(), f32::is_finite),
            (TensorData::Fp64(v), _) => floats(s, v.iter().copied(), f64::is_finite),
            (TensorData::Fp16(v), _) => floats(s, v.iter().map(|h| h.to_f32()), f32::is_finite),
            (TensorData::Bf16(v), _) => floats(s, v.iter().map(|h| h.to_f32()), f32::is_finite),
            (TensorData::Bytes(v), _) => {
                let mut q = s.serialize_seq(Some(v.len()))?;
                for e in v {
                    let text = std::str::from_utf8(e).map_err(|_| {
                        serde::ser::Error::custom("a BYTES element is not UTF-8 text")
                    })?;
                    q.serialize_element(text)?;
                }
                q.end()
            }
            (TensorData::Raw(r), DataType::Bool) => seq(s, r.iter().map(|&b| b != 0)),
            (TensorData::Raw(r), DataType::Uint8) => seq(s, r.iter()),
            (TensorData::Raw(r), DataType::Int8) => seq(s, r.iter().map(|&b| b as i8)),
            (TensorData::Raw(r), DataType::Uint16) => seq(s, raw(r, u16::from_le_bytes)),
            (TensorData::Raw(r), DataType::Int16) => seq(s, raw(r, i16::from_le_bytes)),
            (TensorData::Raw(r), DataType::Uint32) => seq(s, raw(r, u32::from_le_bytes)),
            (TensorData::Raw(r), DataType::Int32) => seq(s, raw(r, i32::from_le_bytes)),
            (TensorData::Raw(r), DataType::Uint64) => seq(s, raw(r, u64::from_le_bytes)),
            (TensorData::Raw(r), DataType::Int64) => seq(s, raw(r, i64::from_le_bytes)),
            (TensorData::Raw(r), DataType::Fp32) => {
                floats(s, raw(r, f32::from_le_bytes), f32::is_finite)
            }
            (TensorData::Raw(r), DataType::Fp64) => {
                floats(s, raw(r, f64::from_le_bytes), f64::is_finite)
            }
            (TensorData::Raw(r), DataType::Fp16) => floats(
                s,
                raw(r, |b| f16::from_le_bytes(b).to_f32()),
                f32::is_finite,
            ),
            (TensorData::Raw(r), DataType::Bf16) => floats(
                s,
                raw(r, |b| bf16::from_le_bytes(b).to_f32()),
                f32::is_finite,
            ),
            (TensorData::Raw(_), DataType::Bytes) => {
                let elements = t.to_byte_elements().map_err(serde::ser::Error::custom)?;
                let mut q = s.serialize_seq(Some(elements.len()))?;
                for e in &elements {
                    let text = std::str::from_utf8(e).map_err(|_| {
                        serde::ser::Error::custom("a BYTES element is not UTF-8 text")
                    })?;
                    q.serialize_element(text)?;
                }
                q.end()
            }
            (_, dt) => Err(serde::ser::Error::custom(format!(
                "{dt} tensors cannot travel as JSON"
            ))),
        }
    }
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

/// Reads the `Inference-Header-Content-Length` value, if present.
///
/// Errors: [`ErrorKind::Protocol`] when it is not a non-negative integer.
pub fn parse_header_length(value: Option<&[u8]>) -> Result<Option<usize>> {
    let Some(value) = value else {
        return Ok(None);
    };
    std::str::from_utf8(value)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .map(Some)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Protocol,
                format!(
                    "the response's Inference-Header-Content-Length \"{}\" is not a byte count",
                    String::from_utf8_lossy(value).escape_debug()
                ),
            )
        })
}

/// Decodes an inference response body.
///
/// `json_len` is the `Inference-Header-Content-Length` value when the
/// response carried one (see [`parse_header_length`]): the JSON header is
/// `body[..json_len]`, and outputs with a `binary_data_size` parameter are
/// consecutive slices of the rest, shared with `body` without copying.
/// Outputs come back typed when sent as JSON, raw when sent binary.
///
/// Errors: [`ErrorKind::Protocol`] with the path of the offending field and
/// the output's name as context: malformed JSON, an unknown datatype, a
/// negative dimension, data that does not fit the shape, a header length
/// beyond the body, or binary sizes that do not add up to the body.
pub fn decode_infer_response(body: Bytes, json_len: Option<usize>) -> Result<InferResponse> {
    let (header, binary) = match json_len {
        Some(n) if n > body.len() => {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "Inference-Header-Content-Length is {n} but the body has only {} bytes",
                    body.len()
                ),
            ));
        }
        Some(n) => (body.slice(..n), body.slice(n..)),
        None => (body, Bytes::new()),
    };
    let parsed = parse_response(&header)?;
    let mut outputs = Vec::with_capacity(parsed.outputs.as_ref().map_or(0, Vec::len));
    let mut at = 0usize;
    for (i, o) in parsed.outputs.unwrap_or_default().into_iter().enumerate() {
        let path = format!("outputs[{i}]");
        let name = o.name.clone();
        let tensor = decode_output(o, &binary, &mut at)
            .map_err(|e| e.with_path(path).with_context("output", name.clone()))?;
        outputs.push(tensor);
    }
    if at != binary.len() {
        return Err(Error::new(
            ErrorKind::Protocol,
            format!(
                "the body has {} bytes of binary data but the outputs' binary_data_size add up to {at}",
                binary.len()
            ),
        ));
    }
    Ok(InferResponse {
        model_name: parsed.model_name.map(|s| s.0).unwrap_or_default(),
        model_version: parsed.model_version.map(|s| s.0).filter(|v| !v.is_empty()),
        id: parsed.id.map(|s| s.0),
        outputs,
        parameters: parameters_from_json(parsed.parameters),
    })
}

fn decode_output(o: JsonOutput<'_>, binary: &Bytes, at: &mut usize) -> Result<Tensor> {
    let datatype: DataType = o.datatype.parse().map_err(|e: Error| {
        Error::new(ErrorKind::Protocol, e.message().to_owned()).with_path("datatype")
    })?;
    let shape = o
        .shape
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(d, n)| {
            usize::try_from(n).map_err(|_| {
                Error::new(ErrorKind::Protocol, format!("dimension {n} is negative"))
                    .with_path(format!("shape[{d}]"))
            })
        })
        .collect::<Result<Vec<usize>>>()?;
    let mut parameters = parameters_from_json(o.parameters);
    let binary_size = parameters.remove(BINARY_DATA_SIZE);
    let protocol = |e: Error| Error::new(ErrorKind::Protocol, e.message().to_owned());
    let tensor = match (binary_size, o.data) {
        (Some(size), _) => {
            let size = match size {
                Parameter::Int(n) if n >= 0 => n as u64,
                Parameter::Uint(n) => n,
                _ => {
                    return Err(Error::new(
                        ErrorKind::Protocol,
                        "binary_data_size is not a non-negative integer",
                    )
                    .with_path("parameters.binary_data_size"));
                }
            };
            let remaining = binary.len() - *at;
            if size > remaining as u64 {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    format!(
                        "binary_data_size is {size} but only {remaining} bytes of binary data remain"
                    ),
                )
                .with_path("parameters.binary_data_size"));
            }
            let start = *at;
            *at += size as usize;
            Tensor::from_raw(o.name, datatype, shape, binary.slice(start..*at)).map_err(protocol)?
        }
        (None, Some(OutputData::Typed(data))) => {
            Tensor::from_data(o.name, datatype, shape, data).map_err(protocol)?
        }
        (None, Some(OutputData::Json(raw))) => {
            let data =
                decode_json_data(raw.get(), datatype, &shape).map_err(|e| e.with_path("data"))?;
            Tensor::from_data(o.name, datatype, shape, data).map_err(protocol)?
        }
        (None, None) => {
            let data = decode_json_data("[]", datatype, &shape).map_err(|e| e.with_path("data"))?;
            Tensor::from_data(o.name, datatype, shape, data).map_err(|_| {
                Error::new(
                    ErrorKind::Protocol,
                    "the output has neither data nor binary_data_size",
                )
            })?
        }
    };
    Ok(tensor.with_parameters(parameters))
}

/// Decodes a JSON `data` array (flat or nested) into typed values.
fn decode_json_data(text: &str, datatype: DataType, shape: &[usize]) -> Result<TensorData> {
    // Each element takes at least one character: never trust a shape for more.
    let capacity = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .unwrap_or(0)
        .min(text.len());
    fn run<T: JsonElement>(text: &str, capacity: usize) -> Result<Vec<T>> {
        let mut out = Vec::with_capacity(capacity);
        let mut de = serde_json::Deserializer::from_str(text);
        Flat(&mut out)
            .deserialize(&mut de)
            .and_then(|()| de.end())
            .map_err(|e| Error::new(ErrorKind::Protocol, format!("tensor data: {e}")))?;
        Ok(out)
    }
    Ok(match datatype {
        DataType::Bool => TensorData::Bool(run(text, capacity)?),
        DataType::Uint8 => TensorData::Uint8(run(text, capacity)?),
        DataType::Uint16 => TensorData::Uint16(run(text, capacity)?),
        DataType::Uint32 => TensorData::Uint32(run(text, capacity)?),
        DataType::Uint64 => TensorData::Uint64(run(text, capacity)?),
        DataType::Int8 => TensorData::Int8(run(text, capacity)?),
        DataType::Int16 => TensorData::Int16(run(text, capacity)?),
        DataType::Int32 => TensorData::Int32(run(text, capacity)?),
        DataType::Int64 => TensorData::Int64(run(text, capacity)?),
        DataType::Fp16 => TensorData::Fp16(run(text, capacity)?),
        DataType::Bf16 => TensorData::Bf16(run(text, capacity)?),
        DataType::Fp32 => TensorData::Fp32(run(text, capacity)?),
        DataType::Fp64 => TensorData::Fp64(run(text, capacity)?),
        DataType::Bytes => TensorData::Bytes(run(text, capacity)?),
    })
}

/// An element type as it appears in JSON `data`.
trait JsonElement: Sized {
    const NAME: &'static str;
    fn from_u64(_: u64) -> Option<Self> {
        None
    }
    fn from_i64(_: i64) -> Option<Self> {
        None
    }
    fn from_f64(_: f64) -> Option<Self> {
        None
    }
    fn from_bool(_: bool) -> Option<Self> {
        None
    }
    fn from_null() -> Option<Self> {
        None
    }
    fn from_text(_: &str) -> Option<Self> {
        None
    }
}

macro_rules! int_element {
    ($t:ty, $name:literal) => {
        impl JsonElement for $t {
            const NAME: &'static str = $name;
            fn from_u64(v: u64) -> Option<Self> {
                <$t>::try_from(v).ok()
            }
            fn from_i64(v: i64) -> Option<Self> {
                <$t>::try_from(v).ok()
            }
            /// Whole numbers written as floats (`2.0`) are accepted.
            fn from_f64(v: f64) -> Option<Self> {
                if v.fract() == 0.0 && v >= <$t>::MIN as f64 && v <= <$t>::MAX as f64 {
                    Some(v as $t)
                } else {
                    None
                }
            }
        }
    };
}

int_element!(u8, "UINT8");
int_element!(u16, "UINT16");
int_element!(u32, "UINT32");
int_element!(u64, "UINT64");
int_element!(i8, "INT8");
int_element!(i16, "INT16");
int_element!(i32, "INT32");
int_element!(i64, "INT64");

macro_rules! float_element {
    ($t:ty, $name:literal, $from:expr) => {
        impl JsonElement for $t {
            const NAME: &'static str = $name;
            fn from_u64(v: u64) -> Option<Self> {
                Some($from(v as f64))
            }
            fn from_i64(v: i64) -> Option<Self> {
                Some($from(v as f64))
            }
            fn from_f64(v: f64) -> Option<Self> {
                Some($from(v))
            }
            /// MLServer writes NaN as `null`.
            fn from_null() -> Option<Self> {
                Some($from(f64::NAN))
            }
        }
    };
}

float_element!(f32, "FP32", |v: f64| v as f32);
float_element!(f64, "FP64", |v: f64| v);
float_element!(f16, "FP16", f16::from_f64);
float_element!(bf16, "BF16", bf16::from_f64);

impl JsonElement for bool {
    const NAME: &'static str = "BOOL";
    fn from_bool(v: bool) -> Option<Self> {
        Some(v)
    }
    fn from_u64(v: u64) -> Option<Self> {
        match v {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
}

impl JsonElement for Bytes {
    const NAME: &'static str = "BYTES";
    fn from_text(v: &str) -> Option<Self> {
        Some(Bytes::copy_from_slice(v.as_bytes()))
    }
}

/// Appends the elements of a (possibly nested) JSON array to a vector.
struct Flat<'v, T>(&'v mut Vec<T>);

impl<'de, T: JsonElement> DeserializeSeed<'de> for Flat<'_, T> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, T: JsonElement> Visitor<'de> for Flat<'_, T> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an array of {} values", T::NAME)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        while seq.next_element_seed(Flat(&mut *self.0))?.is_some() {}
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<(), E> {
        push(self.0, T::from_u64(v), format_args!("{v}"))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<(), E> {
        push(self.0, T::from_i64(v), format_args!("{v}"))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<(), E> {
        push(self.0, T::from_f64(v), format_args!("{v}"))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> std::result::Result<(), E> {
        push(self.0, T::from_bool(v), format_args!("{v}"))
    }

    fn visit_unit<E: de::Error>(self) -> std::result::Result<(), E> {
        push(self.0, T::from_null(), format_args!("null"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<(), E> {
        push(self.0, T::from_text(v), format_args!("a string"))
    }
}

fn push<T: JsonElement, E: de::Error>(
    out: &mut Vec<T>,
    value: Option<T>,
    shown: fmt::Arguments<'_>,
) -> std::result::Result<(), E> {
    match value {
        Some(v) => {
            out.push(v);
            Ok(())
        }
        None => Err(E::custom(format_args!(
            "element {} ({shown}) is not a {} value",
            out.len(),
            T::NAME
        ))),
    }
}

/// Parses JSON with the path of any error, as an [`ErrorKind::Protocol`] error.
fn from_json<'a, T: Deserialize<'a>>(body: &'a [u8], what: &str) -> Result<T> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let mut err = Error::new(
            ErrorKind::Protocol,
            format!("the {what} is not the expected JSON: {inner}"),
        );
        if path != "." && !path.is_empty() {
            err = err.with_path(path);
        }
        err
    })?;
    de.end().map_err(|e| {
        Error::new(
            ErrorKind::Protocol,
            format!("the {what} is not the expected JSON: {e}"),
        )
    })?;
    Ok(value)
}

/// A string that servers sometimes send as a number (versions, ids).
#[derive(Debug)]
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Text, E> {
                Ok(Text(v.to_owned()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A dimension that servers sometimes send as a string (`"-1"`).
#[derive(Debug)]
struct Dim(i64);

impl<'de> Deserialize<'de> for Dim {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dim;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer dimension")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Dim, E> {
                Ok(Dim(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Dim, E> {
                i64::try_from(v)
                    .map(Dim)
                    .map_err(|_| E::custom("dimension too large"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Dim, E> {
                v.trim()
                    .parse()
                    .map(Dim)
                    .map_err(|_| E::custom(format_args!("dimension {v:?} is not an integer")))
            }
        }
        d.deserialize_any(V)
    }
}

fn dims<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<Vec<i64>>, D::Error> {
    let dims: Option<Vec<Dim>> = Option::deserialize(d)?;
    Ok(dims.map(|v| v.into_iter().map(|x| x.0).collect()))
}

type JsonMap = serde_json::Map<String, serde_json::Value>;

/// An inference response's JSON header, with each output's data already
/// decoded when its datatype came before it (what Triton, KServe and
/// MLServer send), else kept as raw JSON text to decode afterwards.
struct JsonResponse<'a> {
    model_name: Option<Text>,
    model_version: Option<Text>,
    id: Option<Text>,
    parameters: Option<JsonMap>,
    outputs: Option<Vec<JsonOutput<'a>>>,
}

struct JsonOutput<'a> {
    name: String,
    shape: Option<Vec<i64>>,
    datatype: String,
    parameters: Option<JsonMap>,
    data: Option<OutputData<'a>>,
}

/// An output's `data`: decoded in the same pass, or its JSON text.
enum OutputData<'a> {
    Typed(TensorData),
    Json(&'a RawValue),
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum ResponseField {
    ModelName,
    ModelVersion,
    Id,
    Parameters,
    Outputs,
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum OutputField {
    Name,
    Shape,
    Datatype,
    Parameters,
    Data,
    #[serde(other)]
    Other,
}

/// Decodes a response header; `limit` bounds preallocation (each JSON
/// element takes at least two bytes, so never more than half the body).
#[derive(Clone, Copy)]
struct ResponseSeed {
    limit: usize,
}

impl<'de> DeserializeSeed<'de> for ResponseSeed {
    type Value = JsonResponse<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ResponseSeed {
    type Value = JsonResponse<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an inference response object")
    }

    fn visit_map<A: de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut r = JsonResponse {
            model_name: None,
            model_version: None,
            id: None,
            parameters: None,
            outputs: None,
        };
        while let Some(key) = map.next_key::<ResponseField>()? {
            match key {
                ResponseField::ModelName => r.model_name = map.next_value()?,
                ResponseField::ModelVersion => r.model_version = map.next_value()?,
                ResponseField::Id => r.id = map.next_value()?,
                ResponseField::Parameters => r.parameters = map.next_value()?,
                ResponseField::Outputs => r.outputs = map.next_value_seed(OutputsSeed(self))?,
                ResponseField::Other => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        Ok(r)
    }
}

struct OutputsSeed(ResponseSeed);

impl<'de> DeserializeSeed<'de> for OutputsSeed {
    type Value = Option<Vec<JsonOutput<'de>>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for OutputsSeed {
    type Value = Option<Vec<JsonOutput<'de>>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of outputs")
    }

    fn visit_none<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(o) = seq.next_element_seed(OutputSeed(self.0))? {
            out.push(o);
        }
        Ok(Some(out))
    }
}

struct OutputSeed(ResponseSeed);

impl<'de> DeserializeSeed<'de> for OutputSeed {
    type Value = JsonOutput<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for OutputSeed {
    type Value = JsonOutput<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an output tensor object")
    }

    fn visit_map<A: de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut name: Option<String> = None;
        let mut shape: Option<Vec<i64>> = None;
        let mut datatype: Option<String> = None;
        let mut parameters: Option<JsonMap> = None;
        let mut data: Option<OutputData<'de>> = None;
        while let Some(key) = map.next_key::<OutputField>()? {
            match key {
                OutputField::Name => name = Some(map.next_value()?),
                OutputField::Shape => {
                    shape = map
                        .next_value::<Option<Vec<Dim>>>()?
                        .map(|v| v.into_iter().map(|d| d.0).collect());
                }
                OutputField::Datatype => datatype = Some(map.next_value()?),
                OutputField::Parameters => parameters = map.next_value()?,
                OutputField::Data => {
                    let known = datatype.as_deref().and_then(|d| d.parse::<DataType>().ok());
                    data = match known {
                        Some(datatype) => {
                            let count = shape
                                .as_ref()
                                .and_then(|s| {
                                    s.iter().try_fold(1usize, |a, &d| {
                                        a.checked_mul(usize::try_from(d).ok()?)
                                    })
                                })
                                .unwrap_or(0);
                            map.next_value_seed(DataSeed {
                                datatype,
                                capacity: count.min(self.0.limit),
                            })?
                            .map(OutputData::Typed)
                        }
                        None => map
                            .next_value::<Option<&'de RawValue>>()?
                            .map(OutputData::Json),
                    };
                }
                OutputField::Other => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        Ok(JsonOutput {
            name: name.ok_or_else(|| de::Error::missing_field("name"))?,
            shape,
            datatype: datatype.ok_or_else(|| de::Error::missing_field("datatype"))?,
            parameters,
            data,
        })
    }
}

/// Decodes `data` straight into typed values (`null` data is absent).
struct DataSeed {
    datatype: DataType,
    capacity: usize,
}

impl<'de> DeserializeSeed<'de> for DataSeed {
    type Value = Option<TensorData>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for DataSeed {
    type Value = Option<TensorData>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an array of {} values", self.datatype)
    }

    fn visit_none<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        fn run<'de, T: JsonElement, D: Deserializer<'de>>(
            d: D,
            capacity: usize,
        ) -> std::result::Result<Vec<T>, D::Error> {
            let mut out = Vec::with_capacity(capacity);
            Flat(&mut out).deserialize(d)?;
            Ok(out)
        }
        let c = self.capacity;
        Ok(Some(match self.datatype {
            DataType::Bool => TensorData::Bool(run(d, c)?),
            DataType::Uint8 => TensorData::Uint8(run(d, c)?),
            DataType::Uint16 => TensorData::Uint16(run(d, c)?),
            DataType::Uint32 => TensorData::Uint32(run(d, c)?),
            DataType::Uint64 => TensorData::Uint64(run(d, c)?),
            DataType::Int8 => TensorData::Int8(run(d, c)?),
            DataType::Int16 => TensorData::Int16(run(d, c)?),
            DataType::Int32 => TensorData::Int32(run(d, c)?),
            DataType::Int64 => TensorData::Int64(run(d, c)?),
            DataType::Fp16 => TensorData::Fp16(run(d, c)?),
            DataType::Bf16 => TensorData::Bf16(run(d, c)?),
            DataType::Fp32 => TensorData::Fp32(run(d, c)?),
            DataType::Fp64 => TensorData::Fp64(run(d, c)?),
            DataType::Bytes => TensorData::Bytes(run(d, c)?),
        }))
    }
}

/// Parses a response header in one pass; on failure parses it again with
/// path tracking, so the error names where (`outputs[1].data`) and which
/// output.
fn parse_response(header: &[u8]) -> Result<JsonResponse<'_>> {
    let seed = ResponseSeed {
        limit: header.len() / 2,
    };
    let mut de = serde_json::Deserializer::from_slice(header);
    let fast = seed.deserialize(&mut de).and_then(|r| de.end().map(|()| r));
    let first = match fast {
        Ok(r) => return Ok(r),
        Err(e) => e,
    };
    let mut track = serde_path_to_error::Track::new();
    let mut de = serde_json::Deserializer::from_slice(header);
    let tracked = seed.deserialize(serde_path_to_error::Deserializer::new(&mut de, &mut track));
    let (message, path) = match tracked {
        Err(e) => (e.to_string(), track.path().to_string()),
        Ok(_) => (first.to_string(), String::new()),
    };
    let mut err = Error::new(
        ErrorKind::Protocol,
        format!("the inference response is not the expected JSON: {message}"),
    );
    if path != "." && !path.is_empty() {
        if let Some(name) = output_name_at(header, &path) {
            err = err.with_context("output", name);
        }
        err = err.with_path(path);
    }
    Err(err)
}

/// The name of the output a path such as `outputs[2].data` points into.
fn output_name_at(header: &[u8], path: &str) -> Option<String> {
    let index: usize = path
        .strip_prefix("outputs[")?
        .split(']')
        .next()?
        .parse()
        .ok()?;
    let value: serde_json::Value = serde_json::from_slice(header).ok()?;
    value
        .get("outputs")?
        .get(index)?
        .get("name")?
        .as_str()
        .map(str::to_owned)
}

/// Converts JSON parameters; `null` entries are dropped, objects and
/// arrays (e.g. MLServer's `headers`) kept as their JSON text.
fn parameters_from_json(map: Option<JsonMap>) -> Parameters {
    let mut out = Parameters::new();
    for (k, v) in map.unwrap_or_default() {
        let p = match v {
            serde_json::Value::Null => continue,
            serde_json::Value::Bool(b) => Parameter::Bool(b),
            serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => Parameter::Int(i),
                (None, Some(u), _) => Parameter::Uint(u),
                (_, _, Some(f)) => Parameter::Double(f),
                _ => Parameter::String(n.to_string()),
            },
            serde_json::Value::String(s) => Parameter::String(s),
            other => Parameter::String(other.to_string()),
        };
        out.insert(k, p);
    }
    out
}

fn parameter_text(p: &Parameter) -> String {
    match p {
        Parameter::Bool(b) => b.to_string(),
        Parameter::Int(i) => i.to_string(),
        Parameter::Uint(u) => u.to_string(),
        Parameter::Double(d) => d.to_string(),
        Parameter::String(s) => s.clone(),
    }
}

/// What `GET /v2` says about the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerMetadata {
    /// The server's name (`triton`, `kserve`, `mlserver`, …).
    pub name: String,
    /// The server's version.
    pub version: String,
    /// The protocol extensions it supports (`binary_tensor_data`, …).
    pub extensions: Vec<String>,
}

#[derive(Deserialize)]
struct JsonServerMetadata {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    version: Option<Text>,
    #[serde(default)]
    extensions: Option<Vec<String>>,
}

/// Decodes `GET /v2`. Missing fields and explicit `null`s become empty values.
pub fn decode_server_metadata(body: &[u8]) -> Result<ServerMetadata> {
    let m: JsonServerMetadata = from_json(body, "server metadata")?;
    Ok(ServerMetadata {
        name: m.name.unwrap_or_default(),
        version: m.version.map(|v| v.0).unwrap_or_default(),
        extensions: m.extensions.unwrap_or_default(),
    })
}

#[derive(Deserialize)]
struct JsonModelMetadata {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    versions: Option<Vec<Text>>,
    #[serde(default)]
    platform: Option<String>,
    #[serde(default)]
    inputs: Option<Vec<JsonTensorMetadata>>,
    #[serde(default)]
    outputs: Option<Vec<JsonTensorMetadata>>,
    #[serde(default)]
    properties: Option<JsonMap>,
    #[serde(default)]
    parameters: Option<JsonMap>,
}

#[derive(Deserialize)]
struct JsonTensorMetadata {
    name: String,
    datatype: String,
    #[serde(default, deserialize_with = "dims")]
    shape: Option<Vec<i64>>,
    #[serde(default)]
    parameters: Option<JsonMap>,
}

/// The datatype of tensor `i` of a model metadata list (`inputs` or
/// `outputs`), as either wire spells it; an unknown one is a
/// [`ErrorKind::Protocol`] error at `<field>[i].datatype`.
pub fn metadata_datatype(text: &str, field: &str, i: usize, tensor: &str) -> Result<DataType> {
    text.parse().map_err(|e: Error| {
        Error::new(ErrorKind::Protocol, e.message().to_owned())
            .with_path(format!("{field}[{i}].datatype"))
            .with_context("tensor", tensor.to_owned())
    })
}

/// Decodes `GET /v2/models/{name}`.
///
/// Tolerates what real servers send: `versions: null` (KServe), missing
/// fields, explicit `null`s, dimensions as strings. Model-level `properties`
/// (OIP) and `parameters` (MLServer) both land in
/// [`ModelMetadata::properties`] as text.
pub fn decode_model_metadata(body: &[u8]) -> Result<ModelMetadata> {
    let m: JsonModelMetadata = from_json(body, "model metadata")?;
    let specs = |list: Option<Vec<JsonTensorMetadata>>, field: &str| {
        list.unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                Ok(TensorSpec {
                    datatype: metadata_datatype(&t.datatype, field, i, &t.name)?,
                    name: t.name,
                    shape: t.shape.unwrap_or_default(),
                    parameters: parameters_from_json(t.parameters),
                })
            })
            .collect::<Result<Vec<_>>>()
    };
    let mut properties = BTreeMap::new();
    for (k, v) in parameters_from_json(m.parameters) {
        properties.insert(k, parameter_text(&v));
    }
    for (k, v) in parameters_from_json(m.properties) {
        properties.insert(k, parameter_text(&v));
    }
    Ok(ModelMetadata {
        name: m.name.unwrap_or_default(),
        versions: m
            .versions
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.0)
            .collect(),
        platform: m.platform.unwrap_or_default(),
        inputs: specs(m.inputs, "inputs")?,
        outputs: specs(m.outputs, "outputs")?,
        properties,
    })
}

#[derive(Deserialize)]
#[serde(untagged)]
enum JsonModelEntry {
    Name(String),
    Entry {
        name: String,
        #[serde(default)]
        version: Option<Text>,
        #[serde(default)]
        state: Option<String>,
    },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum JsonModelList {
    Wrapped { models: Vec<JsonModelEntry> },
    Bare(Vec<JsonModelEntry>),
}

/// Decodes a model list: `GET /v2/models` (`{"models": [...]}`) or a
/// repository index (`POST /v2/repository/index`: `[{"name", "version",
/// "state", "reason"}]`); entries may be names or objects.
pub fn decode_model_list(body: &[u8]) -> Result<Vec<ModelInfo>> {
    let list: JsonModelList = from_json(body, "model list")?;
    let entries = match list {
        JsonModelList::Wrapped { models } => models,
        JsonModelList::Bare(v) => v,
    };
    Ok(entries
        .into_iter()
        .map(|e| match e {
            JsonModelEntry::Name(name) => ModelInfo {
                name,
                version: None,
                state: None,
            },
            JsonModelEntry::Entry {
                name,
                version,
                state,
            } => ModelInfo {
                name,
                version: version.map(|v| v.0).filter(|v| !v.is_empty()),
                state: state.filter(|s| !s.is_empty()),
            },
        })
        .collect())
}

/// The message of an OIP error body (`{"error": "..."}`), if it is one.
pub fn error_message(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct E<'a> {
        #[serde(borrow)]
        error: Cow<'a, str>,
    }
    serde_json::from_slice::<E<'_>>(body)
        .ok()
        .map(|e| e.error.into_owned())
}

#[cfg(test)]
mod tests;
