//! The metadata store: item records, id → index mapping, and user histories. Kept behind
//! [`MetaStore`] so that the on-disk engine (sled today; sled's 1.0 line is still alpha) can
//! change without touching the retrievers.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::item::Item;

/// One interaction in a user's history.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interaction {
    /// Item index.
    pub item: u32,
    /// Summed interaction value.
    pub weight: f32,
    /// Latest timestamp seen for this pair, if the input had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
}

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    /// The input's user id.
    pub id: String,
    /// Row in the user-factor matrix.
    pub index: u32,
    /// Interactions, oldest first when timestamps exist.
    pub history: Vec<Interaction>,
    /// Items the user interacted with below the build's positive rule (`--min-weight`), by
    /// index, ascending: not in `history` (neither CF nor the content profile reads them), but
    /// seen, so `exclude_seen` leaves them out (a film rated 1 is not recommended back).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seen: Vec<u32>,
}

/// Reads and writes items and users.
pub trait MetaStore: Send + Sync {
    /// Stores an item under its index and maps its id to that index.
    fn put_item(&self, index: u32, item: &Item) -> Result<()>;
    /// The item stored at `index`.
    fn item(&self, index: u32) -> Result<Option<Item>>;
    /// The index of the item with this id.
    fn item_index(&self, id: &str) -> Result<Option<u32>>;
    /// Every item, in index order.
    fn items(&self) -> Result<Vec<(u32, Item)>>;
    /// Stores a user.
    fn put_user(&self, user: &UserRecord) -> Result<()>;
    /// The user with this id.
    fn user(&self, id: &str) -> Result<Option<UserRecord>>;
    /// Every user, ordered by id.
    fn users(&self) -> Result<Vec<UserRecord>>;
    /// Makes every write durable.
    fn flush(&self) -> Result<()>;
}

/// [`MetaStore`] on sled.
pub struct SledStore {
    db: sled::Db,
    items: sled::Tree,
    ids: sled::Tree,
    users: sled::Tree,
}

impl SledStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        let db = open_when_free(dir)?;
        Ok(SledStore { items: db.open_tree("items")?, ids: db.open_tree("ids")?, users: db.open_tree("users")?, db })
    }
}

fn decode<T: for<'de> Deserialize<'de>>(what: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| Error::Json { context: format!("decoding stored {what}"), source })
}

fn encode<T: Serialize>(what: &str, value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|source| Error::Json { context: format!("encoding {what}"), source })
}

impl MetaStore for SledStore {
    fn put_item(&self, index: u32, item: &Item) -> Result<()> {
        self.items.insert(index.to_be_bytes(), encode("item", item)?)?;
        self.ids.insert(item.id.as_bytes(), &index.to_be_bytes())?;
        Ok(())
    }

    fn item(&self, index: u32) -> Result<Option<Item>> {
        self.items.get(index.to_be_bytes())?.map(|bytes| decode("item", &bytes)).transpose()
    }

    fn item_index(&self, id: &str) -> Result<Option<u32>> {
        Ok(self
            .ids
            .get(id.as_bytes())?
            .and_then(|bytes| <[u8; 4]>::try_from(bytes.as_ref()).ok())
            .map(u32::from_be_bytes))
    }

    fn items(&self) -> Result<Vec<(u32, Item)>> {
        // Big-endian keys iterate in index order.
        self.items
            .iter()
            .map(|entry| {
                let (key, value) = entry?;
                let index = <[u8; 4]>::try_from(key.as_ref())
                    .map(u32::from_be_bytes)
                    .map_err(|_| Error::Store("item key is not 4 bytes".into()))?;
                Ok((index, decode("item", &value)?))
            })
            .collect()
    }

    fn put_user(&self, user: &UserRecord) -> Result<()> {
        self.users.insert(user.id.as_bytes(), encode("user", user)?)?;
        Ok(())
    }

    fn user(&self, id: &str) -> Result<Option<UserRecord>> {
        self.users.get(id.as_bytes())?.map(|bytes| decode("user", &bytes)).transpose()
    }

    fn users(&self) -> Result<Vec<UserRecord>> {
        // sled iterates keys in byte order, which is id order.
        self.users.iter().map(|entry| decode("user", &entry?.1)).collect()
    }

    fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }
}

/// A generation's store read into memory at open, for serving.
///
/// A published generation never changes, and sled holds an exclusive lock on its folder for as
/// long as it is open: a server and a trainer (or a blue-green successor process) could not open
/// the same generation at once. Reading the trees once and closing sled removes the lock; the
/// records stay as their stored JSON and are decoded on each lookup, as with sled.
pub struct SnapshotStore {
    items: Vec<Vec<u8>>,
    ids: std::collections::HashMap<String, u32>,
    users: std::collections::HashMap<String, Vec<u8>>,
}

impl SnapshotStore {
    /// Reads the sled store in `dir` and closes it. Item indexes must run 0..n without gaps.
    pub fn load(dir: &Path) -> Result<Self> {
        let db = open_when_free(dir)?;
        let mut items = Vec::new();
        for entry in db.open_tree("items")?.iter() {
            let (key, value) = entry?;
            let index = <[u8; 4]>::try_from(key.as_ref())
                .map(u32::from_be_bytes)
                .map_err(|_| Error::Store("item key is not 4 bytes".into()))?;
            if index as usize != items.len() {
                return Err(Error::Store(format!("item indexes are not dense at {}", items.len())));
            }
            items.push(value.to_vec());
        }
        let mut ids = std::collections::HashMap::new();
        for entry in db.open_tree("ids")?.iter() {
            let (key, value) = entry?;
            let id = String::from_utf8(key.to_vec()).map_err(|_| Error::Store("an item id is not UTF-8".into()))?;
            let index = <[u8; 4]>::try_from(value.as_ref())
                .map(u32::from_be_bytes)
                .map_err(|_| Error::Store("an item index is not 4 bytes".into()))?;
            ids.insert(id, index);
        }
        let mut users = std::collections::HashMap::new();
        for entry in db.open_tree("users")?.iter() {
            let (key, value) = entry?;
            let id = String::from_utf8(key.to_vec()).map_err(|_| Error::Store("a user id is not UTF-8".into()))?;
            users.insert(id, value.to_vec());
        }
        Ok(SnapshotStore { items, ids, users })
    }
}

/// Opens the sled store in `dir`, waiting up to 5 s for its lock: another reader's
/// [`SnapshotStore::load`] holds it while it reads, and a closed handle's background flusher can
/// hold it a few milliseconds longer (two loads in a row in one process failed now and then).
fn open_when_free(dir: &Path) -> Result<sled::Db> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match sled::Config::new().path(dir).open() {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock") && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            // Permission denied names no path in sled's words.
            Err(sled::Error::Io(e)) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                let context = format!(
                    "opening the store in {} (a generation's folder must be writable by the process that opens it: \
                     the store keeps a lock file there)",
                    dir.display()
                );
                return Err(Error::io(context, e));
            }
            opened => return Ok(opened?),
        }
    }
}

fn read_only() -> Error {
    Error::Store("a published generation's store is read-only".into())
}

impl MetaStore for SnapshotStore {
    fn put_item(&self, _: u32, _: &Item) -> Result<()> {
        Err(read_only())
    }

    fn item(&self, index: u32) -> Result<Option<Item>> {
        self.items.get(index as usize).map(|bytes| decode("item", bytes)).transpose()
    }

    fn item_index(&self, id: &str) -> Result<Option<u32>> {
        Ok(self.ids.get(id).copied())
    }

    fn items(&self) -> Result<Vec<(u32, Item)>> {
        self.items.iter().enumerate().map(|(i, bytes)| Ok((i as u32, decode("item", bytes)?))).collect()
    }

    fn put_user(&self, _: &UserRecord) -> Result<()> {
        Err(read_only())
    }

    fn user(&self, id: &str) -> Result<Option<UserRecord>> {
        self.users.get(id).map(|bytes| decode("user", bytes)).transpose()
    }

    fn users(&self) -> Result<Vec<UserRecord>> {
        let mut ids: Vec<&String> = self.users.keys().collect();
        ids.sort();
        ids.into_iter().map(|id| decode("user", &self.users[id])).collect()
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_and_users_round_trip_in_index_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        for (i, id) in ["b", "a", "c"].iter().enumerate() {
            let item =
                Item { id: id.to_string(), title: format!("t{i}"), text: String::new(), fields: Default::default() };
            store.put_item(300 - i as u32 * 100, &item).unwrap();
        }
        assert_eq!(store.item_index("a").unwrap(), Some(200));
        assert_eq!(store.item(200).unwrap().unwrap().id, "a");
        assert_eq!(store.items().unwrap().iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![100, 200, 300]);
        let user = UserRecord {
            id: "u".into(),
            index: 0,
            history: vec![Interaction { item: 1, weight: 2.0, timestamp: None }],
            seen: vec![3],
        };
        store.put_user(&user).unwrap();
        store.flush().unwrap();
        drop(store);
        let reopened = SledStore::open(dir.path()).unwrap();
        assert_eq!(reopened.user("u").unwrap(), Some(user));
        assert_eq!(reopened.user("nobody").unwrap(), None);
    }

    #[test]
    fn snapshots_read_everything_and_leave_the_folder_unlocked() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        for (i, id) in ["b", "a"].iter().enumerate() {
            let item =
                Item { id: id.to_string(), title: format!("t{i}"), text: String::new(), fields: Default::default() };
            store.put_item(i as u32, &item).unwrap();
        }
        let user = UserRecord { id: "u".into(), index: 0, history: vec![], seen: vec![] };
        store.put_user(&user).unwrap();
        store.flush().unwrap();
        drop(store);
        let first = SnapshotStore::load(dir.path()).unwrap();
        // A second reader (another server, a trainer) opens the same generation meanwhile.
        let second = SnapshotStore::load(dir.path()).unwrap();
        assert_eq!(first.item_index("a").unwrap(), Some(1));
        assert_eq!(second.item(0).unwrap().unwrap().id, "b");
        assert_eq!(first.items().unwrap().len(), 2);
        assert_eq!(first.user("u").unwrap(), Some(user.clone()));
        assert_eq!(first.users().unwrap(), vec![user]);
        assert!(first.put_user(&UserRecord { id: "v".into(), index: 1, history: vec![], seen: vec![] }).is_err());
    }
}
