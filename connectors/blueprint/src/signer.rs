//! The signer hook: a blueprint that says `signer: {kind: aws-sigv4,
//! service: …}` has each attempt signed with AWS Signature Version 4
//! (`inferlink_core::transport::sigv4`) through the transport's
//! `RequestSigner`, with the region and credentials of the record.

use std::collections::BTreeMap;
use std::sync::Arc;

use inferlink_core::kit::config_error;
use inferlink_core::transport::RequestSigner;
use inferlink_core::transport::sigv4::{AwsCredentials, SigV4Signer};
use inferlink_core::{ConfigValue, Result};

use crate::spec::{ConfigKey, SignerDoc, is_word};

/// Key: the AWS region signed for (`us-east-1`).
pub const REGION: &str = "region";
/// Key: the access key id (from credentials).
pub const ACCESS_KEY_ID: &str = "aws_access_key_id";
/// Key: the secret access key (from credentials).
pub const SECRET_ACCESS_KEY: &str = "aws_secret_access_key";
/// Key: the session token of temporary credentials (from credentials).
pub const SESSION_TOKEN: &str = "aws_session_token";

/// Why a blueprint's signer section does not hold, as (location, reason).
pub(crate) fn problem(
    signer: &SignerDoc,
    config: &BTreeMap<String, ConfigKey>,
) -> Option<(String, String)> {
    if signer.kind != "aws-sigv4" {
        return Some(("signer.kind".into(), "the only signer is aws-sigv4".into()));
    }
    if !is_word(&signer.service, b'-') {
        return Some((
            "signer.service".into(),
            "an AWS signing name such as bedrock".into(),
        ));
    }
    if !config.contains_key(REGION) {
        return Some((
            "config".into(),
            format!("the aws-sigv4 signer reads the key {REGION}: declare it"),
        ));
    }
    for key in [ACCESS_KEY_ID, SECRET_ACCESS_KEY, SESSION_TOKEN] {
        if config.get(key).is_some_and(|k| !k.secret) {
            return Some((
                format!("config.{key}"),
                "AWS credentials are secret: true".into(),
            ));
        }
    }
    None
}

/// The signer for `signer`, from the connector's resolved `values`: the
/// record's `aws_access_key_id` and `aws_secret_access_key` (and
/// `aws_session_token`), else the process environment's `AWS_*`
/// credentials. Errors are `Config` naming the key, never a value.
pub(crate) fn for_blueprint(
    signer: &SignerDoc,
    values: &BTreeMap<String, ConfigValue>,
) -> Result<Arc<dyn RequestSigner>> {
    let value = |key: &str| {
        values
            .get(key)
            .map(|v| v.expose().trim())
            .filter(|v| !v.is_empty())
    };
    let region =
        value(REGION).ok_or_else(|| config_error(REGION, "the aws-sigv4 signer needs a region"))?;
    if !is_word(region, b'-') {
        return Err(config_error(
            REGION,
            "a region is lower-case letters, digits and -",
        ));
    }
    let credentials = match (value(ACCESS_KEY_ID), value(SECRET_ACCESS_KEY)) {
        (Some(id), Some(secret)) => {
            let pair = AwsCredentials::new(id, secret);
            match value(SESSION_TOKEN) {
                Some(token) => pair.with_session_token(token),
                None => pair,
            }
        }
        (None, None) => AwsCredentials::from_env().ok_or_else(|| {
            let why = "no AWS credentials: set aws_access_key_id and aws_secret_access_key in the \
                       record's credentials (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment)";
            config_error(ACCESS_KEY_ID, why)
        })?,
        (Some(_), None) => return Err(config_error(SECRET_ACCESS_KEY, "is missing beside aws_access_key_id")),
        (None, Some(_)) => return Err(config_error(ACCESS_KEY_ID, "is missing beside aws_secret_access_key")),
    };
    Ok(Arc::new(
        SigV4Signer::new(credentials, region).with_signing_name(&signer.service),
    ))
}
