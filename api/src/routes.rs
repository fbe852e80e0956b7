//! Route handlers. Requests are checked against the configured bounds, answered from the
//! response cache when possible, and otherwise run on actix's blocking pool (`web::block`):
//! model inference and index reads never hold an HTTP worker. The number of engine calls queued
//! or running is bounded; beyond it a request is refused with 503 rather than left to pile up.

use std::sync::atomic::Ordering;
use std::time::{Instant, UNIX_EPOCH};

use actix_web::http::header::{self, ContentType};
use actix_web::http::StatusCode;
use actix_web::middleware::from_fn;
use actix_web::web::Bytes;
use actix_web::{web, HttpResponse};
use hyrank_engine::fusion::Fusion;
use hyrank_engine::generation::Manifest;
use hyrank_engine::live::{Appended, Event, LiveStats};
use hyrank_engine::request::{defaults, RecommendRequest, SearchRequest, SimilarRequest, Weights};
use hyrank_engine::{Engine, Results};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{json_error, query_error, ApiError, ErrorBody};
use crate::middleware::{observe, require, Access};
use crate::reload::{ReloadError, ReloadOutcome};
use crate::AppState;

pub(crate) fn configure(cfg: &mut web::ServiceConfig, state: AppState) {
    let max_body = state.settings().limits.max_body_bytes;
    let max_events_body = max_body.saturating_add(256 * state.settings().limits.max_events);
    cfg.app_data(web::Data::new(state))
        .app_data(web::JsonConfig::default().limit(max_body).error_handler(json_error))
        .app_data(web::QueryConfig::default().error_handler(query_error))
        .service(
            web::scope("")
                .wrap(from_fn(observe))
                .route("/healthz", web::get().to(healthz))
                .route("/readyz", web::get().to(readyz))
                .route("/metrics", web::get().to(metrics))
                .route("/docs", web::get().to(|| async { web::Redirect::to("/docs/") }))
                .service(crate::openapi::swagger_ui())
                .route("/ui", web::get().to(crate::ui::page))
                .service(
                    // Before /v1, which would otherwise take the path first.
                    web::scope("/v1/events")
                        .wrap(from_fn(|req, next| require(Access::Write, req, next)))
                        .app_data(web::JsonConfig::default().limit(max_events_body).error_handler(json_error))
                        .route("", web::post().to(events))
                        .default_service(web::to(not_found)),
                )
                .service(
                    // Deleting an item is a write; GET on the same path falls through the
                    // method guard to /v1 below.
                    web::scope("/v1/items")
                        .guard(actix_web::guard::Delete())
                        .wrap(from_fn(|req, next| require(Access::Write, req, next)))
                        .route("/{id}", web::delete().to(delete_item)),
                )
                .service(
                    web::scope("/v1/items")
                        .guard(actix_web::guard::Put())
                        .wrap(from_fn(|req, next| require(Access::Write, req, next)))
                        .route("/{id}/fields", web::put().to(update_fields))
                        .route("/{id}", web::put().to(put_item)),
                )
                .service(
                    web::scope("/v1")
                        .wrap(from_fn(|req, next| require(Access::Search, req, next)))
                        .route("/search", web::post().to(search))
                        .route("/recommend", web::post().to(recommend))
                        .route("/items/{id}", web::get().to(item))
                        .route("/items/{id}/similar", web::get().to(similar))
                        .route("/index", web::get().to(index))
                        .default_service(web::to(not_found)),
                )
                .service(
                    web::scope("/admin")
                        .wrap(from_fn(|req, next| require(Access::Admin, req, next)))
                        .route("/reload", web::post().to(reload))
                        .default_service(web::to(not_found)),
                )
                .default_service(web::to(not_found)),
        );
}

/// Decrements the queue count when an engine call ends, however it ends.
struct QueueSlot<'a>(&'a AppState);

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        self.0.inner.inflight.fetch_sub(1, Ordering::Relaxed);
    }
}

fn overloaded(state: &AppState) -> ApiError {
    state.metrics().rejected.inc();
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "overloaded",
        format!("{} engine calls are already queued or running; retry shortly", state.settings().limits.max_inflight),
    )
}

/// Runs engine work off the HTTP workers, within the queue bound.
async fn blocking<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce(&Engine) -> hyrank_engine::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let limit = state.settings().limits.max_inflight;
    if state.inner.inflight.fetch_add(1, Ordering::Relaxed) >= limit {
        state.inner.inflight.fetch_sub(1, Ordering::Relaxed);
        return Err(overloaded(state));
    }
    let _slot = QueueSlot(state);
    let engine = state.engine();
    web::block(move || work(&engine))
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", e.to_string()))?
        .map_err(ApiError::from)
}

fn limit_exceeded(field: &str, message: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "limit_exceeded", format!("{field}: {message}"))
}

/// Checks the server's bounds (tighter than the engine's own) and normalizes the query's
/// whitespace, which neither retriever distinguishes, so equal requests share a cache entry.
fn bound(
    state: &AppState,
    k: usize,
    candidates: usize,
    query: &mut Option<String>,
    rerank_depth: Option<usize>,
) -> Result<(), ApiError> {
    let limits = &state.settings().limits;
    if k > limits.max_k {
        return Err(limit_exceeded("k", format!("at most {} on this server, got {k}", limits.max_k)));
    }
    if candidates > limits.max_candidates {
        return Err(limit_exceeded(
            "candidates",
            format!("at most {} on this server, got {candidates}", limits.max_candidates),
        ));
    }
    if let Some(text) = query {
        let chars = text.chars().count();
        if chars > limits.max_query_chars {
            return Err(limit_exceeded(
                "query",
                format!("at most {} characters on this server, got {chars}", limits.max_query_chars),
            ));
        }
        *text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    }
    if let Some(depth) = rerank_depth.filter(|d| *d > limits.max_rerank_depth) {
        return Err(limit_exceeded(
            "rerank.depth",
            format!("at most {} on this server, got {depth}", limits.max_rerank_depth),
        ));
    }
    Ok(())
}

/// Answers from the response cache, or runs `work`, records its stage timings and caches the
/// serialized response. The key names the route, the serving generation, the last live
/// delete, field update and item put and, for a request about a `user`, the version of their live
/// events, so no write is ever answered from before it.
async fn cached<R: Serialize + Send + 'static>(
    state: &AppState,
    route: &str,
    user: Option<&str>,
    request: &R,
    work: impl FnOnce(&Engine, &R) -> hyrank_engine::Result<Results> + Send + 'static,
) -> Result<HttpResponse, ApiError>
where
    R: Clone,
{
    let engine = state.engine();
    let generation = engine.manifest().generation.clone();
    let version = user.map_or(0, |user| engine.user_version(user));
    let (deletes, fields, puts) =
        engine.live().map_or((0, 0, 0), |log| (log.delete_version(), log.fields_version(), log.put_version()));
    drop(engine);
    let canonical = serde_json::to_string(request).map_err(|e| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", format!("encoding the request: {e}"))
    })?;
    let key = format!("{route}\n{generation}\n{version}\n{deletes}\n{fields}\n{puts}\n{canonical}");
    if let Some(body) = state.inner.responses.get(&key) {
        return Ok(json_response(body, "hit"));
    }
    let request = request.clone();
    let results = blocking(state, move |engine| work(engine, &request)).await?;
    state.metrics().observe_stages(&results.timings);
    let body = Bytes::from(serde_json::to_vec(&results).map_err(|e| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", format!("encoding the response: {e}"))
    })?);
    // Only cache what the generation in the key produced: a swap mid-request would otherwise
    // file the new generation's answer under the old key (harmless, but misleading).
    if results.generation == generation {
        state.inner.responses.put(key, body.clone());
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
    items: usize,
}

impl Health {
    fn of(status: &'static str, engine: &Engine) -> Self {
        Health { status, generation: engine.manifest().generation.clone(), items: engine.manifest().counts.items }
    }
}

/// Liveness: the process answers. Never touches the model.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub(crate) async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(Health::of("ok", &state.engine()))
}

/// Readiness: a generation is loaded and the model encodes a query (through the engine queue,
/// so a saturated server reports not ready).
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, body = Health), (status = 503, body = ErrorBody, description = "model failing or queue full")
))]
pub(crate) async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let health = blocking(&state, |engine| {
        match engine.runtime().query_batcher() {
            Some(worker) => worker.encode("readiness probe")?,
            None => engine.embedder().embed("readiness probe")?,
        };
        Ok(Health::of("ready", engine))
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", e.message))?;
    Ok(HttpResponse::Ok().json(health))
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
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ))]
pub(crate) async fn search(
    state: web::Data<AppState>,
    body: web::Json<Object<SearchRequest>>,
) -> Result<HttpResponse, ApiError> {
    let mut request = body.into_inner().0;
    bound(&state, request.k, request.candidates, &mut request.query, request.rerank.as_ref().and_then(|r| r.depth))?;
    let user = request.user.clone();
    cached(&state, "search", user.as_deref(), &request, |engine, request| engine.search(request)).await
}

/// Recommendations for a user: collaborative filtering, content, or both; `explain` adds the
/// history items that drove each one.
#[utoipa::path(post, path = "/v1/recommend", tag = "recommend", request_body = RecommendRequest,
    security((), ("api_key" = [])),
    responses(
        (status = 200, body = Results), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
pub(crate) async fn recommend(
    state: web::Data<AppState>,
    body: web::Json<Object<RecommendRequest>>,
) -> Result<HttpResponse, ApiError> {
    let request = body.into_inner().0;
    bound(&state, request.k, request.candidates, &mut None, request.rerank.as_ref().and_then(|r| r.depth))?;
    let user = request.user.clone();
    cached(&state, "recommend", Some(&user), &request, |engine, request| engine.recommend(request)).await
}

/// A request body that must be a JSON object. serde's derived structs also accept a JSON
/// array (their fields in order), so `[]` would be read as a request with every field at its
/// default and refused for a reason that is not the real one; this reads only objects, and
/// anything else is refused as "expected a JSON object" (a 422, with the position). A value of
/// the wrong shape inside the object is a 422 naming its path (`fields.price: ...`).
pub(crate) struct Object<T>(pub(crate) T);

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for Object<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OnlyMaps<T>(std::marker::PhantomData<T>);
        impl<'de, T: serde::de::DeserializeOwned> serde::de::Visitor<'de> for OnlyMaps<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                // Read as JSON first, so that malformed JSON keeps its own error (a 400); then
                // into T, where serde's message names a nested value's type but not where it
                // is: the path (`fields.price`, `events[2].weight`) goes first (a 422).
                let value = Strict::deserialize(serde::de::value::MapAccessDeserializer::new(map))?.0;
                serde_path_to_error::deserialize(value).map_err(|e| {
                    let path = e.path().to_string();
                    let inner = e.into_inner();
                    if path == "." || path.is_empty() {
                        serde::de::Error::custom(inner)
                    } else {
                        serde::de::Error::custom(format!("{path}: {inner}"))
                    }
                })
            }
        }
        deserializer.deserialize_map(OnlyMaps(std::marker::PhantomData)).map(Object)
    }
}

/// A JSON value read as `serde_json::Value` reads it, except that an object with the same key
/// twice is refused (as serde's derived structs refuse a duplicate field) rather than keeping
/// the last.
struct Strict(serde_json::Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde_json::Value;
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Strict;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Strict, E> {
                Ok(Strict(Value::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Strict, E> {
                Ok(Strict(Value::from(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Strict, E> {
                Ok(Strict(Value::from(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Strict, E> {
                Ok(Strict(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Strict, E> {
                Ok(Strict(Value::String(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Strict, E> {
                Ok(Strict(Value::String(v)))
            }
            fn visit_unit<E>(self) -> Result<Strict, E> {
                Ok(Strict(Value::Null))
            }
            fn visit_none<E>(self) -> Result<Strict, E> {
                Ok(Strict(Value::Null))
            }
            fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Strict, D::Error> {
                Strict::deserialize(d)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
                let mut values = Vec::new();
                while let Some(Strict(v)) = seq.next_element()? {
                    values.push(v);
                }
                Ok(Strict(Value::Array(values)))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
                let mut object = serde_json::Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    let Strict(value) = map.next_value()?;
                    if object.contains_key(&key) {
                        return Err(serde::de::Error::custom(format!("duplicate key `{key}`")));
                    }
                    object.insert(key, value);
                }
                Ok(Strict(Value::Object(object)))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// One item as stored.
#[utoipa::path(get, path = "/v1/items/{id}", tag = "items", params(("id" = String, Path, description = "item id")),
    security((), ("api_key" = [])),
    responses((status = 200, body = hyrank_engine::Item), (status = 404, body = ErrorBody)))]
pub(crate) async fn item(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let item = blocking(&state, move |engine| engine.item(&id)).await?;
    Ok(HttpResponse::Ok().json(item))
}

/// Query parameters of `GET /v1/items/{id}/similar`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct SimilarParams {
    /// Hits to return (default 10).
    k: Option<usize>,
    /// Candidates per retriever (default 100).
    candidates: Option<usize>,
    /// `rrf` (default) or `linear`.
    fusion: Option<String>,
}

/// Items like this one, by content and (when the index has interactions) behaviour.
#[utoipa::path(get, path = "/v1/items/{id}/similar", tag = "items",
    params(("id" = String, Path, description = "item id"), SimilarParams),
    security((), ("api_key" = [])),
    responses((status = 200, body = Results), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub(crate) async fn similar(
    state: web::Data<AppState>,
    id: web::Path<String>,
    params: web::Query<SimilarParams>,
) -> Result<HttpResponse, ApiError> {
    let params = params.into_inner();
    let fusion = match params.fusion.as_deref() {
        None | Some("rrf") => Fusion::default(),
        Some("linear") => Fusion::Linear,
        Some("dbsf") => Fusion::Dbsf,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                format!("fusion {other:?} is not rrf, linear or dbsf"),
            ))
        }
    };
    let request = SimilarRequest {
        item: id.into_inner(),
        k: params.k.unwrap_or(defaults::K),
        filters: Default::default(),
        fusion,
        weights: Weights::default(),
        candidates: params.candidates.unwrap_or(defaults::CANDIDATES),
    };
    bound(&state, request.k, request.candidates, &mut None, None)?;
    cached(&state, "similar", None, &request, |engine, request| engine.similar(request)).await
}

/// The serving generation.
#[derive(Serialize, ToSchema)]
pub(crate) struct IndexInfo {
    /// The generation's manifest: counts, model, settings, sources, build stages.
    #[schema(value_type = Object)]
    manifest: Manifest,
    /// Its folder on the server.
    directory: String,
    /// When it was swapped in (seconds since the Unix epoch).
    serving_since_unix: u64,
    /// Engine calls queued or running now.
    queue_depth: usize,
    /// Live events on top of the generation (absent: the server has no live log).
    #[serde(skip_serializing_if = "Option::is_none")]
    live: Option<LiveStats>,
}

/// Describes the serving generation: manifest (counts, model, build time), folder, since when.
#[utoipa::path(get, path = "/v1/index", tag = "index", security((), ("api_key" = [])),
    responses((status = 200, body = IndexInfo), (status = 401, body = ErrorBody)))]
pub(crate) async fn index(state: web::Data<AppState>) -> HttpResponse {
    let engine = state.engine();
    HttpResponse::Ok().json(IndexInfo {
        manifest: engine.manifest().clone(),
        directory: engine.dir().display().to_string(),
        serving_since_unix: state.serving_since().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        queue_depth: state.queue_depth(),
        live: engine.live().map(|log| log.stats()),
    })
}

/// A batch of interaction events.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventsRequest {
    /// One or more events, written together: all of them or none.
    events: Vec<Event>,
    /// The client's id for this batch (at most 128 bytes), to retry safely: a batch sent again
    /// with the same id and events after a lost answer is answered with the first attempt's
    /// sequence numbers (`replayed: true`) and not written again. The same id with other
    /// events is a 422.
    #[serde(default)]
    batch_id: Option<String>,
}

/// Records interaction events. The write is durable (fdatasync) before the answer; from the
/// next request on, each user's history includes their events (seen items excluded) and an ALS
/// user's factors are solved again against the fixed item factors, so their recommendations
/// move without a rebuild. A user the build never saw is created. The next `hyrank index` run
/// folds the events into the new generation. All or nothing: a malformed row (422) or an
/// unknown item (404) refuses the whole batch, naming the row and field.
#[utoipa::path(post, path = "/v1/events", tag = "events", request_body = EventsRequest,
    security(("write_key" = []), ("admin_key" = [])),
    responses(
        (status = 200, body = Appended), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "an event names an item the index does not have"),
        (status = 409, body = ErrorBody, description = "the server has no live log"),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
pub(crate) async fn events(
    state: web::Data<AppState>,
    body: web::Json<Object<EventsRequest>>,
) -> Result<HttpResponse, ApiError> {
    let start = Instant::now();
    let request = body.into_inner().0;
    let result = write_events(&state, request.events, request.batch_id).await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) if e.status.is_client_error() => "refused",
        Err(_) => "failed",
    };
    state.metrics().live_write_seconds.with_label_values(&[outcome]).observe(start.elapsed().as_secs_f64());
    let appended = result?;
    if !appended.replayed {
        state.metrics().live_events.inc_by(appended.accepted as u64);
    }
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(appended))
}

/// What a delete did.
#[derive(Serialize, ToSchema)]
pub(crate) struct Deleted {
    /// The item deleted.
    deleted: String,
    /// Its deletion's sequence number in the live log.
    seq: u64,
}

/// Deletes an item: durable before the answer, and from the next request on no search,
/// recommendation or similar list returns it and `GET /v1/items/{id}` is 404. The next
/// `hyrank index` keeps it hidden while the catalog row is the one deleted; a changed row
/// brings it back.
#[utoipa::path(delete, path = "/v1/items/{id}", tag = "events",
    params(("id" = String, Path, description = "Item id")),
    security(("write_key" = []), ("admin_key" = [])),
    responses(
        (status = 200, body = Deleted), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such item, or already deleted"),
        (status = 409, body = ErrorBody, description = "the server has no live log"), (status = 503, body = ErrorBody),
    ))]
pub(crate) async fn delete_item(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let target = id.clone();
    let appended = write_item(&state, &id, move |log, hash| log.delete_item(&target, hash)).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(Deleted { deleted: id, seq: appended.first_seq }))
}

/// An item's new fields.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FieldsRequest {
    /// Every field the item has from now on (strings, finite numbers, lists of strings); the
    /// old ones are replaced, not merged.
    #[schema(value_type = Object)]
    fields: std::collections::BTreeMap<String, hyrank_engine::FieldValue>,
}

/// What a field update did.
#[derive(Serialize, ToSchema)]
pub(crate) struct Updated {
    /// The item updated.
    updated: String,
    /// The update's sequence number in the live log.
    seq: u64,
}

/// Replaces an item's fields (a price, a category) without a rebuild: durable before the
/// answer; from the next request on filters and hits read the new fields. The next
/// `hyrank index` applies them while the catalog row is the one updated; a changed row
/// supersedes them.
#[utoipa::path(put, path = "/v1/items/{id}/fields", tag = "events", request_body = FieldsRequest,
    params(("id" = String, Path, description = "Item id")),
    security(("write_key" = []), ("admin_key" = [])),
    responses(
        (status = 200, body = Updated), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such item, or deleted"),
        (status = 409, body = ErrorBody, description = "the server has no live log"),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
pub(crate) async fn update_fields(
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<Object<FieldsRequest>>,
) -> Result<HttpResponse, ApiError> {
    let (id, fields) = (id.into_inner(), body.into_inner().0.fields);
    if let Some((name, _)) =
        fields.iter().find(|(_, v)| matches!(v, hyrank_engine::FieldValue::Number(n) if !n.is_finite()))
    {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            format!("fields.{name}: not a finite number"),
        ));
    }
    let fields = typed_fields(&state.engine(), fields)?;
    let target = id.clone();
    let appended = write_item(&state, &id, move |log, hash| log.update_fields(&target, hash, fields)).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(Updated { updated: id, seq: appended.first_seq }))
}

/// An item as `PUT /v1/items/{id}` takes it (the id is the path's).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PutItemRequest {
    /// Title; may be empty when `text` is not.
    #[serde(default)]
    title: String,
    /// Body text; may be empty when `title` is not.
    #[serde(default)]
    text: String,
    /// Stored, returned and filterable attributes (strings, finite numbers, lists of strings).
    #[serde(default)]
    #[schema(value_type = Object)]
    fields: std::collections::BTreeMap<String, hyrank_engine::FieldValue>,
}

/// What a put did.
#[derive(Serialize, ToSchema)]
pub(crate) struct Put {
    /// The item written.
    put: String,
    /// Whether the id named no visible item before (created) or one was replaced.
    created: bool,
    /// The put's sequence number in the live log.
    seq: u64,
}

/// Creates or replaces an item without a rebuild. The item is embedded with the generation's
/// model, written durably to the live log, and indexed for BM25 and dense search before the
/// answer: from the next request on, search, similar and `GET /v1/items/{id}` find it (CF has
/// no opinion on it until a build). The next `hyrank index` folds it into the catalog while
/// the catalog row is the one replaced (or, for a created item, while the catalog has none).
#[utoipa::path(put, path = "/v1/items/{id}", tag = "events", request_body = PutItemRequest,
    params(("id" = String, Path, description = "Item id")),
    security(("write_key" = []), ("admin_key" = [])),
    responses(
        (status = 200, body = Put), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the server has no live log, holds max_live_items live rows, or another write about the item landed first (retry)"),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
pub(crate) async fn put_item(
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<Object<PutItemRequest>>,
) -> Result<HttpResponse, ApiError> {
    let start = Instant::now();
    let result = write_put(&state, id.into_inner(), body.into_inner().0).await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) if e.status.is_client_error() => "refused",
        Err(_) => "failed",
    };
    state.metrics().live_write_seconds.with_label_values(&[outcome]).observe(start.elapsed().as_secs_f64());
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(result?))
}

async fn write_put(state: &AppState, id: String, body: PutItemRequest) -> Result<Put, ApiError> {
    let invalid = |field: &str, reason: String| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_item", format!("{field}: {reason}"))
    };
    if id.trim().is_empty() || id.len() > hyrank_engine::live::MAX_ID_BYTES {
        return Err(invalid(
            "id",
            format!("must be a non-empty id of at most {} bytes", hyrank_engine::live::MAX_ID_BYTES),
        ));
    }
    if body.title.trim().is_empty() && body.text.trim().is_empty() {
        return Err(invalid("text", "an item needs a title or a text".into()));
    }
    if let Some((name, _)) =
        body.fields.iter().find(|(_, v)| matches!(v, hyrank_engine::FieldValue::Number(n) if !n.is_finite()))
    {
        return Err(invalid(&format!("fields.{name}"), "not a finite number".into()));
    }
    let engine = state.engine();
    live_log(&engine)?;
    let fields = typed_fields(&engine, body.fields)?;
    let max = state.settings().limits.max_live_items;
    if engine.live_item_rows() >= max {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "live_items_full",
            format!("this generation already serves {max} items written live (max_live_items); run `hyrank index` to fold them in, then reload"),
        ));
    }
    // The row the put replaces, as the next build will check it; none for a new or deleted id.
    let hash = match engine.visible_index_of(&id) {
        Ok(index) => Some(hyrank_engine::live::item_hash(&engine.stored_item_at(index)?)),
        Err(hyrank_engine::Error::UnknownItem { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    drop(engine);
    let created = hash.is_none();
    let item = hyrank_engine::Item { id: id.clone(), title: body.title, text: body.text, fields };
    let (appended, applied) =
        blocking(state, move |engine| engine.put_live_item(item, hash.unwrap_or_default())).await?;
    state.inner.responses.clear();
    if !applied {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "write_conflict",
            format!(
                "another write about item {id:?} landed while this one was made (seq {}); read it and retry",
                appended.first_seq
            ),
        ));
    }
    Ok(Put { put: id, created, seq: appended.first_seq })
}

/// A live write's fields as the serving generation's catalog types them
/// (`manifest.field_types`): `"25"` for a number field is 25, a single value for a list field a
/// list of one, as a catalog row's would be. A field the catalog does not have is taken as
/// given.
///
/// # Errors
/// 422 `invalid_field` naming the field when a value cannot be its field's type.
fn typed_fields(
    engine: &Engine,
    fields: std::collections::BTreeMap<String, hyrank_engine::FieldValue>,
) -> Result<std::collections::BTreeMap<String, hyrank_engine::FieldValue>, ApiError> {
    let types = &engine.manifest().field_types;
    fields
        .into_iter()
        .map(|(name, value)| match types.get(&name) {
            Some(kind) => kind.coerce(&value).map(|typed| (name.clone(), typed)).map_err(|found| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_field",
                    format!("fields.{name}: this catalog's {name} is {}, found {found}", kind.described()),
                )
            }),
            None => Ok((name, value)),
        })
        .collect()
}

/// A live write about one item (a delete, a field update): `write` gets the log and the hash
/// of the item's stored row (what the next build checks the catalog row against). A visible
/// item only (404 otherwise). Cached answers may show the item as it was, and item writes are
/// rare, so the response cache is dropped (its keys also carry the log's item versions).
async fn write_item(
    state: &AppState,
    id: &str,
    write: impl FnOnce(&hyrank_engine::live::EventLog, String) -> hyrank_engine::Result<Appended> + Send + 'static,
) -> Result<Appended, ApiError> {
    let engine = state.engine();
    let log = live_log(&engine)?;
    let index = engine.visible_index_of(id)?;
    let hash = hyrank_engine::live::item_hash(&engine.stored_item_at(index)?);
    drop(engine);
    let appended = blocking(state, move |_| write(&log, hash)).await?;
    state.inner.responses.clear();
    Ok(appended)
}

/// The serving engine's live log; 409 `live_disabled` for a server on a fixed engine.
fn live_log(engine: &Engine) -> Result<std::sync::Arc<hyrank_engine::live::EventLog>, ApiError> {
    engine.live().cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "live_disabled",
            "this server has no live event log (it serves a fixed engine, not an index folder)",
        )
    })
}

async fn write_events(state: &AppState, events: Vec<Event>, batch_id: Option<String>) -> Result<Appended, ApiError> {
    let max = state.settings().limits.max_events;
    if events.len() > max {
        return Err(limit_exceeded(
            "events",
            format!("at most {max} per request on this server, got {}", events.len()),
        ));
    }
    let engine = state.engine();
    let log = live_log(&engine)?;
    // A retry of a batch already written is answered as the first attempt was.
    if let Some(appended) = batch_id.as_deref().and_then(|id| log.known_batch(id, &events)) {
        return Ok(appended);
    }
    // Malformed rows before unknown items, so a batch with both is a 422.
    if let Err(hyrank_engine::Error::InvalidArgument { field, reason }) = hyrank_engine::live::validate_batch(&events) {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_event", format!("{field}: {reason}")));
    }
    let unknown: Vec<(usize, &str)> = events
        .iter()
        .enumerate()
        .filter(|(_, event)| engine.index_of(&event.item).is_err())
        .map(|(row, event)| (row, event.item.as_str()))
        .collect();
    if let Some(&(row, item)) = unknown.first() {
        let more = match unknown.len() - 1 {
            0 => String::new(),
            n => format!(" ({n} more rows name unknown items)"),
        };
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_item",
            format!("events[{row}].item: item {item:?} is not in the index{more}; nothing was written"),
        ));
    }
    drop(engine);
    // The durable append waits on the disk: off the HTTP workers, within the same bound on
    // queued work as engine calls.
    blocking(state, move |_| log.append_batch(events, batch_id)).await
}

/// Opens the generation the index's CURRENT pointer names and swaps it in if it is new. In-flight
/// requests finish on the old one. A generation that fails to open is refused (409) and the
/// serving one kept.
#[utoipa::path(post, path = "/admin/reload", tag = "admin", security(("admin_key" = [])),
    responses((status = 200, body = ReloadOutcome), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the new generation was refused; the old one still serves")))]
pub(crate) async fn reload(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let state = state.get_ref().clone();
    let outcome = web::block(move || state.reload())
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", e.to_string()))?
        .map_err(|e| match e {
            ReloadError::Disabled => ApiError::new(StatusCode::CONFLICT, "reload_disabled", e.to_string()),
            ReloadError::Refused(_) => ApiError::new(StatusCode::CONFLICT, "generation_refused", e.to_string()),
        })?;
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(outcome))
}

async fn not_found() -> HttpResponse {
    use actix_web::ResponseError;
    ApiError::new(StatusCode::NOT_FOUND, "route_not_found", "no such route; see /openapi.json").error_response()
}
