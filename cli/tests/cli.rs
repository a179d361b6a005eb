//! End-to-end tests of the `inferlink` binary against a temporary SQLite store,
//! using the seed 004 fixtures of the core crate.

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

/// Seed 004's first selector example: the MLflow tracking server and its artifact store.
const MLFLOW_STEP: &str = r#"
name: trainer
image: ghcr.io/fuseml/mlflow:1.19
extensions:
  - name: experiment-tracking
    extension_id: mlflow-0001
    service_id: mlflow-tracking
  - name: artifact-store
    extension_id: mlflow-0001
    service_id: mlflow-store
"#;

const MLFLOW_ACCESS_KEY: &str = "24oT0SfbJPEu6kUbUKsH";
const MLFLOW_SECRET_KEY: &str = "cMGiZff8KqS5xWQ4eagRujh1tDcbQyRP0bEJSBOf";

/// The fixed test master key (base64 of 32 bytes); every run gets it unless a test removes it.
const TEST_KEY: &str = "aW5mZXJsaW5rLXRlc3QtbWFzdGVyLWtleS0wMDAwMDE=";

/// The binary, with the test master key and no key file from the environment.
fn inferlink() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_inferlink"));
    cmd.env("INFERLINK_MASTER_KEY", TEST_KEY)
        .env_remove("INFERLINK_KEY_FILE");
    cmd
}

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
    /// Asserts the exit status and returns `self` for more checks.
    #[track_caller]
    fn code(&self, want: i32) -> &Self {
        assert_eq!(self.code, Some(want), "exit status of {self:#?}");
        self
    }

    /// Asserts success with nothing on stderr.
    #[track_caller]
    fn ok(&self) -> &Self {
        self.code(0);
        assert_eq!(self.stderr, "", "stderr of {self:#?}");
        self
    }

    /// Asserts a failure with `code`, reported as exactly one `inferlink: …` line
    /// containing every part of `want`; nothing on stdout.
    #[track_caller]
    fn fails(&self, code: i32, want: &[&str]) -> &Self {
        self.code(code);
        assert_eq!(self.stdout, "", "stdout of {self:#?}");
        self.one_line_error(want)
    }

    /// Asserts stderr is one `inferlink: …` line containing every part of `want`.
    #[track_caller]
    fn one_line_error(&self, want: &[&str]) -> &Self {
        assert!(
            self.stderr.starts_with("inferlink: ") && self.stderr.ends_with('\n'),
            "stderr of {self:#?}"
        );
        assert_eq!(self.stderr.lines().count(), 1, "one line: {self:#?}");
        for part in want {
            assert!(self.stderr.contains(part), "{part:?} in {self:#?}");
        }
        self
    }
}

/// A temporary registry and a way to run the binary against it.
struct Cli {
    dir: TempDir,
}

impl Cli {
    fn new() -> Cli {
        Cli {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A registry holding every seed record.
    fn seeded() -> Cli {
        let cli = Cli::new();
        for name in RECORDS {
            let path = fixture(name);
            cli.run(&["register", "-f", path.to_str().unwrap()]).ok();
        }
        cli
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("registry.db")
    }

    /// Writes `text` to a file in the temporary directory and returns its path.
    fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = inferlink();
        cmd.arg("--store")
            .arg(self.store())
            .args(args)
            .env_remove("INFERLINK_STORE");
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        run(self.command(args).stdin(Stdio::null()))
    }

    fn run_with_stdin(&self, args: &[&str], stdin: &[u8]) -> Run {
        run_with_stdin(&mut self.command(args), stdin)
    }
}

fn run(cmd: &mut Command) -> Run {
    let out = cmd.output().expect("the inferlink binary runs");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn run_with_stdin(cmd: &mut Command, stdin: &[u8]) -> Run {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    // The binary may stop reading early (size limit): ignore a broken pipe.
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
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

// --- register ---------------------------------------------------------------

#[test]
fn register_creates_each_record_and_prints_its_revision() {
    let cli = Cli::new();
    let path = fixture("mlflow-0001.yaml");
    let run = cli.run(&["register", "-f", path.to_str().unwrap()]);
    run.ok();
    assert_eq!(run.stdout, "registered mlflow-0001 (revision 1)\n");

    // Several records in one file: multi-document YAML, and a JSON array.
    let yaml = cli.file(
        "two.yaml",
        "id: one\nproduct: p\n---\nid: two\nproduct: p\n",
    );
    let run = cli.run(&["register", "-f", &yaml]);
    run.ok();
    assert_eq!(
        run.stdout,
        "registered one (revision 2)\nregistered two (revision 3)\n"
    );
    let json = cli.file("three.json", r#"[{"id": "three"}, {"id": "four"}]"#);
    let run = cli.run(&["register", "--file", &json]);
    run.ok();
    assert_eq!(
        run.stdout,
        "registered three (revision 4)\nregistered four (revision 5)\n"
    );
    let list = cli.run(&["list", "-o", "json"]);
    list.ok();
    assert_eq!(
        ids_of_json(&list.stdout),
        ["four", "mlflow-0001", "one", "three", "two"]
    );
}

#[test]
fn register_of_an_existing_id_fails_with_exit_2_and_suggests_upsert() {
    let cli = Cli::seeded();
    let path = fixture("kserve-local.yaml");
    cli.run(&["register", "-f", path.to_str().unwrap()]).fails(
        2,
        &[
            "a record with id \"kserve-local\" already exists",
            "use --upsert to replace it",
            "kserve-local.yaml",
        ],
    );
    // Nothing of a file is written when one of its records already exists.
    let mixed = cli.file("mixed.yaml", "id: brand-new\n---\nid: kserve-local\n");
    cli.run(&["register", "-f", &mixed])
        .fails(2, &["\"kserve-local\" already exists"]);
    cli.run(&["get", "brand-new"]).code(1);
}

#[test]
fn register_upsert_creates_missing_records_and_replaces_existing_ones() {
    let cli = Cli::seeded();
    let path = fixture("kserve-local.yaml");
    let run = cli.run(&["register", "--upsert", "-f", path.to_str().unwrap()]);
    run.ok();
    assert_eq!(run.stdout, "updated kserve-local (revision 8)\n");
    // Idempotent: running it again gives the same record at a new revision.
    let run = cli.run(&["register", "--upsert", "-f", path.to_str().unwrap()]);
    run.ok();
    assert_eq!(run.stdout, "updated kserve-local (revision 9)\n");

    let changed = cli.file(
        "changed.yaml",
        "id: kserve-local\nproduct: kserve\nversion: \"0.8.0\"\n---\nid: fresh\nproduct: triton\n",
    );
    let run = cli.run(&["register", "--upsert", "-f", &changed]);
    run.ok();
    assert_eq!(
        run.stdout,
        "updated kserve-local (revision 10)\nregistered fresh (revision 11)\n"
    );
    let got = cli.run(&["get", "kserve-local"]);
    got.ok();
    assert!(got.stdout.contains("version: \"0.8.0\""), "{got:#?}");
    assert!(!got.stdout.contains("kfserve-api"), "replaced: {got:#?}");
}

#[test]
fn register_reads_standard_input_for_dash() {
    let cli = Cli::new();
    let text = std::fs::read(fixture("minio-s3-storage.yaml")).unwrap();
    let run = cli.run_with_stdin(&["register", "-f", "-"], &text);
    run.ok();
    assert_eq!(run.stdout, "registered minio-s3-storage (revision 1)\n");
    let json = br#"{"id": "from-json", "product": "minio"}"#;
    let run = cli.run_with_stdin(&["register", "-f", "-"], json);
    run.ok();
    assert_eq!(run.stdout, "registered from-json (revision 2)\n");
}

#[test]
fn register_of_an_invalid_file_fails_with_exit_2_naming_the_path_and_writes_nothing() {
    let cli = Cli::new();
    let bad = cli.file(
        "bad.yaml",
        "id: good\n---\nid: bad\nservices:\n  - id: api\n    endpoints:\n      - url: not-a-url\n",
    );
    cli.run(&["register", "-f", &bad])
        .fails(2, &["services[0].endpoints[0].url", "bad.yaml"]);
    // Validation happens before any write: the valid first record is not there either.
    let list = cli.run(&["list"]);
    list.ok();
    assert_eq!(list.stdout, "ID  PRODUCT  VERSION  ZONE  SERVICES\n");

    let syntax = cli.file("syntax.yaml", "id: [unclosed\n");
    cli.run(&["register", "-f", &syntax])
        .fails(2, &["syntax.yaml"]);
    let unknown = cli.file("unknown.yaml", "id: a\nprodcut: typo\n");
    cli.run(&["register", "-f", &unknown])
        .fails(2, &["prodcut", "unknown.yaml"]);
    let twice = cli.file("twice.yaml", "id: same\n---\nid: same\n");
    cli.run(&["register", "-f", &twice]).fails(
        2,
        &["duplicate record id \"same\"", "document 2", "twice.yaml"],
    );
    let empty = cli.file("empty.yaml", "# nothing here\n");
    cli.run(&["register", "-f", &empty])
        .fails(2, &["no records", "empty.yaml"]);
    let binary = cli.file("binary.yaml", "");
    std::fs::write(&binary, [b'i', b'd', b':', 0xff, 0xfe]).unwrap();
    cli.run(&["register", "-f", &binary])
        .fails(2, &["not UTF-8"]);
}

#[test]
fn register_rejects_the_seed_record_with_hidden_credentials() {
    let cli = Cli::new();
    let path = fixture("mlflow.yaml");
    cli.run(&["register", "-f", path.to_str().unwrap()]).fails(
        2,
        &[
            "services[1].credentials[0].configuration.AWS_ACCESS_KEY_ID",
            "<hidden>",
            "mlflow.yaml",
        ],
    );
    // With --upsert too: there is no stored value to keep.
    cli.run(&["register", "--upsert", "-f", path.to_str().unwrap()])
        .fails(2, &["only allowed when updating a stored record"]);
    cli.run(&["get", "mlflow"]).code(1);
}

#[test]
fn register_of_a_missing_file_or_directory_fails_with_exit_2() {
    let cli = Cli::new();
    let missing = cli.dir.path().join("missing.yaml");
    cli.run(&["register", "-f", missing.to_str().unwrap()])
        .fails(2, &["cannot read", "missing.yaml"]);
    cli.run(&["register", "-f", cli.dir.path().to_str().unwrap()])
        .fails(2, &["is a directory"]);
}

#[test]
fn register_refuses_input_over_64_mib() {
    let cli = Cli::new();
    let limit: u64 = 64 * 1024 * 1024;
    // A sparse file: refused from its size, before it is read.
    let path = cli.dir.path().join("huge.yaml");
    std::fs::File::create(&path)
        .unwrap()
        .set_len(limit + 1)
        .unwrap();
    cli.run(&["register", "-f", path.to_str().unwrap()]).fails(
        2,
        &[
            "huge.yaml",
            "67108865 bytes",
            "at most 67108864 bytes (64 MiB)",
        ],
    );
    // Standard input is read up to the limit, then refused.
    let mut big = b"id: x\ndescription: ".to_vec();
    big.resize(limit as usize + 1, b'a');
    cli.run_with_stdin(&["register", "-f", "-"], &big)
        .fails(2, &["standard input", "more than 67108864 bytes"]);
}

// --- unregister -------------------------------------------------------------

#[test]
fn unregister_removes_a_record_and_a_missing_id_is_exit_1() {
    let cli = Cli::seeded();
    let run = cli.run(&["unregister", "gitea-devel-rd"]);
    run.ok();
    assert_eq!(run.stdout, "unregistered gitea-devel-rd\n");
    cli.run(&["get", "gitea-devel-rd"]).code(1);
    cli.run(&["unregister", "gitea-devel-rd"])
        .fails(1, &["no record with id \"gitea-devel-rd\""]);
    // The id can be registered again afterwards.
    let path = fixture("gitea-devel-rd.yaml");
    cli.run(&["register", "-f", path.to_str().unwrap()]).ok();
}

// --- list -------------------------------------------------------------------

#[test]
fn list_prints_an_aligned_table_and_filters() {
    let cli = Cli::seeded();
    let run = cli.run(&["list"]);
    run.ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 1 + RECORDS.len(), "{run:#?}");
    assert_eq!(
        lines[0],
        "ID                       PRODUCT  VERSION  ZONE                    SERVICES"
    );
    assert!(lines.contains(
        &"mlflow-0001              mlflow   1.19.0   cluster-alpha           mlflow-tracking(mlflow-tracking/experiment-tracking),mlflow-store(s3/model-store)"
    ), "{run:#?}");
    // An empty version is shown as "-"; columns stay aligned.
    assert!(lines.contains(
        &"aws-object-storage       aws-s3   -        eu-central-1            aws(s3/object-storage)"
    ), "{run:#?}");
    let column = lines[0].find("SERVICES").unwrap();
    for line in &lines[1..] {
        assert_eq!(line.as_bytes()[column - 1], b' ', "{line}");
        assert_ne!(line.as_bytes()[column], b' ', "{line}");
    }

    let ids = |args: &[&str]| -> Vec<String> {
        let run = cli.run(args);
        run.ok();
        run.stdout
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().next().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(&["list", "--product", "minio"]),
        ["minio-s3-storage", "mlflow-model-store-0001"]
    );
    assert_eq!(
        ids(&["list", "--zone", "cluster-alpha"]),
        ["mlflow-0001", "mlflow-model-store-0001"]
    );
    assert_eq!(
        ids(&["list", "--resource", "s3"]),
        [
            "aws-object-storage",
            "minio-s3-storage",
            "mlflow-0001",
            "mlflow-model-store-0001"
        ]
    );
    assert_eq!(
        ids(&["list", "--category", "prediction-serving"]),
        ["kserve-local", "seldon-core-production"]
    );
    assert_eq!(
        ids(&["list", "--resource", "s3", "--category", "model-store"]),
        ["mlflow-0001"]
    );
    assert_eq!(
        ids(&[
            "list",
            "--product",
            "minio",
            "--zone",
            "development-cluster"
        ]),
        ["minio-s3-storage"]
    );
}

#[test]
fn list_of_nothing_prints_only_the_header() {
    let cli = Cli::seeded();
    let run = cli.run(&["list", "--product", "no-such-product"]);
    run.ok();
    assert_eq!(run.stdout, "ID  PRODUCT  VERSION  ZONE  SERVICES\n");
    let run = Cli::new().run(&["list", "-o", "json"]);
    run.ok();
    assert_eq!(ids_of_json(&run.stdout), Vec::<String>::new());
    let run = Cli::new().run(&["list", "-o", "yaml"]);
    run.ok();
    assert_eq!(run.stdout, "");
}

#[test]
fn list_json_and_yaml_print_records_with_secrets_hidden() {
    let cli = Cli::seeded();
    let json = cli.run(&["list", "--resource", "s3", "-o", "json"]);
    json.ok();
    assert_eq!(
        ids_of_json(&json.stdout),
        [
            "aws-object-storage",
            "minio-s3-storage",
            "mlflow-0001",
            "mlflow-model-store-0001"
        ]
    );
    let value: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(
        value[0]["services"][0]["credentials"][0]["configuration"]["AWS_SECRET_ACCESS_KEY"],
        "<hidden>"
    );
    assert!(!json.stdout.contains(MLFLOW_SECRET_KEY));

    let yaml = cli.run(&["list", "--output", "yaml"]);
    yaml.ok();
    assert_eq!(yaml.stdout.matches("\n---\n").count(), RECORDS.len() - 1);
    assert!(yaml.stdout.contains("id: seldon-core-production"));
    assert!(yaml.stdout.contains("CLIENT_KEY: <hidden>"), "{yaml:#?}");
    for secret in [
        MLFLOW_ACCESS_KEY,
        MLFLOW_SECRET_KEY,
        "8KqS5xWQ4eagRu",
        "TyGiZff8",
    ] {
        assert!(!yaml.stdout.contains(secret), "{secret}");
    }
    // The YAML stream can be registered again: `<hidden>` keeps the stored values.
    let again = cli.run_with_stdin(&["register", "--upsert", "-f", "-"], yaml.stdout.as_bytes());
    again.ok();
    assert_eq!(again.stdout.lines().count(), RECORDS.len());
    assert!(again.stdout.lines().all(|l| l.starts_with("updated ")));
    let env = cli.run(&[
        "env",
        "--step",
        &cli.file("step.yaml", MLFLOW_STEP),
        "--reveal",
    ]);
    env.ok();
    assert!(env.stdout.contains(MLFLOW_SECRET_KEY));
}

// --- get --------------------------------------------------------------------

#[test]
fn get_prints_yaml_with_secrets_hidden_unless_show_secrets() {
    let cli = Cli::seeded();
    let run = cli.run(&["get", "mlflow-0001"]);
    run.ok();
    assert!(run.stdout.starts_with("id: mlflow-0001\n"), "{run:#?}");
    assert!(
        run.stdout.contains("AWS_ACCESS_KEY_ID: <hidden>"),
        "{run:#?}"
    );
    assert!(run.stdout.contains("AWS_SECRET_ACCESS_KEY: <hidden>"));
    assert!(
        run.stdout
            .contains("MLFLOW_TRACKING_URI: http://mlflow.mlflow")
    );
    assert!(!run.stdout.contains(MLFLOW_ACCESS_KEY));
    assert!(!run.stdout.contains(MLFLOW_SECRET_KEY));

    let shown = cli.run(&["get", "mlflow-0001", "--show-secrets"]);
    shown.ok();
    assert!(
        shown
            .stdout
            .contains(&format!("AWS_ACCESS_KEY_ID: {MLFLOW_ACCESS_KEY}"))
    );
    assert!(
        shown
            .stdout
            .contains(&format!("AWS_SECRET_ACCESS_KEY: {MLFLOW_SECRET_KEY}"))
    );

    let json = cli.run(&["get", "mlflow-0001", "-o", "json"]);
    json.ok();
    let value: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(value["id"], "mlflow-0001");
    assert_eq!(
        value["services"][1]["credentials"][0]["configuration"]["AWS_ACCESS_KEY_ID"],
        "<hidden>"
    );
    let json = cli.run(&["get", "mlflow-0001", "-o", "json", "--show-secrets"]);
    json.ok();
    let value: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(
        value["services"][1]["credentials"][0]["configuration"]["AWS_ACCESS_KEY_ID"],
        MLFLOW_ACCESS_KEY
    );
}

#[test]
fn get_of_a_missing_id_is_exit_1() {
    let cli = Cli::seeded();
    cli.run(&["get", "no-such-record"])
        .fails(1, &["no record with id \"no-such-record\""]);
}

#[test]
fn get_output_registered_again_with_upsert_keeps_the_stored_secret() {
    let cli = Cli::seeded();
    let mut description = "MLFlow experiment tracking and artifact store".to_owned();
    for format in ["yaml", "json"] {
        let got = cli.run(&["get", "mlflow-0001", "-o", format]);
        got.ok();
        assert!(got.stdout.contains("<hidden>"));
        // An edit of a plain field, with the credentials left as `<hidden>`.
        assert!(got.stdout.contains(&description), "{got:#?}");
        let edited = got
            .stdout
            .replace(&description, &format!("edited through {format}"));
        description = format!("edited through {format}");
        let run = cli.run_with_stdin(&["register", "--upsert", "-f", "-"], edited.as_bytes());
        run.ok();
        assert!(
            run.stdout.starts_with("updated mlflow-0001 (revision "),
            "{run:#?}"
        );
        let shown = cli.run(&["get", "mlflow-0001", "--show-secrets"]);
        shown.ok();
        assert!(shown.stdout.contains(&format!("edited through {format}")));
        assert!(
            shown
                .stdout
                .contains(&format!("AWS_SECRET_ACCESS_KEY: {MLFLOW_SECRET_KEY}"))
        );
        assert!(!shown.stdout.contains("<hidden>"));
    }
    // Without --upsert the same output is refused: the record exists.
    let got = cli.run(&["get", "mlflow-0001"]);
    cli.run_with_stdin(&["register", "-f", "-"], got.stdout.as_bytes())
        .fails(2, &["already exists"]);
}

// --- resolve ----------------------------------------------------------------

#[test]
fn resolve_prints_a_summary_of_the_best_resolution() {
    let cli = Cli::seeded();
    let run = cli.run(&[
        "resolve",
        "--service-resource",
        "s3",
        "--consumer-zone",
        "cluster-alpha",
    ]);
    run.ok();
    assert_eq!(
        run.stdout,
        "\
resolved:    mlflow-0001/mlflow-store (mlflow 1.19.0, zone cluster-alpha)
service:     resource s3, category model-store
endpoint:    http://mlflow-minio.mlflow:9000 (internal)
credentials: default-s3-account (scope global)
configuration:
  AWS_ACCESS_KEY_ID=<hidden>
  AWS_SECRET_ACCESS_KEY=<hidden>
  MLFLOW_S3_ENDPOINT_URL=http://mlflow-minio.mlflow:9000
"
    );

    // Credentials follow the consumer's project and user.
    let seldon = |extra: &[&str]| {
        let mut args = vec!["resolve", "--product", "seldon"];
        args.extend_from_slice(extra);
        let run = cli.run(&args);
        run.ok();
        run.stdout
    };
    assert!(seldon(&[]).contains("credentials: none\n"));
    assert!(seldon(&["--project", "alpha"]).contains("credentials: project-alpha (scope project)"));
    assert!(
        seldon(&["--project", "beta", "--user", "alainturing"])
            .contains("credentials: user-alainturing (scope user)")
    );
    let out = seldon(&["--project", "alpha"]);
    assert!(out.contains("CLIENT_KEY=<hidden>"), "{out}");
    assert!(out.contains("INSECURE=False"), "{out}");
    assert!(!out.contains("cMGiZff8"), "{out}");

    // Selector flags: extension id, service id, product, version, zone, category.
    let run = cli.run(&[
        "resolve",
        "--extension-id",
        "kserve-local",
        "--service-id",
        "UI",
        "--product",
        "kserve",
        "--version",
        "~0.7",
        "--zone",
        "cluster.local",
        "--service-category",
        "UI",
    ]);
    run.ok();
    assert!(
        run.stdout
            .starts_with("resolved:    kserve-local/UI (kserve 0.7.0, zone cluster.local)\n")
    );
    assert!(
        run.stdout
            .contains("endpoint:    https://kserve.10.120.130.140.nip.io/ (external)\n")
    );
    assert!(
        run.stdout
            .ends_with("credentials: none\nconfiguration: none\n")
    );
}

#[test]
fn resolve_json_prints_every_resolution_ranked() {
    let cli = Cli::seeded();
    let run = cli.run(&["resolve", "--service-resource", "s3", "-o", "json"]);
    run.ok();
    let value: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let list = value.as_array().unwrap();
    let ids: Vec<&str> = list
        .iter()
        .map(|r| r["extension_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "aws-object-storage",
            "minio-s3-storage",
            "mlflow-0001",
            "mlflow-model-store-0001"
        ]
    );
    assert!(list.iter().all(|r| r["endpoint_type"] == "external"));
    assert_eq!(
        list[0]["configuration"]["AWS_SECRET_ACCESS_KEY"],
        "<hidden>"
    );
    assert!(!run.stdout.contains("abl4SDcMGiZff8"));

    // In the minio zone its internal endpoint comes first, then its external one.
    let run = cli.run(&[
        "resolve",
        "--service-resource",
        "s3",
        "--consumer-zone",
        "development-cluster",
        "-o",
        "json",
    ]);
    run.ok();
    let value: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(value[0]["endpoint_url"], "http://minio.minio:9000");
    assert_eq!(
        value[1]["endpoint_url"],
        "http://minio.10.110.120.130.nip.io"
    );

    let yaml = cli.run(&["resolve", "--service-resource", "s3", "-o", "yaml"]);
    yaml.ok();
    assert!(yaml.stdout.contains("extension_id: aws-object-storage"));
    assert!(yaml.stdout.contains("AWS_SECRET_ACCESS_KEY: <hidden>"));
}

#[test]
fn resolve_explain_prints_each_filter_before_the_result() {
    let cli = Cli::seeded();
    let run = cli.run(&[
        "resolve",
        "--explain",
        "--product",
        "minio",
        "--consumer-zone",
        "development-cluster",
    ]);
    run.ok();
    let (explanation, result) = run.stdout.split_once("\n\n").unwrap();
    assert!(
        explanation.starts_with("product = minio: 2 of 7 records pass"),
        "{run:#?}"
    );
    assert!(explanation.ends_with("candidate(s)"), "{run:#?}");
    assert!(
        result.starts_with("resolved:    minio-s3-storage/s3 "),
        "{run:#?}"
    );

    let json = cli.run(&["resolve", "--explain", "--product", "minio", "-o", "json"]);
    json.ok();
    let start = json.stdout.find("\n[").unwrap();
    assert!(json.stdout[..start].contains("product = minio: 2 of 7 records pass"));
    let value: serde_json::Value = serde_json::from_str(&json.stdout[start..]).unwrap();
    assert_eq!(value.as_array().unwrap().len(), 2);
}

#[test]
fn resolve_without_a_match_is_exit_1_naming_the_filter() {
    let cli = Cli::seeded();
    let args = [
        "resolve",
        "--name",
        "kserve",
        "--product",
        "kserve",
        "--service-resource",
        "kserve-api",
        "--version",
        "~1.10.0",
        "--consumer-zone",
        "cluster.local",
    ];
    cli.run(&args).fails(
        1,
        &[
            "kserve: 1 record passes \"product = kserve\"",
            "version ~1.10.0",
            "have 0.7.0",
        ],
    );
    // --explain still prints the explanation on stdout.
    let mut explained = args.to_vec();
    explained.push("--explain");
    let run = cli.run(&explained);
    run.code(1).one_line_error(&["version ~1.10.0"]);
    assert!(
        run.stdout
            .contains("version ~1.10.0: 0 of 1 records pass (dropped: have 0.7.0)")
    );
    assert!(run.stdout.ends_with("0 candidate(s)\n"), "{run:#?}");
    for format in ["json", "yaml"] {
        cli.run(&["resolve", "--product", "nothing", "-o", format])
            .fails(1, &["product = nothing"]);
    }
    // Internal endpoints are not reachable from another zone.
    cli.run(&[
        "resolve",
        "--extension-id",
        "kserve-local",
        "--service-id",
        "API",
    ])
    .fails(1, &["endpoints reachable from zone (none)"]);
    Cli::new()
        .run(&["resolve", "--product", "mlflow"])
        .fails(1, &["the registry has no records"]);
}

#[test]
fn resolve_with_a_bad_version_constraint_is_exit_2() {
    let cli = Cli::seeded();
    cli.run(&["resolve", "--product", "kserve", "--version", ">=>1"])
        .fails(2, &["version", "invalid version constraint \">=>1\""]);
}

// --- env --------------------------------------------------------------------

#[test]
fn env_prints_exactly_the_four_mlflow_variables_with_secrets_hidden() {
    let cli = Cli::seeded();
    let step = cli.file("step.yaml", MLFLOW_STEP);
    let run = cli.run(&["env", "--step", &step, "--consumer-zone", "cluster-alpha"]);
    run.ok();
    assert_eq!(
        run.stdout,
        "\
# AWS_ACCESS_KEY_ID=<hidden> (secret)
# AWS_SECRET_ACCESS_KEY=<hidden> (secret)
MLFLOW_S3_ENDPOINT_URL=http://mlflow-minio.mlflow:9000
MLFLOW_TRACKING_URI=http://mlflow.mlflow
"
    );
    let run = cli.run(&[
        "env",
        "--step",
        &step,
        "--consumer-zone",
        "cluster-alpha",
        "--reveal",
    ]);
    run.ok();
    assert_eq!(
        run.stdout,
        format!(
            "AWS_ACCESS_KEY_ID={MLFLOW_ACCESS_KEY}\nAWS_SECRET_ACCESS_KEY={MLFLOW_SECRET_KEY}\nMLFLOW_S3_ENDPOINT_URL=http://mlflow-minio.mlflow:9000\nMLFLOW_TRACKING_URI=http://mlflow.mlflow\n"
        )
    );
    // Outside the zone the external endpoints are chosen; the step may come from stdin.
    let run = cli.run_with_stdin(&["env", "--step", "-"], MLFLOW_STEP.as_bytes());
    run.ok();
    assert!(
        run.stdout
            .contains("MLFLOW_TRACKING_URI=http://mlflow.10.110.120.130.nip.io\n")
    );
}

#[test]
fn env_expressions_and_user_scoped_credentials() {
    let cli = Cli::seeded();
    let step = cli.file(
        "expr.yaml",
        r#"
extensions:
  - name: serving
    product: seldon
env:
  - name: SELDON_URL
    value: '{{ extension.serving.url }}'
  - name: SELDON_KEY
    value: 'key={{ extensions.serving.cfg.CLIENT_KEY }}'
"#,
    );
    let args = [
        "env",
        "--step",
        &step,
        "--project",
        "beta",
        "--user",
        "alainturing",
    ];
    let run = cli.run(&args);
    run.ok();
    assert!(
        run.stdout
            .contains("SELDON_URL=https://production-cluster-xasf.example.com:6443\n")
    );
    assert!(
        run.stdout.contains("# SELDON_KEY=<hidden> (secret)\n"),
        "{run:#?}"
    );
    assert!(run.stdout.contains("namespace=prj_hys568\n"));
    let mut reveal = args.to_vec();
    reveal.push("--reveal");
    let run = cli.run(&reveal);
    run.ok();
    assert!(
        run.stdout
            .contains("SELDON_KEY=key=TyGiZff8KqS5xWQ4eag[...]Rujh1tDcbQyRP0bEJSBOf\n")
    );
}

#[test]
fn env_errors_exit_1_for_no_match_and_2_for_a_bad_step() {
    let cli = Cli::seeded();
    let step = cli.file(
        "nomatch.yaml",
        "extensions:\n  - name: ok\n    product: mlflow\n  - name: tracker\n    product: wandb\n",
    );
    cli.run(&["env", "--step", &step]).fails(
        1,
        &[
            "extensions[1]",
            "tracker",
            "product = wandb",
            "nomatch.yaml",
        ],
    );
    let bad = cli.file("bad.yaml", "extensions:\n  - product: mlflow\n");
    cli.run(&["env", "--step", &bad])
        .fails(2, &["extensions[0].name", "bad.yaml"]);
    let expr = cli.file(
        "expr.yaml",
        "extensions:\n  - name: s\n    product: mlflow\n    service_id: mlflow-store\nenv:\n  - name: X\n    value: '{{ extension.s.cfg.NOPE }}'\n",
    );
    cli.run(&["env", "--step", &expr])
        .fails(2, &["env[0].value", "no configuration key \"NOPE\""]);
    let missing = cli.dir.path().join("nope.yaml");
    cli.run(&["env", "--step", missing.to_str().unwrap()])
        .fails(2, &["cannot read", "nope.yaml"]);
    let version = cli.file(
        "version.yaml",
        "extensions:\n  - name: s\n    product: mlflow\n    version: '~~1'\n",
    );
    cli.run(&["env", "--step", &version])
        .fails(2, &["extensions[0].version", "invalid version constraint"]);
}

// --- exec -------------------------------------------------------------------

#[cfg(unix)]
#[test]
fn exec_runs_the_command_with_the_variables_and_prints_nothing_of_them() {
    let cli = Cli::seeded();
    let step = cli.file("step.yaml", MLFLOW_STEP);
    let run = cli.run(&[
        "exec",
        "--step",
        &step,
        "--consumer-zone",
        "cluster-alpha",
        "--",
        "sh",
        "-c",
        &format!(
            "test \"$AWS_ACCESS_KEY_ID\" = {MLFLOW_ACCESS_KEY} && test \"$MLFLOW_TRACKING_URI\" = http://mlflow.mlflow && echo ok"
        ),
    ]);
    run.ok();
    assert_eq!(run.stdout, "ok\n");

    // The inherited environment is kept; the step's variables are added.
    let run = run_with_env(
        &cli,
        &step,
        "KEEP_ME",
        "kept",
        &["sh", "-c", "echo \"$KEEP_ME $MLFLOW_S3_ENDPOINT_URL\""],
    );
    run.ok();
    assert_eq!(run.stdout, "kept http://minio.10.110.120.130.nip.io\n");

    // inferlink itself prints nothing.
    let run = cli.run(&["exec", "--step", &step, "--", "true"]);
    run.ok();
    assert_eq!(run.stdout, "");
}

#[cfg(unix)]
fn run_with_env(cli: &Cli, step: &str, key: &str, value: &str, command: &[&str]) -> Run {
    let mut args = vec!["exec", "--step", step, "--"];
    args.extend_from_slice(command);
    let mut cmd = cli.command(&args);
    cmd.env(key, value).stdin(Stdio::null());
    run(&mut cmd)
}

#[cfg(unix)]
#[test]
fn exec_passes_on_the_exit_status_and_reports_commands_it_cannot_run() {
    let cli = Cli::seeded();
    let step = cli.file("step.yaml", MLFLOW_STEP);
    let run = cli.run(&[
        "exec",
        "--step",
        &step,
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 7",
    ]);
    run.code(7);
    assert_eq!(run.stdout, "out\n");
    assert_eq!(run.stderr, "err\n");

    cli.run(&[
        "exec",
        "--step",
        &step,
        "--",
        "no-such-command-inferlink-test",
    ])
    .fails(
        127,
        &[
            "cannot run \"no-such-command-inferlink-test\"",
            "command not found",
        ],
    );
    // A file without the execute permission.
    cli.run(&["exec", "--step", &step, "--", &step])
        .fails(126, &["cannot run", "permission denied"]);

    // A command killed by a signal: the caller sees the signal (a shell reports 128+N).
    use std::os::unix::process::ExitStatusExt;
    let status = cli
        .command(&["exec", "--step", &step, "--", "sh", "-c", "kill -TERM $$"])
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.signal(), Some(15));
    let shell = Command::new("sh")
        .env("INFERLINK_MASTER_KEY", TEST_KEY)
        .arg("-c")
        .arg("\"$@\"; echo $?")
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_inferlink"))
        .arg("--store")
        .arg(cli.store())
        .args(["exec", "--step", &step, "--", "sh", "-c", "kill -TERM $$"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&shell.stdout), "143\n");
}

#[test]
fn exec_does_not_run_the_command_when_the_step_does_not_resolve() {
    let cli = Cli::seeded();
    let marker = cli.dir.path().join("ran");
    let step = cli.file(
        "step.yaml",
        "extensions:\n  - name: x\n    product: wandb\n",
    );
    cli.run(&[
        "exec",
        "--step",
        &step,
        "--",
        "touch",
        marker.to_str().unwrap(),
    ])
    .fails(1, &["product = wandb"]);
    assert!(!marker.exists());
    // The command goes after `--`.
    let run = cli.run(&["exec", "--step", &step, "true"]);
    run.code(2);
    assert!(run.stderr.contains("--"), "{run:#?}");
    cli.run(&["exec", "--step", &step]).code(2);
}

// --- secrets ----------------------------------------------------------------

/// A secret planted in records; no command output without --show-secrets / --reveal may contain it.
const PLANTED: &str = "PLANTED-7d1f3c9a";

#[test]
fn no_output_of_any_command_shows_a_secret_unless_asked() {
    let cli = Cli::new();
    let record = format!(
        r#"
id: planted
product: vault
version: "1.2.3"
zone: z1
configuration:
  PLAIN_TOP: visible
services:
  - id: kv
    resource: planted-kv
    category: secrets
    authrequired: true
    endpoints:
      - url: http://vault.z1:8200
        type: internal
      - url: https://vault.example.com
        type: external
    credentials:
      - id: everyone
        default: true
        configuration:
          TOKEN: {PLANTED}-global
      - id: ops
        scope: project
        projects: [ops]
        configuration:
          TOKEN: {PLANTED}-project
"#
    );
    let other = format!(
        "id: planted-two\nproduct: vault\nservices:\n  - id: kv\n    resource: planted-kv\n    endpoints:\n      - url: https://vault2.example.com\n    credentials:\n      - id: c\n        configuration:\n          TOKEN: {PLANTED}-two\n"
    );
    let file = cli.file("planted.yaml", &record);
    let other_file = cli.file("planted-two.yaml", &other);
    let bad_file = cli.file(
        "planted-bad.yaml",
        &record.replace("http://vault.z1:8200", "vault.z1:8200"),
    );
    let step = cli.file(
        "step.yaml",
        "extensions:\n  - name: v\n    extension_id: planted\nenv:\n  - name: AUTH\n    value: 'Bearer {{ extension.v.cfg.TOKEN }}'\n",
    );
    let conflict = cli.file(
        "conflict.yaml",
        "extensions:\n  - name: a\n    extension_id: planted\n  - name: b\n    extension_id: planted-two\n",
    );
    let unknown = cli.file(
        "unknown.yaml",
        "extensions:\n  - name: v\n    extension_id: planted\nenv:\n  - name: X\n    value: '{{ extension.v.cfg.NOPE }}'\n",
    );

    let mut runs: Vec<(String, Run)> = Vec::new();
    let mut go = |args: &[&str]| {
        let run = cli.run(args);
        runs.push((args.join(" "), run));
    };
    go(&["register", "-f", &bad_file]);
    go(&["register", "-f", &file]);
    go(&["register", "-f", &other_file]);
    go(&["register", "-f", &file]);
    go(&["register", "--upsert", "-f", &file]);
    for format in ["table", "json", "yaml"] {
        go(&["list", "-o", format]);
        go(&["list", "--product", "vault", "-o", format]);
    }
    for format in ["yaml", "json"] {
        go(&["get", "planted", "-o", format]);
        go(&["get", "planted-two", "-o", format]);
    }
    for consumer in [&[][..], &["--consumer-zone", "z1", "--project", "ops"][..]] {
        for format in ["text", "json", "yaml"] {
            for explain in [false, true] {
                let mut args = vec!["resolve", "--service-resource", "planted-kv", "-o", format];
                args.extend_from_slice(consumer);
                if explain {
                    args.push("--explain");
                }
                go(&args);
            }
        }
        let mut env = vec!["env", "--step", &step];
        env.extend_from_slice(consumer);
        go(&env);
    }
    go(&[
        "resolve",
        "--product",
        "vault",
        "--version",
        ">9",
        "--explain",
    ]);
    go(&["env", "--step", &conflict]);
    go(&["env", "--step", &unknown]);
    go(&["exec", "--step", &step, "--", "true"]);
    go(&[
        "exec",
        "--step",
        &step,
        "--",
        "no-such-command-inferlink-test",
    ]);
    go(&["exec", "--step", &conflict, "--", "true"]);
    go(&["unregister", "planted-two"]);
    go(&["unregister", "planted-two"]);

    let codes: Vec<Option<i32>> = runs.iter().map(|(_, r)| r.code).collect();
    assert!(codes.contains(&Some(0)) && codes.contains(&Some(1)) && codes.contains(&Some(2)));
    for (args, run) in &runs {
        assert!(
            !run.stdout.contains(PLANTED) && !run.stderr.contains(PLANTED),
            "`inferlink {args}` shows the secret: {run:#?}"
        );
    }
    // The conflict error names both sources, not the values.
    let (_, conflict_run) = runs
        .iter()
        .find(|(a, _)| a.starts_with("env") && a.contains("conflict"))
        .unwrap();
    conflict_run.fails(2, &["variable TOKEN is set to different values"]);

    // The secret is really there: revealing shows it.
    let shown = cli.run(&["get", "planted", "--show-secrets"]);
    shown.ok();
    assert!(shown.stdout.contains(&format!("{PLANTED}-global")));
    // `env --reveal` refuses AUTH (a space: sh and docker --env-file would read it
    // differently) without showing it; `exec` passes it whole.
    let refused = cli.run(&["env", "--step", &step, "--reveal"]);
    refused.fails(2, &["AUTH", "cannot be written as an env-file line"]);
    assert!(!refused.stderr.contains(PLANTED), "{refused:#?}");
    #[cfg(unix)]
    {
        let shown = cli.run(&[
            "exec",
            "--step",
            &step,
            "--",
            "sh",
            "-c",
            "printf '%s|%s|%s' \"$AUTH\" \"$PLAIN_TOP\" \"$TOKEN\"",
        ]);
        shown.ok();
        assert_eq!(
            shown.stdout,
            format!("Bearer {PLANTED}-global|visible|{PLANTED}-global")
        );
    }
}

// --- store selection, usage and failures -----------------------------------

#[test]
fn the_store_comes_from_inferlink_store_when_no_flag_is_given() {
    let cli = Cli::new();
    let store = cli.dir.path().join("nested/dir/from-env.db");
    let path = fixture("kserve-local.yaml");
    let mut cmd = inferlink();
    cmd.args(["register", "-f", path.to_str().unwrap()])
        .env("INFERLINK_STORE", &store);
    run(&mut cmd).ok();
    assert!(store.is_file());
    // The flag wins over the variable.
    let mut cmd = inferlink();
    cmd.args([
        "--store",
        cli.store().to_str().unwrap(),
        "list",
        "-o",
        "json",
    ])
    .env("INFERLINK_STORE", &store);
    let listed = run(&mut cmd);
    listed.ok();
    assert_eq!(ids_of_json(&listed.stdout), Vec::<String>::new());
    let mut cmd = inferlink();
    cmd.args(["list", "-o", "json"])
        .env("INFERLINK_STORE", &store);
    let listed = run(&mut cmd);
    listed.ok();
    assert_eq!(ids_of_json(&listed.stdout), ["kserve-local"]);
}

#[cfg(target_os = "linux")]
#[test]
fn the_default_store_is_in_the_platform_data_directory() {
    let cli = Cli::new();
    let data = cli.dir.path().join("data");
    let path = fixture("kserve-local.yaml");
    let mut cmd = inferlink();
    cmd.args(["register", "-f", path.to_str().unwrap()])
        .env_remove("INFERLINK_STORE")
        .env("XDG_DATA_HOME", &data)
        .env("HOME", cli.dir.path());
    run(&mut cmd).ok();
    let db = data.join("inferlink/registry.db");
    assert!(db.is_file(), "{}", db.display());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&db).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "the store is private: {mode:o}");
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let cli = Cli::new();
    cli.run(&["frobnicate"]).code(2);
    cli.run(&["list", "--bogus"]).code(2);
    cli.run(&["list", "-o", "xml"]).code(2);
    cli.run(&["get", "x", "-o", "table"]).code(2);
    cli.run(&["register"]).code(2);
    cli.run(&["unregister"]).code(2);
    let help = cli.run(&["--help"]);
    help.ok();
    for word in [
        "register",
        "unregister",
        "list",
        "get",
        "resolve",
        "env",
        "exec",
        "Exit status",
        "INFERLINK_STORE",
    ] {
        assert!(help.stdout.contains(word), "{word}: {help:#?}");
    }
    for (command, flags) in [
        ("register", &["--file", "--upsert"][..]),
        (
            "list",
            &[
                "--product",
                "--zone",
                "--resource",
                "--category",
                "--output",
            ][..],
        ),
        ("get", &["--output", "--show-secrets"][..]),
        (
            "resolve",
            &[
                "--name",
                "--extension-id",
                "--service-id",
                "--product",
                "--version",
                "--zone",
                "--service-category",
                "--service-resource",
                "--consumer-zone",
                "--project",
                "--user",
                "--output",
                "--explain",
            ][..],
        ),
        (
            "env",
            &[
                "--step",
                "--consumer-zone",
                "--project",
                "--user",
                "--reveal",
            ][..],
        ),
        (
            "exec",
            &["--step", "--consumer-zone", "--project", "--user", "<CMD>"][..],
        ),
    ] {
        let help = cli.run(&[command, "--help"]);
        help.ok();
        for flag in flags {
            assert!(help.stdout.contains(flag), "{command} {flag}: {help:#?}");
        }
    }
    let version = cli.run(&["--version"]);
    version.ok();
    assert!(version.stdout.starts_with("inferlink "));
}

#[test]
fn a_store_that_is_not_a_database_is_exit_3_and_a_directory_exit_2() {
    let cli = Cli::new();
    std::fs::write(cli.store(), vec![b'x'; 4096]).unwrap();
    cli.run(&["list"]).fails(3, &["registry.db"]);

    let mut cmd = inferlink();
    cmd.arg("--store")
        .arg(cli.dir.path())
        .arg("list")
        .env_remove("INFERLINK_STORE")
        .stdin(Stdio::null());
    run(&mut cmd).fails(2, &[]);
}

// --- keys: encryption at rest -------------------------------------------------

impl Cli {
    /// A run without INFERLINK_MASTER_KEY, with a private data directory (no default key file).
    fn run_keyless(&self, args: &[&str]) -> Run {
        let mut cmd = self.command(args);
        cmd.env_remove("INFERLINK_MASTER_KEY")
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env("HOME", self.dir.path())
            .stdin(Stdio::null());
        run(&mut cmd)
    }

    fn key_file(&self) -> PathBuf {
        self.dir.path().join("keys/master.key")
    }

    /// A run with `--key-file` pointing at [`Cli::key_file`] and no key in the environment.
    fn run_with_key_file(&self, args: &[&str]) -> Run {
        let key = self.key_file();
        let mut all = vec!["--key-file", key.to_str().unwrap()];
        all.extend_from_slice(args);
        self.run_keyless(&all)
    }
}

/// The key line of a key file (the one line that is not a comment).
fn key_line(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .find(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .unwrap()
        .trim()
        .to_owned()
}

fn store_bytes(cli: &Cli) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let mut name = cli.store().into_os_string();
        name.push(suffix);
        if let Ok(bytes) = std::fs::read(PathBuf::from(name)) {
            all.extend(bytes);
        }
    }
    all
}

fn holds(bytes: &[u8], text: &str) -> bool {
    bytes.windows(text.len()).any(|w| w == text.as_bytes())
}

#[test]
fn registered_secrets_are_encrypted_in_the_store_file() {
    let cli = Cli::seeded();
    let bytes = store_bytes(&cli);
    assert!(!bytes.is_empty());
    assert!(
        !holds(&bytes, MLFLOW_SECRET_KEY),
        "secret in the store file"
    );
    assert!(
        !holds(&bytes, MLFLOW_ACCESS_KEY),
        "secret in the store file"
    );
    assert!(holds(&bytes, "inferlink:enc:v1:"));
    // …and they come back with the key.
    let shown = cli.run(&["get", "mlflow-0001", "--show-secrets"]);
    shown.ok();
    assert!(shown.stdout.contains(MLFLOW_SECRET_KEY));
}

#[test]
fn without_a_key_secrets_are_refused_with_how_to_make_one() {
    let cli = Cli::new();
    let path = fixture("mlflow-0001.yaml");
    cli.run_keyless(&["register", "-f", path.to_str().unwrap()])
        .fails(
            2,
            &[
                "has credential values",
                "inferlink keys init",
                "INFERLINK_MASTER_KEY",
            ],
        );
    let listed = cli.run_keyless(&["list", "-o", "json"]);
    listed.ok();
    assert_eq!(
        ids_of_json(&listed.stdout),
        Vec::<String>::new(),
        "nothing written"
    );
    // A record without credential values needs no key.
    let plain = cli.file(
        "plain.yaml",
        "id: plain\nproduct: p\nservices:\n  - id: s\n    endpoints:\n      - url: http://p:1\n",
    );
    cli.run_keyless(&["register", "-f", &plain]).ok();
    let status = cli.run_keyless(&["keys", "status"]);
    status.ok();
    assert!(status.stdout.contains("none configured"), "{status:#?}");
    assert!(status.stdout.contains("inferlink keys init"), "{status:#?}");
}

#[test]
fn keys_init_writes_a_private_key_file_once() {
    let cli = Cli::new();
    let init = cli.run_with_key_file(&["keys", "init"]);
    init.ok();
    let key = cli.key_file();
    let shown = key.display().to_string();
    assert!(
        init.stdout
            .contains(&format!("created the key file {shown}")),
        "{init:#?}"
    );
    assert!(init.stdout.contains("Back it up"), "{init:#?}");
    let content = std::fs::read_to_string(&key).unwrap();
    assert!(
        !init.stdout.contains(&key_line(&key)),
        "the key is never printed"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&key), 0o600);
        assert_eq!(mode(key.parent().unwrap()), 0o700);
    }
    cli.run_with_key_file(&["keys", "init"])
        .fails(2, &["already exists", "never overwrites"]);
    assert_eq!(std::fs::read_to_string(&key).unwrap(), content);
    // The default location, through INFERLINK_KEY_FILE (as the quickstart does).
    let other = cli.dir.path().join("other.key");
    let mut cmd = cli.command(&["keys", "init"]);
    cmd.env_remove("INFERLINK_MASTER_KEY")
        .env("INFERLINK_KEY_FILE", &other)
        .stdin(Stdio::null());
    run(&mut cmd).ok();
    assert!(other.is_file());
}

#[cfg(unix)]
#[test]
fn a_key_file_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let cli = Cli::new();
    cli.run_with_key_file(&["keys", "init"]).ok();
    let key = cli.key_file();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    cli.run_with_key_file(&["list"])
        .fails(2, &[&format!("chmod 600 {}", key.display())]);
}

#[test]
fn keys_rotate_replaces_the_master_key_and_keeps_the_previous_one() {
    let cli = Cli::new();
    cli.run_with_key_file(&["keys", "init"]).ok();
    let key = cli.key_file();
    let old_line = key_line(&key);
    let path = fixture("mlflow-0001.yaml");
    cli.run_with_key_file(&["register", "-f", path.to_str().unwrap()])
        .ok();
    let before = cli.run_with_key_file(&["keys", "status"]);
    before.ok();
    assert!(
        before.stdout.contains("(the configured key)"),
        "{before:#?}"
    );
    assert!(before.stdout.contains("active"), "{before:#?}");
    assert!(!before.stdout.contains(&old_line), "never key bytes");

    let rotated = cli.run_with_key_file(&["keys", "rotate"]);
    rotated.ok();
    assert!(
        rotated.stdout.contains("rotated the master key"),
        "{rotated:#?}"
    );
    assert!(
        rotated.stdout.contains("data keys re-wrapped: 1"),
        "{rotated:#?}"
    );
    let previous = cli.dir.path().join("keys/master.key.previous");
    assert_eq!(key_line(&previous), old_line, "the old key is kept");
    let new_line = key_line(&key);
    assert_ne!(new_line, old_line);
    assert!(!rotated.stdout.contains(&new_line) && !rotated.stdout.contains(&old_line));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for file in [&key, &previous] {
            let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", file.display());
        }
    }
    // The new key reads everything.
    let shown = cli.run_with_key_file(&["get", "mlflow-0001", "--show-secrets"]);
    shown.ok();
    assert!(shown.stdout.contains(MLFLOW_SECRET_KEY));
    // The old key no longer unwraps the data key.
    let mut cmd = cli.command(&["get", "mlflow-0001", "--show-secrets"]);
    cmd.env("INFERLINK_MASTER_KEY", &old_line)
        .stdin(Stdio::null());
    run(&mut cmd).fails(2, &["wrong key", "mlflow-0001"]);
    let after = cli.run_with_key_file(&["keys", "status"]);
    after.ok();
    assert!(after.stdout.contains("(the configured key)"), "{after:#?}");

    // A new data key: every value re-encrypted, still readable.
    let data_id = |status: &str| {
        status
            .lines()
            .find(|l| l.starts_with("data keys:"))
            .and_then(|l| l.split_whitespace().nth(2))
            .unwrap()
            .to_owned()
    };
    let rotated = cli.run_with_key_file(&["keys", "rotate", "--data-key"]);
    rotated.ok();
    assert!(
        rotated.stdout.contains("replaced the data key"),
        "{rotated:#?}"
    );
    assert!(rotated.stdout.contains("1 record(s)"), "{rotated:#?}");
    let status = cli.run_with_key_file(&["keys", "status"]);
    assert_ne!(data_id(&status.stdout), data_id(&after.stdout));
    let shown = cli.run_with_key_file(&["get", "mlflow-0001", "--show-secrets"]);
    shown.ok();
    assert!(shown.stdout.contains(MLFLOW_SECRET_KEY));
    assert!(!holds(&store_bytes(&cli), MLFLOW_SECRET_KEY));
}

#[test]
fn a_key_from_the_environment_rotates_into_a_new_key_file() {
    let cli = Cli::new();
    let path = fixture("mlflow-0001.yaml");
    cli.run(&["register", "-f", path.to_str().unwrap()]).ok();
    cli.run(&["keys", "rotate"])
        .fails(2, &["INFERLINK_MASTER_KEY", "--new-key-file"]);
    let new_file = cli.dir.path().join("new.key");
    let rotated = cli.run(&[
        "keys",
        "rotate",
        "--new-key-file",
        new_file.to_str().unwrap(),
    ]);
    rotated.ok();
    assert!(
        rotated.stdout.contains("set INFERLINK_MASTER_KEY"),
        "{rotated:#?}"
    );
    // The environment's key no longer opens the store; the new one does.
    cli.run(&["get", "mlflow-0001", "--show-secrets"])
        .fails(2, &["wrong key"]);
    let mut cmd = cli.command(&["get", "mlflow-0001", "--show-secrets"]);
    cmd.env("INFERLINK_MASTER_KEY", key_line(&new_file))
        .stdin(Stdio::null());
    let shown = run(&mut cmd);
    shown.ok();
    assert!(shown.stdout.contains(MLFLOW_SECRET_KEY));
}

#[test]
fn a_rotation_interrupted_after_installing_the_new_key_is_finished_by_the_next() {
    let cli = Cli::new();
    cli.run_with_key_file(&["keys", "init"]).ok();
    let path = fixture("mlflow-0001.yaml");
    cli.run_with_key_file(&["register", "-f", path.to_str().unwrap()])
        .ok();
    // What a crash leaves between installing the new key file and re-wrapping:
    // the old key in `.previous`, a new key in the key file, the store unchanged.
    let key = cli.key_file();
    let previous = cli.dir.path().join("keys/master.key.previous");
    std::fs::rename(&key, &previous).unwrap();
    cli.run_with_key_file(&["keys", "init"]).ok();
    // Still readable: the key file's backup holds the key that wraps the data key.
    let shown = cli.run_with_key_file(&["get", "mlflow-0001", "--show-secrets"]);
    shown.ok();
    assert!(shown.stdout.contains(MLFLOW_SECRET_KEY));
    let rotated = cli.run_with_key_file(&["keys", "rotate"]);
    rotated.ok();
    assert!(
        rotated.stdout.contains("interrupted rotation"),
        "{rotated:#?}"
    );
    // Once finished, the store needs only the current key file.
    std::fs::remove_file(&previous).unwrap();
    let shown = cli.run_with_key_file(&["get", "mlflow-0001", "--show-secrets"]);
    shown.ok();
    assert!(shown.stdout.contains(MLFLOW_SECRET_KEY));
}
