//! `hyrank-serve`: serves the current generation of an index over HTTP.

use std::path::PathBuf;
use std::process::ExitCode;

use actix_web::{App, HttpServer};
use anyhow::Context;
use clap::Parser;
use hyrank_api::{configure, AppState};
use hyrank_engine::{DeviceChoice, EmbedderSettings, Engine};

/// Serves hyrank's search, recommendation and explanation API.
#[derive(Parser)]
#[command(version, about)]
struct Settings {
    /// Index root written by `hyrank index`; its CURRENT generation is served.
    #[arg(long, env = "HYRANK_INDEX_DIR", default_value = "data/index")]
    index_dir: PathBuf,
    /// Model folder; must hold the weights the index was built with.
    #[arg(long, env = "HYRANK_MODEL_DIR", default_value = "models/all-MiniLM-L6-v2")]
    model_dir: PathBuf,
    /// Device for query encoding and reranking: auto, cpu, cuda or cuda:N.
    #[arg(long, env = "HYRANK_DEVICE", default_value = "auto")]
    device: String,
    /// Address to listen on. Loopback by default: expose it deliberately.
    #[arg(long, env = "HYRANK_BIND", default_value = "127.0.0.1:8080")]
    bind: String,
    /// HTTP worker threads (model work runs on a separate blocking pool).
    #[arg(long, env = "HYRANK_WORKERS", default_value_t = 2)]
    workers: usize,
}

fn run(settings: Settings) -> anyhow::Result<()> {
    let device: DeviceChoice = settings.device.parse().context("--device")?;
    anyhow::ensure!(settings.workers > 0, "--workers must be at least 1");
    // max_tokens is taken from the generation's manifest when the engine opens.
    let embedder = EmbedderSettings { device, ..EmbedderSettings::new(settings.model_dir.clone()) };
    let engine = Engine::open(&settings.index_dir, &embedder)
        .with_context(|| format!("opening the index at {}", settings.index_dir.display()))?;
    let state = AppState::new(engine);
    let bind = settings.bind.clone();
    eprintln!("hyrank-serve: serving {} on http://{bind}", settings.index_dir.display());
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || App::new().configure(configure(state.clone())))
            .workers(settings.workers)
            .bind(&bind)
            .with_context(|| format!("binding {bind}"))?
            .run()
            .await
            .context("server failed")
    })
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HYRANK_LOG").unwrap_or_else(|_| "info,hnsw_rs=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Settings::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
