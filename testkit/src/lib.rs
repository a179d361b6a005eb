//! Conformance suites and test harnesses for inferlink backends.
//!
//! * [`store`]: the [`RegistryStore`](inferlink::RegistryStore) conformance
//!   suite every store backend runs in its tests.
//! * [`postgres`]: a throwaway PostgreSQL cluster (the machine's `initdb` and
//!   `pg_ctl` on a free loopback port) for tests of the PostgreSQL store.
//!
//! The checks panic with a descriptive message on the first failed
//! expectation, like `assert!`; call them from `#[tokio::test]` functions.
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]

#[cfg(unix)]
pub mod postgres;
pub mod store;
