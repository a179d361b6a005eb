//! Rendering records and resolutions as tables, text, JSON and YAML.
//!
//! Every function here hides secret values unless it is given
//! [`Secrets::Reveal`]; the list and resolve renderers never take that option.
//!
//! Text for people (tables, summaries, messages) never carries a control
//! character from data: [`printable`] escapes them, so a record or a server
//! cannot move the cursor, recolour the terminal or forge a table row.
//! JSON and YAML are written by their serializers, which escape control
//! characters the way each format does.

use std::borrow::Cow;
use std::fmt::Write as _;

use inferlink::format::{self, Secrets};
use inferlink::{ExtensionRecord, Resolution, Result};

/// Shown in a table cell for an empty field.
const EMPTY_CELL: &str = "-";

/// True for characters that must not reach a terminal from data: C0 and C1
/// control characters and DEL (escape sequences, carriage return, backspace,
/// newline) and the Unicode bidirectional controls, which reorder what is shown.
fn is_unsafe_for_terminal(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// `text` with every character unsafe for a terminal written as a `\u{…}`
/// escape, so it shows as one line of inert text.
pub(crate) fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe_for_terminal) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_unsafe_for_terminal(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Serialized JSON with every character unsafe for a terminal that the
/// serializer leaves raw (DEL, C1 controls such as U+009B, bidirectional
/// controls) written as a `\uXXXX` escape: still valid JSON, same value.
///
/// Outside strings, JSON text holds only ASCII structure and blanks, so
/// these characters can only be inside strings, where the escape is legal.
pub(crate) fn json_for_terminal(text: String) -> String {
    if !text
        .chars()
        .any(|c| is_unsafe_for_terminal(c) && !c.is_ascii_whitespace())
    {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_unsafe_for_terminal(c) && !c.is_ascii_whitespace() {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// Like [`printable`] but keeps line breaks: for multi-line text built by
/// inferlink itself (explanations) whose lines may quote data.
pub(crate) fn printable_lines(text: &str) -> String {
    text.split('\n')
        .map(|line| printable(line).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A plain-text table: a header row and aligned, space-padded columns.
///
/// The last column is not padded, so lines carry no trailing spaces. Cells
/// pass through [`printable`], so a cell is always one line of inert text.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|c| printable(c).into_owned()).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.zip(&widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(cell);
            if i + 1 < widths.len() {
                let pad = width - cell.chars().count();
                text.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in &rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

fn cell(value: &str) -> String {
    if value.is_empty() {
        EMPTY_CELL.to_owned()
    } else {
        value.to_owned()
    }
}

/// The `list` table: ID, PRODUCT, VERSION, ZONE, SERVICES (`id(resource/category)`, comma-separated).
pub(crate) fn records_table(records: &[ExtensionRecord]) -> String {
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            let services: Vec<String> = r
                .services
                .iter()
                .map(|s| format!("{}({}/{})", s.id, cell(&s.resource), cell(&s.category)))
                .collect();
            vec![
                r.id.clone(),
                cell(&r.product),
                cell(&r.version),
                cell(&r.zone),
                if services.is_empty() {
                    EMPTY_CELL.to_owned()
                } else {
                    services.join(",")
                },
            ]
        })
        .collect();
    table(&["ID", "PRODUCT", "VERSION", "ZONE", "SERVICES"], &rows)
}

/// Records as a pretty JSON array, ending with a newline.
pub(crate) fn records_json(records: &[ExtensionRecord], secrets: Secrets) -> Result<String> {
    Ok(with_newline(json_for_terminal(format::to_json(
        records, secrets,
    )?)))
}

/// Records as a multi-document YAML stream (empty for no records).
pub(crate) fn records_yaml(records: &[ExtensionRecord], secrets: Secrets) -> Result<String> {
    Ok(with_newline(format::records_to_yaml(records, secrets)?))
}

/// One record as YAML or JSON, ending with a newline.
pub(crate) fn record(record: &ExtensionRecord, json: bool, secrets: Secrets) -> Result<String> {
    let text = if json {
        json_for_terminal(format::to_json(record, secrets)?)
    } else {
        format::to_yaml(record, secrets)?
    };
    Ok(with_newline(text))
}

/// Resolutions as a pretty JSON array (best first), secrets hidden.
pub(crate) fn resolutions_json(list: &[Resolution]) -> Result<String> {
    Ok(with_newline(json_for_terminal(format::to_json(
        list,
        Secrets::Hide,
    )?)))
}

/// Resolutions as a YAML list (best first), secrets hidden.
pub(crate) fn resolutions_yaml(list: &[Resolution]) -> Result<String> {
    Ok(with_newline(format::to_yaml(&list, Secrets::Hide)?))
}

/// A short human summary of one resolution; configuration as `KEY=VALUE` lines, secrets `<hidden>`.
///
/// Every line passes through [`printable`].
pub(crate) fn resolution_summary(found: &Resolution) -> String {
    let record = found.record();
    let service = found.service();
    let endpoint = found.endpoint();
    let mut out = String::new();
    let mut about = vec![cell(&record.product)];
    if !record.version.is_empty() {
        about.push(record.version.clone());
    }
    let zone = if record.zone.is_empty() {
        "no zone".to_owned()
    } else {
        format!("zone {}", record.zone)
    };
    let mut line = |text: String| {
        out.push_str(&printable(&text));
        out.push('\n');
    };
    line(format!(
        "resolved:    {}/{} ({}, {zone})",
        record.id,
        service.id,
        about.join(" ")
    ));
    line(format!(
        "service:     resource {}, category {}",
        cell(&service.resource),
        cell(&service.category)
    ));
    line(format!(
        "endpoint:    {} ({})",
        endpoint.url, endpoint.endpoint_type
    ));
    line(match found.credentials() {
        Some(c) => format!("credentials: {} (scope {})", c.id, c.scope),
        None => "credentials: none".to_owned(),
    });
    let configuration = found.configuration();
    if configuration.is_empty() {
        line("configuration: none".to_owned());
    } else {
        line("configuration:".to_owned());
        for (key, value) in configuration {
            // `Display` of a configuration value shows secrets as `<hidden>`.
            line(format!("  {key}={value}"));
        }
    }
    out
}

fn with_newline(mut text: String) -> String {
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns_without_trailing_spaces() {
        let text = table(
            &["ID", "NAME"],
            &[
                vec!["a".into(), "x".into()],
                vec!["longer-id".into(), "y".into()],
            ],
        );
        assert_eq!(text, "ID         NAME\na          x\nlonger-id  y\n");
    }

    #[test]
    fn empty_table_is_the_header() {
        assert_eq!(table(&["ID", "ZONE"], &[]), "ID  ZONE\n");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("a\nb"), "a\\u{a}b");
        assert_eq!(printable("http://x"), "http://x");
        assert_eq!(
            printable("\u{1b}[2J\u{9b}1m\r"),
            "\\u{1b}[2J\\u{9b}1m\\u{d}"
        );
        assert_eq!(printable("abc\u{202e}def"), "abc\\u{202e}def");
        assert_eq!(printable_lines("a\u{7}\nb"), "a\\u{7}\nb");
    }

    #[test]
    fn json_keeps_its_value_and_escapes_c1_controls() {
        let value = serde_json::json!({"name": "a\u{9b}31m\u{7f}\u{202e}b\u{1b}"});
        let text = json_for_terminal(serde_json::to_string_pretty(&value).unwrap());
        assert!(
            !text.chars().any(|c| is_unsafe_for_terminal(c) && c != '\n'),
            "{text}"
        );
        assert!(text.contains("\\u009b"), "{text}");
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn a_cell_cannot_forge_a_table_row() {
        let text = table(
            &["NAME", "STATE"],
            &[vec!["m\nforged  READY".into(), "\u{1b}[32mREADY".into()]],
        );
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(!text.contains('\u{1b}'), "{text}");
    }
}
