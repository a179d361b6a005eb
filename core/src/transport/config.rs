//! [`TransportConfig`]: every transport setting, typed, with documented
//! defaults, read from a resolution's merged configuration.
//!
//! The configuration keys (see [`keys`]) carry their unit in the name:
//! `_ms` for milliseconds, `_bytes` for bytes. Values are strings in the
//! record (YAML scalars); numbers must be whole numbers in that unit.
//! `docs/transport.md` lists every key with its default.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result, printable};
use crate::secret::Secret;
use crate::target::{ConfigValue, ConnectTarget};

use super::auth::Auth;
use super::policy::EndpointPolicy;
use super::tls::{TlsConfig, decode_pem, read_pem_file};
use crate::kit::Key;

/// The configuration keys the transport reads, with their aliases.
pub mod keys {
    /// Connect timeout per attempt, milliseconds (default 10 000).
    pub const TIMEOUT_CONNECT_MS: &str = "timeout_connect_ms";
    /// Timeout of one attempt, from sending to the last body byte, milliseconds (default 60 000).
    pub const TIMEOUT_REQUEST_MS: &str = "timeout_request_ms";
    /// Overall deadline of a call, all attempts and backoff included, milliseconds (default 120 000).
    pub const DEADLINE_MS: &str = "deadline_ms";
    /// Idle connections kept per host (default 32; 0 disables pooling).
    pub const POOL_MAX_IDLE_PER_HOST: &str = "pool_max_idle_per_host";
    /// How long an idle pooled connection is kept, milliseconds (default 90 000).
    pub const POOL_IDLE_TIMEOUT_MS: &str = "pool_idle_timeout_ms";
    /// Requests in flight at once through one transport (default 0 = unlimited).
    pub const POOL_MAX_IN_FLIGHT: &str = "pool_max_in_flight";
    /// Attempts per call, the first included (default 3; 1 = never retry).
    pub const RETRY_MAX_ATTEMPTS: &str = "retry_max_attempts";
    /// First backoff ceiling, milliseconds (default 100).
    pub const RETRY_BACKOFF_BASE_MS: &str = "retry_backoff_base_ms";
    /// Largest backoff ceiling, milliseconds (default 10 000).
    pub const RETRY_BACKOFF_MAX_MS: &str = "retry_backoff_max_ms";
    /// Largest response body accepted, bytes after decompression (default 134 217 728 = 128 MiB).
    pub const RESPONSE_MAX_BYTES: &str = "response_max_bytes";
    /// Ask for and decode gzip-compressed responses (default true).
    pub const GZIP: &str = "gzip";
    /// Trusted CA certificates, PEM text or base64 of PEM (default: the platform's roots).
    pub const TLS_CA_PEM: &str = "tls_ca_pem";
    /// Trusted CA certificates, path of a PEM file.
    pub const TLS_CA_FILE: &str = "tls_ca_file";
    /// Client certificate chain for mutual TLS, PEM text or base64 of PEM.
    pub const TLS_CLIENT_CERT_PEM: &str = "tls_client_cert_pem";
    /// Client certificate chain for mutual TLS, path of a PEM file.
    pub const TLS_CLIENT_CERT_FILE: &str = "tls_client_cert_file";
    /// Client private key for mutual TLS, PEM text or base64 of PEM (a secret).
    pub const TLS_CLIENT_KEY_PEM: &str = "tls_client_key_pem";
    /// Client private key for mutual TLS, path of a PEM file.
    pub const TLS_CLIENT_KEY_FILE: &str = "tls_client_key_file";
    /// Skip server certificate verification (default false; an explicit, dangerous opt-in).
    pub const TLS_INSECURE_SKIP_VERIFY: &str = "tls_insecure_skip_verify";
    /// `Authorization: Bearer <token>` (a secret).
    pub const AUTH_BEARER_TOKEN: &str = "auth_bearer_token";
    /// HTTP basic authentication user name.
    pub const AUTH_BASIC_USERNAME: &str = "auth_basic_username";
    /// HTTP basic authentication password (a secret).
    pub const AUTH_BASIC_PASSWORD: &str = "auth_basic_password";
    /// Name of a custom authentication header (e.g. `X-Api-Key`).
    pub const AUTH_HEADER_NAME: &str = "auth_header_name";
    /// Value of the custom authentication header (a secret).
    pub const AUTH_HEADER_VALUE: &str = "auth_header_value";
    /// Prefix of extra static headers: `header_X-Tenant: alpha` sends `X-Tenant: alpha`.
    pub const HEADER_PREFIX: &str = "header_";

    /// Alias of [`TLS_CA_PEM`] used by seed 004's Seldon record (kubeconfig style, base64 PEM).
    pub const ALIAS_CLUSTER_CERT_AUTH: &str = "CLUSTER_CERT_AUTH";
    /// Alias of [`TLS_CLIENT_CERT_PEM`] used by seed 004's Seldon record.
    pub const ALIAS_CLIENT_CERT: &str = "CLIENT_CERT";
    /// Alias of [`TLS_CLIENT_KEY_PEM`] used by seed 004's Seldon record.
    pub const ALIAS_CLIENT_KEY: &str = "CLIENT_KEY";
    /// Alias of [`TLS_INSECURE_SKIP_VERIFY`] used by seed 004's Seldon record.
    pub const ALIAS_INSECURE: &str = "INSECURE";

    /// Every key above except [`HEADER_PREFIX`], canonical names first.
    pub const ALL: &[&str] = &[
        TIMEOUT_CONNECT_MS,
        TIMEOUT_REQUEST_MS,
        DEADLINE_MS,
        POOL_MAX_IDLE_PER_HOST,
        POOL_IDLE_TIMEOUT_MS,
        POOL_MAX_IN_FLIGHT,
        RETRY_MAX_ATTEMPTS,
        RETRY_BACKOFF_BASE_MS,
        RETRY_BACKOFF_MAX_MS,
        RESPONSE_MAX_BYTES,
        GZIP,
        TLS_CA_PEM,
        TLS_CA_FILE,
        TLS_CLIENT_CERT_PEM,
        TLS_CLIENT_CERT_FILE,
        TLS_CLIENT_KEY_PEM,
        TLS_CLIENT_KEY_FILE,
        TLS_INSECURE_SKIP_VERIFY,
        AUTH_BEARER_TOKEN,
        AUTH_BASIC_USERNAME,
        AUTH_BASIC_PASSWORD,
        AUTH_HEADER_NAME,
        AUTH_HEADER_VALUE,
        ALIAS_CLUSTER_CERT_AUTH,
        ALIAS_CLIENT_CERT,
        ALIAS_CLIENT_KEY,
        ALIAS_INSECURE,
    ];

    /// Key prefixes owned by the transport: an unknown key with one of them is
    /// a configuration error (a typo such as `timeout_conect_ms` must not be ignored).
    pub const RESERVED_PREFIXES: &[&str] = &["timeout_", "deadline", "retry_", "pool_", "tls_"];
}

/// The transport's keys as a [`KeySet`](crate::kit::KeySet) for the
/// unknown-key check ([`crate::kit::check_keys`]); every connector's
/// factory lists it next to its own keys.
pub const KEY_SET: crate::kit::KeySet = crate::kit::KeySet {
    owner: "transport",
    keys: &[
        Key::new(
            keys::TIMEOUT_CONNECT_MS,
            "connect timeout per attempt, ms (10 000)",
        ),
        Key::new(
            keys::TIMEOUT_REQUEST_MS,
            "timeout of one attempt, ms (60 000)",
        ),
        Key::new(
            keys::DEADLINE_MS,
            "overall deadline of a call, ms (120 000)",
        ),
        Key::new(
            keys::POOL_MAX_IDLE_PER_HOST,
            "idle connections kept per host (32)",
        ),
        Key::new(
            keys::POOL_IDLE_TIMEOUT_MS,
            "how long an idle connection is kept, ms (90 000)",
        ),
        Key::new(
            keys::POOL_MAX_IN_FLIGHT,
            "requests in flight at once (unlimited)",
        ),
        Key::new(
            keys::RETRY_MAX_ATTEMPTS,
            "attempts per call, the first included (3)",
        ),
        Key::new(
            keys::RETRY_BACKOFF_BASE_MS,
            "first backoff ceiling, ms (100)",
        ),
        Key::new(
            keys::RETRY_BACKOFF_MAX_MS,
            "largest backoff ceiling, ms (10 000)",
        ),
        Key::new(
            keys::RESPONSE_MAX_BYTES,
            "largest response body, bytes (128 MiB)",
        ),
        Key::new(keys::GZIP, "ask for gzip-compressed responses (true)"),
        Key::new(
            keys::TLS_CA_PEM,
            "trusted CA certificates, PEM or base64 of PEM",
        )
        .with_aliases(&[keys::ALIAS_CLUSTER_CERT_AUTH]),
        Key::new(
            keys::TLS_CA_FILE,
            "trusted CA certificates, path of a PEM file",
        ),
        Key::new(
            keys::TLS_CLIENT_CERT_PEM,
            "client certificate chain for mutual TLS",
        )
        .with_aliases(&[keys::ALIAS_CLIENT_CERT]),
        Key::new(
            keys::TLS_CLIENT_CERT_FILE,
            "client certificate chain, path of a PEM file",
        ),
        Key::new(
            keys::TLS_CLIENT_KEY_PEM,
            "client private key for mutual TLS (a secret)",
        )
        .with_aliases(&[keys::ALIAS_CLIENT_KEY]),
        Key::new(
            keys::TLS_CLIENT_KEY_FILE,
            "client private key, path of a PEM file",
        ),
        Key::new(
            keys::TLS_INSECURE_SKIP_VERIFY,
            "skip certificate verification (false)",
        )
        .with_aliases(&[keys::ALIAS_INSECURE]),
        Key::new(
            keys::AUTH_BEARER_TOKEN,
            "Authorization: Bearer token (a secret)",
        ),
        Key::new(keys::AUTH_BASIC_USERNAME, "HTTP basic user name"),
        Key::new(keys::AUTH_BASIC_PASSWORD, "HTTP basic password (a secret)"),
        Key::new(
            keys::AUTH_HEADER_NAME,
            "name of a custom authentication header",
        ),
        Key::new(
            keys::AUTH_HEADER_VALUE,
            "value of the custom authentication header (a secret)",
        ),
    ],
    prefixes: &[keys::HEADER_PREFIX],
};

/// Retry settings: how many attempts, and how long to wait between them.
///
/// The wait before retry *n* (1-based) is drawn uniformly from
/// `0 ..= min(backoff_max, backoff_base * 2^(n-1))` ("full jitter"), unless
/// the server sent `Retry-After`, which is honoured as given.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts per call, the first included (1 = never retry). Key `retry_max_attempts`.
    pub max_attempts: u32,
    /// First backoff ceiling. Key `retry_backoff_base_ms`.
    pub backoff_base: Duration,
    /// Largest backoff ceiling. Key `retry_backoff_max_ms`.
    pub backoff_max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// A policy that makes exactly one attempt.
    pub fn never() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The jittered wait before retry number `retry` (1 for the first retry).
    pub fn backoff(&self, retry: u32) -> Duration {
        let shift = retry.saturating_sub(1).min(32);
        let ceiling = self
            .backoff_base
            .saturating_mul(1u32 << shift.min(31))
            .min(self.backoff_max);
        let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(fastrand::u64(0..=ceiling_ms))
    }
}

/// Connection pool settings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolConfig {
    /// Idle connections kept per host; 0 disables pooling. Key `pool_max_idle_per_host`.
    pub max_idle_per_host: usize,
    /// How long an idle connection is kept. Key `pool_idle_timeout_ms`.
    pub idle_timeout: Duration,
    /// Requests in flight at once through one transport; `None` = unlimited.
    /// Waiting for a slot counts against the attempt's timeout. Key `pool_max_in_flight` (0 = unlimited).
    pub max_in_flight: Option<usize>,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_idle_per_host: 32,
            idle_timeout: Duration::from_secs(90),
            max_in_flight: None,
        }
    }
}

/// One extra header sent with every request (from `header_<Name>` keys).
#[derive(Clone, PartialEq, Eq)]
pub struct StaticHeader {
    /// The header name as written.
    pub name: String,
    /// The value; a [`ConfigValue::Secret`] is sent as a sensitive header and never shown.
    pub value: ConfigValue,
}

impl fmt::Debug for StaticHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {:?}", self.name, self.value)
    }
}

/// Every setting of the shared transport, with documented defaults.
///
/// Build one with [`TransportConfig::default`] and change fields, or read it
/// from configuration with [`TransportConfig::from_target`] /
/// [`TransportConfig::from_values`]. Values are checked when a transport is
/// built ([`TransportConfig::validate`]). `Debug` never shows secrets.
///
/// The same settings serve a gRPC client: [`TransportConfig::timeout_connect`],
/// [`TransportConfig::timeout_request`] and [`TransportConfig::deadline`] map to
/// a channel's connect timeout, per-call timeout and the caller's deadline;
/// [`TlsConfig`] hands out the PEM material; [`Auth::header`] gives the
/// authorization header as metadata; [`super::retry::run`] is the retry loop.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TransportConfig {
    /// Connect timeout per attempt (TCP and TLS). Key `timeout_connect_ms`, default 10 s.
    pub timeout_connect: Duration,
    /// Timeout of one attempt, from sending to the last body byte. Key `timeout_request_ms`, default 60 s.
    pub timeout_request: Duration,
    /// Overall deadline of one call: every attempt and every backoff wait. Key `deadline_ms`, default 120 s.
    pub deadline: Duration,
    /// Connection pool settings.
    pub pool: PoolConfig,
    /// Retry settings.
    pub retry: RetryPolicy,
    /// Largest response body accepted, in bytes after decompression. Key `response_max_bytes`, default 128 MiB.
    pub response_max_bytes: u64,
    /// Ask for and decode gzip responses. Key `gzip`, default true.
    pub gzip: bool,
    /// TLS trust and client identity.
    pub tls: TlsConfig,
    /// How requests authenticate.
    pub auth: Auth,
    /// Extra headers sent with every request.
    pub headers: Vec<StaticHeader>,
    /// Hosts and networks the transport may connect to; `None` allows every host.
    ///
    /// Only the host application sets this (in code); no configuration key
    /// can change it, so a record cannot widen its own access.
    pub endpoint_policy: Option<EndpointPolicy>,
    /// Directories whose files the `*_file` keys (`tls_ca_file`,
    /// `tls_client_cert_file`, `tls_client_key_file`) may name. Empty (the
    /// default): every `*_file` key is refused, so a record cannot make the
    /// host read a local file. A named file must resolve (symlinks
    /// followed) to a regular file inside one of these directories, of at
    /// most [`super::PEM_FILE_MAX_BYTES`].
    ///
    /// Like [`TransportConfig::endpoint_policy`], only the host application
    /// sets this; no configuration key can change it.
    pub allowed_file_dirs: Vec<PathBuf>,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            timeout_connect: Duration::from_secs(10),
            timeout_request: Duration::from_secs(60),
            deadline: Duration::from_secs(120),
            pool: PoolConfig::default(),
            retry: RetryPolicy::default(),
            response_max_bytes: 128 * 1024 * 1024,
            gzip: true,
            tls: TlsConfig::default(),
            auth: Auth::None,
            headers: Vec::new(),
            endpoint_policy: None,
            allowed_file_dirs: Vec::new(),
        }
    }
}

/// Largest number of attempts a configuration may ask for.
const MAX_ATTEMPTS_LIMIT: u32 = 100;

impl TransportConfig {
    /// Defaults overlaid with the keys found in a target's configuration.
    ///
    /// Values that came from credentials stay secret. Keys the transport does
    /// not own are ignored (they belong to the connector or the environment).
    pub fn from_target(target: &ConnectTarget) -> Result<Self> {
        TransportConfig::default().apply_target(target)
    }

    /// These settings (a vendor's defaults) with the host's transport
    /// settings of the target (endpoint policy, allowed file directories),
    /// then overlaid with the keys of the target's configuration: the
    /// layering every connector uses.
    pub fn apply_target(self, target: &ConnectTarget) -> Result<Self> {
        let base = match &target.host_transport {
            Some(host) => host.apply_to(self),
            None => self,
        };
        base.apply_values(target.values())
    }

    /// Defaults overlaid with `values` (configuration key → value).
    pub fn from_values<I, K>(values: I) -> Result<Self>
    where
        I: IntoIterator<Item = (K, ConfigValue)>,
        K: AsRef<str>,
    {
        TransportConfig::default().apply_values(values)
    }

    /// Defaults overlaid with plain (non-secret) key/value pairs, e.g. from a map of strings.
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Self>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        TransportConfig::from_values(
            pairs
                .into_iter()
                .map(|(k, v)| (k, ConfigValue::Plain(v.as_ref().to_owned()))),
        )
    }

    /// These settings overlaid with `values`. Every invalid value is an
    /// [`ErrorKind::Config`] error naming its key; secret values are never quoted.
    pub fn apply_values<I, K>(mut self, values: I) -> Result<Self>
    where
        I: IntoIterator<Item = (K, ConfigValue)>,
        K: AsRef<str>,
    {
        let mut reader = Reader::default();
        for (k, v) in values {
            reader.insert(k.as_ref(), v)?;
        }
        reader.apply(&mut self)?;
        self.validate()?;
        Ok(self)
    }

    /// Checks the settings; a transport calls this when it is built.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            (keys::TIMEOUT_CONNECT_MS, self.timeout_connect),
            (keys::TIMEOUT_REQUEST_MS, self.timeout_request),
            (keys::DEADLINE_MS, self.deadline),
        ];
        for (key, d) in positive {
            if d.is_zero() {
                return Err(config_error(key, "must be at least 1 millisecond"));
            }
        }
        if self.retry.max_attempts == 0 || self.retry.max_attempts > MAX_ATTEMPTS_LIMIT {
            return Err(config_error(
                keys::RETRY_MAX_ATTEMPTS,
                format!("must be between 1 and {MAX_ATTEMPTS_LIMIT}"),
            ));
        }
        if self.retry.backoff_base > self.retry.backoff_max {
            return Err(config_error(
                keys::RETRY_BACKOFF_BASE_MS,
                format!("must not exceed {}", keys::RETRY_BACKOFF_MAX_MS),
            ));
        }
        if self.response_max_bytes == 0 {
            return Err(config_error(keys::RESPONSE_MAX_BYTES, "must be at least 1"));
        }
        if self.pool.max_in_flight == Some(0) {
            return Err(config_error(
                keys::POOL_MAX_IN_FLIGHT,
                "must be at least 1 (or unset for no limit)",
            ));
        }
        self.tls.validate()?;
        self.auth.validate()?;
        for h in &self.headers {
            super::auth::check_header(&h.name, h.value.expose())
                .map_err(|why| config_error(&format!("{}{}", keys::HEADER_PREFIX, h.name), why))?;
        }
        Ok(())
    }
}

/// An [`ErrorKind::Config`] error about `key`.
pub(crate) fn config_error(key: &str, why: impl fmt::Display) -> Error {
    Error::new(ErrorKind::Config, format!("{why}")).with_path(key)
}

/// A value for quoting in an error: secrets are never shown.
fn shown(value: &ConfigValue) -> String {
    match value {
        ConfigValue::Plain(s) => format!("{:?}", printable(s.clone(), 64)),
        ConfigValue::Secret(_) => crate::secret::HIDDEN.to_owned(),
    }
}

/// Collects the transport's keys from a configuration map, then applies them.
#[derive(Default)]
struct Reader {
    found: Vec<(&'static str, String, ConfigValue)>,
    headers: Vec<StaticHeader>,
}

impl Reader {
    fn insert(&mut self, key: &str, value: ConfigValue) -> Result<()> {
        if let Some(name) = key.strip_prefix(keys::HEADER_PREFIX) {
            if name.is_empty() {
                return Err(config_error(key, "header name is empty"));
            }
            self.headers.push(StaticHeader {
                name: name.to_owned(),
                value,
            });
            return Ok(());
        }
        if let Some(known) = keys::ALL.iter().find(|k| **k == key) {
            self.found.push((known, key.to_owned(), value));
            return Ok(());
        }
        if keys::RESERVED_PREFIXES.iter().any(|p| key.starts_with(p)) {
            return Err(config_error(
                key,
                "unknown transport setting (see docs/transport.md for the keys)",
            ));
        }
        Ok(())
    }

    /// The value of `key` or one of its aliases; two different values is an error.
    fn take(&self, names: &[&str]) -> Result<Option<(&str, &ConfigValue)>> {
        let mut hit: Option<(&str, &ConfigValue)> = None;
        for (known, _, value) in &self.found {
            if !names.contains(known) {
                continue;
            }
            match hit {
                None => hit = Some((known, value)),
                Some((first, v)) if v.expose() != value.expose() => {
                    return Err(config_error(
                        known,
                        format!("conflicts with `{first}`: set only one of them"),
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(hit)
    }

    fn apply(self, cfg: &mut TransportConfig) -> Result<()> {
        if let Some((k, v)) = self.take(&[keys::TIMEOUT_CONNECT_MS])? {
            cfg.timeout_connect = millis(k, v)?;
        }
        if let Some((k, v)) = self.take(&[keys::TIMEOUT_REQUEST_MS])? {
            cfg.timeout_request = millis(k, v)?;
        }
        if let Some((k, v)) = self.take(&[keys::DEADLINE_MS])? {
            cfg.deadline = millis(k, v)?;
        }
        if let Some((k, v)) = self.take(&[keys::POOL_MAX_IDLE_PER_HOST])? {
            cfg.pool.max_idle_per_host =
                usize::try_from(number(k, v)?).map_err(|_| config_error(k, "is too large"))?;
        }
        if let Some((k, v)) = self.take(&[keys::POOL_IDLE_TIMEOUT_MS])? {
            cfg.pool.idle_timeout = millis(k, v)?;
        }
        if let Some((k, v)) = self.take(&[keys::POOL_MAX_IN_FLIGHT])? {
            let n = usize::try_from(number(k, v)?).map_err(|_| config_error(k, "is too large"))?;
            cfg.pool.max_in_flight = (n > 0).then_some(n);
        }
        if let Some((k, v)) = self.take(&[keys::RETRY_MAX_ATTEMPTS])? {
            cfg.retry.max_attempts = u32::try_from(number(k, v)?)
                .map_err(|_| config_error(k, format!("must be at most {MAX_ATTEMPTS_LIMIT}")))?;
        }
        if let Some((k, v)) = self.take(&[keys::RETRY_BACKOFF_BASE_MS])? {
            cfg.retry.backoff_base = millis(k, v)?;
        }
        if let Some((k, v)) = self.take(&[keys::RETRY_BACKOFF_MAX_MS])? {
            cfg.retry.backoff_max = millis(k, v)?;
        }
        if let Some((k, v)) = self.take(&[keys::RESPONSE_MAX_BYTES])? {
            cfg.response_max_bytes = number(k, v)?;
        }
        if let Some((k, v)) = self.take(&[keys::GZIP])? {
            cfg.gzip = boolean(k, v)?;
        }
        if let Some((k, v)) = self.take(&[keys::TLS_INSECURE_SKIP_VERIFY, keys::ALIAS_INSECURE])? {
            cfg.tls.insecure_skip_verify = boolean(k, v)?;
        }
        if let Some(pem) = self.pem(
            &[keys::TLS_CA_PEM, keys::ALIAS_CLUSTER_CERT_AUTH],
            keys::TLS_CA_FILE,
            &cfg.allowed_file_dirs,
        )? {
            cfg.tls.ca_pem = Some(pem.expose().to_owned());
        }
        if let Some(pem) = self.pem(
            &[keys::TLS_CLIENT_CERT_PEM, keys::ALIAS_CLIENT_CERT],
            keys::TLS_CLIENT_CERT_FILE,
            &cfg.allowed_file_dirs,
        )? {
            cfg.tls.client_cert_pem = Some(pem.expose().to_owned());
        }
        if let Some(pem) = self.pem(
            &[keys::TLS_CLIENT_KEY_PEM, keys::ALIAS_CLIENT_KEY],
            keys::TLS_CLIENT_KEY_FILE,
            &cfg.allowed_file_dirs,
        )? {
            cfg.tls.client_key_pem = Some(pem);
        }
        self.apply_auth(cfg)?;
        cfg.headers.extend(self.headers);
        Ok(())
    }

    /// PEM text from an inline key (PEM or base64 of PEM) or a file key
    /// (only inside `allowed_dirs`); never both.
    fn pem(&self, inline: &[&str], file: &str, allowed_dirs: &[PathBuf]) -> Result<Option<Secret>> {
        let inline_key = inline[0];
        let inline = self.take(inline)?;
        let file = self.take(&[file])?;
        match (inline, file) {
            (Some((k, _)), Some((f, _))) => Err(config_error(
                f,
                format!("conflicts with `{k}`: set only one of them"),
            )),
            (Some((k, v)), None) => decode_pem(v.expose())
                .map(Some)
                .map_err(|why| config_error(k, why)),
            (None, Some((k, v))) => {
                read_pem_file(k, inline_key, v.expose(), &shown(v), allowed_dirs).map(Some)
            }
            (None, None) => Ok(None),
        }
    }

    fn apply_auth(&self, cfg: &mut TransportConfig) -> Result<()> {
        let bearer = self.take(&[keys::AUTH_BEARER_TOKEN])?;
        let user = self.take(&[keys::AUTH_BASIC_USERNAME])?;
        let password = self.take(&[keys::AUTH_BASIC_PASSWORD])?;
        let name = self.take(&[keys::AUTH_HEADER_NAME])?;
        let value = self.take(&[keys::AUTH_HEADER_VALUE])?;
        let schemes = [
            bearer.map(|(k, _)| k),
            user.or(password).map(|(k, _)| k),
            name.or(value).map(|(k, _)| k),
        ];
        let set: Vec<&str> = schemes.into_iter().flatten().collect();
        if set.len() > 1 {
            return Err(config_error(
                set[1],
                format!(
                    "conflicts with `{}`: configure one authentication scheme",
                    set[0]
                ),
            ));
        }
        if let Some((_, v)) = bearer {
            cfg.auth = Auth::Bearer(secret(v));
        }
        match (user, password) {
            (Some((_, u)), Some((_, p))) => {
                cfg.auth = Auth::Basic {
                    username: secret(u),
                    password: secret(p),
                };
            }
            (Some(_), None) => {
                return Err(config_error(
                    keys::AUTH_BASIC_PASSWORD,
                    format!("is required with `{}`", keys::AUTH_BASIC_USERNAME),
                ));
            }
            (None, Some(_)) => {
                return Err(config_error(
                    keys::AUTH_BASIC_USERNAME,
                    format!("is required with `{}`", keys::AUTH_BASIC_PASSWORD),
                ));
            }
            (None, None) => {}
        }
        match (name, value) {
            (Some((_, n)), Some((_, v))) => {
                cfg.auth = Auth::Header {
                    name: n.expose().to_owned(),
                    value: secret(v),
                };
            }
            (Some(_), None) => {
                return Err(config_error(
                    keys::AUTH_HEADER_VALUE,
                    format!("is required with `{}`", keys::AUTH_HEADER_NAME),
                ));
            }
            (None, Some(_)) => {
                return Err(config_error(
                    keys::AUTH_HEADER_NAME,
                    format!("is required with `{}`", keys::AUTH_HEADER_VALUE),
                ));
            }
            (None, None) => {}
        }
        Ok(())
    }
}

fn secret(value: &ConfigValue) -> Secret {
    match value {
        ConfigValue::Secret(s) => s.clone(),
        ConfigValue::Plain(s) => Secret::new(s.clone()),
    }
}

fn number(key: &str, value: &ConfigValue) -> Result<u64> {
    let text = value.expose().trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(config_error(
            key,
            format!("expected a whole number, got {}", shown(value)),
        ));
    }
    text.parse::<u64>()
        .map_err(|_| config_error(key, format!("number too large: {}", shown(value))))
}

fn millis(key: &str, value: &ConfigValue) -> Result<Duration> {
    Ok(Duration::from_millis(number(key, value)?))
}

fn boolean(key: &str, value: &ConfigValue) -> Result<bool> {
    match value.expose().trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(config_error(
            key,
            format!("expected true or false, got {}", shown(value)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_set_reads_every_transport_key() {
        for key in keys::ALL {
            assert!(KEY_SET.reads(key), "{key}");
        }
        assert!(KEY_SET.reads("header_X-Tenant"));
        assert!(!KEY_SET.reads("timeout_conect_ms"));
    }

    fn plain(pairs: &[(&str, &str)]) -> Result<TransportConfig> {
        TransportConfig::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn defaults_are_documented_values() {
        let c = TransportConfig::default();
        assert_eq!(c.timeout_connect, Duration::from_secs(10));
        assert_eq!(c.timeout_request, Duration::from_secs(60));
        assert_eq!(c.deadline, Duration::from_secs(120));
        assert_eq!(c.retry.max_attempts, 3);
        assert_eq!(c.response_max_bytes, 128 * 1024 * 1024);
        assert!(c.gzip);
        c.validate().unwrap();
    }

    #[test]
    fn keys_with_units_are_read() {
        let c = plain(&[
            ("timeout_connect_ms", "250"),
            ("timeout_request_ms", "1500"),
            ("deadline_ms", "4000"),
            ("retry_max_attempts", "5"),
            ("retry_backoff_base_ms", "10"),
            ("retry_backoff_max_ms", "20"),
            ("pool_max_idle_per_host", "0"),
            ("pool_max_in_flight", "4"),
            ("response_max_bytes", "1024"),
            ("gzip", "False"),
            ("unrelated_key", "kept for the connector"),
        ])
        .unwrap();
        assert_eq!(c.timeout_connect, Duration::from_millis(250));
        assert_eq!(c.timeout_request, Duration::from_millis(1500));
        assert_eq!(c.deadline, Duration::from_millis(4000));
        assert_eq!(c.retry.max_attempts, 5);
        assert_eq!(c.pool.max_idle_per_host, 0);
        assert_eq!(c.pool.max_in_flight, Some(4));
        assert_eq!(c.response_max_bytes, 1024);
        assert!(!c.gzip);
    }

    #[test]
    fn invalid_values_name_the_key() {
        let e = plain(&[("timeout_connect_ms", "1.5s")]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert_eq!(e.path(), Some("timeout_connect_ms"));
        let e = plain(&[("gzip", "maybe")]).unwrap_err();
        assert_eq!(e.path(), Some("gzip"));
        let e = plain(&[("retry_max_attempts", "0")]).unwrap_err();
        assert_eq!(e.path(), Some("retry_max_attempts"));
        let e = plain(&[("deadline_ms", "0")]).unwrap_err();
        assert_eq!(e.path(), Some("deadline_ms"));
        let e = plain(&[("timeout_conect_ms", "5")]).unwrap_err();
        assert_eq!(e.path(), Some("timeout_conect_ms"));
        assert!(e.message().contains("unknown transport setting"));
        let e = plain(&[
            ("retry_backoff_base_ms", "50"),
            ("retry_backoff_max_ms", "10"),
        ])
        .unwrap_err();
        assert_eq!(e.path(), Some("retry_backoff_base_ms"));
    }

    #[test]
    fn secret_values_are_never_quoted() {
        let e = TransportConfig::from_values([(
            "timeout_request_ms",
            ConfigValue::Secret(Secret::new("s3cr3t-value")),
        )])
        .unwrap_err();
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
        let c = TransportConfig::from_values([(
            "auth_bearer_token",
            ConfigValue::Secret(Secret::new("tok-planted")),
        )])
        .unwrap();
        assert!(!format!("{c:?}").contains("tok-planted"));
    }

    #[test]
    fn auth_schemes_are_exclusive_and_complete() {
        let e = plain(&[("auth_bearer_token", "a"), ("auth_basic_username", "u")]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        let e = plain(&[("auth_basic_username", "u")]).unwrap_err();
        assert_eq!(e.path(), Some("auth_basic_password"));
        let c = plain(&[
            ("auth_header_name", "X-Api-Key"),
            ("auth_header_value", "k"),
        ])
        .unwrap();
        assert!(matches!(c.auth, Auth::Header { .. }));
    }

    #[test]
    fn aliases_conflict_only_when_different() {
        plain(&[("tls_insecure_skip_verify", "true"), ("INSECURE", "true")]).unwrap();
        let e = plain(&[("tls_insecure_skip_verify", "true"), ("INSECURE", "False")]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        let c = plain(&[("INSECURE", "False")]).unwrap();
        assert!(!c.tls.insecure_skip_verify);
    }

    #[test]
    fn header_values_with_line_breaks_are_rejected_without_echo() {
        let e = TransportConfig::from_values([(
            "header_X-Tenant",
            ConfigValue::Secret(Secret::new("a\r\nInjected: yes")),
        )])
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert_eq!(e.path(), Some("header_X-Tenant"));
        assert!(!e.to_string().contains("Injected"), "{e}");
        let e = plain(&[("auth_bearer_token", "tok\nen")]).unwrap_err();
        assert_eq!(e.path(), Some("auth_bearer_token"));
    }

    #[test]
    fn backoff_stays_under_the_ceiling() {
        let p = RetryPolicy {
            max_attempts: 10,
            backoff_base: Duration::from_millis(10),
            backoff_max: Duration::from_millis(50),
        };
        for retry in 1..40 {
            let ceiling = Duration::from_millis((10u64 << (retry - 1).min(20)).min(50));
            assert!(p.backoff(retry) <= ceiling);
        }
    }
}
