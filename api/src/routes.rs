//! Route handlers. Engine calls run on actix's blocking pool (`web::block`): model inference and
//! index reads never hold an HTTP worker.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use hyrank_engine::engine::{RecommendRequest, SearchRequest, SimilarRequest, Weights};
use hyrank_engine::fusion::Fusion;
use hyrank_engine::{Engine, Results};
use serde::Deserialize;

use crate::error::{json_error, query_error, ApiError};
use crate::{AppState, MAX_BODY_BYTES};

pub(crate) fn configure(cfg: &mut web::ServiceConfig, state: AppState) {
    cfg.app_data(web::Data::new(state))
        .app_data(web::JsonConfig::default().limit(MAX_BODY_BYTES).error_handler(json_error))
        .app_data(web::QueryConfig::default().error_handler(query_error))
        .route("/healthz", web::get().to(healthz))
        .service(
            web::scope("/v1")
                .route("/search", web::post().to(search))
                .route("/recommend", web::post().to(recommend))
                .route("/items/{id}", web::get().to(item))
                .route("/items/{id}/similar", web::get().to(similar)),
        )
        .default_service(web::to(not_found));
}

/// Runs engine work off the HTTP workers.
async fn blocking<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce(&Engine) -> hyrank_engine::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let engine = state.engine();
    web::block(move || work(&engine))
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", e.to_string()))?
        .map_err(ApiError::from)
}

async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let engine = state.engine();
    HttpResponse::Ok().json(serde_json::json!({
        "status": "ok",
        "generation": engine.manifest().generation,
        "items": engine.manifest().counts.items,
    }))
}

async fn search(state: web::Data<AppState>, body: web::Json<SearchRequest>) -> Result<web::Json<Results>, ApiError> {
    let request = body.into_inner();
    Ok(web::Json(blocking(&state, move |engine| engine.search(&request)).await?))
}

async fn recommend(
    state: web::Data<AppState>,
    body: web::Json<RecommendRequest>,
) -> Result<web::Json<Results>, ApiError> {
    let request = body.into_inner();
    Ok(web::Json(blocking(&state, move |engine| engine.recommend(&request)).await?))
}

async fn item(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let item = blocking(&state, move |engine| engine.item(&id)).await?;
    Ok(HttpResponse::Ok().json(item))
}

/// Query parameters of `GET /v1/items/{id}/similar`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SimilarParams {
    k: Option<usize>,
    candidates: Option<usize>,
    /// `rrf` (default) or `linear`.
    fusion: Option<String>,
}

async fn similar(
    state: web::Data<AppState>,
    id: web::Path<String>,
    params: web::Query<SimilarParams>,
) -> Result<web::Json<Results>, ApiError> {
    let params = params.into_inner();
    let fusion = match params.fusion.as_deref() {
        None | Some("rrf") => Fusion::default(),
        Some("linear") => Fusion::Linear,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                format!("fusion {other:?} is not rrf or linear"),
            ))
        }
    };
    let request = SimilarRequest {
        item: id.into_inner(),
        k: params.k.unwrap_or(10),
        filters: Default::default(),
        fusion,
        weights: Weights::default(),
        candidates: params.candidates.unwrap_or(100),
    };
    Ok(web::Json(blocking(&state, move |engine| engine.similar(&request)).await?))
}

async fn not_found() -> HttpResponse {
    use actix_web::ResponseError;
    ApiError::new(StatusCode::NOT_FOUND, "route_not_found", "no such route; see README.md for the API").error_response()
}
