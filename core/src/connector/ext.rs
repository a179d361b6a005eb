//! Conveniences every connector gets for free.

use std::time::Duration;

use async_trait::async_trait;
use tokio::time::{Instant, sleep, timeout as within};

use super::capability::{infer_via, model_metadata_via, model_ready_via};
use super::{Health, InferenceConnector, ModelRef};
use crate::error::{Error, ErrorKind, Result};
use crate::tensor::{InferRequest, InferResponse, Tensor};

/// First pause between two readiness polls.
const FIRST_POLL_PAUSE: Duration = Duration::from_millis(25);
/// Longest pause between two readiness polls.
const MAX_POLL_PAUSE: Duration = Duration::from_secs(1);

/// Conveniences built on [`InferenceConnector`]'s methods, implemented for
/// every connector (including `dyn InferenceConnector`, so also through an
/// `Arc<dyn InferenceConnector>`).
///
/// Bring the trait into scope (`use inferlink_core::InferenceConnectorExt;`) to
/// call them. The waiting methods need a Tokio runtime with the time driver
/// enabled, like the connectors' transports do.
#[async_trait]
pub trait InferenceConnectorExt: InferenceConnector {
    /// Runs a model with one input and returns its only output.
    ///
    /// A response with no output or several outputs is an
    /// [`ErrorKind::Protocol`] error naming the outputs; ask for one output
    /// by name with `infer` and
    /// [`InferResponse::require_output`] for multi-output models.
    async fn infer_one(&self, model: &ModelRef, input: Tensor) -> Result<Tensor> {
        let response = infer_via(self, model, InferRequest::new().with_input(input)).await?;
        response.into_single_output()
    }

    /// Validates the request against the model's metadata, then runs it.
    ///
    /// Inputs must be declared by the model and match their datatype and
    /// shape (`-1` dimensions match any size), every declared input must be
    /// present, and requested outputs must be declared
    /// ([`super::ModelMetadata::validate_inputs`]); a mismatch is an
    /// [`ErrorKind::InvalidInput`] error naming the input, sent nowhere.
    ///
    /// This costs one metadata call per request: hosts that send many
    /// requests fetch the metadata once and call `validate_inputs`
    /// themselves. A connector without the metadata capability, and a model
    /// that declares no inputs, skip validation.
    async fn infer_checked(
        &self,
        model: &ModelRef,
        request: InferRequest,
    ) -> Result<InferResponse> {
        if self.as_model_description().is_some() {
            let metadata = model_metadata_via(self, model).await?;
            metadata.validate_inputs(&request.inputs)?;
            if !metadata.outputs.is_empty()
                && let Some(unknown) = request
                    .outputs
                    .iter()
                    .find(|o| metadata.output(&o.name).is_none())
            {
                let names: Vec<&str> = metadata.outputs.iter().map(|s| s.name.as_str()).collect();
                return Err(Error::invalid(format!(
                    "model \"{}\" has no output \"{}\"; its outputs: [{}]",
                    metadata.name,
                    unknown.name,
                    names.join(", ")
                ))
                .with_model(model));
            }
        }
        infer_via(self, model, request).await
    }

    /// One health call; [`ErrorKind::Unavailable`] unless the server is live
    /// and ready.
    ///
    /// A quick "verify" for hosts that check a connection before using it.
    async fn check_serving(&self) -> Result<Health> {
        let health = self.health().await?;
        if health.is_serving() {
            Ok(health)
        } else {
            Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "server is not serving (live: {}, ready: {})",
                    health.live, health.ready
                ),
            ))
        }
    }

    /// Polls [`InferenceConnector::health`] until the server is live and
    /// ready, or `timeout` passes.
    ///
    /// Pauses grow from 25 ms to at most 1 s between polls; each poll is cut
    /// off at the deadline. Retryable errors (an unreachable or throttling
    /// server, a timed-out poll) mean "not yet"; any other error (bad
    /// credentials, bad configuration) is returned at once. At the deadline
    /// the error is [`ErrorKind::Timeout`], saying what the last poll saw.
    async fn wait_ready(&self, timeout: Duration) -> Result<Health> {
        let deadline = Instant::now() + timeout;
        let mut pause = FIRST_POLL_PAUSE;
        loop {
            let last = match within_deadline(deadline, self.health()).await {
                Ok(health) if health.is_serving() => return Ok(health),
                Ok(health) => Err(format!("live: {}, ready: {}", health.live, health.ready)),
                Err(e) if still_starting(&e, false) => Ok(e),
                Err(e) => return Err(e),
            };
            if Instant::now() >= deadline {
                return Err(not_ready(
                    format!("server is not ready after {timeout:?}"),
                    last,
                ));
            }
            pause = pause_before_next_poll(deadline, pause).await;
        }
    }

    /// Waits until one model can serve, or `timeout` passes.
    ///
    /// With the per-model readiness capability this polls
    /// [`InferenceConnector::model_ready`]; otherwise it waits for the server
    /// ([`InferenceConnector::health`]) and then, with the metadata
    /// capability, until [`InferenceConnector::model_metadata`] answers.
    /// [`ErrorKind::NotFound`] counts as "not yet" (a model may still be
    /// loading); otherwise as [`InferenceConnectorExt::wait_ready`].
    async fn wait_model_ready(&self, model: &ModelRef, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let caps = super::capabilities_of(self);
        if !caps.model_ready {
            let remaining = deadline.saturating_duration_since(Instant::now());
            self.wait_ready(remaining)
                .await
                .map_err(|e| e.with_model(model))?;
            if !caps.model_metadata {
                return Ok(());
            }
        }
        let mut pause = FIRST_POLL_PAUSE;
        loop {
            let poll = if caps.model_ready {
                within_deadline(deadline, model_ready_via(self, model)).await
            } else {
                within_deadline(deadline, model_metadata_via(self, model))
                    .await
                    .map(|_| true)
            };
            let last = match poll {
                Ok(true) => return Ok(()),
                Ok(false) => Err("ready: false".to_owned()),
                Err(e) if still_starting(&e, true) => Ok(e),
                Err(e) => return Err(e.with_model(model)),
            };
            if Instant::now() >= deadline {
                return Err(not_ready(
                    format!("model {model} is not ready after {timeout:?}"),
                    last,
                )
                .with_model(model));
            }
            pause = pause_before_next_poll(deadline, pause).await;
        }
    }
}

impl<C: InferenceConnector + ?Sized> InferenceConnectorExt for C {}

/// Runs one poll, cut off at the deadline (a [`ErrorKind::Timeout`] error then).
async fn within_deadline<T>(
    deadline: Instant,
    poll: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    match within(remaining, poll).await {
        Ok(result) => result,
        Err(_) => Err(Error::new(
            ErrorKind::Timeout,
            "the readiness poll did not answer before the deadline",
        )),
    }
}

/// Whether an error while polling means "not ready yet" rather than "give up".
fn still_starting(e: &Error, model_may_be_loading: bool) -> bool {
    e.is_retryable() || (model_may_be_loading && e.kind() == ErrorKind::NotFound)
}

/// Sleeps before the next poll (never past the deadline); returns the next pause.
async fn pause_before_next_poll(deadline: Instant, pause: Duration) -> Duration {
    let remaining = deadline.saturating_duration_since(Instant::now());
    sleep(pause.min(remaining)).await;
    (pause * 2).min(MAX_POLL_PAUSE)
}

/// The [`ErrorKind::Timeout`] error of a wait, with what the last poll saw.
fn not_ready(message: String, last: std::result::Result<Error, String>) -> Error {
    match last {
        Ok(e) => {
            Error::new(ErrorKind::Timeout, format!("{message}; last poll failed")).with_source(e)
        }
        Err(state) => Error::new(ErrorKind::Timeout, format!("{message}; last poll: {state}")),
    }
}
