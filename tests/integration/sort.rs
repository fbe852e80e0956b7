//! Sorting over HTTP: the ranked list a search, a recommendation or similar items found, in a
//! field's order instead of relevance, paged and counted as the unsorted list is.

use std::collections::{BTreeMap, BTreeSet};

use actix_web::http::StatusCode;
use serde_json::{json, Value};

use crate::api::{catalog, post};

/// Every hit of `request`'s ranked list, paged through 50 at a time.
async fn whole_list(route: &str, request: &Value) -> Vec<Value> {
    let (status, first) = post(route, request.clone()).await;
    assert_eq!(status, StatusCode::OK, "{route}: {first}");
    let total = first["total"].as_u64().unwrap();
    let mut hits = Vec::new();
    for offset in (0..total).step_by(50) {
        let mut page = request.clone();
        (page["offset"], page["k"]) = (json!(offset), json!(50));
        let (status, body) = post(route, page).await;
        assert_eq!((status, &body["total"]), (StatusCode::OK, &first["total"]), "{route}: {body}");
        hits.extend(body["hits"].as_array().unwrap().iter().cloned());
    }
    hits
}

fn ids(hits: &[Value]) -> Vec<String> {
    hits.iter().map(|h| h["id"].as_str().unwrap().to_string()).collect()
}

#[actix_web::test]
async fn a_sorted_list_is_the_same_hits_in_the_field_s_order() {
    let items: BTreeMap<String, Value> =
        catalog().into_iter().map(|i| (i["id"].as_str().unwrap().to_string(), i)).collect();
    let price = |id: &String| items[id]["fields"]["price"].as_f64();
    let seed = catalog()[0]["id"].as_str().unwrap().to_string();
    for (route, request) in [
        ("/v1/search", json!({"query": "warm sleeping bag"})),
        ("/v1/recommend", json!({"user": "u007"})),
        ("/v1/similar", json!({"item": seed})),
    ] {
        let relevance = ids(&whole_list(route, &request).await);
        for order in ["asc", "desc"] {
            let mut sorted = request.clone();
            sorted["sort"] = json!([{"field": "price", "order": order}]);
            let sorted = ids(&whole_list(route, &sorted).await);
            // The same hits, every price in order, equal prices (and items without one, last)
            // in relevance order.
            let set = |ids: &[String]| ids.iter().cloned().collect::<BTreeSet<_>>();
            assert_eq!(set(&sorted), set(&relevance), "{route} {order}");
            let rank = |id: &String| relevance.iter().position(|r| r == id).unwrap();
            for pair in sorted.windows(2) {
                let (a, b) = (price(&pair[0]), price(&pair[1]));
                let in_order = match (a, b) {
                    (Some(a), Some(b)) if a == b => rank(&pair[0]) < rank(&pair[1]),
                    (Some(a), Some(b)) => (order == "asc") == (a < b),
                    (None, None) => rank(&pair[0]) < rank(&pair[1]),
                    (a, _) => a.is_some(),
                };
                assert!(in_order, "{route} {order}: {pair:?} ({a:?}, {b:?})");
            }
        }
    }
    // A text field, then a number: brands alphabetically, each brand's cheapest first.
    let request = json!({"query": "tent", "k": 40, "sort": [{"field": "brand"}, {"field": "price"}]});
    let (status, body) = post("/v1/search", request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let keys: Vec<(String, f64)> = ids(body["hits"].as_array().unwrap())
        .iter()
        .map(|id| (items[id]["fields"]["brand"].as_str().unwrap().to_lowercase(), price(id).unwrap()))
        .collect();
    assert!(keys.windows(2).all(|w| w[0].0 < w[1].0 || (w[0].0 == w[1].0 && w[0].1 <= w[1].1)), "{keys:?}");
    // Hits keep their relevance scores: the sort does not make them up.
    let scores: Vec<f64> = body["hits"].as_array().unwrap().iter().map(|h| h["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).any(|w| w[0] < w[1]), "relevance scores, not the sort's order: {scores:?}");
}

#[actix_web::test]
async fn a_sort_is_checked_and_never_reranked() {
    for (sort, said) in [
        (json!([{"field": "colour"}]), "sort: no item has a field \"colour\"; fields are"),
        (json!([{"field": "price"}, {"field": "price", "order": "desc"}]), "sort: \"price\" is given twice"),
        (json!([{"field": "price", "order": "up"}]), "unknown variant `up`"),
        (json!(["price"]), "sort"),
    ] {
        let (status, body) = post("/v1/search", json!({"query": "tent", "sort": sort})).await;
        assert!(status.is_client_error(), "{sort}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(said), "{sort}: {body}");
    }
    let sort = json!([{"field": "price"}]);
    let (status, body) = post("/v1/search", json!({"query": "tent", "sort": sort, "rerank": {"enabled": true}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("a sorted list is not reranked"), "{body}");
    let (status, body) = post("/v1/search", json!({"query": "tent", "sort": sort, "rerank": {"enabled": false}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["hits"].as_array().unwrap().iter().all(|h| h["breakdown"].get("rerank").is_none()), "{body}");
}

/// A search with no query that filters or sorts browses (a category page): every item the
/// filters allow, unranked, in the sort's order (the catalog's without one), paged and
/// counted, with facets; with nothing to narrow or order, or in a mode that needs a query, it
/// is refused as before.
#[actix_web::test]
async fn a_search_without_a_query_browses_what_the_filters_allow() {
    let items = catalog();
    let tents: Vec<String> = items
        .iter()
        .filter(|i| i["fields"]["category"] == "tents")
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    assert!(tents.len() > 10, "the fixtures hold tents");
    let price: BTreeMap<String, f64> = items
        .iter()
        .map(|i| (i["id"].as_str().unwrap().to_string(), i["fields"]["price"].as_f64().unwrap_or(f64::NAN)))
        .collect();
    let page = json!({"filters": {"category": "tents"}, "k": 7});
    let listed = ids(&whole_list("/v1/search", &page).await);
    assert_eq!(listed, tents, "every tent, in the catalog's order");
    let (status, body) =
        post("/v1/search", json!({"filters": {"category": "tents"}, "k": 3, "facets": ["brand"]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total"].as_u64(), Some(tents.len() as u64));
    assert!(body["notes"][0].as_str().unwrap().starts_with("browse: no query or user"), "{body}");
    assert!(body["hits"].as_array().unwrap().iter().all(|h| h["score"] == 0.0), "{body}");
    assert_eq!(body["facets"]["brand"]["hits"].as_u64(), Some(tents.len() as u64), "facets count every tent: {body}");

    let cheapest = json!({"filters": {"category": "tents"}, "sort": [{"field": "price", "order": "asc"}]});
    let sorted = ids(&whole_list("/v1/search", &cheapest).await);
    assert_eq!(sorted.iter().cloned().collect::<BTreeSet<_>>(), tents.iter().cloned().collect::<BTreeSet<_>>());
    assert!(sorted.windows(2).all(|w| price[&w[0]] <= price[&w[1]]), "{sorted:?}");
    // A sort alone browses the whole catalog; exclude alone browses the rest.
    let (status, body) = post("/v1/search", json!({"sort": [{"field": "price", "order": "desc"}], "k": 1})).await;
    assert_eq!((status, body["total"].as_u64()), (StatusCode::OK, Some(items.len() as u64)), "{body}");
    let dearest = price.iter().filter(|p| !p.1.is_nan()).max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
    assert_eq!(body["hits"][0]["id"].as_str(), Some(dearest.as_str()));
    let (status, body) = post("/v1/search", json!({"exclude": {"category": "tents"}, "k": 1})).await;
    assert_eq!((status, body["total"].as_u64()), (StatusCode::OK, Some((items.len() - tents.len()) as u64)));

    // A user's category page: the items CF ranks for the user first, then every other tent.
    let for_user = json!({"filters": {"category": "tents"}, "user": "u001", "k": 100});
    let (status, body) = post("/v1/search", for_user.clone()).await;
    assert_eq!((status, body["total"].as_u64()), (StatusCode::OK, Some(tents.len() as u64)), "{body}");
    let hits = body["hits"].as_array().unwrap();
    let ranked = hits.iter().take_while(|h| !h["breakdown"]["retrievers"].as_array().unwrap().is_empty()).count();
    assert!(ranked > 0 && ranked < hits.len(), "CF's tents, then the rest: {body}");
    assert!(hits[ranked..].iter().all(|h| h["score"] == 0.0), "{body}");
    let set = |ids: &[String]| ids.iter().cloned().collect::<BTreeSet<_>>();
    assert_eq!(set(&ids(hits)), set(&tents));
    let mut sorted_for_user = for_user;
    sorted_for_user["sort"] = json!([{"field": "price"}]);
    assert_eq!(ids(&whole_list("/v1/search", &sorted_for_user).await), sorted, "a sort orders them all");
    // A shopper CF knows nothing of yet gets the page without CF, and is told so.
    let (status, body) =
        post("/v1/search", json!({"filters": {"category": "tents"}, "user": "new-shopper", "k": 3})).await;
    assert_eq!((status, body["total"].as_u64()), (StatusCode::OK, Some(tents.len() as u64)), "{body}");
    assert!(body["notes"].to_string().contains("CF has no list for this user"), "{body}");
    let (status, body) = post("/v1/search", json!({"filters": {"category": "tents"}, "user": "bad\u{0}id"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "an id no user can have is still refused: {body}");
    // A browse runs no retriever: its `candidates` is unused, not refused.
    let (status, body) = post("/v1/search", json!({"filters": {"category": "tents"}, "k": 5, "candidates": 3})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["hits"][0]["breakdown"]["fusion"], "browse", "{body}");

    for (request, field) in [
        (json!({"k": 5}), "query"),
        (json!({"query": "  ", "k": 5}), "query"),
        (json!({"mode": "bm25", "filters": {"category": "tents"}}), "query"),
        (json!({"filters": {"category": "tents"}, "rerank": {"enabled": true}}), "rerank"),
        (json!({"filters": {"colour": "red"}}), "filters.colour"),
    ] {
        let (status, body) = post("/v1/search", request.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{request}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(&format!("invalid {field}:")), "{request}: {body}");
    }
}
