//! inferlink's SQL functions on [Apache Ballista](https://datafusion.apache.org/ballista/),
//! DataFusion's distributed scheduler.
//!
//! Ballista ships plans from its clients to a scheduler and from the
//! scheduler to executors, naming scalar functions by name; each process
//! looks the name up in its own function registry. So every process
//! registers inferlink's functions ([`inferlink_datafusion::InferenceFunctions`]):
//!
//! * the **client** (`inferlink sql --cluster df://HOST:PORT`, [`cluster_context`])
//!   and the **scheduler** (`inferlink-ballista-scheduler`,
//!   [`scheduler_session_builder`]) register *plan-only* functions: they
//!   plan queries but never call a model;
//! * each **executor** (`inferlink-ballista-executor`,
//!   [`executor_function_registry`]) opens the registry itself (an SQLite
//!   file or the shared PostgreSQL store, with its own key) and registers
//!   functions that call the models. No credential travels in a plan.
//!
//! Docs: `docs/sql.md` ("Many machines: Ballista").
#![deny(missing_docs)]

use std::sync::Arc;

use ballista::prelude::SessionContextExt as _;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::utils::default_session_builder;
use ballista_scheduler::scheduler_server::SessionBuilder;
use datafusion::error::Result as DfResult;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::registry::FunctionRegistry as _;
use datafusion::prelude::{SessionConfig, SessionContext};
use inferlink::{Connectors, Error, ErrorKind, Result};
use inferlink_datafusion::InferenceFunctions;

pub mod store;

/// The scheme of a cluster address: `df://HOST:PORT` (Ballista's own
/// `df://` form; the scheduler's gRPC port).
pub const CLUSTER_SCHEME: &str = "df://";

/// Every connector factory an executor can call through (the same set as
/// the `inferlink` CLI), with the operator's host transport settings from
/// the environment (`INFERLINK_ENDPOINT_POLICY`, `INFERLINK_ALLOW_FILE_DIRS`).
pub fn executor_connectors() -> Result<Connectors> {
    inferlink_connectors::from_env()
}

/// The scheduler's session builder: Ballista's default session with
/// inferlink's functions registered plan-only.
pub fn scheduler_session_builder() -> SessionBuilder {
    Arc::new(|config: SessionConfig| {
        let mut state = default_session_builder(config)?;
        for udf in InferenceFunctions::plan_only().udfs() {
            state.register_udf(Arc::new(udf))?;
        }
        Ok(state)
    })
}

/// An executor's function registry: Ballista's defaults and `functions`
/// (which call the models through the executor's own registry).
pub fn executor_function_registry(functions: &InferenceFunctions) -> BallistaFunctionRegistry {
    let mut registry = BallistaFunctionRegistry::default();
    for udf in functions.udfs() {
        registry
            .scalar_functions
            .insert(udf.name().to_owned(), Arc::new(udf));
    }
    registry
}

/// A client session that runs its queries on the Ballista scheduler at
/// `url` (`df://HOST:PORT`), with inferlink's functions registered
/// plan-only (the executors run them). Only loopback and other hosts the
/// operator names are reached; an address without the `df://` scheme is an
/// [`ErrorKind::InvalidInput`] error.
pub async fn cluster_context(url: &str) -> DfResult<SessionContext> {
    if !url.starts_with(CLUSTER_SCHEME) {
        return Err(datafusion::error::DataFusionError::External(Box::new(
            Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "a cluster address is {CLUSTER_SCHEME}HOST:PORT (the Ballista scheduler), not \"{}\"",
                    inferlink::error::printable(url.to_owned(), 128)
                ),
            ),
        )));
    }
    let state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(SessionConfig::new())
        .build();
    let ctx = SessionContext::remote_with_state(url, state).await?;
    InferenceFunctions::plan_only().register(&ctx);
    Ok(ctx)
}
