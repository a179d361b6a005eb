//! How a router routes: the strategy and the call budget (in code,
//! [`RouterConfig`]), and each service's weight, concurrency and rate
//! limits (in its record's configuration, [`KEYS`], or in code).

use std::time::Duration;

use inferlink_core::kit;
use inferlink_core::{ConnectTarget, Result};

use crate::limit::RateLimit;

inferlink_core::config_words! {
    /// How a router orders the healthy candidates of a call.
    pub enum Strategy for "route_strategy" {
        /// The resolver's ranking: the best candidate while it is healthy,
        /// the next one when it fails or is cooled down (the default).
        RankedFailover = "ranked_failover" | "failover",
        /// Each call starts at the next candidate, in proportion to the
        /// candidates' weights.
        RoundRobin = "round_robin",
        /// The candidate with the fewest calls in flight per unit of weight.
        LeastInFlight = "least_in_flight" | "least_busy",
        /// A random candidate, chosen with probability proportional to
        /// weight / recent latency (an exponentially weighted moving average).
        LatencyWeighted = "latency_weighted" | "latency",
    }
}

inferlink_core::config_keys! {
    /// The per-service keys a router reads from a record's configuration
    /// (service, endpoint or extension level); it removes them before the
    /// connector is built, so connectors never see them.
    pub const KEYS for "router" in mod keys {
        /// Share of traffic under round robin and latency weighting, and the divisor of
        /// in-flight calls under least in flight (integer 1..=1000, default 1).
        WEIGHT = "route_weight",
        /// Calls at most in flight to this service at once (default: no limit).
        MAX_IN_FLIGHT = "route_max_in_flight",
        /// Client-side rate limit of this service in requests per second (default: none).
        REQUESTS_PER_SECOND = "route_requests_per_second",
        /// Client-side rate limit of this service in requests per minute (default: none).
        REQUESTS_PER_MINUTE = "route_requests_per_minute",
        /// Tokens per minute (prompt and completion, as the server reports them) for
        /// generation and embeddings (default: none).
        TOKENS_PER_MINUTE = "route_tokens_per_minute",
        /// Requests a rate limit lets through at once after an idle time (default: one
        /// second's worth, at least 1).
        BURST = "route_burst",
    }
}

/// What a router reads of one service's configuration ([`KEYS`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSettings {
    /// Traffic share (see [`keys::WEIGHT`]).
    pub weight: u32,
    /// Concurrency cap (see [`keys::MAX_IN_FLIGHT`]).
    pub max_in_flight: Option<u32>,
    /// Rate limit of the service.
    pub limit: RateLimit,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        ServiceSettings {
            weight: 1,
            max_in_flight: None,
            limit: RateLimit::none(),
        }
    }
}

impl ServiceSettings {
    /// Reads (and removes) the router's keys from `target`'s configuration.
    /// A value that does not parse or is out of range is an
    /// [`ErrorKind::Config`](inferlink_core::ErrorKind::Config) error naming the key.
    pub fn take_from(target: &mut ConnectTarget) -> Result<ServiceSettings> {
        let mut take = |key: &str| target.configuration.remove(key);
        let weight = match take(keys::WEIGHT) {
            Some(v) => parse_number::<u32>(keys::WEIGHT, v.expose(), 1.0, 1000.0)?,
            None => 1,
        };
        let max_in_flight = take(keys::MAX_IN_FLIGHT)
            .map(|v| parse_number::<u32>(keys::MAX_IN_FLIGHT, v.expose(), 1.0, 1e6))
            .transpose()?;
        let per_second = take(keys::REQUESTS_PER_SECOND)
            .map(|v| parse_rate(keys::REQUESTS_PER_SECOND, v.expose()))
            .transpose()?;
        let per_minute = take(keys::REQUESTS_PER_MINUTE)
            .map(|v| parse_rate(keys::REQUESTS_PER_MINUTE, v.expose()))
            .transpose()?;
        let tokens_per_minute = take(keys::TOKENS_PER_MINUTE)
            .map(|v| parse_rate(keys::TOKENS_PER_MINUTE, v.expose()))
            .transpose()?;
        let burst = take(keys::BURST)
            .map(|v| parse_rate(keys::BURST, v.expose()))
            .transpose()?;
        if per_second.is_some() && per_minute.is_some() {
            return Err(kit::config_error(
                keys::REQUESTS_PER_MINUTE,
                format!(
                    "set either {} or this key, not both",
                    keys::REQUESTS_PER_SECOND
                ),
            ));
        }
        let requests_per_second = per_second.or(per_minute.map(|m| m / 60.0));
        Ok(ServiceSettings {
            weight,
            max_in_flight,
            limit: RateLimit {
                requests_per_second,
                tokens_per_minute,
                burst,
            },
        })
    }

    /// The router's own key set checked alone: a key under `route_` that is
    /// not one of [`KEYS`] (a typo) is refused with the nearest key.
    pub fn check_route_keys(target: &ConnectTarget) -> Result<()> {
        let mut only_route = ConnectTarget::new(target.product.clone(), target.url.clone());
        for (key, value) in &target.configuration {
            if key.starts_with("route_") {
                only_route.configuration.insert(key.clone(), value.clone());
            }
        }
        kit::check_keys(&only_route, &[KEYS])
    }
}

fn parse_number<T: TryFrom<u64>>(key: &str, raw: &str, min: f64, max: f64) -> Result<T> {
    let value: u64 = raw
        .trim()
        .parse()
        .map_err(|_| kit::config_error(key, format!("\"{raw}\" is not a whole number")))?;
    if (value as f64) < min || (value as f64) > max {
        return Err(kit::config_error(
            key,
            format!("{value} is out of range {min}..={max}"),
        ));
    }
    T::try_from(value).map_err(|_| kit::config_error(key, "out of range"))
}

fn parse_rate(key: &str, raw: &str) -> Result<f64> {
    let value: f64 = raw
        .trim()
        .parse()
        .map_err(|_| kit::config_error(key, format!("\"{raw}\" is not a number")))?;
    if !value.is_finite() || value <= 0.0 || value > 1e9 {
        return Err(kit::config_error(
            key,
            format!("{value} must be a positive number up to 1e9"),
        ));
    }
    Ok(value)
}

/// A router's behaviour, set in code ([`crate::RouterBuilder`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RouterConfig {
    /// How candidates are ordered (default [`Strategy::RankedFailover`]).
    pub strategy: Strategy,
    /// The whole budget of one call: waits for limits, attempts on every
    /// candidate and the pauses a server asked for (default 30 s).
    pub deadline: Duration,
    /// Consecutive failures (errors that say the server is unavailable or
    /// too slow) after which a candidate is cooled down (default 3).
    pub failure_threshold: u32,
    /// How long a cooled-down candidate gets no traffic (default 5 s).
    pub cooldown: Duration,
    /// After the cooldown, how often its health is probed until it answers
    /// serving (default 1 s); only then does it get traffic again.
    pub probe_interval: Duration,
    /// Weight of the newest sample in the latency average (default 0.2).
    pub latency_smoothing: f64,
    /// The `retry_max_attempts` each candidate's transport gets unless its
    /// record sets one (default `Some(1)`: the router moves to the next
    /// candidate instead of retrying a failing one; `None` keeps the transport's own).
    pub transport_attempts: Option<u32>,
    /// The pause after a 429 that gave no `Retry-After` (default 1 s).
    pub default_retry_after: Duration,
    /// Attempts at most in one call beyond one per candidate (default 4):
    /// a throttled candidate may be tried again after its pause.
    pub extra_attempts: u32,
    /// Per-call metrics (requests, errors, retries, failovers, latency,
    /// in flight, tokens) through the `metrics` facade (default true; the
    /// cooldown, probe and throttle counters are always recorded).
    pub metrics: bool,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            strategy: Strategy::RankedFailover,
            deadline: Duration::from_secs(30),
            failure_threshold: 3,
            cooldown: Duration::from_secs(5),
            probe_interval: Duration::from_secs(1),
            latency_smoothing: 0.2,
            transport_attempts: Some(1),
            default_retry_after: Duration::from_secs(1),
            extra_attempts: 4,
            metrics: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use inferlink_core::{ConfigValue, ErrorKind};

    fn target(pairs: &[(&str, &str)]) -> ConnectTarget {
        let mut t = ConnectTarget::new("mlserver", "http://127.0.0.1:1");
        for (k, v) in pairs {
            t = t.with_value(*k, ConfigValue::Plain((*v).into()));
        }
        t
    }

    #[test]
    fn settings_are_read_and_removed() {
        let mut t = target(&[
            ("route_weight", "3"),
            ("route_max_in_flight", "8"),
            ("route_requests_per_minute", "120"),
            ("route_tokens_per_minute", "1000"),
            ("timeout_request_ms", "100"),
        ]);
        let s = ServiceSettings::take_from(&mut t).unwrap();
        assert_eq!(s.weight, 3);
        assert_eq!(s.max_in_flight, Some(8));
        assert_eq!(s.limit.requests_per_second, Some(2.0));
        assert_eq!(s.limit.tokens_per_minute, Some(1000.0));
        assert_eq!(t.configuration.len(), 1, "only the transport key is left");
    }

    #[test]
    fn bad_values_and_typos_are_refused_with_the_key() {
        for (k, v) in [
            ("route_weight", "0"),
            ("route_weight", "heavy"),
            ("route_requests_per_second", "-1"),
            ("route_requests_per_second", "NaN"),
            ("route_max_in_flight", "0"),
        ] {
            let e = ServiceSettings::take_from(&mut target(&[(k, v)])).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{k}={v}");
            assert_eq!(e.path(), Some(k));
        }
        let e = ServiceSettings::check_route_keys(&target(&[("route_wieght", "2")])).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("did you mean \"route_weight\""), "{e}");
        let both = [
            ("route_requests_per_second", "1"),
            ("route_requests_per_minute", "60"),
        ];
        assert!(ServiceSettings::take_from(&mut target(&both)).is_err());
    }

    #[test]
    fn strategy_words() {
        assert_eq!(
            "least_busy".parse::<Strategy>().unwrap(),
            Strategy::LeastInFlight
        );
        assert!("random".parse::<Strategy>().is_err());
    }
}
