//! [`SageMakerConfig`]: which API, endpoint URL, region and credentials,
//! and how tensors become JSON, read from a target's merged configuration.
//!
//! Keys (see [`keys`]; `docs/connectors/sagemaker.md` has the table):
//!
//! | key | values | default |
//! |---|---|---|
//! | `api` | `runtime` (the SageMaker Runtime API), `container` (a model container's `/ping` and `/invocations`) | `runtime` |
//! | `endpoint_url` | URL | the record's endpoint URL (set it for VPC interface endpoints, FIPS hosts, local servers) |
//! | `region` (`AWS_REGION`, `AWS_DEFAULT_REGION`) | e.g. `us-east-1` | from a `runtime.sagemaker.<region>.amazonaws.com` URL, else the process environment's `AWS_REGION`/`AWS_DEFAULT_REGION` |
//! | AWS credentials | the keys of [`inferlink_aws::KEYS`] (`docs/connectors/aws-credentials.md`) | the process environment's, when the record has none |
//! | `sign` | `true`/`false` | `true` for `runtime`, `false` for `container` |
//! | `infer_json_key` | `instances`, `inputs` | `instances` |
//! | `output_datatype` | `auto` or a datatype (`FP32`, …) | `auto` |
//!
//! Timeouts, retries, TLS and static headers come from the shared
//! transport's keys ([`inferlink_core::transport::config::keys`]).

use std::time::Duration;

use inferlink_aws::AwsAuthConfig;
use inferlink_core::ConfigValue;
use inferlink_core::kit::ConnectorConfig;
pub(crate) use inferlink_core::kit::config_error;
use inferlink_core::transport::TransportConfig;
use inferlink_core::{DataType, Result};

inferlink_core::config_keys! {
    /// The keys the SageMaker connector reads, for the unknown-key check (the
    /// region and credentials are [`inferlink_aws::KEYS`], the transport's
    /// [`inferlink_core::transport::config::KEY_SET`]).
    pub const KEYS for "sagemaker" in mod keys {
        /// runtime (the SageMaker Runtime API) or container (/ping, /invocations) (runtime)
        API = "api",
        /// the base URL requests go to, instead of the record's endpoint URL
        ENDPOINT_URL = "endpoint_url",
        /// sign requests with SigV4, boolean (true for runtime, false for container)
        SIGN = "sign",
        /// the JSON key tensors go under: instances or inputs (instances)
        INFER_JSON_KEY = "infer_json_key",
        /// the datatype of decoded outputs: auto or a datatype such as FP32 (auto)
        OUTPUT_DATATYPE = "output_datatype",
    }
}

/// The largest synchronous request body the SageMaker Runtime accepts
/// (6 MiB); a larger `InvokeEndpoint` body is refused before sending.
pub const MAX_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;

inferlink_core::config_words! {
    /// Which HTTP API the connector speaks.
    pub enum Api for "api" {
        /// The SageMaker Runtime API: `POST /endpoints/{name}/invocations`,
        /// `…/async-invocations`, `…/invocations-response-stream`, SigV4-signed.
        Runtime = "runtime" | "sagemaker-runtime",
        /// A SageMaker model container reached directly (`GET /ping`,
        /// `POST /invocations`, the model as `X-Amzn-SageMaker-Target-Model`):
        /// multi-model-server, TorchServe, Triton's SageMaker frontend, MLflow.
        Container = "container" | "sagemaker-container",
    }
}

impl Api {
    /// The protocol shown in [`inferlink_core::ConnectorInfo::protocol`].
    pub fn info_name(self) -> &'static str {
        match self {
            Api::Runtime => "sagemaker-runtime",
            Api::Container => "sagemaker-container",
        }
    }
}

inferlink_core::config_words! {
    /// The JSON key a tensor request is sent under (`as_str` is the key as
    /// it appears in the JSON body).
    #[derive(Default)]
    pub enum JsonKey for "infer_json_key" {
        /// `{"instances": …}`: row format (TF Serving, MMS handlers, MLflow). The default.
        #[default]
        Instances = "instances",
        /// `{"inputs": …}`: columnar format (TF Serving, MLflow, Hugging Face containers).
        Inputs = "inputs",
    }
}

/// Everything a [`crate::SageMakerClient`] needs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SageMakerConfig {
    /// The base URL requests go to (the record's endpoint URL, or `endpoint_url`).
    pub url: String,
    /// The API spoken at that URL.
    pub api: Api,
    /// The region and credentials of the signature (`inferlink-aws`'s keys).
    pub aws: AwsAuthConfig,
    /// Whether to sign; `None` follows the API (runtime: yes, container: no).
    pub sign: Option<bool>,
    /// The JSON key tensor requests use.
    pub infer_json_key: JsonKey,
    /// The datatype decoded outputs get; `None` = `auto`.
    pub output_datatype: Option<DataType>,
    /// Timeouts, retries, TLS, static headers (the shared transport's keys).
    pub transport: TransportConfig,
}

/// The transport defaults of SageMaker connectors (the vendor layer under
/// host settings and the record's keys): the shared transport's, with a
/// 70 s attempt timeout (AWS's advice for containers that may take
/// their full 60 s) and a deadline of 150 s.
pub fn default_transport() -> TransportConfig {
    let mut config = TransportConfig::default();
    config.timeout_request = Duration::from_secs(70);
    config.deadline = Duration::from_secs(150);
    config
}

impl SageMakerConfig {
    /// Defaults for a URL: runtime API, region from the URL if it names one.
    pub fn new(url: impl Into<String>) -> Self {
        SageMakerConfig {
            url: url.into(),
            api: Api::Runtime,
            aws: AwsAuthConfig::new(),
            sign: None,
            infer_json_key: JsonKey::default(),
            output_datatype: None,
            transport: default_transport(),
        }
    }

    /// The runtime API of a region at its public endpoint
    /// (`https://runtime.sagemaker.<region>.amazonaws.com`).
    pub fn for_region(region: &str) -> Self {
        let mut config = SageMakerConfig::new(format!(
            "https://runtime.sagemaker.{}.amazonaws.com",
            region.trim()
        ));
        config.aws.region = Some(region.trim().to_owned());
        config
    }

    /// Whether requests are signed: the `sign` key, else yes for the runtime API.
    pub fn signs(&self) -> bool {
        self.sign.unwrap_or(self.api == Api::Runtime)
    }

    /// The region in effect: the configured one, else the one in a
    /// `runtime.sagemaker.<region>.amazonaws.com` (or `.com.cn`, `-fips`,
    /// `.api.aws`) URL, else `AWS_REGION`/`AWS_DEFAULT_REGION` from the
    /// process environment.
    pub fn effective_region(&self) -> Option<String> {
        self.aws.region_or_env(region_from_url(&self.url))
    }
}

/// The region in a SageMaker Runtime host name, if the URL has one.
pub fn region_from_url(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url.trim()).ok()?;
    let host = parsed.host_str()?.to_ascii_lowercase();
    let labels: Vec<&str> = host.split('.').collect();
    // runtime.sagemaker.<region>.amazonaws.com[.cn], runtime.sagemaker.<region>.api.aws,
    // runtime-fips.sagemaker.<region>.amazonaws.com, runtime.sagemaker-fips.<region>.…
    let at = labels.iter().position(|l| l.starts_with("sagemaker"))?;
    let first = labels.first()?;
    if at != 1 || !first.starts_with("runtime") {
        return None;
    }
    let region = labels.get(2)?;
    inferlink_aws::check_region(inferlink_aws::keys::REGION, region).ok()?;
    Some((*region).to_owned())
}

fn parse_bool(key: &str, text: &str) -> Result<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(config_error(
            key,
            format!("\"{}\" is not true or false", text.escape_debug()),
        )),
    }
}

impl ConnectorConfig for SageMakerConfig {
    inferlink_core::config_basics!(transport);

    fn read_keys(&mut self, values: &[(String, ConfigValue)]) -> Result<()> {
        for (k, v) in values {
            let key = k.as_str();
            if self.aws.read_key(key, v)? {
                continue;
            }
            let text = v.expose().trim();
            match key {
                keys::API => self.api = text.parse()?,
                keys::ENDPOINT_URL if !text.is_empty() => self.url = text.to_owned(),
                keys::SIGN => self.sign = Some(parse_bool(keys::SIGN, text)?),
                keys::INFER_JSON_KEY => self.infer_json_key = text.parse()?,
                keys::OUTPUT_DATATYPE => {
                    self.output_datatype = if text.eq_ignore_ascii_case("auto") || text.is_empty() {
                        None
                    } else {
                        Some(text.to_ascii_uppercase().parse().map_err(|_| {
                            config_error(
                                keys::OUTPUT_DATATYPE,
                                format!("\"{}\" is not auto or a datatype", text.escape_debug()),
                            )
                        })?)
                    };
                }
                _ => {}
            }
        }
        self.aws.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use inferlink_core::ErrorKind;

    #[test]
    fn region_comes_from_key_then_url() {
        let c =
            SageMakerConfig::from_pairs("https://runtime.sagemaker.eu-west-1.amazonaws.com", &[])
                .unwrap();
        assert_eq!(c.effective_region().as_deref(), Some("eu-west-1"));
        let c = SageMakerConfig::from_pairs(
            "https://runtime.sagemaker.eu-west-1.amazonaws.com",
            &[("AWS_REGION", "us-east-2")],
        )
        .unwrap();
        assert_eq!(c.effective_region().as_deref(), Some("us-east-2"));
        for (url, region) in [
            (
                "https://runtime-fips.sagemaker.us-west-2.amazonaws.com",
                "us-west-2",
            ),
            (
                "https://runtime.sagemaker.cn-north-1.amazonaws.com.cn/",
                "cn-north-1",
            ),
            (
                "https://runtime.sagemaker-fips.us-east-1.api.aws",
                "us-east-1",
            ),
        ] {
            assert_eq!(region_from_url(url).as_deref(), Some(region), "{url}");
        }
        assert_eq!(region_from_url("http://127.0.0.1:8080"), None);
        assert_eq!(
            region_from_url("https://vpce-1.runtime.sagemaker.us-east-1.vpce.amazonaws.com"),
            None
        );
        let e = SageMakerConfig::from_pairs("http://h", &[("region", "US East")]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert_eq!(e.path(), Some("region"));
        let e = SageMakerConfig::from_pairs(
            "http://h",
            &[("region", "us-east-1"), ("AWS_REGION", "eu-west-1")],
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
    }

    #[test]
    fn credentials_need_both_halves_and_stay_hidden() {
        let c = SageMakerConfig::from_pairs(
            "http://h",
            &[
                ("AWS_ACCESS_KEY_ID", "AKIAPLANTED"),
                ("aws_secret_access_key", "secret-planted"),
                ("AWS_SESSION_TOKEN", "token-planted"),
            ],
        )
        .unwrap();
        let creds = c.aws.credentials.as_ref().unwrap();
        assert_eq!(creds.access_key_id(), "AKIAPLANTED");
        assert!(creds.has_session_token());
        assert!(!format!("{c:?}").contains("planted"));
        let e =
            SageMakerConfig::from_pairs("http://h", &[("AWS_ACCESS_KEY_ID", "AKIA")]).unwrap_err();
        assert_eq!(e.path(), Some("AWS_SECRET_ACCESS_KEY"));
        let e =
            SageMakerConfig::from_pairs("http://h", &[("AWS_SECRET_ACCESS_KEY", "s")]).unwrap_err();
        assert_eq!(e.path(), Some("AWS_ACCESS_KEY_ID"));
        let e = SageMakerConfig::from_pairs("http://h", &[("AWS_SESSION_TOKEN", "t")]).unwrap_err();
        assert_eq!(e.path(), Some("AWS_SESSION_TOKEN"));
        assert!(!e.to_string().contains("\"t\""));
    }

    #[test]
    fn api_sign_and_codec_keys() {
        let c = SageMakerConfig::from_pairs(
            "http://h",
            &[
                ("api", "Container"),
                ("endpoint_url", "http://127.0.0.1:9"),
                ("infer_json_key", "inputs"),
                ("output_datatype", "fp32"),
                ("timeout_request_ms", "1500"),
            ],
        )
        .unwrap();
        assert_eq!(c.api, Api::Container);
        assert!(!c.signs());
        assert_eq!(c.url, "http://127.0.0.1:9");
        assert_eq!(c.infer_json_key, JsonKey::Inputs);
        assert_eq!(c.output_datatype, Some(DataType::Fp32));
        assert_eq!(c.transport.timeout_request.as_millis(), 1500);
        assert!(
            SageMakerConfig::from_pairs("http://h", &[])
                .unwrap()
                .signs()
        );
        assert!(
            SageMakerConfig::from_pairs("http://h", &[("api", "container"), ("sign", "yes")])
                .unwrap()
                .signs()
        );
        for (k, v) in [
            ("api", "soap"),
            ("sign", "maybe"),
            ("infer_json_key", "rows"),
            ("output_datatype", "FP128"),
            ("timeout_request_ms", "soon"),
        ] {
            let e = SageMakerConfig::from_pairs("http://h", &[(k, v)]).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{k}");
        }
        assert_eq!(
            SageMakerConfig::from_pairs("http://h", &[("output_datatype", "auto")])
                .unwrap()
                .output_datatype,
            None
        );
    }
}
