//! `hyrank train-reranker`: its flags and the run.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use hyrank_engine::cross::CrossEncoderSettings;
use hyrank_indexer::train::defaults;

use super::*;

#[derive(Args)]
pub(crate) struct TrainRerankerArgs {
    /// Index folder; its current generation supplies the catalog and the negatives.
    #[arg(long, value_parser = folder)]
    pub(crate) index_dir: PathBuf,
    #[command(flatten)]
    pub(crate) model: ModelArgs,
    /// Judgments: a qrels TSV (`query-id corpus-id score`), with --queries.
    #[arg(long, requires = "queries", conflicts_with = "clicks")]
    pub(crate) qrels: Option<PathBuf>,
    /// Query texts for --qrels: JSON lines with `_id` and `text`.
    #[arg(long)]
    pub(crate) queries: Option<PathBuf>,
    /// A click log: `query<TAB>item<TAB>clicked` (1 or 0) per line.
    #[arg(long, conflicts_with = "interactions")]
    pub(crate) clicks: Option<PathBuf>,
    /// Train a recommendation reranker on the generation's own interactions: each user's latest
    /// items are the positives, the titles of what came just before are the query.
    #[arg(long, conflicts_with_all = ["qrels", "queries"])]
    pub(crate) interactions: bool,
    /// With --interactions: titles of the user's most recent items in the context.
    #[arg(long, default_value_t = defaults::CONTEXT_TITLES)]
    pub(crate) context_titles: usize,
    /// With --interactions: latest items held out per user as positives.
    #[arg(long, default_value_t = defaults::TARGETS_PER_USER)]
    pub(crate) targets_per_user: usize,
    /// Transformer layers kept frozen (from the bottom; MiniLM has 6).
    #[arg(long, default_value_t = CrossEncoderSettings::DEFAULT.frozen_layers)]
    pub(crate) frozen_layers: usize,
    /// Token limit of a query and item together (with --prettr-item-tokens: of each alone).
    #[arg(long, default_value_t = CrossEncoderSettings::DEFAULT.max_tokens)]
    pub(crate) pair_tokens: usize,
    /// PreTTR: the frozen layers read query and item apart, each item's states after them are
    /// stored for its first N tokens (int8, about (384 + 4) × N bytes per item), and only the
    /// trained layers read the pair: a query pays for its own frozen pass and the trained
    /// layers over the pairs. 0: the joint model, whose frozen layers read each pair (no
    /// stored states, about 7× the CPU time per query).
    #[arg(long, value_name = "N", default_value_t = CrossEncoderSettings::DEFAULT.item_tokens.unwrap_or(0))]
    pub(crate) prettr_item_tokens: usize,
    /// Most epochs (validation may stop earlier).
    #[arg(long, default_value_t = defaults::EPOCHS)]
    pub(crate) epochs: usize,
    /// Epochs without a validation gain before stopping.
    #[arg(long, default_value_t = defaults::PATIENCE)]
    pub(crate) patience: usize,
    /// Learning rate of the trained transformer layers.
    #[arg(long, allow_negative_numbers = true, default_value_t = defaults::LEARNING_RATE)]
    pub(crate) learning_rate: f64,
    /// Learning rate of the new head (its weights start at 20 per dimension, so it moves in
    /// larger steps than the layers).
    #[arg(long, allow_negative_numbers = true, default_value_t = defaults::HEAD_LEARNING_RATE)]
    pub(crate) head_learning_rate: f64,
    /// Distil from the generation's trained search reranker: the weight α of the teacher's
    /// listwise KL against the labels' loss, `(1 − α)·label + α·T²·KL` (0: labels only). Train
    /// a smaller student this way (fewer item tokens, a shorter pair) from a larger reranker.
    #[arg(long, allow_negative_numbers = true, default_value_t = defaults::DISTIL_WEIGHT)]
    pub(crate) distil_weight: f64,
    /// Distillation temperature T.
    #[arg(long, allow_negative_numbers = true, default_value_t = defaults::DISTIL_TEMPERATURE)]
    pub(crate) distil_temperature: f64,
    /// Groups (a positive and its negatives) per optimiser step.
    #[arg(long, default_value_t = defaults::GROUPS_PER_STEP)]
    pub(crate) groups_per_step: usize,
    /// Loss over each group.
    #[arg(long, value_enum, default_value_t = hyrank_indexer::train::Loss::Listwise)]
    pub(crate) loss: hyrank_indexer::train::Loss,
    /// Hard negatives per positive, from the hybrid top --mine-depth.
    #[arg(long, default_value_t = defaults::HARD_NEGATIVES)]
    pub(crate) hard_negatives: usize,
    /// Random negatives per positive.
    #[arg(long, default_value_t = defaults::RANDOM_NEGATIVES)]
    pub(crate) random_negatives: usize,
    /// Depth of the hybrid ranking hard negatives are drawn from.
    #[arg(long, default_value_t = defaults::MINE_DEPTH)]
    pub(crate) mine_depth: usize,
    /// Fraction of queries (of users, with --interactions) held out for validation.
    #[arg(long, allow_negative_numbers = true, default_value_t = defaults::VALIDATION_FRACTION)]
    pub(crate) validation_fraction: f64,
    /// What stays on one side of the validation split: `queries` (the default) splits query by
    /// query, right when traffic repeats the judged items; `items` keeps queries that share a
    /// relevant item together, so validation measures items never trained on (traffic about
    /// new items). Replayed users are always one group each.
    #[arg(long, value_enum, default_value_t = hyrank_indexer::train::ValidationSplit::Queries,
          conflicts_with = "interactions")]
    pub(crate) validation_split: hyrank_indexer::train::ValidationSplit,
    /// Train on at most this many queries (a CPU-sized run; at least 1).
    #[arg(long, value_parser = super::index::at_least_one)]
    pub(crate) max_train_queries: Option<usize>,
    /// Candidates reranked in validation and, by default, in search.
    #[arg(long, default_value_t = defaults::DEPTH)]
    pub(crate) depth: usize,
    /// Seed of the split, sampling and initialisation.
    #[arg(long, default_value_t = defaults::SEED)]
    pub(crate) seed: u64,
    /// Published generations to keep, the new one included; older ones are removed, except
    /// the one `CURRENT` names and any a server (or another process) has open. 0 keeps all.
    #[arg(long, default_value_t = hyrank_indexer::pipeline::DEFAULT_KEEP)]
    pub(crate) keep: usize,
}

pub(crate) fn train_reranker(args: TrainRerankerArgs) -> anyhow::Result<()> {
    use hyrank_indexer::train::{Supervision, TrainSettings};
    let supervision = match (args.qrels, args.queries, args.clicks, args.interactions) {
        (Some(qrels), Some(queries), None, false) => Supervision::Judgments { queries, qrels },
        (None, None, Some(clicks), false) => Supervision::Clicks(clicks),
        (None, None, None, true) => {
            Supervision::Interactions { context_titles: args.context_titles, targets_per_user: args.targets_per_user }
        }
        // clap refuses the other pairs (--qrels needs --queries and conflicts with --clicks;
        // --interactions with both): left is --queries without --qrels.
        (None, Some(_), clicks, _) => anyhow::bail!(
            "--queries gives the texts of --qrels' judged queries and has no effect without --qrels{}",
            if clicks.is_some() { " (a click log holds its queries' texts): drop --queries" } else { "" }
        ),
        _ => anyhow::bail!("give one of: --qrels with --queries, --clicks, or --interactions"),
    };
    let mut settings = TrainSettings::new(args.index_dir, args.model.settings()?, supervision);
    settings.shape = CrossEncoderSettings {
        frozen_layers: args.frozen_layers,
        max_tokens: args.pair_tokens,
        item_tokens: Some(args.prettr_item_tokens).filter(|&n| n > 0),
    };
    settings.epochs = args.epochs;
    settings.patience = args.patience;
    settings.learning_rate = args.learning_rate;
    settings.head_learning_rate = args.head_learning_rate;
    settings.groups_per_step = args.groups_per_step;
    settings.distil_weight = args.distil_weight;
    settings.distil_temperature = args.distil_temperature;
    settings.loss = args.loss;
    settings.hard_negatives = args.hard_negatives;
    settings.random_negatives = args.random_negatives;
    settings.mine_depth = args.mine_depth;
    settings.validation_fraction = args.validation_fraction;
    settings.validation_split = args.validation_split;
    settings.max_train_queries = args.max_train_queries;
    settings.depth = args.depth;
    settings.seed = args.seed;
    settings.progress = true;
    settings.keep = args.keep;
    let summary = hyrank_indexer::train::train(&settings).context("training the reranker failed")?;
    println!("published {}", summary.dir.display());
    for removed in &summary.removed_generations {
        println!("removed old generation {}", removed.display());
    }
    println!("{}", serde_json::to_string_pretty(&summary.reranker)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: TrainRerankerArgs,
    }

    fn parse(args: &[&str]) -> Result<TrainRerankerArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("hyrank").chain(args.iter().copied())).map(|cli| cli.args)
    }

    /// Replayed users are always split by user: asking for another split with them is an
    /// error, while the default value alone is not.
    #[test]
    fn the_validation_split_is_refused_with_interactions() {
        assert!(parse(&["--index-dir", "x", "--interactions"]).is_ok());
        let refused = parse(&["--index-dir", "x", "--interactions", "--validation-split", "queries"]);
        assert_eq!(refused.err().map(|e| e.kind()), Some(clap::error::ErrorKind::ArgumentConflict));
        let judged = ["--index-dir", "x", "--qrels", "q.tsv", "--queries", "q.jsonl", "--validation-split", "items"];
        assert!(parse(&judged).is_ok_and(|args| args.validation_split == hyrank_indexer::train::ValidationSplit::Items));
    }

    /// `--queries` beside `--clicks` is refused naming `--queries` and why, before any work.
    #[test]
    fn queries_without_qrels_are_named() {
        let args = parse(&["--index-dir", "/nonexistent", "--clicks", "c.tsv", "--queries", "q.jsonl"]).unwrap();
        let error = train_reranker(args).unwrap_err().to_string();
        assert!(
            error.starts_with("--queries gives the texts of --qrels' judged queries")
                && error.contains("drop --queries"),
            "{error}"
        );
        let args = parse(&["--index-dir", "/nonexistent", "--queries", "q.jsonl"]).unwrap();
        assert!(train_reranker(args).unwrap_err().to_string().ends_with("no effect without --qrels"));
    }
}
