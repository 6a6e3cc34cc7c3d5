//! The message-id index: which receive sequence holds a message id.
//!
//! Owns the two tables of it, [`IDS`] and [`IDS_MORE`], and is the only
//! code that reads or writes them. Ids are hashes, so their inserts land on
//! random pages, and a transaction of thousands of them copies and writes
//! nearly every page of the index. Keyed by an id's first 8 bytes instead
//! of all 32, an entry takes 16 bytes instead of 40 and the index as many
//! fewer pages (README "Import": about 4% off the import in alternating
//! runs, and a smaller store). A write transaction's inserts wait and go
//! in together in key order, so that they walk the tree's pages in order
//! (README "Import": about 2% off the import and 3% off a first sync).
//!
//! A prefix names a message only when the log record it points at carries
//! the whole id. A second message with the same prefix (its author can grind
//! for one in about 2^32 hashes) is kept under its whole id in [`IDS_MORE`],
//! so no message ever hides another. Imports the store's schema and
//! `crypto`.

use redb::{AccessGuard, ReadableTable, ReadableTableMetadata as _, Table, TableHandle as _};

use super::schema::{IDS, IDS_MORE, IDS_V7};
use super::{PENDING_ENTRIES, Result, StoreError};
use crate::crypto::MsgId;

/// The key of an id in [`IDS`].
fn prefix(id: &MsgId) -> u64 {
    u64::from_be_bytes(id.0[..8].try_into().expect("8 bytes"))
}

/// A message found by id: its receive sequence and its log record.
pub(super) type Found<'l> = (u64, AccessGuard<'l, &'static [u8]>);

/// The id index of one transaction: its tables, read-only or writable.
pub(super) struct Ids<P, M> {
    prefix: P,
    more: M,
}

/// The id index of a write transaction: its tables, and the ids inserted
/// and not yet written to them. Inserts wait and go in together, in key
/// order (see [`IdsMut::flush`]): a transaction's thousands of ids then
/// walk the tree's pages in order instead of at random.
pub(super) struct IdsMut<'t> {
    tables: Ids<Table<'t, u64, u64>, Table<'t, &'static [u8; 32], u64>>,
    pending: Vec<(u64, u64, MsgId)>,
}

/// The id index of a read transaction.
pub(super) type IdsRead =
    Ids<redb::ReadOnlyTable<u64, u64>, redb::ReadOnlyTable<&'static [u8; 32], u64>>;

impl<P, M> Ids<P, M>
where
    P: ReadableTable<u64, u64>,
    M: ReadableTable<&'static [u8; 32], u64>,
{
    /// The receive sequence of `id` and its record in `log` (read once:
    /// the record is what proves a prefix names this very id).
    pub(super) fn find<'l>(
        &self,
        log: &'l impl ReadableTable<u64, &'static [u8]>,
        id: &MsgId,
    ) -> Result<Option<Found<'l>>> {
        let record = |rx: u64| {
            log.get(rx)?.ok_or(StoreError::Corrupt(
                "id index points at a missing log entry",
            ))
        };
        if let Some(rx) = self.prefix.get(prefix(id))?.map(|v| v.value()) {
            let rec = record(rx)?;
            if rec.value().get(..32) == Some(&id.0[..]) {
                return Ok(Some((rx, rec)));
            }
        }
        if self.more.is_empty()? {
            return Ok(None);
        }
        match self.more.get(&id.0)?.map(|v| v.value()) {
            Some(rx) => Ok(Some((rx, record(rx)?))),
            None => Ok(None),
        }
    }
}

impl IdsRead {
    /// The index as of a read transaction.
    pub(super) fn open(txn: &redb::ReadTransaction) -> Result<IdsRead> {
        Ok(Ids {
            prefix: txn.open_table(IDS)?,
            more: txn.open_table(IDS_MORE)?,
        })
    }
}

impl<'t> IdsMut<'t> {
    /// The index in a write transaction (its tables made if missing).
    pub(super) fn open(txn: &'t redb::WriteTransaction) -> Result<IdsMut<'t>> {
        Ok(IdsMut {
            tables: Ids {
                prefix: txn.open_table(IDS)?,
                more: txn.open_table(IDS_MORE)?,
            },
            pending: Vec::new(),
        })
    }

    /// Records that `id`, a message not yet in the index, is at `rx`. It
    /// is written by the next [`IdsMut::flush`] (or read through the index),
    /// at the latest once [`PENDING_ENTRIES`] wait (40 bytes each).
    pub(super) fn insert(&mut self, id: &MsgId, rx: u64) -> Result<()> {
        self.pending.push((prefix(id), rx, *id));
        if self.pending.len() >= PENDING_ENTRIES {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the ids inserted since the last flush, in key order (of two
    /// with one prefix, the earlier message keeps it). Must run before
    /// the transaction commits.
    pub(super) fn flush(&mut self) -> Result<()> {
        let mut pending = std::mem::take(&mut self.pending);
        pending.sort_unstable_by_key(|&(key, rx, _)| (key, rx));
        let tables = &mut self.tables;
        for (key, rx, id) in pending {
            let taken = tables.prefix.insert(key, rx)?.map(|v| v.value());
            if let Some(first) = taken {
                // The prefix is another message's: it keeps it.
                tables.prefix.insert(key, first)?;
                tables.more.insert(&id.0, rx)?;
            }
        }
        Ok(())
    }

    /// [`Ids::find`], after what was inserted before it.
    pub(super) fn find<'l>(
        &mut self,
        log: &'l impl ReadableTable<u64, &'static [u8]>,
        id: &MsgId,
    ) -> Result<Option<Found<'l>>> {
        self.flush()?;
        self.tables.find(log, id)
    }

    /// Forgets `id`, stored at `rx`. When it held its prefix, another
    /// message sharing the prefix, if any, takes it over.
    pub(super) fn remove(&mut self, id: &MsgId, rx: u64) -> Result<()> {
        self.flush()?;
        let tables = &mut self.tables;
        let key = prefix(id);
        if tables.prefix.get(key)?.map(|v| v.value()) != Some(rx) {
            tables.more.remove(&id.0)?;
            return Ok(());
        }
        tables.prefix.remove(key)?;
        if tables.more.is_empty()? {
            return Ok(());
        }
        let mut low = [0u8; 32];
        low[..8].copy_from_slice(&id.0[..8]);
        let mut high = [0xffu8; 32];
        high[..8].copy_from_slice(&id.0[..8]);
        let next = tables
            .more
            .range::<&[u8; 32]>(&low..=&high)?
            .next()
            .transpose()?
            .map(|(k, v)| (*k.value(), v.value()));
        if let Some((other, other_rx)) = next {
            tables.more.remove(&other)?;
            tables.prefix.insert(key, other_rx)?;
        }
        Ok(())
    }
}

/// Moves the id index of a store of version 7 or before (keyed by whole
/// ids) into the tables of this one, inside `txn`. Nothing to do when the
/// old table is gone.
pub(super) fn upgrade(txn: &redb::WriteTransaction) -> Result<()> {
    if !txn.list_tables()?.any(|t| t.name() == IDS_V7.name()) {
        return Ok(());
    }
    let old = txn.open_table(IDS_V7)?;
    let mut ids = IdsMut::open(txn)?;
    for e in old.iter()? {
        let (id, rx) = e?;
        ids.insert(&MsgId(*id.value()), rx.value())?;
    }
    ids.flush()?;
    drop(old);
    drop(ids);
    txn.delete_table(IDS_V7)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use redb::{ReadableDatabase as _, TableHandle as _};

    use super::*;
    use crate::crypto::Keypair;
    use crate::feed::{Object, Value};
    use crate::store::Store;
    use crate::store::schema::{LOG, META};

    /// An id of 32 bytes: `head` repeated over the first 8, `tail` after.
    fn id(head: u8, tail: u8) -> MsgId {
        let mut b = [tail; 32];
        b[..8].fill(head);
        MsgId(b)
    }

    /// A database whose log holds a record for each `(id, rx)`, indexed.
    fn indexed(entries: &[(MsgId, u64)]) -> (tempfile::TempDir, redb::Database) {
        let dir = tempfile::tempdir().unwrap();
        let db = redb::Database::create(dir.path().join("ids.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut log = txn.open_table(LOG).unwrap();
            let mut ids = IdsMut::open(&txn).unwrap();
            for (id, rx) in entries {
                let mut rec = id.0.to_vec();
                rec.extend_from_slice(&0f64.to_le_bytes());
                rec.extend_from_slice(b"{}");
                log.insert(rx, rec.as_slice()).unwrap();
                ids.insert(id, *rx).unwrap();
            }
            ids.flush().unwrap();
        }
        txn.commit().unwrap();
        (dir, db)
    }

    fn find(db: &redb::Database, id: &MsgId) -> Option<u64> {
        let txn = db.begin_read().unwrap();
        let log = txn.open_table(LOG).unwrap();
        let found = IdsRead::open(&txn).unwrap().find(&log, id).unwrap();
        found.map(|(rx, rec)| {
            assert_eq!(&rec.value()[..32], &id.0[..], "the record of another id");
            rx
        })
    }

    #[test]
    fn a_second_id_with_a_taken_prefix_is_found_by_its_whole_id() {
        let (a, b, c) = (id(7, 1), id(7, 2), id(9, 1));
        let (_d, db) = indexed(&[(a, 1), (b, 2), (c, 3)]);
        assert_eq!(find(&db, &a), Some(1));
        assert_eq!(find(&db, &b), Some(2));
        assert_eq!(find(&db, &c), Some(3));
        // Same prefix, never stored: the prefix points elsewhere.
        assert_eq!(find(&db, &id(7, 3)), None);
        assert_eq!(find(&db, &id(8, 1)), None);
    }

    /// Inserts wait to be written in key order; the transaction still
    /// finds each, and of two with one prefix the earlier message holds
    /// it, whatever order they came in.
    #[test]
    fn waiting_inserts_are_found_in_their_transaction_and_written_in_order() {
        let (a, b, c) = (id(7, 1), id(7, 2), id(3, 1));
        let dir = tempfile::tempdir().unwrap();
        let db = redb::Database::create(dir.path().join("ids.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut log = txn.open_table(LOG).unwrap();
            let mut ids = IdsMut::open(&txn).unwrap();
            for (id, rx) in [(b, 5), (c, 6), (a, 4)] {
                let mut rec = id.0.to_vec();
                rec.extend_from_slice(&0f64.to_le_bytes());
                rec.extend_from_slice(b"{}");
                log.insert(rx, rec.as_slice()).unwrap();
                ids.insert(&id, rx).unwrap();
            }
            assert_eq!(ids.pending.len(), 3, "nothing written yet");
            let found = ids.find(&log, &a).unwrap().map(|(rx, _)| rx);
            assert_eq!(found, Some(4), "found before the flush");
            assert!(ids.pending.is_empty(), "a lookup writes what waits");
            ids.flush().unwrap();
        }
        txn.commit().unwrap();
        assert_eq!(find(&db, &a), Some(4));
        assert_eq!(find(&db, &b), Some(5));
        assert_eq!(find(&db, &c), Some(6));
        let txn = db.begin_read().unwrap();
        let prefixes = txn.open_table(IDS).unwrap();
        assert_eq!(prefixes.get(prefix(&a)).unwrap().unwrap().value(), 4);
    }

    #[test]
    fn removing_the_holder_of_a_prefix_hands_it_to_another_with_it() {
        let (a, b, c) = (id(7, 1), id(7, 2), id(7, 3));
        let (_d, db) = indexed(&[(a, 1), (b, 2), (c, 3)]);
        let txn = db.begin_write().unwrap();
        {
            let mut ids = IdsMut::open(&txn).unwrap();
            ids.remove(&a, 1).unwrap();
            ids.remove(&c, 3).unwrap();
        }
        txn.commit().unwrap();
        assert_eq!(find(&db, &a), None);
        assert_eq!(find(&db, &b), Some(2));
        assert_eq!(find(&db, &c), None);
        let txn = db.begin_write().unwrap();
        IdsMut::open(&txn).unwrap().remove(&b, 2).unwrap();
        txn.commit().unwrap();
        assert_eq!(find(&db, &b), None);
        let txn = db.begin_read().unwrap();
        assert!(txn.open_table(IDS).unwrap().is_empty().unwrap());
        assert!(txn.open_table(IDS_MORE).unwrap().is_empty().unwrap());
    }

    #[test]
    fn a_version_7_id_index_is_moved_when_the_store_opens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let kp = Keypair::from_seed(&[3; 32]);
        let mut content = Object::new();
        content.insert("type", Value::from("post"));
        content.insert("text", Value::from("kept"));
        let msg = {
            let store = Store::open(&path).unwrap();
            store
                .append_local(&kp, Value::Object(content), None)
                .unwrap()
        };
        // Back to version 7's layout: the id index under whole ids.
        {
            let db = redb::Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.delete_table(IDS).unwrap();
            txn.delete_table(IDS_MORE).unwrap();
            txn.open_table(IDS_V7)
                .unwrap()
                .insert(&msg.id().0, 1)
                .unwrap();
            txn.open_table(META)
                .unwrap()
                .insert("schema_version", 7)
                .unwrap();
            txn.commit().unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.get(&msg.id()).unwrap().unwrap().key, msg.id());
        let db = store.db();
        let txn = db.begin_read().unwrap();
        assert!(
            !txn.list_tables()
                .unwrap()
                .any(|t| t.name() == IDS_V7.name())
        );
        let version = txn.open_table(META).unwrap();
        assert_eq!(version.get("schema_version").unwrap().unwrap().value(), 8);
    }
}
