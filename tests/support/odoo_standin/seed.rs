//! The stand-in's starting data: the slice of Odoo 17's demo database (db `wa17`) that the
//! recorded transcripts show, with the same ids, so a replayed request finds the same records.

use super::orm::{Db, User};
use serde_json::{json, Map, Value};
use std::collections::HashSet;

pub const ADMIN_UID: i64 = 2;
pub const DEMO_UID: i64 = 6;

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn put(db: &mut Db, model: &str, id: i64, vals: Value) {
    if let Err(e) = db.insert_with_id(model, id, obj(vals)) {
        panic!("stand-in seed {model}({id}): {} {}", e.name, e.message);
    }
}

/// The addon's directory (for the records it ships as data).
fn addon_dir() -> std::path::PathBuf {
    match std::env::var("WHATSAPP_ADDON_DIR") {
        Ok(dir) if !dir.is_empty() => std::path::PathBuf::from(dir),
        _ => {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("odoo_addon/whatsapp_sidecar")
        }
    }
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The PO file's translations of `model:<model>,<field>:<module>.<xmlid>` occurrences:
/// (field, xmlid) → msgstr.
fn po_translations(text: &str, model: &str) -> std::collections::HashMap<(String, String), String> {
    fn unquote(line: &str) -> String {
        let inner = line.trim().trim_start_matches('"').trim_end_matches('"');
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(o) => out.push(o),
                    None => {}
                }
            } else {
                out.push(c);
            }
        }
        out
    }
    let mut out = std::collections::HashMap::new();
    for entry in text.split("\n\n") {
        let mut occurrences = Vec::new();
        let mut msgstr = String::new();
        let mut in_str = false;
        for line in entry.lines() {
            if let Some(refs) = line.strip_prefix("#: ") {
                for r in refs.split_whitespace() {
                    if let Some(rest) = r.strip_prefix(&format!("model:{model},")) {
                        if let Some((field, xmlid)) = rest.split_once(':') {
                            let xmlid = xmlid.rsplit('.').next().unwrap_or(xmlid);
                            occurrences.push((field.to_owned(), xmlid.to_owned()));
                        }
                    }
                }
            } else if let Some(rest) = line.strip_prefix("msgstr ") {
                in_str = true;
                msgstr.push_str(&unquote(rest));
            } else if line.starts_with('"') && in_str {
                msgstr.push_str(&unquote(line));
            } else if line.starts_with("msgid") {
                in_str = false;
            }
        }
        if !msgstr.is_empty() {
            for o in occurrences {
                out.insert(o, msgstr.clone());
            }
        }
    }
    out
}

/// The customer texts the addon ships (`data/whatsapp_text_data.xml` and
/// `data/whatsapp_text_scenario_data.xml`, `data/whatsapp_text_invoice_data.xml`), with their
/// French translations from `i18n/fr.po`, as a database with the addon installed has them.
fn seed_texts(db: &mut Db) {
    let dir = addon_dir();
    let mut xml = String::new();
    for file in [
        "data/whatsapp_text_data.xml",
        "data/whatsapp_text_scenario_data.xml",
        "data/whatsapp_text_invoice_data.xml",
    ] {
        if let Ok(text) = std::fs::read_to_string(dir.join(file)) {
            xml.push_str(&text);
        }
    }
    if xml.is_empty() {
        return;
    }
    let po = std::fs::read_to_string(dir.join("i18n/fr.po")).unwrap_or_default();
    let french = po_translations(&po, "whatsapp.text");
    for (n, record) in xml.split("<record id=\"").skip(1).enumerate() {
        let xmlid = record.split('"').next().unwrap_or_default().to_owned();
        let field = |name: &str| {
            let open = format!("<field name=\"{name}\">");
            let start = record.find(&open)? + open.len();
            let end = record[start..].find("</field>")? + start;
            Some(xml_unescape(&record[start..end]))
        };
        let (Some(key), Some(body)) = (field("key"), field("body")) else {
            continue;
        };
        let id = 1 + n as i64;
        let mut vals = json!({"key": key, "name": field("name").unwrap_or_default(), "body": body});
        if let Some(p) = field("placeholders") {
            vals["placeholders"] = json!(p);
        }
        if let Some(m) = field("max_length").and_then(|m| m.parse::<i64>().ok()) {
            vals["max_length"] = json!(m);
        }
        put(db, "whatsapp.text", id, vals);
        for f in ["body", "name"] {
            if let Some(t) = french.get(&(f.to_owned(), xmlid.clone())) {
                if let Some(row) = db
                    .tables
                    .get_mut("whatsapp.text")
                    .and_then(|table| table.rows.get_mut(&id))
                {
                    row.insert(super::orm::translation_key(f, "fr_FR"), json!(t));
                }
            }
        }
    }
    // The order buttons' actions (data/whatsapp_button_action_data.xml).
    for (id, name, button, action) in [
        (1, "Validate the order", "order_validate", "confirm_order"),
        (2, "Cancel the order", "order_cancel", "cancel_order"),
        (
            3,
            "Send the order details",
            "order_details",
            "send_order_details",
        ),
        // data/whatsapp_scenario_data.xml: the rows of the "My invoices" list.
        (
            4,
            "Send the invoice picked in a list",
            "invoice_details",
            "send_invoice",
        ),
    ] {
        put(
            db,
            "whatsapp.button.action",
            id,
            json!({"name": name, "sequence": id * 10, "company_id": false, "button_id": button,
                   "match_type": "prefix", "action_type": action}),
        );
    }
}

/// Fills `db` with the demo records and users.
/// The id of the group "WhatsApp Sidecar (technical)", which the admin is in.
pub const TECHNICAL_GROUP: i64 = 70;

pub fn seed(db: &mut Db, api_key: &str) {
    seed_texts(db);
    put(
        db,
        "res.groups",
        TECHNICAL_GROUP,
        json!({"name": "WhatsApp Sidecar (technical)"}),
    );
    db.users = vec![
        User {
            uid: 1,
            login: "__system__".into(),
            password: String::new(),
            api_key: None,
            denied: HashSet::new(),
        },
        User {
            uid: ADMIN_UID,
            login: "admin".into(),
            password: "admin".into(),
            api_key: Some(api_key.to_owned()),
            denied: HashSet::new(),
        },
        User {
            uid: DEMO_UID,
            login: "demo".into(),
            password: "demo".into(),
            api_key: None,
            denied: demo_denied(),
        },
    ];
    for (id, name, code, phone) in [
        (20, "Belgium", "BE", 32),
        (57, "Germany", "DE", 49),
        (68, "Spain", "ES", 34),
        (75, "France", "FR", 33),
        (166, "Netherlands", "NL", 31),
        (231, "United Kingdom", "GB", 44),
        (233, "United States", "US", 1),
    ] {
        put(
            db,
            "res.country",
            id,
            json!({"name": name, "code": code, "phone_code": phone}),
        );
    }
    put(
        db,
        "res.currency",
        1,
        json!({"name": "USD", "symbol": "$", "position": "before", "decimal_places": 2}),
    );
    put(
        db,
        "res.currency",
        125,
        json!({"name": "EUR", "symbol": "€", "position": "after", "decimal_places": 2}),
    );
    // The languages of the recording database (res.lang of Odoo 17's en_US and fr_FR).
    put(
        db,
        "res.lang",
        1,
        json!({"name": "English (US)", "code": "en_US", "active": true, "date_format": "%m/%d/%Y",
               "decimal_point": ".", "thousands_sep": ",", "grouping": "[3,0]"}),
    );
    put(
        db,
        "res.lang",
        29,
        json!({"name": "French / Français", "code": "fr_FR", "active": true, "date_format": "%d/%m/%Y",
               "decimal_point": ",", "thousands_sep": "\u{a0}", "grouping": "[3,0]"}),
    );
    put(
        db,
        "res.company",
        1,
        json!({"name": "YourCompany", "currency_id": 1, "country_id": 233, "email": "info@yourcompany.com", "phone": "+1 (650) 555-0111 "}),
    );
    let partners = [
        (
            1,
            json!({"name": "YourCompany", "is_company": true, "company_id": 1, "country_id": 233, "email": "info@yourcompany.com", "phone": "+1 (650) 555-0111 "}),
        ),
        (
            2,
            json!({"name": "OdooBot", "email": "odoobot@example.com"}),
        ),
        (
            3,
            json!({"name": "Mitchell Admin", "parent_id": 1, "email": "admin@yourcompany.example.com", "tz": "Europe/Brussels"}),
        ),
        (
            7,
            json!({"name": "Marc Demo", "parent_id": 1, "email": "mark.brown23@example.com", "tz": "Europe/Brussels"}),
        ),
        (
            10,
            json!({"name": "Deco Addict", "is_company": true, "phone": "(603)-996-3829", "email": "deco_addict@yourcompany.example.com", "country_id": 233, "city": "Pleasant Hill"}),
        ),
        (
            11,
            json!({"name": "Gemini Furniture", "is_company": true, "phone": "(941)-284-4875", "email": "gemini_furniture@fake.geminifurniture.com", "country_id": 233}),
        ),
        (
            12,
            json!({"name": "Ready Mat", "is_company": true, "phone": "(803)-873-6126", "email": "ready.mat28@example.com", "country_id": 233}),
        ),
        (
            14,
            json!({"name": "Azure Interior", "is_company": true, "phone": "(870)-931-0505", "email": "azure.Interior24@example.com", "country_id": 233, "city": "Fremont"}),
        ),
        (
            15,
            json!({"name": "Lumber Inc", "is_company": true, "phone": "(828)-316-0593", "email": "lumber-inv92@example.com", "country_id": 233}),
        ),
        (
            26,
            json!({"name": "Brandon Freeman", "parent_id": 14, "phone": "(355)-687-3262", "email": "brandon.freeman55@example.com"}),
        ),
        (
            27,
            json!({"name": "Nicole Ford", "parent_id": 14, "phone": "(946)-638-6034", "email": "nicole.ford75@example.com"}),
        ),
        (
            33,
            json!({"name": "Addison Olson", "parent_id": 10, "phone": "(223)-399-7637", "email": "addison.olson28@example.com"}),
        ),
    ];
    for (id, vals) in partners {
        put(db, "res.partner", id, vals);
    }
    if let Some(t) = db.tables.get_mut("res.partner") {
        t.next_id = 44;
    }
    if let Some(r) = db
        .tables
        .get_mut("res.company")
        .and_then(|t| t.rows.get_mut(&1))
    {
        r.insert("partner_id".into(), json!(1));
    }
    put(
        db,
        "res.users",
        1,
        json!({"name": "OdooBot", "login": "__system__", "partner_id": 2, "active": false, "tz": "Europe/Brussels"}),
    );
    put(
        db,
        "res.users",
        ADMIN_UID,
        json!({"name": "Mitchell Admin", "login": "admin", "partner_id": 3, "tz": "Europe/Brussels", "signature": "<p>Mitchell Admin</p>",
               "groups_id": [TECHNICAL_GROUP], "company_ids": [1]}),
    );
    put(
        db,
        "res.users",
        DEMO_UID,
        json!({"name": "Marc Demo", "login": "demo", "partner_id": 7, "tz": "Europe/Brussels", "signature": "<p>Marc Demo</p>",
               "groups_id": [], "company_ids": [1]}),
    );

    // 20 sale orders; 2, 3 and 5 are quotations (search_count state in (draft, sent) = 3).
    let amounts = [
        2001.0, 3389.63, 434.13, 1230.0, 1900.0, 750.0, 2947.5, 1799.0, 8325.0, 2240.0, 1027.5,
        3000.0, 420.0, 1586.0, 960.0, 5120.0, 700.0, 275.0, 1125.0, 6670.0,
    ];
    let customers = [
        10, 12, 12, 14, 11, 10, 14, 11, 12, 10, 14, 11, 10, 12, 14, 11, 10, 12, 14, 11,
    ];
    for i in 1..=20i64 {
        let idx = (i - 1) as usize;
        let draft = [2, 3, 5].contains(&i);
        put(
            db,
            "sale.order",
            i,
            json!({
                "name": format!("S{i:05}"),
                "partner_id": customers[idx],
                "partner_invoice_id": customers[idx],
                "partner_shipping_id": customers[idx],
                "state": if draft { "draft" } else { "sale" },
                "amount_untaxed": amounts[idx],
                "amount_tax": 0.0,
                "amount_total": amounts[idx],
                "invoice_status": if draft { "no" } else if i % 2 == 0 { "invoiced" } else { "to invoice" },
                "date_order": format!("2026-11-{:02} 10:00:00", (i % 20) + 1),
                "currency_id": 1,
                "user_id": ADMIN_UID,
            }),
        );
    }
    // The lines of S00002 (as recorded: l_search_read_sale_order_lines.json).
    for (id, name, qty, price) in [
        (4, "Virtual Interior Design", 24.0, 75.0),
        (5, "Virtual Home Staging", 30.0, 38.25),
    ] {
        put(
            db,
            "sale.order.line",
            id,
            json!({"order_id": 2, "name": name, "product_uom_qty": qty, "price_unit": price, "sequence": 10}),
        );
    }
    let invoices = [
        (1, 14, "2026-11-01", "2026-12-31", 36512.5),
        (2, 10, "2026-11-19", "2026-11-22", 48012.5),
        (3, 10, "2026-11-18", "2026-11-22", 22137.5),
        (4, 10, "2026-11-06", "2026-11-06", 36512.5),
    ];
    for (id, partner, date, due, amount) in invoices {
        put(
            db,
            "account.move",
            id,
            json!({
                "name": format!("INV/2026/{id:05}"),
                "move_type": "out_invoice",
                "state": "posted",
                "payment_state": "not_paid",
                "partner_id": partner,
                "date": date,
                "invoice_date": date,
                "invoice_date_due": due,
                "amount_untaxed": amount,
                "amount_total": amount,
                "amount_residual": amount,
                "currency_id": 1,
            }),
        );
    }
    put(
        db,
        "account.move",
        5,
        json!({"name": "/", "move_type": "out_refund", "state": "draft", "partner_id": 12, "date": "2026-11-20", "amount_total": 1500.0, "amount_residual": 1500.0, "currency_id": 1}),
    );
    put(
        db,
        "account.move",
        6,
        json!({"name": "BILL/2026/11/0001", "move_type": "in_invoice", "state": "posted", "partner_id": 15, "date": "2026-11-10", "invoice_date": "2026-11-10", "invoice_date_due": "2026-12-10", "amount_total": 420.0, "amount_residual": 420.0, "currency_id": 1}),
    );

    put(
        db,
        "mail.message.subtype",
        1,
        json!({"name": "Discussions", "sequence": 0}),
    );
    put(
        db,
        "mail.message.subtype",
        2,
        json!({"name": "Note", "sequence": 100, "internal": true}),
    );
    put(
        db,
        "mail.message.subtype",
        3,
        json!({"name": "Activities", "sequence": 90, "internal": true}),
    );
    put(
        db,
        "mail.activity.type",
        4,
        json!({"name": "To-Do", "sequence": 12}),
    );
    // `ir.model`, with the ids of the recording database for the models the transcripts use.
    let known = [
        ("res.partner", 85),
        ("account.move", 443),
        ("sale.order", 491),
        ("whatsapp.account", 504),
        ("whatsapp.conversation", 507),
    ];
    let models: Vec<(String, String, bool, bool)> = db
        .schema
        .models
        .values()
        .map(|m| {
            (
                m.name.clone(),
                m.description.clone(),
                m.mail_thread,
                m.activities,
            )
        })
        .collect();
    for (n, (name, description, thread, activities)) in models.into_iter().enumerate() {
        let id = known
            .iter()
            .find(|(m, _)| *m == name)
            .map_or(1000 + n as i64, |(_, id)| *id);
        put(
            db,
            "ir.model",
            id,
            json!({"model": name, "name": description, "is_mail_thread": thread,
                   "is_mail_activity": activities}),
        );
    }
    for (id, module, name, model, res_id) in [
        (1, "mail", "mt_comment", "mail.message.subtype", 1),
        (2, "mail", "mt_note", "mail.message.subtype", 2),
        (
            14,
            "mail",
            "mail_activity_data_todo",
            "mail.activity.type",
            4,
        ),
        (3, "base", "main_company", "res.company", 1),
        (4, "base", "main_partner", "res.partner", 1),
        (5, "base", "user_admin", "res.users", ADMIN_UID),
        (6, "base", "partner_admin", "res.partner", 3),
        (7, "base", "USD", "res.currency", 1),
        (8, "base", "EUR", "res.currency", 125),
        (9, "base", "be", "res.country", 20),
        (10, "base", "fr", "res.country", 75),
        (11, "base", "us", "res.country", 233),
        (
            12,
            "sale",
            "action_report_saleorder",
            "ir.actions.report",
            298,
        ),
        (13, "account", "account_invoices", "ir.actions.report", 210),
        (
            15,
            "whatsapp_sidecar",
            "group_whatsapp_technical",
            "res.groups",
            TECHNICAL_GROUP,
        ),
    ] {
        put(
            db,
            "ir.model.data",
            id,
            json!({"module": module, "name": name, "model": model, "res_id": res_id, "noupdate": true}),
        );
    }
    // The server actions of the q_ir_actions_server_run_* recordings (a real Odoo's ids).
    put(
        db,
        "ir.actions.server",
        345,
        json!({"name": "WhatsApp sidecar: mark the contact (test)", "model_name": "res.partner",
               "state": "object_write", "update_path": "ref", "value": "WA-PRESSED"}),
    );
    put(
        db,
        "ir.actions.server",
        346,
        json!({"name": "WhatsApp sidecar: refuse (test)", "model_name": "res.partner",
               "state": "code", "code": "raise UserError(\"The customer has a credit hold\")"}),
    );
    let modules = [
        ("base", "Base", "17.0.1.3"),
        ("web", "Web", "17.0.1.0"),
        ("mail", "Discuss", "17.0.1.15"),
        ("contacts", "Contacts", "17.0.1.0"),
        ("sale", "Sales", "17.0.1.2"),
        ("sale_management", "Sales", "17.0.1.2"),
        ("account", "Invoicing", "17.0.1.2"),
        ("whatsapp_sidecar", "WhatsApp Sidecar", "17.0.1.0.0"),
    ];
    for (i, (name, desc, version)) in modules.iter().enumerate() {
        put(
            db,
            "ir.module.module",
            100 + i as i64,
            json!({"name": name, "shortdesc": desc, "state": "installed", "latest_version": version, "installed_version": version}),
        );
    }
}

/// What the demo user may not do: manage users, change the WhatsApp configuration.
fn demo_denied() -> HashSet<(String, String)> {
    let mut d = HashSet::new();
    for op in ["write", "create", "unlink"] {
        d.insert(("res.users".to_owned(), op.to_owned()));
        for m in [
            "whatsapp.account",
            "whatsapp.message",
            "whatsapp.webhook.event",
            "whatsapp.template",
            "whatsapp.template.variable",
            "whatsapp.conversation",
            "whatsapp.campaign",
            "whatsapp.campaign.step",
            "whatsapp.campaign.recipient",
            "whatsapp.button.action",
            "whatsapp.interactive.scenario",
            "whatsapp.interactive.scenario.option",
        ] {
            d.insert((m.to_owned(), op.to_owned()));
        }
    }
    d
}
