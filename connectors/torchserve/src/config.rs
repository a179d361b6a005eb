//! [`TorchServeConfig`]: URLs, protocol, inference API and token keys, read
//! from a target's merged configuration and checked when the connector
//! is built.
//!
//! Keys (see [`keys`]; `docs/connectors/torchserve.md` has the table):
//!
//! | key | values | default |
//! |---|---|---|
//! | `management_url` | URL of the management API (port 8081) | none: management calls answer `Unsupported` |
//! | `protocol` | `rest`, `grpc` | from the endpoint URL: `grpc://`/`grpcs://` → gRPC, else REST |
//! | `grpc_url` | URL of the gRPC inference port (7070) | the endpoint URL |
//! | `inference_api` | `predictions`, `kserve-v1`, `kserve-v2` | `predictions` |
//! | `inference_key` | the inference token (secret) | none |
//! | `management_key` | the management token (secret) | none |
//!
//! Timeouts, retries, TLS, extra headers come from the shared transport's
//! keys ([`inferlink_core::transport::config::keys`]) and apply to every API.

use inferlink_core::ConfigValue;
use inferlink_core::kit::ConnectorConfig;
use inferlink_core::kit::{config_error, urls, wire};
use inferlink_core::transport::TransportConfig;
use inferlink_core::{ConnectTarget, Result, Secret};

inferlink_core::config_keys! {
    /// The keys the TorchServe connector reads itself, for the unknown-key
    /// check; it also reads `protocol` (inference over rest or grpc) and
    /// `grpc_url` ([`inferlink_core::kit::WIRE_KEYS`]) and the transport's
    /// ([`inferlink_core::transport::config::KEY_SET`]). The two token keys
    /// usually sit in the record's credentials.
    pub const KEYS for "torchserve" in mod keys {
        /// the management API's base URL, http://host:8081 (none: management calls are Unsupported)
        MANAGEMENT_URL = "management_url",
        /// the REST route of infer: predictions, kserve-v1 or kserve-v2 (predictions)
        INFERENCE_API = "inference_api",
        /// the inference token, sent as Authorization: Bearer (secret; none)
        INFERENCE_KEY = "inference_key",
        /// the management token, sent as Authorization: Bearer (secret; none)
        MANAGEMENT_KEY = "management_key",
    }
}

/// Which wire protocol inference calls use: the REST inference API (port
/// 8080) or gRPC `org.pytorch.serve.grpc.inference.InferenceAPIsService`
/// (port 7070).
pub use inferlink_core::kit::WireProtocol as Protocol;

inferlink_core::config_words! {
    /// The REST route tensor inference (`infer`) goes through.
    #[derive(Default)]
    pub enum InferenceApi for "inference_api" {
        /// `POST /predictions/MODEL[/VERSION]` with the nested-JSON tensor
        /// mapping of [`crate::codec`] (any handler that takes and returns
        /// JSON arrays). The default.
        #[default]
        Predictions = "predictions" | "torchserve",
        /// `POST /v1/models/MODEL:predict` with `{"instances": …}` (KServe V1;
        /// works with the default envelope and with `service_envelope=kserve`).
        KServeV1 = "kserve-v1" | "kserve_v1" | "kserve" | "v1",
        /// `POST /v2/models/MODEL/infer` with Open Inference Protocol JSON
        /// (the server runs with `service_envelope=kservev2`).
        KServeV2 = "kserve-v2" | "kserve_v2" | "kservev2" | "v2" | "oip",
    }
}

/// Everything a [`crate::TorchServeClient`] needs.
///
/// `Debug` never shows the keys.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TorchServeConfig {
    /// The record's endpoint URL: the inference API (REST) or the gRPC port.
    pub url: String,
    /// The management API's base URL (key `management_url`).
    pub management_url: Option<String>,
    /// The protocol; `None` picks it from the URL scheme (see [`TorchServeConfig::protocol`]).
    pub protocol: Option<Protocol>,
    /// The gRPC endpoint when it differs from [`TorchServeConfig::url`] (key `grpc_url`).
    pub grpc_url: Option<String>,
    /// The REST route of `infer` (key `inference_api`).
    pub inference_api: InferenceApi,
    /// The inference token (key `inference_key`).
    pub inference_key: Option<Secret>,
    /// The management token (key `management_key`).
    pub management_key: Option<Secret>,
    /// Timeouts, retries, TLS, headers (the shared transport's keys).
    pub transport: TransportConfig,
}

impl TorchServeConfig {
    /// Defaults for an inference endpoint URL.
    pub fn new(url: impl Into<String>) -> Self {
        TorchServeConfig {
            url: url.into(),
            management_url: None,
            protocol: None,
            grpc_url: None,
            inference_api: InferenceApi::default(),
            inference_key: None,
            management_key: None,
            transport: TransportConfig::default(),
        }
    }

    /// Sets the management URL.
    pub fn with_management_url(mut self, url: impl Into<String>) -> Self {
        self.management_url = Some(url.into());
        self
    }

    /// Sets both token keys.
    pub fn with_keys(mut self, inference: Option<Secret>, management: Option<Secret>) -> Self {
        self.inference_key = inference;
        self.management_key = management;
        self
    }

    /// The protocol in effect: the `protocol` key, else `grpc` for a
    /// `grpc://` or `grpcs://` endpoint URL, else `rest`.
    pub fn protocol(&self) -> Protocol {
        Protocol::or_from_url(self.protocol, &self.url)
    }

    /// Checks everything that can be checked without a connection.
    pub fn validate(&self) -> Result<()> {
        self.transport.validate()?;
        match self.protocol() {
            Protocol::Rest => {
                http_url("url", &self.url)?;
            }
            Protocol::Grpc => {
                self.grpc_target()?;
                if self.inference_api != InferenceApi::Predictions {
                    return Err(config_error(
                        keys::INFERENCE_API,
                        "the KServe routes exist only over REST; use protocol: rest",
                    ));
                }
            }
        }
        if let Some(m) = &self.management_url {
            http_url(keys::MANAGEMENT_URL, m)?;
        }
        Ok(())
    }

    /// The gRPC target as an `http`/`https` URL ([`urls::grpc_target`]):
    /// `grpc_url` if set, else the endpoint URL; `grpc://` means plain
    /// HTTP/2, `grpcs://` TLS.
    pub fn grpc_target(&self) -> Result<String> {
        wire::grpc_target(self.grpc_url.as_deref(), &self.url)
    }
}

/// A token value: trimmed, non-empty, visible ASCII (it goes into a header).
fn key_value(key: &str, text: &str) -> Result<Option<Secret>> {
    if text.is_empty() {
        return Ok(None);
    }
    if !text.bytes().all(|b| b.is_ascii_graphic()) {
        // Never quote the value: it is a secret.
        return Err(config_error(
            key,
            "a token must be visible ASCII without spaces",
        ));
    }
    Ok(Some(Secret::new(text)))
}

/// Reads one token key from a target's merged configuration (what
/// [`crate::TokenKeys::update_from`] uses).
pub(crate) fn keys_of(target: &ConnectTarget) -> Result<(Option<Secret>, Option<Secret>)> {
    let get = |key: &str| -> Result<Option<Secret>> {
        match target.value(key) {
            Some(v) => key_value(key, v.expose().trim()),
            None => Ok(None),
        }
    };
    Ok((get(keys::INFERENCE_KEY)?, get(keys::MANAGEMENT_KEY)?))
}

/// A REST URL ([`urls::http_url`]), with a hint for a gRPC URL given where
/// REST is expected.
fn http_url(key: &str, raw: &str) -> Result<()> {
    if urls::is_grpc_scheme(raw) {
        return Err(config_error(
            key,
            "a REST URL must start with http:// or https:// (for gRPC inference set protocol: \
             grpc or use a grpc:// URL)",
        ));
    }
    urls::http_url(key, raw).map(drop)
}

impl ConnectorConfig for TorchServeConfig {
    inferlink_core::config_basics!(transport);

    fn read_keys(&mut self, values: &[(String, ConfigValue)]) -> Result<()> {
        for (k, v) in values {
            let text = v.expose().trim();
            match k.as_str() {
                keys::MANAGEMENT_URL => {
                    self.management_url = (!text.is_empty()).then(|| text.to_owned());
                }
                Protocol::KEY => self.protocol = Some(text.parse()?),
                wire::GRPC_URL => self.grpc_url = wire::grpc_url_setting(text),
                keys::INFERENCE_API => self.inference_api = text.parse()?,
                keys::INFERENCE_KEY => self.inference_key = key_value(keys::INFERENCE_KEY, text)?,
                keys::MANAGEMENT_KEY => {
                    self.management_key = key_value(keys::MANAGEMENT_KEY, text)?;
                }
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
    fn keys_are_read_and_checked() {
        let c = TorchServeConfig::from_pairs(
            "http://127.0.0.1:8080",
            &[
                ("management_url", "http://127.0.0.1:8081"),
                ("inference_key", "abcd1234"),
                ("management_key", " efgh5678 "),
                ("inference_api", "KServe_V2"),
                ("timeout_request_ms", "1500"),
                ("MODEL", "ignored"),
            ],
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.management_url.as_deref(), Some("http://127.0.0.1:8081"));
        assert_eq!(c.inference_key.as_ref().unwrap().expose(), "abcd1234");
        assert_eq!(c.management_key.as_ref().unwrap().expose(), "efgh5678");
        assert_eq!(c.inference_api, InferenceApi::KServeV2);
        assert_eq!(c.transport.timeout_request.as_millis(), 1500);
        assert!(!format!("{c:?}").contains("abcd1234"));
    }

    #[test]
    fn bad_values_name_their_key_and_hide_secrets() {
        let e = TorchServeConfig::from_pairs("http://h", &[("inference_api", "soap")]).unwrap_err();
        assert_eq!(
            (e.kind(), e.path()),
            (ErrorKind::Config, Some("inference_api"))
        );
        let e = TorchServeConfig::from_pairs("http://h", &[("protocol", "carrier-pigeon")])
            .unwrap_err();
        assert_eq!(e.path(), Some("protocol"));
        let e = TorchServeConfig::from_pairs("http://h", &[("inference_key", "has space")])
            .unwrap_err();
        assert_eq!(e.path(), Some("inference_key"));
        assert!(!e.to_string().contains("has space"), "{e}");
        let e = TorchServeConfig::from_pairs("http://h", &[("management_url", "ftp://h")])
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(e.path(), Some("management_url"));
        let e = TorchServeConfig::from_pairs("grpc://h:7070", &[("inference_api", "kserve-v2")])
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(e.path(), Some("inference_api"));
        let e =
            TorchServeConfig::from_pairs("http://h", &[("timeout_conect_ms", "1")]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
    }

    #[test]
    fn protocol_and_grpc_target_follow_the_urls() {
        let c = TorchServeConfig::from_pairs(
            "http://h:8080",
            &[("grpc_url", "grpc://h:7070"), ("protocol", "grpc")],
        )
        .unwrap();
        assert_eq!(c.protocol(), Protocol::Grpc);
        assert_eq!(c.grpc_target().unwrap(), "http://h:7070");
        let c = TorchServeConfig::from_pairs("grpcs://h:7443", &[]).unwrap();
        assert_eq!(c.protocol(), Protocol::Grpc);
        assert_eq!(c.grpc_target().unwrap(), "https://h:7443");
        for bad in ["grpc://u:p@h:1", "grpc://h:1/x", "ftp://h"] {
            let e = TorchServeConfig::from_pairs(bad, &[("protocol", "grpc")])
                .unwrap()
                .validate()
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}");
        }
        assert_eq!(
            TorchServeConfig::from_pairs("http://h", &[])
                .unwrap()
                .protocol(),
            Protocol::Rest
        );
    }
}
