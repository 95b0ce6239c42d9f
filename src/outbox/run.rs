//! The outbox loop: the only part of the outbox that talks to Odoo and to the Cloud API.
//!
//! [`run`] drives three kinds of tasks:
//!
//! - the **dispatcher** (the loop itself): each [`Step`] polls the due queued messages (at most
//!   `batch_size`, about a second of sending at the accounts' throughput, and no more than the
//!   in-flight room left: see `ClaimLimits`), claims them in one `write`, reads
//!   what the gates need for the whole batch (partners, conversations; accounts, companies and
//!   templates from a cache), gates and renders each message, checks Meta's daily messaging
//!   limit for templates outside a window (the customers reached in 24 hours read in one
//!   `search_read` per `cache_ttl`, see [`super::limit`]; a held message becomes
//!   [`Outcome::Held`]), and spawns one send task per message that passed; a message that did
//!   not pass becomes an [`Outcome`] at once;
//! - the **send tasks**: pace (per-account bucket, per-recipient pair rate), resolve media
//!   (report PDFs and attachments uploaded through the content-hash cache), send with the
//!   message id as callback data, and turn the answer into an [`Outcome`], slowing down,
//!   holding a recipient or pausing the account as the error says;
//! - the **writer**: collects outcomes and writes them back in batches (every `flush_interval`
//!   or `batch_size` outcomes): one result write per message through `write_each`, the chatter
//!   notes in one `create`, the source documents' indicators grouped. Only once the result is
//!   written does a message leave the in-flight registry. When Odoo is down the outcomes wait
//!   and are written when it comes back: nothing is dropped.
//!
//! A **reconciler** requeues messages left in `sending` by an earlier process (see the crash
//! safety section of [`super`]).

use super::compose::{self, after_send_error, Attempt, Effect, MediaRef, Ready};
use super::gate::{
    self, gate, pick_account, recipient, Content, GateFailure, GateKind, MediaKind, MediaSource,
    ParamSource, SendPlan, Snapshot, TemplateParams,
};
use super::limit::{self, Decision, Ledger, Reach};
use super::model::{Account, Company, Conversation, Message, Partner, Template, TemplateVariable};
use super::pacing::Pacer;
use super::reconcile::{reconcile, InFlight};
use super::render::{self, Walk};
use super::writeback::{self, About, ErrorInfo, Outcome, ReportFile, Rewrite, SentMedia, Source};
use super::OutboxSettings;
use crate::lang::Lang;
use crate::odoo::{format_datetime, Domain, OdooClient, OdooError, SearchOptions};
use crate::whatsapp::{
    AccountHandle, CloudClient, MediaCache, MediaKind as WaMediaKind, MediaUpload,
};
use base64::Engine;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Map, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Everything the outbox needs. Cheap to clone.
#[derive(Clone)]
pub struct OutboxContext {
    pub odoo: OdooClient,
    pub whatsapp: CloudClient,
    /// Uploaded media ids by content hash (shared with anything else that uploads).
    pub media_cache: Arc<MediaCache>,
    pub settings: OutboxSettings,
    /// Messages claimed and not yet written back.
    pub in_flight: InFlight,
    /// The sending lease: claims are fenced by it, and nothing is sent without it.
    pub lease: crate::lease::Lease,
    pub stats: Arc<OutboxStats>,
    /// Woken by Odoo's bus when a message is queued or an account or campaign changes; idle
    /// polls are slow while the bus is up.
    pub bus: crate::poll::Wake,
    /// Told by Odoo's bus when an account changes (resumed, settings): the accounts are read
    /// again at the next poll instead of after `cache_ttl`.
    pub accounts_changed: crate::poll::Wake,
    /// Sends, failures, retries and pacing slowdowns by account (`/metrics`).
    pub metrics: crate::metrics::Metrics,
}

impl OutboxContext {
    pub fn new(odoo: OdooClient, whatsapp: CloudClient, settings: OutboxSettings) -> Self {
        OutboxContext {
            odoo,
            whatsapp,
            media_cache: Arc::new(MediaCache::default()),
            settings,
            in_flight: InFlight::new(),
            lease: crate::lease::Lease::unfenced(),
            stats: Arc::new(OutboxStats::default()),
            bus: crate::poll::Wake::default(),
            accounts_changed: crate::poll::Wake::default(),
            metrics: Default::default(),
        }
    }
}

/// Counters, for logs, metrics and benchmarks.
#[derive(Debug, Default)]
pub struct OutboxStats {
    pub polls: AtomicU64,
    pub claimed: AtomicU64,
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub retried: AtomicU64,
    pub requeued: AtomicU64,
    pub unknown: AtomicU64,
    pub already_sent: AtomicU64,
    pub flushes: AtomicU64,
    pub odoo_errors: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub polls: u64,
    pub claimed: u64,
    pub sent: u64,
    pub failed: u64,
    pub retried: u64,
    pub requeued: u64,
    pub unknown: u64,
    pub already_sent: u64,
    pub flushes: u64,
    pub odoo_errors: u64,
}

impl OutboxStats {
    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            polls: get(&self.polls),
            claimed: get(&self.claimed),
            sent: get(&self.sent),
            failed: get(&self.failed),
            retried: get(&self.retried),
            requeued: get(&self.requeued),
            unknown: get(&self.unknown),
            already_sent: get(&self.already_sent),
            flushes: get(&self.flushes),
            odoo_errors: get(&self.odoo_errors),
        }
    }

    fn count(&self, outcome: &Outcome) {
        let counter = match outcome {
            Outcome::Sent { .. } => &self.sent,
            Outcome::Failed { .. } => &self.failed,
            Outcome::Retry { .. } => &self.retried,
            Outcome::Requeue { .. } | Outcome::Held { .. } => &self.requeued,
            Outcome::AlreadySent { .. } => &self.already_sent,
            Outcome::Unknown { .. } | Outcome::Left { .. } => &self.unknown,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// What one dispatcher step did; the loop decides what comes next from it.
#[derive(Debug)]
enum Step {
    /// A full batch was claimed: more may be due, poll again at once.
    Full(usize),
    /// Fewer than a batch: wait for the poll interval.
    Partial(usize),
    /// Nothing due.
    Empty,
    /// The in-flight room is used up: wait for sends to finish.
    Saturated,
    /// Odoo failed; wait and try again.
    OdooFailed(OdooError),
    /// The claim was refused: another daemon holds the sending lease (named when known).
    NotLeader(Option<String>),
}

#[derive(Debug, Clone)]
struct PauseState {
    /// The `paused` flag was written on the account.
    written: bool,
    at: Instant,
}

#[derive(Default)]
struct Caches {
    accounts: HashMap<i64, Account>,
    accounts_at: Option<Instant>,
    companies: HashMap<i64, (Company, Instant)>,
    templates: HashMap<i64, (Template, Instant)>,
    relations: HashMap<(String, String), Option<String>>,
    /// `res.users.lang` by user id (`None`: none set, or the user cannot be read).
    user_langs: HashMap<i64, (Option<String>, Instant)>,
    /// The users' languages could not be read, and the log said so.
    user_langs_refused: bool,
}

struct Shared {
    ctx: OutboxContext,
    pacer: Pacer,
    caches: Mutex<Caches>,
    paused: Mutex<HashMap<i64, PauseState>>,
    /// Sends whose answer was lost: left alone by the reconciler until the deadline.
    awaiting_proof: Mutex<HashMap<i64, Instant>>,
    room: Arc<Semaphore>,
    send_slots: Semaphore,
    tx: mpsc::UnboundedSender<Outcome>,
    /// Meta's daily messaging limit: the unique customers reached per group.
    limits: Mutex<LimitState>,
    /// The reconcile delay is counted from here: the start, or the last time Odoo came back
    /// (while Odoo was away the webhook receiver could not store the statuses that prove a send).
    settled_from: Mutex<DateTime<Utc>>,
}

/// The messaging-limit count and when it was last read from Odoo.
#[derive(Default)]
struct LimitState {
    ledger: Ledger,
    read_at: Option<Instant>,
    /// Accounts whose reached limit was logged (cleared when they send to a new customer).
    announced: std::collections::HashSet<i64>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn chrono_delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::hours(1))
}

impl Shared {
    fn settings(&self) -> &OutboxSettings {
        &self.ctx.settings
    }

    fn emit(&self, outcome: Outcome) {
        if let Outcome::Unknown { id } = outcome {
            lock(&self.awaiting_proof).insert(id, Instant::now() + self.settings().reconcile_delay);
        }
        self.ctx.stats.count(&outcome);
        if let Outcome::Failed { error, about, .. } = &outcome {
            self.ctx
                .metrics
                .message_failed(about.account_id, &error.code);
        }
        if self.tx.send(outcome).is_err() {
            tracing::error!("the outbox writer stopped before the dispatcher: an outcome was not written; the message stays 'sending' and is reconciled at the next start");
        }
    }

    fn is_paused(&self, account_id: i64) -> bool {
        lock(&self.paused).contains_key(&account_id)
    }

    fn held(&self, id: i64) -> bool {
        if self.ctx.in_flight.contains(id) {
            return true;
        }
        let now = Instant::now();
        let mut waiting = lock(&self.awaiting_proof);
        waiting.retain(|_, until| *until > now);
        waiting.contains_key(&id)
    }
}

/// Runs the outbox until `shutdown` is cancelled; then stops claiming, lets the sends that
/// started finish (the others are requeued), writes every result back and returns.
pub async fn run(ctx: OutboxContext, shutdown: CancellationToken) {
    let settings = ctx.settings.clone();
    let (tx, rx) = mpsc::unbounded_channel();
    let writer_ctx = ctx.clone();
    let writer = tokio::spawn(writer_loop(writer_ctx, rx, shutdown.clone()));
    let shared = Arc::new(Shared {
        pacer: Pacer::new(settings.pacing()),
        caches: Mutex::new(Caches::default()),
        paused: Mutex::new(HashMap::new()),
        awaiting_proof: Mutex::new(HashMap::new()),
        room: Arc::new(Semaphore::new(settings.max_in_flight.max(1))),
        send_slots: Semaphore::new(settings.concurrency.max(1)),
        tx,
        settled_from: Mutex::new(Utc::now()),
        limits: Mutex::new(LimitState::default()),
        ctx,
    });
    tracing::info!(
        batch_size = settings.batch_size,
        concurrency = settings.concurrency,
        reconcile_delay_secs = settings.reconcile_delay.as_secs(),
        "outbox started"
    );
    let tasks = TaskTracker::new();
    tasks.spawn(reconcile_loop(shared.clone(), shutdown.clone()));

    let mut failures = crate::poll::Failures::default();
    let mut last_housekeeping = Instant::now();
    while !shutdown.is_cancelled() {
        let step = dispatch(&shared, &tasks, &shutdown).await;
        let wait = match step {
            Step::Full(n) => {
                tracing::trace!(claimed = n, "full batch claimed");
                Duration::ZERO
            }
            Step::Partial(n) => {
                tracing::trace!(claimed = n, "batch claimed");
                settings.poll_interval
            }
            Step::Empty if shared.ctx.bus.bus_up() => {
                let due = next_retry_in(&shared.ctx.odoo).await;
                shared.ctx.bus.idle_pause(settings.poll_interval, due)
            }
            Step::Empty => settings.poll_interval,
            Step::Saturated => Duration::from_millis(20),
            Step::NotLeader(ref holder) => {
                // The daemon stops the outbox when it sees the lease go; until then, nothing
                // is claimed.
                tracing::debug!(
                    ?holder,
                    "claim refused: this daemon does not hold the sending lease"
                );
                settings.poll_interval
            }
            Step::OdooFailed(ref err) => {
                shared.ctx.stats.odoo_errors.fetch_add(1, Ordering::Relaxed);
                failures.failed(
                    err,
                    settings.poll_interval,
                    "the outbox",
                    "it tries again until Odoo answers",
                )
            }
        };
        if !matches!(step, Step::OdooFailed(_)) {
            let failed = failures.reset();
            if failed > 0 {
                tracing::info!(failures = failed, "Odoo answers again; the outbox goes on");
                *lock(&shared.settled_from) = Utc::now();
            }
        }
        if last_housekeeping.elapsed() > Duration::from_secs(30) {
            shared.pacer.housekeeping();
            shared
                .ctx
                .media_cache
                .purge_expired(std::time::Instant::now());
            last_housekeeping = Instant::now();
        }
        if !wait.is_zero() {
            // A saturated outbox waits for its sends, a failed step backs off: neither is
            // cut short by Odoo's bus.
            let plain = !matches!(step, Step::Empty | Step::Partial(_));
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = shared.ctx.bus.pause(wait, plain) => {}
            }
        }
    }
    tasks.close();
    tasks.wait().await;
    drop(shared);
    if let Err(e) = writer.await {
        tracing::error!(error = %e, "the outbox writer ended abnormally");
    }
    tracing::info!("outbox stopped");
}

/// How long until the queued message retried soonest is due (`None`: none waits, or Odoo did
/// not say): an idle outbox polling slowly (the bus is up) must not sleep past it. One indexed
/// `search_read` per slow poll.
async fn next_retry_in(odoo: &OdooClient) -> Option<Duration> {
    let now = Utc::now();
    let domain = Domain::from_terms(vec![
        json!(["state", "=", "queued"]),
        json!(["direction", "=", "out"]),
        json!(["next_attempt_at", ">", format_datetime(now)]),
    ]);
    let rows: Vec<Value> = odoo
        .search_read(
            Message::MODEL,
            &domain,
            &["next_attempt_at"],
            &SearchOptions::new().limit(1).order("next_attempt_at asc"),
        )
        .await
        .map_err(|e| tracing::debug!(error = %e, "outbox: cannot read the next retry time"))
        .ok()?;
    let at = rows
        .first()
        .and_then(|r| r.get("next_attempt_at"))
        .and_then(Value::as_str)
        .and_then(crate::odoo::parse_datetime)?;
    // A second later: Odoo keeps datetimes to the second.
    Some((at - now).to_std().unwrap_or_default() + Duration::from_secs(1))
}

/// The order due messages are claimed in: higher `priority` first (campaign messages have 0,
/// every other message 10 by default), then oldest first.
pub const DUE_ORDER: &str = "priority desc, id asc";

/// The domain of the due queued outbound messages. A campaign's messages are due only while
/// the campaign runs, so Pause and Cancel stop them at the next poll.
pub fn due_domain(now: DateTime<Utc>, paused_accounts: &[i64]) -> Domain {
    let mut terms = vec![
        json!(["state", "=", "queued"]),
        json!(["direction", "=", "out"]),
        json!("|"),
        json!(["next_attempt_at", "=", false]),
        json!(["next_attempt_at", "<=", format_datetime(now)]),
        json!("|"),
        json!(["campaign_id", "=", false]),
        json!(["campaign_id.state", "=", "running"]),
    ];
    if !paused_accounts.is_empty() {
        terms.push(json!(["account_id", "not in", paused_accounts]));
    }
    Domain::from_terms(terms)
}

/// How much the dispatcher claims: about a second of sending per claim and a few seconds in
/// flight at the accounts' combined throughput, within `batch_size` and `max_in_flight`. A
/// number at 80 msg/s then claims 80 at a time (a claim of 500 would sit in `sending` for six
/// seconds, and on a busy Odoo its reads hold up the sends), one at 1,000 msg/s claims 500.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ClaimLimits {
    /// Messages claimed per poll, at most.
    batch: usize,
    /// Messages claimed and not yet written back, at most.
    in_flight: usize,
}

impl ClaimLimits {
    /// Seconds of sending held in flight at most (claims are about one second each).
    const SECONDS_IN_FLIGHT: usize = 4;

    fn new(batch_size: usize, max_in_flight: usize, rate_mps: u64) -> Self {
        let max_in_flight = max_in_flight.max(1);
        // Meta's lowest throughput is the floor: with no account known yet (or slower test
        // numbers) claims still come in useful sizes.
        let rate = rate_mps.max(u64::from(super::model::DEFAULT_THROUGHPUT_MPS));
        let per_second = usize::try_from(rate).unwrap_or(usize::MAX);
        let batch = batch_size.max(1).min(per_second).min(max_in_flight);
        let in_flight = max_in_flight.min(batch.saturating_mul(Self::SECONDS_IN_FLIGHT));
        ClaimLimits { batch, in_flight }
    }

    /// The smallest room worth a poll: a whole batch, or half the in-flight room if smaller.
    fn worth_it(&self) -> usize {
        self.batch.min(self.in_flight.div_ceil(2)).max(1)
    }
}

/// One dispatcher step: poll, claim, gate, render, spawn the sends.
async fn dispatch(shared: &Arc<Shared>, tasks: &TaskTracker, shutdown: &CancellationToken) -> Step {
    let settings = shared.settings();
    let odoo = &shared.ctx.odoo;
    if let Err(e) = refresh_accounts(shared).await {
        return Step::OdooFailed(e);
    }
    let (paused, sending_rate): (Vec<i64>, u64) = {
        let caches = lock(&shared.caches);
        let in_memory = lock(&shared.paused);
        let paused: Vec<i64> = caches
            .accounts
            .values()
            .filter(|a| a.paused || in_memory.contains_key(&a.id))
            .map(|a| a.id)
            .collect();
        let rate = caches
            .accounts
            .values()
            .filter(|a| a.active && !paused.contains(&a.id))
            .map(|a| u64::from(a.throughput_mps))
            .sum();
        (paused, rate)
    };
    // Poll only when a whole batch fits (or half the in-flight room, if smaller): at full
    // speed, small polls would each cost a search, a claim and a read.
    let limits = ClaimLimits::new(settings.batch_size, settings.max_in_flight, sending_rate);
    let in_flight = settings
        .max_in_flight
        .max(1)
        .saturating_sub(shared.room.available_permits());
    let room = limits.in_flight.saturating_sub(in_flight).min(limits.batch);
    if room < limits.worth_it() {
        return Step::Saturated;
    }
    let now = Utc::now();
    shared.ctx.stats.polls.fetch_add(1, Ordering::Relaxed);
    let rows: Vec<Value> = match odoo
        .search_read(
            Message::MODEL,
            &due_domain(now, &paused),
            Message::FIELDS,
            // Transactional messages (priority 10) before campaign messages (0).
            &SearchOptions::new().limit(room as u64).order(DUE_ORDER),
        )
        .await
    {
        Ok(rows) => rows,
        Err(e) => return Step::OdooFailed(e),
    };
    let messages: Vec<Message> = rows
        .iter()
        .filter_map(|r| match Message::from_record(r) {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::error!(error = %e, "skipping an unreadable whatsapp.message record");
                None
            }
        })
        .collect();
    if messages.is_empty() {
        return Step::Empty;
    }
    let ids: Vec<i64> = messages.iter().map(|m| m.id).collect();
    let claim = json!({"state": "sending", "claimed_at": format_datetime(now)});
    // Only those still queued, and only while this daemon holds the lease (checked by Odoo).
    let claimed = shared
        .ctx
        .lease
        .claim(
            odoo,
            Message::MODEL,
            &ids,
            json!([["state", "=", "queued"]]),
            claim,
        )
        .await;
    let ids = match claimed {
        Ok(crate::lease::Claimed::Ids(ids)) => ids,
        Ok(crate::lease::Claimed::Lost { holder }) => return Step::NotLeader(holder),
        Err(e) => return Step::OdooFailed(e),
    };
    let mut messages = messages;
    if ids.len() < messages.len() {
        // Cancelled (or claimed) between the read and the claim: not this round's.
        let kept: std::collections::HashSet<i64> = ids.iter().copied().collect();
        messages.retain(|m| kept.contains(&m.id));
    }
    if messages.is_empty() {
        return Step::Empty;
    }
    shared.ctx.in_flight.insert_all(ids.iter().copied());
    shared
        .ctx
        .stats
        .claimed
        .fetch_add(ids.len() as u64, Ordering::Relaxed);
    let full = rows.len() >= room;

    let snapshot = match load_snapshot(shared, &messages).await {
        Ok(s) => s,
        Err(e) => {
            // Claimed but not checkable: back to the queue once Odoo answers.
            for m in &messages {
                shared.emit(Outcome::Requeue {
                    id: m.id,
                    next_attempt_at: None,
                });
            }
            return Step::OdooFailed(e);
        }
    };

    let mut snapshot = snapshot;
    let mut planned: Vec<(Message, SendPlan)> = Vec::new();
    let mut refused: Vec<(Message, GateFailure)> = Vec::new();
    for m in messages {
        if let Some(state) = gate::already_sent_state(&m) {
            shared.emit(Outcome::AlreadySent { id: m.id, state });
            continue;
        }
        match gate(&snapshot, &m, now) {
            Ok(plan) => planned.push((m, plan)),
            Err(failure) => refused.push((m, failure)),
        }
    }
    // A failure that asks for a setting may come from accounts read before someone filled it
    // (set "Template for documents", then "Retry" at once): read them again and check those
    // messages once more before failing them.
    if refused.iter().any(|(_, f)| f.kind.names_a_setting())
        && settings_older_than(shared, SETTINGS_RECHECK)
    {
        let again: Vec<Message> = refused.iter().map(|(m, _)| m.clone()).collect();
        match reread_settings(shared, &again).await {
            Ok(fresh) => {
                snapshot.merge(fresh);
                for (m, failure) in std::mem::take(&mut refused) {
                    match gate(&snapshot, &m, now) {
                        Ok(plan) => planned.push((m, plan)),
                        Err(_) if !failure.kind.names_a_setting() => refused.push((m, failure)),
                        Err(again) => refused.push((m, again)),
                    }
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "could not read the accounts again; the gate failures stand")
            }
        }
    }
    for (m, failure) in refused {
        shared.emit(gate_outcome(shared, &snapshot, &m, failure, now));
    }

    // Meta's daily messaging limit: the customers reached in the last 24 hours, read again when
    // stale and a message of a limited account needs them.
    if let Err(e) = refresh_limits(shared, &snapshot, &planned).await {
        for (m, _) in &planned {
            shared.emit(Outcome::Requeue {
                id: m.id,
                next_attempt_at: None,
            });
        }
        return Step::OdooFailed(e);
    }

    // Template parameters from the source records, for the whole batch at once.
    let rendered = match render_params(shared, &snapshot, &planned).await {
        Ok(r) => r,
        Err(e) => {
            for (m, _) in &planned {
                shared.emit(Outcome::Requeue {
                    id: m.id,
                    next_attempt_at: None,
                });
            }
            return Step::OdooFailed(e);
        }
    };

    let count = ids.len();
    for ((message, plan), params) in planned.into_iter().zip(rendered) {
        let params = match params {
            Ok(p) => p,
            Err(failure) => {
                shared.emit(gate_outcome(shared, &snapshot, &message, failure, now));
                continue;
            }
        };
        let Some(account) = snapshot.accounts.get(&plan.account_id).cloned() else {
            shared.emit(Outcome::Requeue {
                id: message.id,
                next_attempt_at: None,
            });
            continue;
        };
        let reserved = match check_limit(shared, &account, &plan, now) {
            Ok(reserved) => reserved,
            Err(held) => {
                shared.emit(*held);
                continue;
            }
        };
        let template = match &plan.content {
            Content::Template { template_id, .. } => snapshot.templates.get(template_id).cloned(),
            _ => None,
        };
        let permit = match shared.room.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => match shared.room.clone().acquire_owned().await {
                Ok(p) => p,
                Err(_) => {
                    release_limit(shared, &account, reserved.as_ref());
                    shared.emit(Outcome::Requeue {
                        id: message.id,
                        next_attempt_at: None,
                    });
                    continue;
                }
            },
        };
        let about = about_of(
            shared,
            &message,
            Some(plan.to.as_str().to_owned()),
            Some(plan.account_id),
            plan.conversation_id,
            plan.lang,
        );
        let job = Job {
            message,
            plan,
            account,
            template,
            params,
            reserved,
            about,
        };
        tasks.spawn(send_task(shared.clone(), job, permit, shutdown.clone()));
    }
    if full {
        Step::Full(count)
    } else {
        Step::Partial(count)
    }
}

fn source_of(shared: &Shared, m: &Message) -> Option<Source> {
    let (model, id) = m.target_record()?;
    Some(Source {
        model,
        id,
        trigger: m.trigger.clone(),
        note: shared.settings().chatter_notes && m.campaign_id.is_none(),
    })
}

/// What the result of `m` records besides the result: its recipient, source document,
/// language, and the account and conversation it went through when it named none.
fn about_of(
    shared: &Shared,
    m: &Message,
    to: Option<String>,
    account_id: Option<i64>,
    conversation_id: Option<i64>,
    lang: Lang,
) -> About {
    About {
        to,
        source: source_of(shared, m),
        lang,
        account_id,
        write_account: m.account_id.is_none() && account_id.is_some(),
        conversation_id: conversation_id.filter(|_| m.conversation_id.is_none()),
    }
}

fn gate_outcome(
    shared: &Shared,
    snapshot: &Snapshot,
    m: &Message,
    failure: GateFailure,
    now: DateTime<Utc>,
) -> Outcome {
    if failure.is_retryable() {
        return Outcome::Requeue {
            id: m.id,
            next_attempt_at: Some(now + chrono_delta(shared.settings().paused_recheck)),
        };
    }
    let lang = snapshot.lang_of(m);
    let account = pick_account(snapshot, m).ok();
    let number = account.and_then(|a| recipient(snapshot, m, a).ok());
    let conversation = match (account, &number) {
        (Some(a), Some(to)) => snapshot.conversation_for(m, a.id, to).map(|c| c.id),
        _ => None,
    };
    let to = number
        .map(|e| e.into_string())
        .or_else(|| m.to_number.clone());
    Outcome::Failed {
        id: m.id,
        error: ErrorInfo {
            code: failure.kind.code().to_owned(),
            title: failure.kind.title(lang).to_owned(),
            details: None,
            help: failure.help,
            raw: None,
        },
        about: about_of(shared, m, to, account.map(|a| a.id), conversation, lang),
    }
}

// ----- Meta's daily messaging limit ------------------------------------------------------

/// Reads the customers reached in the last 24 hours (one `search_read` for every account of
/// the limited groups) when the count is older than `cache_ttl` and a planned message needs it.
async fn refresh_limits(
    shared: &Shared,
    snapshot: &Snapshot,
    planned: &[(Message, SendPlan)],
) -> Result<(), OdooError> {
    let groups: BTreeSet<String> = planned
        .iter()
        .filter(|(_, plan)| plan.outside_window)
        .filter_map(|(_, plan)| snapshot.accounts.get(&plan.account_id))
        .filter(|a| limit::account_limit(a).is_some())
        .map(limit::group_of)
        .collect();
    if groups.is_empty() {
        return Ok(());
    }
    let ttl = shared.settings().cache_ttl;
    let fresh = lock(&shared.limits)
        .read_at
        .is_some_and(|at| at.elapsed() < ttl);
    if fresh {
        return Ok(());
    }
    let account_ids: Vec<i64> = snapshot
        .accounts
        .values()
        .filter(|a| groups.contains(&limit::group_of(a)))
        .map(|a| a.id)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let now = Utc::now();
    let rows: Vec<Value> = shared
        .ctx
        .odoo
        .search_read(
            Message::MODEL,
            &limit::reach_domain(now, &account_ids),
            Reach::FIELDS,
            &SearchOptions::new(),
        )
        .await?;
    let reached: Vec<Reach> = rows.iter().filter_map(Reach::from_record).collect();
    let mut state = lock(&shared.limits);
    state.ledger.replace(&reached, &snapshot.accounts, now);
    state.read_at = Some(Instant::now());
    Ok(())
}

/// The messaging-limit check of a planned message: `Ok` with the place taken for a new
/// customer (if any), or the [`Outcome::Held`] of a message that must wait.
fn check_limit(
    shared: &Shared,
    account: &Account,
    plan: &SendPlan,
    now: DateTime<Utc>,
) -> Result<Option<(String, DateTime<Utc>)>, Box<Outcome>> {
    if !plan.outside_window {
        return Ok(None);
    }
    let Some(max) = limit::account_limit(account) else {
        return Ok(None);
    };
    let recipient = plan.to.digits().to_owned();
    let mut state = lock(&shared.limits);
    match state.ledger.decide(account, max, &recipient, now) {
        Decision::Send { new: false } => Ok(None),
        Decision::Send { new: true } => {
            state.ledger.reserve(account, &recipient, now);
            state.announced.remove(&account.id);
            Ok(Some((recipient, now)))
        }
        Decision::Hold { limit, until } => {
            if state.announced.insert(account.id) {
                tracing::warn!(
                    account = account.id,
                    name = %account.name,
                    limit,
                    until = %until,
                    "Meta's daily messaging limit is reached for this account's business: messages to new customers outside a window wait in the queue"
                );
            }
            Err(Box::new(Outcome::Held {
                id: plan.message_id,
                next_attempt_at: until,
                error: ErrorInfo {
                    code: "messaging_limit".to_owned(),
                    title: plan
                        .lang
                        .pick(
                            "Daily messaging limit reached",
                            "Limite quotidienne de messagerie atteinte",
                        )
                        .to_owned(),
                    details: None,
                    help: limit::hold_help(limit, account, until, plan.lang),
                    raw: None,
                },
            }))
        }
    }
}

fn release_limit(shared: &Shared, account: &Account, reserved: Option<&(String, DateTime<Utc>)>) {
    if let Some((recipient, at)) = reserved {
        lock(&shared.limits).ledger.release(account, recipient, *at);
    }
}

// ----- reading what the gates need -------------------------------------------------------

/// Gate failures that name a setting are checked again with accounts and templates read afresh
/// when those are older than this.
const SETTINGS_RECHECK: Duration = Duration::from_secs(2);

fn settings_older_than(shared: &Shared, age: Duration) -> bool {
    lock(&shared.caches)
        .accounts_at
        .is_none_or(|at| at.elapsed() >= age)
}

/// Reads the accounts and templates again (whatever their age) and what `messages` need.
async fn reread_settings(shared: &Shared, messages: &[Message]) -> Result<Snapshot, OdooError> {
    {
        let mut caches = lock(&shared.caches);
        caches.accounts_at = None;
        caches.templates.clear();
    }
    refresh_accounts(shared).await?;
    load_snapshot(shared, messages).await
}

async fn refresh_accounts(shared: &Shared) -> Result<(), OdooError> {
    let ttl = shared.settings().cache_ttl;
    let changed = shared.ctx.accounts_changed.take();
    let stale = changed
        || lock(&shared.caches)
            .accounts_at
            .is_none_or(|at| at.elapsed() >= ttl);
    if !stale {
        return Ok(());
    }
    let started = Instant::now();
    let rows: Vec<Value> = match shared
        .ctx
        .odoo
        .search_read(
            Account::MODEL,
            &Domain::all(),
            Account::FIELDS,
            &SearchOptions::new(),
        )
        .await
    {
        Ok(rows) => rows,
        Err(e) => {
            if changed {
                // Still to be read: keep the wake-up for the next poll.
                shared.ctx.accounts_changed.notifier().notify_one();
            }
            return Err(e);
        }
    };
    let accounts: HashMap<i64, Account> = rows
        .iter()
        .filter_map(|r| Account::from_record(r).ok())
        .map(|a| (a.id, a))
        .collect();
    {
        // A pause this process wrote and someone lifted since: resume.
        let mut paused = lock(&shared.paused);
        paused.retain(|id, state| {
            let resumed =
                state.written && state.at < started && accounts.get(id).is_some_and(|a| !a.paused);
            if resumed {
                tracing::info!(
                    account = id,
                    "the WhatsApp account was resumed; sending goes on"
                );
            }
            !resumed
        });
    }
    let mut caches = lock(&shared.caches);
    caches.accounts = accounts;
    caches.accounts_at = Some(Instant::now());
    Ok(())
}

async fn load_snapshot(shared: &Shared, messages: &[Message]) -> Result<Snapshot, OdooError> {
    let odoo = &shared.ctx.odoo;
    let ttl = shared.settings().cache_ttl;
    let mut snapshot = Snapshot {
        accounts: lock(&shared.caches).accounts.clone(),
        ..Snapshot::default()
    };

    // Companies (with their country code), cached.
    let wanted: BTreeSet<i64> = messages
        .iter()
        .filter_map(|m| m.company_id)
        .chain(snapshot.accounts.values().filter_map(|a| a.company_id))
        .collect();
    let missing: Vec<i64> = {
        let caches = lock(&shared.caches);
        wanted
            .iter()
            .copied()
            .filter(|id| {
                caches
                    .companies
                    .get(id)
                    .is_none_or(|(_, at)| at.elapsed() >= ttl * 20)
            })
            .collect()
    };
    if !missing.is_empty() {
        let companies = read_companies(odoo, &missing).await?;
        let mut caches = lock(&shared.caches);
        for c in companies {
            caches.companies.insert(c.id, (c, Instant::now()));
        }
    }

    // Templates: the messages' own and the accounts' window templates, cached.
    let mut template_ids: BTreeSet<i64> = messages.iter().filter_map(|m| m.template_id).collect();
    for a in snapshot.accounts.values() {
        template_ids.extend(
            [
                a.template_order_creation_id,
                a.template_invoice_posted_id,
                a.template_residual_change_id,
                a.template_unpaid_invoice_id,
                a.template_generic_id,
                a.template_document_id,
            ]
            .into_iter()
            .flatten(),
        );
    }
    let stale: Vec<i64> = {
        let caches = lock(&shared.caches);
        template_ids
            .iter()
            .copied()
            .filter(|id| {
                caches
                    .templates
                    .get(id)
                    .is_none_or(|(_, at)| at.elapsed() >= ttl)
            })
            .collect()
    };
    if !stale.is_empty() {
        let templates = read_templates(odoo, &stale).await?;
        let mut caches = lock(&shared.caches);
        for id in &stale {
            caches.templates.remove(id);
        }
        for t in templates {
            caches.templates.insert(t.id, (t, Instant::now()));
        }
    }
    {
        let caches = lock(&shared.caches);
        snapshot.companies = caches
            .companies
            .iter()
            .map(|(id, (c, _))| (*id, c.clone()))
            .collect();
        snapshot.templates = template_ids
            .iter()
            .filter_map(|id| caches.templates.get(id).map(|(t, _)| (*id, t.clone())))
            .collect();
    }

    // Partners: always fresh (consent).
    let partner_ids: Vec<i64> = messages
        .iter()
        .filter_map(|m| m.partner_id)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if !partner_ids.is_empty() {
        let rows: Vec<Value> = odoo
            .read(Partner::MODEL, &partner_ids, Partner::FIELDS)
            .await?;
        snapshot.partners = rows
            .iter()
            .filter_map(|r| Partner::from_record(r).ok())
            .map(|p| (p.id, p))
            .collect();
    }

    // The languages of the users who queued the messages (cached like the templates).
    snapshot.user_langs = user_langs(shared, messages).await?;

    // Conversations: the window decides free-form content, tells a reply from a
    // business-initiated message, and the result write links a message to the customer's
    // conversation when it has none yet. One search for the whole batch.
    let mut conversation_ids = BTreeSet::new();
    let mut wa_ids = BTreeSet::new();
    let mut account_ids = BTreeSet::new();
    for m in messages {
        if let Some(c) = m.conversation_id {
            conversation_ids.insert(c);
        }
        if let Ok(account) = pick_account(&snapshot, m) {
            if let Ok(to) = recipient(&snapshot, m, account) {
                wa_ids.insert(to.digits().to_owned());
                account_ids.insert(account.id);
            }
        }
    }
    if !conversation_ids.is_empty() || !wa_ids.is_empty() {
        let by_id = json!(["id", "in", conversation_ids.iter().collect::<Vec<_>>()]);
        let by_wa = [
            json!("&"),
            json!(["account_id", "in", account_ids.iter().collect::<Vec<_>>()]),
            json!(["wa_id", "in", wa_ids.iter().collect::<Vec<_>>()]),
        ];
        let mut terms = vec![json!("|"), by_id];
        terms.extend(by_wa);
        let rows: Vec<Value> = odoo
            .search_read(
                Conversation::MODEL,
                &Domain::from_terms(terms),
                Conversation::FIELDS,
                &SearchOptions::new(),
            )
            .await?;
        snapshot.conversations = rows
            .iter()
            .filter_map(|r| Conversation::from_record(r).ok())
            .map(|c| (c.id, c))
            .collect();
    }
    Ok(snapshot)
}

/// `res.users.lang` of the messages' authors: from the cache when read less than `cache_ttl`
/// ago, else in one `read` for the batch. A user that cannot be read (a right missing) counts
/// as having no language, and the log says so once.
async fn user_langs(
    shared: &Shared,
    messages: &[Message],
) -> Result<HashMap<i64, String>, OdooError> {
    let ttl = shared.settings().cache_ttl;
    let uids: BTreeSet<i64> = messages.iter().filter_map(|m| m.create_uid).collect();
    let stale: Vec<i64> = {
        let caches = lock(&shared.caches);
        uids.iter()
            .copied()
            .filter(|uid| {
                caches
                    .user_langs
                    .get(uid)
                    .is_none_or(|(_, at)| at.elapsed() >= ttl)
            })
            .collect()
    };
    if !stale.is_empty() {
        let read: HashMap<i64, Option<String>> = match shared
            .ctx
            .odoo
            .read::<Map<String, Value>>("res.users", &stale, &["lang"])
            .await
        {
            Ok(rows) => rows
                .iter()
                .filter_map(|r| {
                    Some((
                        super::model::integer(r, "id")?,
                        super::model::text(r, "lang"),
                    ))
                })
                .collect(),
            Err(e) if e.is_retryable() => return Err(e),
            Err(e) => {
                let mut caches = lock(&shared.caches);
                if !caches.user_langs_refused {
                    caches.user_langs_refused = true;
                    tracing::warn!(error = %e, "cannot read the language of the users who queue messages: notes and help texts are written in the company's language (else English); give the daemon's user read access to res.users");
                }
                HashMap::new()
            }
        };
        let mut caches = lock(&shared.caches);
        for uid in &stale {
            let lang = read.get(uid).cloned().flatten();
            caches.user_langs.insert(*uid, (lang, Instant::now()));
        }
    }
    let caches = lock(&shared.caches);
    Ok(uids
        .iter()
        .filter_map(|uid| {
            let (lang, _) = caches.user_langs.get(uid)?;
            Some((*uid, lang.clone()?))
        })
        .collect())
}

async fn read_companies(odoo: &OdooClient, ids: &[i64]) -> Result<Vec<Company>, OdooError> {
    let rows: Vec<Map<String, Value>> = odoo
        .read("res.company", ids, &["name", "country_id", "partner_id"])
        .await?;
    // The company's contact's language: the texts about a message whose author has none.
    let partner_ids: Vec<i64> = rows
        .iter()
        .filter_map(|r| super::model::many2one(r, "partner_id"))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let langs: HashMap<i64, String> = if partner_ids.is_empty() {
        HashMap::new()
    } else {
        let partners: Vec<Map<String, Value>> =
            odoo.read("res.partner", &partner_ids, &["lang"]).await?;
        partners
            .iter()
            .filter_map(|p| {
                Some((
                    super::model::integer(p, "id")?,
                    super::model::text(p, "lang")?,
                ))
            })
            .collect()
    };
    let country_ids: Vec<i64> = rows
        .iter()
        .filter_map(|r| super::model::many2one(r, "country_id"))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let codes: HashMap<i64, String> = if country_ids.is_empty() {
        HashMap::new()
    } else {
        let countries: Vec<Map<String, Value>> =
            odoo.read("res.country", &country_ids, &["code"]).await?;
        countries
            .iter()
            .filter_map(|c| {
                Some((
                    super::model::integer(c, "id")?,
                    super::model::text(c, "code")?,
                ))
            })
            .collect()
    };
    Ok(rows
        .iter()
        .filter_map(|r| {
            let id = super::model::integer(r, "id")?;
            Some(Company {
                id,
                name: super::model::text(r, "name").unwrap_or_default(),
                country_code: super::model::many2one(r, "country_id")
                    .and_then(|c| codes.get(&c).cloned()),
                lang: super::model::many2one(r, "partner_id").and_then(|p| langs.get(&p).cloned()),
            })
        })
        .collect())
}

async fn read_templates(odoo: &OdooClient, ids: &[i64]) -> Result<Vec<Template>, OdooError> {
    let rows: Vec<Value> = odoo.read(Template::MODEL, ids, Template::FIELDS).await?;
    let templates: Vec<Template> = rows
        .iter()
        .filter_map(|r| Template::from_record(r).ok())
        .collect();
    let variable_ids: Vec<i64> = templates
        .iter()
        .flat_map(|t| t.variable_ids.iter().copied())
        .collect();
    let variables: Vec<TemplateVariable> = if variable_ids.is_empty() {
        Vec::new()
    } else {
        let rows: Vec<Value> = odoo
            .read(
                TemplateVariable::MODEL,
                &variable_ids,
                TemplateVariable::FIELDS,
            )
            .await?;
        rows.iter()
            .filter_map(|r| TemplateVariable::from_record(r).ok())
            .collect()
    };
    Ok(templates
        .into_iter()
        .map(|t| t.with_variables(&variables))
        .collect())
}

/// The parameters of each planned template message (`None` when not a template, or given on
/// the message), walking the variables' field paths on the source records for the whole batch.
async fn render_params(
    shared: &Shared,
    snapshot: &Snapshot,
    planned: &[(Message, SendPlan)],
) -> Result<Vec<Result<Option<TemplateParams>, GateFailure>>, OdooError> {
    let mut requests = Vec::new();
    for (_, plan) in planned {
        if let Content::Template {
            template_id,
            params:
                ParamSource::Variables { record } | ParamSource::VariablesWithButtons { record, .. },
            ..
        } = &plan.content
        {
            if let Some(t) = snapshot.templates.get(template_id) {
                requests.extend(render::requests(t, record.as_ref()));
            }
        }
    }
    let mut walk = Walk::new(requests);
    let odoo = &shared.ctx.odoo;
    for _ in 0..=render::MAX_PATH_DEPTH {
        if walk.is_done() {
            break;
        }
        for (model, field) in walk.relations_needed() {
            let known = lock(&shared.caches)
                .relations
                .contains_key(&(model.clone(), field.clone()));
            if known {
                continue;
            }
            match odoo.fields_get(&model, &["type", "relation"]).await {
                Ok(fields) => {
                    let mut caches = lock(&shared.caches);
                    for (name, info) in fields {
                        caches
                            .relations
                            .insert((model.clone(), name), info.relation);
                    }
                    caches
                        .relations
                        .entry((model.clone(), field.clone()))
                        .or_insert(None);
                }
                Err(e) if e.is_retryable() => return Err(e),
                Err(e) => {
                    lock(&shared.caches)
                        .relations
                        .insert((model.clone(), field.clone()), None);
                    tracing::warn!(error = %e, model, "cannot read the fields of a model named by a template variable");
                }
            }
        }
        let mut records: HashMap<String, HashMap<i64, Map<String, Value>>> = HashMap::new();
        for read in walk.reads() {
            let fields: Vec<&str> = read.fields.iter().map(String::as_str).collect();
            match odoo
                .read::<Map<String, Value>>(&read.model, &read.ids, &fields)
                .await
            {
                Ok(rows) => {
                    let by_id = records.entry(read.model.clone()).or_default();
                    for row in rows {
                        if let Some(id) = super::model::integer(&row, "id") {
                            by_id.insert(id, row);
                        }
                    }
                }
                Err(e) if e.is_retryable() => return Err(e),
                Err(e) => walk.read_failed(&read.model, &e.to_string()),
            }
        }
        let relations = lock(&shared.caches).relations.clone();
        walk.advance(&records, |model, field| {
            relations
                .get(&(model.to_owned(), field.to_owned()))
                .cloned()
                .flatten()
        });
    }
    Ok(planned
        .iter()
        .map(|(_, plan)| match &plan.content {
            Content::Template {
                template_id,
                params,
                ..
            } => {
                let Some(t) = snapshot.templates.get(template_id) else {
                    return Ok(None);
                };
                match params {
                    ParamSource::Given(p) => Ok(Some(p.clone())),
                    ParamSource::Variables { record } => {
                        render::params_from_variables(t, record.as_ref(), &walk, plan.lang)
                            .map(Some)
                    }
                    ParamSource::VariablesWithButtons { record, buttons } => {
                        render::params_from_variables(t, record.as_ref(), &walk, plan.lang)
                            .map(|p| Some(render::with_buttons(p, buttons)))
                    }
                }
            }
            _ => Ok(None),
        })
        .collect())
}

// ----- sending ---------------------------------------------------------------------------

struct Job {
    message: Message,
    plan: SendPlan,
    account: Account,
    template: Option<Template>,
    params: Option<TemplateParams>,
    /// The messaging-limit place taken for a new customer (recipient key, when).
    reserved: Option<(String, DateTime<Utc>)>,
    /// What its result records besides the result.
    about: About,
}

async fn send_task(
    shared: Arc<Shared>,
    job: Job,
    permit: OwnedSemaphorePermit,
    shutdown: CancellationToken,
) {
    let outcome = send_one(&shared, &job, &shutdown).await;
    let metrics = &shared.ctx.metrics;
    match &outcome {
        Outcome::Sent { .. } => {
            metrics.message_sent(job.account.id, job.message.campaign_id.is_some());
        }
        Outcome::Retry { error, .. } => metrics.message_retry(job.account.id, &error.code),
        _ => {}
    }
    // Not sent and not coming back soon: the customer was not reached, the place is free.
    if matches!(outcome, Outcome::Failed { .. } | Outcome::Requeue { .. }) {
        release_limit(&shared, &job.account, job.reserved.as_ref());
    }
    shared.emit(outcome);
    drop(permit);
}

async fn send_one(shared: &Shared, job: &Job, shutdown: &CancellationToken) -> Outcome {
    let message = &job.message;
    let plan = &job.plan;
    let settings = shared.settings();
    let requeue = |at: Option<DateTime<Utc>>| Outcome::Requeue {
        id: message.id,
        next_attempt_at: at,
    };
    let paused_at = || Some(Utc::now() + chrono_delta(settings.paused_recheck));
    if shared.is_paused(job.account.id) {
        return requeue(paused_at());
    }
    let handle = job.account.handle();
    let to = plan.to.as_str().to_owned();
    let lang = plan.lang;
    let attempt = Attempt {
        id: message.id,
        attempt_count: message.attempt_count,
        about: job.about.clone(),
    };
    let fail = |f: GateFailure| Outcome::Failed {
        id: message.id,
        error: ErrorInfo {
            code: f.kind.code().to_owned(),
            title: f.kind.title(lang).to_owned(),
            details: None,
            help: f.help,
            raw: None,
        },
        about: job.about.clone(),
    };

    // The account's own settings (number id, token, Graph API version): a bad one pauses the
    // account and the message waits, as a refused send would, before any file is uploaded.
    if let Err(err) = handle.check_phone() {
        let (outcome, effect) =
            after_send_error(&err, &attempt, &settings.retry_policy(), Utc::now());
        if let Effect::PauseAccount { reason } = effect {
            pause_account(shared, &job.account, reason).await;
        }
        return outcome;
    }

    // Media.
    let media = match &plan.content {
        Content::Media {
            kind,
            source: src,
            filename,
            ..
        } => {
            let kind = match kind {
                MediaKind::Image => WaMediaKind::Image,
                MediaKind::Document => WaMediaKind::Document,
            };
            Some((kind, src, filename.as_deref()))
        }
        Content::Template {
            header_media: Some(src),
            filename,
            ..
        } => {
            let kind = match job.template.as_ref().map(|t| t.header_type.as_str()) {
                Some("image") => WaMediaKind::Image,
                Some("video") => WaMediaKind::Video,
                _ => WaMediaKind::Document,
            };
            Some((kind, src, filename.as_deref()))
        }
        _ => None,
    };
    let (media_ref, sent_media) = match media {
        None => (None, None),
        Some((kind, src, filename)) => {
            match resolve_media(shared, &handle, kind, src, filename, lang).await {
                Ok((r, sent)) => (Some(r), Some(sent)),
                Err(MediaFailure::Retry(e)) => {
                    let policy = settings.retry_policy();
                    return match policy.decide(message.attempt_count, None, Utc::now()) {
                        super::retry::RetryDecision::Retry {
                            attempt_count,
                            next_attempt_at,
                        } => Outcome::Retry {
                            id: message.id,
                            attempt_count,
                            next_attempt_at,
                            error: ErrorInfo {
                                code: "media".into(),
                                title: GateKind::Media.title(lang).into(),
                                details: None,
                                help: e.clone(),
                                raw: None,
                            },
                        },
                        super::retry::RetryDecision::GiveUp { attempt_count } => {
                            fail(GateFailure::new(
                                GateKind::Media,
                                policy.give_up_help(attempt_count, &e, lang),
                            ))
                        }
                    };
                }
                Err(MediaFailure::Final(f)) => return fail(f),
            }
        }
    };

    let ready = match (&plan.content, media_ref) {
        (Content::Text { body, preview_url }, _) => Ready::Text {
            body,
            preview_url: *preview_url,
        },
        (
            Content::Media {
                kind,
                caption,
                filename,
                ..
            },
            Some(media),
        ) => Ready::Media {
            kind: *kind,
            media,
            caption: caption.as_deref(),
            filename: filename.as_deref(),
        },
        (Content::Interactive(value), _) => Ready::Interactive(value),
        (Content::Template { filename, .. }, header_media) => {
            let (Some(template), Some(params)) = (job.template.as_ref(), job.params.as_ref())
            else {
                return fail(GateFailure::new(
                    GateKind::TemplateUnavailable,
                    lang.pick(
                        "The template of this message could not be read from Odoo: check that \
                         it exists and is active, then retry.",
                        "Le modèle de ce message n'a pas pu être lu dans Odoo : vérifiez qu'il \
                         existe et qu'il est actif, puis réessayez.",
                    ),
                ));
            };
            Ready::Template {
                template,
                params,
                header_media,
                filename: filename.as_deref(),
            }
        }
        (Content::Media { .. }, None) => {
            return fail(GateFailure::new(
                GateKind::NoMedia,
                lang.pick("The message has no file.", "Le message n'a pas de fichier."),
            ))
        }
    };
    let request = match compose::outbound(message.id, &to, ready, plan.reply_to.as_deref(), lang) {
        Ok(r) => r,
        Err(f) => return fail(f),
    };

    // Pace last, so the recipient's slot is taken right before the send.
    let paced = tokio::select! {
        _ = shutdown.cancelled() => return requeue(None),
        r = shared.pacer.acquire(job.account.id, job.account.throughput_mps, plan.to.digits(), settings.max_pair_hold) => r,
    };
    if let Err(wait) = paced {
        return requeue(Some(Utc::now() + chrono_delta(wait)));
    }
    let Ok(_slot) = shared.send_slots.acquire().await else {
        return requeue(None);
    };
    if shutdown.is_cancelled() {
        return requeue(None);
    }
    if shared.is_paused(job.account.id) {
        return requeue(paused_at());
    }
    if !shared.ctx.lease.holds() {
        // The lease could not be renewed in time (Odoo away): wait until Odoo gives it back
        // under the same epoch (nobody else sent meanwhile). Another daemon holding it: not
        // sent, and left `sending` for that daemon to reconcile.
        let held = tokio::select! {
            _ = shutdown.cancelled() => false,
            held = shared.ctx.lease.until_held() => held,
        };
        if !held || !shared.ctx.lease.holds() {
            return Outcome::Left { id: message.id };
        }
    }
    match shared.ctx.whatsapp.send_message(&handle, &request).await {
        Ok(resp) => Outcome::Sent {
            id: message.id,
            wamid: resp.wamid().to_owned(),
            sent_at: Utc::now(),
            wa_id: resp.wa_id().map(str::to_owned),
            to_e164: plan.write_e164.then(|| to.clone()),
            rewrite: rewrite_of(job).map(Box::new),
            media: sent_media.map(Box::new),
            clear_error: message.error_code.is_some()
                || message.attempt_count > 0
                || message.failed_at.is_some(),
            about: job.about.clone(),
        },
        Err(err) => {
            let (outcome, effect) =
                after_send_error(&err, &attempt, &settings.retry_policy(), Utc::now());
            match effect {
                Effect::None => {}
                Effect::SlowDown => {
                    shared.ctx.metrics.pacing_slowdown(job.account.id, 130429);
                    shared.pacer.throughput_exceeded(job.account.id);
                }
                Effect::HoldRecipient => {
                    shared.ctx.metrics.pacing_slowdown(job.account.id, 131056);
                    shared.pacer.pair_rate_hit(job.account.id, plan.to.digits());
                }
                Effect::PauseAccount { reason } => {
                    pause_account(shared, &job.account, reason).await
                }
            }
            if matches!(outcome, Outcome::Unknown { .. }) {
                tracing::warn!(message = message.id, error = %err, "the answer to a send was lost; the message stays 'sending' until a status proves it or the reconcile delay passes");
            } else {
                tracing::debug!(message = message.id, error = %err, outcome = outcome.label(), "send failed");
            }
            outcome
        }
    }
}

/// What the record says instead of the typed content when an account template replaced it
/// outside the window: the template, its filled-in text, the original wording and type.
fn rewrite_of(job: &Job) -> Option<Rewrite> {
    if !job.plan.window_template {
        return None;
    }
    let template = job.template.as_ref()?;
    let message = &job.message;
    let label = format!("{} ({})", template.name, template.language);
    let body = job
        .params
        .as_ref()
        .and_then(|p| compose::rendered_text(template, p))
        .unwrap_or_else(|| label.clone());
    // The typed text, or the caption; an interactive message's text is in its JSON.
    let original_body = message
        .body
        .clone()
        .filter(|b| !b.trim().is_empty())
        .or_else(|| {
            let json: Value = serde_json::from_str(message.interactive_json.as_deref()?).ok()?;
            json["body"]["text"].as_str().map(str::to_owned)
        });
    Some(Rewrite {
        template_id: template.id,
        template_label: label,
        body,
        original_body,
        original_type: message.message_type.clone(),
    })
}

enum MediaFailure {
    Retry(String),
    Final(GateFailure),
}

/// The file of a message as the request names it, and what the record keeps of it (Meta's
/// media id, MIME type, file name; a rendered report's PDF, to attach to its document).
async fn resolve_media(
    shared: &Shared,
    handle: &AccountHandle,
    kind: WaMediaKind,
    source: &MediaSource,
    filename: Option<&str>,
    lang: Lang,
) -> Result<(MediaRef, SentMedia), MediaFailure> {
    let odoo = &shared.ctx.odoo;
    let odoo_failure = |what: String, e: OdooError| {
        if e.is_retryable() {
            MediaFailure::Retry(tr!(
                lang,
                "{what} could not be read from Odoo ({e}); retried shortly.",
                "{what} n'a pas pu être lu dans Odoo ({e}) ; nouvel essai sous peu."
            ))
        } else {
            MediaFailure::Final(GateFailure::new(
                GateKind::Media,
                tr!(
                    lang,
                    "{what} could not be read from Odoo: {e}",
                    "{what} n'a pas pu être lu dans Odoo : {e}"
                ),
            ))
        }
    };
    let mut report_of = None;
    let (bytes, mime, name) = match source {
        MediaSource::Id(id) => {
            let sent = SentMedia {
                filename: filename.map(str::to_owned),
                ..SentMedia::default()
            };
            return Ok((MediaRef::Id(id.clone()), sent));
        }
        MediaSource::Url(url) => {
            let sent = SentMedia {
                filename: filename.map(str::to_owned),
                ..SentMedia::default()
            };
            return Ok((MediaRef::Link(url.clone()), sent));
        }
        MediaSource::Report { report, model, id } => {
            let pdf = odoo.report_pdf(report, &[*id]).await.map_err(|e| {
                let what = tr!(
                    lang,
                    "The PDF of {model} {id} (report {report})",
                    "Le PDF de {model} {id} (rapport {report})"
                );
                odoo_failure(what, e)
            })?;
            let name = filename
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{}-{id}.pdf", model.replace('.', "_")));
            report_of = Some((model.clone(), *id));
            (pdf, "application/pdf".to_owned(), name)
        }
        MediaSource::Attachment(id) => {
            let rows: Vec<Map<String, Value>> = odoo
                .read("ir.attachment", &[*id], &["name", "mimetype", "datas"])
                .await
                .map_err(|e| {
                    odoo_failure(tr!(lang, "The attachment {id}", "La pièce jointe {id}"), e)
                })?;
            let Some(row) = rows.first() else {
                return Err(MediaFailure::Final(GateFailure::new(
                    GateKind::Media,
                    tr!(
                        lang,
                        "The attachment {id} of the message no longer exists: attach the file \
                         again.",
                        "La pièce jointe {id} du message n'existe plus : joignez de nouveau le \
                         fichier."
                    ),
                )));
            };
            let data = super::model::text(row, "datas").unwrap_or_default();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .map_err(|e| {
                    MediaFailure::Final(GateFailure::new(
                        GateKind::Media,
                        tr!(
                            lang,
                            "The attachment {id} has no readable content ({e}): attach the file \
                             again.",
                            "La pièce jointe {id} n'a pas de contenu lisible ({e}) : joignez de \
                             nouveau le fichier."
                        ),
                    ))
                })?;
            let mime = super::model::text(row, "mimetype")
                .unwrap_or_else(|| "application/octet-stream".into());
            let name = filename
                .map(str::to_owned)
                .or_else(|| super::model::text(row, "name"))
                .unwrap_or_default();
            (bytes::Bytes::from(bytes), mime, name)
        }
    };
    let upload = MediaUpload::new(kind, &mime, name, bytes).map_err(|e| {
        MediaFailure::Final(GateFailure::new(
            GateKind::Media,
            tr!(
                lang,
                "The file cannot be sent by WhatsApp: {e}.",
                "Le fichier ne peut pas être envoyé par WhatsApp : {e}."
            ),
        ))
    })?;
    match shared
        .ctx
        .whatsapp
        .upload_media_cached(
            handle,
            &shared.ctx.media_cache,
            &upload,
            std::time::Instant::now(),
        )
        .await
    {
        Ok(up) => {
            let report = report_of.map(|(res_model, res_id)| ReportFile {
                pdf: upload.bytes().clone(),
                sha256: upload.sha256().to_owned(),
                name: upload.file_name().to_owned(),
                res_model,
                res_id,
            });
            let sent = SentMedia {
                media_id: Some(up.media_id.clone()),
                mime_type: Some(upload.mime_type().to_owned()),
                filename: Some(upload.file_name().to_owned()),
                report,
            };
            Ok((MediaRef::Id(up.media_id), sent))
        }
        Err(e) if e.is_retryable() => Err(MediaFailure::Retry(e.help_in(lang))),
        Err(e) => Err(MediaFailure::Final(GateFailure::new(
            GateKind::Media,
            e.help_in(lang),
        ))),
    }
}

/// Marks the account paused in memory at once (every other send of it stops) and in Odoo once.
async fn pause_account(shared: &Shared, account: &Account, reason: String) {
    {
        let mut paused = lock(&shared.paused);
        if paused.contains_key(&account.id) {
            return;
        }
        paused.insert(
            account.id,
            PauseState {
                written: false,
                at: Instant::now(),
            },
        );
    }
    tracing::error!(account = account.id, name = %account.name, reason = %reason, "sending from this WhatsApp account is paused until someone fixes the cause and clicks 'Resume' on the account");
    let values = json!({
        "paused": true,
        "paused_reason": reason,
        "paused_at": format_datetime(Utc::now()),
    });
    let mut delay = Duration::from_millis(500);
    for _ in 0..8 {
        match shared
            .ctx
            .odoo
            .write(Account::MODEL, &[account.id], &values)
            .await
        {
            Ok(()) => {
                if let Some(state) = lock(&shared.paused).get_mut(&account.id) {
                    state.written = true;
                    state.at = Instant::now();
                }
                return;
            }
            Err(e) if e.is_retryable() => {
                tracing::debug!(error = %e, "writing the account pause; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
            Err(e) => {
                tracing::error!(account = account.id, error = %e, "could not mark the WhatsApp account paused in Odoo; it stays paused in this process");
                return;
            }
        }
    }
}

// ----- crash safety ----------------------------------------------------------------------

async fn reconcile_loop(shared: Arc<Shared>, shutdown: CancellationToken) {
    let delay = shared.settings().reconcile_delay;
    let every = (delay / 4).clamp(Duration::from_secs(1), Duration::from_secs(30));
    loop {
        if let Err(e) = reconcile_once(&shared).await {
            tracing::debug!(error = %e, "reconciling 'sending' messages failed; tried again later");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

async fn reconcile_once(shared: &Shared) -> Result<usize, OdooError> {
    if !shared.ctx.lease.holds() {
        // Messages left in 'sending' are the lease holder's to reconcile.
        return Ok(0);
    }
    let now = Utc::now();
    let delay = shared.settings().reconcile_delay;
    let cutoff = format_datetime(now - chrono_delta(delay));
    let domain = Domain::from_terms(vec![
        json!(["state", "=", "sending"]),
        json!(["direction", "=", "out"]),
        json!("|"),
        json!(["claimed_at", "=", false]),
        json!(["claimed_at", "<=", cutoff]),
    ]);
    let rows: Vec<Value> = shared
        .ctx
        .odoo
        .search_read(
            Message::MODEL,
            &domain,
            Message::FIELDS,
            &SearchOptions::new().limit(1000).order("id asc"),
        )
        .await?;
    let messages: Vec<Message> = rows
        .iter()
        .filter_map(|r| Message::from_record(r).ok())
        .collect();
    let settled_from = *lock(&shared.settled_from);
    let mut outcomes = reconcile(&messages, now, settled_from, delay, |id| shared.held(id));
    // The proof of a send is a status webhook, applied by the inbound processor. While it has
    // received events it has not read yet (a backlog after a restart or under load), one of
    // them may be that proof: requeue nothing until it has caught up with the events stored
    // up to half the reconcile delay ago. (A proof comes seconds after the send, and these
    // messages were claimed a whole delay ago; "every event read" would never hold while
    // statuses stream in, and the requeue would wait for the stream to end.)
    if outcomes
        .iter()
        .any(|o| matches!(o, Outcome::Requeue { .. }))
    {
        let backlog = shared
            .ctx
            .odoo
            .search_count(
                WEBHOOK_EVENT_MODEL,
                &unread_webhook_events(now - chrono_delta(delay / 2)),
            )
            .await?;
        if backlog > 0 {
            tracing::debug!(
                backlog,
                "requeueing of 'sending' messages postponed: webhook events not processed yet may prove them sent"
            );
            outcomes.retain(|o| !matches!(o, Outcome::Requeue { .. }));
        }
    }
    let n = outcomes.len();
    if n > 0 {
        tracing::info!(count = n, "reconciled messages left in 'sending' (proven sent, or requeued after the reconcile delay without proof)");
    }
    // Held until written, so the next round does not repeat them.
    shared
        .ctx
        .in_flight
        .insert_all(outcomes.iter().map(Outcome::id));
    for o in outcomes {
        shared.emit(o);
    }
    Ok(n)
}

/// Where the webhook receiver stores Meta's events for the inbound processor.
const WEBHOOK_EVENT_MODEL: &str = "whatsapp.webhook.event";

/// Stored events the inbound processor has not read yet, stored up to `before` (those it waits
/// on carry their reason in `processing_error` and are not a backlog).
fn unread_webhook_events(before: DateTime<Utc>) -> Domain {
    Domain::leaf("processed", "=", false)
        .and("processing_error", "=", false)
        .and("create_date", "<=", format_datetime(before))
}

// ----- write-back ------------------------------------------------------------------------

async fn writer_loop(
    ctx: OutboxContext,
    mut rx: mpsc::UnboundedReceiver<Outcome>,
    shutdown: CancellationToken,
) {
    let settings = ctx.settings.clone();
    let mut buffer: Vec<Outcome> = Vec::new();
    let mut closed = false;
    let mut next_flush = Instant::now() + settings.flush_interval;
    let mut failures: u32 = 0;
    let mut side = SideState::default();
    loop {
        if !closed && buffer.len() < settings.batch_size {
            tokio::select! {
                received = rx.recv() => match received {
                    Some(o) => {
                        buffer.push(o);
                        // Take whatever else is already there.
                        while buffer.len() < settings.batch_size {
                            match rx.try_recv() {
                                Ok(o) => buffer.push(o),
                                Err(_) => break,
                            }
                        }
                        if Instant::now() < next_flush && buffer.len() < settings.batch_size {
                            continue;
                        }
                    }
                    None => closed = true,
                },
                _ = tokio::time::sleep_until(next_flush) => {}
            }
        }
        if buffer.is_empty() {
            if closed {
                return;
            }
            next_flush = Instant::now() + settings.flush_interval;
            continue;
        }
        match flush(&ctx, &buffer, &mut side).await {
            Ok(()) => {
                failures = 0;
                buffer.clear();
                next_flush = Instant::now() + settings.flush_interval;
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                ctx.stats.odoo_errors.fetch_add(1, Ordering::Relaxed);
                if failures == 1 {
                    tracing::warn!(error = %e, pending = buffer.len(), "cannot write results to Odoo; they are kept and written when Odoo answers");
                }
                let wait = Duration::from_millis(250)
                    .saturating_mul(2u32.saturating_pow(failures.min(7)))
                    .min(Duration::from_secs(30));
                if closed && shutdown.is_cancelled() && failures > 20 {
                    tracing::error!(pending = buffer.len(), "giving up writing results at shutdown: those messages stay 'sending' and are reconciled at the next start");
                    return;
                }
                tokio::time::sleep(wait).await;
                next_flush = Instant::now();
            }
        }
    }
}

/// After Odoo refused the result of message `id`: writes only its state and wamid, so a message
/// Meta accepted is not left in `sending` (where the reconciliation could send it again), and
/// says in the log what was lost. Fails only with a retryable error.
async fn write_essentials(
    odoo: &OdooClient,
    id: i64,
    values: &Map<String, Value>,
    refused: &OdooError,
) -> Result<(), OdooError> {
    let wamid = values
        .get("wamid")
        .and_then(Value::as_str)
        .unwrap_or("none");
    let Some(essential) = writeback::essential_values(values) else {
        tracing::error!(message = id, wamid, error = %refused, "Odoo refused the result of this message; it stays 'sending' and is reconciled after the reconcile delay");
        return Ok(());
    };
    match odoo.write(Message::MODEL, &[id], &essential).await {
        Ok(()) => {
            tracing::error!(message = id, wamid, error = %refused, "Odoo refused the full result of this message; only its state and wamid were written (the other fields, e.g. sent_at, stay empty): look at the error");
            Ok(())
        }
        Err(e) if e.is_retryable() => Err(e),
        Err(e) => {
            tracing::error!(message = id, wamid, error = %refused, essentials_error = %e, "Odoo refused the result of this message, even its state and wamid alone; it stays 'sending' and is reconciled after the reconcile delay (if it was sent, Meta's status webhook carrying its id proves it)");
            Ok(())
        }
    }
}

/// What the writer remembers between flushes about the best-effort writes.
#[derive(Default)]
struct SideState {
    /// The id of `mail.mt_note` (`Some(None)`: looked up, not found).
    note_subtype: Option<Option<i64>>,
    warned: std::collections::HashSet<&'static str>,
    /// Attachments created for the sent reports of the flush under way, by message id.
    attachments: HashMap<i64, i64>,
}

impl SideState {
    fn problem(&mut self, kind: &'static str, message: String) {
        if self.warned.insert(kind) {
            tracing::warn!("{message}");
        } else {
            tracing::debug!("{message}");
        }
    }
}

/// Writes one batch of outcomes. Fails only with an error worth retrying the whole batch for.
async fn flush(
    ctx: &OutboxContext,
    outcomes: &[Outcome],
    side: &mut SideState,
) -> Result<(), OdooError> {
    let now = Utc::now();
    let odoo = &ctx.odoo;
    // The reports sent, kept as attachments of their documents (one create for the flush), so
    // the result write can link them. Created once even when the flush is retried.
    let reports: Vec<(Vec<i64>, Map<String, Value>)> = writeback::report_attachments(outcomes)
        .into_iter()
        .filter(|(messages, _)| !messages.iter().all(|m| side.attachments.contains_key(m)))
        .collect();
    if !reports.is_empty() {
        let values: Vec<Map<String, Value>> = reports.iter().map(|(_, v)| v.clone()).collect();
        match odoo.create_many("ir.attachment", &values).await {
            Ok(ids) => {
                for ((messages, _), attachment) in reports.iter().zip(ids) {
                    for m in messages {
                        side.attachments.insert(*m, attachment);
                    }
                }
            }
            Err(e) if e.is_retryable() => return Err(e),
            Err(e) => side.problem(
                "attachments",
                format!(
                    "could not keep {} sent PDFs as attachments of their documents (the \
                     messages are written without them): {e}",
                    reports.len()
                ),
            ),
        }
    }
    let mut updates = writeback::message_updates(outcomes, now, &side.attachments);
    if !ctx.lease.holds() {
        // Without the lease, a message is never put back in the queue: the new leader may have
        // reconciled it already. It stays `sending` for that daemon to reconcile.
        let before = updates.len();
        updates.retain(|(_, values)| values.get("state").and_then(Value::as_str) != Some("queued"));
        if updates.len() < before {
            tracing::warn!(
                messages = before - updates.len(),
                "this daemon no longer holds the sending lease: messages it claimed and did not \
                 send stay 'sending' for the lease's holder to reconcile"
            );
        }
    }
    if !updates.is_empty() {
        match odoo.write_each(Message::MODEL, &updates).await {
            Ok(_) => {}
            Err(e) if e.is_retryable() => return Err(e),
            Err(e) => {
                // One bad record must not hold the others: write them one by one.
                tracing::warn!(error = %e, "a batched result write was refused; writing the records one by one");
                for (id, values) in &updates {
                    match odoo.write(Message::MODEL, &[*id], values).await {
                        Ok(()) => {}
                        Err(e) if e.is_retryable() => return Err(e),
                        Err(e) => write_essentials(odoo, *id, values, &e).await?,
                    }
                }
            }
        }
    }
    ctx.in_flight.remove_all(outcomes.iter().map(Outcome::id));
    for o in outcomes {
        side.attachments.remove(&o.id());
    }
    ctx.stats.flushes.fetch_add(1, Ordering::Relaxed);
    let summary = writeback::Summary::of(outcomes);
    tracing::info!(
        results = %summary.counts_text(),
        accounts = %summary.accounts_text(),
        "outbox results written to Odoo"
    );

    // Indicators on the source documents, then chatter notes: best effort, logged (a warning
    // the first time each goes wrong, then at debug level, so a missing right does not flood
    // the log).
    for (model, ids, values) in writeback::source_flags(outcomes, now) {
        if let Err(e) = odoo.write(&model, &ids, &values).await {
            side.problem(
                "indicators",
                format!("could not set the WhatsApp indicators on {model} records: {e}"),
            );
        }
    }
    if ctx.settings.chatter_notes {
        let notes = writeback::chatter_notes(outcomes);
        if !notes.is_empty() {
            if side.note_subtype.is_none() {
                side.note_subtype = Some(note_subtype_id(odoo).await);
            }
            match side.note_subtype.flatten() {
                Some(subtype) => {
                    let values: Vec<Map<String, Value>> = notes
                        .iter()
                        .map(|n| writeback::note_values(n, subtype))
                        .collect();
                    if let Err(e) = odoo.create_many("mail.message", &values).await {
                        side.problem("notes", format!("could not post {} chatter notes of sent/failed WhatsApp messages: {e}", notes.len()));
                    }
                }
                None => side.problem(
                    "notes",
                    "chatter notes are not posted: the 'mail.mt_note' subtype cannot be read (ir.model.data)".to_owned(),
                ),
            }
        }
    }
    Ok(())
}

async fn note_subtype_id(odoo: &OdooClient) -> Option<i64> {
    let domain = Domain::leaf("module", "=", "mail")
        .and("name", "=", "mt_note")
        .and("model", "=", "mail.message.subtype");
    let rows: Vec<Map<String, Value>> = odoo
        .search_read(
            "ir.model.data",
            &domain,
            &["res_id"],
            &SearchOptions::new().limit(1),
        )
        .await
        .ok()?;
    rows.first()
        .and_then(|r| super::model::integer(r, "res_id"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_follow_the_accounts_throughput_within_the_settings() {
        // 80 msg/s: about a second per claim, four seconds in flight.
        let l = ClaimLimits::new(500, 1000, 80);
        assert_eq!((l.batch, l.in_flight, l.worth_it()), (80, 320, 80));
        // 1,000 msg/s (or two numbers at 500): the settings cap it.
        let l = ClaimLimits::new(500, 1000, 1000);
        assert_eq!((l.batch, l.in_flight, l.worth_it()), (500, 1000, 500));
        // No account known yet, or a slower test number: Meta's lowest throughput, 80.
        assert_eq!(
            ClaimLimits::new(500, 1000, 0),
            ClaimLimits::new(500, 1000, 80)
        );
        assert_eq!(
            ClaimLimits::new(500, 1000, 10),
            ClaimLimits::new(500, 1000, 80)
        );
        // Settings smaller than the rate win; a batch never exceeds the in-flight room.
        let l = ClaimLimits::new(50, 30, 1000);
        assert_eq!((l.batch, l.in_flight, l.worth_it()), (30, 30, 15));
    }
    use chrono::TimeZone;

    #[test]
    fn due_messages_are_queued_outbound_and_not_scheduled_later() {
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        assert_eq!(
            due_domain(now, &[]).to_value(),
            json!([
                ["state", "=", "queued"],
                ["direction", "=", "out"],
                "|",
                ["next_attempt_at", "=", false],
                ["next_attempt_at", "<=", "2026-03-01 12:00:00"],
                // A campaign's messages only while it runs (Pause and Cancel stop them).
                "|",
                ["campaign_id", "=", false],
                ["campaign_id.state", "=", "running"]
            ])
        );
        let with_paused = due_domain(now, &[3, 4]).to_value();
        assert_eq!(with_paused[8], json!(["account_id", "not in", [3, 4]]));
    }
}
