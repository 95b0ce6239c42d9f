//! The Odoo client against the stand-in: every helper, typed decoding, errors, retries,
//! re-login, web session renewal, the 303 detection and the concurrency bound.

mod support;

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::time::Duration;
use support::{client_config, Fault, OdooStandin, Outage};
use whatsapp_sidecar::odoo::{
    de, Access, ClientConfig, Context, Domain, Many2one, OdooClient, OdooError, SearchOptions,
};
use whatsapp_sidecar::secret::Secret;

fn client(s: &OdooStandin) -> OdooClient {
    OdooClient::new(client_config(s))
        .unwrap()
        .with_retry_delays(Duration::from_millis(1), Duration::from_millis(5))
}

fn client_with(cfg: ClientConfig) -> OdooClient {
    OdooClient::new(cfg)
        .unwrap()
        .with_retry_delays(Duration::from_millis(1), Duration::from_millis(5))
}

#[derive(Debug, Deserialize)]
struct Order {
    id: i64,
    name: String,
    state: String,
    partner_id: Many2one,
    amount_total: f64,
    #[serde(deserialize_with = "de::false_as_none")]
    client_order_ref: Option<String>,
}

#[tokio::test]
async fn version_and_login_with_the_api_key() {
    let s = OdooStandin::start().await;
    let c = client(&s);
    let v = c.version().await.unwrap();
    assert_eq!(v.server_version, "17.0");
    assert_eq!(v.major(), Some(17));
    assert_eq!(c.uid().await.unwrap(), 2);
    assert_eq!(c.uid().await.unwrap(), 2);
    // The uid is cached: one authenticate for any number of calls.
    c.search_count("res.partner", &Domain::all()).await.unwrap();
    c.search_count("res.partner", &Domain::all()).await.unwrap();
    assert_eq!(s.calls("common", "authenticate"), 1);
}

#[tokio::test]
async fn jsonrpc_calls_carry_one_session_cookie_bound_to_the_database() {
    let s = OdooStandin::start().await;
    let c = client(&s);
    for _ in 0..4 {
        c.search_count("res.partner", &Domain::all()).await.unwrap();
    }
    // Clones share it: asked for once, carried by every /jsonrpc call (login and the 4 counts).
    c.clone()
        .search_count("res.partner", &Domain::all())
        .await
        .unwrap();
    assert_eq!(s.calls("web", "login?db"), 1);
    assert_eq!(s.jsonrpc_with_db_session(), 6);
}

#[tokio::test]
async fn password_is_used_when_no_api_key_is_set() {
    let s = OdooStandin::start().await;
    let mut cfg = client_config(&s);
    cfg.api_key = None;
    let c = client_with(cfg);
    assert_eq!(c.uid().await.unwrap(), 2);
}

#[tokio::test]
async fn wrong_api_key_is_access_denied_naming_the_setting_and_hiding_the_key() {
    let s = OdooStandin::start().await;
    let mut cfg = client_config(&s);
    cfg.api_key = Some(Secret::new("0000000000000000000000000000000000000bad"));
    let c = client_with(cfg);
    let e = c
        .search_count("res.partner", &Domain::all())
        .await
        .unwrap_err();
    assert!(matches!(e, OdooError::AccessDenied { .. }), "{e:?}");
    let text = format!("{e} {e:?}");
    assert!(text.contains("odoo.api_key"), "{text}");
    assert!(
        !text.contains("0000000000000000000000000000000000000bad"),
        "{text}"
    );
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn wrong_database_is_database_missing() {
    let s = OdooStandin::start().await;
    let mut cfg = client_config(&s);
    cfg.database = "nosuchdb".into();
    let e = client_with(cfg).uid().await.unwrap_err();
    assert!(
        matches!(e, OdooError::DatabaseMissing { ref database, .. } if database == "nosuchdb"),
        "{e:?}"
    );
    assert!(e.to_string().contains("check odoo.database"));
}

#[tokio::test]
async fn search_read_with_order_limit_offset_and_typed_rows() {
    let s = OdooStandin::start().await;
    let c = client(&s);
    let orders: Vec<Order> = c
        .search_read(
            "sale.order",
            &Domain::leaf("state", "in", json!(["draft", "sent"])),
            &[
                "name",
                "state",
                "partner_id",
                "amount_total",
                "client_order_ref",
            ],
            &SearchOptions::new().order("id asc"),
        )
        .await
        .unwrap();
    let ids: Vec<i64> = orders.iter().map(|o| o.id).collect();
    assert_eq!(ids, vec![2, 3, 5]);
    assert_eq!(orders[0].name, "S00002");
    assert_eq!(orders[0].state, "draft");
    assert_eq!(orders[0].partner_id.as_option(), Some((12, "Ready Mat")));
    assert_eq!(orders[0].amount_total, 3389.63);
    assert_eq!(orders[0].client_order_ref, None);

    let page: Vec<Value> = c
        .search_read(
            "sale.order",
            &Domain::all(),
            &["name"],
            &SearchOptions::new()
                .order("amount_total desc, id")
                .limit(2)
                .offset(1),
        )
        .await
        .unwrap();
    let names: Vec<&str> = page.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["S00020", "S00016"]);

    let ids = c
        .search(
            "res.partner",
            &Domain::leaf("name", "ilike", "azure"),
            &SearchOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(ids, vec![14]);
    let either = Domain::or(
        Domain::leaf("id", "=", 10),
        Domain::leaf("parent_id.name", "=", "Azure Interior"),
    );
    let mut ids = c
        .search("res.partner", &either, &SearchOptions::new())
        .await
        .unwrap();
    ids.sort();
    assert_eq!(ids, vec![10, 26, 27]);
    let not_sale = Domain::negate(Domain::leaf("state", "=", "sale"));
    assert_eq!(c.search_count("sale.order", &not_sale).await.unwrap(), 3);
}

#[tokio::test]
async fn streaming_walks_every_record_once_by_id() {
    let s = OdooStandin::start().await;
    let c = client(&s);
    let account = s.add_account("Main", "1001", 80);
    let partner = s.add_partner("Stream", "+33612345678", true);
    for i in 0..250 {
        s.queue_message(account, partner, &format!("m{i}"));
    }
    let stream = c.search_read_stream::<Value>(
        "whatsapp.message",
        Domain::leaf("state", "=", "queued"),
        &["body"],
        100,
    );
    futures_util::pin_mut!(stream);
    let mut pages = Vec::new();
    let mut seen = Vec::new();
    while let Some(page) = stream.next().await {
        let page = page.unwrap();
        pages.push(page.len());
        seen.extend(page.iter().map(|r| r["id"].as_i64().unwrap()));
    }
    assert_eq!(pages, vec![100, 100, 50]);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 250);
    assert_eq!(seen, sorted, "pages come in id order");
    assert_eq!(s.calls("whatsapp.message", "search_read"), 3);
}

#[tokio::test]
async fn read_skips_missing_ids_and_decodes_false() {
    let s = OdooStandin::start().await;
    let c = client(&s);
    #[derive(Deserialize)]
    struct Partner {
        id: i64,
        name: String,
        #[serde(deserialize_with = "de::false_as_none")]
        mobile: Option<String>,
        company_id: Many2one,
    }
    let rows: Vec<Partner> = c
        .read(
            "res.partner",
            &[14, 999_999, 10],
            &["name", "mobile", "company_id"],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].id, 14);
    assert_eq!(rows[0].name, "Azure Interior");
    assert_eq!(rows[0].mobile, None);
    assert_eq!(rows[0].company_id, Many2one::Empty);
    let empty: Vec<Value> = c.read("res.partner", &[], &["name"]).await.unwrap();
    assert!(empty.is_empty());
    assert_eq!(s.calls("res.partner", "read"), 1, "no call for no ids");
}

#[tokio::test]
async fn create_one_and_many_write_and_unlink() {
    let s = OdooStandin::start().await;
    let c = client(&s);
    let id = c
        .create(
            "res.partner",
            &json!({"name": "One", "phone": "+32 2 000 00 00"}),
        )
        .await
        .unwrap();
    let ids = c
        .create_many(
            "res.partner",
            &[
                json!({"name": "A"}),
                json!({"name": "B"}),
                json!({"name": "C"}),
            ],
        )
        .await
        .unwrap();
    assert_eq!(ids.len(), 3);
    assert_eq!(
        s.calls("res.partner", "create"),
        2,
        "the list went in one call"
    );
    assert_eq!(s.field("res.partner", ids[2], "name"), json!("C"));

    c.write("res.partner", &ids, &json!({"ref": "batch"}))
        .await
        .unwrap();
    assert_eq!(s.calls("res.partner", "write"), 1);
    for i in &ids {
        assert_eq!(s.field("res.partner", *i, "ref"), json!("batch"));
        assert_eq!(s.write_count("res.partner", *i), 1);
    }
    c.unlink("res.partner", &[id]).await.unwrap();
    assert_eq!(s.field("res.partner", id, "name"), Value::Null);
    let e = c.unlink("res.partner", &[id]).await.unwrap_err();
    assert!(matches!(e, OdooError::MissingError { .. }), "{e:?}");
}

#[tokio::test]
async fn write_each_sends_distinct_values_in_one_load_with_utc_datetimes() {
    let s = OdooStandin::start().await;
    let c = client(&s);
    let account = s.add_account("Main", "1001", 80);
    let partner = s.add_partner("P", "+33612345678", true);
    let ids: Vec<i64> = (0..50)
        .map(|i| s.queue_message(account, partner, &format!("m{i}")))
        .collect();
    s.reset_counters();
    let updates: Vec<(i64, Map<String, Value>)> = ids
        .iter()
        .map(|id| {
            let v = json!({"state": "sent", "wamid": format!("wamid.{id}"), "sent_at": "2026-07-01 12:00:00",
                           "attempt_count": 1, "partner_id": partner});
            (*id, v.as_object().cloned().unwrap())
        })
        .collect();
    let calls = c.write_each("whatsapp.message", &updates).await.unwrap();
    assert_eq!(calls, 1);
    assert_eq!(s.calls("whatsapp.message", "load"), 1);
    assert_eq!(s.calls("whatsapp.message", "write"), 0);
    let ctx = s.last_context("whatsapp.message", "load").unwrap();
    assert_eq!(ctx.get("tz"), Some(&json!("UTC")));
    for id in &ids {
        assert_eq!(
            s.field("whatsapp.message", *id, "wamid"),
            json!(format!("wamid.{id}"))
        );
        // Without tz=UTC, Odoo (and the stand-in) would read it in the user's Europe/Brussels.
        assert_eq!(
            s.field("whatsapp.message", *id, "sent_at"),
            json!("2026-07-01 12:00:00")
        );
        assert_eq!(s.write_count("whatsapp.message", *id), 1);
    }

    // Identical values for many records: one write.
    let same: Vec<(i64, Map<String, Value>)> = ids
        .iter()
        .map(|id| {
            (
                *id,
                json!({"state": "delivered"}).as_object().cloned().unwrap(),
            )
        })
        .collect();
    assert_eq!(c.write_each("whatsapp.message", &same).await.unwrap(), 1);
    assert_eq!(s.calls("whatsapp.message", "write"), 1);
    assert_eq!(
        s.field("whatsapp.message", ids[7], "state"),
        json!("delivered")
    );
}

#[tokio::test]
async fn a_load_that_met_a_concurrent_write_is_sent_again() {
    let s = OdooStandin::start().await;
    let c = client(&s);
    let account = s.add_account("Main", "1001", 80);
    let partner = s.add_partner("P", "+33612345678", true);
    let ids: Vec<i64> = (0..3)
        .map(|i| s.queue_message(account, partner, &format!("m{i}")))
        .collect();
    let updates: Vec<(i64, Map<String, Value>)> = ids
        .iter()
        .map(|id| {
            let v = json!({"state": "sending", "wamid": format!("wamid.c{id}")});
            (*id, v.as_object().cloned().unwrap())
        })
        .collect();
    // Another transaction wrote the same records twice in a row: the third try goes through.
    s.reset_counters();
    s.conflict_next_loads(2);
    c.write_each("whatsapp.message", &updates).await.unwrap();
    assert_eq!(s.calls("whatsapp.message", "load"), 3);
    assert_eq!(
        s.field("whatsapp.message", ids[2], "wamid"),
        json!(format!("wamid.c{}", ids[2]))
    );

    // Conflicts that do not stop: given up after a few tries, with Odoo's words.
    s.reset_counters();
    s.conflict_next_loads(100);
    let e = c
        .write_each("whatsapp.message", &updates)
        .await
        .unwrap_err();
    assert!(matches!(e, OdooError::ValidationError { .. }), "{e:?}");
    assert!(e.to_string().contains("could not serialize access"), "{e}");
    assert_eq!(
        s.calls("whatsapp.message", "load"),
        u64::from(whatsapp_sidecar::odoo::client::LOAD_CONFLICT_TRIES)
    );
}

#[tokio::test]
async fn a_failing_load_changes_nothing_and_says_why() {
    let s = OdooStandin::start().await;
    let c = client(&s);
    let account = s.add_account("Main", "1001", 80);
    let partner = s.add_partner("P", "+33612345678", true);
    let a = s.queue_message(account, partner, "a");
    let b = s.queue_message(account, partner, "b");
    let updates = vec![
        (
            a,
            json!({"wamid": "wamid.same", "state": "sent"})
                .as_object()
                .cloned()
                .unwrap(),
        ),
        (
            b,
            json!({"wamid": "wamid.same", "state": "sent"})
                .as_object()
                .cloned()
                .unwrap(),
        ),
    ];
    // Two records given the same wamid: the unique constraint refuses the batch, none is changed.
    let e = c
        .write_each("whatsapp.message", &updates)
        .await
        .unwrap_err();
    assert!(matches!(e, OdooError::ValidationError { .. }), "{e:?}");
    assert!(e.to_string().contains("wamid"), "{e}");
    assert_eq!(s.field("whatsapp.message", a, "state"), json!("queued"));

    let rows = vec![
        vec![a.to_string(), "sent".to_owned()],
        vec!["999999".to_owned(), "sent".to_owned()],
    ];
    let e = c
        .load(
            "whatsapp.message",
            &[".id".to_owned(), "state".to_owned()],
            &rows,
        )
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("Unknown database identifier '999999'"),
        "{e}"
    );
    assert_eq!(
        s.field("whatsapp.message", a, "state"),
        json!("queued"),
        "row 0 rolled back"
    );
}

#[tokio::test]
async fn unique_dedupe_key_gives_odoos_validation_error() {
    let s = OdooStandin::start().await;
    let c = client(&s);
    let account = s.add_account("Main", "1001", 80);
    let vals = json!({"account_id": account, "to_number": "+33612345678", "body": "hi", "dedupe_key": "invoice_posted:account.move:1"});
    c.create("whatsapp.message", &vals).await.unwrap();
    let e = c.create("whatsapp.message", &vals).await.unwrap_err();
    match &e {
        OdooError::ValidationError { message, .. } => assert_eq!(
            message,
            "The operation cannot be completed: A message with this deduplication key already exists: it was queued once already."
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.count("whatsapp.message"), 1);
}

#[tokio::test]
async fn call_any_method_and_methods_returning_none() {
    let s = OdooStandin::start().await;
    let c = client(&s);
    let confirmed: bool = c
        .call("sale.order", "action_confirm", json!([[2]]), Value::Null)
        .await
        .unwrap();
    assert!(confirmed);
    assert_eq!(s.field("sale.order", 2, "state"), json!("sale"));
    c.call::<()>(
        "sale.order",
        "action_quotation_sent",
        json!([[3]]),
        Value::Null,
    )
    .await
    .unwrap();
    let wizard: Value = c
        .call("sale.order", "action_cancel", json!([[3]]), Value::Null)
        .await
        .unwrap();
    assert_eq!(wizard["res_model"], json!("sale.order.cancel"));
    let cancel = c.with_context(Context::new().set("disable_cancel_warning", json!(true)));
    let done: bool = cancel
        .call("sale.order", "action_cancel", json!([[3]]), Value::Null)
        .await
        .unwrap();
    assert!(done);
    let e = c
        .call::<Value>("sale.order", "action_confirm", json!([[3]]), Value::Null)
        .await
        .unwrap_err();
    assert!(matches!(e, OdooError::UserError { .. }), "{e:?}");
    assert!(e.to_string().contains("S00003"), "{e}");
    let e = c
        .call::<Value>("res.partner", "no_such_method", json!([[14]]), Value::Null)
        .await
        .unwrap_err();
    assert!(matches!(e, OdooError::UnknownMethod { .. }), "{e:?}");
    let e = c
        .call::<Value>("no.such.model", "search", json!([[]]), Value::Null)
        .await
        .unwrap_err();
    assert!(matches!(e, OdooError::UnknownModel { .. }), "{e:?}");
}

#[tokio::test]
async fn message_post_lands_in_the_chatter() {
    let s = OdooStandin::start().await;
    let c = client(&s);
    let id = c
        .message_post(
            "sale.order",
            1,
            "WhatsApp sent to +1 555 <0100>",
            "mail.mt_note",
        )
        .await
        .unwrap();
    assert!(id > 0);
    assert_eq!(
        s.chatter("sale.order", 1),
        vec!["<p>WhatsApp sent to +1 555 &lt;0100&gt;</p>".to_owned()]
    );
    let msg: Vec<Value> = c
        .read(
            "mail.message",
            &[id],
            &["subtype_id", "author_id", "message_type"],
        )
        .await
        .unwrap();
    assert_eq!(msg[0]["subtype_id"], json!([2, "Note"]));
    assert_eq!(msg[0]["message_type"], json!("comment"));
}

#[tokio::test]
async fn context_company_lang_tz_is_sent_and_merged() {
    let s = OdooStandin::start().await;
    let c = client(&s).with_context(Context::new().company(1).lang("fr_FR"));
    let tz = c.with_context(Context::new().tz("Europe/Paris"));
    tz.search_count("res.partner", &Domain::all())
        .await
        .unwrap();
    let ctx = s.last_context("res.partner", "search_count").unwrap();
    assert_eq!(ctx.get("allowed_company_ids"), Some(&json!([1])));
    assert_eq!(ctx.get("lang"), Some(&json!("fr_FR")));
    assert_eq!(ctx.get("tz"), Some(&json!("Europe/Paris")));
    // An explicit context in kwargs wins over the handle's.
    let _: Value = c
        .call(
            "res.partner",
            "search_count",
            json!([[]]),
            json!({"context": {"lang": "en_US"}}),
        )
        .await
        .unwrap();
    let ctx = s.last_context("res.partner", "search_count").unwrap();
    assert_eq!(ctx.get("lang"), Some(&json!("en_US")));
    assert_eq!(ctx.get("allowed_company_ids"), Some(&json!([1])));
}

#[tokio::test]
async fn fields_get_and_access_rights() {
    let s = OdooStandin::start().await;
    let c = client(&s);
    let fields = c
        .fields_get(
            "whatsapp.message",
            &["type", "string", "relation", "selection"],
        )
        .await
        .unwrap();
    assert_eq!(fields["partner_id"].field_type, "many2one");
    assert_eq!(
        fields["partner_id"].relation.as_deref(),
        Some("res.partner")
    );
    assert!(fields["state"]
        .selection
        .iter()
        .any(|(v, _)| v == "delivered"));
    assert!(c
        .check_access_rights("whatsapp.message", Access::Write)
        .await
        .unwrap());

    let mut cfg = client_config(&s);
    cfg.login = "demo".into();
    cfg.api_key = None;
    cfg.password = Some(Secret::new("demo"));
    let demo = client_with(cfg);
    assert!(demo
        .check_access_rights("whatsapp.message", Access::Read)
        .await
        .unwrap());
    assert!(!demo
        .check_access_rights("whatsapp.message", Access::Write)
        .await
        .unwrap());
    let e = demo
        .write("res.users", &[2], &json!({"signature": "<p>x</p>"}))
        .await
        .unwrap_err();
    assert!(matches!(e, OdooError::AccessError { .. }), "{e:?}");
}

#[tokio::test]
async fn bad_domain_and_unknown_field_are_typed() {
    let s = OdooStandin::start().await;
    let c = client(&s);
    let e = c
        .search(
            "sale.order",
            &Domain::leaf("state", "badop", "draft"),
            &SearchOptions::new(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, OdooError::BadDomain { .. }), "{e:?}");
    let e = c
        .search(
            "sale.order",
            &Domain::leaf("no_such_field", "=", 1),
            &SearchOptions::new(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, OdooError::UnknownField { ref field, .. } if field == "no_such_field"),
        "{e:?}"
    );
    let e = c
        .read::<Value>("res.partner", &[14], &["name", "nope"])
        .await
        .unwrap_err();
    assert!(
        matches!(e, OdooError::UnknownField { ref field, .. } if field == "nope"),
        "{e:?}"
    );
}

#[tokio::test]
async fn retryable_failures_are_retried_then_succeed() {
    let s = OdooStandin::start().await;
    let c = client(&s);
    c.uid().await.unwrap();
    s.fail_next_call("res.partner", "search_count", 2, Fault::Http(503));
    assert!(c.search_count("res.partner", &Domain::all()).await.unwrap() > 0);
    assert_eq!(
        s.calls("res.partner", "search_count"),
        3,
        "two 503s, then success"
    );

    s.fail_next_call(
        "whatsapp.message",
        "search_count",
        1,
        Fault::serialization_failure(),
    );
    s.fail_next_call(
        "whatsapp.message",
        "search_count",
        1,
        Fault::lock_not_available(),
    );
    c.search_count("whatsapp.message", &Domain::all())
        .await
        .unwrap();
    assert_eq!(s.calls("whatsapp.message", "search_count"), 3);
}

#[tokio::test]
async fn business_errors_are_not_retried_and_retries_are_bounded() {
    let s = OdooStandin::start().await;
    let c = client(&s);
    c.uid().await.unwrap();
    let e = c
        .call::<Value>("sale.order", "action_confirm", json!([[1]]), Value::Null)
        .await
        .unwrap_err();
    assert!(!e.is_retryable());
    assert_eq!(s.calls("sale.order", "action_confirm"), 1);

    s.fail_next_call("res.partner", "search_count", 100, Fault::Http(502));
    let e = c
        .search_count("res.partner", &Domain::all())
        .await
        .unwrap_err();
    assert!(matches!(e, OdooError::Http { status: 502, .. }), "{e:?}");
    assert_eq!(
        s.calls("res.partner", "search_count"),
        4,
        "1 try + max_retries (3)"
    );

    s.fail_next_call("res.partner", "search", 1, Fault::Http(500));
    let e = c
        .search("res.partner", &Domain::all(), &SearchOptions::new())
        .await
        .unwrap_err();
    assert!(matches!(e, OdooError::Http { status: 500, .. }));
    assert_eq!(s.calls("res.partner", "search"), 1, "500 is not retried");
}

#[tokio::test]
async fn connection_refused_is_retried_until_odoo_is_back() {
    let s = OdooStandin::start().await;
    let mut cfg = client_config(&s);
    cfg.max_retries = 20;
    let c = OdooClient::new(cfg)
        .unwrap()
        .with_retry_delays(Duration::from_millis(20), Duration::from_millis(50));
    c.uid().await.unwrap();
    s.go_down(Outage::Refuse).await;
    let direct = client(&s).version().await.unwrap_err();
    assert!(matches!(direct, OdooError::Transport { .. }), "{direct:?}");
    assert!(direct.to_string().contains(&s.url()), "{direct}");
    let call = tokio::spawn({
        let c = c.clone();
        async move { c.search_count("res.partner", &Domain::all()).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.come_back().await;
    assert!(call.await.unwrap().unwrap() > 0);
}

#[tokio::test]
async fn a_hanging_odoo_times_out_as_a_retryable_transport_error() {
    let s = OdooStandin::start().await;
    let mut cfg = client_config(&s);
    cfg.timeout = Duration::from_millis(300);
    cfg.max_retries = 0;
    let c = client_with(cfg);
    c.uid().await.unwrap();
    s.go_down(Outage::Hang).await;
    let e = c
        .search_count("res.partner", &Domain::all())
        .await
        .unwrap_err();
    assert!(matches!(e, OdooError::Transport { .. }), "{e:?}");
    assert!(e.is_retryable() && e.is_unreachable());
    assert!(e.to_string().contains("odoo.timeout"), "{e}");
    s.come_back().await;
    assert!(c.search_count("res.partner", &Domain::all()).await.unwrap() > 0);
}

#[tokio::test]
async fn a_stale_uid_is_refreshed_once() {
    let s = OdooStandin::start().await;
    let c = client(&s);
    assert_eq!(c.uid().await.unwrap(), 2);
    s.renumber_user("admin", 8);
    assert!(c.search_count("res.partner", &Domain::all()).await.unwrap() > 0);
    assert_eq!(c.uid().await.unwrap(), 8);
    assert_eq!(s.calls("common", "authenticate"), 2);

    // A revoked key: one re-login attempt, then the error.
    s.set_api_key("admin", "ffffffffffffffffffffffffffffffffffffffff");
    let e = c
        .search_count("res.partner", &Domain::all())
        .await
        .unwrap_err();
    assert!(matches!(e, OdooError::AccessDenied { .. }), "{e:?}");
    assert_eq!(s.calls("common", "authenticate"), 3);
}

#[tokio::test]
async fn report_pdf_logs_in_once_and_renews_an_expired_session() {
    let s = OdooStandin::start().await;
    let c = client(&s);
    let pdf = c.report_pdf("sale.report_saleorder", &[2]).await.unwrap();
    assert!(pdf.starts_with(b"%PDF"));
    let pdf = c
        .report_pdf("account.report_invoice", &[1, 2])
        .await
        .unwrap();
    assert!(pdf.starts_with(b"%PDF"));
    assert_eq!(s.calls("web", "session/authenticate"), 1);
    s.expire_sessions();
    let pdf = c.report_pdf("sale.report_saleorder", &[3]).await.unwrap();
    assert!(pdf.starts_with(b"%PDF"));
    assert_eq!(
        s.calls("web", "session/authenticate"),
        2,
        "the 303 led to one new login"
    );
    assert_eq!(s.reports_served().len(), 3);
}

#[tokio::test]
async fn report_errors_are_explicit() {
    let s = OdooStandin::start().await;
    let c = client(&s);
    let e = c
        .report_pdf("sale.report_saleorder", &[999_999])
        .await
        .unwrap_err();
    assert!(matches!(e, OdooError::NotAPdf { .. }), "{e:?}");
    assert!(e.to_string().contains("Record does not exist"), "{e}");
    let e = c.report_pdf("no.such_report", &[1]).await.unwrap_err();
    assert!(e.to_string().contains("HTTP 500"), "{e}");
    let e = c
        .report_pdf("sale.report_saleorder/../x", &[1])
        .await
        .unwrap_err();
    assert!(matches!(e, OdooError::NotAPdf { .. }));

    let mut cfg = client_config(&s);
    cfg.password = None;
    let e = client_with(cfg)
        .report_pdf("sale.report_saleorder", &[2])
        .await
        .unwrap_err();
    assert!(matches!(e, OdooError::NoPassword));

    let mut cfg = client_config(&s);
    cfg.password = Some(Secret::new(s.api_key()));
    let e = client_with(cfg)
        .report_pdf("sale.report_saleorder", &[2])
        .await
        .unwrap_err();
    assert!(
        matches!(e, OdooError::AccessDenied { .. }),
        "an API key does not open a web session: {e:?}"
    );
    assert!(e.to_string().contains("odoo.password"), "{e}");
}

/// A server that redirects every report to /web/login, even right after a login.
#[tokio::test]
async fn a_login_page_is_never_returned_as_a_pdf() {
    use axum::routing::{get, post};
    let app = axum::Router::new()
        .route(
            "/web/session/authenticate",
            post(|| async {
                (
                    [
                        ("set-cookie", "session_id=abc; Path=/"),
                        ("content-type", "application/json"),
                    ],
                    r#"{"jsonrpc": "2.0", "id": 1, "result": {"uid": 2}}"#,
                )
            }),
        )
        .route(
            "/report/pdf/{r}/{i}",
            get(|| async {
                (
                    axum::http::StatusCode::SEE_OTHER,
                    [("location", "/web/login?redirect=%2Freport")],
                    "<html>login</html>",
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut cfg = ClientConfig::new(format!("http://{addr}").parse().unwrap(), "wa17", "admin");
    cfg.password = Some(Secret::new("admin"));
    let e = client_with(cfg)
        .report_pdf("sale.report_saleorder", &[2])
        .await
        .unwrap_err();
    assert!(matches!(e, OdooError::SessionExpired { .. }), "{e:?}");
}

#[tokio::test]
async fn concurrent_calls_never_exceed_the_bound() {
    let s = OdooStandin::start().await;
    let mut cfg = client_config(&s);
    cfg.max_concurrent_requests = 3;
    let c = client_with(cfg);
    c.uid().await.unwrap();
    s.set_latency(Duration::from_millis(40));
    s.reset_counters();
    let tasks: Vec<_> = (0..24)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.search_count("res.partner", &Domain::all()).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(s.calls("res.partner", "search_count"), 24);
    assert_eq!(s.max_in_flight(), 3, "three requests at a time, never more");
}

#[tokio::test]
async fn a_non_odoo_server_is_a_protocol_error() {
    use axum::routing::post;
    let app = axum::Router::new().route("/jsonrpc", post(|| async { "<html>hello</html>" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let cfg = ClientConfig::new(format!("http://{addr}/").parse().unwrap(), "wa17", "admin");
    let e = client_with(cfg).version().await.unwrap_err();
    assert!(matches!(e, OdooError::Protocol { .. }), "{e:?}");
    assert!(e.to_string().contains("is odoo.url an Odoo server"), "{e}");
}

#[tokio::test]
async fn a_password_in_the_url_never_reaches_an_error() {
    let s = OdooStandin::start().await;
    let mut cfg = client_config(&s);
    cfg.max_retries = 0;
    cfg.url.set_username("proxyuser").unwrap();
    cfg.url.set_password(Some("hunter2-proxy")).unwrap();
    let c = client_with(cfg);
    c.uid().await.unwrap();
    // An HTTP error page from a proxy, and a body that is not JSON-RPC.
    s.fail_next_call("res.partner", "search_count", 1, Fault::Http(502));
    let http = c
        .search_count("res.partner", &Domain::all())
        .await
        .unwrap_err();
    assert!(
        matches!(http, OdooError::Http { status: 502, .. }),
        "{http:?}"
    );
    for shown in [http.to_string(), format!("{http:?}")] {
        assert!(!shown.contains("hunter2-proxy"), "{shown}");
        assert!(
            shown.contains("/jsonrpc"),
            "the error still names the endpoint: {shown}"
        );
    }
}

#[tokio::test]
async fn a_handle_without_retries_tries_once() {
    let s = OdooStandin::start().await;
    let c = client(&s);
    c.uid().await.unwrap();
    s.fail_next_call("res.partner", "search_count", 10, Fault::Http(503));
    let e = c
        .without_retries()
        .search_count("res.partner", &Domain::all())
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert_eq!(
        s.calls("res.partner", "search_count"),
        1,
        "one try, no retry"
    );
    // The handle it came from still retries: one try and its three retries.
    assert!(c.search_count("res.partner", &Domain::all()).await.is_err());
    assert_eq!(s.calls("res.partner", "search_count"), 1 + 4);
}

#[tokio::test]
async fn the_button_secret_comes_from_the_addon_and_signs_payloads_it_verifies() {
    use whatsapp_sidecar::buttons;
    let s = OdooStandin::start().await;
    let odoo = client(&s);
    let secret = buttons::load_secret(&odoo).await.unwrap();
    let again = buttons::load_secret(&odoo).await.unwrap();
    let payload = buttons::sign(&secret, "order_validate", 7).unwrap();
    // The same secret twice: a payload made before a restart still verifies after it.
    assert_eq!(buttons::verify(&again, &payload).unwrap().record_id, 7);
}

// ----- Odoo's bus -----------------------------------------------------------------------------

/// Waits until `check` holds, at most 10 s.
async fn until(what: &str, check: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether `wake` is woken (or sees the bus change) within `within`.
async fn woken(wake: &whatsapp_sidecar::poll::Wake, within: Duration) -> bool {
    tokio::time::timeout(within, wake.sleep(Duration::from_secs(600)))
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bus_wakes_the_loop_of_a_change_and_catches_up_after_a_drop_or_an_ended_session() {
    use whatsapp_sidecar::bus::{self, BusClient, Hub};
    let odoo = OdooStandin::start().await;
    let account = odoo.add_account("Main", "100200300", 80);
    let partner = odoo.add_partner("Awa", "+2250700000001", true);
    // Created long ago: a first subscription (`last = 0`) replays only the last 50 s.
    odoo.age_bus_rows(Duration::from_secs(60));
    let client = OdooClient::new(client_config(&odoo)).unwrap();
    let bus_client =
        BusClient::new(client, &odoo.url().parse().unwrap(), Duration::from_secs(5)).unwrap();
    let mut hub = Hub::new(Duration::from_secs(30));
    let outbox = hub.wake(&["whatsapp.message"]);
    let accounts = hub.wake(&["whatsapp.account"]);
    let hub = std::sync::Arc::new(hub);
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(bus::run(bus_client, hub.clone(), stop.clone()));
    until("the subscription", || hub.is_up()).await;
    assert!(outbox.bus_up());
    assert_eq!(
        outbox.idle_pause(Duration::from_millis(500), None),
        Duration::from_secs(30)
    );
    // The bus coming up ends the sleeps once (the loops look at once, then slowly).
    woken(&outbox, Duration::from_millis(50)).await;
    woken(&accounts, Duration::from_millis(50)).await;

    // A queued message wakes the outbox, not the accounts.
    odoo.queue_message(account, partner, "hello");
    assert!(
        woken(&outbox, Duration::from_secs(5)).await,
        "the outbox was not woken"
    );
    assert!(!woken(&accounts, Duration::from_millis(300)).await);
    // A write that queues nothing notifies nothing.
    let sent = odoo.queue_message(account, partner, "again");
    assert!(woken(&outbox, Duration::from_secs(5)).await);
    odoo.update("whatsapp.message", sent, json!({"state": "sent"}));
    assert!(!woken(&outbox, Duration::from_millis(300)).await);
    assert_eq!(hub.delivered(), 2);

    // Odoo going away: the loops are told (they poll at their own rates again); what was
    // queued meanwhile arrives with the resubscription (`last`).
    odoo.close_websockets(1001);
    until("the drop", || !hub.is_up()).await;
    assert_eq!(
        outbox.idle_pause(Duration::from_millis(500), None),
        Duration::from_millis(500)
    );
    odoo.queue_message(account, partner, "while away");
    until("the resubscription", || hub.is_up()).await;
    until("the missed notification", || hub.delivered() == 3).await;
    assert_eq!(hub.subscriptions(), 2);

    // A session Odoo ended: closed with 4001 at the next notification; the client logs in again
    // and gets that notification on the new connection.
    let logins = odoo.calls("web", "session/authenticate");
    odoo.expire_sessions();
    odoo.queue_message(account, partner, "after the session ended");
    until("a new login", || {
        odoo.calls("web", "session/authenticate") > logins
    })
    .await;
    until("the notification", || hub.delivered() == 4).await;
    until("the third subscription", || {
        hub.subscriptions() == 3 && hub.is_up()
    })
    .await;

    stop.cancel();
    task.await.unwrap();
    assert!(!hub.is_up());
    until("the websocket closed", || odoo.websockets_open() == 0).await;
}

#[tokio::test]
async fn a_refused_websocket_is_an_error_that_names_the_fix() {
    use whatsapp_sidecar::bus::{BusClient, BusError};
    let odoo = OdooStandin::start().await;
    odoo.set_websocket(false);
    let client = OdooClient::new(client_config(&odoo)).unwrap();
    let bus_client =
        BusClient::new(client, &odoo.url().parse().unwrap(), Duration::from_secs(5)).unwrap();
    let err = match bus_client.connect(0).await {
        Err(e) => e,
        Ok(_) => panic!("the refused websocket was accepted"),
    };
    assert!(
        matches!(err, BusError::Refused { status: 404, .. }),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(
        text.contains("HTTP 404") && text.contains("bus.url"),
        "{text}"
    );

    // No password: the web session cannot be opened, and the error says why.
    let mut cfg = client_config(&odoo);
    cfg.password = None;
    let no_password = BusClient::new(
        OdooClient::new(cfg).unwrap(),
        &odoo.url().parse().unwrap(),
        Duration::from_secs(5),
    )
    .unwrap();
    let err = match no_password.connect(0).await {
        Err(e) => e,
        Ok(_) => panic!("subscribed without a password"),
    };
    assert!(matches!(err, BusError::Session(_)), "{err:?}");
    assert!(err.to_string().contains("password"), "{err}");

    // Nothing secret in what is shown.
    let shown = format!("{bus_client:?} {err}");
    // (The stand-in's password is its login, "admin", so only the key is looked for.)
    assert!(!shown.contains(odoo.api_key()), "{shown}");
}
