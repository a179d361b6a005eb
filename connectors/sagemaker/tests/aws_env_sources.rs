//! Credential sources the environment configures, as the ECS/EKS agents and
//! EKS IRSA set it: the ECS container endpoint (the testkit's **stand-in**,
//! written from AWS's documentation, handing out credentials moto's STS
//! issued), web identity from `AWS_ROLE_ARN`/`AWS_WEB_IDENTITY_TOKEN_FILE`,
//! and the SDK's default chain, each signing real calls to moto. The only
//! test of this binary, so that changing the environment races with nothing.

mod support;

use std::time::Duration;

use inferlink::{ErrorKind, ModelRef, RawRequest};
use inferlink_testkit::aws_metadata::{Answer, ECS_PATH, MetadataStandIn};
use inferlink_testkit::servers::ServerKind;
use serde_json::Value;

fn set(name: &str, value: &str) {
    // SAFETY: this binary runs one test; no other thread reads the environment.
    unsafe { std::env::set_var(name, value) }
}

fn unset(name: &str) {
    // SAFETY: as in `set`.
    unsafe { std::env::remove_var(name) }
}

use support::invoke_record as invoke;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecs_web_identity_and_the_default_chain_from_the_environment() {
    let Some(moto) = support::server(ServerKind::Moto).await else {
        return;
    };
    for name in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_EC2_METADATA_DISABLED",
    ] {
        unset(name);
    }
    let url = moto.http_url();
    let dir = tempfile::tempdir().unwrap();

    // ECS: full URI on loopback, the authorization token in a file.
    let (key_id, secret, token) = support::moto_role_credentials(moto).await;
    let ecs = MetadataStandIn::ecs(
        Answer::Credentials {
            access_key_id: key_id,
            secret_access_key: secret,
            token,
            lifetime: Duration::from_secs(3600),
        },
        "ecs-authorization-planted",
    )
    .await
    .unwrap();
    let token_file = dir.path().join("ecs-token");
    std::fs::write(&token_file, "ecs-authorization-planted").unwrap();
    set("AWS_CONTAINER_CREDENTIALS_FULL_URI", &ecs.ecs_uri());
    set(
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        token_file.to_str().unwrap(),
    );
    let record = [
        ("region", "us-east-1"),
        ("retry_max_attempts", "1"),
        ("aws_credential_source", "ecs"),
    ];
    let connector = support::connect(&url, &record, &[]).await.unwrap();
    for _ in 0..2 {
        connector
            .invoke(&ModelRef::new("env"), RawRequest::json("{}"))
            .await
            .unwrap();
    }
    assert_eq!(ecs.hits(ECS_PATH), 1, "fetched once, then cached");

    // A token the endpoint refuses: a typed error, neither token shown.
    std::fs::write(&token_file, "wrong-token-planted").unwrap();
    let e = invoke(&url, &record).await.unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Unauthenticated | ErrorKind::Unavailable | ErrorKind::Protocol
        ),
        "{e}"
    );
    assert!(!format!("{e} {e:?}").contains("planted"), "{e}");
    // AWS's rule: an http full URI must be loopback (or the agent's address).
    set(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "http://192.0.2.10/v2/credentials",
    );
    let hits = ecs.hits(ECS_PATH);
    let e = invoke(&url, &record).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert_eq!(ecs.hits(ECS_PATH), hits);
    unset("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    unset("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");

    // Web identity as EKS IRSA sets it: the role and token file from the
    // environment, only the (loopback) STS endpoint in the record.
    let text = std::fs::read_to_string(moto.instance_dir().join("credentials.json")).unwrap();
    let role_arn = serde_json::from_str::<Value>(&text).unwrap()["role_arn"]
        .as_str()
        .unwrap()
        .to_owned();
    let web_token = dir.path().join("web-token");
    std::fs::write(&web_token, "eyJhbGciOiJSUzI1NiJ9.e30.c2ln").unwrap();
    set("AWS_ROLE_ARN", &role_arn);
    set("AWS_WEB_IDENTITY_TOKEN_FILE", web_token.to_str().unwrap());
    set("AWS_ROLE_SESSION_NAME", "inferlink-env-irsa");
    invoke(
        &url,
        &[
            ("region", "us-east-1"),
            ("aws_credential_source", "web_identity"),
            ("aws_sts_endpoint_url", url.as_str()),
        ],
    )
    .await
    .unwrap();
    for name in [
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_SESSION_NAME",
    ] {
        unset(name);
    }
    // Without them: a Config error naming the key, before any request.
    let e = invoke(
        &url,
        &[
            ("region", "us-east-1"),
            ("aws_credential_source", "web_identity"),
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert_eq!(e.path(), Some("aws_role_arn"));

    // The SDK's default chain finds the environment's keys first.
    let (key_id, secret, _) = moto.aws_credentials().unwrap();
    set("AWS_ACCESS_KEY_ID", &key_id);
    set("AWS_SECRET_ACCESS_KEY", &secret);
    invoke(
        &url,
        &[
            ("region", "us-east-1"),
            ("aws_credential_source", "default_chain"),
        ],
    )
    .await
    .unwrap();
}
