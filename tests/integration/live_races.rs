//! Live item writes that race a build or another write: what the server answers is what it
//! and the next build do.

use actix_web::{http::StatusCode, test};
use serde_json::{json, Value};

use crate::live::{live_state, ADMIN_KEY, SEARCH_KEY, WRITE_KEY};
use crate::service::{call, service};

fn write(method: test::TestRequest, uri: &str, body: Option<Value>) -> test::TestRequest {
    let request = method.uri(uri).insert_header(("authorization", format!("Bearer {WRITE_KEY}")));
    match body {
        Some(body) => request.set_json(body),
        None => request,
    }
}

/// The name of the row `id` names now: what a write made against it carries (as the API's
/// write handlers take it, `Engine::row_name`).
fn row_hash(state: &hyrank_api::AppState, id: &str) -> String {
    let engine = state.engine();
    engine.row_name(engine.index_of(id).unwrap()).unwrap()
}

fn item(id: &str) -> test::TestRequest {
    test::TestRequest::get()
        .uri(&format!("/v1/items/{id}"))
        .insert_header(("authorization", format!("Bearer {SEARCH_KEY}")))
}

/// Writes logged after a build read the log, while the generation before it still served, about
/// rows that build changed by folding in field updates, apply once the new generation swaps in,
/// as the next build applies them: a delete, a second field update and a put (the server used
/// to compare them with the new generation's row alone, and dropped them until the next build).
#[actix_web::test]
async fn writes_logged_while_a_build_ran_apply_after_the_swap() {
    let root = tempfile::tempdir().unwrap();
    let state = live_state(root.path());
    let app = service(state.clone()).await;
    let fields = |price: u32| json!({"fields": {"category": "tents", "price": price}});
    for id in ["TNT-001", "TNT-002", "TNT-005"] {
        let uri = format!("/v1/items/{id}/fields");
        assert_eq!(call(&app, write(test::TestRequest::put(), &uri, Some(fields(222)))).await.0, StatusCode::OK);
    }
    // Any number of updates may fold into one build: the row the serving generation stores
    // (the catalog's) stays one a write may name.
    for price in 1..=10 {
        let uri = "/v1/items/TNT-002/fields";
        assert_eq!(call(&app, write(test::TestRequest::put(), uri, Some(fields(price)))).await.0, StatusCode::OK);
    }
    // The build folds those three updates in; the server goes on serving the generation before.
    let settings = hyrank_tests::fixture_settings(root.path().to_path_buf());
    let built = hyrank_indexer::build(&settings).unwrap();
    assert_eq!(built.manifest.live.as_ref().unwrap().row_hashes.len(), 3, "each row's catalog version");
    let put = json!({"title": "Summit Forge Larch 3 Dome Tent (2027)", "text": "New edition.", "fields": {"category": "tents"}});
    let writes = [
        write(test::TestRequest::delete(), "/v1/items/TNT-001", None),
        write(test::TestRequest::put(), "/v1/items/TNT-002/fields", Some(fields(333))),
        write(test::TestRequest::put(), "/v1/items/TNT-005", Some(put)),
    ];
    for request in writes {
        let (status, _, body) = call(&app, request).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    macro_rules! seen {
        () => {{
            let (deleted, _, _) = call(&app, item("TNT-001")).await;
            let (_, _, updated) = call(&app, item("TNT-002")).await;
            let (_, _, put) = call(&app, item("TNT-005")).await;
            (deleted, updated["fields"]["price"].clone(), put["title"].clone())
        }};
    }
    let expected = (StatusCode::NOT_FOUND, json!(333), json!("Summit Forge Larch 3 Dome Tent (2027)"));
    assert_eq!(seen!(), expected, "before the swap");
    let reload = test::TestRequest::post().uri("/admin/reload").insert_header(("x-api-key", ADMIN_KEY));
    let (status, _, body) = call(&app, reload).await;
    assert_eq!((status, &body["outcome"]), (StatusCode::OK, &json!("swapped")), "{body}");
    assert_eq!(seen!(), expected, "after the swap");
    // The next build agrees: nothing superseded.
    let live = hyrank_indexer::build(&settings).unwrap().manifest.live.unwrap();
    let superseded = (live.superseded_deletes, live.superseded_updates, live.superseded_puts);
    assert_eq!((live.deleted, superseded), (vec!["TNT-001".to_string()], (0, 0, 0)));
}

/// A delete or field update that a put of the same id overtook, between the server's read of
/// the row and its append, names the row the put replaced: it applies neither on the server
/// nor at the next build, so it is answered 409, as such a put is; made against the put's row,
/// it applies.
#[actix_web::test]
async fn a_delete_or_update_a_put_overtook_is_a_conflict() {
    let root = tempfile::tempdir().unwrap();
    let state = live_state(root.path());
    let app = service(state.clone()).await;
    let read_before = row_hash(&state, "TNT-003");
    let put = json!({"title": "Northpeak Ridgeline 3 (2027)", "text": "New edition."});
    assert_eq!(call(&app, write(test::TestRequest::put(), "/v1/items/TNT-003", Some(put))).await.0, StatusCode::OK);
    // As if read before the put and appended after it.
    let engine = state.engine();
    let log = engine.live().unwrap().clone();
    let late = log.delete_item("TNT-003", read_before.clone()).unwrap();
    assert!(!engine.item_write_applies("TNT-003", late.first_seq, &read_before).unwrap());
    let update = log.update_fields("TNT-003", read_before.clone(), Default::default()).unwrap();
    assert!(!engine.item_write_applies("TNT-003", update.first_seq, &read_before).unwrap());
    let (status, _, _) = call(&app, item("TNT-003")).await;
    assert_eq!(status, StatusCode::OK, "the overtaken delete hid nothing");
    drop(engine);
    let now = row_hash(&state, "TNT-003");
    // Through HTTP, made against the put's row: applied, and answered so.
    let (status, _, body) = call(&app, write(test::TestRequest::delete(), "/v1/items/TNT-003", None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let seq = body["seq"].as_u64().unwrap();
    assert!(state.engine().item_write_applies("TNT-003", seq, &now).unwrap());
    assert_eq!(call(&app, item("TNT-003")).await.0, StatusCode::NOT_FOUND);
    let live = hyrank_indexer::build(&hyrank_tests::fixture_settings(root.path().to_path_buf())).unwrap().manifest.live;
    let live = live.unwrap();
    assert_eq!((live.deleted, live.superseded_deletes, live.superseded_updates), (vec!["TNT-003".to_string()], 1, 1));
}

/// `CURRENT` rolled back to a generation older than the writes: writes made on the newer one
/// name rows that only its build's folded field updates produced, and the older generation
/// applies them as the next build does (it chains each field update's row as the replay does),
/// then a delete made on the older one holds at the next build too.
#[actix_web::test]
async fn a_rolled_back_generation_applies_the_writes_the_next_build_applies() {
    let root = tempfile::tempdir().unwrap();
    let state = live_state(root.path());
    let app = service(state.clone()).await;
    let fields = |price: u32| json!({"fields": {"category": "tents", "price": price}});
    for id in ["TNT-001", "TNT-002", "TNT-005", "TNT-007"] {
        let uri = format!("/v1/items/{id}/fields");
        assert_eq!(call(&app, write(test::TestRequest::put(), &uri, Some(fields(111)))).await.0, StatusCode::OK);
    }
    let settings = hyrank_tests::fixture_settings(root.path().to_path_buf());
    let first = state.engine().manifest().generation.clone();
    hyrank_indexer::build(&settings).unwrap();
    let reload = || test::TestRequest::post().uri("/admin/reload").insert_header(("x-api-key", ADMIN_KEY));
    assert_eq!(call(&app, reload()).await.0, StatusCode::OK);
    let put = json!({"title": "Summit Forge Larch 3 Dome Tent (2027)", "text": "New edition.", "fields": {"category": "tents"}});
    for request in [
        write(test::TestRequest::delete(), "/v1/items/TNT-001", None),
        write(test::TestRequest::put(), "/v1/items/TNT-002/fields", Some(fields(222))),
        write(test::TestRequest::put(), "/v1/items/TNT-005", Some(put)),
    ] {
        assert_eq!(call(&app, request).await.0, StatusCode::OK);
    }
    macro_rules! seen {
        () => {{
            let (deleted, _, _) = call(&app, item("TNT-001")).await;
            let (_, _, updated) = call(&app, item("TNT-002")).await;
            let (_, _, put) = call(&app, item("TNT-005")).await;
            let (_, _, kept) = call(&app, item("TNT-007")).await;
            (deleted, updated["fields"]["price"].clone(), put["title"].clone(), kept["fields"]["price"].clone())
        }};
    }
    let expected = (StatusCode::NOT_FOUND, json!(222), json!("Summit Forge Larch 3 Dome Tent (2027)"), json!(111));
    assert_eq!(seen!(), expected, "on the newer generation");
    std::fs::write(root.path().join("CURRENT"), &first).unwrap();
    let (status, _, body) = call(&app, reload()).await;
    assert_eq!((status, &body["to"]), (StatusCode::OK, &json!(first)), "{body}");
    assert_eq!(seen!(), expected, "rolled back");
    // A write on the older generation holds at the next build.
    let (status, _, body) = call(&app, write(test::TestRequest::delete(), "/v1/items/TNT-005", None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let live = hyrank_indexer::build(&settings).unwrap().manifest.live.unwrap();
    let superseded = (live.superseded_deletes, live.superseded_updates, live.superseded_puts);
    assert_eq!((live.deleted, superseded), (vec!["TNT-001".to_string(), "TNT-005".to_string()], (0, 0, 0)));
    assert_eq!(call(&app, reload()).await.0, StatusCode::OK);
    assert_eq!(call(&app, item("TNT-005")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(seen!().1, json!(222));
}

/// A field update answered 409 (made against a row a put had replaced) does not take away the
/// fields an earlier update, made against the put's row, gave it: the server keeps every update
/// and serves the last that applies, as the build does.
#[actix_web::test]
async fn a_field_update_that_does_not_apply_leaves_the_one_before() {
    let root = tempfile::tempdir().unwrap();
    let state = live_state(root.path());
    let app = service(state.clone()).await;
    let read_before = row_hash(&state, "TNT-004");
    let put = json!({"title": "Northpeak Scree 4 (2027)", "text": "New edition.", "fields": {"price": 5}});
    assert_eq!(call(&app, write(test::TestRequest::put(), "/v1/items/TNT-004", Some(put))).await.0, StatusCode::OK);
    let uri = "/v1/items/TNT-004/fields";
    let (status, _, body) =
        call(&app, write(test::TestRequest::put(), uri, Some(json!({"fields": {"price": 6}})))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // An update that read the row before the put, logged last.
    let log = state.engine().live().unwrap().clone();
    let late = [("price".to_string(), hyrank_engine::FieldValue::Number(7.0))].into_iter().collect();
    let seq = log.update_fields("TNT-004", read_before.clone(), late).unwrap().first_seq;
    assert!(!state.engine().item_write_applies("TNT-004", seq, &read_before).unwrap());
    let (_, _, got) = call(&app, item("TNT-004")).await;
    assert_eq!(got["fields"]["price"], json!(6), "{got}");
    let live = hyrank_indexer::build(&hyrank_tests::fixture_settings(root.path().to_path_buf())).unwrap().manifest.live;
    assert_eq!(live.unwrap().superseded_updates, 1);
}

/// Rolled back two builds, a generation reads the puts it lacks from the log's files before it
/// works out its live rows: those the later builds folded (and memory let go of) and the one
/// made since are all served (the newest put's number used to hide the older ones from it).
#[actix_web::test]
async fn a_rolled_back_generation_serves_every_put_it_lacks() {
    let root = tempfile::tempdir().unwrap();
    let state = live_state(root.path());
    let app = service(state.clone()).await;
    let first = state.engine().manifest().generation.clone();
    let settings = hyrank_tests::fixture_settings(root.path().to_path_buf());
    let put = |id: &str, title: &str| {
        let body = json!({"title": title, "text": "Written live.", "fields": {"category": "tents"}});
        write(test::TestRequest::put(), &format!("/v1/items/{id}"), Some(body))
    };
    let reload = || test::TestRequest::post().uri("/admin/reload").insert_header(("x-api-key", ADMIN_KEY));
    for (id, title) in [("NEW-1", "First new tent"), ("TNT-001", "Kestrel Cirque 2 (2027)")] {
        assert_eq!(call(&app, put(id, title)).await.0, StatusCode::OK);
    }
    hyrank_indexer::build(&settings).unwrap();
    assert_eq!(call(&app, reload()).await.0, StatusCode::OK);
    assert_eq!(call(&app, put("NEW-2", "Second new tent")).await.0, StatusCode::OK);
    hyrank_indexer::build(&settings).unwrap();
    assert_eq!(call(&app, reload()).await.0, StatusCode::OK);
    assert_eq!(call(&app, put("NEW-3", "Third new tent")).await.0, StatusCode::OK);
    std::fs::write(root.path().join("CURRENT"), &first).unwrap();
    let (status, _, body) = call(&app, reload()).await;
    assert_eq!((status, &body["to"]), (StatusCode::OK, &json!(first)), "{body}");
    for (id, title) in [
        ("NEW-1", "First new tent"),
        ("TNT-001", "Kestrel Cirque 2 (2027)"),
        ("NEW-2", "Second new tent"),
        ("NEW-3", "Third new tent"),
    ] {
        let (status, _, got) = call(&app, item(id)).await;
        assert_eq!((status, &got["title"]), (StatusCode::OK, &json!(title)), "{id}: {got}");
    }
}

/// A `CURRENT` that names no generation (empty, a path) or is missing while a generation
/// carries live records stops the build: building from the catalog alone would drop the
/// records, and later prunes their last copy (it used to build without them, exit 0).
#[actix_web::test]
async fn a_build_refuses_a_current_it_cannot_start_from() {
    let root = tempfile::tempdir().unwrap();
    let state = live_state(root.path());
    let app = service(state.clone()).await;
    let put = json!({"title": "Kestrel Ridge 1 Tent", "text": "A one-person silnylon tent."});
    assert_eq!(call(&app, write(test::TestRequest::put(), "/v1/items/LIVE-1", Some(put))).await.0, StatusCode::OK);
    let settings = hyrank_tests::fixture_settings(root.path().to_path_buf());
    let built = hyrank_indexer::build(&settings).unwrap();
    assert_eq!(built.manifest.live.as_ref().map(|l| l.created), Some(1));
    let name = built.manifest.generation.clone();
    let pointer = root.path().join("CURRENT");
    for written in [String::new(), format!("generations/{name}"), format!("./{name}")] {
        std::fs::write(&pointer, &written).unwrap();
        let error = hyrank_indexer::build(&settings).unwrap_err().to_string();
        assert!(error.contains("not a generation name") && error.contains(&format!("the newest is {name}")), "{error}");
    }
    std::fs::remove_file(&pointer).unwrap();
    std::fs::create_dir(&pointer).unwrap();
    let error = hyrank_indexer::build(&settings).unwrap_err().to_string();
    assert!(error.contains("CURRENT cannot be read") && !error.contains("run `hyrank index` first"), "{error}");
    std::fs::remove_dir(&pointer).unwrap();
    let error = hyrank_indexer::build(&settings).unwrap_err().to_string();
    assert!(error.contains("CURRENT is missing") && error.contains(&name), "{error}");
    std::fs::write(&pointer, &name).unwrap();
    let rebuilt = hyrank_indexer::build(&settings).unwrap();
    assert_eq!(rebuilt.manifest.counts.items, built.manifest.counts.items, "the live item is still there");
}

/// A catalog row that changes a field's type for every row (a category given as a list, a
/// price as a word) leaves the other rows what they were: live writes made against them still
/// apply at the build, and on the server once it swaps in (every row's hash used to change with
/// the type, and the build dropped every delete, update and put as made against another row).
#[actix_web::test]
async fn a_field_changing_type_in_another_row_keeps_the_live_writes() {
    let root = tempfile::tempdir().unwrap();
    let state = live_state(root.path());
    let app = service(state.clone()).await;
    let writes = [
        write(test::TestRequest::delete(), "/v1/items/TNT-002", None),
        write(test::TestRequest::put(), "/v1/items/TNT-003/fields", Some(json!({"fields": {"price": 1}}))),
        write(test::TestRequest::put(), "/v1/items/TNT-004", Some(json!({"title": "Replaced live", "text": "New."}))),
    ];
    for request in writes {
        let (status, _, body) = call(&app, request).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let catalog = std::fs::read_to_string(hyrank_tests::fixture("catalog.jsonl")).unwrap();
    // The updated price as the new catalog types it: a number, then text.
    for ((from, to), price) in [
        (
            r#""category": "backpacks", "brand": "Kestrel", "price": 126.14"#,
            r#""category": ["backpacks", "sale"], "brand": "Kestrel", "price": 126.14"#,
        ),
        (
            r#""category": "backpacks", "brand": "Kestrel", "price": 126.14"#,
            r#""category": "backpacks", "brand": "Kestrel", "price": "call us""#,
        ),
    ]
    .into_iter()
    .zip([json!(1), json!("1")])
    {
        assert!(catalog.contains(from));
        let changed = root.path().join("changed.jsonl");
        std::fs::write(&changed, catalog.replacen(from, to, 1)).unwrap();
        let settings = hyrank_indexer::IndexSettings {
            catalog: changed,
            ..hyrank_tests::fixture_settings(root.path().to_path_buf())
        };
        let built = hyrank_indexer::build(&settings).unwrap();
        let live = built.manifest.live.unwrap();
        let superseded = (live.superseded_deletes, live.superseded_updates, live.superseded_puts);
        assert_eq!(
            (live.deleted, live.updated, superseded),
            (vec!["TNT-002".into()], vec!["TNT-003".into()], (0, 0, 0)),
            "{to}"
        );
        assert_eq!(live.replaced, 1);
        let reload = test::TestRequest::post().uri("/admin/reload").insert_header(("x-api-key", ADMIN_KEY));
        let (status, _, body) = call(&app, reload).await;
        assert_eq!((status, &body["outcome"]), (StatusCode::OK, &json!("swapped")), "{body}");
        assert_eq!(call(&app, item("TNT-002")).await.0, StatusCode::NOT_FOUND, "{to}");
        let (_, _, updated) = call(&app, item("TNT-003")).await;
        assert_eq!(updated["fields"]["price"], price, "{to}");
        let (_, _, put) = call(&app, item("TNT-004")).await;
        assert_eq!(put["title"], json!("Replaced live"), "{to}");
    }
}

/// A row put live whose value the next build's types leave out (a price of "cheap" once the
/// catalog's prices are numbers again) is stored without it; a write made on the generation
/// before names the row as put, and applies on the new generation as at the next build (the
/// server used to keep the item, the build to delete it).
#[actix_web::test]
async fn a_write_on_a_row_the_build_left_a_value_out_of_applies_after_the_swap() {
    let root = tempfile::tempdir().unwrap();
    let state = live_state(root.path());
    let app = service(state.clone()).await;
    let reload = || test::TestRequest::post().uri("/admin/reload").insert_header(("x-api-key", ADMIN_KEY));
    let catalog = std::fs::read_to_string(hyrank_tests::fixture("catalog.jsonl")).unwrap();
    let worded = root.path().join("worded.jsonl");
    std::fs::write(&worded, catalog.replacen(r#""price": 126.14"#, r#""price": "call us""#, 1)).unwrap();
    let settings = hyrank_tests::fixture_settings(root.path().to_path_buf());
    let built = hyrank_indexer::build(&hyrank_indexer::IndexSettings { catalog: worded, ..settings.clone() }).unwrap();
    let worded_name = built.manifest.generation;
    assert_eq!(call(&app, reload()).await.0, StatusCode::OK);
    let put = json!({"title": "New nine", "text": "A new nine.", "fields": {"price": "cheap", "category": "tents"}});
    let (status, _, body) = call(&app, write(test::TestRequest::put(), "/v1/items/NEW-9", Some(put))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let fields = |price: Value| Some(json!({"fields": {"category": "tents", "price": price}}));
    let (status, _, body) =
        call(&app, write(test::TestRequest::put(), "/v1/items/TNT-001/fields", fields(json!("ask us")))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let built = hyrank_indexer::build(&settings).unwrap();
    let rejects = std::fs::read_to_string(built.rejects_file.unwrap()).unwrap();
    assert!(rejects.contains("NEW-9") && rejects.contains("cheap"), "price left out: {rejects}");
    assert_eq!(built.manifest.live.as_ref().unwrap().values_left_out, 2, "NEW-9's and TNT-001's prices");
    let (status, _, body) = call(&app, write(test::TestRequest::delete(), "/v1/items/NEW-9", None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, body) = call(&app, reload()).await;
    assert_eq!((status, &body["outcome"]), (StatusCode::OK, &json!("swapped")), "{body}");
    assert_eq!(call(&app, item("NEW-9")).await.0, StatusCode::NOT_FOUND, "the delete applies after the swap");
    // A write on the row as stored, without the value: the next build applies it too (it
    // replays the rows as written, with the value, and used to count it as superseded).
    let (status, _, body) =
        call(&app, write(test::TestRequest::put(), "/v1/items/TNT-001/fields", fields(json!(5)))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // It names the row as the writes made it (`live.written_as`), which a generation whose
    // types take the value stores as it is: `CURRENT` rolled back to the text prices applies
    // it too (it named the row without the price, and the older generation dropped it).
    let price = |body: Value| body["fields"]["price"].clone();
    let pointer = root.path().join("CURRENT");
    let newer = std::fs::read_to_string(&pointer).unwrap();
    std::fs::write(&pointer, &worded_name).unwrap();
    assert_eq!(call(&app, reload()).await.2["outcome"], json!("swapped"));
    assert_eq!(price(call(&app, item("TNT-001")).await.2), json!(5), "on the older generation");
    std::fs::write(&pointer, newer).unwrap();
    assert_eq!(call(&app, reload()).await.2["outcome"], json!("swapped"));
    let live = hyrank_indexer::build(&settings).unwrap().manifest.live.unwrap();
    assert_eq!((live.deleted, live.superseded_deletes), (vec!["NEW-9".to_string()], 0), "as at the next build");
    assert_eq!(live.superseded_updates, 0);
    assert_eq!(call(&app, reload()).await.0, StatusCode::OK);
    assert_eq!(price(call(&app, item("TNT-001")).await.2), json!(5));
}

/// After each write the server works out the rows deletes hide from its last set, checking only
/// the deletes logged since and those of the ids put since: after a run of puts and deletes of a
/// few ids (stored and new, deleted and put again), each followed by a request, it hides what a
/// generation opened afresh on the same log works out from every delete.
#[actix_web::test]
async fn the_rows_hidden_after_a_run_of_writes_are_those_a_fresh_reading_finds() {
    let root = tempfile::tempdir().unwrap();
    let state = live_state(root.path());
    let app = service(state.clone()).await;
    let mut pool: Vec<String> = state.engine().item_ids()[..5].to_vec();
    pool.extend((0..3).map(|i| format!("NEW-{i}")));
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move |n: usize| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) as usize % n
    };
    let (mut deletes, mut puts) = (0, 0);
    for step in 0..60 {
        let id = &pool[next(pool.len())];
        let uri = format!("/v1/items/{id}");
        if next(2) == 0 {
            let body = json!({"title": format!("Quillfeather {id} step {step}"), "text": "A live row."});
            assert_eq!(call(&app, write(test::TestRequest::put(), &uri, Some(body))).await.0, StatusCode::OK);
            puts += 1;
        } else if call(&app, write(test::TestRequest::delete(), &uri, None)).await.0 == StatusCode::OK {
            deletes += 1;
        }
        // A request after every write: each set is worked out from the one before.
        let served = state.engine().visible_len();
        if step % 15 == 14 {
            let engine = state.engine();
            let mut fresh = hyrank_engine::Engine::open(root.path(), &hyrank_tests::embedder_settings()).unwrap();
            fresh.attach_live(std::sync::Arc::clone(engine.live().unwrap()));
            assert_eq!(served, fresh.visible_len(), "step {step}");
            for id in &pool {
                let found = |e: &hyrank_engine::Engine| e.visible_index_of(id).ok();
                assert_eq!(found(&engine), found(&fresh), "step {step}, {id}");
            }
        }
    }
    assert!(deletes >= 10 && puts >= 10, "{deletes} deletes and {puts} puts");
}
