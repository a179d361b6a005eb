//! The conformance checks of the typed text families: `embed`
//! ([`inferlink::Embedding`]), `rerank` ([`inferlink::Reranking`]),
//! `generate` ([`inferlink::Generation`]) and `stream_generate`
//! ([`inferlink::StreamingGeneration`]).
//!
//! | name | passes when |
//! |---|---|
//! | `embed` | with the capability: one finite, non-zero vector per text, all of the case's length; without: `Unsupported` |
//! | `embed/similarity` | the similar text is closer (cosine) to the anchor than the unrelated one |
//! | `embed/empty` | an empty list of texts is `InvalidInput` |
//! | `rerank` | with the capability: hits best first, indices in range and distinct, the relevant document first; without: `Unsupported` |
//! | `rerank/top_n` | with `top_n` 1, exactly the relevant document |
//! | `generate` | with the capability: non-empty text and a finish reason; without: `Unsupported` |
//! | `stream_generate` | with the capability: the pieces join to non-empty text, a finish reason comes, no text after it; without: `Unsupported` |
//!
//! A connector with a family but no case in the spec fails that family's check.

use futures_util::StreamExt as _;
use inferlink::{EmbedRequest, ErrorKind, GenerateDelta, GenerateRequest, ModelRef, RerankRequest};

use super::{Answer, Run, Verdict, describe};

/// Most pieces a streamed generation may yield in one check.
const MAX_DELTAS: usize = 100_000;
/// Most text bytes a streamed generation may yield in one check.
const MAX_TEXT_BYTES: usize = 4 * 1024 * 1024;

/// The embed checks' case: texts to embed and what the vectors must show.
#[derive(Clone, Debug)]
pub struct EmbedCase {
    /// The embedding model.
    pub model: ModelRef,
    /// The vector length the model gives; `None`: any length above 0.
    pub dimensions: Option<usize>,
    /// Anchor, a text similar to it, and an unrelated text.
    pub similarity: (String, String, String),
}

impl EmbedCase {
    /// A case for `model` with a default similarity triple (two texts about
    /// cats, one about tax law).
    pub fn new(model: impl Into<ModelRef>) -> Self {
        EmbedCase {
            model: model.into(),
            dimensions: None,
            similarity: (
                "A cat sleeps on the warm windowsill.".to_owned(),
                "The kitten is napping in the sun by the window.".to_owned(),
                "Quarterly tax filings are due at the end of the month.".to_owned(),
            ),
        }
    }

    /// Expects vectors of this length.
    pub fn dimensions(mut self, dimensions: usize) -> Self {
        self.dimensions = Some(dimensions);
        self
    }
}

/// The rerank checks' case: a query, documents, and the relevant one.
#[derive(Clone, Debug)]
pub struct RerankCase {
    /// The reranking model.
    pub model: ModelRef,
    /// The query.
    pub query: String,
    /// The documents.
    pub documents: Vec<String>,
    /// The index of the document that must rank first.
    pub relevant: usize,
}

impl RerankCase {
    /// A case for `model` with a default query and three documents, the
    /// second relevant.
    pub fn new(model: impl Into<ModelRef>) -> Self {
        RerankCase {
            model: model.into(),
            query: "What is the capital of France?".to_owned(),
            documents: vec![
                "Bananas are rich in potassium.".to_owned(),
                "Paris is the capital and largest city of France.".to_owned(),
                "The Rhine flows through several countries.".to_owned(),
            ],
            relevant: 1,
        }
    }
}

/// The generate checks' case (used for `generate` and `stream_generate`).
#[derive(Clone, Debug)]
pub struct GenerateCase {
    /// The generation model.
    pub model: ModelRef,
    /// The request (keep `max_tokens` small: the checks read the whole text).
    pub request: GenerateRequest,
}

impl GenerateCase {
    /// A case for `model` with `request`.
    pub fn new(model: impl Into<ModelRef>, request: GenerateRequest) -> Self {
        GenerateCase {
            model: model.into(),
            request,
        }
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b)).max(f64::MIN_POSITIVE)
}

fn check_vectors(vectors: &[Vec<f32>], texts: usize, dimensions: Option<usize>) -> Verdict {
    if vectors.len() != texts {
        return Err(format!("{} vectors for {texts} texts", vectors.len()));
    }
    for (i, v) in vectors.iter().enumerate() {
        match dimensions {
            Some(d) if v.len() != d => {
                return Err(format!("vector {i} has {} numbers, expected {d}", v.len()));
            }
            _ if v.is_empty() => return Err(format!("vector {i} is empty")),
            _ => {}
        }
        if v.iter().any(|x| !x.is_finite()) {
            return Err(format!("vector {i} has a number that is not finite"));
        }
        if v.iter().all(|x| *x == 0.0) {
            return Err(format!("vector {i} is all zeros"));
        }
    }
    Ok(())
}

impl Run<'_> {
    pub(super) async fn embed(&mut self) {
        let model = self.first_model();
        if !self.connector.capabilities().embed {
            let answer = self
                .ask(self.connector.embed(&model, EmbedRequest::new(["x"])))
                .await;
            let verdict = self.unsupported("embeddings", answer);
            return self.verdict("embed", verdict);
        }
        let Some(case) = self.spec.embed.clone() else {
            return self.verdict("embed", Err(missing("embeds", "embed")));
        };
        let (anchor, similar, unrelated) = case.similarity.clone();
        let request = EmbedRequest::new([anchor, similar, unrelated]);
        let answer = self.ask(self.connector.embed(&case.model, request)).await;
        let vectors = match answer {
            Answer::Ok(response) => {
                let verdict = check_vectors(&response.vectors, 3, case.dimensions).and_then(|()| {
                    match response.vectors.first() {
                        Some(v) if v.len() != response.dimensions => Err(format!(
                            "the response says {} dimensions, the vectors have {}",
                            response.dimensions,
                            v.len()
                        )),
                        _ => Ok(()),
                    }
                });
                let ok = verdict.is_ok();
                self.verdict("embed", verdict);
                ok.then_some(response.vectors)
            }
            Answer::Err(e) => {
                self.verdict("embed", Err(describe(&e)));
                None
            }
            Answer::Hung => {
                let why = self.hung();
                self.verdict("embed", Err(why));
                None
            }
        };
        if let Some(v) = vectors {
            let (near, far) = (cosine(&v[0], &v[1]), cosine(&v[0], &v[2]));
            let verdict = if near > far {
                Ok(())
            } else {
                Err(format!(
                    "the similar text scores {near:.4}, the unrelated one {far:.4}"
                ))
            };
            self.verdict("embed/similarity", verdict);
        }
        let empty = self
            .ask(
                self.connector
                    .embed(&case.model, EmbedRequest::new(Vec::<String>::new())),
            )
            .await;
        let verdict = self.expect_invalid(empty);
        self.verdict("embed/empty", verdict);
    }

    pub(super) async fn rerank(&mut self) {
        let model = self.first_model();
        if !self.connector.capabilities().rerank {
            let answer = self
                .ask(
                    self.connector
                        .rerank(&model, RerankRequest::new("q", ["d"])),
                )
                .await;
            let verdict = self.unsupported("reranking", answer);
            return self.verdict("rerank", verdict);
        }
        let Some(case) = self.spec.rerank.clone() else {
            return self.verdict("rerank", Err(missing("reranks", "rerank")));
        };
        let request = RerankRequest::new(case.query.clone(), case.documents.clone());
        let answer = self.ask(self.connector.rerank(&case.model, request)).await;
        let verdict = match answer {
            Answer::Ok(response) => {
                let hits = &response.results;
                let indices: Vec<usize> = hits.iter().map(|h| h.index).collect();
                let mut distinct = indices.clone();
                distinct.sort_unstable();
                distinct.dedup();
                if hits.len() != case.documents.len() || distinct.len() != hits.len() {
                    Err(format!(
                        "hits for documents {indices:?} of {}",
                        case.documents.len()
                    ))
                } else if hits.iter().any(|h| h.index >= case.documents.len()) {
                    Err(format!("a hit index is out of range: {indices:?}"))
                } else if hits.windows(2).any(|w| w[0].score < w[1].score) {
                    Err("the hits are not ordered best first".to_owned())
                } else if indices.first() != Some(&case.relevant) {
                    Err(format!(
                        "document {} ranks first, expected {}",
                        indices[0], case.relevant
                    ))
                } else {
                    Ok(())
                }
            }
            Answer::Err(e) => Err(describe(&e)),
            Answer::Hung => Err(self.hung()),
        };
        self.verdict("rerank", verdict);
        let request = RerankRequest::new(case.query.clone(), case.documents.clone()).top_n(1);
        let verdict = match self.ask(self.connector.rerank(&case.model, request)).await {
            Answer::Ok(r) if r.results.len() == 1 && r.results[0].index == case.relevant => Ok(()),
            Answer::Ok(r) => Err(format!("top_n 1 gave {:?}", r.results)),
            Answer::Err(e) => Err(describe(&e)),
            Answer::Hung => Err(self.hung()),
        };
        self.verdict("rerank/top_n", verdict);
    }

    pub(super) async fn generate(&mut self) {
        let model = self.first_model();
        if !self.connector.capabilities().generate {
            let request = GenerateRequest::prompt("x");
            let answer = self.ask(self.connector.generate(&model, request)).await;
            let verdict = self.unsupported("text generation", answer);
            return self.verdict("generate", verdict);
        }
        let Some(case) = self.spec.generate.clone() else {
            return self.verdict("generate", Err(missing("generates", "generate")));
        };
        let answer = self
            .ask(self.connector.generate(&case.model, case.request.clone()))
            .await;
        let verdict = match answer {
            Answer::Ok(r) if r.text.trim().is_empty() => Err("the text is empty".to_owned()),
            Answer::Ok(r) if r.finish_reason.is_none() => Err("no finish reason".to_owned()),
            Answer::Ok(_) => Ok(()),
            Answer::Err(e) => Err(describe(&e)),
            Answer::Hung => Err(self.hung()),
        };
        self.verdict("generate", verdict);
    }

    pub(super) async fn stream_generate(&mut self) {
        const NAME: &str = "stream_generate";
        let model = self.first_model();
        if !self.connector.capabilities().stream_generate {
            let request = GenerateRequest::prompt("x");
            let answer = self
                .ask(self.connector.generate_stream(&model, request))
                .await;
            let verdict = self.unsupported("streamed text generation", answer);
            return self.verdict(NAME, verdict);
        }
        let Some(case) = self.spec.generate.clone() else {
            return self.verdict(NAME, Err(missing("streams generation", "generate")));
        };
        let connector = self.connector;
        let collect = async {
            let mut stream = connector
                .generate_stream(&case.model, case.request.clone())
                .await?;
            let (mut deltas, mut bytes) = (Vec::<GenerateDelta>::new(), 0);
            while let Some(delta) = stream.next().await {
                let delta = delta?;
                bytes += delta.text.len();
                deltas.push(delta);
                if deltas.len() > MAX_DELTAS || bytes > MAX_TEXT_BYTES {
                    break;
                }
            }
            Ok(deltas)
        };
        let verdict = match self.ask(collect).await {
            Answer::Ok(deltas) => check_deltas(&deltas),
            Answer::Err(e) => Err(describe(&e)),
            Answer::Hung => Err(self.hung()),
        };
        self.verdict(NAME, verdict);
    }

    fn expect_invalid<T>(&self, answer: Answer<T>) -> Verdict {
        match answer {
            Answer::Err(e) if e.kind() == ErrorKind::InvalidInput => Ok(()),
            Answer::Err(e) => Err(format!("expected InvalidInput, got {}", describe(&e))),
            Answer::Ok(_) => Err("the request was accepted; expected InvalidInput".to_owned()),
            Answer::Hung => Err(self.hung()),
        }
    }
}

fn missing(does: &str, case: &str) -> String {
    format!("the connector {does}, but the spec has no {case} case (ConformanceSpec::{case})")
}

/// The pieces of a streamed generation: bounded, non-empty text, a finish
/// reason, and no text after it.
fn check_deltas(deltas: &[GenerateDelta]) -> Verdict {
    if deltas.len() > MAX_DELTAS {
        return Err(format!("more than {MAX_DELTAS} pieces"));
    }
    let text: String = deltas.iter().map(|d| d.text.as_str()).collect();
    if text.len() > MAX_TEXT_BYTES {
        return Err(format!("more than {MAX_TEXT_BYTES} bytes of text"));
    }
    if text.trim().is_empty() {
        return Err(format!("{} pieces joined to no text", deltas.len()));
    }
    let Some(end) = deltas.iter().position(|d| d.finish_reason.is_some()) else {
        return Err("the stream ended without a finish reason".to_owned());
    };
    if deltas[end + 1..].iter().any(|d| !d.text.is_empty()) {
        return Err("text arrived after the finish reason".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use futures_util::stream;
    use inferlink::{
        ConnectorInfo, EmbedResponse, Embedding, Error, FinishReason, GenerateDelta,
        GenerateResponse, GenerateStream, Generation, Health, InferenceConnector, RerankHit,
        RerankResponse, Reranking, Result, StreamingGeneration, async_trait,
    };

    use super::super::{CheckStatus, ConformanceSpec, run_connector_conformance};
    use super::*;

    /// A test double of a text connector: vectors count words' first letters, rerank
    /// counts shared words, generation echoes the prompt. No server, no
    /// protocol; `reversed` ranks worst first.
    #[derive(Debug)]
    struct WordDouble {
        info: ConnectorInfo,
        reversed: bool,
    }

    fn words(text: &str) -> Vec<String> {
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.len() > 3)
            .map(str::to_lowercase)
            .collect()
    }

    #[async_trait]
    impl InferenceConnector for WordDouble {
        fn info(&self) -> &ConnectorInfo {
            &self.info
        }
        async fn health(&self) -> Result<Health> {
            Ok(Health::SERVING)
        }
        fn as_embedding(&self) -> Option<&dyn Embedding> {
            Some(self)
        }
        fn as_reranking(&self) -> Option<&dyn Reranking> {
            Some(self)
        }
        fn as_generation(&self) -> Option<&dyn Generation> {
            Some(self)
        }
        fn as_streaming_generation(&self) -> Option<&dyn StreamingGeneration> {
            Some(self)
        }
    }

    #[async_trait]
    impl Embedding for WordDouble {
        async fn embed(&self, _: &ModelRef, request: EmbedRequest) -> Result<EmbedResponse> {
            if request.texts.is_empty() {
                return Err(Error::invalid("no texts"));
            }
            let letters = |t: &String| {
                let mut v = vec![0.0f32; 26];
                let firsts = words(t).into_iter().filter_map(|w| w.bytes().next());
                for b in firsts.filter(u8::is_ascii_lowercase) {
                    v[usize::from(b - b'a')] += 1.0;
                }
                v
            };
            EmbedResponse::new(request.texts.iter().map(letters).collect())
        }
    }

    #[async_trait]
    impl Reranking for WordDouble {
        async fn rerank(&self, _: &ModelRef, request: RerankRequest) -> Result<RerankResponse> {
            let query = words(&request.query);
            let hits = request.documents.iter().enumerate().map(|(index, d)| {
                let shared = words(d).iter().filter(|w| query.contains(w)).count() as f64;
                let score = if self.reversed { -shared } else { shared };
                RerankHit { index, score }
            });
            Ok(RerankResponse::new(hits.collect(), request.top_n))
        }
    }

    #[async_trait]
    impl Generation for WordDouble {
        async fn generate(
            &self,
            _: &ModelRef,
            request: GenerateRequest,
        ) -> Result<GenerateResponse> {
            let text = format!("{:?}", request.input);
            Ok(GenerateResponse::new(text, Some(FinishReason::Stop), None))
        }
    }

    #[async_trait]
    impl StreamingGeneration for WordDouble {
        async fn generate_stream(
            &self,
            _: &ModelRef,
            _: GenerateRequest,
        ) -> Result<GenerateStream> {
            let pieces = [delta("Hel", None), delta("lo", Some(FinishReason::Length))];
            Ok(stream::iter(pieces.map(Ok)).boxed())
        }
    }

    fn double(reversed: bool) -> WordDouble {
        let info = ConnectorInfo::new("words", "in-process", "http://127.0.0.1:1");
        WordDouble { info, reversed }
    }

    #[tokio::test]
    async fn typed_families_are_checked_when_present() {
        let spec = ConformanceSpec::new()
            .embed(EmbedCase::new("e").dimensions(26))
            .rerank(RerankCase::new("r"))
            .generate(GenerateCase::new("g", GenerateRequest::prompt("Say hi")));
        let report = run_connector_conformance(&double(false), &spec).await;
        for name in [
            "embed",
            "embed/similarity",
            "embed/empty",
            "rerank",
            "rerank/top_n",
            "generate",
            "stream_generate",
        ] {
            assert_eq!(
                report.status(name),
                Some(&CheckStatus::Passed),
                "{name}\n{report}"
            );
        }
        let report = run_connector_conformance(&double(true), &spec).await;
        assert!(
            matches!(report.status("rerank"), Some(CheckStatus::Failed(_))),
            "{report}"
        );
        let wrong_length = spec.clone().embed(EmbedCase::new("e").dimensions(3));
        let report = run_connector_conformance(&double(false), &wrong_length).await;
        assert!(
            matches!(report.status("embed"), Some(CheckStatus::Failed(_))),
            "{report}"
        );
    }

    #[tokio::test]
    async fn a_family_without_a_case_fails_its_check() {
        let report = run_connector_conformance(&double(false), &ConformanceSpec::new()).await;
        for name in ["embed", "rerank", "generate", "stream_generate"] {
            match report.status(name) {
                Some(CheckStatus::Failed(why)) => assert!(why.contains("no "), "{why}"),
                other => panic!("{name}: {other:?}"),
            }
        }
    }

    fn delta(text: &str, finish: Option<FinishReason>) -> GenerateDelta {
        GenerateDelta::new(text, finish, None)
    }

    #[test]
    fn deltas_need_text_a_finish_reason_and_nothing_after_it() {
        let stop = || Some(FinishReason::Stop);
        assert!(check_deltas(&[delta("", None), delta("Hi", None), delta("", stop())]).is_ok());
        assert!(check_deltas(&[delta("", stop())]).is_err());
        assert!(check_deltas(&[delta("Hi", None)]).is_err());
        assert!(check_deltas(&[delta("Hi", stop()), delta("more", None)]).is_err());
    }

    #[test]
    fn vectors_must_be_finite_non_zero_and_of_the_length() {
        assert!(check_vectors(&[vec![1.0, 0.0]], 1, Some(2)).is_ok());
        assert!(check_vectors(&[vec![1.0, 0.0]], 2, None).is_err());
        assert!(check_vectors(&[vec![1.0]], 1, Some(2)).is_err());
        assert!(check_vectors(&[vec![f32::NAN, 1.0]], 1, None).is_err());
        assert!(check_vectors(&[vec![0.0, 0.0]], 1, None).is_err());
        assert!((cosine(&[1.0, 0.0], &[2.0, 0.0]) - 1.0).abs() < 1e-12);
        assert_eq!(cosine(&[0.0], &[0.0]), 0.0);
    }
}
