//! Approximate nearest-neighbour search over item vectors (hnsw_rs), for two metrics:
//!
//! * cosine, over L2-normalised MiniLM embeddings. We index with L2 distance, which ranks
//!   normalised vectors exactly as cosine does (`‖a − b‖² = 2 − 2 cos`) and, unlike hnsw_rs's
//!   `DistDot`, never asserts on rounding when two vectors are identical;
//! * inner product, over ALS item factors. HNSW needs a metric, so each item vector y is
//!   augmented with `√(M² − ‖y‖²)` (M the largest norm) and the query with 0: then
//!   `‖q − y'‖² = ‖q‖² + M² − 2 q·y`, and L2 order is inner-product order (Bachrach et al. 2014).
//!
//! Scores returned are always recomputed exactly from the stored vectors, so a caller never
//! sees a distance from the augmented space.
//!
//! Two things keep the graph's approximation from losing items outright:
//! * small indexes are scanned exactly instead ([`EXACT_COSINE_MAX_ITEMS`],
//!   [`EXACT_INNER_PRODUCT_MAX_ITEMS`]);
//! * every graph search also scans, exactly, the items left with no way in on the bottom
//!   layer ([`Graph::unreachable`](graph::Graph::unreachable)). hnsw_rs can leave such items behind (hnswlib-rs issues #32
//!   and #37: a point whose every in-link was pruned by later insertions, more often under
//!   parallel insertion); a search, even for the item's own vector, would never return one.
//!   On the 24-item test catalog, one build in a few dozen lost its best match for a query
//!   this way (hence a flaky test).
//!
//! hnsw_rs builds the graph and reads and writes its files; the search is ours ([`graph`]), on
//! a flat copy of the links, and the loaded hnsw_rs graph (which holds a second copy of every
//! vector) is dropped once copied.

mod graph;
pub mod scan;
mod search;

use std::path::Path;

pub(crate) use graph::unreachable_rows;
pub use search::{FILTERED_EF_FACTOR, POST_FILTER_MAX_REFUSED_PER_HIT};

use hnsw_rs::prelude::{AnnT, DistL2, Hnsw, HnswIo};

use crate::error::{Error, Result};

/// How vectors are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Cosine similarity of normalised vectors.
    Cosine,
    /// Raw inner product.
    InnerProduct,
}

/// Graph construction and search settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HnswSettings {
    /// Neighbours kept per node and layer (M).
    pub max_connections: usize,
    /// Candidate list size while building.
    pub ef_construction: usize,
    /// Default candidate list size while searching; raised to k when k is larger, and
    /// doubled for a search that leaves items out ([`FILTERED_EF_FACTOR`]).
    pub ef_search: usize,
}

/// The neighbours per node (M) a graph can be built with: hnsw_rs stores M in one byte of its
/// dump (256 read back as 0) and exits the process above 256; below 2 the graph is a chain.
pub const MAX_CONNECTIONS: std::ops::RangeInclusive<usize> = 2..=255;

impl Default for HnswSettings {
    fn default() -> Self {
        HnswSettings { max_connections: 16, ef_construction: 200, ef_search: 128 }
    }
}

/// Cosine indexes up to this many items are searched by exact scan instead of the graph: the
/// scan is exact and, up to about this size, faster or about as fast (top 100 of 384-d MiniLM
/// vectors, 2-core Zen 4, p50 per query, scan against graph: 4,096 rows 0.28 against 1.1 ms,
/// 10,000 rows 1.1–2.5 against 1.3–1.5 ms, where the scan stops fitting in cache;
/// `engine/examples/live_scan.rs`, docs/EVAL.md). Qdrant likewise scans segments under its
/// `full_scan_threshold` (10 MB of vectors by default).
pub const EXACT_COSINE_MAX_ITEMS: usize = 10_000;

/// Inner-product indexes up to this many items are searched by exact scan instead of the graph.
///
/// The MIPS-to-L2 augmentation makes a poor HNSW space: on MovieLens (9,742 items, 64 ALS
/// factors, ef 200) the graph's top 20 gave Recall@20 0.186 where the exact top 20 of the same
/// factors gives 0.250. An exact scan costs items × factors multiply-adds (0.6 M here, under a
/// millisecond; 13 M at this limit), so below the limit exactness is the better trade.
pub const EXACT_INNER_PRODUCT_MAX_ITEMS: usize = 200_000;

/// Writes values as little-endian f32: the layout of every `.vectors` file.
pub(crate) fn write_f32_file(path: &Path, values: &[f32]) -> Result<()> {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// Reads what [`write_f32_file`] wrote, checking that it splits into rows of `dim`.
pub fn read_f32_file(path: &Path, dim: usize) -> Result<Vec<f32>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    if dim == 0 || bytes.len() % (4 * dim) != 0 {
        return Err(Error::BadIndex {
            path: path.to_path_buf(),
            reason: format!("size {} is not a whole number of {dim}-d rows", bytes.len()),
        });
    }
    Ok(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

/// hnsw_rs's `file_dump` fails above this many layers.
const MAX_LAYERS: usize = 16;

/// Item vectors with an HNSW graph over them.
pub struct VectorIndex {
    /// hnsw_rs's graph, kept only by an index built in this process, to be saved; a loaded
    /// one is dropped once its links are copied into `links`.
    graph: Option<Hnsw<'static, f32, DistL2>>,
    /// The links every search walks.
    links: graph::Graph,
    /// Each row's squared norm, for a cosine index: the walk orders rows by `‖x‖² − 2 q·x`,
    /// which is L2 order (the graph's). `None` for inner product, whose augmented rows all
    /// have the same norm, so `−2 q·x` alone orders them.
    norms: Option<Vec<f32>>,
    /// The rows at 8 bits, for an inner-product index of [`scan::QUANTIZED_SCAN_FROM_ROWS`]
    /// rows or more: its scans read these first ([`VectorIndex::scan`]).
    quantized: Option<scan::Quantized>,
    vectors: Vec<f32>,
    dim: usize,
    settings: HnswSettings,
    exact_limit: usize,
    /// The items the graph may not reach ([`graph::Graph::unreachable`]), ascending; found only for an
    /// index searched through its graph (more items than `exact_limit`), else `None`.
    unreachable: Option<Vec<u32>>,
    /// The items' vectors summed (`dim` values, f64): [`VectorIndex::sum`].
    sum: Vec<f64>,
}

/// The sum of `vectors`' rows of `dim` values, in f64 so that a million rows lose no
/// precision; zeros when there are none.
fn row_sum(vectors: &[f32], dim: usize) -> Vec<f64> {
    let mut sum = vec![0f64; dim];
    for row in vectors.chunks_exact(dim) {
        sum.iter_mut().zip(row).for_each(|(s, &x)| *s += f64::from(x));
    }
    sum
}

/// The inner product of two vectors over the shorter length (cosine for unit vectors), in
/// sixteen lanes: the score of every dense hit, whichever path found it. Always finite for
/// finite inputs: where the f32 sum overflows (factors ALS fit to huge weights, where one
/// product is +∞ and another −∞, and their sum NaN), it is taken again in f64, where no
/// product of two f32 values overflows, and brought back into f32's range (±`f32::MAX`).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let lanes = crate::kernels::dot(a, b);
    if lanes.is_finite() {
        lanes
    } else {
        saturated(a.iter().zip(b).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum())
    }
}

/// `wide` (a score summed in f64) in f32, held to ±`f32::MAX` so that a score beyond f32's
/// range orders as the largest (or smallest) one there is rather than as ∞ or NaN.
#[cold]
pub(crate) fn saturated(wide: f64) -> f32 {
    wide.clamp(-f64::from(f32::MAX), f64::from(f32::MAX)) as f32
}

/// Items up to which a `metric` index scans exactly by default.
fn default_exact_limit(metric: Metric) -> usize {
    match metric {
        Metric::Cosine => EXACT_COSINE_MAX_ITEMS,
        Metric::InnerProduct => EXACT_INNER_PRODUCT_MAX_ITEMS,
    }
}

impl VectorIndex {
    /// Builds the graph over `vectors` (`len / dim` rows, row i is item i).
    pub fn build(vectors: Vec<f32>, dim: usize, metric: Metric, settings: HnswSettings) -> Result<Self> {
        if dim == 0 || vectors.len() % dim != 0 {
            return Err(Error::invalid("vectors", format!("{} values do not split into rows of {dim}", vectors.len())));
        }
        if !MAX_CONNECTIONS.contains(&settings.max_connections) {
            let reason = format!("{} neighbours per node; it must be from 2 to 255", settings.max_connections);
            return Err(Error::invalid("max_connections", reason));
        }
        let rows = vectors.len() / dim;
        // hnsw_rs asserts every distance is ≥ 0, so a NaN anywhere would panic mid-build.
        if let Some(at) = vectors.iter().position(|v| !v.is_finite()) {
            let reason = format!("row {} holds a non-finite value ({})", at / dim, vectors[at]);
            return Err(Error::invalid("vectors", reason));
        }
        let indexed: Vec<Vec<f32>> = match metric {
            Metric::Cosine => vectors.chunks(dim).map(<[f32]>::to_vec).collect(),
            Metric::InnerProduct => {
                // Norms in f64: large factors' squares overflow f32, and inf − inf is NaN.
                let norm_sq = |v: &[f32]| v.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>();
                let max_norm_sq = vectors.chunks(dim).map(norm_sq).fold(0f64, f64::max);
                let indexed: Vec<Vec<f32>> = vectors
                    .chunks(dim)
                    .map(|v| {
                        let mut augmented = v.to_vec();
                        augmented.push((max_norm_sq - norm_sq(v)).max(0.0).sqrt() as f32);
                        augmented
                    })
                    .collect();
                if indexed.iter().any(|v| !v[dim].is_finite()) {
                    let reason = format!("a norm of {:.3e} is beyond f32's range", max_norm_sq.sqrt());
                    return Err(Error::invalid("vectors", reason));
                }
                indexed
            }
        };
        let graph = Hnsw::new(settings.max_connections, rows.max(1), MAX_LAYERS, settings.ef_construction, DistL2 {});
        let batch: Vec<(&Vec<f32>, usize)> = indexed.iter().zip(0..).collect();
        graph.parallel_insert(&batch);
        let links = graph::Graph::copy(&graph, rows);
        Ok(VectorIndex::assemble(Some(graph), links, vectors, dim, metric, settings))
    }

    /// The index over `links` (copied from hnsw_rs's graph, which `graph` keeps when the index
    /// was built here, to be saved) and its `vectors`.
    fn assemble(
        graph: Option<Hnsw<'static, f32, DistL2>>,
        links: graph::Graph,
        vectors: Vec<f32>,
        dim: usize,
        metric: Metric,
        settings: HnswSettings,
    ) -> VectorIndex {
        let norms = (metric == Metric::Cosine).then(|| vectors.chunks_exact(dim).map(|row| dot(row, row)).collect());
        let rows = vectors.len() / dim;
        let quantized = (metric == Metric::InnerProduct && rows >= scan::QUANTIZED_SCAN_FROM_ROWS)
            .then(|| scan::Quantized::of(&vectors, dim));
        let sum = row_sum(&vectors, dim);
        let index = VectorIndex {
            graph,
            links,
            norms,
            quantized,
            vectors,
            dim,
            settings,
            exact_limit: 0,
            unreachable: None,
            sum,
        };
        index.with_exact_limit(default_exact_limit(metric))
    }

    /// Writes the graph as `<basename>.hnsw.{graph,data}` and the vectors as
    /// `<basename>.vectors` (little-endian f32) into `dir`.
    ///
    /// # Errors
    /// An index that was loaded rather than built (its hnsw_rs graph is not kept), or a failed
    /// write.
    pub fn save(&self, dir: &Path, basename: &str) -> Result<()> {
        let Some(graph) = &self.graph else {
            return Err(Error::invalid(
                "vector index",
                "only an index built in this process is saved; copy a loaded one's files",
            ));
        };
        let written = graph.file_dump(dir, basename).map_err(|e| Error::BadIndex {
            path: dir.to_path_buf(),
            reason: format!("writing HNSW graph {basename}: {e}"),
        })?;
        if written != basename {
            return Err(Error::BadIndex {
                path: dir.to_path_buf(),
                reason: format!("HNSW graph {basename} was written as {written}: the directory was not empty"),
            });
        }
        write_f32_file(&dir.join(format!("{basename}.vectors")), &self.vectors)
    }

    /// Reads what [`VectorIndex::save`] wrote.
    pub fn load(dir: &Path, basename: &str, dim: usize, metric: Metric, settings: HnswSettings) -> Result<Self> {
        let vectors = read_f32_file(&dir.join(format!("{basename}.vectors")), dim)?;
        // A build never writes a non-finite value ([`VectorIndex::build`] refuses one), so one
        // here is a damaged file: refused, not served (a NaN row scored null, and fusion gave
        // such hits 1.0). One pass, beside reading the file.
        if let Some(at) = vectors.iter().position(|v| !v.is_finite()) {
            return Err(Error::BadIndex {
                path: dir.join(format!("{basename}.vectors")),
                reason: format!("row {} holds a non-finite value ({}): the file is damaged", at / dim, vectors[at]),
            });
        }
        // The loaded graph borrows its loader; both live only until the links are copied.
        let mut loader = HnswIo::new(dir, basename);
        let graph: Hnsw<'_, f32, DistL2> = loader
            .load_hnsw()
            .map_err(|e| Error::BadIndex { path: dir.join(basename), reason: format!("reading HNSW graph: {e}") })?;
        let rows = vectors.len() / dim;
        if graph.get_nb_point() != rows {
            return Err(Error::BadIndex {
                path: dir.join(basename),
                reason: format!("graph has {} points but {rows} vectors are stored", graph.get_nb_point()),
            });
        }
        let links = graph::Graph::copy(&graph, rows);
        drop(graph);
        Ok(VectorIndex::assemble(None, links, vectors, dim, metric, settings))
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.vectors.len() / self.dim
    }

    /// Whether the index holds no items.
    pub fn is_empty(&self) -> bool {
        self.vectors.is_empty()
    }

    /// Vector width.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Every stored vector, row after row.
    pub fn vectors(&self) -> &[f32] {
        &self.vectors
    }

    /// The stored vector of one item.
    pub fn vector(&self, item: u32) -> Option<&[f32]> {
        let start = item as usize * self.dim;
        self.vectors.get(start..start + self.dim)
    }

    /// Exact similarity of a query to one item under this index's metric.
    pub fn score(&self, query: &[f32], item: u32) -> Option<f32> {
        self.vector(item).map(|v| dot(query, v))
    }

    /// The items' vectors summed in f64 (`dim` values, zeros for an empty index), once at
    /// build or load. The score is a dot product, so by linearity the mean score of the items,
    /// what an item unrelated to the query scores on average, is one product with the mean
    /// vector, `query · (1/n) Σ v_i`: `linear_floor` fusion's dense floor
    /// ([`crate::fusion::Fusion::LinearFloor`]), which the engine takes from this sum with live
    /// rows added and hidden rows taken away.
    pub fn sum(&self) -> &[f64] {
        &self.sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Uniform in [−0.5, 0.5) per coordinate; items draw with seed 11, queries with others.
    fn random_vectors(rows: usize, dim: usize, normalise: bool, seed: u64) -> Vec<f32> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut data: Vec<f32> = (0..rows * dim).map(|_| rng.random::<f32>() - 0.5).collect();
        if normalise {
            for row in data.chunks_mut(dim) {
                let n = dot(row, row).sqrt();
                row.iter_mut().for_each(|v| *v /= n);
            }
        }
        data
    }

    fn brute_force(vectors: &[f32], dim: usize, query: &[f32], k: usize) -> Vec<u32> {
        let mut scored: Vec<(u32, f32)> =
            vectors.chunks(dim).enumerate().map(|(i, v)| (i as u32, dot(query, v))).collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        scored.into_iter().take(k).map(|s| s.0).collect()
    }

    /// A damaged vectors file (a NaN in it) is refused at open, naming the row, not served.
    #[test]
    fn a_stored_non_finite_vector_is_refused_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let index =
            VectorIndex::build(random_vectors(20, 4, true, 7), 4, Metric::Cosine, HnswSettings::default()).unwrap();
        index.save(dir.path(), "dense").unwrap();
        let path = dir.path().join("dense.vectors");
        let mut bytes = std::fs::read(&path).unwrap();
        let end = bytes.len();
        bytes[end - 4..].copy_from_slice(&f32::NAN.to_le_bytes());
        std::fs::write(&path, bytes).unwrap();
        let error = VectorIndex::load(dir.path(), "dense", 4, Metric::Cosine, HnswSettings::default()).err().unwrap();
        assert!(error.to_string().contains("row 19 holds a non-finite value"), "{error}");
    }

    /// A count in the HNSW files that a damaged copy made huge (here 2⁴⁰: no allocation of it
    /// succeeds, yet it is far from overflowing) is refused at open. hnsw_rs allocated what the
    /// count said before reading, and a failed allocation aborts the process, which no caller
    /// can catch: a server opening such a generation died instead of refusing it. A data
    /// length short of the point's dimension is refused too (it was read past its buffer).
    #[test]
    fn a_damaged_count_in_the_graph_files_is_refused_not_allocated() {
        let find = |bytes: &[u8], magic: u32, nth: usize| {
            let magic = magic.to_ne_bytes();
            (0..bytes.len() - 4).filter(|&at| bytes[at..at + 4] == magic).nth(nth).unwrap()
        };
        // (file, magic, which occurrence, offset of the count after it, what it says, the
        // check that refuses it)
        let usize_bytes = std::mem::size_of::<usize>();
        let cases = [
            // The first point's data length (the first magic is the file's header).
            ("dense.hnsw.data", 0xa67f0000u32, 1, 4 + 8, 1u64 << 40, "says 1099511627776 bytes of data follow"),
            ("dense.hnsw.data", 0xa67f0000, 1, 4 + 8, 8, "holds 8 bytes of data, not the 16"),
            // Layer 0's point count, and the first point's neighbour count in layer 0.
            ("dense.hnsw.graph", 0x000a676f, 0, 4, 1 << 40, "says it holds 1099511627776 points"),
            ("dense.hnsw.graph", 0x000a678f, 0, 4 + usize_bytes + 1 + 4, 1 << 40, "neighbours in a layer, over twice"),
        ];
        for (file, magic, nth, offset, count, check) in cases {
            let dir = tempfile::tempdir().unwrap();
            let index =
                VectorIndex::build(random_vectors(40, 4, true, 7), 4, Metric::Cosine, HnswSettings::default()).unwrap();
            index.save(dir.path(), "dense").unwrap();
            let path = dir.path().join(file);
            let mut bytes = std::fs::read(&path).unwrap();
            let at = find(&bytes, magic, nth) + offset;
            bytes[at..at + 8].copy_from_slice(&count.to_ne_bytes());
            std::fs::write(&path, bytes).unwrap();
            let error = VectorIndex::load(dir.path(), "dense", 4, Metric::Cosine, HnswSettings::default()).err();
            let error = error.unwrap_or_else(|| panic!("{file} with a count of {count} was read"));
            let said = error.to_string();
            assert!(said.contains("reading HNSW graph") && said.contains(check), "{file}: {said}");
        }
    }

    /// M is kept in one byte by hnsw_rs: a build outside 2..=255 is refused, not wrapped to 0.
    #[test]
    fn a_neighbour_count_hnsw_cannot_store_is_refused() {
        for m in [0, 1, 256, 300] {
            let settings = HnswSettings { max_connections: m, ..HnswSettings::default() };
            let error = VectorIndex::build(random_vectors(10, 4, true, 3), 4, Metric::Cosine, settings).err().unwrap();
            assert!(error.to_string().contains("must be from 2 to 255"), "{m}: {error}");
        }
        let settings = HnswSettings { max_connections: 255, ..HnswSettings::default() };
        assert!(VectorIndex::build(random_vectors(10, 4, true, 3), 4, Metric::Cosine, settings).is_ok());
    }

    /// A NaN would make hnsw_rs assert mid-build (a panic a new user met through huge ALS
    /// weights): refused, naming the row; factors whose squared norms overflow f32 still index.
    #[test]
    fn non_finite_vectors_are_refused_and_large_ones_indexed() {
        for metric in [Metric::Cosine, Metric::InnerProduct] {
            for bad in [f32::NAN, f32::INFINITY] {
                let mut vectors = random_vectors(10, 4, metric == Metric::Cosine, 3);
                vectors[6] = bad;
                let error = VectorIndex::build(vectors, 4, metric, HnswSettings::default()).err().unwrap();
                assert!(error.to_string().contains("row 1 holds a non-finite value"), "{error}");
            }
        }
        let large: Vec<f32> = random_vectors(50, 4, false, 5).into_iter().map(|v| v * 1e20).collect();
        let index = VectorIndex::build(large.clone(), 4, Metric::InnerProduct, HnswSettings::default()).unwrap();
        // Every path (the graph walk, the exact scan) scores every row finitely, though most of
        // these products are beyond f32 and some rows' products are +∞ and −∞ at once.
        let index = index.with_exact_limit(0);
        for all in [index.search(&large[..4], 50, None).unwrap(), index.exact_search(&large[..4], 50, None)] {
            assert!(!all.is_empty() && all.iter().all(|h| h.1.is_finite()), "{all:?}");
        }
    }

    /// hnsw_rs 0.3.5's `parallel_insert` deadlocked when two points inserted at once chose each
    /// other as neighbours (vendor/README.md): unpatched, this test hung in 4 runs of 6 on a
    /// 2-core machine. A watchdog turns a hang into a failure rather than a stuck test run.
    #[test]
    fn parallel_hnsw_builds_finish() {
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(16).build().unwrap();
            // Few links per row make each row's neighbours few and mutual.
            let settings = HnswSettings { max_connections: 2, ef_construction: 100, ..HnswSettings::default() };
            for seed in 0..20 {
                let vectors = random_vectors(2_000, 8, true, seed);
                pool.install(|| VectorIndex::build(vectors, 8, Metric::Cosine, settings)).unwrap();
            }
            done.send(()).unwrap();
        });
        let waited = finished.recv_timeout(std::time::Duration::from_secs(60));
        assert!(waited.is_ok(), "20 parallel HNSW builds did not finish in 60 s: a deadlock");
    }

    /// A product beyond f32's range is the f64 product held to ±`f32::MAX`, never ∞ or NaN.
    #[test]
    fn a_dot_product_beyond_f32_is_held_to_its_range() {
        let big = 1e20f32;
        assert_eq!(dot(&[big, big], &[big, -big]), 0.0, "+∞ − ∞ in f32 is 0 in f64");
        assert_eq!(dot(&[big, big], &[big, big]), f32::MAX);
        assert_eq!(dot(&[big, 0.5], &[-big, 0.5]), -f32::MAX);
        assert_eq!(dot(&[3.0, 4.0], &[3.0, 4.0]), 25.0);
    }

    #[test]
    fn inner_product_search_recalls_the_brute_force_top_k_after_a_reload() {
        let dim = 8;
        let vectors = random_vectors(500, dim, false, 11);
        let index = VectorIndex::build(vectors.clone(), dim, Metric::InnerProduct, HnswSettings::default()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        index.save(dir.path(), "cf").unwrap();
        let reloaded = VectorIndex::load(dir.path(), "cf", dim, Metric::InnerProduct, HnswSettings::default())
            .unwrap()
            .with_exact_limit(0);
        let queries = random_vectors(20, dim, false, 12);
        let mut found = 0;
        for q in queries.chunks(dim) {
            let expected = brute_force(&vectors, dim, q, 10);
            let got: Vec<u32> = reloaded.search(q, 10, None).unwrap().into_iter().map(|h| h.0).collect();
            found += expected.iter().filter(|e| got.contains(e)).count();
        }
        assert!(found >= 190, "recall@10 {} / 200", found);
    }

    #[test]
    fn the_sum_gives_the_mean_of_every_items_score_after_a_reload_too() {
        let (dim, rows) = (8, 300);
        let vectors = random_vectors(rows, dim, true, 21);
        let index = VectorIndex::build(vectors, dim, Metric::Cosine, HnswSettings::default()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        index.save(dir.path(), "dense").unwrap();
        let reloaded = VectorIndex::load(dir.path(), "dense", dim, Metric::Cosine, HnswSettings::default()).unwrap();
        for query in random_vectors(5, dim, true, 22).chunks(dim) {
            let mean =
                (0..rows as u32).map(|item| f64::from(index.score(query, item).unwrap())).sum::<f64>() / rows as f64;
            for index in [&index, &reloaded] {
                let by_sum = query.iter().zip(index.sum()).map(|(&q, s)| f64::from(q) * s).sum::<f64>() / rows as f64;
                assert!((by_sum - mean).abs() < 1e-5, "{by_sum} vs {mean}");
            }
        }
        let empty = VectorIndex::build(Vec::new(), dim, Metric::Cosine, HnswSettings::default()).unwrap();
        assert!(empty.sum().iter().all(|&s| s == 0.0));
    }

    #[test]
    fn exact_search_is_the_brute_force_top_k_and_respects_the_filter() {
        let dim = 8;
        let vectors = random_vectors(300, dim, false, 11);
        let index = VectorIndex::build(vectors.clone(), dim, Metric::InnerProduct, HnswSettings::default()).unwrap();
        let query = &random_vectors(1, dim, false, 12);
        let got: Vec<u32> = index.search(query, 10, None).unwrap().into_iter().map(|h| h.0).collect();
        assert_eq!(got, brute_force(&vectors, dim, query, 10));
        let odd = |i: u32| i % 2 == 1;
        let filtered = index.exact_search(query, 300, Some(&odd));
        assert_eq!(filtered.len(), 150);
        assert!(filtered.windows(2).all(|w| w[0].1 >= w[1].1));
    }

    #[test]
    fn filter_is_respected_and_scores_are_exact_cosines_by_graph_and_by_scan() {
        let dim = 16;
        let vectors = random_vectors(300, dim, true, 11);
        let scanned = VectorIndex::build(vectors.clone(), dim, Metric::Cosine, HnswSettings::default()).unwrap();
        let queries = random_vectors(5, dim, true, 12);
        for query in queries.chunks(dim) {
            let got: Vec<u32> = scanned.search(query, 10, None).unwrap().into_iter().map(|h| h.0).collect();
            assert_eq!(got, brute_force(&vectors, dim, query, 10), "a small index is scanned exactly");
        }
        let walked = scanned.with_exact_limit(0);
        let even = |i: u32| i % 2 == 0;
        let hits = walked.search(&vectors[..dim], 10, Some(&even)).unwrap();
        assert_eq!(hits.len(), 10);
        assert_eq!(hits[0].0, 0);
        assert!((hits[0].1 - 1.0).abs() < 1e-5);
        assert!(hits.iter().all(|h| h.0 % 2 == 0));
    }

    /// A search told how many items its filter refuses leaves them out on either path: few
    /// (searched deeper, unfiltered, then dropped) or many (the filtered walk). Its hits
    /// are the filtered walk's on a graph small enough to be exact, and it never returns fewer
    /// than `k` allowed items when there are `k`, also when the items nearest the query are
    /// all refused and more are refused than its count says.
    #[test]
    fn a_search_told_what_its_filter_refuses_leaves_it_out_on_either_path() {
        let (rows, dim) = (600, 16);
        let vectors = random_vectors(rows, dim, true, 11);
        let settings = HnswSettings { ef_search: rows, ..HnswSettings::default() };
        let walked = VectorIndex::build(vectors.clone(), dim, Metric::Cosine, settings).unwrap().with_exact_limit(0);
        let query = &vectors[..dim];
        // The query's own neighbourhood refused, as a recommendation refuses the seen items.
        let nearest: Vec<u32> = walked.exact_search(query, 300, None).into_iter().map(|h| h.0).collect();
        for refused in [1, 10, 30, 31, 300] {
            let mut allowed = vec![true; rows];
            nearest[..refused].iter().for_each(|&row| allowed[row as usize] = false);
            let asked = std::sync::atomic::AtomicUsize::new(0);
            let allow = |item: u32| {
                asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                allowed[item as usize]
            };
            let exact = walked.exact_search(query, 10, Some(&allow));
            asked.store(0, std::sync::atomic::Ordering::Relaxed);
            let told = walked.search_allowing(query, 10, &allow, refused).unwrap();
            assert_eq!(told, exact, "{refused} refused");
            // Up to 3 refused per hit the filter is asked only of the deeper search's hits;
            // past it the walk asks it of every point it visits.
            let deep = 10 + refused + walked.unreachable();
            let filtered_after = asked.load(std::sync::atomic::Ordering::Relaxed) <= deep;
            assert_eq!(filtered_after, refused <= 30, "{refused} refused: the filter was asked {asked:?} times");
            assert_eq!(told, walked.search(query, 10, Some(&allow)).unwrap(), "{refused} refused");
            // Told too few refused, the deeper search comes up short and the walk runs instead.
            assert_eq!(walked.search_allowing(query, 10, &allow, 0).unwrap(), exact, "{refused} refused, told 0");
        }
    }

    /// A filter that leaves no more rows than the index's exact-scan limit (a selective field
    /// filter) is answered by scanning: exact, each row's filter asked once, no graph walk.
    #[test]
    fn a_selective_filter_is_answered_by_a_scan_of_the_rows_it_allows() {
        let (rows, dim) = (600, 16);
        let vectors = random_vectors(rows, dim, true, 11);
        let index = VectorIndex::build(vectors.clone(), dim, Metric::Cosine, HnswSettings::default())
            .unwrap()
            .with_exact_limit(100);
        assert!(index.unreachable.is_some(), "600 rows over a limit of 100 walk the graph");
        let asked = std::sync::atomic::AtomicUsize::new(0);
        let every_tenth = |item: u32| {
            asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            item % 10 == 0
        };
        let hits = index.search_allowing(&vectors[dim..2 * dim], 10, &every_tenth, rows - rows / 10).unwrap();
        assert_eq!(asked.load(std::sync::atomic::Ordering::Relaxed), rows, "one question per row: a scan");
        assert_eq!(hits, index.exact_search(&vectors[dim..2 * dim], 10, Some(&every_tenth)));
    }

    /// With two links per node (M = 2), hnsw_rs leaves dozens of 2,000 rows with no link into
    /// them, which the graph alone never returns, even for their own vectors: searched through
    /// the graph with those rows scanned beside it, or by the exact scan, every row's own
    /// vector finds it.
    #[test]
    fn every_row_is_found_by_its_own_vector_though_the_graph_loses_some() {
        let (rows, dim) = (2_000, 8);
        let vectors = random_vectors(rows, dim, true, 11);
        let settings = HnswSettings { max_connections: 2, ef_construction: 100, ef_search: rows };
        let scanned = VectorIndex::build(vectors.clone(), dim, Metric::Cosine, settings).unwrap();
        assert_eq!(scanned.unreachable, None, "an index that scans never walks its graph");
        let walked = VectorIndex::build(vectors.clone(), dim, Metric::Cosine, settings).unwrap().with_exact_limit(0);
        let lost = walked.unreachable.clone().unwrap();
        assert!(!lost.is_empty(), "no unreachable row to test with");
        let dir = tempfile::tempdir().unwrap();
        walked.save(dir.path(), "dense").unwrap();
        let reloaded =
            VectorIndex::load(dir.path(), "dense", dim, Metric::Cosine, settings).unwrap().with_exact_limit(0);
        assert_eq!(reloaded.unreachable.as_ref(), Some(&lost), "the same rows after a reload");

        let finds_itself = |index: &VectorIndex, row: usize| {
            let own = &vectors[row * dim..(row + 1) * dim];
            index.search(own, 1, None).unwrap().first().is_some_and(|hit| hit.0 == row as u32)
        };
        assert!((0..rows).all(|row| finds_itself(&walked, row)), "through the graph and the rows beside it");
        assert!((0..rows).all(|row| finds_itself(&scanned, row)), "by the exact scan");
        let graph_only = VectorIndex { unreachable: Some(Vec::new()), ..walked };
        assert!(lost.iter().any(|&row| !finds_itself(&graph_only, row as usize)), "the graph alone found every row");
    }

    #[test]
    fn wrong_query_width_is_an_error() {
        let index =
            VectorIndex::build(random_vectors(10, 4, true, 11), 4, Metric::Cosine, HnswSettings::default()).unwrap();
        assert!(index.search(&[0.0; 3], 1, None).is_err());
    }
}
