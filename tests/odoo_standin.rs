//! The Odoo stand-in's own behaviour: domains, order, Odoo's messages, `load` time zones,
//! outages, counters and helpers. (What it shares with a real Odoo is checked by
//! `odoo_contract.rs` against the recordings and by `odoo_real.rs` against a live server.)

mod support;

use chrono::NaiveDateTime;
use serde_json::{json, Value};
use std::time::Duration;
use support::odoo_standin::domain::{like, pyrepr, pytuple};
use support::odoo_standin::orm::{local_to_utc, Tz};
use support::odoo_standin::schema;
use support::{OdooStandin, Outage};

async fn rpc(s: &OdooStandin, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "method": "call", "params": params, "id": 1});
    reqwest::Client::new()
        .post(format!("{}/jsonrpc", s.url()))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn kw(s: &OdooStandin, model: &str, method: &str, args: Value, kwargs: Value) -> Value {
    rpc(
        s,
        json!({"service": "object", "method": "execute_kw",
               "args": ["wa17", 2, s.api_key(), model, method, args, kwargs]}),
    )
    .await
}

fn error_message(v: &Value) -> String {
    v["error"]["data"]["message"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test]
async fn starts_with_the_demo_data() {
    let s = OdooStandin::start().await;
    assert_eq!(s.field("res.partner", 14, "name"), json!("Azure Interior"));
    assert_eq!(
        s.field("res.partner", 26, "display_name"),
        json!("Azure Interior, Brandon Freeman")
    );
    assert_eq!(s.count("sale.order"), 20);
    assert_eq!(
        s.field("sale.order", 1, "partner_id"),
        json!([10, "Deco Addict"])
    );
}

#[test]
fn python_repr_like_odoo_messages() {
    assert_eq!(
        pytuple(&[json!("state"), json!("badop"), json!("draft")]),
        "('state', 'badop', 'draft')"
    );
    assert_eq!(
        pyrepr(&json!(["|", ["id", "=", 41]])),
        "['|', ['id', '=', 41]]"
    );
    assert_eq!(pyrepr(&json!(1.0)), "1.0");
    assert_eq!(pyrepr(&json!("it's")), "\"it's\"");
    assert_eq!(
        pyrepr(&json!({"a": null, "b": true})),
        "{'a': None, 'b': True}"
    );
    assert_eq!(pytuple(&[json!(5)]), "(5,)");
}

#[test]
fn sql_like_patterns() {
    assert!(like("Azure Interior", &json!("zure"), "ilike"));
    assert!(!like("Azure Interior", &json!("ZURE"), "like"));
    assert!(like("S00012", &json!("S000__"), "=like"));
    assert!(!like("S0001", &json!("S000__"), "=like"));
    assert!(like("a%b", &json!("a\\%b"), "=like"));
    assert!(like("abc", &json!("%"), "=ilike"));
}

#[test]
fn load_reads_naive_datetimes_in_brussels_time() {
    let t = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
    assert_eq!(
        local_to_utc(t("2026-07-01 12:00:00"), Tz::Cet),
        t("2026-07-01 10:00:00")
    );
    assert_eq!(
        local_to_utc(t("2026-01-15 12:00:00"), Tz::Cet),
        t("2026-01-15 11:00:00")
    );
    assert_eq!(
        local_to_utc(t("2026-03-29 03:30:00"), Tz::Cet),
        t("2026-03-29 01:30:00")
    );
    assert_eq!(
        local_to_utc(t("2026-01-15 12:00:00"), Tz::Utc),
        t("2026-01-15 12:00:00")
    );
}

#[test]
fn the_schema_parses_and_knows_the_daemon_fields() {
    let s = schema::parse(schema::SCHEMA).unwrap();
    let m = s.model("whatsapp.message").unwrap();
    for f in [
        "account_id",
        "conversation_id",
        "partner_id",
        "direction",
        "message_type",
        "state",
        "to_number",
        "to_e164",
        "wa_id",
        "wamid",
        "body",
        "template_id",
        "template_params_json",
        "header_params_json",
        "media_attachment_id",
        "media_url",
        "media_id",
        "media_filename",
        "report_name",
        "interactive_json",
        "reply_to_wamid",
        "res_model",
        "res_id",
        "campaign_id",
        "dedupe_key",
        "attempt_count",
        "next_attempt_at",
        "claimed_at",
        "callback_data",
        "error_code",
        "error_title",
        "error_details",
        "error_help",
        "meta_response_json",
        "queued_at",
        "sent_at",
        "delivered_at",
        "read_at",
        "failed_at",
        "received_at",
        "pricing_category",
        "button_payload",
        "button_title",
        "company_id",
    ] {
        assert!(m.field(f).is_some(), "whatsapp.message.{f}");
    }
    assert_eq!(m.uniques.len(), 2);
}

#[tokio::test]
async fn domains_evaluate_like_odoo() {
    let s = OdooStandin::start().await;
    let ids = |v: &Value| -> Vec<i64> {
        let mut ids: Vec<i64> = v["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap())
            .collect();
        ids.sort();
        ids
    };
    let search = |d: Value| kw(&s, "res.partner", "search", json!([d]), json!({}));
    assert_eq!(
        ids(&search(json!([["parent_id", "=", 14]])).await),
        vec![26, 27]
    );
    assert_eq!(
        ids(&search(json!([["parent_id.name", "ilike", "azure"]])).await),
        vec![26, 27]
    );
    assert_eq!(
        ids(&search(json!([["parent_id", "child_of", 14]])).await),
        vec![26, 27]
    );
    assert_eq!(
        ids(&search(json!(["|", ["id", "=", 10], ["id", "=", 11]])).await),
        vec![10, 11]
    );
    assert_eq!(
        ids(&search(json!([
            "!",
            ["is_company", "=", false],
            ["country_id.code", "=", "US"]
        ]))
        .await),
        vec![1, 10, 11, 12, 14, 15]
    );
    assert_eq!(
        ids(&search(json!([["id", "in", [10, 12, 999]], ["phone", "!=", false]])).await),
        vec![10, 12]
    );
    assert_eq!(ids(&search(json!([["id", "<", 3]])).await), vec![1, 2]);
    assert_eq!(
        ids(&search(json!([
            ["email", "=like", "%@example.com"],
            ["id", ">=", 26]
        ]))
        .await),
        vec![26, 27, 33]
    );
    assert_eq!(
        ids(&search(json!([
            ["mobile", "=", false],
            ["id", "=?", false],
            ["name", "not ilike", "a"]
        ]))
        .await),
        vec![2, 11, 15, 27]
    );
    // archived records are hidden unless asked for
    s.update("res.partner", 15, json!({"active": false}));
    assert!(!ids(&search(json!([["is_company", "=", true]])).await).contains(&15));
    let with_archived = kw(
        &s,
        "res.partner",
        "search",
        json!([[["is_company", "=", true]]]),
        json!({"context": {"active_test": false}}),
    )
    .await;
    assert!(ids(&with_archived).contains(&15));
    // errors, in Odoo's order and words
    let e = search(json!(["|", ["id", "=", 41]])).await;
    assert_eq!(
        error_message(&e),
        "Domain ['|', ['id', '=', 41]] is syntactically not correct."
    );
    let e = search(json!([["id", "="]])).await;
    assert_eq!(
        error_message(&e),
        "not enough values to unpack (expected 3, got 2)"
    );
    let e = search(json!([["nope", "badop", 1]])).await;
    assert_eq!(
        error_message(&e),
        "Invalid field res.partner.nope in leaf ('nope', 'badop', 1)"
    );
    let e = search(json!([["parent_id.nope", "=", 1]])).await;
    assert_eq!(
        error_message(&e),
        "Invalid field res.partner.nope in leaf ('nope', '=', 1)"
    );
}

#[tokio::test]
async fn order_checks_and_nulls() {
    let s = OdooStandin::start().await;
    let r = kw(
        &s,
        "sale.order",
        "search",
        json!([[]]),
        json!({"order": "name desc bogus"}),
    )
    .await;
    assert!(
        error_message(&r).starts_with("Invalid \"order\" specified (name desc bogus)."),
        "{r}"
    );
    let r = kw(
        &s,
        "sale.order",
        "search",
        json!([[]]),
        json!({"order": "nosuch desc"}),
    )
    .await;
    assert_eq!(
        error_message(&r),
        "Invalid field 'nosuch' on model 'sale.order'"
    );
    let r = kw(
        &s,
        "sale.order",
        "search",
        json!([[]]),
        json!({"order": "partner_id, id desc", "limit": 3}),
    )
    .await;
    // Azure Interior (14) comes first by name; its orders by id descending.
    assert_eq!(r["result"], json!([19, 15, 11]));
    let r = kw(
        &s,
        "res.partner",
        "search",
        json!([[["id", "in", [10, 26, 1]]]]),
        json!({"order": "mobile desc, id"}),
    )
    .await;
    assert_eq!(r["result"], json!([1, 10, 26]));
}

#[tokio::test]
async fn create_write_checks_and_messages() {
    let s = OdooStandin::start().await;
    let r = kw(
        &s,
        "res.country",
        "create",
        json!([{"name": "Dup", "code": "FR"}]),
        json!({}),
    )
    .await;
    assert_eq!(
        error_message(&r),
        "The operation cannot be completed: The code of the country must be unique!"
    );
    let r = kw(
        &s,
        "res.country",
        "create",
        json!([{"code": "QQ"}]),
        json!({}),
    )
    .await;
    assert_eq!(
        error_message(&r),
        "The operation cannot be completed:\n- Create/update: a mandatory field is not set.\n- Delete: another model requires the record being deleted. If possible, archive it instead.\n\nModel: Country (res.country)\nField: Country Name (name)\n"
    );
    let r = kw(
        &s,
        "res.partner",
        "write",
        json!([[999999], {"name": "x"}]),
        json!({}),
    )
    .await;
    assert_eq!(
        error_message(&r),
        "Record does not exist or has been deleted.\n(Record: res.partner(999999,), User: 2)"
    );
    let r = kw(
        &s,
        "res.partner",
        "write",
        json!([[14], {"parent_id": 999999}]),
        json!({}),
    )
    .await;
    assert_eq!(
        error_message(&r),
        "The operation cannot be completed: another model requires the record being deleted. If possible, archive it instead.\n\nModel: Contact (res.partner)\nConstraint: res_partner_parent_id_fkey\n"
    );
    let r = kw(
        &s,
        "res.partner",
        "check_access_rights",
        json!(["bogus"]),
        json!({"raise_exception": false}),
    )
    .await;
    assert_eq!(r["error"]["data"]["name"], json!("builtins.AssertionError"));
    let r = kw(
        &s,
        "res.partner",
        "message_post",
        json!([[10, 11]]),
        json!({"body": "x"}),
    )
    .await;
    assert_eq!(error_message(&r), "Expected singleton: res.partner(10, 11)");
    let r = kw(
        &s,
        "whatsapp.message",
        "message_post",
        json!([[1]]),
        json!({"body": "x"}),
    )
    .await;
    assert_eq!(
        error_message(&r),
        "type object 'whatsapp.message' has no attribute 'message_post'"
    );
    // a failed batch create leaves nothing behind
    let before = s.count("res.partner");
    let r = kw(
        &s,
        "res.partner",
        "create",
        json!([[{"name": "ok"}, {"name": "bad", "nope": 1}]]),
        json!({}),
    )
    .await;
    assert_eq!(
        error_message(&r),
        "Invalid field 'nope' on model 'res.partner'"
    );
    assert_eq!(s.count("res.partner"), before);
    // html is sanitized into a paragraph, like Odoo does
    kw(
        &s,
        "res.partner",
        "write",
        json!([[14], {"comment": "c1"}]),
        json!({}),
    )
    .await;
    assert_eq!(s.field("res.partner", 14, "comment"), json!("<p>c1</p>"));
}

#[tokio::test]
async fn load_reports_errors_as_messages_and_converts_types() {
    let s = OdooStandin::start().await;
    let r = kw(
        &s,
        "res.partner",
        "load",
        json!([
            [".id", "comment", "phone"],
            [["14", "c1", "111"], ["10", "c2", ""]]
        ]),
        json!({}),
    )
    .await;
    assert_eq!(
        r["result"],
        json!({"ids": [14, 10], "messages": [], "nextrow": 0})
    );
    assert_eq!(s.field("res.partner", 10, "phone"), json!(false));
    let r = kw(
        &s,
        "res.partner",
        "load",
        json!([[".id", "type"], [["14", "bogus"]]]),
        json!({}),
    )
    .await;
    assert_eq!(r["result"]["ids"], json!(false));
    assert_eq!(
        r["result"]["messages"][0]["message"],
        json!("Value 'bogus' not found in selection field 'Address Type'")
    );
    let r = kw(
        &s,
        "res.partner",
        "load",
        json!([[".id", "parent_id/.id"], [["26", "999999"]]]),
        json!({}),
    )
    .await;
    assert_eq!(
        r["result"]["messages"][0]["message"],
        json!("No matching record found for database id '999999' in field 'Related Company'")
    );
    let r = kw(
        &s,
        "res.partner",
        "load",
        json!([[".id", "no_such"], [["14", "x"]]]),
        json!({}),
    )
    .await;
    assert_eq!(r["error"]["data"]["name"], json!("builtins.KeyError"));
    assert_eq!(error_message(&r), "no_such");
    // datetimes: the user's time zone (Europe/Brussels) unless the context says UTC
    let account = s.add_account("A", "1", 80);
    let m = s.queue_message(account, 14, "x");
    kw(
        &s,
        "whatsapp.message",
        "load",
        json!([[".id", "sent_at"], [[m.to_string(), "2026-07-01 12:00:00"]]]),
        json!({}),
    )
    .await;
    assert_eq!(
        s.field("whatsapp.message", m, "sent_at"),
        json!("2026-07-01 10:00:00")
    );
    kw(
        &s,
        "whatsapp.message",
        "load",
        json!([[".id", "sent_at"], [[m.to_string(), "2026-07-01 12:00:00"]]]),
        json!({"context": {"tz": "UTC"}}),
    )
    .await;
    assert_eq!(
        s.field("whatsapp.message", m, "sent_at"),
        json!("2026-07-01 12:00:00")
    );
    assert_eq!(s.write_count("whatsapp.message", m), 2);
}

#[tokio::test]
async fn refuse_and_hang_outages_then_recovery() {
    let s = OdooStandin::start().await;
    let version = json!({"service": "common", "method": "version", "args": []});
    assert_eq!(
        rpc(&s, version.clone()).await["result"]["server_version"],
        json!("17.0")
    );
    s.go_down(Outage::Refuse).await;
    let err = reqwest::Client::new()
        .post(format!("{}/jsonrpc", s.url()))
        .body("{}")
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err}");
    s.come_back().await;
    assert_eq!(
        rpc(&s, version.clone()).await["result"]["server_version"],
        json!("17.0")
    );

    s.go_down(Outage::Hang).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let err = client
        .post(format!("{}/jsonrpc", s.url()))
        .header("content-type", "application/json")
        .body(json!({"jsonrpc": "2.0", "method": "call", "params": version, "id": 1}).to_string())
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    s.come_back().await;
    assert_eq!(
        rpc(&s, version).await["result"]["server_version"],
        json!("17.0")
    );
}

#[tokio::test]
async fn counters_and_helpers() {
    let s = OdooStandin::start().await;
    let account = s.add_account("Main", "1001", 80);
    let partner = s.add_partner("Jane", "+33612345678", true);
    let msg = s.queue_message(account, partner, "hello");
    assert_eq!(s.field("whatsapp.message", msg, "state"), json!("queued"));
    assert_eq!(
        s.field("whatsapp.message", msg, "to_number"),
        json!("+33612345678")
    );
    assert_eq!(
        s.field("whatsapp.message", msg, "company_id"),
        json!([1, "YourCompany"])
    );
    assert!(s.field("whatsapp.message", msg, "queued_at").is_string());
    kw(
        &s,
        "whatsapp.message",
        "write",
        json!([[msg], {"state": "sending"}]),
        json!({}),
    )
    .await;
    kw(
        &s,
        "whatsapp.message",
        "write",
        json!([[msg], {"state": "sent", "wamid": "wamid.1"}]),
        json!({}),
    )
    .await;
    assert_eq!(s.calls("whatsapp.message", "write"), 2);
    assert_eq!(s.write_count("whatsapp.message", msg), 2);
    assert_eq!(
        s.search("whatsapp.message", json!([["wamid", "=", "wamid.1"]])),
        vec![msg]
    );
    let conv = s.insert("whatsapp.conversation", json!({"account_id": account, "wa_id": "33612345678", "last_inbound_at": "2026-05-01 08:00:00"}));
    assert_eq!(
        s.field("whatsapp.conversation", conv, "window_expires_at"),
        json!("2026-05-02 08:00:00")
    );
    assert_eq!(
        s.field("whatsapp.conversation", conv, "company_id"),
        json!([1, "YourCompany"])
    );
    let tpl = s.insert("whatsapp.template", json!({"name": "order_confirmation", "account_id": account, "status": "approved",
        "components_json": "[{\"type\": \"BODY\", \"text\": \"Hello {{1}}\"}, {\"type\": \"BUTTONS\", \"buttons\": [{\"type\": \"QUICK_REPLY\", \"text\": \"Yes\"}]}]"}));
    assert_eq!(
        s.field("whatsapp.template", tpl, "body_text"),
        json!("Hello {{1}}")
    );
    assert_eq!(s.field("whatsapp.template", tpl, "button_count"), json!(1));
    assert_eq!(
        s.field("whatsapp.template", tpl, "display_name"),
        json!("order_confirmation (en_US)")
    );
    s.reset_counters();
    assert_eq!(s.calls("whatsapp.message", "write"), 0);
}

#[tokio::test]
async fn unique_keys_hold_across_rollbacks_deletes_and_batches() {
    let s = OdooStandin::start().await;
    let account = s.add_account("A", "1", 80);
    let vals =
        |k: &str| json!({"account_id": account, "to_number": "+33612345678", "dedupe_key": k});
    let r = kw(
        &s,
        "whatsapp.message",
        "create",
        json!([[vals("k1"), vals("k1")]]),
        json!({}),
    )
    .await;
    assert!(error_message(&r).contains("deduplication key"), "{r}");
    assert_eq!(
        s.count("whatsapp.message"),
        0,
        "the batch is all or nothing"
    );
    let a = kw(
        &s,
        "whatsapp.message",
        "create",
        json!([vals("k1")]),
        json!({}),
    )
    .await["result"]
        .as_i64()
        .unwrap();
    let r = kw(
        &s,
        "whatsapp.message",
        "create",
        json!([vals("k1")]),
        json!({}),
    )
    .await;
    assert!(error_message(&r).contains("deduplication key"), "{r}");
    // moving the key away frees it; a failed write keeps it
    let r = kw(
        &s,
        "whatsapp.message",
        "write",
        json!([[a], {"dedupe_key": "k2", "state": "bogus"}]),
        json!({}),
    )
    .await;
    assert!(error_message(&r).starts_with("Wrong value"), "{r}");
    let r = kw(
        &s,
        "whatsapp.message",
        "create",
        json!([vals("k1")]),
        json!({}),
    )
    .await;
    assert!(error_message(&r).contains("deduplication key"), "{r}");
    kw(
        &s,
        "whatsapp.message",
        "write",
        json!([[a], {"dedupe_key": "k2"}]),
        json!({}),
    )
    .await;
    let b = kw(
        &s,
        "whatsapp.message",
        "create",
        json!([vals("k1")]),
        json!({}),
    )
    .await["result"]
        .as_i64()
        .unwrap();
    kw(&s, "whatsapp.message", "unlink", json!([[a]]), json!({})).await;
    let c = kw(
        &s,
        "whatsapp.message",
        "create",
        json!([vals("k2")]),
        json!({}),
    )
    .await;
    assert!(c["result"].is_i64(), "{c}");
    let r = kw(
        &s,
        "whatsapp.message",
        "write",
        json!([[b], {"dedupe_key": "k2"}]),
        json!({}),
    )
    .await;
    assert!(error_message(&r).contains("deduplication key"), "{r}");
    // NULL keys never clash
    kw(
        &s,
        "whatsapp.message",
        "create",
        json!([[{"account_id": account}, {"account_id": account}]]),
        json!({}),
    )
    .await;
    assert_eq!(s.count("whatsapp.message"), 4);
}
