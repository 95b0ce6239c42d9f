//! Queuing messages for the outbox, each at most once, by its `dedupe_key`.
//!
//! Components that send (automations, button actions) only create `whatsapp.message` records;
//! the outbox sends them. Every such record has a `dedupe_key` (`order_creation:sale.order:42`,
//! `button:<received message id>`), unique in Odoo: [`enqueue`] first asks which keys already
//! exist (one `search_read`), creates the others in one `create`, and when another daemon (or
//! a run that died after its `create`) created some in between, so that Odoo refuses the batch
//! on the constraint, asks again and creates what is still missing. A restart, an overlapping
//! poll or a second daemon never queues the same message twice.

use crate::odoo::{Domain, OdooClient, OdooError, SearchOptions};
use serde_json::{json, Map, Value};
use std::collections::HashSet;

/// The model messages are queued in.
pub const MESSAGE_MODEL: &str = "whatsapp.message";

/// Why messages could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    #[error("cannot queue messages in Odoo: {0}")]
    Odoo(#[from] OdooError),
    #[error("a message to queue has no dedupe_key ({0}): every automatic message needs one")]
    NoKey(String),
}

impl EnqueueError {
    pub fn is_retryable(&self) -> bool {
        match self {
            EnqueueError::Odoo(e) => e.is_retryable(),
            EnqueueError::NoKey(_) => false,
        }
    }
}

/// What [`enqueue`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Enqueued {
    /// The keys created now, with their new ids.
    pub created: Vec<(String, i64)>,
    /// The keys that already existed (queued before).
    pub existing: Vec<String>,
}

fn key_of(values: &Map<String, Value>) -> Option<&str> {
    values.get("dedupe_key").and_then(Value::as_str)
}

async fn existing_keys(odoo: &OdooClient, keys: &[&str]) -> Result<HashSet<String>, OdooError> {
    if keys.is_empty() {
        return Ok(HashSet::new());
    }
    let rows: Vec<Value> = odoo
        .search_read(
            MESSAGE_MODEL,
            &Domain::leaf("dedupe_key", "in", json!(keys)),
            &["dedupe_key"],
            &SearchOptions::new(),
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| r.get("dedupe_key").and_then(Value::as_str))
        .map(str::to_owned)
        .collect())
}

/// Creates the messages whose `dedupe_key` does not exist yet. Every message must have a
/// `dedupe_key`; one without is refused before any call (a programming error, not retryable).
pub async fn enqueue(
    odoo: &OdooClient,
    messages: Vec<Map<String, Value>>,
) -> Result<Enqueued, EnqueueError> {
    if let Some(bad) = messages.iter().find(|m| key_of(m).is_none()) {
        let what = bad
            .get("trigger")
            .and_then(Value::as_str)
            .unwrap_or("no trigger");
        return Err(EnqueueError::NoKey(what.to_owned()));
    }
    let mut out = Enqueued::default();
    let mut pending = messages;
    for attempt in 0..2 {
        let keys: Vec<&str> = pending.iter().filter_map(key_of).collect();
        let existing = existing_keys(odoo, &keys).await?;
        let (old, new): (Vec<_>, Vec<_>) = pending
            .into_iter()
            .partition(|m| key_of(m).is_some_and(|k| existing.contains(k)));
        out.existing
            .extend(old.iter().filter_map(key_of).map(str::to_owned));
        // Two messages of one batch with the same key: the first wins.
        let mut seen = HashSet::new();
        let new: Vec<Map<String, Value>> = new
            .into_iter()
            .filter(|m| key_of(m).is_some_and(|k| seen.insert(k.to_owned())))
            .collect();
        if new.is_empty() {
            return Ok(out);
        }
        match odoo.create_many(MESSAGE_MODEL, &new).await {
            Ok(ids) => {
                out.created
                    .extend(new.iter().filter_map(key_of).map(str::to_owned).zip(ids));
                return Ok(out);
            }
            // Someone created some of them meanwhile: the unique constraint refused the
            // batch. Ask again once.
            Err(e)
                if attempt == 0 && !e.is_retryable() && e.to_string().contains("deduplication") =>
            {
                tracing::debug!(error = %e, "a message was queued by someone else meanwhile; asking again");
                pending = new;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}
