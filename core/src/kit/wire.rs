//! [`WireProtocol`]: REST or gRPC, for connectors that speak both.

use crate::kit::urls;

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
        let names = ("x-rest", "x-grpc");
        assert_eq!(WireProtocol::Grpc.info_name(names), "x-grpc");
        assert_eq!(WireProtocol::Rest.info_name(names), "x-rest");
    }
}
