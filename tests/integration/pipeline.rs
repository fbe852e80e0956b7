//! The indexer on good and bad input, and what the engine accepts to open.

use hyrank_engine::{Engine, Error};
use hyrank_indexer::IndexSettings;
use hyrank_indexer::{IndexError, OnError};
use hyrank_tests::{edit_manifest, embedder_settings, fixture, fixture_settings};

/// Settings over the bad-input fixtures (three bad catalog rows, one bad interaction row).
fn bad_input_settings(dir: &tempfile::TempDir, interactions: bool, on_error: OnError) -> IndexSettings {
    let mut settings = fixture_settings(dir.path().join("index"));
    settings.catalog = fixture("bad/catalog.jsonl");
    settings.interactions = interactions.then(|| fixture("bad/interactions.csv"));
    settings.on_error = on_error;
    settings
}

#[test]
fn fixtures_index_with_every_part_and_counts() {
    let indexed = crate::indexed();
    let manifest = indexed.engine.manifest();
    assert_eq!(indexed.summary_items, 320);
    assert_eq!(manifest.counts.items, 320);
    assert_eq!(manifest.counts.users, 150);
    let rows: Vec<String> =
        std::fs::read_to_string(fixture("interactions.csv")).unwrap().lines().skip(1).map(str::to_string).collect();
    let pairs: std::collections::HashSet<(&str, &str)> = rows
        .iter()
        .map(|r| {
            let mut f = r.split(',');
            (f.next().unwrap(), f.next().unwrap())
        })
        .collect();
    assert_eq!(manifest.counts.interaction_rows, rows.len());
    assert_eq!(manifest.counts.interactions, pairs.len());
    assert_eq!(manifest.counts.rejected_items + manifest.counts.rejected_interactions, 0);
    assert_eq!(manifest.model.dim, 384);
    assert!(manifest.cf.is_some());
    let stages: Vec<&str> = manifest.stages.iter().map(|s| s.stage.as_str()).collect();
    for stage in
        ["read catalog", "train cf", "embed items", "build dense index", "build bm25 index", "write store", "publish"]
    {
        assert!(stages.contains(&stage), "missing stage {stage} in {stages:?}");
    }
}

/// `--min-weight`: the served model reads eval recommend's positives (rows at least the
/// minimum, one per user and item, weighing 1), recorded and counted.
#[test]
fn a_minimum_weight_keeps_the_rows_at_least_it_as_unit_positives() {
    let dir = tempfile::tempdir().unwrap();
    let settings = IndexSettings { min_weight: Some(4.0), ..hyrank_tests::fixture_settings(dir.path().to_path_buf()) };
    let summary = hyrank_indexer::build(&settings).unwrap();
    let rows: Vec<Vec<String>> = std::fs::read_to_string(fixture("interactions.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|r| r.split(',').map(str::to_string).collect())
        .collect();
    let weight = |r: &Vec<String>| r[2].parse::<f32>().unwrap();
    let kept: std::collections::HashSet<(&str, &str)> =
        rows.iter().filter(|r| weight(r) >= 4.0).map(|r| (r[0].as_str(), r[1].as_str())).collect();
    let m = &summary.manifest;
    assert_eq!(m.sources.min_weight, Some(4.0));
    assert_eq!(m.counts.below_min_weight, rows.iter().filter(|r| weight(r) < 4.0).count());
    assert_eq!((m.counts.interaction_rows, m.counts.interactions), (rows.len(), kept.len()));
    assert!(summary.render().contains("rows below --min-weight 4: seen"), "{}", summary.render());
    let engine = hyrank_engine::Engine::open(dir.path(), &hyrank_tests::embedder_settings()).unwrap();
    let user = &rows.iter().find(|r| weight(r) >= 4.0).unwrap()[0];
    let record = engine.user(user).unwrap();
    let wanted: std::collections::HashSet<&str> = kept.iter().filter(|(u, _)| u == user).map(|(_, i)| *i).collect();
    let history: std::collections::HashSet<String> =
        record.history.iter().map(|i| engine.item_at(i.item).unwrap().id).collect();
    assert_eq!(history, wanted.iter().map(|i| i.to_string()).collect());
    assert!(record.history.iter().all(|i| i.weight == 1.0), "{:?}", record.history);
}

/// Every interaction row bad, even with `--on-error skip`: the run stops before embedding,
/// publishes nothing, and the error carries each row's reason (not just "no usable rows").
#[test]
fn when_every_interaction_row_is_bad_the_error_lists_why() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.csv");
    std::fs::write(&events, "user,item,weight,timestamp\nu1,NOPE-1,1,1\nu2,PRG-009,heavy,2\n").unwrap();
    let mut settings = fixture_settings(dir.path().join("index"));
    settings.interactions = Some(events);
    settings.on_error = OnError::Skip;
    let err = hyrank_indexer::build(&settings).unwrap_err();
    let IndexError::NothingUsable { what, rejects, .. } = &err else { panic!("expected NothingUsable, got {err}") };
    assert_eq!((*what, rejects.len()), ("interaction", 2));
    let message = err.to_string();
    assert!(message.contains("every interaction row was rejected"), "{message}");
    assert!(message.contains("events.csv:2: field `item`: unknown item \"NOPE-1\""), "{message}");
    assert!(message.contains("events.csv:3: field `weight`"), "{message}");
    assert!(hyrank_engine::generation::current(&dir.path().join("index")).is_err(), "a generation was published");
}

#[test]
fn bad_rows_fail_the_run_by_default_and_nothing_is_published() {
    let dir = tempfile::tempdir().unwrap();
    let settings = bad_input_settings(&dir, true, OnError::Fail);
    let err = hyrank_indexer::build(&settings).unwrap_err();
    let IndexError::BadInput { rejects } = &err else { panic!("expected BadInput, got {err}") };
    let found: Vec<(u64, Option<&str>)> = rejects.iter().map(|r| (r.line, r.field.as_deref())).collect();
    assert_eq!(found, vec![(6, None), (7, Some("id")), (8, Some("title/text")), (3, Some("item"))]);
    let message = err.to_string();
    assert!(message.contains("bad/catalog.jsonl:6: malformed JSON"), "{message}");
    assert!(message.contains("bad/interactions.csv:3: field `item`: unknown item \"NOPE-404\""), "{message}");
    assert!(hyrank_engine::generation::current(&dir.path().join("index")).is_err(), "a generation was published");
}

#[test]
fn skip_mode_publishes_the_rest_and_writes_every_reject() {
    let dir = tempfile::tempdir().unwrap();
    let settings = bad_input_settings(&dir, true, OnError::Skip);
    let summary = hyrank_indexer::build(&settings).unwrap();
    assert_eq!(summary.manifest.counts.items, 5);
    assert_eq!(summary.manifest.counts.rejected_items, 3);
    assert_eq!(summary.manifest.counts.rejected_interactions, 1);
    let rejects = std::fs::read_to_string(summary.rejects_file.as_ref().unwrap()).unwrap();
    let lines: Vec<serde_json::Value> = rejects.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 4);
    assert!(lines.iter().all(|l| l["file"].is_string() && l["line"].is_u64() && l["reason"].is_string()));
    assert!(summary.render().contains("rejected: 3 catalog rows, 1 interaction rows"));
    let engine = Engine::open(&dir.path().join("index"), &embedder_settings()).unwrap();
    assert_eq!(engine.item("TNT-001").unwrap().id, "TNT-001");
}

#[test]
fn a_generation_built_with_other_weights_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let settings = bad_input_settings(&dir, false, OnError::Skip);
    let summary = hyrank_indexer::build(&settings).unwrap();
    edit_manifest(&summary.dir, |manifest| manifest["model"]["sha256"] = "0000".into());
    let Err(err) = Engine::open(&dir.path().join("index"), &embedder_settings()) else {
        panic!("opened a mismatched index")
    };
    assert!(matches!(err, Error::ModelMismatch { .. }), "{err}");
}

#[test]
fn a_generation_is_served_at_the_precision_it_was_built_with_and_no_other() {
    use hyrank_engine::Precision;
    let dir = tempfile::tempdir().unwrap();
    let settings = bad_input_settings(&dir, false, OnError::Skip);
    let summary = hyrank_indexer::build(&settings).unwrap();
    assert_eq!(summary.manifest.precision, Precision::F32, "f32 unless asked otherwise");
    let index = dir.path().join("index");
    let int8 = hyrank_engine::EmbedderSettings { precision: Some(Precision::Int8), ..embedder_settings() };
    let Err(err) = Engine::open(&index, &int8) else { panic!("served an f32 index at int8") };
    assert!(matches!(err, Error::PrecisionMismatch { index: Precision::F32, requested: Precision::Int8 }), "{err}");
    // Unasked, the engine takes the generation's precision, also when it is not f32.
    edit_manifest(&summary.dir, |manifest| manifest["precision"] = "int8".into());
    let engine = Engine::open(&index, &embedder_settings()).unwrap();
    assert_eq!(engine.embedder().precision(), Precision::Int8);
    // A manifest from before precision was recorded reads as f32.
    edit_manifest(&summary.dir, |manifest| drop(manifest.as_object_mut().unwrap().remove("precision")));
    assert_eq!(Engine::open(&index, &embedder_settings()).unwrap().embedder().precision(), Precision::F32);
}

#[test]
fn a_pinned_precision_refuses_a_swap_to_another_and_an_unpinned_server_follows() {
    use hyrank_engine::{EmbedderSettings, Precision};
    let dir = tempfile::tempdir().unwrap();
    let mut settings = bad_input_settings(&dir, false, OnError::Skip);
    // BM25F (the default) is version 5 (below); summed fields leave precision to decide.
    settings.lexical.bm25.fields = hyrank_engine::lexical::FieldCombination::Sum;
    let f32_summary = hyrank_indexer::build(&settings).unwrap();
    assert_eq!(f32_summary.manifest.format_version, 1, "f32 generations stay readable by older builds");
    let index = dir.path().join("index");
    let pinned = EmbedderSettings { precision: Some(Precision::F32), ..embedder_settings() };
    let serving_pinned = Engine::open(&index, &pinned).unwrap();
    let serving_free = Engine::open(&index, &embedder_settings()).unwrap();
    settings.embedder.precision = Some(Precision::Int8);
    let int8_summary = hyrank_indexer::build(&settings).unwrap();
    assert_eq!(int8_summary.manifest.precision, Precision::Int8);
    assert_eq!(int8_summary.manifest.format_version, 2, "older builds must refuse a reduced-precision generation");
    let Err(err) = Engine::open_next(&index, &serving_pinned) else { panic!("swapped past a pinned precision") };
    assert!(matches!(err, Error::PrecisionMismatch { index: Precision::Int8, requested: Precision::F32 }), "{err}");
    let next = Engine::open_next(&index, &serving_free).unwrap().expect("a new generation");
    assert_eq!(next.embedder().precision(), Precision::Int8);
}

#[test]
fn a_second_run_publishes_a_new_generation_beside_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let settings = bad_input_settings(&dir, false, OnError::Skip);
    let first = hyrank_indexer::build(&settings).unwrap();
    let second = hyrank_indexer::build(&settings).unwrap();
    assert_eq!(first.manifest.generation, "000001");
    assert_eq!(second.manifest.generation, "000002");
    // A build from before BM25F would read its field combination as `sum`: it must refuse.
    assert_eq!(first.manifest.format_version, hyrank_engine::generation::SCORING_FORMAT_VERSION);
    assert!(first.dir.join("manifest.json").is_file(), "the old generation must stay intact");
    assert_eq!(hyrank_engine::generation::current(&dir.path().join("index")).unwrap(), second.dir);
}

/// `--cf-model auto` on the fixtures: every candidate validated and recorded; then the same
/// catalog with EASE asked for serves recommendations, similar items and personalised search
/// from the stored histories, and its explanation is the exact sum of per-history weights,
/// with history items named by title.
#[test]
fn ease_and_auto_generations_choose_record_serve_and_explain() {
    use hyrank_engine::cf::CfModelSettings;
    use hyrank_engine::explain::RetrieverKind;
    use hyrank_engine::{RecommendMode, RecommendRequest, SearchRequest, SimilarRequest};
    use hyrank_indexer::cf_choice::CfModelChoice;

    let dir = tempfile::tempdir().unwrap();
    let mut settings = fixture_settings(dir.path().join("auto"));
    settings.cf.requested = CfModelChoice::Auto;
    let summary = hyrank_indexer::build(&settings).unwrap();
    let selection = summary.manifest.cf_selection.clone().expect("auto records its choice");
    assert_eq!(selection.requested, "auto");
    assert!(selection.validation_users > 100 && selection.validation_interactions > 0);
    let fitted: Vec<_> = selection.candidates.iter().filter(|c| c.ndcg_10.is_some()).collect();
    assert!(fitted.iter().any(|c| matches!(c.model, CfModelSettings::Als(_))));
    assert!(fitted.iter().any(|c| matches!(c.model, CfModelSettings::Ease(_))));
    let best = fitted.iter().map(|c| c.ndcg_10.unwrap()).fold(f64::MIN, f64::max);
    let served = match (&summary.manifest.cf, &summary.manifest.ease) {
        (Some(als), None) => CfModelSettings::Als(als.clone()),
        (None, Some(ease)) => CfModelSettings::Ease(ease.clone()),
        other => panic!("exactly one CF model must serve: {other:?}"),
    };
    let chosen = fitted.iter().find(|c| c.model == served).expect("the served model is a candidate");
    assert_eq!(chosen.ndcg_10, Some(best));
    assert!(summary.render().contains("cf model:"), "{}", summary.render());

    // auto validated the content weight too, and the engine serves the manifest's weight as a
    // recommend request's default.
    let weight = selection.content_weight.expect("auto validates the content weight");
    assert!(selection.content_weights.iter().any(|c| c.weight == weight) && selection.content_weights.len() >= 7);
    assert!(summary.render().contains("content weight of hybrid recommendations"), "{}", summary.render());
    assert_eq!(
        Engine::open(&dir.path().join("auto"), &embedder_settings()).unwrap().recommend_content_weight(),
        weight
    );
    edit_manifest(&summary.dir, |manifest| manifest["cf_selection"]["content_weight"] = serde_json::json!(1.0));
    let engine = Engine::open(&dir.path().join("auto"), &embedder_settings()).unwrap();
    assert_eq!(engine.recommend_content_weight(), 1.0);
    let ids = |request: &RecommendRequest| -> Vec<(String, f64)> {
        engine.recommend(request).unwrap().hits.into_iter().map(|h| (h.id, h.score)).collect()
    };
    let given = hyrank_engine::request::Weights { dense: Some(1.0), ..Default::default() };
    assert_eq!(
        ids(&RecommendRequest::new("u007")),
        ids(&RecommendRequest { weights: given.clone(), ..RecommendRequest::new("u007") })
    );
    // A validated weight of 0 is content's share beside CF: content asked for alone still
    // scores by it (every score was 0 here, ranked by rank ties alone).
    edit_manifest(&summary.dir, |manifest| manifest["cf_selection"]["content_weight"] = serde_json::json!(0.0));
    let engine = Engine::open(&dir.path().join("auto"), &embedder_settings()).unwrap();
    let content = RecommendRequest { mode: RecommendMode::Content, ..RecommendRequest::new("u007") };
    let hits = engine.recommend(&content).unwrap().hits;
    assert!(!hits.is_empty() && hits.iter().all(|h| h.score > 0.0), "{hits:?}");
    let weighted = engine.recommend(&RecommendRequest { weights: given, ..content.clone() }).unwrap().hits;
    assert_eq!(hits.iter().map(|h| &h.id).collect::<Vec<_>>(), weighted.iter().map(|h| &h.id).collect::<Vec<_>>());

    let mut settings = fixture_settings(dir.path().join("ease"));
    settings.cf.requested = CfModelChoice::Ease;
    let summary = hyrank_indexer::build(&settings).unwrap();
    assert!(summary.manifest.cf.is_none() && summary.manifest.ease.is_some());
    assert!(summary.dir.join("ease.bin").is_file() && !summary.dir.join("users.vectors").exists());
    let engine = Engine::open(&dir.path().join("ease"), &embedder_settings()).unwrap();

    let user = engine.user("u007").unwrap();
    let seen: std::collections::HashSet<String> =
        user.history.iter().map(|i| engine.item_ids()[i.item as usize].clone()).collect();
    let request = RecommendRequest { k: 10, mode: RecommendMode::Cf, explain: true, ..RecommendRequest::new("u007") };
    let results = engine.recommend(&request).unwrap();
    assert_eq!(results.hits.len(), 10);
    for hit in &results.hits {
        assert!(!seen.contains(&hit.id), "a seen item was recommended");
        let raw = hit.breakdown.retrievers.iter().find(|r| r.retriever == RetrieverKind::Cf).unwrap().raw_score;
        let tree = hit.explanations.iter().find(|e| e.label.starts_with("CF score (EASE")).expect("an EASE tree");
        assert!((tree.value - f64::from(raw)).abs() < 1e-4, "{} vs {raw}", tree.value);
        assert!(!tree.children.is_empty() && tree.children.len() <= 6, "the top 5 and the rest");
        let parts: f64 = tree.children.iter().map(|c| c.value).sum();
        assert!((parts - tree.value).abs() < 1e-5, "the children add up: {parts} vs {}", tree.value);
        for child in tree.children.iter().filter(|c| !c.label.contains(" other history items")) {
            // "history item PRG-013 “Title”": the id and the title.
            let (id, title) = child.label.trim_start_matches("history item ").split_once(" “").unwrap();
            assert!(seen.contains(id), "{id} is not in the history");
            assert_eq!(title.trim_end_matches('”'), engine.item(id).unwrap().title.trim());
        }
    }
    assert!(results.hits.windows(2).all(|w| w[0].score >= w[1].score));

    // Similar: CF neighbours come from the seed's row of B.
    let seed = results.hits[0].id.clone();
    let similar: SimilarRequest = serde_json::from_value(serde_json::json!({"item": seed, "k": 5})).unwrap();
    let similar = engine.similar(&similar).unwrap();
    assert!(similar.hits.iter().all(|h| h.id != seed));
    assert!(similar.hits.iter().any(|h| h.breakdown.retrievers.iter().any(|r| r.retriever == RetrieverKind::Cf)));

    // Personalised search reads the same history.
    let search = SearchRequest { user: Some("u007".into()), k: 5, ..SearchRequest::new("tent") };
    let found = engine.search(&search).unwrap();
    assert!(found.hits.iter().any(|h| h.breakdown.retrievers.iter().any(|r| r.retriever == RetrieverKind::Cf)));

    // With a recency half-life, the newest history item counts 1 and older ones less; the tree
    // still adds up to the served score and shows each weight.
    let mut settings = fixture_settings(dir.path().join("recency"));
    settings.cf.requested = CfModelChoice::Ease;
    settings.cf.ease.recency_half_life = 1.0;
    hyrank_indexer::build(&settings).unwrap();
    let engine = Engine::open(&dir.path().join("recency"), &embedder_settings()).unwrap();
    let user = engine.user("u007").unwrap();
    let newest = user.history.iter().max_by_key(|i| i.timestamp).unwrap();
    let newest = engine.item_ids()[newest.item as usize].clone();
    let results = engine.recommend(&request).unwrap();
    let mut weighted = 0;
    for hit in &results.hits {
        let raw = hit.breakdown.retrievers.iter().find(|r| r.retriever == RetrieverKind::Cf).unwrap().raw_score;
        let tree = hit.explanations.iter().find(|e| e.label.starts_with("CF score (EASE")).unwrap();
        assert!(tree.label.contains("recency half-life 1"), "{}", tree.label);
        assert!((tree.value - f64::from(raw)).abs() < 1e-4, "{} vs {raw}", tree.value);
        for child in tree.children.iter().filter(|c| !c.label.contains(" other history items")) {
            let id = child.label.trim_start_matches("history item ").split_once(" “").unwrap().0;
            assert_eq!(child.label.contains("recency weight"), id != newest, "{}", child.label);
            weighted += child.label.contains("recency weight") as usize;
        }
    }
    assert!(weighted > 0, "older history items carry their weight in the tree");
}

/// EASE asked for past the memory limit is refused before anything is fitted, naming the
/// estimate and the flag; nothing is published.
#[test]
fn ease_past_its_memory_limit_is_refused_with_the_estimate() {
    use hyrank_indexer::cf_choice::CfModelChoice;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = fixture_settings(dir.path().join("index"));
    settings.cf.requested = CfModelChoice::Ease;
    settings.cf.memory_limit = Some(1000);
    let error = hyrank_indexer::build(&settings).unwrap_err().to_string();
    assert!(error.contains("needs about") && error.contains("--cf-memory-limit"), "{error}");
    assert!(hyrank_engine::generation::current(&dir.path().join("index")).is_err());
}

/// Issue 15's multilingual catalog end to end, in hybrid mode (the default): the words people
/// type find the items, and an over-long token is indexed in pieces and counted.
#[test]
fn a_multilingual_catalog_is_found_in_hybrid_mode_and_long_tokens_are_counted() {
    use hyrank_engine::SearchRequest;
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog.jsonl");
    let giant = "z".repeat(70_000);
    let rows = [
        serde_json::json!({"id": "mug", "title": "Enamel coffee mug", "text": "A mug for camp coffee."}),
        serde_json::json!({"id": "tent", "title": "轻量级帐篷", "text": "双人 三季"}),
        serde_json::json!({"id": "mountains", "title": "الْجِبَال", "text": "رحلة إلى الْجِبَال"}),
        serde_json::json!({"id": "stove", "title": "Trail stove", "text": "A small gas stove."}),
        serde_json::json!({"id": "giant", "title": "Giant", "text": giant}),
    ];
    let lines: Vec<String> = rows.iter().map(|r| r.to_string()).collect();
    std::fs::write(&catalog, lines.join("\n")).unwrap();
    let settings =
        IndexSettings { progress: false, ..IndexSettings::new(catalog, dir.path().join("index"), embedder_settings()) };
    let summary = hyrank_indexer::build(&settings).unwrap();
    assert_eq!(summary.manifest.counts.long_tokens_split, 1);
    assert!(summary.render().contains("1 tokens longer than 255 characters"), "{}", summary.render());
    let engine = Engine::open(&dir.path().join("index"), &embedder_settings()).unwrap();
    for (query, expected) in [("帐篷", "tent"), ("الجبال", "mountains"), (giant.as_str(), "giant")] {
        let found = engine.search(&SearchRequest { k: 3, ..SearchRequest::new(query) }).unwrap();
        assert_eq!(found.hits.first().map(|h| h.id.as_str()), Some(expected), "{query:.20}: {:?}", found.hits);
    }
}

/// The child process of `a_write_error_mid_build_is_a_clear_error_and_publishes_nothing`: this
/// test binary again, under a file-size limit, running only this test. Ignored (and a no-op)
/// when run any other way.
#[cfg(unix)]
#[test]
#[ignore = "the child process of `a_write_error_mid_build_is_a_clear_error_and_publishes_nothing`"]
fn build_under_a_file_size_limit_child() {
    let Some(index) = std::env::var_os("HYRANK_FSIZE_CHILD_INDEX") else { return };
    // What `hyrank`'s main does, so that the limit gives EFBIG instead of a kill.
    // SAFETY: one signal's disposition, set before this test starts threads of its own.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    match hyrank_indexer::build(&hyrank_tests::fixture_settings(index.into())) {
        Ok(summary) => println!("PUBLISHED {}", summary.manifest.generation),
        Err(e) => println!("ERROR {e}"),
    }
}

/// Issue 18: a write error mid-build (here the file-size limit of the process, `ulimit -f`;
/// a full disk fails the same writes with ENOSPC) is an error naming what was written, and
/// publishes nothing; the previous generation keeps serving.
#[cfg(unix)]
#[test]
fn a_write_error_mid_build_is_a_clear_error_and_publishes_nothing() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("index");
    let run = |limit_bytes: u64| {
        let mut command = std::process::Command::new(std::env::current_exe().unwrap());
        command
            .args(["--ignored", "--exact", "pipeline::build_under_a_file_size_limit_child", "--nocapture"])
            .env("HYRANK_FSIZE_CHILD_INDEX", &index)
            .stderr(std::process::Stdio::null());
        // SAFETY: only setrlimit (async-signal-safe) between fork and exec.
        unsafe {
            command.pre_exec(move || {
                let limit = libc::rlimit { rlim_cur: limit_bytes, rlim_max: limit_bytes };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let output = command.output().unwrap();
        String::from_utf8_lossy(&output.stdout).to_string()
    };
    // A first, unlimited build publishes 000001.
    assert!(run(libc::RLIM_INFINITY).contains("PUBLISHED 000001"));
    // The next one runs out of file size: a clear error, nothing published, no folder left.
    let out = run(200 * 1024);
    assert!(out.contains("ERROR") && out.contains("File too large"), "{out}");
    assert_eq!(std::fs::read_to_string(index.join("CURRENT")).unwrap(), "000001");
    let left: Vec<String> = std::fs::read_dir(index.join("generations"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|name| !name.starts_with(".serving-"))
        .collect();
    assert_eq!(left, ["000001"], "the failed build left {left:?}");
    // And the generation that was serving still opens.
    Engine::open(&index, &hyrank_tests::embedder_settings()).unwrap();
}

/// Kills the process with SIGKILL when the build logs `stage` as done: a `kill -9` that lands
/// at a known point of the build, with nothing in the indexer to help it.
#[cfg(unix)]
struct KillAfterStage(String);

#[cfg(unix)]
impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for KillAfterStage {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Stage(Option<String>);
        impl tracing::field::Visit for Stage {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "stage" {
                    self.0 = Some(value.to_string());
                }
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        let mut stage = Stage(None);
        event.record(&mut stage);
        if stage.0.as_deref() == Some(self.0.as_str()) {
            // SAFETY: kill(2) on our own pid; the process ends here.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        }
    }
}

/// The child process of `kill_9_of_a_build_at_each_stage_leaves_the_serving_generation`:
/// builds the fixture index named by HYRANK_KILL_CHILD_INDEX and is killed with SIGKILL when
/// the stage HYRANK_KILL_CHILD_STAGE is done. Ignored (and a no-op) when run any other way.
#[cfg(unix)]
#[test]
#[ignore = "the child process of `kill_9_of_a_build_at_each_stage_leaves_the_serving_generation`"]
fn build_killed_at_a_stage_child() {
    use tracing_subscriber::layer::SubscriberExt;
    let (Some(index), Some(stage)) =
        (std::env::var_os("HYRANK_KILL_CHILD_INDEX"), std::env::var("HYRANK_KILL_CHILD_STAGE").ok())
    else {
        return;
    };
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(KillAfterStage(stage))).unwrap();
    match hyrank_indexer::build(&hyrank_tests::fixture_settings(index.into())) {
        Ok(summary) => println!("PUBLISHED {}", summary.manifest.generation),
        Err(e) => println!("ERROR {e}"),
    }
}

/// Issue 18: `kill -9` of `hyrank index` after each of its stages (a real SIGKILL of a real
/// process) leaves the generation `CURRENT` names serving, and the next run publishes and
/// leaves no folder of the dead builds behind.
#[cfg(unix)]
#[test]
fn kill_9_of_a_build_at_each_stage_leaves_the_serving_generation_and_the_next_run_clean() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("index");
    let first = hyrank_indexer::build(&hyrank_tests::fixture_settings(index.clone())).unwrap();
    let stages = [
        "read catalog",
        "read interactions",
        "train cf",
        "build cf index",
        "embed items",
        "build dense index",
        "build bm25 index",
        "write store",
        "publish",
    ];
    let folders = || {
        let mut names: Vec<String> = std::fs::read_dir(index.join("generations"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|name| !name.starts_with(".serving-"))
            .collect();
        names.sort();
        names
    };
    for stage in stages {
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "pipeline::build_killed_at_a_stage_child", "--nocapture"])
            .env("HYRANK_KILL_CHILD_INDEX", &index)
            .env("HYRANK_KILL_CHILD_STAGE", stage)
            .stderr(std::process::Stdio::null())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.signal(), Some(libc::SIGKILL), "killed after {stage:?}: {stdout}");
        assert!(!stdout.contains("PUBLISHED"), "{stage}: {stdout}");
        assert_eq!(std::fs::read_to_string(index.join("CURRENT")).unwrap(), first.manifest.generation, "{stage}");
        let serving = Engine::open(&index, &hyrank_tests::embedder_settings()).unwrap();
        assert_eq!(serving.manifest().generation, first.manifest.generation, "{stage}");
        let request = hyrank_engine::SearchRequest { k: 3, ..hyrank_engine::SearchRequest::new("tent") };
        assert!(serving.search(&request).is_ok());
    }
    // Dead builds left their folders; the next run removes them (their locks died with them)
    // and publishes.
    assert!(folders().iter().any(|name| name.starts_with(".building-")), "{:?}", folders());
    let next = hyrank_indexer::build(&hyrank_tests::fixture_settings(index.clone())).unwrap();
    assert_eq!(std::fs::read_to_string(index.join("CURRENT")).unwrap(), next.manifest.generation);
    let left = folders();
    assert!(left.iter().all(|name| !name.starts_with(".building")), "{left:?}");
    assert!(left.contains(&next.manifest.generation), "{left:?}");
}

/// Issue 19: the catalog embedded in shards and assembled gives the same vectors, byte for
/// byte, as one process embedding it all; a missing shard and a shard from another model are
/// refused; an item whose text changed after its shard was embedded is embedded by the build.
#[test]
fn sharded_embeddings_assemble_to_the_single_process_vectors() {
    use hyrank_engine::{Embedder, EmbedderSettings, Precision};
    use hyrank_indexer::input::{read_catalog, CatalogFormat};
    use hyrank_indexer::shards::{embed_shard, file_name};
    let dir = tempfile::tempdir().unwrap();
    let catalog = fixture("beir-tiny").join("corpus.jsonl");
    let items: Vec<(String, String)> = read_catalog(&catalog, &CatalogFormat::default())
        .unwrap()
        .items
        .iter()
        .map(|item| (item.id.clone(), item.content()))
        .collect();
    let embedder = Embedder::load(&embedder_settings()).unwrap();
    let shards = dir.path().join("shards");
    let mut total = 0;
    for shard in 0..3 {
        total += embed_shard(&embedder, &items, shard, 3, &shards, |_| {}).unwrap().1;
    }
    assert_eq!(total, items.len(), "every item is in exactly one shard");

    let build = |name: &str, embeddings: Option<&std::path::Path>, catalog: &std::path::Path| {
        let mut settings = IndexSettings::new(catalog.to_path_buf(), dir.path().join(name), embedder_settings());
        settings.progress = false;
        settings.embeddings = embeddings.map(std::path::Path::to_path_buf);
        hyrank_indexer::build(&settings)
    };
    let single = build("single", None, &catalog).unwrap().dir;
    let sharded = build("sharded", Some(&shards), &catalog).unwrap().dir;
    let vectors = |dir: &std::path::Path| std::fs::read(dir.join("dense.vectors")).unwrap();
    assert!(vectors(&single) == vectors(&sharded), "sharded vectors differ from the single-process ones");

    // An item whose text changed since the shards were embedded gets the vector of its new text.
    let text = std::fs::read_to_string(&catalog).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let old_title = first["title"].as_str().unwrap();
    let edited = dir.path().join("edited.jsonl");
    std::fs::write(&edited, text.replacen(old_title, "Entirely new title", 1)).unwrap();
    let fresh = build("edited-single", None, &edited).unwrap().dir;
    let assembled = build("edited-sharded", Some(&shards), &edited).unwrap().dir;
    assert!(vectors(&fresh) == vectors(&assembled), "the changed item was not embedded again");
    assert!(vectors(&fresh) != vectors(&single));

    // A rebuild reuses the current generation's vectors of unchanged items: marked here by
    // scaling the stored rows in place, which only reuse can carry into the next generation.
    // The edited item is embedded again, and without reuse every item is.
    let halved = |bytes: Vec<u8>| -> Vec<u8> {
        bytes.chunks_exact(4).flat_map(|b| (f32::from_le_bytes(b.try_into().unwrap()) * 0.5).to_le_bytes()).collect()
    };
    let mark = |generation: &std::path::Path| {
        let (stored, marked) = (generation.join("dense.vectors"), halved(vectors(generation)));
        std::fs::remove_file(&stored).unwrap();
        std::fs::write(&stored, &marked).unwrap();
        marked
    };
    let scaled = mark(&single);
    let reused = build("single", None, &edited).unwrap().dir;
    let dim = embedder.dim() * 4;
    let rows = |bytes: Vec<u8>| bytes.chunks(dim).map(<[u8]>::to_vec).collect::<Vec<_>>();
    let (reused_rows, scaled_rows, fresh_rows) = (rows(vectors(&reused)), rows(scaled), rows(vectors(&fresh)));
    assert_eq!(reused_rows[0], fresh_rows[0], "the edited item (the first) is embedded again");
    assert_eq!(reused_rows[1..], scaled_rows[1..], "every unchanged item's stored vector is reused");
    let mut settings = IndexSettings::new(edited.clone(), dir.path().join("single"), embedder_settings());
    (settings.progress, settings.reuse_embeddings) = (false, false);
    let embedded = hyrank_indexer::build(&settings).unwrap().dir;
    assert!(vectors(&embedded) == vectors(&fresh), "without reuse every item is embedded");
    // With shards too, the current generation gives the vectors the shards lack with their
    // text (the edited item's), and the shards the rest: nothing is embedded.
    let marked = rows(mark(&embedded));
    let both = rows(vectors(&build("single", Some(&shards), &edited).unwrap().dir));
    assert_eq!(both[0], marked[0], "the edited item's vector is the current generation's");
    assert_eq!(both[1..], fresh_rows[1..], "the others are the shards'");

    // A shard missing, and a shard embedded at another precision, are refused by name.
    std::fs::rename(shards.join(file_name(1, 3)), dir.path().join("aside.bin")).unwrap();
    let err = build("missing", Some(&shards), &catalog).unwrap_err().to_string();
    assert!(err.contains("misses shard(s) shard-1-of-3.bin"), "{err}");
    let int8 = Embedder::load(&EmbedderSettings { precision: Some(Precision::Int8), ..embedder_settings() }).unwrap();
    embed_shard(&int8, &items, 1, 3, &shards, |_| {}).unwrap();
    let err = build("mismatch", Some(&shards), &catalog).unwrap_err().to_string();
    assert!(err.contains("shard-1-of-3.bin") && err.contains("at int8"), "{err}");
    // A shard of another split renamed into this one is named as such, not as a model
    // difference whose two sides read the same.
    embed_shard(&embedder, &items, 1, 3, &shards, |_| {}).unwrap();
    std::fs::copy(shards.join(file_name(1, 3)), shards.join(file_name(2, 3))).unwrap();
    let err = build("renamed", Some(&shards), &catalog).unwrap_err().to_string();
    assert!(err.contains("holds shard 1 of 3 by its header, not shard 2 of 3"), "{err}");
}

/// A catalog team's brand and tags searched beside the title and the text
/// (`--search-fields brand^2,tags`): every BM25 hit for a tag carries it, marked in its
/// highlights; the manifest records the fields; a number field or a field no item has is
/// refused before anything is built.
#[test]
fn catalog_fields_are_searched_and_a_number_field_is_refused() {
    use hyrank_engine::item::FieldValue;
    use hyrank_engine::lexical::SearchField;
    use hyrank_engine::{request::Mode, SearchRequest};
    let dir = tempfile::tempdir().unwrap();
    let mut settings = fixture_settings(dir.path().join("index"));
    let field = |name: &str, boost| SearchField::new(name, boost);
    for (fields, expected) in [
        (vec![field("price", 1.0)], "--search-fields price: the field holds numbers"),
        (vec![field("colour", 1.0)], "--search-fields colour: no item has this field"),
    ] {
        settings.lexical.search_fields = fields;
        let error = hyrank_indexer::build(&settings).unwrap_err().to_string();
        assert!(error.contains(expected) && error.contains("catalog.jsonl"), "{error}");
        assert!(hyrank_engine::generation::current(&dir.path().join("index")).is_err(), "nothing published");
    }
    settings.lexical.search_fields = vec![field("brand", 2.0), field("tags", 1.0)];
    hyrank_indexer::build(&settings).unwrap();
    let engine = Engine::open(&dir.path().join("index"), &embedder_settings()).unwrap();
    assert_eq!(engine.manifest().lexical.search_fields, settings.lexical.search_fields);
    let request = SearchRequest { k: 50, mode: Mode::Bm25, highlight: true, ..SearchRequest::new("ultralight") };
    let found = engine.search(&request).unwrap();
    let mut tagged_only = 0;
    for hit in &found.hits {
        let item = engine.item(&hit.id).unwrap();
        let in_text = format!("{} {}", item.title, item.text).to_lowercase().contains("ultralight");
        let tagged =
            matches!(item.fields.get("tags"), Some(FieldValue::List(tags)) if tags.iter().any(|t| t == "ultralight"));
        assert!(in_text || tagged, "{}: {:?}", hit.id, item);
        let marked = hit.highlights.as_ref().and_then(|h| h.fields.get("tags"));
        assert_eq!(tagged, marked.is_some_and(|tags| tags.contains(&"<em>ultralight</em>".into())), "{hit:?}");
        tagged_only += usize::from(!in_text);
    }
    assert!(tagged_only > 0, "some hits are found by their tag alone: {found:?}");
}

/// Settings the data makes moot, which the command line cannot know, are named in the summary
/// (and logged): a type declared for a field no item has, graph settings for a catalog scanned
/// exactly, CF settings with no interactions. A declared type for a field the items have is
/// named by none.
#[test]
fn settings_the_data_makes_moot_are_named() {
    use hyrank_indexer::cf_choice::CfModelChoice;
    use hyrank_indexer::input::FieldType;
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog.jsonl");
    let rows = [
        serde_json::json!({"id": "mug", "title": "Enamel coffee mug", "fields": {"price": 12}}),
        serde_json::json!({"id": "stove", "title": "Trail stove", "fields": {"price": 40}}),
    ];
    std::fs::write(&catalog, rows.map(|r| r.to_string()).join("\n")).unwrap();
    let plain =
        IndexSettings { progress: false, ..IndexSettings::new(catalog, dir.path().join("a"), embedder_settings()) };
    let mut moot = plain.clone();
    moot.index_dir = dir.path().join("b");
    moot.catalog_format.field_types.insert("prise".into(), FieldType::Number);
    moot.hnsw.max_connections = 32;
    moot.cf.requested = CfModelChoice::Als;
    let said = hyrank_indexer::build(&moot).unwrap();
    let named = said.moot_settings.join("\n");
    assert_eq!(said.moot_settings.len(), 3, "{named}");
    assert!(named.contains("--field-type prise: no item has this field (the catalog's fields are [\"price\"])"));
    assert!(named.contains("HNSW settings: dense search scans a catalog of at most 10000 items exactly (2 here)"));
    assert!(named.contains("CF settings: there are no interactions"));
    assert!(said.render().contains("no effect: --field-type prise"), "{}", said.render());
    let mut applies = plain;
    applies.catalog_format.field_types.insert("price".into(), FieldType::Number);
    assert_eq!(hyrank_indexer::build(&applies).unwrap().moot_settings, Vec::<String>::new());
}
