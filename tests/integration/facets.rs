//! Facets and totals over HTTP: a search's counts of field values over the ranked list its
//! pages are cut from, and that list's length.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use serde_json::{json, Value};

use crate::api::{catalog, post};

/// A facet's values and their counts.
fn value_counts(facet: &Value) -> BTreeMap<String, u64> {
    let values = facet["values"].as_array().unwrap_or_else(|| panic!("no values: {facet}"));
    values.iter().map(|v| (v["value"].as_str().unwrap().to_string(), v["count"].as_u64().unwrap())).collect()
}

#[actix_web::test]
async fn facets_count_the_ranked_list_the_pages_are_cut_from() {
    let query = json!({"query": "lightweight waterproof", "facets": ["category", "tags", "price"]});
    let (status, first) = post("/v1/search", query.clone()).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let total = first["total"].as_u64().unwrap() as usize;
    assert!(first["timings"]["facets_ms"].as_f64().unwrap() > 0.0, "counting is its own stage: {first}");
    // The whole list, paged through: its hits are what the facets count.
    let mut hits = Vec::new();
    for offset in (0..total).step_by(50) {
        let mut page = query.clone();
        (page["offset"], page["k"]) = (json!(offset), json!(50));
        let (status, body) = post("/v1/search", page).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["total"], first["total"], "the total does not depend on the page");
        assert_eq!(body["facets"], first["facets"], "nor do the facets");
        hits.extend(body["hits"].as_array().unwrap().iter().cloned());
    }
    assert_eq!(hits.len(), total);
    let items: BTreeMap<String, Value> =
        catalog().into_iter().map(|i| (i["id"].as_str().unwrap().to_string(), i)).collect();
    let mut categories: BTreeMap<String, u64> = BTreeMap::new();
    let (mut low, mut high) = (f64::INFINITY, f64::NEG_INFINITY);
    for hit in &hits {
        let fields = &items[hit["id"].as_str().unwrap()]["fields"];
        *categories.entry(fields["category"].as_str().unwrap().to_string()).or_default() += 1;
        let price = fields["price"].as_f64().unwrap();
        (low, high) = (low.min(price), high.max(price));
    }
    let facets = &first["facets"];
    let counted = value_counts(&facets["category"]);
    assert_eq!(counted, categories, "{facets}");
    assert_eq!(facets["category"]["hits"].as_u64().unwrap() as usize, total);
    assert_eq!((facets["price"]["min"].as_f64(), facets["price"]["max"].as_f64()), (Some(low), Some(high)));
    let counts: Vec<u64> =
        facets["tags"]["values"].as_array().unwrap().iter().map(|v| v["count"].as_u64().unwrap()).collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "most first: {counts:?}");

    // A filter narrows the list, so the counts: conjunctive facets.
    let top = counted.iter().max_by_key(|(_, n)| **n).unwrap().0.clone();
    let mut filtered = query.clone();
    filtered["filters"] = json!({"category": top});
    let (_, narrowed) = post("/v1/search", filtered).await;
    let values = narrowed["facets"]["category"]["values"].as_array().unwrap();
    assert_eq!(values.len(), 1, "{narrowed}");
    assert_eq!(values[0]["count"], narrowed["total"]);

    // Not asked, none; bounds named.
    let (_, plain) = post("/v1/search", json!({"query": "tent"})).await;
    assert!(plain.get("facets").is_none() && plain["total"].as_u64().unwrap() > 0, "{plain}");
    assert_eq!(plain["timings"]["facets_ms"], 0.0, "{plain}");
    let (status, body) = post("/v1/search", json!({"query": "tent", "facets": ["brand", "brand"]})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("facets: \"brand\" is named twice"), "{body}");
    // A field no item has is a typo, refused with the fields there are, as a filter's is.
    for name in ["nothing", " brand"] {
        let (status, body) = post("/v1/search", json!({"query": "tent", "facets": [name]})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("no item has a field") && message.contains("\"category\""), "{message}");
    }
}

/// Recommendations and similar items count their own ranked list the same way, and check the
/// names the same way.
#[actix_web::test]
async fn recommendations_and_similar_items_count_their_list_too() {
    let seed = catalog()[0]["id"].as_str().unwrap().to_string();
    let items: BTreeMap<String, Value> =
        catalog().into_iter().map(|i| (i["id"].as_str().unwrap().to_string(), i)).collect();
    for (route, request) in [
        ("/v1/recommend", json!({"user": "u007", "facets": ["category"]})),
        ("/v1/similar", json!({"item": seed, "facets": ["category"]})),
    ] {
        let (status, first) = post(route, request.clone()).await;
        assert_eq!(status, StatusCode::OK, "{route}: {first}");
        let total = first["total"].as_u64().unwrap();
        assert!(total >= 10, "{route}: {first}");
        let mut categories: BTreeMap<String, u64> = BTreeMap::new();
        for offset in (0..total).step_by(50) {
            let mut page = request.clone();
            (page["offset"], page["k"]) = (json!(offset), json!(50));
            let (status, body) = post(route, page).await;
            assert_eq!(status, StatusCode::OK, "{route}: {body}");
            assert_eq!(body["facets"], first["facets"], "{route}: the counts do not depend on the page");
            for hit in body["hits"].as_array().unwrap() {
                let category = items[hit["id"].as_str().unwrap()]["fields"]["category"].as_str().unwrap();
                *categories.entry(category.to_string()).or_default() += 1;
            }
        }
        let counted = value_counts(&first["facets"]["category"]);
        assert_eq!(counted, categories, "{route}: {first}");
        let mut typo = request.clone();
        typo["facets"] = json!(["categry"]);
        let (status, body) = post(route, typo).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{route}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("no item has a field \"categry\""), "{body}");
        let mut plain = request.clone();
        plain.as_object_mut().unwrap().remove("facets");
        let (_, plain) = post(route, plain).await;
        assert!(plain.get("facets").is_none() && plain["total"].as_u64().unwrap() > 0, "{route}: {plain}");
    }
}
