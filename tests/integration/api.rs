//! Every endpoint, served in process by the same `configure` the binary uses, checked on content.

use std::collections::HashSet;

use actix_web::{http::StatusCode, test, App};
use hyrank_api::{configure, AppState};
use serde_json::{json, Value};

/// Builds the app on the shared fixture index. The engine is shared through an `Arc`, so this
/// wraps it in a fresh `AppState` without reopening anything.
async fn app(
) -> impl actix_web::dev::Service<actix_http::Request, Response = actix_web::dev::ServiceResponse, Error = actix_web::Error>
{
    let state = AppState::from_arc(std::sync::Arc::clone(&crate::indexed().engine));
    test::init_service(App::new().configure(configure(state))).await
}

pub(crate) async fn post(path: &str, body: Value) -> (StatusCode, Value) {
    let app = app().await;
    let response = test::call_service(&app, test::TestRequest::post().uri(path).set_json(body).to_request()).await;
    let status = response.status();
    (status, test::read_body_json(response).await)
}

pub(crate) async fn get(path: &str) -> (StatusCode, Value) {
    let app = app().await;
    let response = test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
    let status = response.status();
    (status, test::read_body_json(response).await)
}

pub(crate) fn catalog() -> Vec<Value> {
    std::fs::read_to_string(hyrank_tests::fixture("catalog.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub(crate) fn ids(body: &Value) -> Vec<String> {
    body["hits"].as_array().unwrap().iter().map(|h| h["id"].as_str().unwrap().to_string()).collect()
}

/// final = Σ retriever contributions + rerank contribution, and `score` equals it.
pub(crate) fn assert_breakdowns_compose(body: &Value) {
    for hit in body["hits"].as_array().unwrap() {
        let b = &hit["breakdown"];
        let fused: f64 = b["retrievers"].as_array().unwrap().iter().map(|r| r["contribution"].as_f64().unwrap()).sum();
        assert!((fused - b["fused_score"].as_f64().unwrap()).abs() < 1e-9, "{hit}");
        let rerank = b.get("rerank").map_or(0.0, |r| r["contribution"].as_f64().unwrap());
        assert!((fused + rerank - b["final_score"].as_f64().unwrap()).abs() < 1e-9, "{hit}");
        assert!((hit["score"].as_f64().unwrap() - b["final_score"].as_f64().unwrap()).abs() < 1e-12);
    }
    let scores: Vec<f64> = body["hits"].as_array().unwrap().iter().map(|h| h["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "not sorted: {scores:?}");
}

#[actix_web::test]
async fn an_exact_title_query_returns_that_item_first_in_every_mode() {
    let items = catalog();
    for item in items.iter().step_by(37) {
        let title = item["title"].as_str().unwrap();
        for mode in ["hybrid", "bm25"] {
            let (status, body) = post("/v1/search", json!({"query": title, "mode": mode, "k": 5})).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(ids(&body)[0], item["id"].as_str().unwrap(), "{mode} for {title:?}: {body}");
            assert_breakdowns_compose(&body);
        }
    }
}

#[actix_web::test]
async fn hybrid_breakdown_shows_both_retrievers_and_both_fusions_compose() {
    let (status, body) = post("/v1/search", json!({"query": "waterproof boots for wet rock", "k": 10})).await;
    assert_eq!(status, StatusCode::OK);
    let kinds: HashSet<String> = body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| {
            h["breakdown"]["retrievers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["retriever"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(kinds, HashSet::from(["bm25".to_string(), "dense".to_string()]));
    assert_eq!(body["hits"][0]["breakdown"]["fusion"], "linear", "search fuses linearly by default");
    assert_breakdowns_compose(&body);
    let (status, body) =
        post("/v1/search", json!({"query": "waterproof boots for wet rock", "fusion": {"method": "rrf", "k": 60}}))
            .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["hits"][0]["breakdown"]["fusion"], "rrf");
    assert_breakdowns_compose(&body);
    let (status, body) = post("/v1/search", json!({"query": "waterproof boots for wet rock", "fusion": {"method": "linear"}, "weights": {"bm25": 0.3, "dense": 0.7}})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["hits"][0]["breakdown"]["fusion"], "linear");
    assert_breakdowns_compose(&body);
    let max = body["hits"][0]["score"].as_f64().unwrap();
    assert!(max <= 1.0 + 1e-9, "linear scores are bounded by the weight sum: {max}");
    assert!(body.get("notes").is_none(), "{body}");
    // Every list weighing 0 is a valid request whose order is no ranking: it says so.
    for fusion in ["linear", "rrf"] {
        let request =
            json!({"query": "waterproof boots", "fusion": {"method": fusion}, "weights": {"bm25": 0, "dense": 0}});
        let (status, body) = post("/v1/search", request).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body["hits"].as_array().unwrap().iter().all(|h| h["score"] == 0.0), "{body}");
        assert!(body["notes"][0].as_str().unwrap().starts_with("weights: every list that ran weighs 0"), "{body}");
    }
}

/// `(raw score, contribution)` of `retriever` in each hit that holds it, in hit order.
fn parts(body: &Value, retriever: &str) -> Vec<(f64, f64)> {
    body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| h["breakdown"]["retrievers"].as_array().unwrap().iter())
        .filter(|r| r["retriever"] == retriever)
        .map(|r| (r["raw_score"].as_f64().unwrap(), r["contribution"].as_f64().unwrap()))
        .collect()
}

#[actix_web::test]
async fn linear_floor_measures_bm25_from_0_and_dense_from_a_floor_below_its_list() {
    let query = "waterproof boots for wet rock";
    let request = |mode: &str| json!({"query": query, "mode": mode, "k": 50, "candidates": 50, "fusion": {"method": "linear_floor"}});
    // BM25 alone: each contribution is raw / best (its floor is 0), not (raw - min) / (best - min).
    let (status, body) = post("/v1/search", request("bm25")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // One list: fusion cannot change its order, but its contributions are the method's, and
    // the breakdown names the method (it said "single" once, which left 1/61 unexplained).
    assert_eq!(body["hits"][0]["breakdown"]["fusion"], "linear_floor");
    let bm25 = parts(&body, "bm25");
    let (best, weight) = bm25[0];
    assert!(bm25.len() > 3 && bm25.last().unwrap().1 > 0.0, "the last BM25 hit still counts: {bm25:?}");
    for (raw, contribution) in &bm25 {
        assert!((contribution / weight - raw / best).abs() < 1e-6, "{raw} of {best} gave {contribution}");
    }
    // Dense alone: (raw - floor) / (best - floor) with one floor for the whole list, the
    // catalog's mean cosine to the query, which sits below the list's lowest member here (the
    // 50th of 50 candidates, where min-max would put it).
    let (status, body) = post("/v1/search", request("dense")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let dense = parts(&body, "dense");
    let floors = crate::floors_read_back(&dense);
    assert!(floors.len() > 3, "{dense:?}");
    for floor in &floors {
        assert!((floor - floors[0]).abs() < 1e-3, "one floor per list: {floors:?}");
    }
    let lowest = dense.last().unwrap().0;
    assert!(floors[0] < lowest - 1e-3, "min-max would put the floor at the lowest member, {lowest}: {floors:?}");
    assert_breakdowns_compose(&body);
    let (status, body) = post("/v1/search", request("hybrid")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["hits"][0]["breakdown"]["fusion"], "linear_floor");
    // RRF over one list: each contribution is weight / (60 + rank), and the breakdown says RRF.
    let rrf = json!({"query": query, "mode": "dense", "k": 5, "fusion": {"method": "rrf", "k": 60}});
    let (status, body) = post("/v1/search", rrf).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for hit in body["hits"].as_array().unwrap() {
        let part = &hit["breakdown"]["retrievers"][0];
        assert_eq!(hit["breakdown"]["fusion"], "rrf");
        let rank = part["rank"].as_f64().unwrap();
        assert!((part["contribution"].as_f64().unwrap() - 1.0 / (60.0 + rank)).abs() < 1e-12, "{hit}");
    }
    assert_breakdowns_compose(&body);
    // The same method reaches similar items through the query string.
    let id = catalog()[0]["id"].as_str().unwrap().to_string();
    let (status, body) = get(&format!("/v1/items/{id}/similar?k=5&fusion=linear_floor")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["hits"][0]["breakdown"]["fusion"], "linear_floor");
    assert_breakdowns_compose(&body);
}

#[actix_web::test]
async fn dense_mode_finds_by_meaning_without_shared_words() {
    // No fixture text says "sharp"; the kitchen knives should still come first.
    let (status, body) =
        post("/v1/search", json!({"query": "a very sharp blade for slicing vegetables", "mode": "dense", "k": 5}))
            .await;
    assert_eq!(status, StatusCode::OK);
    for hit in body["hits"].as_array().unwrap() {
        assert_eq!(hit["fields"]["category"], "chef knives", "{body}");
    }
}

#[actix_web::test]
async fn filters_restrict_every_retriever() {
    let (status, body) = post(
        "/v1/search",
        json!({
            "query": "lightweight", "k": 20,
            "filters": {"category": "tents", "price": {"lt": 400}}
        }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let hits = body["hits"].as_array().unwrap();
    assert!(!hits.is_empty());
    for hit in hits {
        assert_eq!(hit["fields"]["category"], "tents");
        assert!(hit["fields"]["price"].as_f64().unwrap() < 400.0);
    }
}

#[actix_web::test]
async fn a_filter_value_no_item_has_is_answered_with_a_note_naming_close_values() {
    let (status, body) =
        post("/v1/search", json!({"query": "lightweight", "k": 5, "filters": {"category": ["Tents", "tents"]}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!body["hits"].as_array().unwrap().is_empty());
    assert_eq!(body["notes"], json!(["filters.category: no item has \"Tents\"; close values: [\"tents\"]"]));
    assert!(body["timings"]["filter_ms"].as_f64().unwrap() > 0.0, "{body}");
    let (status, body) = post("/v1/search", json!({"query": "lightweight", "filters": {"price": {"gt": 1e9}}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["hits"], json!([]));
    let note = body["notes"][0].as_str().unwrap();
    assert!(note.starts_with("filters.price: no item's value meets this condition (its numbers run from "), "{note}");
    let (_, body) = post("/v1/search", json!({"query": "lightweight"})).await;
    assert!(body.get("notes").is_none() && body["timings"]["filter_ms"] == 0.0, "{body}");
    // Thousands of unknown strings are answered with a bounded list of notes.
    let unknown: Vec<String> = (0..2000).map(|i| format!("x{i}")).collect();
    let (status, body) = post("/v1/search", json!({"query": "tent", "filters": {"category": unknown}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let notes = body["notes"].as_array().unwrap();
    assert_eq!((notes.len(), notes[10].as_str()), (11, Some("and 1990 more conditions no item meets")), "{body}");
}

#[actix_web::test]
async fn exclude_leaves_out_items_meeting_any_condition_in_every_question() {
    let exclude = json!({"category": "tents", "tags": ["ultralight"]});
    let (status, body) = post("/v1/search", json!({"query": "lightweight tent", "k": 20, "exclude": exclude})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let hits = body["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 20, "{body}");
    for hit in hits {
        let tags = hit["fields"]["tags"].as_array().cloned().unwrap_or_default();
        assert!(hit["fields"]["category"] != "tents" && !tags.contains(&json!("ultralight")), "{hit}");
    }
    // Beside filters: the filter's items less the excluded ones.
    let both = json!({"query": "tent", "k": 50, "filters": {"category": "tents"}, "exclude": {"tags": "ultralight"}});
    let (_, body) = post("/v1/search", both).await;
    let (_, all) = post("/v1/search", json!({"query": "tent", "k": 50, "filters": {"category": "tents"}})).await;
    let ultralight = |hit: &&Value| hit["fields"]["tags"].as_array().is_some_and(|t| t.contains(&json!("ultralight")));
    let kept: Vec<&Value> = all["hits"].as_array().unwrap().iter().filter(|h| !ultralight(h)).collect();
    assert!(kept.len() < all["hits"].as_array().unwrap().len(), "the fixture has ultralight tents");
    let ids = |hits: Vec<&Value>| hits.iter().map(|h| h["id"].clone()).collect::<Vec<_>>();
    assert_eq!(ids(body["hits"].as_array().unwrap().iter().collect()), ids(kept));
    let (status, body) =
        post("/v1/recommend", json!({"user": "u001", "k": 10, "exclude": {"category": "tents"}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["hits"].as_array().unwrap().iter().all(|h| h["fields"]["category"] != "tents"), "{body}");
    // A typo would exclude nothing: said, as for filters.
    let (_, body) = post("/v1/search", json!({"query": "tent", "exclude": {"category": "Tents"}})).await;
    assert_eq!(body["notes"], json!(["exclude.category: no item has \"Tents\"; close values: [\"tents\"]"]));
    let (status, body) = post("/v1/search", json!({"query": "tent", "exclude": {"colour": "red"}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("exclude.colour"), "{body}");
}

#[actix_web::test]
async fn explain_adds_the_bm25_tree_and_rerank_joins_the_breakdown() {
    let (status, body) = post("/v1/search", json!({"query": "sourdough bread", "explain": true, "k": 3})).await;
    assert_eq!(status, StatusCode::OK);
    let top = &body["hits"][0];
    let tree = &top["explanations"][0];
    assert_eq!(tree["label"], "bm25");
    let bm25 = top["breakdown"]["retrievers"].as_array().unwrap().iter().find(|r| r["retriever"] == "bm25").unwrap();
    assert!((tree["value"].as_f64().unwrap() - bm25["raw_score"].as_f64().unwrap()).abs() < 1e-3, "{top}");
    assert!(!tree["children"][0]["children"].as_array().unwrap().is_empty());

    let (status, body) = post("/v1/search", json!({"query": "sourdough bread", "k": 5, "rerank": {"depth": 10}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["hits"].as_array().unwrap().len(), 5);
    for hit in body["hits"].as_array().unwrap() {
        assert_eq!(hit["breakdown"]["rerank"]["reranker"], "late_interaction_minilm");
    }
    assert_breakdowns_compose(&body);
}

/// A query of only invisible or control characters, or only punctuation, is an empty query: the same refusal
/// without a user, the same CF-only answer with one; a body that is not a JSON object is a 422.
#[actix_web::test]
async fn invisible_queries_are_empty_queries_and_non_object_bodies_are_refused() {
    let (empty_status, empty) = post("/v1/search", json!({"query": ""})).await;
    for query in ["\u{200b}\u{200d}\u{feff}\u{7}", "!!!", " ... ?"] {
        // Issue 15: punctuation alone used to come back as dense hits led by a fused 1.0.
        let (status, body) = post("/v1/search", json!({"query": query})).await;
        assert_eq!((status, &body), (empty_status, &empty), "{query:?}");
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    let (_, with_user) = post("/v1/search", json!({"query": "", "user": "u007"})).await;
    let (status, invisible_with_user) = post("/v1/search", json!({"query": "\u{2060}", "user": "u007"})).await;
    assert_eq!(status, StatusCode::OK, "{invisible_with_user}");
    assert_eq!(ids(&invisible_with_user), ids(&with_user));
    for route in ["/v1/search", "/v1/recommend"] {
        for body in [json!([]), json!("tent"), json!(5)] {
            let (status, answer) = post(route, body.clone()).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{route} {body}: {answer}");
            assert!(answer.to_string().contains("expected a JSON object"), "{route} {body}: {answer}");
        }
    }
}

#[actix_web::test]
async fn recommendations_exclude_seen_items_and_explain_with_history() {
    let engine = &crate::indexed().engine;
    let user = engine.user("u007").unwrap();
    let seen: HashSet<String> = user.history.iter().map(|i| engine.item_ids()[i.item as usize].clone()).collect();
    let (status, body) = post("/v1/recommend", json!({"user": "u007", "k": 20, "explain": true})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let got = ids(&body);
    assert_eq!(got.len(), 20);
    assert!(got.iter().all(|id| !seen.contains(id)), "a seen item was recommended");
    assert_breakdowns_compose(&body);
    for hit in body["hits"].as_array().unwrap() {
        // Every tree's children add up to it (the top ones and one leaf for the rest).
        // And each tree is the score it explains: the CF tree the CF list's raw score, the
        // content tree the dense list's (a cosine to the history's profile).
        for tree in hit["explanations"].as_array().unwrap() {
            let value = tree["value"].as_f64().unwrap();
            let parts: f64 = tree["children"].as_array().unwrap().iter().map(|c| c["value"].as_f64().unwrap()).sum();
            assert!((parts - value).abs() < 1e-5, "{tree}");
            let label = tree["label"].as_str().unwrap();
            let explains = if label.starts_with("CF score") { "cf" } else { "dense" };
            let retrievers = hit["breakdown"]["retrievers"].as_array().unwrap();
            if let Some(listed) = retrievers.iter().find(|r| r["retriever"] == explains) {
                let raw = listed["raw_score"].as_f64().unwrap();
                assert!((raw - value).abs() < 1e-4, "{label}: tree {value} vs raw score {raw}");
            }
        }
    }
    let cf_tree = &body["hits"][0]["explanations"][0];
    for child in cf_tree["children"].as_array().unwrap() {
        // "history item PRG-013 “Title”": the id, then the title.
        let label = child["label"].as_str().unwrap();
        if label.contains(" other history items") {
            continue;
        }
        let (id, title) = label.trim_start_matches("history item ").split_once(" “").unwrap();
        assert!(seen.contains(id), "{label} is not in the history");
        assert_eq!(title.trim_end_matches('”'), engine.item(id).unwrap().title.trim());
    }
    // A tree explains a list the request ran, never one it did not: content only in content
    // mode, CF only in cf mode; in search a BM25 tree and no CF tree in bm25 mode (with a
    // user), and in hybrid mode both, against neither in dense mode.
    let labels = |body: &Value| -> Vec<String> {
        body["hits"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|h| h["explanations"].as_array().cloned().unwrap_or_default())
            .map(|t| t["label"].as_str().unwrap().to_string())
            .collect()
    };
    let kinds = |labels: Vec<String>| -> Vec<&'static str> {
        let mut kinds: Vec<&str> = labels
            .iter()
            // A tree of a retriever that did not list the hit sits under a root naming it
            // (`cf: not in its list (its top 100), …`).
            .map(|l| match l.split_once(": not in its list") {
                Some(("cf", _)) => "CF",
                Some((name, _)) => name,
                None => l.as_str(),
            })
            .map(|l| ["bm25", "CF", "content"].into_iter().find(|k| l.starts_with(k)).unwrap_or("other"))
            .collect();
        kinds.sort_unstable();
        kinds.dedup();
        kinds
    };
    for (mode, tree) in [("cf", "CF"), ("content", "content")] {
        let (status, body) =
            post("/v1/recommend", json!({"user": "u007", "k": 5, "explain": true, "mode": mode})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(kinds(labels(&body)), [tree], "{mode}: {body}");
    }
    for (mode, trees) in [("dense", &[][..]), ("bm25", &["bm25"][..]), ("hybrid", &["CF", "bm25"][..])] {
        let request = json!({"query": "sourdough bread", "user": "u007", "k": 5, "explain": true, "mode": mode});
        let (status, body) = post("/v1/search", request).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(kinds(labels(&body)), trees, "{mode}: {body}");
        // A tree says so when its retriever did not list the hit, and only then: its score
        // took no part in the hit's.
        for hit in body["hits"].as_array().unwrap() {
            let listed: Vec<&str> = hit["breakdown"]["retrievers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["retriever"].as_str().unwrap())
                .collect();
            for tree in hit["explanations"].as_array().into_iter().flatten() {
                let label = tree["label"].as_str().unwrap();
                let kind = if label.starts_with("bm25") { "bm25" } else { "cf" };
                assert_eq!(label.contains("not in its list (its top 100)"), !listed.contains(&kind), "{hit}");
            }
        }
    }
    let (status, body) = post("/v1/recommend", json!({"user": "u007", "k": 20, "exclude_seen": false})).await;
    assert_eq!(status, StatusCode::OK);
    assert!(ids(&body).iter().any(|id| seen.contains(id)), "with exclude_seen false, history items may come back");
}

#[actix_web::test]
async fn cold_items_are_reachable_through_content() {
    let cold: HashSet<String> =
        std::fs::read_to_string(hyrank_tests::fixture("cold_items.txt")).unwrap().lines().map(str::to_string).collect();
    let mut reached = HashSet::new();
    for u in (1..=150).step_by(5) {
        let request = json!({"user": format!("u{u:03}"), "k": 10, "cold_items": "share", "explain": true});
        let (status, body) = post("/v1/recommend", request).await;
        assert_eq!(status, StatusCode::OK);
        for hit in body["hits"].as_array().unwrap() {
            // Its explanation says CF had no opinion, as the breakdown does (it read as a sum
            // of no weights, 0).
            let no_opinion = hit.to_string().contains("CF: no opinion on an item no one interacted with");
            if cold.contains(hit["id"].as_str().unwrap()) {
                assert_eq!(hit["breakdown"]["abstained"], json!(["cf"]), "{hit}");
                assert!(no_opinion, "{hit}");
            } else {
                assert!(!no_opinion, "{hit}");
            }
        }
        reached.extend(ids(&body).into_iter().filter(|id| cold.contains(id)));
    }
    assert!(reached.len() >= 3, "only {} cold items reached: {reached:?}", reached.len());
}

#[actix_web::test]
async fn broken_requests_get_the_right_status_and_code() {
    let app = app().await;
    let send = |payload: &str| {
        test::TestRequest::post()
            .uri("/v1/search")
            .insert_header(("content-type", "application/json"))
            .set_payload(payload.to_string())
            .to_request()
    };
    // Bodies that are not JSON at all are 400 whatever their first byte: an unclosed array
    // was a 422 for its type, because the type was judged before the rest was read.
    for payload in ["{\"query\": ", "[", "[1,", "[{\"query\": ", "\"tent", "tru"] {
        let response = test::call_service(&app, send(payload)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{payload}");
        let body: Value = test::read_body_json(response).await;
        assert_eq!(body["error"]["code"], "malformed_json", "{payload}: {body}");
    }
    // A compressed body cut short is said in words (it was a Debug dump under `bad_request`).
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut encoder, br#"{"query": "a tent for four people in the rain"}"#).unwrap();
    let mut gzipped = encoder.finish().unwrap();
    gzipped.truncate(gzipped.len() / 2);
    let cut = test::TestRequest::post()
        .uri("/v1/search")
        .insert_header(("content-type", "application/json"))
        .insert_header(("content-encoding", "gzip"))
        .set_payload(gzipped)
        .to_request();
    let response = test::call_service(&app, cut).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = test::read_body_json(response).await;
    assert_eq!(body["error"]["code"], "unreadable_body", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().starts_with("the body ended before it was complete"), "{body}");
    // A plain body under a gzip header is not in that encoding, whatever its length.
    let plain = test::TestRequest::post()
        .uri("/v1/search")
        .insert_header(("content-type", "application/json"))
        .insert_header(("content-encoding", "gzip"))
        .set_payload(r#"{"query": "tent"}"#)
        .to_request();
    let body: Value = test::read_body_json(test::call_service(&app, plain).await).await;
    assert_eq!(body["error"]["code"], "unreadable_body", "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().starts_with("the body is not in the Content-Encoding"),
        "{body}"
    );
    // A coding the server does not decode is a 415 naming it (actix read it as identity: a
    // plain body under a bogus header was accepted, a compressed one called malformed JSON).
    // actix decodes by the first header alone, as one coding: a list, a second header or
    // x-gzip would be read as identity too. gzip (any case) and deflate (zlib) are decoded.
    let compressed = |gzip: bool| {
        let body = br#"{"query": "tent"}"#;
        if gzip {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut encoder, body).unwrap();
            encoder.finish().unwrap()
        } else {
            let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut encoder, body).unwrap();
            encoder.finish().unwrap()
        }
    };
    let plain = br#"{"query": "tent"}"#.to_vec();
    for (codings, payload, status) in [
        (&["br"][..], plain.clone(), StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (&["zstd"][..], plain.clone(), StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (&["x-gzip"][..], compressed(true), StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (&["gzip, identity"][..], compressed(true), StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (&["identity", "gzip"][..], compressed(true), StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (&["GZip"][..], compressed(true), StatusCode::OK),
        (&["deflate"][..], compressed(false), StatusCode::OK),
        (&["identity"][..], plain.clone(), StatusCode::OK),
    ] {
        let mut request =
            test::TestRequest::post().uri("/v1/search").insert_header(("content-type", "application/json"));
        for coding in codings {
            request = request.append_header(("content-encoding", *coding));
        }
        let response = test::call_service(&app, request.set_payload(payload).to_request()).await;
        assert_eq!(response.status(), status, "{codings:?}");
        if status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
            assert_eq!(response.headers().get("accept-encoding").unwrap(), "gzip, deflate", "{codings:?}");
            let body: Value = test::read_body_json(response).await;
            assert_eq!(body["error"]["code"], "unsupported_content_encoding", "{codings:?}: {body}");
            assert!(body["error"]["message"].as_str().unwrap().contains(codings[0]), "{codings:?}: {body}");
        }
    }
    // A request without a body, or whose route reads none, is not refused for a stray header.
    for payload in ["", "x"] {
        let request = test::TestRequest::get().uri("/v1/index").insert_header(("content-encoding", "br"));
        let request = request.insert_header(("content-type", "text/plain; charset=latin1")).set_payload(payload);
        assert_eq!(test::call_service(&app, request.to_request()).await.status(), StatusCode::OK, "{payload:?}");
    }
    // A key given twice is refused, not read as its last value; a value of the wrong type is
    // named by its path.
    for (payload, named) in [
        (r#"{"query": "tent", "k": 5, "k": 50}"#, "duplicate key `k`"),
        (r#"{"query": "tent", "filters": {"price": {"gt": "cheap"}}}"#, "filters.price"),
        // Conditions no value of the field's type can meet (they answered 200 with no hits).
        (
            r#"{"query": "tent", "filters": {"tags": {"gte": 1}}}"#,
            "a range compares numbers, and this field holds a list",
        ),
        (r#"{"query": "tent", "filters": {"price": "cheap"}}"#, "\"cheap\" is not one"),
        (
            r#"{"query": "tent", "filters": {"price": true}}"#,
            "filters.price: invalid type: boolean `true`, expected a condition",
        ),
        (r#"{"query": "tent", "filters": {"price": {"gte": 300, "lt": 100}}}"#, "the range is empty"),
        // Weights each finite but large enough to overflow a fused or final score (null on
        // the wire) are refused by one bound.
        (
            r#"{"query": "tent", "weights": {"bm25": 1e308, "dense": 7e307}}"#,
            "weights.bm25: 1e308 is not a weight from 0 to 1e6",
        ),
        // A name is a string: not the map serde's enums also read (`{"bm25": null}`), not null.
        (r#"{"query": "tent", "mode": {"bm25": null}}"#, "mode: invalid type: map, expected a string"),
        (r#"{"query": "tent", "mode": null}"#, "mode: invalid type: null, expected a string"),
        (r#"{"query": "tent", "cold_items": {"ignore": null}}"#, "cold_items: invalid type: map"),
        (r#"{"query": "tent", "bm25": {"fields": {"sum": null}}}"#, "bm25.fields: invalid type: map"),
        (
            r#"{"query": "tent", "rerank": {"reranker": {"late_interaction": null}}}"#,
            "rerank.reranker: invalid type: map",
        ),
        (r#"{"query": "tent", "fusion": {"method": {"rrf": null}}}"#, "invalid type: map, expected a string"),
        (r#"{"query": "tent", "mode": "psychic"}"#, "unknown variant `psychic`"),
        // A count is a whole number: a fraction is refused, a zero one read (tests/integration/pages.rs).
        (r#"{"query": "tent", "k": 5.5}"#, "k: invalid value: floating point `5.5`, expected a whole number"),
        // Each weight is named, and written as it was sent.
        (r#"{"query": "tent", "weights": {"bm25": 1, "dense": -1}}"#, "weights.dense: -1 is not a weight"),
        (r#"{"query": "tent", "rerank": {"reranker": "late_interaction", "weight": -5}}"#, "rerank.weight: -5 is not"),
        // An RRF constant past the point where ranks still count (all hits tied at 1e308).
        (r#"{"query": "stove", "fusion": {"method": "rrf", "k": 1e308}}"#, "fusion.k: 1e308 is not an RRF constant"),
        (r#"{"query": "tent", "mode": "dense", "fusion": {"method": "dbsf"}, "weights": {"dense": 8e307}}"#, "1e6"),
        (r#"{"query": "tent", "rerank": {"reranker": "late_interaction", "weight": 1e308}}"#, "rerank.weight"),
    ] {
        let response = test::call_service(&app, send(payload)).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{payload}");
        let body: Value = test::read_body_json(response).await;
        assert!(body["error"]["message"].as_str().unwrap().contains(named), "{payload}: {body}");
    }

    let cases = [
        (json!({"query": "tent", "k": 0}), StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
        (json!({"query": "tent", "k": 5000}), StatusCode::UNPROCESSABLE_ENTITY, "limit_exceeded"),
        (json!({"query": "tent", "mode": "psychic"}), StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
        (json!({"query": "tent", "kk": 3}), StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
        (json!({"query": 42}), StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
        (json!({"query": "   "}), StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
        // Invisible though not a format character: a variation selector, a Hangul filler.
        (json!({"query": "\u{fe0f}"}), StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
        (json!({"query": "\u{3164}", "mode": "bm25"}), StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
        // A key inside `fusion` that its method does not take.
        (
            json!({"query": "tent", "fusion": {"method": "linear", "k": 60}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            json!({"query": "tent", "fusion": {"method": "linear_floor", "weights": {"bm25": 0}}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (json!({"query": "tent", "filters": {"colour": "red"}}), StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
        (json!({"query": "tent", "weights": {"bm25": -1}}), StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
        (json!({"mode": "cf"}), StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
        (json!({"query": "tent", "user": "nobody"}), StatusCode::NOT_FOUND, "user_not_found"),
        // An id no user can have is invalid, as in a live event, not an unknown user.
        (json!({"query": "tent", "user": ""}), StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
        (json!({"query": "tent", "user": " u007"}), StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
        // Fewer candidates than k could not fill the page.
        (json!({"query": "tent", "k": 10, "candidates": 5}), StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
        // A number when given: null is not read as absent.
        (json!({"query": "tent", "candidates": null}), StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
        (json!({"query": "tent", "rerank": {"depth": 100000}}), StatusCode::UNPROCESSABLE_ENTITY, "limit_exceeded"),
        (
            json!({"query": "tent", "rerank": {"depth": 20, "weight": -1}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
    ];
    for (request, status, code) in cases {
        let (got, body) = post("/v1/search", request.clone()).await;
        assert_eq!(got, status, "{request} → {body}");
        assert_eq!(body["error"]["code"], code, "{request} → {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let (status, body) = post("/v1/recommend", json!({"user": "nobody"})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("user_not_found")));
    let (status, body) = post("/v1/recommend", json!({"user": ""})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_request")));
    assert!(body["error"]["message"].as_str().unwrap().contains("user: a user id is empty"), "{body}");
    // An item id no item can have is invalid, as a user id is, not unknown.
    let (status, body) = get("/v1/items/%20TNT-001").await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_request")));
    let (status, _) = get("/v1/items/%20TNT-001/similar").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = get("/v1/items/TNT-001/similar?k=8&candidates=4").await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_query_string")));
    assert!(body["error"]["message"].as_str().unwrap().contains("fewer than k (8)"), "{body}");
    // A weight for a list the request has not (it was read and ignored).
    let (status, body) = post("/v1/recommend", json!({"user": "u007", "weights": {"bm25": 2.0}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("weights.bm25"), "{body}");
    let (status, body) = get("/v1/items/TNT-001/similar?fusion=borda").await;
    // A value the query string cannot be read as: 400, as `k=abc` is.
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_query_string")));
    assert!(body["error"]["message"].as_str().unwrap().contains("linear_floor"), "the methods are listed: {body}");
    // A bad query-string value is named by its parameter, and k's bounds are this server's.
    for (query, said) in [
        ("k=abc", "k: invalid value: string \"abc\", expected a whole number of at least 1"),
        ("k=-1", "k: invalid value: integer `-1`, expected a whole number of at least 1"),
        ("offset=-1", "offset: invalid value: integer `-1`, expected a whole number of at least 0"),
        ("candidates=1.5", "candidates: invalid value: floating point `1.5`"),
        ("offset=", "offset: invalid value: string \"\""),
        ("top=3", "unknown field `top`"),
    ] {
        let (status, body) = get(&format!("/v1/items/TNT-001/similar?{query}")).await;
        assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_query_string")));
        assert!(body["error"]["message"].as_str().unwrap().contains(said), "{query}: {body}");
    }
    // Routes that read no query string refuse one rather than ignore it (`?k=1` on a search
    // answered with the body's k).
    let (status, body) = post("/v1/search?k=1", json!({"query": "tent"})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_query_string")));
    assert!(body["error"]["message"].as_str().unwrap().contains("(got k)"), "{body}");
    // By route, not by path: an item whose id is "similar" reads no query string either.
    for uri in ["/v1/items/TNT-001?fields=title", "/v1/index?foo=1", "/v1/items/similar?k=3"] {
        assert_eq!(get(uri).await.0, StatusCode::BAD_REQUEST, "{uri}");
    }
    let (status, body) = get("/v1/nothing-here").await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("route_not_found")));
    // A known path with a method it does not take is 405 naming the methods; GET paths take HEAD.
    // (Write and admin paths check the key first: this app has none, so they answer 403.)
    for (method, path, allow) in [
        (actix_web::http::Method::POST, "/healthz", "GET, HEAD"),
        (actix_web::http::Method::DELETE, "/v1/search", "POST"),
        (actix_web::http::Method::GET, "/v1/recommend", "POST"),
        (actix_web::http::Method::POST, "/v1/items/TNT-001", "GET, HEAD, PUT, DELETE"),
        (actix_web::http::Method::GET, "/v1/items/TNT-001/fields", "PUT"),
    ] {
        let request = test::TestRequest::default().method(method.clone()).uri(path).to_request();
        let response = test::call_service(&app, request).await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_eq!(response.headers().get("allow").unwrap(), allow, "{method} {path}");
        let body: Value = test::read_body_json(response).await;
        assert_eq!(body["error"]["code"], "method_not_allowed", "{method} {path}");
    }
    for path in ["/healthz", "/readyz", "/ui", "/v1/index", "/v1/items/TNT-001", "/v1/items/TNT-001/similar"] {
        let request = test::TestRequest::default().method(actix_web::http::Method::HEAD).uri(path).to_request();
        let status = test::call_service(&app, request).await.status();
        assert_eq!(status, StatusCode::OK, "HEAD {path}");
    }
    let big = "word ".repeat(20_000);
    let (status, body) = post("/v1/search", json!({"query": big})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")));
    let (status, body) = get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
}
