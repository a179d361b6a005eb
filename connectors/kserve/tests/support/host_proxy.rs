//! A loopback reverse proxy that plays a Kubernetes ingress gateway: it
//! routes by virtual host, like Istio or Kourier in front of KServe.
//!
//! One port on 127.0.0.1 speaks HTTP/1.1 and h2c. A request whose host —
//! the `Host` header over HTTP/1.1, the `:authority` over HTTP/2 — is the
//! configured one (any port) is forwarded: gRPC (`content-type:
//! application/grpc…`) over h2c to the server's gRPC port, everything else
//! over HTTP/1.1 to its REST port, streaming bodies and trailers both
//! ways. Any other host gets what an ingress answers for a host it does not
//! know: `404` with an empty body. Every request's host is recorded, so
//! tests can prove which way each one went.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

type Body = BoxBody<Bytes, hyper::Error>;

/// What the proxy saw: one entry per request, `(host, routed)`.
pub type Seen = Arc<Mutex<Vec<(String, bool)>>>;

/// A running proxy; dropping it stops accepting connections.
pub struct HostProxy {
    addr: SocketAddr,
    seen: Seen,
    task: JoinHandle<()>,
}

impl Drop for HostProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Routes {
    host: String,
    rest: SocketAddr,
    grpc: SocketAddr,
    http1: Client<HttpConnector, Incoming>,
    h2c: Client<HttpConnector, Incoming>,
    seen: Seen,
}

impl HostProxy {
    /// A proxy on a free loopback port that routes `host` to `rest` / `grpc`.
    pub async fn start(host: &str, rest: SocketAddr, grpc: SocketAddr) -> HostProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let seen: Seen = Arc::default();
        let routes = Arc::new(Routes {
            host: host.to_ascii_lowercase(),
            rest,
            grpc,
            http1: Client::builder(TokioExecutor::new()).build_http(),
            h2c: Client::builder(TokioExecutor::new())
                .http2_only(true)
                .build_http(),
            seen: seen.clone(),
        });
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let routes = routes.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let routes = routes.clone();
                        async move { Ok::<_, Infallible>(routes.handle(req).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        HostProxy { addr, seen, task }
    }

    /// `http://127.0.0.1:<port>`: the "ingress URL" records point at.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request so far: its host and whether it was routed.
    pub fn seen(&self) -> Vec<(String, bool)> {
        self.seen.lock().expect("seen").clone()
    }
}

impl Routes {
    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        // HTTP/2 carries the host as :authority (in the URI); HTTP/1.1 as Host.
        let raw = req
            .uri()
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| {
                req.headers()
                    .get(hyper::header::HOST)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        let host = strip_port(&raw).to_ascii_lowercase();
        let routed = host == self.host;
        self.seen.lock().expect("seen").push((raw, routed));
        if !routed {
            return Response::builder()
                .status(StatusCode::NOT_FOUND)
                .body(Empty::new().map_err(|never| match never {}).boxed())
                .expect("static response");
        }
        let grpc = req
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/grpc"));
        let (upstream, client) = if grpc {
            (self.grpc, &self.h2c)
        } else {
            (self.rest, &self.http1)
        };
        let (mut parts, body) = req.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".to_owned());
        parts.uri = format!("http://{upstream}{path}")
            .parse()
            .expect("upstream URI");
        parts.version = if grpc {
            hyper::Version::HTTP_2
        } else {
            hyper::Version::HTTP_11
        };
        match client.request(Request::from_parts(parts, body)).await {
            Ok(resp) => resp.map(BodyExt::boxed),
            Err(_) => Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(Empty::new().map_err(|never| match never {}).boxed())
                .expect("static response"),
        }
    }
}

fn strip_port(authority: &str) -> &str {
    if authority.ends_with(']') {
        return authority;
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}
