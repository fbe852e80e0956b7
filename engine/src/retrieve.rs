//! The first stage: one type for every retriever, one allow mask for every filter.
//!
//! A [`Retriever`] is a probe bound to the index it searches (BM25 text, a dense vector, CF
//! factors); [`Retriever::retrieve`] returns its `n` best items among those an [`Allow`] mask
//! lets through, as the ranked list fusion reads. Search, recommend and similar differ only in
//! which retrievers they build and which items they leave out; running, timing and fusing them
//! is one code path (`engine/stages.rs`). The shape follows qdrant's
//! `lib/segment/src/index/vector_index_base.rs`: one `search(…, filter)` for every index kind,
//! dispatched through an enum.

use std::sync::Arc;

use crate::cf::{Factors, ItemModel};
use crate::dense::{HnswSettings, Metric, VectorIndex};
use crate::error::Result;
use crate::explain::RetrieverKind;
use crate::fusion::RankedList;
use crate::lexical::LexicalIndex;
use crate::request::ColdItems;

/// Which items a request may return: `allowed[item]`, or every item.
#[derive(Debug, Clone, Default)]
pub struct Allow {
    mask: Option<Arc<Vec<bool>>>,
    /// The mask's false entries: how many items within it are refused (a dense search picks
    /// its path by it, [`VectorIndex::search_allowing`]).
    refused: usize,
}

impl Allow {
    /// Every item.
    pub fn all() -> Self {
        Allow { mask: None, refused: 0 }
    }

    /// The items whose entry in `mask` (one per item, by index) is true.
    pub fn mask(mask: Vec<bool>) -> Self {
        let refused = mask.iter().filter(|&&allowed| !allowed).count();
        Allow { mask: Some(Arc::new(mask)), refused }
    }

    /// These items, less `excluded` (a recommendation's seen and hidden items, a similar
    /// request's seed), over a catalog of `items` items. Always a mask, also when nothing is
    /// excluded; a retriever picks its path by how many items the mask refuses
    /// ([`Allow::refused`]), not by whether there is one.
    pub fn excluding(&self, items: usize, excluded: impl IntoIterator<Item = u32>) -> Self {
        let mut mask = match &self.mask {
            Some(mask) => mask.as_ref().clone(),
            None => vec![true; items],
        };
        for item in excluded {
            if let Some(slot) = mask.get_mut(item as usize) {
                *slot = false;
            }
        }
        Allow::mask(mask)
    }

    /// Whether `item` may be returned; an index past the mask may not.
    pub fn allows(&self, item: u32) -> bool {
        self.mask.as_ref().is_none_or(|mask| mask.get(item as usize).copied().unwrap_or(false))
    }

    /// Whether every item is allowed (no mask at all).
    pub fn is_all(&self) -> bool {
        self.mask.is_none()
    }

    /// How many items the mask refuses (0 without one); items past its end are refused too and
    /// not counted. A dense search picks its path by it ([`VectorIndex::search_allowing`]);
    /// its results do not depend on it.
    pub fn refused(&self) -> usize {
        self.refused
    }
}

/// CF item factors, searchable: the generation's own, or those of a model trained without some
/// interactions (the reranker trainer replays users as they were before their held-out items).
pub struct CfItems {
    index: VectorIndex,
    /// Items without training interactions (all-zero factors): CF has no opinion on them.
    cold: Arc<Vec<bool>>,
    /// The cold items CF abstains on under `cold_items: share`: all of them, less those only
    /// interactions below the positive rule name ([`CfItems::with_seen_only`]).
    abstain: Arc<Vec<bool>>,
    /// The mean factors of the warm items (`dim` values; zeros when none is warm): its inner
    /// product with a probe is the probe's mean CF score over the items CF can judge, from
    /// which [`CfItems::floor`] takes the probe's own items out.
    warm_mean: Vec<f32>,
    /// How many items are warm.
    warm: usize,
}

impl CfItems {
    /// Wraps an inner-product index of item factors.
    pub(crate) fn new(index: VectorIndex) -> Self {
        let cold: Vec<bool> = index.vectors().chunks_exact(index.dim()).map(|v| v.iter().all(|&x| x == 0.0)).collect();
        // Cold rows are zeros: they add nothing to the sum, and are left out of the count.
        let warm = cold.iter().filter(|&&c| !c).count();
        let warm_mean = index.sum().iter().map(|&s| (s / warm.max(1) as f64) as f32).collect();
        let cold = Arc::new(cold);
        CfItems { index, abstain: Arc::clone(&cold), cold, warm_mean, warm }
    }

    /// Marks `seen_only` (item indexes; any out of range is passed over) as interacted with
    /// below the positive rule: still cold (zero factors, never in the CF list), but CF no
    /// longer abstains on them, so `share` does not hand them content's weight.
    #[must_use]
    pub(crate) fn with_seen_only(mut self, seen_only: &[u32]) -> Self {
        if seen_only.is_empty() {
            return self;
        }
        self.abstain = Arc::new(crate::cf::ease::abstain_mask(&self.cold, seen_only));
        self
    }

    /// Whether CF abstains on `item` under `cold_items: share` ([`CfItems::with_seen_only`]).
    pub(crate) fn abstains(&self, item: u32) -> bool {
        self.abstain.get(item as usize).copied().unwrap_or(false)
    }

    /// Whether `item` had no training interactions (CF has no opinion on it).
    pub(crate) fn is_cold(&self, item: u32) -> bool {
        self.cold.get(item as usize).copied().unwrap_or(false)
    }

    /// The CF list's floor for `probe`: its mean score over the warm items other than `own`
    /// (the probe's own items: a user's history, a similar request's seed), what an item
    /// unrelated to the probe scores on average. Its own items are left out because ALS fits
    /// their scores near 1: on a sparse catalog (63 items, 8 in a history) they lifted the
    /// mean above every other item's score, and under `linear_floor` CF then gave every
    /// candidate 0. `own` may repeat items and hold cold ones.
    pub(crate) fn floor(&self, probe: &[f32], own: &[u32]) -> f32 {
        let mean = crate::dense::dot(probe, &self.warm_mean);
        let mut own: Vec<u32> =
            own.iter().copied().filter(|&i| !self.cold.get(i as usize).copied().unwrap_or(true)).collect();
        own.sort_unstable();
        own.dedup();
        let others = self.warm.saturating_sub(own.len());
        if own.is_empty() || others == 0 {
            return mean;
        }
        let own_sum: f64 =
            own.iter().filter_map(|&i| self.vector(i)).map(|v| f64::from(crate::dense::dot(probe, v))).sum();
        // Held to f32's range as every dense score is: mean and own scores may be at its ends.
        crate::dense::saturated((f64::from(mean) * self.warm as f64 - own_sum) / others as f64)
    }

    /// Indexes item factors for inner-product search.
    pub fn build(factors: &Factors, hnsw: HnswSettings) -> Result<Self> {
        Ok(Self::new(VectorIndex::build(factors.data.clone(), factors.dim, Metric::InnerProduct, hnsw)?))
    }

    /// One item's factors (`None` past the end).
    pub(crate) fn vector(&self, item: u32) -> Option<&[f32]> {
        self.index.vector(item)
    }
}

/// One retriever, bound to its probe.
pub enum Retriever<'a> {
    /// BM25 over the tantivy index, for a query text.
    Bm25 {
        /// The index.
        index: &'a LexicalIndex,
        /// The query as typed.
        query: &'a str,
        /// k1 and b, when the request gives them; else the index's.
        params: Option<crate::lexical::Bm25Params>,
    },
    /// Cosine nearest neighbours of an embedding (a query's, a user's content profile, a seed
    /// item's). `None`: no probe could be formed (a user with no usable history), so the list
    /// is empty but still takes part in fusion.
    Dense {
        /// The item embeddings.
        index: &'a VectorIndex,
        /// Items written live since the build, scanned exactly beside the graph.
        live: Option<&'a crate::live::items::LiveItems>,
        /// The unit-length probe.
        vector: Option<&'a [f32]>,
        /// The mean embedding of the items a request can reach, before its filters (from
        /// [`VectorIndex::sum`], live rows in and hidden rows out): its dot product
        /// with the probe, the reachable items' mean score, is the list's floor. `None`: no
        /// floor, for fusion methods that do not read one (finding the mean after a write
        /// costs a pass over the live and hidden rows).
        mean: Option<&'a [f32]>,
    },
    /// Collaborative filtering: inner product of user (or item) factors with item factors.
    Cf {
        /// The item factors searched.
        items: &'a CfItems,
        /// The probe's factors, in the space of `items`.
        factors: &'a [f32],
        /// Whether fusion treats cold items as abstained on (`share`) or plainly (`ignore`);
        /// either way they are not in the list.
        cold_items: ColdItems,
        /// The probe's own items (a user's history, a similar request's seed), which the
        /// list's floor leaves out ([`CfItems::floor`]).
        own: &'a [u32],
    },
    /// Collaborative filtering by an item-item model (EASE): the summed item-item weights of
    /// the seeds (a user's history, a similar request's seed item). Its list holds only the
    /// items some seed has a weight for. Named `cf` in fusion, weights and breakdowns.
    ItemModel {
        /// The fitted model.
        model: &'a ItemModel,
        /// The items the scores come from, `(item, weight)`.
        seeds: &'a [(u32, f32)],
        /// Whether CF abstains on cold items (`share`) or leaves them out of its list (`ignore`).
        cold_items: ColdItems,
    },
    /// A list already retrieved: BM25's, which search runs beside the query's encode.
    /// Retrieving returns it as it is, so it must have been retrieved for the same `n` and
    /// filters.
    Ready(RankedList),
}

impl Retriever<'_> {
    /// The retriever's kind, which names its list in breakdowns and timings.
    pub fn kind(&self) -> RetrieverKind {
        match self {
            Retriever::Bm25 { .. } => RetrieverKind::Bm25,
            Retriever::Dense { .. } => RetrieverKind::Dense,
            Retriever::Cf { .. } | Retriever::ItemModel { .. } => RetrieverKind::Cf,
            Retriever::Ready(list) => list.retriever,
        }
    }

    /// The `n` best allowed items, best first (ties by item index), as fusion's input.
    ///
    /// # Errors
    /// A probe of the wrong width, or a failing index read.
    pub fn retrieve(&self, n: usize, allow: &Allow) -> Result<RankedList> {
        let kind = self.kind();
        let allow_fn = |item: u32| allow.allows(item);
        Ok(match self {
            Retriever::Bm25 { index, query, params } => {
                let params = params.unwrap_or(index.settings().bm25);
                // BM25 scores an item none of the query's terms is in 0, and any other item
                // more (idf and each field's weight are positive).
                RankedList::new(kind, index.search_with(query, n, allow.mask.clone(), params)?).with_floor(0.0)
            }
            Retriever::Dense { index, live, vector, mean } => match vector {
                Some(vector) => {
                    let mut hits = match allow.is_all() {
                        true => index.search(vector, n, None)?,
                        false => index.search_allowing(vector, n, &allow_fn, allow.refused())?,
                    };
                    if let Some(live) = live.filter(|live| !live.is_empty()) {
                        hits.extend(live.dense_top(vector, n, allow));
                        hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                        hits.truncate(n);
                    }
                    let list = RankedList::new(kind, hits);
                    match mean {
                        Some(mean) => list.with_floor(crate::dense::dot(vector, mean)),
                        None => list,
                    }
                }
                None => RankedList::new(kind, Vec::new()),
            },
            Retriever::Cf { items, factors, cold_items, own } => {
                // A cold item (no training interactions, zero factors) has no CF score at all,
                // not a score of 0: it never enters the CF list, so it earns no rank credit and
                // `mode: cf` never recommends it over warm items with negative scores.
                let warm = |item: u32| !items.cold.get(item as usize).copied().unwrap_or(true) && allow.allows(item);
                let hits = items.index.search(factors, n, Some(&warm))?;
                let abstaining = (*cold_items == ColdItems::Share).then(|| Arc::clone(&items.abstain));
                // What a warm item unrelated to the probe scores on average.
                let floor = Some(items.floor(factors, own));
                RankedList { retriever: kind, hits, abstaining, floor }
            }
            Retriever::ItemModel { model, seeds, cold_items } => {
                let hits = model.top(seeds, n, |item| allow.allows(item));
                let abstaining = (*cold_items == ColdItems::Share).then(|| Arc::clone(model.abstains()));
                // An item no seed has a weight for scores exactly 0 (and is not listed), as an
                // item without a query term does under BM25.
                RankedList { retriever: kind, hits, abstaining, floor: Some(0.0) }
            }
            Retriever::Ready(list) => {
                debug_assert!(list.hits.len() <= n, "a ready list longer than the {n} asked for");
                list.clone()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_allows_every_item_and_a_mask_only_its_own() {
        assert!(Allow::all().allows(123_456));
        let allow = Allow::mask(vec![true, false, true]);
        assert!(allow.allows(0) && !allow.allows(1) && allow.allows(2));
        assert!(!allow.allows(3), "an item past the mask is not allowed");
    }

    #[test]
    fn excluding_keeps_the_filter_and_removes_the_items() {
        let allow = Allow::mask(vec![true, false, true, true]).excluding(4, [2, 99]);
        assert_eq!((0..4).map(|i| allow.allows(i)).collect::<Vec<_>>(), [true, false, false, true]);
        assert_eq!(allow.refused(), 2, "the filter's item and the excluded one; 99 is past the mask");
        let allow = Allow::all().excluding(3, []);
        assert!(!allow.is_all(), "an exclusion always yields a mask");
        assert!((0..3).all(|i| allow.allows(i)));
        assert_eq!((allow.refused(), Allow::all().refused()), (0, 0));
    }

    fn tiny_dense() -> VectorIndex {
        // Three unit vectors in 2-D: item 0 along x, item 1 along y, item 2 between them.
        let s = std::f32::consts::FRAC_1_SQRT_2;
        VectorIndex::build(vec![1.0, 0.0, 0.0, 1.0, s, s], 2, Metric::Cosine, HnswSettings::default()).unwrap()
    }

    #[test]
    fn a_dense_retriever_honours_the_mask_and_an_absent_probe_returns_nothing() {
        let index = tiny_dense();
        let probe = [1.0f32, 0.0];
        let mean: Vec<f32> = index.sum().iter().map(|s| (s / 3.0) as f32).collect();
        let retriever = Retriever::Dense { index: &index, live: None, vector: Some(&probe), mean: Some(&mean) };
        let all = retriever.retrieve(3, &Allow::all()).unwrap();
        assert_eq!(all.hits.iter().map(|h| h.0).collect::<Vec<_>>(), [0, 2, 1]);
        // The floor is the probe's mean score over the items: (1 + 0 + 1/√2) / 3.
        let floor = all.floor.expect("a dense list has a floor");
        assert!((floor - (1.0 + std::f32::consts::FRAC_1_SQRT_2) / 3.0).abs() < 1e-6, "{floor}");
        let masked = retriever.retrieve(3, &Allow::all().excluding(3, [0])).unwrap();
        assert_eq!(masked.hits.iter().map(|h| h.0).collect::<Vec<_>>(), [2, 1]);
        let empty = Retriever::Dense { index: &index, live: None, vector: None, mean: Some(&mean) }
            .retrieve(3, &Allow::all())
            .unwrap();
        assert!(empty.hits.is_empty());
        assert_eq!(empty.retriever, RetrieverKind::Dense);
    }

    #[test]
    fn cf_abstains_on_cold_items_only_when_sharing() {
        // Item 1 has all-zero factors: nobody interacted with it.
        let factors = Factors { data: vec![1.0, 0.5, 0.0, 0.0, 0.2, 1.0], dim: 2 };
        let items = CfItems::build(&factors, HnswSettings::default()).unwrap();
        let user = [1.0f32, 1.0];
        let share = Retriever::Cf { items: &items, factors: &user, cold_items: ColdItems::Share, own: &[] };
        let list = share.retrieve(3, &Allow::all()).unwrap();
        let abstaining = list.abstaining.clone().expect("share marks cold items");
        assert_eq!(abstaining.as_slice(), [false, true, false]);
        let ignore = Retriever::Cf { items: &items, factors: &user, cold_items: ColdItems::Ignore, own: &[] };
        let plain = ignore.retrieve(3, &Allow::all()).unwrap();
        assert!(plain.abstaining.is_none());
        // Issue 15: under either rule the cold item is not in the CF list at all (it used to
        // come back with score 0 and get rank credit, or outrank warm items scored below 0).
        for list in [&list, &plain] {
            assert_eq!(list.hits.iter().map(|h| h.0).collect::<Vec<_>>(), [0, 2]);
            // The floor is the mean over the warm items, (1.5 + 1.2) / 2, not over all three.
            assert!((list.floor.expect("an ALS list has a floor") - 1.35).abs() < 1e-6, "{:?}", list.floor);
        }
        let negative = [-1.0f32, -1.0];
        let cf_only = Retriever::Cf { items: &items, factors: &negative, cold_items: ColdItems::Ignore, own: &[] };
        assert!(cf_only.retrieve(3, &Allow::all()).unwrap().hits.iter().all(|h| h.0 != 1));
    }

    /// The CF floor is what an item unrelated to the probe scores: the mean over the warm items
    /// that are not the probe's own (its history, or a seed). On a sparse catalog the items a
    /// user has, which ALS fits near 1, lifted the mean above every other item's score.
    #[test]
    fn the_cf_floor_leaves_the_probe_s_own_items_out() {
        // Items 0 and 1 are the user's (scored 1.0 and 0.9), 2 is cold, 3 and 4 are not theirs
        // (0.05 and 0.01).
        let factors = Factors { data: vec![1.0, 0.0, 0.9, 0.0, 0.0, 0.0, 0.05, 0.0, 0.0, 0.01], dim: 2 };
        let items = CfItems::build(&factors, HnswSettings::default()).unwrap();
        let user = [1.0f32, 1.0];
        let floor = |own: &[u32]| {
            let retriever = Retriever::Cf { items: &items, factors: &user, cold_items: ColdItems::Ignore, own };
            retriever.retrieve(5, &Allow::all()).unwrap().floor.unwrap()
        };
        assert!((floor(&[]) - 0.49).abs() < 1e-6, "every warm item: {}", floor(&[]));
        // Repeats and a cold item among the own items change nothing.
        for own in [&[0, 1][..], &[1, 0, 1, 2]] {
            assert!((floor(own) - 0.03).abs() < 1e-6, "{own:?}: {}", floor(own));
        }
        assert!(floor(&[0, 1]) < 0.05, "the user's other items are above it");
        // Every warm item the probe's own: the mean of them all.
        assert!((floor(&[0, 1, 3, 4]) - 0.49).abs() < 1e-6);
    }
}
