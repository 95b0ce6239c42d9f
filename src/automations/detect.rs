//! The automations' decisions, as pure functions: which account sends an order's messages,
//! which orders need what, the scan window, and the values of the messages queued.

use crate::orders::{Customer, Order};
use crate::texts::{TextKey, Texts};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// The buttons of the new-order message, in order: what each does and its text.
pub const ORDER_BUTTONS: [(&str, TextKey); 3] = [
    ("order_validate", TextKey::ButtonValidate),
    ("order_cancel", TextKey::ButtonCancel),
    ("order_details", TextKey::ButtonDetails),
];

/// A `whatsapp.account` as the automations read it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccountRow {
    pub id: i64,
    pub company_id: Option<i64>,
    pub is_default: bool,
    pub send_order_creation: bool,
    /// When "Send new sale orders" was last turned on.
    pub enabled_at: Option<DateTime<Utc>>,
    pub template_order_creation_id: Option<i64>,
    pub details_pdf: bool,
}

impl AccountRow {
    pub const MODEL: &'static str = "whatsapp.account";
    pub const FIELDS: &'static [&'static str] = &[
        "company_id",
        "is_default",
        "auto_send_order_creation",
        "order_creation_enabled_at",
        "template_order_creation_id",
        "order_details_pdf",
    ];

    pub fn from_record(value: &Value) -> Option<AccountRow> {
        let r = value.as_object()?;
        let m2o = |f: &str| match r.get(f) {
            Some(Value::Array(items)) => items.first().and_then(Value::as_i64),
            Some(Value::Number(n)) => n.as_i64(),
            _ => None,
        };
        let flag = |f: &str| matches!(r.get(f), Some(Value::Bool(true)));
        Some(AccountRow {
            id: r.get("id")?.as_i64()?,
            company_id: m2o("company_id"),
            is_default: flag("is_default"),
            send_order_creation: flag("auto_send_order_creation"),
            enabled_at: r
                .get("order_creation_enabled_at")
                .and_then(Value::as_str)
                .and_then(crate::odoo::parse_datetime),
            template_order_creation_id: m2o("template_order_creation_id"),
            details_pdf: flag("order_details_pdf"),
        })
    }
}

/// The account that sends the new-order message of an order of `company`: one of the
/// company's accounts with the switch on, the default first, then the oldest.
pub fn creation_account(accounts: &[AccountRow], company: Option<i64>) -> Option<&AccountRow> {
    accounts
        .iter()
        .filter(|a| a.send_order_creation && a.company_id == company && company.is_some())
        .min_by_key(|a| (!a.is_default, a.id))
}

/// The company's default account (the one "Send details" uses).
pub fn default_account(accounts: &[AccountRow], company: Option<i64>) -> Option<&AccountRow> {
    accounts
        .iter()
        .filter(|a| a.is_default && a.company_id == company && company.is_some())
        .min_by_key(|a| a.id)
}

/// Why an order gets no new-order message (for the logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    AlreadySent,
    NotAQuotation,
    /// Created before the switch was turned on.
    Older,
    NoConsent,
}

/// Whether `order` gets the new-order message from `account`.
pub fn creation_wanted(
    order: &Order,
    account: &AccountRow,
    customer: Option<&Customer>,
) -> Result<(), Skip> {
    creation_due(order, account)?;
    if !customer.is_some_and(Customer::reachable) {
        return Err(Skip::NoConsent);
    }
    Ok(())
}

/// [`creation_wanted`] before the customer is known.
pub fn creation_due(order: &Order, account: &AccountRow) -> Result<(), Skip> {
    if order.creation_sent {
        return Err(Skip::AlreadySent);
    }
    if !order.is_quotation() {
        return Err(Skip::NotAQuotation);
    }
    match (order.create_date, account.enabled_at) {
        (Some(created), Some(enabled)) if created >= enabled => {}
        _ => return Err(Skip::Older),
    }
    Ok(())
}

/// The first `write_date` a poll reads: the cursor minus the overlap; without a cursor, the
/// earliest switch-on time of the last 24 hours (else now minus the overlap).
pub fn scan_start(
    cursor: Option<DateTime<Utc>>,
    overlap: TimeDelta,
    accounts: &[AccountRow],
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    if let Some(c) = cursor {
        return c - overlap;
    }
    let day_ago = now - TimeDelta::hours(24);
    accounts
        .iter()
        .filter(|a| a.send_order_creation)
        .filter_map(|a| a.enabled_at)
        .min()
        .map(|t| t.max(day_ago))
        .unwrap_or(now)
        - overlap
}

/// What an order looked like when it was handled: its `write_date` (whole seconds, as Odoo
/// reads it) and the fields the automations act on, so that a second write within the same
/// second (a "Send details" right after a send) is not taken for the same order.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    write_date: Option<DateTime<Utc>>,
    state: String,
    creation_sent: bool,
    details_requested_at: Option<String>,
}

impl Fingerprint {
    fn of(order: &Order) -> Fingerprint {
        Fingerprint {
            write_date: order.write_date,
            state: order.state.clone(),
            creation_sent: order.creation_sent,
            details_requested_at: order.details_requested_at.clone(),
        }
    }
}

/// Orders handled, by id, as they were: a poll skips an order read again unchanged (the
/// overlap window reads the same orders several times).
#[derive(Debug, Default)]
pub struct Seen(HashMap<i64, Fingerprint>);

impl Seen {
    /// True when `order` was not handled as it is now.
    pub fn is_new(&self, order: &Order) -> bool {
        self.0.get(&order.id) != Some(&Fingerprint::of(order))
    }

    pub fn mark(&mut self, order: &Order) {
        self.0.insert(order.id, Fingerprint::of(order));
    }

    /// Forgets the orders written before `before` (no poll reads them again).
    pub fn prune(&mut self, before: DateTime<Utc>) {
        self.0
            .retain(|_, f| f.write_date.is_some_and(|w| w >= before));
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The positions of a template's quick-reply buttons (`whatsapp.template.buttons_json`).
pub fn quick_reply_indexes(buttons_json: Option<&str>) -> Vec<u32> {
    let Some(list) = buttons_json.and_then(|j| serde_json::from_str::<Vec<Value>>(j).ok()) else {
        return Vec::new();
    };
    list.iter()
        .enumerate()
        .filter(|(_, b)| {
            b.get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case("quick_reply"))
        })
        .filter_map(|(i, _)| u32::try_from(i).ok())
        .collect()
}

/// What the new-order message is made of.
#[derive(Debug, Clone)]
pub struct Creation<'a> {
    pub order: &'a Order,
    pub customer: &'a Customer,
    pub account: &'a AccountRow,
    pub texts: &'a Texts,
    /// The order's total as the customer writes amounts.
    pub amount: String,
    /// The signed payloads of Validate, Cancel and Details.
    pub payloads: [String; 3],
    /// The customer wrote in the last 24 hours.
    pub window_open: bool,
    /// The quick-reply positions of the account's template for new orders (outside the window).
    pub template_quick_replies: Option<Vec<u32>>,
}

/// The dedupe key of an order's new-order message.
pub fn creation_key(order_id: i64) -> String {
    format!("order_creation:sale.order:{order_id}")
}

fn base(
    order: &Order,
    customer: &Customer,
    account: &AccountRow,
    trigger: &str,
) -> Map<String, Value> {
    let mut v = Map::new();
    v.insert("account_id".into(), json!(account.id));
    if let Some(c) = order.company_id.or(account.company_id) {
        v.insert("company_id".into(), json!(c));
    }
    v.insert("partner_id".into(), json!(customer.id));
    if let Some(n) = customer.whatsapp_number() {
        v.insert("to_number".into(), json!(n));
    }
    v.insert("direction".into(), json!("out"));
    v.insert("state".into(), json!("queued"));
    v.insert("trigger".into(), json!(trigger));
    v.insert("res_model".into(), json!(Order::MODEL));
    v.insert("res_id".into(), json!(order.id));
    v
}

/// The `whatsapp.message` values of the new-order message: interactive inside the window;
/// outside it the account's template with the payloads on its quick replies (when the account
/// has one; else the interactive message, which the outbox then refuses or replaces, saying so
/// on the message and in the order's chatter).
pub fn creation_message(c: &Creation<'_>) -> Map<String, Value> {
    let mut v = base(c.order, c.customer, c.account, "order_creation");
    v.insert("dedupe_key".into(), json!(creation_key(c.order.id)));
    let body = c.texts.render(
        TextKey::OrderCreated,
        &[
            ("customer", &c.customer.name),
            ("order", &c.order.name),
            ("amount", &c.amount),
            ("company", ""),
        ],
    );
    v.insert("body".into(), json!(body));
    match (
        &c.template_quick_replies,
        c.account.template_order_creation_id,
    ) {
        (Some(indexes), Some(template)) if !c.window_open => {
            let buttons: Vec<Value> = indexes
                .iter()
                .zip(&c.payloads)
                .map(
                    |(index, payload)| json!({"index": index, "name": "payload", "value": payload}),
                )
                .collect();
            v.insert("message_type".into(), json!("template"));
            v.insert("template_id".into(), json!(template));
            if !buttons.is_empty() {
                v.insert(
                    "template_params_json".into(),
                    json!(json!({"buttons": buttons}).to_string()),
                );
            }
        }
        _ => {
            let buttons: Vec<Value> = ORDER_BUTTONS
                .iter()
                .zip(&c.payloads)
                .map(|((_, title), id)| {
                    json!({"type": "reply", "reply": {"id": id, "title": button_title(c.texts, *title)}})
                })
                .collect();
            let interactive = json!({
                "type": "button",
                "body": {"text": truncate_chars(&body, crate::whatsapp::payload::INTERACTIVE_BODY_MAX)},
                "action": {"buttons": buttons},
            });
            v.insert("message_type".into(), json!("interactive"));
            v.insert("interactive_json".into(), json!(interactive.to_string()));
        }
    }
    v
}

/// A button title within WhatsApp's 20 characters (the addon refuses longer texts; an older
/// one is cut rather than refused by Meta).
pub fn button_title(texts: &Texts, key: TextKey) -> String {
    truncate_chars(texts.get(key), crate::whatsapp::payload::BUTTON_TITLE_MAX)
}

fn truncate_chars(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// The dedupe key of the details asked for at `requested_at` (`…:pdf` for their PDF).
pub fn details_key(order_id: i64, requested_at: &str) -> String {
    let stamp: String = requested_at.chars().filter(char::is_ascii_digit).collect();
    format!("order_details:sale.order:{order_id}:{stamp}")
}

/// The details message (and the PDF after it when the account says so).
pub fn details_messages(
    order: &Order,
    customer: &Customer,
    account: &AccountRow,
    requested_at: &str,
    body: String,
) -> Vec<Map<String, Value>> {
    let key = details_key(order.id, requested_at);
    let mut text = base(order, customer, account, "order_details");
    text.insert("message_type".into(), json!("text"));
    text.insert("body".into(), json!(body));
    text.insert("dedupe_key".into(), json!(key));
    let mut out = vec![text];
    if account.details_pdf {
        let mut pdf = base(order, customer, account, "order_details");
        pdf.insert("message_type".into(), json!("document"));
        pdf.insert("report_name".into(), json!("sale.report_saleorder"));
        pdf.insert(
            "media_filename".into(),
            json!(format!("{}.pdf", order.name.replace('/', "_"))),
        );
        pdf.insert("dedupe_key".into(), json!(format!("{key}:pdf")));
        out.push(pdf);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::odoo::parse_datetime;

    fn at(s: &str) -> DateTime<Utc> {
        parse_datetime(s).unwrap()
    }

    fn account() -> AccountRow {
        AccountRow {
            id: 1,
            company_id: Some(1),
            is_default: true,
            send_order_creation: true,
            enabled_at: Some(at("2026-03-01 10:00:00")),
            template_order_creation_id: Some(9),
            details_pdf: true,
        }
    }

    fn order() -> Order {
        Order {
            id: 42,
            name: "S00042".into(),
            partner_id: 3,
            company_id: Some(1),
            state: "draft".into(),
            create_date: Some(at("2026-03-01 10:00:05")),
            write_date: Some(at("2026-03-01 10:00:05")),
            ..Order::default()
        }
    }

    fn customer() -> Customer {
        Customer {
            id: 3,
            name: "Awa".into(),
            opt_in: true,
            number_e164: Some("+2250700000001".into()),
            ..Customer::default()
        }
    }

    #[test]
    fn only_new_quotations_of_reachable_customers_get_the_message() {
        let a = account();
        assert_eq!(creation_wanted(&order(), &a, Some(&customer())), Ok(()));
        let older = Order {
            create_date: Some(at("2026-03-01 09:59:59")),
            ..order()
        };
        assert_eq!(
            creation_wanted(&older, &a, Some(&customer())),
            Err(Skip::Older)
        );
        let no_date = AccountRow {
            enabled_at: None,
            ..account()
        };
        assert_eq!(
            creation_wanted(&order(), &no_date, Some(&customer())),
            Err(Skip::Older)
        );
        let sent = Order {
            creation_sent: true,
            ..order()
        };
        assert_eq!(
            creation_wanted(&sent, &a, Some(&customer())),
            Err(Skip::AlreadySent)
        );
        let confirmed = Order {
            state: "sale".into(),
            ..order()
        };
        assert_eq!(
            creation_wanted(&confirmed, &a, Some(&customer())),
            Err(Skip::NotAQuotation)
        );
        let not_in = Customer {
            opt_in: false,
            ..customer()
        };
        assert_eq!(
            creation_wanted(&order(), &a, Some(&not_in)),
            Err(Skip::NoConsent)
        );
        let out = Customer {
            opted_out: true,
            ..customer()
        };
        assert_eq!(
            creation_wanted(&order(), &a, Some(&out)),
            Err(Skip::NoConsent)
        );
        let no_number = Customer {
            number_e164: None,
            ..customer()
        };
        assert_eq!(
            creation_wanted(&order(), &a, Some(&no_number)),
            Err(Skip::NoConsent)
        );
        assert_eq!(creation_wanted(&order(), &a, None), Err(Skip::NoConsent));
    }

    #[test]
    fn the_account_with_the_switch_on_sends_default_first() {
        let other = AccountRow {
            id: 5,
            is_default: false,
            ..account()
        };
        let off = AccountRow {
            id: 0,
            send_order_creation: false,
            ..account()
        };
        let list = vec![other.clone(), off.clone(), account()];
        assert_eq!(creation_account(&list, Some(1)).unwrap().id, 1);
        assert_eq!(
            creation_account(&[other.clone(), off.clone()], Some(1))
                .unwrap()
                .id,
            5
        );
        assert!(creation_account(&[off.clone()], Some(1)).is_none());
        assert!(creation_account(&list, Some(2)).is_none());
        assert!(creation_account(&list, None).is_none());
        assert_eq!(default_account(&[other, off], Some(1)).unwrap().id, 0);
    }

    #[test]
    fn the_scan_starts_at_the_cursor_minus_the_overlap() {
        let overlap = TimeDelta::seconds(10);
        let now = at("2026-03-05 12:00:00");
        assert_eq!(
            scan_start(Some(at("2026-03-05 11:00:00")), overlap, &[], now),
            at("2026-03-05 10:59:50")
        );
        // No cursor yet: from the switch-on time, at most a day back.
        let recent = AccountRow {
            enabled_at: Some(at("2026-03-05 08:00:00")),
            ..account()
        };
        assert_eq!(
            scan_start(None, overlap, &[recent], now),
            at("2026-03-05 07:59:50")
        );
        assert_eq!(
            scan_start(None, overlap, &[account()], now),
            at("2026-03-04 11:59:50")
        );
        assert_eq!(
            scan_start(None, overlap, &[], now),
            at("2026-03-05 11:59:50")
        );
    }

    #[test]
    fn an_order_read_again_unchanged_is_skipped() {
        let mut seen = Seen::default();
        let o = order();
        assert!(seen.is_new(&o));
        seen.mark(&o);
        assert!(!seen.is_new(&o));
        let written = Order {
            write_date: Some(at("2026-03-01 10:00:09")),
            ..order()
        };
        assert!(seen.is_new(&written), "written again: looked at again");
        let requested = Order {
            details_requested_at: Some("2026-03-01 10:00:05".into()),
            ..order()
        };
        assert!(
            seen.is_new(&requested),
            "a request in the same second: looked at again"
        );
        seen.prune(at("2026-03-01 10:00:06"));
        assert!(seen.is_empty());
    }

    fn texts() -> Texts {
        Texts::resolve(&[], None)
    }

    fn creation<'a>(
        t: &'a Texts,
        o: &'a Order,
        c: &'a Customer,
        a: &'a AccountRow,
        window: bool,
        quick: Option<Vec<u32>>,
    ) -> Creation<'a> {
        Creation {
            order: o,
            customer: c,
            account: a,
            texts: t,
            amount: "$\u{a0}12.00".into(),
            payloads: [
                "order_validate:42:aa".into(),
                "order_cancel:42:bb".into(),
                "order_details:42:cc".into(),
            ],
            window_open: window,
            template_quick_replies: quick,
        }
    }

    #[test]
    fn inside_the_window_three_reply_buttons() {
        let (t, o, c, a) = (texts(), order(), customer(), account());
        let v = creation_message(&creation(&t, &o, &c, &a, true, Some(vec![0, 1, 2])));
        assert_eq!(v["message_type"], "interactive");
        assert_eq!(v["trigger"], "order_creation");
        assert_eq!(v["dedupe_key"], "order_creation:sale.order:42");
        assert_eq!(
            (v["res_model"].as_str(), v["res_id"].as_i64()),
            (Some("sale.order"), Some(42))
        );
        assert_eq!(v["to_number"], "+2250700000001");
        let interactive: Value =
            serde_json::from_str(v["interactive_json"].as_str().unwrap()).unwrap();
        let buttons = interactive["action"]["buttons"].as_array().unwrap();
        let ids: Vec<&str> = buttons
            .iter()
            .map(|b| b["reply"]["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            [
                "order_validate:42:aa",
                "order_cancel:42:bb",
                "order_details:42:cc"
            ]
        );
        let titles: Vec<&str> = buttons
            .iter()
            .map(|b| b["reply"]["title"].as_str().unwrap())
            .collect();
        assert_eq!(titles, ["Validate", "Cancel", "Details"]);
        let body = interactive["body"]["text"].as_str().unwrap();
        assert!(
            body.contains("Awa") && body.contains("S00042") && body.contains("$\u{a0}12.00"),
            "{body}"
        );
        // The outbox can send it: Meta's rules for an interactive message hold.
        let parsed: crate::whatsapp::payload::Interactive =
            serde_json::from_value(interactive).unwrap();
        assert_eq!(parsed.validate(), Ok(()));
    }

    #[test]
    fn outside_the_window_the_template_with_the_payloads_on_its_quick_replies() {
        let (t, o, c, a) = (texts(), order(), customer(), account());
        let v = creation_message(&creation(&t, &o, &c, &a, false, Some(vec![1, 2])));
        assert_eq!(v["message_type"], "template");
        assert_eq!(v["template_id"], 9);
        let params: Value =
            serde_json::from_str(v["template_params_json"].as_str().unwrap()).unwrap();
        assert_eq!(
            params,
            json!({"buttons": [
                {"index": 1, "name": "payload", "value": "order_validate:42:aa"},
                {"index": 2, "name": "payload", "value": "order_cancel:42:bb"}]})
        );
        assert!(
            params.get("body").is_none(),
            "the body comes from the template's variables"
        );
        // No template for new orders: the interactive message, which the outbox refuses saying why.
        let none = AccountRow {
            template_order_creation_id: None,
            ..account()
        };
        let v = creation_message(&creation(&t, &o, &c, &none, false, None));
        assert_eq!(v["message_type"], "interactive");
    }

    #[test]
    fn quick_replies_are_found_among_a_templates_buttons() {
        assert_eq!(
            quick_reply_indexes(Some(
                r#"[{"type":"URL","text":"Pay"},{"type":"QUICK_REPLY","text":"OK"},{"type":"quick_reply","text":"No"}]"#
            )),
            [1, 2]
        );
        assert!(quick_reply_indexes(Some("nonsense")).is_empty());
        assert!(quick_reply_indexes(None).is_empty());
    }

    #[test]
    fn details_are_one_text_and_the_pdf_each_queued_once_per_request() {
        let (o, c) = (order(), customer());
        let msgs = details_messages(&o, &c, &account(), "2026-03-01 10:05:00", "Details".into());
        assert_eq!(msgs.len(), 2);
        assert_eq!(
            msgs[0]["dedupe_key"],
            "order_details:sale.order:42:20260301100500"
        );
        assert_eq!(msgs[0]["message_type"], "text");
        assert_eq!(msgs[0]["trigger"], "order_details");
        assert_eq!(
            msgs[1]["dedupe_key"],
            "order_details:sale.order:42:20260301100500:pdf"
        );
        assert_eq!(msgs[1]["report_name"], "sale.report_saleorder");
        let no_pdf = AccountRow {
            details_pdf: false,
            ..account()
        };
        assert_eq!(
            details_messages(&o, &c, &no_pdf, "2026-03-01 10:05:00", "D".into()).len(),
            1
        );
    }
}
