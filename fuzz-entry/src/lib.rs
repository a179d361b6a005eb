//! The entry points of inferlink's fuzz targets.
//!
//! Each `pub fn` takes the fuzzer's bytes, feeds them to one family of
//! decoders exactly as the connectors or the registry do, and asserts what
//! every decoder promises on hostile input: a value or a typed
//! [`inferlink::Error`] — never a panic, an abort or an allocation beyond a
//! bound derived from the bytes received. The `fuzz/fuzz_targets/*.rs`
//! binaries (built by `cargo fuzz` with nightly, see `scripts/fuzz`) are one
//! call each into this crate, and `tests/corpora.rs` replays every checked-in
//! corpus and regression input through the same functions on stable, so a
//! crash found once stays fixed.
//!
//! [`TARGETS`] lists every target by name; the corpus of target `NAME` is
//! `fuzz/corpus/NAME/` and its regression inputs `fuzz/regressions/NAME/`.
#![deny(missing_docs)]

mod server;
mod user;

pub use server::{
    kserve_v1, oip_binary, oip_grpc, oip_json, omi, sagemaker_eventstream, sagemaker_json, seldon,
    tfserving_grpc, tfserving_rest, torchserve, triton_metrics, triton_sse,
};
pub use user::{expression, records, version, workflow_step};

/// A fuzz target's entry point: takes the fuzzer's bytes, panics only on a broken promise.
pub type Entry = fn(&[u8]);

/// Every fuzz target: its name (the binary, corpus and regression folder) and its entry point.
pub const TARGETS: &[(&str, Entry)] = &[
    ("oip_json", oip_json),
    ("oip_binary", oip_binary),
    ("oip_grpc", oip_grpc),
    ("kserve_v1", kserve_v1),
    ("seldon", seldon),
    ("tfserving_rest", tfserving_rest),
    ("tfserving_grpc", tfserving_grpc),
    ("torchserve", torchserve),
    ("sagemaker_json", sagemaker_json),
    ("sagemaker_eventstream", sagemaker_eventstream),
    ("omi", omi),
    ("triton_sse", triton_sse),
    ("triton_metrics", triton_metrics),
    ("records", records),
    ("workflow_step", workflow_step),
    ("version", version),
];

/// Asserts that decoded tensors hold no more elements than `limit`.
///
/// A JSON leaf takes at least one byte of the body and a binary element at
/// least one byte of its buffer, so `limit` is the input's length for most
/// decoders; a decoder that may legitimately expand (a repeated fill value)
/// passes its own documented bound.
fn assert_bounded(tensors: &[inferlink::Tensor], limit: usize, what: &str) {
    for t in tensors {
        let count = t.element_count();
        assert!(
            count <= limit.max(1),
            "{what}: output \"{}\" has {count} elements from an input bounded at {limit}",
            t.name()
        );
    }
}

/// The first byte as a selector and the rest as the input (empty input: selector 0).
fn split_selector(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((first, rest)) => (*first, rest),
        None => (0, data),
    }
}

/// A datatype chosen by `selector` (`None` for one value in fifteen).
fn datatype_of(selector: u8) -> Option<inferlink::DataType> {
    inferlink::DataType::ALL
        .get(usize::from(selector) % (inferlink::DataType::ALL.len() + 1))
        .copied()
}
