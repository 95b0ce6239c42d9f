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

use e2e_support::{text, Daemon, DaemonConfig, Logs, LogsOnPanic, RealOdoo};
use futures_util::FutureExt;
use serde_json::{json, Value};
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};
use whatsapp_sidecar::odoo::Domain;
use whatsapp_sidecar::sandbox::{InjectRequest, RecordFilter};

const MESSAGE: &str = "whatsapp.message";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_to_end_flow_against_a_real_odoo() {
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
    meta.set_callback(
        Some(config.url("/webhook").parse().expect("callback URL")),
        Some(whatsapp_sidecar::secret::Secret::new(
            real.app_secret.as_str(),
        )),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = Logs::default();
    let _print = LogsOnPanic(logs.clone());
    let mut daemon = Daemon::spawn(&config.write(dir.path()), config.listen, &logs, 1);
    daemon
        .ready(&real.verify_token, Duration::from_secs(60))
        .await;

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
