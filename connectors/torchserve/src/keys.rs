//! [`TokenKeys`]: the inference and management tokens a connector sends,
//! shared and replaceable while the connector runs.
//!
//! TorchServe's token authorization is on by default: every inference call
//! needs `Authorization: Bearer <inference key>`, every management call the
//! management key. The keys live in the record's credentials
//! (`inference_key`, `management_key`) and expire (60 minutes by default), so
//! operators rotate them in the registry. A connector reads its keys from a
//! [`TokenKeys`] handle **on every request**, so a new key takes effect from
//! the next request on, without rebuilding the connector; requests already
//! sent finish with the key they were sent with.
//!
//! Feed the handle from the registry with [`TokenKeys::follow`]:
//!
//! ```no_run
//! # async fn demo(registry: &inferlink::Registry, selector: inferlink::Selector) -> inferlink::Result<()> {
//! use inferlink::Consumer;
//! use inferlink_torchserve::TorchServeConnector;
//!
//! let mut live = registry.watch_resolution(selector, Consumer::anywhere())?;
//! let first = live.next().await.expect("registry open")?;
//! let connector = TorchServeConnector::from_target(&first.target())?;
//! let keys = connector.keys();
//! // Runs until the registry is dropped; each credential change is used
//! // from the next request on.
//! tokio::spawn(async move { keys.follow(live.into_stream()).await });
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::{Arc, RwLock};

use futures_util::StreamExt as _;
use inferlink_core::{ConnectTarget, Result, Secret, ToConnectTarget};

#[derive(Default, Clone)]
struct KeyPair {
    inference: Option<Secret>,
    management: Option<Secret>,
}

/// The two TorchServe tokens, shared by a connector and whoever updates them.
///
/// Cheap to clone (all clones share the same keys). `Debug` shows only
/// whether each key is set.
#[derive(Clone, Default)]
pub struct TokenKeys {
    inner: Arc<RwLock<KeyPair>>,
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self.read();
        f.debug_struct("TokenKeys")
            .field(
                "inference",
                &keys.inference.as_ref().map(|_| inferlink_core::HIDDEN),
            )
            .field(
                "management",
                &keys.management.as_ref().map(|_| inferlink_core::HIDDEN),
            )
            .finish()
    }
}

impl TokenKeys {
    /// A handle holding these keys.
    pub fn new(inference: Option<Secret>, management: Option<Secret>) -> Self {
        TokenKeys {
            inner: Arc::new(RwLock::new(KeyPair {
                inference,
                management,
            })),
        }
    }

    fn read(&self) -> KeyPair {
        // A panic while holding the lock cannot leave a half-written pair
        // (each write replaces whole values), so a poisoned lock is still usable.
        match self.inner.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn write(&self, f: impl FnOnce(&mut KeyPair)) {
        match self.inner.write() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// The inference key now.
    pub fn inference(&self) -> Option<Secret> {
        self.read().inference
    }

    /// The management key now.
    pub fn management(&self) -> Option<Secret> {
        self.read().management
    }

    /// Replaces the inference key (used from the next request on).
    pub fn set_inference(&self, key: Option<Secret>) {
        self.write(|k| k.inference = key);
    }

    /// Replaces the management key (used from the next request on).
    pub fn set_management(&self, key: Option<Secret>) {
        self.write(|k| k.management = key);
    }

    /// Takes both keys from a target's merged configuration
    /// (`inference_key`, `management_key`; an absent key clears it).
    ///
    /// Errors ([`inferlink_core::ErrorKind::Config`], naming the key) leave the
    /// current keys unchanged.
    pub fn update_from(&self, target: &ConnectTarget) -> Result<()> {
        let (inference, management) = crate::config::keys_of(target)?;
        self.write(|k| {
            k.inference = inference;
            k.management = management;
        });
        Ok(())
    }

    /// Follows a stream of targets (in `inferlink`, a live resolution's
    /// `into_stream()`): every new target it yields updates the keys
    /// ([`TokenKeys::update_from`]). Runs until the stream ends (the
    /// registry behind it is dropped). An error item (no match for now) or
    /// an unusable key leaves the keys as they are and is logged at `warn`
    /// (never with the key's value); other changes (a moved endpoint) are not
    /// followed here — build a new connector for those.
    pub async fn follow<S, T>(&self, live: S)
    where
        S: futures_core::Stream<Item = Result<T>>,
        T: ToConnectTarget,
    {
        let mut live = std::pin::pin!(live);
        while let Some(outcome) = live.next().await {
            match outcome.and_then(|r| self.update_from(&r.to_connect_target())) {
                Ok(()) => tracing::debug!("torchserve token keys updated from the registry"),
                Err(e) => tracing::warn!(error = %e, "torchserve token keys not updated"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_keys_and_debug_hides_them() {
        let keys = TokenKeys::new(Some(Secret::new("inf-1")), None);
        let other = keys.clone();
        other.set_inference(Some(Secret::new("inf-2")));
        other.set_management(Some(Secret::new("mgmt-1")));
        assert_eq!(keys.inference().unwrap().expose(), "inf-2");
        assert_eq!(keys.management().unwrap().expose(), "mgmt-1");
        let shown = format!("{keys:?}");
        assert!(
            !shown.contains("inf-2") && !shown.contains("mgmt-1"),
            "{shown}"
        );
        keys.set_inference(None);
        assert!(other.inference().is_none());
    }
}
