//! [`OipConfig`]: which protocol, which URLs and which tensor encoding, read
//! from a target's merged configuration.
//!
//! Keys (see [`keys`]; `docs/connectors/oip.md` has the table):
//!
//! | key | values | default |
//! |---|---|---|
//! | `protocol` | `rest`, `grpc` | from the endpoint URL's scheme: `grpc://`/`grpcs://` → gRPC, else REST |
//! | `grpc_url` | URL of the gRPC port | the endpoint URL |
//! | `tensor_encoding` | `json`, `binary`, `auto` (REST only) | `json` |
//! | `grpc_authority` | `host[:port]` sent as gRPC `:authority` (and TLS server name) | the target's |
//!
//! Timeouts, retries, TLS and authentication come from the shared
//! transport's keys ([`inferlink_core::transport::config::keys`]) and apply to
//! both protocols.

use std::fmt;
use std::str::FromStr;

use inferlink_core::ConfigValue;
use inferlink_core::transport::TransportConfig;
use inferlink_core::{ConnectTarget, Error, ErrorKind, Result};

use crate::codec::TensorEncoding;

/// The configuration keys the OIP connector reads.
pub mod keys {
    /// `rest` or `grpc`.
    pub const PROTOCOL: &str = "protocol";
    /// The gRPC endpoint (`http://host:8001`, `https://…`, `grpc://…`, `grpcs://…`)
    /// when the record's endpoint URL is the REST one.
    pub const GRPC_URL: &str = "grpc_url";
    /// How REST requests carry tensors: `json`, `binary` or `auto`.
    pub const TENSOR_ENCODING: &str = "tensor_encoding";
    /// The `:authority` gRPC requests carry (`host[:port]`), when it differs
    /// from the address connected to (an ingress routing by virtual host).
    pub const GRPC_AUTHORITY: &str = "grpc_authority";

    /// Every key above.
    pub const ALL: &[&str] = &[PROTOCOL, GRPC_URL, TENSOR_ENCODING, GRPC_AUTHORITY];
}

/// Which wire protocol a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// HTTP/JSON (`/v2/...`), optionally with binary tensor data.
    Rest,
    /// gRPC (`inference.GRPCInferenceService`).
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

    /// The protocol name shown in [`inferlink_core::ConnectorInfo::protocol`]:
    /// `oip-rest` or `oip-grpc`.
    pub fn info_name(self) -> &'static str {
        match self {
            Protocol::Rest => "oip-rest",
            Protocol::Grpc => "oip-grpc",
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

/// The transport defaults of OIP connectors: the shared transport's, except
/// `gzip: false`. Tensor payloads compress poorly, and a server that honours
/// `Accept-Encoding: gzip` (Triton does) spends far longer compressing a large
/// binary response than sending it (a 1M-element FP32 round trip measured
/// 333 ms with gzip against 13 ms without; docs/performance.md). A record's
/// `gzip: "true"` turns it back on.
pub fn default_transport() -> TransportConfig {
    let mut config = TransportConfig::default();
    config.gzip = false;
    config
}

impl OipConfig {
    /// Defaults for an endpoint URL.
    pub fn new(url: impl Into<String>) -> Self {
        OipConfig {
            url: url.into(),
            protocol: None,
            grpc_url: None,
            tensor_encoding: TensorEncoding::default(),
            grpc_authority: None,
            grpc_compression: None,
            model_header: None,
            transport: default_transport(),
        }
    }

    /// Defaults for the target's endpoint overlaid with its merged configuration.
    pub fn from_target(target: &ConnectTarget) -> Result<Self> {
        OipConfig::new(target.url.clone()).apply_target(target)
    }

    /// These settings (for example a vendor crate's defaults) overlaid with
    /// the target's merged configuration (OIP keys and transport keys).
    pub fn apply_target(self, target: &ConnectTarget) -> Result<Self> {
        self.apply_values(target.values())
    }

    /// These settings overlaid with configuration values (key → value).
    /// Keys neither OIP nor the transport owns are ignored.
    pub fn apply_values<I, K>(mut self, values: I) -> Result<Self>
    where
        I: IntoIterator<Item = (K, ConfigValue)>,
        K: AsRef<str>,
    {
        let values: Vec<(K, ConfigValue)> = values.into_iter().collect();
        for (k, v) in &values {
            match k.as_ref() {
                keys::PROTOCOL => self.protocol = Some(v.expose().parse()?),
                keys::GRPC_URL => {
                    let url = v.expose().trim();
                    self.grpc_url = (!url.is_empty()).then(|| url.to_owned());
                }
                keys::GRPC_AUTHORITY => {
                    let authority = v.expose().trim();
                    self.grpc_authority = if authority.is_empty() {
                        None
                    } else {
                        Some(check_authority(authority, keys::GRPC_AUTHORITY)?)
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

    /// The REST base URL (the endpoint URL, which must be `http` or `https`).
    pub fn rest_url(&self) -> Result<&str> {
        match scheme(&self.url).as_deref() {
            Some("http" | "https") => Ok(&self.url),
            _ => Err(config_error(
                "url",
                "a REST endpoint URL must start with http:// or https:// (for gRPC set \
                 protocol: grpc or use a grpc:// URL)",
            )),
        }
    }

    /// The gRPC target as an `http`/`https` URL: `grpc_url` if set, else the
    /// endpoint URL; `grpc://` means plain HTTP/2, `grpcs://` TLS.
    pub fn grpc_target(&self) -> Result<String> {
        let (key, raw) = match &self.grpc_url {
            Some(u) => (keys::GRPC_URL, u.as_str()),
            None => ("url", self.url.as_str()),
        };
        let mut url = url::Url::parse(raw.trim())
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
        if url.host_str().is_none_or(str::is_empty) {
            return Err(config_error(key, "the URL has no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(config_error(
                key,
                "credentials in the URL are not allowed; use the auth_* keys",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(config_error(key, "a query or fragment is not allowed"));
        }
        let path = url.path().trim_end_matches('/').to_owned();
        if !path.is_empty() {
            return Err(config_error(
                key,
                "a gRPC URL cannot have a path (gRPC methods live at the root)",
            ));
        }
        let port = url.port();
        let host = url.host_str().unwrap_or_default().to_owned();
        let scheme = if secure { "https" } else { "http" };
        url = url::Url::parse(&format!("{scheme}://{}", host_port(&host, port)))
            .map_err(|e| config_error(key, format!("not a valid URL ({e})")))?;
        Ok(url.as_str().trim_end_matches('/').to_owned())
    }
}

/// Checks an HTTP authority (`host` or `host:port`, IPv6 in brackets; no
/// user info, path or spaces) and returns it lower-cased; a
/// [`ErrorKind::Config`] error naming `key` otherwise.
pub fn check_authority(authority: &str, key: &str) -> Result<String> {
    let bad = |why: &str| {
        config_error(
            key,
            format!(
                "\"{}\" is not a host[:port] authority: {why}",
                authority.escape_debug()
            ),
        )
    };
    if authority.contains(['/', '@', '?', '#']) || authority.chars().any(char::is_whitespace) {
        return Err(bad("no scheme, path, user info or spaces"));
    }
    let url = url::Url::parse(&format!("http://{authority}")).map_err(|e| bad(&e.to_string()))?;
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("no host"))?;
    Ok(match authority.rsplit_once(':') {
        Some((_, port)) if !authority.ends_with(']') => {
            let port: u16 = port.parse().map_err(|_| bad("the port is not a number"))?;
            format!("{host}:{port}")
        }
        _ => host.to_owned(),
    })
}

fn host_port(host: &str, port: Option<u16>) -> String {
    match port {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    }
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

    fn cfg(url: &str, pairs: &[(&str, &str)]) -> Result<OipConfig> {
        OipConfig::new(url).apply_values(
            pairs
                .iter()
                .map(|(k, v)| (*k, ConfigValue::Plain((*v).to_owned()))),
        )
    }

    #[test]
    fn protocol_follows_key_then_scheme() {
        assert_eq!(
            cfg("http://h:8000", &[]).unwrap().protocol(),
            Protocol::Rest
        );
        assert_eq!(
            cfg("grpc://h:8001", &[]).unwrap().protocol(),
            Protocol::Grpc
        );
        assert_eq!(cfg("grpcs://h", &[]).unwrap().protocol(), Protocol::Grpc);
        let c = cfg("http://h:8000", &[("protocol", "GRPC")]).unwrap();
        assert_eq!(c.protocol(), Protocol::Grpc);
        let e = cfg("http://h", &[("protocol", "soap")]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert_eq!(e.path(), Some("protocol"));
    }

    #[test]
    fn grpc_target_maps_schemes_and_prefers_grpc_url() {
        let c = cfg("http://h:8000", &[("grpc_url", "grpc://h:8001")]).unwrap();
        assert_eq!(c.grpc_target().unwrap(), "http://h:8001");
        let c = cfg("grpcs://h:443", &[]).unwrap();
        assert_eq!(c.grpc_target().unwrap(), "https://h");
        let c = cfg("http://[::1]:9/", &[]).unwrap();
        assert_eq!(c.grpc_target().unwrap(), "http://[::1]:9");
        for bad in [
            "ftp://h",
            "grpc://u:p@h:1",
            "grpc://h:1/v2",
            "grpc://h:1?x=1",
            "nope",
        ] {
            let e = cfg(bad, &[("protocol", "grpc")])
                .unwrap()
                .grpc_target()
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}: {e}");
        }
        let e = cfg("http://h", &[("grpc_url", "ftp://x")])
            .unwrap()
            .grpc_target()
            .unwrap_err();
        assert_eq!(e.path(), Some("grpc_url"));
    }

    #[test]
    fn tensor_encoding_and_transport_keys_are_read() {
        let c = cfg(
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
        let e = cfg("http://h", &[("tensor_encoding", "xml")]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert_eq!(e.path(), Some("tensor_encoding"));
        let e = cfg("http://h", &[("timeout_request_ms", "soon")]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
    }

    #[test]
    fn grpc_authority_is_checked() {
        let c = cfg(
            "grpc://10.0.0.1:80",
            &[("grpc_authority", "Doubler.NS.example.com")],
        )
        .unwrap();
        assert_eq!(c.grpc_authority.as_deref(), Some("doubler.ns.example.com"));
        let c = cfg("grpc://h:1", &[("grpc_authority", "a.b:8443")]).unwrap();
        assert_eq!(c.grpc_authority.as_deref(), Some("a.b:8443"));
        let c = cfg("grpc://h:1", &[("grpc_authority", "[::1]:9")]).unwrap();
        assert_eq!(c.grpc_authority.as_deref(), Some("[::1]:9"));
        assert_eq!(
            cfg("grpc://h:1", &[("grpc_authority", " ")])
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
            let e = cfg("grpc://h:1", &[("grpc_authority", bad)]).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}");
            assert_eq!(e.path(), Some("grpc_authority"), "{bad}");
        }
    }

    #[test]
    fn rest_url_requires_http() {
        assert!(cfg("https://h/base", &[]).unwrap().rest_url().is_ok());
        let e = cfg("grpc://h:1", &[("protocol", "rest")])
            .unwrap()
            .rest_url()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
    }
}
