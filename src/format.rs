//! Reading and writing records (and other documents) as YAML and JSON.
//!
//! This is the only module that knows about YAML. Parsing always goes into
//! typed structs (never an untyped value), with limits on input size, nesting
//! depth, node count and alias expansion; duplicate keys and unknown fields
//! are rejected; every error names the document, line and field path.
//!
//! One input may hold several records: several YAML documents separated by
//! `---`, or a JSON array (a single JSON object is one record).
//!
//! Output hides credential values as `<hidden>` unless [`Secrets::Reveal`] is
//! asked for explicitly.

use std::cell::Cell;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, ErrorKind, Result};
use crate::model::ExtensionRecord;
use crate::secret::with_secrets_revealed;

/// A document format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// YAML 1.2 (one or more documents).
    Yaml,
    /// JSON (an object, or an array of objects).
    Json,
}

impl Format {
    /// Guesses the format from the first non-blank character: `{` or `[` is JSON, anything else YAML.
    pub fn detect(text: &str) -> Format {
        match text
            .trim_start_matches('\u{feff}')
            .trim_start()
            .as_bytes()
            .first()
        {
            Some(b'{') | Some(b'[') => Format::Json,
            _ => Format::Yaml,
        }
    }

    /// The format named by a file extension (`yaml`, `yml`, `json`), if any.
    pub fn from_extension(ext: &str) -> Option<Format> {
        match ext.to_ascii_lowercase().as_str() {
            "yaml" | "yml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// Whether serialized output shows credential values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Secrets {
    /// Credential values are written as `<hidden>` (the default).
    #[default]
    Hide,
    /// Credential values are written in clear. Use only where the output is protected.
    Reveal,
}

/// Limits applied while parsing untrusted input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Largest accepted input, in bytes.
    pub max_input_bytes: usize,
    /// Deepest accepted nesting of mappings and sequences.
    pub max_depth: usize,
    /// Most YAML nodes in the whole input.
    pub max_nodes: usize,
    /// Most documents (YAML) or array items (JSON).
    pub max_documents: usize,
    /// Most alias (`*name`) uses in the whole input.
    pub max_aliases: usize,
}

impl Default for ParseLimits {
    /// 64 MiB, depth 32, 8 million nodes, 200 000 documents, 1 000 aliases.
    fn default() -> Self {
        ParseLimits {
            max_input_bytes: 64 * 1024 * 1024,
            max_depth: 32,
            max_nodes: 8_000_000,
            max_documents: 200_000,
            max_aliases: 1_000,
        }
    }
}

/// How scalars are read into string fields (set per parse, see `model.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScalarMode {
    /// Ask for the scalar's source text (YAML): `1.20` stays `1.20`, `False` stays `False`.
    Text,
    /// Accept typed scalars and print them (JSON).
    Typed,
}

thread_local! {
    static SCALAR_MODE: Cell<ScalarMode> = const { Cell::new(ScalarMode::Typed) };
}

pub(crate) fn scalar_mode() -> ScalarMode {
    SCALAR_MODE.with(Cell::get)
}

fn with_scalar_mode<R>(mode: ScalarMode, f: impl FnOnce() -> R) -> R {
    struct Restore(ScalarMode);
    impl Drop for Restore {
        fn drop(&mut self) {
            SCALAR_MODE.with(|m| m.set(self.0));
        }
    }
    let _restore = Restore(SCALAR_MODE.with(|m| m.replace(mode)));
    f()
}

/// Parses and validates every record in `text` (format detected from content).
///
/// Errors name the document (`document 2` for YAML, `[1]` for a JSON array)
/// and the field path, for example
/// `document 2: services[0].endpoints[1].url: "x" is not an absolute URL`.
pub fn parse_records(text: &str) -> Result<Vec<ExtensionRecord>> {
    parse_records_as(text, Format::detect(text), &ParseLimits::default())
}

/// Parses and validates every record in `text` in the given format and limits.
pub fn parse_records_as(
    text: &str,
    format: Format,
    limits: &ParseLimits,
) -> Result<Vec<ExtensionRecord>> {
    let docs = parse_documents_as::<ExtensionRecord>(text, format, limits)?;
    if docs.is_empty() {
        return Err(Error::invalid("the input holds no records"));
    }
    let many = docs.len() > 1 || format == Format::Json && is_json_array(text);
    let mut records = Vec::with_capacity(docs.len());
    let mut seen = std::collections::HashMap::new();
    for (index, record) in docs.into_iter().enumerate() {
        record
            .validate()
            .map_err(|e| locate_document(e, format, index, many))?;
        if let Some(first) = seen.insert(record.id.clone(), index) {
            let first = match format {
                Format::Yaml => format!("document {}", first + 1),
                Format::Json => format!("[{first}]"),
            };
            let e = Error::invalid_at(
                "id",
                format!("duplicate record id \"{}\": {first} has it too", record.id),
            );
            return Err(locate_document(e, format, index, many));
        }
        records.push(record);
    }
    Ok(records)
}

/// Parses and validates JSON lines: one record per line (blank lines
/// skipped), for bulk loads. Each line is parsed on its own, so a load of a
/// million records never holds one giant JSON value; every record is
/// validated once, here. Errors name the line (`line 7: services[0]…`).
///
/// Limits: each line obeys `limits` (size, depth); the whole input may hold
/// any number of lines, since a caller reads and writes it in chunks.
pub fn parse_json_lines(text: &str, limits: &ParseLimits) -> Result<Vec<ExtensionRecord>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let at = |e: Error| {
            let msg = format!("line {}", index + 1);
            match e.path() {
                Some(path) => Error::new(e.kind(), format!("{} ({msg})", e.message()))
                    .with_path(path.to_owned()),
                None => Error::new(e.kind(), format!("{msg}: {}", e.message())),
            }
        };
        if line.len() > limits.max_input_bytes {
            return Err(at(Error::invalid(format!(
                "the line is {} bytes; at most {} are accepted",
                line.len(),
                limits.max_input_bytes
            ))));
        }
        check_json_depth(line, limits.max_depth).map_err(at)?;
        let record: ExtensionRecord = with_scalar_mode(ScalarMode::Typed, || {
            let mut de = serde_json::Deserializer::from_str(line);
            let item: ExtensionRecord =
                serde_path_to_error::deserialize(&mut de).map_err(json_error)?;
            de.end().map_err(|e| json_error_plain(&e))?;
            Ok(item)
        })
        .map_err(at)?;
        record.validate().map_err(at)?;
        if let Some(first) = seen.insert(record.id.clone(), index) {
            return Err(at(Error::invalid_at(
                "id",
                format!(
                    "duplicate record id \"{}\": line {} has it too",
                    record.id,
                    first + 1
                ),
            )));
        }
        records.push(record);
    }
    if records.is_empty() {
        return Err(Error::invalid("the input holds no records"));
    }
    Ok(records)
}

/// Writes `records` as JSON lines (one compact record per line), the bulk
/// form [`parse_json_lines`] reads.
pub fn records_to_json_lines(records: &[ExtensionRecord], secrets: Secrets) -> Result<String> {
    let mut out = String::new();
    for record in records {
        out.push_str(&to_json_compact(record, secrets)?);
        out.push('\n');
    }
    Ok(out)
}

/// Parses one YAML or JSON document of any typed shape (selectors, workflow steps).
pub fn parse_document<T: DeserializeOwned + Send>(text: &str) -> Result<T> {
    let format = Format::detect(text);
    let limits = ParseLimits::default();
    let mut docs = parse_documents_as::<T>(text, format, &limits)?;
    if format == Format::Json && is_json_array(text) {
        return Err(Error::invalid("expected one JSON object, found an array"));
    }
    match docs.len() {
        1 => Ok(docs.remove(0)),
        0 => Err(Error::invalid("the input is empty")),
        n => Err(Error::invalid(format!("expected one document, found {n}"))),
    }
}

/// Parses every document of `text` into `T` (YAML documents or the items of a JSON array).
pub fn parse_documents_as<T: DeserializeOwned + Send>(
    text: &str,
    format: Format,
    limits: &ParseLimits,
) -> Result<Vec<T>> {
    if text.len() > limits.max_input_bytes {
        return Err(Error::invalid(format!(
            "the input is {} bytes; at most {} are accepted",
            text.len(),
            limits.max_input_bytes
        )));
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match format {
        Format::Json => with_scalar_mode(ScalarMode::Typed, || parse_json(text, limits)),
        Format::Yaml => with_scalar_mode(ScalarMode::Text, || parse_yaml(text, limits)),
    }
}

fn is_json_array(text: &str) -> bool {
    text.trim_start_matches('\u{feff}')
        .trim_start()
        .starts_with('[')
}

fn locate_document(e: Error, format: Format, index: usize, many: bool) -> Error {
    match (format, many) {
        (_, false) => e,
        (Format::Json, true) => e.with_path(format!("[{index}]")),
        (Format::Yaml, true) => {
            let msg = format!("document {}", index + 1);
            match e.path() {
                // Keep the field path; prefix the document in the message.
                Some(_) => Error::new(e.kind(), format!("{} ({msg})", e.message()))
                    .with_path(e.path().unwrap_or_default().to_owned()),
                None => Error::new(e.kind(), format!("{msg}: {}", e.message())),
            }
        }
    }
}

// --- JSON -------------------------------------------------------------------

fn parse_json<T: DeserializeOwned>(text: &str, limits: &ParseLimits) -> Result<Vec<T>> {
    check_json_depth(text, limits.max_depth)?;
    if is_json_array(text) {
        let mut de = serde_json::Deserializer::from_str(text);
        let items: Vec<T> = serde_path_to_error::deserialize(&mut de).map_err(json_error)?;
        de.end().map_err(|e| json_error_plain(&e))?;
        if items.len() > limits.max_documents {
            return Err(Error::invalid(format!(
                "{} records in one array; at most {} are accepted",
                items.len(),
                limits.max_documents
            )));
        }
        Ok(items)
    } else {
        let mut de = serde_json::Deserializer::from_str(text);
        let item: T = serde_path_to_error::deserialize(&mut de).map_err(json_error)?;
        de.end().map_err(|e| json_error_plain(&e))?;
        Ok(vec![item])
    }
}

/// Rejects JSON nested deeper than `max` before serde sees it (serde_json's own limit is 128).
fn check_json_depth(text: &str, max: usize) -> Result<()> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let (mut line, mut column) = (1usize, 0usize);
    for c in text.chars() {
        if c == '\n' {
            line += 1;
            column = 0;
        } else {
            column += 1;
        }
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' | '[' => {
                depth += 1;
                if depth > max {
                    return Err(Error::invalid(format!(
                        "line {line} column {column}: nesting deeper than {max} levels"
                    )));
                }
            }
            '}' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// The field path of a deserialization error, e.g. `services[1].endpoints[0].url`.
///
/// Segments serde could not name (a key that failed to parse, a duplicate)
/// end the path; very long keys are shortened.
fn field_path(path: &serde_path_to_error::Path) -> Option<String> {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&shorten_token(key));
            }
            Segment::Unknown => break,
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Shortens one piece of quoted input to at most 48 bytes plus its length.
fn shorten_token(token: &str) -> String {
    const KEEP: usize = 40;
    if token.len() <= 48 {
        return token.to_owned();
    }
    let mut end = KEEP;
    while !token.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…({} bytes)", &token[..end], token.len())
}

/// Shortens every long `quoted` or "quoted" piece of a parser message, so an
/// error about a 10 MB value does not repeat it, while the rest of the message
/// (what was expected) survives.
fn shorten_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(1024));
    let mut rest = message;
    while let Some(start) = rest.find(['`', '"']) {
        let quote = rest[start..].chars().next().unwrap_or('"');
        let body_start = start + quote.len_utf8();
        let Some(len) = rest[body_start..].find(quote) else {
            break;
        };
        out.push_str(&rest[..body_start]);
        out.push_str(&shorten_token(&rest[body_start..body_start + len]));
        out.push(quote);
        rest = &rest[body_start + len + quote.len_utf8()..];
    }
    out.push_str(rest);
    out
}

fn json_error(e: serde_path_to_error::Error<serde_json::Error>) -> Error {
    let path = field_path(e.path());
    let err = json_error_plain(e.inner());
    match path {
        Some(p) => err.with_path(p),
        None => err,
    }
}

fn json_error_plain(e: &serde_json::Error) -> Error {
    let msg = shorten_quoted(&e.to_string());
    // serde_json appends " at line L column C"; move the position to the front.
    let (text, position) = match msg.rfind(" at line ") {
        Some(i) => (&msg[..i], Some(&msg[i + 4..])),
        None => (msg.as_str(), None),
    };
    let message = match position {
        Some(p) => format!("{p}: {text}"),
        None => text.to_owned(),
    };
    Error::invalid(message)
}

// --- YAML -------------------------------------------------------------------

fn yaml_options(limits: &ParseLimits) -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = limits.max_depth;
    budget.max_nodes = limits.max_nodes;
    budget.max_aliases = limits.max_aliases;
    budget.max_reader_input_bytes = Some(limits.max_input_bytes);
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.alias_limits.max_total_replayed_events = 100_000;
    options.strict_booleans = true;
    options.with_snippet = false;
    options
}

/// Splits a YAML stream at document markers (`---` / `...` at column 0).
///
/// Returns each document's text with the 1-based line it starts on. YAML
/// forbids document markers at column 0 inside a document's content, so this
/// split is exact for the block-mapping documents records are written as.
fn split_yaml_documents(text: &str) -> Vec<(usize, &str)> {
    let is_marker = |line: &str, marker: &str| {
        line.strip_prefix(marker)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r']))
    };
    let mut docs = Vec::new();
    let (mut start, mut start_line, mut offset) = (0usize, 1usize, 0usize);
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end_matches(['\n', '\r']);
        if is_marker(bare, "---") {
            docs.push((start_line, &text[start..offset]));
            // The marker line itself starts the next document (it may carry content).
            start = offset;
            start_line = i + 1;
        } else if is_marker(bare, "...") {
            docs.push((start_line, &text[start..offset]));
            start = offset + line.len();
            start_line = i + 2;
        }
        offset += line.len();
    }
    docs.push((start_line, &text[start..]));
    docs.retain(|(_, doc)| {
        doc.lines().any(|l| {
            let t = l.trim();
            !(t.is_empty() || t.starts_with('#') || t == "---" || t.starts_with("%"))
        })
    });
    docs
}

fn parse_yaml<T: DeserializeOwned + Send>(text: &str, limits: &ParseLimits) -> Result<Vec<T>> {
    let docs = split_yaml_documents(text);
    if docs.len() > limits.max_documents {
        return Err(Error::invalid(format!(
            "{} documents; at most {} are accepted",
            docs.len(),
            limits.max_documents
        )));
    }
    let many = docs.len() > 1;
    // Documents are independent once split: parse large streams on every core.
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(docs.len() / PARALLEL_MIN_DOCS)
        .max(1);
    if workers == 1 {
        return parse_yaml_range(&docs, 0, limits, many);
    }
    let chunk = docs.len().div_ceil(workers);
    let results: Vec<Result<Vec<T>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = docs
            .chunks(chunk)
            .enumerate()
            .map(|(i, part)| {
                scope.spawn(move || {
                    with_scalar_mode(ScalarMode::Text, || {
                        parse_yaml_range(part, i * chunk, limits, many)
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(Error::new(
                        ErrorKind::Internal,
                        "a YAML parsing thread panicked",
                    ))
                })
            })
            .collect()
    });
    // Chunks are in document order, so the first error is the earliest document's.
    let mut out = Vec::with_capacity(docs.len());
    for part in results {
        out.extend(part?);
    }
    Ok(out)
}

/// Streams with fewer documents per core than this are parsed on one thread.
const PARALLEL_MIN_DOCS: usize = 256;

/// Parses `docs`, the documents numbered from `first` (0-based) of a stream.
fn parse_yaml_range<T: DeserializeOwned>(
    docs: &[(usize, &str)],
    first: usize,
    limits: &ParseLimits,
    many: bool,
) -> Result<Vec<T>> {
    let mut out = Vec::with_capacity(docs.len());
    for (offset, (first_line, doc)) in docs.iter().enumerate() {
        let mut path = None;
        let parsed = serde_saphyr::with_deserializer_from_str_with_options(
            doc,
            yaml_options(limits),
            |de| {
                serde_path_to_error::deserialize(de).map_err(|e| {
                    path = field_path(e.path());
                    e.into_inner()
                })
            },
        );
        match parsed {
            Ok(value) => out.push(value),
            Err(e) => return Err(yaml_error(&e, path, *first_line, first + offset, many)),
        }
    }
    Ok(out)
}

fn yaml_error(
    e: &serde_saphyr::Error,
    path: Option<String>,
    first_line: usize,
    index: usize,
    many: bool,
) -> Error {
    let rendered = e.to_string();
    let first = rendered.lines().next().unwrap_or("invalid YAML");
    let mut text = first.strip_prefix("error: ").unwrap_or(first);
    // Drop saphyr's document-relative "line L column C: " prefix; we add an absolute one.
    if text.starts_with("line ")
        && let Some(i) = text.find(": ")
    {
        text = &text[i + 2..];
    }
    // Drop hints about the parser's own options, which users cannot act on.
    if let Some(i) = text.find(", set DuplicateKeyPolicy") {
        text = &text[..i];
    }
    // And a trailing document-relative position ("… at line 3, column 13").
    if let Some(i) = text.rfind(" at line ")
        && text[i + 9..]
            .chars()
            .all(|c| c.is_ascii_digit() || c == ',' || c == ' ' || c.is_ascii_alphabetic())
        && text[i..].contains("column")
    {
        text = &text[..i];
    }
    let text = shorten_quoted(text);
    let text = text.as_str();
    let mut message = String::new();
    if many {
        message.push_str(&format!("document {}, ", index + 1));
    }
    match e.location() {
        Some(loc) if loc.line() > 0 => message.push_str(&format!(
            "line {} column {}: ",
            loc.line() as usize + first_line - 1,
            loc.column()
        )),
        _ => message.push_str(&format!("document starting at line {first_line}: ")),
    }
    message.push_str(text);
    if text.contains("budget") || text.contains("limit") {
        message.push_str(" (input exceeds a parsing limit: too deep, too many nodes or aliases)");
    }
    let err = Error::new(ErrorKind::InvalidInput, message);
    match path {
        Some(p) => err.with_path(p),
        None => err,
    }
}

// --- Output -----------------------------------------------------------------

/// Runs a serializer with secrets hidden or, explicitly, revealed.
fn serialize_with<E: std::fmt::Display>(
    secrets: Secrets,
    what: &str,
    run: impl FnOnce() -> std::result::Result<String, E>,
) -> Result<String> {
    let out = match secrets {
        Secrets::Hide => run(),
        Secrets::Reveal => with_secrets_revealed(run),
    };
    out.map_err(|e| Error::new(ErrorKind::Internal, format!("cannot write {what}: {e}")))
}

/// Serializes `value` as YAML, hiding or revealing credential values.
pub fn to_yaml<T: Serialize>(value: &T, secrets: Secrets) -> Result<String> {
    serialize_with(secrets, "YAML", || serde_saphyr::to_string(value))
}

/// Serializes several records as a multi-document YAML stream.
pub fn records_to_yaml(records: &[ExtensionRecord], secrets: Secrets) -> Result<String> {
    let mut out = String::new();
    for (i, record) in records.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&to_yaml(record, secrets)?);
    }
    Ok(out)
}

/// Serializes `value` as pretty JSON, hiding or revealing credential values.
pub fn to_json<T: Serialize + ?Sized>(value: &T, secrets: Secrets) -> Result<String> {
    serialize_with(secrets, "JSON", || serde_json::to_string_pretty(value))
}

/// Serializes `value` as compact JSON, hiding or revealing credential values.
pub fn to_json_compact<T: Serialize + ?Sized>(value: &T, secrets: Secrets) -> Result<String> {
    serialize_with(secrets, "JSON", || serde_json::to_string(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str =
        "id: a\nversion: 1.20\nconfiguration:\n  FLAG: False\n  N: 0x1F\n---\nid: b\n";

    #[test]
    fn yaml_scalars_keep_their_text() {
        let r = parse_records(TWO).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].version, "1.20");
        assert_eq!(r[0].configuration["FLAG"], "False");
        assert_eq!(r[0].configuration["N"], "0x1F");
        assert_eq!(r[1].id, "b");
    }

    #[test]
    fn json_scalars_become_strings() {
        let r = parse_records(r#"[{"id":"a","version":"1","configuration":{"X":1.5,"Y":true}}]"#)
            .unwrap();
        assert_eq!(r[0].configuration["X"], "1.5");
        assert_eq!(r[0].configuration["Y"], "true");
    }

    #[test]
    fn yaml_error_names_document_line_and_path() {
        let text = "id: a\n---\nid: b\nservices:\n  - id: s\n    endpoints:\n      - url: http://x\n        type: sideways\n";
        let e = parse_records(text).unwrap_err();
        assert_eq!(e.path(), Some("services[0].endpoints[0].type"), "{e}");
        assert!(e.message().contains("document 2"), "{e}");
        assert!(e.message().contains("line 8"), "{e}");
    }

    #[test]
    fn json_duplicate_config_keys_are_rejected() {
        let e = parse_records(r#"{"id":"a","configuration":{"K":"1","K":"2"}}"#).unwrap_err();
        assert_eq!(e.path(), Some("configuration"), "{e}");
        assert!(e.message().contains("duplicate"), "{e}");
    }

    #[test]
    fn validation_errors_in_json_arrays_are_indexed() {
        let e = parse_records(r#"[{"id":"ok"},{"id":"bad id"}]"#).unwrap_err();
        assert_eq!(e.path(), Some("[1].id"), "{e}");
    }

    #[test]
    fn unknown_path_segments_and_parser_hints_are_dropped() {
        let e = parse_records("id: a\nconfiguration:\n  T: 1\n  O: 2\n  T: 3\n").unwrap_err();
        assert_eq!(e.path(), Some("configuration"), "{e}");
        assert!(!e.to_string().contains("DuplicateKeyPolicy"), "{e}");
        let e = parse_records("id: a\n---\nid: b\n---\nid: c\nservices: [{id: s\n").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("document 3, line 6"), "{text}");
        assert!(!text.contains("at line 3"), "{text}");
    }

    #[test]
    fn huge_values_are_not_repeated_in_errors() {
        let big = "a".repeat(1_000_000);
        let text = format!(
            "id: x\nservices:\n  - id: s\n    endpoints:\n      - url: http://h\n        type: {big}\n"
        );
        let e = parse_records(&text).unwrap_err();
        assert!(e.to_string().len() < 600, "{}", e.to_string().len());
        assert!(e.to_string().contains("expected"), "{e}");
    }

    #[test]
    fn duplicate_ids_and_empty_inputs_are_rejected() {
        let e = parse_records("id: twin\n---\nid: twin\n").unwrap_err();
        assert_eq!(e.path(), Some("id"));
        assert!(
            e.to_string().contains("document 1 has it too (document 2)"),
            "{e}"
        );
        let e = parse_records(r#"[{"id":"a"},{"id":"a"}]"#).unwrap_err();
        assert_eq!(e.path(), Some("[1].id"));
        assert!(parse_records("# nothing\n").is_err());
    }

    #[test]
    fn large_streams_parse_in_parallel_in_order_with_the_first_error() {
        let mut text = String::new();
        for i in 0..2000 {
            text.push_str(&format!("---\nid: r{i}\nversion: 1.{i}0\n"));
        }
        let records = parse_records(&text).unwrap();
        assert_eq!(records.len(), 2000);
        assert!(
            records
                .iter()
                .enumerate()
                .all(|(i, r)| r.id == format!("r{i}"))
        );
        assert_eq!(
            records[7].version, "1.70",
            "scalar text kept on worker threads"
        );
        let broken = text
            .replace("id: r1500\n", "id: r1500\nbogus: 1\n")
            .replace("id: r1900\n", "id: [\n");
        let e = parse_records(&broken).unwrap_err();
        assert!(e.to_string().contains("document 1501"), "{e}");
    }

    #[test]
    fn marker_splitting_keeps_line_numbers() {
        let docs = split_yaml_documents("# c\n---\na: 1\n---\nb: 2\n...\n");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].0, 2);
        assert_eq!(docs[1].0, 4);
    }
}
