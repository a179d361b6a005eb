//! Previous-key files: where `keys rotate` keeps the keys a key file held
//! before (`<key file>.previous`, `.previous.2`, …), never overwriting one.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{
    key_file_error, key_file_text, previous_key_file, sibling, sync_dir, write_new_private,
};
use crate::crypto::MasterKey;
use crate::error::Result;

/// Most previous-key files (`<key file>.previous`, `.previous.2`, …) kept beside a key file.
const MAX_PREVIOUS_KEY_FILES: u32 = 1000;

/// The number of a previous-key file name: 1 for `<name>.previous`, N for
/// `<name>.previous.N` (N ≥ 2, decimal, no leading zero).
pub(super) fn previous_number(key_file_name: &str, candidate: &str) -> Option<u32> {
    let rest = candidate
        .strip_prefix(key_file_name)?
        .strip_prefix(".previous")?;
    if rest.is_empty() {
        return Some(1);
    }
    let digits = rest.strip_prefix('.')?;
    if digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits
        .parse()
        .ok()
        .filter(|n| (2..=MAX_PREVIOUS_KEY_FILES).contains(n))
}

/// The previous-key files beside the key file at `path`, oldest first:
/// `<path>.previous`, then `<path>.previous.N` by N. Files are not read.
pub fn previous_key_files(path: &Path) -> Result<Vec<PathBuf>> {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Ok(Vec::new());
    };
    let dir = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => dir,
        None => Path::new("."),
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(key_file_error(
                path,
                format!("cannot list its directory for previous keys: {e}"),
            ));
        }
    };
    let mut found: Vec<(u32, PathBuf)> = entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let number = previous_number(name, entry.file_name().to_str()?)?;
            Some((number, entry.path()))
        })
        .collect();
    found.sort();
    Ok(found.into_iter().map(|(_, file)| file).collect())
}

/// Writes `old` to a new previous-key file (never over an existing file) and returns its path.
pub(super) fn keep_previous_key(
    path: &Path,
    existing: &[PathBuf],
    old: &MasterKey,
    staged: &Path,
) -> Result<PathBuf> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| key_file_error(path, "its file name is not UTF-8 text"))?;
    let highest = existing
        .iter()
        .filter_map(|f| previous_number(name, f.file_name()?.to_str()?))
        .max()
        .unwrap_or(0);
    if highest >= MAX_PREVIOUS_KEY_FILES {
        return Err(key_file_error(
            path,
            format!(
                "it already has {MAX_PREVIOUS_KEY_FILES} previous-key files; delete those no store needs any more (`inferlink keys status` on each store sharing this key file shows which keys it uses) and rotate again"
            ),
        ));
    }
    let target = if highest == 0 {
        previous_key_file(path)
    } else {
        sibling(path, &format!(".previous.{}", highest + 1))
    };
    write_new_private(staged, &key_file_text(old))
        .map_err(|e| key_file_error(staged, format!("cannot write it: {e}")))?;
    // A hard link never replaces an existing file (unlike a rename), and the
    // staged file is complete and synced before the name appears. Where the
    // file system has no hard links, a rename after checking that the name
    // is free is the fallback.
    let appeared = || {
        key_file_error(
            &target,
            "it appeared while the key was being rotated (another rotation?); nothing was changed: run `inferlink keys rotate` again",
        )
    };
    let installed = match fs::hard_link(staged, &target) {
        Ok(()) => {
            let _ = fs::remove_file(staged);
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(appeared()),
        Err(_) if fs::symlink_metadata(&target).is_ok() => Err(appeared()),
        Err(_) => fs::rename(staged, &target)
            .map_err(|e| key_file_error(&target, format!("cannot install it: {e}"))),
    };
    if installed.is_err() {
        let _ = fs::remove_file(staged);
    }
    installed?;
    sync_dir(&target);
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previous_key_file_names_are_recognised_strictly() {
        assert_eq!(previous_number("k", "k.previous"), Some(1));
        assert_eq!(previous_number("k", "k.previous.2"), Some(2));
        assert_eq!(previous_number("k", "k.previous.1"), None);
        assert_eq!(previous_number("k", "k.previous.02"), None);
        assert_eq!(previous_number("k", "k.previous.tmp"), None);
        assert_eq!(previous_number("k", "k.previousx"), None);
        assert_eq!(previous_number("k", "kk.previous"), None);
        assert_eq!(previous_number("k", "k.previous.99999999999"), None);
    }
}
