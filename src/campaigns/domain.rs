//! The audience filter (`whatsapp.campaign.partner_domain`) read as a literal.
//!
//! Odoo's domain widget writes a Python literal such as
//! `["&", ("country_id.code", "=", "CI"), ("customer_rank", ">", 0)]`. The daemon never evaluates
//! it: [`parse`] reads lists and tuples of strings, numbers, `True`, `False` and `None`, checks
//! that it is a domain (leaves of three elements whose field and operator are strings, and the
//! prefix operators `&`, `|`, `!` with their operands), and returns it as JSON for `search`.
//! Anything else (a name such as `uid`, a call such as `context_today()`, arithmetic) is refused
//! with a [`DomainError`] that says where and what to write instead.

use serde_json::{Number, Value};

/// Why an audience filter is refused. Not retryable: the user must change the filter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the audience filter {problem} (at character {position}); write it with the filter editor, as a list of conditions such as [(\"country_id.code\", \"=\", \"CI\")]")]
pub struct DomainError {
    /// 1-based character position of the problem.
    pub position: usize,
    pub problem: String,
}

/// Term operators Odoo 17 accepts in a domain leaf.
const OPERATORS: &[&str] = &[
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
];

/// Parses a domain literal. An empty or blank text is the empty domain (everyone).
pub fn parse(text: &str) -> Result<Vec<Value>, DomainError> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut p = Parser {
        chars: text.chars().collect(),
        pos: 0,
    };
    let value = p.value()?;
    p.skip_ws();
    if p.pos < p.chars.len() {
        return Err(p.err("goes on after the closing bracket"));
    }
    let Value::Array(terms) = value else {
        return Err(DomainError {
            position: 1,
            problem: "is not a list".to_owned(),
        });
    };
    check_domain(&terms)?;
    Ok(terms)
}

/// Checks the structure: leaves and prefix operators with the right number of operands.
fn check_domain(terms: &[Value]) -> Result<(), DomainError> {
    let bad = |i: usize, problem: String| DomainError {
        position: i + 1,
        problem: format!("has a wrong term #{}: {problem}", i + 1),
    };
    // Walk from the end: each leaf pushes one operand, `!` takes one and gives one, `&`/`|`
    // take two and give one.
    let mut operands: usize = 0;
    for (i, term) in terms.iter().enumerate().rev() {
        match term {
            Value::String(op) if op == "&" || op == "|" => {
                if operands < 2 {
                    return Err(bad(i, format!("{op:?} needs two conditions after it")));
                }
                operands -= 1;
            }
            Value::String(op) if op == "!" => {
                if operands < 1 {
                    return Err(bad(i, "\"!\" needs a condition after it".to_owned()));
                }
            }
            Value::Array(leaf) => {
                match leaf.as_slice() {
                    [Value::String(field), Value::String(op), value] => {
                        if field.is_empty() {
                            return Err(bad(i, "the field name is empty".to_owned()));
                        }
                        if !OPERATORS.contains(&op.as_str()) {
                            return Err(bad(i, format!("{op:?} is not a domain operator")));
                        }
                        if op == "any" || op == "not any" {
                            match value {
                                Value::Array(sub) => check_domain(sub)?,
                                _ => {
                                    return Err(bad(
                                        i,
                                        format!("{op:?} needs a list of conditions"),
                                    ))
                                }
                            }
                        }
                    }
                    // Odoo's constant leaves (1, "=", 1) and (0, "=", 1).
                    [Value::Number(n), Value::String(op), Value::Number(m)]
                        if op == "="
                            && m.as_i64() == Some(1)
                            && matches!(n.as_i64(), Some(0 | 1)) => {}
                    _ => return Err(bad(i, "a condition is (field, operator, value)".to_owned())),
                }
                operands += 1;
            }
            other => {
                return Err(bad(
                    i,
                    format!("{other} is neither a condition nor \"&\", \"|\" or \"!\""),
                ))
            }
        }
    }
    Ok(())
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn err(&self, problem: &str) -> DomainError {
        DomainError {
            position: self.pos + 1,
            problem: problem.to_owned(),
        }
    }

    fn skip_ws(&mut self) {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
    }

    fn value(&mut self) -> Result<Value, DomainError> {
        self.skip_ws();
        let Some(&c) = self.chars.get(self.pos) else {
            return Err(self.err("ends too early"));
        };
        match c {
            '[' => self.sequence(']'),
            '(' => self.sequence(')'),
            '\'' | '"' => self.string(c),
            '-' | '+' | '.' | '0'..='9' => self.number(),
            c if c.is_alphabetic() || c == '_' => {
                let start = self.pos;
                while self
                    .chars
                    .get(self.pos)
                    .is_some_and(|c| c.is_alphanumeric() || *c == '_' || *c == '.')
                {
                    self.pos += 1;
                }
                let word: String = self.chars[start..self.pos].iter().collect();
                match word.as_str() {
                    "True" => Ok(Value::Bool(true)),
                    "False" => Ok(Value::Bool(false)),
                    "None" => Ok(Value::Null),
                    _ => {
                        self.pos = start;
                        Err(self.err(&format!(
                            "uses {word:?}, a name the daemon does not evaluate (only texts, numbers, True, False and None are allowed)"
                        )))
                    }
                }
            }
            other => Err(self.err(&format!("has an unexpected {other:?}"))),
        }
    }

    fn sequence(&mut self, close: char) -> Result<Value, DomainError> {
        self.pos += 1; // the opening bracket
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            match self.chars.get(self.pos) {
                None => return Err(self.err(&format!("misses a closing {close:?}"))),
                Some(&c) if c == close => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                Some(_) => {}
            }
            items.push(self.value()?);
            self.skip_ws();
            match self.chars.get(self.pos) {
                Some(',') => self.pos += 1,
                Some(&c) if c == close => {}
                None => return Err(self.err(&format!("misses a closing {close:?}"))),
                Some(&c) => {
                    return Err(self.err(&format!(
                        "has {c:?} where a comma or {close:?} was expected"
                    )))
                }
            }
        }
    }

    fn string(&mut self, quote: char) -> Result<Value, DomainError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(&c) = self.chars.get(self.pos) else {
                self.pos = start;
                return Err(self.err("has a text that is never closed"));
            };
            self.pos += 1;
            match c {
                c if c == quote => return Ok(Value::String(out)),
                '\\' => {
                    let Some(&e) = self.chars.get(self.pos) else {
                        continue;
                    };
                    self.pos += 1;
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        '0' => out.push('\0'),
                        'u' => {
                            let hex: String = self.chars.iter().skip(self.pos).take(4).collect();
                            let code = u32::from_str_radix(&hex, 16)
                                .ok()
                                .filter(|_| hex.len() == 4)
                                .and_then(char::from_u32)
                                .ok_or_else(|| self.err("has a bad \\u escape"))?;
                            self.pos += 4;
                            out.push(code);
                        }
                        other => out.push(other),
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn number(&mut self) -> Result<Value, DomainError> {
        let start = self.pos;
        while self
            .chars
            .get(self.pos)
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E' | '_'))
        {
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos]
            .iter()
            .filter(|c| **c != '_')
            .collect();
        if let Ok(i) = text.parse::<i64>() {
            return Ok(Value::Number(i.into()));
        }
        match text.parse::<f64>().ok().and_then(Number::from_f64) {
            Some(n) => Ok(Value::Number(n)),
            None => {
                self.pos = start;
                Err(self.err(&format!("has {text:?}, which is not a number")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse;
    use serde_json::json;

    #[test]
    fn the_widgets_literals_are_read() {
        assert_eq!(parse("").unwrap(), Vec::<serde_json::Value>::new());
        assert_eq!(parse("[]").unwrap(), Vec::<serde_json::Value>::new());
        assert_eq!(
            parse(r#"[("country_id.code", "=", "CI"), ('customer_rank', '>', 0)]"#).unwrap(),
            vec![
                json!(["country_id.code", "=", "CI"]),
                json!(["customer_rank", ">", 0])
            ]
        );
        assert_eq!(
            parse("['|', ('is_company', '=', True), '!', ('lang', 'in', ['fr_FR', 'fr_BE']), ('tz', '=', None), ('x', '>=', -1.5)]")
                .unwrap(),
            vec![
                json!("|"),
                json!(["is_company", "=", true]),
                json!("!"),
                json!(["lang", "in", ["fr_FR", "fr_BE"]]),
                json!(["tz", "=", null]),
                json!(["x", ">=", -1.5]),
            ]
        );
        // Tuples, trailing commas, escapes, Odoo's constant leaf, a sub-domain under "any".
        assert_eq!(
            parse(r#"[(1, "=", 1), ("name", "ilike", 'l\'été'), ("category_id", "any", [("name", "=", "VIP")]),]"#)
                .unwrap(),
            vec![
                json!([1, "=", 1]),
                json!(["name", "ilike", "l'été"]),
                json!(["category_id", "any", [["name", "=", "VIP"]]]),
            ]
        );
    }

    #[test]
    fn anything_evaluated_is_refused_with_its_place() {
        let e = parse("[('create_uid', '=', uid)]").unwrap_err();
        assert!(e.to_string().contains("\"uid\""), "{e}");
        assert_eq!(e.position, 22);
        let e = parse("[('date', '>', context_today().strftime('%Y'))]").unwrap_err();
        assert!(e.to_string().contains("context_today"), "{e}");
        assert!(parse("[('a', '=', 1 + 1)]").is_err());
        assert!(parse("__import__('os').system('x')").is_err());
        assert!(parse("{'a': 1}").is_err());
    }

    #[test]
    fn malformed_domains_say_what_is_wrong() {
        let e = parse("('name', '=', 'x')").unwrap_err();
        assert!(e.to_string().contains("condition"), "{e}");
        let e = parse("[('name', '=', 'x')").unwrap_err();
        assert!(e.to_string().contains("closing"), "{e}");
        let e = parse("['|', ('name', '=', 'x')]").unwrap_err();
        assert!(e.to_string().contains("two conditions"), "{e}");
        let e = parse("[('name', 'equals', 'x')]").unwrap_err();
        assert!(e.to_string().contains("not a domain operator"), "{e}");
        let e = parse("[('name', '=')]").unwrap_err();
        assert!(e.to_string().contains("(field, operator, value)"), "{e}");
        let e = parse("[('name', '=', 'x)]").unwrap_err();
        assert!(e.to_string().contains("never closed"), "{e}");
        let e = parse("[] []").unwrap_err();
        assert!(e.to_string().contains("goes on"), "{e}");
        let e = parse("'abc'").unwrap_err();
        assert!(e.to_string().contains("not a list"), "{e}");
        // The message says how to write it.
        assert!(e.to_string().contains("filter editor"));
    }
}
