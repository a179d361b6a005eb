//! A small gRPC server on 127.0.0.1 for connector tests (feature `grpc`).
//!
//! A [`GrpcRouter`] maps method paths (`/package.Service/Method`, as the
//! connector sends them) to async handlers over prost messages, and
//! [`GrpcRouter::serve`] serves them with tonic's server and the prost codec,
//! with a bounded message size. A path with no handler answers
//! `UNIMPLEMENTED`, like any gRPC server. No generated service stubs are
//! needed: a test server is a state type and the handlers it routes.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use inferlink_testkit::grpc_server::GrpcRouter;
//! # #[derive(Clone, PartialEq, prost::Message)] struct Ping {}
//! struct Echo;
//! impl Echo {
//!     async fn ping(self: Arc<Self>, request: tonic::Request<Ping>) -> Result<Ping, tonic::Status> {
//!         Ok(request.into_inner())
//!     }
//! }
//! # async fn demo() -> std::io::Result<()> {
//! let server = GrpcRouter::new(Arc::new(Echo))
//!     .unary("/echo.Echo/Ping", Echo::ping)
//!     .serve()
//!     .await?;
//! let url = server.url(); // grpc://127.0.0.1:<port>
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::{BoxFuture, FutureExt};
use futures_util::stream::{Stream, StreamExt};
use tonic::codec::CompressionEncoding;
use tonic::codegen::{Service, http};
use tonic::metadata::MetadataMap;
use tonic::server::Grpc;
use tonic::service::{AxumBody, AxumRouter, Routes};
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;

/// The largest message a test server decodes or encodes unless
/// [`GrpcRouter::max_message_size`] says otherwise: 64 MiB, room for the
/// large-tensor tests and still bounded.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 64 << 20;

type HttpResponse = http::Response<tonic::body::Body>;

/// One route: the whole HTTP exchange of one method.
type Route =
    Arc<dyn Fn(http::Request<AxumBody>, Limits) -> BoxFuture<'static, HttpResponse> + Send + Sync>;

/// What every route applies to its codec.
#[derive(Clone, Copy, Debug)]
struct Limits {
    max_message_size: usize,
    accept_compressed: Option<CompressionEncoding>,
}

impl Limits {
    fn grpc<Req, Resp>(self) -> Grpc<ProstCodec<Resp, Req>>
    where
        Req: prost::Message + Default + Send + 'static,
        Resp: prost::Message + Send + 'static,
    {
        let grpc = Grpc::new(ProstCodec::default())
            .max_decoding_message_size(self.max_message_size)
            .max_encoding_message_size(self.max_message_size);
        match self.accept_compressed {
            Some(encoding) => grpc.accept_compressed(encoding),
            None => grpc,
        }
    }
}

/// Sees the metadata of every request, routed or not, before its handler.
type Observer = Arc<dyn Fn(&MetadataMap) + Send + Sync>;

/// Maps method paths to handlers over a shared state `S`; see the
/// [module documentation](self).
pub struct GrpcRouter<S> {
    state: Arc<S>,
    routes: HashMap<String, Route>,
    observer: Option<Observer>,
    limits: Limits,
}

impl<S> fmt::Debug for GrpcRouter<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut paths: Vec<&String> = self.routes.keys().collect();
        paths.sort();
        f.debug_struct("GrpcRouter")
            .field("paths", &paths)
            .field("limits", &self.limits)
            .finish()
    }
}

impl<S: Send + Sync + 'static> GrpcRouter<S> {
    /// A router with no routes whose handlers all get `state`.
    pub fn new(state: Arc<S>) -> Self {
        Self {
            state,
            routes: HashMap::new(),
            observer: None,
            limits: Limits {
                max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
                accept_compressed: None,
            },
        }
    }

    /// Routes a unary method: `handler(state, request)` answers one message
    /// or a status.
    pub fn unary<Req, Resp, F, Fut>(mut self, path: &str, handler: F) -> Self
    where
        Req: prost::Message + Default + Send + 'static,
        Resp: prost::Message + Send + 'static,
        F: Fn(Arc<S>, Request<Req>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, Status>> + Send + 'static,
    {
        let state = Arc::clone(&self.state);
        let call = Call::new(move |request| {
            handler(Arc::clone(&state), request).map(|answer| answer.map(Response::new))
        });
        let route: Route = Arc::new(move |request, limits| {
            let call = call.clone();
            async move { limits.grpc::<Req, Resp>().unary(call, request).await }.boxed()
        });
        self.routes.insert(path.to_owned(), route);
        self
    }

    /// Routes a server-streaming method: `handler(state, request)` answers a
    /// stream of messages (an `Err` item ends it with that status) or a
    /// status for the whole call.
    pub fn server_streaming<Req, Resp, F, Fut, St>(mut self, path: &str, handler: F) -> Self
    where
        Req: prost::Message + Default + Send + 'static,
        Resp: prost::Message + Send + 'static,
        F: Fn(Arc<S>, Request<Req>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<St, Status>> + Send + 'static,
        St: Stream<Item = Result<Resp, Status>> + Send + 'static,
    {
        let state = Arc::clone(&self.state);
        let call = Call::new(move |request| {
            handler(Arc::clone(&state), request)
                .map(|answer| answer.map(|stream| Response::new(stream.boxed())))
        });
        let route: Route = Arc::new(move |request, limits| {
            let call = call.clone();
            async move {
                limits
                    .grpc::<Req, Resp>()
                    .server_streaming(call, request)
                    .await
            }
            .boxed()
        });
        self.routes.insert(path.to_owned(), route);
        self
    }

    /// Routes a unary method that answers every call with `answer` (its
    /// request, whatever it holds, is decoded and dropped).
    pub fn answer<Resp>(self, path: &str, answer: Result<Resp, Status>) -> Self
    where
        Resp: prost::Message + Clone + 'static,
    {
        self.unary(path, move |_, _: Request<()>| {
            futures_util::future::ready(answer.clone())
        })
    }

    /// Calls `observe(state, metadata)` for every request, routed or not,
    /// before its handler: for a test server that records what each call
    /// carried.
    pub fn on_request<F>(mut self, observe: F) -> Self
    where
        F: Fn(&S, &MetadataMap) + Send + Sync + 'static,
    {
        let state = Arc::clone(&self.state);
        self.observer = Some(Arc::new(move |metadata| observe(&state, metadata)));
        self
    }

    /// Accepts requests compressed with `encoding` (identity is always
    /// accepted); without it, a compressed request is refused with
    /// `UNIMPLEMENTED`.
    pub fn accept_compressed(mut self, encoding: CompressionEncoding) -> Self {
        self.limits.accept_compressed = Some(encoding);
        self
    }

    /// The largest message decoded or encoded, in bytes (default
    /// [`DEFAULT_MAX_MESSAGE_SIZE`]).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.limits.max_message_size = bytes;
        self
    }

    /// Serves the routes on a free port of 127.0.0.1 until the returned
    /// [`GrpcServer`] is dropped.
    pub async fn serve(self) -> std::io::Result<GrpcServer<S>> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let dispatch = Dispatch {
            routes: Arc::new(self.routes),
            observer: self.observer,
            limits: self.limits,
        };
        let routes = Routes::from(AxumRouter::new().fallback_service(dispatch));
        let task = tokio::spawn(async move {
            let incoming = tonic::transport::server::TcpIncoming::from(listener);
            // The task ends when the server is dropped; a failure to serve
            // shows as the client's connection error.
            let _ = tonic::transport::Server::builder()
                .add_routes(routes)
                .serve_with_incoming(incoming)
                .await;
        });
        Ok(GrpcServer {
            url: format!("grpc://{addr}"),
            addr,
            state: self.state,
            task,
        })
    }
}

/// A running test server and the state its handlers share (for the test
/// to script and inspect); dropping it stops the server.
pub struct GrpcServer<S> {
    url: String,
    addr: SocketAddr,
    state: Arc<S>,
    task: tokio::task::JoinHandle<()>,
}

impl<S> fmt::Debug for GrpcServer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcServer")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl<S> GrpcServer<S> {
    /// Its address on 127.0.0.1.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its URL for a connector: `grpc://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The state its handlers share.
    pub fn state(&self) -> &Arc<S> {
        &self.state
    }
}

impl<S> Drop for GrpcServer<S> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a handler's future gives tonic: a response or a status.
type Answer<Out> = BoxFuture<'static, Result<Response<Out>, Status>>;

/// A handler as the tower service tonic's `Grpc` calls (through its blanket
/// `UnaryService` / `ServerStreamingService` impls).
struct Call<Req, Out> {
    handler: Arc<dyn Fn(Request<Req>) -> Answer<Out> + Send + Sync>,
}

impl<Req, Out> Clone for Call<Req, Out> {
    fn clone(&self) -> Self {
        Self {
            handler: Arc::clone(&self.handler),
        }
    }
}

impl<Req, Out> Call<Req, Out> {
    fn new<F, Fut>(handler: F) -> Self
    where
        F: Fn(Request<Req>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Response<Out>, Status>> + Send + 'static,
    {
        Self {
            handler: Arc::new(move |request| handler(request).boxed()),
        }
    }
}

impl<Req, Out> Service<Request<Req>> for Call<Req, Out> {
    type Response = Response<Out>;
    type Error = Status;
    type Future = Answer<Out>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Req>) -> Self::Future {
        (self.handler)(request)
    }
}

/// Picks the route of a request's path; `UNIMPLEMENTED` for any other path.
#[derive(Clone)]
struct Dispatch {
    routes: Arc<HashMap<String, Route>>,
    observer: Option<Observer>,
    limits: Limits,
}

impl Service<http::Request<AxumBody>> for Dispatch {
    type Response = HttpResponse;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<HttpResponse, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<AxumBody>) -> Self::Future {
        if let Some(observe) = &self.observer {
            observe(&MetadataMap::from_headers(request.headers().clone()));
        }
        match self.routes.get(request.uri().path()) {
            Some(route) => route(request, self.limits).map(Ok).boxed(),
            None => {
                let status = Status::unimplemented(format!(
                    "this test server has no method {}",
                    request.uri().path()
                ));
                futures_util::future::ready(Ok(status.into_http())).boxed()
            }
        }
    }
}
