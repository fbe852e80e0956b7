//! Requests that name a user, on a generation built without interactions (no CF).

use std::sync::Arc;

use hyrank_engine::live::{Event, EventLog};
use hyrank_engine::request::{Mode, RecommendMode, RecommendRequest};
use hyrank_engine::{Engine, Error, SearchRequest};

/// Without CF, cf mode is unavailable (422 `unavailable_in_index`) and a hybrid search for a
/// user answers by content, whether or not any event has named the user: it was a 404
/// `user_not_found` for a user never seen, and served once an event had named them. With no
/// query, a hybrid search for a user is unavailable too (it was an empty 200), and an id no
/// user can have is refused whatever CF would do. A recommendation for a user whose live
/// events give a history is made by content in hybrid and content modes (it was refused as
/// if content needed CF), with a note saying why CF is absent.
#[test]
fn a_generation_without_interactions_answers_every_user_alike() {
    let dir = tempfile::tempdir().unwrap();
    let settings = hyrank_indexer::IndexSettings {
        interactions: None,
        ..hyrank_tests::fixture_settings(dir.path().to_path_buf())
    };
    hyrank_indexer::build(&settings).unwrap();
    let mut engine = Engine::open(dir.path(), &hyrank_tests::embedder_settings()).unwrap();
    let by_content = engine.search(&SearchRequest::new("camp stove")).unwrap();
    let ids = |hits: &[hyrank_engine::request::Hit]| hits.iter().map(|h| h.id.clone()).collect::<Vec<_>>();
    // A user a live event has named since the build, beside one no one has named.
    let log = EventLog::open(dir.path(), engine.manifest().live_folded_through()).unwrap();
    let item = by_content.hits[0].id.clone();
    log.append(vec![Event { user: "seen".into(), item, weight: 1.0, timestamp: None }]).unwrap();
    engine.attach_live(Arc::new(log));
    for user in ["nobody", "seen"] {
        let for_user = |mode, query: Option<&str>| SearchRequest {
            user: Some(user.into()),
            mode,
            query: query.map(str::to_string),
            ..SearchRequest::new("")
        };
        let found = engine.search(&for_user(Mode::Hybrid, Some("camp stove"))).unwrap();
        assert_eq!(ids(&found.hits), ids(&by_content.hits), "{user}");
        for (mode, query) in [(Mode::Cf, Some("camp stove")), (Mode::Cf, None), (Mode::Hybrid, None)] {
            let refused = engine.search(&for_user(mode, query)).err().expect("no CF to rank with");
            assert!(matches!(refused, Error::Unavailable { .. }), "{user} {mode:?} {query:?}: {refused}");
        }
    }
    // Recommendations: by content from the live history, for the user it names.
    let for_seen = |mode| RecommendRequest { mode, ..RecommendRequest::new("seen") };
    let content = engine.recommend(&for_seen(RecommendMode::Content)).unwrap();
    let hybrid = engine.recommend(&for_seen(RecommendMode::Hybrid)).unwrap();
    assert!(!content.hits.is_empty());
    // Content is the list either way, weighed alike: the same hits and scores.
    assert_eq!(ids(&hybrid.hits), ids(&content.hits));
    let scores = |hits: &[hyrank_engine::request::Hit]| hits.iter().map(|h| h.score).collect::<Vec<_>>();
    assert_eq!(scores(&hybrid.hits), scores(&content.hits));
    assert!(hybrid.notes.iter().any(|n| n.contains("built without interactions")), "{:?}", hybrid.notes);
    let refused = engine.recommend(&for_seen(RecommendMode::Cf)).err().expect("no CF");
    assert!(matches!(refused, Error::Unavailable { .. }), "{refused}");
    let nobody = engine.recommend(&RecommendRequest::new("nobody")).err().expect("no history");
    assert!(matches!(nobody, Error::UnknownUser { .. }), "{nobody}");
    let found =
        engine.search(&SearchRequest { user: Some("seen".into()), ..SearchRequest::new("camp stove") }).unwrap();
    assert!(found.notes.iter().any(|n| n.contains("built without interactions")), "{:?}", found.notes);
    let bm25 = SearchRequest { user: Some("seen".into()), mode: Mode::Bm25, ..SearchRequest::new("camp stove") };
    assert!(engine.search(&bm25).unwrap().notes.is_empty(), "bm25 mode asks no CF list");
    for (id, mode) in
        [("", Mode::Hybrid), (" nobody", Mode::Hybrid), ("no\u{7}body", Mode::Bm25), (" seen", Mode::Dense)]
    {
        let request = SearchRequest { user: Some(id.into()), mode, ..SearchRequest::new("camp stove") };
        let refused = engine.search(&request).err().expect("an id no user can have");
        assert!(matches!(&refused, Error::InvalidArgument { field, .. } if field == "user"), "{id:?}: {refused}");
    }
}

/// ALS with one user whose summed weights (2 × 10¹⁰ on two items, each row within the 10⁶ a
/// row may weigh) dwarf the others' ones: training blows the item factors up and no user's
/// normal equations can be factored, so every explanation was left out silently and a live
/// user got no CF list under a note that blamed their history. The build is refused, naming
/// the user; and where the equations are singular in themselves (regularization 0, fewer
/// items than factors), a response says so rather than blame the history or say nothing.
#[test]
fn a_user_whose_weights_break_the_als_solve_is_told_why() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = std::fs::read_to_string(hyrank_tests::fixture("interactions.csv")).unwrap();
    for _ in 0..20_000 {
        rows.push_str("whale,TNT-004,1000000,1700000000\nwhale,TNT-005,1000000,1700000001\n");
    }
    let interactions = dir.path().join("interactions.csv");
    std::fs::write(&interactions, rows).unwrap();
    let whale = hyrank_indexer::IndexSettings {
        interactions: Some(interactions),
        ..hyrank_tests::fixture_settings(dir.path().join("whale"))
    };
    let refused = hyrank_indexer::build(&whale).err().expect("refused").to_string();
    assert!(
        refused.contains("numerically singular") && refused.contains("user \"whale\" has a summed weight of 2.0"),
        "{refused}"
    );

    let index = dir.path().join("index");
    let mut settings = hyrank_tests::fixture_settings(index.clone());
    // 400 factors for 320 items: without regularization, the items' Gramian is singular.
    settings.cf.als.regularization = 0.0;
    settings.cf.als.factors = 400;
    hyrank_indexer::build(&settings).unwrap();
    let mut engine = Engine::open(&index, &hyrank_tests::embedder_settings()).unwrap();
    let log = EventLog::open(&index, engine.manifest().live_folded_through()).unwrap();
    log.append(vec![Event { user: "newcomer".into(), item: "TNT-004".into(), weight: 1.0, timestamp: None }]).unwrap();
    engine.attach_live(Arc::new(log));
    let cf = |user: &str| RecommendRequest { mode: RecommendMode::Cf, explain: true, ..RecommendRequest::new(user) };
    let singular = "the user's ALS normal equations are singular: with regularization 0, ";
    let built = engine.recommend(&cf("u001")).unwrap();
    assert!(!built.hits.is_empty());
    let unexplained = format!("cf: no explanation of the CF scores: {singular}");
    assert!(built.notes.iter().any(|n| n.starts_with(&unexplained)), "{:?}", built.notes);
    let live = engine.recommend(&cf("newcomer")).unwrap();
    assert!(live.hits.is_empty());
    let no_list = format!("cf: no CF list: {singular}");
    assert!(live.notes.iter().any(|n| n.starts_with(&no_list)), "{:?}", live.notes);
}
