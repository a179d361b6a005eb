//! inferlink's SQL functions for [Apache DataFusion](https://datafusion.apache.org):
//! call the model servers of an inferlink registry from SQL.
//!
//! | function | answers |
//! | --- | --- |
//! | `embed(target, text)` | the text's vector, `List<Float32>` |
//! | `rerank(target, query, document)` | the document's relevance to the query, `Float64` |
//! | `generate(target, prompt)` | the generated text, `Utf8` |
//! | `infer(target, input_name, value)` | a tensor model's output for the row's numbers, `List<Float64>` |
//! | `try_embed`, `try_rerank`, `try_generate`, `try_infer` | the same, as `Struct{value, error}` |
//!
//! `target` names the model and the registry selector
//! ([`target::Target`]: `'category=embedding,model=all-MiniLM-L6-v2'`).
//! Each is an async scalar function: DataFusion hands it a record batch at
//! a time; the rows of one target go to the model through a
//! [`inferlink::LiveConnector`] (the same connectors, resolution, retries
//! and request splitting as every other call), `embed` as one call per batch
//! that the connector cuts into requests of its `embed_max_items` sent
//! `embed_concurrency` at a time, `rerank` as one call per distinct query,
//! `generate` one call per row with at most [`Options::concurrency`] in
//! flight, `infer` one request per row (or per `batch` rows stacked along a
//! batch dimension) with at most [`Options::concurrency`] in flight.
//!
//! Rows: a null or empty text (or query, document, prompt) is answered with
//! null and not sent; a null target is answered with null. A row whose call
//! fails makes `embed`/`rerank`/`generate` fail the query with that row's
//! typed [`inferlink::Error`] (inside `DataFusionError::External`), and makes
//! `try_*` answer `{value: null, error: "…"}` for that row alone. When an
//! embed call fails as invalid input (one text too long, say), its texts are
//! sent one by one so that only the rows at fault fail.
//!
//! Docs: `docs/sql.md`.
#![deny(missing_docs)]

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use datafusion::logical_expr::ScalarUDF;
use datafusion::logical_expr::async_udf::AsyncScalarUDF;
use datafusion::prelude::SessionContext;
use inferlink::connector::LiveConnector;
use inferlink::{Connectors, Consumer, Error, ErrorKind, Registry, Result};

mod functions;
pub mod target;

use functions::{Connected, InferenceUdf, OnError, Task};
use target::Target;

/// Limits of the functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Rows DataFusion hands the functions at once (their ideal batch size).
    pub batch_rows: usize,
    /// `generate` calls, `infer` requests (and the one-text-at-a-time
    /// embed fallback) in flight at most, per batch.
    pub concurrency: usize,
}

impl Default for Options {
    /// 1024 rows per batch, 4 calls in flight.
    fn default() -> Self {
        Options {
            batch_rows: 1024,
            concurrency: 4,
        }
    }
}

/// Where calls go: a registry and the connectors to reach what it names, or
/// nowhere (a process that only plans, such as a Ballista scheduler).
#[derive(Clone)]
enum Source {
    Registry {
        registry: Arc<Registry>,
        connectors: Arc<Connectors>,
        consumer: Consumer,
    },
    PlanOnly,
}

/// What every function of one [`InferenceFunctions`] shares: the source,
/// the connected targets, the limits and the progress counter.
pub(crate) struct Shared {
    source: Source,
    connected: Mutex<HashMap<String, Connected>>,
    pub(crate) options: Options,
    pub(crate) rows_done: AtomicU64,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("plan_only", &matches!(self.source, Source::PlanOnly))
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// The target `text` parsed, resolved and connected (once per distinct
    /// text; the live connector follows later registry changes).
    pub(crate) async fn target(&self, text: &str) -> Result<Connected> {
        if let Some(found) = self.lock()?.get(text) {
            return Ok(found.clone());
        }
        let target = Target::parse(text)?;
        let Source::Registry {
            registry,
            connectors,
            consumer,
        } = &self.source
        else {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "this process only plans queries; inferlink's functions run where a registry is open (an executor)",
            ));
        };
        let live = LiveConnector::connect(
            registry,
            Arc::clone(connectors),
            target.selector.clone(),
            consumer.clone(),
        )
        .await?;
        let connected = Connected {
            target,
            connector: Arc::new(live),
        };
        self.lock()?.insert(text.to_owned(), connected.clone());
        Ok(connected)
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, Connected>>> {
        self.connected.lock().map_err(|_| {
            Error::new(
                ErrorKind::Internal,
                "the connected targets' lock is poisoned",
            )
        })
    }
}

/// inferlink's SQL functions over one registry.
///
/// ```no_run
/// # async fn demo(registry: std::sync::Arc<inferlink::Registry>, connectors: inferlink::Connectors) -> datafusion::error::Result<()> {
/// use datafusion::prelude::SessionContext;
/// let functions = inferlink_datafusion::InferenceFunctions::new(registry, connectors);
/// let ctx = SessionContext::new();
/// functions.register(&ctx);
/// ctx.sql("SELECT embed('embedding,model=all-MiniLM-L6-v2', 'hello')").await?.show().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct InferenceFunctions {
    shared: Arc<Shared>,
}

impl InferenceFunctions {
    /// Functions that resolve targets in `registry` and connect through
    /// `connectors`, for the default consumer, with default [`Options`].
    pub fn new(registry: Arc<Registry>, connectors: Connectors) -> Self {
        Self::with(
            Source::Registry {
                registry,
                connectors: Arc::new(connectors),
                consumer: Consumer::default(),
            },
            Options::default(),
        )
    }

    /// Functions that can be planned but not run: every call answers
    /// [`ErrorKind::Unsupported`]. For processes that plan queries that
    /// others execute (a Ballista scheduler, a client submitting to one).
    pub fn plan_only() -> Self {
        Self::with(Source::PlanOnly, Options::default())
    }

    fn with(source: Source, options: Options) -> Self {
        InferenceFunctions {
            shared: Arc::new(Shared {
                source,
                connected: Mutex::new(HashMap::new()),
                options,
                rows_done: AtomicU64::new(0),
            }),
        }
    }

    /// The same functions for `consumer` (zone, project, user: which
    /// endpoints and credentials resolution picks).
    pub fn for_consumer(self, consumer: Consumer) -> Self {
        let mut source = self.shared.source.clone();
        if let Source::Registry { consumer: slot, .. } = &mut source {
            *slot = consumer;
        }
        Self::with(source, self.shared.options)
    }

    /// The same functions with other limits; zero values are
    /// [`ErrorKind::InvalidInput`].
    pub fn with_options(self, options: Options) -> Result<Self> {
        if options.batch_rows == 0 || options.concurrency == 0 {
            return Err(Error::invalid(
                "the batch size and the concurrency of the SQL functions must be at least 1",
            ));
        }
        let source = self.shared.source.clone();
        Ok(Self::with(source, options))
    }

    /// Rows the functions have answered so far (every row of every batch,
    /// nulls and failures included): for progress reports.
    pub fn rows_done(&self) -> u64 {
        self.shared
            .rows_done
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The functions, as DataFusion scalar functions (async ones).
    pub fn udfs(&self) -> Vec<ScalarUDF> {
        let mut all = Vec::new();
        for task in [Task::Embed, Task::Rerank, Task::Generate, Task::Infer] {
            for on_error in [OnError::Fail, OnError::Column] {
                let udf = InferenceUdf::new(task, on_error, Arc::clone(&self.shared));
                all.push(AsyncScalarUDF::new(Arc::new(udf)).into_scalar_udf());
            }
        }
        all
    }

    /// Registers every function in `ctx`.
    pub fn register(&self, ctx: &SessionContext) {
        for udf in self.udfs() {
            ctx.register_udf(udf);
        }
    }
}
