//! [`BedrockConfig`]: the Bedrock settings of a record (guardrail, inference
//! tier, embedding family, authentication mode, the agent runtime's URL),
//! read from a target's configuration. Region and AWS credentials are read
//! by the AWS layer ([`crate::auth`]); timeouts, retries and TLS by the
//! shared transport.

use inferlink_core::connector::split::SplitLimits;
use inferlink_core::kit::config_error;
use inferlink_core::{ConnectTarget, Result, Secret};

inferlink_core::config_keys! {
    /// The keys the Bedrock connector reads itself (the transport's are
    /// `transport::config::KEY_SET`, the splitter's `connector::split::KEYS`,
    /// region and credentials the AWS layer's).
    pub const KEYS for "bedrock" in mod keys {
        /// a Bedrock API key, from credentials: sent as Authorization: Bearer (else the
        /// environment's AWS_BEARER_TOKEN_BEDROCK)
        API_KEY = "api_key" | "AWS_BEARER_TOKEN_BEDROCK" | "aws_bearer_token_bedrock",
        /// auto (an API key if there is one, else SigV4), sigv4 or bearer (auto)
        AUTH = "auth",
        /// the bedrock-agent-runtime URL Rerank goes to (default: from a
        /// bedrock-runtime.<region> URL, else the record's URL)
        AGENT_RUNTIME_URL = "agent_runtime_url",
        /// a guardrail's id or ARN, applied to every InvokeModel and Converse call
        GUARDRAIL_IDENTIFIER = "guardrail_identifier",
        /// the guardrail's version: a number or DRAFT (needed with guardrail_identifier)
        GUARDRAIL_VERSION = "guardrail_version",
        /// the guardrail trace: enabled, disabled or enabled_full (Bedrock's default: disabled)
        GUARDRAIL_TRACE = "guardrail_trace",
        /// the latency profile: standard or optimized (Bedrock's default: standard)
        PERFORMANCE_LATENCY = "performance_latency",
        /// the service tier: priority, default, flex or reserved (Bedrock's default)
        SERVICE_TIER = "service_tier",
        /// the request body of typed embed calls: auto (by the model id), titan or cohere
        EMBED_FORMAT = "embed_format",
        /// Cohere embed's input_type: search_document, search_query, classification or
        /// clustering (search_document)
        INPUT_TYPE = "input_type",
        /// Cohere embed's truncate: NONE, START or END (Bedrock's default: NONE)
        TRUNCATE = "truncate",
    }
}

/// The agent runtime's largest rerank: 1 000 sources per request.
pub const MAX_RERANK_SOURCES: usize = 1000;
/// Cohere Embed on Bedrock: at most 96 texts per request.
pub const MAX_COHERE_TEXTS: usize = 96;

inferlink_core::config_words! {
    /// How requests are authenticated.
    pub enum AuthMode for "auth" {
        /// A Bedrock API key when the record or the environment has one, else SigV4.
        Auto = "auto",
        /// AWS Signature Version 4 (signing name `bedrock`).
        Sigv4 = "sigv4" | "aws-sigv4",
        /// A Bedrock API key as `Authorization: Bearer`.
        Bearer = "bearer" | "api-key",
    }
}

inferlink_core::config_words! {
    /// The guardrail trace setting.
    pub enum GuardrailTrace for "guardrail_trace" {
        /// Trace on.
        Enabled = "enabled",
        /// Trace off.
        Disabled = "disabled",
        /// Full trace.
        EnabledFull = "enabled_full",
    }
}

impl GuardrailTrace {
    /// The value of InvokeModel's `X-Amzn-Bedrock-Trace` header.
    pub fn header_value(self) -> &'static str {
        match self {
            GuardrailTrace::Enabled => "ENABLED",
            GuardrailTrace::Disabled => "DISABLED",
            GuardrailTrace::EnabledFull => "ENABLED_FULL",
        }
    }
}

inferlink_core::config_words! {
    /// The latency profile of a call.
    pub enum Latency for "performance_latency" {
        /// Bedrock's default.
        Standard = "standard",
        /// Latency-optimized inference, where the model offers it.
        Optimized = "optimized",
    }
}

inferlink_core::config_words! {
    /// The service tier of a call.
    pub enum ServiceTier for "service_tier" {
        /// Priority.
        Priority = "priority",
        /// The default tier.
        Default = "default",
        /// Flex.
        Flex = "flex",
        /// Reserved capacity.
        Reserved = "reserved",
    }
}

inferlink_core::config_words! {
    /// The body shape of typed embed calls.
    pub enum EmbedFormat for "embed_format" {
        /// By the model id: `titan-embed` → Titan, `cohere.embed` → Cohere.
        Auto = "auto",
        /// Amazon Titan Text Embeddings (v2, G1): one text per request.
        Titan = "titan",
        /// Cohere Embed (v3) on Bedrock: up to 96 texts per request.
        Cohere = "cohere",
    }
}

impl EmbedFormat {
    /// The format for `model`: this one, or for `Auto` the one its id names.
    pub fn for_model(self, model: &str) -> Option<EmbedFormat> {
        let id = model.to_ascii_lowercase();
        match self {
            EmbedFormat::Auto if id.contains("titan-embed") => Some(EmbedFormat::Titan),
            EmbedFormat::Auto if id.contains("cohere.embed") => Some(EmbedFormat::Cohere),
            EmbedFormat::Auto => None,
            fixed => Some(fixed),
        }
    }
}

inferlink_core::config_words! {
    /// Cohere embed's `input_type`.
    pub enum InputType for "input_type" {
        /// Documents stored for search.
        SearchDocument = "search_document",
        /// Queries searched with.
        SearchQuery = "search_query",
        /// Texts to classify.
        Classification = "classification",
        /// Texts to cluster.
        Clustering = "clustering",
    }
}

inferlink_core::config_words! {
    /// Cohere embed's `truncate`.
    pub enum Truncate for "truncate" {
        /// Refuse over-long texts.
        None = "NONE" | "none",
        /// Drop the start.
        Start = "START" | "start",
        /// Drop the end.
        End = "END" | "end",
    }
}

/// A guardrail applied to calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guardrail {
    /// The guardrail's id or ARN.
    pub identifier: String,
    /// Its version (a number or `DRAFT`).
    pub version: String,
    /// The trace setting, when set.
    pub trace: Option<GuardrailTrace>,
}

/// The connector's settings (see [`KEYS`]).
#[derive(Debug, Clone, PartialEq)]
pub struct BedrockConfig {
    /// How requests are authenticated.
    pub auth: AuthMode,
    /// The Bedrock API key (from the record; the environment's is read by
    /// [`crate::auth`]).
    pub api_key: Option<Secret>,
    /// Where Rerank goes; `None`: derived from the runtime URL.
    pub agent_runtime_url: Option<String>,
    /// A guardrail for every InvokeModel and Converse call.
    pub guardrail: Option<Guardrail>,
    /// The latency profile, when set.
    pub latency: Option<Latency>,
    /// The service tier, when set.
    pub service_tier: Option<ServiceTier>,
    /// The body shape of typed embed calls.
    pub embed_format: EmbedFormat,
    /// Cohere's `input_type`.
    pub input_type: InputType,
    /// Cohere's `truncate`, when set.
    pub truncate: Option<Truncate>,
    /// How embed and rerank inputs are cut (Titan takes one text per
    /// request whatever this says; Cohere at most 96).
    pub split: SplitLimits,
}

impl Default for BedrockConfig {
    fn default() -> Self {
        BedrockConfig {
            auth: AuthMode::Auto,
            api_key: None,
            agent_runtime_url: None,
            guardrail: None,
            latency: None,
            service_tier: None,
            embed_format: EmbedFormat::Auto,
            input_type: InputType::SearchDocument,
            truncate: None,
            split: SplitLimits {
                max_items: MAX_COHERE_TEXTS,
                ..SplitLimits::default()
            },
        }
    }
}

impl BedrockConfig {
    /// The defaults overlaid with the target's keys; a bad value is a
    /// `Config` error naming its key (never quoting a secret).
    pub fn from_target(target: &ConnectTarget) -> Result<Self> {
        let mut config = BedrockConfig::default();
        let text = |key: &str| {
            let found = std::iter::once(key)
                .chain(
                    KEYS.find(key)
                        .map_or(&[][..], |k| k.aliases)
                        .iter()
                        .copied(),
                )
                .find_map(|name| target.value(name));
            Some(found?.expose().trim().to_owned()).filter(|v| !v.is_empty())
        };
        if let Some(word) = text(keys::AUTH) {
            config.auth = word.parse()?;
        }
        if let Some(key) = text(keys::API_KEY) {
            visible_ascii(keys::API_KEY, &key)?;
            config.api_key = Some(Secret::new(key));
        }
        if let Some(url) = text(keys::AGENT_RUNTIME_URL) {
            url::Url::parse(&url)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
                .ok_or_else(|| config_error(keys::AGENT_RUNTIME_URL, "must be an http(s) URL"))?;
            config.agent_runtime_url = Some(url);
        }
        let identifier = text(keys::GUARDRAIL_IDENTIFIER);
        let version = text(keys::GUARDRAIL_VERSION);
        let trace = text(keys::GUARDRAIL_TRACE)
            .map(|w| w.parse::<GuardrailTrace>())
            .transpose()?;
        config.guardrail = match (identifier, version) {
            (Some(identifier), Some(version)) => {
                check_guardrail(&identifier, &version)?;
                Some(Guardrail {
                    identifier,
                    version,
                    trace,
                })
            }
            (Some(_), None) => {
                let why = "is needed with guardrail_identifier (a version number or DRAFT)";
                return Err(config_error(keys::GUARDRAIL_VERSION, why));
            }
            (None, Some(_)) => {
                let why = "is needed with guardrail_version";
                return Err(config_error(keys::GUARDRAIL_IDENTIFIER, why));
            }
            (None, None) if trace.is_some() => {
                let why = "is set without guardrail_identifier and guardrail_version";
                return Err(config_error(keys::GUARDRAIL_TRACE, why));
            }
            (None, None) => None,
        };
        if let Some(word) = text(keys::PERFORMANCE_LATENCY) {
            config.latency = Some(word.parse()?);
        }
        if let Some(word) = text(keys::SERVICE_TIER) {
            config.service_tier = Some(word.parse()?);
        }
        if let Some(word) = text(keys::EMBED_FORMAT) {
            config.embed_format = word.parse()?;
        }
        if let Some(word) = text(keys::INPUT_TYPE) {
            config.input_type = word.parse()?;
        }
        if let Some(word) = text(keys::TRUNCATE) {
            config.truncate = Some(word.parse()?);
        }
        config.split = SplitLimits::from_target(target, config.split)?;
        Ok(config)
    }
}

/// Visible ASCII only (a header value); the error never quotes it.
fn visible_ascii(key: &str, value: &str) -> Result<()> {
    if value.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(config_error(
            key,
            "must be visible ASCII text without spaces",
        ))
    }
}

/// The guardrail identifier and version patterns of the API: an id of
/// lower-case letters and digits or a guardrail ARN (at most 2048
/// characters); a version of 1 to 8 digits not starting with 0, or `DRAFT`.
fn check_guardrail(identifier: &str, version: &str) -> Result<()> {
    let plain_id = identifier
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let arn = identifier.starts_with("arn:aws")
        && identifier.contains(":guardrail/")
        && identifier.bytes().all(|b| b.is_ascii_graphic());
    if identifier.len() > 2048 || !(plain_id || arn) {
        let why = "must be a guardrail id (lower-case letters and digits) or a guardrail ARN";
        return Err(config_error(keys::GUARDRAIL_IDENTIFIER, why));
    }
    let numbered = (1..=8).contains(&version.len())
        && !version.starts_with('0')
        && version.bytes().all(|b| b.is_ascii_digit());
    if !(numbered || version == "DRAFT") {
        let why = "must be a version number (1 to 99999999) or DRAFT";
        return Err(config_error(keys::GUARDRAIL_VERSION, why));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use inferlink_core::ErrorKind;

    use super::*;

    fn target() -> ConnectTarget {
        ConnectTarget::new("bedrock", "https://bedrock-runtime.us-east-1.amazonaws.com")
    }

    #[test]
    fn keys_are_read_and_the_api_key_stays_hidden() {
        let t = target()
            .with_secret(keys::API_KEY, "bedrock-key-planted")
            .with_plain(keys::AUTH, "bearer")
            .with_plain(keys::GUARDRAIL_IDENTIFIER, "gr1abc")
            .with_plain(keys::GUARDRAIL_VERSION, "DRAFT")
            .with_plain(keys::GUARDRAIL_TRACE, "enabled_full")
            .with_plain(keys::PERFORMANCE_LATENCY, "optimized")
            .with_plain(keys::SERVICE_TIER, "flex")
            .with_plain(keys::EMBED_FORMAT, "cohere")
            .with_plain(keys::INPUT_TYPE, "search_query")
            .with_plain(keys::TRUNCATE, "end")
            .with_plain("embed_max_items", "8");
        let c = BedrockConfig::from_target(&t).unwrap();
        assert_eq!(c.auth, AuthMode::Bearer);
        assert_eq!(
            c.api_key.as_ref().map(Secret::expose),
            Some("bedrock-key-planted")
        );
        assert!(!format!("{c:?}").contains("planted"));
        let g = c.guardrail.unwrap();
        assert_eq!(
            (g.identifier.as_str(), g.version.as_str()),
            ("gr1abc", "DRAFT")
        );
        assert_eq!(g.trace.unwrap().header_value(), "ENABLED_FULL");
        assert_eq!(c.latency, Some(Latency::Optimized));
        assert_eq!(c.service_tier, Some(ServiceTier::Flex));
        assert_eq!(c.embed_format, EmbedFormat::Cohere);
        assert_eq!(c.input_type, InputType::SearchQuery);
        assert_eq!(c.truncate, Some(Truncate::End));
        assert_eq!(c.split.max_items, 8);
        let lower = target().with_secret("aws_bearer_token_bedrock", "k2");
        let c = BedrockConfig::from_target(&lower).unwrap();
        assert_eq!(c.api_key.as_ref().map(Secret::expose), Some("k2"));
    }

    #[test]
    fn bad_values_name_their_key() {
        for (pairs, key) in [
            (&[("auth", "kerberos")][..], "auth"),
            (&[("api_key", "has space")][..], "api_key"),
            (&[("agent_runtime_url", "ftp://x")][..], "agent_runtime_url"),
            (&[("guardrail_identifier", "g1")][..], "guardrail_version"),
            (&[("guardrail_version", "1")][..], "guardrail_identifier"),
            (&[("guardrail_trace", "enabled")][..], "guardrail_trace"),
            (
                &[("guardrail_identifier", "G!"), ("guardrail_version", "1")][..],
                "guardrail_identifier",
            ),
            (
                &[("guardrail_identifier", "g1"), ("guardrail_version", "01")][..],
                "guardrail_version",
            ),
            (
                &[("performance_latency", "fast")][..],
                "performance_latency",
            ),
            (&[("service_tier", "gold")][..], "service_tier"),
            (&[("embed_format", "openai")][..], "embed_format"),
            (&[("input_type", "query")][..], "input_type"),
            (&[("truncate", "MIDDLE")][..], "truncate"),
        ] {
            let mut t = target();
            for (k, v) in pairs {
                t = t.with_secret(*k, *v);
            }
            let e = BedrockConfig::from_target(&t).unwrap_err();
            assert_eq!((e.kind(), e.path()), (ErrorKind::Config, Some(key)), "{e}");
            assert!(!e.to_string().contains("has space"), "{e}");
        }
        let arn = "arn:aws:bedrock:us-east-1:123456789012:guardrail/abc123";
        let t = target()
            .with_plain("guardrail_identifier", arn)
            .with_plain("guardrail_version", "12");
        assert!(BedrockConfig::from_target(&t).is_ok());
    }

    #[test]
    fn embed_formats_follow_the_model_id() {
        let auto = EmbedFormat::Auto;
        let titan = auto.for_model("amazon.titan-embed-text-v2:0");
        assert_eq!(titan, Some(EmbedFormat::Titan));
        let cohere = auto.for_model("us.cohere.embed-english-v3");
        assert_eq!(cohere, Some(EmbedFormat::Cohere));
        assert_eq!(
            auto.for_model("arn:aws:bedrock:us-east-1:1:provisioned-model/x"),
            None
        );
        assert_eq!(
            EmbedFormat::Titan.for_model("anything"),
            Some(EmbedFormat::Titan)
        );
    }
}
