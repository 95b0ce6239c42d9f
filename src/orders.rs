//! Sale orders as the daemon's order flows read them, and the order details customers receive.
//!
//! Shared by the automations (the new-order message, the "Send details by WhatsApp" button)
//! and the button actions (Validate, Cancel, Details): the records ([`Order`], [`Customer`],
//! [`Line`]), the state rules ([`confirm_decision`], [`cancel_decision`]) and the details text
//! ([`details_text`]), all pure; [`DetailsReader`] does the reads the details need.
//!
//! The details: customer, date, status, one line per order line (description, quantity, unit
//! price, subtotal; sections as titles, notes left out), untaxed / taxes / total in the order's
//! currency, and the portal link with its access token (Odoo's `get_portal_url`, which makes
//! the token when the order has none), every word from the customer texts in the customer's
//! language. WhatsApp takes at most 4,096 characters: lines that do not fit are summed up as
//! "… and N more lines", and the totals and the link always stay.

use crate::odoo::{parse_datetime, Domain, OdooClient, OdooError, SearchOptions};
use crate::texts::{quantity, LangFormat, Money, TextCache, TextKey, Texts};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Mutex;

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

fn flag(r: &Map<String, Value>, f: &str) -> bool {
    matches!(r.get(f), Some(Value::Bool(true)))
}

/// A `sale.order` as the order flows read it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Order {
    pub id: i64,
    pub name: String,
    pub partner_id: i64,
    /// The customer's display name.
    pub partner_name: String,
    pub company_id: Option<i64>,
    /// `draft`, `sent`, `sale`, `cancel`.
    pub state: String,
    pub locked: bool,
    /// `invoiced`, `to invoice`, `no`, `upselling`.
    pub invoice_status: String,
    pub amount_untaxed: f64,
    pub amount_tax: f64,
    pub amount_total: f64,
    pub currency_id: Option<i64>,
    /// The salesperson.
    pub user_id: Option<i64>,
    pub date_order: Option<DateTime<Utc>>,
    pub create_date: Option<DateTime<Utc>>,
    pub write_date: Option<DateTime<Utc>>,
    pub creation_sent: bool,
    /// Set by the "Send details by WhatsApp" button until the daemon queued the details.
    pub details_requested_at: Option<String>,
}

impl Order {
    pub const MODEL: &'static str = "sale.order";
    pub const FIELDS: &'static [&'static str] = &[
        "name",
        "partner_id",
        "company_id",
        "state",
        "locked",
        "invoice_status",
        "amount_untaxed",
        "amount_tax",
        "amount_total",
        "currency_id",
        "user_id",
        "date_order",
        "create_date",
        "write_date",
        "x_whatsapp_creation_sent",
        "x_whatsapp_details_requested_at",
    ];

    /// One record of a `read`/`search_read`; `None` without an id or a customer.
    pub fn from_record(value: &Value) -> Option<Order> {
        let r = value.as_object()?;
        let (partner_id, partner_name) = m2o(r, "partner_id")?;
        Some(Order {
            id: r.get("id")?.as_i64()?,
            name: text(r, "name").unwrap_or_default(),
            partner_id,
            partner_name,
            company_id: m2o(r, "company_id").map(|(id, _)| id),
            state: text(r, "state").unwrap_or_default(),
            locked: flag(r, "locked"),
            invoice_status: text(r, "invoice_status").unwrap_or_default(),
            amount_untaxed: number(r, "amount_untaxed"),
            amount_tax: number(r, "amount_tax"),
            amount_total: number(r, "amount_total"),
            currency_id: m2o(r, "currency_id").map(|(id, _)| id),
            user_id: m2o(r, "user_id").map(|(id, _)| id),
            date_order: text(r, "date_order").and_then(|s| parse_datetime(&s)),
            create_date: text(r, "create_date").and_then(|s| parse_datetime(&s)),
            write_date: text(r, "write_date").and_then(|s| parse_datetime(&s)),
            creation_sent: flag(r, "x_whatsapp_creation_sent"),
            details_requested_at: text(r, "x_whatsapp_details_requested_at"),
        })
    }

    /// A quotation: `draft` or `sent`.
    pub fn is_quotation(&self) -> bool {
        matches!(self.state.as_str(), "draft" | "sent")
    }

    /// The customer text naming this order's status.
    pub fn state_text(&self) -> TextKey {
        match self.state.as_str() {
            "draft" => TextKey::StateDraft,
            "sent" => TextKey::StateSent,
            "cancel" => TextKey::StateCancel,
            _ => TextKey::StateSale,
        }
    }
}

/// A `res.partner` as the order flows read it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Customer {
    pub id: i64,
    pub name: String,
    /// `res.partner.lang` (`fr_FR`), empty when unset.
    pub lang: String,
    pub opt_in: bool,
    pub opted_out: bool,
    pub number_e164: Option<String>,
    pub mobile: Option<String>,
    pub phone: Option<String>,
    pub commercial_partner_id: Option<i64>,
}

impl Customer {
    pub const MODEL: &'static str = "res.partner";
    pub const FIELDS: &'static [&'static str] = &[
        "name",
        "lang",
        "whatsapp_opt_in",
        "whatsapp_opt_out_date",
        "whatsapp_number_e164",
        "mobile",
        "phone",
        "commercial_partner_id",
    ];

    pub fn from_record(value: &Value) -> Option<Customer> {
        let r = value.as_object()?;
        Some(Customer {
            id: r.get("id")?.as_i64()?,
            name: text(r, "name").unwrap_or_default(),
            lang: text(r, "lang").unwrap_or_default(),
            opt_in: flag(r, "whatsapp_opt_in"),
            opted_out: text(r, "whatsapp_opt_out_date").is_some(),
            number_e164: text(r, "whatsapp_number_e164"),
            mobile: text(r, "mobile"),
            phone: text(r, "phone"),
            commercial_partner_id: m2o(r, "commercial_partner_id").map(|(id, _)| id),
        })
    }

    /// The number WhatsApp messages go to (the addon's `_whatsapp_number`).
    pub fn whatsapp_number(&self) -> Option<&str> {
        self.number_e164
            .as_deref()
            .or(self.mobile.as_deref())
            .or(self.phone.as_deref())
    }

    /// Every number of the contact.
    pub fn numbers(&self) -> impl Iterator<Item = &str> {
        [&self.number_e164, &self.mobile, &self.phone]
            .into_iter()
            .filter_map(|n| n.as_deref())
    }

    /// The contact may get automatic messages: opted in and not opted out since.
    pub fn reachable(&self) -> bool {
        self.opt_in && !self.opted_out && self.whatsapp_number().is_some()
    }
}

/// True when `number` (as typed on a contact) is the WhatsApp user `wa_id` (digits with the
/// country code). A national number is read in the wa_id's own country.
pub fn same_number(wa_id: &str, number: &str) -> bool {
    let digits: String = wa_id.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return false;
    }
    let region = phonenumber::parse(None, format!("+{digits}"))
        .ok()
        .and_then(|n| n.country().id())
        .map(|id| id.as_ref().to_owned());
    crate::phone::normalize(number, region.as_deref())
        .map(|e| e.digits() == digits)
        .unwrap_or(false)
}

/// A `sale.order.line`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Line {
    pub order_id: i64,
    pub description: String,
    /// `line_section`, `line_note` or empty for a product line.
    pub display_type: String,
    pub quantity: f64,
    pub price_unit: f64,
    pub subtotal: f64,
}

impl Line {
    pub const MODEL: &'static str = "sale.order.line";
    pub const FIELDS: &'static [&'static str] = &[
        "order_id",
        "name",
        "display_type",
        "product_uom_qty",
        "price_unit",
        "price_subtotal",
    ];

    pub fn from_record(value: &Value) -> Option<Line> {
        let r = value.as_object()?;
        Some(Line {
            order_id: m2o(r, "order_id")?.0,
            description: text(r, "name").unwrap_or_default(),
            display_type: text(r, "display_type").unwrap_or_default(),
            quantity: number(r, "product_uom_qty"),
            price_unit: number(r, "price_unit"),
            subtotal: number(r, "price_subtotal"),
        })
    }
}

/// What a Validate press does to an order in this state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmDecision {
    /// A quotation: `action_confirm`.
    Confirm,
    /// Already confirmed: nothing to do, tell the customer.
    AlreadyConfirmed,
    /// Cancelled: not confirmed, tell the customer why.
    Cancelled,
}

/// Validate: only a quotation (`draft`, `sent`) is confirmed.
pub fn confirm_decision(order: &Order) -> ConfirmDecision {
    match order.state.as_str() {
        "draft" | "sent" => ConfirmDecision::Confirm,
        "cancel" => ConfirmDecision::Cancelled,
        _ => ConfirmDecision::AlreadyConfirmed,
    }
}

/// What a Cancel press does to an order in this state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelDecision {
    /// A quotation: `action_cancel` (with `disable_cancel_warning`).
    Cancel,
    AlreadyCancelled,
    /// Not cancelled, with the text that says why.
    Refuse(TextKey),
}

/// Cancel: a customer cancels a quotation only; a confirmed, locked or invoiced order needs a
/// salesperson.
pub fn cancel_decision(order: &Order) -> CancelDecision {
    match order.state.as_str() {
        "cancel" => CancelDecision::AlreadyCancelled,
        "draft" | "sent" if !order.locked => CancelDecision::Cancel,
        _ if order.invoice_status == "invoiced" => {
            CancelDecision::Refuse(TextKey::OrderCannotCancelInvoiced)
        }
        _ if order.locked => CancelDecision::Refuse(TextKey::OrderCannotCancelLocked),
        _ => CancelDecision::Refuse(TextKey::OrderCannotCancelConfirmed),
    }
}

/// The longest text message WhatsApp takes.
pub const MAX_DETAILS: usize = crate::whatsapp::payload::TEXT_BODY_MAX;

/// How one customer's details are written.
#[derive(Debug, Clone)]
pub struct Style<'a> {
    pub texts: &'a Texts,
    pub money: &'a Money,
    pub lang: &'a LangFormat,
}

/// The order details, at most [`MAX_DETAILS`] characters.
pub fn details_text(
    order: &Order,
    lines: &[Line],
    style: &Style<'_>,
    link: Option<&str>,
) -> String {
    let t = style.texts;
    let amount = |a: f64| style.money.format(a, style.lang);
    let date = order
        .date_order
        .map(|d| style.lang.date(d.date_naive()))
        .unwrap_or_default();
    let header = t.render(
        TextKey::DetailsHeader,
        &[
            ("order", &order.name),
            ("customer", &order.partner_name),
            ("date", &date),
            ("state", t.get(order.state_text())),
        ],
    );
    let totals = t.render(
        TextKey::DetailsTotals,
        &[
            ("untaxed", &amount(order.amount_untaxed)),
            ("taxes", &amount(order.amount_tax)),
            ("total", &amount(order.amount_total)),
        ],
    );
    let link = link.map(|l| t.render(TextKey::DetailsLink, &[("link", l)]));
    fit_details(header, lines, style, totals, link)
}

/// The details message of an order or an invoice: the header, the lines (sections as
/// headings, notes left out), the totals and the links, at most [`MAX_DETAILS`] characters.
/// Lines that do not fit are counted as "… and N more lines"; the totals and links stay.
pub fn fit_details(
    header: String,
    lines: &[Line],
    style: &Style<'_>,
    totals: String,
    links: Option<String>,
) -> String {
    let t = style.texts;
    let amount = |a: f64| style.money.format(a, style.lang);
    let rendered: Vec<String> = lines
        .iter()
        .filter(|l| l.display_type != "line_note")
        .map(|l| {
            if l.display_type == "line_section" {
                t.render(
                    TextKey::DetailsSection,
                    &[("description", l.description.trim())],
                )
            } else {
                t.render(
                    TextKey::DetailsLine,
                    &[
                        ("description", l.description.trim()),
                        ("quantity", &quantity(l.quantity, style.lang)),
                        ("unit_price", &amount(l.price_unit)),
                        ("subtotal", &amount(l.subtotal)),
                    ],
                )
            }
        })
        .collect();
    let assemble = |shown: &[String], more: usize| {
        let mut parts = vec![header.clone()];
        if !shown.is_empty() || more > 0 {
            let mut block = shown.join("\n");
            if more > 0 {
                if !block.is_empty() {
                    block.push('\n');
                }
                block.push_str(
                    &t.render(TextKey::DetailsMoreLines, &[("count", &more.to_string())]),
                );
            }
            parts.push(block);
        }
        parts.push(totals.clone());
        if let Some(l) = &links {
            parts.push(l.clone());
        }
        parts.join("\n\n")
    };
    let mut shown = rendered.len();
    loop {
        let text = assemble(&rendered[..shown], rendered.len() - shown);
        if text.chars().count() <= MAX_DETAILS || shown == 0 {
            return truncate(text, MAX_DETAILS);
        }
        shown -= 1;
    }
}

pub(crate) fn truncate(text: String, max: usize) -> String {
    if text.chars().count() <= max {
        return text;
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The reads the order details need, with the languages' and currencies' formats kept.
pub struct DetailsReader {
    odoo: OdooClient,
    texts: std::sync::Arc<TextCache>,
    langs: Mutex<HashMap<String, LangFormat>>,
    currencies: Mutex<HashMap<i64, Money>>,
    base_url: Mutex<Option<String>>,
}

/// Why details could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DetailsError {
    #[error("cannot read the order details from Odoo: {0}")]
    Odoo(#[from] OdooError),
}

impl DetailsError {
    pub fn is_retryable(&self) -> bool {
        match self {
            DetailsError::Odoo(e) => e.is_retryable(),
        }
    }
}

impl DetailsReader {
    pub fn new(odoo: OdooClient, texts: std::sync::Arc<TextCache>) -> DetailsReader {
        DetailsReader {
            odoo,
            texts,
            langs: Mutex::new(HashMap::new()),
            currencies: Mutex::new(HashMap::new()),
            base_url: Mutex::new(None),
        }
    }

    /// The customer texts this reader uses.
    pub fn texts(&self) -> &TextCache {
        &self.texts
    }

    /// The number format of `lang` (read once per language).
    pub async fn lang_format(&self, lang: &str) -> Result<LangFormat, OdooError> {
        let code = if lang.is_empty() { "en_US" } else { lang };
        if let Some(f) = lock(&self.langs).get(code) {
            return Ok(f.clone());
        }
        let rows: Vec<Value> = self
            .odoo
            .search_read(
                LangFormat::MODEL,
                &Domain::leaf("code", "=", code),
                LangFormat::FIELDS,
                &SearchOptions::new().limit(1),
            )
            .await?;
        let format = rows
            .iter()
            .filter_map(LangFormat::from_record)
            .map(|(_, f)| f)
            .next()
            .unwrap_or_default();
        lock(&self.langs).insert(code.to_owned(), format.clone());
        Ok(format)
    }

    /// The currencies of `ids` (read once each).
    pub async fn money(&self, ids: &[i64]) -> Result<HashMap<i64, Money>, OdooError> {
        let missing: Vec<i64> = {
            let known = lock(&self.currencies);
            let mut m: Vec<i64> = ids
                .iter()
                .copied()
                .filter(|i| !known.contains_key(i))
                .collect();
            m.sort_unstable();
            m.dedup();
            m
        };
        if !missing.is_empty() {
            let rows: Vec<Value> = self
                .odoo
                .read(Money::MODEL, &missing, Money::FIELDS)
                .await?;
            let mut known = lock(&self.currencies);
            for (id, money) in rows.iter().filter_map(Money::from_record) {
                known.insert(id, money);
            }
        }
        let known = lock(&self.currencies);
        Ok(ids
            .iter()
            .filter_map(|id| known.get(id).map(|m| (*id, m.clone())))
            .collect())
    }

    /// The lines of the orders, by order, in the order's sequence.
    pub async fn lines(&self, order_ids: &[i64]) -> Result<HashMap<i64, Vec<Line>>, OdooError> {
        let rows: Vec<Value> = self
            .odoo
            .search_read(
                Line::MODEL,
                &Domain::leaf("order_id", "in", json!(order_ids)),
                Line::FIELDS,
                &SearchOptions::new().order("order_id, sequence, id"),
            )
            .await?;
        let mut out: HashMap<i64, Vec<Line>> = HashMap::new();
        for line in rows.iter().filter_map(Line::from_record) {
            out.entry(line.order_id).or_default().push(line);
        }
        Ok(out)
    }

    /// The order's portal link with its access token (`get_portal_url` makes the token when
    /// the order has none), absolute with the database's base URL.
    pub async fn portal_link(&self, order_id: i64) -> Result<Option<String>, OdooError> {
        let path: Value = self
            .odoo
            .call(
                Order::MODEL,
                "get_portal_url",
                json!([[order_id]]),
                json!({}),
            )
            .await?;
        let Some(path) = path.as_str().filter(|p| !p.is_empty()) else {
            return Ok(None);
        };
        if path.starts_with("http://") || path.starts_with("https://") {
            return Ok(Some(path.to_owned()));
        }
        let cached = lock(&self.base_url).clone();
        let base = match cached {
            Some(b) => b,
            None => {
                let base: Value = self
                    .odoo
                    .call(Order::MODEL, "get_base_url", json!([[order_id]]), json!({}))
                    .await?;
                let base = base.as_str().unwrap_or("").trim_end_matches('/').to_owned();
                *lock(&self.base_url) = Some(base.clone());
                base
            }
        };
        Ok(Some(format!("{base}{path}")))
    }

    /// The details of `order` for a customer speaking `lang`.
    pub async fn details(&self, order: &Order, lang: &str) -> Result<String, DetailsError> {
        let texts = self.texts.texts(lang, order.company_id).await?;
        let format = self.lang_format(lang).await?;
        let money = match order.currency_id {
            Some(c) => self.money(&[c]).await?.remove(&c),
            None => None,
        }
        .unwrap_or(Money {
            symbol: String::new(),
            before: false,
            decimals: 2,
        });
        let lines = self
            .lines(&[order.id])
            .await?
            .remove(&order.id)
            .unwrap_or_default();
        let link = self.portal_link(order.id).await?;
        Ok(details_text(
            order,
            &lines,
            &Style {
                texts: &texts,
                money: &money,
                lang: &format,
            },
            link.as_deref(),
        ))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::texts::TextRow;

    fn order(state: &str) -> Order {
        Order {
            id: 7,
            name: "S00007".into(),
            partner_id: 3,
            partner_name: "Awa Kouassi".into(),
            state: state.into(),
            amount_untaxed: 1000.0,
            amount_tax: 180.0,
            amount_total: 1180.0,
            date_order: parse_datetime("2026-03-09 10:00:00"),
            ..Order::default()
        }
    }

    #[test]
    fn orders_are_read_from_odoo_records() {
        let o = Order::from_record(&json!({"id": 4, "name": "S4", "partner_id": [3, "Awa"],
            "company_id": [1, "C"], "state": "draft", "locked": false, "amount_total": 12.5,
            "currency_id": [1, "USD"], "user_id": false, "create_date": "2026-03-01 10:00:00",
            "x_whatsapp_creation_sent": false, "x_whatsapp_details_requested_at": false}))
        .unwrap();
        assert_eq!(
            (o.id, o.partner_id, o.company_id, o.user_id),
            (4, 3, Some(1), None)
        );
        assert_eq!(o.partner_name, "Awa");
        assert!(o.is_quotation());
        assert!(o.details_requested_at.is_none());
        assert!(Order::from_record(&json!({"id": 4, "partner_id": false})).is_none());
    }

    #[test]
    fn only_quotations_are_confirmed_or_cancelled() {
        assert_eq!(confirm_decision(&order("draft")), ConfirmDecision::Confirm);
        assert_eq!(confirm_decision(&order("sent")), ConfirmDecision::Confirm);
        assert_eq!(
            confirm_decision(&order("sale")),
            ConfirmDecision::AlreadyConfirmed
        );
        assert_eq!(
            confirm_decision(&order("cancel")),
            ConfirmDecision::Cancelled
        );
        assert_eq!(cancel_decision(&order("draft")), CancelDecision::Cancel);
        assert_eq!(
            cancel_decision(&order("cancel")),
            CancelDecision::AlreadyCancelled
        );
        assert_eq!(
            cancel_decision(&order("sale")),
            CancelDecision::Refuse(TextKey::OrderCannotCancelConfirmed)
        );
        let locked = Order {
            locked: true,
            ..order("sale")
        };
        assert_eq!(
            cancel_decision(&locked),
            CancelDecision::Refuse(TextKey::OrderCannotCancelLocked)
        );
        let invoiced = Order {
            invoice_status: "invoiced".into(),
            ..locked
        };
        assert_eq!(
            cancel_decision(&invoiced),
            CancelDecision::Refuse(TextKey::OrderCannotCancelInvoiced)
        );
    }

    #[test]
    fn a_number_belongs_to_a_wa_id_whatever_its_writing() {
        assert!(same_number("2250700000001", "+225 07 00 00 00 01"));
        assert!(
            same_number("2250700000001", "07 00 00 00 01"),
            "national, in the wa_id's country"
        );
        assert!(same_number("33612345678", "0033 6 12 34 56 78"));
        assert!(!same_number("2250700000001", "+225 07 00 00 00 02"));
        assert!(!same_number("", "+2250700000001"));
        assert!(!same_number("2250700000001", "not a number"));
    }

    fn style_texts() -> Texts {
        Texts::resolve(&[], None)
    }

    #[test]
    fn details_name_everything_in_the_customers_words() {
        let texts = Texts::resolve(
            &[
                TextRow {
                    key: "details_header".into(),
                    company_id: None,
                    body:
                        "*Commande {order}*\nClient : {customer}\nDate : {date}\nStatut : {state}"
                            .into(),
                },
                TextRow {
                    key: "state_draft".into(),
                    company_id: None,
                    body: "Devis".into(),
                },
            ],
            None,
        );
        let fr = LangFormat {
            decimal_point: ",".into(),
            thousands_sep: "\u{202f}".into(),
            grouping: vec![3, 0],
            date_format: "%d/%m/%Y".into(),
        };
        let eur = Money {
            symbol: "€".into(),
            before: false,
            decimals: 2,
        };
        let lines = vec![
            Line {
                order_id: 7,
                description: "Section A".into(),
                display_type: "line_section".into(),
                ..Line::default()
            },
            Line {
                order_id: 7,
                description: "Desk".into(),
                quantity: 2.0,
                price_unit: 500.0,
                subtotal: 1000.0,
                ..Line::default()
            },
            Line {
                order_id: 7,
                description: "Internal note".into(),
                display_type: "line_note".into(),
                ..Line::default()
            },
        ];
        let text = details_text(
            &order("draft"),
            &lines,
            &Style {
                texts: &texts,
                money: &eur,
                lang: &fr,
            },
            Some("https://odoo.example/my/orders/7?access_token=abc"),
        );
        assert!(
            text.starts_with(
                "*Commande S00007*\nClient : Awa Kouassi\nDate : 09/03/2026\nStatut : Devis"
            ),
            "{text}"
        );
        assert!(
            text.contains("_Section A_\n• Desk: 2 × 500,00\u{a0}€ = 1\u{202f}000,00\u{a0}€"),
            "{text}"
        );
        assert!(!text.contains("Internal note"));
        assert!(text.contains("*Total: 1\u{202f}180,00\u{a0}€*"), "{text}");
        assert!(text.ends_with(
            "View and download your order: https://odoo.example/my/orders/7?access_token=abc"
        ));
    }

    #[test]
    fn long_orders_end_with_the_count_of_lines_left_out_and_keep_totals_and_link() {
        let lines: Vec<Line> = (0..400)
            .map(|i| Line {
                order_id: 7,
                description: format!("Product number {i} with a rather long description"),
                quantity: 1.0,
                price_unit: 2.5,
                subtotal: 2.5,
                ..Line::default()
            })
            .collect();
        let texts = style_texts();
        let money = Money {
            symbol: "$".into(),
            before: true,
            decimals: 2,
        };
        let lang = LangFormat::default();
        let style = Style {
            texts: &texts,
            money: &money,
            lang: &lang,
        };
        let text = details_text(&order("sale"), &lines, &style, Some("https://x/l"));
        assert!(
            text.chars().count() <= MAX_DETAILS,
            "{}",
            text.chars().count()
        );
        let shown = text.matches("• Product number").count();
        assert!(shown > 10 && shown < 400, "{shown}");
        assert!(
            text.contains(&format!("… and {} more lines", 400 - shown)),
            "{}",
            &text[text.len() - 300..]
        );
        assert!(text.contains("*Total: $\u{a0}1,180.00*"));
        assert!(text.ends_with("https://x/l"));
        // A short order has no "more lines".
        let short = details_text(&order("sale"), &lines[..3], &style, None);
        assert!(!short.contains("more lines"));
        assert_eq!(short.matches("• Product").count(), 3);
    }
}
