//! Fuzzing at volume (issue 18): every reader (catalog JSON Lines and CSV, plain, gzip and zstd,
//! whole and corrupted; interactions; the server's settings TOML) and every request body,
//! against generated inputs.
//! Nothing may panic: a reader returns items and rejects or an error, a request gets an answer
//! below 500. Ignored in the normal run (`scripts/test.sh` runs each at a few cases through
//! `inputs_of_every_kind_are_read_without_panics`); `scripts/fuzz.sh` runs them at volume
//! (`HYRANK_FUZZ_CASES` per reader family, `HYRANK_FUZZ_REQUESTS` request bodies) and reports
//! inputs tried and time.
//!
//! Inputs are built from fragments of the formats (keys, quotes, separators, numbers at the
//! edges of f64 and u64, byte-order marks, invalid UTF-8, nulls, deep nesting) and from the
//! fixture files with bytes flipped, so that most of them get past the first byte.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use actix_web::test;
use hyrank_api::AppState;
use hyrank_engine::live::EventLog;
use hyrank_engine::Engine;
use hyrank_indexer::input::{read_catalog, read_interactions, CatalogFormat, CatalogKind, InteractionFormat};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

use crate::service::{call, service};
use crate::swaps::publish_copy;

/// Cases per target: the variable `name` (`HYRANK_FUZZ_CASES` for each reader family,
/// `HYRANK_FUZZ_REQUESTS` for request bodies), or `default`.
fn cases(name: &str, default: u32) -> u32 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() })
}

/// Text built from `pieces`, or the bytes of `seed` with some flipped.
fn fragments(pieces: &'static [&'static str], seed: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let built = prop::collection::vec(prop::sample::select(pieces), 0..80).prop_map(|p| p.concat().into_bytes());
    let flipped = prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..12).prop_map(move |flips| {
        let mut bytes = seed.clone();
        for (at, value) in flips {
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
        }
        bytes
    });
    let raw = prop::collection::vec(any::<u8>(), 0..400);
    prop_oneof![4 => built, 4 => flipped, 1 => raw]
}

const JSON_PIECES: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\n",
    "\r\n",
    " ",
    "\u{feff}",
    "\"id\"",
    "\"_id\"",
    "\"title\"",
    "\"text\"",
    "\"fields\"",
    "\"metadata\"",
    "\"price\"",
    "\"tags\"",
    "\"x\"",
    "\"\"",
    "\"a\\u0000b\"",
    "\"\\ud800\"",
    "null",
    "true",
    "false",
    "0",
    "-0",
    "1e2",
    "1e400",
    "-1e400",
    "18446744073709551616",
    "3.5",
    "NaN",
    "\"25\"",
    "\"é\"",
    "\"帐篷\"",
    "\"الْجِبَال\"",
    "\u{200b}",
    "\\",
    "\"",
    "\u{0}",
    "{\"id\": \"A\", \"title\": \"t\"}\n",
];

const CSV_PIECES: &[&str] = &[
    "id,title,text,price\n",
    "user,item,weight,timestamp\n",
    ",",
    "\n",
    "\r\n",
    "\"",
    "\"\"",
    "\u{feff}",
    "A",
    "B",
    "PRG-001",
    "u1",
    "1",
    "-1",
    "0",
    "1e400",
    "NaN",
    "inf",
    "9223372036854775808",
    "x y",
    "é",
    "\u{0}",
    " ",
];

const TOML_PIECES: &[&str] = &[
    "index_dir = \"x\"\n",
    "bind = \"127.0.0.1:0\"\n",
    "max_k = ",
    "max_events = ",
    "0",
    "1",
    "-1",
    "99999999999999999999",
    "\"s\"",
    "\n",
    "[limits]\n",
    "device = \"cuda\"\n",
    "device = \"gpu:7\"\n",
    "precision = \"int4\"\n",
    "search_key = \"short\"\n",
    "admin_key = \"0123456789abcdef0\"\n",
    "write_key = \"0123456789abcdef0\"\n",
    "=",
    "[",
    "]",
    "\"",
    "'",
    "#",
    "\u{feff}",
    "watch_secs = 1e400\n",
];

fn read_all_kinds(dir: &Path, bytes: &[u8]) {
    let item_index: HashMap<&str, u32> = [("A", 0), ("PRG-001", 1)].into_iter().collect();
    let gzip = |bytes: &[u8]| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut encoder, bytes).unwrap();
        encoder.finish().unwrap()
    };
    // As JSON Lines (plain and gzip); as CSV with field columns typed over the file, split
    // into lists, and declared as numbers.
    for (name, content) in [("catalog.jsonl", bytes.to_vec()), ("catalog.jsonl.gz", gzip(bytes))] {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        let _ = read_catalog(&path, &CatalogFormat::default());
    }
    let path = dir.join("catalog.csv");
    std::fs::write(&path, bytes).unwrap();
    let csv = CatalogFormat {
        kind: Some(CatalogKind::Csv),
        id_column: "id".into(),
        title_column: "title".into(),
        field_columns: vec!["price".into()],
        ..CatalogFormat::default()
    };
    let _ = read_catalog(&path, &csv);
    let _ = read_catalog(&path, &CatalogFormat { field_columns: Vec::new(), ..csv.clone() });
    let lists = CatalogFormat { list_separator: Some("|".into()), ..csv.clone() };
    let _ = read_catalog(&path, &lists);
    let declared =
        CatalogFormat { field_types: [("price".to_string(), hyrank_indexer::input::FieldType::Number)].into(), ..csv };
    let _ = read_catalog(&path, &declared);
    let path = dir.join("events.csv");
    std::fs::write(&path, bytes).unwrap();
    let _ = read_interactions(&path, &InteractionFormat::default(), &item_index, &[]);
    // The same bytes gzip-compressed: the decompressing reader sees them whole.
    let gz = dir.join("events.csv.gz");
    std::fs::write(&gz, gzip(bytes)).unwrap();
    let _ = read_interactions(&gz, &InteractionFormat::default(), &item_index, &[]);
    // zstd-compressed, whole and with one byte of the compressed stream changed (a corrupt
    // download): the decoder must fail cleanly, never panic.
    let mut zst = ruzstd::encoding::compress_to_vec(bytes, ruzstd::encoding::CompressionLevel::Fastest);
    let path = dir.join("catalog.jsonl.zst");
    std::fs::write(&path, &zst).unwrap();
    let _ = read_catalog(&path, &CatalogFormat::default());
    let at = 4 + bytes.len() % zst.len().saturating_sub(4).max(1);
    if let Some(byte) = zst.get_mut(at) {
        *byte ^= 0x5a;
    }
    std::fs::write(&path, &zst).unwrap();
    let _ = read_catalog(&path, &CatalogFormat::default());
}

/// Every reader over `cases` inputs of each family; returns how many inputs were read.
fn fuzz_readers(cases: u32) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let catalog = std::fs::read(hyrank_tests::fixture("catalog.jsonl")).unwrap();
    let interactions = std::fs::read(hyrank_tests::fixture("interactions.csv")).unwrap();
    let mut tried = 0;
    for strategy in [
        fragments(JSON_PIECES, catalog[..4000.min(catalog.len())].to_vec()).boxed(),
        fragments(CSV_PIECES, interactions[..2000.min(interactions.len())].to_vec()).boxed(),
    ] {
        runner(cases)
            .run(&strategy, |bytes| {
                read_all_kinds(dir.path(), &bytes);
                Ok(())
            })
            .unwrap();
        tried += u64::from(cases);
    }
    let toml = fragments(TOML_PIECES, b"bind = \"127.0.0.1:8080\"\nmax_k = 50\n".to_vec());
    runner(cases)
        .run(&toml, |bytes| {
            let path = dir.path().join("settings.toml");
            std::fs::write(&path, &bytes).unwrap();
            let layer = hyrank_api::settings::SettingsLayer { config: Some(path), ..Default::default() };
            let _ = hyrank_api::settings::ServerSettings::resolve(layer);
            Ok(())
        })
        .unwrap();
    tried + u64::from(cases)
}

/// JSON values of the shapes requests take, keys from every request's vocabulary.
fn request_value() -> impl Strategy<Value = Value> {
    let keys = prop::sample::select(vec![
        "query",
        "k",
        "mode",
        "filters",
        "user",
        "weights",
        "fusion",
        "rerank",
        "candidates",
        "bm25",
        "explain",
        "events",
        "item",
        "weight",
        "timestamp",
        "fields",
        "title",
        "text",
        "batch_id",
        "k1",
        "b",
        "fuzziness",
        "prefix",
        "depth",
        "recent",
        "exclude_seen",
        "cold_items",
        "gt",
        "lt",
        "in",
        "price",
        "category",
        "dense",
        "cf",
        "kind",
        "rrf",
        "",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(vec![0u64, 1, 3, 10, 100, 1000, 1_000_000, u64::MAX]).prop_map(Value::from),
        "[a-z \\-\u{0}-\u{1f}\u{200b}帐篷é]{0,24}".prop_map(Value::String),
        prop::sample::select(vec![
            "hybrid",
            "bm25",
            "dense",
            "cf",
            "rrf",
            "linear",
            "linear_floor",
            "dbsf",
            "auto",
            "off",
            "last",
            "u001",
            "PRG-001"
        ])
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 48, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..8)
                .prop_map(|pairs| Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

/// Every request body route over `cases` generated bodies; returns how many requests were made
/// and how many were answered 2xx (the rest 4xx).
async fn fuzz_requests(cases: u32) -> (u64, u64) {
    let root = tempfile::tempdir().unwrap();
    publish_copy(root.path(), "000001", false);
    let mut engine = Engine::open(root.path(), &hyrank_tests::embedder_settings()).unwrap();
    let log = EventLog::open(root.path(), engine.manifest().live_folded_through()).unwrap();
    engine.attach_live(Arc::new(log));
    let settings =
        hyrank_api::ServiceSettings { admin_key: Some("fuzz-admin-key-0123456789".into()), ..Default::default() };
    let app = service(AppState::with_settings(Arc::new(engine), Some(root.path().to_path_buf()), settings)).await;
    let mut runner = runner(cases);
    let strategy = request_value();
    let (mut tried, mut served) = (0, 0);
    // Each route with a valid body, so that a body with one value replaced gets past the
    // shape check and reaches the route's own checks and the engine.
    let routes: [(&str, &str, Value); 5] = [
        ("POST", "/v1/search", serde_json::json!({"query": "tent", "k": 5, "explain": true})),
        ("POST", "/v1/recommend", serde_json::json!({"user": "u001", "k": 5})),
        ("POST", "/v1/events", serde_json::json!({"events": [{"user": "u1", "item": "PRG-001"}]})),
        ("PUT", "/v1/items/FUZZ-1", serde_json::json!({"title": "t", "text": "x"})),
        ("PUT", "/v1/items/PRG-001/fields", serde_json::json!({"fields": {"price": 1}})),
    ];
    for _ in 0..cases {
        let body = strategy.new_tree(&mut runner).unwrap().current();
        let key = ("authorization", "Bearer fuzz-admin-key-0123456789");
        for (method, uri, valid) in &routes {
            // The generated body as it is, and the valid body with one of its values (or a
            // value one level down) replaced by the generated one.
            let mut mutated = valid.clone();
            let keys: Vec<String> = valid.as_object().unwrap().keys().cloned().collect();
            let at = &keys[tried as usize % keys.len()];
            match (&mut mutated[at.as_str()], body.as_object().and_then(|o| o.iter().next())) {
                (Value::Object(inner), Some((name, value))) => {
                    inner.insert(name.clone(), value.clone());
                }
                (slot, _) => *slot = body.clone(),
            }
            for sent in [&body, &mutated] {
                let request = match *method {
                    "POST" => test::TestRequest::post(),
                    _ => test::TestRequest::put(),
                };
                let (status, _, answer) = call(&app, request.uri(uri).insert_header(key).set_json(sent)).await;
                assert!(status.as_u16() < 500, "{status} for {method} {uri} {sent}: {answer}");
                tried += 1;
                served += u64::from(status.is_success());
            }
        }
        // The same value as a query string of the similar route.
        let query = body.as_object().map_or(String::new(), |o| {
            o.iter().map(|(k, v)| format!("{}={}", percent(k), percent(&v.to_string()))).collect::<Vec<_>>().join("&")
        });
        let similar = test::TestRequest::get().uri(&format!("/v1/items/PRG-001/similar?{query}")).insert_header(key);
        let (status, _, answer) = call(&app, similar).await;
        assert!(status.as_u16() < 500, "{status} for ?{query}: {answer}");
        tried += 1;
        served += u64::from(status.is_success());
    }
    (tried, served)
}

/// `text` percent-encoded for a query string (every byte but the unreserved ones).
fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The fuzz targets at a few cases each, so the normal run keeps them compiling and honest.
#[actix_web::test]
async fn inputs_of_every_kind_are_read_without_panics() {
    fuzz_readers(24);
    fuzz_requests(12).await;
}

/// The readers at volume: `HYRANK_FUZZ_CASES=N scripts/fuzz.sh`.
#[core::prelude::v1::test]
#[ignore = "run at volume by scripts/fuzz.sh"]
fn fuzz_readers_at_volume() {
    let start = std::time::Instant::now();
    let tried = fuzz_readers(cases("HYRANK_FUZZ_CASES", 20_000));
    println!("FUZZ readers: {tried} inputs in {:.1} s, 0 panics", start.elapsed().as_secs_f64());
}

/// The request bodies at volume: `HYRANK_FUZZ_CASES=N scripts/fuzz.sh`.
#[actix_web::test]
#[ignore = "run at volume by scripts/fuzz.sh"]
async fn fuzz_requests_at_volume() {
    let start = std::time::Instant::now();
    let (tried, served) = fuzz_requests(cases("HYRANK_FUZZ_REQUESTS", 2_000)).await;
    println!(
        "FUZZ requests: {tried} requests in {:.1} s, {served} answered 2xx, the rest 4xx, 0 answers of 500 or more",
        start.elapsed().as_secs_f64()
    );
}
