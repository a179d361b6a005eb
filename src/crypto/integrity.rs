//! Record integrity tags: a keyed MAC over every stored record.
//!
//! Sealing protects credential *values*; it does not stop a database writer
//! without the master key from changing where those values are sent (an
//! endpoint URL, a TLS or proxy setting, the record-level configuration the
//! transport merges in). So every record a keyed store writes carries a
//! **tag**: HMAC-SHA256, under a key derived from the store's data key, over
//!
//! ```text
//! "inferlink:record-mac:v1" ‖ data key id ‖ record id ‖ revision (8 bytes, big-endian) ‖ SHA-256(stored body)
//! ```
//!
//! (each text field length-prefixed as in the associated data of sealed
//! values). The body is the exact stored text (compact JSON, credential
//! values sealed), so the tag covers the **whole record**: every field and
//! every configuration key, not a list of keys judged to matter today. The
//! revision is bound too, so a row cannot be moved to another revision
//! number without detection. The stored form is
//!
//! ```text
//! inferlink:mac:v1:<data key id>:<base64url, no padding, of the 32-byte tag>
//! ```
//!
//! Verifying is one SHA-256 of the body (computed while the row is decoded)
//! and two HMACs: no re-parse.
//!
//! # Which stores must carry tags
//!
//! Data keys made by this release have ids starting with `i-`
//! ([`INTEGRITY_KEY_PREFIX`]). The id is the context the master key wraps a
//! data key under, so a writer without the master key can neither relabel an
//! older key as an integrity key nor the reverse. A store whose active data
//! key is an integrity key requires a valid tag on every record; a store
//! whose key predates tags (or that has none) is migrated by its first
//! keyed operation: a new integrity data key is made, every value is sealed
//! again under it and every record tagged, in one transaction, and the old
//! key is deleted.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use zeroize::Zeroizing;

use super::{DataKey, Keyring, push_field};
use crate::error::{Error, ErrorKind, Result};
use crate::model::preview;

type HmacSha256 = Hmac<Sha256>;

/// The id prefix of data keys that authenticate records (made by this release).
pub const INTEGRITY_KEY_PREFIX: &str = "i-";
/// The prefix of a stored record tag.
pub const TAG_PREFIX: &str = "inferlink:mac:v1:";

/// True for the id of a data key whose store requires a tag on every record.
pub fn is_integrity_key_id(id: &str) -> bool {
    id.starts_with(INTEGRITY_KEY_PREFIX)
}

/// The SHA-256 of a stored body, taken where the row is decoded so the text
/// need not be kept until the tag is checked.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct BodyDigest([u8; 32]);

impl BodyDigest {
    /// The digest of `body`, the exact stored text.
    pub fn of(body: &str) -> BodyDigest {
        BodyDigest(Sha256::digest(body.as_bytes()).into())
    }
}

impl std::fmt::Debug for BodyDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BodyDigest(..)")
    }
}

/// What a read needs to check a record's tag: the body's digest and the stored tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagCheck {
    /// SHA-256 of the stored body.
    pub digest: BodyDigest,
    /// The stored tag (`None`: the row has none).
    pub tag: Option<String>,
}

impl TagCheck {
    /// The check for a row with `body` and `tag`.
    pub fn new(body: &str, tag: Option<String>) -> TagCheck {
        TagCheck {
            digest: BodyDigest::of(body),
            tag,
        }
    }

    /// The id of the data key the stored tag names, if it has the tag form.
    pub fn key_id(&self) -> Option<&str> {
        self.tag
            .as_deref()?
            .strip_prefix(TAG_PREFIX)?
            .split_once(':')
            .map(|(id, _)| id)
    }
}

/// The tag key of a data key: derived from it, so a tag never uses the
/// sealing key directly (computed once per key, kept by the [`Keyring`]).
pub(super) fn derive_tag_key(key: &DataKey) -> Zeroizing<[u8; 32]> {
    let mut derive = <HmacSha256 as KeyInit>::new_from_slice(key.bytes.as_slice())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    derive.update(b"inferlink:record-mac-key:v1");
    Zeroizing::new(derive.finalize().into_bytes().into())
}

fn mac(
    key_id: &str,
    mac_key: &[u8; 32],
    record: &str,
    revision: u64,
    digest: &BodyDigest,
) -> HmacSha256 {
    let mut data = Vec::with_capacity(128);
    push_field(&mut data, "inferlink:record-mac:v1");
    push_field(&mut data, key_id);
    push_field(&mut data, record);
    data.extend_from_slice(&revision.to_be_bytes());
    data.extend_from_slice(&digest.0);
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(mac_key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(&data);
    mac
}

/// The error for a record whose tag is missing or does not verify.
pub fn tampered_error(record: &str, why: &str, store: &'static str) -> Error {
    Error::new(
        ErrorKind::Storage,
        format!(
            "stored record {} failed its integrity check: {why}. It was changed outside inferlink (by a database writer without the master key?) or written by a process without the store's key; it is refused. Check it, then write it again with `inferlink import`/`register` (overwrite), or delete it",
            preview(record)
        ),
    )
    .with_context("store", store)
    .with_context("record", record)
}

impl Keyring {
    /// Whether the active data key authenticates records (see the module documentation).
    pub fn authenticates(&self) -> bool {
        is_integrity_key_id(self.active_id())
    }

    /// The tag of record `id` at `revision` with stored body digest `digest`, under the active key.
    pub fn record_tag(&self, id: &str, revision: u64, digest: &BodyDigest) -> String {
        let key_id = self.active_id();
        let tag = mac(key_id, &self.tag_keys[key_id], id, revision, digest)
            .finalize()
            .into_bytes();
        format!("{TAG_PREFIX}{key_id}:{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// Checks the stored tag of record `id` at `revision`; the error
    /// ([`ErrorKind::Storage`], naming the record, see [`tampered_error`]) says why it failed.
    pub fn verify_record_tag(
        &self,
        id: &str,
        revision: u64,
        check: &TagCheck,
        store: &'static str,
    ) -> Result<()> {
        let fail = |why: &str| Err(tampered_error(id, why, store));
        let Some(tag) = check.tag.as_deref() else {
            return fail("it has no integrity tag");
        };
        let Some((key_id, encoded)) = tag
            .strip_prefix(TAG_PREFIX)
            .and_then(|rest| rest.split_once(':'))
        else {
            return fail("its integrity tag is malformed");
        };
        let Some(tag_key) = self.tag_keys.get(key_id) else {
            return fail("its integrity tag names a data key this store does not hold");
        };
        if !is_integrity_key_id(key_id) {
            return fail(
                "its integrity tag was made with a data key that does not authenticate records",
            );
        }
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(encoded) else {
            return fail("its integrity tag is malformed");
        };
        match mac(key_id, tag_key, id, revision, &check.digest).verify_slice(&bytes) {
            Ok(()) => Ok(()),
            Err(_) => fail("its integrity tag does not match its contents"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keyring {
        Keyring::new(DataKey::generate().unwrap())
    }

    #[test]
    fn new_data_keys_authenticate_and_tags_verify() {
        let keys = keys();
        assert!(keys.authenticates(), "{}", keys.active_id());
        let body = r#"{"id":"a","services":[]}"#;
        let tag = keys.record_tag("a", 7, &BodyDigest::of(body));
        assert!(tag.starts_with(TAG_PREFIX), "{tag}");
        let check = TagCheck::new(body, Some(tag.clone()));
        assert_eq!(check.key_id(), Some(keys.active_id()));
        keys.verify_record_tag("a", 7, &check, "test").unwrap();
    }

    #[test]
    fn any_change_of_body_id_revision_or_key_fails() {
        let keys = keys();
        let body = r#"{"id":"a","services":[{"id":"s","endpoints":[{"url":"http://good"}]}]}"#;
        let tag = keys.record_tag("a", 7, &BodyDigest::of(body));
        let moved = body.replace("good", "evil");
        let cases = [
            ("a", 7, TagCheck::new(&moved, Some(tag.clone())), "match"),
            ("b", 7, TagCheck::new(body, Some(tag.clone())), "match"),
            ("a", 8, TagCheck::new(body, Some(tag.clone())), "match"),
            ("a", 7, TagCheck::new(body, None), "no integrity tag"),
            (
                "a",
                7,
                TagCheck::new(body, Some("junk".into())),
                "malformed",
            ),
        ];
        for (id, revision, check, why) in cases {
            let e = keys
                .verify_record_tag(id, revision, &check, "test")
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Storage, "{e}");
            assert!(e.message().contains(why), "{e}");
            assert_eq!(e.context("record"), Some(id));
        }
        // Another data key (even relabelled with the same id) does not verify.
        let other = Keyring::new(DataKey::from_bytes(keys.active_id(), &[3u8; 32]).unwrap());
        let e = other
            .verify_record_tag("a", 7, &TagCheck::new(body, Some(tag)), "test")
            .unwrap_err();
        assert!(e.message().contains("does not match"), "{e}");
    }

    #[test]
    fn keys_from_before_tags_do_not_authenticate() {
        let old = Keyring::new(DataKey::from_bytes("0123456789abcdef", &[1u8; 32]).unwrap());
        assert!(!old.authenticates());
        let body = "{}";
        let tag = old.record_tag("a", 1, &BodyDigest::of(body));
        let e = old
            .verify_record_tag("a", 1, &TagCheck::new(body, Some(tag)), "test")
            .unwrap_err();
        assert!(e.message().contains("does not authenticate"), "{e}");
    }
}
