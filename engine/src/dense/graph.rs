//! Searching the HNSW graph that hnsw_rs built, from our own flat copy of its links.
//!
//! hnsw_rs builds the graph and writes and reads its files; its search was the cost of every
//! dense list and is replaced here, for three reasons measured on 58,452 MovieLens-shaped
//! titles (docs/EVAL.md, "The HNSW walk, ours"):
//! * its filtered search never stops early: once its result list is full it keeps walking
//!   every candidate closer than the worst kept point, re-filtering as it goes, so a filter
//!   allowing 45% of the titles cost about four times an unfiltered search (3.7–4.2×);
//! * its descent takes at most one step per upper layer, where Malkov and Yashunin's
//!   algorithm (HNSW, TPAMI 2020, algorithm 2 with ef = 1) moves greedily until no neighbour
//!   is closer, so the bottom layer's walk starts farther from the query;
//! * every visited point is an `Arc` clone into a `HashMap`, and its distance is computed
//!   over hnsw_rs's own copy of the vectors (scattered, one allocation per point).
//!
//! The walk here is hnswlib's (`searchBaseLayerST`, the reference implementation by the
//! algorithm's authors): a candidate heap and a result heap of at most `ef` allowed rows; a
//! refused row is still walked through, it only stays out of the results; the walk stops when
//! the nearest unexpanded candidate is farther than the worst of `ef` results. Distances are
//! the ones the graph was built with, up to an order-preserving change: hnsw_rs indexed L2
//! over the stored rows (augmented for inner product, see the parent module), and
//! `‖q − x‖² = ‖q‖² + ‖x‖² − 2 q·x` orders rows as `‖x‖² − 2 q·x` does, with `‖x‖²` the same
//! for every augmented row.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap, VecDeque};

use hnsw_rs::prelude::{DistL2, Hnsw};

/// The links of an HNSW graph, by row (the id each vector was inserted with).
pub(crate) struct Graph {
    /// Bottom layer: row r's links are `links[offsets[r]..offsets[r + 1]]`.
    offsets: Vec<usize>,
    links: Vec<u32>,
    /// Layers 1 and up (`upper[l - 1]` is layer l): each row on that layer with its links.
    upper: Vec<HashMap<u32, Box<[u32]>>>,
    /// The rows on the top layer, where every search starts.
    entry: Vec<u32>,
}

/// A row and its distance to the query, ordered by distance (then row, so that equal
/// distances pop in a fixed order).
#[derive(Clone, Copy, PartialEq)]
struct Near(f32, u32);

impl Eq for Near {}

impl PartialOrd for Near {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Near {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

impl Graph {
    /// Copies `graph`'s links, layer by layer; `rows` is its number of points. A link to a row
    /// outside `0..rows` (which a well-formed graph never has) is dropped.
    pub(crate) fn copy(graph: &Hnsw<'_, f32, DistL2>, rows: usize) -> Graph {
        let mut bottom: Vec<Vec<u32>> = vec![Vec::new(); rows];
        if graph.get_nb_point() == 0 {
            // hnsw_rs's point iterator unwraps the entry point, which an empty graph lacks.
            return Graph { offsets: vec![0; rows + 1], links: Vec::new(), upper: Vec::new(), entry: Vec::new() };
        }
        let mut upper: Vec<HashMap<u32, Box<[u32]>>> = Vec::new();
        let inside = |ids: &[hnsw_rs::prelude::Neighbour]| -> Box<[u32]> {
            ids.iter().filter(|n| n.d_id < rows).map(|n| n.d_id as u32).collect()
        };
        for point in graph.get_point_indexation() {
            let row = point.get_origin_id();
            if row >= rows {
                continue;
            }
            let layers = point.get_neighborhood_id();
            let level = usize::from(point.get_point_id().0);
            if let Some(first) = layers.first() {
                bottom[row] = inside(first).into_vec();
            }
            for layer in 1..=level {
                if upper.len() < layer {
                    upper.resize_with(layer, HashMap::new);
                }
                let ids = layers.get(layer).map_or_else(|| Box::from([]), |ids| inside(ids));
                upper[layer - 1].insert(row as u32, ids);
            }
        }
        let top = usize::from(graph.get_max_level_observed());
        let mut entry: Vec<u32> = graph
            .get_point_indexation()
            .get_layer_iterator(top)
            .map(|point| point.get_origin_id())
            .filter(|&row| row < rows)
            .map(|row| row as u32)
            .collect();
        entry.sort_unstable();
        // The top layer read above is the one every row in `entry` was listed on; layers
        // above it (none in a well-formed graph) would never be reached.
        upper.truncate(top);
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        let mut links = Vec::with_capacity(bottom.iter().map(Vec::len).sum());
        for row in bottom {
            links.extend(row);
            offsets.push(links.len());
        }
        Graph { offsets, links, upper, entry }
    }

    /// Rows the graph holds.
    pub(crate) fn rows(&self) -> usize {
        self.offsets.len() - 1
    }

    fn bottom_links(&self, row: u32) -> &[u32] {
        let row = row as usize;
        &self.links[self.offsets[row]..self.offsets[row + 1]]
    }

    /// The rows that no bottom-layer link leads to on a breadth-first walk from the top
    /// layer's rows: a search reaches them only when its descent ends on one (for most
    /// queries, never). A top-layer row is listed unless a link leads to it too. Ascending.
    pub(crate) fn unreachable(&self) -> Vec<u32> {
        let rows = self.rows();
        let mut reached = vec![false; rows];
        let mut expanded = vec![false; rows];
        let mut queue: VecDeque<u32> = self.entry.iter().copied().collect();
        while let Some(row) = queue.pop_front() {
            if std::mem::replace(&mut expanded[row as usize], true) {
                continue;
            }
            for &next in self.bottom_links(row) {
                if !std::mem::replace(&mut reached[next as usize], true) {
                    queue.push_back(next);
                }
            }
        }
        (0..rows).filter(|&row| !reached[row]).map(|row| row as u32).collect()
    }

    /// Up to `ef` allowed rows nearest the query, nearest first, as `(row, distance)`;
    /// `distance` gives a row's distance to the query (any order-preserving form of the one
    /// the graph was built with). Fewer than `ef` only when the walk runs out of rows it can
    /// reach (a filter refusing most of them, or a graph with fewer rows).
    pub(crate) fn search(
        &self,
        distance: impl Fn(u32) -> f32,
        ef: usize,
        allow: Option<&(dyn Fn(u32) -> bool + Sync)>,
    ) -> Vec<(u32, f32)> {
        // More than every row is never kept; the cap keeps a huge `ef` from sizing the heaps.
        let ef = ef.clamp(1, self.rows().max(1));
        let Some(start) = self.descend(&distance) else { return Vec::new() };
        let allowed = |row: u32| allow.is_none_or(|allow| allow(row));
        let mut visited = vec![0u64; self.rows().div_ceil(64)];
        let mut visit = |row: u32| {
            let (word, bit) = (row as usize / 64, 1u64 << (row % 64));
            let seen = visited[word] & bit != 0;
            visited[word] |= bit;
            !seen
        };
        visit(start.1);
        // `candidates` pops the nearest row still to expand; `results` the farthest kept.
        let mut candidates = BinaryHeap::with_capacity(ef.saturating_mul(2));
        let mut results: BinaryHeap<Near> = BinaryHeap::with_capacity(ef + 1);
        candidates.push(std::cmp::Reverse(start));
        if allowed(start.1) {
            results.push(start);
        }
        let mut bound = results.peek().map_or(f32::INFINITY, |worst| worst.0);
        while let Some(std::cmp::Reverse(nearest)) = candidates.pop() {
            if nearest.0 > bound && results.len() == ef {
                break;
            }
            for &row in self.bottom_links(nearest.1) {
                if !visit(row) {
                    continue;
                }
                let d = distance(row);
                if results.len() < ef || d < bound {
                    candidates.push(std::cmp::Reverse(Near(d, row)));
                    if allowed(row) {
                        results.push(Near(d, row));
                        if results.len() > ef {
                            results.pop();
                        }
                        bound = results.peek().map_or(f32::INFINITY, |worst| worst.0);
                    }
                }
            }
        }
        results.into_sorted_vec().into_iter().map(|Near(d, row)| (row, d)).collect()
    }

    /// The descent through the upper layers: from the nearest top-layer row, on each layer
    /// move to the nearest neighbour while one is nearer (greedy search with ef = 1).
    fn descend(&self, distance: &impl Fn(u32) -> f32) -> Option<Near> {
        let mut best = self.entry.iter().map(|&row| Near(distance(row), row)).min()?;
        for layer in self.upper.iter().rev() {
            loop {
                let links = layer.get(&best.1).map_or(&[][..], |links| &links[..]);
                let nearer = links.iter().map(|&row| Near(distance(row), row)).filter(|n| *n < best).min();
                match nearer {
                    Some(nearer) => best = nearer,
                    None => break,
                }
            }
        }
        Some(best)
    }
}

/// The rows of `graph` (by the ids they were inserted with) that hnsw_rs's search may never
/// return (the live segment's graph, which takes inserts while serving, is searched by
/// hnsw_rs; a generation's graph by [`Graph`], whose [`Graph::unreachable`] is this
/// on the copied links):
/// those no bottom-layer link leads to on a breadth-first walk from the points of the top
/// layer (the entry point among them). An hnsw_rs search descends the upper layers to one
/// point and walks the bottom layer's links from there (`search_filter`), so a row no
/// bottom-layer link leads to is returned only when a descent ends on it: for most queries,
/// never. Every such row is listed (a top-layer point too: it is a start, not a row reached).
/// A row that some links lead to but not from where a given query's descent ends is not: that
/// is the graph's ordinary approximation, which this does not bound. Ascending. One pass over
/// the links (each point's lists copied once); it must not run while the graph takes inserts
/// (hnsw_rs's point iterator takes a read lock twice).
pub(crate) fn unreachable_rows(graph: &Hnsw<'_, f32, DistL2>) -> Vec<u32> {
    let rows = graph.get_nb_point();
    if rows == 0 {
        return Vec::new();
    }
    let indexation = graph.get_point_indexation();
    let mut points = vec![None; rows];
    for point in indexation {
        if let Some(slot) = points.get_mut(point.get_origin_id()) {
            *slot = Some(point);
        }
    }
    // `reached`: a bottom-layer link leads to the row. The walk starts from the top layer's
    // points without marking them, so one of them is listed unless a link leads to it too.
    let mut reached = vec![false; rows];
    let top = usize::from(graph.get_max_level_observed());
    let mut queue: VecDeque<usize> = indexation.get_layer_iterator(top).map(|point| point.get_origin_id()).collect();
    let mut expanded = vec![false; rows];
    while let Some(row) = queue.pop_front() {
        match expanded.get_mut(row) {
            Some(done) if !*done => *done = true,
            _ => continue,
        }
        let Some(point) = &points[row] else { continue };
        for neighbour in point.get_neighborhood_id().first().into_iter().flatten() {
            if let Some(flag) = reached.get_mut(neighbour.d_id).filter(|flag| !**flag) {
                *flag = true;
                queue.push_back(neighbour.d_id);
            }
        }
    }
    (0..rows).filter(|&row| !reached[row]).map(|row| row as u32).collect()
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use hnsw_rs::prelude::{DistL2, Hnsw};
    use rand::{Rng, SeedableRng};

    use super::Graph;

    fn unit_rows(rows: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..rows)
            .map(|_| {
                let v: Vec<f32> = (0..dim).map(|_| rng.random::<f32>() - 0.5).collect();
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.into_iter().map(|x| x / norm).collect()
            })
            .collect()
    }

    fn built(rows: &[Vec<f32>], m: usize) -> Hnsw<'static, f32, DistL2> {
        let graph = Hnsw::new(m, rows.len(), 16, 100, DistL2 {});
        let batch: Vec<(&Vec<f32>, usize)> = rows.iter().zip(0..).collect();
        graph.parallel_insert(&batch);
        graph
    }

    fn l2(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
    }

    fn exact(rows: &[Vec<f32>], query: &[f32], k: usize, allow: impl Fn(u32) -> bool) -> Vec<u32> {
        let mut all: Vec<(f32, u32)> =
            (0..rows.len() as u32).filter(|&r| allow(r)).map(|r| (l2(query, &rows[r as usize]), r)).collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0));
        all.into_iter().take(k).map(|(_, r)| r).collect()
    }

    /// The walk recalls the exact top 10, unfiltered and under a filter, at least as well as
    /// hnsw_rs's own search of the same graph less a little (its filtered search never stops,
    /// so it may recall slightly more at the same `ef`).
    #[test]
    fn the_walk_recalls_what_hnsw_rs_recalls_on_the_same_graph() {
        let rows = unit_rows(3_000, 16, 3);
        let hnsw = built(&rows, 16);
        let graph = Graph::copy(&hnsw, rows.len());
        let (mut ours, mut theirs, mut asked) = (0, 0, 0);
        for (i, query) in unit_rows(100, 16, 4).iter().enumerate() {
            let odd = |row: u32| i % 2 == 0 || row % 2 == 1;
            let expected = exact(&rows, query, 10, odd);
            let got: Vec<u32> =
                graph.search(|r| l2(query, &rows[r as usize]), 64, Some(&odd)).iter().take(10).map(|h| h.0).collect();
            let filter = |id: &usize| odd(*id as u32);
            let hnsw_rs: Vec<u32> =
                hnsw.search_filter(query, 10, 64, Some(&filter)).iter().map(|n| n.d_id as u32).collect();
            assert!(got.iter().all(|&r| odd(r)), "a refused row came back");
            ours += expected.iter().filter(|e| got.contains(e)).count();
            theirs += expected.iter().filter(|e| hnsw_rs.contains(e)).count();
            asked += 10;
        }
        let (ours, theirs) = (ours as f64 / asked as f64, theirs as f64 / asked as f64);
        assert!(ours >= 0.95 && ours >= theirs - 0.02, "recall@10 ours {ours}, hnsw_rs {theirs}");
    }

    /// A filtered walk stops once `ef` allowed rows are nearer than every candidate left: with
    /// half the rows allowed it computes far fewer distances than there are rows (hnsw_rs's
    /// walk, which never stopped early, computed most of them).
    #[test]
    fn a_filtered_walk_stops_early_and_returns_ef_allowed_rows_nearest_first() {
        let rows = unit_rows(5_000, 16, 5);
        let graph = Graph::copy(&built(&rows, 16), rows.len());
        let even = |row: u32| row % 2 == 0;
        for query in unit_rows(20, 16, 6) {
            let computed = Cell::new(0usize);
            let distance = |r: u32| {
                computed.set(computed.get() + 1);
                l2(&query, &rows[r as usize])
            };
            let hits = graph.search(distance, 32, Some(&even));
            assert_eq!(hits.len(), 32);
            assert!(hits.iter().all(|h| even(h.0)));
            assert!(hits.windows(2).all(|w| w[0].1 <= w[1].1), "nearest first");
            assert!(computed.get() < rows.len() / 4, "{} distances for 5,000 rows", computed.get());
        }
    }

    /// The copied links leave out the same rows as a walk of hnsw_rs's own (`unreachable_rows`),
    /// on graphs with two links per row, which lose rows often.
    #[test]
    fn the_copy_finds_the_rows_hnsw_rs_cannot_reach() {
        let mut lost = 0;
        for seed in 0..4 {
            let rows = unit_rows(2_000, 8, seed);
            let hnsw = built(&rows, 2);
            let unreachable = Graph::copy(&hnsw, rows.len()).unreachable();
            assert_eq!(unreachable, super::unreachable_rows(&hnsw));
            lost += unreachable.len();
        }
        assert!(lost > 0, "no graph lost a row: nothing compared");
    }

    #[test]
    fn an_empty_graph_finds_nothing() {
        let graph = Graph::copy(&Hnsw::<f32, DistL2>::new(16, 1, 16, 100, DistL2 {}), 0);
        assert!(graph.search(|_| 0.0, 10, None).is_empty());
        assert!(graph.unreachable().is_empty());
    }
}
