//! Items written live (`PUT /v1/items/{id}`) as one generation serves them: a segment of rows
//! after the generation's own, in the order their puts were logged. Live item `i` has item
//! index `base + i`, so every list, mask and hit refers to stored and live items alike.
//!
//! The segment only grows while a generation serves (a replaced row is hidden, never removed),
//! so an index, once given out, names the same row for the generation's lifetime, and a
//! request holding an older [`LiveItems`] never meets an index a newer one reads differently.
//!
//! Dense search over the segment is an exact scan, not an HNSW graph: between two builds the
//! segment is small (the server caps it, `limits.max_live_items`), a scan of 10,000 × 384
//! floats costs about a millisecond on one core, and it is exact where a graph is approximate.
//! Qdrant makes the same choice for segments below its indexing threshold. The BM25 side is a
//! tantivy index in memory ([`crate::lexical::LexicalIndex::add_live`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::item::Item;
use crate::retrieve::Allow;

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
#[derive(Debug, Clone, Default)]
pub struct LiveItems {
    /// The generation's item count: live row `i` has index `base + i`.
    pub base: u32,
    /// The sequence number of the last put read (applied or superseded).
    pub version: u64,
    /// The rows, by `index - base`.
    pub entries: Vec<Arc<LiveItem>>,
    /// Each id's latest live row.
    pub by_id: HashMap<String, u32>,
    /// Rows (stored or live) that a later put replaced: hidden from every retriever.
    pub replaced: HashSet<u32>,
    /// Puts not applied because they were made against a row this generation does not serve
    /// (a write that raced a rebuild whose catalog changed the row).
    pub superseded: usize,
    /// For a live row that replaced one of the generation's rows (directly or through earlier
    /// live rows), that row: what CF reads a history naming the live row as.
    pub built: HashMap<u32, u32>,
}

impl LiveItems {
    /// An empty segment after `base` stored items.
    pub fn empty(base: u32) -> Self {
        LiveItems { base, ..Self::default() }
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

    /// The index of `id`'s latest live row.
    pub fn index_of(&self, id: &str) -> Option<u32> {
        self.by_id.get(id).copied()
    }

    /// The generation's row that `index` stands for: itself for a stored row, the stored row a
    /// live row replaced (through any chain of puts), or the live row itself for a new id.
    pub fn built_row(&self, index: u32) -> u32 {
        self.built.get(&index).copied().unwrap_or(index)
    }

    /// Appends a row for `put`'s id, replacing `previous` (the row the id named before, stored
    /// or live), standing for the generation's row `built` in CF; returns its index.
    pub(crate) fn push(
        &mut self,
        seq: u64,
        item: Item,
        vector: Vec<f32>,
        previous: Option<u32>,
        built: Option<u32>,
    ) -> u32 {
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
        index
    }

    /// The `n` live rows nearest `probe` by cosine (a dot product of unit vectors) among those
    /// `allow` lets through, best first, ties by index: an exact scan (see the module docs).
    pub fn dense_top(&self, probe: &[f32], n: usize, allow: &Allow) -> Vec<(u32, f32)> {
        let mut hits: Vec<(u32, f32)> = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, entry)| (self.base + i as u32, entry))
            .filter(|(index, _)| !self.replaced.contains(index) && allow.allows(*index))
            .map(|(index, entry)| (index, dot(probe, &entry.vector)))
            .collect();
        let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if n < hits.len() {
            hits.select_nth_unstable_by(n, order);
            hits.truncate(n);
        }
        hits.sort_by(order);
        hits
    }
}

/// A dot product in eight independent lanes, which the compiler turns into SIMD adds (a single
/// running sum is one dependent add per element: at 10,000 live rows × 384 that is the
/// difference between milliseconds and a fraction of one).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a_chunks.remainder().iter().zip(b_chunks.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for lane in 0..8 {
            lanes[lane] += x[lane] * y[lane];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str) -> Item {
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
    fn the_lane_dot_product_is_the_dot_product() {
        let a: Vec<f32> = (0..387).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..387).map(|i| (i as f32 * 0.11).cos()).collect();
        let plain: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
        assert!((f64::from(dot(&a, &b)) - plain).abs() < 1e-4, "{} vs {plain}", dot(&a, &b));
    }
}
