//! Records for every credential source of the AWS chain against moto
//! (`ServerKind::Moto`): one place that writes the profile files and the web
//! identity token file and knows the launcher's role, so that each AWS
//! connector's tests (SageMaker's, Bedrock's) sign real calls with
//! credentials the chain obtained, the same way.
//!
//! ```no_run
//! # async fn demo(moto: &'static inferlink_testkit::servers::RunningServer) {
//! let chain = inferlink_testkit::aws_chain::MotoChain::new(moto).unwrap();
//! for record in chain.records() {
//!     // connect with record.configuration (service) and record.credentials
//!     // (the record's credentials), invoke, and expect moto's answer.
//!     let _ = (record.source, &record.configuration, &record.credentials);
//! }
//! # }
//! ```

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use inferlink_core::transport::sigv4::{AwsCredentials, SigV4Signer};
use inferlink_core::transport::{HttpTransport, RequestSpec};

use crate::servers::RunningServer;

/// The role session names the records use (what `GetCallerIdentity` shows).
pub const SESSION_NAME: &str = "inferlink-chain";

/// One record's configuration for one credential source.
#[derive(Debug, Clone)]
pub struct ChainRecord {
    /// The `aws_credential_source` word.
    pub source: &'static str,
    /// Lines for the service's configuration (region, source, files, role).
    pub configuration: Vec<(String, String)>,
    /// Lines for the record's credentials (static keys), possibly empty.
    pub credentials: Vec<(String, String)>,
}

/// moto's key pair, its role and a temporary directory of chain files.
#[derive(Debug)]
pub struct MotoChain {
    server: &'static RunningServer,
    dir: tempfile::TempDir,
    /// The IAM user's access key id.
    pub key_id: String,
    /// The IAM user's secret access key.
    pub secret: String,
    /// The ARN of the launcher's assumable role.
    pub role_arn: String,
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

impl MotoChain {
    /// Reads moto's `credentials.json` and writes a shared credentials file
    /// (profile `inferlink`), a config file and a web identity token file
    /// into a new temporary directory (removed on drop).
    pub fn new(server: &'static RunningServer) -> io::Result<MotoChain> {
        let text = std::fs::read_to_string(server.instance_dir().join("credentials.json"))?;
        let json: serde_json::Value = serde_json::from_str(&text).map_err(io::Error::other)?;
        let field = |name: &str| {
            json[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| io::Error::other(format!("no {name} in credentials.json")))
        };
        let chain = MotoChain {
            server,
            dir: tempfile::tempdir()?,
            key_id: field("access_key_id")?,
            secret: field("secret_access_key")?,
            role_arn: field("role_arn")?,
        };
        std::fs::write(
            chain.path("credentials"),
            format!(
                "[inferlink]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
                chain.key_id, chain.secret
            ),
        )?;
        std::fs::write(
            chain.path("config"),
            "[profile inferlink]\nregion = us-east-1\n",
        )?;
        std::fs::write(
            chain.path("web-identity-token"),
            "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJpbmZlcmxpbmsifQ.c2ln\n",
        )?;
        Ok(chain)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn path_text(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// moto's URL (also its STS endpoint).
    pub fn url(&self) -> String {
        self.server.http_url()
    }

    /// One record per source moto can serve: `static`, `profile`,
    /// `assume_role` (external id, session name, 900 s) and `web_identity`.
    pub fn records(&self) -> Vec<ChainRecord> {
        let url = self.url();
        let keys = owned(&[
            ("AWS_ACCESS_KEY_ID", &self.key_id),
            ("AWS_SECRET_ACCESS_KEY", &self.secret),
        ]);
        let base = [("region", "us-east-1"), ("retry_max_attempts", "1")];
        let with = |more: &[(&str, &str)]| {
            let mut lines = owned(&base);
            lines.extend(owned(more));
            lines
        };
        vec![
            ChainRecord {
                source: "static",
                configuration: with(&[("aws_credential_source", "static")]),
                credentials: keys.clone(),
            },
            ChainRecord {
                source: "profile",
                configuration: with(&[
                    ("aws_credential_source", "profile"),
                    ("aws_profile", "inferlink"),
                    (
                        "aws_shared_credentials_file",
                        &self.path_text("credentials"),
                    ),
                    ("aws_config_file", &self.path_text("config")),
                ]),
                credentials: Vec::new(),
            },
            ChainRecord {
                source: "assume_role",
                configuration: with(&[
                    ("aws_credential_source", "assume_role"),
                    ("aws_role_arn", &self.role_arn),
                    ("aws_external_id", "inferlink-external-id"),
                    ("aws_role_session_name", SESSION_NAME),
                    ("aws_role_duration_s", "900"),
                    ("aws_sts_endpoint_url", &url),
                ]),
                credentials: keys,
            },
            ChainRecord {
                source: "web_identity",
                configuration: with(&[
                    ("aws_credential_source", "web_identity"),
                    ("aws_role_arn", &self.role_arn),
                    (
                        "aws_web_identity_token_file",
                        &self.path_text("web-identity-token"),
                    ),
                    ("aws_role_session_name", SESSION_NAME),
                    ("aws_sts_endpoint_url", &url),
                ]),
                credentials: Vec::new(),
            },
        ]
    }

    /// Temporary credentials moto's STS issues for the role (`AssumeRole`
    /// signed with the user's key), for stand-ins (IMDS, ECS) to hand out:
    /// access key id, secret access key, session token.
    pub async fn role_credentials(&self) -> inferlink_core::Result<(String, String, String)> {
        let signer = SigV4Signer::new(
            AwsCredentials::new(self.key_id.as_str(), self.secret.as_str()),
            "us-east-1",
        )
        .with_signing_name("sts");
        let http = HttpTransport::builder(self.url())
            .signer(Arc::new(signer))
            .build()?;
        let body = format!(
            "Action=AssumeRole&Version=2011-06-15&RoleSessionName={SESSION_NAME}&RoleArn={}",
            self.role_arn.replace(':', "%3A").replace('/', "%2F")
        );
        let answer = http
            .send(RequestSpec::post("/", body).content_type("application/x-www-form-urlencoded"))
            .await?;
        let text = answer.text()?;
        let field = |name: &str| {
            let open = format!("<{name}>");
            text.find(&open)
                .map(|i| i + open.len())
                .and_then(|start| text[start..].find('<').map(|end| &text[start..start + end]))
                .map(str::to_owned)
                .ok_or_else(|| {
                    inferlink_core::Error::new(
                        inferlink_core::ErrorKind::Protocol,
                        format!("moto's AssumeRole answer has no {name}"),
                    )
                })
        };
        Ok((
            field("AccessKeyId")?,
            field("SecretAccessKey")?,
            field("SessionToken")?,
        ))
    }
}
