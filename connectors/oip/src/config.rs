//! [`OipConfig`]: which protocol, which URLs and which tensor encoding, read
//! from a target's merged configuration.
//!
//! Keys ([`KEYS`]; `docs/connectors/oip.md` has the table):
//!
//! | key | values | default |
//! |---|---|---|
//! | `protocol` | `rest`, `grpc` | from the endpoint URL's scheme: `grpc://`/`grpcs://` → gRPC, else REST |
//! | `grpc_url` | URL of the gRPC port | the endpoint URL |
//! | `tensor_encoding` | `json`, `binary`, `auto` (REST only) | `json` |
//! | `grpc_authority` | `host[:port]` sent as gRPC `:authority` (and TLS server name) | the target's |
//!
//! Timeouts, retries, TLS and authentication come from the shared
//! transport's keys ([`inferlink_core::transport::config::KEY_SET`]) and
//! apply to both protocols. The factory refuses any other lower-case key.

use std::sync::Arc;

use inferlink_core::kit::{self, ConnectorConfig, config_error};
use inferlink_core::transport::TransportConfig;
use inferlink_core::transport::config::KEY_SET as TRANSPORT_KEYS;
use inferlink_core::{ConfigValue, Error, Result};

use crate::client::{DEFAULT_VENDOR, OipConnector};
use crate::codec::TensorEncoding;

inferlink_core::config_keys! {
    /// The keys [`OipConfig`] reads itself; it also reads `protocol` and
    /// `grpc_url` ([`kit::WIRE_KEYS`]) and the transport's.
    pub const KEYS for "oip" in mod keys {
        /// how REST requests carry tensors: json, binary or auto (default json)
        TENSOR_ENCODING = "tensor_encoding",
        /// host[:port] sent as the gRPC :authority and TLS server name (default: the URL's)
        GRPC_AUTHORITY = "grpc_authority",
    }
}

/// Record products the generic factory serves.
pub const PRODUCTS: &[&str] = &[
    "oip",
    "open-inference",
    "open-inference-protocol",
    "kserve-v2",
];
/// Service resources the generic factory serves (when no product matches).
pub const RESOURCES: &[&str] = &["oip", "inference-v2", "v2-inference", "open-inference"];

/// The factory of generic Open Inference Protocol servers: vendor `oip`,
/// the products and resources in [`PRODUCTS`] and [`RESOURCES`], the keys
/// of [`KEYS`], [`kit::WIRE_KEYS`] and the transport's.
pub fn factory() -> kit::Factory {
    kit::Factory::new(
        DEFAULT_VENDOR,
        PRODUCTS,
        RESOURCES,
        &[KEYS, kit::WIRE_KEYS, TRANSPORT_KEYS],
        |target| Ok(Arc::new(OipConnector::from_target(target)?)),
    )
}

/// Which wire protocol a client speaks: REST (`/v2/...`, optionally with
/// binary tensor data) or gRPC (`inference.GRPCInferenceService`).
pub use inferlink_core::kit::WireProtocol as Protocol;

/// The protocol names shown in [`inferlink_core::ConnectorInfo::protocol`]
/// (REST, gRPC).
pub const INFO_NAMES: (&str, &str) = ("oip-rest", "oip-grpc");

/// A header whose value is computed from the model of each call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelHeader {
    /// The header name (lowercased as gRPC metadata).
    pub name: String,
    /// The value, where `{model}` stands for the called model's name (e.g.
    /// `{model}` or `{model}.pipeline`).
    pub template: String,
}

impl ModelHeader {
    /// The value for a call about `model`.
    pub fn value_for(&self, model: &inferlink_core::ModelRef) -> String {
        self.template.replace("{model}", &model.name)
    }
}

/// Everything an [`crate::OipClient`] needs to connect.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OipConfig {
    /// The record's endpoint URL.
    pub url: String,
    /// The protocol; `None` picks it from the URL scheme (see [`OipConfig::protocol`]).
    pub protocol: Option<Protocol>,
    /// The gRPC endpoint when it differs from [`OipConfig::url`] (key `grpc_url`).
    pub grpc_url: Option<String>,
    /// How REST requests carry tensors (key `tensor_encoding`, default `json`).
    pub tensor_encoding: TensorEncoding,
    /// The gRPC `:authority` (`host[:port]`) when it differs from the
    /// connected address (key `grpc_authority`); with TLS also the server
    /// name the certificate is checked against. `None`: the target's.
    pub grpc_authority: Option<String>,
    /// Compression of gRPC request messages (not a key of this crate: a
    /// vendor crate sets it, e.g. Triton's `request_compression`). `None`:
    /// uncompressed.
    pub grpc_compression: Option<tonic::codec::CompressionEncoding>,
    /// A header (gRPC metadata) naming the model of each call, for gateways
    /// that route on it (Seldon Core 2's `Seldon-Model`). Not a key of this
    /// crate: a vendor crate sets it. `None`: no such header.
    pub model_header: Option<ModelHeader>,
    /// Timeouts, retries, TLS, authentication, headers (the shared transport's keys).
    pub transport: TransportConfig,
}

impl OipConfig {
    /// OIP's defaults for an endpoint URL: protocol from the URL, JSON
    /// tensors, and the transport's defaults except `gzip: false` (large
    /// tensors compress poorly; docs/performance.md). Triton, KServe and
    /// Seldon start from these.
    pub fn new(url: impl Into<String>) -> Self {
        OipConfig {
            url: url.into(),
            protocol: None,
            grpc_url: None,
            tensor_encoding: TensorEncoding::default(),
            grpc_authority: None,
            grpc_compression: None,
            model_header: None,
            transport: oip_transport_defaults(),
        }
    }

    /// The protocol in effect: the `protocol` key, else `grpc` for a
    /// `grpc://` or `grpcs://` endpoint URL, else `rest`.
    pub fn protocol(&self) -> Protocol {
        Protocol::or_from_url(self.protocol, &self.url)
    }

    /// The REST base URL (the endpoint URL, which must be `http` or `https`).
    pub fn rest_url(&self) -> Result<String> {
        if !matches!(
            kit::urls::scheme(&self.url).as_deref(),
            Some("http" | "https")
        ) {
            return Err(config_error(
                "url",
                "a REST endpoint URL must start with http:// or https:// (for gRPC set \
                 protocol: grpc or use a grpc:// URL)",
            ));
        }
        kit::urls::http_url("url", &self.url)
    }

    /// The gRPC target as an `http`/`https` URL: `grpc_url` if set, else the
    /// endpoint URL; `grpc://` means plain HTTP/2, `grpcs://` TLS.
    pub fn grpc_target(&self) -> Result<String> {
        kit::wire::grpc_target(self.grpc_url.as_deref(), &self.url)
    }
}

impl ConnectorConfig for OipConfig {
    inferlink_core::config_basics!(transport);

    /// The OIP keys; a vendor crate built on OIP reads its own keys first
    /// and hands the rest here (keys neither reads are ignored: the
    /// factory refuses them, [`kit::check_keys`]).
    fn read_keys(&mut self, values: &[(String, ConfigValue)]) -> Result<()> {
        for (k, v) in values {
            match k.as_str() {
                Protocol::KEY => self.protocol = Some(v.expose().parse()?),
                kit::wire::GRPC_URL => self.grpc_url = kit::wire::grpc_url_setting(v.expose()),
                keys::GRPC_AUTHORITY => {
                    let authority = v.expose().trim();
                    self.grpc_authority = if authority.is_empty() {
                        None
                    } else {
                        Some(kit::urls::check_authority(keys::GRPC_AUTHORITY, authority)?)
                    };
                }
                keys::TENSOR_ENCODING => {
                    self.tensor_encoding = v
                        .expose()
                        .parse()
                        .map_err(|e: Error| config_error(keys::TENSOR_ENCODING, e.message()))?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The transport defaults of OIP connectors: the shared transport's, except
/// `gzip: false`. Tensor payloads compress poorly, and a server that honours
/// `Accept-Encoding: gzip` (Triton does) spends far longer compressing a large
/// binary response than sending it (a 1M-element FP32 round trip measured
/// 333 ms with gzip against 13 ms without; docs/performance.md). A record's
/// (or a host setting's) `gzip: "true"` turns it back on.
fn oip_transport_defaults() -> TransportConfig {
    let mut config = TransportConfig::default();
    config.gzip = false;
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use inferlink_core::ErrorKind;

    #[test]
    fn protocol_follows_key_then_scheme() {
        assert_eq!(
            OipConfig::from_pairs("http://h:8000", &[])
                .unwrap()
                .protocol(),
            Protocol::Rest
        );
        assert_eq!(
            OipConfig::from_pairs("grpc://h:8001", &[])
                .unwrap()
                .protocol(),
            Protocol::Grpc
        );
        assert_eq!(
            OipConfig::from_pairs("grpcs://h", &[]).unwrap().protocol(),
            Protocol::Grpc
        );
        let c = OipConfig::from_pairs("http://h:8000", &[("protocol", "GRPC")]).unwrap();
        assert_eq!(c.protocol(), Protocol::Grpc);
        let e = OipConfig::from_pairs("http://h", &[("protocol", "soap")]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert_eq!(e.path(), Some("protocol"));
    }

    #[test]
    fn grpc_target_maps_schemes_and_prefers_grpc_url() {
        let c = OipConfig::from_pairs("http://h:8000", &[("grpc_url", "grpc://h:8001")]).unwrap();
        assert_eq!(c.grpc_target().unwrap(), "http://h:8001");
        let c = OipConfig::from_pairs("grpcs://h:443", &[]).unwrap();
        assert_eq!(c.grpc_target().unwrap(), "https://h");
        let c = OipConfig::from_pairs("http://[::1]:9/", &[]).unwrap();
        assert_eq!(c.grpc_target().unwrap(), "http://[::1]:9");
        for bad in [
            "ftp://h",
            "grpc://u:p@h:1",
            "grpc://h:1/v2",
            "grpc://h:1?x=1",
            "nope",
        ] {
            let e = OipConfig::from_pairs(bad, &[("protocol", "grpc")])
                .unwrap()
                .grpc_target()
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}: {e}");
        }
        let e = OipConfig::from_pairs("http://h", &[("grpc_url", "ftp://x")])
            .unwrap()
            .grpc_target()
            .unwrap_err();
        assert_eq!(e.path(), Some("grpc_url"));
    }

    #[test]
    fn tensor_encoding_and_transport_keys_are_read() {
        let c = OipConfig::from_pairs(
            "http://h",
            &[
                ("tensor_encoding", "Binary"),
                ("timeout_request_ms", "1500"),
                ("MODEL", "x"),
            ],
        )
        .unwrap();
        assert_eq!(c.tensor_encoding, TensorEncoding::Binary);
        assert_eq!(c.transport.timeout_request.as_millis(), 1500);
        let e = OipConfig::from_pairs("http://h", &[("tensor_encoding", "xml")]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert_eq!(e.path(), Some("tensor_encoding"));
        let e = OipConfig::from_pairs("http://h", &[("timeout_request_ms", "soon")]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
    }

    #[test]
    fn grpc_authority_is_checked() {
        let c = OipConfig::from_pairs(
            "grpc://10.0.0.1:80",
            &[("grpc_authority", "Doubler.NS.example.com")],
        )
        .unwrap();
        assert_eq!(c.grpc_authority.as_deref(), Some("doubler.ns.example.com"));
        let c = OipConfig::from_pairs("grpc://h:1", &[("grpc_authority", "a.b:8443")]).unwrap();
        assert_eq!(c.grpc_authority.as_deref(), Some("a.b:8443"));
        let c = OipConfig::from_pairs("grpc://h:1", &[("grpc_authority", "[::1]:9")]).unwrap();
        assert_eq!(c.grpc_authority.as_deref(), Some("[::1]:9"));
        assert_eq!(
            OipConfig::from_pairs("grpc://h:1", &[("grpc_authority", " ")])
                .unwrap()
                .grpc_authority,
            None
        );
        for bad in [
            "http://a.b",
            "a.b/x",
            "u@a.b",
            "a b",
            "a.b:port",
            "a.b:70000",
        ] {
            let e = OipConfig::from_pairs("grpc://h:1", &[("grpc_authority", bad)]).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}");
            assert_eq!(e.path(), Some("grpc_authority"), "{bad}");
        }
    }

    #[test]
    fn rest_url_requires_http() {
        assert!(
            OipConfig::from_pairs("https://h/base", &[])
                .unwrap()
                .rest_url()
                .is_ok()
        );
        let e = OipConfig::from_pairs("grpc://h:1", &[("protocol", "rest")])
            .unwrap()
            .rest_url()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
    }
}
