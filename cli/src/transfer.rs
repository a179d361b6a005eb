//! `export` and `import`: records to and from files, so they can be kept in git.
//!
//! Export writes YAML (or JSON) in the record format, sorted by id, secrets
//! `<hidden>` unless `--with-secrets` (which needs a confirmation flag).
//! Files are written atomically: every file goes to a temporary file in the
//! target directory first, and only when all of them are complete are they
//! renamed into place.
//!
//! Import reads a file, standard input or a directory tree, plans the change
//! with [`inferlink::import::ImportPlan`] and applies it in one transaction.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use inferlink::format::{self, Format, ParseLimits, Secrets};
use inferlink::import::{ImportAction, ImportItem, ImportOptions, ImportPlan};
use inferlink::{Error, ErrorKind, ExtensionRecord, Registry, Result, Revision};

use crate::input;
use crate::output;

/// The flag that confirms `--with-secrets`.
pub(crate) const CONFIRM_SECRETS: &str = "i-understand-secrets-are-written-in-clear";

/// Most files an import reads from one directory tree.
const MAX_IMPORT_FILES: usize = 100_000;
/// Most bytes an import reads from one directory tree, all files together (256 MiB).
const MAX_IMPORT_BYTES: usize = 256 * 1024 * 1024;
/// Deepest directory nesting an import descends into.
const MAX_IMPORT_DEPTH: usize = 32;

/// Arguments of `export`.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// Where to write: omitted or `-` is standard output; an existing directory, or a path
    /// ending in `/`, gets one file per record (`<id>.yaml` or `<id>.json`, created if missing);
    /// any other path is one file holding every record
    #[arg(short = 'o', long = "output", value_name = "FILE|DIR")]
    output: Option<PathBuf>,

    /// The format of the records
    #[arg(long, value_enum, default_value_t = ExportFormat::Yaml)]
    format: ExportFormat,

    #[command(flatten)]
    filter: crate::FilterArgs,

    /// Replace files that already exist (without it, an existing file is an error and nothing is written)
    #[arg(long)]
    force: bool,

    /// Write credential values in clear text instead of `<hidden>`; needs
    /// --i-understand-secrets-are-written-in-clear. Files are then created with mode 0600.
    #[arg(long)]
    with_secrets: bool,

    /// Confirms --with-secrets: the output holds every credential value in clear text
    #[arg(long = CONFIRM_SECRETS, requires = "with_secrets")]
    secrets_confirmed: bool,
}

/// Formats of `export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ExportFormat {
    /// YAML: a multi-document stream, or one document per file
    Yaml,
    /// JSON: an array, or one object per file
    Json,
}

impl ExportFormat {
    fn extension(self) -> &'static str {
        match self {
            ExportFormat::Yaml => "yaml",
            ExportFormat::Json => "json",
        }
    }
}

/// Arguments of `import`.
#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The records: a directory (every *.yaml, *.yml, *.json and *.jsonl file in it and its
    /// subdirectories, in path order; names starting with `.` are skipped), one file, or `-`
    /// for standard input. JSON lines (one record per line: *.jsonl, *.ndjson, or detected)
    /// suit bulk loads
    #[arg(short = 'f', long = "file", value_name = "DIR|FILE")]
    file: PathBuf,

    /// Also delete every stored record that the input does not hold
    #[arg(long)]
    prune: bool,

    /// Print what would change and write nothing
    #[arg(long)]
    dry_run: bool,

    /// The format of the report
    #[arg(short = 'o', long = "output", value_enum, default_value_t = ReportFormat::Text)]
    output: ReportFormat,
}

/// Formats of the `import` report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReportFormat {
    /// One `<action> <id>` line per record, then a summary line
    Text,
    /// One JSON object: dry_run, revision, and the ids by action
    Json,
}

/// Checks the arguments before the store is opened: `--with-secrets` needs its confirmation.
pub(crate) fn check_export(args: &ExportArgs) -> Result<()> {
    if args.with_secrets && !args.secrets_confirmed {
        return Err(Error::invalid(format!(
            "--with-secrets writes every credential value in clear text; nothing was written. \
             Add --{CONFIRM_SECRETS} to confirm, and keep the output out of shared places \
             (git repositories, logs, terminals others can see)"
        )));
    }
    Ok(())
}

/// Where `export` writes.
enum Target {
    Stdout,
    File(PathBuf),
    Dir(PathBuf),
}

impl Target {
    fn of(output: Option<PathBuf>) -> Target {
        let Some(path) = output else {
            return Target::Stdout;
        };
        if path.as_os_str() == "-" {
            return Target::Stdout;
        }
        let text = path.as_os_str().to_string_lossy();
        let trailing_slash = text.ends_with('/') || text.ends_with(std::path::MAIN_SEPARATOR);
        if trailing_slash || path.is_dir() {
            Target::Dir(path)
        } else {
            Target::File(path)
        }
    }
}

/// `export`: every record passing the filters, sorted by id.
pub(crate) async fn export(registry: &Registry, args: ExportArgs, out: &mut String) -> Result<()> {
    check_export(&args)?;
    let filter = args.filter.into_filter();
    let records: Vec<ExtensionRecord> = registry
        .store()
        .list(&filter)
        .await?
        .records
        .into_iter()
        .map(|stored| stored.record)
        .collect();
    let secrets = if args.with_secrets {
        Secrets::Reveal
    } else {
        Secrets::Hide
    };
    let json = args.format == ExportFormat::Json;
    let private = args.with_secrets;
    let all = |records: &[ExtensionRecord]| {
        if json {
            output::records_json(records, secrets)
        } else {
            output::records_yaml(records, secrets)
        }
    };
    let count = records.len();
    let noun = if count == 1 { "record" } else { "records" };
    let clear = if private {
        "; credential values are in clear text (mode 0600)"
    } else {
        ""
    };
    match Target::of(args.output) {
        Target::Stdout => out.push_str(&all(&records)?),
        Target::File(path) => {
            let text = all(&records)?;
            write_files(vec![(path.clone(), text)], args.force, private)?;
            let _ = writeln!(out, "exported {count} {noun} to {}{clear}", path.display());
        }
        Target::Dir(dir) => {
            let mut files = Vec::with_capacity(records.len());
            for record in &records {
                let path = file_in(&dir, &record.id, args.format.extension())?;
                files.push((path, output::record(record, json, secrets)?));
            }
            make_dir(&dir, private)?;
            write_files(files, args.force, private)?;
            let _ = writeln!(
                out,
                "exported {count} {noun} to {}, one file per record{clear}",
                dir.display()
            );
        }
    }
    Ok(())
}

/// The file `<id>.<extension>` directly inside `dir`.
///
/// Ids come from the store, which validates every record it reads; this
/// checks again anyway, so a tampered row can never make export write
/// outside `dir`: the id must be a record id (letters, digits, `_`, `-`,
/// `.`, not starting with `.` or `-`, at most 100 bytes), the file name one
/// plain path component, and the result's parent exactly `dir`. (Writing
/// never follows a symbolic link either: files are created new and moved
/// into place, replacing a link rather than writing through it.)
fn file_in(dir: &Path, id: &str, extension: &str) -> Result<PathBuf> {
    let refuse = || {
        let shown: String = id.chars().take(100).collect();
        Error::new(
            ErrorKind::Storage,
            format!(
                "cannot export the stored record {:?}: its id cannot name a file inside \"{}\" (the store was changed outside inferlink?); nothing was written",
                shown,
                dir.display()
            ),
        )
        .with_context("record", shown)
    };
    let mut bytes = id.bytes();
    let valid_id = id.len() <= 100
        && matches!(bytes.next(), Some(b) if b.is_ascii_alphanumeric() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !valid_id {
        return Err(refuse());
    }
    let name = format!("{id}.{extension}");
    let mut components = Path::new(&name).components();
    let one_plain_name = matches!(
        (components.next(), components.next()),
        (Some(std::path::Component::Normal(_)), None)
    );
    let path = dir.join(&name);
    if !one_plain_name || path.parent() != Some(dir) {
        return Err(refuse());
    }
    Ok(path)
}

/// Creates `dir` and its parents if missing (mode 0700 when it will hold secrets).
fn make_dir(dir: &Path, private: bool) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if dir.exists() {
        return Err(Error::invalid(format!(
            "cannot export into \"{}\": it exists and is not a directory",
            dir.display()
        )));
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    #[cfg(not(unix))]
    let _ = private;
    builder
        .create(dir)
        .map_err(|e| io_error(format!("cannot create directory \"{}\"", dir.display()), e))
}

fn io_error(what: String, e: io::Error) -> Error {
    Error::new(ErrorKind::Storage, format!("{what}: {e}"))
}

/// The directory a file is written into (`.` for a bare file name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Temporary files that are removed unless committed.
struct Staged {
    files: Vec<(PathBuf, PathBuf)>,
}

impl Drop for Staged {
    fn drop(&mut self) {
        for (temp, _) in &self.files {
            let _ = fs::remove_file(temp);
        }
    }
}

/// Writes every `(path, text)` pair, all or none as far as the file system allows.
///
/// Without `force`, any existing target is an error before anything is
/// written. Each text is written to a temporary file next to its target and
/// flushed to disk; only when every one is complete are they moved into place
/// (rename with `force`; otherwise a hard link, which refuses to replace a file
/// that appeared meanwhile). An error removes the temporary files, so no
/// target is ever left half written. `private` files get mode 0600.
fn write_files(files: Vec<(PathBuf, String)>, force: bool, private: bool) -> Result<()> {
    for (path, _) in &files {
        if path.is_dir() {
            return Err(Error::invalid(format!(
                "cannot write \"{}\": it is a directory",
                path.display()
            )));
        }
        let parent = parent_of(path);
        if !parent.is_dir() {
            return Err(Error::invalid(format!(
                "cannot write \"{}\": directory \"{}\" does not exist",
                path.display(),
                parent.display()
            )));
        }
    }
    if !force {
        let existing: Vec<&Path> = files
            .iter()
            .map(|(p, _)| p.as_path())
            .filter(|p| p.symlink_metadata().is_ok())
            .collect();
        if let Some(first) = existing.first() {
            let message = if existing.len() == 1 {
                format!(
                    "\"{}\" already exists; nothing was written. Pass --force to replace it",
                    first.display()
                )
            } else {
                format!(
                    "{} files already exist (\"{}\" and others); nothing was written. Pass --force to replace them",
                    existing.len(),
                    first.display()
                )
            };
            return Err(Error::new(ErrorKind::AlreadyExists, message));
        }
    }
    let mut staged = Staged {
        files: Vec::with_capacity(files.len()),
    };
    for (path, text) in files {
        let temp = create_temp(&path, private)?;
        staged.files.push((temp.1.clone(), path.clone()));
        let mut file = temp.0;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| io_error(format!("cannot write \"{}\"", path.display()), e))?;
    }
    let mut dirs = HashSet::new();
    while let Some((temp, path)) = staged.files.pop() {
        let placed = place(&temp, &path, force);
        let _ = fs::remove_file(&temp);
        placed?;
        dirs.insert(parent_of(&path).to_path_buf());
    }
    for dir in dirs {
        sync_dir(&dir);
    }
    Ok(())
}

/// Creates a new temporary file next to `path` (a hidden name, which `import` skips).
fn create_temp(path: &Path, private: bool) -> Result<(File, PathBuf)> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let parent = parent_of(path);
    let mut last = None;
    for attempt in 0..100u32 {
        let temp = parent.join(format!(
            ".{name}.{}-{attempt}.inferlink-tmp",
            std::process::id()
        ));
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        if private {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        #[cfg(not(unix))]
        let _ = private;
        match options.open(&temp) {
            Ok(file) => return Ok((file, temp)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => {
                return Err(io_error(
                    format!("cannot create a file in \"{}\"", parent.display()),
                    e,
                ));
            }
        }
    }
    Err(io_error(
        format!("cannot create a temporary file in \"{}\"", parent.display()),
        last.unwrap_or_else(|| io::Error::other("no free name")),
    ))
}

/// Moves a complete temporary file to its target.
fn place(temp: &Path, path: &Path, force: bool) -> Result<()> {
    let cannot = |e| io_error(format!("cannot write \"{}\"", path.display()), e);
    if force {
        return fs::rename(temp, path).map_err(cannot);
    }
    let appeared = || {
        Error::new(
            ErrorKind::AlreadyExists,
            format!(
                "\"{}\" was created by someone else during the export; pass --force to replace it",
                path.display()
            ),
        )
    };
    match fs::hard_link(temp, path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(appeared()),
        // File systems without hard links: check, then rename.
        Err(_) if path.symlink_metadata().is_ok() => Err(appeared()),
        Err(_) => fs::rename(temp, path).map_err(cannot),
    }
}

/// Flushes a directory's entries to disk (best effort; Unix only).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

// --- import -------------------------------------------------------------------

/// `import`: parse everything, plan, then apply all changes in one transaction.
pub(crate) async fn import(registry: &Registry, args: ImportArgs, out: &mut String) -> Result<()> {
    let items = read_items(&args.file)?;
    let options = ImportOptions { prune: args.prune };
    let plan = ImportPlan::for_store(registry.store().as_ref(), items, options).await?;
    let revisions = if args.dry_run {
        Vec::new()
    } else {
        plan.apply(registry).await?
    };
    let revision = revisions.iter().max().copied();
    out.push_str(&match args.output {
        ReportFormat::Text => report_text(&plan, args.dry_run, revision),
        ReportFormat::Json => report_json(&plan, args.dry_run, revision)?,
    });
    Ok(())
}

/// Reads and parses every record of the input; any error names the file.
fn read_items(path: &Path) -> Result<Vec<ImportItem>> {
    if path == Path::new("-") {
        let input = input::read(path)?;
        return parse_file(&input.text, None, input.label);
    }
    let meta = fs::metadata(path)
        .map_err(|e| Error::invalid(format!("cannot read \"{}\": {e}", path.display())))?;
    if !meta.is_dir() {
        let format = format_of(path);
        let input = input::read(path)?;
        return parse_file(&input.text, format, input.label);
    }
    let files = record_files(path)?;
    if files.is_empty() {
        return Err(Error::invalid(format!(
            "\"{}\" holds no *.yaml, *.yml, *.json or *.jsonl files",
            path.display()
        )));
    }
    let mut items = Vec::new();
    let mut total = 0usize;
    for file in files {
        let input = input::read(&file)?;
        total += input.text.len();
        if total > MAX_IMPORT_BYTES {
            return Err(Error::invalid(format!(
                "the files under \"{}\" hold more than {} MiB; import them in parts",
                path.display(),
                MAX_IMPORT_BYTES / (1024 * 1024)
            )));
        }
        items.extend(parse_file(&input.text, format_of(&file), input.label)?);
    }
    Ok(items)
}

/// The format named by a file's extension, if it names one.
fn format_of(path: &Path) -> Option<Format> {
    path.extension().and_then(|e| e.to_str()).and_then(|ext| {
        match ext.to_ascii_lowercase().as_str() {
            "jsonl" | "ndjson" => Some(Format::Json),
            ext => Format::from_extension(ext),
        }
    })
}

/// Whether `text` is JSON lines: its first two non-empty lines each start
/// an object (a pretty-printed object's second line never does).
fn is_json_lines(text: &str) -> bool {
    let mut lines = text
        .trim_start_matches('\u{feff}')
        .lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty());
    matches!((lines.next(), lines.next()), (Some(a), Some(b)) if a.starts_with('{') && b.starts_with('{'))
}

fn parse_file(text: &str, format: Option<Format>, label: String) -> Result<Vec<ImportItem>> {
    let format = format.unwrap_or_else(|| Format::detect(text));
    let limits = ParseLimits::default();
    let records = if format == Format::Json && is_json_lines(text) {
        format::parse_json_lines(text, &limits)
    } else {
        format::parse_records_as(text, format, &limits)
    }
    .map_err(|e| e.with_context("file", label.clone()))?;
    Ok(records
        .into_iter()
        .map(|record| ImportItem::new(record, label.clone()))
        .collect())
}

/// Every record file under `root`, sorted by path.
///
/// Descends into subdirectories (following symbolic links, each directory
/// once); skips names starting with `.` (`.git`, editors' and export's
/// temporary files) and files of other extensions.
fn record_files(root: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut visited = HashSet::new();
    walk(root, 0, &mut files, &mut visited)?;
    files.sort();
    Ok(files)
}

fn walk(
    dir: &Path,
    depth: usize,
    files: &mut Vec<PathBuf>,
    visited: &mut HashSet<PathBuf>,
) -> Result<()> {
    let cannot = |e: io::Error| Error::invalid(format!("cannot read \"{}\": {e}", dir.display()));
    if depth > MAX_IMPORT_DEPTH {
        return Err(Error::invalid(format!(
            "\"{}\" is nested more than {MAX_IMPORT_DEPTH} directories deep",
            dir.display()
        )));
    }
    if !visited.insert(fs::canonicalize(dir).map_err(cannot)?) {
        return Ok(());
    }
    let mut entries = fs::read_dir(dir)
        .map_err(cannot)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<io::Result<Vec<_>>>()
        .map_err(cannot)?;
    entries.sort();
    for path in entries {
        let hidden = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if hidden {
            continue;
        }
        let meta = fs::metadata(&path)
            .map_err(|e| Error::invalid(format!("cannot read \"{}\": {e}", path.display())))?;
        if meta.is_dir() {
            walk(&path, depth + 1, files, visited)?;
        } else if meta.is_file() && format_of(&path).is_some() {
            if files.len() >= MAX_IMPORT_FILES {
                return Err(Error::invalid(format!(
                    "more than {MAX_IMPORT_FILES} record files to import; import them in parts"
                )));
            }
            files.push(path);
        }
    }
    Ok(())
}

/// The text report: `<action> <id>` lines grouped by action, then a summary.
fn report_text(plan: &ImportPlan, dry_run: bool, revision: Option<Revision>) -> String {
    let mut out = String::new();
    let mut counts = Vec::new();
    for action in ImportAction::ALL {
        let word = if dry_run {
            action.as_str()
        } else {
            action.done()
        };
        let mut n = 0;
        for id in plan.ids(action) {
            let _ = writeln!(out, "{word} {id}");
            n += 1;
        }
        counts.push(match (dry_run, action) {
            (true, ImportAction::Unchanged) | (false, _) => format!("{n} {}", action.done()),
            (true, _) => format!("{n} to {}", action.as_str()),
        });
    }
    let counts = counts.join(", ");
    if dry_run {
        let _ = writeln!(out, "dry run: {counts}; nothing was written");
    } else {
        match revision {
            Some(rev) => {
                let _ = writeln!(out, "imported: {counts} (revision {rev})");
            }
            None => {
                let _ = writeln!(out, "imported: {counts}; nothing to write");
            }
        }
    }
    out
}

/// The JSON report: `{"dry_run", "revision", "created", "updated", "unchanged", "deleted"}`.
fn report_json(plan: &ImportPlan, dry_run: bool, revision: Option<Revision>) -> Result<String> {
    #[derive(serde::Serialize)]
    struct Report<'a> {
        dry_run: bool,
        revision: Option<Revision>,
        created: Vec<&'a str>,
        updated: Vec<&'a str>,
        unchanged: Vec<&'a str>,
        deleted: Vec<&'a str>,
    }
    let ids = |action| plan.ids(action).collect::<Vec<_>>();
    let report = Report {
        dry_run,
        revision,
        created: ids(ImportAction::Create),
        updated: ids(ImportAction::Update),
        unchanged: ids(ImportAction::Unchanged),
        deleted: ids(ImportAction::Delete),
    };
    let mut text = serde_json::to_string_pretty(&report)
        .map_err(|e| Error::new(ErrorKind::Internal, format!("cannot write JSON: {e}")))?;
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_file_names_never_leave_the_directory() {
        let dir = Path::new("/tmp/export-here");
        assert_eq!(
            file_in(dir, "mlflow-0001", "yaml").unwrap(),
            dir.join("mlflow-0001.yaml")
        );
        assert_eq!(
            file_in(dir, "a.b_c", "json").unwrap(),
            dir.join("a.b_c.json")
        );
        for hostile in [
            "../../x",
            "/etc/cron.d/x",
            "..",
            ".",
            "",
            ".hidden",
            "-rf",
            "a/b",
            "a\\b",
            "C:x",
            "x\0y",
            "\u{1b}[2Jx",
            &"a".repeat(101),
        ] {
            let e = file_in(dir, hostile, "yaml").unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Storage, "{hostile:?}: {e}");
            assert!(e.message().contains("cannot export"), "{e}");
        }
    }

    #[test]
    fn targets_follow_the_output_path() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(Target::of(None), Target::Stdout));
        assert!(matches!(Target::of(Some("-".into())), Target::Stdout));
        assert!(matches!(
            Target::of(Some(dir.path().to_path_buf())),
            Target::Dir(_)
        ));
        assert!(matches!(
            Target::of(Some(dir.path().join("new/"))),
            Target::Dir(_)
        ));
        assert!(matches!(
            Target::of(Some(dir.path().join("records.yaml"))),
            Target::File(_)
        ));
    }

    #[test]
    fn a_failed_write_leaves_no_file_behind() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("a.yaml");
        // The second target's directory is missing: the check fails before any write.
        let e = write_files(
            vec![
                (good.clone(), "id: a\n".into()),
                (dir.path().join("missing/b.yaml"), "id: b\n".into()),
            ],
            false,
            false,
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn existing_files_are_kept_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.yaml");
        let b = dir.path().join("b.yaml");
        fs::write(&b, "old").unwrap();
        let files = || vec![(a.clone(), "new a".into()), (b.clone(), "new b".into())];
        let e = write_files(files(), false, false).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
        assert!(e.message().contains("--force"), "{e}");
        assert!(!a.exists(), "nothing written");
        assert_eq!(fs::read_to_string(&b).unwrap(), "old");
        write_files(files(), true, false).unwrap();
        assert_eq!(fs::read_to_string(&a).unwrap(), "new a");
        assert_eq!(fs::read_to_string(&b).unwrap(), "new b");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
    }

    #[test]
    fn a_file_that_appears_meanwhile_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.yaml");
        let (mut file, temp) = create_temp(&a, false).unwrap();
        file.write_all(b"mine").unwrap();
        fs::write(&a, "theirs").unwrap();
        let e = place(&temp, &a, false).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
        assert_eq!(fs::read_to_string(&a).unwrap(), "theirs");
    }

    #[test]
    fn record_files_are_found_recursively_sorted_and_hidden_ones_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for name in [
            "b.yaml",
            "a.json",
            "notes.md",
            ".hidden.yaml",
            "zone/c.yml",
            "zone/deeper/d.YAML",
            ".git/e.yaml",
        ] {
            let path = root.join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, "id: x\n").unwrap();
        }
        #[cfg(unix)]
        std::os::unix::fs::symlink(root, root.join("zone/loop")).unwrap();
        let found: Vec<String> = record_files(root)
            .unwrap()
            .iter()
            .map(|p| {
                p.strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/")
            })
            .collect();
        assert_eq!(
            found,
            ["a.json", "b.yaml", "zone/c.yml", "zone/deeper/d.YAML"]
        );
    }
}
