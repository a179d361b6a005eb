//! `infer(target, input_name, value)`: a row's numbers as one input tensor
//! of a tensor model (KServe, Triton, MLServer, …), the answer's output
//! tensor as `List<Float64>`.
//!
//! Without `batch` in the target each row is one request whose input has
//! the row's shape `[n]`. With `batch=N` the model has a batch dimension:
//! rows of the same input name and length go together, up to N in a
//! request of shape `[k, n]`, and the output is cut back into k rows along
//! its first dimension; when such a request fails as invalid input its rows
//! are sent again one by one (`[1, n]`), so only the rows at fault fail.
//! Requests go at most [`crate::Options::concurrency`] at a time.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray as _, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType as ArrowType, Field, Float64Type};
use datafusion::error::Result as DfResult;
use inferlink::{DataType, Error, ErrorKind, InferRequest, InferResponse, Result, Tensor};

use super::{Connected, InferenceUdf, fail_all, place, text_at};

/// Most numbers in one row's input.
const MAX_ROW_ELEMENTS: usize = 1 << 20;

/// Each row's numbers: a list column (any numeric list type) or one number
/// per row; `None` for a null or empty value (never sent).
pub(super) fn row_values(column: &ArrayRef) -> DfResult<Vec<Option<Vec<f64>>>> {
    let list_type = ArrowType::List(Arc::new(Field::new_list_field(ArrowType::Float64, true)));
    Ok(match column.data_type() {
        ArrowType::List(_) | ArrowType::LargeList(_) | ArrowType::FixedSizeList(..) => {
            let lists = cast(column, &list_type)?;
            let lists = lists.as_list::<i32>();
            (0..lists.len())
                .map(|row| {
                    if lists.is_null(row) {
                        return None;
                    }
                    let item = lists.value(row);
                    let numbers = item.as_primitive::<Float64Type>();
                    // A null element cannot be sent: the row is refused below.
                    let values: Vec<f64> = (0..numbers.len())
                        .map(|i| {
                            if numbers.is_null(i) {
                                f64::NAN
                            } else {
                                numbers.value(i)
                            }
                        })
                        .collect();
                    (!values.is_empty()).then_some(values)
                })
                .collect()
        }
        _ => {
            let numbers = cast(column, &ArrowType::Float64)?;
            let numbers = numbers.as_primitive::<Float64Type>();
            (0..numbers.len())
                .map(|row| (!numbers.is_null(row)).then(|| vec![numbers.value(row)]))
                .collect()
        }
    })
}

/// One request's rows: their indices, input name and element count.
struct Chunk<'a> {
    rows: Vec<usize>,
    input: &'a str,
    width: usize,
}

impl InferenceUdf {
    /// Answers the group's rows with `infer` calls (see the module docs).
    pub(super) async fn infer_rows(
        &self,
        target: &Connected,
        names: &StringArray,
        values: &[Option<Vec<f64>>],
        group: &[usize],
        out: &mut [Option<Vec<f64>>],
        errors: &mut [Option<Arc<Error>>],
    ) {
        let mut chunks: Vec<Chunk<'_>> = Vec::new();
        for &row in group {
            let (Some(input), Some(numbers)) = (text_at(names, row), values[row].as_ref()) else {
                continue;
            };
            let width = numbers.len();
            let limit = target.target.batch.unwrap_or(1);
            match chunks
                .iter_mut()
                .find(|c| c.input == input && c.width == width && c.rows.len() < limit)
            {
                Some(chunk) => chunk.rows.push(row),
                None => chunks.push(Chunk {
                    rows: vec![row],
                    input,
                    width,
                }),
            }
        }
        let batched = target.target.batch.is_some();
        let answers = self
            .each((0..chunks.len()).collect(), |i| {
                let chunk = &chunks[i];
                async move { self.infer_chunk(target, chunk, values, batched).await }
            })
            .await;
        for (chunk, answer) in chunks.iter().zip(answers) {
            match answer {
                Ok(rows) => place(&chunk.rows, rows.into_iter().map(Ok).collect(), out, errors),
                Err(e)
                    if batched && chunk.rows.len() > 1 && e.kind() == ErrorKind::InvalidInput =>
                {
                    let alone: Vec<Chunk<'_>> = chunk
                        .rows
                        .iter()
                        .map(|&row| Chunk {
                            rows: vec![row],
                            input: chunk.input,
                            width: chunk.width,
                        })
                        .collect();
                    let answers = self
                        .each((0..alone.len()).collect(), |i| {
                            let single = &alone[i];
                            async move {
                                let mut rows =
                                    self.infer_chunk(target, single, values, true).await?;
                                rows.pop().ok_or_else(|| {
                                    Error::new(ErrorKind::Internal, "no row in a one-row answer")
                                })
                            }
                        })
                        .await;
                    place(&chunk.rows, answers, out, errors);
                }
                Err(e) => fail_all(&chunk.rows, e, errors),
            }
        }
    }

    /// One request for the chunk's rows; each row's numbers, in order.
    async fn infer_chunk(
        &self,
        target: &Connected,
        chunk: &Chunk<'_>,
        values: &[Option<Vec<f64>>],
        batched: bool,
    ) -> Result<Vec<Vec<f64>>> {
        if chunk.width > MAX_ROW_ELEMENTS {
            return Err(Error::invalid(format!(
                "the value has {} numbers, more than {MAX_ROW_ELEMENTS}",
                chunk.width
            )));
        }
        let numbers: Vec<f64> = chunk
            .rows
            .iter()
            .filter_map(|&row| values[row].as_deref())
            .flatten()
            .copied()
            .collect();
        let shape = if batched {
            vec![chunk.rows.len(), chunk.width]
        } else {
            vec![chunk.width]
        };
        let settings = &target.target;
        let tensor = input_tensor(chunk.input, settings.datatype, shape, numbers)?;
        let mut request = InferRequest::new().with_input(tensor).idempotent();
        if let Some(name) = &settings.output {
            request = request.with_output(name.clone());
        }
        let answer = target.connector.infer(&settings.model, request).await?;
        let output = chosen_output(answer, settings.output.as_deref())?;
        let numbers = output_numbers(&output)?;
        let rows = chunk.rows.len();
        if !batched {
            return Ok(vec![numbers]);
        }
        if output.shape().first() != Some(&rows) || numbers.len() % rows != 0 {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "output \"{}\" has shape {:?} for a batch of {rows} rows",
                    inferlink::error::printable(output.name().to_owned(), 64),
                    output.shape()
                ),
            ));
        }
        let per_row = numbers.len() / rows;
        Ok(numbers
            .chunks(per_row.max(1))
            .map(<[f64]>::to_vec)
            .collect())
    }
}

/// The input tensor of `datatype`; a number the datatype cannot hold
/// exactly (a fraction or an out-of-range value for an integer type, a null
/// element) is [`ErrorKind::InvalidInput`].
fn input_tensor(
    name: &str,
    datatype: DataType,
    shape: Vec<usize>,
    numbers: Vec<f64>,
) -> Result<Tensor> {
    if numbers.iter().any(|x| x.is_nan()) {
        return Err(Error::invalid("the value has a null or NaN element"));
    }
    fn integers<T: TryFrom<i64>>(numbers: &[f64], what: &str) -> Result<Vec<T>> {
        numbers
            .iter()
            .map(|&x| {
                let whole = (x.fract() == 0.0 && x.abs() < 9.0e15).then_some(x as i64);
                whole.and_then(|i| T::try_from(i).ok()).ok_or_else(|| {
                    Error::invalid(format!("the element {x} is not a whole {what} number"))
                })
            })
            .collect()
    }
    match datatype {
        DataType::Fp64 => Tensor::new(name, shape, numbers),
        DataType::Fp32 => Tensor::new(name, shape, numbers.iter().map(|&x| x as f32).collect()),
        DataType::Int64 => Tensor::new(name, shape, integers::<i64>(&numbers, "INT64")?),
        DataType::Int32 => Tensor::new(name, shape, integers::<i32>(&numbers, "INT32")?),
        other => Err(Error::new(
            ErrorKind::Unsupported,
            format!("infer sends FP32, FP64, INT32 or INT64 inputs, not {other}"),
        )),
    }
}

/// The output named in the target, or the response's first.
fn chosen_output(answer: InferResponse, name: Option<&str>) -> Result<Tensor> {
    match name {
        Some(name) => answer.into_output(name),
        None => answer
            .outputs
            .into_iter()
            .next()
            .ok_or_else(|| Error::new(ErrorKind::Protocol, "the model answered no output")),
    }
}

/// A numeric (or BOOL: 0 and 1) tensor's elements as `f64`.
fn output_numbers(tensor: &Tensor) -> Result<Vec<f64>> {
    fn widen<T: inferlink::tensor::Element>(
        tensor: &Tensor,
        to: impl Fn(T) -> f64,
    ) -> Result<Vec<f64>> {
        Ok(tensor.to_vec::<T>()?.into_iter().map(to).collect())
    }
    match tensor.datatype() {
        DataType::Fp64 => tensor.to_vec::<f64>(),
        DataType::Fp32 => widen(tensor, |x: f32| f64::from(x)),
        DataType::Fp16 => widen(tensor, |x: inferlink::tensor::f16| x.to_f64()),
        DataType::Bf16 => widen(tensor, |x: inferlink::tensor::bf16| x.to_f64()),
        DataType::Int8 => widen(tensor, |x: i8| f64::from(x)),
        DataType::Int16 => widen(tensor, |x: i16| f64::from(x)),
        DataType::Int32 => widen(tensor, |x: i32| f64::from(x)),
        DataType::Int64 => widen(tensor, |x: i64| x as f64),
        DataType::Uint8 => widen(tensor, |x: u8| f64::from(x)),
        DataType::Uint16 => widen(tensor, |x: u16| f64::from(x)),
        DataType::Uint32 => widen(tensor, |x: u32| f64::from(x)),
        DataType::Uint64 => widen(tensor, |x: u64| x as f64),
        DataType::Bool => widen(tensor, |x: bool| f64::from(u8::from(x))),
        DataType::Bytes => Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "output \"{}\" is BYTES; infer answers numbers",
                inferlink::error::printable(tensor.name().to_owned(), 64)
            ),
        )),
    }
}
