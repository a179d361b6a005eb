//! [`AwsAuthConfig`]: the region and credential keys every AWS connector
//! reads, and the SigV4 signer built from them.

use std::path::PathBuf;
use std::time::Duration;

use inferlink_core::kit::config_error;
use inferlink_core::transport::sigv4::{AwsCredentials, SigV4Signer};
use inferlink_core::{ConfigValue, Result, Secret};

use crate::endpoint::{Service, check_endpoint};

inferlink_core::config_keys! {
    /// The keys of AWS authentication, read by every AWS connector beside
    /// its own (list it in the connector's factory). The upper-case `AWS_*`
    /// spellings are also environment variables of workflow steps; their
    /// lower-case spellings are aliases so that they are read, not refused.
    pub const KEYS for "aws" in mod keys {
        /// the AWS region of the signature (else the connector's endpoint URL, else the
        /// environment's AWS_REGION / AWS_DEFAULT_REGION)
        REGION = "region" | "AWS_REGION" | "AWS_DEFAULT_REGION" | "aws_region",
        /// the AWS access key id (else the process environment's)
        ACCESS_KEY_ID = "AWS_ACCESS_KEY_ID" | "aws_access_key_id",
        /// the AWS secret access key (else the process environment's)
        SECRET_ACCESS_KEY = "AWS_SECRET_ACCESS_KEY" | "aws_secret_access_key",
        /// the session token of temporary AWS credentials
        SESSION_TOKEN = "AWS_SESSION_TOKEN" | "aws_session_token",
        /// where credentials come from: static, environment, profile, web_identity,
        /// assume_role, ecs, imds or default_chain (static with the keys above, else environment)
        CREDENTIAL_SOURCE = "aws_credential_source",
        /// the profile of the shared config/credentials files (profile, default_chain; else
        /// AWS_PROFILE, else default)
        PROFILE = "aws_profile",
        /// the shared config file instead of ~/.aws/config (profile, default_chain)
        CONFIG_FILE = "aws_config_file",
        /// the shared credentials file instead of ~/.aws/credentials (profile, default_chain)
        SHARED_CREDENTIALS_FILE = "aws_shared_credentials_file",
        /// the ARN of the role to assume (assume_role; web_identity, else AWS_ROLE_ARN)
        ROLE_ARN = "aws_role_arn",
        /// the role session name (assume_role, web_identity; else AWS_ROLE_SESSION_NAME, else
        /// inferlink-<time>)
        ROLE_SESSION_NAME = "aws_role_session_name",
        /// the external id the role's trust policy asks for (assume_role)
        EXTERNAL_ID = "aws_external_id",
        /// the session length of assumed roles in seconds, 900 to 43200 (STS's default, 3600)
        ROLE_DURATION_S = "aws_role_duration_s",
        /// the web identity (OIDC) token file (web_identity; else AWS_WEB_IDENTITY_TOKEN_FILE)
        WEB_IDENTITY_TOKEN_FILE = "aws_web_identity_token_file",
        /// the STS endpoint (assume_role, web_identity): loopback, or an https AWS host
        STS_ENDPOINT_URL = "aws_sts_endpoint_url",
        /// the instance metadata endpoint (imds): loopback, or http://169.254.169.254 or
        /// http://[fd00:ec2::254]
        IMDS_ENDPOINT = "aws_imds_endpoint",
    }
}

inferlink_core::config_words! {
    /// Where an AWS connector's credentials come from (`aws_credential_source`).
    pub enum CredentialSource for "aws_credential_source" {
        /// The record's `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` (and
        /// `AWS_SESSION_TOKEN`).
        Static = "static",
        /// The process environment's `AWS_ACCESS_KEY_ID`,
        /// `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`), read once.
        Environment = "environment" | "env",
        /// A profile of the shared config and credentials files (static keys,
        /// `role_arn` with `source_profile`, `credential_source`,
        /// `web_identity_token_file`), as the AWS SDK reads them.
        Profile = "profile",
        /// `AssumeRoleWithWebIdentity` with an OIDC token file (EKS IRSA).
        WebIdentity = "web_identity" | "irsa",
        /// `AssumeRole` of `aws_role_arn`, with the record's static keys (else
        /// the SDK's default chain) as the caller.
        AssumeRole = "assume_role",
        /// The ECS (or EKS Pod Identity) container credentials endpoint from
        /// the environment the agent sets.
        Ecs = "ecs" | "container",
        /// The EC2 instance metadata service, IMDSv2 (session token first).
        Imds = "imds" | "ec2",
        /// The AWS SDK's default chain: environment, profile, web identity,
        /// ECS, IMDS, in that order.
        DefaultChain = "default_chain" | "default",
    }
}

/// The shortest and longest role session STS grants (seconds).
pub const ROLE_DURATION_RANGE_S: (u64, u64) = (900, 43_200);

/// The environment variables that name the region when no key does, in order.
pub const REGION_ENV: [&str; 2] = ["AWS_REGION", "AWS_DEFAULT_REGION"];

/// The region and credentials an AWS connector signs with, read from the
/// same `(key, value)` pairs as the connector's own configuration.
///
/// A connector's config holds one (`aws: AwsAuthConfig`), hands every pair
/// to [`AwsAuthConfig::read_key`] (or all of them to
/// [`AwsAuthConfig::read_keys`]), calls [`AwsAuthConfig::finish`] once, and
/// its client asks [`AwsAuthConfig::signer`] for the request signer.
/// `Debug` never shows a credential.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct AwsAuthConfig {
    /// The region the keys name, if any (see [`AwsAuthConfig::region_or_env`]).
    pub region: Option<String>,
    /// The record's static key pair, if it has one; `None` falls back to the
    /// process environment when signing.
    pub credentials: Option<AwsCredentials>,
    /// `aws_credential_source`, if set (see [`AwsAuthConfig::credential_source`]).
    pub source: Option<CredentialSource>,
    /// `aws_profile`.
    pub profile: Option<String>,
    /// `aws_config_file`.
    pub config_file: Option<PathBuf>,
    /// `aws_shared_credentials_file`.
    pub shared_credentials_file: Option<PathBuf>,
    /// `aws_role_arn`.
    pub role_arn: Option<String>,
    /// `aws_role_session_name`.
    pub role_session_name: Option<String>,
    /// `aws_external_id`.
    pub external_id: Option<String>,
    /// `aws_role_duration_s`.
    pub role_duration: Option<Duration>,
    /// `aws_web_identity_token_file`.
    pub web_identity_token_file: Option<PathBuf>,
    /// `aws_sts_endpoint_url` (checked: see [`crate::endpoint`]).
    pub sts_endpoint_url: Option<String>,
    /// `aws_imds_endpoint` (checked: see [`crate::endpoint`]).
    pub imds_endpoint: Option<String>,
    pending: Pending,
}

/// What [`AwsAuthConfig::read_key`] saw, until [`AwsAuthConfig::finish`].
#[derive(Debug, Clone, Default)]
struct Pending {
    region: Option<(String, String)>,
    access_key_id: Option<Secret>,
    secret_access_key: Option<Secret>,
    session_token: Option<Secret>,
}

impl AwsAuthConfig {
    /// Nothing configured: region and credentials from the environment.
    pub fn new() -> Self {
        AwsAuthConfig::default()
    }

    /// Reads one configuration pair if it is one of [`KEYS`] (under any of
    /// its names) and answers whether it was. Empty values count as unset.
    /// Errors ([`inferlink_core::ErrorKind::Config`], naming the key, never
    /// a credential): a malformed region, or two names of the region
    /// disagreeing.
    pub fn read_key(&mut self, key: &str, value: &ConfigValue) -> Result<bool> {
        let Some(found) = KEYS.find(key) else {
            return Ok(false);
        };
        let text = value.expose().trim();
        let secret = (!text.is_empty()).then(|| Secret::new(text));
        match found.name {
            keys::REGION => {
                if text.is_empty() {
                    return Ok(true);
                }
                check_region(key, text)?;
                if let Some((other, earlier)) = &self.pending.region
                    && earlier != text
                {
                    return Err(config_error(
                        key,
                        format!("names another region than `{other}`"),
                    ));
                }
                self.pending.region = Some((key.to_owned(), text.to_owned()));
            }
            keys::ACCESS_KEY_ID => self.pending.access_key_id = secret,
            keys::SECRET_ACCESS_KEY => self.pending.secret_access_key = secret,
            keys::SESSION_TOKEN => self.pending.session_token = secret,
            _ if text.is_empty() => {}
            keys::CREDENTIAL_SOURCE => self.source = Some(text.parse()?),
            // Profile names as people write them: `ml-dev`, `team.prod`,
            // `AdministratorAccess-123456789012`, `me@example`.
            keys::PROFILE => self.profile = Some(checked_name(key, text, 64, "-.@+:/")?),
            keys::CONFIG_FILE => self.config_file = Some(PathBuf::from(text)),
            keys::SHARED_CREDENTIALS_FILE => {
                self.shared_credentials_file = Some(PathBuf::from(text));
            }
            keys::ROLE_ARN => self.role_arn = Some(check_role_arn(key, text)?),
            keys::ROLE_SESSION_NAME => {
                self.role_session_name = Some(checked_name(key, text, 64, "+=,.@-")?);
            }
            keys::EXTERNAL_ID => {
                self.external_id = Some(checked_name(key, text, 1224, "+=,.@:/-")?);
            }
            keys::ROLE_DURATION_S => self.role_duration = Some(role_duration(key, text)?),
            keys::WEB_IDENTITY_TOKEN_FILE => {
                self.web_identity_token_file = Some(PathBuf::from(text));
            }
            keys::STS_ENDPOINT_URL => {
                self.sts_endpoint_url = Some(check_endpoint(key, Service::Sts, text)?);
            }
            keys::IMDS_ENDPOINT => {
                self.imds_endpoint = Some(check_endpoint(key, Service::Imds, text)?);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Reads every pair (see [`AwsAuthConfig::read_key`]), then
    /// [`AwsAuthConfig::finish`].
    pub fn read_keys(&mut self, values: &[(String, ConfigValue)]) -> Result<()> {
        for (key, value) in values {
            self.read_key(key, value)?;
        }
        self.finish()
    }

    /// Settles what [`AwsAuthConfig::read_key`] saw: the region, and the
    /// static key pair. Errors ([`inferlink_core::ErrorKind::Config`],
    /// naming the missing key): half a key pair, or a session token without one.
    pub fn finish(&mut self) -> Result<()> {
        let mut pending = std::mem::take(&mut self.pending);
        if let Some((_, region)) = pending.region.take() {
            self.region = Some(region);
        }
        self.settle_key_pair(pending)?;
        self.check_source_keys()
    }

    /// The credential source in effect: `aws_credential_source`, else
    /// static with the record's key pair, else the environment.
    pub fn credential_source(&self) -> CredentialSource {
        self.source.unwrap_or(if self.credentials.is_some() {
            CredentialSource::Static
        } else {
            CredentialSource::Environment
        })
    }

    /// Refuses keys the credential source in effect does not read (a key
    /// that would be ignored silently), and a source without what it needs.
    fn check_source_keys(&self) -> Result<()> {
        use CredentialSource as S;
        let source = self.credential_source();
        let not_read = |key: &str| {
            config_error(
                key,
                format!(
                    "is not read with aws_credential_source {source}: remove it or choose another source"
                ),
            )
        };
        let uses = |set: &[CredentialSource]| set.contains(&source);
        if self.credentials.is_some() && !uses(&[S::Static, S::AssumeRole]) {
            return Err(not_read(keys::ACCESS_KEY_ID));
        }
        let profile_sources = [S::Profile, S::DefaultChain, S::AssumeRole];
        let role_sources = [S::AssumeRole, S::WebIdentity];
        let checks: [(bool, &str, &[CredentialSource]); 10] = [
            (self.profile.is_some(), keys::PROFILE, &profile_sources),
            (
                self.config_file.is_some(),
                keys::CONFIG_FILE,
                &profile_sources,
            ),
            (
                self.shared_credentials_file.is_some(),
                keys::SHARED_CREDENTIALS_FILE,
                &profile_sources,
            ),
            (self.role_arn.is_some(), keys::ROLE_ARN, &role_sources),
            (
                self.role_session_name.is_some(),
                keys::ROLE_SESSION_NAME,
                &role_sources,
            ),
            (
                self.external_id.is_some(),
                keys::EXTERNAL_ID,
                &[S::AssumeRole],
            ),
            (
                self.role_duration.is_some(),
                keys::ROLE_DURATION_S,
                &role_sources,
            ),
            (
                self.web_identity_token_file.is_some(),
                keys::WEB_IDENTITY_TOKEN_FILE,
                &[S::WebIdentity],
            ),
            (
                self.sts_endpoint_url.is_some(),
                keys::STS_ENDPOINT_URL,
                &role_sources,
            ),
            (
                self.imds_endpoint.is_some(),
                keys::IMDS_ENDPOINT,
                &[S::Imds],
            ),
        ];
        for (set, key, sources) in checks {
            if set && !uses(sources) {
                return Err(not_read(key));
            }
        }
        match source {
            S::Static if self.credentials.is_none() => Err(config_error(
                keys::ACCESS_KEY_ID,
                "is needed with aws_credential_source static (with AWS_SECRET_ACCESS_KEY)",
            )),
            S::AssumeRole if self.role_arn.is_none() => Err(config_error(
                keys::ROLE_ARN,
                "is needed with aws_credential_source assume_role",
            )),
            _ => Ok(()),
        }
    }

    fn settle_key_pair(&mut self, pending: Pending) -> Result<()> {
        match (pending.access_key_id, pending.secret_access_key) {
            (Some(id), Some(secret)) => {
                let mut creds = AwsCredentials::new(id, secret);
                if let Some(token) = pending.session_token {
                    creds = creds.with_session_token(token);
                }
                self.credentials = Some(creds);
                Ok(())
            }
            (Some(_), None) => Err(config_error(
                keys::SECRET_ACCESS_KEY,
                "is missing: the record sets AWS_ACCESS_KEY_ID without it",
            )),
            (None, Some(_)) => Err(config_error(
                keys::ACCESS_KEY_ID,
                "is missing: the record sets AWS_SECRET_ACCESS_KEY without it",
            )),
            (None, None) if pending.session_token.is_some() => Err(config_error(
                keys::SESSION_TOKEN,
                "is set without AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            )),
            (None, None) => Ok(()),
        }
    }

    /// The region in effect: the configured one, else `from_url` (the region
    /// a connector finds in its endpoint's host name), else
    /// `AWS_REGION`/`AWS_DEFAULT_REGION` from the process environment
    /// (ignored when malformed).
    pub fn region_or_env(&self, from_url: Option<String>) -> Option<String> {
        self.region.clone().or(from_url).or_else(|| {
            REGION_ENV
                .iter()
                .find_map(|name| std::env::var(name).ok())
                .map(|r| r.trim().to_owned())
                .filter(|r| check_region(keys::REGION, r).is_ok())
        })
    }

    /// The credentials in effect: the record's, else the process environment's.
    pub fn credentials_or_env(&self) -> Option<AwsCredentials> {
        self.credentials.clone().or_else(AwsCredentials::from_env)
    }

    /// The SigV4 signer for `signing_name` (`sagemaker`, `bedrock`) in
    /// `region`, with the credentials of the source in effect
    /// ([`AwsAuthConfig::credential_source`]): fixed credentials for
    /// `static` and `environment`; for the other sources a
    /// [`crate::CachedCredentials`] over the AWS SDK's provider (feature
    /// `chain`), which fetches nothing until the first request is signed.
    ///
    /// Errors ([`inferlink_core::ErrorKind::Config`] naming the key): no
    /// credentials in the record nor the environment (without a source
    /// key), a source that needs the feature `chain` without it, or what
    /// a source needs missing (a web identity token file, a role ARN).
    pub fn signer(&self, signing_name: &str, region: &str) -> Result<SigV4Signer> {
        let fixed = |credentials: AwsCredentials| {
            Ok(SigV4Signer::new(credentials, region).with_signing_name(signing_name))
        };
        match self.credential_source() {
            CredentialSource::Static | CredentialSource::Environment => {
                let credentials = self.credentials_or_env().ok_or_else(|| {
                    config_error(
                        keys::ACCESS_KEY_ID,
                        "no AWS credentials: the record has no AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY \
                         and neither has the process environment (set aws_credential_source for \
                         profiles, roles, ECS or EC2 credentials, or sign: false)",
                    )
                })?;
                fixed(credentials)
            }
            #[cfg(feature = "chain")]
            _ => {
                let provider = crate::CachedCredentials::new(self.chain_provider(region)?);
                Ok(
                    SigV4Signer::with_provider(std::sync::Arc::new(provider), region)
                        .with_signing_name(signing_name),
                )
            }
            #[cfg(not(feature = "chain"))]
            source => Err(config_error(
                keys::CREDENTIAL_SOURCE,
                format!("`{source}` needs inferlink-aws built with its feature `chain`"),
            )),
        }
    }
}

/// Checks a name-like value: 2 to `max` characters, ASCII letters, digits,
/// `_` and the characters in `extra`.
fn checked_name(key: &str, text: &str, max: usize, extra: &str) -> Result<String> {
    let ok = (2..=max).contains(&text.len())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || extra.contains(c));
    if ok {
        Ok(text.to_owned())
    } else {
        let allowed = if extra.is_empty() {
            String::new()
        } else {
            format!(" and {extra}")
        };
        Err(config_error(
            key,
            format!("must be 2 to {max} characters: letters, digits, _{allowed}"),
        ))
    }
}

/// Checks a role ARN (`arn:<partition>:iam::<account>:role/<path/name>`).
fn check_role_arn(key: &str, text: &str) -> Result<String> {
    let parts: Vec<&str> = text.splitn(6, ':').collect();
    let ok = text.len() <= 2048
        && parts.len() == 6
        && parts[0] == "arn"
        && parts[2] == "iam"
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && parts[5].starts_with("role/")
        && parts[5].len() > 5
        && !text.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(text.to_owned())
    } else {
        Err(config_error(
            key,
            "is not a role ARN (arn:aws:iam::<12-digit account>:role/<name>)",
        ))
    }
}

/// Parses a role session length in whole seconds within STS's range.
fn role_duration(key: &str, text: &str) -> Result<Duration> {
    let (low, high) = ROLE_DURATION_RANGE_S;
    match text.parse::<u64>() {
        Ok(secs) if (low..=high).contains(&secs) => Ok(Duration::from_secs(secs)),
        _ => Err(config_error(
            key,
            format!("must be whole seconds from {low} to {high}"),
        )),
    }
}

/// Checks an AWS region name (lower-case letters, digits and `-`, at most
/// 64 bytes, no `-` at either end). The error is
/// [`inferlink_core::ErrorKind::Config`] naming `key`.
pub fn check_region(key: &str, region: &str) -> Result<()> {
    let ok = !region.is_empty()
        && region.len() <= 64
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !region.starts_with('-')
        && !region.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(config_error(
            key,
            format!(
                "\"{}\" is not an AWS region name (lower-case letters, digits and `-`, e.g. us-east-1)",
                region.escape_debug()
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use inferlink_core::ErrorKind;

    fn read(pairs: &[(&str, &str)]) -> Result<AwsAuthConfig> {
        let values: Vec<(String, ConfigValue)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), ConfigValue::Plain((*v).to_owned())))
            .collect();
        let mut config = AwsAuthConfig::new();
        config.read_keys(&values)?;
        Ok(config)
    }

    #[test]
    fn region_names_agree_or_fail() {
        let c = read(&[("AWS_REGION", "us-east-2"), ("aws_region", "us-east-2")]).unwrap();
        assert_eq!(c.region.as_deref(), Some("us-east-2"));
        assert_eq!(
            c.region_or_env(Some("eu-west-1".into())).as_deref(),
            Some("us-east-2")
        );
        let e = read(&[("region", "US East")]).unwrap_err();
        assert_eq!((e.kind(), e.path()), (ErrorKind::Config, Some("region")));
        let e = read(&[("region", "us-east-1"), ("AWS_REGION", "eu-west-1")]).unwrap_err();
        assert_eq!(e.path(), Some("AWS_REGION"));
        let mut c = AwsAuthConfig::new();
        assert!(
            !c.read_key("api", &ConfigValue::Plain("runtime".into()))
                .unwrap()
        );
    }

    #[test]
    fn profile_names_take_hyphens_and_dots_not_spaces() {
        for name in ["ml-dev", "team.prod", "AdministratorAccess-123456789012"] {
            let c = read(&[("aws_credential_source", "profile"), ("aws_profile", name)]).unwrap();
            assert_eq!(c.profile.as_deref(), Some(name));
        }
        for name in ["two words", "x", "a]b", "new\nline"] {
            let e =
                read(&[("aws_credential_source", "profile"), ("aws_profile", name)]).unwrap_err();
            assert_eq!(e.path(), Some("aws_profile"), "{name}");
        }
    }

    #[test]
    fn key_pairs_are_whole_and_hidden() {
        let c = read(&[
            ("AWS_ACCESS_KEY_ID", "AKIAPLANTED"),
            ("aws_secret_access_key", "secret-planted"),
            ("aws_session_token", "token-planted"),
        ])
        .unwrap();
        let creds = c.credentials.as_ref().unwrap();
        assert_eq!(creds.access_key_id(), "AKIAPLANTED");
        assert!(creds.has_session_token());
        assert!(!format!("{c:?}").contains("planted"));
        let signer = c.signer("bedrock", "us-west-2").unwrap();
        assert!(!format!("{signer:?}").contains("planted"));
        for (key, value, missing) in [
            ("AWS_ACCESS_KEY_ID", "AKIA", "AWS_SECRET_ACCESS_KEY"),
            ("AWS_SECRET_ACCESS_KEY", "s-planted", "AWS_ACCESS_KEY_ID"),
            ("AWS_SESSION_TOKEN", "t-planted", "AWS_SESSION_TOKEN"),
        ] {
            let e = read(&[(key, value)]).unwrap_err();
            assert_eq!(e.path(), Some(missing));
            assert!(!e.to_string().contains("planted"), "{e}");
        }
    }

    #[test]
    fn sources_take_only_their_keys() {
        let role = ("aws_role_arn", "arn:aws:iam::123456789012:role/r");
        let c = read(&[("aws_credential_source", "irsa"), role]).unwrap();
        assert_eq!(c.credential_source(), CredentialSource::WebIdentity);
        assert_eq!(
            read(&[]).unwrap().credential_source(),
            CredentialSource::Environment
        );
        for (pairs, path) in [
            (
                vec![("aws_credential_source", "profile"), role],
                "aws_role_arn",
            ),
            (
                vec![
                    ("aws_credential_source", "web_identity"),
                    role,
                    ("aws_external_id", "ext-1"),
                ],
                "aws_external_id",
            ),
            (
                vec![("aws_credential_source", "static")],
                "AWS_ACCESS_KEY_ID",
            ),
            (
                vec![("aws_credential_source", "assume_role")],
                "aws_role_arn",
            ),
            (
                vec![
                    ("aws_credential_source", "ecs"),
                    ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
                    ("AWS_SECRET_ACCESS_KEY", "s-planted"),
                ],
                "AWS_ACCESS_KEY_ID",
            ),
            (
                vec![("aws_imds_endpoint", "http://127.0.0.1:1")],
                "aws_imds_endpoint",
            ),
            (
                vec![("aws_credential_source", "sso")],
                "aws_credential_source",
            ),
            (vec![("aws_role_duration_s", "60")], "aws_role_duration_s"),
            (
                vec![("aws_role_arn", "arn:aws:s3:::bucket")],
                "aws_role_arn",
            ),
            (
                vec![("aws_role_session_name", "has space")],
                "aws_role_session_name",
            ),
            (
                vec![
                    ("aws_credential_source", "assume_role"),
                    role,
                    ("aws_sts_endpoint_url", "https://sts.attacker.example"),
                ],
                "aws_sts_endpoint_url",
            ),
        ] {
            let e = read(&pairs).unwrap_err();
            assert_eq!(
                (e.kind(), e.path()),
                (ErrorKind::Config, Some(path)),
                "{pairs:?}: {e}"
            );
            assert!(!e.to_string().contains("planted"), "{e}");
        }
        let c = read(&[
            ("aws_credential_source", "assume_role"),
            role,
            ("aws_external_id", "ext-planted-id"),
            ("aws_role_duration_s", "3600"),
            ("aws_sts_endpoint_url", "http://127.0.0.1:5000"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret-planted"),
        ])
        .unwrap();
        assert_eq!(c.role_duration, Some(Duration::from_secs(3600)));
        assert!(!format!("{c:?}").contains("secret-planted"));
    }

    #[cfg(not(feature = "chain"))]
    #[test]
    fn chain_sources_need_the_feature() {
        let c = read(&[("aws_credential_source", "imds")]).unwrap();
        let e = c.signer("bedrock", "us-east-1").unwrap_err();
        assert_eq!(e.path(), Some("aws_credential_source"));
    }
}
