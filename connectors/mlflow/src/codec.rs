//! Tensors ⇄ the scoring server's JSON (pure functions).
//!
//! Requests: each tensor becomes nested JSON arrays built from its shape and
//! data (a 0-d tensor a bare value), in the form [`InputFormat`] chooses;
//! non-finite floats are written bare (`NaN`, `inf` as `Infinity`), as the
//! server reads them. Responses: `{"predictions": …}` where `…` is a number
//! or nested arrays of numbers becomes one output named by `output_name`,
//! its shape from the nesting, its datatype from the numbers.
//!
//! Decoding is total: nesting deeper than [`MAX_RANK`], ragged arrays,
//! strings, booleans, nulls, objects (a dict or DataFrame answer) and the
//! bare `NaN` or `Infinity` the server writes for non-finite results (not
//! JSON) are an [`ErrorKind::Protocol`] error saying so; such answers can be
//! read with `invoke`. Memory grows only with the numbers read (8 bytes each).

use std::fmt::{self, Write as _};

use inferlink_core::{DataType, Error, ErrorKind, InferRequest, Result, Tensor};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};

use crate::config::{InputFormat, MlflowConfig, OutputDatatype};

/// Deepest nesting of arrays read from a response.
pub const MAX_RANK: usize = 32;
const RAGGED: &str = "the nested arrays are not rectangular";
const BARE: &str = " (a bare NaN or Infinity is not JSON; read such answers with invoke)";

/// The elements of one input, in a JSON-writable form.
enum Elements {
    Int(Vec<i128>),
    Float(Vec<f64>),
    Bool(Vec<bool>),
    Text(Vec<String>),
}

impl Elements {
    fn of(t: &Tensor) -> Result<Elements> {
        Ok(match t.datatype() {
            DataType::Bool => Elements::Bool(t.to_vec()?),
            DataType::Int64 => ints(t.to_vec::<i64>()?),
            DataType::Uint64 => ints(t.to_vec::<u64>()?),
            DataType::Fp16 | DataType::Bf16 | DataType::Fp32 => Elements::Float(t.to_f64_lossy()?),
            DataType::Fp64 => Elements::Float(t.to_vec()?),
            DataType::Bytes => Elements::Text(t.to_strings()?),
            // Integers of 32 bits or fewer are exact in f64.
            _ => ints(t.to_f64_lossy()?.into_iter().map(|v| v as i64).collect()),
        })
    }

    /// Element `i` as JSON, or as the bare words the server reads for NaN and infinities.
    fn write(&self, i: usize, out: &mut String) {
        let _ = match self {
            Elements::Int(v) => write!(out, "{}", v[i]),
            Elements::Bool(v) => write!(out, "{}", v[i]),
            Elements::Float(v) if v[i].is_infinite() => {
                write!(out, "{}Infinity", if v[i] < 0.0 { "-" } else { "" })
            }
            Elements::Float(v) => write!(out, "{:?}", v[i]),
            Elements::Text(v) => write!(out, "{}", serde_json::Value::from(v[i].as_str())),
        };
    }
}

fn ints<T: Into<i128>>(values: Vec<T>) -> Elements {
    Elements::Int(values.into_iter().map(Into::into).collect())
}

/// Writes the elements from `start` as arrays nested by `shape`.
fn nest(out: &mut String, shape: &[usize], elements: &Elements, start: usize) {
    let Some((&first, inner)) = shape.split_first() else {
        return elements.write(start, out);
    };
    let stride: usize = inner.iter().product();
    for i in 0..first {
        out.push(if i == 0 { '[' } else { ',' });
        nest(out, inner, elements, start + i * stride);
    }
    out.push_str(if first == 0 { "[]" } else { "]" });
}

/// The `/invocations` body for `request` in `format`, with
/// `request.parameters` as `"params"`. Errors are `InvalidInput`.
pub fn encode_request(request: &InferRequest, format: InputFormat) -> Result<String> {
    let inputs = &request.inputs;
    let empty = || Error::invalid("the request has no inputs");
    let first = inputs.first().ok_or_else(empty)?;
    let elements: Vec<Elements> = inputs.iter().map(Elements::of).collect::<Result<_>>()?;
    let mut out = format!("{{\"{format}\":");
    match format {
        InputFormat::DataframeSplit => {
            let rows = first.shape().first().copied().unwrap_or(0);
            if inputs
                .iter()
                .any(|t| t.shape() != [rows] && t.shape() != [rows, 1])
            {
                return Err(Error::invalid(
                    "dataframe_split takes inputs of shape [n] or [n, 1]",
                ));
            }
            let names: Vec<&str> = inputs.iter().map(Tensor::name).collect();
            let _ = write!(out, "{{\"columns\":{},\"data\":[", serde_json::json!(names));
            for row in 0..rows {
                out.push_str(if row == 0 { "[" } else { ",[" });
                for (i, e) in elements.iter().enumerate() {
                    out.push_str(if i == 0 { "" } else { "," });
                    e.write(row, &mut out);
                }
                out.push(']');
            }
            out.push_str("]}");
        }
        _ if inputs.len() == 1 => nest(&mut out, first.shape(), &elements[0], 0),
        InputFormat::Instances => return Err(Error::invalid("instances takes one input")),
        InputFormat::Inputs => {
            for (i, (t, e)) in inputs.iter().zip(&elements).enumerate() {
                let key = serde_json::Value::from(t.name());
                let _ = write!(out, "{}{key}:", if i > 0 { "," } else { "{" });
                nest(&mut out, t.shape(), e, 0);
            }
            out.push('}');
        }
    }
    if !request.parameters.is_empty() {
        let _ = write!(out, ",\"params\":{}", serde_json::json!(request.parameters));
    }
    out.push('}');
    Ok(out)
}

/// The output being decoded: the length seen at each depth, the depth of
/// its numbers (the rank), and the numbers (integers until one with a
/// fraction comes).
#[derive(Default)]
struct Column {
    dims: Vec<Option<usize>>,
    rank: Option<usize>,
    ints: Vec<i64>,
    floats: Option<Vec<f64>>,
}

impl Column {
    fn push(&mut self, depth: usize, number: f64, int: Option<i64>) -> Result<(), String> {
        if *self.rank.get_or_insert(depth) != depth {
            return Err(RAGGED.to_owned());
        }
        match (&mut self.floats, int) {
            (None, Some(i)) => self.ints.push(i),
            (Some(floats), _) => floats.push(number),
            (None, None) => {
                let floats = self.ints.drain(..).map(|i| i as f64).chain([number]);
                self.floats = Some(floats.collect());
            }
        }
        Ok(())
    }

    /// An array at `depth` with `len` elements ended.
    fn close(&mut self, depth: usize, len: usize) -> Result<(), String> {
        self.dims.resize(self.dims.len().max(depth + 1), None);
        let same = self.dims[depth].replace(len).is_none_or(|seen| seen == len);
        let empty_ok = len > 0 || *self.rank.get_or_insert(depth + 1) == depth + 1;
        (same && empty_ok).then_some(()).ok_or(RAGGED.to_owned())
    }

    fn tensor(self, name: &str, datatype: OutputDatatype) -> Result<Tensor, String> {
        let dims = self.dims.get(..self.rank.unwrap_or(0)).ok_or(RAGGED)?;
        let shape: Vec<usize> = dims.iter().map(|d| d.unwrap_or(0)).collect();
        let len = self.floats.as_ref().map_or(self.ints.len(), Vec::len);
        if shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) != Some(len) {
            return Err(RAGGED.to_owned());
        }
        let made = match (self.floats, datatype) {
            (None, OutputDatatype::Fp64) => {
                Tensor::new(name, shape, self.ints.iter().map(|&i| i as f64).collect())
            }
            (None, _) => Tensor::new(name, shape, self.ints),
            (Some(_), OutputDatatype::Int64) => return Err("fractions, not INT64".to_owned()),
            (Some(floats), _) => Tensor::new(name, shape, floats),
        };
        made.map_err(|e| e.message().to_owned())
    }
}

/// Visits one value of the column at a depth.
struct Nest<'a>(&'a mut Column, usize);

impl<'de> DeserializeSeed<'de> for Nest<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Nest<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number or nested arrays of numbers")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.0.push(self.1, v as f64, Some(v)).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        let i = i64::try_from(v).map_err(|_| E::custom(format!("{v} is beyond INT64")))?;
        self.visit_i64(i)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.0.push(self.1, v, None).map_err(E::custom)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Nest(column, depth) = self;
        if depth >= MAX_RANK || column.rank.is_some_and(|r| r <= depth) {
            let why = format!("{RAGGED}, or deeper than {MAX_RANK}");
            return Err(de::Error::custom(why));
        }
        let mut len = 0;
        while let Some(()) = seq.next_element_seed(Nest(column, depth + 1))? {
            len += 1;
        }
        column.close(depth, len).map_err(de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for Column {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut column = Column::default();
        Nest(&mut column, 0).deserialize(deserializer)?;
        Ok(column)
    }
}

/// The answer body; other keys are ignored.
#[derive(Deserialize)]
struct Body {
    predictions: Column,
}

/// The output of a `{"predictions": …}` body (see the module docs); a body
/// that is not one is an [`ErrorKind::Protocol`] error.
pub fn decode_response(body: &[u8], config: &MlflowConfig) -> Result<Tensor> {
    let protocol = |why| Error::new(ErrorKind::Protocol, format!("MLflow answer: {why}"));
    let bare = body.windows(3).any(|w| w == b"NaN" || w == b"Inf");
    let parsed = serde_json::from_slice::<Body>(body);
    let hint = |e| protocol(format!("{e}{}", if bare { BARE } else { "" }));
    let column = parsed.map_err(hint)?.predictions;
    let output = column.tensor(&config.output_name, config.output_datatype);
    output.map_err(protocol)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(datatype: OutputDatatype) -> MlflowConfig {
        let target = inferlink_core::ConnectTarget::new("mlflow-serving", "http://127.0.0.1:1")
            .with_plain("output_datatype", datatype.as_str());
        MlflowConfig::from_target(&target).unwrap()
    }

    /// Encodes `input` alone, answers it back as the predictions, decodes.
    fn echo(input: Tensor, datatype: OutputDatatype) -> Result<Tensor> {
        let body = encode_request(&InferRequest::new().with_input(input), InputFormat::Inputs)?;
        let answer = body.replacen("{\"inputs\":", "{\"predictions\":", 1);
        decode_response(answer.as_bytes(), &config(datatype))
    }

    #[test]
    fn nested_arrays_round_trip_every_shape() {
        for shape in [
            vec![],
            vec![0],
            vec![3],
            vec![2, 3],
            vec![1, 2, 3, 2],
            vec![4, 1],
        ] {
            let n: usize = shape.iter().product();
            let ints: Vec<i64> = (0..n as i64).map(|i| i * 7 - 11).collect();
            let out = echo(
                Tensor::new("x", shape.clone(), ints.clone()).unwrap(),
                OutputDatatype::Auto,
            );
            let out = out.unwrap();
            assert_eq!((out.shape(), out.datatype()), (&shape[..], DataType::Int64));
            assert_eq!(out.to_vec::<i64>().unwrap(), ints);
            let floats: Vec<f64> = ints.iter().map(|&i| i as f64 / 8.0 + 0.125).collect();
            let input = Tensor::new("x", shape.clone(), floats.clone()).unwrap();
            let out = echo(input, OutputDatatype::Auto).unwrap();
            match n {
                // No numbers to tell by: `auto` says INT64.
                0 => assert_eq!(out.datatype(), DataType::Int64),
                _ => assert_eq!(out.to_vec::<f64>().unwrap(), floats, "{shape:?}"),
            }
        }
        // Dimensions after an empty one cannot be written in JSON: [2, 0, 4] comes back [2, 0].
        let out = echo(
            Tensor::new("x", vec![2, 0, 4], Vec::<i64>::new()).unwrap(),
            OutputDatatype::Auto,
        );
        assert_eq!(out.unwrap().shape(), [2, 0]);
    }

    #[test]
    fn datatypes_follow_the_numbers_and_the_setting() {
        let ints = || Tensor::new("x", vec![2], vec![1i64, i64::MAX]).unwrap();
        let out = echo(ints(), OutputDatatype::Fp64).unwrap();
        assert_eq!(out.datatype(), DataType::Fp64);
        let out = echo(
            Tensor::new("x", vec![2], vec![1.5f32, 2.0]).unwrap(),
            OutputDatatype::Int64,
        );
        assert_eq!(out.unwrap_err().kind(), ErrorKind::Protocol);
        let out = echo(
            Tensor::new("x", vec![3], vec![250u8, 0, 7]).unwrap(),
            OutputDatatype::Auto,
        );
        assert_eq!(out.unwrap().to_vec::<i64>().unwrap(), [250, 0, 7]);
        let out = echo(
            Tensor::new("x", vec![1], vec![u64::MAX]).unwrap(),
            OutputDatatype::Auto,
        );
        assert!(out.unwrap_err().message().contains("beyond INT64"));
    }

    #[test]
    fn deep_and_ragged_answers_are_refused() {
        let cfg = config(OutputDatatype::Auto);
        let deep = format!(
            "{{\"predictions\":{}{}}}",
            "[".repeat(MAX_RANK + 1),
            "]".repeat(MAX_RANK + 1)
        );
        let e = decode_response(deep.as_bytes(), &cfg).unwrap_err();
        assert!(e.message().contains("deeper than 32"), "{e}");
        let ok = format!(
            "{{\"predictions\":{}1{}}}",
            "[".repeat(MAX_RANK),
            "]".repeat(MAX_RANK)
        );
        assert_eq!(
            decode_response(ok.as_bytes(), &cfg).unwrap().shape(),
            vec![1; MAX_RANK]
        );
        for ragged in [
            "[[1],[2,3]]",
            "[[1],2]",
            "[1,[2]]",
            "[[],[1]]",
            "[[1],[]]",
            "[[[]],[1]]",
        ] {
            let body = format!("{{\"predictions\":{ragged}}}");
            let e = decode_response(body.as_bytes(), &cfg).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Protocol, "{ragged}");
            assert!(e.message().contains("not rectangular"), "{ragged}: {e}");
        }
    }
}
