//! Items written live (`PUT /v1/items/{id}`) as one generation serves them: a segment of rows
//! after the generation's own, in the order their puts were logged. Live item `i` has item
//! index `base + i`, so every list, mask and hit refers to stored and live items alike.
//!
//! The segment only grows while a generation serves (a replaced row is hidden, never removed),
//! so an index, once given out, names the same row for the generation's lifetime, and a
//! request holding an older [`LiveItems`] never meets an index a newer one reads differently.
//!
//! Dense search over the segment is an exact scan while it is small, and an HNSW graph
//! (hnsw_rs, rows inserted as they are put) from [`GRAPH_FROM_ROWS`] rows on, with the rows the
//! graph may not reach scanned beside it, as for a generation's graph (found again every
//! 1,024 puts, the rows put since scanned too). A scan is exact,
//! and faster than the graph up to about that size: top 100 on 2-core Zen 4, p50 per query,
//! scan against graph, 4,096 rows 0.28 against 1.1 ms, 8,192 rows 0.6 against 1.1–2.1 ms,
//! 10,000 rows 1.1–2.5 against 1.3–1.5 ms (the scan reads every vector, 15 MB at 10,000
//! rows, and falls off the cache there): `engine/examples/live_scan.rs`. Qdrant likewise leaves small
//! segments unindexed. The server caps the rows (`limits.max_live_items`, 10,000 by default, so
//! the graph serves only servers whose cap is raised). The BM25 side is postings in memory
//! ([`crate::lexical::LexicalIndex::add_live`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use hnsw_rs::prelude::{DistL2, Hnsw};

use crate::item::Item;
use crate::retrieve::Allow;

/// Live rows from which dense search walks an HNSW graph instead of scanning: past the size up
/// to which a generation's own vectors are scanned ([`crate::dense::EXACT_COSINE_MAX_ITEMS`];
/// see the module docs for the measurement behind it).
pub const GRAPH_FROM_ROWS: usize = crate::dense::EXACT_COSINE_MAX_ITEMS + 1;

/// Puts after which the graph's unreachable rows are found again
/// ([`crate::dense::unreachable_rows`], one pass over its links); the rows put since the last
/// pass are scanned beside the graph until the next one. An insertion can also prune the last
/// link into an older row: such a row is missed until the next pass, at most this many puts
/// later.
const RECHECK_ROWS: usize = 1_024;

/// The graph over live rows, by row position (`index - base`), shared by every
/// [`LiveItems`] of a generation: a row inserted for a newer one is past an older one's length,
/// and its searches leave it out. Cosine as L2 on unit vectors, as `dense/` does.
pub struct LiveGraph(Hnsw<'static, f32, DistL2>);

impl std::fmt::Debug for LiveGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LiveGraph")
    }
}

/// One live row.
#[derive(Debug)]
pub struct LiveItem {
    /// The put's sequence number in the log: writes about the id logged before it do not
    /// apply to this row.
    pub seq: u64,
    /// The row as put.
    pub item: Item,
    /// [`super::item_hash`] of `item`: what a later write about the id names.
    pub hash: String,
    /// Its embedding, unit length.
    pub vector: Vec<f32>,
}

/// The live rows of one generation, as of one put.
#[derive(Debug, Clone)]
pub struct LiveItems {
    /// The generation's item count: live row `i` has index `base + i`.
    pub base: u32,
    /// The sequence number of the last put read (applied or superseded).
    pub version: u64,
    /// The rows, by `index - base`.
    pub entries: Vec<Arc<LiveItem>>,
    /// Each id's latest live row. A persistent map: every put publishes a copy of these rows
    /// with one more entry, and copying a std map of 10,000 ids (each id a new allocation, and
    /// the old map's freed) took ~1.7 ms of every put (`perf`, bench/live_hidden.py); this one
    /// is copied by sharing its tree and changed in O(log n).
    pub by_id: imbl::HashMap<String, u32>,
    /// Rows (stored or live) that a later put replaced: hidden from every retriever.
    pub replaced: HashSet<u32>,
    /// Puts not applied because they were made against a row this generation does not serve
    /// (a write that raced a rebuild whose catalog changed the row).
    pub superseded: usize,
    /// For a live row that replaced one of the generation's rows (directly or through earlier
    /// live rows), that row: what CF reads a history naming the live row as.
    pub built: HashMap<u32, u32>,
    /// The HNSW graph over the rows, once there are `graph_from` of them.
    pub graph: Option<Arc<LiveGraph>>,
    /// Rows from which dense search uses the graph ([`GRAPH_FROM_ROWS`]).
    pub graph_from: usize,
    /// The rows (by `index - base`) the graph could not reach when it was last checked: a
    /// graph search also scans these, and every row from `checked` on.
    pub unreachable: Arc<Vec<u32>>,
    /// The rows the graph held when it was last checked (0: not yet).
    pub checked: usize,
}

impl LiveItems {
    /// An empty segment after `base` stored items.
    pub fn empty(base: u32) -> Self {
        LiveItems {
            base,
            version: 0,
            entries: Vec::new(),
            by_id: imbl::HashMap::new(),
            replaced: HashSet::new(),
            superseded: 0,
            built: HashMap::new(),
            graph: None,
            graph_from: GRAPH_FROM_ROWS,
            unreachable: Arc::new(Vec::new()),
            checked: 0,
        }
    }

    /// Live rows, replaced ones included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no put was applied.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Live rows not replaced by a later put.
    pub fn current(&self) -> usize {
        self.by_id.len()
    }

    /// The live row at item index `index` (`None` for a stored row's index or past the end).
    pub fn get(&self, index: u32) -> Option<&Arc<LiveItem>> {
        index.checked_sub(self.base).and_then(|i| self.entries.get(i as usize))
    }

    /// The sequence number of the put that made row `index` (0 for a row not written live).
    pub fn seq_at(&self, index: u32) -> u64 {
        self.get(index).map_or(0, |e| e.seq)
    }

    /// The index of `id`'s latest live row.
    pub fn index_of(&self, id: &str) -> Option<u32> {
        self.by_id.get(id).copied()
    }

    /// Whether the put logged as `seq` made a row here (applied), whatever later puts did to
    /// its id. Rows are appended in log order, so the search is binary.
    pub fn holds_put(&self, seq: u64) -> bool {
        self.entries.binary_search_by_key(&seq, |e| e.seq).is_ok()
    }

    /// The generation's row that `index` stands for: itself for a stored row, the stored row a
    /// live row replaced (through any chain of puts), or the live row itself for a new id.
    pub fn built_row(&self, index: u32) -> u32 {
        self.built.get(&index).copied().unwrap_or(index)
    }

    /// Appends a row for `put`'s id, replacing `previous` (the row the id named before, stored
    /// or live), standing for the generation's row `built` in CF; returns its index.
    pub fn push(&mut self, seq: u64, item: Item, vector: Vec<f32>, previous: Option<u32>, built: Option<u32>) -> u32 {
        let index = self.base + self.entries.len() as u32;
        if let Some(built) = built.filter(|&b| b < self.base) {
            self.built.insert(index, built);
        }
        if let Some(previous) = previous {
            self.replaced.insert(previous);
        }
        self.by_id.insert(item.id.clone(), index);
        let hash = super::item_hash(&item);
        self.entries.push(Arc::new(LiveItem { seq, item, hash, vector }));
        let position = self.entries.len() - 1;
        match &self.graph {
            Some(graph) => graph.0.insert((&self.entries[position].vector, position)),
            None if self.entries.len() >= self.graph_from => {
                // Built once, over the rows so far (the put that crosses the line pays for it);
                // every later put inserts its row.
                let settings = crate::dense::HnswSettings::default();
                let graph = Hnsw::new(settings.max_connections, 100_000, 16, settings.ef_construction, DistL2 {});
                let rows: Vec<(&Vec<f32>, usize)> = self.entries.iter().map(|e| &e.vector).zip(0..).collect();
                graph.parallel_insert(&rows);
                self.graph = Some(Arc::new(LiveGraph(graph)));
                self.checked = 0;
            }
            None => {}
        }
        if let Some(graph) = &self.graph {
            // A later insertion can prune a row's last link (hnsw_rs), so rows are checked
            // again every `RECHECK_ROWS` puts, not only when the graph is built.
            if self.checked == 0 || self.entries.len() - self.checked >= RECHECK_ROWS {
                self.unreachable = Arc::new(crate::dense::unreachable_rows(&graph.0));
                self.checked = self.entries.len();
            }
        }
        index
    }

    /// The `n` live rows nearest `probe` by cosine (a dot product of unit vectors) among those
    /// `allow` lets through, best first, ties by index: by the graph once there is one, else
    /// by [`LiveItems::scan_top`]. Scores are exact either way.
    pub fn dense_top(&self, probe: &[f32], n: usize, allow: &Allow) -> Vec<(u32, f32)> {
        let Some(graph) = &self.graph else { return self.scan_top(probe, n, allow) };
        let len = self.entries.len();
        let keep = |position: &usize| {
            let index = self.base + *position as u32;
            *position < len && (self.replaced.is_empty() || !self.replaced.contains(&index)) && allow.allows(index)
        };
        let ef = crate::dense::HnswSettings::default().ef_search.max(n);
        let beside = self.unreachable.iter().map(|&p| p as usize).chain(self.checked..len).filter(|p| keep(p));
        let mut hits: Vec<(u32, f32)> = graph
            .0
            .search_filter(probe, n, ef, Some(&keep))
            .into_iter()
            .map(|found| found.d_id)
            .filter(|&position| position < len)
            .chain(beside)
            .map(|position| (self.base + position as u32, crate::dense::dot(probe, &self.entries[position].vector)))
            .collect();
        // Rows put since the last check may come back from the graph as well.
        hits.sort_unstable_by_key(|hit| hit.0);
        hits.dedup_by_key(|hit| hit.0);
        crate::fusion::keep_best(&mut hits, n);
        hits
    }

    /// [`LiveItems::dense_top`] by scanning every row: exact.
    pub fn scan_top(&self, probe: &[f32], n: usize, allow: &Allow) -> Vec<(u32, f32)> {
        let mut hits: Vec<(u32, f32)> = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, entry)| (self.base + i as u32, entry))
            // The set is empty unless a put replaced a row: no lookup per row then.
            .filter(|(index, _)| (self.replaced.is_empty() || !self.replaced.contains(index)) && allow.allows(*index))
            .map(|(index, entry)| (index, crate::dense::dot(probe, &entry.vector)))
            .collect();
        crate::fusion::keep_best(&mut hits, n);
        hits
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An item with only an id and the same title, for tests of live rows.
    pub(crate) fn item(id: &str) -> Item {
        Item { id: id.into(), title: id.into(), text: String::new(), fields: Default::default() }
    }

    #[test]
    fn rows_follow_the_base_and_a_replaced_row_leaves_the_scan() {
        let mut live = LiveItems::empty(10);
        assert_eq!(live.push(5, item("a"), vec![1.0, 0.0], None, None), 10);
        assert_eq!(live.push(6, item("b"), vec![0.0, 1.0], Some(3), Some(3)), 11);
        assert_eq!(live.push(7, item("a"), vec![0.6, 0.8], Some(10), Some(10)), 12);
        assert_eq!((live.built_row(11), live.built_row(12), live.built_row(4)), (3, 12, 4));
        assert_eq!((live.len(), live.current()), (3, 2));
        assert_eq!(live.index_of("a"), Some(12));
        // The put of seq 5 made a row though a later one replaced it (what a writer racing
        // another is told: applied, not a conflict); seqs that made none did not.
        assert!(live.holds_put(5) && live.holds_put(7) && !live.holds_put(4) && !live.holds_put(8));
        assert!(live.get(9).is_none() && live.get(13).is_none());
        assert_eq!(live.get(11).map(|e| e.item.id.as_str()), Some("b"));
        assert_eq!(live.replaced, HashSet::from([3, 10]));
        let hits = live.dense_top(&[1.0, 0.0], 5, &Allow::all());
        assert_eq!(hits, vec![(12, 0.6), (11, 0.0)], "row 10 was replaced by row 12");
        let masked = live.dense_top(&[1.0, 0.0], 5, &Allow::mask(vec![true; 12]));
        assert_eq!(masked, vec![(11, 0.0)], "an index past the mask is not allowed");
        assert_eq!(live.dense_top(&[1.0, 0.0], 1, &Allow::all()), vec![(12, 0.6)]);
    }

    #[test]
    fn from_graph_from_rows_on_a_graph_serves_dense_search_with_exact_scores() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut unit = || {
            let v: Vec<f32> = (0..16).map(|_| rng.random::<f32>() - 0.5).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.into_iter().map(|x| x / norm).collect::<Vec<f32>>()
        };
        let mut live = LiveItems { graph_from: 64, ..LiveItems::empty(100) };
        for i in 0..63u64 {
            live.push(i + 1, item(&format!("r{i}")), unit(), None, None);
        }
        assert!(live.graph.is_none());
        live.push(64, item("r63"), unit(), None, None);
        assert!(live.graph.is_some(), "built at graph_from rows");
        for i in 64..300u64 {
            live.push(i + 1, item(&format!("r{i}")), unit(), None, None);
        }
        let older = live.clone();
        // A newer snapshot's rows are inserted into the shared graph; the older one leaves them out.
        let probe = unit();
        let newest = live.push(301, item("newest"), probe.clone(), Some(105), None);
        assert_eq!(live.dense_top(&probe, 1, &Allow::all())[0].0, newest);
        assert!(older.dense_top(&probe, 300, &Allow::all()).iter().all(|h| h.0 < newest));
        assert!(live.dense_top(&probe, 400, &Allow::all()).iter().all(|h| h.0 != 105), "a replaced row is hidden");
        // The graph alone, with nothing scanned beside it, recalls the exact top 10.
        let graph_only = LiveItems { unreachable: Arc::new(Vec::new()), checked: live.len(), ..live.clone() };
        let (mut agree, probes) = (0, 20);
        for _ in 0..probes {
            let probe = unit();
            let exact = graph_only.scan_top(&probe, 10, &Allow::all());
            let served = graph_only.dense_top(&probe, 10, &Allow::all());
            for hit in &served {
                let score = crate::dense::dot(&probe, &live.get(hit.0).unwrap().vector);
                assert_eq!(hit.1, score, "scores are exact");
            }
            agree += served.iter().filter(|h| exact.contains(h)).count();
        }
        assert!(agree as f64 / (probes * 10) as f64 >= 0.9, "recall@10 {}", agree as f64 / (probes * 10) as f64);

        // Rows the last check listed, and rows put since it, are scanned beside the graph. A row
        // the graph does not hold stands for one it cannot reach.
        assert_eq!(live.checked, 64, "checked when the graph was built, not again within RECHECK_ROWS puts");
        let mut outside = graph_only.clone();
        let away = unit();
        outside.entries.push(Arc::new(LiveItem {
            seq: 400,
            item: item("outside"),
            hash: String::new(),
            vector: away.clone(),
        }));
        let row = outside.entries.len() - 1;
        let index = outside.base + row as u32;
        outside.checked = row + 1;
        assert_ne!(outside.dense_top(&away, 1, &Allow::all())[0].0, index, "the graph does not hold the row");
        outside.checked = row;
        assert_eq!(outside.dense_top(&away, 1, &Allow::all())[0].0, index, "a row put since the check is scanned");
        outside.checked = row + 1;
        outside.unreachable = Arc::new(vec![row as u32]);
        assert_eq!(outside.dense_top(&away, 1, &Allow::all())[0].0, index, "a row the check listed is scanned");
        // Every row listed, so each also comes back from the graph: once each, the replaced one never.
        let listed = LiveItems { unreachable: Arc::new((0..live.len() as u32).collect()), ..live.clone() };
        let all = listed.dense_top(&probe, 1_000, &Allow::all());
        let mut indexes: Vec<u32> = all.iter().map(|h| h.0).collect();
        indexes.sort_unstable();
        indexes.dedup();
        assert_eq!((indexes.len(), all.len()), (live.len() - 1, live.len() - 1), "a row twice, or the replaced one");
    }

    #[test]
    fn the_lane_dot_product_is_the_dot_product() {
        let a: Vec<f32> = (0..387).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..387).map(|i| (i as f32 * 0.11).cos()).collect();
        let plain: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
        let lanes = crate::kernels::dot(&a, &b);
        assert!((f64::from(lanes) - plain).abs() < 1e-4, "{lanes} vs {plain}");
    }
}
