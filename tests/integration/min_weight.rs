//! `--min-weight`: a row below the positive rule is an interaction still. The user saw the item
//! (a film rated 1), so it is kept out of their recommendations; it is no positive, so neither
//! CF nor the content profile reads it; and an item only such rows name is not cold, so
//! `cold_items: share` does not hand it content's weight. Live events meet the same rule from
//! the moment they are written, not only once a build folds them in.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use hyrank_engine::live::{Event, EventLog};
use hyrank_engine::{Engine, RecommendRequest, SimilarRequest};

const MIN: f32 = 4.0;

/// The fixture's rows: (user, item, weight).
fn rows() -> Vec<(String, String, f32)> {
    std::fs::read_to_string(hyrank_tests::root().join("fixtures/interactions.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|line| {
            let r: Vec<&str> = line.split(',').collect();
            (r[0].to_string(), r[1].to_string(), r[2].parse().unwrap())
        })
        .collect()
}

/// Each user's items at or above the rule, and those only below it.
fn by_user(rows: &[(String, String, f32)]) -> HashMap<String, (BTreeSet<String>, BTreeSet<String>)> {
    let mut users: HashMap<String, (BTreeSet<String>, BTreeSet<String>)> = HashMap::new();
    for (user, item, weight) in rows {
        let entry = users.entry(user.clone()).or_default();
        if *weight >= MIN {
            entry.0.insert(item.clone());
        } else {
            entry.1.insert(item.clone());
        }
    }
    for (positives, below) in users.values_mut() {
        below.retain(|item| !positives.contains(item));
    }
    users
}

fn open(root: &std::path::Path) -> Engine {
    let mut engine = Engine::open(root, &hyrank_tests::embedder_settings()).unwrap();
    let log = EventLog::open(root, engine.manifest().live_folded_through()).unwrap();
    engine.attach_live(Arc::new(log));
    engine
}

fn ids(engine: &Engine, items: impl IntoIterator<Item = u32>) -> BTreeSet<String> {
    items.into_iter().map(|i| engine.item_at(i).unwrap().id).collect()
}

fn recommended(engine: &Engine, user: &str, exclude_seen: bool) -> Vec<String> {
    let request = RecommendRequest { k: 100, exclude_seen, ..RecommendRequest::new(user) };
    engine.recommend(&request).unwrap().hits.into_iter().map(|h| h.id).collect()
}

#[test]
fn rows_below_the_positive_rule_are_seen_not_positives_in_the_build_and_live() {
    let root = tempfile::tempdir().unwrap();
    let settings =
        hyrank_indexer::IndexSettings { min_weight: Some(MIN), ..hyrank_tests::fixture_settings(root.path().into()) };
    hyrank_indexer::build(&settings).unwrap();
    let rows = rows();
    let users = by_user(&rows);
    let engine = open(root.path());

    // Stored: the positives as history, the rest of what the user touched as seen.
    let (positives, below) = &users["u001"];
    assert!(!below.is_empty(), "the fixture's u001 rated items below {MIN}");
    let record = engine.user("u001").unwrap();
    assert_eq!(&ids(&engine, record.history.iter().map(|i| i.item)), positives);
    assert_eq!(&ids(&engine, record.seen.iter().copied()), below);
    // exclude_seen leaves out both; it did leave out only the positives (a film rated 1 came back).
    let hits = recommended(&engine, "u001", true);
    assert!(hits.iter().all(|id| !positives.contains(id) && !below.contains(id)), "{hits:?}");
    let all = recommended(&engine, "u001", false);
    assert!(all.iter().any(|id| below.contains(id)), "without exclude_seen a below item can come back: {all:?}");

    // Items only rows below the rule name: not cold, so `share` gives them no content boost
    // (and a recommendation's explanation says why CF gives them nothing).
    let positive: HashSet<&str> = rows.iter().filter(|r| r.2 >= MIN).map(|r| r.1.as_str()).collect();
    let seen_only: BTreeSet<String> =
        rows.iter().filter(|r| !positive.contains(r.1.as_str())).map(|r| r.1.clone()).collect();
    assert!(!seen_only.is_empty());
    let file = hyrank_engine::generation::read_seen_only(&engine.dir(), engine.manifest().counts.items);
    assert_eq!(ids(&engine, file.unwrap()), seen_only);
    let mut checked = 0;
    for seed in positives {
        let request: SimilarRequest = serde_json::from_value(serde_json::json!({"item": seed, "k": 100})).unwrap();
        for hit in engine.similar(&request).unwrap().hits.iter().filter(|h| seen_only.contains(&h.id)) {
            assert!(hit.breakdown.abstained.is_empty(), "{}: CF abstained on an item users rated", hit.id);
            checked += 1;
        }
    }
    assert!(checked > 0, "no similar list held an item only rows below the rule name");
    let mut named: Vec<&String> = users.iter().filter(|(_, (p, _))| !p.is_empty()).map(|(u, _)| u).collect();
    named.sort();
    let hit = named
        .iter()
        .flat_map(|user| {
            (0..3).flat_map(|page| {
                let request = RecommendRequest {
                    k: 100,
                    offset: page * 100,
                    candidates: Some(300),
                    explain: true,
                    ..RecommendRequest::new(user.as_str())
                };
                engine.recommend(&request).unwrap().hits
            })
        })
        .find(|h| seen_only.contains(&h.id))
        .expect("some user is recommended an item only rows below the rule name");
    let text = serde_json::to_string(&hit.explanations).unwrap();
    assert!(text.contains("only interactions below the build's positive rule"), "{text}");

    // A user every row of whom is below the rule has nothing to recommend from, but what they
    // saw is kept: once a live positive makes them a user, their low-rated items stay out.
    let (low, (_, low_seen)) = users.iter().filter(|(_, (p, _))| p.is_empty()).min_by_key(|(u, _)| *u).unwrap();
    assert!(matches!(engine.user(low), Err(hyrank_engine::Error::UnknownUser { .. })));
    assert!(engine.users().unwrap().iter().all(|u| &u.id != low), "users() lists users with a history");
    let liked = hits.iter().find(|id| !low_seen.contains(*id)).unwrap().clone();
    engine
        .live()
        .unwrap()
        .append(vec![Event { user: low.clone(), item: liked.clone(), weight: 5.0, timestamp: None }])
        .unwrap();
    let record = engine.user(low).unwrap();
    assert_eq!((record.history.len(), &ids(&engine, record.seen.iter().copied())), (1, low_seen));
    let all = RecommendRequest { k: 100, candidates: Some(300), ..RecommendRequest::new(low.as_str()) };
    let got: Vec<String> = engine.recommend(&all).unwrap().hits.into_iter().map(|h| h.id).collect();
    assert!(got.iter().all(|id| !low_seen.contains(id) && id != &liked), "{got:?}");

    // Live, before any build: an event below the rule is seen (left out), not a positive.
    let fresh = hits.iter().find(|id| !seen_only.contains(*id)).unwrap().clone();
    let log = engine.live().unwrap();
    log.append(vec![Event { user: "u001".into(), item: fresh.clone(), weight: 1.0, timestamp: None }]).unwrap();
    let after = recommended(&engine, "u001", true);
    assert!(!after.contains(&fresh), "{after:?}");
    let record = engine.user("u001").unwrap();
    assert_eq!(&ids(&engine, record.history.iter().map(|i| i.item)), positives, "no positive added");
    assert!(record.history.iter().all(|i| i.weight == 1.0));
    assert!(ids(&engine, record.seen.iter().copied()).contains(&fresh));
    // At or above it, a positive, counted once per item and weighing 1 as the build counts it.
    log.append(vec![Event { user: "u001".into(), item: fresh.clone(), weight: 4.0, timestamp: Some(7) }]).unwrap();
    let record = engine.user("u001").unwrap();
    let added = record.history.iter().find(|i| engine.item_at(i.item).unwrap().id == fresh).expect("a positive");
    assert_eq!((added.weight, added.timestamp), (1.0, Some(7)));
    assert!(!ids(&engine, record.seen.iter().copied()).contains(&fresh), "a positive is not also only seen");
    // A user the build never saw, whose events are all below it, has nothing to recommend
    // from, now as after the next build; one positive makes them a user.
    let event = |user: &str, weight| Event { user: user.into(), item: fresh.clone(), weight, timestamp: None };
    log.append(vec![event("newcomer", 2.0)]).unwrap();
    let unknown = engine.recommend(&RecommendRequest::new("newcomer")).unwrap_err();
    assert!(matches!(unknown, hyrank_engine::Error::UnknownUser { .. }), "{unknown}");
    log.append(vec![event("liker", 5.0), event("liker", 4.5)]).unwrap();
    assert!(!recommended(&engine, "liker", true).contains(&fresh));
    let liker = engine.user("liker").unwrap();
    assert_eq!((liker.history.len(), liker.history[0].weight), (1, 1.0), "counted once, weighing 1, as the build will");
    drop(engine);

    // The next build reads the log's events as rows of the file: the same outcome.
    hyrank_indexer::build(&settings).unwrap();
    let engine = open(root.path());
    let record = engine.user("u001").unwrap();
    let (history, seen) =
        (ids(&engine, record.history.iter().map(|i| i.item)), ids(&engine, record.seen.iter().copied()));
    assert!(history.contains(&fresh) && !seen.contains(&fresh), "as served before the build");
    assert_eq!(&seen, below);
    assert!(engine.user("newcomer").is_err());
    let liker = engine.user("liker").unwrap();
    assert_eq!(liker.history.len(), 1);
    assert_eq!(liker.history[0].weight, 1.0, "counted once, weighing 1");
}
