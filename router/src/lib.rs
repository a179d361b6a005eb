//! Routing that survives failures: a connector over a selector's ranked
//! candidates ([`Router`]), with failover, load balancing, cooldown and
//! health probes, client-side rate limits and metrics. See `docs/routing.md`.
//!
//! ```no_run
//! # async fn demo(registry: std::sync::Arc<inferlink::Registry>, connectors: std::sync::Arc<inferlink::Connectors>) -> inferlink::Result<()> {
//! use inferlink::{Consumer, InferenceConnector, Selector};
//! use inferlink_router::{RegistrySource, Router, Strategy};
//!
//! let source = RegistrySource::new(registry, Selector::category("prediction-serving"), Consumer::anywhere());
//! let router = Router::builder(source, connectors).strategy(Strategy::RoundRobin).build().await?;
//! let health = router.health().await?;
//! # let _ = health; Ok(()) }
//! ```
#![deny(missing_docs)]

mod candidate;
pub mod config;
mod families;
pub mod limit;
pub mod metrics;
mod router;

pub use config::{KEYS, RouterConfig, ServiceSettings, Strategy};
pub use limit::{Limiter, RateLimit};
pub use router::{CandidateSource, RegistrySource, Router, RouterBuilder, StaticSource};
