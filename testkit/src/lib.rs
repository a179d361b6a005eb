//! Conformance suites and test harnesses for inferlink backends.
//!
//! * [`store`]: the [`RegistryStore`](inferlink::RegistryStore) conformance
//!   suite every store backend runs in its tests.
//! * [`servers`]: the real-server harness (KServe, MLServer, Triton on
//!   loopback, started and stopped through `scripts/servers`).
//!
//! The checks panic with a descriptive message on the first failed
//! expectation, like `assert!`; call them from `#[tokio::test]` functions.
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]

mod server_models;
pub mod servers;
pub mod store;
