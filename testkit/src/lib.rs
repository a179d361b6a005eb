//! Conformance suites and test harnesses for inferlink backends.
//!
//! * [`store`]: the [`RegistryStore`](inferlink::RegistryStore) conformance
//!   suite every store backend runs in its tests.
//! * [`fault`]: a scripted HTTP/1.1 fault server on loopback (resets,
//!   truncated and oversized bodies, stalls, 429/503 sequences, vendor error
//!   envelopes) for transport and connector tests.
//!
//! The checks panic with a descriptive message on the first failed
//! expectation, like `assert!`; call them from `#[tokio::test]` functions.
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]

pub mod fault;
pub mod store;
