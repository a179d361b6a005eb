//! The SQL functions: one [`InferenceUdf`] per name, each an async scalar
//! function that answers a whole record batch at a time.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use datafusion::arrow::array::{
    Array, ArrayRef, Float64Array, ListBuilder, PrimitiveBuilder, StringArray, StructArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Field, Fields, Float32Type, Float64Type,
};
use datafusion::common::cast::as_string_array;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::async_udf::AsyncScalarUDFImpl;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use futures_util::StreamExt as _;
use inferlink::{EmbedRequest, Error, ErrorKind, GenerateRequest, RerankRequest, Result};

mod infer;

use crate::Shared;
use crate::target::Target;

/// What a function computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Task {
    /// `embed(target, text)`: a vector (`List<Float32>`).
    Embed,
    /// `rerank(target, query, document)`: a relevance score (`Float64`).
    Rerank,
    /// `generate(target, prompt)`: the generated text (`Utf8`).
    Generate,
    /// `infer(target, input_name, value)`: the output tensor's numbers
    /// (`List<Float64>`).
    Infer,
}

impl Task {
    fn word(self) -> &'static str {
        match self {
            Task::Embed => "embed",
            Task::Rerank => "rerank",
            Task::Generate => "generate",
            Task::Infer => "infer",
        }
    }

    /// Arguments, the target included.
    fn arity(self) -> usize {
        match self {
            Task::Embed | Task::Generate => 2,
            Task::Rerank | Task::Infer => 3,
        }
    }

    fn value_type(self) -> DataType {
        match self {
            Task::Embed => DataType::List(Arc::new(Field::new_list_field(DataType::Float32, true))),
            Task::Rerank => DataType::Float64,
            Task::Generate => DataType::Utf8,
            Task::Infer => DataType::List(Arc::new(Field::new_list_field(DataType::Float64, true))),
        }
    }
}

/// How a row whose call failed is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum OnError {
    /// The query fails with the row's error (`embed`, `rerank`, `generate`).
    Fail,
    /// The row's value is null and its `error` field says why (`try_embed`, …).
    Column,
}

/// One value per row: `None` for a null input (nothing sent).
enum Values {
    Vectors(Vec<Option<Vec<f32>>>),
    Scores(Vec<Option<f64>>),
    Texts(Vec<Option<String>>),
    Numbers(Vec<Option<Vec<f64>>>),
}

/// One of inferlink's SQL functions.
#[derive(Debug)]
pub(crate) struct InferenceUdf {
    name: String,
    task: Task,
    on_error: OnError,
    signature: Signature,
    shared: Arc<Shared>,
}

impl InferenceUdf {
    pub(crate) fn new(task: Task, on_error: OnError, shared: Arc<Shared>) -> Self {
        let name = match on_error {
            OnError::Fail => task.word().to_owned(),
            OnError::Column => format!("try_{}", task.word()),
        };
        InferenceUdf {
            name,
            task,
            on_error,
            signature: Signature::any(task.arity(), Volatility::Volatile),
            shared,
        }
    }
}

impl PartialEq for InferenceUdf {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl Eq for InferenceUdf {}

impl Hash for InferenceUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for InferenceUdf {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(match self.on_error {
            OnError::Fail => self.task.value_type(),
            OnError::Column => DataType::Struct(result_fields(self.task)),
        })
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        Err(DataFusionError::Internal(format!(
            "{} is an async function and runs only through DataFusion's async execution",
            self.name
        )))
    }
}

#[async_trait]
impl AsyncScalarUDFImpl for InferenceUdf {
    fn ideal_batch_size(&self) -> Option<usize> {
        Some(self.shared.options.batch_rows)
    }

    async fn invoke_async_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let columns = ColumnarValue::values_to_arrays(&args.args)?;
        // `infer`'s value is numbers, not text.
        let text_columns = match self.task {
            Task::Infer => &columns[..2],
            _ => &columns[..],
        };
        let tensors = match self.task {
            Task::Infer => infer::row_values(&columns[2])?,
            _ => Vec::new(),
        };
        let strings = text_columns
            .iter()
            .map(|c| cast(c, &DataType::Utf8))
            .collect::<std::result::Result<Vec<ArrayRef>, _>>()?;
        let texts = strings
            .iter()
            .map(|c| as_string_array(c).cloned())
            .collect::<DfResult<Vec<StringArray>>>()?;
        let (values, errors) = self.answer(&texts, &tensors, rows).await;
        self.shared
            .rows_done
            .fetch_add(rows as u64, Ordering::Relaxed);
        if self.on_error == OnError::Fail
            && let Some((row, error)) = errors
                .iter()
                .enumerate()
                .find_map(|(i, e)| Some((i, e.as_ref()?)))
        {
            let error = Arc::try_unwrap(Arc::clone(error))
                .unwrap_or_else(|shared| Error::new(shared.kind(), shared.to_string()))
                .with_context("function", self.name.clone())
                .with_context("row_in_batch", row.to_string());
            return Err(DataFusionError::External(Box::new(error)));
        }
        let array = build_values(values);
        Ok(ColumnarValue::Array(match self.on_error {
            OnError::Fail => array,
            OnError::Column => {
                let messages: StringArray = errors
                    .iter()
                    .map(|e| e.as_ref().map(ToString::to_string))
                    .collect();
                Arc::new(StructArray::try_new(
                    result_fields(self.task),
                    vec![array, Arc::new(messages)],
                    None,
                )?)
            }
        }))
    }
}

/// The fields of a `try_*` result: `value` and `error`.
fn result_fields(task: Task) -> Fields {
    Fields::from(vec![
        Field::new("value", task.value_type(), true),
        Field::new("error", DataType::Utf8, true),
    ])
}

fn build_values(values: Values) -> ArrayRef {
    match values {
        Values::Vectors(rows) => lists::<Float32Type>(rows),
        Values::Scores(rows) => Arc::new(Float64Array::from(rows)),
        Values::Texts(rows) => Arc::new(StringArray::from(rows)),
        Values::Numbers(rows) => lists::<Float64Type>(rows),
    }
}

/// A list column: one list per row, null for `None`.
fn lists<T: ArrowPrimitiveType>(rows: Vec<Option<Vec<T::Native>>>) -> ArrayRef {
    let mut builder = ListBuilder::new(PrimitiveBuilder::<T>::new());
    for row in rows {
        match row {
            Some(v) => {
                builder.values().append_slice(&v);
                builder.append(true);
            }
            None => builder.append(false),
        }
    }
    Arc::new(builder.finish())
}

/// Row indices grouped by their target string (nulls left out).
fn by_target(targets: &StringArray) -> Vec<(&str, Vec<usize>)> {
    let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for row in 0..targets.len() {
        if targets.is_null(row) {
            continue;
        }
        let text = targets.value(row);
        let slot = *index.entry(text).or_insert_with(|| {
            groups.push((text, Vec::new()));
            groups.len() - 1
        });
        groups[slot].1.push(row);
    }
    groups
}

/// Every row of `rows` fails with `error`.
fn fail_all(rows: &[usize], error: Error, errors: &mut [Option<Arc<Error>>]) {
    let error = Arc::new(error);
    for &row in rows {
        errors[row] = Some(Arc::clone(&error));
    }
}

/// Each row of `rows` gets its answer: its value, or its error.
fn place<T>(
    rows: &[usize],
    answers: Vec<Result<T>>,
    out: &mut [Option<T>],
    errors: &mut [Option<Arc<Error>>],
) {
    for (&row, answer) in rows.iter().zip(answers) {
        match answer {
            Ok(value) => out[row] = Some(value),
            Err(e) => errors[row] = Some(Arc::new(e)),
        }
    }
}

/// The text of `row`, or `None` when null or empty (never sent).
fn text_at(column: &StringArray, row: usize) -> Option<&str> {
    (!column.is_null(row))
        .then(|| column.value(row))
        .filter(|t| !t.is_empty())
}

impl InferenceUdf {
    /// Answers every row: its value (null where the input was null) and its
    /// error, if its call failed.
    async fn answer(
        &self,
        texts: &[StringArray],
        tensors: &[Option<Vec<f64>>],
        rows: usize,
    ) -> (Values, Vec<Option<Arc<Error>>>) {
        let mut errors: Vec<Option<Arc<Error>>> = vec![None; rows];
        let mut values = match self.task {
            Task::Embed => Values::Vectors(vec![None; rows]),
            Task::Rerank => Values::Scores(vec![None; rows]),
            Task::Generate => Values::Texts(vec![None; rows]),
            Task::Infer => Values::Numbers(vec![None; rows]),
        };
        for (target_text, group) in by_target(&texts[0]) {
            let target = match self.shared.target(target_text).await {
                Ok(t) => t,
                Err(e) => {
                    fail_all(&group, e, errors.as_mut_slice());
                    continue;
                }
            };
            match &mut values {
                Values::Vectors(out) => {
                    self.embed_rows(&target, &texts[1], &group, out, &mut errors)
                        .await
                }
                Values::Scores(out) => {
                    self.rerank_rows(&target, texts, &group, out, &mut errors)
                        .await
                }
                Values::Texts(out) => {
                    self.generate_rows(&target, &texts[1], &group, out, &mut errors)
                        .await
                }
                Values::Numbers(out) => {
                    self.infer_rows(&target, &texts[1], tensors, &group, out, &mut errors)
                        .await
                }
            }
        }
        (values, errors)
    }

    /// One embed call for the group's texts (the connector cuts it into
    /// requests by its `embed_max_items`/`embed_max_bytes` and sends them
    /// `embed_concurrency` at a time). When that call fails as invalid
    /// input, each text is sent alone, so only the rows at fault fail.
    async fn embed_rows(
        &self,
        target: &Connected,
        column: &StringArray,
        group: &[usize],
        out: &mut [Option<Vec<f32>>],
        errors: &mut [Option<Arc<Error>>],
    ) {
        let rows: Vec<usize> = group
            .iter()
            .copied()
            .filter(|&r| text_at(column, r).is_some())
            .collect();
        if rows.is_empty() {
            return;
        }
        let texts: Vec<String> = rows.iter().map(|&r| column.value(r).to_owned()).collect();
        let model = &target.target.model;
        match target
            .connector
            .embed(model, EmbedRequest::new(texts.clone()))
            .await
        {
            Ok(answer) if answer.vectors.len() == rows.len() => {
                for (row, vector) in rows.iter().zip(answer.vectors) {
                    out[*row] = Some(vector);
                }
            }
            Ok(answer) => {
                let e = Error::new(
                    ErrorKind::Protocol,
                    format!("{} vectors for {} texts", answer.vectors.len(), rows.len()),
                );
                fail_all(&rows, e, errors);
            }
            Err(e) if e.kind() == ErrorKind::InvalidInput && rows.len() > 1 => {
                let answers = self
                    .each(texts, |text| async move {
                        let mut answer = target
                            .connector
                            .embed(model, EmbedRequest::new([text]))
                            .await?;
                        answer.vectors.pop().ok_or_else(|| {
                            Error::new(ErrorKind::Protocol, "no vector for the text")
                        })
                    })
                    .await;
                place(&rows, answers, out, errors);
            }
            Err(e) => fail_all(&rows, e, errors),
        }
    }

    /// One rerank call per distinct query of the group, its documents in row
    /// order; each row gets its document's score.
    async fn rerank_rows(
        &self,
        target: &Connected,
        texts: &[StringArray],
        group: &[usize],
        out: &mut [Option<f64>],
        errors: &mut [Option<Arc<Error>>],
    ) {
        let (queries, documents) = (&texts[1], &texts[2]);
        let mut by_query: Vec<(&str, Vec<usize>)> = Vec::new();
        for &row in group {
            let (Some(query), Some(_)) = (text_at(queries, row), text_at(documents, row)) else {
                continue;
            };
            match by_query.iter_mut().find(|(q, _)| *q == query) {
                Some((_, rows)) => rows.push(row),
                None => by_query.push((query, vec![row])),
            }
        }
        for (query, rows) in by_query {
            let docs: Vec<String> = rows
                .iter()
                .map(|&r| documents.value(r).to_owned())
                .collect();
            let request = RerankRequest::new(query, docs);
            match target.connector.rerank(&target.target.model, request).await {
                Ok(answer) => {
                    for hit in answer.results {
                        if let Some(&row) = rows.get(hit.index) {
                            out[row] = Some(hit.score);
                        }
                    }
                    for &row in &rows {
                        if out[row].is_none() {
                            errors[row] = Some(Arc::new(Error::new(
                                ErrorKind::Protocol,
                                "the server returned no score for this document",
                            )));
                        }
                    }
                }
                Err(e) => fail_all(&rows, e, errors),
            }
        }
    }

    /// One generate call per row, at most `concurrency` in flight.
    async fn generate_rows(
        &self,
        target: &Connected,
        column: &StringArray,
        group: &[usize],
        out: &mut [Option<String>],
        errors: &mut [Option<Arc<Error>>],
    ) {
        let rows: Vec<usize> = group
            .iter()
            .copied()
            .filter(|&r| text_at(column, r).is_some())
            .collect();
        let prompts: Vec<String> = rows.iter().map(|&r| column.value(r).to_owned()).collect();
        let settings = &target.target;
        let answers = self
            .each(prompts, |prompt| async move {
                let mut request = GenerateRequest::prompt(prompt);
                if let Some(n) = settings.max_tokens {
                    request = request.max_tokens(n);
                }
                if let Some(t) = settings.temperature {
                    request = request.temperature(t);
                }
                request.options.seed = settings.seed;
                let answer = target.connector.generate(&settings.model, request).await?;
                Ok(answer.text)
            })
            .await;
        place(&rows, answers, out, errors);
    }

    /// Runs `call` on every item, at most `concurrency` at once; answers in
    /// item order.
    async fn each<I, T, F, Fut>(&self, items: Vec<I>, call: F) -> Vec<Result<T>>
    where
        F: Fn(I) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        futures_util::stream::iter(items.into_iter().map(call))
            .buffered(self.shared.options.concurrency)
            .collect()
            .await
    }
}

/// A target resolved and connected: what a group of rows is sent through.
#[derive(Clone)]
pub(crate) struct Connected {
    /// The parsed target.
    pub(crate) target: Target,
    /// A [`inferlink::LiveConnector`] for its selector (follows the registry).
    pub(crate) connector: Arc<dyn inferlink::InferenceConnector>,
}
