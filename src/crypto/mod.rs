//! Encryption at rest of credential values: envelope encryption with
//! XChaCha20-Poly1305.
//!
//! # The scheme
//!
//! * A **key-encryption key** (KEK, a [`MasterKey`]) comes from a
//!   [`KeyProvider`]: the `INFERLINK_MASTER_KEY` environment variable
//!   ([`EnvKeyProvider`]), a key file ([`FileKeyProvider`]), a fixed key
//!   ([`StaticKeyProvider`]), or the host's own KMS (implement the trait).
//! * Each durable store has a random 256-bit **data key** ([`DataKey`],
//!   DEK). The store keeps it only *wrapped* (encrypted) by the KEK, as a
//!   [`WrappedKey`] that records which KEK wrapped it.
//! * Every credential configuration value is **sealed** under the DEK with
//!   XChaCha20-Poly1305 and a fresh random 24-byte nonce, into a
//!   self-describing string:
//!
//!   ```text
//!   inferlink:enc:v1:<data key id>:<base64url, no padding, of nonce ‖ ciphertext ‖ tag>
//!   ```
//!
//! * The **associated data** of each value binds the format version, the data
//!   key id, the record id, the service id, the credential id and the
//!   configuration key, each length-prefixed (a 4-byte big-endian length, then
//!   the UTF-8 bytes) so no two different places produce the same bytes. A
//!   sealed value copied to another record, service, credential or key fails
//!   to open with an error naming where it was found.
//!
//! # For stores
//!
//! A store holds a [`Keyring`] (its unwrapped data keys, one of them active)
//! and uses [`Keyring::seal_record`] before writing and
//! [`Keyring::open_record`] after reading; [`seal_record_body`] and
//! [`open_record`] add the "no key configured" handling. [`record_has_secrets`]
//! tells whether a write needs a key at all, and [`sealed_key_ids`] which data
//! keys a stored record needs. `SqliteStore` uses exactly this API; any other
//! durable store (PostgreSQL) should too, so the ciphertext format is one.
//!
//! Every record a keyed store writes also carries an **integrity tag**, an
//! HMAC under a key derived from the data key over the whole stored body, its
//! id and its revision, so a database writer without the master key cannot
//! redirect credentials by editing a row; see [`TagCheck`] and
//! `docs/keys.md` ("Threat model").
//!
//! Key bytes are wiped from memory on drop (`zeroize`), and no `Debug` output
//! shows them; only key ids (fingerprints) are ever printed.
//!
//! ```
//! use inferlink::crypto::{DataKey, Keyring, SecretSlot};
//!
//! let keyring = Keyring::new(DataKey::generate()?);
//! let slot = SecretSlot { record: "minio", service: "s3", credential: "admin", key: "SECRET" };
//! let sealed = keyring.seal(&slot, "s3cr3t")?;
//! assert!(sealed.starts_with("inferlink:enc:v1:"));
//! assert_eq!(keyring.open(&slot, &sealed)?.expose(), "s3cr3t");
//! // The same ciphertext under another key name does not open.
//! let moved = SecretSlot { key: "OTHER", ..slot };
//! assert!(keyring.open(&moved, &sealed).is_err());
//! # Ok::<(), inferlink::Error>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, AeadInOut, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};
use crate::format::{Secrets, to_json_compact};
use crate::model::ExtensionRecord;
use crate::secret::Secret;

mod integrity;
mod provider;

pub use integrity::{
    BodyDigest, INTEGRITY_KEY_PREFIX, TAG_PREFIX, TagCheck, is_integrity_key_id, tampered_error,
};

#[cfg(feature = "store-sqlite")]
pub(crate) use provider::create_private_dir;

pub use provider::{
    EnvKeyProvider, FileKeyProvider, HeldKey, KEY_FILE_ENV, KeyLocation, KeyProvider,
    MASTER_KEY_ENV, StaticKeyProvider, default_key_file, default_key_provider, load_key_provider,
    previous_key_file, previous_key_files, replace_key_file, write_key_file,
};

/// The prefix of every sealed value, before the version.
pub const SEALED_PREFIX: &str = "inferlink:enc:";
/// The ciphertext format version this release writes (and the only one it reads).
pub const SEALED_VERSION: &str = "v1";
/// Length of a key (KEK or DEK) in bytes.
pub const KEY_LEN: usize = 32;
/// Length of an XChaCha20-Poly1305 nonce in bytes.
pub const NONCE_LEN: usize = 24;
/// Length of the Poly1305 authentication tag in bytes.
const TAG_LEN: usize = 16;
/// First byte of a [`WrappedKey`]'s bytes as written by this release's providers.
const WRAP_VERSION: u8 = 1;

/// What to do when a durable store has no key: the text every "no key" error ends with.
pub const NO_KEY_HELP: &str = "create a key with `inferlink keys init` (writes a key file, by default <data dir>/inferlink/master.key; `--key-file PATH` or INFERLINK_KEY_FILE choose another), or set INFERLINK_MASTER_KEY to a base64-encoded 32-byte key";

/// 32 key bytes that are wiped from memory on drop (input of [`MasterKey::from_bytes`]).
pub type KeyBytes = Zeroizing<[u8; KEY_LEN]>;

/// Fills `buf` with random bytes from the operating system.
pub(crate) fn random_bytes(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| {
        Error::new(
            ErrorKind::Internal,
            format!("the operating system's random number generator failed: {e}"),
        )
    })
}

/// Appends `field` with a 4-byte big-endian length prefix.
fn push_field(out: &mut Vec<u8>, field: &str) {
    // Fields are ids and keys (bounded far below 4 GiB by validation); saturate anyway.
    let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(field.as_bytes());
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn cipher(key: &[u8; KEY_LEN]) -> XChaCha20Poly1305 {
    // A 32-byte slice is always a valid key for this cipher.
    XChaCha20Poly1305::new_from_slice(key).unwrap_or_else(|_| unreachable!("32-byte key"))
}

/// Encrypts `plaintext` under `key` with a fresh nonce; returns `nonce ‖ ciphertext ‖ tag`.
fn encrypt(key: &[u8; KEY_LEN], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let mut nonce = [0u8; NONCE_LEN];
    random_bytes(&mut nonce)?;
    encrypt_with_nonce(key, nonce, aad, plaintext)
}

/// [`encrypt`] with a nonce the caller drew from the operating system's
/// random number generator (one draw for every value of a record).
fn encrypt_with_nonce(
    key: &[u8; KEY_LEN],
    nonce: [u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    let sealed = cipher(key)
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| Error::new(ErrorKind::Internal, "encryption failed"))?;
    let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Why [`decrypt`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DecryptFailure {
    /// Shorter than a nonce and a tag.
    Truncated,
    /// The tag does not verify: altered bytes, other associated data, or another key.
    Authentication,
}

/// Decrypts `nonce ‖ ciphertext ‖ tag` under `key`.
fn decrypt(
    key: &[u8; KEY_LEN],
    aad: &[u8],
    sealed: &[u8],
) -> std::result::Result<Zeroizing<Vec<u8>>, DecryptFailure> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Err(DecryptFailure::Truncated);
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce = XNonce::try_from(nonce).map_err(|_| DecryptFailure::Truncated)?;
    let mut buffer = Zeroizing::new(body.to_vec());
    cipher(key)
        .decrypt_in_place(&nonce, aad, &mut *buffer)
        .map_err(|_| DecryptFailure::Authentication)?;
    Ok(buffer)
}

// --- Key-encryption keys -------------------------------------------------------

/// A key-encryption key (KEK): 32 random bytes that wrap data keys.
///
/// Its [`MasterKey::id`] is a fingerprint (the first 16 hex digits of a
/// SHA-256 over a fixed label and the key), safe to print and store; the key
/// bytes are wiped on drop and never shown by `Debug`.
#[derive(Clone)]
pub struct MasterKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
    id: String,
}

impl MasterKey {
    /// A new random key from the operating system's random number generator.
    pub fn generate() -> Result<MasterKey> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        random_bytes(&mut *bytes)?;
        Ok(MasterKey::from_bytes(bytes))
    }

    /// The key with these bytes.
    pub fn from_bytes(bytes: KeyBytes) -> MasterKey {
        let mut hasher = Sha256::new();
        hasher.update(b"inferlink key id v1\0");
        hasher.update(bytes.as_slice());
        let digest = hasher.finalize();
        MasterKey {
            id: hex(&digest[..8]),
            bytes,
        }
    }

    /// Decodes a base64 (standard or URL-safe alphabet, padding optional) 32-byte key.
    ///
    /// Surrounding whitespace is ignored. The error never quotes the text.
    pub fn from_base64(text: &str) -> Result<MasterKey> {
        use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE};
        let text = text.trim();
        let decoded = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(text).ok())
            .map(Zeroizing::new);
        let Some(decoded) = decoded else {
            return Err(Error::new(
                ErrorKind::Config,
                "the key is not valid base64 (expected the base64 encoding of 32 random bytes)",
            ));
        };
        let bytes: [u8; KEY_LEN] = decoded.as_slice().try_into().map_err(|_| {
            Error::new(
                ErrorKind::Config,
                format!(
                    "the key decodes to {} bytes; a key is exactly {KEY_LEN} bytes (base64 of 32 random bytes, 44 characters)",
                    decoded.len()
                ),
            )
        })?;
        Ok(MasterKey::from_bytes(Zeroizing::new(bytes)))
    }

    /// The key as standard base64 (with padding): what key files and `INFERLINK_MASTER_KEY` hold.
    pub fn to_base64(&self) -> Zeroizing<String> {
        use base64::engine::general_purpose::STANDARD;
        Zeroizing::new(STANDARD.encode(self.bytes.as_slice()))
    }

    /// The key's id (fingerprint), 16 hex digits.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn wrap_aad(kek_id: &str, context: &str) -> Vec<u8> {
        let mut aad = Vec::with_capacity(64);
        push_field(&mut aad, "inferlink:wrap:v1");
        push_field(&mut aad, kek_id);
        push_field(&mut aad, context);
        aad
    }

    /// Wraps (encrypts) `key` under this KEK, bound to `context` (the data key's id).
    pub fn wrap(&self, key: &[u8], context: &str) -> Result<WrappedKey> {
        let sealed = encrypt(&self.bytes, &Self::wrap_aad(&self.id, context), key)?;
        let mut bytes = Vec::with_capacity(1 + sealed.len());
        bytes.push(WRAP_VERSION);
        bytes.extend_from_slice(&sealed);
        Ok(WrappedKey {
            kek_id: self.id.clone(),
            bytes,
        })
    }

    /// Unwraps a key wrapped by [`MasterKey::wrap`] with the same `context`.
    ///
    /// Errors: [`ErrorKind::Config`] when another KEK wrapped it (the wrong
    /// key is configured); [`ErrorKind::Storage`] when the wrapped bytes are
    /// damaged or belong to another context.
    pub fn unwrap(&self, wrapped: &WrappedKey, context: &str) -> Result<Zeroizing<Vec<u8>>> {
        if wrapped.kek_id != self.id {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "data key \"{context}\" was wrapped by key {}, but the configured key is {}: wrong key",
                    wrapped.kek_id, self.id
                ),
            ));
        }
        let damaged = |why: &str| {
            Error::new(
                ErrorKind::Storage,
                format!("the wrapped data key \"{context}\" cannot be unwrapped: {why}"),
            )
        };
        match wrapped.bytes.split_first() {
            Some((&WRAP_VERSION, rest)) => {
                decrypt(&self.bytes, &Self::wrap_aad(&self.id, context), rest).map_err(
                    |failure| match failure {
                        DecryptFailure::Truncated => damaged("it is truncated"),
                        DecryptFailure::Authentication => damaged(
                            "authentication failed (the stored bytes were altered, or belong to another data key)",
                        ),
                    },
                )
            }
            Some((version, _)) => Err(damaged(&format!(
                "unknown wrapping format {version} (written by a newer inferlink?)"
            ))),
            None => Err(damaged("it is empty")),
        }
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A data key wrapped (encrypted) by a key-encryption key: what a store keeps.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey {
    /// The id of the KEK that wrapped it (see [`MasterKey::id`] or the provider's own ids).
    pub kek_id: String,
    /// The wrapped bytes, in the provider's format.
    pub bytes: Vec<u8>,
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrappedKey")
            .field("kek_id", &self.kek_id)
            .field("len", &self.bytes.len())
            .finish()
    }
}

// --- Data keys -------------------------------------------------------------------

/// A data key (DEK): 32 random bytes that seal credential values, with an id.
///
/// The id (16 hex digits, random) is written into every value it seals.
#[derive(Clone)]
pub struct DataKey {
    id: String,
    bytes: Zeroizing<[u8; KEY_LEN]>,
}

impl DataKey {
    /// A new random data key with a new random id.
    ///
    /// The id starts with [`INTEGRITY_KEY_PREFIX`]: a store whose active key
    /// is one requires an integrity tag on every record (see [`TagCheck`]).
    pub fn generate() -> Result<DataKey> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        random_bytes(&mut *bytes)?;
        let mut id = [0u8; 8];
        random_bytes(&mut id)?;
        Ok(DataKey {
            id: format!("{INTEGRITY_KEY_PREFIX}{}", hex(&id)),
            bytes,
        })
    }

    /// The data key `id` with these bytes (e.g. just unwrapped).
    ///
    /// The id must be 1 to 64 characters of `[A-Za-z0-9_-]`; the key exactly 32 bytes.
    pub fn from_bytes(id: impl Into<String>, bytes: &[u8]) -> Result<DataKey> {
        let id = id.into();
        check_key_id(&id)?;
        let bytes: [u8; KEY_LEN] = bytes.try_into().map_err(|_| {
            Error::new(
                ErrorKind::Storage,
                format!(
                    "data key \"{id}\" is {} bytes long, not {KEY_LEN}",
                    bytes.len()
                ),
            )
        })?;
        Ok(DataKey {
            id,
            bytes: Zeroizing::new(bytes),
        })
    }

    /// The id written into every value this key seals.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Wraps this key with `provider`'s current KEK (the context is the key's id).
    pub async fn wrap_with(&self, provider: &dyn KeyProvider) -> Result<WrappedKey> {
        provider.wrap_key(&*self.bytes, &self.id).await
    }

    /// Unwraps the data key `id` from `wrapped` with `provider`.
    pub async fn unwrap_with(
        id: &str,
        wrapped: &WrappedKey,
        provider: &dyn KeyProvider,
    ) -> Result<DataKey> {
        let bytes = provider.unwrap_key(wrapped, id).await?;
        DataKey::from_bytes(id, &bytes)
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn check_key_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Storage,
            "a data key id must be 1 to 64 characters of letters, digits, '_' and '-'",
        ))
    }
}

// --- Sealing values ----------------------------------------------------------------

/// Where a credential value lives: what its associated data binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretSlot<'a> {
    /// The record id.
    pub record: &'a str,
    /// The service id.
    pub service: &'a str,
    /// The credential set's id.
    pub credential: &'a str,
    /// The configuration key.
    pub key: &'a str,
}

impl SecretSlot<'_> {
    fn aad(&self, key_id: &str) -> Vec<u8> {
        let mut aad = Vec::with_capacity(96);
        push_field(&mut aad, SEALED_PREFIX);
        push_field(&mut aad, SEALED_VERSION);
        push_field(&mut aad, key_id);
        push_field(&mut aad, self.record);
        push_field(&mut aad, self.service);
        push_field(&mut aad, self.credential);
        push_field(&mut aad, self.key);
        aad
    }

    /// `services[<id>].credentials[<id>].configuration.<key>` of record `<id>`, for messages.
    fn describe(&self) -> String {
        format!(
            "the credential value services[\"{}\"].credentials[\"{}\"].configuration.{} of record \"{}\"",
            self.service, self.credential, self.key, self.record
        )
    }
}

/// True when `value` has the form of a sealed value (`inferlink:enc:…`).
pub fn is_sealed(value: &str) -> bool {
    value.starts_with(SEALED_PREFIX)
}

/// A sealed value split into its parts.
struct Sealed<'v> {
    key_id: &'v str,
    payload: &'v str,
}

fn parse_sealed<'v>(slot: &SecretSlot<'_>, value: &'v str) -> Result<Sealed<'v>> {
    let corrupt = |why: &str| {
        Error::new(
            ErrorKind::Storage,
            format!("{} cannot be decrypted: {why}", slot.describe()),
        )
        .with_context("record", slot.record)
    };
    let Some(rest) = value.strip_prefix(SEALED_PREFIX) else {
        return Err(corrupt(
            "it is stored in clear text, not sealed; write the record again to encrypt it",
        ));
    };
    let mut parts = rest.splitn(3, ':');
    let (Some(version), Some(key_id), Some(payload)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(corrupt("the sealed value is truncated (it lacks a part)"));
    };
    if version != SEALED_VERSION {
        let shown: String = version.chars().take(16).collect();
        return Err(corrupt(&format!(
            "unknown format version \"{}\" (this inferlink reads {SEALED_VERSION}; was it written by a newer one?)",
            shown.escape_debug()
        )));
    }
    if check_key_id(key_id).is_err() {
        return Err(corrupt("its data key id is malformed"));
    }
    Ok(Sealed { key_id, payload })
}

/// The data keys of a store, unwrapped: one *active* key seals new values, the
/// others (if any) only open older ones.
///
/// This is the store-neutral sealing API: a durable store seals every record
/// with [`Keyring::seal_record`] (or [`seal_record_body`]) before writing, and
/// opens it with [`Keyring::open_record`] (or [`open_record`]) after reading.
pub struct Keyring {
    keys: BTreeMap<String, DataKey>,
    active: String,
    /// The record-tag key derived from each data key (see [`TagCheck`]), by data key id.
    tag_keys: BTreeMap<String, Zeroizing<[u8; 32]>>,
}

impl Keyring {
    /// A keyring whose active key is `active`.
    pub fn new(active: DataKey) -> Keyring {
        let id = active.id.clone();
        let tag_key = integrity::derive_tag_key(&active);
        Keyring {
            keys: [(id.clone(), active)].into(),
            tag_keys: [(id.clone(), tag_key)].into(),
            active: id,
        }
    }

    /// Adds a key that opens values but does not seal new ones (a retired key).
    ///
    /// A key with the active key's id is ignored.
    pub fn add(&mut self, key: DataKey) {
        if key.id != self.active {
            self.tag_keys
                .insert(key.id.clone(), integrity::derive_tag_key(&key));
            self.keys.insert(key.id.clone(), key);
        }
    }

    /// The id of the key that seals new values.
    pub fn active_id(&self) -> &str {
        &self.active
    }

    /// Whether the keyring holds the key `id`.
    pub fn contains(&self, id: &str) -> bool {
        self.keys.contains_key(id)
    }

    /// The ids of every key held, sorted.
    pub fn key_ids(&self) -> Vec<String> {
        self.keys.keys().cloned().collect()
    }

    fn active_key(&self) -> &DataKey {
        // `new` inserts the active key and `add` never replaces or removes it.
        &self.keys[&self.active]
    }

    /// Seals `plaintext` for `slot` with the active key.
    pub fn seal(&self, slot: &SecretSlot<'_>, plaintext: &str) -> Result<String> {
        let mut nonce = [0u8; NONCE_LEN];
        random_bytes(&mut nonce)?;
        self.seal_with_nonce(slot, plaintext, nonce)
    }

    /// [`Keyring::seal`] with a fresh random nonce drawn by the caller.
    fn seal_with_nonce(
        &self,
        slot: &SecretSlot<'_>,
        plaintext: &str,
        nonce: [u8; NONCE_LEN],
    ) -> Result<String> {
        let key = self.active_key();
        let sealed =
            encrypt_with_nonce(&key.bytes, nonce, &slot.aad(&key.id), plaintext.as_bytes())?;
        Ok(format!(
            "{SEALED_PREFIX}{SEALED_VERSION}:{}:{}",
            key.id,
            URL_SAFE_NO_PAD.encode(sealed)
        ))
    }

    /// Opens a value sealed by [`Keyring::seal`] for the same `slot`.
    ///
    /// Errors name the slot (never the value): [`ErrorKind::Config`] when the
    /// keyring lacks the data key; [`ErrorKind::Storage`] for a value in clear
    /// text, an unknown format version, a truncated or altered ciphertext, or
    /// one sealed for another slot.
    pub fn open(&self, slot: &SecretSlot<'_>, sealed: &str) -> Result<Secret> {
        let parsed = parse_sealed(slot, sealed)?;
        let failed = |kind, why: &str| {
            Error::new(
                kind,
                format!("{} cannot be decrypted: {why}", slot.describe()),
            )
            .with_context("record", slot.record)
        };
        let Some(key) = self.keys.get(parsed.key_id) else {
            return Err(failed(
                ErrorKind::Config,
                &format!(
                    "it was sealed with data key \"{}\", which this store's keys do not include",
                    parsed.key_id
                ),
            ));
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(parsed.payload)
            .map(Zeroizing::new)
            .map_err(|_| failed(ErrorKind::Storage, "its ciphertext is not valid base64"))?;
        let plain = decrypt(&key.bytes, &slot.aad(&key.id), &bytes).map_err(|f| match f {
            DecryptFailure::Truncated => failed(ErrorKind::Storage, "its ciphertext is truncated"),
            DecryptFailure::Authentication => failed(
                ErrorKind::Storage,
                "authentication failed (the ciphertext was altered, or moved here from another record, service, credential or key)",
            ),
        })?;
        let text = std::str::from_utf8(&plain)
            .map_err(|_| failed(ErrorKind::Storage, "the decrypted value is not UTF-8"))?;
        Ok(Secret::new(text))
    }

    /// A copy of `record` with every credential configuration value sealed.
    pub fn seal_record(&self, record: &ExtensionRecord) -> Result<ExtensionRecord> {
        let mut sealed = record.clone();
        // One draw from the operating system for every nonce of the record
        // (a system call per value was a visible part of a batch's cost).
        let values: usize = record
            .services
            .iter()
            .flat_map(|s| &s.credentials)
            .map(|c| c.configuration.len())
            .sum();
        let mut nonces = vec![0u8; values * NONCE_LEN];
        random_bytes(&mut nonces)?;
        let mut nonces = nonces.chunks_exact(NONCE_LEN);
        for service in &mut sealed.services {
            for creds in &mut service.credentials {
                for (key, value) in creds.configuration.iter_mut() {
                    let slot = SecretSlot {
                        record: &record.id,
                        service: &service.id,
                        credential: &creds.id,
                        key,
                    };
                    let nonce = nonces
                        .next()
                        .and_then(|n| <[u8; NONCE_LEN]>::try_from(n).ok())
                        .ok_or_else(|| Error::new(ErrorKind::Internal, "too few nonces drawn"))?;
                    *value = Secret::new(self.seal_with_nonce(&slot, value.expose(), nonce)?);
                }
            }
        }
        Ok(sealed)
    }

    /// Opens every credential configuration value of `record` in place.
    ///
    /// All or nothing: on error `record` is left unchanged.
    pub fn open_record(&self, record: &mut ExtensionRecord) -> Result<()> {
        let mut opened = Vec::new();
        for service in &record.services {
            for creds in &service.credentials {
                for (key, value) in &creds.configuration {
                    let slot = SecretSlot {
                        record: &record.id,
                        service: &service.id,
                        credential: &creds.id,
                        key,
                    };
                    opened.push(self.open(&slot, value.expose())?);
                }
            }
        }
        let mut opened = opened.into_iter();
        for value in record
            .services
            .iter_mut()
            .flat_map(|s| &mut s.credentials)
            .flat_map(|c| c.configuration.values_mut())
        {
            if let Some(plain) = opened.next() {
                *value = plain;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("active", &self.active)
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// True when `record` has at least one credential configuration value
/// (so storing it durably needs a key).
pub fn record_has_secrets(record: &ExtensionRecord) -> bool {
    record
        .services
        .iter()
        .flat_map(|s| &s.credentials)
        .any(|c| !c.configuration.is_empty())
}

/// The ids of the data keys that the sealed values of `record` name.
///
/// Values that are not sealed are skipped (opening them reports them).
pub fn sealed_key_ids(record: &ExtensionRecord) -> BTreeSet<String> {
    record
        .services
        .iter()
        .flat_map(|s| &s.credentials)
        .flat_map(|c| c.configuration.values())
        .filter_map(|v| {
            let rest = v.expose().strip_prefix(SEALED_PREFIX)?;
            let mut parts = rest.splitn(3, ':');
            let (_, id) = (parts.next()?, parts.next()?);
            Some(id.to_owned())
        })
        .collect()
}

/// Checks that every credential value of a stored `record` is sealed.
///
/// A value in clear text is an [`ErrorKind::Storage`] error naming where it
/// is (never the value): a durable store never writes one.
pub fn check_sealed(record: &ExtensionRecord) -> Result<()> {
    for service in &record.services {
        for creds in &service.credentials {
            for (key, value) in &creds.configuration {
                if !is_sealed(value.expose()) {
                    let slot = SecretSlot {
                        record: &record.id,
                        service: &service.id,
                        credential: &creds.id,
                        key,
                    };
                    return Err(parse_sealed(&slot, value.expose())
                        .err()
                        .unwrap_or_else(|| Error::new(ErrorKind::Internal, "unsealed value")));
                }
            }
        }
    }
    Ok(())
}

/// Unwraps a store's stored data keys (`(id, wrapped, active)`) with
/// `provider` into a keyring whose active key is the active row; `None` when
/// the store holds no data keys and nothing sealed is waiting to be read
/// (`need`, the data key ids of sealed values). `store` names the store in
/// errors. Shared by every durable store.
pub async fn unwrap_keyring(
    rows: Vec<(String, WrappedKey, bool)>,
    provider: &dyn KeyProvider,
    need: &BTreeSet<String>,
    store: &'static str,
) -> Result<Option<Keyring>> {
    if rows.is_empty() {
        if need.is_empty() {
            return Ok(None);
        }
        let ids: Vec<&str> = need.iter().map(String::as_str).collect();
        return Err(Error::new(
            ErrorKind::Storage,
            format!(
                "stored values are sealed with data key {}, but the store holds no data keys (its data_keys table was emptied, or the store is damaged)",
                ids.join(", ")
            ),
        )
        .with_context("store", store));
    }
    let mut active = None;
    let mut retired = Vec::new();
    for (id, wrapped, is_active) in rows {
        let key = DataKey::unwrap_with(&id, &wrapped, provider)
            .await
            .map_err(|e| e.with_context("store", store))?;
        if is_active && active.is_none() {
            active = Some(key);
        } else {
            retired.push(key);
        }
    }
    let Some(active) = active else {
        return Err(Error::new(
            ErrorKind::Storage,
            "the store's data keys are inconsistent: none of them is active",
        )
        .with_context("store", store));
    };
    let mut keyring = Keyring::new(active);
    for key in retired {
        keyring.add(key);
    }
    Ok(Some(keyring))
}

/// What a store reports about one of its data keys (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataKeyInfo {
    /// The data key's id, as written into sealed values.
    pub id: String,
    /// The id of the KEK that wraps it.
    pub kek_id: String,
    /// When it was made, in seconds since the Unix epoch.
    pub created: i64,
    /// Whether it seals new values (one per store).
    pub active: bool,
}

/// The outcome of replacing a store's data key (re-encrypting every value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataKeyRotation {
    /// The new active data key.
    pub new_key: String,
    /// The data keys removed.
    pub retired: Vec<String>,
    /// How many records had credential values re-encrypted.
    pub records: usize,
}

/// The [`ErrorKind::Config`] error for a record with credential values and no key configured.
pub fn no_key_error(record_id: &str) -> Error {
    Error::new(
        ErrorKind::Config,
        format!(
            "record \"{record_id}\" has credential values, and no encryption key is configured, so they cannot be stored encrypted; {NO_KEY_HELP}"
        ),
    )
    .with_context("record", record_id)
}

/// The stored form of `record`: compact JSON with every credential value sealed.
///
/// With `keys` `None`, a record without credential values is written as is
/// and one with them is refused with [`no_key_error`] (nothing is written in
/// clear text).
pub fn seal_record_body(record: &ExtensionRecord, keys: Option<&Keyring>) -> Result<String> {
    match keys {
        Some(keys) => to_json_compact(&keys.seal_record(record)?, Secrets::Reveal),
        None if record_has_secrets(record) => Err(no_key_error(&record.id)),
        None => to_json_compact(record, Secrets::Reveal),
    }
}

/// Opens every sealed value of a stored `record` in place (all or nothing).
///
/// With `keys` `None`, a record without credential values passes, and one with
/// them is an [`ErrorKind::Config`] error naming the record.
pub fn open_record(record: &mut ExtensionRecord, keys: Option<&Keyring>) -> Result<()> {
    match keys {
        Some(keys) => keys.open_record(record),
        None if record_has_secrets(record) => Err(Error::new(
            ErrorKind::Config,
            format!(
                "record \"{}\" has encrypted credential values, and no encryption key is configured to read them; configure the key this store was set up with (INFERLINK_MASTER_KEY, or the key file), or {NO_KEY_HELP}",
                record.id
            ),
        )
        .with_context("record", record.id.clone())),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Credentials, Service};

    fn slot() -> SecretSlot<'static> {
        SecretSlot {
            record: "rec",
            service: "svc",
            credential: "cred",
            key: "KEY",
        }
    }

    fn record(secret: &str) -> ExtensionRecord {
        ExtensionRecord {
            id: "rec".into(),
            services: vec![Service {
                id: "svc".into(),
                credentials: vec![Credentials {
                    id: "cred".into(),
                    configuration: [
                        ("KEY".to_owned(), Secret::new(secret)),
                        ("OTHER".to_owned(), Secret::new("second")),
                    ]
                    .into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn keyring() -> Keyring {
        Keyring::new(DataKey::generate().unwrap())
    }

    #[test]
    fn seal_and_open_round_trip_with_fresh_nonces() {
        let keys = keyring();
        let a = keys.seal(&slot(), "s3cr3t-PLANTED").unwrap();
        let b = keys.seal(&slot(), "s3cr3t-PLANTED").unwrap();
        assert_ne!(a, b, "every seal uses a new nonce");
        assert!(!a.contains("s3cr3t"));
        let prefix = format!("inferlink:enc:v1:{}:", keys.active_id());
        assert!(a.starts_with(&prefix), "{a}");
        assert_eq!(keys.open(&slot(), &a).unwrap().expose(), "s3cr3t-PLANTED");
        assert_eq!(keys.open(&slot(), &b).unwrap().expose(), "s3cr3t-PLANTED");
        // Empty and long values too.
        let empty = keys.seal(&slot(), "").unwrap();
        assert_eq!(keys.open(&slot(), &empty).unwrap().expose(), "");
        let long = "x".repeat(100_000);
        let sealed = keys.seal(&slot(), &long).unwrap();
        assert_eq!(keys.open(&slot(), &sealed).unwrap().expose(), long);
    }

    fn payload(sealed: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD
            .decode(sealed.rsplit(':').next().unwrap())
            .unwrap()
    }

    fn with_payload(sealed: &str, bytes: &[u8]) -> String {
        let head = &sealed[..sealed.rfind(':').unwrap() + 1];
        format!("{head}{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    #[test]
    fn every_altered_byte_fails_authentication() {
        let keys = keyring();
        let sealed = keys.seal(&slot(), "value").unwrap();
        let bytes = payload(&sealed);
        // Nonce, ciphertext and tag: flip one bit in each position.
        for i in 0..bytes.len() {
            let mut altered = bytes.clone();
            altered[i] ^= 0x01;
            let e = keys
                .open(&slot(), &with_payload(&sealed, &altered))
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Storage, "byte {i}: {e}");
            assert!(e.message().contains("authentication failed"), "{e}");
            assert!(e.message().contains("\"rec\""), "{e}");
            assert!(!e.to_string().contains("value\""), "{e}");
        }
    }

    #[test]
    fn truncated_and_malformed_values_are_storage_errors() {
        let keys = keyring();
        let sealed = keys.seal(&slot(), "value").unwrap();
        let bytes = payload(&sealed);
        for cut in [0, 1, NONCE_LEN, NONCE_LEN + TAG_LEN - 1] {
            let e = keys
                .open(&slot(), &with_payload(&sealed, &bytes[..cut]))
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Storage, "{e}");
            assert!(e.message().contains("truncated"), "cut {cut}: {e}");
        }
        // Cut inside the ciphertext (longer than nonce + tag): authentication fails.
        let e = keys
            .open(&slot(), &with_payload(&sealed, &bytes[..bytes.len() - 1]))
            .unwrap_err();
        assert!(e.message().contains("authentication failed"), "{e}");
        for (bad, why) in [
            ("inferlink:enc:v1", "truncated"),
            (
                &format!("inferlink:enc:v1:{}", keys.active_id()),
                "truncated",
            ),
            ("inferlink:enc:v9:abc:AAAA", "unknown format version \"v9\""),
            ("inferlink:enc:v1:a b:AAAA", "data key id is malformed"),
            (
                &format!("inferlink:enc:v1:{}:***", keys.active_id()),
                "not valid base64",
            ),
            ("plain text", "clear text"),
        ] {
            let e = keys.open(&slot(), bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Storage, "{bad}: {e}");
            assert!(e.message().contains(why), "{bad}: {e}");
            assert_eq!(e.context("record"), Some("rec"));
        }
    }

    #[test]
    fn associated_data_binds_every_field() {
        let keys = keyring();
        let sealed = keys.seal(&slot(), "value").unwrap();
        let moved = [
            SecretSlot {
                record: "rec2",
                ..slot()
            },
            SecretSlot {
                service: "svc2",
                ..slot()
            },
            SecretSlot {
                credential: "cred2",
                ..slot()
            },
            SecretSlot {
                key: "KEY2",
                ..slot()
            },
            // Length prefixes: shifting a character between fields changes the data.
            SecretSlot {
                record: "re",
                service: "csvc",
                ..slot()
            },
        ];
        for other in moved {
            let e = keys.open(&other, &sealed).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Storage, "{other:?}: {e}");
            assert!(e.message().contains("moved here"), "{e}");
        }
        // Relabelling the data key id is caught too (it is part of the data).
        let mut other = Keyring::new(DataKey::generate().unwrap());
        let same_bytes =
            DataKey::from_bytes("0000000000000000", &*keys.active_key().bytes).unwrap();
        other.add(same_bytes);
        let relabelled = sealed.replace(keys.active_id(), "0000000000000000");
        assert!(other.open(&slot(), &relabelled).is_err());
    }

    #[test]
    fn another_key_does_not_open_and_a_missing_key_is_a_config_error() {
        let keys = keyring();
        let sealed = keys.seal(&slot(), "value").unwrap();
        // Another key under the same id: authentication fails.
        let impostor =
            Keyring::new(DataKey::from_bytes(keys.active_id(), &[9u8; KEY_LEN]).unwrap());
        let e = impostor.open(&slot(), &sealed).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Storage, "{e}");
        // A keyring without that id at all.
        let e = keyring().open(&slot(), &sealed).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        assert!(e.message().contains(keys.active_id()), "{e}");
        // A retired key still opens.
        let mut rotated = keyring();
        rotated.add(DataKey::from_bytes(keys.active_id(), &*keys.active_key().bytes).unwrap());
        assert_eq!(rotated.open(&slot(), &sealed).unwrap().expose(), "value");
        assert_ne!(rotated.active_id(), keys.active_id());
    }

    #[test]
    fn records_seal_and_open_all_or_nothing() {
        let keys = keyring();
        let plain = record("s3cr3t-PLANTED");
        let sealed = keys.seal_record(&plain).unwrap();
        let values = &sealed.services[0].credentials[0].configuration;
        assert!(values.values().all(|v| is_sealed(v.expose())));
        assert_eq!(
            sealed_key_ids(&sealed),
            [keys.active_id().to_owned()].into()
        );
        let body = seal_record_body(&plain, Some(&keys)).unwrap();
        assert!(!body.contains("s3cr3t"), "{body}");
        assert!(body.contains("inferlink:enc:v1:"), "{body}");
        let mut opened = sealed.clone();
        open_record(&mut opened, Some(&keys)).unwrap();
        assert_eq!(opened, plain);
        // One bad value: error, and the record is untouched.
        let mut broken = sealed.clone();
        broken.services[0].credentials[0]
            .configuration
            .insert("OTHER".into(), Secret::new("inferlink:enc:v1:zz:AAAA"));
        let before = broken.clone();
        assert!(keys.open_record(&mut broken).is_err());
        assert_eq!(broken, before);
    }

    #[test]
    fn without_keys_only_records_without_secrets_pass() {
        let plain = record("v");
        let e = seal_record_body(&plain, None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        assert!(e.message().contains("inferlink keys init"), "{e}");
        assert!(e.message().contains("INFERLINK_MASTER_KEY"), "{e}");
        assert!(e.message().contains("\"rec\""), "{e}");
        let mut bare = plain.clone();
        bare.services[0].credentials[0].configuration.clear();
        assert!(!record_has_secrets(&bare));
        assert!(seal_record_body(&bare, None).unwrap().contains("\"rec\""));
        open_record(&mut bare, None).unwrap();
        let mut sealed = keyring().seal_record(&plain).unwrap();
        let e = open_record(&mut sealed, None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    }

    #[test]
    fn master_keys_wrap_and_unwrap_data_keys() {
        let kek = MasterKey::generate().unwrap();
        assert_eq!(kek.id().len(), 16);
        let wrapped = kek.wrap(&[7u8; KEY_LEN], "dek1").unwrap();
        assert_eq!(wrapped.kek_id, kek.id());
        assert_eq!(&*kek.unwrap(&wrapped, "dek1").unwrap(), &[7u8; KEY_LEN]);
        // Bound to its context.
        let e = kek.unwrap(&wrapped, "dek2").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Storage, "{e}");
        // Another KEK: a config error saying so.
        let other = MasterKey::generate().unwrap();
        let e = other.unwrap(&wrapped, "dek1").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        assert!(e.message().contains("wrong key"), "{e}");
        // Altered, truncated, unknown version.
        let mut altered = wrapped.clone();
        altered.bytes[5] ^= 1;
        assert!(kek.unwrap(&altered, "dek1").is_err());
        let mut short = wrapped.clone();
        short.bytes.truncate(10);
        assert!(
            kek.unwrap(&short, "dek1")
                .unwrap_err()
                .message()
                .contains("truncated")
        );
        let mut newer = wrapped.clone();
        newer.bytes[0] = 2;
        assert!(
            kek.unwrap(&newer, "dek1")
                .unwrap_err()
                .message()
                .contains("unknown wrapping format")
        );
    }

    #[test]
    fn master_keys_round_trip_through_base64_and_hide_their_bytes() {
        let kek = MasterKey::generate().unwrap();
        let text = kek.to_base64();
        assert_eq!(text.len(), 44);
        let back = MasterKey::from_base64(&format!("  {}\n", &*text)).unwrap();
        assert_eq!(back.id(), kek.id());
        let unpadded = MasterKey::from_base64(text.trim_end_matches('=')).unwrap();
        assert_eq!(unpadded.id(), kek.id());
        let shown = format!("{kek:?} {:?}", DataKey::generate().unwrap());
        assert!(!shown.contains(text.as_str()), "{shown}");
        assert!(shown.contains(kek.id()), "{shown}");
        let e = MasterKey::from_base64("c2hvcnQ=").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("5 bytes"), "{e}");
        let e = MasterKey::from_base64("not base64 at all!").unwrap_err();
        assert!(!e.message().contains("at all"), "{e}");
    }
}
