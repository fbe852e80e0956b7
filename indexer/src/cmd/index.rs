//! `hyrank index`: its flags, validated into the pipeline's settings; the CF and ALS flags
//! `hyrank eval recommend` shares.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use hyrank_engine::cf::{AlsSettings, EaseSettings};
use hyrank_engine::dense::HnswSettings;
use hyrank_engine::lexical::{
    Analyzer, Bm25Params, FieldAnalysis, FieldCombination, Fuzziness, Language, LexicalSettings, Prefix, SearchField,
};
use hyrank_indexer::cf_choice::{CfChoiceSettings, CfModelChoice, CfValidation};
use hyrank_indexer::{IndexSettings, OnError};

use super::*;

/// `--language`: one of [`Language::ALL`] by name.
fn parse_language(name: &str) -> Result<Language, String> {
    name.parse()
}

/// `--search-fields`: `NAME` or `NAME^WEIGHT` (Elasticsearch's way of weighting a field); the
/// last `^` starts the weight, and a name cannot hold a comma (the flag's separator).
fn parse_search_field(spec: &str) -> Result<SearchField, String> {
    let (name, boost) = match spec.rsplit_once('^') {
        Some((name, weight)) => {
            let boost =
                weight.trim().parse::<f32>().map_err(|_| format!("{spec:?}: the weight after ^ is not a number"))?;
            (name, boost)
        }
        None => (spec, 1.0),
    };
    Ok(SearchField::new(name.trim(), boost))
}

/// `NAME=VALUE` of the per-field flags (`--field-language tags=french`); the last `=` starts
/// the value, as a field name may hold one.
fn parse_field_setting<T>(spec: &str, value: impl Fn(&str) -> Result<T, String>) -> Result<(String, T), String> {
    let (name, v) = spec.rsplit_once('=').ok_or_else(|| format!("{spec:?} is not NAME=VALUE"))?;
    Ok((name.trim().to_string(), value(v.trim())?))
}

/// `--field-language`: `NAME=LANGUAGE`.
fn parse_field_language(spec: &str) -> Result<(String, Language), String> {
    parse_field_setting(spec, parse_language)
}

/// `--field-stemming`, `--field-stop-words`: `NAME=on|off`.
fn parse_field_on_off(spec: &str) -> Result<(String, bool), String> {
    parse_field_setting(spec, parse_on_off)
}

/// `on` or `off`.
fn parse_on_off(value: &str) -> Result<bool, String> {
    match value {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("{value:?} is neither on nor off")),
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum AnalyzerArg {
    Unicode,
    Simple,
}

/// `--bm25-fields`: how BM25 combines the title and the text.
#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum FieldsArg {
    /// BM25F: per-field normalised frequencies summed, then saturated once.
    Bm25f,
    /// Each field scored as its own BM25 document, the scores summed (tantivy's).
    Sum,
}

/// `--bm25-fuzziness`: [`Fuzziness`].
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum FuzzinessArg {
    /// A query word no item holds is read as the words within one edit from 5 characters,
    /// two from 9.
    Auto,
    /// Words are looked up as typed only.
    Off,
}

impl From<FuzzinessArg> for Fuzziness {
    fn from(arg: FuzzinessArg) -> Self {
        match arg {
            FuzzinessArg::Auto => Fuzziness::Auto,
            FuzzinessArg::Off => Fuzziness::Off,
        }
    }
}

impl From<Fuzziness> for FuzzinessArg {
    fn from(fuzziness: Fuzziness) -> Self {
        match fuzziness {
            Fuzziness::Auto => FuzzinessArg::Auto,
            Fuzziness::Off => FuzzinessArg::Off,
        }
    }
}

impl From<FieldsArg> for FieldCombination {
    fn from(arg: FieldsArg) -> Self {
        match arg {
            FieldsArg::Bm25f => FieldCombination::Bm25f,
            FieldsArg::Sum => FieldCombination::Sum,
        }
    }
}

impl From<FieldCombination> for FieldsArg {
    fn from(fields: FieldCombination) -> Self {
        match fields {
            FieldCombination::Bm25f => FieldsArg::Bm25f,
            FieldCombination::Sum => FieldsArg::Sum,
        }
    }
}

impl From<AnalyzerArg> for Analyzer {
    fn from(arg: AnalyzerArg) -> Self {
        match arg {
            AnalyzerArg::Unicode => Analyzer::Unicode,
            AnalyzerArg::Simple => Analyzer::Simple,
        }
    }
}

#[derive(Args)]
pub(crate) struct IndexArgs {
    #[command(flatten)]
    pub(crate) catalog: CatalogArgs,
    /// Interactions CSV with a header (user, item, optional weight and timestamp).
    #[arg(long, env = "HYRANK_INTERACTIONS")]
    pub(crate) interactions: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) interaction_columns: InteractionColumns,
    /// Positive rule, as `eval recommend --min-weight` reads interactions: only rows weighing
    /// at least this, one per user and item, each weighing 1 (`--min-weight 4` on MovieLens'
    /// ratings serves the model `eval recommend --min-weight 4` measured). Rows below are
    /// kept as seen (left out of the user's recommendations; an item only such rows name is
    /// not cold to CF) and
    /// counted in the summary. Without it, every row counts with its weight, summed per user
    /// and item. Live events meet the same rule, on the server from the moment they are
    /// written and in the build that folds them in.
    #[arg(long, allow_negative_numbers = true, requires = "interactions")]
    pub(crate) min_weight: Option<f64>,
    /// Index root: generations are written under it and `CURRENT` points at the newest.
    #[arg(long, value_parser = folder, env = "HYRANK_INDEX_DIR", default_value = "data/index")]
    pub(crate) index_dir: PathBuf,
    /// What to do with bad rows: `fail` publishes nothing, `skip` writes them to rejects.jsonl
    /// and indexes the rest, `skip-empty` does so only for items with neither title nor text
    /// (and rows naming them) and fails on any other fault.
    #[arg(long, value_enum, default_value_t = OnError::Fail)]
    pub(crate) on_error: OnError,
    /// The interactions file already holds the live events (`INDEX_DIR/live/`, written by
    /// `POST /v1/events`): do not fold them in again, but record them as folded, so the
    /// server does not count them on top of this generation either. Without it they are
    /// folded in as interactions after the file's rows. A logged event whose user and item
    /// are in no row of the file is refused and reported (`rejects.jsonl`).
    #[arg(long)]
    pub(crate) no_live_events: bool,
    /// Published generations to keep, this one included; older ones are removed, except the
    /// one `CURRENT` names and any a server (or another process) has open. 0 keeps all.
    #[arg(long, default_value_t = hyrank_indexer::pipeline::DEFAULT_KEEP)]
    pub(crate) keep: usize,
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    #[command(flatten)]
    pub(crate) cf: CfArgs,
    /// BM25 tokenizer: `unicode` (NFKC, diacritic folding, UAX #29 words, CJK bigrams,
    /// over-long tokens split and counted, words joined by punctuation or hyphens indexed as
    /// their parts and written together) or `simple` (tantivy's: splits on non-alphanumerics,
    /// drops tokens over 40 bytes).
    #[arg(long, value_enum, default_value_t = AnalyzerArg::Unicode)]
    pub(crate) analyzer: AnalyzerArg,
    /// BM25: the catalog's language, for stems and stop words (Snowball's stemmers:
    /// arabic, danish, dutch, english, finnish, french, german, greek, hungarian, italian,
    /// norwegian, portuguese, romanian, russian, spanish, swedish, tamil, turkish).
    #[arg(long, default_value = "english", value_parser = parse_language)]
    pub(crate) language: Language,
    /// BM25: drop the language's stop words before stemming (Lucene's 33 for English; unicode
    /// analyzer only; arabic, greek, romanian, tamil and turkish have no list).
    #[arg(long)]
    pub(crate) stop_words: bool,
    /// BM25's k1 (term-frequency saturation, ≥ 0); requests may override it.
    #[arg(long, allow_negative_numbers = true, default_value_t = Bm25Params::default().k1)]
    pub(crate) bm25_k1: f32,
    /// BM25's b (length normalisation, 0 to 1) of the text, and of the title unless
    /// `--bm25-title-b` is given; requests may override it.
    #[arg(long, allow_negative_numbers = true, default_value_t = Bm25Params::default().b)]
    pub(crate) bm25_b: f32,
    /// BM25's b of the title alone (BM25F's per-field b), 0 to 1; requests may override it.
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) bm25_title_b: Option<f32>,
    /// Item vectors embedded in shards (`hyrank embed --shard i/n --out DIR`): read instead of
    /// embedding; a missing shard or one embedded with another model is refused, and items no
    /// shard holds with their current text are embedded here.
    #[arg(long)]
    pub(crate) embeddings: Option<PathBuf>,
    /// After publishing locally, publish the generation to S3-compatible object storage too
    /// (`s3://bucket/prefix` or `file:///folder`, as `hyrank publish --to`), keeping `--keep` generations there.
    #[arg(long)]
    pub(crate) publish_to: Option<String>,
    /// S3 settings of `--publish-to`.
    #[command(flatten)]
    pub(crate) s3: super::ship::S3Args,
    /// Do not reuse the current generation's vector for items whose text is unchanged (done
    /// only when it was embedded with the same model, precision and token limit): every item
    /// is embedded here, or read from the `--embeddings` shards when given.
    #[arg(long)]
    pub(crate) no_reuse_embeddings: bool,
    /// BM25: how the title and the text combine into one score; requests may override it.
    #[arg(long, value_enum, default_value_t = FieldsArg::from(Bm25Params::default().fields))]
    pub(crate) bm25_fields: FieldsArg,
    /// BM25's typo tolerance, the generation's default; requests may override it.
    #[arg(long, value_enum, default_value_t = FuzzinessArg::from(Bm25Params::default().fuzziness))]
    pub(crate) bm25_fuzziness: FuzzinessArg,
    /// BM25: multiplier on title matches.
    #[arg(long, allow_negative_numbers = true, default_value_t = LexicalSettings::default().title_boost)]
    pub(crate) title_boost: f32,
    /// BM25: index words as written (lower-cased) instead of the language's stems.
    #[arg(long)]
    pub(crate) no_stemming: bool,
    /// BM25: the title's own language, where it is not the text's (`--language`). A title
    /// analysed apart from the text needs `--bm25-fields sum`.
    #[arg(long, value_parser = parse_language)]
    pub(crate) title_language: Option<Language>,
    /// BM25: whether the title is stemmed, where it differs from the text.
    #[arg(long, value_name = "on|off", value_parser = parse_on_off)]
    pub(crate) title_stemming: Option<bool>,
    /// BM25: catalog fields searched beside the title and the text, as `NAME` or
    /// `NAME^WEIGHT` separated by commas (`brand^2,tags`; the last `^` starts the weight); text
    /// and list fields only, analysed as the text unless `--field-language`,
    /// `--field-stemming` or `--field-stop-words` say otherwise, at most 30.
    #[arg(long, value_delimiter = ',', value_parser = parse_search_field)]
    pub(crate) search_fields: Vec<SearchField>,
    /// BM25: a searched catalog field's own language, as `NAME=LANGUAGE` (repeat the flag):
    /// tags in another language than the text. Needs `--bm25-fields sum`.
    #[arg(long, value_name = "NAME=LANGUAGE", value_parser = parse_field_language)]
    pub(crate) field_language: Vec<(String, Language)>,
    /// BM25: whether a searched catalog field is stemmed, as `NAME=on|off` (repeat the flag):
    /// `brand=off` matches brand names as written. Needs `--bm25-fields sum`.
    #[arg(long, value_name = "NAME=on|off", value_parser = parse_field_on_off)]
    pub(crate) field_stemming: Vec<(String, bool)>,
    /// BM25: whether a searched catalog field's stop words are dropped, as `NAME=on|off`
    /// (repeat the flag). Needs `--bm25-fields sum`.
    #[arg(long, value_name = "NAME=on|off", value_parser = parse_field_on_off)]
    pub(crate) field_stop_words: Vec<(String, bool)>,
    /// BM25: whether the title's stop words are dropped, where it differs from the text.
    #[arg(long, value_name = "on|off", value_parser = parse_on_off)]
    pub(crate) title_stop_words: Option<bool>,
    /// HNSW: neighbours per node (M).
    #[arg(long, default_value_t = HnswSettings::default().max_connections)]
    pub(crate) hnsw_m: usize,
    /// HNSW: candidate list size while building.
    #[arg(long, default_value_t = HnswSettings::default().ef_construction)]
    pub(crate) ef_construction: usize,
    /// HNSW: candidate list size while searching (raised to k when smaller).
    #[arg(long, default_value_t = HnswSettings::default().ef_search)]
    pub(crate) ef_search: usize,
}

#[derive(Args)]
pub(crate) struct CfArgs {
    /// Which model serves collaborative filtering: `als`, `ease` (refused when its fit would
    /// not fit in memory), or `auto`: each candidate fitted without held-out validation
    /// positives (`--cf-validation`: each user's latest when every positive has a time, else a
    /// random fifth of each user's), the best by nDCG@10 kept (the comparison goes into the
    /// manifest).
    #[arg(long, value_enum, default_value_t = CfModelChoice::default())]
    pub(crate) cf_model: CfModelChoice,
    /// EASE's λ (`auto` also tries 0.25–5 times it).
    #[arg(long, allow_negative_numbers = true, default_value_t = EaseSettings::default().lambda)]
    pub(crate) ease_lambda: f32,
    /// EASE weights kept per item (the largest by magnitude); 0 keeps all items² of them.
    #[arg(long, default_value_t = EaseSettings::default().neighbours)]
    pub(crate) ease_neighbours: usize,
    /// EDLAE's dropout for EASE (0: EASE exactly; `auto` also tries 0.25 and 0.5).
    #[arg(long, allow_negative_numbers = true, default_value_t = EaseSettings::default().dropout)]
    pub(crate) ease_dropout: f32,
    /// EASE's session time scale τ in seconds: two items a user took up |Δt| apart count
    /// `(1 − w) + w·exp(−|Δt|/τ)` in the Gram matrix instead of 1; 0 turns it off.
    #[arg(long, allow_negative_numbers = true, default_value_t = EaseSettings::default().session_seconds)]
    pub(crate) ease_session_seconds: f32,
    /// EASE's session weight w, in [0, 1] (`auto` also tries 0).
    #[arg(long, allow_negative_numbers = true, default_value_t = EaseSettings::default().session_weight)]
    pub(crate) ease_session_weight: f32,
    /// EASE's recency half-life in history positions: the r-th most recent history item
    /// counts 2^(−r/half-life); 0 counts all alike (`auto` also tries 2, 4, 8 and 16).
    #[arg(long, allow_negative_numbers = true, default_value_t = EaseSettings::default().recency_half_life)]
    pub(crate) ease_recency_half_life: f32,
    /// How `--cf-model auto` holds out validation items: `time` (each user's latest
    /// positive), `random` (a fifth of each user's positives), or `auto`: time when every
    /// interaction has a timestamp.
    #[arg(long, value_enum, default_value_t = CfValidation::default())]
    pub(crate) cf_validation: CfValidation,
    /// Memory EASE's fit may hold, in MiB (default: half of what is available at the start).
    #[arg(long)]
    pub(crate) cf_memory_limit: Option<u64>,
    /// Seconds `--cf-model auto` may spend fitting candidates (one of each family is always
    /// tried).
    #[arg(long, default_value_t = hyrank_indexer::cf_choice::DEFAULT_BUDGET_SECS)]
    pub(crate) cf_budget: u64,
    #[command(flatten)]
    pub(crate) als: AlsArgs,
}

impl CfArgs {
    pub(crate) fn settings(&self) -> anyhow::Result<CfChoiceSettings> {
        let ease = EaseSettings {
            lambda: self.ease_lambda,
            neighbours: self.ease_neighbours,
            dropout: self.ease_dropout,
            session_seconds: self.ease_session_seconds,
            session_weight: self.ease_session_weight,
            recency_half_life: self.ease_recency_half_life,
        };
        // The engine's check names the setting (`ease.session_seconds`); the flag is
        // `--ease-session-seconds`.
        if let Err(hyrank_engine::Error::InvalidArgument { field, reason }) = ease.validate() {
            anyhow::bail!("--{}: {reason}", field.replace('.', "-").replace('_', "-"));
        }
        // ALS's too, before anything is embedded (`--factors`, `--regularization`, `--alpha`).
        if let Err(hyrank_engine::Error::InvalidArgument { field, reason }) = self.als.settings().check() {
            anyhow::bail!("--{field}: {reason}");
        }
        Ok(CfChoiceSettings {
            requested: self.cf_model,
            als: self.als.settings(),
            ease,
            memory_limit: match self.cf_memory_limit {
                Some(0) => anyhow::bail!("--cf-memory-limit must be at least 1 (MiB)"),
                limit => limit.map(|mib| mib.saturating_mul(1 << 20)),
            },
            budget: std::time::Duration::from_secs(self.cf_budget),
            seed: self.als.seed,
            validation: self.cf_validation,
        })
    }
}

#[derive(Args)]
pub(crate) struct AlsArgs {
    /// ALS latent factors.
    #[arg(long, default_value_t = AlsSettings::default().factors)]
    pub(crate) factors: usize,
    /// ALS L2 regularisation.
    #[arg(long, allow_negative_numbers = true, default_value_t = AlsSettings::default().regularization)]
    pub(crate) regularization: f32,
    /// ALS confidence scale (confidence = alpha × weight).
    #[arg(long, allow_negative_numbers = true, default_value_t = AlsSettings::default().alpha)]
    pub(crate) alpha: f32,
    /// ALS iterations (at least 1: none leaves the factors at their random start).
    #[arg(long, default_value_t = AlsSettings::default().iterations, value_parser = at_least_one)]
    pub(crate) iterations: usize,
    /// Conjugate-gradient steps per ALS solve (at least 1).
    #[arg(long, default_value_t = AlsSettings::default().cg_steps, value_parser = at_least_one)]
    pub(crate) cg_steps: usize,
    /// Seed for ALS initialisation.
    #[arg(long, default_value_t = AlsSettings::default().seed)]
    pub(crate) seed: u64,
}

impl AlsArgs {
    pub(crate) fn settings(&self) -> AlsSettings {
        AlsSettings {
            factors: self.factors,
            regularization: self.regularization,
            alpha: self.alpha,
            iterations: self.iterations,
            cg_steps: self.cg_steps,
            seed: self.seed,
        }
    }
}

impl IndexArgs {
    /// Validates the flags into the pipeline's settings.
    pub(crate) fn into_settings(self) -> anyhow::Result<IndexSettings> {
        let m = hyrank_engine::dense::MAX_CONNECTIONS;
        anyhow::ensure!(m.contains(&self.hnsw_m), "--hnsw-m must be from {} to {}", m.start(), m.end());
        // Before anything is read, with the rule the lexical settings check again at open.
        if let Some(problem) = hyrank_engine::lexical::boost_problem(self.title_boost) {
            anyhow::bail!("--title-boost: {problem}");
        }
        if let Some(min_weight) = self.min_weight {
            super::shared::check_min_weight(min_weight)?;
        }
        let bm25 = Bm25Params {
            k1: self.bm25_k1,
            b: self.bm25_b,
            title_b: self.bm25_title_b,
            fields: self.bm25_fields.into(),
            fuzziness: self.bm25_fuzziness.into(),
            // A request's choice (search as you type), not the generation's.
            prefix: Prefix::Off,
        };
        bm25.check().context("--bm25-k1/--bm25-b/--bm25-title-b")?;
        anyhow::ensure!(
            !(self.stop_words && matches!(self.analyzer, AnalyzerArg::Simple)),
            "--stop-words needs --analyzer unicode"
        );
        anyhow::ensure!(
            self.language == Language::English || matches!(self.analyzer, AnalyzerArg::Unicode),
            "--language {} needs --analyzer unicode (the simple analyzer stems English only)",
            self.language.name()
        );
        anyhow::ensure!(
            !self.stop_words || self.language.has_stop_words(),
            "--stop-words: there is no stop-word list for {}",
            self.language.name()
        );
        let mut lexical = LexicalSettings {
            title_boost: self.title_boost,
            stemming: !self.no_stemming,
            language: self.language,
            analyzer: self.analyzer.into(),
            bm25,
            stop_words: self.stop_words,
            title_analysis: None,
            search_fields: self.search_fields,
        };
        if self.title_language.is_some() || self.title_stemming.is_some() || self.title_stop_words.is_some() {
            let text = lexical.analysis_of(false);
            let title = FieldAnalysis {
                language: self.title_language.unwrap_or(text.language),
                stemming: self.title_stemming.unwrap_or(text.stemming),
                stop_words: self.title_stop_words.unwrap_or(text.stop_words),
            };
            // A title analysed as the text is no exception (and BM25F may combine them).
            lexical.title_analysis = (title != text).then_some(title);
            anyhow::ensure!(
                lexical.title_analysis.is_none() || lexical.bm25.fields == FieldCombination::Sum,
                "--title-language/--title-stemming/--title-stop-words need --bm25-fields sum: BM25F adds one \
                 term's frequencies across the title and the text, so both must analyse a word alike"
            );
        }
        field_analyses(&mut lexical, &self.field_language, &self.field_stemming, &self.field_stop_words)?;
        lexical.check().context(
            "--title-language/--title-stemming/--title-stop-words/--search-fields/--field-language/--field-stemming/\
             --field-stop-words",
        )?;
        Ok(IndexSettings {
            catalog_format: self.catalog.format()?,
            catalog: self.catalog.catalog,
            interactions: self.interactions,
            interaction_format: self.interaction_columns.format(),
            index_dir: self.index_dir,
            embedder: self.model.settings()?,
            cf: self.cf.settings()?,
            lexical,
            hnsw: HnswSettings {
                max_connections: self.hnsw_m,
                ef_construction: self.ef_construction,
                ef_search: self.ef_search,
            },
            on_error: self.on_error,
            live_events: !self.no_live_events,
            keep: self.keep,
            embeddings: self.embeddings,
            reuse_embeddings: !self.no_reuse_embeddings,
            min_weight: self.min_weight.map(|w| w as f32),
            progress: true,
        })
    }
}

/// Sets each searched catalog field's own analysis from the per-field flags, where it differs
/// from the text's (one analysed as the text is no exception, and BM25F may combine it).
///
/// # Errors
/// A flag naming a field `--search-fields` does not, or one field named twice by a flag.
fn field_analyses(
    lexical: &mut LexicalSettings,
    language: &[(String, Language)],
    stemming: &[(String, bool)],
    stop_words: &[(String, bool)],
) -> anyhow::Result<()> {
    /// The value `flag` gives `field`, if any.
    fn given<T: Copy>(flag: &str, values: &[(String, T)], field: &str) -> anyhow::Result<Option<T>> {
        let mut named = values.iter().filter(|(name, _)| name == field);
        let first = named.next().map(|(_, v)| *v);
        anyhow::ensure!(named.next().is_none(), "{flag}: field {field:?} named twice");
        Ok(first)
    }
    let flags: [(&str, Vec<&str>); 3] = [
        ("--field-language", language.iter().map(|(n, _)| n.as_str()).collect()),
        ("--field-stemming", stemming.iter().map(|(n, _)| n.as_str()).collect()),
        ("--field-stop-words", stop_words.iter().map(|(n, _)| n.as_str()).collect()),
    ];
    for (flag, names) in flags {
        for name in names {
            anyhow::ensure!(
                lexical.search_fields.iter().any(|f| f.name == name),
                "{flag}: {name:?} is not a field --search-fields names"
            );
        }
    }
    let text = lexical.analysis_of(false);
    for field in &mut lexical.search_fields {
        let own = FieldAnalysis {
            language: given("--field-language", language, &field.name)?.unwrap_or(text.language),
            stemming: given("--field-stemming", stemming, &field.name)?.unwrap_or(text.stemming),
            stop_words: given("--field-stop-words", stop_words, &field.name)?.unwrap_or(text.stop_words),
        };
        field.analysis = (own != text).then_some(own);
    }
    anyhow::ensure!(
        lexical.search_fields.iter().all(|f| f.analysis.is_none()) || lexical.bm25.fields == FieldCombination::Sum,
        "--field-language/--field-stemming/--field-stop-words need --bm25-fields sum: BM25F adds one term's \
         frequencies across fields, so all must analyse a word alike"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: IndexArgs,
    }

    /// The settings `hyrank index --catalog c.jsonl ARGS` asks for, or the error it prints.
    fn settings(args: &[&str]) -> Result<LexicalSettings, String> {
        let argv = ["hyrank", "--catalog", "c.jsonl"].into_iter().chain(args.iter().copied());
        let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        cli.args.into_settings().map(|s| s.lexical).map_err(|e| format!("{e:#}"))
    }

    /// A title analysed on its own is asked for by what differs from the text; one analysed as
    /// the text is no exception; BM25F refuses it with the flag that allows it named.
    #[test]
    fn the_title_flags_name_what_differs_from_the_text() {
        let german = settings(&["--bm25-fields", "sum", "--title-language", "german"]).unwrap();
        let expected = FieldAnalysis { language: Language::German, stemming: true, stop_words: false };
        assert_eq!(german.title_analysis, Some(expected));
        let unstemmed = settings(&["--bm25-fields", "sum", "--language", "french", "--title-stemming", "off"]).unwrap();
        let expected = FieldAnalysis { language: Language::French, stemming: false, stop_words: false };
        assert_eq!(unstemmed.title_analysis, Some(expected));
        assert_eq!(settings(&["--title-language", "english"]).unwrap().title_analysis, None, "as the text");
        let error = settings(&["--title-language", "german"]).unwrap_err();
        assert!(error.contains("--title-language") && error.contains("need --bm25-fields sum"), "{error}");
        let error = settings(&["--bm25-fields", "sum", "--title-language", "turkish", "--title-stop-words", "on"]);
        assert!(error.unwrap_err().contains("no stop-word list for turkish"));
        assert!(settings(&["--title-stemming", "maybe"]).unwrap_err().contains("neither on nor off"));
        let b = settings(&["--bm25-title-b", "0.3"]).unwrap().bm25;
        assert_eq!((b.b, b.title_b), (0.75, Some(0.3)));
        assert!(settings(&["--bm25-title-b", "2"]).unwrap_err().contains("bm25.title_b"));
    }

    #[test]
    fn search_fields_take_elasticsearchs_weights() {
        let fields = settings(&["--search-fields", "brand^2,tags", "--search-fields", "model number^0.5"]).unwrap();
        let named: Vec<(&str, f32)> = fields.search_fields.iter().map(|f| (f.name.as_str(), f.boost)).collect();
        assert_eq!(named, [("brand", 2.0), ("tags", 1.0), ("model number", 0.5)]);
        assert!(settings(&["--search-fields", "brand^x"]).unwrap_err().contains("not a number"));
        let error = settings(&["--search-fields", "brand,brand^2"]).unwrap_err();
        assert!(error.contains("--search-fields") && error.contains("named twice"), "{error}");
        assert!(settings(&["--search-fields", "brand^0"]).unwrap_err().contains("not a number above 0 and at most"));
        assert!(settings(&["--search-fields", "brand^NaN"]).unwrap_err().contains("weight NaN is not a number"));
        let error = settings(&["--title-boost", "1e38"]).unwrap_err();
        assert!(error.contains("--title-boost: weight 100000000000000000000000000000000000000 is not a number above 0 and at most 1000"), "{error}");
        let error = settings(&["--field-type", "price=number", "--field-type", "price=text"]).unwrap_err();
        assert!(error.contains("--field-type: field \"price\" given twice (a number and text)"), "{error}");
        assert!(settings(&["--cf-memory-limit", "0"]).unwrap_err().contains("--cf-memory-limit must be at least 1"));
        // ALS's settings are checked before anything is embedded, by flag.
        let error = settings(&["--factors", "100000"]).unwrap_err();
        assert!(error.contains("--factors: must be from 1 to 1024, got 100000"), "{error}");
    }

    /// A catalog field's own analysis is asked for by what differs from the text, for the
    /// fields `--search-fields` names, under `--bm25-fields sum`.
    #[test]
    fn the_field_flags_name_what_differs_from_the_text() {
        let sum = ["--bm25-fields", "sum", "--search-fields", "tags_fr,brand,colour"];
        let with = |more: &[&str]| settings(&[&sum[..], more].concat());
        let set = with(&["--field-language", "tags_fr=french", "--field-stemming", "brand=off"]).unwrap();
        let analyses: Vec<Option<FieldAnalysis>> = set.search_fields.iter().map(|f| f.analysis).collect();
        let french = FieldAnalysis { language: Language::French, stemming: true, stop_words: false };
        let unstemmed = FieldAnalysis { language: Language::English, stemming: false, stop_words: false };
        assert_eq!(analyses, [Some(french), Some(unstemmed), None]);
        let alike = with(&["--field-language", "colour=english", "--field-stop-words", "brand=off"]).unwrap();
        assert!(alike.search_fields.iter().all(|f| f.analysis.is_none()), "as the text");
        let error = with(&["--field-stemming", "size=off"]).unwrap_err();
        assert!(error.contains("--field-stemming") && error.contains("\"size\" is not a field"), "{error}");
        let error = with(&["--field-language", "brand=german", "--field-language", "brand=french"]).unwrap_err();
        assert!(error.contains("named twice"), "{error}");
        let error = with(&["--field-stop-words", "brand=on", "--field-language", "brand=turkish"]).unwrap_err();
        assert!(error.contains("search_fields.brand.analysis.stop_words") && error.contains("turkish"), "{error}");
        assert!(with(&["--field-language", "brand"]).unwrap_err().contains("NAME=VALUE"));
        assert!(with(&["--field-language", "brand=klingon"]).is_err());
        let bm25f = settings(&["--search-fields", "brand", "--field-stemming", "brand=off"]).unwrap_err();
        assert!(bm25f.contains("need --bm25-fields sum"), "{bm25f}");
    }

    /// `--min-weight` takes a weight a row may have: below the least (1e-50 was read as 0 and
    /// shown so) the rule keeps every row, and -1 was taken; above the most it keeps none.
    #[test]
    fn a_min_weight_no_row_could_have_is_refused_as_given() {
        let min_weight = |value: &str| {
            let argv = ["hyrank", "--catalog", "c.jsonl", "--interactions", "i.csv", "--min-weight", value];
            let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
            cli.args.into_settings().map(|s| s.min_weight).map_err(|e| format!("{e:#}"))
        };
        assert_eq!(min_weight("4"), Ok(Some(4.0)));
        for (given, shown) in [("-1", "-1"), ("1e-50", "1e-50"), ("2e6", "2e6"), ("NaN", "NaN")] {
            let refused = min_weight(given).unwrap_err();
            assert!(refused.ends_with(&format!("from 1.1754944e-38 to 1000000, got {shown}")), "{refused}");
        }
    }
}

/// A count that must be at least 1, for clap: 0 would do nothing and be read without a word.
pub(crate) fn at_least_one(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}
