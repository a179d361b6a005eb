//! Generates the prost messages of a gRPC connector's `.proto` files and
//! checks that the copy checked into the crate (`src/proto.rs`) is fresh.
//!
//! The connectors check their generated messages in, so building them needs
//! neither `protoc`, a build script nor this crate: only their
//! `tests/generated_code.rs` uses it, as a dev-dependency. Only messages are
//! generated, no client or server stubs: the connectors call methods by path
//! through the shared gRPC transport, and their test servers route paths with
//! `inferlink_testkit::grpc_server`.
//!
//! ```no_run
//! let messages = inferlink_protogen::ProtoMessages::new(
//!     env!("CARGO_MANIFEST_DIR"),
//!     &["inference.proto"],
//!     "src/proto.rs",
//! );
//! messages.assert_fresh();
//! ```
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use prost_build::Module;
use protox::prost_reflect::prost_types::FileDescriptorSet;

/// Set this environment variable (to anything) to rewrite stale files
/// instead of failing: `INFERLINK_REGENERATE=1 cargo test -p <crate> --test generated_code`.
pub const REGENERATE_VAR: &str = "INFERLINK_REGENERATE";

/// Why generating or checking failed.
#[derive(Debug)]
pub enum ProtogenError {
    /// A `.proto` file did not compile (protox's message).
    Compile(String),
    /// prost-build refused the descriptors.
    Generate(String),
    /// A file could not be read or written.
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The checked-in file differs from what the protos generate now.
    Stale {
        /// The checked-in file.
        path: PathBuf,
    },
    /// A source file names a method path the protos do not declare, or
    /// none of theirs.
    UndeclaredPath {
        /// The source file.
        file: PathBuf,
        /// What is wrong, with the paths the protos declare.
        detail: String,
    },
}

impl fmt::Display for ProtogenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Compile(m) => write!(f, "the protos do not compile: {m}"),
            Self::Generate(m) => write!(f, "code generation failed: {m}"),
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Self::Stale { path } => write!(
                f,
                "{} is stale; regenerate it with {REGENERATE_VAR}=1 cargo test --test generated_code \
                 in its crate",
                path.display()
            ),
            Self::UndeclaredPath { file, detail } => write!(f, "{}: {detail}", file.display()),
        }
    }
}

impl std::error::Error for ProtogenError {}

/// The messages of one crate's protos and the file they are checked in as.
#[derive(Debug, Clone)]
pub struct ProtoMessages {
    crate_dir: PathBuf,
    protos: Vec<String>,
    output: PathBuf,
}

impl ProtoMessages {
    /// The messages of `protos` (file names under `<crate_dir>/proto`, which
    /// is also the import path), checked in at `output` (relative to
    /// `crate_dir`).
    pub fn new(crate_dir: impl Into<PathBuf>, protos: &[&str], output: impl AsRef<Path>) -> Self {
        Self {
            crate_dir: crate_dir.into(),
            protos: protos.iter().map(|p| (*p).to_owned()).collect(),
            output: output.as_ref().to_owned(),
        }
    }

    fn descriptors(&self) -> Result<FileDescriptorSet, ProtogenError> {
        protox::compile(&self.protos, [self.crate_dir.join("proto")])
            .map_err(|e| ProtogenError::Compile(format!("{e:?}")))
    }

    /// The Rust source of the messages, behind a header naming the protos:
    /// one package's messages at the top level, several packages as modules
    /// nested by package name (`tensorflow` with `tensorflow::serving` inside,
    /// so prost's `super::` paths resolve).
    pub fn generate(&self) -> Result<String, ProtogenError> {
        let requests = self
            .descriptors()?
            .file
            .into_iter()
            .map(|file| (Module::from_protobuf_package_name(file.package()), file))
            .collect();
        let modules = prost_build::Config::new()
            .bytes(["."])
            .generate(requests)
            .map_err(|e| ProtogenError::Generate(e.to_string()))?;
        let header = format!(
            "// @generated from {} by inferlink-protogen (tests/generated_code.rs). \
             Do not edit; regenerate instead.\n\n",
            self.protos
                .iter()
                .map(|p| format!("proto/{p}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        // Well-known types (`google.protobuf.*`, imported) come from prost,
        // as prost-build's default extern paths say: not generated again.
        let by_path: BTreeMap<Vec<String>, String> = modules
            .into_iter()
            .map(|(module, code)| (module.parts().map(str::to_owned).collect::<Vec<_>>(), code))
            .filter(|(path, _)| !matches!(path.as_slice(), [google, protobuf, ..] if google == "google" && protobuf == "protobuf"))
            .collect();
        let body = if by_path.len() == 1 {
            by_path.into_values().next().unwrap_or_default()
        } else {
            let mut out = String::new();
            nest(&by_path, &[], 0, &mut out);
            out
        };
        Ok(header + &body)
    }

    fn output_path(&self) -> PathBuf {
        self.crate_dir.join(&self.output)
    }

    /// `Ok` when the checked-in file is what the protos generate now,
    /// [`ProtogenError::Stale`] when it differs or is missing.
    pub fn check(&self) -> Result<(), ProtogenError> {
        let fresh = self.generate()?;
        let path = self.output_path();
        match std::fs::read_to_string(&path) {
            Ok(current) if current == fresh => Ok(()),
            _ => Err(ProtogenError::Stale { path }),
        }
    }

    /// Writes the generated messages to the checked-in file.
    pub fn regenerate(&self) -> Result<(), ProtogenError> {
        let fresh = self.generate()?;
        let path = self.output_path();
        std::fs::write(&path, fresh).map_err(|source| ProtogenError::Io { path, source })
    }

    /// For a crate's `generated_code` test: with [`REGENERATE_VAR`] set,
    /// rewrites the checked-in file; otherwise panics when it is stale.
    #[track_caller]
    pub fn assert_fresh(&self) {
        let outcome = if std::env::var_os(REGENERATE_VAR).is_some() {
            self.regenerate()
        } else {
            self.check()
        };
        if let Err(e) = outcome {
            panic!("{e}");
        }
    }

    /// The method paths the protos declare, `/package.Service/Method`
    /// (`/Service/Method` without a package), in declaration order.
    pub fn method_paths(&self) -> Result<Vec<String>, ProtogenError> {
        let mut paths = Vec::new();
        for file in self.descriptors()?.file {
            if !self.protos.iter().any(|p| p == file.name()) {
                continue; // an import; its services are not this crate's
            }
            for service in &file.service {
                let prefix = service_prefix(file.package(), service.name());
                paths.extend(
                    service
                        .method
                        .iter()
                        .map(|m| format!("{prefix}{}", m.name())),
                );
            }
        }
        Ok(paths)
    }

    /// Checks each of `files` (relative to the crate directory): every
    /// string literal in it that starts with one of the protos' services
    /// (`"/package.Service/`) must name a declared method, and there must
    /// be at least one, and a constant holding one must be named after its
    /// method (`GET_MODEL_STATUS` for `…/GetModelStatus`), so that a
    /// misspelt or swapped path in a client or a test server cannot go unseen.
    pub fn check_paths_declared(&self, files: &[&str]) -> Result<(), ProtogenError> {
        let declared = self.method_paths()?;
        let prefixes: BTreeSet<&str> = declared
            .iter()
            .filter_map(|p| p.rfind('/').map(|i| &p[..=i]))
            .collect();
        for file in files {
            let path = self.crate_dir.join(file);
            let text = std::fs::read_to_string(&path).map_err(|source| ProtogenError::Io {
                path: path.clone(),
                source,
            })?;
            let named = quoted_paths(&text, &prefixes);
            let undeclared: Vec<&str> = named
                .iter()
                .map(|(_, literal)| *literal)
                .filter(|p| !declared.iter().any(|d| d == p))
                .collect();
            if named.is_empty() || !undeclared.is_empty() {
                return Err(ProtogenError::UndeclaredPath {
                    file: path,
                    detail: format!(
                        "names {} method path(s), undeclared: {undeclared:?}; the protos declare {declared:?}",
                        named.len()
                    ),
                });
            }
            for (constant, literal) in named {
                let method = literal.rsplit('/').next().unwrap_or_default();
                if let Some(constant) = constant
                    && constant != screaming_snake(method)
                {
                    return Err(ProtogenError::UndeclaredPath {
                        file: path,
                        detail: format!(
                            "the constant {constant} holds {literal}; its name should be {}",
                            screaming_snake(method)
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// [`check_paths_declared`](Self::check_paths_declared), panicking on failure.
    #[track_caller]
    pub fn assert_paths_declared(&self, files: &[&str]) {
        if let Err(e) = self.check_paths_declared(files) {
            panic!("{e}");
        }
    }
}

/// `"/package.Service/"`, or `"/Service/"` without a package.
fn service_prefix(package: &str, service: &str) -> String {
    if package.is_empty() {
        format!("/{service}/")
    } else {
        format!("/{package}.{service}/")
    }
}

/// The string literals in `text` that start with one of `prefixes`, each
/// with the name of the constant it initialises (`const NAME: &str = "…"`),
/// if it does.
fn quoted_paths<'t>(text: &'t str, prefixes: &BTreeSet<&str>) -> Vec<(Option<&'t str>, &'t str)> {
    let mut found = Vec::new();
    for (start, _) in text.match_indices("\"/") {
        let rest = &text[start + 1..];
        let Some(end) = rest.find('"') else { break };
        let literal = &rest[..end];
        if prefixes.iter().any(|p| literal.starts_with(p)) {
            found.push((constant_before(&text[..start]), literal));
        }
    }
    found
}

/// `NAME` when `before` ends with `NAME: &str =` (white space allowed).
fn constant_before(before: &str) -> Option<&str> {
    let before = before.trim_end().strip_suffix('=')?.trim_end();
    let before = before
        .strip_suffix("&str")?
        .trim_end()
        .strip_suffix(':')?
        .trim_end();
    let name_start = before
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    Some(&before[name_start..])
}

/// `GetModelStatus` → `GET_MODEL_STATUS`.
fn screaming_snake(method: &str) -> String {
    let mut out = String::new();
    for (i, c) in method.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Writes the module at `path` (its own code, then its child modules) into `out`.
fn nest(modules: &BTreeMap<Vec<String>, String>, path: &[String], depth: usize, out: &mut String) {
    if let Some(code) = modules.get(path) {
        for line in code.lines() {
            if !line.is_empty() {
                out.push_str(&"    ".repeat(depth));
                out.push_str(line);
            }
            out.push('\n');
        }
    }
    let children: BTreeSet<&String> = modules
        .keys()
        .filter(|k| k.len() > path.len() && k.starts_with(path))
        .map(|k| &k[path.len()])
        .collect();
    for child in children {
        let indent = "    ".repeat(depth);
        out.push_str(&format!("{indent}pub mod {child} {{\n"));
        let mut child_path = path.to_vec();
        child_path.push(child.clone());
        nest(modules, &child_path, depth + 1, out);
        out.push_str(&format!("{indent}}}\n"));
    }
}

/// The tests of a connector's `tests/generated_code.rs`: `src/proto.rs` is
/// fresh for `protos` (with [`REGENERATE_VAR`] set, it is rewritten), and
/// the method paths in `method_paths_in` are declared by them (see
/// [`ProtoMessages::check_paths_declared`]). It also defines
/// `fn messages() -> ProtoMessages` for further tests in the file.
///
/// ```no_run
/// inferlink_protogen::generated_code_tests! {
///     protos: ["inference.proto"],
///     method_paths_in: ["src/grpc.rs"],
/// }
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! generated_code_tests {
    (protos: [$($proto:literal),+ $(,)?], method_paths_in: [$($file:literal),+ $(,)?] $(,)?) => {
        fn messages() -> $crate::ProtoMessages {
            $crate::ProtoMessages::new(env!("CARGO_MANIFEST_DIR"), &[$($proto),+], "src/proto.rs")
        }

        #[test]
        fn message_code_is_fresh() {
            messages().assert_fresh();
        }

        #[test]
        fn method_paths_are_declared() {
            messages().assert_paths_declared(&[$($file),+]);
        }
    };
}
