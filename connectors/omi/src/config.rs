//! [`OmiConfig`]: the endpoint and the OMI-specific switches, read from a
//! target's merged configuration and validated when the client is built.
//!
//! Keys (see [`keys`]; `docs/connectors/omi.md` has the table):
//!
//! | key | values | default |
//! |---|---|---|
//! | `detect_drift` | boolean | `false` (sent in every `RunRequest`) |
//! | `explain` | boolean | `false` (sent in every `RunRequest`) |
//! | `check_model_name` | boolean | `true`: a [`ModelRef`](inferlink_core::ModelRef) must name the model the server's `Status` reports |
//!
//! Booleans are `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`, any case).
//! Timeouts, retries, TLS and authentication metadata come from the shared
//! transport's keys ([`inferlink_core::transport::config::keys`]).
//!
//! The endpoint URL is `grpc://host:port` (plain HTTP/2, what chassis
//! containers serve), `grpcs://host:port` (TLS), or the same with `http`/
//! `https`. Without a port, `grpc://` and `grpcs://` mean port
//! [`DEFAULT_PORT`] (45000, chassis' `PSC_MODEL_PORT` default).

use inferlink_core::ConfigValue;
use inferlink_core::Result;
use inferlink_core::kit::ConnectorConfig;
use inferlink_core::kit::{config_error, urls};
use inferlink_core::transport::TransportConfig;

/// The port chassis OMI containers listen on unless `PSC_MODEL_PORT` says otherwise.
pub const DEFAULT_PORT: u16 = 45000;

inferlink_core::config_keys! {
    /// The keys the OMI connector reads, for the unknown-key check (the
    /// transport's are [`inferlink_core::transport::config::KEY_SET`]).
    pub const KEYS for "omi" in mod keys {
        /// ask for drift detection on every run (RunRequest.detect_drift), boolean (false)
        DETECT_DRIFT = "detect_drift",
        /// ask for explanations on every run (RunRequest.explain), boolean (false)
        EXPLAIN = "explain",
        /// refuse model references that do not name the served model, boolean (true)
        CHECK_MODEL_NAME = "check_model_name",
    }
}

/// The endpoint URL (the record's), as named in URL errors.
const URL: &str = "url";

/// Everything an [`crate::OmiClient`] needs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OmiConfig {
    /// The record's endpoint URL.
    pub url: String,
    /// `RunRequest.detect_drift` (key `detect_drift`).
    pub detect_drift: bool,
    /// `RunRequest.explain` (key `explain`).
    pub explain: bool,
    /// Refuse model references that do not name the served model (key
    /// `check_model_name`, default true). An OMI container serves exactly
    /// one model; with the check off any name reaches it.
    pub check_model_name: bool,
    /// Timeouts, retries, TLS, authentication metadata (the shared transport's keys).
    pub transport: TransportConfig,
}

impl OmiConfig {
    /// Defaults for an endpoint URL.
    pub fn new(url: impl Into<String>) -> Self {
        OmiConfig {
            url: url.into(),
            detect_drift: false,
            explain: false,
            check_model_name: true,
            transport: TransportConfig::default(),
        }
    }

    /// Checks everything that can be checked without the network: the URL
    /// ([`OmiConfig::grpc_target`]) and the transport settings.
    pub fn validate(&self) -> Result<()> {
        self.grpc_target()?;
        self.transport.validate()
    }

    /// The gRPC target as an `http`/`https` URL with an explicit port
    /// ([`DEFAULT_PORT`] for `grpc://`/`grpcs://` without one).
    ///
    /// `grpc://` and `http://` mean plain HTTP/2, `grpcs://` and `https://`
    /// TLS. User info, a path, a query or a fragment are refused with a
    /// [`Config`](inferlink_core::ErrorKind::Config) error naming `url`
    /// ([`urls::grpc_target`]).
    pub fn grpc_target(&self) -> Result<String> {
        let normal = urls::grpc_target(URL, &self.url)?;
        let raw = url::Url::parse(self.url.trim())
            .map_err(|e| config_error(URL, format!("not a valid URL ({e})")))?;
        let port = match raw.scheme() {
            "grpc" | "grpcs" => raw.port().unwrap_or(DEFAULT_PORT),
            _ => raw.port_or_known_default().unwrap_or(DEFAULT_PORT),
        };
        let normal = url::Url::parse(&normal)
            .map_err(|e| config_error(URL, format!("not a valid URL ({e})")))?;
        let host = normal.host_str().unwrap_or_default();
        Ok(format!("{}://{host}:{port}", normal.scheme()))
    }
}

fn parse_bool(key: &str, value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(config_error(
            key,
            format!(
                "\"{}\" is not a boolean (true or false)",
                value.escape_debug()
            ),
        )),
    }
}

impl ConnectorConfig for OmiConfig {
    inferlink_core::config_basics!(transport);

    fn read_keys(&mut self, values: &[(String, ConfigValue)]) -> Result<()> {
        for (k, v) in values {
            let key = k.as_str();
            match key {
                keys::DETECT_DRIFT => self.detect_drift = parse_bool(key, v.expose())?,
                keys::EXPLAIN => self.explain = parse_bool(key, v.expose())?,
                keys::CHECK_MODEL_NAME => self.check_model_name = parse_bool(key, v.expose())?,
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use inferlink_core::ErrorKind;

    #[test]
    fn targets_get_explicit_ports() {
        let t = |u: &str| OmiConfig::from_pairs(u, &[]).unwrap().grpc_target();
        assert_eq!(t("grpc://model.local").unwrap(), "http://model.local:45000");
        assert_eq!(
            t("grpcs://model.local").unwrap(),
            "https://model.local:45000"
        );
        assert_eq!(
            t("grpc://127.0.0.1:18580/").unwrap(),
            "http://127.0.0.1:18580"
        );
        assert_eq!(t("http://[::1]:9").unwrap(), "http://[::1]:9");
        assert_eq!(t("https://h").unwrap(), "https://h:443");
    }

    #[test]
    fn bad_urls_are_config_errors_naming_url() {
        for bad in [
            "ftp://h",
            "grpc://u:p@h:1",
            "grpc://h:1/ModzyModel",
            "grpc://h:1?x=1",
            "grpc://h:1#f",
            "nope",
            "",
        ] {
            let e = OmiConfig::from_pairs(bad, &[])
                .unwrap()
                .grpc_target()
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}: {e}");
            assert_eq!(e.path(), Some("url"), "{bad}");
        }
        let e = OmiConfig::from_pairs("grpc://u:secret-pw@h:1", &[])
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(!e.to_string().contains("secret-pw"), "{e}");
    }

    #[test]
    fn booleans_and_transport_keys_are_read() {
        let c = OmiConfig::from_pairs(
            "grpc://h:1",
            &[
                ("detect_drift", "YES"),
                ("explain", "1"),
                ("check_model_name", "false"),
                ("timeout_request_ms", "1500"),
                ("unrelated", "x"),
            ],
        )
        .unwrap();
        assert!(c.detect_drift && c.explain && !c.check_model_name);
        assert_eq!(c.transport.timeout_request.as_millis(), 1500);
        let d = OmiConfig::from_pairs("grpc://h:1", &[]).unwrap();
        assert!(!d.detect_drift && !d.explain && d.check_model_name);
        for key in keys::ALL {
            let e = OmiConfig::from_pairs("grpc://h:1", &[(key, "maybe")]).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config);
            assert_eq!(e.path(), Some(*key));
        }
        let e = OmiConfig::from_pairs("grpc://h:1", &[("timeout_request_ms", "soon")]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
    }
}
