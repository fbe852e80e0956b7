//! Flags given on the command line that the rest of the command line makes moot: an ALS
//! setting under `--cf-model ease`, a CSV column under a JSON Lines catalog, a random split's
//! seed under `--split time`. Each is refused, naming the flag and what makes it moot, as
//! `--stop-words` under `--analyzer simple` is: a flag read without effect and without a word
//! is a setting the user believes in and does not have. Only what the command line alone
//! decides is refused here; what depends on the data (HNSW settings on a catalog small enough
//! to be scanned exactly, a declared field no item has) is a warning of the build's.

use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::ArgMatches;
use hyrank_engine::generation;
use hyrank_indexer::cf_choice::CfModelChoice;
use hyrank_indexer::eval::recommend::SplitKind;
use hyrank_indexer::{CatalogFormat, CatalogKind};

/// ALS's flags (`--seed` aside: `auto` seeds its validation split with it too).
const ALS: [&str; 5] = ["factors", "regularization", "alpha", "iterations", "cg_steps"];

/// EASE's flags.
const EASE: [&str; 7] = [
    "ease_lambda",
    "ease_neighbours",
    "ease_dropout",
    "ease_session_seconds",
    "ease_session_weight",
    "ease_recency_half_life",
    "cf_memory_limit",
];

/// The flags of `--cf-model auto`'s choice between models.
const CHOICE: [&str; 2] = ["cf_validation", "cf_budget"];

/// The flags that say how to read a CSV catalog.
const CSV: [&str; 5] = ["id_column", "title_column", "text_column", "field_column", "list_separator"];

/// The flags that say how to read the interactions file.
const INTERACTION_COLUMNS: [&str; 4] = ["user_column", "item_column", "weight_column", "time_column"];

/// The S3 client's flags (`index --publish-to`, `publish`, `pull`).
const S3: [&str; 6] =
    ["s3_endpoint", "s3_region", "s3_access_key_id", "s3_secret_access_key", "s3_allow_http", "s3_config"];

/// The random split's flags of `eval recommend`.
const RANDOM_SPLIT: [&str; 2] = ["test_fraction", "split_seed"];

/// Refuses the flags of the subcommand `matches` holds that the rest of its command line makes
/// moot.
///
/// # Errors
/// The first moot group found, its flags and the reason named.
pub(crate) fn refuse_moot_flags(matches: &ArgMatches) -> anyhow::Result<()> {
    match matches.subcommand() {
        Some(("index", m)) => {
            catalog(m)?;
            cf_model(m)?;
            if m.get_one::<PathBuf>("interactions").is_none() {
                refuse(m, &INTERACTION_COLUMNS, "there is no --interactions file")?;
                let why = "it says the --interactions file holds the logged events, and there is none";
                refuse(m, &["no_live_events"], why)?;
            }
            if m.get_one::<String>("publish_to").is_none() {
                // From the environment they stay a warning (main.rs): variables set for
                // `publish` and `pull` are no mistake on a build that publishes nowhere.
                refuse(m, &S3, "there is no --publish-to")?;
            }
            Ok(())
        }
        Some(("embed", m)) => catalog(m),
        Some(("eval", eval)) => match eval.subcommand() {
            Some(("recommend", m)) => {
                catalog(m)?;
                cf_model(m)?;
                if m.get_one::<SplitKind>("split") == Some(&SplitKind::Time) {
                    refuse(
                        m,
                        &RANDOM_SPLIT,
                        "--split time holds out each user's latest positive, drawing nothing at random",
                    )?;
                }
                Ok(())
            }
            Some(("search", m)) => {
                token_limit(m)?;
                let Some(dir) = m.get_one::<PathBuf>("index_dir") else { return Ok(()) };
                if generation::current(dir).is_err() {
                    return Ok(());
                }
                let why = format!(
                    "{} already holds a generation, and eval search indexes only a folder without one",
                    dir.display()
                );
                refuse(m, &["on_error"], &why)
            }
            _ => Ok(()),
        },
        Some(("train-reranker", m)) => {
            token_limit(m)?;
            if !m.get_flag("interactions") {
                let why = "they say how to replay the generation's interactions, and there is no --interactions";
                refuse(m, &["context_titles", "targets_per_user"], why)?;
            }
            if m.get_one::<f64>("distil_weight") == Some(&0.0) {
                refuse(m, &["distil_temperature"], "--distil-weight 0 distils nothing")?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// `--max-tokens` against a generation already built: its items were embedded at its own
/// limit, and queries are truncated there too (`Engine::open`), so another limit is moot.
fn token_limit(m: &ArgMatches) -> anyhow::Result<()> {
    if m.value_source("max_tokens") != Some(ValueSource::CommandLine) {
        return Ok(());
    }
    let (Some(dir), Some(&asked)) = (m.get_one::<PathBuf>("index_dir"), m.get_one::<usize>("max_tokens")) else {
        return Ok(());
    };
    let Some(manifest) = generation::current(dir).ok().and_then(|g| generation::read_manifest(&g).ok()) else {
        return Ok(());
    };
    anyhow::ensure!(
        asked == manifest.max_tokens,
        "--max-tokens {asked} would have no effect: the generation in {} embedded its items at {} tokens, and its \
         queries are truncated at the same limit (a limit of its own applies when a build embeds the items)",
        dir.display(),
        manifest.max_tokens
    );
    Ok(())
}

/// The CSV flags under a catalog read as JSON Lines.
fn catalog(m: &ArgMatches) -> anyhow::Result<()> {
    let Some(path) = m.get_one::<PathBuf>("catalog") else { return Ok(()) };
    let kind = m.get_one::<CatalogKind>("catalog_format").copied();
    match (CatalogFormat { kind, ..CatalogFormat::default() }).kind_of(path) {
        CatalogKind::Csv => Ok(()),
        CatalogKind::Jsonl => {
            // A separated file named otherwise (MovieLens 1M's movies.dat): say so now, not
            // after a second try with --catalog-format csv. The first line is enough to tell.
            let layout = hyrank_indexer::input::first_line(path)
                .map(|line| hyrank_indexer::input::not_json_lines(&line))
                .unwrap_or_default();
            refuse(
                m,
                &CSV,
                &format!(
                    "{} is read as JSON Lines (by {}), whose items name their own id, title, text and fields{layout}",
                    path.display(),
                    if kind.is_some() {
                        "--catalog-format"
                    } else {
                        "its name: a CSV catalog's ends in .csv, .csv.gz or .csv.zst"
                    }
                ),
            )
        }
    }
}

/// One model's flags under `--cf-model` naming the other, and the choice's flags under either.
fn cf_model(m: &ArgMatches) -> anyhow::Result<()> {
    match m.get_one::<CfModelChoice>("cf_model") {
        Some(CfModelChoice::Als) => {
            refuse(m, &EASE, "--cf-model als fits no EASE model")?;
            refuse(m, &CHOICE, "--cf-model als chooses nothing")
        }
        Some(CfModelChoice::Ease) => {
            refuse(m, &ALS, "--cf-model ease fits no ALS model")?;
            refuse(m, &["seed"], "--cf-model ease fits no ALS model and draws no validation split")?;
            refuse(m, &CHOICE, "--cf-model ease chooses nothing")
        }
        _ => Ok(()),
    }
}

/// Refuses those of `ids` given on the command line, for `why`.
fn refuse(m: &ArgMatches, ids: &[&str], why: &str) -> anyhow::Result<()> {
    let given: Vec<String> = ids
        .iter()
        .filter(|id| m.value_source(id) == Some(ValueSource::CommandLine))
        .map(|id| format!("--{}", id.replace('_', "-")))
        .collect();
    match given.as_slice() {
        [] => Ok(()),
        [flag] => anyhow::bail!("{flag} would have no effect: {why}"),
        flags => anyhow::bail!("{} would have no effect: {why}", flags.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;
    // The binary's own command line, so the rules are checked against the flags it has.
    use crate::Cli;

    /// What `refuse_moot_flags` says of `hyrank ARGS`: `Ok` or the message.
    fn check(args: &str) -> Result<(), String> {
        let argv = std::iter::once("hyrank").chain(args.split_whitespace());
        let matches = Cli::command().try_get_matches_from(argv).map_err(|e| e.to_string())?;
        refuse_moot_flags(&matches).map_err(|e| e.to_string())
    }

    /// A negative value of an unsigned option is refused naming the option (clap read `-1` as
    /// an unknown flag, naming none), and a negative number where one is allowed still reads.
    #[test]
    fn a_negative_value_is_refused_naming_its_option() {
        let parse = |args: &str| {
            let argv = std::iter::once("hyrank").chain(args.split_whitespace());
            super::super::negative_numbers_are_values(Cli::command()).try_get_matches_from(argv).map(|_| ())
        };
        let error = parse("index --catalog c.jsonl --keep -1").unwrap_err().to_string();
        assert!(error.contains("'-1' for '--keep <KEEP>'"), "{error}");
        assert!(parse("index --catalog c.jsonl --bm25-k1 -0.5").is_ok(), "a value the option's bound refuses later");
    }

    /// Every flag the rules name is one of the command's: an id no argument has would never be
    /// given, so its rule would never refuse.
    #[test]
    fn the_rules_name_flags_the_commands_have() {
        let cli = Cli::command();
        let has = |path: &[&str], id: &str| {
            let mut command = &cli;
            for name in path {
                command = command.find_subcommand(name).unwrap();
            }
            command.get_arguments().any(|a| a.get_id() == id)
        };
        let groups: [&[&str]; 5] = [&ALS, &EASE, &CHOICE, &CSV, &INTERACTION_COLUMNS];
        let read = ["seed", "catalog", "catalog_format", "cf_model", "interactions", "no_live_events", "publish_to"];
        for id in groups.concat().into_iter().chain(S3).chain(read) {
            assert!(has(&["index"], id), "index --{id}");
        }
        let read = ["split", "seed", "catalog", "catalog_format", "cf_model"];
        for id in [&ALS[..], &EASE, &CHOICE, &CSV, &RANDOM_SPLIT, &read].concat() {
            assert!(has(&["eval", "recommend"], id), "eval recommend --{id}");
        }
        for id in ["catalog", "catalog_format"].into_iter().chain(CSV) {
            assert!(has(&["embed"], id), "embed --{id}");
        }
        for id in ["max_tokens", "index_dir", "on_error"] {
            assert!(has(&["eval", "search"], id), "eval search --{id}");
        }
        for id in [
            "max_tokens",
            "index_dir",
            "interactions",
            "context_titles",
            "targets_per_user",
            "distil_weight",
            "distil_temperature",
        ] {
            assert!(has(&["train-reranker"], id), "train-reranker --{id}");
        }
    }

    #[test]
    fn one_models_flags_under_the_other_are_refused() {
        let error = check("index --catalog c.jsonl --cf-model ease --factors 32 --alpha 2").unwrap_err();
        assert_eq!(error, "--factors, --alpha would have no effect: --cf-model ease fits no ALS model");
        let error = check("index --catalog c.jsonl --cf-model als --ease-lambda 300").unwrap_err();
        assert!(error.starts_with("--ease-lambda would have no effect: --cf-model als"), "{error}");
        let error = check("index --catalog c.jsonl --cf-model als --cf-budget 10").unwrap_err();
        assert!(error.starts_with("--cf-budget would have no effect"), "{error}");
        assert!(check("index --catalog c.jsonl --cf-model ease --seed 3").unwrap_err().contains("--seed"));
        // `auto` fits both, and a model's own flags are its own.
        check("index --catalog c.jsonl --factors 32 --ease-lambda 300 --cf-budget 10 --seed 3").unwrap();
        check("index --catalog c.jsonl --cf-model als --factors 32 --seed 3").unwrap();
        check("index --catalog c.jsonl --cf-model ease --ease-lambda 300").unwrap();
        let error = check("index --catalog c.jsonl --time-column ts").unwrap_err();
        assert_eq!(error, "--time-column would have no effect: there is no --interactions file");
        check("index --catalog c.jsonl --interactions r.csv --time-column ts").unwrap();
        let error = check("index --catalog c.jsonl --no-live-events").unwrap_err();
        assert!(error.starts_with("--no-live-events would have no effect: it says the --interactions file"), "{error}");
        check("index --catalog c.jsonl --interactions r.csv --no-live-events").unwrap();
        let error = check("index --catalog c.jsonl --s3-region eu-west-1").unwrap_err();
        assert_eq!(error, "--s3-region would have no effect: there is no --publish-to");
        check("index --catalog c.jsonl --publish-to s3://b/p --s3-region eu-west-1").unwrap();
        // Items put live keep the vector the server logged unless reuse is off, shards or not.
        check("index --catalog c.jsonl --embeddings shards --no-reuse-embeddings").unwrap();
        let error = check("eval recommend --catalog c.csv --interactions r.csv --out o --cf-model ease --iterations 5");
        assert!(error.unwrap_err().starts_with("--iterations would have no effect"));
    }

    #[test]
    fn csv_flags_under_a_json_lines_catalog_are_refused() {
        let error = check("index --catalog items.jsonl --title-column name --list-separator |").unwrap_err();
        assert!(error.starts_with("--title-column, --list-separator would have no effect: items.jsonl"), "{error}");
        assert!(error.contains("by its name"), "{error}");
        let error = check("embed --catalog items.csv --catalog-format jsonl --id-column sku --shard 1/2 --out o");
        assert!(error.unwrap_err().contains("by --catalog-format"));
        check("index --catalog items.CSV.gz --title-column name --list-separator |").unwrap();
        check("index --catalog items.txt --catalog-format csv --id-column sku").unwrap();
        // A separated file named otherwise is named as such at once, with the converter.
        let dir = tempfile::tempdir().unwrap();
        let movies = dir.path().join("movies.dat");
        std::fs::write(&movies, "1::Toy Story (1995)::Adventure|Animation|Children|Comedy\n").unwrap();
        let error = check(&format!("index --catalog {} --id-column movieId", movies.display())).unwrap_err();
        assert!(error.contains("separated by \"::\"") && error.contains("scripts/movielens_csv.py"), "{error}");
    }

    /// An index folder holding one generation, built (as far as its manifest says) with items
    /// embedded at `max_tokens`.
    fn index_at(max_tokens: usize) -> tempfile::TempDir {
        use hyrank_engine::generation::{Counts, Manifest, Sources, FORMAT_VERSION};
        let dir = tempfile::tempdir().unwrap();
        let generation = dir.path().join("generations/000001");
        std::fs::create_dir_all(&generation).unwrap();
        let manifest = Manifest {
            live: None,
            field_types: Default::default(),
            files: Default::default(),
            format_version: FORMAT_VERSION,
            generation: "000001".into(),
            built_at_unix: 0,
            model: hyrank_engine::embed::ModelIdentity { name: "m".into(), sha256: "0".into(), dim: 4 },
            max_tokens,
            precision: hyrank_engine::Precision::F32,
            counts: Counts::default(),
            lexical: Default::default(),
            hnsw: Default::default(),
            cf: None,
            ease: None,
            cf_selection: None,
            sources: Sources::default(),
            stages: vec![],
            reranker: None,
            recommend_reranker: None,
        };
        std::fs::write(generation.join("manifest.json"), serde_json::to_vec(&manifest).unwrap()).unwrap();
        std::fs::write(dir.path().join("CURRENT"), "000001").unwrap();
        dir
    }

    /// Queries are truncated where the generation's items were: another limit is moot once a
    /// generation exists, and applies when the run builds one.
    #[test]
    fn a_token_limit_other_than_the_generations_is_refused() {
        let index = index_at(128);
        let at = |tokens: usize, dir: &std::path::Path| {
            check(&format!("eval search --index-dir {} --out o --max-tokens {tokens}", dir.display()))
        };
        let error = at(256, index.path()).unwrap_err();
        assert!(error.starts_with("--max-tokens 256 would have no effect: the generation in"), "{error}");
        assert!(error.contains("at 128 tokens"), "{error}");
        at(128, index.path()).unwrap();
        let empty = tempfile::tempdir().unwrap();
        at(256, empty.path()).unwrap();
        let train = format!("train-reranker --index-dir {} --max-tokens 64", index.path().display());
        assert!(check(&train).unwrap_err().contains("at 128 tokens"));
    }

    /// eval search reads bad corpus rows only when it indexes the corpus itself.
    #[test]
    fn eval_searchs_on_error_is_refused_where_it_indexes_nothing() {
        let index = index_at(256);
        let with = |dir: &std::path::Path| {
            check(&format!("eval search --index-dir {} --out o --on-error skip", dir.display()))
        };
        let error = with(index.path()).unwrap_err();
        assert!(error.starts_with("--on-error would have no effect: "), "{error}");
        assert!(error.ends_with("already holds a generation, and eval search indexes only a folder without one"));
        check(&format!("eval search --index-dir {} --out o", index.path().display())).unwrap();
        with(tempfile::tempdir().unwrap().path()).unwrap();
    }

    #[test]
    fn the_trainers_flags_of_another_source_are_refused() {
        let error = check("train-reranker --index-dir i --qrels q --queries t --context-titles 5").unwrap_err();
        assert!(error.starts_with("--context-titles would have no effect"), "{error}");
        check("train-reranker --index-dir i --interactions --context-titles 5 --targets-per-user 2").unwrap();
        let error = check("train-reranker --index-dir i --clicks c --distil-temperature 2").unwrap_err();
        assert!(error.contains("--distil-weight 0 distils nothing"), "{error}");
        check("train-reranker --index-dir i --clicks c --distil-weight 0.5 --distil-temperature 2").unwrap();
    }

    #[test]
    fn a_random_splits_flags_under_a_time_split_are_refused() {
        let base = "eval recommend --catalog c.csv --interactions r.csv --out o";
        let error = check(&format!("{base} --split time --split-seed 7")).unwrap_err();
        assert!(error.starts_with("--split-seed would have no effect: --split time"), "{error}");
        check(&format!("{base} --split random --split-seed 7 --test-fraction 0.3")).unwrap();
        check(&format!("{base} --split time")).unwrap();
    }
}
