//! The commands: each reads its arguments, works on the registry and writes
//! its standard output into a buffer that `main` prints.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::PathBuf;

use inferlink::format::{self, Secrets};
use inferlink::store::{PostgresOptions, PostgresStore};
use inferlink::{
    Error, ErrorKind, ExtensionRecord, PutMode, Registry, Result, StepEnvironment, WorkflowStep,
};

use crate::input;
use crate::output;
use crate::transfer;
use crate::{
    Cli, Command, EnvArgs, ExecArgs, GetArgs, ListArgs, ListFormat, RecordFormat, RegisterArgs,
    ResolveArgs, ResolveFormat, UnregisterArgs,
};

/// What `main` does once the command has run and the registry is closed.
#[derive(Debug)]
pub(crate) enum Action {
    /// Nothing more: exit 0.
    Done,
    /// Replace (or run) a command with the resolved environment.
    Exec(ExecPlan),
}

/// A command to run with a workflow step's environment.
#[derive(Debug)]
pub(crate) struct ExecPlan {
    command: Vec<OsString>,
    env: StepEnvironment,
}

/// Where the registry lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoreLocation {
    /// An SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (may hold a password: never print it).
    Postgres(String),
}

/// The store: `--store` / `INFERLINK_STORE`, or `<data dir>/inferlink/registry.db`.
///
/// Forms (schemes matched ignoring case):
/// * `postgres://…` or `postgresql://…`: PostgreSQL;
/// * `sqlite:PATH` (relative or absolute) and `sqlite:///ABSOLUTE/PATH`: an SQLite file;
/// * any other `SCHEME://…`, `sqlite://NAME` (a host, not a path) and
///   `sqlite::memory:` are refused with a message saying what to write;
/// * anything else is the path of an SQLite file.
pub(crate) fn store_location(store: Option<PathBuf>) -> Result<StoreLocation> {
    match store {
        Some(path) if path.as_os_str().is_empty() => Err(Error::new(
            ErrorKind::Config,
            "the store path (--store or INFERLINK_STORE) is empty",
        )),
        Some(path) => match path.to_str() {
            Some(text) => parse_store(text),
            None => Ok(StoreLocation::Sqlite(path)),
        },
        None => dirs::data_dir()
            .map(|dir| StoreLocation::Sqlite(dir.join("inferlink").join("registry.db")))
            .ok_or_else(crate::no_data_dir),
    }
}

/// The URL scheme `text` starts with (`SCHEME:`), if any; a single letter
/// is a Windows drive (`C:\…`), not a scheme.
fn url_scheme(text: &str) -> Option<&str> {
    let (scheme, _) = text.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && scheme.len() > 1
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(scheme)
}

fn store_error(text: &str, why: &str) -> Error {
    // Never echo a URL that may hold a password: show only its scheme.
    let shown = match url_scheme(text) {
        Some(scheme) => format!("{scheme}:…"),
        None => text.to_owned(),
    };
    Error::new(
        ErrorKind::Config,
        format!(
            "cannot use the store \"{}\": {why}",
            output::printable(&shown)
        ),
    )
}

fn parse_store(text: &str) -> Result<StoreLocation> {
    let Some(scheme) = url_scheme(text) else {
        return Ok(StoreLocation::Sqlite(PathBuf::from(text)));
    };
    let rest = &text[scheme.len() + 1..];
    let lower = scheme.to_ascii_lowercase();
    match lower.as_str() {
        "postgres" | "postgresql" => {
            if !rest.starts_with("//") {
                return Err(store_error(
                    text,
                    "a PostgreSQL URL is postgres://USER:PASSWORD@HOST:PORT/DBNAME",
                ));
            }
            Ok(StoreLocation::Postgres(format!("{lower}:{rest}")))
        }
        "sqlite" => sqlite_path(text, rest).map(StoreLocation::Sqlite),
        _ if rest.starts_with("//") => Err(store_error(
            text,
            "unknown URL scheme: use postgres://… (or postgresql://…), sqlite:PATH, sqlite:///ABSOLUTE/PATH, or a file path",
        )),
        // `name:with-colon.db` is a file name (a colon is legal in Unix file names).
        _ => Ok(StoreLocation::Sqlite(PathBuf::from(text))),
    }
}

/// The file of an `sqlite:` URL (`rest` is what follows `sqlite:`).
fn sqlite_path(text: &str, rest: &str) -> Result<PathBuf> {
    const FORMS: &str =
        "write sqlite:RELATIVE/PATH.db, sqlite:/ABSOLUTE/PATH.db or sqlite:///ABSOLUTE/PATH.db";
    if rest.is_empty() || rest == "//" || rest == "///" {
        return Err(store_error(text, &format!("no file path; {FORMS}")));
    }
    if rest.contains(":memory:") {
        return Err(store_error(
            text,
            "an in-memory database would be lost when the command ends; give a file",
        ));
    }
    if rest.contains(['?', '#', '%']) {
        return Err(store_error(
            text,
            "query parameters, fragments and %-escapes are not supported in sqlite: URLs; give the file path itself (--store PATH)",
        ));
    }
    match rest.strip_prefix("//") {
        // RFC 8089 form: an empty host, then the absolute path.
        Some(absolute) if absolute.starts_with('/') => Ok(PathBuf::from(absolute)),
        Some(host) => Err(store_error(
            text,
            &format!(
                "after sqlite:// comes a host (here \"{}\"), not a path; {FORMS}",
                host.split('/').next().unwrap_or_default()
            ),
        )),
        None => Ok(PathBuf::from(rest)),
    }
}

/// Opens the registry over the store at `location`.
async fn open(
    location: StoreLocation,
    pg_schema: String,
    key_file: Option<&std::path::Path>,
) -> Result<Registry> {
    match location {
        StoreLocation::Sqlite(path) => {
            let store = crate::keys::open_store(&path, key_file)?;
            Registry::open(store)
                .await
                .map_err(|e| e.with_context("store", path.display().to_string()))
        }
        StoreLocation::Postgres(url) => {
            // Errors name the server as postgres://user@host:port/db, never the password.
            let options = PostgresOptions {
                schema: pg_schema,
                key_provider: inferlink::crypto::load_key_provider(key_file)?,
                ..PostgresOptions::default()
            };
            let store = PostgresStore::connect(&url, options).await?;
            Registry::open(store).await
        }
    }
}

/// Runs the command of `cli`, writing its standard output to `out`.
pub(crate) async fn run(cli: Cli, out: &mut String) -> Result<Action> {
    let location = store_location(cli.store)?;
    if let Command::Export(args) = &cli.command {
        transfer::check_export(args)?;
    }
    if let Command::Blueprint(command) = cli.command {
        crate::blueprint::run(command, out)?;
        return Ok(Action::Done);
    }
    if let Command::Keys(command) = cli.command {
        crate::keys::run(
            command,
            &location,
            &cli.pg_schema,
            cli.key_file.as_deref(),
            out,
        )
        .await?;
        return Ok(Action::Done);
    }
    let mut registry = open(location, cli.pg_schema, cli.key_file.as_deref()).await?;
    if matches!(cli.command, Command::Register(_)) {
        // Records the linked connectors would refuse (an unknown key, a
        // blueprint naming an unknown parameter) are refused now, not at
        // the first call.
        registry = registry.with_validator(crate::connect::connectors()?);
    }
    let registry = std::sync::Arc::new(registry);
    match cli.command {
        Command::Register(args) => register(&registry, args, out).await?,
        Command::Unregister(args) => unregister(&registry, args, out).await?,
        Command::List(args) => list(&registry, args, out)?,
        Command::Get(args) => get(&registry, args, out)?,
        Command::Resolve(args) => resolve(&registry, args, out)?,
        Command::Env(args) => env(&registry, args, out)?,
        Command::Exec(args) => return exec_plan(&registry, args),
        Command::Export(args) => transfer::export(&registry, args, out).await?,
        Command::Import(args) => transfer::import(&registry, args, out).await?,
        Command::Check(args) => crate::connect::check(&registry, args, out).await?,
        Command::Health(args) => crate::connect::health(&registry, args, out).await?,
        Command::Models(args) => crate::connect::models(&registry, args, out).await?,
        Command::Metadata(args) => crate::connect::metadata(&registry, args, out).await?,
        Command::Infer(args) => crate::connect::infer(&registry, args, out).await?,
        Command::Invoke(args) => crate::connect::invoke(&registry, args).await?,
        Command::Batch(args) => crate::batch::run(&registry, args, out).await?,
        Command::Embed(args) => crate::text::embed(&registry, args, out).await?,
        Command::Rerank(args) => crate::text::rerank(&registry, args, out).await?,
        Command::Generate(args) => crate::text::generate(&registry, args).await?,
        #[cfg(feature = "sql")]
        Command::Sql(args) => crate::sql::run(&registry, args, out).await?,
        Command::Keys(_) | Command::Blueprint(_) => {
            return Err(Error::new(
                ErrorKind::Internal,
                "a command without a registry reached the registry commands",
            ));
        }
    }
    Ok(Action::Done)
}

/// `register`: parse and validate every record, then write them in one
/// transaction (all or none). The store checks, inside that transaction, that
/// a create finds no existing id and that `<hidden>` has a stored value to keep.
async fn register(registry: &Registry, args: RegisterArgs, out: &mut String) -> Result<()> {
    let input = input::read(&args.file)?;
    let file = input.label;
    let in_file = |e: Error| e.with_context("file", file.clone());
    let records = format::parse_records(&input.text).map_err(in_file)?;
    let existed: Vec<(String, bool)> = records
        .iter()
        .map(|r| (r.id.clone(), registry.get(&r.id).is_some()))
        .collect();
    let mode = if args.upsert {
        PutMode::Overwrite
    } else {
        PutMode::Create
    };
    let revisions = registry
        .put_all(records, mode)
        .await
        .map_err(|e| in_file(suggest_upsert(e)))?;
    for ((id, existed), revision) in existed.iter().zip(revisions) {
        let verb = if *existed { "updated" } else { "registered" };
        let _ = writeln!(
            out,
            "{verb} {} (revision {revision})",
            output::printable(id)
        );
    }
    Ok(())
}

/// Adds the `--upsert` hint to a store's "already exists" error.
fn suggest_upsert(e: Error) -> Error {
    if e.kind() != ErrorKind::AlreadyExists || e.message().contains("--upsert") {
        return e;
    }
    let hinted = Error::new(
        ErrorKind::AlreadyExists,
        format!("{}; use --upsert to replace it", e.message()),
    );
    match e.context("record") {
        Some(id) => hinted.with_context("record", id),
        None => hinted,
    }
}

/// `unregister`.
async fn unregister(registry: &Registry, args: UnregisterArgs, out: &mut String) -> Result<()> {
    registry.unregister(&args.id).await?;
    let _ = writeln!(out, "unregistered {}", output::printable(&args.id));
    Ok(())
}

/// `list`: never shows secret values.
fn list(registry: &Registry, args: ListArgs, out: &mut String) -> Result<()> {
    let filter = args.filter.into_filter();
    let records: Vec<ExtensionRecord> = registry
        .list(&filter)
        .into_iter()
        .map(|stored| stored.record.clone())
        .collect();
    out.push_str(&match args.output {
        ListFormat::Table => output::records_table(&records),
        ListFormat::Json => output::records_json(&records, Secrets::Hide)?,
        ListFormat::Yaml => output::records_yaml(&records, Secrets::Hide)?,
    });
    Ok(())
}

/// `get`: secrets hidden unless `--show-secrets`.
fn get(registry: &Registry, args: GetArgs, out: &mut String) -> Result<()> {
    let stored = registry
        .get(&args.id)
        .ok_or_else(|| Error::not_found(format!("no record with id \"{}\"", args.id)))?;
    let secrets = if args.show_secrets {
        Secrets::Reveal
    } else {
        Secrets::Hide
    };
    let json = args.output == RecordFormat::Json;
    out.push_str(&output::record(&stored.record, json, secrets)?);
    Ok(())
}

/// `resolve`: the best resolution as a summary, or the ranked list; `--explain` first.
fn resolve(registry: &Registry, args: ResolveArgs, out: &mut String) -> Result<()> {
    let selector = args.selector.selector();
    let consumer = args.consumer.consumer();
    let explanation = if args.explain {
        Some(registry.explain(&selector, &consumer)?)
    } else {
        None
    };
    let result = match args.output {
        ResolveFormat::Text => registry
            .resolve(&selector, &consumer)
            .map(|found| output::resolution_summary(&found)),
        ResolveFormat::Json => registry
            .resolve_all(&selector, &consumer)
            .and_then(|all| output::resolutions_json(&all)),
        ResolveFormat::Yaml => registry
            .resolve_all(&selector, &consumer)
            .and_then(|all| output::resolutions_yaml(&all)),
    };
    // The explanation is printed also when nothing matches (then the error follows on stderr).
    if let Some(explanation) = explanation {
        let _ = writeln!(out, "{}", output::printable_lines(&explanation.to_string()));
        if result.is_ok() && args.output == ResolveFormat::Text {
            out.push('\n');
        }
    }
    out.push_str(&result?);
    Ok(())
}

/// Reads, parses and resolves a workflow step file.
fn step_environment(
    registry: &Registry,
    step: &std::path::Path,
    consumer: &crate::ConsumerArgs,
) -> Result<StepEnvironment> {
    let input = input::read(step)?;
    let file = input.label;
    let step = WorkflowStep::parse(&input.text).map_err(|e| e.with_context("file", &file))?;
    registry
        .step_environment(&step, &consumer.consumer())
        .map_err(|e| e.with_context("file", file))
}

/// `env`: an env file (`KEY=VALUE` lines that `sh` and `docker --env-file`
/// read alike); secret values are comment lines unless `--reveal`. A value
/// that cannot be written so is an error, and nothing is printed.
fn env(registry: &Registry, args: EnvArgs, out: &mut String) -> Result<()> {
    let env = step_environment(registry, &args.step, &args.consumer)?;
    let secrets = if args.reveal {
        Secrets::Reveal
    } else {
        Secrets::Hide
    };
    out.push_str(&env.to_env_file(secrets)?);
    Ok(())
}

/// `exec`: resolves the step; the command runs after the registry is closed.
fn exec_plan(registry: &Registry, args: ExecArgs) -> Result<Action> {
    let env = step_environment(registry, &args.step, &args.consumer)?;
    Ok(Action::Exec(ExecPlan {
        command: args.command,
        env,
    }))
}

/// Runs the planned command with the step's variables added to the inherited
/// environment, and returns the exit status for `inferlink`.
///
/// On Unix the command replaces the `inferlink` process (`execvp`), so it
/// keeps the process id, receives signals sent to it directly (Ctrl-C,
/// `SIGTERM` from a supervisor) and its exit status (or the signal that ended
/// it) is what the caller sees. Elsewhere it runs as a child and its exit
/// code is passed on. Only when the command cannot be started does this
/// return: 127 when it is not found, 126 when it cannot be executed.
pub(crate) fn exec(plan: ExecPlan) -> u8 {
    let Some((program, args)) = plan.command.split_first() else {
        crate::report("exec: no command given (put it after `--`)");
        return crate::EXIT_USAGE;
    };
    let mut command = std::process::Command::new(program);
    command.args(args).envs(plan.env.exposed());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let error = command.exec();
        cannot_run(program, &error)
    }
    #[cfg(not(unix))]
    {
        match command.status() {
            Ok(status) => std::process::exit(status.code().unwrap_or(crate::EXIT_FAILURE.into())),
            Err(error) => cannot_run(program, &error),
        }
    }
}

/// Reports a command that could not be started; returns 127 (not found) or 126.
fn cannot_run(program: &std::ffi::OsStr, error: &std::io::Error) -> u8 {
    let name = program.to_string_lossy();
    match error.kind() {
        std::io::ErrorKind::NotFound => {
            crate::report(&format!("cannot run \"{name}\": command not found"));
            crate::EXIT_COMMAND_NOT_FOUND
        }
        std::io::ErrorKind::PermissionDenied => {
            crate::report(&format!(
                "cannot run \"{name}\": permission denied (not an executable file)"
            ));
            crate::EXIT_CANNOT_EXECUTE
        }
        _ => {
            crate::report(&format!("cannot run \"{name}\": {error}"));
            crate::EXIT_CANNOT_EXECUTE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location(text: &str) -> Result<StoreLocation> {
        store_location(Some(PathBuf::from(text)))
    }

    fn sqlite(path: &str) -> StoreLocation {
        StoreLocation::Sqlite(PathBuf::from(path))
    }

    #[test]
    fn postgres_schemes_match_ignoring_case() {
        for url in [
            "Postgres://u@h/db",
            "POSTGRESQL://u@h/db",
            "postgres://u@h/db",
        ] {
            let StoreLocation::Postgres(found) = location(url).unwrap() else {
                panic!("{url} is a PostgreSQL URL");
            };
            assert!(found.starts_with("postgres"), "{found}");
            assert!(found.ends_with("://u@h/db"), "{found}");
        }
        let err = location("postgres:u@h/db").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
    }

    #[test]
    fn sqlite_urls_name_files_or_are_refused() {
        assert_eq!(
            location("sqlite:registry.db").unwrap(),
            sqlite("registry.db")
        );
        assert_eq!(location("SQLite:dir/r.db").unwrap(), sqlite("dir/r.db"));
        assert_eq!(location("sqlite:/abs/r.db").unwrap(), sqlite("/abs/r.db"));
        assert_eq!(location("sqlite:///abs/r.db").unwrap(), sqlite("/abs/r.db"));
        for (bad, why) in [
            ("sqlite://registry.db", "comes a host"),
            ("sqlite:", "no file path"),
            ("sqlite:///", "no file path"),
            ("sqlite::memory:", "in-memory"),
            ("sqlite:r.db?mode=ro", "query"),
            ("sqlite:my%20r.db", "%-escapes"),
            ("mysql://u:pw@h/db", "unknown URL scheme"),
        ] {
            let err = location(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{bad}");
            assert!(err.message().contains(why), "{bad}: {err}");
            assert!(!err.message().contains("pw"), "no password: {err}");
        }
    }

    #[test]
    fn other_text_is_a_file_path() {
        assert_eq!(location("registry.db").unwrap(), sqlite("registry.db"));
        assert_eq!(
            location("name:with-colon.db").unwrap(),
            sqlite("name:with-colon.db")
        );
        assert_eq!(location("C:/data/r.db").unwrap(), sqlite("C:/data/r.db"));
    }
}
