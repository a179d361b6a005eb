//! Endpoint policy: which hosts and networks a transport may connect to.
//!
//! A host application that lets users register records (and so choose URLs)
//! can switch on an allow-list so that a record cannot point the library at
//! an arbitrary internal address (server-side request forgery). The policy is
//! evaluated on the URL actually requested, before any connection:
//!
//! * a host name matching an allowed host pattern is allowed;
//! * an IP address is allowed when an allowed network contains it;
//! * any other host name is resolved, and only its addresses inside an
//!   allowed network are used; none left → [`ErrorKind::PermissionDenied`].
//!
//! Redirects are never followed by the transport, so a server cannot send a
//! request elsewhere.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::error::{Error, ErrorKind, Result, printable};

/// An allow-list of hosts and networks. An empty policy allows nothing.
///
/// ```
/// use inferlink_core::transport::EndpointPolicy;
///
/// let policy = EndpointPolicy::new()
///     .allow_host("*.svc.cluster.local")?
///     .allow_network("10.0.0.0/8")?
///     .allow_network("127.0.0.1/8")?;
/// assert!(policy.allows_ip("127.0.0.5".parse().unwrap()));
/// assert!(!policy.allows_ip("192.168.1.1".parse().unwrap()));
/// # Ok::<(), inferlink_core::Error>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EndpointPolicy {
    hosts: Vec<String>,
    networks: Vec<IpNet>,
}

impl fmt::Debug for EndpointPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointPolicy")
            .field("hosts", &self.hosts)
            .field(
                "networks",
                &self
                    .networks
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl EndpointPolicy {
    /// A policy that allows nothing yet.
    pub fn new() -> Self {
        EndpointPolicy::default()
    }

    /// Allows a host name: exact (`models.example.com`) or every subdomain
    /// (`*.example.com`, which does not match `example.com` itself).
    /// Matching ignores case.
    pub fn allow_host(mut self, pattern: &str) -> Result<Self> {
        let p = pattern.trim().trim_end_matches('.').to_ascii_lowercase();
        let bare = p.strip_prefix("*.").unwrap_or(&p);
        if bare.is_empty()
            || bare.contains('*')
            || !bare
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "endpoint policy: `{}` is not a host name or `*.domain` pattern",
                    printable(pattern.to_owned(), 128)
                ),
            ));
        }
        self.hosts.push(p);
        Ok(self)
    }

    /// Allows a network in CIDR notation (`10.0.0.0/8`, `fd00::/8`; host
    /// bits are ignored, so `127.0.0.1/8` is `127.0.0.0/8`) or a single address.
    pub fn allow_network(mut self, cidr: &str) -> Result<Self> {
        let text = cidr.trim();
        let net = match text.parse::<IpNet>() {
            Ok(net) => net.trunc(),
            Err(_) => match text.parse::<IpAddr>() {
                Ok(ip) => IpNet::from(ip),
                Err(_) => {
                    return Err(Error::new(
                        ErrorKind::Config,
                        format!(
                            "endpoint policy: `{}` is not a CIDR network or IP address",
                            printable(cidr.to_owned(), 128)
                        ),
                    ));
                }
            },
        };
        self.networks.push(net);
        Ok(self)
    }

    /// Allows the loopback networks `127.0.0.0/8` and `::1/128`.
    pub fn allow_loopback(self) -> Self {
        let mut p = self;
        p.networks.push("127.0.0.0/8".parse().expect("valid CIDR"));
        p.networks.push("::1/128".parse().expect("valid CIDR"));
        p
    }

    /// True when an allowed network contains `ip` (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.networks.iter().any(|n| n.contains(&ip))
    }

    /// True when `host` (a name, not an address) matches an allowed host pattern.
    pub fn allows_host_name(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.hosts.iter().any(|p| match p.strip_prefix("*.") {
            Some(domain) => {
                host.len() > domain.len() + 1
                    && host.ends_with(domain)
                    && host.as_bytes()[host.len() - domain.len() - 1] == b'.'
            }
            None => *p == host,
        })
    }

    /// Checks a URL before connecting. `Ok(true)`: allowed outright;
    /// `Ok(false)`: a host name that must resolve into an allowed network;
    /// `Err`: [`ErrorKind::PermissionDenied`].
    pub(crate) fn check_url(&self, url: &Url) -> Result<bool> {
        let denied = |host: &str| {
            Error::new(
                ErrorKind::PermissionDenied,
                format!("the endpoint policy does not allow connections to {host}"),
            )
        };
        match url.host() {
            Some(url::Host::Ipv4(ip)) if self.allows_ip(IpAddr::V4(ip)) => Ok(true),
            Some(url::Host::Ipv6(ip)) if self.allows_ip(IpAddr::V6(ip)) => Ok(true),
            Some(url::Host::Ipv4(ip)) => Err(denied(&ip.to_string())),
            Some(url::Host::Ipv6(ip)) => Err(denied(&ip.to_string())),
            Some(url::Host::Domain(d)) if self.allows_host_name(d) => Ok(true),
            Some(url::Host::Domain(_)) if !self.networks.is_empty() => Ok(false),
            Some(url::Host::Domain(d)) => Err(denied(d)),
            None => Err(denied("a URL without host")),
        }
    }
}

/// The marker error a policy-filtered resolution fails with.
#[derive(Debug)]
pub(crate) struct PolicyDenied(pub(crate) String);

impl fmt::Display for PolicyDenied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} resolves to no address the endpoint policy allows",
            self.0
        )
    }
}

impl std::error::Error for PolicyDenied {}

/// A DNS resolver that keeps only the addresses the policy allows.
pub(crate) struct PolicyResolver(pub(crate) Arc<EndpointPolicy>);

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.0);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let by_name = policy.allows_host_name(&host);
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| by_name || policy.allows_ip(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(
                    Box::new(PolicyDenied(host)) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_networks() {
        let p = EndpointPolicy::new()
            .allow_host("*.svc.cluster.local")
            .unwrap()
            .allow_host("Models.Example.com")
            .unwrap()
            .allow_network("10.0.0.0/8")
            .unwrap();
        assert!(p.allows_host_name("triton.ns.svc.cluster.local"));
        assert!(!p.allows_host_name("svc.cluster.local"));
        assert!(!p.allows_host_name("evilsvc.cluster.local"));
        assert!(p.allows_host_name("models.example.com."));
        assert!(p.allows_ip("10.1.2.3".parse().unwrap()));
        assert!(p.allows_ip("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!p.allows_ip("11.0.0.1".parse().unwrap()));
        let url = Url::parse("http://169.254.169.254/latest").unwrap();
        assert_eq!(
            p.check_url(&url).unwrap_err().kind(),
            ErrorKind::PermissionDenied
        );
        let url = Url::parse("http://other.example.org/").unwrap();
        assert!(!p.check_url(&url).unwrap());
        let names_only = EndpointPolicy::new().allow_host("a.example").unwrap();
        assert!(names_only.check_url(&url).is_err());
    }

    #[test]
    fn bad_patterns_are_config_errors() {
        assert_eq!(
            EndpointPolicy::new()
                .allow_network("10.0.0.0/33")
                .unwrap_err()
                .kind(),
            ErrorKind::Config
        );
        assert!(EndpointPolicy::new().allow_host("a*.b").is_err());
        assert!(EndpointPolicy::new().allow_network("127.0.0.1").is_ok());
    }
}
