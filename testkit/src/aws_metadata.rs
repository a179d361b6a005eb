//! A **stand-in** for the two AWS credential endpoints of compute hosts,
//! written from AWS's documentation (no real one runs off AWS):
//!
//! * the EC2 instance metadata service, IMDSv2 ([`MetadataStandIn::imds`]):
//!   `PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds`
//!   (1–21600) answers a session token, with the same header giving its
//!   TTL; every `GET` must carry it as
//!   `X-aws-ec2-metadata-token` (else 401);
//!   `GET /latest/meta-data/iam/security-credentials/` lists the role name,
//!   `…/security-credentials/<role>` answers the credential JSON
//!   (`Code`, `LastUpdated`, `Type`, `AccessKeyId`, `SecretAccessKey`,
//!   `Token`, `Expiration`);
//! * the ECS container credentials endpoint ([`MetadataStandIn::ecs`]): `GET`
//!   of its path with `Authorization` equal to the agent's token (else 401)
//!   answers `AccessKeyId`, `SecretAccessKey`, `Token`, `Expiration`, `RoleArn`.
//!
//! [`Answer`] makes the credential document hostile (invalid JSON, a huge
//! body, a missing field) for error tests. Every request is counted by
//! path. HTTP/1.1 on `127.0.0.1`, one request per connection.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The role name the IMDS stand-in lists.
pub const IMDS_ROLE: &str = "inferlink-instance-role";

/// The path the ECS stand-in serves credentials at.
pub const ECS_PATH: &str = "/v2/credentials/inferlink-task";

/// The IMDSv2 header of a session token's lifetime in seconds.
const TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";

/// The largest request head read (bytes).
const MAX_HEAD: usize = 16 * 1024;

/// What the credential document is.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Well-formed credentials valid for `lifetime` from now.
    Credentials {
        /// Access key id.
        access_key_id: String,
        /// Secret access key.
        secret_access_key: String,
        /// Session token.
        token: String,
        /// How long they are valid.
        lifetime: Duration,
    },
    /// A body that is not JSON.
    InvalidJson,
    /// A JSON document of about this many bytes (a long `Token` field).
    Huge(usize),
    /// Valid JSON without `SecretAccessKey`.
    MissingSecret,
}

#[derive(Debug)]
struct State {
    kind: Kind,
    answer: Mutex<Answer>,
    ecs_token: String,
    imds_tokens: Mutex<Vec<String>>,
    hits: Mutex<BTreeMap<String, usize>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Imds,
    Ecs,
}

/// The running stand-in; stops when dropped.
#[derive(Debug)]
pub struct MetadataStandIn {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl Drop for MetadataStandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MetadataStandIn {
    /// An IMDSv2 stand-in answering `answer` for the role's credentials.
    pub async fn imds(answer: Answer) -> std::io::Result<MetadataStandIn> {
        MetadataStandIn::start(Kind::Imds, answer, String::new()).await
    }

    /// An ECS container credentials stand-in that wants `Authorization: <token>`.
    pub async fn ecs(answer: Answer, token: &str) -> std::io::Result<MetadataStandIn> {
        MetadataStandIn::start(Kind::Ecs, answer, token.to_owned()).await
    }

    async fn start(kind: Kind, answer: Answer, ecs_token: String) -> std::io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            kind,
            answer: Mutex::new(answer),
            ecs_token,
            imds_tokens: Mutex::new(Vec::new()),
            hits: Mutex::new(BTreeMap::new()),
        });
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, Arc::clone(&shared)));
            }
        });
        Ok(MetadataStandIn { addr, state, task })
    }

    /// `http://127.0.0.1:<port>` (the IMDS endpoint).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The ECS full URI: [`MetadataStandIn::url`] and [`ECS_PATH`].
    pub fn ecs_uri(&self) -> String {
        format!("{}{ECS_PATH}", self.url())
    }

    /// Replaces the credential document served from now on.
    pub fn set_answer(&self, answer: Answer) {
        *self.state.answer.lock().unwrap() = answer;
    }

    /// How many requests reached `path` (any method).
    pub fn hits(&self, path: &str) -> usize {
        self.state
            .hits
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

/// One request: method, path, headers (names in lower case).
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

async fn read_head(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        if buf.len() > MAX_HEAD {
            return None;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf);
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let path = first.next()?.to_owned();
    let headers = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some(Request {
        method,
        path,
        headers,
    })
}

async fn serve(mut stream: TcpStream, state: Arc<State>) {
    let Some(request) = read_head(&mut stream).await else {
        return;
    };
    *state
        .hits
        .lock()
        .unwrap()
        .entry(request.path.clone())
        .or_default() += 1;
    let (status, content_type, body) = match state.kind {
        Kind::Imds => imds(&state, &request),
        Kind::Ecs => ecs(&state, &request),
    };
    // The token answer repeats its TTL (IMDSv2).
    let ttl = match (request.method.as_str(), status) {
        ("PUT", 200) => request
            .header(TTL_HEADER)
            .map(|ttl| format!("{TTL_HEADER}: {ttl}\r\n"))
            .unwrap_or_default(),
        _ => String::new(),
    };
    let head = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n{ttl}connection: close\r\n\r\n",
        if status == 200 { "OK" } else { "Error" },
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(&body).await;
    let _ = stream.shutdown().await;
}

fn text(status: u16, body: &str) -> (u16, &'static str, Vec<u8>) {
    (status, "text/plain", body.as_bytes().to_vec())
}

fn imds(state: &State, request: &Request) -> (u16, &'static str, Vec<u8>) {
    const PREFIX: &str = "/latest/meta-data/iam/security-credentials/";
    if request.method == "PUT" && request.path == "/latest/api/token" {
        let ttl = request
            .header(TTL_HEADER)
            .and_then(|v| v.parse::<u32>().ok());
        return match ttl {
            Some(1..=21600) => {
                let mut tokens = state.imds_tokens.lock().unwrap();
                let token = format!("imds-session-{}", tokens.len() + 1);
                tokens.push(token.clone());
                text(200, &token)
            }
            _ => text(400, "missing or invalid TTL header"),
        };
    }
    let token = request.header("x-aws-ec2-metadata-token").unwrap_or("");
    if !state.imds_tokens.lock().unwrap().iter().any(|t| t == token) {
        return text(401, "");
    }
    if request.method != "GET" {
        return text(405, "");
    }
    match request.path.strip_prefix(PREFIX) {
        Some("") => text(200, IMDS_ROLE),
        Some(role) if role == IMDS_ROLE => document(state, true),
        _ => text(404, "Not Found"),
    }
}

fn ecs(state: &State, request: &Request) -> (u16, &'static str, Vec<u8>) {
    if request.method != "GET" || request.path != ECS_PATH {
        return text(404, "Not Found");
    }
    if request.header("authorization") != Some(state.ecs_token.as_str()) {
        return text(401, "");
    }
    document(state, false)
}

/// The credential document, as IMDS (`imds`) or ECS shapes it.
fn document(state: &State, imds: bool) -> (u16, &'static str, Vec<u8>) {
    let answer = state.answer.lock().unwrap().clone();
    let json = |value: serde_json::Value| (200, "application/json", value.to_string().into_bytes());
    match answer {
        Answer::Credentials {
            access_key_id,
            secret_access_key,
            token,
            lifetime,
        } => {
            let expiration = iso8601(SystemTime::now() + lifetime);
            let mut value = serde_json::json!({
                "AccessKeyId": access_key_id,
                "SecretAccessKey": secret_access_key,
                "Token": token,
                "Expiration": expiration,
            });
            if imds {
                value["Code"] = "Success".into();
                value["Type"] = "AWS-HMAC".into();
                value["LastUpdated"] = iso8601(SystemTime::now()).into();
            } else {
                value["RoleArn"] = "arn:aws:iam::123456789012:role/inferlink-task".into();
            }
            json(value)
        }
        Answer::InvalidJson => (
            200,
            "application/json",
            b"{\"AccessKeyId\": \"AKIA".to_vec(),
        ),
        Answer::Huge(len) => json(serde_json::json!({
            "Code": "Success",
            "AccessKeyId": "AKIAHUGE",
            "SecretAccessKey": "huge-secret-planted",
            "Token": "t".repeat(len),
            "Expiration": iso8601(SystemTime::now() + Duration::from_secs(3600)),
        })),
        Answer::MissingSecret => json(serde_json::json!({
            "Code": "Success",
            "AccessKeyId": "AKIAMISSING",
            "Token": "token-planted",
            "Expiration": iso8601(SystemTime::now() + Duration::from_secs(3600)),
        })),
    }
}

/// `time` as `YYYY-MM-DDTHH:MM:SSZ` (UTC), the form AWS's documents use.
pub fn iso8601(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    inferlink::kit::utc_timestamp(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_dates() {
        assert_eq!(iso8601(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            iso8601(UNIX_EPOCH + Duration::from_secs(1_440_938_160)),
            "2015-08-30T12:36:00Z"
        );
        assert_eq!(
            iso8601(UNIX_EPOCH + Duration::from_secs(951_825_600)),
            "2000-02-29T12:00:00Z"
        );
    }
}
