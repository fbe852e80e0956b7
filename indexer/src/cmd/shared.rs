//! Flags every command that reads a catalog or loads the model shares.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use hyrank_engine::{DeviceChoice, EmbedderSettings};
use hyrank_indexer::{CatalogFormat, CatalogKind, InteractionFormat};

/// A folder flag (`--out`, `--index-dir`), for clap: refused when the path, or a folder above
/// it, is a file, since every command writes or reads files under it and the system's own
/// word for that ("File exists", "Not a directory") names neither the flag nor the file.
pub(crate) fn folder(text: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(text);
    let existing = path.ancestors().filter(|a| !a.as_os_str().is_empty()).find(|a| a.exists());
    match existing {
        Some(found) if !found.is_dir() && found == path => Err(format!("{text} is a file, not a folder")),
        Some(found) if !found.is_dir() => Err(format!("{} is a file, so {text} cannot be a folder", found.display())),
        _ => Ok(path),
    }
}

#[derive(Args)]
pub(crate) struct CatalogArgs {
    /// Catalog: JSON Lines (one item per line: id or _id, title, text, fields) or CSV.
    #[arg(long, env = "HYRANK_CATALOG")]
    pub(crate) catalog: PathBuf,
    /// Catalog format; by default CSV for a .csv file, else JSON Lines.
    #[arg(long, value_enum)]
    pub(crate) catalog_format: Option<CatalogKind>,
    /// CSV catalogs: the id column.
    #[arg(long, default_value = "id")]
    pub(crate) id_column: String,
    /// CSV catalogs: the title column.
    #[arg(long, default_value = "title")]
    pub(crate) title_column: String,
    /// CSV catalogs: text columns, joined in order (repeat the flag). Default: `text`, if present.
    #[arg(long)]
    pub(crate) text_column: Vec<String>,
    /// CSV catalogs: columns stored as filterable fields (repeat the flag).
    #[arg(long)]
    pub(crate) field_column: Vec<String>,
    /// CSV catalogs: split field values on this separator into lists (MovieLens genres: `|`); a
    /// column some cells split is a list field, one no cell does (a year) is numbers or text.
    #[arg(long)]
    pub(crate) list_separator: Option<String>,
    /// A field's type, `NAME=number|text|list` (repeat the flag): rows whose value does not fit
    /// are refused, naming line and field. Undeclared fields are typed over the whole catalog:
    /// numbers if every value reads as one (JSON `25` and `"25"` alike), lists if any value is
    /// a list, else text.
    #[arg(long, value_parser = parse_field_type)]
    pub(crate) field_type: Vec<(String, hyrank_indexer::input::FieldType)>,
}

fn parse_field_type(text: &str) -> Result<(String, hyrank_indexer::input::FieldType), String> {
    let (name, kind) = text.split_once('=').ok_or_else(|| format!("expected NAME=TYPE, got {text:?}"))?;
    let kind: hyrank_indexer::input::FieldType = kind.parse()?;
    if name.trim().is_empty() {
        return Err(format!("expected NAME=TYPE, got {text:?}"));
    }
    Ok((name.trim().to_string(), kind))
}

impl CatalogArgs {
    /// # Errors
    /// A field given two types by `--field-type` (the last one was taken without a word).
    pub(crate) fn format(&self) -> anyhow::Result<CatalogFormat> {
        for (at, (name, kind)) in self.field_type.iter().enumerate() {
            if let Some((_, other)) = self.field_type[..at].iter().find(|(earlier, _)| earlier == name) {
                anyhow::bail!(
                    "--field-type: field {name:?} given twice ({} and {})",
                    other.described(),
                    kind.described()
                );
            }
        }
        Ok(CatalogFormat {
            kind: self.catalog_format,
            id_column: self.id_column.clone(),
            title_column: self.title_column.clone(),
            text_columns: self.text_column.clone(),
            field_columns: self.field_column.clone(),
            list_separator: self.list_separator.clone(),
            field_types: self.field_type.iter().cloned().collect(),
            json_fields: true,
        })
    }
}

#[derive(Args)]
pub(crate) struct InteractionColumns {
    /// Interactions: the user column.
    #[arg(long, default_value = "user")]
    pub(crate) user_column: String,
    /// Interactions: the item column.
    #[arg(long, default_value = "item")]
    pub(crate) item_column: String,
    /// Interactions: the weight column (default `weight` if present, else every row weighs 1).
    #[arg(long)]
    pub(crate) weight_column: Option<String>,
    /// Interactions: the integer timestamp column (default `timestamp` if present); an empty
    /// cell is a time not known.
    #[arg(long)]
    pub(crate) time_column: Option<String>,
}

impl InteractionColumns {
    pub(crate) fn format(&self) -> InteractionFormat {
        InteractionFormat {
            user_column: self.user_column.clone(),
            item_column: self.item_column.clone(),
            weight_column: self.weight_column.clone(),
            time_column: self.time_column.clone(),
        }
    }
}

#[derive(Args)]
pub(crate) struct ModelArgs {
    /// Folder with model.safetensors, config.json and tokenizer.json (see scripts/setup.sh).
    #[arg(long, env = "HYRANK_MODEL_DIR", default_value = "models/all-MiniLM-L6-v2")]
    pub(crate) model_dir: PathBuf,
    /// Device for embeddings: auto, cpu, cuda or cuda:N.
    #[arg(long, env = "HYRANK_DEVICE", default_value = "auto")]
    pub(crate) device: String,
    /// Token limit per item (sentence-transformers uses 256 for this model).
    #[arg(long, default_value_t = hyrank_engine::embed::DEFAULT_MAX_TOKENS)]
    pub(crate) max_tokens: usize,
    /// Items per embedding batch (default: 8 on CPU, 64 on a GPU).
    #[arg(long)]
    pub(crate) batch_size: Option<usize>,
    /// Number format of the transformer: f32; f16 (GPU: f16 throughout; CPU: f16 weights, f32
    /// arithmetic, on hyrank's kernels); bf16 (GPU); int8 (CPU: 8-bit weights, 13-bit inputs,
    /// integer arithmetic on hyrank's kernels); w8a8 (CPU: 8-bit weights and inputs, the
    /// fastest where the CPU has AVX-512 VNNI; vectors a little further from f32's than
    /// int8's, docs/EVAL.md). Indexing:
    /// recorded in the generation (default f32). Serving and evaluating: the generation's by
    /// default; another one is refused.
    #[arg(long, env = "HYRANK_PRECISION")]
    pub(crate) precision: Option<String>,
}

impl ModelArgs {
    pub(crate) fn settings(&self) -> anyhow::Result<EmbedderSettings> {
        let device: DeviceChoice = self.device.parse().context("--device")?;
        anyhow::ensure!(self.batch_size != Some(0), "--batch-size must be at least 1");
        Ok(EmbedderSettings {
            model_dir: self.model_dir.clone(),
            device,
            max_tokens: self.max_tokens,
            batch_size: self.batch_size,
            precision: self.precision.as_deref().map(str::parse).transpose().context("--precision")?,
        })
    }
}

/// `--min-weight` (of `index` and `eval recommend`): a weight a row may have. Below the least
/// a row may weigh the rule keeps every row (and 1e-50, read as f32, was 0 where shown), above
/// the most it keeps none; shown as given when refused.
///
/// # Errors
/// A value outside [`hyrank_engine::live::MIN_WEIGHT`]..=[`hyrank_engine::live::MAX_WEIGHT`], NaN.
pub(crate) fn check_min_weight(min_weight: f64) -> anyhow::Result<()> {
    let (least, most) = (hyrank_engine::live::MIN_WEIGHT, hyrank_engine::live::MAX_WEIGHT);
    anyhow::ensure!(
        (f64::from(least)..=f64::from(most)).contains(&min_weight),
        "--min-weight must be a weight a row may have, from {least:e} to {most}, got {}",
        hyrank_engine::fusion::shown(min_weight)
    );
    Ok(())
}
