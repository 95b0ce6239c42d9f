//! The addon's bus notifications (`models/whatsapp_bus.py`), as the stand-in's ORM makes
//! them: after a create or write that the addon notifies, the record's id is kept in the
//! transaction, and a successful call writes one notification per model on the channel
//! `whatsapp_sidecar` (`{"model", "ids", "count"}`, the ids sorted, at most 100). A failed call
//! notifies nothing, as a rolled back transaction in Odoo. The websocket (in `super::super`)
//! pushes the rows to its subscribers.

use super::{Db, Txn};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use tokio::sync::watch;

/// The addon's channel and notification type.
pub const CHANNEL: &str = "whatsapp_sidecar";
pub const NOTIFICATION_TYPE: &str = "whatsapp_sidecar/changed";
/// Ids a payload lists at most.
const MAX_IDS: usize = 100;

/// The account fields whose change the addon notifies (the daemon's sending depends on them).
const ACCOUNT_FIELDS: &[&str] = &[
    "active",
    "company_id",
    "is_default",
    "phone_number_id",
    "waba_id",
    "access_token",
    "graph_api_version",
    "throughput_mps",
    "auto_send_order_creation",
    "auto_send_invoice_posted",
    "auto_send_residual_change",
    "auto_send_unpaid_invoices",
    "unpaid_reminder_schedule",
    "unpaid_reminder_tz",
];

/// The `bus.bus` rows of the addon's channel, and a tick telling websockets there are more.
pub struct BusLog {
    /// (id, when, message) in id order.
    pub rows: Vec<(i64, std::time::Instant, Value)>,
    next_id: i64,
    pub tick: watch::Sender<i64>,
}

impl Default for BusLog {
    fn default() -> Self {
        BusLog {
            rows: Vec::new(),
            // Other channels' rows came before (the recorded Odoo had a few): ids start higher.
            next_id: 101,
            tick: watch::channel(0).0,
        }
    }
}

impl BusLog {
    /// The id of the last row (0: none).
    pub fn last_id(&self) -> i64 {
        self.rows.last().map_or(0, |r| r.0)
    }

    /// What Odoo's `bus.bus._poll(channels, last)` gives: the rows after `last`, or those of
    /// the last 50 seconds when `last` is 0 (or beyond the newest, as after a restored
    /// database), as `{"id", "message"}`; and the newest id.
    pub fn poll(&self, last: i64) -> (Vec<Value>, i64) {
        let newest = self.last_id();
        let last = if last > newest { 0 } else { last };
        // The rows are in id order, and so in time order: the first one wanted is found by
        // bisection (a subscriber polls after every commit; a scan would cost the whole log).
        let first = if last == 0 {
            self.rows
                .partition_point(|(_, at, _)| at.elapsed() >= FIRST_POLL_WINDOW)
        } else {
            self.rows.partition_point(|(id, _, _)| *id <= last)
        };
        let rows = self.rows[first..]
            .iter()
            .map(|(id, _, m)| json!({"id": id, "message": m}))
            .collect();
        (rows, newest)
    }
}

/// What `last = 0` gives (`bus.bus` TIMEOUT).
const FIRST_POLL_WINDOW: std::time::Duration = std::time::Duration::from_secs(50);
/// Rows older than this are deleted, as Odoo's `bus.bus._gc_messages` does (`TIMEOUT * 2`; Odoo
/// runs it with the daily autovacuum, the stand-in at every commit, so that a long run keeps
/// its size).
const GC_AFTER: std::time::Duration = std::time::Duration::from_secs(100);

impl Db {
    /// After `model` record `id` was created (`vals`: its values) or written (`vals`: the
    /// values written): keeps it for the transaction's notification when the addon would.
    pub(super) fn bus_note(
        &self,
        model: &str,
        id: i64,
        vals: &Map<String, Value>,
        created: bool,
        txn: &mut Txn,
    ) {
        if self.bus_wants(model, id, vals, created) {
            txn.bus.entry(model.to_owned()).or_default().insert(id);
        }
    }

    /// Writes the transaction's notifications (one per model) and wakes the websockets.
    pub(super) fn bus_commit(&mut self, pending: BTreeMap<String, BTreeSet<i64>>) {
        if pending.is_empty() {
            return;
        }
        for (model, ids) in pending {
            let id = self.bus.next_id;
            self.bus.next_id += 1;
            let listed: Vec<i64> = ids.iter().copied().take(MAX_IDS).collect();
            let message = json!({"type": NOTIFICATION_TYPE,
                                 "payload": {"model": model, "ids": listed, "count": ids.len()}});
            self.bus.rows.push((id, std::time::Instant::now(), message));
        }
        let old = self
            .bus
            .rows
            .partition_point(|(_, at, _)| at.elapsed() >= GC_AFTER);
        // Never the newest: `last_id` reads it.
        let old = old.min(self.bus.rows.len().saturating_sub(1));
        self.bus.rows.drain(..old);
        let last = self.bus.last_id();
        self.bus.tick.send_replace(last);
    }

    fn bus_wants(&self, model: &str, id: i64, vals: &Map<String, Value>, created: bool) -> bool {
        let row = self.row(model, id);
        let text = |field: &str| {
            row.and_then(|r| r.get(field))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let given = |field: &str| vals.get(field).filter(|v| truthy(v)).is_some();
        let given_text = |field: &str| vals.get(field).and_then(Value::as_str).map(str::to_owned);
        let company = || {
            row.and_then(|r| r.get("company_id"))
                .and_then(Value::as_i64)
                .unwrap_or(1)
        };
        match model {
            "whatsapp.message" if created => {
                text("state") == "queued" && text("direction") == "out"
            }
            "whatsapp.message" => given_text("state").as_deref() == Some("queued"),
            "whatsapp.account" if created => row
                .and_then(|r| r.get("active"))
                .is_none_or(|v| v.as_bool() != Some(false)),
            "whatsapp.account" => {
                given("check_requested")
                    || given("sync_requested")
                    || ACCOUNT_FIELDS.iter().any(|f| vals.contains_key(*f))
                    || vals.get("paused") == Some(&Value::Bool(false))
            }
            "whatsapp.campaign" => {
                given("queue_requested")
                    || matches!(
                        given_text("state").as_deref(),
                        Some("scheduled" | "running" | "paused" | "cancelled")
                    )
            }
            "sale.order" if created => {
                matches!(text("state").as_str(), "draft" | "sent")
                    && self.switch_on(company(), "auto_send_order_creation")
            }
            "sale.order" => {
                given("x_whatsapp_details_requested_at") && self.switch_on(company(), "is_default")
            }
            "account.move" if !created => {
                let move_type = text("move_type");
                let invoice = move_type == "out_invoice";
                let posted = text("state") == "posted";
                (invoice
                    && given_text("state").as_deref() == Some("posted")
                    && self.switch_on(company(), "auto_send_invoice_posted"))
                    || (invoice
                        && posted
                        && (vals.contains_key("amount_residual")
                            || vals.contains_key("payment_state"))
                        && self.switch_on(company(), "auto_send_residual_change"))
                    || (matches!(
                        move_type.as_str(),
                        "out_invoice" | "out_refund" | "out_receipt"
                    ) && given("x_whatsapp_details_requested_at")
                        && self.switch_on(company(), "is_default"))
            }
            _ => false,
        }
    }

    /// Whether company `company` has an active WhatsApp account with `switch` on.
    fn switch_on(&self, company: i64, switch: &str) -> bool {
        self.tables.get("whatsapp.account").is_some_and(|t| {
            t.rows.values().any(|r| {
                r.get("company_id").and_then(Value::as_i64) == Some(company)
                    && r.get("active").is_none_or(|v| v.as_bool() != Some(false))
                    && r.get(switch).and_then(Value::as_bool) == Some(true)
            })
        })
    }
}

fn truthy(v: &Value) -> bool {
    !matches!(v, Value::Null | Value::Bool(false))
        && v.as_str() != Some("")
        && v.as_i64() != Some(0)
}
