//! TLS material from configuration: trusted CAs, a client identity for
//! mutual TLS, and the explicit opt-in to skip verification.
//!
//! Material is kept as PEM text so that both the HTTP client here and a gRPC
//! channel (tonic's `Certificate::from_pem` / `Identity::from_pem`) can use it.
//! Values may be PEM text or base64 of PEM (the kubeconfig style of seed
//! 004's Seldon record).

use std::fmt;

use base64::Engine as _;
use secrecy::zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};
use crate::secret::Secret;

use super::config::{config_error, keys};

/// TLS settings of a transport.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsConfig {
    /// Trusted CA certificates (PEM). When set, *only* these roots are
    /// trusted (like `curl --cacert`); otherwise the platform's roots.
    /// Keys `tls_ca_pem`, `tls_ca_file`, alias `CLUSTER_CERT_AUTH`.
    pub ca_pem: Option<String>,
    /// Client certificate chain (PEM) for mutual TLS. Keys
    /// `tls_client_cert_pem`, `tls_client_cert_file`, alias `CLIENT_CERT`.
    pub client_cert_pem: Option<String>,
    /// Client private key (PEM), a secret. Keys `tls_client_key_pem`,
    /// `tls_client_key_file`, alias `CLIENT_KEY`.
    pub client_key_pem: Option<Secret>,
    /// Accept any server certificate. Dangerous; only an explicit
    /// `tls_insecure_skip_verify: true` (alias `INSECURE`) turns it on.
    pub insecure_skip_verify: bool,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let size = |p: &Option<String>| p.as_ref().map(|p| format!("<{} bytes of PEM>", p.len()));
        f.debug_struct("TlsConfig")
            .field("ca_pem", &size(&self.ca_pem))
            .field("client_cert_pem", &size(&self.client_cert_pem))
            .field("client_key_pem", &self.client_key_pem)
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .finish()
    }
}

impl TlsConfig {
    /// The trusted CA certificates as PEM bytes (for `tonic::transport::Certificate::from_pem`).
    pub fn ca_pem_bytes(&self) -> Option<&[u8]> {
        self.ca_pem.as_deref().map(str::as_bytes)
    }

    /// The client certificate chain and private key as PEM bytes (for
    /// `tonic::transport::Identity::from_pem(cert, key)`). Reveals the key:
    /// hand it straight to the TLS library.
    pub fn client_identity_pem(&self) -> Option<(&[u8], &[u8])> {
        match (&self.client_cert_pem, &self.client_key_pem) {
            (Some(c), Some(k)) => Some((c.as_bytes(), k.expose().as_bytes())),
            _ => None,
        }
    }

    /// Checks that the material parses and that certificate and key come together.
    pub fn validate(&self) -> Result<()> {
        if let Some(ca) = &self.ca_pem {
            ca_certificates(ca)?;
        }
        match (&self.client_cert_pem, &self.client_key_pem) {
            (Some(_), None) => Err(config_error(
                keys::TLS_CLIENT_KEY_PEM,
                format!("is required with `{}`", keys::TLS_CLIENT_CERT_PEM),
            )),
            (None, Some(_)) => Err(config_error(
                keys::TLS_CLIENT_CERT_PEM,
                format!("is required with `{}`", keys::TLS_CLIENT_KEY_PEM),
            )),
            (Some(cert), Some(key)) => identity(cert, key).map(|_| ()),
            (None, None) => Ok(()),
        }
    }

    /// Applies the settings to a reqwest client builder.
    pub(crate) fn apply(
        &self,
        mut builder: reqwest::ClientBuilder,
    ) -> Result<reqwest::ClientBuilder> {
        if let Some(ca) = &self.ca_pem {
            builder = builder.tls_certs_only(ca_certificates(ca)?);
        }
        if let (Some(cert), Some(key)) = (&self.client_cert_pem, &self.client_key_pem) {
            builder = builder.identity(identity(cert, key)?);
        }
        if self.insecure_skip_verify {
            tracing::warn!(
                "TLS certificate verification is switched off (tls_insecure_skip_verify)"
            );
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        Ok(builder)
    }
}

fn ca_certificates(pem: &str) -> Result<Vec<reqwest::Certificate>> {
    let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
        .map_err(|_| config_error(keys::TLS_CA_PEM, "is not a valid PEM certificate bundle"))?;
    if certs.is_empty() {
        return Err(config_error(
            keys::TLS_CA_PEM,
            "contains no PEM certificate (-----BEGIN CERTIFICATE-----)",
        ));
    }
    Ok(certs)
}

fn identity(cert: &str, key: &Secret) -> Result<reqwest::Identity> {
    if !cert.contains("-----BEGIN CERTIFICATE-----") {
        return Err(config_error(
            keys::TLS_CLIENT_CERT_PEM,
            "contains no PEM certificate (-----BEGIN CERTIFICATE-----)",
        ));
    }
    if !key.expose().contains("PRIVATE KEY-----") {
        return Err(config_error(
            keys::TLS_CLIENT_KEY_PEM,
            "contains no PEM private key (-----BEGIN … PRIVATE KEY-----)",
        ));
    }
    let mut both = Zeroizing::new(Vec::with_capacity(cert.len() + key.expose().len() + 1));
    both.extend_from_slice(key.expose().as_bytes());
    both.push(b'\n');
    both.extend_from_slice(cert.as_bytes());
    reqwest::Identity::from_pem(&both).map_err(|_| {
        config_error(
            keys::TLS_CLIENT_KEY_PEM,
            format!(
                "the client certificate and key are not a usable PEM pair (see `{}`)",
                keys::TLS_CLIENT_CERT_PEM
            ),
        )
    })
}

/// Decodes a PEM value given as PEM text or as base64 of PEM text.
///
/// The error text never quotes the value (it may be a private key).
pub(crate) fn decode_pem(value: &str) -> std::result::Result<Secret, String> {
    let trimmed = value.trim();
    if trimmed.starts_with("-----BEGIN ") {
        return Ok(Secret::new(trimmed));
    }
    let compact: Zeroizing<String> =
        Zeroizing::new(trimmed.chars().filter(|c| !c.is_whitespace()).collect());
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map(Zeroizing::new)
        .map_err(|_| "expected PEM text (-----BEGIN …) or base64-encoded PEM".to_owned())?;
    match std::str::from_utf8(&decoded) {
        Ok(text) if text.trim_start().starts_with("-----BEGIN ") => Ok(Secret::new(text.trim())),
        _ => Err("is base64, but does not decode to PEM text (-----BEGIN …)".to_owned()),
    }
}

/// What a TLS failure during a call means for the caller, if the error chain holds one.
pub(crate) fn classify_tls(err: &(dyn std::error::Error + 'static), host: &str) -> Option<Error> {
    let tls = super::error_chain(err).find_map(|e| e.downcast_ref::<rustls::Error>())?;
    Some(match tls {
        rustls::Error::InvalidCertificate(why) => Error::new(
            ErrorKind::Config,
            format!(
                "TLS: the server certificate of {host} was rejected ({why:?}); trust its CA with \
                 `{}` or `{}`",
                keys::TLS_CA_PEM,
                keys::TLS_CA_FILE
            ),
        ),
        rustls::Error::AlertReceived(alert) => Error::new(
            ErrorKind::Unauthenticated,
            format!(
                "TLS: {host} refused the connection with alert {alert:?} (a missing or untrusted \
                 client certificate?)"
            ),
        ),
        other => Error::new(
            ErrorKind::Protocol,
            format!("TLS error with {host}: {other}"),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_or_base64_pem() {
        let pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert_eq!(decode_pem(pem).unwrap().expose(), pem.trim());
        let b64 = base64::engine::general_purpose::STANDARD.encode(pem);
        assert_eq!(decode_pem(&b64).unwrap().expose(), pem.trim());
        // Seed 004's placeholders are truncated: neither PEM nor base64.
        let seed = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FU[...]RS0tLS0tCk1JSUM4akNDQNBVEUtLS0tLQo=";
        let why = decode_pem(seed).unwrap_err();
        assert!(!why.contains("LS0t"));
        assert!(decode_pem("aGVsbG8=").is_err());
    }

    #[test]
    fn debug_hides_the_key() {
        let t = TlsConfig {
            client_key_pem: Some(Secret::new("-----BEGIN PRIVATE KEY-----planted")),
            ..Default::default()
        };
        assert!(!format!("{t:?}").contains("planted"));
    }
}
