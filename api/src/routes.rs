//! Route handlers. Requests are checked against the configured bounds, answered from the
//! response cache when possible, and otherwise run on actix's blocking pool (`web::block`):
//! model inference and index reads never hold an HTTP worker. The number of engine calls queued
//! or running is bounded; beyond it a request is refused with 503 rather than left to pile up.

use std::time::UNIX_EPOCH;

use actix_web::http::header::{self, ContentType};
use actix_web::http::StatusCode;
use actix_web::middleware::from_fn;
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use hyrank_engine::call::Call;
use hyrank_engine::fusion::Fusion;
use hyrank_engine::generation::Manifest;
use hyrank_engine::live::LiveStats;
use hyrank_engine::request::{
    candidates_for, check_page, defaults, Page, RecommendRequest, SearchRequest, SimilarRequest, Weights,
};
use hyrank_engine::{Engine, Results};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::body::Object;
use crate::calls::{blocking, panicked, HangUp};
use crate::error::{json_error, query_error, ApiError, ErrorBody};
use crate::metrics::AnswerQuality;
use crate::middleware::{body_deadline, known_content_encoding, no_query_string, observe, require, utf8_only, Access};
use crate::reload::{ReloadError, ReloadOutcome};
use crate::writes::{delete_item, events, put_item, update_fields};
use crate::AppState;

pub(crate) fn configure(cfg: &mut web::ServiceConfig, state: AppState) {
    let max_body = state.settings().limits.max_body_bytes;
    let max_events_body = max_body.saturating_add(256 * state.settings().limits.max_events);
    let cors = cors(&state.settings().cors_origins);
    cfg.app_data(web::Data::new(state))
        .app_data(web::JsonConfig::default().limit(max_body).error_handler(json_error))
        .app_data(web::QueryConfig::default().error_handler(query_error))
        .service(
            web::scope("")
                // A wrap added later runs first: observe, then the security headers, then CORS (which answers preflights
                // before any key is asked for, and adds its headers to every answer, errors
                // included), then the encoding check, then the body's deadline, then a gzip or
                // deflate body's decoding (in bounded steps, counted by the deadline as sent),
                // then the URL's and the body's text encoding.
                .wrap(from_fn(utf8_only))
                .wrap(from_fn(crate::inflate::decode_body))
                .wrap(from_fn(body_deadline))
                .wrap(from_fn(known_content_encoding))
                .wrap(cors)
                // On every answer, errors included: no page of this server may be framed by
                // another site (the analyst page keeps keys in its storage), and no answer is
                // read as another type than it says.
                .wrap(
                    actix_web::middleware::DefaultHeaders::new()
                        .add(("x-content-type-options", "nosniff"))
                        .add(("x-frame-options", "DENY"))
                        .add(("referrer-policy", "no-referrer")),
                )
                .wrap(from_fn(observe))
                .service(get("/healthz", healthz, "GET, HEAD"))
                .service(get("/readyz", readyz, "GET, HEAD"))
                .service(get("/metrics", metrics, "GET, HEAD"))
                .service(get("/docs", || async { web::Redirect::to("/docs/") }, "GET, HEAD"))
                .service(crate::openapi::swagger_ui())
                // The document and the UI answer GET alone (utoipa's services): any other method
                // is a 405 naming it, as on every other known path, not a 404 pointing at itself.
                .service(web::resource("/openapi.json").default_service(not_allowed("GET")))
                .service(web::resource("/docs/{_:.*}").default_service(not_allowed("GET")))
                .service(get("/ui", crate::ui::page, "GET, HEAD"))
                .service(
                    // Before /v1, which would otherwise take the path first.
                    web::scope("/v1/events")
                        // Inner (runs after the key check): a wrap added later runs first. The
                        // same two wraps guard each /v1 scope below.
                        .wrap(from_fn(no_query_string))
                        .wrap(from_fn(|req, next| require(Access::Write, req, next)))
                        .app_data(web::JsonConfig::default().limit(max_events_body).error_handler(json_error))
                        .service(web::resource("").route(web::post().to(events)).default_service(not_allowed("POST")))
                        .default_service(web::to(not_found)),
                )
                .service(
                    // Deleting an item is a write; GET on the same path falls through the
                    // method guard to /v1 below.
                    web::scope("/v1/items")
                        .guard(actix_web::guard::Delete())
                        .wrap(from_fn(no_query_string))
                        .wrap(from_fn(|req, next| require(Access::Write, req, next)))
                        .route("/{id}", web::delete().to(delete_item))
                        .service(web::resource("/{id}/fields").default_service(not_allowed("PUT")))
                        .service(web::resource("/{id}/similar").default_service(not_allowed("GET, HEAD")))
                        .default_service(web::to(not_found)),
                )
                .service(
                    web::scope("/v1/items")
                        .guard(actix_web::guard::Put())
                        .wrap(from_fn(no_query_string))
                        .wrap(from_fn(|req, next| require(Access::Write, req, next)))
                        .route("/{id}/fields", web::put().to(update_fields))
                        .route("/{id}", web::put().to(put_item))
                        .service(web::resource("/{id}/similar").default_service(not_allowed("GET, HEAD")))
                        .default_service(web::to(not_found)),
                )
                .service(
                    web::scope("/v1")
                        .wrap(from_fn(no_query_string))
                        .wrap(from_fn(|req, next| require(Access::Search, req, next)))
                        .service(
                            web::resource("/search").route(web::post().to(search)).default_service(not_allowed("POST")),
                        )
                        .service(
                            web::resource("/recommend")
                                .route(web::post().to(recommend))
                                .default_service(not_allowed("POST")),
                        )
                        .service(
                            web::resource("/similar")
                                .route(web::post().to(similar_items))
                                .default_service(not_allowed("POST")),
                        )
                        // PUT and DELETE took their own scopes above; any other method lands here.
                        .service(get("/items/{id}", item, "GET, HEAD, PUT, DELETE"))
                        .service(web::resource("/items/{id}/fields").default_service(not_allowed("PUT")))
                        .service(get("/items/{id}/similar", similar, "GET, HEAD"))
                        .service(get("/index", index, "GET, HEAD"))
                        .default_service(web::to(not_found)),
                )
                .service(
                    web::scope("/admin")
                        .wrap(from_fn(|req, next| require(Access::Admin, req, next)))
                        .service(
                            web::resource("/reload").route(web::post().to(reload)).default_service(not_allowed("POST")),
                        )
                        .default_service(web::to(not_found)),
                )
                .default_service(web::to(not_found)),
        );
}

/// CORS for the configured origins ([`crate::CorsOrigins`]); without any, a middleware that
/// passes every request through untouched. A request from an origin not listed is served
/// without CORS headers (the browser then withholds the answer from the page), not refused, so
/// the server's own pages keep working whatever the list; only its preflight is refused (400,
/// actix-cors's plain-text answer), which a browser reads as "not allowed". Keys are sent in `Authorization` or `X-Api-Key`, which
/// CORS lets through when the origin is allowed; no cookie is read, so credentials mode stays
/// off.
fn cors(origins: &crate::CorsOrigins) -> actix_web::middleware::Condition<actix_cors::Cors> {
    use actix_web::http::header::{HeaderName, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
    let request_id = HeaderName::from_static(crate::middleware::REQUEST_ID);
    let api_key = HeaderName::from_static("x-api-key");
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "HEAD", "POST", "PUT", "DELETE"])
        .allowed_headers([AUTHORIZATION, api_key, CONTENT_TYPE, CONTENT_ENCODING, request_id.clone()])
        .expose_headers([request_id, RETRY_AFTER])
        .max_age(3600)
        .block_on_origin_mismatch(false);
    match origins {
        crate::CorsOrigins::None => {}
        crate::CorsOrigins::Any => cors = cors.allow_any_origin().send_wildcard(),
        crate::CorsOrigins::List(list) => {
            for origin in list {
                cors = cors.allowed_origin(origin);
            }
        }
    }
    actix_web::middleware::Condition::new(*origins != crate::CorsOrigins::None, cors)
}

pub(crate) fn limit_exceeded(field: &str, message: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "limit_exceeded", format!("{field}: {message}"))
}

/// Checks the server's bounds (tighter than the engine's own), fills in the candidates a
/// request did not give, and normalizes the query's whitespace, which neither retriever
/// distinguishes, so equal requests share a cache entry. One space is kept at the end of a
/// query that ended in whitespace when its last word would be `completed` (BM25's
/// `prefix: last`): it says the word is finished.
fn bound(
    state: &AppState,
    k: usize,
    candidates: &mut Option<usize>,
    query: &mut Option<String>,
    rerank_depth: Option<usize>,
    completed: bool,
) -> Result<(), ApiError> {
    let limits = &state.settings().limits;
    // Not given: the engine's default depth ([`candidates_for`]) within this server's bound,
    // which start-up keeps at max_k or more, so a request never hears of a field it did not send.
    let candidates = *candidates.get_or_insert_with(|| candidates_for(k, None).min(limits.max_candidates));
    // Zero is told this server's bounds too (the engine's own, wider ones would mislead); it
    // is an invalid request rather than a limit exceeded.
    let out_of = |field: &str, value: usize, max: usize| {
        let message = format!("from 1 to {max} on this server, got {value}");
        match value {
            0 => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", format!("{field}: {message}")),
            _ => limit_exceeded(field, message),
        }
    };
    if k == 0 || k > limits.max_k {
        return Err(out_of("k", k, limits.max_k));
    }
    if candidates == 0 || candidates > limits.max_candidates {
        return Err(out_of("candidates", candidates, limits.max_candidates));
    }
    if let Some(text) = query {
        let chars = text.chars().count();
        if chars > limits.max_query_chars {
            return Err(limit_exceeded(
                "query",
                format!("at most {} characters on this server, got {chars}", limits.max_query_chars),
            ));
        }
        let finished = text.ends_with(char::is_whitespace);
        *text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if completed && finished && !text.is_empty() {
            text.push(' ');
        }
    }
    if let Some(depth) = rerank_depth.filter(|d| *d == 0 || *d > limits.max_rerank_depth) {
        return Err(out_of("rerank.depth", depth, limits.max_rerank_depth));
    }
    Ok(())
}

/// Answers from the response cache, or runs `work`, records its stage timings and caches the
/// serialized response. The key names the route, the serving generation, the last live
/// delete, field update and item put and, for a request about a `user`, the version of their live
/// events, so no write is ever answered from before it. The answer's quality is observed for
/// first pages only: a later page continues an answer already counted, and its end (a short or
/// empty page) is where paging stops, not a zero-result search.
///
/// The engine call runs for a [`Call`] that arrived when this was called and is cancelled when
/// this future is dropped (the client hung up: see `h1_allow_half_closed` in `main.rs`), so the
/// work stops at its next check instead of running for no one. An answer whose rerank budget
/// ran out is served but not cached: the same request later may have the time to rerank.
async fn cached<R: Serialize + Send + 'static>(
    state: &AppState,
    route: &'static str,
    user: Option<&str>,
    page: Page,
    request: &R,
    work: impl FnOnce(&Engine, &R, &Call) -> hyrank_engine::Result<Results> + Send + 'static,
) -> Result<HttpResponse, ApiError>
where
    R: Clone,
{
    let (call, cancel) = Call::now().cancellable();
    let engine = state.engine();
    let generation = engine.manifest().generation.clone();
    let version = user.map_or(0, |user| engine.user_version(user));
    let (deletes, fields, puts) =
        engine.live().map_or((0, 0, 0), |log| (log.delete_version(), log.fields_version(), log.put_version()));
    drop(engine);
    let encoding = |e: serde_json::Error| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", format!("encoding the request: {e}"))
    };
    let mut canonical = serde_json::to_value(request).map_err(encoding)?;
    // Only whole answers are cached, and a whole answer is the same whatever the budget that
    // let it finish: a client passing its remaining deadline sent a new key every time.
    if let Some(rerank) = canonical.get_mut("rerank").and_then(serde_json::Value::as_object_mut) {
        rerank.remove("budget_ms");
    }
    let canonical = serde_json::to_string(&canonical).map_err(encoding)?;
    let key = format!("{route}\n{generation}\n{version}\n{deletes}\n{fields}\n{puts}\n{canonical}");
    let first_page = page.offset == 0;
    // A request the engine refuses (invalid, an unknown user) is no miss: it is never stored,
    // and counting it made invalid traffic lower the hit rate.
    if let Some((body, quality)) = state.inner.responses.lookup(&key) {
        if first_page {
            state.metrics().observe_answer(route, quality);
        }
        return Ok(json_response(body, "hit"));
    }
    let request = request.clone();
    let hang_up = HangUp { cancel: Some(cancel), state: state.clone(), route };
    let results = blocking(state, move |engine| work(engine, &request, &call)).await;
    hang_up.answered();
    let results = results?;
    state.inner.responses.count_miss();
    if results.rerank_cut.is_some() {
        state.metrics().observe_rerank_cut(route);
    }
    state.metrics().observe_stages(&results.timings);
    let quality = AnswerQuality::of(&results, page.k);
    if first_page {
        state.metrics().observe_answer(route, quality);
    }
    let mut json = serde_json::to_vec(&results).map_err(|e| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", format!("encoding the response: {e}"))
    })?;
    // Only cache what the generation in the key produced: a swap mid-request would otherwise
    // file the new generation's answer under the old key (harmless, but misleading).
    let cached = results.generation == generation && results.rerank_cut.is_none();
    if cached {
        // The encoder's buffer grows by doubling, and `Bytes` keeps all of it: a cached 2.2 MB
        // answer held 4 MiB, so the cache's byte budget counted half of what it held.
        json.shrink_to_fit();
    }
    let body = Bytes::from(json);
    if cached {
        let bytes = body.len() + key.len();
        state.inner.responses.put_weighed(key, (body.clone(), quality), bytes);
    }
    Ok(json_response(body, "miss"))
}

fn json_response(body: Bytes, cache: &'static str) -> HttpResponse {
    HttpResponse::Ok().content_type(ContentType::json()).insert_header(("x-cache", cache)).body(body)
}

/// Liveness or readiness, and the generation serving.
#[derive(Serialize, ToSchema)]
pub(crate) struct Health {
    status: &'static str,
    generation: String,
    /// The generation's items, as its manifest counts them.
    items: usize,
    /// The items a request can find now: the generation's and those written live, less those
    /// deleted or replaced live since the build.
    visible_items: usize,
    /// `failing` while live writes fail on the server's side (the last one to reach the log
    /// failed: a full disk, a log that cannot be written); absent otherwise. Reads still
    /// serve, so readiness stays 200; `hyrank_live_writes_failing` is the same for alerts.
    #[serde(skip_serializing_if = "Option::is_none")]
    live_writes: Option<&'static str>,
}

impl Health {
    fn of(status: &'static str, state: &AppState) -> Self {
        let engine = state.engine();
        Health {
            status,
            generation: engine.manifest().generation.clone(),
            items: engine.manifest().counts.items,
            visible_items: engine.visible_len(),
            live_writes: state.metrics().live_writes_failing().then_some("failing"),
        }
    }
}

/// Liveness: the process answers. Never touches the model.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub(crate) async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(Health::of("ok", &state))
}

/// Readiness: a generation is loaded and the model encodes a query through the engine queue.
/// A full queue is load, not unreadiness: the answer is 200 with status `busy` and no probe.
/// Under a spike every replica's queue fills at once, and a load balancer that took each out
/// of rotation turned overload into an outage; overload is answered request by request (503
/// `overloaded` with Retry-After).
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, body = Health, description = "status `ready`, or `busy` when the engine queue is full (no probe run)"),
    (status = 503, body = ErrorBody, description = "not_ready: the model fails to encode the probe")
))]
pub(crate) async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let busy = || HttpResponse::Ok().json(Health::of("busy", &state));
    // Seen full first, so the probe is mostly not counted among the requests refused as
    // overloaded (a queue filling between this look and the probe's still counts it).
    if state.queue_depth() >= state.settings().limits.max_inflight {
        return Ok(busy());
    }
    let probed = blocking(&state, |engine| {
        match engine.runtime().query_batcher() {
            Some(worker) => worker.encode("readiness probe")?,
            None => engine.embedder().embed("readiness probe")?,
        };
        Ok(())
    })
    .await;
    match probed {
        Ok(()) => Ok(HttpResponse::Ok().json(Health::of("ready", &state))),
        Err(e) if e.code == "overloaded" => Ok(busy()),
        Err(e) => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", e.message)),
    }
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, content_type = "text/plain", body = String)))]
pub(crate) async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(state.render_metrics())
}

/// Hybrid, lexical, dense or personalized search; every hit carries its score breakdown.
#[utoipa::path(post, path = "/v1/search", tag = "search", request_body = SearchRequest,
    security((), ("api_key" = [])),
    responses(
        (status = 200, body = Results, headers(("x-cache" = String, description = "hit or miss"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 408, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ))]
pub(crate) async fn search(
    state: web::Data<AppState>,
    body: web::Json<Object<SearchRequest>>,
) -> Result<HttpResponse, ApiError> {
    let mut request = body.into_inner().0;
    let depth = request.rerank.as_ref().and_then(|r| r.depth);
    let completed = {
        let base = state.engine().manifest().lexical.bm25;
        request.bm25.map_or(base, |changes| changes.over(base)).prefix == hyrank_engine::lexical::Prefix::Last
    };
    bound(&state, request.k, &mut request.candidates, &mut request.query, depth, completed)?;
    let user = request.user.clone();
    let page = request.page();
    cached(&state, "search", user.as_deref(), page, &request, |engine, request, call| engine.search_in(request, call))
        .await
}

/// Recommendations for a user: collaborative filtering, content, or both; `explain` adds the
/// history items that drove each one.
#[utoipa::path(post, path = "/v1/recommend", tag = "recommend", request_body = RecommendRequest,
    security((), ("api_key" = [])),
    responses(
        (status = 200, body = Results), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 408, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
pub(crate) async fn recommend(
    state: web::Data<AppState>,
    body: web::Json<Object<RecommendRequest>>,
) -> Result<HttpResponse, ApiError> {
    let mut request = body.into_inner().0;
    let depth = request.rerank.as_ref().and_then(|r| r.depth);
    bound(&state, request.k, &mut request.candidates, &mut None, depth, false)?;
    let user = request.user.clone();
    let page = request.page();
    cached(&state, "recommend", Some(&user), page, &request, |engine, request, call| engine.recommend_in(request, call))
        .await
}

/// One item as stored.
#[utoipa::path(get, path = "/v1/items/{id}", tag = "items", params(("id" = String, Path, description = "item id")),
    security((), ("api_key" = [])),
    responses((status = 200, body = hyrank_engine::Item), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "an id no item can have (empty, blank at an end)"),
        (status = 503, body = ErrorBody)))]
pub(crate) async fn item(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let item = blocking(&state, move |engine| engine.item(&id)).await?;
    Ok(HttpResponse::Ok().json(item))
}

/// Query parameters of `GET /v1/items/{id}/similar`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct SimilarParams {
    /// Hits to return (default 10).
    #[param(minimum = 1)]
    #[serde(default, deserialize_with = "hyrank_engine::json::text_positive_count")]
    k: Option<usize>,
    /// Hits to skip: the page from this position of the ranked list (default 0).
    #[param(minimum = 0)]
    #[serde(default, deserialize_with = "hyrank_engine::json::text_count")]
    offset: Option<usize>,
    /// Candidates per retriever, at least `k` (default 100, or `k` when larger).
    #[param(minimum = 1)]
    #[serde(default, deserialize_with = "hyrank_engine::json::text_positive_count")]
    candidates: Option<usize>,
    /// `rrf` (default), `linear`, `linear_floor` or `dbsf`: the request body's `fusion.method`.
    #[param(inline, value_type = Option<hyrank_engine::fusion::FusionMethod>)]
    fusion: Option<String>,
}

/// Items like this one, by content and (when the index has interactions) behaviour.
#[utoipa::path(get, path = "/v1/items/{id}/similar", tag = "items",
    params(("id" = String, Path, description = "item id"), SimilarParams),
    security((), ("api_key" = [])),
    responses((status = 200, body = Results),
        (status = 400, body = ErrorBody, description = "invalid_query_string: a query parameter this route does not read, or a bad value of one; malformed_url: a path or query string that is not UTF-8 once its percent-escapes are decoded"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(crate) async fn similar(
    state: web::Data<AppState>,
    id: web::Path<String>,
    http: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let params: SimilarParams = crate::error::query(&http)?;
    let fusion = match params.fusion.as_deref() {
        None => Fusion::default(),
        // The names a body's `fusion.method` takes (`Fusion`'s `FromStr`: one list of them).
        Some(method) => method.parse().map_err(|e: String| {
            // A value the query string cannot be read as, like `k=abc`: 400, as the route says.
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_query_string", format!("fusion: {e}"))
        })?,
    };
    let mut request = SimilarRequest {
        item: id.into_inner(),
        k: params.k.unwrap_or(defaults::K),
        offset: params.offset.unwrap_or_default(),
        filters: Default::default(),
        exclude: Default::default(),
        fusion,
        weights: Weights::default(),
        candidates: params.candidates,
        cold_items: Default::default(),
        facets: Vec::new(),
        sort: Vec::new(),
    };
    bound(&state, request.k, &mut request.candidates, &mut None, None, false).map_err(ApiError::in_query_string)?;
    let page = request.page();
    // Values that are each fine but not together (`k=5&candidates=4`) are the query string's
    // fault as much as `k=0` is: checked here, as the engine would check them, so they are
    // told apart from an item id no item can have (the path's, 422).
    check_page(page, request.candidates).map_err(|e| ApiError::from(e).in_query_string())?;
    cached(&state, "similar", None, page, &request, |engine, request, call| engine.similar_in(request, call)).await
}

/// Items like one item, with what a query string cannot carry: `filters`, `exclude`,
/// `weights`, any `fusion` (RRF's `k` too). The body names the item; the answer is the one
/// `GET /v1/items/{id}/similar` gives for the same options.
#[utoipa::path(post, path = "/v1/similar", tag = "items", request_body = SimilarRequest,
    security((), ("api_key" = [])),
    responses(
        (status = 200, body = Results), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 408, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
pub(crate) async fn similar_items(
    state: web::Data<AppState>,
    body: web::Json<Object<SimilarRequest>>,
) -> Result<HttpResponse, ApiError> {
    let mut request = body.into_inner().0;
    bound(&state, request.k, &mut request.candidates, &mut None, None, false)?;
    let page = request.page();
    cached(&state, "similar", None, page, &request, |engine, request, call| engine.similar_in(request, call)).await
}

/// The serving generation.
#[derive(Serialize, ToSchema)]
pub(crate) struct IndexInfo {
    /// The generation's manifest: counts, model, settings, sources, build stages.
    #[schema(value_type = Object)]
    manifest: Manifest,
    /// Its folder on the server; only to a request with the admin key (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    directory: Option<String>,
    /// When it was swapped in (seconds since the Unix epoch).
    serving_since_unix: u64,
    /// Engine calls queued or running now.
    queue_depth: usize,
    /// Live events on top of the generation (absent: the server has no live log).
    #[serde(skip_serializing_if = "Option::is_none")]
    live: Option<LiveStats>,
}

/// Describes the serving generation: manifest (counts, model, build time), since when, and, to a
/// request with the admin key, its folder and the sources' paths (others get the files' names).
#[utoipa::path(get, path = "/v1/index", tag = "index", security((), ("api_key" = [])),
    responses((status = 200, body = IndexInfo), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn index(state: web::Data<AppState>, request: actix_web::HttpRequest) -> HttpResponse {
    let engine = state.engine();
    // Server paths are the operator's: anyone else (a server without a search key answers
    // anyone) is told the files' names, not where they lie.
    let operator = crate::middleware::holds_admin_key(state.settings(), request.headers());
    let mut manifest = engine.manifest().clone();
    if !operator {
        let name = |path: &str| {
            std::path::Path::new(path).file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        };
        manifest.sources.catalog = name(&manifest.sources.catalog);
        manifest.sources.catalog_resolved = None;
        manifest.sources.interactions = manifest.sources.interactions.as_deref().map(name);
    }
    HttpResponse::Ok().json(IndexInfo {
        manifest,
        directory: operator.then(|| engine.dir().display().to_string()),
        serving_since_unix: state.serving_since().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        queue_depth: state.queue_depth(),
        live: engine.live().map(|log| log.stats()),
    })
}

/// Opens the generation the index's CURRENT pointer names and swaps it in if it is new. In-flight
/// requests finish on the old one. A generation that fails to open is refused (409) and the
/// serving one kept. On a replica (`--source`) it first pulls what the source's CURRENT names,
/// whether or not the replica polls (`watch_secs` 0).
#[utoipa::path(post, path = "/admin/reload", tag = "admin", security(("admin_key" = [])),
    responses((status = 200, body = ReloadOutcome), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the new generation was refused; the old one still serves"),
        (status = 500, body = ErrorBody, description = "internal: a replica could not write what it pulled into its own folder (a full disk), or the reload stopped on a bug; the old one still serves"),
        (status = 502, body = ErrorBody, description = "source_unavailable: a replica's source could not be read or the download broke off; the old one still serves")))]
pub(crate) async fn reload(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let state = state.get_ref().clone();
    let outcome = web::block(move || state.refresh()).await.map_err(panicked)?.map_err(|e| match e {
        ReloadError::Disabled => ApiError::new(StatusCode::CONFLICT, "reload_disabled", e.to_string()),
        ReloadError::Refused(_) => ApiError::new(StatusCode::CONFLICT, "generation_refused", e.to_string()),
        ReloadError::Source(_) => ApiError::new(StatusCode::BAD_GATEWAY, "source_unavailable", e.to_string()),
        ReloadError::Local(_) => {
            tracing::error!(error = %e, "reload failed");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", crate::error::INTERNAL_MESSAGE)
        }
    })?;
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(outcome))
}

/// A path read with GET, which answers HEAD too (RFC 9110 §9.3.2: what a load balancer's health
/// check sends; actix writes no body for HEAD), and any other method with 405 naming `allow`.
fn get<F, Args>(path: &str, handler: F, allow: &'static str) -> actix_web::Resource
where
    F: actix_web::Handler<Args> + Clone,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::get().to(handler.clone()))
        .route(web::head().to(handler))
        .default_service(not_allowed(allow))
}

/// 405 with an `Allow` header: the path exists, the method is not one it takes (a 404 would
/// say the path is wrong).
fn not_allowed(allow: &'static str) -> actix_web::Route {
    web::to(move || async move {
        use actix_web::ResponseError;
        let message = format!("this path takes {allow}");
        let mut response =
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", message).error_response();
        response.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static(allow));
        response
    })
}

async fn not_found() -> HttpResponse {
    use actix_web::ResponseError;
    ApiError::new(StatusCode::NOT_FOUND, "route_not_found", "no such route; see /openapi.json").error_response()
}
