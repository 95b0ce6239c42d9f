//! The automations loop: the only part of the automations that talks to Odoo.
//!
//! Each [`step`] reads one page of the orders written since the cursor (minus the overlap) and
//! returns a [`Step`] the loop acts on: go on at once when the page was full, wait the poll
//! interval otherwise, back off while Odoo fails.

use super::cursor::StoredCursor;
use super::detect::{
    self, creation_account, creation_due, creation_wanted, default_account, AccountRow, Creation,
    Seen, ORDER_BUTTONS,
};
use super::AutomationsSettings;
use crate::buttons::{self, ButtonSecret};
use crate::enqueue::{enqueue, EnqueueError};
use crate::odoo::{format_datetime, parse_datetime, Domain, OdooClient, OdooError, SearchOptions};
use crate::orders::{Customer, DetailsReader, Order};
use crate::texts::TextCache;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The cursor's name in `whatsapp.cursor`.
pub const CURSOR_NAME: &str = "sale.order";
/// Accounts are read again after this long.
const ACCOUNTS_TTL: Duration = Duration::from_secs(10);

/// What the automations need. Cheap to clone.
#[derive(Clone)]
pub struct AutomationsContext {
    pub odoo: OdooClient,
    pub settings: AutomationsSettings,
    pub details: Arc<DetailsReader>,
    pub stats: Arc<AutomationsStats>,
    /// Woken by Odoo's bus when an order is created or its details asked for; idle polls are
    /// slow while the bus is up.
    pub bus: crate::poll::Wake,
}

impl AutomationsContext {
    pub fn new(odoo: OdooClient, settings: AutomationsSettings) -> AutomationsContext {
        let texts = Arc::new(TextCache::new(odoo.clone(), TextCache::DEFAULT_TTL));
        AutomationsContext {
            details: Arc::new(DetailsReader::new(odoo.clone(), texts)),
            odoo,
            settings,
            stats: Arc::new(AutomationsStats::default()),
            bus: crate::poll::Wake::default(),
        }
    }
}

/// Counters, for logs and benchmarks.
#[derive(Debug, Default)]
pub struct AutomationsStats {
    pub polls: AtomicU64,
    pub orders_read: AtomicU64,
    pub queued: AtomicU64,
}

/// What survives from one step to the next.
#[derive(Default)]
pub struct AutomationsState {
    cursor: StoredCursor,
    /// The page being read: the scan start of this round and the last id read.
    page: Option<(DateTime<Utc>, i64)>,
    /// The latest `write_date` of the round so far.
    round_max: Option<DateTime<Utc>>,
    seen: Seen,
    accounts: Option<(Instant, Vec<AccountRow>)>,
    templates: HashMap<i64, Vec<u32>>,
    secret: Option<ButtonSecret>,
}

/// What one step did.
#[derive(Debug)]
pub enum Step {
    /// Nothing new.
    Idle,
    /// `n` orders handled; the page was full, more may be waiting: step again at once.
    More(usize),
    /// `n` orders handled, the round is over.
    Done(usize),
    /// Odoo failed; nothing was marked handled.
    Failed(StepError),
}

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("{0}")]
    Odoo(#[from] OdooError),
    #[error("{0}")]
    Enqueue(#[from] EnqueueError),
    #[error("{0}")]
    Secret(#[from] buttons::LoadError),
    #[error("{0}")]
    Details(#[from] crate::orders::DetailsError),
}

impl StepError {
    pub fn is_retryable(&self) -> bool {
        match self {
            StepError::Odoo(e) => e.is_retryable(),
            StepError::Enqueue(e) => e.is_retryable(),
            StepError::Secret(e) => e.is_retryable(),
            StepError::Details(e) => e.is_retryable(),
        }
    }
}

/// Runs until `shutdown`.
pub async fn run(ctx: AutomationsContext, shutdown: CancellationToken) {
    let mut state = AutomationsState::default();
    let mut failures = crate::poll::Failures::default();
    tracing::info!(
        poll_interval = ?ctx.settings.poll_interval,
        overlap = ?ctx.settings.overlap,
        "automations started (new sale orders, order details requests)"
    );
    loop {
        let step = tokio::select! {
            _ = shutdown.cancelled() => break,
            step = step(&ctx, &mut state) => step,
        };
        let wait = match step {
            Step::More(n) => {
                tracing::debug!(orders = n, "automations: a full page of orders; reading on");
                failures.reset();
                Duration::ZERO
            }
            Step::Idle => {
                failures.reset();
                ctx.bus.idle_pause(ctx.settings.poll_interval, None)
            }
            Step::Done(_) => {
                failures.reset();
                ctx.settings.poll_interval
            }
            Step::Failed(err) => failures.failed(
                &err,
                ctx.settings.poll_interval,
                "automations",
                "trying again until it answers",
            ),
        };
        if !wait.is_zero() {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ctx.bus.pause(wait, failures.count() > 0) => {}
            }
        }
    }
    tracing::info!("automations stopped");
}

async fn accounts(
    ctx: &AutomationsContext,
    state: &mut AutomationsState,
) -> Result<Vec<AccountRow>, OdooError> {
    if let Some((at, list)) = &state.accounts {
        if at.elapsed() < ACCOUNTS_TTL {
            return Ok(list.clone());
        }
    }
    let rows: Vec<Value> = ctx
        .odoo
        .search_read(
            AccountRow::MODEL,
            &Domain::leaf("active", "=", true),
            AccountRow::FIELDS,
            &SearchOptions::new().order("id"),
        )
        .await?;
    let list: Vec<AccountRow> = rows.iter().filter_map(AccountRow::from_record).collect();
    state.accounts = Some((Instant::now(), list.clone()));
    Ok(list)
}

/// One step: a page of changed orders, their messages queued, the cursor moved at the end of a
/// round.
pub async fn step(ctx: &AutomationsContext, state: &mut AutomationsState) -> Step {
    match try_step(ctx, state).await {
        Ok(step) => step,
        Err(e) => {
            // The round starts again from the cursor: nothing of this page was marked handled.
            state.page = None;
            state.round_max = None;
            Step::Failed(e)
        }
    }
}

async fn try_step(
    ctx: &AutomationsContext,
    state: &mut AutomationsState,
) -> Result<Step, StepError> {
    if !state.cursor.loaded() {
        state.cursor.load(&ctx.odoo, CURSOR_NAME).await?;
    }
    let now = Utc::now();
    let overlap = TimeDelta::from_std(ctx.settings.overlap).unwrap_or(TimeDelta::seconds(10));
    let (since, after_id) = match state.page {
        Some(page) => page,
        None => {
            let start = if state.cursor.at.is_some() {
                detect::scan_start(state.cursor.at, overlap, &[], now)
            } else {
                let list = accounts(ctx, state).await?;
                detect::scan_start(None, overlap, &list, now)
            };
            (start, 0)
        }
    };
    ctx.stats.polls.fetch_add(1, Ordering::Relaxed);
    let limit = ctx.settings.batch_size.max(1);
    let mut domain = Domain::leaf("write_date", ">=", format_datetime(since));
    if after_id > 0 {
        domain = domain.and("id", ">", after_id);
    }
    let rows: Vec<Value> = ctx
        .odoo
        .search_read(
            Order::MODEL,
            &domain,
            Order::FIELDS,
            &SearchOptions::new().order("id asc").limit(limit as u64),
        )
        .await?;
    let full = rows.len() >= limit;
    let orders: Vec<Order> = rows.iter().filter_map(Order::from_record).collect();
    ctx.stats
        .orders_read
        .fetch_add(orders.len() as u64, Ordering::Relaxed);
    let last_id = rows
        .iter()
        .filter_map(|r| r.get("id").and_then(Value::as_i64))
        .max()
        .unwrap_or(after_id);
    let fresh: Vec<&Order> = orders.iter().filter(|o| state.seen.is_new(o)).collect();
    let handled = fresh.len();
    if !fresh.is_empty() {
        handle(ctx, state, &fresh).await?;
        for o in &fresh {
            state.seen.mark(o);
        }
    }
    let page_max = orders.iter().filter_map(|o| o.write_date).max();
    state.round_max = state.round_max.max(page_max);
    if full {
        state.page = Some((since, last_id));
        return Ok(Step::More(handled));
    }
    // The round is over: move the cursor (in Odoo only when it moved).
    state.page = None;
    if let Some(max) = state.round_max.take() {
        if state.cursor.at.is_none_or(|c| max > c) {
            state.cursor.save(&ctx.odoo, CURSOR_NAME, max).await?;
        }
    }
    state.seen.prune(since);
    Ok(if handled == 0 {
        Step::Idle
    } else {
        Step::Done(handled)
    })
}

/// The new-order messages and the details requested of `orders`, queued.
async fn handle(
    ctx: &AutomationsContext,
    state: &mut AutomationsState,
    orders: &[&Order],
) -> Result<(), StepError> {
    let list = accounts(ctx, state).await?;
    let creations: Vec<(&Order, AccountRow)> = orders
        .iter()
        .filter_map(|o| creation_account(&list, o.company_id).map(|a| (*o, a.clone())))
        .filter(|(o, a)| creation_due(o, a).is_ok())
        .collect();
    let details: Vec<(&Order, AccountRow)> = orders
        .iter()
        .filter(|o| o.details_requested_at.is_some())
        .filter_map(|o| match default_account(&list, o.company_id) {
            Some(a) => Some((*o, a.clone())),
            None => {
                tracing::warn!(order = %o.name, "automations: details requested for an order whose company has no default WhatsApp account; set one in Settings > WhatsApp");
                None
            }
        })
        .collect();
    if creations.is_empty() && details.is_empty() {
        return Ok(());
    }
    let mut partner_ids: Vec<i64> = creations
        .iter()
        .chain(details.iter())
        .map(|(o, _)| o.partner_id)
        .collect();
    partner_ids.sort_unstable();
    partner_ids.dedup();
    let customers: HashMap<i64, Customer> = ctx
        .odoo
        .read::<Value>(Customer::MODEL, &partner_ids, Customer::FIELDS)
        .await?
        .iter()
        .filter_map(Customer::from_record)
        .map(|c| (c.id, c))
        .collect();

    let mut messages: Vec<Map<String, Value>> = Vec::new();
    let creations: Vec<(&Order, AccountRow, &Customer)> = creations
        .into_iter()
        .filter_map(|(o, a)| {
            let c = customers.get(&o.partner_id);
            match creation_wanted(o, &a, c) {
                Ok(()) => c.map(|c| (o, a, c)),
                Err(skip) => {
                    tracing::debug!(order = %o.name, ?skip, "automations: no new-order message");
                    None
                }
            }
        })
        .collect();
    if !creations.is_empty() {
        messages.extend(creation_messages(ctx, state, &creations).await?);
    }
    let mut served = Vec::new();
    for (order, account) in &details {
        let (Some(customer), Some(requested)) = (
            customers.get(&order.partner_id),
            &order.details_requested_at,
        ) else {
            tracing::warn!(order = %order.name, "automations: details requested for an order whose customer cannot be read; the request stays");
            continue;
        };
        let body = ctx.details.details(order, &customer.lang).await?;
        messages.extend(detect::details_messages(
            order, customer, account, requested, body,
        ));
        served.push(order.id);
    }
    let queued = enqueue(&ctx.odoo, messages).await?;
    ctx.stats
        .queued
        .fetch_add(queued.created.len() as u64, Ordering::Relaxed);
    if !queued.created.is_empty() {
        tracing::info!(
            queued = queued.created.len(),
            already = queued.existing.len(),
            "automations: order messages queued"
        );
    }
    if !served.is_empty() {
        ctx.odoo
            .write(
                Order::MODEL,
                &served,
                &json!({"x_whatsapp_details_requested_at": false}),
            )
            .await?;
    }
    Ok(())
}

async fn creation_messages(
    ctx: &AutomationsContext,
    state: &mut AutomationsState,
    creations: &[(&Order, AccountRow, &Customer)],
) -> Result<Vec<Map<String, Value>>, StepError> {
    let secret = match &state.secret {
        Some(s) => s.clone(),
        None => {
            let s = buttons::load_secret(&ctx.odoo).await?;
            state.secret = Some(s.clone());
            s
        }
    };
    // The customers' 24-hour windows: their conversations with the sending accounts.
    let account_ids: HashSet<i64> = creations.iter().map(|(_, a, _)| a.id).collect();
    let partner_ids: HashSet<i64> = creations.iter().map(|(_, _, c)| c.id).collect();
    let wa_ids: HashSet<String> = creations
        .iter()
        .filter_map(|(_, _, c)| c.number_e164.as_deref())
        .map(|n| n.chars().filter(char::is_ascii_digit).collect())
        .collect();
    let domain = Domain::leaf(
        "account_id",
        "in",
        json!(account_ids.iter().collect::<Vec<_>>()),
    )
    .and_domain(Domain::or(
        Domain::leaf(
            "partner_id",
            "in",
            json!(partner_ids.iter().collect::<Vec<_>>()),
        ),
        Domain::leaf("wa_id", "in", json!(wa_ids.iter().collect::<Vec<_>>())),
    ));
    let conversations: Vec<Value> = ctx
        .odoo
        .search_read(
            "whatsapp.conversation",
            &domain,
            &["account_id", "partner_id", "wa_id", "window_expires_at"],
            &SearchOptions::new(),
        )
        .await?;
    let now = Utc::now();
    let open_window = |account: i64, customer: &Customer| {
        let digits: Option<String> = customer
            .number_e164
            .as_deref()
            .map(|n| n.chars().filter(char::is_ascii_digit).collect());
        conversations.iter().any(|c| {
            let m2o = |f: &str| c.get(f).and_then(|v| v.get(0)).and_then(Value::as_i64);
            let same = m2o("partner_id") == Some(customer.id)
                || (digits.is_some()
                    && c.get("wa_id").and_then(Value::as_str) == digits.as_deref());
            m2o("account_id") == Some(account)
                && same
                && c.get("window_expires_at")
                    .and_then(Value::as_str)
                    .and_then(parse_datetime)
                    .is_some_and(|end| end > now)
        })
    };
    // The quick replies of the templates for new orders, for customers outside their window.
    let wanted: Vec<i64> = creations
        .iter()
        .filter(|(_, a, c)| !open_window(a.id, c))
        .filter_map(|(_, a, _)| a.template_order_creation_id)
        .filter(|t| !state.templates.contains_key(t))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if !wanted.is_empty() {
        let rows: Vec<Value> = ctx
            .odoo
            .read("whatsapp.template", &wanted, &["buttons_json"])
            .await?;
        for row in rows {
            if let Some(id) = row.get("id").and_then(Value::as_i64) {
                state.templates.insert(
                    id,
                    detect::quick_reply_indexes(row.get("buttons_json").and_then(Value::as_str)),
                );
            }
        }
    }
    let currency_ids: Vec<i64> = creations
        .iter()
        .filter_map(|(o, _, _)| o.currency_id)
        .collect();
    let money = ctx.details.money(&currency_ids).await?;
    let mut out = Vec::with_capacity(creations.len());
    for (order, account, customer) in creations {
        let texts = ctx
            .details
            .texts()
            .texts(&customer.lang, order.company_id)
            .await?;
        let format = ctx.details.lang_format(&customer.lang).await?;
        let amount = match order.currency_id.and_then(|c| money.get(&c)) {
            Some(m) => m.format(order.amount_total, &format),
            None => format.number(order.amount_total, 2),
        };
        let mut payloads: [String; 3] = Default::default();
        for (slot, (button, _)) in payloads.iter_mut().zip(ORDER_BUTTONS) {
            *slot = buttons::sign(&secret, button, order.id)
                .map_err(|e| StepError::Secret(buttons::LoadError::Payload(e)))?;
        }
        let window_open = open_window(account.id, customer);
        out.push(detect::creation_message(&Creation {
            order,
            customer,
            account,
            texts: &texts,
            amount,
            payloads,
            window_open,
            template_quick_replies: account
                .template_order_creation_id
                .and_then(|t| state.templates.get(&t).cloned()),
        }));
    }
    Ok(out)
}
