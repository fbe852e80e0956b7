//! `hyrank publish` and `hyrank pull`: generations shipped through S3-compatible object
//! storage or a shared folder (`hyrank_engine::generation::remote`).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use hyrank_engine::generation::{self, remote::Remote};

#[derive(Args)]
pub(crate) struct PublishArgs {
    /// Index folder whose generation is published.
    #[arg(long, env = "HYRANK_INDEX_DIR", default_value = "data/index")]
    pub(crate) index_dir: PathBuf,
    /// Where to: `s3://bucket/prefix`, or `file:///shared/folder` (a filesystem every replica
    /// mounts). S3's endpoint, region and credentials come from the `AWS_*` environment
    /// variables (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`...).
    #[arg(long)]
    pub(crate) to: String,
    /// The generation to publish (a folder name under `generations/`); default: `CURRENT`'s.
    #[arg(long)]
    pub(crate) generation: Option<String>,
    /// Generations to keep in the storage after publishing, the new one included; older ones
    /// are removed, never the one `CURRENT` names. 0 keeps all.
    #[arg(long, default_value_t = hyrank_indexer::pipeline::DEFAULT_KEEP)]
    pub(crate) keep: usize,
}

#[derive(Args)]
pub(crate) struct PullArgs {
    /// Where from: `s3://bucket/prefix` or `file:///folder`, as given to `hyrank publish --to`.
    #[arg(long)]
    pub(crate) from: String,
    /// Local index folder the generation is brought into (its `CURRENT` is moved to it).
    #[arg(long, env = "HYRANK_INDEX_DIR", default_value = "data/index")]
    pub(crate) index_dir: PathBuf,
    /// Generations to keep in the local folder after a pull, as `hyrank index --keep` (never
    /// `CURRENT`'s, nor one a process has open). 0 keeps all.
    #[arg(long, default_value_t = hyrank_indexer::pipeline::DEFAULT_KEEP)]
    pub(crate) keep: usize,
}

pub(crate) fn publish(args: PublishArgs) -> anyhow::Result<()> {
    let dir = match &args.generation {
        Some(name) => args.index_dir.join("generations").join(name),
        None => generation::current(&args.index_dir)?,
    };
    publish_built(&Remote::open(&args.to)?, &dir, args.keep)
}

/// Publishes the generation folder `dir` to `remote`, then keeps its newest `keep` there.
pub(crate) fn publish_built(remote: &Remote, dir: &std::path::Path, keep: usize) -> anyhow::Result<()> {
    let published = remote.publish(dir).with_context(|| format!("publishing {} to {}", dir.display(), remote.url()))?;
    println!(
        "published generation {} to {} ({} files, {:.1} MiB; CURRENT was {})",
        published.generation,
        remote.url(),
        published.files,
        published.bytes as f64 / (1024.0 * 1024.0),
        published.previous.as_deref().unwrap_or("unset")
    );
    // A generation touched in the last 15 minutes stays: an upload in progress, or another
    // publisher's just made current.
    match remote.retain(keep, std::time::Duration::from_secs(15 * 60)) {
        Ok(removed) => {
            for name in removed {
                println!("removed old generation {name} from {}", remote.url());
            }
        }
        // Published: a failure to tidy up is reported, not fatal.
        Err(e) => tracing::warn!(error = %e, "removing old generations from object storage"),
    }
    Ok(())
}

pub(crate) fn pull(args: PullArgs) -> anyhow::Result<()> {
    let remote = Remote::open(&args.from)?;
    match remote.pull(&args.index_dir).with_context(|| format!("pulling from {}", args.from))? {
        Some(dir) => {
            println!("pulled {} from {}", dir.display(), remote.url());
            for removed in generation::prune(&args.index_dir, args.keep)? {
                println!("removed old generation {}", removed.display());
            }
        }
        None => println!("{} already serves {}'s current generation", args.index_dir.display(), remote.url()),
    }
    Ok(())
}

#[derive(Args)]
pub(crate) struct EmbedArgs {
    #[command(flatten)]
    pub(crate) catalog: super::CatalogArgs,
    #[command(flatten)]
    pub(crate) model: super::ModelArgs,
    /// Which shard, `i/n`: the items whose id hashes to shard i of n (SHA-256 of the id).
    #[arg(long, value_parser = hyrank_indexer::shards::parse_shard)]
    pub(crate) shard: (u32, u32),
    /// Folder the shard file (`shard-I-of-N.bin`) is written to; `hyrank index --embeddings`
    /// reads every shard there.
    #[arg(long)]
    pub(crate) out: PathBuf,
}

pub(crate) fn embed(args: EmbedArgs) -> anyhow::Result<()> {
    use hyrank_indexer::input::read_catalog;
    let path = args.catalog.catalog.clone();
    let catalog = read_catalog(&path, &args.catalog.format())?;
    if !catalog.rejects.is_empty() {
        return Err(hyrank_indexer::IndexError::BadInput { rejects: catalog.rejects }.into());
    }
    let embedder = hyrank_engine::Embedder::load(&args.model.settings()?)?;
    let items: Vec<(String, String)> = catalog.items.iter().map(|item| (item.id.clone(), item.content())).collect();
    let (shard, shards) = args.shard;
    let start = std::time::Instant::now();
    let (file, count) = hyrank_indexer::shards::embed_shard(&embedder, &items, shard, shards, &args.out, |_| {})
        .with_context(|| format!("embedding shard {shard}/{shards} of {}", path.display()))?;
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "embedded shard {shard}/{shards}: {count} of {} items in {seconds:.1} s ({:.1} items/s) into {}",
        items.len(),
        count as f64 / seconds.max(1e-9),
        file.display()
    );
    Ok(())
}
