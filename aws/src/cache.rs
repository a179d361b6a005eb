//! [`CachedCredentials`]: credentials fetched once, kept in memory and
//! fetched again before they expire.
//!
//! * Credentials with an expiry are fetched again once less than
//!   [`REFRESH_BEFORE`] (or half their lifetime, when shorter) is left.
//! * Credentials without one are fetched again after [`NO_EXPIRY_REFRESH`].
//! * One fetch at a time: concurrent signers wait for it.
//! * A failed fetch while the cached credentials are still valid keeps them
//!   (logged at warn, without the error's detail); past their expiry the
//!   error is returned. A fetch takes at most [`FETCH_TIMEOUT`].
//! * Nothing is ever written to disk; `Debug` shows no credential.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use inferlink_core::transport::sigv4::{AwsCredentials, CredentialsProvider};
use inferlink_core::{Error, ErrorKind, Result};

/// How long before their expiry credentials are fetched again.
pub const REFRESH_BEFORE: Duration = Duration::from_secs(5 * 60);

/// How long credentials without an expiry are kept before being fetched again.
pub const NO_EXPIRY_REFRESH: Duration = Duration::from_secs(15 * 60);

/// The longest one fetch may take (STS, IMDS, ECS, files).
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// Credentials as a source hands them out, with their expiry if they have one.
#[derive(Debug, Clone)]
pub struct FetchedCredentials {
    /// The credentials.
    pub credentials: AwsCredentials,
    /// When they stop being valid (`None`: long-term keys).
    pub expires: Option<SystemTime>,
}

/// A source of credentials that does not cache ([`CachedCredentials`] does).
#[async_trait]
pub trait FetchCredentials: Send + Sync + fmt::Debug {
    /// Fetches credentials now. Errors are typed and never show a credential.
    async fn fetch(&self) -> Result<FetchedCredentials>;
}

/// The clock the cache reads (the system clock unless a test sets another).
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

struct Cached {
    fetched: FetchedCredentials,
    refresh_at: SystemTime,
}

/// A [`CredentialsProvider`] that caches what a [`FetchCredentials`]
/// source fetches (see the module documentation for the rules).
pub struct CachedCredentials {
    source: Box<dyn FetchCredentials>,
    clock: Clock,
    state: tokio::sync::Mutex<Option<Cached>>,
}

impl fmt::Debug for CachedCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedCredentials")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl CachedCredentials {
    /// A cache in front of `source`, on the system clock.
    pub fn new(source: impl FetchCredentials + 'static) -> Self {
        CachedCredentials {
            source: Box::new(source),
            clock: Arc::new(SystemTime::now),
            state: tokio::sync::Mutex::new(None),
        }
    }

    /// The same cache reading `clock` instead of the system clock (tests
    /// drive expiry with it, without waiting).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    fn refresh_time(now: SystemTime, fetched: &FetchedCredentials) -> SystemTime {
        match fetched.expires {
            Some(expires) => {
                let lifetime = expires.duration_since(now).unwrap_or_default();
                let early = REFRESH_BEFORE.min(lifetime / 2);
                expires.checked_sub(early).unwrap_or(expires)
            }
            None => now + NO_EXPIRY_REFRESH,
        }
    }

    async fn fetch_bounded(&self) -> Result<FetchedCredentials> {
        match tokio::time::timeout(FETCH_TIMEOUT, self.source.fetch()).await {
            Ok(result) => result,
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "fetching AWS credentials took longer than {} s",
                    FETCH_TIMEOUT.as_secs()
                ),
            )),
        }
    }
}

#[async_trait]
impl CredentialsProvider for CachedCredentials {
    async fn credentials(&self) -> Result<AwsCredentials> {
        let mut state = self.state.lock().await;
        let now = (self.clock)();
        if let Some(cached) = state.as_ref()
            && now < cached.refresh_at
        {
            return Ok(cached.fetched.credentials.clone());
        }
        match self.fetch_bounded().await {
            Ok(fetched) => {
                let now = (self.clock)();
                if fetched.expires.is_some_and(|e| e <= now) {
                    return Err(Error::new(
                        ErrorKind::Unauthenticated,
                        "the AWS credentials fetched have already expired",
                    ));
                }
                let credentials = fetched.credentials.clone();
                let refresh_at = Self::refresh_time(now, &fetched);
                *state = Some(Cached {
                    fetched,
                    refresh_at,
                });
                Ok(credentials)
            }
            Err(error) => match state.as_ref() {
                Some(cached) if cached.fetched.expires.is_some_and(|e| now < e) => {
                    tracing::warn!(
                        kind = error.kind().as_str(),
                        "refreshing AWS credentials failed; the cached ones are still valid"
                    );
                    Ok(cached.fetched.credentials.clone())
                }
                _ => Err(error),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Hands out key ids `AKID1`, `AKID2`, … valid for `lifetime` from the
    /// test clock, or fails when `fail` holds.
    #[derive(Debug)]
    struct Counting {
        count: AtomicU64,
        lifetime: Option<Duration>,
        now: Arc<Mutex<SystemTime>>,
        fail: Arc<Mutex<bool>>,
    }

    #[async_trait]
    impl FetchCredentials for Counting {
        async fn fetch(&self) -> Result<FetchedCredentials> {
            if *self.fail.lock().unwrap() {
                return Err(Error::new(ErrorKind::Unavailable, "planted failure"));
            }
            let n = self.count.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(FetchedCredentials {
                credentials: AwsCredentials::new(format!("AKID{n}"), "secret-planted"),
                expires: self.lifetime.map(|l| *self.now.lock().unwrap() + l),
            })
        }
    }

    fn counting_cache(
        lifetime: Option<Duration>,
    ) -> (CachedCredentials, Arc<Mutex<SystemTime>>, Arc<Mutex<bool>>) {
        let now = Arc::new(Mutex::new(
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000),
        ));
        let fail = Arc::new(Mutex::new(false));
        let source = Counting {
            count: AtomicU64::new(0),
            lifetime,
            now: now.clone(),
            fail: fail.clone(),
        };
        let clock_now = now.clone();
        let cache =
            CachedCredentials::new(source).with_clock(Arc::new(move || *clock_now.lock().unwrap()));
        (cache, now, fail)
    }

    fn advance(now: &Mutex<SystemTime>, secs: u64) {
        *now.lock().unwrap() += Duration::from_secs(secs);
    }

    #[tokio::test]
    async fn refreshes_before_expiry_and_keeps_valid_ones_on_failure() {
        let (cache, now, fail) = counting_cache(Some(Duration::from_secs(3600)));
        assert_eq!(cache.credentials().await.unwrap().access_key_id(), "AKID1");
        advance(&now, 3000);
        assert_eq!(cache.credentials().await.unwrap().access_key_id(), "AKID1");
        // Less than five minutes left: fetched again.
        advance(&now, 400);
        assert_eq!(cache.credentials().await.unwrap().access_key_id(), "AKID2");
        // A failing refresh keeps the still-valid ones, then fails once expired.
        *fail.lock().unwrap() = true;
        advance(&now, 3400);
        assert_eq!(cache.credentials().await.unwrap().access_key_id(), "AKID2");
        advance(&now, 400);
        let e = cache.credentials().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        *fail.lock().unwrap() = false;
        assert_eq!(cache.credentials().await.unwrap().access_key_id(), "AKID3");
        assert!(!format!("{cache:?}").contains("planted"));
    }

    #[tokio::test]
    async fn short_lived_and_long_term_credentials() {
        // 60 s of life: fetched again after half of it, not at every call.
        let (cache, now, _) = counting_cache(Some(Duration::from_secs(60)));
        assert_eq!(cache.credentials().await.unwrap().access_key_id(), "AKID1");
        advance(&now, 29);
        assert_eq!(cache.credentials().await.unwrap().access_key_id(), "AKID1");
        advance(&now, 2);
        assert_eq!(cache.credentials().await.unwrap().access_key_id(), "AKID2");
        let (cache, now, _) = counting_cache(None);
        assert_eq!(cache.credentials().await.unwrap().access_key_id(), "AKID1");
        advance(&now, NO_EXPIRY_REFRESH.as_secs() - 1);
        assert_eq!(cache.credentials().await.unwrap().access_key_id(), "AKID1");
        advance(&now, 1);
        assert_eq!(cache.credentials().await.unwrap().access_key_id(), "AKID2");
    }
}
