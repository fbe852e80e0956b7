//! Requests that name a user, on a generation built without interactions (no CF).

use hyrank_engine::request::Mode;
use hyrank_engine::{Engine, Error, SearchRequest};

/// Without CF, cf mode is unavailable (422 `unavailable_in_index`) and a hybrid search for a
/// user answers by content, whether or not any event has named the user: it was a 404
/// `user_not_found` for a user never seen, and served once an event had named them.
#[test]
fn a_generation_without_interactions_answers_every_user_alike() {
    let dir = tempfile::tempdir().unwrap();
    let settings = hyrank_indexer::IndexSettings {
        interactions: None,
        ..hyrank_tests::fixture_settings(dir.path().to_path_buf())
    };
    hyrank_indexer::build(&settings).unwrap();
    let engine = Engine::open(dir.path(), &hyrank_tests::embedder_settings()).unwrap();
    let for_user = |mode| SearchRequest { user: Some("nobody".into()), mode, ..SearchRequest::new("camp stove") };
    let found = engine.search(&for_user(Mode::Hybrid)).unwrap();
    let by_content = engine.search(&SearchRequest::new("camp stove")).unwrap();
    let ids = |hits: &[hyrank_engine::request::Hit]| hits.iter().map(|h| h.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&found.hits), ids(&by_content.hits));
    let refused = engine.search(&for_user(Mode::Cf)).err().expect("no CF to rank with");
    assert!(matches!(refused, Error::Unavailable { .. }), "{refused}");
}
