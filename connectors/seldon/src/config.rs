//! [`SeldonConfig`]: the typed configuration of a Seldon connector, read
//! from a target's merged configuration and checked when the connector
//! is built.
//!
//! Keys ([`KEYS`]; also in `docs/connectors/seldon.md`):
//!
//! | key | values | default |
//! |---|---|---|
//! | `protocol` | `v1`, `v2`, `v2-grpc` | from product and version (below) |
//! | `namespace` | Kubernetes namespace | — (no ingress prefix) |
//! | `deployment` | SeldonDeployment name | — |
//! | `v1_tensor_form` | `ndarray`, `tensor` | `ndarray` |
//! | `seldon_model` | model or `<pipeline>.pipeline`; `{model}` stands for each call's model | — (no `Seldon-Model` header) |
//! | `mlserver_content_types` | `auto`, `off` | `auto` |
//! | `mlserver_request_content_type` | e.g. `pd`, `np`, `str` | — |
//! | `grpc_url`, `tensor_encoding` | as in `inferlink-oip` | |
//!
//! and every key of the shared transport (timeouts, retries, TLS, auth,
//! `header_<Name>`, and seed 004's `CLUSTER_CERT_AUTH`, `CLIENT_CERT`,
//! `CLIENT_KEY`, `INSECURE`). The factory refuses any other lower-case key.

use std::sync::Arc;

use inferlink_core::kit::ConnectorConfig;
use inferlink_core::kit::{self, config_error};
use inferlink_core::transport::config::KEY_SET as TRANSPORT_KEYS;
use inferlink_core::transport::{StaticHeader, TransportConfig};
use inferlink_core::{ConfigValue, ConnectTarget, Result};
use inferlink_oip::{ModelHeader, OipConfig, Protocol as OipProtocol};

use crate::client::{SeldonConnector, VENDOR};

inferlink_core::config_keys! {
    /// The keys [`SeldonConfig`] reads itself; it also reads
    /// `grpc_url` ([`kit::GRPC_URL_KEYS`]), [`inferlink_oip::KEYS`] and the
    /// transport's.
    pub const KEYS for "seldon" in mod keys {
        /// v1, v2 or v2-grpc (default: v2-grpc for grpc:// URLs, else by product and version)
        PROTOCOL = "protocol",
        /// Kubernetes namespace: the v1 ingress path /seldon/<namespace>/<deployment>
        NAMESPACE = "namespace",
        /// the SeldonDeployment (v1)
        DEPLOYMENT = "deployment",
        /// ndarray or tensor: how v1 SeldonMessages carry tensors (ndarray)
        V1_TENSOR_FORM = "v1_tensor_form",
        /// the Seldon-Model header (v2); {model} stands for each call's model
        SELDON_MODEL = "seldon_model",
        /// auto or off: MLServer content_type parameters on inputs (auto)
        MLSERVER_CONTENT_TYPES = "mlserver_content_types",
        /// a request-level MLServer content_type, e.g. pd (none)
        MLSERVER_REQUEST_CONTENT_TYPE = "mlserver_request_content_type",
    }
}

/// Record products served (seed 004 names Seldon Core `seldon`).
pub const PRODUCTS: &[&str] = &[
    "seldon",
    "seldon-core",
    "seldoncore",
    "seldon-core-v1",
    "seldon-core-v2",
    "seldon-v2",
    "mlserver",
    "seldon-mlserver",
];

/// Service resources served when no factory claims the product (seed 004's
/// Seldon service is `seldon-core-api`).
pub const RESOURCES: &[&str] = &["seldon-core-api", "seldon", "seldon-api", "mlserver"];

/// The Seldon factory: vendor `seldon`, [`PRODUCTS`] and [`RESOURCES`],
/// reading [`KEYS`], OIP's wire keys and the transport's (any other
/// lower-case key is refused).
///
/// The protocol comes from the record's `protocol` key, else a `grpc://`
/// endpoint means `v2-grpc`, else the product and version decide
/// ([`default_protocol`]: MLServer and Seldon Core 2.x speak v2, older
/// Seldon Core v1). Configuration is checked at `connect`, not at the first
/// call.
pub fn factory() -> kit::Factory {
    kit::Factory::new(
        VENDOR,
        PRODUCTS,
        RESOURCES,
        &[
            KEYS,
            inferlink_oip::KEYS,
            kit::GRPC_URL_KEYS,
            TRANSPORT_KEYS,
        ],
        |target| Ok(Arc::new(SeldonConnector::from_target(target)?)),
    )
}

/// The header Seldon Core v2 routes on (gRPC metadata `seldon-model`).
pub const SELDON_MODEL_HEADER: &str = "Seldon-Model";

/// In `seldon_model`, stands for the name of the model each call is about
/// (`{model}`, `{model}.pipeline`): the header then follows the call.
pub const MODEL_PLACEHOLDER: &str = "{model}";

inferlink_core::config_words! {
    /// Which Seldon protocol a connector speaks.
    pub enum SeldonProtocol for "protocol" {
        /// Seldon Core v1: SeldonMessage JSON over REST (`/api/v1.0/predictions`).
        V1 = "v1" | "seldon" | "seldon-v1",
        /// Seldon Core v2 / MLServer: the Open Inference Protocol over REST.
        V2 = "v2" | "v2-rest" | "oip" | "rest",
        /// Seldon Core v2 / MLServer: the Open Inference Protocol over gRPC.
        V2Grpc = "v2-grpc" | "grpc",
    }
}

impl SeldonProtocol {
    /// The name in [`inferlink_core::ConnectorInfo::protocol`]: `seldon-v1`,
    /// `oip-rest` or `oip-grpc`.
    pub fn info_name(self) -> &'static str {
        match self {
            SeldonProtocol::V1 => "seldon-v1",
            SeldonProtocol::V2 => OipProtocol::Rest.info_name(inferlink_oip::config::INFO_NAMES),
            SeldonProtocol::V2Grpc => {
                OipProtocol::Grpc.info_name(inferlink_oip::config::INFO_NAMES)
            }
        }
    }
}

inferlink_core::config_words! {
    /// How tensors travel inside a SeldonMessage's `data`.
    #[derive(Default)]
    pub enum V1TensorForm for "v1_tensor_form" {
        /// `data.ndarray`: nested JSON lists following the shape (any datatype,
        /// strings included).
        #[default]
        Ndarray = "ndarray",
        /// `data.tensor {shape, values}`: flat doubles (numbers only).
        Tensor = "tensor",
    }
}

inferlink_core::config_words! {
    /// The words of `mlserver_content_types`.
    enum ContentTypes for "mlserver_content_types" {
        /// Add MLServer `content_type` parameters.
        Auto = "auto" | "on" | "true" | "yes" | "1",
        /// Send inputs as they are.
        Off = "off" | "false" | "no" | "0",
    }
}

/// Everything a Seldon connector needs, checked.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SeldonConfig {
    /// The protocol.
    pub protocol: SeldonProtocol,
    /// The record's endpoint URL (the ingress, the executor, MLServer, or
    /// Seldon Core v2's mesh).
    pub url: String,
    /// Kubernetes namespace (v1 ingress path).
    pub namespace: Option<String>,
    /// The SeldonDeployment (v1).
    pub deployment: Option<String>,
    /// The v1 tensor form.
    pub v1_tensor_form: V1TensorForm,
    /// The `Seldon-Model` header value (v2).
    pub seldon_model: Option<String>,
    /// Whether inputs get MLServer `content_type` parameters (v2).
    pub mlserver_content_types: bool,
    /// A request-level MLServer `content_type` (v2).
    pub mlserver_request_content_type: Option<String>,
    /// The Open Inference Protocol client's settings (v2), the
    /// `Seldon-Model` header included.
    pub oip: OipConfig,
    /// The transport settings (v1; v2 uses `oip.transport`).
    pub transport: TransportConfig,
}

impl SeldonConfig {
    /// The configuration of a target, the protocol defaulting by the
    /// record's product and version ([`default_protocol`]), the transport
    /// starting from OIP's defaults ([`OipConfig::new`]).
    pub fn from_target(target: &ConnectTarget) -> Result<Self> {
        let fallback = default_protocol(&target.product, &target.version);
        let defaults = target.host_transport_over(OipConfig::new(target.url.clone()).transport);
        SeldonConfig::from_values(&target.url, fallback, target.values(), defaults)
    }

    /// The configuration from an endpoint URL and configuration values, with
    /// `fallback` as the protocol when neither the `protocol` key nor a
    /// `grpc://` URL says otherwise, and `transport` as the transport defaults.
    pub fn from_values<I, K>(
        url: &str,
        fallback: SeldonProtocol,
        values: I,
        transport: TransportConfig,
    ) -> Result<Self>
    where
        I: IntoIterator<Item = (K, ConfigValue)>,
        K: AsRef<str>,
    {
        let mut protocol = None;
        let mut namespace = None;
        let mut deployment = None;
        let mut v1_tensor_form = V1TensorForm::default();
        let mut seldon_model = None;
        let mut content_types = true;
        let mut request_content_type = None;
        let mut rest: Vec<(String, ConfigValue)> = Vec::new();
        for (k, v) in values {
            let key = k.as_ref();
            let text = v.expose().trim();
            match key {
                keys::PROTOCOL => protocol = Some(text.parse::<SeldonProtocol>()?),
                keys::NAMESPACE => namespace = name_value(keys::NAMESPACE, text)?,
                keys::DEPLOYMENT => deployment = name_value(keys::DEPLOYMENT, text)?,
                keys::V1_TENSOR_FORM => v1_tensor_form = text.parse()?,
                keys::SELDON_MODEL => {
                    if text.chars().any(|c| c.is_control() || !c.is_ascii()) {
                        return Err(config_error(
                            keys::SELDON_MODEL,
                            "must be visible ASCII (it travels as a header)",
                        ));
                    }
                    seldon_model = (!text.is_empty()).then(|| text.to_owned());
                }
                keys::MLSERVER_CONTENT_TYPES => {
                    content_types = text.parse::<ContentTypes>()? == ContentTypes::Auto;
                }
                keys::MLSERVER_REQUEST_CONTENT_TYPE => {
                    request_content_type = (!text.is_empty()).then(|| text.to_owned());
                }
                _ => rest.push((key.to_owned(), v)),
            }
        }
        let scheme = kit::urls::scheme(url);
        let protocol = protocol.unwrap_or(if matches!(scheme.as_deref(), Some("grpc" | "grpcs")) {
            SeldonProtocol::V2Grpc
        } else {
            fallback
        });
        if protocol == SeldonProtocol::V1 && !matches!(scheme.as_deref(), Some("http" | "https")) {
            return Err(config_error(
                "url",
                "Seldon v1 speaks REST: the endpoint URL must start with http:// or https://",
            ));
        }
        if protocol != SeldonProtocol::V1 && deployment.is_some() && namespace.is_some() {
            return Err(config_error(
                keys::DEPLOYMENT,
                "namespace and deployment build the Seldon Core v1 ingress path; Seldon Core v2 \
                 routes by the Seldon-Model header (seldon_model) instead",
            ));
        }

        let mut transport = transport.apply_values(rest.iter().map(|(k, v)| (k, v.clone())))?;
        let per_call = seldon_model
            .as_deref()
            .is_some_and(|m| m.contains(MODEL_PLACEHOLDER));
        if let Some(model) = &seldon_model
            && protocol != SeldonProtocol::V1
            && !per_call
        {
            transport.headers.push(StaticHeader {
                name: SELDON_MODEL_HEADER.to_owned(),
                value: ConfigValue::Plain(model.clone()),
            });
        }
        let mut oip = OipConfig::new(url.trim());
        oip.transport = transport.clone();
        let mut oip = oip.apply_values(rest)?;
        oip.transport = transport.clone();
        oip.protocol = Some(match protocol {
            SeldonProtocol::V2Grpc => OipProtocol::Grpc,
            _ => OipProtocol::Rest,
        });
        if per_call && protocol != SeldonProtocol::V1 {
            oip.model_header = seldon_model.as_ref().map(|template| ModelHeader {
                name: SELDON_MODEL_HEADER.to_owned(),
                template: template.clone(),
            });
        }
        transport.validate()?;
        Ok(SeldonConfig {
            protocol,
            url: url.trim().to_owned(),
            namespace,
            deployment,
            v1_tensor_form,
            seldon_model,
            mlserver_content_types: content_types,
            mlserver_request_content_type: request_content_type,
            oip,
            transport,
        })
    }

    /// The v1 path prefix: `seldon/<namespace>/<deployment>` with both set,
    /// `seldon/<namespace>/<model>` with only the namespace (the model names
    /// the deployment), none otherwise. Segments are not yet encoded.
    pub fn v1_prefix<'a>(&'a self, model: &'a str) -> Vec<&'a str> {
        match (&self.namespace, &self.deployment) {
            (Some(ns), Some(dep)) => vec!["seldon", ns, dep],
            (Some(ns), None) => vec!["seldon", ns, model],
            _ => Vec::new(),
        }
    }
}

/// The protocol a record implies when its configuration does not say:
/// `v2` for MLServer and for Seldon Core 2.x, `v1` otherwise (seed 004's
/// `product: seldon`, `version: "1.11.0"`).
pub fn default_protocol(product: &str, version: &str) -> SeldonProtocol {
    let product = product.to_ascii_lowercase();
    if product.contains("mlserver") || product.ends_with("v2") {
        return SeldonProtocol::V2;
    }
    let major = version
        .trim()
        .trim_start_matches(['v', 'V', '~', '^', '='])
        .split(['.', '-'])
        .next()
        .and_then(|m| m.parse::<u64>().ok());
    match major {
        Some(m) if m >= 2 => SeldonProtocol::V2,
        _ => SeldonProtocol::V1,
    }
}

/// A namespace or deployment name: one path segment, Kubernetes-style.
fn name_value(key: &str, text: &str) -> Result<Option<String>> {
    if text.is_empty() {
        return Ok(None);
    }
    let ok = text.len() <= 253
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && text != "."
        && text != "..";
    if !ok {
        return Err(config_error(
            key,
            format!(
                "\"{}\" is not a Kubernetes name (letters, digits, '-', '_', '.')",
                text.escape_debug()
            ),
        ));
    }
    Ok(Some(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use inferlink_core::ErrorKind;

    fn cfg(url: &str, pairs: &[(&str, &str)]) -> Result<SeldonConfig> {
        SeldonConfig::from_values(
            url,
            SeldonProtocol::V1,
            pairs
                .iter()
                .map(|(k, v)| (*k, ConfigValue::Plain((*v).to_owned()))),
            TransportConfig::default(),
        )
    }

    #[test]
    fn protocol_defaults_follow_product_and_version() {
        assert_eq!(default_protocol("seldon", "1.11.0"), SeldonProtocol::V1);
        assert_eq!(default_protocol("Seldon-Core", "2.8.0"), SeldonProtocol::V2);
        assert_eq!(default_protocol("mlserver", "1.7.1"), SeldonProtocol::V2);
        assert_eq!(default_protocol("seldon-core-v2", "1"), SeldonProtocol::V2);
        assert_eq!(default_protocol("seldon", "~2.1"), SeldonProtocol::V2);
        assert_eq!(default_protocol("seldon", "latest"), SeldonProtocol::V1);
    }

    #[test]
    fn protocol_key_and_grpc_urls() {
        let c = cfg("http://h", &[("protocol", "V2")]).unwrap();
        assert_eq!(c.protocol, SeldonProtocol::V2);
        assert_eq!(c.oip.protocol(), OipProtocol::Rest);
        let c = cfg("grpc://h:1", &[]).unwrap();
        assert_eq!(c.protocol, SeldonProtocol::V2Grpc);
        assert_eq!(c.oip.protocol(), OipProtocol::Grpc);
        let e = cfg("http://h", &[("protocol", "v3")]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert_eq!(e.path(), Some("protocol"));
        let e = cfg("grpc://h:1", &[("protocol", "v1")]).unwrap_err();
        assert_eq!(e.path(), Some("url"));
    }

    #[test]
    fn ingress_prefix_from_namespace_and_deployment() {
        let c = cfg(
            "http://h",
            &[("namespace", "prj_hys568"), ("deployment", "iris")],
        )
        .unwrap();
        assert_eq!(c.v1_prefix("x"), ["seldon", "prj_hys568", "iris"]);
        let c = cfg("http://h", &[("namespace", "ns")]).unwrap();
        assert_eq!(c.v1_prefix("iris"), ["seldon", "ns", "iris"]);
        let c = cfg("http://h", &[("deployment", "iris")]).unwrap();
        assert!(c.v1_prefix("iris").is_empty());
        for bad in ["a/b", "..", "a b", "ü"] {
            let e = cfg("http://h", &[("namespace", bad)]).unwrap_err();
            assert_eq!(e.path(), Some("namespace"), "{bad}");
        }
    }

    #[test]
    fn a_seldon_model_template_follows_each_call() {
        let c = cfg(
            "http://h",
            &[("protocol", "v2"), ("seldon_model", "{model}.pipeline")],
        )
        .unwrap();
        assert!(c.oip.transport.headers.is_empty());
        let h = c.oip.model_header.as_ref().unwrap();
        assert_eq!(h.name, "Seldon-Model");
        assert_eq!(
            h.value_for(&inferlink_core::ModelRef::new("iris")),
            "iris.pipeline"
        );
        let c = cfg("http://h", &[("protocol", "v2"), ("seldon_model", "iris")]).unwrap();
        assert!(c.oip.model_header.is_none());
    }

    #[test]
    fn seldon_model_becomes_a_static_header_for_v2_only() {
        let c = cfg("http://h", &[("protocol", "v2"), ("seldon_model", "iris")]).unwrap();
        let h = &c.oip.transport.headers;
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].name, "Seldon-Model");
        assert_eq!(h[0].value.expose(), "iris");
        let c = cfg("http://h", &[("seldon_model", "iris")]).unwrap();
        assert!(c.transport.headers.is_empty());
        let e = cfg("http://h", &[("seldon_model", "a\nb")]).unwrap_err();
        assert_eq!(e.path(), Some("seldon_model"));
    }

    #[test]
    fn other_keys_are_validated() {
        let e = cfg("http://h", &[("v1_tensor_form", "matrix")]).unwrap_err();
        assert_eq!(e.path(), Some("v1_tensor_form"));
        let e = cfg("http://h", &[("mlserver_content_types", "maybe")]).unwrap_err();
        assert_eq!(e.path(), Some("mlserver_content_types"));
        let e = cfg("http://h", &[("timeout_conect_ms", "5")]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        let e = cfg(
            "http://h",
            &[("protocol", "v2"), ("tensor_encoding", "xml")],
        )
        .unwrap_err();
        assert_eq!(e.path(), Some("tensor_encoding"));
        let e = cfg(
            "http://h",
            &[("protocol", "v2"), ("namespace", "a"), ("deployment", "b")],
        )
        .unwrap_err();
        assert_eq!(e.path(), Some("deployment"));
        let c = cfg(
            "http://h",
            &[
                ("v1_tensor_form", "Tensor"),
                ("mlserver_content_types", "off"),
            ],
        )
        .unwrap();
        assert_eq!(c.v1_tensor_form, V1TensorForm::Tensor);
        assert!(!c.mlserver_content_types);
    }
}
