//! The processing loop and its Odoo calls: the only file of [`crate::inbound`] doing I/O.
//!
//! [`run`] repeats [`step`] until shutdown. A step reads a batch of events (new ones in order of
//! arrival, or, every `retry_interval`, the waiting ones), processes them ([`process`]) and
//! marks each one: processed, waiting (with the reason in `processing_error`, retried later), or
//! processed with an error. For a batch, Odoo sees about:
//!
//! | call | when |
//! |---|---|
//! | `search_read` events | always |
//! | `search_read` messages by wamid / callback data | statuses or messages in the batch |
//! | `write` / `load` message statuses | one write per group of identical values, one `load` for the rest |
//! | accounts, conversations, partners, `create` conversations and messages | inbound messages in the batch |
//! | `write` events | one per outcome kind |
//!
//! A retryable Odoo failure (unreachable, conflict) leaves the batch untouched: it is read again
//! after a pause that doubles up to `max_error_backoff`. Any other failure is narrowed down by
//! processing the batch's events one at a time, so one bad event is marked with its error and
//! the others go through.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::config::InboundConfig;
use super::contact::{choose_partner, NumberKeys, PartnerNumbers};
use super::media::{self, MediaConfig};
use super::model::{Item, MessageState};
use super::plan::{
    self, AccountRow, ConversationRow, EventRow, Outcome, Outcomes, ParsedEvent, Routed,
    TemplateRow, PENDING_PREFIX,
};
use super::status::MessageRow;
use crate::odoo::{
    de, format_datetime, Context, Domain, Many2one, OdooClient, OdooError, SearchOptions,
};
use crate::secret::Secret;
use crate::whatsapp::{AccountHandle, CloudClient};

const EVENT: &str = "whatsapp.webhook.event";
const MESSAGE: &str = "whatsapp.message";
const CONVERSATION: &str = "whatsapp.conversation";
const ACCOUNT: &str = "whatsapp.account";
const TEMPLATE: &str = "whatsapp.template";
const PARTNER: &str = "res.partner";

/// What the loop needs.
#[derive(Clone)]
pub struct InboundContext {
    pub odoo: OdooClient,
    pub config: InboundConfig,
    /// Notified when new events were stored (the webhook receiver does it), so they are
    /// processed without waiting for the next poll.
    pub wake: Arc<Notify>,
    /// Where received files are downloaded from; `None` leaves them as Meta media ids.
    pub media: Option<MediaFetch>,
    /// The messages the outbox of this process has claimed and not yet written back. A status
    /// about one of them waits until its send result is written, so that write cannot move the
    /// message back from `delivered` or `read` to `sent`. (After a restart the set is empty, and
    /// a status carrying callback data is the proof that a message left in `sending` went out.)
    pub in_flight: crate::outbox::InFlight,
}

/// The Cloud API client that downloads received files, and how.
#[derive(Clone, Debug)]
pub struct MediaFetch {
    pub client: CloudClient,
    pub config: MediaConfig,
}

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    #[error(transparent)]
    Odoo(#[from] OdooError),
}

impl InboundError {
    /// True when the same step may succeed later without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        match self {
            InboundError::Odoo(e) => e.is_retryable(),
        }
    }
}

/// Which events a step reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// New events (never tried), oldest first.
    New,
    /// Waiting events with an id above this one, oldest first.
    Waiting { after_id: i64 },
}

/// What a step did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StepReport {
    /// Events processed: read from Odoo, plus those kept from the previous batch.
    pub events: usize,
    /// Events read from Odoo.
    pub fetched: usize,
    /// The highest event id read (0 when none).
    pub last_id: i64,
    pub done: usize,
    /// Events kept in memory for the next batch ([`Outcome::Deferred`]).
    pub deferred: usize,
    pub waiting: usize,
    pub failed: usize,
    /// Statuses read, and messages whose record changed because of them.
    pub statuses: usize,
    pub messages_updated: usize,
    pub messages_created: usize,
    pub conversations_created: usize,
    pub opt_outs: usize,
    /// New received messages carrying a file to download.
    pub media_received: usize,
}

/// Runs the processing loop until `shutdown` is cancelled.
pub async fn run(ctx: InboundContext, shutdown: CancellationToken) {
    let config = &ctx.config;
    let mut failures: u32 = 0;
    let mut last_error = String::new();
    let mut waiting_cursor = 0i64;
    let mut next_waiting_pass = Instant::now();
    // Received files are downloaded by their own task, so a large or slow download never holds
    // up statuses and messages; this loop wakes it when a batch brought files.
    let media_wake = Arc::new(Notify::new());
    let media_task = ctx.media.clone().map(|fetch| {
        tokio::spawn(media_loop(
            ctx.odoo.clone(),
            fetch,
            media_wake.clone(),
            shutdown.clone(),
        ))
    });
    let mut deferred = Deferred::default();
    // Some events wait for a message the outbox still holds (or does not know yet).
    let mut some_waiting = false;
    tracing::info!(batch_size = config.batch_size, "inbound processing started");
    loop {
        let started = Instant::now();
        let mut full = false;
        let mut result = step_with(&ctx, Some(&mut deferred), Pass::New, Utc::now()).await;
        let mut files_received = false;
        if let Ok(report) = &result {
            full = report.fetched >= config.batch_size;
            files_received = report.media_received > 0;
            some_waiting |= report.waiting > 0;
            if !full && Instant::now() >= next_waiting_pass {
                next_waiting_pass = Instant::now() + config.retry_interval;
                let pass = Pass::Waiting {
                    after_id: waiting_cursor,
                };
                result = step(&ctx, pass, Utc::now()).await;
                if let Ok(report) = &result {
                    files_received |= report.media_received > 0;
                    // Walk the waiting events by id; start again from the first when done.
                    waiting_cursor = if report.events >= config.batch_size {
                        report.last_id
                    } else {
                        0
                    };
                    some_waiting = report.waiting > 0 || waiting_cursor != 0;
                }
            }
        }
        if files_received {
            media_wake.notify_one();
        }
        match result {
            Ok(_) => {
                if failures > 0 {
                    tracing::info!(failures, "inbound processing resumed");
                }
                failures = 0;
                last_error.clear();
            }
            Err(error) => {
                failures += 1;
                let text = error.to_string();
                if text != last_error {
                    tracing::warn!(%error, "inbound processing paused; the events stay stored and are retried");
                    last_error = text;
                }
            }
        }
        let mut pause = if failures > 0 {
            let doubled = config
                .poll_interval
                .saturating_mul(2u32.saturating_pow(failures.min(16)));
            doubled.min(config.max_error_backoff)
        } else if full {
            Duration::ZERO
        } else {
            config.poll_interval
        };
        if failures == 0 {
            // Kept events are written when their time is up, if nothing brings them sooner.
            if let Some(deadline) = deferred.next_deadline(config) {
                let earliest = started + config.min_batch_interval;
                let due = deadline
                    .max(earliest)
                    .saturating_duration_since(Instant::now());
                pause = pause.min(due);
            }
        }
        let waiting_for_outbox = some_waiting || !deferred.is_empty();
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(pause) => {}
            () = ctx.in_flight.released(), if failures == 0 && !full && waiting_for_outbox => {
                // The outbox wrote results back: the statuses it held can be applied now
                // (still no sooner than the batch interval, so they come in one batch).
                next_waiting_pass = Instant::now();
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep_until(started + config.min_batch_interval) => {}
                }
            }
            () = ctx.wake.notified(), if failures == 0 && !full => {
                // Let statuses arriving close together land in the same batch.
                let earliest = started + config.min_batch_interval;
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep_until(earliest) => {}
                }
            }
        }
    }
    if let Some(task) = media_task {
        let _ = task.await;
    }
    tracing::info!("inbound processing stopped");
}

/// Downloads received files ([`fetch_media`]) when woken and every `retry_interval`, until
/// `shutdown`; after an Odoo failure it waits longer each time (up to 10 minutes).
async fn media_loop(
    odoo: OdooClient,
    fetch: MediaFetch,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let mut failures: u32 = 0;
    loop {
        let pass = tokio::select! {
            () = shutdown.cancelled() => break,
            pass = fetch_media(&odoo, &fetch, Utc::now()) => pass,
        };
        let pause = match pass {
            Ok(_) => {
                failures = 0;
                fetch.config.retry_interval
            }
            Err(error) => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!(%error, "received files cannot be downloaded for now; retried later");
                }
                fetch
                    .config
                    .retry_interval
                    .saturating_mul(2u32.saturating_pow(failures.min(4)))
                    .min(Duration::from_secs(600))
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(pause) => {}
            () = wake.notified() => {}
        }
    }
}

/// Reads one batch of events, processes it and marks each event. Returns what it did.
///
/// Nothing is deferred: every status is written or waits, as [`run`] does once its deferrals
/// run out.
pub async fn step(
    ctx: &InboundContext,
    pass: Pass,
    now: DateTime<Utc>,
) -> Result<StepReport, InboundError> {
    step_with(ctx, None, pass, now).await
}

/// Events kept in memory from one batch to the next ([`Outcome::Deferred`]): not marked in
/// Odoo, so a restart reads them again, and left out of the next read, which processes them
/// from here together with the new ones.
#[derive(Debug, Default)]
pub struct Deferred {
    /// Each event, when it was first read, and why it is kept.
    events: BTreeMap<i64, (EventRow, Instant, plan::Defer)>,
}

impl Deferred {
    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// When the first kept event runs out of time: `status_linger` after it was first read,
    /// or `outbox_wait` for one kept for the outbox (which also wakes the loop when it lets go).
    fn next_deadline(&self, config: &InboundConfig) -> Option<Instant> {
        self.events
            .values()
            .map(|(_, seen, why)| *seen + limit_for(config, *why))
            .min()
    }
}

/// How long an event may be kept for `why`.
fn limit_for(config: &InboundConfig, why: plan::Defer) -> Duration {
    match why {
        plan::Defer::Held => config.outbox_wait,
        plan::Defer::Linger => config.status_linger,
    }
}

/// [`step`], keeping deferrable events in `deferred` (new events only; a waiting pass defers
/// nothing).
pub async fn step_with(
    ctx: &InboundContext,
    mut deferred: Option<&mut Deferred>,
    pass: Pass,
    now: DateTime<Utc>,
) -> Result<StepReport, InboundError> {
    let odoo = &ctx.odoo;
    let config = &ctx.config;
    if pass != Pass::New {
        deferred = None;
    }
    let kept: Vec<i64> = deferred
        .as_ref()
        .map(|d| d.events.keys().copied().collect())
        .unwrap_or_default();
    let mut rows = read_events(odoo, pass, config.batch_size, &kept).await?;
    let mut report = StepReport {
        fetched: rows.len(),
        last_id: rows.iter().map(|r| r.id).max().unwrap_or(0),
        ..StepReport::default()
    };
    if let Some(d) = &deferred {
        rows.extend(d.events.values().map(|(row, _, _)| row.clone()));
        rows.sort_by_key(|r| r.id);
    }
    report.events = rows.len();
    if rows.is_empty() {
        return Ok(report);
    }
    let give_up =
        chrono::Duration::from_std(config.pending_give_up).unwrap_or(chrono::Duration::MAX);
    let seen_now = Instant::now();
    let seen_before: HashMap<i64, Instant> = deferred
        .as_ref()
        .map(|d| {
            d.events
                .iter()
                .map(|(id, (_, seen, _))| (*id, *seen))
                .collect()
        })
        .unwrap_or_default();
    let first_seen = |id: i64| seen_before.get(&id).copied().unwrap_or(seen_now);
    let room = deferred
        .as_ref()
        .is_some_and(|d| d.len() < config.batch_size.saturating_mul(2));
    let may_defer = |event: i64, reason: plan::Defer| {
        room && seen_now.saturating_duration_since(first_seen(event)) < limit_for(config, reason)
    };
    let never = |_: i64, _: plan::Defer| false;
    let outcomes = match process(
        odoo,
        &ctx.in_flight,
        &rows,
        now,
        give_up,
        &may_defer,
        &mut report,
    )
    .await
    {
        Ok(outcomes) => outcomes,
        Err(error) if error.is_retryable() => return Err(error.into()),
        Err(error) => {
            tracing::warn!(%error, events = rows.len(), "Odoo refused part of a batch; processing its events one by one");
            let mut outcomes = Outcomes::default();
            for row in &rows {
                match process(
                    odoo,
                    &ctx.in_flight,
                    std::slice::from_ref(row),
                    now,
                    give_up,
                    &never,
                    &mut report,
                )
                .await
                {
                    Ok(one) => outcomes.absorb(one),
                    Err(error) if error.is_retryable() => return Err(error.into()),
                    Err(error) => {
                        outcomes.fail(row.id, format!("Odoo refused the change: {error}"));
                    }
                }
            }
            outcomes
        }
    };
    mark_events(odoo, &rows, &outcomes, now, &mut report).await?;
    if let Some(d) = deferred {
        for row in rows {
            match outcomes.get(row.id) {
                Some(Outcome::Deferred(why)) => {
                    let seen = first_seen(row.id);
                    d.events.insert(row.id, (row, seen, *why));
                }
                _ => {
                    d.events.remove(&row.id);
                }
            }
        }
    }
    if report.waiting > 0 || report.failed > 0 || report.messages_created > 0 {
        tracing::info!(
            events = report.events,
            done = report.done,
            waiting = report.waiting,
            failed = report.failed,
            messages_created = report.messages_created,
            messages_updated = report.messages_updated,
            "inbound batch processed"
        );
    } else {
        tracing::debug!(
            events = report.events,
            statuses = report.statuses,
            messages_updated = report.messages_updated,
            "inbound batch processed"
        );
    }
    Ok(report)
}

// ----- events -----------------------------------------------------------------------------

#[derive(Deserialize)]
struct EventRecord {
    id: i64,
    #[serde(default, deserialize_with = "de::string_or_false")]
    raw_body: String,
    #[serde(default, deserialize_with = "de::datetime_or_false")]
    received_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "de::false_as_none")]
    processing_error: Option<String>,
}

async fn read_events(
    odoo: &OdooClient,
    pass: Pass,
    limit: usize,
    kept: &[i64],
) -> Result<Vec<EventRow>, OdooError> {
    let domain = match pass {
        Pass::New if !kept.is_empty() => Domain::leaf("processed", "=", false)
            .and("processing_error", "=", false)
            .and("id", "not in", json!(kept)),
        Pass::New => Domain::leaf("processed", "=", false).and("processing_error", "=", false),
        Pass::Waiting { after_id } => Domain::leaf("processed", "=", false)
            .and("processing_error", "!=", false)
            .and("id", ">", after_id),
    };
    let records: Vec<EventRecord> = odoo
        .search_read(
            EVENT,
            &domain,
            &["raw_body", "received_at", "processing_error"],
            &SearchOptions::new()
                .limit(limit.max(1) as u64)
                .order("id asc"),
        )
        .await?;
    let now = Utc::now();
    Ok(records
        .into_iter()
        .map(|r| EventRow {
            id: r.id,
            raw_body: r.raw_body,
            received_at: r.received_at.unwrap_or(now),
            processing_error: r.processing_error,
        })
        .collect())
}

/// Writes each event's outcome: one `write` for the processed ones, per-event texts for the
/// others (skipped when a waiting event's reason has not changed).
async fn mark_events(
    odoo: &OdooClient,
    rows: &[EventRow],
    outcomes: &Outcomes,
    now: DateTime<Utc>,
    report: &mut StepReport,
) -> Result<(), OdooError> {
    let stamp = format_datetime(now);
    let mut done = Vec::new();
    let mut texts: Vec<(i64, Map<String, Value>)> = Vec::new();
    for row in rows {
        match outcomes.get(row.id).unwrap_or(&Outcome::Done) {
            Outcome::Done => done.push(row.id),
            Outcome::Deferred(_) => report.deferred += 1,
            Outcome::Pending(reason) => {
                report.waiting += 1;
                let text = format!("{PENDING_PREFIX}{reason}");
                if row.processing_error.as_deref() != Some(text.as_str()) {
                    let mut v = Map::new();
                    v.insert("processing_error".into(), json!(text));
                    texts.push((row.id, v));
                }
            }
            Outcome::Failed(reason) => {
                report.failed += 1;
                tracing::warn!(event = row.id, error = %reason, "webhook event could not be processed");
                let mut v = Map::new();
                v.insert("processed".into(), json!(true));
                v.insert("processed_at".into(), json!(stamp));
                v.insert("processing_error".into(), json!(reason));
                texts.push((row.id, v));
            }
        }
    }
    report.done += done.len();
    odoo.write(
        EVENT,
        &done,
        &json!({"processed": true, "processed_at": stamp, "processing_error": false}),
    )
    .await?;
    odoo.write_each(EVENT, &texts).await?;
    Ok(())
}

// ----- processing -------------------------------------------------------------------------

/// Applies a batch of events to Odoo and says what became of each.
pub async fn process(
    odoo: &OdooClient,
    in_flight: &crate::outbox::InFlight,
    rows: &[EventRow],
    now: DateTime<Utc>,
    give_up: chrono::Duration,
    may_defer: &(dyn Fn(i64, plan::Defer) -> bool + Sync),
    report: &mut StepReport,
) -> Result<Outcomes, OdooError> {
    let events = plan::parse_events(rows);
    let mut outcomes = Outcomes::new(&events);
    for event in &events {
        for item in &event.items {
            if let Item::Note(note) = item {
                tracing::info!(event = event.id, "{note}");
            }
        }
    }
    let lookup = plan::message_lookup(&events);
    let messages = if lookup.is_empty() {
        Vec::new()
    } else {
        read_messages(odoo, &lookup).await?
    };
    // Statuses of a message whose send result is still to be written wait for that write.
    let held: HashSet<i64> = messages
        .iter()
        .filter(|row| row.wamid.is_none() && in_flight.contains(row.id))
        .map(|row| row.id)
        .collect();

    // Statuses: one write per message, identical writes grouped by the client.
    let statuses = plan::plan_statuses(&events, &messages, &held, may_defer, &mut outcomes);
    for conflict in &statuses.conflicts {
        tracing::warn!("{conflict}");
    }
    report.statuses += statuses.statuses;
    report.messages_updated += statuses.updates.len();
    odoo.write_each(MESSAGE, &statuses.updates).await?;

    // Inbound messages, templates and accounts need the accounts.
    let needs_accounts = events
        .iter()
        .flat_map(|e| &e.items)
        .any(|i| matches!(i, Item::Message(_) | Item::Template(_) | Item::Account(_)));
    if needs_accounts {
        let accounts = read_accounts(odoo).await?;
        let routed = plan::route_inbound(&events, &accounts, &messages, &mut outcomes);
        if !routed.is_empty() {
            inbound(odoo, &routed, report).await?;
        }
        updates(odoo, &events, &accounts).await?;
    }
    outcomes.give_up_stale(&events, now, give_up);
    Ok(outcomes)
}

#[derive(Deserialize)]
struct MessageRecord {
    id: i64,
    #[serde(default, deserialize_with = "de::string_or_false")]
    state: String,
    #[serde(default, deserialize_with = "de::string_or_false")]
    direction: String,
    #[serde(default, deserialize_with = "de::false_as_none")]
    wamid: Option<String>,
    #[serde(default, deserialize_with = "de::false_as_none")]
    callback_data: Option<String>,
    #[serde(default, deserialize_with = "de::false_as_none")]
    wa_id: Option<String>,
    #[serde(default, deserialize_with = "de::datetime_or_false")]
    sent_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "de::datetime_or_false")]
    delivered_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "de::datetime_or_false")]
    read_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "de::datetime_or_false")]
    failed_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "de::false_as_none")]
    pricing_category: Option<String>,
}

async fn read_messages(
    odoo: &OdooClient,
    lookup: &plan::MessageLookup,
) -> Result<Vec<MessageRow>, OdooError> {
    let mut domain: Option<Domain> = None;
    let mut add = |leaf: Domain| {
        domain = Some(match domain.take() {
            Some(d) => Domain::or(d, leaf),
            None => leaf,
        });
    };
    if !lookup.wamids.is_empty() {
        add(Domain::leaf("wamid", "in", json!(lookup.wamids)));
    }
    if !lookup.callback_data.is_empty() {
        add(Domain::leaf(
            "callback_data",
            "in",
            json!(lookup.callback_data),
        ));
    }
    if !lookup.ids.is_empty() {
        add(Domain::leaf("id", "in", json!(lookup.ids)));
    }
    let Some(domain) = domain else {
        return Ok(Vec::new());
    };
    let records: Vec<MessageRecord> = odoo
        .search_read(
            MESSAGE,
            &domain,
            &[
                "state",
                "direction",
                "wamid",
                "callback_data",
                "wa_id",
                "sent_at",
                "delivered_at",
                "read_at",
                "failed_at",
                "pricing_category",
            ],
            &SearchOptions::new().order("id asc"),
        )
        .await?;
    Ok(records
        .into_iter()
        .map(|r| MessageRow {
            id: r.id,
            state: MessageState::from_odoo(&r.state),
            inbound: r.direction == "in",
            wamid: r.wamid,
            callback_data: r.callback_data,
            wa_id: r.wa_id,
            sent_at: r.sent_at,
            delivered_at: r.delivered_at,
            read_at: r.read_at,
            failed_at: r.failed_at,
            pricing_category: r.pricing_category,
        })
        .collect())
}

#[derive(Deserialize)]
struct AccountRecord {
    id: i64,
    #[serde(default)]
    company_id: Many2one,
    #[serde(default, deserialize_with = "de::false_as_none")]
    phone_number_id: Option<String>,
    #[serde(default, deserialize_with = "de::false_as_none")]
    waba_id: Option<String>,
    #[serde(default, deserialize_with = "de::false_as_none")]
    display_phone_number: Option<String>,
    #[serde(default, deserialize_with = "de::false_as_none")]
    opt_out_keywords: Option<String>,
    #[serde(default, deserialize_with = "de::false_as_none")]
    opt_out_confirmation: Option<String>,
}

async fn read_accounts(odoo: &OdooClient) -> Result<Vec<AccountRow>, OdooError> {
    let records: Vec<AccountRecord> = odoo
        .with_context(Context::new().active_test(false))
        .search_read(
            ACCOUNT,
            &Domain::all(),
            &[
                "company_id",
                "phone_number_id",
                "waba_id",
                "display_phone_number",
                "opt_out_keywords",
                "opt_out_confirmation",
            ],
            &SearchOptions::new().order("id asc"),
        )
        .await?;
    Ok(records
        .into_iter()
        .map(|r| AccountRow {
            id: r.id,
            company_id: r.company_id.id(),
            phone_number_id: r.phone_number_id,
            waba_id: r.waba_id,
            display_phone_number: r.display_phone_number,
            opt_out_keywords: r.opt_out_keywords,
            opt_out_confirmation: r.opt_out_confirmation,
        })
        .collect())
}

#[derive(Deserialize)]
struct ConversationRecord {
    id: i64,
    #[serde(default)]
    account_id: Many2one,
    #[serde(default, deserialize_with = "de::false_as_none")]
    wa_id: Option<String>,
    #[serde(default, deserialize_with = "de::false_as_none")]
    user_id: Option<String>,
    #[serde(default)]
    partner_id: Many2one,
    #[serde(default, deserialize_with = "de::false_as_none")]
    profile_name: Option<String>,
    #[serde(default, deserialize_with = "de::datetime_or_false")]
    last_inbound_at: Option<DateTime<Utc>>,
}

const CONVERSATION_FIELDS: [&str; 6] = [
    "account_id",
    "wa_id",
    "user_id",
    "partner_id",
    "profile_name",
    "last_inbound_at",
];

fn conversation_row(r: ConversationRecord) -> Option<ConversationRow> {
    Some(ConversationRow {
        id: r.id,
        account_id: r.account_id.id()?,
        wa_id: r.wa_id,
        user_id: r.user_id,
        partner_id: r.partner_id.id(),
        profile_name: r.profile_name,
        last_inbound_at: r.last_inbound_at,
    })
}

async fn read_conversations(
    odoo: &OdooClient,
    routed: &[Routed<'_>],
) -> Result<Vec<ConversationRow>, OdooError> {
    let accounts: HashSet<i64> = routed.iter().map(|r| r.account.id).collect();
    let wa_ids: HashSet<&str> = routed
        .iter()
        .filter_map(|r| r.inbound.wa_id.as_deref())
        .collect();
    let user_ids: HashSet<&str> = routed
        .iter()
        .filter_map(|r| r.inbound.user_id.as_deref())
        .collect();
    let who = match (wa_ids.is_empty(), user_ids.is_empty()) {
        (true, true) => return Ok(Vec::new()),
        (false, true) => Domain::leaf("wa_id", "in", json!(sorted(wa_ids))),
        (true, false) => Domain::leaf("user_id", "in", json!(sorted(user_ids))),
        (false, false) => Domain::or(
            Domain::leaf("wa_id", "in", json!(sorted(wa_ids))),
            Domain::leaf("user_id", "in", json!(sorted(user_ids))),
        ),
    };
    let mut ids: Vec<i64> = accounts.into_iter().collect();
    ids.sort_unstable();
    let domain = Domain::leaf("account_id", "in", json!(ids)).and_domain(who);
    let records: Vec<ConversationRecord> = odoo
        .search_read(
            CONVERSATION,
            &domain,
            &CONVERSATION_FIELDS,
            &SearchOptions::new().order("id asc"),
        )
        .await?;
    Ok(records.into_iter().filter_map(conversation_row).collect())
}

#[derive(Deserialize)]
struct PartnerRecord {
    id: i64,
    #[serde(default, deserialize_with = "de::false_as_none")]
    whatsapp_number_e164: Option<String>,
    #[serde(default, deserialize_with = "de::false_as_none")]
    mobile: Option<String>,
    #[serde(default, deserialize_with = "de::false_as_none")]
    phone: Option<String>,
}

/// Partners whose number is one of the users' (for conversations to create or without one).
async fn match_partners(
    odoo: &OdooClient,
    wa_ids: &[&str],
) -> Result<HashMap<String, i64>, OdooError> {
    let keys: Vec<(&str, NumberKeys)> = wa_ids
        .iter()
        .filter_map(|w| NumberKeys::from_wa_id(w).map(|k| (*w, k)))
        .collect();
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let mut search: Vec<&str> = keys
        .iter()
        .flat_map(|(_, k)| k.search.iter().map(String::as_str))
        .collect();
    search.sort_unstable();
    search.dedup();
    let domain = Domain::or(
        Domain::or(
            Domain::leaf("whatsapp_number_e164", "in", json!(search)),
            Domain::leaf("mobile", "in", json!(search)),
        ),
        Domain::leaf("phone", "in", json!(search)),
    );
    let mut candidates = partner_numbers(odoo, &domain).await?;
    let mut found: HashMap<String, i64> = keys
        .iter()
        .filter_map(|(w, k)| choose_partner(k, &candidates).map(|p| ((*w).to_owned(), p)))
        .collect();
    // Numbers typed in another format: the national digits in order, anything between them.
    let patterns: Vec<&str> = keys
        .iter()
        .filter(|(w, _)| !found.contains_key(*w))
        .flat_map(|(_, k)| k.patterns.iter().map(String::as_str))
        .collect();
    let Some(domain) = patterns
        .iter()
        .flat_map(|p| {
            [
                Domain::leaf("mobile", "=ilike", *p),
                Domain::leaf("phone", "=ilike", *p),
            ]
        })
        .reduce(Domain::or)
    else {
        return Ok(found);
    };
    candidates.extend(partner_numbers(odoo, &domain).await?);
    for (w, k) in &keys {
        if !found.contains_key(*w) {
            if let Some(p) = choose_partner(k, &candidates) {
                found.insert((*w).to_owned(), p);
            }
        }
    }
    Ok(found)
}

async fn partner_numbers(
    odoo: &OdooClient,
    domain: &Domain,
) -> Result<Vec<PartnerNumbers>, OdooError> {
    let records: Vec<PartnerRecord> = odoo
        .search_read(
            PARTNER,
            domain,
            &["whatsapp_number_e164", "mobile", "phone"],
            &SearchOptions::new().order("id asc").limit(1000),
        )
        .await?;
    Ok(records
        .into_iter()
        .map(|r| PartnerNumbers {
            id: r.id,
            whatsapp_number_e164: r.whatsapp_number_e164,
            mobile: r.mobile,
            phone: r.phone,
        })
        .collect())
}

/// Conversations, received messages and opt-outs for the routed inbound messages.
async fn inbound(
    odoo: &OdooClient,
    routed: &[Routed<'_>],
    report: &mut StepReport,
) -> Result<(), OdooError> {
    let mut conversations = read_conversations(odoo, routed).await?;
    let to_create = plan::new_conversations(routed, &conversations);

    // Partners for new conversations and for existing ones that have none yet.
    let mut wa_ids: Vec<&str> = to_create
        .iter()
        .filter_map(|c| c.wa_id.as_deref())
        .collect();
    wa_ids.extend(
        conversations
            .iter()
            .filter(|c| c.partner_id.is_none())
            .filter_map(|c| c.wa_id.as_deref()),
    );
    wa_ids.sort_unstable();
    wa_ids.dedup();
    let partners = match_partners(odoo, &wa_ids).await?;

    let updates = plan::conversation_updates(
        routed,
        &conversations,
        &partner_by_conversation(&conversations, &partners),
    );
    odoo.write_each(CONVERSATION, &updates).await?;
    if !to_create.is_empty() {
        let values: Vec<Map<String, Value>> = to_create
            .iter()
            .map(|c| {
                let partner = c.wa_id.as_ref().and_then(|w| partners.get(w)).copied();
                c.values(partner, plan::latest_inbound(routed, c))
            })
            .collect();
        let ids = odoo.create_many(CONVERSATION, &values).await?;
        report.conversations_created += ids.len();
        conversations.extend(to_create.iter().zip(ids).map(|(c, id)| ConversationRow {
            id,
            account_id: c.account_id,
            wa_id: c.wa_id.clone(),
            user_id: c.user_id.clone(),
            partner_id: None,
            profile_name: c.profile_name.clone(),
            last_inbound_at: plan::latest_inbound(routed, c),
        }));
    }
    // Messages see their conversation's partner, including one just matched.
    for c in conversations.iter_mut().filter(|c| c.partner_id.is_none()) {
        c.partner_id = c.wa_id.as_ref().and_then(|w| partners.get(w)).copied();
    }

    let new_messages: Vec<Map<String, Value>> = routed
        .iter()
        .filter(|r| r.new)
        .map(|r| {
            let conversation = plan::find_conversation(
                &conversations,
                r.account.id,
                r.inbound.wa_id.as_deref(),
                r.inbound.user_id.as_deref(),
            );
            plan::message_values(r, conversation)
        })
        .collect();
    let created = odoo.create_many(MESSAGE, &new_messages).await?;
    report.messages_created += created.len();
    report.media_received += routed
        .iter()
        .filter(|r| r.new && r.inbound.media.is_some())
        .count();

    opt_outs(odoo, &plan::opt_outs(routed, &conversations), report).await
}

fn partner_by_conversation(
    conversations: &[ConversationRow],
    partners: &HashMap<String, i64>,
) -> HashMap<i64, i64> {
    conversations
        .iter()
        .filter(|c| c.partner_id.is_none())
        .filter_map(|c| {
            let partner = c.wa_id.as_ref().and_then(|w| partners.get(w))?;
            Some((c.id, *partner))
        })
        .collect()
}

#[derive(Deserialize)]
struct OptInRecord {
    id: i64,
    #[serde(default)]
    whatsapp_opt_in: bool,
}

#[derive(Deserialize)]
struct DedupeRecord {
    #[serde(default, deserialize_with = "de::false_as_none")]
    dedupe_key: Option<String>,
}

async fn opt_outs(
    odoo: &OdooClient,
    requests: &[plan::OptOut],
    report: &mut StepReport,
) -> Result<(), OdooError> {
    if requests.is_empty() {
        return Ok(());
    }
    report.opt_outs += requests.len();
    let mut partner_ids: Vec<i64> = requests.iter().filter_map(|r| r.partner_id).collect();
    partner_ids.sort_unstable();
    partner_ids.dedup();
    let partners: Vec<OptInRecord> = odoo
        .read(PARTNER, &partner_ids, &["whatsapp_opt_in"])
        .await?;
    let opted_in: HashSet<i64> = partners
        .iter()
        .filter(|p| p.whatsapp_opt_in)
        .map(|p| p.id)
        .collect();
    let mut seen = HashSet::new();
    let writes: Vec<(i64, Map<String, Value>)> = requests
        .iter()
        .filter_map(|r| {
            let partner = r.partner_id.filter(|p| opted_in.contains(p))?;
            seen.insert(partner).then(|| (partner, r.partner_values()))
        })
        .collect();
    for (partner, _) in &writes {
        tracing::info!(
            partner,
            "WhatsApp opt-out received: the contact is opted out"
        );
    }
    odoo.write_each(PARTNER, &writes).await?;

    let keys: Vec<String> = requests.iter().map(plan::OptOut::dedupe_key).collect();
    let existing: Vec<DedupeRecord> = odoo
        .search_read(
            MESSAGE,
            &Domain::leaf("dedupe_key", "in", json!(keys)),
            &["dedupe_key"],
            &SearchOptions::new(),
        )
        .await?;
    let existing: HashSet<String> = existing.into_iter().filter_map(|r| r.dedupe_key).collect();
    let mut confirmations = Vec::new();
    for request in requests {
        if existing.contains(&request.dedupe_key()) {
            continue;
        }
        match request.confirmation_values() {
            Some(values) => confirmations.push(values),
            None => tracing::info!(
                wamid = %request.wamid,
                "opt-out confirmation not queued: the user has no phone number (username only)"
            ),
        }
    }
    odoo.create_many(MESSAGE, &confirmations).await?;
    Ok(())
}

#[derive(Deserialize)]
struct TemplateRecord {
    id: i64,
    #[serde(default)]
    account_id: Many2one,
    #[serde(default, deserialize_with = "de::false_as_none")]
    meta_template_id: Option<String>,
    #[serde(default, deserialize_with = "de::string_or_false")]
    name: String,
    #[serde(default, deserialize_with = "de::string_or_false")]
    language: String,
}

/// Template and account updates.
async fn updates(
    odoo: &OdooClient,
    events: &[ParsedEvent],
    accounts: &[AccountRow],
) -> Result<(), OdooError> {
    let template_changes: Vec<_> = events
        .iter()
        .flat_map(|e| &e.items)
        .filter_map(|i| match i {
            Item::Template(t) => Some(t),
            _ => None,
        })
        .collect();
    if !template_changes.is_empty() {
        let ids: Vec<&str> = template_changes
            .iter()
            .filter_map(|t| t.meta_template_id.as_deref())
            .collect();
        let names: Vec<&str> = template_changes
            .iter()
            .filter_map(|t| t.name.as_deref())
            .collect();
        let domain = Domain::or(
            Domain::leaf("meta_template_id", "in", json!(ids)),
            Domain::leaf("name", "in", json!(names)),
        );
        let records: Vec<TemplateRecord> = odoo
            .with_context(Context::new().active_test(false))
            .search_read(
                TEMPLATE,
                &domain,
                &["account_id", "meta_template_id", "name", "language"],
                &SearchOptions::new().order("id asc"),
            )
            .await?;
        let rows: Vec<TemplateRow> = records
            .into_iter()
            .map(|r| TemplateRow {
                id: r.id,
                account_id: r.account_id.id(),
                meta_template_id: r.meta_template_id,
                name: r.name,
                language: r.language,
            })
            .collect();
        let plan = plan::plan_templates(&template_changes, &rows, accounts);
        for note in &plan.notes {
            tracing::info!("{note}");
        }
        odoo.write_each(TEMPLATE, &plan.updates).await?;
        odoo.write(
            ACCOUNT,
            &plan.sync_accounts,
            &json!({"sync_requested": true}),
        )
        .await?;
    }
    let account_changes: Vec<_> = events
        .iter()
        .flat_map(|e| &e.items)
        .filter_map(|i| match i {
            Item::Account(a) => Some(a),
            _ => None,
        })
        .collect();
    if !account_changes.is_empty() {
        for change in &account_changes {
            tracing::info!(waba = %change.waba_id, "Meta: {}", change.event);
        }
        let (writes, notes) = plan::plan_accounts(&account_changes, accounts);
        for note in &notes {
            tracing::warn!("{note}");
        }
        odoo.write_each(ACCOUNT, &writes).await?;
    }
    Ok(())
}

// ----- media ------------------------------------------------------------------------------

#[derive(Deserialize)]
struct MediaMessage {
    id: i64,
    #[serde(default)]
    account_id: Many2one,
    #[serde(default, deserialize_with = "de::false_as_none")]
    media_id: Option<String>,
    #[serde(default, deserialize_with = "de::false_as_none")]
    media_filename: Option<String>,
    #[serde(default, deserialize_with = "de::false_as_none")]
    media_mime_type: Option<String>,
    #[serde(default)]
    attempt_count: u32,
}

#[derive(Deserialize)]
struct TokenRecord {
    id: i64,
    #[serde(default, deserialize_with = "de::false_as_none")]
    phone_number_id: Option<String>,
    #[serde(default, deserialize_with = "de::false_as_none")]
    waba_id: Option<String>,
    #[serde(default, deserialize_with = "de::false_as_none")]
    access_token: Option<Secret>,
    #[serde(default, deserialize_with = "de::false_as_none")]
    graph_api_version: Option<String>,
}

/// Downloads the files of received messages that have none yet into attachments (see
/// [`super::media`]). Returns how many were stored.
pub async fn fetch_media(
    odoo: &OdooClient,
    fetch: &MediaFetch,
    now: DateTime<Utc>,
) -> Result<usize, OdooError> {
    let max_attempts = fetch.config.max_attempts;
    let domain = Domain::leaf("direction", "=", "in")
        .and("state", "=", "received")
        .and("media_id", "!=", false)
        .and("media_attachment_id", "=", false)
        .and(
            "received_at",
            ">=",
            format_datetime(media::oldest_fetchable(now)),
        )
        // An integer Odoo never wrote is NULL in the database, which `<` does not match.
        .and_domain(Domain::or(
            Domain::leaf("attempt_count", "=", false),
            Domain::leaf("attempt_count", "<", max_attempts),
        ));
    let messages: Vec<MediaMessage> = odoo
        .search_read(
            MESSAGE,
            &domain,
            &[
                "account_id",
                "media_id",
                "media_filename",
                "media_mime_type",
                "attempt_count",
            ],
            &SearchOptions::new()
                .order("id asc")
                .limit(fetch.config.batch_size.max(1) as u64),
        )
        .await?;
    if messages.is_empty() {
        return Ok(0);
    }
    let mut account_ids: Vec<i64> = messages.iter().filter_map(|m| m.account_id.id()).collect();
    account_ids.sort_unstable();
    account_ids.dedup();
    let tokens: Vec<TokenRecord> = odoo
        .with_context(Context::new().active_test(false))
        .read(
            ACCOUNT,
            &account_ids,
            &[
                "phone_number_id",
                "waba_id",
                "access_token",
                "graph_api_version",
            ],
        )
        .await?;
    let mut stored = 0;
    for message in &messages {
        let Some(media_id) = message.media_id.as_deref() else {
            continue;
        };
        let account = message
            .account_id
            .id()
            .and_then(|id| tokens.iter().find(|t| t.id == id));
        let handle = account.and_then(|a| {
            Some(
                AccountHandle::new(
                    a.phone_number_id.clone()?,
                    a.waba_id.clone().unwrap_or_default(),
                    a.access_token.clone().filter(|t| !t.is_blank())?,
                )
                .with_api_version(a.graph_api_version.as_deref()),
            )
        });
        let Some(handle) = handle else {
            let values = media::failure_values(
                message.attempt_count,
                max_attempts,
                false,
                "its WhatsApp account has no phone number id or access token",
            );
            odoo.write(MESSAGE, &[message.id], &values).await?;
            continue;
        };
        match fetch.client.fetch_media(&handle, media_id).await {
            Ok(file) => {
                let mime = message
                    .media_mime_type
                    .clone()
                    .unwrap_or_else(|| file.mime_type.clone());
                let name = media::file_name(message.media_filename.as_deref(), message.id, &mime);
                let attachment = odoo
                    .create(
                        "ir.attachment",
                        &media::attachment_values(message.id, &name, &mime, &file.bytes),
                    )
                    .await?;
                odoo.write(
                    MESSAGE,
                    &[message.id],
                    &json!({"media_attachment_id": attachment, "media_mime_type": mime}),
                )
                .await?;
                stored += 1;
            }
            Err(error) => {
                tracing::warn!(message = message.id, %error, "received file not downloaded");
                let values = media::failure_values(
                    message.attempt_count,
                    max_attempts,
                    error.is_retryable(),
                    &error.to_string(),
                );
                odoo.write(MESSAGE, &[message.id], &values).await?;
            }
        }
    }
    if stored > 0 {
        tracing::info!(files = stored, "received files stored as attachments");
    }
    Ok(stored)
}

fn sorted(set: HashSet<&str>) -> Vec<&str> {
    let mut v: Vec<&str> = set.into_iter().collect();
    v.sort_unstable();
    v
}
