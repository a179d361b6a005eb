//! [`TritonConfig`]: the OIP settings plus Triton's own keys.
//!
//! | key | values | default |
//! |---|---|---|
//! | `binary_threshold_bytes` | bytes | 4096: REST inputs this large or larger travel binary |
//! | `request_compression` | `none`, `gzip`, `deflate` | `none` (REST request bodies; every gRPC request message) |
//! | `access_token` | text (secret in credentials) | none: sent as `triton-access-token` (REST) / `triton-grpc-protocol-triton-access-token` (gRPC) |
//! | `metrics_url` | URL of Triton's metrics port (`http://host:8002`) | none: [`crate::TritonClient::metrics`] is `Unsupported` |
//!
//! plus every key of `inferlink_oip::config` (`protocol`, `grpc_url`,
//! `tensor_encoding`: when set, it replaces the size threshold) and the
//! shared transport's keys.

use std::fmt;
use std::str::FromStr;

use inferlink_core::ConfigValue;
use inferlink_core::transport::config::StaticHeader;
use inferlink_core::{ConnectTarget, Error, ErrorKind, Result, Secret};
use inferlink_oip::{OipConfig, Protocol, TensorEncoding};

/// Configuration keys this crate reads (beyond OIP's and the transport's).
pub mod keys {
    /// REST inputs of at least this many bytes travel in binary.
    pub const BINARY_THRESHOLD_BYTES: &str = "binary_threshold_bytes";
    /// `none`, `gzip` or `deflate`: how REST inference bodies and gRPC
    /// request messages are compressed.
    pub const REQUEST_COMPRESSION: &str = "request_compression";
    /// The token for Triton's restricted APIs.
    pub const ACCESS_TOKEN: &str = "access_token";
    /// The base URL of Triton's metrics port (Prometheus text at `/metrics`).
    pub const METRICS_URL: &str = "metrics_url";
    /// Every key above.
    pub const ALL: &[&str] = &[
        BINARY_THRESHOLD_BYTES,
        REQUEST_COMPRESSION,
        ACCESS_TOKEN,
        METRICS_URL,
    ];
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

/// Compression of REST inference bodies and gRPC request messages (Triton
/// decompresses `gzip` and `deflate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Sent as is.
    #[default]
    None,
    /// `Content-Encoding: gzip`.
    Gzip,
    /// `Content-Encoding: deflate` (zlib format).
    Deflate,
}

impl Compression {
    /// The configuration word.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Deflate => "deflate",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Compression {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "none" | "identity" | "off" | "false" => Ok(Compression::None),
            "gzip" => Ok(Compression::Gzip),
            "deflate" => Ok(Compression::Deflate),
            other => Err(config_error(
                keys::REQUEST_COMPRESSION,
                format!("`{other}` is not one of none, gzip, deflate"),
            )),
        }
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

    /// Defaults for the target's endpoint overlaid with its configuration.
    pub fn from_target(target: &ConnectTarget) -> Result<Self> {
        TritonConfig::new(target.url.clone()).apply_target(target)
    }

    /// These settings overlaid with the target's merged configuration.
    pub fn apply_target(self, target: &ConnectTarget) -> Result<Self> {
        self.apply_values(target.values())
    }

    /// These settings overlaid with configuration values.
    pub fn apply_values<I, K>(mut self, values: I) -> Result<Self>
    where
        I: IntoIterator<Item = (K, ConfigValue)>,
        K: AsRef<str>,
    {
        let values: Vec<(String, ConfigValue)> = values
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_owned(), v))
            .collect();
        let mut threshold = None;
        let mut fixed = false;
        for (k, v) in &values {
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
                    if !u.is_empty() {
                        let parsed = inferlink_core::transport::Url::parse(u).map_err(|e| {
                            config_error(keys::METRICS_URL, format!("not a URL ({e})"))
                        })?;
                        if !matches!(parsed.scheme(), "http" | "https") {
                            return Err(config_error(
                                keys::METRICS_URL,
                                format!(
                                    "the scheme must be http or https, not {}",
                                    parsed.scheme()
                                ),
                            ));
                        }
                    }
                    self.metrics_url = (!u.is_empty()).then(|| u.to_owned());
                }
                inferlink_oip::config::keys::TENSOR_ENCODING => fixed = true,
                _ => {}
            }
        }
        self.oip = self.oip.apply_values(values)?;
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
        Ok(self)
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

pub(crate) fn config_error(key: &str, why: impl fmt::Display) -> Error {
    Error::new(ErrorKind::Config, why.to_string()).with_path(key.to_owned())
}
