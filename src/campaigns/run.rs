//! The campaign loop: the only part of the campaign engine that talks to Odoo.
//!
//! Each [`step`] reads the campaigns that need the daemon (a queue to generate, scheduled,
//! running, paused, or finished in the last day), and:
//!
//! 1. generates queues, a few pages of the audience per step (so one big audience never holds
//!    up the other campaigns' Pause or Resume);
//! 2. starts scheduled campaigns whose time came, resumes those paused until the next day of
//!    the messaging tier, withdraws the queued messages of cancelled ones;
//! 3. pauses running campaigns whose template, account or recent sends say so;
//! 4. queues the messages of the due recipients of running campaigns, within their throttle,
//!    daily cap and "a few seconds ahead", after checking opt-in, send window and the step's
//!    condition;
//! 5. every `kpi_interval`: recipient states follow their messages, the failure ratio and
//!    Meta's errors are checked, KPIs are written (one `read_group` per campaign), and a
//!    campaign with nothing left to send is done;
//! 6. replies (inbound messages since the last one seen) set the recipients' `replied_at`, and
//!    an opt-out ends the recipient's campaign.
//!
//! It returns a [`Step`] the loop acts on.

use super::audience::{self, Contact, Numbers, Tally, Verdict};
use super::model::{self, dedupe_key, Campaign, Recipient, Row, Step as StepRow};
use super::pace::{self, Pace};
use super::plan::{self, Due, Health, Kpis, RecipientState, StepInfo, ACTIVE_STATES};
use super::window::{self, Opening};
use super::{domain, CampaignsSettings};
use crate::enqueue::{enqueue, EnqueueError};
use crate::lang::Lang;
use crate::odoo::{format_datetime, Domain, OdooClient, OdooError, SearchOptions};
use chrono::{DateTime, Duration as TimeDelta, Utc};
use chrono_tz::Tz;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const MESSAGE: &str = "whatsapp.message";
const CURSOR_MODEL: &str = "whatsapp.cursor";
/// The `whatsapp.cursor` holding the last inbound message id looked at for replies.
pub const REPLY_CURSOR: &str = "campaign.replies";
/// Priority of campaign messages (`whatsapp.message.priority`): below the default of 10, so
/// transactional messages go first.
pub const CAMPAIGN_PRIORITY: i64 = 0;
/// Companies and users are read again after this long.
const CACHE_TTL: Duration = Duration::from_secs(60);
/// A generation works at most this long per step before letting the other campaigns run.
const GENERATION_SLICE: Duration = Duration::from_millis(800);
/// The last sends the failure ratio is computed on.
const FAILURE_SAMPLE: u64 = 200;

/// What the engine needs. Cheap to clone.
#[derive(Clone)]
pub struct CampaignsContext {
    pub odoo: OdooClient,
    pub settings: CampaignsSettings,
    pub stats: Arc<CampaignsStats>,
    /// Woken by Odoo's bus when a campaign is started, paused, resumed, cancelled or its queue
    /// asked for; while the bus is up and no campaign runs or is due to, polls are slow.
    pub bus: crate::poll::Wake,
}

impl CampaignsContext {
    pub fn new(odoo: OdooClient, settings: CampaignsSettings) -> CampaignsContext {
        CampaignsContext {
            odoo,
            settings,
            stats: Arc::new(CampaignsStats::default()),
            bus: crate::poll::Wake::default(),
        }
    }
}

/// Counters, for logs and benchmarks.
#[derive(Debug, Default)]
pub struct CampaignsStats {
    pub steps: AtomicU64,
    pub recipients_created: AtomicU64,
    pub messages_queued: AtomicU64,
    pub kpi_writes: AtomicU64,
    pub pauses: AtomicU64,
}

/// A queue being generated.
struct Generation {
    /// The audience domain (filter and tags), parsed.
    domain: Domain,
    /// The last contact id read.
    after: i64,
    /// Contacts already in the campaign (any state): left as they are.
    known: HashSet<i64>,
    numbers: Numbers,
    already: u64,
    tally: Tally,
    region: Option<String>,
    lang: Lang,
}

/// What survives from one step to the next.
#[derive(Default)]
pub struct CampaignsState {
    paces: HashMap<i64, Pace>,
    generating: HashMap<i64, Generation>,
    /// When each campaign was first seen running by this process (errors older than this are
    /// not its business).
    running_since: HashMap<i64, DateTime<Utc>>,
    last_kpi: Option<Instant>,
    cancelled_done: HashSet<i64>,
    reply_cursor: Option<(Option<i64>, i64)>,
    companies: HashMap<i64, CompanyInfo>,
    companies_at: Option<Instant>,
    users: HashMap<i64, Lang>,
    users_at: Option<Instant>,
    /// When the next campaign needs this loop on its own: `Some(ZERO)` while one runs, the
    /// time to a scheduled start or an automatic resume, `None` when none waits.
    next_due: Option<Duration>,
}

#[derive(Debug, Clone, Default)]
struct CompanyInfo {
    country_code: Option<String>,
    tz: Option<String>,
}

/// What one step did.
#[derive(Debug)]
pub enum Step {
    /// Nothing to do now.
    Idle,
    /// Work was done and more is waiting (a queue being generated, due recipients left).
    More,
    /// Work was done.
    Done,
    /// Odoo failed.
    Failed(StepError),
}

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("{0}")]
    Odoo(#[from] OdooError),
    #[error("{0}")]
    Enqueue(#[from] EnqueueError),
}

impl StepError {
    pub fn is_retryable(&self) -> bool {
        match self {
            StepError::Odoo(e) => e.is_retryable(),
            StepError::Enqueue(e) => e.is_retryable(),
        }
    }
}

/// Runs until `shutdown`.
pub async fn run(ctx: CampaignsContext, shutdown: CancellationToken) {
    let mut state = CampaignsState::default();
    let mut failures: u32 = 0;
    tracing::info!(
        poll_interval = ?ctx.settings.poll_interval,
        kpi_interval = ?ctx.settings.kpi_interval,
        "campaigns started"
    );
    loop {
        let step = tokio::select! {
            _ = shutdown.cancelled() => break,
            step = step(&ctx, &mut state) => step,
        };
        let wait = match step {
            Step::More => {
                failures = 0;
                Duration::ZERO
            }
            Step::Idle => {
                failures = 0;
                match state.next_due {
                    // A running campaign is paced by this loop: its own rate.
                    Some(due) if due.is_zero() => ctx.settings.poll_interval,
                    due => ctx.bus.idle_pause(ctx.settings.poll_interval, due),
                }
            }
            Step::Done => {
                failures = 0;
                ctx.settings.poll_interval
            }
            Step::Failed(err) => {
                failures = failures.saturating_add(1);
                let wait = ctx
                    .settings
                    .poll_interval
                    .saturating_mul(1 << failures.min(5))
                    .min(Duration::from_secs(60));
                if err.is_retryable() {
                    tracing::warn!(error = %err, retry_in = ?wait, "campaigns: Odoo failed; trying again");
                } else {
                    tracing::error!(error = %err, retry_in = ?wait, "campaigns: a call was refused; trying again later");
                }
                wait
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ctx.bus.pause(wait, failures > 0) => {}
        }
    }
    tracing::info!("campaigns stopped");
}

/// How long after a campaign ended its KPIs keep their own rate (late statuses and replies
/// come within minutes); after that they follow the idle polls.
const KPI_TAIL: TimeDelta = TimeDelta::minutes(10);

/// When the campaigns need the loop on their own (see [`CampaignsState`]'s `next_due`): at
/// once while one runs, at a scheduled start or automatic resume, and every `kpi_interval`
/// for the KPIs of one that ended in the last ten minutes.
fn next_due(
    campaigns: &[Campaign],
    now: DateTime<Utc>,
    kpi_interval: Duration,
) -> Option<Duration> {
    campaigns
        .iter()
        .filter_map(|c| match c.state.as_str() {
            "running" => Some(Duration::ZERO),
            "scheduled" => Some(until(c.scheduled_at.unwrap_or(now), now)),
            "paused" => c.auto_resume_at.map(|at| until(at, now)),
            "done" | "cancelled" if c.finished_at.is_some_and(|f| now - f < KPI_TAIL) => {
                Some(kpi_interval)
            }
            _ => None,
        })
        .min()
}

fn until(at: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (at - now).to_std().unwrap_or_default()
}

/// One round over the campaigns.
pub async fn step(ctx: &CampaignsContext, state: &mut CampaignsState) -> Step {
    ctx.stats.steps.fetch_add(1, Ordering::Relaxed);
    match round(ctx, state).await {
        Ok(more) => more,
        Err(e) => Step::Failed(e),
    }
}

async fn round(ctx: &CampaignsContext, state: &mut CampaignsState) -> Result<Step, StepError> {
    let odoo = &ctx.odoo;
    let now = Utc::now();
    let domain = Domain::from_terms(vec![
        json!("|"),
        json!(["queue_requested", "=", true]),
        json!("|"),
        json!(["state", "in", ["scheduled", "running", "paused"]]),
        json!([
            "finished_at",
            ">=",
            format_datetime(now - TimeDelta::days(1))
        ]),
    ]);
    let rows: Vec<Row> = odoo
        .search_read(
            Campaign::MODEL,
            &domain,
            Campaign::FIELDS,
            &SearchOptions::new().order("id asc"),
        )
        .await?;
    let mut campaigns: Vec<Campaign> = rows.iter().filter_map(Campaign::from_row).collect();
    state.next_due = next_due(&campaigns, now, ctx.settings.kpi_interval);
    let mut worked = false;
    let mut more = false;
    refresh_caches(ctx, state, &campaigns).await?;

    // Forget what belongs to campaigns no longer running.
    let running: HashSet<i64> = campaigns
        .iter()
        .filter(|c| c.state == "running")
        .map(|c| c.id)
        .collect();
    state.paces.retain(|id, _| running.contains(id));
    state.running_since.retain(|id, _| running.contains(id));
    state
        .generating
        .retain(|id, _| campaigns.iter().any(|c| c.id == *id));

    for c in campaigns.iter_mut() {
        // Start, resume, withdraw.
        if c.state == "scheduled" && c.scheduled_at.is_none_or(|at| at <= now) {
            odoo.write(
                Campaign::MODEL,
                &[c.id],
                &json!({"state": "running", "started_at": format_datetime(now)}),
            )
            .await?;
            tracing::info!(campaign = c.id, name = %c.name, "campaign started at its scheduled time");
            c.state = "running".into();
            c.started_at = Some(now);
            worked = true;
        }
        if c.state == "paused" && c.auto_resume_at.is_some_and(|at| at <= now) {
            odoo.write(
                Campaign::MODEL,
                &[c.id],
                &json!({"state": "running", "paused_reason": false, "auto_resume_at": false}),
            )
            .await?;
            tracing::info!(campaign = c.id, name = %c.name, "campaign resumed: a new day of the messaging tier");
            c.state = "running".into();
            worked = true;
        }
        if c.state == "cancelled" && state.cancelled_done.insert(c.id) {
            withdraw(odoo, c.id, now).await?;
        }
        if c.state == "running" {
            state.running_since.entry(c.id).or_insert(now);
        }
        // The queue: asked for, or a campaign started without one.
        let wants_queue = c.queue_requested
            || (c.state == "running" && c.queue_generated_at.is_none())
            || state.generating.contains_key(&c.id);
        if wants_queue && !matches!(c.state.as_str(), "done" | "cancelled") {
            worked = true;
            if generate(ctx, state, c).await? {
                more = true;
            }
        }
    }

    let running: Vec<&Campaign> = campaigns.iter().filter(|c| c.state == "running").collect();
    if !running.is_empty() {
        let ids: Vec<i64> = running.iter().map(|c| c.id).collect();
        let steps = read_steps(odoo, &ids).await?;
        let accounts = read_accounts(odoo, &running).await?;
        let templates = read_templates(odoo, &steps).await?;
        for c in &running {
            let lang = user_lang(state, c);
            let c_steps: Vec<&StepRow> = steps.iter().filter(|s| s.campaign_id == c.id).collect();
            let account = c.account_id.and_then(|a| accounts.get(&a));
            if let Some(reason) = blocked(c, &c_steps, account, &templates, lang) {
                pause(ctx, c, reason).await?;
                worked = true;
                continue;
            }
            if state.generating.contains_key(&c.id) && c.queue_generated_at.is_none() {
                continue;
            }
            let mps = account.map_or(0, |a| a.throughput_mps);
            let company = c
                .company_id
                .and_then(|id| state.companies.get(&id))
                .cloned();
            let done = send_due(
                ctx,
                state,
                c,
                &c_steps,
                mps,
                company.unwrap_or_default(),
                now,
            )
            .await?;
            if let Some(full) = done {
                worked = true;
                more |= full;
            }
        }
    }

    let kpi_due = state
        .last_kpi
        .is_none_or(|at| at.elapsed() >= ctx.settings.kpi_interval);
    if kpi_due {
        state.last_kpi = Some(Instant::now());
        for c in &campaigns {
            if matches!(c.state.as_str(), "running" | "paused" | "done")
                && kpis(ctx, state, c, now).await?
            {
                worked = true;
            }
        }
    }
    if replies(ctx, state, now).await? {
        worked = true;
    }
    Ok(if more {
        Step::More
    } else if worked {
        Step::Done
    } else {
        Step::Idle
    })
}

fn user_lang(state: &CampaignsState, c: &Campaign) -> Lang {
    c.user_id
        .and_then(|u| state.users.get(&u).copied())
        .unwrap_or_default()
}

async fn refresh_caches(
    ctx: &CampaignsContext,
    state: &mut CampaignsState,
    campaigns: &[Campaign],
) -> Result<(), OdooError> {
    let odoo = &ctx.odoo;
    let stale = |at: Option<Instant>| at.is_none_or(|t| t.elapsed() >= CACHE_TTL);
    let companies: Vec<i64> = campaigns.iter().filter_map(|c| c.company_id).collect();
    if stale(state.companies_at) || companies.iter().any(|c| !state.companies.contains_key(c)) {
        let mut ids = companies.clone();
        ids.sort_unstable();
        ids.dedup();
        let rows: Vec<Row> = odoo
            .read("res.company", &ids, &["country_id", "partner_id"])
            .await?;
        let countries: Vec<i64> = rows
            .iter()
            .filter_map(|r| model::many2one(r, "country_id"))
            .collect();
        let partners: Vec<i64> = rows
            .iter()
            .filter_map(|r| model::many2one(r, "partner_id"))
            .collect();
        let codes: HashMap<i64, String> = odoo
            .read::<Row>("res.country", &countries, &["code"])
            .await?
            .iter()
            .filter_map(|r| Some((r.get("id")?.as_i64()?, model::text(r, "code")?)))
            .collect();
        let tzs: HashMap<i64, String> = odoo
            .read::<Row>("res.partner", &partners, &["tz"])
            .await?
            .iter()
            .filter_map(|r| Some((r.get("id")?.as_i64()?, model::text(r, "tz")?)))
            .collect();
        state.companies = rows
            .iter()
            .filter_map(|r| {
                Some((
                    r.get("id")?.as_i64()?,
                    CompanyInfo {
                        country_code: model::many2one(r, "country_id")
                            .and_then(|c| codes.get(&c).cloned()),
                        tz: model::many2one(r, "partner_id").and_then(|p| tzs.get(&p).cloned()),
                    },
                ))
            })
            .collect();
        state.companies_at = Some(Instant::now());
    }
    let users: Vec<i64> = campaigns.iter().filter_map(|c| c.user_id).collect();
    if stale(state.users_at) || users.iter().any(|u| !state.users.contains_key(u)) {
        let mut ids = users;
        ids.sort_unstable();
        ids.dedup();
        let rows: Vec<Row> = odoo.read("res.users", &ids, &["lang"]).await?;
        state.users = rows
            .iter()
            .filter_map(|r| {
                Some((
                    r.get("id")?.as_i64()?,
                    Lang::from_odoo(r.get("lang")?.as_str()),
                ))
            })
            .collect();
        state.users_at = Some(Instant::now());
    }
    Ok(())
}

// ----- queue generation ------------------------------------------------------------------

/// Works on a campaign's queue for one slice of time. True when more is left.
async fn generate(
    ctx: &CampaignsContext,
    state: &mut CampaignsState,
    c: &Campaign,
) -> Result<bool, StepError> {
    let odoo = &ctx.odoo;
    let lang = user_lang(state, c);
    if !state.generating.contains_key(&c.id) {
        let terms = match domain::parse(&c.partner_domain) {
            Ok(t) => t,
            Err(e) => {
                let text = lang.pick(
                    format!("Queue not generated: {e}."),
                    format!(
                        "File non générée : le filtre d'audience n'est pas un domaine lisible \
                         (caractère {}) : {}. Écrivez-le avec l'éditeur de filtre, par ex. \
                         [(\"country_id.code\", \"=\", \"CI\")].",
                        e.position, e.problem
                    ),
                );
                refuse_queue(ctx, c, &text).await?;
                return Ok(false);
            }
        };
        let mut audience = Domain::from_terms(terms);
        if !c.category_ids.is_empty() {
            audience = audience.and("category_id", "in", json!(c.category_ids));
        }
        // Odoo checks the fields: a filter naming a field that does not exist is refused here,
        // before anything is created.
        if let Err(e) = odoo.search_count("res.partner", &audience).await {
            if e.is_retryable() {
                return Err(e.into());
            }
            let text = lang.pick(
                format!("Queue not generated: Odoo refused the audience filter ({e}). Correct it with the filter editor."),
                format!("File non générée : Odoo refuse le filtre d'audience ({e}). Corrigez-le avec l'éditeur de filtre."),
            );
            refuse_queue(ctx, c, &text).await?;
            return Ok(false);
        }
        // The contacts already in the queue, and their numbers.
        let mut known = HashSet::new();
        let mut numbers = Numbers::default();
        let mut after = 0i64;
        loop {
            let page: Vec<Row> = odoo
                .search_read(
                    Recipient::MODEL,
                    &Domain::leaf("campaign_id", "=", c.id).and("id", ">", after),
                    &["partner_id", "to_e164", "state"],
                    &SearchOptions::new()
                        .limit(ctx.settings.batch_size as u64)
                        .order("id asc"),
                )
                .await?;
            for r in &page {
                if let Some(p) = model::many2one(r, "partner_id") {
                    known.insert(p);
                }
                if model::text(r, "state").as_deref() != Some("skipped") {
                    if let Some(n) = model::text(r, "to_e164") {
                        numbers
                            .insert(n, model::many2one_name(r, "partner_id").unwrap_or_default());
                    }
                }
            }
            after = page
                .last()
                .and_then(|r| r.get("id")?.as_i64())
                .unwrap_or(after);
            if page.len() < ctx.settings.batch_size {
                break;
            }
        }
        let region = c
            .company_id
            .and_then(|id| state.companies.get(&id))
            .and_then(|co| co.country_code.clone());
        tracing::info!(campaign = c.id, name = %c.name, already = known.len(), "generating the campaign's queue");
        state.generating.insert(
            c.id,
            Generation {
                domain: audience,
                after: 0,
                already: known.len() as u64,
                known,
                numbers,
                tally: Tally::default(),
                region,
                lang,
            },
        );
    }
    let started = Instant::now();
    let batch = ctx.settings.batch_size.max(1);
    loop {
        let Some(g) = state.generating.get_mut(&c.id) else {
            return Ok(false);
        };
        let page: Vec<Row> = odoo
            .search_read(
                "res.partner",
                &g.domain.clone().and("id", ">", g.after),
                Contact::FIELDS,
                &SearchOptions::new().limit(batch as u64).order("id asc"),
            )
            .await?;
        let full = page.len() == batch;
        let now = format_datetime(Utc::now());
        let mut creates = Vec::new();
        for r in &page {
            let Some(id) = r.get("id").and_then(Value::as_i64) else {
                continue;
            };
            if !g.known.insert(id) {
                continue;
            }
            let contact = Contact {
                id,
                name: model::text(r, "name").unwrap_or_default(),
                opt_in: model::boolean(r, "whatsapp_opt_in"),
                opted_out: model::text(r, "whatsapp_opt_out_date").is_some(),
                number_e164: model::text(r, "whatsapp_number_e164"),
                mobile: model::text(r, "mobile"),
                phone: model::text(r, "phone"),
            };
            let values = match audience::classify(
                &contact,
                g.region.as_deref(),
                &mut g.numbers,
                &mut g.tally,
                g.lang,
            ) {
                Verdict::Recipient { typed, e164 } => json!({
                    "campaign_id": c.id, "partner_id": id, "phone_number": typed,
                    "to_e164": e164, "state": "pending", "next_due_at": now,
                }),
                Verdict::Skipped { typed, reason } => json!({
                    "campaign_id": c.id, "partner_id": id,
                    "phone_number": typed.map_or(Value::Bool(false), Value::String),
                    "state": "skipped", "error_message": reason,
                }),
            };
            creates.push(values);
        }
        // The page's recipients in one create. A crash between pages is safe: the next
        // generation skips the contacts already in (one recipient per contact, unique in Odoo).
        if !creates.is_empty() {
            let ids = odoo.create_many(Recipient::MODEL, &creates).await?;
            ctx.stats
                .recipients_created
                .fetch_add(ids.len() as u64, Ordering::Relaxed);
        }
        if let Some(last) = page.last().and_then(|r| r.get("id")?.as_i64()) {
            g.after = last;
        }
        if !full {
            let g = state.generating.remove(&c.id).expect("present");
            let text = g.tally.summary(g.already, g.lang);
            ctx.odoo
                .write(
                    Campaign::MODEL,
                    &[c.id],
                    &json!({"queue_requested": false,
                            "queue_generated_at": format_datetime(Utc::now()),
                            "queue_message": text}),
                )
                .await?;
            tracing::info!(campaign = c.id, name = %c.name, added = g.tally.added, skipped = g.tally.skipped(), "campaign queue generated");
            return Ok(false);
        }
        if started.elapsed() >= GENERATION_SLICE {
            return Ok(true);
        }
    }
}

/// A queue that cannot be generated: the reason on the campaign, the request cleared; a
/// running campaign pauses.
async fn refuse_queue(ctx: &CampaignsContext, c: &Campaign, text: &str) -> Result<(), OdooError> {
    tracing::warn!(campaign = c.id, name = %c.name, reason = %text, "campaign queue refused");
    let mut values = json!({"queue_requested": false, "queue_message": text});
    if c.state == "running" {
        values["state"] = json!("paused");
        values["paused_reason"] = json!(text);
    }
    ctx.odoo.write(Campaign::MODEL, &[c.id], &values).await
}

// ----- running -----------------------------------------------------------------------------

async fn read_steps(odoo: &OdooClient, campaigns: &[i64]) -> Result<Vec<StepRow>, OdooError> {
    let rows: Vec<Row> = odoo
        .search_read(
            StepRow::MODEL,
            &Domain::leaf("campaign_id", "in", json!(campaigns)),
            StepRow::FIELDS,
            &SearchOptions::new().order("campaign_id, sequence, id"),
        )
        .await?;
    Ok(rows.iter().filter_map(StepRow::from_row).collect())
}

#[derive(Debug, Clone)]
struct AccountInfo {
    throughput_mps: i64,
    quality: Option<String>,
}

async fn read_accounts(
    odoo: &OdooClient,
    campaigns: &[&Campaign],
) -> Result<HashMap<i64, AccountInfo>, OdooError> {
    let mut ids: Vec<i64> = campaigns.iter().filter_map(|c| c.account_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let rows: Vec<Row> = odoo
        .read(
            "whatsapp.account",
            &ids,
            &["throughput_mps", "quality_rating"],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            Some((
                r.get("id")?.as_i64()?,
                AccountInfo {
                    throughput_mps: model::int(r, "throughput_mps"),
                    quality: model::text(r, "quality_rating"),
                },
            ))
        })
        .collect())
}

/// (name, status) of the steps' templates.
async fn read_templates(
    odoo: &OdooClient,
    steps: &[StepRow],
) -> Result<HashMap<i64, (String, String)>, OdooError> {
    let mut ids: Vec<i64> = steps.iter().filter_map(|s| s.template_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let rows: Vec<Row> = odoo
        .read("whatsapp.template", &ids, &["name", "status"])
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            Some((
                r.get("id")?.as_i64()?,
                (
                    model::text(r, "name").unwrap_or_default(),
                    model::text(r, "status").unwrap_or_default(),
                ),
            ))
        })
        .collect())
}

/// Why a running campaign cannot go on, from its settings, steps, account and templates.
fn blocked(
    c: &Campaign,
    steps: &[&StepRow],
    account: Option<&AccountInfo>,
    templates: &HashMap<i64, (String, String)>,
    lang: Lang,
) -> Option<plan::PauseReason> {
    let reason = |en: String, fr: String| {
        Some(plan::PauseReason {
            text: lang.pick(en, fr),
            resume_at: None,
        })
    };
    if c.account_id.is_none() || account.is_none() {
        return reason(
            "The campaign has no WhatsApp account: choose one, then resume it.".into(),
            "La campagne n'a pas de compte WhatsApp : choisissez-en un, puis reprenez-la.".into(),
        );
    }
    if steps.is_empty() {
        return reason(
            "The campaign has no step: add a message to send, then resume it.".into(),
            "La campagne n'a aucune étape : ajoutez un message à envoyer, puis reprenez-la.".into(),
        );
    }
    if c.window.is_empty() {
        return reason(
            "The send window has no length (it starts when it ends): widen it, then resume.".into(),
            "La plage d'envoi est vide (elle commence quand elle finit) : élargissez-la, puis reprenez.".into(),
        );
    }
    for s in steps {
        if let Some(cond) = &s.unknown_condition {
            return reason(
                format!("Step {:?} has a condition this daemon does not know ({cond}): update the daemon or change the condition.", s.info.name),
                format!("L'étape {:?} a une condition inconnue de ce démon ({cond}) : mettez le démon à jour ou changez la condition.", s.info.name),
            );
        }
        if !matches!(
            s.message_type.as_str(),
            "template" | "text" | "image" | "document"
        ) {
            return reason(
                format!("Step {:?} is of type {}, which campaigns do not send: use a template, a text, an image or a document.", s.info.name, s.message_type),
                format!("L'étape {:?} est de type {}, que les campagnes n'envoient pas : utilisez un modèle, un texte, une image ou un document.", s.info.name, s.message_type),
            );
        }
    }
    let health = Health {
        templates_not_approved: steps
            .iter()
            .filter_map(|s| s.template_id)
            .filter_map(|t| templates.get(&t))
            .filter(|(_, status)| status != "approved")
            .cloned()
            .collect(),
        quality: account.and_then(|a| a.quality.clone()),
        ..Health::default()
    };
    plan::pause_reason(&health, 1.0, lang)
}

async fn pause(
    ctx: &CampaignsContext,
    c: &Campaign,
    reason: plan::PauseReason,
) -> Result<(), OdooError> {
    tracing::warn!(campaign = c.id, name = %c.name, reason = %reason.text, "campaign paused by the daemon");
    ctx.stats.pauses.fetch_add(1, Ordering::Relaxed);
    ctx.odoo
        .write(
            Campaign::MODEL,
            &[c.id],
            &json!({
                "state": "paused",
                "paused_reason": reason.text,
                "auto_resume_at": reason.resume_at.map_or(Value::Bool(false), |t| json!(format_datetime(t))),
            }),
        )
        .await
}

/// The queued messages of a cancelled campaign are cancelled (the outbox never sends a message
/// of a campaign that is not running; this makes it final).
async fn withdraw(odoo: &OdooClient, campaign: i64, now: DateTime<Utc>) -> Result<(), OdooError> {
    let ids = odoo
        .search(
            MESSAGE,
            &Domain::leaf("campaign_id", "=", campaign).and("state", "=", "queued"),
            &SearchOptions::new(),
        )
        .await?;
    if !ids.is_empty() {
        tracing::info!(
            campaign,
            messages = ids.len(),
            "campaign cancelled: its queued messages are withdrawn"
        );
        odoo.write(
            MESSAGE,
            &ids,
            &json!({"state": "cancelled", "cancelled_at": format_datetime(now)}),
        )
        .await?;
    }
    Ok(())
}

/// Queues the messages of a running campaign's due recipients. `None`: nothing was due;
/// `Some(full)`: work was done, `full` when more is due now.
async fn send_due(
    ctx: &CampaignsContext,
    state: &mut CampaignsState,
    c: &Campaign,
    steps: &[&StepRow],
    account_mps: i64,
    company: CompanyInfo,
    now: DateTime<Utc>,
) -> Result<Option<bool>, StepError> {
    let odoo = &ctx.odoo;
    let settings = &ctx.settings;
    let rate = pace::rate_per_second(c.throttle_per_minute, account_mps);
    let pace = state
        .paces
        .entry(c.id)
        .or_insert_with(|| Pace::new(rate, settings.ahead, Instant::now()));
    pace.set_rate(rate, settings.ahead, Instant::now());
    let company_tz = window::zone(None, company.tz.as_deref(), true);
    let daily_cap = c.daily_cap as u64;
    if daily_cap > 0 {
        let (day_start, _) = pace::day_bounds(company_tz, now);
        if !pace.knows_day(day_start) {
            let count = odoo
                .search_count(
                    MESSAGE,
                    &Domain::leaf("campaign_id", "=", c.id).and(
                        "create_date",
                        ">=",
                        format_datetime(day_start),
                    ),
                )
                .await?;
            pace.set_day(day_start, count);
        }
    }
    let waiting = odoo
        .search_count(
            MESSAGE,
            &Domain::leaf("campaign_id", "=", c.id).and(
                "state",
                "in",
                json!(["queued", "sending"]),
            ),
        )
        .await?;
    // A throttle at or above the number's throughput does not bind: the outbox paces the
    // account, and the queue only has to stay `ahead` seconds full.
    let throttled = account_mps <= 0 || (c.throttle_per_minute as f64 / 60.0) < account_mps as f64;
    let mut allowance = if throttled {
        pace.allowance(Instant::now(), waiting, daily_cap)
    } else {
        pace.allowance_unthrottled(Instant::now(), waiting, daily_cap)
    };
    let step_infos: Vec<StepInfo> = steps.iter().map(|s| s.info.clone()).collect();
    let by_id: HashMap<i64, &StepRow> = steps.iter().map(|s| (s.info.id, *s)).collect();
    let started_at = c.started_at.unwrap_or(now);
    let mut worked = false;
    // Recipients that were looked at but not sent (window closed, skipped...) do not use the
    // allowance; read on while there is some, a few pages at most.
    for _ in 0..4 {
        if allowance == 0 {
            // The pace is used up: more is due, but not now. Going round again at once would
            // queue a tenth of a second of sending per round (nine calls each); the next poll
            // finds a poll interval's worth, and the queue stays `ahead` seconds ahead.
            return Ok(Some(false));
        }
        let limit = (allowance as usize).clamp(1, settings.batch_size);
        let rows: Vec<Row> = odoo
            .search_read(
                Recipient::MODEL,
                &Domain::leaf("campaign_id", "=", c.id)
                    .and("state", "in", json!(ACTIVE_STATES))
                    .and("next_due_at", "<=", format_datetime(now)),
                Recipient::FIELDS,
                &SearchOptions::new()
                    .limit(limit as u64)
                    .order("next_due_at asc, id asc"),
            )
            .await?;
        if rows.is_empty() {
            if !worked && waiting == 0 {
                finish_if_done(ctx, state, c, now).await?;
            }
            return Ok(worked.then_some(false));
        }
        worked = true;
        let full = rows.len() == limit;
        let recipients: Vec<Recipient> = rows.iter().filter_map(Recipient::from_row).collect();
        // Their contacts: consent and time zone, now.
        let partner_ids: Vec<i64> = recipients.iter().map(|r| r.partner_id).collect();
        let partners: HashMap<i64, Row> = odoo
            .read::<Row>(
                "res.partner",
                &partner_ids,
                &["whatsapp_opt_in", "whatsapp_opt_out_date", "tz"],
            )
            .await?
            .into_iter()
            .filter_map(|r| Some((r.get("id")?.as_i64()?, r)))
            .collect();
        // The previous step's messages: when they were sent, and whether they were read.
        let previous_keys: Vec<String> = recipients
            .iter()
            .filter_map(|r| r.current_step_id.map(|s| dedupe_key(c.id, s, r.id)))
            .collect();
        let previous: HashMap<String, plan::Previous> = if previous_keys.is_empty() {
            HashMap::new()
        } else {
            odoo.search_read::<Row>(
                MESSAGE,
                &Domain::leaf("dedupe_key", "in", json!(previous_keys)),
                &["dedupe_key", "state", "sent_at"],
                &SearchOptions::new(),
            )
            .await?
            .iter()
            .filter_map(|r| {
                Some((
                    model::text(r, "dedupe_key")?,
                    plan::Previous {
                        sent_at: model::datetime(r, "sent_at"),
                        read: model::text(r, "state").as_deref() == Some("read"),
                    },
                ))
            })
            .collect()
        };

        let mut updates: BTreeMap<String, (Value, Vec<i64>)> = BTreeMap::new();
        let mut put = |values: Value, id: i64| {
            let key = values.to_string();
            updates
                .entry(key)
                .or_insert_with(|| (values, Vec::new()))
                .1
                .push(id);
        };
        let mut messages: Vec<Map<String, Value>> = Vec::new();
        let mut sent_to: Vec<(i64, i64, bool)> = Vec::new();
        for r in &recipients {
            let partner = partners.get(&r.partner_id);
            let opted_in = partner.is_some_and(|p| {
                model::boolean(p, "whatsapp_opt_in")
                    && model::text(p, "whatsapp_opt_out_date").is_none()
            });
            if !opted_in {
                put(json!({"state": "opted_out", "next_due_at": false}), r.id);
                continue;
            }
            let tz: Tz = window::zone(
                partner.and_then(|p| model::text(p, "tz")).as_deref(),
                company.tz.as_deref(),
                c.company_rule,
            );
            match window::next_opening(&c.window, tz, now) {
                Opening::Now => {}
                Opening::At(at) => {
                    put(json!({"next_due_at": format_datetime(at)}), r.id);
                    continue;
                }
                Opening::Never => continue,
            }
            let prev = r
                .current_step_id
                .and_then(|s| previous.get(&dedupe_key(c.id, s, r.id)))
                .cloned();
            match plan::decide(
                &step_infos,
                r.current_step_id,
                prev,
                r.replied,
                started_at,
                now,
                settings.ahead,
            ) {
                Due::Finished => put(json!({"next_due_at": false}), r.id),
                Due::Wait(at) => put(json!({"next_due_at": format_datetime(at)}), r.id),
                Due::Skip { step, next_due } => put(
                    json!({"current_step_id": step,
                           "next_due_at": next_due.map_or(Value::Bool(false), |t| json!(format_datetime(t)))}),
                    r.id,
                ),
                Due::Send(info) => {
                    if allowance == 0 {
                        continue;
                    }
                    allowance -= 1;
                    let Some(step) = by_id.get(&info.id) else {
                        continue;
                    };
                    messages.push(message_values(c, step, r));
                    sent_to.push((r.id, info.id, r.state == "pending"));
                }
            }
        }
        // Messages first, then the recipients: a crash in between leaves the recipients due
        // for the same step, and the dedupe_key keeps it from being queued twice.
        if !messages.is_empty() {
            let done = enqueue(odoo, messages).await?;
            let n = (done.created.len() + done.existing.len()) as u64;
            pace.took(done.created.len() as u64);
            ctx.stats
                .messages_queued
                .fetch_add(done.created.len() as u64, Ordering::Relaxed);
            tracing::debug!(campaign = c.id, queued = n, "campaign messages queued");
        }
        for (recipient, step, pending) in sent_to {
            let next = plan::due_after(&step_infos, step, now);
            let mut values = json!({
                "current_step_id": step,
                "next_due_at": next.map_or(Value::Bool(false), |t| json!(format_datetime(t))),
            });
            if pending {
                values["state"] = json!("queued");
            }
            put(values, recipient);
        }
        for (_, (values, ids)) in updates {
            odoo.write(Recipient::MODEL, &ids, &values).await?;
        }
        if !full {
            return Ok(Some(false));
        }
    }
    Ok(Some(allowance > 0))
}

fn message_values(c: &Campaign, step: &StepRow, r: &Recipient) -> Map<String, Value> {
    let mut v = json!({
        "dedupe_key": dedupe_key(c.id, step.info.id, r.id),
        "trigger": "campaign",
        "direction": "out",
        "state": "queued",
        "priority": CAMPAIGN_PRIORITY,
        "message_type": step.message_type,
        "partner_id": r.partner_id,
        "res_model": "res.partner",
        "res_id": r.partner_id,
        "campaign_id": c.id,
        "campaign_step_id": step.info.id,
        "campaign_recipient_id": r.id,
    });
    let m = v.as_object_mut().expect("an object");
    if let Some(a) = c.account_id {
        m.insert("account_id".into(), json!(a));
    }
    if let Some(co) = c.company_id {
        m.insert("company_id".into(), json!(co));
    }
    if let Some(n) = &r.to_e164 {
        m.insert("to_e164".into(), json!(n));
    }
    if let Some(t) = step.template_id {
        m.insert("template_id".into(), json!(t));
    }
    if let Some(b) = &step.body {
        m.insert("body".into(), json!(b));
    }
    if let Some(u) = &step.media_url {
        m.insert("media_url".into(), json!(u));
    }
    if let Some(a) = step.media_attachment_id {
        m.insert("media_attachment_id".into(), json!(a));
    }
    std::mem::take(m)
}

/// A running campaign with no recipient left to send to and nothing in the queue is done.
async fn finish_if_done(
    ctx: &CampaignsContext,
    state: &mut CampaignsState,
    c: &Campaign,
    now: DateTime<Utc>,
) -> Result<(), OdooError> {
    let left = ctx
        .odoo
        .search_count(
            Recipient::MODEL,
            &Domain::leaf("campaign_id", "=", c.id)
                .and("state", "in", json!(ACTIVE_STATES))
                .and("next_due_at", "!=", false),
        )
        .await?;
    if left > 0 {
        return Ok(());
    }
    follow(ctx, c.id).await?;
    let kpis = read_kpis(&ctx.odoo, c.id).await?;
    let mut values = kpi_values(&kpis, now);
    values["state"] = json!("done");
    values["finished_at"] = json!(format_datetime(now));
    ctx.odoo.write(Campaign::MODEL, &[c.id], &values).await?;
    state.paces.remove(&c.id);
    tracing::info!(campaign = c.id, name = %c.name, sent = kpis.sent, failed = kpis.failed, "campaign done");
    Ok(())
}

// ----- KPIs and health ---------------------------------------------------------------------

/// Recipients follow their messages: for each message state, the recipients of the
/// campaign's messages in that state whose own state is behind move forward; failures carry
/// their reason.
async fn follow(ctx: &CampaignsContext, campaign: i64) -> Result<u64, OdooError> {
    let odoo = &ctx.odoo;
    let mut moved = 0;
    for target in ["failed", "read", "delivered", "sent"] {
        let target_state = RecipientState::parse(target).expect("a recipient state");
        let behind: Vec<&str> = ACTIVE_STATES
            .iter()
            .copied()
            .filter(|s| {
                RecipientState::parse(s)
                    .is_some_and(|st| plan::follow(st, target) == Some(target_state))
            })
            .collect();
        loop {
            let rows: Vec<Row> = odoo
                .search_read(
                    MESSAGE,
                    &Domain::leaf("campaign_id", "=", campaign)
                        .and("state", "=", target)
                        .and("campaign_recipient_id.state", "in", json!(behind)),
                    &["campaign_recipient_id", "error_help", "error_title"],
                    &SearchOptions::new().limit(ctx.settings.batch_size as u64),
                )
                .await?;
            if rows.is_empty() {
                break;
            }
            let mut groups: BTreeMap<String, Vec<i64>> = BTreeMap::new();
            for r in &rows {
                let Some(id) = model::many2one(r, "campaign_recipient_id") else {
                    continue;
                };
                let reason = if target == "failed" {
                    model::text(r, "error_help")
                        .or_else(|| model::text(r, "error_title"))
                        .unwrap_or_default()
                } else {
                    String::new()
                };
                groups.entry(reason).or_default().push(id);
            }
            for (reason, mut ids) in groups {
                ids.sort_unstable();
                ids.dedup();
                moved += ids.len() as u64;
                let mut values = json!({"state": target});
                if target == "failed" {
                    values["error_message"] = json!(reason);
                    values["next_due_at"] = json!(false);
                }
                odoo.write(Recipient::MODEL, &ids, &values).await?;
            }
            if rows.len() < ctx.settings.batch_size {
                break;
            }
        }
    }
    Ok(moved)
}

/// The campaign's recipients counted by state, in one grouped read.
async fn read_kpis(odoo: &OdooClient, campaign: i64) -> Result<Kpis, OdooError> {
    let groups: Vec<Row> = odoo
        .call(
            Recipient::MODEL,
            "read_group",
            json!([[["campaign_id", "=", campaign]], ["state"], ["state"]]),
            json!({"lazy": false}),
        )
        .await?;
    Ok(Kpis::from_counts(groups.iter().filter_map(|g| {
        let state = g.get("state")?.as_str()?;
        let count = g.get("__count").and_then(Value::as_u64)?;
        Some((state, count))
    })))
}

fn kpi_values(k: &Kpis, now: DateTime<Utc>) -> Value {
    json!({
        "kpi_recipients": k.recipients,
        "kpi_sent": k.sent,
        "kpi_delivered": k.delivered,
        "kpi_read": k.read,
        "kpi_replied": k.replied,
        "kpi_failed": k.failed,
        "kpi_opted_out": k.opted_out,
        "kpi_updated_at": format_datetime(now),
    })
}

/// One KPI round for a campaign: follow, check its sends (running), write its figures when
/// they changed. True when something was written.
async fn kpis(
    ctx: &CampaignsContext,
    state: &mut CampaignsState,
    c: &Campaign,
    now: DateTime<Utc>,
) -> Result<bool, OdooError> {
    let odoo = &ctx.odoo;
    let moved = follow(ctx, c.id).await?;
    if c.state == "running" {
        let since = state.running_since.get(&c.id).copied().unwrap_or(now);
        let since = c.started_at.map_or(since, |s| s.max(since));
        let health = health(ctx, c.id, since).await?;
        let lang = user_lang(state, c);
        if let Some(reason) = plan::pause_reason(&health, ctx.settings.max_failure_ratio, lang) {
            pause(ctx, c, reason).await?;
        }
    }
    let k = read_kpis(odoo, c.id).await?;
    if k == c.kpis && moved == 0 && c.state != "running" {
        return Ok(false);
    }
    if k != c.kpis || c.state == "running" {
        odoo.write(Campaign::MODEL, &[c.id], &kpi_values(&k, now))
            .await?;
        ctx.stats.kpi_writes.fetch_add(1, Ordering::Relaxed);
        return Ok(true);
    }
    Ok(moved > 0)
}

/// Meta's errors on the campaign's messages since `since`, held messages, and the failure
/// ratio of its last sends.
async fn health(
    ctx: &CampaignsContext,
    campaign: i64,
    since: DateTime<Utc>,
) -> Result<Health, OdooError> {
    let odoo = &ctx.odoo;
    let since = format_datetime(since);
    let errors: Vec<Row> = odoo
        .search_read(
            MESSAGE,
            &Domain::leaf("campaign_id", "=", campaign)
                .and("write_date", ">=", since.clone())
                .and(
                    "error_code",
                    "in",
                    json!(["131048", "131049", "132015", "132016", "messaging_limit"]),
                ),
            &["error_code", "state", "next_attempt_at"],
            &SearchOptions::new().limit(20).order("id desc"),
        )
        .await?;
    let mut h = Health::default();
    for r in &errors {
        let code = model::text(r, "error_code").unwrap_or_default();
        match code.as_str() {
            "messaging_limit" => {
                if model::text(r, "state").as_deref() == Some("queued") {
                    let until = model::datetime(r, "next_attempt_at");
                    h.held_until = h.held_until.max(until);
                }
            }
            "132015" | "132016" => h.templates_not_approved.push((
                "?".to_owned(),
                if code == "132015" {
                    "paused"
                } else {
                    "disabled"
                }
                .to_owned(),
            )),
            _ => h.error_codes.push(code),
        }
    }
    let recent: Vec<Row> = odoo
        .search_read(
            MESSAGE,
            &Domain::leaf("campaign_id", "=", campaign)
                .and("write_date", ">=", since)
                .and(
                    "state",
                    "in",
                    json!(["sent", "delivered", "read", "failed"]),
                ),
            &["state"],
            &SearchOptions::new().limit(FAILURE_SAMPLE).order("id desc"),
        )
        .await?;
    let failed = recent
        .iter()
        .filter(|r| model::text(r, "state").as_deref() == Some("failed"))
        .count() as u64;
    h.recent = (failed, recent.len() as u64);
    Ok(h)
}

// ----- replies -------------------------------------------------------------------------------

/// Inbound messages since the last one seen: their senders' recipients in campaigns that are
/// running or paused get `replied_at`; those who opted out leave their campaigns.
async fn replies(
    ctx: &CampaignsContext,
    state: &mut CampaignsState,
    now: DateTime<Utc>,
) -> Result<bool, OdooError> {
    let odoo = &ctx.odoo;
    let (record, after) = match state.reply_cursor {
        Some(c) => c,
        None => {
            let rows: Vec<Row> = odoo
                .search_read(
                    CURSOR_MODEL,
                    &Domain::leaf("name", "=", REPLY_CURSOR),
                    &["value"],
                    &SearchOptions::new().limit(1),
                )
                .await?;
            let stored = rows.first().and_then(|r| {
                Some((
                    r.get("id")?.as_i64()?,
                    model::text(r, "value")?.parse::<i64>().ok()?,
                ))
            });
            let cursor = match stored {
                Some((id, value)) => (Some(id), value),
                None => {
                    // First run: replies from now on.
                    let last: Vec<Row> = odoo
                        .search_read(
                            MESSAGE,
                            &Domain::leaf("direction", "=", "in"),
                            &["id"],
                            &SearchOptions::new().limit(1).order("id desc"),
                        )
                        .await?;
                    (
                        None,
                        last.first()
                            .and_then(|r| r.get("id")?.as_i64())
                            .unwrap_or(0),
                    )
                }
            };
            state.reply_cursor = Some(cursor);
            cursor
        }
    };
    let rows: Vec<Row> = odoo
        .search_read(
            MESSAGE,
            &Domain::leaf("direction", "=", "in").and("id", ">", after),
            &["partner_id"],
            &SearchOptions::new()
                .limit(ctx.settings.batch_size as u64)
                .order("id asc"),
        )
        .await?;
    let Some(last) = rows.last().and_then(|r| r.get("id")?.as_i64()) else {
        return Ok(false);
    };
    let mut partners: Vec<i64> = rows
        .iter()
        .filter_map(|r| model::many2one(r, "partner_id"))
        .collect();
    partners.sort_unstable();
    partners.dedup();
    if !partners.is_empty() {
        let live = Domain::leaf("campaign_id.state", "in", json!(["running", "paused"])).and(
            "partner_id",
            "in",
            json!(partners),
        );
        let replied = odoo
            .search(
                Recipient::MODEL,
                &live.clone().and(
                    "state",
                    "in",
                    json!(["queued", "sent", "delivered", "read"]),
                ),
                &SearchOptions::new(),
            )
            .await?;
        if !replied.is_empty() {
            odoo.write(
                Recipient::MODEL,
                &replied,
                &json!({"state": "replied", "replied_at": format_datetime(now)}),
            )
            .await?;
        }
        // Replies from recipients already marked: only the first reply's time is kept.
        let opted_out: Vec<i64> = odoo
            .search(
                "res.partner",
                &Domain::leaf("id", "in", json!(partners)).and_domain(Domain::or(
                    Domain::leaf("whatsapp_opt_in", "=", false),
                    Domain::leaf("whatsapp_opt_out_date", "!=", false),
                )),
                &SearchOptions::new(),
            )
            .await?;
        if !opted_out.is_empty() {
            let ids = odoo
                .search(
                    Recipient::MODEL,
                    &Domain::leaf("campaign_id.state", "in", json!(["running", "paused"]))
                        .and("partner_id", "in", json!(opted_out))
                        .and("state", "in", json!(ACTIVE_STATES)),
                    &SearchOptions::new(),
                )
                .await?;
            if !ids.is_empty() {
                odoo.write(
                    Recipient::MODEL,
                    &ids,
                    &json!({"state": "opted_out", "next_due_at": false}),
                )
                .await?;
            }
        }
    }
    let value = json!({"value": last.to_string()});
    let record = match record {
        Some(id) => {
            odoo.write(CURSOR_MODEL, &[id], &value).await?;
            Some(id)
        }
        None => Some(
            odoo.create(
                CURSOR_MODEL,
                &json!({"name": REPLY_CURSOR, "value": last.to_string()}),
            )
            .await?,
        ),
    };
    state.reply_cursor = Some((record, last));
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn campaign(state: &str, extra: Value) -> Campaign {
        let mut r = json!({"id": 7, "name": "Spring", "state": state, "company_id": [1, "Co"],
            "account_id": false, "user_id": false, "partner_domain": "[]",
            "partner_category_ids": [], "scheduled_at": false, "send_window_start": 0.0,
            "send_window_end": 24.0, "send_on_weekends": true, "timezone_rule": "company",
            "throttle_per_minute": 0, "daily_cap": 0, "started_at": false, "finished_at": false,
            "queue_requested": false, "queue_generated_at": false, "paused_reason": false,
            "auto_resume_at": false});
        for (k, v) in extra.as_object().unwrap() {
            r[k] = v.clone();
        }
        Campaign::from_row(r.as_object().unwrap()).unwrap()
    }

    #[test]
    fn the_loop_is_needed_while_a_campaign_runs_is_due_or_just_ended() {
        let now = Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap();
        let kpi = Duration::from_secs(5);
        assert_eq!(next_due(&[], now, kpi), None);
        let running = campaign("running", json!({}));
        let scheduled = campaign("scheduled", json!({"scheduled_at": "2026-12-06 12:10:00"}));
        let resumes = campaign("paused", json!({"auto_resume_at": "2026-12-07 00:00:00"}));
        let paused = campaign("paused", json!({}));
        let ended = campaign("done", json!({"finished_at": "2026-12-06 11:55:00"}));
        let ended_long_ago = campaign("done", json!({"finished_at": "2026-12-06 11:00:00"}));
        assert_eq!(
            next_due(&[paused.clone(), ended_long_ago.clone()], now, kpi),
            None
        );
        assert_eq!(
            next_due(&[scheduled.clone(), resumes.clone()], now, kpi),
            Some(Duration::from_secs(600))
        );
        assert_eq!(
            next_due(&[resumes, ended, ended_long_ago], now, kpi),
            Some(kpi)
        );
        assert_eq!(
            next_due(&[scheduled, running, paused], now, kpi),
            Some(Duration::ZERO)
        );
    }
}
