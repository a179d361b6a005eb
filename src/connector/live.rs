//! Connectors that follow the registry: [`LiveConnector`].

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;

use super::{
    ConnectorInfo, Connectors, Health, InferStream, InferenceConnector, ModelDescription,
    ModelInfo, ModelListing, ModelMetadata, ModelReadiness, ModelRef, RawInvocation, RawRequest,
    RawResponse, RawStream, StreamingInference, StreamingInvocation, TensorInference,
};
use super::{
    EmbedRequest, EmbedResponse, Embedding, GenerateRequest, GenerateResponse, GenerateStream,
    Generation, RerankRequest, RerankResponse, Reranking, StreamingGeneration,
};
use crate::error::{Error, ErrorKind, Result};
use crate::registry::{LiveResolution, Registry};
use crate::resolve::{Consumer, Resolution, Selector};
use crate::store::Revision;
use crate::tensor::{InferRequest, InferResponse};

/// A connector for a selector that follows the registry.
///
/// Every call first checks (one atomic read) whether the registry has applied
/// a change since the connector in use was built. If it has, the selector is
/// resolved again (about a microsecond from the in-memory index) and, when the
/// choice differs — another endpoint, a rotated credential, another record —
/// a new connector is built through [`Connectors::connect`] before the call is
/// sent. So once a change is visible in this process's [`Registry`], no call
/// goes out with the old endpoint or secret, and nothing needs restarting.
/// Calls already in flight finish on the connector they started with.
///
/// When the selector stops resolving (the record was removed), calls fail
/// with the resolver's error ([`ErrorKind::NoMatch`]) until a record matches
/// again. Cheap to clone; clones share the current connector.
///
/// [`InferenceConnector::info`] describes the connector built first (it must
/// return a reference that outlives changes); [`LiveConnector::current_info`]
/// describes the one in use now. Errors of calls carry the vendor, endpoint and
/// model of the connector that made them.
#[derive(Clone)]
pub struct LiveConnector {
    inner: Arc<Inner>,
}

struct Inner {
    connectors: Arc<Connectors>,
    live: LiveResolution,
    current: RwLock<Built>,
    rebuild: tokio::sync::Mutex<()>,
    rebuilds: AtomicU64,
    first_info: ConnectorInfo,
}

/// The connector in use and what it was built from.
#[derive(Clone)]
struct Built {
    /// The registry revision the resolution was read at (or after).
    revision: Revision,
    /// The resolution, or the error it gave at `revision`.
    resolution: std::result::Result<Resolution, Arc<Error>>,
    connector: Option<Arc<dyn InferenceConnector>>,
}

impl fmt::Debug for LiveConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let built = self.inner.current.read().map(|b| b.connector.clone());
        f.debug_struct("LiveConnector")
            .field("selector", self.inner.live.selector())
            .field("consumer", self.inner.live.consumer())
            .field("current", &built.ok().flatten())
            .field("rebuilds", &self.inner.rebuilds.load(Ordering::Relaxed))
            .finish()
    }
}

impl LiveConnector {
    /// Resolves `selector` for `consumer` in `registry`, connects through
    /// `connectors`, and keeps following the registry.
    ///
    /// Fails like [`Registry::resolve`] and [`Connectors::connect`] when the
    /// selector does not resolve now or no factory serves the resolution.
    ///
    /// ```no_run
    /// # async fn demo(registry: &inferlink::Registry, connectors: std::sync::Arc<inferlink::Connectors>) -> inferlink::Result<()> {
    /// use inferlink::connector::LiveConnector;
    /// use inferlink::{Consumer, InferenceConnector, Selector};
    ///
    /// let selector = Selector { service_category: Some("prediction-serving".into()), ..Default::default() };
    /// let consumer = Consumer { project: Some("alpha".into()), ..Default::default() };
    /// let live = LiveConnector::connect(registry, connectors, selector, consumer).await?;
    /// // Later calls use whatever the registry says at the time of the call.
    /// let health = live.health().await?;
    /// # let _ = health; Ok(()) }
    /// ```
    pub async fn connect(
        registry: &Registry,
        connectors: Arc<Connectors>,
        selector: Selector,
        consumer: Consumer,
    ) -> Result<LiveConnector> {
        let live = registry.watch_resolution(selector, consumer)?;
        let revision = live.seen_revision();
        let resolution = live.current()?;
        let connector = connectors.connect(&resolution).await?;
        let first_info = connector.info().clone();
        Ok(LiveConnector {
            inner: Arc::new(Inner {
                connectors,
                live,
                current: RwLock::new(Built {
                    revision,
                    resolution: Ok(resolution),
                    connector: Some(connector),
                }),
                rebuild: tokio::sync::Mutex::new(()),
                rebuilds: AtomicU64::new(0),
                first_info,
            }),
        })
    }

    /// The connector for the registry as it is now, rebuilt first if the
    /// resolution changed. Hosts can hold it for a group of calls that must
    /// go to the same place.
    pub async fn current(&self) -> Result<Arc<dyn InferenceConnector>> {
        let now = self.inner.live.seen_revision();
        let built = self.read()?;
        if built.revision == now {
            return Self::usable(&built);
        }
        let _one_at_a_time = self.inner.rebuild.lock().await;
        let built = self.read()?;
        let now = self.inner.live.seen_revision();
        if built.revision == now {
            return Self::usable(&built);
        }
        let next = match self.inner.live.current() {
            Ok(resolution) => {
                let same =
                    matches!(&built.resolution, Ok(before) if before.same_choice(&resolution));
                match (&built.connector, same) {
                    (Some(connector), true) => Built {
                        revision: now,
                        resolution: Ok(resolution),
                        connector: Some(Arc::clone(connector)),
                    },
                    _ => {
                        // A failed build leaves the old state in place and
                        // is retried by the next call.
                        let connector = self.inner.connectors.connect(&resolution).await?;
                        self.inner.rebuilds.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(
                            vendor = %connector.info().vendor,
                            endpoint = %connector.info().endpoint,
                            "live connector rebuilt after a registry change"
                        );
                        Built {
                            revision: now,
                            resolution: Ok(resolution),
                            connector: Some(connector),
                        }
                    }
                }
            }
            Err(e) => Built {
                revision: now,
                resolution: Err(Arc::new(e)),
                connector: None,
            },
        };
        let result = Self::usable(&next);
        *self.inner.current.write().map_err(|_| poisoned())? = next;
        result
    }

    /// The resolution calls use now (resolved again if the registry changed).
    pub async fn resolution(&self) -> Result<Resolution> {
        self.current().await?;
        match &self.read()?.resolution {
            Ok(r) => Ok(r.clone()),
            Err(e) => Err(e.detached_copy()),
        }
    }

    /// The [`ConnectorInfo`] of the connector in use now.
    pub async fn current_info(&self) -> Result<ConnectorInfo> {
        Ok(self.current().await?.info().clone())
    }

    /// How many times a registry change led to a new connector.
    pub fn rebuilds(&self) -> u64 {
        self.inner.rebuilds.load(Ordering::Relaxed)
    }

    fn read(&self) -> Result<Built> {
        self.inner
            .current
            .read()
            .map(|b| b.clone())
            .map_err(|_| poisoned())
    }

    fn usable(built: &Built) -> Result<Arc<dyn InferenceConnector>> {
        match (&built.connector, &built.resolution) {
            (Some(c), Ok(_)) => Ok(Arc::clone(c)),
            (_, Err(e)) => Err(e.detached_copy()),
            (None, Ok(_)) => Err(Error::new(
                ErrorKind::Internal,
                "live connector has a resolution but no connector",
            )),
        }
    }
}

fn poisoned() -> Error {
    Error::new(
        ErrorKind::Internal,
        "live connector state poisoned by a panic in another thread",
    )
}

impl LiveConnector {
    /// Whether the connector in use now has a capability family (a registry
    /// change can swap it; a call then answers as the new connector does).
    fn now_has(&self, family: impl Fn(&dyn InferenceConnector) -> bool) -> bool {
        self.read()
            .ok()
            .and_then(|built| built.connector)
            .is_some_and(|connector| family(connector.as_ref()))
    }
}

#[async_trait]
impl InferenceConnector for LiveConnector {
    fn info(&self) -> &ConnectorInfo {
        &self.inner.first_info
    }

    async fn health(&self) -> Result<Health> {
        self.current().await?.health().await
    }

    fn as_tensor_inference(&self) -> Option<&dyn TensorInference> {
        self.now_has(|c| c.as_tensor_inference().is_some())
            .then_some(self as _)
    }

    fn as_raw_invocation(&self) -> Option<&dyn RawInvocation> {
        self.now_has(|c| c.as_raw_invocation().is_some())
            .then_some(self as _)
    }

    fn as_model_listing(&self) -> Option<&dyn ModelListing> {
        self.now_has(|c| c.as_model_listing().is_some())
            .then_some(self as _)
    }

    fn as_model_description(&self) -> Option<&dyn ModelDescription> {
        self.now_has(|c| c.as_model_description().is_some())
            .then_some(self as _)
    }

    fn as_model_readiness(&self) -> Option<&dyn ModelReadiness> {
        self.now_has(|c| c.as_model_readiness().is_some())
            .then_some(self as _)
    }

    fn as_streaming_inference(&self) -> Option<&dyn StreamingInference> {
        self.now_has(|c| c.as_streaming_inference().is_some())
            .then_some(self as _)
    }

    fn as_streaming_invocation(&self) -> Option<&dyn StreamingInvocation> {
        self.now_has(|c| c.as_streaming_invocation().is_some())
            .then_some(self as _)
    }

    fn as_embedding(&self) -> Option<&dyn Embedding> {
        self.now_has(|c| c.as_embedding().is_some())
            .then_some(self as _)
    }

    fn as_reranking(&self) -> Option<&dyn Reranking> {
        self.now_has(|c| c.as_reranking().is_some())
            .then_some(self as _)
    }

    fn as_generation(&self) -> Option<&dyn Generation> {
        self.now_has(|c| c.as_generation().is_some())
            .then_some(self as _)
    }

    fn as_streaming_generation(&self) -> Option<&dyn StreamingGeneration> {
        self.now_has(|c| c.as_streaming_generation().is_some())
            .then_some(self as _)
    }
}

#[async_trait]
impl TensorInference for LiveConnector {
    async fn infer(&self, model: &ModelRef, request: InferRequest) -> Result<InferResponse> {
        self.current().await?.infer(model, request).await
    }
}

#[async_trait]
impl ModelListing for LiveConnector {
    async fn models(&self) -> Result<Vec<ModelInfo>> {
        self.current().await?.models().await
    }
}

#[async_trait]
impl ModelDescription for LiveConnector {
    async fn model_metadata(&self, model: &ModelRef) -> Result<ModelMetadata> {
        self.current().await?.model_metadata(model).await
    }
}

#[async_trait]
impl ModelReadiness for LiveConnector {
    async fn model_ready(&self, model: &ModelRef) -> Result<bool> {
        self.current().await?.model_ready(model).await
    }
}

#[async_trait]
impl RawInvocation for LiveConnector {
    async fn invoke(&self, model: &ModelRef, request: RawRequest) -> Result<RawResponse> {
        self.current().await?.invoke(model, request).await
    }
}

#[async_trait]
impl StreamingInference for LiveConnector {
    async fn infer_stream(&self, model: &ModelRef, request: InferRequest) -> Result<InferStream> {
        self.current().await?.infer_stream(model, request).await
    }
}

#[async_trait]
impl StreamingInvocation for LiveConnector {
    async fn invoke_stream(&self, model: &ModelRef, request: RawRequest) -> Result<RawStream> {
        self.current().await?.invoke_stream(model, request).await
    }
}

#[async_trait]
impl Embedding for LiveConnector {
    async fn embed(&self, model: &ModelRef, request: EmbedRequest) -> Result<EmbedResponse> {
        self.current().await?.embed(model, request).await
    }
}

#[async_trait]
impl Reranking for LiveConnector {
    async fn rerank(&self, model: &ModelRef, request: RerankRequest) -> Result<RerankResponse> {
        self.current().await?.rerank(model, request).await
    }
}

#[async_trait]
impl Generation for LiveConnector {
    async fn generate(
        &self,
        model: &ModelRef,
        request: GenerateRequest,
    ) -> Result<GenerateResponse> {
        self.current().await?.generate(model, request).await
    }
}

#[async_trait]
impl StreamingGeneration for LiveConnector {
    async fn generate_stream(
        &self,
        model: &ModelRef,
        request: GenerateRequest,
    ) -> Result<GenerateStream> {
        self.current().await?.generate_stream(model, request).await
    }
}
