//! Client-side rate limits: token buckets for requests and for tokens, and
//! the pause a server's 429 imposes.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// The longest pause a server's `Retry-After` can impose.
pub const MAX_PAUSE: Duration = Duration::from_secs(86_400);

/// A rate limit: requests per second and/or tokens per minute. `None`
/// everywhere means no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RateLimit {
    /// Requests per second (a per-minute limit is stored divided by 60).
    pub requests_per_second: Option<f64>,
    /// Tokens per minute, as the typed calls' usage reports them.
    pub tokens_per_minute: Option<f64>,
    /// Requests let through at once after an idle time (default: one
    /// second's worth, at least 1).
    pub burst: Option<f64>,
}

impl RateLimit {
    /// No limit.
    pub fn none() -> Self {
        RateLimit::default()
    }

    /// At most `n` requests per second.
    pub fn per_second(n: f64) -> Self {
        RateLimit {
            requests_per_second: Some(n),
            ..RateLimit::default()
        }
    }

    /// At most `n` requests per minute.
    pub fn per_minute(n: f64) -> Self {
        RateLimit::per_second(n / 60.0)
    }

    /// The same limit with a tokens-per-minute budget.
    pub fn with_tokens_per_minute(mut self, tokens: f64) -> Self {
        self.tokens_per_minute = Some(tokens);
        self
    }

    /// The same limit with this burst.
    pub fn with_burst(mut self, burst: f64) -> Self {
        self.burst = Some(burst);
        self
    }

    /// Whether any limit is set.
    pub fn is_limited(&self) -> bool {
        self.requests_per_second.is_some() || self.tokens_per_minute.is_some()
    }
}

/// A token bucket refilled continuously at `rate` per second up to `capacity`.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    capacity: f64,
    level: f64,
    refilled: Instant,
}

impl Bucket {
    fn new(rate: f64, capacity: f64, now: Instant) -> Self {
        Bucket {
            rate,
            capacity,
            // Start with one token: a new limiter does not allow a burst
            // the server never agreed to.
            level: capacity.min(1.0),
            refilled: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.level = (self.level + elapsed * self.rate).min(self.capacity);
        self.refilled = now;
    }

    /// How long until `need` tokens are there (zero: now).
    fn wait_for(&self, need: f64) -> Duration {
        if self.level >= need {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(((need - self.level) / self.rate).min(86_400.0))
        }
    }
}

#[derive(Debug, Default)]
struct State {
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
    paused_until: Option<Instant>,
}

/// The limiter of one service or consumer: a request bucket, a token
/// bucket (which may go into debt: a call is let through while the
/// balance is positive, and its reported usage is taken afterwards), and a
/// pause set by the server's 429.
#[derive(Debug)]
pub struct Limiter {
    limit: RateLimit,
    /// False while nothing can hold a call back (no limit, never paused):
    /// the lock is skipped then.
    engaged: AtomicBool,
    state: Mutex<State>,
}

impl Limiter {
    /// A limiter for `limit`.
    pub fn new(limit: RateLimit) -> Self {
        let now = Instant::now();
        let requests = limit.requests_per_second.map(|rate| {
            let burst = limit.burst.unwrap_or(rate).max(1.0);
            Bucket::new(rate, burst, now)
        });
        let tokens = limit.tokens_per_minute.map(|per_minute| {
            let mut bucket = Bucket::new(per_minute / 60.0, per_minute, now);
            bucket.level = per_minute;
            bucket
        });
        Limiter {
            limit,
            engaged: AtomicBool::new(limit.is_limited()),
            state: Mutex::new(State {
                requests,
                tokens,
                paused_until: None,
            }),
        }
    }

    /// The limit this limiter enforces.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Takes one request now, or says how long to wait before asking again.
    pub fn try_acquire(&self, now: Instant) -> Result<(), Duration> {
        if !self.engaged.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(until) = state.paused_until {
            if until > now {
                return Err(until - now);
            }
            state.paused_until = None;
        }
        let mut wait = Duration::ZERO;
        if let Some(tokens) = &mut state.tokens {
            tokens.refill(now);
            if tokens.level <= 0.0 {
                wait = wait.max(tokens.wait_for(f64::MIN_POSITIVE.max(1.0)));
            }
        }
        if let Some(requests) = &mut state.requests {
            requests.refill(now);
            wait = wait.max(requests.wait_for(1.0));
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        if let Some(requests) = &mut state.requests {
            requests.level -= 1.0;
        }
        Ok(())
    }

    /// Waits until [`Limiter::try_acquire`] lets one request through, then
    /// takes it (each wait is what the bucket or the pause asks for).
    pub async fn acquire(&self) {
        loop {
            match self.try_acquire(Instant::now()) {
                Ok(()) => return,
                Err(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// Takes `count` tokens a call used (the balance may go below zero; later
    /// calls wait until it is positive again).
    pub fn spend_tokens(&self, count: u64) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tokens) = &mut state.tokens {
            tokens.refill(Instant::now());
            tokens.level -= count as f64;
        }
    }

    /// Sends nothing through this limiter before `now + pause` (the server
    /// said 429 with `Retry-After`); a longer pause already set stays.
    pub fn pause(&self, now: Instant, pause: Duration) {
        self.engaged.store(true, Ordering::Release);
        // A server's number is not trusted to be sane: at most a day.
        let pause = pause.min(MAX_PAUSE);
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let until = now + pause;
        if state.paused_until.is_none_or(|old| old < until) {
            state.paused_until = Some(until);
        }
        // What was saved up before the 429 is not spent in a burst after it.
        if let Some(requests) = &mut state.requests {
            requests.level = requests.level.min(0.0);
            requests.refilled = until;
        }
    }

    /// When the pause set by [`Limiter::pause`] ends, if one is running.
    pub fn paused_until(&self, now: Instant) -> Option<Instant> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.paused_until.filter(|until| *until > now)
    }
}

/// How long a throttled candidate should rest, from what its error says:
/// the server's `Retry-After` (the transport's `server_retry_after_ms`),
/// else `retry-after-ms` or the `x-ratelimit-reset-requests` /
/// `x-ratelimit-reset-tokens` headers an OpenAI-compatible server sends
/// (kept by `inferlink-openai` as the context entries `retry_after_ms`,
/// `ratelimit_reset_requests`, `ratelimit_reset_tokens`; the longest reset
/// wins). `None` when the error says nothing usable.
pub fn pause_of(error: &inferlink_core::Error) -> Option<Duration> {
    use inferlink_core::transport::RetryRule;
    if let Some(after) = RetryRule::retry_after_of(error) {
        return Some(after);
    }
    if let Some(ms) = error
        .context("retry_after_ms")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
    {
        return Some(Duration::from_secs_f64((ms / 1000.0).min(86_400.0)));
    }
    ["ratelimit_reset_requests", "ratelimit_reset_tokens"]
        .iter()
        .filter_map(|key| parse_reset(error.context(key)?))
        .max()
}

/// Parses an `x-ratelimit-reset-*` value: Go-style durations (`1s`,
/// `6m0s`, `1.5s`, `20ms`, `1h2m3s`) or plain seconds; capped at a day.
pub fn parse_reset(value: &str) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() || value.len() > 32 {
        return None;
    }
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0)
            .then(|| Duration::from_secs_f64(seconds.min(86_400.0)));
    }
    let mut total = 0.0f64;
    let mut rest = value;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += number * scale;
        rest = &rest[unit_len..];
    }
    (total.is_finite() && total >= 0.0).then(|| Duration::from_secs_f64(total.min(86_400.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_durations() {
        assert_eq!(parse_reset("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_reset("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(parse_reset("20ms"), Some(Duration::from_millis(20)));
        assert_eq!(parse_reset("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_reset("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_reset("soon"), None);
        assert_eq!(parse_reset("1x"), None);
        assert_eq!(parse_reset("-1"), None);
        assert_eq!(parse_reset("99999999h"), Some(Duration::from_secs(86_400)));
        let e = inferlink_core::Error::new(inferlink_core::ErrorKind::RateLimited, "slow down")
            .with_context("ratelimit_reset_requests", "1s")
            .with_context("ratelimit_reset_tokens", "6m0s");
        assert_eq!(pause_of(&e), Some(Duration::from_secs(360)));
        let e = e.with_context("server_retry_after_ms", "2000");
        assert_eq!(
            pause_of(&e),
            Some(Duration::from_secs(2)),
            "Retry-After wins"
        );
    }

    #[test]
    fn requests_per_second_are_spaced() {
        let start = Instant::now();
        let limiter = Limiter::new(RateLimit::per_second(10.0).with_burst(1.0));
        assert!(limiter.try_acquire(start).is_ok());
        let wait = limiter.try_acquire(start).unwrap_err();
        assert!(wait > Duration::from_millis(90) && wait <= Duration::from_millis(100));
        assert!(limiter.try_acquire(start + wait).is_ok());
        // Over 10 simulated seconds exactly 100 more requests pass.
        let mut passed = 0;
        let mut now = start + wait;
        while now < start + wait + Duration::from_secs(10) {
            now += Duration::from_millis(1);
            if limiter.try_acquire(now).is_ok() {
                passed += 1;
            }
        }
        assert!((99..=101).contains(&passed), "{passed}");
    }

    #[test]
    fn a_pause_blocks_until_it_ends() {
        let now = Instant::now();
        let limiter = Limiter::new(RateLimit::none());
        assert!(limiter.try_acquire(now).is_ok());
        limiter.pause(now, Duration::from_secs(2));
        let wait = limiter.try_acquire(now).unwrap_err();
        assert_eq!(wait, Duration::from_secs(2));
        assert!(limiter.try_acquire(now + Duration::from_secs(2)).is_ok());
        // A hostile Retry-After does not overflow the clock.
        limiter.pause(now, Duration::from_secs(u64::MAX));
        assert_eq!(limiter.try_acquire(now).unwrap_err(), MAX_PAUSE);
    }

    #[test]
    fn tokens_go_into_debt_and_block_until_repaid() {
        let now = Instant::now();
        let limiter = Limiter::new(RateLimit::none().with_tokens_per_minute(600.0));
        assert!(limiter.try_acquire(now).is_ok());
        limiter.spend_tokens(1200);
        let wait = limiter.try_acquire(Instant::now()).unwrap_err();
        // 600 tokens of debt plus one at 10 tokens/s: about a minute.
        assert!(wait > Duration::from_secs(55), "{wait:?}");
    }
}
