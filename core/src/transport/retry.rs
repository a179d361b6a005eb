//! The one retry loop: attempts, per-attempt timeouts, jittered backoff,
//! `Retry-After`, the overall deadline and idempotency.
//!
//! [`HttpTransport`](super::HttpTransport) runs every request through
//! [`run`]; a gRPC client can run its calls through the same function, so
//! both protocols retry by the same rules.

use std::future::Future;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tracing::Instrument as _;

use crate::error::{Error, ErrorKind, Result};

use super::config::RetryPolicy;

/// Whether repeating a request is harmless.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Idempotency {
    /// Repeating the request changes nothing: reads, health, metadata, or an
    /// inference the caller marked idempotent. Retried after any transient failure.
    Safe,
    /// The request may have effects (inference by default): retried only when
    /// the server provably did not process it (no connection was made, or
    /// the server answered 429/503 or a classifier said it was rejected).
    Unsafe,
}

impl Idempotency {
    /// [`Idempotency::Safe`] for a request its caller marked idempotent
    /// (`InferRequest::idempotent` and the like), [`Idempotency::Unsafe`] otherwise.
    pub fn marked(idempotent: bool) -> Self {
        if idempotent {
            Idempotency::Safe
        } else {
            Idempotency::Unsafe
        }
    }

    /// The default for an HTTP method: GET, HEAD, OPTIONS, TRACE (and PUT,
    /// DELETE, which HTTP defines as idempotent) are safe; others unsafe.
    pub fn for_method(method: &reqwest::Method) -> Self {
        use reqwest::Method as M;
        if [M::GET, M::HEAD, M::OPTIONS, M::TRACE, M::PUT, M::DELETE].contains(method) {
            Idempotency::Safe
        } else {
            Idempotency::Unsafe
        }
    }
}

/// When an attempt's failure may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetryRule {
    /// Never (the error will not change on retry, or retrying could do harm).
    Never,
    /// Only for [`Idempotency::Safe`] requests (the server may have done the work).
    IfIdempotent,
    /// Always: the server provably did not do the work.
    Always,
}

/// The context key under which the final error of [`run`] names the
/// [`RetryRule`] of its last attempt ([`RetryRule::as_str`]), so a layer
/// above the transport (a router choosing another endpoint) knows whether
/// the server may have acted.
pub const CONTEXT_RETRY: &str = "retry";

/// The context key under which the final error of [`run`] carries the
/// server's last `Retry-After`, in milliseconds.
pub const CONTEXT_RETRY_AFTER_MS: &str = "server_retry_after_ms";

impl RetryRule {
    /// The word used in the [`CONTEXT_RETRY`] context entry:
    /// `never`, `if_idempotent` or `always`.
    pub fn as_str(self) -> &'static str {
        match self {
            RetryRule::Never => "never",
            RetryRule::IfIdempotent => "if_idempotent",
            RetryRule::Always => "always",
        }
    }

    /// The rule a transport error was given up under (its [`CONTEXT_RETRY`]
    /// entry), or `None` for an error that did not come out of [`run`].
    pub fn of_error(error: &Error) -> Option<RetryRule> {
        match error.context(CONTEXT_RETRY)? {
            "never" => Some(RetryRule::Never),
            "if_idempotent" => Some(RetryRule::IfIdempotent),
            "always" => Some(RetryRule::Always),
            _ => None,
        }
    }

    /// The server's `Retry-After` a transport error carries ([`CONTEXT_RETRY_AFTER_MS`]).
    pub fn retry_after_of(error: &Error) -> Option<Duration> {
        let ms = error.context(CONTEXT_RETRY_AFTER_MS)?.parse::<u64>().ok()?;
        Some(Duration::from_millis(ms))
    }

    /// Whether a request of `idempotency` may be retried under this rule.
    pub fn allows(self, idempotency: Idempotency) -> bool {
        match self {
            RetryRule::Never => false,
            RetryRule::IfIdempotent => idempotency == Idempotency::Safe,
            RetryRule::Always => true,
        }
    }
}

/// One failed attempt: the error, whether it may be retried, and the
/// server's `Retry-After` if it sent one.
#[derive(Debug)]
pub struct AttemptError {
    /// The error the caller gets if this is the last attempt.
    pub error: Error,
    /// When a retry is allowed.
    pub retry: RetryRule,
    /// How long the server asked to wait before retrying.
    pub retry_after: Option<Duration>,
}

impl AttemptError {
    /// A failure that is never retried.
    pub fn fatal(error: Error) -> Self {
        AttemptError {
            error,
            retry: RetryRule::Never,
            retry_after: None,
        }
    }

    /// A failure with a retry rule.
    pub fn new(error: Error, retry: RetryRule) -> Self {
        AttemptError {
            error,
            retry,
            retry_after: None,
        }
    }
}

/// The time and attempt budget of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimits {
    /// Overall deadline: attempts and waits together.
    pub deadline: Duration,
    /// Timeout of each attempt (cut to what is left of the deadline).
    pub attempt_timeout: Duration,
    /// Attempts at most, the first included.
    pub max_attempts: u32,
}

/// The result of a successful call and the number of attempts it took.
#[derive(Debug)]
pub struct Attempted<T> {
    /// The value of the successful attempt.
    pub value: T,
    /// Attempts made, the successful one included.
    pub attempts: u32,
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// Runs `attempt` (given the 1-based attempt number) until it succeeds, a
/// failure may not be retried, the attempts run out, or the deadline would
/// pass. The final error carries the context entry `attempts`.
///
/// Rules: a failure is retried when its [`RetryRule`] allows it for
/// `idempotency`; the wait is the server's `Retry-After` when given,
/// otherwise [`RetryPolicy::backoff`]; a wait that would end past the
/// deadline is not started — the call fails at once with
/// [`ErrorKind::Timeout`] naming the last error. An attempt that runs out
/// of time fails with [`ErrorKind::Timeout`] and is retried only when safe
/// (the server may be working on it).
pub async fn run<T, F, Fut>(
    policy: &RetryPolicy,
    limits: CallLimits,
    idempotency: Idempotency,
    mut attempt: F,
) -> Result<Attempted<T>>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = std::result::Result<T, AttemptError>>,
{
    let start = Instant::now();
    let deadline_at = start + limits.deadline;
    let max_attempts = limits.max_attempts.max(1);
    let mut number = 0u32;
    loop {
        number += 1;
        let remaining = deadline_at.saturating_duration_since(Instant::now());
        let budget = limits.attempt_timeout.min(remaining);
        let span = tracing::debug_span!(
            "inferlink.attempt",
            attempt = number,
            timeout_ms = ms(budget) as u64
        );
        let outcome = tokio::time::timeout(budget, attempt(number))
            .instrument(span)
            .await;
        let failure = match outcome {
            Ok(Ok(value)) => {
                return Ok(Attempted {
                    value,
                    attempts: number,
                });
            }
            Ok(Err(failure)) => failure,
            Err(_) if budget < limits.attempt_timeout => {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!("deadline of {} ms exceeded", ms(limits.deadline)),
                )
                .with_context("attempts", number.to_string())
                .with_context(CONTEXT_RETRY, RetryRule::IfIdempotent.as_str()));
            }
            Err(_) => AttemptError::new(
                Error::new(
                    ErrorKind::Timeout,
                    format!("no complete response within {} ms", ms(budget)),
                ),
                RetryRule::IfIdempotent,
            ),
        };
        if !failure.retry.allows(idempotency) || number >= max_attempts {
            let error = failure
                .error
                .with_context("attempts", number.to_string())
                .with_context(CONTEXT_RETRY, failure.retry.as_str());
            let error = match failure.retry_after {
                Some(after) => error.with_context(CONTEXT_RETRY_AFTER_MS, ms(after).to_string()),
                None => error,
            };
            tracing::debug!(attempt = number, error = %error, "giving up");
            return Err(error);
        }
        let wait = failure
            .retry_after
            .unwrap_or_else(|| policy.backoff(number));
        let remaining = deadline_at.saturating_duration_since(Instant::now());
        if wait >= remaining {
            let why = match failure.retry_after {
                Some(after) => format!(
                    "the server asked to retry after {} ms, past the deadline of {} ms",
                    ms(after),
                    ms(limits.deadline)
                ),
                None => format!(
                    "the deadline of {} ms leaves no time for another attempt",
                    ms(limits.deadline)
                ),
            };
            let last = failure.error;
            let error = Error::new(ErrorKind::Timeout, format!("{why}; last error: {last}"))
                .with_context("attempts", number.to_string())
                .with_context(CONTEXT_RETRY, failure.retry.as_str());
            return Err(match failure.retry_after {
                Some(after) => error.with_context(CONTEXT_RETRY_AFTER_MS, ms(after).to_string()),
                None => error,
            });
        }
        tracing::info!(
            attempt = number,
            wait_ms = ms(wait) as u64,
            error = %failure.error,
            "retrying"
        );
        tokio::time::sleep(wait).await;
    }
}

/// Parses a `Retry-After` value: delay seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn limits(max_attempts: u32) -> CallLimits {
        CallLimits {
            deadline: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(5),
            max_attempts,
        }
    }

    #[test]
    fn a_marked_request_is_safe_an_unmarked_one_unsafe() {
        assert_eq!(Idempotency::marked(true), Idempotency::Safe);
        assert_eq!(Idempotency::marked(false), Idempotency::Unsafe);
    }

    fn fast() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            backoff_base: Duration::from_millis(1),
            backoff_max: Duration::from_millis(2),
        }
    }

    #[tokio::test]
    async fn retries_until_success_and_counts() {
        let calls = AtomicU32::new(0);
        let done = run(&fast(), limits(5), Idempotency::Unsafe, |n| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 3 {
                    Err(AttemptError::new(
                        Error::new(ErrorKind::Unavailable, "busy"),
                        RetryRule::Always,
                    ))
                } else {
                    Ok(n)
                }
            }
        })
        .await
        .unwrap();
        assert_eq!((done.value, done.attempts), (3, 3));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn unsafe_is_not_retried_when_the_server_may_have_worked() {
        let calls = AtomicU32::new(0);
        let e = run(&fast(), limits(5), Idempotency::Unsafe, |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async {
                Err::<(), _>(AttemptError::new(
                    Error::new(ErrorKind::Unavailable, "reset"),
                    RetryRule::IfIdempotent,
                ))
            }
        })
        .await
        .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(e.context("attempts"), Some("1"));
        assert_eq!(RetryRule::of_error(&e), Some(RetryRule::IfIdempotent));
        assert_eq!(RetryRule::retry_after_of(&e), None);
    }

    #[tokio::test]
    async fn attempts_run_out() {
        let e = run(&fast(), limits(4), Idempotency::Safe, |_| async {
            Err::<(), _>(AttemptError::new(
                Error::new(ErrorKind::Unavailable, "down"),
                RetryRule::IfIdempotent,
            ))
        })
        .await
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert_eq!(e.context("attempts"), Some("4"));
    }

    #[tokio::test]
    async fn retry_after_past_the_deadline_fails_at_once() {
        let short = CallLimits {
            deadline: Duration::from_millis(200),
            ..limits(5)
        };
        let e = run(&fast(), short, Idempotency::Safe, |_| async {
            Err::<(), _>(AttemptError {
                error: Error::new(ErrorKind::RateLimited, "slow down"),
                retry: RetryRule::Always,
                retry_after: Some(Duration::from_secs(30)),
            })
        })
        .await
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout);
        assert!(e.message().contains("slow down"));
        assert_eq!(e.context("attempts"), Some("1"));
        assert_eq!(RetryRule::of_error(&e), Some(RetryRule::Always));
        assert_eq!(RetryRule::retry_after_of(&e), Some(Duration::from_secs(30)));
    }

    #[test]
    fn retry_after_formats() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(100));
        let d = parse_retry_after(&later).unwrap();
        assert!(d > Duration::from_secs(90) && d <= Duration::from_secs(100));
        assert_eq!(parse_retry_after("soon"), None);
    }
}
