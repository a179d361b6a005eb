//! Triton's gRPC extension messages (service `inference.GRPCInferenceService`),
//! written by hand from the field facts in the protocol research (field names,
//! numbers and types of Triton's `grpc_service.proto` and `model_config.proto`).
//! Only the RPCs this crate makes are here; the OIP messages come from
//! `inferlink_oip::proto`. Messages are decoded leniently: prost skips fields
//! it does not know, so [`ModelConfig`] keeps only the summary fields.

use std::collections::HashMap;

use inferlink_oip::proto::ModelInferResponse;

/// RPC paths.
pub(crate) mod path {
    pub(crate) const STREAM_INFER: &str = "/inference.GRPCInferenceService/ModelStreamInfer";
    pub(crate) const MODEL_CONFIG: &str = "/inference.GRPCInferenceService/ModelConfig";
    pub(crate) const MODEL_STATISTICS: &str = "/inference.GRPCInferenceService/ModelStatistics";
    pub(crate) const REPOSITORY_INDEX: &str = "/inference.GRPCInferenceService/RepositoryIndex";
    pub(crate) const REPOSITORY_LOAD: &str = "/inference.GRPCInferenceService/RepositoryModelLoad";
    pub(crate) const REPOSITORY_UNLOAD: &str =
        "/inference.GRPCInferenceService/RepositoryModelUnload";
}

/// `ModelStreamInferResponse { error_message = 1; infer_response = 2 }`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelStreamInferResponse {
    #[prost(string, tag = "1")]
    pub error_message: String,
    #[prost(message, optional, tag = "2")]
    pub infer_response: Option<ModelInferResponse>,
}

/// `ModelConfigRequest { name = 1; version = 2 }`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelConfigRequest {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub version: String,
}

/// `ModelConfigResponse { config = 1 }`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelConfigResponse {
    #[prost(message, optional, tag = "1")]
    pub config: Option<ModelConfig>,
}

/// The summary fields of Triton's `ModelConfig`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelConfig {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub platform: String,
    #[prost(int32, tag = "4")]
    pub max_batch_size: i32,
    #[prost(message, repeated, tag = "5")]
    pub input: Vec<ModelInput>,
    #[prost(message, repeated, tag = "6")]
    pub output: Vec<ModelOutput>,
    #[prost(message, optional, tag = "13")]
    pub sequence_batching: Option<Empty>,
    #[prost(string, tag = "17")]
    pub backend: String,
    #[prost(message, optional, tag = "19")]
    pub model_transaction_policy: Option<ModelTransactionPolicy>,
}

/// `ModelInput { name = 1; data_type = 2 (enum); dims = 4; optional = 8 }`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelInput {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    #[prost(int64, repeated, tag = "4")]
    pub dims: Vec<i64>,
    #[prost(bool, tag = "8")]
    pub optional: bool,
}

/// `ModelOutput { name = 1; data_type = 2 (enum); dims = 3 }`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelOutput {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    #[prost(int64, repeated, tag = "3")]
    pub dims: Vec<i64>,
}

/// `ModelTransactionPolicy { decoupled = 1 }`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelTransactionPolicy {
    #[prost(bool, tag = "1")]
    pub decoupled: bool,
}

/// `ModelStatisticsRequest { name = 1; version = 2 }`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelStatisticsRequest {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub version: String,
}

/// `ModelStatisticsResponse { model_stats = 1 }`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelStatisticsResponse {
    #[prost(message, repeated, tag = "1")]
    pub model_stats: Vec<ModelStatistics>,
}

/// `ModelStatistics` (fields 1–6; batch, memory and response statistics skipped).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelStatistics {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub version: String,
    #[prost(uint64, tag = "3")]
    pub last_inference: u64,
    #[prost(uint64, tag = "4")]
    pub inference_count: u64,
    #[prost(uint64, tag = "5")]
    pub execution_count: u64,
    #[prost(message, optional, tag = "6")]
    pub inference_stats: Option<InferStatistics>,
}

/// `InferStatistics { success = 1 … cache_miss = 8 }`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct InferStatistics {
    #[prost(message, optional, tag = "1")]
    pub success: Option<StatisticDuration>,
    #[prost(message, optional, tag = "2")]
    pub fail: Option<StatisticDuration>,
    #[prost(message, optional, tag = "3")]
    pub queue: Option<StatisticDuration>,
    #[prost(message, optional, tag = "4")]
    pub compute_input: Option<StatisticDuration>,
    #[prost(message, optional, tag = "5")]
    pub compute_infer: Option<StatisticDuration>,
    #[prost(message, optional, tag = "6")]
    pub compute_output: Option<StatisticDuration>,
    #[prost(message, optional, tag = "7")]
    pub cache_hit: Option<StatisticDuration>,
    #[prost(message, optional, tag = "8")]
    pub cache_miss: Option<StatisticDuration>,
}

/// `StatisticDuration { count = 1; ns = 2 }`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StatisticDuration {
    #[prost(uint64, tag = "1")]
    pub count: u64,
    #[prost(uint64, tag = "2")]
    pub ns: u64,
}

/// `RepositoryIndexRequest { repository_name = 1; ready = 2 }`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RepositoryIndexRequest {
    #[prost(string, tag = "1")]
    pub repository_name: String,
    #[prost(bool, tag = "2")]
    pub ready: bool,
}

/// `RepositoryIndexResponse { models = 1 }`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RepositoryIndexResponse {
    #[prost(message, repeated, tag = "1")]
    pub models: Vec<ModelIndex>,
}

/// `ModelIndex { name = 1; version = 2; state = 3; reason = 4 }`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelIndex {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub version: String,
    #[prost(string, tag = "3")]
    pub state: String,
    #[prost(string, tag = "4")]
    pub reason: String,
}

/// `RepositoryModelLoadRequest` / `…UnloadRequest`
/// `{ repository_name = 1; model_name = 2; parameters = 3 }`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RepositoryModelRequest {
    #[prost(string, tag = "1")]
    pub repository_name: String,
    #[prost(string, tag = "2")]
    pub model_name: String,
    #[prost(map = "string, message", tag = "3")]
    pub parameters: HashMap<String, ModelRepositoryParameter>,
}

/// The (empty) load and unload responses.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Empty {}

/// `ModelRepositoryParameter oneof { bool_param = 1; int64_param = 2; string_param = 3; bytes_param = 4 }`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelRepositoryParameter {
    #[prost(oneof = "RepositoryParameterChoice", tags = "1, 2, 3, 4")]
    pub parameter_choice: Option<RepositoryParameterChoice>,
}

/// The value of a [`ModelRepositoryParameter`] (variant names follow the proto).
#[allow(clippy::enum_variant_names)]
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum RepositoryParameterChoice {
    #[prost(bool, tag = "1")]
    BoolParam(bool),
    #[prost(int64, tag = "2")]
    Int64Param(i64),
    #[prost(string, tag = "3")]
    StringParam(String),
    #[prost(bytes = "vec", tag = "4")]
    BytesParam(Vec<u8>),
}

/// Triton's `DataType` enum (model_config.proto) as the `TYPE_*` name the
/// REST model configuration uses.
pub(crate) fn data_type_name(value: i32) -> String {
    let name = match value {
        1 => "TYPE_BOOL",
        2 => "TYPE_UINT8",
        3 => "TYPE_UINT16",
        4 => "TYPE_UINT32",
        5 => "TYPE_UINT64",
        6 => "TYPE_INT8",
        7 => "TYPE_INT16",
        8 => "TYPE_INT32",
        9 => "TYPE_INT64",
        10 => "TYPE_FP16",
        11 => "TYPE_FP32",
        12 => "TYPE_FP64",
        13 => "TYPE_STRING",
        14 => "TYPE_BF16",
        0 => "TYPE_INVALID",
        other => return format!("TYPE_{other}"),
    };
    name.to_owned()
}
