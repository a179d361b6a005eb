//! `inferlink export -o DIR` against a store changed behind inferlink's back
//! (issue 14): it never writes outside DIR, never writes through a symbolic
//! link in DIR, and a tampered row is a clear error naming the record.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

/// The base64 test master key (the same one `cli/tests/cli.rs` uses).
const TEST_KEY: &str = "aW5mZXJsaW5rLXRlc3QtbWFzdGVyLWtleS0wMDAwMDE=";

const RECORD: &str = "id: model\nproduct: kserve\nservices:\n  - id: api\n    endpoints:\n      - url: http://127.0.0.1:8080\n";

struct Cli {
    dir: TempDir,
    /// Run with the master key (a keyed store checks integrity tags) or without.
    keyed: bool,
}

impl Cli {
    fn new(keyed: bool) -> Cli {
        let cli = Cli {
            dir: tempfile::tempdir().unwrap(),
            keyed,
        };
        let file = cli.path("model.yaml");
        fs::write(&file, RECORD).unwrap();
        let out = cli.run(&["register", "-f", file.to_str().unwrap()]);
        assert_eq!(out.0, Some(0), "{out:?}");
        fs::remove_file(file).unwrap();
        cli
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.path("registry.db")).unwrap()
    }

    /// Exit code, stdout, stderr.
    fn run(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_inferlink"));
        cmd.arg("--store")
            .arg(self.path("registry.db"))
            .args(args)
            .env_remove("INFERLINK_STORE")
            .env_remove("INFERLINK_KEY_FILE")
            .env_remove("INFERLINK_MASTER_KEY")
            // No key file in the default place either.
            .env("XDG_DATA_HOME", self.path("data"))
            .env("HOME", self.dir.path())
            .stdin(Stdio::null());
        if self.keyed {
            cmd.env("INFERLINK_MASTER_KEY", TEST_KEY);
        }
        let out = cmd.output().expect("the inferlink binary runs");
        (
            out.status.code(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }
}

/// Every file under `root`, relative, sorted.
fn files_under(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn export_never_writes_outside_its_directory_for_a_tampered_id() {
    for keyed in [false, true] {
        let cli = Cli::new(keyed);
        let outside = cli.path("x.yaml");
        let absolute = cli.path("abs");
        fs::create_dir_all(cli.path("out/deep")).unwrap();
        // A database writer renames the record to climb out of the export directory,
        // and adds one named with an absolute path.
        for hostile in ["../../x", absolute.to_str().unwrap()] {
            let db = cli.db();
            db.execute(
                "UPDATE records SET id = ?1, body = replace(body, '\"id\":\"model\"', '\"id\":' || json_quote(?1))",
                [hostile],
            )
            .unwrap();
            db.execute("UPDATE changes SET record_id = ?1", [hostile])
                .unwrap();
            let before = files_under(cli.dir.path());
            let (code, stdout, stderr) =
                cli.run(&["export", "-o", cli.path("out/deep").to_str().unwrap()]);
            assert_ne!(code, Some(0), "keyed {keyed}, {hostile}: {stdout}");
            assert!(
                stderr.contains(&format!("{hostile:?}")) || stderr.contains(hostile),
                "{stderr}"
            );
            assert!(
                stderr.contains("fails validation") || stderr.contains("integrity check"),
                "keyed {keyed}: {stderr}"
            );
            assert!(!outside.exists(), "nothing written outside");
            assert!(!Path::new(&format!("{}.yaml", absolute.display())).exists());
            assert_eq!(
                files_under(cli.dir.path()),
                before,
                "nothing written at all"
            );
            // Back to the original id for the next case.
            let db = cli.db();
            db.execute(
                "UPDATE records SET id = 'model', body = replace(body, '\"id\":' || json_quote(?1), '\"id\":\"model\"')",
                [hostile],
            )
            .unwrap();
            db.execute("UPDATE changes SET record_id = 'model'", [])
                .unwrap();
        }
        let (code, _, stderr) = cli.run(&["export", "-o", cli.path("out/deep").to_str().unwrap()]);
        assert_eq!(code, Some(0), "authentic again: {stderr}");
        assert!(cli.path("out/deep/model.yaml").is_file());
    }
}

#[cfg(unix)]
#[test]
fn export_never_writes_through_a_symbolic_link_in_its_directory() {
    let cli = Cli::new(true);
    let victim = cli.path("victim.txt");
    fs::write(&victim, "precious\n").unwrap();
    fs::create_dir_all(cli.path("out")).unwrap();
    std::os::unix::fs::symlink(&victim, cli.path("out/model.yaml")).unwrap();
    // Without --force: the link counts as an existing file.
    let (code, _, stderr) = cli.run(&["export", "-o", cli.path("out").to_str().unwrap()]);
    assert_ne!(code, Some(0));
    assert!(stderr.contains("already exists"), "{stderr}");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
    // With --force: the link itself is replaced by the file; its target is untouched.
    let (code, _, stderr) =
        cli.run(&["export", "--force", "-o", cli.path("out").to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
    let written = cli.path("out/model.yaml");
    assert!(!written.symlink_metadata().unwrap().file_type().is_symlink());
    assert!(fs::read_to_string(written).unwrap().contains("id: model"));
}
