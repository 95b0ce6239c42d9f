//! The processing loop and its Odoo calls: the only file of [`crate::inbound`] doing I/O.
//!
//! [`run`] repeats [`step`] until shutdown. A step reads a batch of events (new ones in order of
//! arrival, or, every `retry_interval`, the waiting ones), processes them ([`process`]) and
//! marks each one: processed, waiting (with the reason in `processing_error`, retried later), or
//! processed with an error. While statuses stream in, a batch of nothing but statuses is kept
//! in memory for the next one (at most `status_batch_interval`): the lookups and writes below
//! then happen about once a second, whatever the number of wake-ups. For a batch, Odoo sees
//! about:
//!
//! | call | when |
//! |---|---|
//! | `search_read` events | always |
//! | `search_read` messages by wamid / callback data | statuses or messages in the batch |
//! | `write` / `load` message statuses | one write per group of identical values, one `load` for the rest |
//! | accounts, conversations, partners, `create` conversations and messages | inbound messages in the batch |
//! | `read` contacts (name, salesperson, language), `read` users | inbound messages in the batch; users when one is due a notification |
//! | `create` notes (`mail.message`) | new messages: one call for the whole batch |
//! | `search_read` open activities, `create` activities | activities due: one of each per batch (one `create` per time zone of the users) |
//! | `message_notify` | one per Discuss message due (at most one per conversation per hour) |
//! | `read` accounts with a `lang` context | opt-out confirmations: once per customer language but English |
//! | `ir.model.data`, `ir.model`, `res.company`, `res.partner` | once an hour ([`Lookups`]) |
//! | `write` events | one per outcome kind |
//!
//! A retryable Odoo failure (unreachable, conflict) leaves the batch untouched: it is read again
//! after a pause that doubles up to `max_error_backoff`. Any other failure is narrowed down by
//! processing the batch's events one at a time, so one bad event is marked with its error and
//! the others go through.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::config::InboundConfig;
use super::contact::{choose_partner, NumberKeys, PartnerNumbers};
use super::media::{self, MediaConfig};
use super::model::{Item, MessageState};
use super::notify::{self, Contact, Due, ModelInfo, Notice, Record, User, Written};
use super::plan::{
    self, AccountRow, ConversationRow, EventRow, Outcome, Outcomes, ParsedEvent, Routed,
    TemplateRow,
};
use super::status::MessageRow;
use crate::lang::Lang;
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
const USERS: &str = "res.users";
const COMPANY: &str = "res.company";
const MAIL_MESSAGE: &str = "mail.message";
const ACTIVITY: &str = "mail.activity";

/// What the loop needs.
#[derive(Clone)]
pub struct InboundContext {
    pub odoo: OdooClient,
    pub config: InboundConfig,
    /// Notified when new events were stored (the webhook receiver does it), so they are
    /// processed without waiting for the next poll.
    pub wake: Arc<Notify>,
    /// Odoo's bus: an event put back to be processed again wakes the loop; while the bus is up,
    /// an idle loop polls at the slow rate (its events come from the wake above).
    pub bus: crate::poll::Wake,
    /// Where received files are downloaded from; `None` leaves them as Meta media ids.
    pub media: Option<MediaFetch>,
    /// What the notes and notifications look up once an hour rather than every batch.
    pub lookups: Lookups,
    /// Told after a batch that recorded received messages (texts, button presses), so the
    /// button actions look at them at once rather than at their next poll.
    pub received: Option<Arc<Notify>>,
    /// Events processed by outcome (`/metrics`).
    pub metrics: crate::metrics::Metrics,
}

/// The Cloud API client that downloads received files, and how.
#[derive(Clone, Debug)]
pub struct MediaFetch {
    pub client: CloudClient,
    pub config: MediaConfig,
}

/// What the notes and notifications look up once an hour rather than every batch: the ids of
/// the "internal note" subtype and of the "To do" activity type, which models have a chatter
/// and activities (`ir.model`: a conversation has a chatter only with an addon that gives it
/// one), and each company's language (its partner's `lang`: notes nobody in particular reads,
/// and the events' errors, are written in it). Shared by the clones of an [`InboundContext`].
#[derive(Clone, Default)]
pub struct Lookups(Arc<std::sync::Mutex<Option<Looked>>>);

/// How long [`Lookups`] are kept before they are read again.
const LOOKUPS_TTL: Duration = Duration::from_secs(3600);

/// The models every batch with received messages may note or notify on.
const NOTED_MODELS: [&str; 4] = [PARTNER, CONVERSATION, "sale.order", "account.move"];

#[derive(Clone, Debug, Default)]
pub struct Looked {
    read_at: Option<Instant>,
    /// `mail.mt_note`.
    pub note_subtype: Option<i64>,
    /// `mail.mail_activity_data_todo`.
    pub todo_type: Option<i64>,
    /// By model name; a model Odoo does not have is absent.
    pub models: HashMap<String, ModelInfo>,
    /// Each company's language; the first is the main company's.
    pub company_langs: BTreeMap<i64, Option<String>>,
}

impl Looked {
    /// The language of the account's company (else the main company's).
    pub fn company_lang(&self, company_id: Option<i64>) -> Option<&str> {
        company_id
            .and_then(|c| self.company_langs.get(&c))
            .or_else(|| self.company_langs.values().next())
            .and_then(|l| l.as_deref())
    }

    /// The language of the people reading the events' errors: the main company's.
    pub fn events_lang(&self) -> Lang {
        Lang::from_odoo(self.company_lang(None))
    }

    pub fn model(&self, name: &str) -> Option<ModelInfo> {
        self.models.get(name).copied()
    }
}

impl Lookups {
    /// The lookups, read from Odoo when they are older than an hour (or never read), with
    /// `models` among them. A failure Odoo will not get over by itself (a missing right) is
    /// logged and leaves what cannot be read out: notes and notifications then do without.
    pub async fn get(&self, odoo: &OdooClient, models: &[&str]) -> Result<Looked, OdooError> {
        let cached = self.lock().clone();
        let fresh = cached
            .as_ref()
            .and_then(|l| l.read_at)
            .is_some_and(|at| at.elapsed() < LOOKUPS_TTL);
        let mut looked = match cached {
            Some(l) if fresh => l,
            _ => {
                let mut l = Looked {
                    read_at: Some(Instant::now()),
                    ..Looked::default()
                };
                match read_lookups(odoo, &mut l).await {
                    Ok(()) => {}
                    Err(e) if e.is_retryable() => return Err(e),
                    Err(e) => tracing::warn!(
                        error = %e,
                        "the daemon cannot read the note subtype, activity type, models or \
                         company languages it needs for the notes about received messages; \
                         they are written without them (in English, fewer of them)"
                    ),
                }
                l
            }
        };
        let missing: Vec<&str> = models
            .iter()
            .copied()
            .filter(|m| !looked.models.contains_key(*m))
            .collect();
        if !missing.is_empty() {
            match read_models(odoo, &missing).await {
                Ok(found) => looked.models.extend(found),
                Err(e) if e.is_retryable() => return Err(e),
                Err(e) => tracing::debug!(error = %e, "models not read"),
            }
        }
        *self.lock() = Some(looked.clone());
        Ok(looked)
    }

    /// The events' language as last read (English before the first read).
    pub fn events_lang(&self) -> Lang {
        self.lock()
            .as_ref()
            .map(Looked::events_lang)
            .unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Looked>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Deserialize)]
struct XmlIdRecord {
    #[serde(default, deserialize_with = "de::string_or_false")]
    name: String,
    #[serde(default)]
    res_id: i64,
}

#[derive(Deserialize)]
struct ModelRecord {
    id: i64,
    #[serde(default, deserialize_with = "de::string_or_false")]
    model: String,
    #[serde(default)]
    is_mail_thread: bool,
    #[serde(default)]
    is_mail_activity: bool,
}

#[derive(Deserialize)]
struct CompanyRecord {
    id: i64,
    #[serde(default)]
    partner_id: Many2one,
}

#[derive(Deserialize)]
struct LangRecord {
    id: i64,
    #[serde(default, deserialize_with = "de::false_as_none")]
    lang: Option<String>,
}

async fn read_lookups(odoo: &OdooClient, looked: &mut Looked) -> Result<(), OdooError> {
    let ids: Vec<XmlIdRecord> = odoo
        .search_read(
            "ir.model.data",
            &Domain::leaf("module", "=", "mail").and(
                "name",
                "in",
                json!(["mt_note", "mail_activity_data_todo"]),
            ),
            &["name", "res_id"],
            &SearchOptions::new(),
        )
        .await?;
    for x in ids {
        match x.name.as_str() {
            "mt_note" => looked.note_subtype = Some(x.res_id),
            "mail_activity_data_todo" => looked.todo_type = Some(x.res_id),
            _ => {}
        }
    }
    looked.models = read_models(odoo, &NOTED_MODELS).await?;
    let companies: Vec<CompanyRecord> = odoo
        .with_context(Context::new().active_test(false))
        .search_read(
            COMPANY,
            &Domain::all(),
            &["partner_id"],
            &SearchOptions::new().order("id asc"),
        )
        .await?;
    let partner_ids: Vec<i64> = companies.iter().filter_map(|c| c.partner_id.id()).collect();
    let langs: Vec<LangRecord> = odoo.read(PARTNER, &partner_ids, &["lang"]).await?;
    looked.company_langs = companies
        .iter()
        .map(|c| {
            let lang = c
                .partner_id
                .id()
                .and_then(|p| langs.iter().find(|l| l.id == p))
                .and_then(|l| l.lang.clone());
            (c.id, lang)
        })
        .collect();
    Ok(())
}

async fn read_models(
    odoo: &OdooClient,
    names: &[&str],
) -> Result<HashMap<String, ModelInfo>, OdooError> {
    let records: Vec<ModelRecord> = odoo
        .search_read(
            "ir.model",
            &Domain::leaf("model", "in", json!(names)),
            &["model", "is_mail_thread", "is_mail_activity"],
            &SearchOptions::new(),
        )
        .await?;
    Ok(records
        .into_iter()
        .map(|r| {
            (
                r.model,
                ModelInfo {
                    id: r.id,
                    thread: r.is_mail_thread,
                    activities: r.is_mail_activity,
                },
            )
        })
        .collect())
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
    /// Notes logged on chatters about received messages.
    pub notes: usize,
    /// Users told that a customer wrote (activities and Discuss messages).
    pub notifications: usize,
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
        // Messages recorded by either pass (the second one's report replaces the first's).
        let mut messages_created = 0;
        if let Ok(report) = &result {
            full = report.fetched >= config.batch_size;
            files_received = report.media_received > 0;
            messages_created += report.messages_created;
            some_waiting |= report.waiting > 0;
            if !full && Instant::now() >= next_waiting_pass {
                next_waiting_pass = Instant::now() + config.retry_interval;
                let pass = Pass::Waiting {
                    after_id: waiting_cursor,
                };
                result = step(&ctx, pass, Utc::now()).await;
                if let Ok(report) = &result {
                    files_received |= report.media_received > 0;
                    messages_created += report.messages_created;
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
        if let Some(received) = &ctx.received {
            if messages_created > 0 {
                received.notify_one();
            }
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
        let waiting = some_waiting || !deferred.is_empty();
        if failures == 0 && !full && !waiting {
            pause = ctx.bus.idle_pause(pause, None);
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = ctx.bus.pause(pause, failures > 0) => {}
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
    /// When a batch was last applied.
    last_applied: Option<Instant>,
}

impl Deferred {
    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// When the first kept event runs out of time: `status_linger` (or `status_batch_interval`)
    /// after it was first read.
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
        plan::Defer::Linger => config.status_linger,
        plan::Defer::Batch => config.status_batch_interval,
    }
}

/// Whether newly read `rows` may wait for a later batch: a batch was applied less than
/// `status_batch_interval` ago, there is room in memory, and every new event is nothing but
/// statuses (a customer's message, a button press or anything else is applied at once, with
/// the kept ones).
fn may_batch(config: &InboundConfig, deferred: &Deferred, rows: &[EventRow], now: Instant) -> bool {
    let recent = deferred
        .last_applied
        .is_some_and(|at| now.saturating_duration_since(at) < config.status_batch_interval);
    recent
        && deferred.len() + rows.len() < config.batch_size.saturating_mul(2)
        && plan::parse_events(rows).iter().all(|event| {
            event.error.is_none()
                && !event.items.is_empty()
                && event
                    .items
                    .iter()
                    .all(|item| matches!(item, super::model::Item::Status(_)))
        })
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
    let seen_now = Instant::now();
    if let Some(d) = deferred.as_deref_mut() {
        if !rows.is_empty() && may_batch(config, d, &rows, seen_now) {
            // Statuses streaming in: these wait for the next batch (at most
            // `status_batch_interval`), which saves that batch's reads and writes.
            report.deferred = rows.len();
            report.events = rows.len() + d.len();
            for row in rows {
                d.events.insert(row.id, (row, seen_now, plan::Defer::Batch));
            }
            return Ok(report);
        }
    }
    if let Some(d) = &deferred {
        rows.extend(d.events.values().map(|(row, _, _)| row.clone()));
        rows.sort_by_key(|r| r.id);
    }
    report.events = rows.len();
    if rows.is_empty() {
        return Ok(report);
    }
    if let Some(d) = deferred.as_deref_mut() {
        d.last_applied = Some(seen_now);
    }
    let give_up =
        chrono::Duration::from_std(config.pending_give_up).unwrap_or(chrono::Duration::MAX);
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
        &ctx.lookups,
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
            let mut outcomes = Outcomes::default().in_lang(ctx.lookups.events_lang());
            for row in &rows {
                match process(
                    odoo,
                    &ctx.lookups,
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
                        let reason = outcomes
                            .lang()
                            .pick(
                                "Odoo refused the change: {error}",
                                "Odoo a refusé la modification : {error}",
                            )
                            .replace("{error}", &error.to_string());
                        outcomes.fail(row.id, reason);
                    }
                }
            }
            outcomes
        }
    };
    mark_events(odoo, &rows, &outcomes, now, &mut report).await?;
    ctx.metrics
        .inbound_processed(report.done, report.waiting, report.failed);
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
                let text = format!("{}{reason}", plan::pending_prefix(outcomes.lang()));
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
#[allow(clippy::too_many_arguments)]
async fn process(
    odoo: &OdooClient,
    lookups: &Lookups,
    rows: &[EventRow],
    now: DateTime<Utc>,
    give_up: chrono::Duration,
    may_defer: &(dyn Fn(i64, plan::Defer) -> bool + Sync),
    report: &mut StepReport,
) -> Result<Outcomes, OdooError> {
    let events = plan::parse_events(rows);
    let looked = lookups.get(odoo, &[]).await?;
    let mut outcomes = Outcomes::new(&events).in_lang(looked.events_lang());
    for event in &events {
        for item in &event.items {
            if let Item::Note(note) = item {
                tracing::info!(event = event.id, "{note}");
            }
        }
    }
    let lookup = plan::message_lookup(&events);
    let (messages, documents, sources) = if lookup.is_empty() {
        (Vec::new(), HashMap::new(), HashMap::new())
    } else {
        read_messages(odoo, &lookup).await?
    };
    // Statuses: one write per message, identical writes grouped by the client. A status may
    // land before the outbox writes the send's result: Odoo keeps the state forward-only
    // (`whatsapp.message.write`), so that later write records the wamid and time and leaves
    // the state the status gave.
    let statuses = plan::plan_statuses(&events, &messages, may_defer, &mut outcomes);
    for conflict in &statuses.conflicts {
        tracing::warn!("{conflict}");
    }
    report.statuses += statuses.statuses;
    report.messages_updated += statuses.updates.len();
    odoo.write_each(MESSAGE, &statuses.updates).await?;
    // Sends proven by their status whose result never reached Odoo: their documents'
    // indicators, which the outbox would have set with the result (best effort, as there).
    let proven = statuses
        .proven_sent
        .iter()
        .filter_map(|id| sources.get(id))
        .map(|(model, id, trigger)| (model.as_str(), *id, trigger.as_str()));
    for (model, ids, values) in crate::indicators::flag_writes(proven, now) {
        match odoo.write(&model, &ids, &values).await {
            Ok(_) => tracing::info!(
                model,
                ?ids,
                "indicators set for messages proven sent by their status (their send result never reached Odoo)"
            ),
            Err(e) => tracing::warn!(
                error = %e,
                model,
                ?ids,
                "could not set the WhatsApp indicators of messages proven sent by their status"
            ),
        }
    }

    // Inbound messages, templates and accounts need the accounts.
    let needs_accounts = events
        .iter()
        .flat_map(|e| &e.items)
        .any(|i| matches!(i, Item::Message(_) | Item::Template(_) | Item::Account(_)));
    if needs_accounts {
        let accounts = read_accounts(odoo).await?;
        let routed = plan::route_inbound(&events, &accounts, &messages, &mut outcomes);
        if !routed.is_empty() {
            inbound(odoo, lookups, looked, &routed, &documents, now, report).await?;
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
    #[serde(default, deserialize_with = "de::false_as_none")]
    res_model: Option<String>,
    #[serde(default, deserialize_with = "de::false_as_none")]
    res_id: Option<i64>,
    #[serde(default, deserialize_with = "de::false_as_none")]
    trigger: Option<String>,
}

/// The sources of outbound messages by message id: `(model, id, trigger)`.
type Sources = HashMap<i64, (String, i64, String)>;

/// The messages a batch is about, the documents (order, invoice...) of the outbound ones by
/// wamid (a received message answering one is noted on its document too), and their sources
/// by message id (for the indicators of a send proven by its status).
async fn read_messages(
    odoo: &OdooClient,
    lookup: &plan::MessageLookup,
) -> Result<(Vec<MessageRow>, HashMap<String, Record>, Sources), OdooError> {
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
        return Ok((Vec::new(), HashMap::new(), HashMap::new()));
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
                "res_model",
                "res_id",
                "trigger",
            ],
            &SearchOptions::new().order("id asc"),
        )
        .await?;
    let documents = records
        .iter()
        .filter(|r| r.direction == "out")
        .filter_map(|r| {
            let model = r.res_model.as_deref().filter(|m| is_document(m))?;
            let id = r.res_id.filter(|id| *id > 0)?;
            Some((r.wamid.clone()?, Record::new(model, id)))
        })
        .collect();
    let sources = records
        .iter()
        .filter(|r| r.direction == "out")
        .filter_map(|r| {
            let model = r.res_model.clone()?;
            let id = r.res_id.filter(|id| *id > 0)?;
            Some((r.id, (model, id, r.trigger.clone()?)))
        })
        .collect();
    let rows = records
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
        .collect();
    Ok((rows, documents, sources))
}

/// True for a business document a message may be about (an order, an invoice...), as opposed
/// to the contact itself or the addon's own records.
fn is_document(model: &str) -> bool {
    model != PARTNER && !model.starts_with("whatsapp.") && model.contains('.')
}

#[derive(Deserialize)]
struct AccountRecord {
    id: i64,
    #[serde(default, deserialize_with = "de::string_or_false")]
    name: String,
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
    #[serde(default, deserialize_with = "de::false_as_none")]
    inbound_notification: Option<String>,
    #[serde(default)]
    responsible_user_id: Many2one,
}

async fn read_accounts(odoo: &OdooClient) -> Result<Vec<AccountRow>, OdooError> {
    let records: Vec<AccountRecord> = odoo
        .with_context(Context::new().active_test(false))
        .search_read(
            ACCOUNT,
            &Domain::all(),
            &[
                "name",
                "company_id",
                "phone_number_id",
                "waba_id",
                "display_phone_number",
                "opt_out_keywords",
                "opt_out_confirmation",
                "inbound_notification",
                "responsible_user_id",
            ],
            &SearchOptions::new().order("id asc"),
        )
        .await?;
    Ok(records
        .into_iter()
        .map(|r| AccountRow {
            id: r.id,
            name: r.name,
            company_id: r.company_id.id(),
            phone_number_id: r.phone_number_id,
            waba_id: r.waba_id,
            display_phone_number: r.display_phone_number,
            opt_out_keywords: r.opt_out_keywords,
            opt_out_confirmation: r.opt_out_confirmation,
            inbound_notification: notify::Mode::from_odoo(r.inbound_notification.as_deref()),
            responsible_user_id: r.responsible_user_id.id(),
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
    #[serde(default, deserialize_with = "de::datetime_or_false")]
    last_notified_at: Option<DateTime<Utc>>,
}

const CONVERSATION_FIELDS: [&str; 7] = [
    "account_id",
    "wa_id",
    "user_id",
    "partner_id",
    "profile_name",
    "last_inbound_at",
    "last_notified_at",
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
        last_notified_at: r.last_notified_at,
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

/// Conversations, received messages, notes and notifications, and opt-outs for the routed
/// inbound messages.
async fn inbound(
    odoo: &OdooClient,
    lookups: &Lookups,
    looked: Looked,
    routed: &[Routed<'_>],
    documents: &HashMap<String, Record>,
    now: DateTime<Utc>,
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
    let partner_of = |partner: Option<i64>, wa_id: Option<&String>| {
        partner.or_else(|| wa_id.and_then(|w| partners.get(w)).copied())
    };

    // Who writes (names, salespeople, languages), and who is told about it.
    let mut contact_ids: Vec<i64> = conversations
        .iter()
        .filter_map(|c| partner_of(c.partner_id, c.wa_id.as_ref()))
        .chain(partners.values().copied())
        .collect();
    contact_ids.sort_unstable();
    contact_ids.dedup();
    let contacts = read_contacts(odoo, &contact_ids).await?;
    let contact_of = |partner: Option<i64>| partner.and_then(|p| contacts.get(&p));
    let opted_out = |r: &Routed<'_>| plan::is_opt_out(r);
    let existing: Vec<(usize, Vec<&Routed<'_>>)> = conversations
        .iter()
        .enumerate()
        .map(|(i, c)| (i, plan::messages_of(routed, c)))
        .collect();
    let created: Vec<Vec<&Routed<'_>>> = to_create
        .iter()
        .map(|c| routed.iter().filter(|r| c.holds(r)).collect())
        .collect();
    let mut candidates: Vec<i64> = Vec::new();
    for (i, mine) in &existing {
        let c = &conversations[*i];
        if let Some(first) = mine.first() {
            if notify::wants_notice(first.account, c.last_notified_at, mine, &opted_out, now) {
                let contact = contact_of(partner_of(c.partner_id, c.wa_id.as_ref()));
                candidates.extend(notify::candidates(first.account, contact));
            }
        }
    }
    for (c, mine) in to_create.iter().zip(&created) {
        if let Some(first) = mine.first() {
            if notify::wants_notice(first.account, None, mine, &opted_out, now) {
                let contact = contact_of(partner_of(None, c.wa_id.as_ref()));
                candidates.extend(notify::candidates(first.account, contact));
            }
        }
    }
    let users = read_users(odoo, &candidates).await?;
    let due = |account: &AccountRow, contact, last, mine: &[&Routed<'_>], what: String| {
        match notify::due(account, contact, last, mine, &opted_out, &users, now) {
            Due::User(user) => Some(user),
            Due::Nobody => {
                tracing::debug!(
                    "{what}: nobody is told that the customer wrote: the contact has no \
                     salesperson and the WhatsApp account no responsible user"
                );
                None
            }
            Due::No => None,
        }
    };
    // Conversation -> the user it tells now.
    let mut notified: HashMap<i64, i64> = HashMap::new();
    for (i, mine) in &existing {
        let c = &conversations[*i];
        if let Some(first) = mine.first() {
            let contact = contact_of(partner_of(c.partner_id, c.wa_id.as_ref()));
            let what = format!("conversation {}", c.id);
            if let Some(user) = due(first.account, contact, c.last_notified_at, mine, what) {
                notified.insert(c.id, user);
            }
        }
    }
    let new_notified: Vec<Option<i64>> = to_create
        .iter()
        .zip(&created)
        .map(|(c, mine)| {
            let first = mine.first()?;
            let contact = contact_of(partner_of(None, c.wa_id.as_ref()));
            let what = format!(
                "the new conversation with {}",
                c.wa_id.as_deref().unwrap_or("?")
            );
            due(first.account, contact, None, mine, what)
        })
        .collect();

    let told: HashSet<i64> = notified.keys().copied().collect();
    let updates = plan::conversation_updates(
        routed,
        &conversations,
        &partner_by_conversation(&conversations, &partners),
        &told,
        now,
    );
    odoo.write_each(CONVERSATION, &updates).await?;
    if !to_create.is_empty() {
        let values: Vec<Map<String, Value>> = to_create
            .iter()
            .zip(&new_notified)
            .map(|(c, user)| {
                let partner = c.wa_id.as_ref().and_then(|w| partners.get(w)).copied();
                c.values(partner, plan::latest_inbound(routed, c), user.map(|_| now))
            })
            .collect();
        let ids = odoo.create_many(CONVERSATION, &values).await?;
        report.conversations_created += ids.len();
        for ((c, id), user) in to_create.iter().zip(ids).zip(&new_notified) {
            if let Some(user) = user {
                notified.insert(id, *user);
            }
            conversations.push(ConversationRow {
                id,
                account_id: c.account_id,
                wa_id: c.wa_id.clone(),
                user_id: c.user_id.clone(),
                partner_id: None,
                profile_name: c.profile_name.clone(),
                last_inbound_at: plan::latest_inbound(routed, c),
                last_notified_at: user.map(|_| now),
            });
        }
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

    let told = Told {
        routed,
        conversations: &conversations,
        contacts: &contacts,
        documents,
        notified: &notified,
        users: &users,
    };
    tell(odoo, lookups, looked.clone(), &told, report).await?;

    let customer_lang = |partner: Option<i64>, account: &AccountRow| {
        contact_of(partner)
            .and_then(|c| c.lang.clone())
            .or_else(|| looked.company_lang(account.company_id).map(str::to_owned))
    };
    let requests = plan::opt_outs(routed, &conversations, &customer_lang);
    opt_outs(odoo, requests, report).await
}

#[derive(Deserialize)]
struct ContactRecord {
    id: i64,
    #[serde(default, deserialize_with = "de::string_or_false")]
    name: String,
    #[serde(default)]
    user_id: Many2one,
    #[serde(default, deserialize_with = "de::false_as_none")]
    lang: Option<String>,
}

async fn read_contacts(odoo: &OdooClient, ids: &[i64]) -> Result<HashMap<i64, Contact>, OdooError> {
    let records: Vec<ContactRecord> = odoo
        .read(PARTNER, ids, &["name", "user_id", "lang"])
        .await?;
    Ok(records
        .into_iter()
        .map(|r| {
            (
                r.id,
                Contact {
                    id: r.id,
                    name: r.name,
                    user_id: r.user_id.id(),
                    lang: r.lang,
                },
            )
        })
        .collect())
}

#[derive(Deserialize)]
struct UserRecord {
    id: i64,
    #[serde(default)]
    active: bool,
    #[serde(default)]
    share: bool,
    #[serde(default)]
    partner_id: Many2one,
    #[serde(default, deserialize_with = "de::false_as_none")]
    lang: Option<String>,
    #[serde(default, deserialize_with = "de::false_as_none")]
    tz: Option<String>,
}

/// The users among `ids` who may be told: active internal users.
async fn read_users(odoo: &OdooClient, ids: &[i64]) -> Result<HashMap<i64, User>, OdooError> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let records: Vec<UserRecord> = odoo
        .with_context(Context::new().active_test(false))
        .read(
            USERS,
            &ids,
            &["active", "share", "partner_id", "lang", "tz"],
        )
        .await?;
    Ok(records
        .into_iter()
        .filter(|r| r.active && !r.share)
        .map(|r| {
            (
                r.id,
                User {
                    id: r.id,
                    partner_id: r.partner_id.id(),
                    lang: r.lang,
                    tz: r.tz,
                },
            )
        })
        .collect())
}

/// What [`tell`] tells about.
struct Told<'a> {
    routed: &'a [Routed<'a>],
    conversations: &'a [ConversationRow],
    contacts: &'a HashMap<i64, Contact>,
    /// The documents of outbound messages, by wamid.
    documents: &'a HashMap<String, Record>,
    /// Conversation -> the user it tells now.
    notified: &'a HashMap<i64, i64>,
    users: &'a HashMap<i64, User>,
}

#[derive(Deserialize)]
struct NameRecord {
    id: i64,
    #[serde(default, deserialize_with = "de::string_or_false")]
    display_name: String,
}

/// Notes on the chatters and notifications to users about the new messages ([`notify`]).
/// Best effort: the messages are recorded already, so a failure here is logged (with whom it
/// leaves untold) and processing goes on; only an Odoo outage stops the batch.
async fn tell(
    odoo: &OdooClient,
    lookups: &Lookups,
    looked: Looked,
    told: &Told<'_>,
    report: &mut StepReport,
) -> Result<(), OdooError> {
    let fresh: Vec<&Routed<'_>> = told
        .routed
        .iter()
        .filter(|r| r.new && notify::worth_a_note(r.inbound.message_type))
        .collect();
    if fresh.is_empty() {
        return Ok(());
    }
    // The documents the messages answer, with their names.
    let answered: HashMap<&str, &Record> = fresh
        .iter()
        .filter_map(|r| {
            let reply_to = r.inbound.reply_to.as_deref()?;
            Some((r.inbound.wamid.as_str(), told.documents.get(reply_to)?))
        })
        .collect();
    let mut models: Vec<&str> = answered.values().map(|d| d.model.as_str()).collect();
    models.sort_unstable();
    models.dedup();
    let looked = if models.iter().all(|m| looked.models.contains_key(*m)) {
        looked
    } else {
        lookups.get(odoo, &models).await?
    };
    let mut names: HashMap<Record, String> = HashMap::new();
    for model in &models {
        let ids: Vec<i64> = answered
            .values()
            .filter(|d| d.model == *model)
            .map(|d| d.id)
            .collect();
        match odoo
            .read::<NameRecord>(model, &ids, &["display_name"])
            .await
        {
            Ok(records) => names.extend(
                records
                    .into_iter()
                    .map(|r| (Record::new(model, r.id), r.display_name)),
            ),
            Err(e) if e.is_retryable() => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, model, "the documents answered on WhatsApp cannot be read: their chatters get no note")
            }
        }
    }
    let written: Vec<Written<'_>> = fresh
        .iter()
        .map(|r| {
            let conversation = plan::find_conversation(
                told.conversations,
                r.account.id,
                r.inbound.wa_id.as_deref(),
                r.inbound.user_id.as_deref(),
            );
            Written {
                routed: r,
                conversation,
                contact: conversation
                    .and_then(|c| c.partner_id)
                    .and_then(|p| told.contacts.get(&p)),
                answers: answered.get(r.inbound.wamid.as_str()).and_then(|d| {
                    names
                        .get_key_value(*d)
                        .map(|(record, name)| (record, name.as_str()))
                }),
                opted_out: plan::is_opt_out(r),
            }
        })
        .collect();

    // Notes: all of them in one create.
    let company_lang = |a: &AccountRow| Lang::from_odoo(looked.company_lang(a.company_id));
    let thread = |model: &str| looked.model(model).is_some_and(|m| m.thread);
    let notes = notify::notes(&written, &company_lang, &thread);
    match (notes.is_empty(), looked.note_subtype) {
        (true, _) => {}
        (false, Some(subtype)) => {
            let values: Vec<Map<String, Value>> = notes
                .iter()
                .map(|n| notify::note_values(n, subtype))
                .collect();
            match odoo.create_many(MAIL_MESSAGE, &values).await {
                Ok(ids) => report.notes += ids.len(),
                Err(e) if e.is_retryable() => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, notes = notes.len(), "the notes about received WhatsApp messages cannot be logged")
                }
            }
        }
        (false, None) => tracing::warn!(
            "the notes about received WhatsApp messages are not logged: the 'mail.mt_note' \
             subtype cannot be read (ir.model.data)"
        ),
    }

    // Notifications: one per conversation due.
    let mut notices: Vec<Notice> = Vec::new();
    for (conversation, user) in told.notified {
        let Some(user) = told.users.get(user) else {
            continue;
        };
        let mine: Vec<&Routed<'_>> = written
            .iter()
            .filter(|w| w.conversation.map(|c| c.id) == Some(*conversation))
            .map(|w| w.routed)
            .collect();
        let Some(subject) = notify::subject_of(&mine, &|r| plan::is_opt_out(r)) else {
            continue;
        };
        let Some(w) = written.iter().find(|w| std::ptr::eq(w.routed, subject)) else {
            continue;
        };
        let mode = w.routed.account.inbound_notification;
        match notify::notice(w, user, mode, &|m| looked.model(m)) {
            Some(n) => notices.push(n),
            None => tracing::warn!(
                conversation,
                user = user.id,
                "the user to tell that a customer wrote has no partner: nobody is told"
            ),
        }
    }
    notices.sort_by(|a, b| notice_key(a).cmp(&notice_key(b)));
    report.notifications += activities(odoo, &looked, &notices).await?;
    for notice in &notices {
        let Some(kwargs) = notify::message_kwargs(notice) else {
            continue;
        };
        match odoo
            .call::<Value>(
                PARTNER,
                "message_notify",
                json!([[]]),
                Value::Object(kwargs),
            )
            .await
        {
            Ok(_) => report.notifications += 1,
            Err(e) if e.is_retryable() => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "a user could not be told by a Discuss message that a customer wrote on WhatsApp")
            }
        }
    }
    Ok(())
}

fn notice_key(n: &Notice) -> (u8, &Record) {
    match n {
        Notice::Activity { record, .. } => (0, record),
        Notice::Message { record, .. } => (1, record),
    }
}

#[derive(Deserialize)]
struct OpenActivity {
    #[serde(default, deserialize_with = "de::string_or_false")]
    res_model: String,
    #[serde(default)]
    res_id: i64,
    #[serde(default)]
    user_id: Many2one,
    #[serde(default, deserialize_with = "de::string_or_false")]
    summary: String,
}

/// Creates the activity notices, one `create` per time zone of their users (so each is due
/// today where its user is), leaving out those that would repeat an open activity of the same
/// user on the same record. Returns how many were created.
async fn activities(
    odoo: &OdooClient,
    looked: &Looked,
    notices: &[Notice],
) -> Result<usize, OdooError> {
    let wanted: Vec<(&Notice, &Record, i64, &str)> = notices
        .iter()
        .filter_map(|n| match n {
            Notice::Activity {
                record,
                user_id,
                summary,
                ..
            } => Some((n, record, *user_id, summary.as_str())),
            Notice::Message { .. } => None,
        })
        .collect();
    if wanted.is_empty() {
        return Ok(0);
    }
    let models: BTreeSet<&str> = wanted.iter().map(|w| w.1.model.as_str()).collect();
    let ids: BTreeSet<i64> = wanted.iter().map(|w| w.1.id).collect();
    let users: BTreeSet<i64> = wanted.iter().map(|w| w.2).collect();
    let summaries: BTreeSet<&str> = wanted.iter().map(|w| w.3).collect();
    let domain = Domain::leaf("res_model", "in", json!(models))
        .and("res_id", "in", json!(ids))
        .and("user_id", "in", json!(users))
        .and("summary", "in", json!(summaries));
    let open: Vec<OpenActivity> = match odoo
        .search_read(
            ACTIVITY,
            &domain,
            &["res_model", "res_id", "user_id", "summary"],
            &SearchOptions::new(),
        )
        .await
    {
        Ok(open) => open,
        Err(e) if e.is_retryable() => return Err(e),
        Err(e) => {
            tracing::warn!(error = %e, "the users to tell that a customer wrote cannot be given activities");
            return Ok(0);
        }
    };
    let mut by_tz: BTreeMap<Option<&str>, Vec<Map<String, Value>>> = BTreeMap::new();
    for (notice, record, user, summary) in &wanted {
        let repeats = open.iter().any(|a| {
            a.res_model == record.model
                && a.res_id == record.id
                && a.user_id.id() == Some(*user)
                && a.summary == *summary
        });
        if repeats {
            tracing::debug!(user, record = ?record, "an open activity already asks this user to reply");
            continue;
        }
        let Some(model) = looked.model(&record.model) else {
            continue;
        };
        let Notice::Activity { tz, .. } = notice else {
            continue;
        };
        if let Some(values) = notify::activity_values(notice, model.id, looked.todo_type) {
            by_tz.entry(tz.as_deref()).or_default().push(values);
        }
    }
    let mut created = 0;
    for (tz, values) in &by_tz {
        let client = match tz {
            Some(tz) => odoo.with_context(Context::new().tz(tz)),
            None => odoo.clone(),
        };
        match client.create_many(ACTIVITY, values).await {
            Ok(ids) => created += ids.len(),
            Err(e) if e.is_retryable() => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, activities = values.len(), "the users to tell that a customer wrote cannot be given activities")
            }
        }
    }
    Ok(created)
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
struct ConfirmationRecord {
    id: i64,
    #[serde(default, deserialize_with = "de::false_as_none")]
    opt_out_confirmation: Option<String>,
}

#[derive(Deserialize)]
struct DedupeRecord {
    #[serde(default, deserialize_with = "de::false_as_none")]
    dedupe_key: Option<String>,
}

async fn opt_outs(
    odoo: &OdooClient,
    mut requests: Vec<plan::OptOut>,
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
    requests.retain(|r| !existing.contains(&r.dedupe_key()));
    // Each confirmation in its customer's language: one read of the accounts per language.
    let mut translated: HashMap<(i64, String), Option<String>> = HashMap::new();
    for (lang, accounts) in plan::confirmation_languages(&requests) {
        let texts: Vec<ConfirmationRecord> = odoo
            .with_context(Context::new().lang(&lang).active_test(false))
            .read(ACCOUNT, &accounts, &["opt_out_confirmation"])
            .await?;
        translated.extend(
            texts
                .into_iter()
                .map(|t| ((t.id, lang.clone()), t.opt_out_confirmation)),
        );
    }
    plan::localise(&mut requests, &translated);
    let mut confirmations = Vec::new();
    for request in &requests {
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
