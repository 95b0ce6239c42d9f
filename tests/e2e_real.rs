//! The end-to-end flow against a real Odoo 17 with the addon installed: runs when `ODOO_URL`,
//! `ODOO_DB`, `ODOO_LOGIN` and `ODOO_PASSWORD` or `ODOO_API_KEY` are set (the user in the group
//! "WhatsApp Sidecar (technical)"), and prints `SKIPPED: ...` otherwise.
//!
//! ```sh
//! ODOO_URL=http://127.0.0.1:8069 ODOO_DB=wa17 ODOO_LOGIN=admin ODOO_PASSWORD=admin \
//!   cargo test --test e2e_real -- --nocapture
//! ```
//!
//! It makes its own WhatsApp account (a phone number id no one else uses, not the company's
//! default), template and partners, runs the daemon binary against that Odoo with the sandbox
//! (in the test process) as Meta, and deletes what it made at the end, failed or not.

mod e2e_support;
mod support;

use e2e_support::failover::OdooLink;
use e2e_support::{text, DaemonConfig, RealOdoo};
use futures_util::FutureExt;
use serde_json::{json, Value};
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};
use whatsapp_sidecar::odoo::Domain;
use whatsapp_sidecar::sandbox::{InjectRequest, RecordFilter};

const MESSAGE: &str = "whatsapp.message";

/// One flow at a time: every daemon started on a database acts on all of its accounts, so two
/// flows running together on one Odoo would answer each other's button presses.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_to_end_flow_against_a_real_odoo() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let real = match RealOdoo::setup(80).await {
        Ok(real) => real,
        Err(reason) => {
            println!("SKIPPED: {reason}");
            eprintln!("SKIPPED: {reason}");
            return;
        }
    };
    let outcome = AssertUnwindSafe(flow(&real)).catch_unwind().await;
    real.cleanup().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Polls the real Odoo until `done` holds for the record, or fails naming `what`.
async fn until(real: &RealOdoo, id: i64, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = real.read(MESSAGE, &[id], &[]).await;
        if let Some(row) = rows.into_iter().next() {
            if done(&row) {
                return row;
            }
            if row["state"] == "failed" {
                panic!("message {id} failed while waiting for {what}: {row}");
            }
            if Instant::now() >= deadline {
                panic!("timed out waiting for {what}: message {id} is {row}");
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn flow(real: &RealOdoo) {
    let (meta, _meta_stop) = e2e_support::start_meta(real.meta_config(80)).await;
    let mut config = DaemonConfig::new(&real.target, &meta.base_url());
    config.set("odoo.timeout_secs", 30);
    let (daemon, _logs, _keep) = real.start_daemon(&meta, &config).await;

    // A message queued in Odoo reaches Meta and comes back read.
    // A French mobile, typed without the usual spacing.
    let digits = format!("12{}", &real.stamp[real.stamp.len() - 6..]);
    let phone = format!("+33 6 {digits}");
    let e164 = format!("+336{digits}");
    let partner = real.partner("Alice", &phone, true).await;
    let id = real
        .create(MESSAGE, real.template_message(partner, &phone))
        .await
        .expect("queue a message");
    let m = until(real, id, "the message read", |m| m["state"] == "read").await;
    let sent = meta
        .messages(&RecordFilter {
            callback_data: Some(id.to_string()),
            ..RecordFilter::default()
        })
        .expect("sandbox record");
    assert_eq!(sent.len(), 1, "Meta received it once");
    assert_eq!(m["wamid"], json!(sent[0].wamid));
    assert_eq!(m["to_e164"], json!(e164));
    for stamp in ["sent_at", "delivered_at", "read_at"] {
        assert!(m[stamp].is_string(), "{stamp} set: {m}");
    }
    assert!(text(&m["sent_at"]) <= text(&m["delivered_at"]));
    assert!(text(&m["delivered_at"]) <= text(&m["read_at"]));

    // The customer answers: a conversation and a received message.
    meta.inject(&InjectRequest {
        from: e164.clone(),
        name: Some("Alice".into()),
        text: Some(format!("Bonjour {}", real.stamp)),
        ..Default::default()
    })
    .expect("inject");
    let inbound_domain = Domain::leaf("account_id", "=", real.account).and("direction", "=", "in");
    let deadline = Instant::now() + Duration::from_secs(60);
    let received = loop {
        let rows: Vec<Value> = real
            .client
            .search_read(
                MESSAGE,
                &inbound_domain,
                &[
                    "body",
                    "state",
                    "partner_id",
                    "conversation_id",
                    "message_type",
                ],
                &Default::default(),
            )
            .await
            .expect("search received");
        if let Some(row) = rows.into_iter().next() {
            break row;
        }
        assert!(Instant::now() < deadline, "no received message after 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(received["state"], "received");
    assert_eq!(received["message_type"], "text");
    assert_eq!(received["body"], json!(format!("Bonjour {}", real.stamp)));
    assert_eq!(received["partner_id"][0], json!(partner));
    let conversation = received["conversation_id"][0]
        .as_i64()
        .expect("linked to a conversation");
    let c = real
        .read(
            "whatsapp.conversation",
            &[conversation],
            &["account_id", "partner_id", "wa_id", "window_expires_at"],
        )
        .await;
    assert_eq!(c[0]["account_id"][0], json!(real.account));
    assert_eq!(c[0]["partner_id"][0], json!(partner));
    assert_eq!(c[0]["wa_id"], json!(&e164[1..]));
    assert!(c[0]["window_expires_at"].is_string());

    // A forged webhook is refused and nothing is stored.
    let events = |client: whatsapp_sidecar::odoo::OdooClient| async move {
        client
            .search_count("whatsapp.webhook.event", &Domain::all())
            .await
            .expect("count events")
    };
    let before = events(real.client.clone()).await;
    let body = e2e_support::status_webhook("wamid.FORGED", "read", Some(&id.to_string()));
    let forged = reqwest::Client::new()
        .post(config.url("/webhook"))
        .header(
            whatsapp_sidecar::whatsapp::signature::SIGNATURE_HEADER,
            whatsapp_sidecar::whatsapp::signature::sign(
                &whatsapp_sidecar::secret::Secret::new("not-the-secret"),
                body.as_bytes(),
            ),
        )
        .body(body)
        .send()
        .await
        .expect("POST");
    assert_eq!(forged.status(), 401);
    assert_eq!(events(real.client.clone()).await, before, "nothing stored");

    // A gate failure says what to do.
    let bruno_phone = format!("+33 6 13 {}", &real.stamp[real.stamp.len() - 6..]);
    let bruno = real.partner("Bruno", &bruno_phone, false).await;
    let refused = real
        .create(
            MESSAGE,
            json!({"account_id": real.account, "partner_id": bruno, "direction": "out",
                   "message_type": "text", "body": "Hello", "state": "queued",
                   "to_number": bruno_phone, "res_model": "res.partner", "res_id": bruno}),
        )
        .await
        .expect("queue");
    let m = until(real, refused, "the gate failure", |m| {
        m["state"] == "failed"
    })
    .await;
    let help = text(&m["error_help"]);
    assert!(
        help.starts_with("The customer has not opted in to WhatsApp messages: tick 'WhatsApp opt-in' on the contact Bruno"),
        "{help}"
    );
    assert_eq!(
        meta.messages(&RecordFilter::default())
            .expect("record")
            .len(),
        1,
        "the refused message never reached Meta"
    );

    let status = daemon.terminate(Duration::from_secs(20)).await;
    assert!(status.success(), "clean stop: {status}");
}

/// The order flow on a real Odoo 17: a company of the test's own (so that no other order of the
/// database is messaged and the test's account is that company's default, with "Send new sale
/// orders" on), an opted-in customer who wrote first, a quotation → the three buttons reach the
/// phone → Validate → the order is confirmed (state `sale`), the reply reaches the phone and the
/// indicators are set; Validate again changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_order_flow_against_a_real_odoo() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let real = match RealOdoo::setup(80).await {
        Ok(real) => real,
        Err(reason) => {
            println!("SKIPPED: {reason}");
            eprintln!("SKIPPED: {reason}");
            return;
        }
    };
    let outcome = AssertUnwindSafe(order_flow(&real)).catch_unwind().await;
    real.cleanup().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn read_order(real: &RealOdoo, id: i64) -> Value {
    real.read(
        "sale.order",
        &[id],
        &[
            "state",
            "x_whatsapp_creation_sent",
            "x_whatsapp_validated",
            "x_whatsapp_validation_sent",
        ],
    )
    .await
    .into_iter()
    .next()
    .expect("the order")
}

async fn order_flow(real: &RealOdoo) {
    // The test's company, its default account (the test's) with the switch on.
    let uid = real.client.uid().await.expect("uid");
    let home = real
        .read("whatsapp.account", &[real.account], &["company_id"])
        .await[0]["company_id"][0]
        .as_i64()
        .expect("the account's company");
    let company = real
        .create(
            "res.company",
            json!({"name": format!("whatsapp-sidecar e2e {}", real.stamp)}),
        )
        .await
        .expect("a company of the test");
    real.client
        .write("res.users", &[uid], &json!({"company_ids": [[4, company]]}))
        .await
        .expect("the daemon's user works in the test's company");
    real.client
        .write(
            "whatsapp.account",
            &[real.account],
            &json!({"company_id": company, "is_default": true, "auto_send_order_creation": true}),
        )
        .await
        .expect("the account sends new orders");
    real.client
        .write(
            "whatsapp.template",
            &[real.template],
            &json!({"active": true}),
        )
        .await
        .expect("template");

    let (meta, _meta_stop) = e2e_support::start_meta(real.meta_config(80)).await;
    let mut config = DaemonConfig::new(&real.target, &meta.base_url());
    config.set("odoo.timeout_secs", 30);
    config.set("outbox.pair_interval_secs", 0.2);
    let (daemon, logs, _keep) = real.start_daemon(&meta, &config).await;

    let digits = format!("14{}", &real.stamp[real.stamp.len() - 6..]);
    let phone = format!("+33 6 {digits}");
    let e164 = format!("+336{digits}");
    let customer = real.partner("Awa", &phone, true).await;
    real.client
        .write(
            "res.partner",
            &[customer],
            &json!({"company_id": company, "whatsapp_number_e164": e164}),
        )
        .await
        .expect("customer");
    // The customer writes first: the new-order message may be interactive.
    meta.inject(&InjectRequest {
        from: e164.clone(),
        text: Some("Bonjour".into()),
        ..Default::default()
    })
    .expect("inject");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let open = real
            .client
            .search_count(
                "whatsapp.conversation",
                &Domain::leaf("account_id", "=", real.account).and(
                    "window_expires_at",
                    "!=",
                    false,
                ),
            )
            .await
            .expect("conversations");
        if open > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the customer's window never opened in Odoo"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let product = real
        .client
        .search(
            "product.product",
            &Domain::leaf("sale_ok", "=", true).and("type", "=", "service"),
            &whatsapp_sidecar::odoo::SearchOptions::new().limit(1),
        )
        .await
        .expect("a product")
        .first()
        .copied()
        .expect("a service product in the database");
    let order = real
        .create(
            "sale.order",
            json!({"partner_id": customer, "company_id": company,
                   "order_line": [[0, 0, {"product_id": product, "product_uom_qty": 2}]]}),
        )
        .await
        .expect("a quotation");

    // The three buttons reach the phone.
    let prefix = format!(":{order}:");
    let deadline = Instant::now() + Duration::from_secs(60);
    let buttons: Vec<String> = loop {
        let ids: Vec<String> = meta
            .messages(&RecordFilter {
                to: Some(e164.clone()),
                ..RecordFilter::default()
            })
            .expect("record")
            .iter()
            .filter_map(|m| serde_json::from_slice::<Value>(&m.body).ok())
            .filter_map(|b| b["interactive"]["action"]["buttons"].as_array().cloned())
            .flatten()
            .filter_map(|b| b["reply"]["id"].as_str().map(str::to_owned))
            .filter(|id| id.contains(&prefix))
            .collect();
        if ids.len() == 3 {
            break ids;
        }
        assert!(
            Instant::now() < deadline,
            "the buttons never reached the phone: {}",
            logs.tail(40)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(buttons[0].starts_with(&format!("order_validate:{order}:")));

    // Validate → confirmed in Odoo.
    let pressed = Instant::now();
    let press = |id: &str| {
        meta.inject(&InjectRequest {
            from: e164.clone(),
            button_reply: Some(whatsapp_sidecar::sandbox::ReplyRef {
                id: id.to_owned(),
                title: Some("Validate".into()),
            }),
            ..Default::default()
        })
        .expect("inject a press");
    };
    press(&buttons[0]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if read_order(real, order).await["state"] == "sale" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the order was not confirmed: {}",
            logs.tail(40)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "press → confirmed in the real Odoo: {:?}",
        pressed.elapsed()
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let o = read_order(real, order).await;
        if o["x_whatsapp_validation_sent"] == json!(true) {
            assert_eq!(o["x_whatsapp_validated"], json!(true));
            assert_eq!(o["x_whatsapp_creation_sent"], json!(true));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the confirmation reply was not sent: {o}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Again: nothing changes, the customer hears it is already confirmed.
    press(&buttons[0]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let texts: Vec<String> = meta
            .messages(&RecordFilter {
                to: Some(e164.clone()),
                ..RecordFilter::default()
            })
            .expect("record")
            .iter()
            .filter_map(|m| serde_json::from_slice::<Value>(&m.body).ok())
            .filter_map(|b| b["text"]["body"].as_str().map(str::to_owned))
            .collect();
        if texts.iter().any(|t| t.contains("already confirmed")) {
            assert!(
                texts.iter().any(|t| t.contains("is confirmed")),
                "{texts:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no 'already confirmed' reply: {texts:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(read_order(real, order).await["state"], "sale");
    let notes: Vec<Value> = real
        .client
        .search_read(
            "mail.message",
            &Domain::leaf("model", "=", "sale.order").and("res_id", "=", order),
            &["body"],
            &Default::default(),
        )
        .await
        .expect("chatter");
    assert!(
        notes
            .iter()
            .any(|n| text(&n["body"]).contains("Confirmed by the customer on WhatsApp, +336")),
        "{notes:?}"
    );

    let status = daemon.terminate(Duration::from_secs(20)).await;
    assert!(status.success(), "clean stop: {status}");
    // A confirmed order cannot be deleted: cancelled first, so the cleanup can.
    let _: Result<Value, _> = real
        .client
        .with_context(
            whatsapp_sidecar::odoo::Context::new().set("disable_cancel_warning", json!(true)),
        )
        .call("sale.order", "action_cancel", json!([[order]]), json!({}))
        .await;
    real.client
        .write(
            "whatsapp.account",
            &[real.account],
            &json!({"is_default": false, "auto_send_order_creation": false, "company_id": home}),
        )
        .await
        .expect("account back");
}

/// The invoice flow on a real Odoo: the test's account (in the user's company, not its default)
/// sends posted invoices and payments (no debounce); an opted-in customer who wrote first;
/// an invoice posted with `action_post` → its PDF (`%PDF`, the number as file name) reaches the
/// phone; a partial payment registered as an accountant does (`account.payment.register`) →
/// the payment message with the amounts; both messages end `read` in Odoo, the indicators set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_invoice_flow_against_a_real_odoo() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let real = match RealOdoo::setup(80).await {
        Ok(real) => real,
        Err(reason) => {
            println!("SKIPPED: {reason}");
            eprintln!("SKIPPED: {reason}");
            return;
        }
    };
    let invoice = std::sync::Mutex::new(None);
    let paused = std::sync::Mutex::new(Vec::new());
    let outcome = AssertUnwindSafe(invoice_flow(&real, &invoice, &paused))
        .catch_unwind()
        .await;
    // The company's other accounts that sent posted invoices do again.
    let paused = paused.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if !paused.is_empty() {
        if let Err(e) = real
            .client
            .write(
                "whatsapp.account",
                &paused,
                &json!({"auto_send_invoice_posted": true}),
            )
            .await
        {
            eprintln!("cleanup: cannot switch posted invoices back on for {paused:?}: {e}");
        }
    }
    // Posted entries cannot be deleted: the test's invoice is reset and cancelled.
    let made = *invoice.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(id) = made {
        for method in ["button_draft", "button_cancel"] {
            if let Err(e) = real
                .client
                .call::<Value>("account.move", method, json!([[id]]), json!({}))
                .await
            {
                eprintln!("cleanup: account.move.{method}({id}): {e}");
            }
        }
    }
    real.cleanup().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn invoice_flow(
    real: &RealOdoo,
    made: &std::sync::Mutex<Option<i64>>,
    paused: &std::sync::Mutex<Vec<i64>>,
) {
    let company = real
        .read("whatsapp.account", &[real.account], &["company_id"])
        .await[0]["company_id"][0]
        .as_i64()
        .expect("the account's company");
    // The company's other accounts that send posted invoices (the demo data's default does)
    // stop for the test, so that the test's account is the one that sends; switched back on at
    // the end.
    let others = real
        .client
        .search(
            "whatsapp.account",
            &Domain::leaf("company_id", "=", company)
                .and("id", "!=", real.account)
                .and("auto_send_invoice_posted", "=", true),
            &whatsapp_sidecar::odoo::SearchOptions::new(),
        )
        .await
        .expect("accounts");
    if !others.is_empty() {
        real.client
            .write(
                "whatsapp.account",
                &others,
                &json!({"auto_send_invoice_posted": false}),
            )
            .await
            .expect("the other accounts pause posted invoices");
        *paused.lock().unwrap_or_else(|p| p.into_inner()) = others;
    }
    real.client
        .write(
            "whatsapp.account",
            &[real.account],
            &json!({"auto_send_invoice_posted": true, "auto_send_residual_change": true,
                    "residual_debounce_minutes": 0.0}),
        )
        .await
        .expect("the account sends invoices and payments");

    let (meta, _meta_stop) = e2e_support::start_meta(real.meta_config(80)).await;
    let mut config = DaemonConfig::new(&real.target, &meta.base_url());
    config.set("odoo.timeout_secs", 60);
    config.set("outbox.pair_interval_secs", 0.2);
    config.set("automations.poll_interval_secs", 0.5);
    let (_daemon, logs, _keep) = real.start_daemon(&meta, &config).await;

    let digits = format!("15{}", &real.stamp[real.stamp.len() - 6..]);
    let e164 = format!("+336{digits}");
    let customer = real.partner("Awa", &format!("+33 6 {digits}"), true).await;
    real.client
        .write(
            "res.partner",
            &[customer],
            &json!({"whatsapp_number_e164": e164}),
        )
        .await
        .expect("customer");
    meta.inject(&InjectRequest {
        from: e164.clone(),
        text: Some("Bonjour".into()),
        ..Default::default()
    })
    .expect("inject");
    let deadline = Instant::now() + Duration::from_secs(60);
    while real
        .client
        .search_count(
            "whatsapp.conversation",
            &Domain::leaf("account_id", "=", real.account).and("window_expires_at", "!=", false),
        )
        .await
        .expect("conversations")
        == 0
    {
        assert!(
            Instant::now() < deadline,
            "the customer's window never opened in Odoo"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let invoice: i64 = real
        .client
        .create(
            "account.move",
            &json!({"move_type": "out_invoice", "partner_id": customer, "company_id": company,
                    "invoice_line_ids": [[0, 0, {"name": "Consulting", "quantity": 2,
                                                 "price_unit": 500.0}]]}),
        )
        .await
        .expect("a draft invoice");
    *made.lock().unwrap_or_else(|p| p.into_inner()) = Some(invoice);
    let _: Value = real
        .client
        .call("account.move", "action_post", json!([[invoice]]), json!({}))
        .await
        .expect("posted");
    let posted = real
        .read(
            "account.move",
            &[invoice],
            &["name", "amount_total", "x_whatsapp_posted_at"],
        )
        .await
        .into_iter()
        .next()
        .expect("the invoice");
    assert!(
        posted["x_whatsapp_posted_at"].is_string(),
        "the addon stamps the posting"
    );
    let name = text(&posted["name"]);
    let total = posted["amount_total"].as_f64().unwrap_or(0.0);

    let received = || -> Vec<Value> {
        meta.messages(&RecordFilter {
            to: Some(e164.clone()),
            ..RecordFilter::default()
        })
        .expect("record")
        .iter()
        .filter_map(|m| serde_json::from_slice::<Value>(&m.body).ok())
        .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let doc = loop {
        if let Some(d) = received().into_iter().find(|b| b["type"] == "document") {
            break d;
        }
        assert!(
            Instant::now() < deadline,
            "the invoice's PDF never reached the phone: {}",
            logs.tail(40)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(
        text(&doc["document"]["filename"]),
        format!("{}.pdf", name.replace('/', "_"))
    );
    let http = reqwest::Client::new();
    let info: Value = http
        .get(format!(
            "{}/v26.0/{}",
            meta.base_url(),
            text(&doc["document"]["id"])
        ))
        .bearer_auth("e2e-token")
        .send()
        .await
        .expect("media info")
        .json()
        .await
        .expect("media info JSON");
    assert_eq!(info["mime_type"], "application/pdf");
    let pdf = http
        .get(text(&info["url"]))
        .bearer_auth("e2e-token")
        .send()
        .await
        .expect("media")
        .bytes()
        .await
        .expect("media bytes");
    assert!(pdf.starts_with(b"%PDF"), "Odoo's PDF reached the sandbox");

    // A partial payment, registered as an accountant does.
    let context = json!({"active_model": "account.move", "active_ids": [invoice]});
    let wizard: i64 = real
        .client
        .call(
            "account.payment.register",
            "create",
            json!([{"amount": 300.0}]),
            json!({"context": context}),
        )
        .await
        .expect("payment wizard");
    let _: Value = real
        .client
        .call(
            "account.payment.register",
            "action_create_payments",
            json!([[wizard]]),
            json!({"context": context}),
        )
        .await
        .expect("payment registered");
    let deadline = Instant::now() + Duration::from_secs(90);
    let told = loop {
        if let Some(t) = received()
            .into_iter()
            .filter(|b| b["type"] == "text")
            .map(|b| text(&b["text"]["body"]))
            .find(|t| t.contains("we received your payment"))
        {
            break t;
        }
        assert!(
            Instant::now() < deadline,
            "the payment message never reached the phone: {}",
            logs.tail(40)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(
        told.contains("300.00") && told.contains(&format!("{:.2}", total - 300.0)),
        "{told}"
    );

    // Both read in Odoo, the indicators set.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let states: Vec<String> = real
            .client
            .search_read::<Value>(
                MESSAGE,
                &Domain::leaf("res_model", "=", "account.move").and("res_id", "=", invoice),
                &["state", "trigger"],
                &whatsapp_sidecar::odoo::SearchOptions::new(),
            )
            .await
            .expect("messages")
            .iter()
            .map(|m| format!("{}:{}", text(&m["trigger"]), text(&m["state"])))
            .collect();
        let mut sorted = states.clone();
        sorted.sort();
        if sorted == ["invoice_posted:read", "residual_change:read"] {
            break;
        }
        assert!(Instant::now() < deadline, "messages: {states:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let flags = real
        .read(
            "account.move",
            &[invoice],
            &[
                "x_whatsapp_invoice_sent",
                "x_whatsapp_residual_sent",
                "x_whatsapp_last_residual_notified",
            ],
        )
        .await
        .into_iter()
        .next()
        .expect("the invoice");
    assert_eq!(flags["x_whatsapp_invoice_sent"], json!(true));
    assert_eq!(flags["x_whatsapp_residual_sent"], json!(true));
    assert_eq!(
        flags["x_whatsapp_last_residual_notified"],
        json!(total - 300.0)
    );
}

/// The campaign flow on a real Odoo 17: 100 opted-in contacts of the test (`ref` = its stamp,
/// created in one call), a campaign of the test's account with one template step whose
/// audience filter selects exactly them, "Generate queue" and "Start" pressed as the buttons
/// do (`action_generate_queue`, `action_start` over `execute_kw`), the sandbox reading about
/// half of the messages. The queue has the 100; each number receives its message once; the
/// campaign ends `done`, its messages went with the campaign priority, and its KPI fields are
/// the recipients' states, which are the sandbox's (read where the sandbox read).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_campaign_flow_against_a_real_odoo() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let real = match RealOdoo::setup(80).await {
        Ok(real) => real,
        Err(reason) => {
            println!("SKIPPED: {reason}");
            eprintln!("SKIPPED: {reason}");
            return;
        }
    };
    let outcome = AssertUnwindSafe(campaign_flow(&real)).catch_unwind().await;
    real.cleanup().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

const CAMPAIGN: &str = "whatsapp.campaign";
const RECIPIENT: &str = "whatsapp.campaign.recipient";

async fn read_campaign(real: &RealOdoo, id: i64) -> Value {
    real.read(
        CAMPAIGN,
        &[id],
        &[
            "state",
            "queue_requested",
            "queue_generated_at",
            "queue_message",
            "paused_reason",
            "finished_at",
            "kpi_recipients",
            "kpi_sent",
            "kpi_delivered",
            "kpi_read",
            "kpi_replied",
            "kpi_failed",
            "kpi_opted_out",
        ],
    )
    .await
    .into_iter()
    .next()
    .expect("the campaign")
}

async fn campaign_flow(real: &RealOdoo) {
    const PEOPLE: usize = 100;
    let tail = &real.stamp[real.stamp.len() - 4..];
    let numbers: Vec<String> = (0..PEOPLE).map(|i| format!("+3362{tail}{i:03}")).collect();
    let mut people = Vec::new();
    for (i, n) in numbers.iter().enumerate() {
        let mut values = json!({"name": format!("Campaign customer {i} (whatsapp-sidecar e2e {})", real.stamp),
                                "mobile": n, "whatsapp_opt_in": true, "ref": real.stamp});
        if let Some(fr) = real.france {
            values["country_id"] = json!(fr);
        }
        people.push(values);
    }
    let partners = real
        .create_many("res.partner", &people)
        .await
        .expect("the audience, in one create");
    assert_eq!(partners.len(), PEOPLE);
    let campaign = real
        .create(
            CAMPAIGN,
            json!({"name": format!("whatsapp-sidecar e2e {}", real.stamp),
                   "account_id": real.account,
                   "partner_domain": format!("[(\"ref\", \"=\", \"{}\")]", real.stamp),
                   "send_window_start": 0.0, "send_window_end": 24.0, "send_on_weekends": true,
                   "timezone_rule": "recipient", "throttle_per_minute": 6000, "daily_cap": 0,
                   "step_ids": [[0, 0, {"name": "Hello", "message_type": "template",
                                        "template_id": real.template}]]}),
        )
        .await
        .expect("a campaign");

    let mut meta_config = real.meta_config(80);
    meta_config.webhooks.read_ratio = 0.5;
    let (meta, _meta_stop) = e2e_support::start_meta(meta_config).await;
    let mut config = DaemonConfig::new(&real.target, &meta.base_url());
    config.set("odoo.timeout_secs", 30);
    config.set("campaigns.poll_interval_secs", 0.5);
    config.set("campaigns.kpi_interval_secs", 1.0);
    let (daemon, logs, _keep) = real.start_daemon(&meta, &config).await;

    // "Generate queue", as the button does.
    let _: Value = real
        .client
        .call(
            CAMPAIGN,
            "action_generate_queue",
            json!([[campaign]]),
            json!({}),
        )
        .await
        .expect("Generate queue");
    let deadline = Instant::now() + Duration::from_secs(60);
    let generated = loop {
        let c = read_campaign(real, campaign).await;
        if c["queue_generated_at"].is_string() {
            break c;
        }
        assert!(
            Instant::now() < deadline,
            "the queue was not generated: {c}\n{}",
            logs.tail(40)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(generated["queue_requested"], json!(false));
    assert!(
        text(&generated["queue_message"]).starts_with("Queue generated: 100 new recipients"),
        "{generated}"
    );
    let queued: Vec<Value> = real
        .client
        .search_read(
            RECIPIENT,
            &Domain::leaf("campaign_id", "=", campaign),
            &["partner_id", "state", "to_e164"],
            &Default::default(),
        )
        .await
        .expect("recipients");
    assert_eq!(queued.len(), PEOPLE, "one recipient per contact");
    assert!(queued.iter().all(|r| r["state"] == "pending"), "{queued:?}");

    // "Start", as the button does.
    let started = Instant::now();
    let _: Value = real
        .client
        .call(CAMPAIGN, "action_start", json!([[campaign]]), json!({}))
        .await
        .expect("Start");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let c = read_campaign(real, campaign).await;
        if c["state"] == "done" {
            break;
        }
        assert!(
            c["state"] == "running",
            "the campaign left running for {}: {c}",
            c["state"]
        );
        assert!(
            Instant::now() < deadline,
            "the campaign is not done after 120 s: {c}\n{}",
            logs.tail(40)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "campaign of {PEOPLE}: Start → done in the real Odoo: {:?}",
        started.elapsed()
    );

    // Each number received the template once.
    let sent = meta
        .messages(&RecordFilter {
            limit: Some(1000),
            ..RecordFilter::default()
        })
        .expect("record");
    for n in &numbers {
        let got: Vec<_> = sent
            .iter()
            .filter(|m| format!("+{}", m.wa_id) == *n)
            .collect();
        assert_eq!(got.len(), 1, "{n} received {} messages", got.len());
        assert_eq!(got[0].kind, "template");
    }
    let messages: Vec<Value> = real
        .client
        .search_read(
            MESSAGE,
            &Domain::leaf("campaign_id", "=", campaign),
            &["priority", "state"],
            &Default::default(),
        )
        .await
        .expect("messages");
    assert_eq!(messages.len(), PEOPLE);
    assert!(
        messages.iter().all(|m| m["priority"] == json!(0)),
        "campaign messages go with the low priority"
    );

    // The KPIs are the recipients' states, which follow the sandbox's statuses (late read
    // receipts included).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let by_sandbox = meta
            .messages(&RecordFilter {
                limit: Some(1000),
                ..RecordFilter::default()
            })
            .expect("record");
        let sandbox_read = by_sandbox
            .iter()
            .filter(|m| m.status.as_str() == "read")
            .count() as i64;
        let sandbox_delivered = by_sandbox
            .iter()
            .filter(|m| matches!(m.status.as_str(), "delivered" | "read"))
            .count() as i64;
        let states: Vec<String> = real
            .client
            .search_read::<Value>(
                RECIPIENT,
                &Domain::leaf("campaign_id", "=", campaign),
                &["state"],
                &Default::default(),
            )
            .await
            .expect("recipients")
            .iter()
            .map(|r| text(&r["state"]))
            .collect();
        let count = |wanted: &[&str]| {
            states
                .iter()
                .filter(|s| wanted.contains(&s.as_str()))
                .count() as i64
        };
        let expected = json!({
            "kpi_recipients": states.len(),
            "kpi_sent": count(&["sent", "delivered", "read", "replied"]),
            "kpi_delivered": count(&["delivered", "read", "replied"]),
            "kpi_read": count(&["read", "replied"]),
            "kpi_replied": count(&["replied"]),
            "kpi_failed": count(&["failed"]),
            "kpi_opted_out": count(&["opted_out"]),
        });
        let c = read_campaign(real, campaign).await;
        let kpis: serde_json::Map<String, Value> = expected
            .as_object()
            .expect("an object")
            .keys()
            .map(|k| (k.clone(), c[k].clone()))
            .collect();
        let settled = Value::Object(kpis.clone()) == expected
            && expected["kpi_read"] == json!(sandbox_read)
            && expected["kpi_delivered"] == json!(sandbox_delivered)
            && sandbox_delivered == PEOPLE as i64;
        if settled {
            assert_eq!(expected["kpi_recipients"], json!(PEOPLE));
            assert_eq!(expected["kpi_sent"], json!(PEOPLE));
            assert_eq!(expected["kpi_failed"], json!(0));
            assert!(
                sandbox_read > 0 && sandbox_read < PEOPLE as i64,
                "the sandbox reads about half: {sandbox_read}"
            );
            println!("campaign KPIs in the real Odoo: {}", Value::Object(kpis));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the KPIs {} are not the recipients' {expected} (sandbox: {sandbox_delivered} delivered, {sandbox_read} read)\n{}",
            Value::Object(kpis),
            logs.tail(40)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let c = read_campaign(real, campaign).await;
    assert!(c["finished_at"].is_string(), "{c}");

    let status = daemon.terminate(Duration::from_secs(20)).await;
    assert!(status.success(), "clean stop: {status}");
}

/// Two daemons on the real Odoo: the leader `kill -9`ed, then the next one frozen (SIGSTOP) and
/// woken once the other has taken over and reconciled its claims; every message is sent exactly
/// once. The lease's row lock and the fenced claims run on PostgreSQL here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_on_a_real_odoo() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let real = match RealOdoo::setup(100).await {
        Ok(real) => real,
        Err(reason) => {
            println!("SKIPPED: {reason}");
            eprintln!("SKIPPED: {reason}");
            return;
        }
    };
    let outcome = AssertUnwindSafe(failover(&real)).catch_unwind().await;
    real.cleanup().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn failover(real: &RealOdoo) {
    const MESSAGES: usize = 900;
    let started = Instant::now();
    let partners: Vec<Value> = (0..MESSAGES)
        .map(|i| {
            json!({"name": format!("F{i} (whatsapp-sidecar e2e {})", real.stamp),
                   "mobile": format!("+3362{i:07}"), "whatsapp_opt_in": true})
        })
        .collect();
    let partners = real
        .create_many("res.partner", &partners)
        .await
        .expect("partners");
    let messages: Vec<Value> = partners
        .iter()
        .enumerate()
        .map(|(i, p)| real.template_message(*p, &format!("+3362{i:07}")))
        .collect();
    let ids = real
        .create_many(MESSAGE, &messages)
        .await
        .expect("messages");

    let mut meta_config = real.meta_config(100);
    meta_config.record_limit = MESSAGES + 100;
    // A status POST stuck in the frozen daemon is given up after 2 s and sent again to the
    // webhook URL of the moment (the other daemon), as Meta's retry through a load balancer.
    meta_config.webhooks.timeout_ms = 2_000;
    meta_config.webhooks.retry_initial_ms = 200;
    let (meta, _meta_stop) = e2e_support::start_meta(meta_config).await;
    let accepted = || meta.stats()["accepted"].as_u64().unwrap_or(0);
    let mut base = DaemonConfig::new(&real.target, &meta.base_url());
    base.set("odoo.timeout_secs", 30);
    base.set("lease.ttl_secs", 2.0);
    base.set("lease.renew_secs", 0.5);
    base.set("outbox.reconcile_delay_secs", 5.0);
    let peer = |name: &str| {
        let mut c = base.clone();
        c.listen = ([127, 0, 0, 1], e2e_support::free_port()).into();
        c.set("server.listen", c.listen.to_string());
        c.set("lease.name", name);
        c
    };
    // Each daemon reaches Odoo through its own link, to cut one off from Odoo.
    let links = [
        OdooLink::start(&real.target.url).await,
        OdooLink::start(&real.target.url).await,
    ];
    let mut configs = [peer("real-a"), peer("real-b")];
    for (config, link) in configs.iter_mut().zip(&links) {
        config.set("odoo.url", link.url.as_str());
    }
    let http = reqwest::Client::new();
    let leads = |i: usize| {
        let url = configs[i].url("/readyz");
        let http = http.clone();
        async move {
            match http.get(url).timeout(Duration::from_secs(5)).send().await {
                Ok(r) => r.text().await.unwrap_or_default().contains("(leader:"),
                Err(_) => false,
            }
        }
    };
    let webhooks_to = |i: usize| {
        meta.set_callback(
            Some(configs[i].url("/webhook").parse().expect("callback URL")),
            Some(whatsapp_sidecar::secret::Secret::new(
                real.app_secret.as_str(),
            )),
        );
    };
    let until_leads = |i: usize, what: String| async move {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !leads(i).await {
            assert!(Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let signal = |pid: u32, sig: &str| {
        let ok = std::process::Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {pid}");
    };

    let (a, logs_a, _keep_a) = real.start_daemon(&meta, &configs[0]).await;
    until_leads(0, "real-a never took the lease".into()).await;
    let (b, logs_b, _keep_b) = real.start_daemon(&meta, &configs[1]).await;
    webhooks_to(0);
    assert!(!leads(1).await, "two leaders");

    // Failover 1: the leader killed.
    until_true(|| accepted() >= (MESSAGES / 4) as u64).await;
    webhooks_to(1);
    let t = Instant::now();
    a.kill9().await;
    until_leads(1, "real-b did not take over within 30 s".into()).await;
    let first = t.elapsed();
    let (a, logs_a2, _keep_a2) = real.start_daemon(&meta, &configs[0]).await;
    webhooks_to(1);

    // Failover 2: the leader frozen, woken after the other reconciled what it had claimed.
    until_true(|| accepted() >= (2 * MESSAGES / 4) as u64).await;
    webhooks_to(0);
    let t = Instant::now();
    signal(b.pid(), "-STOP");
    until_leads(0, "real-a did not take over within 30 s".into()).await;
    let second = t.elapsed();
    let reconciled = || {
        logs_a2
            .matching(&["reconciled messages left in 'sending'"])
            .len()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while reconciled() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    signal(b.pid(), "-CONT");

    // Failover 3: the leader (real-a) cut off from Odoo, healed after the other reconciled.
    until_true(|| accepted() >= (3 * MESSAGES / 4) as u64).await;
    webhooks_to(1);
    let reconciled_b = || {
        logs_b
            .matching(&["reconciled messages left in 'sending'"])
            .len()
    };
    let reconciled_before = reconciled_b();
    let t = Instant::now();
    links[0].cut();
    until_leads(
        1,
        "real-b did not take over within 30 s of real-a's cut".into(),
    )
    .await;
    let third = t.elapsed();
    let deadline = Instant::now() + Duration::from_secs(30);
    while reconciled_b() == reconciled_before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    links[0].heal();

    // Everything ends sent (or further) in Odoo.
    let client = real.client.clone();
    let done = Domain::leaf("id", "in", json!(ids)).and(
        "state",
        "in",
        json!(["sent", "delivered", "read"]),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let n = client.search_count(MESSAGE, &done).await.unwrap_or(0);
        if n == ids.len() as u64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{n} of {} messages sent after 120 s",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for d in [a, b] {
        let status = d.terminate(Duration::from_secs(15)).await;
        assert!(status.success(), "clean stop: {status}");
    }

    // Meta accepted each exactly once, and Odoo holds Meta's wamid.
    let record = meta
        .messages(&RecordFilter {
            limit: Some(MESSAGES + 100),
            ..Default::default()
        })
        .expect("sandbox record");
    let wamids = e2e_support::accepted_once(&record, &ids);
    for row in real.read(MESSAGE, &ids, &["wamid"]).await {
        let id = row["id"].as_i64().unwrap_or_default();
        assert_eq!(row["wamid"], json!(wamids[&id]), "message {id}");
    }
    let lost = logs_b.matching(&["lost the sending lease"]).len()
        + logs_a.matching(&["lost the sending lease"]).len();
    eprintln!(
        "real-Odoo failover: {MESSAGES} messages, a kill -9 (taken over in {first:.2?}), a \
         SIGSTOP (taken over in {second:.2?}, woken after the new leader reconciled) and a cut \
         from Odoo (taken over in {third:.2?}, healed after the new leader reconciled), each \
         sent exactly once, {lost} 'lost the lease' lines, done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Waits (at most two minutes) until `done` holds.
async fn until_true(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "not reached within 120 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
