//! Writing different values to many records in few calls: the plan, as pure functions.
//!
//! Odoo's `write` sets one dict of values on many ids. When every record needs its own values
//! (a wamid per message, a timestamp per status), the choices are one `write` per record, one
//! `write` per group of records sharing identical values, or one `load` call (Odoo's import:
//! a matrix of strings with a `.id` column naming existing records, all rows in one
//! transaction). Measured on a real Odoo 17 with the addon (2 cores, `whatsapp.message`, 200
//! records, `examples/odoo_rpc_bench.rs`): a `write` call costs 8–18 ms whatever its size up to
//! 200 ids, `load` 10–15 ms plus 0.7–0.9 ms per row; 200 records with their own values take
//! 2.2–4.4 s as 200 writes and 0.17–0.31 s as one load (11–12x). Grouped writes beat the load
//! once groups reach about 16 records. So [`plan`] sends groups of at least
//! [`GROUP_WRITE_MIN`] records with identical values as a `write`, and everything else in
//! `load` calls (one per set of columns); a lone leftover record is a plain `write`.
//!
//! `load` takes strings: [`to_load_cell`] converts a JSON value according to the field's type
//! (many2one → `field/.id` column with the id, boolean → `1`/`0`, empty → `""`, which Odoo reads
//! as False). Values `load` cannot express (x2many commands, binary, unknown types) make that
//! record go through `write` instead. Datetimes are read by `load` in the context's time zone,
//! so the client sends `load` with `tz = UTC`.

use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap};

/// Groups of at least this many records with identical values go through one `write`.
pub const GROUP_WRITE_MIN: usize = 16;

/// The calls that carry a batch of per-record updates.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// `write(ids, values)` calls.
    pub writes: Vec<(Vec<i64>, Map<String, Value>)>,
    /// `load(fields, rows)` calls; the first column is `.id`.
    pub loads: Vec<LoadCall>,
}

/// One `load` call.
#[derive(Debug, Default, PartialEq)]
pub struct LoadCall {
    pub fields: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// The record id of each row.
    pub ids: Vec<i64>,
}

impl Plan {
    /// Number of calls to Odoo.
    pub fn calls(&self) -> usize {
        self.writes.len() + self.loads.len()
    }
}

/// Records (id, values) sharing one set of columns.
type ColumnGroup<'a> = (BTreeSet<&'a str>, Vec<(i64, &'a Map<String, Value>)>);

/// Splits `updates` into `write` and `load` calls. `field_types` maps each field of the model to
/// its Odoo type (`fields_get`); fields missing from it are left to `write`, where Odoo names
/// the unknown field in its error.
pub fn plan(updates: &[(i64, Map<String, Value>)], field_types: &HashMap<String, String>) -> Plan {
    let mut plan = Plan::default();
    // Group identical value dicts, keeping first-seen order.
    let mut groups: Vec<(Vec<i64>, &Map<String, Value>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (id, values) in updates {
        if values.is_empty() {
            continue;
        }
        let key = Value::Object(values.clone()).to_string();
        match index.get(&key) {
            Some(&i) => groups[i].0.push(*id),
            None => {
                index.insert(key, groups.len());
                groups.push((vec![*id], values));
            }
        }
    }
    // Leftovers by column set, for load.
    let mut by_columns: Vec<ColumnGroup<'_>> = Vec::new();
    for (ids, values) in groups {
        let loadable = values
            .iter()
            .all(|(k, v)| to_load_cell(field_types.get(k).map(String::as_str), v).is_some());
        if ids.len() >= GROUP_WRITE_MIN || !loadable {
            plan.writes.push((ids, values.clone()));
            continue;
        }
        let columns: BTreeSet<&str> = values.keys().map(String::as_str).collect();
        let rows = match by_columns.iter_mut().find(|(c, _)| *c == columns) {
            Some((_, rows)) => rows,
            None => {
                by_columns.push((columns, Vec::new()));
                let last = by_columns.len() - 1;
                &mut by_columns[last].1
            }
        };
        rows.extend(ids.into_iter().map(|id| (id, values)));
    }
    for (columns, rows) in by_columns {
        if rows.len() == 1 {
            let (id, values) = rows[0];
            plan.writes.push((vec![id], values.clone()));
            continue;
        }
        let mut call = LoadCall {
            fields: Vec::with_capacity(columns.len() + 1),
            rows: Vec::with_capacity(rows.len()),
            ids: Vec::with_capacity(rows.len()),
        };
        call.fields.push(".id".to_owned());
        for c in &columns {
            let many2one = field_types.get(*c).is_some_and(|t| t == "many2one");
            call.fields.push(if many2one {
                format!("{c}/.id")
            } else {
                (*c).to_owned()
            });
        }
        for (id, values) in rows {
            let mut row = Vec::with_capacity(columns.len() + 1);
            row.push(id.to_string());
            for c in &columns {
                let t = field_types.get(*c).map(String::as_str);
                // Checked above: every value of this group converts.
                row.push(to_load_cell(t, &values[*c]).unwrap_or_default());
            }
            call.ids.push(id);
            call.rows.push(row);
        }
        plan.loads.push(call);
    }
    plan
}

/// A JSON value as a `load` cell for a field of Odoo type `field_type`; `None` when `load`
/// cannot express it (then the record is written with `write`).
pub fn to_load_cell(field_type: Option<&str>, value: &Value) -> Option<String> {
    let field_type = field_type?;
    let empty = matches!(value, Value::Null | Value::Bool(false));
    match field_type {
        "char" | "text" | "html" | "selection" | "date" | "datetime" => match value {
            _ if empty => Some(String::new()),
            Value::String(s) => Some(s.clone()),
            Value::Number(n) if field_type == "char" || field_type == "text" => Some(n.to_string()),
            _ => None,
        },
        "integer" | "float" | "monetary" => match value {
            _ if empty => Some(String::new()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        },
        "boolean" => match value {
            Value::Bool(b) => Some(if *b { "1" } else { "0" }.to_owned()),
            Value::Null => Some("0".to_owned()),
            _ => None,
        },
        "many2one" => match value {
            _ if empty => Some(String::new()),
            Value::Number(n) => n.as_i64().filter(|id| *id > 0).map(|id| id.to_string()),
            _ => None,
        },
        _ => None,
    }
}

/// True when every message of a refused `load` (as [`load_outcome`] joins them) is
/// PostgreSQL's serialization failure: another transaction wrote the same record, and the
/// same `load` sent again succeeds.
pub fn only_conflicts(messages: &str) -> bool {
    !messages.is_empty()
        && messages
            .split("; ")
            .all(|m| m.contains("could not serialize access due to concurrent update"))
}

/// The `load` answer: ids on success, or Odoo's messages.
pub fn load_outcome(result: &Value) -> Result<Vec<i64>, String> {
    let messages: Vec<String> = result
        .get("messages")
        .and_then(Value::as_array)
        .map(|m| {
            m.iter()
                .filter(|msg| msg.get("type").and_then(Value::as_str) == Some("error"))
                .map(|msg| {
                    let text = msg
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("error");
                    match msg.get("record").and_then(Value::as_u64) {
                        Some(row) => format!("row {row}: {text}"),
                        None => text.to_owned(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    match result.get("ids") {
        Some(Value::Array(ids)) if messages.is_empty() => {
            Ok(ids.iter().filter_map(Value::as_i64).collect())
        }
        _ if !messages.is_empty() => Err(messages.join("; ")),
        _ => Err(format!("load returned no ids: {result}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn types() -> HashMap<String, String> {
        [
            ("state", "selection"),
            ("wamid", "char"),
            ("partner_id", "many2one"),
            ("attempt_count", "integer"),
            ("sent_at", "datetime"),
            ("tag_ids", "many2many"),
            ("active", "boolean"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect()
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn distinct_values_go_to_one_load() {
        let updates: Vec<_> = (1..=5)
            .map(|i| {
                (
                    i,
                    obj(json!({"state": "sent", "wamid": format!("wamid.{i}"), "partner_id": i + 100, "sent_at": "2026-01-01 00:00:00"})),
                )
            })
            .collect();
        let p = plan(&updates, &types());
        assert!(p.writes.is_empty());
        assert_eq!(p.loads.len(), 1);
        let l = &p.loads[0];
        assert_eq!(
            l.fields,
            vec![".id", "partner_id/.id", "sent_at", "state", "wamid"]
        );
        assert_eq!(
            l.rows[0],
            vec!["1", "101", "2026-01-01 00:00:00", "sent", "wamid.1"]
        );
        assert_eq!(l.ids, vec![1, 2, 3, 4, 5]);
        assert_eq!(p.calls(), 1);
    }

    #[test]
    fn big_identical_groups_are_writes_and_odd_values_fall_back() {
        let mut updates: Vec<_> = (1..=20)
            .map(|i| (i, obj(json!({"state": "queued"}))))
            .collect();
        updates.push((30, obj(json!({"state": "sent"}))));
        updates.push((31, obj(json!({"state": "sent"}))));
        updates.push((11, obj(json!({"tag_ids": [[6, 0, [1]]]}))));
        updates.push((12, obj(json!({"wamid": "a"}))));
        updates.push((13, obj(json!({"wamid": "b"}))));
        updates.push((14, obj(json!({"nosuch": "x"}))));
        updates.push((15, obj(json!({"attempt_count": 2, "active": false}))));
        let p = plan(&updates, &types());
        assert_eq!(p.writes[0].0, (1..=20).collect::<Vec<_>>());
        assert!(p.writes.iter().any(|(ids, _)| ids == &vec![11]));
        assert!(p.writes.iter().any(|(ids, _)| ids == &vec![14]));
        assert!(p.writes.iter().any(|(ids, _)| ids == &vec![15]));
        // Small groups of identical values ride in the load with the others of the same columns.
        assert_eq!(p.loads.len(), 2);
        assert_eq!(p.loads[0].ids, vec![30, 31]);
        assert_eq!(p.loads[1].ids, vec![12, 13]);
    }

    #[test]
    fn cells() {
        assert_eq!(
            to_load_cell(Some("boolean"), &json!(true)).as_deref(),
            Some("1")
        );
        assert_eq!(
            to_load_cell(Some("many2one"), &json!(false)).as_deref(),
            Some("")
        );
        assert_eq!(
            to_load_cell(Some("integer"), &json!(null)).as_deref(),
            Some("")
        );
        assert_eq!(
            to_load_cell(Some("float"), &json!(1.5)).as_deref(),
            Some("1.5")
        );
        assert_eq!(to_load_cell(Some("many2one"), &json!("x")), None);
        assert_eq!(to_load_cell(Some("binary"), &json!("x")), None);
        assert_eq!(to_load_cell(None, &json!("x")), None);
    }

    #[test]
    fn only_serialization_failures_are_conflicts() {
        let conflict = "row 0: could not serialize access due to concurrent update\n";
        assert!(only_conflicts(conflict));
        assert!(only_conflicts(&format!("{conflict}; {conflict}")));
        assert!(!only_conflicts(&format!(
            "{conflict}; row 1: duplicate key value"
        )));
        assert!(!only_conflicts(""));
    }

    #[test]
    fn load_outcomes() {
        assert_eq!(
            load_outcome(&json!({"ids": [41, 42], "messages": [], "nextrow": 0})),
            Ok(vec![41, 42])
        );
        let err = load_outcome(&json!({"ids": false, "messages": [
            {"rows": {"from": 0, "to": 0}, "type": "error", "record": 0, "field": ".id",
             "message": "Unknown database identifier '999999'"}], "nextrow": 0}))
        .unwrap_err();
        assert_eq!(err, "row 0: Unknown database identifier '999999'");
    }
}
