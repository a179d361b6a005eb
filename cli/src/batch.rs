//! `batch`: run a JSON Lines file through a model, resumably.
//!
//! The machinery ([`BatchRun`]) is shared by the tasks; each task only says
//! how a group of lines is answered. `--task infer` (here): each input line
//! is one request in OIP JSON (what `infer --input` takes). `--task embed`
//! ([`crate::text::batch_embed`]): each line is a text to embed.
//! Each output line is one answer, tagged with the input line's number:
//! `{"line": N, "id": …, "model_name": …, "outputs": [...], "elapsed_ms": …}`
//! or `{"line": N, "id": …, "error": {"kind": …, "message": …}, …}`
//! (`elapsed_ms`: the call's time, retries included; absent for lines that
//! never reached the server).
//!
//! * **Bounded concurrency**: at most `--concurrency` requests in flight;
//!   retries and timeouts are the connector's shared transport's.
//! * **Never a lost line**: every answer is appended and flushed as it
//!   arrives, the file is synced every second and at the end, and a line
//!   that fails (bad JSON, server error) is recorded as an error line.
//! * **Resumable**: lines already answered in the output are skipped; a
//!   partial last line left by a crash is cut off first. With
//!   `--retry-failed`, lines whose latest answer is an error run again.
//! * **Follows the registry**: the connector is a [`LiveConnector`], so an
//!   endpoint moved or a credential rotated during a long run is used from
//!   the next request on. With `--route STRATEGY` it is a router over every
//!   candidate of the selector (`inferlink-router`, docs/routing.md):
//!   failover, load balancing, cooldown, and the records' `route_*` limits.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::io::{BufRead, BufReader, IsTerminal, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use inferlink::InferenceConnector;
use inferlink::connector::LiveConnector;
use inferlink::{Error, ErrorKind, ModelRef, Registry, Result};
use serde_json::{Value, json};

use crate::connect::{connectors, parse_request, response_json};
use crate::{BatchArgs, BatchTask};

/// The longest input line accepted (a larger one is recorded as an error).
const MAX_LINE_BYTES: usize = 64 << 20;
/// How often the output file is synced to disk and plain progress printed.
const TICK: Duration = Duration::from_secs(1);
/// Plain (non-terminal) progress lines are printed this often.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// What became of the lines of one run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Summary {
    /// Input lines (blank lines excluded).
    pub total: u64,
    /// Lines skipped because the output already answers them.
    pub skipped: u64,
    /// Lines answered with outputs in this run.
    pub answered: u64,
    /// Lines answered with an error in this run.
    pub failed: u64,
}

/// Input lines handed to one unit of work: `(line number, text)`; a line
/// that could not be read is an `Err` for that line only.
pub(crate) type Lines = Vec<(u64, Result<String>)>;

/// The files and bounds every batch task shares.
#[derive(Debug, Clone)]
pub(crate) struct BatchFiles {
    /// The input, one request per line.
    pub input: std::path::PathBuf,
    /// The output answers are appended to.
    pub output: std::path::PathBuf,
    /// Units of work in flight at most.
    pub concurrency: usize,
    /// Run again the lines whose latest answer is an error.
    pub retry_failed: bool,
    /// Requests per second at most (`--rate`), over the whole run.
    pub rate: Option<f64>,
}

/// A batch run whose output has been checked (and repaired) and whose
/// input has been counted, before anything is sent: the machinery every
/// task shares (resume, bounded concurrency, never a lost line, progress,
/// summary). The task supplies only how a group of lines is answered.
pub(crate) struct BatchRun {
    files: BatchFiles,
    done: BTreeMap<u64, bool>,
    total: u64,
}

impl BatchRun {
    /// Reads which lines the output already answers (cutting off a partial
    /// last line) and counts the input lines. Nothing is sent yet.
    pub(crate) fn prepare(files: BatchFiles) -> Result<BatchRun> {
        if files.concurrency == 0 {
            return Err(Error::invalid_at("--concurrency", "must be at least 1"));
        }
        if let Some(rate) = files.rate
            && !(rate.is_finite() && rate > 0.0 && rate <= 1e6)
        {
            return Err(Error::invalid_at(
                "--rate",
                "must be a number of requests per second above 0 and at most 1000000",
            ));
        }
        let done = answered_lines(&files.output, files.retry_failed)?;
        let total = count_lines(&files.input)?;
        Ok(BatchRun { files, done, total })
    }

    /// Runs the lines not yet answered, `group` consecutive lines per unit of
    /// work, at most `concurrency` units in flight; each answer is appended
    /// and flushed as it arrives. The summary goes to `out`; an
    /// `Unavailable` error when some lines failed.
    ///
    /// `answer` returns `(succeeded, output record)` for each line it is
    /// given, each record carrying that line's `"line"` number (a record with
    /// an `"error"` field is a failed line to `--retry-failed`).
    pub(crate) async fn execute<F, Fut, R>(
        self,
        group: usize,
        mut answer: F,
        out: &mut String,
    ) -> Result<()>
    where
        F: FnMut(Lines) -> Fut,
        Fut: Future<Output = Vec<(bool, R)>>,
        R: serde::Serialize,
    {
        let BatchRun { files, done, total } = self;
        let output = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&files.output)
            .map_err(|e| io_error("cannot open the output file", &files.output, e))?;
        let mut writer = std::io::BufWriter::new(output);

        let input = std::fs::File::open(&files.input)
            .map_err(|e| io_error("cannot open the input file", &files.input, e))?;
        let mut lines = BufReader::new(input);
        let mut summary = Summary {
            total,
            ..Summary::default()
        };
        let pending = std::iter::from_fn(|| read_line(&mut lines))
            .enumerate()
            .map(|(i, line)| (i as u64 + 1, line))
            .filter(|(_, line)| !matches!(line, Ok(text) if text.trim().is_empty()))
            .filter(|(n, _)| {
                let skip = done.contains_key(n);
                if skip {
                    summary.skipped += 1;
                }
                !skip
            })
            .collect::<Vec<_>>();
        let to_run = pending.len() as u64;
        let mut progress = Progress::new(to_run, summary.skipped);

        let mut groups = Vec::with_capacity(pending.len().div_ceil(group.max(1)));
        let mut current = Vec::with_capacity(group.max(1));
        for line in pending {
            current.push(line);
            if current.len() >= group.max(1) {
                groups.push(std::mem::take(&mut current));
            }
        }
        if !current.is_empty() {
            groups.push(current);
        }
        // `--rate`: one token bucket for the run; a unit of work starts only
        // once it has its token (the future `answer` returns is lazy).
        let limiter = files.rate.map(|rate| {
            Arc::new(inferlink_router::Limiter::new(
                inferlink_router::RateLimit::per_second(rate).with_burst(1.0),
            ))
        });
        let mut answers = futures_util::stream::iter(groups)
            .map(|group| {
                let work = answer(group);
                let limiter = limiter.clone();
                async move {
                    if let Some(limiter) = limiter {
                        limiter.acquire().await;
                    }
                    work.await
                }
            })
            .buffer_unordered(files.concurrency);
        let mut last_sync = Instant::now();
        while let Some(records) = answers.next().await {
            for (ok, record) in records {
                let mut text = serde_json::to_string(&record).map_err(|e| {
                    Error::new(ErrorKind::Internal, format!("cannot write JSON: {e}"))
                })?;
                text.push('\n');
                writer
                    .write_all(text.as_bytes())
                    .map_err(|e| io_error("cannot write the output file", &files.output, e))?;
                if ok {
                    summary.answered += 1;
                } else {
                    summary.failed += 1;
                }
            }
            writer
                .flush()
                .map_err(|e| io_error("cannot write the output file", &files.output, e))?;
            if last_sync.elapsed() >= TICK {
                writer
                    .get_ref()
                    .sync_data()
                    .map_err(|e| io_error("cannot sync the output file", &files.output, e))?;
                last_sync = Instant::now();
            }
            progress.update(summary.answered + summary.failed, summary.failed);
        }
        writer
            .flush()
            .and_then(|()| writer.get_ref().sync_all())
            .map_err(|e| io_error("cannot sync the output file", &files.output, e))?;
        progress.finish();

        let elapsed = progress.started.elapsed().as_secs_f64();
        let ran = summary.answered + summary.failed;
        let _ = writeln!(
            out,
            "batch: {} lines: {} answered, {} failed, {} skipped (already answered) in {:.1} s ({:.1} lines/s); output {}",
            summary.total,
            summary.answered,
            summary.failed,
            summary.skipped,
            elapsed,
            if elapsed > 0.0 {
                ran as f64 / elapsed
            } else {
                0.0
            },
            files.output.display()
        );
        if summary.failed > 0 {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "{} of {} lines failed; their errors are in {} (run again with --retry-failed to retry them)",
                    summary.failed,
                    ran,
                    files.output.display()
                ),
            ));
        }
        Ok(())
    }
}

/// The connector a batch sends its lines through: a [`LiveConnector`], or
/// with `--route` an `inferlink_router::Router` over every candidate.
pub(crate) type BatchConnector = Arc<dyn InferenceConnector>;

/// The connector every line of a batch goes through: a [`LiveConnector`]
/// for the target's selector, so the run follows the registry.
pub(crate) async fn live_connector(
    registry: &Registry,
    target: &crate::TargetArgs,
) -> Result<LiveConnector> {
    LiveConnector::connect(
        registry,
        Arc::new(connectors()?),
        target.selector.selector(),
        target.consumer.consumer(),
    )
    .await
}

/// Runs `batch`; the summary goes to `out`, progress to standard error.
pub(crate) async fn run(registry: &Arc<Registry>, args: BatchArgs, out: &mut String) -> Result<()> {
    let run = BatchRun::prepare(args.files())?;
    let live: BatchConnector = match &args.route {
        // `--route STRATEGY`: every candidate of the selector, with failover,
        // cooldown and the records' `route_*` settings (docs/routing.md).
        Some(word) => {
            let strategy: inferlink_router::Strategy = word
                .parse()
                .map_err(|e: Error| Error::invalid_at("--route", e.message().to_owned()))?;
            let source = inferlink_router::RegistrySource::new(
                Arc::clone(registry),
                args.target.selector.selector(),
                args.target.consumer.consumer(),
            );
            Arc::new(
                inferlink_router::Router::builder(source, Arc::new(connectors()?))
                    .strategy(strategy)
                    .build()
                    .await?,
            )
        }
        None => Arc::new(live_connector(registry, &args.target).await?),
    };
    let model = crate::connect::model_ref(&args.model, args.model_version.as_deref());
    match args.task {
        BatchTask::Infer => {
            run.execute(
                1,
                |lines| {
                    let live = live.clone();
                    let model = model.clone();
                    async move {
                        let mut answers = Vec::with_capacity(lines.len());
                        for (n, line) in lines {
                            answers.push(answer(live.as_ref(), &model, n, line).await);
                        }
                        answers
                    }
                },
                out,
            )
            .await
        }
        BatchTask::Embed => crate::text::batch_embed(run, live, model, &args, out).await,
    }
}

/// One line's answer: `(succeeded, output record)`.
async fn answer(
    live: &dyn InferenceConnector,
    model: &ModelRef,
    n: u64,
    line: Result<String>,
) -> (bool, Value) {
    let parsed = line.and_then(|text| {
        let id = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("id").and_then(Value::as_str).map(|id| json!(id)));
        parse_request(&text).map(|r| (id, r))
    });
    let (id, request) = match parsed {
        Ok(found) => found,
        Err(e) => return (false, error_record(n, None, &e)),
    };
    // Inference is a pure function of its inputs: safe to send twice, so the
    // transport may retry resets and gateway errors too.
    let sent = Instant::now();
    let result = live.infer(model, request.idempotent()).await;
    let elapsed_ms = (sent.elapsed().as_secs_f64() * 1e6).round() / 1e3;
    match result.and_then(|r| response_json(&r)) {
        Ok(Value::Object(mut doc)) => {
            let mut record = serde_json::Map::new();
            record.insert("line".into(), json!(n));
            if let Some(id) = id {
                record.insert("id".into(), json!(id));
            }
            doc.remove("id");
            record.extend(doc);
            record.insert("elapsed_ms".into(), json!(elapsed_ms));
            (true, Value::Object(record))
        }
        Ok(other) => (
            true,
            json!({ "line": n, "response": other, "elapsed_ms": elapsed_ms }),
        ),
        Err(e) => {
            let mut record = error_record(n, id, &e);
            record["elapsed_ms"] = json!(elapsed_ms);
            (false, record)
        }
    }
}

/// The error record of line `n`: `{"line", "id"?, "error": {"kind", "message", "retryable"}}`.
pub(crate) fn error_record(n: u64, id: Option<Value>, e: &Error) -> Value {
    let mut error = serde_json::Map::new();
    error.insert("kind".into(), json!(format!("{:?}", e.kind())));
    error.insert("message".into(), json!(e.to_string()));
    error.insert("retryable".into(), json!(e.is_retryable()));
    let mut record = serde_json::Map::new();
    record.insert("line".into(), json!(n));
    if let Some(id) = id {
        record.insert("id".into(), json!(id));
    }
    record.insert("error".into(), Value::Object(error));
    Value::Object(record)
}

/// The next input line (without its newline); `None` at the end. An
/// unreadable or oversized line becomes an `Err` for that line only.
fn read_line(reader: &mut impl BufRead) -> Option<Result<String>> {
    let mut bytes = Vec::new();
    let mut limited = std::io::Read::take(&mut *reader, MAX_LINE_BYTES as u64 + 1);
    match limited.read_until(b'\n', &mut bytes) {
        Ok(0) => None,
        Ok(_) if bytes.len() > MAX_LINE_BYTES && !bytes.ends_with(b"\n") => {
            // Skip the rest of the oversized line.
            let mut rest = Vec::new();
            loop {
                rest.clear();
                match std::io::Read::take(&mut *reader, 1 << 20).read_until(b'\n', &mut rest) {
                    Ok(0) => break,
                    Ok(_) if rest.ends_with(b"\n") => break,
                    Ok(_) => continue,
                    Err(_) => break,
                }
            }
            Some(Err(Error::invalid(format!(
                "the line is longer than {MAX_LINE_BYTES} bytes"
            ))))
        }
        Ok(_) => {
            while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                bytes.pop();
            }
            Some(String::from_utf8(bytes).map_err(|_| Error::invalid("the line is not UTF-8 text")))
        }
        Err(e) => Some(Err(Error::invalid(format!("cannot read the line: {e}")))),
    }
}

/// Non-blank lines of the input, for progress and the summary.
fn count_lines(path: &Path) -> Result<u64> {
    let file =
        std::fs::File::open(path).map_err(|e| io_error("cannot open the input file", path, e))?;
    let mut reader = BufReader::new(file);
    let mut count = 0;
    while let Some(line) = read_line(&mut reader) {
        if !matches!(&line, Ok(text) if text.trim().is_empty()) {
            count += 1;
        }
    }
    Ok(count)
}

/// The input lines the output file already answers, mapped to whether the
/// latest answer succeeded. A partial last line (a crash mid-write) is cut
/// off so appending starts on a clean line. With `retry_failed`, lines whose
/// latest answer is an error are left out (they run again).
fn answered_lines(path: &Path, retry_failed: bool) -> Result<BTreeMap<u64, bool>> {
    let mut file = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(io_error("cannot open the output file", path, e)),
    };
    let mut latest = BTreeMap::new();
    let mut good_end = 0u64;
    {
        let mut reader = BufReader::new(&mut file);
        let mut offset = 0u64;
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let read = reader
                .read_until(b'\n', &mut buf)
                .map_err(|e| io_error("cannot read the output file", path, e))?;
            if read == 0 {
                break;
            }
            offset += read as u64;
            if !buf.ends_with(b"\n") {
                break; // a partial last line
            }
            let record: Value = serde_json::from_slice(&buf).map_err(|e| {
                Error::invalid(format!(
                    "the output file has a line that is not an answer record ({e}); use another --output"
                ))
                .with_context("file", path.display().to_string())
            })?;
            let Some(n) = record.get("line").and_then(Value::as_u64) else {
                return Err(Error::invalid(
                    "the output file has a record without a line number; use another --output",
                )
                .with_context("file", path.display().to_string()));
            };
            latest.insert(n, record.get("error").is_none());
            good_end = offset;
        }
    }
    if file
        .seek(SeekFrom::End(0))
        .map_err(|e| io_error("cannot read the output file", path, e))?
        > good_end
    {
        file.set_len(good_end)
            .map_err(|e| io_error("cannot repair the output file", path, e))?;
    }
    if retry_failed {
        latest.retain(|_, ok| *ok);
    }
    Ok(latest)
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::new(ErrorKind::Internal, format!("{what}: {e}"))
        .with_context("file", path.display().to_string())
}

/// Progress on standard error: a redrawn bar on a terminal, a plain line
/// every few seconds otherwise.
struct Progress {
    total: u64,
    started: Instant,
    last_print: Instant,
    terminal: bool,
}

impl Progress {
    fn new(total: u64, skipped: u64) -> Self {
        let now = Instant::now();
        let progress = Progress {
            total,
            started: now,
            last_print: now,
            terminal: std::io::stderr().is_terminal(),
        };
        if skipped > 0 {
            eprintln!("batch: {skipped} lines already answered in the output, skipped");
        }
        progress
    }

    fn line(&self, done: u64, failed: u64) -> String {
        let elapsed = self.started.elapsed().as_secs_f64();
        let rate = if elapsed > 0.0 {
            done as f64 / elapsed
        } else {
            0.0
        };
        let left = self.total.saturating_sub(done);
        let eta = if rate > 0.0 {
            format!("{:.0}s", left as f64 / rate)
        } else {
            "?".into()
        };
        let percent = (done * 100).checked_div(self.total).unwrap_or(100);
        format!(
            "{done}/{} lines ({percent}%), {rate:.1} lines/s, ETA {eta}, {failed} failed",
            self.total
        )
    }

    fn update(&mut self, done: u64, failed: u64) {
        let every = if self.terminal {
            Duration::from_millis(100)
        } else {
            PLAIN_EVERY
        };
        if self.last_print.elapsed() < every && done < self.total {
            return;
        }
        self.last_print = Instant::now();
        let text = self.line(done, failed);
        if self.terminal {
            const WIDTH: u64 = 30;
            let filled = (done * WIDTH)
                .checked_div(self.total)
                .unwrap_or(WIDTH)
                .min(WIDTH) as usize;
            let bar = format!(
                "{}{}",
                "#".repeat(filled),
                "-".repeat(WIDTH as usize - filled)
            );
            eprint!("\r[{bar}] {text}\x1b[K");
        } else {
            eprintln!("batch: {text}");
        }
    }

    fn finish(&self) {
        if self.terminal {
            eprintln!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answered_lines_reads_the_latest_answer_and_cuts_a_partial_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        std::fs::write(
            &path,
            "{\"line\":1,\"outputs\":[]}\n{\"line\":2,\"error\":{\"kind\":\"Unavailable\"}}\n{\"line\":3,\"outpu",
        )
        .unwrap();
        let done = answered_lines(&path, false).unwrap();
        assert_eq!(done, BTreeMap::from([(1, true), (2, false)]));
        assert!(
            std::fs::read_to_string(&path).unwrap().ends_with("}}\n"),
            "the partial line is cut off"
        );
        let retry = answered_lines(&path, true).unwrap();
        assert_eq!(retry, BTreeMap::from([(1, true)]));
        assert!(
            answered_lines(&dir.path().join("none.jsonl"), false)
                .unwrap()
                .is_empty()
        );

        std::fs::write(&path, "not json\n").unwrap();
        let e = answered_lines(&path, false).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn lines_are_read_one_by_one_with_limits() {
        let text = b"{\"a\":1}\r\n\n\xff\xfe\nlast";
        let mut reader = BufReader::new(&text[..]);
        assert_eq!(read_line(&mut reader).unwrap().unwrap(), "{\"a\":1}");
        assert_eq!(read_line(&mut reader).unwrap().unwrap(), "");
        assert!(read_line(&mut reader).unwrap().is_err());
        assert_eq!(read_line(&mut reader).unwrap().unwrap(), "last");
        assert!(read_line(&mut reader).is_none());
    }
}
