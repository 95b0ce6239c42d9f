//! The `x_whatsapp_*_sent` indicators a sent message sets on its source document (the order or
//! invoice it is about), as pure functions shared by the two flows that learn a message went
//! out: the outbox, from the send's result, and inbound processing, from a status webhook
//! proving a send whose result never reached Odoo (the daemon was killed, or lost the lease,
//! between the send and its write-back).

use crate::odoo::format_datetime;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The indicator fields a sent message of `trigger` sets: (model, boolean field, date field).
pub fn flag_fields(trigger: &str) -> Option<(&'static str, &'static str, &'static str)> {
    Some(match trigger {
        "order_creation" => (
            "sale.order",
            "x_whatsapp_creation_sent",
            "x_whatsapp_creation_sent_date",
        ),
        "order_validation" => (
            "sale.order",
            "x_whatsapp_validation_sent",
            "x_whatsapp_validation_sent_date",
        ),
        "order_details" => (
            "sale.order",
            "x_whatsapp_details_sent",
            "x_whatsapp_details_sent_date",
        ),
        "invoice_posted" | "invoice_details" => (
            "account.move",
            "x_whatsapp_invoice_sent",
            "x_whatsapp_invoice_sent_date",
        ),
        "residual_change" => (
            "account.move",
            "x_whatsapp_residual_sent",
            "x_whatsapp_residual_sent_date",
        ),
        "unpaid_reminder" => (
            "account.move",
            "x_whatsapp_unpaid_reminder_sent",
            "x_whatsapp_unpaid_reminder_sent_date",
        ),
        _ => return None,
    })
}

/// The writes that record sent messages on their sources, `(model, id, trigger)` each: one
/// `write` per (model, indicator), its ids and values (the indicator, and `now` as its date).
/// A source of another model than its trigger's, or a trigger without an indicator (`manual`),
/// sets nothing.
pub fn flag_writes<'a>(
    sources: impl IntoIterator<Item = (&'a str, i64, &'a str)>,
    now: DateTime<Utc>,
) -> Vec<(String, Vec<i64>, Map<String, Value>)> {
    let now = format_datetime(now);
    let mut groups: BTreeMap<(&'static str, &'static str, &'static str), Vec<i64>> =
        BTreeMap::new();
    for (model, id, trigger) in sources {
        if let Some(fields) = flag_fields(trigger).filter(|(m, ..)| *m == model) {
            let ids = groups.entry(fields).or_default();
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    groups
        .into_iter()
        .map(|((model, flag, date), ids)| {
            let mut v = Map::new();
            v.insert(flag.into(), Value::Bool(true));
            v.insert(date.into(), json!(now));
            (model.to_owned(), ids, v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn one_write_per_model_and_indicator_and_nothing_for_a_mismatch() {
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        let writes = flag_writes(
            [
                ("account.move", 42, "invoice_posted"),
                ("account.move", 43, "invoice_details"),
                ("sale.order", 8, "order_creation"),
                ("account.move", 42, "invoice_posted"),
                ("res.partner", 9, "invoice_posted"),
                ("sale.order", 9, "manual"),
            ],
            now,
        );
        assert_eq!(writes.len(), 2);
        assert_eq!(writes[0].0, "account.move");
        assert_eq!(writes[0].1, [42, 43]);
        assert_eq!(writes[0].2["x_whatsapp_invoice_sent"], true);
        assert_eq!(
            writes[0].2["x_whatsapp_invoice_sent_date"],
            "2026-03-01 12:00:00"
        );
        assert_eq!(
            (writes[1].0.as_str(), &writes[1].1[..]),
            ("sale.order", &[8][..])
        );
        assert!(writes[1].2.contains_key("x_whatsapp_creation_sent"));
    }
}
