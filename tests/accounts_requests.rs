//! The accounts' "Check settings" and "Sync templates" buttons against the Odoo stand-in (with
//! the addon's models) and the sandbox (playing Meta: number `sandbox-0001` on WABA
//! `sandbox-waba`, templates `sidecar_hello`, `sidecar_invoice` and `sidecar_order`).

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::{client_config, OdooStandin, Outage};
use tokio_util::sync::CancellationToken;
use whatsapp_sidecar::accounts::{poll_once, run, AccountsContext};
use whatsapp_sidecar::odoo::{parse_datetime, OdooClient};
use whatsapp_sidecar::sandbox::{SandboxConfig, SandboxHandle};
use whatsapp_sidecar::secret::Secret;
use whatsapp_sidecar::whatsapp::{ClientConfig, CloudClient};

const ACCOUNT: &str = "whatsapp.account";
const TEMPLATE: &str = "whatsapp.template";
const VARIABLE: &str = "whatsapp.template.variable";

struct World {
    odoo: OdooStandin,
    meta: SandboxHandle,
    stop: CancellationToken,
    ctx: AccountsContext,
    account: i64,
}

impl Drop for World {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn world(config: SandboxConfig) -> World {
    let stop = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let meta = SandboxHandle::start(listener, config, stop.clone())
        .await
        .expect("sandbox");
    let odoo = OdooStandin::start().await;
    let account = odoo.add_account("Main", "sandbox-0001", 80);
    odoo.update(ACCOUNT, account, json!({"waba_id": "sandbox-waba"}));
    let mut odoo_config = client_config(&odoo);
    odoo_config.max_retries = 0;
    let client = OdooClient::new(odoo_config).expect("odoo client");
    let whatsapp = CloudClient::new(ClientConfig::new(
        meta.base_url().parse().expect("url"),
        "v25.0",
    ))
    .expect("cloud client");
    let ctx = AccountsContext {
        odoo: client,
        whatsapp,
        poll_interval: Duration::from_millis(20),
        bus: Default::default(),
    };
    World {
        odoo,
        meta,
        stop,
        ctx,
        account,
    }
}

fn field(w: &World, id: i64, name: &str) -> Value {
    w.odoo.field(ACCOUNT, id, name)
}

fn templates(w: &World) -> Vec<serde_json::Map<String, Value>> {
    w.odoo
        .search(TEMPLATE, json!([["account_id", "=", w.account]]))
        .into_iter()
        .filter_map(|id| w.odoo.record(TEMPLATE, id))
        .collect()
}

fn template_named(w: &World, name: &str) -> serde_json::Map<String, Value> {
    templates(w)
        .into_iter()
        .find(|t| t.get("name") == Some(&json!(name)))
        .unwrap_or_else(|| panic!("no template {name}"))
}

#[tokio::test]
async fn check_fills_the_read_only_fields_and_clears_the_flag() {
    let w = world(SandboxConfig::default()).await;
    w.odoo.update(
        ACCOUNT,
        w.account,
        json!({"check_requested": true, "display_phone_number": false}),
    );
    poll_once(&w.ctx, false).await.expect("poll");

    assert_eq!(field(&w, w.account, "check_requested"), json!(false));
    assert_eq!(
        field(&w, w.account, "display_phone_number"),
        json!("+1 555 000 0001")
    );
    assert_eq!(
        field(&w, w.account, "verified_name"),
        json!("Sidecar Sandbox")
    );
    assert_eq!(field(&w, w.account, "quality_rating"), json!("green"));
    assert_eq!(field(&w, w.account, "messaging_limit"), json!("TIER_250"));
    assert_eq!(field(&w, w.account, "last_check_ok"), json!(true));
    let at = field(&w, w.account, "last_check_at");
    let at = at.as_str().and_then(parse_datetime).expect("last_check_at");
    assert!((chrono::Utc::now() - at).num_seconds().abs() < 60);
    let message = field(&w, w.account, "last_check_message");
    assert!(
        message.as_str().is_some_and(|m| m.contains("OK")),
        "{message}"
    );
    // One read of the accounts, one write of the results.
    assert_eq!(w.odoo.calls(ACCOUNT, "search_read"), 1);
    assert_eq!(w.odoo.calls(ACCOUNT, "write"), 1);

    // Nothing requested: nothing written.
    poll_once(&w.ctx, false).await.expect("poll");
    assert_eq!(w.odoo.calls(ACCOUNT, "write"), 1);
}

#[tokio::test]
async fn a_refused_token_fails_the_check_and_the_sync_in_plain_words() {
    let config = SandboxConfig {
        tokens: vec![Secret::new("the-only-valid-token")],
        ..SandboxConfig::default()
    };
    let w = world(config).await;
    w.odoo.update(
        ACCOUNT,
        w.account,
        json!({"check_requested": true, "sync_requested": true}),
    );
    poll_once(&w.ctx, false).await.expect("poll");

    assert_eq!(field(&w, w.account, "check_requested"), json!(false));
    assert_eq!(field(&w, w.account, "sync_requested"), json!(false));
    assert_eq!(field(&w, w.account, "last_check_ok"), json!(false));
    let message = field(&w, w.account, "last_check_message");
    let message = message.as_str().expect("message");
    assert!(
        message.contains("Meta refused the access token"),
        "{message}"
    );
    assert!(
        message.contains("Template sync failed: access token: Meta refused"),
        "{message}"
    );
    assert!(!message.contains("sandbox-token"), "{message}");
    assert!(templates(&w).is_empty());
    assert_eq!(w.odoo.calls(ACCOUNT, "write"), 1);
}

#[tokio::test]
async fn a_malformed_graph_api_version_fails_the_check_and_the_sync_with_the_fix() {
    let w = world(SandboxConfig::default()).await;
    w.odoo.update(
        ACCOUNT,
        w.account,
        json!({"check_requested": true, "sync_requested": true, "graph_api_version": "v25"}),
    );
    poll_once(&w.ctx, false).await.expect("poll");

    assert_eq!(field(&w, w.account, "check_requested"), json!(false));
    assert_eq!(field(&w, w.account, "sync_requested"), json!(false));
    assert_eq!(field(&w, w.account, "last_check_ok"), json!(false));
    let message = field(&w, w.account, "last_check_message");
    let message = message.as_str().expect("message");
    assert!(
        message.starts_with("FAIL Graph API version: 'v25' is not a Graph API version")
            && message.contains("set Graph API version on the WhatsApp account to e.g. v26.0"),
        "{message}"
    );
    assert!(
        message.contains("Template sync failed:") && message.contains("'v25'"),
        "{message}"
    );
    assert!(templates(&w).is_empty());
}

#[tokio::test]
async fn sync_creates_templates_with_variables_then_changes_nothing_then_follows_meta() {
    let w = world(SandboxConfig::default()).await;
    w.odoo
        .update(ACCOUNT, w.account, json!({"sync_requested": true}));
    poll_once(&w.ctx, false).await.expect("first sync");

    assert_eq!(field(&w, w.account, "sync_requested"), json!(false));
    assert_eq!(w.odoo.calls(TEMPLATE, "create"), 1, "one create call");
    let invoice = template_named(&w, "sidecar_invoice");
    assert_eq!(invoice["language"], "en_US");
    assert_eq!(invoice["status"], "approved");
    assert_eq!(invoice["category"], "utility");
    assert_eq!(invoice["parameter_format"], "positional");
    assert_eq!(invoice["meta_template_id"], "sandbox-tpl-0002");
    let components: Value =
        serde_json::from_str(invoice["components_json"].as_str().expect("text")).expect("json");
    assert_eq!(components[0]["format"], "DOCUMENT");
    let invoice_id = invoice["id"].as_i64().expect("id");
    let mut names: Vec<String> = w
        .odoo
        .search(VARIABLE, json!([["template_id", "=", invoice_id]]))
        .into_iter()
        .map(|id| {
            w.odoo
                .field(VARIABLE, id, "name")
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    names.sort();
    assert_eq!(names, ["1", "2", "3"]);
    let hello = template_named(&w, "sidecar_hello");
    assert_eq!(hello["status"], "approved");
    assert_eq!(
        w.odoo.count(VARIABLE),
        6,
        "the invoice and order templates have three each, the hello template none"
    );
    let summary = field(&w, w.account, "last_check_message");
    assert!(
        summary
            .as_str()
            .is_some_and(|s| s.starts_with("Templates synced: 3 at Meta, 3 created")),
        "{summary}"
    );
    assert!(field(&w, w.account, "last_sync_at").is_string());

    // A person maps a variable; the next sync keeps it and writes nothing.
    let first = w.odoo.search(
        VARIABLE,
        json!([["template_id", "=", invoice_id], ["name", "=", "1"]]),
    )[0];
    w.odoo.update(
        VARIABLE,
        first,
        json!({"field_path": "partner_id.name", "fixed_value": false}),
    );
    w.odoo
        .update(ACCOUNT, w.account, json!({"sync_requested": true}));
    poll_once(&w.ctx, false).await.expect("second sync");
    assert_eq!(w.odoo.calls(TEMPLATE, "create"), 1);
    assert_eq!(w.odoo.calls(TEMPLATE, "write"), 0);
    assert_eq!(w.odoo.calls(TEMPLATE, "load"), 0);
    assert_eq!(w.odoo.calls(VARIABLE, "create"), 0);
    assert_eq!(
        w.odoo.field(VARIABLE, first, "field_path"),
        json!("partner_id.name")
    );
    assert_eq!(field(&w, w.account, "sync_requested"), json!(false));

    // Meta pauses a template: the next sync writes the new status.
    w.meta
        .set_template_status("sandbox-waba", "sidecar_hello", "en_US", "PAUSED")
        .expect("pause");
    w.odoo
        .update(ACCOUNT, w.account, json!({"sync_requested": true}));
    poll_once(&w.ctx, false).await.expect("third sync");
    assert_eq!(template_named(&w, "sidecar_hello")["status"], "paused");
    assert_eq!(template_named(&w, "sidecar_invoice")["status"], "approved");
    assert_eq!(w.odoo.calls(TEMPLATE, "write"), 1);
    assert_eq!(w.odoo.count(TEMPLATE), 3);
}

#[tokio::test]
async fn a_template_gone_from_meta_is_marked_deleted_not_removed() {
    let w = world(SandboxConfig::default()).await;
    let old = w.odoo.insert(
        TEMPLATE,
        json!({"name": "old_promo", "language": "en_US", "account_id": w.account,
               "status": "approved", "components_json": "[]"}),
    );
    w.odoo
        .update(ACCOUNT, w.account, json!({"sync_requested": true}));
    poll_once(&w.ctx, false).await.expect("sync");
    assert_eq!(w.odoo.field(TEMPLATE, old, "status"), json!("deleted"));
    assert_eq!(w.odoo.count(TEMPLATE), 4);
}

#[tokio::test]
async fn odoo_down_keeps_the_request_for_the_next_poll() {
    let w = world(SandboxConfig::default()).await;
    w.odoo
        .update(ACCOUNT, w.account, json!({"check_requested": true}));
    w.odoo.go_down(Outage::Refuse).await;
    assert!(poll_once(&w.ctx, false).await.is_err());
    w.odoo.come_back().await;
    assert_eq!(field(&w, w.account, "check_requested"), json!(true));
    poll_once(&w.ctx, false).await.expect("poll");
    assert_eq!(field(&w, w.account, "check_requested"), json!(false));
    assert_eq!(field(&w, w.account, "last_check_ok"), json!(true));
}

#[tokio::test]
async fn the_task_checks_every_account_at_start_then_serves_the_buttons() {
    let w = world(SandboxConfig::default()).await;
    w.odoo.update(
        ACCOUNT,
        w.account,
        json!({"display_phone_number": false, "quality_rating": false}),
    );
    let stop = CancellationToken::new();
    let task = tokio::spawn(run(w.ctx.clone(), stop.clone()));

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while field(&w, w.account, "quality_rating") != json!("green") {
        assert!(tokio::time::Instant::now() < deadline, "no check at start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        field(&w, w.account, "display_phone_number"),
        json!("+1 555 000 0001")
    );

    w.odoo
        .update(ACCOUNT, w.account, json!({"sync_requested": true}));
    while field(&w, w.account, "sync_requested") != json!(false) {
        assert!(tokio::time::Instant::now() < deadline, "sync not served");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(w.odoo.count(TEMPLATE), 3);

    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the task stops on shutdown")
        .expect("no panic");
}
