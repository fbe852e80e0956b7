//! What a build takes from the live log (`INDEX_DIR/live/`): the item writes replayed against
//! the catalog's rows, the rows written live typed as the catalog's own, and the events
//! appended to the interactions.

use std::collections::HashMap;

use hyrank_engine::generation::LiveFold;

use crate::error::{Reject, Result};
use crate::input::{InteractionRow, Interactions};
use crate::pipeline::IndexSettings;

/// The live log folded into this build: what replaying its item writes did to the catalog
/// (`writes`, from [`replay_item_writes`], already applied to `items`), and its events,
/// appended to `interactions` (created when there is no file) as if appended to the file; an
/// event whose item the catalog lacks is refused and reported. A refused event's reject names
/// the log folder and, as its line, the event's position in `logged` from 1: the line of the
/// new generation's carried records (`files::LIVE`, written from `logged` line for line), where
/// [`point_at_carried`] points it once the generation's name is known. The log's own files
/// are no address: the build may compact them, and the previous generation's may be pruned.
#[allow(clippy::type_complexity)]
pub(crate) fn fold_live_events(
    settings: &IndexSettings,
    items: &[hyrank_engine::Item],
    logged: &[hyrank_engine::live::LoggedRecord],
    writes: ItemWrites,
    interactions: Option<Interactions>,
) -> Result<(Option<Interactions>, Option<(LiveFold, Vec<Reject>)>)> {
    use hyrank_engine::live::Record;
    let Some(last) = logged.last().map(|e| e.seq) else { return Ok((interactions, None)) };
    let fold = |events, rejected| LiveFold {
        folded_through: last,
        events,
        rejected,
        deleted: writes.deleted.clone(),
        row_hashes: writes.row_hashes.clone(),
        written_as: writes.written_as.clone(),
        superseded_deletes: writes.superseded_deletes,
        updated: writes.updated.clone(),
        superseded_updates: writes.superseded_updates,
        created: writes.created,
        replaced: writes.replaced,
        superseded_puts: writes.superseded_puts,
        // Set by the build from `retype_live_rows`, which runs before this fold.
        values_left_out: 0,
        carried: true,
    };
    let item_index: HashMap<&str, u32> =
        items.iter().enumerate().map(|(i, item)| (item.id.as_str(), i as u32)).collect();
    let log = settings.index_dir.join(hyrank_engine::live::LIVE_DIR);
    if !settings.live_events {
        // The interactions file holds them already (that is what the flag says): the
        // generation counts every logged event, so the server must not count them again.
        // Those earlier generations folded and carry are logged events too. One whose user
        // and item no row of the file has belies the flag: counted nowhere, it would be lost
        // without a word, so it is refused and reported as an event whose item is gone is.
        let missing = not_in_file(logged, &item_index, interactions.as_ref(), &log);
        if !missing.is_empty() {
            tracing::warn!(
                events = missing.len(),
                "--no-live-events: logged events whose user and item are in no row of the interactions file are not \
                 counted (rejects.jsonl lists them; build without the flag to fold the log in)"
            );
        }
        tracing::info!(through = last, "live events taken as already in the interactions file");
        return Ok((interactions, Some((fold(0, missing.len()), missing))));
    }
    let from_file = interactions.is_some();
    let mut interactions = interactions.unwrap_or_default();
    let (mut refused, mut taken) = (Vec::new(), 0);
    for (at, logged) in logged.iter().enumerate() {
        let Record::Event(event) = &logged.record else { continue };
        match item_index.get(event.item.as_str()) {
            Some(&item) => {
                taken += 1;
                interactions.rows.push(InteractionRow {
                    user: event.user.clone(),
                    item,
                    weight: event.weight,
                    timestamp: event.timestamp,
                });
            }
            None => refused.push(Reject {
                file: log.clone(),
                line: at as u64 + 1,
                field: Some("item".into()),
                id: None,
                reason: format!("live event {}: item {:?} is not in this catalog", logged.seq, event.item),
                cause: Default::default(),
            }),
        }
    }
    let fold = fold(taken, refused.len());
    tracing::info!(
        events = fold.events,
        refused = fold.rejected,
        deleted = fold.deleted.len(),
        created = fold.created,
        replaced = fold.replaced,
        through = last,
        "folded in the live event log"
    );
    // Without an interactions file, a log of item writes only (or of events all refused) gives
    // no interactions: no CF, as a build without a log. It gave an empty set, which the build
    // refused as an interactions file of no rows, naming the file as "".
    let interactions = (from_file || !interactions.rows.is_empty()).then_some(interactions);
    Ok((interactions, Some((fold, refused))))
}

/// Points the rejects [`fold_live_events`] and [`retype_live_rows`] made of logged records (file:
/// the log folder `log`; line: the record's position in the records read) at `carried`, the
/// generation's file of those records, line for line.
pub(crate) fn point_at_carried(rejects: &[Reject], log: &std::path::Path, carried: &std::path::Path) -> Vec<Reject> {
    let at_carried = |r: &Reject| Reject { file: carried.to_path_buf(), ..r.clone() };
    rejects.iter().map(|r| if r.file == log { at_carried(r) } else { r.clone() }).collect()
}

/// The logged events (carried ones included) whose user and item pair is in no row of
/// `interactions` that was read, as rejects of the log `log` at their position in `logged`
/// ([`fold_live_events`] says where they point);
/// an event whose item the catalog lacks is refused for that, as a folded one would be. Only
/// the events' pairs are held: the file's rows are scanned once against them.
fn not_in_file(
    logged: &[hyrank_engine::live::LoggedRecord],
    item_index: &HashMap<&str, u32>,
    interactions: Option<&Interactions>,
    log: &std::path::Path,
) -> Vec<Reject> {
    use hyrank_engine::live::Record;
    let events: Vec<(usize, u64, &hyrank_engine::live::Event, Option<u32>)> = logged
        .iter()
        .enumerate()
        .filter_map(|(at, l)| match &l.record {
            Record::Event(event) => Some((at, l.seq, event, item_index.get(event.item.as_str()).copied())),
            _ => None,
        })
        .collect();
    let mut wanted: HashMap<(&str, u32), bool> =
        events.iter().filter_map(|(_, _, e, item)| item.map(|item| ((e.user.as_str(), item), false))).collect();
    if !wanted.is_empty() {
        for row in interactions.iter().flat_map(|i| &i.rows) {
            if let Some(found) = wanted.get_mut(&(row.user.as_str(), row.item)) {
                *found = true;
            }
        }
    }
    let reject = |at: usize, reason: String| Reject {
        file: log.to_path_buf(),
        line: at as u64 + 1,
        field: Some("item".into()),
        id: None,
        reason,
        cause: Default::default(),
    };
    events
        .iter()
        .filter_map(|&(at, seq, event, item)| match item {
            None => Some(reject(at, format!("live event {seq}: item {:?} is not in this catalog", event.item))),
            Some(item) if wanted[&(event.user.as_str(), item)] => None,
            Some(_) => Some(reject(
                at,
                format!(
                    "live event {seq}: user {:?} with item {:?} is in no row read from the interactions file, which \
                     --no-live-events says holds every logged event; not counted (every build with the flag \
                     reports it again: earlier generations carry it)",
                    event.user, event.item
                ),
            )),
        })
        .collect()
}

/// Types the rows live writes put into the catalog as the catalog's own are typed: a field the
/// catalog has keeps its type, a field only live rows have gets one inferred from them
/// ([`crate::input::infer_field_types`]). The server types live writes against the
/// generation it serves, so a value that does not fit (the catalog's types changed since, or a
/// log from before typed fields) is left out of its row and reported, never guessed.
/// A reject points at the last logged write that gave the item the field (its position in
/// `logged` from 1, as [`fold_live_events`]' rejects do). A row that loses a value is another
/// row than the one the replay made: the replay's row joins the id's earlier rows
/// (`writes`' `row_hashes`), since a server serving the generation before names it.
pub(crate) fn retype_live_rows(
    settings: &IndexSettings,
    catalog: &mut crate::input::Catalog,
    logged: &[hyrank_engine::live::LoggedRecord],
    writes: &mut ItemWrites,
    served_types: &std::collections::BTreeMap<String, hyrank_engine::item::FieldType>,
) -> Vec<Reject> {
    use hyrank_engine::live::{row_hashes, Record};
    // By index, the names of rows as the replay made them, taken before they lose a value.
    let mut replayed: Vec<(usize, Vec<String>)> = Vec::new();
    let names = |item: &hyrank_engine::Item| -> Vec<String> {
        // The row's own name first (`version_names` lists it first).
        version_names(item, served_types).into_iter().map(|(name, _)| name).collect()
    };
    let wrote = |id: &str, name: &str| {
        let gave = |record: &Record| match record {
            Record::Put(put) => put.item.id == id && put.item.fields.contains_key(name),
            Record::Fields(update) => update.update_item == id && update.fields.contains_key(name),
            Record::Event(_) | Record::Delete(_) => false,
        };
        logged.iter().rposition(|l| gave(&l.record)).map_or(0, |at| at as u64 + 1)
    };
    // Rows written live by a server from before the blank rule may hold blank values: they
    // are no values here either (`FieldValue::without_blanks`), as in the catalog's rows.
    for (at, item) in catalog.items.iter_mut().enumerate() {
        if item.fields.values().any(hyrank_engine::item::FieldType::is_blank) {
            replayed.push((at, names(item)));
            item.fields = std::mem::take(&mut item.fields)
                .into_iter()
                .filter_map(|(name, value)| value.without_blanks().map(|value| (name, value)))
                .collect();
        }
    }
    let (types, _) = crate::input::infer_field_types(&catalog.items, &catalog.field_types);
    let log = settings.index_dir.join(hyrank_engine::live::LIVE_DIR);
    let mut refused = Vec::new();
    for (at, item) in catalog.items.iter_mut().enumerate() {
        // Every value left is not blank, so inference gave its field a type.
        let converted: Vec<(String, std::result::Result<hyrank_engine::FieldValue, String>)> = item
            .fields
            .iter()
            .filter_map(|(name, value)| Some((name.clone(), types.get(name)?.coerce(value))))
            .collect();
        let misfits: Vec<(String, String)> =
            converted.iter().filter_map(|(name, c)| Some((name.clone(), c.clone().err()?))).collect();
        // Named before it loses a value (once: the blank rule may have named it already).
        if !misfits.is_empty() && !replayed.last().is_some_and(|(i, _)| *i == at) {
            replayed.push((at, names(item)));
        }
        item.fields.extend(converted.into_iter().filter_map(|(name, c)| Some((name, c.ok()?))));
        for (name, found) in misfits {
            item.fields.remove(&name);
            refused.push(Reject {
                file: log.clone(),
                line: wrote(&item.id, &name),
                field: Some(name.clone()),
                id: Some(item.id.clone()),
                reason: format!(
                    "item {:?}: a live write gave {name} {found}, but the catalog's {name} is {}; left out",
                    item.id,
                    types[&name].described()
                ),
                cause: Default::default(),
            });
        }
    }
    if !refused.is_empty() {
        tracing::warn!(
            values = refused.len(),
            "values written live that the catalog's field types no longer take are left out of their rows \
             (rejects.jsonl lists them)"
        );
    }
    catalog.field_types = types;
    for (at, names) in replayed {
        let item = &catalog.items[at];
        let own = row_hashes(item);
        // The name writes about it carry from now on, on every generation (`Engine::row_name`,
        // which the engine accepts beside the row's own); its other names (typed ones, an
        // older server's) join the earlier rows, the latest first.
        let mut names = names.into_iter();
        if let Some(written) = names.next().filter(|name| !own.contains(name)) {
            writes.written_as.insert(item.id.clone(), written);
        }
        let earlier = writes.row_hashes.entry(item.id.clone()).or_default();
        let new: Vec<String> = names.filter(|h| !own.contains(h) && !earlier.contains(h)).collect();
        earlier.splice(0..0, new);
        if earlier.is_empty() {
            writes.row_hashes.remove(&item.id);
        }
    }
    refused
}

/// What replaying the log's item writes did to the catalog.
#[derive(Debug, Default)]
pub(crate) struct ItemWrites {
    deleted: Vec<String>,
    superseded_deletes: usize,
    updated: Vec<String>,
    superseded_updates: usize,
    created: usize,
    replaced: usize,
    superseded_puts: usize,
    /// Per id, the hashes a later write may name besides its row's own (`LiveFold::row_hashes`).
    row_hashes: std::collections::BTreeMap<String, Vec<String>>,
    /// By sequence number, the type-independent name (`live::item_hash`) of the row a write
    /// named by a typed hash (an older server's): the new generation's carried records name it
    /// so ([`ItemWrites::rename`]).
    renamed: HashMap<u64, String>,
    /// Per id stored without values the writes gave it, the name of the row as written
    /// (`LiveFold::written_as`).
    written_as: std::collections::BTreeMap<String, String>,
}

impl ItemWrites {
    /// Gives the writes in `logged` that named their row by a typed hash the row's
    /// type-independent name, as the new generation carries them: a later build that changes a
    /// field's type would find no row of the typed name (each build replays every write).
    pub(crate) fn rename(&self, logged: &mut [hyrank_engine::live::LoggedRecord]) {
        use hyrank_engine::live::Record;
        for record in logged.iter_mut() {
            let Some(name) = self.renamed.get(&record.seq) else { continue };
            match &mut record.record {
                Record::Delete(delete) => delete.item_hash = name.clone(),
                Record::Fields(update) => update.item_hash = name.clone(),
                Record::Put(put) => put.item_hash = name.clone(),
                Record::Event(_) => {}
            }
        }
    }
}

/// The names a write may give `row`, each with the row's own ([`hyrank_engine::live::item_hash`]):
/// that one, the typed hash servers logged before 2026-12-07 (`live::row_hashes`), and both
/// names of the row as the generation served before this build stored it, typed by its field
/// types `served_types`: a value that did not fit them left out, as [`retype_live_rows`] left
/// it out (a live row's price of "ask us" once prices were numbers again), and each value
/// converted to them (what a server from before 2026-12-07 typed it by).
fn version_names(
    row: &hyrank_engine::Item,
    served_types: &std::collections::BTreeMap<String, hyrank_engine::item::FieldType>,
) -> Vec<(String, String)> {
    use hyrank_engine::live::{item_hash, row_hashes};
    let own = item_hash(row);
    let mut names = row_hashes(row);
    let mut served = row.clone();
    served.fields = std::mem::take(&mut served.fields)
        .into_iter()
        .filter_map(|(name, value)| {
            let value = value.without_blanks()?;
            match served_types.get(&name) {
                Some(kind) => kind.coerce(&value).ok().map(|converted| (name, converted)),
                None => Some((name, value)),
            }
        })
        .collect();
    for name in row_hashes(&served) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names.into_iter().map(|name| (name, own.clone())).collect()
}

/// One id's row while the log is replayed.
struct RowState {
    /// Its position in the catalog, if the catalog has the id.
    index: Option<usize>,
    /// The row now; `None` while the id names none.
    row: Option<hyrank_engine::Item>,
    deleted: bool,
    /// Hashes a write about the id may carry (the rows a generation could have stored for it),
    /// each with the [`hyrank_engine::live::item_hash`] of its row.
    hashes: Vec<(String, String)>,
    updated: bool,
    put: bool,
}

/// Replays the log's deletes, field updates and puts, in sequence order, against `items`,
/// which it changes: a put's row replaces the catalog's (or is appended, for an id the catalog
/// lacks), a field update replaces a row's fields, and deleted ids are returned for the engine
/// to hide (their rows stay, so that the next build can compare them again).
///
/// A write applies only to the row it was made against: the catalog team's change to a row
/// supersedes the live writes made before it. A write names the row as a generation stored it,
/// which is the catalog row with the live writes before it applied; so each applied write adds
/// the hash of the row it produces to those the id's later writes may carry. A put made while
/// the id named no visible row (new, or deleted) carries an empty hash, and applies while that
/// is still so. The engine applies the same rule to the writes after its generation's build
/// (`engine/live_items.rs`), so a build and a server agree on what a write did.
///
/// `served_types`: the field types of the generation served before this build, which a server
/// from before 2026-12-07 typed rows by when it named them ([`version_names`]). A write that
/// names its row so is recorded with the row's type-independent name (`ItemWrites::renamed`),
/// which the new generation's carried records take, so that later builds no longer depend on
/// the types it was made under.
pub(crate) fn replay_item_writes(
    items: &mut Vec<hyrank_engine::Item>,
    legacy_hashes: &HashMap<String, String>,
    logged: &[hyrank_engine::live::LoggedRecord],
    served_types: &std::collections::BTreeMap<String, hyrank_engine::item::FieldType>,
) -> ItemWrites {
    use hyrank_engine::live::{item_hash, Record};
    let mut rows: HashMap<String, RowState> = HashMap::new();
    // First-touched order, so appended items get the same indexes on every build.
    let mut order: Vec<String> = Vec::new();
    let catalog: HashMap<&str, usize> = items.iter().enumerate().map(|(i, item)| (item.id.as_str(), i)).collect();
    let mut writes = ItemWrites::default();
    let mut state = |id: &str, rows: &mut HashMap<String, RowState>| {
        if !rows.contains_key(id) {
            let index = catalog.get(id).copied();
            let row = index.map(|i| items[i].clone());
            // A catalog row holding blank values had another hash under an older build's
            // reading (`Catalog::legacy_hashes`): a write an older server made against it
            // still names this row.
            let legacy = index.and_then(|_| legacy_hashes.get(id)).cloned();
            let legacy = legacy.zip(row.as_ref().map(item_hash));
            let hashes = row.iter().flat_map(|row| version_names(row, served_types)).chain(legacy).collect();
            rows.insert(id.to_string(), RowState { index, row, deleted: false, hashes, updated: false, put: false });
            order.push(id.to_string());
        }
    };
    // Whether a write names one of the id's rows, recording the rename a name other than the
    // row's own asks for.
    let named = |hashes: &[(String, String)], hash: &str, seq: u64, renamed: &mut HashMap<u64, String>| {
        let Some((_, own)) = hashes.iter().find(|(name, _)| name == hash) else { return false };
        if own != hash {
            renamed.insert(seq, own.clone());
        }
        true
    };
    for logged in logged {
        match &logged.record {
            Record::Event(_) => {}
            Record::Delete(delete) => {
                state(&delete.delete_item, &mut rows);
                let row = rows.get_mut(&delete.delete_item).expect("inserted above");
                match row.row.is_some() && named(&row.hashes, &delete.item_hash, logged.seq, &mut writes.renamed) {
                    true => row.deleted = true,
                    false => writes.superseded_deletes += 1,
                }
            }
            Record::Fields(update) => {
                state(&update.update_item, &mut rows);
                let row = rows.get_mut(&update.update_item).expect("inserted above");
                let names = row.row.is_some() && named(&row.hashes, &update.item_hash, logged.seq, &mut writes.renamed);
                match row.row.as_mut().filter(|_| names) {
                    Some(current) => {
                        current.fields = update.fields.clone();
                        row.hashes.extend(version_names(current, served_types));
                        row.updated = true;
                    }
                    None => writes.superseded_updates += 1,
                }
            }
            Record::Put(put) => {
                state(&put.item.id, &mut rows);
                let row = rows.get_mut(&put.item.id).expect("inserted above");
                let visible = row.row.is_some() && !row.deleted;
                let applies = match visible {
                    true => named(&row.hashes, &put.item_hash, logged.seq, &mut writes.renamed),
                    false => put.item_hash.is_empty(),
                };
                if applies {
                    // A new row: only writes made against it apply from now on (the engine
                    // checks a write against the row the id names, never an older one).
                    row.hashes = version_names(&put.item, served_types);
                    row.row = Some(put.item.clone());
                    row.deleted = false;
                    row.put = true;
                } else {
                    writes.superseded_puts += 1;
                }
            }
        }
    }
    drop(catalog);
    for id in order {
        let row = rows.remove(&id).expect("every touched id has a row");
        let Some(current) = row.row else { continue };
        // The generation stores `current`; a write made against one of the id's earlier rows
        // (a server serving the generation before this one, writing after this build read
        // the log) names that row, and the engine must apply it as this replay would.
        // Every version, each once, the latest first. All of them: the row a server serving
        // an earlier generation names is that generation's, which may be the oldest here (the
        // catalog's, with any number of updates folded in since).
        let own = version_names(&current, served_types);
        let own: Vec<&String> = own.iter().map(|(name, _)| name).collect();
        let mut earlier: Vec<String> = Vec::new();
        for hash in row.hashes.iter().rev().map(|(name, _)| name).filter(|h| !own.contains(h)) {
            if !earlier.contains(hash) {
                earlier.push(hash.clone());
            }
        }
        if !earlier.is_empty() {
            writes.row_hashes.insert(id.clone(), earlier);
        }
        match row.index {
            Some(index) => {
                if row.put {
                    writes.replaced += 1;
                }
                items[index] = current;
            }
            None => {
                writes.created += 1;
                items.push(current);
            }
        }
        if row.updated {
            writes.updated.push(id.clone());
        }
        if row.deleted {
            writes.deleted.push(id);
        }
    }
    writes
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyrank_engine::live::{item_hash, row_hashes, FieldUpdate, LoggedRecord, Record};

    /// A row updated back and forth many times lists each earlier version once, the latest
    /// first, the catalog's among them; the writes all apply.
    #[test]
    fn earlier_rows_are_listed_once_the_catalogs_among_them() {
        let row = |price: f64| hyrank_engine::Item {
            id: "a".into(),
            title: "A".into(),
            text: String::new(),
            fields: [("price".to_string(), hyrank_engine::FieldValue::Number(price))].into_iter().collect(),
        };
        let mut items = vec![row(0.0)];
        let mut logged = Vec::new();
        let mut current = row(0.0);
        for (seq, price) in (1..=30u64).map(|s| (s, (s % 12) as f64)) {
            let update =
                FieldUpdate { update_item: "a".into(), item_hash: item_hash(&current), fields: row(price).fields };
            logged.push(LoggedRecord { seq, written_ms: 0, batch: None, record: Record::Fields(update) });
            current = row(price);
        }
        let writes = replay_item_writes(&mut items, &HashMap::new(), &logged, &Default::default());
        assert_eq!((writes.superseded_updates, &items[0]), (0, &current));
        let earlier = &writes.row_hashes["a"];
        // Each version by both its names (`live::row_hashes`: a price is a number, so its typed
        // hash, which earlier servers logged, differs).
        let latest: Vec<String> =
            (19..30u64).rev().flat_map(|s| row_hashes(&row((s % 12) as f64)).into_iter().rev()).collect();
        assert_eq!(earlier, &latest, "the 11 other versions, latest first, each once");
        assert!(earlier.contains(&item_hash(&row(0.0))), "the catalog's row");
    }

    /// A write an earlier server logged names the row by its typed hash, which differs from
    /// the hash servers log now where a field holds a number: it still applies, under the
    /// types the generation before served too, and is carried by the row's own name.
    #[test]
    fn a_write_naming_the_typed_hash_earlier_servers_logged_applies() {
        use hyrank_engine::live::{typed_item_hash, ItemDelete};
        let row = hyrank_engine::Item {
            id: "a".into(),
            title: "A".into(),
            text: String::new(),
            fields: [("price".to_string(), hyrank_engine::FieldValue::Number(25.0))].into_iter().collect(),
        };
        assert_ne!(typed_item_hash(&row), item_hash(&row));
        let delete = ItemDelete { delete_item: "a".into(), item_hash: typed_item_hash(&row) };
        let mut logged = vec![LoggedRecord { seq: 1, written_ms: 0, batch: None, record: Record::Delete(delete) }];
        let writes = replay_item_writes(&mut vec![row.clone()], &HashMap::new(), &logged, &Default::default());
        assert_eq!((&writes.deleted, writes.superseded_deletes), (&vec!["a".to_string()], 0));
        // The generation carries it by the row's own name, which no field type changes.
        writes.rename(&mut logged);
        let Record::Delete(carried) = &logged[0].record else { unreachable!() };
        assert_eq!(carried.item_hash, item_hash(&row));
        // A row the served generation typed otherwise (a field only live rows hold, a list
        // there) was named by that typed row: the types it was served with are asked for.
        let mut served = row.clone();
        served.fields.insert("colour".into(), hyrank_engine::FieldValue::List(vec!["red".into()]));
        let mut logged_row = row.clone();
        logged_row.fields.insert("colour".into(), hyrank_engine::FieldValue::Text("red".into()));
        let delete = ItemDelete { delete_item: "a".into(), item_hash: typed_item_hash(&served) };
        let logged = [LoggedRecord { seq: 2, written_ms: 0, batch: None, record: Record::Delete(delete) }];
        let superseded =
            replay_item_writes(&mut vec![logged_row.clone()], &HashMap::new(), &logged, &Default::default());
        assert_eq!(superseded.superseded_deletes, 1, "another row without the served types");
        let types = [("colour".to_string(), hyrank_engine::item::FieldType::List)].into_iter().collect();
        let writes = replay_item_writes(&mut vec![logged_row.clone()], &HashMap::new(), &logged, &types);
        assert_eq!((writes.deleted, writes.renamed[&2].clone()), (vec!["a".to_string()], item_hash(&logged_row)));
    }
}
