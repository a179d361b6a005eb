//! The common tensor model every inference connector speaks.
//!
//! A [`Tensor`] is a named, row-major (C order) array with one of the Open
//! Inference Protocol's [`DataType`]s. Its elements are held either as typed
//! values ([`TensorData::Fp32`] holds a `Vec<f32>`, …) or as the raw
//! little-endian bytes of the wire layout ([`TensorData::Raw`]), shared
//! without copies through [`bytes::Bytes`]: a binary HTTP body or a gRPC
//! `raw_output_contents` entry becomes a tensor without copying its payload.
//!
//! Every constructor checks that the data fits the shape: a tensor of shape
//! `[2, 3]` holds exactly 6 elements, a raw FP32 tensor of that shape exactly
//! 24 bytes, a raw BYTES tensor exactly 6 length-prefixed elements. Reading a
//! tensor as another element type than its datatype is an error, never a
//! reinterpretation.
//!
//! ```
//! use inferlink_core::tensor::{DataType, Tensor};
//!
//! let t = Tensor::new("input-0", vec![2, 2], vec![1.0f32, 2.0, 3.0, 4.0])?;
//! assert_eq!(t.datatype(), DataType::Fp32);
//! let raw = t.to_raw()?; // 16 little-endian bytes
//! let back = Tensor::from_raw("input-0", DataType::Fp32, vec![2, 2], raw)?;
//! assert_eq!(back.to_vec::<f32>()?, vec![1.0, 2.0, 3.0, 4.0]);
//! assert!(Tensor::new("bad", vec![3], vec![1.0f32]).is_err());
//! # Ok::<(), inferlink_core::Error>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use bytes::{BufMut, BytesMut};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

mod convert;

/// Byte strings shared without copies (re-exported from the `bytes` crate,
/// so hosts need not depend on a matching version).
pub use bytes::Bytes;
/// Half-precision floats for `FP16` and `BF16` tensors (re-exported from the
/// `half` crate).
pub use half::{bf16, f16};

/// The element type of a tensor, as named by the Open Inference Protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataType {
    /// `BOOL`: one byte, 0 or 1.
    Bool,
    /// `UINT8`.
    Uint8,
    /// `UINT16`.
    Uint16,
    /// `UINT32`.
    Uint32,
    /// `UINT64`.
    Uint64,
    /// `INT8`.
    Int8,
    /// `INT16`.
    Int16,
    /// `INT32`.
    Int32,
    /// `INT64`.
    Int64,
    /// `FP16`: IEEE 754 half precision.
    Fp16,
    /// `BF16`: bfloat16.
    Bf16,
    /// `FP32`.
    Fp32,
    /// `FP64`.
    Fp64,
    /// `BYTES`: variable-length byte strings (each shorter than 2^32 bytes).
    Bytes,
}

impl DataType {
    /// Every datatype, in the protocol's table order.
    pub const ALL: [DataType; 14] = [
        DataType::Bool,
        DataType::Uint8,
        DataType::Uint16,
        DataType::Uint32,
        DataType::Uint64,
        DataType::Int8,
        DataType::Int16,
        DataType::Int32,
        DataType::Int64,
        DataType::Fp16,
        DataType::Bf16,
        DataType::Fp32,
        DataType::Fp64,
        DataType::Bytes,
    ];

    /// The protocol's name: `"FP32"`, `"BYTES"`, …
    pub fn as_str(self) -> &'static str {
        match self {
            DataType::Bool => "BOOL",
            DataType::Uint8 => "UINT8",
            DataType::Uint16 => "UINT16",
            DataType::Uint32 => "UINT32",
            DataType::Uint64 => "UINT64",
            DataType::Int8 => "INT8",
            DataType::Int16 => "INT16",
            DataType::Int32 => "INT32",
            DataType::Int64 => "INT64",
            DataType::Fp16 => "FP16",
            DataType::Bf16 => "BF16",
            DataType::Fp32 => "FP32",
            DataType::Fp64 => "FP64",
            DataType::Bytes => "BYTES",
        }
    }

    /// Bytes per element in the raw layout; `None` for `BYTES` (variable length).
    pub fn element_size(self) -> Option<usize> {
        match self {
            DataType::Bool | DataType::Uint8 | DataType::Int8 => Some(1),
            DataType::Uint16 | DataType::Int16 | DataType::Fp16 | DataType::Bf16 => Some(2),
            DataType::Uint32 | DataType::Int32 | DataType::Fp32 => Some(4),
            DataType::Uint64 | DataType::Int64 | DataType::Fp64 => Some(8),
            DataType::Bytes => None,
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DataType {
    type Err = Error;

    /// Parses a protocol name (case-sensitive, as the protocol says).
    fn from_str(s: &str) -> Result<DataType> {
        DataType::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = DataType::ALL.iter().map(|d| d.as_str()).collect();
                Error::invalid(format!(
                    "unknown tensor datatype \"{}\"; expected one of {}",
                    escape(s),
                    known.join(", ")
                ))
            })
    }
}

impl Serialize for DataType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DataType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse()
            .map_err(|e: Error| serde::de::Error::custom(e.message()))
    }
}

/// One request or response parameter value (`$parameters` in the protocol).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Parameter {
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer too large for `i64`.
    Uint(u64),
    /// A floating-point number.
    Double(f64),
    /// A string.
    String(String),
}

impl From<bool> for Parameter {
    fn from(v: bool) -> Self {
        Parameter::Bool(v)
    }
}
impl From<i64> for Parameter {
    fn from(v: i64) -> Self {
        Parameter::Int(v)
    }
}
impl From<f64> for Parameter {
    fn from(v: f64) -> Self {
        Parameter::Double(v)
    }
}
impl From<&str> for Parameter {
    fn from(v: &str) -> Self {
        Parameter::String(v.to_owned())
    }
}
impl From<String> for Parameter {
    fn from(v: String) -> Self {
        Parameter::String(v)
    }
}

/// Named parameters of a request, response or tensor, sorted by name.
pub type Parameters = BTreeMap<String, Parameter>;

/// A tensor's elements: typed values, or raw little-endian wire bytes.
///
/// The typed variant must match the tensor's [`DataType`]; [`Tensor`]'s
/// constructors enforce it.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub enum TensorData {
    /// `BOOL` values.
    Bool(Vec<bool>),
    /// `UINT8` values.
    Uint8(Vec<u8>),
    /// `UINT16` values.
    Uint16(Vec<u16>),
    /// `UINT32` values.
    Uint32(Vec<u32>),
    /// `UINT64` values.
    Uint64(Vec<u64>),
    /// `INT8` values.
    Int8(Vec<i8>),
    /// `INT16` values.
    Int16(Vec<i16>),
    /// `INT32` values.
    Int32(Vec<i32>),
    /// `INT64` values.
    Int64(Vec<i64>),
    /// `FP16` values.
    Fp16(Vec<f16>),
    /// `BF16` values.
    Bf16(Vec<bf16>),
    /// `FP32` values.
    Fp32(Vec<f32>),
    /// `FP64` values.
    Fp64(Vec<f64>),
    /// `BYTES` elements.
    Bytes(Vec<Bytes>),
    /// The raw wire layout: little-endian elements back to back, or for
    /// `BYTES` each element as a 4-byte little-endian length and its bytes.
    Raw(Bytes),
}

impl TensorData {
    /// The datatype of a typed variant; `None` for [`TensorData::Raw`].
    pub fn datatype(&self) -> Option<DataType> {
        Some(match self {
            TensorData::Bool(_) => DataType::Bool,
            TensorData::Uint8(_) => DataType::Uint8,
            TensorData::Uint16(_) => DataType::Uint16,
            TensorData::Uint32(_) => DataType::Uint32,
            TensorData::Uint64(_) => DataType::Uint64,
            TensorData::Int8(_) => DataType::Int8,
            TensorData::Int16(_) => DataType::Int16,
            TensorData::Int32(_) => DataType::Int32,
            TensorData::Int64(_) => DataType::Int64,
            TensorData::Fp16(_) => DataType::Fp16,
            TensorData::Bf16(_) => DataType::Bf16,
            TensorData::Fp32(_) => DataType::Fp32,
            TensorData::Fp64(_) => DataType::Fp64,
            TensorData::Bytes(_) => DataType::Bytes,
            TensorData::Raw(_) => return None,
        })
    }

    /// Number of elements of a typed variant; `None` for [`TensorData::Raw`].
    fn typed_len(&self) -> Option<usize> {
        Some(match self {
            TensorData::Bool(v) => v.len(),
            TensorData::Uint8(v) => v.len(),
            TensorData::Uint16(v) => v.len(),
            TensorData::Uint32(v) => v.len(),
            TensorData::Uint64(v) => v.len(),
            TensorData::Int8(v) => v.len(),
            TensorData::Int16(v) => v.len(),
            TensorData::Int32(v) => v.len(),
            TensorData::Int64(v) => v.len(),
            TensorData::Fp16(v) => v.len(),
            TensorData::Bf16(v) => v.len(),
            TensorData::Fp32(v) => v.len(),
            TensorData::Fp64(v) => v.len(),
            TensorData::Bytes(v) => v.len(),
            TensorData::Raw(_) => return None,
        })
    }
}

impl fmt::Debug for TensorData {
    /// Shows the variant and size, never the (possibly huge) contents.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self, self.datatype(), self.typed_len()) {
            (TensorData::Raw(b), _, _) => write!(f, "Raw({} bytes)", b.len()),
            (_, Some(d), Some(n)) => write!(f, "{d}({n} elements)"),
            _ => f.write_str("TensorData"),
        }
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A Rust type that is the element type of one fixed-size [`DataType`].
///
/// Implemented for `bool`, `u8`…`u64`, `i8`…`i64`, [`f16`](struct@f16), [`bf16`](struct@bf16), `f32`
/// and `f64`; `BYTES` elements are [`Bytes`] and use the `*_bytes` methods.
pub trait Element: Copy + Send + Sync + PartialEq + fmt::Debug + 'static + sealed::Sealed {
    /// The datatype this type represents.
    const DATATYPE: DataType;
    /// Size of one element in the raw layout.
    const SIZE: usize;
    /// Appends the little-endian encoding of `self`.
    fn put_le(self, out: &mut BytesMut);
    /// Decodes one element from exactly [`Element::SIZE`] little-endian bytes.
    /// `BOOL` accepts any non-zero byte as `true`.
    fn from_le(bytes: &[u8]) -> Self;
    /// Wraps values into the matching [`TensorData`] variant.
    fn wrap(values: Vec<Self>) -> TensorData;
    /// The values, when `data` is the matching typed variant.
    fn slice(data: &TensorData) -> Option<&[Self]>;
}

macro_rules! numeric_element {
    ($t:ty, $variant:ident, $dt:ident) => {
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const DATATYPE: DataType = DataType::$dt;
            const SIZE: usize = std::mem::size_of::<$t>();
            fn put_le(self, out: &mut BytesMut) {
                out.put_slice(&self.to_le_bytes());
            }
            fn from_le(bytes: &[u8]) -> Self {
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice(bytes);
                <$t>::from_le_bytes(a)
            }
            fn wrap(values: Vec<Self>) -> TensorData {
                TensorData::$variant(values)
            }
            fn slice(data: &TensorData) -> Option<&[Self]> {
                match data {
                    TensorData::$variant(v) => Some(v),
                    _ => None,
                }
            }
        }
    };
}

numeric_element!(u8, Uint8, Uint8);
numeric_element!(u16, Uint16, Uint16);
numeric_element!(u32, Uint32, Uint32);
numeric_element!(u64, Uint64, Uint64);
numeric_element!(i8, Int8, Int8);
numeric_element!(i16, Int16, Int16);
numeric_element!(i32, Int32, Int32);
numeric_element!(i64, Int64, Int64);
numeric_element!(f16, Fp16, Fp16);
numeric_element!(bf16, Bf16, Bf16);
numeric_element!(f32, Fp32, Fp32);
numeric_element!(f64, Fp64, Fp64);

impl sealed::Sealed for bool {}
impl Element for bool {
    const DATATYPE: DataType = DataType::Bool;
    const SIZE: usize = 1;
    fn put_le(self, out: &mut BytesMut) {
        out.put_u8(u8::from(self));
    }
    fn from_le(bytes: &[u8]) -> Self {
        bytes[0] != 0
    }
    fn wrap(values: Vec<Self>) -> TensorData {
        TensorData::Bool(values)
    }
    fn slice(data: &TensorData) -> Option<&[Self]> {
        match data {
            TensorData::Bool(v) => Some(v),
            _ => None,
        }
    }
}

/// A named tensor: datatype, row-major shape, elements and parameters.
///
/// Constructed only through checked constructors, so its data always fits
/// its shape and datatype. Cloning a raw tensor shares its bytes.
#[derive(Clone, PartialEq)]
pub struct Tensor {
    name: String,
    datatype: DataType,
    shape: Vec<usize>,
    data: TensorData,
    parameters: Parameters,
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tensor")
            .field("name", &self.name)
            .field("datatype", &self.datatype)
            .field("shape", &self.shape)
            .field("data", &self.data)
            .field("parameters", &self.parameters)
            .finish()
    }
}

impl Tensor {
    /// A tensor of typed values; `values.len()` must equal the shape's element count.
    pub fn new<T: Element>(
        name: impl Into<String>,
        shape: Vec<usize>,
        values: Vec<T>,
    ) -> Result<Tensor> {
        Tensor::from_data(name, T::DATATYPE, shape, T::wrap(values))
    }

    /// A `BYTES` tensor; each element is one byte string (shorter than 2^32 bytes).
    pub fn from_byte_elements<B: Into<Bytes>>(
        name: impl Into<String>,
        shape: Vec<usize>,
        elements: impl IntoIterator<Item = B>,
    ) -> Result<Tensor> {
        let elements = elements.into_iter().map(Into::into).collect();
        Tensor::from_data(name, DataType::Bytes, shape, TensorData::Bytes(elements))
    }

    /// A tensor over raw little-endian wire bytes, shared without copying.
    ///
    /// For fixed-size datatypes `raw.len()` must be the element count times
    /// the element size; for `BYTES` the buffer must hold exactly the
    /// element count of length-prefixed elements.
    pub fn from_raw(
        name: impl Into<String>,
        datatype: DataType,
        shape: Vec<usize>,
        raw: Bytes,
    ) -> Result<Tensor> {
        Tensor::from_data(name, datatype, shape, TensorData::Raw(raw))
    }

    /// A tensor from any [`TensorData`], checked against `datatype` and `shape`.
    pub fn from_data(
        name: impl Into<String>,
        datatype: DataType,
        shape: Vec<usize>,
        data: TensorData,
    ) -> Result<Tensor> {
        let name = name.into();
        let count = element_count(&name, &shape)?;
        match (&data, data.datatype(), data.typed_len()) {
            (TensorData::Raw(raw), _, _) => check_raw(&name, datatype, count, raw)?,
            (_, Some(have), Some(len)) => {
                if have != datatype {
                    return Err(tensor_error(
                        &name,
                        format!("holds {have} values but is declared {datatype}"),
                    ));
                }
                if len != count {
                    return Err(tensor_error(
                        &name,
                        format!(
                            "shape {} needs {count} elements, got {len}",
                            shape_string(&shape)
                        ),
                    ));
                }
                if let TensorData::Bytes(elements) = &data
                    && let Some(i) = elements
                        .iter()
                        .position(|e| u32::try_from(e.len()).is_err())
                {
                    return Err(tensor_error(
                        &name,
                        format!("BYTES element {i} is 4 GiB or longer"),
                    ));
                }
            }
            _ => return Err(Error::new(ErrorKind::Internal, "unclassified tensor data")),
        }
        Ok(Tensor {
            name,
            datatype,
            shape,
            data,
            parameters: Parameters::new(),
        })
    }

    /// Adds or replaces a parameter.
    pub fn with_parameter(mut self, key: impl Into<String>, value: impl Into<Parameter>) -> Self {
        self.parameters.insert(key.into(), value.into());
        self
    }

    /// Replaces all parameters.
    pub fn with_parameters(mut self, parameters: Parameters) -> Self {
        self.parameters = parameters;
        self
    }

    /// The tensor's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The element type.
    pub fn datatype(&self) -> DataType {
        self.datatype
    }

    /// The row-major shape (batch dimension included).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of elements (the product of the shape; 1 for a scalar shape `[]`).
    pub fn element_count(&self) -> usize {
        // Checked at construction.
        self.shape.iter().product()
    }

    /// The elements as held.
    pub fn data(&self) -> &TensorData {
        &self.data
    }

    /// The tensor's parameters.
    pub fn parameters(&self) -> &Parameters {
        &self.parameters
    }

    /// True when the data is held as raw wire bytes.
    pub fn is_raw(&self) -> bool {
        matches!(self.data, TensorData::Raw(_))
    }

    /// The typed values without copying, when held typed as `T`.
    pub fn as_slice<T: Element>(&self) -> Option<&[T]> {
        T::slice(&self.data)
    }

    /// The values as `T`, decoding raw bytes when needed.
    ///
    /// Fails with [`ErrorKind::InvalidInput`] when `T` is not this tensor's datatype.
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        self.expect_type(T::DATATYPE)?;
        match &self.data {
            TensorData::Raw(raw) => Ok(raw.chunks_exact(T::SIZE).map(T::from_le).collect()),
            data => T::slice(data)
                .map(<[T]>::to_vec)
                .ok_or_else(|| Error::new(ErrorKind::Internal, "tensor data mismatch")),
        }
    }

    /// The elements of a `BYTES` tensor; raw data is split without copying.
    pub fn to_byte_elements(&self) -> Result<Vec<Bytes>> {
        self.expect_type(DataType::Bytes)?;
        match &self.data {
            TensorData::Bytes(v) => Ok(v.clone()),
            TensorData::Raw(raw) => split_bytes_elements(&self.name, raw, self.element_count()),
            _ => Err(Error::new(ErrorKind::Internal, "tensor data mismatch")),
        }
    }

    /// The raw little-endian wire layout; shared without copying when held raw.
    pub fn to_raw(&self) -> Result<Bytes> {
        Ok(wire_bytes(&self.data))
    }

    /// The raw little-endian wire layout, taking the tensor: held raw, or typed
    /// numbers on a little-endian machine, the values' own memory becomes the
    /// bytes without a copy (a 4 MB FP32 tensor costs no allocation); `BOOL`
    /// and `BYTES` are encoded as [`Tensor::to_raw`] does.
    pub fn into_raw(self) -> Result<Bytes> {
        #[cfg(target_endian = "little")]
        {
            fn share<T: bytemuck::NoUninit + Send + 'static>(values: Vec<T>) -> Bytes {
                Bytes::from_owner(LittleEndianValues(values))
            }
            return Ok(match self.data {
                TensorData::Raw(raw) => raw,
                TensorData::Uint8(v) => Bytes::from(v),
                TensorData::Int8(v) => share(v),
                TensorData::Uint16(v) => share(v),
                TensorData::Int16(v) => share(v),
                TensorData::Uint32(v) => share(v),
                TensorData::Int32(v) => share(v),
                TensorData::Uint64(v) => share(v),
                TensorData::Int64(v) => share(v),
                TensorData::Fp32(v) => share(v),
                TensorData::Fp64(v) => share(v),
                other => wire_bytes(&other),
            });
        }
        #[allow(unreachable_code)]
        Ok(wire_bytes(&self.data))
    }

    /// The same tensor with its data held typed (decoding raw bytes once).
    pub fn into_typed(self) -> Result<Tensor> {
        let TensorData::Raw(_) = &self.data else {
            return Ok(self);
        };
        let data = match self.datatype {
            DataType::Bool => TensorData::Bool(self.to_vec()?),
            DataType::Uint8 => TensorData::Uint8(self.to_vec()?),
            DataType::Uint16 => TensorData::Uint16(self.to_vec()?),
            DataType::Uint32 => TensorData::Uint32(self.to_vec()?),
            DataType::Uint64 => TensorData::Uint64(self.to_vec()?),
            DataType::Int8 => TensorData::Int8(self.to_vec()?),
            DataType::Int16 => TensorData::Int16(self.to_vec()?),
            DataType::Int32 => TensorData::Int32(self.to_vec()?),
            DataType::Int64 => TensorData::Int64(self.to_vec()?),
            DataType::Fp16 => TensorData::Fp16(self.to_vec()?),
            DataType::Bf16 => TensorData::Bf16(self.to_vec()?),
            DataType::Fp32 => TensorData::Fp32(self.to_vec()?),
            DataType::Fp64 => TensorData::Fp64(self.to_vec()?),
            DataType::Bytes => TensorData::Bytes(self.to_byte_elements()?),
        };
        Ok(Tensor { data, ..self })
    }

    fn expect_type(&self, want: DataType) -> Result<()> {
        if self.datatype == want {
            Ok(())
        } else {
            Err(tensor_error(
                &self.name,
                format!("is {} and cannot be read as {want}", self.datatype),
            ))
        }
    }
}

/// The element count of `shape`, or an error when it overflows `usize`.
fn element_count(name: &str, shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            tensor_error(
                name,
                format!("shape {} has too many elements", shape_string(shape)),
            )
        })
}

fn check_raw(name: &str, datatype: DataType, count: usize, raw: &Bytes) -> Result<()> {
    match datatype.element_size() {
        Some(size) => {
            let want = count
                .checked_mul(size)
                .ok_or_else(|| tensor_error(name, "raw size overflows".to_owned()))?;
            if raw.len() != want {
                return Err(tensor_error(
                    name,
                    format!(
                        "{count} {datatype} elements need {want} raw bytes, got {}",
                        raw.len()
                    ),
                ));
            }
            Ok(())
        }
        None => split_bytes_elements(name, raw, count).map(drop),
    }
}

/// Splits length-prefixed `BYTES` raw data into exactly `count` elements.
fn split_bytes_elements(name: &str, raw: &Bytes, count: usize) -> Result<Vec<Bytes>> {
    let mut elements = Vec::with_capacity(count.min(raw.len() / 4));
    let mut at = 0usize;
    while at < raw.len() {
        if elements.len() == count {
            return Err(tensor_error(
                name,
                format!("raw BYTES data has bytes after its {count} elements (at offset {at})"),
            ));
        }
        let Some(prefix) = raw.get(at..at + 4) else {
            return Err(tensor_error(
                name,
                format!("raw BYTES data ends inside a length prefix at offset {at}"),
            ));
        };
        let len = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
        let start = at + 4;
        let end = start
            .checked_add(len)
            .filter(|&e| e <= raw.len())
            .ok_or_else(|| {
                tensor_error(
                    name,
                    format!(
                        "raw BYTES element {} claims {len} bytes at offset {at} but only {} remain",
                        elements.len(),
                        raw.len() - start
                    ),
                )
            })?;
        elements.push(raw.slice(start..end));
        at = end;
    }
    if elements.len() != count {
        return Err(tensor_error(
            name,
            format!(
                "raw BYTES data holds {} elements, shape needs {count}",
                elements.len()
            ),
        ));
    }
    Ok(elements)
}

fn shape_string(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    format!("[{}]", dims.join(", "))
}

fn tensor_error(name: &str, what: String) -> Error {
    Error::invalid(format!("tensor \"{}\" {what}", escape(name))).with_context("tensor", name)
}

/// Caps and escapes a name for an error message.
fn escape(s: &str) -> String {
    s.chars().take(128).flat_map(char::escape_debug).collect()
}

/// An output the caller asks for (absent: the server returns all outputs).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestedOutput {
    /// The output tensor's name.
    pub name: String,
    /// Per-output parameters.
    pub parameters: Parameters,
}

impl RequestedOutput {
    /// An output by name, without parameters.
    pub fn named(name: impl Into<String>) -> Self {
        RequestedOutput {
            name: name.into(),
            parameters: Parameters::new(),
        }
    }
}

/// A tensor inference request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InferRequest {
    /// Optional request id, echoed by the server.
    pub id: Option<String>,
    /// Input tensors.
    pub inputs: Vec<Tensor>,
    /// Requested outputs; empty means all.
    pub outputs: Vec<RequestedOutput>,
    /// Request-level parameters.
    pub parameters: Parameters,
    /// True when the caller declares the request safe to send twice; only then
    /// does the transport retry it after it may have reached the server.
    pub idempotent: bool,
}

impl InferRequest {
    /// An empty request.
    pub fn new() -> Self {
        InferRequest::default()
    }

    /// Adds an input tensor.
    pub fn with_input(mut self, tensor: Tensor) -> Self {
        self.inputs.push(tensor);
        self
    }

    /// Asks for an output by name.
    pub fn with_output(mut self, name: impl Into<String>) -> Self {
        self.outputs.push(RequestedOutput::named(name));
        self
    }

    /// Sets the request id.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Adds or replaces a request parameter.
    pub fn with_parameter(mut self, key: impl Into<String>, value: impl Into<Parameter>) -> Self {
        self.parameters.insert(key.into(), value.into());
        self
    }

    /// Marks the request as safe to retry after it may have reached the server.
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }
}

/// A tensor inference response.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InferResponse {
    /// The model that answered.
    pub model_name: String,
    /// The model version that answered, when the server says.
    pub model_version: Option<String>,
    /// The request id, when the server echoes one.
    pub id: Option<String>,
    /// Output tensors.
    pub outputs: Vec<Tensor>,
    /// Response-level parameters.
    pub parameters: Parameters,
}

impl From<Tensor> for InferRequest {
    /// A request with one input.
    fn from(input: Tensor) -> Self {
        InferRequest::new().with_input(input)
    }
}

impl InferResponse {
    /// Takes the output with this name out of the response
    /// ([`ErrorKind::Protocol`] naming the outputs present when it is missing).
    pub fn into_output(mut self, name: &str) -> Result<Tensor> {
        self.require_output(name)?;
        let at = self
            .outputs
            .iter()
            .position(|t| t.name() == name)
            .ok_or_else(|| Error::new(ErrorKind::Internal, "output vanished"))?;
        Ok(self.outputs.swap_remove(at))
    }

    /// The only output of the response; [`ErrorKind::Protocol`] naming the
    /// outputs when there are none or several.
    pub fn into_single_output(mut self) -> Result<Tensor> {
        if self.outputs.len() == 1 {
            return Ok(self.outputs.remove(0));
        }
        let names: Vec<&str> = self.outputs.iter().map(Tensor::name).collect();
        Err(Error::new(
            ErrorKind::Protocol,
            format!(
                "expected one output from model \"{}\", got {}: [{}]",
                escape(&self.model_name),
                names.len(),
                names.join(", ")
            ),
        ))
    }

    /// The output with this name.
    pub fn output(&self, name: &str) -> Option<&Tensor> {
        self.outputs.iter().find(|t| t.name() == name)
    }

    /// The output with this name, or a [`ErrorKind::Protocol`] error naming the outputs present.
    pub fn require_output(&self, name: &str) -> Result<&Tensor> {
        self.output(name).ok_or_else(|| {
            let names: Vec<&str> = self.outputs.iter().map(Tensor::name).collect();
            Error::new(
                ErrorKind::Protocol,
                format!(
                    "the response has no output \"{}\"; outputs: [{}]",
                    escape(name),
                    names.join(", ")
                ),
            )
        })
    }
}

/// Numbers whose memory is already their little-endian wire layout.
#[cfg(target_endian = "little")]
struct LittleEndianValues<T>(Vec<T>);

#[cfg(target_endian = "little")]
impl<T: bytemuck::NoUninit> AsRef<[u8]> for LittleEndianValues<T> {
    fn as_ref(&self) -> &[u8] {
        bytemuck::cast_slice(&self.0)
    }
}

/// The raw little-endian wire layout of tensor data.
fn wire_bytes(data: &TensorData) -> Bytes {
    fn encode<T: Element>(values: &[T]) -> Bytes {
        let mut out = BytesMut::with_capacity(values.len() * T::SIZE);
        for v in values {
            v.put_le(&mut out);
        }
        out.freeze()
    }
    match data {
        TensorData::Raw(raw) => raw.clone(),
        TensorData::Bool(v) => encode(v),
        TensorData::Uint8(v) => Bytes::copy_from_slice(v),
        TensorData::Uint16(v) => encode(v),
        TensorData::Uint32(v) => encode(v),
        TensorData::Uint64(v) => encode(v),
        TensorData::Int8(v) => encode(v),
        TensorData::Int16(v) => encode(v),
        TensorData::Int32(v) => encode(v),
        TensorData::Int64(v) => encode(v),
        TensorData::Fp16(v) => encode(v),
        TensorData::Bf16(v) => encode(v),
        TensorData::Fp32(v) => encode(v),
        TensorData::Fp64(v) => encode(v),
        TensorData::Bytes(v) => {
            let total: usize = v.iter().map(|e| 4 + e.len()).sum();
            let mut out = BytesMut::with_capacity(total);
            for e in v {
                // Lengths were checked at construction.
                out.put_u32_le(e.len() as u32);
                out.put_slice(e);
            }
            out.freeze()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn into_raw_gives_the_same_bytes_as_to_raw_and_shares_numbers() {
        let tensors = vec![
            Tensor::new("f32", vec![3], vec![1.5f32, -2.0, 3.25]).unwrap(),
            Tensor::new("f64", vec![2], vec![0.5f64, -9.0]).unwrap(),
            Tensor::new("i64", vec![2], vec![1i64, -7]).unwrap(),
            Tensor::new("i8", vec![2], vec![-1i8, 1]).unwrap(),
            Tensor::new("u16", vec![2], vec![1u16, 65535]).unwrap(),
            Tensor::new("u8", vec![2], vec![1u8, 2]).unwrap(),
            Tensor::new("f16", vec![1], vec![f16::from_f32(0.5)]).unwrap(),
            Tensor::new("bool", vec![2], vec![true, false]).unwrap(),
            Tensor::from_byte_elements("bytes", vec![2], vec!["xy", ""]).unwrap(),
        ];
        for t in tensors {
            let want = t.to_raw().unwrap();
            let raw_again =
                Tensor::from_raw(t.name(), t.datatype(), t.shape().to_vec(), want.clone())
                    .unwrap()
                    .into_raw()
                    .unwrap();
            assert_eq!(raw_again, want, "{} held raw", t.name());
            assert_eq!(t.clone().into_raw().unwrap(), want, "{}", t.name());
        }
        if cfg!(target_endian = "little") {
            let values = vec![0.25f32; 1024];
            let memory = values.as_ptr().cast::<u8>();
            let raw = Tensor::new("x", vec![1024], values)
                .unwrap()
                .into_raw()
                .unwrap();
            assert_eq!(
                raw.as_ptr(),
                memory,
                "FP32 values become the bytes without a copy"
            );
            assert_eq!(raw.len(), 4096);
        }
    }

    #[test]
    fn datatype_names_round_trip() {
        for d in DataType::ALL {
            assert_eq!(d.as_str().parse::<DataType>().unwrap(), d);
        }
        let e = "fp32".parse::<DataType>().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().contains("FP32"), "{e}");
    }

    #[test]
    fn typed_and_raw_agree_for_every_fixed_type() {
        fn check<T: Element>(values: Vec<T>) {
            let n = values.len();
            let t = Tensor::new("x", vec![n], values.clone()).unwrap();
            let raw = t.to_raw().unwrap();
            assert_eq!(raw.len(), n * T::SIZE);
            let back = Tensor::from_raw("x", T::DATATYPE, vec![n], raw).unwrap();
            assert_eq!(back.to_vec::<T>().unwrap(), values);
            assert_eq!(
                back.into_typed().unwrap().as_slice::<T>().unwrap(),
                &values[..]
            );
        }
        check(vec![true, false, true]);
        check(vec![0u8, 255]);
        check(vec![1u16, u16::MAX]);
        check(vec![1u32, u32::MAX]);
        check(vec![1u64, u64::MAX]);
        check(vec![-1i8, i8::MIN]);
        check(vec![-1i16, i16::MAX]);
        check(vec![-1i32, i32::MIN]);
        check(vec![-1i64, i64::MIN]);
        check(vec![f16::from_f32(1.5), f16::NEG_INFINITY]);
        check(vec![bf16::from_f32(-2.0), bf16::MAX]);
        check(vec![1.25f32, -0.0, f32::MAX]);
        check(vec![1e300f64, -3.5]);
    }

    #[test]
    fn raw_layout_is_little_endian() {
        let t = Tensor::new("x", vec![1], vec![0x0102_0304u32]).unwrap();
        assert_eq!(&t.to_raw().unwrap()[..], &[4, 3, 2, 1]);
        let t = Tensor::new("x", vec![2], vec![true, false]).unwrap();
        assert_eq!(&t.to_raw().unwrap()[..], &[1, 0]);
    }

    #[test]
    fn shape_and_length_are_checked() {
        let e = Tensor::new("in", vec![2, 3], vec![1.0f32; 5]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(
            e.message().contains("[2, 3] needs 6 elements, got 5"),
            "{e}"
        );
        let e = Tensor::from_raw("in", DataType::Fp64, vec![2], Bytes::from(vec![0u8; 15]))
            .unwrap_err();
        assert!(e.message().contains("need 16 raw bytes, got 15"), "{e}");
        let e = Tensor::new("in", vec![usize::MAX, 3], Vec::<u8>::new()).unwrap_err();
        assert!(e.message().contains("too many elements"), "{e}");
        let e = Tensor::from_data("in", DataType::Int32, vec![1], TensorData::Fp32(vec![1.0]))
            .unwrap_err();
        assert!(
            e.message()
                .contains("holds FP32 values but is declared INT32"),
            "{e}"
        );
        // A scalar has one element; a zero dimension none.
        assert_eq!(
            Tensor::new("s", vec![], vec![7i32])
                .unwrap()
                .element_count(),
            1
        );
        assert_eq!(
            Tensor::new("z", vec![0, 4], Vec::<i32>::new())
                .unwrap()
                .element_count(),
            0
        );
    }

    #[test]
    fn reading_as_another_type_is_an_error() {
        let t = Tensor::new("x", vec![1], vec![1i32]).unwrap();
        let e = t.to_vec::<f32>().unwrap_err();
        assert!(
            e.message().contains("is INT32 and cannot be read as FP32"),
            "{e}"
        );
        assert!(t.as_slice::<f32>().is_none());
        assert!(t.to_byte_elements().is_err());
    }

    #[test]
    fn bytes_elements_round_trip_and_raw_framing_is_checked() {
        let t = Tensor::from_byte_elements("b", vec![3], ["ab", "", "xyz"]).unwrap();
        let raw = t.to_raw().unwrap();
        assert_eq!(&raw[..], b"\x02\0\0\0ab\0\0\0\0\x03\0\0\0xyz");
        let back = Tensor::from_raw("b", DataType::Bytes, vec![3], raw.clone()).unwrap();
        let elements = back.to_byte_elements().unwrap();
        assert_eq!(
            elements,
            vec![Bytes::from("ab"), Bytes::new(), Bytes::from("xyz")]
        );
        // Wrong count, truncated prefix, overlong element, trailing bytes.
        assert!(Tensor::from_raw("b", DataType::Bytes, vec![2], raw.clone()).is_err());
        let e = Tensor::from_raw("b", DataType::Bytes, vec![1], raw.slice(0..3)).unwrap_err();
        assert!(e.message().contains("inside a length prefix"), "{e}");
        let e = Tensor::from_raw("b", DataType::Bytes, vec![1], raw.slice(0..5)).unwrap_err();
        assert!(e.message().contains("claims 2 bytes"), "{e}");
        let e = Tensor::from_raw("b", DataType::Bytes, vec![1], raw.slice(0..7)).unwrap_err();
        assert!(e.message().contains("bytes after its 1 elements"), "{e}");
    }

    #[test]
    fn raw_data_is_shared_not_copied() {
        let buf = Bytes::from(vec![0u8; 4096]);
        let t = Tensor::from_raw("x", DataType::Fp32, vec![1024], buf.clone()).unwrap();
        let raw = t.to_raw().unwrap();
        assert_eq!(raw.as_ptr(), buf.as_ptr());
        let s = Tensor::from_raw(
            "s",
            DataType::Bytes,
            vec![1],
            Bytes::from_static(b"\x01\0\0\0z"),
        )
        .unwrap();
        let e = s.to_byte_elements().unwrap();
        assert_eq!(&e[0][..], b"z");
    }

    #[test]
    fn debug_does_not_dump_contents() {
        let t = Tensor::new("x", vec![3], vec![123456.0f32, 2.0, 3.0]).unwrap();
        let d = format!("{t:?}");
        assert!(d.contains("FP32(3 elements)"), "{d}");
        assert!(!d.contains("123456"), "{d}");
    }

    #[test]
    fn response_outputs_are_taken_by_name_or_alone() {
        let response = InferResponse {
            model_name: "m".into(),
            outputs: vec![
                Tensor::new("a", vec![1], vec![1u8]).unwrap(),
                Tensor::new("b", vec![1], vec![2u8]).unwrap(),
            ],
            ..InferResponse::default()
        };
        let b = response.clone().into_output("b").unwrap();
        assert_eq!(b.to_vec::<u8>().unwrap(), vec![2]);
        let e = response.clone().into_output("c").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
        assert!(e.message().contains("outputs: [a, b]"), "{e}");
        let e = response.into_single_output().unwrap_err();
        assert!(e.message().contains("got 2: [a, b]"), "{e}");
        let request = InferRequest::from(Tensor::new("x", vec![1], vec![1u8]).unwrap());
        assert_eq!(request.inputs.len(), 1);
    }

    #[test]
    fn parameters_serialize_untagged() {
        let mut p = Parameters::new();
        p.insert("a".into(), true.into());
        p.insert("b".into(), 3i64.into());
        p.insert("c".into(), "s".into());
        p.insert("d".into(), 0.5.into());
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, r#"{"a":true,"b":3,"c":"s","d":0.5}"#);
        let back: Parameters = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
    }
}
