//! The button-action loop: the only part of the button actions that talks to Odoo.
//!
//! Each [`step`] reads a batch of presses not yet acted on and returns a [`Step`] the loop
//! acts on: step again at once after a full batch, wait the poll interval otherwise (or until
//! inbound processing says it recorded received messages), back off while Odoo fails.

use super::plan::{from_customer, match_action, words, ActionRow, Outcome, Press, State};
use super::ActionsSettings;
use crate::buttons::{self, ButtonSecret};
use crate::enqueue::{enqueue, EnqueueError};
use crate::lang::Lang;
use crate::odoo::escape_html;
use crate::odoo::{Context, Domain, OdooClient, OdooError, SearchOptions};
use crate::orders::{
    cancel_decision, confirm_decision, CancelDecision, ConfirmDecision, Customer, DetailsReader,
    Order,
};
use crate::scenarios::{MenuCache, ScenarioSettings};
use crate::texts::{TextCache, TextKey};
use chrono::{TimeDelta, Utc};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Actions and users are read again after this long.
const CACHE_TTL: Duration = Duration::from_secs(30);

/// What the button actions need. Cheap to clone.
#[derive(Clone)]
pub struct ActionsContext {
    pub odoo: OdooClient,
    pub settings: ActionsSettings,
    /// Menus: stale presses, the chain cap ([`crate::scenarios`]).
    pub scenarios: ScenarioSettings,
    pub details: Arc<DetailsReader>,
    /// Odoo's payment links (`send_payment_link`), as the invoice details get them.
    pub invoices: Arc<crate::invoices::InvoiceReader>,
    pub stats: Arc<ActionsStats>,
    /// Told when inbound processing recorded received messages: the loop steps at once
    /// instead of at its next poll.
    pub wake: Option<Arc<tokio::sync::Notify>>,
    /// Odoo's bus: while it is up, an idle loop polls at the slow rate (presses are recorded by
    /// inbound processing, which tells `wake`).
    pub bus: crate::poll::Wake,
}

impl ActionsContext {
    pub fn new(odoo: OdooClient, settings: ActionsSettings) -> ActionsContext {
        let texts = Arc::new(TextCache::new(odoo.clone(), TextCache::DEFAULT_TTL));
        let details = Arc::new(DetailsReader::new(odoo.clone(), texts));
        ActionsContext {
            invoices: Arc::new(crate::invoices::InvoiceReader::new(
                odoo.clone(),
                details.clone(),
            )),
            details,
            odoo,
            settings,
            scenarios: ScenarioSettings::default(),
            stats: Arc::new(ActionsStats::default()),
            wake: None,
            bus: crate::poll::Wake::default(),
        }
    }

    /// Steps as soon as `received` is told (inbound processing recorded messages).
    pub fn woken_by(mut self, received: Arc<tokio::sync::Notify>) -> Self {
        self.wake = Some(received);
        self
    }

    /// Polling slowly while Odoo's bus is up.
    pub fn with_bus(mut self, bus: crate::poll::Wake) -> Self {
        self.bus = bus;
        self
    }

    /// With these menu settings.
    pub fn with_scenarios(mut self, scenarios: ScenarioSettings) -> ActionsContext {
        self.scenarios = scenarios;
        self
    }
}

/// Counters, for logs and benchmarks.
#[derive(Debug, Default)]
pub struct ActionsStats {
    pub polls: AtomicU64,
    pub presses: AtomicU64,
    pub confirmed: AtomicU64,
    pub cancelled: AtomicU64,
}

/// What survives from one step to the next.
#[derive(Default)]
pub struct ActionsState {
    secret: Option<ButtonSecret>,
    /// Actions by language, with when they were read.
    actions: HashMap<String, (Instant, Vec<ActionRow>)>,
    /// Users' languages.
    users: HashMap<i64, (Instant, Lang)>,
    /// Accounts: attach the PDF to details.
    details_pdf: HashMap<i64, (Instant, bool)>,
    note_subtype: Option<Option<i64>>,
    /// Scenarios and accounts' menu settings.
    pub(super) menus: MenuCache,
}

/// What one step did.
#[derive(Debug)]
pub enum Step {
    Idle,
    /// `n` presses handled; the batch was full.
    More(usize),
    Done(usize),
    Failed(StepError),
}

/// Why a step failed (the presses stay to be acted on).
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
pub async fn run(ctx: ActionsContext, shutdown: CancellationToken) {
    let mut state = ActionsState::default();
    let mut failures = crate::poll::Failures::default();
    tracing::info!(poll_interval = ?ctx.settings.poll_interval, "button actions started");
    loop {
        let step = tokio::select! {
            _ = shutdown.cancelled() => break,
            step = step(&ctx, &mut state) => step,
        };
        let wait = match step {
            Step::More(_) => {
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
                "button actions",
                "the presses wait and are acted on once it answers",
            ),
        };
        if !wait.is_zero() {
            let woken = async {
                match &ctx.wake {
                    Some(wake) if failures.count() == 0 => wake.notified().await,
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ctx.bus.pause(wait, failures.count() > 0) => {}
                () = woken => {}
            }
        }
    }
    tracing::info!("button actions stopped");
}

/// The domain of the presses not yet acted on, and of the texts received since `since` not
/// yet looked at (scenario keywords, the default reply).
pub fn todo_domain(since: chrono::DateTime<Utc>) -> Domain {
    Domain::leaf("direction", "=", "in")
        .and("action_state", "=", false)
        .and_domain(Domain::or(
            Domain::leaf("button_payload", "!=", false),
            Domain::leaf("message_type", "=", "text").and(
                "received_at",
                ">=",
                crate::odoo::format_datetime(since),
            ),
        ))
}

/// One step: a batch of presses acted on.
pub async fn step(ctx: &ActionsContext, state: &mut ActionsState) -> Step {
    ctx.stats.polls.fetch_add(1, Ordering::Relaxed);
    let limit = ctx.settings.batch_size.max(1);
    let rows: Vec<Value> = match ctx
        .odoo
        .search_read(
            Press::MODEL,
            &todo_domain(
                Utc::now()
                    - TimeDelta::from_std(ctx.settings.max_age).unwrap_or(TimeDelta::hours(24)),
            ),
            Press::FIELDS,
            &SearchOptions::new().order("id asc").limit(limit as u64),
        )
        .await
    {
        Ok(r) => r,
        Err(e) => return Step::Failed(e.into()),
    };
    if rows.is_empty() {
        return Step::Idle;
    }
    let presses: Vec<Press> = rows.iter().filter_map(Press::from_record).collect();
    match handle(ctx, state, &presses).await {
        Ok(()) => {
            ctx.stats
                .presses
                .fetch_add(presses.len() as u64, Ordering::Relaxed);
            if rows.len() >= limit {
                Step::More(presses.len())
            } else {
                Step::Done(presses.len())
            }
        }
        Err(e) => Step::Failed(e),
    }
}

/// What acting on the presses produced, written at the end of the batch.
#[derive(Default)]
pub(super) struct Effects {
    pub(super) replies: Vec<Map<String, Value>>,
    notes: Vec<(i64, String)>,
    pub(super) outcomes: Vec<(i64, Outcome)>,
    /// Queued after `replies`: what a scenario option does after its button action.
    pub(super) later: Vec<Map<String, Value>>,
    /// Added to a press's result: what its scenario option did.
    pub(super) suffix: HashMap<i64, String>,
    /// Conversations' menu state.
    pub(super) conversations: Vec<(i64, Map<String, Value>)>,
}

async fn actions_in(
    ctx: &ActionsContext,
    state: &mut ActionsState,
    lang: &str,
) -> Result<Vec<ActionRow>, OdooError> {
    let lang = if lang.is_empty() { "en_US" } else { lang };
    if let Some((at, list)) = state.actions.get(lang) {
        if at.elapsed() < CACHE_TTL {
            return Ok(list.clone());
        }
    }
    let rows: Vec<Value> = ctx
        .odoo
        .with_context(Context::new().lang(lang))
        .search_read(
            ActionRow::MODEL,
            &Domain::leaf("active", "=", true),
            ActionRow::FIELDS,
            &SearchOptions::new().order("sequence, id"),
        )
        .await?;
    let list: Vec<ActionRow> = rows.iter().filter_map(ActionRow::from_record).collect();
    state
        .actions
        .insert(lang.to_owned(), (Instant::now(), list.clone()));
    Ok(list)
}

async fn user_langs(
    ctx: &ActionsContext,
    state: &mut ActionsState,
    ids: &[i64],
) -> Result<(), OdooError> {
    let missing: Vec<i64> = ids
        .iter()
        .copied()
        .filter(|id| {
            state
                .users
                .get(id)
                .is_none_or(|(at, _)| at.elapsed() >= CACHE_TTL)
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let rows: Vec<Value> = ctx.odoo.read("res.users", &missing, &["lang"]).await?;
    for row in rows {
        if let Some(id) = row.get("id").and_then(Value::as_i64) {
            let lang = Lang::from_odoo(row.get("lang").and_then(Value::as_str));
            state.users.insert(id, (Instant::now(), lang));
        }
    }
    Ok(())
}

async fn details_pdf(
    ctx: &ActionsContext,
    state: &mut ActionsState,
    account: Option<i64>,
) -> Result<bool, OdooError> {
    let Some(id) = account else {
        return Ok(false);
    };
    if let Some((at, pdf)) = state.details_pdf.get(&id) {
        if at.elapsed() < CACHE_TTL {
            return Ok(*pdf);
        }
    }
    let rows: Vec<Value> = ctx
        .odoo
        .read("whatsapp.account", &[id], &["order_details_pdf"])
        .await?;
    let pdf = rows
        .first()
        .and_then(|r| r.get("order_details_pdf"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    state.details_pdf.insert(id, (Instant::now(), pdf));
    Ok(pdf)
}

async fn handle(
    ctx: &ActionsContext,
    state: &mut ActionsState,
    presses: &[Press],
) -> Result<(), StepError> {
    let secret = match &state.secret {
        Some(s) => s.clone(),
        None => {
            let s = buttons::load_secret(&ctx.odoo).await?;
            state.secret = Some(s.clone());
            s
        }
    };
    let now = Utc::now();
    let max_age = TimeDelta::from_std(ctx.settings.max_age).unwrap_or(TimeDelta::hours(24));
    let mut effects = Effects::default();

    // Texts and scenario options first; what is left runs button actions (an option's own
    // action included).
    let matching = actions_in(ctx, state, "en_US").await?;
    let routed = super::menus::route(ctx, state, presses, &matching, now, &mut effects).await?;
    let mut work: Vec<(&Press, ActionRow, Option<i64>)> = Vec::new();
    let mut extra: Vec<(&Press, ActionRow)> = Vec::new();
    for (press, forced) in routed {
        let outcome = |state: State, result: String, action: Option<&ActionRow>| Outcome {
            state,
            result,
            action_id: action.map(|a| a.id),
            order_id: None,
        };
        if press.received_at.is_some_and(|t| now - t > max_age) {
            let hours = ctx.settings.max_age.as_secs() / 3600;
            effects.outcomes.push((
                press.id,
                outcome(State::Refused, words::too_old(Lang::En, hours), None),
            ));
            continue;
        }
        let Some(action) = forced.as_ref().or_else(|| match_action(&matching, press)) else {
            effects.outcomes.push((
                press.id,
                outcome(
                    State::Ignored,
                    words::no_action(Lang::En, &press.payload),
                    None,
                ),
            ));
            continue;
        };
        match action.action_type.as_str() {
            "reply_text" => work.push((press, action.clone(), None)),
            _ if action.on_order() => match buttons::verify(&secret, &press.payload) {
                Ok(bound) => work.push((press, action.clone(), Some(bound.record_id))),
                Err(e) => effects.outcomes.push((
                    press.id,
                    outcome(
                        State::Refused,
                        words::bad_payload(Lang::En, &e.to_string()),
                        Some(action),
                    ),
                )),
            },
            _ => extra.push((press, action.clone())),
        }
    }

    // The orders, their customers and the contacts of the customers' companies.
    let mut order_ids: Vec<i64> = work.iter().filter_map(|(_, _, o)| *o).collect();
    order_ids.sort_unstable();
    order_ids.dedup();
    // The orders and the pressers' contacts at once (the presser is usually the customer).
    let mut press_partners: Vec<i64> = work.iter().filter_map(|(p, _, _)| p.partner_id).collect();
    press_partners.sort_unstable();
    press_partners.dedup();
    let (orders, pressers) = tokio::join!(
        ctx.odoo
            .read::<Value>(Order::MODEL, &order_ids, Order::FIELDS),
        ctx.odoo
            .read::<Value>(Customer::MODEL, &press_partners, Customer::FIELDS),
    );
    let mut orders: HashMap<i64, Order> = orders?
        .iter()
        .filter_map(Order::from_record)
        .map(|o| (o.id, o))
        .collect();
    let mut customers: HashMap<i64, Customer> = pressers?
        .iter()
        .filter_map(Customer::from_record)
        .map(|c| (c.id, c))
        .collect();
    let mut missing: Vec<i64> = orders
        .values()
        .map(|o| o.partner_id)
        .filter(|p| !customers.contains_key(p))
        .collect();
    missing.sort_unstable();
    missing.dedup();
    if !missing.is_empty() {
        customers.extend(
            ctx.odoo
                .read::<Value>(Customer::MODEL, &missing, Customer::FIELDS)
                .await?
                .iter()
                .filter_map(Customer::from_record)
                .map(|c| (c.id, c)),
        );
    }
    // The contacts of the customers' companies, only when a press is not from the customer
    // itself.
    let entities: Vec<i64> = work
        .iter()
        .filter_map(|(press, _, order)| {
            let customer = customers.get(&orders.get(&(*order)?)?.partner_id)?;
            (press.partner_id != Some(customer.id))
                .then(|| customer.commercial_partner_id.unwrap_or(customer.id))
        })
        .collect();
    let contacts: Vec<Customer> = if entities.is_empty() {
        Vec::new()
    } else {
        ctx.odoo
            .search_read::<Value>(
                Customer::MODEL,
                &Domain::leaf("commercial_partner_id", "in", json!(entities)),
                Customer::FIELDS,
                &SearchOptions::new(),
            )
            .await?
            .iter()
            .filter_map(Customer::from_record)
            .collect()
    };
    let salespeople: Vec<i64> = orders.values().filter_map(|o| o.user_id).collect();
    user_langs(ctx, state, &salespeople).await?;

    for (press, action, order_id) in work {
        // The presser's language: their contact's, else the order customer's.
        let customer_lang = press
            .partner_id
            .and_then(|p| customers.get(&p))
            .map(|c| c.lang.clone())
            .or_else(|| {
                order_id
                    .and_then(|o| orders.get(&o))
                    .and_then(|o| customers.get(&o.partner_id))
                    .map(|c| c.lang.clone())
            })
            .unwrap_or_default();
        let localized = actions_in(ctx, state, &customer_lang).await?;
        let reply_text = localized
            .iter()
            .find(|a| a.id == action.id)
            .and_then(|a| a.reply_text.clone())
            .or(action.reply_text.clone());
        let company = press.company_id;
        let texts = ctx.details.texts().texts(&customer_lang, company).await?;
        let Some(order_id) = order_id else {
            // reply_text
            let body = reply_text.unwrap_or_default();
            if body.trim().is_empty() {
                effects.outcomes.push((
                    press.id,
                    Outcome {
                        state: State::Ignored,
                        result: words::not_run(Lang::En, &action.name, "reply_text"),
                        action_id: Some(action.id),
                        order_id: None,
                    },
                ));
                continue;
            }
            effects
                .replies
                .push(reply(press, None, "button_action", body, None));
            effects.outcomes.push((
                press.id,
                Outcome {
                    state: State::Done,
                    result: words::replied(Lang::En),
                    action_id: Some(action.id),
                    order_id: None,
                },
            ));
            continue;
        };
        let Some(order) = orders.get(&order_id).cloned() else {
            effects.outcomes.push((
                press.id,
                Outcome {
                    state: State::Refused,
                    result: words::no_order(Lang::En, order_id),
                    action_id: Some(action.id),
                    order_id: None,
                },
            ));
            continue;
        };
        let user_lang = order
            .user_id
            .and_then(|u| state.users.get(&u))
            .map(|(_, l)| *l)
            .unwrap_or_default();
        let done = |state: State, result: String| Outcome {
            state,
            result,
            action_id: Some(action.id),
            order_id: Some(order.id),
        };
        let number = press.number().unwrap_or_default();
        let Some(customer) = customers.get(&order.partner_id) else {
            effects.outcomes.push((
                press.id,
                done(State::Refused, words::no_order(user_lang, order.id)),
            ));
            continue;
        };
        if !from_customer(press, customer, &contacts) {
            effects.outcomes.push((
                press.id,
                done(
                    State::Refused,
                    words::not_customer(user_lang, &number, &order.name),
                ),
            ));
            continue;
        }
        let name_values = [
            ("customer", customer.name.as_str()),
            ("order", order.name.as_str()),
        ];
        let text = |key: TextKey| texts.render(key, &name_values);
        // The press opened the customer's window: closed only when it is handled a day late.
        let window_open = press
            .received_at
            .is_none_or(|t| now - t < TimeDelta::hours(24));
        let template = action.template_id.filter(|_| !window_open);
        match action.action_type.as_str() {
            "confirm_order" => match confirm_decision(&order) {
                ConfirmDecision::Confirm => {
                    let confirmed: Result<Value, OdooError> = ctx
                        .odoo
                        .call(
                            Order::MODEL,
                            "action_confirm",
                            json!([[order.id]]),
                            json!({}),
                        )
                        .await;
                    match confirmed {
                        Ok(_) => {
                            ctx.odoo
                                .write(
                                    Order::MODEL,
                                    &[order.id],
                                    &json!({"x_whatsapp_validated": true}),
                                )
                                .await?;
                            ctx.stats.confirmed.fetch_add(1, Ordering::Relaxed);
                            if let Some(o) = orders.get_mut(&order.id) {
                                o.state = "sale".into();
                            }
                            effects
                                .notes
                                .push((order.id, words::note(user_lang, true, &number)));
                            let body = reply_text
                                .clone()
                                .unwrap_or_else(|| text(TextKey::OrderConfirmed));
                            effects.replies.push(reply(
                                press,
                                Some(order.id),
                                "order_validation",
                                body,
                                template,
                            ));
                            effects.outcomes.push((
                                press.id,
                                done(State::Done, words::confirmed(user_lang, &order.name)),
                            ));
                        }
                        Err(e) if e.is_retryable() => return Err(e.into()),
                        Err(e) => {
                            failure(ctx, &order, true, &number, user_lang, &e).await;
                            effects.replies.push(reply(
                                press,
                                Some(order.id),
                                "button_action",
                                text(TextKey::OrderConfirmFailed),
                                None,
                            ));
                            effects.outcomes.push((
                                press.id,
                                done(
                                    State::Failed,
                                    words::odoo_refused(
                                        user_lang,
                                        &order.name,
                                        true,
                                        &e.to_string(),
                                    ),
                                ),
                            ));
                        }
                    }
                }
                ConfirmDecision::AlreadyConfirmed => {
                    effects.replies.push(reply(
                        press,
                        Some(order.id),
                        "button_action",
                        text(TextKey::OrderAlreadyConfirmed),
                        None,
                    ));
                    effects.outcomes.push((
                        press.id,
                        done(
                            State::Done,
                            words::already_confirmed(user_lang, &order.name),
                        ),
                    ));
                }
                ConfirmDecision::Cancelled => {
                    effects.replies.push(reply(
                        press,
                        Some(order.id),
                        "button_action",
                        text(TextKey::OrderCannotConfirmCancelled),
                        None,
                    ));
                    let why = words::state_word(user_lang, &order.state, order.locked, false);
                    effects.outcomes.push((
                        press.id,
                        done(
                            State::Refused,
                            words::refused_state(user_lang, &order.name, &why),
                        ),
                    ));
                }
            },
            "cancel_order" => match cancel_decision(&order) {
                CancelDecision::Cancel => {
                    let cancelled: Result<Value, OdooError> = ctx
                        .odoo
                        .with_context(Context::new().set("disable_cancel_warning", json!(true)))
                        .call(
                            Order::MODEL,
                            "action_cancel",
                            json!([[order.id]]),
                            json!({}),
                        )
                        .await;
                    // Without the context Odoo answers with its wizard (a dict) and cancels
                    // nothing: that is a failure too.
                    let cancelled = match cancelled {
                        Ok(Value::Object(wizard)) => Err(OdooError::Other {
                            name: "wizard".into(),
                            message: format!(
                                "Odoo answered with the wizard '{}' instead of cancelling",
                                wizard
                                    .get("res_model")
                                    .and_then(Value::as_str)
                                    .unwrap_or("?")
                            ),
                            model: Order::MODEL.into(),
                            method: "action_cancel".into(),
                        }),
                        other => other,
                    };
                    match cancelled {
                        Ok(_) => {
                            ctx.odoo
                                .write(
                                    Order::MODEL,
                                    &[order.id],
                                    &json!({"x_whatsapp_rejected": true}),
                                )
                                .await?;
                            ctx.stats.cancelled.fetch_add(1, Ordering::Relaxed);
                            if let Some(o) = orders.get_mut(&order.id) {
                                o.state = "cancel".into();
                            }
                            effects
                                .notes
                                .push((order.id, words::note(user_lang, false, &number)));
                            let body = reply_text
                                .clone()
                                .unwrap_or_else(|| text(TextKey::OrderCancelled));
                            effects.replies.push(reply(
                                press,
                                Some(order.id),
                                "order_validation",
                                body,
                                template,
                            ));
                            effects.outcomes.push((
                                press.id,
                                done(State::Done, words::cancelled(user_lang, &order.name)),
                            ));
                        }
                        Err(e) if e.is_retryable() => return Err(e.into()),
                        Err(e) => {
                            failure(ctx, &order, false, &number, user_lang, &e).await;
                            effects.replies.push(reply(
                                press,
                                Some(order.id),
                                "button_action",
                                text(TextKey::OrderCancelFailed),
                                None,
                            ));
                            effects.outcomes.push((
                                press.id,
                                done(
                                    State::Failed,
                                    words::odoo_refused(
                                        user_lang,
                                        &order.name,
                                        false,
                                        &e.to_string(),
                                    ),
                                ),
                            ));
                        }
                    }
                }
                CancelDecision::AlreadyCancelled => {
                    effects.replies.push(reply(
                        press,
                        Some(order.id),
                        "button_action",
                        text(TextKey::OrderAlreadyCancelled),
                        None,
                    ));
                    effects.outcomes.push((
                        press.id,
                        done(
                            State::Done,
                            words::already_cancelled(user_lang, &order.name),
                        ),
                    ));
                }
                CancelDecision::Refuse(key) => {
                    effects.replies.push(reply(
                        press,
                        Some(order.id),
                        "button_action",
                        text(key),
                        None,
                    ));
                    let why = words::state_word(
                        user_lang,
                        &order.state,
                        order.locked,
                        order.invoice_status == "invoiced",
                    );
                    effects.outcomes.push((
                        press.id,
                        done(
                            State::Refused,
                            words::refused_state(user_lang, &order.name, &why),
                        ),
                    ));
                }
            },
            _ => {
                // send_order_details
                let body = ctx.details.details(&order, &customer_lang).await?;
                effects
                    .replies
                    .push(reply(press, Some(order.id), "order_details", body, None));
                if details_pdf(ctx, state, press.account_id).await? {
                    let mut pdf =
                        reply(press, Some(order.id), "order_details", String::new(), None);
                    pdf.insert("message_type".into(), json!("document"));
                    pdf.remove("body");
                    pdf.insert("report_name".into(), json!("sale.report_saleorder"));
                    pdf.insert(
                        "media_filename".into(),
                        json!(format!("{}.pdf", order.name.replace('/', "_"))),
                    );
                    pdf.insert(
                        "dedupe_key".into(),
                        json!(format!("button:{}:pdf", press.id)),
                    );
                    pdf.remove("reply_to_wamid");
                    effects.replies.push(pdf);
                }
                effects.outcomes.push((
                    press.id,
                    done(State::Done, words::details_sent(user_lang, &order.name)),
                ));
            }
        }
    }

    // Menus, lists, invoices and server actions.
    super::extra::run(ctx, state, &secret, extra, now, &mut effects).await?;

    // Replies queued (once each), notes posted, outcomes written on the presses.
    commit(ctx, state, effects).await
}

/// Queues the replies (then what options do after their actions), posts the notes, writes
/// the conversations' menu state and the outcomes on the presses.
pub(super) async fn commit(
    ctx: &ActionsContext,
    state: &mut ActionsState,
    mut effects: Effects,
) -> Result<(), StepError> {
    effects.replies.append(&mut effects.later);
    for (id, o) in effects.outcomes.iter_mut() {
        if let Some(more) = effects.suffix.remove(id) {
            o.result = format!("{} {more}", o.result);
        }
    }
    if !effects.replies.is_empty() {
        enqueue(&ctx.odoo, std::mem::take(&mut effects.replies)).await?;
    }
    if !effects.conversations.is_empty() {
        // One write per conversation: the last menu sent wins.
        let mut merged: Vec<(i64, Map<String, Value>)> = Vec::new();
        for (id, values) in std::mem::take(&mut effects.conversations) {
            match merged.iter_mut().find(|(c, _)| *c == id) {
                Some((_, v)) => v.extend(values),
                None => merged.push((id, values)),
            }
        }
        ctx.odoo
            .write_each(crate::scenarios::plan::ConversationState::MODEL, &merged)
            .await?;
    }
    if !effects.notes.is_empty() {
        post_notes(ctx, state, &effects.notes).await;
    }
    let updates: Vec<(i64, Map<String, Value>)> = effects
        .outcomes
        .iter()
        .map(|(id, o)| (*id, o.values()))
        .collect();
    for (id, o) in &effects.outcomes {
        tracing::info!(press = id, state = o.state.as_str(), result = %o.result, "button press handled");
    }
    ctx.odoo.write_each(Press::MODEL, &updates).await?;
    Ok(())
}

/// A reply to `press` (the presser's number, quoting the press), once per press.
pub(super) fn reply(
    press: &Press,
    order_id: Option<i64>,
    trigger: &str,
    body: String,
    template: Option<i64>,
) -> Map<String, Value> {
    let mut v = Map::new();
    if let Some(a) = press.account_id {
        v.insert("account_id".into(), json!(a));
    }
    if let Some(c) = press.company_id {
        v.insert("company_id".into(), json!(c));
    }
    if let Some(p) = press.partner_id {
        v.insert("partner_id".into(), json!(p));
    }
    if let Some(c) = press.conversation_id {
        v.insert("conversation_id".into(), json!(c));
    }
    if let Some(n) = press.number() {
        v.insert("to_number".into(), json!(n));
    }
    if let Some(w) = &press.wamid {
        v.insert("reply_to_wamid".into(), json!(w));
    }
    v.insert("direction".into(), json!("out"));
    v.insert("state".into(), json!("queued"));
    v.insert("trigger".into(), json!(trigger));
    v.insert("message_type".into(), json!("text"));
    v.insert("body".into(), json!(body));
    if let Some(o) = order_id {
        v.insert("res_model".into(), json!(Order::MODEL));
        v.insert("res_id".into(), json!(o));
    }
    // Outside the window (a press handled more than 24 hours late) the action's template.
    if let Some(t) = template {
        v.insert("message_type".into(), json!("template"));
        v.insert("template_id".into(), json!(t));
    }
    v.insert("dedupe_key".into(), json!(format!("button:{}", press.id)));
    v
}

/// Odoo refused the change: an activity for the salesperson (logged if that fails too).
async fn failure(
    ctx: &ActionsContext,
    order: &Order,
    confirm: bool,
    number: &str,
    lang: Lang,
    error: &OdooError,
) {
    let (summary, note) = words::activity(lang, confirm, number, &error.to_string());
    let mut kwargs = json!({
        "act_type_xmlid": "mail.mail_activity_data_todo",
        "summary": summary,
        "note": note,
    });
    if let Some(user) = order.user_id {
        kwargs["user_id"] = json!(user);
    }
    let scheduled: Result<Value, OdooError> = ctx
        .odoo
        .call(
            Order::MODEL,
            "activity_schedule",
            json!([[order.id]]),
            kwargs,
        )
        .await;
    if let Err(e) = scheduled {
        tracing::error!(order = %order.name, error = %e, "button actions: cannot give the salesperson an activity about the refused press");
    }
    tracing::warn!(order = %order.name, error = %error, confirm, "button actions: Odoo refused the customer's press");
}

async fn post_notes(ctx: &ActionsContext, state: &mut ActionsState, notes: &[(i64, String)]) {
    if state.note_subtype.is_none() {
        let domain = Domain::leaf("module", "=", "mail")
            .and("name", "=", "mt_note")
            .and("model", "=", "mail.message.subtype");
        let found: Result<Vec<Value>, OdooError> = ctx
            .odoo
            .search_read(
                "ir.model.data",
                &domain,
                &["res_id"],
                &SearchOptions::new().limit(1),
            )
            .await;
        match found {
            Ok(rows) => {
                state.note_subtype = Some(
                    rows.first()
                        .and_then(|r| r.get("res_id"))
                        .and_then(Value::as_i64),
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "button actions: cannot read the note subtype; the chatter notes are not posted");
                return;
            }
        }
    }
    let Some(Some(subtype)) = state.note_subtype else {
        tracing::warn!("button actions: the 'mail.mt_note' subtype cannot be read (ir.model.data): chatter notes are not posted");
        return;
    };
    let values: Vec<Map<String, Value>> = notes
        .iter()
        .map(|(order, text)| {
            let mut v = Map::new();
            v.insert("model".into(), json!(Order::MODEL));
            v.insert("res_id".into(), json!(order));
            v.insert("message_type".into(), json!("comment"));
            v.insert("subtype_id".into(), json!(subtype));
            v.insert(
                "body".into(),
                json!(format!("<p>{}</p>", escape_html(text))),
            );
            v
        })
        .collect();
    if let Err(e) = ctx.odoo.create_many("mail.message", &values).await {
        tracing::warn!(error = %e, "button actions: the chatter notes on the orders could not be posted");
    }
}
