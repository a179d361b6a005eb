//! Templates: request bodies, paths, queries and headers filled from a
//! call's parameters and the record's configuration.
//!
//! Two forms, both data:
//!
//! * **Body templates** are JSON values (written in YAML or JSON). A
//!   string that is exactly `${name}` is a *placeholder*: it is replaced by
//!   the parameter's JSON value (an array of texts, a number, an object), as
//!   a value, never as text. Whatever a text holds (quotes, braces, `${…}`)
//!   it stays one JSON string. A placeholder whose value is absent (an
//!   optional parameter the call did not set) removes its object member or
//!   array element. A `${` anywhere else in a body string is refused: bodies
//!   never splice text.
//! * **Text templates** (paths, query values, header values) interpolate
//!   `${name}` inside a string. In a path each value is percent-encoded as
//!   one segment (a `/` or `?` in a model name cannot leave it); header
//!   values must be visible ASCII.
//!
//! Names are a call parameter (`texts`, `query`, `model`, …; each action
//! has its own list), `config.KEY` (a configuration key the blueprint
//! declares) or `credentials.KEY` (the same, for a key declared `secret`).

use std::collections::BTreeSet;

use inferlink_core::{Error, Result};
use serde_json::{Map, Value};

/// Most nodes (values) in one body template.
const MAX_NODES: usize = 10_000;

/// What a placeholder names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ref {
    /// A call parameter (`texts`, `model`, …).
    Param(String),
    /// A configuration key the blueprint declares (`config.KEY`, `credentials.KEY`).
    Config {
        /// The key.
        key: String,
        /// Written as `credentials.KEY`: the key must be a secret.
        credential: bool,
    },
}

impl Ref {
    /// Parses the inside of `${…}`.
    fn parse(name: &str) -> Result<Ref> {
        let (key, config, credential) = match name.split_once('.') {
            Some(("config", key)) => (key, true, false),
            Some(("credentials", key)) => (key, true, true),
            Some(_) => {
                return Err(Error::invalid(format!(
                    "`${{{}}}`: a name is a parameter, config.KEY or credentials.KEY",
                    shown(name)
                )));
            }
            None => (name, false, false),
        };
        if !crate::spec::is_word(key, b'_') {
            return Err(Error::invalid(format!(
                "`${{{}}}`: names are lower-case letters, digits and `_`",
                shown(name)
            )));
        }
        Ok(if config {
            Ref::Config {
                key: key.to_owned(),
                credential,
            }
        } else {
            Ref::Param(key.to_owned())
        })
    }

    /// The name as written inside `${…}`.
    pub fn name(&self) -> String {
        match self {
            Ref::Param(p) => p.clone(),
            Ref::Config {
                key,
                credential: false,
            } => format!("config.{key}"),
            Ref::Config {
                key,
                credential: true,
            } => format!("credentials.{key}"),
        }
    }
}

/// Where a placeholder's values come from while rendering.
pub trait Values {
    /// The value of `r`, `None` when absent.
    fn value(&self, r: &Ref) -> Option<Value>;
}

/// A body template: a JSON value with placeholders.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyTemplate {
    /// A value sent as written.
    Literal(Value),
    /// A placeholder.
    Hole(Ref),
    /// An array, element by element.
    Array(Vec<BodyTemplate>),
    /// An object, member by member (in the written order).
    Object(Vec<(String, BodyTemplate)>),
    /// `{"$each": "${list}", "$item": …}`: one rendered `$item` per
    /// element of the list, the element bound to `${item}`.
    Each {
        /// The list walked.
        list: Ref,
        /// The template of one element.
        item: Box<BodyTemplate>,
    },
}

/// The parameter an `$each` binds to the current element.
pub const ITEM: &str = "item";

impl BodyTemplate {
    /// Compiles a JSON value. Errors are `InvalidInput` with the path of the
    /// offending member (`input`, `messages[0].content`).
    pub fn compile(value: &Value) -> Result<BodyTemplate> {
        let mut nodes = 0;
        compile_at(value, "", &mut nodes, 0)
    }

    /// Every placeholder, each with the path where it sits.
    pub fn refs(&self) -> Vec<(String, Ref)> {
        let mut out = Vec::new();
        self.collect("", &mut out);
        out
    }

    fn collect(&self, at: &str, out: &mut Vec<(String, Ref)>) {
        match self {
            BodyTemplate::Literal(_) => {}
            BodyTemplate::Hole(r) => out.push((at.to_owned(), r.clone())),
            BodyTemplate::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    item.collect(&format!("{at}[{i}]"), out);
                }
            }
            BodyTemplate::Object(members) => {
                for (name, member) in members {
                    member.collect(&join(at, name), out);
                }
            }
            BodyTemplate::Each { list, item } => {
                out.push((join(at, "$each"), list.clone()));
                let mut inner = Vec::new();
                item.collect(&join(at, "$item"), &mut inner);
                out.extend(
                    inner
                        .into_iter()
                        .filter(|(_, r)| *r != Ref::Param(ITEM.to_owned())),
                );
            }
        }
    }

    /// The value with every placeholder replaced; an absent value drops its
    /// member or element (`None` when the whole template is one absent placeholder).
    pub fn render(&self, values: &dyn Values) -> Option<Value> {
        match self {
            BodyTemplate::Literal(v) => Some(v.clone()),
            BodyTemplate::Hole(r) => values.value(r),
            BodyTemplate::Array(items) => Some(Value::Array(
                items.iter().filter_map(|i| i.render(values)).collect(),
            )),
            BodyTemplate::Object(members) => {
                let mut map = Map::new();
                for (name, member) in members {
                    if let Some(v) = member.render(values) {
                        map.insert(name.clone(), v);
                    }
                }
                Some(Value::Object(map))
            }
            BodyTemplate::Each { list, item } => {
                let Value::Array(elements) = values.value(list)? else {
                    return None;
                };
                let rendered = elements
                    .into_iter()
                    .filter_map(|element| {
                        item.render(&Bound {
                            element,
                            outer: values,
                        })
                    })
                    .collect();
                Some(Value::Array(rendered))
            }
        }
    }
}

/// The values inside an `$each`: `${item}` is the current element.
struct Bound<'a> {
    element: Value,
    outer: &'a dyn Values,
}

impl Values for Bound<'_> {
    fn value(&self, r: &Ref) -> Option<Value> {
        match r {
            Ref::Param(name) if name == ITEM => Some(self.element.clone()),
            other => self.outer.value(other),
        }
    }
}

fn join(at: &str, name: &str) -> String {
    if at.is_empty() {
        name.to_owned()
    } else {
        format!("{at}.{name}")
    }
}

fn compile_at(value: &Value, at: &str, nodes: &mut usize, eaches: usize) -> Result<BodyTemplate> {
    *nodes += 1;
    if *nodes > MAX_NODES {
        return Err(Error::invalid(format!(
            "a body template has more than {MAX_NODES} values"
        )));
    }
    Ok(match value {
        Value::String(text) => match whole_placeholder(text) {
            Some(name) => {
                let r = Ref::parse(name).map_err(|e| e.with_path(at.to_owned()))?;
                if eaches == 0 && r == Ref::Param(ITEM.to_owned()) {
                    return Err(Error::invalid_at(
                        at.to_owned(),
                        "`${item}` is bound only inside an `$item`",
                    ));
                }
                BodyTemplate::Hole(r)
            }
            None if text.contains("${") => {
                return Err(Error::invalid_at(
                    at.to_owned(),
                    "a placeholder must be the whole string (`\"${name}\"`): bodies never splice text",
                ));
            }
            None => BodyTemplate::Literal(value.clone()),
        },
        Value::Array(items) => BodyTemplate::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| compile_at(item, &format!("{at}[{i}]"), nodes, eaches))
                .collect::<Result<_>>()?,
        ),
        Value::Object(members) if members.contains_key("$each") => {
            let list = members
                .get("$each")
                .and_then(|v| v.as_str())
                .and_then(whole_placeholder);
            let (Some(list), Some(item), 2) = (list, members.get("$item"), members.len()) else {
                let why =
                    "an `$each` object is exactly {\"$each\": \"${list}\", \"$item\": template}";
                return Err(Error::invalid_at(at.to_owned(), why));
            };
            let list = Ref::parse(list).map_err(|e| e.with_path(join(at, "$each")))?;
            let item = compile_at(item, &join(at, "$item"), nodes, eaches + 1)?;
            BodyTemplate::Each {
                list,
                item: Box::new(item),
            }
        }
        Value::Object(members) => BodyTemplate::Object(
            members
                .iter()
                .map(|(name, member)| {
                    Ok((
                        name.clone(),
                        compile_at(member, &join(at, name), nodes, eaches)?,
                    ))
                })
                .collect::<Result<_>>()?,
        ),
        other => BodyTemplate::Literal(other.clone()),
    })
}

/// `name` when `text` is exactly `${name}`.
fn whole_placeholder(text: &str) -> Option<&str> {
    let inside = text.strip_prefix("${")?.strip_suffix('}')?;
    (!inside.contains(['{', '}', '$'])).then_some(inside)
}

/// How an interpolated value is written into its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Percent-encoded as one path segment (only `A-Z a-z 0-9 - . _ ~` stay).
    PathSegment,
    /// As is (query values are encoded by the transport; header values are
    /// checked to be visible ASCII when sent).
    Plain,
}

/// A piece of a text template.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Hole(Ref),
}

/// A text template: literal text with `${name}` placeholders.
#[derive(Debug, Clone, PartialEq)]
pub struct TextTemplate {
    pieces: Vec<Piece>,
}

impl TextTemplate {
    /// Parses `text`; an unclosed `${` or a bad name is `InvalidInput`.
    pub fn parse(text: &str) -> Result<TextTemplate> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                pieces.push(Piece::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or_else(|| {
                Error::invalid(format!("{:?}: a `${{` without `}}`", shown(text)))
            })?;
            pieces.push(Piece::Hole(Ref::parse(&after[..end])?));
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(TextTemplate { pieces })
    }

    /// The literal parts, joined (for checks on what the author wrote).
    pub fn literal_text(&self) -> String {
        let mut text = String::new();
        for piece in &self.pieces {
            if let Piece::Text(literal) = piece {
                text.push_str(literal);
            }
        }
        text
    }

    /// Every placeholder.
    pub fn refs(&self) -> BTreeSet<Ref> {
        let hole = |piece: &Piece| match piece {
            Piece::Hole(r) => Some(r.clone()),
            Piece::Text(_) => None,
        };
        self.pieces.iter().filter_map(hole).collect()
    }

    /// The text with every placeholder written in `encoding`; `None` when
    /// a value is absent. A value that is an array, object or null is an
    /// `InvalidInput` error naming the placeholder.
    pub fn render(&self, values: &dyn Values, encoding: Encoding) -> Result<Option<String>> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Hole(r) => {
                    let Some(value) = values.value(r) else {
                        return Ok(None);
                    };
                    let text = match &value {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        _ => {
                            return Err(Error::invalid_at(
                                r.name(),
                                "only a text, number or boolean can be put in a path or header",
                            ));
                        }
                    };
                    match encoding {
                        Encoding::Plain => out.push_str(&text),
                        Encoding::PathSegment => percent_encode_segment(&text, &mut out),
                    }
                }
            }
        }
        Ok(Some(out))
    }
}

/// Writes `text` percent-encoded so that it stays one path segment.
fn percent_encode_segment(text: &str, out: &mut String) {
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
}

/// At most 64 printable characters of `text`, for messages.
fn shown(text: &str) -> String {
    inferlink_core::error::printable(text.to_owned(), 64)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    struct Map(BTreeMap<String, Value>);

    impl Values for Map {
        fn value(&self, r: &Ref) -> Option<Value> {
            self.0.get(&r.name()).cloned()
        }
    }

    fn values(pairs: &[(&str, Value)]) -> Map {
        Map(pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect())
    }

    #[test]
    fn placeholders_are_replaced_by_values_and_absent_ones_drop_out() {
        let t = BodyTemplate::compile(&json!({
            "model": "${model}", "input": "${texts}", "dimensions": "${dimensions}",
            "fixed": ["float", "${normalize}"], "n": 3
        }))
        .unwrap();
        let v = values(&[("model", json!("m")), ("texts", json!(["a", "b"]))]);
        let body = t.render(&v).unwrap();
        assert_eq!(
            body,
            json!({"model": "m", "input": ["a", "b"], "fixed": ["float"], "n": 3})
        );
        let names: Vec<String> = t
            .refs()
            .into_iter()
            .map(|(at, r)| format!("{at}={}", r.name()))
            .collect();
        assert_eq!(
            names,
            [
                "dimensions=dimensions",
                "fixed[1]=normalize",
                "input=texts",
                "model=model"
            ]
        );
    }

    #[test]
    fn each_builds_one_object_per_element() {
        let t = BodyTemplate::compile(&json!({
            "instances": {"$each": "${texts}", "$item": {"content": "${item}", "task": "${config.task}"}}
        }))
        .unwrap();
        let v = values(&[
            ("texts", json!(["a\"}", "${config.task}"])),
            ("config.task", json!("Q")),
        ]);
        let body = t.render(&v).unwrap();
        let want = json!({"instances": [{"content": "a\"}", "task": "Q"}, {"content": "${config.task}", "task": "Q"}]});
        assert_eq!(body, want);
        let names: Vec<String> = t.refs().into_iter().map(|(_, r)| r.name()).collect();
        assert_eq!(names, ["texts", "config.task"]);
        assert!(BodyTemplate::compile(&json!({"a": "${item}"})).is_err());
        assert!(BodyTemplate::compile(&json!({"$each": "${texts}"})).is_err());
    }

    #[test]
    fn splicing_in_a_body_is_refused_with_its_path() {
        for bad in [
            json!({"a": {"b": "Bearer ${config.key}"}}),
            json!({"a": {"b": "${x"}}),
        ] {
            let e = BodyTemplate::compile(&bad).unwrap_err();
            assert_eq!(e.path(), Some("a.b"), "{e}");
        }
        let e = BodyTemplate::compile(&json!({"a": ["${Bad-Name}"]})).unwrap_err();
        assert_eq!(e.path(), Some("a[0]"), "{e}");
        assert!(BodyTemplate::compile(&json!({"a": "${other.x}"})).is_err());
    }

    #[test]
    fn path_values_stay_one_segment() {
        let t = TextTemplate::parse("models/${model}:predict").unwrap();
        let v = values(&[("model", json!("../a/b?c=d#e f"))]);
        let path = t.render(&v, Encoding::PathSegment).unwrap().unwrap();
        assert_eq!(path, "models/..%2Fa%2Fb%3Fc%3Dd%23e%20f:predict");
        assert_eq!(t.render(&values(&[]), Encoding::Plain).unwrap(), None);
        let header = TextTemplate::parse("Bearer ${credentials.api_key}").unwrap();
        assert_eq!(header.literal_text(), "Bearer ");
        let v = values(&[("credentials.api_key", json!("k"))]);
        assert_eq!(
            header.render(&v, Encoding::Plain).unwrap().unwrap(),
            "Bearer k"
        );
        let v = values(&[("credentials.api_key", json!(["k"]))]);
        assert!(header.render(&v, Encoding::Plain).is_err());
        assert!(TextTemplate::parse("a/${b").is_err());
    }
}
