//! [`KServeConfig`]: which protocol (V1, V2 REST, V2 gRPC or discovered),
//! which virtual host an ingress routes by, and how V1 predictions become
//! tensors — read from a target's merged configuration.
//!
//! Keys ([`KEYS`]; `docs/connectors/kserve.md` has the table):
//!
//! | key | values | default |
//! |---|---|---|
//! | `protocol` | `v1`, `v2` (REST), `v2-grpc`, `auto` | `v2-grpc` for a `grpc://`/`grpcs://` URL, else `auto` |
//! | `isvc_name`, `isvc_namespace`, `isvc_domain` | the InferenceService, its namespace, the ingress domain | — / — / `example.com` |
//! | `isvc_host_template` | `{name}`, `{namespace}`, `{domain}` placeholders (or KServe's `{{ .Name }}` form) | `{name}.{namespace}.{domain}` |
//! | `ingress_host` | an explicit `Host` / `:authority` | built from the `isvc_*` keys |
//! | `v1_output_name` | output tensor name for V1 predictions | `predictions` |
//! | `v1_output_datatype` | a datatype V1 predictions are read as | see [`crate::codec`] |
//!
//! The other keys go to `inferlink-oip` (`grpc_url`, [`kit::GRPC_URL_KEYS`];
//! `tensor_encoding`, `grpc_authority`, [`inferlink_oip::KEYS`]) and the shared transport
//! (timeouts, retries, TLS, authentication, `header_*`). The factory refuses
//! any other lower-case key.

use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use inferlink_core::kit::{self, ConnectorConfig, KeySet, config_error};
use inferlink_core::transport::StaticHeader;
use inferlink_core::transport::config::KEY_SET as TRANSPORT_KEYS;
use inferlink_core::{
    ConfigValue, ConnectTarget, ConnectorFactory, DataType, Error, InferenceConnector, Result,
};
use inferlink_oip::OipConfig;

use crate::client::{KServeClient, VENDOR};

inferlink_core::config_keys! {
    /// The keys [`KServeConfig`] reads itself; it also reads
    /// `grpc_url` ([`kit::GRPC_URL_KEYS`]), [`inferlink_oip::KEYS`] and the
    /// transport's.
    pub const KEYS for "kserve" in mod keys {
        /// v1, v2 (REST), v2-grpc or auto (default: v2-grpc for grpc:// URLs, else auto)
        PROTOCOL = "protocol",
        /// the InferenceService (first label of its host)
        ISVC_NAME = "isvc_name",
        /// the InferenceService's namespace
        ISVC_NAMESPACE = "isvc_namespace",
        /// the ingress domain hosts are built under (example.com)
        ISVC_DOMAIN = "isvc_domain",
        /// the host from {name}, {namespace}, {domain} ({name}.{namespace}.{domain})
        ISVC_HOST_TEMPLATE = "isvc_host_template",
        /// an explicit Host / gRPC :authority (wins over the isvc_* keys)
        INGRESS_HOST = "ingress_host",
        /// the tensor name of V1 predictions (predictions)
        V1_OUTPUT_NAME = "v1_output_name",
        /// the datatype V1 predictions are read as (follows the request)
        V1_OUTPUT_DATATYPE = "v1_output_datatype",
    }
}

/// Every key set a KServe record may use: [`KEYS`], OIP's (`grpc_url` and
/// [`inferlink_oip::KEYS`]) and the transport's.
pub const KEY_SETS: &[KeySet] = &[
    KEYS,
    inferlink_oip::KEYS,
    kit::GRPC_URL_KEYS,
    TRANSPORT_KEYS,
];

/// Record products served: KServe and its former name KFServing (the
/// seeds' records say `product: kserve`).
pub const PRODUCTS: &[&str] = &["kserve", "kfserving"];
/// Service resources served when no factory claims the product: a KServe
/// predictor's data plane. (`kserve-api` / `kfserve-api` in the seeds name
/// the Kubernetes control-plane API, which is not an inference endpoint.)
pub const RESOURCES: &[&str] = &["kserve-predictor", "kserve-inference", "inference-v1"];

/// The KServe factory: vendor `kserve`, [`PRODUCTS`] and [`RESOURCES`].
///
/// `connect` refuses keys none of [`KEY_SETS`] reads, reads and checks the
/// configuration, and with `protocol: auto` (the default for `http(s)://`
/// endpoints) asks the server which protocol it speaks, so it fails with
/// the transport's error when the server cannot be reached. (Discovery is
/// asynchronous, which `kit::Factory`'s build function is not: hence this
/// type.)
#[derive(Debug, Clone, Copy, Default)]
pub struct KServeFactory;

/// The KServe factory ([`KServeFactory`]).
pub fn factory() -> KServeFactory {
    KServeFactory
}

#[async_trait]
impl ConnectorFactory for KServeFactory {
    fn vendor(&self) -> &str {
        VENDOR
    }

    fn products(&self) -> &[&str] {
        PRODUCTS
    }

    fn resources(&self) -> &[&str] {
        RESOURCES
    }

    /// The keys' check `connect` starts with (a registry runs it at registration).
    fn check(&self, target: &ConnectTarget) -> Result<()> {
        kit::check_keys(target, KEY_SETS)
    }

    async fn connect(&self, target: &ConnectTarget) -> Result<Arc<dyn InferenceConnector>> {
        self.check(target)?;
        // The configuration is read on the blocking pool (it may read a
        // `*_file` key's file), then discovery runs on the runtime.
        let owned = target.clone();
        let config = tokio::task::spawn_blocking(move || KServeConfig::from_target(&owned))
            .await
            .map_err(|e| {
                inferlink_core::Error::new(
                    inferlink_core::ErrorKind::Internal,
                    format!("reading the kserve configuration failed: {e}"),
                )
            })??;
        Ok(Arc::new(KServeClient::connect(config).await?))
    }
}

/// KServe's default ingress domain (`ingressDomain` in its configmap).
pub const DEFAULT_DOMAIN: &str = "example.com";
/// KServe's serverless host template: `<isvc>.<namespace>.<domain>`.
pub const DEFAULT_HOST_TEMPLATE: &str = "{name}.{namespace}.{domain}";
/// The tensor name of V1 predictions unless `v1_output_name` says otherwise.
pub const DEFAULT_V1_OUTPUT: &str = "predictions";

inferlink_core::config_words! {
    /// Which data-plane protocol a connector speaks.
    pub enum KServeProtocol for "protocol" {
        /// V1: `/v1/models/NAME[:predict|:explain]`, `instances` → `predictions`.
        V1 = "v1",
        /// V2 (Open Inference Protocol) over REST, through `inferlink-oip`.
        V2Rest = "v2" | "v2-rest" | "rest" | "http" | "https",
        /// V2 over gRPC, through `inferlink-oip`.
        V2Grpc = "v2-grpc" | "grpc",
    }
}

/// The `protocol` setting: one protocol, or discovery at connect time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtocolChoice {
    /// This protocol.
    Fixed(KServeProtocol),
    /// Ask the server: `GET /v2/health/ready`, then `GET /v1/models`.
    Auto,
}

impl FromStr for ProtocolChoice {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let word = s.trim();
        if word.is_empty() || word.eq_ignore_ascii_case("auto") {
            return Ok(ProtocolChoice::Auto);
        }
        word.parse()
            .map(ProtocolChoice::Fixed)
            .map_err(|e: Error| config_error(keys::PROTOCOL, format!("{}, or auto", e.message())))
    }
}

/// Everything a [`crate::KServeClient`] needs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct KServeConfig {
    /// The protocol, or [`ProtocolChoice::Auto`].
    pub protocol: ProtocolChoice,
    /// The virtual host an ingress routes by (`Host` header, gRPC
    /// `:authority`), when the endpoint URL is the ingress's address.
    pub ingress_host: Option<String>,
    /// The tensor name of V1 predictions (key `v1_output_name`).
    pub v1_output_name: String,
    /// The datatype V1 predictions are read as (key `v1_output_datatype`);
    /// `None` follows the request ([`crate::codec`]).
    pub v1_output_datatype: Option<DataType>,
    /// The V2 settings (and the transport every protocol uses); the
    /// endpoint URL is `oip.url`.
    pub oip: OipConfig,
}

impl KServeConfig {
    /// Defaults for an endpoint URL: discovery (or V2 gRPC for a `grpc://`
    /// URL), no ingress host, OIP's transport defaults.
    pub fn new(url: impl Into<String>) -> Self {
        let oip = OipConfig::new(url);
        let protocol = default_protocol(&oip.url);
        KServeConfig {
            protocol,
            ingress_host: None,
            v1_output_name: DEFAULT_V1_OUTPUT.to_owned(),
            v1_output_datatype: None,
            oip,
        }
    }

    /// Routes every request by `host` (checked as `host[:port]`): the
    /// `Host` header of REST calls and, unless `grpc_authority` is set, the
    /// gRPC `:authority`.
    pub fn set_ingress_host(&mut self, host: &str) -> Result<()> {
        let host = kit::urls::check_authority(keys::INGRESS_HOST, host)?;
        self.oip
            .transport
            .headers
            .retain(|h| !h.name.eq_ignore_ascii_case("host"));
        self.oip.transport.headers.push(StaticHeader {
            name: "Host".to_owned(),
            value: ConfigValue::Plain(host.clone()),
        });
        if self.oip.grpc_authority.is_none() {
            self.oip.grpc_authority = Some(host.clone());
        }
        self.ingress_host = Some(host);
        Ok(())
    }

    /// The endpoint URL.
    pub fn url(&self) -> &str {
        &self.oip.url
    }
}

impl ConnectorConfig for KServeConfig {
    inferlink_core::config_basics!(oip.transport);

    /// KServe's keys, then OIP's wire keys (KServe's `protocol` words are
    /// its own). Errors are [`Config`](inferlink_core::ErrorKind::Config) naming the key: an
    /// unknown protocol, `isvc_name` without `isvc_namespace` (or the
    /// reverse), a host that is not `host[:port]`, an unknown datatype, and
    /// every error of `inferlink-oip` and the transport.
    fn read_keys(&mut self, values: &[(String, ConfigValue)]) -> Result<()> {
        let mut rest: Vec<(String, ConfigValue)> = Vec::new();
        let mut isvc = Isvc::default();
        let mut explicit_protocol = false;
        for (k, v) in values {
            let key = k.as_str();
            let text = || v.expose().trim().to_owned();
            match key {
                keys::PROTOCOL => {
                    self.protocol = v.expose().parse()?;
                    explicit_protocol = true;
                }
                keys::ISVC_NAME => isvc.name = Some(text()).filter(|s| !s.is_empty()),
                keys::ISVC_NAMESPACE => isvc.namespace = Some(text()).filter(|s| !s.is_empty()),
                keys::ISVC_DOMAIN => isvc.domain = Some(text()).filter(|s| !s.is_empty()),
                keys::ISVC_HOST_TEMPLATE => isvc.template = Some(text()).filter(|s| !s.is_empty()),
                keys::INGRESS_HOST => isvc.explicit = Some(text()).filter(|s| !s.is_empty()),
                keys::V1_OUTPUT_NAME => {
                    let name = text();
                    if name.is_empty() {
                        return Err(config_error(key, "must not be empty"));
                    }
                    self.v1_output_name = name;
                }
                keys::V1_OUTPUT_DATATYPE => {
                    self.v1_output_datatype = Some(
                        text()
                            .to_ascii_uppercase()
                            .parse()
                            .map_err(|e: Error| config_error(key, e.message()))?,
                    );
                }
                _ => rest.push((key.to_owned(), v.clone())),
            }
        }
        self.oip.read_keys(&rest)?;
        if !explicit_protocol {
            self.protocol = default_protocol(&self.oip.url);
        }
        if let Some(host) = isvc.host()? {
            self.ingress_host = Some(host);
        }
        Ok(())
    }

    /// The ingress host goes on last, over any `Host` header the
    /// transport's keys set.
    fn finish(&mut self) -> Result<()> {
        match self.ingress_host.clone() {
            Some(host) => self.set_ingress_host(&host),
            None => Ok(()),
        }
    }
}

/// The `isvc_*` and `ingress_host` values before they become one host.
#[derive(Default)]
struct Isvc {
    name: Option<String>,
    namespace: Option<String>,
    domain: Option<String>,
    template: Option<String>,
    explicit: Option<String>,
}

impl Isvc {
    fn host(&self) -> Result<Option<String>> {
        if let Some(host) = &self.explicit {
            return Ok(Some(host.clone()));
        }
        let (name, namespace) = match (&self.name, &self.namespace) {
            (Some(n), Some(ns)) => (n, ns),
            (Some(_), None) => {
                return Err(config_error(
                    keys::ISVC_NAMESPACE,
                    "isvc_name is set, so the InferenceService's namespace is needed to build \
                     its host (<isvc>.<namespace>.<domain>)",
                ));
            }
            (None, Some(_)) => {
                return Err(config_error(
                    keys::ISVC_NAME,
                    "isvc_namespace is set but isvc_name is not",
                ));
            }
            (None, None) => {
                for (key, v) in [
                    (keys::ISVC_DOMAIN, &self.domain),
                    (keys::ISVC_HOST_TEMPLATE, &self.template),
                ] {
                    if v.is_some() {
                        return Err(config_error(
                            key,
                            "is set but isvc_name and isvc_namespace are not",
                        ));
                    }
                }
                return Ok(None);
            }
        };
        for (key, label) in [(keys::ISVC_NAME, name), (keys::ISVC_NAMESPACE, namespace)] {
            let ok = label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-');
            if !ok {
                return Err(config_error(
                    key,
                    format!(
                        "\"{}\" is not a Kubernetes name (lower-case letters, digits and '-', \
                         at most 63)",
                        label.escape_debug()
                    ),
                ));
            }
        }
        let domain = self.domain.as_deref().unwrap_or(DEFAULT_DOMAIN);
        let template = self.template.as_deref().unwrap_or(DEFAULT_HOST_TEMPLATE);
        Ok(Some(expand_template(template, name, namespace, domain)?))
    }
}

/// `template` with `{name}`, `{namespace}` and `{domain}` replaced (KServe's
/// own `{{ .Name }}`, `{{ .Namespace }}`, `{{ .IngressDomain }}` work too).
pub fn expand_template(
    template: &str,
    name: &str,
    namespace: &str,
    domain: &str,
) -> Result<String> {
    let mut out = template.to_owned();
    for (names, value) in [
        (&["{name}", "{{.Name}}"][..], name),
        (&["{namespace}", "{{.Namespace}}"][..], namespace),
        (
            &["{domain}", "{{.IngressDomain}}", "{{.Domain}}"][..],
            domain,
        ),
    ] {
        for placeholder in names {
            out = replace_loose(&out, placeholder, value);
        }
    }
    if out.contains('{') || out.contains('}') {
        return Err(config_error(
            keys::ISVC_HOST_TEMPLATE,
            format!(
                "\"{}\" has a placeholder other than {{name}}, {{namespace}}, {{domain}}",
                template.escape_debug()
            ),
        ));
    }
    Ok(out)
}

/// Replaces `placeholder`, ignoring spaces inside `{{ … }}` in the text.
fn replace_loose(text: &str, placeholder: &str, value: &str) -> String {
    if !placeholder.starts_with("{{") {
        return text.replace(placeholder, value);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else {
            break;
        };
        let candidate: String = rest[start..start + len + 2]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        out.push_str(&rest[..start]);
        if candidate == placeholder {
            out.push_str(value);
        } else {
            out.push_str(&rest[start..start + len + 2]);
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

fn default_protocol(url: &str) -> ProtocolChoice {
    if kit::urls::is_grpc_scheme(url) {
        ProtocolChoice::Fixed(KServeProtocol::V2Grpc)
    } else {
        ProtocolChoice::Auto
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use inferlink_core::ErrorKind;

    #[test]
    fn protocol_words_and_defaults() {
        assert_eq!(
            KServeConfig::from_pairs("http://h", &[]).unwrap().protocol,
            ProtocolChoice::Auto
        );
        assert_eq!(
            KServeConfig::from_pairs("grpc://h:1", &[])
                .unwrap()
                .protocol,
            ProtocolChoice::Fixed(KServeProtocol::V2Grpc)
        );
        for (word, want) in [
            ("V1", KServeProtocol::V1),
            ("v2", KServeProtocol::V2Rest),
            ("rest", KServeProtocol::V2Rest),
            ("v2-grpc", KServeProtocol::V2Grpc),
            ("grpc", KServeProtocol::V2Grpc),
        ] {
            let c = KServeConfig::from_pairs("http://h", &[("protocol", word)]).unwrap();
            assert_eq!(c.protocol, ProtocolChoice::Fixed(want), "{word}");
        }
        let e = KServeConfig::from_pairs("http://h", &[("protocol", "v3")]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert_eq!(e.path(), Some("protocol"));
    }

    #[test]
    fn host_from_isvc_keys() {
        let c = KServeConfig::from_pairs(
            "http://10.0.0.1:80",
            &[
                ("isvc_name", "sklearn-iris"),
                ("isvc_namespace", "kserve-test"),
            ],
        )
        .unwrap();
        assert_eq!(
            c.ingress_host.as_deref(),
            Some("sklearn-iris.kserve-test.example.com")
        );
        let host = c
            .oip
            .transport
            .headers
            .iter()
            .find(|h| h.name == "Host")
            .unwrap();
        assert_eq!(host.value.expose(), "sklearn-iris.kserve-test.example.com");
        assert_eq!(
            c.oip.grpc_authority.as_deref(),
            Some("sklearn-iris.kserve-test.example.com")
        );

        let c = KServeConfig::from_pairs(
            "http://gw",
            &[
                ("isvc_name", "m"),
                ("isvc_namespace", "ns"),
                ("isvc_domain", "models.corp"),
                (
                    "isvc_host_template",
                    "{{ .Name }}-{{ .Namespace }}.{{ .IngressDomain }}",
                ),
            ],
        )
        .unwrap();
        assert_eq!(c.ingress_host.as_deref(), Some("m-ns.models.corp"));

        let c = KServeConfig::from_pairs(
            "http://gw",
            &[
                ("isvc_name", "m"),
                ("isvc_namespace", "ns"),
                ("ingress_host", "Other.Host:8080"),
            ],
        )
        .unwrap();
        assert_eq!(c.ingress_host.as_deref(), Some("other.host:8080"));

        // An explicit grpc_authority is kept.
        let c = KServeConfig::from_pairs(
            "http://gw",
            &[("ingress_host", "a.b"), ("grpc_authority", "c.d")],
        )
        .unwrap();
        assert_eq!(c.oip.grpc_authority.as_deref(), Some("c.d"));
        assert_eq!(c.ingress_host.as_deref(), Some("a.b"));
    }

    #[test]
    fn host_key_errors_name_the_key() {
        for (pairs, key) in [
            (&[("isvc_name", "m")][..], "isvc_namespace"),
            (&[("isvc_namespace", "ns")][..], "isvc_name"),
            (&[("isvc_domain", "d")][..], "isvc_domain"),
            (
                &[("isvc_name", "Bad_Name"), ("isvc_namespace", "ns")][..],
                "isvc_name",
            ),
            (
                &[
                    ("isvc_name", "m"),
                    ("isvc_namespace", "ns"),
                    ("isvc_host_template", "{name}.{zone}"),
                ][..],
                "isvc_host_template",
            ),
            (&[("ingress_host", "http://x")][..], "ingress_host"),
            (
                &[("v1_output_datatype", "STRING")][..],
                "v1_output_datatype",
            ),
            (&[("v1_output_name", " ")][..], "v1_output_name"),
            (&[("timeout_request_ms", "soon")][..], "timeout_request_ms"),
            (&[("tensor_encoding", "xml")][..], "tensor_encoding"),
        ] {
            let e = KServeConfig::from_pairs("http://gw", pairs).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{pairs:?}: {e}");
            assert_eq!(e.path(), Some(key), "{pairs:?}: {e}");
        }
    }

    #[test]
    fn v1_keys_are_read() {
        let c = KServeConfig::from_pairs(
            "http://h",
            &[("v1_output_name", "scores"), ("v1_output_datatype", "fp32")],
        )
        .unwrap();
        assert_eq!(c.v1_output_name, "scores");
        assert_eq!(c.v1_output_datatype, Some(DataType::Fp32));
    }
}
