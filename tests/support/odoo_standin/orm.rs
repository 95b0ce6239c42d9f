//! In-memory records and the model methods the daemon calls, with Odoo 17's checks, results and
//! error messages. Every call is atomic: the rows it touched are restored when it fails.

use super::domain::{self, pyrepr, pytuple, Node};
use super::schema::{Default, Field, Kind, Model, OnDelete, Schema};
use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc, Weekday};
use serde_json::{json, Map, Value};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, OnceLock};

pub mod bus;
mod campaigns;
mod invoicing;
mod lease;

/// An Odoo exception: its Python name (`data.name`) and message (`data.message`).
#[derive(Clone, Debug, PartialEq)]
pub struct OdooErr {
    pub name: String,
    pub message: String,
}

impl OdooErr {
    pub fn new(name: &str, message: impl Into<String>) -> Self {
        OdooErr {
            name: name.to_owned(),
            message: message.into(),
        }
    }
    pub fn value(m: impl Into<String>) -> Self {
        Self::new("builtins.ValueError", m)
    }
    pub fn type_error(m: impl Into<String>) -> Self {
        Self::new("builtins.TypeError", m)
    }
    pub fn attribute(m: impl Into<String>) -> Self {
        Self::new("builtins.AttributeError", m)
    }
    pub fn key(m: impl Into<String>) -> Self {
        Self::new("builtins.KeyError", m)
    }
    pub fn user(m: impl Into<String>) -> Self {
        Self::new("odoo.exceptions.UserError", m)
    }
    pub fn validation(m: impl Into<String>) -> Self {
        Self::new("odoo.exceptions.ValidationError", m)
    }
    pub fn access(m: impl Into<String>) -> Self {
        Self::new("odoo.exceptions.AccessError", m)
    }
    pub fn access_denied() -> Self {
        Self::new("odoo.exceptions.AccessDenied", "Access Denied")
    }
    pub fn missing(model: &str, ids: &[i64], uid: i64) -> Self {
        let ids: Vec<Value> = ids.iter().map(|i| Value::from(*i)).collect();
        Self::new(
            "odoo.exceptions.MissingError",
            format!(
                "Record does not exist or has been deleted.\n(Record: {model}{}, User: {uid})",
                pytuple(&ids)
            ),
        )
    }
}

pub type Row = HashMap<String, Value>;

#[derive(Clone, Debug, Default)]
pub struct Table {
    pub next_id: i64,
    pub rows: BTreeMap<i64, Row>,
}

/// A user of the stand-in.
#[derive(Clone, Debug)]
pub struct User {
    pub uid: i64,
    pub login: String,
    pub password: String,
    pub api_key: Option<String>,
    /// `(model, operation)` pairs this user may not do.
    pub denied: HashSet<(String, String)>,
}

/// Who calls, with which context.
#[derive(Clone, Debug)]
pub struct Env {
    pub uid: i64,
    pub context: Map<String, Value>,
}

/// The rows a call changed, to undo it if it fails.
#[derive(Default)]
pub struct Txn {
    saved: Vec<(String, i64, Option<Row>)>,
    seen: HashSet<(String, i64)>,
    writes: Vec<(String, i64)>,
    /// The addon's bus notifications, sent if the call succeeds (see [`bus`]).
    bus: BTreeMap<String, std::collections::BTreeSet<i64>>,
}

pub struct Db {
    pub schema: Schema,
    pub database: String,
    pub tables: HashMap<String, Table>,
    pub users: Vec<User>,
    /// Successful writes per record (write and load).
    pub write_counts: HashMap<(String, i64), u64>,
    /// The addon's per-database button secret (`whatsapp.account.whatsapp_button_secret`).
    pub button_secret: String,
    /// `web.base.url`, what `get_base_url` answers.
    pub base_url: String,
    /// The addon's bus notifications ([`bus`]).
    pub bus: bus::BusLog,
    /// The call being served came through a web session (`/web/dataset/call_kw`).
    pub web_request: bool,
    /// The next this many `load`s answer PostgreSQL's serialization failure on their first
    /// row, as a real Odoo does when another transaction wrote the same record meanwhile (its
    /// `load` reports it as a row error and rolls the call back).
    pub load_conflicts: usize,
    /// SQL unique constraints, indexed: (model, constraint number) → key ↔ id.
    unique: HashMap<(String, usize), UniqueIndex>,
    /// Records by value of the fields in [`VALUE_INDEXED`]: (model, field) → value key → ids.
    values: HashMap<(String, String), ValueIndex>,
}

/// Fields whose `=` / `in` leaves are answered from an index instead of a scan: the ones the
/// daemon polls on (queued or sending messages, unprocessed events) or looks statuses up by,
/// as Odoo's indexes do.
const VALUE_INDEXED: &[(&str, &str)] = &[
    ("whatsapp.message", "state"),
    ("whatsapp.message", "callback_data"),
    ("whatsapp.webhook.event", "processed"),
];

#[derive(Default)]
struct ValueIndex {
    by_value: HashMap<String, std::collections::BTreeSet<i64>>,
    by_id: HashMap<i64, String>,
}

/// A stored or searched value as a key of a [`ValueIndex`] (booleans by truth, as Odoo's
/// `= False` also matches NULL).
fn value_key(kind: &Kind, v: &Value) -> String {
    match kind {
        Kind::Boolean => truthy(v).to_string(),
        _ => match v {
            Value::Bool(false) => Value::Null.to_string(),
            other => other.to_string(),
        },
    }
}

#[derive(Default)]
struct UniqueIndex {
    by_key: HashMap<String, i64>,
    by_id: HashMap<i64, String>,
}

/// The key of a row for a unique constraint; `None` when a column is NULL (no clash possible).
fn unique_key(fields: &[String], row: &Row) -> Option<String> {
    let mut parts = Vec::with_capacity(fields.len());
    for f in fields {
        match row.get(f) {
            None | Some(Value::Null) => return None,
            Some(v) => parts.push(v.clone()),
        }
    }
    Some(Value::Array(parts).to_string())
}

const MAGIC: &[&str] = &[
    "id",
    "display_name",
    "create_date",
    "create_uid",
    "write_date",
    "write_uid",
];

pub fn now_string() -> String {
    Utc::now().format("%Y-%m-%d %H:%M:%S").to_string()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
}

/// Odoo's HTML sanitizer wraps plain text in a paragraph.
fn sanitize_html(s: &str) -> String {
    let t = s.trim();
    if t.is_empty() || t.starts_with('<') {
        s.to_owned()
    } else {
        format!("<p>{s}</p>")
    }
}

impl Db {
    pub fn new(schema: Schema, database: &str) -> Self {
        let tables = schema
            .models
            .keys()
            .map(|m| {
                (
                    m.clone(),
                    Table {
                        next_id: 1,
                        rows: BTreeMap::new(),
                    },
                )
            })
            .collect();
        Db {
            schema,
            database: database.to_owned(),
            tables,
            users: Vec::new(),
            write_counts: HashMap::new(),
            load_conflicts: 0,
            button_secret: (0..64)
                .map(|_| char::from(b"0123456789abcdef"[fastrand::usize(..16)]))
                .collect(),
            unique: HashMap::new(),
            values: HashMap::new(),
            base_url: "http://127.0.0.1:8069".to_owned(),
            web_request: false,
            bus: bus::BusLog::default(),
        }
    }

    pub fn model(&self, name: &str) -> Option<&Arc<Model>> {
        self.schema.model(name)
    }

    fn model_or_err(&self, name: &str) -> Result<Arc<Model>, OdooErr> {
        self.model(name)
            .cloned()
            .ok_or_else(|| OdooErr::user(format!("Object {name} doesn't exist")))
    }

    pub fn user(&self, uid: i64) -> Option<&User> {
        self.users.iter().find(|u| u.uid == uid)
    }

    /// The kind of a declared or magic field.
    pub fn field_kind<'a>(&self, model: &'a Model, name: &str) -> Option<&'a Kind> {
        if let Some(f) = model.field(name) {
            return Some(&f.kind);
        }
        static MAGIC_KINDS: OnceLock<Vec<(&'static str, Kind)>> = OnceLock::new();
        let magic = MAGIC_KINDS.get_or_init(|| {
            vec![
                ("id", Kind::Integer),
                ("display_name", Kind::Char),
                ("create_date", Kind::Datetime),
                ("write_date", Kind::Datetime),
                ("create_uid", Kind::Many2one("res.users".into())),
                ("write_uid", Kind::Many2one("res.users".into())),
            ]
        });
        magic.iter().find(|(n, _)| *n == name).map(|(_, k)| k)
    }

    pub fn exists(&self, model: &str, id: i64) -> bool {
        self.tables
            .get(model)
            .is_some_and(|t| t.rows.contains_key(&id))
    }

    pub fn row(&self, model: &str, id: i64) -> Option<&Row> {
        self.tables.get(model).and_then(|t| t.rows.get(&id))
    }

    /// The stored value (`null` when unset or missing).
    pub fn stored(&self, model: &Model, id: i64, field: &str) -> Cow<'_, Value> {
        static NULL: Value = Value::Null;
        if field == "id" {
            return Cow::Owned(Value::from(id));
        }
        if field == "display_name" {
            return Cow::Owned(Value::from(self.display_name(model, id)));
        }
        match self.row(&model.name, id).and_then(|r| r.get(field)) {
            Some(v) => Cow::Borrowed(v),
            None => Cow::Borrowed(&NULL),
        }
    }

    /// Ids a relational field points at.
    pub fn related_ids(&self, model: &Model, id: i64, field: &str) -> Vec<i64> {
        match self.field_kind(model, field) {
            Some(Kind::Many2one(_)) => self.stored(model, id, field).as_i64().into_iter().collect(),
            Some(Kind::Many2many(_)) => self
                .stored(model, id, field)
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_i64).collect())
                .unwrap_or_default(),
            Some(Kind::One2many(comodel, inverse)) => self
                .tables
                .get(comodel)
                .map(|t| {
                    t.rows
                        .iter()
                        .filter(|(_, r)| r.get(inverse).and_then(Value::as_i64) == Some(id))
                        .map(|(i, _)| *i)
                        .collect()
                })
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    pub fn display_name(&self, model: &Model, id: i64) -> String {
        let Some(row) = self.row(&model.name, id) else {
            return String::new();
        };
        let text = |f: &str| row.get(f).and_then(Value::as_str).unwrap_or("").to_owned();
        match model.name.as_str() {
            "res.partner" => {
                let name = text("name");
                let parent = row.get("parent_id").and_then(Value::as_i64);
                let is_company = row
                    .get("is_company")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                match parent.and_then(|p| self.row("res.partner", p)) {
                    Some(p) if !is_company => format!(
                        "{}, {name}",
                        p.get("name").and_then(Value::as_str).unwrap_or("")
                    ),
                    _ => name,
                }
            }
            "whatsapp.template" => format!("{} ({})", text("name"), text("language")),
            _ => match &model.rec_name {
                Some(rec) => match model.field(rec).map(|f| &f.kind) {
                    Some(Kind::Many2one(co)) => match row.get(rec).and_then(Value::as_i64) {
                        Some(rid) => self
                            .model(co)
                            .map(|m| self.display_name(m, rid))
                            .unwrap_or_default(),
                        None => String::new(),
                    },
                    _ => match row.get(rec) {
                        Some(Value::String(s)) => s.clone(),
                        Some(Value::Null) | None => String::new(),
                        Some(other) => other.to_string(),
                    },
                },
                None => format!("{},{id}", model.name),
            },
        }
    }

    /// `roots` and their descendants (`children`) or ancestors, through `parent_id`.
    pub fn hierarchy(&self, model: &Model, roots: &[i64], children: bool) -> HashSet<i64> {
        let mut out: HashSet<i64> = roots.iter().copied().collect();
        if model.field("parent_id").is_none() {
            return out;
        }
        loop {
            let before = out.len();
            if let Some(t) = self.tables.get(&model.name) {
                for (id, row) in &t.rows {
                    let parent = row.get("parent_id").and_then(Value::as_i64);
                    match (children, parent) {
                        (true, Some(p)) if out.contains(&p) => {
                            out.insert(*id);
                        }
                        (false, Some(p)) if out.contains(id) => {
                            out.insert(p);
                        }
                        _ => {}
                    }
                }
            }
            if out.len() == before {
                return out;
            }
        }
    }

    // ----- access rights ------------------------------------------------------------------

    pub fn allowed(&self, uid: i64, model: &str, op: &str) -> bool {
        self.user(uid)
            .is_some_and(|u| !u.denied.contains(&(model.to_owned(), op.to_owned())))
    }

    pub fn check_access(&self, env: &Env, model: &Model, op: &str) -> Result<(), OdooErr> {
        if self.allowed(env.uid, &model.name, op) {
            return Ok(());
        }
        let verb = match op {
            "read" => "access",
            "write" => "modify",
            "create" => "create",
            _ => "delete",
        };
        let groups = match model.name.as_str() {
            "res.users" => "Administration/Access Rights",
            m if m.starts_with("whatsapp.") => "WhatsApp/Manager",
            _ => "Administration/Settings",
        };
        Err(OdooErr::access(format!(
            "You are not allowed to {verb} '{}' ({}) records.\n\nThis operation is allowed for the following groups:\n\t- {groups}\n\nContact your administrator to request access if necessary.",
            model.description, model.name
        )))
    }

    // ----- the method dispatcher -----------------------------------------------------------

    /// Runs `model.method(*args, **kwargs)`; `Ok(None)` when the method returns None.
    pub fn execute(
        &mut self,
        env: &Env,
        model_name: &str,
        method: &str,
        args: &[Value],
        kwargs: &Map<String, Value>,
    ) -> Result<Option<Value>, OdooErr> {
        if method.starts_with('_') {
            return Err(OdooErr::access(format!(
                "Private methods (such as {method}) cannot be called remotely."
            )));
        }
        let model = self.model_or_err(model_name)?;
        let mut txn = Txn::default();
        let result = self.dispatch(env, &model, method, args, kwargs, &mut txn);
        match result {
            Ok(v) => {
                for key in txn.writes {
                    *self.write_counts.entry(key).or_insert(0) += 1;
                }
                self.bus_commit(txn.bus);
                Ok(v)
            }
            Err(e) => {
                self.rollback(txn);
                Err(e)
            }
        }
    }

    fn rollback(&mut self, txn: Txn) {
        for (model, id, old) in txn.saved.into_iter().rev() {
            if let Some(t) = self.tables.get_mut(&model) {
                match old {
                    Some(row) => {
                        t.rows.insert(id, row);
                    }
                    None => {
                        t.rows.remove(&id);
                    }
                }
            }
            self.reindex(&model, id);
        }
    }

    /// Puts a record's entries in the value indexes in line with its row (or drops them).
    fn index_values(&mut self, model: &Model, id: i64) {
        for (m, field) in VALUE_INDEXED {
            if *m != model.name {
                continue;
            }
            let Some(kind) = model.field(field).map(|f| f.kind.clone()) else {
                continue;
            };
            let key = self
                .row(&model.name, id)
                .map(|r| value_key(&kind, r.get(*field).unwrap_or(&Value::Null)));
            let idx = self
                .values
                .entry((model.name.clone(), (*field).to_owned()))
                .or_default();
            if let Some(old) = idx.by_id.remove(&id) {
                if let Some(ids) = idx.by_value.get_mut(&old) {
                    ids.remove(&id);
                    // A value no record holds any more goes (each message has its own
                    // `callback_data`: kept, they would pile up as records are deleted).
                    if ids.is_empty() {
                        idx.by_value.remove(&old);
                    }
                }
            }
            if let Some(key) = key {
                idx.by_value.entry(key.clone()).or_default().insert(id);
                idx.by_id.insert(id, key);
            }
        }
    }

    /// Values held in the value indexes (for a long benchmark watching the stand-in's size).
    pub fn indexed_values(&self) -> usize {
        self.values.values().map(|idx| idx.by_value.len()).sum()
    }

    /// Puts a record's unique keys back in line with its row (or drops them if it is gone).
    pub fn reindex(&mut self, model_name: &str, id: i64) {
        let Some(model) = self.model(model_name).cloned() else {
            return;
        };
        self.index_values(&model, id);
        let row = self.row(model_name, id).cloned();
        for (ci, u) in model.uniques.iter().enumerate() {
            let idx = self.unique.entry((model_name.to_owned(), ci)).or_default();
            if let Some(old) = idx.by_id.remove(&id) {
                if idx.by_key.get(&old) == Some(&id) {
                    idx.by_key.remove(&old);
                }
            }
            if let Some(key) = row.as_ref().and_then(|r| unique_key(&u.fields, r)) {
                idx.by_key.insert(key.clone(), id);
                idx.by_id.insert(id, key);
            }
        }
    }

    fn dispatch(
        &mut self,
        env: &Env,
        model: &Model,
        method: &str,
        args: &[Value],
        kwargs: &Map<String, Value>,
        txn: &mut Txn,
    ) -> Result<Option<Value>, OdooErr> {
        let no_attr = || {
            OdooErr::attribute(format!(
                "type object '{}' has no attribute '{method}'",
                model.name
            ))
        };
        if let Some(answer) = self.invoicing(env, model, method, args, kwargs, txn)? {
            return Ok(answer);
        }
        if let Some(answer) = self.lease(env, model, method, args, kwargs, txn)? {
            return Ok(answer);
        }
        if let Some(answer) = self.campaign_buttons(env, model, method, args, kwargs, txn)? {
            return Ok(answer);
        }
        let p = Params { args, kwargs };
        match method {
            // @api.model methods
            "search" => {
                p.only(method, &["domain", "offset", "limit", "order"])?;
                self.check_access(env, model, "read")?;
                let ids = self.search_ids(
                    env,
                    model,
                    p.get(0, "domain"),
                    p.int(1, "offset")?.unwrap_or(0),
                    p.int(2, "limit")?,
                    p.str(3, "order"),
                )?;
                Ok(Some(json!(ids)))
            }
            "search_read" => {
                p.only(
                    method,
                    &["domain", "fields", "offset", "limit", "order", "load"],
                )?;
                self.check_access(env, model, "read")?;
                let ids = self.search_ids(
                    env,
                    model,
                    p.get(0, "domain"),
                    p.int(2, "offset")?.unwrap_or(0),
                    p.int(3, "limit")?,
                    p.str(4, "order"),
                )?;
                let fields = p.fields(1, "fields");
                let classic = classic_load(kwargs.get("load"));
                let mut rows = self.read_records(model, &ids, fields.as_deref(), classic)?;
                self.translate_rows(env, model, &mut rows);
                Ok(Some(Value::Array(rows)))
            }
            // read_group(domain, fields, groupby, lazy=...) grouped by one field, as Odoo 17
            // answers it (r_read_group_recipients_by_state.json): one row per value present,
            // ordered by value, with `__count` (lazy=False) or `<field>_count`, and `__domain`.
            "read_group" => {
                p.only(
                    method,
                    &[
                        "domain", "fields", "groupby", "offset", "limit", "orderby", "lazy",
                    ],
                )?;
                self.check_access(env, model, "read")?;
                let groupby: Vec<String> = match p.get(2, "groupby") {
                    Some(Value::String(s)) => vec![s.clone()],
                    Some(Value::Array(a)) => a
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect(),
                    _ => Vec::new(),
                };
                let [field] = groupby.as_slice() else {
                    return Err(OdooErr::value("the stand-in groups by exactly one field"));
                };
                let lazy = kwargs.get("lazy").map(truthy).unwrap_or(true);
                let domain = p.get(0, "domain").cloned().unwrap_or(json!([]));
                let ids = self.search_ids(env, model, Some(&domain), 0, None, None)?;
                let rows =
                    self.read_records(model, &ids, Some(std::slice::from_ref(field)), true)?;
                let mut groups: Vec<(Value, u64)> = Vec::new();
                for row in rows {
                    let value = row.get(field).cloned().unwrap_or(Value::Bool(false));
                    match groups.iter_mut().find(|(v, _)| *v == value) {
                        Some((_, n)) => *n += 1,
                        None => groups.push((value, 1)),
                    }
                }
                groups.sort_by_key(|(v, _)| match v {
                    Value::Array(a) => a.get(1).map(|n| n.to_string()).unwrap_or_default(),
                    other => other.to_string(),
                });
                let base: Vec<Value> = domain.as_array().cloned().unwrap_or_default();
                let out: Vec<Value> = groups
                    .into_iter()
                    .map(|(value, count)| {
                        let key = match &value {
                            Value::Array(a) => a.first().cloned().unwrap_or(Value::Bool(false)),
                            other => other.clone(),
                        };
                        let mut d: Vec<Value> = Vec::new();
                        if !base.is_empty() {
                            let leaves_only = base.iter().all(Value::is_array);
                            let ands = if leaves_only { base.len() } else { 1 };
                            d.extend(std::iter::repeat_n(json!("&"), ands));
                            d.extend(base.iter().cloned());
                        }
                        d.push(json!([field, "=", key]));
                        let mut g = Map::new();
                        g.insert(field.clone(), value);
                        let count_key = if lazy {
                            format!("{field}_count")
                        } else {
                            "__count".to_owned()
                        };
                        g.insert(count_key, json!(count));
                        g.insert("__domain".into(), Value::Array(d));
                        Value::Object(g)
                    })
                    .collect();
                Ok(Some(Value::Array(out)))
            }
            "search_count" => {
                p.only(method, &["domain", "limit"])?;
                self.check_access(env, model, "read")?;
                let ids =
                    self.search_ids(env, model, p.get(0, "domain"), 0, p.int(1, "limit")?, None)?;
                Ok(Some(json!(ids.len())))
            }
            "create" => {
                p.only(method, &["vals_list"])?;
                self.check_access(env, model, "create")?;
                let raw = p.get(0, "vals_list").cloned().ok_or_else(|| {
                    OdooErr::type_error(
                        "create() missing 1 required positional argument: 'vals_list'",
                    )
                })?;
                match raw {
                    Value::Object(vals) => {
                        let id = self.create_one(env, model, vals, txn)?;
                        Ok(Some(json!(id)))
                    }
                    Value::Array(list) => {
                        let mut ids = Vec::with_capacity(list.len());
                        for vals in list {
                            let Value::Object(vals) = vals else {
                                return Err(OdooErr::attribute(
                                    "'list' object has no attribute 'items'",
                                ));
                            };
                            ids.push(self.create_one(env, model, vals, txn)?);
                        }
                        Ok(Some(json!(ids)))
                    }
                    _ => Err(OdooErr::attribute("'str' object has no attribute 'items'")),
                }
            }
            "load" => {
                self.check_access(env, model, "write")?;
                self.check_access(env, model, "create")?;
                if self.load_conflicts > 0 {
                    self.load_conflicts -= 1;
                    return Ok(Some(json!({
                        "ids": false,
                        "messages": [{"type": "error", "record": 0, "rows": {"from": 0, "to": 0},
                                      "message": "could not serialize access due to concurrent update\n"}],
                        "nextrow": 0,
                    })));
                }
                let fields: Vec<String> = p
                    .get(0, "fields")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .map(|v| v.as_str().unwrap_or("").to_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                let rows: Vec<Vec<Value>> = p
                    .get(1, "data")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .map(|r| r.as_array().cloned().unwrap_or_default())
                            .collect()
                    })
                    .unwrap_or_default();
                Ok(Some(self.load(env, model, &fields, &rows, txn)?))
            }
            "fields_get" => {
                p.only(method, &["allfields", "attributes"])?;
                Ok(Some(self.fields_get(
                    model,
                    p.get(0, "allfields"),
                    p.get(1, "attributes"),
                )))
            }
            "check_access_rights" => {
                p.only(method, &["operation", "raise_exception"])?;
                let op = p.str(0, "operation").unwrap_or_default();
                if !["read", "write", "create", "unlink"].contains(&op.as_str()) {
                    return Err(OdooErr::new(
                        "builtins.AssertionError",
                        "Invalid access mode",
                    ));
                }
                let raise = p.get(1, "raise_exception").map(truthy).unwrap_or(true);
                match self.check_access(env, model, &op) {
                    Ok(()) => Ok(Some(Value::Bool(true))),
                    Err(e) if raise => Err(e),
                    Err(_) => Ok(Some(Value::Bool(false))),
                }
            }
            "name_search" => {
                self.check_access(env, model, "read")?;
                let name = p.str(0, "name").unwrap_or_default();
                let operator = p.str(2, "operator").unwrap_or_else(|| "ilike".to_owned());
                let limit = p.int(3, "limit")?.or(Some(100));
                let mut domain = p.get(1, "args").cloned().unwrap_or(json!([]));
                if !name.is_empty() {
                    if let Some(a) = domain.as_array_mut() {
                        a.push(json!(["display_name", operator, name]));
                    }
                }
                let ids = self.search_ids(env, model, Some(&domain), 0, limit, None)?;
                Ok(Some(Value::Array(
                    ids.iter()
                        .map(|i| json!([i, self.display_name(model, *i)]))
                        .collect(),
                )))
            }
            // record methods: args[0] is the ids
            "read" | "write" | "unlink" | "exists" => {
                let ids = p.ids()?;
                let rest = Params {
                    args: &args[1..],
                    kwargs,
                };
                match method {
                    "read" => {
                        rest.only(method, &["fields", "load"])?;
                        self.check_access(env, model, "read")?;
                        let fields = rest.fields(0, "fields");
                        let classic = classic_load(rest.get(1, "load"));
                        let mut rows =
                            self.read_records(model, &ids, fields.as_deref(), classic)?;
                        self.translate_rows(env, model, &mut rows);
                        Ok(Some(Value::Array(rows)))
                    }
                    "write" => {
                        rest.only(method, &["vals"])?;
                        self.check_access(env, model, "write")?;
                        let vals = match rest.get(0, "vals") {
                            Some(Value::Object(m)) => m.clone(),
                            _ => {
                                return Err(OdooErr::type_error(
                                    "write() missing 1 required positional argument: 'vals'",
                                ))
                            }
                        };
                        self.write_records(env, model, &ids, &vals, txn)?;
                        Ok(Some(Value::Bool(true)))
                    }
                    "unlink" => {
                        rest.only(method, &[])?;
                        self.check_access(env, model, "unlink")?;
                        self.unlink_records(env, model, &ids, txn)?;
                        Ok(Some(Value::Bool(true)))
                    }
                    _ => Ok(Some(json!(ids
                        .iter()
                        .filter(|i| self.exists(&model.name, **i))
                        .collect::<Vec<_>>()))),
                }
            }
            "message_post" if model.mail_thread => {
                let ids = p.ids()?;
                self.check_access(env, model, "read")?;
                self.message_post(env, model, &ids, kwargs, txn).map(Some)
            }
            "message_notify" if model.mail_thread => {
                let ids = p.ids()?;
                self.message_notify(env, model, &ids, kwargs, txn).map(Some)
            }
            // The addon's @api.model method: the technical user (any user allowed to write
            // accounts here) reads the per-database secret of button payloads.
            "whatsapp_button_secret" if model.name == "whatsapp.account" => {
                p.only(method, &[])?;
                self.check_access(env, model, "write")?;
                Ok(Some(Value::String(self.button_secret.clone())))
            }
            // ir.actions.server.run with active_model/active_id(s) in the context: the
            // stand-in runs 'Update Record' actions (update_path := value) and 'Execute Code'
            // actions whose code is `raise UserError("...")`, as real Odoo 17 answers them
            // (tests/fixtures/odoo17-jsonrpc/q_ir_actions_server_run_*.json).
            "run" if model.name == "ir.actions.server" => {
                let ids = p.ids()?;
                self.server_action_run(env, &ids, txn).map(Some)
            }
            // The addon's batch of invoice portal paths: {"<id>": path}, ids not found left out;
            // the same paths and tokens as `get_portal_url`.
            "whatsapp_portal_paths" if model.name == "account.move" => {
                let ids = p.ids()?;
                self.check_access(env, model, "read")?;
                let mut paths = Map::new();
                for id in ids {
                    if self.exists(&model.name, id) {
                        let path = self.portal_path(env, model, id, txn)?;
                        paths.insert(id.to_string(), json!(path));
                    }
                }
                Ok(Some(Value::Object(paths)))
            }
            // portal.mixin: the order's portal path with its access token (made when missing).
            "get_portal_url" if model.name == "sale.order" => {
                let ids = p.ids()?;
                self.check_access(env, model, "read")?;
                let [id] = ids.as_slice() else {
                    return Err(OdooErr::value(format!(
                        "Expected singleton: sale.order{}",
                        pytuple(&ids.iter().map(|i| json!(i)).collect::<Vec<_>>())
                    )));
                };
                if !self.exists(&model.name, *id) {
                    return Err(OdooErr::missing(&model.name, &ids, env.uid));
                }
                Ok(Some(json!(self.portal_path(env, model, *id, txn)?)))
            }
            "get_base_url" => {
                let ids = p.ids()?;
                if ids.len() > 1 {
                    return Err(OdooErr::value(format!(
                        "Expected singleton or no record: {}{}",
                        model.name,
                        pytuple(&ids.iter().map(|i| json!(i)).collect::<Vec<_>>())
                    )));
                }
                Ok(Some(json!(self.base_url)))
            }
            // mail.activity.mixin: an activity per record; answers the recordset's repr, as a
            // real Odoo serialises a returned recordset.
            "activity_schedule" if model.mail_thread => {
                let ids = p.ids()?;
                self.check_access(env, model, "write")?;
                let res_model_id = self
                    .tables
                    .get("ir.model")
                    .and_then(|t| {
                        t.rows
                            .iter()
                            .find(|(_, r)| r.get("model") == Some(&json!(model.name)))
                    })
                    .map(|(id, _)| *id)
                    .ok_or_else(|| OdooErr::value(format!("no ir.model for {}", model.name)))?;
                let mut created = Vec::new();
                for id in &ids {
                    let mut vals = Map::new();
                    vals.insert("res_model_id".into(), json!(res_model_id));
                    vals.insert("res_id".into(), json!(id));
                    for key in ["summary", "note", "user_id"] {
                        if let Some(v) = kwargs.get(key) {
                            vals.insert(key.into(), v.clone());
                        }
                    }
                    if !vals.contains_key("user_id") {
                        vals.insert("user_id".into(), json!(env.uid));
                    }
                    let activity = self.model_or_err("mail.activity")?;
                    created.push(self.create_one(env, &activity, vals, txn)?);
                }
                let inner: Vec<String> = created.iter().map(|i| format!("{i},")).collect();
                Ok(Some(json!(format!("mail.activity({})", inner.join(" ")))))
            }
            "action_confirm" | "action_cancel" | "action_quotation_sent" | "action_draft"
                if model.name == "sale.order" =>
            {
                let ids = p.ids()?;
                self.check_access(env, model, "write")?;
                self.sale_action(env, model, method, &ids, txn)
            }
            _ => Err(no_attr()),
        }
    }

    // ----- search and read -----------------------------------------------------------------

    pub fn search_ids(
        &self,
        env: &Env,
        model: &Model,
        domain: Option<&Value>,
        offset: i64,
        limit: Option<i64>,
        order: Option<String>,
    ) -> Result<Vec<i64>, OdooErr> {
        let domain = domain.cloned().unwrap_or(Value::Array(Vec::new()));
        let mut node = domain::parse(self, model, &domain)?;
        let order_text = order
            .filter(|o| !o.trim().is_empty())
            .unwrap_or_else(|| model.order.clone());
        let terms = domain::parse_order(self, model, &order_text)?;
        let active_test = env.context.get("active_test").map(truthy).unwrap_or(true);
        if active_test && model.has_active() && !mentions(&domain, "active") {
            node = Node::And(
                Box::new(node),
                Box::new(Node::Leaf {
                    field: "active".into(),
                    op: "=".into(),
                    value: Value::Bool(true),
                    sub: None,
                }),
            );
        }
        let Some(table) = self.tables.get(&model.name) else {
            return Ok(Vec::new());
        };
        let offset = offset.max(0) as usize;
        let wanted = limit.filter(|l| *l >= 0).map(|l| l as usize);
        // Only the records an index names, when the domain pins them down (ids, unique keys).
        let narrowed = self.candidates(model, &node);
        let all_keys = || -> Box<dyn DoubleEndedIterator<Item = i64> + '_> {
            match &narrowed {
                Some(ids) => Box::new(ids.iter().copied().filter(|id| table.rows.contains_key(id))),
                None => Box::new(table.rows.keys().copied()),
            }
        };
        // Ordered by id only: walk the table in order and stop at the limit.
        if let [only] = terms.as_slice() {
            if only.field == "id" {
                let matching = |id: &i64| domain::matches(self, model, *id, &node);
                let keys = all_keys();
                let ids: Vec<i64> = if only.desc {
                    keys.rev()
                        .filter(matching)
                        .skip(offset)
                        .take(wanted.unwrap_or(usize::MAX))
                        .collect()
                } else {
                    keys.filter(matching)
                        .skip(offset)
                        .take(wanted.unwrap_or(usize::MAX))
                        .collect()
                };
                return Ok(ids);
            }
        }
        let mut ids: Vec<i64> = all_keys()
            .filter(|id| domain::matches(self, model, *id, &node))
            .collect();
        if !terms.is_empty() {
            let mut keyed: Vec<(Vec<Value>, i64)> = ids
                .iter()
                .map(|id| {
                    (
                        terms
                            .iter()
                            .map(|t| self.sort_key(model, *id, &t.field))
                            .collect(),
                        *id,
                    )
                })
                .collect();
            let cmp = |(ka, a): &(Vec<Value>, i64), (kb, b): &(Vec<Value>, i64)| {
                for (i, t) in terms.iter().enumerate() {
                    let (ka, kb) = (&ka[i], &kb[i]);
                    let ord = match (ka.is_null(), kb.is_null()) {
                        (true, true) => std::cmp::Ordering::Equal,
                        (true, false) => {
                            if t.nulls_first {
                                std::cmp::Ordering::Less
                            } else {
                                std::cmp::Ordering::Greater
                            }
                        }
                        (false, true) => {
                            if t.nulls_first {
                                std::cmp::Ordering::Greater
                            } else {
                                std::cmp::Ordering::Less
                            }
                        }
                        _ => {
                            let o = compare_values(ka, kb);
                            if t.desc {
                                o.reverse()
                            } else {
                                o
                            }
                        }
                    };
                    if ord != std::cmp::Ordering::Equal {
                        return ord;
                    }
                }
                a.cmp(b)
            };
            // Only the first offset + limit need sorting.
            if let Some(end) = wanted
                .map(|w| offset + w)
                .filter(|e| *e > 0 && *e < keyed.len())
            {
                keyed.select_nth_unstable_by(end - 1, cmp);
                keyed.truncate(end);
            }
            keyed.sort_by(cmp);
            ids = keyed.into_iter().map(|(_, id)| id).collect();
        }
        Ok(ids
            .into_iter()
            .skip(offset)
            .take(wanted.unwrap_or(usize::MAX))
            .collect())
    }

    /// The ids a domain can only match among (in id order), when an index says: `id = / in`,
    /// and `= / in` on a field with a unique constraint of its own; `None`: any record may.
    fn candidates(&self, model: &Model, node: &Node) -> Option<std::collections::BTreeSet<i64>> {
        match node {
            Node::And(a, b) => match (self.candidates(model, a), self.candidates(model, b)) {
                (Some(x), Some(y)) => Some(x.intersection(&y).copied().collect()),
                (x, y) => x.or(y),
            },
            Node::Or(a, b) => {
                let mut x = self.candidates(model, a)?;
                x.extend(self.candidates(model, b)?);
                Some(x)
            }
            Node::Leaf {
                field,
                op,
                value,
                sub: None,
            } if op == "="
                && self
                    .values
                    .contains_key(&(model.name.clone(), field.clone())) =>
            {
                let kind = model.field(field)?.kind.clone();
                let idx = self.values.get(&(model.name.clone(), field.clone()))?;
                Some(
                    idx.by_value
                        .get(&value_key(&kind, value))
                        .cloned()
                        .unwrap_or_default(),
                )
            }
            Node::Leaf {
                field,
                op,
                value,
                sub: None,
            } if field == "id" && (op == "=" || op == "in") => match value {
                Value::Array(items) => Some(items.iter().filter_map(Value::as_i64).collect()),
                other => Some(other.as_i64().into_iter().collect()),
            },
            Node::InStrings {
                field,
                set,
                negate: false,
                ..
            } if self
                .values
                .contains_key(&(model.name.clone(), field.clone())) =>
            {
                let kind = model.field(field)?.kind.clone();
                let idx = self.values.get(&(model.name.clone(), field.clone()))?;
                Some(
                    set.iter()
                        .filter_map(|v| {
                            idx.by_value
                                .get(&value_key(&kind, &Value::from(v.as_str())))
                        })
                        .flatten()
                        .copied()
                        .collect(),
                )
            }
            Node::InStrings {
                field,
                set,
                negate: false,
                ..
            } => {
                let ci = model
                    .uniques
                    .iter()
                    .position(|u| u.fields.len() == 1 && &u.fields[0] == field)?;
                let index = self.unique.get(&(model.name.clone(), ci))?;
                Some(
                    set.iter()
                        .filter_map(|s| {
                            let key = Value::Array(vec![Value::String(s.clone())]).to_string();
                            index.by_key.get(&key).copied()
                        })
                        .collect(),
                )
            }
            _ => None,
        }
    }

    fn sort_key(&self, model: &Model, id: i64, field: &str) -> Value {
        match self.field_kind(model, field) {
            Some(Kind::Many2one(co)) => match self.stored(model, id, field).as_i64() {
                Some(rid) => self
                    .model(co)
                    .map(|m| Value::from(self.display_name(m, rid)))
                    .unwrap_or(Value::Null),
                None => Value::Null,
            },
            Some(Kind::Boolean) => {
                Value::Bool(self.stored(model, id, field).as_bool().unwrap_or(false))
            }
            _ => self.stored(model, id, field).into_owned(),
        }
    }

    /// The value `read` returns for a field.
    pub fn read_value(&self, model: &Model, id: i64, field: &str, classic: bool) -> Value {
        let kind = self.field_kind(model, field).unwrap_or(&Kind::Char);
        let v = self.stored(model, id, field);
        match kind {
            Kind::Integer | Kind::Reference => {
                if v.is_null() {
                    json!(0)
                } else {
                    v.into_owned()
                }
            }
            Kind::Float | Kind::Monetary => json!(v.as_f64().unwrap_or(0.0)),
            Kind::Boolean => Value::Bool(v.as_bool().unwrap_or(false)),
            Kind::Many2one(co) => match v.as_i64() {
                Some(rid) if classic => json!([
                    rid,
                    self.model(co)
                        .map(|m| self.display_name(m, rid))
                        .unwrap_or_default()
                ]),
                Some(rid) => json!(rid),
                None => Value::Bool(false),
            },
            Kind::One2many(..) | Kind::Many2many(_) => json!(self.related_ids(model, id, field)),
            _ => {
                if v.is_null() {
                    Value::Bool(false)
                } else {
                    v.into_owned()
                }
            }
        }
    }

    pub fn all_field_names(&self, model: &Model) -> Vec<String> {
        let mut names: Vec<String> = model.fields.iter().map(|f| f.name.clone()).collect();
        names.extend(
            MAGIC
                .iter()
                .filter(|m| **m != "id")
                .map(|m| (*m).to_owned()),
        );
        names
    }

    pub fn read_records(
        &self,
        model: &Model,
        ids: &[i64],
        fields: Option<&[String]>,
        classic: bool,
    ) -> Result<Vec<Value>, OdooErr> {
        let all;
        let fields: &[String] = match fields {
            Some(f) if !f.is_empty() => f,
            _ => {
                all = self.all_field_names(model);
                &all
            }
        };
        for f in fields {
            if self.field_kind(model, f).is_none() {
                return Err(OdooErr::value(format!(
                    "Invalid field '{f}' on model '{}'",
                    model.name
                )));
            }
        }
        let mut out = Vec::with_capacity(ids.len());
        let mut seen = HashSet::new();
        for id in ids {
            if !self.exists(&model.name, *id) || !seen.insert(*id) {
                continue;
            }
            let mut rec = Map::new();
            rec.insert("id".into(), json!(id));
            for f in fields {
                if f != "id" {
                    rec.insert(f.clone(), self.read_value(model, *id, f, classic));
                }
            }
            out.push(Value::Object(rec));
        }
        Ok(out)
    }

    pub fn fields_get(
        &self,
        model: &Model,
        allfields: Option<&Value>,
        attributes: Option<&Value>,
    ) -> Value {
        let wanted: Option<Vec<String>> = attributes.and_then(Value::as_array).map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        });
        let only: Option<Vec<String>> = allfields.and_then(Value::as_array).map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        });
        let mut out = Map::new();
        let mut describe =
            |name: &str, kind: &Kind, string: &str, required: bool, readonly: bool| {
                if only.as_ref().is_some_and(|o| !o.iter().any(|n| n == name)) {
                    return;
                }
                let mut d = Map::new();
                d.insert("type".into(), json!(kind.odoo_type()));
                d.insert("string".into(), json!(string));
                d.insert("required".into(), json!(required));
                d.insert("readonly".into(), json!(readonly));
                if let Some(co) = kind.comodel() {
                    d.insert("relation".into(), json!(co));
                }
                if let Kind::Selection { options, .. } = kind {
                    d.insert(
                        "selection".into(),
                        Value::Array(options.iter().map(|(v, l)| json!([v, l])).collect()),
                    );
                }
                if let Some(w) = &wanted {
                    d.retain(|k, _| w.iter().any(|x| x == k));
                }
                out.insert(name.to_owned(), Value::Object(d));
            };
        for f in &model.fields {
            describe(&f.name, &f.kind, &f.string, f.required, f.readonly);
        }
        describe("id", &Kind::Integer, "ID", false, true);
        describe("display_name", &Kind::Char, "Display Name", false, true);
        describe(
            "create_uid",
            &Kind::Many2one("res.users".into()),
            "Created by",
            false,
            true,
        );
        describe("create_date", &Kind::Datetime, "Created on", false, true);
        describe(
            "write_uid",
            &Kind::Many2one("res.users".into()),
            "Last Updated by",
            false,
            true,
        );
        describe(
            "write_date",
            &Kind::Datetime,
            "Last Updated on",
            false,
            true,
        );
        Value::Object(out)
    }

    // ----- create, write, unlink -------------------------------------------------------------

    fn save(&mut self, txn: &mut Txn, model: &str, id: i64) {
        if txn.seen.insert((model.to_owned(), id)) {
            let old = self.row(model, id).cloned();
            txn.saved.push((model.to_owned(), id, old));
        }
    }

    /// Converts a value given to create/write into its stored form.
    fn convert(&self, model: &Model, field: &Field, value: &Value) -> Result<Value, OdooErr> {
        let falsy = matches!(value, Value::Null | Value::Bool(false));
        Ok(match &field.kind {
            Kind::Char | Kind::Text | Kind::Binary => match value {
                _ if falsy => Value::Null,
                Value::String(s) => Value::from(s.as_str()),
                Value::Number(n) => Value::from(n.to_string()),
                other => Value::from(pyrepr(other)),
            },
            Kind::Html => match value {
                _ if falsy => Value::Null,
                Value::String(s) => Value::from(sanitize_html(s)),
                other => Value::from(sanitize_html(&pyrepr(other))),
            },
            Kind::Selection { options, checked } => match value {
                _ if falsy => Value::Null,
                Value::String(s) if !*checked || options.iter().any(|(v, _)| v == s) => {
                    Value::from(s.as_str())
                }
                other => {
                    return Err(OdooErr::value(format!(
                        "Wrong value for {}.{}: {}",
                        model.name,
                        field.name,
                        pyrepr(other)
                    )))
                }
            },
            Kind::Integer | Kind::Reference => match value {
                _ if falsy => Value::from(0),
                Value::Bool(true) => Value::from(1),
                Value::Number(n) => Value::from(n.as_i64().unwrap_or(n.as_f64().unwrap_or(0.0) as i64)),
                Value::String(s) => Value::from(s.trim().parse::<i64>().map_err(|_| {
                    OdooErr::value(format!("invalid literal for int() with base 10: {}", pyrepr(value)))
                })?),
                other => {
                    return Err(OdooErr::type_error(format!(
                        "int() argument must be a string, a bytes-like object or a real number, not '{}'",
                        if other.is_array() { "list" } else { "dict" }
                    )))
                }
            },
            Kind::Float | Kind::Monetary => match value {
                _ if falsy => json!(0.0),
                Value::Bool(true) => json!(1.0),
                Value::Number(n) => json!(n.as_f64().unwrap_or(0.0)),
                Value::String(s) => json!(s.trim().parse::<f64>().map_err(|_| {
                    OdooErr::value(format!("could not convert string to float: {}", pyrepr(value)))
                })?),
                _ => return Err(OdooErr::type_error("float() argument must be a string or a real number")),
            },
            Kind::Boolean => Value::Bool(truthy(value)),
            Kind::Date => match value {
                _ if falsy => Value::Null,
                Value::String(s) => {
                    let d = s.get(..10).unwrap_or(s);
                    NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| {
                        OdooErr::value(format!("time data {} does not match format '%Y-%m-%d'", pyrepr(value)))
                    })?;
                    Value::from(d)
                }
                _ => return Err(OdooErr::type_error("fromisoformat: argument must be str")),
            },
            Kind::Datetime => match value {
                _ if falsy => Value::Null,
                Value::String(s) => Value::from(parse_odoo_datetime(s).ok_or_else(|| {
                    OdooErr::value(format!(
                        "time data {} does not match format '%Y-%m-%d %H:%M:%S'",
                        pyrepr(value)
                    ))
                })?),
                _ => return Err(OdooErr::type_error("fromisoformat: argument must be str")),
            },
            Kind::Many2one(co) => match value {
                _ if falsy => Value::Null,
                Value::Number(n) if n.as_i64() == Some(0) => Value::Null,
                Value::Number(n) => {
                    let id = n.as_i64().unwrap_or(-1);
                    if !self.exists(co, id) {
                        return Err(fk_error(model, &field.name));
                    }
                    Value::from(id)
                }
                other => {
                    return Err(OdooErr::new(
                        "psycopg2.errors.InvalidTextRepresentation",
                        format!("invalid input syntax for type integer: {}", pyrepr(other)),
                    ))
                }
            },
            Kind::Many2many(_) | Kind::One2many(..) => value.clone(),
        })
    }

    fn default_value(&self, env: &Env, field: &Field) -> Option<Value> {
        Some(match field.default.as_ref()? {
            Default::Value(v) => v.clone(),
            Default::Now => Value::from(now_string()),
            Default::Today => Value::from(Utc::now().format("%Y-%m-%d").to_string()),
            Default::Uid => Value::from(env.uid),
            Default::Company => Value::from(1),
        })
    }

    fn create_one(
        &mut self,
        env: &Env,
        model: &Model,
        vals: Map<String, Value>,
        txn: &mut Txn,
    ) -> Result<i64, OdooErr> {
        for k in vals.keys() {
            if model.field(k).is_none() && !MAGIC.contains(&k.as_str()) {
                return Err(OdooErr::value(format!(
                    "Invalid field '{k}' on model '{}'",
                    model.name
                )));
            }
        }
        let mut row: Row = HashMap::new();
        let mut x2many = Vec::new();
        for f in &model.fields {
            let given = vals.get(&f.name);
            let value = match given {
                Some(v) => Some(v.clone()),
                None => self.default_value(env, f),
            };
            let Some(value) = value else { continue };
            if f.kind.is_x2many() {
                x2many.push((f.clone(), value));
                continue;
            }
            let stored = self.convert(model, f, &value)?;
            row.insert(f.name.clone(), stored);
        }
        let now = now_string();
        row.insert("create_date".into(), Value::from(now.clone()));
        row.insert("write_date".into(), Value::from(now));
        row.insert("create_uid".into(), Value::from(env.uid));
        row.insert("write_uid".into(), Value::from(env.uid));
        let id = {
            let table = self.tables.entry(model.name.clone()).or_default();
            let id = table.next_id.max(1);
            table.next_id = id + 1;
            id
        };
        self.save(txn, &model.name, id);
        self.tables
            .entry(model.name.clone())
            .or_default()
            .rows
            .insert(id, row);
        self.after_change(env, model, id, txn)?;
        for (f, value) in x2many {
            self.apply_x2many(env, model, id, &f, &value, txn)?;
        }
        self.bus_note(&model.name, id, &vals, true, txn);
        Ok(id)
    }

    /// Inserts a record as the superuser with an explicit id (seeding).
    pub fn insert_with_id(
        &mut self,
        model_name: &str,
        id: i64,
        vals: Map<String, Value>,
    ) -> Result<i64, OdooErr> {
        let model = self.model_or_err(model_name)?;
        let env = Env {
            uid: 1,
            context: Map::new(),
        };
        {
            let table = self.tables.entry(model.name.clone()).or_default();
            table.next_id = id;
        }
        let mut txn = Txn::default();
        match self.create_one(&env, &model, vals, &mut txn) {
            Ok(new_id) => {
                let table = self.tables.entry(model.name.clone()).or_default();
                table.next_id = table.rows.keys().max().copied().unwrap_or(0) + 1;
                Ok(new_id)
            }
            Err(e) => {
                self.rollback(txn);
                Err(e)
            }
        }
    }

    /// Creates records as the given user, outside any RPC (seeding and test helpers).
    pub fn create_as(
        &mut self,
        uid: i64,
        model_name: &str,
        vals: Map<String, Value>,
    ) -> Result<i64, OdooErr> {
        let env = Env {
            uid,
            context: Map::new(),
        };
        self.execute(
            &env,
            model_name,
            "create",
            &[Value::Object(vals)],
            &Map::new(),
        )
        .map(|v| v.and_then(|v| v.as_i64()).unwrap_or(0))
    }

    /// Writes as the given user, outside any RPC (test helpers).
    pub fn write_as(
        &mut self,
        uid: i64,
        model_name: &str,
        ids: &[i64],
        vals: Map<String, Value>,
    ) -> Result<(), OdooErr> {
        let env = Env {
            uid,
            context: Map::new(),
        };
        self.execute(
            &env,
            model_name,
            "write",
            &[json!(ids), Value::Object(vals)],
            &Map::new(),
        )
        .map(|_| ())
    }

    pub fn write_records(
        &mut self,
        env: &Env,
        model: &Model,
        ids: &[i64],
        vals: &Map<String, Value>,
        txn: &mut Txn,
    ) -> Result<(), OdooErr> {
        let missing: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|i| !self.exists(&model.name, *i))
            .collect();
        if !missing.is_empty() {
            return Err(OdooErr::missing(&model.name, &missing, env.uid));
        }
        let mut converted = Vec::new();
        let mut x2many = Vec::new();
        for (k, v) in vals {
            let Some(f) = model.field(k) else {
                if MAGIC.contains(&k.as_str()) {
                    continue;
                }
                return Err(OdooErr::value(format!(
                    "Invalid field '{k}' on model '{}'",
                    model.name
                )));
            };
            if f.kind.is_x2many() {
                x2many.push((f.clone(), v.clone()));
            } else if let (true, Some(lang)) = (f.translate, translation_lang(env)) {
                // Written in another language than English: that language's value only.
                converted.push((translation_key(k, lang), self.convert(model, f, v)?));
            } else {
                converted.push((k.clone(), self.convert(model, f, v)?));
            }
        }
        let now = now_string();
        // The addon's `whatsapp.message.write`: a state that would move a message back is not
        // written (the other values are).
        let new_state = (model.name == "whatsapp.message")
            .then(|| vals.get("state").and_then(Value::as_str))
            .flatten();
        let retry = env.context.get("whatsapp_retry").is_some_and(truthy);
        for id in ids {
            self.save(txn, &model.name, *id);
            if let Some(row) = self
                .tables
                .get_mut(&model.name)
                .and_then(|t| t.rows.get_mut(id))
            {
                let held = new_state.is_some_and(|new| {
                    let old = row.get("state").and_then(Value::as_str).unwrap_or("");
                    !state_may_move(old, new, retry)
                });
                for (k, v) in &converted {
                    if held && k == "state" {
                        continue;
                    }
                    row.insert(k.clone(), v.clone());
                }
                row.insert("write_date".into(), Value::from(now.clone()));
                row.insert("write_uid".into(), Value::from(env.uid));
            }
            self.after_change(env, model, *id, txn)?;
            for (f, v) in &x2many {
                self.apply_x2many(env, model, *id, f, v, txn)?;
            }
            self.bus_note(&model.name, *id, vals, false, txn);
            txn.writes.push((model.name.clone(), *id));
        }
        Ok(())
    }

    fn apply_x2many(
        &mut self,
        env: &Env,
        model: &Model,
        id: i64,
        field: &Field,
        value: &Value,
        txn: &mut Txn,
    ) -> Result<(), OdooErr> {
        let commands: Vec<Value> = match value {
            Value::Array(a) => a.clone(),
            Value::Null | Value::Bool(false) => vec![json!([5])],
            _ => {
                return Err(OdooErr::value(format!(
                    "Wrong value for {}.{}: {}",
                    model.name,
                    field.name,
                    pyrepr(value)
                )))
            }
        };
        let comodel = self.model_or_err(field.kind.comodel().unwrap_or(""))?;
        match &field.kind {
            Kind::Many2many(_) => {
                let mut ids: Vec<i64> = self.related_ids(model, id, &field.name);
                let plain_ids = commands.iter().all(Value::is_i64);
                let commands = if plain_ids {
                    vec![json!([6, 0, commands])]
                } else {
                    commands
                };
                for c in &commands {
                    let c = c.as_array().cloned().unwrap_or_default();
                    let code = c.first().and_then(Value::as_i64).unwrap_or(-1);
                    let arg = c.get(1).and_then(Value::as_i64).unwrap_or(0);
                    match code {
                        6 => {
                            ids = c
                                .get(2)
                                .and_then(Value::as_array)
                                .map(|a| a.iter().filter_map(Value::as_i64).collect())
                                .unwrap_or_default()
                        }
                        5 => ids.clear(),
                        4 => {
                            if !ids.contains(&arg) {
                                ids.push(arg)
                            }
                        }
                        3 => ids.retain(|i| *i != arg),
                        0 => {
                            let vals = c
                                .get(2)
                                .and_then(Value::as_object)
                                .cloned()
                                .unwrap_or_default();
                            let new_id = self.create_one(env, &comodel, vals, txn)?;
                            ids.push(new_id);
                        }
                        _ => {
                            return Err(OdooErr::value(format!(
                                "Wrong value for {}.{}: {}",
                                model.name,
                                field.name,
                                pyrepr(value)
                            )))
                        }
                    }
                }
                if let Some(bad) = ids.iter().find(|i| !self.exists(&comodel.name, **i)) {
                    let _ = bad;
                    return Err(fk_error(model, &field.name));
                }
                if let Some(row) = self
                    .tables
                    .get_mut(&model.name)
                    .and_then(|t| t.rows.get_mut(&id))
                {
                    row.insert(field.name.clone(), json!(ids));
                }
            }
            Kind::One2many(_, inverse) => {
                for c in &commands {
                    let c = c.as_array().cloned().unwrap_or_default();
                    let code = c.first().and_then(Value::as_i64).unwrap_or(-1);
                    let arg = c.get(1).and_then(Value::as_i64).unwrap_or(0);
                    let vals = c
                        .get(2)
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default();
                    match code {
                        0 => {
                            let mut vals = vals;
                            vals.insert(inverse.clone(), json!(id));
                            self.create_one(env, &comodel, vals, txn)?;
                        }
                        1 => self.write_records(env, &comodel, &[arg], &vals, txn)?,
                        2 => self.unlink_records(env, &comodel, &[arg], txn)?,
                        4 => {
                            let mut v = Map::new();
                            v.insert(inverse.clone(), json!(id));
                            self.write_records(env, &comodel, &[arg], &v, txn)?;
                        }
                        _ => {
                            return Err(OdooErr::value(format!(
                                "Wrong value for {}.{}: {}",
                                model.name,
                                field.name,
                                pyrepr(value)
                            )))
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Stored computes, related fields, required fields, constraints.
    fn after_change(
        &mut self,
        _env: &Env,
        model: &Model,
        id: i64,
        _txn: &mut Txn,
    ) -> Result<(), OdooErr> {
        // related stored fields
        let mut updates: Vec<(String, Value)> = Vec::new();
        for f in &model.fields {
            if let Some(path) = &f.related {
                let mut cur_model: Arc<Model> = self.model_or_err(&model.name)?;
                let mut cur_id = Some(id);
                let mut value = Value::Null;
                for (i, step) in path.iter().enumerate() {
                    let Some(cid) = cur_id else { break };
                    let v = self.stored(&cur_model, cid, step).into_owned();
                    if i + 1 == path.len() {
                        value = v;
                    } else {
                        cur_id = v.as_i64();
                        match self
                            .field_kind(&cur_model, step)
                            .and_then(|k| k.comodel().map(str::to_owned))
                        {
                            Some(co) => match self.model(&co) {
                                Some(m) => cur_model = m.clone(),
                                None => break,
                            },
                            None => break,
                        }
                    }
                }
                updates.push((f.name.clone(), value));
            }
        }
        let row_snapshot = self.row(&model.name, id).cloned().unwrap_or_default();
        let text = |f: &str| {
            row_snapshot
                .get(f)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        match model.name.as_str() {
            "res.partner" => {
                // recursion check
                let mut seen = HashSet::new();
                let mut cur = row_snapshot.get("parent_id").and_then(Value::as_i64);
                while let Some(p) = cur {
                    if p == id || !seen.insert(p) {
                        return Err(OdooErr::validation(
                            "You cannot create recursive Partner hierarchies.",
                        ));
                    }
                    cur = self
                        .row("res.partner", p)
                        .and_then(|r| r.get("parent_id"))
                        .and_then(Value::as_i64);
                }
                updates.push((
                    "complete_name".into(),
                    Value::from(self.display_name(model, id)),
                ));
                // The commercial entity: the first company up the parents, else the top one.
                let mut entity = id;
                let mut cur = Some(id);
                let mut hops = 0;
                while let Some(p) = cur {
                    entity = p;
                    let row = if p == id {
                        Some(&row_snapshot)
                    } else {
                        self.row("res.partner", p)
                    };
                    let is_company = row
                        .and_then(|r| r.get("is_company"))
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    hops += 1;
                    if is_company || hops > 32 {
                        break;
                    }
                    cur = row.and_then(|r| r.get("parent_id")).and_then(Value::as_i64);
                }
                updates.push(("commercial_partner_id".into(), json!(entity)));
            }
            "account.move.line" => {
                let qty = row_snapshot
                    .get("quantity")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0);
                let price = row_snapshot
                    .get("price_unit")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0);
                updates.push(("price_subtotal".into(), json!(qty * price)));
            }
            "sale.order.line" => {
                let qty = row_snapshot
                    .get("product_uom_qty")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0);
                let price = row_snapshot
                    .get("price_unit")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0);
                updates.push(("price_subtotal".into(), json!(qty * price)));
            }
            "sale.order" => {
                // Computed from the customer unless given, as in Odoo.
                for f in ["partner_invoice_id", "partner_shipping_id"] {
                    if row_snapshot.get(f).is_none_or(Value::is_null) {
                        updates.push((
                            f.into(),
                            row_snapshot
                                .get("partner_id")
                                .cloned()
                                .unwrap_or(Value::Null),
                        ));
                    }
                }
            }
            "whatsapp.conversation" => {
                let expires = text("last_inbound_at")
                    .and_then(|s| NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M:%S").ok())
                    .map(|t| {
                        (t + Duration::hours(24))
                            .format("%Y-%m-%d %H:%M:%S")
                            .to_string()
                    });
                updates.push((
                    "window_expires_at".into(),
                    expires.map(Value::from).unwrap_or(Value::Null),
                ));
            }
            "whatsapp.template" => {
                for (k, v) in template_components(text("components_json").as_deref()) {
                    updates.push((k.to_owned(), v));
                }
            }
            "ir.attachment" => {
                let size = text("datas").map(|d| base64_len(&d)).unwrap_or(0);
                updates.push(("file_size".into(), json!(size)));
            }
            "mail.activity" => {
                // Odoo subscribes the assigned user to the record's followers: a model without
                // a chatter cannot have activities.
                let res_model = row_snapshot
                    .get("res_model_id")
                    .and_then(Value::as_i64)
                    .and_then(|m| self.row("ir.model", m))
                    .and_then(|r| r.get("model"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .unwrap_or_default();
                match self.model(&res_model) {
                    Some(m) if m.mail_thread => {}
                    Some(_) => {
                        return Err(OdooErr::attribute(format!(
                            "'{res_model}' object has no attribute 'message_subscribe'"
                        )))
                    }
                    None => return Err(OdooErr::key(format!("'{res_model}'"))),
                }
            }
            "whatsapp.account" => {
                if row_snapshot
                    .get("throughput_mps")
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
                    <= 0
                {
                    return Err(OdooErr::validation(
                        "The operation cannot be completed: The throughput must be a positive number of messages per second.",
                    ));
                }
                let is_default = row_snapshot
                    .get("is_default")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let company = row_snapshot
                    .get("company_id")
                    .cloned()
                    .unwrap_or(Value::Null);
                if is_default {
                    let clash = self.tables.get("whatsapp.account").is_some_and(|t| {
                        t.rows.iter().any(|(oid, r)| {
                            *oid != id
                                && r.get("is_default")
                                    .and_then(Value::as_bool)
                                    .unwrap_or(false)
                                && r.get("company_id").cloned().unwrap_or(Value::Null) == company
                        })
                    });
                    if clash {
                        return Err(OdooErr::validation("The operation cannot be completed: A company can have only one default WhatsApp account: untick 'Default for the company' on the other account first."));
                    }
                }
            }
            _ => {}
        }
        if let Some(row) = self
            .tables
            .get_mut(&model.name)
            .and_then(|t| t.rows.get_mut(&id))
        {
            for (k, v) in updates {
                row.insert(k, v);
            }
        }
        // NOT NULL
        let row = self.row(&model.name, id).cloned().unwrap_or_default();
        for f in &model.fields {
            if f.required && !f.kind.is_x2many() && row.get(&f.name).is_none_or(Value::is_null) {
                return Err(OdooErr::validation(format!(
                    "The operation cannot be completed:\n- Create/update: a mandatory field is not set.\n- Delete: another model requires the record being deleted. If possible, archive it instead.\n\nModel: {} ({})\nField: {} ({})\n",
                    model.description, model.name, f.string, f.name
                )));
            }
        }
        // SQL unique constraints (NULLs never clash), through the index.
        for (ci, u) in model.uniques.iter().enumerate() {
            let key = unique_key(&u.fields, &row);
            let holder = key.as_ref().and_then(|k| {
                self.unique
                    .get(&(model.name.clone(), ci))
                    .and_then(|idx| idx.by_key.get(k))
                    .copied()
            });
            if let (Some(k), Some(other)) = (&key, holder) {
                let still = other != id
                    && self
                        .row(&model.name, other)
                        .and_then(|r| unique_key(&u.fields, r))
                        .as_ref()
                        == Some(k);
                if still {
                    return Err(OdooErr::validation(format!(
                        "The operation cannot be completed: {}",
                        u.message
                    )));
                }
            }
            let idx = self.unique.entry((model.name.clone(), ci)).or_default();
            if let Some(old) = idx.by_id.remove(&id) {
                if idx.by_key.get(&old) == Some(&id) {
                    idx.by_key.remove(&old);
                }
            }
            if let Some(k) = key {
                idx.by_key.insert(k.clone(), id);
                idx.by_id.insert(id, k);
            }
        }
        self.index_values(model, id);
        Ok(())
    }

    pub fn unlink_records(
        &mut self,
        env: &Env,
        model: &Model,
        ids: &[i64],
        txn: &mut Txn,
    ) -> Result<(), OdooErr> {
        let missing: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|i| !self.exists(&model.name, *i))
            .collect();
        if !missing.is_empty() {
            return Err(OdooErr::missing(&model.name, &missing, env.uid));
        }
        if model.name == "sale.order" {
            for id in ids {
                let state = self.stored(model, *id, "state").into_owned();
                if state == json!("sent") || state == json!("sale") {
                    return Err(OdooErr::user(
                        "You can not delete a sent quotation or a confirmed sales order. You must first cancel it.",
                    ));
                }
            }
        }
        for id in ids {
            self.save(txn, &model.name, *id);
            if let Some(t) = self.tables.get_mut(&model.name) {
                t.rows.remove(id);
            }
            self.reindex(&model.name, *id);
        }
        // Many2one fields pointing at the deleted records.
        let referencing: Vec<(Arc<Model>, Field)> = self
            .schema
            .models
            .values()
            .flat_map(|m| {
                m.fields
                    .iter()
                    .filter(|f| f.kind == Kind::Many2one(model.name.clone()) && f.related.is_none())
                    .map(move |f| (m.clone(), f.clone()))
            })
            .collect();
        for (m, f) in referencing {
            let hits: Vec<i64> = self
                .tables
                .get(&m.name)
                .map(|t| {
                    t.rows
                        .iter()
                        .filter(|(_, r)| {
                            r.get(&f.name)
                                .and_then(Value::as_i64)
                                .is_some_and(|v| ids.contains(&v))
                        })
                        .map(|(i, _)| *i)
                        .collect()
                })
                .unwrap_or_default();
            if hits.is_empty() {
                continue;
            }
            match f.ondelete {
                OnDelete::Restrict => return Err(fk_error(&m, &f.name)),
                OnDelete::Cascade => self.unlink_records(env, &m, &hits, txn)?,
                OnDelete::SetNull => {
                    if f.required {
                        return Err(fk_error(&m, &f.name));
                    }
                    for h in hits {
                        self.save(txn, &m.name, h);
                        if let Some(r) = self
                            .tables
                            .get_mut(&m.name)
                            .and_then(|t| t.rows.get_mut(&h))
                        {
                            r.insert(f.name.clone(), Value::Null);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    // ----- load ------------------------------------------------------------------------------

    fn load(
        &mut self,
        env: &Env,
        model: &Model,
        fields: &[String],
        rows: &[Vec<Value>],
        txn: &mut Txn,
    ) -> Result<Value, OdooErr> {
        // Columns: ".id", "field", "field/.id".
        enum Col {
            DbId,
            Field(Field, bool),
        }
        let mut cols = Vec::with_capacity(fields.len());
        for f in fields {
            if f == ".id" {
                cols.push(Col::DbId);
                continue;
            }
            let (name, by_id) = match f.strip_suffix("/.id") {
                Some(n) => (n, true),
                None => (f.as_str(), false),
            };
            let Some(field) = model.field(name) else {
                return Err(OdooErr::key(name));
            };
            cols.push(Col::Field(field.clone(), by_id));
        }
        let tz = self.input_tz(env);
        let mut messages = Vec::new();
        let mut plans: Vec<(usize, Option<i64>, Map<String, Value>)> = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let mut err = |field: &str, message: String, more: Option<(String, Value)>| {
                let mut m = json!({"rows": {"from": i, "to": i}, "type": "error", "record": i, "field": field, "message": message});
                if let (Some((label, info)), Some(o)) = (more, m.as_object_mut()) {
                    o.insert("moreinfo".into(), info);
                    o.insert("field_name".into(), json!(label));
                }
                messages.push(m);
            };
            let mut db_id = None;
            let mut vals = Map::new();
            for (col, cell) in cols.iter().zip(row) {
                let s = match cell {
                    Value::String(s) => s.clone(),
                    Value::Null | Value::Bool(false) => String::new(),
                    other => other.to_string(),
                };
                match col {
                    Col::DbId => {
                        if s.is_empty() {
                            continue;
                        }
                        match s
                            .parse::<i64>()
                            .ok()
                            .filter(|id| self.exists(&model.name, *id))
                        {
                            Some(id) => db_id = Some(id),
                            None => err(".id", format!("Unknown database identifier '{s}'"), None),
                        }
                    }
                    Col::Field(f, by_id) => {
                        if s.is_empty() {
                            vals.insert(f.name.clone(), Value::Bool(false));
                            continue;
                        }
                        match load_cell(self, f, *by_id, &s, tz) {
                            Ok(v) => {
                                vals.insert(f.name.clone(), v);
                            }
                            Err((m, more)) => {
                                err(&f.name, m, more.map(|info| (f.string.clone(), info)))
                            }
                        }
                    }
                }
            }
            plans.push((i, db_id, vals));
        }
        if messages.is_empty() {
            let mut ids = Vec::new();
            for (i, db_id, vals) in plans {
                let env = Env {
                    uid: env.uid,
                    context: env.context.clone(),
                };
                let res = match db_id {
                    Some(id) => self
                        .write_records(&env, model, &[id], &vals, txn)
                        .map(|_| id),
                    None => self.create_one(&env, model, vals, txn),
                };
                match res {
                    Ok(id) => ids.push(id),
                    Err(e) => {
                        messages.push(json!({"rows": {"from": i, "to": i}, "type": "error", "record": i, "message": e.message}));
                        break;
                    }
                }
            }
            if messages.is_empty() {
                return Ok(json!({"ids": ids, "messages": [], "nextrow": 0}));
            }
        }
        // Undo whatever was applied: load reports errors in its result, the call succeeds.
        let applied = std::mem::take(txn);
        self.rollback(applied);
        Ok(json!({"ids": false, "messages": messages, "nextrow": 0}))
    }

    /// Time zone of `load`'s naive datetimes: the context's `tz`, else the user's, else UTC.
    fn input_tz(&self, env: &Env) -> Tz {
        let from_name = |n: &str| match n {
            "UTC" | "Etc/UTC" | "GMT" => Some(Tz::Utc),
            n if n.starts_with("Europe/") && EU_CET.contains(&&n[7..]) => Some(Tz::Cet),
            _ => None,
        };
        if let Some(tz) = env
            .context
            .get("tz")
            .and_then(Value::as_str)
            .and_then(from_name)
        {
            return tz;
        }
        let user_tz = self
            .row("res.users", env.uid)
            .and_then(|r| r.get("tz"))
            .and_then(Value::as_str)
            .and_then(from_name);
        user_tz.unwrap_or(Tz::Utc)
    }

    // ----- mail.thread and sale.order ----------------------------------------------------------

    fn message_post(
        &mut self,
        env: &Env,
        model: &Model,
        ids: &[i64],
        kwargs: &Map<String, Value>,
        txn: &mut Txn,
    ) -> Result<Value, OdooErr> {
        if ids.len() != 1 {
            let idv: Vec<Value> = ids.iter().map(|i| json!(i)).collect();
            let inner = pytuple(&idv);
            let inner = if ids.is_empty() {
                "()".to_owned()
            } else {
                inner
            };
            return Err(OdooErr::value(format!(
                "Expected singleton: {}{}",
                model.name, inner
            )));
        }
        let id = ids[0];
        if !self.exists(&model.name, id) {
            return Err(OdooErr::missing(&model.name, ids, env.uid));
        }
        let body = kwargs.get("body").and_then(Value::as_str).unwrap_or("");
        let html = kwargs.get("body_is_html").map(truthy).unwrap_or(false);
        let body = if html {
            body.to_owned()
        } else {
            html_escape(body)
        };
        let subtype = match kwargs.get("subtype_xmlid").and_then(Value::as_str) {
            Some("mail.mt_comment") => json!(1),
            Some("mail.mt_note") | None => json!(2),
            Some(other) => {
                return Err(OdooErr::value(format!(
                    "External ID not found in the system: {other}"
                )))
            }
        };
        let subtype = kwargs
            .get("subtype_id")
            .filter(|v| v.is_i64())
            .cloned()
            .unwrap_or(subtype);
        let author = self
            .row("res.users", env.uid)
            .and_then(|r| r.get("partner_id"))
            .cloned()
            .unwrap_or(Value::Null);
        let mut vals = Map::new();
        vals.insert("model".into(), json!(model.name));
        vals.insert("res_id".into(), json!(id));
        vals.insert("body".into(), json!(body));
        vals.insert(
            "message_type".into(),
            kwargs
                .get("message_type")
                .cloned()
                .unwrap_or(json!("notification")),
        );
        vals.insert("subtype_id".into(), subtype);
        vals.insert("author_id".into(), author);
        vals.insert("record_name".into(), json!(self.display_name(model, id)));
        if let Some(s) = kwargs.get("subject") {
            vals.insert("subject".into(), s.clone());
        }
        if let Some(p) = kwargs.get("partner_ids") {
            vals.insert("partner_ids".into(), p.clone());
        }
        if let Some(a) = kwargs.get("attachment_ids") {
            vals.insert("attachment_ids".into(), a.clone());
        }
        let mail = self.model_or_err("mail.message")?;
        let mid = self.create_one(env, &mail, vals, txn)?;
        Ok(json!(mid))
    }

    /// `message_notify`: a message to `partner_ids` (their inbox, or e-mail) about a record,
    /// which its chatter does not show (`user_notification`). On an empty recordset, the
    /// record is the `model` and `res_id` given (any model, chatter or not).
    fn message_notify(
        &mut self,
        env: &Env,
        model: &Model,
        ids: &[i64],
        kwargs: &Map<String, Value>,
        txn: &mut Txn,
    ) -> Result<Value, OdooErr> {
        if ids.len() > 1 {
            let idv: Vec<Value> = ids.iter().map(|i| json!(i)).collect();
            return Err(OdooErr::value(format!(
                "Expected singleton: {}{}",
                model.name,
                pytuple(&idv)
            )));
        }
        let partners: Vec<i64> = kwargs
            .get("partner_ids")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default();
        if partners.is_empty() {
            // Odoo logs "Message notify called without recipient_ids, skipping".
            return Ok(Value::Bool(false));
        }
        let (res_model, res_id) = match ids.first() {
            Some(id) => (json!(model.name), json!(id)),
            None => match (kwargs.get("model"), kwargs.get("res_id")) {
                (Some(m), Some(r)) if truthy(m) && truthy(r) => (m.clone(), r.clone()),
                _ => (Value::Bool(false), Value::Bool(false)),
            },
        };
        let subtype = match kwargs.get("subtype_xmlid").and_then(Value::as_str) {
            Some("mail.mt_comment") => json!(1),
            Some("mail.mt_note") | None => json!(2),
            Some(other) => {
                return Err(OdooErr::value(format!(
                    "External ID not found in the system: {other}"
                )))
            }
        };
        let author = self
            .row("res.users", env.uid)
            .and_then(|r| r.get("partner_id"))
            .cloned()
            .unwrap_or(Value::Null);
        let body = kwargs.get("body").and_then(Value::as_str).unwrap_or("");
        let mut vals = Map::new();
        vals.insert("model".into(), res_model);
        vals.insert("res_id".into(), res_id);
        vals.insert("body".into(), json!(html_escape(body)));
        vals.insert("message_type".into(), json!("user_notification"));
        vals.insert("subtype_id".into(), subtype);
        vals.insert("author_id".into(), author);
        vals.insert(
            "record_name".into(),
            kwargs
                .get("record_name")
                .cloned()
                .unwrap_or(Value::Bool(false)),
        );
        if let Some(s) = kwargs.get("subject") {
            vals.insert("subject".into(), s.clone());
        }
        vals.insert("partner_ids".into(), json!(partners));
        let mail = self.model_or_err("mail.message")?;
        let mid = self.create_one(env, &mail, vals, txn)?;
        Ok(json!(mid))
    }

    /// Puts the context language's values of translated fields in read results.
    fn translate_rows(&self, env: &Env, model: &Model, rows: &mut [Value]) {
        let Some(lang) = translation_lang(env) else {
            return;
        };
        for row in rows.iter_mut() {
            let Some(obj) = row.as_object_mut() else {
                continue;
            };
            let Some(id) = obj.get("id").and_then(Value::as_i64) else {
                continue;
            };
            for f in model.fields.iter().filter(|f| f.translate) {
                if !obj.contains_key(&f.name) {
                    continue;
                }
                if let Some(v) = self
                    .row(&model.name, id)
                    .and_then(|r| r.get(&translation_key(&f.name, lang)))
                    .filter(|v| !v.is_null())
                {
                    obj.insert(f.name.clone(), v.clone());
                }
            }
        }
    }

    /// portal.mixin's path of an order or an invoice with its access token, made (and
    /// written) when the record has none yet, as `_portal_ensure_token` does.
    pub(super) fn portal_path(
        &mut self,
        env: &Env,
        model: &Model,
        id: i64,
        txn: &mut Txn,
    ) -> Result<String, OdooErr> {
        let token = match self.stored(model, id, "access_token").as_str() {
            Some(t) if !t.is_empty() => t.to_owned(),
            _ => {
                let token = format!(
                    "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
                    fastrand::u32(..),
                    fastrand::u16(..),
                    fastrand::u16(..0xfff),
                    fastrand::u16(..0xfff),
                    fastrand::u64(..0xffff_ffff_ffff)
                );
                let mut vals = Map::new();
                vals.insert("access_token".into(), json!(token));
                self.write_records(env, model, &[id], &vals, txn)?;
                token
            }
        };
        let kind = if model.name == "sale.order" {
            "orders"
        } else {
            "invoices"
        };
        Ok(format!("/my/{kind}/{id}?access_token={token}"))
    }

    fn sale_action(
        &mut self,
        env: &Env,
        model: &Model,
        method: &str,
        ids: &[i64],
        txn: &mut Txn,
    ) -> Result<Option<Value>, OdooErr> {
        let missing: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|i| !self.exists(&model.name, *i))
            .collect();
        if !missing.is_empty() {
            return Err(OdooErr::missing(&model.name, &missing, env.uid));
        }
        let state = |db: &Db, id: i64| {
            db.stored(model, id, "state")
                .as_str()
                .unwrap_or("")
                .to_owned()
        };
        let mut set =
            |db: &mut Db, state: &str, extra: Option<(&str, Value)>| -> Result<(), OdooErr> {
                let mut vals = Map::new();
                vals.insert("state".into(), json!(state));
                if let Some((k, v)) = extra {
                    vals.insert(k.into(), v);
                }
                db.write_records(env, model, ids, &vals, txn)
            };
        match method {
            "action_confirm" => {
                let bad: Vec<String> = ids
                    .iter()
                    .filter(|i| !["draft", "sent"].contains(&state(self, **i).as_str()))
                    .map(|i| self.display_name(model, *i))
                    .collect();
                if !bad.is_empty() {
                    return Err(OdooErr::user(format!(
                        "The following orders are not in a state requiring confirmation: {}",
                        bad.join(", ")
                    )));
                }
                set(self, "sale", Some(("date_order", json!(now_string()))))?;
                Ok(Some(Value::Bool(true)))
            }
            "action_quotation_sent" => {
                if ids.iter().any(|i| state(self, *i) != "draft") {
                    return Err(OdooErr::user(
                        "Only draft orders can be marked as sent directly.",
                    ));
                }
                set(self, "sent", None)?;
                Ok(None)
            }
            "action_draft" => {
                set(self, "draft", None)?;
                Ok(Some(Value::Bool(true)))
            }
            _ => {
                if ids
                    .iter()
                    .any(|i| self.stored(model, *i, "locked").as_bool().unwrap_or(false))
                {
                    return Err(OdooErr::user(
                        "You cannot cancel a locked order. Please unlock it first if you want to cancel it.",
                    ));
                }
                let warn = !env
                    .context
                    .get("disable_cancel_warning")
                    .map(truthy)
                    .unwrap_or(false);
                if warn && ids.iter().any(|i| state(self, *i) != "draft") {
                    let first = ids.first().copied().unwrap_or(0);
                    let type_name =
                        if ["draft", "sent", "cancel"].contains(&state(self, first).as_str()) {
                            "Quotation"
                        } else {
                            "Sales Order"
                        };
                    return Ok(Some(json!({
                        "name": format!("Cancel {type_name}"),
                        "view_mode": "form",
                        "res_model": "sale.order.cancel",
                        "view_id": 866,
                        "type": "ir.actions.act_window",
                        "context": {
                            "default_template_id": 13,
                            "default_order_id": first,
                            "mark_so_as_canceled": true,
                            "default_email_layout_xmlid": "mail.mail_notification_layout_with_responsible_signature",
                            "model_description": type_name
                        },
                        "target": "new"
                    })));
                }
                set(self, "cancel", None)?;
                Ok(Some(Value::Bool(true)))
            }
        }
    }
}

impl Db {
    fn server_action_run(
        &mut self,
        env: &Env,
        ids: &[i64],
        txn: &mut Txn,
    ) -> Result<Value, OdooErr> {
        let actions = self
            .model("ir.actions.server")
            .cloned()
            .ok_or_else(|| OdooErr::key("ir.actions.server"))?;
        let missing: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|i| !self.exists("ir.actions.server", *i))
            .collect();
        if !missing.is_empty() {
            return Err(OdooErr::missing("ir.actions.server", &missing, env.uid));
        }
        let text = |db: &Db, id: i64, f: &str| {
            db.stored(&actions, id, f).as_str().unwrap_or("").to_owned()
        };
        for id in ids {
            let model_name = text(self, *id, "model_name");
            let model = self
                .model(&model_name)
                .cloned()
                .ok_or_else(|| OdooErr::key(model_name.clone()))?;
            self.check_access(env, &model, "write")?;
            let active_model = env.context.get("active_model").and_then(Value::as_str);
            let targets: Vec<i64> = if active_model == Some(model_name.as_str()) {
                match env.context.get("active_ids").and_then(Value::as_array) {
                    Some(a) => a.iter().filter_map(Value::as_i64).collect(),
                    None => env
                        .context
                        .get("active_id")
                        .and_then(Value::as_i64)
                        .into_iter()
                        .collect(),
                }
            } else {
                Vec::new()
            };
            match text(self, *id, "state").as_str() {
                "object_write" => {
                    let field = text(self, *id, "update_path");
                    let value = self.stored(&actions, *id, "value").into_owned();
                    let mut vals = Map::new();
                    vals.insert(field, value);
                    self.write_records(env, &model, &targets, &vals, txn)?;
                }
                "code" => {
                    let code = text(self, *id, "code");
                    let message = code
                        .trim()
                        .strip_prefix("raise UserError(")
                        .and_then(|rest| rest.strip_suffix(')'))
                        .map(|m| m.trim().trim_matches(|c| c == '"' || c == '\'').to_owned());
                    return Err(match message {
                        Some(m) => OdooErr::user(m),
                        None => OdooErr::value(format!(
                            "the stand-in runs only `raise UserError(\"...\")` code actions, not: {code}"
                        )),
                    });
                }
                other => {
                    return Err(OdooErr::value(format!(
                        "the stand-in does not run server actions of type {other}"
                    )))
                }
            }
        }
        Ok(Value::Bool(false))
    }
}

/// The error Odoo gives for a foreign key violation (insert/update with a missing target, or
/// delete of a record a restrict/required many2one points at).
/// The language of a call's context when it is not English (translated fields keep English in
/// the row itself, other languages beside it).
/// The addon's `state_may_move` (`models/whatsapp_message.py`): a message's state moves forward
/// along `queued/cancelled < sending < sent < delivered < read < failed`; the ways back are the
/// daemon putting back a claimed message (`sending` → `queued`) and a user's Retry (`failed` or
/// `cancelled` → `queued`, `retry`); `failed` and `received` are final.
pub fn state_may_move(old: &str, new: &str, retry: bool) -> bool {
    fn rank(state: &str) -> Option<u8> {
        Some(match state {
            "queued" | "cancelled" => 0,
            "sending" => 1,
            "sent" => 2,
            "delivered" => 3,
            "read" => 4,
            "failed" => 5,
            _ => return None,
        })
    }
    if old == new || old.is_empty() {
        return true;
    }
    if matches!(old, "failed" | "cancelled") && new == "queued" {
        return retry;
    }
    if matches!(old, "failed" | "received") || new == "received" {
        return false;
    }
    if old == "cancelled" && new == "sending" {
        return false;
    }
    if matches!(
        (old, new),
        ("sending", "queued") | ("queued", "cancelled") | ("sending", "cancelled")
    ) {
        return true;
    }
    matches!((rank(old), rank(new)), (Some(o), Some(n)) if n > o)
}

fn translation_lang(env: &Env) -> Option<&str> {
    env.context
        .get("lang")
        .and_then(Value::as_str)
        .filter(|l| !l.is_empty() && *l != "en_US")
}

/// Where a translated field's value in `lang` is kept in a row.
pub fn translation_key(field: &str, lang: &str) -> String {
    format!("{field}@{lang}")
}

fn fk_error(model: &Model, field: &str) -> OdooErr {
    OdooErr::validation(format!(
        "The operation cannot be completed: another model requires the record being deleted. If possible, archive it instead.\n\nModel: {} ({})\nConstraint: {}_{field}_fkey\n",
        model.description,
        model.name,
        model.table()
    ))
}

/// `read(load=...)`: many2one as `[id, name]` unless `load` is something else than the default.
fn classic_load(load: Option<&Value>) -> bool {
    match load {
        None => true,
        Some(Value::String(s)) => s == "_classic_read",
        Some(_) => false,
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Null => false,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn mentions(domain: &Value, field: &str) -> bool {
    domain.as_array().is_some_and(|items| {
        items.iter().any(|t| {
            t.as_array()
                .and_then(|a| a.first())
                .and_then(Value::as_str)
                .is_some_and(|f| f == field || f.starts_with(&format!("{field}.")))
        })
    })
}

fn compare_values(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .unwrap_or(0.0)
            .partial_cmp(&y.as_f64().unwrap_or(0.0))
            .unwrap_or(std::cmp::Ordering::Equal),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::String(x), Value::String(y)) => x
            .chars()
            .flat_map(char::to_lowercase)
            .cmp(y.chars().flat_map(char::to_lowercase))
            .then(x.cmp(y)),
        _ => a.to_string().cmp(&b.to_string()),
    }
}

/// `"YYYY-MM-DD HH:MM:SS"` (fraction dropped) from what Odoo accepts for a datetime.
pub fn parse_odoo_datetime(s: &str) -> Option<String> {
    if s.len() == 10 {
        return NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .map(|d| format!("{d} 00:00:00"));
    }
    let head = s.get(..19)?;
    NaiveDateTime::parse_from_str(head, "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

/// Time zones `load` understands.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Tz {
    Utc,
    /// Central European Time with EU summer time (Brussels, Paris, Berlin, ...).
    Cet,
}

const EU_CET: &[&str] = &[
    "Brussels",
    "Paris",
    "Berlin",
    "Amsterdam",
    "Madrid",
    "Rome",
    "Vienna",
    "Luxembourg",
    "Zurich",
];

fn last_sunday(year: i32, month: u32) -> NaiveDate {
    let mut d = NaiveDate::from_ymd_opt(year, month + 1, 1)
        .unwrap_or_else(|| NaiveDate::from_ymd_opt(year + 1, 1, 1).unwrap_or_default())
        .pred_opt()
        .unwrap_or_default();
    while d.weekday() != Weekday::Sun {
        d = d.pred_opt().unwrap_or_default();
    }
    d
}

/// A local time in `tz` as UTC.
pub fn local_to_utc(local: NaiveDateTime, tz: Tz) -> NaiveDateTime {
    match tz {
        Tz::Utc => local,
        Tz::Cet => {
            let y = local.year();
            let start = last_sunday(y, 3).and_hms_opt(1, 0, 0).unwrap_or_default();
            let end = last_sunday(y, 10).and_hms_opt(1, 0, 0).unwrap_or_default();
            // Try summer time first: the UTC instant must fall in the summer period.
            let summer = local - Duration::hours(2);
            if summer >= start && summer < end {
                summer
            } else {
                local - Duration::hours(1)
            }
        }
    }
}

/// A `load` conversion error: the message, and Odoo's `moreinfo` when it gives one.
type CellError = (String, Option<Value>);

fn load_cell(db: &Db, f: &Field, by_id: bool, s: &str, tz: Tz) -> Result<Value, CellError> {
    let label = &f.string;
    Ok(match &f.kind {
        Kind::Char | Kind::Text | Kind::Html | Kind::Binary => Value::from(s),
        Kind::Selection { options, checked } => {
            if !*checked {
                return Ok(Value::from(s));
            }
            match options.iter().find(|(v, l)| v == s || l == s) {
                Some((v, _)) => Value::from(v.as_str()),
                None => {
                    let labels: Vec<Value> = options.iter().map(|(_, l)| json!(l)).collect();
                    return Err((
                        format!("Value '{s}' not found in selection field '{label}'"),
                        Some(Value::Array(labels)),
                    ));
                }
            }
        }
        Kind::Integer | Kind::Reference => Value::from(s.parse::<i64>().map_err(|_| {
            (
                format!("'{s}' does not seem to be an integer for field '{label}'"),
                None,
            )
        })?),
        Kind::Float | Kind::Monetary => json!(s.parse::<f64>().map_err(|_| (
            format!("'{s}' does not seem to be a number for field '{label}'"),
            None
        ))?),
        Kind::Boolean => match s.to_lowercase().as_str() {
            "1" | "true" | "yes" => Value::Bool(true),
            "0" | "false" | "no" => Value::Bool(false),
            _ => {
                return Err((
                    format!("Unknown value '{s}' for boolean field '{label}'"),
                    None,
                ))
            }
        },
        Kind::Date => {
            NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
                (
                    format!("'{s}' does not seem to be a valid date for field '{label}'"),
                    None,
                )
            })?;
            Value::from(s)
        }
        Kind::Datetime => {
            let local = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").map_err(|_| {
                (
                    format!("'{s}' does not seem to be a valid datetime for field '{label}'"),
                    None,
                )
            })?;
            let utc = Utc.from_utc_datetime(&local_to_utc(local, tz));
            Value::from(utc.format("%Y-%m-%d %H:%M:%S").to_string())
        }
        Kind::Many2one(co) => {
            if by_id {
                match s.parse::<i64>().ok().filter(|id| db.exists(co, *id)) {
                    Some(id) => Value::from(id),
                    None => {
                        return Err((
                            format!(
                                "No matching record found for database id '{s}' in field '{label}'"
                            ),
                            Some(possible_values(
                                "ir.model.data",
                                json!([["model", "=", co]]),
                            )),
                        ))
                    }
                }
            } else {
                let found = db.model(co).and_then(|m| {
                    db.tables
                        .get(co)
                        .and_then(|t| t.rows.keys().copied().find(|i| db.display_name(m, *i) == s))
                });
                match found {
                    Some(id) => Value::from(id),
                    None => {
                        return Err((
                            format!("No matching record found for name '{s}' in field '{label}'"),
                            Some(possible_values(co, json!([]))),
                        ))
                    }
                }
            }
        }
        Kind::One2many(..) | Kind::Many2many(_) => {
            return Err((
                format!("The Odoo stand-in does not import relation lists (field '{label}')"),
                None,
            ))
        }
    })
}

/// Odoo's "Possible Values" action in `load` messages.
fn possible_values(res_model: &str, domain: Value) -> Value {
    json!({"name": "Possible Values", "type": "ir.actions.act_window", "target": "new",
           "view_mode": "tree,form", "views": [[false, "list"], [false, "form"]],
           "context": {"create": false}, "help": "See all possible values",
           "res_model": res_model, "domain": domain})
}

fn base64_len(s: &str) -> usize {
    let trimmed = s.trim_end_matches('=');
    trimmed.len() * 3 / 4
}

/// The stored computes of `whatsapp.template` from `components_json` (as the addon does).
fn template_components(raw: Option<&str>) -> Vec<(&'static str, Value)> {
    let mut header_type = json!("none");
    let mut header_text = Value::Null;
    let mut body_text = Value::Null;
    let mut footer_text = Value::Null;
    let mut buttons_json = Value::Null;
    let mut button_count = json!(0);
    let mut error = Value::Null;
    match serde_json::from_str::<Value>(raw.unwrap_or("[]")) {
        Ok(Value::Array(components)) => {
            for c in components.iter().filter_map(Value::as_object) {
                let kind = c
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_uppercase();
                let text = c
                    .get("text")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(Value::from)
                    .unwrap_or(Value::Null);
                match kind.as_str() {
                    "HEADER" => {
                        let fmt = c
                            .get("format")
                            .and_then(Value::as_str)
                            .unwrap_or("TEXT")
                            .to_lowercase();
                        header_type = if ["text", "image", "video", "document", "location"]
                            .contains(&fmt.as_str())
                        {
                            json!(fmt)
                        } else {
                            json!("none")
                        };
                        header_text = text;
                    }
                    "BODY" => body_text = text,
                    "FOOTER" => footer_text = text,
                    "BUTTONS" => {
                        let buttons = c.get("buttons").cloned().unwrap_or(json!([]));
                        button_count = json!(buttons.as_array().map(Vec::len).unwrap_or(0));
                        buttons_json = json!(buttons.to_string());
                    }
                    _ => {}
                }
            }
        }
        _ => error = json!("The components are not a JSON array as Meta returns it."),
    }
    vec![
        ("header_type", header_type),
        ("header_text", header_text),
        ("body_text", body_text),
        ("footer_text", footer_text),
        ("buttons_json", buttons_json),
        ("button_count", button_count),
        ("components_error", error),
    ]
}

/// Positional-or-keyword arguments of a model method.
struct Params<'a> {
    args: &'a [Value],
    kwargs: &'a Map<String, Value>,
}

impl Params<'_> {
    fn get(&self, pos: usize, name: &str) -> Option<&Value> {
        self.kwargs.get(name).or_else(|| self.args.get(pos))
    }

    fn int(&self, pos: usize, name: &str) -> Result<Option<i64>, OdooErr> {
        match self.get(pos, name) {
            None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_i64()),
            Some(other) => Err(OdooErr::type_error(format!(
                "'{name}' must be an integer, got {}",
                pyrepr(other)
            ))),
        }
    }

    fn str(&self, pos: usize, name: &str) -> Option<String> {
        self.get(pos, name)
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    fn fields(&self, pos: usize, name: &str) -> Option<Vec<String>> {
        self.get(pos, name).and_then(Value::as_array).map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
    }

    fn ids(&self) -> Result<Vec<i64>, OdooErr> {
        match self.args.first() {
            None => Err(OdooErr::new(
                "builtins.IndexError",
                "list index out of range",
            )),
            Some(Value::Number(n)) => Ok(n.as_i64().into_iter().collect()),
            Some(Value::Array(a)) => Ok(a.iter().filter_map(Value::as_i64).collect()),
            Some(Value::Bool(false)) | Some(Value::Null) => Ok(Vec::new()),
            Some(other) => Err(OdooErr::type_error(format!(
                "unhashable type: {}",
                pyrepr(other)
            ))),
        }
    }

    /// Refuses keyword arguments the method does not take (`context` is taken out earlier).
    fn only(&self, method: &str, names: &[&str]) -> Result<(), OdooErr> {
        for k in self.kwargs.keys() {
            if !names.contains(&k.as_str()) {
                return Err(OdooErr::type_error(format!(
                    "{}() got an unexpected keyword argument '{k}'",
                    method
                )));
            }
        }
        Ok(())
    }
}
