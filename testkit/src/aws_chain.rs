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

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use inferlink_core::ErrorKind;
use inferlink_core::transport::sigv4::{AwsCredentials, SigV4Signer};
use inferlink_core::transport::{HttpTransport, RequestSpec};

use crate::aws_metadata::{Answer, MetadataStandIn};

use crate::servers::RunningServer;

/// The role session names the records use (what `GetCallerIdentity` shows).
pub const SESSION_NAME: &str = "inferlink-chain";

/// The config file's profile that assumes the role from the `inferlink` profile.
pub const ROLE_PROFILE: &str = "inferlink-role";

/// The external id of [`ROLE_PROFILE`].
pub const PROFILE_EXTERNAL_ID: &str = "inferlink-profile-external-id";

/// The identity moto sees for calls a record signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// The launcher's IAM user `inferlink-test` (SageMaker, not Bedrock).
    User,
    /// The launcher's role `inferlink-role`, assumed (SageMaker and Bedrock).
    Role,
}

/// One record's configuration for one credential source.
#[derive(Debug, Clone)]
pub struct ChainRecord {
    /// A name for messages (`profile_role` for a profile that assumes the role).
    pub name: &'static str,
    /// The `aws_credential_source` word.
    pub source: &'static str,
    /// Who signs the calls: the user or the assumed role.
    pub identity: Identity,
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
        chain.add_role_profile(ROLE_PROFILE, &chain.url(), Some(PROFILE_EXTERNAL_ID))?;
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

    /// Appends a profile to the config file that assumes the role with
    /// `source_profile = inferlink` (the user's keys), session name
    /// [`SESSION_NAME`], `external_id` if given, and its STS endpoint at
    /// `sts_url` (the profile's `endpoint_url`, which the AWS SDK's clients
    /// of that profile use); returns the record that selects it.
    pub fn add_role_profile(
        &self,
        profile: &str,
        sts_url: &str,
        external_id: Option<&str>,
    ) -> io::Result<ChainRecord> {
        let mut section = format!(
            "\n[profile {profile}]\nregion = us-east-1\nrole_arn = {}\nsource_profile = inferlink\n\
             role_session_name = {SESSION_NAME}\nendpoint_url = {sts_url}\n",
            self.role_arn
        );
        if let Some(id) = external_id {
            section.push_str(&format!("external_id = {id}\n"));
        }
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(self.path("config"))?;
        io::Write::write_all(&mut file, section.as_bytes())?;
        Ok(ChainRecord {
            name: "profile_role",
            source: "profile",
            identity: Identity::Role,
            configuration: self.profile_lines(profile),
            credentials: Vec::new(),
        })
    }

    fn profile_lines(&self, profile: &str) -> Vec<(String, String)> {
        owned(&[
            ("region", "us-east-1"),
            ("retry_max_attempts", "1"),
            ("aws_credential_source", "profile"),
            ("aws_profile", profile),
            (
                "aws_shared_credentials_file",
                &self.path_text("credentials"),
            ),
            ("aws_config_file", &self.path_text("config")),
        ])
    }

    /// moto's URL (also its STS endpoint).
    pub fn url(&self) -> String {
        self.server.http_url()
    }

    /// One record per source moto can serve: `static`, `profile`, a profile
    /// that assumes the role (`profile_role`: `role_arn`, `source_profile`,
    /// `external_id` in the config file), `assume_role` (external id, session
    /// name, 900 s) and `web_identity`.
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
                name: "static",
                source: "static",
                identity: Identity::User,
                configuration: with(&[("aws_credential_source", "static")]),
                credentials: keys.clone(),
            },
            ChainRecord {
                name: "profile",
                source: "profile",
                identity: Identity::User,
                configuration: self.profile_lines("inferlink"),
                credentials: Vec::new(),
            },
            ChainRecord {
                name: "profile_role",
                source: "profile",
                identity: Identity::Role,
                configuration: self.profile_lines(ROLE_PROFILE),
                credentials: Vec::new(),
            },
            ChainRecord {
                name: "assume_role",
                source: "assume_role",
                identity: Identity::Role,
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
                name: "web_identity",
                source: "web_identity",
                identity: Identity::Role,
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
        );
        let body = format!(
            "Action=AssumeRole&Version=2011-06-15&RoleSessionName={SESSION_NAME}&RoleArn={}",
            self.role_arn.replace(':', "%3A").replace('/', "%2F")
        );
        let text = self.sts_call(signer, body).await?;
        Ok((
            xml_field(&text, "AccessKeyId")?,
            xml_field(&text, "SecretAccessKey")?,
            xml_field(&text, "SessionToken")?,
        ))
    }

    /// The ARN of whoever `signer` signs for: moto's `GetCallerIdentity`
    /// (signing name `sts`), answered only for a correct signature with
    /// credentials moto issued.
    pub async fn caller_arn(&self, signer: SigV4Signer) -> inferlink_core::Result<String> {
        let text = self
            .sts_call(
                signer,
                "Action=GetCallerIdentity&Version=2011-06-15".to_owned(),
            )
            .await?;
        xml_field(&text, "Arn")
    }

    /// A form-encoded STS call to moto, signed by `signer` as `sts`, once.
    async fn sts_call(&self, signer: SigV4Signer, body: String) -> inferlink_core::Result<String> {
        let http = HttpTransport::builder(self.url())
            .signer(Arc::new(signer.with_signing_name("sts")))
            .build()?;
        let answer = http
            .send(
                RequestSpec::post("/", body)
                    .content_type("application/x-www-form-urlencoded")
                    .max_attempts(1),
            )
            .await?;
        Ok(answer.text()?.to_owned())
    }

    /// Calls `invoke` with each record of [`MotoChain::records`] and with an
    /// `imds` record whose instance credentials (the role's, from moto's
    /// STS) the IMDSv2 stand-in ([`crate::aws_metadata`]) hands out; the
    /// loop every AWS connector's tests share. Calls signed for the role
    /// must succeed; calls signed for the user must succeed when
    /// `user_may_call`, else be refused by moto's IAM check
    /// ([`ErrorKind::PermissionDenied`]: the signature was accepted, the
    /// user lacks the permission). Panics on any other outcome, naming the
    /// record; returns the names of the records checked.
    pub async fn sign_with_every_source<F, Fut>(
        &self,
        user_may_call: bool,
        mut invoke: F,
    ) -> Vec<&'static str>
    where
        F: FnMut(ChainRecord) -> Fut,
        Fut: Future<Output = inferlink_core::Result<()>>,
    {
        let (access_key_id, secret_access_key, token) = self
            .role_credentials()
            .await
            .expect("moto's STS issues the role's credentials");
        let imds = MetadataStandIn::imds(Answer::Credentials {
            access_key_id,
            secret_access_key,
            token,
            lifetime: Duration::from_secs(6 * 3600),
        })
        .await
        .expect("the IMDS stand-in starts");
        let mut records = self.records();
        records.push(ChainRecord {
            name: "imds",
            source: "imds",
            identity: Identity::Role,
            configuration: owned(&[
                ("region", "us-east-1"),
                ("retry_max_attempts", "1"),
                ("aws_credential_source", "imds"),
                ("aws_imds_endpoint", &imds.url()),
            ]),
            credentials: Vec::new(),
        });
        let mut checked = Vec::new();
        for record in records {
            let (name, identity) = (record.name, record.identity);
            let result = invoke(record).await;
            match (identity, result) {
                (Identity::Role, Ok(())) => {}
                (Identity::User, Ok(())) if user_may_call => {}
                (Identity::User, Err(e))
                    if !user_may_call && e.kind() == ErrorKind::PermissionDenied => {}
                (_, Err(e)) => panic!("{name}: {e}"),
                (_, Ok(())) => panic!("{name}: the user's call was not refused"),
            }
            checked.push(name);
        }
        checked
    }
}

/// The text of the first `<name>` element of an STS answer.
fn xml_field(text: &str, name: &str) -> inferlink_core::Result<String> {
    let open = format!("<{name}>");
    text.find(&open)
        .map(|i| i + open.len())
        .and_then(|start| text[start..].find('<').map(|end| &text[start..start + end]))
        .map(str::to_owned)
        .ok_or_else(|| {
            inferlink_core::Error::new(
                ErrorKind::Protocol,
                format!("moto's STS answer has no {name}"),
            )
        })
}
