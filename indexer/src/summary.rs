//! What a build reports: the published generation, its counts, rejects, moot settings, time
//! per stage, size on disk and peak memory.

use std::path::{Path, PathBuf};

use hyrank_engine::generation::Manifest;

/// What a run produced.
#[derive(Debug)]
pub struct Summary {
    /// The published generation's folder.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// Where rejected rows were written, if any were.
    pub rejects_file: Option<PathBuf>,
    /// Bytes on disk per part of the generation.
    pub sizes: Vec<(String, u64)>,
    /// Peak resident memory of the process, when the OS reports it.
    pub peak_memory_bytes: Option<u64>,
    /// Older generations removed after publishing (`IndexSettings::keep`).
    pub removed_generations: Vec<PathBuf>,
    /// Settings this build's data made moot (also logged as warnings when found).
    pub moot_settings: Vec<String>,
}

fn dir_size(path: &Path) -> u64 {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => {
            std::fs::read_dir(path).map(|entries| entries.flatten().map(|e| dir_size(&e.path())).sum()).unwrap_or(0)
        }
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

/// Bytes per part: the lexical and store folders, and the vector files grouped by prefix.
pub(crate) fn sizes(dir: &Path) -> Vec<(String, u64)> {
    let mut by_part: std::collections::BTreeMap<String, u64> = Default::default();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let part = name.split('.').next().unwrap_or(&name).to_string();
        *by_part.entry(part).or_default() += dir_size(&entry.path());
    }
    by_part.into_iter().collect()
}

/// Peak resident set size (Linux `VmHWM`).
pub(crate) fn peak_memory() -> Option<u64> {
    proc_bytes("/proc/self/status", "VmHWM:")
}

/// A `key:  N kB` line of a Linux `/proc` file, in bytes; `None` where there is none.
pub(crate) fn proc_bytes(path: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

impl Summary {
    /// A human-readable report.
    pub fn render(&self) -> String {
        let m = &self.manifest;
        let mut out = format!("published generation {} at {}\n", m.generation, self.dir.display());
        let c = &m.counts;
        out += &format!(
            "  items {}  users {}  interactions {} (from {} rows)\n  rejected: {} catalog rows, {} interaction rows\n",
            c.items, c.users, c.interactions, c.interaction_rows, c.rejected_items, c.rejected_interactions
        );
        if let Some(min_weight) = m.sources.min_weight {
            out += &format!(
                "  {} interaction rows below --min-weight {min_weight}: seen (kept out of the user's recommendations), not positives; the rest count once per user and item, weighing 1\n",
                c.below_min_weight
            );
        }
        if c.repeated_items > 0 {
            out += &format!("  {} catalog rows repeated an earlier row exactly and were read once\n", c.repeated_items);
        }
        if c.long_tokens_split > 0 {
            out += &format!(
                "  {} tokens longer than {} characters were indexed as pieces (BM25)\n",
                c.long_tokens_split,
                hyrank_engine::analysis::MAX_TOKEN_CHARS
            );
        }
        if let Some(path) = &self.rejects_file {
            out += &format!("  rejects written to {}\n", path.display());
        }
        for setting in &self.moot_settings {
            out += &format!("  no effect: {setting}\n");
        }
        if !self.removed_generations.is_empty() {
            let names: Vec<String> = self
                .removed_generations
                .iter()
                .map(|d| d.file_name().unwrap_or_default().to_string_lossy().to_string())
                .collect();
            out += &format!("  removed older generations (--keep): {}\n", names.join(", "));
        }
        if let Some(live) = &m.live {
            // Every kind of live write the fold counted, so none is left out of the summary.
            out += &format!(
                "  live writes folded in (through record {}): {} events taken in, {} refused (rejects \
                 says why); items put live: {} created, {} replacing their catalog row; {} deleted live \
                 stay hidden; {} with fields updated live; not applied, made against a row that a \
                 catalog change or an earlier write had replaced (the puts the server answered 409 \
                 among them): {} puts, {} deletes, {} field updates; {} values written live left out, \
                 as the catalog's field types no longer take them (rejects says which)\n",
                live.folded_through,
                live.events,
                live.rejected,
                live.created,
                live.replaced,
                live.deleted.len(),
                live.updated.len(),
                live.superseded_puts,
                live.superseded_deletes,
                live.superseded_updates,
                live.values_left_out
            );
        }
        if let Some(selection) = &m.cf_selection {
            out += &format!("  cf model: {}\n", selection.reason);
            for c in &selection.candidates {
                out += &match (c.ndcg_10, c.recall_20, &c.skipped) {
                    (Some(ndcg), Some(recall), _) => format!(
                        "    {:<58} nDCG@10 {ndcg:.4}  Recall@20 {recall:.4}  fit {:.1} s\n",
                        c.model.to_string(),
                        c.fit_seconds
                    ),
                    (_, _, skipped) => {
                        format!("    {:<58} not fitted: {}\n", c.model.to_string(), skipped.as_deref().unwrap_or(""))
                    }
                };
            }
            if let Some(weight) = selection.content_weight {
                out += &format!(
                    "  content weight of hybrid recommendations: {weight} (validated on the same split: the \
                     default unless another weight's nDCG@10 gain over it has its 90% interval above 0)\n"
                );
                for c in &selection.content_weights {
                    out += &format!(
                        "    content {:<50} nDCG@10 {:.4}  Recall@20 {:.4}  gain 5th pct {:+.4}\n",
                        c.weight, c.ndcg_10, c.recall_20, c.ndcg_10_gain_low
                    );
                }
            }
        }
        out += "  time per stage:\n";
        for s in &m.stages {
            out += &format!("    {:<20} {:>9.2} s\n", s.stage, s.seconds);
        }
        let total: f64 = m.stages.iter().map(|s| s.seconds).sum();
        out += &format!("    {:<20} {:>9.2} s\n", "total", total);
        out += "  size on disk:\n";
        for (part, bytes) in &self.sizes {
            out += &format!("    {:<20} {:>9.2} MiB\n", part, *bytes as f64 / 1048576.0);
        }
        let total: u64 = self.sizes.iter().map(|s| s.1).sum();
        out += &format!("    {:<20} {:>9.2} MiB\n", "total", total as f64 / 1048576.0);
        if let Some(peak) = self.peak_memory_bytes {
            out += &format!("  peak memory {:.0} MiB\n", peak as f64 / 1048576.0);
        }
        out
    }
}
