//! Conformance suites and test harnesses for inferlink backends.
//!
//! * [`aws_chain`]: one record per AWS credential source against moto
//!   (profile files, web identity token, assumable role), shared by the
//!   AWS connectors' tests.
//! * [`aws_metadata`]: a stand-in for AWS's IMDSv2 and ECS container
//!   credential endpoints, written from AWS's documentation.
//! * [`keys`]: a fixed test key for stores that encrypt credential values.
//! * [`store`]: the [`RegistryStore`](inferlink::RegistryStore) conformance
//!   suite every store backend runs in its tests. Its checks panic with a
//!   descriptive message on the first failed expectation, like `assert!`.
//! * [`connector`]: the [`InferenceConnector`](inferlink::InferenceConnector)
//!   conformance suite every connector runs against its real servers. It
//!   returns a report with one named result per check.
//! * [`example`]: the start every connector example shares (record →
//!   registry → resolution → connector).
//! * [`fault`]: a scripted HTTP/1.1 fault server on loopback (resets,
//!   truncated and oversized bodies, stalls, 429/503 sequences, vendor error
//!   envelopes) for transport and connector tests.
//! * `grpc_server` (feature `grpc`): a generic gRPC test server on loopback
//!   that routes method paths to async handlers over prost messages.
//! * [`servers`]: the real-server harness (KServe, MLServer, Triton, the Seldon Core v1 microservice on
//!   loopback, started and stopped through `scripts/servers`).
//! * [`tfserving_rest_fake`]: a TensorFlow Serving REST stand-in written from
//!   TF Serving's REST documentation (no TF Serving binary is available).
//! * [`torchserve`]: reading a running TorchServe's token key file.
//! * [`recorder`]: a loopback recording proxy that forwards requests
//!   unchanged to a real server (moto's STS) and keeps them for assertions.
//! * [`postgres`]: a throwaway PostgreSQL cluster (the machine's `initdb` and
//!   `pg_ctl` on a free loopback port) for tests of the PostgreSQL store.
//!
//! Call them from `#[tokio::test]` functions.
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]

pub mod aws_chain;
pub mod aws_metadata;
pub mod connector;
pub mod example;
pub mod fault;
#[cfg(feature = "grpc")]
pub mod grpc_server;
pub mod hostile;
pub mod keys;
pub mod live;
pub mod peer;
pub mod peer_bench;
#[cfg(unix)]
pub mod postgres;
pub mod recorder;
mod server_models;
pub mod servers;
pub mod store;
pub mod tfserving_rest_fake;
pub mod torchserve;
