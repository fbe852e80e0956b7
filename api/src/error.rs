//! HTTP errors: one type, a stable JSON body `{"error": {"code": "...", "message": "..."}}`, and
//! an exhaustive mapping from the engine's error kinds to statuses.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use hyrank_engine::{Error as EngineError, ErrorKind};
use serde::Serialize;

/// An error as the API reports it.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable snake_case code for programs.
    pub code: &'static str,
    /// Message for people.
    pub message: String,
}

/// The body of every error response.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// A stable code for programs and a message for people.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// snake_case, stable across releases (e.g. `invalid_request`, `limit_exceeded`, `overloaded`).
    pub code: String,
    /// What to fix, naming the field.
    pub message: String,
}

impl ApiError {
    /// Builds one.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into() }
    }

    /// This error as a query parameter's: an invalid request (422 `invalid_request`, a value
    /// no request may hold) is a bad value of the query string, 400 `invalid_query_string`
    /// with the same message, as a value the parameter cannot be read as is (`k=0` as `k=-1`);
    /// a limit exceeded, or any other error, stays as it is.
    pub fn in_query_string(self) -> Self {
        match self.code {
            "invalid_request" => ApiError { status: StatusCode::BAD_REQUEST, code: "invalid_query_string", ..self },
            _ => self,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.status, self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header((actix_web::http::header::RETRY_AFTER, "1"));
        }
        // A 401 names the scheme it wants (RFC 7235 §3.1).
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((actix_web::http::header::WWW_AUTHENTICATE, "Bearer"));
        }
        response.json(ErrorBody { error: ErrorDetail { code: self.code.to_string(), message: self.message.clone() } })
    }
}

/// What a client is told of a failure on the server's side.
pub(crate) const INTERNAL_MESSAGE: &str =
    "the request failed on the server; its log has the reason under this response's x-request-id";

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let code = match &e {
            EngineError::InvalidArgument { .. } => "invalid_request",
            EngineError::UnknownItem { .. } => "item_not_found",
            EngineError::UnknownUser { .. } => "user_not_found",
            EngineError::Unavailable { .. } => "unavailable_in_index",
            EngineError::Overloaded { .. } => "overloaded",
            EngineError::Cancelled => "cancelled",
            _ => "internal",
        };
        let status = match e.kind() {
            ErrorKind::InvalidInput => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            // nginx's "client closed request". A server never writes it (the request's future,
            // which would, is what was dropped); what embeds the handlers may see it.
            ErrorKind::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::REQUEST_TIMEOUT),
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        // A full queue is load shed as designed, counted by the metrics and answered with
        // Retry-After: not an error to log once per refused request (a burst wrote an ERROR
        // line per 503, at the worst moment), as the engine queue's 503s are not logged either.
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %e, "request failed");
            // The reason names the server's files (`appending to /srv/index/live/...`): it is
            // the log's, under the request's id (the access log's, and the request span's).
            return ApiError::new(status, code, INTERNAL_MESSAGE);
        }
        ApiError::new(status, code, e.to_string())
    }
}

/// serde_json's message for JSON it cannot parse, with what it means where its words mislead:
/// a `\uD800`–`\uDBFF` escape without its `\uDC00`–`\uDFFF` partner (a lone surrogate, which
/// is no character) is "unexpected end of hex escape" there.
fn malformed(e: &serde_json::Error) -> String {
    let said = e.to_string();
    if said.contains("hex escape") {
        return format!(
            "{said}: a \\u escape from \\uD800 to \\uDBFF must be followed by one from \\uDC00 to \\uDFFF \
             (the two halves of one character); alone, it is no character"
        );
    }
    said
}

/// Maps actix's JSON body errors: unparseable JSON is a 400, well-formed JSON of the wrong shape
/// a 422, an oversized body a 413.
pub fn json_error(err: actix_web::error::JsonPayloadError, req: &actix_web::HttpRequest) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as J;
    let api = match &err {
        J::Overflow { limit } | J::OverflowKnownLength { limit, .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body is larger than {limit} bytes"),
        ),
        J::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send Content-Type: application/json",
        ),
        J::Deserialize(e) if e.is_data() => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", e.to_string())
        }
        J::Deserialize(e) => ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", malformed(e)),
        // The body's bytes could not be read as sent: actix's own messages are Debug dumps
        // (`Some(Custom { kind: UnexpectedEof … })`), so each case is said in words.
        J::Payload(actix_web::error::PayloadError::Io(e)) if e.kind() == std::io::ErrorKind::TimedOut => {
            ApiError::new(StatusCode::REQUEST_TIMEOUT, "request_timeout", e.to_string())
        }
        J::Payload(payload) => {
            use actix_web::error::PayloadError as P;
            let reason = match payload {
                // A decoder's own complaint (a plain body sent as gzip: "invalid gzip header")
                // is about the encoding, not about the body's length; without an encoding, a
                // failed read (a reset connection) is not.
                P::Incomplete(Some(e))
                    if e.kind() != std::io::ErrorKind::UnexpectedEof
                        && req.headers().contains_key(actix_web::http::header::CONTENT_ENCODING) =>
                {
                    format!("the body is not in the Content-Encoding its header names ({e})")
                }
                P::Incomplete(Some(e)) => {
                    format!("the body ended before it was complete ({e}); a compressed body may be cut short")
                }
                P::Incomplete(None) => "the body ended before it was complete".to_string(),
                P::EncodingCorrupted => "the body is not in the Content-Encoding its header names".to_string(),
                other => format!("the body could not be read: {other}"),
            };
            ApiError::new(StatusCode::BAD_REQUEST, "unreadable_body", reason)
        }
        other => ApiError::new(StatusCode::BAD_REQUEST, "bad_request", other.to_string()),
    };
    api.into()
}

/// A query string read as `T`, a bad value named by its parameter (`k: invalid digit found
/// in string`); actix's `web::Query` says only "Query deserialize error: ..." without naming
/// it.
///
/// # Errors
/// 400 `invalid_query_string` naming the parameter (or the unknown one).
pub fn query<T: serde::de::DeserializeOwned>(request: &actix_web::HttpRequest) -> Result<T, ApiError> {
    let pairs = serde_urlencoded::Deserializer::new(form_urlencoded::parse(request.query_string().as_bytes()));
    serde_path_to_error::deserialize(pairs).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = if path == "." || path.is_empty() { inner.to_string() } else { format!("{path}: {inner}") };
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_query_string", message)
    })
}

/// Maps query-string errors to 400.
pub fn query_error(err: actix_web::error::QueryPayloadError, _req: &actix_web::HttpRequest) -> actix_web::Error {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_query_string", err.to_string()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_engine_queue_is_503_with_retry_after() {
        let error = ApiError::from(EngineError::Overloaded { queue: "query encoder queue", capacity: 4 });
        assert_eq!((error.status, error.code), (StatusCode::SERVICE_UNAVAILABLE, "overloaded"));
        let response = error.error_response();
        assert_eq!(response.headers().get("retry-after").unwrap(), "1");
    }

    /// A failure on the server's side tells the client where to look, not the server's paths.
    #[test]
    fn an_internal_error_keeps_its_reason_in_the_log() {
        let reason = std::io::Error::other("File too large");
        let error = ApiError::from(EngineError::io("appending to /srv/index/live/events-00000001.jsonl", reason));
        assert_eq!((error.status, error.code), (StatusCode::INTERNAL_SERVER_ERROR, "internal"));
        assert_eq!(error.message, INTERNAL_MESSAGE);
        let invalid = ApiError::from(EngineError::invalid("k", "must be between 1 and 1000"));
        assert!(invalid.message.contains("must be between 1 and 1000"), "a client's own mistake is still said");
    }
}
