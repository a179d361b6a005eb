//! TLS material from configuration: trusted CAs, a client identity for
//! mutual TLS, and the explicit opt-in to skip verification.
//!
//! Material is kept as PEM text so that both the HTTP client here and a gRPC
//! channel (tonic's `Certificate::from_pem` / `Identity::from_pem`) can use it.
//! Values may be PEM text or base64 of PEM (the kubeconfig style of seed
//! 004's Seldon record).
//!
//! The `*_file` keys read a file only inside a directory the host allows
//! ([`TransportConfig::allowed_file_dirs`](super::TransportConfig::allowed_file_dirs)),
//! when the configuration is read: the path is resolved (symlinks
//! followed), the resolved path must lie inside an allowed directory and be
//! a regular file of at most [`PEM_FILE_MAX_BYTES`]; it is opened
//! non-blocking, checked again through the open handle, and read with that
//! bound. A FIFO, device, socket or directory is refused before any read,
//! so the only blocking work left on the calling (possibly async) thread is
//! a bounded read of one small regular file.

use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};

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

/// Largest file a `*_file` key may name: 1 MiB (a CA bundle of a few
/// hundred certificates fits).
pub const PEM_FILE_MAX_BYTES: u64 = 1024 * 1024;

/// Reads the PEM file a `*_file` key names, under the host's rules (see the
/// module docs). Errors are [`ErrorKind::Config`] naming `key`; `shown` is
/// how the path may be quoted (hidden when it came from credentials); the
/// file's content is never quoted.
pub(crate) fn read_pem_file(
    key: &str,
    inline_key: &str,
    path: &str,
    shown: &str,
    allowed_dirs: &[PathBuf],
) -> Result<Secret> {
    if allowed_dirs.is_empty() {
        return Err(config_error(
            key,
            format!(
                "reading a local file is not allowed: the host application allows no directory \
                 for `*_file` keys (TransportConfig::allowed_file_dirs; the inferlink CLI: \
                 INFERLINK_ALLOW_FILE_DIRS); put the PEM text in `{inline_key}` instead"
            ),
        ));
    }
    let requested = Path::new(path);
    if !requested.is_absolute() {
        return Err(config_error(
            key,
            format!("{shown} is not an absolute path"),
        ));
    }
    let real = std::fs::canonicalize(requested)
        .map_err(|e| config_error(key, format!("cannot resolve {shown}: {}", e.kind())))?;
    let inside = allowed_dirs
        .iter()
        .filter_map(|dir| std::fs::canonicalize(dir).ok())
        .any(|dir| real.starts_with(dir));
    if !inside {
        return Err(config_error(
            key,
            format!(
                "{shown} is outside the directories the host application allows for `*_file` keys"
            ),
        ));
    }
    let check = |meta: &std::fs::Metadata| {
        if !meta.is_file() {
            return Err(config_error(key, format!("{shown} is not a regular file")));
        }
        if meta.len() > PEM_FILE_MAX_BYTES {
            return Err(config_error(
                key,
                format!("{shown} is larger than {PEM_FILE_MAX_BYTES} bytes"),
            ));
        }
        Ok(())
    };
    check(
        &std::fs::metadata(&real)
            .map_err(|e| config_error(key, format!("cannot read {shown}: {}", e.kind())))?,
    )?;
    let file = open_without_waiting(&real)
        .map_err(|e| config_error(key, format!("cannot open {shown}: {}", e.kind())))?;
    // The file may have been swapped since the first look: judge the handle.
    check(
        &file
            .metadata()
            .map_err(|e| config_error(key, format!("cannot read {shown}: {}", e.kind())))?,
    )?;
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(PEM_FILE_MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| config_error(key, format!("cannot read {shown}: {}", e.kind())))?;
    if bytes.len() as u64 > PEM_FILE_MAX_BYTES {
        return Err(config_error(
            key,
            format!("{shown} is larger than {PEM_FILE_MAX_BYTES} bytes"),
        ));
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| config_error(key, format!("{shown} is not UTF-8 text")))?;
    decode_pem(text).map_err(|why| config_error(key, format!("{shown}: {why}")))
}

/// Opens a file for reading without following a final symlink and without
/// waiting for a writer (a FIFO swapped in would otherwise block the open).
#[cfg(unix)]
fn open_without_waiting(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
}

/// Opens a file for reading.
#[cfg(not(unix))]
fn open_without_waiting(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::open(path)
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
