//! The extension record model (FuseML's Extension Record format).
//!
//! An [`ExtensionRecord`] describes one installation of a product (an MLflow
//! server, an S3 store, a KServe cluster …). It owns [`Service`]s; a service
//! owns [`Endpoint`]s (equivalent ways to reach it) and [`Credentials`]
//! (alternative sets of secrets, scoped to everyone, some projects or some
//! users). Every level carries a `configuration` map of string values; values
//! under `credentials` are [`Secret`]s.
//!
//! Field names and the YAML shape follow FuseML exactly (see
//! `docs/record-format.md`); `auth_required` is accepted as an alias of
//! `authrequired`. Parse records with [`crate::format`], which also validates
//! them ([`ExtensionRecord::validate`]).

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::secret::Secret;

/// A configuration map: string keys to string values (numbers and booleans are kept as text).
pub type Configuration = BTreeMap<String, String>;

/// A credentials configuration map: string keys to secret values.
pub type SecretConfiguration = BTreeMap<String, Secret>;

/// Size limits enforced by [`ExtensionRecord::validate`].
pub mod limits {
    /// Longest id, product, zone, resource, category, project or user name.
    pub const MAX_NAME_LEN: usize = 100;
    /// Longest version string.
    pub const MAX_VERSION_LEN: usize = 100;
    /// Longest description.
    pub const MAX_DESCRIPTION_LEN: usize = 4096;
    /// Longest endpoint URL.
    pub const MAX_URL_LEN: usize = 2048;
    /// Longest configuration key.
    pub const MAX_CONFIG_KEY_LEN: usize = 256;
    /// Longest configuration value (room for certificate bundles).
    pub const MAX_CONFIG_VALUE_LEN: usize = 1024 * 1024;
    /// Most entries in one configuration map.
    pub const MAX_CONFIG_ENTRIES: usize = 512;
    /// Most services in one record.
    pub const MAX_SERVICES: usize = 256;
    /// Most endpoints in one service.
    pub const MAX_ENDPOINTS: usize = 256;
    /// Most credential sets in one service.
    pub const MAX_CREDENTIALS: usize = 1024;
    /// Most entries in a `projects` or `users` list.
    pub const MAX_MEMBERS: usize = 4096;
}

/// One installation of a product, with its services.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtensionRecord {
    /// Unique id of the record in the registry.
    #[serde(deserialize_with = "de_scalar")]
    pub id: String,
    /// Universal product name (`mlflow`, `kserve`, `seldon` …).
    #[serde(
        default,
        deserialize_with = "de_scalar",
        skip_serializing_if = "String::is_empty"
    )]
    pub product: String,
    /// Installed version: free text, matched exactly or with a version constraint.
    #[serde(
        default,
        deserialize_with = "de_scalar",
        skip_serializing_if = "String::is_empty"
    )]
    pub version: String,
    /// Human-readable description.
    #[serde(
        default,
        deserialize_with = "de_scalar",
        skip_serializing_if = "String::is_empty"
    )]
    pub description: String,
    /// Infrastructure location (cluster, region); decides internal vs external endpoints.
    #[serde(
        default,
        deserialize_with = "de_scalar",
        skip_serializing_if = "String::is_empty"
    )]
    pub zone: String,
    /// Configuration shared by every service.
    #[serde(
        default,
        deserialize_with = "de_config",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub configuration: Configuration,
    /// The services this installation exposes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<Service>,
}

/// One API or UI exposed by an extension.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Id, unique within the record.
    #[serde(deserialize_with = "de_scalar")]
    pub id: String,
    /// Universal API/protocol identifier (`s3`, `mlflow-tracking`, `kserve-api` …).
    #[serde(
        default,
        deserialize_with = "de_scalar",
        skip_serializing_if = "String::is_empty"
    )]
    pub resource: String,
    /// Universal category (`model-store`, `prediction-serving`, `UI` …).
    #[serde(
        default,
        deserialize_with = "de_scalar",
        skip_serializing_if = "String::is_empty"
    )]
    pub category: String,
    /// When true, a consumer without an eligible credential set cannot use the service.
    #[serde(default, alias = "auth_required", skip_serializing_if = "is_false")]
    pub authrequired: bool,
    /// Human-readable description.
    #[serde(
        default,
        deserialize_with = "de_scalar",
        skip_serializing_if = "String::is_empty"
    )]
    pub description: String,
    /// Equivalent ways to reach the service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<Endpoint>,
    /// Alternative credential sets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credentials: Vec<Credentials>,
    /// Service-level configuration.
    #[serde(
        default,
        deserialize_with = "de_config",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub configuration: Configuration,
}

/// Whether an endpoint is reachable only from inside the record's zone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointType {
    /// Reachable only by consumers in the same zone (e.g. a cluster-internal service).
    Internal,
    /// Reachable from anywhere (ingress, load balancer, public URL). The default.
    #[default]
    External,
}

impl EndpointType {
    /// `internal` or `external`.
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointType::Internal => "internal",
            EndpointType::External => "external",
        }
    }
}

impl fmt::Display for EndpointType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One way to reach a service. The URL is the endpoint's identity within its service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// Absolute URL.
    #[serde(deserialize_with = "de_scalar")]
    pub url: String,
    /// `internal` or `external` (default `external`).
    #[serde(default, rename = "type")]
    pub endpoint_type: EndpointType,
    /// Endpoint-level configuration (CA certificates, client settings …).
    #[serde(
        default,
        deserialize_with = "de_config",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub configuration: Configuration,
}

/// Who may use a credential set.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Everyone. The default.
    #[default]
    Global,
    /// Consumers working in one of the listed projects.
    Project,
    /// The listed users (and, when projects are listed, only within those projects).
    User,
}

impl Scope {
    /// `global`, `project` or `user`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Global => "global",
            Scope::Project => "project",
            Scope::User => "user",
        }
    }

    /// Narrowness used for ranking: user (0) is narrower than project (1) than global (2).
    pub fn breadth(self) -> u8 {
        match self {
            Scope::User => 0,
            Scope::Project => 1,
            Scope::Global => 2,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of secrets for a service, scoped to everyone, projects or users.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// Id, unique within the service.
    #[serde(deserialize_with = "de_scalar")]
    pub id: String,
    /// Preferred among otherwise equal candidates.
    #[serde(default, skip_serializing_if = "is_false")]
    pub default: bool,
    /// Who may use these credentials (default `global`).
    #[serde(default)]
    pub scope: Scope,
    /// Projects allowed (required for `project` scope, optional for `user`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub projects: Vec<String>,
    /// Users allowed (required for `user` scope).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// The secret values.
    #[serde(
        default,
        deserialize_with = "de_secret_config",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub configuration: SecretConfiguration,
}

impl Credentials {
    /// Whether a consumer working in `project` as `user` may use these credentials.
    ///
    /// Global: always. Project: the project is listed. User: the user is listed
    /// and, when the credential lists projects, the project is listed too.
    pub fn eligible_for(&self, project: Option<&str>, user: Option<&str>) -> bool {
        let listed =
            |list: &[String], name: Option<&str>| name.is_some_and(|n| list.iter().any(|p| p == n));
        match self.scope {
            Scope::Global => true,
            Scope::Project => listed(&self.projects, project),
            Scope::User => {
                listed(&self.users, user)
                    && (self.projects.is_empty() || listed(&self.projects, project))
            }
        }
    }
}

impl ExtensionRecord {
    /// The service with this id.
    pub fn service(&self, id: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.id == id)
    }

    /// Checks every rule of the format; the error names the offending path.
    ///
    /// Rules: ids non-empty, at most 100 bytes, in `[A-Za-z0-9_][A-Za-z0-9._-]*`;
    /// unique service ids per record, credential ids and endpoint URLs per
    /// service; absolute URLs with a host; `scope` consistent with
    /// `projects`/`users`; configuration keys in `[A-Za-z0-9_][A-Za-z0-9_-]*`;
    /// values free of NUL; the size limits of [`limits`].
    pub fn validate(&self) -> Result<()> {
        check_name(&self.id, "id", true)?;
        check_label(&self.product, "product")?;
        check_label(&self.zone, "zone")?;
        check_text(&self.version, "version", limits::MAX_VERSION_LEN)?;
        check_text(
            &self.description,
            "description",
            limits::MAX_DESCRIPTION_LEN,
        )?;
        check_plain_config(&self.configuration).map_err(|e| e.with_path("configuration"))?;
        if self.services.len() > limits::MAX_SERVICES {
            return Err(Error::invalid_at(
                "services",
                format!(
                    "{} services; at most {} are allowed",
                    self.services.len(),
                    limits::MAX_SERVICES
                ),
            ));
        }
        let mut ids = HashSet::new();
        for (i, service) in self.services.iter().enumerate() {
            service
                .validate()
                .map_err(|e| e.with_path(format!("services[{i}]")))?;
            if !ids.insert(service.id.as_str()) {
                return Err(Error::invalid_at(
                    format!("services[{i}].id"),
                    format!("duplicate service id \"{}\" in this record", service.id),
                ));
            }
        }
        Ok(())
    }

    /// Replaces `<hidden>` credential values with the values stored in `previous`.
    ///
    /// This is what makes "read a record, edit it, write it back" safe: a
    /// credential value of `<hidden>` means "keep the stored value". With no
    /// previous record (a create), or when the previous record has no value for
    /// that service, credential id and key, the placeholder is an error.
    pub fn restore_hidden_secrets(&mut self, previous: Option<&ExtensionRecord>) -> Result<()> {
        for (si, service) in self.services.iter_mut().enumerate() {
            for (ci, creds) in service.credentials.iter_mut().enumerate() {
                for (key, value) in creds.configuration.iter_mut() {
                    if !value.is_placeholder() {
                        continue;
                    }
                    let stored = previous
                        .and_then(|p| p.service(&service.id))
                        .and_then(|s| s.credentials.iter().find(|c| c.id == creds.id))
                        .and_then(|c| c.configuration.get(key));
                    match stored {
                        Some(old) if !old.is_placeholder() => *value = old.clone(),
                        _ => {
                            let why = if previous.is_some() {
                                "is the placeholder \"<hidden>\" but no stored value exists to keep; give the real value"
                            } else {
                                "is the placeholder \"<hidden>\", which is only allowed when updating a stored record (it means: keep the stored value); give the real value"
                            };
                            return Err(Error::invalid_at(
                                format!("services[{si}].credentials[{ci}].configuration.{key}"),
                                why,
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// True when any credential value is the `<hidden>` placeholder.
    pub fn has_hidden_placeholders(&self) -> bool {
        self.services
            .iter()
            .flat_map(|s| &s.credentials)
            .flat_map(|c| c.configuration.values())
            .any(Secret::is_placeholder)
    }
}

impl Service {
    fn validate(&self) -> Result<()> {
        check_name(&self.id, "id", true)?;
        check_label(&self.resource, "resource")?;
        check_label(&self.category, "category")?;
        check_text(
            &self.description,
            "description",
            limits::MAX_DESCRIPTION_LEN,
        )?;
        check_plain_config(&self.configuration).map_err(|e| e.with_path("configuration"))?;
        check_count(self.endpoints.len(), limits::MAX_ENDPOINTS, "endpoints")?;
        check_count(
            self.credentials.len(),
            limits::MAX_CREDENTIALS,
            "credentials",
        )?;
        let mut urls = HashSet::new();
        for (i, endpoint) in self.endpoints.iter().enumerate() {
            endpoint
                .validate()
                .map_err(|e| e.with_path(format!("endpoints[{i}]")))?;
            if !urls.insert(endpoint.url.as_str()) {
                return Err(Error::invalid_at(
                    format!("endpoints[{i}].url"),
                    format!(
                        "duplicate endpoint URL \"{}\" in this service",
                        endpoint.url
                    ),
                ));
            }
        }
        let mut ids = HashSet::new();
        for (i, creds) in self.credentials.iter().enumerate() {
            creds
                .validate()
                .map_err(|e| e.with_path(format!("credentials[{i}]")))?;
            if !ids.insert(creds.id.as_str()) {
                return Err(Error::invalid_at(
                    format!("credentials[{i}].id"),
                    format!("duplicate credentials id \"{}\" in this service", creds.id),
                ));
            }
        }
        Ok(())
    }
}

impl Endpoint {
    fn validate(&self) -> Result<()> {
        check_url(&self.url).map_err(|e| e.with_path("url"))?;
        check_plain_config(&self.configuration).map_err(|e| e.with_path("configuration"))
    }
}

impl Credentials {
    fn validate(&self) -> Result<()> {
        check_name(&self.id, "id", true)?;
        check_members(&self.projects, "projects")?;
        check_members(&self.users, "users")?;
        match self.scope {
            Scope::Global if !self.projects.is_empty() || !self.users.is_empty() => {
                let field = if self.projects.is_empty() {
                    "users"
                } else {
                    "projects"
                };
                return Err(Error::invalid_at(
                    field,
                    format!(
                        "scope is global, so {field} must be empty; use scope: project or scope: user to restrict these credentials"
                    ),
                ));
            }
            Scope::Project if self.projects.is_empty() => {
                return Err(Error::invalid_at(
                    "projects",
                    "scope is project but no projects are listed",
                ));
            }
            Scope::Project if !self.users.is_empty() => {
                return Err(Error::invalid_at(
                    "users",
                    "scope is project, so users must be empty; use scope: user to restrict to users",
                ));
            }
            Scope::User if self.users.is_empty() => {
                return Err(Error::invalid_at(
                    "users",
                    "scope is user but no users are listed",
                ));
            }
            _ => {}
        }
        check_config(self.configuration.iter().map(|(k, v)| (k, v.expose())))
            .map_err(|e| e.with_path("configuration"))
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// True for a non-empty id in `[A-Za-z0-9_][A-Za-z0-9._-]*`.
pub(crate) fn is_safe_name(s: &str) -> bool {
    is_label(s, b"_-.")
}

/// True for a non-empty label (product, zone, resource, category) in `[A-Za-z0-9_][A-Za-z0-9._+-]*`.
pub(crate) fn is_safe_label(s: &str) -> bool {
    is_label(s, b"_-.+")
}

fn is_label(s: &str, extra: &[u8]) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphanumeric() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

/// True for a configuration key in `[A-Za-z0-9_][A-Za-z0-9_-]*`.
pub(crate) fn is_config_key(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphanumeric() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

/// Shortens text for an error message (never used on secret values).
pub(crate) fn preview(s: &str) -> String {
    const MAX: usize = 60;
    if s.len() <= MAX {
        return format!("{s:?}");
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}… ({} bytes)", &s[..end], s.len())
}

fn check_name(value: &str, field: &'static str, required: bool) -> Result<()> {
    check_named(value, field, required, is_safe_name, "'_', '-' and '.'")
}

fn check_label(value: &str, field: &'static str) -> Result<()> {
    check_named(value, field, false, is_safe_label, "'_', '-', '.' and '+'")
}

fn check_named(
    value: &str,
    field: &'static str,
    required: bool,
    valid: fn(&str) -> bool,
    allowed: &str,
) -> Result<()> {
    if value.is_empty() {
        return if required {
            Err(Error::invalid_at(field, "must not be empty"))
        } else {
            Ok(())
        };
    }
    if value.len() > limits::MAX_NAME_LEN {
        return Err(Error::invalid_at(
            field,
            format!(
                "is {} bytes long; at most {} are allowed",
                value.len(),
                limits::MAX_NAME_LEN
            ),
        ));
    }
    if !valid(value) {
        return Err(Error::invalid_at(
            field,
            format!(
                "{} is not a valid name: use letters, digits, {allowed}, starting with a letter, digit or '_'",
                preview(value)
            ),
        ));
    }
    Ok(())
}

fn check_text(value: &str, field: &'static str, max: usize) -> Result<()> {
    if value.len() > max {
        return Err(Error::invalid_at(
            field,
            format!("is {} bytes long; at most {max} are allowed", value.len()),
        ));
    }
    if value.contains('\0') {
        return Err(Error::invalid_at(field, "contains a NUL character"));
    }
    Ok(())
}

fn check_count(n: usize, max: usize, field: &'static str) -> Result<()> {
    if n > max {
        return Err(Error::invalid_at(
            field,
            format!("{n} entries; at most {max} are allowed"),
        ));
    }
    Ok(())
}

fn check_members(list: &[String], field: &'static str) -> Result<()> {
    check_count(list.len(), limits::MAX_MEMBERS, field)?;
    let mut seen = HashSet::new();
    for (i, name) in list.iter().enumerate() {
        let ok = !name.is_empty()
            && name.len() <= limits::MAX_NAME_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'@'));
        if !ok {
            return Err(Error::invalid_at(
                format!("{field}[{i}]"),
                format!(
                    "{} is not a valid name: use 1 to {} letters, digits, '_', '-', '.' or '@'",
                    preview(name),
                    limits::MAX_NAME_LEN
                ),
            ));
        }
        if !seen.insert(name.as_str()) {
            return Err(Error::invalid_at(
                format!("{field}[{i}]"),
                format!("{} is listed twice", preview(name)),
            ));
        }
    }
    Ok(())
}

/// The URL schemes an endpoint may use: what the connectors and transports speak.
pub const ENDPOINT_SCHEMES: &[&str] = &["http", "https", "grpc", "grpcs"];

/// Configuration keys that carry a secret (or the file of one): allowed only
/// under `credentials`, where values are encrypted at rest and hidden from
/// listings. Compared ignoring ASCII case; every `auth_*` key is included too.
pub const CREDENTIAL_ONLY_KEYS: &[&str] = &[
    "tls_client_key_pem",
    "tls_client_key_file",
    "CLIENT_KEY",
    "access_token",
    "secret_access_key",
    "aws_secret_access_key",
    "session_token",
    "aws_session_token",
];

/// True for a key that may only appear under `credentials` (see [`CREDENTIAL_ONLY_KEYS`]).
pub fn is_credential_only_key(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    lower.starts_with("auth_")
        || lower.starts_with("tls_client_key")
        || CREDENTIAL_ONLY_KEYS
            .iter()
            .any(|k| k.eq_ignore_ascii_case(key))
}

fn check_url(value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid("must not be empty"));
    }
    if value.len() > limits::MAX_URL_LEN {
        return Err(Error::invalid(format!(
            "is {} bytes long; at most {} are allowed",
            value.len(),
            limits::MAX_URL_LEN
        )));
    }
    // A user name or password in the URL is a credential in a non-secret field.
    // Checked on the raw text first, so no later message can echo it. The
    // authority starts after `scheme:` and any number of slashes or
    // backslashes (`http:/user:pw@host` and `http:\\user@host` parse as
    // authorities too).
    let after_scheme = value.split_once(':').map_or(value, |(_, rest)| rest);
    let authority = after_scheme
        .trim_start_matches(['/', '\\'])
        .split(['/', '\\', '?', '#'])
        .next()
        .unwrap_or_default();
    if authority.contains('@') {
        return Err(user_info_error());
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid(format!(
            "{} contains whitespace or control characters",
            preview(value)
        )));
    }
    let parsed = url::Url::parse(value).map_err(|e| {
        Error::invalid(format!(
            "{} is not an absolute URL ({e}); write it with a scheme, e.g. http://host:port",
            preview(value)
        ))
    })?;
    // Whatever the text looked like, the parsed URL must carry no user info.
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(user_info_error());
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(Error::invalid(format!(
            "{} has no host; write it as scheme://host[:port][/path]",
            preview(value)
        )));
    }
    if !ENDPOINT_SCHEMES.contains(&parsed.scheme()) {
        return Err(Error::invalid(format!(
            "scheme \"{}\" is not allowed; an endpoint URL starts with {}",
            parsed.scheme().escape_debug(),
            ENDPOINT_SCHEMES
                .iter()
                .map(|s| format!("{s}://"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(())
}

fn user_info_error() -> Error {
    Error::invalid(
        "contains a user name or password; put credentials under the service's credentials, not in the URL",
    )
}

/// [`check_config`] for a map outside `credentials`: also refuses secret-bearing keys.
fn check_plain_config(config: &Configuration) -> Result<()> {
    check_config(config.iter().map(|(k, v)| (k, v.as_str())))?;
    if let Some(key) = config.keys().find(|k| is_credential_only_key(k)) {
        return Err(Error::invalid_at(
            key.clone(),
            "carries a secret and is only allowed under a service's credentials[].configuration, where it is encrypted at rest and hidden; move it there",
        ));
    }
    Ok(())
}

fn check_config<'a>(entries: impl ExactSizeIterator<Item = (&'a String, &'a str)>) -> Result<()> {
    check_count(entries.len(), limits::MAX_CONFIG_ENTRIES, "")
        .map_err(|e| Error::invalid(e.message().to_owned()))?;
    for (key, value) in entries {
        if key.len() > limits::MAX_CONFIG_KEY_LEN || !is_config_key(key) {
            return Err(Error::invalid_at(
                key.clone(),
                format!(
                    "{} is not a valid configuration key: use 1 to {} letters, digits, '_' and '-', starting with a letter, digit or '_'",
                    preview(key),
                    limits::MAX_CONFIG_KEY_LEN
                ),
            ));
        }
        // Value text is never quoted here: it may be a secret.
        if value.len() > limits::MAX_CONFIG_VALUE_LEN {
            return Err(Error::invalid_at(
                key.clone(),
                format!(
                    "value is {} bytes long; at most {} are allowed",
                    value.len(),
                    limits::MAX_CONFIG_VALUE_LEN
                ),
            ));
        }
        if value.contains('\0') {
            return Err(Error::invalid_at(
                key.clone(),
                "value contains a NUL character",
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Deserialization helpers: scalars (strings, numbers, booleans, null) become
// strings; maps reject duplicate keys and non-scalar values.

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a scalar (string, number or boolean)")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        Ok(String::new())
    }
    fn visit_none<E: de::Error>(self) -> Result<String, E> {
        Ok(String::new())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        deserialize_scalar_inner(d)
    }
}

fn deserialize_scalar_inner<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match crate::format::scalar_mode() {
        // YAML: ask for the scalar's text, so `1.20`, `False`, `0x1F` stay verbatim.
        crate::format::ScalarMode::Text => d.deserialize_str(ScalarVisitor),
        // JSON: numbers and booleans arrive typed; print them.
        crate::format::ScalarMode::Typed => d.deserialize_any(ScalarVisitor),
    }
}

/// A scalar as a string; null becomes the empty string.
fn de_scalar<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_option(ScalarVisitor)
}

struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_scalar(d).map(Scalar)
    }
}

struct ConfigVisitor<V>(std::marker::PhantomData<V>);

impl<'de, V: From<String>> Visitor<'de> for ConfigVisitor<V> {
    type Value = BTreeMap<String, V>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of configuration keys to scalar values")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(BTreeMap::new())
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(BTreeMap::new())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.len() >= limits::MAX_CONFIG_ENTRIES {
                return Err(de::Error::custom(format!(
                    "more than {} configuration entries",
                    limits::MAX_CONFIG_ENTRIES
                )));
            }
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "duplicate configuration key {}",
                    preview(&key)
                )));
            }
            let Scalar(value) = map.next_value()?;
            out.insert(key, V::from(value));
        }
        Ok(out)
    }
}

fn de_config<'de, D: Deserializer<'de>>(d: D) -> Result<Configuration, D::Error> {
    d.deserialize_option(ConfigVisitor(std::marker::PhantomData))
}

fn de_secret_config<'de, D: Deserializer<'de>>(d: D) -> Result<SecretConfiguration, D::Error> {
    d.deserialize_option(ConfigVisitor(std::marker::PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::HIDDEN;

    fn record() -> ExtensionRecord {
        ExtensionRecord {
            id: "ext".into(),
            services: vec![Service {
                id: "svc".into(),
                endpoints: vec![Endpoint {
                    url: "http://a:1".into(),
                    ..Default::default()
                }],
                credentials: vec![Credentials {
                    id: "c".into(),
                    configuration: [("KEY".to_owned(), Secret::new("s3cr3t"))].into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn valid_record_passes() {
        record().validate().unwrap();
    }

    #[test]
    fn bad_url_names_its_path() {
        let mut r = record();
        r.services[0].endpoints.push(Endpoint {
            url: "mlflow.svc".into(),
            ..Default::default()
        });
        let e = r.validate().unwrap_err();
        assert_eq!(e.path(), Some("services[0].endpoints[1].url"));
        assert!(e.message().contains("absolute URL"), "{e}");
    }

    #[test]
    fn urls_with_credentials_are_refused_without_echoing_them() {
        for url in ["http://user:pw-secret@host:1", "http://pw-secret@ host"] {
            let mut r = record();
            r.services[0].endpoints[0].url = url.into();
            let e = r.validate().unwrap_err();
            assert!(e.message().contains("user name or password"), "{e}");
            assert!(!e.to_string().contains("pw-secret"), "{e}");
        }
    }

    #[test]
    fn scope_must_match_lists() {
        let mut r = record();
        r.services[0].credentials[0].scope = Scope::Project;
        let e = r.validate().unwrap_err();
        assert_eq!(e.path(), Some("services[0].credentials[0].projects"));
    }

    #[test]
    fn hidden_placeholder_restores_from_previous() {
        let old = record();
        let mut new = record();
        new.services[0].credentials[0]
            .configuration
            .insert("KEY".into(), Secret::new(HIDDEN));
        let e = new.clone().restore_hidden_secrets(None).unwrap_err();
        assert_eq!(
            e.path(),
            Some("services[0].credentials[0].configuration.KEY")
        );
        new.restore_hidden_secrets(Some(&old)).unwrap();
        assert_eq!(
            new.services[0].credentials[0].configuration["KEY"].expose(),
            "s3cr3t"
        );
    }

    #[test]
    fn eligibility_follows_scope_rules() {
        let user = Credentials {
            id: "u".into(),
            scope: Scope::User,
            users: vec!["ann".into()],
            projects: vec!["alpha".into()],
            ..Default::default()
        };
        assert!(user.eligible_for(Some("alpha"), Some("ann")));
        assert!(!user.eligible_for(Some("beta"), Some("ann")));
        assert!(!user.eligible_for(None, Some("ann")));
        assert!(!user.eligible_for(Some("alpha"), Some("bob")));
        let project = Credentials {
            id: "p".into(),
            scope: Scope::Project,
            projects: vec!["alpha".into()],
            ..Default::default()
        };
        assert!(project.eligible_for(Some("alpha"), None));
        assert!(!project.eligible_for(None, None));
    }
}
