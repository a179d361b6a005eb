//! [`WireProtocol`]: REST or gRPC, for connectors that speak both, and the
//! two keys such connectors share ([`WIRE_KEYS`]: `protocol`, `grpc_url`).

use crate::error::Result;
use crate::kit::{Key, KeySet, urls};

crate::config_words! {
    /// Which wire protocol a connector that speaks both REST and gRPC uses
    /// (the `protocol` key; `http` and `https` are read as `rest`).
    pub enum WireProtocol for "protocol" {
        /// HTTP/JSON.
        Rest = "rest" | "http" | "https",
        /// gRPC.
        Grpc = "grpc",
    }
}

impl WireProtocol {
    /// The protocol in effect: `chosen` (the `protocol` key) when set, else
    /// gRPC for a `grpc://` or `grpcs://` endpoint URL, else REST.
    ///
    /// ```
    /// use inferlink_core::kit::WireProtocol;
    ///
    /// assert_eq!(WireProtocol::or_from_url(None, "grpcs://h:443"), WireProtocol::Grpc);
    /// assert_eq!(WireProtocol::or_from_url(None, "http://h:8000"), WireProtocol::Rest);
    /// let chosen = Some(WireProtocol::Rest);
    /// assert_eq!(WireProtocol::or_from_url(chosen, "grpc://h:1"), WireProtocol::Rest);
    /// ```
    pub fn or_from_url(chosen: Option<WireProtocol>, url: &str) -> WireProtocol {
        chosen.unwrap_or(if urls::is_grpc_scheme(url) {
            WireProtocol::Grpc
        } else {
            WireProtocol::Rest
        })
    }

    /// The protocol name a connector shows in
    /// [`ConnectorInfo::protocol`](crate::ConnectorInfo::protocol):
    /// `names.0` for REST, `names.1` for gRPC (`("oip-rest", "oip-grpc")`).
    pub fn info_name(self, names: (&'static str, &'static str)) -> &'static str {
        match self {
            WireProtocol::Rest => names.0,
            WireProtocol::Grpc => names.1,
        }
    }
}

/// The `grpc_url` key: the gRPC endpoint of a connector whose record URL is
/// the REST one.
pub const GRPC_URL: &str = "grpc_url";

/// The `protocol` key of a connector that speaks both ([`WireProtocol`]).
pub const PROTOCOL_KEY: Key = Key::new(
    WireProtocol::KEY,
    "rest or grpc (default: grpc for a grpc:// or grpcs:// URL, else rest)",
);

/// The `grpc_url` key ([`grpc_target`] reads it).
pub const GRPC_URL_KEY: Key = Key::new(
    GRPC_URL,
    "the gRPC endpoint (grpc://, grpcs://, http://, https://) when the record's URL is the \
     REST one (default: the record's URL)",
);

/// The keys of a connector that speaks REST and gRPC with the words of
/// [`WireProtocol`]: `protocol` and `grpc_url` (defined once here; the
/// connector's factory lists this set beside its own).
pub const WIRE_KEYS: KeySet = KeySet {
    owner: "wire",
    keys: &[PROTOCOL_KEY, GRPC_URL_KEY],
    prefixes: &[],
};

/// Only `grpc_url`: for a connector whose `protocol` has words of its own
/// (KServe's, Seldon's) and that still takes a separate gRPC endpoint.
pub const GRPC_URL_KEYS: KeySet = KeySet {
    owner: "wire",
    keys: &[GRPC_URL_KEY],
    prefixes: &[],
};

/// The value of `grpc_url` as a setting: trimmed, and `None` when empty.
pub fn grpc_url_setting(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// The gRPC target as an `http`/`https` URL ([`urls::grpc_target`]):
/// `grpc_url` (errors name that key) when set, else the endpoint `url`
/// (errors name `url`).
///
/// ```
/// use inferlink_core::kit::wire::grpc_target;
///
/// assert_eq!(grpc_target(None, "grpc://h:1").unwrap(), "http://h:1");
/// assert_eq!(grpc_target(Some("grpcs://g:2"), "http://h").unwrap(), "https://g:2");
/// assert_eq!(grpc_target(Some("ftp://g"), "http://h").unwrap_err().path(), Some("grpc_url"));
/// ```
pub fn grpc_target(grpc_url: Option<&str>, url: &str) -> Result<String> {
    match grpc_url {
        Some(grpc_url) => urls::grpc_target(GRPC_URL, grpc_url),
        None => urls::grpc_target("url", url),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn words_urls_and_names() {
        assert_eq!("HTTPS".parse::<WireProtocol>().unwrap(), WireProtocol::Rest);
        assert_eq!(
            " grpc ".parse::<WireProtocol>().unwrap(),
            WireProtocol::Grpc
        );
        let e = "soap".parse::<WireProtocol>().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert_eq!(e.path(), Some("protocol"));
        assert_eq!(
            WireProtocol::or_from_url(None, "grpc://h:1"),
            WireProtocol::Grpc
        );
        assert_eq!(
            WireProtocol::or_from_url(None, "https://h"),
            WireProtocol::Rest
        );
        assert_eq!(
            WireProtocol::or_from_url(Some(WireProtocol::Grpc), "http://h"),
            WireProtocol::Grpc
        );
        assert_eq!(grpc_url_setting("  "), None);
        assert_eq!(
            grpc_url_setting(" grpc://h:1 ").as_deref(),
            Some("grpc://h:1")
        );
        let names = ("x-rest", "x-grpc");
        assert_eq!(WireProtocol::Grpc.info_name(names), "x-grpc");
        assert_eq!(WireProtocol::Rest.info_name(names), "x-rest");
    }

    #[test]
    fn the_shared_keys_are_read_and_a_typo_gets_a_suggestion() {
        use crate::ConnectTarget;
        use crate::kit::check_keys;
        let target = |key: &str| {
            ConnectTarget::new("tfserving", "http://127.0.0.1:1")
                .with_plain("protocol", "grpc")
                .with_plain(key, "grpc://127.0.0.1:2")
        };
        check_keys(&target("grpc_url"), &[WIRE_KEYS]).unwrap();
        let e = check_keys(&target("grpc_ur"), &[WIRE_KEYS]).unwrap_err();
        assert_eq!(e.path(), Some("grpc_ur"));
        assert!(e.message().contains("did you mean \"grpc_url\""), "{e}");
        let e = check_keys(&target("grpc_url"), &[GRPC_URL_KEYS]).unwrap_err();
        assert_eq!(e.path(), Some("protocol"), "{e}");
    }
}
