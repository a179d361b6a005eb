//! Conversions between tensors and the shapes hosts hold their data in:
//! vectors, rows (embeddings), strings, and wider or narrower floats.
//!
//! Every conversion checks counts and types and fails with
//! [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) naming the
//! tensor; none panics or truncates silently. Conversions named `lossy`
//! widen or narrow numbers (`u64` to `f64` loses precision above 2^53, `f32`
//! to `FP16` rounds); the others are exact.

use super::{
    DataType, Element, Parameters, Result, Tensor, TensorData, bf16, element_count, f16,
    shape_string, tensor_error,
};
use bytes::Bytes;

impl Tensor {
    /// A one-dimensional tensor (shape `[values.len()]`); cannot fail.
    pub fn from_vec<T: Element>(name: impl Into<String>, values: Vec<T>) -> Tensor {
        Tensor {
            name: name.into(),
            datatype: T::DATATYPE,
            shape: vec![values.len()],
            data: T::wrap(values),
            parameters: Parameters::new(),
        }
    }

    /// A scalar tensor (shape `[]`, one element).
    pub fn scalar<T: Element>(name: impl Into<String>, value: T) -> Tensor {
        Tensor {
            name: name.into(),
            datatype: T::DATATYPE,
            shape: Vec::new(),
            data: T::wrap(vec![value]),
            parameters: Parameters::new(),
        }
    }

    /// A two-dimensional tensor of shape `[rows.len(), columns]` from rows of
    /// equal length, e.g. a batch of embeddings or feature vectors.
    ///
    /// Rows of different lengths are an error naming the first odd row. No
    /// rows give shape `[0, 0]`.
    ///
    /// ```
    /// use inferlink_core::Tensor;
    /// let batch = vec![vec![0.1f32, 0.2, 0.3], vec![0.4, 0.5, 0.6]];
    /// let t = Tensor::from_rows("input-0", &batch)?;
    /// assert_eq!(t.shape(), &[2, 3]);
    /// assert!(Tensor::from_rows("x", &[vec![1.0f32], vec![]]).is_err());
    /// # Ok::<(), inferlink_core::Error>(())
    /// ```
    pub fn from_rows<T: Element, R: AsRef<[T]>>(
        name: impl Into<String>,
        rows: &[R],
    ) -> Result<Tensor> {
        let name = name.into();
        let columns = rows.first().map_or(0, |r| r.as_ref().len());
        if let Some((i, row)) = rows
            .iter()
            .enumerate()
            .find(|(_, r)| r.as_ref().len() != columns)
        {
            return Err(tensor_error(
                &name,
                format!(
                    "row {i} has {} values but row 0 has {columns}",
                    row.as_ref().len()
                ),
            ));
        }
        let mut values = Vec::with_capacity(rows.len() * columns);
        for row in rows {
            values.extend_from_slice(row.as_ref());
        }
        Tensor::new(name, vec![rows.len(), columns], values)
    }

    /// A `BYTES` tensor of UTF-8 strings (copied); the count must fit the shape.
    pub fn from_strings<S: AsRef<str>>(
        name: impl Into<String>,
        shape: Vec<usize>,
        strings: impl IntoIterator<Item = S>,
    ) -> Result<Tensor> {
        let elements = strings
            .into_iter()
            .map(|s| Bytes::copy_from_slice(s.as_ref().as_bytes()));
        Tensor::from_byte_elements(name, shape, elements)
    }

    /// An `FP16` tensor from `f32` values, each rounded to the nearest half
    /// (lossy); `values.len()` must fit the shape.
    pub fn fp16_from_f32(
        name: impl Into<String>,
        shape: Vec<usize>,
        values: &[f32],
    ) -> Result<Tensor> {
        let values: Vec<f16> = values.iter().map(|&v| f16::from_f32(v)).collect();
        Tensor::new(name, shape, values)
    }

    /// A `BF16` tensor from `f32` values, each rounded to the nearest bfloat16
    /// (lossy); `values.len()` must fit the shape.
    pub fn bf16_from_f32(
        name: impl Into<String>,
        shape: Vec<usize>,
        values: &[f32],
    ) -> Result<Tensor> {
        let values: Vec<bf16> = values.iter().map(|&v| bf16::from_f32(v)).collect();
        Tensor::new(name, shape, values)
    }

    /// The same tensor under another name (data shared, not copied).
    pub fn with_name(mut self, name: impl Into<String>) -> Tensor {
        self.name = name.into();
        self
    }

    /// The same elements under another shape with the same element count
    /// (data shared, not copied).
    ///
    /// ```
    /// use inferlink_core::Tensor;
    /// let t = Tensor::from_vec("x", vec![1i32, 2, 3, 4, 5, 6]).reshape(vec![2, 3])?;
    /// assert_eq!(t.shape(), &[2, 3]);
    /// assert!(t.reshape(vec![4]).is_err());
    /// # Ok::<(), inferlink_core::Error>(())
    /// ```
    pub fn reshape(self, shape: Vec<usize>) -> Result<Tensor> {
        let count = element_count(&self.name, &shape)?;
        let have = self.element_count();
        if count != have {
            return Err(tensor_error(
                &self.name,
                format!(
                    "cannot take shape {} ({count} elements): it holds {have} elements in shape {}",
                    shape_string(&shape),
                    shape_string(&self.shape)
                ),
            ));
        }
        Ok(Tensor { shape, ..self })
    }

    /// The elements of a `BYTES` tensor as strings; an element that is not
    /// UTF-8 is an error naming its index.
    pub fn to_strings(&self) -> Result<Vec<String>> {
        self.to_byte_elements()?
            .iter()
            .enumerate()
            .map(|(i, e)| {
                std::str::from_utf8(e).map(str::to_owned).map_err(|u| {
                    tensor_error(
                        &self.name,
                        format!(
                            "BYTES element {i} is not UTF-8 (invalid byte at offset {})",
                            u.valid_up_to()
                        ),
                    )
                })
            })
            .collect()
    }

    /// Every element widened to `f64`, whatever the numeric datatype
    /// (`BOOL` gives 0 or 1). Lossy only for 64-bit integers above 2^53.
    /// `BYTES` tensors are an error.
    pub fn to_f64_lossy(&self) -> Result<Vec<f64>> {
        Ok(match self.datatype {
            DataType::Bool => self.map_elements(|v: bool| f64::from(u8::from(v))),
            DataType::Uint8 => self.map_elements(|v: u8| f64::from(v)),
            DataType::Uint16 => self.map_elements(|v: u16| f64::from(v)),
            DataType::Uint32 => self.map_elements(|v: u32| f64::from(v)),
            DataType::Uint64 => self.map_elements(|v: u64| v as f64),
            DataType::Int8 => self.map_elements(|v: i8| f64::from(v)),
            DataType::Int16 => self.map_elements(|v: i16| f64::from(v)),
            DataType::Int32 => self.map_elements(|v: i32| f64::from(v)),
            DataType::Int64 => self.map_elements(|v: i64| v as f64),
            DataType::Fp16 => self.map_elements(|v: f16| f64::from(v)),
            DataType::Bf16 => self.map_elements(|v: bf16| f64::from(v)),
            DataType::Fp32 => self.map_elements(|v: f32| f64::from(v)),
            DataType::Fp64 => self.map_elements(|v: f64| v),
            DataType::Bytes => return Err(self.not_numeric()),
        })
    }

    /// Every element converted to `f32`, whatever the numeric datatype: exact
    /// for `FP16`, `BF16`, `FP32` and integers up to 16 bits; `FP64` and wide
    /// integers round to the nearest `f32`. `BYTES` tensors are an error.
    ///
    /// The usual way to read embeddings, whichever float type a model returns.
    pub fn to_f32_lossy(&self) -> Result<Vec<f32>> {
        Ok(match self.datatype {
            DataType::Bool => self.map_elements(|v: bool| f32::from(u8::from(v))),
            DataType::Uint8 => self.map_elements(|v: u8| f32::from(v)),
            DataType::Uint16 => self.map_elements(|v: u16| f32::from(v)),
            DataType::Uint32 => self.map_elements(|v: u32| v as f32),
            DataType::Uint64 => self.map_elements(|v: u64| v as f32),
            DataType::Int8 => self.map_elements(|v: i8| f32::from(v)),
            DataType::Int16 => self.map_elements(|v: i16| f32::from(v)),
            DataType::Int32 => self.map_elements(|v: i32| v as f32),
            DataType::Int64 => self.map_elements(|v: i64| v as f32),
            DataType::Fp16 => self.map_elements(|v: f16| f32::from(v)),
            DataType::Bf16 => self.map_elements(|v: bf16| f32::from(v)),
            DataType::Fp32 => self.map_elements(|v: f32| v),
            DataType::Fp64 => self.map_elements(|v: f64| v as f32),
            DataType::Bytes => return Err(self.not_numeric()),
        })
    }

    /// The rows of a two-dimensional numeric tensor as `f32` (see
    /// [`Tensor::to_f32_lossy`]): one vector per row, e.g. one embedding per
    /// input. Any other rank is an error.
    pub fn to_f32_rows(&self) -> Result<Vec<Vec<f32>>> {
        let &[rows, columns] = self.shape.as_slice() else {
            return Err(tensor_error(
                &self.name,
                format!(
                    "has shape {}; reading rows needs two dimensions",
                    shape_string(&self.shape)
                ),
            ));
        };
        let values = self.to_f32_lossy()?;
        if columns == 0 {
            return Ok(vec![Vec::new(); rows]);
        }
        Ok(values.chunks_exact(columns).map(<[f32]>::to_vec).collect())
    }

    /// The same tensor with its numbers converted to a float datatype
    /// (`FP16`, `BF16`, `FP32` or `FP64`), each rounded to the nearest value
    /// of the target type. Parameters are kept. Converting to the tensor's
    /// own datatype returns a clone (sharing raw data).
    ///
    /// ```
    /// use inferlink_core::{DataType, Tensor};
    /// let t = Tensor::from_vec("x", vec![1.5f32, -2.0]);
    /// let half = t.cast_float(DataType::Fp16)?;
    /// assert_eq!(half.datatype(), DataType::Fp16);
    /// assert_eq!(half.to_f32_lossy()?, vec![1.5, -2.0]);
    /// assert!(t.cast_float(DataType::Int32).is_err());
    /// # Ok::<(), inferlink_core::Error>(())
    /// ```
    pub fn cast_float(&self, target: DataType) -> Result<Tensor> {
        if !matches!(
            target,
            DataType::Fp16 | DataType::Bf16 | DataType::Fp32 | DataType::Fp64
        ) {
            return Err(tensor_error(
                &self.name,
                format!(
                    "cannot be converted to {target}: the float targets are FP16, BF16, FP32 and FP64"
                ),
            ));
        }
        if target == self.datatype {
            return Ok(self.clone());
        }
        let values = self.to_f64_lossy()?;
        let data = match target {
            DataType::Fp16 => TensorData::Fp16(values.iter().map(|&v| f16::from_f64(v)).collect()),
            DataType::Bf16 => TensorData::Bf16(values.iter().map(|&v| bf16::from_f64(v)).collect()),
            DataType::Fp32 => TensorData::Fp32(values.iter().map(|&v| v as f32).collect()),
            _ => TensorData::Fp64(values),
        };
        Ok(
            Tensor::from_data(self.name.clone(), target, self.shape.clone(), data)?
                .with_parameters(self.parameters.clone()),
        )
    }

    /// Applies `f` to every element; the caller has checked that `T` is the
    /// tensor's element type (construction guarantees typed data matches).
    fn map_elements<T: Element, U>(&self, f: impl FnMut(T) -> U) -> Vec<U> {
        debug_assert_eq!(T::DATATYPE, self.datatype);
        match &self.data {
            TensorData::Raw(raw) => raw.chunks_exact(T::SIZE).map(T::from_le).map(f).collect(),
            data => T::slice(data)
                .unwrap_or_default()
                .iter()
                .copied()
                .map(f)
                .collect(),
        }
    }

    fn not_numeric(&self) -> crate::Error {
        tensor_error(
            &self.name,
            format!("is {} and has no numeric values", self.datatype),
        )
    }
}

impl<T: Element> TryFrom<&Tensor> for Vec<T> {
    type Error = crate::Error;

    /// The values as `T` ([`Tensor::to_vec`]): an error unless `T` is the
    /// tensor's element type.
    fn try_from(tensor: &Tensor) -> Result<Vec<T>> {
        tensor.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn message(e: crate::Error) -> String {
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        e.to_string()
    }

    #[test]
    fn vectors_and_scalars() {
        let t = Tensor::from_vec("v", vec![1u16, 2, 3]);
        assert_eq!((t.datatype(), t.shape()), (DataType::Uint16, &[3usize][..]));
        let s = Tensor::scalar("s", true);
        assert_eq!((s.shape(), s.element_count()), (&[][..], 1));
        let empty = Tensor::from_vec("e", Vec::<f64>::new());
        assert_eq!(empty.shape(), &[0]);
        let v: Vec<u16> = (&t).try_into().unwrap();
        assert_eq!(v, vec![1, 2, 3]);
        let wrong: Result<Vec<i32>> = (&t).try_into();
        assert!(message(wrong.unwrap_err()).contains("is UINT16 and cannot be read as INT32"));
    }

    #[test]
    fn rows_round_trip_and_ragged_rows_are_rejected() {
        let rows = vec![vec![1.0f32, 2.0], vec![3.0, 4.0], vec![5.0, 6.0]];
        let t = Tensor::from_rows("emb", &rows).unwrap();
        assert_eq!(t.shape(), &[3, 2]);
        assert_eq!(t.to_f32_rows().unwrap(), rows);
        // The same through raw bytes (the shape a binary response arrives in).
        let raw = Tensor::from_raw("emb", DataType::Fp32, vec![3, 2], t.to_raw().unwrap()).unwrap();
        assert_eq!(raw.to_f32_rows().unwrap(), rows);

        let e = Tensor::from_rows("emb", &[vec![1i64, 2], vec![3], vec![4, 5]]).unwrap_err();
        assert!(
            message(e).contains("row 1 has 1 values but row 0 has 2"),
            "ragged rows name the odd row"
        );
        let none: &[Vec<f32>] = &[];
        assert_eq!(Tensor::from_rows("e", none).unwrap().shape(), &[0, 0]);
        let zero_width = Tensor::from_rows("z", &[Vec::<f32>::new(), Vec::new()]).unwrap();
        assert_eq!(zero_width.shape(), &[2, 0]);
        assert_eq!(
            zero_width.to_f32_rows().unwrap(),
            vec![Vec::<f32>::new(); 2]
        );
    }

    #[test]
    fn rows_need_two_dimensions() {
        let e = Tensor::from_vec("v", vec![1.0f32, 2.0])
            .to_f32_rows()
            .unwrap_err();
        assert!(message(e).contains("has shape [2]; reading rows needs two dimensions"));
        let t = Tensor::new("c", vec![1, 1, 2], vec![1.0f32, 2.0]).unwrap();
        assert!(t.to_f32_rows().is_err());
    }

    #[test]
    fn reshape_checks_the_element_count() {
        let t = Tensor::new("x", vec![2, 3], vec![0u8; 6]).unwrap();
        let r = t.clone().reshape(vec![3, 1, 2]).unwrap();
        assert_eq!(r.shape(), &[3, 1, 2]);
        assert_eq!(r.to_vec::<u8>().unwrap(), vec![0; 6]);
        let e = t.clone().reshape(vec![4]).unwrap_err();
        assert!(
            message(e).contains(
                "cannot take shape [4] (4 elements): it holds 6 elements in shape [2, 3]"
            )
        );
        let e = t.reshape(vec![usize::MAX, 2]).unwrap_err();
        assert!(message(e).contains("too many elements"));
        // Raw BYTES data keeps its framing under a new shape.
        let b = Tensor::from_strings("b", vec![2], ["a", "bc"]).unwrap();
        let raw = Tensor::from_raw("b", DataType::Bytes, vec![2], b.to_raw().unwrap()).unwrap();
        let r = raw.reshape(vec![1, 2]).unwrap();
        assert_eq!(r.to_strings().unwrap(), vec!["a", "bc"]);
        assert!(r.reshape(vec![3]).is_err());
    }

    #[test]
    fn strings_are_counted_and_checked_for_utf8() {
        let t = Tensor::from_strings("t", vec![2, 1], ["hello", "wörld"]).unwrap();
        assert_eq!(t.to_strings().unwrap(), vec!["hello", "wörld"]);
        let e = Tensor::from_strings("t", vec![3], ["only", "two"]).unwrap_err();
        assert!(message(e).contains("needs 3 elements, got 2"));
        let bad = Tensor::from_byte_elements("t", vec![2], [&b"ok"[..], &b"\xffno"[..]]).unwrap();
        let e = bad.to_strings().unwrap_err();
        assert!(message(e).contains("BYTES element 1 is not UTF-8 (invalid byte at offset 0)"));
        let e = Tensor::from_vec("n", vec![1u8]).to_strings().unwrap_err();
        assert!(message(e).contains("is UINT8 and cannot be read as BYTES"));
    }

    #[test]
    fn widening_covers_every_numeric_type() {
        fn check<T: Element>(values: Vec<T>, want: &[f64]) {
            let n = values.len();
            let t = Tensor::new("w", vec![n], values).unwrap();
            assert_eq!(t.to_f64_lossy().unwrap(), want, "{:?}", t.datatype());
            let f32s: Vec<f64> = t
                .to_f32_lossy()
                .unwrap()
                .into_iter()
                .map(f64::from)
                .collect();
            assert_eq!(f32s, want, "{:?}", t.datatype());
            // Raw-held data widens the same way.
            let raw = Tensor::from_raw("w", t.datatype(), vec![n], t.to_raw().unwrap()).unwrap();
            assert_eq!(raw.to_f64_lossy().unwrap(), want);
        }
        check(vec![true, false], &[1.0, 0.0]);
        check(vec![7u8, 255], &[7.0, 255.0]);
        check(vec![7u16], &[7.0]);
        check(vec![7u32], &[7.0]);
        check(vec![7u64], &[7.0]);
        check(vec![-7i8], &[-7.0]);
        check(vec![-7i16], &[-7.0]);
        check(vec![-7i32], &[-7.0]);
        check(vec![-7i64], &[-7.0]);
        check(vec![f16::from_f32(0.5)], &[0.5]);
        check(vec![bf16::from_f32(-0.25)], &[-0.25]);
        check(vec![1.5f32], &[1.5]);
        check(vec![-2.5f64], &[-2.5]);
        // Lossy where the name says so.
        let big = Tensor::from_vec("b", vec![(1u64 << 53) + 1]);
        assert_eq!(big.to_f64_lossy().unwrap(), vec![(1u64 << 53) as f64]);
        let wide = Tensor::from_vec("d", vec![0.1f64]);
        assert_eq!(wide.to_f32_lossy().unwrap(), vec![0.1f32]);
        // BYTES has no numbers.
        let s = Tensor::from_strings("s", vec![1], ["1.0"]).unwrap();
        assert!(
            message(s.to_f64_lossy().unwrap_err()).contains("is BYTES and has no numeric values")
        );
        assert!(s.to_f32_lossy().is_err());
    }

    #[test]
    fn half_precision_conversions() {
        let values = [1.0f32, -0.5, 65504.0, 1.0e-3, 3.140625];
        let h = Tensor::fp16_from_f32("h", vec![5], &values).unwrap();
        assert_eq!(h.datatype(), DataType::Fp16);
        assert_eq!(h.to_raw().unwrap().len(), 10);
        let back = h.to_f32_lossy().unwrap();
        assert_eq!(back[..3], values[..3]);
        assert!((back[3] - 1.0e-3).abs() < 1.0e-6, "{}", back[3]);
        let b = Tensor::bf16_from_f32("b", vec![1, 5], &values).unwrap();
        assert_eq!(b.datatype(), DataType::Bf16);
        assert_eq!(b.to_f32_lossy().unwrap()[..2], values[..2]);
        // Counts are checked like every constructor.
        let e = Tensor::fp16_from_f32("h", vec![2, 2], &values).unwrap_err();
        assert!(message(e).contains("needs 4 elements, got 5"));
        assert!(Tensor::bf16_from_f32("b", vec![6], &values).is_err());
    }

    #[test]
    fn float_casts() {
        let t = Tensor::new("x", vec![2], vec![1.5f32, 70000.0])
            .unwrap()
            .with_parameter("content_type", "np");
        let h = t.cast_float(DataType::Fp16).unwrap();
        assert_eq!(h.datatype(), DataType::Fp16);
        assert_eq!(h.parameters(), t.parameters());
        // 70000 is beyond FP16's range: it rounds to infinity, as IEEE says.
        assert_eq!(h.to_f32_lossy().unwrap(), vec![1.5, f32::INFINITY]);
        let b = t.cast_float(DataType::Bf16).unwrap();
        assert_eq!(b.to_f32_lossy().unwrap(), vec![1.5, 70144.0]);
        let d = h.cast_float(DataType::Fp64).unwrap();
        assert_eq!(d.to_vec::<f64>().unwrap(), vec![1.5, f64::INFINITY]);
        let back = d.cast_float(DataType::Fp32).unwrap();
        assert_eq!(back.to_vec::<f32>().unwrap(), vec![1.5, f32::INFINITY]);
        // Integers widen to floats.
        let i = Tensor::from_vec("i", vec![3i32])
            .cast_float(DataType::Fp32)
            .unwrap();
        assert_eq!(i.to_vec::<f32>().unwrap(), vec![3.0]);
        // Same type: a clone sharing raw data.
        let raw = Tensor::from_raw(
            "r",
            DataType::Fp32,
            vec![1],
            Bytes::from_static(&[0, 0, 128, 63]),
        )
        .unwrap();
        let same = raw.cast_float(DataType::Fp32).unwrap();
        assert_eq!(
            same.to_raw().unwrap().as_ptr(),
            raw.to_raw().unwrap().as_ptr()
        );
        // Non-float targets and BYTES sources are errors.
        let e = t.cast_float(DataType::Int64).unwrap_err();
        assert!(message(e).contains("cannot be converted to INT64"));
        let s = Tensor::from_strings("s", vec![1], ["x"]).unwrap();
        assert!(s.cast_float(DataType::Fp32).is_err());
    }

    #[test]
    fn renaming_keeps_data() {
        let t = Tensor::from_vec("a", vec![1u8]).with_name("b");
        assert_eq!((t.name(), t.to_vec::<u8>().unwrap()), ("b", vec![1]));
    }
}
