//! The conformance checks of the streaming families: `stream_infer`
//! ([`inferlink::StreamingInference`]) and `stream_invoke`
//! ([`inferlink::StreamingInvocation`]).
//!
//! A connector with a streaming family must stream for real: the check
//! collects what the stream yields (bounded in count, bytes and time) and
//! checks it. Without the family, the call must answer `Unsupported`.

use std::fmt;
use std::sync::Arc;

use futures_util::StreamExt as _;
use inferlink::{
    InferRequest, InferResponse, InferenceConnector, ModelRef, RawRequest, RawResponse,
};

use super::{Answer, InvokeCase, Run, describe};

/// Most responses a streamed inference may yield in one check.
const MAX_STREAM_RESPONSES: usize = 10_000;
/// Most body bytes a streamed invocation may yield in one check.
const MAX_STREAM_BYTES: usize = 64 * 1024 * 1024;

/// The check of a streamed inference's responses (in arrival order).
pub type StreamInferCheckFn =
    Arc<dyn Fn(&[InferResponse]) -> std::result::Result<(), String> + Send + Sync>;

/// A streamed inference and a check of the responses it yields.
#[derive(Clone)]
pub struct StreamInferCase {
    /// The model.
    pub model: ModelRef,
    /// The request.
    pub request: InferRequest,
    /// The check of every response received.
    pub check: StreamInferCheckFn,
}

impl fmt::Debug for StreamInferCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamInferCase")
            .field("model", &self.model)
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

impl StreamInferCase {
    /// A streamed-inference case.
    pub fn new(
        model: impl Into<ModelRef>,
        request: InferRequest,
        check: impl Fn(&[InferResponse]) -> std::result::Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        StreamInferCase {
            model: model.into(),
            request,
            check: Arc::new(check),
        }
    }
}

impl Run<'_> {
    pub(super) async fn stream_infer(&mut self) {
        const NAME: &str = "stream_infer";
        if !self.connector.capabilities().stream_infer {
            let model = self.first_model();
            let answer = self
                .ask(self.connector.infer_stream(&model, InferRequest::new()))
                .await;
            let verdict = self.unsupported("streaming inference", answer);
            self.verdict(NAME, verdict);
            return;
        }
        let spec = self.spec;
        let Some(case) = &spec.stream_infer else {
            self.verdict(
                NAME,
                Err(
                    "the connector streams inference, but the spec has no stream_infer case \
                     (ConformanceSpec::stream_infer)"
                        .to_owned(),
                ),
            );
            return;
        };
        let connector = self.connector;
        let collect = async {
            let mut stream = connector
                .infer_stream(&case.model, case.request.clone())
                .await?;
            let mut responses = Vec::new();
            while let Some(item) = stream.next().await {
                responses.push(item?);
                if responses.len() > MAX_STREAM_RESPONSES {
                    break;
                }
            }
            Ok(responses)
        };
        let verdict = match self.ask(collect).await {
            Answer::Ok(responses) if responses.len() > MAX_STREAM_RESPONSES => Err(format!(
                "the stream yielded more than {MAX_STREAM_RESPONSES} responses"
            )),
            Answer::Ok(responses) if responses.is_empty() => {
                Err("the stream ended without a response".to_owned())
            }
            Answer::Ok(responses) => (case.check)(&responses),
            Answer::Err(e) => Err(describe(&e)),
            Answer::Hung => Err(self.hung()),
        };
        self.verdict(NAME, verdict);
    }

    pub(super) async fn stream_invoke(&mut self) {
        const NAME: &str = "stream_invoke";
        if !self.connector.capabilities().stream_invoke {
            let model = self.first_model();
            let answer = self
                .ask(self.connector.invoke_stream(&model, RawRequest::json("{}")))
                .await;
            let verdict = self.unsupported("streamed raw invocation", answer);
            self.verdict(NAME, verdict);
            return;
        }
        let spec = self.spec;
        let Some(case) = spec.stream_invoke.as_ref().or(spec.invoke.as_ref()) else {
            self.verdict(
                NAME,
                Err(
                    "the connector streams invocations, but the spec has neither a \
                     stream_invoke nor an invoke case"
                        .to_owned(),
                ),
            );
            return;
        };
        let verdict = match self.ask(collect_body(self.connector, case)).await {
            Answer::Ok(Err(why)) => Err(why),
            Answer::Ok(Ok(response)) => (case.check)(&response),
            Answer::Err(e) => Err(describe(&e)),
            Answer::Hung => Err(self.hung()),
        };
        self.verdict(NAME, verdict);
    }
}

/// Sends the case through `invoke_stream` and joins the chunks into one
/// response (or says why the stream is unusable).
async fn collect_body(
    connector: &dyn InferenceConnector,
    case: &InvokeCase,
) -> inferlink::Result<std::result::Result<RawResponse, String>> {
    let mut streamed = connector
        .invoke_stream(&case.model, case.request.clone())
        .await?;
    let mut body = Vec::new();
    let mut chunks = 0usize;
    while let Some(chunk) = streamed.body.next().await {
        let chunk = chunk?;
        chunks += 1;
        if body.len() + chunk.len() > MAX_STREAM_BYTES {
            return Ok(Err(format!(
                "the streamed body grew past {MAX_STREAM_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    if chunks == 0 {
        return Ok(Err("the stream ended without a chunk".to_owned()));
    }
    Ok(Ok(RawResponse {
        body: body.into(),
        content_type: streamed.content_type,
        headers: streamed.headers,
    }))
}
