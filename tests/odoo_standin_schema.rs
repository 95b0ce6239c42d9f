//! The stand-in's models follow the addon: every stored field the addon declares on its models
//! (and on res.partner, sale.order, account.move) exists in the stand-in with the same type and
//! comodel, and the stand-in has no field the addon lacks.
//!
//! Reads `odoo_addon/whatsapp_sidecar/models/*.py` (or `$WHATSAPP_ADDON_DIR/models`); prints
//! that it was skipped when the addon is not there.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use support::odoo_standin::schema::{self, Kind};

/// A stored field as declared in Python.
#[derive(Debug)]
struct PyField {
    odoo_type: String,
    comodel: Option<String>,
}

fn addon_dir() -> PathBuf {
    match std::env::var("WHATSAPP_ADDON_DIR") {
        Ok(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("odoo_addon/whatsapp_sidecar"),
    }
}

fn odoo_type(py: &str) -> String {
    match py {
        "Char" => "char",
        "Text" => "text",
        "Html" => "html",
        "Integer" => "integer",
        "Float" => "float",
        "Monetary" => "monetary",
        "Boolean" => "boolean",
        "Date" => "date",
        "Datetime" => "datetime",
        "Binary" => "binary",
        "Selection" => "selection",
        "Many2one" => "many2one",
        "One2many" => "one2many",
        "Many2many" => "many2many",
        "Many2oneReference" => "many2one_reference",
        "Json" => "json",
        other => other,
    }
    .to_owned()
}

/// `(model, field) -> PyField` for the stored fields of every class in the Python source.
fn parse_python(source: &str, out: &mut BTreeMap<(String, String), PyField>) {
    let mut model: Option<String> = None;
    let mut related: BTreeMap<String, String> = BTreeMap::new();
    let lines: Vec<&str> = source.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line.starts_with("class ") {
            model = None;
        }
        let t = line.trim();
        for key in ["_name = ", "_inherit = "] {
            if let Some(rest) = t.strip_prefix(key) {
                if model.is_none() || key == "_name = " {
                    if let Some(name) = rest
                        .trim()
                        .strip_prefix('"')
                        .and_then(|r| r.split('"').next())
                    {
                        model = Some(name.to_owned());
                    }
                }
            }
        }
        let decl = line.strip_prefix("    ").filter(|l| !l.starts_with(' '));
        if let (Some(m), Some(decl)) = (&model, decl) {
            if let Some((name, rest)) = decl.split_once(" = fields.") {
                let (kind, args_start) = rest.split_once('(').unwrap_or((rest, ""));
                // Collect the call's arguments up to the matching parenthesis.
                let mut args = String::from(args_start);
                let mut depth: i32 = 1 + args_start.matches('(').count() as i32
                    - args_start.matches(')').count() as i32;
                while depth > 0 && i + 1 < lines.len() {
                    i += 1;
                    args.push('\n');
                    args.push_str(lines[i]);
                    depth +=
                        lines[i].matches('(').count() as i32 - lines[i].matches(')').count() as i32;
                }
                let stored = (!args.contains("compute=") && !args.contains("related="))
                    || args.contains("store=True");
                if args.contains("related=") && args.contains("store=True") {
                    related.insert(name.to_owned(), kind.to_owned());
                }
                if stored {
                    let comodel = args
                        .trim_start()
                        .strip_prefix('"')
                        .and_then(|r| r.split('"').next())
                        .filter(|_| ["Many2one", "One2many", "Many2many"].contains(&kind))
                        .map(str::to_owned)
                        .or_else(|| {
                            args.split("comodel_name=\"")
                                .nth(1)
                                .and_then(|r| r.split('"').next())
                                .map(str::to_owned)
                        });
                    out.insert(
                        (m.clone(), name.trim().to_owned()),
                        PyField {
                            odoo_type: odoo_type(kind),
                            comodel,
                        },
                    );
                }
            }
        }
        i += 1;
    }
}

#[test]
fn stand_in_models_match_the_addon() {
    let dir = addon_dir().join("models");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        println!(
            "SKIPPED: no addon models at {} (set WHATSAPP_ADDON_DIR)",
            dir.display()
        );
        return;
    };
    let mut py = BTreeMap::new();
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().is_some_and(|x| x == "py") {
            let source = std::fs::read_to_string(&path).unwrap();
            parse_python(&source, &mut py);
        }
    }
    assert!(
        py.len() > 100,
        "only {} fields parsed from {}",
        py.len(),
        dir.display()
    );
    let schema = schema::parse(schema::SCHEMA).unwrap();
    let mut problems = Vec::new();
    for ((model, field), f) in &py {
        if model == "res.config.settings" {
            continue;
        }
        let Some(m) = schema.model(model) else {
            problems.push(format!("{model}: model missing from the stand-in"));
            continue;
        };
        match m.field(field) {
            None => problems.push(format!(
                "{model}.{field}: {} field missing from the stand-in",
                f.odoo_type
            )),
            Some(sf) => {
                if sf.kind.odoo_type() != f.odoo_type {
                    problems.push(format!(
                        "{model}.{field}: addon {}, stand-in {}",
                        f.odoo_type,
                        sf.kind.odoo_type()
                    ));
                }
                if let (Some(want), Some(got)) = (&f.comodel, sf.kind.comodel()) {
                    if want != got {
                        problems.push(format!(
                            "{model}.{field}: addon -> {want}, stand-in -> {got}"
                        ));
                    }
                }
            }
        }
    }
    for (name, m) in &schema.models {
        if !name.starts_with("whatsapp.") {
            continue;
        }
        for f in &m.fields {
            if !py.contains_key(&(name.clone(), f.name.clone())) {
                let kind = matches!(f.kind, Kind::One2many(..))
                    .then_some(" (one2many)")
                    .unwrap_or("");
                problems.push(format!(
                    "{name}.{}{kind}: in the stand-in, not a stored field of the addon",
                    f.name
                ));
            }
        }
    }
    println!(
        "{} stored addon fields compared with the stand-in",
        py.len()
    );
    assert!(
        problems.is_empty(),
        "{} differences:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
