//! The invoice automations' decisions, as pure functions: which account sends, which invoice
//! needs what (the posted invoice, a payment, its details), when a payment is told (the
//! debounce), the `dedupe_key`s and the values of the messages queued.
//!
//! **Payments.** The amount due the customer was last told about is stored on the invoice
//! (`x_whatsapp_last_residual_notified`, with `x_whatsapp_last_residual_at` saying it was set;
//! unset, the baseline is the invoice's total). When `amount_residual` is below the baseline
//! by at least the account's minimum (or reaches 0), a message says what was paid since and
//! what remains, and the baseline moves to the new amount. It goes once the invoice has not
//! been written for the account's debounce (`residual_debounce_minutes`, default 10): payments
//! closer together than that make one message. When the amount due goes up (a reconciliation
//! undone), the baseline silently moves up with it, so a payment made after is told again; the
//! `dedupe_key` holds the amount due (`residual_change:account.move:42:680.00`), so a
//! reconciliation undone and redone to the same amount is not told twice, and a restart repeats
//! nothing.

use crate::invoices::{Invoice, INVOICE_REPORT};
use crate::orders::Customer;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Map, Value};

/// Amounts closer than this are equal (half a cent).
pub const AMOUNT_EPSILON: f64 = 0.005;

/// A `whatsapp.account` as the invoice automations read it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InvoiceAccount {
    pub id: i64,
    pub company_id: Option<i64>,
    pub is_default: bool,
    pub send_posted: bool,
    /// When "Send posted invoices" was last turned on.
    pub posted_enabled_at: Option<DateTime<Utc>>,
    pub details_pdf: bool,
    pub send_residual: bool,
    pub residual_min: f64,
    pub debounce: TimeDelta,
    pub send_unpaid: bool,
    pub unpaid_days: i64,
    pub interval_days: i64,
    /// The reminders' five-field cron schedule.
    pub schedule: String,
    /// The reminders' time zone as set on the account (empty: the company's).
    pub tz: Option<String>,
}

impl InvoiceAccount {
    pub const MODEL: &'static str = "whatsapp.account";
    pub const FIELDS: &'static [&'static str] = &[
        "company_id",
        "is_default",
        "auto_send_invoice_posted",
        "invoice_posted_enabled_at",
        "invoice_details_pdf",
        "auto_send_residual_change",
        "residual_change_min_amount",
        "residual_debounce_minutes",
        "auto_send_unpaid_invoices",
        "unpaid_invoice_days",
        "unpaid_reminder_interval_days",
        "unpaid_reminder_schedule",
        "unpaid_reminder_tz",
    ];

    pub fn from_record(value: &Value) -> Option<InvoiceAccount> {
        let r = value.as_object()?;
        let m2o = |f: &str| match r.get(f) {
            Some(Value::Array(items)) => items.first().and_then(Value::as_i64),
            Some(Value::Number(n)) => n.as_i64(),
            _ => None,
        };
        let flag = |f: &str| matches!(r.get(f), Some(Value::Bool(true)));
        let int = |f: &str, default: i64| r.get(f).and_then(Value::as_i64).unwrap_or(default);
        let text = |f: &str| {
            r.get(f)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        Some(InvoiceAccount {
            id: r.get("id")?.as_i64()?,
            company_id: m2o("company_id"),
            is_default: flag("is_default"),
            send_posted: flag("auto_send_invoice_posted"),
            posted_enabled_at: text("invoice_posted_enabled_at")
                .and_then(|s| crate::odoo::parse_datetime(&s)),
            details_pdf: flag("invoice_details_pdf"),
            send_residual: flag("auto_send_residual_change"),
            residual_min: r
                .get("residual_change_min_amount")
                .and_then(Value::as_f64)
                .unwrap_or(0.0)
                .max(0.0),
            debounce: TimeDelta::milliseconds(
                (r.get("residual_debounce_minutes")
                    .and_then(Value::as_f64)
                    .unwrap_or(10.0)
                    .clamp(0.0, 60.0 * 24.0 * 30.0)
                    * 60_000.0) as i64,
            ),
            send_unpaid: flag("auto_send_unpaid_invoices"),
            unpaid_days: int("unpaid_invoice_days", 7).max(0),
            interval_days: int("unpaid_reminder_interval_days", 7).max(1),
            schedule: text("unpaid_reminder_schedule").unwrap_or_else(|| "0 9 * * *".into()),
            tz: text("unpaid_reminder_tz"),
        })
    }
}

fn pick(
    accounts: &[InvoiceAccount],
    company: Option<i64>,
    on: impl Fn(&InvoiceAccount) -> bool,
) -> Option<&InvoiceAccount> {
    accounts
        .iter()
        .filter(|a| on(a) && company.is_some() && a.company_id == company)
        .min_by_key(|a| (!a.is_default, a.id))
}

/// The account that sends the posted invoices of `company`: one with the switch on, the
/// default first, then the oldest.
pub fn posted_account(
    accounts: &[InvoiceAccount],
    company: Option<i64>,
) -> Option<&InvoiceAccount> {
    pick(accounts, company, |a| a.send_posted)
}

/// The account that tells `company`'s customers about their payments.
pub fn residual_account(
    accounts: &[InvoiceAccount],
    company: Option<i64>,
) -> Option<&InvoiceAccount> {
    pick(accounts, company, |a| a.send_residual)
}

/// The company's default account (the one "Send details" uses).
pub fn default_account(
    accounts: &[InvoiceAccount],
    company: Option<i64>,
) -> Option<&InvoiceAccount> {
    pick(accounts, company, |a| a.is_default)
}

/// Why a posted invoice gets no message (for the logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostedSkip {
    /// A credit note, a receipt or a journal entry: only customer invoices are sent.
    NotACustomerInvoice,
    NotPosted,
    AlreadySent,
    /// Posted before "Send posted invoices" was turned on.
    PostedBefore,
    NoConsent,
}

/// Whether `invoice` gets the posted-invoice message from `account` (before its customer is
/// known).
pub fn posted_due(invoice: &Invoice, account: &InvoiceAccount) -> Result<(), PostedSkip> {
    if !invoice.is_customer_invoice() {
        return Err(PostedSkip::NotACustomerInvoice);
    }
    if !invoice.is_posted() {
        return Err(PostedSkip::NotPosted);
    }
    if invoice.invoice_sent {
        return Err(PostedSkip::AlreadySent);
    }
    match (invoice.posted_at, account.posted_enabled_at) {
        (Some(posted), Some(enabled)) if posted >= enabled => Ok(()),
        _ => Err(PostedSkip::PostedBefore),
    }
}

/// [`posted_due`] with the customer.
pub fn posted_wanted(
    invoice: &Invoice,
    account: &InvoiceAccount,
    customer: Option<&Customer>,
) -> Result<(), PostedSkip> {
    posted_due(invoice, account)?;
    if !customer.is_some_and(Customer::reachable) {
        return Err(PostedSkip::NoConsent);
    }
    Ok(())
}

/// The amount due the customer was last told about.
pub fn baseline(invoice: &Invoice) -> f64 {
    match invoice.last_residual_at {
        Some(_) => invoice.last_residual_notified,
        None => invoice.amount_total,
    }
}

/// What a change of the amount due calls for.
#[derive(Debug, Clone, PartialEq)]
pub enum Residual {
    /// Nothing to tell (no change, too small a change, not an open customer invoice).
    Nothing,
    /// The amount due went up (a payment undone): the baseline moves up to it, silently.
    Raise { to: f64 },
    /// A payment to tell, once the invoice is left alone until `until`.
    Wait { until: DateTime<Utc> },
    /// Tell it now: `paid` since the baseline, `residual` left.
    Notify { paid: f64, residual: f64 },
}

/// The payment rule (see the module's documentation).
pub fn residual_decision(
    invoice: &Invoice,
    account: &InvoiceAccount,
    now: DateTime<Utc>,
) -> Residual {
    if !invoice.is_customer_invoice() || !invoice.is_posted() {
        return Residual::Nothing;
    }
    let base = baseline(invoice);
    let residual = invoice.amount_residual.max(0.0);
    if residual > base + AMOUNT_EPSILON {
        return Residual::Raise { to: residual };
    }
    let paid = base - residual;
    if paid <= AMOUNT_EPSILON {
        return Residual::Nothing;
    }
    let settled = residual <= AMOUNT_EPSILON;
    if !settled && paid + AMOUNT_EPSILON < account.residual_min {
        return Residual::Nothing;
    }
    if let Some(written) = invoice.write_date {
        let until = written + account.debounce;
        if now < until {
            return Residual::Wait { until };
        }
    }
    Residual::Notify {
        paid,
        residual: if settled { 0.0 } else { residual },
    }
}

fn base(
    invoice: &Invoice,
    customer: &Customer,
    account_id: i64,
    company_id: Option<i64>,
    trigger: &str,
) -> Map<String, Value> {
    let mut v = Map::new();
    v.insert("account_id".into(), json!(account_id));
    if let Some(c) = invoice.company_id.or(company_id) {
        v.insert("company_id".into(), json!(c));
    }
    v.insert("partner_id".into(), json!(customer.id));
    if let Some(n) = customer.whatsapp_number() {
        v.insert("to_number".into(), json!(n));
    }
    v.insert("direction".into(), json!("out"));
    v.insert("state".into(), json!("queued"));
    v.insert("trigger".into(), json!(trigger));
    v.insert("res_model".into(), json!(Invoice::MODEL));
    v.insert("res_id".into(), json!(invoice.id));
    v
}

/// The dedupe key of an invoice's posted-invoice message.
pub fn posted_key(invoice_id: i64) -> String {
    format!("invoice_posted:account.move:{invoice_id}")
}

/// The posted-invoice message: the PDF (`account.report_invoice`, rendered by the outbox) with
/// `caption`; outside the window the outbox sends the account's "Template for posted invoices"
/// with the PDF as its document header, or fails saying that it is missing.
pub fn posted_message(
    invoice: &Invoice,
    customer: &Customer,
    account: &InvoiceAccount,
    caption: String,
) -> Map<String, Value> {
    let mut v = base(
        invoice,
        customer,
        account.id,
        account.company_id,
        "invoice_posted",
    );
    v.insert("dedupe_key".into(), json!(posted_key(invoice.id)));
    v.insert("message_type".into(), json!("document"));
    v.insert("report_name".into(), json!(INVOICE_REPORT));
    v.insert("media_filename".into(), json!(invoice.pdf_filename()));
    v.insert("media_mime_type".into(), json!("application/pdf"));
    v.insert("body".into(), json!(caption));
    v
}

/// The dedupe key of a payment message: the invoice and the amount due it tells.
pub fn residual_key(invoice_id: i64, residual: f64) -> String {
    format!(
        "residual_change:account.move:{invoice_id}:{:.2}",
        residual.max(0.0)
    )
}

/// The payment message (`body` in the customer's words).
pub fn residual_message(
    invoice: &Invoice,
    customer: &Customer,
    account: &InvoiceAccount,
    residual: f64,
    body: String,
) -> Map<String, Value> {
    let mut v = base(
        invoice,
        customer,
        account.id,
        account.company_id,
        "residual_change",
    );
    v.insert(
        "dedupe_key".into(),
        json!(residual_key(invoice.id, residual)),
    );
    v.insert("message_type".into(), json!("text"));
    v.insert("body".into(), json!(body));
    v
}

/// The dedupe key of the details asked for at `requested_at` (`…:pdf` for their PDF).
pub fn details_key(invoice_id: i64, requested_at: &str) -> String {
    let stamp: String = requested_at.chars().filter(char::is_ascii_digit).collect();
    format!("invoice_details:account.move:{invoice_id}:{stamp}")
}

/// The details message, and the PDF after it when the account says so.
pub fn details_messages(
    invoice: &Invoice,
    customer: &Customer,
    account: &InvoiceAccount,
    requested_at: &str,
    body: String,
) -> Vec<Map<String, Value>> {
    let key = details_key(invoice.id, requested_at);
    let mut text = base(
        invoice,
        customer,
        account.id,
        account.company_id,
        "invoice_details",
    );
    text.insert("message_type".into(), json!("text"));
    text.insert("body".into(), json!(body));
    text.insert("dedupe_key".into(), json!(key));
    let mut out = vec![text];
    if account.details_pdf {
        let mut pdf = base(
            invoice,
            customer,
            account.id,
            account.company_id,
            "invoice_details",
        );
        pdf.insert("message_type".into(), json!("document"));
        pdf.insert("report_name".into(), json!(INVOICE_REPORT));
        pdf.insert("media_filename".into(), json!(invoice.pdf_filename()));
        pdf.insert("media_mime_type".into(), json!("application/pdf"));
        pdf.insert("dedupe_key".into(), json!(format!("{key}:pdf")));
        out.push(pdf);
    }
    out
}

/// The dedupe key of the `n`-th reminder of an invoice.
pub fn reminder_key(invoice_id: i64, n: i64) -> String {
    format!("unpaid_reminder:account.move:{invoice_id}:{n}")
}

/// The reminder message.
pub fn reminder_message(
    invoice: &Invoice,
    customer: &Customer,
    account: &InvoiceAccount,
    n: i64,
    body: String,
) -> Map<String, Value> {
    let mut v = base(
        invoice,
        customer,
        account.id,
        account.company_id,
        "unpaid_reminder",
    );
    v.insert("dedupe_key".into(), json!(reminder_key(invoice.id, n)));
    v.insert("message_type".into(), json!("text"));
    v.insert("body".into(), json!(body));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::odoo::parse_datetime;

    fn at(s: &str) -> DateTime<Utc> {
        parse_datetime(s).unwrap()
    }

    fn account() -> InvoiceAccount {
        InvoiceAccount {
            id: 1,
            company_id: Some(1),
            is_default: true,
            send_posted: true,
            posted_enabled_at: Some(at("2026-03-01 10:00:00")),
            details_pdf: true,
            send_residual: true,
            residual_min: 0.0,
            debounce: TimeDelta::minutes(10),
            send_unpaid: true,
            unpaid_days: 7,
            interval_days: 7,
            schedule: "0 9 * * *".into(),
            tz: None,
        }
    }

    fn invoice() -> Invoice {
        Invoice {
            id: 42,
            name: "INV/2026/00042".into(),
            partner_id: 3,
            company_id: Some(1),
            move_type: "out_invoice".into(),
            state: "posted".into(),
            payment_state: "not_paid".into(),
            amount_total: 1000.0,
            amount_residual: 1000.0,
            posted_at: Some(at("2026-03-01 10:00:05")),
            write_date: Some(at("2026-03-01 10:00:05")),
            ..Invoice::default()
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
    fn accounts_are_read_from_odoo_records() {
        let a = InvoiceAccount::from_record(&json!({"id": 4, "company_id": [1, "C"],
            "is_default": true, "auto_send_invoice_posted": true,
            "invoice_posted_enabled_at": "2026-03-01 10:00:00", "invoice_details_pdf": false,
            "auto_send_residual_change": true, "residual_change_min_amount": 5.0,
            "residual_debounce_minutes": 3.0, "auto_send_unpaid_invoices": false,
            "unpaid_invoice_days": 0, "unpaid_reminder_interval_days": 0,
            "unpaid_reminder_schedule": " 30 8 * * 1-5 ", "unpaid_reminder_tz": false}))
        .unwrap();
        assert_eq!(a.debounce, TimeDelta::minutes(3));
        assert_eq!(
            (a.unpaid_days, a.interval_days),
            (0, 1),
            "an interval is at least a day"
        );
        assert_eq!(a.schedule, "30 8 * * 1-5");
        assert_eq!(a.tz, None);
        assert!(a.send_posted && !a.details_pdf && a.residual_min == 5.0);
    }

    #[test]
    fn only_customer_invoices_posted_after_the_switch_are_sent_once() {
        let a = account();
        assert_eq!(posted_wanted(&invoice(), &a, Some(&customer())), Ok(()));
        let before = Invoice {
            posted_at: Some(at("2026-03-01 09:59:59")),
            ..invoice()
        };
        assert_eq!(posted_due(&before, &a), Err(PostedSkip::PostedBefore));
        let never = Invoice {
            posted_at: None,
            ..invoice()
        };
        assert_eq!(posted_due(&never, &a), Err(PostedSkip::PostedBefore));
        let credit_note = Invoice {
            move_type: "out_refund".into(),
            ..invoice()
        };
        assert_eq!(
            posted_due(&credit_note, &a),
            Err(PostedSkip::NotACustomerInvoice)
        );
        let draft = Invoice {
            state: "draft".into(),
            ..invoice()
        };
        assert_eq!(posted_due(&draft, &a), Err(PostedSkip::NotPosted));
        let sent = Invoice {
            invoice_sent: true,
            ..invoice()
        };
        assert_eq!(posted_due(&sent, &a), Err(PostedSkip::AlreadySent));
        let off = InvoiceAccount {
            posted_enabled_at: None,
            ..account()
        };
        assert_eq!(posted_due(&invoice(), &off), Err(PostedSkip::PostedBefore));
        let out = Customer {
            opted_out: true,
            ..customer()
        };
        assert_eq!(
            posted_wanted(&invoice(), &a, Some(&out)),
            Err(PostedSkip::NoConsent)
        );
        assert_eq!(
            posted_wanted(&invoice(), &a, None),
            Err(PostedSkip::NoConsent)
        );
    }

    #[test]
    fn the_account_with_the_switch_on_sends_default_first() {
        let other = InvoiceAccount {
            id: 5,
            is_default: false,
            ..account()
        };
        let off = InvoiceAccount {
            id: 0,
            send_posted: false,
            send_residual: false,
            ..account()
        };
        let list = vec![other.clone(), off.clone(), account()];
        assert_eq!(posted_account(&list, Some(1)).unwrap().id, 1);
        assert_eq!(
            residual_account(&[other.clone(), off.clone()], Some(1))
                .unwrap()
                .id,
            5
        );
        assert!(posted_account(std::slice::from_ref(&off), Some(1)).is_none());
        assert!(posted_account(&list, Some(2)).is_none());
        assert!(posted_account(&list, None).is_none());
        assert_eq!(default_account(&[other, off], Some(1)).unwrap().id, 0);
    }

    #[test]
    fn the_posted_message_is_the_pdf_with_its_caption() {
        let v = posted_message(&invoice(), &customer(), &account(), "Hello".into());
        assert_eq!(v["dedupe_key"], "invoice_posted:account.move:42");
        assert_eq!(v["message_type"], "document");
        assert_eq!(v["trigger"], "invoice_posted");
        assert_eq!(v["report_name"], "account.report_invoice");
        assert_eq!(v["media_filename"], "INV_2026_00042.pdf");
        assert_eq!(v["body"], "Hello");
        assert_eq!(
            (v["res_model"].as_str(), v["res_id"].as_i64()),
            (Some("account.move"), Some(42))
        );
        assert_eq!(v["to_number"], "+2250700000001");
    }

    fn paid_to(residual: f64, written: &str) -> Invoice {
        Invoice {
            amount_residual: residual,
            payment_state: if residual > 0.0 { "partial" } else { "paid" }.into(),
            write_date: Some(at(written)),
            ..invoice()
        }
    }

    #[test]
    fn a_payment_is_told_once_the_invoice_is_left_alone_for_the_debounce() {
        let a = account();
        let i = paid_to(600.0, "2026-03-02 10:00:00");
        assert_eq!(
            residual_decision(&i, &a, at("2026-03-02 10:09:59")),
            Residual::Wait {
                until: at("2026-03-02 10:10:00")
            }
        );
        assert_eq!(
            residual_decision(&i, &a, at("2026-03-02 10:10:00")),
            Residual::Notify {
                paid: 400.0,
                residual: 600.0
            }
        );
        // A second payment within the debounce: one message, with both, later.
        let both = paid_to(250.0, "2026-03-02 10:06:00");
        assert_eq!(
            residual_decision(&both, &a, at("2026-03-02 10:10:00")),
            Residual::Wait {
                until: at("2026-03-02 10:16:00")
            }
        );
        assert_eq!(
            residual_decision(&both, &a, at("2026-03-02 10:16:00")),
            Residual::Notify {
                paid: 750.0,
                residual: 250.0
            }
        );
        // No debounce: at once.
        let now = InvoiceAccount {
            debounce: TimeDelta::zero(),
            ..account()
        };
        assert!(matches!(
            residual_decision(&i, &now, at("2026-03-02 10:00:00")),
            Residual::Notify { .. }
        ));
    }

    #[test]
    fn payments_are_told_from_the_last_amount_told() {
        let a = account();
        let later = at("2026-03-03 00:00:00");
        let told = Invoice {
            last_residual_notified: 600.0,
            last_residual_at: Some(at("2026-03-02 10:10:00")),
            ..paid_to(600.0, "2026-03-02 10:10:00")
        };
        assert_eq!(
            residual_decision(&told, &a, later),
            Residual::Nothing,
            "told already"
        );
        let second = Invoice {
            amount_residual: 100.0,
            ..told.clone()
        };
        assert_eq!(
            residual_decision(&second, &a, later),
            Residual::Notify {
                paid: 500.0,
                residual: 100.0
            }
        );
        // Undone: the baseline moves up, silently; redone to the same amount: the same key.
        let undone = Invoice {
            amount_residual: 1000.0,
            ..told.clone()
        };
        assert_eq!(
            residual_decision(&undone, &a, later),
            Residual::Raise { to: 1000.0 }
        );
        assert_eq!(
            residual_key(42, 600.0),
            "residual_change:account.move:42:600.00"
        );
        // Paid in full: told whatever the minimum.
        let strict = InvoiceAccount {
            residual_min: 1000.0,
            ..account()
        };
        assert_eq!(
            residual_decision(&second, &strict, later),
            Residual::Nothing,
            "500 is below the minimum of 1000"
        );
        let settled = Invoice {
            amount_residual: 0.0,
            ..told.clone()
        };
        assert_eq!(
            residual_decision(&settled, &strict, later),
            Residual::Notify {
                paid: 600.0,
                residual: 0.0
            }
        );
        // Below the minimum, small payments add up until they reach it.
        let min = InvoiceAccount {
            residual_min: 100.0,
            ..account()
        };
        let small = Invoice {
            amount_residual: 550.0,
            ..told.clone()
        };
        assert_eq!(residual_decision(&small, &min, later), Residual::Nothing);
        let more = Invoice {
            amount_residual: 500.0,
            ..told.clone()
        };
        assert!(matches!(
            residual_decision(&more, &min, later),
            Residual::Notify { .. }
        ));
        // Credit notes and drafts: nothing.
        let refund = Invoice {
            move_type: "out_refund".into(),
            ..second.clone()
        };
        assert_eq!(residual_decision(&refund, &a, later), Residual::Nothing);
    }

    #[test]
    fn details_are_one_text_and_the_pdf_each_queued_once_per_request() {
        let msgs = details_messages(
            &invoice(),
            &customer(),
            &account(),
            "2026-03-01 10:05:00",
            "Details".into(),
        );
        assert_eq!(msgs.len(), 2);
        assert_eq!(
            msgs[0]["dedupe_key"],
            "invoice_details:account.move:42:20260301100500"
        );
        assert_eq!(msgs[0]["trigger"], "invoice_details");
        assert_eq!(
            msgs[1]["dedupe_key"],
            "invoice_details:account.move:42:20260301100500:pdf"
        );
        assert_eq!(msgs[1]["report_name"], "account.report_invoice");
        let no_pdf = InvoiceAccount {
            details_pdf: false,
            ..account()
        };
        assert_eq!(
            details_messages(
                &invoice(),
                &customer(),
                &no_pdf,
                "2026-03-01 10:05:00",
                "D".into()
            )
            .len(),
            1
        );
        let r = reminder_message(&invoice(), &customer(), &account(), 3, "R".into());
        assert_eq!(r["dedupe_key"], "unpaid_reminder:account.move:42:3");
        assert_eq!(r["trigger"], "unpaid_reminder");
    }
}
