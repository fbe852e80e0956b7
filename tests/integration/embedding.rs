//! Candle's MiniLM against sentence-transformers' own output (fixtures/golden_embeddings.json,
//! written by scripts/make_goldens.py).

use hyrank_engine::Embedder;

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

#[test]
fn embeddings_match_sentence_transformers() {
    let golden: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(hyrank_tests::fixture("golden_embeddings.json")).unwrap())
            .unwrap();
    let embedder = Embedder::load(&hyrank_tests::embedder_settings()).unwrap();
    let cases = golden["cases"].as_array().unwrap();
    let texts: Vec<String> = cases.iter().map(|c| c["text"].as_str().unwrap().to_string()).collect();
    // Batched with mixed lengths (padding must not leak into the mean) and one at a time.
    let batched = embedder.embed_many(&texts, |_| {}).unwrap();
    for (case, from_batch) in cases.iter().zip(&batched) {
        let expected: Vec<f32> =
            case["embedding"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        let single = embedder.embed(case["text"].as_str().unwrap()).unwrap();
        assert_eq!(single.len(), 384);
        let c_single = cosine(&single, &expected);
        let c_batch = cosine(from_batch, &expected);
        assert!(
            c_single >= 0.999 && c_batch >= 0.999,
            "{:?}: cosine {c_single} single, {c_batch} batched",
            case["text"]
        );
        let norm: f32 = single.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);
    }
}

#[test]
fn int8_and_w8a8_embeddings_stay_within_the_issue_bound_of_f32_and_the_goldens() {
    use hyrank_engine::{EmbedderSettings, Precision};
    let golden: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(hyrank_tests::fixture("golden_embeddings.json")).unwrap())
            .unwrap();
    let texts: Vec<String> =
        golden["cases"].as_array().unwrap().iter().map(|c| c["text"].as_str().unwrap().to_string()).collect();
    let f32_model = Embedder::load(&hyrank_tests::embedder_settings()).unwrap();
    let reference = f32_model.embed_many(&texts, |_| {}).unwrap();
    let mut outputs = Vec::new();
    for precision in [Precision::Int8, Precision::W8a8] {
        let settings = EmbedderSettings { precision: Some(precision), ..hyrank_tests::embedder_settings() };
        let model = Embedder::load(&settings).unwrap();
        assert_eq!(model.precision(), precision);
        let quantized = model.embed_many(&texts, |_| {}).unwrap();
        for ((case, a), b) in golden["cases"].as_array().unwrap().iter().zip(&reference).zip(&quantized) {
            let expected: Vec<f32> =
                case["embedding"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
            let to_f32 = cosine(a, b);
            let to_golden = cosine(b, &expected);
            assert!(
                to_f32 >= 0.99 && to_golden >= 0.99,
                "{precision} {:?}: cosine {to_f32} to f32, {to_golden} to the golden",
                case["text"]
            );
            assert!(
                to_f32 < 1.0 - 1e-7,
                "{precision} {:?}: exactly the f32 embedding; was it quantized?",
                case["text"]
            );
        }
        outputs.push(quantized);
    }
    // w8a8's 8-bit inputs are not int8's 13-bit ones: on hyrank's kernels the two must not be
    // the same model (on candle's, `HYRANK_CPU_KERNELS=candle`, both are Q8_0).
    if std::env::var("HYRANK_CPU_KERNELS").as_deref() != Ok("candle") {
        assert!(outputs[0].iter().zip(&outputs[1]).any(|(a, b)| cosine(a, b) < 1.0 - 1e-6), "w8a8 ran as int8");
    }
}

/// A text whose every word piece is `[UNK]` embeds to one vector whatever it says: the model
/// does not read it, and a search with such a query gets no dense list.
#[test]
fn the_model_reads_a_text_unless_every_word_piece_of_it_is_unknown() {
    let embedder = Embedder::load(&hyrank_tests::embedder_settings()).unwrap();
    for unread in ["กาแฟ", "鞋", "ស្បែកជើង", "ສະບາຍດີ", "กาแฟ 鞋", "กาแฟ!", "(帐篷)", "!!!"]
    {
        assert!(!embedder.reads(unread).unwrap(), "{unread}");
    }
    for read in ["tent", "iPhone เคส", "コーヒー", "кофе", "登山鞋", "กาแฟ 100%"] {
        assert!(embedder.reads(read).unwrap(), "{read}");
    }
    // What the rule stands on: two unread texts of as many pieces embed alike.
    let (a, b) = (embedder.embed("กาแฟ").unwrap(), embedder.embed("鞋").unwrap());
    assert!(cosine(&a, &b) > 0.9999, "{}", cosine(&a, &b));
    // The runtime reads and embeds from one tokenization: the same vector as a plain embed,
    // `None` for a text not read, and the cache answers the reading after.
    let tent = embedder.embed("tent").unwrap();
    let embedder = std::sync::Arc::new(embedder);
    let runtime = hyrank_engine::Runtime::new(std::sync::Arc::clone(&embedder), Default::default()).unwrap();
    for _ in 0..2 {
        assert_eq!(runtime.embed_query("tent").unwrap().as_deref(), Some(&tent));
        assert_eq!(runtime.embed_query("กาแฟ").unwrap(), None);
        assert!(runtime.reads("tent").unwrap() && !runtime.reads("กาแฟ").unwrap());
    }
    let stats = runtime.query_cache_stats();
    assert_eq!((stats.hits, stats.misses), (2, 2), "a reading asked of the cache is not a lookup");
    // Through the model worker (which tokenizes its own batch) the same answers; a reading
    // the cache has not seen is cached, so the embed after it is a hit.
    let settings = hyrank_engine::RuntimeSettings { query_batcher: Some(Default::default()), ..Default::default() };
    let worker = hyrank_engine::Runtime::new(embedder, settings).unwrap();
    assert!(!worker.reads("鞋").unwrap());
    assert_eq!(worker.embed_query("鞋").unwrap(), None);
    let got = worker.embed_query("tent").unwrap().unwrap();
    assert!(cosine(&got, &tent) > 0.9999, "batched as it is alone");
    let stats = worker.query_cache_stats();
    assert_eq!((stats.hits, stats.misses), (1, 1));
}
