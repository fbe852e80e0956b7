//! Server settings from three layers, lowest first: a TOML file (`--config`), environment
//! variables (`HYRANK_*`), then command-line flags. Every setting has the same name in all three
//! (`--max-k`, `HYRANK_MAX_K`, `max_k = ...`). They are validated once, at start-up, so a bad
//! value stops the server with a message naming the setting and where it came from.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Parser;

mod environment;
mod limits;
mod network;
mod source;

use hyrank_engine::DeviceChoice;
pub use limits::{Limits, MAX_BODY_TIMEOUT};
pub use network::CorsOrigins;
use network::{check_workers, resolve_bind};
use serde::Deserialize;
pub use source::SourceSettings;

/// A credential (an API key, an S3 secret): compared and handed to what uses it, never
/// shown: its `Debug` prints `(hidden)`, so no settings dump or error context leaks it.
///
/// No `PartialEq`: a request's key is checked with the middleware's constant-time comparison,
/// so `==` on keys is deliberately not available.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The credential itself, for the code that checks or sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("(hidden)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_string())
    }
}

/// One layer of settings: every field optional, so layers can be stacked.
#[derive(Debug, Default, Clone, Parser, Deserialize)]
#[command(name = "hyrank-serve", version, about = "Serves hyrank's search, recommendation and explanation API.")]
#[command(after_help = "Precedence: flags over environment variables over the --config file over defaults.\n\
The TOML file uses the flag names with underscores, e.g. `max_k = 100` or `admin_key = \"...\"`.")]
#[serde(deny_unknown_fields)]
pub struct SettingsLayer {
    /// TOML settings file (the lowest layer).
    #[arg(long, env = "HYRANK_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Index root written by `hyrank index`; its CURRENT generation is served. With `--source`
    /// it is the replica's local copy, hence its other name, `--cache-dir` [default: data/index].
    #[arg(long, env = "HYRANK_INDEX_DIR", visible_alias = "cache-dir")]
    #[serde(alias = "cache_dir")]
    pub index_dir: Option<PathBuf>,
    /// A replica's source: `s3://bucket/prefix` or `file:///shared/folder`, where `hyrank
    /// publish --to` ships generations. The server pulls the current one into the index folder
    /// (its local copy) at start-up and every `watch_secs`, checks every file against the
    /// manifest, and swaps it in.
    #[arg(long, env = "HYRANK_SOURCE")]
    pub source: Option<String>,
    /// The S3 source's endpoint, e.g. `http://127.0.0.1:8333` for SeaweedFS or MinIO
    /// [default: AWS_ENDPOINT_URL, else AWS's].
    #[arg(long, env = "HYRANK_SOURCE_ENDPOINT")]
    pub source_endpoint: Option<String>,
    /// The S3 source's region [default: AWS_REGION].
    #[arg(long, env = "HYRANK_SOURCE_REGION")]
    pub source_region: Option<String>,
    /// The S3 source's access key id [default: AWS_ACCESS_KEY_ID].
    #[arg(long, env = "HYRANK_SOURCE_ACCESS_KEY_ID", hide_env_values = true)]
    pub source_access_key_id: Option<Secret>,
    /// The S3 source's secret access key [default: AWS_SECRET_ACCESS_KEY]. Never logged; prefer
    /// the environment or the file to a flag, which other users can read in the process list.
    #[arg(long, env = "HYRANK_SOURCE_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub source_secret_access_key: Option<Secret>,
    /// Allow a plain-HTTP S3 endpoint (`--source-allow-http` alone means true) [default:
    /// AWS_ALLOW_HTTP, else false].
    #[arg(long, env = "HYRANK_SOURCE_ALLOW_HTTP", num_args = 0..=1, default_missing_value = "true")]
    pub source_allow_http: Option<bool>,
    /// Model folder; must hold the weights the index was built with
    /// [default: models/all-MiniLM-L6-v2].
    #[arg(long, env = "HYRANK_MODEL_DIR")]
    pub model_dir: Option<PathBuf>,
    /// Device for query encoding and reranking: auto, cpu, cuda or cuda:N [default: auto].
    #[arg(long, env = "HYRANK_DEVICE")]
    pub device: Option<String>,
    /// Number format of the transformer: f32, f16, bf16, int8 or w8a8 [default: the
    /// generation's; another one is refused at start-up].
    #[arg(long, env = "HYRANK_PRECISION")]
    pub precision: Option<String>,
    /// Address to listen on, IP:PORT or HOST:PORT (every address the name resolves to). Loopback by default: expose it deliberately [default: 127.0.0.1:8080].
    #[arg(long, env = "HYRANK_BIND")]
    pub bind: Option<String>,
    /// HTTP worker threads; model work runs on a separate blocking pool [default: 2].
    #[arg(long, env = "HYRANK_WORKERS")]
    pub workers: Option<usize>,
    /// Key required on /v1 routes (header `Authorization: Bearer KEY` or `X-Api-Key: KEY`); the
    /// admin key is accepted there too. Unset: /v1 is open. Prefer the environment or the file
    /// to a flag, which other users can read in the process list.
    #[arg(long, env = "HYRANK_SEARCH_KEY", hide_env_values = true)]
    pub search_key: Option<Secret>,
    /// Key required on /admin routes. Unset: admin routes answer 403, always.
    #[arg(long, env = "HYRANK_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<Secret>,
    /// Key for the write routes (`POST /v1/events`, `PUT` and `DELETE /v1/items/{id}`, `PUT
    /// /v1/items/{id}/fields`); the admin key is accepted there too.
    /// Neither set: writes answer 403, as admin routes do. A replica (`--source`) takes no
    /// writes, so this key is refused there.
    #[arg(long, env = "HYRANK_WRITE_KEY", hide_env_values = true)]
    pub write_key: Option<Secret>,
    /// Largest request body in bytes [default: 65536].
    #[arg(long, env = "HYRANK_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Seconds a request's body may take to arrive once its headers are read, plus a second
    /// per KiB received (a slow link's batch still arrives); a body still arriving then gets
    /// 408 (a stalled or trickling client holds a connection, and a shutdown's drain, no
    /// longer); at most 86400 [default: 15].
    #[arg(long, env = "HYRANK_BODY_TIMEOUT_SECS")]
    pub body_timeout_secs: Option<usize>,
    /// Largest k (hits per response) [default: 100].
    #[arg(long, env = "HYRANK_MAX_K")]
    pub max_k: Option<usize>,
    /// Largest candidates per retriever [default: 1000].
    #[arg(long, env = "HYRANK_MAX_CANDIDATES")]
    pub max_candidates: Option<usize>,
    /// Longest query, in characters [default: 1000].
    #[arg(long, env = "HYRANK_MAX_QUERY_CHARS")]
    pub max_query_chars: Option<usize>,
    /// Deepest rerank (hits the transformer rescores per request) [default: 100].
    #[arg(long, env = "HYRANK_MAX_RERANK_DEPTH")]
    pub max_rerank_depth: Option<usize>,
    /// Engine calls queued or running at once; beyond it requests get 503 with Retry-After
    /// rather than piling up. Live writes have a bound of their own of the same size, so up to
    /// twice this may run [default: 64].
    #[arg(long, env = "HYRANK_MAX_INFLIGHT")]
    pub max_inflight: Option<usize>,
    /// Most events in one `POST /v1/events` body; its body may be up to 256 bytes per event
    /// beyond max_body_bytes; refused on a replica, which takes no writes [default: 10000].
    #[arg(long, env = "HYRANK_MAX_EVENTS")]
    pub max_events: Option<usize>,
    /// Most item rows written live (`PUT /v1/items/{id}`) a generation serves on top of its
    /// own: each put adds one, so an item put twice takes two (its earlier row is hidden, not
    /// removed). Beyond it puts get 409 until a build folds them in. Dense search scans them
    /// exactly, so this bounds that scan. Refused on a replica, which takes no writes
    /// [default: 10000].
    #[arg(long, env = "HYRANK_MAX_LIVE_ITEMS")]
    pub max_live_items: Option<usize>,
    /// Records (events and item writes) the live log may hold in memory, where the server
    /// keeps those no fold has retired: beyond it an event batch gets 409 `live_log_full` until
    /// a build folds them in and the server swaps to it. Refused on a replica, which takes no
    /// writes [default: 5000000].
    #[arg(long, env = "HYRANK_MAX_LIVE_EVENTS")]
    pub max_live_events: Option<usize>,
    /// Most queries a model worker encodes in one batch, so concurrent requests share a forward
    /// pass; 0: no worker, each request encodes on its own blocking thread. Off by default: on a
    /// 2-core CPU it cut hybrid throughput at concurrency 8 from 73 to 58 req/s (docs/SERVICE.md)
    /// [default: 0].
    #[arg(long, env = "HYRANK_QUERY_BATCH")]
    pub query_batch: Option<usize>,
    /// Queries waiting for the model worker; beyond it requests get 503. Refused with
    /// `--query-batch 0`, which runs no worker [default: 256].
    #[arg(long, env = "HYRANK_QUERY_QUEUE")]
    pub query_queue: Option<usize>,
    /// Most requests whose trained-reranker pairs share one model-worker pass; 0: each request
    /// reranks on its own thread. Only used when the generation has a trained reranker
    /// [default: 8].
    #[arg(long, env = "HYRANK_RERANK_BATCH")]
    pub rerank_batch: Option<usize>,
    /// Requests waiting for the rerank worker; beyond it requests get 503. Refused with
    /// `--rerank-batch 0`, which runs no worker [default: 64].
    #[arg(long, env = "HYRANK_RERANK_QUEUE")]
    pub rerank_queue: Option<usize>,
    /// Query embeddings cached (0 turns it off) [default: 10000].
    #[arg(long, env = "HYRANK_QUERY_CACHE_ENTRIES")]
    pub query_cache_entries: Option<usize>,
    /// Trained-reranker logits cached by (query, item) (0 turns it off) [default: 100000].
    #[arg(long, env = "HYRANK_RERANK_CACHE_ENTRIES")]
    pub rerank_cache_entries: Option<usize>,
    /// Number format of the trained reranker's layers: f32, f16 or int8 (8-bit weights and
    /// 8-bit inputs; w8a8 is the same here) on hyrank's CPU kernels; f32, f16 or bf16 on a GPU
    /// (the frozen layers stay at the generation's precision) [default: int8 where the
    /// generation's encoder runs on hyrank's CPU kernels, f16 on a GPU, f32 elsewhere].
    #[arg(long, env = "HYRANK_RERANK_PRECISION")]
    pub rerank_precision: Option<String>,
    /// Model reranks (late-interaction or trained) running at once; a rerank past it waits up
    /// to 5 s for a turn, then gets 503 `overloaded` [default: the CPU's cores].
    #[arg(long, env = "HYRANK_MAX_CONCURRENT_RERANKS")]
    pub max_concurrent_reranks: Option<usize>,
    /// Rerank budget of a request that gives none (`rerank.budget_ms`), in milliseconds from
    /// when the server has read it (1 to 60000): the rerank stage starts no pass past it and the candidates
    /// not reranked keep their fused order (the answer's `rerank_cut`) [default: none].
    #[arg(long, env = "HYRANK_RERANK_BUDGET_MS")]
    pub rerank_budget_ms: Option<usize>,
    /// Run each model once on the generation's own items before it serves (at start and at
    /// each swap), so the first requests find it warm and a rerank budget knows its pass
    /// times (`--warm-up false` skips it: a quicker start) [default: true].
    #[arg(long, env = "HYRANK_WARM_UP", num_args = 0..=1, default_missing_value = "true")]
    pub warm_up: Option<bool>,
    /// Whole responses cached (0 turns it off) [default: 1000].
    #[arg(long, env = "HYRANK_RESPONSE_CACHE_ENTRIES")]
    pub response_cache_entries: Option<usize>,
    /// Bytes the cached responses may hold together (0 turns the cache off); an answer above
    /// a sixteenth of it is not cached [default: 268435456, 256 MiB].
    #[arg(long, env = "HYRANK_RESPONSE_CACHE_BYTES")]
    pub response_cache_bytes: Option<usize>,
    /// Origins whose pages may call the API from a browser (CORS), comma-separated, each
    /// `scheme://host[:port]` as a browser sends it (`https://shop.example.com`), or `*` for any
    /// origin. Keys still apply; none is sent as a cookie [default: none: no CORS headers, so
    /// browsers let only pages this server serves, like /ui, read its answers].
    #[arg(long, env = "HYRANK_CORS_ORIGINS")]
    pub cors_origins: Option<String>,
    /// Seconds between checks of the index's CURRENT pointer for a new generation, and a
    /// replica's polls of its source (0: only the admin route reloads; on a replica it pulls
    /// first) [default: 5].
    #[arg(long, env = "HYRANK_WATCH_SECS")]
    pub watch_secs: Option<u64>,
    /// Print the OpenAPI document and exit (used to refresh api/openapi.json).
    #[arg(long)]
    #[serde(skip)]
    pub print_openapi: bool,
}

impl SettingsLayer {
    /// Fills every unset field of `self` from `lower`.
    fn over(self, lower: SettingsLayer) -> SettingsLayer {
        macro_rules! pick {
            ($($field:ident),*) => {
                SettingsLayer {
                    config: self.config.or(lower.config),
                    print_openapi: self.print_openapi || lower.print_openapi,
                    $($field: self.$field.or(lower.$field),)*
                }
            };
        }
        pick!(
            index_dir,
            model_dir,
            device,
            precision,
            bind,
            workers,
            search_key,
            admin_key,
            write_key,
            max_body_bytes,
            body_timeout_secs,
            max_k,
            max_candidates,
            max_query_chars,
            max_rerank_depth,
            max_inflight,
            max_events,
            max_live_items,
            max_live_events,
            query_batch,
            query_queue,
            rerank_batch,
            rerank_queue,
            query_cache_entries,
            rerank_cache_entries,
            rerank_precision,
            max_concurrent_reranks,
            rerank_budget_ms,
            warm_up,
            response_cache_entries,
            response_cache_bytes,
            cors_origins,
            watch_secs,
            source,
            source_endpoint,
            source_region,
            source_access_key_id,
            source_secret_access_key,
            source_allow_http
        )
    }

    /// Reads a TOML layer.
    ///
    /// # Errors
    /// The file cannot be read or does not parse; the message never quotes it
    /// ([`hyrank_engine::error::settings_file_error`]).
    pub fn from_toml_file(path: &Path) -> Result<SettingsLayer, SettingsError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SettingsError(format!("cannot read the settings file {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e: toml::de::Error| {
            let keys = file_keys();
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            SettingsError(format!(
                "settings file {}",
                hyrank_engine::error::settings_file_error(path, &text, e.span(), e.message(), &keys)
            ))
        })
    }
}

/// The keys a settings file may hold: every flag's name with underscores, and `cache_dir`.
fn file_keys() -> Vec<String> {
    use clap::CommandFactory;
    SettingsLayer::command()
        .get_arguments()
        .map(|arg| arg.get_id().as_str().to_string())
        .filter(|id| id != "config")
        .chain(["cache_dir".to_string()])
        .collect()
}

/// What the HTTP service needs (the binary adds where to listen and what to open).
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// Request bounds.
    pub limits: Limits,
    /// Key for /v1 routes, if any.
    pub search_key: Option<Secret>,
    /// Key for /admin routes; without one they are refused.
    pub admin_key: Option<Secret>,
    /// Key for write routes (the admin key works there too); without either they are refused.
    pub write_key: Option<Secret>,
    /// Whole responses cached.
    pub response_cache_entries: usize,
    /// Bytes the cached responses may hold together (their bodies and keys).
    pub response_cache_bytes: usize,
    /// Origins allowed to call the API from a browser.
    pub cors_origins: CorsOrigins,
    /// The source this server is a replica of (`--source`), if it is one: it then takes no
    /// writes, since its index folder is a copy no build reads (see `middleware::check`).
    pub replica_of: Option<String>,
    /// Whether each generation's models run once before it serves (`hyrank_engine::Engine::warm_up`).
    pub warm_up: bool,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        ServiceSettings {
            limits: Limits::default(),
            search_key: None,
            admin_key: None,
            write_key: None,
            response_cache_entries: 1000,
            response_cache_bytes: 256 << 20,
            cors_origins: CorsOrigins::None,
            replica_of: None,
            warm_up: true,
        }
    }
}

/// Everything `hyrank-serve` runs with, validated.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Index root.
    pub index_dir: PathBuf,
    /// Model folder.
    pub model_dir: PathBuf,
    /// Model device.
    pub device: DeviceChoice,
    /// Model precision; `None`: the generation's.
    pub precision: Option<hyrank_engine::Precision>,
    /// Listen addresses: what the `bind` setting names, a host name resolved (`localhost:8080`
    /// gives `127.0.0.1:8080` and `[::1]:8080`; the server listens on each it can bind).
    pub bind: Vec<SocketAddr>,
    /// HTTP workers.
    pub workers: usize,
    /// The model worker's batching, if any.
    pub query_batcher: Option<hyrank_engine::batcher::BatcherSettings>,
    /// The trained reranker's model worker, if any.
    pub rerank_worker: Option<hyrank_engine::batcher::BatcherSettings>,
    /// Query embeddings cached.
    pub query_cache_entries: usize,
    /// Trained-reranker logits cached.
    pub rerank_cache_entries: usize,
    /// The trained reranker layers' number format; `None`: the engine's default.
    pub rerank_precision: Option<hyrank_engine::Precision>,
    /// Model reranks running at once.
    pub max_concurrent_reranks: usize,
    /// The rerank budget of a request that gives none.
    pub rerank_budget: Option<std::time::Duration>,
    /// Pointer checks, in seconds; 0 is off.
    pub watch_secs: u64,
    /// Object storage a replica pulls generations from.
    pub source: Option<SourceSettings>,
    /// The HTTP service's own settings.
    pub service: ServiceSettings,
}

/// Requests per rerank-worker pass, and requests waiting: reranking costs ~100× a query
/// encoding, so the queue is short and a full one answers 503 quickly.
const DEFAULT_RERANK_BATCH: usize = 8;
const DEFAULT_RERANK_QUEUE: usize = 64;

/// A setting that cannot be used, with what to fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

/// The error for setting `name`.
fn bad(name: &str, reason: String) -> SettingsError {
    SettingsError(format!("setting {name}: {reason}"))
}

/// Setting `name`'s count: as given, at least 1, else `default`.
fn positive(name: &str, value: Option<usize>, default: usize) -> Result<usize, SettingsError> {
    match value {
        Some(0) => Err(bad(name, "must be at least 1".into())),
        Some(v) => Ok(v),
        None => Ok(default),
    }
}

impl ServerSettings {
    /// Stacks flags and environment (`cli`, as clap parsed them) over the `--config` file and
    /// the defaults, then validates.
    pub fn resolve(cli: SettingsLayer) -> Result<ServerSettings, SettingsError> {
        environment::check_names(std::env::vars_os().filter_map(|(name, _)| name.into_string().ok()))?;
        let file = match &cli.config {
            Some(path) => SettingsLayer::from_toml_file(path)?,
            None => SettingsLayer::default(),
        };
        Self::validate(cli.over(file))
    }

    fn validate(layer: SettingsLayer) -> Result<ServerSettings, SettingsError> {
        let source = source::resolve(&layer, layer.write_key.is_some())?;
        // Read before the keys move out of the layer; refused where it always was, after them.
        let limits = Limits::from_layer(&layer);
        let replica_of = source.as_ref().map(|source| source.url.clone());
        let device_text = layer.device.unwrap_or_else(|| "auto".into());
        let device = device_text.parse::<DeviceChoice>().map_err(|e| bad("device", e.to_string()))?;
        let precision = layer
            .precision
            .map(|p| p.parse::<hyrank_engine::Precision>().map_err(|e| bad("precision", e.to_string())))
            .transpose()?;
        let bind_text = layer.bind.unwrap_or_else(|| "127.0.0.1:8080".into());
        let bind = resolve_bind(&bind_text).map_err(|reason| bad("bind", reason))?;
        let cors_origins = layer
            .cors_origins
            .as_deref()
            .map(str::parse::<CorsOrigins>)
            .transpose()
            .map_err(|reason| bad("cors_origins", reason))?
            .unwrap_or_default();
        // A key is read trimmed, as the key a request presents is: a secret file's trailing
        // newline is no part of it (kept, the server started and refused every client).
        let key = |name: &str, value: Option<Secret>| match value.map(|k| Secret(k.expose().trim().to_string())) {
            Some(k) if k.expose().len() < 16 => Err(bad(name, "must be at least 16 characters".into())),
            other => Ok(other),
        };
        let search_key = key("search_key", layer.search_key)?;
        let admin_key = key("admin_key", layer.admin_key)?;
        let write_key = key("write_key", layer.write_key)?;
        // Settings checks at start-up, not a request's key: timing does not matter here.
        let same = |a: &Option<Secret>, b: &Option<Secret>| {
            a.is_some() && a.as_ref().map(Secret::expose) == b.as_ref().map(Secret::expose)
        };
        if same(&search_key, &admin_key) {
            return Err(bad("admin_key", "must differ from search_key".into()));
        }
        if same(&write_key, &search_key) {
            return Err(bad("write_key", "must differ from search_key".into()));
        }
        let limits = limits?;
        Ok(ServerSettings {
            index_dir: layer.index_dir.unwrap_or_else(|| "data/index".into()),
            model_dir: layer.model_dir.unwrap_or_else(|| "models/all-MiniLM-L6-v2".into()),
            device,
            precision,
            bind,
            workers: check_workers(layer.workers.unwrap_or(2)).map_err(|e| bad("workers", e))?,
            query_batcher: match layer.query_batch.unwrap_or(0) {
                0 if layer.query_queue.is_some() => {
                    return Err(bad("query_queue", "is set but query_batch is 0: no model worker, so no queue".into()))
                }
                0 => None,
                max_batch => Some(hyrank_engine::batcher::BatcherSettings {
                    max_batch,
                    queue_capacity: positive(
                        "query_queue",
                        layer.query_queue,
                        hyrank_engine::batcher::BatcherSettings::default().queue_capacity,
                    )?,
                }),
            },
            rerank_worker: match layer.rerank_batch.unwrap_or(DEFAULT_RERANK_BATCH) {
                0 if layer.rerank_queue.is_some() => {
                    return Err(bad(
                        "rerank_queue",
                        "is set but rerank_batch is 0: no rerank worker, so no queue".into(),
                    ))
                }
                0 => None,
                max_batch => Some(hyrank_engine::batcher::BatcherSettings {
                    max_batch,
                    queue_capacity: positive("rerank_queue", layer.rerank_queue, DEFAULT_RERANK_QUEUE)?,
                }),
            },
            query_cache_entries: layer
                .query_cache_entries
                .unwrap_or(hyrank_engine::request::defaults::QUERY_CACHE_ENTRIES),
            rerank_cache_entries: layer
                .rerank_cache_entries
                .unwrap_or(hyrank_engine::request::defaults::RERANK_CACHE_ENTRIES),
            max_concurrent_reranks: match layer.max_concurrent_reranks {
                Some(0) => return Err(bad("max_concurrent_reranks", "must be at least 1, got 0".into())),
                Some(n) => n,
                None => std::thread::available_parallelism().map_or(1, usize::from),
            },
            rerank_budget: hyrank_engine::request::check_rerank_budget(layer.rerank_budget_ms).map_err(|_| {
                let max = hyrank_engine::request::MAX_RERANK_BUDGET_MS;
                let got = layer.rerank_budget_ms.unwrap_or_default();
                bad("rerank_budget_ms", format!("must be between 1 and {max} milliseconds, got {got}"))
            })?,
            rerank_precision: layer
                .rerank_precision
                .map(|p| p.parse().map_err(|e: hyrank_engine::Error| bad("rerank_precision", e.to_string())))
                .transpose()?,
            watch_secs: layer.watch_secs.unwrap_or(5),
            source,
            service: ServiceSettings {
                limits,
                search_key,
                admin_key,
                write_key,
                response_cache_entries: layer
                    .response_cache_entries
                    .unwrap_or(ServiceSettings::default().response_cache_entries),
                response_cache_bytes: layer
                    .response_cache_bytes
                    .unwrap_or(ServiceSettings::default().response_cache_bytes),
                cors_origins,
                replica_of,
                warm_up: layer.warm_up.unwrap_or(ServiceSettings::default().warm_up),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn parse(args: &[&str]) -> SettingsLayer {
        SettingsLayer::try_parse_from(std::iter::once("hyrank-serve").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn flags_beat_the_file_which_beats_defaults() {
        let file: SettingsLayer = toml::from_str("max_k = 50\nworkers = 3\nbind = \"0.0.0.0:9000\"").unwrap();
        let settings = ServerSettings::validate(parse(&["--max-k", "20"]).over(file)).unwrap();
        assert_eq!(settings.service.limits.max_k, 20); // flag
        assert_eq!(settings.workers, 3); // file
        assert_eq!(settings.bind, ["0.0.0.0:9000".parse::<SocketAddr>().unwrap()]); // file
        assert_eq!(settings.service.limits.max_candidates, 1000); // default
        assert_eq!(settings.watch_secs, 5);
        assert_eq!(settings.query_batcher, None, "the model worker is opt-in");
        let batched = ServerSettings::validate(parse(&["--query-batch", "8"])).unwrap();
        assert_eq!(batched.query_batcher.map(|b| (b.max_batch, b.queue_capacity)), Some((8, 256)));
    }

    #[test]
    fn a_key_is_read_trimmed_as_a_request_presents_it() {
        let file: SettingsLayer = toml::from_str("search_key = \"searchkey-0123456789\\n\"").unwrap();
        let settings = ServerSettings::validate(file).unwrap();
        assert_eq!(settings.service.search_key.as_ref().map(Secret::expose), Some("searchkey-0123456789"));
    }

    #[test]
    fn unknown_file_keys_are_refused_with_their_name() {
        let error = toml::from_str::<SettingsLayer>("max_kk = 5").unwrap_err().to_string();
        assert!(error.contains("max_kk"), "{error}");
    }

    #[test]
    fn a_file_error_never_shows_a_credential() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hyrank.toml");
        for (text, key) in [
            ("workers = 2\nadmin_key = s3cr3t-value\n", "admin_key"),
            ("admin_key = 987654321\n", "admin_key"),
            ("source_secret_access_key = [\"s3cr3t-value\"]\n", "source_secret_access_key"),
            ("admin_key =\n\"s3cr3t-value==\"\n", "admin_key"),
            ("admin_key = [\n  s3cr3t-value==\n]\n", "admin_key"),
            ("admin_key = \"\"\"\ns3cr3t-value=abc", "admin_key"),
        ] {
            std::fs::write(&path, text).unwrap();
            let error = SettingsLayer::from_toml_file(&path).unwrap_err().to_string();
            assert!(error.contains(key) && error.contains("line"), "{error}");
            assert!(!error.contains("s3cr3t") && !error.contains("987654321"), "{error}");
        }
    }

    #[test]
    fn the_file_error_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hyrank.toml");
        std::fs::write(&path, "workers = \"two\"\n").unwrap();
        let error = SettingsLayer::from_toml_file(&path).unwrap_err().to_string();
        assert!(error.contains("hyrank.toml") && error.contains("workers"), "{error}");
    }

    #[test]
    fn bad_values_name_the_setting() {
        for (args, expected) in [
            (&["--workers", "0"][..], "setting workers: must be at least 1"),
            (&["--body-timeout-secs", "9300000000000000000"][..], "setting body_timeout_secs: must be at most 86400"),
            (&["--workers", "513"][..], "setting workers: must be at most 512 (actix's bound), got 513"),
            (&["--bind", "localhost"][..], "setting bind: \"localhost\" is not an address like"),
            (
                &["--cors-origins", "shop.example.com"][..],
                "setting cors_origins: \"shop.example.com\" is not an origin",
            ),
            (&["--device", "gpu"][..], "setting device"),
            (&["--admin-key", "short"][..], "setting admin_key: must be at least 16"),
            (&["--max-k", "100000"][..], "setting max_k: the engine serves at most"),
            (&["--max-rerank-depth", "500"][..], "setting max_rerank_depth: the engine reranks at most 200"),
            (&["--max-k", "200", "--max-candidates", "150"][..], "setting max_candidates: is 150 but max_k is 200"),
            (&["--search-key", "0123456789abcdef", "--admin-key", "0123456789abcdef"][..], "must differ"),
            (&["--source-region", "eu-west-1"][..], "setting source_region: is set but there is no source"),
            (
                &["--source", "s3://b/p", "--write-key", "write-key-0123456789"][..],
                "setting write_key: a replica (source s3://b/p) takes no writes",
            ),
            (
                &["--source", "s3://b/p", "--max-live-items", "5"][..],
                "setting max_live_items: bounds writes, and a replica",
            ),
            (&["--query-queue", "32"][..], "setting query_queue: is set but query_batch is 0"),
            (&["--rerank-batch", "0", "--rerank-queue", "8"][..], "setting rerank_queue: is set but rerank_batch is 0"),
            (
                &["--source", "file:///srv/gens", "--source-endpoint", "http://x"][..],
                "setting source: file:///srv/gens",
            ),
        ] {
            let error = ServerSettings::validate(parse(args)).unwrap_err().to_string();
            assert!(error.contains(expected), "{args:?}: {error}");
        }
    }

    #[test]
    fn no_layer_nor_the_validated_settings_show_a_credential() {
        let secrets =
            ["search-key-0123456789", "admin-key-0123456789", "write-key-0123456789", "AKIDEXAMPLE", "s3cr3t"];
        let file: SettingsLayer = toml::from_str(&format!(
            "search_key = \"{}\"\nadmin_key = \"{}\"\nsource = \"s3://b/p\"\nsource_access_key_id = \"{}\"",
            secrets[0], secrets[1], secrets[3]
        ))
        .unwrap();
        let cli = parse(&["--write-key", secrets[2], "--source-secret-access-key", secrets[4]]);
        let layers = format!("{file:?} {cli:?}");
        // A replica takes no write key: the write key is validated on a server without a source.
        let write = ServerSettings::validate(parse(&["--write-key", secrets[2]])).unwrap();
        let settings = ServerSettings::validate(cli.over(file).over(parse(&["--write-key", secrets[2]]))).err();
        assert!(settings.is_some_and(|e| !e.to_string().contains(secrets[2])), "the refusal names no key");
        let cli = parse(&["--source-secret-access-key", secrets[4]]);
        let file: SettingsLayer = toml::from_str(&format!(
            "search_key = \"{}\"\nadmin_key = \"{}\"\nsource = \"s3://b/p\"\nsource_access_key_id = \"{}\"",
            secrets[0], secrets[1], secrets[3]
        ))
        .unwrap();
        let settings = ServerSettings::validate(cli.over(file)).unwrap();
        assert_eq!(settings.service.admin_key.as_ref().map(Secret::expose), Some(secrets[1]), "kept, only hidden");
        let shown = format!("{layers} {settings:?} {write:?}");
        for secret in secrets {
            assert!(!shown.contains(secret), "{secret} shown in {shown}");
        }
    }
}
