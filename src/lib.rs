//! # inferlink
//!
//! A library for hosts (search engines, workflow orchestrators, batch
//! pipelines) that need to reach the AI/ML services their users run.
//!
//! * **Extension registry** — ops engineers describe each service they run
//!   (MLflow, S3, KServe, Seldon, Triton, SageMaker …) as an
//!   [`ExtensionRecord`] in FuseML's format; records live in a pluggable
//!   [`RegistryStore`] ([`MemoryStore`], the durable embedded
//!   [`SqliteStore`], or, with the `store-postgres` feature, `PostgresStore`
//!   shared by many hosts).
//! * **Selector resolution** — a [`Registry`] keeps an in-memory index of the
//!   store and turns a [`Selector`] plus a [`Consumer`] (zone, project, user)
//!   into one concrete service, endpoint and credential set
//!   ([`Resolution`]), deterministically, explaining itself when nothing
//!   matches.
//! * **Workflow environments** — a [`WorkflowStep`]'s selectors become
//!   environment variables and `{{ extension.NAME.… }}` expressions.
//!
//! ```
//! use inferlink::{Consumer, MemoryStore, Registry, Selector};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let registry = Registry::open(MemoryStore::new()).await?;
//! registry.register_yaml(r#"
//! id: minio-dev
//! product: minio
//! version: "4.1.3"
//! zone: dev
//! services:
//!   - id: s3
//!     resource: s3
//!     category: object-storage
//!     endpoints:
//!       - url: http://minio.minio:9000
//!         type: internal
//!     credentials:
//!       - id: local
//!         configuration:
//!           AWS_SECRET_ACCESS_KEY: s3cr3t
//! "#).await?;
//!
//! let selector = Selector { service_resource: Some("s3".into()), ..Default::default() };
//! let found = registry.resolve(&selector, &Consumer::in_zone("dev"))?;
//! assert_eq!(found.endpoint().url, "http://minio.minio:9000");
//! // Secrets stay hidden unless revealed explicitly.
//! assert!(!format!("{found:?}").contains("s3cr3t"));
//! # Ok::<(), inferlink::Error>(())
//! # }).unwrap();
//! ```
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]

pub mod connector;
pub mod crypto;
pub mod env;
pub mod format;
pub mod import;
pub mod model;
pub mod registry;
pub mod resolve;
pub mod store;
pub mod version;

// The light core (errors, secrets, tensors, the connector API and the
// transport) lives in `inferlink-core`, which connector crates depend on
// alone; it is re-exported here under the same paths.
#[cfg(feature = "http")]
pub use inferlink_core::transport;
pub use inferlink_core::{error, kit, prelude, secret, target, tensor};

/// The attribute macro connector crates put on their `InferenceConnector`
/// and `ConnectorFactory` impls (re-exported from `async-trait`, so they need
/// not depend on it themselves).
pub use async_trait::async_trait;
pub use connector::{
    ByteStream, Capabilities, ConnectorFactory, ConnectorInfo, Connectors, Health, InferStream,
    InferenceConnector, InferenceConnectorExt, LiveConnector, ModelDescription, ModelInfo,
    ModelListing, ModelMetadata, ModelReadiness, ModelRef, RawInvocation, RawRequest, RawResponse,
    RawStream, StreamingInference, StreamingInvocation, TensorInference, TensorSpec,
};
pub use connector::{
    ChatMessage, ChatRole, EmbedRequest, EmbedResponse, Embedding, FinishReason, GenerateDelta,
    GenerateInput, GenerateOptions, GenerateRequest, GenerateResponse, GenerateStream, Generation,
    RerankHit, RerankRequest, RerankResponse, Reranking, StreamingGeneration, Usage,
};
pub use crypto::{EnvKeyProvider, FileKeyProvider, KeyProvider, StaticKeyProvider};
pub use env::{EnvEntry, StepEnvironment, StepInput, WorkflowStep};
pub use error::{Error, ErrorKind, Result};
pub use inferlink_core::{ConfigValue, ConnectTarget, ToConnectTarget};
pub use model::{
    Configuration, Credentials, Endpoint, EndpointType, ExtensionRecord, Scope,
    SecretConfiguration, Service,
};
pub use registry::{LiveResolution, RecordValidator, Registry};
pub use resolve::{Consumer, Resolution, Selector};
pub use secret::{HIDDEN, Secret};
#[cfg(feature = "store-postgres")]
pub use store::PostgresStore;
#[cfg(feature = "store-sqlite")]
pub use store::SqliteStore;
pub use store::{
    Change, ChangeEvent, ChangeStream, ListFilter, Listing, MemoryStore, PutMode, RegistryStore,
    RegistryStoreExt, Revision, StoredRecord, WriteOp,
};
pub use tensor::{
    DataType, InferRequest, InferResponse, Parameter, Parameters, Tensor, TensorData,
};
