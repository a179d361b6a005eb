//! The connector's configuration, read from a [`ConnectTarget`] over the
//! defaults of the record's product (keys documented in [`crate::KEYS`]).

use inferlink_core::connector::split::SplitLimits;
use inferlink_core::kit::config_error;
use inferlink_core::{ConnectTarget, Result, Secret};

/// Key: the API key (put it in the record's credentials).
pub const API_KEY: &str = "api_key";
/// Key: Azure OpenAI's `api-version` query value.
pub const API_VERSION: &str = "api_version";
/// Key: the `OpenAI-Organization` header.
pub const ORGANIZATION: &str = "organization";
/// Key: the `OpenAI-Project` header.
pub const PROJECT: &str = "project";
/// Key: where the rerank endpoint is.
pub const RERANK_PATH: &str = "rerank_path";
/// Key: which typed calls the server answers (`embed`, `rerank`, `generate`).
pub const TASKS: &str = "tasks";
/// Key: whether streams ask for usage (`stream_options.include_usage`).
pub const STREAM_USAGE: &str = "stream_usage";
/// Key: the largest server-sent-event line or event accepted, in bytes.
pub const STREAM_MAX_EVENT_BYTES: &str = "stream_max_event_bytes";

/// Azure OpenAI's data-plane API version used unless `api_version` says otherwise.
pub const DEFAULT_AZURE_API_VERSION: &str = "2024-10-21";
/// Default bound of one server-sent-event line or event (1 MiB).
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1 << 20;
/// Largest `stream_max_event_bytes` accepted (64 MiB).
const MAX_EVENT_BYTES_LIMIT: usize = 64 << 20;

inferlink_core::config_words! {
    /// Which dialect of the API the server speaks.
    pub enum ApiVariant for "api_variant" {
        /// OpenAI's own paths (`/v1/embeddings`, …) and bearer auth.
        Openai = "openai",
        /// Azure OpenAI: `/openai/deployments/{model}/…?api-version=…` and
        /// the `api-key` header.
        Azure = "azure" | "azure-openai",
    }
}

inferlink_core::config_words! {
    /// How embedding vectors travel.
    pub enum EmbeddingEncoding for "embedding_encoding" {
        /// JSON numbers.
        Float = "float",
        /// Base64 of little-endian `f32`s (a quarter of the JSON size).
        Base64 = "base64",
    }
}

inferlink_core::config_words! {
    /// The request and answer shape of the rerank endpoint.
    pub enum RerankApi for "rerank_api" {
        /// `{query, documents, top_n}` → `{results: [{index, relevance_score}]}`
        /// (Cohere/Jina shape; vLLM's and llama.cpp's `/v1/rerank`).
        Cohere = "cohere" | "jina",
        /// vLLM's `/score`: `{text_1: query, text_2: documents}` → `{data: [{index, score}]}`.
        Score = "score",
        /// Hugging Face TEI's `/rerank`: `{query, texts}` → `[{index, score}]`.
        Tei = "tei",
    }
}

/// The connector's settings (the transport and the splitter read their own keys).
#[derive(Debug, Clone, PartialEq)]
pub struct OpenAiConfig {
    /// The API dialect.
    pub variant: ApiVariant,
    /// The API key: a bearer token, or the `api-key` header in Azure mode.
    pub api_key: Option<Secret>,
    /// Azure's `api-version`.
    pub api_version: String,
    /// The `OpenAI-Organization` header.
    pub organization: Option<String>,
    /// The `OpenAI-Project` header.
    pub project: Option<String>,
    /// How vectors are asked for.
    pub embedding_encoding: EmbeddingEncoding,
    /// The rerank endpoint: relative to the API base (`rerank`), or to the
    /// endpoint URL as registered when it starts with `/`.
    pub rerank_path: String,
    /// The rerank endpoint's shape.
    pub rerank_api: RerankApi,
    /// Streams ask for a usage report.
    pub stream_usage: bool,
    /// Largest server-sent-event line or event accepted.
    pub max_event_bytes: usize,
    /// The server embeds (task `embed`).
    pub embeds: bool,
    /// The server reranks (task `rerank`).
    pub reranks: bool,
    /// The server generates (task `generate`).
    pub generates: bool,
    /// Embed and rerank inputs are cut by these limits.
    pub split: SplitLimits,
}

impl OpenAiConfig {
    /// The defaults of a product (`openai`, `vllm`, `tei`, `azure-openai`, …;
    /// any other name gets OpenAI's).
    pub fn for_product(product: &str) -> Self {
        let product = product.to_ascii_lowercase();
        let mut config = OpenAiConfig {
            variant: ApiVariant::Openai,
            api_key: None,
            api_version: DEFAULT_AZURE_API_VERSION.to_owned(),
            organization: None,
            project: None,
            embedding_encoding: EmbeddingEncoding::Float,
            rerank_path: "rerank".to_owned(),
            rerank_api: RerankApi::Cohere,
            stream_usage: false,
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            embeds: true,
            reranks: false,
            generates: true,
            split: SplitLimits::default(),
        };
        match product.as_str() {
            "openai" => config.stream_usage = true,
            "azure-openai" => (config.variant, config.stream_usage) = (ApiVariant::Azure, true),
            "vllm" => (config.reranks, config.stream_usage) = (true, true),
            "tei" => {
                (config.reranks, config.generates) = (true, false);
                (config.rerank_path, config.rerank_api) = ("/rerank".into(), RerankApi::Tei);
            }
            "deepseek" => config.embeds = false,
            _ => {}
        }
        config
    }

    /// The product's defaults overlaid with the target's keys; a bad value
    /// is a `Config` error naming its key (never quoting a secret).
    pub fn from_target(target: &ConnectTarget) -> Result<Self> {
        let mut config = OpenAiConfig::for_product(&target.product);
        let text = |key| Some(target.value(key)?.expose().trim()).filter(|v| !v.is_empty());
        if let Some(word) = text(ApiVariant::KEY) {
            config.variant = word.parse()?;
        }
        if let Some(word) = text(EmbeddingEncoding::KEY) {
            config.embedding_encoding = word.parse()?;
        }
        if let Some(word) = text(RerankApi::KEY) {
            config.rerank_api = word.parse()?;
        }
        if let Some(value) = target.value(API_KEY) {
            let key = value.expose().trim();
            header_text(API_KEY, key)?;
            config.api_key = (!key.is_empty()).then(|| Secret::new(key));
        }
        if let Some(version) = text(API_VERSION) {
            header_text(API_VERSION, version)?;
            config.api_version = version.to_owned();
        }
        for (key, slot) in [
            (ORGANIZATION, &mut config.organization),
            (PROJECT, &mut config.project),
        ] {
            if let Some(value) = text(key) {
                header_text(key, value)?;
                *slot = Some(value.to_owned());
            }
        }
        if let Some(tasks) = text(TASKS) {
            (config.embeds, config.reranks, config.generates) = parse_tasks(tasks)?;
        }
        if let Some(path) = text(RERANK_PATH) {
            config.rerank_path = rerank_path(path)?;
        }
        if let Some(value) = text(STREAM_USAGE) {
            config.stream_usage = boolean(STREAM_USAGE, value)?;
        }
        if let Some(value) = text(STREAM_MAX_EVENT_BYTES) {
            config.max_event_bytes = match value.parse::<usize>() {
                Ok(n) if (64..=MAX_EVENT_BYTES_LIMIT).contains(&n) => n,
                _ => {
                    let why = format!("must be a whole number from 64 to {MAX_EVENT_BYTES_LIMIT}");
                    return Err(config_error(STREAM_MAX_EVENT_BYTES, why));
                }
            };
        }
        if config.variant == ApiVariant::Azure && config.reranks {
            let why = "Azure OpenAI has no rerank endpoint; drop rerank or set api_variant";
            return Err(config_error(TASKS, why));
        }
        config.split = SplitLimits::from_target(target, config.split)?;
        Ok(config)
    }
}

/// Visible ASCII only (a header or query value); the error never quotes it.
fn header_text(key: &str, value: &str) -> Result<()> {
    if value.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        Ok(())
    } else {
        Err(config_error(key, "must be visible ASCII text"))
    }
}

/// The tasks listed (`embed`, `rerank`, `generate`, separated by commas or
/// spaces) as (embeds, reranks, generates); at least one.
fn parse_tasks(list: &str) -> Result<(bool, bool, bool)> {
    let mut tasks = (false, false, false);
    for word in list.split([',', ' ']).filter(|w| !w.is_empty()) {
        match word.to_ascii_lowercase().as_str() {
            "embed" | "embeddings" => tasks.0 = true,
            "rerank" | "score" => tasks.1 = true,
            "generate" | "chat" | "completions" => tasks.2 = true,
            _ => {
                let why = "lists words other than embed, rerank, generate";
                return Err(config_error(TASKS, why));
            }
        }
    }
    if tasks == (false, false, false) {
        return Err(config_error(
            TASKS,
            "lists no task (embed, rerank, generate)",
        ));
    }
    Ok(tasks)
}

/// A rerank path: percent-encoded segments without query, fragment, `.` or `..`.
fn rerank_path(path: &str) -> Result<String> {
    let bad_char = |c: char| !(c.is_ascii_alphanumeric() || "/-_.~%".contains(c));
    let dots = path.split('/').any(|s| s == "." || s == "..");
    if path.chars().any(bad_char) || dots || path.trim_matches('/').is_empty() {
        let why = "must be a path such as rerank, v1/rerank or /rerank";
        return Err(config_error(RERANK_PATH, why));
    }
    Ok(path.to_owned())
}

fn boolean(key: &str, value: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "on" => Ok(true),
        "false" | "no" | "0" | "off" => Ok(false),
        _ => Err(config_error(key, "must be true or false")),
    }
}

#[cfg(test)]
mod tests {
    use inferlink_core::ErrorKind;

    use super::*;

    fn target(product: &str) -> ConnectTarget {
        ConnectTarget::new(product, "http://127.0.0.1:1")
    }

    #[test]
    fn products_pick_defaults() {
        let azure = OpenAiConfig::from_target(&target("Azure-OpenAI")).unwrap();
        assert_eq!(azure.variant, ApiVariant::Azure);
        assert_eq!(azure.api_version, DEFAULT_AZURE_API_VERSION);
        let tei = OpenAiConfig::from_target(&target("tei")).unwrap();
        assert_eq!(tei.rerank_path, "/rerank");
        assert!(!tei.generates && tei.embeds && tei.reranks);
        let deepseek = OpenAiConfig::from_target(&target("deepseek")).unwrap();
        assert!(!deepseek.embeds && deepseek.generates);
        let vllm = OpenAiConfig::from_target(&target("vllm")).unwrap();
        assert_eq!((vllm.rerank_path.as_str(), vllm.reranks), ("rerank", true));
        let plain = OpenAiConfig::from_target(&target("llama-cpp")).unwrap();
        assert_eq!((plain.variant, plain.reranks), (ApiVariant::Openai, false));
        assert!(plain.embeds && plain.generates);
    }

    #[test]
    fn keys_override_the_product() {
        let t = target("vllm")
            .with_secret(API_KEY, "sk-test-1234")
            .with_plain(ORGANIZATION, "org-1")
            .with_plain(TASKS, "generate, rerank")
            .with_plain(RERANK_PATH, "/v2/rerank")
            .with_plain(EmbeddingEncoding::KEY, "BASE64")
            .with_plain(STREAM_USAGE, "false")
            .with_plain("embed_max_items", "8");
        let c = OpenAiConfig::from_target(&t).unwrap();
        assert_eq!(c.api_key.as_ref().map(Secret::expose), Some("sk-test-1234"));
        assert!(!format!("{c:?}").contains("sk-test-1234"));
        assert_eq!(c.organization.as_deref(), Some("org-1"));
        assert_eq!((c.embeds, c.reranks, c.generates), (false, true, true));
        assert_eq!(c.rerank_path, "/v2/rerank");
        assert_eq!(c.embedding_encoding, EmbeddingEncoding::Base64);
        assert!(!c.stream_usage);
        assert_eq!(c.split.max_items, 8);
    }

    #[test]
    fn bad_values_name_their_key_and_never_the_secret() {
        for (key, value) in [
            (API_KEY, "sk-line\nbreak"),
            (PROJECT, "proj\u{7}"),
            (RERANK_PATH, "../admin"),
            (RERANK_PATH, "rerank?x=1"),
            (STREAM_USAGE, "maybe"),
            (TASKS, "embed, translate"),
            (TASKS, " , "),
            (STREAM_MAX_EVENT_BYTES, "1"),
            ("api_variant", "bedrock"),
        ] {
            let e =
                OpenAiConfig::from_target(&target("openai").with_secret(key, value)).unwrap_err();
            assert_eq!((e.kind(), e.path()), (ErrorKind::Config, Some(key)), "{e}");
            assert!(!e.to_string().contains("sk-line"), "{e}");
        }
        let azure_rerank = target("azure-openai").with_plain(TASKS, "rerank");
        let e = OpenAiConfig::from_target(&azure_rerank).unwrap_err();
        assert_eq!(e.path(), Some(TASKS));
    }
}
