//! AWS Signature Version 4 for every request, through the `aws-sigv4` crate.
//!
//! [`SigV4Signer`] implements the shared transport's
//! [`RequestSigner`] hook, so each
//! attempt (retries included) is signed afresh with the exact headers and
//! body that go on the wire. The canonical request, string to sign, signing
//! key and signature are all `aws-sigv4`'s; this module only hands it the
//! request and applies the headers it returns (`X-Amz-Date`,
//! `Authorization`, and `X-Amz-Security-Token` with temporary credentials),
//! marking the secret ones sensitive.
//!
//! Credentials are fixed ([`SigV4Signer::new`]) or asked of a
//! [`CredentialsProvider`] before each attempt ([`SigV4Signer::with_provider`];
//! `inferlink-aws` builds cached providers from the AWS credential chain).

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use crate::error::{Error, ErrorKind, Result};
use crate::secret::Secret;
use crate::transport::{
    ErrorClass, ErrorResponse, HeaderMap, HeaderName, HeaderValue, Method, RequestSigner,
    ResponseClassifier, SigningRequest, Url,
};
use async_trait::async_trait;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SessionTokenMode, SignableBody, SignableRequest,
    SigningSettings, UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

/// The SigV4 signing name of the SageMaker Runtime (its host is
/// `runtime.sagemaker.<region>.amazonaws.com`, but it signs as `sagemaker`).
pub const SIGNING_NAME: &str = "sagemaker";

/// The environment variables read when a record carries no credentials.
pub mod env {
    /// The access key id.
    pub const ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
    /// The secret access key.
    pub const SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
    /// The session token of temporary credentials.
    pub const SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";
}

/// An AWS access key pair and, for temporary credentials, a session token.
///
/// Every part is held as a [`Secret`]: `Debug` shows `<hidden>`, and
/// nothing here appears in errors or logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    access_key_id: Secret,
    secret_access_key: Secret,
    session_token: Option<Secret>,
}

impl AwsCredentials {
    /// A long-term key pair.
    pub fn new(access_key_id: impl Into<Secret>, secret_access_key: impl Into<Secret>) -> Self {
        AwsCredentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
        }
    }

    /// Adds the session token of temporary (STS) credentials.
    pub fn with_session_token(mut self, token: impl Into<Secret>) -> Self {
        self.session_token = Some(token.into());
        self
    }

    /// The credentials in the process environment (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, optional `AWS_SESSION_TOKEN`), if both keys
    /// are set and not empty.
    pub fn from_env() -> Option<Self> {
        let get = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let id = get(env::ACCESS_KEY_ID)?;
        let secret = get(env::SECRET_ACCESS_KEY)?;
        let mut creds = AwsCredentials::new(id.trim(), secret.trim());
        if let Some(token) = get(env::SESSION_TOKEN) {
            creds = creds.with_session_token(token.trim());
        }
        Some(creds)
    }

    /// The access key id (not a secret in AWS's model, but kept out of
    /// `Debug` like the rest).
    pub fn access_key_id(&self) -> &str {
        self.access_key_id.expose()
    }

    /// True when a session token is present.
    pub fn has_session_token(&self) -> bool {
        self.session_token.is_some()
    }

    /// The same credentials as the AWS SDK's type, for its providers (an
    /// `AssumeRole` caller, say). Its `Debug` shows the access key id only.
    pub fn to_sdk_credentials(&self) -> Credentials {
        Credentials::new(
            self.access_key_id.expose(),
            self.secret_access_key.expose(),
            self.session_token.as_ref().map(|t| t.expose().to_owned()),
            None,
            "inferlink",
        )
    }

    fn identity(&self) -> Identity {
        self.to_sdk_credentials().into()
    }
}

/// Where a signer's credentials come from when they are not fixed: asked
/// before every signature, so a provider caches and refreshes them itself.
#[async_trait]
pub trait CredentialsProvider: Send + Sync + fmt::Debug {
    /// The credentials to sign with now. Errors are typed
    /// (`Unauthenticated`, `Config`, `Unavailable`, …) and never show a
    /// credential.
    async fn credentials(&self) -> Result<AwsCredentials>;
}

/// The credentials of a [`SigV4Signer`].
#[derive(Debug, Clone)]
enum CredentialSource {
    Fixed(AwsCredentials),
    Provider(Arc<dyn CredentialsProvider>),
}

/// How requests are signed. The defaults are what the SageMaker Runtime
/// (and every AWS service except S3) expects; the other settings exist for
/// the official SigV4 test suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SigningOptions {
    /// Percent-encode the (already encoded) URI path a second time (true for
    /// every service but S3).
    pub double_encode_path: bool,
    /// Normalize the path (`.`/`..` segments, repeated `/`) before signing.
    pub normalize_path: bool,
    /// Send and sign `x-amz-content-sha256` (S3 requires it; SageMaker does not).
    pub payload_hash_header: bool,
    /// Include `x-amz-security-token` in the signature (true for SageMaker);
    /// false adds it after signing.
    pub sign_session_token: bool,
}

impl Default for SigningOptions {
    fn default() -> Self {
        SigningOptions {
            double_encode_path: true,
            normalize_path: true,
            payload_hash_header: false,
            sign_session_token: true,
        }
    }
}

impl SigningOptions {
    fn settings(&self) -> SigningSettings {
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = if self.double_encode_path {
            PercentEncodingMode::Double
        } else {
            PercentEncodingMode::Single
        };
        settings.uri_path_normalization_mode = if self.normalize_path {
            UriPathNormalizationMode::Enabled
        } else {
            UriPathNormalizationMode::Disabled
        };
        settings.payload_checksum_kind = if self.payload_hash_header {
            PayloadChecksumKind::XAmzSha256
        } else {
            PayloadChecksumKind::NoHeader
        };
        settings.session_token_mode = if self.sign_session_token {
            SessionTokenMode::Include
        } else {
            SessionTokenMode::Exclude
        };
        settings
    }
}

/// Signs requests with SigV4 for one region and signing name.
///
/// ```
/// use inferlink_core::transport::sigv4::{AwsCredentials, SigV4Signer};
/// use inferlink_core::transport::{HeaderMap, Method, Url};
///
/// let signer = SigV4Signer::new(
///     AwsCredentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
///     "us-east-1",
/// )
/// .with_fixed_time(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_440_938_160));
/// let url = Url::parse("https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/my-endpoint/invocations").unwrap();
/// let mut headers = HeaderMap::new();
/// headers.insert("content-type", "application/json".parse().unwrap());
/// let signature = signer
///     .sign_parts(&Method::POST, &url, &mut headers, br#"{"instances": [[1.0, 2.0]]}"#)
///     .unwrap();
/// // The value botocore's SigV4Auth computes for the same request (protocols.md §7.5).
/// assert_eq!(signature, "5f92705f6a7cfe3b48be441c1dc23873988ad66ff17f3ba464ccbc8900f19b6f");
/// assert_eq!(headers["x-amz-date"], "20150830T123600Z");
/// ```
#[derive(Debug, Clone)]
pub struct SigV4Signer {
    credentials: CredentialSource,
    region: String,
    name: String,
    options: SigningOptions,
    /// The signing time when fixed ([`SigV4Signer::with_fixed_time`]); the clock otherwise.
    fixed_time: Option<SystemTime>,
}

impl SigV4Signer {
    /// A signer for the SageMaker Runtime ([`SIGNING_NAME`]) in `region`.
    pub fn new(credentials: AwsCredentials, region: impl Into<String>) -> Self {
        SigV4Signer::from_source(CredentialSource::Fixed(credentials), region.into())
    }

    /// A signer for the SageMaker Runtime ([`SIGNING_NAME`]) in `region`
    /// that asks `provider` for credentials before every attempt.
    pub fn with_provider(
        provider: Arc<dyn CredentialsProvider>,
        region: impl Into<String>,
    ) -> Self {
        SigV4Signer::from_source(CredentialSource::Provider(provider), region.into())
    }

    fn from_source(credentials: CredentialSource, region: String) -> Self {
        SigV4Signer {
            credentials,
            region,
            name: SIGNING_NAME.to_owned(),
            options: SigningOptions::default(),
            fixed_time: None,
        }
    }

    /// Signs for another service's signing name (the test suite uses `service`).
    pub fn with_signing_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Replaces the signing options.
    pub fn with_options(mut self, options: SigningOptions) -> Self {
        self.options = options;
        self
    }

    /// Signs as of a fixed time instead of the clock (tests, reproducible vectors).
    pub fn with_fixed_time(mut self, time: SystemTime) -> Self {
        self.fixed_time = Some(time);
        self
    }

    /// The region in the credential scope.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The signing name in the credential scope (`sagemaker`, `bedrock`).
    pub fn signing_name(&self) -> &str {
        &self.name
    }

    /// The fixed credentials, if this signer has them (`None` when they
    /// come from a [`CredentialsProvider`]).
    pub fn credentials(&self) -> Option<&AwsCredentials> {
        match &self.credentials {
            CredentialSource::Fixed(credentials) => Some(credentials),
            CredentialSource::Provider(_) => None,
        }
    }

    /// The credentials to sign with now: the fixed ones, or the provider's.
    pub async fn current_credentials(&self) -> Result<AwsCredentials> {
        match &self.credentials {
            CredentialSource::Fixed(credentials) => Ok(credentials.clone()),
            CredentialSource::Provider(provider) => provider.credentials().await,
        }
    }

    /// Signs one request: `headers` are the headers that will be sent (a
    /// `host` header, if present, is signed as given; otherwise the URL's
    /// host and non-default port), `body` the exact body bytes. Adds
    /// `x-amz-date`, `authorization` and, with a session token,
    /// `x-amz-security-token` (and `x-amz-content-sha256` when
    /// [`SigningOptions::payload_hash_header`] is set) to `headers`, and
    /// returns the hex signature.
    ///
    /// The transport calls this through [`RequestSigner`] for every attempt.
    /// Errors: [`ErrorKind::InvalidInput`] for a header value that is not
    /// visible ASCII or a URL `aws-sigv4` cannot parse;
    /// [`ErrorKind::Config`] for a signer whose credentials come from a
    /// provider (sign those through [`RequestSigner::sign`], or
    /// [`SigV4Signer::sign_parts_with`]).
    pub fn sign_parts(
        &self,
        method: &Method,
        url: &Url,
        headers: &mut HeaderMap,
        body: &[u8],
    ) -> Result<String> {
        let CredentialSource::Fixed(credentials) = &self.credentials else {
            return Err(Error::new(
                ErrorKind::Config,
                "this signer's credentials come from a provider: sign asynchronously",
            ));
        };
        self.sign_parts_with(credentials, method, url, headers, body)
    }

    /// [`SigV4Signer::sign_parts`] with the given `credentials` instead of
    /// the signer's own.
    pub fn sign_parts_with(
        &self,
        credentials: &AwsCredentials,
        method: &Method,
        url: &Url,
        headers: &mut HeaderMap,
        body: &[u8],
    ) -> Result<String> {
        let fail = |why: String| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("cannot sign the request: {why}"),
            )
        };
        for name in ["authorization", "x-amz-date", "x-amz-security-token"] {
            headers.remove(name);
        }
        let mut pairs = Vec::with_capacity(headers.len());
        for (name, value) in headers.iter() {
            let value = value
                .to_str()
                .map_err(|_| fail(format!("header `{name}` is not visible ASCII")))?;
            pairs.push((name.as_str(), value));
        }
        let identity = credentials.identity();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(&self.name)
            .time(self.fixed_time.unwrap_or_else(SystemTime::now))
            .settings(self.options.settings())
            .build()
            .map_err(|e| fail(e.to_string()))?
            .into();
        let signable = SignableRequest::new(
            method.as_str(),
            url.as_str(),
            pairs.into_iter(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| fail(e.to_string()))?;
        let (instructions, signature) = sign(signable, &params)
            .map_err(|e| fail(e.to_string()))?
            .into_parts();
        let (signed, _query) = instructions.into_parts();
        for header in signed {
            let name = HeaderName::from_static(header.name());
            let mut value = HeaderValue::from_str(header.value()).map_err(|_| {
                fail(format!(
                    "aws-sigv4 produced a bad `{}` value",
                    header.name()
                ))
            })?;
            value.set_sensitive(header.sensitive() || header.name() == "authorization");
            headers.insert(name, value);
        }
        Ok(signature)
    }
}

#[async_trait]
impl RequestSigner for SigV4Signer {
    async fn sign(&self, request: &mut SigningRequest<'_>) -> Result<()> {
        let credentials = self.current_credentials().await?;
        self.sign_parts_with(
            &credentials,
            request.method,
            request.url,
            request.headers,
            request.body,
        )
        .map(|_| ())
    }
}

/// Error types of AWS services that mean the credentials or the signature
/// were refused.
pub const AUTH_CODES: &[&str] = &[
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "IncompleteSignature",
    "IncompleteSignatureException",
    "SignatureDoesNotMatch",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "MissingAuthenticationToken",
    "MissingAuthenticationTokenException",
    "InvalidAccessKeyId",
    "AuthFailure",
];

/// Error types of AWS services that mean the caller was throttled.
pub const THROTTLING_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "ProvisionedThroughputExceededException",
    "SlowDown",
];

/// The class of an error type every AWS service uses (as the transport
/// reads it: `x-amzn-ErrorType`, `__type`, `code`, or an XML `Code`;
/// `prefix#Name` and `Name:detail` forms are cut to the name): refused
/// credentials or signature (`Unauthenticated`), `AccessDenied…`
/// (`PermissionDenied`), throttling (`RateLimited`, retried),
/// `ServiceUnavailable…` (`Unavailable`, retried), `InternalFailure` /
/// `InternalServerError` / `InternalServerException` / `BadGatewayException`
/// (`Unavailable`, retried when idempotent), `ServiceQuotaExceededException`
/// (`RateLimited`, not retried: a quota is not a burst), `ConflictException`
/// (`Conflict`), `Validation…` (`InvalidInput`), `ResourceNotFoundException`
/// (`NotFound`).
/// `None` for another type (a service's own).
pub fn aws_error_class(code: &str) -> Option<ErrorClass> {
    let code = code.rsplit('#').next().unwrap_or(code);
    let code = code.split(':').next().unwrap_or(code).trim();
    Some(match code {
        "AccessDeniedException" | "AccessDenied" => ErrorClass::fatal(ErrorKind::PermissionDenied),
        "ServiceUnavailable" | "ServiceUnavailableException" => {
            ErrorClass::rejected(ErrorKind::Unavailable)
        }
        "InternalFailure"
        | "InternalServerError"
        | "InternalServerException"
        | "BadGatewayException" => ErrorClass::retry_if_idempotent(ErrorKind::Unavailable),
        "ServiceQuotaExceededException" => ErrorClass::fatal(ErrorKind::RateLimited),
        "ConflictException" => ErrorClass::fatal(ErrorKind::Conflict),
        "ValidationError" | "ValidationException" => ErrorClass::fatal(ErrorKind::InvalidInput),
        "ResourceNotFoundException" => ErrorClass::fatal(ErrorKind::NotFound),
        c if THROTTLING_CODES.contains(&c) => ErrorClass::rejected(ErrorKind::RateLimited),
        c if AUTH_CODES.contains(&c) => ErrorClass::fatal(ErrorKind::Unauthenticated),
        _ => return None,
    })
}

/// A response classifier with [`aws_error_class`], for a connector that
/// signs with SigV4 and knows no other error types of its service.
pub fn aws_classifier() -> std::sync::Arc<dyn ResponseClassifier> {
    std::sync::Arc::new(|response: &ErrorResponse<'_>| {
        aws_error_class(response.vendor?.code.as_deref()?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_vector_time() -> SystemTime {
        // 2015-08-30T12:36:00Z, the time of the AWS test suite.
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_440_938_160)
    }

    fn example() -> AwsCredentials {
        AwsCredentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    }

    #[test]
    fn sagemaker_vector_with_session_token() {
        // protocols.md §7.5, cross-checked with botocore's SigV4Auth.
        let signer = SigV4Signer::new(
            example().with_session_token("SESSIONTOKENEXAMPLE"),
            "us-east-1",
        )
        .with_fixed_time(at_vector_time());
        let url = Url::parse(
            "https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/my-endpoint/invocations",
        )
        .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("content-type", "application/json".parse().unwrap());
        let sig = signer
            .sign_parts(
                &Method::POST,
                &url,
                &mut headers,
                br#"{"instances": [[1.0, 2.0]]}"#,
            )
            .unwrap();
        assert_eq!(
            sig,
            "bed7570fdd22127563ccce7c4625a1857c8fe28c81c7bfa3b2f6a0d3f38eaf2b"
        );
        let auth = headers["authorization"].to_str().unwrap();
        assert!(auth.contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token"));
        assert!(headers["authorization"].is_sensitive());
        assert!(headers["x-amz-security-token"].is_sensitive());
        assert_eq!(headers["x-amz-security-token"], "SESSIONTOKENEXAMPLE");
    }

    #[test]
    fn resigning_replaces_the_old_signature() {
        let signer = SigV4Signer::new(example(), "eu-west-1");
        let url = Url::parse("http://127.0.0.1:9/endpoints/e/invocations").unwrap();
        let mut headers = HeaderMap::new();
        signer
            .sign_parts(&Method::POST, &url, &mut headers, b"a")
            .unwrap();
        signer
            .sign_parts(&Method::POST, &url, &mut headers, b"a")
            .unwrap();
        assert_eq!(headers.get_all("authorization").iter().count(), 1);
        assert_eq!(headers.get_all("x-amz-date").iter().count(), 1);
        let auth = headers["authorization"].to_str().unwrap();
        assert!(auth.contains("/eu-west-1/sagemaker/aws4_request"), "{auth}");
    }

    #[test]
    fn debug_hides_every_credential() {
        let signer = SigV4Signer::new(
            AwsCredentials::new("AKIAPLANTED", "secret-planted").with_session_token("tok-planted"),
            "us-east-1",
        );
        let shown = format!("{signer:?}");
        assert!(!shown.contains("planted"), "{shown}");
    }
}
