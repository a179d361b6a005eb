//! Fixed keys for tests of stores that encrypt credential values at rest.
//!
//! Durable stores refuse to write credential values without a key (see
//! `inferlink::crypto`); tests give them the fixed key here. Never use it
//! outside tests: it is public.

#[cfg(feature = "sqlite")]
use std::path::Path;
use std::sync::Arc;

use inferlink::crypto::{KeyProvider, MasterKey, StaticKeyProvider};
#[cfg(feature = "sqlite")]
use inferlink::store::{SqliteOptions, SqliteStore};

/// The fixed test key's bytes (32 bytes, a recognisable pattern).
const TEST_KEY_BYTES: [u8; 32] = *b"inferlink-test-master-key-000001";

/// The fixed test master key.
pub fn test_master_key() -> MasterKey {
    MasterKey::from_bytes(zeroize_array(TEST_KEY_BYTES))
}

/// The fixed test master key as base64, for `INFERLINK_MASTER_KEY` in CLI tests.
pub fn test_master_key_base64() -> String {
    test_master_key().to_base64().to_string()
}

/// A second fixed key, different from [`test_master_key`] (for wrong-key and rotation tests).
pub fn other_test_master_key() -> MasterKey {
    MasterKey::from_bytes(zeroize_array(*b"inferlink-test-master-key-000002"))
}

/// A key provider holding the fixed test key.
pub fn test_key_provider() -> Arc<dyn KeyProvider> {
    Arc::new(StaticKeyProvider::new(test_master_key()).with_source("the fixed test key"))
}

/// [`SqliteOptions::default`] with the fixed test key (feature `sqlite`).
#[cfg(feature = "sqlite")]
pub fn keyed_sqlite_options() -> SqliteOptions {
    SqliteOptions::default().with_key_provider(test_key_provider())
}

/// Opens the SQLite store at `path` with the fixed test key (feature `sqlite`).
#[cfg(feature = "sqlite")]
pub fn open_keyed_sqlite(path: impl AsRef<Path>) -> inferlink::Result<SqliteStore> {
    SqliteStore::open_with(path, keyed_sqlite_options())
}

fn zeroize_array(bytes: [u8; 32]) -> inferlink::crypto::KeyBytes {
    inferlink::crypto::KeyBytes::new(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_keys_are_fixed_and_distinct() {
        assert_eq!(test_master_key().id(), test_master_key().id());
        assert_ne!(test_master_key().id(), other_test_master_key().id());
        assert_eq!(test_master_key_base64().len(), 44);
    }
}
