//! Built-in evaluation: relevance of search configurations on judged data ([`search`]) and
//! recommendation quality on held-out interactions ([`recommend`]), with metrics defined as
//! trec_eval defines them ([`metrics`]).

mod configs;
pub mod metrics;
pub mod recommend;
pub mod search;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{IndexError, Result};

/// `path` as the file system resolves it (`..`, links, the working folder), or as written
/// where it cannot be resolved (it is gone): the same file named relatively in one run and
/// absolutely in another is one file.
fn resolved(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn write_file(path: &Path, contents: &str) -> Result<()> {
    std::fs::File::create(path)
        .and_then(|mut f| f.write_all(contents.as_bytes()))
        .map_err(|e| IndexError::Engine(hyrank_engine::Error::io(format!("writing {}", path.display()), e)))
}

/// Writes `report.json` and `report.md` into `dir`.
fn write_reports(dir: &Path, report: &impl serde::Serialize, markdown: &str) -> Result<()> {
    let json = serde_json::to_string_pretty(report)
        .map_err(|source| hyrank_engine::Error::Json { context: "encoding report".into(), source })?;
    write_file(&dir.join("report.json"), &(json + "\n"))?;
    write_file(&dir.join("report.md"), markdown)
}

/// One configuration's (or mode's) nDCG@10 against another's on the same queries (or users):
/// the mean of the per-query differences, its 90% paired-bootstrap interval (2,000 resamples,
/// Efron's percentile interval; `bench/paired_bootstrap.py` computes the same from the
/// per-query and per-user files), and how many gained or lost.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PairedGain {
    /// The configuration compared against.
    pub baseline: String,
    /// Mean per-query nDCG@10 difference (this − baseline).
    pub gain: f64,
    /// Its 90% interval: an interval above 0 is a gain the queries support.
    pub interval: [f64; 2],
    /// Queries (users) whose nDCG@10 rose.
    pub better: usize,
    /// Queries (users) whose nDCG@10 fell.
    pub worse: usize,
}

impl PairedGain {
    /// `scores` against `baseline_scores`, query by query (the same queries in the same order).
    fn of(baseline: &str, scores: &[f64], baseline_scores: &[f64]) -> Self {
        let differences: Vec<f64> = scores.iter().zip(baseline_scores).map(|(a, b)| a - b).collect();
        // Per-query scores are exact for equal rankings; anything nearer than rounding is a tie.
        let moved = |d: &&f64| d.abs() > 1e-9;
        PairedGain {
            baseline: baseline.to_string(),
            gain: differences.iter().sum::<f64>() / differences.len().max(1) as f64,
            interval: metrics::bootstrap_interval(&differences, 7),
            better: differences.iter().filter(moved).filter(|d| **d > 0.0).count(),
            worse: differences.iter().filter(moved).filter(|d| **d < 0.0).count(),
        }
    }
}

/// The paired comparisons of `rows` (name, comparison) as a markdown paragraph and table;
/// `what` names the row kind (`configuration`, `mode`) and `unit` what is paired (`queries`,
/// `users`). Empty when no row has a comparison.
fn paired_table<'a>(
    what: &str,
    unit: &str,
    rows: impl IntoIterator<Item = (&'a str, Option<&'a PairedGain>)>,
) -> String {
    let rows: Vec<(&str, &PairedGain)> = rows.into_iter().filter_map(|(name, g)| Some((name, g?))).collect();
    let Some((_, first)) = rows.first() else { return String::new() };
    let mut out = format!(
        "\nnDCG@10 against {} on the same {unit} (90% paired-bootstrap interval of the mean difference):\n\n",
        first.baseline
    );
    out += &markdown_table(
        &[what, "gain", "90% interval", &format!("{unit} better"), &format!("{unit} worse")],
        rows.iter().map(|(name, g)| {
            vec![
                name.to_string(),
                format!("{:+.4}", g.gain),
                format!("[{:+.4}, {:+.4}]", g.interval[0], g.interval[1]),
                g.better.to_string(),
                g.worse.to_string(),
            ]
        }),
    );
    out
}

/// A markdown table: the header, its rule, then one line per row.
fn markdown_table<S: AsRef<str>>(header: &[&str], rows: impl IntoIterator<Item = Vec<S>>) -> String {
    let line = |cells: &[&str]| format!("| {} |\n", cells.join(" | "));
    let mut out = line(header);
    out += &line(&vec!["---"; header.len()]);
    for row in rows {
        out += &line(&row.iter().map(AsRef::as_ref).collect::<Vec<_>>());
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn markdown_table_lines_up_header_rule_and_rows() {
        let table = super::markdown_table(&["mode", "Recall@20"], [vec!["cf", "0.2497"], vec!["content", "0.0331"]]);
        assert_eq!(table, "| mode | Recall@20 |\n| --- | --- |\n| cf | 0.2497 |\n| content | 0.0331 |\n");
    }
}
