//! What the credential chain really sends to STS: a recording proxy
//! (`inferlink_testkit::recorder`, forwarding every request unchanged) in
//! front of moto's STS (`ServerKind::Moto`, signatures checked) keeps the
//! `AssumeRole` and `AssumeRoleWithWebIdentity` requests of the AWS SDK's
//! providers, and the credentials they obtained sign a real
//! `GetCallerIdentity` as the role. moto does not check external ids; the
//! recorded request shows the SDK sends the record's (or the profile's).

use inferlink_aws::AwsAuthConfig;
use inferlink_core::ConfigValue;
use inferlink_testkit::aws_chain::{MotoChain, PROFILE_EXTERNAL_ID, SESSION_NAME};
use inferlink_testkit::live::shared_server;
use inferlink_testkit::recorder::RecordingProxy;
use inferlink_testkit::servers::ServerKind;

const ROLE_PATH: &str = ":assumed-role/inferlink-role/";

/// moto's chain records and a recorder in front of moto.
async fn moto_behind_recorder() -> Option<(MotoChain, RecordingProxy)> {
    let server = shared_server(ServerKind::Moto).await?;
    let chain = MotoChain::new(server).unwrap();
    let proxy = RecordingProxy::start(&chain.url()).await.unwrap();
    Some((chain, proxy))
}

fn config(lines: &[(String, String)]) -> AwsAuthConfig {
    let pairs: Vec<(String, ConfigValue)> = lines
        .iter()
        .map(|(k, v)| (k.clone(), ConfigValue::Plain(v.clone())))
        .collect();
    let mut config = AwsAuthConfig::new();
    config.read_keys(&pairs).unwrap();
    config
}

fn param<'a>(call: &'a [(String, String)], name: &str) -> Option<&'a str> {
    call.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Signs `GetCallerIdentity` with the credentials `record` obtains, checks
/// moto answers as the role's session `session`, and returns the parameters
/// of the newest `action` the recorder forwarded (its role ARN and session
/// name checked) with how many there were.
async fn assumed(
    chain: &MotoChain,
    proxy: &RecordingProxy,
    record: &[(String, String)],
    action: &str,
    session: &str,
) -> (Vec<(String, String)>, usize) {
    let signer = config(record).signer("sts", "us-east-1").unwrap();
    let arn = chain.caller_arn(signer).await.unwrap();
    assert!(arn.ends_with(&format!("{ROLE_PATH}{session}")), "{arn}");
    let mut calls = proxy.form_calls(action);
    let count = calls.len();
    let call = calls.pop().expect("a recorded call");
    assert_eq!(param(&call, "RoleArn"), Some(chain.role_arn.as_str()));
    assert_eq!(param(&call, "RoleSessionName"), Some(session));
    (call, count)
}

fn lines(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// An `assume_role` record of the launcher's role, called with the user's
/// keys through `sts`, with `session` and `more` lines.
fn assume_role(
    chain: &MotoChain,
    sts: &str,
    session: &str,
    more: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut record = lines(&[
        ("aws_credential_source", "assume_role"),
        ("aws_role_arn", &chain.role_arn),
        ("aws_role_session_name", session),
        ("aws_sts_endpoint_url", sts),
        ("AWS_ACCESS_KEY_ID", &chain.key_id),
        ("AWS_SECRET_ACCESS_KEY", &chain.secret),
    ]);
    record.extend(lines(more));
    record
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assume_role_sends_the_external_id_session_name_and_duration() {
    let Some((chain, proxy)) = moto_behind_recorder().await else {
        return;
    };
    let sts = proxy.url();
    let record = assume_role(
        &chain,
        &sts,
        "inferlink-recorded",
        &[
            ("aws_external_id", "inferlink-recorded-external-id"),
            ("aws_role_duration_s", "1200"),
        ],
    );
    let (call, count) = assumed(&chain, &proxy, &record, "AssumeRole", "inferlink-recorded").await;
    assert_eq!(count, 1);
    assert_eq!(
        param(&call, "ExternalId"),
        Some("inferlink-recorded-external-id")
    );
    assert_eq!(param(&call, "DurationSeconds"), Some("1200"));
    // Signed with the user's key for STS (moto checked the signature and
    // answered; the role's credentials then signed GetCallerIdentity).
    let request = &proxy.recorded()[0];
    let authorization = request.header("authorization").unwrap();
    assert!(
        authorization.starts_with(&format!("AWS4-HMAC-SHA256 Credential={}/", chain.key_id)),
        "{authorization}"
    );
    assert!(authorization.contains("/us-east-1/sts/aws4_request"));
    assert!(!format!("{proxy:?}").contains(&chain.secret));

    // Without external id and duration, neither is sent.
    let record = assume_role(&chain, &sts, "inferlink-plain", &[]);
    let (call, count) = assumed(&chain, &proxy, &record, "AssumeRole", "inferlink-plain").await;
    assert_eq!(count, 2);
    assert_eq!(param(&call, "ExternalId"), None);
    assert_eq!(param(&call, "DurationSeconds"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_identity_sends_the_token_session_name_and_duration() {
    let Some((chain, proxy)) = moto_behind_recorder().await else {
        return;
    };
    let web = chain
        .records()
        .into_iter()
        .find(|r| r.name == "web_identity")
        .unwrap();
    let mut record: Vec<(String, String)> = web
        .configuration
        .into_iter()
        .filter(|(k, _)| k != "aws_sts_endpoint_url")
        .collect();
    record.extend(lines(&[
        ("aws_sts_endpoint_url", &proxy.url()),
        ("aws_role_duration_s", "1800"),
    ]));
    let action = "AssumeRoleWithWebIdentity";
    let (call, count) = assumed(&chain, &proxy, &record, action, SESSION_NAME).await;
    assert_eq!(count, 1);
    assert_eq!(param(&call, "DurationSeconds"), Some("1800"));
    assert!(param(&call, "WebIdentityToken").is_some_and(|t| t.starts_with("eyJ")));
    // The token file's trailing newline is not sent.
    assert!(!param(&call, "WebIdentityToken").unwrap().ends_with('\n'));
    // AssumeRoleWithWebIdentity is not signed.
    assert_eq!(proxy.recorded()[0].header("authorization"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_with_role_arn_and_source_profile_assumes_the_role() {
    let Some((chain, proxy)) = moto_behind_recorder().await else {
        return;
    };
    // role_arn + source_profile + external_id in the config file, its STS
    // endpoint the profile's endpoint_url (here the recorder before moto).
    let record = chain
        .add_role_profile(
            "inferlink-recorded-role",
            &proxy.url(),
            Some(PROFILE_EXTERNAL_ID),
        )
        .unwrap();
    let configuration = &record.configuration;
    let (call, count) = assumed(&chain, &proxy, configuration, "AssumeRole", SESSION_NAME).await;
    assert_eq!(count, 1);
    assert_eq!(param(&call, "ExternalId"), Some(PROFILE_EXTERNAL_ID));
    let authorization = proxy.recorded()[0]
        .header("authorization")
        .unwrap()
        .to_owned();
    assert!(
        authorization.contains(&chain.key_id),
        "source_profile's key signs"
    );

    // The record's aws_sts_endpoint_url is for assume_role and web_identity;
    // with a profile it is refused (the profile names its own endpoint).
    let mut lines_with_sts = record.configuration.clone();
    lines_with_sts.push(("aws_sts_endpoint_url".into(), chain.url()));
    let pairs: Vec<(String, ConfigValue)> = lines_with_sts
        .into_iter()
        .map(|(k, v)| (k, ConfigValue::Plain(v)))
        .collect();
    let e = AwsAuthConfig::new().read_keys(&pairs).unwrap_err();
    assert_eq!(e.path(), Some("aws_sts_endpoint_url"), "{e}");
}
