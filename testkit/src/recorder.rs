//! A loopback **recording proxy**: [`RecordingProxy`] listens on
//! `127.0.0.1`, forwards every request unchanged (method, target, headers,
//! body) to one upstream server, hands the upstream's answer back, and keeps
//! the requests it forwarded so a test can assert what a client really sent
//! — for example that the AWS SDK's `AssumeRole` carries the external id
//! moto's STS does not check.
//!
//! Only requests are kept, never answers (which hold the temporary
//! credentials STS issues), and the value of `x-amz-security-token` is
//! replaced by `<redacted>`. Nothing is printed; `Debug` shows the upstream
//! and the count. Each client connection carries one request
//! (`connection: close`), the upstream is asked to close too, and every wait
//! is bounded; dropping the proxy stops it.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use inferlink_testkit::recorder::RecordingProxy;
//!
//! let proxy = RecordingProxy::start("http://127.0.0.1:5000").await?;
//! // … point a client at proxy.url(); then:
//! for request in proxy.recorded() {
//!     let _ = (request.method, request.target, request.body);
//! }
//! # Ok(()) }
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::fault::{RecordedRequest, read_request};

/// The largest upstream answer relayed.
const MAX_ANSWER: usize = 16 * 1024 * 1024;
/// The longest wait for the upstream (connect, and each read).
const UPSTREAM_WAIT: Duration = Duration::from_secs(30);
/// Headers whose values are not kept.
const REDACTED: &[&str] = &["x-amz-security-token"];

/// The proxy. See the module documentation.
pub struct RecordingProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    recorded: Arc<Mutex<Vec<RecordedRequest>>>,
    task: JoinHandle<()>,
}

impl fmt::Debug for RecordingProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordingProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.upstream)
            .field("recorded", &self.recorded().len())
            .finish()
    }
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `127.0.0.1:port` of an `http://127.0.0.1:port[/…]` URL.
fn loopback_addr(url: &str) -> std::io::Result<SocketAddr> {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or_default();
    let addr: SocketAddr = authority
        .parse()
        .map_err(|_| std::io::Error::other(format!("not a loopback http URL: {url}")))?;
    if !addr.ip().is_loopback() {
        return Err(std::io::Error::other(format!(
            "not a loopback address: {url}"
        )));
    }
    Ok(addr)
}

impl RecordingProxy {
    /// Starts a proxy on `127.0.0.1:0` in front of `upstream_url`
    /// (`http://127.0.0.1:PORT`; loopback only).
    pub async fn start(upstream_url: &str) -> std::io::Result<RecordingProxy> {
        let upstream = loopback_addr(upstream_url)?;
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::clone(&recorded);
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        connections.spawn(relay(stream, upstream, Arc::clone(&shared)));
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        Ok(RecordingProxy {
            addr,
            upstream,
            recorded,
            task,
        })
    }

    /// The proxy's base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The requests forwarded so far, in order (names lower-cased; the
    /// values of [`REDACTED`] headers replaced).
    pub fn recorded(&self) -> Vec<RecordedRequest> {
        self.recorded.lock().expect("recorder lock").clone()
    }

    /// The recorded requests whose form-encoded body has `Action=<action>`
    /// (STS's query protocol), each as its decoded parameters.
    pub fn form_calls(&self, action: &str) -> Vec<Vec<(String, String)>> {
        self.recorded()
            .iter()
            .map(|r| form_pairs(&String::from_utf8_lossy(&r.body)))
            .filter(|pairs| pairs.iter().any(|(k, v)| k == "Action" && v == action))
            .collect()
    }
}

/// The pairs of an `application/x-www-form-urlencoded` body, decoded.
pub fn form_pairs(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The request as bytes for the upstream: the same method, target, headers
/// and body, de-chunked (`content-length`), with `connection: close`.
fn wire_request(request: &RecordedRequest) -> Vec<u8> {
    let mut head = format!("{} {} HTTP/1.1\r\n", request.method, request.target);
    for (name, value) in &request.headers {
        if matches!(
            name.as_str(),
            "connection" | "content-length" | "transfer-encoding"
        ) {
            continue;
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        request.body.len()
    ));
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&request.body);
    bytes
}

/// The upstream's whole answer (it closes after one), at most [`MAX_ANSWER`].
async fn forward(upstream: SocketAddr, request: &[u8]) -> Option<Vec<u8>> {
    let mut stream = tokio::time::timeout(UPSTREAM_WAIT, TcpStream::connect(upstream))
        .await
        .ok()?
        .ok()?;
    stream.write_all(request).await.ok()?;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = tokio::time::timeout(UPSTREAM_WAIT, stream.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 || answer.len() + n > MAX_ANSWER {
            break;
        }
        answer.extend_from_slice(&chunk[..n]);
    }
    Some(answer)
}

/// The answer with `connection: close` in its head (the client's connection
/// ends after it).
fn closing(answer: Vec<u8>) -> Vec<u8> {
    let Some(head_end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return answer;
    };
    let head = String::from_utf8_lossy(&answer[..head_end]);
    let mut lines: Vec<&str> = head
        .split("\r\n")
        .filter(|line| !line.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    lines.push("connection: close");
    let mut out = lines.join("\r\n").into_bytes();
    out.extend_from_slice(&answer[head_end..]);
    out
}

async fn relay(
    mut client: TcpStream,
    upstream: SocketAddr,
    recorded: Arc<Mutex<Vec<RecordedRequest>>>,
) {
    let mut buf = Vec::new();
    let Some((request, _)) = read_request(&mut client, &mut buf).await else {
        return;
    };
    let wire = wire_request(&request);
    let mut kept = request;
    for (name, value) in &mut kept.headers {
        if REDACTED.contains(&name.as_str()) {
            *value = "<redacted>".to_owned();
        }
    }
    recorded.lock().expect("recorder lock").push(kept);
    let answer = match forward(upstream, &wire).await {
        Some(answer) if !answer.is_empty() => closing(answer),
        _ => b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_vec(),
    };
    let _ = client.write_all(&answer).await;
    let _ = client.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_bodies_are_decoded() {
        let pairs = form_pairs("Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam&Name=a+b&Empty=");
        assert_eq!(pairs[1], ("RoleArn".into(), "arn:aws:iam".into()));
        assert_eq!(pairs[2], ("Name".into(), "a b".into()));
        assert_eq!(pairs[3], ("Empty".into(), String::new()));
    }

    #[test]
    fn only_loopback_upstreams() {
        assert!(loopback_addr("http://127.0.0.1:5000").is_ok());
        assert!(loopback_addr("http://10.0.0.1:5000").is_err());
        assert!(loopback_addr("http://example.com").is_err());
    }
}
