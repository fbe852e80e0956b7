//! Pages (`offset` and `k`): every route's later pages are cuts of the one ranked list the
//! first page starts, reranked or not, and a page past the end is empty rather than an error.

use actix_web::http::StatusCode;
use serde_json::{json, Value};

use crate::api::{assert_breakdowns_compose, catalog, get, ids, post};

/// `(id, score)` of each hit, in order.
fn ranked(body: &Value) -> Vec<(String, f64)> {
    ids(body).into_iter().zip(body["hits"].as_array().unwrap().iter().map(|h| h["score"].as_f64().unwrap())).collect()
}

/// Posts `request` for the first `whole` hits, then page by page (`k` = `size`), and checks
/// that the pages laid end to end are the whole list, scores included.
async fn pages_concatenate(path: &str, request: Value, whole: usize, size: usize) {
    let with = |offset: usize, k: usize| {
        let mut body = request.clone();
        body["offset"] = json!(offset);
        body["k"] = json!(k);
        body
    };
    let (status, all) = post(path, with(0, whole)).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let all = ranked(&all);
    assert_eq!(all.len(), whole, "{request}: the fixtures fill {whole} hits");
    let mut paged = Vec::new();
    for offset in (0..whole).step_by(size) {
        let (status, page) = post(path, with(offset, size.min(whole - offset))).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_breakdowns_compose(&page);
        paged.extend(ranked(&page));
    }
    assert_eq!(paged, all, "{path} {request}: pages of {size} are not the list of {whole}");
}

#[actix_web::test]
async fn search_pages_are_cuts_of_one_list_reranked_or_not() {
    let query = json!({"query": "waterproof boots for wet rock"});
    pages_concatenate("/v1/search", query.clone(), 40, 10).await;
    pages_concatenate("/v1/search", json!({"query": "tent", "mode": "bm25"}), 12, 5).await;
    // A user adds CF's list; RRF instead of the linear default.
    let personal = json!({"query": "lightweight", "user": "u007", "fusion": {"method": "rrf"}});
    pages_concatenate("/v1/search", personal, 30, 7).await;
    // Reranked: the window is the depth (or k, when larger), wherever the page starts, so
    // pages of 10 inside a depth of 30 are the list of 30.
    let query = "waterproof boots for wet rock";
    let rerank = |depth: usize| json!({"reranker": "late_interaction", "depth": depth});
    pages_concatenate("/v1/search", json!({"query": query, "rerank": rerank(30)}), 30, 10).await;
    // Past the window the list goes on in fused order, unreranked (Elasticsearch's rescore
    // window): pages of 10 at depth 25 are the 25 reranked, then the fused list's 26th on.
    let page = |offset: usize, k: usize, rerank: Value| {
        let body = json!({"query": query, "offset": offset, "k": k, "rerank": rerank});
        async move {
            let (status, body) = post("/v1/search", body).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body
        }
    };
    let reranked = page(0, 25, rerank(25)).await;
    let fused = page(0, 40, json!({"enabled": false})).await;
    let mut expected = ranked(&reranked);
    expected.extend(ranked(&fused)[25..40].iter().cloned());
    let mut paged = Vec::new();
    for offset in [0, 10, 20, 30] {
        let body = page(offset, 10, rerank(25)).await;
        for (at, hit) in (offset..).zip(body["hits"].as_array().unwrap()) {
            assert_eq!(hit["breakdown"].get("rerank").is_some(), at < 25, "position {at}: {hit}");
        }
        paged.extend(ranked(&body));
    }
    assert_eq!(paged, expected);
}

#[actix_web::test]
async fn recommend_and_similar_pages_are_cuts_of_one_list() {
    pages_concatenate("/v1/recommend", json!({"user": "u007"}), 30, 10).await;
    pages_concatenate("/v1/recommend", json!({"user": "u001", "mode": "cf"}), 20, 6).await;
    let seed = catalog()[0]["id"].as_str().unwrap().to_string();
    pages_concatenate("/v1/similar", json!({"item": seed}), 30, 10).await;
    // The GET route reads `offset` from its query string, and answers as the body does.
    let (status, by_get) = get(&format!("/v1/items/{seed}/similar?k=5&offset=5")).await;
    assert_eq!(status, StatusCode::OK, "{by_get}");
    let (_, by_post) = post("/v1/similar", json!({"item": seed, "k": 5, "offset": 5})).await;
    assert_eq!(ranked(&by_get), ranked(&by_post));
    let (_, first) = post("/v1/similar", json!({"item": seed, "k": 10})).await;
    assert_eq!(ids(&by_get), ids(&first)[5..]);
    // Counts written with a zero fraction (what Python's json writes for a computed 5.0) are
    // the integers JSON Schema says they are.
    let (status, floats) =
        post("/v1/similar", json!({"item": seed, "k": 5.0, "offset": 5.0, "candidates": 100.0})).await;
    assert_eq!(status, StatusCode::OK, "{floats}");
    assert_eq!(ranked(&floats), ranked(&by_post));
}

#[actix_web::test]
async fn a_page_past_the_end_is_empty_and_a_page_past_the_bounds_is_refused() {
    // The whole catalog is listed at this depth, so the page after it holds nothing.
    let items = catalog().len();
    let (status, body) = post("/v1/search", json!({"query": "tent", "offset": items, "k": 10})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["hits"], json!([]), "{body}");
    // A filter few items pass: the last page is short.
    let (_, all) = post("/v1/search", json!({"query": "tent", "k": 100, "filters": {"category": "tents"}})).await;
    let total = ids(&all).len();
    assert!((2..100).contains(&total), "{total}");
    let (_, last) =
        post("/v1/search", json!({"query": "tent", "offset": total - 1, "filters": {"category": "tents"}})).await;
    assert_eq!(ids(&last), ids(&all)[total - 1..]);

    // Given candidates must reach the page's end; the message says how to page deeper.
    let (status, body) = post("/v1/search", json!({"query": "tent", "offset": 100, "k": 10, "candidates": 100})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("candidates: 100 is fewer than offset + k (110)"), "{message}");
    // Past the deepest list this server allows, `offset` is named; a negative one is no offset.
    let max = hyrank_api::settings::Limits::default().max_candidates;
    for route in ["/v1/search", "/v1/recommend", "/v1/similar"] {
        let seed = json!({"query": "tent", "user": "u007", "item": catalog()[0]["id"]});
        let mut request = json!({"offset": max, "k": 1});
        for key in match route {
            "/v1/search" => &["query"][..],
            "/v1/recommend" => &["user"][..],
            _ => &["item"][..],
        } {
            request[key] = seed[key].clone();
        }
        let (status, body) = post(route, request.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{route}: {body}");
        assert_eq!(body["error"]["code"], "limit_exceeded", "{route}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().starts_with("offset:"), "{route}: {body}");
        request["offset"] = json!(-1);
        let (status, body) = post(route, request).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{route}: {body}");
    }
    let (status, body) = get(&format!("/v1/items/{}/similar?offset=-1", catalog()[0]["id"].as_str().unwrap())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}
