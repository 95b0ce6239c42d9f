//! Black-box tests of the sandbox's webhooks, with a small axum receiver on 127.0.0.1:0: status
//! webhooks and their signature, asynchronous failures, chaos (failures, duplicates,
//! reordering), retries, batching, inbound injection shapes, template updates, verification.

mod sandbox_support;

use axum::http::StatusCode;
use sandbox_support::*;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use whatsapp_sidecar::sandbox::{InjectRequest, SandboxConfig};

const USER: &str = "+2250700000001";

async fn with_receiver(mut config: SandboxConfig) -> (Running, Receiver) {
    let receiver = receiver().await;
    config.webhooks.callback_url = Some(receiver.url());
    (start(config).await, receiver)
}

fn statuses_of(received: &[Received], wamid: &str) -> Vec<Value> {
    received
        .iter()
        .flat_map(|r| r.statuses())
        .filter(|s| s["id"] == wamid)
        .collect()
}

fn kinds(statuses: &[Value]) -> Vec<String> {
    statuses
        .iter()
        .map(|s| s["status"].as_str().unwrap().to_string())
        .collect()
}

async fn send_ok(sandbox: &Running, body: Value) -> String {
    let (status, answer) = sandbox.send(body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["messages"][0]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn sent_delivered_read_arrive_signed_and_in_metas_shape() {
    let (sandbox, receiver) = with_receiver(fast_config()).await;
    let mut message = hello(USER);
    message["biz_opaque_callback_data"] = json!("odoo:whatsapp.message:7");
    let wamid = send_ok(&sandbox, message).await;

    let received = receiver
        .wait_until("three statuses", |r| statuses_of(r, &wamid).len() >= 3)
        .await;
    for post in &received {
        assert!(
            post.signature_valid(SECRET),
            "bad signature on {}",
            post.json
        );
        assert!(!post.signature_valid("another-secret"));
        assert_eq!(post.json["object"], "whatsapp_business_account");
        assert_eq!(post.json["entry"][0]["id"], "sandbox-waba");
        let change = &post.json["entry"][0]["changes"][0];
        assert_eq!(change["field"], "messages");
        assert_eq!(change["value"]["messaging_product"], "whatsapp");
        assert_eq!(change["value"]["metadata"]["phone_number_id"], PN);
        assert_eq!(
            change["value"]["metadata"]["display_phone_number"],
            "15550000001"
        );
    }
    let statuses = statuses_of(&received, &wamid);
    assert_eq!(kinds(&statuses), vec!["sent", "delivered", "read"]);
    for status in &statuses {
        assert_eq!(status["recipient_id"], "2250700000001");
        assert!(status["recipient_user_id"]
            .as_str()
            .unwrap()
            .starts_with("CI."));
        assert_eq!(
            status["biz_opaque_callback_data"],
            "odoo:whatsapp.message:7"
        );
        assert!(status["timestamp"].as_str().unwrap().parse::<u64>().is_ok());
        assert!(
            status.get("conversation").is_none(),
            "left out from v24.0 on"
        );
        assert!(status.get("errors").is_none());
    }
    assert_eq!(statuses[0]["pricing"]["pricing_model"], "PMP");
    assert_eq!(statuses[0]["pricing"]["category"], "utility");
    assert_eq!(statuses[0]["pricing"]["type"], "regular");
    assert!(statuses[1]["pricing"].is_object());

    // The record follows.
    let (_, record) = sandbox
        .get(&format!("/sandbox/messages?wamid={wamid}"))
        .await;
    assert_eq!(record["data"][0]["status"], "read");
    sandbox.stop().await;
}

#[tokio::test]
async fn older_graph_versions_get_the_conversation_object() {
    let (sandbox, receiver) = with_receiver(fast_config()).await;
    sandbox.inject_text(USER, "hi").await;
    let (status, answer) = sandbox.send_at("v23.0", text(USER, "reply")).await;
    assert_eq!(status, StatusCode::OK);
    let wamid = answer["messages"][0]["id"].as_str().unwrap().to_string();
    let received = receiver
        .wait_until("statuses", |r| statuses_of(r, &wamid).len() >= 3)
        .await;
    let statuses = statuses_of(&received, &wamid);
    assert!(statuses[0]["conversation"]["id"].is_string());
    assert!(statuses[0]["conversation"]["expiration_timestamp"].is_string());
    assert_eq!(statuses[0]["conversation"]["origin"]["type"], "service");
    assert_eq!(statuses[0]["pricing"]["category"], "service");
    assert_eq!(statuses[0]["pricing"]["type"], "free_customer_service");
    sandbox.stop().await;
}

#[tokio::test]
async fn window_and_undeliverable_failures_come_as_failed_statuses() {
    let mut config = fast_config();
    config.undeliverable = vec!["+2250700000099".into()];
    let (sandbox, receiver) = with_receiver(config).await;
    let outside_window = send_ok(&sandbox, text(USER, "free-form without a window")).await;
    let undeliverable = send_ok(&sandbox, hello("+2250700000099")).await;
    let unknown_media = {
        sandbox.inject_text("+2250700000003", "hi").await;
        send_ok(
            &sandbox,
            json!({"messaging_product": "whatsapp", "to": "+2250700000003", "type": "document",
                   "document": {"id": "404404404", "filename": "x.pdf"}}),
        )
        .await
    };
    let received = receiver
        .wait_until("three failures", |r| {
            [&outside_window, &undeliverable, &unknown_media]
                .iter()
                .all(|w| !statuses_of(r, w).is_empty())
        })
        .await;
    for (wamid, code) in [
        (&outside_window, 131047),
        (&undeliverable, 131026),
        (&unknown_media, 131053),
    ] {
        let statuses = statuses_of(&received, wamid);
        assert_eq!(kinds(&statuses), vec!["failed"], "{wamid}");
        let error = &statuses[0]["errors"][0];
        assert_eq!(error["code"], code);
        assert!(error["title"].is_string());
        assert!(error["error_data"]["details"].is_string());
        assert!(error["href"].as_str().unwrap().contains("error-codes"));
        assert!(statuses[0].get("pricing").is_none());
    }
    let (_, record) = sandbox
        .get(&format!("/sandbox/messages?wamid={outside_window}"))
        .await;
    assert_eq!(record["data"][0]["status"], "failed");
    assert_eq!(record["data"][0]["error_code"], 131047);
    sandbox.stop().await;
}

#[tokio::test]
async fn chaos_failures_use_the_configured_codes() {
    let mut config = fast_config();
    config.chaos.failure_ratio = 1.0;
    config.chaos.failure_codes = vec![131049];
    let (sandbox, receiver) = with_receiver(config).await;
    let wamid = send_ok(&sandbox, hello(USER)).await;
    let received = receiver
        .wait_until("failure", |r| !statuses_of(r, &wamid).is_empty())
        .await;
    let statuses = statuses_of(&received, &wamid);
    assert_eq!(kinds(&statuses), vec!["failed"]);
    assert_eq!(statuses[0]["errors"][0]["code"], 131049);
    sandbox.stop().await;
}

#[tokio::test]
async fn chaos_duplicates_deliver_identical_bodies_twice() {
    let mut config = fast_config();
    config.chaos.duplicate_ratio = 1.0;
    config.webhooks.read_ratio = 0.0;
    let (sandbox, receiver) = with_receiver(config).await;
    let wamid = send_ok(&sandbox, hello(USER)).await;
    let received = receiver
        .wait_until("duplicates", |r| statuses_of(r, &wamid).len() >= 4)
        .await;
    let statuses = statuses_of(&received, &wamid);
    assert_eq!(statuses.len(), 4);
    let mut bodies: Vec<_> = received.iter().map(|r| r.body.clone()).collect();
    bodies.sort();
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(bodies[2], bodies[3]);
    assert_ne!(bodies[1], bodies[2]);
    assert!(received.iter().all(|r| r.signature_valid(SECRET)));
    sandbox.stop().await;
}

#[tokio::test]
async fn chaos_reordering_sends_read_before_sent() {
    let mut config = fast_config();
    config.chaos.reorder_ratio = 1.0;
    config.webhooks.sent_delay_ms = 50;
    config.webhooks.delivered_delay_ms = 200;
    config.webhooks.read_delay_ms = 350;
    let (sandbox, receiver) = with_receiver(config).await;
    let wamid = send_ok(&sandbox, hello(USER)).await;
    let received = receiver
        .wait_until("statuses", |r| statuses_of(r, &wamid).len() >= 3)
        .await;
    assert_eq!(
        kinds(&statuses_of(&received, &wamid)),
        vec!["read", "delivered", "sent"]
    );
    // The record keeps the truth: the most advanced status.
    let (_, record) = sandbox
        .get(&format!("/sandbox/messages?wamid={wamid}"))
        .await;
    assert_eq!(record["data"][0]["status"], "read");
    sandbox.stop().await;
}

#[tokio::test]
async fn a_callback_answering_500_is_retried_with_the_same_bytes() {
    let mut config = fast_config();
    config.webhooks.read_ratio = 0.0;
    config.webhooks.delivered_delay_ms = 2_000;
    let (sandbox, receiver) = with_receiver(config).await;
    receiver.state.fail_first.store(3, Ordering::SeqCst);
    let wamid = send_ok(&sandbox, hello(USER)).await;
    let received = receiver
        .wait_until("the retried sent status", |r| {
            !statuses_of(r, &wamid).is_empty()
        })
        .await;
    assert_eq!(kinds(&statuses_of(&received, &wamid)), vec!["sent"]);
    assert_eq!(
        receiver.state.attempts.load(Ordering::SeqCst),
        4,
        "three 500s, then a 200"
    );
    let bodies = receiver.state.attempt_bodies.lock().unwrap().clone();
    assert!(
        bodies.iter().all(|b| *b == received[0].body),
        "retries resend the same bytes"
    );
    assert!(received[0].signature_valid(SECRET));
    // The sandbox counts the 200 once it has read the answer, just after the receiver stored it.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while sandbox.handle.stats()["webhooks_delivered"] != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}",
            sandbox.handle.stats()
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(sandbox.handle.stats()["webhook_failed_attempts"], 3);
    sandbox.stop().await;
}

#[tokio::test]
async fn a_retry_goes_to_the_callback_configured_at_the_time() {
    let mut config = fast_config();
    config.webhooks.read_ratio = 0.0;
    config.webhooks.delivered_delay_ms = 2_000;
    let (sandbox, first) = with_receiver(config).await;
    // The first server fails; the app's URL then points at another one (a load balancer taking
    // the failed server out): the retry reaches the other, signed.
    first.state.fail_first.store(1_000, Ordering::SeqCst);
    let second = receiver().await;
    let wamid = send_ok(&sandbox, hello(USER)).await;
    first
        .wait_until("a first failed attempt", |_| {
            first.state.attempts.load(Ordering::SeqCst) > 0
        })
        .await;
    sandbox.handle.set_callback(
        Some(second.url()),
        Some(whatsapp_sidecar::secret::Secret::new(SECRET)),
    );
    let received = second
        .wait_until("the retried sent status", |r| {
            !statuses_of(r, &wamid).is_empty()
        })
        .await;
    assert_eq!(kinds(&statuses_of(&received, &wamid)), vec!["sent"]);
    assert!(received[0].signature_valid(SECRET));
    assert!(
        first.received().is_empty(),
        "the failed server got nothing in the end"
    );
    sandbox.stop().await;
}

#[tokio::test]
async fn a_callback_that_never_answers_200_is_given_up_after_the_retry_period() {
    let mut config = fast_config();
    config.webhooks.read_ratio = 0.0;
    config.webhooks.delivered_delay_ms = 60_000;
    config.webhooks.retry_for_secs = 1;
    config.webhooks.retry_max_delay_ms = 200;
    let (sandbox, receiver) = with_receiver(config).await;
    receiver
        .state
        .fail_first
        .store(usize::MAX, Ordering::SeqCst);
    send_ok(&sandbox, hello(USER)).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while sandbox.handle.stats()["webhooks_given_up"] != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never gave up: {}",
            sandbox.handle.stats()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(receiver.state.attempts.load(Ordering::SeqCst) >= 3);
    assert!(receiver.received().is_empty());
    sandbox.stop().await;
}

#[tokio::test]
async fn statuses_due_together_are_batched_up_to_batch_max() {
    let mut config = fast_config();
    config.webhooks.batch_max = 4;
    config.webhooks.sent_delay_ms = 300;
    config.webhooks.delivered_delay_ms = 300;
    config.webhooks.read_delay_ms = 300;
    let (sandbox, receiver) = with_receiver(config).await;
    let mut wamids = Vec::new();
    for i in 0..4 {
        wamids.push(send_ok(&sandbox, hello(&format!("+22507000000{i:02}"))).await);
    }
    let received = receiver
        .wait_until("12 statuses", |r| {
            r.iter().map(|p| p.statuses().len()).sum::<usize>() >= 12
        })
        .await;
    let sizes: Vec<usize> = received.iter().map(|r| r.statuses().len()).collect();
    assert!(sizes.iter().all(|n| *n <= 4), "{sizes:?}");
    assert!(
        sizes.iter().any(|n| *n > 1),
        "nothing was batched: {sizes:?}"
    );
    for wamid in &wamids {
        assert_eq!(statuses_of(&received, wamid).len(), 3);
    }
    sandbox.stop().await;
}

fn inbound_message(post: &Received) -> (Value, Value) {
    let value = &post.json["entry"][0]["changes"][0]["value"];
    (value["contacts"][0].clone(), value["messages"][0].clone())
}

#[tokio::test]
async fn injected_messages_produce_metas_inbound_webhooks() {
    let (sandbox, receiver) = with_receiver(fast_config()).await;

    // Text.
    let (status, out) = sandbox
        .post_json(
            "/sandbox/inject",
            json!({"from": USER, "name": "Awa Koné", "text": "Bonjour"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert_eq!(out["queued"], true);
    let text_wamid = out["wamid"].as_str().unwrap().to_string();
    let received = receiver.wait_until("the text", |r| r.len() == 1).await;
    let post = &received[0];
    assert!(post.signature_valid(SECRET));
    assert_eq!(
        post.json, out["webhook"],
        "the webhook sent is the one answered"
    );
    let change = &post.json["entry"][0]["changes"][0];
    assert_eq!(change["field"], "messages");
    assert_eq!(change["value"]["metadata"]["phone_number_id"], PN);
    let (contact, message) = inbound_message(post);
    assert_eq!(contact["profile"]["name"], "Awa Koné");
    assert_eq!(contact["wa_id"], "2250700000001");
    assert!(contact["user_id"].as_str().unwrap().starts_with("CI."));
    assert_eq!(message["from"], "2250700000001");
    assert_eq!(message["id"], text_wamid.as_str());
    assert_eq!(message["type"], "text");
    assert_eq!(message["text"]["body"], "Bonjour");
    assert!(message["timestamp"]
        .as_str()
        .unwrap()
        .parse::<u64>()
        .is_ok());

    // The window is open now: a free-form reply is delivered, not failed.
    let reply = send_ok(&sandbox, text(USER, "Bonjour Awa")).await;

    // Button reply to an interactive message: title and context found from what was sent.
    let buttons = json!({"messaging_product": "whatsapp", "to": USER, "type": "interactive",
        "interactive": {"type": "button", "body": {"text": "Confirm order S00042?"}, "action": {"buttons": [
            {"type": "reply", "reply": {"id": "confirm:sale.order:42", "title": "Confirm"}},
            {"type": "reply", "reply": {"id": "cancel:sale.order:42", "title": "Cancel"}}]}}});
    let buttons_wamid = send_ok(&sandbox, buttons).await;
    let (status, out) = sandbox
        .post_json(
            "/sandbox/inject",
            json!({"from": USER, "button_reply": {"id": "confirm:sale.order:42"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let (_, message) = inbound_message(&Received {
        signature: None,
        body: Default::default(),
        json: out["webhook"].clone(),
    });
    assert_eq!(message["type"], "interactive");
    assert_eq!(message["interactive"]["type"], "button_reply");
    assert_eq!(
        message["interactive"]["button_reply"]["id"],
        "confirm:sale.order:42"
    );
    assert_eq!(message["interactive"]["button_reply"]["title"], "Confirm");
    assert_eq!(message["context"]["id"], buttons_wamid.as_str());
    assert_eq!(message["context"]["from"], "15550000001");

    // List reply.
    let list = json!({"messaging_product": "whatsapp", "to": USER, "type": "interactive",
        "interactive": {"type": "list", "body": {"text": "Menu"}, "action": {"button": "Options", "sections": [
            {"title": "Orders", "rows": [{"id": "track", "title": "Track order", "description": "Where is my parcel?"}]}]}}});
    let list_wamid = send_ok(&sandbox, list).await;
    let (_, out) = sandbox
        .post_json(
            "/sandbox/inject",
            json!({"from": USER, "list_reply": {"id": "track"}}),
        )
        .await;
    let message = &out["webhook"]["entry"][0]["changes"][0]["value"]["messages"][0];
    assert_eq!(message["interactive"]["type"], "list_reply");
    assert_eq!(message["interactive"]["list_reply"]["title"], "Track order");
    assert_eq!(
        message["interactive"]["list_reply"]["description"],
        "Where is my parcel?"
    );
    assert_eq!(message["context"]["id"], list_wamid.as_str());

    // Template quick-reply payload.
    let invoice = json!({"messaging_product": "whatsapp", "to": USER, "type": "template",
        "template": {"name": "sidecar_invoice", "language": {"code": "en_US"}, "components": [
            {"type": "header", "parameters": [{"type": "document", "document": {"link": "https://e.com/i.pdf"}}]},
            {"type": "body", "parameters": [{"type": "text", "text": "Awa"}, {"type": "text", "text": "INV/1"},
                                            {"type": "text", "text": "$ 10"}]},
            {"type": "button", "sub_type": "quick_reply", "index": "1", "parameters": [{"type": "payload", "payload": "TALK:INV/1"}]}]}});
    let invoice_wamid = send_ok(&sandbox, invoice).await;
    let (_, out) = sandbox
        .post_json(
            "/sandbox/inject",
            json!({"from": USER, "button": {"payload": "TALK:INV/1"}}),
        )
        .await;
    let message = &out["webhook"]["entry"][0]["changes"][0]["value"]["messages"][0];
    assert_eq!(message["type"], "button");
    assert_eq!(message["button"]["payload"], "TALK:INV/1");
    assert_eq!(message["button"]["text"], "Talk to us");
    assert_eq!(message["context"]["id"], invoice_wamid.as_str());

    // Each inbound message became its own signed POST; the free-form reply was delivered.
    let received = receiver
        .wait_until("all inbound and the reply's statuses", |r| {
            r.iter()
                .filter(|p| p.json["entry"][0]["changes"][0]["value"]["messages"].is_array())
                .count()
                == 4
                && statuses_of(r, &reply).len() == 3
        })
        .await;
    assert!(received.iter().all(|r| r.signature_valid(SECRET)));
    assert_eq!(
        kinds(&statuses_of(&received, &reply)),
        vec!["sent", "delivered", "read"]
    );

    // Bad injections are refused with a reason.
    let (status, out) = sandbox
        .post_json("/sandbox/inject", json!({"from": USER}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(out["error"]["message"]
        .as_str()
        .unwrap()
        .contains("exactly one"));
    let (status, _) = sandbox
        .post_json(
            "/sandbox/inject",
            json!({"from": USER, "button_reply": {"id": "never-sent"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, out) = sandbox
        .post_json("/sandbox/inject", json!({"from": USER, "txt": "typo"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(out["error"]["message"].as_str().unwrap().contains("txt"));

    let (_, inbound) = sandbox.get("/sandbox/inbound").await;
    assert_eq!(inbound["count"], 4);
    sandbox.stop().await;
}

#[tokio::test]
async fn template_status_changes_send_metas_template_webhook() {
    let (sandbox, receiver) = with_receiver(fast_config()).await;
    sandbox
        .handle
        .set_template_status("sandbox-waba", "sidecar_invoice", "en_US", "PAUSED")
        .unwrap();
    let received = receiver
        .wait_until("the template update", |r| !r.is_empty())
        .await;
    let change = &received[0].json["entry"][0]["changes"][0];
    assert_eq!(change["field"], "message_template_status_update");
    assert_eq!(change["value"]["event"], "PAUSED");
    assert_eq!(change["value"]["message_template_name"], "sidecar_invoice");
    assert_eq!(change["value"]["message_template_language"], "en_US");
    // The demo templates carry the addon's ids; numeric ids (Meta's) are sent as numbers.
    assert_eq!(change["value"]["message_template_id"], "sandbox-tpl-0002");
    assert!(received[0].signature_valid(SECRET));
    sandbox.stop().await;
}

#[tokio::test]
async fn the_callback_can_be_set_in_process_and_verified() {
    let sandbox = start(fast_config()).await;
    let receiver = receiver().await;
    // No callback yet: injection says it was not sent.
    let out = sandbox
        .handle
        .inject(&InjectRequest {
            from: USER.into(),
            text: Some("first".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(!out.queued);

    sandbox
        .handle
        .set_callback(Some(receiver.url()), Some("runtime-secret".into()));
    sandbox.handle.verify_callback(VERIFY_TOKEN).await.unwrap();
    let err = sandbox
        .handle
        .verify_callback("wrong-token")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");

    let out = sandbox
        .handle
        .inject(&InjectRequest {
            from: USER.into(),
            text: Some("second".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(out.queued);
    let received = receiver.wait_until("the inbound", |r| !r.is_empty()).await;
    assert!(received[0].signature_valid("runtime-secret"));
    assert!(!received[0].signature_valid(SECRET));

    // Without a secret, the configured app secret signs.
    sandbox.handle.set_callback(Some(receiver.url()), None);
    sandbox
        .handle
        .inject(&InjectRequest {
            from: USER.into(),
            text: Some("third".into()),
            ..Default::default()
        })
        .unwrap();
    let received = receiver
        .wait_until("the second inbound", |r| r.len() == 2)
        .await;
    assert!(received[1].signature_valid(SECRET));
    sandbox.stop().await;
}

#[tokio::test]
async fn the_verify_endpoint_runs_the_handshake() {
    let mut config = fast_config();
    config.webhooks.verify_token = Some(VERIFY_TOKEN.into());
    let (sandbox, _receiver) = with_receiver(config).await;
    let (status, body) = sandbox.post_json("/sandbox/verify", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let mut config = fast_config();
    config.webhooks.verify_token = Some("not-the-receivers-token".into());
    let (sandbox, _receiver) = with_receiver(config).await;
    let (status, body) = sandbox.post_json("/sandbox/verify", json!({})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("verify token"));
    sandbox.stop().await;
}
