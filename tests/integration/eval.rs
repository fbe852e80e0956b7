//! `hyrank eval search` on the tiny judged fixture (fixtures/beir-tiny).

use hyrank_engine::Engine;
use hyrank_indexer::eval::search::{evaluate, Config, SearchEvalSettings};
use hyrank_indexer::IndexSettings;
use hyrank_tests::{embedder_settings, fixture};

#[test]
fn search_evaluation_reports_every_configuration_with_runs_and_per_query_scores() {
    let dir = tempfile::tempdir().unwrap();
    let data = fixture("beir-tiny");
    let index_dir = dir.path().join("index");
    let mut settings = IndexSettings::new(data.join("corpus.jsonl"), index_dir.clone(), embedder_settings());
    settings.progress = false;
    hyrank_indexer::build(&settings).unwrap();
    let engine = Engine::open(&index_dir, &embedder_settings()).unwrap();
    let names = ["bm25", "dense", "hybrid-rrf", "hybrid-linear"];
    let out = dir.path().join("out");
    let eval = SearchEvalSettings {
        data_dir: data,
        split: "test".into(),
        configs: names.iter().map(|n| Config::preset(n).unwrap()).collect(),
        depth: 10,
        candidates: 50,
        drop_identical_ids: true,
        out_dir: out.clone(),
    };
    // Two configurations of one name, or a depth no search serves, are refused before any query.
    let twice = SearchEvalSettings { configs: vec![Config::preset("bm25").unwrap(); 2], ..eval.clone() };
    assert!(evaluate(&twice, &engine).unwrap_err().to_string().contains("\"bm25\" is named twice"));
    // An override that changes nothing on this generation, which has no reranker on by
    // default, is refused although `rerank=off` was not written.
    assert!(engine.trained_reranker().is_none_or(|r| !r.enabled_by_default));
    for spec in ["bm25+k=20", "bm25+bm25=0.3", "dense+dense=0.3"] {
        let moot = SearchEvalSettings { configs: vec![Config::parse(spec).unwrap()], ..eval.clone() };
        let error = evaluate(&moot, &engine).unwrap_err().to_string();
        assert!(error.contains("would have no effect") && error.contains("as it is, with no reranker"), "{error}");
    }
    // A corpus of ids, titles and texts has no fields to facet, filter or sort on: said so,
    // rather than listing an empty set.
    for body in [
        serde_json::json!({"query": "tent", "facets": ["category"]}),
        serde_json::json!({"query": "tent", "filters": {"category": "tents"}}),
    ] {
        let request: hyrank_engine::SearchRequest = serde_json::from_value(body).unwrap();
        let error = engine.search(&request).unwrap_err().to_string();
        assert!(error.contains("this catalog's items have no fields (only id, title and text)"), "{error}");
    }
    // Fewer candidates than the run's depth would run as the depth's: the name is refused.
    let fewer = SearchEvalSettings { configs: vec![Config::parse("hybrid-rrf+candidates=5").unwrap()], ..eval.clone() };
    let error = evaluate(&fewer, &engine).unwrap_err().to_string();
    assert!(error.contains("candidates=5 is below --depth 10"), "{error}");
    // A configuration this generation cannot run (it has no trained reranker) is refused,
    // named, before the configurations ahead of it run and write their files.
    let lacking = SearchEvalSettings {
        configs: vec![Config::preset("bm25").unwrap(), Config::parse("default+reranker=trained").unwrap()],
        ..eval.clone()
    };
    let error = evaluate(&lacking, &engine).unwrap_err().to_string();
    assert!(error.contains("\"default+reranker=trained\": "), "{error}");
    assert!(!out.join("bm25.run").exists() && !out.join("bm25.per-query.tsv").exists());
    let no_depth = SearchEvalSettings { depth: 0, ..eval.clone() };
    assert!(evaluate(&no_depth, &engine).unwrap_err().to_string().contains("invalid setting depth"));
    let report = evaluate(&eval, &engine).unwrap();
    assert_eq!(report.evaluated_queries, 5);
    assert_eq!(report.skipped_without_judgments, 1);
    assert_eq!(report.configs.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), names);
    for config in &report.configs {
        for value in [config.ndcg_10, config.recall_100, config.mrr_10, config.map_100] {
            assert!((0.0..=1.0).contains(&value), "{config:?}");
        }
        // Three on-topic documents per query among 24: every configuration should find them.
        assert!(config.ndcg_10 > 0.6, "{config:?}");
        let run = std::fs::read_to_string(out.join(format!("{}.run", config.name))).unwrap();
        let queries: std::collections::BTreeSet<&str> = run.lines().map(|l| l.split(' ').next().unwrap()).collect();
        assert_eq!(queries.into_iter().collect::<Vec<_>>(), vec!["q1", "q2", "q3", "q4", "q5"]);
        assert!(run.lines().all(|l| l.split(' ').count() == 6));
    }
    // q4 is an exact product title: BM25 must put it first.
    let per_query = std::fs::read_to_string(out.join("bm25.per-query.tsv")).unwrap();
    let q4: Vec<&str> = per_query.lines().find(|l| l.starts_with("q4\t")).unwrap().split('\t').collect();
    assert_eq!(q4[3], "1.000000", "MRR@10 of q4: {per_query}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["configs"].as_array().unwrap().len(), 4);
    assert!(json["configs"][0]["ndcg@10"].is_f64());
    let markdown = std::fs::read_to_string(out.join("report.md")).unwrap();
    // The run keeps 10 hits: the metrics cut at 100 say they count only those.
    assert!(
        markdown.contains("| configuration | nDCG@10 | Recall@10 (of 100) | MRR@10 | MAP@10 (of 100) |"),
        "{markdown}"
    );
    assert!(markdown.contains("Each run keeps 10 hits per query (--depth)"), "{markdown}");
    assert_eq!(json["depth"], 10);
    // Scores fall strictly in the engine's order, so trec_eval ranks the run as the report does
    // (bm25 here is RRF over one list: equal BM25 scores share a score).
    let run = std::fs::read_to_string(out.join("bm25.run")).unwrap();
    let mut previous: Option<(&str, f64)> = None;
    for line in run.lines() {
        let columns: Vec<&str> = line.split(' ').collect();
        let (query, score) = (columns[0], columns[4].parse::<f64>().unwrap());
        if let Some((before, above)) = previous.filter(|p| p.0 == query) {
            assert!(score < above, "{before}: scores fall strictly in the engine's order: {run}");
        }
        previous = Some((query, score));
    }
    assert_eq!((report.judged_not_indexed, report.queries_in_corpus, report.corpus_rows_not_indexed), (0, 0, 0));
    assert!(report.earlier_outputs.is_empty());
    // Each configuration after the first is compared with it query by query: the mean
    // difference is the difference of the means, inside its own interval.
    assert!(report.configs[0].against_first.is_none());
    for config in &report.configs[1..] {
        let paired = config.against_first.as_ref().unwrap();
        assert_eq!(paired.baseline, "bm25");
        assert!((paired.gain - (config.ndcg_10 - report.configs[0].ndcg_10)).abs() < 1e-12, "{paired:?}");
        assert!(paired.interval[0] <= paired.gain && paired.gain <= paired.interval[1], "{paired:?}");
        assert!(paired.better + paired.worse <= 5, "{paired:?}");
    }
    assert!(markdown.contains("nDCG@10 against bm25 on the same queries"), "{markdown}");

    // A second run into the same folder with fewer configurations names the first run's files
    // it did not write again (left in place: the folder may hold a reader's own files).
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let fewer = SearchEvalSettings { configs: vec![Config::preset("bm25").unwrap()], ..eval.clone() };
    let again = evaluate(&fewer, &engine).unwrap();
    let stale = ["dense", "hybrid-linear", "hybrid-rrf"]
        .iter()
        .flat_map(|n| [format!("{n}.per-query.tsv"), format!("{n}.run")])
        .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(again.earlier_outputs.iter().cloned().collect::<std::collections::BTreeSet<_>>(), stale);
    let markdown = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(markdown.contains("from an earlier run and not this one's: dense.per-query.tsv, dense.run"), "{markdown}");
    assert!(out.join("dense.run").is_file() && out.join("notes.txt").is_file());

    // A judged document the generation does not hold is counted and named, not passed over:
    // it is relevant and never retrieved, so q1's recall falls by a quarter.
    let judged = dir.path().join("judged");
    std::fs::create_dir_all(judged.join("qrels")).unwrap();
    std::fs::copy(eval.data_dir.join("queries.jsonl"), judged.join("queries.jsonl")).unwrap();
    // q6 judged, but nothing relevant to it (one 0, one −1): it is evaluated, scores 0, and is
    // counted; a negative grade is read as not relevant and counted.
    let qrels = std::fs::read_to_string(eval.data_dir.join("qrels/test.tsv")).unwrap()
        + "q1\tGONE-1\t1\nq6\tTNT-001\t0\nq6\tTNT-002\t-1\n";
    std::fs::write(judged.join("qrels/test.tsv"), qrels).unwrap();
    let with_missing = SearchEvalSettings {
        data_dir: judged,
        configs: vec![Config::preset("bm25").unwrap()],
        out_dir: dir.path().join("out-missing"),
        ..eval
    };
    let missing = evaluate(&with_missing, &engine).unwrap();
    assert_eq!(
        (missing.judged_not_indexed, missing.judged_not_indexed_examples.clone()),
        (1, vec!["q1/GONE-1".into()])
    );
    let markdown = std::fs::read_to_string(with_missing.out_dir.join("report.md")).unwrap();
    assert!(markdown.contains("1 judged relevant documents are not in the generation (e.g. q1/GONE-1)"), "{markdown}");
    assert!(missing.configs[0].recall_100 < report.configs[0].recall_100);
    // That data's folder is not where the generation's catalog came from, and the report says so.
    assert!(report.built_from_another_catalog.is_none());
    // The build records the catalog's resolved path, which eval compares: a path given
    // relative to another folder names the same file.
    let resolved = engine.manifest().sources.catalog_resolved.clone().expect("recorded");
    assert!(std::path::Path::new(&resolved).is_absolute(), "{resolved}");
    assert_eq!(std::path::PathBuf::from(&resolved), std::fs::canonicalize(eval.data_dir.join("corpus.jsonl")).unwrap());
    assert!(missing.built_from_another_catalog.as_deref().is_some_and(|c| c.ends_with("beir-tiny/corpus.jsonl")));
    assert!(markdown.contains("not from this data's corpus.jsonl"), "{markdown}");
    assert_eq!((missing.evaluated_queries, missing.without_relevant, missing.negative_grades), (6, 1, 1));
    assert!(markdown.contains("1 of the judged queries have no relevant judgment"), "{markdown}");
    assert!(markdown.contains("1 judgments have a negative grade, read as not relevant"), "{markdown}");
    let per_query = std::fs::read_to_string(with_missing.out_dir.join("bm25.per-query.tsv")).unwrap();
    let q6: Vec<&str> = per_query.lines().find(|l| l.starts_with("q6\t")).unwrap().split('\t').collect();
    assert_eq!(q6[1..5], ["0.000000"; 4], "{per_query}");
    assert_eq!((report.without_relevant, report.negative_grades), (0, 0));

    // A judged query with nothing to search is named before any query runs.
    let queries = std::fs::read_to_string(with_missing.data_dir.join("queries.jsonl")).unwrap();
    let blanked: String = queries
        .lines()
        .map(|line| {
            if line.contains("\"q1\"") {
                "{\"_id\": \"q1\", \"text\": \"!!!\"}".to_string()
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(with_missing.data_dir.join("queries.jsonl"), blanked).unwrap();
    let error = evaluate(&with_missing, &engine).unwrap_err().to_string();
    assert!(
        error.contains("queries.jsonl")
            && error.contains("1 judged queries have no text to search")
            && error.ends_with(": q1"),
        "{error}"
    );
}

/// A BEIR folder under `dir` holding the tiny fixture's test judgments, its queries followed
/// by `more_queries` and its corpus followed by `more_corpus`; returns the folder and the
/// corpus as written.
fn beir_folder(dir: &std::path::Path, more_queries: &str, more_corpus: &str) -> (std::path::PathBuf, String) {
    let tiny = fixture("beir-tiny");
    let data = dir.join("beir");
    std::fs::create_dir_all(data.join("qrels")).unwrap();
    std::fs::copy(tiny.join("qrels/test.tsv"), data.join("qrels/test.tsv")).unwrap();
    let queries = std::fs::read_to_string(tiny.join("queries.jsonl")).unwrap() + more_queries;
    std::fs::write(data.join("queries.jsonl"), queries).unwrap();
    let corpus = std::fs::read_to_string(tiny.join("corpus.jsonl")).unwrap() + more_corpus;
    std::fs::write(data.join("corpus.jsonl"), &corpus).unwrap();
    (data, corpus)
}

/// How eval search indexes a BEIR corpus (metadata not read as fields), into `dir/index`.
fn corpus_settings(data: &std::path::Path, dir: &std::path::Path, index: &str) -> IndexSettings {
    IndexSettings {
        on_error: hyrank_indexer::OnError::SkipEmpty,
        catalog_format: hyrank_indexer::CatalogFormat { json_fields: false, ..Default::default() },
        progress: false,
        ..IndexSettings::new(data.join("corpus.jsonl"), dir.join(index), embedder_settings())
    }
}

/// BM25's top 5 of the test split of `data`, written to `out`.
fn bm25_top5(data: &std::path::Path, out: &std::path::Path) -> SearchEvalSettings {
    SearchEvalSettings {
        data_dir: data.to_path_buf(),
        split: "test".into(),
        configs: vec![Config::preset("bm25").unwrap()],
        depth: 5,
        candidates: 50,
        drop_identical_ids: true,
        out_dir: out.to_path_buf(),
    }
}

/// BEIR corpora as they are published: FiQA holds documents with neither title nor text, and
/// in ArguAna and Quora the queries are documents of the corpus too.
#[test]
fn judged_corpora_with_empty_documents_and_queries_among_the_documents() {
    use hyrank_indexer::OnError;

    let dir = tempfile::tempdir().unwrap();
    // q1's own text as a document under q1's id: BM25 ranks it first for q1.
    let extra = "{\"_id\": \"EMPTY-1\", \"title\": \"\", \"text\": \" \", \"metadata\": {}}\n".to_string()
        + "{\"_id\": \"q1\", \"title\": \"\", \"text\": \"a shelter for camping in the rain\", \"metadata\": {}}\n"
        // Metadata no field could hold (Touche's and TREC-COVID's nest objects): not read.
        + "{\"_id\": \"META-1\", \"title\": \"Pegs\", \"text\": \"tent pegs\", \"metadata\": {\"a\": {\"b\": [1, 2]}}}\n";
    let (data, corpus) = beir_folder(dir.path(), "", &extra);
    let lines = corpus.lines().count() as u64;
    let settings =
        |on_error: OnError, index: &str| IndexSettings { on_error, ..corpus_settings(&data, dir.path(), index) };

    // An empty document stops a strict build, names its line, and is passed over by skip-empty
    // (counted in the generation like any skipped row).
    let error = hyrank_indexer::build(&settings(OnError::Fail, "strict")).unwrap_err().to_string();
    assert!(error.contains(&format!("corpus.jsonl:{}: field `title/text`: empty item", lines - 2)), "{error}");
    assert!(error.contains("use --on-error skip-empty to index the rest: every bad row is an empty item"), "{error}");
    // Read as fields, the nested metadata is a fault of its own.
    let fields = IndexSettings { catalog_format: Default::default(), ..settings(OnError::SkipEmpty, "fields") };
    let error = hyrank_indexer::build(&fields).unwrap_err().to_string();
    assert!(error.contains("field `metadata.a`"), "{error}");
    // A split without judgments is named with those there are, before anything is indexed.
    let error = hyrank_indexer::judgments::read_judged(&data, "dev").unwrap_err().to_string();
    assert!(error.contains("split \"dev\" has no judgments here; the splits are test"), "{error}");
    let summary = hyrank_indexer::build(&settings(OnError::SkipEmpty, "index")).unwrap();
    assert_eq!(summary.manifest.counts.rejected_items, 1);
    // An interaction naming the empty item goes with it; the others are kept.
    let interactions = dir.path().join("events.csv");
    std::fs::write(&interactions, "user,item\nu1,EMPTY-1\nu1,TNT-001\n").unwrap();
    let with_events = IndexSettings { interactions: Some(interactions), ..settings(OnError::SkipEmpty, "events") };
    let counts = hyrank_indexer::build(&with_events).unwrap().manifest.counts;
    assert_eq!((counts.rejected_items, counts.rejected_interactions, counts.interactions), (1, 1, 1));
    // Any other fault still stops it, and is shown ahead of the empty items it would pass
    // over, however many there are (only the first 20 rejects are listed).
    let empties: String =
        (0..25).map(|i| format!("{{\"_id\": \"EMPTY-{}\", \"title\": \"\", \"text\": \"\"}}\n", i + 2)).collect();
    // A row that repeats TNT-001 exactly is read once; one that gives it another title is not.
    let duplicated =
        format!("{corpus}{empties}{}\n", corpus.lines().next().unwrap().replace("Kestrel Cirque", "Other"));
    std::fs::write(data.join("corpus.jsonl"), duplicated).unwrap();
    let error = hyrank_indexer::build(&settings(OnError::SkipEmpty, "dup")).unwrap_err().to_string();
    let first = error.lines().nth(1).unwrap();
    assert!(
        first.contains(&format!(
            "corpus.jsonl:{}: field `_id`: duplicate id \"TNT-001\" (first on line 1) with other content",
            lines + 26
        )),
        "{error}"
    );
    assert!(error.contains("use --on-error skip to index the rest"), "{error}");

    // The query's own document is dropped from its hits (as BEIR and Pyserini drop it), and
    // the run still holds `depth` hits; kept on request, it is q1's first hit.
    let engine = Engine::open(&dir.path().join("index"), &embedder_settings()).unwrap();
    let eval = |drop_identical_ids: bool, out: &str| {
        let settings = SearchEvalSettings { drop_identical_ids, ..bm25_top5(&data, &dir.path().join(out)) };
        let report = evaluate(&settings, &engine).unwrap();
        let run = std::fs::read_to_string(settings.out_dir.join("bm25.run")).unwrap();
        let q1: Vec<String> =
            run.lines().filter(|l| l.starts_with("q1 ")).map(|l| l.split(' ').nth(2).unwrap().to_string()).collect();
        let markdown = std::fs::read_to_string(settings.out_dir.join("report.md")).unwrap();
        (report, q1, markdown)
    };
    let (dropped, q1, markdown) = eval(true, "dropped");
    assert_eq!((dropped.queries_in_corpus, q1.len(), dropped.corpus_rows_not_indexed), (1, 5, 1));
    assert!(markdown.contains("1 corpus rows are not in the generation (refused or skipped"), "{markdown}");
    assert!(!q1.contains(&"q1".to_string()), "{q1:?}");
    assert!(markdown.contains("1 of the judged queries are also documents of the corpus (the same id): each one's own"));
    let (kept, q1_kept, markdown) = eval(false, "kept");
    assert_eq!(q1_kept[0], "q1");
    assert_eq!(q1_kept[1..], q1[..4]);
    assert!(markdown.contains("kept among their hits (--keep-identical-ids): BEIR's figures drop them"), "{markdown}");
    assert!(kept.configs[0].ndcg_10 < dropped.configs[0].ndcg_10);
}

/// What BEIR's loader reads without complaint is evaluated, not refused: a corpus row repeated
/// exactly (read once, counted), queries of splits not evaluated with conflicting or no text
/// (counted, not read), and ids holding a space (scored; the TREC run file of a configuration
/// that retrieves one, which cannot hold it, not written, an earlier run's file of that name
/// removed, and the report says so; a spaced id nobody retrieves spoils nothing).
#[test]
fn judged_corpora_with_repeated_rows_spaced_ids_and_other_splits_queries() {
    let dir = tempfile::tempdir().unwrap();
    let tiny_corpus = std::fs::read_to_string(fixture("beir-tiny").join("corpus.jsonl")).unwrap();
    let extra = format!(
        "{}\n{{\"_id\": \"TNT 9\", \"title\": \"Rain tent\", \"text\": \"a shelter for camping in the rain\"}}\n\
         {{\"_id\": \"odd 1\", \"title\": \"Xylophone\", \"text\": \"quartz zither\"}}\n",
        tiny_corpus.lines().next().unwrap()
    );
    let more_queries = "{\"_id\": \"q6\", \"text\": \"q6 given another text\"}\n{\"_id\": \"q7\"}\n";
    let (data, _) = beir_folder(dir.path(), more_queries, &extra);
    let index = corpus_settings(&data, dir.path(), "index");
    let summary = hyrank_indexer::build(&index).unwrap();
    let counts = &summary.manifest.counts;
    assert_eq!((counts.items, counts.repeated_items, counts.rejected_items), (tiny_corpus.lines().count() + 2, 1, 0));
    assert!(summary.render().contains("1 catalog rows repeated an earlier row exactly and were read once"));

    let engine = Engine::open(&dir.path().join("index"), &embedder_settings()).unwrap();
    let settings = bm25_top5(&data, &dir.path().join("out"));
    std::fs::create_dir_all(&settings.out_dir).unwrap();
    std::fs::write(settings.out_dir.join("bm25.run"), "q1 Q0 stale 1 1.0 bm25\n").unwrap();
    let report = evaluate(&settings, &engine).unwrap();
    assert_eq!((report.corpus_rows_repeated, report.skipped_without_judgments), (1, 2));
    let why = &report.run_files_not_written["bm25"];
    assert!(why.contains("document id \"TNT 9\" holds whitespace"), "{why}");
    assert!(!settings.out_dir.join("bm25.run").exists(), "an earlier run's file is not left as this run's");
    let per_query = std::fs::read_to_string(settings.out_dir.join("bm25.per-query.tsv")).unwrap();
    assert_eq!(per_query.lines().count(), 1 + report.evaluated_queries);
    let markdown = std::fs::read_to_string(settings.out_dir.join("report.md")).unwrap();
    assert!(markdown.contains("No run file was written for bm25: document id"), "{markdown}");
    assert!(markdown.contains("1 corpus rows repeated an earlier row exactly"), "{markdown}");
    // Without the retrieved spaced id the run file is written again ("odd 1" is never retrieved).
    let plain = std::fs::read_to_string(data.join("corpus.jsonl")).unwrap().replace("TNT 9", "TNT-9");
    std::fs::write(data.join("corpus.jsonl"), plain).unwrap();
    hyrank_indexer::build(&index).unwrap();
    let engine = Engine::open(&dir.path().join("index"), &embedder_settings()).unwrap();
    assert!(engine.index_of("odd 1").is_ok());
    assert!(evaluate(&settings, &engine).unwrap().run_files_not_written.is_empty());
    assert!(std::fs::read_to_string(settings.out_dir.join("bm25.run")).unwrap().contains(" TNT-9 "));
}

/// `hyrank eval recommend` on the fixture catalog and interactions: every mode reported, and
/// each mode's per-user file holds one row per evaluated user whose means are the report's.
#[test]
fn recommend_evaluation_writes_per_user_scores_that_average_to_the_report() {
    use hyrank_engine::request::Weights;
    use hyrank_engine::ColdItems;
    use hyrank_indexer::cf_choice::{CfChoiceSettings, CfModelChoice};
    use hyrank_indexer::eval::recommend::{evaluate, RecommendEvalSettings, SplitKind};

    let dir = tempfile::tempdir().unwrap();
    let settings = RecommendEvalSettings {
        cold_items: ColdItems::Ignore,
        weights: Weights::default(),
        cf: CfChoiceSettings { requested: CfModelChoice::Ease, ..CfChoiceSettings::default() },
        ..recommend_settings(fixture("interactions.csv"), dir.path().to_path_buf())
    };
    let report = evaluate(&settings).unwrap();
    assert!(report.users_evaluated > 10, "{}", report.users_evaluated);
    for mode in &report.modes {
        let path = dir.path().join("time").join(format!("{}.per-user.tsv", mode.mode));
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("user\tndcg@10\trecall@10\tms"));
        let rows: Vec<Vec<f64>> = lines.map(|l| l.split('\t').skip(1).map(|v| v.parse().unwrap()).collect()).collect();
        assert_eq!(rows.len(), report.users_evaluated, "{}", mode.mode);
        let mean = |column: usize| rows.iter().map(|r| r[column]).sum::<f64>() / rows.len() as f64;
        // The file rounds to 6 decimals.
        assert!((mean(0) - mode.ndcg_10).abs() < 1e-5, "{}: {} vs {}", mode.mode, mean(0), mode.ndcg_10);
        assert!((mean(1) - mode.recall).abs() < 1e-5, "{}: {} vs {}", mode.mode, mean(1), mode.recall);
    }
    // Every mode but cf is compared with cf, user by user: the mean difference is the
    // difference of the means, inside its interval.
    let cf = report.modes.iter().find(|m| m.mode == "cf").unwrap();
    assert!(cf.against_cf.is_none());
    for mode in report.modes.iter().filter(|m| m.mode != "cf") {
        let paired = mode.against_cf.as_ref().unwrap_or_else(|| panic!("{} has no comparison", mode.mode));
        assert_eq!(paired.baseline, "cf");
        assert!((paired.gain - (mode.ndcg_10 - cf.ndcg_10)).abs() < 1e-12, "{}: {paired:?}", mode.mode);
        assert!(paired.interval[0] <= paired.gain && paired.gain <= paired.interval[1], "{paired:?}");
        assert!(paired.better + paired.worse <= report.users_evaluated, "{paired:?}");
    }
    let markdown = std::fs::read_to_string(dir.path().join("time").join("report.md")).unwrap();
    assert!(markdown.contains("nDCG@10 against cf on the same users"), "{markdown}");

    // `--reuse-index` reuses the generation for another query-time setting, and refuses one
    // built from other settings or from another split of the same size (a new seed: the row
    // count alone let it through, and the test items then counted as seen).
    let reuse = RecommendEvalSettings {
        reuse_index: true,
        fusion: hyrank_engine::fusion::Fusion::Rrf { k: 60.0 },
        ..settings.clone()
    };
    let at_10 = evaluate(&reuse).unwrap();
    // k is the depth of recall and coverage; nDCG is cut at 10 whatever k is (a k of 5 was
    // nDCG@10 of a 5-item list).
    let at_5 = evaluate(&RecommendEvalSettings { k: 5, ..reuse.clone() }).unwrap();
    for (five, ten) in at_5.modes.iter().zip(&at_10.modes) {
        assert_eq!((&five.mode, five.ndcg_10), (&ten.mode, ten.ndcg_10));
        assert!(five.recall <= ten.recall && five.coverage <= ten.coverage, "{five:?} {ten:?}");
    }
    assert!(at_5.modes.iter().any(|m| m.recall < at_10.modes.iter().find(|t| t.mode == m.mode).unwrap().recall));
    // The same output folder named another way (here through `..`) holds the same train file.
    let roundabout = RecommendEvalSettings { out_dir: dir.path().join("time").join(".."), ..reuse.clone() };
    evaluate(&roundabout).unwrap();
    // Users are scored on the rayon pool: one thread and two give the same scores, user by
    // user (only the timings differ).
    let scored_with = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let report = pool.install(|| evaluate(&reuse)).unwrap();
        assert_eq!(report.scoring_threads, threads);
        let scores: Vec<[f64; 5]> =
            report.modes.iter().map(|m| [m.recall, m.recall_capped, m.ndcg_10, m.coverage, m.cold_recall]).collect();
        let per_user: Vec<String> = report
            .modes
            .iter()
            .flat_map(|m| {
                let text = std::fs::read_to_string(dir.path().join("time").join(format!("{}.per-user.tsv", m.mode)));
                let rows: Vec<String> =
                    text.unwrap().lines().map(|l| l.rsplit_once('\t').unwrap().0.to_string()).collect();
                rows
            })
            .collect();
        (scores, per_user)
    };
    let (one, two) = (scored_with(1), scored_with(2));
    assert_eq!(one.1.len(), report.modes.len() * (report.users_evaluated + 1), "every mode's header and users");
    assert_eq!(one, two);
    let als = RecommendEvalSettings {
        cf: CfChoiceSettings { requested: CfModelChoice::Als, ..CfChoiceSettings::default() },
        ..reuse.clone()
    };
    let error = evaluate(&als).unwrap_err().to_string();
    assert!(error.contains("other build settings"), "{error}");
    let random = RecommendEvalSettings { split: SplitKind::Random, ..settings.clone() };
    evaluate(&random).unwrap();
    let reseeded = RecommendEvalSettings { seed: 8, reuse_index: true, ..random };
    let error = evaluate(&reseeded).unwrap_err().to_string();
    // The random split holds out a fifth of each user's positives whatever the seed, so the
    // row counts agree and only the file's content tells the splits apart.
    assert!(error.contains("another split"), "{error}");
}

/// `hyrank eval recommend` on interactions with a row naming no catalog item and a positive
/// without a timestamp: the first is refused, naming the row, unless `--on-error skip` leaves
/// it out (counted); the second is a time not known, kept in train by the time split, and the
/// train generation validates as `auto` does then, rather than failing on a setting never given.
#[test]
fn recommend_evaluation_leaves_bad_rows_out_when_asked_and_reads_untimed_positives() {
    use hyrank_indexer::eval::recommend::{evaluate, RecommendEvalSettings};
    use hyrank_indexer::OnError;

    let dir = tempfile::tempdir().unwrap();
    let fixture_rows = std::fs::read_to_string(fixture("interactions.csv")).unwrap();
    let lines = fixture_rows.lines().count();
    let interactions = dir.path().join("interactions.csv");
    std::fs::write(&interactions, format!("{fixture_rows}u001,NOPE-1,5,1700000000\nu001,TNT-001,5,\n")).unwrap();
    let settings = recommend_settings(interactions, dir.path().join("out"));
    let error = evaluate(&settings).unwrap_err().to_string();
    assert!(error.contains(&format!("interactions.csv:{}", lines + 1)) && error.contains("NOPE-1"), "{error}");
    assert!(error.contains("--on-error skip"), "the advice names a flag this command has: {error}");
    let report = evaluate(&RecommendEvalSettings { on_error: OnError::Skip, ..settings }).unwrap();
    assert_eq!(report.rows_left_out, 1);
    assert!(report.markdown().contains("1 bad catalog or interaction rows were left out"));
    assert!(report.users_evaluated > 10);
}

/// `hyrank eval recommend`'s settings over the fixture catalog and `interactions`: a time split,
/// positives of weight 4 or more, k 10, the CLI's defaults otherwise.
fn recommend_settings(
    interactions: std::path::PathBuf,
    out_dir: std::path::PathBuf,
) -> hyrank_indexer::eval::recommend::RecommendEvalSettings {
    hyrank_indexer::eval::recommend::RecommendEvalSettings {
        catalog: fixture("catalog.jsonl"),
        catalog_format: hyrank_indexer::CatalogFormat::default(),
        interactions,
        interaction_format: hyrank_indexer::InteractionFormat::default(),
        split: hyrank_indexer::eval::recommend::SplitKind::Time,
        test_fraction: 0.2,
        seed: 7,
        min_weight: 4.0,
        k: 10,
        candidates: 100,
        weights: Default::default(),
        cold_items: Default::default(),
        fusion: hyrank_engine::fusion::Fusion::default(),
        embedder: embedder_settings(),
        cf: Default::default(),
        out_dir,
        reuse_index: false,
        on_error: hyrank_indexer::OnError::Fail,
    }
}
