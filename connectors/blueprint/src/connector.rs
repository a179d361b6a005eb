//! The connector: a blueprint's actions sent through the shared transport.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use inferlink_core::connector::split::{SplitLimits, split_embed, split_rerank};
use inferlink_core::kit::{config_error, raw_request_spec};
use inferlink_core::transport::{HttpResponse, HttpTransport, HttpTransportBuilder};
use inferlink_core::transport::{RequestSpec, TransportConfig, redact_url};
use inferlink_core::{ConfigValue, ConnectTarget, ConnectorInfo, EmbedRequest, EmbedResponse};
use inferlink_core::{Error, ErrorKind, GenerateInput, GenerateRequest, GenerateResponse};
use inferlink_core::{FinishReason, Health, InferRequest, InferResponse, ModelRef};
use inferlink_core::{RawRequest, RawResponse};
use inferlink_core::{RerankHit, RerankRequest, RerankResponse, Result, Secret, Usage};
use serde_json::{Map, Value, json};

use crate::VENDOR;
use crate::path::Selected;
use crate::spec::{Action, ActionSpec, Blueprint};
use crate::stream::{StreamDecoder, StreamSpec};
use crate::template::{Encoding, Ref, Values};
use crate::tensors;
use futures_util::StreamExt;
use inferlink_core::GenerateStream;
use inferlink_core::kit::json_kind as kind;

/// A connector speaking the API a [`Blueprint`] describes.
///
/// `Debug` shows the blueprint's name and actions and the configuration
/// values, secrets as `<hidden>`.
#[derive(Debug)]
pub struct BlueprintConnector {
    http: HttpTransport,
    blueprint: Arc<Blueprint>,
    values: BTreeMap<String, ConfigValue>,
    split: SplitLimits,
    info: ConnectorInfo,
}

/// A call's parameters and the record's values, for rendering templates.
struct CallValues<'a> {
    params: Map<String, Value>,
    config: &'a BTreeMap<String, ConfigValue>,
}

impl Values for CallValues<'_> {
    fn value(&self, r: &Ref) -> Option<Value> {
        match r {
            Ref::Param(name) => self.params.get(name).cloned(),
            Ref::Config { key, .. } => self
                .config
                .get(key)
                .map(|v| Value::String(v.expose().to_owned())),
        }
    }
}

impl BlueprintConnector {
    /// A connector for `blueprint` at the target's URL, with the target's
    /// configuration (nothing is sent yet). Errors: `Config` naming the key
    /// for a missing or bad value.
    pub fn new(target: &ConnectTarget, blueprint: Arc<Blueprint>) -> Result<Self> {
        let mut values = BTreeMap::new();
        for (key, declared) in &blueprint.config {
            let value = match (target.value(key), &declared.default) {
                (Some(v), _) if v.is_secret() && !declared.secret => {
                    let why = "comes from credentials, but the blueprint declares it plain \
                               (declare it secret: true, then it may appear only in headers)";
                    return Err(config_error(key, why));
                }
                (Some(v), _) if declared.secret => ConfigValue::Secret(Secret::new(v.expose())),
                (Some(v), _) => v.clone(),
                (None, Some(default)) => ConfigValue::Plain(default.clone()),
                (None, None) if declared.optional => continue,
                (None, None) => {
                    let why = format!("blueprint {} needs it: {}", blueprint.name, declared.doc);
                    return Err(config_error(key, why));
                }
            };
            values.insert(key.clone(), value);
        }
        let mut builder =
            HttpTransportBuilder::for_target(target, TransportConfig::default())?.vendor(VENDOR);
        if let Some(signer) = &blueprint.signer {
            builder = builder
                .signer(crate::signer::for_blueprint(signer, &values)?)
                .classifier(inferlink_core::transport::sigv4::aws_classifier());
        }
        let http = builder.build()?;
        let mut split = SplitLimits::from_target(target, blueprint.split)?;
        if blueprint
            .action(Action::Embed)
            .is_some_and(|a| a.uses("text"))
        {
            // `${text}` is the one text of a request: one text per request.
            split.max_items = 1;
        }
        let info = ConnectorInfo::new(VENDOR, blueprint.name.clone(), redact_url(http.base_url()));
        Ok(BlueprintConnector {
            http,
            blueprint,
            values,
            split,
            info,
        })
    }

    /// The blueprint spoken.
    pub fn blueprint(&self) -> &Blueprint {
        &self.blueprint
    }

    /// What this connector is.
    pub fn info(&self) -> &ConnectorInfo {
        &self.info
    }

    /// Blueprints describe calls, not a health path: a connector is
    /// reported serving when the server answers any HTTP request to its
    /// URL (a status below 500).
    pub async fn health(&self) -> Result<Health> {
        let spec = RequestSpec::get("").any_status().idempotent();
        let answer = self.http.send(spec).await.map_err(|e| self.info.tag(e))?;
        Ok(if answer.status().is_server_error() {
            Health {
                live: true,
                ready: false,
            }
        } else {
            Health::SERVING
        })
    }

    fn has(&self, action: Action) -> bool {
        self.blueprint.action(action).is_some()
    }

    fn action(&self, action: Action) -> Result<&ActionSpec> {
        self.blueprint.action(action).ok_or_else(|| {
            let why = format!(
                "blueprint {} describes no {action} action",
                self.blueprint.name
            );
            Error::new(ErrorKind::Unsupported, why)
        })
    }

    /// The call parameters every action has: the model's name and version.
    fn model_params(action: &ActionSpec, model: &ModelRef) -> Result<Map<String, Value>> {
        let mut params = Map::new();
        params.insert("model".into(), json!(model.name));
        if let Some(version) = &model.version {
            if !action.uses("version") {
                return Err(Error::invalid_at(
                    "version",
                    "this blueprint names no model versions",
                ));
            }
            params.insert("version".into(), json!(version));
        }
        Ok(params)
    }

    /// The request of `action` with `params`.
    fn request(
        &self,
        action: &ActionSpec,
        model: &ModelRef,
        params: Map<String, Value>,
    ) -> Result<RequestSpec> {
        self.request_streamed(action, model, params, None)
    }

    /// The request of `action` with `params`; with `stream`, its `set`
    /// members over the body.
    fn request_streamed(
        &self,
        action: &ActionSpec,
        model: &ModelRef,
        params: Map<String, Value>,
        stream: Option<&StreamSpec>,
    ) -> Result<RequestSpec> {
        let values = CallValues {
            params,
            config: &self.values,
        };
        let path = action
            .path
            .render(&values, Encoding::PathSegment)?
            .ok_or_else(|| {
                Error::invalid_at(
                    "path",
                    "the blueprint's path needs a value this call does not give",
                )
            })?;
        let mut spec = RequestSpec::new(action.method.clone(), path);
        for (name, template) in &action.query {
            if let Some(value) = template.render(&values, Encoding::Plain)? {
                spec = spec.query(name, value);
            }
        }
        for (name, template) in &action.headers {
            let Some(value) = template.render(&values, Encoding::Plain)? else {
                continue;
            };
            let secret = template.refs().iter().any(|r| match r {
                Ref::Config { key, .. } => self.values.get(key).is_some_and(ConfigValue::is_secret),
                Ref::Param(_) => false,
            });
            spec = if secret {
                spec.secret_header(name, &Secret::new(value))
            } else {
                spec.header(name, &value)
            };
        }
        if let Some(body) = &action.body {
            let rendered = body.render(&values).unwrap_or(Value::Null);
            let rendered = match stream {
                Some(stream) => stream.body(rendered),
                None => rendered,
            };
            spec = spec.json_body(&rendered);
        }
        Ok(spec.model(model.to_string()))
    }

    /// Sends `spec` and reads the answer as JSON, refusing an answer that
    /// carries the blueprint's `error` value.
    async fn call(&self, action: &ActionSpec, spec: RequestSpec) -> Result<(HttpResponse, Value)> {
        let response = self.http.send(spec).await?;
        let answer: Value = serde_json::from_slice(response.body()).map_err(|e| {
            let why = format!("the answer is not JSON ({e})");
            response.decorate(Error::new(ErrorKind::Protocol, why))
        })?;
        if let Some(message) = action
            .answer("error")
            .and_then(|p| p.select_optional(&answer))
        {
            let text = match message {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let e = Error::new(ErrorKind::ModelError, "the server answered with an error")
                .with_vendor_message(text);
            return Err(response.decorate(e));
        }
        Ok((response, answer))
    }

    /// The call's result, an error tagged with vendor, endpoint and model.
    async fn tagged<T>(
        &self,
        model: &ModelRef,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        call.await.map_err(|e| self.info.tag(e).with_model(model))
    }
}

/// A count from an optional usage path.
fn count(action: &ActionSpec, answer: &Value, key: &str) -> Option<u64> {
    action.answer(key)?.select_optional(answer)?.as_u64()
}

/// The usage an answer reports, when it reports any.
fn usage(action: &ActionSpec, answer: &Value) -> Option<Usage> {
    let usage = Usage {
        prompt_tokens: count(action, answer, "prompt_tokens"),
        completion_tokens: count(action, answer, "completion_tokens"),
        total_tokens: count(action, answer, "total_tokens"),
    };
    (usage != Usage::default()).then_some(usage)
}

/// The values a `[*]` (or a single-value) path selects, at most `max`.
fn items<'a>(
    action: &ActionSpec,
    key: &str,
    answer: &'a Value,
    max: usize,
) -> Result<Vec<&'a Value>> {
    let Some(path) = action.answer(key) else {
        return Ok(Vec::new());
    };
    Ok(match path.select(answer, max)? {
        Selected::Many(values) => values,
        Selected::One(value) => vec![value],
    })
}

/// A JSON array of numbers as a vector of finite `f32`s.
fn vector(value: &Value, at: usize) -> Result<Vec<f32>> {
    let bad = |why: String| Error::new(ErrorKind::Protocol, format!("vector {at}: {why}"));
    let Value::Array(numbers) = value else {
        return Err(bad(format!(
            "{} instead of an array of numbers",
            kind(value)
        )));
    };
    numbers
        .iter()
        .map(|n| match n.as_f64().map(|x| x as f32) {
            Some(x) if x.is_finite() => Ok(x),
            _ => Err(bad(format!(
                "{} is not a finite f32",
                inferlink_core::error::printable(n.to_string(), 32)
            ))),
        })
        .collect()
}

/// Positions from an `index` path: whole numbers below `len`, each once.
fn positions(values: &[&Value], len: usize) -> Result<Vec<usize>> {
    let mut seen = vec![false; len];
    values
        .iter()
        .map(|v| match v.as_u64().and_then(|i| usize::try_from(i).ok()) {
            Some(i) if i < len && !std::mem::replace(&mut seen[i], true) => Ok(i),
            _ => Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "index {} is not a new position below {len}",
                    inferlink_core::error::printable(v.to_string(), 32)
                ),
            )),
        })
        .collect()
}

/// Decodes an embed answer for `texts` texts.
fn decode_embed(action: &ActionSpec, answer: &Value, texts: usize) -> Result<EmbedResponse> {
    let found = items(action, "vectors", answer, texts)?;
    if found.len() != texts {
        let why = format!("{} vectors for {texts} texts", found.len());
        return Err(Error::new(ErrorKind::Protocol, why));
    }
    let mut vectors = found
        .iter()
        .enumerate()
        .map(|(i, v)| vector(v, i))
        .collect::<Result<Vec<_>>>()?;
    if action.answer("index").is_some() {
        let order = positions(&items(action, "index", answer, texts)?, texts)?;
        if order.len() != texts {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!("{} indices for {texts} texts", order.len()),
            ));
        }
        let mut slots: Vec<Vec<f32>> = vec![Vec::new(); texts];
        for (vector, slot) in vectors.into_iter().zip(order) {
            slots[slot] = vector;
        }
        vectors = slots;
    }
    Ok(EmbedResponse::new(vectors)?.with_usage(usage(action, answer)))
}

/// Scales each vector to unit length (a zero vector stays as it is).
fn to_unit_length(response: &mut EmbedResponse) {
    for vector in &mut response.vectors {
        let length = vector
            .iter()
            .map(|x| f64::from(*x) * f64::from(*x))
            .sum::<f64>()
            .sqrt();
        if length > 0.0 {
            vector
                .iter_mut()
                .for_each(|x| *x = (f64::from(*x) / length) as f32);
        }
    }
    response.normalized = Some(true);
}

/// Decodes a rerank answer for `documents` documents.
fn decode_rerank(
    action: &ActionSpec,
    answer: &Value,
    documents: usize,
    top_n: Option<usize>,
) -> Result<RerankResponse> {
    let scores = items(action, "scores", answer, documents)?;
    let indices = match action.answer("index") {
        Some(_) => positions(&items(action, "index", answer, documents)?, documents)?,
        None if scores.len() == documents => (0..documents).collect(),
        None => {
            let why = format!(
                "{} scores for {documents} documents and no index",
                scores.len()
            );
            return Err(Error::new(ErrorKind::Protocol, why));
        }
    };
    if indices.len() != scores.len() {
        let why = format!("{} indices for {} scores", indices.len(), scores.len());
        return Err(Error::new(ErrorKind::Protocol, why));
    }
    let hits = scores
        .iter()
        .zip(indices)
        .map(|(score, index)| match score.as_f64() {
            Some(score) => Ok(RerankHit { index, score }),
            None => Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "score of document {index}: {} instead of a number",
                    kind(score)
                ),
            )),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RerankResponse::new(hits, top_n).with_usage(usage(action, answer)))
}

/// Decodes a generation answer.
fn decode_generate(action: &ActionSpec, answer: &Value) -> Result<GenerateResponse> {
    let Some(text_path) = action.answer("text") else {
        return Err(Error::new(
            ErrorKind::Internal,
            "a checked blueprint maps text",
        ));
    };
    let text = match text_path.select(answer, 1)? {
        Selected::One(Value::String(text)) => text.clone(),
        Selected::One(other) => {
            return Err(text_path.mismatch(&format!("{} instead of a text", kind(other))));
        }
        Selected::Many(_) => return Err(text_path.mismatch("many values")),
    };
    let finish = action
        .answer("finish_reason")
        .and_then(|p| p.select_optional(answer))
        .and_then(Value::as_str)
        .map(FinishReason::from_word);
    Ok(GenerateResponse::new(text, finish, usage(action, answer)))
}

inferlink_core::connector_families! {
    impl BlueprintConnector {
        /// When the blueprint has an embed action.
        Embedding(inherent) if |c| c.has(Action::Embed),
        /// When the blueprint has a rerank action.
        Reranking(inherent) if |c| c.has(Action::Rerank),
        /// When the blueprint has a generate or a chat action.
        Generation(inherent) if |c| c.has(Action::Generate) || c.has(Action::Chat),
        /// When its generate or chat action has a `stream:` section.
        StreamingGeneration(inherent) if |c| c.streams(),
        /// When the blueprint has an infer action.
        TensorInference(inherent) if |c| c.has(Action::Infer),
        /// When the blueprint has an invoke action.
        RawInvocation(inherent) if |c| c.has(Action::Invoke),
    }
}

/// The calls, one per family; every error tagged with vendor, endpoint and model.
impl BlueprintConnector {
    /// The embed action per part of the input (`embed_max_*` keys over the
    /// blueprint's `split`); resent on a retryable failure. Unit length is
    /// asked of the server when the template uses `${normalize}`, else made here.
    pub async fn embed(&self, model: &ModelRef, request: EmbedRequest) -> Result<EmbedResponse> {
        self.tagged(model, async {
            let action = self.action(Action::Embed)?;
            let base = &Self::model_params(action, model)?;
            let unit_here = request.normalize == Some(true) && !action.uses("normalize");
            let mut response = split_embed(self.split, request, |part| async move {
                let mut params = base.clone();
                params.insert("texts".into(), json!(part.texts));
                if let [one] = part.texts.as_slice() {
                    params.insert("text".into(), json!(one));
                }
                if let Some(d) = part.dimensions {
                    params.insert("dimensions".into(), json!(d));
                }
                if let Some(n) = part.normalize {
                    params.insert("normalize".into(), json!(n));
                }
                let spec = self.request(action, model, params)?.idempotent();
                let (response, answer) = self.call(action, spec).await?;
                decode_embed(action, &answer, part.texts.len()).map_err(|e| response.decorate(e))
            })
            .await?;
            if unit_here {
                to_unit_length(&mut response);
            }
            Ok(response)
        })
        .await
    }

    /// The rerank action per part of the documents; hits merged best first,
    /// `top_n` applied after the merge.
    pub async fn rerank(&self, model: &ModelRef, request: RerankRequest) -> Result<RerankResponse> {
        self.tagged(model, async {
            let action = self.action(Action::Rerank)?;
            let base = &Self::model_params(action, model)?;
            split_rerank(self.split, request, |part| async move {
                let mut params = base.clone();
                params.insert("query".into(), json!(part.query));
                params.insert("documents".into(), json!(part.documents));
                if let Some(n) = part.top_n {
                    params.insert("top_n".into(), json!(n));
                }
                let spec = self.request(action, model, params)?.idempotent();
                let (response, answer) = self.call(action, spec).await?;
                let documents = part.documents.len();
                decode_rerank(action, &answer, documents, part.top_n)
                    .map_err(|e| response.decorate(e))
            })
            .await
        })
        .await
    }

    /// A prompt through the generate action (or, without one, the chat
    /// action as one user message); a chat through the chat action.
    pub async fn generate(
        &self,
        model: &ModelRef,
        request: GenerateRequest,
    ) -> Result<GenerateResponse> {
        self.tagged(model, async {
            let (action, params) = self.generation_params(model, &request)?;
            let spec = self.request(action, model, params)?;
            let (response, answer) = self.call(action, spec).await?;
            decode_generate(action, &answer).map_err(|e| response.decorate(e))
        })
        .await
    }

    /// The action a generation goes to and its call parameters.
    fn generation_params(
        &self,
        model: &ModelRef,
        request: &GenerateRequest,
    ) -> Result<(&ActionSpec, Map<String, Value>)> {
        let options = &request.options;
        options.check(&[])?;
        let (action, input) = self.generation_input(&request.input)?;
        let mut params = Self::model_params(action, model)?;
        params.insert(input.0.into(), input.1);
        params.extend(
            options
                .wire_fields()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v)),
        );
        if !options.extra.is_empty() {
            if !action.uses("extra") {
                return Err(Error::invalid_at(
                    "extra",
                    "this blueprint takes no extra parameters",
                ));
            }
            params.insert("extra".into(), Value::Object(options.extra.clone()));
        }
        Ok((action, params))
    }

    /// True when the action a prompt (or a chat) goes to can stream.
    fn streams(&self) -> bool {
        [Action::Generate, Action::Chat].into_iter().any(|a| {
            self.blueprint
                .action(a)
                .is_some_and(|spec| spec.stream.is_some())
        })
    }

    /// Sends a streamed generation; its body and the decoder for it.
    async fn open_stream(
        &self,
        model: &ModelRef,
        request: &GenerateRequest,
    ) -> Result<(inferlink_core::ByteStream, StreamDecoder)> {
        let (action, params) = self.generation_params(model, request)?;
        let Some(stream) = &action.stream else {
            let why = format!(
                "blueprint {} describes no stream for this action",
                self.blueprint.name
            );
            return Err(Error::new(ErrorKind::Unsupported, why));
        };
        let spec = self.request_streamed(action, model, params, Some(stream))?;
        let response = self.http.send_streaming(spec).await?;
        Ok((response.into_body(), StreamDecoder::new(stream.clone())))
    }

    /// Streams through the action's `stream:` section ([`crate::stream`]);
    /// see `docs/connectors/blueprints.md`.
    pub async fn generate_stream(
        &self,
        model: &ModelRef,
        request: GenerateRequest,
    ) -> Result<GenerateStream> {
        let opened = self.tagged(model, self.open_stream(model, &request));
        let stream = opened.await?;
        let (info, model) = (self.info.clone(), model.clone());
        let pieces = futures_util::stream::unfold(stream, |(mut body, mut decoder)| async move {
            loop {
                if let Some(item) = decoder.pop() {
                    return Some((item, (body, decoder)));
                }
                if decoder.ended() {
                    return None;
                }
                match body.next().await {
                    Some(Ok(chunk)) => decoder.feed(&chunk),
                    Some(Err(e)) => decoder.finish(Some(e)),
                    None => decoder.finish(None),
                }
            }
        });
        Ok(pieces
            .map(move |item| item.map_err(|e| info.tag(e).with_model(&model)))
            .boxed())
    }

    /// The action for a generation input and the parameter holding it.
    fn generation_input(
        &self,
        input: &GenerateInput,
    ) -> Result<(&ActionSpec, (&'static str, Value))> {
        Ok(match (input, self.blueprint.action(Action::Generate)) {
            (GenerateInput::Prompt(prompt), Some(action)) => (action, ("prompt", json!(prompt))),
            (GenerateInput::Prompt(prompt), None) => {
                let one = json!([{"role": "user", "content": prompt}]);
                (self.action(Action::Chat)?, ("messages", one))
            }
            (GenerateInput::Chat(messages), _) => {
                if messages.is_empty() {
                    return Err(Error::invalid_at(
                        "messages",
                        "a chat needs at least one message",
                    ));
                }
                let list: Vec<Value> = messages
                    .iter()
                    .map(|m| json!({"role": m.role.as_str(), "content": m.content}))
                    .collect();
                (self.action(Action::Chat)?, ("messages", Value::Array(list)))
            }
        })
    }

    /// The infer action: the one input tensor as nested JSON rows
    /// (`${instances}`), the `predictions` value back as one `FP64` (or
    /// `BYTES`) tensor named `predictions`.
    pub async fn infer(&self, model: &ModelRef, request: InferRequest) -> Result<InferResponse> {
        self.tagged(model, async {
            let action = self.action(Action::Infer)?;
            let [input] = request.inputs.as_slice() else {
                let why = format!(
                    "a blueprint's infer sends one input tensor, not {}",
                    request.inputs.len()
                );
                return Err(Error::invalid_at("inputs", why));
            };
            let mut params = Self::model_params(action, model)?;
            if action.uses("instances") {
                params.insert("instances".into(), tensors::to_rows(input)?);
            }
            if action.uses("data") {
                params.insert("data".into(), tensors::to_flat(input)?);
            }
            params.insert("name".into(), json!(input.name()));
            params.insert("shape".into(), json!(input.shape()));
            params.insert("datatype".into(), json!(input.datatype().as_str()));
            let mut spec = self.request(action, model, params)?;
            if request.idempotent {
                spec = spec.idempotent();
            }
            let (response, answer) = self.call(action, spec).await?;
            let output = decode_predictions(action, &answer).map_err(|e| response.decorate(e))?;
            Ok(InferResponse {
                model_name: model.name.clone(),
                outputs: vec![output],
                ..InferResponse::default()
            })
        })
        .await
    }

    /// The invoke action: the path, query and headers of the blueprint, the
    /// call's body, content type, `accept` and headers as given; the answer
    /// as received (any status below 400; an error status is typed as usual).
    pub async fn invoke(&self, model: &ModelRef, request: RawRequest) -> Result<RawResponse> {
        self.tagged(model, async {
            let action = self.action(Action::Invoke)?;
            let params = Self::model_params(action, model)?;
            let spec = raw_request_spec(self.request(action, model, params)?, request);
            let response = self.http.send(spec).await?;
            Ok(RawResponse {
                body: response.body().clone(),
                content_type: response.content_type().map(str::to_owned),
                headers: Vec::new(),
            })
        })
        .await
    }
}

/// The `predictions` of an infer answer as a tensor.
fn decode_predictions(action: &ActionSpec, answer: &Value) -> Result<inferlink_core::Tensor> {
    let Some(path) = action.answer("predictions") else {
        return Err(Error::new(
            ErrorKind::Internal,
            "a checked blueprint maps predictions",
        ));
    };
    let predictions = match path.select(answer, 1)? {
        Selected::One(value) => tensors::from_rows("predictions", value)?,
        Selected::Many(_) => return Err(path.mismatch("many values")),
    };
    let Some(shape_path) = action.answer("shape") else {
        return Ok(predictions);
    };
    let shape = match shape_path.select(answer, 1)? {
        Selected::One(Value::Array(dims)) if dims.len() <= 32 => dims
            .iter()
            .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
            .collect::<Option<Vec<usize>>>(),
        _ => None,
    };
    let Some(shape) = shape else {
        return Err(shape_path.mismatch("not a shape (at most 32 whole numbers)"));
    };
    predictions
        .reshape(shape)
        .map_err(|e| shape_path.mismatch(e.message()))
}
