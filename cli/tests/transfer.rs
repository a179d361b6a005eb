//! End-to-end tests of `inferlink export` and `inferlink import` against a
//! temporary SQLite store, with the seed 004 fixtures of the core crate.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

/// The seed's records that carry real values (`mlflow.yaml` uses `<hidden>` on purpose).
const RECORDS: &[&str] = &[
    "mlflow-0001.yaml",
    "mlflow-model-store-0001.yaml",
    "gitea-devel-rd.yaml",
    "minio-s3-storage.yaml",
    "aws-object-storage.yaml",
    "kserve-local.yaml",
    "seldon-core-production.yaml",
];

/// Credential values of `mlflow-0001.yaml`.
const MLFLOW_SECRET_KEY: &str = "cMGiZff8KqS5xWQ4eagRujh1tDcbQyRP0bEJSBOf";

const CONFIRM: &str = "--i-understand-secrets-are-written-in-clear";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/seed004")
        .join(name)
}

/// What one run of the binary produced.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn ok(&self) -> &Self {
        assert_eq!(self.code, Some(0), "exit status of {self:#?}");
        assert_eq!(self.stderr, "", "stderr of {self:#?}");
        self
    }

    /// A failure with `code`: one `inferlink: …` line holding every part of `want`, no stdout.
    #[track_caller]
    fn fails(&self, code: i32, want: &[&str]) -> &Self {
        assert_eq!(self.code, Some(code), "exit status of {self:#?}");
        assert_eq!(self.stdout, "", "stdout of {self:#?}");
        assert!(
            self.stderr.starts_with("inferlink: ") && self.stderr.lines().count() == 1,
            "one error line: {self:#?}"
        );
        for part in want {
            assert!(self.stderr.contains(part), "{part:?} in {self:#?}");
        }
        self
    }
}

/// A temporary registry and directory, and a way to run the binary against it.
struct Cli {
    dir: TempDir,
}

/// The base64 test master key (the same one `cli/tests/cli.rs` uses).
const TEST_KEY: &str = "aW5mZXJsaW5rLXRlc3QtbWFzdGVyLWtleS0wMDAwMDE=";

impl Cli {
    fn new() -> Cli {
        Cli {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn seeded() -> Cli {
        let cli = Cli::new();
        for name in RECORDS {
            cli.run(&["register", "-f", fixture(name).to_str().unwrap()])
                .ok();
        }
        cli
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_owned()
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.path(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_inferlink"));
        cmd.arg("--store")
            .arg(self.path("registry.db"))
            .args(args)
            .env_remove("INFERLINK_STORE")
            // Credential values are encrypted at rest: every run gets the test master key.
            .env("INFERLINK_MASTER_KEY", TEST_KEY)
            .env_remove("INFERLINK_KEY_FILE");
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        let out = self
            .command(args)
            .stdin(Stdio::null())
            .output()
            .expect("the inferlink binary runs");
        Run {
            code: out.status.code(),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        Run {
            code: out.status.code(),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    /// Every record with its secrets, as the registry holds them (the state to compare).
    fn state(&self) -> String {
        self.run(&["export", "--format", "json", "--with-secrets", CONFIRM])
            .ok()
            .stdout
            .clone()
    }

    fn ids(&self) -> Vec<String> {
        ids_of_json(&self.run(&["list", "-o", "json"]).ok().stdout)
    }
}

fn ids_of_json(text: &str) -> Vec<String> {
    let value: serde_json::Value = serde_json::from_str(text).unwrap();
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The ids of [`RECORDS`], sorted.
fn sorted_ids() -> Vec<String> {
    let mut ids: Vec<String> = RECORDS
        .iter()
        .map(|name| name.trim_end_matches(".yaml").to_owned())
        .collect();
    ids.sort();
    ids
}

// --- export -------------------------------------------------------------------

#[test]
fn export_prints_every_record_sorted_by_id_with_secrets_hidden() {
    let cli = Cli::seeded();
    let yaml = cli.run(&["export"]).ok().stdout.clone();
    assert!(yaml.contains("<hidden>"), "{yaml}");
    assert!(!yaml.contains(MLFLOW_SECRET_KEY), "{yaml}");
    let ids: Vec<&str> = yaml
        .lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .collect();
    assert_eq!(ids, sorted_ids());
    assert_eq!(yaml.matches("\n---\n").count(), RECORDS.len() - 1, "{yaml}");
    // Deterministic, and the same records as `list -o yaml`.
    assert_eq!(cli.run(&["export"]).ok().stdout, yaml);
    assert_eq!(cli.run(&["list", "-o", "yaml"]).ok().stdout, yaml);

    let json = cli.run(&["export", "--format", "json"]).ok().stdout.clone();
    assert_eq!(ids_of_json(&json), sorted_ids());
    assert!(!json.contains(MLFLOW_SECRET_KEY));

    let filtered = cli.run(&["export", "--product", "mlflow", "--format", "json"]);
    assert_eq!(ids_of_json(&filtered.ok().stdout), ["mlflow-0001"]);
    let by_resource = cli.run(&["export", "--resource", "s3", "--format", "json"]);
    assert_eq!(
        ids_of_json(&by_resource.ok().stdout),
        [
            "aws-object-storage",
            "minio-s3-storage",
            "mlflow-0001",
            "mlflow-model-store-0001"
        ]
    );
}

#[test]
fn export_to_a_directory_writes_one_file_per_record_and_refuses_to_overwrite() {
    let cli = Cli::seeded();
    let dir = cli.arg("records/");
    let run = cli.run(&["export", "-o", &dir]);
    assert!(
        run.ok().stdout.starts_with("exported 7 records to "),
        "{run:#?}"
    );
    let expected: Vec<String> = sorted_ids().iter().map(|id| format!("{id}.yaml")).collect();
    assert_eq!(names_in(&cli.path("records")), expected);
    for id in sorted_ids() {
        let text = fs::read_to_string(cli.path(&format!("records/{id}.yaml"))).unwrap();
        assert!(text.starts_with(&format!("id: {id}\n")), "{text}");
        assert!(!text.contains("---"), "one document per file: {text}");
        assert!(!text.contains(MLFLOW_SECRET_KEY), "{text}");
    }
    let mlflow = cli.path("records/mlflow-0001.yaml");
    let before = fs::read_to_string(&mlflow).unwrap();
    fs::write(&mlflow, "edited\n").unwrap();

    // Again without --force: refused, nothing touched.
    cli.run(&["export", "-o", &dir])
        .fails(2, &["already exist", "--force", "nothing was written"]);
    assert_eq!(fs::read_to_string(&mlflow).unwrap(), "edited\n");
    assert_eq!(names_in(&cli.path("records")), expected);

    // The existing directory is recognised without the trailing slash too.
    cli.run(&["export", "-o", &cli.arg("records"), "--force"])
        .ok();
    assert_eq!(fs::read_to_string(&mlflow).unwrap(), before);
    assert_eq!(
        names_in(&cli.path("records")),
        expected,
        "no temporary files"
    );

    cli.run(&["export", "--format", "json", "-o", &cli.arg("json/")])
        .ok();
    let json = fs::read_to_string(cli.path("json/kserve-local.json")).unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["id"], "kserve-local");
}

#[test]
fn export_to_a_file_refuses_to_overwrite_unless_forced() {
    let cli = Cli::seeded();
    let file = cli.arg("all.yaml");
    cli.run(&["export", "-o", &file]).ok();
    let text = fs::read_to_string(&file).unwrap();
    assert_eq!(text, cli.run(&["export"]).ok().stdout);
    cli.write("all.yaml", "mine\n");
    cli.run(&["export", "-o", &file])
        .fails(2, &["all.yaml", "already exists", "--force"]);
    assert_eq!(fs::read_to_string(&file).unwrap(), "mine\n");
    cli.run(&["export", "-o", &file, "--force"]).ok();
    assert_eq!(fs::read_to_string(&file).unwrap(), text);
    cli.run(&["export", "-o", &cli.arg("missing/all.yaml")])
        .fails(2, &["does not exist"]);
}

#[test]
fn with_secrets_without_confirmation_is_exit_2_and_writes_nothing() {
    let cli = Cli::seeded();
    let file = cli.arg("secrets.yaml");
    let dir = cli.arg("secrets/");
    for target in [None, Some(file.as_str()), Some(dir.as_str())] {
        let mut args = vec!["export", "--with-secrets"];
        args.extend(target.map(|t| ["-o", t]).into_iter().flatten());
        cli.run(&args).fails(
            2,
            &[
                "--with-secrets",
                "clear text",
                "--i-understand-secrets-are-written-in-clear",
                "nothing was written",
            ],
        );
    }
    assert!(!cli.path("secrets.yaml").exists());
    assert!(!cli.path("secrets").exists());
    // The confirmation alone is a usage error too.
    let run = cli.run(&["export", CONFIRM]);
    assert_eq!(run.code, Some(2), "{run:#?}");
    assert_eq!(run.stdout, "");
    assert!(run.stderr.contains("--with-secrets"), "{run:#?}");
}

#[test]
fn with_secrets_confirmed_writes_values_in_private_files() {
    let cli = Cli::seeded();
    let stdout = cli
        .run(&["export", "--with-secrets", CONFIRM])
        .ok()
        .stdout
        .clone();
    assert!(stdout.contains(MLFLOW_SECRET_KEY), "{stdout}");
    assert!(!stdout.contains("<hidden>"), "{stdout}");

    let file = cli.arg("secrets.yaml");
    let run = cli.run(&["export", "--with-secrets", CONFIRM, "-o", &file]);
    assert!(run.ok().stdout.contains("clear text"), "{run:#?}");
    assert!(!run.stdout.contains(MLFLOW_SECRET_KEY), "{run:#?}");
    assert_eq!(fs::read_to_string(&file).unwrap(), stdout);

    let dir = cli.arg("secrets/");
    cli.run(&["export", "--with-secrets", CONFIRM, "-o", &dir])
        .ok();
    let mlflow = cli.path("secrets/mlflow-0001.yaml");
    assert!(
        fs::read_to_string(&mlflow)
            .unwrap()
            .contains(MLFLOW_SECRET_KEY)
    );
    #[cfg(unix)]
    {
        assert_eq!(mode(Path::new(&file)), 0o600);
        assert_eq!(mode(&cli.path("secrets")), 0o700);
        for name in names_in(&cli.path("secrets")) {
            assert_eq!(mode(&cli.path(&format!("secrets/{name}"))), 0o600, "{name}");
        }
    }
}

// --- import -------------------------------------------------------------------

const A: &str = "id: a\nproduct: minio\nservices:\n  - id: s3\n    credentials:\n      - id: admin\n        configuration:\n          KEY: planted-secret-a\n";
const B: &str = "id: b\nproduct: mlflow\n";
const B2: &str = "id: b\nproduct: mlflow\nversion: '2.0'\n";
const C: &str = "id: c\nproduct: kserve\n";

/// A registry holding `a` and `b` (and `c` when `with_c`).
fn two_records(with_c: bool) -> Cli {
    let cli = Cli::new();
    let mut text = format!("{A}---\n{B}");
    if with_c {
        text.push_str(&format!("---\n{C}"));
    }
    let file = cli.write("seed.yaml", &text);
    cli.run(&["register", "-f", &file]).ok();
    cli
}

#[test]
fn import_reports_created_updated_and_unchanged_records() {
    let cli = two_records(false);
    cli.write("in/a.yaml", A);
    cli.write("in/b.yaml", B2);
    cli.write("in/nested/c.yml", C);
    cli.write("in/README.md", "not a record");
    let run = cli.run(&["import", "-f", &cli.arg("in")]);
    let lines: Vec<&str> = run.ok().stdout.lines().collect();
    assert_eq!(
        lines[..3],
        ["created c", "updated b", "unchanged a"],
        "{run:#?}"
    );
    assert!(
        lines[3].starts_with("imported: 1 created, 1 updated, 1 unchanged, 0 deleted (revision "),
        "{run:#?}"
    );
    assert_eq!(cli.ids(), ["a", "b", "c"]);
    let b = cli.run(&["get", "b", "-o", "json"]).ok().stdout.clone();
    assert!(b.contains("\"version\": \"2.0\""), "{b}");

    // The same input again: nothing to write, and the JSON report says so.
    let run = cli.run(&["import", "-f", &cli.arg("in"), "-o", "json"]);
    let report: serde_json::Value = serde_json::from_str(&run.ok().stdout).unwrap();
    assert_eq!(
        report,
        serde_json::json!({
            "dry_run": false,
            "revision": null,
            "created": [],
            "updated": [],
            "unchanged": ["a", "b", "c"],
            "deleted": [],
        })
    );
}

#[test]
fn import_reads_one_file_or_standard_input() {
    let cli = two_records(false);
    let file = cli.write(
        "changes.json",
        r#"[{"id": "b", "product": "mlflow", "zone": "z"}, {"id": "d"}]"#,
    );
    let run = cli.run(&["import", "-f", &file, "-o", "json"]);
    let report: serde_json::Value = serde_json::from_str(&run.ok().stdout).unwrap();
    assert_eq!(report["created"], serde_json::json!(["d"]));
    assert_eq!(report["updated"], serde_json::json!(["b"]));
    assert!(report["revision"].as_u64().is_some(), "{report}");
    let run = cli.run_with_stdin(&["import", "-f", "-"], &format!("{C}---\n{B}"));
    assert_eq!(
        run.ok().stdout.lines().take(2).collect::<Vec<_>>(),
        ["created c", "updated b"]
    );
    assert_eq!(cli.ids(), ["a", "b", "c", "d"]);
}

#[test]
fn import_reads_json_lines_for_bulk_loads() {
    let cli = two_records(false);
    let lines = "{\"id\": \"b\", \"product\": \"mlflow\", \"zone\": \"z\"}\n\n{\"id\": \"d\"}\n";
    let file = cli.write("bulk.jsonl", lines);
    let run = cli.run(&["import", "-f", &file, "-o", "json"]);
    let report: serde_json::Value = serde_json::from_str(&run.ok().stdout).unwrap();
    assert_eq!(report["created"], serde_json::json!(["d"]));
    assert_eq!(report["updated"], serde_json::json!(["b"]));
    // Detected on standard input too (two lines that each start an object).
    let run = cli.run_with_stdin(&["import", "-f", "-"], "{\"id\": \"e\"}\n{\"id\": \"f\"}\n");
    assert_eq!(
        run.ok().stdout.lines().take(2).collect::<Vec<_>>(),
        ["created e", "created f"]
    );
    assert_eq!(cli.ids(), ["a", "b", "d", "e", "f"]);
    // A bad line names its number and path; nothing of the file is written.
    let before = cli.state();
    let bad = cli.write(
        "bad.jsonl",
        "{\"id\": \"g\"}\n{\"id\": \"h\", \"services\": [{\"id\": \"s\", \"endpoints\": [{\"url\": \"not-a-url\"}]}]}\n",
    );
    cli.run(&["import", "-f", &bad])
        .fails(2, &["line 2", "services[0].endpoints[0].url", "bad.jsonl"]);
    let dup = cli.write("dup.jsonl", "{\"id\": \"g\"}\n{\"id\": \"g\"}\n");
    cli.run(&["import", "-f", &dup])
        .fails(2, &["line 2", "duplicate record id \"g\"", "line 1"]);
    assert_eq!(cli.state(), before, "nothing was written");
}

#[test]
fn a_directory_with_one_bad_file_writes_nothing() {
    let cli = two_records(false);
    cli.write("in/a.yaml", A);
    cli.write("in/b.yaml", B2);
    cli.write("in/c.yaml", C);
    cli.write(
        "in/d.yaml",
        "id: d\nservices:\n  - id: s\n    endpoints:\n      - url: not-a-url\n",
    );
    let before = cli.state();
    cli.run(&["import", "-f", &cli.arg("in"), "--prune"])
        .fails(2, &["d.yaml", "services[0].endpoints[0].url"]);
    assert_eq!(cli.state(), before, "nothing was written");

    // An id given in two files is an error naming both.
    fs::remove_file(cli.path("in/d.yaml")).unwrap();
    cli.write("in/zz.yaml", B);
    cli.run(&["import", "-f", &cli.arg("in")])
        .fails(2, &["\"b\"", "b.yaml", "zz.yaml"]);
    assert_eq!(cli.state(), before, "nothing was written");

    // Input that is not there, or holds nothing.
    fs::create_dir_all(cli.path("empty")).unwrap();
    cli.run(&["import", "-f", &cli.arg("empty")])
        .fails(2, &["holds no *.yaml"]);
    cli.run(&["import", "-f", &cli.arg("missing")])
        .fails(2, &["cannot read", "missing"]);
    assert_eq!(cli.state(), before);
}

#[test]
fn prune_deletes_records_the_input_does_not_hold() {
    let cli = two_records(true);
    cli.write("in/a.yaml", A);
    let run = cli.run(&["import", "-f", &cli.arg("in")]);
    assert_eq!(run.ok().stdout.lines().next(), Some("unchanged a"));
    assert_eq!(
        cli.ids(),
        ["a", "b", "c"],
        "without --prune nothing is deleted"
    );
    let run = cli.run(&["import", "-f", &cli.arg("in"), "--prune"]);
    let lines: Vec<&str> = run.ok().stdout.lines().collect();
    assert_eq!(lines[..3], ["unchanged a", "deleted b", "deleted c"]);
    assert!(lines[3].contains("2 deleted"), "{run:#?}");
    assert_eq!(cli.ids(), ["a"]);
}

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let cli = two_records(true);
    cli.write("in/a.yaml", A);
    cli.write("in/b.yaml", B2);
    cli.write("in/d.yaml", "id: d\n");
    let before = cli.state();
    let run = cli.run(&["import", "-f", &cli.arg("in"), "--prune", "--dry-run"]);
    assert_eq!(
        run.ok().stdout,
        "create d\nupdate b\nunchanged a\ndelete c\n\
         dry run: 1 to create, 1 to update, 1 unchanged, 1 to delete; nothing was written\n"
    );
    let run = cli.run(&[
        "import",
        "-f",
        &cli.arg("in"),
        "--prune",
        "--dry-run",
        "-o",
        "json",
    ]);
    let report: serde_json::Value = serde_json::from_str(&run.ok().stdout).unwrap();
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["revision"], serde_json::Value::Null);
    assert_eq!(report["deleted"], serde_json::json!(["c"]));
    assert_eq!(cli.state(), before, "nothing was written");
}

#[test]
fn hidden_values_keep_the_stored_secret_on_update() {
    let cli = two_records(false);
    cli.run(&["export", "-o", &cli.arg("git/")]).ok();
    let a = cli.path("git/a.yaml");
    let text = fs::read_to_string(&a).unwrap();
    assert!(text.contains("KEY: <hidden>"), "{text}");
    assert!(!text.contains("planted-secret-a"), "{text}");
    fs::write(
        &a,
        text.replace("product: minio", "product: minio\nzone: eu"),
    )
    .unwrap();
    let run = cli.run(&["import", "-f", &cli.arg("git")]);
    assert_eq!(run.ok().stdout.lines().next(), Some("updated a"));
    let shown = cli.run(&["get", "a", "--show-secrets"]).ok().stdout.clone();
    assert!(shown.contains("planted-secret-a"), "{shown}");
    assert!(shown.contains("zone: eu"), "{shown}");
}

#[test]
fn round_trip_through_a_directory_reproduces_the_records() {
    let cli = Cli::seeded();
    let hidden = cli.arg("hidden/");
    let clear = cli.arg("clear/");
    cli.run(&["export", "-o", &hidden]).ok();
    cli.run(&["export", "-o", &clear, "--with-secrets", CONFIRM])
        .ok();

    // Back into the same registry: everything unchanged.
    let run = cli.run(&["import", "-f", &hidden, "--prune", "-o", "json"]);
    let report: serde_json::Value = serde_json::from_str(&run.ok().stdout).unwrap();
    assert_eq!(
        report["unchanged"].as_array().unwrap().len(),
        RECORDS.len(),
        "{report}"
    );

    // Into a fresh registry, secrets hidden: refused, naming the file and the value's path.
    let fresh = Cli::new();
    fresh.run(&["import", "-f", &hidden]).fails(
        2,
        &[
            "aws-object-storage.yaml",
            "services[0].credentials[0].configuration.AWS_ACCESS_KEY_ID",
            "not stored yet",
        ],
    );
    assert!(fresh.ids().is_empty(), "nothing was written");

    // With secrets: the round trip is complete.
    let run = fresh.run(&["import", "-f", &clear]);
    assert!(run.ok().stdout.contains("7 created"), "{run:#?}");
    assert_eq!(fresh.state(), cli.state());
    assert_eq!(
        fresh.run(&["export"]).ok().stdout,
        cli.run(&["export"]).ok().stdout
    );
}

#[test]
fn no_import_output_shows_a_secret() {
    let cli = Cli::seeded();
    cli.run(&[
        "export",
        "-o",
        &cli.arg("clear/"),
        "--with-secrets",
        CONFIRM,
    ])
    .ok();
    let fresh = Cli::new();
    for args in [
        vec!["import", "-f", &cli.arg("clear/"), "--dry-run"],
        vec!["import", "-f", &cli.arg("clear/"), "-o", "json"],
    ] {
        let run = fresh.run(&args);
        assert!(!run.stdout.contains(MLFLOW_SECRET_KEY), "{run:#?}");
        assert!(!run.stderr.contains(MLFLOW_SECRET_KEY), "{run:#?}");
    }
}
