//! Endpoint URL checks shared by connectors: REST base URLs, gRPC targets
//! (`grpc://`, `grpcs://`, `http://`, `https://`) and HTTP authorities.
//! Every failure is an [`ErrorKind::Config`](crate::ErrorKind::Config)
//! error naming the key the URL came from; credentials in URLs are refused.

use crate::error::{Result, printable};

use super::config_error;

/// The scheme of `url`, lower-cased, if it has one.
pub fn scheme(url: &str) -> Option<String> {
    url.trim()
        .split_once("://")
        .map(|(s, _)| s.to_ascii_lowercase())
}

/// True for a `grpc://` or `grpcs://` URL.
pub fn is_grpc_scheme(url: &str) -> bool {
    scheme(url).is_some_and(|s| s == "grpc" || s == "grpcs")
}

/// Checks a REST base URL (`http` or `https`, a host, no user info) and
/// returns it trimmed.
pub fn http_url(key: &str, raw: &str) -> Result<String> {
    let url = url::Url::parse(raw.trim())
        .map_err(|e| config_error(key, format!("not a valid URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(config_error(
            key,
            format!(
                "scheme \"{}\" is not http or https",
                printable(url.scheme().to_owned(), 32)
            ),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(config_error(key, "the URL has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(config_error(
            key,
            "credentials in the URL are not allowed; use the auth_* keys",
        ));
    }
    Ok(raw.trim().to_owned())
}

/// A gRPC target as the `http`/`https` URL tonic connects to: `grpc://`
/// and `http://` mean plain HTTP/2, `grpcs://` and `https://` TLS. No user
/// info, path, query or fragment (gRPC methods live at the root).
pub fn grpc_target(key: &str, raw: &str) -> Result<String> {
    let url = url::Url::parse(raw.trim())
        .map_err(|e| config_error(key, format!("not a valid URL ({e})")))?;
    let secure = match url.scheme() {
        "http" | "grpc" => false,
        "https" | "grpcs" => true,
        other => {
            return Err(config_error(
                key,
                format!(
                    "scheme \"{}\" is not http, https, grpc or grpcs",
                    printable(other.to_owned(), 32)
                ),
            ));
        }
    };
    let host = url.host_str().filter(|h| !h.is_empty());
    let Some(host) = host else {
        return Err(config_error(key, "the URL has no host"));
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(config_error(
            key,
            "credentials in the URL are not allowed; use the auth_* keys",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(config_error(key, "a query or fragment is not allowed"));
    }
    if !url.path().trim_end_matches('/').is_empty() {
        return Err(config_error(
            key,
            "a gRPC URL cannot have a path (gRPC methods live at the root)",
        ));
    }
    let scheme = if secure { "https" } else { "http" };
    let authority = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let normal = url::Url::parse(&format!("{scheme}://{authority}"))
        .map_err(|e| config_error(key, format!("not a valid URL ({e})")))?;
    Ok(normal.as_str().trim_end_matches('/').to_owned())
}

/// Checks an HTTP authority (`host` or `host:port`, IPv6 in brackets; no
/// user info, path or spaces) and returns it lower-cased.
pub fn check_authority(key: &str, authority: &str) -> Result<String> {
    let bad = |why: &str| {
        config_error(
            key,
            format!(
                "\"{}\" is not a host[:port] authority: {why}",
                printable(authority.to_owned(), 256)
            ),
        )
    };
    if authority.contains(['/', '@', '?', '#']) || authority.chars().any(char::is_whitespace) {
        return Err(bad("no scheme, path, user info or spaces"));
    }
    let url = url::Url::parse(&format!("http://{authority}")).map_err(|e| bad(&e.to_string()))?;
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("no host"))?;
    Ok(match authority.rsplit_once(':') {
        Some((_, port)) if !authority.ends_with(']') => {
            let port: u16 = port.parse().map_err(|_| bad("the port is not a number"))?;
            format!("{host}:{port}")
        }
        _ => host.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_targets_normalise_and_refuse_what_grpc_cannot_use() {
        assert_eq!(
            grpc_target("url", "grpc://127.0.0.1:8001").unwrap(),
            "http://127.0.0.1:8001"
        );
        assert_eq!(
            grpc_target("url", "grpcs://h.example:443/").unwrap(),
            "https://h.example"
        );
        for bad in [
            "ftp://h:1",
            "grpc://u:p@h:1",
            "grpc://h:1/v2",
            "grpc://h:1?x=1",
            "not a url",
        ] {
            let e = grpc_target("grpc_url", bad).unwrap_err();
            assert_eq!(e.path(), Some("grpc_url"), "{bad}");
            assert!(!e.message().contains("u:p"), "{e}");
        }
    }

    #[test]
    fn http_urls_and_authorities() {
        assert!(http_url("url", "http://127.0.0.1:8000/base").is_ok());
        assert!(http_url("url", "grpc://127.0.0.1:1").is_err());
        assert!(http_url("url", "http://user:pw@h").is_err());
        assert_eq!(
            check_authority("k", "Model.Example.COM:80").unwrap(),
            "model.example.com:80"
        );
        assert_eq!(check_authority("k", "[::1]").unwrap(), "[::1]");
        assert!(check_authority("k", "h/path").is_err());
        assert!(check_authority("k", "h:port").is_err());
        assert!(is_grpc_scheme("GRPCS://h") && !is_grpc_scheme("http://h"));
    }
}
