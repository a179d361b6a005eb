//! EC2 instance credentials (IMDSv2) through the AWS SDK's provider, from
//! the testkit's IMDS **stand-in** (`inferlink_testkit::aws_metadata`,
//! written from AWS's documentation), signing real calls to moto; and the
//! stand-in's hostile answers as typed errors that never show a secret.

mod support;

use inferlink::{ErrorKind, ModelRef, RawRequest};
use inferlink_testkit::aws_metadata::{Answer, IMDS_ROLE, MetadataStandIn};
use inferlink_testkit::servers::ServerKind;
use std::time::Duration;

const CREDENTIALS_PATH: &str = "/latest/meta-data/iam/security-credentials/";

fn imds_record(server_url: &str, imds_url: &str) -> Vec<(String, String)> {
    [
        ("region", "us-east-1"),
        ("retry_max_attempts", "1"),
        ("aws_credential_source", "imds"),
        ("aws_imds_endpoint", imds_url),
        ("x_moto", server_url),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

async fn invoke(url: &str, record: &[(String, String)]) -> inferlink::Result<()> {
    let record: Vec<(&str, &str)> = record
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    support::invoke_record(url, &record).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_credentials_sign_real_calls_and_are_cached() {
    let Some(moto) = support::server(ServerKind::Moto).await else {
        return;
    };
    // Real temporary credentials from moto's STS, handed out by the stand-in.
    let (key_id, secret, token) = support::moto_role_credentials(moto).await;
    let imds = MetadataStandIn::imds(Answer::Credentials {
        access_key_id: key_id,
        secret_access_key: secret,
        token,
        lifetime: Duration::from_secs(6 * 3600),
    })
    .await
    .unwrap();
    let role_path = format!("{CREDENTIALS_PATH}{IMDS_ROLE}");
    let record = imds_record(&moto.http_url(), &imds.url());
    let record: Vec<(&str, &str)> = record
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let connector = support::connect(&moto.http_url(), &record, &[])
        .await
        .unwrap();
    for _ in 0..3 {
        connector
            .invoke(&ModelRef::new("imds"), RawRequest::json("{}"))
            .await
            .unwrap();
    }
    // A session token first (IMDSv2), the role's name, then its credentials,
    // fetched once for three signed calls.
    assert!(imds.hits("/latest/api/token") >= 1);
    assert_eq!(imds.hits(&role_path), 1);

    // Another instance role's keys, unknown to moto: refused by moto, typed.
    imds.set_answer(Answer::Credentials {
        access_key_id: "AKIAUNKNOWNTOMOTO".into(),
        secret_access_key: "unknown-secret-planted".into(),
        token: "t".into(),
        lifetime: Duration::from_secs(3600),
    });
    let record = imds_record(&moto.http_url(), &imds.url());
    let e = invoke(&moto.http_url(), &record).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    assert!(!format!("{e} {e:?}").contains("planted"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_instance_metadata_answers_are_typed_errors() {
    // Nothing is signed here: the fault is in the credentials, before any call.
    let imds = MetadataStandIn::imds(Answer::InvalidJson).await.unwrap();
    let target = "http://127.0.0.1:9";
    for (answer, kinds) in [
        (Answer::InvalidJson, &[ErrorKind::Protocol][..]),
        (Answer::MissingSecret, &[ErrorKind::Protocol][..]),
        (
            // Past the 256 KiB cap, yet small enough that the SDK's 1 s IMDS read
            // timeout is far less likely to fire first on a loaded machine.
            Answer::Huge(512 * 1024),
            &[ErrorKind::Protocol, ErrorKind::InvalidInput][..],
        ),
    ] {
        let label = format!("{answer:?}").chars().take(40).collect::<String>();
        imds.set_answer(answer);
        let record = imds_record(target, &imds.url());
        let e = invoke(target, &record).await.unwrap_err();
        assert!(kinds.contains(&e.kind()), "{label}: {e}");
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("planted"), "{label}: {shown}");
        assert!(shown.len() < 4096, "{label}: {} bytes", shown.len());
        if label.starts_with("Huge") {
            // Cut off by the guarded HTTP client, not buffered whole.
            assert!(shown.contains("longer than"), "{shown}");
        }
    }
    // An endpoint that is neither loopback nor the metadata address: refused
    // when the record is read, before anything is sent.
    let record = imds_record(target, "http://10.9.8.7");
    let e = invoke(target, &record).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert_eq!(e.path(), Some("aws_imds_endpoint"));
}
