//! The local spool (`webhook.spool_file`): webhook bodies kept on the daemon's disk before
//! they reach Odoo.
//!
//! With a spool, a webhook is answered 200 once its body is in a local [redb] database,
//! committed durably (fsync): about a millisecond, where storing it in Odoo takes an Odoo call.
//! The forwarder ([`super::forward`]) then moves the bodies to Odoo as `whatsapp.webhook.event`
//! records, many per call, and removes them from the spool once Odoo has them. Nothing waits here
//! long: while Odoo cannot store them (unreachable, refusing), new webhooks are answered 503 as
//! without a spool ([`SpoolStore`]), and the spool never holds more than `spool_max_events`.
//!
//! Every entry has a key, `<spool id>:<sequence>`, stored with its event (`spool_key`). After a
//! crash between Odoo's answer and the removal, or a call whose outcome is unknown (a timeout),
//! the forwarder asks Odoo which of those keys it has before sending the entries again, so no
//! webhook is stored twice. The sequence is kept in the file and never reused.
//!
//! The redb calls block; they run on tokio's blocking pool.

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

use super::ingest::{EventStore, NewEvent, StoreError};

/// Sequence → the event, as JSON.
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// `id` (this spool's random id) and `next` (the next sequence), as text.
const META: TableDefinition<&str, &str> = TableDefinition::new("meta");

/// Why the spool could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// Opening the file failed: the daemon does not start.
    #[error(
        "webhook.spool_file {path}: cannot open it ({message}); give a path in a directory the \
         daemon's user can write, on a local disk (e.g. /var/lib/whatsapp-sidecar/webhooks.redb)"
    )]
    Open { path: PathBuf, message: String },
    /// Another process holds the file (redb takes a lock on it).
    #[error(
        "webhook.spool_file {path} is in use by another process (a whatsapp-sidecar running \
         already?): give each daemon its own spool file"
    )]
    InUse { path: PathBuf },
    /// Reading or writing failed (disk full, I/O error): the webhook is answered 503.
    #[error("the webhook spool {path} could not be used: {message}")]
    Io { path: PathBuf, message: String },
}

impl SpoolError {
    /// An I/O failure may pass (space freed); a file that cannot be opened needs a fix.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SpoolError::Io { .. })
    }
}

/// One spooled event and its sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub seq: u64,
    pub event: NewEvent,
}

/// The spool file.
pub struct Spool {
    db: Database,
    path: PathBuf,
    id: String,
    len: AtomicUsize,
    /// The last sequence in the file when it was opened (0: none).
    left_up_to: u64,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("path", &self.path)
            .field("id", &self.id)
            .field("len", &self.len())
            .finish()
    }
}

impl Spool {
    /// Opens (or creates) the spool at `path`. Entries left by an earlier run stay, to be
    /// forwarded.
    pub fn open(path: &Path) -> Result<Spool, SpoolError> {
        let open_error = |e: &dyn std::fmt::Display| SpoolError::Open {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let db = Database::create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => SpoolError::InUse {
                path: path.to_path_buf(),
            },
            e => open_error(&e),
        })?;
        let tx = db.begin_write().map_err(|e| open_error(&e))?;
        let (id, len, left_up_to) = {
            let mut meta = tx.open_table(META).map_err(|e| open_error(&e))?;
            let existing = meta
                .get("id")
                .map_err(|e| open_error(&e))?
                .map(|v| v.value().to_owned());
            let id = match existing {
                Some(id) => id,
                None => {
                    let id = format!("{:016x}", fastrand::u64(..));
                    meta.insert("id", id.as_str()).map_err(|e| open_error(&e))?;
                    id
                }
            };
            let events = tx.open_table(EVENTS).map_err(|e| open_error(&e))?;
            let len = events.len().map_err(|e| open_error(&e))? as usize;
            let last = events
                .last()
                .map_err(|e| open_error(&e))?
                .map_or(0, |(seq, _)| seq.value());
            (id, len, last)
        };
        tx.commit().map_err(|e| open_error(&e))?;
        Ok(Spool {
            db,
            path: path.to_path_buf(),
            id,
            len: AtomicUsize::new(len),
            left_up_to,
        })
    }

    /// The last sequence an earlier run left in the file (0 when it left none): entries up to
    /// it may have reached Odoo before that run stopped.
    pub fn left_up_to(&self) -> u64 {
        self.left_up_to
    }

    /// Entries in the spool now.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The key an entry is stored in Odoo with.
    pub fn key(&self, seq: u64) -> String {
        format!("{}:{seq}", self.id)
    }

    fn io(&self, e: impl std::fmt::Display) -> SpoolError {
        SpoolError::Io {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// Adds `events` in one durable commit; their sequences, in order.
    pub fn append(&self, events: &[NewEvent]) -> Result<Vec<u64>, SpoolError> {
        let tx = self.db.begin_write().map_err(|e| self.io(e))?;
        let seqs = {
            let mut meta = tx.open_table(META).map_err(|e| self.io(e))?;
            let next: u64 = match meta.get("next").map_err(|e| self.io(e))? {
                Some(v) => v.value().parse().map_err(|e| self.io(e))?,
                None => 1,
            };
            let mut table = tx.open_table(EVENTS).map_err(|e| self.io(e))?;
            let mut seqs = Vec::with_capacity(events.len());
            for (seq, event) in (next..).zip(events) {
                let bytes = serde_json::to_vec(event).map_err(|e| self.io(e))?;
                table
                    .insert(seq, bytes.as_slice())
                    .map_err(|e| self.io(e))?;
                seqs.push(seq);
            }
            let after = next + events.len() as u64;
            meta.insert("next", after.to_string().as_str())
                .map_err(|e| self.io(e))?;
            seqs
        };
        tx.commit().map_err(|e| self.io(e))?;
        self.len.fetch_add(seqs.len(), Ordering::Relaxed);
        Ok(seqs)
    }

    /// The oldest `max` entries. One that cannot be read back comes out as an event holding
    /// its bytes and the reason, to be stored as a processed event with that error.
    pub fn oldest(&self, max: usize) -> Result<Vec<Entry>, SpoolError> {
        let tx = self.db.begin_read().map_err(|e| self.io(e))?;
        let table = tx.open_table(EVENTS).map_err(|e| self.io(e))?;
        let mut entries = Vec::new();
        for row in table.iter().map_err(|e| self.io(e))?.take(max) {
            let (seq, bytes) = row.map_err(|e| self.io(e))?;
            let bytes = bytes.value();
            let event = serde_json::from_slice(bytes).unwrap_or_else(|e| NewEvent {
                raw_body: String::from_utf8_lossy(bytes).into_owned(),
                received_at: chrono::Utc::now(),
                account_id: None,
                processing_error: Some(format!(
                    "the daemon's webhook spool entry {} could not be read back ({e}); its \
                     bytes are kept here as they were",
                    self.key(seq.value())
                )),
            });
            entries.push(Entry {
                seq: seq.value(),
                event,
            });
        }
        Ok(entries)
    }

    /// Removes entries Odoo has. Not flushed to disk by itself (the next append is): a crash
    /// may bring them back, and the forwarder then finds their keys in Odoo.
    pub fn remove(&self, seqs: &[u64]) -> Result<(), SpoolError> {
        if seqs.is_empty() {
            return Ok(());
        }
        let mut tx = self.db.begin_write().map_err(|e| self.io(e))?;
        tx.set_durability(Durability::None)
            .map_err(|e| self.io(e))?;
        let mut removed = 0;
        {
            let mut table = tx.open_table(EVENTS).map_err(|e| self.io(e))?;
            for seq in seqs {
                if table.remove(seq).map_err(|e| self.io(e))?.is_some() {
                    removed += 1;
                }
            }
        }
        tx.commit().map_err(|e| self.io(e))?;
        self.len.fetch_sub(removed, Ordering::Relaxed);
        Ok(())
    }
}

/// Whether Odoo takes events now: set by the forwarder after a failed call, cleared after one
/// that worked. While set, [`SpoolStore`] refuses new webhooks (503), as the store in Odoo would.
#[derive(Debug, Default)]
pub struct OdooGate {
    refusing: Mutex<Option<String>>,
}

impl OdooGate {
    pub fn close(&self, reason: String) {
        *self.refusing.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
    }

    /// Opens the gate; true when it was closed.
    pub fn open(&self) -> bool {
        self.refusing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .is_some()
    }

    /// Why webhooks are refused now, if they are.
    pub fn refusing(&self) -> Option<String> {
        self.refusing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The group commit's store when there is a spool: appends to it and wakes the forwarder.
pub struct SpoolStore {
    spool: Arc<Spool>,
    gate: Arc<OdooGate>,
    wake: Arc<Notify>,
    max_events: usize,
}

impl SpoolStore {
    pub fn new(
        spool: Arc<Spool>,
        gate: Arc<OdooGate>,
        wake: Arc<Notify>,
        max_events: usize,
    ) -> Self {
        SpoolStore {
            spool,
            gate,
            wake,
            max_events: max_events.max(1),
        }
    }
}

impl EventStore for SpoolStore {
    async fn store(&self, events: Vec<NewEvent>) -> Result<Vec<i64>, StoreError> {
        if let Some(reason) = self.gate.refusing() {
            return Err(StoreError::Unavailable(reason));
        }
        let held = self.spool.len();
        if held + events.len() > self.max_events {
            return Err(StoreError::Unavailable(format!(
                "the local webhook spool holds {held} webhooks not yet in Odoo \
                 (webhook.spool_max_events = {}): Odoo is not keeping up",
                self.max_events
            )));
        }
        let spool = self.spool.clone();
        let appended = tokio::task::spawn_blocking(move || spool.append(&events))
            .await
            .map_err(|e| StoreError::Unavailable(format!("the spool write did not finish: {e}")))?;
        match appended {
            Ok(seqs) => {
                self.wake.notify_one();
                Ok(seqs.into_iter().map(|s| s as i64).collect())
            }
            Err(e) => Err(StoreError::Unavailable(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn event(n: i64) -> NewEvent {
        NewEvent {
            raw_body: format!("{{\"n\":{n}}}"),
            received_at: DateTime::from_timestamp(1_750_000_000 + n, 0).unwrap(),
            account_id: Some(n),
            processing_error: None,
        }
    }

    fn temp_path(name: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        (dir, path)
    }

    #[test]
    fn entries_come_back_in_order_and_sequences_are_never_reused() {
        let (_dir, path) = temp_path("spool.redb");
        let spool = Spool::open(&path).unwrap();
        assert_eq!(spool.append(&[event(1), event(2)]).unwrap(), vec![1, 2]);
        assert_eq!(spool.append(&[event(3)]).unwrap(), vec![3]);
        let oldest = spool.oldest(2).unwrap();
        assert_eq!(
            oldest,
            vec![
                Entry {
                    seq: 1,
                    event: event(1)
                },
                Entry {
                    seq: 2,
                    event: event(2)
                }
            ]
        );
        spool.remove(&[1, 2, 3]).unwrap();
        assert!(spool.is_empty());
        let id = spool.key(7);
        drop(spool);
        // Reopened empty: the next entry does not take an old key (Odoo may hold it).
        let spool = Spool::open(&path).unwrap();
        assert_eq!(spool.key(7), id, "the spool keeps its id");
        assert_eq!(spool.append(&[event(4)]).unwrap(), vec![4]);
    }

    #[test]
    fn what_was_not_removed_is_there_after_a_reopen() {
        let (_dir, path) = temp_path("spool.redb");
        let spool = Spool::open(&path).unwrap();
        spool.append(&[event(1), event(2), event(3)]).unwrap();
        spool.remove(&[2]).unwrap();
        drop(spool);
        let spool = Spool::open(&path).unwrap();
        assert_eq!(spool.len(), 2);
        let seqs: Vec<u64> = spool.oldest(10).unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![1, 3]);
    }

    #[test]
    fn a_spool_that_cannot_be_opened_says_which_file_and_what_to_do() {
        let err = Spool::open(Path::new("/nonexistent-dir/x/spool.redb")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("/nonexistent-dir/x/spool.redb"), "{text}");
        assert!(
            text.contains("directory the daemon's user can write"),
            "{text}"
        );
        assert!(!err.is_retryable());
    }

    #[test]
    fn a_spool_held_by_another_process_is_named_as_such() {
        let (_dir, path) = temp_path("spool.redb");
        // redb locks the file; a second open stands for another daemon on the same file.
        let first = Spool::open(&path).unwrap();
        let second = Spool::open(&path).unwrap_err();
        assert!(matches!(second, SpoolError::InUse { .. }), "{second}");
        assert!(
            second.to_string().contains("its own spool file"),
            "{second}"
        );
        drop(first);
        Spool::open(&path).unwrap();
    }

    #[tokio::test]
    async fn the_store_refuses_while_odoo_refuses_and_when_full() {
        let (_dir, path) = temp_path("spool.redb");
        let spool = Arc::new(Spool::open(&path).unwrap());
        let gate = Arc::new(OdooGate::default());
        let wake = Arc::new(Notify::new());
        let store = SpoolStore::new(spool.clone(), gate.clone(), wake.clone(), 3);
        assert_eq!(
            store.store(vec![event(1), event(2)]).await.unwrap(),
            vec![1, 2]
        );
        // The forwarder is woken.
        tokio::time::timeout(std::time::Duration::from_secs(1), wake.notified())
            .await
            .unwrap();
        let full = store.store(vec![event(3), event(4)]).await.unwrap_err();
        assert!(full.to_string().contains("spool_max_events = 3"), "{full}");
        gate.close("Odoo is unreachable: connection refused".into());
        let refused = store.store(vec![event(5)]).await.unwrap_err();
        assert!(
            refused.to_string().contains("connection refused"),
            "{refused}"
        );
        assert_eq!(spool.len(), 2, "nothing refused was spooled");
        assert!(gate.open());
        assert_eq!(store.store(vec![event(6)]).await.unwrap(), vec![3]);
    }
}
