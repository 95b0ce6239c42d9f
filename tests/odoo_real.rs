//! The client against a real Odoo, and the stand-in compared with it.
//!
//! Runs only when `ODOO_URL`, `ODOO_DB`, `ODOO_LOGIN` and `ODOO_PASSWORD` or `ODOO_API_KEY` are
//! set (e.g. the local Odoo 17 of the README); otherwise every test prints that it was skipped
//! and passes. The tests create records named `whatsapp-sidecar e2e ...` and delete them.

mod support;

use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::time::Duration;
use support::OdooStandin;
use whatsapp_sidecar::odoo::{
    diagnose, Access, ClientConfig, Domain, Many2one, OdooClient, OdooError, SearchOptions,
};
use whatsapp_sidecar::secret::Secret;

const SKIPPED: &str = "SKIPPED: set ODOO_URL, ODOO_DB, ODOO_LOGIN and ODOO_PASSWORD or ODOO_API_KEY to run the real-Odoo tests";

fn real_config() -> Option<ClientConfig> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let url = var("ODOO_URL")?;
    let db = var("ODOO_DB")?;
    let login = var("ODOO_LOGIN")?;
    let api_key = var("ODOO_API_KEY").map(Secret::new);
    let password = var("ODOO_PASSWORD").map(Secret::new);
    if api_key.is_none() && password.is_none() {
        return None;
    }
    let url = url
        .parse()
        .unwrap_or_else(|e| panic!("ODOO_URL {url:?} is not a URL: {e}"));
    let mut cfg = ClientConfig::new(url, db, login);
    cfg.api_key = api_key;
    cfg.password = password;
    cfg.timeout = Duration::from_secs(60);
    Some(cfg)
}

macro_rules! real_or_skip {
    () => {
        match real_config() {
            Some(cfg) => cfg,
            None => {
                println!("{SKIPPED}");
                eprintln!("{SKIPPED}");
                return;
            }
        }
    };
}

fn stamp() -> String {
    format!(
        "whatsapp-sidecar e2e {}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    )
}

#[tokio::test]
async fn reads_partners() {
    let cfg = real_or_skip!();
    let odoo = OdooClient::new(cfg).unwrap();
    #[derive(serde::Deserialize)]
    struct Partner {
        id: i64,
        name: String,
        parent_id: Many2one,
    }
    let partners: Vec<Partner> = odoo
        .search_read(
            "res.partner",
            &Domain::all(),
            &["name", "parent_id"],
            &SearchOptions::new().limit(5).order("id"),
        )
        .await
        .unwrap();
    assert!(!partners.is_empty());
    assert!(partners.iter().all(|p| p.id > 0 && !p.name.is_empty()));
    let _ = partners[0].parent_id.id();
    assert!(
        odoo.search_count("res.partner", &Domain::all())
            .await
            .unwrap()
            >= partners.len() as u64
    );
}

#[tokio::test]
async fn creates_writes_and_deletes_records() {
    let cfg = real_or_skip!();
    let odoo = OdooClient::new(cfg).unwrap();
    let name = stamp();
    let id = odoo
        .create(
            "res.partner",
            &json!({"name": name, "email": "e2e@example.com"}),
        )
        .await
        .unwrap();
    let more = odoo
        .create_many(
            "res.partner",
            &(0..20)
                .map(|i| json!({"name": format!("{name} #{i}")}))
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    assert_eq!(more.len(), 20);
    odoo.write("res.partner", &more, &json!({"ref": "e2e"}))
        .await
        .unwrap();
    let updates: Vec<(i64, Map<String, Value>)> = more
        .iter()
        .map(|i| {
            (
                *i,
                json!({"phone": format!("+3225550{i}")})
                    .as_object()
                    .cloned()
                    .unwrap(),
            )
        })
        .collect();
    assert_eq!(
        odoo.write_each("res.partner", &updates).await.unwrap(),
        1,
        "one load call"
    );
    let rows: Vec<Value> = odoo
        .read("res.partner", &more, &["phone", "ref"])
        .await
        .unwrap();
    for (row, id) in rows.iter().zip(&more) {
        assert_eq!(row["phone"], json!(format!("+3225550{id}")));
        assert_eq!(row["ref"], json!("e2e"));
    }
    let post = odoo
        .message_post("res.partner", id, "e2e note <b>", "mail.mt_note")
        .await
        .unwrap();
    let msg: Vec<Value> = odoo.read("mail.message", &[post], &["body"]).await.unwrap();
    assert_eq!(msg[0]["body"], json!("<p>e2e note &lt;b&gt;</p>"));
    let mut all = more.clone();
    all.push(id);
    odoo.unlink("res.partner", &all).await.unwrap();
    let gone: Vec<Value> = odoo.read("res.partner", &[id], &["name"]).await.unwrap();
    assert!(gone.is_empty());
    let e = odoo.unlink("res.partner", &[id]).await.unwrap_err();
    assert!(matches!(e, OdooError::MissingError { .. }), "{e:?}");
}

#[tokio::test]
async fn downloads_a_sale_order_pdf() {
    let cfg = real_or_skip!();
    if cfg.password.is_none() {
        println!("SKIPPED: set ODOO_PASSWORD for the PDF test (Odoo opens web sessions with the password only)");
        return;
    }
    let odoo = OdooClient::new(cfg).unwrap();
    let ids = odoo
        .search(
            "sale.order",
            &Domain::all(),
            &SearchOptions::new().limit(1).order("id"),
        )
        .await
        .unwrap();
    let pdf = odoo
        .report_pdf("sale.report_saleorder", &ids)
        .await
        .unwrap();
    assert!(pdf.starts_with(b"%PDF"), "not a PDF");
    // A second download reuses the session.
    let pdf = odoo
        .report_pdf("sale.report_saleorder", &ids)
        .await
        .unwrap();
    assert!(pdf.starts_with(b"%PDF"));
}

#[tokio::test]
async fn diagnose_reports_the_real_setup() {
    let cfg = real_or_skip!();
    let lines = diagnose(&cfg).await;
    for l in &lines {
        println!("{l}");
    }
    for name in ["Odoo reachable", "Odoo version", "database exists"] {
        assert!(
            lines.iter().any(|l| l.name == name && l.ok),
            "{name}: {lines:#?}"
        );
    }
    assert!(
        lines.iter().any(|l| l.name.starts_with("login") && l.ok),
        "{lines:#?}"
    );
}

/// The answer of one JSON-RPC call, as JSON (result or error body).
async fn raw(http: &reqwest::Client, url: &str, params: Value) -> Value {
    http.post(format!("{}/jsonrpc", url.trim_end_matches('/')))
        .json(&json!({"jsonrpc": "2.0", "method": "call", "params": params, "id": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Shape differences; arrays compare their first items (the databases differ in size).
fn diff(path: &str, real: &Value, standin: &Value, out: &mut Vec<String>) {
    if kind(real) != kind(standin) {
        out.push(format!("{path}: real {real}, stand-in {standin}"));
        return;
    }
    match (real, standin) {
        (Value::Object(r), Value::Object(s)) => {
            let rk: BTreeSet<_> = r.keys().collect();
            let sk: BTreeSet<_> = s.keys().collect();
            for k in rk.symmetric_difference(&sk) {
                out.push(format!(
                    "{path}.{k}: only in {}",
                    if r.contains_key(*k) {
                        "real"
                    } else {
                        "stand-in"
                    }
                ));
            }
            for k in rk.intersection(&sk) {
                if *k != "debug" {
                    diff(&format!("{path}.{k}"), &r[*k], &s[*k], out);
                }
            }
        }
        (Value::Array(r), Value::Array(s)) => {
            if let (Some(a), Some(b)) = (r.first(), s.first()) {
                diff(&format!("{path}[0]"), a, b, out);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn the_stand_in_answers_like_the_real_odoo() {
    let cfg = real_or_skip!();
    let real_secret = cfg
        .api_key
        .as_ref()
        .or(cfg.password.as_ref())
        .map(|s| s.expose().to_owned())
        .unwrap_or_default();
    let real = OdooClient::new(cfg.clone()).unwrap();
    let real_uid = real.uid().await.unwrap();
    let standin = OdooStandin::start().await;
    let http = reqwest::Client::new();
    let db = cfg.database.clone();
    let url = cfg.url.to_string();
    let name = stamp();
    let country_code = "FR";
    // (model, method, args, kwargs); the same for both servers.
    let calls: Vec<(&str, &str, Value, Value)> = vec![
        (
            "res.partner",
            "search_read",
            json!([[["is_company", "=", true]]]),
            json!({"fields": ["name", "parent_id", "email", "phone", "mobile", "country_id", "category_id", "comment", "write_date", "active"], "limit": 2, "order": "id"}),
        ),
        (
            "res.partner",
            "search",
            json!([[["name", "ilike", "a"]]]),
            json!({"limit": 3, "offset": 1, "order": "name desc"}),
        ),
        (
            "res.partner",
            "search_count",
            json!([[
                "|",
                ["phone", "!=", false],
                ["email", "=like", "%@example.com"]
            ]]),
            json!({}),
        ),
        (
            "res.partner",
            "read",
            json!([[999999], ["name"]]),
            json!({}),
        ),
        (
            "res.partner",
            "check_access_rights",
            json!(["write"]),
            json!({"raise_exception": false}),
        ),
        (
            "res.partner",
            "check_access_rights",
            json!(["bogus"]),
            json!({"raise_exception": false}),
        ),
        (
            "res.partner",
            "search",
            json!([[["state", "badop", "x"]]]),
            json!({}),
        ),
        (
            "res.partner",
            "search",
            json!([[["nope", "=", 1]]]),
            json!({}),
        ),
        (
            "res.partner",
            "search",
            json!([[["parent_id.nope", "=", 1]]]),
            json!({}),
        ),
        (
            "res.partner",
            "search",
            json!([["|", ["id", "=", 41]]]),
            json!({}),
        ),
        ("res.partner", "search", json!([[["id", "="]]]), json!({})),
        ("res.partner", "search", json!([["state"]]), json!({})),
        (
            "res.partner",
            "search",
            json!([[]]),
            json!({"order": "name desc bogus"}),
        ),
        (
            "res.partner",
            "search",
            json!([[]]),
            json!({"order": "nosuch"}),
        ),
        (
            "res.partner",
            "read",
            json!([[1], ["name", "no_such_field"]]),
            json!({}),
        ),
        (
            "res.partner",
            "write",
            json!([[999999], {"name": "x"}]),
            json!({}),
        ),
        (
            "res.partner",
            "write",
            json!([[999999], {"x_nope": "x"}]),
            json!({}),
        ),
        ("res.partner", "unlink", json!([[999999]]), json!({})),
        ("res.partner", "no_such_method", json!([[1]]), json!({})),
        ("res.partner", "_private", json!([[1]]), json!({})),
        ("no.such.model", "search", json!([[]]), json!({})),
        (
            "res.partner",
            "message_post",
            json!([[1, 2]]),
            json!({"body": "x"}),
        ),
        (
            "res.partner",
            "load",
            json!([[".id", "no_such"], [["1", "x"]]]),
            json!({}),
        ),
        (
            "res.partner",
            "load",
            json!([[".id", "type"], [["999999", "contact"]]]),
            json!({}),
        ),
        (
            "res.partner",
            "load",
            json!([[".id", "type"], [["1", "bogus"]]]),
            json!({}),
        ),
        (
            "res.partner",
            "load",
            json!([[".id", "parent_id/.id"], [["1", "999999"]]]),
            json!({}),
        ),
        (
            "res.partner",
            "create",
            json!([{"name": name, "nope": 1}]),
            json!({}),
        ),
        (
            "res.country",
            "create",
            json!([{"name": name, "code": country_code}]),
            json!({}),
        ),
        ("res.country", "create", json!([{"code": "Q9"}]), json!({})),
        (
            "res.partner",
            "fields_get",
            json!([["name", "parent_id", "type", "email", "category_id"]]),
            json!({"attributes": ["type", "string", "relation", "selection", "required"]}),
        ),
        (
            "sale.order",
            "search_read",
            json!([[["state", "in", ["draft", "sent", "sale", "cancel"]]]]),
            json!({"fields": ["name", "state", "partner_id", "amount_total", "date_order", "invoice_status", "currency_id"], "limit": 1}),
        ),
        (
            "sale.order",
            "write",
            json!([[1], {"state": "bogus"}]),
            json!({}),
        ),
        (
            "account.move",
            "search_read",
            json!([[["move_type", "=", "out_invoice"]]]),
            json!({"fields": ["name", "state", "payment_state", "amount_residual", "invoice_date_due", "partner_id"], "limit": 1}),
        ),
        (
            "ir.module.module",
            "search_read",
            json!([[["name", "=", "sale"]]]),
            json!({"fields": ["name", "state", "latest_version"]}),
        ),
        // The outbox's languages: the authors' (res.users.lang) and the company's contact's.
        ("res.users", "read", json!([[2], ["lang"]]), json!({})),
        (
            "res.company",
            "read",
            json!([[1], ["name", "country_id", "partner_id"]]),
            json!({}),
        ),
        ("res.partner", "read", json!([[1], ["lang"]]), json!({})),
        (
            "mail.message.subtype",
            "search_read",
            json!([[["id", "in", [1, 2]]]]),
            json!({"fields": ["name", "internal"], "order": "id"}),
        ),
    ];
    let mut differences = Vec::new();
    for (model, method, args, kwargs) in &calls {
        let body = |db: &str, uid: i64, secret: &str| json!({"service": "object", "method": "execute_kw", "args": [db, uid, secret, model, method, args, kwargs]});
        let r = raw(&http, &url, body(&db, real_uid, &real_secret)).await;
        let s = raw(&http, &standin.url(), body("wa17", 2, standin.api_key())).await;
        let mut d = Vec::new();
        if method == &"fields_get" {
            for (f, desc) in s["result"].as_object().into_iter().flatten() {
                diff(&format!("result.{f}"), &r["result"][f], desc, &mut d);
            }
        } else {
            diff("body", &r, &s, &mut d);
        }
        for key in ["name", "message"] {
            if r["error"]["data"][key] != s["error"]["data"][key] {
                d.push(format!(
                    "error.data.{key}: real {}, stand-in {}",
                    r["error"]["data"][key], s["error"]["data"][key]
                ));
            }
        }
        if !d.is_empty() {
            differences.push(format!(
                "{model}.{method}({args}, {kwargs}):\n  {}",
                d.join("\n  ")
            ));
        }
    }
    for (service, method, args) in [
        ("common", "version", json!([])),
        ("common", "login", json!(["nosuchdb", "admin", "x"])),
        ("common", "nosuch", json!([])),
        ("db", "db_exist", json!(["nosuchdb"])),
        ("nosuch", "version", json!([])),
    ] {
        let params = json!({"service": service, "method": method, "args": args});
        let r = raw(&http, &url, params.clone()).await;
        let s = raw(&http, &standin.url(), params).await;
        let mut d = Vec::new();
        diff("body", &r, &s, &mut d);
        if r["error"]["data"]["name"] != s["error"]["data"]["name"] {
            d.push(format!(
                "error name: real {}, stand-in {}",
                r["error"]["data"]["name"], s["error"]["data"]["name"]
            ));
        }
        if !d.is_empty() {
            differences.push(format!("{service}.{method}:\n  {}", d.join("\n  ")));
        }
    }
    // The addon's models: every stand-in field exists in the real Odoo with the same type.
    let installed: Vec<Value> = real
        .search_read(
            "ir.module.module",
            &Domain::leaf("name", "=", "whatsapp_sidecar").and("state", "=", "installed"),
            &["name"],
            &SearchOptions::new(),
        )
        .await
        .unwrap();
    if installed.is_empty() {
        println!("NOTE: the addon whatsapp_sidecar is not installed on the real Odoo: its models were not compared");
    } else {
        let sc = OdooClient::new(support::client_config(&standin)).unwrap();
        for model in [
            "whatsapp.account",
            "whatsapp.template",
            "whatsapp.template.variable",
            "whatsapp.conversation",
            "whatsapp.message",
            "whatsapp.webhook.event",
            "whatsapp.campaign",
            "whatsapp.campaign.step",
            "whatsapp.campaign.recipient",
            "whatsapp.button.action",
            "whatsapp.interactive.scenario",
            "whatsapp.interactive.scenario.option",
            "res.partner",
            "sale.order",
            "account.move",
        ] {
            let attrs = ["type", "relation", "selection", "required"];
            let rf = real.fields_get(model, &attrs).await.unwrap();
            let sf = sc.fields_get(model, &attrs).await.unwrap();
            for (f, s) in &sf {
                match rf.get(f) {
                    None => differences.push(format!("{model}.{f}: not a field of the real Odoo")),
                    Some(r) => {
                        if r.field_type != s.field_type || r.relation != s.relation {
                            differences.push(format!(
                                "{model}.{f}: real {} {:?}, stand-in {} {:?}",
                                r.field_type, r.relation, s.field_type, s.relation
                            ));
                        }
                        // An empty stand-in selection accepts any value (time zones).
                        let values = |v: &[(String, String)]| {
                            v.iter().map(|x| x.0.clone()).collect::<Vec<_>>()
                        };
                        // `lang` lists the database's installed languages: the stand-in has
                        // English and French installed, a real database what its admin chose.
                        let installed_languages = f == "lang"
                            && values(&r.selection).contains(&"en_US".to_owned())
                            && values(&s.selection).contains(&"en_US".to_owned());
                        if r.field_type == "selection"
                            && !s.selection.is_empty()
                            && !installed_languages
                            && values(&r.selection) != values(&s.selection)
                        {
                            differences.push(format!(
                                "{model}.{f}: selection values differ: real {:?}, stand-in {:?}",
                                values(&r.selection),
                                values(&s.selection)
                            ));
                        }
                        if r.required != s.required {
                            differences.push(format!(
                                "{model}.{f}: required real {}, stand-in {}",
                                r.required, s.required
                            ));
                        }
                    }
                }
            }
        }
        let rights = real
            .check_access_rights("whatsapp.message", Access::Write)
            .await
            .unwrap();
        println!("real Odoo: write on whatsapp.message: {rights}");
    }
    // Leftovers of the calls above that could have succeeded.
    let leftovers = real
        .search(
            "res.partner",
            &Domain::leaf("name", "=", name.as_str()),
            &SearchOptions::new(),
        )
        .await
        .unwrap();
    real.unlink("res.partner", &leftovers).await.unwrap();
    assert!(
        differences.is_empty(),
        "{} differences:\n{}",
        differences.len(),
        differences.join("\n")
    );
}

/// The housekeeping's retention on a real Odoo, at a `now` of 2016-12-31 so that only this
/// test's events (received in 2016, before the addon existed) can match: an old processed
/// event and an old failed one deleted, a failed one younger than 90 days and a processed one
/// younger than 30 kept, the message of the deleted event kept with its link cleared.
#[tokio::test]
async fn the_retention_deletes_old_events_and_keeps_messages() {
    use chrono::TimeZone;
    use whatsapp_sidecar::housekeeping::{
        retention_once, HousekeepingContext, HousekeepingSettings,
    };
    let cfg = real_or_skip!();
    let odoo = OdooClient::new(cfg).unwrap();
    let stamp = stamp();
    let event = |at: &str, processed: bool, error: Option<&str>| {
        json!({"raw_body": format!("{{\"test\": \"{stamp}\"}}"), "received_at": at,
               "signature_ok": true, "processed": processed,
               "processing_error": error.map_or(json!(false), |e| json!(e))})
    };
    let ids = odoo
        .create_many(
            "whatsapp.webhook.event",
            &[
                event("2016-06-01 10:00:00", true, None),
                event("2016-06-01 10:00:00", true, Some("unknown message")),
                event("2016-11-15 10:00:00", false, Some("waiting")),
                event("2016-12-15 10:00:00", true, None),
            ],
        )
        .await
        .unwrap();
    let [old_done, old_failed, young_failed, young_done] = ids[..] else {
        panic!("four events created, got {ids:?}");
    };
    let partner = odoo
        .create(
            "res.partner",
            &json!({"name": stamp.clone(), "mobile": "+33612340000"}),
        )
        .await
        .unwrap();
    let accounts = odoo
        .search(
            "whatsapp.account",
            &Domain::leaf("active", "=", true),
            &SearchOptions::new().limit(1),
        )
        .await
        .unwrap();
    let message = odoo
        .create(
            "whatsapp.message",
            &json!({"account_id": accounts[0], "partner_id": partner, "direction": "in",
                    "message_type": "text", "state": "received", "body": stamp.clone(),
                    "webhook_event_id": old_done}),
        )
        .await
        .unwrap();

    let ctx = HousekeepingContext {
        odoo: odoo.clone(),
        settings: HousekeepingSettings::default(),
    };
    let now = chrono::Utc.with_ymd_and_hms(2016, 12, 31, 0, 0, 0).unwrap();
    let done = retention_once(&ctx, now, &tokio_util::sync::CancellationToken::new())
        .await
        .unwrap();
    let left: BTreeSet<i64> = odoo
        .search(
            "whatsapp.webhook.event",
            &Domain::leaf(
                "id",
                "in",
                json!([old_done, old_failed, young_failed, young_done]),
            ),
            &SearchOptions::new(),
        )
        .await
        .unwrap()
        .into_iter()
        .collect();
    let rows: Vec<Value> = odoo
        .read("whatsapp.message", &[message], &["webhook_event_id"])
        .await
        .unwrap();
    // Clean up before asserting.
    let _ = odoo.unlink("whatsapp.message", &[message]).await;
    let _ = odoo
        .unlink("whatsapp.webhook.event", &[young_failed, young_done])
        .await;
    let _ = odoo.unlink("res.partner", &[partner]).await;
    assert_eq!(done.deleted, 2, "{done:?}");
    assert_eq!(left, BTreeSet::from([young_failed, young_done]));
    assert_eq!(rows[0]["webhook_event_id"], json!(false));
}
