//! Bedrock `InvokeModel` on moto (`ServerKind::Moto`, signatures and IAM
//! checked) signed with credentials from every source of the AWS credential
//! chain: the loop SageMaker's tests share
//! (`inferlink_testkit::aws_chain::MotoChain::sign_with_every_source`).
//! Static keys and a plain profile sign as the launcher's user, which may
//! not call Bedrock: moto accepts the signature and refuses the call
//! (`PermissionDenied`). A profile with `role_arn`/`source_profile`,
//! `assume_role` (external id, session name, duration), `web_identity` and
//! EC2 instance credentials (the IMDSv2 stand-in handing out the role's
//! credentials from moto's STS) sign as the role, which may: moto answers.

use inferlink::{ConnectTarget, Connectors, ModelRef, RawRequest};
use inferlink_testkit::aws_chain::MotoChain;
use inferlink_testkit::live::shared_server;
use inferlink_testkit::servers::ServerKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_model_signs_with_every_credential_source() {
    let Some(server) = shared_server(ServerKind::Moto).await else {
        return;
    };
    let chain = MotoChain::new(server).unwrap();
    let url = chain.url();
    let checked = chain
        .sign_with_every_source(false, |record| {
            let mut target =
                ConnectTarget::new("bedrock", url.as_str()).with_plain("auth", "sigv4");
            for (key, value) in record.configuration {
                target = target.with_plain(key, value);
            }
            for (key, value) in record.credentials {
                target = target.with_secret(key, value);
            }
            async move {
                let bedrock = Connectors::new()
                    .with(inferlink_bedrock::factory())
                    .connect(&target)
                    .await?;
                let mut raw = RawRequest::json(r#"{"inputText": "hello"}"#);
                raw.accept = Some("application/json".into());
                let answer = bedrock
                    .invoke(&ModelRef::new("amazon.titan-embed-text-v2:0"), raw)
                    .await?;
                // moto's InvokeModel answer.
                assert_eq!(answer.body.as_ref(), b"{}");
                Ok(())
            }
        })
        .await;
    assert_eq!(
        checked,
        [
            "static",
            "profile",
            "profile_role",
            "assume_role",
            "web_identity",
            "imds"
        ]
    );
}
