//! A blueprint: the document (YAML or JSON) and its checked, compiled form.
//!
//! Reading a blueprint checks everything that can be checked without a
//! call: the actions and their response keys are known ones, every
//! placeholder names a parameter of its action or a configuration key the
//! blueprint declares, secrets are used only in headers, paths are paths.
//! Every problem is an [`ErrorKind::Config`] error whose path says where
//! (`blueprint.actions.embed.body.input`).

use std::collections::BTreeMap;
use std::fmt;

use inferlink_core::connector::split::SplitLimits;
use inferlink_core::kit::KeySet;
use inferlink_core::transport::Method;
use inferlink_core::{Error, ErrorKind, Result};
use serde::Deserialize;
use serde_json::Value;

use crate::path::ResponsePath;
use crate::stream::{StreamDoc, StreamSpec};
use crate::template::{BodyTemplate, Ref, TextTemplate};

/// Largest blueprint document accepted, in bytes.
pub const MAX_BLUEPRINT_BYTES: usize = 256 * 1024;

/// The prefix of every location in a blueprint error's path.
const ROOT: &str = "blueprint";

inferlink_core::config_words! {
    /// The calls a blueprint can describe.
    #[derive(PartialOrd, Ord)]
    pub enum Action for "action" {
        /// Texts to vectors ([`inferlink_core::Embedding`]).
        Embed = "embed",
        /// Documents scored against a query ([`inferlink_core::Reranking`]).
        Rerank = "rerank",
        /// A bare prompt completed ([`inferlink_core::Generation`]).
        Generate = "generate",
        /// A chat answered ([`inferlink_core::Generation`]).
        Chat = "chat",
        /// Tensors in, tensors out, as JSON rows ([`inferlink_core::TensorInference`]).
        Infer = "infer",
        /// An opaque body sent as given, the answer returned as received
        /// ([`inferlink_core::RawInvocation`]).
        Invoke = "invoke",
    }
}

impl Action {
    /// The call parameters of this action besides `model` and `version`.
    fn own_parameters(self) -> &'static [&'static str] {
        match self {
            Action::Embed => &["texts", "text", "dimensions", "normalize"],
            Action::Rerank => &["query", "documents", "top_n"],
            Action::Generate => &["prompt"],
            Action::Chat => &["messages"],
            Action::Infer => &["instances", "name", "shape", "datatype", "data"],
            Action::Invoke => &[],
        }
    }

    /// The call parameters a template of this action may name.
    pub fn parameters(self) -> Vec<&'static str> {
        const GENERATION_OPTIONS: [&str; 6] = [
            "max_tokens",
            "temperature",
            "top_p",
            "stop",
            "seed",
            "extra",
        ];
        let mut names = vec!["model", "version"];
        names.extend(self.own_parameters());
        if matches!(self, Action::Generate | Action::Chat) {
            names.extend(GENERATION_OPTIONS);
        }
        names
    }

    /// The response keys of this action, and which of them must be given.
    pub fn response_keys(self) -> (&'static [&'static str], &'static [&'static str]) {
        const USAGE: [&str; 3] = ["prompt_tokens", "completion_tokens", "total_tokens"];
        match self {
            Action::Embed => (
                &["vectors", "index", "error", USAGE[0], USAGE[2]],
                &["vectors"],
            ),
            Action::Rerank => (
                &["scores", "index", "error", USAGE[0], USAGE[2]],
                &["scores"],
            ),
            Action::Generate | Action::Chat => (
                &[
                    "text",
                    "finish_reason",
                    "error",
                    USAGE[0],
                    USAGE[1],
                    USAGE[2],
                ],
                &["text"],
            ),
            Action::Infer => (&["predictions", "shape", "error"], &["predictions"]),
            Action::Invoke => (&[], &[]),
        }
    }
}

/// A configuration key a blueprint reads from the record.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigKey {
    /// One line on what the key means.
    pub doc: String,
    /// The value comes from credentials; it may appear only in headers and
    /// is shown as `<hidden>` everywhere.
    #[serde(default)]
    pub secret: bool,
    /// The value when the record does not set the key; without a default
    /// the key is required.
    #[serde(default)]
    pub default: Option<String>,
    /// The key may be left unset (no default): a header that uses it is
    /// then left out, a body member dropped.
    #[serde(default)]
    pub optional: bool,
}

/// Split defaults a blueprint gives (the record's `embed_max_*` keys win).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct SplitDoc {
    max_items: Option<usize>,
    max_bytes: Option<usize>,
    concurrency: Option<usize>,
}

/// One action as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionDoc {
    #[serde(default)]
    method: Option<String>,
    path: String,
    #[serde(default)]
    query: BTreeMap<String, String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Option<Value>,
    #[serde(default)]
    response: BTreeMap<String, String>,
    #[serde(default)]
    stream: Option<StreamDoc>,
}

/// The signer a blueprint asks for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignerDoc {
    /// The only kind: `aws-sigv4`.
    pub kind: String,
    /// The AWS service name signed for (`bedrock`, `sagemaker`).
    pub service: String,
}

/// A blueprint document as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct BlueprintDoc {
    name: String,
    #[serde(default)]
    title: String,
    documentation: String,
    #[serde(default)]
    config: BTreeMap<String, ConfigKey>,
    #[serde(default)]
    split: SplitDoc,
    #[serde(default)]
    signer: Option<SignerDoc>,
    actions: BTreeMap<String, ActionDoc>,
}

/// A checked action: the request to build and where the answer's values are.
#[derive(Debug, Clone)]
pub struct ActionSpec {
    /// The HTTP method.
    pub method: Method,
    /// The path under the record's URL.
    pub path: TextTemplate,
    /// Query parameters.
    pub query: Vec<(String, TextTemplate)>,
    /// Headers (a header whose value needs an absent value is left out).
    pub headers: Vec<(String, TextTemplate)>,
    /// The JSON body (none: a request without a body).
    pub body: Option<BodyTemplate>,
    /// Response key → path.
    pub response: BTreeMap<String, ResponsePath>,
    /// Parameters the templates use.
    pub uses: Vec<String>,
    /// How the answer streams, for a generate or chat action that can
    /// ([`crate::stream`]).
    pub stream: Option<StreamSpec>,
}

impl ActionSpec {
    /// The path of response key `key`, when the blueprint maps it.
    pub fn answer(&self, key: &str) -> Option<&ResponsePath> {
        self.response.get(key)
    }

    /// True when a template of this action uses call parameter `name`.
    pub fn uses(&self, name: &str) -> bool {
        self.uses.iter().any(|u| u == name)
    }
}

/// A checked blueprint (it holds no secret values: `Debug` shows it all).
#[derive(Debug, Clone)]
pub struct Blueprint {
    /// Its name (`cohere`, `openai-compatible`, …).
    pub name: String,
    /// One line on what it speaks.
    pub title: String,
    /// The API documentation it was written from.
    pub documentation: String,
    /// The configuration keys it reads.
    pub config: BTreeMap<String, ConfigKey>,
    /// Split defaults (under the record's keys).
    pub split: SplitLimits,
    /// The signer, when requests are signed.
    pub signer: Option<SignerDoc>,
    /// The actions.
    pub actions: BTreeMap<Action, ActionSpec>,
}

/// True for 1 to 64 lower-case ASCII letters, digits and `joiner` bytes
/// (names, keys, AWS signing names and regions).
pub(crate) fn is_word(text: &str, joiner: u8) -> bool {
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == joiner;
    (1..=64).contains(&text.len()) && text.bytes().all(allowed)
}

/// A `Config` error at `location` (under `blueprint`).
fn problem(location: &str, why: impl fmt::Display) -> Error {
    let path = if location.is_empty() {
        ROOT.to_owned()
    } else {
        format!("{ROOT}.{location}")
    };
    Error::new(ErrorKind::Config, format!("blueprint: {why}")).with_path(path)
}

/// Re-homes an error from a parser under `location`, keeping its inner path.
fn at(location: &str, e: Error) -> Error {
    let inner = e.path().map(str::to_owned);
    let location = match inner.as_deref() {
        Some(p) if !p.is_empty() => format!("{location}.{p}"),
        _ => location.to_owned(),
    };
    problem(&location, e.message())
}

impl Blueprint {
    /// Reads and checks a blueprint from YAML (or JSON) text. `reserved`
    /// are the key sets whose keys a blueprint may not declare again (the
    /// transport's, the splitter's, the connector's own).
    pub fn parse(text: &str, reserved: &[KeySet]) -> Result<Blueprint> {
        if text.len() > MAX_BLUEPRINT_BYTES {
            return Err(problem(
                "",
                format!("larger than {MAX_BLUEPRINT_BYTES} bytes"),
            ));
        }
        let mut options = serde_saphyr::Options::default();
        let mut budget = serde_saphyr::Budget::default();
        budget.max_depth = 64;
        budget.max_nodes = 50_000;
        budget.max_aliases = 0;
        options.budget = Some(budget);
        options.with_snippet = false;
        let doc: BlueprintDoc =
            serde_saphyr::from_str_with_options(text, options).map_err(|e| {
                let why = inferlink_core::error::printable(e.to_string(), 300);
                problem("", format!("not a blueprint document: {why}"))
            })?;
        Blueprint::check(doc, reserved)
    }

    fn check(doc: BlueprintDoc, reserved: &[KeySet]) -> Result<Blueprint> {
        if !is_word(&doc.name, b'-') {
            return Err(problem(
                "name",
                "a name is 1-64 lower-case letters, digits and `-`",
            ));
        }
        if !(doc.documentation.starts_with("https://") || doc.documentation.starts_with("http://"))
        {
            return Err(problem(
                "documentation",
                "name the API's documentation by its URL",
            ));
        }
        for (key, declared) in &doc.config {
            if !is_word(key, b'_') || key.starts_with("x_") {
                return Err(problem(
                    &format!("config.{key}"),
                    "a key is lower-case letters, digits and `_`, not under x_",
                ));
            }
            if let Some(owner) = reserved.iter().find(|s| s.reads(key)) {
                let why = format!("key {key:?} is already read by {}", owner.owner);
                return Err(problem(&format!("config.{key}"), why));
            }
            if declared.secret && declared.default.is_some() {
                return Err(problem(
                    &format!("config.{key}.default"),
                    "a secret key has no default",
                ));
            }
        }
        if let Some((location, why)) = doc
            .signer
            .as_ref()
            .and_then(|s| crate::signer::problem(s, &doc.config))
        {
            return Err(problem(&location, why));
        }
        if doc.actions.is_empty() {
            return Err(problem(
                "actions",
                "a blueprint describes at least one action",
            ));
        }
        let mut actions = BTreeMap::new();
        for (word, action_doc) in &doc.actions {
            let location = format!("actions.{word}");
            let action: Action = word
                .parse()
                .map_err(|e: Error| problem(&location, e.message()))?;
            let spec = check_action(action, action_doc, &doc.config, &location)?;
            actions.insert(action, spec);
        }
        let defaults = SplitLimits::default();
        let split = SplitLimits {
            max_items: doc.split.max_items.unwrap_or(defaults.max_items),
            max_bytes: doc.split.max_bytes.unwrap_or(defaults.max_bytes),
            concurrency: doc.split.concurrency.unwrap_or(defaults.concurrency),
        };
        if split.max_items == 0 || split.max_bytes == 0 || split.concurrency == 0 {
            return Err(problem("split", "limits are whole numbers from 1"));
        }
        Ok(Blueprint {
            name: doc.name,
            title: doc.title,
            documentation: doc.documentation,
            config: doc.config,
            split,
            signer: doc.signer,
            actions,
        })
    }

    /// The action, when the blueprint describes it.
    pub fn action(&self, action: Action) -> Option<&ActionSpec> {
        self.actions.get(&action)
    }
}

/// Checks a placeholder used at `location` of `action`; `in_header` says
/// whether a secret may appear there.
fn check_ref(
    r: &Ref,
    action: Action,
    config: &BTreeMap<String, ConfigKey>,
    location: &str,
    in_header: bool,
) -> Result<()> {
    match r {
        Ref::Param(name) if action.parameters().contains(&name.as_str()) => Ok(()),
        Ref::Param(name) => Err(problem(
            location,
            format!(
                "unknown parameter `${{{name}}}` for {action}; it has: {}",
                action.parameters().join(", ")
            ),
        )),
        Ref::Config { key, credential } => {
            let Some(declared) = config.get(key) else {
                return Err(problem(
                    location,
                    format!(
                        "`${{{}}}` names a key the blueprint's config does not declare",
                        r.name()
                    ),
                ));
            };
            if *credential && !declared.secret {
                return Err(problem(
                    location,
                    format!(
                        "`${{{}}}`: key {key:?} is not declared secret; write config.{key}",
                        r.name()
                    ),
                ));
            }
            if declared.secret && !in_header {
                return Err(problem(
                    location,
                    format!("secret key {key:?} may be used only in a header"),
                ));
            }
            Ok(())
        }
    }
}

fn check_action(
    action: Action,
    doc: &ActionDoc,
    config: &BTreeMap<String, ConfigKey>,
    location: &str,
) -> Result<ActionSpec> {
    let method = match doc
        .method
        .as_deref()
        .unwrap_or("POST")
        .to_ascii_uppercase()
        .as_str()
    {
        "POST" => Method::POST,
        "GET" => Method::GET,
        "PUT" => Method::PUT,
        _ => return Err(problem(&format!("{location}.method"), "POST, GET or PUT")),
    };
    let mut uses = Vec::new();
    let mut note = |r: &Ref| {
        if let Ref::Param(p) = r {
            uses.push(p.clone());
        }
    };
    let path_at = format!("{location}.path");
    let path = TextTemplate::parse(&doc.path).map_err(|e| at(&path_at, e))?;
    let literal = path.literal_text();
    let path_char = |c: char| c.is_ascii_alphanumeric() || "/-._~:@!$&'()*+,;=%".contains(c);
    if !literal.chars().all(path_char) || literal.split('/').any(|s| s == "..") {
        return Err(problem(
            &path_at,
            "a path is segments of URL path characters (no `?`, `#`, `..`)",
        ));
    }
    for r in path.refs() {
        check_ref(&r, action, config, &path_at, false)?;
        note(&r);
    }
    let mut query = Vec::new();
    for (name, value) in &doc.query {
        let here = format!("{location}.query.{name}");
        let template = TextTemplate::parse(value).map_err(|e| at(&here, e))?;
        for r in template.refs() {
            check_ref(&r, action, config, &here, false)?;
            note(&r);
        }
        query.push((name.clone(), template));
    }
    let mut headers = Vec::new();
    for (name, value) in &doc.headers {
        let here = format!("{location}.headers.{name}");
        let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if name.is_empty() || !name.bytes().all(token) {
            return Err(problem(&here, "not an HTTP header name"));
        }
        let template = TextTemplate::parse(value).map_err(|e| at(&here, e))?;
        for r in template.refs() {
            check_ref(&r, action, config, &here, true)?;
            note(&r);
        }
        headers.push((name.clone(), template));
    }
    let body = match &doc.body {
        Some(_) if action == Action::Invoke => {
            let why = "an invoke action has no body template: the call's raw body is sent as given";
            return Err(problem(&format!("{location}.body"), why));
        }
        None => None,
        Some(value) => {
            let here = format!("{location}.body");
            let template = BodyTemplate::compile(value).map_err(|e| at(&here, e))?;
            for (inside, r) in template.refs() {
                let place = if inside.is_empty() {
                    here.clone()
                } else {
                    format!("{here}.{inside}")
                };
                check_ref(&r, action, config, &place, false)?;
                note(&r);
            }
            Some(template)
        }
    };
    let (known, required) = action.response_keys();
    let mut response = BTreeMap::new();
    for (key, text) in &doc.response {
        let here = format!("{location}.response.{key}");
        if !known.contains(&key.as_str()) {
            return Err(problem(
                &here,
                format!(
                    "unknown response key for {action}; it has: {}",
                    known.join(", ")
                ),
            ));
        }
        let parsed = ResponsePath::parse(text).map_err(|e| at(&here, e))?;
        let many_needed = matches!(key.as_str(), "scores" | "index");
        if many_needed && !parsed.is_many() {
            return Err(problem(
                &here,
                "this path selects one value per item: it needs a `[*]`",
            ));
        }
        if !matches!(key.as_str(), "vectors" | "scores" | "index") && parsed.is_many() {
            return Err(problem(&here, "this path selects one value: no `[*]`"));
        }
        response.insert(key.clone(), parsed);
    }
    if let Some(missing) = required.iter().find(|k| !response.contains_key(**k)) {
        return Err(problem(
            &format!("{location}.response"),
            format!("maps no `{missing}`"),
        ));
    }
    let stream = match &doc.stream {
        None => None,
        Some(_) if !matches!(action, Action::Generate | Action::Chat) => {
            let why = "only generate and chat actions stream";
            return Err(problem(&format!("{location}.stream"), why));
        }
        Some(stream) => Some(
            StreamSpec::check(stream)
                .map_err(|(at, why)| problem(&format!("{location}.stream.{at}"), why))?,
        ),
    };
    uses.sort();
    uses.dedup();
    Ok(ActionSpec {
        method,
        path,
        query,
        headers,
        body,
        response,
        uses,
        stream,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A blueprint in YAML's JSON subset, on few lines.
    const GOOD: &str = r#"{"name": "demo", "documentation": "https://example.invalid/docs",
 "config": {"api_key": {"doc": "the key", "secret": true},
            "input_type": {"doc": "kind of text", "default": "search_document"}},
 "actions": {"embed": {"path": "v1/embed",
   "headers": {"Authorization": "Bearer ${credentials.api_key}"},
   "body": {"model": "${model}", "texts": "${texts}", "input_type": "${config.input_type}"},
   "response": {"vectors": "embeddings[*]"}}}}"#;

    fn problem_path(text: &str) -> String {
        let e = Blueprint::parse(text, &[]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        e.path().unwrap_or_default().to_owned()
    }

    #[test]
    fn a_good_blueprint_reads() {
        let b = Blueprint::parse(GOOD, &[]).unwrap();
        let embed = b.action(Action::Embed).unwrap();
        assert!(embed.uses("texts") && !embed.uses("dimensions"));
        assert_eq!(b.split, SplitLimits::default());
    }

    #[test]
    fn problems_are_refused_with_their_path() {
        let cases = [
            (
                r#""texts": "${texts}""#,
                r#""texts": "${txts}""#,
                "blueprint.actions.embed.body.texts",
            ),
            (
                "${config.input_type}",
                "${config.input_typ}",
                "blueprint.actions.embed.body.input_type",
            ),
            (
                r#""input_type": "${config.input_type}""#,
                r#""key": "${credentials.api_key}""#,
                "blueprint.actions.embed.body.key",
            ),
            (
                "${credentials.api_key}",
                "${credentials.input_type}",
                "blueprint.actions.embed.headers.Authorization",
            ),
            (
                r#""vectors":"#,
                r#""vector":"#,
                "blueprint.actions.embed.response.vector",
            ),
            (
                "embeddings[*]",
                "embeddings[*][*]",
                "blueprint.actions.embed.response.vectors",
            ),
            (
                r#""path": "v1/embed""#,
                r#""path": "v1/../admin""#,
                "blueprint.actions.embed.path",
            ),
            (
                r#""path": "v1/embed""#,
                r#""path": "v1/${config.api_key}""#,
                "blueprint.actions.embed.path",
            ),
            (
                r#""embed": {"#,
                r#""translate": {"#,
                "blueprint.actions.translate",
            ),
            (r#""name": "demo""#, r#""name": "Demo!""#, "blueprint.name"),
        ];
        for (from, to, path) in cases {
            assert!(GOOD.contains(from), "{from}");
            assert_eq!(problem_path(&GOOD.replacen(from, to, 1)), path, "{to}");
        }
        let typo = GOOD.replace("documentation", "documentaton");
        assert!(
            Blueprint::parse(&typo, &[])
                .unwrap_err()
                .message()
                .contains("documentaton")
        );
    }

    #[test]
    fn signers_are_checked() {
        let with = |signer: &str| GOOD.replacen('{', &format!("{{{signer}, "), 1);
        let e = Blueprint::parse(&with(r#""signer": {"kind": "hmac", "service": "x"}"#), &[])
            .unwrap_err();
        assert_eq!(e.path(), Some("blueprint.signer.kind"), "{e}");
        // aws-sigv4 reads the region: the blueprint must declare it.
        let e = Blueprint::parse(
            &with(r#""signer": {"kind": "aws-sigv4", "service": "bedrock"}"#),
            &[],
        )
        .unwrap_err();
        assert_eq!(e.path(), Some("blueprint.config"), "{e}");
        assert!(
            crate::shipped("bedrock-titan-embed")
                .unwrap()
                .signer
                .is_some()
        );
    }

    #[test]
    fn reserved_keys_cannot_be_declared_again() {
        let text = GOOD.replace(r#""input_type": {"#, r#""timeout_request_ms": {"#);
        let e = Blueprint::parse(&text, &[inferlink_core::transport::config::KEY_SET]).unwrap_err();
        assert_eq!(e.path(), Some("blueprint.config.timeout_request_ms"), "{e}");
    }
}
