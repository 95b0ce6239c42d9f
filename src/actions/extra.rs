//! The button actions beyond the order ones: `start_scenario`, `list_orders`,
//! `list_invoices`, `send_invoice`, `send_payment_link` and `server_action`.
//!
//! - `start_scenario` sends the scenario's menu (after the action's reply text, if any).
//! - `list_orders` / `list_invoices` send the presser's last 5 orders / open invoices (of their
//!   company: the commercial entity of the conversation's contact) as a list whose rows carry
//!   payloads bound to each record (`order_details:<id>:<tag>`, `invoice_details:<id>:<tag>`),
//!   so that a row sends its details through the `send_order_details` / `send_invoice` actions.
//! - `send_invoice` sends the invoice the payload names (bound, of the presser's company), else
//!   the presser's last posted invoice, as its PDF (`account.report_invoice`) with a caption;
//!   `send_payment_link` Odoo's payment link for the amount due (module `payment`, as the
//!   invoice details get it), else its portal link, or says it is paid.
//! - `server_action` runs the `ir.actions.server` with `active_model`, `active_id` and
//!   `active_ids` set to the order, invoice or contact the payload names (bound), or to the
//!   conversation's contact for an action on contacts, as the daemon's user. Its result is
//!   written on the press; an error sends the customer text `action_failed` and gives the
//!   account's responsible user an activity on the record. Each server action's outcome is
//!   written at once, so a step retried after a failure never runs it twice.

use super::menus::{partner_langs, send_menu};
use super::plan::{ActionRow, Outcome, Press, State};
use super::run::{commit, reply, ActionsContext, ActionsState, Effects, StepError};
use crate::buttons::{self, ButtonSecret};
use crate::lang::Lang;
use crate::odoo::{Context, Domain, OdooError, SearchOptions};
use crate::orders::{same_number, Customer, Order};
use crate::texts::{LangFormat, Money, TextKey, Texts};
use crate::whatsapp::payload::{
    Interactive, ListAction, ListMessage, ListRow, ListSection, TextObject,
};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// Rows in the "My orders" and "My invoices" lists.
pub const LIST_ROWS: u64 = 5;

fn m2o(r: &Map<String, Value>, f: &str) -> Option<i64> {
    match r.get(f) {
        Some(Value::Array(items)) => items.first().and_then(Value::as_i64),
        Some(Value::Number(n)) => n.as_i64(),
        _ => None,
    }
}

fn text(r: &Map<String, Value>, f: &str) -> Option<String> {
    r.get(f)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// A customer invoice (`account.move`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Invoice {
    pub id: i64,
    pub name: String,
    pub partner_id: i64,
    pub company_id: Option<i64>,
    pub state: String,
    pub payment_state: String,
    pub amount_total: f64,
    pub amount_residual: f64,
    pub currency_id: Option<i64>,
    pub due: Option<NaiveDate>,
}

impl Invoice {
    pub const MODEL: &'static str = "account.move";
    pub const FIELDS: &'static [&'static str] = &[
        "name",
        "partner_id",
        "company_id",
        "state",
        "payment_state",
        "amount_total",
        "amount_residual",
        "currency_id",
        "invoice_date_due",
    ];

    pub fn from_record(value: &Value) -> Option<Invoice> {
        let r = value.as_object()?;
        Some(Invoice {
            id: r.get("id")?.as_i64()?,
            name: text(r, "name").unwrap_or_default(),
            partner_id: m2o(r, "partner_id")?,
            company_id: m2o(r, "company_id"),
            state: text(r, "state").unwrap_or_default(),
            payment_state: text(r, "payment_state").unwrap_or_default(),
            amount_total: r.get("amount_total").and_then(Value::as_f64).unwrap_or(0.0),
            amount_residual: r
                .get("amount_residual")
                .and_then(Value::as_f64)
                .unwrap_or(0.0),
            currency_id: m2o(r, "currency_id"),
            due: text(r, "invoice_date_due")
                .and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok()),
        })
    }

    /// Paid, or being paid: no payment link.
    pub fn is_paid(&self) -> bool {
        matches!(
            self.payment_state.as_str(),
            "paid" | "in_payment" | "reversed"
        )
    }
}

/// The domain of a commercial entity's open customer invoices (posted, not paid).
pub fn open_invoices(entity: i64) -> Domain {
    Domain::leaf("partner_id", "child_of", entity)
        .and("move_type", "=", "out_invoice")
        .and("state", "=", "posted")
        .and("payment_state", "in", json!(["not_paid", "partial"]))
}

/// `text` cut to `max` characters (an ellipsis marks the cut).
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A list of records as rows: `(payload, title, description)`, titles and descriptions cut to
/// Meta's limits. `None` when the list breaks a limit anyway (a label or body too long).
pub fn list_message(
    body: &str,
    button: &str,
    rows: Vec<(String, String, String)>,
) -> Option<Interactive> {
    use crate::whatsapp::payload::{LIST_BUTTON_MAX, ROW_DESCRIPTION_MAX, ROW_TITLE_MAX};
    let list = Interactive::List(ListMessage {
        header: None,
        body: TextObject {
            text: body.to_owned(),
        },
        footer: None,
        action: ListAction {
            button: cut(button, LIST_BUTTON_MAX),
            sections: vec![ListSection {
                title: None,
                rows: rows
                    .into_iter()
                    .map(|(id, title, description)| ListRow {
                        id,
                        title: cut(&title, ROW_TITLE_MAX),
                        description: Some(cut(&description, ROW_DESCRIPTION_MAX))
                            .filter(|d| !d.trim().is_empty()),
                    })
                    .collect(),
            }],
        },
    });
    list.validate().ok().map(|_| list)
}

/// The customer's record the presser belongs to: the conversation's contact is in the
/// record's customer's company, or the presser's number is one of that company's numbers.
fn is_customer(press: &Press, entity: i64, contacts: &[Customer]) -> bool {
    let in_entity = |c: &Customer| c.commercial_partner_id.unwrap_or(c.id) == entity;
    if let Some(pid) = press.partner_id {
        if pid == entity || contacts.iter().any(|c| c.id == pid && in_entity(c)) {
            return true;
        }
    }
    let Some(wa_id) = press.wa_id.as_deref() else {
        return false;
    };
    contacts
        .iter()
        .filter(|c| in_entity(c))
        .flat_map(Customer::numbers)
        .any(|n| same_number(wa_id, n))
}

/// The record a server action runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `(model, id)`.
    Record(String, i64),
    /// Why none.
    Refused(String),
}

/// The record a server action on `model` runs on for a press: the one its payload names
/// (bound to it), else for contacts the conversation's contact.
pub fn server_action_target(
    model: &str,
    bound: Option<i64>,
    unbound_reason: Option<String>,
    partner: Option<i64>,
) -> Target {
    match (bound, model) {
        (Some(id), _) => Target::Record(model.to_owned(), id),
        (None, "res.partner") => match partner {
            Some(p) => Target::Record(model.to_owned(), p),
            None => {
                Target::Refused("the number matches no contact: the server action needs one".into())
            }
        },
        (None, _) => Target::Refused(format!(
            "the server action runs on {model}: the button's payload must name the record ({})",
            unbound_reason.unwrap_or_else(|| "<button>:<id>:<tag>".into())
        )),
    }
}

/// Words for the activity of a failed server action, in the responsible user's language.
pub fn failure_activity(lang: Lang, action: &str, number: &str, error: &str) -> (String, String) {
    lang.pick(
        (
            "WhatsApp: a button's action failed".to_owned(),
            format!("The customer ({number}) pressed a button on WhatsApp whose server action '{action}' failed: {error}. They were told we will get back to them."),
        ),
        (
            "WhatsApp : l'action d'un bouton a échoué".to_owned(),
            format!("Le client ({number}) a appuyé sur un bouton dans WhatsApp dont l'action serveur « {action} » a échoué : {error}. Il a été prévenu que nous revenons vers lui."),
        ),
    )
}

/// What a server action's run returned, in words.
pub fn run_result(value: &Value) -> String {
    match value {
        Value::Bool(false) | Value::Null => "it returned nothing".into(),
        Value::Object(o) => format!(
            "it returned an action ({})",
            o.get("type").and_then(Value::as_str).unwrap_or("?")
        ),
        other => format!("it returned {}", cut(&other.to_string(), 80)),
    }
}

struct Ctx<'a> {
    texts: Texts,
    lang: String,
    format: LangFormat,
    press: &'a Press,
    action: &'a ActionRow,
}

impl Ctx<'_> {
    fn done(&self, state: State, result: String) -> Outcome {
        Outcome {
            state,
            result,
            action_id: Some(self.action.id),
            order_id: None,
        }
    }
}

/// Runs `work` (presses with an action of the types above).
pub(super) async fn run(
    ctx: &ActionsContext,
    state: &mut ActionsState,
    secret: &ButtonSecret,
    work: Vec<(&Press, ActionRow)>,
    now: DateTime<Utc>,
    effects: &mut Effects,
) -> Result<(), StepError> {
    if work.is_empty() {
        return Ok(());
    }
    let langs = partner_langs(ctx, work.iter().filter_map(|(p, _)| p.partner_id)).await?;
    let contacts: HashMap<i64, Customer> = {
        let ids: Vec<i64> = work.iter().filter_map(|(p, _)| p.partner_id).collect();
        ctx.odoo
            .read::<Value>(Customer::MODEL, &ids, Customer::FIELDS)
            .await?
            .iter()
            .filter_map(Customer::from_record)
            .map(|c| (c.id, c))
            .collect()
    };
    for (press, action) in work {
        let lang = press
            .partner_id
            .and_then(|p| langs.get(&p))
            .cloned()
            .unwrap_or_default();
        // The action's reply text in the customer's language.
        let localized: Vec<Value> = ctx
            .odoo
            .with_context(Context::new().lang(if lang.is_empty() { "en_US" } else { &lang }))
            .read(ActionRow::MODEL, &[action.id], &["reply_text"])
            .await?;
        let mut action = action;
        action.reply_text = localized
            .first()
            .and_then(|r| r.get("reply_text"))
            .and_then(Value::as_str)
            .filter(|t| !t.trim().is_empty())
            .map(str::to_owned)
            .or(action.reply_text);
        let c = Ctx {
            texts: ctx.details.texts().texts(&lang, press.company_id).await?,
            format: ctx.details.lang_format(&lang).await?,
            lang,
            press,
            action: &action,
        };
        let entity = press
            .partner_id
            .and_then(|p| contacts.get(&p))
            .map(|c| c.commercial_partner_id.unwrap_or(c.id));
        match action.action_type.as_str() {
            "start_scenario" => {
                let scenarios = state.menus.scenarios(&ctx.odoo, &c.lang).await?;
                if let Some(t) = &action.reply_text {
                    effects
                        .replies
                        .push(reply(press, None, "button_action", t.clone(), None));
                }
                let sent = match action.scenario_id {
                    Some(s) => send_menu(
                        press,
                        &scenarios,
                        s,
                        format!("button:{}:menu:{s}", press.id),
                        now,
                        true,
                        effects,
                    ),
                    None => "The action names no scenario: nothing was sent.".to_owned(),
                };
                effects.outcomes.push((press.id, c.done(State::Done, sent)));
            }
            "list_orders" => list_orders(ctx, secret, &c, entity, effects).await?,
            "list_invoices" => list_invoices(ctx, secret, &c, entity, effects).await?,
            "send_invoice" | "send_payment_link" => {
                invoice_action(ctx, secret, &c, entity, effects).await?
            }
            "server_action" => {
                let own = server_action(ctx, state, secret, &c).await?;
                // Written at once: a retried step must not run it again.
                let mut one = Effects::default();
                one.replies = own.replies;
                one.outcomes = own.outcomes;
                if let Some(more) = effects.suffix.remove(&press.id) {
                    one.suffix.insert(press.id, more);
                }
                commit(ctx, state, one).await?;
            }
            other => effects.outcomes.push((
                press.id,
                c.done(
                    State::Ignored,
                    super::plan::words::not_run(Lang::En, &action.name, other),
                ),
            )),
        }
    }
    Ok(())
}

fn no_contact(c: &Ctx<'_>) -> Outcome {
    c.done(
        State::Refused,
        format!(
            "Refused: {} matches no contact in Odoo, so there are no orders or invoices to show. Link the number to the customer's contact.",
            c.press.number().unwrap_or_default()
        ),
    )
}

async fn list_orders(
    ctx: &ActionsContext,
    secret: &ButtonSecret,
    c: &Ctx<'_>,
    entity: Option<i64>,
    effects: &mut Effects,
) -> Result<(), StepError> {
    let Some(entity) = entity else {
        effects.outcomes.push((c.press.id, no_contact(c)));
        return Ok(());
    };
    let orders: Vec<Order> = ctx
        .odoo
        .search_read::<Value>(
            Order::MODEL,
            &Domain::leaf("partner_id", "child_of", entity),
            Order::FIELDS,
            &SearchOptions::new()
                .order("date_order desc, id desc")
                .limit(LIST_ROWS),
        )
        .await?
        .iter()
        .filter_map(Order::from_record)
        .collect();
    let customer = [("customer", "")];
    if orders.is_empty() {
        effects.replies.push(reply(
            c.press,
            None,
            "button_action",
            c.texts.render(TextKey::OrdersNone, &customer),
            None,
        ));
        effects.outcomes.push((
            c.press.id,
            c.done(State::Done, "No orders: said so.".into()),
        ));
        return Ok(());
    }
    let currencies: Vec<i64> = orders.iter().filter_map(|o| o.currency_id).collect();
    let money = ctx.details.money(&currencies).await?;
    let mut rows = Vec::new();
    for o in &orders {
        let amount = o
            .currency_id
            .and_then(|cur| money.get(&cur))
            .map(|m| m.format(o.amount_total, &c.format))
            .unwrap_or_else(|| c.format.number(o.amount_total, 2));
        let date = o
            .date_order
            .map(|d| c.format.date(d.date_naive()))
            .unwrap_or_default();
        let state_word = c.texts.get(o.state_text()).to_owned();
        let payload =
            buttons::sign(secret, "order_details", o.id).map_err(|e| OdooError::Other {
                name: "payload".into(),
                message: e.to_string(),
                model: Order::MODEL.into(),
                method: "sign".into(),
            })?;
        rows.push((
            payload,
            o.name.clone(),
            c.texts.render(
                TextKey::OrdersListRow,
                &[("date", &date), ("amount", &amount), ("state", &state_word)],
            ),
        ));
    }
    let body = c.texts.render(TextKey::OrdersListBody, &customer);
    let button = c.texts.get(TextKey::OrdersListButton).to_owned();
    push_list(c, &body, &button, rows, effects, "orders");
    Ok(())
}

async fn list_invoices(
    ctx: &ActionsContext,
    secret: &ButtonSecret,
    c: &Ctx<'_>,
    entity: Option<i64>,
    effects: &mut Effects,
) -> Result<(), StepError> {
    let Some(entity) = entity else {
        effects.outcomes.push((c.press.id, no_contact(c)));
        return Ok(());
    };
    let invoices: Vec<Invoice> = ctx
        .odoo
        .search_read::<Value>(
            Invoice::MODEL,
            &open_invoices(entity),
            Invoice::FIELDS,
            &SearchOptions::new()
                .order("invoice_date_due asc, id asc")
                .limit(LIST_ROWS),
        )
        .await?
        .iter()
        .filter_map(Invoice::from_record)
        .collect();
    let customer = [("customer", "")];
    if invoices.is_empty() {
        effects.replies.push(reply(
            c.press,
            None,
            "button_action",
            c.texts.render(TextKey::InvoicesNone, &customer),
            None,
        ));
        effects.outcomes.push((
            c.press.id,
            c.done(State::Done, "No open invoices: said so.".into()),
        ));
        return Ok(());
    }
    let currencies: Vec<i64> = invoices.iter().filter_map(|i| i.currency_id).collect();
    let money = ctx.details.money(&currencies).await?;
    let mut rows = Vec::new();
    for inv in &invoices {
        let m = inv.currency_id.and_then(|cur| money.get(&cur));
        let fmt = |a: f64| {
            m.map(|m| m.format(a, &c.format))
                .unwrap_or_else(|| c.format.number(a, 2))
        };
        let due = inv.due.map(|d| c.format.date(d)).unwrap_or_default();
        let payload =
            buttons::sign(secret, "invoice_details", inv.id).map_err(|e| OdooError::Other {
                name: "payload".into(),
                message: e.to_string(),
                model: Invoice::MODEL.into(),
                method: "sign".into(),
            })?;
        rows.push((
            payload,
            inv.name.clone(),
            c.texts.render(
                TextKey::InvoicesListRow,
                &[
                    ("amount", &fmt(inv.amount_total)),
                    ("residual", &fmt(inv.amount_residual)),
                    ("due", &due),
                ],
            ),
        ));
    }
    let body = c.texts.render(TextKey::InvoicesListBody, &customer);
    let button = c.texts.get(TextKey::InvoicesListButton).to_owned();
    push_list(c, &body, &button, rows, effects, "invoices");
    Ok(())
}

fn push_list(
    c: &Ctx<'_>,
    body: &str,
    button: &str,
    rows: Vec<(String, String, String)>,
    effects: &mut Effects,
    what: &str,
) {
    let n = rows.len();
    match list_message(body, button, rows) {
        Some(list) => {
            let mut m = reply(c.press, None, "button_action", body.to_owned(), None);
            m.insert("message_type".into(), json!("interactive"));
            m.insert(
                "interactive_json".into(),
                json!(serde_json::to_string(&list).unwrap_or_default()),
            );
            effects.replies.push(m);
            effects.outcomes.push((
                c.press.id,
                c.done(State::Done, format!("List of {n} {what} queued.")),
            ));
        }
        None => {
            tracing::error!(press = c.press.id, "button actions: the {what} list breaks Meta's limits (a customer text too long?): not sent");
            effects.outcomes.push((
                c.press.id,
                c.done(
                    State::Failed,
                    format!("The list of {what} breaks Meta's limits (check the customer texts of the list in WhatsApp > Configuration > Customer texts): not sent."),
                ),
            ));
        }
    }
}

async fn invoice_action(
    ctx: &ActionsContext,
    secret: &ButtonSecret,
    c: &Ctx<'_>,
    entity: Option<i64>,
    effects: &mut Effects,
) -> Result<(), StepError> {
    let press = c.press;
    // The invoice the payload names, else the presser's last posted one.
    let invoice: Option<Invoice> = match buttons::verify(secret, &press.payload) {
        Ok(bound) => ctx
            .odoo
            .read::<Value>(Invoice::MODEL, &[bound.record_id], Invoice::FIELDS)
            .await?
            .iter()
            .filter_map(Invoice::from_record)
            .find(|i| i.state == "posted"),
        Err(_) => match entity {
            Some(entity) => {
                let domain = Domain::leaf("partner_id", "child_of", entity)
                    .and("move_type", "=", "out_invoice")
                    .and("state", "=", "posted");
                let domain = if c.action.action_type == "send_payment_link" {
                    open_invoices(entity)
                } else {
                    domain
                };
                ctx.odoo
                    .search_read::<Value>(
                        Invoice::MODEL,
                        &domain,
                        Invoice::FIELDS,
                        &SearchOptions::new()
                            .order("invoice_date desc, id desc")
                            .limit(1),
                    )
                    .await?
                    .iter()
                    .filter_map(Invoice::from_record)
                    .next()
            }
            None => {
                effects.outcomes.push((press.id, no_contact(c)));
                return Ok(());
            }
        },
    };
    let Some(invoice) = invoice else {
        effects.replies.push(reply(
            press,
            None,
            "button_action",
            c.texts.render(TextKey::InvoicesNone, &[("customer", "")]),
            None,
        ));
        effects.outcomes.push((
            press.id,
            c.done(State::Done, "No posted invoice to send: said so.".into()),
        ));
        return Ok(());
    };
    // The invoice's customer company: the presser must belong to it.
    let customer: Vec<Customer> = ctx
        .odoo
        .read::<Value>(Customer::MODEL, &[invoice.partner_id], Customer::FIELDS)
        .await?
        .iter()
        .filter_map(Customer::from_record)
        .collect();
    let inv_entity = customer
        .first()
        .map(|c| c.commercial_partner_id.unwrap_or(c.id))
        .unwrap_or(invoice.partner_id);
    let contacts: Vec<Customer> = ctx
        .odoo
        .search_read::<Value>(
            Customer::MODEL,
            &Domain::leaf("commercial_partner_id", "=", inv_entity),
            Customer::FIELDS,
            &SearchOptions::new(),
        )
        .await?
        .iter()
        .filter_map(Customer::from_record)
        .collect();
    if !is_customer(press, inv_entity, &contacts) {
        effects.outcomes.push((
            press.id,
            Outcome {
                state: State::Refused,
                result: format!(
                    "Refused, nothing sent: {} is not a number of the customer of {} (nor of a contact of its company).",
                    press.number().unwrap_or_default(),
                    invoice.name
                ),
                action_id: Some(c.action.id),
                order_id: None,
            },
        ));
        return Ok(());
    }
    let money = match invoice.currency_id {
        Some(cur) => ctx.details.money(&[cur]).await?.remove(&cur),
        None => None,
    };
    let fmt = |a: f64| {
        money
            .as_ref()
            .map(|m: &Money| m.format(a, &c.format))
            .unwrap_or_else(|| c.format.number(a, 2))
    };
    let due = invoice.due.map(|d| c.format.date(d)).unwrap_or_default();
    let residual = fmt(invoice.amount_residual);
    let mut out = reply(press, None, "invoice_details", String::new(), None);
    out.insert("res_model".into(), json!(Invoice::MODEL));
    out.insert("res_id".into(), json!(invoice.id));
    let result = if c.action.action_type == "send_invoice" {
        let caption = c.action.reply_text.clone().unwrap_or_else(|| {
            c.texts.render(
                TextKey::InvoiceSent,
                &[
                    ("invoice", &invoice.name),
                    ("amount", &fmt(invoice.amount_total)),
                    ("residual", &residual),
                    ("due", &due),
                ],
            )
        });
        out.insert("message_type".into(), json!("document"));
        out.insert("body".into(), json!(caption));
        out.insert("report_name".into(), json!("account.report_invoice"));
        out.insert(
            "media_filename".into(),
            json!(format!("{}.pdf", invoice.name.replace('/', "_"))),
        );
        format!("Invoice {} queued (PDF).", invoice.name)
    } else if invoice.is_paid() {
        out.insert(
            "body".into(),
            json!(c
                .texts
                .render(TextKey::InvoicePaid, &[("invoice", &invoice.name)])),
        );
        format!("{} is paid: the customer is told.", invoice.name)
    } else {
        // Odoo's own payment link for the amount due (module `payment`), else the portal
        // link, where the customer can pay too.
        let link = match ctx
            .invoices
            .payment_link_of(invoice.id, invoice.amount_residual)
            .await?
        {
            Some(payment) => Some(payment.url),
            None => ctx.invoices.portal_link(invoice.id).await?,
        };
        let Some(link) = link else {
            effects.outcomes.push((
                press.id,
                c.done(
                    State::Failed,
                    format!(
                        "Odoo gave no portal link for {}: nothing sent.",
                        invoice.name
                    ),
                ),
            ));
            return Ok(());
        };
        let mut body = c.texts.render(
            TextKey::PaymentLink,
            &[
                ("invoice", &invoice.name),
                ("residual", &residual),
                ("link", &link),
            ],
        );
        if let Some(t) = &c.action.reply_text {
            body = format!("{t}\n{body}");
        }
        out.insert("body".into(), json!(body));
        format!("Payment link of {} queued.", invoice.name)
    };
    effects.replies.push(out);
    effects
        .outcomes
        .push((press.id, c.done(State::Done, result)));
    Ok(())
}

async fn server_action(
    ctx: &ActionsContext,
    state: &mut ActionsState,
    secret: &ButtonSecret,
    c: &Ctx<'_>,
) -> Result<Effects, StepError> {
    let press = c.press;
    let action = c.action;
    let mut effects = Effects::default();
    let (Some(sa), Some(model)) = (action.server_action_id, action.server_action_model.clone())
    else {
        effects.outcomes.push((
            press.id,
            c.done(
                State::Refused,
                format!(
                    "The button action '{}' names no server action: nothing was run.",
                    action.name
                ),
            ),
        ));
        return Ok(effects);
    };
    let verified = buttons::verify(secret, &press.payload);
    let bound = verified.as_ref().ok().map(|b| b.record_id);
    let why = verified.as_ref().err().map(ToString::to_string);
    let (model, id) = match server_action_target(&model, bound, why, press.partner_id) {
        Target::Record(m, id) => (m, id),
        Target::Refused(why) => {
            effects.outcomes.push((
                press.id,
                c.done(State::Refused, format!("Refused, nothing run: {why}.")),
            ));
            return Ok(effects);
        }
    };
    // A bound order or invoice must be the presser's.
    if bound.is_some() {
        let partner: Option<i64> = ctx
            .odoo
            .read::<Value>(&model, &[id], &["partner_id"])
            .await?
            .first()
            .and_then(|r| r.as_object().and_then(|r| m2o(r, "partner_id")))
            .or((model == "res.partner").then_some(id));
        let owner: Vec<Customer> = match partner {
            Some(p) => ctx
                .odoo
                .read::<Value>(Customer::MODEL, &[p], Customer::FIELDS)
                .await?
                .iter()
                .filter_map(Customer::from_record)
                .collect(),
            None => Vec::new(),
        };
        let entity = owner
            .first()
            .map(|c| c.commercial_partner_id.unwrap_or(c.id));
        let contacts: Vec<Customer> = match entity {
            Some(e) => ctx
                .odoo
                .search_read::<Value>(
                    Customer::MODEL,
                    &Domain::leaf("commercial_partner_id", "=", e),
                    Customer::FIELDS,
                    &SearchOptions::new(),
                )
                .await?
                .iter()
                .filter_map(Customer::from_record)
                .collect(),
            None => Vec::new(),
        };
        if !entity.is_some_and(|e| is_customer(press, e, &contacts)) {
            effects.outcomes.push((
                press.id,
                c.done(
                    State::Refused,
                    format!(
                        "Refused, nothing run: {} is not a number of the customer of {model} {id}.",
                        press.number().unwrap_or_default()
                    ),
                ),
            ));
            return Ok(effects);
        }
    }
    let context = Context::new()
        .set("active_model", json!(model))
        .set("active_id", json!(id))
        .set("active_ids", json!([id]));
    let ran: Result<Value, OdooError> = ctx
        .odoo
        .with_context(context)
        .call("ir.actions.server", "run", json!([[sa]]), json!({}))
        .await;
    match ran {
        Ok(value) => {
            if let Some(t) = &action.reply_text {
                effects
                    .replies
                    .push(reply(press, None, "button_action", t.clone(), None));
            }
            tracing::info!(press = press.id, server_action = sa, model = %model, id, "button actions: server action run");
            effects.outcomes.push((
                press.id,
                c.done(
                    State::Done,
                    format!(
                        "Server action {sa} ran on {model} {id} as the daemon's user; {}.",
                        run_result(&value)
                    ),
                ),
            ));
        }
        Err(e) => {
            let error = e.to_string();
            effects.replies.push(reply(
                press,
                None,
                "button_action",
                c.texts.get(TextKey::ActionFailed).to_owned(),
                None,
            ));
            let told = activity(ctx, state, press, action, &model, id, &error).await;
            tracing::warn!(press = press.id, server_action = sa, error = %error, "button actions: the server action failed; the customer gets the failure text");
            effects.outcomes.push((
                press.id,
                c.done(
                    State::Failed,
                    format!("Server action {sa} failed on {model} {id}: {error}. The customer got the failure text; {told}"),
                ),
            ));
        }
    }
    Ok(effects)
}

/// An activity on the record for the account's responsible user; words for the result.
async fn activity(
    ctx: &ActionsContext,
    state: &mut ActionsState,
    press: &Press,
    action: &ActionRow,
    model: &str,
    id: i64,
    error: &str,
) -> String {
    let account = match press.account_id {
        Some(a) => state
            .menus
            .accounts(&ctx.odoo, &[a])
            .await
            .ok()
            .and_then(|mut m| m.remove(&a)),
        None => None,
    };
    let Some(user) = account.and_then(|a| a.responsible_user_id) else {
        tracing::warn!(press = press.id, "button actions: the account has no responsible user: nobody gets an activity about the failed server action");
        return "nobody has an activity: choose the account's responsible user (WhatsApp > Configuration > Accounts, Menus).".into();
    };
    let lang: Lang = ctx
        .odoo
        .read::<Value>("res.users", &[user], &["lang"])
        .await
        .ok()
        .and_then(|rows| {
            rows.first()
                .map(|r| Lang::from_odoo(r.get("lang").and_then(Value::as_str)))
        })
        .unwrap_or_default();
    let (summary, note) = failure_activity(
        lang,
        &action.name,
        &press.number().unwrap_or_default(),
        error,
    );
    let scheduled: Result<Value, OdooError> = ctx
        .odoo
        .call(
            model,
            "activity_schedule",
            json!([[id]]),
            json!({"act_type_xmlid": "mail.mail_activity_data_todo", "summary": summary,
                   "note": note, "user_id": user}),
        )
        .await;
    match scheduled {
        Ok(_) => format!("the responsible user ({user}) has an activity on {model} {id}."),
        Err(e) => {
            tracing::error!(error = %e, "button actions: cannot give the responsible user an activity about the failed server action");
            format!("the activity for the responsible user could not be created: {e}.")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_actions_run_on_the_named_record_or_the_contact() {
        assert_eq!(
            server_action_target("sale.order", Some(4), None, Some(9)),
            Target::Record("sale.order".into(), 4)
        );
        assert_eq!(
            server_action_target("res.partner", None, Some("unbound".into()), Some(9)),
            Target::Record("res.partner".into(), 9)
        );
        assert!(matches!(
            server_action_target("res.partner", None, None, None),
            Target::Refused(w) if w.contains("no contact")
        ));
        assert!(matches!(
            server_action_target("account.move", None, Some("no record".into()), Some(9)),
            Target::Refused(w) if w.contains("account.move") && w.contains("no record")
        ));
    }

    #[test]
    fn lists_fit_metas_limits() {
        let rows = vec![(
            "order_details:1:ab".to_owned(),
            "A very long order reference name".to_owned(),
            "x".repeat(100),
        )];
        let Some(Interactive::List(l)) = list_message("Your orders", "My orders", rows) else {
            panic!("a list")
        };
        let row = &l.action.sections[0].rows[0];
        assert_eq!(row.title.chars().count(), 24);
        assert!(row.title.ends_with('…'));
        assert_eq!(row.description.as_ref().unwrap().chars().count(), 72);
        // A body too long cannot be cut silently: refused.
        assert!(list_message(
            &"b".repeat(1025),
            "My orders",
            vec![("i".into(), "t".into(), String::new())]
        )
        .is_none());
        // Eleven rows break the limit.
        let many = (0..11)
            .map(|i| (format!("r{i}"), "t".into(), String::new()))
            .collect();
        assert!(list_message("b", "x", many).is_none());
    }

    #[test]
    fn invoices_are_read_and_results_written() {
        let inv = Invoice::from_record(&json!({"id": 3, "name": "INV/2026/00003",
            "partner_id": [10, "Deco"], "company_id": [1, "C"], "state": "posted",
            "payment_state": "in_payment", "amount_total": 10.0, "amount_residual": 0.0,
            "currency_id": [1, "USD"], "invoice_date_due": "2026-11-22"}))
        .unwrap();
        assert!(inv.is_paid());
        assert_eq!(inv.due.unwrap().to_string(), "2026-11-22");
        assert_eq!(run_result(&json!(false)), "it returned nothing");
        assert_eq!(
            run_result(&json!({"type": "ir.actions.act_window"})),
            "it returned an action (ir.actions.act_window)"
        );
        let (s, n) = failure_activity(Lang::Fr, "Tag", "+225", "boom");
        assert!(s.starts_with("WhatsApp : ") && n.contains("boom"));
    }

    #[test]
    fn the_presser_must_belong_to_the_records_company() {
        let press = Press {
            partner_id: Some(11),
            wa_id: Some("2250700000001".into()),
            ..Press::default()
        };
        let colleague = Customer {
            id: 11,
            commercial_partner_id: Some(10),
            ..Customer::default()
        };
        assert!(is_customer(&press, 10, std::slice::from_ref(&colleague)));
        assert!(!is_customer(&press, 12, std::slice::from_ref(&colleague)));
        let by_number = Press {
            partner_id: None,
            ..press.clone()
        };
        let with_mobile = Customer {
            mobile: Some("+225 07 00 00 00 01".into()),
            ..colleague
        };
        assert!(is_customer(&by_number, 10, &[with_mobile]));
    }
}
