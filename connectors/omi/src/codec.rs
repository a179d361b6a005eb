//! OMI messages ↔ inferlink's model: the typed [`OmiStatus`], the batch
//! types ([`Files`], [`RunOutcome`], [`ItemError`]) and the tensor mapping.
//!
//! # Tensors as files
//!
//! An OMI model takes named input **files** (bytes) per batch item and gives
//! named output files back. [`InferenceConnector::infer`](inferlink_core::InferenceConnector::infer)
//! carries them as `BYTES` tensors of shape `[batch]`:
//!
//! * each input tensor is named after an input file the model declares
//!   (`text`, `input`, `image.png`, …); element *i* is that file's bytes for
//!   batch item *i*; every input tensor has the same batch size (≥ 1);
//! * each output file becomes one `BYTES` tensor of shape `[batch]` named
//!   after the file (`results.json`, …), with the declared media type as
//!   its `media_type` parameter;
//! * other datatypes or ranks are [`ErrorKind::InvalidInput`]: OMI has no
//!   numeric tensors (encode them into a file the model understands, e.g.
//!   JSON, and send that).

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;
use inferlink_core::{
    DataType, Error, ErrorKind, InferRequest, InferResponse, ModelMetadata, ModelRef, Result,
    Tensor, TensorSpec,
};

use crate::error::{is_success, protocol, status_code_error};
use crate::proto;

/// One batch item's files: file name → bytes.
pub type Files = BTreeMap<String, Bytes>;

/// The output key chassis uses for a failed item's message.
pub const ERROR_FILE: &str = "error";

/// The tensor parameter that carries an output file's declared media type.
pub const MEDIA_TYPE_PARAMETER: &str = "media_type";

/// What an OMI server says about itself and its one model (`Status`).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct OmiStatus {
    /// The HTTP-like status code inside the message (200 when the model is loaded).
    pub status_code: i32,
    /// The status word (`OK`, `Internal Server Error`).
    pub status: String,
    /// The server's message (`Model Initialized Successfully.`, `Model Already Initialized.`).
    pub message: String,
    /// Name, version, author, type and source of the model.
    pub model: OmiModelInfo,
    /// Free-text description.
    pub description: OmiDescription,
    /// Declared input files.
    pub inputs: Vec<OmiInput>,
    /// Declared output files.
    pub outputs: Vec<OmiOutput>,
    /// Resources the model asks for.
    pub resources: OmiResources,
    /// The model's own timeouts (strings such as `60s`, informational).
    pub timeout: OmiTimeouts,
    /// Optional features.
    pub features: OmiFeatures,
}

/// `ModelInfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OmiModelInfo {
    /// `model_name`.
    pub name: String,
    /// `model_version`.
    pub version: String,
    /// `model_author`.
    pub author: String,
    /// `model_type` (chassis: `grpc`).
    pub model_type: String,
    /// `source` (chassis: `chassis`).
    pub source: String,
}

/// `ModelDescription`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OmiDescription {
    /// `summary`.
    pub summary: String,
    /// `details`.
    pub details: String,
    /// `technical`.
    pub technical: String,
    /// `performance`.
    pub performance: String,
}

/// `ModelInput`: one input file the model takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OmiInput {
    /// The file name (the key in each batch item).
    pub filename: String,
    /// Media types the model accepts for it.
    pub accepted_media_types: Vec<String>,
    /// Largest size, as the model states it (`1M`).
    pub max_size: String,
    /// Description.
    pub description: String,
}

/// `ModelOutput`: one output file the model gives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OmiOutput {
    /// The file name.
    pub filename: String,
    /// Its media type.
    pub media_type: String,
    /// Largest size, as the model states it.
    pub max_size: String,
    /// Description.
    pub description: String,
}

/// `ModelResources`.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct OmiResources {
    /// `required_ram` (`512M`).
    pub required_ram: String,
    /// `num_cpus`.
    pub num_cpus: f32,
    /// `num_gpus`.
    pub num_gpus: i32,
}

/// `ModelTimeout`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OmiTimeouts {
    /// How long `Status` may take (`60s`).
    pub status: String,
    /// How long `Run` may take.
    pub run: String,
}

/// `ModelFeatures`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OmiFeatures {
    /// `adversarial_defense`.
    pub adversarial_defense: bool,
    /// `batch_size`: how many items the model processes at once (the server
    /// splits larger runs itself).
    pub batch_size: i32,
    /// `retrainable`.
    pub retrainable: bool,
    /// `results_format`.
    pub results_format: String,
    /// `drift_format`.
    pub drift_format: String,
    /// `explanation_format`.
    pub explanation_format: String,
}

impl OmiStatus {
    /// True when the model is loaded and can run (`status_code` 2xx).
    pub fn is_ready(&self) -> bool {
        is_success(self.status_code)
    }

    /// The declared input file with this name.
    pub fn input(&self, filename: &str) -> Option<&OmiInput> {
        self.inputs.iter().find(|i| i.filename == filename)
    }

    /// The declared output file with this name.
    pub fn output(&self, filename: &str) -> Option<&OmiOutput> {
        self.outputs.iter().find(|o| o.filename == filename)
    }

    /// The error for a status that is not ready (`None` when ready).
    pub(crate) fn error(&self) -> Option<Error> {
        (!self.is_ready())
            .then(|| status_code_error("Status", self.status_code, &self.status, &self.message))
    }

    /// The model metadata view (see `docs/connectors/omi.md`): each file is a
    /// `BYTES` tensor of shape `[-1]` (one element per batch item); media
    /// types, sizes and descriptions are tensor parameters; everything else
    /// is in `properties` under dotted keys (`resources.required_ram`,
    /// `timeout.run`, `features.batch_size`, …).
    pub fn to_model_metadata(&self) -> ModelMetadata {
        let spec = |name: &str, params: &[(&str, String)]| {
            let mut s = TensorSpec::new(name, DataType::Bytes, vec![-1]);
            for (k, v) in params {
                if !v.is_empty() {
                    s.parameters.insert((*k).to_owned(), v.clone().into());
                }
            }
            s
        };
        let inputs = self
            .inputs
            .iter()
            .map(|i| {
                spec(
                    &i.filename,
                    &[
                        ("accepted_media_types", i.accepted_media_types.join(",")),
                        ("max_size", i.max_size.clone()),
                        ("description", i.description.clone()),
                    ],
                )
            })
            .collect();
        let outputs = self
            .outputs
            .iter()
            .map(|o| {
                spec(
                    &o.filename,
                    &[
                        (MEDIA_TYPE_PARAMETER, o.media_type.clone()),
                        ("max_size", o.max_size.clone()),
                        ("description", o.description.clone()),
                    ],
                )
            })
            .collect();
        let mut properties = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            if !v.is_empty() {
                properties.insert(k.to_owned(), v);
            }
        };
        put("status_code", self.status_code.to_string());
        put("status", self.status.clone());
        put("message", self.message.clone());
        put("model_author", self.model.author.clone());
        put("model_type", self.model.model_type.clone());
        put("source", self.model.source.clone());
        put("description.summary", self.description.summary.clone());
        put("description.details", self.description.details.clone());
        put("description.technical", self.description.technical.clone());
        put(
            "description.performance",
            self.description.performance.clone(),
        );
        put(
            "resources.required_ram",
            self.resources.required_ram.clone(),
        );
        put("resources.num_cpus", self.resources.num_cpus.to_string());
        put("resources.num_gpus", self.resources.num_gpus.to_string());
        put("timeout.status", self.timeout.status.clone());
        put("timeout.run", self.timeout.run.clone());
        let f = &self.features;
        put(
            "features.adversarial_defense",
            f.adversarial_defense.to_string(),
        );
        put("features.batch_size", f.batch_size.to_string());
        put("features.retrainable", f.retrainable.to_string());
        put("features.results_format", f.results_format.clone());
        put("features.drift_format", f.drift_format.clone());
        put("features.explanation_format", f.explanation_format.clone());
        ModelMetadata {
            name: self.model.name.clone(),
            versions: if self.model.version.is_empty() {
                Vec::new()
            } else {
                vec![self.model.version.clone()]
            },
            platform: if self.model.model_type.is_empty() {
                "omi".to_owned()
            } else {
                format!("omi/{}", self.model.model_type)
            },
            inputs,
            outputs,
            properties,
        }
    }
}

impl From<proto::StatusResponse> for OmiStatus {
    fn from(r: proto::StatusResponse) -> Self {
        let info = r.model_info.unwrap_or_default();
        let d = r.description.unwrap_or_default();
        let res = r.resources.unwrap_or_default();
        let t = r.timeout.unwrap_or_default();
        let f = r.features.unwrap_or_default();
        OmiStatus {
            status_code: r.status_code,
            status: r.status,
            message: r.message,
            model: OmiModelInfo {
                name: info.model_name,
                version: info.model_version,
                author: info.model_author,
                model_type: info.model_type,
                source: info.source,
            },
            description: OmiDescription {
                summary: d.summary,
                details: d.details,
                technical: d.technical,
                performance: d.performance,
            },
            inputs: r
                .inputs
                .into_iter()
                .map(|i| OmiInput {
                    filename: i.filename,
                    accepted_media_types: i.accepted_media_types,
                    max_size: i.max_size,
                    description: i.description,
                })
                .collect(),
            outputs: r
                .outputs
                .into_iter()
                .map(|o| OmiOutput {
                    filename: o.filename,
                    media_type: o.media_type,
                    max_size: o.max_size,
                    description: o.description,
                })
                .collect(),
            resources: OmiResources {
                required_ram: res.required_ram,
                num_cpus: res.num_cpus,
                num_gpus: res.num_gpus,
            },
            timeout: OmiTimeouts {
                status: t.status,
                run: t.run,
            },
            features: OmiFeatures {
                adversarial_defense: f.adversarial_defense,
                batch_size: f.batch_size,
                retrainable: f.retrainable,
                results_format: f.results_format,
                drift_format: f.drift_format,
                explanation_format: f.explanation_format,
            },
        }
    }
}

/// Why one batch item failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemError {
    /// The item's position in the request (0-based).
    pub index: usize,
    /// The model's message (the `error` file, UTF-8 with invalid bytes replaced),
    /// or a note that it gave none.
    pub message: String,
    /// The item's `success` flag as sent. Chassis leaves it `true` for an
    /// item whose predict function raised and reports the failure only as an
    /// `error` file; both count as failures.
    pub success_flag: bool,
}

impl fmt::Display for ItemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "item {}: {}", self.index, self.message)
    }
}

/// The result of one batch item: its output files, or why it failed.
pub type ItemResult = std::result::Result<Files, ItemError>;

/// The answer to a `Run`: the server's status words and one result per
/// input item, in request order (the client has checked that there are as
/// many outputs as inputs).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RunOutcome {
    /// `status_code` of the response (2xx; other codes are errors of the call).
    pub status_code: i32,
    /// `status` (`OK`).
    pub status: String,
    /// `message` (`Inference executed`).
    pub message: String,
    /// One result per input item.
    pub items: Vec<ItemResult>,
}

impl RunOutcome {
    /// True when every item succeeded.
    pub fn all_succeeded(&self) -> bool {
        self.items.iter().all(Result::is_ok)
    }

    /// The failed items.
    pub fn failures(&self) -> impl Iterator<Item = &ItemError> {
        self.items.iter().filter_map(|r| r.as_ref().err())
    }

    /// Every item's files, or — when any item failed — one
    /// [`ErrorKind::ModelError`] (not retryable) whose message says how many
    /// items failed and quotes the first few, with context `failed_items`
    /// listing every failed index (`1,3`). This is what the
    /// [`InferenceConnector`](inferlink_core::InferenceConnector) methods return.
    pub fn into_files(self) -> Result<Vec<Files>> {
        let failed: Vec<&ItemError> = self.failures().collect();
        if failed.is_empty() {
            return Ok(self
                .items
                .into_iter()
                .map(|r| r.unwrap_or_default())
                .collect());
        }
        let shown: Vec<String> = failed
            .iter()
            .take(3)
            .map(|e| format!("item {}: {}", e.index, clip(&e.message, 300)))
            .collect();
        let more = if failed.len() > 3 {
            format!("; and {} more", failed.len() - 3)
        } else {
            String::new()
        };
        let indices: Vec<String> = failed.iter().map(|e| e.index.to_string()).collect();
        Err(Error::new(
            ErrorKind::ModelError,
            format!(
                "the model failed on {} of {} batch item(s): {}{more}",
                failed.len(),
                self.items.len(),
                shown.join("; ")
            ),
        )
        .with_context("failed_items", indices.join(","))
        .with_retryable(false))
    }
}

fn clip(text: &str, max: usize) -> String {
    let printable: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if printable.chars().count() <= max {
        printable
    } else {
        let cut: String = printable.chars().take(max).collect();
        format!("{cut}…")
    }
}

/// Checks a `RunResponse` against the request's item count and splits it
/// into per-item results.
///
/// Errors: a non-2xx `status_code` (kind by
/// [`status_code_kind`](crate::error::status_code_kind)); a number of
/// outputs different from the number of inputs ([`ErrorKind::ModelError`]:
/// chassis answers that way when a batch predict function raises, and the
/// client cannot tell which items the outputs belong to).
pub fn decode_run(response: proto::RunResponse, inputs: usize) -> Result<RunOutcome> {
    if !is_success(response.status_code) {
        return Err(status_code_error(
            "Run",
            response.status_code,
            &response.status,
            &response.message,
        ));
    }
    if response.outputs.len() != inputs {
        return Err(Error::new(
            ErrorKind::ModelError,
            format!(
                "the OMI server answered {} output item(s) for {inputs} input item(s); \
                 the model failed on the batch (a batch predict function that raises \
                 drops every output) and no item can be trusted",
                response.outputs.len()
            ),
        )
        .with_vendor_message(response.message)
        .with_context("inputs", inputs.to_string())
        .with_context("outputs", response.outputs.len().to_string())
        .with_retryable(false));
    }
    let items = response
        .outputs
        .into_iter()
        .enumerate()
        .map(|(index, item)| classify_item(index, item))
        .collect();
    Ok(RunOutcome {
        status_code: response.status_code,
        status: response.status,
        message: response.message,
        items,
    })
}

/// Decodes the protobuf bytes of a `Run` answer and reads them like
/// [`decode_run`]: the entry point of the fuzz targets and their corpus
/// replay (the generated message types are private to this crate).
#[doc(hidden)]
pub fn decode_run_bytes(bytes: &[u8], inputs: usize) -> Result<RunOutcome> {
    let response = <proto::RunResponse as prost::Message>::decode(bytes)
        .map_err(|e| protocol(format!("the Run answer is not a RunResponse ({e})")))?;
    decode_run(response, inputs)
}

/// Decodes the protobuf bytes of a `Status` answer into [`OmiStatus`] (fuzz
/// entry point, see [`decode_run_bytes`]).
#[doc(hidden)]
pub fn decode_status_bytes(bytes: &[u8]) -> Result<OmiStatus> {
    let response = <proto::StatusResponse as prost::Message>::decode(bytes)
        .map_err(|e| protocol(format!("the Status answer is not a StatusResponse ({e})")))?;
    Ok(OmiStatus::from(response))
}

/// One output item: failed when `success` is false, or when its only file
/// is `error` (chassis' per-item exception report, `success` left true).
fn classify_item(index: usize, item: proto::OutputItem) -> ItemResult {
    let error_only = item.output.len() == 1 && item.output.contains_key(ERROR_FILE);
    if item.success && !error_only {
        return Ok(item.output.into_iter().collect());
    }
    let message = match item.output.get(ERROR_FILE) {
        Some(text) if !text.is_empty() => String::from_utf8_lossy(text).into_owned(),
        _ => "the model reported a failure without a message".to_owned(),
    };
    Err(ItemError {
        index,
        message,
        success_flag: item.success,
    })
}

/// The batch items of a tensor request (see the module documentation).
///
/// Errors are [`ErrorKind::InvalidInput`] naming the tensor: not `BYTES`,
/// not rank 1, batch sizes that differ, an empty batch, no inputs, a name
/// the model does not declare (when it declares any), or a name given twice.
pub fn items_from_request(request: &InferRequest, status: &OmiStatus) -> Result<Vec<Files>> {
    if request.inputs.is_empty() {
        return Err(Error::invalid(
            "an OMI request needs at least one input file tensor",
        ));
    }
    let mut batch: Option<usize> = None;
    let mut columns: Vec<(&str, Vec<Bytes>)> = Vec::with_capacity(request.inputs.len());
    for tensor in &request.inputs {
        let name = tensor.name();
        let fail = |why: String| {
            Error::invalid(format!("input \"{}\" {why}", name.escape_debug()))
                .with_context("tensor", name.to_owned())
        };
        if tensor.datatype() != DataType::Bytes {
            return Err(fail(format!(
                "is {}; OMI inputs are files, sent as a BYTES tensor of shape [batch] \
                 (encode numbers into a file the model reads, e.g. JSON)",
                tensor.datatype()
            )));
        }
        if tensor.shape().len() != 1 {
            return Err(fail(format!(
                "has shape {:?}; OMI file tensors have shape [batch] (one file per item)",
                tensor.shape()
            )));
        }
        let n = tensor.shape()[0];
        if n == 0 {
            return Err(fail("has no batch items".to_owned()));
        }
        match batch {
            None => batch = Some(n),
            Some(b) if b != n => {
                return Err(fail(format!(
                    "has {n} batch item(s) but the first input has {b}"
                )));
            }
            Some(_) => {}
        }
        if columns.iter().any(|(c, _)| *c == name) {
            return Err(fail("is given twice".to_owned()));
        }
        if !status.inputs.is_empty() && status.input(name).is_none() {
            let names: Vec<&str> = status.inputs.iter().map(|i| i.filename.as_str()).collect();
            return Err(fail(format!(
                "is not an input file of model \"{}\"; its input files: [{}]",
                status.model.name,
                names.join(", ")
            )));
        }
        columns.push((name, tensor.to_byte_elements()?));
    }
    let n = batch.unwrap_or(0);
    let mut items = vec![Files::new(); n];
    for (name, elements) in columns {
        for (item, bytes) in items.iter_mut().zip(elements) {
            item.insert(name.to_owned(), bytes);
        }
    }
    Ok(items)
}

/// The tensor response of a successful run (see the module documentation).
///
/// Every item must have the same output files (else a
/// [`ErrorKind::Protocol`] error names the item and file); requested outputs
/// that no item has are [`ErrorKind::NotFound`].
pub fn response_from_items(
    model: &ModelRef,
    status: &OmiStatus,
    request: &InferRequest,
    items: Vec<Files>,
) -> Result<InferResponse> {
    let n = items.len();
    let names: Vec<String> = items
        .first()
        .map(|f| f.keys().cloned().collect())
        .unwrap_or_default();
    for (i, item) in items.iter().enumerate() {
        if item.len() != names.len() || !names.iter().all(|k| item.contains_key(k)) {
            let theirs: Vec<&str> = item.keys().map(String::as_str).collect();
            return Err(protocol(format!(
                "batch item {i} has output files [{}] but item 0 has [{}]; OMI file tensors \
                 need the same files for every item (use OmiClient::run for ragged outputs)",
                theirs.join(", "),
                names.join(", ")
            )));
        }
    }
    let wanted: Vec<&str> = if request.outputs.is_empty() {
        names.iter().map(String::as_str).collect()
    } else {
        let mut wanted = Vec::new();
        for o in &request.outputs {
            if !names.contains(&o.name) {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "the model gave no output file \"{}\"; it gave [{}]",
                        o.name.escape_debug(),
                        names.join(", ")
                    ),
                )
                .with_context("tensor", o.name.clone()));
            }
            wanted.push(o.name.as_str());
        }
        wanted
    };
    let mut columns: BTreeMap<&str, Vec<Bytes>> =
        wanted.iter().map(|k| (*k, Vec::with_capacity(n))).collect();
    for mut item in items {
        for (name, column) in columns.iter_mut() {
            column.push(item.remove(*name).unwrap_or_default());
        }
    }
    let mut outputs = Vec::with_capacity(wanted.len());
    for name in wanted {
        let elements = columns.remove(name).unwrap_or_default();
        let mut tensor = Tensor::from_byte_elements(name, vec![n], elements)?;
        if let Some(media) = status.output(name).map(|o| o.media_type.as_str())
            && !media.is_empty()
        {
            tensor = tensor.with_parameter(MEDIA_TYPE_PARAMETER, media);
        }
        outputs.push(tensor);
    }
    Ok(InferResponse {
        model_name: if status.model.name.is_empty() {
            model.name.clone()
        } else {
            status.model.name.clone()
        },
        model_version: (!status.model.version.is_empty()).then(|| status.model.version.clone()),
        id: request.id.clone(),
        outputs,
        parameters: Default::default(),
    })
}

/// The protobuf request of a batch.
pub(crate) fn run_request(
    items: Vec<Files>,
    detect_drift: bool,
    explain: bool,
) -> proto::RunRequest {
    proto::RunRequest {
        inputs: items
            .into_iter()
            .map(|files| proto::InputItem {
                input: files.into_iter().collect(),
            })
            .collect(),
        detect_drift,
        explain,
    }
}

#[cfg(test)]
mod tests;
