//! The production service: the OpenAPI contract, keys, bounds, caching, metrics, readiness,
//! the model worker and CORS. Generation swaps are `swaps.rs`.

use std::sync::Arc;

use actix_web::dev::{Service, ServiceResponse};
use actix_web::{http::StatusCode, test, App};
use hyrank_api::{configure, AppState, Limits, ServiceSettings};
use hyrank_engine::{Engine, SearchRequest};
use serde_json::{json, Value};

use crate::swaps::publish_copy;

pub(crate) const SEARCH_KEY: &str = "search-key-0123456789";
pub(crate) const ADMIN_KEY: &str = "admin-key-0123456789";

pub(crate) async fn service(
    state: AppState,
) -> impl Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error> {
    test::init_service(App::new().configure(configure(state))).await
}

fn shared_engine() -> Arc<Engine> {
    Arc::clone(&crate::indexed().engine)
}

pub(crate) fn keyed(limits: Limits) -> ServiceSettings {
    ServiceSettings {
        limits,
        search_key: Some(SEARCH_KEY.into()),
        admin_key: Some(ADMIN_KEY.into()),
        ..ServiceSettings::default()
    }
}

pub(crate) async fn call(
    app: &impl Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
    request: test::TestRequest,
) -> (StatusCode, actix_web::http::header::HeaderMap, Value) {
    let response = test::call_service(app, request.to_request()).await;
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = test::read_body(response).await;
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, headers, body)
}

pub(crate) fn search(body: Value, key: Option<&str>) -> test::TestRequest {
    let request = test::TestRequest::post().uri("/v1/search").set_json(body);
    match key {
        Some(key) => request.insert_header(("authorization", format!("Bearer {key}"))),
        None => request,
    }
}

#[actix_web::test]
async fn the_committed_openapi_document_matches_the_handlers() {
    let committed_path = hyrank_tests::root().join("api/openapi.json");
    let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
    assert!(
        committed == hyrank_api::openapi::json(),
        "api/openapi.json is stale: regenerate it with\n  cargo run --release -p hyrank-api --bin hyrank-serve -- --print-openapi > api/openapi.json"
    );
    let app = service(AppState::from_arc(shared_engine())).await;
    let (status, _, served) = call(&app, test::TestRequest::get().uri("/openapi.json")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(served, serde_json::from_str::<Value>(&committed).unwrap());
    for path in ["/v1/search", "/v1/recommend", "/v1/items/{id}/similar", "/v1/index", "/admin/reload", "/readyz"] {
        assert!(served["paths"].get(path).is_some(), "{path} missing from the document");
    }
    // OpenAPI requires a description on every response; validators and client generators
    // refuse a document without (60 of 74 had none).
    for (path, item) in served["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                let described = response["description"].as_str().is_some_and(|d| !d.trim().is_empty());
                assert!(described, "{method} {path}: response {status} has no description");
            }
        }
    }
    // Every route that queues an engine call answers 503 when the queue is full.
    for (path, method) in [
        ("/v1/search", "post"),
        ("/v1/recommend", "post"),
        ("/v1/similar", "post"),
        ("/v1/items/{id}", "get"),
        ("/v1/items/{id}/similar", "get"),
    ] {
        assert!(served["paths"][path][method]["responses"].get("503").is_some(), "{method} {path} lists no 503");
    }
    let (status, _, page) = call(&app, test::TestRequest::get().uri("/docs/")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.as_str().unwrap_or_default().contains("swagger"), "the interactive page is served");
    // Another method is told what the path takes, not pointed at the path it asked for.
    for uri in ["/openapi.json", "/docs/", "/docs/index.css"] {
        let (status, headers, body) = call(&app, test::TestRequest::post().uri(uri)).await;
        assert_eq!(
            (status, headers.get("allow").map(|a| a.to_str().unwrap())),
            (StatusCode::METHOD_NOT_ALLOWED, Some("GET")),
            "{uri}: {body}"
        );
    }
}

#[actix_web::test]
async fn keys_guard_v1_and_admin_routes() {
    let app = service(AppState::with_settings(shared_engine(), None, keyed(Limits::default()))).await;
    let query = json!({"query": "tent"});
    let (status, headers, body) = call(&app, search(query.clone(), None)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")));
    assert_eq!(headers.get("www-authenticate").unwrap(), "Bearer");
    // The scheme's case does not matter (RFC 7235); another scheme is no key.
    for (header, status) in [
        (format!("bearer {SEARCH_KEY}"), StatusCode::OK),
        (format!("BEARER {SEARCH_KEY}"), StatusCode::OK),
        (format!("Basic {SEARCH_KEY}"), StatusCode::UNAUTHORIZED),
    ] {
        let request = test::TestRequest::post().uri("/v1/search").insert_header(("authorization", header.clone()));
        assert_eq!(call(&app, request.set_json(query.clone())).await.0, status, "{header}");
    }
    let (status, _, _) = call(&app, search(query.clone(), Some("not-the-key-at-all"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(call(&app, search(query.clone(), Some(SEARCH_KEY))).await.0, StatusCode::OK);
    assert_eq!(call(&app, search(query.clone(), Some(ADMIN_KEY))).await.0, StatusCode::OK, "admin key works on /v1");
    let by_header = test::TestRequest::get().uri("/v1/index").insert_header(("x-api-key", SEARCH_KEY));
    assert_eq!(call(&app, by_header).await.0, StatusCode::OK);

    let reload = |key: Option<&str>| {
        let request = test::TestRequest::post().uri("/admin/reload");
        match key {
            Some(key) => request.insert_header(("authorization", format!("Bearer {key}"))),
            None => request,
        }
    };
    assert_eq!(call(&app, reload(None)).await.0, StatusCode::UNAUTHORIZED);
    let (status, _, body) = call(&app, reload(Some(SEARCH_KEY))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")));
    let (status, _, body) = call(&app, reload(Some(ADMIN_KEY))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("reload_disabled")));

    // The key is checked first; with it, a method the path does not take is 405.
    let admin_get = test::TestRequest::get().uri("/admin/reload").insert_header(("x-api-key", ADMIN_KEY));
    let (status, headers, _) = call(&app, admin_get).await;
    assert_eq!(
        (status, headers.get("allow").map(|v| v.to_str().unwrap())),
        (StatusCode::METHOD_NOT_ALLOWED, Some("POST"))
    );
    let keyless_head = test::TestRequest::default().method(actix_web::http::Method::HEAD).uri("/v1/items/TNT-001");
    assert_eq!(call(&app, keyless_head).await.0, StatusCode::UNAUTHORIZED);

    // Probes and metrics stay open; admin routes are closed outright without an admin key.
    assert_eq!(call(&app, test::TestRequest::get().uri("/healthz")).await.0, StatusCode::OK);
    let open = service(AppState::from_arc(shared_engine())).await;
    let (status, _, body) = call(&open, reload(Some(ADMIN_KEY))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("admin_disabled")));
    assert_eq!(call(&open, search(query, None)).await.0, StatusCode::OK, "no search key: /v1 is open");
}

/// A body that stops arriving gets 408 once its time is up, naming the limit; a whole body
/// sent at once is served as before, and so is one that keeps arriving at a slow link's pace.
#[actix_web::test]
async fn a_body_that_stalls_gets_408() {
    use futures_util::StreamExt;
    let limits = Limits { body_timeout: std::time::Duration::from_secs(1), ..Limits::default() };
    let settings = ServiceSettings { limits, ..ServiceSettings::default() };
    let app = service(AppState::with_settings(shared_engine(), None, settings)).await;
    let first = futures_util::stream::iter([Ok::<_, actix_web::error::PayloadError>(
        actix_web::web::Bytes::from_static(br#"{"query": "te"#),
    )]);
    let stalled = first.chain(futures_util::stream::pending());
    let request = test::TestRequest::post()
        .uri("/v1/search")
        .insert_header(("content-type", "application/json"))
        .insert_header(("content-length", "40"))
        .to_request();
    let (request, _) = request.replace_payload(actix_http::Payload::from(
        Box::pin(stalled) as std::pin::Pin<Box<dyn futures_util::Stream<Item = _>>>
    ));
    let answered = actix_web::rt::time::timeout(std::time::Duration::from_secs(20), test::call_service(&app, request));
    let response = answered.await.expect("no answer within 20 s: the body has no deadline");
    let status = response.status();
    let body: Value = test::read_body_json(response).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::REQUEST_TIMEOUT, Some("request_timeout")));
    let said = body["error"]["message"].as_str().unwrap();
    assert!(said.starts_with("the body did not arrive in time (1 s, plus a second per 1024 bytes"), "{body}");
    let (status, _, _) = call(&app, search(json!({"query": "tent"}), None)).await;
    assert_eq!(status, StatusCode::OK);
    // A body that keeps arriving, if slowly, is served past the first second: 3 KiB in three
    // parts 0.7 s apart (a fixed limit cut it off at 1 s).
    let text = format!("{{\"query\": \"tent\"{}}}", " ".repeat(3 * 1024 - 17));
    let parts: Vec<actix_web::web::Bytes> =
        text.as_bytes().chunks(1024).map(|c| actix_web::web::Bytes::copy_from_slice(c)).collect();
    let slow = futures_util::stream::iter(parts).then(|part| async move {
        actix_web::rt::time::sleep(std::time::Duration::from_millis(700)).await;
        Ok::<_, actix_web::error::PayloadError>(part)
    });
    let request = test::TestRequest::post()
        .uri("/v1/search")
        .insert_header(("content-type", "application/json"))
        .insert_header(("content-length", text.len().to_string()))
        .to_request();
    let (request, _) = request.replace_payload(actix_http::Payload::from(
        Box::pin(slow) as std::pin::Pin<Box<dyn futures_util::Stream<Item = _>>>
    ));
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[actix_web::test]
async fn bounds_answer_4xx_with_a_code() {
    let limits =
        Limits { max_k: 10, max_query_chars: 20, max_candidates: 100, max_body_bytes: 512, ..Limits::default() };
    let settings = ServiceSettings { limits, ..ServiceSettings::default() };
    let app = service(AppState::with_settings(shared_engine(), None, settings)).await;
    for (body, field) in [
        (json!({"query": "tent", "k": 11}), "k:"),
        (json!({"query": "a tent for two people and a dog"}), "query:"),
        (json!({"query": "tent", "candidates": 101}), "candidates:"),
        (json!({"query": "tent", "rerank": {"depth": 500}}), "rerank.depth:"),
    ] {
        let (status, _, response) = call(&app, search(body.clone(), None)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(response["error"]["code"], "limit_exceeded");
        assert!(response["error"]["message"].as_str().unwrap().starts_with(field), "{response}");
    }
    let huge = json!({"query": "x".repeat(600)});
    let (status, _, response) = call(&app, search(huge, None)).await;
    assert_eq!(
        (status, response["error"]["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
    );
    let (status, _, _) = call(&app, search(json!({"query": "tent", "k": 10}), None)).await;
    assert_eq!(status, StatusCode::OK, "at the bound is fine");
    // The bound is the decoded body's: 16 MB of spaces in 16 KB of gzip is refused as too large
    // (it is decoded in steps and stopped at the bound; actix's decoder inflated each chunk
    // whole first, 64 MB for a 62 KB body), and a small gzip body within it is read.
    let gzip = |body: &[u8]| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut encoder, body).unwrap();
        let request = test::TestRequest::post().uri("/v1/search").insert_header(("content-type", "application/json"));
        request.insert_header(("content-encoding", "gzip")).set_payload(encoder.finish().unwrap())
    };
    let bomb = [br#"{"query": "tent""#.as_slice(), &vec![b' '; 16 << 20], b"}"].concat();
    let (status, _, response) = call(&app, gzip(&bomb)).await;
    assert_eq!(
        (status, response["error"]["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
    );
    assert!(response["error"]["message"].as_str().unwrap().contains("larger than 512 bytes"), "{response}");
    let (status, _, response) = call(&app, gzip(br#"{"query": "tent", "k": 3}"#)).await;
    assert_eq!((status, response["hits"].as_array().map(Vec::len)), (StatusCode::OK, Some(3)), "{response}");
}

/// A path or query string whose escapes are not UTF-8 is refused, not read with U+FFFD in place
/// of its bytes: `%FE` and `%C3` were one id, so a put under one replaced the other's item.
/// Escapes of UTF-8 text are read as that text. A body declared in another charset is refused
/// too (it was read as UTF-8 whatever the header said).
#[actix_web::test]
async fn text_that_is_not_utf8_in_the_url_or_the_body_is_refused_whatever_the_route() {
    let app = service(AppState::with_settings(shared_engine(), None, ServiceSettings::default())).await;
    let at = |method: actix_web::http::Method, uri: &str| test::TestRequest::default().method(method).uri(uri);
    use actix_web::http::Method;
    for (method, uri, said) in [
        (
            Method::GET,
            "/v1/items/%FE",
            "path is not UTF-8 once its percent-escapes are decoded: %FE after \"/v1/items/\"",
        ),
        (Method::PUT, "/v1/items/%C3", "%C3"),
        (Method::DELETE, "/v1/items/TNT%FF%FE", "%FF after \"/v1/items/TNT\""),
        (Method::PUT, "/v1/items/%E2%82/fields", "%E2%82 after"),
        (Method::GET, "/v1/items/TNT-001/similar?fusion=%FF", "query string is not UTF-8"),
        (Method::GET, "/healthz?x=%C0%80", "%C0 after \"x=\""),
    ] {
        let (status, _, body) = call(&app, at(method.clone(), uri)).await;
        assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("malformed_url")), "{uri}");
        assert!(body["error"]["message"].as_str().unwrap().contains(said), "{method} {uri}: {body}");
    }
    // UTF-8's escapes are text: "é" is an id like any other, which this catalog lacks.
    let (status, _, body) = call(&app, at(Method::GET, "/v1/items/%C3%A9")).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("item_not_found")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains('é'), "{body}");
    let typed = |content_type: &str| {
        let body = serde_json::to_vec(&json!({"query": "tent"})).unwrap();
        test::TestRequest::post().uri("/v1/search").insert_header(("content-type", content_type)).set_payload(body)
    };
    let (status, _, body) = call(&app, typed("application/json; charset=iso-8859-1")).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("charset=iso-8859-1"), "{body}");
    for fine in ["application/json; charset=UTF-8", "application/json; charset=\"utf-8\"", "application/json"] {
        assert_eq!(call(&app, typed(fine)).await.0, StatusCode::OK, "{fine}");
    }
    // A lone surrogate escape is no character: serde_json's "unexpected end of hex escape" is
    // said in words.
    let lone = test::TestRequest::post().uri("/v1/search").insert_header(("content-type", "application/json"));
    let (status, _, body) = call(&app, lone.set_payload(r#"{"query": "tent \ud800"}"#)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("malformed_json")));
    assert!(body["error"]["message"].as_str().unwrap().contains("alone, it is no character"), "{body}");
}

#[actix_web::test]
async fn equal_requests_are_answered_from_the_response_cache() {
    let app = service(AppState::from_arc(shared_engine())).await;
    let (status, headers, first) = call(&app, search(json!({"query": "ultralight  tent ", "k": 5}), None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers.get("x-cache").unwrap(), "miss");
    let (_, headers, second) = call(&app, search(json!({"k": 5, "query": "ultralight tent"}), None)).await;
    assert_eq!(headers.get("x-cache").unwrap(), "hit", "same request up to whitespace and key order");
    assert_eq!(first, second);
    let (_, headers, _) = call(&app, search(json!({"query": "ultralight tent", "k": 6}), None)).await;
    assert_eq!(headers.get("x-cache").unwrap(), "miss");
    // A refused request is no lookup that missed: it is never stored.
    for _ in 0..2 {
        assert_eq!(call(&app, search(json!({"query": "   "}), None)).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let (_, _, metrics) = call(&app, test::TestRequest::get().uri("/metrics")).await;
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    assert!(metrics.contains(r#"hyrank_cache_lookups_total{cache="response",result="miss"} 2"#), "{metrics}");
    assert!(metrics.contains(r#"hyrank_cache_lookups_total{cache="response",result="hit"} 1"#), "{metrics}");
}

/// The response cache holds bytes, not only entries: an answer above a sixteenth of the budget
/// is not kept, smaller ones are until the budget is full; the gauge says what it holds. And
/// every answer carries the headers that keep pages from being framed or sniffed.
#[actix_web::test]
async fn the_response_cache_holds_at_most_its_bytes_and_answers_carry_security_headers() {
    let settings = ServiceSettings { response_cache_bytes: 16 * 4096, ..ServiceSettings::default() };
    let state = AppState::with_settings(shared_engine(), None, settings);
    let app = service(state.clone()).await;
    // A short answer (a few KB) is kept; k 50 with explain (tens of KB) is not.
    let small = json!({"query": "camp stove", "k": 1});
    let large = json!({"query": "camp stove", "k": 50, "explain": true});
    for (request, second) in [(small, "hit"), (large, "miss")] {
        let (_, headers, body) = call(&app, search(request.clone(), None)).await;
        assert_eq!(headers.get("x-cache").unwrap(), "miss");
        let bytes = serde_json::to_vec(&body).unwrap().len();
        let (_, headers, _) = call(&app, search(request, None)).await;
        assert_eq!(headers.get("x-cache").unwrap(), second, "an answer of {bytes} bytes against a 4096-byte share");
    }
    let held: usize = state
        .render_metrics()
        .lines()
        .find_map(|l| l.strip_prefix("hyrank_response_cache_bytes "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(held > 0 && held <= 4096, "{held}");
    for uri in ["/ui", "/healthz", "/nope", "/docs/"] {
        let (_, headers, _) = call(&app, test::TestRequest::get().uri(uri)).await;
        assert_eq!(headers.get("x-frame-options").map(|v| v.to_str().unwrap()), Some("DENY"), "{uri}");
        assert_eq!(headers.get("x-content-type-options").map(|v| v.to_str().unwrap()), Some("nosniff"), "{uri}");
    }
    let (_, headers, _) = call(&app, test::TestRequest::get().uri("/ui")).await;
    let policy = headers.get("content-security-policy").unwrap().to_str().unwrap();
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
}

#[actix_web::test]
async fn metrics_count_routes_by_template_stages_and_caches() {
    let app = service(AppState::from_arc(shared_engine())).await;
    let item = crate::indexed().engine.item_ids()[0].clone();
    call(&app, test::TestRequest::get().uri(&format!("/v1/items/{item}"))).await;
    call(&app, search(json!({"query": "camp stove"}), None)).await;
    call(&app, search(json!({"query": "camp stove"}), None)).await;
    let (status, headers, _) = call(&app, test::TestRequest::get().uri("/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(headers.contains_key("x-request-id"));
    // A client's id is echoed when it is one a log line can hold unquoted, else replaced.
    for (sent, kept) in [("0af7651916cd43dd-b7ad6b71:1", true), ("z=1", false), ("a\"b", false)] {
        let request = test::TestRequest::get().uri("/healthz").insert_header(("x-request-id", sent));
        let (_, headers, _) = call(&app, request).await;
        assert_eq!(headers.get("x-request-id").unwrap() == sent, kept, "{sent}");
    }
    let (status, _, text) = call(&app, test::TestRequest::get().uri("/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap().to_string();
    for expected in [
        r#"hyrank_http_requests_total{method="GET",route="/v1/items/{id}",status="200"} 1"#,
        r#"hyrank_http_requests_total{method="POST",route="/v1/search",status="200"} 2"#,
        r#"hyrank_http_requests_total{method="GET",route="unmatched",status="404"} 1"#,
        r#"hyrank_stage_duration_seconds_count{stage="bm25"} 1"#,
        r#"hyrank_stage_duration_seconds_count{stage="dense"} 1"#,
        r#"hyrank_stage_duration_seconds_count{stage="fusion"} 1"#,
        r#"hyrank_cache_lookups_total{cache="response",result="hit"} 1"#,
        r#"hyrank_cache_lookups_total{cache="response",result="miss"} 1"#,
        "hyrank_engine_queue_depth 0",
        r#"hyrank_serving_generation{generation="#,
    ] {
        assert!(text.contains(expected), "missing {expected}\n{text}");
    }
}

/// What answers say about themselves, without judgments: empty and short lists counted (a
/// zero-result rate), and for answers drawing on two retrievers the share of the top 10 both
/// returned; cache hits count as the answers they repeat.
#[actix_web::test]
async fn answers_are_counted_by_how_full_they_are_and_how_much_retrievers_agree() {
    let app = service(AppState::from_arc(shared_engine())).await;
    for (body, hits) in [
        (json!({"query": "camp stove"}), 10),
        (json!({"query": "camp stove"}), 10),
        (json!({"query": "camp stove", "mode": "bm25"}), 10),
        (json!({"query": "zzqxv", "mode": "bm25"}), 0),
        (json!({"query": "ristretto", "mode": "bm25", "k": 100}), usize::MAX),
    ] {
        let (status, _, answer) = call(&app, search(body.clone(), None)).await;
        assert_eq!(status, StatusCode::OK, "{body}: {answer}");
        let found = answer["hits"].as_array().unwrap().len();
        if hits == usize::MAX {
            assert!((1..100).contains(&found), "{body}: {found} hits; the test needs a short list");
        } else {
            assert_eq!(found, hits, "{body}");
        }
    }
    let (_, _, text) = call(&app, test::TestRequest::get().uri("/metrics")).await;
    let text = text.as_str().unwrap().to_string();
    for expected in [
        r#"hyrank_answers_total{list="full",route="search"} 3"#,
        r#"hyrank_answers_total{list="empty",route="search"} 1"#,
        r#"hyrank_answers_total{list="short",route="search"} 1"#,
        // Only the two hybrid answers (one a cache hit) drew on two retrievers.
        r#"hyrank_retriever_agreement_count{route="search"} 2"#,
    ] {
        assert!(text.contains(expected), "missing {expected}\n{text}");
    }
    let sum: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix(r#"hyrank_retriever_agreement_sum{route="search"} "#))
        .unwrap()
        .parse()
        .unwrap();
    assert!((0.0..=2.0).contains(&sum) && sum > 0.0, "two shares in (0, 1]: {sum}");
}

#[actix_web::test]
async fn readiness_and_the_index_description() {
    let app = service(AppState::from_arc(shared_engine())).await;
    let (status, _, body) = call(&app, test::TestRequest::get().uri("/readyz")).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ready")));
    let (status, _, body) = call(&app, test::TestRequest::get().uri("/v1/index")).await;
    assert_eq!(status, StatusCode::OK);
    let manifest = crate::indexed().engine.manifest();
    assert_eq!(body["manifest"]["generation"], manifest.generation.as_str());
    assert_eq!(body["manifest"]["counts"]["items"], manifest.counts.items);
    assert_eq!(body["manifest"]["model"]["sha256"], manifest.model.sha256.as_str());
    assert!(body["serving_since_unix"].as_u64().unwrap() > 0);
    // Server paths are the operator's: without the admin key, the files' names only.
    assert!(body.get("directory").is_none(), "{body}");
    let catalog = body["manifest"]["sources"]["catalog"].as_str().unwrap();
    assert_eq!(catalog, std::path::Path::new(&manifest.sources.catalog).file_name().unwrap().to_str().unwrap());
    assert!(body["manifest"]["sources"].get("catalog_resolved").is_none(), "{body}");
    let admin = service(AppState::with_settings(shared_engine(), None, keyed(Limits::default()))).await;
    let as_admin =
        test::TestRequest::get().uri("/v1/index").insert_header(("authorization", format!("Bearer {ADMIN_KEY}")));
    let (_, _, body) = call(&admin, as_admin).await;
    assert_eq!(body["directory"].as_str(), Some(crate::indexed().engine.dir().display().to_string().as_str()));
    assert_eq!(body["manifest"]["sources"]["catalog"], manifest.sources.catalog.as_str());
    // A full queue is load, not unreadiness: with one engine call allowed and a search holding
    // it, readiness answers 200 `busy` (it was a 503, which took every saturated replica out
    // of rotation at once), while a second search is refused as overloaded.
    let limits = Limits { max_inflight: 1, ..Limits::default() };
    let app =
        service(AppState::with_settings(shared_engine(), None, ServiceSettings { limits, ..Default::default() })).await;
    let held = test::call_service(&app, search(json!({"query": "a tent that holds the queue"}), None).to_request());
    let probe = async {
        let ready = call(&app, test::TestRequest::get().uri("/readyz")).await;
        (ready, call(&app, search(json!({"query": "a second search"}), None)).await)
    };
    let (held, ((status, _, body), (refused, _, _))) = futures_util::future::join(held, probe).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("busy")), "{body}");
    assert_eq!((held.status(), refused), (StatusCode::OK, StatusCode::SERVICE_UNAVAILABLE));
}

#[actix_web::test]
async fn the_model_worker_batches_concurrent_queries_and_matches_direct_encoding() {
    use hyrank_engine::batcher::{BatcherSettings, QueryBatcher};
    let embedder = Arc::clone(crate::indexed().engine.embedder());
    let batcher = Arc::new(
        QueryBatcher::spawn(Arc::clone(&embedder), BatcherSettings { max_batch: 8, queue_capacity: 64 }).unwrap(),
    );
    let queries: Vec<String> = (0..24).map(|i| format!("query number {i}: a light tent for {i} people")).collect();
    let barrier = Arc::new(std::sync::Barrier::new(queries.len()));
    let handles: Vec<_> = queries
        .iter()
        .cloned()
        .map(|q| {
            let (batcher, barrier) = (Arc::clone(&batcher), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                batcher.encode(&q).unwrap()
            })
        })
        .collect();
    for (query, handle) in queries.iter().zip(handles) {
        let batched = handle.join().unwrap();
        let direct = embedder.embed(query).unwrap();
        let cosine: f32 = batched.iter().zip(&direct).map(|(a, b)| a * b).sum();
        assert!(cosine > 0.9999, "{query}: cosine {cosine}");
    }
    let stats = batcher.stats();
    assert_eq!((stats.queries, stats.queued, stats.refused), (24, 0, 0));
    assert!(stats.batches >= 3 && stats.batches <= 24, "{stats:?}");
}

#[actix_web::test]
async fn a_server_with_a_model_worker_answers_the_same_and_reports_it() {
    use hyrank_engine::batcher::BatcherSettings;
    use hyrank_engine::RuntimeSettings;
    let root = tempfile::tempdir().unwrap();
    publish_copy(root.path(), "000001", false);
    let runtime = RuntimeSettings { query_batcher: Some(BatcherSettings::default()), ..RuntimeSettings::default() };
    let engine = Engine::open_with_runtime(root.path(), &hyrank_tests::embedder_settings(), runtime).unwrap();
    let app = service(AppState::with_settings(Arc::new(engine), None, ServiceSettings::default())).await;
    let reference = service(AppState::from_arc(shared_engine())).await;
    let query = json!({"query": "espresso grinder with burrs", "k": 10});
    let (_, _, with_worker) = call(&app, search(query.clone(), None)).await;
    let (_, _, without) = call(&reference, search(query, None)).await;
    let ids = |body: &Value| body["hits"].as_array().unwrap().iter().map(|h| h["id"].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&with_worker), ids(&without));
    assert_eq!(call(&app, test::TestRequest::get().uri("/readyz")).await.0, StatusCode::OK);
    let (_, _, metrics) = call(&app, test::TestRequest::get().uri("/metrics")).await;
    let metrics = metrics.as_str().unwrap().to_string();
    assert!(metrics.contains(r#"hyrank_model_work_total{what="queries",worker="query_encoder"} 2"#), "{metrics}");
    assert!(metrics.contains(r#"hyrank_model_queue_depth{worker="query_encoder"} 0"#), "{metrics}");
}

/// Hybrid search runs BM25 beside the query's encode (on the pool's other thread): its list
/// is still the one a BM25 search gives for the same depth and filters, item for item, and
/// both retrievers keep their own timings.
#[core::prelude::v1::test]
fn bm25_run_beside_the_encode_is_the_list_a_bm25_search_gives() {
    use hyrank_engine::explain::RetrieverKind;
    use hyrank_engine::filter::Condition;
    use hyrank_engine::request::Mode;
    let engine = shared_engine();
    for filtered in [false, true] {
        // k below the depth: an early list retrieved at k instead of the depth would differ.
        let mut request =
            SearchRequest { k: 10, candidates: Some(40), ..SearchRequest::new("waterproof tent for rain") };
        if filtered {
            request.filters.insert("category".into(), Condition::Text("tents".into()));
        }
        let hybrid = engine.search(&SearchRequest { mode: Mode::Hybrid, ..request.clone() }).unwrap();
        let bm25 = engine.search(&SearchRequest { mode: Mode::Bm25, k: 40, ..request }).unwrap();
        let by_id: std::collections::HashMap<_, _> = bm25.hits.iter().map(|h| (h.id.clone(), h)).collect();
        let mut seen = 0;
        for hit in &hybrid.hits {
            let Some(score) = hit.breakdown.retrievers.iter().find(|r| r.retriever == RetrieverKind::Bm25) else {
                assert!(!by_id.contains_key(&hit.id), "{} is in BM25's list but has no BM25 part", hit.id);
                continue;
            };
            let alone = &by_id.get(&hit.id).unwrap_or_else(|| panic!("{} is not in BM25's own list", hit.id));
            let alone = &alone.breakdown.retrievers[0];
            assert_eq!((score.raw_score, score.rank), (alone.raw_score, alone.rank), "{}", hit.id);
            seen += 1;
        }
        assert!(seen > 0, "no hybrid hit came from BM25");
        assert!(hybrid.timings.retrieve_ms.contains_key("bm25") && hybrid.timings.retrieve_ms.contains_key("dense"));
    }
}

/// CORS: off by default (no headers); for a listed origin, a preflight is answered before any
/// key is asked for and every answer (errors too) names the origin and exposes the request id;
/// an origin not listed is served without CORS headers, never refused, so same-origin pages
/// keep working; `*` answers any origin with the wildcard.
#[actix_web::test]
async fn cors_lets_listed_origins_read_answers_and_no_other() {
    let shop = "https://shop.example.com";
    let preflight = |origin: &str| {
        test::TestRequest::default()
            .method(actix_web::http::Method::OPTIONS)
            .uri("/v1/search")
            .insert_header(("origin", origin))
            .insert_header(("access-control-request-method", "POST"))
            .insert_header(("access-control-request-headers", "authorization, x-api-key, content-type"))
    };
    let from =
        |origin: &str, key: Option<&str>| search(json!({"query": "tent"}), key).insert_header(("origin", origin));
    let allow = |headers: &actix_web::http::header::HeaderMap| {
        headers.get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_string())
    };

    let off = service(AppState::with_settings(shared_engine(), None, keyed(Limits::default()))).await;
    let (status, headers, _) = call(&off, from(shop, Some(SEARCH_KEY))).await;
    assert_eq!((status, allow(&headers)), (StatusCode::OK, None));

    let settings = ServiceSettings {
        cors_origins: format!("{shop}, http://localhost:3000").parse().unwrap(),
        ..keyed(Limits::default())
    };
    let app = service(AppState::with_settings(shared_engine(), None, settings)).await;
    let (status, headers, _) = call(&app, preflight(shop)).await;
    assert_eq!(status, StatusCode::OK, "a preflight carries no key and is not refused for it");
    assert_eq!(allow(&headers).as_deref(), Some(shop));
    let methods = headers.get("access-control-allow-methods").unwrap().to_str().unwrap().to_string();
    let allowed_headers = headers.get("access-control-allow-headers").unwrap().to_str().unwrap().to_lowercase();
    assert!(methods.contains("POST") && methods.contains("PUT"), "{methods}");
    for header in ["authorization", "x-api-key", "content-type"] {
        assert!(allowed_headers.contains(header), "{header}: {allowed_headers}");
    }

    // A route whose scopes are guarded by method (PUT, DELETE) is preflighted the same way.
    let put = test::TestRequest::default()
        .method(actix_web::http::Method::OPTIONS)
        .uri("/v1/items/x")
        .insert_header(("origin", shop))
        .insert_header(("access-control-request-method", "PUT"));
    let (status, headers, _) = call(&app, put).await;
    assert_eq!((status, allow(&headers).as_deref()), (StatusCode::OK, Some(shop)));
    // An unlisted origin's preflight is refused.
    let (status, headers, _) = call(&app, preflight("https://elsewhere.example")).await;
    assert_eq!((status, allow(&headers)), (StatusCode::BAD_REQUEST, None));

    let (status, headers, body) = call(&app, from(shop, Some(SEARCH_KEY))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(allow(&headers).as_deref(), Some(shop));
    let exposed = headers.get("access-control-expose-headers").unwrap().to_str().unwrap().to_lowercase();
    assert!(exposed.contains("x-request-id"), "{exposed}");
    // An error answer carries the headers too, so the page can read why.
    let (status, headers, body) = call(&app, from(shop, None)).await;
    assert_eq!((status, allow(&headers).as_deref()), (StatusCode::UNAUTHORIZED, Some(shop)), "{body}");

    // Not listed: served as before, without the header the browser needs.
    let (status, headers, _) = call(&app, from("https://elsewhere.example", Some(SEARCH_KEY))).await;
    assert_eq!((status, allow(&headers)), (StatusCode::OK, None));

    let any = ServiceSettings { cors_origins: "*".parse().unwrap(), ..keyed(Limits::default()) };
    let app = service(AppState::with_settings(shared_engine(), None, any)).await;
    let (status, headers, _) = call(&app, from("https://elsewhere.example", Some(SEARCH_KEY))).await;
    assert_eq!((status, allow(&headers).as_deref()), (StatusCode::OK, Some("*")));
}
