//! Hostile and malformed input (issue 2, "Bad input").
//!
//! Every file under `tests/corpus/` is one case: a record file
//! (`records/*.yaml|*.json`), a selector (`selectors/*.yaml`) or a workflow
//! step (`steps/*.yaml`). Its header comment lines (for JSON files, the
//! sidecar `NAME.json.expect`) say how it must fail:
//!
//! ```text
//! # expect-kind: InvalidInput             (Debug name of the ErrorKind)
//! # expect-path: services[0].id           (optional: exact Error::path())
//! # expect-message: absolute URL          (optional, repeatable: substrings of the Display)
//! # expect-not-message: s3cr3t            (optional, repeatable: must NOT appear, e.g. secrets)
//! # stage: parse | register | resolve | env
//! ```
//!
//! Stages: `parse` — `format::parse_records` (records), `format::parse_document`
//! (selectors) or `WorkflowStep::parse` (steps) fails; `register` — a record
//! file parses but `Registry::register_yaml` into a freshly seeded registry
//! fails; `resolve` — a selector parses but `Registry::resolve` fails;
//! `env` — a step parses but `Registry::step_environment` fails. The registry
//! holds the seed 004 fixtures (except the `<hidden>` example `mlflow.yaml`);
//! the consumer runs in zone `cluster-alpha`.
//!
//! Every case also must not panic, must finish within [`MAX_WALL`], and must
//! keep its peak heap growth below 16 × its input size + 16 MiB, measured by a
//! counting global allocator. Its error must be one printable line of at most
//! [`MAX_MESSAGE_LEN`] bytes (hostile input is escaped and never echoed
//! whole), and its path must not hold serde's `?` placeholder segment.
//!
//! The generated cases (10 MB strings, a 70 MiB input, 2000-deep nesting) are
//! built in memory by `generated_cases`, not committed.
//!
//! Both tests take [`SERIAL`] so that allocation peaks are measured with no
//! other test of this binary running.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use inferlink::format;
use inferlink::{Consumer, Error, MemoryStore, Registry, Selector, WorkflowStep};

// --- Counting allocator -------------------------------------------------------

/// `System`, counting the bytes currently allocated and their peak.
struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let now = CURRENT.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn shrank(bytes: usize) {
    CURRENT.fetch_sub(bytes, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to `System` unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                shrank(layout.size() - new_size);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f`, returning its result and the peak heap growth (bytes) while it ran.
fn measured<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let start = CURRENT.load(Ordering::Relaxed);
    PEAK.store(start, Ordering::Relaxed);
    let result = f();
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(start);
    (result, peak)
}

/// The memory bound of a case whose input is `input_len` bytes.
fn memory_bound(input_len: usize) -> usize {
    16 * input_len + 16 * MIB
}

const MIB: usize = 1024 * 1024;

/// A guard against hangs, not a speed target.
const MAX_WALL: Duration = Duration::from_secs(5);

/// Longest acceptable error Display: hostile input must never be echoed whole.
const MAX_MESSAGE_LEN: usize = 4096;

/// Serialises the tests of this binary so allocation peaks are per case.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

// --- Environment: runtime, seeded registry, consumer ---------------------------

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

/// The seed 004 record files, except the `<hidden>` example.
fn seed_texts() -> Vec<(String, String)> {
    let dir = tests_dir().join("fixtures/seed004");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("fixture dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| p.file_name().is_some_and(|n| n != "mlflow.yaml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text =
                std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.display().to_string(), text)
        })
        .collect()
}

fn seeded(rt: &tokio::runtime::Runtime, seeds: &[(String, String)]) -> Registry {
    rt.block_on(async {
        let registry = Registry::open(MemoryStore::new())
            .await
            .expect("open registry");
        for (name, text) in seeds {
            registry
                .register_yaml(text)
                .await
                .unwrap_or_else(|e| panic!("seed {name}: {e}"));
        }
        registry
    })
}

fn consumer() -> Consumer {
    Consumer::in_zone("cluster-alpha")
}

// --- Cases -------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Records,
    Selectors,
    Steps,
}

impl Family {
    const ALL: [Family; 3] = [Family::Records, Family::Selectors, Family::Steps];

    fn dir(self) -> &'static str {
        match self {
            Family::Records => "records",
            Family::Selectors => "selectors",
            Family::Steps => "steps",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Parse,
    Register,
    Resolve,
    Env,
}

impl Stage {
    fn parse(s: &str) -> Option<Stage> {
        Some(match s {
            "parse" => Stage::Parse,
            "register" => Stage::Register,
            "resolve" => Stage::Resolve,
            "env" => Stage::Env,
            _ => return None,
        })
    }

    fn allowed_in(self, family: Family) -> bool {
        matches!(
            (family, self),
            (_, Stage::Parse)
                | (Family::Records, Stage::Register)
                | (Family::Selectors, Stage::Resolve)
                | (Family::Steps, Stage::Env)
        )
    }
}

#[derive(Debug, Default)]
struct Expect {
    kind: Option<String>,
    path: Option<String>,
    messages: Vec<String>,
    not_messages: Vec<String>,
    stage: Option<Stage>,
}

/// Reads the `# key: value` lines at the top of `header`.
fn parse_header(header: &str) -> Result<Expect, String> {
    let mut expect = Expect::default();
    for line in header.lines() {
        let Some(comment) = line.strip_prefix('#') else {
            break;
        };
        let Some((key, value)) = comment.split_once(':') else {
            continue;
        };
        let key = key.trim();
        // Values keep inner spaces; only the one space after the colon is dropped.
        let value = value
            .strip_prefix(' ')
            .unwrap_or(value)
            .trim_end_matches('\r');
        match key {
            "expect-kind" => expect.kind = Some(value.trim().to_owned()),
            "expect-path" => expect.path = Some(value.trim().to_owned()),
            "expect-message" => expect.messages.push(value.to_owned()),
            "expect-not-message" => expect.not_messages.push(value.to_owned()),
            "stage" => {
                expect.stage = Some(
                    Stage::parse(value.trim())
                        .ok_or_else(|| format!("unknown stage {value:?} in header"))?,
                );
            }
            "about" | "note" => {}
            other if other.starts_with("expect") => {
                return Err(format!("unknown header key {other:?}"));
            }
            _ => {}
        }
    }
    if expect.kind.is_none() {
        return Err("header has no `expect-kind:`".into());
    }
    if expect.stage.is_none() {
        return Err("header has no `stage:`".into());
    }
    Ok(expect)
}

struct Case {
    name: String,
    family: Family,
    text: String,
    expect: Expect,
}

/// Every corpus case, sorted by family then file name.
fn load_corpus() -> (Vec<Case>, Vec<String>) {
    let mut cases = Vec::new();
    let mut problems = Vec::new();
    for family in Family::ALL {
        let dir = tests_dir().join("corpus").join(family.dir());
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("corpus dir entry").path())
            .filter(|p| {
                p.extension()
                    .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
            })
            .collect();
        files.sort();
        for path in files {
            let name = format!(
                "{}/{}",
                family.dir(),
                path.file_name().unwrap_or_default().to_string_lossy()
            );
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) => {
                    problems.push(format!("{name}: cannot read: {e}"));
                    continue;
                }
            };
            let is_json = path.extension().is_some_and(|e| e == "json");
            let header = if is_json {
                let sidecar = PathBuf::from(format!("{}.expect", path.display()));
                match std::fs::read_to_string(&sidecar) {
                    Ok(h) => h,
                    Err(e) => {
                        problems.push(format!("{name}: no sidecar {}: {e}", sidecar.display()));
                        continue;
                    }
                }
            } else {
                text.clone()
            };
            match parse_header(&header) {
                Ok(expect) => {
                    let stage = expect.stage.unwrap_or(Stage::Parse);
                    if !stage.allowed_in(family) {
                        problems.push(format!(
                            "{name}: stage {stage:?} does not apply to {}",
                            family.dir()
                        ));
                        continue;
                    }
                    cases.push(Case {
                        name,
                        family,
                        text,
                        expect,
                    });
                }
                Err(why) => problems.push(format!("{name}: {why}")),
            }
        }
    }
    (cases, problems)
}

/// Runs one input through its family's stages; returns where it failed and how.
///
/// `Ok(stage)` names the last stage that was run and succeeded (the input
/// was accepted everywhere).
fn run_stages(
    family: Family,
    text: &str,
    rt: &tokio::runtime::Runtime,
    seeds: &[(String, String)],
    shared: &Registry,
) -> Result<Stage, (Stage, Error)> {
    match family {
        Family::Records => {
            format::parse_records(text).map_err(|e| (Stage::Parse, e))?;
            let registry = seeded(rt, seeds);
            rt.block_on(registry.register_yaml(text))
                .map_err(|e| (Stage::Register, e))?;
            Ok(Stage::Register)
        }
        Family::Selectors => {
            let selector: Selector = format::parse_document(text).map_err(|e| (Stage::Parse, e))?;
            shared
                .resolve(&selector, &consumer())
                .map_err(|e| (Stage::Resolve, e))?;
            Ok(Stage::Resolve)
        }
        Family::Steps => {
            let step = WorkflowStep::parse(text).map_err(|e| (Stage::Parse, e))?;
            shared
                .step_environment(&step, &consumer())
                .map_err(|e| (Stage::Env, e))?;
            Ok(Stage::Env)
        }
    }
}

/// `s` cut to a few hundred bytes, with control characters escaped (safe to print).
fn short(s: &str) -> String {
    const MAX: usize = 400;
    let mut end = s.len().min(MAX);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = String::with_capacity(end + 32);
    for c in s[..end].chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    if end < s.len() {
        let _ = write!(out, "… ({} bytes)", s.len());
    }
    out
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(non-string panic payload)".to_owned())
}

/// What one case observed: the outcome, the wall time and the peak heap growth.
struct Observed {
    outcome: std::thread::Result<Result<Stage, (Stage, Error)>>,
    wall: Duration,
    peak: usize,
}

fn observe(
    family: Family,
    text: &str,
    rt: &tokio::runtime::Runtime,
    seeds: &[(String, String)],
    shared: &Registry,
) -> Observed {
    let started = Instant::now();
    let (outcome, peak) = measured(|| {
        catch_unwind(AssertUnwindSafe(|| {
            run_stages(family, text, rt, seeds, shared)
        }))
    });
    Observed {
        outcome,
        wall: started.elapsed(),
        peak,
    }
}

/// Checks an observation against `expect`; returns every mismatch.
fn check(expect: &Expect, input_len: usize, observed: &Observed) -> Vec<String> {
    let mut problems = Vec::new();
    if observed.wall > MAX_WALL {
        problems.push(format!(
            "took {:?} (guard {MAX_WALL:?}: a hang or blow-up?)",
            observed.wall
        ));
    }
    let bound = memory_bound(input_len);
    if observed.peak > bound {
        problems.push(format!(
            "peak heap growth {} bytes exceeds {bound} (16 x {input_len} + 16 MiB)",
            observed.peak
        ));
    }
    let result = match &observed.outcome {
        Err(payload) => {
            problems.push(format!("PANICKED: {}", panic_text(payload.as_ref())));
            return problems;
        }
        Ok(result) => result,
    };
    let (stage, err) = match result {
        Ok(last) => {
            problems.push(format!(
                "was accepted (ran through stage {last:?}); expected a {} error at stage {:?}",
                expect.kind.as_deref().unwrap_or("?"),
                expect.stage.unwrap_or(Stage::Parse)
            ));
            return problems;
        }
        Err((stage, err)) => (*stage, err),
    };
    let shown = err.to_string();
    let observed_line = format!(
        "observed stage {stage:?}, kind {:?}, path {:?}, message: {}",
        err.kind(),
        err.path().map(short),
        short(&shown)
    );
    let mut local = Vec::new();
    if Some(stage) != expect.stage {
        local.push(format!(
            "failed at stage {stage:?}, expected {:?}",
            expect.stage
        ));
    }
    let kind = format!("{:?}", err.kind());
    if expect.kind.as_deref() != Some(kind.as_str()) {
        local.push(format!("kind {kind}, expected {:?}", expect.kind));
    }
    if let Some(want) = &expect.path
        && err.path() != Some(want.as_str())
    {
        local.push(format!(
            "path {:?}, expected {want:?}",
            err.path().map(short)
        ));
    }
    // serde_path_to_error's placeholder for "some map key" names nothing.
    if let Some(path) = err.path()
        && path.split(['.', '[']).any(|segment| segment == "?")
    {
        local.push(format!(
            "path {:?} has a \"?\" segment, which names nothing",
            short(path)
        ));
    }
    for want in &expect.messages {
        if !shown.contains(want.as_str()) {
            local.push(format!("message lacks {want:?}"));
        }
    }
    for unwanted in &expect.not_messages {
        if shown.contains(unwanted.as_str()) {
            local.push(format!("message contains {unwanted:?}"));
        }
    }
    // Errors are one line for a terminal or a log: hostile text is escaped, never raw.
    if let Some(c) = shown.chars().find(|c| c.is_control()) {
        local.push(format!(
            "message holds the raw control character {:?} (input must be escaped)",
            c
        ));
    }
    if shown.trim().is_empty() {
        local.push("message is empty".to_owned());
    }
    if shown.len() > MAX_MESSAGE_LEN {
        local.push(format!(
            "message is {} bytes long (at most {MAX_MESSAGE_LEN}: hostile input must not be echoed whole)",
            shown.len()
        ));
    }
    if !local.is_empty() {
        local.push(observed_line);
        problems.push(local.join("; "));
    }
    problems
}

#[test]
fn corpus_cases_fail_with_typed_errors() {
    let _serial = serial();
    let rt = runtime();
    let seeds = seed_texts();
    let shared = seeded(&rt, &seeds);
    let (cases, mut failures) = load_corpus();

    let mut per_family = [0usize; 3];
    for case in &cases {
        per_family[Family::ALL
            .iter()
            .position(|f| *f == case.family)
            .unwrap_or(0)] += 1;
        let observed = observe(case.family, &case.text, &rt, &seeds, &shared);
        let problems = check(&case.expect, case.text.len(), &observed);
        println!(
            "{:<60} {:>9.3?} peak {:>9} B  {}",
            case.name,
            observed.wall,
            observed.peak,
            match &observed.outcome {
                Ok(Err((_, e))) => short(&e.to_string()),
                Ok(Ok(_)) => "(accepted)".to_owned(),
                Err(_) => "(panicked)".to_owned(),
            }
        );
        for problem in problems {
            failures.push(format!("{}: {problem}", case.name));
        }
    }

    let total = cases.len();
    println!(
        "bad input corpus: {total} cases ({} records, {} selectors, {} steps), {} failing",
        per_family[0],
        per_family[1],
        per_family[2],
        failures.len()
    );
    assert!(
        total >= 60,
        "the corpus must hold at least 60 cases; it has {total}"
    );
    assert!(
        failures.is_empty(),
        "{} corpus case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// --- Generated cases -------------------------------------------------------------

const TEN_MB: usize = 10 * 1024 * 1024;

struct Generated {
    name: &'static str,
    family: Family,
    text: String,
    expect: Expect,
}

fn generated(
    name: &'static str,
    family: Family,
    text: String,
    stage: Stage,
    path: Option<&str>,
    messages: &[&str],
) -> Generated {
    let messages = messages.iter().map(|s| (*s).to_owned()).collect();
    Generated {
        name,
        family,
        text,
        expect: Expect {
            kind: Some("InvalidInput".to_owned()),
            path: path.map(str::to_owned),
            messages,
            not_messages: Vec::new(),
            stage: Some(stage),
        },
    }
}

impl Generated {
    /// Also requires that the error never shows `text` (e.g. a secret value).
    fn never_showing(mut self, text: &str) -> Self {
        self.expect.not_messages.push(text.to_owned());
        self
    }
}

fn big(byte: char, len: usize) -> String {
    std::iter::repeat_n(byte, len).collect()
}

fn record_with_service(extra_service_yaml: &str) -> String {
    format!(
        "id: big\nservices:\n  - id: svc\n    endpoints:\n      - url: http://svc:80\n{extra_service_yaml}"
    )
}

/// The huge and deep inputs, built in memory (not committed).
fn generated_cases() -> Vec<Generated> {
    let ten = big('a', TEN_MB);
    let mut cases = vec![
        generated(
            "10 MB description (YAML)",
            Family::Records,
            format!("id: big\ndescription: {ten}\n"),
            Stage::Parse,
            Some("description"),
            &["10485760 bytes long"],
        ),
        generated(
            "10 MB description (JSON)",
            Family::Records,
            format!("{{\"id\": \"big\", \"description\": \"{ten}\"}}"),
            Stage::Parse,
            Some("description"),
            &["10485760 bytes long"],
        ),
        generated(
            "10 MB configuration value",
            Family::Records,
            format!("id: big\nconfiguration:\n  BIG: {ten}\n"),
            Stage::Parse,
            Some("configuration.BIG"),
            &["10485760 bytes long"],
        ),
        generated(
            "10 MB credential value",
            Family::Records,
            record_with_service(&format!(
                "    credentials:\n      - id: c\n        configuration:\n          BIG: \"{ten}\"\n"
            )),
            Stage::Parse,
            Some("services[0].credentials[0].configuration.BIG"),
            &["10485760 bytes long"],
        )
        .never_showing(&ten[..32]),
        generated(
            "10 MB id",
            Family::Records,
            format!("id: {ten}\n"),
            Stage::Parse,
            Some("id"),
            &["10485760 bytes long"],
        ),
        generated(
            "10 MB service id",
            Family::Records,
            format!("id: big\nservices:\n  - id: {ten}\n"),
            Stage::Parse,
            Some("services[0].id"),
            &["10485760 bytes long"],
        ),
        generated(
            "10 MB endpoint URL",
            Family::Records,
            format!("id: big\nservices:\n  - id: svc\n    endpoints:\n      - url: http://{ten}\n"),
            Stage::Parse,
            Some("services[0].endpoints[0].url"),
            &["bytes long"],
        ),
        generated(
            "10 MB endpoint type",
            Family::Records,
            record_with_service(&format!("        type: {ten}\n")),
            Stage::Parse,
            Some("services[0].endpoints[0].type"),
            &["unknown variant"],
        ),
        generated(
            "10 MB scope",
            Family::Records,
            record_with_service(&format!(
                "    credentials:\n      - id: c\n        scope: {ten}\n"
            )),
            Stage::Parse,
            Some("services[0].credentials[0].scope"),
            &["unknown variant"],
        ),
        generated(
            "10 MB string where a list belongs (YAML)",
            Family::Records,
            format!("id: big\nservices: {ten}\n"),
            Stage::Parse,
            Some("services"),
            &["expected sequence"],
        ),
        generated(
            "10 MB string where a list belongs (JSON)",
            Family::Records,
            format!("{{\"id\": \"big\", \"services\": \"{ten}\"}}"),
            Stage::Parse,
            Some("services"),
            &["invalid type"],
        ),
        generated(
            "10 MB unknown field name (YAML)",
            Family::Records,
            format!("id: big\n{ten}: 1\n"),
            Stage::Parse,
            None,
            &["line 2"],
        ),
        generated(
            "10 MB unknown field name (JSON)",
            Family::Records,
            format!("{{\"id\": \"big\", \"{ten}\": 1}}"),
            Stage::Parse,
            None,
            &["unknown field"],
        ),
        generated(
            "10 MB selector version",
            Family::Selectors,
            format!("product: mlflow\nversion: \">={ten}\"\n"),
            Stage::Resolve,
            Some("version"),
            &["at most 256 bytes"],
        ),
        generated(
            "10 MB step env value with an unknown selector",
            Family::Steps,
            format!(
                "extensions:\n  - name: tracking\n    extension_id: mlflow-0001\n    service_id: mlflow-tracking\nenv:\n  - name: BIG\n    value: \"{ten}{{{{ extension.nope.url }}}}\"\n"
            ),
            Stage::Env,
            Some("env[0].value"),
            &["unknown extension selector \"nope\""],
        ),
    ];
    drop(ten);

    // Over the 64 MiB input limit: rejected before parsing, by size.
    let mut huge = String::with_capacity(70 * MIB + 64);
    huge.push_str("id: huge\ndescription: ");
    huge.push_str(&big('x', 70 * MIB));
    huge.push('\n');
    let size = format!("{} bytes", huge.len());
    cases.push(generated(
        "70 MiB input",
        Family::Records,
        huge,
        Stage::Parse,
        None,
        &[&size, "at most 67108864 are accepted"],
    ));

    let depth = 2000;
    cases.push(generated(
        "2000-deep JSON arrays",
        Family::Records,
        format!(
            "{{\"id\": \"deep\", \"configuration\": {{\"K\": {}{}}}}}",
            "[".repeat(depth),
            "]".repeat(depth)
        ),
        Stage::Parse,
        None,
        &["nesting deeper than 32 levels"],
    ));
    let mut objects = String::from("{\"id\": \"deep\", \"description\": ");
    for _ in 0..depth {
        objects.push_str("{\"a\": ");
    }
    objects.push('1');
    objects.push_str(&"}".repeat(depth + 1));
    cases.push(generated(
        "2000-deep JSON objects",
        Family::Records,
        objects,
        Stage::Parse,
        None,
        &["nesting deeper than 32 levels"],
    ));
    cases.push(generated(
        "2000-deep YAML flow sequences",
        Family::Records,
        format!(
            "id: deep\nservices: {}{}\n",
            "[".repeat(depth),
            "]".repeat(depth)
        ),
        Stage::Parse,
        None,
        &["line 2"],
    ));
    cases.push(generated(
        "2000-deep JSON in a step",
        Family::Steps,
        format!(
            "{{\"name\": \"deep\", \"resources\": {}{}}}",
            "[".repeat(depth),
            "]".repeat(depth)
        ),
        Stage::Parse,
        None,
        &["nesting deeper than 32 levels"],
    ));
    cases
}

#[test]
fn generated_huge_inputs_are_rejected_with_bounded_memory() {
    let _serial = serial();
    let rt = runtime();
    let seeds = seed_texts();
    let shared = seeded(&rt, &seeds);
    let mut failures = Vec::new();
    let mut count = 0;
    for case in generated_cases() {
        count += 1;
        let observed = observe(case.family, &case.text, &rt, &seeds, &shared);
        let problems = check(&case.expect, case.text.len(), &observed);
        let mut line = format!(
            "{:<48} input {:>9} B  {:>9.3?}  peak {:>10} B (bound {:>10} B)",
            case.name,
            case.text.len(),
            observed.wall,
            observed.peak,
            memory_bound(case.text.len())
        );
        if let Ok(Err((_, e))) = &observed.outcome {
            let _ = write!(line, "  {}", short(&e.to_string()));
        }
        println!("{line}");
        for problem in problems {
            failures.push(format!("{}: {problem}", case.name));
        }
    }
    println!(
        "generated bad input: {count} cases, {} failing",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} generated case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
