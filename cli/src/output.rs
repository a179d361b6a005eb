//! Rendering records and resolutions as tables, text, JSON and YAML.
//!
//! Every function here hides secret values unless it is given
//! [`Secrets::Reveal`]; the list and resolve renderers never take that option.

use std::fmt::Write as _;

use inferlink::format::{self, Secrets};
use inferlink::{ExtensionRecord, Resolution, Result};

/// Shown in a table cell for an empty field.
const EMPTY_CELL: &str = "-";

/// A plain-text table: a header row and aligned, space-padded columns.
///
/// The last column is not padded, so lines carry no trailing spaces.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
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
    for row in rows {
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
    Ok(with_newline(format::to_json(records, secrets)?))
}

/// Records as a multi-document YAML stream (empty for no records).
pub(crate) fn records_yaml(records: &[ExtensionRecord], secrets: Secrets) -> Result<String> {
    Ok(with_newline(format::records_to_yaml(records, secrets)?))
}

/// One record as YAML or JSON, ending with a newline.
pub(crate) fn record(record: &ExtensionRecord, json: bool, secrets: Secrets) -> Result<String> {
    let text = if json {
        format::to_json(record, secrets)?
    } else {
        format::to_yaml(record, secrets)?
    };
    Ok(with_newline(text))
}

/// Resolutions as a pretty JSON array (best first), secrets hidden.
pub(crate) fn resolutions_json(list: &[Resolution]) -> Result<String> {
    Ok(with_newline(format::to_json(list, Secrets::Hide)?))
}

/// Resolutions as a YAML list (best first), secrets hidden.
pub(crate) fn resolutions_yaml(list: &[Resolution]) -> Result<String> {
    Ok(with_newline(format::to_yaml(&list, Secrets::Hide)?))
}

/// A short human summary of one resolution; configuration as `KEY=VALUE` lines, secrets `<hidden>`.
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
    let _ = writeln!(
        out,
        "resolved:    {}/{} ({}, {zone})",
        record.id,
        service.id,
        about.join(" ")
    );
    let _ = writeln!(
        out,
        "service:     resource {}, category {}",
        cell(&service.resource),
        cell(&service.category)
    );
    let _ = writeln!(
        out,
        "endpoint:    {} ({})",
        endpoint.url, endpoint.endpoint_type
    );
    match found.credentials() {
        Some(c) => {
            let _ = writeln!(out, "credentials: {} (scope {})", c.id, c.scope);
        }
        None => out.push_str("credentials: none\n"),
    }
    let configuration = found.configuration();
    if configuration.is_empty() {
        out.push_str("configuration: none\n");
    } else {
        out.push_str("configuration:\n");
        for (key, value) in configuration {
            // `Display` of a configuration value shows secrets as `<hidden>`.
            let _ = writeln!(out, "  {key}={}", single_line(&value.to_string()));
        }
    }
    out
}

/// Escapes control characters so a value stays on its line.
fn single_line(value: &str) -> String {
    if value.chars().any(char::is_control) {
        value.escape_debug().to_string()
    } else {
        value.to_owned()
    }
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
        assert_eq!(single_line("a\nb"), "a\\nb");
        assert_eq!(single_line("http://x"), "http://x");
    }
}
