//! The indexing pipeline: read and validate → train CF → embed → build HNSW, BM25 and the store
//! → publish one generation atomically. A failure at any stage leaves the serving generation
//! untouched and removes the half-built folder.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use hyrank_engine::cf::CfModelSettings;
use hyrank_engine::dense::{HnswSettings, Metric, VectorIndex};
use hyrank_engine::generation::files;
use hyrank_engine::generation::{self, Counts, Manifest, Sources, StageTiming};
use hyrank_engine::item::FieldType;
use hyrank_engine::lexical::{LexicalIndex, LexicalSettings};
use hyrank_engine::store::{MetaStore, SledStore};
use hyrank_engine::{Embedder, EmbedderSettings};

use crate::live_fold::{fold_live_events, replay_item_writes, retype_live_rows};
use crate::shards::{Origin, ShardVectors};

use crate::cf_choice::{self, CfChoiceSettings};
use crate::error::{IndexError, Reject, Result};
use crate::input::{read_catalog, read_interactions, CatalogFormat, InteractionFormat};
use crate::progress::Progress;
pub use crate::summary::Summary;
use crate::summary::{peak_memory, sizes};

/// What to do with bad input rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OnError {
    /// Report every bad row and publish nothing.
    #[default]
    Fail,
    /// Write bad rows to the generation's `rejects.jsonl`, count them, index the rest.
    Skip,
    /// As `skip` for items whose title and text are both empty, as `fail` for any other bad
    /// row: judged corpora hold empty documents (BEIR's FiQA does), which no search can find.
    SkipEmpty,
}

impl OnError {
    /// Whether `rejects` stop the build (or a shard's embedding, `hyrank embed`).
    pub fn fails_on(self, rejects: &[Reject]) -> bool {
        match self {
            OnError::Fail => !rejects.is_empty(),
            OnError::Skip => false,
            OnError::SkipEmpty => rejects.iter().any(|r| !r.is_empty_item()),
        }
    }
}

/// Everything one indexing run needs.
#[derive(Debug, Clone)]
pub struct IndexSettings {
    /// Catalog file.
    pub catalog: PathBuf,
    /// How to read it.
    pub catalog_format: CatalogFormat,
    /// Interactions file, if any.
    pub interactions: Option<PathBuf>,
    /// How to read it.
    pub interaction_format: InteractionFormat,
    /// Index root; generations go under it.
    pub index_dir: PathBuf,
    /// Embedding model.
    pub embedder: EmbedderSettings,
    /// Which CF model, with its settings (ALS, EASE, or chosen by validation).
    pub cf: CfChoiceSettings,
    /// BM25 analysis.
    pub lexical: LexicalSettings,
    /// HNSW graphs.
    pub hnsw: HnswSettings,
    /// Bad rows.
    pub on_error: OnError,
    /// Fold in the index's live event log (`INDEX_DIR/live/`) as interactions.
    pub live_events: bool,
    /// Published generations to keep after this one is published (0: all); older ones are
    /// removed unless `CURRENT` names them or a process has them open.
    pub keep: usize,
    /// Report progress: bars on a terminal, a line every 10 s elsewhere (`progress.rs`).
    pub progress: bool,
    /// Item vectors embedded in shards (`hyrank embed --shard i/n --out DIR`, [`crate::shards`]):
    /// read instead of embedding; items no shard holds with their current text are embedded
    /// here. `None`: embed every item.
    pub embeddings: Option<PathBuf>,
    /// Reuse the current generation's vector of every item whose text is unchanged (and that
    /// no shard holds with its text), when that generation was embedded with the same model,
    /// precision and token limit (most nightly rebuilds change few items).
    pub reuse_embeddings: bool,
    /// The positive rule of `eval recommend --min-weight`: only the interactions file's rows
    /// weighing at least this, one per user and item, each weighing 1, so that the served
    /// model is the one evaluated. `None`: every row, weights summed per user and item. Live
    /// events folded in meet the same rule (they are rows appended to the file).
    pub min_weight: Option<f32>,
}

impl IndexSettings {
    /// Settings for a catalog with no interactions, every option at its default.
    pub fn new(catalog: PathBuf, index_dir: PathBuf, embedder: EmbedderSettings) -> Self {
        IndexSettings {
            catalog,
            catalog_format: CatalogFormat::default(),
            interactions: None,
            interaction_format: InteractionFormat::default(),
            index_dir,
            embedder,
            cf: CfChoiceSettings::default(),
            lexical: LexicalSettings::default(),
            hnsw: HnswSettings::default(),
            on_error: OnError::Fail,
            live_events: true,
            keep: DEFAULT_KEEP,
            progress: true,
            embeddings: None,
            reuse_embeddings: true,
            min_weight: None,
        }
    }
}

/// Generations a build keeps by default: the new one and two before it, to roll back to.
pub const DEFAULT_KEEP: usize = 3;

pub(crate) struct Stages {
    timings: Vec<StageTiming>,
    started: Instant,
}

impl Stages {
    fn new() -> Self {
        Stages { timings: Vec::new(), started: Instant::now() }
    }

    pub(crate) fn done(&mut self, stage: &str) {
        let seconds = self.started.elapsed().as_secs_f64();
        tracing::info!(stage, seconds, "stage done");
        self.timings.push(StageTiming { stage: stage.to_string(), seconds });
        self.started = Instant::now();
    }
}

/// The settings this build's data makes moot, which the command line could not know, each
/// logged as a warning: a declared type for a field no item has (a misspelt name, most
/// likely), graph settings for a catalog small enough that dense search scans it exactly, and
/// CF settings when there are no interactions. Judged on the catalog with the items created
/// live (they count towards the exact-scan size, and their fields are the catalog's too) and
/// on the interactions with the live events folded in.
fn moot_settings(settings: &IndexSettings, catalog: &crate::input::Catalog, has_interactions: bool) -> Vec<String> {
    let mut moot = Vec::new();
    for field in settings.catalog_format.field_types.keys().filter(|f| !catalog.field_types.contains_key(*f)) {
        let known: Vec<&str> = catalog.field_types.keys().map(String::as_str).collect();
        moot.push(format!("--field-type {field}: no item has this field (the catalog's fields are {known:?})"));
    }
    let exact = hyrank_engine::dense::EXACT_COSINE_MAX_ITEMS;
    if catalog.items.len() <= exact && settings.hnsw != HnswSettings::default() {
        moot.push(format!(
            "HNSW settings: dense search scans a catalog of at most {exact} items exactly ({} here), so the graph's \
             settings do not change its results (a build of more items uses them)",
            catalog.items.len()
        ));
    }
    if !has_interactions && settings.cf != CfChoiceSettings::default() {
        moot.push(
            "CF settings: there are no interactions (none from a file, none folded from the live log), so no CF \
             model is fit"
                .to_string(),
        );
    }
    for setting in &moot {
        tracing::warn!("{setting}; it has no effect");
    }
    moot
}

/// The generation `CURRENT` names, whose carried live records (`files::LIVE`) every build
/// starts from; `None` in a folder that has published none.
///
/// # Errors
/// A `CURRENT` that names no generation (empty, a path, unreadable), and a missing `CURRENT`
/// while a generation carries live records: building without the records would drop them,
/// and a later prune would remove the last copy. (A missing `CURRENT` beside generations that
/// carry none is a first build that stopped before pointing it: nothing to lose.)
fn previous_generation(root: &Path) -> Result<Option<PathBuf>> {
    let refuse = |path: PathBuf, reason: String| {
        let newest = generation::published(root).ok().and_then(|all| all.last().cloned());
        let newest = newest.and_then(|dir| dir.file_name().map(|n| n.to_string_lossy().into_owned()));
        let hint = newest.map(|n| format!(" (the newest is {n})")).unwrap_or_default();
        IndexError::Engine(hyrank_engine::Error::BadIndex {
            path,
            reason: format!(
                "{reason}. A build starts from the live records the generation CURRENT names carries: write one \
                 generation's name alone in CURRENT{hint}"
            ),
        })
    };
    let pointer = root.join(generation::CURRENT);
    match generation::current(root) {
        Ok(dir) => Ok(Some(dir)),
        // Present: empty, a path, or unreadable (`generation::current` says which).
        Err(hyrank_engine::Error::BadIndex { path, reason }) if pointer.exists() => Err(refuse(path, reason)),
        Err(_) => {
            let carrying: Vec<String> = generation::published(root)
                .unwrap_or_default()
                .iter()
                .filter(|dir| dir.join(files::LIVE).is_file())
                .filter_map(|dir| Some(dir.file_name()?.to_string_lossy().into_owned()))
                .collect();
            match carrying.is_empty() {
                true => Ok(None),
                false => {
                    Err(refuse(pointer, format!("CURRENT is missing, and generations {carrying:?} carry live records")))
                }
            }
        }
    }
}

/// Runs the whole pipeline and publishes a generation.
pub fn build(settings: &IndexSettings) -> Result<Summary> {
    let mut stages = Stages::new();
    let mut catalog = read_catalog(&settings.catalog, &settings.catalog_format)?;
    for (field, numbers, texts) in &catalog.mixed_fields {
        tracing::warn!(
            field = %field,
            numbers,
            texts,
            "field read as text: some rows hold numbers and others words; --field-type {field}=number refuses the others instead"
        );
    }
    if catalog.items.is_empty() && catalog.rejects.is_empty() {
        return Err(IndexError::Input { path: settings.catalog.clone(), reason: "the catalog holds no items".into() });
    }
    stages.done("read catalog");
    // The live log's item writes first (items put through the API added to the catalog or
    // replacing their rows), so that interaction rows may name items created live.
    // The records the serving generation carries, then the log's later ones: the log's older
    // files may have been removed (`live::compact`).
    let previous = previous_generation(&settings.index_dir)?;
    let mut logged = hyrank_engine::live::read_history(&settings.index_dir, previous.as_deref()).map_err(|e| {
        match (e, &previous) {
            // Its carried live records are part of every build, so building without them
            // would drop them: the build stops, and says what to do.
            (hyrank_engine::Error::BadIndex { path, reason }, Some(_)) => {
                IndexError::Engine(hyrank_engine::Error::BadIndex {
                    path,
                    reason: format!(
                        "{reason}. CURRENT names this generation, and a build starts from the live records it carries: restore it, or point CURRENT at an intact generation under generations/"
                    ),
                })
            }
            (e, _) => e.into(),
        }
    })?;
    // The types the generation served before this build stored rows by: an older server named
    // them by their typed hash.
    let served_types = previous
        .as_deref()
        .and_then(|dir| generation::read_manifest(dir).ok())
        .map(|manifest| manifest.field_types)
        .unwrap_or_default();
    let mut writes = replay_item_writes(&mut catalog.items, &catalog.legacy_hashes, &logged, &served_types);
    let live_refused = retype_live_rows(settings, &mut catalog, &logged, &mut writes, &served_types);
    writes.rename(&mut logged);
    // Every field BM25 is to search holds text or lists, in the catalog as typed.
    for wanted in &settings.lexical.search_fields {
        let reason = match catalog.field_types.get(&wanted.name) {
            Some(FieldType::Text | FieldType::List) => continue,
            Some(FieldType::Number) => format!(
                "--search-fields {}: the field holds numbers, and BM25 searches text and lists (filter on numbers instead)",
                wanted.name
            ),
            None => {
                let known: Vec<&str> = catalog.field_types.keys().map(String::as_str).collect();
                format!("--search-fields {}: no item has this field; the catalog's fields are {known:?}", wanted.name)
            }
        };
        return Err(IndexError::Input { path: settings.catalog.clone(), reason });
    }
    let item_index: HashMap<&str, u32> =
        catalog.items.iter().enumerate().map(|(i, item)| (item.id.as_str(), i as u32)).collect();
    let interactions = match &settings.interactions {
        Some(path) => Some(read_interactions(path, &settings.interaction_format, &item_index, &catalog.rejects)?),
        None => None,
    };
    stages.done("read interactions");

    let mut rejects: Vec<Reject> = catalog.rejects.clone();
    rejects.extend(interactions.iter().flat_map(|i| i.rejects.iter().cloned()));
    if settings.on_error.fails_on(&rejects) {
        if settings.on_error == OnError::SkipEmpty {
            // The rows that stopped the build first, ahead of the empty items it would pass
            // over: only the first rejects are shown.
            rejects.sort_by_key(Reject::is_empty_item);
        }
        return Err(IndexError::BadInput { rejects });
    }
    if catalog.items.is_empty() {
        return Err(IndexError::NothingUsable {
            path: settings.catalog.clone(),
            what: "catalog",
            rejects: catalog.rejects.clone(),
        });
    }
    // Live events after the file's rows, as if appended to it: summed per user and item, the
    // latest timestamp kept. An event whose item this catalog lacks is reported, never fatal:
    // catalogs drop items, and the log cannot be edited.
    drop(item_index);
    let (mut interactions, live) = fold_live_events(settings, &catalog.items, &logged, writes, interactions)?;
    // Rows read (the file's, and the log's events as rows), before the positive rule leaves
    // some out and counts the rest once per user and item: the summary's "from N rows".
    let rows_read = interactions.as_ref().map(|i| i.rows.len());
    // The positive rule after the fold: the log's events are rows of the file as if appended
    // to it, so they meet the same rule, and `--no-live-events` compared them with the rows
    // as written (an event whose row is below the minimum is in the file, not missing).
    let below_min_weight = match (settings.min_weight, interactions.as_mut()) {
        (Some(min_weight), Some(read)) if settings.interactions.is_some() => read.keep_positives(min_weight),
        _ => 0,
    };
    let live = live.map(|(mut fold, refused)| {
        fold.values_left_out = live_refused.len();
        rejects.extend(live_refused);
        rejects.extend(refused);
        fold
    });
    let moot = moot_settings(settings, &catalog, interactions.is_some());
    if let Some(i) = &interactions {
        let path = settings.interactions.clone().unwrap_or_default();
        // A file without a weight column weighs every row 1: a rule on weights then reads none.
        let unweighted = i.unweighted.as_ref().map(|unread| {
            format!(
                "the file has no weight column, so every row weighs 1 (columns not read: {unread:?}; name one with \
                 --weight-column)"
            )
        });
        if i.rows.is_empty() && below_min_weight > 0 {
            let min_weight = settings.min_weight.unwrap_or_default();
            let mut reason =
                format!("no row weighs at least --min-weight {min_weight} ({below_min_weight} rows below it)");
            if let Some(unweighted) = &unweighted {
                reason = format!("{reason}: {unweighted}");
            }
            return Err(IndexError::Input { path, reason });
        }
        // Not moot: the rule still keeps each file row once (or none), and live events keep
        // their weights and meet it. Said, since a file's weights were likely meant.
        if let (Some(min_weight), Some(unweighted)) = (settings.min_weight, &unweighted) {
            let what = if min_weight <= 1.0 { "keeps every row, once per user and item" } else { "keeps no row" };
            tracing::warn!("--min-weight {min_weight}: {unweighted}; of the file's rows the rule {what}");
        }
        if i.rows.is_empty() && i.rejects.is_empty() {
            return Err(IndexError::Input { path, reason: "holds no interaction rows".into() });
        }
        if i.rows.is_empty() {
            return Err(IndexError::NothingUsable { path, what: "interaction", rejects: i.rejects.clone() });
        }
    }

    // Load the model before any long stage, so a missing model fails in seconds; so too the
    // shards, refused whole if one is missing or was embedded with another model.
    let embedder = Embedder::load(&settings.embedder)?;
    let mut shard_vectors = match &settings.embeddings {
        Some(dir) => Some(ShardVectors::read(dir, &embedder)?),
        None => None,
    };
    // Then the current generation's, for items the shards (if any) lack with their text.
    let reusable = previous.as_deref().filter(|_| settings.reuse_embeddings);
    if let Some(previous) = reusable.filter(|_| !shard_vectors.as_ref().is_some_and(|s| s.covers(&catalog.items))) {
        // Reuse is a saving, not a requirement: a previous generation that cannot be read
        // only means embedding more.
        let reused = ShardVectors::from_generation(previous, &embedder).unwrap_or_else(|e| {
            tracing::warn!(error = %e, generation = %previous.display(), "not reusing the previous generation's vectors");
            None
        });
        shard_vectors = match (shard_vectors, reused) {
            (Some(mut shards), Some(reused)) => {
                let taken = shards.add_missing(reused, &catalog.items);
                tracing::info!(
                    taken,
                    "vectors of items the shards lack with their text taken from the current generation"
                );
                Some(shards)
            }
            (shards, reused) => shards.or(reused),
        };
    }
    // Items put live were embedded by the server when they were written.
    if settings.reuse_embeddings && logged.iter().any(|r| matches!(r.record, hyrank_engine::live::Record::Put(_))) {
        let mut vectors = shard_vectors.take().unwrap_or_else(ShardVectors::empty);
        let taken = vectors.add_live_puts(&logged, &embedder, &catalog.items);
        tracing::info!(taken, "vectors of items put live taken from the live log");
        shard_vectors = Some(vectors);
    }
    let mut rejects_file = None;
    // The generation this build reads from: it is made current only while CURRENT still names it.
    let based_on = previous.as_deref().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned());
    let (dir, manifest) = generation::build(&settings.index_dir, based_on.as_deref(), |building| {
        // Rejects of logged records name the new generation's carried file, written from
        // `logged` line for line below, under its published name.
        let log = settings.index_dir.join(hyrank_engine::live::LIVE_DIR);
        let carried = building.dir.with_file_name(&building.name).join(files::LIVE);
        let rejects = crate::live_fold::point_at_carried(&rejects, &log, &carried);
        let (counts, rejects, chosen) = build_into(
            settings,
            &building.dir,
            &embedder,
            shard_vectors.as_ref(),
            &catalog.items,
            interactions.as_ref(),
            &rejects,
            &mut stages,
        )?;
        rejects_file = rejects;
        if live.is_some() {
            hyrank_engine::live::write_carried(&building.dir.join(files::LIVE), &logged)?;
        }
        let mut manifest = Manifest {
            format_version: generation::format_version_for(embedder.precision()),
            generation: building.name.clone(),
            built_at_unix: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            model: embedder.identity().clone(),
            max_tokens: settings.embedder.max_tokens,
            precision: embedder.precision(),
            counts: Counts {
                rejected_items: catalog.rejects.len(),
                repeated_items: catalog.repeated_rows,
                rejected_interactions: interactions.as_ref().map_or(0, |i| i.rejects.len()),
                below_min_weight,
                interaction_rows: rows_read.unwrap_or(0),
                ..counts
            },
            lexical: settings.lexical.clone(),
            hnsw: settings.hnsw,
            cf: match &chosen {
                Some(cf_choice::Choice { model: CfModelSettings::Als(als), .. }) => Some(als.clone()),
                _ => None,
            },
            ease: match &chosen {
                Some(cf_choice::Choice { model: CfModelSettings::Ease(ease), .. }) => Some(ease.clone()),
                _ => None,
            },
            cf_selection: chosen.as_ref().map(|c| c.selection.clone()),
            sources: Sources {
                catalog: settings.catalog.display().to_string(),
                catalog_resolved: std::fs::canonicalize(&settings.catalog).ok().map(|p| p.display().to_string()),
                interactions: settings.interactions.as_ref().map(|p| p.display().to_string()),
                min_weight: settings.min_weight.filter(|_| settings.interactions.is_some()),
            },
            stages: Vec::new(),
            reranker: None,
            recommend_reranker: None,
            live: live.clone(),
            field_types: catalog.field_types.clone(),
            files: Default::default(),
        };
        manifest.format_version = generation::format_version_of(&manifest);

        stages.done("publish");
        manifest.stages = std::mem::take(&mut stages.timings);
        Ok::<_, IndexError>(manifest)
    })?;
    let rejects_file = rejects_file.map(|name| dir.join(name));
    // The build is published; a failure to tidy up is reported, not fatal.
    let removed_generations = generation::prune(&settings.index_dir, settings.keep).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "removing old generations");
        Vec::new()
    });
    // Then the live log's files that every generation left folds in and carries.
    match hyrank_engine::live::compact(&settings.index_dir) {
        Ok(removed) if !removed.is_empty() => tracing::info!(files = removed.len(), "removed folded live log files"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "removing folded live log files"),
    }
    Ok(Summary {
        sizes: sizes(&dir),
        peak_memory_bytes: peak_memory(),
        dir,
        manifest,
        rejects_file,
        removed_generations,
        moot_settings: moot,
    })
}

/// Builds every part into `dir`; returns the counts and the rejects file's name if written.
fn build_into(
    settings: &IndexSettings,
    dir: &Path,
    embedder: &Embedder,
    shard_vectors: Option<&ShardVectors>,
    items: &[hyrank_engine::Item],
    interactions: Option<&crate::input::Interactions>,
    rejects: &[Reject],
    stages: &mut Stages,
) -> Result<(Counts, Option<&'static str>, Option<cf_choice::Choice>)> {
    let mut counts = Counts { items: items.len(), ..Counts::default() };
    let store = SledStore::open(&dir.join(files::STORE))?;
    let mut chosen = None;

    if let Some(interactions) = interactions {
        chosen =
            Some(crate::collaborative::build(settings, dir, items.len(), interactions, &store, stages, &mut counts)?);
    }

    let texts: Vec<String> = items.iter().map(hyrank_engine::Item::content).collect();
    let progress = Progress::new(
        settings.progress,
        texts.len() as u64,
        "embed items",
        "embed {bar:40} {pos}/{len} items {per_sec} [{elapsed}<{eta}]",
    );
    let vectors = match shard_vectors {
        None => embedder.embed_many(&texts, |done| progress.set(done as u64))?,
        Some(shards) => {
            // What the shards hold with the text this build sees; the rest embedded here.
            let found: Vec<Option<(&[f32], Origin)>> =
                items.iter().zip(&texts).map(|(item, text)| shards.get(&item.id, text)).collect();
            let count = |origin| found.iter().flatten().filter(|(_, o)| *o == origin).count();
            let (from_shards, reused, from_puts) =
                (count(Origin::Shard), count(Origin::Generation), count(Origin::LivePut));
            let mut vectors: Vec<Option<Vec<f32>>> = found.iter().map(|f| f.map(|(v, _)| v.to_vec())).collect();
            let missing: Vec<usize> = (0..items.len()).filter(|&i| vectors[i].is_none()).collect();
            let missing_texts: Vec<String> = missing.iter().map(|&i| texts[i].clone()).collect();
            let taken = items.len() - missing.len();
            progress.set(taken as u64);
            let embedded = embedder.embed_many(&missing_texts, |done| progress.set((taken + done) as u64))?;
            for (i, vector) in missing.iter().zip(embedded) {
                vectors[*i] = Some(vector);
            }
            tracing::info!(
                shards = shards.shards,
                from_shards,
                reused,
                from_puts,
                embedded = missing.len(),
                "item vectors taken where the text is unchanged (from shards, the current generation or a live \
                 put); the rest embedded here"
            );
            if shards.shards > 0 && !missing.is_empty() {
                // --embeddings was asked to spare this build the model: items it still had to
                // embed (shards of another catalog, texts changed since, no vector reused for
                // them) are worth a warning.
                tracing::warn!(
                    embedded_here = missing.len(),
                    "{} of {} items were in no shard with their current text, and no vector was reused for them: \
                     embedded here",
                    missing.len(),
                    items.len()
                );
            }
            vectors.into_iter().map(|v| v.expect("every item has a vector")).collect()
        }
    };
    progress.finish();
    stages.done("embed items");

    let flat: Vec<f32> = vectors.into_iter().flatten().collect();
    let dense = VectorIndex::build(flat, embedder.dim(), Metric::Cosine, settings.hnsw)?;
    dense.save(dir, files::DENSE)?;
    stages.done("build dense index");
    if let Some(choice) = chosen.as_mut().filter(|c| c.validated.is_some()) {
        cf_choice::tune_content_weight(choice, &dense)?;
        stages.done("choose content weight");
        if let Some(weight) = choice.selection.content_weight {
            tracing::info!(weight, "content weight of hybrid recommendations, validated");
        }
    }

    let lexical_dir = dir.join(files::LEXICAL);
    std::fs::create_dir(&lexical_dir)
        .map_err(|e| hyrank_engine::Error::io(format!("creating {}", lexical_dir.display()), e))?;
    LexicalIndex::build(
        &lexical_dir,
        items.iter().enumerate().map(|(i, item)| (i as u32, item)),
        settings.lexical.clone(),
    )?;
    if settings.lexical.analyzer == hyrank_engine::lexical::Analyzer::Unicode {
        use hyrank_engine::analysis::long_tokens;
        // The title, the text, and the strings of the catalog fields BM25 searches.
        let searched = |item: &hyrank_engine::item::Item| -> usize {
            let fields = settings.lexical.search_fields.iter().filter_map(|f| item.fields.get(&f.name));
            fields
                .map(|value| match value {
                    hyrank_engine::item::FieldValue::Text(text) => long_tokens(text),
                    hyrank_engine::item::FieldValue::List(values) => values.iter().map(|v| long_tokens(v)).sum(),
                    hyrank_engine::item::FieldValue::Number(_) => 0,
                })
                .sum()
        };
        counts.long_tokens_split =
            items.iter().map(|i| long_tokens(&i.title) + long_tokens(&i.text) + searched(i)).sum();
        if counts.long_tokens_split > 0 {
            tracing::warn!(
                tokens = counts.long_tokens_split,
                "tokens longer than {} characters were indexed as pieces",
                hyrank_engine::analysis::MAX_TOKEN_CHARS
            );
        }
    }
    stages.done("build bm25 index");

    for (i, item) in items.iter().enumerate() {
        store.put_item(i as u32, item)?;
    }
    store.flush()?;
    drop(store);
    stages.done("write store");

    let rejects_file = if rejects.is_empty() {
        None
    } else {
        let path = dir.join(files::REJECTS);
        let lines: String = rejects
            .iter()
            .map(|r| serde_json::to_string(r).map(|l| l + "\n"))
            .collect::<Result<_, _>>()
            .map_err(|source| hyrank_engine::Error::Json { context: "encoding rejects".into(), source })?;
        std::fs::write(&path, lines).map_err(|e| hyrank_engine::Error::io(format!("writing {}", path.display()), e))?;
        Some(files::REJECTS)
    };
    Ok((counts, rejects_file, chosen))
}
