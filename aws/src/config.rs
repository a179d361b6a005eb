//! [`AwsAuthConfig`]: the region and credential keys every AWS connector
//! reads, and the SigV4 signer built from them.

use inferlink_core::kit::config_error;
use inferlink_core::transport::sigv4::{AwsCredentials, SigV4Signer};
use inferlink_core::{ConfigValue, Result, Secret};

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
    }
}

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
        let pending = std::mem::take(&mut self.pending);
        if let Some((_, region)) = pending.region {
            self.region = Some(region);
        }
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
    /// `region`, with the credentials in effect. Errors
    /// ([`inferlink_core::ErrorKind::Config`] naming `AWS_ACCESS_KEY_ID`):
    /// no credentials anywhere.
    pub fn signer(&self, signing_name: &str, region: &str) -> Result<SigV4Signer> {
        let credentials = self.credentials_or_env().ok_or_else(|| {
            config_error(
                keys::ACCESS_KEY_ID,
                "no AWS credentials: the record has no AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY \
                 and neither has the process environment (or set sign: false)",
            )
        })?;
        Ok(SigV4Signer::new(credentials, region).with_signing_name(signing_name))
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
}
