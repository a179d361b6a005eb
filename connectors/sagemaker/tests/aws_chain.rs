//! The AWS credential chain against moto (`ServerKind::Moto`, signatures
//! verified): credentials from a profile file, from `AssumeRole` with an
//! external id, and from a web identity token file, each signing a real
//! SageMaker `InvokeEndpoint` and an STS `GetCallerIdentity` that moto
//! answers only for a correct signature with credentials it issued.
//! Expiry is driven by the cache's clock: no sleeping.
//!
//! moto does not check external ids or trust policies; the role's
//! permissions and every signature it does check.

mod support;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use inferlink::{ErrorKind, ModelRef, RawRequest};
use inferlink_aws::{AwsAuthConfig, CachedCredentials, CredentialsProvider, SigV4Signer};
use inferlink_core::ConfigValue;
use inferlink_core::kit::ConnectorConfig;
use inferlink_sagemaker::{SageMakerClient, SageMakerConfig};
use inferlink_testkit::aws_chain::MotoChain;
use inferlink_testkit::fault::{Fault, FaultOptions, FaultServer};
use inferlink_testkit::servers::{RunningServer, ServerKind};
use serde_json::Value;

struct Moto {
    server: &'static RunningServer,
    key_id: String,
    secret: String,
    role_arn: String,
}

async fn moto() -> Option<Moto> {
    let server = support::server(ServerKind::Moto).await?;
    let text = std::fs::read_to_string(server.instance_dir().join("credentials.json")).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let field = |name: &str| json[name].as_str().expect(name).to_owned();
    Some(Moto {
        server,
        key_id: field("access_key_id"),
        secret: field("secret_access_key"),
        role_arn: field("role_arn"),
    })
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, ConfigValue)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), ConfigValue::Plain((*v).to_owned())))
        .collect()
}

impl Moto {
    fn url(&self) -> String {
        self.server.http_url()
    }

    /// The record lines of AssumeRole of the test role, with the user's keys as caller.
    fn assume_role_record(&self, session: &str) -> Vec<(String, String)> {
        [
            ("region", "us-east-1"),
            ("retry_max_attempts", "1"),
            ("aws_credential_source", "assume_role"),
            ("aws_role_arn", self.role_arn.as_str()),
            ("aws_external_id", "inferlink-external-id"),
            ("aws_role_session_name", session),
            ("aws_role_duration_s", "900"),
            ("aws_sts_endpoint_url", &self.url()),
            ("AWS_ACCESS_KEY_ID", &self.key_id),
            ("AWS_SECRET_ACCESS_KEY", &self.secret),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    }

    /// Invokes an endpoint through the factory with `record` (see
    /// `support::invoke_record`).
    async fn invoke_with(&self, record: &[(&str, &str)]) -> inferlink::Result<()> {
        support::invoke_record(&self.url(), record).await
    }

    /// `GetCallerIdentity` signed by `signer`: the caller's ARN (see
    /// `MotoChain::caller_arn`).
    async fn caller_arn(&self, signer: SigV4Signer) -> inferlink::Result<String> {
        MotoChain::new(self.server)
            .unwrap()
            .caller_arn(signer)
            .await
    }
}

fn auth(items: &[(&str, &str)]) -> AwsAuthConfig {
    let mut config = AwsAuthConfig::new();
    config.read_keys(&pairs(items)).unwrap();
    config
}

fn str_pairs(owned: &[(String, String)]) -> Vec<(&str, &str)> {
    owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_file_in_a_temporary_directory_signs() {
    let Some(moto) = moto().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("credentials");
    let config = dir.path().join("config");
    std::fs::write(
        &credentials,
        format!(
            "[default]\naws_access_key_id = AKIANOTISSUEDBYMOTO1\naws_secret_access_key = wrong\n\n\
             [inferlink]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            moto.key_id, moto.secret
        ),
    )
    .unwrap();
    std::fs::write(&config, "[profile inferlink]\nregion = us-east-1\n").unwrap();
    let record = [
        ("region", "us-east-1"),
        ("aws_credential_source", "profile"),
        ("aws_profile", "inferlink"),
        ("aws_shared_credentials_file", path_str(&credentials)),
        ("aws_config_file", path_str(&config)),
    ];
    moto.invoke_with(&record).await.unwrap();
    let signer = auth(&record).signer("sagemaker", "us-east-1").unwrap();
    let arn = moto.caller_arn(signer).await.unwrap();
    assert!(arn.ends_with(":user/inferlink-test"), "{arn}");

    // The default profile holds a key moto never issued: refused, typed.
    let record = [
        ("region", "us-east-1"),
        ("retry_max_attempts", "1"),
        ("aws_credential_source", "profile"),
        ("aws_shared_credentials_file", path_str(&credentials)),
        ("aws_config_file", path_str(&config)),
    ];
    let e = moto.invoke_with(&record).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated, "{e}");
    // A profile the files lack: a typed error naming the source, at the first call.
    let record = [
        ("region", "us-east-1"),
        ("aws_credential_source", "profile"),
        ("aws_profile", "missing"),
        ("aws_shared_credentials_file", path_str(&credentials)),
        ("aws_config_file", path_str(&config)),
    ];
    let e = moto.invoke_with(&record).await.unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::Config | ErrorKind::Unauthenticated),
        "{e}"
    );
    assert!(e.to_string().contains("profile"), "{e}");
    assert!(!e.to_string().contains(&moto.secret), "{e}");
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assume_role_with_an_external_id_signs_as_the_role() {
    let Some(moto) = moto().await else {
        return;
    };
    let record = moto.assume_role_record("inferlink-assumed");
    moto.invoke_with(&str_pairs(&record)).await.unwrap();
    let config = auth(&str_pairs(&record));
    let signer = config.signer("sagemaker", "us-east-1").unwrap();
    assert!(signer.credentials().is_none(), "fetched, not fixed");
    assert!(!format!("{signer:?}").contains(&moto.secret));
    let arn = moto.caller_arn(signer).await.unwrap();
    assert!(
        arn.ends_with(":assumed-role/inferlink-role/inferlink-assumed"),
        "{arn}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_identity_token_file_signs_as_the_role() {
    let Some(moto) = moto().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(
        &token,
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJpbmZlcmxpbmsifQ.c2ln\n",
    )
    .unwrap();
    let url = moto.url();
    let record = [
        ("region", "us-east-1"),
        ("aws_credential_source", "web_identity"),
        ("aws_role_arn", moto.role_arn.as_str()),
        ("aws_web_identity_token_file", path_str(&token)),
        ("aws_role_session_name", "inferlink-irsa"),
        ("aws_sts_endpoint_url", url.as_str()),
    ];
    moto.invoke_with(&record).await.unwrap();
    let signer = auth(&record).signer("sagemaker", "us-east-1").unwrap();
    let arn = moto.caller_arn(signer).await.unwrap();
    assert!(
        arn.ends_with(":assumed-role/inferlink-role/inferlink-irsa"),
        "{arn}"
    );

    // The token file gone: a typed Config error naming the key, at the first call.
    std::fs::remove_file(&token).unwrap();
    let e = moto.invoke_with(&record).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert_eq!(e.path(), Some("aws_web_identity_token_file"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_role_credentials_are_fetched_again() {
    let Some(moto) = moto().await else {
        return;
    };
    let record = moto.assume_role_record("inferlink-refresh");
    let record = str_pairs(&record);
    let now = Arc::new(Mutex::new(SystemTime::now()));
    let clock_now = now.clone();
    let cache = Arc::new(
        CachedCredentials::new(auth(&record).chain_provider("us-east-1").unwrap())
            .with_clock(Arc::new(move || *clock_now.lock().unwrap())),
    );
    let config = SageMakerConfig::from_pairs(&moto.url(), &record).unwrap();
    let signer = SigV4Signer::with_provider(cache.clone(), "us-east-1");
    let client = SageMakerClient::with_signer(config, Some(signer)).unwrap();
    let connector: Arc<dyn inferlink::InferenceConnector> = Arc::new(client);
    let model = ModelRef::new("chain");
    let invoke = || connector.invoke(&model, RawRequest::json("{}"));

    invoke().await.unwrap();
    let first = cache.credentials().await.unwrap();
    assert!(first.has_session_token());
    // Twelve minutes on: 900 s credentials have three left, inside the refresh margin.
    *now.lock().unwrap() += Duration::from_secs(720);
    invoke().await.unwrap();
    let second = cache.credentials().await.unwrap();
    assert_ne!(first.access_key_id(), second.access_key_id());
    // Past the second credentials' expiry (issued before `before`, for 900 s):
    // they are expired and fetched again before signing. moto dates expiry
    // from its own clock, so the next ones must be issued a moment later.
    let before = SystemTime::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    *now.lock().unwrap() = before + Duration::from_millis(900_500);
    invoke().await.unwrap();
    let third = cache.credentials().await.unwrap();
    assert_ne!(second.access_key_id(), third.access_key_id());
    // Within their life they are reused.
    invoke().await.unwrap();
    assert_eq!(
        cache.credentials().await.unwrap().access_key_id(),
        third.access_key_id()
    );
}

#[tokio::test]
async fn hostile_sts_answers_are_typed_errors() {
    // A loopback stand-in for STS answering garbage; nothing reaches the target.
    let target = "http://127.0.0.1:9";
    let role = "arn:aws:iam::123456789012:role/inferlink-role";
    for (label, fault, kinds) in [
        (
            "not XML",
            Fault::malformed_json(),
            &[ErrorKind::Protocol][..],
        ),
        (
            "4 MiB",
            Fault::oversized(4 * 1024 * 1024),
            &[ErrorKind::Protocol][..],
        ),
        (
            "AccessDenied",
            Fault::with_body(
                403,
                "text/xml",
                b"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>\
                  <Message>not allowed</Message></Error></ErrorResponse>"
                    .to_vec(),
            ),
            &[ErrorKind::PermissionDenied][..],
        ),
    ] {
        let options = FaultOptions {
            fallback: fault,
            ..FaultOptions::default()
        };
        let sts = FaultServer::start_with(Vec::new(), options).await.unwrap();
        let sts_url = sts.url();
        let record = [
            ("region", "us-east-1"),
            ("aws_credential_source", "assume_role"),
            ("aws_role_arn", role),
            ("aws_sts_endpoint_url", sts_url.as_str()),
            ("AWS_ACCESS_KEY_ID", "AKIAPLANTEDPLANTED00"),
            ("AWS_SECRET_ACCESS_KEY", "sts-secret-planted"),
        ];
        let (secret, plain): (Vec<_>, Vec<_>) = record
            .iter()
            .copied()
            .partition(|(k, _)| k.starts_with("AWS_"));
        let connector = support::connect(target, &plain, &secret).await.unwrap();
        let e = connector
            .invoke(&ModelRef::new("chain"), RawRequest::json("{}"))
            .await
            .unwrap_err();
        assert!(kinds.contains(&e.kind()), "{label}: {e}");
        let shown = format!("{e} {e:?} {connector:?}");
        assert!(!shown.contains("planted"), "{label}: {shown}");
        assert!(sts.requests() >= 1, "{label}");
    }
}

#[tokio::test]
async fn a_typoed_aws_key_is_refused_with_a_suggestion() {
    let e = support::connect(
        "http://127.0.0.1:9",
        &[("region", "us-east-1"), ("aws_credential_sorce", "profile")],
        &[],
    )
    .await
    .unwrap_err();
    inferlink_testkit::live::assert_suggests_key(
        &e,
        "aws_credential_sorce",
        "aws_credential_source",
    );
    let e = support::connect(
        "http://127.0.0.1:9",
        &[
            ("region", "us-east-1"),
            ("aws_role_arm", "arn:aws:iam::123456789012:role/r"),
        ],
        &[],
    )
    .await
    .unwrap_err();
    inferlink_testkit::live::assert_suggests_key(&e, "aws_role_arm", "aws_role_arn");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_source_of_the_shared_moto_records_signs() {
    // The loop Bedrock's tests share (inferlink_testkit::aws_chain): static,
    // profile, a profile assuming the role, assume_role, web_identity, imds.
    let Some(server) = support::server(ServerKind::Moto).await else {
        return;
    };
    let chain = MotoChain::new(server).unwrap();
    let url = chain.url();
    let checked = chain
        .sign_with_every_source(true, |record| {
            let url = url.clone();
            async move {
                let connector = support::connect(
                    &url,
                    &str_pairs(&record.configuration),
                    &str_pairs(&record.credentials),
                )
                .await?;
                connector
                    .invoke(&ModelRef::new("chain"), RawRequest::json("{}"))
                    .await
                    .map(drop)
            }
        })
        .await;
    assert_eq!(checked.len(), 6, "{checked:?}");
}
