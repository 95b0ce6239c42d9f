//! The receiver's two Odoo peers: where events are stored ([`OdooEventStore`], directly by
//! the group commit, or by the forwarder from the local spool) and where the webhook keys come
//! from ([`OdooKeySource`]). The only file of [`crate::webhook`] that calls Odoo.

use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use tokio::sync::Notify;

use super::forward::{EventSink, KeyedEvent, SinkError};
use super::ingest::{EventStore, NewEvent, StoreError};
use super::keys::{AccountKey, KeyError, KeySource};
use crate::odoo::OdooError;
use crate::odoo::{de, format_datetime, Domain, OdooClient, SearchOptions};
use crate::secret::Secret;
use std::collections::HashSet;

const EVENT: &str = "whatsapp.webhook.event";
const ACCOUNT: &str = "whatsapp.account";

/// Stores batches of events with one `create` each.
#[derive(Clone)]
pub struct OdooEventStore {
    odoo: OdooClient,
    stored: Option<Arc<Notify>>,
    metrics: crate::metrics::Metrics,
}

impl OdooEventStore {
    pub fn new(odoo: OdooClient) -> Self {
        OdooEventStore {
            odoo,
            stored: None,
            metrics: Default::default(),
        }
    }

    /// Records the number of events of each `create` in `metrics`.
    pub fn with_metrics(mut self, metrics: crate::metrics::Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Notifies `stored` after each successful batch (inbound processing waits on it).
    pub fn notify(mut self, stored: Arc<Notify>) -> Self {
        self.stored = Some(stored);
        self
    }
}

/// The values of one event's `create`.
pub fn event_values(event: &NewEvent) -> Map<String, Value> {
    let mut v = Map::new();
    v.insert("raw_body".into(), json!(event.raw_body));
    v.insert(
        "received_at".into(),
        json!(format_datetime(event.received_at)),
    );
    v.insert("signature_ok".into(), json!(true));
    if let Some(account) = event.account_id {
        v.insert("account_id".into(), json!(account));
    }
    if let Some(error) = &event.processing_error {
        // Nothing to retry: it is done, with its error, for people to look at.
        v.insert("processed".into(), json!(true));
        v.insert(
            "processed_at".into(),
            json!(format_datetime(event.received_at)),
        );
        v.insert("processing_error".into(), json!(error));
    }
    v
}

impl EventStore for OdooEventStore {
    async fn store(&self, events: Vec<NewEvent>) -> Result<Vec<i64>, StoreError> {
        let values: Vec<Map<String, Value>> = events.iter().map(event_values).collect();
        match self.odoo.create_many(EVENT, &values).await {
            Ok(ids) => {
                self.metrics.events_created(ids.len());
                if let Some(stored) = &self.stored {
                    stored.notify_one();
                }
                Ok(ids)
            }
            Err(e) if e.is_unreachable() || e.is_retryable() => {
                Err(StoreError::Unavailable(e.to_string()))
            }
            Err(e) => Err(StoreError::Refused(e.to_string())),
        }
    }
}

fn sink_error(e: OdooError) -> SinkError {
    if e.is_unreachable() || e.is_retryable() {
        return SinkError::Unavailable(e.to_string());
    }
    let text = e.to_string();
    if text.contains("spool_key") {
        SinkError::Refused(format!(
            "{text}: the addon in Odoo is older than webhook.spool_file; upgrade it (Apps > \
             WhatsApp Sidecar > Upgrade, or odoo-bin -u whatsapp_sidecar)"
        ))
    } else {
        SinkError::Refused(text)
    }
}

/// The forwarder's side: the client should have no retries of its own (a `create` retried
/// after a timeout could store twice; the forwarder checks the spool keys first instead).
impl EventSink for OdooEventStore {
    async fn create(&self, events: Vec<KeyedEvent>) -> Result<(), SinkError> {
        let values: Vec<Map<String, Value>> = events
            .iter()
            .map(|k| {
                let mut v = event_values(&k.event);
                v.insert("spool_key".into(), json!(k.key));
                v
            })
            .collect();
        let ids = self
            .odoo
            .create_many(EVENT, &values)
            .await
            .map_err(sink_error)?;
        if ids.len() != values.len() {
            return Err(SinkError::Refused(format!(
                "{} events were sent but Odoo returned {} ids",
                values.len(),
                ids.len()
            )));
        }
        self.metrics.events_created(ids.len());
        // Inbound processing is told by the forwarder, once the entries left the spool.
        Ok(())
    }

    async fn stored_keys(&self, keys: Vec<String>) -> Result<HashSet<String>, SinkError> {
        #[derive(Deserialize)]
        struct Row {
            spool_key: String,
        }
        let rows: Vec<Row> = self
            .odoo
            .search_read(
                EVENT,
                &Domain::leaf("spool_key", "in", json!(keys)),
                &["spool_key"],
                &SearchOptions::new(),
            )
            .await
            .map_err(sink_error)?;
        Ok(rows.into_iter().map(|r| r.spool_key).collect())
    }
}

/// Reads the active accounts' webhook keys.
#[derive(Clone)]
pub struct OdooKeySource {
    odoo: OdooClient,
}

impl OdooKeySource {
    pub fn new(odoo: OdooClient) -> Self {
        OdooKeySource { odoo }
    }
}

#[derive(Deserialize)]
struct AccountRecord {
    id: i64,
    #[serde(default, deserialize_with = "de::false_as_none")]
    phone_number_id: Option<String>,
    #[serde(default, deserialize_with = "de::false_as_none")]
    waba_id: Option<String>,
    #[serde(default, deserialize_with = "de::false_as_none")]
    app_secret: Option<Secret>,
    #[serde(default, deserialize_with = "de::false_as_none")]
    verify_token: Option<Secret>,
}

impl KeySource for OdooKeySource {
    async fn load(&self) -> Result<Vec<AccountKey>, KeyError> {
        let records: Vec<AccountRecord> = self
            .odoo
            .search_read(
                ACCOUNT,
                &Domain::all(),
                &["phone_number_id", "waba_id", "app_secret", "verify_token"],
                &SearchOptions::new().order("id asc"),
            )
            .await
            .map_err(|e| KeyError(e.to_string()))?;
        Ok(records
            .into_iter()
            .map(|r| AccountKey {
                account_id: r.id,
                phone_number_id: r.phone_number_id,
                waba_id: r.waba_id,
                app_secret: r.app_secret,
                verify_token: r.verify_token,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    #[test]
    fn event_values_use_the_addon_field_names() {
        let at = DateTime::from_timestamp(1_750_000_000, 0).unwrap();
        let ok = event_values(&NewEvent {
            raw_body: "{}".into(),
            received_at: at,
            account_id: Some(4),
            processing_error: None,
        });
        assert_eq!(
            Value::Object(ok),
            json!({"raw_body": "{}", "received_at": "2025-06-15 15:06:40",
                   "signature_ok": true, "account_id": 4})
        );
        let bad = event_values(&NewEvent {
            raw_body: "{".into(),
            received_at: at,
            account_id: None,
            processing_error: Some("not JSON".into()),
        });
        assert_eq!(bad["processed"], true);
        assert_eq!(bad["processing_error"], "not JSON");
        assert!(!bad.contains_key("account_id"));
    }
}
