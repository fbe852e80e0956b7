//! `hyrank-serve`: serves the current generation of an index over HTTP, and swaps in newly
//! published generations without downtime.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches};
use hyrank_api::settings::{ServerSettings, SettingsLayer};
use hyrank_api::{reload, AppState};
use hyrank_engine::live::EventLog;
use hyrank_engine::{EmbedderSettings, Engine, RuntimeSettings};

fn run(cli: SettingsLayer) -> anyhow::Result<()> {
    if cli.print_openapi {
        print!("{}", hyrank_api::openapi::json());
        return Ok(());
    }
    let settings = ServerSettings::resolve(cli)?;
    let remote = match &settings.source {
        Some(source) => {
            Some(hyrank_engine::generation::remote::Remote::open_with(&source.url, &source.option_pairs())?)
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
        rerank_slots: Some(settings.max_concurrent_reranks),
        rerank_budget: settings.rerank_budget,
    };
    let open = || {
        Engine::open_with_runtime(&settings.index_dir, &embedder, runtime)
            .with_context(|| format!("opening the index at {}", settings.index_dir.display()))
    };
    // A replica brings the published generation in before it opens anything: a fresh replica
    // starts from an empty folder.
    let (mut engine, refused) = match &remote {
        Some(remote) => {
            let started = hyrank_api::replica::start(&settings.index_dir, remote, open)?;
            (started.engine, started.refused)
        }
        None => (open()?, None),
    };
    // The live event log beside the generations: replayed now, appended to by POST /v1/events.
    let live = EventLog::open(&settings.index_dir, engine.manifest().live_folded_through())
        .context("opening the live event log")?;
    engine.attach_live(Arc::new(live));
    // Before the first request: its models warm, a rerank budget's pass times known.
    if settings.service.warm_up {
        reload::warm_up(&engine);
    }
    let mut state =
        AppState::with_settings(Arc::new(engine), Some(settings.index_dir.clone()), settings.service.clone());
    let remote = remote.map(Arc::new);
    if let Some(remote) = &remote {
        state = state.pulling_from(Arc::clone(remote));
    }
    if let Some(name) = refused {
        state.refused_at_start(name);
    }
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
    #[cfg(unix)]
    let hung_up = state.clone();
    actix_web::rt::System::new().block_on(async move {
        // SIGHUP, which a closing terminal and many supervisors send, killed the server at once
        // (no drain, no log line); it now asks for the generation CURRENT names, as a daemon's
        // HUP conventionally reloads and as `POST /admin/reload` does.
        #[cfg(unix)]
        let mut hangups =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).context("listening for SIGHUP")?;
        #[cfg(unix)]
        actix_web::rt::spawn(async move {
            while hangups.recv().await.is_some() {
                let state = hung_up.clone();
                match actix_web::web::block(move || state.refresh()).await {
                    Ok(Ok(outcome)) => tracing::info!(?outcome, "SIGHUP: generation checked"),
                    // Refusals and failures are logged and counted where they happen.
                    Ok(Err(e)) => tracing::warn!(error = %e, "SIGHUP: generation not swapped"),
                    Err(_) => tracing::error!("SIGHUP: the reload panicked"),
                }
            }
        });
        let per_worker = connections_per_worker(open_files_limit(), settings.workers);
        tracing::info!(
            connections = per_worker * settings.workers,
            "accepting at most this many connections at once (below the open-file limit)"
        );
        let server = hyrank_api::http_server!(state)
            .workers(settings.workers)
            .max_connections(per_worker)
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

/// File descriptors kept for everything but connections: the generation's files (tantivy's
/// segments, sled, the vectors), a second generation opening beside it during a swap, the
/// live log, the blocking pool's work.
const FILES_RESERVE: u64 = 1024;

/// actix's own bound per worker, kept where the open-file limit allows more.
const ACTIX_CONNECTIONS_PER_WORKER: usize = 25_000;

/// The process's soft limit on open files; `None` where it cannot be read or is unlimited.
fn open_files_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes the struct it is given and nothing else.
        let read = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
        (read && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur as u64)
    }
    #[cfg(not(unix))]
    None
}

/// Connections each worker accepts at once: actix's 25,000, or less so that all workers
/// together stay [`FILES_RESERVE`] below the open-file limit. At actix's default, two workers
/// took 20,000 connections under a 20,000 limit: `accept` failed with "Too many open files"
/// in a loop, probes timed out, and a swap or a live-log file could not have been opened.
/// Past the bound, new connections wait in the listen backlog while idle ones time out.
fn connections_per_worker(limit: Option<u64>, workers: usize) -> usize {
    let Some(limit) = limit else { return ACTIX_CONNECTIONS_PER_WORKER };
    let room = limit.saturating_sub(FILES_RESERVE) / workers.max(1) as u64;
    (room as usize).clamp(16, ACTIX_CONNECTIONS_PER_WORKER)
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
    let (filter, misread) = log_filter(std::env::var("HYRANK_LOG").ok().as_deref());
    let (filter, unreadable) = env_filter(&filter);
    let format = log_format(std::env::var("HYRANK_LOG_FORMAT").ok().as_deref());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        // One JSON object a line, values quoted and escaped, for collectors that parse fields
        // (the text form writes `error=cannot open … (os error 2)` unquoted).
        Ok(LogFormat::Json) => logs.json().init(),
        // Colour codes only for a terminal: log files and collectors get plain text.
        _ => logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
    }
    if let Err(value) = format {
        tracing::warn!("HYRANK_LOG_FORMAT is {value:?}, not text or json; logging as text");
    }
    if let Some(e) = unreadable {
        tracing::warn!("HYRANK_LOG is not a log filter ({e}); logging at info");
    }
    for word in misread {
        tracing::warn!(
            "HYRANK_LOG: {word:?} is read as a module's name, not a level (error, warn, info, debug, trace, off)"
        );
    }
    // `--workers -1` is read as a value and refused naming --workers, not as an unknown flag.
    let command = SettingsLayer::command().mut_args(|arg| {
        if arg.get_action().takes_values() {
            arg.allow_negative_numbers(true)
        } else {
            arg
        }
    });
    let matches = command.clone().try_get_matches().unwrap_or_else(|e| {
        let Some(variable) = from_environment(&command, &e) else { e.exit() };
        let _ = e.print();
        eprintln!("note: the value was not on the command line: it came from the environment variable {variable}");
        std::process::exit(e.exit_code())
    });
    let cli = SettingsLayer::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", hyrank_engine::error::report(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// The environment variable a refused value came from, when the command line did not give
/// its flag: clap names the flag (`--max-k`) either way, and an operator who set only
/// `HYRANK_MAX_K` looks for the flag in vain.
fn from_environment(command: &clap::Command, error: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::String(shown)) = error.get(ContextKind::InvalidArg) else { return None };
    let long = shown.split_whitespace().next()?.strip_prefix("--")?;
    let arg = command.get_arguments().find(|a| a.get_long() == Some(long))?;
    let variable = arg.get_env()?.to_string_lossy().into_owned();
    let flag = format!("--{long}");
    let on_command_line = std::env::args().any(|a| a == flag || a.starts_with(&format!("{flag}=")));
    (!on_command_line && std::env::var_os(&variable).is_some()).then_some(variable)
}

/// `filter` as tracing reads it, or, when it cannot read it at all (`access=wran`, `info,[`),
/// the default filter and why, for a warning once logging is up: such a value used to log at
/// info without a word.
fn env_filter(filter: &str) -> (tracing_subscriber::EnvFilter, Option<String>) {
    match tracing_subscriber::EnvFilter::try_new(filter) {
        Ok(filter) => (filter, None),
        Err(e) => (log_filter(None).0.parse().expect("the default filter reads"), Some(e.to_string())),
    }
}

/// How log lines are written (`HYRANK_LOG_FORMAT`).
#[derive(Debug, PartialEq)]
enum LogFormat {
    /// tracing's text lines (the default).
    Text,
    /// One JSON object a line.
    Json,
}

/// The format `HYRANK_LOG_FORMAT` names (`text` when unset), or the value it cannot read.
fn log_format(value: Option<&str>) -> Result<LogFormat, String> {
    match value.map(str::trim) {
        None | Some("") => Ok(LogFormat::Text),
        Some(v) if v.eq_ignore_ascii_case("text") => Ok(LogFormat::Text),
        Some(v) if v.eq_ignore_ascii_case("json") => Ok(LogFormat::Json),
        Some(v) => Err(v.to_string()),
    }
}

/// actix's HTTP/1 dispatcher logs every request it cannot parse at ERROR, without a request
/// id: one line per malformed request line, so any client could fill the log (1,000 lines
/// from 1,000 bad requests in a test). The client is answered 400 (or the connection closed)
/// either way; `HYRANK_LOG=actix_http=error` shows them again.
const QUIET_PARSE_ERRORS: &str = "actix_http::h1::dispatcher=off";

/// The log filter `HYRANK_LOG` asks for (tracing's `EnvFilter` directives), and the words in it
/// that read as a module's name where a level was surely meant (`warning`, `verbose`). A value
/// with no level of its own keeps the default one (info), and hnsw_rs stays at warn unless the
/// value names it: `HYRANK_LOG=warning` used to filter every log line out, errors included,
/// and `HYRANK_LOG=info` to let hnsw_rs log 20 lines a reload.
fn log_filter(value: Option<&str>) -> (String, Vec<String>) {
    const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];
    let value = value.map(str::trim).filter(|v| !v.is_empty());
    let Some(value) = value else { return (format!("info,hnsw_rs=warn,{QUIET_PARSE_ERRORS}"), Vec::new()) };
    let parts: Vec<&str> = value.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
    let is_level = |p: &str| LEVELS.iter().any(|l| l.eq_ignore_ascii_case(p));
    let misread = parts
        .iter()
        .filter(|p| !is_level(p) && !p.contains(['=', ':', '[']) && !p.contains('_'))
        .map(|p| p.to_string())
        .collect();
    let mut filter = String::new();
    if !parts.iter().any(|p| is_level(p)) {
        filter.push_str("info,");
    }
    if !value.contains("hnsw_rs") {
        filter.push_str("hnsw_rs=warn,");
    }
    if !value.contains("actix_http") {
        filter.push_str(QUIET_PARSE_ERRORS);
        filter.push(',');
    }
    filter.push_str(value);
    (filter, misread)
}

#[cfg(test)]
mod tests {
    use super::{env_filter, log_filter, log_format, LogFormat};

    #[test]
    fn a_filter_tracing_cannot_read_is_reported() {
        for unreadable in ["hyrank::access=wran", "info,[", "====="] {
            let (filter, why) = env_filter(&log_filter(Some(unreadable)).0);
            assert!(why.is_some(), "{unreadable}");
            assert_eq!(filter.to_string(), "actix_http::h1::dispatcher=off,hnsw_rs=warn,info", "{unreadable}");
        }
        assert_eq!(env_filter(&log_filter(Some("warn,hyrank::access=off")).0).1, None);
    }

    #[test]
    fn a_log_filter_keeps_a_level_and_names_a_misread_one() {
        let quiet = "actix_http::h1::dispatcher=off";
        assert_eq!(log_filter(None), (format!("info,hnsw_rs=warn,{quiet}"), vec![]));
        assert_eq!(log_filter(Some("warn")), (format!("hnsw_rs=warn,{quiet},warn"), vec![]));
        let misread = format!("info,hnsw_rs=warn,{quiet},warning");
        assert_eq!(log_filter(Some("warning")), (misread, vec!["warning".to_string()]));
        assert_eq!(log_filter(Some("debug,hnsw_rs=info")).0, format!("{quiet},debug,hnsw_rs=info"));
        assert_eq!(log_filter(Some("hyrank_api=debug")).0, format!("info,hnsw_rs=warn,{quiet},hyrank_api=debug"));
        // Naming actix_http lets its parse errors through as asked.
        assert_eq!(log_filter(Some("actix_http=error")).0, "info,hnsw_rs=warn,actix_http=error");
    }

    #[test]
    fn connections_stay_below_the_open_file_limit() {
        use super::connections_per_worker as per_worker;
        assert_eq!(per_worker(Some(20_000), 2), 9_488, "(20,000 - 1,024) / 2");
        assert_eq!(per_worker(Some(1 << 20), 2), 25_000, "actix's own bound");
        assert_eq!(per_worker(None, 4), 25_000);
        assert_eq!(per_worker(Some(1024), 2), 16, "a floor, not zero");
    }

    #[test]
    fn the_log_format_is_text_json_or_said_to_be_neither() {
        assert_eq!(log_format(None), Ok(LogFormat::Text));
        assert_eq!(log_format(Some(" JSON ")), Ok(LogFormat::Json));
        assert_eq!(log_format(Some("text")), Ok(LogFormat::Text));
        assert_eq!(log_format(Some("logfmt")), Err("logfmt".to_string()));
    }
}
