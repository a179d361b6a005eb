//! Nested JSON arrays read as a tensor: the shape from the nesting, the
//! leaves in row-major order, ragged arrays refused with the place.
//!
//! The REST codecs that take tensors as nested JSON lists (KServe V1
//! `predictions`, Seldon's `ndarray`, SageMaker and TorchServe answers)
//! read them with [`nested_leaves`] or [`nested_rows`] and then decide the
//! datatype from the leaves themselves.

use std::fmt::Write as _;

use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};

/// The deepest nesting read as a shape; deeper is a Protocol error.
pub const MAX_RANK: usize = 64;

/// The most leaves reserved before they are seen: the shape is read off the
/// first element at each depth only, so its product may overflow or exceed
/// what the body holds (the answer is then ragged); more grow the vector as
/// they come.
const MAX_RESERVED_LEAVES: usize = 1 << 16;

/// What may stand where the first row has a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaf {
    /// Only a JSON scalar (null, boolean, number, string): an array or an
    /// object there is a ragged-array error.
    Scalar,
    /// Any value but an array: objects are leaves too, for the caller to
    /// read (as text, say).
    NotArray,
}

impl Leaf {
    fn admits(self, value: &Value) -> bool {
        match value {
            Value::Array(_) => false,
            Value::Object(_) => self == Leaf::NotArray,
            _ => true,
        }
    }
}

/// The shape and row-major leaves of `value` read as a tensor. The shape is
/// the array lengths along the first elements; every other element must
/// nest the same way; `leaf` says what may stand where the first row has a
/// value. A value that is not an array is a rank-0 tensor of itself.
///
/// Errors: [`ErrorKind::Protocol`], its path the place where the arrays
/// stop being rectangular (`path[1][0]`), for ragged arrays, a value `leaf`
/// does not admit, or nesting deeper than [`MAX_RANK`].
///
/// ```
/// use inferlink_core::kit::json::{Leaf, nested_leaves};
/// use serde_json::json;
///
/// let v = json!([[1, 2, 3], [4, 5, 6]]);
/// let (shape, leaves) = nested_leaves(&v, "predictions", Leaf::Scalar).unwrap();
/// assert_eq!(shape, [2, 3]);
/// assert_eq!(leaves[4], &json!(5));
///
/// let e = nested_leaves(&json!([[1, 2], [3]]), "predictions", Leaf::Scalar).unwrap_err();
/// assert_eq!(e.path(), Some("predictions[1]"));
/// ```
pub fn nested_leaves<'a>(
    value: &'a Value,
    path: &str,
    leaf: Leaf,
) -> Result<(Vec<usize>, Vec<&'a Value>)> {
    match value {
        Value::Array(items) => nested_rows(items.iter(), items.len(), path, leaf),
        v if leaf.admits(v) => Ok((Vec::new(), vec![v])),
        _ => Err(ragged(
            path,
            format!("{path} is an object where a value or an array was expected"),
        )),
    }
}

/// [`nested_leaves`] of `n` rows handed over one by one (a column spread
/// over row objects, say): the shape is `[n, …]` with the first row's
/// nesting after `n`; row `i` is named `path[i]` in errors.
pub fn nested_rows<'a>(
    rows: impl Iterator<Item = &'a Value> + Clone,
    n: usize,
    path: &str,
    leaf: Leaf,
) -> Result<(Vec<usize>, Vec<&'a Value>)> {
    let mut shape = vec![n];
    if let Some(first) = rows.clone().next() {
        let mut at = first;
        while let Value::Array(items) = at {
            shape.push(items.len());
            if shape.len() > MAX_RANK {
                return Err(ragged(
                    path,
                    format!("{path} nests deeper than {MAX_RANK} levels"),
                ));
            }
            match items.first() {
                Some(item) => at = item,
                None => break,
            }
        }
    }
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .unwrap_or(usize::MAX);
    let mut leaves = Vec::with_capacity(count.min(MAX_RESERVED_LEAVES));
    let mut at = path.to_owned();
    for (i, row) in rows.enumerate() {
        let len = at.len();
        let _ = write!(at, "[{i}]");
        gather(row, &shape[1..], leaf, &mut at, &mut leaves)?;
        at.truncate(len);
    }
    Ok((shape, leaves))
}

/// Pushes the leaves of `value`, which must nest as `dims` says.
fn gather<'a>(
    value: &'a Value,
    dims: &[usize],
    leaf: Leaf,
    path: &mut String,
    out: &mut Vec<&'a Value>,
) -> Result<()> {
    match (dims.split_first(), value) {
        (None, v) if leaf.admits(v) => {
            out.push(v);
            Ok(())
        }
        (None, _) => {
            let what = match leaf {
                Leaf::Scalar => "an array or object",
                Leaf::NotArray => "an array",
            };
            Err(ragged(
                path,
                format!("{path} is {what} where the first row has a value (ragged arrays)"),
            ))
        }
        (Some((&n, rest)), Value::Array(items)) => {
            if items.len() != n {
                return Err(ragged(
                    path,
                    format!(
                        "{path} has {} elements where the first row has {n} (ragged arrays)",
                        items.len()
                    ),
                ));
            }
            let len = path.len();
            for (i, item) in items.iter().enumerate() {
                let _ = write!(path, "[{i}]");
                gather(item, rest, leaf, path, out)?;
                path.truncate(len);
            }
            Ok(())
        }
        (Some(_), _) => Err(ragged(
            path,
            format!("{path} is a value where the first row has an array (ragged arrays)"),
        )),
    }
}

fn ragged(path: &str, message: String) -> Error {
    Error::new(ErrorKind::Protocol, message).with_path(path.to_owned())
}

/// Decodes `body` as JSON of type `T`; a body that is not the expected JSON
/// is an [`ErrorKind::Protocol`] error saying `what` it was, with the path
/// of the first mismatch (e.g. `output.message.content[0]`) as its path.
pub fn decode<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let error = Error::new(
            ErrorKind::Protocol,
            format!("{what} is not the expected JSON: {}", e.into_inner()),
        );
        if path == "." || path.is_empty() {
            error
        } else {
            error.with_path(path)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rectangular_arrays_give_their_shape_and_row_major_leaves() {
        let v = json!([[[1], [2]], [[3], [4]], [[5], [6]]]);
        let (shape, leaves) = nested_leaves(&v, "$", Leaf::Scalar).unwrap();
        assert_eq!(shape, [3, 2, 1]);
        let numbers: Vec<i64> = leaves.iter().filter_map(|v| v.as_i64()).collect();
        assert_eq!(numbers, [1, 2, 3, 4, 5, 6]);
        let text = json!("text");
        let (shape, leaves) = nested_leaves(&text, "$", Leaf::Scalar).unwrap();
        assert!(shape.is_empty());
        assert_eq!(leaves, [&text]);
        let empty_rows = json!([[], []]);
        let (shape, leaves) = nested_leaves(&empty_rows, "$", Leaf::Scalar).unwrap();
        assert_eq!(shape, [2, 0]);
        assert!(leaves.is_empty());
    }

    #[test]
    fn ragged_arrays_are_protocol_errors_naming_the_place() {
        for (v, path, words) in [
            (json!([[1, 2], [3]]), "$[1]", "has 1 elements"),
            (json!([[1, 2], 3]), "$[1]", "is a value where"),
            (json!([1, [2]]), "$[1]", "is an array or object"),
            (json!([1, {"a": 2}]), "$[1]", "is an array or object"),
            (json!([[[1]], [[1, 2]]]), "$[1][0]", "has 2 elements"),
            (json!({"a": 1}), "$", "is an object"),
        ] {
            let e = nested_leaves(&v, "$", Leaf::Scalar).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Protocol, "{v}");
            assert_eq!(e.path(), Some(path), "{v}");
            assert!(e.message().contains(words), "{v}: {e}");
        }
    }

    #[test]
    fn objects_are_leaves_when_the_caller_reads_them() {
        let v = json!([{"a": 1}, {"b": [2]}]);
        let (shape, leaves) = nested_leaves(&v, "$", Leaf::NotArray).unwrap();
        assert_eq!(shape, [2]);
        assert_eq!(leaves[1], &json!({"b": [2]}));
        let one = json!({"a": 1});
        assert_eq!(nested_leaves(&one, "$", Leaf::NotArray).unwrap().1, [&one]);
        let e = nested_leaves(&json!([1, [2]]), "$", Leaf::NotArray).unwrap_err();
        assert_eq!(e.path(), Some("$[1]"));
        assert!(e.message().contains("is an array where"), "{e}");
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_refused() {
        let mut v = json!(1);
        for _ in 0..MAX_RANK {
            v = json!([v]);
        }
        assert_eq!(
            nested_leaves(&v, "$", Leaf::Scalar).unwrap().0.len(),
            MAX_RANK
        );
        let e = nested_leaves(&json!([v]), "$", Leaf::NotArray).unwrap_err();
        assert!(e.message().contains("deeper than 64"), "{e}");
    }

    #[test]
    fn rows_handed_over_one_by_one_read_as_one_array() {
        let rows = [json!({"x": [1, 2]}), json!({"x": [3, 4]})];
        let (shape, leaves) =
            nested_rows(rows.iter().map(|r| &r["x"]), 2, "col", Leaf::Scalar).unwrap();
        assert_eq!(shape, [2, 2]);
        assert_eq!(leaves.len(), 4);
        let rows = [json!([1, 2]), json!([3])];
        let e = nested_rows(rows.iter(), 2, "col", Leaf::Scalar).unwrap_err();
        assert_eq!(e.path(), Some("col[1]"));
    }
}
