//! Tensors as nested JSON arrays (the `instances` / `predictions` rows of
//! KServe V1, TF Serving's row format and most "JSON in, JSON out" model APIs).

use inferlink_core::{DataType, Error, ErrorKind, Result, Tensor};
use serde_json::Value;

/// Deepest nesting read from an answer.
const MAX_RANK: usize = 32;

/// The tensor as nested arrays following its shape: numbers (integers for
/// integer and boolean datatypes), or texts for `BYTES`.
pub fn to_rows(tensor: &Tensor) -> Result<Value> {
    let mut elements = elements(tensor)?.into_iter();
    Ok(nest(tensor.shape(), &mut elements))
}

/// The tensor's elements as one flat array in row-major order (the `data`
/// of an Open Inference Protocol tensor), typed as in [`to_rows`].
pub fn to_flat(tensor: &Tensor) -> Result<Value> {
    elements(tensor).map(Value::Array)
}

/// The elements as JSON values, in row-major order.
fn elements(tensor: &Tensor) -> Result<Vec<Value>> {
    let integral = !matches!(
        tensor.datatype(),
        DataType::Fp16 | DataType::Bf16 | DataType::Fp32 | DataType::Fp64 | DataType::Bytes
    );
    let flat: Vec<Value> = if tensor.datatype() == DataType::Bytes {
        tensor
            .to_strings()?
            .into_iter()
            .map(Value::String)
            .collect()
    } else {
        let numbers = tensor.to_f64_lossy()?;
        if integral {
            numbers.into_iter().map(|x| Value::from(x as i64)).collect()
        } else if let Some(bad) = numbers.iter().position(|x| !x.is_finite()) {
            let why = format!("element {bad} is not finite; JSON has no NaN or infinity");
            return Err(Error::invalid_at(tensor.name().to_owned(), why));
        } else {
            numbers.into_iter().map(Value::from).collect()
        }
    };
    Ok(flat)
}

/// Builds the nested array of `shape` from the elements in row-major order.
fn nest(shape: &[usize], elements: &mut impl Iterator<Item = Value>) -> Value {
    match shape.split_first() {
        None => elements.next().unwrap_or(Value::Null),
        Some((&length, inner)) => {
            Value::Array((0..length).map(|_| nest(inner, elements)).collect())
        }
    }
}

/// A tensor named `name` from a nested array of numbers (`FP64`) or of texts
/// (`BYTES`); a scalar gives shape `[]`. Ragged rows, mixed element types,
/// nesting deeper than 32 or other values are `Protocol` errors.
pub fn from_rows(name: &str, value: &Value) -> Result<Tensor> {
    let bad = |why: String| Error::new(ErrorKind::Protocol, format!("{name}: {why}"));
    let mut shape = Vec::new();
    let mut probe = value;
    while let Value::Array(items) = probe {
        if shape.len() == MAX_RANK {
            return Err(bad(format!("nested deeper than {MAX_RANK}")));
        }
        shape.push(items.len());
        match items.first() {
            Some(first) => probe = first,
            None => break,
        }
    }
    let texts = probe.is_string();
    let (mut numbers, mut strings) = (Vec::new(), Vec::new());
    let mut stack = vec![(value, 0usize)];
    while let Some((node, depth)) = stack.pop() {
        match (node, shape.get(depth)) {
            (Value::Array(items), Some(&length)) if items.len() == length => {
                stack.extend(items.iter().rev().map(|item| (item, depth + 1)));
            }
            (Value::Array(items), _) => {
                return Err(bad(format!(
                    "ragged rows: {} elements at depth {depth}",
                    items.len()
                )));
            }
            (Value::Number(n), None) if !texts => numbers.push(n.as_f64().unwrap_or(f64::NAN)),
            (Value::String(s), None) if texts => strings.push(s.clone()),
            (other, _) => {
                return Err(bad(format!(
                    "{} in a tensor of {}",
                    inferlink_core::kit::json_kind(other),
                    if texts { "texts" } else { "numbers" }
                )));
            }
        }
    }
    if texts {
        Tensor::from_strings(name, shape, &strings)
    } else {
        Tensor::new(name, shape, numbers)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn rows_round_trip() {
        let t = Tensor::new("x", vec![2, 3], vec![1.5f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let rows = to_rows(&t).unwrap();
        assert_eq!(rows, json!([[1.5, 2.0, 3.0], [4.0, 5.0, 6.0]]));
        let back = from_rows("p", &rows).unwrap();
        assert_eq!(back.shape(), &[2, 3]);
        assert_eq!(
            back.to_f64_lossy().unwrap(),
            vec![1.5, 2.0, 3.0, 4.0, 5.0, 6.0]
        );
        assert_eq!(to_flat(&t).unwrap(), json!([1.5, 2.0, 3.0, 4.0, 5.0, 6.0]));
        let ints = Tensor::new("i", vec![2], vec![7i64, -1]).unwrap();
        assert_eq!(to_rows(&ints).unwrap(), json!([7, -1]));
        let words = from_rows("w", &json!([["a"], ["b"]])).unwrap();
        assert_eq!(words.to_strings().unwrap(), vec!["a", "b"]);
        assert_eq!(from_rows("s", &json!(3)).unwrap().shape(), &[] as &[usize]);
    }

    #[test]
    fn hostile_rows_are_protocol_errors() {
        let mut deep = json!(1);
        for _ in 0..40 {
            deep = json!([deep]);
        }
        for bad in [
            json!([[1, 2], [3]]),
            json!([1, "a"]),
            json!([[1], 2]),
            json!({"a": 1}),
            json!([null]),
            deep,
        ] {
            let e = from_rows("p", &bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Protocol, "{bad}: {e}");
        }
    }
}
