//! Generations swapping in under a running server: a new one published or pulled, a damaged
//! or misnamed one refused with the old one serving, and one removed from under it.

use std::path::Path;
use std::sync::Arc;

use actix_web::{http::StatusCode, test};
use hyrank_api::{AppState, Limits, ServiceSettings};
use hyrank_engine::{Engine, SearchRequest};
use serde_json::{json, Value};

use crate::service::{call, keyed, search, service, ADMIN_KEY, SEARCH_KEY};
use hyrank_tests::edit_manifest;

/// Publishes a copy of the fixture generation as `name` under `root`, the way the indexer
/// publishes: the folder first, then CURRENT replaced by a rename.
pub(crate) fn publish_copy(root: &Path, name: &str, break_it: bool) {
    publish_copy_with(root, name, |target| {
        if break_it {
            std::fs::remove_dir_all(target.join("lexical")).unwrap();
        }
    });
}

/// [`publish_copy`], with `prepare` run on the copied folder before CURRENT names it.
fn publish_copy_with(root: &Path, name: &str, prepare: impl FnOnce(&Path)) {
    let source = crate::indexed().engine.dir().to_path_buf();
    let target = root.join("generations").join(name);
    copy_dir(&source, &target);
    edit_manifest(&target, |manifest| manifest["generation"] = json!(name));
    prepare(&target);
    std::fs::write(root.join("CURRENT.tmp"), name).unwrap();
    std::fs::rename(root.join("CURRENT.tmp"), root.join("CURRENT")).unwrap();
}

/// Marks a copied generation as built with another model (its manifest's model hash): every
/// file checks out, and this server refuses to open it.
fn stamped_with_another_model(dir: &Path) {
    edit_manifest(dir, |manifest| manifest["model"]["sha256"] = json!("0".repeat(64)));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A server's state (with keys) on a copy of the fixture generation published as 000001 in a
/// folder of its own, which it watches.
fn serving_a_copy() -> (tempfile::TempDir, AppState) {
    serving_a_copy_with(keyed(Limits::default()))
}

/// [`serving_a_copy`] with `settings`.
fn serving_a_copy_with(settings: ServiceSettings) -> (tempfile::TempDir, AppState) {
    let root = tempfile::tempdir().unwrap();
    publish_copy(root.path(), "000001", false);
    let engine = Engine::open(root.path(), &hyrank_tests::embedder_settings()).unwrap();
    let state = AppState::with_settings(Arc::new(engine), Some(root.path().to_path_buf()), settings);
    (root, state)
}

/// Waits (30 s at most, failing then with `what`) until `done` holds: for a watcher or puller,
/// which work on threads of their own.
pub(crate) fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "{what}, after 30 s");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[actix_web::test]
async fn a_new_generation_swaps_in_and_a_broken_one_is_refused() {
    let (root, state) = serving_a_copy();
    let app = service(state.clone()).await;
    let admin = || test::TestRequest::post().uri("/admin/reload").insert_header(("x-api-key", ADMIN_KEY));
    let query = json!({"query": "camp stove", "k": 3});

    let (status, _, body) = call(&app, admin()).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"outcome": "unchanged", "generation": "000001"})));
    let (_, _, before) = call(&app, search(query.clone(), Some(SEARCH_KEY))).await;
    assert_eq!(before["generation"], "000001");

    // A request that took the old engine before the swap finishes on it afterwards.
    let in_flight = state.engine();
    publish_copy(root.path(), "000002", false);
    let (status, _, body) = call(&app, admin()).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"outcome": "swapped", "from": "000001", "to": "000002"})));
    let (_, headers, after) = call(&app, search(query.clone(), Some(SEARCH_KEY))).await;
    assert_eq!(after["generation"], "000002");
    assert_eq!(headers.get("x-cache").unwrap(), "miss", "the swap dropped the response cache");
    let old = in_flight.search(&SearchRequest { k: 3, ..SearchRequest::new("camp stove") }).unwrap();
    assert_eq!(old.generation, "000001");
    let ids = |body: &Value| body["hits"].as_array().unwrap().iter().map(|h| h["id"].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&before), ids(&after), "same data, same answers");
    drop(in_flight);

    publish_copy(root.path(), "000003", true);
    let (status, _, body) = call(&app, admin()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("generation_refused")));
    let (status, _, still) = call(&app, search(query, Some(SEARCH_KEY))).await;
    assert_eq!((status, still["generation"].as_str()), (StatusCode::OK, Some("000002")));
    let (_, _, metrics) = call(&app, test::TestRequest::get().uri("/metrics")).await;
    let metrics = metrics.as_str().unwrap().to_string();
    assert!(metrics.contains(r#"hyrank_generation_reloads_total{outcome="refused"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"hyrank_serving_generation{generation="000002"} 1"#), "{metrics}");
}

/// Ways a copy can damage a generation's HNSW files that their loader (hnsw_rs) does not
/// check: it exited the process on the first two and panicked on the others.
fn damages() -> Vec<(&'static str, Box<dyn Fn(&Path)>)> {
    let cut = |file: &'static str, keep: fn(u64) -> u64| {
        Box::new(move |dir: &Path| {
            let f = std::fs::OpenOptions::new().write(true).open(dir.join(file)).unwrap();
            f.set_len(keep(f.metadata().unwrap().len())).unwrap();
        }) as Box<dyn Fn(&Path)>
    };
    vec![
        ("vector data cut in half", cut("dense.hnsw.data", |n| n / 2)),
        ("vector data cut 100 bytes short", cut("dense.hnsw.data", |n| n - 100)),
        ("graph cut in half", cut("dense.hnsw.graph", |n| n / 2)),
        ("graph emptied", cut("dense.hnsw.graph", |_| 0)),
        (
            "graph overwritten in the middle",
            Box::new(|dir: &Path| {
                use std::io::{Seek, Write};
                let mut f = std::fs::OpenOptions::new().write(true).open(dir.join("dense.hnsw.graph")).unwrap();
                let middle = f.metadata().unwrap().len() / 2;
                f.seek(std::io::SeekFrom::Start(middle)).unwrap();
                f.write_all(&[0xff; 16]).unwrap();
            }),
        ),
    ]
}

/// A generation whose files were damaged in copying is refused (409 through the admin route,
/// counted and logged by the watcher), the old one serving throughout; the server neither
/// exits nor stops watching, and swaps in the next good generation.
#[actix_web::test]
async fn a_damaged_generation_is_refused_and_the_next_good_one_swaps_in() {
    let (root, state) = serving_a_copy();
    let app = service(state.clone()).await;
    let admin = || test::TestRequest::post().uri("/admin/reload").insert_header(("x-api-key", ADMIN_KEY));
    let mut refused = 0;
    for (n, (what, damage)) in (2..).zip(damages()) {
        publish_copy_with(root.path(), &format!("{n:06}"), damage);
        let (status, _, body) = call(&app, admin()).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::CONFLICT, Some("generation_refused")),
            "{what}"
        );
        refused += 1;
        assert_eq!(state.engine().manifest().generation, "000001", "{what}");
    }
    // The watcher meets one more damaged generation (published before it starts, so that it
    // never sees the last one the admin route refused), then a good one.
    let (what, damage) = damages().swap_remove(2);
    publish_copy_with(root.path(), "000010", damage);
    hyrank_api::reload::spawn_watcher(state.clone(), std::time::Duration::from_millis(50)).unwrap();
    let counted = format!(r#"hyrank_generation_reloads_total{{outcome="refused"}} {}"#, refused + 1);
    wait_until(&format!("the watcher never refused {what}"), || state.render_metrics().contains(&counted));
    publish_copy(root.path(), "000011", false);
    wait_until(&format!("the watcher stopped after {what}"), || state.engine().manifest().generation == "000011");
    // The refused generation was tried once, not at every tick.
    let (_, _, metrics) = call(&app, test::TestRequest::get().uri("/metrics")).await;
    assert!(metrics.as_str().unwrap().contains(&counted), "{metrics}");
}

/// A replica that does not poll its source (`watch_secs` 0) pulls, checks and swaps in what the
/// source names when the admin route asks (it used to answer `unchanged`, never pulling); one it
/// cannot open is refused (409) with CURRENT left on the one serving; a source that cannot be
/// read answers 502, the old generation serving. (Not an async test: the
/// source's client runs a runtime of its own, which may not start or end inside another.)
#[core::prelude::v1::test] // `test` here is actix's module
fn a_replica_that_does_not_poll_pulls_on_the_admin_route() {
    use hyrank_engine::generation::remote::Remote;
    let dir = tempfile::tempdir().unwrap();
    let (built, source, replica) = (dir.path().join("built"), dir.path().join("source"), dir.path().join("replica"));
    std::fs::create_dir_all(&source).unwrap();
    let url = format!("file://{}", source.display());
    let publish = |name: &str| {
        publish_copy(&built, name, false);
        Remote::open(&url).unwrap().publish(&built.join("generations").join(name)).unwrap();
    };
    publish("000001");
    Remote::open(&url).unwrap().pull(&replica).unwrap();
    let engine = Engine::open(&replica, &hyrank_tests::embedder_settings()).unwrap();
    let state = AppState::with_settings(Arc::new(engine), Some(replica.clone()), keyed(Limits::default()))
        .pulling_from(Arc::new(Remote::open(&url).unwrap()));
    publish("000002");
    actix_web::rt::System::new().block_on(async {
        let app = service(state.clone()).await;
        let admin = || test::TestRequest::post().uri("/admin/reload").insert_header(("x-api-key", ADMIN_KEY));
        let (status, _, body) = call(&app, admin()).await;
        assert_eq!((status, body), (StatusCode::OK, json!({"outcome": "swapped", "from": "000001", "to": "000002"})));
        // A generation every file of which checks out but that this server cannot open (built
        // with another model) is refused, and CURRENT points back at the one serving: left on
        // the refused one, a restart failed to open the index instead of serving.
        publish_copy_with(&built, "000003", stamped_with_another_model);
        // (On a thread of its own: the client's runtime may not start inside this one.)
        std::thread::scope(|scope| {
            scope.spawn(|| Remote::open(&url).unwrap().publish(&built.join("generations/000003")).unwrap());
        });
        for _ in 0..2 {
            let (status, _, body) = call(&app, admin()).await;
            assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("generation_refused")));
            assert_eq!(std::fs::read_to_string(replica.join("CURRENT")).unwrap().trim(), "000002");
        }
        let restarted = Engine::open(&replica, &hyrank_tests::embedder_settings()).unwrap();
        assert_eq!(restarted.manifest().generation, "000002");
        std::fs::rename(&source, dir.path().join("gone")).unwrap();
        let (status, _, body) = call(&app, admin()).await;
        assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_GATEWAY, Some("source_unavailable")));
    });
    assert_eq!(state.engine().manifest().generation, "000002");
}

/// A replica's start-up pull refuses as its puller does: a pulled generation that checks out
/// but cannot be opened here (another model) leaves `CURRENT` on the generation before it,
/// which serves; a download that fails its checks is not kept. Either is counted once, and the
/// puller does not fetch it again; the next good publish comes in. With no generation here to
/// fall back on, the start fails and says why.
#[core::prelude::v1::test] // `test` here is actix's module
fn a_replica_refused_at_start_serves_the_generation_before_and_does_not_fetch_it_again() {
    use hyrank_api::replica;
    use hyrank_engine::generation::remote::Remote;
    let dir = tempfile::tempdir().unwrap();
    let (built, source, replica) = (dir.path().join("built"), dir.path().join("source"), dir.path().join("replica"));
    std::fs::create_dir_all(&source).unwrap();
    let url = format!("file://{}", source.display());
    let remote = Remote::open(&url).unwrap();
    let open = |at: &Path| {
        let at = at.to_path_buf();
        move || -> anyhow::Result<Engine> { Ok(Engine::open(&at, &hyrank_tests::embedder_settings())?) }
    };
    publish_copy(&built, "000001", false);
    remote.publish(&built.join("generations/000001")).unwrap();
    let started = replica::start(&replica, &remote, open(&replica)).unwrap();
    assert_eq!((started.engine.manifest().generation.as_str(), started.refused), ("000001", None));

    // Another model's generation, published while the replica is down.
    publish_copy_with(&built, "000002", stamped_with_another_model);
    remote.publish(&built.join("generations/000002")).unwrap();
    let started = replica::start(&replica, &remote, open(&replica)).unwrap();
    assert_eq!((started.engine.manifest().generation.as_str(), started.refused.as_deref()), ("000001", Some("000002")));
    assert_eq!(std::fs::read_to_string(replica.join("CURRENT")).unwrap().trim(), "000001");
    let state = AppState::with_settings(Arc::new(started.engine), Some(replica.clone()), ServiceSettings::default());
    state.refused_at_start(started.refused.unwrap());
    let refused = |n: u32| format!(r#"hyrank_generation_reloads_total{{outcome="refused"}} {n}"#);
    assert!(state.render_metrics().contains(&refused(1)), "the start-up refusal is counted");
    hyrank_api::reload::spawn_puller(
        state.clone(),
        Arc::new(Remote::open(&url).unwrap()),
        std::time::Duration::from_millis(20),
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(state.render_metrics().contains(&refused(1)), "counted once, not fetched again by the puller");
    assert_eq!(state.engine().manifest().generation, "000001");
    publish_copy(&built, "000003", false);
    remote.publish(&built.join("generations/000003")).unwrap();
    wait_until("the puller did not swap in the next good generation", || {
        state.engine().manifest().generation == "000003"
    });
    // A source whose CURRENT is gone (a share not mounted, a bucket emptied) is a failure,
    // counted at every poll: it was passed over as "nothing published yet", and a stale
    // replica looked healthy on every signal.
    let failed = |state: &AppState| {
        let text = state.render_metrics();
        let line = text.lines().find_map(|l| l.strip_prefix(r#"hyrank_generation_reloads_total{outcome="failed"} "#));
        line.map_or(0, |n| n.parse::<u64>().unwrap())
    };
    let away = dir.path().join("unmounted");
    std::fs::rename(&source, &away).unwrap();
    wait_until("a source with no CURRENT was not counted as failed at every poll", || failed(&state) >= 3);
    std::fs::rename(&away, &source).unwrap();
    assert_eq!(state.engine().manifest().generation, "000003", "the local generation serves throughout");
    drop(state);

    // A download whose file does not match its manifest is refused and not kept.
    publish_copy(&built, "000004", false);
    remote.publish(&built.join("generations/000004")).unwrap();
    std::fs::write(source.join("generations/000004/dense.vectors"), b"not the vectors").unwrap();
    let started = replica::start(&replica, &remote, open(&replica)).unwrap();
    assert_eq!((started.engine.manifest().generation.as_str(), started.refused.as_deref()), ("000003", Some("000004")));
    assert!(!replica.join("generations/000004").exists());

    // A fresh replica has nothing to fall back on: the start fails, naming the source.
    let fresh = dir.path().join("fresh");
    let err = replica::start(&fresh, &remote, open(&fresh))
        .err()
        .expect("a fresh replica cannot start on a refused download");
    assert!(format!("{err:#}").contains("has no generation to serve"), "{err:#}");
}

#[actix_web::test]
async fn the_watcher_picks_up_a_published_generation() {
    let (root, state) = serving_a_copy_with(ServiceSettings::default());
    hyrank_api::reload::spawn_watcher(state.clone(), std::time::Duration::from_millis(50)).unwrap();
    publish_copy(root.path(), "000002", false);
    wait_until("the watcher did not swap", || state.engine().manifest().generation == "000002");
    let app = service(state).await;
    let (status, _, body) = call(&app, search(json!({"query": "camp stove"}), None)).await;
    assert_eq!((status, body["generation"].as_str()), (StatusCode::OK, Some("000002")));
}

/// Issue 18: a server whose generation folder is removed under it (a prune by an older binary,
/// an operator's `rm`) keeps answering from memory, readiness included, and never panics.
#[actix_web::test]
async fn a_generation_removed_under_the_server_keeps_serving_from_memory() {
    let (root, state) = serving_a_copy_with(ServiceSettings::default());
    let app = service(state.clone()).await;
    std::fs::remove_dir_all(root.path().join("generations/000001")).unwrap();
    let (status, _, body) = call(&app, search(json!({"query": "camp stove", "k": 3}), None)).await;
    assert_eq!((status, body["hits"].as_array().map(Vec::len)), (StatusCode::OK, Some(3)), "{body}");
    let post = |uri: &str, body: Value| test::TestRequest::post().uri(uri).set_json(body);
    assert_eq!(call(&app, post("/v1/recommend", json!({"user": "u001", "k": 3}))).await.0, StatusCode::OK);
    for uri in ["/v1/items/TNT-001", "/v1/items/TNT-001/similar?k=3", "/readyz", "/v1/index"] {
        let (status, _, body) = call(&app, test::TestRequest::get().uri(uri)).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    }
    // CURRENT still names it: a reload finds nothing new and keeps serving.
    assert!(matches!(state.reload(), Ok(hyrank_api::reload::ReloadOutcome::Unchanged { .. })));
}

/// A generation folder copied under another name without its manifest's `generation` (an
/// operator restoring one by hand) is refused, naming both names: served, it reported the
/// other generation's name in /healthz, the metrics and the swap's log line.
#[actix_web::test]
async fn a_copied_generation_that_keeps_another_name_is_refused() {
    let root = tempfile::tempdir().unwrap();
    publish_copy(root.path(), "000001", false);
    let serving = hyrank_engine::Engine::open(root.path(), &hyrank_tests::embedder_settings()).unwrap();
    copy_dir(&root.path().join("generations/000001"), &root.path().join("generations/000002"));
    std::fs::write(root.path().join("CURRENT"), "000002").unwrap();
    let error = hyrank_engine::Engine::open_next(root.path(), &serving).err().expect("refused").to_string();
    assert!(error.contains("named \"000002\" but its manifest says it is generation \"000001\""), "{error}");
    let error = hyrank_engine::Engine::open(root.path(), &hyrank_tests::embedder_settings()).err().unwrap().to_string();
    assert!(error.contains("point CURRENT at \"000001\""), "{error}");
}
