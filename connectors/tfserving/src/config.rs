//! [`TfServingConfig`]: protocol, URLs, signature, version choice and
//! request format, read from a target's merged configuration and
//! validated when the connector is built.
//!
//! Keys (see [`keys`]; `docs/connectors/tfserving.md` has the table):
//!
//! | key | values | default |
//! |---|---|---|
//! | `protocol` | `rest`, `grpc` | from the endpoint URL's scheme: `grpc://`/`grpcs://` → gRPC, else REST |
//! | `grpc_url` | URL of the gRPC port (TF Serving: 8500) | the endpoint URL |
//! | `signature_name` | a signature key | none sent: the server uses `serving_default` |
//! | `model_version` | digits | none: the latest version |
//! | `model_version_label` | a label (`stable`, `canary`, …) | none |
//! | `request_format` | `columnar` (`"inputs"`), `row` (`"instances"`) — REST only | `columnar` |
//! | `grpc_tensor_encoding` | `content` (`tensor_content`), `typed` (`*_val` fields) | `content` |
//! | `health_model` | a model name whose status `health` reports | none |
//! | `metadata_api` | `true`, `false`: whether the server has GetModelMetadata and ModelService (pythie-serving has neither) | `true` |
//!
//! `model_version` and `model_version_label` exclude each other. A
//! [`inferlink_core::ModelRef`] version overrides them per call: digits select a
//! version, anything else a label. Timeouts, retries, TLS and authentication
//! come from the shared transport's keys and apply to both protocols.

use inferlink_core::ConfigValue;
use inferlink_core::kit::ConnectorConfig;
use inferlink_core::kit::{config_error, urls, wire};
use inferlink_core::transport::TransportConfig;
use inferlink_core::{Error, ModelRef, Result};

inferlink_core::config_keys! {
    /// The keys the TF Serving connector reads itself, for the unknown-key
    /// check; it also reads `protocol` and `grpc_url`
    /// ([`inferlink_core::kit::WIRE_KEYS`]) and the transport's
    /// ([`inferlink_core::transport::config::KEY_SET`]).
    pub const KEYS for "tfserving" in mod keys {
        /// the signature every call names (none: the server's serving_default)
        SIGNATURE_NAME = "signature_name",
        /// the default model version, digits (latest)
        MODEL_VERSION = "model_version",
        /// the default model version label (none); excludes model_version
        MODEL_VERSION_LABEL = "model_version_label",
        /// REST predict layout: columnar ("inputs") or row ("instances") (columnar)
        REQUEST_FORMAT = "request_format",
        /// gRPC numbers: content (tensor_content) or typed (*_val fields) (content)
        GRPC_TENSOR_ENCODING = "grpc_tensor_encoding",
        /// the model whose status health reports (none)
        HEALTH_MODEL = "health_model",
        /// false for servers without GetModelMetadata and ModelService (true)
        METADATA_API = "metadata_api",
    }
}

/// Which wire protocol a client speaks: REST (`/v1/models/...`) or gRPC
/// (`tensorflow.serving.PredictionService`, `ModelService`).
pub use inferlink_core::kit::WireProtocol as Protocol;

/// The protocol names shown in [`inferlink_core::ConnectorInfo::protocol`]
/// (REST, gRPC).
pub const INFO_NAMES: (&str, &str) = ("tfserving-rest", "tfserving-grpc");

inferlink_core::config_words! {
    /// How REST predict requests lay out tensors.
    #[derive(Default)]
    pub enum RequestFormat for "request_format" {
        /// `{"inputs": {name: tensor}}`; answers `{"outputs": …}`. Inputs may
        /// have different batch sizes. The default.
        #[default]
        Columnar = "columnar" | "inputs",
        /// `{"instances": [{name: row}, …]}`; answers `{"predictions": […]}`.
        /// Every input must have the same first (batch) dimension.
        Row = "row" | "instances",
    }
}

inferlink_core::config_words! {
    /// How gRPC requests carry numeric tensors (strings always use `string_val`).
    #[derive(Default)]
    pub enum GrpcTensorEncoding for "grpc_tensor_encoding" {
        /// `tensor_content`: the raw little-endian bytes (no per-element
        /// encoding; raw tensors are sent without copying). The default.
        #[default]
        Content = "content" | "tensor_content",
        /// The typed `*_val` fields (`float_val`, `int_val`, `int64_val`, …), for
        /// servers that do not read `tensor_content`.
        Typed = "typed" | "val",
    }
}

/// Which version of a model a call addresses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum VersionChoice {
    /// The server's choice (the latest version).
    #[default]
    Latest,
    /// A version number.
    Number(i64),
    /// A version label.
    Label(String),
}

impl VersionChoice {
    /// The choice a [`ModelRef`] makes (digits: a number; other text: a
    /// label), or `default` when it names no version.
    pub fn for_model(model: &ModelRef, default: &VersionChoice) -> Result<VersionChoice> {
        match model.version.as_deref().map(str::trim) {
            None | Some("") => Ok(default.clone()),
            Some(v) => parse_version(v).map_err(|why| {
                Error::invalid(format!("model version \"{}\" {why}", v.escape_debug()))
                    .with_model(model)
            }),
        }
    }
}

fn parse_version(v: &str) -> std::result::Result<VersionChoice, String> {
    if v.bytes().all(|b| b.is_ascii_digit()) {
        return v
            .parse::<i64>()
            .map(VersionChoice::Number)
            .map_err(|_| "is too large".to_owned());
    }
    check_label(v)?;
    Ok(VersionChoice::Label(v.to_owned()))
}

fn check_label(v: &str) -> std::result::Result<(), String> {
    if v.is_empty() || v.len() > 256 {
        return Err("must be 1 to 256 characters".to_owned());
    }
    if v.chars()
        .any(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err("may only hold letters, digits, '_', '-' and '.'".to_owned());
    }
    Ok(())
}

/// Everything a [`crate::TfServingClient`] needs to connect.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TfServingConfig {
    /// The record's endpoint URL.
    pub url: String,
    /// The protocol; `None` picks it from the URL scheme (see [`TfServingConfig::protocol`]).
    pub protocol: Option<Protocol>,
    /// The gRPC endpoint when it differs from [`TfServingConfig::url`].
    pub grpc_url: Option<String>,
    /// The signature named in every call (`None`: the server's default, `serving_default`).
    pub signature_name: Option<String>,
    /// The version used when a [`ModelRef`] names none.
    pub version: VersionChoice,
    /// REST predict layout.
    pub request_format: RequestFormat,
    /// gRPC numeric tensor encoding.
    pub grpc_tensor_encoding: GrpcTensorEncoding,
    /// The model whose status [`inferlink_core::InferenceConnector::health`] reports.
    pub health_model: Option<String>,
    /// Whether the server offers model metadata and version status; when
    /// `false` the connector declares neither capability and answers
    /// `Unsupported` without a call (for pythie-serving, which has Predict only).
    pub metadata_api: bool,
    /// Timeouts, retries, TLS, authentication, headers (the shared transport's keys).
    pub transport: TransportConfig,
}

impl TfServingConfig {
    /// Defaults for an endpoint URL.
    pub fn new(url: impl Into<String>) -> Self {
        TfServingConfig {
            url: url.into(),
            protocol: None,
            grpc_url: None,
            signature_name: None,
            version: VersionChoice::Latest,
            request_format: RequestFormat::default(),
            grpc_tensor_encoding: GrpcTensorEncoding::default(),
            health_model: None,
            metadata_api: true,
            transport: TransportConfig::default(),
        }
    }

    /// The protocol in effect: the `protocol` key, else `grpc` for a
    /// `grpc://` or `grpcs://` endpoint URL, else `rest`.
    pub fn protocol(&self) -> Protocol {
        Protocol::or_from_url(self.protocol, &self.url)
    }

    /// The REST base URL (the endpoint URL, which must be `http` or `https`).
    pub fn rest_url(&self) -> Result<&str> {
        if urls::is_grpc_scheme(&self.url) {
            return Err(config_error(
                "url",
                "a REST endpoint URL must start with http:// or https:// (for gRPC set \
                 protocol: grpc or use a grpc:// URL)",
            ));
        }
        urls::http_url("url", &self.url)?;
        Ok(self.url.trim())
    }

    /// The gRPC target as an `http`/`https` URL ([`urls::grpc_target`]):
    /// `grpc_url` if set, else the endpoint URL; `grpc://` means plain
    /// HTTP/2, `grpcs://` TLS.
    pub fn grpc_target(&self) -> Result<String> {
        wire::grpc_target(self.grpc_url.as_deref(), &self.url)
    }

    /// Checks every setting the chosen protocol uses (called when a client is built).
    pub fn validate(&self) -> Result<()> {
        match self.protocol() {
            Protocol::Rest => self.rest_url().map(drop),
            Protocol::Grpc => self.grpc_target().map(drop),
        }
    }
}

impl ConnectorConfig for TfServingConfig {
    inferlink_core::config_basics!(transport);

    fn read_keys(&mut self, values: &[(String, ConfigValue)]) -> Result<()> {
        let mut number = None;
        let mut label = None;
        for (k, v) in values {
            let text = v.expose().trim();
            let optional = (!text.is_empty()).then(|| text.to_owned());
            match k.as_str() {
                Protocol::KEY => self.protocol = Some(text.parse()?),
                wire::GRPC_URL => self.grpc_url = optional,
                keys::SIGNATURE_NAME => {
                    if text.chars().any(char::is_control) || text.len() > 256 {
                        return Err(config_error(
                            keys::SIGNATURE_NAME,
                            "must be at most 256 characters without control characters",
                        ));
                    }
                    self.signature_name = optional;
                }
                keys::MODEL_VERSION if !text.is_empty() => {
                    if !text.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(config_error(
                            keys::MODEL_VERSION,
                            format!(
                                "\"{}\" is not a version number (digits; use model_version_label for labels)",
                                text.escape_debug()
                            ),
                        ));
                    }
                    let n = text
                        .parse::<i64>()
                        .map_err(|_| config_error(keys::MODEL_VERSION, "is too large"))?;
                    number = Some(n);
                }
                keys::MODEL_VERSION_LABEL if !text.is_empty() => {
                    check_label(text)
                        .map_err(|why| config_error(keys::MODEL_VERSION_LABEL, why))?;
                    label = Some(text.to_owned());
                }
                keys::REQUEST_FORMAT => self.request_format = text.parse()?,
                keys::GRPC_TENSOR_ENCODING => self.grpc_tensor_encoding = text.parse()?,
                keys::HEALTH_MODEL => self.health_model = optional,
                keys::METADATA_API => {
                    self.metadata_api = match text.to_ascii_lowercase().as_str() {
                        "true" | "yes" | "1" | "" => true,
                        "false" | "no" | "0" => false,
                        _ => {
                            return Err(config_error(
                                keys::METADATA_API,
                                format!("\"{}\" is not true or false", text.escape_debug()),
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
        match (number, label) {
            (Some(_), Some(_)) => {
                return Err(config_error(
                    keys::MODEL_VERSION,
                    "model_version and model_version_label exclude each other; set one",
                ));
            }
            (Some(n), None) => self.version = VersionChoice::Number(n),
            (None, Some(l)) => self.version = VersionChoice::Label(l),
            (None, None) => {}
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
        let c = TfServingConfig::from_pairs(
            "http://h:8501",
            &[
                ("signature_name", "predict_images"),
                ("model_version", "3"),
                ("request_format", "Row"),
                ("grpc_tensor_encoding", "typed"),
                ("health_model", "half"),
                ("timeout_request_ms", "1500"),
            ],
        )
        .unwrap();
        assert_eq!(c.signature_name.as_deref(), Some("predict_images"));
        assert_eq!(c.version, VersionChoice::Number(3));
        assert_eq!(c.request_format, RequestFormat::Row);
        assert_eq!(c.grpc_tensor_encoding, GrpcTensorEncoding::Typed);
        assert_eq!(c.health_model.as_deref(), Some("half"));
        assert_eq!(c.transport.timeout_request.as_millis(), 1500);
        assert_eq!(c.protocol(), Protocol::Rest);

        let c = TfServingConfig::from_pairs("grpc://h:8500", &[("model_version_label", "stable")])
            .unwrap();
        assert_eq!(c.version, VersionChoice::Label("stable".into()));
        assert_eq!(c.protocol(), Protocol::Grpc);
        assert_eq!(c.grpc_target().unwrap(), "http://h:8500");

        for (k, v) in [
            ("protocol", "soap"),
            ("model_version", "v3"),
            ("model_version", "99999999999999999999"),
            ("model_version_label", "a/b"),
            ("request_format", "csv"),
            ("grpc_tensor_encoding", "json"),
            ("signature_name", "a\nb"),
            ("metadata_api", "maybe"),
        ] {
            let e = TfServingConfig::from_pairs("http://h", &[(k, v)]).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{k}={v}");
            assert_eq!(e.path(), Some(k), "{k}={v}");
        }
        let e = TfServingConfig::from_pairs(
            "http://h",
            &[("model_version", "1"), ("model_version_label", "x")],
        )
        .unwrap_err();
        assert!(e.message().contains("exclude each other"), "{e}");
    }

    #[test]
    fn urls_are_validated_per_protocol() {
        assert!(
            TfServingConfig::from_pairs("https://h/base", &[])
                .unwrap()
                .validate()
                .is_ok()
        );
        let e = TfServingConfig::from_pairs("grpc://h:1", &[("protocol", "rest")])
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        for bad in ["ftp://h", "grpc://u:p@h:1", "grpc://h:1/x", "nope"] {
            let e = TfServingConfig::from_pairs(bad, &[("protocol", "grpc")])
                .unwrap()
                .validate()
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}");
        }
        let c = TfServingConfig::from_pairs(
            "http://h:8501",
            &[("grpc_url", "grpcs://h:8500"), ("protocol", "grpc")],
        )
        .unwrap();
        assert_eq!(c.grpc_target().unwrap(), "https://h:8500");
    }

    #[test]
    fn model_ref_versions_pick_number_or_label() {
        let d = VersionChoice::Label("stable".into());
        assert_eq!(
            VersionChoice::for_model(&ModelRef::new("m"), &d).unwrap(),
            d
        );
        assert_eq!(
            VersionChoice::for_model(&ModelRef::new("m").with_version("7"), &d).unwrap(),
            VersionChoice::Number(7)
        );
        assert_eq!(
            VersionChoice::for_model(&ModelRef::new("m").with_version("canary"), &d).unwrap(),
            VersionChoice::Label("canary".into())
        );
        let e = VersionChoice::for_model(&ModelRef::new("m").with_version("a b"), &d).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }
}
