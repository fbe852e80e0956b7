//! The rerank stage: rescores the top of the fused list with a model that reads the query and
//! each item's text together.
//!
//! [`LateInteractionReranker`] is the first implementation: it runs the full MiniLM transformer
//! over the query and over each candidate's title and text, and scores by late interaction
//! (ColBERT's MaxSim, Khattab & Zaharia 2020): each query token takes its best cosine match among
//! the item's contextual token embeddings, and the score is the mean over query tokens. Unlike the
//! dense retriever, which compares two pooled vectors, this sees which query words find a match
//! in the item. It is untrained for this use (MiniLM was trained on pooled vectors), so it is
//! opt-in per request; a cross-encoder trained on the catalog's behaviour replaces it later.

use std::sync::Arc;

use crate::embed::Embedder;
use crate::error::Result;
use crate::item::Item;

/// Scores candidates for a query; higher is better.
pub trait Reranker: Send + Sync {
    /// Stable name shown in breakdowns.
    fn name(&self) -> &str;
    /// One score per item, in the items' order.
    fn score(&self, query: &str, items: &[&Item]) -> Result<Vec<f32>>;
}

/// MaxSim over MiniLM's contextual token embeddings.
pub struct LateInteractionReranker {
    embedder: Arc<Embedder>,
}

impl LateInteractionReranker {
    /// Uses the engine's embedding model.
    pub fn new(embedder: Arc<Embedder>) -> Self {
        LateInteractionReranker { embedder }
    }
}

/// Mean over query tokens of the best cosine with any document token.
pub fn max_sim(query: &[Vec<f32>], document: &[Vec<f32>]) -> f32 {
    if query.is_empty() || document.is_empty() {
        return 0.0;
    }
    let total: f32 = query
        .iter()
        .map(|q| document.iter().map(|d| q.iter().zip(d).map(|(a, b)| a * b).sum::<f32>()).fold(f32::MIN, f32::max))
        .sum();
    total / query.len() as f32
}

impl Reranker for LateInteractionReranker {
    fn name(&self) -> &str {
        "late_interaction_minilm"
    }

    fn score(&self, query: &str, items: &[&Item]) -> Result<Vec<f32>> {
        let query_tokens = self.embedder.token_embeddings(&[query])?.pop().unwrap_or_default();
        let contents: Vec<String> = items.iter().map(|item| item.content()).collect();
        let mut scores = Vec::with_capacity(items.len());
        for chunk in contents.chunks(self.embedder.batch_size()) {
            let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
            for document in self.embedder.token_embeddings(&refs)? {
                scores.push(max_sim(&query_tokens, &document));
            }
        }
        Ok(scores)
    }
}

#[cfg(test)]
mod tests {
    use super::max_sim;

    #[test]
    fn max_sim_takes_each_query_tokens_best_match() {
        let q = vec![vec![1.0, 0.0], vec![0.0, 1.0]];
        let d = vec![vec![1.0, 0.0], vec![0.6, 0.8]];
        assert!((max_sim(&q, &d) - (1.0 + 0.8) / 2.0).abs() < 1e-6);
        assert_eq!(max_sim(&q, &[]), 0.0);
    }
}
