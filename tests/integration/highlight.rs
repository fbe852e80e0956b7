//! Highlights over HTTP: the query's words marked in each hit's title and text, as BM25
//! matched them, only when asked.

use actix_web::http::StatusCode;
use serde_json::json;

use crate::api::{catalog, post};

#[actix_web::test]
async fn hits_carry_the_query_s_words_marked_when_asked() {
    let query = "taped seams in the rain";
    let (status, body) = post("/v1/search", json!({"query": query, "mode": "bm25", "k": 5, "highlight": true})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let items = catalog();
    for hit in body["hits"].as_array().unwrap() {
        let text = hit["highlights"]["text"].as_str().unwrap_or_else(|| panic!("a BM25 hit matches its text: {hit}"));
        // "taped" and "seams" stem to what the text holds; "the" and "in" are words too.
        assert!(text.contains("<em>taped</em> <em>seams</em>"), "{text}");
        let item = items.iter().find(|i| i["id"] == hit["id"]).unwrap();
        let shown = text.replace("<em>", "").replace("</em>", "");
        assert!(item["text"].as_str().unwrap().contains(shown.trim_matches('…')), "{shown}");
    }
    // A title word is marked in the whole title.
    let (_, body) = post("/v1/search", json!({"query": "kestrel bivy", "k": 3, "highlight": true})).await;
    assert_eq!(body["hits"][0]["highlights"]["title"], "<em>Kestrel</em> Cirque 2 <em>Bivy</em> Tent", "{body}");
    assert!(body["timings"]["highlight_ms"].as_f64().unwrap() > 0.0, "its time is its own stage: {body}");
    // Not asked, no highlights; a query without words (a user's CF list alone) has none.
    let (_, body) = post("/v1/search", json!({"query": query, "k": 3})).await;
    assert!(body["hits"].as_array().unwrap().iter().all(|h| h.get("highlights").is_none()), "{body}");
    assert_eq!(body["timings"]["highlight_ms"], 0.0, "{body}");
    let (status, body) = post("/v1/search", json!({"user": "u007", "k": 3, "highlight": true})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["hits"].as_array().unwrap().iter().all(|h| h.get("highlights").is_none()), "{body}");
}

/// The BM25 terms that explain the first hit, which must be the Kestrel Cirque bivy with
/// "Kestrel" and "Bivy" marked in its title.
fn top_kestrel_terms(body: &serde_json::Value) -> Vec<String> {
    let top = &body["hits"][0];
    assert_eq!(top["highlights"]["title"], "<em>Kestrel</em> Cirque 2 <em>Bivy</em> Tent", "{body}");
    let terms = top["explanations"][0]["children"][0]["children"].as_array().unwrap();
    terms.iter().map(|t| t["label"].as_str().unwrap().to_string()).collect()
}

/// A word no item holds is read as the catalog's words a typo away ("kestrl" as "kestrel"),
/// marked and explained as such; `bm25.fuzziness: "off"` reads it as typed.
#[actix_web::test]
async fn a_typo_is_read_as_the_word_meant_marked_and_explained() {
    let request = json!({"query": "kestrl bivy", "mode": "bm25", "k": 3, "highlight": true, "explain": true});
    let (status, body) = post("/v1/search", request.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let terms = top_kestrel_terms(&body);
    assert!(terms.iter().any(|t| t == "kestrel (for \"kestrl\", 1 edit away), product of"), "{terms:?}");
    // The response says what the query was read as, for a "did you mean" line; in hybrid
    // mode too (BM25 ran), and never where BM25 read every word as typed.
    let read_as = json!({"query": "kestrel bivy", "words": [{"typed": "kestrl", "read_as": "kestrel", "edits": 1}]});
    assert_eq!(body["did_you_mean"], read_as, "{body}");
    let (_, hybrid) = post("/v1/search", json!({"query": "kestrl bivy", "k": 3})).await;
    assert_eq!(hybrid["did_you_mean"], read_as, "{hybrid}");
    // A trailing space says the last word is finished, and stays in the query suggested.
    let finished = json!({"query": "kestrl bivy ", "mode": "bm25", "k": 3, "bm25": {"prefix": "last"}});
    let (_, finished) = post("/v1/search", finished).await;
    assert_eq!(finished["did_you_mean"]["query"], "kestrel bivy ", "{finished}");
    let (_, dense) = post("/v1/search", json!({"query": "kestrl bivy", "mode": "dense", "k": 3})).await;
    assert!(dense.get("did_you_mean").is_none(), "BM25 did not run: {dense}");
    let unweighted = json!({"query": "kestrl bivy", "k": 3, "weights": {"bm25": 0}});
    let (_, unweighted) = post("/v1/search", unweighted).await;
    assert!(unweighted.get("did_you_mean").is_none(), "BM25's list counted for nothing: {unweighted}");
    let mut typed = request;
    typed["bm25"] = json!({"fuzziness": "off"});
    let (status, body) = post("/v1/search", typed).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("did_you_mean").is_none(), "read as typed: {body}");
    assert!(
        body["hits"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| !h["highlights"]["title"].as_str().unwrap().contains("<em>Kestrel")),
        "{body}"
    );
    let (status, body) = post("/v1/search", json!({"query": "kestrl", "bm25": {"fuzziness": "some"}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("bm25.fuzziness: unknown variant `some`"), "{body}");
}

/// Search as you type: `bm25.prefix: "last"` reads the word being typed as the catalog's words
/// it begins ("kes" finds Kestrel), marked and explained as such; a query ending in a space
/// reads it as typed; without the option nothing is completed.
#[actix_web::test]
async fn the_word_being_typed_is_completed_marked_and_explained() {
    let request = json!({"query": "bivy kes", "mode": "bm25", "k": 3, "highlight": true, "explain": true,
                         "bm25": {"prefix": "last"}});
    let (status, body) = post("/v1/search", request.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let terms = top_kestrel_terms(&body);
    assert!(terms.iter().any(|t| t == "kestrel (completing \"kes\"), product of"), "{terms:?}");
    let kestrel = |body: &serde_json::Value| {
        body["hits"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["highlights"]["title"].as_str().unwrap().contains("<em>Kestrel"))
    };
    for typed in [json!({"query": "bivy kes ", "bm25": {"prefix": "last"}}), json!({"query": "bivy kes"})] {
        let mut typed_request = request.clone();
        typed_request["query"] = typed["query"].clone();
        typed_request["bm25"] = typed.get("bm25").cloned().unwrap_or(json!({}));
        let (status, body) = post("/v1/search", typed_request).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(!kestrel(&body), "{typed}: {body}");
    }
    let (status, body) = post("/v1/search", json!({"query": "kes", "bm25": {"prefix": "first"}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("bm25.prefix: unknown variant `first`"), "{body}");
}

/// A query the model reads none of (every word piece unknown to its vocabulary) has no dense
/// list: an English catalog answers a Thai query with BM25's hits alone, here none, and says
/// why, where it used to return the dense list's nearest items to a meaningless vector.
#[actix_web::test]
async fn a_query_the_model_cannot_read_gets_no_dense_list_and_a_note() {
    let (status, body) = post("/v1/search", json!({"query": "กาแฟ", "k": 5})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["hits"].as_array().unwrap().len(), 0, "{body}");
    assert!(body["notes"][0].as_str().unwrap().contains("reads none of the query"), "{body}");
    // The reranker reads the query through the same vocabulary: asked for, it is not run, and
    // says so; in bm25 mode that is the only note.
    let (_, body) = post("/v1/search", json!({"query": "กาแฟ", "k": 5, "rerank": {"enabled": true}})).await;
    assert!(body["notes"][1].as_str().unwrap().starts_with("rerank: not run"), "{body}");
    let body = json!({"query": "กาแฟ", "mode": "bm25", "k": 5, "rerank": {"enabled": true}});
    let (status, body) = post("/v1/search", body).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["notes"].as_array().unwrap().len(), 1, "{body}");
    assert!(body["notes"][0].as_str().unwrap().starts_with("rerank: not run"), "{body}");
    // A query it reads, however strange, keeps its dense list and has no note.
    let (_, body) = post("/v1/search", json!({"query": "tent กาแฟ", "k": 5})).await;
    assert!(!body["hits"].as_array().unwrap().is_empty(), "{body}");
    assert!(body.get("notes").is_none(), "{body}");
}
