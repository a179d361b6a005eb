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

use std::fmt;
use std::str::FromStr;

use inferlink_core::ConfigValue;
use inferlink_core::transport::TransportConfig;
use inferlink_core::{ConnectTarget, Error, ErrorKind, Result, Secret};

/// The configuration keys the TorchServe connector reads.
pub mod keys {
    /// The management API's base URL (`http://host:8081`).
    pub const MANAGEMENT_URL: &str = "management_url";
    /// `rest` or `grpc` (inference calls).
    pub const PROTOCOL: &str = "protocol";
    /// The gRPC inference endpoint when the record's endpoint URL is the REST one.
    pub const GRPC_URL: &str = "grpc_url";
    /// Which REST route `infer` uses: `predictions`, `kserve-v1` or `kserve-v2`.
    pub const INFERENCE_API: &str = "inference_api";
    /// The inference token (`Authorization: Bearer` on the inference API and gRPC).
    pub const INFERENCE_KEY: &str = "inference_key";
    /// The management token (`Authorization: Bearer` on the management API).
    pub const MANAGEMENT_KEY: &str = "management_key";

    /// Every key above.
    pub const ALL: &[&str] = &[
        MANAGEMENT_URL,
        PROTOCOL,
        GRPC_URL,
        INFERENCE_API,
        INFERENCE_KEY,
        MANAGEMENT_KEY,
    ];
}

/// Which wire protocol inference calls use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// The REST inference API (port 8080).
    Rest,
    /// gRPC `org.pytorch.serve.grpc.inference.InferenceAPIsService` (port 7070).
    Grpc,
}

impl Protocol {
    /// The configuration word: `rest` or `grpc`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Rest => "rest",
            Protocol::Grpc => "grpc",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "rest" | "http" | "https" => Ok(Protocol::Rest),
            "grpc" => Ok(Protocol::Grpc),
            _ => Err(config_error(
                keys::PROTOCOL,
                format!("\"{}\" is not rest or grpc", s.escape_debug()),
            )),
        }
    }
}

/// The REST route tensor inference (`infer`) goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum InferenceApi {
    /// `POST /predictions/MODEL[/VERSION]` with the nested-JSON tensor
    /// mapping of [`crate::codec`] (any handler that takes and returns JSON arrays).
    #[default]
    Predictions,
    /// `POST /v1/models/MODEL:predict` with `{"instances": …}` (KServe V1;
    /// works with the default envelope and with `service_envelope=kserve`).
    KServeV1,
    /// `POST /v2/models/MODEL/infer` with Open Inference Protocol JSON
    /// (the server runs with `service_envelope=kservev2`).
    KServeV2,
}

impl InferenceApi {
    /// The configuration word.
    pub fn as_str(self) -> &'static str {
        match self {
            InferenceApi::Predictions => "predictions",
            InferenceApi::KServeV1 => "kserve-v1",
            InferenceApi::KServeV2 => "kserve-v2",
        }
    }
}

impl fmt::Display for InferenceApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for InferenceApi {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "predictions" | "torchserve" => Ok(InferenceApi::Predictions),
            "kserve-v1" | "kserve" | "v1" => Ok(InferenceApi::KServeV1),
            "kserve-v2" | "kservev2" | "v2" | "oip" => Ok(InferenceApi::KServeV2),
            _ => Err(config_error(
                keys::INFERENCE_API,
                format!(
                    "\"{}\" is not predictions, kserve-v1 or kserve-v2",
                    s.escape_debug()
                ),
            )),
        }
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

    /// Defaults for the target's endpoint overlaid with its merged configuration.
    pub fn from_target(target: &ConnectTarget) -> Result<Self> {
        TorchServeConfig::new(target.url.clone()).apply_target(target)
    }

    /// These settings overlaid with the target's merged configuration.
    pub fn apply_target(self, target: &ConnectTarget) -> Result<Self> {
        self.apply_values(target.values())
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

    /// These settings overlaid with configuration values (key → value).
    /// Keys neither TorchServe nor the transport owns are ignored.
    pub fn apply_values<I, K>(mut self, values: I) -> Result<Self>
    where
        I: IntoIterator<Item = (K, ConfigValue)>,
        K: AsRef<str>,
    {
        let values: Vec<(K, ConfigValue)> = values.into_iter().collect();
        for (k, v) in &values {
            let text = v.expose().trim();
            match k.as_ref() {
                keys::MANAGEMENT_URL => {
                    self.management_url = (!text.is_empty()).then(|| text.to_owned());
                }
                keys::PROTOCOL => self.protocol = Some(text.parse()?),
                keys::GRPC_URL => self.grpc_url = (!text.is_empty()).then(|| text.to_owned()),
                keys::INFERENCE_API => self.inference_api = text.parse()?,
                keys::INFERENCE_KEY => self.inference_key = key_value(keys::INFERENCE_KEY, text)?,
                keys::MANAGEMENT_KEY => {
                    self.management_key = key_value(keys::MANAGEMENT_KEY, text)?;
                }
                _ => {}
            }
        }
        self.transport = self.transport.apply_values(values)?;
        Ok(self)
    }

    /// The protocol in effect: the `protocol` key, else `grpc` for a
    /// `grpc://` or `grpcs://` endpoint URL, else `rest`.
    pub fn protocol(&self) -> Protocol {
        self.protocol.unwrap_or_else(|| {
            if scheme(&self.url).is_some_and(|s| s == "grpc" || s == "grpcs") {
                Protocol::Grpc
            } else {
                Protocol::Rest
            }
        })
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

    /// The gRPC target as an `http`/`https` URL: `grpc_url` if set, else the
    /// endpoint URL; `grpc://` means plain HTTP/2, `grpcs://` TLS.
    pub fn grpc_target(&self) -> Result<String> {
        let (key, raw) = match &self.grpc_url {
            Some(u) => (keys::GRPC_URL, u.as_str()),
            None => ("url", self.url.as_str()),
        };
        let url = url::Url::parse(raw.trim())
            .map_err(|e| config_error(key, format!("not a valid URL ({e})")))?;
        let secure = match url.scheme() {
            "http" | "grpc" => false,
            "https" | "grpcs" => true,
            other => {
                return Err(config_error(
                    key,
                    format!("scheme \"{other}\" is not http, https, grpc or grpcs"),
                ));
            }
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| config_error(key, "the URL has no host"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(config_error(
                key,
                "credentials in the URL are not allowed; use inference_key",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(config_error(key, "a query or fragment is not allowed"));
        }
        if !url.path().trim_end_matches('/').is_empty() {
            return Err(config_error(
                key,
                "a gRPC URL cannot have a path (gRPC methods live at the root)",
            ));
        }
        let scheme = if secure { "https" } else { "http" };
        Ok(match url.port() {
            Some(p) => format!("{scheme}://{host}:{p}"),
            None => format!("{scheme}://{host}"),
        })
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

fn http_url(key: &str, raw: &str) -> Result<()> {
    let url = url::Url::parse(raw.trim())
        .map_err(|e| config_error(key, format!("not a valid URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(config_error(
            key,
            "a REST URL must start with http:// or https:// (for gRPC inference set protocol: \
             grpc or use a grpc:// URL)",
        ));
    }
    Ok(())
}

fn scheme(url: &str) -> Option<String> {
    url.trim()
        .split_once("://")
        .map(|(s, _)| s.to_ascii_lowercase())
}

pub(crate) fn config_error(key: &str, why: impl fmt::Display) -> Error {
    Error::new(ErrorKind::Config, why.to_string()).with_path(key.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(url: &str, pairs: &[(&str, &str)]) -> Result<TorchServeConfig> {
        TorchServeConfig::new(url).apply_values(pairs.iter().map(|(k, v)| {
            let value = if k.ends_with("_key") {
                ConfigValue::Secret(Secret::new(*v))
            } else {
                ConfigValue::Plain((*v).to_owned())
            };
            (*k, value)
        }))
    }

    #[test]
    fn keys_are_read_and_checked() {
        let c = cfg(
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
        let e = cfg("http://h", &[("inference_api", "soap")]).unwrap_err();
        assert_eq!(
            (e.kind(), e.path()),
            (ErrorKind::Config, Some("inference_api"))
        );
        let e = cfg("http://h", &[("protocol", "carrier-pigeon")]).unwrap_err();
        assert_eq!(e.path(), Some("protocol"));
        let e = cfg("http://h", &[("inference_key", "has space")]).unwrap_err();
        assert_eq!(e.path(), Some("inference_key"));
        assert!(!e.to_string().contains("has space"), "{e}");
        let e = cfg("http://h", &[("management_url", "ftp://h")])
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(e.path(), Some("management_url"));
        let e = cfg("grpc://h:7070", &[("inference_api", "kserve-v2")])
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(e.path(), Some("inference_api"));
        let e = cfg("http://h", &[("timeout_conect_ms", "1")]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
    }

    #[test]
    fn protocol_and_grpc_target_follow_the_urls() {
        let c = cfg(
            "http://h:8080",
            &[("grpc_url", "grpc://h:7070"), ("protocol", "grpc")],
        )
        .unwrap();
        assert_eq!(c.protocol(), Protocol::Grpc);
        assert_eq!(c.grpc_target().unwrap(), "http://h:7070");
        let c = cfg("grpcs://h:7443", &[]).unwrap();
        assert_eq!(c.protocol(), Protocol::Grpc);
        assert_eq!(c.grpc_target().unwrap(), "https://h:7443");
        for bad in ["grpc://u:p@h:1", "grpc://h:1/x", "ftp://h"] {
            let e = cfg(bad, &[("protocol", "grpc")])
                .unwrap()
                .validate()
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}");
        }
        assert_eq!(cfg("http://h", &[]).unwrap().protocol(), Protocol::Rest);
    }
}
