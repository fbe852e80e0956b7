//! What a server's live writes tell the operator and what bounds them: health while writes
//! fail, writes admitted apart from reads, and the live log's bound in memory.

use std::path::Path;
use std::sync::Arc;

use actix_web::{http::StatusCode, test};
use hyrank_api::{AppState, Limits, ServiceSettings};
use hyrank_engine::call::Call;
use hyrank_engine::live::EventLog;
use hyrank_engine::{Engine, RuntimeSettings};
use serde_json::{json, Value};

use crate::live::{events, live_state, recommend, settings, SEARCH_KEY, WRITE_KEY};
use crate::service::{call, service};
use crate::swaps::publish_copy;

/// [`live_state`] with other request limits, and no reloading.
fn limited_state(root: &Path, limits: Limits) -> AppState {
    let engine = live_state(root).engine();
    AppState::with_settings(engine, None, ServiceSettings { limits, ..settings() })
}

/// `/readyz`'s `live_writes` and status, checked to agree with `/healthz`'s.
async fn health(
    app: &impl actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
    >,
) -> (Option<String>, String) {
    let (status, _, body) = call(app, test::TestRequest::get().uri("/readyz")).await;
    let (_, _, live) = call(app, test::TestRequest::get().uri("/healthz")).await;
    assert_eq!(status, StatusCode::OK, "reads still serve: {body}");
    assert_eq!(body["live_writes"], live["live_writes"]);
    (body["live_writes"].as_str().map(str::to_string), body["status"].as_str().unwrap().to_string())
}

#[actix_web::test]
async fn health_says_when_live_writes_fail_until_one_succeeds() {
    let root = tempfile::tempdir().unwrap();
    let state = live_state(root.path());
    let app = service(state.clone()).await;
    assert_eq!(health(&app).await, (None, "ready".into()));
    // A write the log could not take (a full disk: what `observe_write` records for a 5xx).
    state.metrics().live_write_outcome(Some(false));
    assert_eq!(health(&app).await, (Some("failing".into()), "ready".into()));
    let metrics = state.render_metrics();
    assert!(metrics.contains("hyrank_live_writes_failing 1"), "{metrics}");
    // A write refused for the client's fault says nothing of the log; one that lands clears it.
    let bad = json!({"events": [{"user": "u001", "item": "PRG-001", "weight": "heavy"}]});
    assert!(call(&app, events(bad, Some(WRITE_KEY))).await.0.is_client_error());
    assert_eq!(health(&app).await.0.as_deref(), Some("failing"));
    let good = json!({"events": [{"user": "u001", "item": "PRG-001"}]});
    assert_eq!(call(&app, events(good, Some(WRITE_KEY))).await.0, StatusCode::OK);
    assert_eq!(health(&app).await.0, None);
    assert!(state.render_metrics().contains("hyrank_live_writes_failing 0"));
}

/// Writes have a queue of their own: with the one engine call allowed held by a search, a
/// second search is refused as overloaded while an event batch is still written.
///
/// The held search is a late-interaction rerank waiting for the engine's only rerank turn,
/// which the test holds until the others are answered: a plain search on the fixtures can end
/// before the write does (CI saw the second search served), so its hold would be luck.
#[actix_web::test]
async fn a_full_read_queue_does_not_refuse_writes() {
    let root = tempfile::tempdir().unwrap();
    publish_copy(root.path(), "000001", false);
    let one_turn = RuntimeSettings { rerank_slots: Some(1), ..Default::default() };
    let mut engine = Engine::open_with_runtime(root.path(), &hyrank_tests::embedder_settings(), one_turn).unwrap();
    engine.attach_live(Arc::new(EventLog::open(root.path(), engine.manifest().live_folded_through()).unwrap()));
    let engine = Arc::new(engine);
    let limits = Limits { max_inflight: 1, ..settings().limits };
    let state = AppState::with_settings(engine.clone(), None, ServiceSettings { limits, ..settings() });
    let app = service(state.clone()).await;
    let search = |body: Value| {
        test::TestRequest::post()
            .uri("/v1/search")
            .insert_header(("authorization", format!("Bearer {SEARCH_KEY}")))
            .set_json(body)
    };
    let turn = engine.runtime().rerank_turn(None, &Call::now()).unwrap();
    let reranked = json!({"query": "a tent that holds the queue", "rerank": {"reranker": "late_interaction"}});
    let held = test::call_service(&app, search(reranked).to_request());
    let others = async {
        while state.queue_depth() == 0 {
            actix_web::rt::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let written =
            call(&app, events(json!({"events": [{"user": "u001", "item": "PRG-001"}]}), Some(WRITE_KEY))).await;
        let refused = call(&app, search(json!({"query": "a second search"}))).await.0;
        drop(turn);
        (refused, written)
    };
    let (held, (refused, (written, _, body))) = futures_util::future::join(held, others).await;
    assert_eq!((held.status(), refused), (StatusCode::OK, StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(written, StatusCode::OK, "{body}");
}

/// The live log's records in memory are bounded: past `max_live_events` a batch is refused
/// whole (409 `live_log_full`), with how to make room; what was written stays served.
#[actix_web::test]
async fn the_live_log_refuses_events_past_its_bound() {
    let root = tempfile::tempdir().unwrap();
    let app = service(limited_state(root.path(), Limits { max_live_events: 3, ..settings().limits })).await;
    let batch = |n: usize| json!({"events": (0..n).map(|i| json!({"user": format!("b{i}"), "item": "PRG-001"})).collect::<Vec<_>>()});
    assert_eq!(call(&app, events(batch(2), Some(WRITE_KEY))).await.0, StatusCode::OK);
    let (status, _, body) = call(&app, events(batch(2), Some(WRITE_KEY))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("live_log_full")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("max_live_events (3)"), "{body}");
    assert_eq!(call(&app, events(batch(1), Some(WRITE_KEY))).await.0, StatusCode::OK, "one more fits");
    assert_eq!(call(&app, recommend("b1")).await.0, StatusCode::OK);
}
