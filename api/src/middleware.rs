//! What wraps every request: a request id, one access-log line, the request metrics, and the API
//! key checks on /v1 and /admin.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, ResponseError};

use crate::error::ApiError;
use crate::settings::Secret;
use crate::AppState;

/// Header carrying the request id, taken from the client when it sends a sane one.
pub const REQUEST_ID: &str = "x-request-id";

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The client's id when it is 1 to 64 letters, digits and `-_.:/+@` (UUIDs, W3C trace ids),
/// else one of ours: the access log writes it unquoted as `request_id=…`, where a quote, an
/// `=` or a space would break a logfmt reader's fields.
fn request_id(req: &ServiceRequest) -> String {
    let sane = |b: u8| b.is_ascii_alphanumeric() || b"-_.:/+@".contains(&b);
    req.headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(sane))
        .map(str::to_string)
        .unwrap_or_else(|| format!("{:x}-{}", std::process::id(), NEXT_ID.fetch_add(1, Ordering::Relaxed)))
}

/// What the access log and the request metrics say of one request.
struct RequestRecord {
    id: String,
    method: String,
    /// The route template (`/v1/items/{id}`), so item ids never become label values.
    route: String,
    path: String,
    start: Instant,
}

impl RequestRecord {
    fn finish(&self, state: Option<&AppState>, status: StatusCode) {
        let seconds = self.start.elapsed().as_secs_f64();
        if let Some(state) = state {
            state.metrics().observe_request(&self.method, &self.route, status.as_u16(), seconds);
        }
        // A probe's or a scrape's line at debug when it answers as expected: they come every
        // few seconds from each load balancer and Prometheus, and say nothing; an error of
        // theirs stays at info. (Every other request's line stays at info: `hyrank::access=warn`
        // in HYRANK_LOG turns the access log off, as a busy server may want.)
        let routine = status.is_success() && ["/healthz", "/readyz", "/metrics"].contains(&self.route.as_str());
        macro_rules! access {
            ($level:expr) => {
                tracing::event!(
                    target: "hyrank::access",
                    $level,
                    request_id = %self.id,
                    method = %self.method,
                    route = %self.route,
                    path = %self.path,
                    status = status.as_u16(),
                    ms = format_args!("{:.2}", seconds * 1000.0),
                    "request"
                )
            };
        }
        if routine {
            access!(tracing::Level::DEBUG);
        } else {
            access!(tracing::Level::INFO);
        }
    }
}

/// A request's method as a metrics label: HTTP's own methods by name, any other `OTHER`. A
/// client may send any token as a method, and each would have made a series of its own (and
/// a latency histogram), without a key: the label set must stay bounded, as `route` does.
fn method_label(method: &actix_web::http::Method) -> String {
    use actix_web::http::Method;
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    if KNOWN.contains(method) {
        method.to_string()
    } else {
        "OTHER".to_string()
    }
}

/// Request id, access log and metrics.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let record = RequestRecord {
        id: request_id(&req),
        method: method_label(req.method()),
        route: req.match_pattern().unwrap_or_else(|| "unmatched".into()),
        path: req.path().to_string(),
        start: Instant::now(),
    };
    let state = req.app_data::<web::Data<AppState>>().map(|s| s.get_ref().clone());
    // Lines logged while the request runs (a 500's reason) carry its id, as the access log does.
    let span = tracing::error_span!("request", request_id = %record.id);
    let mut response = match tracing::Instrument::instrument(next.call(req), span).await {
        Ok(response) => response,
        // Errors from inner services still get logged and counted, as the response they become.
        Err(error) => {
            record.finish(state.as_ref(), error.as_response_error().status_code());
            return Err(error);
        }
    };
    record.finish(state.as_ref(), response.status());
    if let Ok(value) = HeaderValue::from_str(&record.id) {
        response.headers_mut().insert(HeaderName::from_static(REQUEST_ID), value);
    }
    Ok(response)
}

/// The key a request presents: `Authorization: Bearer KEY` (the scheme in any case, as RFC
/// 7235 reads it) or `X-Api-Key: KEY`.
fn presented_key(headers: &actix_web::http::header::HeaderMap) -> Option<&str> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' ').filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer")).map(|(_, key)| key))
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim)
}

/// Compares in time independent of where the first difference is, so response timing does not
/// reveal how much of a guessed key was right.
fn same_key(presented: &str, expected: &str) -> bool {
    let (a, b) = (presented.as_bytes(), expected.as_bytes());
    let mut difference = (a.len() != b.len()) as u8;
    for i in 0..b.len() {
        difference |= a.get(i).copied().unwrap_or(0) ^ b[i];
    }
    difference == 0
}

/// Whether a request presents the admin key (for what a route shows the operator only).
pub(crate) fn holds_admin_key(settings: &crate::ServiceSettings, headers: &actix_web::http::header::HeaderMap) -> bool {
    match (presented_key(headers), &settings.admin_key) {
        (Some(presented), Some(key)) => same_key(presented, key.expose()),
        _ => false,
    }
}

/// Which keys a scope accepts.
#[derive(Clone, Copy)]
pub enum Access {
    /// /v1: the search key or the admin key; open when no search key is set.
    Search,
    /// /admin: the admin key only; refused outright when none is set.
    Admin,
    /// Writes (/v1/events): the write key or the admin key; refused outright when neither is
    /// set.
    Write,
}

fn check(access: Access, state: &AppState, req: &ServiceRequest) -> Result<(), ApiError> {
    let settings = state.settings();
    let presented = presented_key(req.headers());
    let matches = |key: &Option<Secret>| match (presented, key) {
        (Some(p), Some(k)) => same_key(p, k.expose()),
        _ => false,
    };
    let unauthorized = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send the API key as `Authorization: Bearer KEY` or `X-Api-Key: KEY`",
        )
    };
    match access {
        Access::Search if settings.search_key.is_none() => Ok(()),
        Access::Search if matches(&settings.search_key) || matches(&settings.admin_key) => Ok(()),
        Access::Search if presented.is_none() => Err(unauthorized()),
        Access::Search => Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "this key is not valid here")),
        Access::Admin if settings.admin_key.is_none() => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "admin_disabled",
            "admin routes are off: start the server with an admin key (HYRANK_ADMIN_KEY)",
        )),
        Access::Admin if matches(&settings.admin_key) => Ok(()),
        Access::Admin if presented.is_none() => Err(unauthorized()),
        Access::Admin => Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "admin routes need the admin key")),
        // A replica takes no writes (`ServiceSettings::replica_of`). Only the admin key is told
        // which source it copies; without any key there is nothing to check first.
        Access::Write if settings.replica_of.is_some() && settings.admin_key.is_none() => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "read_only_replica",
            "this server is a replica and takes no writes: send them to the server whose index folder the \
             publisher builds from",
        )),
        Access::Write if settings.write_key.is_none() && settings.admin_key.is_none() => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "writes_disabled",
            "writes are off: start the server with a write key (HYRANK_WRITE_KEY) or an admin key (HYRANK_ADMIN_KEY)",
        )),
        Access::Write if matches(&settings.write_key) || matches(&settings.admin_key) => match &settings.replica_of {
            // Written here, an event or item would reach neither the publisher's next build nor
            // the other replicas, and the next pulled generation would hide it.
            Some(source) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "read_only_replica",
                format!(
                    "this server is a replica of {source} and takes no writes: send them to the server whose index \
                     folder the publisher builds from"
                ),
            )),
            None => Ok(()),
        },
        Access::Write if presented.is_none() => Err(unauthorized()),
        Access::Write => Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "writes need the write or admin key")),
    }
}

/// Refuses requests without the key `access` demands, before any handler runs.
pub async fn require(
    access: Access,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let verdict = match req.app_data::<web::Data<AppState>>() {
        Some(state) => check(access, state, &req),
        None => Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "no application state")),
    };
    match verdict {
        Ok(()) => next.call(req).await.map(ServiceResponse::map_into_left_body),
        Err(error) => Ok(req.into_response(error.error_response()).map_into_right_body()),
    }
}

/// Refuses what this server would otherwise read as UTF-8 when it is not:
/// - a path or query string that is not UTF-8 once its percent-escapes are decoded
///   (`/v1/items/%FE`): 400 `malformed_url`, naming the part and the bytes. actix decodes a path
///   segment, and serde_urlencoded a query parameter, lossily, writing U+FFFD for what is not
///   UTF-8, so `%FE` and `%C3` read as the same id "\u{FFFD}" and a put under one replaced the
///   other's item;
/// - a body whose `Content-Type` names a charset other than UTF-8
///   (`application/json; charset=iso-8859-1`): 415 `unsupported_media_type`. JSON is UTF-8
///   (RFC 8259 §8.1) and the body is read as such whatever the header says, so Latin-1 text
///   was refused as malformed JSON, or read as other characters.
pub async fn utf8_only(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let undecodable =
        [("path", req.uri().path()), ("query string", req.query_string())].into_iter().find_map(|(part, raw)| {
            let bytes: Vec<u8> = percent_encoding::percent_decode_str(raw).collect();
            let error = std::str::from_utf8(&bytes).err()?;
            let at = error.valid_up_to();
            // The bytes that are no UTF-8 (all that is left, when a sequence is cut short).
            let bad = error.error_len().unwrap_or(bytes.len() - at);
            let shown: Vec<String> = bytes[at..at + bad].iter().map(|b| format!("%{b:02X}")).collect();
            Some(format!(
                "the request's {part} is not UTF-8 once its percent-escapes are decoded: {} after {:?}; \
                 percent-encode the UTF-8 bytes of the text (an id, a value)",
                shown.join(""),
                String::from_utf8_lossy(&bytes[..at]),
            ))
        });
    let error = match undecodable {
        Some(message) => ApiError::new(StatusCode::BAD_REQUEST, "malformed_url", message),
        None => match declared_charset(&req).filter(|c| !c.eq_ignore_ascii_case("utf-8") && !c.eq_ignore_ascii_case("utf8")) {
            Some(charset) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("the body is declared as charset={charset}; JSON is read as UTF-8 only, so send UTF-8 (charset=utf-8, or no charset)"),
            ),
            None => return next.call(req).await.map(ServiceResponse::map_into_left_body),
        },
    };
    Ok(req.into_response(error.error_response()).map_into_right_body())
}

/// Whether the request sends a body a route may read: a `Transfer-Encoding`, or a
/// `Content-Length` other than 0, on a POST or PUT. No GET, HEAD, DELETE or OPTIONS route
/// reads a body, so one sent with them is ignored, whatever its coding or charset (they were
/// refused with a 415 their operations do not list).
fn has_body(req: &ServiceRequest) -> bool {
    use actix_web::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
    use actix_web::http::Method;
    let headers = req.headers();
    let sends = headers.contains_key(TRANSFER_ENCODING)
        || headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim() != "0");
    sends && matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH)
}

/// The `charset` parameter of the `Content-Type` of a request that sends a body, if it names one.
fn declared_charset(req: &ServiceRequest) -> Option<String> {
    if !has_body(req) {
        return None;
    }
    use actix_web::HttpMessage;
    let mime = req.mime_type().ok().flatten()?;
    mime.get_param(actix_web::mime::CHARSET).map(|charset| charset.as_str().trim_matches('"').to_string())
}

/// Refuses a query string on the API routes that read none (all of /v1 but similar's):
/// `POST /v1/search?k=1` answered with the body's k, the parameter unread without a word.
pub async fn no_query_string(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    // By the route's template, not the path: an item whose id is "similar" is not the route.
    let reads_one = req.match_pattern().is_some_and(|pattern| pattern.ends_with("/{id}/similar"));
    if req.query_string().is_empty() || reads_one {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    }
    let names: Vec<String> =
        form_urlencoded::parse(req.query_string().as_bytes()).map(|(name, _)| name.into_owned()).take(5).collect();
    // Options have a body to go in only where the method sends one.
    let body_hint = match *req.method() {
        actix_web::http::Method::POST | actix_web::http::Method::PUT => "; request options go in the body",
        _ => "",
    };
    let error = ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_query_string",
        format!("this route reads no query parameters (got {}){body_hint}", names.join(", ")),
    );
    Ok(req.into_response(error.error_response()).map_into_right_body())
}

/// The request body codings this server decodes ([`crate::inflate`]: gzip, and deflate as
/// zlib, as actix-http's decoder reads them), and none.
const DECODED_ENCODINGS: &[&str] = &["gzip", "deflate", "identity"];

/// Refuses a body whose coding the server would not decode (RFC 9110 §8.4.1: 415, with
/// `Accept-Encoding` naming what it takes, as RFC 7694 asks). actix-http decodes by the first
/// `Content-Encoding` header alone, read as one coding, and takes anything it does not decode
/// (`br`, `zstd`, `x-gzip`, a list such as `gzip, identity`, a typo) as identity: a compressed
/// body would be parsed as JSON and refused as malformed, and a plain body under a wrong header
/// accepted. So a body is let through only under no header or one header naming one coding it
/// decodes; a request without a body is not checked.
pub async fn known_content_encoding(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    use actix_web::http::header::{HeaderValue, ACCEPT_ENCODING, CONTENT_ENCODING};
    let headers = req.headers();
    let has_body = has_body(&req);
    let codings: Vec<&str> =
        headers.get_all(CONTENT_ENCODING).map(|value| value.to_str().unwrap_or("(not text)").trim()).collect();
    let decoded = match codings[..] {
        [] => true,
        [one] => DECODED_ENCODINGS.iter().any(|known| one.eq_ignore_ascii_case(known)),
        _ => false,
    };
    if decoded || !has_body {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    }
    let error = ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_content_encoding",
        format!(
            "Content-Encoding {} is not a coding this server decodes; send one of gzip or deflate, in one \
             header, or an uncompressed body",
            codings.join(", ")
        ),
    );
    let mut response = error.error_response();
    response.headers_mut().insert(ACCEPT_ENCODING, HeaderValue::from_static("gzip, deflate"));
    Ok(req.into_response(response).map_into_right_body())
}

/// The slowest a body may arrive once its first [`crate::settings::Limits::body_timeout`] is up,
/// in bytes per second: each byte received buys this much more time. Kestrel's
/// `MinRequestBodyDataRate` works the same way (240 B/s after a 5 s grace). At 1 KiB/s a 64 KiB
/// search body has at most 64 s more, a full 10,000-event batch (~2.6 MB) 43 minutes: slow
/// links get through, while a client that trickles a byte every few seconds does not.
pub const MIN_BODY_BYTES_PER_SEC: u64 = 1024;

/// Gives a request's body [`crate::settings::Limits::body_timeout`] to arrive, counted from
/// when its headers were read (actix times the headers out, never the body), plus a second per
/// [`MIN_BODY_BYTES_PER_SEC`] bytes received: past it, the body's read fails as timed out,
/// which the JSON reader answers with 408. Without it a client that trickles a byte every few
/// seconds held its connection, and a shutdown's drain, for as long as it liked (a 64 KiB body
/// at a byte each 2 s: 36 hours); with a fixed limit alone, an honest batch of events over a
/// slow link could never arrive in time.
pub async fn body_deadline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(limit) = req.app_data::<web::Data<AppState>>().map(|state| state.settings().limits.body_timeout) {
        let base = actix_web::rt::time::Instant::now() + limit;
        let body = Deadline {
            body: actix_web::HttpMessage::take_payload(&mut req),
            timer: Box::pin(actix_web::rt::time::sleep_until(base)),
            base,
            limit,
            received: 0,
            expired: false,
        };
        req.set_payload(actix_web::dev::Payload::Stream { payload: Box::pin(body) });
    }
    next.call(req).await
}

/// A body that fails once its time is up ([`body_deadline`]).
struct Deadline {
    body: actix_web::dev::Payload,
    timer: std::pin::Pin<Box<actix_web::rt::time::Sleep>>,
    /// The deadline before any byte arrived: the headers' time plus `limit`.
    base: actix_web::rt::time::Instant,
    /// `body_timeout` (for the message).
    limit: std::time::Duration,
    /// Bytes received so far.
    received: u64,
    expired: bool,
}

impl futures_core::Stream for Deadline {
    type Item = Result<actix_web::web::Bytes, actix_web::error::PayloadError>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::future::Future;
        use std::task::Poll;
        let this = self.get_mut();
        if this.expired {
            return Poll::Ready(None);
        }
        if let Poll::Ready(chunk) = std::pin::Pin::new(&mut this.body).poll_next(cx) {
            if let Some(Ok(bytes)) = &chunk {
                this.received += bytes.len() as u64;
                let earned = std::time::Duration::from_secs_f64(this.received as f64 / MIN_BODY_BYTES_PER_SEC as f64);
                this.timer.as_mut().reset(this.base + earned);
            }
            return Poll::Ready(chunk);
        }
        if this.timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        this.expired = true;
        let message = format!(
            "the body did not arrive in time ({} s, plus a second per {MIN_BODY_BYTES_PER_SEC} bytes received; {} received)",
            this.limit.as_secs(),
            this.received
        );
        let timed_out = std::io::Error::new(std::io::ErrorKind::TimedOut, message);
        Poll::Ready(Some(Err(actix_web::error::PayloadError::Io(timed_out))))
    }
}

#[cfg(test)]
mod tests {
    use super::{method_label, same_key};

    /// Any token a client sends as a method is one bounded label, `OTHER`.
    #[test]
    fn unknown_methods_share_one_metrics_label() {
        use actix_web::http::Method;
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
        for token in ["BREW", "FOO1", &"X".repeat(4000)] {
            assert_eq!(method_label(&Method::from_bytes(token.as_bytes()).unwrap()), "OTHER");
        }
    }

    #[test]
    fn keys_match_only_when_identical() {
        assert!(same_key("0123456789abcdef", "0123456789abcdef"));
        assert!(!same_key("0123456789abcdeg", "0123456789abcdef"));
        assert!(!same_key("0123456789abcde", "0123456789abcdef"));
        assert!(!same_key("0123456789abcdef0", "0123456789abcdef"));
        assert!(!same_key("", "0123456789abcdef"));
    }
}
