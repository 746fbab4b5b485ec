//! The benchmark's ceiling: a bare hyper 1 server that reads the whole body and
//! answers 200 `success`, with the same runtime and connection builder as hookscope.
//!
//! `cargo run --release --example baseline -- 0` prints `listening on http://127.0.0.1:PORT`.
//!
//! With `--proxy URL` it is the ceiling of forwarding in Rust instead: it reads the whole
//! body and sends it on to URL with hyper-util's pooled client (the one hookscope uses),
//! passing the answer back; no validation, capture or history.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    // Read it all, as any receiver must, then acknowledge.
    let _body = request
        .into_body()
        .collect()
        .await
        .map(|body| body.to_bytes());
    Ok(Response::new(Full::new(Bytes::from_static(b"success"))))
}

type Client = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

async fn forward(
    client: Client,
    upstream: String,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (head, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let target = format!(
        "{upstream}{}",
        head.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut outgoing = Request::new(Full::new(body));
    *outgoing.method_mut() = head.method;
    *outgoing.headers_mut() = head.headers;
    outgoing.headers_mut().remove(hyper::header::HOST);
    *outgoing.uri_mut() = target.parse().unwrap_or_default();
    let answer = match client.request(outgoing).await {
        Ok(answer) => answer,
        Err(_) => {
            let mut failed = Response::new(Full::new(Bytes::from_static(b"bad gateway")));
            *failed.status_mut() = hyper::StatusCode::BAD_GATEWAY;
            return Ok(failed);
        }
    };
    let (head, body) = answer.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Ok(Response::from_parts(head, Full::new(body)))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|arg| arg == "--proxy") {
        let upstream = args.get(at + 1).cloned().unwrap_or_default();
        let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
        connector.set_nodelay(true);
        let client: Client =
            hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector);
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        eprintln!("listening on http://{}", listener.local_addr()?);
        let http = auto::Builder::new(TokioExecutor::new());
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let (client, upstream) = (client.clone(), upstream.clone());
            let service = hyper::service::service_fn(move |request| {
                forward(client.clone(), upstream.clone(), request)
            });
            let connection = http
                .serve_connection(TokioIo::new(stream), service)
                .into_owned();
            tokio::spawn(async move {
                let _ = connection.await;
            });
        }
    }
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("listening on http://{}", listener.local_addr()?);
    let http = auto::Builder::new(TokioExecutor::new());
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let connection = http
            .serve_connection(TokioIo::new(stream), hyper::service::service_fn(answer))
            .into_owned();
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
}
