//! Search domains and order clauses, checked and evaluated the way Odoo 17 does, with the same
//! error messages (`odoo/osv/expression.py`, `odoo/models.py`).
//!
//! Supported operators: `=`, `!=` (`<>`), `<`, `<=`, `>`, `>=`, `=?`, `like`, `not like`,
//! `ilike`, `not ilike`, `=like`, `=ilike`, `in`, `not in`, `child_of`, `parent_of`, `any`,
//! `not any`, with `&`, `|`, `!` in prefix notation and dotted paths through relational fields.

use super::orm::{Db, OdooErr};
use super::schema::{Kind, Model};
use serde_json::Value;

pub const TERM_OPERATORS: &[&str] = &[
    "=",
    "!=",
    "<=",
    "<",
    ">",
    ">=",
    "=?",
    "=like",
    "=ilike",
    "like",
    "not like",
    "ilike",
    "not ilike",
    "in",
    "not in",
    "child_of",
    "parent_of",
    "any",
    "not any",
    "<>",
];

/// A parsed domain.
#[derive(Clone, Debug)]
pub enum Node {
    True,
    False,
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Not(Box<Node>),
    Leaf {
        field: String,
        op: String,
        value: Value,
        /// For `any` / `not any` (and dotted paths): the domain on the comodel.
        sub: Option<Box<Node>>,
    },
}

/// Python's `repr()` of a JSON value (as Odoo formats leaves in its messages).
pub fn pyrepr(v: &Value) -> String {
    match v {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(f) = n.as_f64() {
                if f.fract() == 0.0 && f.abs() < 1e16 {
                    format!("{f:.1}")
                } else {
                    format!("{f}")
                }
            } else {
                n.to_string()
            }
        }
        Value::String(s) => pystr(s),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(pyrepr).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}: {}", pystr(k), pyrepr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Python's `repr()` of a tuple.
pub fn pytuple(items: &[Value]) -> String {
    if items.len() == 1 {
        format!("({},)", pyrepr(&items[0]))
    } else {
        format!(
            "({})",
            items.iter().map(pyrepr).collect::<Vec<_>>().join(", ")
        )
    }
}

fn pystr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

fn is_operator(v: &Value) -> bool {
    matches!(v.as_str(), Some("&") | Some("|") | Some("!"))
}

/// Parses and checks `domain` for `model`, in Odoo's order of checks.
pub fn parse(db: &Db, model: &Model, domain: &Value) -> Result<Node, OdooErr> {
    let items = match domain {
        Value::Array(items) => items,
        Value::Null | Value::Bool(false) => return Ok(Node::True),
        other => {
            return Err(OdooErr::value(format!(
                "Domain {} is syntactically not correct.",
                pyrepr(other)
            )))
        }
    };
    if items.is_empty() {
        return Ok(Node::True);
    }
    // normalize_domain: count the expressions.
    let mut expected: i64 = 1;
    for token in items {
        if expected == 0 {
            expected = 1;
        }
        if token.is_array() {
            expected -= 1;
        } else {
            let arity = match token.as_str() {
                Some("!") => 1,
                Some("&") | Some("|") => 2,
                _ => 0,
            };
            expected += arity - 1;
        }
    }
    if expected != 0 {
        return Err(OdooErr::value(format!(
            "Domain {} is syntactically not correct.",
            pyrepr(domain)
        )));
    }
    // _anyfy_leaves: unpack each term and check its field.
    let mut leaves: Vec<Option<(Value, String, Value)>> = Vec::with_capacity(items.len());
    for item in items {
        if is_operator(item) {
            leaves.push(None);
            continue;
        }
        let parts: Vec<Value> = match item {
            Value::Array(a) => a.clone(),
            Value::String(s) => s.chars().map(|c| Value::from(c.to_string())).collect(),
            Value::Number(_) => {
                return Err(OdooErr::type_error("cannot unpack non-iterable int object"))
            }
            Value::Bool(_) => {
                return Err(OdooErr::type_error(
                    "cannot unpack non-iterable bool object",
                ))
            }
            Value::Null => {
                return Err(OdooErr::type_error(
                    "cannot unpack non-iterable NoneType object",
                ))
            }
            Value::Object(m) => m.keys().map(|k| Value::from(k.as_str())).collect(),
        };
        if parts.len() > 3 {
            return Err(OdooErr::value("too many values to unpack (expected 3)"));
        }
        if parts.len() < 3 {
            return Err(OdooErr::value(format!(
                "not enough values to unpack (expected 3, got {})",
                parts.len()
            )));
        }
        let tuple = pytuple(&parts);
        let boolean_leaf = (parts[0] == 1 || parts[0] == 0) && parts[1] == "=" && parts[2] == 1;
        if boolean_leaf {
            leaves.push(Some((parts[0].clone(), "=".to_owned(), parts[2].clone())));
            continue;
        }
        let Some(left) = parts[0].as_str() else {
            let ty = match &parts[0] {
                Value::Number(n) if n.is_f64() => "float",
                Value::Number(_) => "int",
                Value::Bool(_) => "bool",
                Value::Null => "NoneType",
                Value::Array(_) => "list",
                Value::Object(_) => "dict",
                Value::String(_) => "str",
            };
            return Err(OdooErr::attribute(format!(
                "'{ty}' object has no attribute 'split'"
            )));
        };
        let first = left.split('.').next().unwrap_or(left);
        if db.field_kind(model, first).is_none() {
            return Err(OdooErr::value(format!(
                "Invalid field {}.{first} in leaf {tuple}",
                model.name
            )));
        }
        let op = parts[1]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| pyrepr(&parts[1]));
        leaves.push(Some((parts[0].clone(), op, parts[2].clone())));
    }
    // parse: check each leaf, build the tree.
    let mut stack: Vec<Node> = Vec::new();
    for (item, leaf) in items.iter().zip(leaves).rev() {
        match item.as_str() {
            Some("!") if leaf.is_none() => {
                let a = stack.pop().unwrap_or(Node::True);
                stack.push(Node::Not(Box::new(a)));
            }
            Some(op @ ("&" | "|")) if leaf.is_none() => {
                let a = stack.pop().unwrap_or(Node::True);
                let b = stack.pop().unwrap_or(Node::True);
                stack.push(if op == "&" {
                    Node::And(Box::new(a), Box::new(b))
                } else {
                    Node::Or(Box::new(a), Box::new(b))
                });
            }
            _ => {
                let Some((left, op, right)) = leaf else {
                    continue;
                };
                stack.push(parse_leaf(db, model, &left, &op, right, item)?);
            }
        }
    }
    // Implicit '&' between the remaining top-level expressions.
    let mut node = stack.pop().unwrap_or(Node::True);
    while let Some(next) = stack.pop() {
        node = Node::And(Box::new(node), Box::new(next));
    }
    Ok(node)
}

fn parse_leaf(
    db: &Db,
    model: &Model,
    left: &Value,
    op: &str,
    right: Value,
    original: &Value,
) -> Result<Node, OdooErr> {
    if let Some(n) = left.as_i64() {
        return Ok(if n == 1 { Node::True } else { Node::False });
    }
    if !TERM_OPERATORS.contains(&op) {
        let parts = original.as_array().cloned().unwrap_or_default();
        return Err(OdooErr::value(format!("Invalid leaf {}", pytuple(&parts))));
    }
    let left = left.as_str().unwrap_or_default();
    // normalize_leaf
    let mut op = op.to_lowercase();
    if op == "<>" {
        op = "!=".to_owned();
    }
    if right.is_boolean() && (op == "in" || op == "not in") {
        op = if op == "in" { "=" } else { "!=" }.to_owned();
    }
    if right.is_array() && (op == "=" || op == "!=") {
        op = if op == "=" { "in" } else { "not in" }.to_owned();
    }
    let (first, rest) = match left.split_once('.') {
        Some((f, r)) => (f, Some(r)),
        None => (left, None),
    };
    let kind = db.field_kind(model, first).cloned().unwrap_or(Kind::Char);
    if let Some(rest) = rest {
        let Some(comodel) = kind.comodel().and_then(|c| db.schema.model(c)) else {
            return Err(OdooErr::value(format!(
                "Invalid field {}.{first} in leaf {}",
                model.name,
                pytuple(original.as_array().map(Vec::as_slice).unwrap_or(&[]))
            )));
        };
        let sub = parse(
            db,
            comodel,
            &Value::Array(vec![Value::Array(vec![
                Value::from(rest),
                Value::from(op.as_str()),
                right,
            ])]),
        )?;
        return Ok(Node::Leaf {
            field: first.to_owned(),
            op: "any".to_owned(),
            value: Value::Null,
            sub: Some(Box::new(sub)),
        });
    }
    if op == "any" || op == "not any" {
        let Some(comodel) = kind.comodel().and_then(|c| db.schema.model(c)) else {
            return Err(OdooErr::value(format!(
                "Invalid operator {op} on non-relational field {}.{first}",
                model.name
            )));
        };
        let sub = parse(db, comodel, &right)?;
        return Ok(Node::Leaf {
            field: first.to_owned(),
            op,
            value: Value::Null,
            sub: Some(Box::new(sub)),
        });
    }
    if op == "=?" {
        if matches!(right, Value::Null | Value::Bool(false)) {
            return Ok(Node::True);
        }
        op = if right.is_array() { "in" } else { "=" }.to_owned();
    }
    let value = if (op == "in" || op == "not in") && !right.is_array() {
        Value::Array(vec![right])
    } else {
        right
    };
    Ok(Node::Leaf {
        field: first.to_owned(),
        op,
        value,
        sub: None,
    })
}

/// True when the record `id` of `model` matches `node`.
pub fn matches(db: &Db, model: &Model, id: i64, node: &Node) -> bool {
    match node {
        Node::True => true,
        Node::False => false,
        Node::And(a, b) => matches(db, model, id, a) && matches(db, model, id, b),
        Node::Or(a, b) => matches(db, model, id, a) || matches(db, model, id, b),
        Node::Not(a) => !matches(db, model, id, a),
        Node::Leaf {
            field,
            op,
            value,
            sub,
        } => leaf_matches(db, model, id, field, op, value, sub.as_deref()),
    }
}

fn leaf_matches(
    db: &Db,
    model: &Model,
    id: i64,
    field: &str,
    op: &str,
    right: &Value,
    sub: Option<&Node>,
) -> bool {
    let Some(kind) = db.field_kind(model, field) else {
        return false;
    };
    let stored = db.stored(model, id, field);
    match &kind {
        Kind::Many2one(comodel) | Kind::One2many(comodel, _) | Kind::Many2many(comodel) => {
            let related: Vec<i64> = db.related_ids(model, id, field);
            let Some(co) = db.schema.model(comodel) else {
                return false;
            };
            if let Some(sub) = sub {
                let any = related.iter().any(|rid| matches(db, co, *rid, sub));
                return if op == "not any" { !any } else { any };
            }
            relational_matches(db, co, &related, op, right)
        }
        _ => scalar_matches(kind, &stored, op, right),
    }
}

fn relational_matches(db: &Db, comodel: &Model, related: &[i64], op: &str, right: &Value) -> bool {
    let empty = related.is_empty();
    let names = || {
        related
            .iter()
            .map(|r| db.display_name(comodel, *r))
            .collect::<Vec<_>>()
    };
    let ids_of = |v: &Value| -> Vec<i64> {
        match v {
            Value::Array(a) => a.iter().filter_map(Value::as_i64).collect(),
            other => other.as_i64().into_iter().collect(),
        }
    };
    let has_false = |v: &Value| match v {
        Value::Array(a) => a
            .iter()
            .any(|x| matches!(x, Value::Bool(false) | Value::Null)),
        other => matches!(other, Value::Bool(false) | Value::Null),
    };
    match op {
        "=" | "in" => {
            if right.is_string()
                || right
                    .as_array()
                    .is_some_and(|a| a.iter().any(Value::is_string))
            {
                let wanted: Vec<String> = match right {
                    Value::Array(a) => a
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect(),
                    v => v.as_str().map(str::to_owned).into_iter().collect(),
                };
                return names().iter().any(|n| wanted.contains(n));
            }
            (has_false(right) && empty) || related.iter().any(|r| ids_of(right).contains(r))
        }
        "!=" | "not in" => !relational_matches(
            db,
            comodel,
            related,
            if op == "!=" { "=" } else { "in" },
            right,
        ),
        "like" | "ilike" | "=like" | "=ilike" => names().iter().any(|n| like(n, right, op)),
        "not like" | "not ilike" => !names()
            .iter()
            .any(|n| like(n, right, op.trim_start_matches("not "))),
        "child_of" | "parent_of" => {
            let roots = ids_of(right);
            let family = db.hierarchy(comodel, &roots, op == "child_of");
            related.iter().any(|r| family.contains(r))
        }
        "<" | "<=" | ">" | ">=" => related.first().is_some_and(|r| {
            right
                .as_i64()
                .is_some_and(|v| compare_num(*r as f64, op, v as f64))
        }),
        _ => false,
    }
}

fn scalar_matches(kind: &Kind, stored: &Value, op: &str, right: &Value) -> bool {
    let is_null = match kind {
        Kind::Boolean => false,
        _ => stored.is_null(),
    };
    let as_bool = |v: &Value| v.as_bool().unwrap_or(false);
    match op {
        "=" => {
            if matches!(kind, Kind::Boolean) {
                return as_bool(stored) == truthy(right);
            }
            if matches!(right, Value::Bool(false) | Value::Null) {
                return is_null;
            }
            !is_null && equal(kind, stored, right)
        }
        "!=" => !scalar_matches(kind, stored, "=", right),
        "in" | "not in" => {
            let list = right.as_array().cloned().unwrap_or_default();
            let found = list.iter().any(|v| scalar_matches(kind, stored, "=", v));
            if op == "in" {
                found
            } else {
                !found
            }
        }
        "<" | "<=" | ">" | ">=" => {
            if is_null || right.is_null() || right == &Value::Bool(false) {
                return false;
            }
            if let (Value::String(a), Value::String(b)) = (stored, right) {
                if !(matches!(kind, Kind::Datetime) && b.len() == 10) {
                    let (a, b) = (a.as_str(), b.as_str());
                    return match op {
                        "<" => a < b,
                        "<=" => a <= b,
                        ">" => a > b,
                        _ => a >= b,
                    };
                }
            }
            match (number(stored), number(right)) {
                (Some(a), Some(b)) => compare_num(a, op, b),
                _ => {
                    let a = text(stored);
                    let b = normalize_date(kind, &text(right));
                    match op {
                        "<" => a < b,
                        "<=" => a <= b,
                        ">" => a > b,
                        _ => a >= b,
                    }
                }
            }
        }
        "like" | "ilike" | "=like" | "=ilike" => !is_null && like(&text(stored), right, op),
        "not like" | "not ilike" => {
            is_null || !like(&text(stored), right, op.trim_start_matches("not "))
        }
        _ => false,
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

fn equal(kind: &Kind, stored: &Value, right: &Value) -> bool {
    match (stored, right) {
        (Value::String(a), Value::String(b))
            if !(matches!(kind, Kind::Datetime) && b.len() == 10) =>
        {
            a == b
        }
        _ => match (number(stored), number(right)) {
            (Some(a), Some(b)) => a == b,
            _ => text(stored) == normalize_date(kind, &text(right)),
        },
    }
}

fn normalize_date(kind: &Kind, s: &str) -> String {
    if matches!(kind, Kind::Datetime) && s.len() == 10 {
        format!("{s} 00:00:00")
    } else {
        s.to_owned()
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

fn compare_num(a: f64, op: &str, b: f64) -> bool {
    match op {
        "<" => a < b,
        "<=" => a <= b,
        ">" => a > b,
        _ => a >= b,
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// SQL LIKE: `like`/`ilike` wrap the value in `%`; `=like`/`=ilike` use it as the pattern.
pub fn like(haystack: &str, right: &Value, op: &str) -> bool {
    let raw = text(right);
    let pattern = if op.starts_with('=') {
        raw
    } else {
        format!("%{raw}%")
    };
    let insensitive = op.ends_with("ilike");
    let (h, p) = if insensitive {
        (haystack.to_lowercase(), pattern.to_lowercase())
    } else {
        (haystack.to_owned(), pattern)
    };
    like_match(
        &h.chars().collect::<Vec<_>>(),
        &p.chars().collect::<Vec<_>>(),
    )
}

fn like_match(s: &[char], p: &[char]) -> bool {
    // Iterative wildcard match: % any run, _ one character, \ escapes.
    let (mut si, mut pi) = (0, 0);
    let (mut star_p, mut star_s) = (None, 0);
    while si < s.len() {
        if pi < p.len() && p[pi] == '\\' && pi + 1 < p.len() && p[pi + 1] == s[si] {
            si += 1;
            pi += 2;
        } else if pi < p.len() && (p[pi] == '_' || (p[pi] == s[si] && p[pi] != '%')) {
            si += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star_p = Some(pi);
            star_s = si;
            pi += 1;
        } else if let Some(sp) = star_p {
            pi = sp + 1;
            star_s += 1;
            si = star_s;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '%' {
        pi += 1;
    }
    pi == p.len()
}

/// One term of an order clause.
#[derive(Clone, Debug)]
pub struct OrderTerm {
    pub field: String,
    pub desc: bool,
    pub nulls_first: bool,
}

/// Parses an order clause (`"name desc, id"`) with Odoo's checks and messages.
pub fn parse_order(db: &Db, model: &Model, order: &str) -> Result<Vec<OrderTerm>, OdooErr> {
    let invalid = || {
        OdooErr::user(format!(
            "Invalid \"order\" specified ({order}). A valid \"order\" specification is a comma-separated list of valid field names (optionally followed by asc/desc for the direction)"
        ))
    };
    let mut terms = Vec::new();
    if order.trim().is_empty() {
        return Ok(terms);
    }
    for part in order.split(',') {
        let words: Vec<&str> = part.split_whitespace().collect();
        let Some((field, rest)) = words.split_first() else {
            return Err(invalid());
        };
        let field = field.trim_matches('"').to_lowercase();
        if field.is_empty() || !field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(invalid());
        }
        let rest: Vec<String> = rest.iter().map(|w| w.to_lowercase()).collect();
        let (desc, tail) = match rest.first().map(String::as_str) {
            Some("desc") => (true, &rest[1..]),
            Some("asc") => (false, &rest[1..]),
            _ => (false, &rest[..]),
        };
        let nulls_first = match tail {
            [] => desc,
            [a, b] if a == "nulls" && b == "first" => true,
            [a, b] if a == "nulls" && b == "last" => false,
            _ => return Err(invalid()),
        };
        if db.field_kind(model, &field).is_none() {
            return Err(OdooErr::value(format!(
                "Invalid field '{field}' on model '{}'",
                model.name
            )));
        }
        terms.push(OrderTerm {
            field,
            desc,
            nulls_first,
        });
    }
    Ok(terms)
}
