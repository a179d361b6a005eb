//! Triton's wire formats beyond the OIP codec: the per-input binary choice,
//! request compression, the `generate` JSON and its server-sent events, and
//! the JSON of the repository index, statistics and model configuration.

use std::io::Write as _;

use bytes::Bytes;
use flate2::Compression as Level;
use flate2::write::{GzEncoder, ZlibEncoder};
use inferlink_core::{
    DataType, Error, ErrorKind, InferRequest, InferResponse, Parameter, Result, Tensor,
};
use inferlink_oip::codec::{self as oip_codec, RestBody};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::{Compression, TensorMode};

/// Encodes a REST inference request: per [`TensorMode`], each input as JSON
/// or binary.
pub fn encode_infer_request(request: &InferRequest, mode: TensorMode) -> Result<RestBody> {
    match mode {
        TensorMode::Fixed(encoding) => oip_codec::encode_infer_request(request, encoding),
        TensorMode::Threshold(threshold) => {
            let binary: Vec<bool> = request
                .inputs
                .iter()
                .map(|t| {
                    oip_codec::raw_len(t) >= threshold
                        || oip_codec::prefers_binary(t)
                        || oip_codec::json_obstacle(t).is_some()
                })
                .collect();
            let any = binary.iter().any(|&b| b);
            oip_codec::encode_infer_request_with(request, &binary, any)
        }
    }
}

/// Which inputs of `request` travel binary under `mode` (for tests and docs).
pub fn binary_inputs(request: &InferRequest, mode: TensorMode) -> Vec<bool> {
    request
        .inputs
        .iter()
        .map(|t| match mode {
            TensorMode::Fixed(inferlink_oip::TensorEncoding::Binary) => true,
            TensorMode::Fixed(inferlink_oip::TensorEncoding::Json) => false,
            TensorMode::Fixed(inferlink_oip::TensorEncoding::Auto) => {
                oip_codec::prefers_binary(t) || oip_codec::json_obstacle(t).is_some()
            }
            TensorMode::Threshold(n) => {
                oip_codec::raw_len(t) >= n
                    || oip_codec::prefers_binary(t)
                    || oip_codec::json_obstacle(t).is_some()
            }
        })
        .collect()
}

/// [`compress`] over an encoded request body's parts, in sending order;
/// `None` when `compression` is off (send the parts as they are).
pub fn compress_parts(body: &RestBody, compression: Compression) -> Result<Option<Bytes>> {
    if compression == Compression::None {
        return Ok(None);
    }
    compress(&body.to_bytes(), compression)
}

/// Compresses a request body; `None` leaves it as is.
pub fn compress(body: &[u8], compression: Compression) -> Result<Option<Bytes>> {
    let out = match compression {
        Compression::None => return Ok(None),
        Compression::Gzip => {
            let mut e = GzEncoder::new(Vec::with_capacity(body.len() / 2 + 64), Level::fast());
            e.write_all(body).and_then(|_| e.finish())
        }
        Compression::Deflate => {
            let mut e = ZlibEncoder::new(Vec::with_capacity(body.len() / 2 + 64), Level::fast());
            e.write_all(body).and_then(|_| e.finish())
        }
    };
    out.map(|v| Some(Bytes::from(v)))
        .map_err(|e| Error::new(ErrorKind::Internal, format!("compressing the request: {e}")))
}

// ---------------------------------------------------------------------------
// generate / generate_stream
// ---------------------------------------------------------------------------

/// A request to Triton's `generate` / `generate_stream` endpoints: named
/// fields (mapped by the server to the model's inputs, e.g. `text_input`)
/// and `parameters`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenerateRequest {
    /// Top-level fields, e.g. `text_input`.
    pub fields: Map<String, Value>,
    /// The `parameters` object (omitted when empty).
    pub parameters: Map<String, Value>,
}

impl GenerateRequest {
    /// A request with `text_input`.
    pub fn text(text_input: impl Into<String>) -> Self {
        GenerateRequest::default().field("text_input", Value::String(text_input.into()))
    }

    /// Adds a top-level field (an input by name, or `id`).
    pub fn field(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.fields.insert(name.into(), value.into());
        self
    }

    /// Adds a parameter.
    pub fn parameter(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.parameters.insert(name.into(), value.into());
        self
    }

    /// The JSON body.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        let mut body = self.fields.clone();
        if !self.parameters.is_empty() {
            body.insert("parameters".into(), Value::Object(self.parameters.clone()));
        }
        serde_json::to_vec(&body).map_err(|e| Error::invalid(format!("generate request: {e}")))
    }

    /// The `generate` form of a tensor request: each input one field, a
    /// single element as a JSON scalar (BYTES as text), several as a flat
    /// array; request parameters as `parameters`.
    ///
    /// Errors: [`ErrorKind::InvalidInput`] naming the input for data JSON
    /// cannot carry (non-UTF-8 BYTES, NaN, FP16/BF16).
    pub fn from_infer(request: &InferRequest) -> Result<Self> {
        let mut out = GenerateRequest::default();
        if let Some(id) = &request.id {
            out.fields.insert("id".into(), Value::String(id.clone()));
        }
        for (i, t) in request.inputs.iter().enumerate() {
            let value = tensor_to_json(t).map_err(|e| {
                Error::invalid_at(
                    format!("inputs[{i}]"),
                    format!("input \"{}\": {}", t.name(), e),
                )
            })?;
            out.fields.insert(t.name().to_owned(), value);
        }
        for (k, v) in request.parameters.iter() {
            out.parameters.insert(k.clone(), parameter_to_json(v));
        }
        Ok(out)
    }
}

fn parameter_to_json(p: &Parameter) -> Value {
    match p {
        Parameter::Bool(b) => Value::Bool(*b),
        Parameter::Int(i) => Value::from(*i),
        Parameter::Uint(u) => Value::from(*u),
        Parameter::Double(d) => Value::from(*d),
        Parameter::String(s) => Value::String(s.clone()),
    }
}

fn tensor_to_json(t: &Tensor) -> std::result::Result<Value, String> {
    let values: Vec<Value> = match t.datatype() {
        DataType::Bytes => t
            .to_strings()
            .map_err(|e| format!("{} (generate takes text only)", e.message()))?
            .into_iter()
            .map(Value::String)
            .collect(),
        DataType::Bool => t
            .to_vec::<bool>()
            .map_err(|e| e.message().to_owned())?
            .into_iter()
            .map(Value::Bool)
            .collect(),
        DataType::Fp16 | DataType::Bf16 => {
            return Err("FP16/BF16 have no JSON form; use infer".into());
        }
        DataType::Fp32 | DataType::Fp64 => {
            let mut out = Vec::new();
            for x in t.to_f64_lossy().map_err(|e| e.message().to_owned())? {
                out.push(Value::from(
                    serde_json::Number::from_f64(x).ok_or("NaN or infinity has no JSON form")?,
                ));
            }
            out
        }
        DataType::Uint64 => t
            .to_vec::<u64>()
            .map_err(|e| e.message().to_owned())?
            .into_iter()
            .map(Value::from)
            .collect(),
        _ => t
            .to_f64_lossy()
            .map_err(|e| e.message().to_owned())?
            .into_iter()
            .map(|x| Value::from(x as i64))
            .collect(),
    };
    Ok(if values.len() == 1 {
        values.into_iter().next().unwrap_or(Value::Null)
    } else {
        Value::Array(values)
    })
}

/// One answer of `generate`, or one event of `generate_stream`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GenerateResponse {
    /// The model that answered.
    pub model_name: String,
    /// Its version, when given.
    pub model_version: Option<String>,
    /// The request id, when given.
    pub id: Option<String>,
    /// Every other field: the model's outputs by name (`text_output`, …).
    pub fields: Map<String, Value>,
}

impl GenerateResponse {
    /// `text_output`, when it is text.
    pub fn text_output(&self) -> Option<&str> {
        self.fields.get("text_output").and_then(Value::as_str)
    }

    /// Parses one JSON object; an `error` member is the server's error
    /// (what `generate_stream` sends after its first event).
    pub fn from_json(body: &[u8]) -> Result<Self> {
        let mut map: Map<String, Value> = serde_json::from_slice(body).map_err(|e| {
            Error::new(
                ErrorKind::Protocol,
                format!("generate answer is not a JSON object: {e}"),
            )
        })?;
        if let Some(err) = map.remove("error") {
            let text = match err {
                Value::String(s) => s,
                other => other.to_string(),
            };
            return Err(Error::new(
                crate::error::kind_of_message(&text),
                "the server reported an error during generation",
            )
            .with_vendor_message(text));
        }
        let text = |v: Option<Value>| match v {
            Some(Value::String(s)) => Some(s),
            Some(Value::Null) | None => None,
            Some(other) => Some(other.to_string()),
        };
        Ok(GenerateResponse {
            model_name: text(map.remove("model_name")).unwrap_or_default(),
            model_version: text(map.remove("model_version")),
            id: text(map.remove("id")),
            fields: map,
        })
    }

    /// The tensor form: each field one output, a scalar as shape `[1]`
    /// (text → BYTES, integers → INT64, other numbers → FP64, booleans →
    /// BOOL), a flat array of one kind as shape `[n]`.
    pub fn into_infer_response(self) -> Result<InferResponse> {
        let mut outputs = Vec::with_capacity(self.fields.len());
        for (name, value) in self.fields {
            outputs.push(json_to_tensor(&name, value)?);
        }
        Ok(InferResponse {
            model_name: self.model_name,
            model_version: self.model_version,
            id: self.id,
            outputs,
            parameters: Default::default(),
        })
    }
}

fn json_to_tensor(name: &str, value: Value) -> Result<Tensor> {
    let items = match value {
        Value::Array(a) => a,
        v => vec![v],
    };
    let n = items.len();
    let bad = || {
        Error::new(
            ErrorKind::Protocol,
            format!("generate field \"{name}\" is not a scalar or a flat array of one kind"),
        )
        .with_path(name.to_owned())
    };
    if items.iter().all(Value::is_string) {
        let s: Vec<String> = items
            .into_iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect();
        return Tensor::from_strings(name, vec![n], s);
    }
    if items.iter().all(Value::is_boolean) {
        let b: Vec<bool> = items.iter().map(|v| v.as_bool().unwrap_or(false)).collect();
        return Tensor::new(name, vec![n], b);
    }
    if items.iter().all(|v| v.is_i64()) {
        let i: Vec<i64> = items.iter().map(|v| v.as_i64().unwrap_or(0)).collect();
        return Tensor::new(name, vec![n], i);
    }
    if items.iter().all(Value::is_number) {
        let f: Vec<f64> = items
            .iter()
            .map(|v| v.as_f64().unwrap_or(f64::NAN))
            .collect();
        return Tensor::new(name, vec![n], f);
    }
    Err(bad())
}

/// Splits a server-sent event stream into the `data` payloads of its
/// events. Feed it chunks as they arrive; it keeps partial lines.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    /// Leading bytes of `buf` already searched for a line end (none found):
    /// a long line sent in small chunks is scanned once, not once per chunk.
    scanned: usize,
    data: Vec<u8>,
    has_data: bool,
}

/// The largest event the parser buffers (a stream that never ends an event
/// is a `Protocol` error, not unbounded memory).
pub const MAX_EVENT_BYTES: usize = 64 << 20;

impl SseParser {
    /// A parser with nothing buffered.
    pub fn new() -> Self {
        SseParser::default()
    }

    /// Adds a chunk; returns the events it completed (their `data`, the
    /// lines of one event joined by `\n`).
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Bytes>> {
        self.buf.extend_from_slice(chunk);
        let mut events = Vec::new();
        let mut start = 0;
        let mut from = self.scanned;
        while let Some(pos) = self.buf[from..].iter().position(|&b| b == b'\n') {
            let end = from + pos;
            let mut line = &self.buf[start..end];
            start = end + 1;
            from = start;
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            if line.is_empty() {
                if self.has_data {
                    events.push(Bytes::from(std::mem::take(&mut self.data)));
                    self.has_data = false;
                }
                continue;
            }
            if line.starts_with(b":") {
                continue;
            }
            let (field, value) = match line.iter().position(|&b| b == b':') {
                Some(i) => {
                    let v = &line[i + 1..];
                    (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
                }
                None => (line, &b""[..]),
            };
            if field == b"data" {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
        }
        self.buf.drain(..start);
        self.scanned = self.buf.len();
        if self.buf.len() + self.data.len() > MAX_EVENT_BYTES {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!("an event of the stream exceeds {MAX_EVENT_BYTES} bytes"),
            ));
        }
        Ok(events)
    }

    /// At the end of the stream: the last event if the server did not end
    /// it with a blank line.
    pub fn finish(&mut self) -> Option<Bytes> {
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            self.scanned = 0;
            let _ = self.push(&[rest.as_slice(), b"\n"].concat());
        }
        self.has_data.then(|| {
            self.has_data = false;
            Bytes::from(std::mem::take(&mut self.data))
        })
    }
}

// ---------------------------------------------------------------------------
// Repository, statistics, model configuration
// ---------------------------------------------------------------------------

/// One entry of the repository index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryModel {
    /// The model name.
    pub name: String,
    /// The version, when loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `READY`, `UNAVAILABLE`, `LOADING`, `UNLOADING`, … (absent: never loaded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Why the model is in that state, when the server says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Decodes the repository index (a JSON array).
pub fn decode_repository_index(body: &[u8]) -> Result<Vec<RepositoryModel>> {
    let mut list: Vec<RepositoryModel> = decode_json(body, "repository index")?;
    for m in &mut list {
        for f in [&mut m.version, &mut m.state, &mut m.reason] {
            if f.as_deref() == Some("") {
                *f = None;
            }
        }
    }
    Ok(list)
}

/// A count and total time (`{"count", "ns"}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DurationStat {
    /// How many.
    #[serde(default)]
    pub count: u64,
    /// Their total duration in nanoseconds.
    #[serde(default)]
    pub ns: u64,
}

/// Per-phase inference statistics of one model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct InferStats {
    /// Successful requests (end to end).
    pub success: DurationStat,
    /// Failed requests.
    pub fail: DurationStat,
    /// Time queued.
    pub queue: DurationStat,
    /// Input preparation.
    pub compute_input: DurationStat,
    /// Model execution.
    pub compute_infer: DurationStat,
    /// Output extraction.
    pub compute_output: DurationStat,
    /// Response-cache hits.
    pub cache_hit: DurationStat,
    /// Response-cache misses.
    pub cache_miss: DurationStat,
}

/// Statistics of one model version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelStatistics {
    /// The model name.
    pub name: String,
    /// The version.
    #[serde(default)]
    pub version: String,
    /// Time of the last inference, ms since the Unix epoch (0: none yet).
    #[serde(default)]
    pub last_inference: u64,
    /// Inferences performed (a batch of n counts n).
    #[serde(default)]
    pub inference_count: u64,
    /// Model executions (a batch counts once).
    #[serde(default)]
    pub execution_count: u64,
    /// Per-phase counts and times.
    #[serde(default)]
    pub inference_stats: InferStats,
}

#[derive(Deserialize)]
struct StatsBody {
    #[serde(default)]
    model_stats: Vec<ModelStatistics>,
}

/// Decodes `{"model_stats": [...]}`.
pub fn decode_statistics(body: &[u8]) -> Result<Vec<ModelStatistics>> {
    Ok(decode_json::<StatsBody>(body, "statistics")?.model_stats)
}

/// One declared tensor of a model configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigTensor {
    /// The tensor name.
    pub name: String,
    /// Triton's type name, e.g. `TYPE_FP32`, `TYPE_STRING`.
    pub data_type: String,
    /// Dimensions without the batch dimension; -1 = any size.
    #[serde(default)]
    pub dims: Vec<i64>,
}

/// The summary of a model's Triton configuration, plus (REST) the whole
/// configuration as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// The model name.
    pub name: String,
    /// The platform (e.g. `onnxruntime_onnx`), often empty for backends.
    pub platform: String,
    /// The backend (e.g. `python`).
    pub backend: String,
    /// 0: no batch dimension; else the largest batch.
    pub max_batch_size: i64,
    /// Declared inputs.
    pub inputs: Vec<ConfigTensor>,
    /// Declared outputs.
    pub outputs: Vec<ConfigTensor>,
    /// Whether the model is decoupled (0..n responses per request: stream it).
    pub decoupled: bool,
    /// Whether the model has a sequence batcher (stateful: send `sequence_id`).
    pub stateful: Option<bool>,
    /// The full configuration (REST); `None` over gRPC, where only the
    /// summary fields are decoded.
    pub json: Option<Value>,
}

#[derive(Deserialize)]
struct ConfigJson {
    #[serde(default)]
    name: String,
    #[serde(default)]
    platform: String,
    #[serde(default)]
    backend: String,
    #[serde(default)]
    max_batch_size: i64,
    #[serde(default)]
    input: Vec<ConfigTensor>,
    #[serde(default)]
    output: Vec<ConfigTensor>,
    #[serde(default)]
    model_transaction_policy: Option<Policy>,
    #[serde(default)]
    sequence_batching: Option<Value>,
}

#[derive(Deserialize)]
struct Policy {
    #[serde(default)]
    decoupled: bool,
}

/// Decodes `GET /v2/models/{m}/config`.
pub fn decode_model_config(body: &[u8]) -> Result<ModelConfig> {
    let json: Value = decode_json(body, "model configuration")?;
    let c: ConfigJson = serde_json::from_value(json.clone()).map_err(|e| {
        Error::new(
            ErrorKind::Protocol,
            format!("model configuration is not the expected JSON: {e}"),
        )
    })?;
    Ok(ModelConfig {
        name: c.name,
        platform: c.platform,
        backend: c.backend,
        max_batch_size: c.max_batch_size,
        inputs: c.input,
        outputs: c.output,
        decoupled: c.model_transaction_policy.is_some_and(|p| p.decoupled),
        stateful: Some(c.sequence_batching.is_some()),
        json: Some(json),
    })
}

fn decode_json<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error_free(&mut de).map_err(|e| {
        Error::new(
            ErrorKind::Protocol,
            format!("{what} is not the expected JSON: {e}"),
        )
    })
}

fn serde_path_to_error_free<'de, T: Deserialize<'de>>(
    de: &mut serde_json::Deserializer<serde_json::de::SliceRead<'de>>,
) -> std::result::Result<T, serde_json::Error> {
    let v = T::deserialize(&mut *de)?;
    de.end()?;
    Ok(v)
}

/// One sample of Triton's Prometheus metrics (`name{labels} value`).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSample {
    /// The metric name, e.g. `nv_inference_request_success`.
    pub name: String,
    /// The labels in the order written (`model`, `version`, `reason`, …).
    pub labels: Vec<(String, String)>,
    /// The value (`NaN`, `+Inf`, `-Inf` as Prometheus writes them).
    pub value: f64,
}

impl MetricSample {
    /// The value of label `name`.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The samples of a Prometheus text exposition (format 0.0.4, what Triton's
/// metrics port serves). Comments (`# HELP`, `# TYPE`) and blank lines are
/// skipped; a trailing timestamp is ignored.
///
/// Errors: [`ErrorKind::Protocol`] naming the line (1-based) that is not a
/// sample: no value, an unterminated label value, a bad escape.
pub fn parse_metrics(text: &str) -> Result<Vec<MetricSample>> {
    let mut samples = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let sample = parse_sample(line).map_err(|why| {
            Error::new(
                ErrorKind::Protocol,
                format!("metrics line {}: {why}", i + 1),
            )
            .with_path(format!("line {}", i + 1))
        })?;
        samples.push(sample);
    }
    Ok(samples)
}

fn parse_sample(line: &str) -> std::result::Result<MetricSample, String> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or("no value after the metric name")?;
    let name = &line[..name_end];
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    {
        return Err(format!("`{name}` is not a metric name"));
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let mut chars = after.char_indices().peekable();
        loop {
            // Skip separators before the next label or the closing brace.
            while let Some((_, c)) = chars.peek() {
                if *c == ',' || c.is_whitespace() {
                    chars.next();
                } else {
                    break;
                }
            }
            let Some((start, c)) = chars.next() else {
                return Err("the label set is not closed".to_owned());
            };
            if c == '}' {
                rest = &after[start + 1..];
                break;
            }
            let mut key = String::from(c);
            loop {
                match chars.next() {
                    Some((_, '=')) => break,
                    Some((_, c)) => key.push(c),
                    None => return Err("a label has no value".to_owned()),
                }
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                return Err(format!("the value of label `{}` is not quoted", key.trim()));
            }
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some((_, '"')) => break,
                    Some((_, '\\')) => match chars.next().map(|(_, c)| c) {
                        Some('\\') => value.push('\\'),
                        Some('"') => value.push('"'),
                        Some('n') => value.push('\n'),
                        other => {
                            return Err(format!(
                                "bad escape `\\{}` in label `{}`",
                                other.map(String::from).unwrap_or_default(),
                                key.trim()
                            ));
                        }
                    },
                    Some((_, c)) => value.push(c),
                    None => {
                        return Err(format!("the value of label `{}` is not closed", key.trim()));
                    }
                }
            }
            labels.push((key.trim().to_owned(), value));
        }
    }
    let mut fields = rest.split_whitespace();
    let value = fields.next().ok_or("no value")?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v
            .parse::<f64>()
            .map_err(|_| format!("`{v}` is not a number"))?,
    };
    Ok(MetricSample {
        name: name.to_owned(),
        labels,
        value,
    })
}

#[cfg(test)]
mod tests;
