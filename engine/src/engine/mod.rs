//! An opened, immutable generation, and the three questions it answers. The [`Engine`] type's
//! methods are split by question, as meilisearch splits its `Search` (`search/mod.rs`,
//! `hybrid.rs`, `similar.rs`):
//!
//! - this file: opening a generation (and the next one), item and user lookups;
//! - `cf_user.rs`: a user's CF: factors solved now, the retriever, EASE's seeds, explanations;
//! - `stages.rs`: what every question shares: the allow mask, running and fusing retrievers,
//!   hits, the rerank window;
//! - `search.rs`, `recommend.rs`, `similar.rs`: each question's retrievers and extras.

mod cf_user;
mod live;
mod live_items;
mod recommend;
mod search;
mod similar;
mod stages;
mod warm;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::batcher::RerankWorker;
use crate::cf::{self, AlsModel, Factors, ItemModel};
use crate::cross::states::ItemStates;
use crate::cross::CrossEncoder;
use crate::dense::{read_f32_file, Metric, VectorIndex};
use crate::embed::{Embedder, EmbedderSettings};
use crate::error::{Error, Result};
use crate::explain::Explanation;
use crate::generation::{self, files, Manifest, RerankerManifest};
use crate::item::{FieldValue, Item};
use crate::lexical::LexicalIndex;
use crate::live::items::LiveItems;
use crate::live::EventLog;
use crate::rerank::{LateInteractionReranker, TrainedReranker};
use crate::retrieve::{CfItems, Retriever};
use crate::runtime::{RerankerSlot, Runtime, RuntimeSettings};
use crate::store::{Interaction, MetaStore, SnapshotStore, UserRecord};

pub(crate) use cf_user::NO_INTERACTIONS_NOTE;
pub use recommend::{content_profile, recent_items, UserView};
pub use warm::WarmUp;

/// Everything CF needs at query time: the model that serves the generation's CF list.
enum Collaborative {
    /// ALS factors.
    Als {
        /// The item factors, searchable by inner product.
        items: CfItems,
        /// User and item factors (the item factors also live in `items`, which owns its copy).
        model: AlsModel,
        /// `YᵀY + λI`, shared by every explanation.
        gram: Vec<f64>,
    },
    /// EASE's item-item weights: scores come from a user's stored history.
    Ease(ItemModel),
}

/// Explains CF scores for one request's user, built once per request.
enum CfExplainer<'a> {
    Als(cf::UserExplainer<'a>),
    Ease { model: &'a ItemModel, seeds: Vec<(u32, f32)> },
}

/// An opened, immutable generation.
pub struct Engine {
    dir: PathBuf,
    manifest: Manifest,
    /// The model, its query cache and worker: shared with the generations opened after this one.
    runtime: Runtime,
    lexical: LexicalIndex,
    dense: VectorIndex,
    cf: Option<Collaborative>,
    store: Box<dyn MetaStore>,
    ids: Vec<String>,
    fields: Vec<BTreeMap<String, FieldValue>>,
    field_names: HashSet<String>,
    /// `fields` by field and value, for filter masks ([`crate::filter::FieldIndex`]).
    field_index: crate::filter::FieldIndex,
    late_interaction: LateInteractionReranker,
    /// The generation's trained cross-encoder and how to combine its logit, when it has one.
    trained: Option<TrainedReranker>,
    /// The same for recommendations, reading the user's recent titles as the query.
    recommend_trained: Option<TrainedReranker>,
    /// Interaction events written since the builds (`POST /v1/events`), when a server attached
    /// its log: every user lookup merges the ones this generation has not folded in.
    live: Option<Arc<EventLog>>,
    /// Items deleted live that this generation folded in (`Manifest::live`): hidden from every
    /// retriever and from item lookups, as the log's later deletes are.
    deleted: HashSet<u32>,
    /// Stored rows the folded live writes changed, by index: the hashes of their earlier
    /// versions, which a write logged after the build may still name
    /// (`LiveFold::row_hashes`; [`Engine::row_versions`]).
    row_hashes: std::collections::HashMap<u32, Vec<String>>,
    /// Stored rows without values live writes gave them, by index: the name of the row as the
    /// writes made it (`LiveFold::written_as`; [`Engine::row_name`]).
    written_as: std::collections::HashMap<u32, String>,
    /// The allow mask of a request without filters, and the log's delete and put versions it
    /// was built at (`stages::unfiltered_allow`).
    hidden_mask: Versioned<crate::retrieve::Allow>,
    /// [`Engine::hidden`]'s set, the log's delete and put versions it was read at, and the
    /// sequence number up to which its deletes are settled (where the next set starts,
    /// `live.rs`).
    hidden_items: Versioned<(Arc<HashSet<u32>>, u64)>,
    /// The hashes of generation rows a write was checked against (`live.rs`'s
    /// `row_versions`): the store's rows never change, and every put moves the hidden set's
    /// version, which checks every delete in the log against its row again.
    stored_row_hashes: std::sync::Mutex<std::collections::HashMap<u32, Arc<Vec<String>>>>,
    /// `live.rs`'s `dense_mean`, and the log's delete and put versions it was read at.
    dense_mean: Versioned<(Arc<Vec<f32>>, f64)>,
    /// Items written live since this generation's build (`live_items.rs`), as of the last put
    /// applied.
    live_items: std::sync::Mutex<Arc<LiveItems>>,
    /// Held while puts are applied, so that one thread applies each.
    live_refresh: std::sync::Mutex<()>,
    /// The shared lock that keeps a build's pruning off this generation while it is open.
    _serving: Option<std::fs::File>,
    /// Fields replaced live since this generation's build, by item index, and the log's field
    /// and put versions they were read at.
    live_fields: Versioned<Arc<LiveFields>>,
}

/// A value read from the live log, cached with the two log versions it was read at.
type Versioned<T> = std::sync::Mutex<Option<((u64, u64), T)>>;

/// Refuses a generation whose folder is not named as its manifest says it was built: a copy of
/// another generation's folder. Served, it reported the other's name in `/healthz`, the
/// serving-generation metric and the swap's log line ("swapped in from=000003 to=000003"),
/// and the caches keyed by generation could not tell the two apart.
///
/// # Errors
/// [`Error::BadIndex`] naming both names and the two ways out.
fn named_as_built(dir: &Path, manifest: &Manifest) -> Result<()> {
    let folder = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if folder == manifest.generation {
        return Ok(());
    }
    Err(Error::BadIndex {
        path: dir.to_path_buf(),
        reason: format!(
            "its folder is named {folder:?} but its manifest says it is generation {:?} (a copied folder?): \
             set the manifest's \"generation\" to {folder:?}, or point CURRENT at {:?}",
            manifest.generation, manifest.generation
        ),
    })
}

/// Items' fields replaced live, by item index.
pub(crate) type LiveFields = std::collections::HashMap<u32, BTreeMap<String, FieldValue>>;

/// A user as a request sees them: the stored record, with the live events the serving
/// generation has not folded in merged into its history as the indexer merges rows (weights
/// summed per item, the latest timestamp kept).
pub(crate) struct LiveUser {
    pub(crate) record: UserRecord,
    /// Live events merged in (0: the stored record as built).
    pub(crate) live_events: usize,
    /// Whether the build knew the user (else `record.index` means nothing).
    pub(crate) stored: bool,
}

impl Engine {
    /// Opens the generation `CURRENT` points at under `index_dir`, loading the model, with the
    /// runtime a batch job wants (query cache on, no workers).
    /// Queries are truncated at the token limit the generation's items were embedded with.
    pub fn open(index_dir: &Path, embedder: &EmbedderSettings) -> Result<Self> {
        Self::open_with_runtime(index_dir, embedder, RuntimeSettings::default())
    }

    /// Opens the current generation with a model runtime set up as `runtime` says (a server's
    /// query cache, query worker and rerank workers).
    pub fn open_with_runtime(index_dir: &Path, embedder: &EmbedderSettings, runtime: RuntimeSettings) -> Result<Self> {
        let dir = generation::current(index_dir)?;
        let manifest = generation::read_manifest(&dir)?;
        named_as_built(&dir, &manifest)?;
        if let Some(requested) = embedder.precision.filter(|&p| p != manifest.precision) {
            return Err(Error::PrecisionMismatch { index: manifest.precision, requested });
        }
        let settings = EmbedderSettings {
            max_tokens: manifest.max_tokens,
            precision: Some(manifest.precision),
            ..embedder.clone()
        };
        Self::open_generation(&dir, Runtime::load(&settings, runtime)?.pinned_to(embedder.precision))
    }

    /// Opens the generation `CURRENT` points at now, if it is not `serving`'s: `Ok(None)` when
    /// nothing new was published. The model runtime is carried over from `serving` (the same
    /// weights are required anyway; the model is loaded again only if the new generation
    /// embedded with another token limit), its caches cleared, and the new generation's
    /// rerankers get workers set up as the serving ones were, counting on from their totals.
    /// Any failure leaves `serving` untouched for the caller to keep.
    pub fn open_next(index_dir: &Path, serving: &Engine) -> Result<Option<Engine>> {
        let dir = generation::current(index_dir)?;
        if dir == serving.dir {
            return Ok(None);
        }
        let manifest = generation::read_manifest(&dir)?;
        named_as_built(&dir, &manifest)?;
        let mut next = Self::open_generation(&dir, serving.runtime.for_generation(&manifest)?)?;
        if let Some(log) = &serving.live {
            // A generation older than the records in memory (a rollback) reads them all.
            log.hold_from(next.manifest.live_folded_through());
            next.attach_live(Arc::clone(log));
        }
        next.runtime.clear_caches();
        let workers = [
            (next.rerank_worker(), serving.rerank_worker()),
            (next.recommend_rerank_worker(), serving.recommend_rerank_worker()),
        ];
        for (new, old) in workers {
            if let (Some(new), Some(old)) = (new, old) {
                new.continue_from(old.stats());
            }
        }
        Ok(Some(next))
    }

    /// Opens one generation folder on a model runtime. A file damaged in a way its loader does
    /// not check (hnsw_rs unwraps its reads of a graph file) can make the loader panic; that
    /// refuses the generation like any other read error, so a server's reload keeps the serving
    /// generation and its watcher keeps watching, and a start names the folder.
    fn open_generation(dir: &Path, runtime: Runtime) -> Result<Self> {
        // Nothing outlives a panic here but `runtime`'s shared model, which the open only reads.
        let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Self::open_files(dir, runtime)));
        opened.unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<&str>()
                .map(|m| m.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            Err(Error::BadIndex {
                path: dir.to_path_buf(),
                reason: format!(
                    "a file of it could not be read (damaged or partly copied?): its loader panicked: {message}"
                ),
            })
        })
    }

    fn open_files(dir: &Path, runtime: Runtime) -> Result<Self> {
        let manifest = generation::read_manifest(dir)?;
        let embedder = Arc::clone(runtime.embedder());
        let loaded = embedder.identity();
        if embedder.precision() != manifest.precision {
            return Err(Error::PrecisionMismatch { index: manifest.precision, requested: embedder.precision() });
        }
        if manifest.model.sha256 != loaded.sha256 {
            return Err(Error::ModelMismatch {
                index_model: manifest.model.name.clone(),
                index_sha: manifest.model.sha256.clone(),
                loaded_model: loaded.name.clone(),
                loaded_sha: loaded.sha256.clone(),
            });
        }
        let lexical = LexicalIndex::open(&dir.join(files::LEXICAL), manifest.lexical.clone())?;
        let dense = VectorIndex::load(dir, files::DENSE, manifest.model.dim, Metric::Cosine, manifest.hnsw)?;
        // Items only interactions below the positive rule name: cold, but not abstained on.
        let seen_only = || generation::read_seen_only(dir, manifest.counts.items);
        let cf = match (&manifest.cf, &manifest.ease) {
            (_, Some(settings)) => {
                let model = ItemModel::load(&dir.join(files::EASE), manifest.counts.items, settings.clone())?;
                Some(Collaborative::Ease(model.with_seen_only(&seen_only()?)))
            }
            (Some(settings), None) => {
                let items =
                    VectorIndex::load(dir, files::CF_ITEMS, settings.factors, Metric::InnerProduct, manifest.hnsw)?;
                let user_factors = Factors {
                    data: read_f32_file(&dir.join(files::CF_USERS), settings.factors)?,
                    dim: settings.factors,
                };
                let item_factors = Factors { data: items.vectors().to_vec(), dim: settings.factors };
                let model =
                    AlsModel { user_factors, item_factors, settings: settings.clone(), unsolved_users: Vec::new() };
                let gram = cf::item_gramian(&model);
                Some(Collaborative::Als { items: CfItems::new(items).with_seen_only(&seen_only()?), model, gram })
            }
            (None, None) => None,
        };
        let store = SnapshotStore::load(&dir.join(files::STORE))?;
        let items = store.items()?;
        if items.len() != manifest.counts.items || items.len() != dense.len() {
            return Err(Error::BadIndex {
                path: dir.to_path_buf(),
                reason: format!(
                    "manifest counts {} items, the store holds {}, the dense index {}",
                    manifest.counts.items,
                    items.len(),
                    dense.len()
                ),
            });
        }
        let mut ids = Vec::with_capacity(items.len());
        let mut fields = Vec::with_capacity(items.len());
        let mut field_names = HashSet::new();
        for (position, (index, item)) in items.into_iter().enumerate() {
            if index as usize != position {
                return Err(Error::BadIndex {
                    path: dir.to_path_buf(),
                    reason: format!("item indexes are not dense at {position}"),
                });
            }
            field_names.extend(item.fields.keys().cloned());
            ids.push(item.id);
            fields.push(item.fields);
        }
        let field_index = crate::filter::FieldIndex::build(&fields);
        let rerank_workers = runtime.settings().rerank_workers;
        let items_count = ids.len();
        let load_trained = |entry: &Option<RerankerManifest>, slot| -> Result<Option<TrainedReranker>> {
            let Some(entry) = entry else { return Ok(None) };
            if entry.base_model_sha256 != manifest.model.sha256 {
                return Err(Error::BadIndex {
                    path: dir.to_path_buf(),
                    reason: format!("{} was trained on another base model than the generation's", entry.file),
                });
            }
            let layers = runtime.settings().rerank_layers(&embedder);
            let mut model = CrossEncoder::load_at(&embedder, &dir.join(&entry.file), entry.shape, layers)?;
            if slot == RerankerSlot::Search {
                model.count_query_passes_in(Arc::clone(runtime.rerank_query_passes()));
            }
            // PreTTR: the item side comes from the generation's states, checked against what
            // this model would compute; a PreTTR entry without them is refused rather than
            // served at the cost of computing every item's side per query.
            match (model.states_header(&manifest.model.sha256, items_count), &entry.states) {
                (None, None) => {}
                (Some(expected), Some(file)) => model.attach_states(ItemStates::open(&dir.join(file), &expected)?)?,
                (expected, _) => {
                    return Err(Error::BadIndex {
                        path: dir.to_path_buf(),
                        reason: format!(
                            "{}: {}",
                            entry.file,
                            if expected.is_some() {
                                "a PreTTR reranker without its item states"
                            } else {
                                "item states listed for a joint reranker"
                            }
                        ),
                    })
                }
            }
            let mut trained = TrainedReranker::new(model, entry.clone()).cached(
                Arc::clone(runtime.rerank_cache()),
                generation_key(&manifest.generation),
                slot,
            );
            if let Some(settings) = rerank_workers {
                trained.start_worker(settings)?;
            }
            Ok(Some(trained))
        };
        let trained = load_trained(&manifest.reranker, RerankerSlot::Search)?;
        let recommend_trained = load_trained(&manifest.recommend_reranker, RerankerSlot::Recommend)?;
        if recommend_trained.as_ref().is_some_and(|t| t.manifest().context.is_none()) {
            return Err(Error::BadIndex {
                path: dir.to_path_buf(),
                reason: "the recommendation reranker's manifest entry has no context settings".into(),
            });
        }
        let verdict = |t: &TrainedReranker| {
            if t.manifest().enabled_by_default {
                "trained, on by default"
            } else {
                "trained, opt-in"
            }
        };
        tracing::info!(
            generation = %manifest.generation,
            items = ids.len(),
            cf = cf.is_some(),
            reranker = trained.as_ref().map(verdict),
            recommend_reranker = recommend_trained.as_ref().map(verdict),
            "generation opened"
        );
        // Deletes the build folded in, and the earlier rows a write about an item may name
        // (`LiveFold::row_hashes`), by index; an id the catalog lacks cannot be served anyway.
        let (mut deleted, mut row_hashes) = (HashSet::new(), std::collections::HashMap::new());
        let mut written_as = std::collections::HashMap::new();
        let folded =
            |l: &&generation::LiveFold| !l.deleted.is_empty() || !l.row_hashes.is_empty() || !l.written_as.is_empty();
        if let Some(fold) = manifest.live.as_ref().filter(folded) {
            let at: std::collections::HashMap<&str, u32> =
                ids.iter().enumerate().map(|(i, id)| (id.as_str(), i as u32)).collect();
            deleted.extend(fold.deleted.iter().filter_map(|id| at.get(id.as_str()).copied()));
            row_hashes.extend(
                fold.row_hashes.iter().filter_map(|(id, hashes)| Some((*at.get(id.as_str())?, hashes.clone()))),
            );
            written_as
                .extend(fold.written_as.iter().filter_map(|(id, name)| Some((*at.get(id.as_str())?, name.clone()))));
        }
        let live_items = std::sync::Mutex::new(Arc::new(LiveItems::empty(ids.len() as u32)));
        Ok(Engine {
            live_items,
            live_refresh: std::sync::Mutex::new(()),
            dir: dir.to_path_buf(),
            manifest,
            late_interaction: LateInteractionReranker::new(embedder),
            runtime,
            lexical,
            dense,
            cf,
            store: Box::new(store),
            ids,
            fields,
            field_names,
            field_index,
            trained,
            recommend_trained,
            live: None,
            deleted,
            row_hashes,
            written_as,
            hidden_mask: std::sync::Mutex::new(None),
            hidden_items: std::sync::Mutex::new(None),
            stored_row_hashes: std::sync::Mutex::default(),
            dense_mean: std::sync::Mutex::new(None),
            _serving: generation::hold_serving(dir),
            live_fields: std::sync::Mutex::new(None),
        })
    }

    /// The generation's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The generation's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The model runtime (embedder, query cache, query worker).
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The shared embedding model.
    pub fn embedder(&self) -> &Arc<Embedder> {
        self.runtime.embedder()
    }

    /// The trained reranker's manifest entry, when the generation has one.
    pub fn trained_reranker(&self) -> Option<&RerankerManifest> {
        self.trained.as_ref().map(TrainedReranker::manifest)
    }

    /// The trained recommendation reranker's manifest entry, when the generation has one.
    pub fn trained_recommend_reranker(&self) -> Option<&RerankerManifest> {
        self.recommend_trained.as_ref().map(TrainedReranker::manifest)
    }

    /// The search reranker's model worker, if one runs.
    pub fn rerank_worker(&self) -> Option<&Arc<RerankWorker>> {
        self.trained.as_ref().and_then(TrainedReranker::worker)
    }

    /// The recommendation reranker's model worker, if one runs.
    pub fn recommend_rerank_worker(&self) -> Option<&Arc<RerankWorker>> {
        self.recommend_trained.as_ref().and_then(TrainedReranker::worker)
    }

    /// The item with this id.
    pub fn item(&self, id: &str) -> Result<Item> {
        let index = self.visible_index_of(id)?;
        self.item_at(index)
    }

    /// The index of an item that is not deleted ([`Engine::hidden`]).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] (`id`) for an id no item can have
    /// ([`crate::item::id_problem`], the catalog's rule: empty, blank at an end…), as a user id
    /// is refused; [`Error::UnknownItem`] for an id the generation lacks or that was deleted.
    pub fn visible_index_of(&self, id: &str) -> Result<u32> {
        if let Some(problem) = crate::item::id_problem(id) {
            return Err(Error::invalid("id", format!("an item id {problem}")));
        }
        let index = self.index_of(id)?;
        if self.hidden().contains(&index) {
            return Err(Error::UnknownItem { id: id.to_string() });
        }
        Ok(index)
    }

    /// The index of the row the id names: its latest live row, else the generation's.
    pub fn index_of(&self, id: &str) -> Result<u32> {
        self.index_in(&self.live_items(), id)
    }

    /// [`Engine::index_of`] as of the live rows `live` (a request's snapshot of them).
    pub(crate) fn index_in(&self, live: &crate::live::items::LiveItems, id: &str) -> Result<u32> {
        if let Some(index) = live.index_of(id) {
            return Ok(index);
        }
        self.store.item_index(id)?.ok_or_else(|| Error::UnknownItem { id: id.to_string() })
    }

    /// The item at this catalog index.
    pub fn item_at(&self, index: u32) -> Result<Item> {
        let mut item = self.stored_item_at(index)?;
        if let Some(fields) = self.live_fields().get(&index) {
            item.fields = fields.clone();
        }
        Ok(item)
    }

    /// The item at this index as the generation stores it, without live field updates: the
    /// row a delete or an update is checked against at the next build.
    pub fn stored_item_at(&self, index: u32) -> Result<Item> {
        if index as usize >= self.ids.len() {
            if let Some(entry) = self.live_items().get(index) {
                return Ok(entry.item.clone());
            }
        }
        self.store.item(index)?.ok_or_else(|| Error::BadIndex {
            path: self.dir.clone(),
            reason: format!("item index {index} is missing from the store"),
        })
    }

    /// The user with this id, their live events (if a log is attached) merged into the
    /// history.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] (`user`) for an id no user can have; [`Error::UnknownUser`]
    /// when neither the build nor the log knows them; a store failure.
    pub fn user(&self, id: &str) -> Result<UserRecord> {
        Ok(self.live_user(id)?.record)
    }

    /// Every user with their history, ordered by id (those with no positive left out: they are
    /// stored only for the items they saw, [`UserRecord::seen`]).
    pub fn users(&self) -> Result<Vec<UserRecord>> {
        // Users stored for what they saw, with no positive, have no history to read.
        Ok(self.store.users()?.into_iter().filter(|user| !user.history.is_empty()).collect())
    }

    /// Number of items in the generation.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the generation holds no items.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Item ids by index.
    pub fn item_ids(&self) -> &[String] {
        &self.ids
    }

    fn collaborative(&self) -> Result<&Collaborative> {
        self.cf.as_ref().ok_or_else(|| Error::Unavailable {
            what: "collaborative filtering".into(),
            reason: "the generation was built without interactions".into(),
        })
    }

    /// How an explanation names an item: its id and, when it has one, its title in quotes: the
    /// title the id has now (a history row replaced by a live put is named as the item is now,
    /// as the content side names it).
    fn item_label(&self, item: u32) -> String {
        let id = self.id_at(item);
        let current = self.index_of(&id).unwrap_or(item);
        match self.item_at(current) {
            Ok(found) if !found.title.trim().is_empty() => format!("{id} “{}”", found.title.trim()),
            _ => id,
        }
    }
}

/// A number for a generation's name, for cache keys that must not cross generations.
fn generation_key(name: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut hasher);
    hasher.finish()
}
