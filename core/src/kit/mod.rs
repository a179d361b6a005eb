//! The connector kit: what every connector crate needs besides its own
//! messages, paths, codecs and classifiers.
//!
//! * [`Factory`]: the [`ConnectorFactory`] of a vendor from its names, its
//!   configuration keys and one build function (no per-crate factory type);
//! * [`keys`]: configuration keys as typed, documented definitions, with a
//!   clear error for a key nobody reads;
//! * [`config_words!`](crate::config_words): enums of configuration words;
//! * [`config_keys!`](crate::config_keys): a connector's keys declared once
//!   (names, aliases, docs) as a `keys` module and a [`KeySet`];
//! * [`connector_families!`](crate::connector_families): the
//!   `InferenceConnector` impl from the list of families a type offers;
//! * [`urls`]: endpoint URL checks shared by REST and gRPC connectors;
//!   [`WireProtocol`]: the `protocol` key of connectors that speak both,
//!   and [`WIRE_KEYS`] (`protocol`, `grpc_url`), defined once for them;
//! * [`config_error`]: the one shape of a configuration error;
//! * [`ConnectorConfig`]: reading a connector's typed configuration from a
//!   target (vendor defaults < host transport settings < record), written once;
//!   [`config_basics!`](crate::config_basics) writes its `defaults` and
//!   `transport_mut` for a type with a `new(url)` and a transport field;
//! * [`raw_request_spec`]: a raw request on an HTTP request spec;
//!   [`phrase_class`]: an error status refined by the vendor's words;
//! * [`option_setters!`](crate::option_setters): builder setters of optional fields;
//! * [`json`]: nested JSON arrays read as a tensor's shape and leaves;
//! * `eventstream` (feature `eventstream`): the AWS event-stream framing.
//!
//! Settings are layered once, in [`Connectors::connect`](crate::Connectors::connect):
//! the vendor's defaults (the connector's config type) < the host's
//! settings ([`Connectors::with_setting`](crate::Connectors::with_setting))
//! < the record's configuration. `docs/connector-authoring.md` walks
//! through a connector written on the kit.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::connector::{ConnectorFactory, InferenceConnector};
use crate::error::{Error, ErrorKind, Result};
use crate::target::ConnectTarget;

#[cfg(feature = "eventstream")]
pub mod eventstream;
mod families;
#[cfg(feature = "http")]
mod http;
pub mod json;
pub mod keys;
mod setters;
#[cfg(feature = "http")]
mod settings;
pub mod sse;
pub mod urls;
pub mod wire;
mod words;

#[cfg(feature = "http")]
pub use http::{phrase_class, raw_request_spec};
pub use keys::{Key, KeySet, check_keys, check_keys_beside};
#[cfg(feature = "http")]
pub use settings::ConnectorConfig;
pub use wire::{GRPC_URL_KEYS, WIRE_KEYS, WireProtocol};

/// An [`ErrorKind::Config`] error about configuration key `key`.
pub fn config_error(key: &str, why: impl fmt::Display) -> Error {
    Error::new(ErrorKind::Config, why.to_string()).with_path(key.to_owned())
}

/// Seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ` (UTC, ISO 8601),
/// the form AWS's credential documents and key listings use.
pub fn utc_timestamp(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400);
    // Civil date from a day count (proleptic Gregorian, 400-year eras).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The JSON type of `value` with its article (`"an array"`, `"null"`),
/// for messages about answers of the wrong shape.
pub fn json_kind(value: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Builds a connector from a target whose keys were checked.
pub type BuildFn = fn(&ConnectTarget) -> Result<Arc<dyn InferenceConnector>>;

/// Checks a target's keys in place of [`check_keys`] over the factory's
/// key sets, for a connector whose record declares keys of its own.
pub type KeyCheckFn = fn(&ConnectTarget) -> Result<()>;

/// The [`ConnectorFactory`] of one vendor: its names, the key sets its
/// configuration may use, and a build function.
///
/// `connect` first refuses keys that none of the key sets reads
/// ([`check_keys`]), then builds on Tokio's blocking pool (so a
/// configuration that reads a file never stalls the async runtime; call it
/// within a Tokio runtime). Nothing connects yet: connectors connect on
/// their first call.
///
/// ```
/// use std::sync::Arc;
/// use inferlink_core::kit::{Factory, Key, KeySet};
/// use inferlink_core::{ConnectTarget, ConnectorFactory, ConnectorInfo, Health,
///     InferenceConnector, Result, async_trait};
///
/// #[derive(Debug)]
/// struct Probe(ConnectorInfo);
///
/// #[async_trait]
/// impl InferenceConnector for Probe {
///     fn info(&self) -> &ConnectorInfo { &self.0 }
///     async fn health(&self) -> Result<Health> { Ok(Health::SERVING) }
/// }
///
/// const KEYS: KeySet = KeySet {
///     owner: "probe",
///     keys: &[Key::new("probe_path", "the health path (default /ping)")],
///     prefixes: &[],
/// };
///
/// let factory = Factory::new("probe", &["probe"], &[], &[KEYS], |target| {
///     Ok(Arc::new(Probe(ConnectorInfo::new("probe", "http", &target.url))))
/// });
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let ok = ConnectTarget::new("probe", "http://127.0.0.1:1").with_plain("probe_path", "/ping");
/// assert!(factory.connect(&ok).await.is_ok());
/// let typo = ConnectTarget::new("probe", "http://127.0.0.1:1").with_plain("probe_pth", "/");
/// let e = factory.connect(&typo).await.unwrap_err();
/// assert!(e.message().contains("did you mean \"probe_path\""));
/// # });
/// ```
#[derive(Clone)]
pub struct Factory {
    vendor: &'static str,
    products: &'static [&'static str],
    resources: &'static [&'static str],
    keys: &'static [KeySet],
    build: BuildFn,
    key_check: Option<KeyCheckFn>,
}

impl fmt::Debug for Factory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Factory")
            .field("vendor", &self.vendor)
            .field("products", &self.products)
            .field("resources", &self.resources)
            .finish_non_exhaustive()
    }
}

impl Factory {
    /// A factory for `vendor`, serving record `products` (and service
    /// `resources` when no product matches), reading `keys`.
    pub const fn new(
        vendor: &'static str,
        products: &'static [&'static str],
        resources: &'static [&'static str],
        keys: &'static [KeySet],
        build: BuildFn,
    ) -> Self {
        Factory {
            vendor,
            products,
            resources,
            keys,
            build,
            key_check: None,
        }
    }

    /// The same factory checking keys with `check` instead of
    /// [`check_keys`] over its key sets: for a connector whose record
    /// declares some of its keys itself (a blueprint), `check` reads the
    /// declaration and calls [`check_keys_beside`]. It runs first, before
    /// the build function, like the default check.
    pub const fn with_key_check(mut self, check: KeyCheckFn) -> Self {
        self.key_check = Some(check);
        self
    }

    /// The key sets this factory's connectors read.
    pub fn key_sets(&self) -> &'static [KeySet] {
        self.keys
    }
}

#[async_trait]
impl ConnectorFactory for Factory {
    fn vendor(&self) -> &str {
        self.vendor
    }

    fn products(&self) -> &[&str] {
        self.products
    }

    fn resources(&self) -> &[&str] {
        self.resources
    }

    /// The key check `connect` starts with: the factory's own
    /// ([`Factory::with_key_check`]), else [`check_keys`] over its key sets.
    fn check(&self, target: &ConnectTarget) -> Result<()> {
        match self.key_check {
            Some(check) => check(target),
            None => check_keys(target, self.keys),
        }
    }

    /// Checks the keys, then builds on Tokio's blocking pool: reading a
    /// configuration may read files (`*_file` keys, bounded and confined
    /// to the host's directories), which must not stall the async runtime.
    async fn connect(&self, target: &ConnectTarget) -> Result<Arc<dyn InferenceConnector>> {
        ConnectorFactory::check(self, target)?;
        let build = self.build;
        let target = target.clone();
        tokio::task::spawn_blocking(move || build(&target))
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::Internal,
                    format!("building the {} connector failed: {e}", self.vendor),
                )
            })?
    }
}

#[cfg(test)]
mod utc_tests {
    use super::*;

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_timestamp(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_timestamp(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(utc_timestamp(-1), "1969-12-31T23:59:59Z");
    }
}
