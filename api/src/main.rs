//! `hyrank-serve`: serves the current generation of an index over HTTP, and swaps in newly
//! published generations without downtime.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpServer};
use anyhow::Context;
use clap::Parser;
use hyrank_api::settings::{ServerSettings, SettingsLayer};
use hyrank_api::{configure, reload, AppState};
use hyrank_engine::live::EventLog;
use hyrank_engine::{EmbedderSettings, Engine, RuntimeSettings};

fn run(cli: SettingsLayer) -> anyhow::Result<()> {
    if cli.print_openapi {
        print!("{}", hyrank_api::openapi::json());
        return Ok(());
    }
    let settings = ServerSettings::resolve(cli)?;
    // A replica brings the published generation in before it opens anything: a fresh replica
    // starts from an empty folder.
    let remote = match &settings.source {
        Some(source) => {
            let remote = hyrank_engine::generation::remote::Remote::open_with(&source.url, &source.option_pairs())?;
            match remote.pull(&settings.index_dir) {
                Ok(Some(dir)) => tracing::info!(source = remote.url(), "pulled {}", dir.display()),
                Ok(None) => {}
                // Serving what is already here beats not serving; with nothing here, opening
                // the index fails below and says so.
                Err(e) => tracing::error!(error = %e, source = remote.url(), "pulling the current generation failed"),
            }
            Some(remote)
        }
        None => None,
    };
    // max_tokens is taken from the generation's manifest when the engine opens.
    let embedder = EmbedderSettings {
        device: settings.device,
        precision: settings.precision,
        ..EmbedderSettings::new(settings.model_dir.clone())
    };
    let runtime = RuntimeSettings {
        query_cache_entries: settings.query_cache_entries,
        rerank_cache_entries: settings.rerank_cache_entries,
        query_batcher: settings.query_batcher,
        rerank_workers: settings.rerank_worker,
        rerank_precision: settings.rerank_precision,
    };
    let mut engine = Engine::open_with_runtime(&settings.index_dir, &embedder, runtime)
        .with_context(|| format!("opening the index at {}", settings.index_dir.display()))?;
    // The live event log beside the generations: replayed now, appended to by POST /v1/events.
    let live = EventLog::open(&settings.index_dir, engine.manifest().live_folded_through())
        .context("opening the live event log")?;
    engine.attach_live(Arc::new(live));
    let state = AppState::with_settings(Arc::new(engine), Some(settings.index_dir.clone()), settings.service.clone());
    if settings.watch_secs > 0 {
        reload::spawn_watcher(state.clone(), Duration::from_secs(settings.watch_secs))
            .context("starting the generation watcher")?;
    }
    if let Some(remote) = remote.filter(|_| settings.watch_secs > 0) {
        reload::spawn_puller(state.clone(), remote, Duration::from_secs(settings.watch_secs))
            .context("starting the generation puller")?;
    }
    let bind = settings.bind.clone();
    tracing::info!(
        index = %settings.index_dir.display(),
        generation = %state.engine().manifest().generation,
        search_key = settings.service.search_key.is_some(),
        admin_key = settings.service.admin_key.is_some(),
        write_key = settings.service.write_key.is_some(),
        watch_secs = settings.watch_secs,
        source = settings.source.as_ref().map_or("none", |s| s.url.as_str()),
        "starting (analyst page /ui, API docs /docs/)"
    );
    actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(move || App::new().configure(configure(state.clone())))
            .workers(settings.workers)
            .bind(&bind[..])
            .with_context(|| {
                let addresses: Vec<String> = bind.iter().map(ToString::to_string).collect();
                format!("binding {}", addresses.join(", "))
            })?;
        // The address bound, not the one asked for: port 0 asks the system for a free port.
        for address in server.addrs() {
            tracing::info!("serving on http://{address}");
        }
        server.run().await.context("server failed")
    })
}

fn main() -> ExitCode {
    // As in `hyrank`: past a file-size limit, a live-log append fails with EFBIG (answered
    // as an error, the log refusing writes until a restart) instead of the process being
    // killed by SIGXFSZ.
    #[cfg(unix)]
    // SAFETY: changing one signal's disposition before any other thread exists.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HYRANK_LOG").unwrap_or_else(|_| "info,hnsw_rs=warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: log files and collectors get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(SettingsLayer::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", hyrank_engine::error::report(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}
