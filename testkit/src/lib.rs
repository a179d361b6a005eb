//! Conformance suites and test harnesses for inferlink backends.
//!
//! * [`keys`]: a fixed test key for stores that encrypt credential values.
//! * [`store`]: the [`RegistryStore`](inferlink::RegistryStore) conformance
//!   suite every store backend runs in its tests.
//!
//! The checks panic with a descriptive message on the first failed
//! expectation, like `assert!`; call them from `#[tokio::test]` functions.
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]

pub mod keys;
pub mod store;
