//! A request's time: a rerank budget (`rerank.budget_ms`) cuts the reranked window short and
//! the answer says so, and a client that hangs up stops the work it asked for.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::test;
use hyrank_api::AppState;
use hyrank_engine::{Engine, RuntimeSettings};
use serde_json::{json, Value};

use crate::api::{ids, post};
use crate::service::{call, search, service};
use crate::swaps::publish_copy;

const QUERY: &str = "waterproof boots for wet rock";

fn late_interaction(budget_ms: Option<u64>) -> Value {
    let mut rerank = json!({"reranker": "late_interaction", "depth": 20, "weight": 1});
    if let Some(budget) = budget_ms {
        rerank["budget_ms"] = json!(budget);
    }
    json!({"query": QUERY, "k": 20, "rerank": rerank})
}

#[actix_web::test]
async fn a_rerank_budget_reranks_the_fused_lists_first_and_keeps_the_rest_in_fused_order() {
    let (status, whole) = post("/v1/search", late_interaction(None)).await;
    assert_eq!(status, StatusCode::OK, "{whole}");
    assert!(whole.get("rerank_cut").is_none(), "{whole}");
    let (_, fused) = post("/v1/search", json!({"query": QUERY, "k": 20})).await;
    let fused = ids(&fused);

    // A budget the whole rerank fits in changes nothing.
    let (_, roomy) = post("/v1/search", late_interaction(Some(60_000))).await;
    assert!(roomy.get("rerank_cut").is_none(), "{roomy}");
    assert_eq!(roomy["hits"], whole["hits"]);

    // One millisecond: no transformer reranks 20 items in it, so the rerank stops after its
    // first pass at most (or before one, the query's encoding having spent the budget).
    let (status, cut) = post("/v1/search", late_interaction(Some(1))).await;
    assert_eq!(status, StatusCode::OK, "{cut}");
    let reranked = cut["rerank_cut"]["reranked"].as_u64().expect("rerank_cut") as usize;
    assert!(reranked < 20, "{cut}");
    assert_eq!((cut["rerank_cut"]["depth"].as_u64(), cut["rerank_cut"]["budget_ms"].as_u64()), (Some(20), Some(1)));
    let notes = cut["notes"].to_string();
    assert!(
        notes.contains("cut short by its budget of 1 ms") && notes.contains(&format!("{reranked} of 20")),
        "{notes}"
    );
    let hits = cut["hits"].as_array().unwrap();
    let (first, rest) = hits.split_at(reranked);
    assert!(first.iter().all(|hit| hit["breakdown"]["rerank"].is_object()), "{cut}");
    assert!(rest.iter().all(|hit| hit["breakdown"].get("rerank").is_none()), "{cut}");
    // The reranked ones are the fused list's first, reordered; the rest follow in fused order.
    let cut_ids = ids(&cut);
    let mut head = cut_ids[..reranked].to_vec();
    head.sort();
    let mut fused_head = fused[..reranked].to_vec();
    fused_head.sort();
    assert_eq!((head, &cut_ids[reranked..]), (fused_head, &fused[reranked..]));
    crate::api::assert_breakdowns_compose(&cut);

    for (budget, status) in [(0, StatusCode::UNPROCESSABLE_ENTITY), (60_001, StatusCode::UNPROCESSABLE_ENTITY)] {
        let (got, body) = post("/v1/search", late_interaction(Some(budget))).await;
        assert_eq!(got, status, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("rerank.budget_ms"), "{body}");
    }
}

#[actix_web::test]
async fn an_answer_cut_short_is_not_cached_and_is_counted() {
    let app = service(AppState::from_arc(Arc::clone(&crate::indexed().engine))).await;
    for _ in 0..2 {
        let (status, headers, body) = call(&app, search(late_interaction(Some(1)), None)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body["rerank_cut"].is_object(), "{body}");
        assert_eq!(headers.get("x-cache").unwrap(), "miss", "a cut answer was cached");
    }
    let (_, headers, _) = call(&app, search(late_interaction(Some(60_000)), None)).await;
    assert_eq!(headers.get("x-cache").unwrap(), "miss");
    let (_, headers, _) = call(&app, search(late_interaction(Some(60_000)), None)).await;
    assert_eq!(headers.get("x-cache").unwrap(), "hit", "a whole answer is cached as before");
    // A whole answer is the same whatever budget let it finish: one key for every budget.
    for budget in [Some(59_999), None] {
        let (_, headers, body) = call(&app, search(late_interaction(budget), None)).await;
        assert_eq!(headers.get("x-cache").unwrap(), "hit", "{budget:?}: {body}");
    }
    let (_, _, metrics) = call(&app, test::TestRequest::get().uri("/metrics")).await;
    let metrics = metrics.as_str().unwrap().to_string();
    assert!(metrics.contains(r#"hyrank_rerank_cut_total{route="search"} 2"#), "{metrics}");
}

/// One HTTP/1.1 request's bytes.
fn request(method: &str, path: &str, body: &str) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
}

/// The status and body of one request on a fresh connection.
fn exchange(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(request(method, path, body).as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, response.split_once("\r\n\r\n").map_or(String::new(), |(_, b)| b.to_string()))
}

/// The value of the metric line starting with `name` (labels included), 0 when absent.
fn metric(port: u16, name: &str) -> f64 {
    let (_, text) = exchange(port, "GET", "/metrics", "");
    text.lines().find_map(|line| line.strip_prefix(name)?.trim().parse().ok()).unwrap_or(0.0)
}

/// Polls `metric` until `wanted` holds, for up to 20 s.
fn wait_for(port: u16, name: &str, wanted: impl Fn(f64) -> bool) -> f64 {
    let start = Instant::now();
    loop {
        let value = metric(port, name);
        if wanted(value) || start.elapsed() > Duration::from_secs(20) {
            return value;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A served search that reranks the most the server allows, with a long query: seconds of
/// late interaction on a CPU.
fn costly(seed: &str) -> String {
    let words = "waterproof tent boots stove lantern grinder espresso backpack rain jacket ";
    let query = format!("{seed} {}", words.repeat(12));
    let query: String = query.chars().take(900).collect();
    json!({"query": query, "k": 10, "rerank": {"reranker": "late_interaction", "depth": 100}}).to_string()
}

#[core::prelude::v1::test]
fn a_client_that_hangs_up_leaves_the_rerank_queue_and_its_work_stops() {
    let root = tempfile::tempdir().unwrap();
    publish_copy(root.path(), "000001", false);
    // One rerank turn, which the test holds: both searches wait for it, the first for as
    // long as the test needs it waiting (a first search that reranks instead could end before
    // the second left on a slow machine, and the test would prove nothing).
    let runtime = RuntimeSettings { rerank_slots: Some(1), ..RuntimeSettings::default() };
    let engine = Arc::new(Engine::open_with_runtime(root.path(), &hyrank_tests::embedder_settings(), runtime).unwrap());
    let turn = engine.runtime().rerank_turn(None, &hyrank_engine::call::Call::now()).unwrap();
    let state = AppState::from_arc(engine.clone());
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            // The server `hyrank-serve` runs (main.rs).
            let server = hyrank_api::http_server!(state).workers(2).bind(("127.0.0.1", 0)).unwrap();
            sender.send(server.addrs()[0].port()).unwrap();
            server.run().await.unwrap();
        })
    });
    let port = receiver.recv().unwrap();
    let depth = "hyrank_engine_queue_depth";
    let first = std::thread::spawn(move || exchange(port, "POST", "/v1/search", &costly("first")));
    assert_eq!(wait_for(port, depth, |d| d >= 1.0), 1.0, "the first search never reached the engine");
    let mut second = TcpStream::connect(("127.0.0.1", port)).unwrap();
    second.write_all(request("POST", "/v1/search", &costly("second")).as_bytes()).unwrap();
    assert_eq!(wait_for(port, depth, |d| d >= 2.0), 2.0, "the second search never reached the engine");
    // Its client hangs up while it waits for a turn.
    drop(second);
    let abandoned = r#"hyrank_abandoned_total{route="search"}"#;
    assert_eq!(wait_for(port, abandoned, |n| n >= 1.0), 1.0);
    // Its work left the engine while the first still waits: it took no turn. The first is
    // answered once the turn is free (within the 5 s wait for one).
    assert_eq!(wait_for(port, depth, |d| d <= 1.0), 1.0);
    assert!(!first.is_finished());
    drop(turn);
    let (status, body) = first.join().unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(metric(port, depth), 0.0);
    let served = r#"hyrank_http_requests_total{method="POST",route="/v1/search",status="200"}"#;
    assert_eq!(metric(port, served), 1.0, "the hung-up request was not answered");
}
