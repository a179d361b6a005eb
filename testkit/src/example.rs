//! The start every connector example shares, written once: a host
//! application's steps from one extension record to a connector.
//!
//! Each example keeps its record in a YAML file beside it
//! (`connectors/<crate>/examples/<example>.yaml`), a record a user can copy
//! and register as it is. The file's `{name}` placeholders (the endpoint
//! URL, a protocol word, …) are filled with [`fill_record`] from the
//! example's arguments or environment; [`connect_example`] fills, registers,
//! resolves and connects in one call.

use std::sync::Arc;

use inferlink::{
    ConnectorFactory, Connectors, Consumer, Error, ErrorKind, InferenceConnector, MemoryStore,
    Registry, Resolution, Result, Selector,
};

/// The service category every example record declares and
/// [`connect_example`] resolves.
pub const EXAMPLE_CATEGORY: &str = "prediction-serving";

/// What [`connect_record`] set up: the registry holding the record, the
/// record's resolution, and the connector built from it.
#[derive(Debug)]
pub struct ExampleConnection {
    /// An in-memory registry holding the example's record.
    pub registry: Registry,
    /// The resolution of the example's selector.
    pub resolution: Resolution,
    /// The connector the factory built from the resolution.
    pub connector: Arc<dyn InferenceConnector>,
}

/// Does what a host application does with a record: registers
/// `record_yaml` in an in-memory registry, resolves `selector` for any
/// consumer, connects through `factory`, and prints which vendor, protocol
/// and endpoint it connected to.
pub async fn connect_record(
    record_yaml: &str,
    selector: &Selector,
    factory: impl ConnectorFactory + 'static,
) -> Result<ExampleConnection> {
    let registry = Registry::open(MemoryStore::new()).await?;
    registry.register_yaml(record_yaml).await?;
    let resolution = registry.resolve(selector, &Consumer::anywhere())?;
    let connector = Connectors::new().with(factory).connect(&resolution).await?;
    let info = connector.info();
    println!(
        "connected: {} over {} at {}",
        info.vendor, info.protocol, info.endpoint
    );
    Ok(ExampleConnection {
        registry,
        resolution,
        connector,
    })
}

/// Fills the `{name}` placeholders of a record template (an example's
/// YAML file) with `values`.
///
/// A placeholder is `{` + lower-case letters, digits or `_` + `}`; other
/// braces are left alone. A placeholder without a value, a value that no
/// placeholder uses, and a value holding a line break (it could add keys to
/// the record) are [`ErrorKind::Config`] errors naming the placeholder.
pub fn fill_record<V: AsRef<str>>(template: &str, values: &[(&str, V)]) -> Result<String> {
    let mut used = vec![false; values.len()];
    let mut filled = String::with_capacity(template.len());
    let mut rest = template;
    while let Some((before, name, after)) = next_placeholder(rest) {
        filled.push_str(before);
        let Some(index) = values.iter().position(|(key, _)| *key == name) else {
            return Err(placeholder_error(name, "has no value"));
        };
        let value = values[index].1.as_ref();
        if value.contains(['\n', '\r']) {
            return Err(placeholder_error(name, "has a value with a line break"));
        }
        used[index] = true;
        filled.push_str(value);
        rest = after;
    }
    filled.push_str(rest);
    if let Some(index) = used.iter().position(|used| !used) {
        return Err(placeholder_error(values[index].0, "is not in the record"));
    }
    Ok(filled)
}

/// The names of a record template's `{name}` placeholders, in order of
/// first use (what [`fill_record`] needs a value for).
pub fn record_placeholders(template: &str) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    let mut rest = template;
    while let Some((_, name, after)) = next_placeholder(rest) {
        if !names.contains(&name) {
            names.push(name);
        }
        rest = after;
    }
    names
}

/// The first placeholder of `text`: the text before it, its name, and the
/// text after it.
fn next_placeholder(text: &str) -> Option<(&str, &str, &str)> {
    let mut searched = 0;
    while let Some(open) = text[searched..].find('{').map(|i| searched + i) {
        let after = &text[open + 1..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(after.len());
        if name_len > 0 && after[name_len..].starts_with('}') {
            return Some((&text[..open], &after[..name_len], &after[name_len + 1..]));
        }
        searched = open + 1;
    }
    None
}

fn placeholder_error(name: &str, why: &str) -> Error {
    Error::new(
        ErrorKind::Config,
        format!("example record placeholder {{{name}}} {why}"),
    )
    .with_path(name)
}

/// [`fill_record`] then [`connect_record`], resolving the service category
/// [`EXAMPLE_CATEGORY`]: an example's record file to a connector (use
/// [`connect_record`] when the example needs the registry or resolution).
pub async fn connect_example<V: AsRef<str>>(
    template: &str,
    values: &[(&str, V)],
    factory: impl ConnectorFactory + 'static,
) -> Result<Arc<dyn InferenceConnector>> {
    let record = fill_record(template, values)?;
    let selector = Selector::category(EXAMPLE_CATEGORY);
    Ok(connect_record(&record, &selector, factory).await?.connector)
}

#[cfg(test)]
mod tests {
    use super::*;
    use inferlink::{ConnectTarget, ConnectorInfo, Health, async_trait};

    /// A factory whose connectors answer `health` only (nothing to serve).
    #[derive(Debug)]
    struct ProbeFactory;

    #[derive(Debug)]
    struct Probe(ConnectorInfo);

    #[async_trait]
    impl InferenceConnector for Probe {
        fn info(&self) -> &ConnectorInfo {
            &self.0
        }

        async fn health(&self) -> Result<Health> {
            Ok(Health::SERVING)
        }
    }

    #[async_trait]
    impl ConnectorFactory for ProbeFactory {
        fn vendor(&self) -> &str {
            "probe"
        }

        fn products(&self) -> &[&str] {
            &["probe"]
        }

        async fn connect(&self, target: &ConnectTarget) -> Result<Arc<dyn InferenceConnector>> {
            Ok(Arc::new(Probe(ConnectorInfo::new(
                "probe",
                "none",
                &target.url,
            ))))
        }
    }

    #[tokio::test]
    async fn a_record_becomes_a_connector() {
        let yaml = r#"
id: probe-example
product: probe
version: "1"
services:
  - id: api
    resource: probe
    category: prediction-serving
    endpoints:
      - url: http://127.0.0.1:9
"#;
        let c = connect_record(
            yaml,
            &Selector::category("prediction-serving"),
            ProbeFactory,
        )
        .await
        .unwrap();
        assert_eq!(c.connector.info().vendor, "probe");
        assert_eq!(c.connector.info().endpoint, "http://127.0.0.1:9");
        assert_eq!(c.resolution.target().url, "http://127.0.0.1:9");
        assert!(c.registry.get("probe-example").is_some());
        let missing = connect_record(yaml, &Selector::category("nothing-here"), ProbeFactory).await;
        assert!(missing.is_err());
    }

    #[test]
    fn placeholders_are_filled_and_other_braces_kept() {
        let filled = fill_record(
            "url: {url}\nprotocol: {protocol}\nmap: {a: 1}\nagain: {url}\n",
            &[("url", "http://127.0.0.1:9"), ("protocol", "v2")],
        )
        .unwrap();
        assert_eq!(
            filled,
            "url: http://127.0.0.1:9\nprotocol: v2\nmap: {a: 1}\nagain: http://127.0.0.1:9\n"
        );
    }

    #[test]
    fn placeholders_are_listed_once_in_order() {
        let names = record_placeholders("a: {url}\nb: {a: 1}\nc: {api}-{url}{\n");
        assert_eq!(names, ["url", "api"]);
    }

    #[test]
    fn a_missing_unused_or_multi_line_value_is_refused() {
        /// Placeholder values, the placeholder the refusal names, and why.
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
        let cases: [Case; 3] = [
            (&[], "url", "has no value"),
            (
                &[("url", "u"), ("prtocol", "v1")],
                "prtocol",
                "is not in the record",
            ),
            (&[("url", "u\nextra: key")], "url", "line break"),
        ];
        let template = "url: {url}";
        for (values, path, why) in cases {
            let e = fill_record(template, values).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{template} {values:?}");
            assert_eq!(e.path(), Some(path), "{template} {values:?}");
            assert!(e.to_string().contains(why), "{template} {values:?}: {e}");
        }
    }

    #[tokio::test]
    async fn an_example_record_file_becomes_a_connector() {
        let template = "id: probe-file\nproduct: probe\nversion: \"1\"\nservices:\n  - id: api\n    resource: probe\n    category: prediction-serving\n    endpoints:\n      - url: {url}\n";
        let connector = connect_example(template, &[("url", "http://127.0.0.1:9")], ProbeFactory)
            .await
            .unwrap();
        assert_eq!(connector.info().endpoint, "http://127.0.0.1:9");
        assert_eq!(connector.info().vendor, "probe");
        let unfilled = connect_example::<&str>(template, &[], ProbeFactory)
            .await
            .unwrap_err();
        assert_eq!(unfilled.kind(), ErrorKind::Config);
    }
}
