//! tantivy's own BM25 (block-max WAND at its fixed k1 1.2 and b 0.75): the reference our
//! scorer ([`LexicalIndex::score_all`]) is held to, query by query and explanation by
//! explanation, and the peer it is timed against.

use std::sync::Arc;

use tantivy::collector::{FilterCollector, TopDocs};
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::Term;

use super::{schema, LexicalIndex, QueryTerm, IDX};
use crate::error::Result;
use crate::explain::Explanation;

impl LexicalIndex {
    /// The plain-text query as tantivy clauses, or `None` when no token survives analysis. A
    /// number written after letters ([`terms`]) must match beside a lettered term of its word
    /// in any field, which adds nothing to the score (boost 0).
    fn query(&self, text: &str) -> Result<Option<BooleanQuery>> {
        let term_in = |field: &schema::Searched, term: &str| -> Box<dyn Query> {
            let query =
                Box::new(TermQuery::new(Term::from_field_text(field.field, term), IndexRecordOption::WithFreqs));
            if (field.boost - 1.0).abs() > f32::EPSILON {
                Box::new(BoostQuery::new(query, field.boost))
            } else {
                query
            }
        };
        // Each group of fields reads the query with its own analyzer.
        let mut read: Vec<(Vec<&schema::Searched>, Vec<QueryTerm>)> = Vec::new();
        for group in &self.groups {
            let fields =
                self.fields.searched.iter().enumerate().filter(|(f, _)| group.fields & (1 << f) != 0).map(|(_, s)| s);
            read.push((fields.collect(), self.terms_of(group.analyser, text)?));
        }
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for (fields, terms) in &read {
            // Alternatives for one word (terms at one position, `terms::QueryTerm::position`)
            // score their best, as `score_all` scores them: a disjunction-max of each one's
            // clauses over the fields.
            let mut at = 0;
            while at < terms.len() {
                let stack = 1 + terms[at + 1..].iter().take_while(|o| terms[at].same_word(o)).count();
                if stack > 1 {
                    let each: Vec<Box<dyn Query>> = terms[at..at + stack]
                        .iter()
                        .map(|term| {
                            let over_fields = fields.iter().map(|f| (Occur::Should, term_in(f, &term.text))).collect();
                            Box::new(BooleanQuery::new(over_fields)) as Box<dyn Query>
                        })
                        .collect();
                    clauses.push((Occur::Should, Box::new(tantivy::query::DisjunctionMaxQuery::new(each))));
                    at += stack;
                    continue;
                }
                let term = &terms[at];
                at += 1;
                for field in fields {
                    let mut clause = term_in(field, &term.text);
                    if term.dependent {
                        let mut beside: Vec<(Occur, Box<dyn Query>)> = Vec::new();
                        for (fields, terms) in &read {
                            for other in terms.iter().filter(|o| o.lettered && o.word == term.word) {
                                beside.extend(fields.iter().map(|f| (Occur::Should, term_in(f, &other.text))));
                            }
                        }
                        let beside = Box::new(BoostQuery::new(Box::new(BooleanQuery::new(beside)), 0.0));
                        clause = Box::new(BooleanQuery::new(vec![(Occur::Must, clause), (Occur::Must, beside)]));
                    }
                    clauses.push((Occur::Should, clause));
                }
            }
        }
        Ok((!clauses.is_empty()).then(|| BooleanQuery::new(clauses)))
    }

    /// tantivy's own BM25 (k1 1.2, b 0.75 fixed), the reference [`LexicalIndex::score_all`] is
    /// held to and the peer it is timed against.
    pub fn search_tantivy(&self, text: &str, k: usize, allowed: Option<Arc<Vec<bool>>>) -> Result<Vec<(u32, f32)>> {
        let Some(query) = self.query(text)? else { return Ok(Vec::new()) };
        if k == 0 {
            return Ok(Vec::new());
        }
        let searcher = self.reader.searcher();
        let top = TopDocs::with_limit(k).order_by_score();
        let found = match allowed {
            Some(allowed) => {
                let keep = move |idx: u64| allowed.get(idx as usize).copied().unwrap_or(false);
                searcher.search(&query, &FilterCollector::new(IDX.to_string(), keep, top))?
            }
            None => searcher.search(&query, &top)?,
        };
        let mut hits = found
            .into_iter()
            .map(|(score, address)| Ok((self.item_of(&searcher, address)?, score)))
            .collect::<Result<Vec<_>>>()?;
        hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        Ok(hits)
    }

    /// tantivy's explanation of `item`'s BM25 score for `text` at its fixed constants, or `None`
    /// if it does not match.
    pub fn explain_tantivy(&self, text: &str, item: u32) -> Result<Option<Explanation>> {
        let Some(query) = self.query(text)? else { return Ok(None) };
        let searcher = self.reader.searcher();
        let by_idx = TermQuery::new(Term::from_field_u64(self.fields.idx, u64::from(item)), IndexRecordOption::Basic);
        let Some((_, address)) = searcher.search(&by_idx, &TopDocs::with_limit(1).order_by_score())?.into_iter().next()
        else {
            return Ok(None);
        };
        match query.explain(&searcher, address) {
            Ok(explanation) => Ok(Some(Explanation::from_tantivy(&explanation))),
            // tantivy reports "does not match" as an error; for us it is simply no explanation.
            Err(tantivy::TantivyError::InvalidArgument(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// Our scorer at tantivy's constants gives tantivy's own hits, scores and explanation values
/// for each query (the tests of every field layout share it).
#[cfg(test)]
pub(super) fn agrees_with_tantivy(lexical: &LexicalIndex, queries: &[&str]) {
    use super::Bm25Params;
    for &query in queries {
        let theirs = lexical.search_tantivy(query, 10, None).unwrap();
        let mut ours = lexical.score_all(query, Bm25Params::TANTIVY).unwrap();
        ours.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        assert_eq!(theirs.len(), ours.len(), "{query}");
        for (t, o) in theirs.iter().zip(&ours) {
            assert_eq!(t.0, o.0, "{query}: {theirs:?} vs {ours:?}");
            assert!((t.1 - o.1).abs() <= 1e-5 * t.1.abs().max(1.0), "{query}: {t:?} vs {o:?}");
            let tree = lexical.explain_with(query, t.0, Bm25Params::TANTIVY).unwrap().unwrap();
            let reference = lexical.explain_tantivy(query, t.0).unwrap().unwrap();
            assert!((tree.value - reference.value).abs() <= 1e-5 * reference.value.abs().max(1.0));
        }
    }
}
