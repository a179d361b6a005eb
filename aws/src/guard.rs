//! The HTTP client every AWS SDK provider of the chain talks through: the
//! SDK's own (hyper, rustls with aws-lc-rs), wrapped so that
//!
//! * a request goes only to a host the [`crate::endpoint`] rule allows for
//!   credential traffic: loopback, the instance metadata and container
//!   credential addresses (`169.254.169.254`, `169.254.170.2`,
//!   `169.254.170.23`, `fd00:ec2::254`, `fd00:ec2::23`, over http), or an
//!   AWS host over https (wherever the endpoint came from: the record, a
//!   profile file, the environment);
//! * an answer is read to at most [`MAX_ANSWER_BYTES`] (a credentials
//!   document or an STS answer is a few KiB); a longer one is an error,
//!   never buffered whole.

use std::fmt;

use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use http_body_util::{BodyExt, Limited};

use crate::endpoint::{AWS_HOST_SUFFIXES, IMDS_ADDRESSES, is_loopback_host};

/// The longest answer a credential endpoint may give (bytes).
pub const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// The container credential addresses of ECS and EKS Pod Identity.
pub const CONTAINER_ADDRESSES: [&str; 3] = ["169.254.170.2", "169.254.170.23", "fd00:ec2::23"];

/// True when credential traffic may go to `uri` (see the module documentation).
pub fn allowed_uri(uri: &str) -> bool {
    let Ok(url) = url::Url::parse(uri) else {
        return false;
    };
    let host = match url.host() {
        Some(url::Host::Domain(name)) => name.to_ascii_lowercase(),
        Some(url::Host::Ipv4(address)) => address.to_string(),
        Some(url::Host::Ipv6(address)) => address.to_string(),
        None => return false,
    };
    match url.scheme() {
        "http" => {
            is_loopback_host(&host)
                || IMDS_ADDRESSES.contains(&host.as_str())
                || CONTAINER_ADDRESSES.contains(&host.as_str())
        }
        "https" => is_loopback_host(&host) || AWS_HOST_SUFFIXES.iter().any(|s| host.ends_with(s)),
        _ => false,
    }
}

/// The guarded client (see the module documentation).
pub fn guarded_client() -> SharedHttpClient {
    let inner = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .build_https();
    SharedHttpClient::new(GuardedClient { inner })
}

#[derive(Debug)]
struct GuardedClient {
    inner: SharedHttpClient,
}

impl HttpClient for GuardedClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(GuardedConnector {
            inner: self.inner.http_connector(settings, components),
        })
    }
}

#[derive(Debug)]
struct GuardedConnector {
    inner: SharedHttpConnector,
}

/// Why a request or an answer was refused (no URL query, no body).
#[derive(Debug)]
struct Refused(String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

impl HttpConnector for GuardedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        if !allowed_uri(request.uri()) {
            let host = url::Url::parse(request.uri())
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_default();
            let why = format!(
                "credential requests go only to loopback, AWS's metadata addresses or https AWS hosts, not `{}`",
                host.escape_debug()
            );
            return HttpConnectorFuture::ready(Err(ConnectorError::user(Box::new(Refused(why)))));
        }
        let answer = self.inner.call(request);
        HttpConnectorFuture::new(async move {
            let mut response = answer.await?;
            let body = response.take_body();
            let collected = Limited::new(body, MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|_| {
                    let why = format!(
                        "the credential endpoint's answer is longer than {MAX_ANSWER_BYTES} bytes or broken"
                    );
                    ConnectorError::other(Box::new(Refused(why)), None)
                })?;
            *response.body_mut() = SdkBody::from(collected.to_bytes());
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_traffic_stays_with_loopback_metadata_and_aws() {
        for uri in [
            "http://127.0.0.1:8080/latest/api/token",
            "http://169.254.169.254/latest/api/token",
            "http://[fd00:ec2::254]/latest/api/token",
            "http://169.254.170.2/v2/credentials/x",
            "https://sts.us-east-1.amazonaws.com/",
            "https://sts.amazonaws.com.cn/",
        ] {
            assert!(allowed_uri(uri), "{uri}");
        }
        for uri in [
            "http://sts.us-east-1.amazonaws.com/",
            "https://evil.example/",
            "http://10.0.0.1/",
            "https://169.254.169.254.evil.example/",
            "file:///etc/passwd",
        ] {
            assert!(!allowed_uri(uri), "{uri}");
        }
    }
}
