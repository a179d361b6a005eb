//! `inferlink blueprint`: the shipped connector blueprints (`list`, `show`)
//! and the check of a blueprint file before a record carries it (`check`).
//! No registry is opened; nothing is called.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Subcommand;
use inferlink::{Error, ErrorKind, Result};
use inferlink_blueprint::{Blueprint, RESERVED, SHIPPED};

use crate::input;
use crate::output;

/// The `blueprint` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum BlueprintCommand {
    /// List the shipped blueprints: name, record product, calls, documentation
    List,
    /// Print a shipped blueprint's YAML
    Show {
        /// The blueprint's name (see `blueprint list`)
        name: String,
    },
    /// Read and check blueprint files (YAML or JSON; `-` reads standard input): every
    /// placeholder, key and response path; problems are named by their path
    Check {
        /// The files to check
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

/// Runs a `blueprint` subcommand, writing its output to `out`.
pub(crate) fn run(command: BlueprintCommand, out: &mut String) -> Result<()> {
    match command {
        BlueprintCommand::List => {
            let mut rows = Vec::new();
            for shipped in SHIPPED {
                let blueprint = inferlink_blueprint::shipped(shipped.name)?;
                rows.push(vec![
                    shipped.name.to_owned(),
                    shipped.product.unwrap_or("http").to_owned(),
                    actions(&blueprint),
                    blueprint.documentation.clone(),
                ]);
            }
            out.push_str(&output::table(
                &["NAME", "PRODUCT", "CALLS", "DOCUMENTATION"],
                &rows,
            ));
        }
        BlueprintCommand::Show { name } => {
            let shipped = SHIPPED.iter().find(|s| s.name == name).ok_or_else(|| {
                let names: Vec<&str> = SHIPPED.iter().map(|s| s.name).collect();
                Error::not_found(format!(
                    "no shipped blueprint \"{}\"; shipped: {}",
                    output::printable(&name),
                    names.join(", ")
                ))
            })?;
            out.push_str(&output::printable_lines(shipped.text));
        }
        BlueprintCommand::Check { files } => {
            let mut refused = 0usize;
            for file in &files {
                let shown = file.display().to_string();
                let verdict = input::read(file)
                    .and_then(|input| Blueprint::parse(&input.text, RESERVED))
                    .map(|b| format!("ok: {} ({})", b.name, actions(&b)));
                let line = verdict.unwrap_or_else(|e| {
                    refused += 1;
                    format!("refused: {e}")
                });
                let _ = writeln!(
                    out,
                    "{}: {}",
                    output::printable(&shown),
                    output::printable(&line)
                );
            }
            if refused > 0 {
                let why = format!("{refused} of {} blueprint file(s) refused", files.len());
                return Err(Error::new(ErrorKind::Config, why));
            }
        }
    }
    Ok(())
}

/// The calls a blueprint describes, as `embed, rerank`.
fn actions(blueprint: &Blueprint) -> String {
    let names: Vec<&str> = blueprint.actions.keys().map(|a| a.as_str()).collect();
    names.join(", ")
}
