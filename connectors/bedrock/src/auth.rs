//! How a Bedrock connector authenticates: SigV4 (signing name `bedrock`,
//! region and credentials from `inferlink-aws`) or a Bedrock API key sent
//! as `Authorization: Bearer`.

use inferlink_aws::AwsAuthConfig;
use inferlink_core::kit::config_error;
use inferlink_core::{ConfigValue, ConnectTarget, Result, Secret};

use crate::config::{AuthMode, BedrockConfig, keys};

/// The SigV4 signing name of both Bedrock runtimes (`bedrock-runtime` and
/// `bedrock-agent-runtime` hosts).
pub const SIGNING_NAME: &str = "bedrock";

/// The environment variable botocore reads a Bedrock API key from
/// (`AWS_BEARER_TOKEN_` and the signing name in upper case).
pub const BEARER_ENV: &str = "AWS_BEARER_TOKEN_BEDROCK";

/// How requests are authenticated, decided when the connector is built.
#[derive(Debug, Clone)]
pub enum Access {
    /// Signed with SigV4 for `region`.
    Sigv4(inferlink_aws::SigV4Signer),
    /// A Bedrock API key (the region, when known, names Rerank's model ARN).
    Bearer {
        /// The API key.
        key: Secret,
        /// The region, when known.
        region: Option<String>,
    },
}

impl Access {
    /// The region requests are for, when known.
    pub fn region(&self) -> Option<&str> {
        match self {
            Access::Sigv4(signer) => Some(signer.region()),
            Access::Bearer { region, .. } => region.as_deref(),
        }
    }

    /// How the target's requests are authenticated: the record's `auth`
    /// mode; for `auto` a Bedrock API key (the record's `api_key`, else the
    /// environment's `AWS_BEARER_TOKEN_BEDROCK`) when there is one, else
    /// SigV4 with the region and credentials `inferlink-aws` reads (the
    /// record's keys, else the environment; the region also from a
    /// `bedrock-runtime.<region>` URL).
    ///
    /// Errors ([`inferlink_core::ErrorKind::Config`], naming the key): no
    /// region or no credentials for SigV4; `auth: bearer` without a key.
    pub fn for_target(target: &ConnectTarget, config: &BedrockConfig) -> Result<Access> {
        let values: Vec<(String, ConfigValue)> =
            target.values().map(|(k, v)| (k.to_owned(), v)).collect();
        let mut aws = AwsAuthConfig::new();
        aws.read_keys(&values)?;
        let region = aws.region_or_env(region_from_url(&target.url));
        let env_key = || {
            std::env::var(BEARER_ENV)
                .ok()
                .map(|k| k.trim().to_owned())
                .filter(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_graphic()))
                .map(Secret::new)
        };
        let key = config.api_key.clone().or_else(env_key);
        match (config.auth, key) {
            (AuthMode::Bearer | AuthMode::Auto, Some(key)) => Ok(Access::Bearer { key, region }),
            (AuthMode::Bearer, None) => Err(config_error(
                keys::API_KEY,
                format!("auth is bearer but there is no API key (set api_key or {BEARER_ENV})"),
            )),
            (AuthMode::Sigv4 | AuthMode::Auto, _) => {
                let region = region.ok_or_else(|| {
                    config_error(
                        inferlink_aws::keys::REGION,
                        "is needed to sign requests: set `region` (or AWS_REGION), or use a \
                         bedrock-runtime.<region>.amazonaws.com endpoint URL",
                    )
                })?;
                Ok(Access::Sigv4(aws.signer(SIGNING_NAME, &region)?))
            }
        }
    }
}

/// The region of a `bedrock-runtime.<region>.amazonaws.com` (or
/// `bedrock-runtime-fips.…`, `bedrock-agent-runtime.…`, `.amazonaws.com.cn`)
/// URL.
pub fn region_from_url(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url.trim()).ok()?;
    let host = parsed.host_str()?.to_ascii_lowercase();
    let mut labels = host.split('.');
    let service = labels.next()?;
    let region = labels.next()?;
    let known = ["bedrock-runtime", "bedrock-agent-runtime"]
        .iter()
        .any(|s| service == *s || service == format!("{s}-fips"));
    let aws = host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn");
    (known && aws && inferlink_aws::check_region("region", region).is_ok())
        .then(|| region.to_owned())
}

/// The agent runtime's URL for a runtime URL: the same host with
/// `bedrock-runtime` replaced by `bedrock-agent-runtime`; any other URL
/// (a VPC endpoint, a local server) is used as it is.
pub fn agent_runtime_url(runtime_url: &str) -> String {
    let Ok(mut url) = url::Url::parse(runtime_url.trim()) else {
        return runtime_url.to_owned();
    };
    let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
        return runtime_url.to_owned();
    };
    match host.strip_prefix("bedrock-runtime") {
        Some(rest) if region_from_url(runtime_url).is_some() => {
            let agent = format!("bedrock-agent-runtime{rest}");
            if url.set_host(Some(&agent)).is_ok() {
                return url.to_string();
            }
            runtime_url.to_owned()
        }
        _ => runtime_url.to_owned(),
    }
}

/// The ARN of a foundation model for Rerank: an ARN is kept as it is; a
/// model id becomes `arn:<partition>:bedrock:<region>::foundation-model/<id>`.
pub fn model_arn(model: &str, region: Option<&str>) -> Result<String> {
    if model.starts_with("arn:") {
        return Ok(model.to_owned());
    }
    let region = region.ok_or_else(|| {
        config_error(
            inferlink_aws::keys::REGION,
            "is needed to name a rerank model by id (or name the model by its ARN)",
        )
    })?;
    let partition = if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    };
    Ok(format!(
        "arn:{partition}:bedrock:{region}::foundation-model/{model}"
    ))
}

#[cfg(test)]
mod tests {
    use inferlink_core::ErrorKind;

    use super::*;

    #[test]
    fn regions_come_from_bedrock_hosts_only() {
        for (url, region) in [
            (
                "https://bedrock-runtime.us-east-1.amazonaws.com",
                Some("us-east-1"),
            ),
            (
                "https://bedrock-runtime-fips.us-west-2.amazonaws.com/",
                Some("us-west-2"),
            ),
            (
                "https://bedrock-agent-runtime.eu-central-1.amazonaws.com",
                Some("eu-central-1"),
            ),
            (
                "https://bedrock-runtime.cn-north-1.amazonaws.com.cn",
                Some("cn-north-1"),
            ),
            ("http://127.0.0.1:9000", None),
            ("https://bedrock-runtime.us-east-1.example.com", None),
        ] {
            assert_eq!(region_from_url(url).as_deref(), region, "{url}");
        }
    }

    #[test]
    fn the_agent_runtime_is_found_beside_the_runtime() {
        assert_eq!(
            agent_runtime_url("https://bedrock-runtime.us-east-1.amazonaws.com"),
            "https://bedrock-agent-runtime.us-east-1.amazonaws.com/"
        );
        assert_eq!(
            agent_runtime_url("http://127.0.0.1:9000/"),
            "http://127.0.0.1:9000/"
        );
    }

    #[test]
    fn model_arns_follow_the_partition() {
        let arn = model_arn("amazon.rerank-v1:0", Some("us-west-2")).unwrap();
        assert_eq!(
            arn,
            "arn:aws:bedrock:us-west-2::foundation-model/amazon.rerank-v1:0"
        );
        let cn = model_arn("m", Some("cn-north-1")).unwrap();
        assert!(cn.starts_with("arn:aws-cn:bedrock:cn-north-1::"));
        let given = "arn:aws:bedrock:us-east-1::foundation-model/cohere.rerank-v3-5:0";
        assert_eq!(model_arn(given, None).unwrap(), given);
        let e = model_arn("m", None).unwrap_err();
        assert_eq!((e.kind(), e.path()), (ErrorKind::Config, Some("region")));
    }

    #[test]
    fn access_follows_the_auth_mode() {
        let url = "https://bedrock-runtime.eu-west-1.amazonaws.com";
        let keyed = ConnectTarget::new("bedrock", url).with_secret("api_key", "k-planted");
        let config = BedrockConfig::from_target(&keyed).unwrap();
        let access = Access::for_target(&keyed, &config).unwrap();
        assert!(matches!(&access, Access::Bearer { .. }));
        assert_eq!(access.region(), Some("eu-west-1"));
        assert!(!format!("{access:?}").contains("planted"));
        let signed = keyed
            .clone()
            .with_plain("auth", "sigv4")
            .with_secret("aws_access_key_id", "AKIDEXAMPLE")
            .with_secret("aws_secret_access_key", "secret-planted");
        let config = BedrockConfig::from_target(&signed).unwrap();
        let access = Access::for_target(&signed, &config).unwrap();
        assert!(matches!(access, Access::Sigv4(_)));
        assert_eq!(access.region(), Some("eu-west-1"));
        let no_key = ConnectTarget::new("bedrock", url).with_plain("auth", "bearer");
        let config = BedrockConfig::from_target(&no_key).unwrap();
        if std::env::var_os(BEARER_ENV).is_none() {
            let e = Access::for_target(&no_key, &config).unwrap_err();
            assert_eq!(e.path(), Some("api_key"));
        }
    }
}
