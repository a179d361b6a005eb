//! # inferlink-blueprint
//!
//! A declarative HTTP connector: a model API is integrated by writing a
//! **blueprint** — a YAML or JSON document that says, per call, which path
//! to send to, with which headers and which JSON body, and where the
//! answer's vectors, scores or text are — instead of writing a crate.
//!
//! * A blueprint is data, never code: body templates put values in as JSON
//!   values ([`template`]), answers are read with a small path language
//!   ([`path`]), and everything is checked when the record connects
//!   ([`Blueprint::parse`]): an unknown parameter, an undeclared key, a
//!   secret outside a header is a `Config` error naming where.
//! * Calls go through the shared transport (retries, limits, endpoint
//!   policy, TLS) and the shared input splitter (`embed_max_*` keys).
//! * Blueprints ship in `blueprints/` at the repository's root
//!   ([`SHIPPED`]); a record names one with its product (`cohere`, …) or
//!   with the `blueprint` key (`product: http`), which may also hold a
//!   blueprint's whole text.
//!
//! `docs/connectors/blueprints.md` teaches writing one.
//!
//! ```no_run
//! use inferlink_core::{ConnectTarget, Connectors, EmbedRequest, ModelRef};
//!
//! # async fn demo() -> inferlink_core::Result<()> {
//! let target = ConnectTarget::new("http", "http://127.0.0.1:8080")
//!     .with_plain("blueprint", "tei-native");
//! let connector = Connectors::new().with(inferlink_blueprint::factory()).connect(&target).await?;
//! let answer = connector.embed(&ModelRef::new("bge"), EmbedRequest::new(["a text"])).await?;
//! assert_eq!(answer.vectors.len(), 1);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]

use std::sync::Arc;

use inferlink_core::connector::split;
use inferlink_core::kit::{self, Key, KeySet, config_error};
use inferlink_core::transport::config::KEY_SET;
use inferlink_core::{ConnectTarget, Result};

mod connector;
pub mod path;
pub mod signer;
pub mod spec;
pub mod stream;
pub mod template;
pub mod tensors;

pub use connector::BlueprintConnector;
pub use spec::{Action, Blueprint};

/// The vendor name in connector info and errors.
pub const VENDOR: &str = "blueprint";

/// Key: the blueprint a record speaks (a shipped name, or a blueprint's text).
pub const BLUEPRINT: &str = "blueprint";

/// The keys this connector reads itself (a blueprint's own keys are
/// declared in it; the transport's and the splitter's are theirs).
pub const KEYS: KeySet = KeySet {
    owner: VENDOR,
    keys: &[Key::new(
        BLUEPRINT,
        "the blueprint: a shipped name (inferlink blueprint list) or a blueprint's YAML/JSON text \
         (default: the one the product names)",
    )],
    prefixes: &[],
};

/// The key sets a blueprint may not declare keys of again.
pub const RESERVED: &[KeySet] = &[KEYS, split::KEYS, KEY_SET];

/// A blueprint shipped with the crate.
#[derive(Debug, Clone, Copy)]
pub struct Shipped {
    /// Its name (the `blueprint` key's value).
    pub name: &'static str,
    /// The record product that picks it, when it has one.
    pub product: Option<&'static str>,
    /// Its YAML text.
    pub text: &'static str,
}

macro_rules! shipped {
    ($($name:literal $(for $product:literal)?),+ $(,)?) => {
        /// The blueprints in the repository's `blueprints/` directory.
        pub const SHIPPED: &[Shipped] = &[$(Shipped {
            name: $name,
            product: shipped!(@product $($product)?),
            text: include_str!(concat!("../../../blueprints/", $name, ".yaml")),
        }),+];
    };
    (@product $product:literal) => { Some($product) };
    (@product) => { None };
}

shipped! {
    "openai-compatible",
    "cohere" for "cohere",
    "jina" for "jina",
    "tei-native" for "tei-native",
    "ollama-native" for "ollama-native",
    "vertex-embeddings" for "vertex-embeddings",
    "bedrock-titan-embed" for "bedrock-titan-embed",
    "bedrock-cohere-embed" for "bedrock-cohere-embed",
    "kserve-v1",
    "mlserver-v2",
}

/// Record products served: `http` (the `blueprint` key says which) and the
/// product of each shipped blueprint that has one.
pub const PRODUCTS: &[&str] = &[
    "http",
    "cohere",
    "jina",
    "tei-native",
    "ollama-native",
    "vertex-embeddings",
    "bedrock-titan-embed",
    "bedrock-cohere-embed",
];

/// Service resources served when no product matches.
pub const RESOURCES: &[&str] = &["http-blueprint"];

/// The shipped blueprint `name`, read and checked.
pub fn shipped(name: &str) -> Result<Blueprint> {
    let found = SHIPPED.iter().find(|s| s.name == name).ok_or_else(|| {
        let names: Vec<&str> = SHIPPED.iter().map(|s| s.name).collect();
        let why = format!(
            "no shipped blueprint {:?}; shipped: {}",
            inferlink_core::error::printable(name.to_owned(), 64),
            names.join(", ")
        );
        config_error(BLUEPRINT, why)
    })?;
    Blueprint::parse(found.text, RESERVED)
}

/// The blueprint a target speaks: its `blueprint` key (a shipped name, or
/// text holding a newline or starting with `{`), else the one its product names.
pub fn blueprint_for(target: &ConnectTarget) -> Result<Blueprint> {
    if let Some(value) = target.value(BLUEPRINT) {
        if value.is_secret() {
            return Err(config_error(BLUEPRINT, "a blueprint is not a credential"));
        }
        let text = value.expose().trim();
        return if text.contains('\n') || text.starts_with('{') {
            Blueprint::parse(text, RESERVED)
        } else {
            shipped(text)
        };
    }
    let product = target.product.to_ascii_lowercase();
    match SHIPPED.iter().find(|s| s.product == Some(product.as_str())) {
        Some(found) => Blueprint::parse(found.text, RESERVED),
        None => Err(config_error(
            BLUEPRINT,
            "the record names no blueprint: set the blueprint key (a shipped name or a blueprint's text)",
        )),
    }
}

/// Reads the target's blueprint and checks the target's keys against it
/// (the blueprint's own keys beside [`RESERVED`]); what `connect` and
/// `inferlink blueprint check` do before anything is sent.
pub fn check_target(target: &ConnectTarget) -> Result<Blueprint> {
    let blueprint = blueprint_for(target)?;
    let own: Vec<&str> = blueprint.config.keys().map(String::as_str).collect();
    kit::check_keys_beside(target, RESERVED, &own)?;
    Ok(blueprint)
}

/// The blueprint connector factory (see [`PRODUCTS`]): it reads the
/// record's blueprint and checks the record's keys against it and
/// [`RESERVED`] ([`check_target`]) before building.
pub fn factory() -> kit::Factory {
    kit::Factory::new(VENDOR, PRODUCTS, RESOURCES, RESERVED, |target| {
        let blueprint = Arc::new(check_target(target)?);
        Ok(Arc::new(BlueprintConnector::new(target, blueprint)?))
    })
    .with_key_check(|target| check_target(target).map(drop))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_blueprint_reads_and_names_its_documentation() {
        for found in SHIPPED {
            let blueprint = shipped(found.name).unwrap_or_else(|e| panic!("{}: {e}", found.name));
            assert_eq!(blueprint.name, found.name);
            assert!(
                blueprint.documentation.starts_with("https://"),
                "{}",
                found.name
            );
            assert!(found.product.is_none_or(|p| PRODUCTS.contains(&p)));
        }
        for product in PRODUCTS.iter().filter(|p| **p != "http") {
            assert!(
                SHIPPED.iter().any(|s| s.product == Some(product)),
                "{product}"
            );
        }
    }

    #[test]
    fn the_blueprint_key_picks_shipped_or_inline_blueprints() {
        let by_product = ConnectTarget::new("Cohere", "http://127.0.0.1:1");
        assert_eq!(blueprint_for(&by_product).unwrap().name, "cohere");
        let by_key = by_product.clone().with_plain(BLUEPRINT, "jina");
        assert_eq!(blueprint_for(&by_key).unwrap().name, "jina");
        let inline = by_product.with_plain(BLUEPRINT, SHIPPED[0].text);
        assert_eq!(blueprint_for(&inline).unwrap().name, SHIPPED[0].name);
        let none = ConnectTarget::new("http", "http://127.0.0.1:1");
        assert_eq!(blueprint_for(&none).unwrap_err().path(), Some(BLUEPRINT));
    }
}
