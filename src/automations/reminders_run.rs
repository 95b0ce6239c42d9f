//! The unpaid reminders' Odoo side: [`OdooReminders`] is the [`ReminderIo`] the daemon runs
//! [`schedule_loop`] with; the only part of the reminders that talks to Odoo.

use super::cursor::StoredCursor;
use super::invoices::{reminder_message, InvoiceAccount};
use super::invoices_run::portal_links;
use super::reminders::{
    cursor_name, due_before, reminder_due, schedule_loop, Due, Reminded, ReminderAccount,
    ReminderError, ReminderIo, Schedule, SystemClock,
};
use crate::enqueue::{enqueue, MESSAGE_MODEL};
use crate::invoices::{reminder_text, Invoice, InvoiceReader};
use crate::odoo::{parse_datetime, Domain, OdooClient, SearchOptions};
use crate::orders::{Customer, Style};
use crate::texts::Money;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The reminders' Odoo side.
pub struct OdooReminders {
    pub odoo: OdooClient,
    pub reader: Arc<InvoiceReader>,
}

/// Runs the reminders on their schedules until `shutdown`.
pub async fn run_reminders(reminders: OdooReminders, shutdown: CancellationToken) {
    tracing::info!("unpaid invoice reminders started");
    schedule_loop(&reminders, &SystemClock, shutdown).await;
}

fn m2o(row: &Value, field: &str) -> Option<i64> {
    match row.get(field) {
        Some(Value::Array(items)) => items.first().and_then(Value::as_i64),
        Some(Value::Number(n)) => n.as_i64(),
        _ => None,
    }
}

impl OdooReminders {
    /// What each invoice's earlier reminders were: their count and the date of the last one
    /// not cancelled, in the schedule's time zone.
    async fn reminded(
        &self,
        ids: &[i64],
        schedule: &Schedule,
    ) -> Result<HashMap<i64, Reminded>, ReminderError> {
        let rows: Vec<Value> = self
            .odoo
            .search_read(
                MESSAGE_MODEL,
                &Domain::leaf("trigger", "=", "unpaid_reminder")
                    .and("res_model", "=", Invoice::MODEL)
                    .and("res_id", "in", json!(ids)),
                &["res_id", "create_date", "state"],
                &SearchOptions::new(),
            )
            .await?;
        let mut out: HashMap<i64, Reminded> = HashMap::new();
        for row in &rows {
            let Some(id) = row.get("res_id").and_then(Value::as_i64) else {
                continue;
            };
            let entry = out.entry(id).or_default();
            entry.count += 1;
            if row.get("state").and_then(Value::as_str) == Some("cancelled") {
                continue;
            }
            let date = row
                .get("create_date")
                .and_then(Value::as_str)
                .and_then(parse_datetime)
                .map(|t| schedule.date_of(t));
            entry.last = entry.last.max(date);
        }
        Ok(out)
    }
}

impl ReminderIo for OdooReminders {
    async fn accounts(&self) -> Result<Vec<ReminderAccount>, ReminderError> {
        let rows: Vec<Value> = self
            .odoo
            .search_read(
                InvoiceAccount::MODEL,
                &Domain::leaf("active", "=", true).and("auto_send_unpaid_invoices", "=", true),
                InvoiceAccount::FIELDS,
                &SearchOptions::new().order("id"),
            )
            .await?;
        let accounts: Vec<InvoiceAccount> = rows
            .iter()
            .filter_map(InvoiceAccount::from_record)
            .collect();
        // The time zone of each company's address contact (res.company has none in Odoo 17).
        let mut company_ids: Vec<i64> = accounts.iter().filter_map(|a| a.company_id).collect();
        company_ids.sort_unstable();
        company_ids.dedup();
        let mut tz_by_company: HashMap<i64, String> = HashMap::new();
        if !company_ids.is_empty() {
            let companies: Vec<Value> = self
                .odoo
                .read("res.company", &company_ids, &["partner_id"])
                .await?;
            let partner_of: HashMap<i64, i64> = companies
                .iter()
                .filter_map(|c| Some((c.get("id")?.as_i64()?, m2o(c, "partner_id")?)))
                .collect();
            let mut partner_ids: Vec<i64> = partner_of.values().copied().collect();
            partner_ids.sort_unstable();
            partner_ids.dedup();
            let partners: Vec<Value> = if partner_ids.is_empty() {
                Vec::new()
            } else {
                self.odoo.read("res.partner", &partner_ids, &["tz"]).await?
            };
            let tz_of: HashMap<i64, String> = partners
                .iter()
                .filter_map(|p| {
                    Some((
                        p.get("id")?.as_i64()?,
                        p.get("tz")?.as_str().filter(|t| !t.is_empty())?.to_owned(),
                    ))
                })
                .collect();
            for (company, partner) in partner_of {
                if let Some(tz) = tz_of.get(&partner) {
                    tz_by_company.insert(company, tz.clone());
                }
            }
        }
        Ok(accounts
            .into_iter()
            .map(|account| ReminderAccount {
                company_tz: account
                    .company_id
                    .and_then(|c| tz_by_company.get(&c).cloned()),
                account,
            })
            .collect())
    }

    async fn last_run(&self, account_id: i64) -> Result<Option<DateTime<Utc>>, ReminderError> {
        let mut cursor = StoredCursor::default();
        cursor.load(&self.odoo, &cursor_name(account_id)).await?;
        Ok(cursor.at)
    }

    async fn save_run(&self, account_id: i64, at: DateTime<Utc>) -> Result<(), ReminderError> {
        let name = cursor_name(account_id);
        let mut cursor = StoredCursor::default();
        cursor.load(&self.odoo, &name).await?;
        cursor.save(&self.odoo, &name, at).await?;
        Ok(())
    }

    async fn run(
        &self,
        account: &InvoiceAccount,
        schedule: &Schedule,
        now: DateTime<Utc>,
    ) -> Result<usize, ReminderError> {
        let Some(company) = account.company_id else {
            return Ok(0);
        };
        let today = schedule.today(now);
        let before = due_before(today, account.unpaid_days);
        let rows: Vec<Value> = self
            .odoo
            .search_read(
                Invoice::MODEL,
                &Domain::leaf("company_id", "=", company)
                    .and("move_type", "=", "out_invoice")
                    .and("state", "=", "posted")
                    .and("payment_state", "in", json!(["not_paid", "partial"]))
                    .and(
                        "invoice_date_due",
                        "<",
                        before.format("%Y-%m-%d").to_string(),
                    ),
                Invoice::FIELDS,
                &SearchOptions::new().order("id"),
            )
            .await?;
        let invoices: Vec<Invoice> = rows.iter().filter_map(Invoice::from_record).collect();
        if invoices.is_empty() {
            return Ok(0);
        }
        let ids: Vec<i64> = invoices.iter().map(|i| i.id).collect();
        let reminded = self.reminded(&ids, schedule).await?;
        let due: Vec<(&Invoice, Due)> = invoices
            .iter()
            .filter_map(|i| {
                reminder_due(
                    i,
                    account,
                    today,
                    reminded.get(&i.id).copied().unwrap_or_default(),
                )
                .map(|d| (i, d))
            })
            .collect();
        if due.is_empty() {
            return Ok(0);
        }
        let mut partner_ids: Vec<i64> = due.iter().map(|(i, _)| i.partner_id).collect();
        partner_ids.sort_unstable();
        partner_ids.dedup();
        let customers: HashMap<i64, Customer> = self
            .odoo
            .read::<Value>(Customer::MODEL, &partner_ids, Customer::FIELDS)
            .await?
            .iter()
            .filter_map(Customer::from_record)
            .map(|c| (c.id, c))
            .collect();
        let due: Vec<(&Invoice, Due, &Customer)> = due
            .into_iter()
            .filter_map(|(i, d)| {
                let c = customers.get(&i.partner_id).filter(|c| c.reachable())?;
                Some((i, d, c))
            })
            .collect();
        let details = self.reader.details();
        let currency_ids: Vec<i64> = due.iter().filter_map(|(i, _, _)| i.currency_id).collect();
        let money = details.money(&currency_ids).await?;
        let link_ids: Vec<i64> = due.iter().map(|(i, _, _)| i.id).collect();
        let links = portal_links(&self.reader, &link_ids).await?;
        let plain = Money {
            symbol: String::new(),
            before: false,
            decimals: 2,
        };
        let mut messages: Vec<Map<String, Value>> = Vec::new();
        let mut counts: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
        for (invoice, d, customer) in &due {
            let texts = details
                .texts()
                .texts(&customer.lang, invoice.company_id)
                .await?;
            let format = details.lang_format(&customer.lang).await?;
            let style = Style {
                texts: &texts,
                money: invoice
                    .currency_id
                    .and_then(|c| money.get(&c))
                    .unwrap_or(&plain),
                lang: &format,
            };
            let body = reminder_text(
                invoice,
                &customer.name,
                d.overdue_days,
                &style,
                links.get(&invoice.id).map(String::as_str),
            );
            messages.push(reminder_message(invoice, customer, account, d.n, body));
            counts.entry(d.n).or_default().push(invoice.id);
        }
        let queued = enqueue(&self.odoo, messages).await?;
        for (n, ids) in &counts {
            self.odoo
                .write(
                    Invoice::MODEL,
                    ids,
                    &json!({"x_whatsapp_unpaid_reminder_count": n}),
                )
                .await?;
        }
        Ok(queued.created.len())
    }
}
