//! Live writes: interaction events, item deletes, field updates and item puts. Each is checked
//! here (keys by the middleware, bodies and bounds by the handler), written durably to the
//! engine's live log off the HTTP workers, and visible from the next request on.

use std::time::Instant;

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use hyrank_engine::live::{Appended, Event};
use hyrank_engine::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::body::Object;
use crate::calls::blocking_write;
use crate::error::{ApiError, ErrorBody};
use crate::routes::limit_exceeded;
use crate::AppState;

/// Records a live write's latency under its outcome (`ok`, `refused` for a 4xx, `failed`), and
/// whether writes are failing ([`crate::metrics::Metrics::live_write_outcome`]).
fn observe_write<T>(state: &AppState, start: Instant, result: &Result<T, ApiError>) {
    let (outcome, succeeded) = match result {
        Ok(_) => ("ok", Some(true)),
        Err(e) if e.status.is_client_error() => ("refused", None),
        // A full engine queue is load, not a log that cannot be written.
        Err(e) if e.code == "overloaded" => ("failed", None),
        Err(_) => ("failed", Some(false)),
    };
    state.metrics().live_write_outcome(succeeded);
    state.metrics().live_write_seconds.with_label_values(&[outcome]).observe(start.elapsed().as_secs_f64());
}

/// A batch of interaction events.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventsRequest {
    /// One or more events, written together: all of them or none.
    #[schema(min_items = 1)]
    events: Vec<Event>,
    /// The client's id for this batch (at most 128 bytes, no blank at either end, no control
    /// character, as every id), to retry safely: a batch sent again
    /// with the same id and events after a lost answer is answered with the first attempt's
    /// sequence numbers (`replayed: true`) and not written again. The same id with other
    /// events is a 422.
    #[serde(default)]
    #[schema(max_length = 128)]
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
        (status = 200, body = Appended), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "an event names an item the index does not have"),
        (status = 409, body = ErrorBody, description = "the server has no live log, or it holds max_live_events unfolded events (live_log_full)"),
        (status = 408, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ))]
pub(crate) async fn events(
    state: web::Data<AppState>,
    body: web::Json<Object<EventsRequest>>,
) -> Result<HttpResponse, ApiError> {
    let start = Instant::now();
    let request = body.into_inner().0;
    let result = write_events(&state, request.events, request.batch_id).await;
    observe_write(&state, start, &result);
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
        (status = 409, body = ErrorBody, description = "the server has no live log, or a put of the item landed while this delete was made (logged, not applied; retry)"),
        (status = 422, body = ErrorBody, description = "an id no item can have (empty, blank at an end)"),
        (status = 503, body = ErrorBody),
    ))]
pub(crate) async fn delete_item(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let (start, id) = (Instant::now(), id.into_inner());
    let target = id.clone();
    let result = write_item(&state, &id, move |log, hash| log.delete_item(&target, hash)).await;
    observe_write(&state, start, &result);
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(Deleted { deleted: id, seq: result?.first_seq }))
}

/// An item's new fields.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FieldsRequest {
    /// Every field the item has from now on (strings, finite numbers, lists of strings; a
    /// boolean is the text `true` or `false` and `null` is no field, as in a catalog file);
    /// the old ones are replaced, not merged.
    #[schema(value_type = Object)]
    #[serde(deserialize_with = "catalog_fields")]
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
        (status = 200, body = Updated), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "no such item, or deleted"),
        (status = 409, body = ErrorBody, description = "the server has no live log, or a put of the item landed while this update was made (logged, not applied; retry)"),
        (status = 408, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ))]
pub(crate) async fn update_fields(
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<Object<FieldsRequest>>,
) -> Result<HttpResponse, ApiError> {
    let (start, id, fields) = (Instant::now(), id.into_inner(), body.into_inner().0.fields);
    let result = write_fields(&state, &id, fields).await;
    observe_write(&state, start, &result);
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(Updated { updated: id, seq: result?.first_seq }))
}

async fn write_fields(
    state: &AppState,
    id: &str,
    fields: std::collections::BTreeMap<String, hyrank_engine::FieldValue>,
) -> Result<Appended, ApiError> {
    if let Some((name, _)) =
        fields.iter().find(|(_, v)| matches!(v, hyrank_engine::FieldValue::Number(n) if !n.is_finite()))
    {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            format!("fields.{name}: not a finite number"),
        ));
    }
    let fields = typed_fields(&state.engine(), fields)?;
    let target = id.to_string();
    write_item(state, id, move |log, hash| log.update_fields(&target, hash, fields)).await
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
    /// Stored, returned and filterable attributes (strings, finite numbers, lists of strings;
    /// a boolean is the text `true` or `false` and `null` is no field, as in a catalog file).
    #[serde(default, deserialize_with = "catalog_fields")]
    #[schema(value_type = Object)]
    fields: std::collections::BTreeMap<String, hyrank_engine::FieldValue>,
}

/// A live write's fields read as a catalog file's are ([`hyrank_engine::FieldValue::from_json`]),
/// so that a row the catalog accepts is accepted live too: a boolean is kept as its text, and
/// a `null` field is absent, as are blank text and a list of none but blank text (a list's
/// blank members dropped: [`hyrank_engine::FieldValue::without_blanks`]). A value that is no
/// field is refused, naming the field.
fn catalog_fields<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<std::collections::BTreeMap<String, hyrank_engine::FieldValue>, D::Error> {
    use serde::de::Error;
    let raw = std::collections::BTreeMap::<String, serde_json::Value>::deserialize(deserializer)?;
    raw.into_iter()
        .filter(|(_, value)| !value.is_null())
        .filter_map(|(name, value)| match hyrank_engine::FieldValue::from_json(&value) {
            Ok(field) => field.without_blanks().map(|field| Ok((name, field))),
            Err(reason) => Some(Err(D::Error::custom(format!("{name}: {reason}")))),
        })
        .collect()
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
        (status = 200, body = Put), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the server has no live log, holds max_live_items live rows, or another write about the item landed first (retry)"),
        (status = 408, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ))]
pub(crate) async fn put_item(
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<Object<PutItemRequest>>,
) -> Result<HttpResponse, ApiError> {
    let start = Instant::now();
    let result = write_put(&state, id.into_inner(), body.into_inner().0).await;
    observe_write(&state, start, &result);
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(result?))
}

async fn write_put(state: &AppState, id: String, body: PutItemRequest) -> Result<Put, ApiError> {
    let invalid = |field: &str, reason: String| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", format!("{field}: {reason}"))
    };
    if let Some(problem) = hyrank_engine::item::id_problem(&id) {
        return Err(invalid("id", problem));
    }
    // The catalog's rule: invisible characters alone are no text either.
    if hyrank_engine::item::is_blank(&body.title) && hyrank_engine::item::is_blank(&body.text) {
        return Err(invalid("title/text", "an item needs a title or a text; both are empty".into()));
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
            format!("this generation already holds {max} rows written live (max_live_items; each put adds one, a replaced item's earlier rows included); run `hyrank index` to fold them in, then reload"),
        ));
    }
    // The row the put replaces, as the next build will check it; none for a new or deleted id.
    let hash = match engine.visible_index_of(&id) {
        Ok(index) => Some(engine.row_name(index)?),
        Err(hyrank_engine::Error::UnknownItem { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    drop(engine);
    let created = hash.is_none();
    let item = hyrank_engine::Item { id: id.clone(), title: body.title, text: body.text, fields };
    let (appended, applied) =
        blocking_write(state, move |engine| engine.put_live_item(item, hash.unwrap_or_default())).await?;
    state.inner.responses.clear();
    if !applied {
        return Err(write_conflict(&id, &appended));
    }
    Ok(Put { put: id, created, seq: appended.first_seq })
}

/// A live write's fields as the serving generation's catalog types them
/// (`manifest.field_types`): `"25"` for a number field is 25, a single value for a list field a
/// list of one, as a catalog row's would be. A field the catalog does not have is taken as
/// given.
///
/// # Errors
/// 422 `invalid_request` naming the field when its name is none a catalog may have
/// ([`hyrank_engine::item::field_name_problem`]) or a value cannot be its field's type.
fn typed_fields(
    engine: &Engine,
    fields: std::collections::BTreeMap<String, hyrank_engine::FieldValue>,
) -> Result<std::collections::BTreeMap<String, hyrank_engine::FieldValue>, ApiError> {
    let types = &engine.manifest().field_types;
    if let Some((name, problem)) =
        fields.keys().find_map(|name| hyrank_engine::item::field_name_problem(name).map(|p| (name, p)))
    {
        let message = format!("fields.{}: {problem}", name.escape_debug());
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message));
    }
    fields
        .into_iter()
        .map(|(name, value)| match types.get(&name) {
            Some(kind) => kind.coerce(&value).map(|typed| (name.clone(), typed)).map_err(|found| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_request",
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
    let hash = engine.row_name(index)?;
    drop(engine);
    let written = hash.clone();
    let appended = blocking_write(state, move |_| write(&log, written)).await?;
    // Checked on the engine serving once the write is logged (a swap may have come between
    // the row's read and the append): the generation whose rule then applies.
    let (target, seq) = (id.to_string(), appended.first_seq);
    let applied = blocking_write(state, move |engine| engine.item_write_applies(&target, seq, &hash)).await?;
    state.inner.responses.clear();
    // A put of the id landed between the read of its row and this write, which names the row
    // the put replaced: logged, applied neither here nor by the next build, as a put that
    // loses such a race.
    if !applied {
        return Err(write_conflict(&id, &appended));
    }
    Ok(appended)
}

/// 409 `write_conflict`: the write about `id`, logged as `appended`, was made against a row
/// another write about the id had replaced, and does not apply.
fn write_conflict(id: &str, appended: &Appended) -> ApiError {
    let seq = appended.first_seq;
    let message =
        format!("another write about item {id:?} landed while this one was made (seq {seq}); read it and retry");
    ApiError::new(StatusCode::CONFLICT, "write_conflict", message)
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
    // The log's records live in memory too: a bound a client cannot push past (400k events of
    // new 200-byte users took 250 MB, and a restart reads them all back). A count, not a scan.
    let bound = state.settings().limits.max_live_events;
    let held = log.records_in_memory();
    if held.saturating_add(events.len()) > bound {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "live_log_full",
            format!(
                "the live log holds {held} records in memory, and {} more events would pass max_live_events \
                 ({bound}); run `hyrank index` to fold them in, then reload (a fold retires them)",
                events.len()
            ),
        ));
    }
    // Malformed rows before unknown items, so a batch with both is a 422.
    if let Err(hyrank_engine::Error::InvalidArgument { field, reason }) = hyrank_engine::live::validate_batch(&events) {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", format!("{field}: {reason}")));
    }
    // An item deleted live is still known: the next build keeps its row (hidden) and folds its
    // events into CF like any other, and one late click on it must not cost a batch.
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
            "item_not_found",
            format!("events[{row}].item: item {item:?} is not in the index{more}; nothing was written"),
        ));
    }
    drop(engine);
    // The durable append waits on the disk: off the HTTP workers, within the same bound on
    // queued work as engine calls.
    blocking_write(state, move |_| log.append_batch(events, batch_id)).await
}
