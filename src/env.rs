//! Workflow-step environments: selectors → environment variables and expressions.
//!
//! A [`WorkflowStep`] in FuseML's shape lists `extensions:` (named
//! [`Selector`]s) and `env:` entries. Building its environment:
//!
//! 1. each selector is resolved; its configuration is merged extension <
//!    service < endpoint < credentials (the later level wins);
//! 2. the merged maps of all selectors are combined; a variable that two
//!    selectors set to *different* values is an error naming both (unless an
//!    explicit `env:` entry sets that variable, which settles it);
//! 3. step `inputs:` are exported as `FUSEML_<NAME>` (as FuseML's runtime
//!    did), their values expanded like `env:` values;
//! 4. explicit `env:` entries override, and may use expressions
//!    `{{ extension.NAME.FIELD }}` (or `extensions.`), where FIELD is
//!    `cfg.KEY`, `url`, `version`, `zone`, `product`, `id`, `service_id`,
//!    `service_resource`, `service_category` or `endpoint_type`.
//!
//! Values that came from credentials stay [`ConfigValue::Secret`], including
//! any `env:` value built with an expression that used one.
//!
//! Names: a configuration key becomes a variable only when it is a valid
//! name ([`is_valid_name`]) and not one the loader, a shell or a runtime acts
//! on ([`is_refused_from_records`]: `PATH`, `LD_*`, `PYTHONPATH`, …); such a
//! key from a record is an error naming the record and the key, unless the
//! step's own `env:` sets that variable. [`StepEnvironment::to_env_file`]
//! writes the variables in a form `sh` and `docker --env-file` read alike,
//! refusing values that cannot be.

mod file;
mod names;

pub use file::{SHELL_SPECIAL, is_env_file_safe};
pub use names::{
    MAX_NAME_LEN, REFUSED_NAMES, REFUSED_PREFIXES, is_refused_from_records, is_valid_name,
};

use std::collections::BTreeMap;
use std::fmt;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::Secrets;
use crate::model::is_config_key;
use crate::resolve::{ConfigValue, Resolution, Selector};
use crate::secret::Secret;

/// One workflow step: its extension selectors and explicit environment entries.
///
/// Other FuseML step fields (`image`, `inputs`, `outputs`, `resources`) are
/// accepted and ignored, so a step can be copied from a workflow as it is;
/// any other unknown field is an error (it is probably a typo).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowStep {
    /// The step's name (used in messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Named selectors for the services the step needs.
    #[serde(default)]
    pub extensions: Vec<Selector>,
    /// Explicit variables; override everything and may hold expressions.
    #[serde(default)]
    pub env: Vec<EnvEntry>,
    /// Step inputs; their values may hold expressions and are exported as `FUSEML_<NAME>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<StepInput>,
    // FuseML step fields accepted for compatibility and ignored.
    #[allow(dead_code)]
    #[serde(default, skip_serializing)]
    image: Option<IgnoredAny>,
    #[allow(dead_code)]
    #[serde(default, skip_serializing)]
    outputs: Option<IgnoredAny>,
    #[allow(dead_code)]
    #[serde(default, skip_serializing)]
    resources: Option<IgnoredAny>,
}

/// An explicit environment entry of a step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvEntry {
    /// Variable name.
    pub name: String,
    /// Value; may contain `{{ extension.NAME.FIELD }}` expressions.
    #[serde(default)]
    pub value: String,
}

/// A step input (FuseML's `inputs:` entry). Other input fields (`codeset`, …) are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepInput {
    /// Input name; exported as the variable `FUSEML_<NAME>` (upper-cased, `-` → `_`).
    pub name: String,
    /// Value; may contain `{{ extension.NAME.FIELD }}` expressions.
    #[serde(default)]
    pub value: String,
}

impl StepInput {
    /// The environment variable this input is exported as.
    pub fn variable(&self) -> String {
        format!(
            "FUSEML_{}",
            self.name.to_ascii_uppercase().replace('-', "_")
        )
    }
}

/// One variable of a step environment, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    /// The value (secret if it came from credentials).
    pub value: ConfigValue,
    /// Where it came from, e.g. `extension artifact-store (mlflow-0001/mlflow-store, credentials default-s3-account)`.
    pub source: String,
}

/// The environment of a workflow step, and the resolutions behind it.
#[derive(Clone, Default)]
pub struct StepEnvironment {
    vars: BTreeMap<String, EnvVar>,
    resolutions: Vec<(String, Resolution)>,
}

impl fmt::Debug for StepEnvironment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.vars.iter().map(|(k, v)| (k, &v.value)))
            .finish()
    }
}

impl StepEnvironment {
    /// The value of one variable.
    pub fn get(&self, name: &str) -> Option<&ConfigValue> {
        self.vars.get(name).map(|v| &v.value)
    }

    /// All variables, sorted by name.
    pub fn vars(&self) -> &BTreeMap<String, EnvVar> {
        &self.vars
    }

    /// Number of variables.
    pub fn len(&self) -> usize {
        self.vars.len()
    }

    /// True when there are no variables.
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    /// The resolution of each selector, by selector name, in step order.
    pub fn resolutions(&self) -> &[(String, Resolution)] {
        &self.resolutions
    }

    /// `(name, value)` pairs in clear, for handing to a child process.
    pub fn exposed(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.value.expose()))
    }

    /// `NAME=VALUE` lines for people to read; secret values are `<hidden>`
    /// unless `secrets` is [`Secrets::Reveal`].
    ///
    /// Control characters in values are escaped (`\n` → `\u{a}`), so each
    /// variable stays on its own line; the text is not meant to be sourced
    /// by a shell: [`StepEnvironment::to_env_file`] is.
    pub fn to_lines(&self, secrets: Secrets) -> String {
        let mut out = String::new();
        for (name, var) in &self.vars {
            let value = match (secrets, &var.value) {
                (Secrets::Reveal, v) => v.expose().to_owned(),
                (Secrets::Hide, v) => v.to_string(),
            };
            out.push_str(name);
            out.push('=');
            for c in value.chars() {
                if c.is_control() {
                    out.extend(c.escape_unicode());
                } else {
                    out.push(c);
                }
            }
            out.push('\n');
        }
        out
    }

    /// The variables as an env file that both POSIX `sh` (`set -a; . ./FILE`)
    /// and `docker run --env-file FILE` read back exactly: one `NAME=VALUE`
    /// line each, sorted by name.
    ///
    /// A value is written as it is when it consists of printable ASCII
    /// characters other than the space and [`SHELL_SPECIAL`] (see
    /// [`is_env_file_safe`]); any other value (a newline, a blank, a quote,
    /// `$`, `~`, a control or non-ASCII character, …) cannot be
    /// written so that both read it the same, and is an
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) error naming
    /// the variable and where it came from (never the value). A secret value
    /// that is not revealed becomes the comment line `# NAME=<hidden> (secret)`,
    /// which both readers skip.
    pub fn to_env_file(&self, secrets: Secrets) -> Result<String> {
        let mut out = String::new();
        for (name, var) in &self.vars {
            if !is_valid_name(name) {
                return Err(Error::new(
                    crate::ErrorKind::Internal,
                    format!("variable name {} is not valid", crate::model::preview(name)),
                ));
            }
            if secrets == Secrets::Hide && var.value.is_secret() {
                out.push_str(&format!("# {name}=<hidden> (secret)\n"));
                continue;
            }
            let value = var.value.expose();
            if !is_env_file_safe(value) {
                let what = match &var.value {
                    ConfigValue::Secret(_) => "characters".to_owned(),
                    ConfigValue::Plain(v) => {
                        file::first_unsafe(v).unwrap_or_else(|| "characters".to_owned())
                    }
                };
                return Err(Error::invalid(format!(
                    "the value of {name} (from {}) contains {what} that `sh` and `docker --env-file` would read differently, so it cannot be written as an env-file line; only printable ASCII other than the space and {SHELL_SPECIAL} is written as it is. Pass the environment to the program directly instead (`inferlink exec`)",
                    var.source
                ))
                .with_context("variable", name.clone()));
            }
            out.push_str(name);
            out.push('=');
            out.push_str(value);
            out.push('\n');
        }
        Ok(out)
    }
}

fn valid_selector_name(s: &str) -> bool {
    is_config_key(s) && s.len() <= 100
}

impl WorkflowStep {
    /// Parses a step from YAML or JSON.
    pub fn parse(text: &str) -> Result<WorkflowStep> {
        let step: WorkflowStep = crate::format::parse_document(text)?;
        step.validate()?;
        Ok(step)
    }

    /// Checks selector names (required, unique, `[A-Za-z0-9_][A-Za-z0-9_-]*`) and env names.
    pub fn validate(&self) -> Result<()> {
        let mut seen = BTreeMap::new();
        for (i, sel) in self.extensions.iter().enumerate() {
            let path = format!("extensions[{i}].name");
            let name = sel.name.as_deref().unwrap_or("");
            if name.is_empty() {
                return Err(Error::invalid_at(
                    path,
                    "every selector of a step needs a name (used in {{ extension.NAME.… }})",
                ));
            }
            if !valid_selector_name(name) {
                return Err(Error::invalid_at(
                    path,
                    format!(
                        "{} is not a valid selector name: use letters, digits, '_' and '-'",
                        crate::model::preview(name)
                    ),
                ));
            }
            if let Some(first) = seen.insert(name, i) {
                return Err(Error::invalid_at(
                    path,
                    format!("selector name \"{name}\" is already used by extensions[{first}]"),
                ));
            }
        }
        for (field, i, variable, value) in self.explicit_vars() {
            if !is_valid_name(&variable) {
                let (name, what, rule) = match field {
                    "inputs" => (
                        &self.inputs[i].name,
                        "input",
                        "use letters, digits, '_' and '-'",
                    ),
                    _ => (
                        &self.env[i].name,
                        "variable",
                        "use letters, digits and '_', not starting with a digit",
                    ),
                };
                return Err(Error::invalid_at(
                    format!("{field}[{i}].name"),
                    format!(
                        "{} is not a valid {what} name: {rule}",
                        crate::model::preview(name)
                    ),
                ));
            }
            if value.contains('\0') {
                return Err(Error::invalid_at(
                    format!("{field}[{i}].value"),
                    "contains a NUL character",
                ));
            }
        }
        Ok(())
    }

    /// The step's explicit variables in the order they apply (later wins):
    /// inputs as `FUSEML_<NAME>`, then `env:` entries. Items are
    /// `(field, index, variable, value)`.
    fn explicit_vars(&self) -> impl Iterator<Item = (&'static str, usize, String, &str)> {
        let inputs = self.inputs.iter().enumerate();
        let env = self.env.iter().enumerate();
        inputs
            .map(|(i, x)| ("inputs", i, x.variable(), x.value.as_str()))
            .chain(env.map(|(i, e)| ("env", i, e.name.clone(), e.value.as_str())))
    }

    /// Builds the environment, resolving each selector with `resolve`.
    pub fn resolve_with(
        &self,
        mut resolve: impl FnMut(&Selector) -> Result<Resolution>,
    ) -> Result<StepEnvironment> {
        self.validate()?;
        let mut resolutions = Vec::with_capacity(self.extensions.len());
        for (i, sel) in self.extensions.iter().enumerate() {
            let found = resolve(sel).map_err(|e| e.with_path(format!("extensions[{i}]")))?;
            resolutions.push((sel.display_name().to_owned(), found));
        }
        let explicit: Vec<String> = self.explicit_vars().map(|(_, _, var, _)| var).collect();
        let mut vars: BTreeMap<String, EnvVar> = BTreeMap::new();
        for (index, (name, found)) in resolutions.iter().enumerate() {
            let source = describe(name, found);
            for (key, value) in found.configuration() {
                check_record_key(&key, index, name, found, &explicit)?;
                if explicit.contains(&key) && is_refused_from_records(&key) {
                    // The step sets it; the record's value is never used.
                    continue;
                }
                match vars.get(&key) {
                    Some(prev) if prev.value.expose() != value.expose() => {
                        if explicit.contains(&key) {
                            continue;
                        }
                        return Err(Error::invalid_at(
                            format!("extensions[{index}]"),
                            format!(
                                "variable {key} is set to different values by {} and by {source}; rename one with an explicit env: entry (e.g. value: '{{{{ extension.{name}.cfg.{key} }}}}')",
                                prev.source
                            ),
                        ));
                    }
                    Some(_) => {}
                    None => {
                        vars.insert(
                            key,
                            EnvVar {
                                value,
                                source: source.clone(),
                            },
                        );
                    }
                }
            }
        }
        for (field, i, variable, value) in self.explicit_vars() {
            let value = expand(value, &resolutions)
                .map_err(|e| e.with_path(format!("{field}[{i}].value")))?;
            vars.insert(
                variable,
                EnvVar {
                    value,
                    source: format!("{field}[{i}]"),
                },
            );
        }
        Ok(StepEnvironment { vars, resolutions })
    }
}

/// Refuses a record's configuration key that is not a valid variable name,
/// or that the loader or a shell acts on and the step does not set itself.
fn check_record_key(
    key: &str,
    index: usize,
    selector: &str,
    found: &Resolution,
    explicit: &[String],
) -> Result<()> {
    let record = &found.record().id;
    let error = |message: String| {
        Err(Error::invalid_at(format!("extensions[{index}]"), message)
            .with_context("record", record.clone())
            .with_context("key", key.to_owned()))
    };
    if !is_valid_name(key) {
        return error(format!(
            "record \"{record}\" has the configuration key {}, which is not a valid environment variable name (letters, digits and '_', not starting with a digit, at most {MAX_NAME_LEN} bytes); rename the key in the record",
            crate::model::preview(key)
        ));
    }
    if is_refused_from_records(key) && !explicit.iter().any(|e| e == key) {
        return error(format!(
            "record \"{record}\" sets {key}, which the dynamic loader, a shell or a language runtime acts on; such variables are never taken from records. If the step needs it, set it in the step's own env: (e.g. - name: {key}, value: '{{{{ extension.{selector}.cfg.{key} }}}}')"
        ));
    }
    Ok(())
}

fn describe(name: &str, found: &Resolution) -> String {
    let mut s = format!(
        "extension {name} ({}/{}",
        found.record().id,
        found.service().id
    );
    if let Some(c) = found.credentials() {
        s.push_str(&format!(", credentials {}", c.id));
    }
    s.push(')');
    s
}

/// Expands every `{{ … }}` expression in `text` against resolved selectors.
///
/// Errors give the byte offset of the expression in `text`.
pub fn expand(text: &str, resolutions: &[(String, Resolution)]) -> Result<ConfigValue> {
    let mut out = String::with_capacity(text.len());
    let mut secret = false;
    let mut rest = text;
    let mut offset = 0;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(Error::invalid(format!(
                "at byte {}: \"{{{{\" is not closed by \"}}}}\"",
                offset + start
            )));
        };
        let expr = after[..end].trim();
        let at = offset + start;
        let value = evaluate(expr, resolutions)
            .map_err(|why| Error::invalid(format!("at byte {at}: {{{{ {expr} }}}}: {why}")))?;
        secret |= value.is_secret();
        out.push_str(value.expose());
        let consumed = start + 2 + end + 2;
        rest = &rest[consumed..];
        offset += consumed;
    }
    out.push_str(rest);
    Ok(if secret {
        ConfigValue::Secret(Secret::new(out))
    } else {
        ConfigValue::Plain(out)
    })
}

fn evaluate(
    expr: &str,
    resolutions: &[(String, Resolution)],
) -> std::result::Result<ConfigValue, String> {
    let body = expr
        .strip_prefix("extension.")
        .or_else(|| expr.strip_prefix("extensions."))
        .ok_or_else(|| {
            "unknown expression: expected extension.NAME.FIELD (or extensions.NAME.FIELD)"
                .to_owned()
        })?;
    let (name, field) = body
        .split_once('.')
        .ok_or_else(|| "missing field: expected extension.NAME.FIELD".to_owned())?;
    let Some((_, found)) = resolutions.iter().find(|(n, _)| n == name) else {
        let known: Vec<&str> = resolutions.iter().map(|(n, _)| n.as_str()).collect();
        return Err(format!(
            "unknown extension selector \"{name}\" (this step has: {})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ));
    };
    if let Some(key) = field.strip_prefix("cfg.") {
        return found.config_value(key).ok_or_else(|| {
            let keys: Vec<String> = found.configuration().into_keys().collect();
            format!(
                "extension \"{name}\" has no configuration key \"{key}\" (it has: {})",
                if keys.is_empty() {
                    "none".to_owned()
                } else {
                    keys.join(", ")
                }
            )
        });
    }
    let record = found.record();
    let service = found.service();
    let plain = |s: &str| Ok(ConfigValue::Plain(s.to_owned()));
    match field {
        "url" => plain(&found.endpoint().url),
        "version" => plain(&record.version),
        "zone" => plain(&record.zone),
        "product" => plain(&record.product),
        "id" => plain(&record.id),
        "service_id" => plain(&service.id),
        "service_resource" => plain(&service.resource),
        "service_category" => plain(&service.category),
        "endpoint_type" => plain(found.endpoint().endpoint_type.as_str()),
        other => Err(format!(
            "unknown field \"{other}\": use cfg.KEY, url, version, zone, product, id, service_id, service_resource, service_category or endpoint_type"
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::StoredRecord;
    use crate::{Consumer, ErrorKind};

    /// A record `hostile` whose s3 service sets `KEY: VALUE` and a secret `TOKEN`.
    fn records_with(key: &str, value: &str) -> Vec<Arc<StoredRecord>> {
        let yaml = format!(
            r#"
id: hostile
product: minio
services:
  - id: s3
    resource: s3
    configuration:
      {key}: {value:?}
    credentials:
      - id: cred
        scope: global
        configuration:
          TOKEN: 'tok"en'
    endpoints:
      - url: http://minio:9000
"#
        );
        crate::format::parse_records(&yaml)
            .unwrap()
            .into_iter()
            .map(|record| {
                Arc::new(StoredRecord {
                    record,
                    revision: Default::default(),
                })
            })
            .collect()
    }

    fn environment(records: &[Arc<StoredRecord>], step: &str) -> Result<StepEnvironment> {
        let step = WorkflowStep::parse(step)?;
        step.resolve_with(|sel| crate::resolve::resolve_in(records, sel, &Consumer::anywhere()))
    }

    const STEP: &str = "extensions:\n  - name: store\n    service_resource: s3\n";

    #[test]
    fn a_record_cannot_set_path_or_ld_preload() {
        for key in [
            "PATH",
            "LD_PRELOAD",
            "Path",
            "PYTHONPATH",
            "BASH_ENV",
            "GIT_SSH_COMMAND",
        ] {
            let records = records_with(key, "/tmp/x");
            let err = environment(&records, STEP).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{key}: {err}");
            assert_eq!(err.context("record"), Some("hostile"), "{err}");
            assert_eq!(err.context("key"), Some(key), "{err}");
            assert!(err.message().contains("never taken from records"), "{err}");
            assert!(!err.to_string().contains("/tmp/x"), "{err}");
        }
    }

    #[test]
    fn the_step_may_set_a_refused_name_itself() {
        let records = records_with("PATH", "/tmp/x");
        let copied = format!(
            "{STEP}env:\n  - name: PATH\n    value: '{{{{ extension.store.cfg.PATH }}}}:/usr/bin'\n"
        );
        let env = environment(&records, &copied).unwrap();
        assert_eq!(env.get("PATH").unwrap().expose(), "/tmp/x:/usr/bin");
        let own = format!("{STEP}env:\n  - name: PATH\n    value: /usr/bin\n");
        let env = environment(&records, &own).unwrap();
        assert_eq!(env.get("PATH").unwrap().expose(), "/usr/bin");
    }

    #[test]
    fn a_record_key_that_is_not_a_variable_name_is_refused() {
        let records = records_with("9BAD-NAME", "x");
        let err = environment(&records, STEP).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(err.context("key"), Some("9BAD-NAME"));
        assert!(
            err.message()
                .contains("not a valid environment variable name"),
            "{err}"
        );
        let records = records_with("model-name", "x");
        assert!(environment(&records, STEP).is_err());
    }

    #[test]
    fn env_file_refuses_a_value_that_would_forge_a_line() {
        let records = records_with("NOTE", "safe\nLD_PRELOAD=/tmp/evil.so");
        let env = environment(&records, STEP).unwrap();
        let err = env.to_env_file(Secrets::Hide).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(err.context("variable"), Some("NOTE"));
        assert!(err.message().contains("a newline"), "{err}");
        assert!(err.message().contains("hostile"), "names the source: {err}");
        assert!(!err.to_string().contains("evil"), "{err}");
        // The human listing keeps one variable per line.
        let lines = env.to_lines(Secrets::Reveal);
        assert_eq!(lines.lines().count(), 2, "{lines}");
        assert!(
            lines.contains("NOTE=safe\\u{a}LD_PRELOAD=/tmp/evil.so"),
            "{lines}"
        );
    }

    #[test]
    fn env_file_hides_secrets_as_comments_and_refuses_unsafe_revealed_ones() {
        let records = records_with("URL", "http://minio:9000/a");
        let env = environment(&records, STEP).unwrap();
        assert_eq!(
            env.to_env_file(Secrets::Hide).unwrap(),
            "# TOKEN=<hidden> (secret)\nURL=http://minio:9000/a\n"
        );
        let err = env.to_env_file(Secrets::Reveal).unwrap_err();
        assert_eq!(err.context("variable"), Some("TOKEN"));
        assert!(
            !err.to_string().contains("tok"),
            "no part of the secret: {err}"
        );
    }
}
