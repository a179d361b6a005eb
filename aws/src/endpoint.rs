//! Where credential requests may go: the rule that keeps a record from
//! sending a web identity token, a container authorization token or a
//! signed STS request to a host of its choosing.
//!
//! An endpoint a record names (`aws_sts_endpoint_url`, `aws_imds_endpoint`)
//! is accepted when its host is
//!
//! * a loopback address or `localhost` (`http` or `https`: local test
//!   servers and local proxies), or
//! * for STS, an AWS host over `https`: a name under `amazonaws.com`,
//!   `amazonaws.com.cn` or `api.aws` (regional, FIPS and VPC endpoints), or
//! * for IMDS, the instance metadata addresses `169.254.169.254` and
//!   `fd00:ec2::254` over `http`, as AWS defines them.
//!
//! Any other endpoint is a `Config` error naming the key. The ECS container
//! endpoint comes from the environment the ECS or EKS agent sets, where the
//! AWS SDK applies AWS's own rule (an `http` full URI must be loopback or
//! one of the container credential addresses).

use std::net::IpAddr;

use inferlink_core::Result;
use inferlink_core::kit::config_error;

/// Which credential service an endpoint is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// The Security Token Service (AssumeRole, AssumeRoleWithWebIdentity).
    Sts,
    /// The EC2 instance metadata service.
    Imds,
}

/// AWS's instance metadata addresses (IPv4 and IPv6).
pub const IMDS_ADDRESSES: [&str; 2] = ["169.254.169.254", "fd00:ec2::254"];

/// The DNS suffixes of AWS's own hosts, accepted for STS over https.
pub const AWS_HOST_SUFFIXES: [&str; 3] = [".amazonaws.com", ".amazonaws.com.cn", ".api.aws"];

/// True when `host` (a URL host, IPv6 without brackets) is loopback.
pub fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

/// Checks the endpoint `url` the key `key` names for `service` (the rule in
/// the module documentation) and returns it without surrounding white space.
pub fn check_endpoint(key: &str, service: Service, url: &str) -> Result<String> {
    let url = url.trim();
    let parsed = url::Url::parse(url).map_err(|_| config_error(key, "is not a URL"))?;
    let scheme = parsed.scheme();
    if scheme != "http" && scheme != "https" {
        return Err(config_error(key, "must be an http or https URL"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(config_error(key, "must not carry user information"));
    }
    let host = match parsed.host() {
        Some(url::Host::Domain(name)) => name.to_ascii_lowercase(),
        Some(url::Host::Ipv4(address)) => address.to_string(),
        Some(url::Host::Ipv6(address)) => address.to_string(),
        None => return Err(config_error(key, "has no host")),
    };
    let allowed = is_loopback_host(&host)
        || match service {
            Service::Sts => {
                scheme == "https" && AWS_HOST_SUFFIXES.iter().any(|s| host.ends_with(s))
            }
            Service::Imds => scheme == "http" && IMDS_ADDRESSES.contains(&host.as_str()),
        };
    if !allowed {
        let why = match service {
            Service::Sts => {
                "must be a loopback host, or an https AWS host (…amazonaws.com, …amazonaws.com.cn, …api.aws): credentials and tokens go there"
            }
            Service::Imds => {
                "must be a loopback host or the instance metadata address (http://169.254.169.254, http://[fd00:ec2::254])"
            }
        };
        return Err(config_error(key, why));
    }
    Ok(url.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_aws_hosts_and_imds_only() {
        for (service, url) in [
            (Service::Sts, "http://127.0.0.1:5000"),
            (Service::Sts, "http://[::1]:5000/"),
            (Service::Sts, "http://localhost:1"),
            (Service::Sts, "https://sts.us-east-1.amazonaws.com"),
            (
                Service::Sts,
                "https://vpce-1-a.sts.us-east-1.vpce.amazonaws.com",
            ),
            (Service::Sts, "https://sts.cn-north-1.amazonaws.com.cn"),
            (Service::Imds, "http://169.254.169.254"),
            (Service::Imds, "http://[fd00:ec2::254]"),
            (Service::Imds, "http://127.0.0.1:8080"),
        ] {
            assert!(check_endpoint("k", service, url).is_ok(), "{url}");
        }
        for (service, url) in [
            (Service::Sts, "http://sts.us-east-1.amazonaws.com"),
            (Service::Sts, "https://attacker.example"),
            (Service::Sts, "https://amazonaws.com.attacker.example"),
            (Service::Sts, "https://u:p@127.0.0.1"),
            (Service::Sts, "ftp://127.0.0.1"),
            (Service::Sts, "not a url"),
            (Service::Imds, "http://169.254.169.253"),
            (Service::Imds, "https://169.254.169.254"),
            (Service::Imds, "http://10.0.0.1"),
        ] {
            let e = check_endpoint("k", service, url).unwrap_err();
            assert_eq!(e.path(), Some("k"), "{url}");
        }
    }
}
