//! Shared set-up for the end-to-end tests in `integration/`: paths to the shipped fixtures and
//! the model, and settings to index them quickly.

use std::path::{Path, PathBuf};

use hyrank_engine::cf::AlsSettings;
use hyrank_engine::{DeviceChoice, EmbedderSettings};
use hyrank_indexer::cf_choice::{CfChoiceSettings, CfModelChoice};
use hyrank_indexer::IndexSettings;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A file under `fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    root().join("fixtures").join(name)
}

/// The model folder: `HYRANK_MODEL_DIR`, else the one `scripts/setup.sh` unpacks. Panics with
/// the fix when it is missing: these tests never pass by skipping.
pub fn model_dir() -> PathBuf {
    let dir = std::env::var_os("HYRANK_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("models/all-MiniLM-L6-v2"));
    assert!(dir.join("model.safetensors").is_file(), "model not found at {}: run scripts/setup.sh", dir.display());
    dir
}

/// CPU embedding settings for tests.
pub fn embedder_settings() -> EmbedderSettings {
    EmbedderSettings { device: DeviceChoice::Cpu, ..EmbedderSettings::new(model_dir()) }
}

/// Settings that index the fixture catalog and interactions into `index_dir`.
pub fn fixture_settings(index_dir: PathBuf) -> IndexSettings {
    IndexSettings {
        interactions: Some(fixture("interactions.csv")),
        cf: CfChoiceSettings {
            requested: CfModelChoice::Als,
            als: AlsSettings { factors: 32, iterations: 10, alpha: 2.0, ..AlsSettings::default() },
            ..CfChoiceSettings::default()
        },
        progress: false,
        ..IndexSettings::new(fixture("catalog.jsonl"), index_dir, embedder_settings())
    }
}

/// Rewrites the generation manifest in `dir` (`dir/manifest.json`) as `edit` changes its JSON,
/// standing in for another build's (another model, precision, reranker shape). The file is
/// written pretty-printed, as a build writes it.
pub fn edit_manifest(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("manifest.json");
    let mut manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut manifest);
    std::fs::write(&path, serde_json::to_string_pretty(&manifest).unwrap()).unwrap();
}
