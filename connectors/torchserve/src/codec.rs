//! The nested-JSON tensor mapping of `infer` on TorchServe's
//! `/predictions` route (and gRPC `Predictions`), and the KServe V1 wrapper.
//!
//! TorchServe handlers define their own payloads; most that take tensors take
//! plain JSON arrays (`[[1, 2], [3, 4]]`) and answer the same way. The mapping:
//!
//! **Request.** One input tensor becomes its data as nested JSON arrays
//! following its shape (a scalar is a bare value): numbers for numeric
//! datatypes (FP16 and BF16 written as the exact decimal of their value),
//! `true`/`false` for `BOOL`, strings for `BYTES` (UTF-8 only). Several inputs
//! become one JSON object `{"<input name>": <nested data>, …}`. NaN and
//! infinities, which JSON cannot carry, are [`ErrorKind::InvalidInput`].
//! Requested outputs and request parameters have no place in this payload
//! and are ignored.
//!
//! **Response.** A JSON array or scalar is one output named `output-0`; a
//! JSON object whose values are all arrays or scalars gives one output per
//! key (in key order). The shape is the nesting, read with
//! `inferlink_core::kit::json::nested_leaves` (ragged arrays, or nesting
//! deeper than 64, are a [`ErrorKind::Protocol`] error naming the path). The datatype is the
//! request input's (the input with the same name, else the only input) when
//! every value fits it; otherwise it is inferred: all booleans `BOOL`, all
//! integers `INT64` (`UINT64` above `i64::MAX`), numbers `FP64`, strings
//! `BYTES`. Anything else (mixed kinds, `null`, a body that is not JSON) is
//! a `Protocol` error; use `invoke` for such handlers.
//!
//! **KServe V1** (`inference_api: kserve-v1`): the request is
//! `{"instances": <nested data of the one input>}` and the answer's
//! `predictions` value is decoded as above (output `output-0`).

use bytes::Bytes;
use half::{bf16, f16};
use inferlink_core::kit;
use inferlink_core::kit::json::Leaf;
use inferlink_core::{DataType, Error, ErrorKind, InferRequest, InferResponse, Result, Tensor};
use serde_json::{Map, Number, Value};

/// The name of the output decoded from a bare JSON array or scalar.
pub const OUTPUT_NAME: &str = "output-0";

/// The `/predictions` request body for `request` (see the module docs).
pub fn encode_predictions(request: &InferRequest) -> Result<Bytes> {
    let value = match request.inputs.as_slice() {
        [] => return Err(Error::invalid("the request has no input tensor")),
        [one] => tensor_to_json(one)?,
        many => {
            let mut map = Map::new();
            for t in many {
                if map
                    .insert(t.name().to_owned(), tensor_to_json(t)?)
                    .is_some()
                {
                    return Err(Error::invalid(format!(
                        "input \"{}\" is given twice",
                        t.name().escape_debug()
                    )));
                }
            }
            Value::Object(map)
        }
    };
    to_bytes(&value)
}

/// The KServe V1 `:predict` request body: `{"instances": …}` of the one input.
pub fn encode_kserve_v1(request: &InferRequest) -> Result<Bytes> {
    let [one] = request.inputs.as_slice() else {
        return Err(Error::invalid(format!(
            "the KServe V1 route takes exactly one input tensor (the request has {}); use \
             inference_api: kserve-v2 or invoke",
            request.inputs.len()
        )));
    };
    if one.shape().is_empty() {
        return Err(Error::invalid(format!(
            "input \"{}\" is a scalar; KServe V1 instances need a leading dimension",
            one.name().escape_debug()
        )));
    }
    let mut map = Map::new();
    map.insert("instances".to_owned(), tensor_to_json(one)?);
    to_bytes(&Value::Object(map))
}

fn to_bytes(value: &Value) -> Result<Bytes> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| Error::invalid(format!("the request cannot be written as JSON: {e}")))
}

/// Decodes a `/predictions` answer against the request it answers.
pub fn decode_predictions(body: &[u8], request: &InferRequest) -> Result<InferResponse> {
    let value = parse_json(body)?;
    decode_value(value, request)
}

/// Decodes a KServe V1 answer (`{"predictions": …}`).
pub fn decode_kserve_v1(body: &[u8], request: &InferRequest) -> Result<InferResponse> {
    let value = parse_json(body)?;
    let Value::Object(mut map) = value else {
        return Err(protocol("the KServe V1 answer is not a JSON object", "$"));
    };
    let predictions = map
        .remove("predictions")
        .ok_or_else(|| protocol("the KServe V1 answer has no \"predictions\"", "$"))?;
    let tensor = json_to_tensor(
        OUTPUT_NAME,
        predictions,
        hint(request, None),
        "$.predictions",
    )?;
    Ok(response(vec![tensor]))
}

fn parse_json(body: &[u8]) -> Result<Value> {
    serde_json::from_slice(body).map_err(|e| {
        Error::new(
            ErrorKind::Protocol,
            format!(
                "the handler's answer is not JSON (line {}, column {}: {}); use invoke for \
                 handlers with other payloads",
                e.line(),
                e.column(),
                e.classify_name()
            ),
        )
    })
}

trait Classify {
    fn classify_name(&self) -> &'static str;
}

impl Classify for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected data",
            serde_json::error::Category::Eof => "unexpected end",
        }
    }
}

fn decode_value(value: Value, request: &InferRequest) -> Result<InferResponse> {
    let outputs = match value {
        Value::Object(map) if !map.is_empty() && map.values().all(is_tensor_like) => {
            let mut outputs = Vec::with_capacity(map.len());
            for (name, v) in map {
                let path = format!("$.{name}");
                let tensor = json_to_tensor(&name, v, hint(request, Some(&name)), &path)?;
                outputs.push(tensor);
            }
            outputs
        }
        Value::Object(_) => {
            return Err(protocol(
                "the handler answered a JSON object that is not a map of tensors; use invoke",
                "$",
            ));
        }
        other => vec![json_to_tensor(
            OUTPUT_NAME,
            other,
            hint(request, None),
            "$",
        )?],
    };
    Ok(response(outputs))
}

fn response(outputs: Vec<Tensor>) -> InferResponse {
    InferResponse {
        outputs,
        ..InferResponse::default()
    }
}

fn is_tensor_like(v: &Value) -> bool {
    matches!(
        v,
        Value::Array(_) | Value::Bool(_) | Value::Number(_) | Value::String(_)
    )
}

/// The datatype a response tensor should keep when its values fit.
fn hint(request: &InferRequest, name: Option<&str>) -> Option<DataType> {
    if let Some(n) = name
        && let Some(t) = request.inputs.iter().find(|t| t.name() == n)
    {
        return Some(t.datatype());
    }
    match request.inputs.as_slice() {
        [one] => Some(one.datatype()),
        _ => None,
    }
}

// ---------------------------------------------------------------- encoding

fn tensor_to_json(tensor: &Tensor) -> Result<Value> {
    let flat = flat_values(tensor)?;
    Ok(nest(&mut flat.into_iter(), tensor.shape()))
}

fn nest(values: &mut std::vec::IntoIter<Value>, shape: &[usize]) -> Value {
    match shape.split_first() {
        None => values.next().unwrap_or(Value::Null),
        Some((&n, rest)) => Value::Array((0..n).map(|_| nest(values, rest)).collect()),
    }
}

fn float(name: &str, i: usize, x: f64) -> Result<Value> {
    Number::from_f64(x).map(Value::Number).ok_or_else(|| {
        Error::invalid(format!(
            "input \"{}\" element {i} is {x}, which JSON cannot carry",
            name.escape_debug()
        ))
        .with_context("tensor", name.to_owned())
    })
}

fn flat_values(t: &Tensor) -> Result<Vec<Value>> {
    let name = t.name();
    fn ints<T: Into<Value>>(v: Vec<T>) -> Vec<Value> {
        v.into_iter().map(Into::into).collect()
    }
    let floats = |v: Vec<f64>| -> Result<Vec<Value>> {
        v.into_iter()
            .enumerate()
            .map(|(i, x)| float(name, i, x))
            .collect()
    };
    Ok(match t.datatype() {
        DataType::Bool => ints(t.to_vec::<bool>()?),
        DataType::Uint8 => ints(t.to_vec::<u8>()?),
        DataType::Uint16 => ints(t.to_vec::<u16>()?),
        DataType::Uint32 => ints(t.to_vec::<u32>()?),
        DataType::Uint64 => ints(t.to_vec::<u64>()?),
        DataType::Int8 => ints(t.to_vec::<i8>()?),
        DataType::Int16 => ints(t.to_vec::<i16>()?),
        DataType::Int32 => ints(t.to_vec::<i32>()?),
        DataType::Int64 => ints(t.to_vec::<i64>()?),
        DataType::Fp16 => floats(t.to_vec::<f16>()?.into_iter().map(f64::from).collect())?,
        DataType::Bf16 => floats(t.to_vec::<bf16>()?.into_iter().map(f64::from).collect())?,
        DataType::Fp32 => floats(t.to_vec::<f32>()?.into_iter().map(f64::from).collect())?,
        DataType::Fp64 => floats(t.to_vec::<f64>()?)?,
        // JSON strings carry only UTF-8 text; other bytes go through invoke.
        DataType::Bytes => t
            .to_strings()
            .map_err(|e| e.with_context("instead", "invoke with a binary payload"))?
            .into_iter()
            .map(Value::String)
            .collect(),
    })
}

// ---------------------------------------------------------------- decoding

fn protocol(message: impl Into<String>, path: &str) -> Error {
    Error::new(ErrorKind::Protocol, message).with_path(path.to_owned())
}

fn json_to_tensor(name: &str, value: Value, hint: Option<DataType>, path: &str) -> Result<Tensor> {
    let (shape, leaves) = kit::json::nested_leaves(&value, path, Leaf::NotArray)?;
    if let Some(dt) = hint
        && let Some(t) = build(name, dt, &shape, &leaves)?
    {
        return Ok(t);
    }
    let dt = infer_datatype(&leaves, path)?;
    build(name, dt, &shape, &leaves)?.ok_or_else(|| {
        protocol(
            format!("the values of output \"{name}\" do not fit {dt}"),
            path,
        )
    })
}

fn infer_datatype(leaves: &[&Value], path: &str) -> Result<DataType> {
    if leaves.is_empty() {
        return Ok(DataType::Fp32);
    }
    if leaves.iter().all(|v| v.is_boolean()) {
        return Ok(DataType::Bool);
    }
    if leaves.iter().all(|v| v.is_string()) {
        return Ok(DataType::Bytes);
    }
    if leaves.iter().all(|v| v.is_i64()) {
        return Ok(DataType::Int64);
    }
    if leaves.iter().all(|v| v.is_i64() || v.is_u64()) {
        return Ok(DataType::Uint64);
    }
    if leaves.iter().all(|v| v.is_number()) {
        return Ok(DataType::Fp64);
    }
    let (i, odd) = leaves
        .iter()
        .enumerate()
        .find(|(_, v)| !v.is_number())
        .unwrap_or((0, &leaves[0]));
    Err(protocol(
        format!(
            "element {i} is {} among other kinds of values; the mapping needs numbers, booleans \
             or strings throughout (use invoke for other payloads)",
            inferlink_core::kit::json_kind(odd)
        ),
        path,
    ))
}

/// A tensor of `dt`, or `None` when some value does not fit `dt`.
fn build(name: &str, dt: DataType, shape: &[usize], leaves: &[&Value]) -> Result<Option<Tensor>> {
    fn all<T>(leaves: &[&Value], f: impl Fn(&Value) -> Option<T>) -> Option<Vec<T>> {
        leaves.iter().map(|v| f(v)).collect()
    }
    fn int<T: TryFrom<i64> + TryFrom<u64>>(v: &Value) -> Option<T> {
        match v {
            Value::Number(n) => n
                .as_i64()
                .and_then(|x| T::try_from(x).ok())
                .or_else(|| n.as_u64().and_then(|x| T::try_from(x).ok())),
            _ => None,
        }
    }
    let shape = shape.to_vec();
    let tensor = match dt {
        DataType::Bool => all(leaves, Value::as_bool).map(|v| Tensor::new(name, shape, v)),
        DataType::Uint8 => all(leaves, int::<u8>).map(|v| Tensor::new(name, shape, v)),
        DataType::Uint16 => all(leaves, int::<u16>).map(|v| Tensor::new(name, shape, v)),
        DataType::Uint32 => all(leaves, int::<u32>).map(|v| Tensor::new(name, shape, v)),
        DataType::Uint64 => all(leaves, int::<u64>).map(|v| Tensor::new(name, shape, v)),
        DataType::Int8 => all(leaves, int::<i8>).map(|v| Tensor::new(name, shape, v)),
        DataType::Int16 => all(leaves, int::<i16>).map(|v| Tensor::new(name, shape, v)),
        DataType::Int32 => all(leaves, int::<i32>).map(|v| Tensor::new(name, shape, v)),
        DataType::Int64 => all(leaves, int::<i64>).map(|v| Tensor::new(name, shape, v)),
        DataType::Fp16 => {
            all(leaves, Value::as_f64).map(|v| Tensor::new(name, shape, map(v, f16::from_f64)))
        }
        DataType::Bf16 => {
            all(leaves, Value::as_f64).map(|v| Tensor::new(name, shape, map(v, bf16::from_f64)))
        }
        DataType::Fp32 => {
            all(leaves, Value::as_f64).map(|v| Tensor::new(name, shape, map(v, |x| x as f32)))
        }
        DataType::Fp64 => all(leaves, Value::as_f64).map(|v| Tensor::new(name, shape, v)),
        DataType::Bytes => all(leaves, |v| v.as_str().map(str::to_owned))
            .map(|v| Tensor::from_strings(name, shape, v)),
    };
    tensor.transpose()
}

fn map<T>(v: Vec<f64>, f: impl Fn(f64) -> T) -> Vec<T> {
    v.into_iter().map(f).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(t: Tensor) -> InferRequest {
        InferRequest::new().with_input(t)
    }

    #[test]
    fn one_input_is_nested_arrays() {
        let t = Tensor::new("x", vec![2, 2], vec![1i32, -2, 3, 4]).unwrap();
        assert_eq!(&encode_predictions(&req(t)).unwrap()[..], b"[[1,-2],[3,4]]");
        let s = Tensor::scalar("s", 2.5f64);
        assert_eq!(&encode_predictions(&req(s)).unwrap()[..], b"2.5");
        let b = Tensor::from_strings("b", vec![2], ["a", "ü"]).unwrap();
        assert_eq!(
            std::str::from_utf8(&encode_predictions(&req(b)).unwrap()).unwrap(),
            "[\"a\",\"ü\"]"
        );
        let h = Tensor::fp16_from_f32("h", vec![2], &[0.5, -1.25]).unwrap();
        assert_eq!(&encode_predictions(&req(h)).unwrap()[..], b"[0.5,-1.25]");
    }

    #[test]
    fn several_inputs_are_an_object() {
        let r = InferRequest::new()
            .with_input(Tensor::from_vec("a", vec![true, false]))
            .with_input(Tensor::from_vec("b", vec![1u8]));
        assert_eq!(
            &encode_predictions(&r).unwrap()[..],
            br#"{"a":[true,false],"b":[1]}"#
        );
        let dup = InferRequest::new()
            .with_input(Tensor::from_vec("a", vec![1u8]))
            .with_input(Tensor::from_vec("a", vec![2u8]));
        assert_eq!(
            encode_predictions(&dup).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            encode_predictions(&InferRequest::new()).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn unrepresentable_inputs_are_invalid() {
        let nan = Tensor::from_vec("x", vec![1.0f32, f32::NAN]);
        let e = encode_predictions(&req(nan)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().contains("element 1"), "{e}");
        let bin = Tensor::from_byte_elements("b", vec![1], [Bytes::from_static(b"\xff")]).unwrap();
        let e = encode_predictions(&req(bin)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().contains("element 0 is not UTF-8"), "{e}");
        assert_eq!(e.context("instead"), Some("invoke with a binary payload"));
    }

    #[test]
    fn answers_keep_the_input_datatype_when_values_fit() {
        let r = req(Tensor::new("x", vec![1, 3], vec![1i16, 2, 3]).unwrap());
        let out = decode_predictions(b"[[2, 4, 6]]", &r).unwrap();
        let t = &out.outputs[0];
        assert_eq!(
            (t.name(), t.datatype(), t.shape()),
            (OUTPUT_NAME, DataType::Int16, &[1, 3][..])
        );
        assert_eq!(t.to_vec::<i16>().unwrap(), vec![2, 4, 6]);
        // 70000 does not fit INT16: inferred INT64.
        let out = decode_predictions(b"[70000]", &r).unwrap();
        assert_eq!(out.outputs[0].datatype(), DataType::Int64);
        let out = decode_predictions(b"[0.5]", &r).unwrap();
        assert_eq!(out.outputs[0].datatype(), DataType::Fp64);
        let out = decode_predictions(b"[\"A\"]", &r).unwrap();
        assert_eq!(out.outputs[0].to_strings().unwrap(), vec!["A"]);
        let out = decode_predictions(b"[18446744073709551615]", &r).unwrap();
        assert_eq!(out.outputs[0].datatype(), DataType::Uint64);
    }

    #[test]
    fn objects_are_named_outputs() {
        let r = InferRequest::new()
            .with_input(Tensor::from_vec("a", vec![1.5f32]))
            .with_input(Tensor::from_vec("b", vec![true]));
        let out = decode_predictions(br#"{"b": [false], "a": [3.0], "c": 7}"#, &r).unwrap();
        let names: Vec<&str> = out.outputs.iter().map(|t| t.name()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(out.outputs[0].datatype(), DataType::Fp32);
        assert_eq!(out.outputs[1].datatype(), DataType::Bool);
        assert_eq!(out.outputs[2].datatype(), DataType::Int64);
        assert_eq!(out.outputs[2].shape(), &[] as &[usize]);
    }

    #[test]
    fn bad_answers_are_protocol_errors_with_paths() {
        let r = req(Tensor::from_vec("x", vec![1.0f32]));
        for (body, path) in [
            (&b"[[1, 2], [3]]"[..], Some("$[1]")),
            (b"[[1, 2], 3]", Some("$[1]")),
            (b"[1, [2]]", Some("$[1]")),
            (b"[1, null]", Some("$")),
            (b"[1, \"a\"]", Some("$")),
            (b"{\"a\": {\"b\": 1}}", Some("$")),
            (b"not json", None),
        ] {
            let e = decode_predictions(body, &r).unwrap_err();
            assert_eq!(
                e.kind(),
                ErrorKind::Protocol,
                "{}",
                String::from_utf8_lossy(body)
            );
            assert_eq!(e.path(), path, "{e}");
        }
        let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        assert_eq!(
            decode_predictions(deep.as_bytes(), &r).unwrap_err().kind(),
            ErrorKind::Protocol
        );
    }

    #[test]
    fn kserve_v1_wraps_instances_and_reads_predictions() {
        let t = Tensor::new("x", vec![2], vec![1i64, 2]).unwrap();
        let r = req(t);
        assert_eq!(
            &encode_kserve_v1(&r).unwrap()[..],
            br#"{"instances":[1,2]}"#
        );
        let out = decode_kserve_v1(br#"{"predictions": [2, 4]}"#, &r).unwrap();
        assert_eq!(out.outputs[0].to_vec::<i64>().unwrap(), vec![2, 4]);
        assert_eq!(
            decode_kserve_v1(b"[1]", &r).unwrap_err().kind(),
            ErrorKind::Protocol
        );
        let two = InferRequest::new()
            .with_input(Tensor::from_vec("a", vec![1u8]))
            .with_input(Tensor::from_vec("b", vec![1u8]));
        assert_eq!(
            encode_kserve_v1(&two).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }
}
