//! Secret values: credential configuration that must never leak.
//!
//! A [`Secret`] wraps a [`secrecy::SecretString`]. Its `Debug`, `Display` and
//! default `Serialize` all print [`HIDDEN`] (`<hidden>`); the only ways to see
//! the value are [`Secret::expose`] and the explicit "reveal" serializers in
//! [`crate::format`] (used by `inferlink get --show-secrets` and by the durable
//! stores). Dropping a `Secret` wipes its memory (`zeroize`).

use std::cell::Cell;
use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Serialize, Serializer};

/// The text shown in place of every secret value, and the placeholder that
/// means "keep the stored value" when a record is updated.
pub const HIDDEN: &str = "<hidden>";

/// A secret string value (a credential configuration value).
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    /// Wraps a value as a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(SecretString::from(value.into()))
    }

    /// Reveals the value. Every call site that needs the plain text goes through here.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// True when the value is the literal `<hidden>` placeholder.
    pub fn is_placeholder(&self) -> bool {
        self.expose() == HIDDEN
    }
}

impl PartialEq for Secret {
    /// Compares the secret values (in time independent of where they differ).
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.expose().as_bytes(), other.expose().as_bytes());
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl Eq for Secret {}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret::new(value)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret::new(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(HIDDEN)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(HIDDEN)
    }
}

thread_local! {
    static REVEAL: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with secret serialization switched to "reveal" on this thread
/// (for `inferlink`'s record formats; not part of the connector API).
///
/// Serialization is synchronous, so the switch cannot leak into other work;
/// a guard restores the previous state even if `f` panics.
#[doc(hidden)]
pub fn with_secrets_revealed<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            REVEAL.with(|r| r.set(self.0));
        }
    }
    let _restore = Restore(REVEAL.with(|r| r.replace(true)));
    f()
}

impl Serialize for Secret {
    /// Writes `<hidden>`, unless inside an explicit reveal (see [`crate::format`]).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if REVEAL.with(Cell::get) {
            serializer.serialize_str(self.expose())
        } else {
            serializer.serialize_str(HIDDEN)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_display_and_serialize_hide_the_value() {
        let s = Secret::new("hunter2-planted");
        assert_eq!(format!("{s:?}"), HIDDEN);
        assert_eq!(format!("{s}"), HIDDEN);
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"<hidden>\"");
        assert_eq!(s.expose(), "hunter2-planted");
    }

    #[test]
    fn reveal_is_scoped() {
        let s = Secret::new("v");
        let shown = with_secrets_revealed(|| serde_json::to_string(&s).unwrap());
        assert_eq!(shown, "\"v\"");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"<hidden>\"");
    }

    #[test]
    fn equality_compares_values() {
        assert_eq!(Secret::new("a"), Secret::new("a"));
        assert_ne!(Secret::new("a"), Secret::new("b"));
        assert_ne!(Secret::new("a"), Secret::new("ab"));
        assert!(Secret::new(HIDDEN).is_placeholder());
    }
}
