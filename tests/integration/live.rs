//! Live event writes: events through the real HTTP app change the next recommendation, survive a
//! fold into the next generation exactly once, and survive `kill -9` of a server process.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;

use actix_web::{http::StatusCode, test};
use hyrank_api::{AppState, Limits, ServiceSettings};
use hyrank_engine::live::{read_events, EventLog};
use hyrank_engine::Engine;
use serde_json::{json, Value};

use crate::service::{call, service};
use crate::swaps::publish_copy;

pub(crate) const WRITE_KEY: &str = "write-key-0123456789";
pub(crate) const SEARCH_KEY: &str = "search-key-0123456789";
pub(crate) const ADMIN_KEY: &str = "admin-key-0123456789";

pub(crate) fn settings() -> ServiceSettings {
    ServiceSettings {
        limits: Limits { max_events: 5, ..Limits::default() },
        search_key: Some(SEARCH_KEY.into()),
        admin_key: Some(ADMIN_KEY.into()),
        write_key: Some(WRITE_KEY.into()),
        ..ServiceSettings::default()
    }
}

/// An index folder holding a copy of the shared fixture generation, served with its live log.
pub(crate) fn live_state(root: &Path) -> AppState {
    publish_copy(root, "000001", false);
    reopened_state(root)
}

/// The engine and live log of an index folder that already has a generation: a restart.
pub(crate) fn reopened_state(root: &Path) -> AppState {
    let mut engine = Engine::open(root, &hyrank_tests::embedder_settings()).unwrap();
    let log = EventLog::open(root, engine.manifest().live_folded_through()).unwrap();
    engine.attach_live(Arc::new(log));
    AppState::with_settings(Arc::new(engine), Some(root.to_path_buf()), settings())
}

pub(crate) fn events(body: Value, key: Option<&str>) -> test::TestRequest {
    let request = test::TestRequest::post().uri("/v1/events").set_json(body);
    match key {
        Some(key) => request.insert_header(("authorization", format!("Bearer {key}"))),
        None => request,
    }
}

pub(crate) fn recommend(user: &str) -> test::TestRequest {
    test::TestRequest::post()
        .uri("/v1/recommend")
        .insert_header(("authorization", format!("Bearer {SEARCH_KEY}")))
        .set_json(json!({"user": user, "k": 10}))
}

pub(crate) fn ids(body: &Value) -> Vec<String> {
    body["hits"].as_array().unwrap().iter().map(|h| h["id"].as_str().unwrap().to_string()).collect()
}

#[actix_web::test]
async fn an_event_moves_the_next_recommendation_and_is_folded_in_exactly_once() {
    let root = tempfile::tempdir().unwrap();
    let state = live_state(root.path());
    let app = service(state.clone()).await;

    // Keys: none, the search key, then the write key.
    let one = json!({"events": [{"user": "u001", "item": "PRG-001"}]});
    assert_eq!(call(&app, events(one.clone(), None)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(&app, events(one, Some(SEARCH_KEY))).await.0, StatusCode::FORBIDDEN);

    let (status, headers, before) = call(&app, recommend("u001")).await;
    assert_eq!((status, headers.get("x-cache").unwrap().to_str().unwrap()), (StatusCode::OK, "miss"));
    assert_eq!(call(&app, recommend("u001")).await.1.get("x-cache").unwrap(), "hit");
    let top = ids(&before)[0].clone();
    let stored_weight = |engine: &Engine, user: &str, item: &str| {
        let index = engine.index_of(item).unwrap();
        engine.user(user).ok().and_then(|u| u.history.iter().find(|i| i.item == index).map(|i| i.weight))
    };
    let weight_before = stored_weight(&state.engine(), "u001", &top).unwrap_or(0.0);
    let second_before = stored_weight(&state.engine(), "u001", "PRG-002").unwrap_or(0.0);

    // Refused batches name the row and field, and write nothing.
    let (status, _, body) = call(
        &app,
        events(
            json!({"events": [{"user": "u001", "item": top}, {"user": "u001", "item": "NO-SUCH-ITEM"}]}),
            Some(WRITE_KEY),
        ),
    )
    .await;
    // The codes every route uses (README): 404 item_not_found, 422 invalid_request.
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("item_not_found")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().starts_with("events[1].item"), "{body}");
    let (status, _, body) =
        call(&app, events(json!({"events": [{"user": "u001", "item": top, "weight": 0}]}), Some(WRITE_KEY))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_request")));
    assert!(body["error"]["message"].as_str().unwrap().starts_with("events[0].weight"), "{body}");
    // A weight outside f32's normal range is refused as the number sent, not as the inf or the
    // 0 it would read as.
    for (weight, said) in [(1e308, "got 1e308"), (1e-50, "got 1e-50"), (1e-45, "got 1e-45")] {
        let request = events(json!({"events": [{"user": "u001", "item": top, "weight": weight}]}), Some(WRITE_KEY));
        let (status, _, body) = call(&app, request).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("events[0].weight") && message.contains(said), "{body}");
    }
    // Ids follow the catalog's rule: " u001" would be a second user that looks like u001 (a CSV
    // interactions file trims its cells, so there it is u001).
    let (status, _, body) =
        call(&app, events(json!({"events": [{"user": " u001", "item": top}]}), Some(WRITE_KEY))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("events[0].user: \" u001\" has whitespace"), "{body}");
    let six: Vec<Value> = (0..6).map(|_| json!({"user": "u001", "item": top})).collect();
    let (status, _, body) = call(&app, events(json!({"events": six}), Some(WRITE_KEY))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("limit_exceeded")));
    assert_eq!(state.engine().live().unwrap().stats().events, 0);

    // The user takes the top recommendation: from the next request on it is seen, so gone.
    let (status, _, body) =
        call(&app, events(json!({"events": [{"user": "u001", "item": top, "weight": 5}]}), Some(WRITE_KEY))).await;
    assert_eq!((status, body["first_seq"].as_u64()), (StatusCode::OK, Some(1)), "{body}");
    let (_, headers, after) = call(&app, recommend("u001")).await;
    assert_eq!(headers.get("x-cache").unwrap(), "miss", "the event changed the user's cache key");
    assert!(!ids(&after).contains(&top), "{top} was just seen: {:?}", ids(&after));

    // A user the build never saw gets recommendations from their first events on.
    assert_eq!(call(&app, recommend("new-user")).await.0, StatusCode::NOT_FOUND);
    let (status, _, _) = call(
        &app,
        events(
            json!({"events": [{"user": "new-user", "item": "PRG-009", "weight": 5}, {"user": "new-user", "item": "PRG-020"}]}),
            Some(ADMIN_KEY),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, fresh) = call(&app, recommend("new-user")).await;
    assert_eq!(status, StatusCode::OK);
    let fresh = ids(&fresh);
    assert_eq!(fresh.len(), 10);
    assert!(!fresh.contains(&"PRG-009".to_string()) && !fresh.contains(&"PRG-020".to_string()));

    let index_request =
        test::TestRequest::get().uri("/v1/index").insert_header(("authorization", format!("Bearer {SEARCH_KEY}")));
    let (_, _, index) = call(&app, index_request).await;
    assert_eq!((index["live"]["events"].as_u64(), index["live"]["users"].as_u64()), (Some(3), Some(2)), "{index}");
    let (_, _, metrics) = call(&app, test::TestRequest::get().uri("/metrics")).await;
    let metrics = metrics.as_str().unwrap();
    for line in [
        "hyrank_live_events_total 3",
        "hyrank_live_log_events 3",
        "hyrank_live_write_duration_seconds_count{outcome=\"ok\"} 2",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }

    // The next build folds the log in; an event written after it read the log, before the swap,
    // stays live. After the swap every event counts exactly once.
    let summary = hyrank_indexer::build(&hyrank_tests::fixture_settings(root.path().to_path_buf())).unwrap();
    assert_eq!(summary.manifest.live.as_ref().map(|l| (l.folded_through, l.events, l.rejected)), Some((3, 3, 0)));
    let (status, _, _) =
        call(&app, events(json!({"events": [{"user": "u001", "item": "PRG-002", "weight": 2}]}), Some(WRITE_KEY)))
            .await;
    assert_eq!(status, StatusCode::OK);
    let admin = test::TestRequest::post().uri("/admin/reload").insert_header(("x-api-key", ADMIN_KEY));
    let (status, _, body) = call(&app, admin).await;
    assert_eq!((status, body["to"].as_str()), (StatusCode::OK, Some(summary.manifest.generation.as_str())), "{body}");
    let engine = state.engine();
    assert_eq!(stored_weight(&engine, "u001", &top), Some(weight_before + 5.0), "folded once, not twice");
    assert_eq!(stored_weight(&engine, "new-user", "PRG-009"), Some(5.0));
    assert_eq!(stored_weight(&engine, "u001", "PRG-002"), Some(second_before + 2.0), "the live event, once");
    let live = engine.live().unwrap().stats();
    assert_eq!((live.events, live.folded_through, live.last_seq), (1, 3, 4), "{live:?}");
    let (_, _, after_fold) = call(&app, recommend("u001")).await;
    assert!(!ids(&after_fold).contains(&top) && !ids(&after_fold).contains(&"PRG-002".to_string()));
}

/// A user whose history CF reads nothing in (an item no interaction trained, or one written
/// live) has no CF list: ALS solved such a history to zero factors, which scored every item 0,
/// and the list of ties ranked the catalog's first rows first, in every mode.
#[actix_web::test]
async fn a_history_cf_reads_nothing_in_gets_no_cf_list() {
    let root = tempfile::tempdir().unwrap();
    no_cf_list_for_a_history_cf_reads_nothing_in(live_state(root.path())).await;
}

/// The same under EASE (README: "under EASE and ALS alike"): it took an item no interaction
/// trained as a seed whose row holds no weight, ran an empty list and said nothing, and its
/// explanations said a hit was "not in its list".
#[actix_web::test]
async fn a_history_ease_reads_nothing_in_gets_no_cf_list() {
    let root = tempfile::tempdir().unwrap();
    let mut settings = hyrank_tests::fixture_settings(root.path().to_path_buf());
    settings.cf.requested = hyrank_indexer::cf_choice::CfModelChoice::Ease;
    assert!(hyrank_indexer::build(&settings).unwrap().manifest.ease.is_some());
    no_cf_list_for_a_history_cf_reads_nothing_in(reopened_state(root.path())).await;
}

async fn no_cf_list_for_a_history_cf_reads_nothing_in(state: AppState) {
    let app = service(state.clone()).await;
    let cold = std::fs::read_to_string(hyrank_tests::fixture("cold_items.txt")).unwrap();
    let cold = cold.lines().next().unwrap();
    let body = json!({"events": [{"user": "cold-user", "item": cold, "weight": 3}]});
    assert_eq!(call(&app, events(body, Some(WRITE_KEY))).await.0, StatusCode::OK);
    let retrievers = |body: &Value| -> Vec<String> {
        let hits = body["hits"].as_array().unwrap();
        let named = hits.iter().flat_map(|h| h["breakdown"]["retrievers"].as_array().unwrap().iter());
        let mut names: Vec<String> = named.map(|r| r["retriever"].as_str().unwrap().to_string()).collect();
        names.sort();
        names.dedup();
        names
    };
    let with_key =
        |request: test::TestRequest| request.insert_header(("authorization", format!("Bearer {SEARCH_KEY}")));
    let (status, _, body) = call(&app, recommend("cold-user")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(retrievers(&body), ["dense"], "content alone: {body}");
    // And why: not the weights nor the solve, which a check of ALS's solve for the note blamed
    // for a while (an item without interactions has factors of zero, which solve to zero).
    let why = "cf: no CF list: the user's history holds no item collaborative filtering was trained on";
    let says_no_cf = |body: &Value| body["notes"][0].as_str().is_some_and(|n| n.starts_with(why));
    assert!(says_no_cf(&body), "{body}");
    assert!(!ids(&body).contains(&cold.to_string()), "seen: {body}");
    let cf_only = test::TestRequest::post().uri("/v1/recommend").set_json(json!({"user": "cold-user", "mode": "cf"}));
    let (status, _, body) = call(&app, with_key(cf_only)).await;
    assert_eq!((status, body["hits"].as_array().unwrap().len()), (StatusCode::OK, 0), "{body}");
    assert!(says_no_cf(&body), "an empty list says why: {body}");
    assert!(body["notes"][0].as_str().unwrap().ends_with("ranks by CF alone, so there are no hits"), "{body}");
    let search = json!({"query": "waterproof boots", "user": "cold-user", "mode": "hybrid", "k": 10});
    let (status, _, body) = call(&app, with_key(test::TestRequest::post().uri("/v1/search").set_json(search))).await;
    assert_eq!(status, StatusCode::OK, "a 400 before: {body}");
    assert!(!retrievers(&body).contains(&"cf".to_string()) && says_no_cf(&body), "{body}");
    // One item CF was trained on gives the user factors again.
    let body = json!({"events": [{"user": "cold-user", "item": "PRG-009"}]});
    assert_eq!(call(&app, events(body, Some(WRITE_KEY))).await.0, StatusCode::OK);
    let (_, _, body) = call(&app, recommend("cold-user")).await;
    assert!(retrievers(&body).contains(&"cf".to_string()) && !says_no_cf(&body), "{body}");
}

#[actix_web::test]
async fn a_swap_while_writes_stream_in_loses_none_and_counts_none_twice() {
    let root = tempfile::tempdir().unwrap();
    let state = live_state(root.path());
    let app = service(state.clone()).await;
    // Two writers append as fast as they can (the log's own path, as the route takes it) while
    // a build runs and its generation swaps in.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|writer| {
            let (state, stop) = (state.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut acknowledged = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let event = hyrank_engine::live::Event {
                        user: format!("swap-{writer}"),
                        item: "PRG-001".into(),
                        weight: 1.0,
                        timestamp: None,
                    };
                    state.engine().live().unwrap().append(vec![event]).unwrap();
                    acknowledged += 1;
                }
                acknowledged
            })
        })
        .collect();
    let weight = |engine: &Engine, user: &str| {
        let index = engine.index_of("PRG-001").unwrap();
        engine.user(user).ok().and_then(|u| u.history.iter().find(|i| i.item == index).map(|i| i.weight)).unwrap_or(0.0)
    };
    let reload = || test::TestRequest::post().uri("/admin/reload").insert_header(("x-api-key", ADMIN_KEY));
    while state.engine().live().unwrap().stats().events < 50 {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let summary = hyrank_indexer::build(&hyrank_tests::fixture_settings(root.path().to_path_buf())).unwrap();
    assert_eq!(call(&app, reload()).await.0, StatusCode::OK);
    let folded = summary.manifest.live.as_ref().unwrap().folded_through;
    let after_swap = state.engine().live().unwrap().stats().last_seq;
    std::thread::sleep(std::time::Duration::from_millis(50));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acknowledged: Vec<usize> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    assert!(after_swap > folded, "writes landed between the build's read and the swap: {after_swap} > {folded}");
    // The server's view: the generation's folded events plus the log's later ones, each once.
    let engine = state.engine();
    for (writer, count) in acknowledged.iter().enumerate() {
        assert_eq!(weight(&engine, &format!("swap-{writer}")), *count as f32, "writer {writer}, served");
    }
    drop(engine);
    // And the next build, which folds them all.
    hyrank_indexer::build(&hyrank_tests::fixture_settings(root.path().to_path_buf())).unwrap();
    assert_eq!(call(&app, reload()).await.0, StatusCode::OK);
    let engine = state.engine();
    assert_eq!(engine.live().unwrap().stats().events, 0);
    for (writer, count) in acknowledged.iter().enumerate() {
        assert_eq!(weight(&engine, &format!("swap-{writer}")), *count as f32, "writer {writer}, folded");
    }
}

#[actix_web::test]
async fn the_log_restarts_after_a_fold_and_every_build_still_counts_every_event_once() {
    let root = tempfile::tempdir().unwrap();
    let state = live_state(root.path());
    let app = service(state.clone()).await;
    let write = |user: &str, item: &str, weight: f64| {
        events(json!({"events": [{"user": user, "item": item, "weight": weight}]}), Some(WRITE_KEY))
    };
    let reload = || test::TestRequest::post().uri("/admin/reload").insert_header(("x-api-key", ADMIN_KEY));
    let segments = || {
        let mut names: Vec<String> = std::fs::read_dir(root.path().join("live"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("events-"))
            .collect();
        names.sort();
        names
    };
    let keep_one =
        || hyrank_indexer::IndexSettings { keep: 1, ..hyrank_tests::fixture_settings(root.path().to_path_buf()) };
    let weight = |engine: &Engine, item: &str| {
        let index = engine.index_of(item).unwrap();
        engine.user("carried-user").ok().and_then(|u| u.history.iter().find(|i| i.item == index).map(|i| i.weight))
    };

    assert_eq!(call(&app, write("carried-user", "PRG-001", 2.0)).await.0, StatusCode::OK);
    let first = hyrank_indexer::build(&keep_one()).unwrap();
    assert!(first.manifest.live.as_ref().unwrap().carried);
    assert!(first.dir.join("live.jsonl").is_file());
    assert_eq!(call(&app, reload()).await.0, StatusCode::OK);
    assert_eq!(segments(), ["events-00000001.jsonl", "events-00000002.jsonl"], "a swap starts a new file");
    assert_eq!(call(&app, write("carried-user", "PRG-002", 3.0)).await.0, StatusCode::OK);
    // The serving generation still needs file 1's successor only: file 1 is folded and carried
    // by every generation left.
    let second = hyrank_indexer::build(&keep_one()).unwrap();
    assert_eq!(second.manifest.live.as_ref().map(|l| (l.events, l.folded_through)), Some((2, 2)));
    assert_eq!(segments(), ["events-00000002.jsonl"], "the folded file is gone");
    assert_eq!(call(&app, reload()).await.0, StatusCode::OK);
    // Built again with file 1 gone: its event comes from the generation's carried records.
    let third = hyrank_indexer::build(&keep_one()).unwrap();
    assert_eq!(third.manifest.live.as_ref().map(|l| (l.events, l.folded_through)), Some((2, 2)));
    assert_eq!(call(&app, reload()).await.0, StatusCode::OK);
    let engine = state.engine();
    assert_eq!((weight(&engine, "PRG-001"), weight(&engine, "PRG-002")), (Some(2.0), Some(3.0)), "each event once");
    assert_eq!(engine.live().unwrap().stats().events, 0);
    drop(engine);
    // `--no-live-events` says the file holds every logged event, the carried ones included:
    // with a file that holds one of the two, the other is refused and reported, not lost
    // without a word.
    let file = root.path().join("with-one-event.csv");
    let fixture = std::fs::read_to_string(hyrank_tests::fixture("interactions.csv")).unwrap();
    std::fs::write(&file, format!("{fixture}carried-user,PRG-001,2,1795309300\r\n")).unwrap();
    let claimed = hyrank_indexer::IndexSettings { interactions: Some(file), live_events: false, ..keep_one() };
    let fourth = hyrank_indexer::build(&claimed).unwrap();
    assert_eq!(fourth.manifest.live.as_ref().map(|l| (l.events, l.rejected)), Some((0, 1)));
    let rejects = std::fs::read_to_string(fourth.rejects_file.expect("the refused event is written")).unwrap();
    assert!(
        rejects.contains("live event 2: user \\\"carried-user\\\" with item \\\"PRG-002\\\" is in no row"),
        "{rejects}"
    );
    assert!(!rejects.contains("PRG-001"), "{rejects}");
    // It points at the line that holds the event in the new generation's carried records,
    // which live as long as its rejects (the log's files and the older generations may go).
    let reject: Value = serde_json::from_str(rejects.lines().next().unwrap()).unwrap();
    let carried = fourth.dir.join("live.jsonl");
    assert_eq!((reject["file"].as_str(), reject["line"].as_u64()), (carried.to_str(), Some(2)), "{reject}");
    let line = std::fs::read_to_string(&carried).unwrap().lines().nth(1).unwrap().to_string();
    assert!(line.contains("\"seq\":2") && line.contains("PRG-002"), "{line}");
    // A restart on the compacted log numbers on from where it stopped.
    drop(app);
    drop(state);
    let state = reopened_state(root.path());
    let app = service(state.clone()).await;
    let (_, _, body) = call(&app, write("carried-user", "PRG-003", 1.0)).await;
    assert_eq!(body["first_seq"], 3, "{body}");
    // The serving generation's carried records cut short (a partial copy): the next build
    // refuses, naming the file, rather than fold through less and lose the writes after.
    let whole = std::fs::read(&carried).unwrap();
    let first_line = whole.iter().position(|&b| b == b'\n').unwrap() + 1;
    let cuts = [
        (first_line, "ends at sequence number 1, but the generation folded records through 2"),
        (first_line + 10, "line 2 is cut short"),
    ];
    for (cut, says) in cuts {
        std::fs::write(&carried, &whole[..cut]).unwrap();
        let error = hyrank_indexer::build(&keep_one()).err().expect("refused").to_string();
        assert!(error.contains(says) && error.contains("live.jsonl"), "{error}");
    }
    std::fs::write(&carried, &whole).unwrap();
    let fifth = hyrank_indexer::build(&keep_one()).unwrap();
    assert_eq!(fifth.manifest.live.as_ref().map(|l| l.folded_through), Some(3));
}

#[actix_web::test]
async fn a_server_without_a_write_or_admin_key_refuses_writes() {
    let root = tempfile::tempdir().unwrap();
    let state = live_state(root.path());
    let open = AppState::with_settings(state.engine(), None, ServiceSettings::default());
    let app = service(open).await;
    let (status, _, body) =
        call(&app, events(json!({"events": [{"user": "u", "item": "PRG-001"}]}), Some(WRITE_KEY))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("writes_disabled")));
}

/// A replica's index folder is a copy of what the publisher ships: a write there would reach
/// neither the next build nor the other replicas, and the next pulled generation would hide it.
/// So it takes none, even with the admin key, and reads go on.
#[actix_web::test]
async fn a_replica_refuses_writes_and_keeps_serving_reads() {
    let root = tempfile::tempdir().unwrap();
    let state = live_state(root.path());
    let replica = ServiceSettings { write_key: None, replica_of: Some("s3://bucket/prod".into()), ..settings() };
    let app = service(AppState::with_settings(state.engine(), Some(root.path().to_path_buf()), replica)).await;
    let admin = |request: test::TestRequest| request.insert_header(("authorization", format!("Bearer {ADMIN_KEY}")));
    let writes = [
        events(json!({"events": [{"user": "u", "item": "PRG-001"}]}), Some(ADMIN_KEY)),
        admin(test::TestRequest::put().uri("/v1/items/NEW-1")).set_json(json!({"title": "a tent", "text": "for rain"})),
        admin(test::TestRequest::put().uri("/v1/items/PRG-001/fields")).set_json(json!({"fields": {"stock": 3}})),
        admin(test::TestRequest::delete().uri("/v1/items/PRG-001")),
    ];
    for request in writes {
        let (status, _, body) = call(&app, request).await;
        assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("read_only_replica")));
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("this server is a replica of s3://bucket/prod and takes no writes"), "{message}");
    }
    assert!(read_events(root.path()).unwrap().is_empty(), "nothing reached the log");
    // Without a key the answer is the usual one, which names no bucket.
    let (status, _, _) = call(&app, events(json!({"events": [{"user": "u", "item": "PRG-001"}]}), None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A replica with no key at all says it is one (not "start the server with a write key",
    // which it would refuse), and names no bucket.
    let keyless = ServiceSettings { replica_of: Some("s3://bucket/prod".into()), ..ServiceSettings::default() };
    let bare = service(AppState::with_settings(state.engine(), Some(root.path().to_path_buf()), keyless)).await;
    let (status, _, body) = call(&bare, events(json!({"events": [{"user": "u", "item": "PRG-001"}]}), None)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("read_only_replica")));
    assert!(!body.to_string().contains("s3://"), "{body}");
    let search = test::TestRequest::post()
        .uri("/v1/search")
        .insert_header(("authorization", format!("Bearer {SEARCH_KEY}")))
        .set_json(json!({"query": "tent", "k": 3}));
    let (status, _, body) = call(&app, search).await;
    assert_eq!((status, ids(&body).len()), (StatusCode::OK, 3), "{body}");
}

/// One HTTP/1.1 request on a fresh connection, with the admin key (good for every route);
/// `None` when the server is gone.
fn http(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, Value)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {ADMIN_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Some((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

/// The server process the kill test kills: this test binary again, running only this test,
/// which serves the index named by HYRANK_LIVE_CHILD_INDEX with the real app and prints its
/// port. Ignored (and a no-op) when run any other way.
// `test` here is actix's module; the attribute is the standard one.
#[core::prelude::v1::test]
#[ignore = "the child process of `acknowledged_events_survive_kill_9_of_the_server`"]
fn live_server_child() {
    let Some(root) = std::env::var_os("HYRANK_LIVE_CHILD_INDEX") else { return };
    let root = std::path::PathBuf::from(root);
    let mut engine = Engine::open(&root, &hyrank_tests::embedder_settings()).unwrap();
    let log = EventLog::open(&root, engine.manifest().live_folded_through()).unwrap();
    engine.attach_live(Arc::new(log));
    let state = AppState::with_settings(Arc::new(engine), Some(root), settings());
    actix_web::rt::System::new().block_on(async move {
        let server =
            actix_web::HttpServer::new(move || actix_web::App::new().configure(hyrank_api::configure(state.clone())))
                .workers(2)
                .bind(("127.0.0.1", 0))
                .unwrap();
        println!("LISTENING {}", server.addrs()[0].port());
        std::io::stdout().flush().unwrap();
        server.run().await.unwrap();
    });
}

#[core::prelude::v1::test]
fn acknowledged_events_survive_kill_9_of_the_server() {
    let root = tempfile::tempdir().unwrap();
    publish_copy(root.path(), "000001", false);
    let start = || {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "live::live_server_child", "--nocapture", "--test-threads=1"])
            .env("HYRANK_LIVE_CHILD_INDEX", root.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // The harness prints `test live::live_server_child ... ` before the child's own line.
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let port = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| l.split("LISTENING ").nth(1).map(|p| p.trim().parse::<u16>().unwrap()))
            .expect("the child server printed its port");
        (child, port)
    };
    let (mut child, port) = start();

    // Two writers stream events, each batch with its id; the server is killed while both are
    // mid-stream.
    let batch = |writer: usize, i: usize| {
        format!(
            r#"{{"batch_id":"w{writer}-{i}","events":[{{"user":"w{writer}","item":"PRG-{:03}","weight":{}}}]}}"#,
            i % 20 + 1,
            i + 1
        )
    };
    let writers: Vec<_> = (0..2)
        .map(|writer| {
            std::thread::spawn(move || {
                let mut acknowledged = Vec::new();
                for i in 0.. {
                    match http(port, "POST", "/v1/events", &batch(writer, i)) {
                        Some((200, reply)) => acknowledged.push((reply["first_seq"].as_u64().unwrap(), writer, i + 1)),
                        Some((status, reply)) => panic!("{status}: {reply}"),
                        None => return acknowledged,
                    }
                }
                unreachable!()
            })
        })
        .collect();
    // And a third puts items (each embedded by the model before it is logged).
    let puts_acknowledged = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&puts_acknowledged);
    let putter = std::thread::spawn(move || {
        let mut acknowledged = Vec::new();
        for i in 0.. {
            let body =
                format!(r#"{{"title":"Kill test item {i}","text":"A lantern that survives a crash, number {i}."}}"#);
            match http(port, "PUT", &format!("/v1/items/KILL-{i}"), &body) {
                Some((200, _)) => {
                    acknowledged.push(i);
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                Some((status, reply)) => panic!("{status}: {reply}"),
                None => return acknowledged,
            }
        }
        unreachable!()
    });
    while read_events(root.path()).unwrap().iter().filter(|e| e.event().is_some()).count() < 60
        || puts_acknowledged.load(std::sync::atomic::Ordering::SeqCst) < 2
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // SIGKILL: no destructor, no flush, no goodbye.
    child.kill().unwrap();
    child.wait().unwrap();
    let acknowledged: Vec<(u64, usize, usize)> = writers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    let put: Vec<usize> = putter.join().unwrap();
    assert!(!put.is_empty());
    // 60 were written when the kill came; each writer may have had its last one unanswered.
    assert!(acknowledged.len() >= 58, "{} acknowledged", acknowledged.len());

    // Restarted: every acknowledged event is there, whole, with its sequence number.
    let (mut child, port) = start();
    let logged = read_events(root.path()).unwrap();
    for (seq, writer, weight) in &acknowledged {
        let event = logged.iter().find(|e| e.seq == *seq).unwrap_or_else(|| panic!("acknowledged event {seq} lost"));
        let event = event.event().expect("an interaction");
        assert_eq!((event.user.as_str(), event.weight), (format!("w{writer}").as_str(), *weight as f32));
    }
    // Nothing half-written: each writer's logged events are its own, in order, and at most one
    // per writer was written without being acknowledged (the request the kill cut off).
    let weights_of = |logged: &[hyrank_engine::live::LoggedRecord], writer: usize| -> Vec<f32> {
        logged.iter().filter_map(|e| e.event()).filter(|e| e.user == format!("w{writer}")).map(|e| e.weight).collect()
    };
    for writer in 0..2 {
        let weights = weights_of(&logged, writer);
        assert!(weights.iter().zip(1..).all(|(w, i)| *w == i as f32), "writer {writer}: {weights:?}");
        let acked = acknowledged.iter().filter(|a| a.1 == writer).count();
        assert!(
            weights.len() == acked || weights.len() == acked + 1,
            "writer {writer}: {} logged, {acked} acked",
            weights.len()
        );
    }
    // Every acknowledged item is there after the restart, whole, found by id and by BM25.
    for i in &put {
        let (status, item) = http(port, "GET", &format!("/v1/items/KILL-{i}"), "").unwrap();
        assert_eq!((status, item["title"].as_str()), (200, Some(format!("Kill test item {i}").as_str())), "{item}");
    }
    let last = put.last().unwrap();
    let query = format!(r#"{{"query":"kill test item {last}","mode":"bm25","k":50}}"#);
    let (status, hits) = http(port, "POST", "/v1/search", &query).unwrap();
    assert_eq!(status, 200, "{hits}");
    assert!(hits["hits"].as_array().unwrap().iter().any(|h| h["id"] == format!("KILL-{last}")), "{hits}");
    // Each writer retries the batch the kill left unanswered, with its id: written now if the
    // first attempt never reached the disk, answered from the log if it did. Exactly once.
    for writer in 0..2 {
        let acked = acknowledged.iter().filter(|a| a.1 == writer).count();
        let logged_before = weights_of(&logged, writer).len();
        let (status, reply) = http(port, "POST", "/v1/events", &batch(writer, acked)).unwrap();
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["replayed"].as_bool(), Some(logged_before == acked + 1), "{reply}");
    }
    let logged = read_events(root.path()).unwrap();
    for writer in 0..2 {
        let acked = acknowledged.iter().filter(|a| a.1 == writer).count();
        let weights = weights_of(&logged, writer);
        assert_eq!(weights, (1..=acked + 1).map(|i| i as f32).collect::<Vec<_>>(), "writer {writer}");
    }
    // And the restarted server serves them and takes new ones after them.
    let (status, reply) = http(port, "POST", "/v1/events", r#"{"events":[{"user":"w0","item":"PRG-001"}]}"#).unwrap();
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["first_seq"].as_u64(), Some(logged.last().unwrap().seq + 1));
    child.kill().unwrap();
    child.wait().unwrap();
}
