//! The invoice loop: the only part of the invoice automations (posted invoices, payments,
//! "Send details" requests) that talks to Odoo.
//!
//! Each [`invoice_step`] reads one page of the posted customer documents written since the
//! cursor (minus the overlap), like the order loop, plus the invoices whose payment message
//! waited out its debounce, and queues their messages. The cursor (`whatsapp.cursor` named
//! `account.move`) never moves past an invoice whose payment message is still waiting, so a
//! restart finds it again.

use super::cursor::StoredCursor;
use super::invoices::{
    self, default_account, details_messages, posted_account, posted_message, posted_wanted,
    residual_account, residual_decision, residual_message, InvoiceAccount, Residual,
};
use super::AutomationsSettings;
use crate::enqueue::{enqueue, EnqueueError};
use crate::invoices::{
    details_text, posted_caption, residual_text, Invoice, InvoiceReadError, InvoiceReader,
};
use crate::odoo::{format_datetime, Domain, OdooClient, OdooError, SearchOptions};
use crate::orders::{Customer, DetailsReader, Style};
use crate::texts::{Money, TextCache};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The cursor's name in `whatsapp.cursor`.
pub const INVOICE_CURSOR: &str = "account.move";
const ACCOUNTS_TTL: Duration = Duration::from_secs(10);

/// What the invoice automations need. Cheap to clone.
#[derive(Clone)]
pub struct InvoicesContext {
    pub odoo: OdooClient,
    pub settings: AutomationsSettings,
    pub reader: Arc<InvoiceReader>,
    pub stats: Arc<InvoiceStats>,
    /// Woken by Odoo's bus when a customer invoice is posted, paid or its details asked for;
    /// idle polls are slow while the bus is up (never past a payment's debounce).
    pub bus: crate::poll::Wake,
}

impl InvoicesContext {
    pub fn new(odoo: OdooClient, settings: AutomationsSettings) -> InvoicesContext {
        let texts = Arc::new(TextCache::new(odoo.clone(), TextCache::DEFAULT_TTL));
        let details = Arc::new(DetailsReader::new(odoo.clone(), texts));
        InvoicesContext {
            reader: Arc::new(InvoiceReader::new(odoo.clone(), details)),
            odoo,
            settings,
            stats: Arc::new(InvoiceStats::default()),
            bus: crate::poll::Wake::default(),
        }
    }
}

/// Counters, for logs and benchmarks.
#[derive(Debug, Default)]
pub struct InvoiceStats {
    pub polls: AtomicU64,
    pub invoices_read: AtomicU64,
    pub queued: AtomicU64,
}

/// What survives from one step to the next.
#[derive(Default)]
pub struct InvoicesState {
    cursor: StoredCursor,
    page: Option<(DateTime<Utc>, i64)>,
    round_max: Option<DateTime<Utc>>,
    /// Invoices handled, with what they were: an invoice read again unchanged is skipped.
    seen: HashMap<i64, Fingerprint>,
    accounts: Option<(Instant, Vec<InvoiceAccount>)>,
    /// Invoices whose payment message waits for its debounce: id → (due at, write_date).
    pending: BTreeMap<i64, (DateTime<Utc>, Option<DateTime<Utc>>)>,
}

impl InvoicesState {
    /// The invoices whose payment message is waiting.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// How long until the first waiting payment message is due.
    pub fn next_due(&self, now: DateTime<Utc>) -> Option<Duration> {
        self.pending
            .values()
            .map(|(until, _)| (*until - now).to_std().unwrap_or_default())
            .min()
    }
}

/// What an invoice was when it was handled. `write_date` alone is not enough: Odoo keeps it to
/// the second, and a payment registered in the same second as the posting (or as another
/// payment) must be looked at again.
#[derive(Debug, Clone, PartialEq)]
struct Fingerprint {
    write_date: Option<DateTime<Utc>>,
    state: String,
    payment_state: String,
    residual: u64,
    invoice_sent: bool,
    details_requested_at: Option<String>,
    baseline: (u64, Option<DateTime<Utc>>),
}

impl Fingerprint {
    fn of(i: &Invoice) -> Fingerprint {
        Fingerprint {
            write_date: i.write_date,
            state: i.state.clone(),
            payment_state: i.payment_state.clone(),
            residual: i.amount_residual.to_bits(),
            invoice_sent: i.invoice_sent,
            details_requested_at: i.details_requested_at.clone(),
            baseline: (i.last_residual_notified.to_bits(), i.last_residual_at),
        }
    }
}

/// What one step did.
#[derive(Debug)]
pub enum InvoiceStep {
    Idle,
    More(usize),
    Done(usize),
    Failed(InvoiceStepError),
}

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum InvoiceStepError {
    #[error("{0}")]
    Odoo(#[from] OdooError),
    #[error("{0}")]
    Enqueue(#[from] EnqueueError),
    #[error("{0}")]
    Read(#[from] InvoiceReadError),
}

impl InvoiceStepError {
    pub fn is_retryable(&self) -> bool {
        match self {
            InvoiceStepError::Odoo(e) => e.is_retryable(),
            InvoiceStepError::Enqueue(e) => e.is_retryable(),
            InvoiceStepError::Read(e) => e.is_retryable(),
        }
    }
}

/// Runs until `shutdown`.
pub async fn run_invoices(ctx: InvoicesContext, shutdown: CancellationToken) {
    let mut state = InvoicesState::default();
    let mut failures = crate::poll::Failures::default();
    tracing::info!("invoice automations started (posted invoices, payments, details requests)");
    loop {
        let step = tokio::select! {
            _ = shutdown.cancelled() => break,
            step = invoice_step(&ctx, &mut state) => step,
        };
        let wait = match step {
            InvoiceStep::More(_) => {
                failures.reset();
                Duration::ZERO
            }
            InvoiceStep::Idle => {
                failures.reset();
                let due = state.next_due(Utc::now());
                ctx.bus.idle_pause(ctx.settings.poll_interval, due)
            }
            InvoiceStep::Done(_) => {
                failures.reset();
                ctx.settings.poll_interval
            }
            InvoiceStep::Failed(err) => failures.failed(
                &err,
                ctx.settings.poll_interval,
                "invoice automations",
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
    tracing::info!("invoice automations stopped");
}

async fn accounts(
    ctx: &InvoicesContext,
    state: &mut InvoicesState,
) -> Result<Vec<InvoiceAccount>, OdooError> {
    if let Some((at, list)) = &state.accounts {
        if at.elapsed() < ACCOUNTS_TTL {
            return Ok(list.clone());
        }
    }
    let rows: Vec<Value> = ctx
        .odoo
        .search_read(
            InvoiceAccount::MODEL,
            &Domain::leaf("active", "=", true),
            InvoiceAccount::FIELDS,
            &SearchOptions::new().order("id"),
        )
        .await?;
    let list: Vec<InvoiceAccount> = rows
        .iter()
        .filter_map(InvoiceAccount::from_record)
        .collect();
    state.accounts = Some((Instant::now(), list.clone()));
    Ok(list)
}

/// The first `write_date` a round reads: the cursor minus the overlap; without one, the
/// earliest switch-on time of the last 24 hours (else now minus the overlap).
fn scan_start(
    cursor: Option<DateTime<Utc>>,
    overlap: TimeDelta,
    accounts: &[InvoiceAccount],
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    if let Some(c) = cursor {
        return c - overlap;
    }
    let day_ago = now - TimeDelta::hours(24);
    accounts
        .iter()
        .filter(|a| a.send_posted)
        .filter_map(|a| a.posted_enabled_at)
        .min()
        .map(|t| t.max(day_ago))
        .unwrap_or(now)
        - overlap
}

/// One step: the invoices whose payment message is due, then a page of changed invoices.
pub async fn invoice_step(ctx: &InvoicesContext, state: &mut InvoicesState) -> InvoiceStep {
    match try_step(ctx, state).await {
        Ok(step) => step,
        Err(e) => {
            state.page = None;
            state.round_max = None;
            InvoiceStep::Failed(e)
        }
    }
}

async fn try_step(
    ctx: &InvoicesContext,
    state: &mut InvoicesState,
) -> Result<InvoiceStep, InvoiceStepError> {
    if !state.cursor.loaded() {
        state.cursor.load(&ctx.odoo, INVOICE_CURSOR).await?;
    }
    let now = Utc::now();
    // Payment messages whose debounce is over.
    let due: Vec<i64> = state
        .pending
        .iter()
        .filter(|(_, (until, _))| *until <= now)
        .map(|(id, _)| *id)
        .collect();
    let mut handled = 0;
    if !due.is_empty() {
        let rows: Vec<Value> = ctx.odoo.read(Invoice::MODEL, &due, Invoice::FIELDS).await?;
        let found: Vec<Invoice> = rows.iter().filter_map(Invoice::from_record).collect();
        for id in &due {
            if !found.iter().any(|i| i.id == *id) {
                state.pending.remove(id);
            }
        }
        let refs: Vec<&Invoice> = found.iter().collect();
        handle(ctx, state, &refs, now).await?;
        handled += refs.len();
    }

    let overlap = TimeDelta::from_std(ctx.settings.overlap).unwrap_or(TimeDelta::seconds(10));
    let (since, after_id) = match state.page {
        Some(page) => page,
        None => {
            let start = if state.cursor.at.is_some() {
                scan_start(state.cursor.at, overlap, &[], now)
            } else {
                let list = accounts(ctx, state).await?;
                scan_start(None, overlap, &list, now)
            };
            (start, 0)
        }
    };
    ctx.stats.polls.fetch_add(1, Ordering::Relaxed);
    let limit = ctx.settings.batch_size.max(1);
    let mut domain = Domain::leaf("write_date", ">=", format_datetime(since))
        .and(
            "move_type",
            "in",
            json!(["out_invoice", "out_refund", "out_receipt"]),
        )
        .and("state", "=", "posted");
    if after_id > 0 {
        domain = domain.and("id", ">", after_id);
    }
    let rows: Vec<Value> = ctx
        .odoo
        .search_read(
            Invoice::MODEL,
            &domain,
            Invoice::FIELDS,
            &SearchOptions::new().order("id asc").limit(limit as u64),
        )
        .await?;
    let full = rows.len() >= limit;
    let read: Vec<Invoice> = rows.iter().filter_map(Invoice::from_record).collect();
    ctx.stats
        .invoices_read
        .fetch_add(read.len() as u64, Ordering::Relaxed);
    let last_id = rows
        .iter()
        .filter_map(|r| r.get("id").and_then(Value::as_i64))
        .max()
        .unwrap_or(after_id);
    let fresh: Vec<&Invoice> = read
        .iter()
        .filter(|i| state.seen.get(&i.id) != Some(&Fingerprint::of(i)))
        .collect();
    handled += fresh.len();
    if !fresh.is_empty() {
        handle(ctx, state, &fresh, now).await?;
        for i in &fresh {
            state.seen.insert(i.id, Fingerprint::of(i));
        }
    }
    let page_max = read.iter().filter_map(|i| i.write_date).max();
    state.round_max = state.round_max.max(page_max);
    if full {
        state.page = Some((since, last_id));
        return Ok(InvoiceStep::More(handled));
    }
    state.page = None;
    if let Some(max) = state.round_max.take() {
        // Not past an invoice whose payment message still waits: a restart finds it again.
        let waiting = state.pending.values().filter_map(|(_, w)| *w).min();
        let target = waiting.map_or(max, |w| w.min(max));
        if state.cursor.at.is_none_or(|c| target > c) {
            state.cursor.save(&ctx.odoo, INVOICE_CURSOR, target).await?;
        }
    }
    state
        .seen
        .retain(|_, f| f.write_date.is_some_and(|w| w >= since));
    Ok(if handled == 0 {
        InvoiceStep::Idle
    } else {
        InvoiceStep::Done(handled)
    })
}

/// What `handle` found to do for one invoice.
struct Todo<'a> {
    invoice: &'a Invoice,
    posted: Option<InvoiceAccount>,
    details: Option<(InvoiceAccount, String)>,
    residual: Option<(InvoiceAccount, f64, f64)>,
}

/// The messages of `invoices`, queued; then the stored baselines and requests updated.
async fn handle(
    ctx: &InvoicesContext,
    state: &mut InvoicesState,
    invoices: &[&Invoice],
    now: DateTime<Utc>,
) -> Result<(), InvoiceStepError> {
    let list = accounts(ctx, state).await?;
    let mut todos: Vec<Todo<'_>> = Vec::new();
    let mut raises: Vec<(i64, f64)> = Vec::new();
    let mut paid_ids: Vec<i64> = Vec::new();
    let mut clear_requests: Vec<i64> = Vec::new();
    for invoice in invoices {
        if matches!(
            invoice.payment_state.as_str(),
            "paid" | "in_payment" | "reversed"
        ) {
            paid_ids.push(invoice.id);
        }
        let posted = posted_account(&list, invoice.company_id)
            .filter(|a| invoices::posted_due(invoice, a).is_ok())
            .cloned();
        let details = match &invoice.details_requested_at {
            Some(at) => {
                clear_requests.push(invoice.id);
                match default_account(&list, invoice.company_id) {
                    Some(a) => Some((a.clone(), at.clone())),
                    None => {
                        tracing::warn!(invoice = %invoice.name, "invoice automations: details requested for an invoice whose company has no default WhatsApp account; set one in Settings > WhatsApp");
                        None
                    }
                }
            }
            None => None,
        };
        let mut residual = None;
        match residual_account(&list, invoice.company_id) {
            Some(a) => match residual_decision(invoice, a, now) {
                Residual::Nothing => {
                    state.pending.remove(&invoice.id);
                }
                Residual::Raise { to } => {
                    state.pending.remove(&invoice.id);
                    raises.push((invoice.id, to));
                }
                Residual::Wait { until } => {
                    state
                        .pending
                        .insert(invoice.id, (until, invoice.write_date));
                }
                Residual::Notify { paid, residual: r } => {
                    state.pending.remove(&invoice.id);
                    residual = Some((a.clone(), paid, r));
                }
            },
            None => {
                state.pending.remove(&invoice.id);
            }
        }
        if posted.is_some() || details.is_some() || residual.is_some() {
            todos.push(Todo {
                invoice,
                posted,
                details,
                residual,
            });
        }
    }

    let mut messages: Vec<Map<String, Value>> = Vec::new();
    let mut baselines: Vec<(i64, f64)> = raises;
    if !todos.is_empty() {
        let mut partner_ids: Vec<i64> = todos.iter().map(|t| t.invoice.partner_id).collect();
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
        // Customers who cannot get automatic messages get none (the details were asked for
        // by a person: the outbox says why they fail).
        todos.retain_mut(|t| {
            let c = customers.get(&t.invoice.partner_id);
            if let Some(a) = &t.posted {
                if let Err(skip) = posted_wanted(t.invoice, a, c) {
                    tracing::debug!(invoice = %t.invoice.name, ?skip, "invoice automations: no posted-invoice message");
                    t.posted = None;
                }
            }
            if t.residual.is_some() && !c.is_some_and(Customer::reachable) {
                t.residual = None;
            }
            c.is_some() && (t.posted.is_some() || t.details.is_some() || t.residual.is_some())
        });
        messages = compose(ctx, &todos, &customers).await?;
        for t in &todos {
            if let Some((_, _, r)) = t.residual {
                baselines.push((t.invoice.id, r));
            }
        }
    }

    if !messages.is_empty() {
        let queued = enqueue(&ctx.odoo, messages).await?;
        ctx.stats
            .queued
            .fetch_add(queued.created.len() as u64, Ordering::Relaxed);
        if !queued.created.is_empty() {
            tracing::info!(
                queued = queued.created.len(),
                already = queued.existing.len(),
                "invoice automations: messages queued"
            );
        }
    }
    write_baselines(&ctx.odoo, &baselines, now).await?;
    if !paid_ids.is_empty() {
        cancel_reminders(&ctx.odoo, &paid_ids).await?;
    }
    if !clear_requests.is_empty() {
        ctx.odoo
            .write(
                Invoice::MODEL,
                &clear_requests,
                &json!({"x_whatsapp_details_requested_at": false}),
            )
            .await?;
    }
    Ok(())
}

/// The messages of the todos, in each customer's words.
async fn compose(
    ctx: &InvoicesContext,
    todos: &[Todo<'_>],
    customers: &HashMap<i64, Customer>,
) -> Result<Vec<Map<String, Value>>, InvoiceStepError> {
    let reader = &ctx.reader;
    let details = reader.details();
    let currency_ids: Vec<i64> = todos.iter().filter_map(|t| t.invoice.currency_id).collect();
    let money = details.money(&currency_ids).await?;
    let with_links: Vec<i64> = todos
        .iter()
        .filter(|t| t.posted.is_some() || t.details.is_some())
        .map(|t| t.invoice.id)
        .collect();
    let links = portal_links(reader, &with_links).await?;
    let detail_ids: Vec<i64> = todos
        .iter()
        .filter(|t| t.details.is_some())
        .map(|t| t.invoice.id)
        .collect();
    let mut lines = if detail_ids.is_empty() {
        HashMap::new()
    } else {
        reader.lines(&detail_ids).await?
    };
    let plain = Money {
        symbol: String::new(),
        before: false,
        decimals: 2,
    };
    let mut out = Vec::new();
    for t in todos {
        let Some(customer) = customers.get(&t.invoice.partner_id) else {
            continue;
        };
        let texts = details
            .texts()
            .texts(&customer.lang, t.invoice.company_id)
            .await?;
        let format = details.lang_format(&customer.lang).await?;
        let currency = t
            .invoice
            .currency_id
            .and_then(|c| money.get(&c))
            .unwrap_or(&plain);
        let style = Style {
            texts: &texts,
            money: currency,
            lang: &format,
        };
        let link = links.get(&t.invoice.id).map(String::as_str);
        if let Some(account) = &t.posted {
            let caption = posted_caption(t.invoice, &customer.name, &style, link);
            out.push(posted_message(t.invoice, customer, account, caption));
        }
        if let Some((account, paid, residual)) = &t.residual {
            let body = residual_text(t.invoice, &customer.name, *paid, *residual, &style);
            out.push(residual_message(
                t.invoice, customer, account, *residual, body,
            ));
        }
        if let Some((account, requested)) = &t.details {
            let payment = reader.payment_link(t.invoice).await?;
            let invoice_lines = lines.remove(&t.invoice.id).unwrap_or_default();
            let body = details_text(t.invoice, &invoice_lines, &style, link, payment.as_ref());
            out.extend(details_messages(
                t.invoice, customer, account, requested, body,
            ));
        }
    }
    Ok(out)
}

/// The portal links of `ids`: one call per 200 invoices (see [`InvoiceReader::portal_links`]).
pub(crate) async fn portal_links(
    reader: &InvoiceReader,
    ids: &[i64],
) -> Result<HashMap<i64, String>, OdooError> {
    reader.portal_links(ids).await
}

/// Stores the amounts due told (or raised to), one `write` per distinct amount.
async fn write_baselines(
    odoo: &OdooClient,
    baselines: &[(i64, f64)],
    now: DateTime<Utc>,
) -> Result<(), OdooError> {
    let mut groups: BTreeMap<String, (f64, Vec<i64>)> = BTreeMap::new();
    for (id, amount) in baselines {
        groups
            .entry(format!("{amount:.6}"))
            .or_insert((*amount, Vec::new()))
            .1
            .push(*id);
    }
    for (amount, ids) in groups.values() {
        odoo.write(
            Invoice::MODEL,
            ids,
            &json!({"x_whatsapp_last_residual_notified": amount,
                    "x_whatsapp_last_residual_at": format_datetime(now)}),
        )
        .await?;
    }
    Ok(())
}

/// Cancels the reminders of paid invoices that are still queued (the addon's `action_cancel`
/// cancels only queued messages, in Odoo's transaction, so one the outbox just claimed is not
/// touched).
async fn cancel_reminders(odoo: &OdooClient, invoice_ids: &[i64]) -> Result<(), OdooError> {
    let ids = odoo
        .search(
            crate::enqueue::MESSAGE_MODEL,
            &Domain::leaf("trigger", "=", "unpaid_reminder")
                .and("state", "=", "queued")
                .and("res_model", "=", Invoice::MODEL)
                .and("res_id", "in", json!(invoice_ids)),
            &SearchOptions::new(),
        )
        .await?;
    if !ids.is_empty() {
        let _: Value = odoo
            .call(
                crate::enqueue::MESSAGE_MODEL,
                "action_cancel",
                json!([ids]),
                json!({}),
            )
            .await?;
        tracing::info!(
            cancelled = ids.len(),
            "invoice automations: reminders of paid invoices cancelled before they went"
        );
    }
    Ok(())
}
