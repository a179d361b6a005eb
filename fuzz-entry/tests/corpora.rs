//! Replays every checked-in corpus and regression input through the fuzz
//! targets' entry points (on stable, as part of `cargo test --workspace`).
//!
//! A corpus file is an input libFuzzer kept for its coverage; a regression
//! input is a crash the fuzzer found once, named after what it broke. Every
//! one must decode to a value or a typed error without panicking.

use std::path::{Path, PathBuf};

use inferlink_fuzz_entry::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `dir`, sorted (an absent folder has none).
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a readable folder entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `entry` on every file, naming the files that panicked.
fn replay(name: &str, entry: inferlink_fuzz_entry::Entry, files: &[PathBuf]) -> Vec<String> {
    let mut failures = Vec::new();
    for file in files {
        let data = std::fs::read(file).expect("a readable corpus file");
        if std::panic::catch_unwind(|| entry(&data)).is_err() {
            failures.push(format!("{name}: {}", file.display()));
        }
    }
    failures
}

#[test]
fn every_corpus_file_decodes_without_panicking() {
    let mut failures = Vec::new();
    let mut total = 0;
    for (name, entry) in TARGETS {
        let files = files_in(&fuzz_dir().join("corpus").join(name));
        assert!(
            !files.is_empty(),
            "target {name} has no seed corpus in fuzz/corpus/{name}"
        );
        total += files.len();
        failures.extend(replay(name, *entry, &files));
    }
    println!("replayed {total} corpus files of {} targets", TARGETS.len());
    assert!(
        failures.is_empty(),
        "inputs that panicked:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_fixed_crash_stays_fixed() {
    let mut failures = Vec::new();
    let mut total = 0;
    for (name, entry) in TARGETS {
        let files = files_in(&fuzz_dir().join("regressions").join(name));
        total += files.len();
        failures.extend(replay(name, *entry, &files));
    }
    println!("replayed {total} regression inputs");
    assert!(total > 0, "fuzz/regressions holds no input");
    assert!(
        failures.is_empty(),
        "regressions that panic again:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_target_has_a_binary_and_the_binaries_match_the_list() {
    let binaries: Vec<String> = files_in(&fuzz_dir().join("fuzz_targets"))
        .iter()
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    let listed: Vec<String> = {
        let mut names: Vec<String> = TARGETS.iter().map(|(n, _)| (*n).to_owned()).collect();
        names.sort();
        names
    };
    assert_eq!(binaries, listed, "fuzz/fuzz_targets and TARGETS differ");
}
