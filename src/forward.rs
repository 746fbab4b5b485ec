//! Forwarding (`--forward URL`): a captured request goes on to the developer's own
//! receiver (the upstream) as it arrived, and the upstream's answer comes back to
//! be captured and, unless a script step says otherwise, passed to the sender.
//!
//! This module owns forwarding: its settings (the flags of the "Forwarding"
//! heading), its start-up checks (a loop back to this listener, an upstream not up
//! yet), where a request goes (the forward URL's path is a prefix), what is sent
//! (hop-by-hop headers out, `X-Forwarded-*` in, one hop mark) and the upstream
//! leg as captured. The client itself is the outgoing side's ([`crate::outgoing`]).
//! Whether a request is forwarded is the behaviour's decision (`respond`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use http::header::{CONNECTION, CONTENT_LENGTH, EXPECT, HOST};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::Full;
use hyper::body::{Body, Frame, Incoming};
use thiserror::Error;

use crate::capture::UpstreamLeg;
use crate::outgoing::{
    self, InlineBody, InlineClient, ReadError, Trust, TrustError, Url, read_capped,
};
use crate::values::parse_duration;

/// How hookscope reaches the upstream: flags of `hookscope listen`.
#[derive(Debug, Clone, Args)]
pub struct UpstreamOptions {
    /// How long your receiver has to answer (head and body) before the sender gets 504.
    #[arg(help_heading = "Forwarding", long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub forward_timeout: Duration,

    /// Trust only this CA certificate (PEM) for an https --forward, as curl --cacert does.
    #[arg(
        help_heading = "Forwarding",
        long,
        value_name = "PEM",
        requires = "forward",
        conflicts_with = "forward_insecure"
    )]
    pub forward_cacert: Option<PathBuf>,

    /// Do not verify the certificate of an https --forward (a self-signed development server).
    #[arg(help_heading = "Forwarding", long, requires = "forward")]
    pub forward_insecure: bool,
}

impl Default for UpstreamOptions {
    /// The defaults of the flags (written once, on them).
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            upstream: UpstreamOptions,
            /// `requires = "forward"` on the TLS flags names this flag.
            #[arg(long)]
            forward: Option<String>,
        }
        <Defaults as clap::Parser>::parse_from(["hookscope"]).upstream
    }
}

impl UpstreamOptions {
    /// Whom an https upstream is trusted as.
    pub fn trust(&self) -> Trust {
        match (&self.forward_cacert, self.forward_insecure) {
            (Some(path), _) => Trust::CaCert(path.clone()),
            (None, true) => Trust::Insecure,
            (None, false) => Trust::SystemRoots,
        }
    }
}

/// Why forwarding cannot start.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ForwardError {
    /// The CA certificate file cannot be used.
    #[error("--forward-cacert: {0}")]
    CaCert(#[from] TrustError),
    /// The forward URL points at this very listener: every request would come back to it.
    #[error(
        "--forward {url} is this listener's own address ({addr}): every request would be sent back to hookscope, forever"
    )]
    Loop {
        /// The forward URL.
        url: String,
        /// The listening address it resolves to.
        addr: SocketAddr,
    },
}

// The headers a forward writes (from the ones received, if any).
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// The client that forwards requests (connections are kept and reused; HTTP/2 when
/// an https upstream offers it).
pub(crate) struct Upstream {
    client: outgoing::Client,
    /// The client for an `http://` forward URL's origin (see [`InlineClient`]); the
    /// pooled client carries https (which may be HTTP/2).
    inline: Option<Inline>,
    /// This instance's mark on what it forwards (see [`HOP_HEADER`]).
    hop: HeaderValue,
    timeout: Duration,
    /// Most bytes of an answer's body captured (the sender gets all of them).
    keep: usize,
}

/// An `http://` upstream's own client, with what its requests are addressed by.
struct Inline {
    client: InlineClient,
    /// `http://host:port`, as [`target`] begins a URL on this origin.
    origin: String,
    /// Its `Host` header (the pooled client writes one from the URL; this one does not).
    host: HeaderValue,
}

impl Inline {
    fn for_url(url: &Url) -> Option<Inline> {
        if url.scheme() != "http" {
            return None;
        }
        let port = url.port_or_known_default()?;
        Some(Inline {
            client: InlineClient::new(url.host_str()?, port),
            origin: url.origin().ascii_serialization(),
            host: outgoing::host_header(url)?,
        })
    }
}

/// An upstream's answer body, from whichever client carried the request.
pub(crate) enum UpstreamBody {
    /// Read through the connection the request's task drives.
    Inline(InlineBody),
    /// From the pooled client's connection task.
    Pooled(Incoming),
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            UpstreamBody::Inline(body) => Pin::new(body).poll_frame(cx),
            UpstreamBody::Pooled(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Inline(body) => body.is_end_stream(),
            UpstreamBody::Pooled(body) => body.is_end_stream(),
        }
    }
}

/// A request to send on, as it arrived.
pub(crate) struct Outgoing<'a> {
    pub(crate) method: &'a Method,
    pub(crate) path: &'a str,
    pub(crate) query: Option<&'a str>,
    /// The headers as received (secrets not masked: the upstream may check them).
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) peer: SocketAddr,
    /// Whether the request came over TLS (`X-Forwarded-Proto`).
    pub(crate) tls: bool,
}

/// What forwarding gave: the leg as captured, and the answer to pass on, if there is one.
pub(crate) struct Forwarded {
    pub(crate) leg: UpstreamLeg,
    pub(crate) answer: Option<UpstreamAnswer>,
}

/// The upstream's answer, ready to be passed to the sender: its body is the
/// leg's kept bytes, then (when it was longer) the rest, streamed.
pub(crate) struct UpstreamAnswer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) rest: Option<StreamedRest>,
}

/// An upstream's body longer than what is kept: the bytes read so far, then the
/// rest as it comes, until the `--forward-timeout` of the whole answer.
pub(crate) struct StreamedRest {
    read: std::collections::VecDeque<Bytes>,
    body: UpstreamBody,
    /// When the whole answer was due: a stalled upstream must not hold the sender.
    deadline: Pin<Box<tokio::time::Sleep>>,
}

/// Why the rest of an upstream's answer stopped: the sender's connection is then
/// closed mid-body, as a proxy does.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RestError {
    /// The whole answer took longer than `--forward-timeout`.
    #[error("the upstream's answer took longer than --forward-timeout")]
    TooSlow,
    /// The upstream's connection broke.
    #[error(transparent)]
    Broken(#[from] hyper::Error),
}

impl Upstream {
    /// Forwarding to `url` for a listener on `listener`, with the settings of
    /// `options`, capturing at most `keep` bytes of each answer. Refuses a URL that
    /// comes back to the listener; warns (without refusing) when nothing answers
    /// there yet, since the user's app may start after hookscope.
    pub(crate) async fn start(
        url: &Url,
        options: &UpstreamOptions,
        keep: u64,
        listener: SocketAddr,
    ) -> Result<Upstream, ForwardError> {
        if let Some(addr) = reaches(url, listener).await {
            return Err(ForwardError::Loop {
                url: url.to_string(),
                addr,
            });
        }
        let mut upstream = Upstream::new(options, keep)?;
        upstream.inline = Inline::for_url(url);
        tokio::spawn(warn_if_unreachable(url.clone()));
        Ok(upstream)
    }

    /// A client with the settings of `options`, capturing at most `keep` bytes of each answer.
    fn new(options: &UpstreamOptions, keep: u64) -> Result<Upstream, ForwardError> {
        let client = outgoing::Client::new(&options.trust(), options.forward_timeout)?;
        let hop = HeaderValue::from_str(&format!("{:016x}", fastrand::u64(..)))
            .unwrap_or(HeaderValue::from_static("hookscope"));
        Ok(Upstream {
            client,
            inline: None,
            hop,
            timeout: options.forward_timeout,
            keep: usize::try_from(keep).unwrap_or(usize::MAX),
        })
    }

    /// Sends the request to `base` (its path a prefix) and reads the answer's head
    /// and up to `keep` bytes of its body, all within `--forward-timeout`.
    pub(crate) async fn send(&self, base: &Url, request: Outgoing<'_>) -> Forwarded {
        let started = Instant::now();
        let deadline = tokio::time::Instant::from_std(started + self.timeout);
        let url = target(base, request.path, request.query);
        let mut leg = UpstreamLeg {
            url,
            status: None,
            version: None,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            truncated: false,
            first_byte: None,
            took: Duration::ZERO,
            error: None,
            timed_out: false,
        };
        let failed = |mut leg: UpstreamLeg, error: String, timed_out: bool| {
            leg.error = Some(error);
            leg.timed_out = timed_out;
            leg.took = started.elapsed();
            Forwarded { leg, answer: None }
        };
        // On the inline client's origin, the request line carries the path alone.
        let inline = self.inline.as_ref().and_then(|inline| {
            let path = leg.url.strip_prefix(&inline.origin)?;
            path.starts_with('/').then_some((inline, path))
        });
        let uri = match inline
            .map_or(leg.url.as_str(), |(_, path)| path)
            .parse::<Uri>()
        {
            Ok(uri) => uri,
            Err(error) => {
                return failed(leg, format!("cannot address the upstream: {error}"), false);
            }
        };
        let mut outgoing = Request::new(Full::new(request.body.clone()));
        *outgoing.method_mut() = request.method.clone();
        *outgoing.headers_mut() = forwarded_headers(&request);
        outgoing.headers_mut().append(HOP_HEADER, self.hop.clone());
        *outgoing.uri_mut() = uri;
        let sent = match inline {
            Some((inline, _)) => {
                outgoing.headers_mut().insert(HOST, inline.host.clone());
                let answer = inline.client.send(outgoing, deadline).await;
                answer.map(|answer| answer.map(UpstreamBody::Inline))
            }
            None => {
                let answer = self.client.send(outgoing, deadline).await;
                answer.map(|answer| answer.map(UpstreamBody::Pooled))
            }
        };
        let answer = match sent {
            Ok(answer) => answer,
            Err(outgoing::Failure::TimedOut) => return failed(leg, self.too_slow("answer"), true),
            Err(failure) => return failed(leg, failure.describe(base, "--forward-timeout"), false),
        };
        leg.first_byte = Some(started.elapsed());
        let (head, mut body) = answer.into_parts();
        leg.status = Some(head.status.as_u16());
        leg.version = Some(version_text(head.version));
        leg.headers = outgoing::without_hop_by_hop(head.headers);
        let beyond = match read_capped(&mut body, self.keep, deadline).await {
            Ok(capped) => {
                leg.body = capped.kept;
                capped.beyond
            }
            Err(ReadError::Broken { kept, cause }) => {
                leg.body = kept;
                return failed(leg, format!("its answer's body broke off: {cause}"), false);
            }
            Err(ReadError::TimedOut { kept }) => {
                leg.body = kept;
                return failed(leg, self.too_slow("answer's body"), true);
            }
        };
        leg.took = started.elapsed();
        let rest = beyond.map(|beyond| {
            leg.truncated = true;
            StreamedRest {
                read: [leg.body.clone(), beyond].into(),
                body,
                deadline: Box::pin(tokio::time::sleep_until(deadline)),
            }
        });
        Forwarded {
            answer: Some(UpstreamAnswer {
                status: head.status,
                headers: leg.headers.clone(),
                rest,
            }),
            leg,
        }
    }

    fn too_slow(&self, what: &str) -> String {
        format!(
            "no {what} within {} (--forward-timeout)",
            humantime::format_duration(self.timeout)
        )
    }
}

impl Body for StreamedRest {
    type Data = Bytes;
    type Error = RestError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, RestError>>> {
        let this = self.get_mut();
        if let Some(read) = this.read.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(read))));
        }
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Pending if std::future::Future::poll(this.deadline.as_mut(), cx).is_ready() => {
                Poll::Ready(Some(Err(RestError::TooSlow)))
            }
            polled => polled.map(|frame| frame.map(|frame| frame.map_err(RestError::from))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.read.is_empty() && self.body.is_end_stream()
    }
}

/// The URL a request for `path` and `query` goes to: the forward URL's path is a prefix.
///
/// `/` (where Panther posts through a tunnel) is the forward URL's path itself, as
/// written: `--forward http://127.0.0.1:3000/webhooks/panther` sends it to
/// `/webhooks/panther`, not `/webhooks/panther/` (which Flask answers 404 and
/// FastAPI 307). Any other path goes below the prefix; the query follows.
pub(crate) fn target(base: &Url, path: &str, query: Option<&str>) -> String {
    // The origin as written (what `Origin::ascii_serialization` makes, without its
    // allocation), unless the URL carries credentials, which the origin leaves out.
    let serialized;
    let origin = if base.username().is_empty() && base.password().is_none() {
        &base[..url::Position::BeforePath]
    } else {
        serialized = base.origin().ascii_serialization();
        serialized.as_str()
    };
    let path = if path.starts_with('/') { path } else { "/" };
    let base_path = base.path();
    let mut url = String::with_capacity(
        origin.len() + base_path.len() + path.len() + 1 + query.map_or(0, str::len),
    );
    url.push_str(origin);
    if path == "/" {
        url.push_str(base_path);
    } else {
        url.push_str(base_path.trim_end_matches('/'));
        url.push_str(path);
    }
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

/// The header each hookscope that forwards a request adds, one line per hop, with
/// a value of its own: a request that comes back carrying this instance's value, or
/// more hops than [`MAX_HOPS`], went round in a loop (two instances forwarding to each
/// other, or a name of this machine the start-up check could not know).
pub(crate) const HOP_HEADER: HeaderName = HeaderName::from_static("x-hookscope-hop");

/// The most hookscope hops a request may have come through.
pub(crate) const MAX_HOPS: usize = 8;

impl Upstream {
    /// Whether the request came round a forwarding loop (see [`HOP_HEADER`]).
    pub(crate) fn looped(&self, headers: &HeaderMap) -> bool {
        let mut hops = headers.get_all(HOP_HEADER).iter();
        let mut seen = 0;
        hops.any(|hop| {
            seen += 1;
            hop == self.hop || seen > MAX_HOPS
        })
    }
}

/// The address of a listener bound to `listener` that connecting to `url` reaches,
/// if it does: `0.0.0.0` and `::` reach this machine, an IPv4-mapped IPv6 address is
/// its IPv4 one, and a listener on every interface is reached through any of them.
pub(crate) async fn reaches(url: &Url, listener: SocketAddr) -> Option<SocketAddr> {
    let port = url.port_or_known_default()?;
    if port != listener.port() {
        return None;
    }
    let host = url
        .host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']');
    let mut addresses = tokio::net::lookup_host((host, port)).await.ok()?;
    addresses.find(|address| address_reaches(address.ip(), listener.ip()))
}

/// The address a connection to `ip` reaches: this machine's loopback for the
/// unspecified address (`0.0.0.0`, `::`), `ip` itself otherwise.
pub(crate) fn connected_to(ip: std::net::IpAddr) -> std::net::IpAddr {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    match ip {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    }
}

/// Whether connecting to `target` reaches a listener bound to `listener` (same port).
fn address_reaches(target: std::net::IpAddr, listener: std::net::IpAddr) -> bool {
    let target = connected_to(target.to_canonical());
    let listener = listener.to_canonical();
    if listener.is_unspecified() {
        // Bound to every interface: reached by loopback and by any address of this
        // machine (one a socket can be bound to).
        target.is_loopback() || std::net::UdpSocket::bind((target, 0)).is_ok()
    } else {
        target == listener
    }
}

/// The request's headers minus hop-by-hop ones, `Host` (the upstream's is
/// written by the client) and `Expect`, plus `X-Forwarded-For` (the chain so far, then the
/// peer), `X-Forwarded-Proto` and `X-Forwarded-Host`. `Content-Length` is written
/// by the client from the body, which is the one received.
fn forwarded_headers(request: &Outgoing<'_>) -> HeaderMap {
    let original = request.headers;
    // A new map rather than a copy with names removed: removing swaps the last header
    // into the gap, and the upstream gets the headers in the order they came.
    let mut headers = HeaderMap::with_capacity(original.len() + 3);
    let listed = if original.contains_key(CONNECTION) {
        outgoing::listed_in_connection(original)
    } else {
        Vec::new()
    };
    for (name, value) in original {
        // The body was read whole already: an `Expect: 100-continue` would make the
        // upstream wait for a go-ahead that is not needed.
        let skipped = outgoing::is_hop_by_hop(name.as_str())
            || name == HOST
            || name == CONTENT_LENGTH
            || name == EXPECT
            || name == X_FORWARDED_FOR
            || name == X_FORWARDED_PROTO
            || name == X_FORWARDED_HOST
            || listed.contains(name);
        if !skipped {
            headers.append(name.clone(), value.clone());
        }
    }
    if let Some(chain) = forwarded_for(original, request.peer.ip()) {
        headers.insert(X_FORWARDED_FOR, chain);
    }
    let proto = match original.get(X_FORWARDED_PROTO) {
        // A tunnel in front terminated TLS and said so: keep what the sender used.
        Some(value) => value.clone(),
        None if request.tls => HeaderValue::from_static("https"),
        None => HeaderValue::from_static("http"),
    };
    headers.insert(X_FORWARDED_PROTO, proto);
    let host = original
        .get(X_FORWARDED_HOST)
        .or_else(|| original.get(HOST));
    if let Some(host) = host {
        headers.insert(X_FORWARDED_HOST, host.clone());
    }
    headers
}

/// `X-Forwarded-For`: the chain the request came with, then the peer.
fn forwarded_for(original: &HeaderMap, peer: std::net::IpAddr) -> Option<HeaderValue> {
    use std::fmt::Write as _;
    let mut chain = String::with_capacity(64);
    for earlier in original.get_all(X_FORWARDED_FOR) {
        if let Ok(earlier) = earlier.to_str() {
            chain.push_str(earlier);
            chain.push_str(", ");
        }
    }
    let _ = write!(chain, "{peer}");
    HeaderValue::from_str(&chain).ok()
}

fn version_text(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2.0",
        _ => "HTTP/1.1",
    }
}

/// Says so when the upstream does not accept connections at start-up: it may come
/// up later, so this is a warning, and requests get 502 until it does.
async fn warn_if_unreachable(url: Url) {
    const WITHIN: Duration = Duration::from_secs(2);
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        return;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let refused =
        match tokio::time::timeout(WITHIN, tokio::net::TcpStream::connect((host, port))).await {
            Ok(Ok(_)) => return,
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!(
                "no connection within {}",
                humantime::format_duration(WITHIN)
            ),
        };
    tracing::warn!(
        "--forward {url} is not reachable yet ({refused}); requests get 502 until it is"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing(headers: &HeaderMap) -> Outgoing<'_> {
        Outgoing {
            method: &Method::POST,
            path: "/hook",
            query: None,
            headers,
            body: Bytes::new(),
            peer: "127.0.0.1:5000".parse().unwrap(),
            tls: false,
        }
    }

    #[test]
    fn defaults_are_the_flags() {
        let options = UpstreamOptions::default();
        assert_eq!(options.forward_timeout, Duration::from_secs(30));
        assert!(options.forward_cacert.is_none() && !options.forward_insecure);
    }

    #[test]
    fn the_forward_path_is_a_prefix_and_the_query_follows() {
        let base: Url = "http://127.0.0.1:3000/app/".parse().unwrap();
        assert_eq!(
            target(&base, "/hook", Some("a=1&b")),
            "http://127.0.0.1:3000/app/hook?a=1&b"
        );
        let root: Url = "https://example.test".parse().unwrap();
        assert_eq!(target(&root, "/", None), "https://example.test/");
        assert_eq!(target(&root, "*", None), "https://example.test/");
        let panther: Url = "http://127.0.0.1:3000/webhooks/panther".parse().unwrap();
        assert_eq!(
            target(&panther, "/", None),
            "http://127.0.0.1:3000/webhooks/panther"
        );
        assert_eq!(
            target(&panther, "/", Some("a=1")),
            "http://127.0.0.1:3000/webhooks/panther?a=1"
        );
        assert_eq!(
            target(&panther, "/x", None),
            "http://127.0.0.1:3000/webhooks/panther/x"
        );
        assert_eq!(target(&base, "/", None), "http://127.0.0.1:3000/app/");
        // The origin as the client addresses it: no credentials, no default port.
        let credentials: Url = "http://user:pw@Example.test:80/app".parse().unwrap();
        assert_eq!(
            target(&credentials, "/x", None),
            "http://example.test/app/x"
        );
        let ipv6: Url = "http://[::1]:3000".parse().unwrap();
        assert_eq!(target(&ipv6, "/x", Some("")), "http://[::1]:3000/x?");
    }

    #[test]
    fn hop_by_hop_headers_stay_and_forwarded_ones_are_added() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("abc.ngrok.app"));
        headers.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-trace"),
        );
        headers.insert("x-trace", HeaderValue::from_static("1"));
        headers.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        headers.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
        headers.insert("x-panther-signature", HeaderValue::from_static("s"));
        headers.append("x-panther-signature", HeaderValue::from_static("t"));
        let sent = forwarded_headers(&outgoing(&headers));
        let names: Vec<&str> = sent.keys().map(HeaderName::as_str).collect();
        assert_eq!(
            names,
            [
                "x-panther-signature",
                "x-forwarded-for",
                "x-forwarded-proto",
                "x-forwarded-host"
            ]
        );
        assert_eq!(sent.get_all("x-panther-signature").iter().count(), 2);
        assert_eq!(sent["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
        assert_eq!(sent["x-forwarded-proto"], "http");
        assert_eq!(sent["x-forwarded-host"], "abc.ngrok.app");
    }

    #[test]
    fn answers_lose_their_hop_by_hop_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("connection", HeaderValue::from_static("close, x-hop"));
        headers.insert("x-hop", HeaderValue::from_static("1"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("content-length", HeaderValue::from_static("2"));
        headers.insert("x-app", HeaderValue::from_static("kept"));
        let kept = outgoing::without_hop_by_hop(headers);
        let mut names: Vec<&str> = kept.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["content-length", "x-app"]);
    }
}
