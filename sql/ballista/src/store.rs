//! How an executor opens the registry: the same store forms as the CLI's
//! `--store` (an SQLite file, or a `postgres://` URL for the shared store),
//! with the master key from `--key-file`, `INFERLINK_MASTER_KEY` or
//! `INFERLINK_KEY_FILE`.

use std::path::Path;

use inferlink::crypto::load_key_provider;
use inferlink::store::{PostgresOptions, SqliteOptions};
use inferlink::{PostgresStore, Registry, Result, SqliteStore};

/// Opens the registry at `store`: a `postgres://…`/`postgresql://…` URL
/// (tables in `pg_schema`), otherwise the path of an SQLite file. Errors
/// never show a URL's password.
pub async fn open_registry(
    store: &str,
    key_file: Option<&Path>,
    pg_schema: &str,
) -> Result<Registry> {
    let key_provider = load_key_provider(key_file)?;
    let lower = store.get(..13).unwrap_or(store).to_ascii_lowercase();
    if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        let options = PostgresOptions {
            schema: pg_schema.to_owned(),
            key_provider,
            ..PostgresOptions::default()
        };
        let store = PostgresStore::connect(store, options).await?;
        return Registry::open(store).await;
    }
    let options = SqliteOptions {
        key_provider,
        ..SqliteOptions::default()
    };
    let sqlite = SqliteStore::open_with(Path::new(store), options)
        .map_err(|e| e.with_context("store", store.to_owned()))?;
    Registry::open(sqlite).await
}
