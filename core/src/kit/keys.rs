//! Configuration keys as typed, documented definitions, and the check that
//! refuses a key nobody reads (a typo such as `tensor_encodng` must not be
//! ignored silently).
//!
//! A record's merged configuration serves two readers: connectors and the
//! environment of workflow steps (`MLFLOW_TRACKING_URI`, `AWS_ACCESS_KEY_ID`,
//! …). The rule that keeps both working:
//!
//! * a key a connector or the transport defines (or an alias of one) is read;
//! * a key with an upper-case ASCII letter is an environment variable and
//!   is left alone (unless it is a defined alias, such as `CLUSTER_CERT_AUTH`);
//! * a key under a prefix the connector declares free (`header_` for static
//!   headers) is read by its prefix;
//! * a key under `x_` is the user's own and is left alone;
//! * a key under `route_` is the router's (`inferlink-router`): left alone
//!   unless the router's key set is among those checked;
//! * any other key is an error naming it and the nearest defined key.

use std::fmt;

use crate::error::{Error, ErrorKind, Result, printable};
use crate::target::ConnectTarget;

/// One configuration key: its name, the aliases it is also read under, and
/// what it means (shown by `inferlink check` and in docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// The canonical name, e.g. `tensor_encoding`.
    pub name: &'static str,
    /// Other names read the same way (older or vendor spellings).
    pub aliases: &'static [&'static str],
    /// One line on what the key does, with its unit and default.
    pub doc: &'static str,
}

impl Key {
    /// A key without aliases.
    pub const fn new(name: &'static str, doc: &'static str) -> Self {
        Key {
            name,
            aliases: &[],
            doc,
        }
    }

    /// The same key, also read under `aliases`.
    pub const fn with_aliases(mut self, aliases: &'static [&'static str]) -> Self {
        self.aliases = aliases;
        self
    }

    /// True when `name` is this key or one of its aliases.
    pub fn matches(&self, name: &str) -> bool {
        self.name == name || self.aliases.contains(&name)
    }
}

/// The keys one reader (a connector, the transport) defines.
#[derive(Debug, Clone, Copy)]
pub struct KeySet {
    /// Who reads them, for messages (`"transport"`, `"triton"`).
    pub owner: &'static str,
    /// The keys.
    pub keys: &'static [Key],
    /// Prefixes under which any key is read (`header_` → `header_X-Tenant`).
    pub prefixes: &'static [&'static str],
}

impl KeySet {
    /// The key `name` is or is an alias of.
    pub fn find(&self, name: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.matches(name))
    }

    /// True when this set reads `name` (a key, an alias, or under a prefix).
    pub fn reads(&self, name: &str) -> bool {
        self.find(name).is_some() || self.prefixes.iter().any(|p| name.starts_with(p))
    }
}

/// The one-line form of a key's documentation: `doc` without surrounding
/// white space (what [`config_keys!`](crate::config_keys) makes of a key's
/// doc comment, whose lines arrive with a leading space each).
pub const fn doc_line(doc: &'static str) -> &'static str {
    doc.trim_ascii()
}

/// Declares a connector's configuration keys once: each key's constant
/// name, its configuration name, its aliases and its doc comment become a
/// `pub const` in a module of key names (with `ALL`, the canonical names
/// in order) and a [`Key`] of a [`KeySet`] constant whose doc is the same
/// comment on one line (shown by `inferlink check` and in listings).
///
/// ```
/// inferlink_core::config_keys! {
///     /// The keys the probe connector reads.
///     pub const KEYS for "probe" in mod keys {
///         /// The health path (default /ping).
///         PROBE_PATH = "probe_path",
///         /// The region, also read under the names AWS tools use.
///         REGION = "region" | "AWS_REGION" | "aws_region",
///     }
/// }
///
/// assert_eq!(keys::PROBE_PATH, "probe_path");
/// assert_eq!(keys::ALL, &["probe_path", "region"]);
/// assert_eq!(KEYS.owner, "probe");
/// assert_eq!(KEYS.keys[0].doc, "The health path (default /ping).");
/// assert!(KEYS.reads("aws_region"));
/// assert_eq!(KEYS.find("AWS_REGION").unwrap().name, keys::REGION);
/// ```
#[macro_export]
macro_rules! config_keys {
    (
        $(#[$meta:meta])*
        $vis:vis const $set:ident for $owner:literal in mod $module:ident {
            $(
                $(#[doc = $doc:literal])*
                $name:ident = $key:literal $(| $alias:literal)*
            ),+ $(,)?
        }
    ) => {
        #[doc = concat!("The names of the configuration keys of [`", stringify!($set), "`].")]
        $vis mod $module {
            $(
                $(#[doc = $doc])*
                pub const $name: &str = $key;
            )+

            /// Every key above, in order (canonical names; aliases are in the key set).
            pub const ALL: &[&str] = &[$($name),+];
        }

        $(#[$meta])*
        $vis const $set: $crate::kit::KeySet = $crate::kit::KeySet {
            owner: $owner,
            keys: &[$(
                $crate::kit::Key::new(
                    $module::$name,
                    $crate::kit::keys::doc_line(concat!($($doc),*)),
                )
                .with_aliases(&[$($alias),*])
            ),+],
            prefixes: &[],
        };
    };
}

/// The prefix of keys that are the user's own (never read, never refused).
pub const USER_PREFIX: &str = "x_";

/// The prefix of the router's per-service keys (`route_weight`, …; see
/// `inferlink-router`). A connector leaves them alone, since a record set up
/// for routing is also used without a router; they are checked (typos
/// refused) only where a key set owned by [`ROUTER_OWNER`] is passed.
pub const ROUTE_PREFIX: &str = "route_";

/// The [`KeySet::owner`] of the router's keys (see [`ROUTE_PREFIX`]).
pub const ROUTER_OWNER: &str = "router";

/// Why a configuration key is not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKey {
    /// The key as written.
    pub key: String,
    /// The nearest defined key, when one is close (a likely typo).
    pub nearest: Option<String>,
}

impl fmt::Display for UnknownKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown configuration key \"{}\"",
            printable(self.key.clone(), 100)
        )?;
        match &self.nearest {
            Some(near) => write!(f, " (did you mean \"{near}\"?)"),
            None => Ok(()),
        }
    }
}

/// The keys of `target` that none of `sets` reads and that are not
/// environment variables or the user's own (see the module docs), sorted.
pub fn unknown_keys(target: &ConnectTarget, sets: &[KeySet]) -> Vec<UnknownKey> {
    unknown_keys_beside(target, sets, &[])
}

/// [`unknown_keys`] for a reader whose keys are partly known only at run
/// time (a blueprint's own keys): `more` are read too.
pub fn unknown_keys_beside(
    target: &ConnectTarget,
    sets: &[KeySet],
    more: &[&str],
) -> Vec<UnknownKey> {
    let router_checks = sets.iter().any(|s| s.owner == ROUTER_OWNER);
    target
        .configuration
        .keys()
        .filter(|key| router_checks || !key.starts_with(ROUTE_PREFIX))
        .filter(|key| {
            is_connector_key(key)
                && !sets.iter().any(|s| s.reads(key))
                && !more.contains(&key.as_str())
        })
        .map(|key| UnknownKey {
            key: key.clone(),
            nearest: nearest(key, sets, more),
        })
        .collect()
}

/// [`unknown_keys`] as a result: a [`ErrorKind::Config`] error naming the
/// first unknown key (and how many more there are) with its nearest
/// defined key, or `Ok` when every key is read.
pub fn check_keys(target: &ConnectTarget, sets: &[KeySet]) -> Result<()> {
    check_keys_beside(target, sets, &[])
}

/// [`check_keys`] with `more` keys read beside the sets' (see
/// [`unknown_keys_beside`]).
pub fn check_keys_beside(target: &ConnectTarget, sets: &[KeySet], more: &[&str]) -> Result<()> {
    let unknown = unknown_keys_beside(target, sets, more);
    let Some(first) = unknown.first() else {
        return Ok(());
    };
    let owners: Vec<&str> = sets.iter().map(|s| s.owner).collect();
    let more = match unknown.len() - 1 {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    Err(Error::new(
        ErrorKind::Config,
        format!(
            "{first}{more}: no reader of this record ({}) defines it; keys with an upper-case \
             letter are left for environments, and keys under \"{USER_PREFIX}\" are free",
            owners.join(", ")
        ),
    )
    .with_path(first.key.clone()))
}

/// Keys the connectors' namespace covers: no upper-case ASCII letter, not
/// the user's own prefix.
fn is_connector_key(key: &str) -> bool {
    !key.bytes().any(|b| b.is_ascii_uppercase()) && !key.starts_with(USER_PREFIX)
}

/// The defined key (or alias) closest to `key`, if within a small edit distance.
fn nearest(key: &str, sets: &[KeySet], more: &[&str]) -> Option<String> {
    let limit = (key.chars().count() / 4).clamp(1, 3);
    sets.iter()
        .flat_map(|s| s.keys.iter())
        .flat_map(|k| {
            std::iter::once(k.name)
                .chain(k.aliases.iter().copied())
                .map(move |n| (k.name, n))
        })
        .chain(more.iter().map(|n| (*n, *n)))
        .map(|(canonical, name)| (edit_distance(key, name), canonical))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, name)| (*d, *name))
        .map(|(_, name)| name.to_owned())
}

/// Levenshtein distance on characters, for short keys only (bounded work).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(128).collect();
    let b: Vec<char> = b.chars().take(128).collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
#[allow(unreachable_pub)] // the macros write `pub` items; here they sit in a private module
mod tests {
    use super::*;

    const TRANSPORT: KeySet = KeySet {
        owner: "transport",
        keys: &[
            Key::new("timeout_request_ms", "per attempt"),
            Key::new("tls_ca_pem", "CA").with_aliases(&["CLUSTER_CERT_AUTH"]),
        ],
        prefixes: &["header_"],
    };
    const VENDOR: KeySet = KeySet {
        owner: "triton",
        keys: &[Key::new("tensor_encoding", "json or binary")],
        prefixes: &[],
    };

    fn target(keys: &[&str]) -> ConnectTarget {
        keys.iter().fold(
            ConnectTarget::new("triton", "http://127.0.0.1:1"),
            |t, k| t.with_plain(*k, "v"),
        )
    }

    #[test]
    fn a_typo_is_refused_with_the_nearest_key() {
        let e = check_keys(&target(&["tensor_encodng"]), &[TRANSPORT, VENDOR]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert_eq!(e.path(), Some("tensor_encodng"));
        assert!(
            e.message().contains("did you mean \"tensor_encoding\""),
            "{e}"
        );
        assert!(e.message().contains("transport, triton"), "{e}");
    }

    #[test]
    fn known_keys_aliases_prefixes_env_and_user_keys_pass() {
        let t = target(&[
            "tensor_encoding",
            "timeout_request_ms",
            "CLUSTER_CERT_AUTH",
            "header_X-Tenant",
            "MLFLOW_TRACKING_URI",
            "x_owner",
        ]);
        assert!(check_keys(&t, &[TRANSPORT, VENDOR]).is_ok());
    }

    #[test]
    fn route_keys_are_left_to_the_router() {
        const ROUTER: KeySet = KeySet {
            owner: ROUTER_OWNER,
            keys: &[Key::new("route_weight", "share")],
            prefixes: &[],
        };
        let t = target(&["tensor_encoding", "route_weight", "route_wieght"]);
        assert!(
            check_keys(&t, &[TRANSPORT, VENDOR]).is_ok(),
            "a connector leaves them alone"
        );
        let e = check_keys(&t, &[ROUTER, TRANSPORT, VENDOR]).unwrap_err();
        assert!(e.message().contains("did you mean \"route_weight\""), "{e}");
    }

    #[test]
    fn several_unknown_keys_are_counted_and_far_ones_get_no_guess() {
        let unknown = unknown_keys(&target(&["zzz", "tensor_encodng"]), &[TRANSPORT, VENDOR]);
        assert_eq!(unknown.len(), 2);
        assert_eq!(unknown[1].nearest, None);
        let e = check_keys(&target(&["aaa", "zzz"]), &[VENDOR]).unwrap_err();
        assert!(e.message().contains("and 1 more"), "{e}");
    }

    crate::config_keys! {
        /// Keys declared once.
        const DECLARED for "declared" in mod declared {
            /// Per attempt,
            /// in milliseconds.
            TIMEOUT = "timeout_ms",
            /// The region.
            REGION = "region" | "AWS_REGION" | "aws_region",
        }
    }

    #[test]
    fn declared_keys_give_names_docs_aliases_and_the_check() {
        assert_eq!(declared::ALL, &["timeout_ms", "region"]);
        assert_eq!(DECLARED.keys[0].doc, "Per attempt, in milliseconds.");
        assert!(DECLARED.keys[0].aliases.is_empty());
        assert_eq!(DECLARED.keys[1].aliases, &["AWS_REGION", "aws_region"]);
        assert!(check_keys(&target(&["aws_region", "timeout_ms"]), &[DECLARED]).is_ok());
        let e = check_keys(&target(&["regon"]), &[DECLARED]).unwrap_err();
        assert!(e.message().contains("did you mean \"region\""), "{e}");
    }

    #[test]
    fn distance_is_levenshtein() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
