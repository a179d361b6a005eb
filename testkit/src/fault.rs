//! A scripted HTTP/1.1 fault server on `127.0.0.1` for transport tests.
//!
//! [`FaultServer`] listens on a free loopback port and answers each request
//! with the next [`Fault`] of its script (then with a fallback, by default
//! `200 {"ok":true}`): a canned response, a reset connection, a truncated or
//! oversized body, a stall, a slow drip, a gzip body, or one of the vendor
//! error envelopes in [`envelope`]. Responses are written by hand, byte by
//! byte, so the faults are exactly what the script says.
//!
//! It counts the requests it received ([`FaultServer::requests`]) so a test
//! can assert how many attempts a client made, and records them
//! ([`FaultServer::recorded`]) so a test can check the headers sent. Every
//! wait inside the server is bounded, and dropping the server stops the
//! listener and every connection.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use inferlink_testkit::fault::{Fault, FaultServer};
//!
//! let server = FaultServer::start([Fault::status(503), Fault::status(503)]).await?;
//! // … point a client at server.url(); the third request gets 200.
//! assert_eq!(server.requests(), 0);
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// Largest request head the server reads.
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body the server reads.
const MAX_BODY: usize = 64 * 1024 * 1024;
/// Longest any single wait for client bytes may take.
const READ_WAIT: Duration = Duration::from_secs(10);

/// A canned response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canned {
    /// The status code.
    pub status: u16,
    /// Headers besides `Content-Length` / `Transfer-Encoding`.
    pub headers: Vec<(String, String)>,
    /// The body bytes as sent (already encoded, if `Content-Encoding` is set).
    pub body: Vec<u8>,
    /// Send the body with chunked transfer encoding (no `Content-Length`).
    pub chunked: bool,
}

/// What the server does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with a canned response; the connection stays open for more.
    Respond(Canned),
    /// Reset the connection (TCP RST) as soon as the request starts
    /// arriving, without reading it. To the client this looks like a reset
    /// after sending: over HTTP/1.1 it cannot tell the two apart.
    ResetBeforeRead,
    /// Read the whole request, then reset the connection without answering.
    ResetAfterRead,
    /// Send the status line, headers (declaring `declared` body bytes) and
    /// `sent`, wait briefly so the client reads them, then reset.
    ResetMidBody {
        /// The status code.
        status: u16,
        /// The `Content-Length` declared.
        declared: usize,
        /// The part of the body actually sent.
        sent: Vec<u8>,
    },
    /// Declare `declared` body bytes, send `sent` (fewer), then close cleanly (FIN).
    Truncated {
        /// The `Content-Length` declared.
        declared: usize,
        /// The part of the body actually sent.
        sent: Vec<u8>,
    },
    /// Read the request and never answer; close after `max` (or when the server is dropped).
    Stall {
        /// How long to hold the connection at most.
        max: Duration,
    },
    /// A 200 whose body arrives `chunk` bytes at a time, `interval` apart.
    SlowDrip {
        /// The body.
        body: Vec<u8>,
        /// Bytes per write.
        chunk: usize,
        /// Pause between writes.
        interval: Duration,
    },
}

impl Fault {
    /// A response with `status`, no body.
    pub fn status(status: u16) -> Self {
        Fault::Respond(Canned {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            chunked: false,
        })
    }

    /// A response with a JSON body (`Content-Type: application/json`).
    pub fn json(status: u16, body: &str) -> Self {
        Fault::with_body(status, "application/json", body.as_bytes().to_vec())
    }

    /// A response with a `text/plain` body.
    pub fn text(status: u16, body: &str) -> Self {
        Fault::with_body(status, "text/plain", body.as_bytes().to_vec())
    }

    /// A response with a body of the given content type.
    pub fn with_body(status: u16, content_type: &str, body: Vec<u8>) -> Self {
        Fault::Respond(Canned {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body,
            chunked: false,
        })
    }

    /// `429 Too Many Requests` with `Retry-After: <seconds>`.
    pub fn retry_after(status: u16, seconds: u64) -> Self {
        Fault::json(status, r#"{"error":"slow down"}"#).header("Retry-After", &seconds.to_string())
    }

    /// A 200 JSON body that is not valid JSON.
    pub fn malformed_json() -> Self {
        Fault::json(200, "{\"outputs\": [{\"name\": \"y\", \"data\": [1, 2,")
    }

    /// A 200 body of `len` bytes (`x` repeated).
    pub fn oversized(len: usize) -> Self {
        Fault::with_body(200, "application/octet-stream", vec![b'x'; len])
    }

    /// A 200 JSON body sent gzip-encoded (`Content-Encoding: gzip`).
    pub fn gzip_json(body: &str) -> Self {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(body.as_bytes()).expect("writing to memory");
        let gz = enc.finish().expect("writing to memory");
        Fault::with_body(200, "application/json", gz).header("Content-Encoding", "gzip")
    }

    /// Adds a header to a [`Fault::Respond`] (other faults are unchanged).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        if let Fault::Respond(c) = &mut self {
            c.headers.push((name.into(), value.into()));
        }
        self
    }

    /// Sends a [`Fault::Respond`] body with chunked transfer encoding.
    pub fn chunked(mut self) -> Self {
        if let Fault::Respond(c) = &mut self {
            c.chunked = true;
        }
        self
    }
}

/// Vendor error envelopes, as real servers send them (facts from
/// `real-servers.md`, "Notes for the test harness").
pub mod envelope {
    use super::Fault;

    /// KServe / MLServer / Triton: `404 {"error": …}`.
    pub fn kserve_not_found() -> Fault {
        Fault::json(404, r#"{"error":"Model with name nope does not exist."}"#)
    }

    /// Triton: JSON error body sent as `text/plain`.
    pub fn triton_text_plain() -> Fault {
        Fault::text(
            400,
            r#"{"error":"unexpected inference input 'WRONG' for model 'doubler'"}"#,
        )
    }

    /// FastAPI (KServe, MLServer) on malformed JSON: `422 {"detail": […]}`.
    pub fn fastapi_invalid() -> Fault {
        Fault::json(
            422,
            r#"{"detail":[{"type":"json_invalid","loc":["body",11],"msg":"JSON decode error","input":{},"ctx":{"error":"Expecting value"}}]}"#,
        )
    }

    /// MLServer on a model exception: `500` text/plain `Internal Server Error`.
    pub fn mlserver_internal() -> Fault {
        Fault::text(500, "Internal Server Error")
    }

    /// TorchServe: `404 {"code","type","message"}`, no Content-Type.
    pub fn torchserve_not_found() -> Fault {
        Fault::Respond(super::Canned {
            status: 404,
            headers: Vec::new(),
            body:
                br#"{"code":404,"type":"ModelNotFoundException","message":"Model not found: nope"}"#
                    .to_vec(),
            chunked: false,
        })
    }

    /// TorchServe token auth failure: `400` `InvalidKeyException`.
    pub fn torchserve_invalid_key() -> Fault {
        Fault::json(
            400,
            r#"{"code": 400, "type": "InvalidKeyException", "message": "Token Authorization failed. Token either incorrect, expired, or not provided correctly"}"#,
        )
    }

    /// Seldon Core v1: `500 {"status":{"code":-1,"info","reason","status":1}}`.
    pub fn seldon_internal() -> Fault {
        Fault::json(
            500,
            r#"{"status":{"code":-1,"info":"cannot reshape array of size 2 into shape (3,3)","reason":"MICROSERVICE_INTERNAL_ERROR","status":1}}"#,
        )
    }

    /// moto (SageMaker) SigV4 failure: `403` XML `ErrorResponse` as text/html.
    pub fn moto_signature() -> Fault {
        Fault::with_body(
            403,
            "text/html",
            b"<ErrorResponse><Errors><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided.</Message><Type>Sender</Type></Error></Errors></ErrorResponse>".to_vec(),
        )
    }

    /// AWS front door throttling: `400` with `x-amzn-ErrorType: ThrottlingException`.
    pub fn sagemaker_throttling() -> Fault {
        Fault::json(400, r#"{"message":"Rate exceeded"}"#).header(
            "x-amzn-ErrorType",
            "ThrottlingException:http://internal.amazon.com/coral/com.amazon.coral.availability/",
        )
    }

    /// MLflow model server: `400 {"error_code","message"}`.
    pub fn mlflow_bad_request() -> Fault {
        Fault::json(
            400,
            r#"{"error_code": "BAD_REQUEST", "message": "The input must be a JSON dictionary with exactly one of the input fields {'dataframe_split', 'dataframe_records', 'instances', 'inputs'}"}"#,
        )
    }
}

/// A request the server received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The method.
    pub method: String,
    /// The request target (path and query).
    pub target: String,
    /// The headers, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The first value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
struct State {
    script: Mutex<VecDeque<Fault>>,
    fallback: Fault,
    requests: AtomicUsize,
    connections: AtomicUsize,
    recorded: Mutex<Vec<RecordedRequest>>,
}

impl State {
    fn peek_reset_before_read(&self) -> bool {
        let mut script = self.script.lock().expect("fault script lock");
        if script.front() == Some(&Fault::ResetBeforeRead) {
            script.pop_front();
            self.requests.fetch_add(1, Ordering::SeqCst);
            true
        } else {
            false
        }
    }

    fn next(&self) -> Fault {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let mut script = self.script.lock().expect("fault script lock");
        script.pop_front().unwrap_or_else(|| self.fallback.clone())
    }
}

/// Options for [`FaultServer::start_with`].
#[derive(Debug, Clone)]
pub struct FaultOptions {
    /// Answer for requests after the script ran out (default `200 {"ok":true}`).
    pub fallback: Fault,
    /// Refuse connections (TCP RST to the SYN: the port is bound but not
    /// listening) for this long after start, then listen. Lets a test prove
    /// that a client retries a request that never reached the server.
    pub refuse_for: Duration,
}

impl Default for FaultOptions {
    fn default() -> Self {
        FaultOptions {
            fallback: Fault::json(200, r#"{"ok":true}"#),
            refuse_for: Duration::ZERO,
        }
    }
}

/// The scripted server. Stops (listener and every connection) when dropped.
#[derive(Debug)]
pub struct FaultServer {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultServer {
    /// Starts a server on `127.0.0.1:0` that plays `script`, then the default fallback.
    pub async fn start(script: impl IntoIterator<Item = Fault>) -> std::io::Result<FaultServer> {
        FaultServer::start_with(script, FaultOptions::default()).await
    }

    /// Starts a server with options.
    pub async fn start_with(
        script: impl IntoIterator<Item = Fault>,
        options: FaultOptions,
    ) -> std::io::Result<FaultServer> {
        let socket = TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let addr = socket.local_addr()?;
        let state = Arc::new(State {
            script: Mutex::new(script.into_iter().collect()),
            fallback: options.fallback,
            requests: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            recorded: Mutex::new(Vec::new()),
        });
        let (listener, pending) = if options.refuse_for.is_zero() {
            (Some(socket.listen(128)?), None)
        } else {
            (None, Some(socket))
        };
        let shared = Arc::clone(&state);
        let refuse_for = options.refuse_for;
        let task = tokio::spawn(async move {
            let listener = match (listener, pending) {
                (Some(l), _) => l,
                (None, Some(socket)) => {
                    tokio::time::sleep(refuse_for).await;
                    match socket.listen(128) {
                        Ok(l) => l,
                        Err(_) => return,
                    }
                }
                (None, None) => return,
            };
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        shared.connections.fetch_add(1, Ordering::SeqCst);
                        connections.spawn(serve(stream, Arc::clone(&shared)));
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        Ok(FaultServer { addr, state, task })
    }

    /// The server's base URL, `http://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests received so far (each consumed one script entry; a
    /// [`Fault::ResetBeforeRead`] counts when the request starts arriving).
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// The requests read so far (not those reset before reading).
    pub fn recorded(&self) -> Vec<RecordedRequest> {
        self.state.recorded.lock().expect("recorded lock").clone()
    }
}

fn reset(stream: TcpStream) {
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}

async fn serve(mut stream: TcpStream, state: Arc<State>) {
    let mut buf = Vec::new();
    loop {
        // Wait for the next request to start arriving (or the client to close).
        if buf.is_empty() {
            let mut probe = [0u8; 1];
            match tokio::time::timeout(READ_WAIT, stream.peek(&mut probe)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
        }
        if state.peek_reset_before_read() {
            reset(stream);
            return;
        }
        let Some((request, keep_alive)) = read_request(&mut stream, &mut buf).await else {
            return;
        };
        state.recorded.lock().expect("recorded lock").push(request);
        match state.next() {
            Fault::Respond(canned) => {
                if write_canned(&mut stream, &canned).await.is_err() || !keep_alive {
                    return;
                }
            }
            Fault::ResetBeforeRead | Fault::ResetAfterRead => {
                reset(stream);
                return;
            }
            Fault::ResetMidBody {
                status,
                declared,
                sent,
            } => {
                let head = head(status, &[], Some(declared));
                let _ = stream.write_all(&head).await;
                let _ = stream.write_all(&sent).await;
                let _ = stream.flush().await;
                tokio::time::sleep(Duration::from_millis(100)).await;
                reset(stream);
                return;
            }
            Fault::Truncated { declared, sent } => {
                let head = head(
                    200,
                    &[("Content-Type".into(), "application/json".into())],
                    Some(declared),
                );
                let _ = stream.write_all(&head).await;
                let _ = stream.write_all(&sent).await;
                let _ = stream.shutdown().await;
                // Let the client read to the end before the socket goes away.
                let mut sink = [0u8; 1024];
                let _ = tokio::time::timeout(READ_WAIT, stream.read(&mut sink)).await;
                return;
            }
            Fault::Stall { max } => {
                tokio::time::sleep(max).await;
                return;
            }
            Fault::SlowDrip {
                body,
                chunk,
                interval,
            } => {
                let head = head(
                    200,
                    &[("Content-Type".into(), "application/octet-stream".into())],
                    Some(body.len()),
                );
                if stream.write_all(&head).await.is_err() {
                    return;
                }
                for part in body.chunks(chunk.max(1)) {
                    if stream.write_all(part).await.is_err() || stream.flush().await.is_err() {
                        return;
                    }
                    tokio::time::sleep(interval).await;
                }
                return;
            }
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

fn head(status: u16, headers: &[(String, String)], length: Option<usize>) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    match length {
        Some(n) => out.push_str(&format!("Content-Length: {n}\r\n")),
        None => out.push_str("Transfer-Encoding: chunked\r\n"),
    }
    out.push_str("\r\n");
    out.into_bytes()
}

async fn write_canned(stream: &mut TcpStream, canned: &Canned) -> std::io::Result<()> {
    if canned.chunked {
        stream
            .write_all(&head(canned.status, &canned.headers, None))
            .await?;
        for part in canned.body.chunks(16 * 1024) {
            stream
                .write_all(format!("{:x}\r\n", part.len()).as_bytes())
                .await?;
            stream.write_all(part).await?;
            stream.write_all(b"\r\n").await?;
        }
        stream.write_all(b"0\r\n\r\n").await?;
    } else {
        stream
            .write_all(&head(
                canned.status,
                &canned.headers,
                Some(canned.body.len()),
            ))
            .await?;
        stream.write_all(&canned.body).await?;
    }
    stream.flush().await
}

/// Reads more bytes into `buf`; `false` on EOF, error or timeout.
async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 16 * 1024];
    match tokio::time::timeout(READ_WAIT, stream.read(&mut chunk)).await {
        Ok(Ok(n)) if n > 0 => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
        _ => false,
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads one request (head and body) from `buf` + the stream; leftover
/// bytes stay in `buf` for the next request. Returns the request and
/// whether the connection may stay open.
pub(crate) async fn read_request(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> Option<(RecordedRequest, bool)> {
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD || !fill(stream, buf).await {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    buf.drain(..head_end + 4);
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let target = first.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let keep_alive = !get("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
    let body = if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        read_chunked(stream, buf).await?
    } else {
        let len: usize = get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if len > MAX_BODY {
            return None;
        }
        while buf.len() < len {
            if !fill(stream, buf).await {
                return None;
            }
        }
        buf.drain(..len).collect()
    };
    Some((
        RecordedRequest {
            method,
            target,
            headers,
            body,
        },
        keep_alive,
    ))
}

async fn read_chunked(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(i) = find(buf, b"\r\n") {
                break i;
            }
            if buf.len() > MAX_HEAD || !fill(stream, buf).await {
                return None;
            }
        };
        let size_text = String::from_utf8_lossy(&buf[..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        buf.drain(..line_end + 2);
        if body.len() + size > MAX_BODY {
            return None;
        }
        while buf.len() < size + 2 {
            if !fill(stream, buf).await {
                return None;
            }
        }
        body.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
        if size == 0 {
            return Some(body);
        }
    }
}

/// A loopback port that refuses connections and stays reserved while this
/// value lives: a socket bound to `127.0.0.1:0` that never listens. Unlike
/// binding a listener and dropping it, no other test can take the port in
/// between, so a connection attempt is refused every time.
#[derive(Debug)]
pub struct RefusedPort {
    /// Held only to keep the port bound.
    _socket: TcpSocket,
    addr: SocketAddr,
}

impl RefusedPort {
    /// Reserves a port (`127.0.0.1`, chosen by the system).
    pub fn new() -> std::io::Result<RefusedPort> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let addr = socket.local_addr()?;
        Ok(RefusedPort {
            _socket: socket,
            addr,
        })
    }

    /// The reserved address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}
