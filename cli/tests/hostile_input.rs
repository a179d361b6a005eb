//! Issue 14 regressions for the `inferlink` binary: records that try to set
//! `PATH`/`LD_PRELOAD` for `exec`, values that forge `env` lines, terminal
//! escape sequences from records and from a hostile model server, store URLs
//! (`Postgres://`, `sqlite:`), key files shared by two stores, and key files
//! that are FIFOs, devices or huge.
//!
//! The hostile model server is a hand-written stand-in on 127.0.0.1 (no real
//! server sends escape sequences in model names); it is named as such below.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;

/// The fixed test master key (base64 of 32 bytes).
const TEST_KEY: &str = "aW5mZXJsaW5rLXRlc3QtbWFzdGVyLWtleS0wMDAwMDE=";

#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn ok(&self) -> &Self {
        assert_eq!(self.code, Some(0), "{self:#?}");
        assert_eq!(self.stderr, "", "{self:#?}");
        self
    }

    /// Exit status `code`, nothing on stdout, one `inferlink: …` line holding every part of `want`.
    #[track_caller]
    fn fails(&self, code: i32, want: &[&str]) -> &Self {
        assert_eq!(self.code, Some(code), "{self:#?}");
        assert_eq!(self.stdout, "", "{self:#?}");
        assert!(self.stderr.starts_with("inferlink: "), "{self:#?}");
        assert_eq!(self.stderr.lines().count(), 1, "{self:#?}");
        for part in want {
            assert!(self.stderr.contains(part), "{part:?} in {self:#?}");
        }
        self
    }
}

struct Cli {
    dir: TempDir,
}

impl Cli {
    fn new() -> Cli {
        Cli {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn file(&self, name: &str, text: &str) -> String {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    }

    /// The binary with the test key, the store `--store` gives, run in the temporary directory.
    fn bare(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_inferlink"));
        cmd.env("INFERLINK_MASTER_KEY", TEST_KEY)
            .env_remove("INFERLINK_KEY_FILE")
            .env_remove("INFERLINK_STORE")
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        cmd
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.bare();
        cmd.arg("--store").arg(self.path("registry.db")).args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        output(&mut self.command(args))
    }

    fn register(&self, records: &Value) {
        let file = self.file("records.json", &records.to_string());
        self.run(&["register", "--upsert", "-f", &file]).ok();
    }
}

fn output(cmd: &mut Command) -> Run {
    let out = cmd.output().expect("the inferlink binary runs");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// A record `id` with one service of resource `resource`, its configuration
/// `config` and, when given, one credential set's configuration `secret`.
fn record(id: &str, resource: &str, config: Value, secret: Option<Value>) -> Value {
    let mut service = json!({
        "id": "svc",
        "resource": resource,
        "configuration": config,
        "endpoints": [{"url": "http://svc.example:9000"}],
    });
    if let Some(secret) = secret {
        service["credentials"] =
            json!([{"id": "cred", "scope": "global", "configuration": secret}]);
    }
    json!({"id": id, "product": "hostile", "services": [service]})
}

fn step(resource: &str) -> String {
    format!("extensions:\n  - name: store\n    service_resource: {resource}\n")
}

// --- 1. a record sets PATH / LD_PRELOAD for exec ----------------------------

#[cfg(unix)]
#[test]
fn exec_never_runs_a_command_from_a_path_a_record_sets() {
    use std::os::unix::fs::PermissionsExt;
    let cli = Cli::new();
    let evil = cli.path("evil-bin");
    std::fs::create_dir(&evil).unwrap();
    let marker = cli.path("ran-evil-ls");
    let script = evil.join("ls");
    std::fs::write(&script, format!("#!/bin/sh\n: > '{}'\n", marker.display())).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let evil_dir = evil.to_str().unwrap();
    cli.register(&json!([
        record("sets-path", "path", json!({"PATH": evil_dir}), None),
        record(
            "sets-preload",
            "preload",
            json!({"LD_PRELOAD": "/tmp/evil.so"}),
            None
        ),
        record("bad-name", "badname", json!({"9BAD-NAME": "x"}), None),
        record("windows-path", "winpath", json!({"Path": evil_dir}), None),
    ]));

    let path_step = cli.file("path.yaml", &step("path"));
    cli.run(&["exec", "--step", &path_step, "--", "ls"]).fails(
        2,
        &["sets-path", "PATH", "never taken from records", "env:"],
    );
    assert!(!marker.exists(), "the record's ls ran");
    cli.run(&["env", "--step", &path_step])
        .fails(2, &["sets-path", "PATH"]);

    let preload = cli.file("preload.yaml", &step("preload"));
    cli.run(&["exec", "--step", &preload, "--", "true"])
        .fails(2, &["sets-preload", "LD_PRELOAD"]);
    let winpath = cli.file("winpath.yaml", &step("winpath"));
    cli.run(&["exec", "--step", &winpath, "--", "true"])
        .fails(2, &["windows-path", "Path"]);
    let bad = cli.file("bad.yaml", &step("badname"));
    cli.run(&["exec", "--step", &bad, "--", "true"]).fails(
        2,
        &[
            "bad-name",
            "9BAD-NAME",
            "not a valid environment variable name",
        ],
    );
    cli.run(&["env", "--step", &bad]).fails(2, &["9BAD-NAME"]);

    // The step's own env: may set PATH (here from the record): then it applies.
    let explicit = cli.file(
        "explicit.yaml",
        &format!(
            "{}env:\n  - name: PATH\n    value: '{{{{ extension.store.cfg.PATH }}}}'\n",
            step("path")
        ),
    );
    cli.run(&["exec", "--step", &explicit, "--", "ls"]).ok();
    assert!(marker.exists(), "the step chose this PATH explicitly");
}

// --- 2. env output cannot be forged ------------------------------------------

#[test]
fn env_refuses_a_value_that_would_forge_a_line_even_a_revealed_secret() {
    let cli = Cli::new();
    let forged = "safe\nLD_PRELOAD=/tmp/evil.so";
    cli.register(&json!([
        record("forger", "plain", json!({"NOTE": forged}), None),
        record(
            "secret-forger",
            "secret",
            json!({"URL": "http://ok"}),
            Some(json!({"TOKEN": forged})),
        ),
    ]));
    let plain = cli.file("plain.yaml", &step("plain"));
    let run = cli.run(&["env", "--step", &plain]);
    run.fails(2, &["NOTE", "a newline", "forger", "inferlink exec"]);
    assert!(!run.stderr.contains("evil"), "{run:#?}");

    let secret = cli.file("secret.yaml", &step("secret"));
    let hidden = cli.run(&["env", "--step", &secret]);
    hidden.ok();
    assert_eq!(hidden.stdout, "# TOKEN=<hidden> (secret)\nURL=http://ok\n");
    let revealed = cli.run(&["env", "--step", &secret, "--reveal"]);
    revealed.fails(2, &["TOKEN", "secret-forger"]);
    assert!(
        !revealed.stderr.contains("evil"),
        "no part of the secret: {revealed:#?}"
    );
    assert!(!revealed.stderr.contains("LD_PRELOAD"), "{revealed:#?}");

    // exec passes the same value whole, as one variable.
    #[cfg(unix)]
    {
        let run = cli.run(&[
            "exec",
            "--step",
            &plain,
            "--",
            "sh",
            "-c",
            "printf '%s' \"$NOTE\"",
        ]);
        run.ok();
        assert_eq!(run.stdout, forged);
    }
}

/// Docker's `--env-file` reader, from its documented rules (docs.docker.com,
/// `docker run --env-file`, and the CLI's parser): lines split at `\n` with
/// a trailing `\r` dropped; a UTF-8 byte-order mark at the start removed;
/// leading white space trimmed; empty lines and lines starting with `#`
/// skipped; `NAME=VALUE` splits at the first `=` and VALUE is taken literally
/// to the end of the line (no quotes, no escapes); a NAME containing a space
/// or tab is an error; a line without `=` takes NAME's value from the host
/// environment (`None` here).
fn docker_env_file(text: &str) -> Result<Vec<(String, Option<String>)>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut vars = Vec::new();
    for raw in text.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = match line.split_once('=') {
            Some((name, value)) => (name, Some(value.to_owned())),
            None => (line, None),
        };
        if name.contains([' ', '\t']) {
            return Err(format!("variable {name:?} contains whitespaces"));
        }
        vars.push((name.to_owned(), value));
    }
    Ok(vars)
}

#[test]
fn the_docker_reader_follows_dockers_rules() {
    let read = docker_env_file("\u{feff}# c\n\n  A=1 # not a comment\r\nB='q'\nC\nD==x\n").unwrap();
    assert_eq!(
        read,
        vec![
            ("A".into(), Some("1 # not a comment".into())),
            ("B".into(), Some("'q'".into())),
            ("C".into(), None),
            ("D".into(), Some("=x".into())),
        ]
    );
    assert!(docker_env_file("A B=1\n").is_err());
}

/// What `sh` sets `VALUE` to after `set -a; . ./FILE` (None when sourcing fails).
#[cfg(unix)]
fn sh_reads(dir: &Path, text: &str) -> Option<String> {
    let file = dir.join("vars.env");
    std::fs::write(&file, text).unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg("set -a; . ./vars.env || exit 9; printf '%s' \"$VALUE\"")
        .current_dir(dir)
        .env_remove("VALUE")
        .env("HOME", "/home-of-the-test")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (out.status.success() && out.stderr.is_empty()).then(|| String::from_utf8(out.stdout).unwrap())
}

fn docker_reads(text: &str) -> Option<String> {
    docker_env_file(text)
        .ok()?
        .into_iter()
        .find(|(name, _)| name == "VALUE")
        .and_then(|(_, value)| value)
}

#[cfg(unix)]
#[test]
fn env_output_reads_back_the_same_in_sh_and_in_docker_env_file_or_is_refused() {
    // Printed as they are: both readers must get exactly the value.
    let printed = [
        "plain",
        "",
        "http://mlflow.mlflow:5000/a/b?x=1",
        "user@host",
        "a=b=c",
        "50%",
        "base64+/==",
        "-dash",
        "a,b.c:d",
        "glob*?[x]{a,b}!^#",
        "#not-a-comment",
    ];
    // Refused: written plainly, at least one reader would read something else.
    let misread_if_plain = [
        "two words",
        " leading",
        "trailing ",
        "tab\tx",
        "new\nVALUE=forged",
        "cr\r",
        "quote'd",
        "dq\"x",
        "$HOME",
        "${HOME}",
        "`echo x`",
        "$(echo x)",
        "a;b",
        "a&b",
        "a|b",
        "<hidden>",
        ">out",
        "~",
        "a:~/x",
        "back\\slash",
        "(x)",
    ];
    // Refused by caution: multibyte blanks differ between shells; control
    // characters do not belong on a terminal.
    let refused_by_caution = ["Zürich", "nb\u{a0}sp", "\u{1b}[2J"];

    let cli = Cli::new();
    let all: Vec<&str> = printed
        .iter()
        .chain(&misread_if_plain)
        .chain(&refused_by_caution)
        .copied()
        .collect();
    let records: Vec<Value> = all
        .iter()
        .enumerate()
        .map(|(i, v)| {
            record(
                &format!("v{i}"),
                &format!("r{i}"),
                json!({"VALUE": v}),
                None,
            )
        })
        .collect();
    cli.register(&Value::Array(records));
    let scratch = tempfile::tempdir().unwrap();
    for (i, value) in all.iter().enumerate() {
        let step_file = cli.file(&format!("s{i}.yaml"), &step(&format!("r{i}")));
        let run = cli.run(&["env", "--step", &step_file, "--reveal"]);
        if printed.contains(value) {
            run.ok();
            assert_eq!(run.stdout, format!("VALUE={value}\n"));
            assert_eq!(
                sh_reads(scratch.path(), &run.stdout).as_deref(),
                Some(*value),
                "sh: {value:?}"
            );
            assert_eq!(
                docker_reads(&run.stdout).as_deref(),
                Some(*value),
                "docker: {value:?}"
            );
        } else {
            run.fails(2, &["VALUE", "cannot be written as an env-file line"]);
        }
        if misread_if_plain.contains(value) {
            let plain = format!("VALUE={value}\n");
            let sh = sh_reads(scratch.path(), &plain);
            let docker = docker_reads(&plain);
            assert!(
                sh.as_deref() != Some(*value) || docker.as_deref() != Some(*value),
                "{value:?} would read back the same in both: sh {sh:?}, docker {docker:?}"
            );
        }
    }
}

// --- 3. terminal escape sequences ----------------------------------------------

/// True when `text` holds a character that drives a terminal (C0/C1 controls
/// other than the newline, DEL) or reorders what it shows (bidirectional controls).
fn drives_terminal(text: &str) -> bool {
    has_control(text)
        || text
            .chars()
            .any(|c| matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
}

/// True when `text` holds a C0/C1 control character other than the newline, or DEL.
fn has_control(text: &str) -> bool {
    text.chars().any(|c| c.is_control() && c != '\n')
}

#[test]
fn record_values_reach_the_terminal_escaped_and_json_yaml_stay_exact() {
    let cli = Cli::new();
    let note = "a\u{1b}[1Ab\u{9b}31m\u{202e}c";
    let description = "d\u{1b}]0;title\u{7}\nFORGED  ROW";
    let mut evil = record("evil", "r", json!({"NOTE": note}), None);
    evil["description"] = json!(description);
    cli.register(&json!([evil]));

    for args in [
        &["list"][..],
        &["resolve", "--product", "hostile"],
        &["resolve", "--product", "hostile", "--explain"],
        &["get", "evil", "-o", "json"],
        &["list", "-o", "json"],
        &["resolve", "--product", "hostile", "-o", "json"],
    ] {
        let run = cli.run(args);
        run.ok();
        assert!(!drives_terminal(&run.stdout), "{args:?}: {:?}", run.stdout);
    }
    // YAML escapes control characters in double-quoted scalars; it has no
    // escape for a bidirectional control outside them, so those stay as YAML writes them.
    for args in [&["get", "evil"][..], &["list", "-o", "yaml"]] {
        let run = cli.run(args);
        run.ok();
        assert!(!has_control(&run.stdout), "{args:?}: {:?}", run.stdout);
        assert!(run.stdout.contains("\\e[1A"), "{args:?}: {:?}", run.stdout);
    }
    let summary = cli.run(&["resolve", "--product", "hostile"]);
    assert!(
        summary
            .stdout
            .contains("NOTE=a\\u{1b}[1Ab\\u{9b}31m\\u{202e}c\n"),
        "{summary:#?}"
    );
    // JSON and YAML keep the exact values, escaped as each format does.
    let json: Value =
        serde_json::from_str(&cli.run(&["get", "evil", "-o", "json"]).stdout).unwrap();
    assert_eq!(json["description"], description);
    assert_eq!(json["services"][0]["configuration"]["NOTE"], note);
    let yaml = cli.run(&["get", "evil"]).stdout;
    let file = cli.file("back.yaml", &yaml);
    cli.run(&["register", "--upsert", "-f", &file]).ok();
    let again: Value =
        serde_json::from_str(&cli.run(&["get", "evil", "-o", "json"]).stdout).unwrap();
    assert_eq!(
        again["description"], description,
        "the YAML read back is the same"
    );
    assert_eq!(again["services"][0]["configuration"]["NOTE"], note);
}

/// A hand-written stand-in for a hostile Open Inference Protocol server on
/// 127.0.0.1: every name it returns carries escape sequences and newlines.
/// Serves at most `max_connections`, each with a read timeout.
fn hostile_oip_server(max_connections: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(max_connections) {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut length = 0usize;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                    break;
                }
                if let Some((name, value)) = header.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0).min(1 << 20);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let path = request_line.split(' ').nth(1).unwrap_or("");
            let (status, answer) = if path == "/v2/models" {
                (
                    "200 OK",
                    json!({"models": [
                        {"name": "m\u{1b}[2J", "state": "READY"},
                        {"name": "x\nFORGED  1  READY", "state": "\u{9b}32mREADY"},
                    ]}),
                )
            } else if path.ends_with("/infer") {
                (
                    "200 OK",
                    json!({"model_name": "m", "outputs": [
                        {"name": "out\u{1b}[31m", "datatype": "BYTES", "shape": [1], "data": ["\u{9b}31mred\nrow"]},
                    ]}),
                )
            } else if path.starts_with("/v2/models/broken") {
                (
                    "500 Internal Server Error",
                    json!({"error": "boom\u{1b}[2J\u{9b}1m\nforged line"}),
                )
            } else if path.starts_with("/v2/models/") {
                (
                    "200 OK",
                    json!({
                        "name": "m\u{1b}]0;pwned\u{7}",
                        "versions": ["1\u{1b}[A"],
                        "platform": "p\u{9b}31m",
                        "inputs": [{"name": "in\nFORGED", "datatype": "FP32", "shape": [1]}],
                        "outputs": [{"name": "o\u{202e}x", "datatype": "FP32", "shape": [1]}],
                    }),
                )
            } else {
                ("404 Not Found", json!({"error": "not found"}))
            };
            let body = answer.to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn names_from_a_hostile_server_reach_the_terminal_escaped() {
    let cli = Cli::new();
    let url = hostile_oip_server(32);
    cli.register(&json!([{
        "id": "hostile-server",
        "product": "oip",
        "services": [{"id": "v2", "resource": "inference-v2", "endpoints": [{"url": url}]}],
    }]));
    let target = ["--extension-id", "hostile-server"];
    let with = |head: &[&'static str], tail: &[&'static str]| -> Vec<&'static str> {
        head.iter().chain(&target).chain(tail).copied().collect()
    };
    let models = cli.run(&with(&["models"], &[]));
    models.ok();
    assert!(!drives_terminal(&models.stdout), "{models:#?}");
    assert_eq!(
        models.stdout.lines().count(),
        3,
        "header and two rows: {models:#?}"
    );
    assert!(models.stdout.contains("m\\u{1b}[2J"), "{models:#?}");

    let metadata = cli.run(&with(&["metadata", "--model", "m"], &[]));
    metadata.ok();
    assert!(!drives_terminal(&metadata.stdout), "{metadata:#?}");
    assert!(metadata.stdout.contains("in\\u{a}FORGED"), "{metadata:#?}");

    let input = r#"{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}]}"#;
    let table = cli.run(&with(
        &["infer", "--model", "m", "--input", input, "-o", "table"],
        &[],
    ));
    table.ok();
    assert!(!drives_terminal(&table.stdout), "{table:#?}");
    assert_eq!(table.stdout.lines().count(), 2, "{table:#?}");
    let json_run = cli.run(&with(&["infer", "--model", "m", "--input", input], &[]));
    json_run.ok();
    assert!(!drives_terminal(&json_run.stdout), "{json_run:#?}");
    let doc: Value = serde_json::from_str(&json_run.stdout).unwrap();
    assert_eq!(doc["outputs"][0]["name"], "out\u{1b}[31m");
    assert_eq!(doc["outputs"][0]["data"][0], "\u{9b}31mred\nrow");

    let broken = cli.run(&with(&["metadata", "--model", "broken"], &[]));
    assert_eq!(broken.code, Some(3), "{broken:#?}");
    assert_eq!(broken.stderr.lines().count(), 1, "{broken:#?}");
    assert!(!drives_terminal(&broken.stderr), "{broken:#?}");
    assert!(broken.stderr.contains("boom"), "{broken:#?}");
}

// --- 4. store URLs ------------------------------------------------------------------

#[test]
fn sqlite_urls_open_the_named_file_and_never_make_a_directory_named_sqlite() {
    let cli = Cli::new();
    let plain = r#"{"id": "plain", "product": "p", "services": [{"id": "s", "endpoints": [{"url": "http://p:1"}]}]}"#;
    let file = cli.file("plain.json", plain);
    output(
        cli.bare()
            .args(["--store", "sqlite:registry.db", "register", "-f", &file]),
    )
    .ok();
    assert!(cli.path("registry.db").is_file());
    assert!(!cli.path("sqlite:registry.db").exists());
    assert!(!cli.path("sqlite:").exists());
    let absolute = format!("sqlite://{}", cli.path("registry.db").display());
    let listed = output(
        cli.bare()
            .args(["--store", &absolute, "list", "-o", "json"]),
    );
    listed.ok();
    assert!(listed.stdout.contains("\"plain\""), "{listed:#?}");
    let upper = format!("SQLITE:{}", cli.path("registry.db").display());
    output(cli.bare().args(["--store", &upper, "get", "plain"])).ok();

    output(cli.bare().args(["--store", "sqlite://registry.db", "list"]))
        .fails(2, &["sqlite://", "host", "sqlite:RELATIVE/PATH.db"]);
    output(cli.bare().args(["--store", "sqlite::memory:", "list"])).fails(2, &["in-memory"]);
    output(
        cli.bare()
            .env("INFERLINK_STORE", "mysql://root:hunter2@127.0.0.1/x")
            .args(["list"]),
    )
    .fails(2, &["unknown URL scheme"]);
    let entries: Vec<_> = std::fs::read_dir(cli.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        entries.iter().all(|name| !name.contains(':')),
        "no file or directory named after a URL: {entries:?}"
    );
}

#[test]
fn a_capitalised_postgres_url_is_taken_as_postgresql_not_as_a_file() {
    let cli = Cli::new();
    // Nothing listens on port 1: the error must be a PostgreSQL connection error.
    let run = output(
        cli.bare()
            .args(["--store", "Postgres://user@127.0.0.1:1/db", "list"]),
    );
    assert_eq!(run.code, Some(3), "{run:#?}");
    assert!(run.stderr.to_lowercase().contains("postgres"), "{run:#?}");
    assert!(
        !cli.path("Postgres:").exists(),
        "no directory named Postgres:"
    );
}

// --- 5. key files shared by two stores ----------------------------------------------

fn key_cmd(cli: &Cli, store: &str, args: &[&str]) -> Run {
    let key = cli.path("keys/master.key");
    output(
        cli.bare()
            .env_remove("INFERLINK_MASTER_KEY")
            .arg("--store")
            .arg(cli.path(store))
            .arg("--key-file")
            .arg(key)
            .args(args),
    )
}

#[test]
fn rotating_one_store_twice_never_loses_the_key_of_another_sharing_the_key_file() {
    let cli = Cli::new();
    key_cmd(&cli, "a.db", &["keys", "init"]).ok();
    let with_secret = |id: &str| {
        record(
            id,
            "s3",
            json!({"URL": "http://x"}),
            Some(json!({"TOKEN": format!("{id}-s3cr3t")})),
        )
    };
    let a = cli.file("a.json", &with_secret("rec-a").to_string());
    let b = cli.file("b.json", &with_secret("rec-b").to_string());
    key_cmd(&cli, "a.db", &["register", "-f", &a]).ok();
    key_cmd(&cli, "b.db", &["register", "-f", &b]).ok();

    let first = key_cmd(&cli, "a.db", &["keys", "rotate"]);
    first.ok();
    assert!(first.stdout.contains("master.key.previous\n"), "{first:#?}");
    // Store B's data key is still under the first key, readable through `.previous`.
    let status = key_cmd(&cli, "b.db", &["keys", "status"]);
    status.ok();
    assert!(
        status.stdout.contains("a previous key, kept in"),
        "{status:#?}"
    );
    assert!(status.stdout.contains("readable"), "{status:#?}");
    assert!(!status.stdout.contains("cannot be read"), "{status:#?}");
    assert!(
        status
            .stdout
            .contains("`inferlink keys rotate` on this store"),
        "{status:#?}"
    );

    let second = key_cmd(&cli, "a.db", &["keys", "rotate"]);
    second.ok();
    assert!(
        second.stdout.contains("master.key.previous.2\n"),
        "{second:#?}"
    );
    // B still opens with the shared key file after A rotated twice.
    let shown = key_cmd(&cli, "b.db", &["get", "rec-b", "--show-secrets"]);
    shown.ok();
    assert!(shown.stdout.contains("rec-b-s3cr3t"), "{shown:#?}");
    // Rotating B moves it to the current key; its status then says so.
    key_cmd(&cli, "b.db", &["keys", "rotate"]).ok();
    let status = key_cmd(&cli, "b.db", &["keys", "status"]);
    status.ok();
    assert!(
        status.stdout.contains("(the configured key)"),
        "{status:#?}"
    );
    assert!(status.stdout.contains("previous:"), "{status:#?}");
    let shown = key_cmd(&cli, "a.db", &["get", "rec-a", "--show-secrets"]);
    shown.ok();
    assert!(shown.stdout.contains("rec-a-s3cr3t"), "{shown:#?}");
}

// --- 6. key files that are FIFOs, devices or huge -------------------------------------

/// Runs `cmd`, failing the test (and killing the child) if it has not ended within a minute.
#[cfg(unix)]
fn output_or_hang(mut cmd: Command) -> Run {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..600 {
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            return Run {
                code: out.status.code(),
                stdout: String::from_utf8(out.stdout).unwrap(),
                stderr: String::from_utf8(out.stderr).unwrap(),
            };
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("inferlink hung on the key file");
}

#[cfg(unix)]
#[test]
fn a_fifo_device_or_huge_key_file_is_refused_at_once() {
    let cli = Cli::new();
    let fifo = cli.path("fifo.key");
    assert!(
        Command::new("mkfifo")
            .arg("-m")
            .arg("600")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let huge = cli.path("huge.key");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(4 << 30)
        .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&huge, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    for (key, why) in [
        (fifo.as_path(), "a FIFO"),
        (Path::new("/dev/zero"), "a character device"),
        (huge.as_path(), "4294967296 bytes"),
    ] {
        for args in [&["list"][..], &["keys", "status"], &["keys", "rotate"]] {
            let mut cmd = cli.command(&[]);
            cmd.env_remove("INFERLINK_MASTER_KEY")
                .arg("--key-file")
                .arg(key)
                .args(args);
            let run = output_or_hang(cmd);
            if args == ["keys", "status"] {
                run.ok();
                assert!(run.stdout.contains("not usable"), "{run:#?}");
                assert!(run.stdout.contains(why), "{run:#?}");
            } else {
                run.fails(2, &["cannot use the key file", why]);
            }
        }
    }
}
