//! [`ConnectorConfig`]: how a connector's typed configuration is read from
//! a target, written once: the vendor's defaults, the host's transport
//! settings over them, then the target's values (the connector's own keys,
//! then the transport's).

use crate::error::Result;
use crate::target::{ConfigValue, ConnectTarget};
use crate::transport::TransportConfig;

/// A connector's typed configuration. A crate implements the three
/// required methods (its defaults, where its transport settings live, and
/// how it reads its own keys); reading a target, layering the host's
/// transport settings and reading the transport's keys are provided.
///
/// ```
/// use inferlink_core::kit::{ConnectorConfig, config_error};
/// use inferlink_core::transport::TransportConfig;
/// use inferlink_core::{ConfigValue, ConnectTarget, Result};
///
/// #[derive(Debug)]
/// struct ProbeConfig { url: String, path: String, transport: TransportConfig }
///
/// impl ConnectorConfig for ProbeConfig {
///     fn defaults(url: &str) -> Self {
///         ProbeConfig { url: url.to_owned(), path: "/ping".into(), transport: TransportConfig::default() }
///     }
///     fn transport_mut(&mut self) -> &mut TransportConfig { &mut self.transport }
///     fn read_keys(&mut self, values: &[(String, ConfigValue)]) -> Result<()> {
///         for (key, value) in values {
///             if key == "probe_path" {
///                 let path = value.expose().trim();
///                 if !path.starts_with('/') {
///                     return Err(config_error(key, "must start with /"));
///                 }
///                 self.path = path.to_owned();
///             }
///         }
///         Ok(())
///     }
/// }
///
/// let target = ConnectTarget::new("probe", "http://127.0.0.1:1")
///     .with_plain("probe_path", "/healthz")
///     .with_plain("timeout_request_ms", "1500");
/// let config = ProbeConfig::from_target(&target).unwrap();
/// assert_eq!(config.path, "/healthz");
/// assert_eq!(config.transport.timeout_request.as_millis(), 1500);
/// let e = ProbeConfig::from_pairs("http://h", &[("probe_path", "healthz")]).unwrap_err();
/// assert_eq!(e.path(), Some("probe_path"));
/// ```
pub trait ConnectorConfig: Sized {
    /// The vendor's defaults for an endpoint URL.
    fn defaults(url: &str) -> Self;

    /// The shared transport settings within this configuration.
    fn transport_mut(&mut self) -> &mut TransportConfig;

    /// Reads this configuration's own keys from `values` (every value of
    /// the target; the factory has already refused keys nobody reads, and
    /// the transport reads its own keys after this). Errors are
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) naming the key.
    fn read_keys(&mut self, values: &[(String, ConfigValue)]) -> Result<()>;

    /// Work that needs the transport's keys read too (default: nothing).
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }

    /// The vendor's defaults for the target's endpoint, overlaid with the
    /// host's transport settings and the target's merged configuration.
    fn from_target(target: &ConnectTarget) -> Result<Self> {
        Self::defaults(&target.url).apply_target(target)
    }

    /// These settings (a vendor crate's defaults, say) overlaid with the
    /// host's transport settings and the target's merged configuration.
    fn apply_target(mut self, target: &ConnectTarget) -> Result<Self> {
        let defaults = std::mem::take(self.transport_mut());
        *self.transport_mut() = target.host_transport_over(defaults);
        self.apply_values(target.values())
    }

    /// These settings overlaid with configuration values (key → value):
    /// the connector's own keys, then the transport's; other keys are
    /// ignored here.
    fn apply_values<I, K>(mut self, values: I) -> Result<Self>
    where
        I: IntoIterator<Item = (K, ConfigValue)>,
        K: AsRef<str>,
    {
        let values: Vec<(String, ConfigValue)> = values
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_owned(), v))
            .collect();
        self.read_keys(&values)?;
        let transport = std::mem::take(self.transport_mut());
        *self.transport_mut() = transport.apply_values(values)?;
        self.finish()?;
        Ok(self)
    }

    /// The defaults for `url` overlaid with plain (not secret) `pairs`:
    /// the short form tests and examples use.
    fn from_pairs(url: &str, pairs: &[(&str, &str)]) -> Result<Self> {
        Self::defaults(url).apply_values(
            pairs
                .iter()
                .map(|(k, v)| (*k, ConfigValue::Plain((*v).to_owned()))),
        )
    }
}

/// Writes, inside an `impl ConnectorConfig for T` block, the two required
/// methods most connector configurations write the same way:
/// [`ConnectorConfig::defaults`] as the type's own `T::new(url)`, and
/// [`ConnectorConfig::transport_mut`] as the field path given
/// (`transport`, or `oip.transport` for a configuration built on another).
/// The impl still writes its own [`ConnectorConfig::read_keys`].
///
/// ```
/// use inferlink_core::kit::ConnectorConfig;
/// use inferlink_core::transport::TransportConfig;
/// use inferlink_core::{ConfigValue, Result};
///
/// #[derive(Debug)]
/// struct EchoConfig { url: String, transport: TransportConfig }
///
/// impl EchoConfig {
///     fn new(url: impl Into<String>) -> Self {
///         EchoConfig { url: url.into(), transport: TransportConfig::default() }
///     }
/// }
///
/// impl ConnectorConfig for EchoConfig {
///     inferlink_core::config_basics!(transport);
///
///     fn read_keys(&mut self, _values: &[(String, ConfigValue)]) -> Result<()> {
///         Ok(())
///     }
/// }
///
/// let c = EchoConfig::from_pairs("http://127.0.0.1:1", &[("timeout_request_ms", "700")]).unwrap();
/// assert_eq!(c.url, "http://127.0.0.1:1");
/// assert_eq!(c.transport.timeout_request.as_millis(), 700);
/// ```
#[macro_export]
macro_rules! config_basics {
    ($($field:ident).+) => {
        fn defaults(url: &str) -> Self {
            Self::new(url)
        }

        fn transport_mut(&mut self) -> &mut $crate::transport::TransportConfig {
            &mut self.$($field).+
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use crate::kit::config_error;

    /// A configuration with one own key and a check that needs the
    /// transport's keys (a finish step).
    #[derive(Debug)]
    struct Probe {
        url: String,
        retries_seen: Option<u32>,
        path: String,
        transport: TransportConfig,
    }

    impl ConnectorConfig for Probe {
        fn defaults(url: &str) -> Self {
            Probe {
                url: url.to_owned(),
                retries_seen: None,
                path: "/ping".to_owned(),
                transport: TransportConfig {
                    gzip: false,
                    ..TransportConfig::default()
                },
            }
        }

        fn transport_mut(&mut self) -> &mut TransportConfig {
            &mut self.transport
        }

        fn read_keys(&mut self, values: &[(String, ConfigValue)]) -> Result<()> {
            for (key, value) in values {
                if key == "probe_path" {
                    let path = value.expose().trim();
                    if !path.starts_with('/') {
                        return Err(config_error(key, "must start with /"));
                    }
                    self.path = path.to_owned();
                }
            }
            Ok(())
        }

        fn finish(&mut self) -> Result<()> {
            self.retries_seen = Some(self.transport.retry.max_attempts);
            Ok(())
        }
    }

    #[test]
    fn own_keys_then_transport_keys_over_the_vendor_defaults() {
        let target = ConnectTarget::new("probe", "http://127.0.0.1:1")
            .with_plain("probe_path", "/healthz")
            .with_plain("timeout_request_ms", "1500")
            .with_plain("retry_max_attempts", "4")
            .with_plain("x_owner", "team");
        let c = Probe::from_target(&target).unwrap();
        assert_eq!(c.url, "http://127.0.0.1:1");
        assert_eq!(c.path, "/healthz");
        assert_eq!(c.transport.timeout_request.as_millis(), 1500);
        assert!(!c.transport.gzip, "the vendor default survives");
        assert_eq!(
            c.retries_seen,
            Some(4),
            "finish runs after the transport keys"
        );
    }

    #[test]
    fn bad_values_are_config_errors_naming_the_key() {
        let e = Probe::from_pairs("http://h", &[("probe_path", "healthz")]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert_eq!(e.path(), Some("probe_path"));
        let e = Probe::from_pairs("http://h", &[("timeout_request_ms", "soon")]).unwrap_err();
        assert_eq!(e.path(), Some("timeout_request_ms"));
    }
}
