//! Inbound processing against the Odoo stand-in: stored webhook events become status updates,
//! conversations, received messages, opt-outs and template updates, idempotently.

mod support;

use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;
use support::{client_config, Fault, OdooStandin, Outage};
use tokio_util::sync::CancellationToken;
use whatsapp_sidecar::inbound::plan::PENDING_PREFIX;
use whatsapp_sidecar::inbound::{self, InboundConfig, InboundContext, Pass};
use whatsapp_sidecar::odoo::OdooClient;

const EVENT: &str = "whatsapp.webhook.event";
const MESSAGE: &str = "whatsapp.message";
const CONVERSATION: &str = "whatsapp.conversation";
const PHONE_ID: &str = "106540352242922";
/// 2025-06-25 13:29:44 UTC.
const T0: i64 = 1_750_858_184;

struct Setup {
    odoo: OdooStandin,
    ctx: InboundContext,
    account: i64,
}

async fn setup() -> Setup {
    let odoo = OdooStandin::start().await;
    let account = odoo.add_account("Main", PHONE_ID, 80);
    let mut cfg = client_config(&odoo);
    cfg.max_retries = 0;
    cfg.timeout = Duration::from_secs(2);
    let ctx = InboundContext {
        odoo: OdooClient::new(cfg).expect("client"),
        config: InboundConfig::default(),
        wake: Arc::new(tokio::sync::Notify::new()),
        bus: Default::default(),
        media: None,
        lookups: Default::default(),
        received: None,
        metrics: Default::default(),
    };
    Setup { odoo, ctx, account }
}

fn envelope(field: &str, value: Value) -> String {
    json!({"object": "whatsapp_business_account", "entry": [{"id": format!("waba-{PHONE_ID}"),
           "changes": [{"field": field, "value": value}]}]})
    .to_string()
}

fn statuses(list: Value) -> String {
    envelope(
        "messages",
        json!({"messaging_product": "whatsapp",
               "metadata": {"display_phone_number": "15550100", "phone_number_id": PHONE_ID},
               "statuses": list}),
    )
}

fn status(wamid: &str, status: &str, at: i64) -> Value {
    json!({"id": wamid, "status": status, "timestamp": at.to_string(), "recipient_id": "33612345678",
           "pricing": {"pricing_model": "PMP", "type": "regular", "category": "utility"}})
}

fn inbound_message(from: &str, message: Value) -> String {
    envelope(
        "messages",
        json!({"messaging_product": "whatsapp",
               "metadata": {"display_phone_number": "15550100", "phone_number_id": PHONE_ID},
               "contacts": [{"profile": {"name": "Camille"}, "wa_id": from, "user_id": "FR.1234567890"}],
               "messages": [message]}),
    )
}

fn text(from: &str, wamid: &str, body: &str, at: i64) -> String {
    inbound_message(
        from,
        json!({"from": from, "id": wamid, "timestamp": at.to_string(), "type": "text", "text": {"body": body}}),
    )
}

fn odoo_time(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .unwrap()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

impl Setup {
    /// Stores a body as the receiver does, received now.
    fn store(&self, body: &str) -> i64 {
        self.store_at(body, chrono::Utc::now().timestamp())
    }

    fn store_at(&self, body: &str, received: i64) -> i64 {
        self.odoo.insert(
            EVENT,
            json!({"raw_body": body, "received_at": odoo_time(received), "signature_ok": true}),
        )
    }

    async fn step(&self, pass: Pass) -> inbound::StepReport {
        match inbound::step(&self.ctx, pass, chrono::Utc::now()).await {
            Ok(report) => report,
            Err(e) => panic!("step failed: {e}"),
        }
    }

    fn record(&self, model: &str, id: i64) -> Map<String, Value> {
        self.odoo
            .record(model, id)
            .unwrap_or_else(|| panic!("{model}({id}) missing"))
    }

    /// An outbound message as the outbox leaves it after the send's write-back.
    fn sent_message(&self, partner: i64, wamid: &str) -> i64 {
        let id = self
            .odoo
            .queue_message(self.account, partner, "Your order is ready");
        self.odoo.update(
            MESSAGE,
            id,
            json!({"state": "sent", "wamid": wamid, "sent_at": odoo_time(T0), "callback_data": id.to_string()}),
        );
        id
    }
}

#[tokio::test]
async fn statuses_apply_forward_only_in_any_order_in_one_write() {
    let s = setup().await;
    let partner = s.odoo.add_partner("Camille", "+33 6 12 34 56 78", true);
    let msg = s.sent_message(partner, "wamid.A");
    // Meta delivers out of order, one status per webhook.
    let e1 = s.store(&statuses(json!([status("wamid.A", "read", T0 + 5)])));
    let e2 = s.store(&statuses(json!([status("wamid.A", "delivered", T0 + 2)])));
    let e3 = s.store(&statuses(json!([status("wamid.A", "sent", T0 + 1)])));
    let report = s.step(Pass::New).await;
    assert_eq!((report.events, report.done, report.statuses), (3, 3, 3));

    let m = s.record(MESSAGE, msg);
    assert_eq!(m["state"], "read");
    assert_eq!(m["delivered_at"], json!(odoo_time(T0 + 2)));
    assert_eq!(m["read_at"], json!(odoo_time(T0 + 5)));
    assert_eq!(
        m["sent_at"],
        json!(odoo_time(T0)),
        "the write-back's time is kept"
    );
    assert_eq!(m["pricing_category"], "utility");
    assert_eq!(
        s.odoo.write_count(MESSAGE, msg),
        1,
        "three statuses, one write"
    );
    for e in [e1, e2, e3] {
        let event = s.record(EVENT, e);
        assert_eq!(
            (
                event["processed"].clone(),
                event["processing_error"].clone()
            ),
            (json!(true), json!(false))
        );
    }

    // A late duplicate and a late "delivered" change nothing and write nothing.
    s.store(&statuses(json!([
        status("wamid.A", "delivered", T0 + 2),
        status("wamid.A", "sent", T0 + 1)
    ])));
    s.step(Pass::New).await;
    assert_eq!(s.record(MESSAGE, msg)["state"], "read");
    assert_eq!(s.odoo.write_count(MESSAGE, msg), 1);
}

#[tokio::test]
async fn a_failed_status_records_the_error_and_help() {
    let s = setup().await;
    let partner = s.odoo.add_partner("Camille", "+33 6 12 34 56 78", true);
    let msg = s.sent_message(partner, "wamid.F");
    s.store(&statuses(json!([{"id": "wamid.F", "status": "failed", "timestamp": (T0 + 3).to_string(),
        "recipient_id": "33612345678",
        "errors": [{"code": 131047, "title": "Re-engagement message", "message": "Re-engagement message",
                    "error_data": {"details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."}}]}])));
    s.step(Pass::New).await;
    let m = s.record(MESSAGE, msg);
    assert_eq!(m["state"], "failed");
    assert_eq!(m["failed_at"], json!(odoo_time(T0 + 3)));
    assert_eq!(m["error_code"], "131047");
    assert_eq!(m["error_title"], "Re-engagement message");
    assert!(m["error_details"].as_str().unwrap().contains("24 hours"));
    assert!(!m["error_help"].as_str().unwrap_or("").is_empty());
}

#[tokio::test]
async fn a_status_before_the_write_back_waits_then_applies() {
    let s = setup().await;
    let partner = s.odoo.add_partner("Camille", "+33 6 12 34 56 78", true);
    let msg = s.odoo.queue_message(s.account, partner, "Hello");
    s.odoo.update(MESSAGE, msg, json!({"state": "sending"}));
    let event = s.store(&statuses(json!([status(
        "wamid.EARLY",
        "delivered",
        T0 + 2
    )])));

    let report = s.step(Pass::New).await;
    assert_eq!(report.waiting, 1);
    let e = s.record(EVENT, event);
    assert_eq!(e["processed"], json!(false));
    let reason = e["processing_error"].as_str().unwrap_or("");
    assert!(
        reason.starts_with(PENDING_PREFIX) && reason.contains("wamid.EARLY"),
        "{reason}"
    );
    // A new pass does not read it again; nothing was dropped.
    assert_eq!(s.step(Pass::New).await.events, 0);

    // The outbox writes its send back.
    s.odoo.update(
        MESSAGE,
        msg,
        json!({"state": "sent", "wamid": "wamid.EARLY", "sent_at": odoo_time(T0)}),
    );
    let report = s.step(Pass::Waiting { after_id: 0 }).await;
    assert_eq!((report.events, report.done), (1, 1));
    let m = s.record(MESSAGE, msg);
    assert_eq!(m["state"], "delivered");
    assert_eq!(m["delivered_at"], json!(odoo_time(T0 + 2)));
    let e = s.record(EVENT, event);
    assert_eq!(
        (e["processed"].clone(), e["processing_error"].clone()),
        (json!(true), json!(false))
    );
}

#[tokio::test]
async fn a_waiting_status_is_given_up_only_after_the_delay() {
    let mut s = setup().await;
    s.ctx.config.pending_give_up = Duration::from_secs(3600);
    let event = s.store_at(
        &statuses(json!([status("wamid.NEVER", "sent", T0)])),
        T0 + 10,
    );
    let received = chrono::DateTime::from_timestamp(T0 + 10, 0).unwrap();
    let r = inbound::step(&s.ctx, Pass::New, received + chrono::Duration::minutes(59))
        .await
        .unwrap();
    assert_eq!(r.waiting, 1);
    let r = inbound::step(
        &s.ctx,
        Pass::Waiting { after_id: 0 },
        received + chrono::Duration::minutes(61),
    )
    .await
    .unwrap();
    assert_eq!(r.failed, 1);
    let e = s.record(EVENT, event);
    assert_eq!(e["processed"], json!(true));
    let error = e["processing_error"].as_str().unwrap_or("");
    assert!(
        error.contains("gave up") && error.contains("wamid.NEVER"),
        "{error}"
    );
}

#[tokio::test]
async fn callback_data_proves_a_send_left_in_sending_by_a_crash() {
    let s = setup().await;
    let partner = s.odoo.add_partner("Camille", "+33 6 12 34 56 78", true);
    let msg = s.odoo.queue_message(s.account, partner, "Hello");
    s.odoo.update(MESSAGE, msg, json!({"state": "sending"}));
    let mut sent = status("wamid.CRASH", "sent", T0 + 1);
    sent["biz_opaque_callback_data"] = json!(msg.to_string());
    s.store(&statuses(json!([sent])));
    s.step(Pass::New).await;
    let m = s.record(MESSAGE, msg);
    assert_eq!(m["wamid"], "wamid.CRASH");
    assert_eq!(m["state"], "sent");
    assert_eq!(m["sent_at"], json!(odoo_time(T0 + 1)));
}

#[tokio::test]
async fn a_status_before_the_send_result_applies_and_the_result_does_not_move_it_back() {
    let s = setup().await;
    let partner = s.odoo.add_partner("Camille", "+33 6 12 34 56 78", true);
    let msg = s.odoo.queue_message(s.account, partner, "Hello");
    s.odoo.update(MESSAGE, msg, json!({"state": "sending"}));
    let mut read = status("wamid.EARLY", "read", T0 + 3);
    read["biz_opaque_callback_data"] = json!(msg.to_string());
    let event = s.store(&statuses(json!([read])));

    // Meta is fast: the read status lands before the outbox writes the send's result.
    let report = s.step(Pass::New).await;
    assert_eq!((report.events, report.done), (1, 1));
    let m = s.record(MESSAGE, msg);
    assert_eq!(m["state"], "read");
    assert_eq!(m["wamid"], "wamid.EARLY");
    assert_eq!(s.record(EVENT, event)["processed"], json!(true));

    // The outbox's result write, as it makes it: Odoo keeps the state forward-only, so the
    // write records the send time and leaves the message read.
    s.ctx
        .odoo
        .write(
            MESSAGE,
            &[msg],
            &json!({"state": "sent", "wamid": "wamid.EARLY", "sent_at": odoo_time(T0), "claimed_at": false}),
        )
        .await
        .unwrap();
    let m = s.record(MESSAGE, msg);
    assert_eq!(m["state"], "read");
    assert_eq!(m["sent_at"], json!(odoo_time(T0)));
    assert_eq!(m["read_at"], json!(odoo_time(T0 + 3)));
}

#[tokio::test]
async fn a_first_inbound_text_creates_the_conversation_and_the_received_message() {
    let s = setup().await;
    let partner = s.odoo.add_partner("Camille", "+33 6 12 34 56 78", true);
    let event = s.store(&text(
        "33612345678",
        "wamid.IN1",
        "Bonjour, ma commande ?",
        T0,
    ));
    let report = s.step(Pass::New).await;
    assert_eq!(
        (report.messages_created, report.conversations_created),
        (1, 1)
    );

    let conversations = s.odoo.search(CONVERSATION, json!([]));
    assert_eq!(conversations.len(), 1);
    let c = s.record(CONVERSATION, conversations[0]);
    assert_eq!(c["account_id"][0], json!(s.account));
    assert_eq!(c["wa_id"], "33612345678");
    assert_eq!(c["user_id"], "FR.1234567890");
    assert_eq!(c["profile_name"], "Camille");
    assert_eq!(
        c["partner_id"][0],
        json!(partner),
        "matched by the partner's mobile"
    );
    assert_eq!(c["last_inbound_at"], json!(odoo_time(T0)));
    assert_eq!(c["window_expires_at"], json!(odoo_time(T0 + 24 * 3600)));

    let messages = s.odoo.search(MESSAGE, json!([["direction", "=", "in"]]));
    assert_eq!(messages.len(), 1);
    let m = s.record(MESSAGE, messages[0]);
    assert_eq!(m["state"], "received");
    assert_eq!(m["message_type"], "text");
    assert_eq!(m["body"], "Bonjour, ma commande ?");
    assert_eq!(m["wamid"], "wamid.IN1");
    assert_eq!(m["wa_id"], "33612345678");
    assert_eq!(m["partner_id"][0], json!(partner));
    assert_eq!(m["conversation_id"][0], json!(conversations[0]));
    assert_eq!(m["webhook_event_id"][0], json!(event));
    assert_eq!(m["received_at"], json!(odoo_time(T0)));

    // Meta delivers it again, with a later message: one new message, the window moves on.
    s.store(&text(
        "33612345678",
        "wamid.IN1",
        "Bonjour, ma commande ?",
        T0,
    ));
    s.store(&text("33612345678", "wamid.IN2", "Merci", T0 + 600));
    let report = s.step(Pass::New).await;
    assert_eq!(
        (report.messages_created, report.conversations_created),
        (1, 0)
    );
    assert_eq!(
        s.odoo
            .search(MESSAGE, json!([["direction", "=", "in"]]))
            .len(),
        2
    );
    let c = s.record(CONVERSATION, conversations[0]);
    assert_eq!(c["last_inbound_at"], json!(odoo_time(T0 + 600)));
    assert_eq!(
        c["window_expires_at"],
        json!(odoo_time(T0 + 600 + 24 * 3600))
    );
}

#[tokio::test]
async fn stop_opts_the_partner_out_and_queues_one_confirmation() {
    let s = setup().await;
    let partner = s.odoo.add_partner("Camille", "+33 6 12 34 56 78", true);
    let event = s.store(&text("33612345678", "wamid.STOP", " Stop ", T0));
    let report = s.step(Pass::New).await;
    assert_eq!(report.opt_outs, 1);
    let p = s.record("res.partner", partner);
    assert_eq!(p["whatsapp_opt_in"], json!(false));
    assert_eq!(p["whatsapp_opt_out_date"], json!(odoo_time(T0)));
    assert_eq!(p["whatsapp_opt_in_source"], "whatsapp");

    let confirmations = || {
        s.odoo
            .search(MESSAGE, json!([["dedupe_key", "=", "opt_out:wamid.STOP"]]))
    };
    assert_eq!(confirmations().len(), 1);
    let c = s.record(MESSAGE, confirmations()[0]);
    assert_eq!(c["direction"], "out");
    assert_eq!(c["state"], "queued");
    assert_eq!(c["trigger"], "opt_out");
    assert_eq!(c["to_number"], "+33612345678");
    assert_eq!(c["partner_id"][0], json!(partner));
    assert_eq!(
        c["body"],
        "You will no longer receive WhatsApp messages from us."
    );

    // "Reprocess" on the event: nothing happens twice.
    s.odoo.update(
        EVENT,
        event,
        json!({"processed": false, "processing_error": false}),
    );
    s.step(Pass::New).await;
    assert_eq!(confirmations().len(), 1);
    assert_eq!(
        s.odoo
            .search(MESSAGE, json!([["direction", "=", "in"]]))
            .len(),
        1
    );
}

#[tokio::test]
async fn button_list_and_quick_reply_payloads_are_recorded() {
    let s = setup().await;
    s.store(&inbound_message(
        "33612345678",
        json!({"from": "33612345678", "id": "wamid.B1", "timestamp": T0.to_string(), "type": "interactive",
               "context": {"from": "15550100", "id": "wamid.MENU"},
               "interactive": {"type": "button_reply", "button_reply": {"id": "confirm_order:42", "title": "Confirm"}}}),
    ));
    s.store(&inbound_message(
        "33612345678",
        json!({"from": "33612345678", "id": "wamid.B2", "timestamp": (T0 + 1).to_string(), "type": "button",
               "button": {"payload": "PAY:42", "text": "Pay now"}}),
    ));
    s.step(Pass::New).await;
    let by_wamid = |w: &str| {
        let ids = s.odoo.search(MESSAGE, json!([["wamid", "=", w]]));
        s.record(MESSAGE, ids[0])
    };
    let b1 = by_wamid("wamid.B1");
    assert_eq!(b1["message_type"], "interactive");
    assert_eq!(b1["button_payload"], "confirm_order:42");
    assert_eq!(b1["button_title"], "Confirm");
    assert_eq!(b1["reply_to_wamid"], "wamid.MENU");
    let b2 = by_wamid("wamid.B2");
    assert_eq!(b2["message_type"], "button");
    assert_eq!(b2["button_payload"], "PAY:42");
    assert_eq!(b2["button_title"], "Pay now");
}

#[tokio::test]
async fn a_message_to_an_unknown_number_is_an_error_on_its_event() {
    let s = setup().await;
    let body = text("33612345678", "wamid.X", "hi", T0).replace(PHONE_ID, "999");
    let event = s.store(&body);
    let report = s.step(Pass::New).await;
    assert_eq!(report.failed, 1);
    let e = s.record(EVENT, event);
    assert_eq!(e["processed"], json!(true));
    let error = e["processing_error"].as_str().unwrap_or("");
    assert!(
        error.contains("\"999\"") && error.contains("'Process again'"),
        "{error}"
    );
    assert!(s
        .odoo
        .search(MESSAGE, json!([["wamid", "=", "wamid.X"]]))
        .is_empty());
}

#[tokio::test]
async fn template_status_and_quality_updates_are_written() {
    let s = setup().await;
    let template = s.odoo.insert(
        "whatsapp.template",
        json!({"name": "invoice_ready", "language": "en_US", "account_id": s.account,
               "status": "approved", "meta_template_id": "123456789"}),
    );
    s.store(&envelope(
        "message_template_status_update",
        json!({"event": "REJECTED", "message_template_id": 123456789, "message_template_name": "invoice_ready",
               "message_template_language": "en_US", "reason": "INVALID_FORMAT"}),
    ));
    s.store(&envelope(
        "message_template_quality_update",
        json!({"previous_quality_score": "GREEN", "new_quality_score": "RED", "message_template_id": 123456789,
               "message_template_name": "invoice_ready", "message_template_language": "en_US"}),
    ));
    s.store(&envelope(
        "message_template_status_update",
        json!({"event": "APPROVED", "message_template_id": 555, "message_template_name": "not_synced_yet",
               "message_template_language": "fr", "reason": "NONE"}),
    ));
    let report = s.step(Pass::New).await;
    assert_eq!(report.done, 3);
    let t = s.record("whatsapp.template", template);
    assert_eq!(t["status"], "rejected");
    assert_eq!(t["rejected_reason"], "INVALID_FORMAT");
    assert_eq!(t["quality_rating"], "red");
    assert_eq!(
        s.record("whatsapp.account", s.account)["sync_requested"],
        json!(true)
    );
}

#[tokio::test]
async fn an_odoo_outage_leaves_the_events_for_later() {
    let s = setup().await;
    let partner = s.odoo.add_partner("Camille", "+33 6 12 34 56 78", true);
    let msg = s.sent_message(partner, "wamid.O");
    let event = s.store(&statuses(json!([status("wamid.O", "delivered", T0 + 2)])));
    s.odoo.go_down(Outage::Refuse).await;
    let error = inbound::step(&s.ctx, Pass::New, chrono::Utc::now())
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error}");
    s.odoo.come_back().await;
    s.step(Pass::New).await;
    assert_eq!(s.record(MESSAGE, msg)["state"], "delivered");
    assert_eq!(s.record(EVENT, event)["processed"], json!(true));
}

#[tokio::test]
async fn the_loop_processes_new_events_when_woken_and_stops_on_shutdown() {
    let mut s = setup().await;
    s.ctx.config.poll_interval = Duration::from_secs(3600);
    s.ctx.config.min_batch_interval = Duration::from_millis(10);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(inbound::run(s.ctx.clone(), shutdown.clone()));
    // The first pass runs at start; give it a moment, then store and wake.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let event = s.store(&text("33612345678", "wamid.LOOP", "hello", T0));
    s.ctx.wake.notify_one();
    let processed = async {
        while s.record(EVENT, event)["processed"] != json!(true) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), processed)
        .await
        .expect("processed without waiting for the hour-long poll");
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the loop stops on shutdown")
        .unwrap();
}

#[tokio::test]
async fn statuses_short_of_final_are_kept_for_the_next_batch_and_share_its_write() {
    let mut s = setup().await;
    // The linger alone (not the status batching, tested below).
    s.ctx.config.status_batch_interval = Duration::ZERO;
    let partner = s.odoo.add_partner("Camille", "+33 6 12 34 56 78", true);
    let msg = s.sent_message(partner, "wamid.LATE");
    let writes = s.odoo.write_count(MESSAGE, msg);

    // Meta's concurrent webhooks: `read` is stored first, `delivered` a moment later.
    let read = s.store(&statuses(json!([status("wamid.LATE", "read", T0 + 2)])));
    let mut kept = inbound::Deferred::default();
    let r = inbound::step_with(&s.ctx, Some(&mut kept), Pass::New, chrono::Utc::now())
        .await
        .expect("step");
    assert_eq!((r.fetched, r.deferred, r.done), (1, 1, 0));
    assert_eq!(kept.len(), 1);
    assert_eq!(
        s.odoo.write_count(MESSAGE, msg),
        writes,
        "nothing written yet"
    );
    assert_eq!(s.record(EVENT, read)["processed"], json!(false));

    // A restart forgets what was kept: the event is read again from Odoo.
    let mut after_restart = inbound::Deferred::default();
    let r = inbound::step_with(
        &s.ctx,
        Some(&mut after_restart),
        Pass::New,
        chrono::Utc::now(),
    )
    .await
    .expect("step");
    assert_eq!((r.fetched, r.deferred), (1, 1));

    let delivered = s.store(&statuses(json!([status(
        "wamid.LATE",
        "delivered",
        T0 + 1
    )])));
    let r = inbound::step_with(&s.ctx, Some(&mut kept), Pass::New, chrono::Utc::now())
        .await
        .expect("step");
    assert_eq!(r.fetched, 1, "the kept event is not read again");
    assert_eq!((r.events, r.done, r.deferred), (2, 2, 0));
    assert!(kept.is_empty());
    assert_eq!(
        s.odoo.write_count(MESSAGE, msg),
        writes + 1,
        "one write for both"
    );
    let m = s.record(MESSAGE, msg);
    assert_eq!(m["state"], "read");
    assert_eq!(m["delivered_at"], json!(odoo_time(T0 + 1)));
    assert_eq!(m["read_at"], json!(odoo_time(T0 + 2)));
    for e in [read, delivered] {
        assert_eq!(s.record(EVENT, e)["processed"], json!(true));
    }
}

#[tokio::test]
async fn while_statuses_stream_in_a_batch_of_only_statuses_waits_for_the_next_one() {
    let mut s = setup().await;
    s.ctx.config.status_batch_interval = Duration::from_millis(300);
    let partner = s.odoo.add_partner("Camille", "+33 6 12 34 56 78", true);
    let first = s.sent_message(partner, "wamid.B1");
    let second = s.sent_message(partner, "wamid.B2");
    let mut kept = inbound::Deferred::default();

    // Nothing applied lately: the first batch is applied at once.
    s.store(&statuses(json!([
        status("wamid.B1", "delivered", T0 + 2),
        status("wamid.B1", "read", T0 + 2)
    ])));
    let r = inbound::step_with(&s.ctx, Some(&mut kept), Pass::New, chrono::Utc::now())
        .await
        .expect("step");
    assert_eq!((r.fetched, r.done, r.deferred), (1, 1, 0));
    assert_eq!(s.record(MESSAGE, first)["state"], "read");

    // Right after it, a batch of statuses only: kept, at the cost of one read.
    let calls = s.odoo.requests();
    let second_read = s.store(&statuses(json!([
        status("wamid.B2", "delivered", T0 + 3),
        status("wamid.B2", "read", T0 + 3)
    ])));
    let r = inbound::step_with(&s.ctx, Some(&mut kept), Pass::New, chrono::Utc::now())
        .await
        .expect("step");
    assert_eq!((r.fetched, r.done, r.deferred), (1, 0, 1));
    assert_eq!(s.odoo.requests() - calls, 1, "only the read of the events");
    assert_eq!(s.record(MESSAGE, second)["state"], "sent");
    assert_eq!(s.record(EVENT, second_read)["processed"], json!(false));

    // A customer's message is applied at once, with the kept statuses.
    let hello = s.store(&text("33612345678", "wamid.HELLO", "hello", T0 + 4));
    let r = inbound::step_with(&s.ctx, Some(&mut kept), Pass::New, chrono::Utc::now())
        .await
        .expect("step");
    assert_eq!((r.fetched, r.events, r.done, r.deferred), (1, 2, 2, 0));
    assert!(kept.is_empty());
    assert_eq!(s.record(MESSAGE, second)["state"], "read");
    for e in [second_read, hello] {
        assert_eq!(s.record(EVENT, e)["processed"], json!(true));
    }

    // Statuses alone again: kept, then applied once the interval is over, with or without
    // new events.
    let third = s.sent_message(partner, "wamid.B3");
    s.store(&statuses(json!([
        status("wamid.B3", "delivered", T0 + 5),
        status("wamid.B3", "read", T0 + 5)
    ])));
    let r = inbound::step_with(&s.ctx, Some(&mut kept), Pass::New, chrono::Utc::now())
        .await
        .expect("step");
    assert_eq!(r.deferred, 1);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let r = inbound::step_with(&s.ctx, Some(&mut kept), Pass::New, chrono::Utc::now())
        .await
        .expect("step");
    assert_eq!((r.fetched, r.done, r.deferred), (0, 1, 0));
    assert_eq!(s.record(MESSAGE, third)["state"], "read");
}

#[tokio::test]
async fn the_loop_applies_kept_statuses_within_the_status_batch_interval() {
    let mut s = setup().await;
    s.ctx.config.poll_interval = Duration::from_secs(3600);
    s.ctx.config.min_batch_interval = Duration::from_millis(10);
    s.ctx.config.status_batch_interval = Duration::from_millis(400);
    let partner = s.odoo.add_partner("Camille", "+33 6 12 34 56 78", true);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(inbound::run(s.ctx.clone(), shutdown.clone()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A stream of final statuses, one every 50 ms: each batch of them is applied within the
    // interval of being read, and fewer batches are applied than were read.
    let mut messages = Vec::new();
    for n in 0..10 {
        let wamid = format!("wamid.S{n}");
        messages.push(s.sent_message(partner, &wamid));
        s.store(&statuses(json!([
            status(&wamid, "delivered", T0 + n),
            status(&wamid, "read", T0 + n)
        ])));
        s.ctx.wake.notify_one();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let applied = async {
        while messages
            .iter()
            .any(|m| s.record(MESSAGE, *m)["state"] != json!("read"))
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), applied)
        .await
        .expect("every status applied");
    let reads = s.odoo.calls(EVENT, "search_read");
    let marks = s.odoo.calls(EVENT, "write");
    assert!(
        marks * 2 < reads,
        "{marks} batches applied for {reads} read: statuses were batched"
    );
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the loop stops on shutdown")
        .unwrap();
}

#[tokio::test]
async fn a_kept_status_is_written_when_its_linger_is_over() {
    let mut s = setup().await;
    s.ctx.config.status_linger = Duration::from_millis(100);
    let partner = s.odoo.add_partner("Camille", "+33 6 12 34 56 78", true);
    let msg = s.sent_message(partner, "wamid.SLOW");
    let event = s.store(&statuses(json!([status(
        "wamid.SLOW",
        "delivered",
        T0 + 1
    )])));
    let mut kept = inbound::Deferred::default();
    let r = inbound::step_with(&s.ctx, Some(&mut kept), Pass::New, chrono::Utc::now())
        .await
        .expect("step");
    assert_eq!(r.deferred, 1);
    assert_eq!(s.record(MESSAGE, msg)["state"], "sent");

    // No `read` comes (the customer has not opened the chat): written alone after the linger.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let r = inbound::step_with(&s.ctx, Some(&mut kept), Pass::New, chrono::Utc::now())
        .await
        .expect("step");
    assert_eq!((r.fetched, r.done, r.deferred), (0, 1, 0));
    let m = s.record(MESSAGE, msg);
    assert_eq!(m["state"], "delivered");
    assert_eq!(m["delivered_at"], json!(odoo_time(T0 + 1)));
    assert_eq!(s.record(EVENT, event)["processed"], json!(true));
}

#[tokio::test]
async fn an_event_odoo_refuses_is_marked_with_the_error_and_the_others_go_through() {
    let s = setup().await;
    let first = s.store(&text("33612345678", "wamid.R1", "one", T0));
    let second = s.store(&text("33612345678", "wamid.R2", "two", T0 + 1));
    // The batch's create and then the first event's own create are refused.
    s.odoo.fail_next_call(
        MESSAGE,
        "create",
        2,
        Fault::Rpc {
            name: "odoo.exceptions.ValidationError".into(),
            message: "The operation cannot be completed: bad value".into(),
        },
    );
    let report = s.step(Pass::New).await;
    assert_eq!((report.failed, report.done), (1, 1));
    let e = s.record(EVENT, first);
    assert_eq!(e["processed"], json!(true));
    let error = e["processing_error"].as_str().unwrap_or("");
    assert!(error.contains("bad value"), "{error}");
    assert_eq!(s.record(EVENT, second)["processed"], json!(true));
    assert!(s
        .odoo
        .search(MESSAGE, json!([["wamid", "=", "wamid.R1"]]))
        .is_empty());
    assert_eq!(
        s.odoo
            .search(MESSAGE, json!([["wamid", "=", "wamid.R2"]]))
            .len(),
        1
    );
}

// ----- who is told that a customer wrote ---------------------------------------------------

/// Marc Demo (uid 6, partner 7): a salesperson.
const SALESPERSON: i64 = 6;
const SALESPERSON_PARTNER: i64 = 7;

/// A text from `from`, with a business-scoped user id of their own (the other helpers give
/// every sender the same one, which makes them one user).
fn text_of(from: &str, wamid: &str, body: &str, at: i64) -> String {
    text(from, wamid, body, at).replace("FR.1234567890", &format!("FR.{from}"))
}

fn answering(from: &str, wamid: &str, answers: &str, body: &str, at: i64) -> String {
    inbound_message(
        from,
        json!({"from": from, "id": wamid, "timestamp": at.to_string(), "type": "text",
               "context": {"from": "15550100", "id": answers}, "text": {"body": body}}),
    )
}

#[tokio::test]
async fn a_customers_text_is_noted_on_the_contact_and_the_order_and_the_salesperson_gets_one_activity_an_hour(
) {
    let s = setup().await;
    let partner = s.odoo.add_partner("Camille", "+33 6 12 34 56 78", true);
    s.odoo
        .update("res.partner", partner, json!({"user_id": SALESPERSON}));
    // The quotation S00002 was sent to Camille on WhatsApp.
    let order_message = s.sent_message(partner, "wamid.ORDER");
    s.odoo.update(
        MESSAGE,
        order_message,
        json!({"res_model": "sale.order", "res_id": 2}),
    );
    s.store(&answering(
        "33612345678",
        "wamid.Q1",
        "wamid.ORDER",
        "Is <it> shipped?",
        T0,
    ));
    s.odoo.reset_counters();
    let report = s.step(Pass::New).await;
    assert_eq!(
        (report.messages_created, report.notes, report.notifications),
        (1, 2, 1)
    );

    let on_contact = s.odoo.chatter("res.partner", partner);
    assert_eq!(on_contact.len(), 1, "{on_contact:?}");
    let note = &on_contact[0];
    assert!(
        note.contains("WhatsApp message from Camille (+33612345678) to Main (+1 555 0100), in reply to S00002:"),
        "{note}"
    );
    assert!(note.contains("<p>“Is &lt;it&gt; shipped?”</p>"), "{note}");
    assert!(
        note.contains("data-oe-model=\"whatsapp.conversation\""),
        "{note}"
    );
    assert_eq!(
        s.odoo.chatter("sale.order", 2),
        vec![note.clone()],
        "the same note on the order"
    );
    let activities = s.odoo.activities("sale.order", 2);
    assert_eq!(activities.len(), 1, "{activities:?}");
    assert_eq!(activities[0].0, SALESPERSON);
    assert_eq!(activities[0].1, "Reply on WhatsApp to Camille");
    assert!(activities[0].2.contains("Is &lt;it&gt; shipped?"));
    assert!(s.odoo.activities("res.partner", partner).is_empty());
    let conversation = s.odoo.search(CONVERSATION, json!([]))[0];
    let notified_at = s.record(CONVERSATION, conversation)["last_notified_at"].clone();
    assert!(notified_at.is_string(), "{notified_at:?}");
    // Notes in one create, the activity in another; the conversation written once.
    assert_eq!(s.odoo.calls("mail.message", "create"), 1);
    assert_eq!(s.odoo.calls("mail.activity", "create"), 1);
    assert_eq!(s.odoo.calls(CONVERSATION, "create"), 1);
    assert_eq!(s.odoo.calls(CONVERSATION, "write"), 0);

    // Camille writes again within the hour: a second note, no second activity.
    s.store(&text("33612345678", "wamid.Q2", "Hello?", T0 + 60));
    let report = s.step(Pass::New).await;
    assert_eq!((report.notes, report.notifications), (1, 0));
    let on_contact = s.odoo.chatter("res.partner", partner);
    assert_eq!(on_contact.len(), 2);
    assert!(on_contact[1].contains("<p>“Hello?”</p>"));
    assert_eq!(
        s.odoo.chatter("sale.order", 2).len(),
        1,
        "not an answer to the order"
    );
    assert_eq!(s.odoo.activities("sale.order", 2).len(), 1);
    assert!(s.odoo.activities("res.partner", partner).is_empty());
    assert_eq!(
        s.record(CONVERSATION, conversation)["last_notified_at"],
        notified_at
    );

    // An hour later: told again, on the contact this time; an open activity is not repeated.
    s.odoo.update(
        CONVERSATION,
        conversation,
        json!({"last_notified_at": odoo_time(chrono::Utc::now().timestamp() - 3601)}),
    );
    s.store(&text("33612345678", "wamid.Q3", "Anyone?", T0 + 120));
    let report = s.step(Pass::New).await;
    assert_eq!(report.notifications, 1);
    let on_contact = s.odoo.activities("res.partner", partner);
    assert_eq!(on_contact.len(), 1);
    s.odoo.update(
        CONVERSATION,
        conversation,
        json!({"last_notified_at": odoo_time(chrono::Utc::now().timestamp() - 3601)}),
    );
    s.store(&text("33612345678", "wamid.Q4", "Still there?", T0 + 180));
    let report = s.step(Pass::New).await;
    assert_eq!((report.notes, report.notifications), (1, 0));
    assert_eq!(s.odoo.activities("res.partner", partner).len(), 1);

    // Processed again ("Process again"): nothing is noted twice.
    let notes = s.odoo.count("mail.message");
    for e in s.odoo.search(EVENT, json!([])) {
        s.odoo.update(
            EVENT,
            e,
            json!({"processed": false, "processing_error": false}),
        );
    }
    s.step(Pass::New).await;
    assert_eq!(s.odoo.count("mail.message"), notes);
}

#[tokio::test]
async fn an_unknown_number_is_noted_on_its_conversation_and_tells_the_accounts_responsible() {
    let s = setup().await;
    s.odoo.update(
        "whatsapp.account",
        s.account,
        json!({"responsible_user_id": SALESPERSON}),
    );
    s.odoo
        .update("res.users", SALESPERSON, json!({"lang": "fr_FR"}));
    s.store(&inbound_message(
        "447700900123",
        json!({"from": "447700900123", "id": "wamid.U1", "timestamp": T0.to_string(), "type": "image",
               "image": {"id": "MEDIA1", "mime_type": "image/jpeg", "caption": "Ma facture"}}),
    ));
    let report = s.step(Pass::New).await;
    assert_eq!((report.notes, report.notifications), (1, 1));
    let conversation = s.odoo.search(CONVERSATION, json!([]))[0];
    // No contact: the note and the activity go on the conversation (it has a chatter).
    let notes = s.odoo.chatter(CONVERSATION, conversation);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains("WhatsApp message from Camille (+447700900123) to Main")
            && notes[0].contains("<p><i>an image</i>: “Ma facture”</p>"),
        "{}",
        notes[0]
    );
    let activities = s.odoo.activities(CONVERSATION, conversation);
    assert_eq!(activities.len(), 1, "{activities:?}");
    assert_eq!(activities[0].0, SALESPERSON);
    assert_eq!(activities[0].1, "Répondre sur WhatsApp à Camille");
}

#[tokio::test]
async fn the_discuss_message_goes_to_the_users_inbox_in_their_language() {
    let s = setup().await;
    s.odoo.update(
        "whatsapp.account",
        s.account,
        json!({"responsible_user_id": SALESPERSON, "inbound_notification": "message"}),
    );
    s.odoo
        .update("res.users", SALESPERSON, json!({"lang": "fr_FR"}));
    s.store(&inbound_message(
        "447700900123",
        json!({"from": "447700900123", "id": "wamid.U1", "timestamp": T0.to_string(), "type": "image",
               "image": {"id": "MEDIA1", "mime_type": "image/jpeg", "caption": "Ma facture"}}),
    ));
    let report = s.step(Pass::New).await;
    assert_eq!((report.notes, report.notifications), (1, 1));
    let conversation = s.odoo.search(CONVERSATION, json!([]))[0];
    assert_eq!(s.odoo.count("mail.activity"), 0);
    let inbox = s.odoo.inbox(SALESPERSON_PARTNER);
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    let (model, res_id, subject, body) = &inbox[0];
    assert_eq!((model.as_str(), *res_id), (CONVERSATION, conversation));
    assert_eq!(subject, "Message WhatsApp de Camille");
    assert_eq!(
        body,
        "<p>Camille (+447700900123) a écrit sur WhatsApp à Main (+1 555 0100) : une image : « Ma \
         facture ». Répondez depuis WhatsApp &gt; Conversations.</p>"
    );
    // Not in the conversation's chatter: only the note is.
    assert_eq!(s.odoo.chatter(CONVERSATION, conversation).len(), 1);
}

#[tokio::test]
async fn with_notifications_off_or_nobody_to_tell_a_customer_is_only_noted() {
    let s = setup().await;
    let partner = s.odoo.add_partner("Camille", "+33 6 12 34 56 78", true);
    let dominique = s.odoo.add_partner("Dominique", "+33 6 12 34 56 79", true);
    s.odoo
        .update("res.partner", dominique, json!({"user_id": SALESPERSON}));
    // Camille has no salesperson and the account no responsible user: nobody.
    s.store(&text("33612345678", "wamid.N1", "Bonjour", T0));
    let report = s.step(Pass::New).await;
    assert_eq!((report.notes, report.notifications), (1, 0));
    assert_eq!(s.odoo.chatter("res.partner", partner).len(), 1);
    let conversation = s
        .odoo
        .search(CONVERSATION, json!([["wa_id", "=", "33612345678"]]))[0];
    assert_eq!(
        s.record(CONVERSATION, conversation)["last_notified_at"],
        json!(false),
        "nobody was told"
    );
    // Dominique has one, but the account tells nobody.
    s.odoo.update(
        "whatsapp.account",
        s.account,
        json!({"inbound_notification": "none"}),
    );
    s.store(&text_of("33612345679", "wamid.N2", "Salut", T0));
    let report = s.step(Pass::New).await;
    assert_eq!((report.notes, report.notifications), (1, 0));
    assert_eq!(s.odoo.count("mail.activity"), 0);
    assert!(s.odoo.inbox(SALESPERSON_PARTNER).is_empty());
}

#[tokio::test]
async fn many_customers_in_one_batch_cost_one_note_create_and_one_activity_create() {
    let s = setup().await;
    for n in 0..5 {
        let number = format!("3361234560{n}");
        let p = s
            .odoo
            .add_partner(&format!("Customer {n}"), &format!("+{number}"), true);
        s.odoo
            .update("res.partner", p, json!({"user_id": SALESPERSON}));
        s.store(&text_of(&number, &format!("wamid.M{n}"), "Hi", T0 + n));
        s.store(&text_of(
            &number,
            &format!("wamid.M{n}b"),
            "Again",
            T0 + n + 10,
        ));
    }
    // What is read once an hour (subtypes, models, company languages) is read already.
    s.ctx.lookups.get(&s.ctx.odoo, &[]).await.expect("lookups");
    s.odoo.reset_counters();
    let report = s.step(Pass::New).await;
    assert_eq!(
        (report.messages_created, report.notes, report.notifications),
        (10, 10, 5)
    );
    assert_eq!(s.odoo.calls("mail.message", "create"), 1);
    assert_eq!(s.odoo.calls("mail.activity", "create"), 1);
    assert_eq!(s.odoo.calls("mail.activity", "search_read"), 1);
    assert_eq!(s.odoo.calls("res.users", "read"), 1);
    assert_eq!(s.odoo.calls("res.partner", "read"), 1);
}

#[tokio::test]
async fn the_opt_out_confirmation_is_in_the_customers_language_one_read_per_language() {
    let s = setup().await;
    let french = s.odoo.add_partner("Camille", "+33 6 12 34 56 78", true);
    let french_too = s.odoo.add_partner("Dominique", "+33 6 12 34 56 79", true);
    let english = s.odoo.add_partner("Alex", "+44 7700 900123", true);
    for p in [french, french_too] {
        s.odoo.update("res.partner", p, json!({"lang": "fr_FR"}));
    }
    s.store(&text_of("33612345678", "wamid.S1", "STOP", T0));
    s.store(&text_of("33612345679", "wamid.S2", "Arrêt", T0));
    s.store(&text_of("447700900123", "wamid.S3", "stop", T0));
    s.odoo.reset_counters();
    let report = s.step(Pass::New).await;
    assert_eq!(report.opt_outs, 3);
    let body = |wamid: &str| {
        let ids = s.odoo.search(
            MESSAGE,
            json!([["dedupe_key", "=", format!("opt_out:{wamid}")]]),
        );
        s.record(MESSAGE, ids[0])["body"].clone()
    };
    // Nobody translated the account's default text: the daemon's French words.
    assert_eq!(
        body("wamid.S1"),
        "Vous ne recevrez plus de messages WhatsApp de notre part."
    );
    assert_eq!(
        body("wamid.S3"),
        "You will no longer receive WhatsApp messages from us."
    );
    assert_eq!(
        s.odoo.calls("whatsapp.account", "read"),
        1,
        "one read for French"
    );
    assert_eq!(
        s.odoo.last_context("whatsapp.account", "read").unwrap()["lang"],
        "fr_FR"
    );
    // The notes say so; the opt-outs tell nobody.
    assert!(s.odoo.chatter("res.partner", french)[0].contains("the contact is opted out"));
    assert_eq!(report.notifications, 0);

    // Someone wrote the French text in Odoo: that one is sent.
    s.odoo.set_translation(
        "whatsapp.account",
        s.account,
        "opt_out_confirmation",
        "fr_FR",
        "C'est noté : plus de messages WhatsApp.",
    );
    s.odoo
        .update("res.partner", french, json!({"whatsapp_opt_in": true}));
    s.store(&text_of("33612345678", "wamid.S4", "stop", T0 + 60));
    s.step(Pass::New).await;
    assert_eq!(body("wamid.S4"), "C'est noté : plus de messages WhatsApp.");
    let _ = english;
}
