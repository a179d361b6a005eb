//! [`TritonConfig`]: the OIP settings plus Triton's own keys.
//!
//! | key | values | default |
//! |---|---|---|
//! | `binary_threshold_bytes` | bytes | 4096: REST inputs this large or larger travel binary |
//! | `request_compression` | `none`, `gzip`, `deflate` | `none` (REST request bodies; every gRPC request message) |
//! | `access_token` | text (secret in credentials) | none: sent as `triton-access-token` (REST) / `triton-grpc-protocol-triton-access-token` (gRPC) |
//! | `metrics_url` | URL of Triton's metrics port (`http://host:8002`) | none: [`crate::TritonClient::metrics`] is `Unsupported` |
//!
//! plus `protocol` and `grpc_url` ([`kit::WIRE_KEYS`]), every key of
//! [`inferlink_oip::KEYS`] (`tensor_encoding`: when set, it replaces the
//! size threshold; `grpc_authority`) and the shared transport's keys. The factory refuses
//! any other lower-case key.

use std::fmt;
use std::sync::Arc;

use inferlink_core::kit::{self, ConnectorConfig, config_error};
use inferlink_core::transport::config::KEY_SET as TRANSPORT_KEYS;
use inferlink_core::transport::config::StaticHeader;
use inferlink_core::{ConfigValue, Result, Secret};
use inferlink_oip::{OipConfig, Protocol, TensorEncoding};

use crate::client::{TritonConnector, VENDOR};

inferlink_core::config_keys! {
    /// The keys [`TritonConfig`] reads itself; it also reads
    /// `protocol` and `grpc_url` ([`kit::WIRE_KEYS`]), [`inferlink_oip::KEYS`]
    /// and the transport's.
    pub const KEYS for "triton" in mod keys {
        /// REST inputs of at least this many bytes travel binary (4096)
        BINARY_THRESHOLD_BYTES = "binary_threshold_bytes",
        /// none, gzip or deflate: REST inference bodies and gRPC request messages (none)
        REQUEST_COMPRESSION = "request_compression",
        /// token for Triton's restricted APIs (sent as triton-access-token)
        ACCESS_TOKEN = "access_token",
        /// base URL of Triton's metrics port, e.g. http://host:8002 (none)
        METRICS_URL = "metrics_url",
    }
}

/// Record products this factory serves.
pub const PRODUCTS: &[&str] = &[
    "triton",
    "nvidia-triton",
    "triton-inference-server",
    "tritonserver",
    "nvidia-triton-inference-server",
];
/// Service resources this factory serves (when no product matches).
pub const RESOURCES: &[&str] = &["triton", "triton-inference"];

/// The Triton factory: vendor `triton`, [`PRODUCTS`] and [`RESOURCES`],
/// reading [`KEYS`], OIP's keys and the transport's (any other lower-case
/// key is refused).
pub fn factory() -> kit::Factory {
    kit::Factory::new(
        VENDOR,
        PRODUCTS,
        RESOURCES,
        &[KEYS, inferlink_oip::KEYS, kit::WIRE_KEYS, TRANSPORT_KEYS],
        |target| Ok(Arc::new(TritonConnector::from_target(target)?)),
    )
}

/// The default of `binary_threshold_bytes`.
pub const DEFAULT_BINARY_THRESHOLD: usize = 4096;

/// The REST header Triton checks on restricted APIs.
pub const ACCESS_TOKEN_HEADER: &str = "triton-access-token";
/// The gRPC metadata key Triton checks on restricted APIs.
pub const ACCESS_TOKEN_METADATA: &str = "triton-grpc-protocol-triton-access-token";

/// How REST tensors are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorMode {
    /// Inputs of at least this many bytes (and inputs JSON cannot carry, and
    /// FP16/BF16) go binary, the rest JSON; outputs come back binary when any
    /// input went binary.
    Threshold(usize),
    /// One encoding for every request (`tensor_encoding` was set).
    Fixed(TensorEncoding),
}

inferlink_core::config_words! {
    /// Compression of REST inference bodies and gRPC request messages
    /// (Triton decompresses `gzip` and `deflate`).
    pub enum Compression for "request_compression" {
        /// Sent as is.
        None = "none" | "" | "identity" | "off" | "false",
        /// `Content-Encoding: gzip`.
        Gzip = "gzip",
        /// `Content-Encoding: deflate` (zlib format).
        Deflate = "deflate",
    }
}

/// Everything a Triton connector is built from.
#[derive(Clone)]
pub struct TritonConfig {
    /// The OIP settings (URL, protocol, gRPC URL, transport).
    pub oip: OipConfig,
    /// How REST tensors are encoded.
    pub tensor_mode: TensorMode,
    /// Compression of REST inference bodies.
    pub compression: Compression,
    /// The restricted-API token, if any.
    pub access_token: Option<Secret>,
    /// The metrics port's base URL, if any (Triton serves `/metrics` there,
    /// not on the HTTP port).
    pub metrics_url: Option<String>,
}

impl fmt::Debug for TritonConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TritonConfig")
            .field("protocol", &self.oip.protocol())
            .field("tensor_mode", &self.tensor_mode)
            .field("compression", &self.compression)
            .field("metrics_url", &self.metrics_url)
            .field(
                "access_token",
                &self.access_token.as_ref().map(|_| "<hidden>"),
            )
            .finish_non_exhaustive()
    }
}

impl TritonConfig {
    /// Defaults for an endpoint URL.
    pub fn new(url: impl Into<String>) -> Self {
        TritonConfig {
            oip: OipConfig::new(url),
            tensor_mode: TensorMode::Threshold(DEFAULT_BINARY_THRESHOLD),
            compression: Compression::None,
            access_token: None,
            metrics_url: None,
        }
    }

    /// The OIP configuration with the access token added as a header (REST)
    /// or metadata (gRPC).
    pub(crate) fn oip_with_token(&self) -> OipConfig {
        let mut oip = self.oip.clone();
        if let Some(token) = &self.access_token {
            let name = match oip.protocol() {
                Protocol::Rest => ACCESS_TOKEN_HEADER,
                Protocol::Grpc => ACCESS_TOKEN_METADATA,
            };
            oip.transport.headers.push(StaticHeader {
                name: name.to_owned(),
                value: ConfigValue::Secret(token.clone()),
            });
        }
        if let TensorMode::Fixed(e) = self.tensor_mode {
            oip.tensor_encoding = e;
        }
        oip.grpc_compression = match self.compression {
            Compression::None => None,
            Compression::Gzip => Some(tonic::codec::CompressionEncoding::Gzip),
            Compression::Deflate => Some(tonic::codec::CompressionEncoding::Deflate),
        };
        oip
    }
}

impl ConnectorConfig for TritonConfig {
    inferlink_core::config_basics!(oip.transport);

    /// Triton's keys, then OIP's.
    fn read_keys(&mut self, values: &[(String, ConfigValue)]) -> Result<()> {
        let mut threshold = None;
        let mut fixed = false;
        for (k, v) in values {
            match k.as_str() {
                keys::BINARY_THRESHOLD_BYTES => {
                    let n = v.expose().trim().parse::<u64>().map_err(|_| {
                        config_error(
                            keys::BINARY_THRESHOLD_BYTES,
                            "must be a whole number of bytes",
                        )
                    })?;
                    threshold = Some(usize::try_from(n).unwrap_or(usize::MAX));
                }
                keys::REQUEST_COMPRESSION => self.compression = v.expose().parse()?,
                keys::ACCESS_TOKEN => {
                    let t = v.expose().trim();
                    self.access_token = (!t.is_empty()).then(|| Secret::new(t));
                }
                keys::METRICS_URL => {
                    let u = v.expose().trim();
                    self.metrics_url = if u.is_empty() {
                        None
                    } else {
                        Some(kit::urls::http_url(keys::METRICS_URL, u)?)
                    };
                }
                inferlink_oip::config::keys::TENSOR_ENCODING => fixed = true,
                _ => {}
            }
        }
        self.oip.read_keys(values)?;
        if fixed {
            if threshold.is_some() {
                return Err(config_error(
                    keys::BINARY_THRESHOLD_BYTES,
                    "cannot be combined with tensor_encoding (set one of them)",
                ));
            }
            self.tensor_mode = TensorMode::Fixed(self.oip.tensor_encoding);
        } else if let Some(n) = threshold {
            self.tensor_mode = TensorMode::Threshold(n);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use inferlink_core::{ConnectTarget, ConnectorFactory as _, ErrorKind};

    use super::*;

    fn target(pairs: &[(&str, &str)]) -> ConnectTarget {
        pairs.iter().fold(
            ConnectTarget::new("triton", "http://127.0.0.1:1"),
            |t, (k, v)| t.with_plain(*k, *v),
        )
    }

    /// A typo'd key is refused at connect with the nearest key named;
    /// Triton's, OIP's, the transport's, environment and `x_` keys pass.
    #[tokio::test]
    async fn the_factory_refuses_an_unknown_key_with_a_suggestion() {
        let e = factory()
            .connect(&target(&[("request_compresion", "gzip")]))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        assert_eq!(e.path(), Some("request_compresion"));
        assert!(
            e.message().contains("did you mean \"request_compression\""),
            "{e}"
        );
        let ok = target(&[
            ("request_compression", "gzip"),
            ("tensor_encoding", "binary"),
            ("grpc_url", "grpc://127.0.0.1:2"),
            ("deadline_ms", "1000"),
            ("TRITON_MODEL", "doubler"),
            ("x_team", "vision"),
        ]);
        let c = factory().connect(&ok).await.unwrap();
        assert_eq!(c.info().vendor, "triton");
        assert!(c.capabilities().stream_infer);
    }

    #[test]
    fn compression_words_and_metrics_url() {
        assert_eq!("GZIP".parse::<Compression>().unwrap(), Compression::Gzip);
        assert_eq!("off".parse::<Compression>().unwrap(), Compression::None);
        let e = "brotli".parse::<Compression>().unwrap_err();
        assert_eq!(e.path(), Some(keys::REQUEST_COMPRESSION));
        assert!(e.message().contains("none, gzip, deflate"), "{e}");
        for bad in ["ftp://h:8002", "http://user:pw@h:8002", "not a url"] {
            let e = TritonConfig::from_target(&target(&[(keys::METRICS_URL, bad)])).unwrap_err();
            assert_eq!(e.path(), Some(keys::METRICS_URL), "{bad}");
            assert!(!e.to_string().contains("pw@"), "{e}");
        }
    }
}
