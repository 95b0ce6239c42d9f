//! Values as Odoo sends and expects them, decoded without panics.
//!
//! - [`Many2one`]: `[id, "name"]` or `false` (or a bare id, as `read(load=None)` gives).
//! - [`de`]: serde helpers for Odoo's `false` meaning "empty" on char, text, date and datetime
//!   fields, and for datetimes as `"YYYY-MM-DD HH:MM:SS"` UTC strings.
//! - [`Domain`]: a search domain in Odoo's prefix notation, built from leaves.
//! - [`Context`]: the `context` sent with every `execute_kw` (company, language, time zone).
//! - [`SearchOptions`], [`ServerVersion`], [`FieldInfo`]: arguments and typed results.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::de::{DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

/// Odoo's datetime format: always UTC on the wire.
pub const DATETIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";
/// Odoo's date format.
pub const DATE_FORMAT: &str = "%Y-%m-%d";

/// Text made safe for an Odoo `html` field (a chatter note's body): `& < > " '` escaped.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            _ => out.push(c),
        }
    }
    out
}

/// Formats a UTC time the way Odoo stores datetimes (`"2026-11-21 23:46:18"`).
pub fn format_datetime(t: DateTime<Utc>) -> String {
    t.format(DATETIME_FORMAT).to_string()
}

/// Parses an Odoo datetime string (UTC); fractional seconds are accepted.
pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(s, DATETIME_FORMAT)
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
        .ok()
        .map(|n| n.and_utc())
}

/// A many2one value: `[id, "display name"]` when set, `false` when empty.
///
/// It decodes from `false`, `null`, `[id, name]`, `[id]` and a bare `id`, and encodes as the id
/// or `false`, which is what `create` and `write` expect.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Many2one {
    /// No record (`false`).
    #[default]
    Empty,
    /// A record and its display name (empty when Odoo sent only the id).
    Set { id: i64, name: String },
}

impl Many2one {
    /// A value pointing at `id` (for writing).
    pub fn id_only(id: i64) -> Self {
        Many2one::Set {
            id,
            name: String::new(),
        }
    }

    /// The record id, if set.
    pub fn id(&self) -> Option<i64> {
        match self {
            Many2one::Set { id, .. } => Some(*id),
            Many2one::Empty => None,
        }
    }

    /// The display name, if set.
    pub fn name(&self) -> Option<&str> {
        match self {
            Many2one::Set { name, .. } => Some(name),
            Many2one::Empty => None,
        }
    }

    /// True when the field points at a record.
    pub fn is_set(&self) -> bool {
        matches!(self, Many2one::Set { .. })
    }

    /// `(id, name)` as an `Option`.
    pub fn as_option(&self) -> Option<(i64, &str)> {
        match self {
            Many2one::Set { id, name } => Some((*id, name)),
            Many2one::Empty => None,
        }
    }

    /// Decodes a JSON value; `None` when it is neither `false`, `null`, an id nor `[id, name]`.
    pub fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Bool(false) | Value::Null => Some(Many2one::Empty),
            Value::Number(n) => n.as_i64().map(Many2one::id_only),
            Value::Array(items) => {
                let id = items.first()?.as_i64()?;
                let name = match items.get(1) {
                    None | Some(Value::Bool(false)) | Some(Value::Null) => String::new(),
                    Some(Value::String(s)) => s.clone(),
                    Some(_) => return None,
                };
                if items.len() > 2 {
                    return None;
                }
                Some(Many2one::Set { id, name })
            }
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Many2one {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Many2one::from_value(&value).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "expected a many2one value ([id, \"name\"], an id or false), got {value}"
            ))
        })
    }
}

impl Serialize for Many2one {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Many2one::Set { id, .. } => serializer.serialize_i64(*id),
            Many2one::Empty => serializer.serialize_bool(false),
        }
    }
}

/// Serde helpers for Odoo field values (`#[serde(deserialize_with = "...")]`).
pub mod de {
    use super::*;

    /// `false` or `null` become `None`; anything else decodes as `T`.
    ///
    /// Odoo sends `false` for an empty char, text, html, selection, date, datetime, binary or
    /// relational field. Do not use it on boolean fields, where `false` is a value.
    pub fn false_as_none<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: DeserializeOwned,
    {
        let value = Value::deserialize(deserializer)?;
        match value {
            Value::Bool(false) | Value::Null => Ok(None),
            other => T::deserialize(other)
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }

    /// A char/text field: `false` or `null` become an empty string.
    pub fn string_or_false<'de, D>(deserializer: D) -> Result<String, D::Error>
    where
        D: Deserializer<'de>,
    {
        let value = Value::deserialize(deserializer)?;
        match value {
            Value::Bool(false) | Value::Null => Ok(String::new()),
            Value::String(s) => Ok(s),
            other => Err(serde::de::Error::custom(format!(
                "expected a string or false, got {other}"
            ))),
        }
    }

    /// A datetime field (`"YYYY-MM-DD HH:MM:SS"`, UTC) or `false`.
    pub fn datetime_or_false<'de, D>(deserializer: D) -> Result<Option<DateTime<Utc>>, D::Error>
    where
        D: Deserializer<'de>,
    {
        let value = Value::deserialize(deserializer)?;
        match value {
            Value::Bool(false) | Value::Null => Ok(None),
            Value::String(s) => parse_datetime(&s).map(Some).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "expected an Odoo datetime \"YYYY-MM-DD HH:MM:SS\", got {s:?}"
                ))
            }),
            other => Err(serde::de::Error::custom(format!(
                "expected an Odoo datetime or false, got {other}"
            ))),
        }
    }

    /// A date field (`"YYYY-MM-DD"`) or `false`.
    pub fn date_or_false<'de, D>(deserializer: D) -> Result<Option<NaiveDate>, D::Error>
    where
        D: Deserializer<'de>,
    {
        let value = Value::deserialize(deserializer)?;
        match value {
            Value::Bool(false) | Value::Null => Ok(None),
            Value::String(s) => NaiveDate::parse_from_str(&s, DATE_FORMAT)
                .map(Some)
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "expected an Odoo date \"YYYY-MM-DD\", got {s:?}"
                    ))
                }),
            other => Err(serde::de::Error::custom(format!(
                "expected an Odoo date or false, got {other}"
            ))),
        }
    }
}

/// A search domain in Odoo's prefix notation.
///
/// Leaves added with [`Domain::and`] are joined by Odoo's implicit `&`; [`Domain::or`] and
/// [`Domain::negate`] combine whole domains. Any JSON domain can be wrapped with
/// [`Domain::from_terms`].
///
/// ```
/// use whatsapp_sidecar::odoo::Domain;
/// let due = Domain::leaf("state", "=", "queued").and("direction", "=", "out");
/// let either = Domain::or(due, Domain::leaf("state", "=", "sending"));
/// assert_eq!(
///     either.to_value().to_string(),
///     r#"["|","&",["state","=","queued"],["direction","=","out"],["state","=","sending"]]"#
/// );
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Domain(Vec<Value>);

impl Domain {
    /// The empty domain: every record.
    pub fn all() -> Self {
        Domain(Vec::new())
    }

    /// A domain of one leaf `(field, operator, value)`.
    pub fn leaf(field: &str, operator: &str, value: impl Into<Value>) -> Self {
        Domain::all().and(field, operator, value)
    }

    /// Adds a leaf, joined to the rest with `&`.
    pub fn and(mut self, field: &str, operator: &str, value: impl Into<Value>) -> Self {
        self.0.push(Value::Array(vec![
            Value::from(field),
            Value::from(operator),
            value.into(),
        ]));
        self
    }

    /// Adds every term of another domain, joined with `&`.
    pub fn and_domain(mut self, other: Domain) -> Self {
        if other.0.is_empty() {
            return self;
        }
        if self.0.is_empty() {
            return other;
        }
        let mut terms = Vec::with_capacity(self.0.len() + other.0.len() + 1);
        terms.push(Value::from("&"));
        terms.extend(self.normalized());
        terms.extend(other.normalized());
        self.0 = terms;
        self
    }

    /// `a OR b`. An empty side matches everything, so the result does too.
    pub fn or(a: Domain, b: Domain) -> Domain {
        if a.0.is_empty() || b.0.is_empty() {
            return Domain::all();
        }
        let mut terms = vec![Value::from("|")];
        terms.extend(a.normalized());
        terms.extend(b.normalized());
        Domain(terms)
    }

    /// `NOT d`. The negation of the empty domain matches nothing.
    pub fn negate(d: Domain) -> Domain {
        if d.0.is_empty() {
            return Domain(vec![Value::Array(vec![
                Value::from(0),
                Value::from("="),
                Value::from(1),
            ])]);
        }
        let mut terms = vec![Value::from("!")];
        terms.extend(d.normalized());
        Domain(terms)
    }

    /// Wraps terms given as JSON (leaves as 3-element arrays, operators as strings).
    pub fn from_terms(terms: Vec<Value>) -> Self {
        Domain(terms)
    }

    /// The terms, as sent to Odoo.
    pub fn terms(&self) -> &[Value] {
        &self.0
    }

    /// The domain as a JSON array.
    pub fn to_value(&self) -> Value {
        Value::Array(self.0.clone())
    }

    /// The terms with Odoo's implicit `&` made explicit, so the domain can be nested.
    fn normalized(&self) -> Vec<Value> {
        // Each binary operator joins two expressions into one; `!` keeps the count.
        let binary = self
            .0
            .iter()
            .filter(|t| matches!(t.as_str(), Some("&") | Some("|")))
            .count();
        let leaves = self.0.iter().filter(|t| t.is_array()).count();
        let top_level = leaves.saturating_sub(binary).max(1);
        let mut out = Vec::with_capacity(self.0.len() + top_level - 1);
        out.extend(std::iter::repeat_n(Value::from("&"), top_level - 1));
        out.extend(self.0.iter().cloned());
        out
    }
}

impl Serialize for Domain {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// The `context` Odoo applies to a call: company, language, time zone, and any other key.
///
/// ```
/// use whatsapp_sidecar::odoo::Context;
/// let ctx = Context::new().company(1).lang("fr_FR").tz("Europe/Paris");
/// assert_eq!(ctx.get("allowed_company_ids"), Some(&serde_json::json!([1])));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Context(Map<String, Value>);

impl Context {
    /// An empty context.
    pub fn new() -> Self {
        Context(Map::new())
    }

    /// Works in this company (Odoo 13+: `allowed_company_ids`, the first is the current one).
    pub fn company(self, company_id: i64) -> Self {
        self.set("allowed_company_ids", Value::from(vec![company_id]))
    }

    /// Several allowed companies, the first being the current one.
    pub fn companies(self, company_ids: &[i64]) -> Self {
        self.set("allowed_company_ids", Value::from(company_ids.to_vec()))
    }

    /// Language of translated fields and messages (`fr_FR`).
    pub fn lang(self, lang: &str) -> Self {
        self.set("lang", Value::from(lang))
    }

    /// Time zone used by Odoo where it converts local times (`Europe/Paris`).
    pub fn tz(self, tz: &str) -> Self {
        self.set("tz", Value::from(tz))
    }

    /// `active_test = false` also finds archived records.
    pub fn active_test(self, active_test: bool) -> Self {
        self.set("active_test", Value::from(active_test))
    }

    /// Any other key.
    pub fn set(mut self, key: &str, value: Value) -> Self {
        self.0.insert(key.to_owned(), value);
        self
    }

    /// A key's value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// True when no key is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The keys of `other` override those of `self`.
    pub fn merged(&self, other: &Context) -> Context {
        let mut map = self.0.clone();
        for (k, v) in &other.0 {
            map.insert(k.clone(), v.clone());
        }
        Context(map)
    }

    /// The context as a JSON object.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }
}

/// Paging and order for `search` and `search_read`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchOptions {
    /// Records to skip.
    pub offset: u64,
    /// At most this many records (`None`: all).
    pub limit: Option<u64>,
    /// Odoo order clause, e.g. `"id asc"` or `"next_attempt_at, id"`.
    pub order: Option<String>,
}

impl SearchOptions {
    /// No offset, no limit, the model's default order.
    pub fn new() -> Self {
        SearchOptions::default()
    }

    /// Sets the limit.
    pub fn limit(mut self, limit: u64) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Sets the offset.
    pub fn offset(mut self, offset: u64) -> Self {
        self.offset = offset;
        self
    }

    /// Sets the order clause.
    pub fn order(mut self, order: &str) -> Self {
        self.order = Some(order.to_owned());
        self
    }

    /// The keyword arguments Odoo expects (only those that are set).
    pub(crate) fn to_kwargs(&self, kwargs: &mut Map<String, Value>) {
        if self.offset > 0 {
            kwargs.insert("offset".into(), Value::from(self.offset));
        }
        if let Some(limit) = self.limit {
            kwargs.insert("limit".into(), Value::from(limit));
        }
        if let Some(order) = &self.order {
            kwargs.insert("order".into(), Value::from(order.as_str()));
        }
    }
}

/// `common.version`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ServerVersion {
    /// `"17.0"`, `"17.0+e"`, `"saas~17.2"`.
    pub server_version: String,
    /// `[17, 0, 0, "final", 0, ""]`.
    #[serde(default)]
    pub server_version_info: Vec<Value>,
    /// `"17.0"`.
    #[serde(default)]
    pub server_serie: String,
    /// `1`.
    #[serde(default)]
    pub protocol_version: i64,
}

impl ServerVersion {
    /// The major version (17 for `"17.0"` or `"saas~17.2"`).
    pub fn major(&self) -> Option<u32> {
        if let Some(n) = self.server_version_info.first().and_then(Value::as_u64) {
            return u32::try_from(n).ok();
        }
        let digits: String = self
            .server_version
            .trim_start_matches("saas~")
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    }
}

/// One field of `fields_get`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct FieldInfo {
    /// `char`, `many2one`, `selection`, ...
    #[serde(rename = "type", default)]
    pub field_type: String,
    /// The label.
    #[serde(default)]
    pub string: String,
    /// The comodel of relational fields.
    #[serde(default, deserialize_with = "de::false_as_none")]
    pub relation: Option<String>,
    /// True when the field must be set.
    #[serde(default)]
    pub required: bool,
    /// True when the form shows it read-only.
    #[serde(default)]
    pub readonly: bool,
    /// `(value, label)` of a selection field.
    #[serde(default, deserialize_with = "selection")]
    pub selection: Vec<(String, String)>,
}

fn selection<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
    let value = Value::deserialize(d)?;
    let Value::Array(items) = value else {
        return Ok(Vec::new());
    };
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Ok(items
        .iter()
        .filter_map(|item| {
            let pair = item.as_array()?;
            Some((text(pair.first()?), text(pair.get(1)?)))
        })
        .collect())
}

/// A `check_access_rights` operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    Create,
    Unlink,
}

impl Access {
    /// The name Odoo uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::Create => "create",
            Access::Unlink => "unlink",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Deserialize)]
    struct Row {
        partner_id: Many2one,
        #[serde(deserialize_with = "de::false_as_none")]
        mobile: Option<String>,
        #[serde(deserialize_with = "de::string_or_false")]
        email: String,
        #[serde(deserialize_with = "de::datetime_or_false")]
        write_date: Option<DateTime<Utc>>,
        #[serde(deserialize_with = "de::date_or_false")]
        invoice_date_due: Option<NaiveDate>,
    }

    #[test]
    fn decodes_a_recorded_row() {
        let row: Row = serde_json::from_value(json!({
            "partner_id": [10, "Deco Addict"], "mobile": false, "email": false,
            "write_date": "2026-11-21 23:45:31", "invoice_date_due": "2026-12-31"
        }))
        .unwrap();
        assert_eq!(row.partner_id.as_option(), Some((10, "Deco Addict")));
        assert_eq!(row.mobile, None);
        assert_eq!(row.email, "");
        assert_eq!(
            row.write_date.map(format_datetime).as_deref(),
            Some("2026-11-21 23:45:31")
        );
        assert_eq!(row.invoice_date_due.unwrap().to_string(), "2026-12-31");
    }

    #[test]
    fn many2one_forms() {
        let empty: Many2one = serde_json::from_value(json!(false)).unwrap();
        assert_eq!(empty, Many2one::Empty);
        assert_eq!(empty.id(), None);
        let bare: Many2one = serde_json::from_value(json!(7)).unwrap();
        assert_eq!(bare.id(), Some(7));
        let one: Many2one = serde_json::from_value(json!([3])).unwrap();
        assert_eq!(one.id(), Some(3));
        assert!(serde_json::from_value::<Many2one>(json!("x")).is_err());
        assert!(serde_json::from_value::<Many2one>(json!([1, 2])).is_err());
        assert!(serde_json::from_value::<Many2one>(json!([])).is_err());
        assert_eq!(
            serde_json::to_value(Many2one::id_only(4)).unwrap(),
            json!(4)
        );
        assert_eq!(serde_json::to_value(Many2one::Empty).unwrap(), json!(false));
    }

    #[test]
    fn bad_values_are_errors_not_panics() {
        let err = serde_json::from_value::<Row>(json!({
            "partner_id": false, "mobile": 3, "email": false,
            "write_date": "yesterday", "invoice_date_due": false
        }));
        assert!(err.is_err());
    }

    #[test]
    fn domain_combinations() {
        assert_eq!(Domain::all().to_value(), json!([]));
        let a = Domain::leaf("a", "=", 1).and("b", "=", 2);
        assert_eq!(
            Domain::negate(a.clone()).to_value(),
            json!(["!", "&", ["a", "=", 1], ["b", "=", 2]])
        );
        assert_eq!(
            a.clone()
                .and_domain(Domain::or(
                    Domain::leaf("c", "=", 3),
                    Domain::leaf("d", "=", 4)
                ))
                .to_value(),
            json!([
                "&",
                "&",
                ["a", "=", 1],
                ["b", "=", 2],
                "|",
                ["c", "=", 3],
                ["d", "=", 4]
            ])
        );
        assert_eq!(Domain::or(a, Domain::all()), Domain::all());
        assert_eq!(
            Domain::negate(Domain::all()).to_value(),
            json!([[0, "=", 1]])
        );
    }

    #[test]
    fn version_major() {
        let v: ServerVersion = serde_json::from_value(json!({
            "server_version": "17.0", "server_version_info": [17, 0, 0, "final", 0, ""],
            "server_serie": "17.0", "protocol_version": 1
        }))
        .unwrap();
        assert_eq!(v.major(), Some(17));
        let saas = ServerVersion {
            server_version: "saas~16.4".into(),
            server_version_info: vec![],
            server_serie: String::new(),
            protocol_version: 1,
        };
        assert_eq!(saas.major(), Some(16));
    }

    #[test]
    fn field_info_from_recorded_fields_get() {
        let f: FieldInfo = serde_json::from_value(json!({
            "selection": [["draft", "Quotation"], ["sent", "Quotation Sent"]],
            "string": "Status", "type": "selection"
        }))
        .unwrap();
        assert_eq!(f.field_type, "selection");
        assert_eq!(
            f.selection[1],
            ("sent".to_owned(), "Quotation Sent".to_owned())
        );
        let m: FieldInfo = serde_json::from_value(
            json!({"relation": "res.partner", "string": "Customer", "type": "many2one"}),
        )
        .unwrap();
        assert_eq!(m.relation.as_deref(), Some("res.partner"));
    }
}
