//! The records the outbox reads, as plain structs decoded from Odoo's JSON.
//!
//! Field names are the addon's (`odoo_addon/whatsapp_sidecar/models/*.py`). Each struct has the
//! list of fields it reads (`FIELDS`) and a `from_record` that decodes one record of a
//! `search_read`/`read` answer without panicking: Odoo sends `false` for every empty field,
//! `[id, "name"]` for a many2one and `"YYYY-MM-DD HH:MM:SS"` (UTC) for a datetime. A record
//! missing its `id` is refused; any other odd value reads as empty.

use crate::lang::Lang;
use crate::secret::Secret;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

pub(crate) fn text(record: &Map<String, Value>, field: &str) -> Option<String> {
    match record.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

pub(crate) fn boolean(record: &Map<String, Value>, field: &str) -> bool {
    matches!(record.get(field), Some(Value::Bool(true)))
}

pub(crate) fn integer(record: &Map<String, Value>, field: &str) -> Option<i64> {
    match record.get(field) {
        Some(Value::Number(n)) => n.as_i64(),
        _ => None,
    }
}

/// A many2one: `[id, "name"]`, a bare id, or `false`.
pub(crate) fn many2one(record: &Map<String, Value>, field: &str) -> Option<i64> {
    match record.get(field) {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::Array(items)) => items.first().and_then(Value::as_i64),
        _ => None,
    }
}

pub(crate) fn datetime(record: &Map<String, Value>, field: &str) -> Option<DateTime<Utc>> {
    crate::odoo::parse_datetime(&text(record, field)?)
}

fn id(record: &Map<String, Value>) -> Result<i64, ModelError> {
    integer(record, "id").ok_or(ModelError::NoId)
}

fn object(value: &Value) -> Result<&Map<String, Value>, ModelError> {
    value.as_object().ok_or(ModelError::NotARecord)
}

/// A record Odoo sent that cannot be used at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("Odoo returned a record that is not a JSON object")]
    NotARecord,
    #[error("Odoo returned a record without an integer id")]
    NoId,
}

/// An outbound `whatsapp.message` as the outbox reads it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Message {
    pub id: i64,
    pub account_id: Option<i64>,
    pub company_id: Option<i64>,
    pub conversation_id: Option<i64>,
    pub partner_id: Option<i64>,
    pub campaign_id: Option<i64>,
    pub state: String,
    pub message_type: String,
    /// What queued it (`manual`, `invoice_posted`, ...): picks the template outside the window
    /// and the `x_whatsapp_*` flags written on the source document.
    pub trigger: String,
    pub to_number: Option<String>,
    pub to_e164: Option<String>,
    pub wamid: Option<String>,
    pub body: Option<String>,
    pub template_id: Option<i64>,
    pub template_params_json: Option<String>,
    pub header_params_json: Option<String>,
    pub media_attachment_id: Option<i64>,
    pub media_url: Option<String>,
    pub media_id: Option<String>,
    pub media_filename: Option<String>,
    pub media_mime_type: Option<String>,
    pub report_name: Option<String>,
    pub interactive_json: Option<String>,
    pub reply_to_wamid: Option<String>,
    pub res_model: Option<String>,
    pub res_id: Option<i64>,
    pub attempt_count: u32,
    pub claimed_at: Option<DateTime<Utc>>,
    /// Set when an earlier attempt failed: the result write then clears the error fields.
    pub error_code: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
    /// The Odoo user who queued it: the notes and help texts written about it are in their
    /// language.
    pub create_uid: Option<i64>,
}

impl Message {
    pub const MODEL: &'static str = "whatsapp.message";
    pub const FIELDS: &'static [&'static str] = &[
        "account_id",
        "company_id",
        "conversation_id",
        "partner_id",
        "campaign_id",
        "state",
        "message_type",
        "trigger",
        "to_number",
        "to_e164",
        "wamid",
        "body",
        "template_id",
        "template_params_json",
        "header_params_json",
        "media_attachment_id",
        "media_url",
        "media_id",
        "media_filename",
        "media_mime_type",
        "report_name",
        "interactive_json",
        "reply_to_wamid",
        "res_model",
        "res_id",
        "attempt_count",
        "claimed_at",
        "error_code",
        "sent_at",
        "delivered_at",
        "read_at",
        "failed_at",
        "create_uid",
    ];

    pub fn from_record(value: &Value) -> Result<Message, ModelError> {
        let r = object(value)?;
        Ok(Message {
            id: id(r)?,
            account_id: many2one(r, "account_id"),
            company_id: many2one(r, "company_id"),
            conversation_id: many2one(r, "conversation_id"),
            partner_id: many2one(r, "partner_id"),
            campaign_id: many2one(r, "campaign_id"),
            state: text(r, "state").unwrap_or_default(),
            message_type: text(r, "message_type").unwrap_or_else(|| "text".to_owned()),
            trigger: text(r, "trigger").unwrap_or_else(|| "manual".to_owned()),
            to_number: text(r, "to_number"),
            to_e164: text(r, "to_e164"),
            wamid: text(r, "wamid"),
            body: text(r, "body"),
            template_id: many2one(r, "template_id"),
            template_params_json: text(r, "template_params_json"),
            header_params_json: text(r, "header_params_json"),
            media_attachment_id: many2one(r, "media_attachment_id"),
            media_url: text(r, "media_url"),
            media_id: text(r, "media_id"),
            media_filename: text(r, "media_filename"),
            media_mime_type: text(r, "media_mime_type"),
            report_name: text(r, "report_name"),
            interactive_json: text(r, "interactive_json"),
            reply_to_wamid: text(r, "reply_to_wamid"),
            res_model: text(r, "res_model"),
            // A Many2oneReference reads as a plain integer; 0 means none.
            res_id: integer(r, "res_id").filter(|id| *id > 0),
            attempt_count: integer(r, "attempt_count")
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
            claimed_at: datetime(r, "claimed_at"),
            error_code: text(r, "error_code"),
            sent_at: datetime(r, "sent_at"),
            delivered_at: datetime(r, "delivered_at"),
            read_at: datetime(r, "read_at"),
            failed_at: datetime(r, "failed_at"),
            create_uid: many2one(r, "create_uid"),
        })
    }

    /// The record the message is about: its source document, else its contact.
    pub fn target_record(&self) -> Option<(String, i64)> {
        match (&self.res_model, self.res_id) {
            (Some(model), Some(id)) => Some((model.clone(), id)),
            _ => self.partner_id.map(|id| ("res.partner".to_owned(), id)),
        }
    }
}

/// A `res.partner`: consent and numbers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Partner {
    pub id: i64,
    pub name: String,
    pub opt_in: bool,
    /// The customer opted out (`whatsapp_opt_out_date` set, e.g. by a "STOP" reply).
    pub opted_out: bool,
    pub number_e164: Option<String>,
    pub mobile: Option<String>,
    pub phone: Option<String>,
}

impl Partner {
    pub const MODEL: &'static str = "res.partner";
    pub const FIELDS: &'static [&'static str] = &[
        "name",
        "whatsapp_opt_in",
        "whatsapp_opt_out_date",
        "whatsapp_number_e164",
        "mobile",
        "phone",
    ];

    pub fn from_record(value: &Value) -> Result<Partner, ModelError> {
        let r = object(value)?;
        Ok(Partner {
            id: id(r)?,
            name: text(r, "name").unwrap_or_default(),
            opt_in: boolean(r, "whatsapp_opt_in"),
            opted_out: text(r, "whatsapp_opt_out_date").is_some(),
            number_e164: text(r, "whatsapp_number_e164"),
            mobile: text(r, "mobile"),
            phone: text(r, "phone"),
        })
    }

    /// The number WhatsApp messages go to: the WhatsApp number, else the mobile, else the phone
    /// (the addon's `_whatsapp_number`).
    pub fn whatsapp_number(&self) -> Option<&str> {
        self.number_e164
            .as_deref()
            .or(self.mobile.as_deref())
            .or(self.phone.as_deref())
    }
}

/// A `whatsapp.conversation`: the 24-hour customer service window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Conversation {
    pub id: i64,
    pub account_id: Option<i64>,
    pub wa_id: Option<String>,
    pub partner_id: Option<i64>,
    pub last_inbound_at: Option<DateTime<Utc>>,
    pub window_expires_at: Option<DateTime<Utc>>,
}

/// How long an inbound message keeps the customer service window open.
pub const WINDOW: chrono::TimeDelta = chrono::TimeDelta::hours(24);

impl Conversation {
    pub const MODEL: &'static str = "whatsapp.conversation";
    pub const FIELDS: &'static [&'static str] = &[
        "account_id",
        "wa_id",
        "partner_id",
        "last_inbound_at",
        "window_expires_at",
    ];

    pub fn from_record(value: &Value) -> Result<Conversation, ModelError> {
        let r = object(value)?;
        Ok(Conversation {
            id: id(r)?,
            account_id: many2one(r, "account_id"),
            wa_id: text(r, "wa_id"),
            partner_id: many2one(r, "partner_id"),
            last_inbound_at: datetime(r, "last_inbound_at"),
            window_expires_at: datetime(r, "window_expires_at"),
        })
    }

    /// True while free-form messages are allowed: the customer wrote less than 24 hours ago.
    pub fn window_open(&self, now: DateTime<Utc>) -> bool {
        let expires = self
            .window_expires_at
            .or_else(|| self.last_inbound_at.map(|t| t + WINDOW));
        expires.is_some_and(|t| t > now)
    }
}

/// A `whatsapp.account`: one Cloud API number.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub id: i64,
    pub name: String,
    pub active: bool,
    pub company_id: Option<i64>,
    pub is_default: bool,
    pub phone_number_id: String,
    pub access_token: Option<Secret>,
    pub graph_api_version: Option<String>,
    pub throughput_mps: u32,
    pub paused: bool,
    pub paused_reason: Option<String>,
    pub template_order_creation_id: Option<i64>,
    pub template_invoice_posted_id: Option<i64>,
    pub template_residual_change_id: Option<i64>,
    pub template_unpaid_invoice_id: Option<i64>,
    pub template_generic_id: Option<i64>,
    /// "Template for documents": a template whose header is a document, used outside the
    /// 24-hour window to send a PDF or another file (the file goes in its header).
    pub template_document_id: Option<i64>,
    pub default_media_url: Option<String>,
    /// The WhatsApp Business Account id: accounts sharing it share Meta's daily messaging limit.
    pub waba_id: Option<String>,
    /// Meta's messaging limit tier as stored (`TIER_250`, `TIER_2K`, `2000`, ...), see
    /// [`super::limit::tier_limit`].
    pub messaging_limit: Option<String>,
}

/// Meta's default throughput for a number, used when the account says nothing sensible.
pub const DEFAULT_THROUGHPUT_MPS: u32 = 80;

impl Account {
    /// The handle the Cloud API client takes for this account (its token, WABA and Graph API
    /// version; a missing token is sent blank, which Meta refuses and the outbox reports).
    pub fn handle(&self) -> crate::whatsapp::AccountHandle {
        crate::whatsapp::AccountHandle::new(
            self.phone_number_id.clone(),
            self.waba_id.clone().unwrap_or_default(),
            self.access_token
                .clone()
                .unwrap_or_else(|| crate::secret::Secret::new("")),
        )
        .with_api_version(self.graph_api_version.as_deref())
    }

    pub const MODEL: &'static str = "whatsapp.account";
    pub const FIELDS: &'static [&'static str] = &[
        "name",
        "active",
        "company_id",
        "is_default",
        "phone_number_id",
        "access_token",
        "graph_api_version",
        "throughput_mps",
        "paused",
        "paused_reason",
        "template_order_creation_id",
        "template_invoice_posted_id",
        "template_residual_change_id",
        "template_unpaid_invoice_id",
        "template_generic_id",
        "template_document_id",
        "default_media_url",
        "waba_id",
        "messaging_limit",
    ];

    pub fn from_record(value: &Value) -> Result<Account, ModelError> {
        let r = object(value)?;
        Ok(Account {
            id: id(r)?,
            name: text(r, "name").unwrap_or_default(),
            // `active` is only absent when the field was not read; archived accounts are not
            // returned by a search unless asked for.
            active: !matches!(r.get("active"), Some(Value::Bool(false))),
            company_id: many2one(r, "company_id"),
            is_default: boolean(r, "is_default"),
            phone_number_id: text(r, "phone_number_id").unwrap_or_default(),
            access_token: text(r, "access_token").map(Secret::new),
            graph_api_version: text(r, "graph_api_version"),
            throughput_mps: integer(r, "throughput_mps")
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n > 0)
                .unwrap_or(DEFAULT_THROUGHPUT_MPS),
            paused: boolean(r, "paused"),
            paused_reason: text(r, "paused_reason"),
            template_order_creation_id: many2one(r, "template_order_creation_id"),
            template_invoice_posted_id: many2one(r, "template_invoice_posted_id"),
            template_residual_change_id: many2one(r, "template_residual_change_id"),
            template_unpaid_invoice_id: many2one(r, "template_unpaid_invoice_id"),
            template_generic_id: many2one(r, "template_generic_id"),
            template_document_id: many2one(r, "template_document_id"),
            default_media_url: text(r, "default_media_url"),
            waba_id: text(r, "waba_id"),
            messaging_limit: text(r, "messaging_limit"),
        })
    }

    /// The account's own template for messages queued by `trigger` (set or not) and its
    /// field, when the trigger has one (the automations' triggers).
    pub fn trigger_template(&self, trigger: &str) -> Option<(Option<i64>, Setting)> {
        match trigger {
            "order_creation" => Some((self.template_order_creation_id, ORDER_TEMPLATE)),
            "invoice_posted" => Some((self.template_invoice_posted_id, INVOICE_TEMPLATE)),
            "residual_change" => Some((self.template_residual_change_id, RESIDUAL_TEMPLATE)),
            "unpaid_reminder" => Some((self.template_unpaid_invoice_id, UNPAID_TEMPLATE)),
            _ => None,
        }
    }

    /// The template this account uses outside the 24-hour window for a message queued by
    /// `trigger`, and the account field that sets it.
    pub fn window_template(&self, trigger: &str) -> (Option<i64>, Setting) {
        match self.trigger_template(trigger) {
            Some((Some(id), setting)) => (Some(id), setting),
            Some((None, setting)) => (self.template_generic_id, setting),
            None => (self.template_generic_id, GENERIC_TEMPLATE),
        }
    }
}

/// An account field that picks a template, with its label as people see it in Odoo (the
/// addon's field string and its French translation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub en: &'static str,
    pub fr: &'static str,
}

impl Setting {
    pub fn label(self, lang: Lang) -> &'static str {
        lang.pick(self.en, self.fr)
    }
}

pub const ORDER_TEMPLATE: Setting = Setting {
    en: "Template for new orders",
    fr: "Modèle pour les nouvelles commandes",
};
pub const INVOICE_TEMPLATE: Setting = Setting {
    en: "Template for posted invoices",
    fr: "Modèle pour les factures comptabilisées",
};
pub const RESIDUAL_TEMPLATE: Setting = Setting {
    en: "Template for residual changes",
    fr: "Modèle pour les variations du reste dû",
};
pub const UNPAID_TEMPLATE: Setting = Setting {
    en: "Template for unpaid reminders",
    fr: "Modèle pour les relances d'impayés",
};
pub const GENERIC_TEMPLATE: Setting = Setting {
    en: "Generic template",
    fr: "Modèle générique",
};
pub const DOCUMENT_TEMPLATE: Setting = Setting {
    en: "Template for documents",
    fr: "Modèle pour les documents",
};

/// A `whatsapp.template` with its variable lines.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Template {
    pub id: i64,
    pub name: String,
    pub language: String,
    pub account_id: Option<i64>,
    pub active: bool,
    /// `approved`, `pending`, `rejected`, `paused`, ... (lower case, as the addon stores it).
    pub status: String,
    /// `positional` or `named`.
    pub parameter_format: String,
    pub components_json: Option<String>,
    /// `none`, `text`, `image`, `video`, `document`, `location`.
    pub header_type: String,
    pub variable_ids: Vec<i64>,
    pub variables: Vec<TemplateVariable>,
}

impl Template {
    pub const MODEL: &'static str = "whatsapp.template";
    pub const FIELDS: &'static [&'static str] = &[
        "name",
        "language",
        "account_id",
        "active",
        "status",
        "parameter_format",
        "components_json",
        "header_type",
        "variable_ids",
    ];

    /// Decodes the template; its variables are read separately and set with
    /// [`Template::with_variables`].
    pub fn from_record(value: &Value) -> Result<Template, ModelError> {
        let r = object(value)?;
        let variable_ids = match r.get("variable_ids") {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_i64).collect(),
            _ => Vec::new(),
        };
        Ok(Template {
            id: id(r)?,
            name: text(r, "name").unwrap_or_default(),
            language: text(r, "language").unwrap_or_default(),
            account_id: many2one(r, "account_id"),
            active: !matches!(r.get("active"), Some(Value::Bool(false))),
            status: text(r, "status").unwrap_or_default(),
            parameter_format: text(r, "parameter_format").unwrap_or_else(|| "positional".into()),
            components_json: text(r, "components_json"),
            header_type: text(r, "header_type")
                .filter(|h| h != "none")
                .or_else(|| header_from_components(text(r, "components_json").as_deref()))
                .unwrap_or_else(|| "none".into()),
            variable_ids,
            variables: Vec::new(),
        })
    }

    /// Attaches the variables that belong to this template, in the addon's order
    /// (sequence, id).
    pub fn with_variables(mut self, all: &[TemplateVariable]) -> Template {
        let mut mine: Vec<TemplateVariable> = all
            .iter()
            .filter(|v| v.template_id == Some(self.id))
            .cloned()
            .collect();
        mine.sort_by_key(|v| (v.sequence, v.id));
        self.variables = mine;
        self
    }

    pub fn is_approved(&self) -> bool {
        self.status.eq_ignore_ascii_case("approved")
    }

    /// True when the header takes a media parameter.
    pub fn has_media_header(&self) -> bool {
        matches!(self.header_type.as_str(), "image" | "video" | "document")
    }
}

/// The header format (`document`, `image`, ...) written in Meta's components, for a record whose
/// `header_type` was not computed.
fn header_from_components(components: Option<&str>) -> Option<String> {
    let list: Value = serde_json::from_str(components?).ok()?;
    list.as_array()?
        .iter()
        .find(|c| {
            c.get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case("header"))
        })
        .map(|c| {
            c.get("format")
                .and_then(Value::as_str)
                .unwrap_or("text")
                .to_ascii_lowercase()
        })
}

/// A `whatsapp.template.variable`: where one template parameter's value comes from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TemplateVariable {
    pub id: i64,
    pub template_id: Option<i64>,
    pub sequence: i64,
    /// `1` for `{{1}}`, or the parameter's name.
    pub name: String,
    /// `header`, `body` or `button`.
    pub component: String,
    pub button_index: i64,
    /// A dotted path on the record the message is about (`partner_id.name`).
    pub field_path: Option<String>,
    /// Used when there is no field path or its value is empty.
    pub fixed_value: Option<String>,
}

impl TemplateVariable {
    pub const MODEL: &'static str = "whatsapp.template.variable";
    pub const FIELDS: &'static [&'static str] = &[
        "template_id",
        "sequence",
        "name",
        "component",
        "button_index",
        "field_path",
        "fixed_value",
    ];

    pub fn from_record(value: &Value) -> Result<TemplateVariable, ModelError> {
        let r = object(value)?;
        Ok(TemplateVariable {
            id: id(r)?,
            template_id: many2one(r, "template_id"),
            sequence: integer(r, "sequence").unwrap_or(0),
            name: text(r, "name").unwrap_or_default(),
            component: text(r, "component").unwrap_or_else(|| "body".into()),
            button_index: integer(r, "button_index").unwrap_or(0),
            field_path: text(r, "field_path").map(|p| p.trim().to_owned()),
            fixed_value: text(r, "fixed_value"),
        })
    }
}

/// A `res.company`: its country is the default region of the numbers it sends to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Company {
    pub id: i64,
    pub name: String,
    /// ISO code of the company's country (`country_code`, related to `country_id.code`).
    pub country_code: Option<String>,
    /// The language of the company's contact (`partner_id.lang`): notes and help texts about a
    /// message whose author has no language are in it.
    pub lang: Option<String>,
}

impl Company {
    pub const MODEL: &'static str = "res.company";
    pub const FIELDS: &'static [&'static str] = &["name", "country_code"];

    pub fn from_record(value: &Value) -> Result<Company, ModelError> {
        let r = object(value)?;
        Ok(Company {
            id: id(r)?,
            name: text(r, "name").unwrap_or_default(),
            country_code: text(r, "country_code"),
            lang: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    #[test]
    fn message_decodes_odoo_false_and_many2one() {
        let m = Message::from_record(&json!({
            "id": 7, "account_id": [3, "Main"], "company_id": [1, "ACME"],
            "conversation_id": false, "partner_id": 12, "state": "queued",
            "message_type": "template", "trigger": "invoice_posted", "to_number": "06 12 34 56 78",
            "to_e164": false, "wamid": false, "body": false, "template_id": [4, "invoice (fr)"],
            "res_model": "account.move", "res_id": 42, "attempt_count": 2,
            "claimed_at": "2026-03-01 10:00:00", "next_attempt_at": false
        }))
        .unwrap();
        assert_eq!(m.id, 7);
        assert_eq!(m.account_id, Some(3));
        assert_eq!(m.conversation_id, None);
        assert_eq!(m.partner_id, Some(12));
        assert_eq!(m.to_e164, None);
        assert_eq!(m.template_id, Some(4));
        assert_eq!(m.attempt_count, 2);
        assert_eq!(
            m.claimed_at,
            Some(Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap())
        );
        assert_eq!(m.target_record(), Some(("account.move".into(), 42)));
    }

    #[test]
    fn records_without_id_are_refused() {
        assert_eq!(
            Message::from_record(&json!({"state": "queued"})),
            Err(ModelError::NoId)
        );
        assert_eq!(
            Partner::from_record(&json!([1, 2])),
            Err(ModelError::NotARecord)
        );
    }

    #[test]
    fn target_record_falls_back_to_the_partner() {
        let m = Message {
            id: 1,
            partner_id: Some(9),
            res_model: Some("sale.order".into()),
            res_id: None,
            ..Message::default()
        };
        assert_eq!(m.target_record(), Some(("res.partner".into(), 9)));
    }

    #[test]
    fn partner_number_prefers_the_whatsapp_number() {
        let p = Partner::from_record(&json!({
            "id": 1, "name": "Alice", "whatsapp_opt_in": true,
            "whatsapp_number_e164": false, "mobile": "0612345678", "phone": "0123456789"
        }))
        .unwrap();
        assert!(p.opt_in);
        assert_eq!(p.whatsapp_number(), Some("0612345678"));
    }

    #[test]
    fn window_is_open_for_24_hours_after_the_last_inbound() {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap();
        let c = Conversation {
            id: 1,
            last_inbound_at: Some(t0),
            ..Conversation::default()
        };
        assert!(c.window_open(t0 + chrono::TimeDelta::hours(23)));
        assert!(!c.window_open(t0 + chrono::TimeDelta::hours(24)));
        let stored = Conversation {
            window_expires_at: Some(t0),
            ..c.clone()
        };
        assert!(!stored.window_open(t0));
        assert!(!Conversation::default().window_open(t0));
    }

    #[test]
    fn account_template_for_a_trigger_falls_back_to_generic() {
        let a = Account::from_record(&json!({
            "id": 1, "name": "Main", "phone_number_id": "123", "throughput_mps": 0,
            "template_invoice_posted_id": [5, "x"], "template_generic_id": [6, "g"],
            "access_token": "EAAG-secret-value"
        }))
        .unwrap();
        assert_eq!(a.throughput_mps, DEFAULT_THROUGHPUT_MPS);
        assert!(a.active);
        assert_eq!(a.window_template("invoice_posted").0, Some(5));
        assert_eq!(
            a.window_template("order_creation"),
            (Some(6), ORDER_TEMPLATE)
        );
        assert_eq!(a.window_template("manual"), (Some(6), GENERIC_TEMPLATE));
        assert_eq!(GENERIC_TEMPLATE.label(Lang::Fr), "Modèle générique");
        assert!(!format!("{a:?}").contains("EAAG-secret-value"));
    }

    #[test]
    fn template_variables_are_attached_in_order() {
        let t = Template::from_record(&json!({
            "id": 4, "name": "invoice", "language": "fr", "status": "approved",
            "header_type": "document", "variable_ids": [11, 10]
        }))
        .unwrap();
        let vars = vec![
            TemplateVariable::from_record(
                &json!({"id": 11, "template_id": [4, "x"], "sequence": 1, "name": "2"}),
            )
            .unwrap(),
            TemplateVariable::from_record(
                &json!({"id": 10, "template_id": [4, "x"], "sequence": 1, "name": "1",
                        "field_path": " partner_id.name "}),
            )
            .unwrap(),
            TemplateVariable::from_record(&json!({"id": 12, "template_id": [5, "y"]})).unwrap(),
        ];
        let t = t.with_variables(&vars);
        assert!(t.is_approved() && t.has_media_header());
        let derived = Template::from_record(&json!({
            "id": 5, "header_type": false,
            "components_json": "[{\"type\": \"HEADER\", \"format\": \"IMAGE\"}, {\"type\": \"BODY\", \"text\": \"x\"}]"
        }))
        .unwrap();
        assert_eq!(derived.header_type, "image");
        let names: Vec<&str> = t.variables.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["1", "2"]);
        assert_eq!(
            t.variables[0].field_path.as_deref(),
            Some("partner_id.name")
        );
    }
}
