//! Credentials and region from the process environment when the record has
//! none, and the record's winning over the environment. The only test of
//! this binary, so that changing the environment races with nothing.

mod support;

use inferlink::{ModelRef, RawRequest};
use inferlink_testkit::fault::FaultServer;

#[tokio::test]
async fn the_environment_fills_in_what_the_record_lacks() {
    // SAFETY: this test binary runs this one test; no other thread reads the environment.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENT");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "env-secret-planted");
        std::env::set_var("AWS_SESSION_TOKEN", "env-token");
        std::env::set_var("AWS_REGION", "ap-southeast-2");
        std::env::remove_var("AWS_DEFAULT_REGION");
    }
    let server = FaultServer::start(Vec::new()).await.unwrap();

    // No credentials and no region in the record: all from the environment.
    let c = support::connect(&server.url(), &[], &[]).await.unwrap();
    c.invoke(&ModelRef::new("ep"), RawRequest::json("{}"))
        .await
        .unwrap();
    // The record's credentials and region win.
    let c = support::connect(
        &server.url(),
        &[("region", "eu-central-1")],
        &[
            ("AWS_ACCESS_KEY_ID", "AKIARECORD"),
            ("AWS_SECRET_ACCESS_KEY", "record-secret"),
        ],
    )
    .await
    .unwrap();
    assert!(!format!("{c:?}").contains("record-secret"));
    c.invoke(&ModelRef::new("ep"), RawRequest::json("{}"))
        .await
        .unwrap();

    let recorded = server.recorded();
    let auth = recorded[0].header("authorization").unwrap();
    assert!(
        auth.contains("Credential=AKIAENVIRONMENT/")
            && auth.contains("/ap-southeast-2/sagemaker/aws4_request"),
        "{auth}"
    );
    assert_eq!(
        recorded[0].header("x-amz-security-token"),
        Some("env-token")
    );
    let auth = recorded[1].header("authorization").unwrap();
    assert!(
        auth.contains("Credential=AKIARECORD/")
            && auth.contains("/eu-central-1/sagemaker/aws4_request"),
        "{auth}"
    );
    // The environment's token does not ride along with the record's key pair.
    assert_eq!(recorded[1].header("x-amz-security-token"), None);
}
