//! Writing a lexical index and opening it: one segment per build, and at open the checks
//! that the generation's settings describe the index on disk.

use std::path::Path;

use tantivy::{Index, IndexReader, ReloadPolicy};

use super::{analyzers, bm25, schema, LexicalIndex, LexicalSettings};
use crate::analysis::Revision;
use crate::error::{Error, Result};
use crate::item::Item;

impl LexicalIndex {
    /// Indexes `items` (item index, item) into the empty directory `dir`.
    pub fn build<'a>(
        dir: &Path,
        items: impl Iterator<Item = (u32, &'a Item)>,
        settings: LexicalSettings,
    ) -> Result<()> {
        Self::build_with(dir, items, settings, Revision::default())
    }

    /// [`LexicalIndex::build`] with a given revision of the unicode tokenizer (tests build
    /// what older generations hold).
    pub(super) fn build_with<'a>(
        dir: &Path,
        items: impl Iterator<Item = (u32, &'a Item)>,
        settings: LexicalSettings,
        revision: Revision,
    ) -> Result<()> {
        settings.check()?;
        let (schema, fields) = schema::schema(&settings, revision);
        let index = Index::create_in_dir(dir, schema)?;
        analyzers::register(&index);
        let mut writer = index.writer_with_num_threads(1, 100_000_000)?;
        for (idx, item) in items {
            writer.add_document(schema::document(&fields, idx, item))?;
        }
        writer.commit()?;
        // One segment: BM25 statistics are then exactly those of the whole collection, and
        // search touches one segment.
        let segments = index.searchable_segment_ids()?;
        if segments.len() > 1 {
            writer.merge(&segments).wait()?;
        }
        writer.wait_merging_threads()?;
        Ok(())
    }

    /// Opens what [`LexicalIndex::build`] wrote.
    pub fn open(dir: &Path, settings: LexicalSettings) -> Result<Self> {
        settings.check().map_err(|e| Error::BadIndex { path: dir.to_path_buf(), reason: e.to_string() })?;
        let index = Index::open_in_dir(dir)?;
        analyzers::register(&index);
        let fields = schema::fields_of(&index.schema(), &settings, dir)?;
        // A generation built by a newer hyrank may name an analyzer this build does not have:
        // refused here, not at its first query.
        let mut search_analyzers = Vec::with_capacity(fields.searched.len());
        for field in fields.searched.iter().map(|s| s.field) {
            search_analyzers.push(analyzers::search_analyzer(&index, field).map_err(|e| Error::BadIndex {
                path: dir.to_path_buf(),
                reason: format!("its analyzer is unknown to this build of hyrank (built by a newer version?): {e}"),
            })?);
        }
        // The analyzer each searched field was indexed by, as the schema names it; fields that
        // share one are a group, whose terms a query is analysed into once.
        let names: Vec<String> = {
            let schema = index.schema();
            let name = |field| match schema.get_field_entry(field).field_type() {
                tantivy::schema::FieldType::Str(options) => {
                    options.get_indexing_options().map(|o| o.tokenizer().to_string())
                }
                _ => None,
            };
            fields.searched.iter().map(|s| name(s.field).unwrap_or_default()).collect()
        };
        let groups = schema::groups(&fields, &names);
        // The manifest's settings must describe this index, field by field, under one of the
        // revisions, or searches would analyse queries unlike the items. (Settings that analyse
        // fields apart and combine them by BM25F were refused above.)
        let described = Revision::ALL.iter().any(|&revision| schema::analyzer_names(&settings, revision) == names);
        if !described {
            let searched: Vec<&str> = fields.searched.iter().map(|s| s.name.as_str()).collect();
            return Err(Error::BadIndex {
                path: dir.to_path_buf(),
                reason: format!(
                    "its settings analyse {} with {}, but its schema names {}",
                    searched.join(", "),
                    schema::analyzer_names(&settings, Revision::default()).join(", "),
                    names.join(", "),
                ),
            });
        }
        // tantivy takes a lock file in the folder for its reader, so a folder this process
        // cannot write fails here with "Failed to acquire Lockfile ... None", naming no path.
        let reader: IndexReader =
            index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into().map_err(|e| match e {
                tantivy::TantivyError::LockFailure(..) => Error::Io {
                    context: format!(
                        "taking the BM25 index's lock file in {} (a generation's folder must be writable by the \
                         process that opens it)",
                        dir.display()
                    ),
                    source: std::io::Error::other(e.to_string()),
                },
                e => e.into(),
            })?;
        let mut field_docs = Vec::with_capacity(fields.searched.len());
        for (f, searched) in fields.searched.iter().enumerate() {
            field_docs.push(if f < 2 {
                None
            } else {
                let segments = reader.searcher().segment_readers().to_vec();
                Some(segments.iter().map(|s| bm25::docs_holding(s, searched.field)).sum::<Result<u64>>()?)
            });
        }
        let words_analyzer = fields.words.map(|field| index.tokenizer_for_field(field)).transpose()?;
        let (live, hidden) = (std::sync::RwLock::default(), std::sync::Mutex::default());
        Ok(LexicalIndex {
            index,
            reader,
            fields,
            settings,
            groups,
            field_docs,
            search_analyzers,
            words_analyzer,
            live,
            hidden,
            expansions: Default::default(),
        })
    }
}
