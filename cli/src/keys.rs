//! `inferlink keys`: the master key (key-encryption key) that protects the
//! credential values stored in the registry, and how the store is opened with it.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use inferlink::crypto::{
    self, DataKeyInfo, DataKeyRotation, HeldKey, KeyLocation, KeyProvider, MasterKey,
    StaticKeyProvider, default_key_file, load_key_provider, replace_key_file, write_key_file,
};
use inferlink::store::{PostgresOptions, PostgresStore, SqliteOptions, SqliteStore};
use inferlink::{Error, ErrorKind, FileKeyProvider, Result};

use crate::commands::StoreLocation;
use crate::{KeysCommand, KeysRotateArgs};

pub(crate) const KEYS_AFTER_HELP: &str = "\
Credential values are stored encrypted: each with the store's data key, which is
kept only encrypted (wrapped) by the master key. The master key comes from, in
order: --key-file PATH; INFERLINK_MASTER_KEY (base64 of 32 bytes);
INFERLINK_KEY_FILE; <data dir>/inferlink/master.key.

`keys rotate` keeps the replaced key in a new file beside the key file
(<key file>.previous, then .previous.2, .previous.3, …) and never overwrites one:
stores sharing the key file keep opening. `keys status` says which key each data
key is wrapped by and whether it is readable.

Back the key file up separately from the registry database: losing it loses
every stored credential value. Details: docs/keys.md.";

/// Opens the SQLite store at `path` with the configured master key, if any.
pub(crate) fn open_store(path: &Path, key_file: Option<&Path>) -> Result<SqliteStore> {
    let options = SqliteOptions {
        key_provider: load_key_provider(key_file)?,
        ..SqliteOptions::default()
    };
    SqliteStore::open_with(path, options)
        .map_err(|e| e.with_context("store", path.display().to_string()))
}

/// The store a `keys` command works on, opened with a given key provider.
enum KeyedStore {
    Sqlite(SqliteStore, String),
    Postgres(PostgresStore),
}

impl KeyedStore {
    async fn open(
        location: &StoreLocation,
        pg_schema: &str,
        key_provider: Option<Arc<dyn KeyProvider>>,
    ) -> Result<KeyedStore> {
        match location {
            StoreLocation::Sqlite(path) => {
                let options = SqliteOptions {
                    key_provider,
                    ..SqliteOptions::default()
                };
                let store = SqliteStore::open_with(path, options)
                    .map_err(|e| e.with_context("store", path.display().to_string()))?;
                Ok(KeyedStore::Sqlite(store, path.display().to_string()))
            }
            StoreLocation::Postgres(url) => {
                let options = PostgresOptions {
                    key_provider,
                    schema: pg_schema.to_owned(),
                    ..PostgresOptions::default()
                };
                Ok(KeyedStore::Postgres(
                    PostgresStore::connect(url, options).await?,
                ))
            }
        }
    }

    /// Where the store is, never with a password.
    fn label(&self) -> String {
        match self {
            KeyedStore::Sqlite(_, path) => path.clone(),
            KeyedStore::Postgres(store) => {
                format!("{} (schema {})", store.target(), store.schema())
            }
        }
    }

    async fn rewrap_data_keys(&self, to: &dyn KeyProvider) -> Result<usize> {
        match self {
            KeyedStore::Sqlite(store, _) => store.rewrap_data_keys(to).await,
            KeyedStore::Postgres(store) => store.rewrap_data_keys(to).await,
        }
    }

    async fn rotate_data_key(&self) -> Result<DataKeyRotation> {
        match self {
            KeyedStore::Sqlite(store, _) => store.rotate_data_key().await,
            KeyedStore::Postgres(_) => Err(Error::new(
                ErrorKind::Unsupported,
                "replacing the data key (--data-key) is not supported for PostgreSQL stores yet; `keys rotate` without it replaces the master key",
            )),
        }
    }

    async fn data_keys(&self) -> Result<Vec<DataKeyInfo>> {
        match self {
            KeyedStore::Sqlite(store, _) => store.data_keys().await,
            KeyedStore::Postgres(store) => store.data_keys().await,
        }
    }
}

/// Runs a `keys` subcommand.
pub(crate) async fn run(
    command: KeysCommand,
    store: &StoreLocation,
    pg_schema: &str,
    key_file: Option<&Path>,
    out: &mut String,
) -> Result<()> {
    match command {
        KeysCommand::Init => init(key_file, out),
        KeysCommand::Rotate(args) => rotate(args, store, pg_schema, key_file, out).await,
        KeysCommand::Status => status(store, pg_schema, key_file, out).await,
    }
}

/// `keys init`: a new key file, never over an existing one.
fn init(key_file: Option<&Path>, out: &mut String) -> Result<()> {
    let path = match key_file {
        Some(path) => path.to_owned(),
        None => default_key_file().ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                "cannot find the platform data directory for the default key file; pass --key-file PATH or set INFERLINK_KEY_FILE",
            )
        })?,
    };
    let provider = FileKeyProvider::create(&path)?;
    let shown = path.display();
    let _ = writeln!(
        out,
        "created the key file {shown} (key {}), readable by its owner only",
        provider.key().id()
    );
    let _ = writeln!(
        out,
        "Back it up now, and keep the copy apart from the registry database (a password manager, a secret store, offline media): without it the stored credential values cannot be decrypted, and a backup of the database alone does not contain it."
    );
    if key_file.is_some() || std::env::var_os(crypto::KEY_FILE_ENV).is_some() {
        let _ = writeln!(
            out,
            "Use it with --key-file {shown} or INFERLINK_KEY_FILE={shown}."
        );
    } else {
        let _ = writeln!(out, "inferlink uses it by default.");
    }
    if std::env::var_os(crypto::MASTER_KEY_ENV).is_some_and(|v| !v.is_empty()) && key_file.is_none()
    {
        let _ = writeln!(
            out,
            "Note: INFERLINK_MASTER_KEY is set and takes precedence over this file; unset it to use the file."
        );
    }
    Ok(())
}

fn no_key() -> Error {
    Error::new(
        ErrorKind::Config,
        format!("no master key is configured; {}", crypto::NO_KEY_HELP),
    )
}

/// `keys rotate`: a new master key; the store's data keys re-wrapped with it.
async fn rotate(
    args: KeysRotateArgs,
    store_location: &StoreLocation,
    pg_schema: &str,
    key_file: Option<&Path>,
    out: &mut String,
) -> Result<()> {
    let location = KeyLocation::find(key_file).ok_or_else(no_key)?;
    let provider = location.open()?;
    let old_id = provider.key_id().await?;
    let new_key_file = match (&location, args.new_key_file) {
        (KeyLocation::Env, None) => {
            return Err(Error::new(
                ErrorKind::Config,
                "the master key comes from INFERLINK_MASTER_KEY, which inferlink cannot change; give --new-key-file PATH to write the new key to a new file",
            ));
        }
        (KeyLocation::Env, Some(path)) => Some(path),
        (KeyLocation::File { .. }, Some(_)) => {
            return Err(Error::invalid(
                "--new-key-file is only for a master key from INFERLINK_MASTER_KEY; a key file is replaced in place (its previous key is kept in a new file beside it)",
            ));
        }
        (KeyLocation::File { .. }, None) => None,
    };
    let store = KeyedStore::open(store_location, pg_schema, Some(provider.clone())).await?;
    let store_label = store.label();
    // Finish an interrupted rotation first: every data key under the current key.
    let finished = store.rewrap_data_keys(&*provider).await?;
    if finished > 0 {
        let _ = writeln!(
            out,
            "re-wrapped {finished} data key(s) left under a previous key (by an interrupted rotation, or by a rotation through another store sharing this key file)"
        );
    }
    if args.data_key {
        let rotation = store.rotate_data_key().await?;
        let _ = writeln!(
            out,
            "replaced the data key {} with {}; re-encrypted the credential values of {} record(s)",
            if rotation.retired.is_empty() {
                "(none yet)".to_owned()
            } else {
                rotation.retired.join(", ")
            },
            rotation.new_key,
            rotation.records
        );
    }
    let new_key = MasterKey::generate()?;
    match (&location, new_key_file) {
        (KeyLocation::File { path, .. }, _) => {
            // The new key is installed (the old one kept beside it) before the
            // data keys move to it, so a crash in between loses nothing: the
            // key file provider reads the backup too, and running this again finishes.
            let backup = replace_key_file(path, &new_key)?;
            let new_provider = StaticKeyProvider::new(new_key.clone())
                .with_source(format!("the new key in \"{}\"", path.display()));
            let rewrapped = store.rewrap_data_keys(&new_provider).await.map_err(|e| {
                Error::new(
                    e.kind(),
                    format!(
                        "{}; the new key is installed in {} and the previous one kept in {}: run `inferlink keys rotate` again to finish",
                        e.message(),
                        path.display(),
                        backup.display()
                    ),
                )
            })?;
            let _ = writeln!(
                out,
                "rotated the master key of {}: {old_id} -> {}",
                store_label,
                new_key.id()
            );
            let _ = writeln!(out, "  new key:      {}", path.display());
            let _ = writeln!(out, "  previous key: {}", backup.display());
            let _ = writeln!(out, "  data keys re-wrapped: {rewrapped}");
            let _ = writeln!(
                out,
                "Back up the new key file now. Keep the previous key as long as a store sharing this key file is still wrapped by it (see `inferlink keys status` on each) or you keep backups of the registry taken before this rotation: they need it."
            );
        }
        (KeyLocation::Env, Some(new_path)) => {
            write_key_file(&new_path, &new_key)?;
            let new_provider = StaticKeyProvider::new(new_key.clone())
                .with_source(format!("the new key in \"{}\"", new_path.display()));
            let rewrapped = store.rewrap_data_keys(&new_provider).await?;
            let _ = writeln!(
                out,
                "rotated the master key of {}: {old_id} -> {}",
                store_label,
                new_key.id()
            );
            let _ = writeln!(out, "  new key: {}", new_path.display());
            let _ = writeln!(out, "  data keys re-wrapped: {rewrapped}");
            let _ = writeln!(
                out,
                "Now give every process that opens this store the new key: set INFERLINK_MASTER_KEY to the key line of {} (or unset it and set INFERLINK_KEY_FILE={}). The old key no longer opens this store; processes that already hold its data key keep working until they restart.",
                new_path.display(),
                new_path.display()
            );
        }
        (KeyLocation::Env, None) => return Err(no_key()),
    }
    Ok(())
}

/// `keys status`: which key, from where, the previous keys it still reads,
/// and the store's data keys with whether each is readable.
async fn status(
    store_location: &StoreLocation,
    pg_schema: &str,
    key_file: Option<&Path>,
    out: &mut String,
) -> Result<()> {
    let location = KeyLocation::find(key_file);
    let (provider, problem) = match location.as_ref().map(KeyLocation::open) {
        None => (None, None),
        Some(Ok(provider)) => (Some(provider), None),
        Some(Err(e)) => (None, Some(e)),
    };
    let key_id = match &provider {
        Some(p) => Some(p.key_id().await?),
        None => None,
    };
    // Keys the provider unwraps with besides the current one (a key file's previous-key files).
    let previous: Vec<HeldKey> = match (&location, &provider) {
        (Some(KeyLocation::File { path, .. }), Some(_)) => {
            let mut held = FileKeyProvider::open(path)?.held_keys()?;
            held.remove(0);
            held
        }
        _ => Vec::new(),
    };
    match (&provider, &key_id, &problem) {
        (Some(p), Some(id), _) => {
            let _ = writeln!(out, "key:        {id}");
            let _ = writeln!(out, "source:     {}", p.source());
        }
        (_, _, Some(e)) => {
            let _ = writeln!(out, "key:        not usable: {e}");
        }
        _ => {
            let _ = writeln!(out, "key:        none configured");
            let _ = writeln!(out, "            {}", crypto::NO_KEY_HELP);
        }
    }
    for (i, held) in previous.iter().enumerate() {
        let label = if i == 0 {
            "previous:   "
        } else {
            "            "
        };
        let shown = held.file.display();
        let _ = match &held.id {
            Ok(id) => writeln!(out, "{label}{id} (kept in {shown})"),
            Err(e) => writeln!(out, "{label}not usable: {e}"),
        };
    }
    let store = KeyedStore::open(store_location, pg_schema, provider).await?;
    let keys = store.data_keys().await?;
    let _ = writeln!(out, "store:      {}", store.label());
    if keys.is_empty() {
        let _ = writeln!(
            out,
            "data keys:  none yet (made on the first write of a credential value)"
        );
    }
    let mut behind = false;
    for (i, key) in keys.iter().enumerate() {
        let (text, readable_through_previous) = describe(key, key_id.as_deref(), &previous);
        behind |= readable_through_previous;
        let _ = writeln!(
            out,
            "{}{text}",
            if i == 0 {
                "data keys:  "
            } else {
                "            "
            },
        );
    }
    if behind {
        let _ = writeln!(
            out,
            "Some data keys are wrapped by a previous key: `inferlink keys rotate` on this store moves them to the current key. Keep the previous-key files until then."
        );
    }
    Ok(())
}

/// One data key's line, and whether it is readable only through a previous key.
fn describe(key: &DataKeyInfo, configured: Option<&str>, previous: &[HeldKey]) -> (String, bool) {
    let kept_in = previous
        .iter()
        .find(|held| held.id.as_deref().is_ok_and(|id| id == key.kek_id));
    let (wrapped, behind) = match (configured, kept_in) {
        (Some(id), _) if id == key.kek_id => (
            format!("wrapped by key {} (the configured key)", key.kek_id),
            false,
        ),
        (Some(_), Some(held)) => (
            format!(
                "wrapped by key {} (a previous key, kept in {}: readable)",
                key.kek_id,
                held.file.display()
            ),
            true,
        ),
        _ => (
            format!(
                "wrapped by key {} (NOT the configured key nor a previous key it keeps: its values cannot be read)",
                key.kek_id
            ),
            false,
        ),
    };
    let text = format!(
        "{} {}, {wrapped}, created {}",
        key.id,
        if key.active { "active" } else { "retired" },
        inferlink::kit::utc_timestamp(key.created)
    );
    (text, behind)
}
