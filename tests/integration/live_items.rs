//! Live item writes through the real HTTP app: deletes, field updates and new items are seen by
//! the next request and by every retriever, and are folded into the next generation.

use std::path::Path;

use actix_web::{http::StatusCode, test};
use serde_json::{json, Value};

use crate::live::{events, ids, live_state, recommend, reopened_state, ADMIN_KEY, SEARCH_KEY, WRITE_KEY};
use crate::service::{call, service};

/// Index settings for the fixture catalog with one item's title changed (a catalog team's
/// edit of the row), written under `root`.
fn catalog_with_changed_title(root: &Path, id: &str, edition: &str) -> hyrank_indexer::IndexSettings {
    let catalog = std::fs::read_to_string(hyrank_tests::root().join("fixtures/catalog.jsonl")).unwrap();
    let changed: String = catalog
        .lines()
        .map(|line| {
            let mut item: Value = serde_json::from_str(line).unwrap();
            if item["id"] == json!(id) {
                item["title"] = json!(format!("{} ({edition})", item["title"].as_str().unwrap()));
            }
            serde_json::to_string(&item).unwrap() + "\n"
        })
        .collect();
    let changed_path = root.join("catalog-changed.jsonl");
    std::fs::write(&changed_path, changed).unwrap();
    hyrank_indexer::IndexSettings { catalog: changed_path, ..hyrank_tests::fixture_settings(root.to_path_buf()) }
}

fn get(uri: &str) -> test::TestRequest {
    test::TestRequest::get().uri(uri).insert_header(("authorization", format!("Bearer {SEARCH_KEY}")))
}

/// A browse of `category`: a search with no query, filtered to it.
fn browse(category: &Value) -> test::TestRequest {
    test::TestRequest::post()
        .uri("/v1/search")
        .insert_header(("authorization", format!("Bearer {SEARCH_KEY}")))
        .set_json(json!({"filters": {"category": category}, "k": 100}))
}

fn hybrid(query: &str) -> test::TestRequest {
    test::TestRequest::post()
        .uri("/v1/search")
        .insert_header(("authorization", format!("Bearer {SEARCH_KEY}")))
        .set_json(json!({"query": query, "k": 10}))
}

#[actix_web::test]
async fn a_deleted_item_leaves_every_list_until_its_catalog_row_changes() {
    let root = tempfile::tempdir().unwrap();
    let state = live_state(root.path());
    let app = service(state.clone()).await;
    let (_, _, before) = call(&app, hybrid("camp stove")).await;
    let (gone, neighbour) = (ids(&before)[0].clone(), ids(&before)[1].clone());
    let category = before["hits"][0]["fields"]["category"].clone();
    let (status, _, listed) = call(&app, browse(&category)).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert!(ids(&listed).contains(&gone), "{listed}");
    let delete = |key: Option<&str>, id: &str| {
        let request = test::TestRequest::delete().uri(&format!("/v1/items/{id}"));
        match key {
            Some(key) => request.insert_header(("authorization", format!("Bearer {key}"))),
            None => request,
        }
    };
    assert_eq!(call(&app, delete(None, &gone)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(&app, delete(Some(SEARCH_KEY), &gone)).await.0, StatusCode::FORBIDDEN);
    assert_eq!(call(&app, get(&format!("/v1/items/{gone}"))).await.0, StatusCode::OK, "GET is not a write");
    let (status, _, body) = call(&app, delete(Some(WRITE_KEY), &gone)).await;
    assert_eq!(
        (status, body["deleted"].as_str(), body["seq"].as_u64()),
        (StatusCode::OK, Some(gone.as_str()), Some(1))
    );
    assert_eq!(call(&app, delete(Some(WRITE_KEY), &gone)).await.0, StatusCode::NOT_FOUND, "already deleted");
    assert_eq!(call(&app, delete(Some(WRITE_KEY), "NO-SUCH-ITEM")).await.0, StatusCode::NOT_FOUND);
    // The health answer counts the generation's items and, apart, those a request can find.
    let (_, _, health) = call(&app, get("/healthz")).await;
    assert_eq!((health["items"].as_u64(), health["visible_items"].as_u64()), (Some(320), Some(319)), "{health}");

    let hidden = |app_result: &Value| !ids(app_result).contains(&gone);
    let (_, headers, after) = call(&app, hybrid("camp stove")).await;
    assert_eq!(headers.get("x-cache").unwrap(), "miss", "a cached answer from before the delete is not served");
    assert!(hidden(&after), "{:?}", ids(&after));
    assert_eq!(ids(&after)[0], neighbour);
    assert_eq!(call(&app, get(&format!("/v1/items/{gone}"))).await.0, StatusCode::NOT_FOUND);
    assert_eq!(call(&app, get(&format!("/v1/items/{gone}/similar?k=5"))).await.0, StatusCode::NOT_FOUND);
    let (status, _, similar) = call(&app, get(&format!("/v1/items/{neighbour}/similar?k=20"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(hidden(&similar));
    let (_, _, recommended) = call(&app, recommend("u001")).await;
    assert!(hidden(&recommended));
    let (_, _, listed_after) = call(&app, browse(&category)).await;
    assert!(hidden(&listed_after), "a browse of its category: {listed_after}");
    assert_eq!(listed_after["total"].as_u64(), listed["total"].as_u64().map(|n| n - 1));

    // A late event for it is taken, and the build folds it in like any other (its row stays,
    // hidden): refusing it would cost the rest of the client's batch.
    let batch = json!({"events": [{"user": "u001", "item": neighbour}, {"user": "u001", "item": gone}]});
    assert_eq!(call(&app, events(batch, Some(WRITE_KEY))).await.0, StatusCode::OK);

    // Folded: the new generation keeps it hidden, since the catalog row is the one deleted.
    let summary = hyrank_indexer::build(&hyrank_tests::fixture_settings(root.path().to_path_buf())).unwrap();
    let live = summary.manifest.live.clone().unwrap();
    assert_eq!((live.events, live.rejected), (2, 0));
    assert_eq!((live.deleted, live.superseded_deletes), (vec![gone.clone()], 0));
    let admin = || test::TestRequest::post().uri("/admin/reload").insert_header(("x-api-key", ADMIN_KEY));
    assert_eq!(call(&app, admin()).await.0, StatusCode::OK);
    assert_eq!(state.engine().manifest().generation, summary.manifest.generation);
    assert!(hidden(&call(&app, hybrid("camp stove")).await.2));
    assert_eq!(call(&app, get(&format!("/v1/items/{gone}"))).await.0, StatusCode::NOT_FOUND);

    // The catalog team changes the item's row: the delete no longer applies.
    let settings = catalog_with_changed_title(root.path(), &gone, "new edition");
    let summary = hyrank_indexer::build(&settings).unwrap();
    let live = summary.manifest.live.clone().unwrap();
    assert_eq!((live.deleted.len(), live.superseded_deletes), (0, 1));
    assert_eq!(call(&app, admin()).await.0, StatusCode::OK);
    assert_eq!(call(&app, get(&format!("/v1/items/{gone}"))).await.0, StatusCode::OK, "back with its new row");
}

#[actix_web::test]
async fn fields_updated_live_are_filtered_on_at_once_and_folded_into_the_next_build() {
    let root = tempfile::tempdir().unwrap();
    let state = live_state(root.path());
    let app = service(state.clone()).await;
    let (_, _, before) = call(&app, hybrid("camp stove")).await;
    let item = ids(&before)[0].clone();
    let old_category = before["hits"][0]["fields"]["category"].clone();
    let in_category = |category: &Value| {
        test::TestRequest::post()
            .uri("/v1/search")
            .insert_header(("authorization", format!("Bearer {SEARCH_KEY}")))
            .set_json(json!({"query": "camp stove", "k": 50, "filters": {"category": category}}))
    };
    let (_, _, unknown) = call(&app, in_category(&json!("live-sale"))).await;
    assert_eq!(ids(&unknown), Vec::<String>::new());
    assert_eq!(unknown["notes"], json!(["filters.category: no item has \"live-sale\""]), "{unknown}");
    let (_, _, old) = call(&app, in_category(&old_category)).await;
    assert!(ids(&old).contains(&item) && old.get("notes").is_none(), "{old}");
    let put = |key: &str, body: Value| {
        test::TestRequest::put()
            .uri(&format!("/v1/items/{item}/fields"))
            .insert_header(("authorization", format!("Bearer {key}")))
            .set_json(body)
    };
    // Read as a catalog file is: a boolean kept as its text, a null field absent, and so are
    // blank text and lists of none but blanks (a list's blank members dropped).
    let fields = json!({"category": "live-sale", "price": 1.5, "tags": ["clearance"], "instock": "true"});
    let sent = json!({
        "category": "live-sale", "price": 1.5, "tags": ["clearance", " "], "instock": true, "colour": null,
        "brand": "", "labels": [], "size": " "
    });
    assert_eq!(call(&app, put(SEARCH_KEY, json!({"fields": fields}))).await.0, StatusCode::FORBIDDEN);
    let (status, _, body) = call(&app, put(WRITE_KEY, json!({"fields": {"price": {"nested": 1}}}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("price"), "the field is named: {body}");
    let (status, _, body) = call(&app, put(WRITE_KEY, json!({"fields": sent}))).await;
    assert_eq!((status, body["updated"].as_str()), (StatusCode::OK, Some(item.as_str())), "{body}");

    let filtered = |query: &str| {
        test::TestRequest::post()
            .uri("/v1/search")
            .insert_header(("authorization", format!("Bearer {SEARCH_KEY}")))
            .set_json(json!({"query": query, "k": 10, "filters": {"category": "live-sale", "price": {"lt": 2}}}))
    };
    let (status, _, hits) = call(&app, filtered("camp stove")).await;
    assert_eq!((status, ids(&hits)), (StatusCode::OK, vec![item.clone()]), "{hits}");
    assert!(hits.get("notes").is_none(), "the value is held now: {hits}");
    // A typo of it is answered with the value written live as a close one (none before).
    let (_, _, typo) = call(&app, in_category(&json!("live-sael"))).await;
    let said = json!(["filters.category: no item has \"live-sael\"; close values: [\"live-sale\"]"]);
    assert_eq!(typo["notes"], said, "{typo}");
    // The stored value the item held is no longer its own: the index's answer is overridden.
    let (_, _, old) = call(&app, in_category(&old_category)).await;
    assert!(!ids(&old).contains(&item), "{old}");
    assert_eq!(hits["hits"][0]["fields"], fields);
    let (_, _, got) = call(&app, get(&format!("/v1/items/{item}"))).await;
    assert_eq!(got["fields"], fields, "{got}");
    let (_, headers, again) = call(&app, hybrid("camp stove")).await;
    assert_eq!(headers.get("x-cache").unwrap(), "miss");
    assert_eq!(again["hits"][0]["fields"], fields);
    // A field only a live write holds is counted, and listed among the fields there are.
    let (status, _, counted) = call(&app, search(json!({"query": "camp stove", "facets": ["instock"]}))).await;
    assert_eq!((status, &counted["facets"]["instock"]["hits"]), (StatusCode::OK, &json!(1)), "{counted}");
    let (status, _, typo) = call(&app, search(json!({"query": "camp stove", "facets": ["instok"]}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{typo}");
    assert!(typo["error"]["message"].as_str().unwrap().contains("\"instock\""), "{typo}");

    // Folded: the new generation stores the fields; the filter still finds the item.
    let summary = hyrank_indexer::build(&hyrank_tests::fixture_settings(root.path().to_path_buf())).unwrap();
    let live = summary.manifest.live.clone().unwrap();
    assert_eq!((live.updated, live.superseded_updates), (vec![item.clone()], 0));
    let admin = test::TestRequest::post().uri("/admin/reload").insert_header(("x-api-key", ADMIN_KEY));
    assert_eq!(call(&app, admin).await.0, StatusCode::OK);
    let engine = state.engine();
    let index = engine.index_of(&item).unwrap();
    assert_eq!(serde_json::to_value(engine.stored_item_at(index).unwrap().fields).unwrap(), fields);
    assert_eq!(ids(&call(&app, filtered("camp stove")).await.2), vec![item.clone()]);
    drop(engine);

    // Writes made against the folded row (catalog row + the first update) still apply at the
    // next builds: a second update wins over the first, and a delete holds.
    let newer = json!({"category": "live-sale", "price": 0.5});
    assert_eq!(call(&app, put(WRITE_KEY, json!({"fields": newer}))).await.0, StatusCode::OK);
    let summary = hyrank_indexer::build(&hyrank_tests::fixture_settings(root.path().to_path_buf())).unwrap();
    assert_eq!(summary.manifest.live.as_ref().unwrap().superseded_updates, 0);
    let reload = || test::TestRequest::post().uri("/admin/reload").insert_header(("x-api-key", ADMIN_KEY));
    assert_eq!(call(&app, reload()).await.0, StatusCode::OK);
    let stored = state.engine().stored_item_at(index).unwrap().fields;
    assert_eq!(serde_json::to_value(stored).unwrap(), newer, "the latest update, not the first");
    let delete = test::TestRequest::delete()
        .uri(&format!("/v1/items/{item}"))
        .insert_header(("authorization", format!("Bearer {WRITE_KEY}")));
    assert_eq!(call(&app, delete).await.0, StatusCode::OK);
    let summary = hyrank_indexer::build(&hyrank_tests::fixture_settings(root.path().to_path_buf())).unwrap();
    let live = summary.manifest.live.unwrap();
    assert_eq!((live.deleted, live.superseded_deletes), (vec![item.clone()], 0));
    assert_eq!(call(&app, reload()).await.0, StatusCode::OK);
    assert_eq!(call(&app, get(&format!("/v1/items/{item}"))).await.0, StatusCode::NOT_FOUND);
}

fn put_item(key: &str, id: &str, body: Value) -> test::TestRequest {
    test::TestRequest::put()
        .uri(&format!("/v1/items/{id}"))
        .insert_header(("authorization", format!("Bearer {key}")))
        .set_json(body)
}

fn search(body: Value) -> test::TestRequest {
    test::TestRequest::post()
        .uri("/v1/search")
        .insert_header(("authorization", format!("Bearer {SEARCH_KEY}")))
        .set_json(body)
}

/// Under `linear_floor`, the dense list is measured from the query's mean cosine over the items
/// a request can reach, which every write changes. With every reachable item listed (k and
/// candidates past the catalog, through the engine: the server caps k at 100), the floor read
/// back from the breakdown must be the mean of the listed raw scores; returns how many were
/// listed.
fn assert_dense_floor_is_the_reachable_mean(state: &hyrank_api::AppState) -> usize {
    use hyrank_engine::fusion::Fusion;
    use hyrank_engine::request::{Mode, SearchRequest};
    let request = SearchRequest {
        mode: Mode::Dense,
        k: 1000,
        candidates: Some(1000),
        fusion: Fusion::LinearFloor,
        ..SearchRequest::new("titanium spork for camp meals")
    };
    let hits = state.engine().search(&request).unwrap().hits;
    let dense: Vec<(f64, f64)> = hits
        .iter()
        .map(|hit| &hit.breakdown.retrievers[0])
        .map(|part| (f64::from(part.raw_score), part.contribution))
        .collect();
    let mean = dense.iter().map(|(raw, _)| raw).sum::<f64>() / dense.len() as f64;
    let floors = crate::floors_read_back(&dense);
    assert!(floors.len() > 10, "{dense:?}");
    for floor in floors {
        assert!(
            (floor - mean).abs() < 1e-4,
            "floor {floor}, mean cosine of the {} reachable items {mean}",
            dense.len()
        );
    }
    dense.len()
}

#[actix_web::test]
async fn an_item_put_live_is_found_at_once_by_every_retriever_and_folded_into_the_next_build() {
    let root = tempfile::tempdir().unwrap();
    let state = live_state(root.path());
    let app = service(state.clone()).await;
    assert_eq!(assert_dense_floor_is_the_reachable_mean(&state), 320);
    let spork = json!({
        "title": "Zorblax Titanium Spork",
        "text": "An ultralight titanium spork with a long handle for eating from freeze-dried meal pouches.",
        "fields": {"category": "kitchen", "price": 12.5}
    });
    assert_eq!(call(&app, put_item(SEARCH_KEY, "LIVE-1", spork.clone())).await.0, StatusCode::FORBIDDEN);
    for (bad, field) in [
        (json!({"title": " ", "text": ""}), "title/text: an item needs a title or a text; both are empty"),
        (json!({"title": "x", "price": 3}), "price"),
        (json!({"title": "x", "fields": {"price": {"nested": 1}}}), "fields"),
    ] {
        let (status, _, body) = call(&app, put_item(WRITE_KEY, "LIVE-1", bad)).await;
        assert!(status.is_client_error() && body.to_string().contains(field), "{status} {body}");
    }
    // The id follows the catalog's rule (padding, control characters, length).
    for (id, why) in [("%20LIVE-1", "(U+0020) at its start or end"), ("LIVE%0A1", "U+000A")] {
        let (status, _, body) = call(&app, put_item(WRITE_KEY, id, spork.clone())).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_request"))
        );
        assert!(body["error"]["message"].as_str().unwrap().contains(why), "{id}: {body}");
    }
    // Fields are read as the catalog types them: the fixture's price is a number.
    let worded = json!({"title": "Zorblax", "fields": {"price": "cheap"}});
    let (status, _, body) = call(&app, put_item(WRITE_KEY, "LIVE-1", worded)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_request")));
    assert!(body["error"]["message"].as_str().unwrap().starts_with("fields.price: this catalog's price is a number"));
    let (status, _, body) = call(&app, put_item(WRITE_KEY, "LIVE-1", spork.clone())).await;
    assert_eq!(
        (status, body["created"].as_bool(), body["seq"].as_u64()),
        (StatusCode::OK, Some(true), Some(1)),
        "{body}"
    );

    // Found by id, by BM25 (a word no stored item has), by dense search on its own text, by a
    // filter on its fields, and as a similar-items seed.
    let (status, _, got) = call(&app, get("/v1/items/LIVE-1")).await;
    assert_eq!((status, got["title"].as_str()), (StatusCode::OK, Some("Zorblax Titanium Spork")));
    assert_eq!(assert_dense_floor_is_the_reachable_mean(&state), 321, "the live row joins the floor");
    let (_, _, health) = call(&app, get("/healthz")).await;
    assert_eq!((health["items"].as_u64(), health["visible_items"].as_u64()), (Some(320), Some(321)), "{health}");
    let (_, _, bm25) = call(&app, search(json!({"query": "zorblax", "mode": "bm25", "k": 5, "explain": true}))).await;
    assert_eq!(ids(&bm25), vec!["LIVE-1"], "{bm25}");
    assert!(bm25["hits"][0]["score"].as_f64().unwrap().is_finite());
    assert!(bm25["hits"][0]["explanations"].to_string().contains("idf"), "{bm25}");
    let text = "Titanium spork with a long handle for eating from freeze-dried meal pouches";
    let (_, _, dense) = call(&app, search(json!({"query": text, "mode": "dense", "k": 3}))).await;
    assert_eq!(ids(&dense)[0], "LIVE-1", "{dense}");
    let (_, _, hybrid_hits) =
        call(&app, search(json!({"query": text, "k": 3, "filters": {"category": "kitchen"}}))).await;
    assert_eq!(ids(&hybrid_hits)[0], "LIVE-1", "{hybrid_hits}");
    let (status, _, similar) = call(&app, get("/v1/items/LIVE-1/similar?k=5")).await;
    assert_eq!(status, StatusCode::OK, "{similar}");
    assert!(!ids(&similar).contains(&"LIVE-1".to_string()) && ids(&similar).len() == 5);
    // As a neighbour: CF has no factors for it, so under `share` (POST similar's default) its
    // weight goes to content, and under `ignore` the live item goes without.
    let similar_to = |seed: &str, cold: &str, offset: usize| {
        test::TestRequest::post()
            .uri("/v1/similar")
            .insert_header(("authorization", format!("Bearer {SEARCH_KEY}")))
            .set_json(json!({"item": seed, "k": 100, "offset": offset, "cold_items": cold}))
    };
    let live_hit = |body: &Value| body["hits"].as_array().unwrap().iter().find(|h| h["id"] == "LIVE-1").cloned();
    let mut seen_both = false;
    for seed in ids(&similar) {
        let (_, _, shared) = call(&app, similar_to(&seed, "share", 0)).await;
        let Some(shared) = live_hit(&shared).filter(|h| h["breakdown"]["abstained"] == json!(["cf"])) else { continue };
        // Without CF's share it ranks lower: past the first page, maybe.
        let (mut ignored, mut offset) = (None, 0);
        while ignored.is_none() && offset < 300 {
            let (status, _, page) = call(&app, similar_to(&seed, "ignore", offset)).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            ignored = live_hit(&page);
            offset += 100;
        }
        let ignored = ignored.expect("the same content list holds it");
        assert!(ignored["breakdown"].get("abstained").is_none(), "{ignored}");
        assert!(ignored["score"].as_f64() < shared["score"].as_f64(), "{ignored} {shared}");
        seen_both = true;
        break;
    }
    assert!(seen_both, "a warm neighbour of LIVE-1 lists it with CF abstaining: {similar}");
    // Events may name it; a user who interacted with it is not recommended it again.
    let (status, _, body) =
        call(&app, events(json!({"events": [{"user": "u001", "item": "LIVE-1", "weight": 3}]}), Some(WRITE_KEY))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, recommended) = call(&app, recommend("u001")).await;
    assert_eq!(status, StatusCode::OK, "{recommended}");
    assert!(!ids(&recommended).contains(&"LIVE-1".to_string()));

    // Replacing a stored item: one row for the id, the new one, in every list.
    let (_, _, before) = call(&app, hybrid("camp stove")).await;
    let stove = ids(&before)[0].clone();
    let replacement = json!({"title": "Zorblax Camp Stove", "text": "A canister stove, relabelled.", "fields": {"category": "stoves", "price": "49.5"}});
    let similar_to_stove = format!("/v1/items/{stove}/similar?k=10");
    let cf_in = |body: &Value| {
        let hits = body["hits"].as_array().unwrap();
        hits.iter().any(|h| h["breakdown"]["retrievers"].as_array().unwrap().iter().any(|r| r["retriever"] == "cf"))
    };
    let (_, _, similar) = call(&app, get(&similar_to_stove)).await;
    assert!(cf_in(&similar), "the stove has CF neighbours: {similar}");
    let (status, _, body) = call(&app, put_item(WRITE_KEY, &stove, replacement)).await;
    assert_eq!((status, body["created"].as_bool()), (StatusCode::OK, Some(false)), "{body}");
    // CF reads the new row as the stored one it replaced: the neighbours stay until a build.
    let (_, _, similar) = call(&app, get(&similar_to_stove)).await;
    assert!(cf_in(&similar), "{similar}");
    assert!(!ids(&similar).contains(&stove), "{similar}");
    let (_, _, replaced) = call(&app, get(&format!("/v1/items/{stove}"))).await;
    assert_eq!(
        (&replaced["title"], &replaced["fields"]["price"]),
        (&json!("Zorblax Camp Stove"), &json!(49.5)),
        "{replaced}"
    );
    let (_, _, both) = call(&app, search(json!({"query": "zorblax", "mode": "bm25", "k": 10}))).await;
    let mut found = ids(&both);
    found.sort();
    let mut both_ids = vec![stove.clone(), "LIVE-1".to_string()];
    both_ids.sort();
    assert_eq!(found, both_ids, "{both}");
    let (_, _, stoves) = call(&app, hybrid("camp stove")).await;
    assert_eq!(ids(&stoves).iter().filter(|id| **id == stove).count(), 1, "the replaced row is hidden");
    assert_eq!(assert_dense_floor_is_the_reachable_mean(&state), 321, "the replaced row leaves the floor");
    // Replaced again, deleted, created again: the id names its latest row only.
    let v2 = json!({"title": "Zorblax Spork v2", "text": "Now in orange."});
    assert_eq!(call(&app, put_item(WRITE_KEY, "LIVE-1", v2)).await.2["created"], false);
    let delete = test::TestRequest::delete()
        .uri("/v1/items/LIVE-1")
        .insert_header(("authorization", format!("Bearer {WRITE_KEY}")));
    assert_eq!(call(&app, delete).await.0, StatusCode::OK);
    assert_eq!(call(&app, get("/v1/items/LIVE-1")).await.0, StatusCode::NOT_FOUND);
    let (_, _, after_delete) = call(&app, search(json!({"query": "zorblax", "mode": "bm25", "k": 10}))).await;
    assert_eq!(ids(&after_delete), vec![stove.clone()]);
    assert_eq!(assert_dense_floor_is_the_reachable_mean(&state), 320, "and so does a deleted one");
    let v3 = json!({"title": "Zorblax Spork v3", "text": "Back in stock.", "fields": {"category": "kitchen"}});
    assert_eq!(call(&app, put_item(WRITE_KEY, "LIVE-1", v3)).await.2["created"], true);
    let (_, _, index) = call(&app, get("/v1/index")).await;
    assert_eq!(index["live"]["put_items"], 4, "{index}");

    // A restart replays the log: the same rows, without running the model for them again.
    drop(app);
    drop(state);
    let state = reopened_state(root.path());
    let app = service(state.clone()).await;
    assert_eq!(call(&app, get("/v1/items/LIVE-1")).await.2["title"], "Zorblax Spork v3");
    assert_eq!(call(&app, get(&format!("/v1/items/{stove}"))).await.2["title"], "Zorblax Camp Stove");
    let (_, _, replayed) = call(&app, search(json!({"query": "zorblax spork", "mode": "bm25", "k": 10}))).await;
    assert_eq!(ids(&replayed)[0], "LIVE-1", "{replayed}");

    // Folded: the catalog gains the created item and the replaced row; the server then has
    // no live rows on top of the new generation, and finds both as before.
    let summary = hyrank_indexer::build(&hyrank_tests::fixture_settings(root.path().to_path_buf())).unwrap();
    let live = summary.manifest.live.clone().unwrap();
    assert_eq!((live.created, live.replaced, live.superseded_puts), (1, 1, 0), "{live:?}");
    let shown = summary.render();
    assert!(shown.contains("items put live: 1 created, 1 replacing their catalog row"), "{shown}");
    assert!(live.deleted.is_empty(), "LIVE-1 was created again after its delete: {live:?}");
    assert_eq!(summary.manifest.counts.items, 321);
    let carried = std::fs::read_to_string(summary.dir.join("live.jsonl")).unwrap();
    assert!(carried.contains("\"put_item\":\"LIVE-1\"") && carried.contains("\"embedding\":[]"), "{carried}");
    let admin = test::TestRequest::post().uri("/admin/reload").insert_header(("x-api-key", ADMIN_KEY));
    assert_eq!(call(&app, admin).await.0, StatusCode::OK);
    let engine = state.engine();
    assert_eq!((engine.len(), engine.live_item_rows()), (321, 0));
    drop(engine);
    assert_eq!(call(&app, get("/v1/items/LIVE-1")).await.2["title"], "Zorblax Spork v3");
    let (_, _, folded) = call(&app, search(json!({"query": "zorblax", "mode": "bm25", "k": 10}))).await;
    let mut found = ids(&folded);
    found.sort();
    assert_eq!(found, both_ids, "{folded}");
    // The user's event on the live item was folded in as an interaction on the new row.
    let (_, _, after_fold) = call(&app, recommend("u001")).await;
    assert!(!ids(&after_fold).contains(&"LIVE-1".to_string()));

    // The catalog team changes the replaced item's row: its put no longer applies.
    let settings = catalog_with_changed_title(root.path(), &stove, "catalog edition");
    let live = hyrank_indexer::build(&settings).unwrap().manifest.live.unwrap();
    assert_eq!((live.created, live.replaced, live.superseded_puts), (1, 0, 1), "{live:?}");
}

/// A rebuild takes the vector of an item put live from the log, where the server embedded it
/// as the build would (same weights, precision and token limit), instead of running the model
/// for it again; a put without that proof is embedded again. Made visible with a marker vector
/// no model gives: the build keeps it only where it trusts the log.
#[actix_web::test]
async fn a_rebuild_takes_the_vectors_of_items_put_live_only_where_embedded_as_it_would() {
    use hyrank_engine::live::ItemPut;
    let root = tempfile::tempdir().unwrap();
    let state = live_state(root.path());
    let engine = state.engine();
    let embedder = engine.embedder().clone();
    let dim = embedder.dim();
    let marker: Vec<f32> = (0..dim).map(|i| if i == 0 { 1.0 } else { 0.0 }).collect();
    let put = |id: &str, max_tokens: Option<usize>| ItemPut {
        put_item: id.into(),
        item_hash: String::new(),
        item: hyrank_engine::Item {
            id: id.into(),
            title: format!("Marker {id}"),
            text: "A lantern made to be found.".into(),
            fields: Default::default(),
        },
        embedding: marker.clone(),
        model_sha256: embedder.identity().sha256.clone(),
        precision: embedder.precision().name().into(),
        max_tokens,
    };
    let log = engine.live().unwrap();
    log.put_item(put("NEW-1", Some(embedder.max_tokens()))).unwrap();
    log.put_item(put("NEW-2", None)).unwrap();
    drop(engine);
    drop(state);

    let summary = hyrank_indexer::build(&hyrank_tests::fixture_settings(root.path().to_path_buf())).unwrap();
    assert_eq!(summary.manifest.live.as_ref().unwrap().created, 2);
    let built = hyrank_engine::Engine::open(root.path(), &hyrank_tests::embedder_settings()).unwrap();
    let rows = hyrank_engine::dense::read_f32_file(&summary.dir.join("dense.vectors"), dim).unwrap();
    let row = |id: &str| {
        let index = built.index_of(id).unwrap() as usize;
        rows[index * dim..(index + 1) * dim].to_vec()
    };
    assert_eq!(row("NEW-1"), marker, "taken from the log");
    let embedded = row("NEW-2");
    assert!(embedded[0] < 0.9, "a put without its token limit is embedded again: {:?}", &embedded[..4]);
    let norm: f32 = embedded.iter().map(|v| v * v).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-3, "{norm}");

    // A put is taken only for the text the build ends up with, and never displaces a vector
    // already there for that text: NEW-1's row changed in the catalog since its put (the
    // put's marker is for the old text), and a catalog item the previous generation holds
    // keeps its vector beside a stale put of its id.
    use hyrank_indexer::shards::ShardVectors;
    let logged = hyrank_engine::live::read_history(root.path(), None).unwrap();
    let mut items: Vec<hyrank_engine::Item> =
        (0..built.item_ids().len() as u32).map(|i| built.item_at(i).unwrap()).collect();
    let new_1 = items.iter_mut().find(|item| item.id == "NEW-1").unwrap();
    new_1.text = "A lantern, second edition.".into();
    let stored = items.iter().find(|item| item.id != "NEW-1" && item.id != "NEW-2").unwrap().clone();
    let mut stale = put(&stored.id, Some(embedder.max_tokens()));
    stale.item.text = "Not the stored text.".into();
    let mut with_stale = logged.clone();
    let mut record = with_stale[0].clone();
    record.record = hyrank_engine::live::Record::Put(Box::new(stale));
    with_stale.push(record);
    let mut vectors = ShardVectors::from_generation(&summary.dir, &embedder).unwrap().unwrap();
    let before = vectors.get(&stored.id, &stored.content()).unwrap().0.to_vec();
    assert_eq!(vectors.add_live_puts(&with_stale, &embedder, &items), 0);
    let after = vectors.get(&stored.id, &stored.content()).unwrap();
    assert_eq!(after, (before.as_slice(), hyrank_indexer::shards::Origin::Generation));
    assert!(vectors.get("NEW-1", &items.iter().find(|i| i.id == "NEW-1").unwrap().content()).is_none());
}

/// The values of every explanation leaf labelled `label` in a response.
fn leaves(body: &Value, label: &str) -> Vec<f64> {
    let mut values = Vec::new();
    let mut stack = vec![body];
    while let Some(node) = stack.pop() {
        match node {
            Value::Object(map) => {
                if map.get("label").and_then(Value::as_str) == Some(label) {
                    values.extend(map.get("value").and_then(Value::as_f64));
                }
                stack.extend(map.values());
            }
            Value::Array(list) => stack.extend(list),
            _ => {}
        }
    }
    values
}

/// BM25 reads its statistics over the rows a request can find, as a build of them would
/// (docs/SERVICE.md): saving an item again and again leaves its score where the first save put
/// it (each save used to add a document to n and N, and the score fell with every one), and
/// a delete takes its row out of N.
#[actix_web::test]
async fn saving_an_item_again_leaves_bm25_as_a_build_of_the_visible_rows_would() {
    let root = tempfile::tempdir().unwrap();
    let state = live_state(root.path());
    let app = service(state.clone()).await;
    let query = json!({"query": "gorpcore", "mode": "bm25", "k": 5, "explain": true});
    let visible = || async {
        let (_, _, health) = call(&app, get("/healthz")).await;
        health["visible_items"].as_f64().unwrap()
    };
    let mut first = None;
    for save in 0..7 {
        let item = json!({"title": "Gorpcore anorak", "text": format!("A gorpcore anorak, price revision {save}.")});
        assert_eq!(call(&app, put_item(WRITE_KEY, "GORP-1", item)).await.0, StatusCode::OK);
        let (_, _, body) = call(&app, search(query.clone())).await;
        assert_eq!(ids(&body), vec!["GORP-1"], "{body}");
        let score = body["hits"][0]["score"].as_f64().unwrap();
        let first = *first.get_or_insert(score);
        assert!((score - first).abs() < 1e-5, "save {save}: {score}, the first save's {first}");
        let n = leaves(&body, "n, number of docs containing this term");
        assert!(!n.is_empty() && n.iter().all(|&n| n == 1.0), "save {save}: n {n:?}");
        assert_eq!(leaves(&body, "N, total number of docs"), vec![visible().await; n.len()], "save {save}");
    }
    let (_, _, before) = call(&app, hybrid("camp stove")).await;
    let delete = test::TestRequest::delete()
        .uri(&format!("/v1/items/{}", ids(&before)[0]))
        .insert_header(("authorization", format!("Bearer {WRITE_KEY}")));
    assert_eq!(call(&app, delete).await.0, StatusCode::OK);
    let (_, _, body) = call(&app, search(query)).await;
    let total = leaves(&body, "N, total number of docs");
    assert_eq!(total[0], visible().await, "{body}");
    assert_eq!(total[0], 320.0, "320 built, one put (seven times), one deleted");
}

/// A put an older server logged with blank field values (before they were no value) is folded
/// by the next build as the catalog's rows are read: the blanks are no value. A field only
/// such a put had, with no type from any row, made the build panic.
#[actix_web::test]
async fn a_logged_put_with_blank_values_is_folded_without_them() {
    use hyrank_engine::Engine;
    let root = tempfile::tempdir().unwrap();
    let state = live_state(root.path());
    let fields = json!({"labels": [], "brand": " ", "tags": ["", "winter"], "category": "tents"});
    let item = hyrank_engine::Item {
        id: "OLD-1".into(),
        title: "Winter tent".into(),
        text: String::new(),
        fields: serde_json::from_value(fields).unwrap(),
    };
    let (_, applied) = state.engine().put_live_item(item, String::new()).unwrap();
    assert!(applied);
    let summary = hyrank_indexer::build(&hyrank_tests::fixture_settings(root.path().to_path_buf())).unwrap();
    assert!(!summary.manifest.field_types.contains_key("labels"), "{:?}", summary.manifest.field_types);
    let engine = Engine::open(root.path(), &hyrank_tests::embedder_settings()).unwrap();
    let stored = engine.stored_item_at(engine.index_of("OLD-1").unwrap()).unwrap();
    assert_eq!(serde_json::to_value(stored.fields).unwrap(), json!({"tags": ["winter"], "category": "tents"}));
}

/// A write an older server logged against a catalog row that holds blank values (read with
/// them before 2026-12-06) still applies at the next build, which reads the row without them:
/// the build knows the row's hash as the older reading had it (`Catalog::legacy_hashes`).
/// Without that, the delete below was counted as superseded and the item came back.
#[actix_web::test]
async fn a_write_logged_against_a_row_with_blank_values_still_applies_after_the_upgrade() {
    use hyrank_engine::live::{item_hash, EventLog};
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog.jsonl");
    let rows = [
        json!({"id": "A", "title": "Anorak", "fields": {"brand": "", "tags": ["x", ""], "category": "c"}}),
        json!({"id": "B", "title": "Boots", "fields": {"brand": "Acme", "tags": ["y"], "category": "d"}}),
    ];
    std::fs::write(&catalog, rows.map(|r| r.to_string()).join("\n")).unwrap();
    let settings = hyrank_indexer::IndexSettings {
        progress: false,
        ..hyrank_indexer::IndexSettings::new(catalog, dir.path().join("index"), hyrank_tests::embedder_settings())
    };
    let built = hyrank_indexer::build(&settings).unwrap();
    // Row A as the older reading stored it, and the hash its server logged a delete with.
    let older = hyrank_engine::Item {
        id: "A".into(),
        title: "Anorak".into(),
        text: String::new(),
        fields: serde_json::from_value(json!({"brand": "", "tags": ["x", ""], "category": "c"})).unwrap(),
    };
    let log = EventLog::open(&settings.index_dir, built.manifest.live_folded_through()).unwrap();
    log.delete_item("A", item_hash(&older)).unwrap();
    drop(log);
    let rebuilt = hyrank_indexer::build(&settings).unwrap();
    let live = rebuilt.manifest.live.unwrap();
    assert_eq!((live.deleted, live.superseded_deletes), (vec!["A".to_string()], 0));
}

/// A history item replaced by a put is named in a recommendation's explanation by the title it
/// has now, in the CF tree as in the content tree (CF named the stored row's old title).
#[actix_web::test]
async fn an_explanation_names_a_replaced_history_item_by_its_title_now() {
    let root = tempfile::tempdir().unwrap();
    let app = service(live_state(root.path())).await;
    let (_, _, old) = call(&app, get("/v1/items/SLP-009")).await;
    let old_title = old["title"].as_str().unwrap().to_string();
    let item = json!({"title": format!("{old_title} (2027 edition)"), "text": old["text"], "fields": old["fields"]});
    assert_eq!(call(&app, put_item(WRITE_KEY, "SLP-009", item)).await.0, StatusCode::OK);
    let event = json!({"events": [{"user": "solo1", "item": "SLP-009"}]});
    assert_eq!(call(&app, events(event, Some(WRITE_KEY))).await.0, StatusCode::OK);
    let request = test::TestRequest::post()
        .uri("/v1/recommend")
        .insert_header(("authorization", format!("Bearer {SEARCH_KEY}")))
        .set_json(json!({"user": "solo1", "k": 3, "explain": true}));
    let (status, _, body) = call(&app, request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let text = body.to_string();
    let named = |title: &str| format!("SLP-009 “{title}”");
    assert!(text.contains(&named(&format!("{old_title} (2027 edition)"))), "{text}");
    assert!(!text.contains(&named(&old_title)), "the old title is named: {text}");
}

/// A live write's field names follow the catalog's rule (`field_name_problem`): an empty name
/// or one holding a control character is refused, naming it, and nothing is written.
#[actix_web::test]
async fn a_field_name_the_catalog_would_refuse_is_refused_live() {
    let root = tempfile::tempdir().unwrap();
    let state = live_state(root.path());
    let app = service(state.clone()).await;
    let put = put_item(WRITE_KEY, "LIVE-9", json!({"title": "Stove", "fields": {"": 1}}));
    let (status, _, body) = call(&app, put).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_request")));
    assert!(body["error"]["message"].as_str().unwrap().starts_with("fields.: field name is empty"), "{body}");
    let update = test::TestRequest::put()
        .uri("/v1/items/TNT-001/fields")
        .insert_header(("authorization", format!("Bearer {WRITE_KEY}")))
        .set_json(json!({"fields": {"brand\u{0}": "x"}}));
    let (status, _, body) = call(&app, update).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("fields.brand\\0: field name"), "{body}");
    assert_eq!(call(&app, get("/v1/items/LIVE-9")).await.0, StatusCode::NOT_FOUND, "nothing was written");
}
