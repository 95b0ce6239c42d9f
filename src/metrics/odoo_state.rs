//! What only Odoo knows, read for `/metrics` when it is scraped: the outbox's backlog, the
//! webhook events waiting, the paused accounts, the running campaigns.
//!
//! A scrape reads them again when the last reading is older than `refresh` (8 indexed Odoo
//! calls, made together); concurrent scrapes share one reading. Nothing is read while nobody
//! scrapes. When Odoo does not answer within [`READ_TIMEOUT`] the scrape answers with the
//! previous values and `whatsapp_odoo_state_age_seconds` says how old they are.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::Metrics;
use crate::odoo::{de, Domain, OdooClient, OdooError, SearchOptions};

/// The longest a scrape waits for Odoo.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

const MESSAGE: &str = "whatsapp.message";
const EVENT: &str = "whatsapp.webhook.event";

/// One reading.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OdooState {
    pub queued_due: i64,
    pub sending: i64,
    pub oldest_due_age_secs: f64,
    pub unprocessed_events: i64,
    pub oldest_unprocessed_age_secs: f64,
    /// Active accounts: (id, paused).
    pub accounts_paused: Vec<(i64, bool)>,
    /// Running campaigns: (id, messages sent so far).
    pub running_campaigns: Vec<(i64, i64)>,
}

/// Reads [`OdooState`] for the scrapes, at most every `refresh`.
#[derive(Debug)]
pub struct StateSource {
    odoo: OdooClient,
    refresh: Duration,
    last: Mutex<Last>,
}

#[derive(Debug, Default)]
struct Last {
    read_at: Option<Instant>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct Dated {
    #[serde(default, deserialize_with = "de::datetime_or_false")]
    create_date: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "de::datetime_or_false")]
    next_attempt_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct Received {
    #[serde(default, deserialize_with = "de::datetime_or_false")]
    received_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct AccountRow {
    id: i64,
    #[serde(default)]
    paused: bool,
}

#[derive(Deserialize)]
struct CampaignRow {
    id: i64,
    #[serde(default)]
    kpi_sent: i64,
}

impl StateSource {
    pub fn new(odoo: OdooClient, refresh: Duration) -> StateSource {
        StateSource {
            odoo,
            refresh,
            last: Mutex::new(Last::default()),
        }
    }

    /// Reads Odoo again into `metrics` when the last reading is older than `refresh`, and sets
    /// the age of the values.
    pub async fn refresh(&self, metrics: &Metrics) {
        let mut last = self.last.lock().await;
        let stale = last.read_at.is_none_or(|at| at.elapsed() >= self.refresh);
        if stale {
            match tokio::time::timeout(READ_TIMEOUT, read(&self.odoo, Utc::now())).await {
                Ok(Ok(state)) => {
                    metrics.set_odoo_state(&state);
                    last.read_at = Some(Instant::now());
                    if last.error.take().is_some() {
                        tracing::info!("the metrics read from Odoo are current again");
                    }
                }
                outcome => {
                    let error = match outcome {
                        Ok(Err(e)) => e.to_string(),
                        _ => format!("Odoo did not answer within {READ_TIMEOUT:?}"),
                    };
                    if last.error.as_deref() != Some(error.as_str()) {
                        tracing::warn!(%error, "the metrics read from Odoo (backlog, waiting events, paused accounts, campaigns) keep their previous values");
                        last.error = Some(error);
                    }
                }
            }
        }
        // Never read: as old as can be said.
        let age = last.read_at.map_or(Duration::MAX, |at| at.elapsed());
        metrics.set_odoo_state_age(age.min(Duration::from_secs(u32::MAX as u64)));
    }
}

/// One reading of Odoo at `now` (the calls made together).
pub async fn read(odoo: &OdooClient, now: DateTime<Utc>) -> Result<OdooState, OdooError> {
    let due = crate::outbox::due_domain(now, &[]);
    let oldest = SearchOptions::new().limit(1).order("id asc");
    let retried_first = SearchOptions::new().limit(1).order("next_attempt_at asc");
    let by_id = SearchOptions::new().order("id asc");
    let fresh = due.clone().and("next_attempt_at", "=", false);
    let retried = due.clone().and("next_attempt_at", "!=", false);
    let sending = Domain::leaf("state", "=", "sending").and("direction", "=", "out");
    let unprocessed = Domain::leaf("processed", "=", false);
    let active = Domain::leaf("active", "=", true);
    let running = Domain::leaf("state", "=", "running");
    let (queued_due, sending, fresh, retried, events, first_event, accounts, campaigns) = tokio::try_join!(
        odoo.search_count(MESSAGE, &due),
        odoo.search_count(MESSAGE, &sending),
        odoo.search_read::<Dated>(MESSAGE, &fresh, &["create_date"], &oldest),
        odoo.search_read::<Dated>(MESSAGE, &retried, &["next_attempt_at"], &retried_first),
        odoo.search_count(EVENT, &unprocessed),
        odoo.search_read::<Received>(EVENT, &unprocessed, &["received_at"], &oldest),
        odoo.search_read::<AccountRow>("whatsapp.account", &active, &["paused"], &by_id),
        odoo.search_read::<CampaignRow>("whatsapp.campaign", &running, &["kpi_sent"], &by_id),
    )?;
    let age = |at: Option<DateTime<Utc>>| {
        at.map_or(0.0, |at| {
            (now - at).num_milliseconds().max(0) as f64 / 1000.0
        })
    };
    let due_since = fresh
        .iter()
        .map(|r| r.create_date)
        .chain(retried.iter().map(|r| r.next_attempt_at))
        .flatten()
        .min();
    Ok(OdooState {
        queued_due: queued_due as i64,
        sending: sending as i64,
        oldest_due_age_secs: age(due_since),
        unprocessed_events: events as i64,
        oldest_unprocessed_age_secs: age(first_event.first().and_then(|e| e.received_at)),
        accounts_paused: accounts.iter().map(|a| (a.id, a.paused)).collect(),
        running_campaigns: campaigns.iter().map(|c| (c.id, c.kpi_sent)).collect(),
    })
}
