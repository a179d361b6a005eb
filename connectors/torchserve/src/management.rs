//! The management API's requests and answers (port 8081): list, describe,
//! register, scale, set the default version, unregister.
//!
//! The calls themselves are methods of [`crate::TorchServeClient`]
//! (`list_models`, `describe_model`, `register_model`, …); this module holds
//! their typed parameters and answers. Answers are read leniently: fields
//! TorchServe adds in later releases are ignored, missing optional ones are
//! `None`.

use serde::Deserialize;

/// One page of `GET /models`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ModelPage {
    /// The models on this page.
    #[serde(default)]
    pub models: Vec<ListedModel>,
    /// The token of the next page, when there is one.
    #[serde(default)]
    pub next_page_token: Option<String>,
}

/// A model as `GET /models` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ListedModel {
    /// The model name.
    pub model_name: String,
    /// Where it was registered from (a `.mar` name or URL).
    #[serde(default)]
    pub model_url: Option<String>,
}

/// One version of a model as `GET /models/NAME[/VERSION]` describes it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ModelDescription {
    /// The model name.
    pub model_name: String,
    /// The version.
    #[serde(default)]
    pub model_version: Option<String>,
    /// Where it was registered from.
    #[serde(default)]
    pub model_url: Option<String>,
    /// The runtime (`python`, …).
    #[serde(default)]
    pub runtime: Option<String>,
    /// Fewest workers.
    #[serde(default)]
    pub min_workers: Option<u32>,
    /// Most workers.
    #[serde(default)]
    pub max_workers: Option<u32>,
    /// Batch size.
    #[serde(default)]
    pub batch_size: Option<u32>,
    /// Longest wait to fill a batch, in milliseconds.
    #[serde(default)]
    pub max_batch_delay: Option<u64>,
    /// Whether this version is the default one (TorchServe's `isDefaultVersion`).
    #[serde(default, rename = "isDefaultVersion")]
    pub is_default_version: Option<bool>,
    /// Whether it was loaded at startup.
    #[serde(default)]
    pub loaded_at_startup: Option<bool>,
    /// The workers.
    #[serde(default)]
    pub workers: Vec<WorkerInfo>,
}

impl ModelDescription {
    /// True when at least one worker is `READY`.
    pub fn has_ready_worker(&self) -> bool {
        self.workers
            .iter()
            .any(|w| w.status.as_deref() == Some("READY"))
    }
}

/// One worker of a model.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct WorkerInfo {
    /// The worker id.
    #[serde(default, deserialize_with = "lenient_string")]
    pub id: Option<String>,
    /// `READY`, `UNLOADING`, …
    #[serde(default)]
    pub status: Option<String>,
    /// The worker process id.
    #[serde(default)]
    pub pid: Option<i64>,
    /// Whether it runs on a GPU.
    #[serde(default)]
    pub gpu: Option<bool>,
}

fn lenient_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(v.map(|v| match v {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    }))
}

/// The `{"status": "…"}` answer of register, scale, set-default and unregister.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct StatusMessage {
    /// The server's words, e.g. `Model "d2" Version: 1.0 registered with 1 initial workers`.
    #[serde(default)]
    pub status: String,
}

/// Parameters of `POST /models` (register a model archive).
///
/// `synchronous` is always sent (TorchServe's documentation and its query
/// parser disagree on the default); it is `true` here, so the call returns
/// once the workers are up.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegisterOptions {
    /// The archive: a `.mar` name in the model store, or an `http(s)` URL.
    pub url: String,
    /// The model name (default: the archive's).
    pub model_name: Option<String>,
    /// The handler (default: the archive's).
    pub handler: Option<String>,
    /// The runtime (default: the archive's).
    pub runtime: Option<String>,
    /// Requests per batch.
    pub batch_size: Option<u32>,
    /// Longest wait to fill a batch, in milliseconds.
    pub max_batch_delay_ms: Option<u32>,
    /// Workers to start.
    pub initial_workers: Option<u32>,
    /// Wait for the workers before answering.
    pub synchronous: bool,
    /// Inference timeout, in seconds.
    pub response_timeout_s: Option<u32>,
    /// Model load timeout, in seconds.
    pub startup_timeout_s: Option<u32>,
}

impl RegisterOptions {
    /// Registers the archive at `url`, synchronously, with the archive's defaults.
    pub fn new(url: impl Into<String>) -> Self {
        RegisterOptions {
            url: url.into(),
            model_name: None,
            handler: None,
            runtime: None,
            batch_size: None,
            max_batch_delay_ms: None,
            initial_workers: None,
            synchronous: true,
            response_timeout_s: None,
            startup_timeout_s: None,
        }
    }

    inferlink_core::option_setters! {
        /// Sets the model name.
        model_name(model_name: into String),
        /// Sets the handler.
        handler(handler: into String),
        /// Sets the batch size.
        batch_size(batch_size: u32),
        /// Sets the longest batch delay (milliseconds).
        max_batch_delay_ms(max_batch_delay_ms: u32),
        /// Sets how many workers start.
        initial_workers(initial_workers: u32),
    }

    /// Sets whether the call waits for the workers.
    pub fn synchronous(mut self, yes: bool) -> Self {
        self.synchronous = yes;
        self
    }

    inferlink_core::option_setters! {
        /// Sets the inference timeout (seconds).
        response_timeout_s(response_timeout_s: u32),
        /// Sets the load timeout (seconds).
        startup_timeout_s(startup_timeout_s: u32),
    }

    /// The query parameters, in a fixed order.
    pub(crate) fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = vec![("url", self.url.clone())];
        let mut opt = |k: &'static str, v: Option<String>| {
            if let Some(v) = v {
                q.push((k, v));
            }
        };
        opt("model_name", self.model_name.clone());
        opt("handler", self.handler.clone());
        opt("runtime", self.runtime.clone());
        opt("batch_size", self.batch_size.map(|n| n.to_string()));
        opt(
            "max_batch_delay",
            self.max_batch_delay_ms.map(|n| n.to_string()),
        );
        opt(
            "initial_workers",
            self.initial_workers.map(|n| n.to_string()),
        );
        opt(
            "response_timeout",
            self.response_timeout_s.map(|n| n.to_string()),
        );
        opt(
            "startup_timeout",
            self.startup_timeout_s.map(|n| n.to_string()),
        );
        q.push(("synchronous", self.synchronous.to_string()));
        q
    }
}

/// Parameters of `PUT /models/NAME[/VERSION]` (scale workers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScaleOptions {
    /// Fewest workers.
    pub min_worker: Option<u32>,
    /// Most workers.
    pub max_worker: Option<u32>,
    /// GPUs to use.
    pub number_gpu: Option<u32>,
    /// Wait until the workers are up (sent explicitly; default `true` here).
    pub synchronous: Option<bool>,
    /// Seconds to wait for a worker to finish before it is stopped (0 = at
    /// once, -1 = wait forever).
    pub timeout_s: Option<i32>,
}

impl ScaleOptions {
    /// Exactly `n` workers (min = max = n), synchronously.
    pub fn workers(n: u32) -> Self {
        ScaleOptions {
            min_worker: Some(n),
            max_worker: Some(n),
            number_gpu: None,
            synchronous: Some(true),
            timeout_s: None,
        }
    }

    /// Between `min` and `max` workers, synchronously.
    pub fn range(min: u32, max: u32) -> Self {
        ScaleOptions {
            min_worker: Some(min),
            max_worker: Some(max),
            ..ScaleOptions::workers(min)
        }
    }

    pub(crate) fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(n) = self.min_worker {
            q.push(("min_worker", n.to_string()));
        }
        if let Some(n) = self.max_worker {
            q.push(("max_worker", n.to_string()));
        }
        if let Some(n) = self.number_gpu {
            q.push(("number_gpu", n.to_string()));
        }
        q.push(("synchronous", self.synchronous.unwrap_or(true).to_string()));
        if let Some(t) = self.timeout_s {
            q.push(("timeout", t.to_string()));
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_decode_leniently() {
        let page: ModelPage = serde_json::from_str(
            r#"{"nextPageToken": "2", "models": [{"modelName": "a", "modelUrl": "a.mar"}], "x": 1}"#,
        )
        .unwrap();
        assert_eq!(page.next_page_token.as_deref(), Some("2"));
        assert_eq!(page.models[0].model_name, "a");
        let d: Vec<ModelDescription> = serde_json::from_str(
            r#"[{"modelName": "doubler", "modelVersion": "1.0", "minWorkers": 1, "maxWorkers": 1,
                 "batchSize": 1, "maxBatchDelay": 100, "isDefaultVersion": true,
                 "workers": [{"id": "9000", "status": "READY", "pid": 12, "gpu": false}],
                 "jobQueueStatus": {"remainingCapacity": 1000, "pendingRequests": 0}}]"#,
        )
        .unwrap();
        assert!(d[0].has_ready_worker());
        assert_eq!(d[0].is_default_version, Some(true));
        assert_eq!(d[0].workers[0].id.as_deref(), Some("9000"));
    }

    #[test]
    fn register_always_sends_synchronous() {
        let q = RegisterOptions::new("doubler.mar")
            .model_name("d2")
            .batch_size(4)
            .initial_workers(1)
            .synchronous(false)
            .query();
        assert_eq!(q.first(), Some(&("url", "doubler.mar".to_owned())));
        assert!(q.contains(&("batch_size", "4".to_owned())));
        assert!(q.contains(&("synchronous", "false".to_owned())));
        let s = ScaleOptions::range(1, 3).query();
        assert!(s.contains(&("max_worker", "3".to_owned())));
        assert!(s.contains(&("synchronous", "true".to_owned())));
    }
}
