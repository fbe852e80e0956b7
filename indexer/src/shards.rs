//! Catalog embedding split into shards: `hyrank embed --shard i/n` embeds the items whose id
//! falls in shard i (a deterministic split by a hash of the id) and writes their vectors with
//! the model's identity; `hyrank index --embeddings DIR` assembles the shards instead of
//! embedding, so any number of machines (`deploy/ray/embed.py` runs the shards as Ray tasks)
//! can share a large catalog's embedding.
//!
//! A shard file (`shard-I-of-N.bin`), little-endian: `HYRKEMB2`, a `u64` header length, the
//! JSON [`ShardHeader`], then per item a `u32` id length, the id's UTF-8 bytes, the SHA-256
//! (32 bytes) of the text that was embedded ([`hyrank_engine::Item::content`]), and `dim` `f32`
//! values, and last the SHA-256 (32 bytes) of every byte before it. The text's hash lets the
//! assembly tell an item whose text changed since its shard was embedded: such an item, and
//! one no shard holds, is embedded during the build and counted. The file's own hash refuses a
//! shard damaged in transfer, whose vectors would otherwise pass as finite numbers. (Shards
//! written before 2026-12-07 begin `HYRKEMB1` and carry none: read, with a warning.)

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use hyrank_engine::embed::ModelIdentity;
use hyrank_engine::{Embedder, Precision};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::error::{IndexError, Result};

const MAGIC: &[u8; 8] = b"HYRKEMB2";
/// The format before the file's SHA-256 was appended.
const MAGIC_UNCHECKED: &[u8; 8] = b"HYRKEMB1";

/// What a shard was embedded with, and which shard it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardHeader {
    /// The model's identity (name, weights' SHA-256, width).
    pub model: ModelIdentity,
    /// The precision the model ran at.
    pub precision: Precision,
    /// Token limit of an item's encoding.
    pub max_tokens: usize,
    /// This shard's number, from 0.
    pub shard: u32,
    /// Shards in the split.
    pub shards: u32,
    /// Items in this file.
    pub items: usize,
}

/// The shard an item id belongs to among `shards`: the first 8 bytes of the id's SHA-256, as
/// a big-endian number, modulo `shards`. The same on every machine and every run.
pub fn shard_of(id: &str, shards: u32) -> u32 {
    let digest = sha2::Sha256::digest(id.as_bytes());
    let head = u64::from_be_bytes(digest[..8].try_into().expect("a SHA-256 has 32 bytes"));
    (head % u64::from(shards.max(1))) as u32
}

/// SHA-256 of the text an item is embedded from.
pub fn content_hash(content: &str) -> [u8; 32] {
    sha2::Sha256::digest(content.as_bytes()).into()
}

/// The file name of shard `shard` of `shards`.
pub fn file_name(shard: u32, shards: u32) -> String {
    format!("shard-{shard}-of-{shards}.bin")
}

/// Parses `i/n` (`--shard`).
///
/// # Errors
/// Not two whole numbers with `n ≥ 1` and `i < n`.
pub fn parse_shard(spec: &str) -> std::result::Result<(u32, u32), String> {
    let (i, n) = spec.split_once('/').ok_or_else(|| format!("{spec:?} is not i/n"))?;
    let (i, n): (u32, u32) = (
        i.trim().parse().map_err(|_| format!("{spec:?}: {i:?} is not a shard number"))?,
        n.trim().parse().map_err(|_| format!("{spec:?}: {n:?} is not a shard count"))?,
    );
    if n == 0 {
        return Err(format!("{spec:?}: the shard count must be at least 1"));
    }
    if i >= n {
        return Err(format!("{spec:?}: the shard must be 0 to {}", n - 1));
    }
    Ok((i, n))
}

/// Embeds the items of `items` (id, content) that fall in shard `shard` of `shards` and writes
/// them to `out/shard-I-of-N.bin`; returns the file and how many items it holds.
///
/// # Errors
/// Inference, or writing the file.
pub fn embed_shard(
    embedder: &Embedder,
    items: &[(String, String)],
    shard: u32,
    shards: u32,
    out: &Path,
    progress: impl FnMut(usize),
) -> Result<(PathBuf, usize)> {
    let mine: Vec<&(String, String)> = items.iter().filter(|(id, _)| shard_of(id, shards) == shard).collect();
    let texts: Vec<String> = mine.iter().map(|(_, content)| content.clone()).collect();
    let vectors = embedder.embed_many(&texts, progress)?;
    let header = ShardHeader {
        model: embedder.identity().clone(),
        precision: embedder.precision(),
        max_tokens: embedder.max_tokens(),
        shard,
        shards,
        items: mine.len(),
    };
    std::fs::create_dir_all(out).map_err(|e| io_error(out, "creating", e))?;
    let path = out.join(file_name(shard, shards));
    // Written aside and renamed, so an assembly never reads half a shard.
    let partial = out.join(format!(".{}.partial", file_name(shard, shards)));
    let write = || -> std::io::Result<()> {
        let mut file = BufWriter::new(File::create(&partial)?);
        let mut digest = sha2::Sha256::new();
        let mut put = |bytes: &[u8]| {
            digest.update(bytes);
            file.write_all(bytes)
        };
        let json = serde_json::to_vec(&header).map_err(std::io::Error::other)?;
        put(MAGIC)?;
        put(&(json.len() as u64).to_le_bytes())?;
        put(&json)?;
        for ((id, content), vector) in mine.iter().zip(&vectors) {
            put(&(id.len() as u32).to_le_bytes())?;
            put(id.as_bytes())?;
            put(&content_hash(content))?;
            for value in vector {
                put(&value.to_le_bytes())?;
            }
        }
        file.write_all(&digest.finalize())?;
        file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&partial, &path)
    };
    write().map_err(|e| io_error(&path, "writing", e))?;
    Ok((path, mine.len()))
}

/// Where a vector a build takes instead of embedding came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A shard `hyrank embed` wrote (`--embeddings`).
    Shard,
    /// The current generation, for an item whose text is unchanged.
    Generation,
    /// A live put: the server embedded the item when it was written.
    LivePut,
}

/// Item vectors read from shards, the current generation or live puts, by item id, with the
/// hash of the text each was embedded from and where it came from.
pub struct ShardVectors {
    vectors: HashMap<String, ([u8; 32], Vec<f32>, Origin)>,
    /// Shards read (0: none; the vectors come from the current generation or live puts, each
    /// vector's [`Origin`] says).
    pub shards: u32,
}

impl ShardVectors {
    /// The vectors of the generation at `dir`, by item id with the hash of each item's text, if
    /// it was embedded with the model, precision and token limit `embedder` runs with; `None`
    /// otherwise. A rebuild reuses them for items whose text did not change.
    ///
    /// # Errors
    /// The generation's files cannot be read.
    pub fn from_generation(dir: &Path, embedder: &Embedder) -> Result<Option<Self>> {
        use hyrank_engine::store::{MetaStore, SnapshotStore};
        let manifest = hyrank_engine::generation::read_manifest(dir)?;
        if (&manifest.model, manifest.precision, manifest.max_tokens)
            != (embedder.identity(), embedder.precision(), embedder.max_tokens())
        {
            return Ok(None);
        }
        let rows = hyrank_engine::dense::read_f32_file(
            &dir.join(format!("{}.vectors", hyrank_engine::generation::files::DENSE)),
            embedder.dim(),
        )?;
        let items = SnapshotStore::load(&dir.join(hyrank_engine::generation::files::STORE))?.items()?;
        if rows.len() != items.len() * embedder.dim() {
            tracing::warn!(
                generation = %dir.display(),
                rows = rows.len() / embedder.dim(),
                items = items.len(),
                "dense.vectors and the store disagree; not reusing this generation's vectors"
            );
            return Ok(None);
        }
        // A build never writes a non-finite value: one here is a damaged file, whose vectors
        // would make this build fail too ("row 0 holds a non-finite value").
        if let Some(at) = rows.iter().position(|v| !v.is_finite()) {
            tracing::warn!(
                generation = %dir.display(),
                row = at / embedder.dim(),
                "dense.vectors holds a non-finite value (a damaged file); not reusing this generation's vectors"
            );
            return Ok(None);
        }
        let vectors = items
            .into_iter()
            .zip(rows.chunks_exact(embedder.dim()))
            .map(|((_, item), vector)| {
                (item.id.clone(), (content_hash(&item.content()), vector.to_vec(), Origin::Generation))
            })
            .collect();
        Ok(Some(ShardVectors { vectors, shards: 0 }))
    }

    /// Reads every shard in `dir`, checked against the model that would embed them now.
    ///
    /// # Errors
    /// [`IndexError::Input`] naming the file: no shards, shard files from different splits, a
    /// shard missing, a shard embedded with another model, precision or token limit, an id in
    /// two shards, a truncated file, bytes past its end, or a file that fails its SHA-256
    /// (named as damaged, whatever else its damage made it read as).
    pub fn read(dir: &Path, embedder: &Embedder) -> Result<Self> {
        let bad = |path: &Path, reason: String| IndexError::Input { path: path.to_path_buf(), reason };
        let mut files: Vec<(u32, u32, PathBuf)> = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| io_error(dir, "listing", e))? {
            let entry = entry.map_err(|e| io_error(dir, "listing", e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(spec) = name.strip_prefix("shard-").and_then(|s| s.strip_suffix(".bin")) else { continue };
            let parsed = spec.split_once("-of-").and_then(|(i, n)| Some((i.parse().ok()?, n.parse().ok()?)));
            let Some((i, n)) = parsed else { return Err(bad(&entry.path(), "not a shard-I-of-N.bin name".into())) };
            files.push((i, n, entry.path()));
        }
        let Some(&(_, shards, _)) = files.first() else {
            return Err(bad(dir, "holds no shard-I-of-N.bin files (hyrank embed --shard i/n --out DIR)".into()));
        };
        if let Some((_, n, path)) = files.iter().find(|(_, n, _)| *n != shards) {
            return Err(bad(path, format!("is from a split into {n} shards, beside others of {shards}")));
        }
        let missing: Vec<String> =
            (0..shards).filter(|i| !files.iter().any(|(j, _, _)| j == i)).map(|i| file_name(i, shards)).collect();
        if !missing.is_empty() {
            return Err(bad(dir, format!("misses shard(s) {}", missing.join(", "))));
        }
        files.sort();
        let mut vectors = HashMap::new();
        for (shard, _, path) in &files {
            // Damage can make any part of a file read as something else (another split, another
            // model, a NaN): a file that fails its own hash is named as damaged, whatever broke.
            read_shard(path, (*shard, shards), embedder, &mut vectors).map_err(|e| match damaged(path) {
                true => bad(path, DAMAGED.into()),
                false => e,
            })?;
        }
        Ok(ShardVectors { vectors, shards })
    }

    /// Takes in the vectors live puts were embedded with (`PUT /v1/items/{id}`, in `logged`:
    /// the records the previous generation carried and the log's later ones), so that a
    /// rebuild runs the model no second time for an item created or replaced live. A put's
    /// vector is taken only where the server embedded the way `embedder` does
    /// ([`hyrank_engine::live::ItemPut::embedding_for`]), the put's text is the text `items`
    /// (the catalog as this build ends up with it) holds for the id, and no vector here is
    /// already for that text: a put superseded by a changed catalog row, or one the previous
    /// generation already holds, replaces nothing. Returns how many were taken.
    pub fn add_live_puts(
        &mut self,
        logged: &[hyrank_engine::live::LoggedRecord],
        embedder: &Embedder,
        items: &[hyrank_engine::Item],
    ) -> usize {
        let mut puts: HashMap<&str, Vec<(String, &[f32])>> = HashMap::new();
        for record in logged {
            if let hyrank_engine::live::Record::Put(put) = &record.record {
                if let Some(vector) = put.embedding_for(embedder, embedder.dim()) {
                    puts.entry(put.put_item.as_str()).or_default().push((put.item.content(), vector));
                }
            }
        }
        let mut taken = 0;
        for item in items {
            let Some(made) = puts.get(item.id.as_str()) else { continue };
            let content = item.content();
            if self.get(&item.id, &content).is_some() {
                continue;
            }
            if let Some((_, vector)) = made.iter().rev().find(|(text, _)| *text == content) {
                self.vectors.insert(item.id.clone(), (content_hash(&content), vector.to_vec(), Origin::LivePut));
                taken += 1;
            }
        }
        taken
    }

    /// No vectors yet (what [`ShardVectors::add_live_puts`] fills when nothing else is reused).
    pub fn empty() -> Self {
        ShardVectors { vectors: HashMap::new(), shards: 0 }
    }

    /// The vector of item `id` if one here was embedded from exactly `content`, and where it
    /// came from.
    pub fn get(&self, id: &str, content: &str) -> Option<(&[f32], Origin)> {
        self.vectors.get(id).filter(|(hash, _, _)| *hash == content_hash(content)).map(|(_, v, o)| (v.as_slice(), *o))
    }

    /// Takes `other`'s vector of each of `items` that has none here with its current text and
    /// one there: the current generation's, for the items the shards do not hold with their
    /// text (shards of an older catalog, texts changed since). Returns how many were taken.
    pub fn add_missing(&mut self, mut other: ShardVectors, items: &[hyrank_engine::Item]) -> usize {
        let mut taken = 0;
        for item in items {
            // The text hashed once for both sides.
            let hash = content_hash(&item.content());
            let holds = |vectors: &ShardVectors| vectors.vectors.get(&item.id).is_some_and(|(h, _, _)| *h == hash);
            if holds(self) || !holds(&other) {
                continue;
            }
            if let Some(entry) = other.vectors.remove(&item.id) {
                self.vectors.insert(item.id.clone(), entry);
                taken += 1;
            }
        }
        taken
    }

    /// Whether every one of `items` has a vector here with its current text.
    pub fn covers(&self, items: &[hyrank_engine::Item]) -> bool {
        items.iter().all(|item| self.get(&item.id, &item.content()).is_some())
    }
}

const DAMAGED: &str = "its bytes do not hash to the SHA-256 it ends with: the file is damaged (copied in part or \
                       changed in transfer); embed the shard again";

/// Whether the shard at `path` is of the format that ends with its SHA-256 and fails it.
fn damaged(path: &Path) -> bool {
    let Ok(bytes) = std::fs::read(path) else { return false };
    if !bytes.starts_with(MAGIC) || bytes.len() < MAGIC.len() + 32 {
        return false;
    }
    let (body, digest) = bytes.split_at(bytes.len() - 32);
    sha2::Sha256::digest(body)[..] != digest[..]
}

/// Reads shard `(shard, shards)` at `path` into `vectors`, checked against the model that
/// would embed them now ([`ShardVectors::read`]).
fn read_shard(
    path: &Path,
    (shard, shards): (u32, u32),
    embedder: &Embedder,
    vectors: &mut HashMap<String, ([u8; 32], Vec<f32>, Origin)>,
) -> Result<()> {
    let bad = |path: &Path, reason: String| IndexError::Input { path: path.to_path_buf(), reason };
    let dim = embedder.dim();
    let mut reader = BufReader::new(File::open(path).map_err(|e| io_error(path, "opening", e))?);
    let mut digest = sha2::Sha256::new();
    let mut read = |buf: &mut [u8]| {
        reader.read_exact(buf).map_err(|e| bad(path, format!("truncated: {e}")))?;
        digest.update(&*buf);
        Ok::<_, IndexError>(())
    };
    let mut magic = [0u8; 8];
    read(&mut magic)?;
    let checked = match &magic {
        MAGIC => true,
        MAGIC_UNCHECKED => false,
        _ => return Err(bad(path, "not a hyrank embeddings shard".into())),
    };
    let mut len = [0u8; 8];
    read(&mut len)?;
    let mut json = vec![0u8; u64::from_le_bytes(len).min(1 << 20) as usize];
    read(&mut json)?;
    let header: ShardHeader = serde_json::from_slice(&json).map_err(|e| bad(path, format!("header: {e}")))?;
    let now = (embedder.identity(), embedder.precision(), embedder.max_tokens());
    // The split first: a shard of another split (a file renamed) would otherwise be
    // refused with the model's description on both sides, naming no difference.
    if (header.shard, header.shards) != (shard, shards) {
        return Err(bad(
            path,
            format!(
                "holds shard {} of {} by its header, not shard {shard} of {shards} as its name says; \
                     was it renamed from another split?",
                header.shard, header.shards
            ),
        ));
    }
    if (&header.model, header.precision, header.max_tokens) != now {
        return Err(bad(
                path,
                format!(
                    "was embedded with model {} (sha256 {}) at {} and {} tokens; this build embeds with {} (sha256 {}) at {} and {} tokens",
                    header.model.name,
                    header.model.sha256,
                    header.precision,
                    header.max_tokens,
                    now.0.name,
                    now.0.sha256,
                    now.1,
                    now.2
                ),
            ));
    }
    for _ in 0..header.items {
        let mut len = [0u8; 4];
        read(&mut len)?;
        let mut id = vec![0u8; u32::from_le_bytes(len) as usize];
        read(&mut id)?;
        let id = String::from_utf8(id).map_err(|_| bad(path, "an id is not UTF-8".into()))?;
        let mut hash = [0u8; 32];
        read(&mut hash)?;
        let mut raw = vec![0u8; dim * 4];
        read(&mut raw)?;
        let vector: Vec<f32> =
            raw.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect();
        // The model never writes one: a damaged file, refused here naming the shard and
        // the item rather than by the index build with a row number.
        if let Some(value) = vector.iter().find(|v| !v.is_finite()) {
            return Err(bad(
                path,
                format!("item {id:?}'s vector holds a non-finite value ({value}): the file is damaged"),
            ));
        }
        if vectors.insert(id.clone(), (hash, vector, Origin::Shard)).is_some() {
            return Err(bad(path, format!("item {id:?} is in two shards")));
        }
    }
    let computed = digest.finalize();
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).map_err(|e| io_error(path, "reading", e))?;
    match (checked, rest.len()) {
        (true, 32) if rest[..] == computed[..] => {}
        // Cut short or grown, the last 32 bytes are no hash of the rest either.
        (true, _) => return Err(bad(path, DAMAGED.into())),
        (false, 0) => {
            tracing::warn!(shard = %path.display(), "a shard written before 2026-12-07 carries no SHA-256: not checked")
        }
        (false, n) => return Err(bad(path, format!("holds {n} bytes past its last item's vector"))),
    }
    Ok(())
}

fn io_error(path: &Path, doing: &str, e: std::io::Error) -> IndexError {
    IndexError::Engine(hyrank_engine::Error::io(format!("{doing} {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_is_by_id_alone_and_covers_every_shard() {
        let ids: Vec<String> = (0..1000).map(|i| format!("item-{i}")).collect();
        let mut counts = [0usize; 4];
        for id in &ids {
            let shard = shard_of(id, 4);
            assert_eq!(shard, shard_of(id, 4));
            counts[shard as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 200), "{counts:?}");
        // The value is fixed by the hash, not by this machine or run.
        assert_eq!(shard_of("", 1000), 652);
        assert_eq!(parse_shard("2/4"), Ok((2, 4)));
        for bad in ["4/4", "1/0", "x/2", "3", "-1/2"] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
        // No shard count, no range to name ("must be 0 to 0" read as if 0/0 were fine).
        assert_eq!(parse_shard("0/0").unwrap_err(), "\"0/0\": the shard count must be at least 1");
        assert_eq!(parse_shard("4/4").unwrap_err(), "\"4/4\": the shard must be 0 to 3");
    }

    /// A shard whose vector holds a NaN (a damaged file) is refused naming the file and the
    /// item, not by the build with a row number; one damaged otherwise, by its SHA-256.
    #[test]
    fn a_damaged_shard_is_refused_naming_the_shard() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let embedder =
            Embedder::load(&hyrank_engine::EmbedderSettings::new(root.join("models/all-MiniLM-L6-v2"))).unwrap();
        let out = tempfile::tempdir().unwrap();
        let items = [("a".to_string(), "a tent".to_string()), ("b".to_string(), "a stove".to_string())];
        let (path, _) = embed_shard(&embedder, &items, 0, 1, out.path(), |_| {}).unwrap();
        assert_eq!(ShardVectors::read(out.path(), &embedder).unwrap().vectors.len(), 2);
        let written = std::fs::read(&path).unwrap();
        let last = written.len() - 32 - 4;
        // A shard from before the hash was appended: the NaN is named with its item.
        let mut old = [&MAGIC_UNCHECKED[..], &written[8..written.len() - 32]].concat();
        old[last..last + 4].copy_from_slice(&f32::NAN.to_le_bytes());
        std::fs::write(&path, old).unwrap();
        let error = ShardVectors::read(out.path(), &embedder).err().unwrap().to_string();
        assert!(
            error.contains("shard-0-of-1.bin") && error.contains("item \"b\"'s vector holds a non-finite value"),
            "{error}"
        );
        // Damage that leaves every value finite is refused by the file's SHA-256 (it passed),
        // and so is damage that reads as a NaN or makes the header read as another shard's.
        let mut bytes = written.clone();
        bytes[last] ^= 0x01;
        let mut nan = written.clone();
        nan[last..last + 4].copy_from_slice(&f32::NAN.to_le_bytes());
        let mut header = written.clone();
        let at = header.windows(9).position(|w| w == b"\"shard\":0").unwrap() + 8;
        header[at] = b'1';
        for bytes in [bytes, nan, header] {
            std::fs::write(&path, bytes).unwrap();
            let error = ShardVectors::read(out.path(), &embedder).err().unwrap().to_string();
            assert!(error.contains("shard-0-of-1.bin") && error.contains("do not hash"), "{error}");
        }
        // Cut short or grown, the file's last 32 bytes are no hash of the rest: damaged too.
        for bytes in [written[..written.len() - 1].to_vec(), [&written[..], b"x"].concat()] {
            std::fs::write(&path, bytes).unwrap();
            let error = ShardVectors::read(out.path(), &embedder).err().unwrap().to_string();
            assert!(error.contains("do not hash"), "{error}");
        }
        // A shard written before the hash was appended is read as it was.
        let old = [&MAGIC_UNCHECKED[..], &written[8..written.len() - 32]].concat();
        std::fs::write(&path, old).unwrap();
        assert_eq!(ShardVectors::read(out.path(), &embedder).unwrap().vectors.len(), 2);
    }
}
