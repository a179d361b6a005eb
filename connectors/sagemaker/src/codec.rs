//! Tensors ↔ the JSON payloads SageMaker containers commonly take.
//!
//! A SageMaker endpoint's payload is whatever its container defines; for
//! tensor [`InferRequest`]s this connector sends the JSON convention most
//! containers (TensorFlow Serving, multi-model-server handlers, MLflow,
//! scikit-learn and XGBoost containers with JSON) accept, under the key the
//! configuration names ([`JsonKey`]):
//!
//! | request | `instances` (default) | `inputs` |
//! |---|---|---|
//! | one input, shape `[2, 3]` | `{"instances": [[…], […]]}` | `{"inputs": [[…], […]]}` |
//! | several inputs `a`, `b` | rows: `{"instances": [{"a": …, "b": …}, …]}` (equal first dimension) | columns: `{"inputs": {"a": …, "b": …}}` |
//!
//! Elements become JSON numbers (`FP16`/`BF16` through `f32`; NaN and
//! infinities are refused), `true`/`false` for `BOOL`, and strings for
//! `BYTES` (which must be UTF-8). Request parameters are not sent: the
//! payload has no place for them.
//!
//! The answer is read from `predictions` (TF Serving, MMS, MLflow), else
//! `outputs`, else a bare JSON array. A nested array becomes one output
//! named after the key; an object of arrays (columns) or an array of
//! objects (rows) becomes one output per name. JSON carries no datatypes,
//! so outputs get the configured `output_datatype`, or (`auto`) the first
//! input's datatype when every value fits it, else `BOOL` for booleans,
//! `BYTES` for strings, `INT64` for integers and `FP64` for other numbers.

use bytes::Bytes;
use inferlink_core::kit;
use inferlink_core::kit::json::Leaf;
use inferlink_core::tensor::{bf16, f16};
use inferlink_core::{DataType, Error, ErrorKind, InferRequest, InferResponse, Result, Tensor};
use serde_json::{Map, Number, Value};

use crate::config::JsonKey;

/// The media type of the JSON payloads.
pub const JSON: &str = "application/json";

/// The output name used when the answer is a bare JSON array.
pub const DEFAULT_OUTPUT: &str = "predictions";

/// Writes a tensor request as a JSON body under `key`.
pub fn encode_infer_request(request: &InferRequest, key: JsonKey) -> Result<Bytes> {
    if request.inputs.is_empty() {
        return Err(Error::invalid("the request has no input tensor"));
    }
    let payload = if request.inputs.len() == 1 {
        tensor_json(&request.inputs[0])?
    } else {
        match key {
            JsonKey::Inputs => {
                let mut columns = Map::new();
                for t in &request.inputs {
                    columns.insert(t.name().to_owned(), tensor_json(t)?);
                }
                Value::Object(columns)
            }
            JsonKey::Instances => rows_json(&request.inputs)?,
        }
    };
    let mut body = Map::new();
    body.insert(key.as_str().to_owned(), payload);
    serde_json::to_vec(&Value::Object(body))
        .map(Bytes::from)
        .map_err(|e| Error::invalid(format!("the request cannot be written as JSON: {e}")))
}

/// Several inputs as rows: `[{"a": a[0], "b": b[0]}, …]`.
fn rows_json(inputs: &[Tensor]) -> Result<Value> {
    let first = &inputs[0];
    let rows = first.shape().first().copied().ok_or_else(|| {
        input_error(
            first,
            "a scalar cannot be split into instances; use infer_json_key: inputs",
        )
    })?;
    let mut per_input = Vec::with_capacity(inputs.len());
    for t in inputs {
        if t.shape().first() != Some(&rows) {
            return Err(input_error(
                t,
                &format!(
                    "has shape {:?}, but instances need every input to have {rows} rows like \"{}\"; \
                     use infer_json_key: inputs for columns",
                    t.shape(),
                    first.name()
                ),
            ));
        }
        match tensor_json(t)? {
            Value::Array(items) => per_input.push((t.name(), items)),
            _ => return Err(input_error(t, "is not an array")),
        }
    }
    let mut out = Vec::with_capacity(rows);
    for r in 0..rows {
        let mut row = Map::new();
        for (name, items) in &mut per_input {
            row.insert((*name).to_owned(), std::mem::take(&mut items[r]));
        }
        out.push(Value::Object(row));
    }
    Ok(Value::Array(out))
}

fn input_error(t: &Tensor, why: &str) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!("input \"{}\" {why}", t.name()),
    )
    .with_context("tensor", t.name().to_owned())
}

/// One tensor as nested JSON arrays following its shape (a scalar as one value).
pub fn tensor_json(t: &Tensor) -> Result<Value> {
    let flat = flat_values(t)?;
    Ok(nest(&flat, t.shape()))
}

fn number(t: &Tensor, i: usize, v: f64) -> Result<Value> {
    Number::from_f64(v).map(Value::Number).ok_or_else(|| {
        input_error(
            t,
            &format!("element {i} is {v}, which JSON cannot carry (no NaN or infinity)"),
        )
    })
}

fn flat_values(t: &Tensor) -> Result<Vec<Value>> {
    let ints = |v: Vec<i64>| v.into_iter().map(Value::from).collect::<Vec<_>>();
    Ok(match t.datatype() {
        DataType::Bool => t.to_vec::<bool>()?.into_iter().map(Value::Bool).collect(),
        DataType::Uint8 => t.to_vec::<u8>()?.into_iter().map(Value::from).collect(),
        DataType::Uint16 => t.to_vec::<u16>()?.into_iter().map(Value::from).collect(),
        DataType::Uint32 => t.to_vec::<u32>()?.into_iter().map(Value::from).collect(),
        DataType::Uint64 => t.to_vec::<u64>()?.into_iter().map(Value::from).collect(),
        DataType::Int8 => ints(t.to_vec::<i8>()?.into_iter().map(i64::from).collect()),
        DataType::Int16 => ints(t.to_vec::<i16>()?.into_iter().map(i64::from).collect()),
        DataType::Int32 => ints(t.to_vec::<i32>()?.into_iter().map(i64::from).collect()),
        DataType::Int64 => ints(t.to_vec::<i64>()?),
        DataType::Fp16 | DataType::Bf16 | DataType::Fp32 => t
            .to_f32_lossy()?
            .into_iter()
            .enumerate()
            .map(|(i, v)| number(t, i, f64::from(v)))
            .collect::<Result<_>>()?,
        DataType::Fp64 => t
            .to_vec::<f64>()?
            .into_iter()
            .enumerate()
            .map(|(i, v)| number(t, i, v))
            .collect::<Result<_>>()?,
        // JSON strings carry only UTF-8 text (an element that is not is an
        // InvalidInput error naming it).
        DataType::Bytes => t.to_strings()?.into_iter().map(Value::String).collect(),
    })
}

fn nest(flat: &[Value], shape: &[usize]) -> Value {
    match shape.split_first() {
        None => flat.first().cloned().unwrap_or(Value::Null),
        Some((&n, rest)) => {
            let step: usize = rest.iter().product();
            Value::Array(
                (0..n)
                    .map(|i| nest(&flat[i * step..(i + 1) * step], rest))
                    .collect(),
            )
        }
    }
}

/// Reads a JSON answer into tensors (see the [module docs](self)).
///
/// `hint` is the datatype outputs take when every value fits it (`auto`),
/// `forced` the configured `output_datatype`. A body that is not JSON, has
/// none of the expected keys, or holds ragged arrays or mixed values is an
/// [`ErrorKind::Protocol`] error naming where.
pub fn decode_infer_response(
    body: &[u8],
    hint: Option<DataType>,
    forced: Option<DataType>,
) -> Result<InferResponse> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        Error::new(
            ErrorKind::Protocol,
            format!("the answer is not JSON ({e}); use invoke for non-JSON payloads"),
        )
    })?;
    let (name, payload) = match value {
        Value::Object(mut map) => {
            let key = ["predictions", "outputs"]
                .into_iter()
                .find(|k| map.contains_key(*k))
                .ok_or_else(|| {
                    let keys: Vec<&String> = map.keys().take(8).collect();
                    Error::new(
                        ErrorKind::Protocol,
                        format!(
                            "the answer has neither `predictions` nor `outputs` (keys: {keys:?}); \
                             use invoke for other payloads"
                        ),
                    )
                })?;
            let payload = map.remove(key).unwrap_or(Value::Null);
            (key.to_owned(), payload)
        }
        array @ Value::Array(_) => (DEFAULT_OUTPUT.to_owned(), array),
        other => {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "the answer is a bare {}, not an object or array",
                    kind_of(&other)
                ),
            ));
        }
    };
    let outputs = match payload {
        Value::Object(columns) => columns
            .into_iter()
            .map(|(n, v)| to_tensor(&n, &format!("{name}.{n}"), v, hint, forced))
            .collect::<Result<Vec<_>>>()?,
        Value::Array(rows) if !rows.is_empty() && rows.iter().all(Value::is_object) => {
            rows_to_tensors(&name, rows, hint, forced)?
        }
        other => vec![to_tensor(&name, &name, other, hint, forced)?],
    };
    Ok(InferResponse {
        outputs,
        ..Default::default()
    })
}

fn rows_to_tensors(
    name: &str,
    rows: Vec<Value>,
    hint: Option<DataType>,
    forced: Option<DataType>,
) -> Result<Vec<Tensor>> {
    let mut names: Vec<String> = Vec::new();
    if let Some(Value::Object(first)) = rows.first() {
        names = first.keys().cloned().collect();
    }
    let mut columns: Vec<Vec<Value>> = vec![Vec::with_capacity(rows.len()); names.len()];
    for (r, row) in rows.into_iter().enumerate() {
        let Value::Object(mut row) = row else {
            continue;
        };
        if row.len() != names.len() {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!("{name}[{r}] has other keys than {name}[0]"),
            ));
        }
        for (c, n) in names.iter().enumerate() {
            let v = row.remove(n).ok_or_else(|| {
                Error::new(ErrorKind::Protocol, format!("{name}[{r}] lacks `{n}`"))
            })?;
            columns[c].push(v);
        }
    }
    names
        .iter()
        .zip(columns)
        .map(|(n, col)| to_tensor(n, &format!("{name}[].{n}"), Value::Array(col), hint, forced))
        .collect()
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn to_tensor(
    name: &str,
    path: &str,
    value: Value,
    hint: Option<DataType>,
    forced: Option<DataType>,
) -> Result<Tensor> {
    let (shape, flat) = kit::json::nested_leaves(&value, path, Leaf::NotArray)?;
    let datatype = match forced {
        Some(d) => d,
        None => infer_datatype(&flat, hint, path)?,
    };
    build(name, path, datatype, shape, &flat)
}

fn fits(v: &Value, d: DataType) -> bool {
    match d {
        DataType::Bool => v.is_boolean(),
        DataType::Bytes => v.is_string(),
        DataType::Fp16 | DataType::Bf16 | DataType::Fp32 | DataType::Fp64 => v.is_number(),
        DataType::Uint8 => v.as_u64().is_some_and(|n| n <= u64::from(u8::MAX)),
        DataType::Uint16 => v.as_u64().is_some_and(|n| n <= u64::from(u16::MAX)),
        DataType::Uint32 => v.as_u64().is_some_and(|n| n <= u64::from(u32::MAX)),
        DataType::Uint64 => v.as_u64().is_some(),
        DataType::Int8 => v.as_i64().is_some_and(|n| i8::try_from(n).is_ok()),
        DataType::Int16 => v.as_i64().is_some_and(|n| i16::try_from(n).is_ok()),
        DataType::Int32 => v.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
        DataType::Int64 => v.as_i64().is_some(),
    }
}

fn infer_datatype(flat: &[&Value], hint: Option<DataType>, path: &str) -> Result<DataType> {
    if let Some(h) = hint
        && flat.iter().all(|v| fits(v, h))
    {
        return Ok(h);
    }
    if flat.iter().all(|v| v.is_boolean()) && !flat.is_empty() {
        return Ok(DataType::Bool);
    }
    if flat.iter().all(|v| v.is_string()) && !flat.is_empty() {
        return Ok(DataType::Bytes);
    }
    if flat.iter().all(|v| v.is_i64()) {
        return Ok(DataType::Int64);
    }
    if flat.iter().all(|v| v.is_number()) {
        return Ok(DataType::Fp64);
    }
    let odd = flat.iter().position(|v| !v.is_number()).unwrap_or_default();
    Err(Error::new(
        ErrorKind::Protocol,
        format!(
            "{path} mixes value kinds (element {odd} is a {}); set output_datatype or use invoke",
            kind_of(flat[odd])
        ),
    ))
}

fn build(
    name: &str,
    path: &str,
    d: DataType,
    shape: Vec<usize>,
    flat: &[&Value],
) -> Result<Tensor> {
    let bad = |i: usize| {
        Error::new(
            ErrorKind::Protocol,
            format!(
                "{path} element {i} is a {} that does not fit {d}",
                kind_of(flat[i])
            ),
        )
    };
    fn each<T>(
        flat: &[&Value],
        f: impl Fn(&Value) -> Option<T>,
    ) -> std::result::Result<Vec<T>, usize> {
        flat.iter()
            .enumerate()
            .map(|(i, v)| f(v).ok_or(i))
            .collect()
    }
    macro_rules! ints {
        ($t:ty, $get:ident) => {
            Tensor::new(
                name,
                shape,
                each(flat, |v| v.$get().and_then(|n| <$t>::try_from(n).ok())).map_err(bad)?,
            )
        };
    }
    match d {
        DataType::Bool => Tensor::new(name, shape, each(flat, Value::as_bool).map_err(bad)?),
        DataType::Uint8 => ints!(u8, as_u64),
        DataType::Uint16 => ints!(u16, as_u64),
        DataType::Uint32 => ints!(u32, as_u64),
        DataType::Uint64 => ints!(u64, as_u64),
        DataType::Int8 => ints!(i8, as_i64),
        DataType::Int16 => ints!(i16, as_i64),
        DataType::Int32 => ints!(i32, as_i64),
        DataType::Int64 => ints!(i64, as_i64),
        DataType::Fp16 => Tensor::new(
            name,
            shape,
            each(flat, |v| v.as_f64().map(f16::from_f64)).map_err(bad)?,
        ),
        DataType::Bf16 => Tensor::new(
            name,
            shape,
            each(flat, |v| v.as_f64().map(bf16::from_f64)).map_err(bad)?,
        ),
        DataType::Fp32 => Tensor::new(
            name,
            shape,
            each(flat, |v| v.as_f64().map(|f| f as f32)).map_err(bad)?,
        ),
        DataType::Fp64 => Tensor::new(name, shape, each(flat, Value::as_f64).map_err(bad)?),
        DataType::Bytes => {
            let strings = each(flat, |v| v.as_str().map(str::to_owned)).map_err(bad)?;
            Tensor::from_strings(name, shape, strings)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(request: &InferRequest, key: JsonKey) -> Value {
        serde_json::from_slice(&encode_infer_request(request, key).unwrap()).unwrap()
    }

    #[test]
    fn one_input_goes_under_the_key() {
        let t = Tensor::from_rows("x", &[vec![1.0f32, 2.0], vec![3.0, 4.5]]).unwrap();
        let r = InferRequest::from(t);
        assert_eq!(
            body(&r, JsonKey::Instances),
            serde_json::json!({"instances": [[1.0, 2.0], [3.0, 4.5]]})
        );
        assert_eq!(
            body(&r, JsonKey::Inputs),
            serde_json::json!({"inputs": [[1.0, 2.0], [3.0, 4.5]]})
        );
        let s = Tensor::from_strings("s", vec![2], ["a", "ü"]).unwrap();
        assert_eq!(
            body(&InferRequest::from(s), JsonKey::Instances),
            serde_json::json!({"instances": ["a", "ü"]})
        );
        let b = Tensor::new("b", vec![], vec![true]).unwrap();
        assert_eq!(
            body(&InferRequest::from(b), JsonKey::Inputs),
            serde_json::json!({"inputs": true})
        );
    }

    #[test]
    fn several_inputs_as_rows_or_columns() {
        let a = Tensor::new("a", vec![2], vec![1i64, 2]).unwrap();
        let b = Tensor::from_strings("b", vec![2, 1], ["x", "y"]).unwrap();
        let r = InferRequest::new().with_input(a).with_input(b);
        assert_eq!(
            body(&r, JsonKey::Instances),
            serde_json::json!({"instances": [{"a": 1, "b": ["x"]}, {"a": 2, "b": ["y"]}]})
        );
        assert_eq!(
            body(&r, JsonKey::Inputs),
            serde_json::json!({"inputs": {"a": [1, 2], "b": [["x"], ["y"]]}})
        );
        let c = Tensor::new("c", vec![3], vec![1i64, 2, 3]).unwrap();
        let r = r.with_input(c);
        let e = encode_infer_request(&r, JsonKey::Instances).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().contains("\"c\""), "{e}");
    }

    #[test]
    fn unencodable_inputs_are_refused() {
        let nan = Tensor::from_vec("n", vec![1.0f32, f32::NAN]);
        let e = encode_infer_request(&InferRequest::from(nan), JsonKey::Instances).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().contains("element 1"), "{e}");
        let raw = Tensor::from_byte_elements("r", vec![1], [Bytes::from_static(b"\xff")]).unwrap();
        let e = encode_infer_request(&InferRequest::from(raw), JsonKey::Instances).unwrap_err();
        assert!(e.message().contains("UTF-8"), "{e}");
        let e = encode_infer_request(&InferRequest::new(), JsonKey::Instances).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn answers_decode_with_the_hint_when_values_fit() {
        let r = decode_infer_response(
            br#"{"predictions": [[2.0, 4.5]]}"#,
            Some(DataType::Fp32),
            None,
        )
        .unwrap();
        let t = &r.outputs[0];
        assert_eq!(t.name(), "predictions");
        assert_eq!(t.datatype(), DataType::Fp32);
        assert_eq!(t.shape(), &[1, 2]);
        assert_eq!(t.to_vec::<f32>().unwrap(), vec![2.0, 4.5]);
        // 300 does not fit INT8: INT64.
        let r = decode_infer_response(b"[1, 300]", Some(DataType::Int8), None).unwrap();
        assert_eq!(r.outputs[0].datatype(), DataType::Int64);
        let r = decode_infer_response(br#"{"outputs": [0.5, 1]}"#, None, None).unwrap();
        assert_eq!(r.outputs[0].name(), "outputs");
        assert_eq!(r.outputs[0].datatype(), DataType::Fp64);
        let r = decode_infer_response(br#"{"predictions": ["A", "B"]}"#, None, None).unwrap();
        assert_eq!(r.outputs[0].to_strings().unwrap(), vec!["A", "B"]);
        let r = decode_infer_response(br#"{"predictions": [1, 2]}"#, None, Some(DataType::Fp16))
            .unwrap();
        assert_eq!(r.outputs[0].datatype(), DataType::Fp16);
    }

    #[test]
    fn columns_and_rows_become_several_outputs() {
        let r = decode_infer_response(
            br#"{"predictions": {"label": ["a", "b"], "score": [0.5, 0.25]}}"#,
            None,
            None,
        )
        .unwrap();
        assert_eq!(
            r.require_output("label").unwrap().to_strings().unwrap(),
            vec!["a", "b"]
        );
        assert_eq!(
            r.require_output("score").unwrap().datatype(),
            DataType::Fp64
        );
        let r = decode_infer_response(
            br#"{"predictions": [{"label": "a", "score": 1}, {"label": "b", "score": 2}]}"#,
            None,
            None,
        )
        .unwrap();
        assert_eq!(
            r.require_output("score").unwrap().to_vec::<i64>().unwrap(),
            vec![1, 2]
        );
        assert_eq!(r.require_output("label").unwrap().shape(), &[2]);
    }

    #[test]
    fn bad_answers_are_protocol_errors() {
        for (body, needle) in [
            (&b"not json"[..], "not JSON"),
            (br#"{"result": 1}"#, "neither"),
            (br#"{"predictions": [[1, 2], [3]]}"#, "predictions[1]"),
            (br#"{"predictions": [[1, 2], 3]}"#, "predictions[1]"),
            (br#"{"predictions": [1, "a"]}"#, "mixes"),
            (b"3", "bare number"),
        ] {
            let e = decode_infer_response(body, None, None).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Protocol);
            assert!(e.message().contains(needle), "{needle}: {e}");
        }
        let e = decode_infer_response(br#"[1.5]"#, None, Some(DataType::Int32)).unwrap_err();
        assert!(e.message().contains("does not fit INT32"), "{e}");
    }

    #[test]
    fn finding1_first_row_bombs_are_protocol_errors_not_aborts_or_panics() {
        inferlink_testkit::hostile::assert_refuses_first_row_bombs("predictions", |body| {
            decode_infer_response(body, None, None)
        });
    }
}
