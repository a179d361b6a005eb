//! placeholder
#![deny(missing_docs)]
pub mod codec;
#[allow(missing_docs, clippy::all, unreachable_pub)]
#[rustfmt::skip]
mod proto;
