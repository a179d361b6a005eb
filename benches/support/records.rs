//! Building blocks of the generated records shared by the registry benches.

use inferlink::{Configuration, Endpoint, EndpointType, Secret, SecretConfiguration};

/// Plain configuration from key/value pairs.
pub fn config(pairs: &[(&str, String)]) -> Configuration {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// Credential values from key/value pairs.
pub fn secrets(pairs: &[(&str, String)]) -> SecretConfiguration {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Secret::new(v.as_str())))
        .collect()
}

/// A service's two endpoints: `internal` (no configuration), then
/// `external` (with `TLS_VERIFY`).
pub fn internal_and_external(internal: String, external: String) -> Vec<Endpoint> {
    vec![
        Endpoint {
            url: internal,
            endpoint_type: EndpointType::Internal,
            configuration: Configuration::new(),
        },
        Endpoint {
            url: external,
            endpoint_type: EndpointType::External,
            configuration: config(&[("TLS_VERIFY", "true".into())]),
        },
    ]
}
