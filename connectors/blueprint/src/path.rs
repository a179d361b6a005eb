//! Response paths: where a value sits in a JSON answer.
//!
//! A path is a dotted list of steps, each an object member name, an array
//! position in brackets, or `[*]` (every element of an array):
//!
//! | path | selects |
//! |---|---|
//! | `` (empty) or `$` | the whole answer |
//! | `usage.prompt_tokens` | a member of a member |
//! | `choices[0].message.content` | a member of the first array element |
//! | `data[*].embedding` | the `embedding` of every element of `data` |
//! | `[*]` | every element of an answer that is an array |
//!
//! A path holds at most one `[*]` and at most [`MAX_STEPS`] steps; names
//! are letters, digits and `_ - $ @`. There is no filter, no recursion and
//! no function: a path only walks down. Paths are checked when a blueprint
//! is read, so a wrong path is a configuration error naming it, and a
//! missing or mistyped value in an answer is a typed protocol error, never
//! a panic.

use std::fmt;

use inferlink_core::kit::json_kind as kind;
use inferlink_core::{Error, ErrorKind, Result};
use serde_json::Value;

/// Most steps in one path.
pub const MAX_STEPS: usize = 32;

/// One step down into a JSON value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// An object member.
    Member(String),
    /// An array element.
    Position(usize),
    /// Every array element (at most one per path).
    Every,
}

/// A checked response path.
#[derive(Clone, PartialEq, Eq)]
pub struct ResponsePath {
    text: String,
    steps: Vec<Step>,
}

impl fmt::Debug for ResponsePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResponsePath({:?})", self.text)
    }
}

impl fmt::Display for ResponsePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// What a path selects in an answer.
#[derive(Debug)]
pub enum Selected<'a> {
    /// A path without `[*]`: one value.
    One(&'a Value),
    /// A path with `[*]`: one value per element of the array it crosses.
    Many(Vec<&'a Value>),
}

impl ResponsePath {
    /// Parses `text`; a malformed path is an `InvalidInput` error saying
    /// where (the caller adds the blueprint location).
    pub fn parse(text: &str) -> Result<ResponsePath> {
        let bad = |why: String| Error::invalid(format!("path {:?}: {why}", short(text)));
        let mut steps = Vec::new();
        let body = text.trim();
        let body = body.strip_prefix('$').unwrap_or(body);
        let mut rest = body.strip_prefix('.').unwrap_or(body);
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('[') {
                let close = after
                    .find(']')
                    .ok_or_else(|| bad("a `[` without `]`".into()))?;
                let inside = &after[..close];
                if inside == "*" {
                    steps.push(Step::Every);
                } else if !inside.is_empty()
                    && inside.len() <= 9
                    && inside.bytes().all(|b| b.is_ascii_digit())
                {
                    steps.push(Step::Position(
                        inside.parse().map_err(|_| bad("bad position".into()))?,
                    ));
                } else {
                    return Err(bad(format!(
                        "`[{}]` is neither a position nor `[*]`",
                        short(inside)
                    )));
                }
                rest = &after[close + 1..];
            } else {
                let end = rest.find(['.', '[']).unwrap_or(rest.len());
                let name = &rest[..end];
                let name_char = |c: char| c.is_ascii_alphanumeric() || "_-$@".contains(c);
                if name.is_empty() || !name.chars().all(name_char) {
                    return Err(bad(format!("{:?} is not a member name", short(name))));
                }
                steps.push(Step::Member(name.to_owned()));
                rest = &rest[end..];
            }
            if let Some(after) = rest.strip_prefix('.') {
                if after.is_empty() || after.starts_with(['.', '[']) {
                    return Err(bad("an empty step".into()));
                }
                rest = after;
            } else if !rest.is_empty() && !rest.starts_with('[') {
                return Err(bad("steps are separated by `.`".into()));
            }
            if steps.len() > MAX_STEPS {
                return Err(bad(format!("more than {MAX_STEPS} steps")));
            }
        }
        if steps.iter().filter(|s| **s == Step::Every).count() > 1 {
            return Err(bad("at most one `[*]`".into()));
        }
        Ok(ResponsePath {
            text: text.trim().to_owned(),
            steps,
        })
    }

    /// True when the path has a `[*]` (it selects one value per element).
    pub fn is_many(&self) -> bool {
        self.steps.contains(&Step::Every)
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The values the path selects in `answer`. A missing member or element,
    /// or a step into a value of the wrong type, is a `Protocol` error
    /// naming the path; a `[*]` over more than `max_items` elements too
    /// (checked before anything is collected).
    pub fn select<'a>(&self, answer: &'a Value, max_items: usize) -> Result<Selected<'a>> {
        let Some(split) = self.steps.iter().position(|s| *s == Step::Every) else {
            return self.walk(answer, &self.steps).map(Selected::One);
        };
        let array = match self.walk(answer, &self.steps[..split])? {
            Value::Array(items) => items,
            other => {
                return Err(self.mismatch(&format!("{} instead of an array at [*]", kind(other))));
            }
        };
        if array.len() > max_items {
            let why = format!(
                "{} elements at [*], more than the {max_items} expected",
                array.len()
            );
            return Err(self.mismatch(&why));
        }
        let tail = &self.steps[split + 1..];
        let mut values = Vec::with_capacity(array.len());
        for (i, item) in array.iter().enumerate() {
            values.push(
                self.walk(item, tail)
                    .map_err(|e| e.with_context("element", i.to_string()))?,
            );
        }
        Ok(Selected::Many(values))
    }

    /// The value the path selects, `None` when it is missing or `null`
    /// (for optional fields such as usage). A path with `[*]` is never optional.
    pub fn select_optional<'a>(&self, answer: &'a Value) -> Option<&'a Value> {
        if self.is_many() {
            return None;
        }
        self.walk(answer, &self.steps).ok().filter(|v| !v.is_null())
    }

    fn walk<'a>(&self, mut value: &'a Value, steps: &[Step]) -> Result<&'a Value> {
        for step in steps {
            value = match (step, value) {
                (Step::Member(name), Value::Object(map)) => map
                    .get(name)
                    .ok_or_else(|| self.mismatch(&format!("no member {name:?}")))?,
                (Step::Position(i), Value::Array(items)) => items.get(*i).ok_or_else(|| {
                    self.mismatch(&format!("no element [{i}] in {} elements", items.len()))
                })?,
                (Step::Member(name), other) => {
                    return Err(self.mismatch(&format!(
                        "{} where member {name:?} was expected",
                        kind(other)
                    )));
                }
                (_, other) => {
                    return Err(
                        self.mismatch(&format!("{} where an array was expected", kind(other)))
                    );
                }
            };
        }
        Ok(value)
    }

    /// A `Protocol` error about this path in an answer.
    pub fn mismatch(&self, why: &str) -> Error {
        Error::new(
            ErrorKind::Protocol,
            format!(
                "the answer does not fit the blueprint's path {:?}: {why}",
                self.text
            ),
        )
        .with_path(self.text.clone())
    }
}

/// At most 64 characters of `text`, for messages.
fn short(text: &str) -> String {
    inferlink_core::error::printable(text.to_owned(), 64)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn paths_select_members_positions_and_every_element() {
        let answer = json!({"data": [{"e": [1]}, {"e": [2]}], "usage": {"n": 3}, "c": [[5]]});
        let p = ResponsePath::parse("data[*].e").unwrap();
        match p.select(&answer, 10).unwrap() {
            Selected::Many(v) => assert_eq!(v, vec![&json!([1]), &json!([2])]),
            other => panic!("{other:?}"),
        }
        let n = ResponsePath::parse("usage.n").unwrap();
        assert!(matches!(n.select(&answer, 1).unwrap(), Selected::One(v) if v == &json!(3)));
        let c = ResponsePath::parse("$.c[0][0]").unwrap();
        assert_eq!(c.select_optional(&answer), Some(&json!(5)));
        let root = ResponsePath::parse("[*]").unwrap();
        assert!(
            matches!(root.select(&json!([1, 2]), 2).unwrap(), Selected::Many(v) if v.len() == 2)
        );
        assert!(
            ResponsePath::parse("")
                .unwrap()
                .select_optional(&answer)
                .is_some()
        );
    }

    #[test]
    fn malformed_paths_are_refused() {
        for bad in [
            "a..b",
            "a[",
            "a[x]",
            "a[*][*]",
            "a b",
            "a.",
            "a]b",
            "[-1]",
            "a[*].b[*]",
        ] {
            assert!(ResponsePath::parse(bad).is_err(), "{bad}");
        }
        let long = vec!["a"; MAX_STEPS + 1].join(".");
        assert!(ResponsePath::parse(&long).is_err());
    }

    #[test]
    fn hostile_answers_are_protocol_errors() {
        let p = ResponsePath::parse("data[*].e").unwrap();
        for answer in [
            json!({}),
            json!({"data": 5}),
            json!({"data": [1]}),
            json!([1]),
        ] {
            let e = p.select(&answer, 10).unwrap_err();
            assert_eq!(
                (e.kind(), e.path()),
                (ErrorKind::Protocol, Some("data[*].e")),
                "{e}"
            );
        }
        let huge = json!({"data": vec![json!({"e": 1}); 1000]});
        let e = p.select(&huge, 10).unwrap_err();
        assert!(e.message().contains("1000 elements"), "{e}");
        assert_eq!(
            ResponsePath::parse("a.b")
                .unwrap()
                .select_optional(&json!({"a": null})),
            None
        );
    }
}
