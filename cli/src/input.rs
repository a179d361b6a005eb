//! Reading input files (records, workflow steps) with a size limit.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use inferlink::format::ParseLimits;
use inferlink::{Error, Result};

/// The largest input accepted, in bytes (the library's parse limit, 64 MiB).
pub(crate) fn max_input_bytes() -> usize {
    ParseLimits::default().max_input_bytes
}

/// An input read into memory, with the name used for it in messages.
#[derive(Debug)]
pub(crate) struct Input {
    /// The file name as given, or `standard input`.
    pub(crate) label: String,
    /// The text.
    pub(crate) text: String,
}

/// Reads `path` (`-` = standard input) as UTF-8 text, refusing inputs over the limit.
///
/// A regular file larger than the limit is refused from its size, before any
/// of it is read; other inputs (pipes, standard input) are read up to one byte
/// past the limit.
pub(crate) fn read(path: &Path) -> Result<Input> {
    let limit = max_input_bytes();
    if path == Path::new("-") {
        let label = "standard input".to_owned();
        let bytes = read_limited(io::stdin().lock(), limit, &label)?;
        return decode(bytes, label);
    }
    let label = path.display().to_string();
    let cannot = |e: io::Error| Error::invalid(format!("cannot read \"{label}\": {e}"));
    let file = File::open(path).map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    if meta.is_dir() {
        return Err(Error::invalid(format!(
            "cannot read \"{label}\": it is a directory"
        )));
    }
    if meta.is_file() && meta.len() > limit as u64 {
        return Err(too_large(&label, Some(meta.len()), limit));
    }
    let bytes = read_limited(file, limit, &label)?;
    decode(bytes, label)
}

fn read_limited(reader: impl Read, limit: usize, label: &str) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::invalid(format!("cannot read \"{label}\": {e}")))?;
    if bytes.len() > limit {
        return Err(too_large(label, None, limit));
    }
    Ok(bytes)
}

fn too_large(label: &str, size: Option<u64>, limit: usize) -> Error {
    let size = match size {
        Some(n) => format!("{n} bytes"),
        None => format!("more than {limit} bytes"),
    };
    Error::invalid(format!(
        "\"{label}\" is {size}; at most {limit} bytes ({} MiB) are accepted",
        limit / (1024 * 1024)
    ))
}

fn decode(bytes: Vec<u8>, label: String) -> Result<Input> {
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Input { label, text }),
        Err(e) => Err(Error::invalid(format!(
            "\"{label}\" is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))),
    }
}
