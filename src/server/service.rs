//! One request: read the head and a bounded body, check it, decide, answer, publish.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

use super::Shared;
use crate::alert::validate;
use crate::capture::{BodyState, Exchange, Reply};
use crate::respond::{decide, Action};

/// How long a refused body is still drained, so that the client reads the 413
/// instead of a connection reset, before the connection is dropped.
const DRAIN_REFUSED_BODY_FOR: Duration = Duration::from_secs(5);

pub(crate) async fn handle(
    shared: Arc<Shared>,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let started = Instant::now();
    let received_at = chrono::Utc::now();
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let (head, body) = request.into_parts();

    let (body, body_state) = read_body(body, &head.headers, shared.max_body).await;
    let verdict =
        (head.method == Method::POST && body_state == BodyState::Complete).then(|| validate(&body));

    let (response, reply_body) = match body_state {
        BodyState::TooLarge { size } => too_large(size, shared.max_body),
        BodyState::Interrupted | BodyState::Complete => {
            let behaviour = shared.behaviour();
            match decide(&behaviour) {
                Action::Respond {
                    status,
                    headers,
                    body,
                    delay,
                } => {
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    (respond(status, headers, body.clone()), body)
                }
            }
        }
    };

    let reply = Reply {
        status: (body_state != BodyState::Interrupted).then(|| response.status().as_u16()),
        body: reply_body,
        took: started.elapsed(),
    };
    shared.publish(Exchange {
        id,
        received_at,
        peer,
        method: head.method.to_string(),
        path: head.uri.path().to_owned(),
        query: head.uri.query().map(str::to_owned),
        version: format!("{:?}", head.version),
        headers: head
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
        body_state,
        verdict,
        reply,
    });
    Ok(response)
}

/// Reads the body up to `max` bytes without ever holding more than that.
async fn read_body(mut body: Incoming, headers: &http::HeaderMap, max: u64) -> (Bytes, BodyState) {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if let Some(size) = declared.filter(|&size| size > max) {
        drain_in_background(body);
        return (Bytes::new(), BodyState::TooLarge { size });
    }
    let mut buffer = BytesMut::with_capacity(declared.unwrap_or(0) as usize);
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return (buffer.freeze(), BodyState::Interrupted);
        };
        if let Ok(data) = frame.into_data() {
            if (buffer.len() + data.len()) as u64 > max {
                let size = (buffer.len() + data.len()) as u64;
                drain_in_background(body);
                return (Bytes::new(), BodyState::TooLarge { size });
            }
            buffer.extend_from_slice(&data);
        }
    }
    (buffer.freeze(), BodyState::Complete)
}

/// Discards the rest of a refused body for a while, holding nothing in memory.
fn drain_in_background(mut body: Incoming) {
    tokio::spawn(async move {
        let _ = tokio::time::timeout(DRAIN_REFUSED_BODY_FOR, async {
            while let Some(Ok(_)) = body.frame().await {}
        })
        .await;
    });
}

fn too_large(size: u64, max: u64) -> (Response<Full<Bytes>>, Bytes) {
    let text = Bytes::from(format!(
        "request body too large: {size} bytes, the limit is {max} bytes\n"
    ));
    let mut response = plain(StatusCode::PAYLOAD_TOO_LARGE, text.clone());
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    (response, text)
}

fn respond(status: StatusCode, headers: http::HeaderMap, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = if headers.contains_key(CONTENT_TYPE) {
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = status;
        response
    } else {
        plain(status, body)
    };
    let mut last_name = None;
    for (name, value) in headers {
        // HeaderMap's iterator gives the name only with the first of repeated values.
        if let Some(name) = name {
            last_name = Some(name);
        }
        if let Some(name) = &last_name {
            response.headers_mut().append(name.clone(), value);
        }
    }
    response
}

fn plain(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
