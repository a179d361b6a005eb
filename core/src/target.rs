//! What a connector is built from: a [`ConnectTarget`] (endpoint URL, merged
//! configuration with secrets kept secret, and the names that choose the
//! connector), independent of where it came from (a registry resolution, a
//! host's code, a test).

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::secret::Secret;

/// A configuration value after resolution: plain, or secret (from credentials).
#[derive(Clone, PartialEq, Eq)]
pub enum ConfigValue {
    /// A value from extension, service or endpoint configuration.
    Plain(String),
    /// A value from credentials (or an expression that used one); shown as `<hidden>`.
    Secret(Secret),
}

impl ConfigValue {
    /// The value in clear. Use only where the value is handed to the consumer.
    pub fn expose(&self) -> &str {
        match self {
            ConfigValue::Plain(s) => s,
            ConfigValue::Secret(s) => s.expose(),
        }
    }

    /// True for values that came from credentials.
    pub fn is_secret(&self) -> bool {
        matches!(self, ConfigValue::Secret(_))
    }
}

impl fmt::Debug for ConfigValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigValue::Plain(s) => fmt::Debug::fmt(s, f),
            ConfigValue::Secret(s) => fmt::Debug::fmt(s, f),
        }
    }
}

impl fmt::Display for ConfigValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigValue::Plain(s) => f.write_str(s),
            ConfigValue::Secret(s) => fmt::Display::fmt(s, f),
        }
    }
}

impl Serialize for ConfigValue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ConfigValue::Plain(s) => serializer.serialize_str(s),
            ConfigValue::Secret(s) => s.serialize(serializer),
        }
    }
}

/// Everything a connector factory needs to build a connector, and nothing
/// more: the endpoint URL, the merged configuration (secrets stay
/// [`ConfigValue::Secret`]), and the names [`Connectors`](crate::Connectors)
/// dispatches on.
///
/// A registry resolution becomes one with `inferlink`'s
/// `Resolution::target()`; a host without a registry builds one directly.
/// `Debug` shows secrets as `<hidden>`.
///
/// ```
/// use inferlink_core::{ConfigValue, ConnectTarget};
/// let target = ConnectTarget::new("triton", "http://127.0.0.1:8000")
///     .with_value("tensor_encoding", ConfigValue::Plain("binary".into()));
/// assert_eq!(target.value("tensor_encoding").unwrap().expose(), "binary");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectTarget {
    /// The record's product (e.g. `triton`), matched against factories' products.
    pub product: String,
    /// The record's product version (e.g. `1.18.2`); empty when unknown.
    pub version: String,
    /// The service's resource (e.g. `oip`), matched when no product matches.
    pub resource: String,
    /// The endpoint URL.
    pub url: String,
    /// The merged configuration, key → value (extension < service < endpoint < credentials).
    pub configuration: BTreeMap<String, ConfigValue>,
    /// Where the target came from, for error context (the record id); may be empty.
    pub origin: String,
    /// The service within its record (error context); may be empty.
    pub service: String,
    /// The host's transport settings that no record can set (endpoint
    /// policy, directories `*_file` keys may read), put here by
    /// [`Connectors`](crate::Connectors) and applied by
    /// [`TransportConfig::apply_target`](crate::transport::TransportConfig::apply_target)
    /// under the record's keys.
    #[cfg(feature = "http")]
    pub host_transport: Option<std::sync::Arc<crate::transport::HostTransportSettings>>,
}

impl ConnectTarget {
    /// A target for a product at a URL, with no configuration.
    pub fn new(product: impl Into<String>, url: impl Into<String>) -> Self {
        ConnectTarget {
            product: product.into(),
            url: url.into(),
            ..ConnectTarget::default()
        }
    }

    /// Sets the product version.
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// Sets the service resource (dispatch when no product matches).
    pub fn with_resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = resource.into();
        self
    }

    /// Adds or replaces one configuration value.
    pub fn with_value(mut self, key: impl Into<String>, value: ConfigValue) -> Self {
        self.configuration.insert(key.into(), value);
        self
    }

    /// Adds or replaces a plain configuration value.
    pub fn with_plain(self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.with_value(key, ConfigValue::Plain(value.into()))
    }

    /// Adds or replaces a secret configuration value.
    pub fn with_secret(self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.with_value(key, ConfigValue::Secret(Secret::new(value.into())))
    }

    /// Sets where the target came from (error context).
    pub fn with_origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = origin.into();
        self
    }

    /// Sets the host's transport settings (see [`ConnectTarget::host_transport`]).
    #[cfg(feature = "http")]
    pub fn with_host_transport(mut self, host: crate::transport::HostTransportSettings) -> Self {
        self.host_transport = Some(std::sync::Arc::new(host));
        self
    }

    /// `vendor_defaults` with the host's transport settings laid over them
    /// (the layer between a connector's own defaults and the record's keys);
    /// unchanged when the host set none.
    #[cfg(feature = "http")]
    pub fn host_transport_over(
        &self,
        vendor_defaults: crate::transport::TransportConfig,
    ) -> crate::transport::TransportConfig {
        match &self.host_transport {
            Some(host) => host.apply_to(vendor_defaults),
            None => vendor_defaults,
        }
    }

    /// Sets the service id (error context).
    pub fn with_service(mut self, service: impl Into<String>) -> Self {
        self.service = service.into();
        self
    }

    /// One configuration value.
    pub fn value(&self, key: &str) -> Option<&ConfigValue> {
        self.configuration.get(key)
    }

    /// The configuration as (key, value) pairs, cloned, for the settings readers.
    pub fn values(&self) -> impl Iterator<Item = (&str, ConfigValue)> + '_ {
        self.configuration
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
    }
}

/// Anything a connector can be built from (a [`ConnectTarget`], or in
/// `inferlink` a registry `Resolution`).
pub trait ToConnectTarget {
    /// The target to connect to.
    fn to_connect_target(&self) -> ConnectTarget;
}

impl ToConnectTarget for ConnectTarget {
    fn to_connect_target(&self) -> ConnectTarget {
        self.clone()
    }
}
