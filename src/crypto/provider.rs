//! Key-encryption key providers: the trait, the shipped providers, key files.

use std::fmt;
use std::fs;
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use zeroize::Zeroizing;

use super::{MasterKey, WrappedKey};
use crate::error::{Error, ErrorKind, Result};

/// The environment variable holding a base64-encoded 32-byte master key.
pub const MASTER_KEY_ENV: &str = "INFERLINK_MASTER_KEY";
/// The environment variable naming the key file.
pub const KEY_FILE_ENV: &str = "INFERLINK_KEY_FILE";
/// Largest key file read, in bytes (a key file is one short line plus comments).
const MAX_KEY_FILE_LEN: u64 = 16 * 1024;

mod previous;

use previous::keep_previous_key;
pub use previous::previous_key_files;

/// Supplies the key-encryption key (KEK) that wraps a store's data keys.
///
/// Implement it to keep the KEK in a KMS or HSM: `wrap_key` and `unwrap_key`
/// then call the service, and `key_id` names its current key version. A
/// provider may know several KEKs: it wraps with the current one and
/// unwraps with whichever [`WrappedKey::kek_id`] names, so data keys wrapped
/// before a rotation stay readable while stores are re-wrapped.
///
/// `context` is the data key's id; bind it to the wrapped form (as associated
/// data or an encryption context) so a wrapped key cannot be swapped for
/// another.
#[async_trait]
pub trait KeyProvider: Send + Sync + fmt::Debug {
    /// The id of the KEK that new wraps use (stored with each wrapped key; safe to print).
    async fn key_id(&self) -> Result<String>;

    /// Wraps (encrypts) the data key `key` under the current KEK.
    async fn wrap_key(&self, key: &[u8], context: &str) -> Result<WrappedKey>;

    /// Unwraps a data key wrapped by this provider (current or an older KEK it still holds).
    ///
    /// A KEK the provider does not hold is an [`ErrorKind::Config`] error
    /// ("wrong key"); damaged wrapped bytes an [`ErrorKind::Storage`] error.
    async fn unwrap_key(&self, wrapped: &WrappedKey, context: &str) -> Result<Zeroizing<Vec<u8>>>;

    /// Where the key comes from, for status output and messages (e.g. `key file "/x/master.key"`).
    fn source(&self) -> String;
}

/// Unwraps with the first of `keys` whose id matches; `None` when none does.
fn unwrap_with_any(
    keys: &[MasterKey],
    wrapped: &WrappedKey,
    context: &str,
) -> Option<Result<Zeroizing<Vec<u8>>>> {
    keys.iter()
        .find(|k| k.id() == wrapped.kek_id)
        .map(|k| k.unwrap(wrapped, context))
}

fn wrong_key(source: &str, held: &[MasterKey], wrapped: &WrappedKey, context: &str) -> Error {
    let ids: Vec<&str> = held.iter().map(MasterKey::id).collect();
    Error::new(
        ErrorKind::Config,
        format!(
            "wrong key: the store's data key \"{context}\" was wrapped by key {}, but {source} holds key {}; configure the key this store was set up (or last rotated) with",
            wrapped.kek_id,
            ids.join(", ")
        ),
    )
}

// --- A fixed key -------------------------------------------------------------------

/// A provider over keys held in memory: for hosts that fetch the KEK
/// themselves (from a secret manager), and for tests.
#[derive(Debug, Clone)]
pub struct StaticKeyProvider {
    keys: Vec<MasterKey>,
    source: String,
}

impl StaticKeyProvider {
    /// A provider whose current KEK is `key`.
    pub fn new(key: MasterKey) -> StaticKeyProvider {
        StaticKeyProvider {
            keys: vec![key],
            source: "a key given by the application".to_owned(),
        }
    }

    /// Also unwraps (never wraps) with `key`: an older KEK during a rotation.
    pub fn with_previous(mut self, key: MasterKey) -> StaticKeyProvider {
        self.keys.push(key);
        self
    }

    /// Sets the text [`KeyProvider::source`] returns.
    pub fn with_source(mut self, source: impl Into<String>) -> StaticKeyProvider {
        self.source = source.into();
        self
    }

    /// The current KEK.
    pub fn key(&self) -> &MasterKey {
        &self.keys[0]
    }
}

#[async_trait]
impl KeyProvider for StaticKeyProvider {
    async fn key_id(&self) -> Result<String> {
        Ok(self.key().id().to_owned())
    }

    async fn wrap_key(&self, key: &[u8], context: &str) -> Result<WrappedKey> {
        self.key().wrap(key, context)
    }

    async fn unwrap_key(&self, wrapped: &WrappedKey, context: &str) -> Result<Zeroizing<Vec<u8>>> {
        unwrap_with_any(&self.keys, wrapped, context)
            .unwrap_or_else(|| Err(wrong_key(&self.source, &self.keys, wrapped, context)))
    }

    fn source(&self) -> String {
        self.source.clone()
    }
}

// --- The environment ------------------------------------------------------------------

/// The KEK from an environment variable (by default [`MASTER_KEY_ENV`],
/// `INFERLINK_MASTER_KEY`) holding the base64 encoding of 32 random bytes.
///
/// The variable is read once, when the provider is made.
#[derive(Debug, Clone)]
pub struct EnvKeyProvider {
    inner: StaticKeyProvider,
}

impl EnvKeyProvider {
    /// Reads `INFERLINK_MASTER_KEY`; `None` when it is unset or empty.
    pub fn from_env() -> Result<Option<EnvKeyProvider>> {
        EnvKeyProvider::from_var(MASTER_KEY_ENV)
    }

    /// Reads the variable `name`; `None` when it is unset or empty.
    ///
    /// A value that is not a base64 32-byte key is an [`ErrorKind::Config`]
    /// error naming the variable (never quoting it).
    pub fn from_var(name: &str) -> Result<Option<EnvKeyProvider>> {
        let value = match std::env::var(name) {
            Ok(value) => Zeroizing::new(value),
            Err(std::env::VarError::NotPresent) => return Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!("{name} is not valid UTF-8; it must hold a base64-encoded 32-byte key"),
                ));
            }
        };
        if value.trim().is_empty() {
            return Ok(None);
        }
        let key = MasterKey::from_base64(&value).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("{name} is not usable: {}", e.message()),
            )
        })?;
        Ok(Some(EnvKeyProvider {
            inner: StaticKeyProvider::new(key)
                .with_source(format!("the environment variable {name}")),
        }))
    }

    /// The key.
    pub fn key(&self) -> &MasterKey {
        self.inner.key()
    }
}

#[async_trait]
impl KeyProvider for EnvKeyProvider {
    async fn key_id(&self) -> Result<String> {
        self.inner.key_id().await
    }

    async fn wrap_key(&self, key: &[u8], context: &str) -> Result<WrappedKey> {
        self.inner.wrap_key(key, context).await
    }

    async fn unwrap_key(&self, wrapped: &WrappedKey, context: &str) -> Result<Zeroizing<Vec<u8>>> {
        self.inner.unwrap_key(wrapped, context).await
    }

    fn source(&self) -> String {
        self.inner.source()
    }
}

// --- Key files -----------------------------------------------------------------------

/// The KEK from a key file: comment lines (`#`) and one line with the base64
/// encoding of 32 random bytes.
///
/// The file must be a regular file not readable or writable by group or
/// others (on Unix); otherwise opening fails with an [`ErrorKind::Config`]
/// error that says `chmod 600 <path>`.
///
/// Rotation: `inferlink keys rotate` replaces the file and keeps the
/// previous key in a new file beside it (`<path>.previous`, then
/// `<path>.previous.2`, `.3`, …; see [`replace_key_file`]), never over an
/// existing one. When asked to unwrap with a key it does not hold, the
/// provider reads the key file and every previous-key file again
/// ([`previous_key_files`]), so a process started before (or during) a
/// rotation keeps working, and a store that shares the key file with another
/// still opens after the other rotated (even several times).
#[derive(Debug)]
pub struct FileKeyProvider {
    path: PathBuf,
    /// The key file's key first, then the previous key if it was loaded.
    keys: Mutex<Vec<MasterKey>>,
}

impl FileKeyProvider {
    /// Reads the key file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<FileKeyProvider> {
        let path = path.as_ref().to_owned();
        let key = read_key_file(&path)?;
        Ok(FileKeyProvider {
            path,
            keys: Mutex::new(vec![key]),
        })
    }

    /// Writes a new random key to a new key file at `path` (see [`write_key_file`]) and opens it.
    pub fn create(path: impl AsRef<Path>) -> Result<FileKeyProvider> {
        let path = path.as_ref();
        write_key_file(path, &MasterKey::generate()?)?;
        FileKeyProvider::open(path)
    }

    /// The key file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current key (the one the file held when last read).
    pub fn key(&self) -> MasterKey {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)[0].clone()
    }

    /// Reads the key file and its previous-key files again.
    fn reload(&self) -> Result<Vec<MasterKey>> {
        let mut keys = vec![read_key_file(&self.path)?];
        for file in previous_key_files(&self.path)? {
            match read_key_file(&file) {
                Ok(key) => keys.push(key),
                Err(e) => tracing::warn!("ignoring a previous key file: {e}"),
            }
        }
        *self.keys.lock().unwrap_or_else(PoisonError::into_inner) = keys.clone();
        Ok(keys)
    }

    /// Every key this provider can unwrap with, read from the files again: the
    /// key file's key first, then each previous-key file in order. A
    /// previous-key file that cannot be used is listed with its error.
    pub fn held_keys(&self) -> Result<Vec<HeldKey>> {
        let current = read_key_file(&self.path)?;
        let mut held = vec![HeldKey {
            file: self.path.clone(),
            id: Ok(current.id().to_owned()),
        }];
        for file in previous_key_files(&self.path)? {
            let id = read_key_file(&file).map(|k| k.id().to_owned());
            held.push(HeldKey { file, id });
        }
        Ok(held)
    }
}

/// One key file a [`FileKeyProvider`] reads, and the id of its key.
#[derive(Debug)]
pub struct HeldKey {
    /// The file.
    pub file: PathBuf,
    /// The key's id, or why the file cannot be used.
    pub id: Result<String>,
}

#[async_trait]
impl KeyProvider for FileKeyProvider {
    async fn key_id(&self) -> Result<String> {
        Ok(self.key().id().to_owned())
    }

    async fn wrap_key(&self, key: &[u8], context: &str) -> Result<WrappedKey> {
        self.key().wrap(key, context)
    }

    async fn unwrap_key(&self, wrapped: &WrappedKey, context: &str) -> Result<Zeroizing<Vec<u8>>> {
        let known = self
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(result) = unwrap_with_any(&known, wrapped, context) {
            return result;
        }
        // Perhaps the key was rotated since the file was read.
        let keys = self.reload()?;
        unwrap_with_any(&keys, wrapped, context)
            .unwrap_or_else(|| Err(wrong_key(&self.source(), &keys, wrapped, context)))
    }

    fn source(&self) -> String {
        format!("the key file \"{}\"", self.path.display())
    }
}

/// The first previous-key file of a key file: `<path>.previous`. Later
/// rotations use `<path>.previous.2`, `.3`, … ([`previous_key_files`]).
pub fn previous_key_file(path: &Path) -> PathBuf {
    sibling(path, ".previous")
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(suffix);
    path.with_file_name(name)
}

fn key_file_error(path: &Path, why: impl fmt::Display) -> Error {
    Error::new(
        ErrorKind::Config,
        format!("cannot use the key file \"{}\": {why}", path.display()),
    )
}

/// Reads and checks one key file.
///
/// Only a regular file of at most [`MAX_KEY_FILE_LEN`] bytes is read. Its
/// type and size are checked from its metadata *before* it is opened, so a
/// FIFO (whose opening would wait for a writer), a device such as
/// `/dev/zero` or a huge file is refused at once; the opened file is checked
/// again, and read through a bounded reader.
fn read_key_file(path: &Path) -> Result<MasterKey> {
    let shown = path.display();
    let not_found = |e: io::Error| match e.kind() {
        io::ErrorKind::NotFound => key_file_error(
            path,
            format!("it does not exist; create it with `inferlink keys init --key-file {shown}`"),
        ),
        _ => key_file_error(path, e),
    };
    check_key_file_metadata(path, &fs::metadata(path).map_err(not_found)?)?;
    let mut file = fs::File::open(path).map_err(not_found)?;
    let meta = file.metadata().map_err(|e| key_file_error(path, e))?;
    check_key_file_metadata(path, &meta)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(key_file_error(
                path,
                format!(
                    "it can be read or written by group or others (mode {mode:04o}); restrict it to its owner with `chmod 600 {shown}`"
                ),
            ));
        }
    }
    let mut text = Zeroizing::new(String::new());
    io::Read::by_ref(&mut file)
        .take(MAX_KEY_FILE_LEN)
        .read_to_string(&mut text)
        .map_err(|e| key_file_error(path, e))?;
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let (Some(line), None) = (lines.next(), lines.next()) else {
        return Err(key_file_error(
            path,
            "it must hold exactly one key line (base64 of 32 random bytes) besides `#` comments",
        ));
    };
    MasterKey::from_base64(line).map_err(|e| key_file_error(path, e.message()))
}

/// Refuses anything but a regular file of at most [`MAX_KEY_FILE_LEN`] bytes.
fn check_key_file_metadata(path: &Path, meta: &fs::Metadata) -> Result<()> {
    if !meta.is_file() {
        let what = if meta.is_dir() {
            "a directory"
        } else {
            special_file_kind(meta)
        };
        return Err(key_file_error(
            path,
            format!("it is {what}, not a regular file"),
        ));
    }
    if meta.len() > MAX_KEY_FILE_LEN {
        return Err(key_file_error(
            path,
            format!(
                "it is {} bytes long; a key file is one line (at most {MAX_KEY_FILE_LEN} bytes are read)",
                meta.len()
            ),
        ));
    }
    Ok(())
}

#[cfg(unix)]
fn special_file_kind(meta: &fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let kind = meta.file_type();
    if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

#[cfg(not(unix))]
fn special_file_kind(_meta: &fs::Metadata) -> &'static str {
    "a special file"
}

fn key_file_text(key: &MasterKey) -> Zeroizing<String> {
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Zeroizing::new(format!(
        "# inferlink master key (key-encryption key) {id}, created at unix time {created}.\n\
         # Back this file up separately from the registry database: without it the\n\
         # credential values stored in the registry cannot be decrypted.\n\
         # Keep it readable by its owner only (chmod 600).\n\
         {key}\n",
        id = key.id(),
        key = &*key.to_base64(),
    ))
}

/// Creates `dir` and its missing parents with mode 0700 (on Unix).
#[cfg(unix)]
pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Creates `dir` and its missing parents.
#[cfg(not(unix))]
pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

/// Creates `path` (never an existing file) with mode 0600, writes `text` and syncs it.
fn write_new_private(path: &Path, text: &str) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_all());
    if written.is_err() {
        let _ = fs::remove_file(path);
    }
    written
}

fn sync_dir(path: &Path) {
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        // Makes the new directory entry durable; failure only weakens durability.
        if let Ok(dir) = fs::File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Writes `key` to a new key file at `path`: created with mode 0600 (its
/// missing directories 0700), synced to disk. An existing file is never
/// overwritten ([`ErrorKind::AlreadyExists`]): it may hold the only copy of a key.
pub fn write_key_file(path: &Path, key: &MasterKey) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.exists()
    {
        create_private_dir(parent)
            .map_err(|e| key_file_error(path, format!("cannot create its directory: {e}")))?;
    }
    write_new_private(path, &key_file_text(key)).map_err(|e| match e.kind() {
        io::ErrorKind::AlreadyExists => Error::new(
            ErrorKind::AlreadyExists,
            format!(
                "the key file \"{}\" already exists; inferlink never overwrites a key file (it may hold the only copy of a key). Use it, or choose another path with --key-file",
                path.display()
            ),
        ),
        _ => key_file_error(path, format!("cannot write it: {e}")),
    })?;
    sync_dir(path);
    Ok(())
}

/// Installs `new_key` in the existing key file at `path`, keeping the key it
/// held in a previous-key file. Returns that file's path.
///
/// An existing previous-key file is never overwritten (several stores may
/// share one key file, and each may still need an older key): the old key
/// goes to `<path>.previous` when that does not exist yet, else to
/// `<path>.previous.N` with N one more than the highest present. When a
/// previous-key file already holds the old key, it is reused.
///
/// The backup is complete and synced before `path` changes, and `path` is
/// replaced atomically (written aside, synced, renamed), so a crash leaves
/// either the old or the new key at `path`, and the old key readable.
pub fn replace_key_file(path: &Path, new_key: &MasterKey) -> Result<PathBuf> {
    let old = read_key_file(path)?;
    let staged_previous = sibling(path, ".previous.tmp");
    let staged = sibling(path, ".new");
    for leftover in [&staged_previous, &staged] {
        // Leftovers of an interrupted run: never-installed files.
        match fs::remove_file(leftover) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(key_file_error(leftover, format!("cannot remove it: {e}"))),
        }
    }
    let existing = previous_key_files(path)?;
    let kept = existing.iter().find(|file| {
        read_key_file(file)
            .map(|k| k.id() == old.id())
            .unwrap_or(false)
    });
    let previous = match kept {
        Some(file) => file.clone(),
        None => keep_previous_key(path, &existing, &old, &staged_previous)?,
    };
    write_new_private(&staged, &key_file_text(new_key))
        .map_err(|e| key_file_error(&staged, format!("cannot write it: {e}")))?;
    fs::rename(&staged, path)
        .map_err(|e| key_file_error(path, format!("cannot replace it: {e}")))?;
    sync_dir(path);
    Ok(previous)
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The key file used when none is given: `$INFERLINK_KEY_FILE`, else
/// `<data dir>/inferlink/master.key` (e.g. `~/.local/share/inferlink/master.key`
/// on Linux); `None` when neither can be determined.
pub fn default_key_file() -> Option<PathBuf> {
    env_path(KEY_FILE_ENV)
        .or_else(|| dirs::data_dir().map(|d| d.join("inferlink").join("master.key")))
}

/// Where the key-encryption key comes from (see [`KeyLocation::find`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLocation {
    /// The environment variable `INFERLINK_MASTER_KEY`.
    Env,
    /// A key file.
    File {
        /// The key file.
        path: PathBuf,
        /// Named explicitly (a `--key-file` flag or `INFERLINK_KEY_FILE`), so it must exist;
        /// `false` for the default path, which is used only when it exists.
        explicit: bool,
    },
}

impl KeyLocation {
    /// Finds the key, in this order:
    ///
    /// 1. `key_file`, when given;
    /// 2. `INFERLINK_MASTER_KEY`, when set and not empty;
    /// 3. `INFERLINK_KEY_FILE`, when set and not empty;
    /// 4. `<data dir>/inferlink/master.key`, when that file exists.
    ///
    /// `None` when none applies.
    pub fn find(key_file: Option<&Path>) -> Option<KeyLocation> {
        if let Some(path) = key_file {
            return Some(KeyLocation::File {
                path: path.to_owned(),
                explicit: true,
            });
        }
        if std::env::var_os(MASTER_KEY_ENV).is_some_and(|v| !v.is_empty()) {
            return Some(KeyLocation::Env);
        }
        if let Some(path) = env_path(KEY_FILE_ENV) {
            return Some(KeyLocation::File {
                path,
                explicit: true,
            });
        }
        dirs::data_dir()
            .map(|d| d.join("inferlink").join("master.key"))
            .filter(|path| path.exists())
            .map(|path| KeyLocation::File {
                path,
                explicit: false,
            })
    }

    /// Loads the key from here: an [`EnvKeyProvider`] or a [`FileKeyProvider`].
    pub fn open(&self) -> Result<Arc<dyn KeyProvider>> {
        match self {
            KeyLocation::Env => match EnvKeyProvider::from_env()? {
                Some(provider) => Ok(Arc::new(provider)),
                None => Err(Error::new(
                    ErrorKind::Config,
                    format!("{MASTER_KEY_ENV} is not set"),
                )),
            },
            KeyLocation::File { path, .. } => Ok(Arc::new(FileKeyProvider::open(path)?)),
        }
    }
}

/// The key provider the CLI uses, and hosts may use: [`load_key_provider`] with no key file given.
pub fn default_key_provider() -> Result<Option<Arc<dyn KeyProvider>>> {
    load_key_provider(None)
}

/// The key found by [`KeyLocation::find`], loaded.
///
/// `Ok(None)` when there is none: stores then keep records without
/// credential values only. A key that is named but unusable (malformed, a
/// missing explicit key file, a key file readable by others) is an
/// [`ErrorKind::Config`] error.
pub fn load_key_provider(key_file: Option<&Path>) -> Result<Option<Arc<dyn KeyProvider>>> {
    KeyLocation::find(key_file)
        .map(|location| location.open())
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn key_files_are_created_private_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/master.key");
        let provider = FileKeyProvider::create(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(&dir.path().join("nested")), 0o700);
        }
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains(provider.key().id()), "{text}");
        assert!(text.contains("Back this file up"), "{text}");
        let e = write_key_file(&path, &MasterKey::generate().unwrap()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
        assert_eq!(fs::read_to_string(&path).unwrap(), text, "untouched");
        let again = FileKeyProvider::open(&path).unwrap();
        assert_eq!(again.key_id().await.unwrap(), provider.key().id());
        assert!(again.source().contains("master.key"));
        assert!(!format!("{again:?}").contains(&*provider.key().to_base64()));
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_readable_by_others_is_refused_with_chmod_advice() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        write_key_file(&path, &MasterKey::generate().unwrap()).unwrap();
        for mode in [0o644, 0o640, 0o604, 0o660] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            let e = FileKeyProvider::open(&path).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{e}");
            assert!(
                e.message()
                    .contains(&format!("chmod 600 {}", path.display())),
                "{e}"
            );
            assert!(e.message().contains(&format!("{mode:04o}")), "{e}");
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        FileKeyProvider::open(&path).unwrap();
    }

    #[test]
    fn bad_key_files_are_config_errors_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.key");
        let e = FileKeyProvider::open(&missing).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(
            e.message().contains("inferlink keys init --key-file"),
            "{e}"
        );
        for (name, text) in [
            ("empty", "# only a comment\n"),
            ("two", "AAAA\nBBBB\n"),
            ("short", "c2hvcnQ=\n"),
        ] {
            let path = dir.path().join(name);
            write_new_private(&path, text).unwrap();
            let e = FileKeyProvider::open(&path).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{name}: {e}");
            assert!(e.message().contains(name), "{e}");
        }
        let e = FileKeyProvider::open(dir.path()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    }

    #[tokio::test]
    async fn a_replaced_key_file_keeps_the_previous_key_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let started = FileKeyProvider::create(&path).unwrap();
        let old_id = started.key().id().to_owned();
        let wrapped_old = started.wrap_key(&[1u8; 32], "dek").await.unwrap();
        let new_key = MasterKey::generate().unwrap();
        let backup = replace_key_file(&path, &new_key).unwrap();
        assert_eq!(backup, dir.path().join("master.key.previous"));
        assert!(!dir.path().join("master.key.new").exists());
        // A provider opened after the rotation reads both.
        let fresh = FileKeyProvider::open(&path).unwrap();
        assert_eq!(fresh.key_id().await.unwrap(), new_key.id());
        assert_eq!(
            *fresh.unwrap_key(&wrapped_old, "dek").await.unwrap(),
            vec![1u8; 32]
        );
        // A provider opened before it finds the new key on demand.
        let wrapped_new = new_key.wrap(&[2u8; 32], "dek").unwrap();
        assert_eq!(
            *started.unwrap_key(&wrapped_new, "dek").await.unwrap(),
            vec![2u8; 32]
        );
        assert_eq!(started.key_id().await.unwrap(), new_key.id());
        // A key never held: a config error listing what is held.
        let stranger = MasterKey::generate()
            .unwrap()
            .wrap(&[3u8; 32], "dek")
            .unwrap();
        let e = fresh.unwrap_key(&stranger, "dek").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        assert!(e.message().contains("wrong key"), "{e}");
        assert!(e.message().contains(&old_id), "{e}");
    }

    #[tokio::test]
    async fn rotating_a_shared_key_file_twice_never_overwrites_a_previous_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let first = FileKeyProvider::create(&path).unwrap();
        // Store B's data key, wrapped by the first key; store A rotates twice.
        let wrapped_by_first = first.wrap_key(&[7u8; 32], "dek-b").await.unwrap();
        let second = MasterKey::generate().unwrap();
        let third = MasterKey::generate().unwrap();
        let kept1 = replace_key_file(&path, &second).unwrap();
        let first_text = fs::read_to_string(&kept1).unwrap();
        let kept2 = replace_key_file(&path, &third).unwrap();
        assert_eq!(kept1, dir.path().join("master.key.previous"));
        assert_eq!(kept2, dir.path().join("master.key.previous.2"));
        assert_eq!(fs::read_to_string(&kept1).unwrap(), first_text, "untouched");
        assert_eq!(
            previous_key_files(&path).unwrap(),
            vec![kept1.clone(), kept2.clone()]
        );
        // B still opens: the first key is read from `.previous`.
        let fresh = FileKeyProvider::open(&path).unwrap();
        assert_eq!(
            *fresh.unwrap_key(&wrapped_by_first, "dek-b").await.unwrap(),
            vec![7u8; 32]
        );
        let held: Vec<String> = fresh
            .held_keys()
            .unwrap()
            .into_iter()
            .map(|h| h.id.unwrap())
            .collect();
        assert_eq!(
            held,
            vec![third.id(), first.key().id(), second.id()],
            "current, then previous files in order"
        );
        // Rotating again from a key already kept reuses its file; a tenth file is numbered on.
        for _ in 0..8 {
            replace_key_file(&path, &MasterKey::generate().unwrap()).unwrap();
        }
        assert_eq!(previous_key_files(&path).unwrap().len(), 10);
        assert!(dir.path().join("master.key.previous.10").exists());
        assert!(!dir.path().join("master.key.previous.tmp").exists());
    }

    /// Runs `open` on another thread; a hang fails the test instead of blocking it.
    fn refused_without_hanging(path: PathBuf) -> Error {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(FileKeyProvider::open(&path).map(|_| ()));
        });
        rx.recv_timeout(std::time::Duration::from_secs(60))
            .expect("opening the key file hung")
            .unwrap_err()
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_as_key_file_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("master.key");
        let made = std::process::Command::new("mkfifo")
            .arg("-m")
            .arg("600")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success());
        let e = refused_without_hanging(fifo);
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        assert!(e.message().contains("a FIFO"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn dev_zero_and_huge_files_as_key_file_are_refused() {
        let e = refused_without_hanging(PathBuf::from("/dev/zero"));
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        assert!(e.message().contains("character device"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let huge = dir.path().join("huge.key");
        write_new_private(&huge, "").unwrap();
        fs::OpenOptions::new()
            .write(true)
            .open(&huge)
            .unwrap()
            .set_len(8 << 30)
            .unwrap();
        let e = refused_without_hanging(huge);
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        assert!(e.message().contains("8589934592 bytes"), "{e}");
    }

    #[tokio::test]
    async fn static_providers_unwrap_with_previous_keys_only_when_given() {
        let old = MasterKey::generate().unwrap();
        let new = MasterKey::generate().unwrap();
        let wrapped = old.wrap(&[5u8; 32], "d").unwrap();
        let only_new = StaticKeyProvider::new(new.clone());
        assert!(only_new.unwrap_key(&wrapped, "d").await.is_err());
        let both = StaticKeyProvider::new(new.clone()).with_previous(old);
        assert_eq!(
            *both.unwrap_key(&wrapped, "d").await.unwrap(),
            vec![5u8; 32]
        );
        assert_eq!(
            both.wrap_key(&[0u8; 32], "d").await.unwrap().kek_id,
            new.id()
        );
    }
}
