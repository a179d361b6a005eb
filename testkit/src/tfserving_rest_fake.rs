//! `tfserving_rest_fake`: a stand-in for TensorFlow Serving's REST API on
//! loopback, written from TF Serving's REST documentation (`g3doc/api_rest.md`)
//! and the behaviour facts in the project's protocol notes (§4). No TF
//! Serving binary is available from any registry this project can reach, so
//! the connector's REST side is tested against this fake; it is **not** the
//! real server, and what it does not model is untested against TF Serving.
//!
//! Documented behaviours it reproduces:
//!
//! 1. Paths are matched case-insensitively: `GET /v1/models/{name}`,
//!    `…/versions/{N}`, `…/labels/{L}`, each with `/metadata`, and
//!    `POST …:predict`, `…:classify`, `…:regress`.
//! 2. Model status: `{"model_version_status": [{"version": "<N as string>",
//!    "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}`,
//!    every version without a version in the path, one with it.
//! 3. Metadata: `{"model_spec": {"name", "signature_name": "", "version": "<N>"},
//!    "metadata": {"signature_def": {"signature_def": {<sig>: {"inputs",
//!    "outputs", "method_name"}}}}}` with TensorInfo JSON `{"dtype": "DT_FLOAT",
//!    "tensor_shape": {"dim": [{"size": "-1", "name": ""}], "unknown_rank": false},
//!    "name": "x:0"}`.
//! 4. Predict takes `"instances"` (row) **or** `"inputs"` (columnar), never
//!    both (400). Row: elements are the single input's values, or objects
//!    `{input: value}`; the answer is `{"predictions": […]}` — a list of values
//!    for one output, a list of objects for several. Columnar: a bare tensor
//!    or an object `{input: tensor}`; the answer is `{"outputs": …}` — the
//!    value for one output, an object for several.
//! 5. `signature_name` selects the signature (default `serving_default`); an
//!    unknown one is 400.
//! 6. Binary strings travel as `{"b64": "…"}`; outputs whose name ends in
//!    `_bytes` are returned as `{"b64": …}`.
//! 7. Non-finite floats are read and written as the bare tokens `NaN`,
//!    `Infinity`, `-Infinity`.
//! 8. Classify answers `{"results": [[[label, score], …], …]}`, regress
//!    `{"results": [v, …]}` (the key is `results`, as the code has it).
//! 9. Errors are `{"error": "<message>"}` with the status of the gRPC code:
//!    unknown model/version 404 (`Servable not found for request: Latest(m)`),
//!    INVALID_ARGUMENT 400, unknown path 404, wrong method 405.
//! 10. Version omitted ⇒ the latest version; a label maps to a version.
//!
//! Its models:
//!
//! | model | versions (labels) | signatures |
//! |---|---|---|
//! | `half_plus_two` | 1, 2 (`stable` → 1, `canary` → 2) | `serving_default`: `x` DT_FLOAT → `y` = 0.5·x + 2; `classify_x_to_y`: feature `x` → `[["", y]]`; `regress_x_to_y`: feature `x` → `y` |
//! | `doubler-<dtype>` (`float`, `double`, `int32`, `int64`, `bool`, `string`, …) | 1 | `x` → `y`: numbers doubled, booleans negated, strings upper-cased (ASCII) |
//! | `pair` | 1 | `a`, `b` DT_FLOAT → `sum`, `product` |
//! | `images` | 1 | `image_bytes` DT_STRING → `length` DT_INT64 and `echo_bytes` DT_STRING (sent back as `b64`) |
//!
//! Not modelled: batching limits, multiple signatures per request, the
//! Prometheus and model-config endpoints, gzip, and any server-side
//! validation beyond dtype names and input names.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

const NAN: &str = "\u{0}NaN";
const INF: &str = "\u{0}Infinity";
const NEG_INF: &str = "\u{0}-Infinity";
const MAX_BODY: usize = 16 << 20;

/// A running fake; dropping it stops the server.
#[derive(Debug)]
pub struct TfServingRestFake {
    addr: SocketAddr,
    task: JoinHandle<()>,
    requests: Arc<Mutex<Vec<(String, String, String)>>>,
}

impl Drop for TfServingRestFake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TfServingRestFake {
    /// Starts the fake on a free port of 127.0.0.1.
    pub async fn start() -> std::io::Result<TfServingRestFake> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(serve(stream, Arc::clone(&log)));
            }
        });
        Ok(TfServingRestFake {
            addr,
            task,
            requests,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request so far: method, path, body.
    pub async fn requests(&self) -> Vec<(String, String, String)> {
        self.requests.lock().await.clone()
    }
}

async fn serve(mut stream: TcpStream, log: Arc<Mutex<Vec<(String, String, String)>>>) {
    loop {
        let mut buf = Vec::new();
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 8192];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            if buf.len() > 64 * 1024 {
                return;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or("").split(' ');
        let method = first.next().unwrap_or("").to_owned();
        let path = first.next().unwrap_or("").to_owned();
        let mut length = 0usize;
        for l in lines {
            if let Some((k, v)) = l.split_once(':')
                && k.trim().eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        if length > MAX_BODY {
            return;
        }
        let mut body = buf[head_end..].to_vec();
        while body.len() < length {
            let mut chunk = vec![0u8; (length - body.len()).min(65536)];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => body.extend_from_slice(&chunk[..n]),
            }
        }
        body.truncate(length);
        let text = String::from_utf8_lossy(&body).to_string();
        log.lock()
            .await
            .push((method.clone(), path.clone(), text.clone()));
        let (status, reply) = match route(&method, &path, &text) {
            Ok(v) => (200, v),
            Err((status, msg)) => (status, json!({ "error": msg })),
        };
        let out = write_json(&reply);
        let reason = match status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            _ => "Error",
        };
        let response = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{out}",
            out.len()
        );
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Serializes, writing sentinel strings as the bare non-finite tokens.
fn write_json(v: &Value) -> String {
    serde_json::to_string(v)
        .unwrap_or_default()
        .replace("\"\\u0000NaN\"", "NaN")
        .replace("\"\\u0000-Infinity\"", "-Infinity")
        .replace("\"\\u0000Infinity\"", "Infinity")
}

/// Turns bare `NaN`/`Infinity`/`-Infinity` tokens outside strings into sentinel strings.
fn read_json(text: &str) -> Result<Value, (u16, String)> {
    let mut out = String::with_capacity(text.len());
    let mut in_str = false;
    let mut escaped = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
            rest = &rest[c.len_utf8()..];
            continue;
        }
        if c == '"' {
            in_str = true;
        }
        let mut token = None;
        for (word, sentinel) in [("-Infinity", NEG_INF), ("Infinity", INF), ("NaN", NAN)] {
            if rest.starts_with(word) {
                token = Some((word.len(), sentinel));
                break;
            }
        }
        if let Some((len, sentinel)) = token {
            out.push_str(&serde_json::to_string(sentinel).unwrap_or_default());
            rest = &rest[len..];
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    serde_json::from_str(&out).map_err(|e| (400, format!("JSON Parse error: {e}")))
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) if s == NAN => Some(f64::NAN),
        Value::String(s) if s == INF => Some(f64::INFINITY),
        Value::String(s) if s == NEG_INF => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

fn from_f64(f: f64) -> Value {
    if f.is_nan() {
        Value::String(NAN.into())
    } else if f == f64::INFINITY {
        Value::String(INF.into())
    } else if f == f64::NEG_INFINITY {
        Value::String(NEG_INF.into())
    } else {
        json!(f)
    }
}

/// Applies `f` to every leaf of nested arrays.
fn map_leaves(v: &Value, f: &dyn Fn(&Value) -> Result<Value, String>) -> Result<Value, String> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| map_leaves(i, f))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        leaf => f(leaf),
    }
}

fn b64_decode(s: &str) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| format!("Unable to base64 decode: {e}"))
}

fn b64_encode(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn leaf_bytes(v: &Value) -> Result<Vec<u8>, String> {
    match v {
        Value::String(s) => Ok(s.as_bytes().to_vec()),
        Value::Object(m) if m.len() == 1 => match m.get("b64") {
            Some(Value::String(s)) => b64_decode(s),
            _ => Err("expected a string or {\"b64\": …}".into()),
        },
        _ => Err("expected a string or {\"b64\": …}".into()),
    }
}

struct Model {
    versions: Vec<i64>,
    labels: Vec<(&'static str, i64)>,
}

fn model(name: &str) -> Option<Model> {
    match name {
        "half_plus_two" => Some(Model {
            versions: vec![1, 2],
            labels: vec![("stable", 1), ("canary", 2)],
        }),
        "pair" | "images" => Some(Model {
            versions: vec![1],
            labels: vec![],
        }),
        n => doubler_dtype(n).map(|_| Model {
            versions: vec![1],
            labels: vec![],
        }),
    }
}

fn doubler_dtype(name: &str) -> Option<&'static str> {
    let dt = name.strip_prefix("doubler-")?;
    Some(match dt {
        "float" => "DT_FLOAT",
        "double" => "DT_DOUBLE",
        "half" => "DT_HALF",
        "bfloat16" => "DT_BFLOAT16",
        "int8" => "DT_INT8",
        "int16" => "DT_INT16",
        "int32" => "DT_INT32",
        "int64" => "DT_INT64",
        "uint8" => "DT_UINT8",
        "uint16" => "DT_UINT16",
        "uint32" => "DT_UINT32",
        "uint64" => "DT_UINT64",
        "bool" => "DT_BOOL",
        "string" => "DT_STRING",
        _ => return None,
    })
}

fn info(dtype: &str, name: &str, dims: Option<&[i64]>) -> Value {
    let shape = match dims {
        Some(d) => {
            json!({"dim": d.iter().map(|s| json!({"size": s.to_string(), "name": ""})).collect::<Vec<_>>(), "unknown_rank": false})
        }
        None => json!({"dim": [], "unknown_rank": true}),
    };
    json!({"dtype": dtype, "tensor_shape": shape, "name": name})
}

/// The signatures of a model: name → (inputs, outputs, method).
fn signatures(name: &str) -> BTreeMap<&'static str, Value> {
    let mut s = BTreeMap::new();
    match name {
        "half_plus_two" => {
            let x = info("DT_FLOAT", "x:0", Some(&[-1]));
            let y = info("DT_FLOAT", "y:0", Some(&[-1]));
            s.insert("serving_default", json!({"inputs": {"x": x}, "outputs": {"y": y}, "method_name": "tensorflow/serving/predict"}));
            let ex = info("DT_STRING", "tf_example:0", Some(&[-1]));
            s.insert("classify_x_to_y", json!({"inputs": {"inputs": ex}, "outputs": {"scores": info("DT_FLOAT", "y:0", Some(&[-1, 1]))}, "method_name": "tensorflow/serving/classify"}));
            s.insert("regress_x_to_y", json!({"inputs": {"inputs": ex}, "outputs": {"outputs": info("DT_FLOAT", "y:0", Some(&[-1, 1]))}, "method_name": "tensorflow/serving/regress"}));
        }
        "pair" => {
            let f = |n: &str| info("DT_FLOAT", n, Some(&[-1]));
            s.insert("serving_default", json!({"inputs": {"a": f("a:0"), "b": f("b:0")}, "outputs": {"sum": f("sum:0"), "product": f("product:0")}, "method_name": "tensorflow/serving/predict"}));
        }
        "images" => {
            s.insert("serving_default", json!({"inputs": {"image_bytes": info("DT_STRING", "in:0", Some(&[-1]))}, "outputs": {"length": info("DT_INT64", "len:0", Some(&[-1])), "echo_bytes": info("DT_STRING", "echo:0", Some(&[-1]))}, "method_name": "tensorflow/serving/predict"}));
        }
        n => {
            if let Some(dt) = doubler_dtype(n) {
                s.insert("serving_default", json!({"inputs": {"x": info(dt, "x:0", None)}, "outputs": {"y": info(dt, "y:0", None)}, "method_name": "tensorflow/serving/predict"}));
            }
        }
    }
    s
}

type Reply = Result<Value, (u16, String)>;

fn route(method: &str, raw_path: &str, body: &str) -> Reply {
    let path = raw_path.split('?').next().unwrap_or("");
    let lower = path.to_ascii_lowercase();
    let Some(rest) = lower.strip_prefix("/v1/models/") else {
        return Err((404, format!("Malformed request: {method} {path}")));
    };
    // Keep the original case of the model name and label.
    let rest_orig = &path[path.len() - rest.len()..];
    let (spec, verb) = match rest_orig.rsplit_once(':') {
        Some((s, v)) => (s, Some(v.to_ascii_lowercase())),
        None => (rest_orig, None),
    };
    let segments: Vec<String> = spec.split('/').map(percent_decode).collect();
    let (name, version_sel, tail) = match segments.as_slice() {
        [n] => (n.clone(), None, None),
        [n, t] if t.eq_ignore_ascii_case("metadata") => (n.clone(), None, Some("metadata")),
        [n, k, v] => (n.clone(), Some((k.to_ascii_lowercase(), v.clone())), None),
        [n, k, v, t] if t.eq_ignore_ascii_case("metadata") => (
            n.clone(),
            Some((k.to_ascii_lowercase(), v.clone())),
            Some("metadata"),
        ),
        _ => return Err((404, format!("Malformed request: {method} {path}"))),
    };
    let not_found = |what: String| (404, format!("Servable not found for request: {what}"));
    let Some(m) = model(&name) else {
        return Err(not_found(match &version_sel {
            None => format!("Latest({name})"),
            Some((_, v)) => format!("Specified({name}, {v})"),
        }));
    };
    let version = match &version_sel {
        None => *m.versions.iter().max().unwrap_or(&1),
        Some((k, v)) if k == "versions" => {
            let n: i64 = v
                .parse()
                .map_err(|_| (400, format!("Malformed request: {method} {path}")))?;
            if !m.versions.contains(&n) {
                return Err(not_found(format!("Specified({name}, {n})")));
            }
            n
        }
        Some((k, v)) if k == "labels" => match m.labels.iter().find(|(l, _)| l == v) {
            Some((_, n)) => *n,
            None => return Err(not_found(format!("Specified({name}, {v})"))),
        },
        Some(_) => return Err((404, format!("Malformed request: {method} {path}"))),
    };
    match (method, verb.as_deref(), tail) {
        ("GET", None, None) => {
            let versions: Vec<i64> = if version_sel.is_some() {
                vec![version]
            } else {
                m.versions.clone()
            };
            Ok(
                json!({"model_version_status": versions.iter().rev().map(|v| json!({
                "version": v.to_string(), "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""}})).collect::<Vec<_>>()}),
            )
        }
        ("GET", None, Some(_)) => {
            let defs: Map<String, Value> = signatures(&name)
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect();
            Ok(
                json!({"model_spec": {"name": name, "signature_name": "", "version": version.to_string()},
                      "metadata": {"signature_def": {"signature_def": defs}}}),
            )
        }
        ("POST", Some("predict"), None) => predict(&name, version, body),
        ("POST", Some("classify"), None) => examples(&name, body, true),
        ("POST", Some("regress"), None) => examples(&name, body, false),
        ("POST", _, _) | ("GET", _, _) => Err((404, format!("Malformed request: {method} {path}"))),
        _ => Err((405, format!("Unsupported method {method}"))),
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn compute(name: &str, inputs: &Map<String, Value>) -> Result<Vec<(String, Value)>, String> {
    let get = |k: &str| {
        inputs
            .get(k)
            .ok_or_else(|| format!("input tensor alias not found in signature: missing {k}"))
    };
    for k in inputs.keys() {
        let known: &[&str] = match name {
            "half_plus_two" => &["x"],
            "pair" => &["a", "b"],
            "images" => &["image_bytes"],
            _ => &["x"],
        };
        if !known.contains(&k.as_str()) {
            return Err(format!(
                "input tensor alias not found in signature: {k}. Inputs expected to be in the set {{{}}}.",
                known.join(",")
            ));
        }
    }
    let num = |v: &Value| as_f64(v).ok_or_else(|| "Expected a number".to_owned());
    match name {
        "half_plus_two" => Ok(vec![(
            "y".into(),
            map_leaves(get("x")?, &|v| {
                Ok(from_f64((num(v)? as f32 * 0.5 + 2.0) as f64))
            })?,
        )]),
        "pair" => {
            let (a, b) = (get("a")?, get("b")?);
            let zip = |op: fn(f64, f64) -> f64| -> Result<Value, String> {
                fn go(a: &Value, b: &Value, op: fn(f64, f64) -> f64) -> Result<Value, String> {
                    match (a, b) {
                        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
                            .iter()
                            .zip(y)
                            .map(|(p, q)| go(p, q, op))
                            .collect::<Result<Vec<_>, _>>()
                            .map(Value::Array),
                        (p, q) => match (as_f64(p), as_f64(q)) {
                            (Some(p), Some(q)) => Ok(from_f64(op(p, q))),
                            _ => Err("a and b must have the same shape".into()),
                        },
                    }
                }
                go(a, b, op)
            };
            Ok(vec![
                ("product".into(), zip(|p, q| p * q)?),
                ("sum".into(), zip(|p, q| p + q)?),
            ])
        }
        "images" => {
            let x = get("image_bytes")?;
            Ok(vec![
                (
                    "echo_bytes".into(),
                    map_leaves(x, &|v| Ok(json!({"b64": b64_encode(&leaf_bytes(v)?)})))?,
                ),
                (
                    "length".into(),
                    map_leaves(x, &|v| Ok(json!(leaf_bytes(v)?.len())))?,
                ),
            ])
        }
        n => {
            let dt = doubler_dtype(n).unwrap_or("DT_FLOAT");
            let x = get("x")?;
            let y = map_leaves(x, &|v| match (dt, v) {
                ("DT_BOOL", Value::Bool(b)) => Ok(json!(!b)),
                ("DT_STRING", v) => {
                    let up = leaf_bytes(v)?.to_ascii_uppercase();
                    Ok(match String::from_utf8(up) {
                        Ok(s) => json!(s),
                        Err(e) => json!({"b64": b64_encode(e.as_bytes())}),
                    })
                }
                ("DT_FLOAT" | "DT_DOUBLE" | "DT_HALF" | "DT_BFLOAT16", v) => {
                    Ok(from_f64(num(v)? * 2.0))
                }
                (_, Value::Number(n)) if n.is_i64() => {
                    Ok(json!(n.as_i64().unwrap_or(0).wrapping_mul(2)))
                }
                (_, Value::Number(n)) if n.is_u64() => {
                    Ok(json!(n.as_u64().unwrap_or(0).wrapping_mul(2)))
                }
                _ => Err(format!("Expected a value of type {dt}")),
            })?;
            Ok(vec![("y".into(), y)])
        }
    }
}

fn bad(msg: impl Into<String>) -> (u16, String) {
    (400, msg.into())
}

fn predict(name: &str, _version: i64, body: &str) -> Reply {
    let doc = read_json(body)?;
    let sig = doc
        .get("signature_name")
        .and_then(Value::as_str)
        .unwrap_or("serving_default");
    let sigs = signatures(name);
    match sigs.get(sig) {
        Some(def) if def["method_name"] == "tensorflow/serving/predict" => {}
        Some(_) => {
            return Err(bad(format!(
                "Expected prediction signature method_name to be one of {{tensorflow/serving/predict}}. Was: {sig}"
            )));
        }
        None => {
            return Err(bad(format!(
                "Serving signature name: \"{sig}\" not found in signature def"
            )));
        }
    }
    let single_input = |def: &Value| -> Option<String> {
        let m = def["inputs"].as_object()?;
        (m.len() == 1).then(|| m.keys().next().cloned()).flatten()
    };
    let def = &sigs[sig];
    match (doc.get("instances"), doc.get("inputs")) {
        (Some(_), Some(_)) => Err(bad("Not both of 'instances' and 'inputs' may be specified")),
        (None, None) => Err(bad("Missing 'inputs' or 'instances' key")),
        (Some(Value::Array(rows)), None) => {
            // Objects name inputs; anything else is the single input's value.
            let named = rows
                .first()
                .is_some_and(|r| r.is_object() && r.get("b64").is_none());
            let mut columns: Map<String, Value> = Map::new();
            for row in rows {
                if named {
                    let Value::Object(m) = row else {
                        return Err(bad("instances must all be objects or all be values"));
                    };
                    for (k, v) in m {
                        match columns
                            .entry(k.clone())
                            .or_insert_with(|| Value::Array(vec![]))
                        {
                            Value::Array(a) => a.push(v.clone()),
                            _ => unreachable!(),
                        }
                    }
                } else {
                    let k = single_input(def).ok_or_else(|| {
                        bad("instances without names need a single-input signature")
                    })?;
                    match columns.entry(k).or_insert_with(|| Value::Array(vec![])) {
                        Value::Array(a) => a.push(row.clone()),
                        _ => unreachable!(),
                    }
                }
            }
            let lens: Vec<usize> = columns
                .values()
                .map(|v| v.as_array().map_or(0, Vec::len))
                .collect();
            if lens.windows(2).any(|w| w[0] != w[1]) {
                return Err(bad(
                    "Expecting tensors in all named inputs to have the same 0-th dimension",
                ));
            }
            let outputs = compute(name, &columns).map_err(bad)?;
            let n = rows.len();
            let preds: Vec<Value> = if outputs.len() == 1 {
                outputs[0].1.as_array().cloned().unwrap_or_default()
            } else {
                (0..n)
                    .map(|i| {
                        Value::Object(
                            outputs
                                .iter()
                                .map(|(k, v)| (k.clone(), v[i].clone()))
                                .collect(),
                        )
                    })
                    .collect()
            };
            Ok(json!({ "predictions": preds }))
        }
        (Some(_), None) => Err(bad("'instances' must be a list")),
        (None, Some(inputs)) => {
            let columns: Map<String, Value> = match inputs {
                Value::Object(m) if m.get("b64").is_none() => m.clone(),
                v => {
                    let k = single_input(def)
                        .ok_or_else(|| bad("an unnamed input needs a single-input signature"))?;
                    Map::from_iter([(k, v.clone())])
                }
            };
            let outputs = compute(name, &columns).map_err(bad)?;
            if outputs.len() == 1 {
                Ok(json!({ "outputs": outputs[0].1 }))
            } else {
                Ok(json!({ "outputs": Value::Object(outputs.into_iter().collect()) }))
            }
        }
    }
}

fn examples(name: &str, body: &str, classify: bool) -> Reply {
    let doc = read_json(body)?;
    let want = if classify {
        "classify_x_to_y"
    } else {
        "regress_x_to_y"
    };
    let sig = doc
        .get("signature_name")
        .and_then(Value::as_str)
        .unwrap_or("serving_default");
    if name != "half_plus_two" || sig != want {
        return Err(bad(format!(
            "Expected {} signature method_name to be tensorflow/serving/{}. Was: {sig}",
            if classify {
                "classification"
            } else {
                "regression"
            },
            if classify { "classify" } else { "regress" }
        )));
    }
    let Some(Value::Array(list)) = doc.get("examples") else {
        return Err(bad("'examples' must be a list"));
    };
    let context = doc.get("context").and_then(Value::as_object);
    let mut results = Vec::new();
    for ex in list {
        let x = ex
            .get("x")
            .or_else(|| context.and_then(|c| c.get("x")))
            .ok_or_else(|| bad("Feature x not found in example"))?;
        if context.is_some_and(|c| {
            ex.as_object()
                .is_some_and(|e| e.keys().any(|k| c.contains_key(k)))
        }) {
            return Err(bad("context and example features must not overlap"));
        }
        let x = match x {
            Value::Array(a) if a.len() == 1 => &a[0],
            v => v,
        };
        let Some(x) = as_f64(x).filter(|_| x.is_f64() || x.is_string()) else {
            return Err(bad("Feature x must be a float"));
        };
        let y = from_f64((x as f32 * 0.5 + 2.0) as f64);
        results.push(if classify { json!([["", y]]) } else { y });
    }
    Ok(json!({ "results": results }))
}
