//! The generic gRPC test server against tonic's own client on 127.0.0.1:
//! routed unary and server-streaming methods, fixed answers, the request
//! observer, UNIMPLEMENTED for other paths, and the message-size bound.

use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use inferlink_testkit::grpc_server::{GrpcRouter, GrpcServer};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::{Code, Request, Status};
use tonic_prost::ProstCodec;

/// Upper-cases text; remembers the `x-caller` of every request.
#[derive(Default)]
struct Shouter {
    callers: Mutex<Vec<String>>,
}

impl Shouter {
    async fn shout(self: Arc<Self>, r: Request<String>) -> Result<String, Status> {
        match r.into_inner() {
            text if text.is_empty() => Err(Status::invalid_argument("nothing to shout")),
            text => Ok(text.to_uppercase()),
        }
    }

    /// One message per word; `!` ends the stream with an error.
    async fn words(
        self: Arc<Self>,
        r: Request<String>,
    ) -> Result<impl futures_util::Stream<Item = Result<String, Status>>, Status> {
        let items: Vec<Result<String, Status>> = r
            .into_inner()
            .split(' ')
            .map(|w| match w {
                "!" => Err(Status::data_loss("cut")),
                w => Ok(w.to_owned()),
            })
            .collect();
        Ok(futures_util::stream::iter(items))
    }

    fn note(&self, metadata: &tonic::metadata::MetadataMap) {
        let caller = metadata.get("x-caller").and_then(|v| v.to_str().ok());
        self.callers
            .lock()
            .unwrap()
            .push(caller.unwrap_or("-").to_owned());
    }
}

async fn serve(max_message_size: usize) -> GrpcServer<Shouter> {
    GrpcRouter::new(Arc::new(Shouter::default()))
        .on_request(Shouter::note)
        .unary("/demo.Shouter/Shout", Shouter::shout)
        .server_streaming("/demo.Shouter/Words", Shouter::words)
        .answer("/demo.Shouter/Version", Ok("1.0".to_owned()))
        .max_message_size(max_message_size)
        .serve()
        .await
        .unwrap()
}

async fn client(server: &GrpcServer<Shouter>) -> tonic::client::Grpc<tonic::transport::Channel> {
    let url = server.url().replace("grpc://", "http://");
    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .connect()
        .await
        .unwrap();
    tonic::client::Grpc::new(channel)
}

async fn call(
    server: &GrpcServer<Shouter>,
    path: &'static str,
    text: &str,
) -> Result<String, Status> {
    let mut grpc = client(server).await;
    grpc.ready().await.unwrap();
    let mut request = Request::new(text.to_owned());
    request
        .metadata_mut()
        .insert("x-caller", "test".parse().unwrap());
    grpc.unary(
        request,
        PathAndQuery::from_static(path),
        ProstCodec::default(),
    )
    .await
    .map(|r| r.into_inner())
}

#[tokio::test]
async fn routes_answer_and_other_paths_are_unimplemented() {
    let server = serve(1 << 20).await;
    assert!(server.url().starts_with("grpc://127.0.0.1:"));
    assert_eq!(
        call(&server, "/demo.Shouter/Shout", "hey").await.unwrap(),
        "HEY"
    );
    let e = call(&server, "/demo.Shouter/Shout", "").await.unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::InvalidArgument, "nothing to shout")
    );
    assert_eq!(
        call(&server, "/demo.Shouter/Version", "ignored")
            .await
            .unwrap(),
        "1.0"
    );
    let e = call(&server, "/demo.Shouter/Whisper", "hey")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);
    assert!(e.message().contains("/demo.Shouter/Whisper"), "{e:?}");
    // The observer saw every request, the unrouted one too.
    assert_eq!(*server.state().callers.lock().unwrap(), ["test"; 4]);
}

#[tokio::test]
async fn server_streams_end_with_the_handlers_error() {
    let server = serve(1 << 20).await;
    let mut grpc = client(&server).await;
    grpc.ready().await.unwrap();
    let stream = grpc
        .server_streaming(
            Request::new("a b ! c".to_owned()),
            PathAndQuery::from_static("/demo.Shouter/Words"),
            ProstCodec::<String, String>::default(),
        )
        .await
        .unwrap()
        .into_inner();
    let items: Vec<Result<String, Status>> = stream.collect().await;
    assert_eq!(items.len(), 3, "{items:?}");
    assert_eq!(items[0].as_ref().unwrap(), "a");
    assert_eq!(items[1].as_ref().unwrap(), "b");
    assert_eq!(items[2].as_ref().unwrap_err().code(), Code::DataLoss);
}

#[tokio::test]
async fn messages_over_the_bound_are_refused() {
    let server = serve(1024).await;
    let fits = "x".repeat(1000);
    assert_eq!(
        call(&server, "/demo.Shouter/Shout", &fits)
            .await
            .unwrap()
            .len(),
        1000
    );
    let e = call(&server, "/demo.Shouter/Shout", &"x".repeat(2000))
        .await
        .unwrap_err();
    // The server's decoder refuses it (tonic's code for that: OUT_OF_RANGE).
    assert_eq!(e.code(), Code::OutOfRange, "{e:?}");
    assert!(e.message().contains("limit is: 1024"), "{e:?}");
}
