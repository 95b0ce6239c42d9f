//! Pure mapping between Meta's answers and the addon's fields: the account check values, a
//! listed template as `whatsapp.template` values, its variables, and the diff of a WABA's
//! templates against the records Odoo already has ([`plan_sync`]).

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;

use crate::odoo::format_datetime;
use crate::secret::Secret;
use crate::whatsapp::templates::{
    ButtonKind, HeaderFormat, ParameterFormat, Placeholders, TemplateCategory,
};
use crate::whatsapp::{AccountCheck, AccountHandle, MessageTemplate, TemplateList, TemplateStatus};

/// The account model.
pub const ACCOUNT_MODEL: &str = "whatsapp.account";
/// The template model.
pub const TEMPLATE_MODEL: &str = "whatsapp.template";
/// The template variable model.
pub const VARIABLE_MODEL: &str = "whatsapp.template.variable";

/// The account fields read on each poll.
pub const ACCOUNT_FIELDS: &[&str] = &[
    "name",
    "phone_number_id",
    "waba_id",
    "access_token",
    "graph_api_version",
    "check_requested",
    "sync_requested",
];

/// The template fields read before a sync (the ones [`template_values`] fills).
pub const TEMPLATE_FIELDS: &[&str] = &[
    "name",
    "language",
    "meta_template_id",
    "category",
    "status",
    "quality_rating",
    "parameter_format",
    "components_json",
];

/// The variable fields read before a sync.
pub const VARIABLE_FIELDS: &[&str] = &["template_id", "name", "component", "button_index"];

/// The addon's `status` value for a template gone from Meta.
pub const STATUS_DELETED: &str = "deleted";

/// A `whatsapp.account` as the poll reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountRow {
    pub id: i64,
    pub name: String,
    pub phone_number_id: String,
    pub waba_id: String,
    /// Empty when Odoo has none (the check then says so).
    pub access_token: Secret,
    /// The account's Graph API version; empty means the daemon's `whatsapp.api_version`.
    pub graph_api_version: String,
    pub check_requested: bool,
    pub sync_requested: bool,
}

impl AccountRow {
    /// Reads a `search_read` row; `false` text fields become empty strings.
    pub fn from_record(value: &Value) -> Result<AccountRow, String> {
        let id = value
            .get("id")
            .and_then(Value::as_i64)
            .ok_or_else(|| "an account record read from Odoo has no integer id".to_string())?;
        let text = |key: &str| {
            value
                .get(key)
                .and_then(Value::as_str)
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        let flag = |key: &str| value.get(key).and_then(Value::as_bool).unwrap_or(false);
        Ok(AccountRow {
            id,
            name: text("name"),
            phone_number_id: text("phone_number_id"),
            waba_id: text("waba_id"),
            access_token: Secret::new(text("access_token")),
            graph_api_version: text("graph_api_version"),
            check_requested: flag("check_requested"),
            sync_requested: flag("sync_requested"),
        })
    }

    /// The handle the Cloud API client takes, with the account's Graph API version.
    pub fn handle(&self) -> AccountHandle {
        AccountHandle::new(
            self.phone_number_id.clone(),
            self.waba_id.clone(),
            self.access_token.clone(),
        )
        .with_api_version(Some(&self.graph_api_version))
    }
}

/// The addon's `quality_rating` value for Meta's rating (GREEN, YELLOW, RED; anything else,
/// e.g. UNKNOWN or NA, is `unknown`).
pub fn quality_value(meta: Option<&str>) -> &'static str {
    // The same mapping as the quality webhooks (inbound processing).
    meta.and_then(crate::inbound::parse::quality_value)
        .unwrap_or("unknown")
}

/// The account values a check writes: the phone number's read-only fields when Meta answered,
/// the check result, and `check_requested = False`.
pub fn check_values(report: &AccountCheck, now: DateTime<Utc>) -> Map<String, Value> {
    let mut values = Map::new();
    if let Some(phone) = &report.phone {
        if let Some(display) = &phone.display_phone_number {
            values.insert("display_phone_number".into(), json!(display));
        }
        if let Some(name) = &phone.verified_name {
            values.insert("verified_name".into(), json!(name));
        }
        values.insert(
            "quality_rating".into(),
            json!(quality_value(phone.quality_rating.as_deref())),
        );
        if let Some(limit) = phone.messaging_limit() {
            values.insert("messaging_limit".into(), json!(limit));
        }
    }
    let message = if report.lines.is_empty() {
        "No check could be made.".to_string()
    } else {
        report.report()
    };
    values.insert("last_check_at".into(), json!(format_datetime(now)));
    values.insert("last_check_ok".into(), json!(report.is_ok()));
    values.insert("last_check_message".into(), json!(message));
    values.insert("check_requested".into(), json!(false));
    values
}

/// The addon's `status` value for Meta's status; `None` for a status the addon has no value for.
/// FLAGGED templates are still approved (with a scheduled disable date), so they stay `approved`.
pub fn status_value(status: &TemplateStatus) -> Option<&'static str> {
    // The same mapping as the template status webhooks (inbound processing).
    crate::inbound::parse::template_status_value(status)
}

/// The addon's `category` value; `None` for a category it has no value for.
pub fn category_value(category: &TemplateCategory) -> Option<&'static str> {
    match category {
        TemplateCategory::Marketing => Some("marketing"),
        TemplateCategory::Utility => Some("utility"),
        TemplateCategory::Authentication => Some("authentication"),
        TemplateCategory::Other(_) => None,
    }
}

/// The `whatsapp.template` values for a listed template (not `account_id` nor `last_sync_at`).
///
/// The header type, header, body and footer texts and the buttons are computed by the addon from
/// `components_json`, which holds Meta's array as sent. A status or category the addon does not
/// know is left out (and reported by [`plan_sync`]); so is a quality Meta did not send.
pub fn template_values(t: &MessageTemplate) -> Map<String, Value> {
    let mut values = Map::new();
    values.insert("name".into(), json!(t.name));
    values.insert("language".into(), json!(t.language));
    values.insert(
        "meta_template_id".into(),
        if t.id.is_empty() {
            Value::Bool(false)
        } else {
            json!(t.id)
        },
    );
    if let Some(category) = category_value(&t.category) {
        values.insert("category".into(), json!(category));
    }
    if let Some(status) = status_value(&t.status) {
        values.insert("status".into(), json!(status));
    }
    // Meta sends `quality_score` only for some templates: without it the stored rating stays
    // (a new record gets the addon's default, `unknown`).
    if let Some(quality) = &t.quality {
        values.insert("quality_rating".into(), json!(quality_value(Some(quality))));
    }
    values.insert(
        "parameter_format".into(),
        json!(match t.parameter_format {
            ParameterFormat::Positional => "positional",
            ParameterFormat::Named => "named",
        }),
    );
    values.insert("components_json".into(), json!(t.components.to_string()));
    values
}

/// One parameter a send of the template must fill.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VariableKey {
    /// `header`, `body` or `button`.
    pub component: &'static str,
    /// `1`, `2`, ... or the parameter's name.
    pub name: String,
    /// The button's position, for button parameters (0 otherwise).
    pub button_index: i64,
}

impl fmt::Display for VariableKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.component == "button" {
            write!(f, "button {} {{{{{}}}}}", self.button_index, self.name)
        } else {
            write!(f, "{} {{{{{}}}}}", self.component, self.name)
        }
    }
}

fn names(placeholders: &Placeholders) -> Vec<String> {
    match placeholders {
        Placeholders::None => Vec::new(),
        Placeholders::Positional(n) => (1..=*n).map(|i| i.to_string()).collect(),
        Placeholders::Named(v) => v.clone(),
    }
}

/// The parameters of a template, in send order: text header, body, then buttons that take one
/// (a URL with a variable suffix, copy code).
pub fn expected_variables(t: &MessageTemplate) -> Vec<VariableKey> {
    let mut out = Vec::new();
    if let Some(header) = &t.header {
        if header.format == HeaderFormat::Text {
            for name in names(&header.placeholders) {
                out.push(VariableKey {
                    component: "header",
                    name,
                    button_index: 0,
                });
            }
        }
    }
    if let Some(body) = &t.body {
        for name in names(&body.placeholders) {
            out.push(VariableKey {
                component: "body",
                name,
                button_index: 0,
            });
        }
    }
    for button in t.buttons.iter().filter(|b| b.needs_parameter) {
        let name = match (&button.kind, &button.url) {
            (ButtonKind::Url, Some(url)) => {
                let found = names(&crate::whatsapp::templates::placeholders(
                    url,
                    t.parameter_format,
                ));
                found.into_iter().next().unwrap_or_else(|| "1".into())
            }
            _ => "1".into(),
        };
        out.push(VariableKey {
            component: "button",
            name,
            button_index: i64::try_from(button.index).unwrap_or(0),
        });
    }
    out
}

/// The values of a new variable line: unmapped (no field path, no fixed text). An administrator
/// maps it in WhatsApp > Templates; until then the outbox refuses to send the template, with a
/// help text naming the variable, rather than sending a placeholder or Meta's sample values.
pub fn variable_values(key: &VariableKey, sequence: usize) -> Map<String, Value> {
    let mut values = Map::new();
    values.insert("name".into(), json!(key.name));
    values.insert("component".into(), json!(key.component));
    values.insert("sequence".into(), json!(sequence));
    if key.component == "button" {
        values.insert("button_index".into(), json!(key.button_index));
    }
    values
}

/// A `whatsapp.template` already in Odoo.
#[derive(Debug, Clone, PartialEq)]
pub struct ExistingTemplate {
    pub id: i64,
    pub name: String,
    pub language: String,
    /// The fields of [`TEMPLATE_FIELDS`], as read.
    pub values: Map<String, Value>,
    /// Its variables.
    pub variables: HashSet<VariableKey>,
}

impl ExistingTemplate {
    /// Reads a template row (variables added separately with [`read_variable`]).
    pub fn from_record(value: &Value) -> Result<ExistingTemplate, String> {
        let map = value
            .as_object()
            .ok_or_else(|| format!("a template record is not an object: {value}"))?;
        let id = map
            .get("id")
            .and_then(Value::as_i64)
            .ok_or_else(|| format!("a template record has no integer id: {value}"))?;
        let text = |k: &str| {
            map.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        Ok(ExistingTemplate {
            id,
            name: text("name"),
            language: text("language"),
            values: map.clone(),
            variables: HashSet::new(),
        })
    }
}

/// Reads a variable row: its template id and key. `None` for a component the daemon does not
/// know (kept as it is).
pub fn read_variable(value: &Value) -> Option<(i64, VariableKey)> {
    let template_id = match value.get("template_id")? {
        Value::Array(pair) => pair.first()?.as_i64()?,
        other => other.as_i64()?,
    };
    let component = match value.get("component")?.as_str()? {
        "header" => "header",
        "body" => "body",
        "button" => "button",
        _ => return None,
    };
    let name = value.get("name")?.as_str()?.trim().to_string();
    let button_index = if component == "button" {
        value
            .get("button_index")
            .and_then(Value::as_i64)
            .unwrap_or(0)
    } else {
        0
    };
    Some((
        template_id,
        VariableKey {
            component,
            name,
            button_index,
        },
    ))
}

/// What a sync does in Odoo.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SyncPlan {
    /// New templates, each with its variables as `variable_ids` commands: one `create` call.
    pub creates: Vec<Map<String, Value>>,
    /// Changed templates and templates gone from Meta (`status = deleted`): `write_each`.
    pub updates: Vec<(i64, Map<String, Value>)>,
    /// Variable lines missing on existing templates (with `template_id`): one `create` call.
    pub new_variables: Vec<Map<String, Value>>,
    /// Templates at Meta.
    pub listed: usize,
    /// How many of `updates` mark a template gone from Meta.
    pub gone: usize,
    /// Things not synced, in words.
    pub problems: Vec<String>,
}

impl SyncPlan {
    /// `Templates synced: 2 at Meta, 2 created, 0 updated, ...` for `last_check_message`.
    pub fn summary(&self) -> String {
        let variables: usize = self
            .creates
            .iter()
            .map(|c| {
                c.get("variable_ids")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len)
            })
            .sum::<usize>()
            + self.new_variables.len();
        let mut text = format!(
            "Templates synced: {} at Meta, {} created, {} updated, {} marked deleted (gone from \
             Meta), {} variables added.",
            self.listed,
            self.creates.len(),
            self.updates.len() - self.gone,
            self.gone,
            variables
        );
        for problem in &self.problems {
            text.push_str("\nWARN ");
            text.push_str(problem);
        }
        text
    }
}

/// True when the stored value equals the new one (`components_json` compared as JSON, `false`
/// and an absent value alike).
fn same(key: &str, stored: Option<&Value>, new: &Value) -> bool {
    let stored = stored.unwrap_or(&Value::Bool(false));
    if key == "components_json" {
        let parse = |v: &Value| {
            v.as_str()
                .and_then(|s| serde_json::from_str::<Value>(s).ok())
        };
        return match (parse(stored), parse(new)) {
            (Some(a), Some(b)) => a == b,
            _ => stored == new,
        };
    }
    stored == new
}

/// Diffs the listed templates against the account's records (archived ones included), by
/// (name, language). Never deletes: a record gone from Meta gets `status = deleted`.
pub fn plan_sync(
    account_id: i64,
    list: &TemplateList,
    existing: &[ExistingTemplate],
    now: DateTime<Utc>,
) -> SyncPlan {
    let stamp = json!(format_datetime(now));
    let mut plan = SyncPlan {
        listed: list.templates.len(),
        ..SyncPlan::default()
    };
    for skipped in &list.skipped {
        plan.problems.push(format!(
            "a template entry from Meta was skipped: {}",
            skipped.problem
        ));
    }
    let by_key: HashMap<(&str, &str), &ExistingTemplate> = existing
        .iter()
        .map(|e| ((e.name.as_str(), e.language.as_str()), e))
        .collect();
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    for t in &list.templates {
        if t.language.trim().is_empty() {
            plan.problems.push(format!(
                "template '{}' has no language at Meta; it was not synced",
                t.name
            ));
            continue;
        }
        if !seen.insert((t.name.clone(), t.language.clone())) {
            plan.problems.push(format!(
                "template {} is listed twice by Meta; the first one was synced",
                t.label()
            ));
            continue;
        }
        if status_value(&t.status).is_none() {
            plan.problems.push(format!(
                "template {} has status {} at Meta, which the addon has no value for; its \
                 status was left as it is",
                t.label(),
                t.status
            ));
        }
        if category_value(&t.category).is_none() {
            plan.problems.push(format!(
                "template {} has category {} at Meta, which the addon has no value for; its \
                 category was left as it is",
                t.label(),
                t.category
            ));
        }
        let values = template_values(t);
        let expected = expected_variables(t);
        match by_key.get(&(t.name.as_str(), t.language.as_str())) {
            None => {
                let mut create = values;
                create.insert("account_id".into(), json!(account_id));
                create.insert("last_sync_at".into(), stamp.clone());
                let lines: Vec<Value> = expected
                    .iter()
                    .enumerate()
                    .map(|(i, key)| json!([0, 0, variable_values(key, i + 1)]))
                    .collect();
                if !lines.is_empty() {
                    create.insert("variable_ids".into(), Value::Array(lines));
                }
                plan.creates.push(create);
            }
            Some(record) => {
                let changed: Map<String, Value> = values
                    .into_iter()
                    .filter(|(k, v)| !same(k, record.values.get(k), v))
                    .collect();
                if !changed.is_empty() {
                    let mut write = changed;
                    write.insert("last_sync_at".into(), stamp.clone());
                    plan.updates.push((record.id, write));
                }
                for (i, key) in expected.iter().enumerate() {
                    if !record.variables.contains(key) {
                        let mut line = variable_values(key, i + 1);
                        line.insert("template_id".into(), json!(record.id));
                        plan.new_variables.push(line);
                    }
                }
            }
        }
    }
    for record in existing {
        if seen.contains(&(record.name.clone(), record.language.clone())) {
            continue;
        }
        let status = record.values.get("status").and_then(Value::as_str);
        if status != Some(STATUS_DELETED) {
            let mut write = Map::new();
            write.insert("status".into(), json!(STATUS_DELETED));
            write.insert("last_sync_at".into(), stamp.clone());
            plan.updates.push((record.id, write));
            plan.gone += 1;
        }
    }
    plan
}

/// Account values after a sync: the summary, `last_sync_at`, `sync_requested = False`.
pub fn sync_done_values(plan: &SyncPlan, now: DateTime<Utc>) -> Map<String, Value> {
    let mut values = Map::new();
    values.insert("last_sync_at".into(), json!(format_datetime(now)));
    values.insert("last_check_message".into(), json!(plan.summary()));
    values.insert("sync_requested".into(), json!(false));
    values
}

/// Account values after a failed check or sync: the reason, `last_check_ok = False`, and the
/// given request flags cleared so the button does not wait forever.
pub fn failure_values(message: &str, clear: &[&str], now: DateTime<Utc>) -> Map<String, Value> {
    let mut values = Map::new();
    values.insert("last_check_at".into(), json!(format_datetime(now)));
    values.insert("last_check_ok".into(), json!(false));
    values.insert("last_check_message".into(), json!(message));
    for flag in clear {
        values.insert((*flag).into(), json!(false));
    }
    values
}

/// Merges the values of a check and of a sync of the same account into one write: the messages
/// are joined, `last_check_ok` is false if either says so.
pub fn merge_values(
    mut first: Map<String, Value>,
    second: Map<String, Value>,
) -> Map<String, Value> {
    for (key, value) in second {
        match (key.as_str(), first.get(&key)) {
            ("last_check_message", Some(Value::String(before))) => {
                let joined = format!("{before}\n{}", value.as_str().unwrap_or_default());
                first.insert(key, json!(joined));
            }
            ("last_check_ok", Some(Value::Bool(before))) => {
                let ok = *before && value.as_bool().unwrap_or(false);
                first.insert(key, json!(ok));
            }
            _ => {
                first.insert(key, value);
            }
        }
    }
    first
}
