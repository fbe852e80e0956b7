//! `hyrank train-reranker` end to end on the tiny judged fixture: a few epochs on CPU, the new
//! generation it publishes, and searches through the trained reranker.

use std::path::Path;

use hyrank_engine::batcher::BatcherSettings;
use hyrank_engine::request::{RerankOptions, RerankerKind, SearchRequest};
use hyrank_engine::{DeviceChoice, Engine, ErrorKind, RuntimeSettings};
use hyrank_indexer::train::{train, Supervision, TrainSettings};
use hyrank_indexer::IndexSettings;
use hyrank_tests::{edit_manifest, embedder_settings, fixture};

fn index_tiny(root: &Path) -> std::path::PathBuf {
    let index_dir = root.join("index");
    let mut settings =
        IndexSettings::new(fixture("beir-tiny").join("corpus.jsonl"), index_dir.clone(), embedder_settings());
    settings.progress = false;
    hyrank_indexer::build(&settings).unwrap();
    index_dir
}

fn tiny_settings(index_dir: &Path, supervision: Supervision) -> TrainSettings {
    let mut settings = TrainSettings::new(index_dir.to_path_buf(), embedder_settings(), supervision);
    settings.shape = hyrank_engine::cross::CrossEncoderSettings::JOINT;
    settings.shape.max_tokens = 128;
    settings.epochs = 3;
    settings.patience = 3;
    settings.hard_negatives = 3;
    settings.random_negatives = 1;
    settings.mine_depth = 10;
    settings.depth = 10;
    settings.validation_fraction = 0.34;
    settings
}

/// A server's runtime: trained-reranker pairs go through model workers.
fn with_rerank_workers() -> RuntimeSettings {
    RuntimeSettings {
        rerank_workers: Some(BatcherSettings { max_batch: 4, queue_capacity: 8 }),
        ..RuntimeSettings::default()
    }
}

fn judgments() -> Supervision {
    let train = fixture("beir-tiny").join("train");
    Supervision::Judgments { queries: train.join("queries.jsonl"), qrels: train.join("qrels.tsv") }
}

#[test]
fn a_trained_reranker_is_published_validated_and_served_with_exact_explanations() {
    let dir = tempfile::tempdir().unwrap();
    let index_dir = index_tiny(dir.path());
    let plain = Engine::open(&index_dir, &embedder_settings()).unwrap();
    let query = "keep the rain out of my tent";
    let hybrid = plain.search(&SearchRequest::new(query)).unwrap();

    let summary = train(&tiny_settings(&index_dir, judgments())).unwrap();
    let entry = &summary.reranker;
    assert!(summary.dir.ends_with("000002"), "{}", summary.dir.display());
    assert!(summary.dir.join(&entry.file).is_file());
    assert_eq!(entry.training.train_queries + entry.training.validation_queries, 12);
    assert_eq!(entry.training.validation_queries, 4);
    assert_eq!(entry.training.epoch_loss.len(), entry.training.epochs_run);
    assert_eq!(entry.training.epochs_run, 3, "patience 3 never stops a 3-epoch run");
    // The groups are the same every epoch: training must fit them better as it goes.
    let losses = &entry.training.epoch_loss;
    assert!(losses[2] < losses[0], "training loss did not fall: {losses:?}");
    let v = &entry.validation;
    for value in [v.hybrid_ndcg10, v.logit_ndcg10, v.combined_ndcg10] {
        assert!((0.0..=1.0).contains(&value), "{v:?}");
    }
    assert_eq!(entry.enabled_by_default, v.gain_interval[0] > 0.0);
    let cross_fitted_gain = v.cross_fitted_ndcg10 - v.hybrid_ndcg10;
    assert!(
        v.gain_interval[0] <= cross_fitted_gain + 1e-12 && cross_fitted_gain <= v.gain_interval[1] + 1e-12,
        "{v:?}"
    );
    assert!(entry.combination.weights["rerank"] != 0.0, "{:?}", entry.combination);

    // The new generation serves it; the old one is untouched.
    let engine = Engine::open(&index_dir, &embedder_settings()).unwrap();
    assert_eq!(engine.manifest().generation, "000002");
    let served_entry = engine.trained_reranker().expect("the manifest names the reranker");
    assert_eq!((served_entry.file.as_str(), served_entry.depth), (entry.file.as_str(), entry.depth));
    assert_eq!(served_entry.enabled_by_default, entry.enabled_by_default);
    let mut request = SearchRequest::new(query);
    request.rerank = Some(RerankOptions::top(10, Some(RerankerKind::Trained)));
    request.k = 5;
    let reranked = engine.search(&request).unwrap();
    assert_eq!(reranked.hits.len(), 5);
    for hit in &reranked.hits {
        let b = &hit.breakdown;
        let combined = b.combination.as_ref().expect("the learned combination scored every hit");
        let sum = combined.bias + combined.features.iter().map(|f| f.contribution).sum::<f64>();
        assert!((sum - b.final_score).abs() < 1e-9, "{b:?}");
        assert_eq!(hit.score, b.final_score);
        for feature in &combined.features {
            assert!((feature.weight * feature.value - feature.contribution).abs() < 1e-12, "{feature:?}");
        }
        let rerank = b.rerank.as_ref().unwrap();
        let logit = combined.features.iter().find(|f| f.feature == "rerank").unwrap();
        assert_eq!(f64::from(rerank.raw_score), logit.value);
        assert_eq!(rerank.reranker, "cross_encoder");
    }
    assert!(reranked.hits.windows(2).all(|w| w[0].score >= w[1].score));

    // Opting out gives exactly the hybrid ranking of the generation it was built from.
    request.rerank = Some(RerankOptions::off());
    request.k = 10;
    let off = engine.search(&request).unwrap();
    let ids = |r: &hyrank_engine::Results| r.hits.iter().map(|h| h.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&off), ids(&hybrid));
    assert!(off.hits.iter().all(|h| h.breakdown.rerank.is_none() && h.breakdown.combination.is_none()));

    // A bare request follows the manifest's verdict.
    let bare = engine.search(&SearchRequest::new(query)).unwrap();
    assert_eq!(bare.hits[0].breakdown.combination.is_some(), entry.enabled_by_default);

    // Through the model worker the scores are the same.
    let served = Engine::open_with_runtime(&index_dir, &embedder_settings(), with_rerank_workers()).unwrap();
    request.rerank = Some(RerankOptions::top(10, Some(RerankerKind::Trained)));
    request.k = 5;
    let through_worker = served.search(&request).unwrap();
    for (a, b) in through_worker.hits.iter().zip(&reranked.hits) {
        assert_eq!(a.id, b.id);
        assert!((a.score - b.score).abs() < 1e-4, "{} vs {}", a.score, b.score);
    }
    assert_eq!(served.rerank_worker().unwrap().stats().queries, 1);

    // The generation without a reranker says so when one is asked for.
    let err = plain.search(&request).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}

/// PreTTR end to end: the trainer stores every item's states, the engine serves from them (the
/// same logits as computing the item side on the fly), a second identical request is answered
/// from the logit cache, and a generation whose states do not fit its reranker is refused.
#[test]
fn a_prettr_reranker_serves_from_stored_states_and_mismatched_states_are_refused() {
    use hyrank_engine::cross::{CrossEncoder, ItemText};
    use hyrank_engine::generation::files;
    let dir = tempfile::tempdir().unwrap();
    let index_dir = index_tiny(dir.path());
    let mut settings = tiny_settings(&index_dir, judgments());
    settings.shape.item_tokens = Some(32);
    settings.epochs = 1;
    let summary = train(&settings).unwrap();
    let entry = &summary.reranker;
    assert_eq!(entry.states.as_deref(), Some(files::RERANKER_STATES));
    assert!(summary.dir.join(files::RERANKER_STATES).is_file());
    let bytes = entry.states_bytes_per_item.unwrap();
    assert!(bytes > 0.0 && bytes <= 32.0 * (384.0 + 4.0), "{bytes}");

    let engine = Engine::open(&index_dir, &embedder_settings()).unwrap();
    let query = "keep the rain out of my tent";
    let mut request = SearchRequest::new(query);
    request.rerank = Some(RerankOptions::top(10, Some(RerankerKind::Trained)));
    let served = engine.search(&request).unwrap();
    let stats = engine.runtime().rerank_cache().stats();
    assert_eq!((stats.hits, stats.misses), (0, 10), "{stats:?}");
    // The query's pass through the frozen layers came from its embedding pass (the logits are
    // checked against a fresh model's below); a search that does not embed the query runs it.
    let passes = || engine.runtime().rerank_query_passes().counts();
    // (HYRANK_RERANK_QUERY_STATES=off, a measurement switch, turns the hand-over off.)
    let handed = std::env::var("HYRANK_RERANK_QUERY_STATES").as_deref() != Ok("off");
    assert_eq!((passes().reused, passes().run), if handed { (1, 0) } else { (0, 1) });
    // The same through a server's rerank worker, which carries the states in its job.
    let served_by_worker = Engine::open_with_runtime(&index_dir, &embedder_settings(), with_rerank_workers()).unwrap();
    assert!(served_by_worker.rerank_worker().is_some());
    let by_worker = served_by_worker.search(&request).unwrap();
    let counts = served_by_worker.runtime().rerank_query_passes().counts();
    assert_eq!((counts.reused, counts.run), if handed { (1, 0) } else { (0, 1) });
    assert_eq!(
        by_worker.hits.iter().map(|h| (h.id.clone(), h.score)).collect::<Vec<_>>(),
        served.hits.iter().map(|h| (h.id.clone(), h.score)).collect::<Vec<_>>()
    );
    // Under a budget the pairs go pass by pass (a fresh engine, so none is cached): the same
    // logits, and nothing cut where the budget holds the whole window.
    let budgeted = Engine::open(&index_dir, &embedder_settings()).unwrap();
    let mut roomy = request.clone();
    roomy.rerank.as_mut().unwrap().budget_ms = Some(60_000);
    let passed = budgeted.search(&roomy).unwrap();
    assert!(passed.rerank_cut.is_none() && passed.hits.len() == served.hits.len());
    for (hit, whole) in passed.hits.iter().zip(&served.hits) {
        assert_eq!(hit.id, whole.id);
        assert!((hit.score - whole.score).abs() < 1e-4 * (1.0 + whole.score.abs()), "{} vs {}", hit.score, whole.score);
    }
    // A search whose every logit is cached runs no model, so it asks no rerank turn: it is
    // answered while another rerank holds the only one (it would wait 5 s and be refused).
    // One with pairs to score waits, and under a budget ends its wait with its fused order.
    let slots = hyrank_engine::RuntimeSettings { rerank_slots: Some(1), ..Default::default() };
    let gated = Engine::open_with_runtime(&index_dir, &embedder_settings(), slots).unwrap();
    gated.search(&request).unwrap();
    let held = gated.runtime().rerank_turn(None, &hyrank_engine::call::Call::now()).unwrap();
    assert!(gated.search(&request).unwrap().rerank_cut.is_none());
    let mut other = SearchRequest::new("a stove for cold nights");
    other.rerank = Some(RerankOptions { budget_ms: Some(50), ..RerankOptions::top(10, Some(RerankerKind::Trained)) });
    let waited = gated.search(&other).unwrap();
    assert_eq!(waited.rerank_cut.map(|cut| cut.reranked), Some(0));
    assert!(waited.hits.iter().all(|hit| hit.breakdown.rerank.is_none()));
    drop(held);
    // A warm-up (a server's, before it serves a generation) leaves a pass time for each
    // reranker the generation serves with, so its first budgeted request does not start blind.
    let warmed = Engine::open(&index_dir, &embedder_settings()).unwrap();
    let done = warmed.warm_up().unwrap();
    let keys: Vec<&str> = done.rerank_ms.iter().map(|(key, _)| key.as_str()).collect();
    assert!(keys.iter().any(|k| k.starts_with("cross_encoder/")), "{done:?}");
    assert!(keys.contains(&"late_interaction_minilm"), "{done:?}");
    assert!(keys.iter().all(|key| warmed.runtime().pass_times().expected(key).is_some()), "{done:?}");
    assert!(done.encode_ms.is_some() && done.skipped.is_none(), "{done:?}");
    let again = engine.search(&request).unwrap();
    let stats = engine.runtime().rerank_cache().stats();
    assert_eq!((stats.hits, stats.misses), (10, 10), "the second request reads every logit from the cache");
    assert_eq!(
        again.hits.iter().map(|h| h.score).collect::<Vec<_>>(),
        served.hits.iter().map(|h| h.score).collect::<Vec<_>>()
    );
    assert!(engine.manifest().format_version >= 3, "older builds must refuse a PreTTR generation");
    let mut lexical = SearchRequest::new("rain and a tent");
    lexical.mode = hyrank_engine::Mode::Bm25;
    lexical.rerank = request.rerank.clone();
    engine.search(&lexical).unwrap();
    let (reused, run) = (passes().reused, passes().run);
    assert_eq!((reused, run), if handed { (1, 1) } else { (0, 2) }, "a search that does not embed the query");

    // The stored logits are the ones computing each item's side from its text gives.
    let layers = hyrank_engine::RuntimeSettings::default().rerank_layers(engine.embedder());
    let model = CrossEncoder::load_at(engine.embedder(), &summary.dir.join(&entry.file), entry.shape, layers).unwrap();
    // A GPU's default f16 layers score a pair alone and padded in a batch a little apart.
    let tolerance = if engine.embedder().device().is_cpu() { 1e-4 } else { 2e-2 };
    for hit in &served.hits {
        let text = engine.item(&hit.id).unwrap().content();
        let fresh = model.score(query, &[ItemText::text(&text)]).unwrap()[0];
        let stored = hit.breakdown.rerank.as_ref().unwrap().raw_score;
        assert!((fresh - stored).abs() < tolerance * (1.0 + fresh.abs()), "{}: {fresh} vs {stored}", hit.id);
    }

    // Another reranker published and swapped in: the cached logits of the first are not read
    // (the second scores as a freshly opened engine does).
    // With `keep` 1 the trainer prunes as `hyrank index --keep 1` does: the first generation
    // goes, the second stays while `engine` still has it open.
    // This one is distilled from the first (its teacher, generation 000002's reranker): the
    // manifest says so.
    settings.seed = 7;
    settings.keep = 1;
    settings.distil_weight = 0.5;
    settings.distil_temperature = 2.0;
    let summary = train(&settings).unwrap();
    let teacher = summary.reranker.training.teacher.as_deref().expect("the teacher is recorded");
    assert!(teacher.contains("generation 000002") && teacher.contains("weight 0.5"), "{teacher}");
    let removed: Vec<String> =
        summary.removed_generations.iter().map(|d| d.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(removed, ["000001"]);
    assert!(engine.dir().is_dir(), "a generation in use is kept");
    let next = Engine::open_next(&index_dir, &engine).unwrap().expect("a new generation");
    let swapped = next.search(&request).unwrap();
    let fresh = Engine::open(&index_dir, &embedder_settings()).unwrap().search(&request).unwrap();
    let raw = |r: &hyrank_engine::Results| {
        r.hits.iter().map(|h| (h.id.clone(), h.breakdown.rerank.as_ref().unwrap().raw_score)).collect::<Vec<_>>()
    };
    assert_eq!(raw(&swapped), raw(&fresh));
    assert_ne!(raw(&swapped), raw(&served), "a differently seeded reranker gives other logits");

    // States that do not fit the reranker are refused, naming the file.
    edit_manifest(&summary.dir, |manifest| manifest["reranker"]["shape"]["item_tokens"] = 16.into());
    let err = Engine::open(&index_dir, &embedder_settings()).err().expect("mismatched states refused").to_string();
    assert!(err.contains(files::RERANKER_STATES) && err.contains("another reranker"), "{err}");
    edit_manifest(&summary.dir, |manifest| {
        manifest["reranker"]["shape"]["item_tokens"] = 32.into();
        manifest["reranker"].as_object_mut().unwrap().remove("states");
    });
    let err = Engine::open(&index_dir, &embedder_settings()).err().expect("missing states refused").to_string();
    assert!(err.contains("without its item states"), "{err}");
}

#[test]
fn bad_supervision_is_refused_with_the_file_and_field_named() {
    let dir = tempfile::tempdir().unwrap();
    let index_dir = index_tiny(dir.path());

    let clicks = fixture("beir-tiny").join("train").join("bad-clicks.tsv");
    let err = train(&tiny_settings(&index_dir, Supervision::Clicks(clicks))).unwrap_err().to_string();
    // The same file:line form as every other reader's rejects.
    assert!(err.contains("bad-clicks.tsv:4: field `clicked`"), "{err}");

    let qrels = dir.path().join("qrels.tsv");
    std::fs::write(&qrels, "query-id\tcorpus-id\tscore\nt1\tNOPE-404\t1\n").unwrap();
    let queries = fixture("beir-tiny").join("train").join("queries.jsonl");
    let err = train(&tiny_settings(&index_dir, Supervision::Judgments { queries, qrels })).unwrap_err().to_string();
    assert!(err.contains("qrels.tsv") && err.contains("NOPE-404"), "{err}");

    // Distillation needs a teacher: this generation has no trained reranker.
    let mut settings = tiny_settings(&index_dir, judgments());
    settings.distil_weight = 0.5;
    let err = train(&settings).unwrap_err().to_string();
    assert!(err.contains("distil-weight") && err.contains("no trained search reranker"), "{err}");

    // Nothing was published by the failed runs.
    assert_eq!(Engine::open(&index_dir, &embedder_settings()).unwrap().manifest().generation, "000001");
}

#[cfg(not(feature = "cuda"))]
#[test]
fn training_on_cuda_without_the_feature_is_an_error_not_a_cpu_run() {
    let dir = tempfile::tempdir().unwrap();
    let index_dir = index_tiny(dir.path());
    let mut settings = tiny_settings(&index_dir, judgments());
    settings.model.device = DeviceChoice::Cuda(0);
    let err = train(&settings).unwrap_err().to_string();
    assert!(err.contains("--features cuda"), "{err}");
}

#[test]
fn gradients_reach_every_trainable_tensor_and_only_those() {
    use hyrank_engine::cross::{CrossEncoder, CrossEncoderSettings, ItemText};
    let settings = CrossEncoderSettings { frozen_layers: 5, max_tokens: 64, item_tokens: None };
    let (model, vars) = CrossEncoder::for_training(&embedder(), settings, 7).unwrap();
    // Layer 5 has 16 tensors; the head 2.
    assert_eq!(vars.len(), 18, "{:?}", vars.iter().map(|(n, _)| n).collect::<Vec<_>>());
    let frozen = model
        .frozen(&[("rain tent", ItemText::text("a waterproof tent")), ("rain tent", ItemText::text("a chef's knife"))])
        .unwrap();
    let loss = model.logits(&frozen).unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    for (name, var) in &vars {
        let grad = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("no gradient for {name}"));
        let size = grad.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(size > 0.0, "zero gradient for {name}");
    }
}

#[test]
fn the_trainable_layer_computes_what_candles_bert_layer_does() {
    use hyrank_engine::cross::{CrossEncoder, CrossEncoderSettings, ItemText};
    let pairs = [
        ("rain tent", ItemText::text("a waterproof tent with taped seams")),
        ("coffee", ItemText::text("a burr grinder for espresso")),
    ];
    let logits = |frozen_layers| {
        let settings = CrossEncoderSettings { frozen_layers, max_tokens: 64, item_tokens: None };
        let (model, _) = CrossEncoder::for_training(&embedder(), settings, 7).unwrap();
        model.logits(&model.frozen(&pairs).unwrap()).unwrap().to_vec1::<f32>().unwrap()
    };
    // All six layers in candle's BertLayer, against five there and the sixth in ours.
    let (candle, ours) = (logits(6), logits(5));
    for (a, b) in candle.iter().zip(&ours) {
        assert!((a - b).abs() < 1e-3, "{candle:?} vs {ours:?}");
    }
}

/// The fixture's users replayed before their latest item: `tiny_settings`, smaller still.
fn recommend_settings(index_dir: &Path) -> TrainSettings {
    let supervision = Supervision::Interactions { context_titles: 5, targets_per_user: 1 };
    let mut settings = tiny_settings(index_dir, supervision);
    settings.shape.frozen_layers = 5;
    settings.shape.max_tokens = 96;
    // PreTTR, as `train-reranker` trains by default: the recommendation reranker's own states.
    settings.shape.item_tokens = Some(24);
    settings.epochs = 2;
    settings.patience = 2;
    settings.hard_negatives = 2;
    settings.validation_fraction = hyrank_indexer::train::defaults::VALIDATION_FRACTION;
    settings.max_train_queries = Some(24);
    settings
}

/// One embedder for the model-level tests.
fn embedder() -> hyrank_engine::Embedder {
    hyrank_engine::Embedder::load(&embedder_settings()).unwrap()
}

/// `user`'s distinct item ids from the fixture file, oldest first by each pair's latest time.
fn fixture_history(user: &str) -> Vec<String> {
    let mut latest: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    for line in std::fs::read_to_string(fixture("interactions.csv")).unwrap().lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        if fields[0] == user {
            let time: i64 = fields[3].parse().unwrap();
            let slot = latest.entry(fields[1].to_string()).or_insert(time);
            *slot = (*slot).max(time);
        }
    }
    let mut rows: Vec<(i64, String)> = latest.into_iter().map(|(item, time)| (time, item)).collect();
    rows.sort();
    rows.into_iter().map(|(_, item)| item).collect()
}

#[test]
fn a_recommendation_reranker_learns_from_replayed_users_and_reranks_recommendations() {
    use hyrank_engine::RecommendRequest;
    let dir = tempfile::tempdir().unwrap();
    let index_dir = dir.path().join("index");
    hyrank_indexer::build(&hyrank_tests::fixture_settings(index_dir.clone())).unwrap();
    let plain = Engine::open(&index_dir, &embedder_settings()).unwrap();
    let user = "u007";
    let baseline = plain.recommend(&RecommendRequest { k: 5, ..RecommendRequest::new(user) }).unwrap();

    // The context is the user's latest titles, newest first, read from the stored history.
    let history = plain.user(user).unwrap().history;
    let expected: Vec<String> =
        fixture_history(user).iter().rev().take(3).map(|id| plain.item(id).unwrap().title).collect();
    assert_eq!(plain.recommend_context(&history, 3).unwrap(), expected.join("; "));

    // A server whose generation has no reranker yet still asked for rerank workers.
    let serving = Engine::open_with_runtime(&index_dir, &embedder_settings(), with_rerank_workers()).unwrap();
    assert!(serving.recommend_rerank_worker().is_none());

    let summary = train(&recommend_settings(&index_dir)).unwrap();
    let entry = &summary.reranker;
    assert_eq!(entry.file, "recommend-reranker.safetensors");
    assert_eq!(entry.states.as_deref(), Some(hyrank_engine::generation::files::RECOMMEND_RERANKER_STATES));
    assert!(summary.dir.join(hyrank_engine::generation::files::RECOMMEND_RERANKER_STATES).is_file());
    // The generation swapped in gets its worker.
    let next = Engine::open_next(&index_dir, &serving).unwrap().expect("a new generation was published");
    assert!(next.recommend_rerank_worker().is_some());
    assert!(next.rerank_worker().is_none(), "no search reranker, no search rerank worker");
    assert!(summary.dir.join(&entry.file).is_file());
    assert_eq!(entry.context.map(|c| c.titles), Some(5));
    assert_eq!(entry.training.train_queries, 24, "capped by max_train_queries");
    // One replay per user with at least 2 items before their last one; a fifth of users validate.
    let users = plain.users().unwrap();
    let replayable = users.iter().filter(|u| u.history.len() >= 3).count();
    assert_eq!(entry.training.validation_queries, (replayable as f64 * 0.2).round() as usize);
    assert_eq!(entry.training.train_pairs, 24 * 4, "a positive, 2 hard and 1 random negative each");
    assert_eq!(entry.enabled_by_default, entry.validation.gain_interval[0] > 0.0);

    let engine = Engine::open(&index_dir, &embedder_settings()).unwrap();
    assert!(engine.trained_reranker().is_none(), "a recommendation reranker is not a search reranker");
    assert_eq!(engine.trained_recommend_reranker().map(|e| e.depth), Some(10));
    let mut request = RecommendRequest { k: 5, ..RecommendRequest::new(user) };
    request.rerank = Some(RerankOptions::default_trained());
    let reranked = engine.recommend(&request).unwrap();
    assert_eq!(reranked.hits.len(), 5);
    let seen: Vec<String> = fixture_history(user);
    for hit in &reranked.hits {
        assert!(!seen.contains(&hit.id), "{} was already seen", hit.id);
        let b = &hit.breakdown;
        let combined = b.combination.as_ref().expect("every reranked hit has the combination");
        let sum = combined.bias + combined.features.iter().map(|f| f.contribution).sum::<f64>();
        assert!((sum - hit.score).abs() < 1e-9, "{b:?}");
        assert!(combined.features.iter().all(|f| f.feature != "bm25"), "no BM25 in recommendations: {b:?}");
    }
    assert!(reranked.hits.windows(2).all(|w| w[0].score >= w[1].score));

    // Off is exactly the plain recommender; a bare request follows the manifest.
    request.rerank = Some(RerankOptions::off());
    let off = engine.recommend(&request).unwrap();
    let ids = |r: &hyrank_engine::Results| r.hits.iter().map(|h| h.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&off), ids(&baseline));
    let bare = engine.recommend(&RecommendRequest { k: 5, ..RecommendRequest::new(user) }).unwrap();
    assert_eq!(bare.hits[0].breakdown.combination.is_some(), entry.enabled_by_default);

    // Through the model worker the scores are the same.
    let served = Engine::open_with_runtime(&index_dir, &embedder_settings(), with_rerank_workers()).unwrap();
    request.rerank = Some(RerankOptions::default_trained());
    let through_worker = served.recommend(&request).unwrap();
    for (a, b) in through_worker.hits.iter().zip(&reranked.hits) {
        assert_eq!(a.id, b.id);
        assert!((a.score - b.score).abs() < 1e-4, "{} vs {}", a.score, b.score);
    }
    assert_eq!(served.recommend_rerank_worker().unwrap().stats().queries, 1);
    assert!(served.rerank_worker().is_none());

    // Late interaction is for searches; a generation without the reranker says it has none.
    request.rerank = Some(RerankOptions::top(10, Some(RerankerKind::LateInteraction)));
    assert_eq!(engine.recommend(&request).unwrap_err().kind(), ErrorKind::InvalidInput);
    request.rerank = Some(RerankOptions::default_trained());
    let err = plain.recommend(&request).unwrap_err();
    assert!(err.to_string().contains("train-reranker --interactions"), "{err}");
}

#[test]
fn interactions_supervision_needs_a_generation_with_interactions() {
    let dir = tempfile::tempdir().unwrap();
    let index_dir = index_tiny(dir.path());
    let err = train(&recommend_settings(&index_dir)).unwrap_err().to_string();
    assert!(err.contains("without interactions"), "{err}");
}
