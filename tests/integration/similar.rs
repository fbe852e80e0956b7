//! Similar items: the GET route by the item's path, and `POST /v1/similar` with the request
//! as a body (filters and exclude, which a query string cannot carry).

use actix_web::http::StatusCode;
use serde_json::json;

use crate::api::{assert_breakdowns_compose, catalog, get, ids, post};

#[actix_web::test]
async fn item_and_similar_items() {
    let (status, body) = get("/v1/items/KNF-999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "item_not_found");
    let first = &catalog()[0];
    let id = first["id"].as_str().unwrap();
    let (status, body) = get(&format!("/v1/items/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["title"], first["title"]);
    assert_eq!(body["fields"]["category"], first["fields"]["category"]);
    let (status, body) = get(&format!("/v1/items/{id}/similar?k=8")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let hits = body["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 8);
    assert!(hits.iter().all(|h| h["id"] != id), "the seed item is not similar to itself");
    let same = hits.iter().filter(|h| h["fields"]["category"] == first["fields"]["category"]).count();
    assert!(same >= 6, "{same} of 8 share the category: {body}");
    assert_breakdowns_compose(&body);
}

/// `POST /v1/similar` answers as the GET route does for the same options, and takes what a
/// query string cannot carry: filters and exclude.
#[actix_web::test]
async fn similar_items_by_post_take_filters_and_answer_as_get_does() {
    let first = &catalog()[0];
    let id = first["id"].as_str().unwrap();
    let category = &first["fields"]["category"];
    let (_, by_get) = get(&format!("/v1/items/{id}/similar?k=8&fusion=linear")).await;
    let (status, by_post) = post("/v1/similar", json!({"item": id, "k": 8, "fusion": {"method": "linear"}})).await;
    assert_eq!(status, StatusCode::OK, "{by_post}");
    assert_eq!(ids(&by_post), ids(&by_get));
    assert_breakdowns_compose(&by_post);

    let (status, excluded) = post("/v1/similar", json!({"item": id, "k": 8, "exclude": {"category": category}})).await;
    assert_eq!(status, StatusCode::OK, "{excluded}");
    let hits = excluded["hits"].as_array().unwrap();
    assert!(!hits.is_empty() && hits.iter().all(|h| h["fields"]["category"] != *category), "{excluded}");
    let other = hits[0]["fields"]["category"].clone();
    let (_, filtered) = post("/v1/similar", json!({"item": id, "k": 3, "filters": {"category": other}})).await;
    let hits = filtered["hits"].as_array().unwrap();
    assert!(!hits.is_empty() && hits.iter().all(|h| h["fields"]["category"] == other), "{filtered}");

    let (status, body) = post("/v1/similar", json!({"item": "KNF-999"})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("item_not_found")));
    let (status, body) = post("/v1/similar", json!({"item": id, "k": 3, "depth": 5})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "an unknown key is refused: {body}");
    let (status, _) = get("/v1/similar").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

/// Under `linear_floor` the dense floor is what an item unrelated to the probe scores: the mean
/// cosine over the items a request can reach other than the probe's own (a similar request's
/// seed, whose cosine is 1; a recommendation's history, of which its profile is made). With
/// every such item listed, the floor read back from the breakdowns is their listed mean.
#[test]
fn the_dense_floor_leaves_the_probe_s_own_items_out() {
    use hyrank_engine::explain::RetrieverKind;
    use hyrank_engine::fusion::Fusion;
    use hyrank_engine::{RecommendMode, RecommendRequest, SimilarRequest};
    let engine = &crate::indexed().engine;
    let check = |hits: &[hyrank_engine::request::Hit], what: &str| {
        let dense: Vec<(f64, f64)> = hits
            .iter()
            .filter_map(|hit| hit.breakdown.retrievers.iter().find(|r| r.retriever == RetrieverKind::Dense))
            .map(|part| (f64::from(part.raw_score), part.contribution))
            .collect();
        assert!(dense.len() > 300, "{what}: {} listed", dense.len());
        let mean = dense.iter().map(|(raw, _)| raw).sum::<f64>() / dense.len() as f64;
        let floors = crate::floors_read_back(&dense);
        assert!(floors.len() > 10, "{what}");
        for floor in floors {
            assert!((floor - mean).abs() < 1e-4, "{what}: floor {floor}, mean of the others {mean}");
        }
    };
    let seed = crate::api::catalog()[0]["id"].as_str().unwrap().to_string();
    let similar: SimilarRequest = serde_json::from_value(
        // CF weighs nothing, so that the hits come in the dense list's order.
        json!({"item": seed, "k": 1000, "candidates": 1000, "fusion": {"method": "linear_floor"}, "weights": {"cf": 0}}),
    )
    .unwrap();
    check(&engine.similar(&similar).unwrap().hits, "similar");
    let recommend = RecommendRequest {
        mode: RecommendMode::Content,
        k: 1000,
        candidates: Some(1000),
        fusion: Fusion::LinearFloor,
        ..RecommendRequest::new("u007")
    };
    check(&engine.recommend(&recommend).unwrap().hits, "recommend");
}

/// A value no request may hold: 400 `invalid_query_string` where the query string holds it
/// (the GET route), 422 `invalid_request` where a body does (as on search and recommend).
#[actix_web::test]
async fn a_value_no_request_may_hold_is_refused_as_its_carrier_says() {
    for (field, value) in [("k", "0"), ("candidates", "0"), ("k", "-1")] {
        let (status, body) = get(&format!("/v1/items/TNT-001/similar?{field}={value}")).await;
        assert_eq!((status, &body["error"]["code"]), (StatusCode::BAD_REQUEST, &json!("invalid_query_string")));
        let request = json!({"item": "TNT-001", field: value.parse::<i64>().unwrap()});
        let (status, body) = post("/v1/similar", request).await;
        assert_eq!((status, &body["error"]["code"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!("invalid_request")));
        assert!(body["error"]["message"].as_str().unwrap().starts_with(field), "{body}");
    }
}
