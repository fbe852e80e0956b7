//! `hyrank publish` and `hyrank pull`: generations shipped through S3-compatible object
//! storage or a shared folder (`hyrank_engine::generation::remote`).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use hyrank_engine::generation::{self, remote::Remote};

use super::folder;

/// S3 client settings of `hyrank publish`, `pull` and `index --publish-to`: each flag, else
/// its `HYRANK_S3_*` variable, else the `AWS_*` variable of the same meaning (which the client
/// reads itself). None applies to a `file://` store. Deliberately no `Debug`: it holds a
/// credential.
#[derive(Args, Clone, Default)]
pub(crate) struct S3Args {
    /// The S3 endpoint, e.g. `http://127.0.0.1:8333` for SeaweedFS or MinIO [default:
    /// AWS_ENDPOINT_URL, else AWS's].
    #[arg(long, env = "HYRANK_S3_ENDPOINT")]
    pub(crate) s3_endpoint: Option<String>,
    /// The S3 region [default: AWS_REGION].
    #[arg(long, env = "HYRANK_S3_REGION")]
    pub(crate) s3_region: Option<String>,
    /// The S3 access key id [default: AWS_ACCESS_KEY_ID].
    #[arg(long, env = "HYRANK_S3_ACCESS_KEY_ID", hide_env_values = true)]
    pub(crate) s3_access_key_id: Option<String>,
    /// The S3 secret access key [default: AWS_SECRET_ACCESS_KEY]. Never printed; prefer the
    /// environment or `--s3-config`'s file to the flag, which other users can read in the
    /// process list.
    #[arg(long, env = "HYRANK_S3_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub(crate) s3_secret_access_key: Option<String>,
    /// Allow a plain-HTTP endpoint (`--s3-allow-http` alone means true) [default:
    /// AWS_ALLOW_HTTP, else false].
    #[arg(long, env = "HYRANK_S3_ALLOW_HTTP", num_args = 0..=1, default_missing_value = "true")]
    pub(crate) s3_allow_http: Option<bool>,
    /// A TOML file with any of the settings above by their flag names with underscores
    /// (`s3_endpoint = "http://..."`, `s3_secret_access_key = "..."`): the lowest layer, under
    /// the flags and the `HYRANK_S3_*` variables. Keeps the secret out of the process list and
    /// the environment; make it readable by its owner only.
    #[arg(long, env = "HYRANK_S3_CONFIG")]
    pub(crate) s3_config: Option<PathBuf>,
}

/// The keys an `--s3-config` file may hold: the S3 flags' names with underscores (what
/// [`S3File`] reads), derived from the flags as the server derives its file's keys.
fn s3_file_keys() -> Vec<String> {
    let command = <S3Args as clap::Args>::augment_args(clap::Command::new("hyrank"));
    command.get_arguments().map(|arg| arg.get_id().as_str().to_string()).filter(|id| id != "s3_config").collect()
}

/// What an `--s3-config` file may hold. Deliberately no `Debug`: it holds a credential.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct S3File {
    s3_endpoint: Option<String>,
    s3_region: Option<String>,
    s3_access_key_id: Option<String>,
    s3_secret_access_key: Option<String>,
    s3_allow_http: Option<bool>,
}

impl S3Args {
    /// Whether any S3 setting was given (a settings file counts).
    pub(crate) fn is_set(&self) -> bool {
        !self.given().is_empty() || self.s3_config.is_some()
    }

    /// The S3 settings given here (a settings file's only once layered), by file key.
    fn given(&self) -> Vec<&'static str> {
        [
            ("s3_endpoint", self.s3_endpoint.is_some()),
            ("s3_region", self.s3_region.is_some()),
            ("s3_access_key_id", self.s3_access_key_id.is_some()),
            ("s3_secret_access_key", self.s3_secret_access_key.is_some()),
            ("s3_allow_http", self.s3_allow_http.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, given)| given.then_some(key))
        .collect()
    }

    /// These settings over those of the `--s3-config` file, when one is given.
    ///
    /// # Errors
    /// The file cannot be read, is not TOML, or holds another key or a value of the wrong type;
    /// the message names the file, line and key, never the value.
    fn layered(&self) -> anyhow::Result<S3Args> {
        let Some(path) = &self.s3_config else { return Ok(self.clone()) };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the S3 settings file {}", path.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path).map(|m| m.permissions().mode()).unwrap_or(0);
            if mode & 0o077 != 0 {
                tracing::warn!(
                    file = %path.display(),
                    mode = format!("{:o}", mode & 0o777),
                    "the S3 settings file can be read by other users; it may hold a secret (chmod 600)"
                );
            }
        }
        let file: S3File = toml::from_str(&text).map_err(|e| {
            let keys = s3_file_keys();
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            anyhow::anyhow!(
                "S3 settings file {}",
                hyrank_engine::error::settings_file_error(path, &text, e.span(), e.message(), &keys)
            )
        })?;
        Ok(S3Args {
            s3_endpoint: self.s3_endpoint.clone().or(file.s3_endpoint),
            s3_region: self.s3_region.clone().or(file.s3_region),
            s3_access_key_id: self.s3_access_key_id.clone().or(file.s3_access_key_id),
            s3_secret_access_key: self.s3_secret_access_key.clone().or(file.s3_secret_access_key),
            s3_allow_http: self.s3_allow_http.or(file.s3_allow_http),
            s3_config: None,
        })
    }

    /// Opens `url` with these settings (over the settings file's) over the environment.
    ///
    /// # Errors
    /// A settings file that cannot be used ([`S3Args::layered`]), or as [`Remote::open_with`]:
    /// a bad URL, or S3 settings given for a `file://` store.
    pub(crate) fn open(&self, url: &str) -> anyhow::Result<Remote> {
        let settings = self.layered()?;
        // Named here in the user's terms; the engine's refusal would name object_store's keys.
        if url.starts_with("file://") && settings.is_set() {
            anyhow::bail!(
                "{url} is a folder; the S3 settings given ({}, from --s3-* flags, HYRANK_S3_* or the --s3-config \
                 file) apply to s3:// storage only",
                settings.given().join(", ")
            );
        }
        let options = generation::remote::s3_options(
            settings.s3_endpoint,
            settings.s3_region,
            settings.s3_access_key_id,
            settings.s3_secret_access_key,
            settings.s3_allow_http,
        );
        let pairs: Vec<(&str, &str)> = options.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Ok(Remote::open_with(url, &pairs)?)
    }
}

#[derive(Args)]
pub(crate) struct PublishArgs {
    /// Index folder whose generation is published.
    #[arg(long, value_parser = folder, env = "HYRANK_INDEX_DIR", default_value = "data/index")]
    pub(crate) index_dir: PathBuf,
    /// Where to: `s3://bucket/prefix`, or `file:///shared/folder` (a filesystem every replica
    /// mounts). S3's endpoint, region and credentials: the `--s3-*` settings.
    #[arg(long)]
    pub(crate) to: String,
    #[command(flatten)]
    pub(crate) s3: S3Args,
    /// The generation to publish (a folder name under `generations/`); default: `CURRENT`'s.
    #[arg(long)]
    pub(crate) generation: Option<String>,
    /// Generations to keep in the storage after publishing, the new one included; older ones
    /// are removed, never the one `CURRENT` names nor one written in the last 15 minutes (an
    /// upload in progress: the output names them, and a later publish removes them). 0 keeps all.
    #[arg(long, default_value_t = hyrank_indexer::pipeline::DEFAULT_KEEP)]
    pub(crate) keep: usize,
}

#[derive(Args)]
pub(crate) struct PullArgs {
    /// Where from: `s3://bucket/prefix` or `file:///folder`, as given to `hyrank publish --to`.
    #[arg(long)]
    pub(crate) from: String,
    #[command(flatten)]
    pub(crate) s3: S3Args,
    /// Local index folder the generation is brought into (its `CURRENT` is moved to it).
    #[arg(long, value_parser = folder, env = "HYRANK_INDEX_DIR", default_value = "data/index")]
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
    publish_built(&args.s3.open(&args.to)?, &dir, args.keep)
}

/// Minutes a generation in object storage is left after its last write, whatever `--keep`
/// says: longer than the longest file's upload (16 GB at 20 MB/s).
const RECENT_MINUTES: u64 = 15;

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
    let min_age = std::time::Duration::from_secs(RECENT_MINUTES * 60);
    match remote.retain(keep, min_age) {
        Ok(retained) => {
            for name in &retained.removed {
                println!("removed old generation {name} from {}", remote.url());
            }
            if !retained.recent.is_empty() {
                println!(
                    "kept {} beyond --keep {keep} in {}: written in the last {RECENT_MINUTES} minutes (an upload in \
                     progress, or another publisher's), so a publish after that removes them",
                    retained.recent.join(", "),
                    remote.url()
                );
            }
        }
        // Published: a failure to tidy up is reported, not fatal.
        Err(e) => tracing::warn!(error = %e, "removing old generations from object storage"),
    }
    Ok(())
}

pub(crate) fn pull(args: PullArgs) -> anyhow::Result<()> {
    let remote = args.s3.open(&args.from)?;
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
    #[arg(long, value_parser = folder)]
    pub(crate) out: PathBuf,
    /// Bad catalog rows: as `hyrank index --on-error` takes them (`skip` embeds the rest, as
    /// the build that assembles the shards with the same flag indexes the rest).
    #[arg(long, value_enum, default_value_t = hyrank_indexer::OnError::Fail)]
    pub(crate) on_error: hyrank_indexer::OnError,
}

pub(crate) fn embed(args: EmbedArgs) -> anyhow::Result<()> {
    use hyrank_indexer::input::read_catalog;
    let path = args.catalog.catalog.clone();
    let catalog = read_catalog(&path, &args.catalog.format()?)?;
    if args.on_error.fails_on(&catalog.rejects) {
        return Err(hyrank_indexer::IndexError::BadInput { rejects: catalog.rejects }.into());
    }
    for reject in &catalog.rejects {
        eprintln!("skipped: {reject}");
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        s3: S3Args,
    }

    /// `hyrank embed` takes bad catalog rows as `hyrank index` does: refused by default (it
    /// advised `--on-error skip`, which it did not have), and with `skip` the rest is embedded.
    #[test]
    fn embed_takes_on_error_as_index_does() {
        #[derive(Parser)]
        struct EmbedCli {
            #[command(flatten)]
            embed: EmbedArgs,
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let out = tempfile::tempdir().unwrap();
        let (catalog, model) = (root.join("fixtures/bad/catalog.jsonl"), root.join("models/all-MiniLM-L6-v2"));
        let args = |more: &[&str]| {
            let argv = ["hyrank", "--shard", "0/1", "--catalog", catalog.to_str().unwrap()]
                .into_iter()
                .chain(["--model-dir", model.to_str().unwrap(), "--out", out.path().to_str().unwrap()])
                .chain(more.iter().copied());
            EmbedCli::try_parse_from(argv).unwrap().embed
        };
        let error = embed(args(&[])).unwrap_err().to_string();
        assert!(error.contains("bad input row"), "{error}");
        assert!(!out.path().join("shard-0-of-1.bin").exists());
        embed(args(&["--on-error", "skip"])).unwrap();
        assert!(out.path().join("shard-0-of-1.bin").exists());
    }

    fn parse(args: &[&str]) -> S3Args {
        Cli::try_parse_from(std::iter::once("hyrank").chain(args.iter().copied())).unwrap().s3
    }

    #[test]
    fn s3_flags_become_client_options_and_a_folder_refuses_them() {
        let s3 = parse(&[
            "--s3-endpoint",
            "http://127.0.0.1:9",
            "--s3-access-key-id",
            "AKID",
            "--s3-secret-access-key",
            "s3cr3t",
            "--s3-allow-http",
        ]);
        assert_eq!(
            generation::remote::s3_options(
                s3.s3_endpoint.clone(),
                s3.s3_region.clone(),
                s3.s3_access_key_id.clone(),
                s3.s3_secret_access_key.clone(),
                s3.s3_allow_http
            ),
            [
                ("aws_endpoint", "http://127.0.0.1:9".to_string()),
                ("aws_access_key_id", "AKID".to_string()),
                ("aws_secret_access_key", "s3cr3t".to_string()),
                ("aws_allow_http", "true".to_string())
            ]
        );
        // Building an S3 client connects to nothing, so this holds with no server.
        assert_eq!(s3.open("s3://bucket/prefix").unwrap().url(), "s3://bucket/prefix");
        let folder = tempfile::tempdir().unwrap();
        let url = format!("file://{}", folder.path().display());
        let error = s3.open(&url).err().unwrap().to_string();
        assert!(error.contains("s3_endpoint, s3_access_key_id, s3_secret_access_key, s3_allow_http"), "{error}");
        assert!(error.contains("apply to s3:// storage only") && !error.contains("aws_"), "{error}");
        assert!(!error.contains("s3cr3t"), "{error}");
        assert!(parse(&[]).open(&url).is_ok(), "no S3 settings: the folder opens");
    }

    #[test]
    fn the_s3_settings_file_is_the_lowest_layer_and_its_errors_show_no_value() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s3.toml");
        std::fs::write(
            &file,
            "s3_endpoint = \"http://127.0.0.1:9\"\ns3_region = \"eu-west-3\"\ns3_secret_access_key = \"s3cr3t\"\ns3_allow_http = true\n",
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let layered = parse(&["--s3-config", path, "--s3-region", "us-east-1"]).layered().unwrap();
        assert_eq!(layered.s3_endpoint.as_deref(), Some("http://127.0.0.1:9"), "from the file");
        assert_eq!(layered.s3_region.as_deref(), Some("us-east-1"), "the flag over the file");
        assert_eq!(layered.s3_secret_access_key.as_deref(), Some("s3cr3t"));
        assert_eq!(layered.s3_allow_http, Some(true));
        assert!(parse(&["--s3-config", path]).is_set(), "a file is a setting");
        // A folder refuses the file's settings as it refuses the flags.
        let url = format!("file://{}", dir.path().display());
        assert!(parse(&["--s3-config", path]).open(&url).is_err());

        for (text, key) in [
            ("s3_secret_access_key = s3cr3t\n", "s3_secret_access_key"),
            ("s3_access_key_id = 12345678\n", "s3_access_key_id"),
            ("s3_bucket = \"s3cr3t\"\n", "s3_bucket"),
            ("s3_secret_access_key =\n\"s3cr3t==\"\n", "s3_secret_access_key"),
            ("s3_secret_access_key = \"\"\"\ns3cr3t=abc", "s3_secret_access_key"),
        ] {
            std::fs::write(&file, text).unwrap();
            let error = parse(&["--s3-config", path]).open("s3://bucket/prefix").err().unwrap().to_string();
            assert!(error.contains("s3.toml") && error.contains("line") && error.contains(key), "{error}");
            assert!(!error.contains("s3cr3t") && !error.contains("12345678"), "{error}");
        }
        assert_eq!(
            s3_file_keys(),
            ["s3_endpoint", "s3_region", "s3_access_key_id", "s3_secret_access_key", "s3_allow_http"],
            "the file's keys are S3File's fields"
        );
        let missing = dir.path().join("absent.toml");
        let error = parse(&["--s3-config", missing.to_str().unwrap()]).open("s3://b/p").err().unwrap();
        assert!(format!("{error:#}").contains("absent.toml"), "{error:#}");
    }
}
