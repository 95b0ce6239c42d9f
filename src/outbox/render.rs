//! Rendering template parameters from the record a message is about, as pure functions.
//!
//! A `whatsapp.template.variable` maps one parameter to a dotted field path on the message's
//! record (`partner_id.name`, `amount_total`) or to a fixed text. Values are read level by level:
//! [`Walk`] says which `read` calls the current level needs (one per model, all records and
//! fields together) and advances through many2one (and the first record of an x2many, as the
//! addon does) until every path has its value. The I/O side only performs the reads.
//!
//! Values are turned into text the way the addon's `_value_for` does (so the composer's preview
//! and the sent message agree): a record gives its display name, several give their names
//! joined by ", ", an empty value (`false`, `""`) falls back to the fixed text.

use super::gate::{ButtonParam, GateFailure, GateKind, ParamValue, TemplateParams};
use super::model::Template;
use crate::lang::Lang;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Paths longer than this are not followed (a loop in the data cannot keep the walk going).
pub const MAX_PATH_DEPTH: usize = 6;

/// Text of a field value, `None` when empty.
pub fn format_value(value: &Value) -> Option<String> {
    match value {
        Value::Null | Value::Bool(false) => None,
        Value::Bool(true) => Some("True".to_owned()),
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 => {
                format!("{f:.1}")
            }
            (None, Some(f)) => f.to_string(),
            (None, None) => n.to_string(),
        }),
        // A many2one read: [id, "display name"].
        Value::Array(items) if items.len() == 2 && items[0].is_i64() => items[1]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// A path is a dotted list of field names (`partner_id.name`); `None` when it is not.
pub fn split_path(path: &str) -> Option<Vec<String>> {
    let parts: Vec<String> = path.trim().split('.').map(str::to_owned).collect();
    let ok = !parts.is_empty()
        && parts.len() <= MAX_PATH_DEPTH
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !p.starts_with(|c: char| c.is_ascii_digit())
        });
    ok.then_some(parts)
}

/// One value to find: the path on a record.
pub type Request = (String, i64, String);

#[derive(Debug, Clone)]
struct Cursor {
    origin: Request,
    model: String,
    ids: Vec<i64>,
    rest: Vec<String>,
}

/// One `read` call of a level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    pub model: String,
    pub ids: Vec<i64>,
    pub fields: Vec<String>,
}

/// The level-by-level resolution of field paths.
#[derive(Debug, Clone, Default)]
pub struct Walk {
    cursors: Vec<Cursor>,
    values: HashMap<Request, String>,
    errors: HashMap<Request, String>,
}

impl Walk {
    /// Starts the resolution of every (model, id, path); invalid paths are recorded as errors.
    pub fn new(requests: impl IntoIterator<Item = Request>) -> Walk {
        let mut walk = Walk::default();
        let unique: BTreeSet<Request> = requests.into_iter().collect();
        for origin in unique {
            match split_path(&origin.2) {
                Some(rest) => walk.cursors.push(Cursor {
                    model: origin.0.clone(),
                    ids: vec![origin.1],
                    rest,
                    origin,
                }),
                None => {
                    let msg = format!(
                        "'{}' is not a dotted list of field names such as partner_id.name",
                        origin.2
                    );
                    walk.errors.insert(origin, msg);
                }
            }
        }
        walk
    }

    /// True when every path has a value, an empty value or an error.
    pub fn is_done(&self) -> bool {
        self.cursors.is_empty()
    }

    /// The (model, field) pairs whose relation (comodel) the next step needs.
    pub fn relations_needed(&self) -> BTreeSet<(String, String)> {
        self.cursors
            .iter()
            .filter(|c| c.rest.len() > 1)
            .map(|c| (c.model.clone(), c.rest[0].clone()))
            .collect()
    }

    /// The reads of the current level: one per model.
    pub fn reads(&self) -> Vec<Read> {
        let mut by_model: BTreeMap<&str, (BTreeSet<i64>, BTreeSet<&str>)> = BTreeMap::new();
        for c in &self.cursors {
            let entry = by_model.entry(&c.model).or_default();
            entry.0.extend(c.ids.iter().copied());
            entry.1.insert(&c.rest[0]);
        }
        by_model
            .into_iter()
            .map(|(model, (ids, fields))| Read {
                model: model.to_owned(),
                ids: ids.into_iter().collect(),
                fields: fields.into_iter().map(str::to_owned).collect(),
            })
            .collect()
    }

    /// A read of `model` failed: every path waiting on it gets `message` as its error.
    pub fn read_failed(&mut self, model: &str, message: &str) {
        let (failed, kept): (Vec<Cursor>, Vec<Cursor>) =
            self.cursors.drain(..).partition(|c| c.model == model);
        self.cursors = kept;
        for c in failed {
            self.errors.insert(c.origin, message.to_owned());
        }
    }

    /// Moves one level on with the records read (by model, then id) and the relations
    /// (`relation(model, field)` → comodel, `None` for a non-relational field).
    pub fn advance(
        &mut self,
        records: &HashMap<String, HashMap<i64, Map<String, Value>>>,
        relation: impl Fn(&str, &str) -> Option<String>,
    ) {
        let cursors = std::mem::take(&mut self.cursors);
        for mut c in cursors {
            let field = c.rest.remove(0);
            let rows = records.get(&c.model);
            let values: Vec<&Value> = c
                .ids
                .iter()
                .filter_map(|id| rows.and_then(|r| r.get(id)))
                .filter_map(|row| row.get(&field))
                .collect();
            if c.rest.is_empty() {
                // The last field: its text. Several records (an x2many at the end) → their
                // names, which need one more level.
                match values.as_slice() {
                    [Value::Array(ids)] if ids.iter().all(Value::is_i64) && !is_many2one(ids) => {
                        match relation(&c.model, &field) {
                            Some(comodel) if !ids.is_empty() => {
                                c.ids = ids.iter().filter_map(Value::as_i64).collect();
                                c.model = comodel;
                                c.rest = vec!["display_name".to_owned()];
                                self.cursors.push(c);
                            }
                            _ => {}
                        }
                    }
                    _ => {
                        let texts: Vec<String> =
                            values.iter().filter_map(|v| format_value(v)).collect();
                        if !texts.is_empty() {
                            self.values.insert(c.origin, texts.join(", "));
                        }
                    }
                }
                continue;
            }
            // An intermediate field must be relational; like the addon, follow the first record.
            let next = values.first().and_then(|v| match v {
                Value::Number(n) => n.as_i64(),
                Value::Array(items) => items.first().and_then(Value::as_i64),
                _ => None,
            });
            match (next, relation(&c.model, &field)) {
                (Some(id), Some(comodel)) => {
                    c.model = comodel;
                    c.ids = vec![id];
                    self.cursors.push(c);
                }
                (None, _) => {} // empty: falls back to the fixed text
                (Some(_), None) => {
                    let msg = format!(
                        "'{field}' on {} is not a relational field, so '{}' cannot go through it",
                        c.model, c.origin.2
                    );
                    self.errors.insert(c.origin, msg);
                }
            }
        }
    }

    /// The text found for a path (`None`: empty or failed).
    pub fn value(&self, model: &str, id: i64, path: &str) -> Option<&str> {
        self.values
            .get(&(model.to_owned(), id, path.to_owned()))
            .map(String::as_str)
    }

    /// Why a path could not be read, if it could not.
    pub fn error(&self, model: &str, id: i64, path: &str) -> Option<&str> {
        self.errors
            .get(&(model.to_owned(), id, path.to_owned()))
            .map(String::as_str)
    }
}

fn is_many2one(items: &[Value]) -> bool {
    items.len() == 2 && items[0].is_i64() && items[1].is_string()
}

/// The (model, id, path) requests a template's variables make on `record`.
pub fn requests(template: &Template, record: Option<&(String, i64)>) -> Vec<Request> {
    let Some((model, id)) = record else {
        return Vec::new();
    };
    template
        .variables
        .iter()
        .filter_map(|v| v.field_path.as_ref())
        .map(|path| (model.clone(), *id, path.clone()))
        .collect()
}

/// The parameters of `template` for `record`, from the walked values, or the failure that
/// names the variable without a value (in `lang`). A button variable with a field path and a
/// fixed text gives `<fixed text>:<value>` (`invoice_pay:42`), as the addon's `_value_for`.
pub fn params_from_variables(
    template: &Template,
    record: Option<&(String, i64)>,
    walk: &Walk,
    lang: Lang,
) -> Result<TemplateParams, GateFailure> {
    let mut params = TemplateParams::default();
    let (tname, tlang) = (&template.name, &template.language);
    for variable in &template.variables {
        let vname = &variable.name;
        let found = match (record, &variable.field_path) {
            (Some((model, id)), Some(path)) => {
                if let Some(error) = walk.error(model, *id, path) {
                    return Err(GateFailure::new(
                        GateKind::TemplateParams,
                        tr!(
                            lang,
                            "Template {tname} ({tlang}): variable {{{{{vname}}}}} could not be \
                             read from {model} {id}: {error}. Correct the field path of the \
                             variable in WhatsApp > Templates.",
                            "Modèle {tname} ({tlang}) : la variable {{{{{vname}}}}} n'a pas pu \
                             être lue sur {model} {id} : {error}. Corrigez le chemin de champ de \
                             la variable dans WhatsApp > Modèles."
                        ),
                    ));
                }
                walk.value(model, *id, path).map(str::to_owned)
            }
            _ => None,
        };
        let fixed = variable
            .fixed_value
            .as_deref()
            .map(str::trim)
            .filter(|f| !f.is_empty());
        let value = match (found.map(|v| v.trim().to_owned()), fixed) {
            (Some(v), Some(fixed)) if !v.is_empty() && variable.component == "button" => {
                format!("{fixed}:{v}")
            }
            (Some(v), _) if !v.is_empty() => v,
            (_, fixed) => fixed.unwrap_or_default().to_owned(),
        };
        if value.is_empty() {
            let source = match (&variable.field_path, record, lang) {
                (Some(path), Some((model, id)), Lang::En) => {
                    format!("the field {path} is empty on {model} {id} and there is no fixed text")
                }
                (Some(path), Some((model, id)), Lang::Fr) => {
                    format!(
                        "le champ {path} est vide sur {model} {id} et il n'y a pas de texte fixe"
                    )
                }
                (Some(path), None, Lang::En) => format!(
                    "the message is about no record to read {path} from, and there is no fixed \
                     text"
                ),
                (Some(path), None, Lang::Fr) => format!(
                    "le message ne porte sur aucun enregistrement où lire {path}, et il n'y a \
                     pas de texte fixe"
                ),
                (None, _, Lang::En) => "it has neither a field path nor a fixed text".to_owned(),
                (None, _, Lang::Fr) => "elle n'a ni chemin de champ ni texte fixe".to_owned(),
            };
            let component = &variable.component;
            return Err(GateFailure::new(
                GateKind::TemplateParams,
                tr!(
                    lang,
                    "Template {tname} ({tlang}): variable {{{{{vname}}}}} ({component}) has no \
                     value: {source}. Fill in the record, or give the variable a fixed text in \
                     WhatsApp > Templates.",
                    "Modèle {tname} ({tlang}) : la variable {{{{{vname}}}}} ({component}) n'a pas \
                     de valeur : {source}. Complétez l'enregistrement, ou donnez à la variable un \
                     texte fixe dans WhatsApp > Modèles."
                ),
            ));
        }
        match variable.component.as_str() {
            "header" => params.header.push(ParamValue {
                name: variable.name.clone(),
                value,
            }),
            "button" => params.buttons.push(ButtonParam {
                index: u32::try_from(variable.button_index).unwrap_or(0),
                name: variable.name.clone(),
                value,
            }),
            _ => params.body.push(ParamValue {
                name: variable.name.clone(),
                value,
            }),
        }
    }
    Ok(params)
}

/// `params` with the `given` buttons: a given button replaces the variable of the same index
/// (per-record quick-reply payloads over a template's fixed ones).
pub fn with_buttons(mut params: TemplateParams, given: &[ButtonParam]) -> TemplateParams {
    params
        .buttons
        .retain(|b| !given.iter().any(|g| g.index == b.index));
    params.buttons.extend(given.iter().cloned());
    params.buttons.sort_by_key(|b| b.index);
    params
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::model::TemplateVariable;
    use serde_json::json;

    fn rows(model: &str, list: Vec<Value>) -> HashMap<String, HashMap<i64, Map<String, Value>>> {
        let mut m = HashMap::new();
        let mut by_id = HashMap::new();
        for row in list {
            let row = row.as_object().unwrap().clone();
            by_id.insert(row["id"].as_i64().unwrap(), row);
        }
        m.insert(model.to_owned(), by_id);
        m
    }

    fn relation(model: &str, field: &str) -> Option<String> {
        match (model, field) {
            ("account.move", "partner_id") => Some("res.partner".into()),
            ("account.move", "invoice_line_ids") => Some("account.move.line".into()),
            ("res.partner", "country_id") => Some("res.country".into()),
            _ => None,
        }
    }

    #[test]
    fn values_read_like_the_addon() {
        assert_eq!(format_value(&json!(false)), None);
        assert_eq!(format_value(&json!("")), None);
        assert_eq!(format_value(&json!("S00042")).as_deref(), Some("S00042"));
        assert_eq!(format_value(&json!(42)).as_deref(), Some("42"));
        assert_eq!(format_value(&json!(42.0)).as_deref(), Some("42.0"));
        assert_eq!(format_value(&json!(1234.56)).as_deref(), Some("1234.56"));
        assert_eq!(format_value(&json!(true)).as_deref(), Some("True"));
        assert_eq!(format_value(&json!([7, "Alice"])).as_deref(), Some("Alice"));
        assert_eq!(format_value(&json!([1, 2, 3])), None);
    }

    #[test]
    fn paths_must_be_field_names() {
        assert_eq!(
            split_path("partner_id.name"),
            Some(vec!["partner_id".into(), "name".into()])
        );
        assert_eq!(split_path("partner_id..name"), None);
        assert_eq!(split_path("partner_id.name()"), None);
        assert_eq!(split_path("a.b.c.d.e.f.g"), None);
    }

    #[test]
    fn walks_many2one_paths_level_by_level() {
        let mut walk = Walk::new(vec![
            ("account.move".into(), 42, "name".into()),
            ("account.move".into(), 42, "amount_total".into()),
            ("account.move".into(), 42, "partner_id.name".into()),
            (
                "account.move".into(),
                42,
                "partner_id.country_id.code".into(),
            ),
            ("account.move".into(), 43, "partner_id.name".into()),
        ]);
        assert_eq!(
            walk.reads(),
            vec![Read {
                model: "account.move".into(),
                ids: vec![42, 43],
                fields: vec!["amount_total".into(), "name".into(), "partner_id".into()],
            }]
        );
        assert_eq!(
            walk.relations_needed().into_iter().collect::<Vec<_>>(),
            vec![("account.move".to_string(), "partner_id".to_string())]
        );
        walk.advance(
            &rows(
                "account.move",
                vec![
                    json!({"id": 42, "name": "INV/42", "amount_total": 1234.5, "partner_id": [7, "ACME, Alice"]}),
                    json!({"id": 43, "partner_id": false}),
                ],
            ),
            relation,
        );
        assert_eq!(walk.value("account.move", 42, "name"), Some("INV/42"));
        assert_eq!(
            walk.value("account.move", 42, "amount_total"),
            Some("1234.5")
        );
        assert!(!walk.is_done());
        assert_eq!(
            walk.reads(),
            vec![Read {
                model: "res.partner".into(),
                ids: vec![7],
                fields: vec!["country_id".into(), "name".into()],
            }]
        );
        walk.advance(
            &rows(
                "res.partner",
                vec![json!({"id": 7, "name": "Alice", "country_id": [38, "Côte d'Ivoire"]})],
            ),
            relation,
        );
        walk.advance(
            &rows("res.country", vec![json!({"id": 38, "code": "CI"})]),
            relation,
        );
        assert!(walk.is_done());
        assert_eq!(
            walk.value("account.move", 42, "partner_id.name"),
            Some("Alice")
        );
        assert_eq!(
            walk.value("account.move", 42, "partner_id.country_id.code"),
            Some("CI")
        );
        // An empty many2one on the way: no value, no error.
        assert_eq!(walk.value("account.move", 43, "partner_id.name"), None);
        assert_eq!(walk.error("account.move", 43, "partner_id.name"), None);
    }

    #[test]
    fn an_x2many_at_the_end_gives_the_names() {
        let mut walk = Walk::new(vec![("account.move".into(), 42, "invoice_line_ids".into())]);
        walk.advance(
            &rows(
                "account.move",
                vec![json!({"id": 42, "invoice_line_ids": [5, 6]})],
            ),
            relation,
        );
        assert_eq!(walk.reads()[0].fields, vec!["display_name".to_string()]);
        walk.advance(
            &rows(
                "account.move.line",
                vec![
                    json!({"id": 5, "display_name": "Chair"}),
                    json!({"id": 6, "display_name": "Desk"}),
                ],
            ),
            relation,
        );
        assert_eq!(
            walk.value("account.move", 42, "invoice_line_ids"),
            Some("Chair, Desk")
        );
    }

    #[test]
    fn failures_are_recorded_per_path() {
        let mut walk = Walk::new(vec![
            ("account.move".into(), 42, "name.first".into()),
            ("account.move".into(), 42, "bad path!".into()),
            ("sale.order".into(), 8, "nmae".into()),
        ]);
        assert!(walk
            .error("account.move", 42, "bad path!")
            .unwrap()
            .contains("not a dotted list"));
        walk.read_failed("sale.order", "Odoo model 'sale.order' has no field 'nmae'");
        walk.advance(
            &rows("account.move", vec![json!({"id": 42, "name": [1, "x"]})]),
            relation,
        );
        assert!(walk.is_done());
        assert!(walk
            .error("account.move", 42, "name.first")
            .unwrap()
            .contains("not a relational field"));
        assert!(walk
            .error("sale.order", 8, "nmae")
            .unwrap()
            .contains("no field"));
    }

    fn template() -> Template {
        let var = |id, component: &str, name: &str, path: Option<&str>, fixed: Option<&str>| {
            TemplateVariable {
                id,
                template_id: Some(1),
                sequence: id,
                name: name.into(),
                component: component.into(),
                button_index: if component == "button" { 1 } else { 0 },
                field_path: path.map(Into::into),
                fixed_value: fixed.map(Into::into),
            }
        };
        Template {
            id: 1,
            name: "invoice_ready".into(),
            language: "fr".into(),
            status: "approved".into(),
            variables: vec![
                var(1, "header", "1", Some("name"), None),
                var(2, "body", "1", Some("partner_id.name"), Some("customer")),
                var(3, "body", "2", Some("amount_total"), None),
                var(4, "button", "1", None, Some("pay")),
                var(5, "button", "2", Some("id"), Some("invoice_pay")),
            ],
            ..Template::default()
        }
    }

    #[test]
    fn parameters_come_from_the_record_or_the_fixed_text() {
        let t = template();
        let record = ("account.move".to_string(), 42);
        let mut walk = Walk::new(requests(&t, Some(&record)));
        walk.advance(
            &rows(
                "account.move",
                vec![json!({"id": 42, "name": "INV/42", "amount_total": 10, "partner_id": false})],
            ),
            relation,
        );
        let params = params_from_variables(&t, Some(&record), &walk, Lang::En).unwrap();
        assert_eq!(params.header[0].value, "INV/42");
        assert_eq!(params.body[0].value, "customer", "empty path → fixed text");
        assert_eq!(params.body[1].value, "10");
        assert_eq!(params.buttons[0].index, 1);
        assert_eq!(params.buttons[0].value, "pay");
        // A button with a field path and a fixed text: both, as the addon's `_value_for`.
        assert_eq!(params.buttons[1].value, "invoice_pay:42");
    }

    #[test]
    fn a_variable_without_value_names_itself() {
        let t = template();
        let record = ("account.move".to_string(), 42);
        let mut walk = Walk::new(requests(&t, Some(&record)));
        walk.advance(
            &rows(
                "account.move",
                vec![
                    json!({"id": 42, "name": "INV/42", "amount_total": false, "partner_id": false}),
                ],
            ),
            relation,
        );
        let f = params_from_variables(&t, Some(&record), &walk, Lang::En).unwrap_err();
        assert_eq!(f.kind, GateKind::TemplateParams);
        assert!(
            f.help.contains("variable {{2}} (body) has no value: the field amount_total is empty on account.move 42"),
            "{}",
            f.help
        );
        // No record at all.
        let f = params_from_variables(&t, None, &Walk::default(), Lang::En).unwrap_err();
        assert!(f.help.contains("about no record"), "{}", f.help);
        let f = params_from_variables(&t, Some(&record), &walk, Lang::Fr).unwrap_err();
        assert!(
            f.help.contains("la variable {{2}} (body) n'a pas de valeur : le champ amount_total est vide sur account.move 42"),
            "{}",
            f.help
        );
    }

    #[test]
    fn given_buttons_replace_the_variables_of_their_index() {
        let b = |index: u32, value: &str| ButtonParam {
            index,
            name: "payload".into(),
            value: value.into(),
        };
        let params = TemplateParams {
            body: vec![ParamValue {
                name: "1".into(),
                value: "Alice".into(),
            }],
            buttons: vec![b(0, "fixed0"), b(2, "fixed2")],
            ..TemplateParams::default()
        };
        let out = with_buttons(
            params,
            &[b(1, "order_cancel:4:t"), b(0, "order_validate:4:t")],
        );
        assert_eq!(out.body.len(), 1, "the body stays the variables'");
        let values: Vec<&str> = out.buttons.iter().map(|b| b.value.as_str()).collect();
        assert_eq!(values, ["order_validate:4:t", "order_cancel:4:t", "fixed2"]);
    }
}
