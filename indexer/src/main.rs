//! `hyrank`: the batch command line.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cmd;

use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use cmd::*;

#[derive(Parser)]
#[command(name = "hyrank", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Index a catalog (and interactions) into a new generation and publish it.
    Index(Box<IndexArgs>),
    /// Check that the model reproduces sentence-transformers on a device, and time it.
    CheckModel(CheckModelArgs),
    /// Measure relevance on judged data.
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Fine-tune a cross-encoder reranker from MiniLM on judged queries, clicks, or (for
    /// recommendations) the generation's own interactions; validate it, and publish it in a new
    /// generation beside the current one's indexes.
    TrainReranker(Box<TrainRerankerArgs>),
    /// Upload a generation to S3-compatible object storage and make it the current one there,
    /// for replicas to pull (`hyrank-serve --source`).
    Publish(PublishArgs),
    /// Bring the current generation of S3-compatible object storage into a local index,
    /// checking every file against its manifest.
    Pull(PullArgs),
    /// Embed one shard of a catalog (the items whose id hashes to it) into a file that
    /// `hyrank index --embeddings` assembles: many machines share one catalog's embedding.
    Embed(Box<EmbedArgs>),
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Index(args) => {
            let keep = args.keep;
            // Opened before the build, so a bad URL fails in seconds, not after it.
            let remote = args.publish_to.as_deref().map(|url| args.s3.open(url)).transpose()?;
            if remote.is_none() && args.s3.is_set() {
                // Flags are refused (`unused.rs`); this is what the environment or a file set.
                tracing::warn!("S3 settings (HYRANK_S3_*) are given but there is no --publish-to: not used");
            }
            let settings = args.into_settings()?;
            let summary = hyrank_indexer::build(&settings).context("indexing failed")?;
            print!("{}", summary.render());
            match remote {
                Some(remote) => publish_built(&remote, &summary.dir, keep),
                None => Ok(()),
            }
        }
        Command::CheckModel(args) => check_model(args),
        Command::Eval(EvalCommand::Search(args)) => eval_search(args),
        Command::Eval(EvalCommand::Recommend(args)) => eval_recommend(*args),
        Command::TrainReranker(args) => train_reranker(*args),
        Command::Publish(args) => publish(args),
        Command::Pull(args) => pull(args),
        Command::Embed(args) => embed(*args),
    }
}

fn main() -> ExitCode {
    // A write past the process's file-size limit (`ulimit -f`) raises SIGXFSZ, whose default
    // action kills the process with no message. Ignored, the write fails with EFBIG instead,
    // and the build reports which file and abandons the generation, as for a full disk.
    #[cfg(unix)]
    // SAFETY: changing one signal's disposition before any other thread exists.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    // A value tracing cannot read at all (`hyrank_indexer=wran`) logs at the default, said
    // below, not silently.
    let default_filter = || "warn,hyrank_indexer=info,hnsw_rs=error".into();
    let (filter, unreadable) = match std::env::var("HYRANK_LOG").ok().filter(|v| !v.trim().is_empty()) {
        None => (default_filter(), None),
        Some(value) => match tracing_subscriber::EnvFilter::try_new(&value) {
            Ok(filter) => (filter, None),
            Err(e) => (default_filter(), Some(e)),
        },
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: log files and collectors get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if let Some(e) = unreadable {
        tracing::warn!("HYRANK_LOG is not a log filter ({e}); logging at the default levels");
    }
    let matches = cmd::negative_numbers_are_values(Cli::command()).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match refuse_moot_flags(&matches).and_then(|()| run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", hyrank_engine::error::report(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}
