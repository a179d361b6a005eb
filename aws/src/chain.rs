//! The AWS credential chain through the AWS SDK's own providers (feature
//! `chain`): [`ChainProvider`] fetches credentials from the source an
//! [`AwsAuthConfig`] names, and [`crate::CachedCredentials`] keeps them.
//!
//! | source | provider |
//! |---|---|
//! | `profile` | `aws_config::profile::ProfileFileCredentialsProvider` over the files the keys name |
//! | `web_identity` | `AssumeRoleWithWebIdentity` through `aws-sdk-sts`, the token file read at every fetch (tokens rotate) |
//! | `assume_role` | `aws_config::sts::AssumeRoleProvider` with external id, session name and length |
//! | `ecs` | `aws_config::ecs::EcsCredentialsProvider` (the agent's environment variables) |
//! | `imds` | `aws_config::imds::credentials::ImdsCredentialsProvider` (IMDSv2) |
//! | `default_chain` | `aws_config::default_provider::credentials::DefaultCredentialsChain` |
//!
//! The SDK providers are built at the first fetch (their builders are
//! async), then reused. None of them caches; the cache in front does.

use std::error::Error as StdError;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::ecs::EcsCredentialsProvider;
use aws_config::imds;
use aws_config::imds::credentials::ImdsCredentialsProvider;
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
use aws_sdk_sts::error::ProvideErrorMetadata;
use aws_types::region::Region;
use inferlink_core::kit::config_error;
use inferlink_core::transport::sigv4::{AwsCredentials, aws_error_class};
use inferlink_core::{Error, ErrorKind, Result};

use crate::cache::{FetchCredentials, FetchedCredentials};
use crate::config::{AwsAuthConfig, CredentialSource, keys};

/// The largest web identity token file read (OIDC tokens are a few KiB).
pub const MAX_TOKEN_FILE_BYTES: u64 = 64 * 1024;

/// The environment variables of EKS web identity (IRSA), read when the
/// record does not name the role or the token file.
pub mod env {
    /// The role to assume.
    pub const ROLE_ARN: &str = "AWS_ROLE_ARN";
    /// The OIDC token file.
    pub const WEB_IDENTITY_TOKEN_FILE: &str = "AWS_WEB_IDENTITY_TOKEN_FILE";
    /// The role session name.
    pub const ROLE_SESSION_NAME: &str = "AWS_ROLE_SESSION_NAME";
}

/// Everything a web identity fetch needs.
#[derive(Debug, Clone)]
struct WebIdentity {
    token_file: PathBuf,
    role_arn: String,
    session_name: String,
    duration: Option<Duration>,
}

/// The credentials of one source of the chain, fetched through the AWS
/// SDK's providers (see the module documentation). `Debug` shows the
/// source, never a credential or a token.
pub struct ChainProvider {
    config: AwsAuthConfig,
    source: CredentialSource,
    region: String,
    web_identity: Option<WebIdentity>,
    built: tokio::sync::OnceCell<Built>,
}

enum Built {
    Sdk(SharedCredentialsProvider),
    WebIdentity(aws_sdk_sts::Client),
}

impl fmt::Debug for ChainProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainProvider")
            .field("source", &self.source.as_str())
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl AwsAuthConfig {
    /// The uncached provider of the source in effect, for `region` (the
    /// region of STS calls). [`AwsAuthConfig::signer`] puts a
    /// [`crate::CachedCredentials`] in front of it; tests that drive expiry
    /// build that cache themselves with their own clock.
    ///
    /// Errors ([`ErrorKind::Config`] naming the key): web identity without a
    /// role ARN or token file (in the record or the environment).
    pub fn chain_provider(&self, region: &str) -> Result<ChainProvider> {
        let source = self.credential_source();
        let web_identity = if source == CredentialSource::WebIdentity {
            Some(self.web_identity()?)
        } else {
            None
        };
        Ok(ChainProvider {
            config: self.clone(),
            source,
            region: region.to_owned(),
            web_identity,
            built: tokio::sync::OnceCell::new(),
        })
    }

    fn web_identity(&self) -> Result<WebIdentity> {
        let from_env = |name: &str| {
            std::env::var(name)
                .ok()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let role_arn = self
            .role_arn
            .clone()
            .or_else(|| from_env(env::ROLE_ARN))
            .ok_or_else(|| {
                config_error(
                    keys::ROLE_ARN,
                    "is needed with aws_credential_source web_identity (or AWS_ROLE_ARN)",
                )
            })?;
        let token_file = self
            .web_identity_token_file
            .clone()
            .or_else(|| from_env(env::WEB_IDENTITY_TOKEN_FILE).map(PathBuf::from))
            .ok_or_else(|| {
                config_error(
                    keys::WEB_IDENTITY_TOKEN_FILE,
                    "is needed with aws_credential_source web_identity (or AWS_WEB_IDENTITY_TOKEN_FILE)",
                )
            })?;
        Ok(WebIdentity {
            token_file,
            role_arn,
            session_name: self
                .role_session_name
                .clone()
                .or_else(|| from_env(env::ROLE_SESSION_NAME))
                .unwrap_or_else(default_session_name),
            duration: self.role_duration,
        })
    }
}

fn default_session_name() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    format!("inferlink-{secs}")
}

impl ChainProvider {
    fn provider_config(&self) -> ProviderConfig {
        ProviderConfig::without_region().with_region(Some(Region::new(self.region.clone())))
    }

    fn profile_files(&self) -> EnvConfigFiles {
        let config = &self.config;
        let mut files = EnvConfigFiles::builder()
            .include_default_config_file(config.config_file.is_none())
            .include_default_credentials_file(config.shared_credentials_file.is_none());
        if let Some(path) = &config.config_file {
            files = files.with_file(EnvConfigFileKind::Config, path);
        }
        if let Some(path) = &config.shared_credentials_file {
            files = files.with_file(EnvConfigFileKind::Credentials, path);
        }
        files.build()
    }

    async fn default_chain(&self) -> DefaultCredentialsChain {
        let mut builder = DefaultCredentialsChain::builder()
            .configure(self.provider_config())
            .region(Region::new(self.region.clone()));
        if let Some(profile) = &self.config.profile {
            builder = builder.profile_name(profile);
        }
        builder.build().await
    }

    /// The SDK configuration STS clients are built from: this region, the
    /// record's STS endpoint if any, and `credentials` as the caller.
    async fn sts_config(
        &self,
        credentials: Option<SharedCredentialsProvider>,
    ) -> aws_types::SdkConfig {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(self.region.clone()));
        if let Some(url) = &self.config.sts_endpoint_url {
            loader = loader.endpoint_url(url);
        }
        loader = match credentials {
            Some(provider) => loader.credentials_provider(provider),
            None => loader.no_credentials(),
        };
        loader.load().await
    }

    async fn build(&self) -> Result<Built> {
        Ok(Built::Sdk(match self.source {
            CredentialSource::Static | CredentialSource::Environment => {
                return Err(Error::new(
                    ErrorKind::Internal,
                    "static and environment credentials are fixed, not fetched",
                ));
            }
            CredentialSource::Profile => {
                let mut builder = ProfileFileCredentialsProvider::builder()
                    .configure(&self.provider_config())
                    .profile_files(self.profile_files());
                if let Some(profile) = &self.config.profile {
                    builder = builder.profile_name(profile);
                }
                SharedCredentialsProvider::new(builder.build())
            }
            CredentialSource::WebIdentity => {
                let config = self.sts_config(None).await;
                return Ok(Built::WebIdentity(aws_sdk_sts::Client::new(&config)));
            }
            CredentialSource::AssumeRole => {
                let base = match &self.config.credentials {
                    Some(keys) => SharedCredentialsProvider::new(keys.to_sdk_credentials()),
                    None => SharedCredentialsProvider::new(self.default_chain().await),
                };
                let config = self.sts_config(Some(base)).await;
                let role_arn = self.config.role_arn.clone().unwrap_or_default();
                let mut builder = AssumeRoleProvider::builder(role_arn)
                    .configure(&config)
                    .session_name(
                        self.config
                            .role_session_name
                            .clone()
                            .unwrap_or_else(default_session_name),
                    );
                if let Some(id) = &self.config.external_id {
                    builder = builder.external_id(id);
                }
                if let Some(length) = self.config.role_duration {
                    builder = builder.session_length(length);
                }
                SharedCredentialsProvider::new(builder.build().await)
            }
            CredentialSource::Ecs => SharedCredentialsProvider::new(
                EcsCredentialsProvider::builder()
                    .configure(&self.provider_config())
                    .build(),
            ),
            CredentialSource::Imds => {
                let mut client = imds::Client::builder().configure(&self.provider_config());
                if let Some(url) = &self.config.imds_endpoint {
                    client = client
                        .endpoint(url)
                        .map_err(|_| config_error(keys::IMDS_ENDPOINT, "is not a usable URL"))?;
                }
                SharedCredentialsProvider::new(
                    ImdsCredentialsProvider::builder()
                        .configure(&self.provider_config())
                        .imds_client(client.build())
                        .build(),
                )
            }
            CredentialSource::DefaultChain => {
                SharedCredentialsProvider::new(self.default_chain().await)
            }
        }))
    }

    async fn fetch_web_identity(
        &self,
        sts: &aws_sdk_sts::Client,
        web: &WebIdentity,
    ) -> Result<FetchedCredentials> {
        let token = read_token_file(&web.token_file).await?;
        let mut call = sts
            .assume_role_with_web_identity()
            .role_arn(&web.role_arn)
            .role_session_name(&web.session_name)
            .web_identity_token(token);
        if let Some(length) = web.duration {
            call = call.duration_seconds(i32::try_from(length.as_secs()).unwrap_or(i32::MAX));
        }
        let answer = call.send().await.map_err(|e| {
            let kind = e
                .code()
                .and_then(aws_error_class)
                .map(|class| class.kind)
                .unwrap_or(ErrorKind::Unavailable);
            let code = e.code().map(str::to_owned);
            let mut error = Error::new(
                kind,
                format!("AssumeRoleWithWebIdentity failed: {}", error_text(&e)),
            );
            if let Some(code) = code {
                error = error.with_context("aws_error_code", code);
            }
            error
        })?;
        let credentials = answer.credentials().ok_or_else(|| {
            Error::new(
                ErrorKind::Protocol,
                "AssumeRoleWithWebIdentity answered without credentials",
            )
        })?;
        let expires = SystemTime::try_from(*credentials.expiration()).map_err(|_| {
            Error::new(
                ErrorKind::Protocol,
                "AssumeRoleWithWebIdentity answered an unusable expiration time",
            )
        })?;
        Ok(FetchedCredentials {
            credentials: AwsCredentials::new(
                credentials.access_key_id(),
                credentials.secret_access_key(),
            )
            .with_session_token(credentials.session_token()),
            expires: Some(expires),
        })
    }
}

/// Reads a web identity token file: at most [`MAX_TOKEN_FILE_BYTES`],
/// UTF-8, not empty. Errors never show the token.
async fn read_token_file(path: &Path) -> Result<String> {
    let fail = |kind: ErrorKind, why: &str| {
        config_error(keys::WEB_IDENTITY_TOKEN_FILE, why)
            .with_kind(kind)
            .with_context("file", path.display().to_string())
    };
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|_| fail(ErrorKind::Config, "cannot be read"))?;
    if meta.len() > MAX_TOKEN_FILE_BYTES {
        return Err(fail(
            ErrorKind::Config,
            "is larger than 64 KiB: not a web identity token",
        ));
    }
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|_| fail(ErrorKind::Config, "cannot be read"))?;
    let text =
        String::from_utf8(bytes).map_err(|_| fail(ErrorKind::Config, "is not UTF-8 text"))?;
    let token = text.trim();
    if token.is_empty() || token.len() as u64 > MAX_TOKEN_FILE_BYTES {
        return Err(fail(ErrorKind::Config, "holds no token"));
    }
    Ok(token.to_owned())
}

/// The text of an error and its sources, joined by `: `, at most 600 bytes
/// (the SDK's errors name fields and codes, not credential values).
fn error_text(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let part = inner.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = inner.source();
    }
    if text.len() > 600 {
        let mut cut = 600;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// An SDK provider's error as a typed inferlink error.
fn credentials_error(source: CredentialSource, error: CredentialsError) -> Error {
    let text = error_text(&error);
    let kind = match &error {
        CredentialsError::CredentialsNotLoaded(_) => ErrorKind::Unauthenticated,
        CredentialsError::ProviderTimedOut(_) => ErrorKind::Timeout,
        CredentialsError::InvalidConfiguration(_) => ErrorKind::Config,
        CredentialsError::ProviderError(_) => provider_error_kind(&text),
        _ => ErrorKind::Unavailable,
    };
    Error::new(
        kind,
        format!("AWS credentials from `{source}` could not be fetched: {text}"),
    )
    .with_context("aws_credential_source", source.as_str())
}

/// The kind of a provider error from its text: an AWS error code where one
/// shows, an unreadable answer, else unavailable.
fn provider_error_kind(text: &str) -> ErrorKind {
    let code_kind = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| word.len() > 5)
        .find_map(|word| aws_error_class(word).map(|class| class.kind));
    if let Some(kind) = code_kind {
        return kind;
    }
    let lower = text.to_ascii_lowercase();
    if ["json", "parse", "invalid", "unexpected", "missing field"]
        .iter()
        .any(|w| lower.contains(w))
    {
        ErrorKind::Protocol
    } else {
        ErrorKind::Unavailable
    }
}

#[async_trait]
impl FetchCredentials for ChainProvider {
    async fn fetch(&self) -> Result<FetchedCredentials> {
        let built = self.built.get_or_try_init(|| self.build()).await?;
        match built {
            Built::WebIdentity(sts) => {
                let web = self.web_identity.as_ref().ok_or_else(|| {
                    Error::new(ErrorKind::Internal, "web identity settings are missing")
                })?;
                self.fetch_web_identity(sts, web).await
            }
            Built::Sdk(provider) => {
                let credentials = provider
                    .provide_credentials()
                    .await
                    .map_err(|e| credentials_error(self.source, e))?;
                let mut keys = AwsCredentials::new(
                    credentials.access_key_id(),
                    credentials.secret_access_key(),
                );
                if let Some(token) = credentials.session_token() {
                    keys = keys.with_session_token(token);
                }
                Ok(FetchedCredentials {
                    credentials: keys,
                    expires: credentials.expiry(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_errors_get_kinds() {
        assert_eq!(
            provider_error_kind("service error: AccessDenied: not allowed"),
            ErrorKind::PermissionDenied
        );
        assert_eq!(
            provider_error_kind("ExpiredTokenException: token expired"),
            ErrorKind::Unauthenticated
        );
        assert_eq!(
            provider_error_kind("invalid JSON credentials: unexpected token at 0"),
            ErrorKind::Protocol
        );
        assert_eq!(
            provider_error_kind("connection refused"),
            ErrorKind::Unavailable
        );
    }
}
