//! Built-in evaluation: relevance of search configurations on judged data ([`search`]) and
//! recommendation quality on held-out interactions ([`recommend`]), with metrics defined as
//! trec_eval defines them ([`metrics`]).

pub mod metrics;
pub mod recommend;
pub mod search;

use std::io::Write;
use std::path::Path;

use crate::error::{IndexError, Result};

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
