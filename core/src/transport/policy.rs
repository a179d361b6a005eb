//! Endpoint policy: which hosts and networks a transport may connect to.
//!
//! A host application that lets users register records (and so choose URLs)
//! can switch on an allow-list so that a record cannot point the library at
//! an arbitrary internal address (server-side request forgery). The policy is
//! evaluated on the URL actually requested, before any connection:
//!
//! * a host name matching an allowed host pattern is allowed;
//! * an IP address is allowed when the most specific network rule that
//!   contains it allows it (a tie goes to the rule added last);
//! * any other host name is resolved, and only its allowed addresses are
//!   used; none left → [`ErrorKind::PermissionDenied`].
//!
//! [`EndpointPolicy::public_only`] is the preset for hosts that call
//! endpoints they do not trust: every address except loopback, link-local,
//! private, cloud metadata and other special ranges. A host can also read a
//! policy from text ([`EndpointPolicy::from_spec`]: an environment variable,
//! a flag or a file).
//!
//! Redirects are never followed by the transport, so a server cannot send a
//! request elsewhere.

use std::ffi::OsStr;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::error::{Error, ErrorKind, Result, printable};

use super::config::TransportConfig;

/// An allow-list of hosts and networks, with denied networks carved out.
/// An empty policy allows nothing.
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
///
/// // For untrusted endpoints: public addresses only, plus one lab server.
/// let policy = EndpointPolicy::public_only().allow_network("10.1.2.3")?;
/// assert!(!policy.allows_ip("169.254.169.254".parse().unwrap()));
/// assert!(!policy.allows_ip("10.1.2.4".parse().unwrap()));
/// assert!(policy.allows_ip("10.1.2.3".parse().unwrap()));
/// # Ok::<(), inferlink_core::Error>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EndpointPolicy {
    hosts: Vec<String>,
    rules: Vec<NetworkRule>,
}

/// One network rule: allow or deny every address in `net`.
#[derive(Clone, Copy, PartialEq, Eq)]
struct NetworkRule {
    net: IpNet,
    allow: bool,
    /// Why a preset denies it (shown in errors).
    why: Option<&'static str>,
}

impl fmt::Debug for EndpointPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointPolicy")
            .field("hosts", &self.hosts)
            .field(
                "networks",
                &self
                    .rules
                    .iter()
                    .map(|r| format!("{} {}", if r.allow { "allow" } else { "deny" }, r.net))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// What [`EndpointPolicy::public_only`] denies, with the reason shown in errors.
const NOT_PUBLIC: &[(&str, &str)] = &[
    ("0.0.0.0/8", "unspecified / this network"),
    ("10.0.0.0/8", "private network"),
    (
        "100.64.0.0/10",
        "shared address space (carrier NAT; Alibaba Cloud metadata 100.100.100.200)",
    ),
    ("127.0.0.0/8", "loopback"),
    (
        "169.254.0.0/16",
        "link-local (cloud metadata 169.254.169.254, ECS 169.254.170.2)",
    ),
    ("172.16.0.0/12", "private network"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.168.0.0/16", "private network"),
    ("198.18.0.0/15", "benchmarking network"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved / broadcast"),
    ("::/96", "unspecified, loopback, IPv4-compatible"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("100::/64", "discard-only"),
    ("2001::/32", "Teredo (tunnels to any IPv4 address)"),
    ("2002::/16", "6to4 (tunnels to any IPv4 address)"),
    (
        "fc00::/7",
        "unique local (private; AWS metadata fd00:ec2::254)",
    ),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
];

impl EndpointPolicy {
    /// A policy that allows nothing yet.
    pub fn new() -> Self {
        EndpointPolicy::default()
    }

    /// The preset for hosts that call endpoints they do not trust: every
    /// public address, and none of loopback (`127.0.0.0/8`, `::1`),
    /// unspecified (`0.0.0.0/8`, `::`), link-local (`169.254.0.0/16` with the
    /// cloud metadata address `169.254.169.254`, `fe80::/10`), private
    /// (`10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`, `fc00::/7` with AWS's
    /// `fd00:ec2::254`), carrier NAT (`100.64.0.0/10` with Alibaba's
    /// `100.100.100.200`), multicast, reserved, and the IPv6 tunnels that
    /// embed an arbitrary IPv4 address (6to4, Teredo, local NAT64).
    /// Well-known NAT64 addresses (`64:ff9b::/96`) are judged by the IPv4
    /// address they carry.
    ///
    /// Rules added afterwards win where they are more specific (or equally
    /// specific): `public_only().allow_network("10.1.2.0/24")` re-admits one
    /// private network.
    pub fn public_only() -> Self {
        let mut p = EndpointPolicy::new();
        for all in ["0.0.0.0/0", "::/0"] {
            p.rules.push(NetworkRule {
                net: all.parse().expect("valid CIDR"),
                allow: true,
                why: None,
            });
        }
        for (net, why) in NOT_PUBLIC {
            p.rules.push(NetworkRule {
                net: net.parse().expect("valid CIDR"),
                allow: false,
                why: Some(why),
            });
        }
        p
    }

    /// A policy from text, for a host's command-line flag, environment
    /// variable or policy file. Rules are separated by commas, spaces or
    /// line breaks; `#` starts a comment that runs to the end of the line:
    ///
    /// * `public-only` — the [`EndpointPolicy::public_only`] preset;
    /// * `loopback` — [`EndpointPolicy::allow_loopback`];
    /// * `deny:CIDR` — [`EndpointPolicy::deny_network`];
    /// * a CIDR network or IP address (`10.0.0.0/8`, `::1`) — [`EndpointPolicy::allow_network`];
    /// * anything else — a host pattern for [`EndpointPolicy::allow_host`].
    ///
    /// Later rules win over earlier ones only when equally specific, so the
    /// order rarely matters. A text with no rule is a
    /// [`ErrorKind::Config`] error (an empty policy would allow nothing).
    pub fn from_spec(spec: &str) -> Result<Self> {
        let mut policy = EndpointPolicy::new();
        let mut any = false;
        for line in spec.lines() {
            let line = line.split('#').next().unwrap_or("");
            for token in line.split(|c: char| c == ',' || c.is_whitespace()) {
                let token = token.trim();
                if token.is_empty() {
                    continue;
                }
                any = true;
                policy = if token.eq_ignore_ascii_case("public-only") {
                    let preset = EndpointPolicy::public_only();
                    policy.rules.extend(preset.rules);
                    policy
                } else if token.eq_ignore_ascii_case("loopback") {
                    policy.allow_loopback()
                } else if let Some(net) = token.strip_prefix("deny:") {
                    policy.deny_network(net)?
                } else if token.parse::<IpNet>().is_ok() || token.parse::<IpAddr>().is_ok() {
                    policy.allow_network(token)?
                } else {
                    policy.allow_host(token)?
                };
            }
        }
        if !any {
            return Err(Error::new(
                ErrorKind::Config,
                "endpoint policy: no rule given (an empty policy would allow nothing); use \
                 `public-only`, networks, host patterns or `deny:CIDR`",
            ));
        }
        Ok(policy)
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
        self.rules.push(NetworkRule {
            net: parse_network(cidr)?,
            allow: true,
            why: None,
        });
        Ok(self)
    }

    /// Denies a network (CIDR or a single address) inside the allowed ones:
    /// an address is judged by the most specific rule that contains it.
    pub fn deny_network(mut self, cidr: &str) -> Result<Self> {
        self.rules.push(NetworkRule {
            net: parse_network(cidr)?,
            allow: false,
            why: None,
        });
        Ok(self)
    }

    /// Allows the loopback networks `127.0.0.0/8` and `::1/128`.
    pub fn allow_loopback(self) -> Self {
        let mut p = self;
        for net in ["127.0.0.0/8", "::1/128"] {
            p.rules.push(NetworkRule {
                net: net.parse().expect("valid CIDR"),
                allow: true,
                why: None,
            });
        }
        p
    }

    /// The most specific rule containing `ip` (the last one on a tie).
    fn rule_for(&self, ip: IpAddr) -> Option<&NetworkRule> {
        let mut best: Option<&NetworkRule> = None;
        for rule in self.rules.iter().filter(|r| r.net.contains(&ip)) {
            if best.is_none_or(|b| rule.net.prefix_len() >= b.net.prefix_len()) {
                best = Some(rule);
            }
        }
        best
    }

    /// True when the most specific network rule containing `ip` allows it.
    /// IPv4-mapped IPv6 addresses count as IPv4; a well-known NAT64 address
    /// (`64:ff9b::/96`) must be allowed both as itself and as the IPv4
    /// address it carries.
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        self.denial(ip).is_none()
    }

    /// Why `ip` is not allowed (`None` when it is).
    fn denial(&self, ip: IpAddr) -> Option<String> {
        let mut judged = vec![ip];
        if let IpAddr::V6(v6) = ip {
            if let Some(v4) = v6.to_ipv4_mapped() {
                judged = vec![IpAddr::V4(v4)];
            } else if v6.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let o = v6.octets();
                judged.push(IpAddr::V4([o[12], o[13], o[14], o[15]].into()));
            }
        }
        judged.into_iter().find_map(|ip| match self.rule_for(ip) {
            Some(rule) if rule.allow => None,
            Some(rule) => Some(match rule.why {
                Some(why) => format!("{ip} is in {}, denied: {why}", rule.net),
                None => format!("{ip} is in {}, denied", rule.net),
            }),
            None => Some(format!("{ip} is in no allowed network")),
        })
    }

    /// True when some network rule allows addresses (host names may then
    /// be resolved and judged by address).
    fn allows_some_network(&self) -> bool {
        self.rules.iter().any(|r| r.allow)
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
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            Some(url::Host::Domain(d)) if self.allows_host_name(d) => return Ok(true),
            Some(url::Host::Domain(_)) if self.allows_some_network() => return Ok(false),
            Some(url::Host::Domain(d)) => {
                return Err(policy_denied(format!(
                    "{} (the host is not allowed by name)",
                    printable(d.to_owned(), 256)
                )));
            }
            None => return Err(policy_denied("a URL without host".to_owned())),
        };
        match self.denial(ip) {
            None => Ok(true),
            Some(why) => Err(policy_denied(format!("{ip} ({why})"))),
        }
    }

    /// Checks a resolved address list: the allowed addresses, or an error
    /// saying why each was refused.
    pub(crate) fn filter_resolved(
        &self,
        host: &str,
        found: Vec<SocketAddr>,
    ) -> std::result::Result<Vec<SocketAddr>, PolicyDenied> {
        if self.allows_host_name(host) {
            return Ok(found);
        }
        let mut refused = Vec::new();
        let allowed: Vec<SocketAddr> = found
            .into_iter()
            .filter(|a| match self.denial(a.ip()) {
                None => true,
                Some(why) => {
                    refused.push(why);
                    false
                }
            })
            .collect();
        if allowed.is_empty() {
            refused.truncate(4);
            return Err(PolicyDenied(format!(
                "{} resolves to no address the endpoint policy allows ({})",
                printable(host.to_owned(), 256),
                if refused.is_empty() {
                    "no address found".to_owned()
                } else {
                    refused.join("; ")
                }
            )));
        }
        Ok(allowed)
    }
}

/// The [`ErrorKind::PermissionDenied`] error of a refused endpoint.
fn policy_denied(target: String) -> Error {
    Error::new(
        ErrorKind::PermissionDenied,
        format!("the endpoint policy does not allow connections to {target}"),
    )
}

fn parse_network(cidr: &str) -> Result<IpNet> {
    let text = cidr.trim();
    match text.parse::<IpNet>() {
        Ok(net) => Ok(net.trunc()),
        Err(_) => match text.parse::<IpAddr>() {
            Ok(ip) => Ok(IpNet::from(ip)),
            Err(_) => Err(Error::new(
                ErrorKind::Config,
                format!(
                    "endpoint policy: `{}` is not a CIDR network or IP address",
                    printable(cidr.to_owned(), 128)
                ),
            )),
        },
    }
}

/// The transport settings only a host application may make — the endpoint
/// policy and the directories `*_file` keys may read — in the form an
/// operator gives them: environment variables (or a flag with the same
/// text). The `inferlink` CLI and the `host_app` example read them this way.
///
/// ```
/// use inferlink_core::transport::{HostTransportSettings, TransportConfig};
///
/// let host = HostTransportSettings::from_values(Some("public-only, 10.1.2.3"), None)?;
/// let defaults = host.apply_to(TransportConfig::default());
/// assert!(defaults.endpoint_policy.is_some());
/// # Ok::<(), inferlink_core::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HostTransportSettings {
    /// The endpoint policy; `None` allows every host.
    pub endpoint_policy: Option<EndpointPolicy>,
    /// Directories whose files `*_file` keys may name (see
    /// [`TransportConfig::allowed_file_dirs`]).
    pub allowed_file_dirs: Vec<PathBuf>,
}

impl HostTransportSettings {
    /// The environment variable holding an endpoint policy: the text of
    /// [`EndpointPolicy::from_spec`], or `@PATH` to read it from a file.
    pub const POLICY_ENV: &'static str = "INFERLINK_ENDPOINT_POLICY";
    /// The environment variable listing the directories `*_file` keys may
    /// read, separated like `PATH` (`:` on Unix).
    pub const FILE_DIRS_ENV: &'static str = "INFERLINK_ALLOW_FILE_DIRS";

    /// Reads [`Self::POLICY_ENV`] and [`Self::FILE_DIRS_ENV`]; unset means
    /// no policy and no directory. Errors: [`ErrorKind::Config`] naming the
    /// variable.
    pub fn from_env() -> Result<Self> {
        let policy = match std::env::var(Self::POLICY_ENV) {
            Ok(text) => Some(text),
            Err(std::env::VarError::NotPresent) => None,
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(
                    Error::new(ErrorKind::Config, "is not valid UTF-8").with_path(Self::POLICY_ENV)
                );
            }
        };
        let dirs = std::env::var_os(Self::FILE_DIRS_ENV);
        HostTransportSettings::from_values(policy.as_deref(), dirs.as_deref())
    }

    /// The settings from an endpoint policy text (or `@PATH` of a policy
    /// file, at most 1 MiB) and a `PATH`-style list of directories, as a
    /// flag or environment variable gives them. A directory must be an
    /// absolute path to an existing directory.
    pub fn from_values(policy: Option<&str>, file_dirs: Option<&OsStr>) -> Result<Self> {
        let endpoint_policy = match policy {
            None => None,
            Some(text) => Some(
                policy_text(text)
                    .and_then(|t| EndpointPolicy::from_spec(&t))
                    .map_err(|e| {
                        Error::new(ErrorKind::Config, e.message().to_owned())
                            .with_path(Self::POLICY_ENV)
                    })?,
            ),
        };
        let mut allowed_file_dirs = Vec::new();
        for dir in file_dirs.map(std::env::split_paths).into_iter().flatten() {
            if dir.as_os_str().is_empty() {
                continue;
            }
            if !dir.is_absolute() || !dir.is_dir() {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!(
                        "{} is not an absolute path of a directory",
                        printable(dir.display().to_string(), 256)
                    ),
                )
                .with_path(Self::FILE_DIRS_ENV));
            }
            allowed_file_dirs.push(dir);
        }
        Ok(HostTransportSettings {
            endpoint_policy,
            allowed_file_dirs,
        })
    }

    /// True when nothing is set (the library's defaults apply).
    pub fn is_empty(&self) -> bool {
        self.endpoint_policy.is_none() && self.allowed_file_dirs.is_empty()
    }

    /// `config` (a connector's transport defaults) with these settings.
    pub fn apply_to(&self, mut config: TransportConfig) -> TransportConfig {
        if self.endpoint_policy.is_some() {
            config.endpoint_policy.clone_from(&self.endpoint_policy);
        }
        if !self.allowed_file_dirs.is_empty() {
            config.allowed_file_dirs.clone_from(&self.allowed_file_dirs);
        }
        config
    }
}

/// The policy text itself, or the content of the file `@PATH` names.
fn policy_text(value: &str) -> Result<String> {
    let Some(path) = value.strip_prefix('@') else {
        return Ok(value.to_owned());
    };
    let shown = printable(path.to_owned(), 256);
    let meta = std::fs::metadata(path).map_err(|e| {
        Error::new(
            ErrorKind::Config,
            format!("cannot read the policy file {shown}: {}", e.kind()),
        )
    })?;
    if !meta.is_file() || meta.len() > super::PEM_FILE_MAX_BYTES {
        return Err(Error::new(
            ErrorKind::Config,
            format!("the policy file {shown} is not a regular file of at most 1 MiB"),
        ));
    }
    std::fs::read_to_string(path).map_err(|e| {
        Error::new(
            ErrorKind::Config,
            format!("cannot read the policy file {shown}: {}", e.kind()),
        )
    })
}

/// The marker error a policy-filtered resolution fails with.
#[derive(Debug)]
pub(crate) struct PolicyDenied(pub(crate) String);

impl fmt::Display for PolicyDenied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
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
            let allowed = policy
                .filter_resolved(&host, found)
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The gRPC twin of [`PolicyResolver`], for the channel's HTTP connector.
#[cfg(feature = "grpc")]
#[derive(Clone)]
pub(crate) struct GrpcPolicyResolver(pub(crate) Arc<EndpointPolicy>);

#[cfg(feature = "grpc")]
impl tower_service::Service<hyper_util::client::legacy::connect::dns::Name> for GrpcPolicyResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = std::result::Result<Self::Response, Self::Error>>
                + Send,
        >,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::result::Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: hyper_util::client::legacy::connect::dns::Name) -> Self::Future {
        let policy = Arc::clone(&self.0);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed = policy.filter_resolved(&host, found)?;
            Ok(allowed.into_iter())
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

    #[test]
    fn public_only_denies_loopback_link_local_private_and_metadata_addresses() {
        let p = EndpointPolicy::public_only();
        for denied in [
            "127.0.0.1",
            "127.1.2.3",
            "0.0.0.0",
            "169.254.169.254",
            "169.254.170.2",
            "100.100.100.200",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "fd00:ec2::254",
            "fe80::1",
            "2002:a9fe:a9fe::1",
        ] {
            let ip: IpAddr = denied.parse().unwrap();
            assert!(!p.allows_ip(ip), "{denied} must be denied");
        }
        for allowed in [
            "8.8.8.8",
            "93.184.216.34",
            "2606:4700::1111",
            "64:ff9b::808:808",
        ] {
            let ip: IpAddr = allowed.parse().unwrap();
            assert!(p.allows_ip(ip), "{allowed} must be allowed");
        }
        let url = Url::parse("http://169.254.169.254/latest/meta-data/").unwrap();
        let e = p.check_url(&url).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        assert!(e.message().contains("link-local"), "{e}");
        // A name is resolved and judged by address.
        let url = Url::parse("http://models.example.com/").unwrap();
        assert!(!p.check_url(&url).unwrap());
    }

    #[test]
    fn a_more_specific_rule_wins_and_ties_go_to_the_last() {
        let p = EndpointPolicy::public_only()
            .allow_network("127.0.0.1")
            .unwrap();
        assert!(p.allows_ip("127.0.0.1".parse().unwrap()));
        assert!(!p.allows_ip("127.0.0.2".parse().unwrap()));
        let p = EndpointPolicy::public_only()
            .allow_network("10.0.0.0/8")
            .unwrap();
        assert!(p.allows_ip("10.9.9.9".parse().unwrap()), "tie: later wins");
        let p = EndpointPolicy::new()
            .allow_network("10.0.0.0/8")
            .unwrap()
            .deny_network("10.0.0.0/24")
            .unwrap();
        assert!(!p.allows_ip("10.0.0.7".parse().unwrap()));
        assert!(p.allows_ip("10.0.1.7".parse().unwrap()));
    }

    #[test]
    fn policies_read_from_text() {
        let p = EndpointPolicy::from_spec(
            "public-only, 127.0.0.1/32  # the lab server\n*.svc.cluster.local\ndeny:8.8.8.0/24",
        )
        .unwrap();
        assert!(p.allows_ip("127.0.0.1".parse().unwrap()));
        assert!(!p.allows_ip("169.254.169.254".parse().unwrap()));
        assert!(!p.allows_ip("8.8.8.8".parse().unwrap()));
        assert!(p.allows_ip("8.8.4.4".parse().unwrap()));
        assert!(p.allows_host_name("kserve.ns.svc.cluster.local"));
        assert_eq!(
            EndpointPolicy::from_spec("loopback").unwrap(),
            EndpointPolicy::new().allow_loopback()
        );
        for bad in ["", " # nothing", "deny:nonsense", "a*b", "10.0.0.0/33"] {
            let e = EndpointPolicy::from_spec(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad:?}");
        }
    }

    #[test]
    fn host_settings_from_text_and_files() {
        let host = HostTransportSettings::from_values(None, None).unwrap();
        assert!(host.is_empty());
        let before = TransportConfig::default();
        let after = host.apply_to(before.clone());
        assert_eq!(after.endpoint_policy, before.endpoint_policy);

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("policy.txt");
        std::fs::write(&file, "# lab\npublic-only\n127.0.0.1\n").unwrap();
        let spec = format!("@{}", file.display());
        let list = std::env::join_paths([dir.path(), std::path::Path::new("/tmp")]).unwrap();
        let host = HostTransportSettings::from_values(Some(&spec), Some(&list)).unwrap();
        let policy = host.endpoint_policy.clone().unwrap();
        assert!(policy.allows_ip("127.0.0.1".parse().unwrap()));
        assert!(!policy.allows_ip("169.254.169.254".parse().unwrap()));
        let c = host.apply_to(TransportConfig::default());
        assert_eq!(c.allowed_file_dirs.len(), 2);

        let e = HostTransportSettings::from_values(Some("nonsense*"), None).unwrap_err();
        assert_eq!(e.path(), Some(HostTransportSettings::POLICY_ENV));
        let e = HostTransportSettings::from_values(Some("@/nonexistent/policy"), None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        let e =
            HostTransportSettings::from_values(None, Some(OsStr::new("relative/dir"))).unwrap_err();
        assert_eq!(e.path(), Some(HostTransportSettings::FILE_DIRS_ENV));
    }

    #[test]
    fn resolved_addresses_are_filtered_with_reasons() {
        let p = EndpointPolicy::public_only();
        let found: Vec<SocketAddr> =
            vec!["127.0.0.1:0".parse().unwrap(), "[::1]:0".parse().unwrap()];
        let e = p.filter_resolved("localhost", found).unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
        let found: Vec<SocketAddr> =
            vec!["127.0.0.1:0".parse().unwrap(), "1.1.1.1:0".parse().unwrap()];
        assert_eq!(
            p.filter_resolved("mixed.example", found).unwrap(),
            vec!["1.1.1.1:0".parse::<SocketAddr>().unwrap()]
        );
    }
}
