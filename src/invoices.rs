//! Customer invoices as the daemon's invoice flows read them, and the texts customers receive
//! about them.
//!
//! Shared by the automations (posted invoices, payments, unpaid reminders, the "Send details by
//! WhatsApp" button) and, later, the button actions (`send_invoice`, `send_payment_link`): the
//! records ([`Invoice`], [`InvoiceLine`]), the texts ([`posted_caption`], [`details_text`],
//! [`residual_text`], [`reminder_text`]), all pure, and [`InvoiceReader`], which does the reads
//! they need: lines, the portal link with its access token (`get_portal_url`, which makes the
//! token when the invoice has none), and the payment link.
//!
//! The payment link comes from Odoo itself: `payment.link.wizard` (module `payment`, extended by
//! `account_payment` for invoices) created for the invoice and the amount due, its `link` read
//! back. The link is signed with `request.env`, so Odoo 17 computes it only under an HTTP
//! request with a session: over `/jsonrpc` reading it fails with `RuntimeError: object unbound`
//! (recorded in `tests/fixtures/odoo17-jsonrpc/p_payment_link_wizard_read_over_jsonrpc.json`);
//! the reader goes through the web session (`OdooClient::web_call`). Without the `payment`
//! module (or without the right to create the wizard), there is no payment link: the details
//! carry the portal link only, `check` says why, and the log says it once.

use crate::odoo::{parse_datetime, Domain, OdooClient, OdooError, SearchOptions};
use crate::orders::{fit_details, truncate, DetailsReader, Line, Style, MAX_DETAILS};
use crate::texts::TextKey;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The longest caption WhatsApp takes on a document.
pub const MAX_CAPTION: usize = crate::whatsapp::payload::CAPTION_MAX;

/// The report printed for an invoice.
pub const INVOICE_REPORT: &str = "account.report_invoice";

fn text(r: &Map<String, Value>, f: &str) -> Option<String> {
    r.get(f)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn m2o(r: &Map<String, Value>, f: &str) -> Option<(i64, String)> {
    match r.get(f) {
        Some(Value::Array(items)) => Some((
            items.first()?.as_i64()?,
            items
                .get(1)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        )),
        Some(Value::Number(n)) => Some((n.as_i64()?, String::new())),
        _ => None,
    }
}

fn number(r: &Map<String, Value>, f: &str) -> f64 {
    r.get(f).and_then(Value::as_f64).unwrap_or(0.0)
}

fn date(r: &Map<String, Value>, f: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(&text(r, f)?, "%Y-%m-%d").ok()
}

/// An `account.move` as the invoice flows read it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Invoice {
    pub id: i64,
    /// The number (`INV/2026/00042`), `/` before posting.
    pub name: String,
    pub partner_id: i64,
    pub partner_name: String,
    pub company_id: Option<i64>,
    /// `out_invoice`, `out_refund`, `out_receipt`, ...
    pub move_type: String,
    /// `draft`, `posted`, `cancel`.
    pub state: String,
    /// `not_paid`, `partial`, `in_payment`, `paid`, `reversed`, ...
    pub payment_state: String,
    pub amount_untaxed: f64,
    pub amount_tax: f64,
    pub amount_total: f64,
    pub amount_residual: f64,
    pub currency_id: Option<i64>,
    pub invoice_date: Option<NaiveDate>,
    pub invoice_date_due: Option<NaiveDate>,
    pub write_date: Option<DateTime<Utc>>,
    /// When it was last posted (the addon stamps it).
    pub posted_at: Option<DateTime<Utc>>,
    pub invoice_sent: bool,
    /// Set by "Send details by WhatsApp" until the daemon queued the details.
    pub details_requested_at: Option<String>,
    pub last_residual_notified: f64,
    /// When the daemon recorded `last_residual_notified`; `None`: never.
    pub last_residual_at: Option<DateTime<Utc>>,
    pub reminder_count: i64,
}

impl Invoice {
    pub const MODEL: &'static str = "account.move";
    pub const FIELDS: &'static [&'static str] = &[
        "name",
        "partner_id",
        "company_id",
        "move_type",
        "state",
        "payment_state",
        "amount_untaxed",
        "amount_tax",
        "amount_total",
        "amount_residual",
        "currency_id",
        "invoice_date",
        "invoice_date_due",
        "write_date",
        "x_whatsapp_posted_at",
        "x_whatsapp_invoice_sent",
        "x_whatsapp_details_requested_at",
        "x_whatsapp_last_residual_notified",
        "x_whatsapp_last_residual_at",
        "x_whatsapp_unpaid_reminder_count",
    ];

    /// One record of a `read`/`search_read`; `None` without an id or a customer.
    pub fn from_record(value: &Value) -> Option<Invoice> {
        let r = value.as_object()?;
        let (partner_id, partner_name) = m2o(r, "partner_id")?;
        Some(Invoice {
            id: r.get("id")?.as_i64()?,
            name: text(r, "name").unwrap_or_default(),
            partner_id,
            partner_name,
            company_id: m2o(r, "company_id").map(|(id, _)| id),
            move_type: text(r, "move_type").unwrap_or_default(),
            state: text(r, "state").unwrap_or_default(),
            payment_state: text(r, "payment_state").unwrap_or_default(),
            amount_untaxed: number(r, "amount_untaxed"),
            amount_tax: number(r, "amount_tax"),
            amount_total: number(r, "amount_total"),
            amount_residual: number(r, "amount_residual"),
            currency_id: m2o(r, "currency_id").map(|(id, _)| id),
            invoice_date: date(r, "invoice_date"),
            invoice_date_due: date(r, "invoice_date_due"),
            write_date: text(r, "write_date").and_then(|s| parse_datetime(&s)),
            posted_at: text(r, "x_whatsapp_posted_at").and_then(|s| parse_datetime(&s)),
            invoice_sent: matches!(r.get("x_whatsapp_invoice_sent"), Some(Value::Bool(true))),
            details_requested_at: text(r, "x_whatsapp_details_requested_at"),
            last_residual_notified: number(r, "x_whatsapp_last_residual_notified"),
            last_residual_at: text(r, "x_whatsapp_last_residual_at")
                .and_then(|s| parse_datetime(&s)),
            reminder_count: r
                .get("x_whatsapp_unpaid_reminder_count")
                .and_then(Value::as_i64)
                .unwrap_or(0),
        })
    }

    /// A customer invoice (not a credit note nor a receipt).
    pub fn is_customer_invoice(&self) -> bool {
        self.move_type == "out_invoice"
    }

    pub fn is_posted(&self) -> bool {
        self.state == "posted"
    }

    /// Posted and not (fully) paid.
    pub fn is_unpaid(&self) -> bool {
        self.is_posted() && matches!(self.payment_state.as_str(), "not_paid" | "partial")
    }

    /// The file name its PDF is sent under: the number with `/` replaced.
    pub fn pdf_filename(&self) -> String {
        let base = if self.name.trim().is_empty() || self.name == "/" {
            format!("invoice-{}", self.id)
        } else {
            self.name.replace(['/', '\\'], "_")
        };
        format!("{base}.pdf")
    }
}

/// An invoice line (`account.move.line` of the invoice's product, section and note lines).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InvoiceLine {
    pub move_id: i64,
    pub line: Line,
}

impl InvoiceLine {
    pub const MODEL: &'static str = "account.move.line";
    pub const FIELDS: &'static [&'static str] = &[
        "move_id",
        "name",
        "display_type",
        "quantity",
        "price_unit",
        "price_subtotal",
    ];

    pub fn from_record(value: &Value) -> Option<InvoiceLine> {
        let r = value.as_object()?;
        let display_type = match text(r, "display_type").as_deref() {
            Some("line_section") => "line_section",
            Some("line_note") => "line_note",
            _ => "",
        };
        Some(InvoiceLine {
            move_id: m2o(r, "move_id")?.0,
            line: Line {
                order_id: m2o(r, "move_id")?.0,
                description: text(r, "name").unwrap_or_default(),
                display_type: display_type.to_owned(),
                quantity: number(r, "quantity"),
                price_unit: number(r, "price_unit"),
                subtotal: number(r, "price_subtotal"),
            },
        })
    }
}

fn due_date(invoice: &Invoice, style: &Style<'_>) -> String {
    invoice
        .invoice_date_due
        .or(invoice.invoice_date)
        .map(|d| style.lang.date(d))
        .unwrap_or_default()
}

/// The caption of the PDF sent when the invoice is posted: number, amount, due date, and the
/// portal link when there is one; at most [`MAX_CAPTION`] characters.
pub fn posted_caption(
    invoice: &Invoice,
    customer: &str,
    style: &Style<'_>,
    link: Option<&str>,
) -> String {
    let t = style.texts;
    let mut text = t.render(
        TextKey::InvoicePosted,
        &[
            ("customer", customer),
            ("invoice", &invoice.name),
            (
                "amount",
                &style.money.format(invoice.amount_total, style.lang),
            ),
            ("due_date", &due_date(invoice, style)),
        ],
    );
    if let Some(link) = link {
        text.push('\n');
        text.push_str(&t.render(TextKey::InvoiceLink, &[("link", link)]));
    }
    truncate(text, MAX_CAPTION)
}

/// The payment link of the amount due, as the details show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentLink {
    pub url: String,
}

/// The invoice details: number, dates, lines, totals, amount paid and due, the portal link and
/// the payment link; at most [`MAX_DETAILS`] characters (lines that do not fit are counted as
/// "… and N more lines", the totals and links always stay).
pub fn details_text(
    invoice: &Invoice,
    lines: &[Line],
    style: &Style<'_>,
    portal: Option<&str>,
    payment: Option<&PaymentLink>,
) -> String {
    let t = style.texts;
    let amount = |a: f64| style.money.format(a, style.lang);
    let header = t.render(
        TextKey::InvoiceDetailsHeader,
        &[
            ("invoice", &invoice.name),
            ("customer", &invoice.partner_name),
            (
                "date",
                &invoice
                    .invoice_date
                    .map(|d| style.lang.date(d))
                    .unwrap_or_default(),
            ),
            ("due_date", &due_date(invoice, style)),
        ],
    );
    let paid = (invoice.amount_total - invoice.amount_residual).max(0.0);
    let totals = t.render(
        TextKey::InvoiceDetailsTotals,
        &[
            ("untaxed", &amount(invoice.amount_untaxed)),
            ("taxes", &amount(invoice.amount_tax)),
            ("total", &amount(invoice.amount_total)),
            ("paid", &amount(paid)),
            ("residual", &amount(invoice.amount_residual)),
        ],
    );
    let mut links: Vec<String> = Vec::new();
    if let Some(p) = payment {
        links.push(t.render(
            TextKey::InvoicePaymentLink,
            &[
                ("amount", &amount(invoice.amount_residual)),
                ("link", &p.url),
            ],
        ));
    }
    if let Some(l) = portal {
        links.push(t.render(TextKey::InvoiceLink, &[("link", l)]));
    }
    let links = (!links.is_empty()).then(|| links.join("\n"));
    fit_details(header, lines, style, totals, links)
}

/// The message about payments: what was paid since the customer was last told and what
/// remains, or "paid in full" when nothing remains.
pub fn residual_text(
    invoice: &Invoice,
    customer: &str,
    paid: f64,
    residual: f64,
    style: &Style<'_>,
) -> String {
    let amount = |a: f64| style.money.format(a, style.lang);
    let key = if residual <= 0.0 {
        TextKey::ResidualPaid
    } else {
        TextKey::ResidualPartial
    };
    let text = style.texts.render(
        key,
        &[
            ("customer", customer),
            ("invoice", &invoice.name),
            ("paid", &amount(paid)),
            ("residual", &amount(residual.max(0.0))),
            ("amount", &amount(invoice.amount_total)),
        ],
    );
    truncate(text, MAX_DETAILS)
}

/// The reminder of an overdue invoice (`days`: how many days it is overdue), with the portal
/// link when there is one.
pub fn reminder_text(
    invoice: &Invoice,
    customer: &str,
    days: i64,
    style: &Style<'_>,
    link: Option<&str>,
) -> String {
    let amount = |a: f64| style.money.format(a, style.lang);
    let t = style.texts;
    let mut text = t.render(
        TextKey::UnpaidReminder,
        &[
            ("customer", customer),
            ("invoice", &invoice.name),
            ("amount", &amount(invoice.amount_total)),
            ("due_date", &due_date(invoice, style)),
            ("residual", &amount(invoice.amount_residual)),
            ("days", &days.to_string()),
        ],
    );
    if let Some(link) = link {
        text.push('\n');
        text.push_str(&t.render(TextKey::InvoiceLink, &[("link", link)]));
    }
    truncate(text, MAX_DETAILS)
}

/// Why no payment link could be had (for `check` and the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoPaymentLink {
    /// Odoo has no `payment.link.wizard`: the `payment` module is not installed.
    NotInstalled,
    /// Odoo refused (no right on the wizard, no password for the web session, ...).
    Refused(String),
}

/// Reads what the invoice texts need, keeping the base URL and whether payment links work.
pub struct InvoiceReader {
    odoo: OdooClient,
    details: Arc<DetailsReader>,
    base_url: Mutex<Option<String>>,
    /// Set once payment links turned out to be unavailable.
    no_payment_link: Mutex<Option<NoPaymentLink>>,
}

/// Why invoice texts could not be written.
#[derive(Debug, thiserror::Error)]
pub enum InvoiceReadError {
    #[error("cannot read the invoice from Odoo: {0}")]
    Odoo(#[from] OdooError),
}

impl InvoiceReadError {
    pub fn is_retryable(&self) -> bool {
        match self {
            InvoiceReadError::Odoo(e) => e.is_retryable(),
        }
    }
}

impl InvoiceReader {
    pub fn new(odoo: OdooClient, details: Arc<DetailsReader>) -> InvoiceReader {
        InvoiceReader {
            odoo,
            details,
            base_url: Mutex::new(None),
            no_payment_link: Mutex::new(None),
        }
    }

    /// The formats and texts shared with the order flows.
    pub fn details(&self) -> &DetailsReader {
        &self.details
    }

    /// The product, section and note lines of the invoices, by invoice, in their order.
    pub async fn lines(&self, ids: &[i64]) -> Result<HashMap<i64, Vec<Line>>, OdooError> {
        let rows: Vec<Value> = self
            .odoo
            .search_read(
                InvoiceLine::MODEL,
                &Domain::leaf("move_id", "in", json!(ids)).and(
                    "display_type",
                    "in",
                    json!(["product", "line_section", "line_note"]),
                ),
                InvoiceLine::FIELDS,
                &SearchOptions::new().order("move_id, sequence, id"),
            )
            .await?;
        let mut out: HashMap<i64, Vec<Line>> = HashMap::new();
        for l in rows.iter().filter_map(InvoiceLine::from_record) {
            out.entry(l.move_id).or_default().push(l.line);
        }
        Ok(out)
    }

    /// The invoice's portal link with its access token, absolute.
    pub async fn portal_link(&self, id: i64) -> Result<Option<String>, OdooError> {
        let path: Value = self
            .odoo
            .call(Invoice::MODEL, "get_portal_url", json!([[id]]), json!({}))
            .await?;
        let Some(path) = path.as_str().filter(|p| !p.is_empty()) else {
            return Ok(None);
        };
        if path.starts_with("http://") || path.starts_with("https://") {
            return Ok(Some(path.to_owned()));
        }
        let base = self.base_url(id).await?;
        Ok(Some(format!("{base}{path}")))
    }

    /// The portal links of several invoices: one call per 200 invoices (the addon's
    /// `account.move.whatsapp_portal_paths`, which makes the access tokens that are missing),
    /// and the base URL once.
    pub async fn portal_links(&self, ids: &[i64]) -> Result<HashMap<i64, String>, OdooError> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(200) {
            let paths: Value = self
                .odoo
                .call(
                    Invoice::MODEL,
                    "whatsapp_portal_paths",
                    json!([chunk]),
                    json!({}),
                )
                .await?;
            let Some(paths) = paths.as_object() else {
                continue;
            };
            for (id, path) in paths {
                let (Ok(id), Some(path)) = (id.parse::<i64>(), path.as_str()) else {
                    continue;
                };
                if path.is_empty() {
                    continue;
                }
                let link = if path.starts_with("http://") || path.starts_with("https://") {
                    path.to_owned()
                } else {
                    format!("{}{path}", self.base_url(id).await?)
                };
                out.insert(id, link);
            }
        }
        Ok(out)
    }

    /// Odoo's `web.base.url` (asked once, through an invoice), without its trailing slash.
    async fn base_url(&self, id: i64) -> Result<String, OdooError> {
        if let Some(b) = lock(&self.base_url).clone() {
            return Ok(b);
        }
        let base: Value = self
            .odoo
            .call(Invoice::MODEL, "get_base_url", json!([[id]]), json!({}))
            .await?;
        let base = base.as_str().unwrap_or("").trim_end_matches('/').to_owned();
        *lock(&self.base_url) = Some(base.clone());
        Ok(base)
    }

    /// Why payment links are unavailable, once a call showed it.
    pub fn payment_link_unavailable(&self) -> Option<NoPaymentLink> {
        lock(&self.no_payment_link).clone()
    }

    /// A payment link for the amount due of `invoice` from Odoo's `payment.link.wizard`, or
    /// `None` when nothing is due or payment links are unavailable (said once in the log). A
    /// passing failure is an error (the caller tries again later).
    pub async fn payment_link(&self, invoice: &Invoice) -> Result<Option<PaymentLink>, OdooError> {
        self.payment_link_of(invoice.id, invoice.amount_residual)
            .await
    }

    /// [`InvoiceReader::payment_link`] for the invoice `id` whose amount due is `residual`.
    pub async fn payment_link_of(
        &self,
        id: i64,
        residual: f64,
    ) -> Result<Option<PaymentLink>, OdooError> {
        if residual <= 0.0 || lock(&self.no_payment_link).is_some() {
            return Ok(None);
        }
        match self.try_payment_link(id, residual).await {
            Ok(link) => Ok(link.map(|url| PaymentLink { url })),
            Err(e) if e.is_retryable() => Err(e),
            Err(e) => {
                let why = match &e {
                    OdooError::UnknownModel { .. } => NoPaymentLink::NotInstalled,
                    other => NoPaymentLink::Refused(other.to_string()),
                };
                tracing::warn!(error = %e, "no payment links from Odoo: invoice details carry the portal link only (install Odoo's 'payment' module and give the daemon's user the Invoicing right; `whatsapp-sidecar check` tells)");
                *lock(&self.no_payment_link) = Some(why);
                Ok(None)
            }
        }
    }

    async fn try_payment_link(&self, id: i64, residual: f64) -> Result<Option<String>, OdooError> {
        let context = json!({"active_model": Invoice::MODEL, "active_id": id});
        let id: Value = self
            .odoo
            .web_call(
                PAYMENT_LINK_MODEL,
                "create",
                json!([{"res_model": Invoice::MODEL, "res_id": id, "amount": residual}]),
                json!({"context": context}),
            )
            .await?;
        let Some(id) = id.as_i64() else {
            return Ok(None);
        };
        let rows: Vec<Value> = self
            .odoo
            .web_call(
                PAYMENT_LINK_MODEL,
                "read",
                json!([[id], ["link"]]),
                json!({}),
            )
            .await?;
        Ok(rows
            .first()
            .and_then(|r| r.get("link"))
            .and_then(Value::as_str)
            .filter(|l| !l.is_empty())
            .map(str::to_owned))
    }
}

/// Odoo's payment link wizard (module `payment`).
pub const PAYMENT_LINK_MODEL: &str = "payment.link.wizard";

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::texts::{LangFormat, Money, TextRow, Texts};

    fn invoice() -> Invoice {
        Invoice {
            id: 42,
            name: "INV/2026/00042".into(),
            partner_id: 3,
            partner_name: "Awa Kouassi".into(),
            move_type: "out_invoice".into(),
            state: "posted".into(),
            payment_state: "not_paid".into(),
            amount_untaxed: 1000.0,
            amount_tax: 180.0,
            amount_total: 1180.0,
            amount_residual: 1180.0,
            invoice_date: NaiveDate::from_ymd_opt(2026, 3, 9),
            invoice_date_due: NaiveDate::from_ymd_opt(2026, 4, 8),
            ..Invoice::default()
        }
    }

    fn fr() -> LangFormat {
        LangFormat {
            decimal_point: ",".into(),
            thousands_sep: "\u{202f}".into(),
            grouping: vec![3, 0],
            date_format: "%d/%m/%Y".into(),
        }
    }

    fn eur() -> Money {
        Money {
            symbol: "€".into(),
            before: false,
            decimals: 2,
        }
    }

    #[test]
    fn invoices_are_read_from_odoo_records() {
        let i = Invoice::from_record(&json!({"id": 42, "name": "INV/2026/00042",
            "partner_id": [3, "Awa"], "company_id": [1, "C"], "move_type": "out_invoice",
            "state": "posted", "payment_state": "partial", "amount_total": 1180.0,
            "amount_residual": 680.0, "currency_id": [2, "EUR"], "invoice_date": "2026-03-09",
            "invoice_date_due": "2026-04-08", "write_date": "2026-03-09 10:00:00",
            "x_whatsapp_posted_at": "2026-03-09 09:59:00", "x_whatsapp_invoice_sent": false,
            "x_whatsapp_details_requested_at": false, "x_whatsapp_last_residual_notified": 0.0,
            "x_whatsapp_last_residual_at": false, "x_whatsapp_unpaid_reminder_count": 2}))
        .unwrap();
        assert_eq!(
            (i.id, i.partner_id, i.company_id, i.currency_id),
            (42, 3, Some(1), Some(2))
        );
        assert!(i.is_customer_invoice() && i.is_unpaid());
        assert_eq!(i.invoice_date_due, NaiveDate::from_ymd_opt(2026, 4, 8));
        assert!(i.posted_at.is_some() && i.last_residual_at.is_none());
        assert_eq!(i.reminder_count, 2);
        assert_eq!(i.pdf_filename(), "INV_2026_00042.pdf");
        assert!(Invoice::from_record(&json!({"id": 1, "partner_id": false})).is_none());
        let paid = Invoice {
            payment_state: "paid".into(),
            ..invoice()
        };
        assert!(!paid.is_unpaid());
        let line = InvoiceLine::from_record(&json!({"id": 5, "move_id": [42, "INV"],
            "name": "Desk", "display_type": "product", "quantity": 2.0, "price_unit": 500.0,
            "price_subtotal": 1000.0}))
        .unwrap();
        assert_eq!(line.move_id, 42);
        assert_eq!(line.line.display_type, "", "a product line");
    }

    #[test]
    fn the_posted_caption_names_number_amount_due_date_and_link_in_the_customers_words() {
        let texts = Texts::resolve(
            &[TextRow {
                key: "invoice_posted".into(),
                company_id: None,
                body: "Bonjour {customer}, facture {invoice} de {amount}, échéance {due_date}."
                    .into(),
            }],
            None,
        );
        let (money, lang) = (eur(), fr());
        let style = Style {
            texts: &texts,
            money: &money,
            lang: &lang,
        };
        let caption = posted_caption(
            &invoice(),
            "Awa",
            &style,
            Some("https://x/my/invoices/42?access_token=t"),
        );
        assert_eq!(
            caption,
            "Bonjour Awa, facture INV/2026/00042 de 1\u{202f}180,00\u{a0}€, échéance 08/04/2026.\n\
             View, download and pay it online: https://x/my/invoices/42?access_token=t"
        );
        let long = Invoice {
            name: "N".repeat(2000),
            ..invoice()
        };
        assert!(posted_caption(&long, "Awa", &style, None).chars().count() <= MAX_CAPTION);
    }

    #[test]
    fn details_show_lines_totals_paid_due_and_both_links() {
        let texts = Texts::resolve(&[], None);
        let (money, lang) = (eur(), fr());
        let style = Style {
            texts: &texts,
            money: &money,
            lang: &lang,
        };
        let partly = Invoice {
            amount_residual: 680.0,
            payment_state: "partial".into(),
            ..invoice()
        };
        let lines = vec![
            Line {
                description: "Desk".into(),
                quantity: 2.0,
                price_unit: 500.0,
                subtotal: 1000.0,
                ..Line::default()
            },
            Line {
                description: "A note".into(),
                display_type: "line_note".into(),
                ..Line::default()
            },
        ];
        let text = details_text(
            &partly,
            &lines,
            &style,
            Some("https://x/my/invoices/42?access_token=t"),
            Some(&PaymentLink {
                url: "https://x/payment/pay?amount=680.0&invoice_id=42".into(),
            }),
        );
        assert!(text.starts_with("*Invoice INV/2026/00042*\nCustomer: Awa Kouassi\nDate: 09/03/2026\nDue date: 08/04/2026"), "{text}");
        assert!(
            text.contains("• Desk: 2 × 500,00\u{a0}€ = 1\u{202f}000,00\u{a0}€"),
            "{text}"
        );
        assert!(!text.contains("A note"));
        assert!(
            text.contains(
                "*Total: 1\u{202f}180,00\u{a0}€*\nPaid: 500,00\u{a0}€\n*Amount due: 680,00\u{a0}€*"
            ),
            "{text}"
        );
        assert!(
            text.ends_with(
                "Pay 680,00\u{a0}€ online: https://x/payment/pay?amount=680.0&invoice_id=42\n\
             View, download and pay it online: https://x/my/invoices/42?access_token=t"
            ),
            "{text}"
        );
        let many: Vec<Line> = (0..500)
            .map(|i| Line {
                description: format!("Product number {i} with a long description"),
                quantity: 1.0,
                price_unit: 1.0,
                subtotal: 1.0,
                ..Line::default()
            })
            .collect();
        let text = details_text(&partly, &many, &style, Some("https://x/l"), None);
        assert!(text.chars().count() <= MAX_DETAILS);
        assert!(text.contains("more lines") && text.ends_with("https://x/l"));
    }

    #[test]
    fn payments_say_what_was_paid_and_what_remains_or_thank_for_the_full_payment() {
        let texts = Texts::resolve(&[], None);
        let (money, lang) = (eur(), LangFormat::default());
        let style = Style {
            texts: &texts,
            money: &money,
            lang: &lang,
        };
        let text = residual_text(&invoice(), "Awa", 500.0, 680.0, &style);
        assert_eq!(
            text,
            "Hello Awa, we received your payment of 500.00\u{a0}€ for invoice INV/2026/00042. \
             Thank you! Remaining to pay: 680.00\u{a0}€."
        );
        let text = residual_text(&invoice(), "Awa", 680.0, 0.0, &style);
        assert_eq!(
            text,
            "Hello Awa, invoice INV/2026/00042 of 1,180.00\u{a0}€ is now paid in full. Thank you!"
        );
        let text = reminder_text(&invoice(), "Awa", 9, &style, Some("https://x/l"));
        assert!(
            text.contains("was due on 04/08/2026 and 1,180.00\u{a0}€ remains"),
            "{text}"
        );
        assert!(text.ends_with("online: https://x/l"));
    }
}
