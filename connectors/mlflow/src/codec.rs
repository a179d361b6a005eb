//! Tensors ⇄ the scoring server's JSON (pure functions).
//!
//! Requests: each tensor becomes nested JSON arrays built from its shape and
//! data (a 0-d tensor a bare value), in the form [`InputFormat`] chooses;
//! non-finite floats are written bare (`NaN`, `Infinity`), as the server
//! reads them. Responses: `{"predictions": …}` where `…` is
//!
//! * a number or nested arrays of numbers: one output named by
//!   `output_name`, its shape from the nesting;
//! * an object of those (a model that returns a dict): one output per key;
//! * a list of records (a model that returns a DataFrame): one output per
//!   column, shape `[rows]`.
//!
//! Decoding is total: nesting deeper than [`MAX_RANK`], ragged arrays,
//! records that miss a column, strings, booleans and nulls are a
//! [`ErrorKind::Protocol`] error; memory grows only with the numbers read.
//! The server writes NaN and infinities bare (not JSON): they are read as
//! `FP64` values, and so is a string `"NaN"`, `"Infinity"` or `"-Infinity"`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use inferlink_core::{DataType, Error, ErrorKind, InferRequest, Result, Tensor};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Unexpected, Visitor};

use crate::config::{InputFormat, MlflowConfig};

/// Deepest nesting of arrays read from a response.
pub const MAX_RANK: usize = 32;
/// The words the server writes for non-finite floats.
const NON_FINITE: [&str; 3] = ["-Infinity", "Infinity", "NaN"];

/// The elements of one input, in a JSON-writable form.
enum Elements {
    Int(Vec<i64>),
    Uint(Vec<u64>),
    Float(Vec<f64>),
    Bool(Vec<bool>),
    Text(Vec<String>),
}

impl Elements {
    fn of(t: &Tensor) -> Result<Elements> {
        Ok(match t.datatype() {
            DataType::Bool => Elements::Bool(t.to_vec()?),
            DataType::Int64 => Elements::Int(t.to_vec()?),
            DataType::Uint64 => Elements::Uint(t.to_vec()?),
            DataType::Fp16 | DataType::Bf16 | DataType::Fp32 | DataType::Fp64 => {
                Elements::Float(t.to_f64_lossy()?)
            }
            DataType::Bytes => Elements::Text(t.to_strings()?),
            // Integers of 32 bits or fewer are exact in f64.
            _ => Elements::Int(t.to_f64_lossy()?.into_iter().map(|v| v as i64).collect()),
        })
    }

    fn write(&self, i: usize, out: &mut String) {
        let _ = match self {
            Elements::Int(v) => write!(out, "{}", v[i]),
            Elements::Uint(v) => write!(out, "{}", v[i]),
            Elements::Bool(v) => write!(out, "{}", v[i]),
            Elements::Float(v) if v[i].is_nan() => write!(out, "NaN"),
            Elements::Float(v) if v[i].is_infinite() => {
                write!(out, "{}Infinity", if v[i] < 0.0 { "-" } else { "" })
            }
            Elements::Float(v) => write!(out, "{:?}", v[i]),
            Elements::Text(v) => write!(out, "{}", json_string(&v[i])),
        };
    }
}

fn json_string(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// Writes the elements from `start` as arrays nested by `shape`.
fn nest(out: &mut String, shape: &[usize], elements: &Elements, start: usize) {
    let Some((&first, inner)) = shape.split_first() else {
        return elements.write(start, out);
    };
    let stride: usize = inner.iter().product();
    out.push('[');
    for i in 0..first {
        if i > 0 {
            out.push(',');
        }
        nest(out, inner, elements, start + i * stride);
    }
    out.push(']');
}

/// The `/invocations` body for `request` in `format`, with
/// `request.parameters` as `"params"`. Errors are `InvalidInput`.
pub fn encode_request(request: &InferRequest, format: InputFormat) -> Result<String> {
    let inputs = &request.inputs;
    if inputs.is_empty() {
        return Err(Error::invalid("the request has no inputs"));
    }
    if let Some(t) = inputs
        .iter()
        .enumerate()
        .find(|(i, t)| inputs[..*i].iter().any(|o| o.name() == t.name()))
    {
        return Err(Error::invalid(format!(
            "input \"{}\" is given twice",
            t.1.name()
        )));
    }
    let elements = inputs
        .iter()
        .map(Elements::of)
        .collect::<Result<Vec<_>>>()?;
    let rows = |what: &str| {
        let n = inputs[0].shape().first().copied().unwrap_or(0);
        let fits = |t: &Tensor| {
            let s = t.shape();
            !s.is_empty() && s[0] == n && (what == "instances" || s.len() == 1 || s == [n, 1])
        };
        match inputs.iter().all(fits) {
            true => Ok(n),
            false => Err(Error::invalid(format!(
                "{what} needs every input as a column of the same length (shape [n] or [n, 1] for dataframe_split, [n, …] for instances)"
            ))),
        }
    };
    let mut out = format!("{{\"{format}\":");
    match format {
        _ if inputs.len() == 1 && format != InputFormat::DataframeSplit => {
            nest(&mut out, inputs[0].shape(), &elements[0], 0)
        }
        InputFormat::Inputs => {
            out.push('{');
            for (i, (t, e)) in inputs.iter().zip(&elements).enumerate() {
                let _ = write!(
                    out,
                    "{}{}:",
                    if i > 0 { "," } else { "" },
                    json_string(t.name())
                );
                nest(&mut out, t.shape(), e, 0);
            }
            out.push('}');
        }
        InputFormat::Instances => {
            out.push('[');
            for row in 0..rows("instances")? {
                out.push_str(if row > 0 { ",{" } else { "{" });
                for (i, (t, e)) in inputs.iter().zip(&elements).enumerate() {
                    let _ = write!(
                        out,
                        "{}{}:",
                        if i > 0 { "," } else { "" },
                        json_string(t.name())
                    );
                    nest(
                        &mut out,
                        &t.shape()[1..],
                        e,
                        row * t.shape()[1..].iter().product::<usize>(),
                    );
                }
                out.push('}');
            }
            out.push(']');
        }
        InputFormat::DataframeSplit => {
            let names: Vec<&str> = inputs.iter().map(Tensor::name).collect();
            let _ = write!(
                out,
                "{{\"columns\":{},\"data\":[",
                serde_json::Value::from(names)
            );
            for row in 0..rows("dataframe_split")? {
                out.push_str(if row > 0 { ",[" } else { "[" });
                for (i, e) in elements.iter().enumerate() {
                    out.push_str(if i > 0 { "," } else { "" });
                    e.write(row, &mut out);
                }
                out.push(']');
            }
            out.push_str("]}");
        }
    }
    if !request.parameters.is_empty() {
        let params = serde_json::to_string(&request.parameters)
            .map_err(|e| Error::invalid(format!("the parameters are not JSON: {e}")))?;
        let _ = write!(out, ",\"params\":{params}");
    }
    out.push('}');
    Ok(out)
}

/// The numbers of one output: integers until a number with a fraction comes.
enum Numbers {
    Int(Vec<i64>),
    Float(Vec<f64>),
}

/// One output being decoded: its name, the length seen at each depth, and
/// the depth of its numbers (the rank).
struct Column {
    name: String,
    dims: Vec<Option<usize>>,
    rank: Option<usize>,
    numbers: Numbers,
}

impl Column {
    fn new(name: String) -> Column {
        Column {
            name,
            dims: Vec::new(),
            rank: None,
            numbers: Numbers::Int(Vec::new()),
        }
    }

    fn leaf(&mut self, depth: usize) -> Result<&mut Numbers, String> {
        match self.rank {
            Some(r) if r != depth => Err(RAGGED.to_owned()),
            _ => {
                self.rank = Some(depth);
                Ok(&mut self.numbers)
            }
        }
    }

    fn open(&mut self, depth: usize) -> Result<(), String> {
        if depth >= MAX_RANK {
            return Err(format!("the arrays are nested deeper than {MAX_RANK}"));
        }
        match self.rank {
            Some(r) if r <= depth => Err(RAGGED.to_owned()),
            _ => Ok(()),
        }
    }

    fn close(&mut self, depth: usize, len: usize) -> Result<(), String> {
        if len == 0 && self.rank.replace(depth + 1).is_some_and(|r| r != depth + 1) {
            return Err(RAGGED.to_owned());
        }
        if self.dims.len() <= depth {
            self.dims.resize(depth + 1, None);
        }
        match self.dims[depth].replace(len) {
            Some(seen) if seen != len => Err(RAGGED.to_owned()),
            _ => Ok(()),
        }
    }

    fn tensor(
        self,
        name: &str,
        rows: Option<usize>,
        forced: Option<DataType>,
    ) -> Result<Tensor, String> {
        let rank = self.rank.unwrap_or(0);
        let dims = self.dims.get(..rank).ok_or(RAGGED)?;
        let shape: Vec<usize> = rows
            .into_iter()
            .chain(dims.iter().map(|d| d.unwrap_or(0)))
            .collect();
        let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let len = match &self.numbers {
            Numbers::Int(v) => v.len(),
            Numbers::Float(v) => v.len(),
        };
        if count != Some(len) {
            return Err(format!(
                "output \"{name}\": {RAGGED} (shape {shape:?}, {len} numbers)"
            ));
        }
        let made = match (self.numbers, forced) {
            (Numbers::Int(v), Some(DataType::Fp64)) => Tensor::new(
                name,
                shape,
                v.into_iter().map(|i| i as f64).collect::<Vec<_>>(),
            ),
            (Numbers::Int(v), _) => Tensor::new(name, shape, v),
            (Numbers::Float(_), Some(DataType::Int64)) => {
                return Err(format!(
                    "output \"{name}\" has numbers with a fraction, but output_datatype is int64"
                ));
            }
            (Numbers::Float(v), _) => Tensor::new(name, shape, v),
        };
        made.map_err(|e| e.message().to_owned())
    }
}

const RAGGED: &str = "the nested arrays are not rectangular";

/// Everything decoded: column 0 is the array answer, the others named outputs.
struct Decoded {
    columns: Vec<Column>,
    index: BTreeMap<String, usize>,
    /// Records seen (a list of objects at the top).
    rows: usize,
    /// The answer is an object of named outputs.
    named: bool,
}

/// Visits one value of column `col` at `depth`.
struct Nest<'a> {
    d: &'a mut Decoded,
    col: usize,
    depth: usize,
}

impl Nest<'_> {
    fn push<E: de::Error>(self, number: f64, int: Option<i64>) -> Result<(), E> {
        if self.col == 0 && self.depth == 1 && self.d.rows > 0 {
            return Err(E::custom("records mixed with numbers"));
        }
        let numbers = self.d.columns[self.col]
            .leaf(self.depth)
            .map_err(E::custom)?;
        match numbers {
            Numbers::Float(v) => v.push(number),
            Numbers::Int(v) => match int {
                Some(i) => v.push(i),
                None => {
                    let mut floats: Vec<f64> = v.iter().map(|&i| i as f64).collect();
                    floats.push(number);
                    *numbers = Numbers::Float(floats);
                }
            },
        }
        Ok(())
    }
}

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
        self.push(v as f64, Some(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        match i64::try_from(v) {
            Ok(i) => self.push(v as f64, Some(i)),
            Err(_) => Err(E::custom(format!("{v} is outside the INT64 range"))),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.push(v, None)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        match NON_FINITE.iter().position(|w| *w == s) {
            Some(i) => self.push([f64::NEG_INFINITY, f64::INFINITY, f64::NAN][i], None),
            None => Err(E::invalid_type(Unexpected::Str(s), &self)),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let records = self.col == 0 && self.depth == 0;
        if self.col == 0 && self.depth == 1 && self.d.rows > 0 {
            return Err(de::Error::custom("records mixed with arrays"));
        }
        self.d.columns[self.col]
            .open(self.depth)
            .map_err(de::Error::custom)?;
        let mut len = 0;
        while seq
            .next_element_seed(Nest {
                d: &mut *self.d,
                col: self.col,
                depth: self.depth + 1,
            })?
            .is_some()
        {
            len += 1;
        }
        if records && self.d.rows > 0 {
            return Ok(());
        }
        self.d.columns[self.col]
            .close(self.depth, len)
            .map_err(de::Error::custom)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let record = match (self.col, self.depth) {
            (0, 0) => false,
            (0, 1) if self.d.columns[0].rank.is_none() => true,
            _ => return Err(de::Error::invalid_type(Unexpected::Map, &self)),
        };
        if record {
            self.d.rows += 1;
        } else {
            self.d.named = true;
        }
        while let Some(key) = map.next_key::<String>()? {
            let next = self.d.columns.len();
            let col = *self.d.index.entry(key.clone()).or_insert(next);
            if col == next {
                self.d.columns.push(Column::new(key));
            }
            map.next_value_seed(Nest {
                d: &mut *self.d,
                col,
                depth: 0,
            })?;
        }
        Ok(())
    }
}

/// Quotes the bare `NaN`, `Infinity` and `-Infinity` the server writes
/// outside strings, so a JSON parser reads them (as strings).
fn quote_non_finite(body: &[u8]) -> Cow<'_, [u8]> {
    if !body.windows(3).any(|w| w == b"NaN" || w == b"Inf") {
        return Cow::Borrowed(body);
    }
    let mut out = Vec::with_capacity(body.len() + body.len() / 4);
    let (mut in_string, mut escaped, mut i) = (false, false, 0);
    while i < body.len() {
        let word = NON_FINITE
            .iter()
            .find(|w| !in_string && body[i..].starts_with(w.as_bytes()));
        if let Some(word) = word {
            out.extend_from_slice(format!("\"{word}\"").as_bytes());
            i += word.len();
            continue;
        }
        let b = body[i];
        if in_string {
            (in_string, escaped) = (escaped || b != b'"', !escaped && b == b'\\');
        } else {
            in_string = b == b'"';
        }
        out.push(b);
        i += 1;
    }
    Cow::Owned(out)
}

/// The outputs of a `{"predictions": …}` body (see the module docs); a body
/// that is not one is an [`ErrorKind::Protocol`] error.
pub fn decode_response(body: &[u8], config: &MlflowConfig) -> Result<Vec<Tensor>> {
    let protocol = |why: String| {
        Error::new(
            ErrorKind::Protocol,
            format!("the MLflow answer is not usable: {why}"),
        )
    };
    let mut d = Decoded {
        columns: vec![Column::new(String::new())],
        index: BTreeMap::new(),
        rows: 0,
        named: false,
    };
    let body = quote_non_finite(body);
    let mut json = serde_json::Deserializer::from_slice(&body);
    let mut found = false;
    json.deserialize_map(Body {
        d: &mut d,
        found: &mut found,
    })
    .and_then(|()| json.end())
    .map_err(|e| protocol(e.to_string()))?;
    if !found {
        return Err(protocol("the body has no \"predictions\"".to_owned()));
    }
    let forced = config.output_datatype.forced();
    let mut columns = d.columns.into_iter();
    let main = columns.next().expect("column 0 exists");
    if !d.named && d.rows == 0 {
        return Ok(vec![
            main.tensor(&config.output_name, None, forced)
                .map_err(protocol)?,
        ]);
    }
    let rows = (d.rows > 0).then_some(d.rows);
    columns
        .map(|c| {
            let name = c.name.clone();
            c.tensor(&name, rows, forced).map_err(protocol)
        })
        .collect()
}

/// Visits the body object, decoding `predictions` and skipping other keys.
struct Body<'a> {
    d: &'a mut Decoded,
    found: &'a mut bool,
}

impl<'de> Visitor<'de> for Body<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with \"predictions\"")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key != "predictions" {
                map.next_value::<de::IgnoredAny>()?;
            } else if std::mem::replace(self.found, true) {
                return Err(de::Error::duplicate_field("predictions"));
            } else {
                map.next_value_seed(Nest {
                    d: &mut *self.d,
                    col: 0,
                    depth: 0,
                })?;
            }
        }
        Ok(())
    }
}
