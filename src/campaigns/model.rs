//! The records the campaign engine reads, decoded from Odoo's JSON (`false` for unset values,
//! `[id, name]` for many2one fields).

use super::plan::{Condition, Kpis, StepInfo};
use super::window::Window;
use crate::odoo::parse_datetime;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

pub type Row = Map<String, Value>;

pub fn many2one(r: &Row, f: &str) -> Option<i64> {
    match r.get(f)? {
        Value::Array(a) => a.first().and_then(Value::as_i64),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

pub fn many2one_name(r: &Row, f: &str) -> Option<String> {
    match r.get(f)? {
        Value::Array(a) => a.get(1).and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

pub fn text(r: &Row, f: &str) -> Option<String> {
    r.get(f)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

pub fn int(r: &Row, f: &str) -> i64 {
    r.get(f).and_then(Value::as_i64).unwrap_or(0)
}

pub fn float(r: &Row, f: &str) -> f64 {
    r.get(f).and_then(Value::as_f64).unwrap_or(0.0)
}

pub fn boolean(r: &Row, f: &str) -> bool {
    r.get(f).and_then(Value::as_bool).unwrap_or(false)
}

pub fn datetime(r: &Row, f: &str) -> Option<DateTime<Utc>> {
    r.get(f).and_then(Value::as_str).and_then(parse_datetime)
}

pub fn ids(r: &Row, f: &str) -> Vec<i64> {
    r.get(f)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default()
}

/// A `whatsapp.campaign`.
#[derive(Debug, Clone, PartialEq)]
pub struct Campaign {
    pub id: i64,
    pub name: String,
    pub state: String,
    pub company_id: Option<i64>,
    pub account_id: Option<i64>,
    pub user_id: Option<i64>,
    pub partner_domain: String,
    pub category_ids: Vec<i64>,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub window: Window,
    /// `timezone_rule = company`.
    pub company_rule: bool,
    pub throttle_per_minute: i64,
    pub daily_cap: i64,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub queue_requested: bool,
    pub queue_generated_at: Option<DateTime<Utc>>,
    pub paused_reason: Option<String>,
    pub auto_resume_at: Option<DateTime<Utc>>,
    pub kpis: Kpis,
}

impl Campaign {
    pub const MODEL: &'static str = "whatsapp.campaign";
    pub const FIELDS: &'static [&'static str] = &[
        "name",
        "state",
        "company_id",
        "account_id",
        "user_id",
        "partner_domain",
        "partner_category_ids",
        "scheduled_at",
        "send_window_start",
        "send_window_end",
        "send_on_weekends",
        "timezone_rule",
        "throttle_per_minute",
        "daily_cap",
        "started_at",
        "finished_at",
        "queue_requested",
        "queue_generated_at",
        "paused_reason",
        "auto_resume_at",
        "kpi_recipients",
        "kpi_sent",
        "kpi_delivered",
        "kpi_read",
        "kpi_replied",
        "kpi_failed",
        "kpi_opted_out",
    ];

    pub fn from_row(r: &Row) -> Option<Campaign> {
        Some(Campaign {
            id: r.get("id")?.as_i64()?,
            name: text(r, "name").unwrap_or_default(),
            state: text(r, "state").unwrap_or_default(),
            company_id: many2one(r, "company_id"),
            account_id: many2one(r, "account_id"),
            user_id: many2one(r, "user_id"),
            partner_domain: r
                .get("partner_domain")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            category_ids: ids(r, "partner_category_ids"),
            scheduled_at: datetime(r, "scheduled_at"),
            window: Window::from_hours(
                float(r, "send_window_start"),
                float(r, "send_window_end"),
                boolean(r, "send_on_weekends"),
            ),
            company_rule: text(r, "timezone_rule").as_deref() == Some("company"),
            throttle_per_minute: int(r, "throttle_per_minute"),
            daily_cap: int(r, "daily_cap").max(0),
            started_at: datetime(r, "started_at"),
            finished_at: datetime(r, "finished_at"),
            queue_requested: boolean(r, "queue_requested"),
            queue_generated_at: datetime(r, "queue_generated_at"),
            paused_reason: text(r, "paused_reason"),
            auto_resume_at: datetime(r, "auto_resume_at"),
            kpis: Kpis {
                recipients: int(r, "kpi_recipients").max(0) as u64,
                sent: int(r, "kpi_sent").max(0) as u64,
                delivered: int(r, "kpi_delivered").max(0) as u64,
                read: int(r, "kpi_read").max(0) as u64,
                replied: int(r, "kpi_replied").max(0) as u64,
                failed: int(r, "kpi_failed").max(0) as u64,
                opted_out: int(r, "kpi_opted_out").max(0) as u64,
            },
        })
    }
}

/// A `whatsapp.campaign.step` with what its messages carry.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub info: StepInfo,
    pub campaign_id: i64,
    pub message_type: String,
    pub template_id: Option<i64>,
    pub body: Option<String>,
    pub media_url: Option<String>,
    pub media_attachment_id: Option<i64>,
    /// The condition as written, when the daemon does not know it.
    pub unknown_condition: Option<String>,
}

impl Step {
    pub const MODEL: &'static str = "whatsapp.campaign.step";
    pub const FIELDS: &'static [&'static str] = &[
        "campaign_id",
        "sequence",
        "name",
        "delay_hours",
        "condition",
        "message_type",
        "template_id",
        "body",
        "media_url",
        "media_attachment_id",
    ];

    pub fn from_row(r: &Row) -> Option<Step> {
        let condition_text = text(r, "condition").unwrap_or_else(|| "always".to_owned());
        let condition = Condition::parse(&condition_text);
        Some(Step {
            info: StepInfo {
                id: r.get("id")?.as_i64()?,
                name: text(r, "name").unwrap_or_default(),
                delay_hours: float(r, "delay_hours"),
                condition: condition.unwrap_or(Condition::Always),
            },
            campaign_id: many2one(r, "campaign_id")?,
            message_type: text(r, "message_type").unwrap_or_else(|| "template".to_owned()),
            template_id: many2one(r, "template_id"),
            body: r.get("body").and_then(Value::as_str).map(str::to_owned),
            media_url: text(r, "media_url"),
            media_attachment_id: many2one(r, "media_attachment_id"),
            unknown_condition: condition.is_none().then_some(condition_text),
        })
    }
}

/// A `whatsapp.campaign.recipient` due for a step.
#[derive(Debug, Clone, PartialEq)]
pub struct Recipient {
    pub id: i64,
    pub partner_id: i64,
    pub to_e164: Option<String>,
    pub current_step_id: Option<i64>,
    pub state: String,
    pub replied: bool,
}

impl Recipient {
    pub const MODEL: &'static str = "whatsapp.campaign.recipient";
    pub const FIELDS: &'static [&'static str] = &[
        "partner_id",
        "to_e164",
        "current_step_id",
        "state",
        "replied_at",
    ];

    pub fn from_row(r: &Row) -> Option<Recipient> {
        Some(Recipient {
            id: r.get("id")?.as_i64()?,
            partner_id: many2one(r, "partner_id")?,
            to_e164: text(r, "to_e164"),
            current_step_id: many2one(r, "current_step_id"),
            state: text(r, "state").unwrap_or_default(),
            replied: datetime(r, "replied_at").is_some(),
        })
    }
}

/// The `dedupe_key` of one step's message to one recipient: a step is never sent twice to a
/// recipient, whatever restarts or second daemons do.
pub fn dedupe_key(campaign: i64, step: i64, recipient: i64) -> String {
    format!("campaign:{campaign}:step:{step}:recipient:{recipient}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_decode_with_odoo_false_values() {
        let r = json!({"id": 7, "name": "Spring", "state": "running", "company_id": [1, "YourCompany"],
            "account_id": false, "user_id": [2, "Admin"], "partner_domain": "[]",
            "partner_category_ids": [3, 4], "scheduled_at": false, "send_window_start": 9.5,
            "send_window_end": 19.0, "send_on_weekends": false, "timezone_rule": "company",
            "throttle_per_minute": 60, "daily_cap": 0, "started_at": "2025-01-15 09:00:00",
            "finished_at": false, "queue_requested": true, "queue_generated_at": false,
            "paused_reason": false, "auto_resume_at": false, "kpi_sent": 3});
        let c = Campaign::from_row(r.as_object().unwrap()).unwrap();
        assert_eq!(c.account_id, None);
        assert_eq!(c.company_id, Some(1));
        assert_eq!(c.category_ids, vec![3, 4]);
        assert_eq!(c.window.start_minute, 570);
        assert!(c.company_rule);
        assert_eq!(c.kpis.sent, 3);
        assert_eq!(
            c.started_at.unwrap().to_rfc3339(),
            "2025-01-15T09:00:00+00:00"
        );

        let s = json!({"id": 5, "campaign_id": [7, "Spring"], "name": "Reminder", "delay_hours": 0.5,
            "condition": "not_read", "message_type": "template", "template_id": [9, "promo"],
            "body": false, "media_url": false, "media_attachment_id": false});
        let s = Step::from_row(s.as_object().unwrap()).unwrap();
        assert_eq!(s.info.condition, Condition::NotRead);
        assert_eq!(s.template_id, Some(9));
        assert_eq!(s.body, None);
        assert_eq!(s.unknown_condition, None);
        assert_eq!(dedupe_key(7, 5, 100), "campaign:7:step:5:recipient:100");
    }
}
