//! Pages (`offset` and `k`): every route's later pages are cuts of the one ranked list the
//! first page starts, reranked or not, `total` long, and a page past the end is empty rather
//! than an error.

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
    // So are they in the GET route's query string (Python's `requests` writes `5.0` so).
    let (status, floats) = get(&format!("/v1/items/{seed}/similar?k=5.0&offset=5.0&candidates=1e2")).await;
    assert_eq!(status, StatusCode::OK, "{floats}");
    assert_eq!(ranked(&floats), ranked(&by_get));
}

#[actix_web::test]
async fn the_list_s_total_says_where_pages_end_and_a_page_past_it_is_empty() {
    // The list is each retriever's 100 candidates fused, whichever page is asked: its total
    // does not move with the offset, and every position up to it can be paged to.
    let (status, first) = post("/v1/search", json!({"query": "tent", "k": 10})).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let total = first["total"].as_u64().unwrap() as usize;
    assert!((100..=200).contains(&total), "two lists of 100, fused: {total}");
    let (_, last) = post("/v1/search", json!({"query": "tent", "offset": total - 3, "k": 10})).await;
    assert_eq!((ids(&last).len(), &last["total"]), (3, &first["total"]), "{last}");
    for offset in [total, 10_000, 1_000_000_000_000] {
        let (status, body) = post("/v1/search", json!({"query": "tent", "offset": offset})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!((&body["hits"], &body["total"]), (&json!([]), &first["total"]), "{body}");
    }
    // A filter few items pass: the last page is short.
    let (_, all) = post("/v1/search", json!({"query": "tent", "k": 100, "filters": {"category": "tents"}})).await;
    let filtered = ids(&all).len();
    assert!((2..100).contains(&filtered) && all["total"] == json!(filtered), "{all}");
    let (_, last) =
        post("/v1/search", json!({"query": "tent", "offset": filtered - 1, "filters": {"category": "tents"}})).await;
    assert_eq!(ids(&last), ids(&all)[filtered - 1..]);

    // A negative offset is no offset, in a body or a query string.
    let seed = catalog()[0]["id"].as_str().unwrap().to_string();
    for (route, request) in [
        ("/v1/search", json!({"query": "tent", "offset": -1})),
        ("/v1/recommend", json!({"user": "u007", "offset": -1})),
        ("/v1/similar", json!({"item": seed, "offset": -1})),
    ] {
        let (status, body) = post(route, request).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{route}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().starts_with("offset"), "{route}: {body}");
    }
    let (status, body) = get(&format!("/v1/items/{seed}/similar?offset=-1")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[actix_web::test]
async fn a_rerank_of_weight_0_keeps_the_fused_order_ties_included() {
    // Weights of 0 make every fused score 0, so the order is the tie rule's alone (more
    // lists, the better best rank, catalog order); a reranker weighted 0 adds 0 to each, and
    // must leave that order as it is, not sort the ties by id.
    for request in [
        json!({"query": "ultralight shelter", "weights": {"bm25": 0, "dense": 0}, "k": 10}),
        json!({"query": "tent", "user": "u001", "mode": "cf", "weights": {"cf": 0}, "k": 10}),
    ] {
        let (status, fused) = post("/v1/search", request.clone()).await;
        assert_eq!(status, StatusCode::OK, "{fused}");
        let mut reranked = request.clone();
        reranked["rerank"] = json!({"reranker": "late_interaction", "depth": 10, "weight": 0});
        let (status, reranked) = post("/v1/search", reranked).await;
        assert_eq!(status, StatusCode::OK, "{reranked}");
        assert!(reranked["hits"][0]["breakdown"].get("rerank").is_some(), "{reranked}");
        assert_eq!(ids(&reranked), ids(&fused), "{request}");
        // In mode cf only a reranker reads the query: without one, the answer says it went unread.
        let said = |body: &Value| {
            body["notes"]
                .as_array()
                .is_some_and(|n| n.iter().any(|n| n.as_str().unwrap().starts_with("query: not read")))
        };
        assert_eq!((said(&fused), said(&reranked)), (request["mode"] == "cf", false), "{fused}");
    }
}
