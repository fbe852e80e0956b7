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
