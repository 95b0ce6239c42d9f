//! End to end: the `whatsapp-sidecar` binary between the Odoo stand-in and the sandbox playing
//! Meta (see `tests/e2e_support`). What a user sees: a message queued in Odoo reaches WhatsApp
//! and comes back read; a customer's message lands in Odoo; forged webhooks are refused; a
//! message that must not go out says why.

mod e2e_support;
mod support;

use e2e_support::{eventually, text, World, APP_SECRET, CONVERSATION, EVENT, MESSAGE};
use serde_json::json;
use std::time::Duration;
use whatsapp_sidecar::sandbox::InjectRequest;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_inbound_text_creates_a_conversation_and_a_received_message() {
    let mut w = World::new(80).await;
    let partner = w.partner("Camille", "+33 6 12 34 56 78", true);
    w.start_daemon().await;

    w.meta
        .inject(&InjectRequest {
            from: "+33612345678".into(),
            name: Some("Camille".into()),
            text: Some("Bonjour, ma commande ?".into()),
            ..Default::default()
        })
        .expect("inject");
    eventually("the received message", Duration::from_secs(15), || {
        !w.odoo
            .search(MESSAGE, json!([["direction", "=", "in"]]))
            .is_empty()
    })
    .await;
    let ids = w.odoo.search(MESSAGE, json!([["direction", "=", "in"]]));
    assert_eq!(ids.len(), 1, "one received message");
    let m = w.odoo.record(MESSAGE, ids[0]).expect("message");
    assert_eq!(m["state"], "received");
    assert_eq!(m["message_type"], "text");
    assert_eq!(m["body"], "Bonjour, ma commande ?");
    assert_eq!(m["partner_id"][0], json!(partner));
    assert_eq!(m["account_id"][0], json!(w.account));
    assert!(text(&m["wamid"]).starts_with("wamid."), "{:?}", m["wamid"]);
    assert!(m["received_at"].is_string());

    let conversations = w.odoo.search(CONVERSATION, json!([]));
    assert_eq!(conversations.len(), 1, "one conversation, created");
    assert_eq!(m["conversation_id"][0], json!(conversations[0]));
    let c = w.odoo.record(CONVERSATION, conversations[0]).unwrap();
    assert_eq!(c["wa_id"], "33612345678");
    assert_eq!(c["partner_id"][0], json!(partner));
    assert_eq!(c["profile_name"], "Camille");
    assert!(c["last_inbound_at"].is_string());
    assert!(c["window_expires_at"].is_string());

    // The stored event is marked processed.
    let events = w.odoo.search(EVENT, json!([]));
    assert_eq!(events.len(), 1);
    eventually("the event is marked processed", Duration::from_secs(5), || {
        w.odoo.field(EVENT, events[0], "processed") == json!(true)
    })
    .await;

    let status = w.stop_daemon().await;
    assert!(status.success(), "the daemon stops cleanly: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_signature_is_refused_and_nothing_is_stored() {
    let mut w = World::new(80).await;
    w.start_daemon().await;
    let body = e2e_support::status_webhook("wamid.FORGED", "read", Some("1"));

    assert_eq!(w.post_webhook(&body, Some("not-the-app-secret")).await, 401);
    assert_eq!(w.post_webhook(&body, None).await, 401);
    // Signed for other bytes than those sent.
    let signature = whatsapp_sidecar::whatsapp::signature::sign(
        &whatsapp_sidecar::secret::Secret::new(APP_SECRET),
        body.as_bytes(),
    );
    let tampered = w
        .http
        .post(w.config.url("/webhook"))
        .header(
            whatsapp_sidecar::whatsapp::signature::SIGNATURE_HEADER,
            signature,
        )
        .body(body.replace("read", "delivered"))
        .send()
        .await
        .expect("POST");
    assert_eq!(tampered.status(), 401);

    assert_eq!(w.odoo.count(EVENT), 0, "nothing stored");
    assert_eq!(w.odoo.calls(EVENT, "create"), 0, "no create was even tried");
    let warnings = w.logs.matching(&["refused (401)"]);
    assert!(
        !warnings.is_empty() && warnings.len() <= 2,
        "the refusal is logged, rate-limited: {warnings:?}"
    );

    // The same body, correctly signed, is stored (the refusals were about the signature).
    assert_eq!(w.post_webhook(&body, Some(APP_SECRET)).await, 200);
    assert_eq!(w.odoo.count(EVENT), 1);
}
