//! The words customers receive, and how amounts and dates are written for them.
//!
//! Every text a customer gets from the daemon's own flows (the new-order message and its button
//! titles, the replies to Validate and Cancel, the order details and their labels) is a
//! `whatsapp.text` record in Odoo (WhatsApp > Configuration > Customer texts): a key, a `body`
//! translated like any Odoo field, `{placeholders}` the daemon fills, and an optional company
//! (a company's text replaces the shared one of the same key). [`TextCache`] reads them with the
//! customer's language in the context (`res.partner.lang`), one `search_read` per language,
//! kept [`TextCache::ttl`]; [`Texts`] is one language's set for one company.
//!
//! A text missing in Odoo (archived or deleted by a manager) falls back to the shipped English
//! words ([`TextKey::fallback`], the same as the addon's `data/whatsapp_text_data.xml`, which a
//! test checks) and the daemon logs which one to restore: a customer never gets an empty reply.
//!
//! Amounts follow the order's currency (`res.currency`: symbol, position, decimals) and the
//! customer's language conventions (`res.lang`: decimal point, thousands separator, grouping,
//! date format), as Odoo's own `formatLang` writes them ([`Money`], [`LangFormat`]).

use crate::odoo::{Context, Domain, OdooClient, OdooError, SearchOptions};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// The texts the daemon sends. `key()` is the record's `key` in Odoo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextKey {
    OrderCreated,
    ButtonValidate,
    ButtonCancel,
    ButtonDetails,
    OrderConfirmed,
    OrderAlreadyConfirmed,
    OrderCannotConfirmCancelled,
    OrderConfirmFailed,
    OrderCancelled,
    OrderAlreadyCancelled,
    OrderCannotCancelConfirmed,
    OrderCannotCancelLocked,
    OrderCannotCancelInvoiced,
    OrderCancelFailed,
    DetailsHeader,
    DetailsLine,
    DetailsSection,
    DetailsMoreLines,
    DetailsTotals,
    DetailsLink,
    StateDraft,
    StateSent,
    StateSale,
    StateCancel,
    // Menus and invoice buttons (data/whatsapp_text_scenario_data.xml).
    ActionFailed,
    OrdersListBody,
    OrdersListButton,
    OrdersListRow,
    OrdersNone,
    InvoicesListBody,
    InvoicesListButton,
    InvoicesListRow,
    InvoicesNone,
    InvoiceSent,
    PaymentLink,
    InvoicePaid,
    InvoicePosted,
    InvoiceLink,
    InvoicePaymentLink,
    InvoiceDetailsHeader,
    InvoiceDetailsTotals,
    ResidualPartial,
    ResidualPaid,
    UnpaidReminder,
}

impl TextKey {
    /// Every key, in the order of the addon's data file.
    pub const ALL: [TextKey; 44] = [
        TextKey::OrderCreated,
        TextKey::ButtonValidate,
        TextKey::ButtonCancel,
        TextKey::ButtonDetails,
        TextKey::OrderConfirmed,
        TextKey::OrderAlreadyConfirmed,
        TextKey::OrderCannotConfirmCancelled,
        TextKey::OrderConfirmFailed,
        TextKey::OrderCancelled,
        TextKey::OrderAlreadyCancelled,
        TextKey::OrderCannotCancelConfirmed,
        TextKey::OrderCannotCancelLocked,
        TextKey::OrderCannotCancelInvoiced,
        TextKey::OrderCancelFailed,
        TextKey::DetailsHeader,
        TextKey::DetailsLine,
        TextKey::DetailsSection,
        TextKey::DetailsMoreLines,
        TextKey::DetailsTotals,
        TextKey::DetailsLink,
        TextKey::StateDraft,
        TextKey::StateSent,
        TextKey::StateSale,
        TextKey::StateCancel,
        TextKey::ActionFailed,
        TextKey::OrdersListBody,
        TextKey::OrdersListButton,
        TextKey::OrdersListRow,
        TextKey::OrdersNone,
        TextKey::InvoicesListBody,
        TextKey::InvoicesListButton,
        TextKey::InvoicesListRow,
        TextKey::InvoicesNone,
        TextKey::InvoiceSent,
        TextKey::PaymentLink,
        TextKey::InvoicePaid,
        TextKey::InvoicePosted,
        TextKey::InvoiceLink,
        TextKey::InvoicePaymentLink,
        TextKey::InvoiceDetailsHeader,
        TextKey::InvoiceDetailsTotals,
        TextKey::ResidualPartial,
        TextKey::ResidualPaid,
        TextKey::UnpaidReminder,
    ];

    /// The record's `key` in Odoo.
    pub fn key(self) -> &'static str {
        match self {
            TextKey::OrderCreated => "order_created",
            TextKey::ButtonValidate => "button_validate",
            TextKey::ButtonCancel => "button_cancel",
            TextKey::ButtonDetails => "button_details",
            TextKey::OrderConfirmed => "order_confirmed",
            TextKey::OrderAlreadyConfirmed => "order_already_confirmed",
            TextKey::OrderCannotConfirmCancelled => "order_cannot_confirm_cancelled",
            TextKey::OrderConfirmFailed => "order_confirm_failed",
            TextKey::OrderCancelled => "order_cancelled",
            TextKey::OrderAlreadyCancelled => "order_already_cancelled",
            TextKey::OrderCannotCancelConfirmed => "order_cannot_cancel_confirmed",
            TextKey::OrderCannotCancelLocked => "order_cannot_cancel_locked",
            TextKey::OrderCannotCancelInvoiced => "order_cannot_cancel_invoiced",
            TextKey::OrderCancelFailed => "order_cancel_failed",
            TextKey::DetailsHeader => "details_header",
            TextKey::DetailsLine => "details_line",
            TextKey::DetailsSection => "details_section",
            TextKey::DetailsMoreLines => "details_more_lines",
            TextKey::DetailsTotals => "details_totals",
            TextKey::DetailsLink => "details_link",
            TextKey::StateDraft => "state_draft",
            TextKey::StateSent => "state_sent",
            TextKey::StateSale => "state_sale",
            TextKey::StateCancel => "state_cancel",
            TextKey::ActionFailed => "action_failed",
            TextKey::OrdersListBody => "orders_list_body",
            TextKey::OrdersListButton => "orders_list_button",
            TextKey::OrdersListRow => "orders_list_row",
            TextKey::OrdersNone => "orders_none",
            TextKey::InvoicesListBody => "invoices_list_body",
            TextKey::InvoicesListButton => "invoices_list_button",
            TextKey::InvoicesListRow => "invoices_list_row",
            TextKey::InvoicesNone => "invoices_none",
            TextKey::InvoiceSent => "invoice_sent",
            TextKey::PaymentLink => "payment_link",
            TextKey::InvoicePaid => "invoice_paid",
            TextKey::InvoicePosted => "invoice_posted",
            TextKey::InvoiceLink => "invoice_link",
            TextKey::InvoicePaymentLink => "invoice_payment_link",
            TextKey::InvoiceDetailsHeader => "invoice_details_header",
            TextKey::InvoiceDetailsTotals => "invoice_details_totals",
            TextKey::ResidualPartial => "residual_partial",
            TextKey::ResidualPaid => "residual_paid",
            TextKey::UnpaidReminder => "unpaid_reminder",
        }
    }

    /// The shipped English text: used only when Odoo has none for this key.
    pub fn fallback(self) -> &'static str {
        match self {
            TextKey::OrderCreated => "Hello {customer}, your order {order} of {amount} is ready. Tap Validate to confirm it, Cancel to cancel it, or Details to see what it contains.",
            TextKey::ButtonValidate => "Validate",
            TextKey::ButtonCancel => "Cancel",
            TextKey::ButtonDetails => "Details",
            TextKey::OrderConfirmed => "Thank you {customer}! Your order {order} is confirmed.",
            TextKey::OrderAlreadyConfirmed => "Your order {order} is already confirmed. Thank you!",
            TextKey::OrderCannotConfirmCancelled => "Your order {order} was cancelled and can no longer be confirmed. Please contact us to order again.",
            TextKey::OrderConfirmFailed => "We could not confirm your order {order} automatically. A salesperson will contact you shortly.",
            TextKey::OrderCancelled => "Your order {order} has been cancelled.",
            TextKey::OrderAlreadyCancelled => "Your order {order} is already cancelled.",
            TextKey::OrderCannotCancelConfirmed => "Your order {order} is already confirmed and can no longer be cancelled here. Please contact us to change it.",
            TextKey::OrderCannotCancelLocked => "Your order {order} is locked and can no longer be cancelled. Please contact us to change it.",
            TextKey::OrderCannotCancelInvoiced => "Your order {order} has already been invoiced and can no longer be cancelled. Please contact us.",
            TextKey::OrderCancelFailed => "We could not cancel your order {order} automatically. A salesperson will contact you shortly.",
            TextKey::DetailsHeader => "*Order {order}*\nCustomer: {customer}\nDate: {date}\nStatus: {state}",
            TextKey::DetailsLine => "• {description}: {quantity} × {unit_price} = {subtotal}",
            TextKey::DetailsSection => "_{description}_",
            TextKey::DetailsMoreLines => "… and {count} more lines",
            TextKey::DetailsTotals => "Untaxed: {untaxed}\nTaxes: {taxes}\n*Total: {total}*",
            TextKey::DetailsLink => "View and download your order: {link}",
            TextKey::StateDraft => "Quotation",
            TextKey::StateSent => "Quotation sent",
            TextKey::StateSale => "Confirmed",
            TextKey::StateCancel => "Cancelled",
            TextKey::ActionFailed => "Sorry, something went wrong; we will get back to you.",
            TextKey::OrdersListBody => "Your last orders: choose one to see its details.",
            TextKey::OrdersListButton => "My orders",
            TextKey::OrdersListRow => "{date} · {amount} · {state}",
            TextKey::OrdersNone => "You have no orders with us yet.",
            TextKey::InvoicesListBody => "Your open invoices: choose one to receive it.",
            TextKey::InvoicesListButton => "My invoices",
            TextKey::InvoicesListRow => "{residual} to pay by {due}",
            TextKey::InvoicesNone => "You have no open invoices. Thank you!",
            TextKey::InvoiceSent => "Your invoice {invoice} of {amount}: {residual} to pay by {due}.",
            TextKey::PaymentLink => "Pay your invoice {invoice} ({residual}) online: {link}",
            TextKey::InvoicePaid => "Your invoice {invoice} is paid. Thank you!",
            TextKey::InvoicePosted => "Hello {customer}, here is your invoice {invoice} of {amount}, due on {due_date}.",
            TextKey::InvoiceLink => "View, download and pay it online: {link}",
            TextKey::InvoicePaymentLink => "Pay {amount} online: {link}",
            TextKey::InvoiceDetailsHeader => "*Invoice {invoice}*\nCustomer: {customer}\nDate: {date}\nDue date: {due_date}",
            TextKey::InvoiceDetailsTotals => "Untaxed: {untaxed}\nTaxes: {taxes}\n*Total: {total}*\nPaid: {paid}\n*Amount due: {residual}*",
            TextKey::ResidualPartial => "Hello {customer}, we received your payment of {paid} for invoice {invoice}. Thank you! Remaining to pay: {residual}.",
            TextKey::ResidualPaid => "Hello {customer}, invoice {invoice} of {amount} is now paid in full. Thank you!",
            TextKey::UnpaidReminder => "Hello {customer}, a friendly reminder: invoice {invoice} was due on {due_date} and {residual} remains to pay.",
        }
    }

    /// The key of an Odoo record, if the daemon uses it.
    pub fn from_key(key: &str) -> Option<TextKey> {
        TextKey::ALL.into_iter().find(|k| k.key() == key)
    }
}

/// Fills `{name}` placeholders with `values`; a placeholder without a value stays as written
/// (a manager's typo shows in the message instead of silently vanishing; the addon refuses
/// unknown placeholders when the text is saved).
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close)
                if close > 0
                    && after[..close]
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b == b'_') =>
            {
                let name = &after[..close];
                match values.iter().find(|(k, _)| *k == name) {
                    Some((_, v)) => out.push_str(v),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// One `whatsapp.text` record as read in one language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextRow {
    pub key: String,
    pub company_id: Option<i64>,
    pub body: String,
}

impl TextRow {
    pub const MODEL: &'static str = "whatsapp.text";
    pub const FIELDS: &'static [&'static str] = &["key", "company_id", "body"];

    /// A row of a `search_read`; `None` when it has no key or no body.
    pub fn from_record(value: &Value) -> Option<TextRow> {
        let key = value.get("key")?.as_str()?.trim().to_owned();
        let body = value.get("body")?.as_str()?.to_owned();
        if key.is_empty() || body.trim().is_empty() {
            return None;
        }
        let company_id = match value.get("company_id") {
            Some(Value::Array(items)) => items.first().and_then(Value::as_i64),
            Some(Value::Number(n)) => n.as_i64(),
            _ => None,
        };
        Some(TextRow {
            key,
            company_id,
            body,
        })
    }
}

/// One language's texts for one company.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Texts {
    bodies: HashMap<TextKey, String>,
}

impl Texts {
    /// The texts of `company` among `rows` (one language): the company's own, else the shared.
    pub fn resolve(rows: &[TextRow], company: Option<i64>) -> Texts {
        let mut bodies = HashMap::new();
        let mut own: HashMap<TextKey, bool> = HashMap::new();
        for row in rows {
            let Some(key) = TextKey::from_key(&row.key) else {
                continue;
            };
            let is_own = row.company_id.is_some() && row.company_id == company;
            if row.company_id.is_some() && !is_own {
                continue;
            }
            if own.get(&key).copied().unwrap_or(false) && !is_own {
                continue;
            }
            own.insert(key, is_own);
            bodies.insert(key, row.body.clone());
        }
        Texts { bodies }
    }

    /// The keys Odoo has no text for (they fall back to English).
    pub fn missing(&self) -> Vec<TextKey> {
        TextKey::ALL
            .into_iter()
            .filter(|k| !self.bodies.contains_key(k))
            .collect()
    }

    /// The text of `key` as written in Odoo (trimmed), or the shipped English.
    pub fn get(&self, key: TextKey) -> &str {
        self.bodies
            .get(&key)
            .map(|s| s.trim())
            .unwrap_or_else(|| key.fallback())
    }

    /// The text of `key` with its placeholders filled.
    pub fn render(&self, key: TextKey, values: &[(&str, &str)]) -> String {
        fill(self.get(key), values)
    }
}

/// Reads the customer texts by language and keeps them a while.
pub struct TextCache {
    odoo: OdooClient,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, Vec<TextRow>)>>,
}

impl TextCache {
    /// How long a language's texts are kept by default.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(30);

    pub fn new(odoo: OdooClient, ttl: Duration) -> TextCache {
        TextCache {
            odoo,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// How long a language's texts are kept.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The texts in `lang` (an Odoo code such as `fr_FR`; empty: `en_US`) for `company`: one
    /// `search_read` with that language in the context, unless read less than `ttl` ago.
    pub async fn texts(&self, lang: &str, company: Option<i64>) -> Result<Texts, OdooError> {
        let lang = if lang.trim().is_empty() {
            "en_US"
        } else {
            lang.trim()
        };
        let cached = {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache
                .get(lang)
                .filter(|(at, _)| at.elapsed() < self.ttl)
                .map(|(_, rows)| rows.clone())
        };
        let rows = match cached {
            Some(rows) => rows,
            None => {
                let odoo = self.odoo.with_context(Context::new().lang(lang));
                let records: Vec<Value> = odoo
                    .search_read(
                        TextRow::MODEL,
                        &Domain::all(),
                        TextRow::FIELDS,
                        &SearchOptions::new().order("company_id desc, id"),
                    )
                    .await?;
                let rows: Vec<TextRow> = records.iter().filter_map(TextRow::from_record).collect();
                self.cache
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(lang.to_owned(), (Instant::now(), rows.clone()));
                rows
            }
        };
        let texts = Texts::resolve(&rows, company);
        let missing = texts.missing();
        if !missing.is_empty() {
            let keys: Vec<&str> = missing.iter().map(|k| k.key()).collect();
            tracing::warn!(
                lang,
                missing = keys.join(", "),
                "customer texts missing in Odoo: the shipped English words are used; restore them in WhatsApp > Configuration > Customer texts (archived texts can be unarchived)"
            );
        }
        Ok(texts)
    }
}

/// How a language writes numbers and dates (`res.lang`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LangFormat {
    pub decimal_point: String,
    pub thousands_sep: String,
    /// Odoo's `grouping`: group sizes from the right, `[3,0]` (0 repeats the previous one,
    /// -1 stops grouping).
    pub grouping: Vec<i64>,
    /// A strftime format (`%m/%d/%Y`, `%d/%m/%Y`).
    pub date_format: String,
}

impl Default for LangFormat {
    /// `en_US`'s.
    fn default() -> Self {
        LangFormat {
            decimal_point: ".".into(),
            thousands_sep: ",".into(),
            grouping: vec![3, 0],
            date_format: "%m/%d/%Y".into(),
        }
    }
}

impl LangFormat {
    pub const MODEL: &'static str = "res.lang";
    pub const FIELDS: &'static [&'static str] = &[
        "code",
        "decimal_point",
        "thousands_sep",
        "grouping",
        "date_format",
    ];

    /// A `res.lang` row: `(code, format)`.
    pub fn from_record(value: &Value) -> Option<(String, LangFormat)> {
        let code = value.get("code")?.as_str()?.to_owned();
        let text = |f: &str| {
            value
                .get(f)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let default = LangFormat::default();
        let grouping = serde_json::from_str::<Vec<i64>>(&text("grouping"))
            .unwrap_or_else(|_| default.grouping.clone());
        let decimal_point = Some(text("decimal_point"))
            .filter(|s| !s.is_empty())
            .unwrap_or(default.decimal_point);
        let date_format = Some(text("date_format"))
            .filter(|s| !s.is_empty())
            .unwrap_or(default.date_format);
        Some((
            code,
            LangFormat {
                decimal_point,
                thousands_sep: text("thousands_sep"),
                grouping,
                date_format,
            },
        ))
    }

    /// `amount` with `decimals` digits, grouped, as this language writes it.
    pub fn number(&self, amount: f64, decimals: u32) -> String {
        let decimals = decimals.min(6) as usize;
        let text = format!("{:.*}", decimals, amount.abs());
        let (int_part, frac_part) = match text.split_once('.') {
            Some((i, f)) => (i.to_owned(), Some(f.to_owned())),
            None => (text, None),
        };
        let mut out = String::new();
        let negative = amount < 0.0 && text_is_nonzero(&int_part, frac_part.as_deref());
        if negative {
            out.push('-');
        }
        out.push_str(&self.group(&int_part));
        if let Some(f) = frac_part {
            out.push_str(&self.decimal_point);
            out.push_str(&f);
        }
        out
    }

    fn group(&self, digits: &str) -> String {
        if self.thousands_sep.is_empty() {
            return digits.to_owned();
        }
        // Group sizes from the right, as Odoo's `intersperse`.
        let mut groups: Vec<&str> = Vec::new();
        let mut rest = digits;
        let mut last = 0i64;
        let mut sizes = self.grouping.iter().copied();
        loop {
            let size = match sizes.next() {
                Some(0) | None => last,
                Some(-1) => break,
                Some(s) => s,
            };
            if size <= 0 || rest.len() <= size as usize {
                break;
            }
            let cut = rest.len() - size as usize;
            groups.push(&rest[cut..]);
            rest = &rest[..cut];
            last = size;
        }
        let mut out = rest.to_owned();
        for g in groups.iter().rev() {
            out.push_str(&self.thousands_sep);
            out.push_str(g);
        }
        out
    }

    /// A date as this language writes it (only numeric strftime codes are honoured; others
    /// are written as `%Y-%m-%d` would).
    pub fn date(&self, date: chrono::NaiveDate) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        if write!(out, "{}", date.format(&self.date_format)).is_err() {
            return date.format("%Y-%m-%d").to_string();
        }
        out
    }
}

fn text_is_nonzero(int_part: &str, frac: Option<&str>) -> bool {
    int_part.bytes().any(|b| b != b'0') || frac.is_some_and(|f| f.bytes().any(|b| b != b'0'))
}

/// A currency as Odoo writes amounts in it (`res.currency`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Money {
    pub symbol: String,
    /// The symbol goes before the amount (`$ 10.00`) rather than after (`10,00 €`).
    pub before: bool,
    pub decimals: u32,
}

impl Money {
    pub const MODEL: &'static str = "res.currency";
    pub const FIELDS: &'static [&'static str] = &["name", "symbol", "position", "decimal_places"];

    /// A `res.currency` row: `(id, money)`.
    pub fn from_record(value: &Value) -> Option<(i64, Money)> {
        let id = value.get("id")?.as_i64()?;
        let symbol = value
            .get("symbol")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .or_else(|| value.get("name").and_then(Value::as_str))
            .unwrap_or("")
            .to_owned();
        let before = value.get("position").and_then(Value::as_str) == Some("before");
        let decimals = value
            .get("decimal_places")
            .and_then(Value::as_i64)
            .and_then(|d| u32::try_from(d).ok())
            .unwrap_or(2);
        Some((
            id,
            Money {
                symbol,
                before,
                decimals,
            },
        ))
    }

    /// `amount` in this currency as `lang` writes it, Odoo's way: the symbol before or after,
    /// separated by a no-break space.
    pub fn format(&self, amount: f64, lang: &LangFormat) -> String {
        let number = lang.number(amount, self.decimals);
        if self.symbol.is_empty() {
            number
        } else if self.before {
            format!("{}\u{a0}{number}", self.symbol)
        } else {
            format!("{number}\u{a0}{}", self.symbol)
        }
    }
}

/// A quantity as `lang` writes it: no decimals when whole, else up to 3 without trailing zeros.
pub fn quantity(qty: f64, lang: &LangFormat) -> String {
    if (qty - qty.round()).abs() < 1e-9 {
        return lang.number(qty.round(), 0);
    }
    let text = lang.number(qty, 3);
    let trimmed = text.trim_end_matches('0');
    trimmed
        .strip_suffix(lang.decimal_point.as_str())
        .unwrap_or(trimmed)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fr() -> LangFormat {
        LangFormat {
            decimal_point: ",".into(),
            thousands_sep: "\u{202f}".into(),
            grouping: vec![3, 0],
            date_format: "%d/%m/%Y".into(),
        }
    }

    #[test]
    fn placeholders_are_filled_and_unknown_ones_kept() {
        assert_eq!(
            fill(
                "Order {order} of {amount}, {unknown} {",
                &[("order", "S00042"), ("amount", "$ 1.00")]
            ),
            "Order S00042 of $ 1.00, {unknown} {"
        );
        assert_eq!(fill("{a}{b}", &[("a", "{b}"), ("b", "x")]), "{b}x");
        assert_eq!(fill("{ Order }", &[]), "{ Order }");
        assert_eq!(fill("é{order}é", &[("order", "1")]), "é1é");
    }

    #[test]
    fn a_company_text_wins_over_the_shared_one_and_missing_ones_fall_back() {
        let rows = vec![
            TextRow {
                key: "order_confirmed".into(),
                company_id: None,
                body: "Shared {order}".into(),
            },
            TextRow {
                key: "order_confirmed".into(),
                company_id: Some(2),
                body: "Company 2 {order}".into(),
            },
            TextRow {
                key: "order_cancelled".into(),
                company_id: Some(3),
                body: "Company 3 only".into(),
            },
            TextRow {
                key: "not_ours".into(),
                company_id: None,
                body: "x".into(),
            },
        ];
        let two = Texts::resolve(&rows, Some(2));
        assert_eq!(
            two.render(TextKey::OrderConfirmed, &[("order", "S1")]),
            "Company 2 S1"
        );
        assert_eq!(
            two.get(TextKey::OrderCancelled),
            TextKey::OrderCancelled.fallback(),
            "another company's text is not used"
        );
        let one = Texts::resolve(&rows, Some(1));
        assert_eq!(one.get(TextKey::OrderConfirmed), "Shared {order}");
        assert!(one.missing().contains(&TextKey::ButtonValidate));
        assert!(!one.missing().contains(&TextKey::OrderConfirmed));
        // Whatever the order of the rows.
        let mut reversed = rows.clone();
        reversed.reverse();
        assert_eq!(Texts::resolve(&reversed, Some(2)), two);
    }

    #[test]
    fn rows_are_read_from_odoo_records() {
        let row = TextRow::from_record(
            &json!({"id": 1, "key": "order_confirmed", "company_id": [2, "B"], "body": "Hi"}),
        )
        .unwrap();
        assert_eq!(row.company_id, Some(2));
        assert!(
            TextRow::from_record(&json!({"key": "k", "company_id": false, "body": false}))
                .is_none()
        );
    }

    #[test]
    fn the_fallbacks_are_the_shipped_english_texts() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/odoo_addon/whatsapp_sidecar/data/"
        );
        let mut xml = String::new();
        for file in [
            "whatsapp_text_data.xml",
            "whatsapp_text_scenario_data.xml",
            "whatsapp_text_invoice_data.xml",
        ] {
            let path = format!("{dir}{file}");
            let Ok(text) = std::fs::read_to_string(&path) else {
                eprintln!("SKIPPED: {path} not found");
                return;
            };
            xml.push_str(&text);
        }
        let unescape = |s: &str| {
            s.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&")
        };
        let mut shipped = HashMap::new();
        for record in xml.split("<record ").skip(1) {
            let field = |name: &str| {
                let open = format!("<field name=\"{name}\">");
                let start = record.find(&open)? + open.len();
                let end = record[start..].find("</field>")? + start;
                Some(unescape(&record[start..end]))
            };
            if let (Some(key), Some(body)) = (field("key"), field("body")) {
                shipped.insert(key, body);
            }
        }
        for key in TextKey::ALL {
            assert_eq!(
                shipped.get(key.key()).map(String::as_str),
                Some(key.fallback()),
                "{} differs between src/texts.rs and the addon's data",
                key.key()
            );
        }
        assert_eq!(
            shipped.len(),
            TextKey::ALL.len(),
            "every shipped text has a key here"
        );
    }

    #[test]
    fn amounts_are_written_as_odoo_writes_them() {
        let usd = Money {
            symbol: "$".into(),
            before: true,
            decimals: 2,
        };
        let eur = Money {
            symbol: "€".into(),
            before: false,
            decimals: 2,
        };
        let xof = Money {
            symbol: "CFA".into(),
            before: false,
            decimals: 0,
        };
        let en = LangFormat::default();
        assert_eq!(usd.format(1234567.891, &en), "$\u{a0}1,234,567.89");
        assert_eq!(eur.format(1234.5, &fr()), "1\u{202f}234,50\u{a0}€");
        assert_eq!(xof.format(150000.0, &fr()), "150\u{202f}000\u{a0}CFA");
        assert_eq!(usd.format(-5.0, &en), "$\u{a0}-5.00");
        assert_eq!(usd.format(-0.001, &en), "$\u{a0}0.00");
        assert_eq!(usd.format(999.0, &en), "$\u{a0}999.00");
        // Indian grouping: [3,2,0].
        let india = LangFormat {
            grouping: vec![3, 2, 0],
            ..LangFormat::default()
        };
        assert_eq!(india.number(12345678.0, 0), "1,23,45,678");
        let none = LangFormat {
            grouping: vec![3, -1],
            ..LangFormat::default()
        };
        assert_eq!(none.number(12345678.0, 0), "12345,678");
        assert_eq!(quantity(2.0, &fr()), "2");
        assert_eq!(quantity(1.5, &fr()), "1,5");
        assert_eq!(quantity(0.125, &en), "0.125");
    }

    #[test]
    fn languages_and_currencies_are_read_from_odoo_records() {
        let (code, f) = LangFormat::from_record(&json!({"code": "fr_FR", "decimal_point": ",",
            "thousands_sep": "\u{202f}", "grouping": "[3,0]", "date_format": "%d/%m/%Y"}))
        .unwrap();
        assert_eq!(code, "fr_FR");
        assert_eq!(f, fr());
        assert_eq!(
            f.date(chrono::NaiveDate::from_ymd_opt(2026, 3, 9).unwrap()),
            "09/03/2026"
        );
        let (id, m) = Money::from_record(&json!({"id": 1, "name": "USD", "symbol": "$",
            "position": "before", "decimal_places": 2}))
        .unwrap();
        assert_eq!((id, m.before, m.decimals), (1, true, 2));
    }
}
