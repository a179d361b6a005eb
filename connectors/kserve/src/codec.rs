//! KServe V1 ↔ tensors: how [`InferRequest`] inputs become `instances` rows,
//! and how `predictions` rows become output tensors.
//!
//! V1 payloads are model-defined JSON; this mapping is what the connector's
//! tensor [`infer`](inferlink_core::InferenceConnector::infer) sends and reads.
//! Send your own JSON with [`crate::KServeClient::predict`] or `invoke`.
//!
//! **Request.** Every input needs a first (batch) dimension `n`; all inputs
//! share it. Row `i` of a tensor of shape `[n, d1, …, dk]` is the nested
//! JSON array of shape `[d1, …, dk]` (a scalar when the tensor is `[n]`).
//!
//! * one input: `{"instances": [row_0, …, row_{n-1}]}`;
//! * several inputs: each instance is an object keyed by input name,
//!   `{"instances": [{"a": a_row_0, "b": b_row_0}, …]}` (TensorFlow
//!   Serving's "row format").
//!
//! Elements: BOOL → `true`/`false`; integers → JSON integers (exact, also
//! for 64-bit values); FP16, BF16, FP32, FP64 → JSON numbers with a decimal
//! point (so the server parses floats, never integers); BYTES → JSON strings
//! (UTF-8 only). NaN, infinities, non-UTF-8 BYTES, a rank-0 tensor,
//! differing batch sizes, repeated names and request parameters are
//! [`ErrorKind::InvalidInput`] errors naming the input; nothing is sent.
//!
//! **Response.** `{"predictions": [row, …]}` (other keys are ignored):
//!
//! * rows that are objects give one tensor per key (all rows must have the
//!   same keys);
//! * other rows give one tensor, named by `v1_output_name`
//!   (default `predictions`).
//!
//! The shape is `[rows] + the shape of the nested arrays` (every row must
//! have the same shape). The datatype is, in order: `v1_output_datatype`
//! when configured (values that do not fit are a [`ErrorKind::Protocol`]
//! error); else the datatype of the input with the output's name, or of the
//! only input, when every value fits it (integers in range for integer
//! types, any number for float types — rounded to FP16/BF16/FP32 —,
//! booleans for BOOL, strings for BYTES); else what the JSON says: BOOL,
//! INT64 (UINT64 above `i64::MAX`), FP64 (`null` reads as NaN), BYTES. A
//! ragged array, mixed element kinds or a missing `predictions` array are
//! [`ErrorKind::Protocol`] errors naming the place (`predictions[3][1]`).

use std::fmt::Write as _;

use inferlink_core::kit;
use inferlink_core::kit::json::Leaf;
use inferlink_core::tensor::{bf16, f16};
use inferlink_core::{DataType, Error, ErrorKind, InferRequest, Result, Tensor};
use serde_json::Value;

/// The media type of V1 bodies.
pub const JSON: &str = "application/json";

/// The `{"instances": …}` body for a request's inputs (see the module docs).
pub fn encode_instances(request: &InferRequest) -> Result<Vec<u8>> {
    if !request.parameters.is_empty() {
        return Err(Error::invalid_at(
            "parameters",
            "KServe V1 requests carry no parameters (send your own JSON with predict or invoke)",
        ));
    }
    if request.inputs.is_empty() {
        return Err(Error::invalid_at(
            "inputs",
            "a V1 request needs at least one input",
        ));
    }
    let mut flats = Vec::with_capacity(request.inputs.len());
    let mut rows = None;
    for (i, t) in request.inputs.iter().enumerate() {
        let at = |e: Error| {
            e.with_path(format!("inputs[{i}]"))
                .with_context("tensor", t.name())
        };
        if request.inputs[..i].iter().any(|o| o.name() == t.name()) {
            return Err(at(Error::invalid(format!(
                "input \"{}\" is given twice",
                t.name().escape_debug()
            ))));
        }
        let Some(&n) = t.shape().first() else {
            return Err(at(Error::invalid(format!(
                "input \"{}\" has no batch dimension; V1 instances are rows (give it shape [1])",
                t.name().escape_debug()
            ))));
        };
        match rows {
            None => rows = Some(n),
            Some(m) if m != n => {
                return Err(at(Error::invalid(format!(
                    "input \"{}\" has {n} rows but the first input has {m}; V1 instances need \
                     one batch size",
                    t.name().escape_debug()
                ))));
            }
            Some(_) => {}
        }
        flats.push(Flat::of(t).map_err(at)?);
    }
    let rows = rows.unwrap_or(0);
    let estimate: usize = request
        .inputs
        .iter()
        .map(|t| t.element_count() * 8 + 16)
        .sum();
    let mut out = String::with_capacity(estimate + 16);
    out.push_str("{\"instances\":[");
    let named = request.inputs.len() > 1;
    let mut offsets = vec![0usize; flats.len()];
    for row in 0..rows {
        if row > 0 {
            out.push(',');
        }
        if named {
            out.push('{');
        }
        for (k, t) in request.inputs.iter().enumerate() {
            if named {
                if k > 0 {
                    out.push(',');
                }
                write_json_string(&mut out, t.name());
                out.push(':');
            }
            flats[k]
                .write_nested(&t.shape()[1..], &mut offsets[k], &mut out)
                .map_err(|e| {
                    e.with_path(format!("inputs[{k}]"))
                        .with_context("tensor", t.name())
                })?;
        }
        if named {
            out.push('}');
        }
    }
    out.push_str("]}");
    Ok(out.into_bytes())
}

/// A tensor's elements in the forms JSON can write.
enum Flat {
    Bool(Vec<bool>),
    Int(Vec<i64>),
    Uint(Vec<u64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Str(Vec<String>),
}

impl Flat {
    fn of(t: &Tensor) -> Result<Flat> {
        fn widen<T: Into<W>, W>(v: Vec<T>) -> Vec<W> {
            v.into_iter().map(Into::into).collect()
        }
        Ok(match t.datatype() {
            DataType::Bool => Flat::Bool(t.to_vec()?),
            DataType::Uint8 => Flat::Uint(widen(t.to_vec::<u8>()?)),
            DataType::Uint16 => Flat::Uint(widen(t.to_vec::<u16>()?)),
            DataType::Uint32 => Flat::Uint(widen(t.to_vec::<u32>()?)),
            DataType::Uint64 => Flat::Uint(t.to_vec()?),
            DataType::Int8 => Flat::Int(widen(t.to_vec::<i8>()?)),
            DataType::Int16 => Flat::Int(widen(t.to_vec::<i16>()?)),
            DataType::Int32 => Flat::Int(widen(t.to_vec::<i32>()?)),
            DataType::Int64 => Flat::Int(t.to_vec()?),
            DataType::Fp16 | DataType::Bf16 => Flat::F32(t.to_f32_lossy()?),
            DataType::Fp32 => Flat::F32(t.to_vec()?),
            DataType::Fp64 => Flat::F64(t.to_vec()?),
            DataType::Bytes => Flat::Str(t.to_strings().map_err(|e| {
                Error::invalid(format!(
                    "{}; V1 carries BYTES as JSON strings (use V2 with binary tensors, or invoke)",
                    e.message()
                ))
            })?),
        })
    }

    fn write_nested(&self, dims: &[usize], offset: &mut usize, out: &mut String) -> Result<()> {
        let Some((&n, rest)) = dims.split_first() else {
            self.write_element(*offset, out)?;
            *offset += 1;
            return Ok(());
        };
        out.push('[');
        for i in 0..n {
            if i > 0 {
                out.push(',');
            }
            self.write_nested(rest, offset, out)?;
        }
        out.push(']');
        Ok(())
    }

    fn write_element(&self, i: usize, out: &mut String) -> Result<()> {
        let non_finite = || {
            Error::invalid(format!(
                "element {i} is not a finite number; JSON (and so V1) cannot carry NaN or \
                 infinity"
            ))
        };
        match self {
            Flat::Bool(v) => out.push_str(if v[i] { "true" } else { "false" }),
            Flat::Int(v) => {
                let _ = write!(out, "{}", v[i]);
            }
            Flat::Uint(v) => {
                let _ = write!(out, "{}", v[i]);
            }
            Flat::F32(v) => {
                if !v[i].is_finite() {
                    return Err(non_finite());
                }
                write_float(out, format_args!("{}", v[i]));
            }
            Flat::F64(v) => {
                if !v[i].is_finite() {
                    return Err(non_finite());
                }
                write_float(out, format_args!("{}", v[i]));
            }
            Flat::Str(v) => write_json_string(out, &v[i]),
        }
        Ok(())
    }
}

/// A float in the shortest text that reads back the same, always with a
/// decimal point (`2` → `2.0`) so the server parses a float.
fn write_float(out: &mut String, value: std::fmt::Arguments<'_>) {
    let start = out.len();
    let _ = out.write_fmt(value);
    if !out[start..].contains(['.', 'e', 'E']) {
        out.push_str(".0");
    }
}

fn write_json_string(out: &mut String, s: &str) {
    // serde_json escapes exactly what JSON requires.
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned()));
}

/// How [`decode_predictions`] names and types the tensors it builds.
#[derive(Debug, Clone, Copy)]
pub struct DecodeOptions<'a> {
    /// The name of the tensor when rows are not objects.
    pub output_name: &'a str,
    /// A configured datatype every value must fit.
    pub datatype: Option<DataType>,
    /// The request's inputs (name, datatype): the preferred datatypes.
    pub inputs: &'a [(&'a str, DataType)],
}

/// The output tensors of a `{"predictions": […]}` body (see the module docs).
pub fn decode_predictions(body: &[u8], options: &DecodeOptions<'_>) -> Result<Vec<Tensor>> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| protocol(format!("the V1 response is not JSON ({e})")))?;
    let Some(rows) = value.get("predictions") else {
        let keys = value
            .as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "))
            .unwrap_or_else(|| "not an object".to_owned());
        return Err(protocol(format!(
            "the V1 response has no \"predictions\" (it has: {keys}); read model-defined \
             answers with predict or invoke"
        ))
        .with_path("predictions"));
    };
    let Some(rows) = rows.as_array() else {
        return Err(protocol("\"predictions\" is not an array").with_path("predictions"));
    };
    let single_input = match options.inputs {
        [(_, dt)] => Some(*dt),
        _ => None,
    };
    let named = !rows.is_empty() && rows.iter().all(Value::is_object);
    if !named {
        let (shape, leaves) =
            kit::json::nested_rows(rows.iter(), rows.len(), "predictions", Leaf::Scalar)?;
        let hint = options
            .inputs
            .iter()
            .find(|(n, _)| *n == options.output_name)
            .map(|(_, dt)| *dt)
            .or(single_input);
        let t = build(
            options.output_name,
            shape,
            &leaves,
            options.datatype,
            hint,
            "predictions",
        )?;
        return Ok(vec![t]);
    }
    let first = rows[0]
        .as_object()
        .expect("checked: every row is an object");
    let mut outputs = Vec::with_capacity(first.len());
    for (i, row) in rows.iter().enumerate() {
        let obj = row.as_object().expect("checked");
        if obj.len() != first.len() || !first.keys().all(|k| obj.contains_key(k)) {
            return Err(protocol(format!(
                "predictions[{i}] has other keys than predictions[0]"
            ))
            .with_path(format!("predictions[{i}]")));
        }
    }
    for key in first.keys() {
        let path = format!("predictions[*].{key}");
        let (shape, leaves) = kit::json::nested_rows(
            rows.iter().map(|r| &r[key]),
            rows.len(),
            &path,
            Leaf::Scalar,
        )?;
        let hint = options
            .inputs
            .iter()
            .find(|(n, _)| n == key)
            .map(|(_, dt)| *dt)
            .or(single_input);
        outputs.push(build(key, shape, &leaves, options.datatype, hint, &path)?);
    }
    Ok(outputs)
}

/// Whether a JSON value can be read as an element of `dt`.
fn fits(dt: DataType, v: &Value) -> bool {
    match dt {
        DataType::Bool => v.is_boolean(),
        DataType::Bytes => v.is_string(),
        DataType::Fp16 | DataType::Bf16 | DataType::Fp32 | DataType::Fp64 => {
            v.is_number() || v.is_null()
        }
        DataType::Uint8 => int_in(v, 0, u8::MAX.into()),
        DataType::Uint16 => int_in(v, 0, u16::MAX.into()),
        DataType::Uint32 => int_in(v, 0, u32::MAX.into()),
        DataType::Uint64 => int_in(v, 0, u64::MAX.into()),
        DataType::Int8 => int_in(v, i8::MIN.into(), i8::MAX.into()),
        DataType::Int16 => int_in(v, i16::MIN.into(), i16::MAX.into()),
        DataType::Int32 => int_in(v, i32::MIN.into(), i32::MAX.into()),
        DataType::Int64 => int_in(v, i64::MIN.into(), i64::MAX.into()),
    }
}

fn as_int(v: &Value) -> Option<i128> {
    v.as_i64()
        .map(i128::from)
        .or_else(|| v.as_u64().map(i128::from))
}

fn int_in(v: &Value, lo: i128, hi: i128) -> bool {
    as_int(v).is_some_and(|x| (lo..=hi).contains(&x))
}

/// The datatype the JSON values themselves suggest.
fn natural(leaves: &[&Value], path: &str) -> Result<DataType> {
    let Some(first) = leaves.iter().find(|v| !v.is_null()) else {
        return Ok(DataType::Fp64);
    };
    let candidates: &[DataType] = match first {
        Value::Bool(_) => &[DataType::Bool],
        Value::String(_) => &[DataType::Bytes],
        Value::Number(_) => &[DataType::Int64, DataType::Uint64, DataType::Fp64],
        _ => &[],
    };
    for dt in candidates {
        if leaves.iter().all(|v| fits(*dt, v)) {
            return Ok(*dt);
        }
    }
    Err(protocol(format!(
        "{path} mixes booleans, numbers and strings (or holds nulls outside numbers); set \
         v1_output_datatype or read the answer with predict"
    ))
    .with_path(path.to_owned()))
}

fn build(
    name: &str,
    shape: Vec<usize>,
    leaves: &[&Value],
    forced: Option<DataType>,
    hint: Option<DataType>,
    path: &str,
) -> Result<Tensor> {
    let dt = match forced {
        Some(dt) => {
            if let Some(i) = leaves.iter().position(|v| !fits(dt, v)) {
                return Err(protocol(format!(
                    "{path}: element {i} ({}) does not fit v1_output_datatype {dt}",
                    short(leaves[i])
                ))
                .with_path(path.to_owned()));
            }
            dt
        }
        None => match hint.filter(|dt| leaves.iter().all(|v| fits(*dt, v))) {
            Some(dt) => dt,
            None => natural(leaves, path)?,
        },
    };
    let ints = || leaves.iter().map(|v| as_int(v).unwrap_or_default());
    let floats = || leaves.iter().map(|v| v.as_f64().unwrap_or(f64::NAN));
    // `fits` was checked for every leaf, so the narrowing below cannot fail.
    let tensor = match dt {
        DataType::Bool => Tensor::new(
            name,
            shape,
            leaves
                .iter()
                .map(|v| v.as_bool() == Some(true))
                .collect::<Vec<_>>(),
        ),
        DataType::Uint8 => Tensor::new(name, shape, ints().map(|x| x as u8).collect::<Vec<_>>()),
        DataType::Uint16 => Tensor::new(name, shape, ints().map(|x| x as u16).collect::<Vec<_>>()),
        DataType::Uint32 => Tensor::new(name, shape, ints().map(|x| x as u32).collect::<Vec<_>>()),
        DataType::Uint64 => Tensor::new(name, shape, ints().map(|x| x as u64).collect::<Vec<_>>()),
        DataType::Int8 => Tensor::new(name, shape, ints().map(|x| x as i8).collect::<Vec<_>>()),
        DataType::Int16 => Tensor::new(name, shape, ints().map(|x| x as i16).collect::<Vec<_>>()),
        DataType::Int32 => Tensor::new(name, shape, ints().map(|x| x as i32).collect::<Vec<_>>()),
        DataType::Int64 => Tensor::new(name, shape, ints().map(|x| x as i64).collect::<Vec<_>>()),
        DataType::Fp16 => Tensor::new(name, shape, floats().map(f16::from_f64).collect::<Vec<_>>()),
        DataType::Bf16 => Tensor::new(
            name,
            shape,
            floats().map(bf16::from_f64).collect::<Vec<_>>(),
        ),
        DataType::Fp32 => Tensor::new(name, shape, floats().map(|x| x as f32).collect::<Vec<_>>()),
        DataType::Fp64 => Tensor::new(name, shape, floats().collect::<Vec<_>>()),
        DataType::Bytes => Tensor::from_strings(
            name,
            shape,
            leaves
                .iter()
                .map(|v| v.as_str().unwrap_or_default())
                .collect::<Vec<_>>(),
        ),
    };
    tensor.map_err(|e| protocol(e.message().to_owned()).with_path(path.to_owned()))
}

fn short(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 40 {
        let cut: String = text.chars().take(40).collect();
        format!("{cut}…")
    } else {
        text
    }
}

fn protocol(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Protocol, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(r: &InferRequest) -> String {
        String::from_utf8(encode_instances(r).unwrap()).unwrap()
    }

    #[test]
    fn one_input_becomes_rows() {
        let t = Tensor::new("x", vec![2, 2], vec![1.0f32, 2.5, -3.0, 0.1]).unwrap();
        assert_eq!(
            text(&InferRequest::from(t)),
            r#"{"instances":[[1.0,2.5],[-3.0,0.1]]}"#
        );
        let t = Tensor::from_vec("x", vec![7i64, i64::MAX]);
        assert_eq!(
            text(&InferRequest::from(t)),
            r#"{"instances":[7,9223372036854775807]}"#
        );
        let t = Tensor::new("b", vec![1, 2, 1], vec![true, false]).unwrap();
        assert_eq!(
            text(&InferRequest::from(t)),
            r#"{"instances":[[[true],[false]]]}"#
        );
        let t = Tensor::from_strings("s", vec![2], ["a\"b", "wörld"]).unwrap();
        assert_eq!(
            text(&InferRequest::from(t)),
            r#"{"instances":["a\"b","wörld"]}"#
        );
        let t = Tensor::fp16_from_f32("h", vec![2], &[0.25, 3.0]).unwrap();
        assert_eq!(text(&InferRequest::from(t)), r#"{"instances":[0.25,3.0]}"#);
        let empty = Tensor::new("e", vec![0, 3], Vec::<f32>::new()).unwrap();
        assert_eq!(text(&InferRequest::from(empty)), r#"{"instances":[]}"#);
    }

    #[test]
    fn several_inputs_become_named_rows() {
        let r = InferRequest::new()
            .with_input(Tensor::new("a", vec![2, 1], vec![1u8, 2]).unwrap())
            .with_input(Tensor::from_strings("b", vec![2], ["x", "y"]).unwrap());
        assert_eq!(
            text(&r),
            r#"{"instances":[{"a":[1],"b":"x"},{"a":[2],"b":"y"}]}"#
        );
    }

    #[test]
    fn what_v1_cannot_carry_is_refused() {
        let cases = [
            (
                InferRequest::from(Tensor::scalar("s", 1.0f32)),
                "no batch dimension",
                "inputs[0]",
            ),
            (
                InferRequest::from(Tensor::from_vec("n", vec![1.0f32, f32::NAN])),
                "element 1 is not a finite",
                "inputs[0]",
            ),
            (
                InferRequest::from(
                    Tensor::from_byte_elements("b", vec![1], vec![vec![0xffu8]]).unwrap(),
                ),
                "V1 carries BYTES as JSON strings",
                "inputs[0]",
            ),
            (
                InferRequest::new()
                    .with_input(Tensor::from_vec("a", vec![1i32, 2]))
                    .with_input(Tensor::from_vec("b", vec![1i32])),
                "has 1 rows but the first input has 2",
                "inputs[1]",
            ),
            (
                InferRequest::new()
                    .with_input(Tensor::from_vec("a", vec![1i32]))
                    .with_input(Tensor::from_vec("a", vec![1i32])),
                "given twice",
                "inputs[1]",
            ),
            (
                InferRequest::from(Tensor::from_vec("a", vec![1i32])).with_parameter("p", true),
                "no parameters",
                "parameters",
            ),
            (InferRequest::new(), "at least one input", "inputs"),
        ];
        for (r, words, path) in cases {
            let e = encode_instances(&r).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
            assert!(e.to_string().contains(words), "{e}");
            assert_eq!(e.path(), Some(path), "{e}");
        }
    }

    fn decode(
        body: &str,
        inputs: &[(&str, DataType)],
        forced: Option<DataType>,
    ) -> Result<Vec<Tensor>> {
        decode_predictions(
            body.as_bytes(),
            &DecodeOptions {
                output_name: "predictions",
                datatype: forced,
                inputs,
            },
        )
    }

    #[test]
    fn predictions_follow_the_input_datatype_when_they_fit() {
        let out = decode(
            r#"{"predictions":[[2.0,4.0],[6.0,8.5]]}"#,
            &[("x", DataType::Fp32)],
            None,
        )
        .unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].name(), "predictions");
        assert_eq!(out[0].shape(), &[2, 2]);
        assert_eq!(out[0].to_vec::<f32>().unwrap(), vec![2.0, 4.0, 6.0, 8.5]);

        let out = decode(
            r#"{"predictions":[-56, 100]}"#,
            &[("x", DataType::Int8)],
            None,
        )
        .unwrap();
        assert_eq!(out[0].to_vec::<i8>().unwrap(), vec![-56, 100]);
        // 200 does not fit INT8: the JSON's own type.
        let out = decode(r#"{"predictions":[200]}"#, &[("x", DataType::Int8)], None).unwrap();
        assert_eq!(out[0].datatype(), DataType::Int64);
        // Floats do not fit integer types.
        let out = decode(r#"{"predictions":[2.0]}"#, &[("x", DataType::Int32)], None).unwrap();
        assert_eq!(out[0].datatype(), DataType::Fp64);
        let out = decode(
            r#"{"predictions":[0.5, 1]}"#,
            &[("x", DataType::Fp16)],
            None,
        )
        .unwrap();
        assert_eq!(out[0].to_f32_lossy().unwrap(), vec![0.5, 1.0]);
    }

    #[test]
    fn predictions_without_hint_take_the_json_type() {
        let cases = [
            (r#"{"predictions":[1,2]}"#, DataType::Int64),
            (
                r#"{"predictions":[18446744073709551615]}"#,
                DataType::Uint64,
            ),
            (r#"{"predictions":[1,2.5,null]}"#, DataType::Fp64),
            (r#"{"predictions":[[true],[false]]}"#, DataType::Bool),
            (r#"{"predictions":["a","b"]}"#, DataType::Bytes),
            (r#"{"predictions":[]}"#, DataType::Fp64),
        ];
        for (body, dt) in cases {
            let out = decode(body, &[], None).unwrap();
            assert_eq!(out[0].datatype(), dt, "{body}");
        }
        let nan = decode(r#"{"predictions":[null, 1.5]}"#, &[], None).unwrap();
        assert!(nan[0].to_vec::<f64>().unwrap()[0].is_nan());
        let s = decode(r#"{"predictions":["ab"]}"#, &[], None).unwrap();
        assert_eq!(s[0].to_strings().unwrap(), vec!["ab"]);
    }

    #[test]
    fn object_rows_give_named_outputs() {
        let out = decode(
            r#"{"predictions":[{"label":"cat","score":0.9},{"label":"dog","score":0.2}]}"#,
            &[("x", DataType::Fp32)],
            None,
        )
        .unwrap();
        let label = out.iter().find(|t| t.name() == "label").unwrap();
        assert_eq!(label.to_strings().unwrap(), vec!["cat", "dog"]);
        let score = out.iter().find(|t| t.name() == "score").unwrap();
        assert_eq!(score.datatype(), DataType::Fp32);
        assert_eq!(score.shape(), &[2]);
    }

    #[test]
    fn configured_datatype_is_enforced() {
        let out = decode(r#"{"predictions":[1,2]}"#, &[], Some(DataType::Fp32)).unwrap();
        assert_eq!(out[0].datatype(), DataType::Fp32);
        let e = decode(r#"{"predictions":[1,"x"]}"#, &[], Some(DataType::Int32)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
        assert!(e.message().contains("element 1 (\"x\")"), "{e}");
    }

    #[test]
    fn malformed_predictions_are_protocol_errors() {
        for (body, words, path) in [
            ("nope", "not JSON", None),
            (
                r#"{"outputs":[1]}"#,
                "no \"predictions\" (it has: outputs)",
                Some("predictions"),
            ),
            (r#"{"predictions":5}"#, "not an array", Some("predictions")),
            (
                r#"{"predictions":[[1,2],[3]]}"#,
                "predictions[1] has 1 elements",
                Some("predictions[1]"),
            ),
            (
                r#"{"predictions":[[1,2],3]}"#,
                "is a value where",
                Some("predictions[1]"),
            ),
            (
                r#"{"predictions":[1,[2]]}"#,
                "is an array or object",
                Some("predictions[1]"),
            ),
            (r#"{"predictions":[1,"a"]}"#, "mixes", Some("predictions")),
            (
                r#"{"predictions":[{"a":1},{"b":1}]}"#,
                "other keys",
                Some("predictions[1]"),
            ),
        ] {
            let e = decode(body, &[], None).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Protocol, "{body}: {e}");
            assert!(e.to_string().contains(words), "{body}: {e}");
            assert_eq!(e.path(), path, "{body}: {e}");
        }
    }

    #[test]
    fn finding1_first_row_bombs_are_protocol_errors_not_aborts_or_panics() {
        inferlink_testkit::hostile::assert_refuses_first_row_bombs("predictions", |body| {
            decode(std::str::from_utf8(body).unwrap(), &[], None)
        });
    }

    #[test]
    fn rows_round_trip_through_the_mapping() {
        // What a V1 identity model answers is the instances themselves.
        for t in [
            Tensor::new("x", vec![3, 2], vec![1u16, 2, 3, 4, 5, 65535]).unwrap(),
            Tensor::new("x", vec![2, 2], vec![-1.5f64, 2.0, 1e-7, 3e300]).unwrap(),
            Tensor::new("x", vec![1, 3], vec![0.1f32, 1e-3, 16777216.0]).unwrap(),
            Tensor::bf16_from_f32("x", vec![2], &[0.5, -2.0]).unwrap(),
        ] {
            let body = String::from_utf8(encode_instances(&InferRequest::from(t.clone())).unwrap())
                .unwrap();
            let answer = body.replace("instances", "predictions");
            let out = decode(&answer, &[("x", t.datatype())], None).unwrap();
            assert_eq!(out[0].datatype(), t.datatype());
            assert_eq!(out[0].shape(), t.shape());
            assert_eq!(
                out[0].to_f64_lossy().unwrap(),
                t.to_f64_lossy().unwrap(),
                "{body}"
            );
        }
    }
}
