//! The text commands: `embed`, `rerank`, `generate`, and how the lines of
//! `batch --task embed` are answered.
//!
//! Each resolves its selector like `infer` does and makes typed calls
//! (`Embedding`, `Reranking`, `Generation`, `StreamingGeneration`) through
//! the connector; a connector without the family answers `Unsupported`
//! (exit 2) before any request is sent.

use std::fmt::Write as _;
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures_util::StreamExt as _;
use inferlink::{
    ChatMessage, EmbedRequest, EmbedResponse, Error, ErrorKind, FinishReason, GenerateRequest,
    ModelRef, Registry, RerankRequest, Result, Usage,
};
use serde::Serialize;
use serde_json::{Value, json};

use crate::batch::{BatchRun, Lines, error_record};
use crate::connect::{connect, model_ref};
use crate::{BatchArgs, EmbedArgs, GenerateArgs, ModelArgs, RerankArgs, TextsArgs, VectorArgs};

/// `embed`: one JSON line `{"index", "vector"}` per text, in input order.
pub(crate) async fn embed(registry: &Registry, args: EmbedArgs, out: &mut String) -> Result<()> {
    let texts = read_texts(&args.input)?;
    let count = texts.len();
    let connector = connect(registry, &args.target).await?;
    let model = model_of(&args.model);
    let response = connector
        .embed(&model, EmbedSettings::of(&args.vectors).request(texts))
        .await
        .map_err(with_hint)?;
    check_count(&response, count)?;
    for (index, vector) in response.vectors.iter().enumerate() {
        push_json(out, &VectorLine { index, vector })?;
    }
    let normalized = match response.normalized {
        Some(true) => ", unit length",
        Some(false) => ", not normalised",
        None => "",
    };
    eprintln!(
        "embed: {count} vectors of {} dimensions{normalized}{}",
        response.dimensions,
        usage_text(response.usage)
    );
    Ok(())
}

/// `rerank`: one JSON line `{"index", "score"}` per hit, best first.
pub(crate) async fn rerank(registry: &Registry, args: RerankArgs, out: &mut String) -> Result<()> {
    let documents = read_texts(&args.input)?;
    let connector = connect(registry, &args.target).await?;
    let model = model_of(&args.model);
    let mut request = RerankRequest::new(args.query, documents);
    if let Some(n) = args.top_n {
        request = request.top_n(n);
    }
    let response = connector.rerank(&model, request).await.map_err(with_hint)?;
    for hit in &response.results {
        push_json(
            out,
            &json!({ "index": hit.index, "score": finite_or_null(hit.score) }),
        )?;
    }
    eprintln!(
        "rerank: {} hits{}",
        response.results.len(),
        usage_text(response.usage)
    );
    Ok(())
}

/// `generate`: the text on standard output as it arrives (or at the end
/// when the connector cannot stream, or with `--no-stream`); the finish
/// reason and usage on standard error.
pub(crate) async fn generate(registry: &Registry, args: GenerateArgs) -> Result<()> {
    let prompt = if args.prompt.is_empty() {
        crate::input::read(Path::new("-"))?.text
    } else {
        args.prompt.join(" ")
    };
    if prompt.trim().is_empty() {
        return Err(Error::invalid(
            "no prompt: give it as arguments or on standard input",
        ));
    }
    let mut request = if args.completion {
        GenerateRequest::prompt(prompt)
    } else {
        let mut messages = Vec::new();
        if let Some(system) = args.system {
            messages.push(ChatMessage::system(system));
        }
        messages.push(ChatMessage::user(prompt));
        GenerateRequest::chat(messages)
    };
    if let Some(n) = args.max_tokens {
        request = request.max_tokens(n);
    }
    if let Some(t) = args.temperature {
        request = request.temperature(t);
    }
    let connector = connect(registry, &args.target).await?;
    let model = model_of(&args.model);
    let mut sink = TextSink::stdout();
    let (finish, usage) = if connector.capabilities().stream_generate && !args.no_stream {
        let mut stream = connector
            .generate_stream(&model, request)
            .await
            .map_err(with_hint)?;
        let (mut finish, mut usage) = (None, None);
        while let Some(delta) = stream.next().await {
            let delta = delta?;
            if !sink.write(&delta.text)? {
                // Standard output closed (`| head`): stop generating.
                return Ok(());
            }
            finish = delta.finish_reason.or(finish);
            usage = delta.usage.or(usage);
        }
        (finish, usage)
    } else {
        let response = connector
            .generate(&model, request)
            .await
            .map_err(with_hint)?;
        if !sink.write(&response.text)? {
            return Ok(());
        }
        (response.finish_reason, response.usage)
    };
    sink.end()?;
    eprintln!(
        "generate: finish reason {}{}",
        finish.as_ref().map_or("unknown", FinishReason::as_str),
        usage_text(usage)
    );
    Ok(())
}

/// `batch --task embed`: groups of `--batch-size` lines, one request each.
pub(crate) async fn batch_embed(
    run: BatchRun,
    live: crate::batch::BatchConnector,
    model: ModelRef,
    args: &BatchArgs,
    out: &mut String,
) -> Result<()> {
    if args.batch_size == 0 {
        return Err(Error::invalid_at("--batch-size", "must be at least 1"));
    }
    if live.as_embedding().is_none() {
        let info = live.info().clone();
        return Err(with_hint(inferlink::connector::unsupported(
            &info,
            "embeddings",
        )));
    }
    let settings = EmbedSettings::of(&args.vectors);
    run.execute(
        args.batch_size,
        |lines| {
            let live = live.clone();
            let model = model.clone();
            async move { embed_lines(live.as_ref(), &model, settings, lines).await }
        },
        out,
    )
    .await
}

/// How vectors are asked for (`--dimensions`, `--normalize`).
#[derive(Debug, Clone, Copy)]
struct EmbedSettings {
    dimensions: Option<u32>,
    normalize: bool,
}

impl EmbedSettings {
    fn of(args: &VectorArgs) -> EmbedSettings {
        EmbedSettings {
            dimensions: args.dimensions,
            normalize: args.normalize,
        }
    }

    /// A request for `texts` with these settings.
    fn request(self, texts: Vec<String>) -> EmbedRequest {
        let mut request = EmbedRequest::new(texts);
        if let Some(d) = self.dimensions {
            request = request.dimensions(d);
        }
        if self.normalize {
            request = request.normalize(true);
        }
        request
    }
}

/// One output line of `batch --task embed`: a vector or an error record.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum EmbedAnswer {
    /// `{"line", "id"?, "vector", "elapsed_ms"}`.
    Vector {
        /// The input line number.
        line: u64,
        /// The input's `id`, copied.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<Value>,
        /// The text's vector.
        vector: Vec<f32>,
        /// The time of the request that carried the line, retries included.
        elapsed_ms: f64,
    },
    /// `{"line", "id"?, "error": {…}, "elapsed_ms"?}`.
    Error(Value),
}

/// Answers one group of lines: the valid ones go in one embed request; a
/// line that is not `{"text": …}` becomes an error line without being sent.
/// When the request fails as invalid input (for instance one text longer
/// than the model's context), each text is sent alone, so that only the
/// lines at fault are recorded as errors.
async fn embed_lines(
    live: &dyn inferlink::InferenceConnector,
    model: &ModelRef,
    settings: EmbedSettings,
    lines: Lines,
) -> Vec<(bool, EmbedAnswer)> {
    let mut answers = Vec::with_capacity(lines.len());
    let mut texts = Vec::with_capacity(lines.len());
    let mut sent = Vec::with_capacity(lines.len());
    for (n, line) in lines {
        let (id, text) = match line {
            Ok(line) => parse_text_line(&line),
            Err(e) => (None, Err(e)),
        };
        match text {
            Ok(text) => {
                sent.push((answers.len(), n, id));
                texts.push(text);
                answers.push((false, EmbedAnswer::Error(Value::Null)));
            }
            Err(e) => answers.push((false, EmbedAnswer::Error(error_record(n, id, &e)))),
        }
    }
    if texts.is_empty() {
        return answers;
    }
    let group = texts.len();
    let (result, elapsed_ms) = embed_timed(live, model, settings, texts.clone()).await;
    match result {
        Ok(response) => {
            for ((slot, n, id), vector) in sent.into_iter().zip(response.vectors) {
                answers[slot] = vector_answer(n, id, vector, elapsed_ms);
            }
        }
        Err(e) if group > 1 && e.kind() == ErrorKind::InvalidInput => {
            for ((slot, n, id), text) in sent.into_iter().zip(texts) {
                let (alone, elapsed_ms) = embed_timed(live, model, settings, vec![text]).await;
                answers[slot] = match alone.map(|r| r.vectors.into_iter().next()) {
                    Ok(Some(vector)) => vector_answer(n, id, vector, elapsed_ms),
                    Ok(None) => error_answer(n, id, &no_vector(), elapsed_ms),
                    Err(e) => error_answer(n, id, &e, elapsed_ms),
                };
            }
        }
        Err(e) => {
            for (slot, n, id) in sent {
                answers[slot] = error_answer(n, id, &e, elapsed_ms);
            }
        }
    }
    answers
}

/// One embed request and its time in milliseconds (µs precision). The
/// answer is checked to hold one vector per text.
async fn embed_timed(
    live: &dyn inferlink::InferenceConnector,
    model: &ModelRef,
    settings: EmbedSettings,
    texts: Vec<String>,
) -> (Result<EmbedResponse>, f64) {
    let count = texts.len();
    let started = Instant::now();
    let result = live.embed(model, settings.request(texts)).await;
    let elapsed_ms = (started.elapsed().as_secs_f64() * 1e6).round() / 1e3;
    (
        result.and_then(|r| check_count(&r, count).map(|()| r)),
        elapsed_ms,
    )
}

fn vector_answer(
    n: u64,
    id: Option<Value>,
    vector: Vec<f32>,
    elapsed_ms: f64,
) -> (bool, EmbedAnswer) {
    (
        true,
        EmbedAnswer::Vector {
            line: n,
            id,
            vector,
            elapsed_ms,
        },
    )
}

fn error_answer(n: u64, id: Option<Value>, e: &Error, elapsed_ms: f64) -> (bool, EmbedAnswer) {
    let mut record = error_record(n, id, e);
    record["elapsed_ms"] = json!(elapsed_ms);
    (false, EmbedAnswer::Error(record))
}

fn no_vector() -> Error {
    Error::new(ErrorKind::Protocol, "the server answered without a vector")
}

/// A `batch --task embed` line: `{"text": "…"}` or `{"id": …, "text": "…"}`
/// (the id a string or a number; other fields are ignored). Returns the id
/// (when the line has a usable one) and the text or what is wrong.
fn parse_text_line(line: &str) -> (Option<Value>, Result<String>) {
    const EXPECTED: &str = "expected {\"text\": \"…\"} or {\"id\": …, \"text\": \"…\"}";
    let map = match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(map)) => map,
        Ok(_) => {
            return (
                None,
                Err(Error::invalid(format!(
                    "the line is not an object; {EXPECTED}"
                ))),
            );
        }
        Err(e) => {
            return (
                None,
                Err(Error::invalid(format!(
                    "the line is not JSON ({e}); {EXPECTED}"
                ))),
            );
        }
    };
    let id = match map.get("id") {
        None | Some(Value::Null) => Ok(None),
        Some(id @ (Value::String(_) | Value::Number(_))) => Ok(Some(id.clone())),
        Some(_) => Err(Error::invalid_at("id", "must be a string or a number")),
    };
    let id = match id {
        Ok(id) => id,
        Err(e) => return (None, Err(e)),
    };
    let text = match map.get("text") {
        Some(Value::String(text)) if text.trim().is_empty() => {
            Err(Error::invalid_at("text", "is empty"))
        }
        Some(Value::String(text)) => Ok(text.clone()),
        Some(_) => Err(Error::invalid_at("text", "must be a string")),
        None => Err(Error::invalid(format!(
            "the line has no \"text\"; {EXPECTED}"
        ))),
    };
    (id, text)
}

/// The texts of `embed` or the documents of `rerank`: the arguments, else
/// the lines of `--file` (`-`: standard input), else of standard input.
fn read_texts(input: &TextsArgs) -> Result<Vec<String>> {
    if !input.texts.is_empty() {
        if let Some(i) = input.texts.iter().position(|t| t.trim().is_empty()) {
            return Err(Error::invalid(format!("argument {} is empty", i + 1)));
        }
        return Ok(input.texts.clone());
    }
    let path = input.file.clone().unwrap_or_else(|| PathBuf::from("-"));
    let read = crate::input::read(&path)?;
    split_lines(&read.text, &read.label)
}

/// One text per line: a final newline and a CR before each newline are
/// dropped; an empty line is an error naming it, so that a text's index is
/// always its line number minus one.
fn split_lines(text: &str, label: &str) -> Result<Vec<String>> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    if body.trim().is_empty() {
        return Err(Error::invalid(format!("no texts in {label}")));
    }
    body.split('\n')
        .enumerate()
        .map(|(i, line)| {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() {
                Err(Error::invalid(format!(
                    "line {} of {label} is empty (one text per line)",
                    i + 1
                )))
            } else {
                Ok(line.to_owned())
            }
        })
        .collect()
}

fn model_of(args: &ModelArgs) -> ModelRef {
    model_ref(&args.model, args.model_version.as_deref())
}

/// A `Protocol` error unless the answer holds one vector per text.
fn check_count(response: &EmbedResponse, texts: usize) -> Result<()> {
    if response.vectors.len() == texts {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Protocol,
        format!(
            "the server answered {} vectors for {texts} texts",
            response.vectors.len()
        ),
    ))
}

/// An `Unsupported` error with what to do about it.
fn with_hint(e: Error) -> Error {
    if e.kind() != ErrorKind::Unsupported {
        return e;
    }
    Error::new(
        ErrorKind::Unsupported,
        format!(
            "{e}; choose a service that offers it with the selector flags (an OpenAI-compatible record lists what its server offers in `tasks`)"
        ),
    )
}

/// One embed output line.
#[derive(Serialize)]
struct VectorLine<'a> {
    index: usize,
    vector: &'a [f32],
}

/// Appends `value` as one JSON line (`f32`s written in their shortest form).
fn push_json(out: &mut String, value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string(value)
        .map_err(|e| Error::new(ErrorKind::Internal, format!("cannot write JSON: {e}")))?;
    out.push_str(&crate::output::json_for_terminal(text));
    out.push('\n');
    Ok(())
}

fn finite_or_null(score: f64) -> Value {
    serde_json::Number::from_f64(score).map_or(Value::Null, Value::Number)
}

/// `; usage: 12 prompt + 30 completion = 42 tokens`, as far as reported.
fn usage_text(usage: Option<Usage>) -> String {
    let Some(usage) = usage else {
        return String::new();
    };
    let mut parts = Vec::new();
    if let Some(n) = usage.prompt_tokens {
        parts.push(format!("{n} prompt"));
    }
    if let Some(n) = usage.completion_tokens {
        parts.push(format!("{n} completion"));
    }
    let mut text = String::new();
    if !parts.is_empty() {
        let _ = write!(text, "; tokens: {}", parts.join(" + "));
        if let Some(n) = usage.total_tokens {
            let _ = write!(text, " = {n}");
        }
    } else if let Some(n) = usage.total_tokens {
        let _ = write!(text, "; tokens: {n}");
    }
    text
}

/// Generated text to standard output, flushed piece by piece. On a
/// terminal, control characters other than newline and tab are written as
/// `\u{…}` escapes, so model output cannot drive the terminal; into a pipe
/// or file the text is written as it is.
struct TextSink {
    terminal: bool,
    ends_with_newline: bool,
    wrote: bool,
}

impl TextSink {
    fn stdout() -> TextSink {
        TextSink {
            terminal: std::io::stdout().is_terminal(),
            ends_with_newline: false,
            wrote: false,
        }
    }

    /// Writes a piece; `Ok(false)` when standard output is closed.
    fn write(&mut self, text: &str) -> Result<bool> {
        if text.is_empty() {
            return Ok(true);
        }
        let shown = if self.terminal {
            terminal_text(text)
        } else {
            text.to_owned()
        };
        let mut stdout = std::io::stdout().lock();
        match stdout
            .write_all(shown.as_bytes())
            .and_then(|()| stdout.flush())
        {
            Ok(()) => {
                self.wrote = true;
                self.ends_with_newline = text.ends_with('\n');
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
            Err(e) => Err(Error::new(
                ErrorKind::Internal,
                format!("cannot write to standard output: {e}"),
            )),
        }
    }

    /// Ends the text with a newline on a terminal, so the prompt comes back
    /// on a line of its own.
    fn end(&mut self) -> Result<()> {
        if self.terminal && self.wrote && !self.ends_with_newline {
            self.write("\n")?;
        }
        Ok(())
    }
}

/// `text` with control characters other than newline and tab escaped.
fn terminal_text(text: &str) -> String {
    text.split('\n')
        .map(|line| {
            line.split('\t')
                .map(|part| crate::output::printable(part).into_owned())
                .collect::<Vec<_>>()
                .join("\t")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_texts_and_empty_lines_are_named() {
        assert_eq!(
            split_lines("a\r\nb\nc\n", "f").unwrap(),
            vec!["a", "b", "c"]
        );
        assert_eq!(split_lines("only", "f").unwrap(), vec!["only"]);
        let e = split_lines("a\n\nb\n", "in.txt").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().contains("line 2 of in.txt"), "{e}");
        assert!(
            split_lines("\n", "f")
                .unwrap_err()
                .message()
                .contains("no texts")
        );
    }

    #[test]
    fn batch_lines_carry_a_text_and_maybe_an_id() {
        let (id, text) = parse_text_line(r#"{"id": "doc-1", "text": "hello", "lang": "en"}"#);
        assert_eq!(
            (id, text.unwrap()),
            (Some(json!("doc-1")), "hello".to_owned())
        );
        let (id, text) = parse_text_line(r#"{"id": 7, "text": "x"}"#);
        assert_eq!((id, text.unwrap()), (Some(json!(7)), "x".to_owned()));
        let (id, text) = parse_text_line(r#"{"id": 8}"#);
        assert_eq!(id, Some(json!(8)), "the id is kept for the error line");
        assert!(text.unwrap_err().message().contains("no \"text\""));
        let (_, text) = parse_text_line(r#"{"text": "  "}"#);
        assert_eq!(text.unwrap_err().path(), Some("text"));
        let (_, text) = parse_text_line(r#"{"id": [1], "text": "x"}"#);
        assert_eq!(text.unwrap_err().path(), Some("id"));
        let (_, text) = parse_text_line("\"just a string\"");
        assert!(text.unwrap_err().message().contains("not an object"));
        let (_, text) = parse_text_line("{oops");
        assert!(text.unwrap_err().message().contains("not JSON"));
    }

    #[test]
    fn vectors_are_written_in_shortest_form() {
        let mut out = String::new();
        push_json(
            &mut out,
            &VectorLine {
                index: 0,
                vector: &[0.1, -2.5],
            },
        )
        .unwrap();
        assert_eq!(out, "{\"index\":0,\"vector\":[0.1,-2.5]}\n");
        let answer = vector_answer(3, Some(json!("a")), vec![0.25], 1.5).1;
        assert_eq!(
            serde_json::to_string(&answer).unwrap(),
            r#"{"line":3,"id":"a","vector":[0.25],"elapsed_ms":1.5}"#
        );
    }

    #[test]
    fn usage_and_terminal_text() {
        let usage = Usage {
            prompt_tokens: Some(3),
            completion_tokens: Some(4),
            total_tokens: Some(7),
        };
        assert_eq!(
            usage_text(Some(usage)),
            "; tokens: 3 prompt + 4 completion = 7"
        );
        assert_eq!(usage_text(None), "");
        assert_eq!(terminal_text("a\tb\nc\u{1b}[2J"), "a\tb\nc\\u{1b}[2J");
    }
}
