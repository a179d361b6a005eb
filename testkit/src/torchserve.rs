//! TorchServe test helpers: the tokens a running TorchServe wrote to its
//! `key_file.json` (token authorization is on in the harness's servers).

use std::path::Path;

/// The three keys of a TorchServe key file.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyFile {
    /// The inference key (inference API and gRPC inference).
    pub inference: String,
    /// The management key (management API).
    pub management: String,
    /// The API key (regenerates the other two through `/token`).
    pub api: String,
}

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyFile { <hidden> }")
    }
}

/// Reads `{"management": {"key": …}, "inference": {"key": …}, "API": {"key": …}}`.
pub fn read_key_file(path: impl AsRef<Path>) -> Result<KeyFile, String> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let doc: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
    let key = |section: &str| {
        doc.get(section)
            .and_then(|s| s.get("key"))
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("{} has no {section}.key", path.display()))
    };
    Ok(KeyFile {
        inference: key("inference")?,
        management: key("management")?,
        api: key("API")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_three_keys_and_hides_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key_file.json");
        std::fs::write(
            &path,
            r#"{"management": {"key": "m1", "expiration time": "x"},
                "inference": {"key": "i1", "expiration time": "x"}, "API": {"key": "a1"}}"#,
        )
        .unwrap();
        let keys = read_key_file(&path).unwrap();
        assert_eq!(
            (
                keys.inference.as_str(),
                keys.management.as_str(),
                keys.api.as_str()
            ),
            ("i1", "m1", "a1")
        );
        assert!(!format!("{keys:?}").contains("i1"));
        std::fs::write(&path, "{}").unwrap();
        assert!(read_key_file(&path).unwrap_err().contains("inference.key"));
    }
}
