//! One request: read the head and a bounded body, check it, decide, carry out, publish.

use std::net::SocketAddr;
use std::os::fd::{BorrowedFd, RawFd};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::Incoming;

use super::budget::{BodyBudget, Charge, Registration};
use super::engine::Receiver;
use crate::alert::{AlertKey, Inspection, content_type_warning, inspect};
use crate::capture::{BodyState, Exchange, Outcome, Reply};
use crate::forward::{Outgoing, StreamedRest};
use crate::respond::{
    Action, Answer, Behaviour, RequestContext, RequestFacts, authorize, decide,
    global_script_route, mask, route_for,
};
use crate::schemas::{Schema, schema_for};

/// The body of an answer: whole, or an upstream's that was longer than what is
/// kept, streamed on (`--forward`).
pub(crate) type ReplyBody = Either<Full<Bytes>, StreamedRest>;

/// How long a refused body is still drained, so that the client reads the 413
/// instead of a connection reset, before the connection is dropped.
const DRAIN_REFUSED_BODY_FOR: Duration = Duration::from_secs(5);

/// What the service knows about the connection a request came on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Connection {
    pub(crate) peer: SocketAddr,
    /// The TCP socket, to arm an abortive close for the `reset` step.
    pub(crate) socket: RawFd,
    /// Whether it is TLS (for `X-Forwarded-Proto` when forwarding).
    pub(crate) tls: bool,
}

/// Returned instead of an answer to make hyper close the connection.
#[derive(Debug, thiserror::Error)]
#[error("connection closed without an answer, as scripted")]
pub(crate) struct NoAnswer;

/// One request, in the stages of docs/ARCHITECTURE.md: what arrived, what the
/// checks found, the exchange to publish, a refusal or a decision, and carrying it out.
pub(crate) async fn handle(
    receiver: Arc<Receiver>,
    connection: Connection,
    request: Request<Incoming>,
) -> Result<Response<ReplyBody>, NoAnswer> {
    let intake = intake(&receiver, request).await;
    let checked = check(&receiver, &intake);
    let (mut pending, request) = open_exchange(&receiver, connection, intake, checked).await;
    if let Some(answer) = refuse_early(&receiver, &mut pending, &request) {
        return answer;
    }
    // Boxed, as the stages below: only a shared store's requests pay for this future.
    let shared = match receiver.shared.team() {
        None => None,
        Some(team) => match Box::pin(decide_shared(team, &request)).await {
            Ok(shared) => Some(shared),
            Err(error) => return Ok(store_refusal(&mut pending, &error)),
        },
    };
    let action = decide_once(&receiver, &mut pending, &request, shared.as_ref());
    // Boxed: the largest stage (a delay, a fault, a forward, the record's wait) would
    // otherwise make every stage before it carry its size, and hyper moves the whole.
    Box::pin(carry_out(&receiver, connection, pending, request, action)).await
}

/// Stage 1: the head, whether the body may be read at all, and the body as read.
struct Intake {
    id: u64,
    started: Instant,
    received_at: chrono::DateTime<chrono::Utc>,
    head: http::request::Parts,
    behaviour: Arc<Behaviour>,
    refused: Option<Refused>,
    body: ReadBody,
}

/// Why a request is answered before its body is read.
enum Refused {
    /// No `--require-header` credentials: nothing read, validated or decided.
    Unauthorized(crate::respond::Unauthorized),
    /// A request this instance forwarded, come back round a loop: it would go
    /// round again and fill every slot.
    Looped,
    /// The shared store gave no id: nothing can be stored, so nothing is decided.
    StoreDown(crate::capture::StoreError),
}

async fn intake(receiver: &Receiver, request: Request<Incoming>) -> Intake {
    let started = Instant::now();
    let received_at = chrono::Utc::now();
    let (id, store_down) = match receiver.shared.team() {
        None => (receiver.next_id(), None),
        Some(team) => Box::pin(super::engine::shared_id(team)).await,
    };
    let (mut head, body) = request.into_parts();
    host_from_authority(&mut head);
    let behaviour = receiver.shared.behaviour();
    let refused = match authorize(&head.headers, &behaviour.required_headers) {
        Err(unauthorized) => Some(Refused::Unauthorized(unauthorized)),
        Ok(()) => receiver
            .upstream
            .as_ref()
            .filter(|upstream| upstream.looped(&head.headers))
            .map(|_| Refused::Looped),
    };
    let refused = match store_down {
        Some(error) => Some(Refused::StoreDown(error)),
        None => refused,
    };
    let body = match refused {
        Some(_) => {
            drain_in_background(body);
            ReadBody::partial(BytesMut::new(), BodyState::Complete)
        }
        None => read_body(body, &head, receiver, id, started).await,
    };
    Intake {
        id,
        started,
        received_at,
        head,
        behaviour,
        refused,
        body,
    }
}

/// Stage 2: what the checks found in a body that was read.
struct Checked {
    verdict: Option<crate::alert::Verdict>,
    key: AlertKey,
    /// The schema's name when it is not Panther's (the usual case costs nothing).
    schema: Option<Arc<str>>,
    signature: Option<crate::signature::SignatureVerdict>,
}

fn check(receiver: &Receiver, intake: &Intake) -> Checked {
    let Intake {
        head,
        body,
        behaviour,
        ..
    } = intake;
    let complete = body.state == BodyState::Complete && intake.refused.is_none();
    if !(complete && head.method == Method::POST) {
        let signature = complete
            .then(|| verify_signature(behaviour, intake))
            .flatten();
        return Checked {
            verdict: None,
            key: AlertKey::of_body(&body.bytes),
            schema: None,
            signature,
        };
    }
    let Inspection { verdict, key } = inspect(&body.bytes);
    let mut schema = None;
    let mut verdict = match schema_for(&receiver.schema, &receiver.schema_routes, head.uri.path()) {
        Schema::Panther => Some(verdict),
        other => {
            schema = Some(other.name());
            other.check(&body.bytes)
        }
    };
    if let Some(verdict) = verdict.as_mut().filter(|verdict| verdict.is_json) {
        let content_type = head.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
        verdict.warnings.extend(content_type_warning(content_type));
    }
    Checked {
        verdict,
        key,
        schema,
        signature: verify_signature(behaviour, intake),
    }
}

fn verify_signature(
    behaviour: &Behaviour,
    intake: &Intake,
) -> Option<crate::signature::SignatureVerdict> {
    crate::signature::verify(
        &behaviour.verify,
        &intake.head.headers,
        &intake.body.bytes,
        intake.received_at.timestamp(),
        behaviour.verify_tolerance,
    )
}

/// What the later stages read of the request once its exchange holds the rest.
struct Opened {
    id: u64,
    started: Instant,
    method: Method,
    uri: http::Uri,
    behaviour: Arc<Behaviour>,
    refused: Option<Refused>,
    body_state: BodyState,
    key: AlertKey,
    /// The headers as received, for the upstream, when the capture masks secrets.
    received_headers: Option<http::HeaderMap>,
}

/// Stage 3: room in every lossless subscriber, then the exchange, published exactly
/// once from here on, even if the client goes away.
async fn open_exchange(
    receiver: &Arc<Receiver>,
    connection: Connection,
    intake: Intake,
    checked: Checked,
) -> (Pending, Opened) {
    let Intake {
        id,
        started,
        received_at,
        mut head,
        behaviour,
        refused,
        body,
    } = intake;
    // While the printer is behind, answers wait here rather than memory growing; the
    // room is about what the exchange holds there: its body, twice with its JSON line.
    let reserved = receiver.shared.reserve(2 * body.bytes.len() + 4096).await;
    // The upstream gets the headers as they came, secrets included; the capture masks
    // them (without secrets to mask, the captured headers are the ones that came).
    let masks = !behaviour.required_headers.is_empty();
    let received_headers = (behaviour.forward.is_some() && masks).then(|| head.headers.clone());
    let rejected = match &refused {
        Some(Refused::Unauthorized(unauthorized)) => {
            Some(unauthorized.reason().trim_end().to_owned())
        }
        _ => None,
    };
    // Boxed: the exchange rides along every later stage, and each stage's future is
    // moved into place (hyper moves the request's future too): a pointer moves cheaply.
    let exchange = Box::new(Exchange {
        id,
        received_at,
        peer: connection.peer,
        method: head.method.clone(),
        path: head.uri.path().to_owned(),
        query: head.uri.query().map(str::to_owned),
        version: version_text(head.version),
        headers: captured_headers(
            std::mem::take(&mut head.headers),
            &behaviour.required_headers,
        ),
        body: body.bytes,
        body_state: body.state,
        body_held: body.held,
        verdict: checked.verdict,
        schema: checked.schema,
        signature: checked.signature,
        attempt: None,
        rejected,
        reply: Reply {
            outcome: Outcome::ClientGone,
            headers: http::HeaderMap::new(),
            body: Bytes::new(),
            took: Duration::ZERO,
        },
        upstream: None,
    });
    let pending = Pending {
        receiver: Arc::clone(receiver),
        reserved,
        charge: body.charge,
        started,
        if_dropped: Outcome::ClientGone,
        recorded: false,
        line: None,
        exchange: Some(exchange),
    };
    let opened = Opened {
        id,
        started,
        method: head.method,
        uri: head.uri,
        behaviour,
        refused,
        body_state: body.state,
        key: checked.key,
        received_headers,
    };
    (pending, opened)
}

/// Stage 4a: the answer to a request refused before any decision (no credentials, a
/// loop, a body too large, stalled, without room, or broken), or to one whose sender
/// went away; `None` for a request to decide on.
fn refuse_early(
    receiver: &Receiver,
    pending: &mut Pending,
    request: &Opened,
) -> Option<Result<Response<ReplyBody>, NoAnswer>> {
    if request.refused.is_none() && request.body_state == BodyState::Interrupted {
        pending.finish(Outcome::ClientGone, Bytes::new());
        return Some(Err(NoAnswer));
    }
    let Refusal {
        status,
        text,
        header,
    } = refusal(receiver, request)?;
    let mut response = plain(status, text.clone());
    if let Some((name, value)) = header {
        response.headers_mut().insert(name, value);
    }
    pending.finish_answered(status, response.headers(), text);
    Some(Ok(whole(response)))
}

/// The answer to a request refused before any decision.
struct Refusal {
    status: StatusCode,
    text: Bytes,
    /// `Connection: close` for a body left unread, `Retry-After` for one to send again.
    header: Option<(http::HeaderName, HeaderValue)>,
}

/// The refusal a request gets before any decision, if it is refused.
fn refusal(receiver: &Receiver, request: &Opened) -> Option<Refusal> {
    let close = Some((CONNECTION, HeaderValue::from_static("close")));
    let (status, text, header) = match (&request.refused, request.body_state) {
        (Some(Refused::Looped), _) => (
            StatusCode::LOOP_DETECTED,
            Bytes::from_static(
                b"hookscope forwarded this request already: it came back round a loop \
                  (--forward points at this instance, or at one that forwards back here)\n",
            ),
            close,
        ),
        (Some(Refused::Unauthorized(unauthorized)), _) => (
            StatusCode::UNAUTHORIZED,
            Bytes::from(unauthorized.reason()),
            None,
        ),
        (Some(Refused::StoreDown(error)), _) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Bytes::from(format!("hookscope cannot record this request: {error}\n")),
            Some((http::header::RETRY_AFTER, HeaderValue::from_static(STORE_RETRY_AFTER))),
        ),
        (None, BodyState::TooLarge { size }) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            Bytes::from(format!(
                "request body too large: {size} bytes, the limit is {} bytes\n",
                receiver.body_limits.max
            )),
            close,
        ),
        (None, BodyState::OverBudget) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Bytes::from_static(
                b"hookscope is holding as many request bodies or connections as its limits allow \
                  (--max-inflight-bytes, --max-connections), and this body found no room or was \
                  the slowest: retry shortly\n",
            ),
            Some((http::header::RETRY_AFTER, HeaderValue::from_static("1"))),
        ),
        (None, BodyState::Stalled) => (
            StatusCode::REQUEST_TIMEOUT,
            Bytes::from(format!(
                "the request body stopped arriving: no byte for {}, or longer than {} in all\n",
                humantime::format_duration(receiver.body_limits.stall),
                humantime::format_duration(receiver.body_limits.total),
            )),
            close,
        ),
        (None, BodyState::Malformed) => (
            StatusCode::BAD_REQUEST,
            Bytes::from_static(
                b"the request body could not be read: its chunked encoding is malformed (a chunk size that is not hex, or too large)\n",
            ),
            close,
        ),
        (None, BodyState::Complete | BodyState::Interrupted) => return None,
    };
    Some(Refusal {
        status,
        text,
        header,
    })
}

/// Stage 4b, with a shared store: which attempt this is (and the global script's
/// step, when one applies), decided in the database for every instance at once;
/// an error when the database did not answer in time.
async fn decide_shared(
    team: &crate::capture::Team,
    request: &Opened,
) -> Result<crate::capture::SharedAttempt, crate::capture::StoreError> {
    let behaviour = &request.behaviour;
    let path = request.uri.path();
    let route = route_for(&behaviour.routes, path).map_or("", |(_, route)| route.prefix.as_str());
    let script_route =
        global_script_route(behaviour, path).map(|route| i32::try_from(route).unwrap_or(i32::MAX));
    let now_us = chrono::Utc::now().timestamp_micros();
    let key = (route, request.key.resent, request.key.value.as_str());
    team.arrive(key, script_route, now_us).await
}

/// Stage 4c: which attempt this is and what to answer, under the one lock that
/// orders attempt numbers, script positions and random draws (what a shared store
/// decided is taken as it is).
fn decide_once(
    receiver: &Receiver,
    pending: &mut Pending,
    request: &Opened,
    shared: Option<&crate::capture::SharedAttempt>,
) -> Action {
    let Some(exchange) = pending.exchange.as_mut() else {
        return Action::Answer(Answer::Drop {
            delay: Duration::ZERO,
        });
    };
    let behaviour = &request.behaviour;
    let path = request.uri.path();
    // What answer templates can use, built only when there are templates (the headers
    // as captured: secrets masked).
    let mut context = behaviour.templates.as_ref().map(|_| {
        RequestContext::new(
            &exchange.body,
            &exchange.headers,
            path,
            request.uri.query(),
            (0, request.key.value.as_str(), request.id),
        )
    });
    let mut decisions = receiver.decisions();
    let decisions = &mut *decisions;
    let route = route_for(&behaviour.routes, path).map(|(_, route)| route.prefix.as_str());
    let mut attempt = match shared {
        None => decisions
            .deliveries
            .arrive(&request.key, route, request.started),
        Some(shared) => {
            if let Some(step) = shared.script_step {
                decisions.scripts.restore([step]);
            }
            decisions
                .deliveries
                .adopt(&request.key, route, shared, request.started)
        }
    };
    if let Some(context) = context.as_mut() {
        context.attempt = attempt.number;
    }
    let facts = RequestFacts {
        method: &request.method,
        path,
        verdict: exchange.verdict.as_ref(),
        attempt: attempt.number,
        signature: exchange.signature.as_ref(),
        context: context.as_ref(),
    };
    let action = decide(
        behaviour,
        &facts,
        &mut decisions.scripts,
        &mut decisions.rng,
    );
    // A forwarded answer acknowledges when it comes back (see `forward`).
    let told = match &action {
        Action::Answer(answer)
        | Action::Forward {
            instead: Some(answer),
            ..
        } => Some(answer),
        Action::Forward { instead: None, .. } => None,
    };
    if matches!(told, Some(Answer::Respond { status, .. }) if status.is_success()) {
        decisions.deliveries.acknowledge(&mut attempt);
    }
    drop(context);
    exchange.attempt = Some(attempt);
    action
}

/// Stage 5: carries out the action (a forward first, when there is one) and answers.
async fn carry_out(
    receiver: &Receiver,
    connection: Connection,
    mut pending: Pending,
    request: Opened,
    action: Action,
) -> Result<Response<ReplyBody>, NoAnswer> {
    let behaviour = &request.behaviour;
    let answer = match action {
        Action::Forward { delay, instead } => {
            wait(delay).await;
            let passes_on = instead.is_none();
            // Boxed: the upstream client's future is several KB, and inline it would
            // make every request's future that large, forwarded or not (hyper moves
            // the future it is given, and each stage's future is moved into place).
            let forwarded = Box::pin(forward(
                receiver,
                behaviour,
                &mut pending,
                (connection, request.received_headers),
                passes_on,
            ));
            match (forwarded.await, instead) {
                (_, Some(instead)) => instead,
                (Passed::On(answer), None) => {
                    let status = answer.status();
                    let body = pending
                        .exchange
                        .as_ref()
                        .and_then(|exchange| exchange.upstream.as_ref())
                        .map_or_else(Bytes::new, |leg| leg.body.clone());
                    return Ok(answer_with(&mut pending, status, body, |_, _| answer).await);
                }
                (Passed::Failed { status, reason }, None) => Answer::Respond {
                    status,
                    headers: behaviour.header_map(),
                    body: reason,
                    delay: Duration::ZERO,
                },
            }
        }
        Action::Answer(answer) => answer,
    };
    carry_out_answer(receiver, connection, pending, answer).await
}

/// Answers as a step says: a status, a dropped or reset connection, or a hang.
async fn carry_out_answer(
    receiver: &Receiver,
    connection: Connection,
    mut pending: Pending,
    answer: Answer,
) -> Result<Response<ReplyBody>, NoAnswer> {
    match answer {
        Answer::Respond {
            status,
            headers,
            body,
            delay,
        } => {
            wait(delay).await;
            let response = answer_with(&mut pending, status, body, |status, body| {
                whole(respond(status, headers, body))
            })
            .await;
            Ok(response)
        }
        Answer::Drop { delay } => {
            wait(delay).await;
            pending.finish(Outcome::Dropped, Bytes::new());
            Err(NoAnswer)
        }
        Answer::Reset { delay } => {
            wait(delay).await;
            arm_reset(connection.socket);
            pending.finish(Outcome::Reset, Bytes::new());
            Err(NoAnswer)
        }
        Answer::Hang => {
            pending.if_dropped = Outcome::Hung;
            receiver.shared.shutdown().begun().await;
            pending.finish(Outcome::Hung, Bytes::new());
            Err(NoAnswer)
        }
    }
}

/// What came of forwarding, for the sender.
enum Passed {
    /// The upstream's answer, to pass on.
    On(Response<ReplyBody>),
    /// No usable answer: 502 (could not connect, broken answer) or 504 (too slow), with why.
    Failed { status: StatusCode, reason: Bytes },
}

/// Sends the request on to `--forward`, puts the leg on the exchange, and counts
/// the upstream's 2XX (a duplicate when it had already acknowledged this delivery;
/// the sender's acknowledgement too when it `passes_on` the upstream's answer).
async fn forward(
    receiver: &Receiver,
    behaviour: &Behaviour,
    pending: &mut Pending,
    (connection, received_headers): (Connection, Option<http::HeaderMap>),
    passes_on: bool,
) -> Passed {
    let (Some(upstream), Some(base), Some(exchange)) = (
        receiver.upstream.as_ref(),
        behaviour.forward.as_ref(),
        pending.exchange.as_mut(),
    ) else {
        return Passed::Failed {
            status: StatusCode::BAD_GATEWAY,
            reason: Bytes::from_static(b"hookscope has no --forward URL to send this request to\n"),
        };
    };
    let headers = received_headers.as_ref().unwrap_or(&exchange.headers);
    let forwarded = upstream
        .send(
            base,
            Outgoing {
                method: &exchange.method,
                path: &exchange.path,
                query: exchange.query.as_deref(),
                headers,
                body: exchange.body.clone(),
                peer: connection.peer,
                tls: connection.tls,
            },
        )
        .await;
    let leg = forwarded.leg;
    if let Some(attempt) = exchange.attempt.as_mut() {
        let mut decisions = receiver.decisions();
        if leg.acknowledged() {
            decisions.deliveries.upstream_acknowledged(attempt);
            if passes_on {
                decisions.deliveries.acknowledge(attempt);
            }
        }
    }
    let passed = match forwarded.answer {
        Some(answer) => {
            let mut response = Response::new(match answer.rest {
                Some(rest) => Either::Right(rest),
                None => Either::Left(Full::new(leg.body.clone())),
            });
            *response.status_mut() = answer.status;
            *response.headers_mut() = answer.headers;
            for (name, value) in &behaviour.headers {
                response.headers_mut().append(name.clone(), value.clone());
            }
            Passed::On(response)
        }
        None => {
            let status = if leg.timed_out {
                StatusCode::GATEWAY_TIMEOUT
            } else {
                StatusCode::BAD_GATEWAY
            };
            let why = leg.error.as_deref().unwrap_or("no answer");
            let reason = format!("hookscope could not forward to {}: {why}\n", leg.url);
            Passed::Failed {
                status,
                reason: Bytes::from(reason),
            }
        }
    };
    exchange.upstream = Some(leg);
    passed
}

/// Answers with `status`: a 2XX only once the exchange's record line is written
/// (otherwise 503, so that the sender keeps the alert and retries); `body` is
/// what the exchange keeps of the answer, `build` makes the response.
async fn answer_with(
    pending: &mut Pending,
    status: StatusCode,
    body: Bytes,
    build: impl FnOnce(StatusCode, Bytes) -> Response<ReplyBody>,
) -> Response<ReplyBody> {
    // Built first, so that the exchange keeps the headers the sender gets.
    let response = build(status, body.clone());
    // A 2XX ends a delivery: it is sent only once recorded. With a store, every
    // answer is: what it decided (the attempt, the script's step) must survive a restart.
    // Settled here only for the line; otherwise once, when finished.
    let shared = &pending.receiver.shared;
    if shared.database.is_some() || (shared.recorder.is_some() && status.is_success()) {
        pending.settle(
            Outcome::Answered(status.as_u16()),
            response.headers(),
            body.clone(),
        );
        if let Err(error) = pending.record().await {
            return store_refusal(pending, &error);
        }
    }
    pending.finish_answered(status, response.headers(), body);
    response
}

/// Seconds a sender is asked to wait when the record or the store cannot take a request.
const STORE_RETRY_AFTER: &str = "5";

/// The answer when what a request decided cannot be recorded or stored: 503, and
/// the sender keeps the alert and tries again later, as it should.
fn store_refusal(pending: &mut Pending, error: &dyn std::fmt::Display) -> Response<ReplyBody> {
    let text = Bytes::from(format!("hookscope cannot record this request: {error}\n"));
    let mut refused = plain(StatusCode::SERVICE_UNAVAILABLE, text.clone());
    refused.headers_mut().insert(
        http::header::RETRY_AFTER,
        HeaderValue::from_static(STORE_RETRY_AFTER),
    );
    pending.finish_answered(StatusCode::SERVICE_UNAVAILABLE, refused.headers(), text);
    whole(refused)
}

fn whole(response: Response<Full<Bytes>>) -> Response<ReplyBody> {
    response.map(Either::Left)
}

/// The answer hyper gave a request it refused while reading the head, with the
/// reason to show, if the error is one of those (see hyper's `on_error`). Header
/// read timeouts are not: they also end idle keep-alive connections that sent nothing.
pub(crate) fn refused_head(error: &hyper::Error) -> Option<(u16, String)> {
    if !error.is_parse() || error.is_parse_version_h2() || error.is_parse_status() {
        return None;
    }
    let text = error.to_string();
    let status = match (error.is_parse_too_large(), text.as_str()) {
        (true, "URI too long") => 414,
        (true, _) => 431,
        (false, _) => 400,
    };
    Some((
        status,
        format!("the request head could not be read: {text}"),
    ))
}

async fn wait(delay: Duration) {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}

/// Makes the coming close of this connection send a TCP reset (SO_LINGER 0).
fn arm_reset(socket: RawFd) {
    // SAFETY: the connection that owns this socket is the one running this request,
    // so the descriptor stays open for as long as this borrow lives.
    let socket = unsafe { BorrowedFd::borrow_raw(socket) };
    let _ = socket2::SockRef::from(&socket).set_linger(Some(Duration::ZERO));
}

/// An exchange not yet published; publishes itself if the request is abandoned.
struct Pending {
    receiver: Arc<Receiver>,
    reserved: crate::shared::Reserved,
    /// The body's share of the in-flight budget: held until the exchange is
    /// published, whatever the answer waits for (a delay, a hang, an upstream).
    charge: Charge,
    started: Instant,
    if_dropped: Outcome,
    /// Whether the exchange was written to the record already.
    recorded: bool,
    /// The line written to the record while it still describes the exchange, and
    /// whether it is also the JSON line (stdout then reuses it).
    line: Option<(crate::capture::JsonLine, bool)>,
    exchange: Option<Box<Exchange>>,
}

impl Pending {
    /// Sets the answer the exchange will carry; a reply settled once with the
    /// same outcome keeps its time (the time of the answer, not of the record write).
    fn settle(&mut self, outcome: Outcome, headers: &http::HeaderMap, body: Bytes) {
        let Some(exchange) = self.exchange.as_mut() else {
            return;
        };
        if self.line.is_some() && exchange.reply.outcome == outcome {
            return;
        }
        exchange.reply = Reply {
            outcome,
            headers: headers.clone(),
            body,
            took: self.started.elapsed(),
        };
        self.line = None;
    }

    /// Writes the settled exchange to the record file and the store, and waits
    /// until the OS has the line and the store has committed it.
    async fn record(&mut self) -> Result<(), String> {
        let shared = &self.receiver.shared;
        let Some(exchange) = &self.exchange else {
            return Ok(());
        };
        if shared.recorder.is_none() && shared.database.is_none() {
            return Ok(());
        }
        let (line, same) = crate::capture::record_line_and_sameness(exchange);
        // Set before the wait: if the client goes away while the line is being
        // written, this request is dropped mid-await and must not be written twice.
        self.recorded = true;
        self.line = Some((line.clone(), same));
        let change = shared
            .database
            .as_ref()
            .map(|_| state_change(&self.receiver, exchange));
        let received_at = exchange.received_at;
        let id = exchange.id;
        if let Some(recorder) = &shared.recorder {
            recorder
                .write(line.clone())
                .await
                .map_err(|error| error.to_string())?;
        }
        if let (Some(database), Some(change)) = (&shared.database, change) {
            let exchange = crate::capture::ToStore {
                id,
                received_at,
                line,
                change,
            };
            database
                .write(exchange, self.receiver.store_timeout)
                .await
                .map_err(|error| error.to_string())?;
        }
        Ok(())
    }

    /// Settles an answer with this status and these headers, and publishes it.
    fn finish_answered(&mut self, status: StatusCode, headers: &http::HeaderMap, body: Bytes) {
        self.settle_and_publish(Outcome::Answered(status.as_u16()), headers, body);
    }

    /// Settles an exchange that got no answer and publishes it.
    fn finish(&mut self, outcome: Outcome, body: Bytes) {
        self.settle_and_publish(outcome, &http::HeaderMap::new(), body);
    }

    /// Settles and publishes (recording without waiting if not recorded yet).
    fn settle_and_publish(&mut self, outcome: Outcome, headers: &http::HeaderMap, body: Bytes) {
        self.settle(outcome, headers, body);
        if let Some(exchange) = self.exchange.take() {
            // Not stored while answering (a drop, a reset, a client gone): publishing
            // stores it, without waiting, with what it decided.
            let change = match (&self.receiver.shared.database, self.recorded) {
                (Some(_), false) => state_change(&self.receiver, &exchange),
                _ => crate::capture::StateChange::default(),
            };
            let reserved = std::mem::take(&mut self.reserved);
            self.receiver.shared.publish(
                *exchange,
                self.recorded,
                self.line.take(),
                (reserved, change),
            );
        }
        self.charge = Charge::default();
    }
}

/// What an exchange changed in the decision state, as the store keeps it: its
/// delivery and the global script positions, read under the decisions' lock.
pub(super) fn state_change(
    receiver: &Receiver,
    exchange: &Exchange,
) -> crate::capture::StateChange {
    let mut decisions = receiver.decisions();
    let delivery = exchange.attempt.as_ref().and_then(|attempt| {
        decisions.deliveries.stored(
            attempt,
            Instant::now(),
            chrono::Utc::now().timestamp_micros(),
        )
    });
    crate::capture::StateChange {
        delivery,
        script_positions: decisions.scripts.positions(),
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.finish(self.if_dropped, Bytes::new());
    }
}

/// HTTP/2 carries the host in the `:authority` pseudo-header, not in `host`: it is
/// captured as `host`, as an HTTP/1.1 intermediary would write it, so that every
/// exchange shows (and a replay sends) the host it was addressed to.
fn host_from_authority(head: &mut http::request::Parts) {
    if head.version != http::Version::HTTP_2 || head.headers.contains_key(HOST) {
        return;
    }
    let authority = head.uri.authority().map(|authority| authority.as_str());
    if let Some(value) = authority.and_then(|text| HeaderValue::from_str(text).ok()) {
        head.headers.insert(HOST, value);
    }
}

/// The request headers as captured: the map is taken over, its values moved into
/// one allocation of their own, and the values of secret headers
/// (`--require-header`) replaced by a mask.
fn captured_headers(
    mut headers: http::HeaderMap,
    secrets: &[(http::HeaderName, HeaderValue)],
) -> http::HeaderMap {
    detach_values(&mut headers);
    for (name, expected) in secrets {
        if let http::header::Entry::Occupied(mut entry) = headers.entry(name) {
            for value in entry.iter_mut() {
                let shown = mask(value.as_bytes(), value == expected);
                *value =
                    HeaderValue::from_str(&shown).unwrap_or(HeaderValue::from_static("<masked>"));
            }
        }
    }
    headers
}

/// hyper's header values are slices of the connection's read buffer: a kept
/// exchange holding them would pin that buffer and make hyper allocate a new one
/// for every request. Copying them all into one buffer costs a single allocation.
fn detach_values(headers: &mut http::HeaderMap) {
    let total = headers.values().map(HeaderValue::len).sum();
    let mut storage = BytesMut::with_capacity(total);
    for value in headers.values() {
        storage.extend_from_slice(value.as_bytes());
    }
    let mut storage = storage.freeze();
    for value in headers.values_mut() {
        let own = storage.split_to(value.len());
        let sensitive = value.is_sensitive();
        if let Ok(mut detached) = HeaderValue::from_maybe_shared(own) {
            detached.set_sensitive(sensitive);
            *value = detached;
        }
    }
}

fn version_text(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2.0",
        http::Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

fn declared_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok())
}

/// A body read, the memory it holds when kept (see [`Exchange::body_held`]), and
/// its share of the in-flight budget.
struct ReadBody {
    bytes: Bytes,
    state: BodyState,
    held: usize,
    charge: Charge,
}

impl ReadBody {
    fn partial(buffer: BytesMut, state: BodyState) -> ReadBody {
        ReadBody {
            bytes: buffer.freeze(),
            state,
            held: 0,
            charge: Charge::default(),
        }
    }
}

/// What bounds the reading of one body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimits {
    /// `--max-body`.
    pub(crate) max: u64,
    /// The size hyper's HTTP/1 read buffer grows to.
    pub(crate) read_buffer: usize,
    /// No byte for this long ends the body with 408 (`--header-read-timeout`).
    pub(crate) stall: Duration,
    /// The whole body within this (`--body-timeout`).
    pub(crate) total: Duration,
}

/// Reads the body up to `--max-body`, charging the budget for what it holds as it
/// arrives. A body that stops moving, or takes too long in all, ends `Stalled`; one
/// that finds no room, or is the slowest when room is short, ends `OverBudget`.
///
/// An HTTP/1 body that arrives as one piece at least 3/4 as long as hyper's read
/// buffer (the size that buffer grows to) is kept as hyper read it, a share of that
/// buffer, instead of being copied: with 64 KB alerts the copy was a sixth of the
/// cost of a request. The exchange then counts the whole buffer (`held`), so
/// `--keep-bytes` still bounds what the history holds, and counts a kept body at
/// most 4/3 of its length. A smaller body is copied out, so that a 1 KB alert does
/// not keep a 64 KB buffer alive. HTTP/2 frames come from h2's own buffers: those
/// are always copied.
async fn read_body(
    body: Incoming,
    head: &http::request::Parts,
    receiver: &Receiver,
    id: u64,
    started: Instant,
) -> ReadBody {
    let limits = receiver.body_limits;
    let declared = declared_length(&head.headers);
    if let Some(size) = declared.filter(|&size| size > limits.max) {
        drain_in_background(body);
        return ReadBody::partial(BytesMut::new(), BodyState::TooLarge { size });
    }
    let mut reader = BodyReader {
        body,
        budget: &receiver.budget,
        id,
        started,
        registration: None,
        stalls: Stalls::new(started, limits),
        charge: Charge::default(),
    };
    let mut kept = Kept::default();
    loop {
        let data = match reader.next_data(kept.read).await {
            Ok(Some(data)) => data,
            Ok(None) => break,
            Err(BodyState::Malformed) => return kept.partial(BodyState::Malformed),
            Err(BodyState::Interrupted) => return kept.partial(BodyState::Interrupted),
            Err(state) => return ReadBody::partial(BytesMut::new(), state),
        };
        let size = kept.read + data.len();
        if size as u64 > limits.max {
            drain_in_background(reader.body);
            return ReadBody::partial(BytesMut::new(), BodyState::TooLarge { size: size as u64 });
        }
        let holds = kept.holding_with(data.len(), declared);
        if let Err(state) = reader.charge_up_to(holds, kept.read).await {
            return ReadBody::partial(BytesMut::new(), state);
        }
        reader.received(data.len());
        kept.push(data, holds);
    }
    let keeps_first = head.version != http::Version::HTTP_2;
    let (bytes, held) = kept.finish(keeps_first.then_some(limits.read_buffer));
    ReadBody {
        bytes,
        state: BodyState::Complete,
        held,
        charge: reader.charge,
    }
}

/// A body as it is read: its frames, the deadlines on them, its charge, and (once it
/// has had to wait) its place among the bodies that may be told to give way.
struct BodyReader<'a> {
    body: Incoming,
    budget: &'a BodyBudget,
    id: u64,
    started: Instant,
    registration: Option<Registration<'a>>,
    stalls: Stalls,
    charge: Charge,
}

impl BodyReader<'_> {
    /// The next data frame, `None` at the end, or how the body ended instead.
    async fn next_data(&mut self, read: usize) -> Result<Option<Bytes>, BodyState> {
        loop {
            let frame = match poll_once(&mut self.body) {
                Poll::Ready(frame) => frame,
                Poll::Pending => {
                    let reader = Arc::clone(&self.registered(read).reader);
                    tokio::select! {
                        biased;
                        frame = self.body.frame() => frame,
                        () = reader.told_to_give_way() => return Err(BodyState::OverBudget),
                        () = self.stalls.stalled(read) => return Err(BodyState::Stalled),
                    }
                }
            };
            match frame {
                None => return Ok(None),
                Some(Err(error)) if is_malformed_body(&error) => return Err(BodyState::Malformed),
                Some(Err(_)) => return Err(BodyState::Interrupted),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }

    /// Charges the budget so that it covers `holds` bytes, waiting (a little) for room.
    async fn charge_up_to(&mut self, holds: usize, read: usize) -> Result<(), BodyState> {
        let more = holds.saturating_sub(self.charge.bytes());
        if self.budget.try_charge(&mut self.charge, more) {
            return Ok(());
        }
        let reader = Arc::clone(&self.registered(read).reader);
        self.budget
            .charge(&mut self.charge, more, &reader)
            .await
            .map_err(|_| BodyState::OverBudget)
    }

    fn received(&self, bytes: usize) {
        if let Some(registration) = &self.registration {
            registration.reader.received(bytes as u64);
        }
    }

    fn registered(&mut self, read: usize) -> &Registration<'_> {
        let (budget, id, started) = (self.budget, self.id, self.started);
        self.registration.get_or_insert_with(|| {
            budget.register(id, read as u64, tokio::time::Instant::from_std(started))
        })
    }
}

/// What a body has brought so far: its first frame as it came, then a buffer.
#[derive(Default)]
struct Kept {
    first: Option<Bytes>,
    buffer: BytesMut,
    read: usize,
}

impl Kept {
    /// What the body will hold once a frame of `len` is kept: the frame itself, or the
    /// buffer it is copied into (reserved for the declared length at once).
    fn holding_with(&self, len: usize, declared: Option<u64>) -> usize {
        if self.first.is_none() && self.buffer.is_empty() {
            len
        } else {
            let wanted = declared
                .map_or(0, |size| size as usize)
                .max(self.read + len);
            self.buffer.capacity().max(wanted)
        }
    }

    fn push(&mut self, data: Bytes, holds: usize) {
        self.read += data.len();
        if self.first.is_none() && self.buffer.is_empty() {
            self.first = Some(data);
            return;
        }
        if let Some(first) = self.first.take() {
            self.buffer.reserve(holds);
            self.buffer.extend_from_slice(&first);
        }
        self.buffer.extend_from_slice(&data);
    }

    /// What was read before the body broke off.
    fn partial(mut self, state: BodyState) -> ReadBody {
        if let Some(first) = self.first.take() {
            self.buffer.extend_from_slice(&first);
        }
        ReadBody::partial(self.buffer, state)
    }

    /// The whole body and what it holds (see [`read_body`]); `read_buffer` is the
    /// size of hyper's HTTP/1 read buffer, when a first frame may be kept as read.
    fn finish(self, read_buffer: Option<usize>) -> (Bytes, usize) {
        match (self.first, read_buffer) {
            (Some(whole), Some(size)) if whole.len() >= size / 4 * 3 => {
                let held = whole.len().max(size);
                (whole, held)
            }
            (Some(whole), _) => (Bytes::copy_from_slice(&whole), 0),
            (None, _) => (self.buffer.freeze(), 0),
        }
    }
}

/// Polls the body for its next frame once, without waiting.
fn poll_once(body: &mut Incoming) -> Poll<Option<Result<hyper::body::Frame<Bytes>, hyper::Error>>> {
    let waker = std::task::Waker::noop();
    let mut context = std::task::Context::from_waker(waker);
    hyper::body::Body::poll_frame(std::pin::Pin::new(body), &mut context)
}

/// When a body counts as stalled: no byte for `stall`, looked at every `stall` (so
/// it ends between one and two of them after its last byte), or not whole by `total`.
struct Stalls {
    next_look: tokio::time::Instant,
    last_seen: usize,
    stall: Duration,
    end: tokio::time::Instant,
}

impl Stalls {
    fn new(started: Instant, limits: BodyLimits) -> Stalls {
        let started = tokio::time::Instant::from_std(started);
        Stalls {
            next_look: started + limits.stall,
            last_seen: 0,
            stall: limits.stall,
            end: started + limits.total,
        }
    }

    /// Resolves once the body has stalled, given the bytes `read` so far.
    async fn stalled(&mut self, read: usize) {
        loop {
            tokio::time::sleep_until(self.next_look.min(self.end)).await;
            let now = tokio::time::Instant::now();
            if now >= self.end || read == self.last_seen {
                return;
            }
            self.last_seen = read;
            self.next_look = now + self.stall;
        }
    }
}

/// Whether a body error is the client's framing (hyper's chunked decoder reports a bad
/// or overflowing chunk size as invalid data), not the connection going away.
fn is_malformed_body(error: &hyper::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput
            );
        }
        source = cause.source();
    }
    false
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detached_values_keep_order_repeats_and_sensitivity_and_leave_the_buffer() {
        let buffer = Bytes::from_static(b"one two three");
        let mut headers = http::HeaderMap::new();
        let value = |range: std::ops::Range<usize>| {
            HeaderValue::from_maybe_shared(buffer.slice(range)).unwrap()
        };
        headers.insert("a", value(0..3));
        headers.append("b", value(4..7));
        headers.append("b", value(8..13));
        let mut secret = HeaderValue::from_static("s3cret");
        secret.set_sensitive(true);
        headers.insert("c", secret);

        detach_values(&mut headers);

        let seen: Vec<(&str, &[u8], bool)> = headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes(), value.is_sensitive()))
            .collect();
        assert_eq!(
            seen,
            [
                ("a", &b"one"[..], false),
                ("b", b"two", false),
                ("b", b"three", false),
                ("c", b"s3cret", true)
            ]
        );
        let inside =
            |value: &HeaderValue| buffer.as_ptr_range().contains(&value.as_bytes().as_ptr());
        assert!(!headers.values().any(inside));
    }
}

#[cfg(test)]
mod future_sizes {
    use super::*;

    fn future_size<F: std::future::Future>(
        _: impl Fn(Arc<Receiver>, Connection, Request<Incoming>) -> F,
    ) -> usize {
        std::mem::size_of::<F>()
    }

    /// hyper moves each request's future, and every stage's future is moved into
    /// place: at 8.5 KB (the exchange inline, the last stage inline) those copies
    /// cost a quarter of a request's instructions. Boxing the exchange and the last
    /// stage keeps it near 2 KB.
    #[test]
    fn a_requests_future_stays_small() {
        let size = future_size(handle);
        assert!(size <= 3 * 1024, "handle's future is {size} bytes");
        assert!(std::mem::size_of::<Pending>() <= 256);
    }
}
