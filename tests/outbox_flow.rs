//! The outbox end to end on loopback: the Odoo stand-in holds the queue, the sandbox (or a
//! scripted Graph server) plays Meta, and `outbox::run` moves messages between them.

mod support;

use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use chrono::{SubsecRound, TimeDelta, Utc};
use serde_json::{json, Value};
use std::time::Duration;
use support::{client_config, Fault, OdooStandin};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use whatsapp_sidecar::odoo::OdooClient;
use whatsapp_sidecar::outbox::{run, OutboxContext, OutboxSettings};
use whatsapp_sidecar::sandbox::{InjectRequest, RecordFilter, SandboxConfig, SandboxHandle};
use whatsapp_sidecar::secret::Secret;
use whatsapp_sidecar::whatsapp::{ClientConfig, CloudClient};

const PHONE_ID: &str = "sandbox-0001";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn fast_settings() -> OutboxSettings {
    OutboxSettings {
        poll_interval: ms(50),
        flush_interval: ms(20),
        cache_ttl: ms(100),
        ..OutboxSettings::default()
    }
}

fn odoo_time(t: chrono::DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

struct Outbox {
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl Outbox {
    async fn start(standin: &OdooStandin, graph_url: &str, settings: OutboxSettings) -> Outbox {
        // RUST_LOG=whatsapp_sidecar=debug shows the outbox's log in failing tests.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let odoo = OdooClient::new(client_config(standin)).expect("odoo client");
        let url = graph_url.parse().expect("graph url");
        let mut cfg = ClientConfig::new(url, "v25.0");
        cfg.timeout = Duration::from_secs(5);
        let whatsapp = CloudClient::new(cfg).expect("cloud client");
        let ctx = OutboxContext::new(odoo, whatsapp, settings);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(ctx, shutdown.clone()));
        Outbox { shutdown, task }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the outbox stops within 10 s")
            .expect("the outbox task does not panic");
    }
}

async fn sandbox(config: SandboxConfig) -> (SandboxHandle, CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind sandbox");
    let shutdown = CancellationToken::new();
    let handle = SandboxHandle::start(listener, config, shutdown.clone())
        .await
        .expect("sandbox starts");
    (handle, shutdown)
}

/// Waits until `check` holds (polling), or fails the test with `what`.
async fn eventually(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if check() {
            return;
        }
        tokio::time::sleep(ms(20)).await;
    }
    panic!("timed out after {timeout:?} waiting for: {what}");
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

fn state(standin: &OdooStandin, id: i64) -> String {
    text(&standin.field("whatsapp.message", id, "state"))
}

fn hello_template(standin: &OdooStandin, account: i64, status: &str) -> i64 {
    standin.insert(
        "whatsapp.template",
        json!({"name": "sidecar_hello", "language": "en_US", "account_id": account,
               "status": status, "parameter_format": "positional",
               "components_json": json!([{"type": "BODY", "text": "Hello! Thanks for choosing us."}]).to_string()}),
    )
}

fn open_window(standin: &OdooStandin, account: i64, wa_id: &str) -> i64 {
    let now = Utc::now();
    standin.insert(
        "whatsapp.conversation",
        json!({"account_id": account, "wa_id": wa_id,
               "last_inbound_at": odoo_time(now - TimeDelta::minutes(5)),
               "window_expires_at": odoo_time(now + TimeDelta::hours(23))}),
    )
}

/// An account, an opted-in contact Alice, and the approved hello template queued to her about
/// her own record: `(alice, message id)`.
fn hello_to_alice(standin: &OdooStandin) -> (i64, i64) {
    let account = standin.add_account("Main", PHONE_ID, 80);
    let alice = standin.add_partner("Alice", "+33 6 12 34 56 01", true);
    let template = hello_template(standin, account, "approved");
    let id = standin.queue_message_with(
        account,
        alice,
        json!({"message_type": "template", "template_id": template,
               "res_model": "res.partner", "res_id": alice}),
    );
    (alice, id)
}

#[tokio::test]
async fn a_queued_template_reaches_the_sandbox_and_comes_back_sent() {
    let standin = OdooStandin::start().await;
    let (sandbox, sandbox_stop) = sandbox(SandboxConfig::default()).await;
    let (alice, id) = hello_to_alice(&standin);

    let outbox = Outbox::start(&standin, &sandbox.base_url(), fast_settings()).await;
    eventually("the message is sent", Duration::from_secs(10), || {
        state(&standin, id) == "sent"
    })
    .await;
    outbox.stop().await;

    let record = standin.record("whatsapp.message", id).expect("message");
    let accepted = sandbox
        .messages(&RecordFilter {
            callback_data: Some(id.to_string()),
            ..RecordFilter::default()
        })
        .expect("sandbox record");
    assert_eq!(accepted.len(), 1, "sent exactly once");
    assert_eq!(accepted[0].kind, "template");
    assert_eq!(text(&record["wamid"]), accepted[0].wamid);
    assert_eq!(text(&record["to_e164"]), "+33612345601");
    assert_eq!(text(&record["callback_data"]), id.to_string());
    assert!(record["sent_at"].is_string());
    assert!(record["claimed_at"].is_string());
    assert_eq!(
        standin.write_count("whatsapp.message", id),
        2,
        "one claim write and one result write"
    );
    let notes = standin.chatter("res.partner", alice);
    assert!(
        notes
            .iter()
            .any(|n| n.contains("WhatsApp message sent to +33612345601")),
        "{notes:?}"
    );
    sandbox_stop.cancel();
}

#[tokio::test]
async fn free_form_inside_the_window_and_a_report_pdf_as_document() {
    let standin = OdooStandin::start().await;
    let (sandbox, sandbox_stop) = sandbox(SandboxConfig::default()).await;
    let account = standin.add_account("Main", PHONE_ID, 80);
    let alice = standin.add_partner("Alice", "+33 6 12 34 56 02", true);
    open_window(&standin, account, "33612345602");
    sandbox
        .inject(&InjectRequest {
            from: "+33612345602".into(),
            text: Some("Hello, my order?".into()),
            ..InjectRequest::default()
        })
        .expect("inject");
    let hello = standin.queue_message(account, alice, "Your order ships today: https://x.test/t/1");
    let document = standin.queue_message_with(
        account,
        alice,
        json!({"message_type": "document", "body": "Order S00004", "trigger": "order_details",
               "res_model": "sale.order", "res_id": 4, "report_name": "sale.report_saleorder",
               "media_filename": "S00004.pdf"}),
    );

    let outbox = Outbox::start(&standin, &sandbox.base_url(), fast_settings()).await;
    eventually("both are sent", Duration::from_secs(20), || {
        state(&standin, hello) == "sent" && state(&standin, document) == "sent"
    })
    .await;
    outbox.stop().await;

    let all = sandbox.messages(&RecordFilter::default()).expect("record");
    let by_cb = |id: i64| {
        all.iter()
            .find(|m| m.callback_data.as_deref() == Some(id.to_string().as_str()))
            .expect("recorded")
            .clone()
    };
    assert_eq!(by_cb(hello).kind, "text");
    let doc = by_cb(document);
    assert_eq!(doc.kind, "document");
    let body: Value = serde_json::from_slice(&doc.body).expect("recorded body is JSON");
    assert!(body["document"]["id"].is_string(), "uploaded: {body}");
    assert_eq!(body["document"]["filename"], "S00004.pdf");
    assert_eq!(body["document"]["caption"], "Order S00004");
    assert!(standin
        .reports_served()
        .contains(&("sale.report_saleorder".to_string(), vec![4])));
    assert_eq!(
        standin.field("sale.order", 4, "x_whatsapp_details_sent"),
        json!(true)
    );
    // What was sent is on the record: Meta's media id, the type, the name, and the PDF itself,
    // kept as an attachment of the order.
    let record = standin
        .record("whatsapp.message", document)
        .expect("message");
    assert_eq!(
        text(&record["media_id"]),
        body["document"]["id"].as_str().unwrap()
    );
    assert_eq!(text(&record["media_mime_type"]), "application/pdf");
    assert_eq!(text(&record["media_filename"]), "S00004.pdf");
    let attachment = record["media_attachment_id"][0]
        .as_i64()
        .expect("the PDF is attached");
    let kept = standin
        .record("ir.attachment", attachment)
        .expect("attachment");
    assert_eq!(text(&kept["res_model"]), "sale.order");
    assert_eq!(kept["res_id"], 4);
    assert_eq!(text(&kept["mimetype"]), "application/pdf");
    assert_eq!(text(&kept["name"]), "S00004.pdf");
    sandbox_stop.cancel();
}

/// The approved invoice template with a document header, as the sandbox knows it, its three
/// body variables read on the sale order.
fn document_template(standin: &OdooStandin, account: i64) -> i64 {
    let template = standin.insert(
        "whatsapp.template",
        json!({"name": "sidecar_invoice", "language": "en_US", "account_id": account,
               "status": "approved", "parameter_format": "positional",
               "components_json": json!([
                   {"type": "HEADER", "format": "DOCUMENT"},
                   {"type": "BODY", "text": "Hello {{1}}, your invoice {{2}} of {{3}} is ready: the PDF is attached."},
                   {"type": "FOOTER", "text": "Reply STOP to stop these messages"}
               ]).to_string()}),
    );
    for (name, path) in [
        ("1", "partner_id.name"),
        ("2", "name"),
        ("3", "amount_total"),
    ] {
        standin.insert(
            "whatsapp.template.variable",
            json!({"template_id": template, "name": name, "component": "body", "field_path": path}),
        );
    }
    template
}

#[tokio::test]
async fn outside_the_window_a_text_goes_as_the_template_and_the_record_says_so() {
    let standin = OdooStandin::start().await;
    let (sandbox, sandbox_stop) = sandbox(SandboxConfig::default()).await;
    let account = standin.add_account("Main", PHONE_ID, 80);
    let hello = hello_template(&standin, account, "approved");
    standin.update(
        "whatsapp.account",
        account,
        json!({"template_generic_id": hello}),
    );
    let awa = standin.add_partner("Awa Kouassi", "+33 6 12 34 56 10", true);
    // She wrote once, long ago: the conversation exists, its window is closed.
    let long_ago = Utc::now() - TimeDelta::days(3);
    let conversation = standin.insert(
        "whatsapp.conversation",
        json!({"account_id": account, "wa_id": "33612345610", "partner_id": awa,
               "last_inbound_at": odoo_time(long_ago),
               "window_expires_at": odoo_time(long_ago + TimeDelta::hours(24))}),
    );
    let typed = "Hello Awa, your quotation S00021 is ready";
    // Queued without an account: the company's default is used, and recorded.
    let id = standin.queue_message_with(
        account,
        awa,
        json!({"account_id": false, "body": typed, "res_model": "res.partner", "res_id": awa}),
    );

    let outbox = Outbox::start(&standin, &sandbox.base_url(), fast_settings()).await;
    eventually("the message is sent", Duration::from_secs(10), || {
        state(&standin, id) == "sent"
    })
    .await;
    outbox.stop().await;

    let accepted = sandbox
        .messages(&RecordFilter {
            callback_data: Some(id.to_string()),
            ..RecordFilter::default()
        })
        .expect("sandbox record");
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].kind, "template", "WhatsApp got the template");
    let sent: Value = serde_json::from_slice(&accepted[0].body).expect("JSON");
    assert_eq!(sent["template"]["name"], "sidecar_hello");

    let record = standin.record("whatsapp.message", id).expect("message");
    assert_eq!(text(&record["message_type"]), "template");
    assert_eq!(record["template_id"][0], hello);
    assert_eq!(text(&record["body"]), "Hello! Thanks for choosing us.");
    assert_eq!(text(&record["original_body"]), typed);
    assert_eq!(text(&record["original_message_type"]), "text");
    assert_eq!(record["account_id"][0], account, "the account used");
    assert_eq!(
        record["conversation_id"][0], conversation,
        "in Awa's thread though she wrote before"
    );
    assert_eq!(
        standin.write_count("whatsapp.message", id),
        2,
        "still one claim and one result write"
    );
    let notes = standin.chatter("res.partner", awa);
    assert!(
        notes.iter().any(|n| n.contains(
            "sent to +33612345610 as the template sidecar_hello (en_US), because the customer \
             had not written in the last 24 hours"
        )),
        "{notes:?}"
    );
    sandbox_stop.cancel();
}

#[tokio::test]
async fn outside_the_window_a_document_goes_with_its_file_or_not_at_all() {
    let standin = OdooStandin::start().await;
    let (sandbox, sandbox_stop) = sandbox(SandboxConfig::default()).await;
    let account = standin.add_account("Main", PHONE_ID, 80);
    let hello = hello_template(&standin, account, "approved");
    standin.update(
        "whatsapp.account",
        account,
        json!({"template_generic_id": hello}),
    );
    let awa = standin.add_partner("Awa Kouassi", "+33 6 12 34 56 11", true);
    let document = |standin: &OdooStandin| {
        standin.queue_message_with(
            account,
            awa,
            json!({"message_type": "document", "body": "Your quotation S00004",
                   "trigger": "order_details", "res_model": "sale.order", "res_id": 4,
                   "report_name": "sale.report_saleorder", "media_filename": "S00004.pdf"}),
        )
    };

    // Only the generic template, without a file: refused, never sent without the PDF.
    let refused = document(&standin);
    let outbox = Outbox::start(&standin, &sandbox.base_url(), fast_settings()).await;
    eventually("the document fails", Duration::from_secs(10), || {
        state(&standin, refused) == "failed"
    })
    .await;
    outbox.stop().await;
    let help = text(&standin.field("whatsapp.message", refused, "error_help"));
    assert!(
        help.contains("set 'Template for documents' on the WhatsApp account Main"),
        "{help}"
    );
    assert_eq!(
        text(&standin.field("whatsapp.message", refused, "error_code")),
        "window_closed"
    );
    assert!(sandbox
        .messages(&RecordFilter::default())
        .expect("record")
        .is_empty());

    // With a 'Template for documents', the PDF goes in its header.
    let invoice = document_template(&standin, account);
    standin.update(
        "whatsapp.account",
        account,
        json!({"template_document_id": invoice}),
    );
    let id = document(&standin);
    let outbox = Outbox::start(&standin, &sandbox.base_url(), fast_settings()).await;
    eventually("the document is sent", Duration::from_secs(10), || {
        state(&standin, id) == "sent"
    })
    .await;
    outbox.stop().await;

    let accepted = sandbox
        .messages(&RecordFilter {
            callback_data: Some(id.to_string()),
            ..RecordFilter::default()
        })
        .expect("sandbox record");
    assert_eq!(accepted[0].kind, "template");
    let sent: Value = serde_json::from_slice(&accepted[0].body).expect("JSON");
    assert_eq!(sent["template"]["name"], "sidecar_invoice");
    let header = &sent["template"]["components"][0];
    assert_eq!(header["type"], "header");
    let media_id = header["parameters"][0]["document"]["id"]
        .as_str()
        .expect("the PDF is in the header")
        .to_owned();
    assert_eq!(
        header["parameters"][0]["document"]["filename"],
        "S00004.pdf"
    );

    let record = standin.record("whatsapp.message", id).expect("message");
    assert_eq!(text(&record["message_type"]), "template");
    assert_eq!(record["template_id"][0], invoice);
    assert_eq!(
        text(&record["body"]),
        "Hello Azure Interior, your invoice S00004 of 1230.0 is ready: the PDF is attached."
    );
    assert_eq!(text(&record["original_body"]), "Your quotation S00004");
    assert_eq!(text(&record["original_message_type"]), "document");
    assert_eq!(text(&record["media_id"]), media_id);
    assert_eq!(text(&record["media_mime_type"]), "application/pdf");
    let attachment = record["media_attachment_id"][0].as_i64().expect("attached");
    assert_eq!(
        standin.field("ir.attachment", attachment, "res_model"),
        json!("sale.order")
    );
    sandbox_stop.cancel();
}

#[tokio::test]
async fn a_setting_filled_after_a_failure_is_used_by_the_retry_at_once() {
    let standin = OdooStandin::start().await;
    let (sandbox, sandbox_stop) = sandbox(SandboxConfig::default()).await;
    let account = standin.add_account("Main", PHONE_ID, 80);
    let awa = standin.add_partner("Awa Kouassi", "+33 6 12 34 56 14", true);
    let id = standin.queue_message_with(
        account,
        awa,
        json!({"message_type": "document", "body": "Your quotation S00004",
               "res_model": "sale.order", "res_id": 4, "report_name": "sale.report_saleorder",
               "media_filename": "S00004.pdf"}),
    );
    // Accounts cached for a minute, as a busy daemon would have them.
    let settings = OutboxSettings {
        cache_ttl: Duration::from_secs(60),
        ..fast_settings()
    };
    let outbox = Outbox::start(&standin, &sandbox.base_url(), settings).await;
    eventually("the document fails", Duration::from_secs(10), || {
        state(&standin, id) == "failed"
    })
    .await;
    // Someone fills the setting the help names, then clicks "Retry".
    let invoice = document_template(&standin, account);
    standin.update(
        "whatsapp.account",
        account,
        json!({"template_document_id": invoice}),
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // The addon's "Retry": back to queued, the error fields emptied.
    standin.retry(id);
    eventually("the retry is sent", Duration::from_secs(10), || {
        state(&standin, id) == "sent"
    })
    .await;
    outbox.stop().await;
    assert_eq!(
        standin.field("whatsapp.message", id, "template_id")[0],
        json!(invoice)
    );
    assert_eq!(
        standin.field("whatsapp.message", id, "failed_at"),
        json!(false),
        "sent in the end: the record shows no failure date"
    );
    sandbox_stop.cancel();
}

#[tokio::test]
async fn help_texts_and_notes_are_in_the_language_of_who_queued_the_message() {
    let standin = OdooStandin::start().await;
    let (sandbox, sandbox_stop) = sandbox(SandboxConfig::default()).await;
    let account = standin.add_account("Main", PHONE_ID, 80);
    let french = standin.add_user("awa.vendeuse", "Vendeuse", "fr_FR");
    let english = standin.add_user("sam.sales", "Sam", "en_US");
    let dave = standin.add_partner("Dave", "+33 6 12 34 56 12", true);
    let erin = standin.add_partner("Erin", "+33 6 12 34 56 13", true);
    // Outside the window, no template set: both fail, each explained to its author.
    let queue = |uid: i64, partner: i64| {
        let phone = standin.field("res.partner", partner, "mobile");
        standin.insert_as(
            uid,
            "whatsapp.message",
            json!({"account_id": account, "partner_id": partner, "direction": "out",
                   "message_type": "text", "state": "queued", "body": "Bonjour",
                   "to_number": phone, "res_model": "res.partner", "res_id": partner}),
        )
    };
    let in_french = queue(french, dave);
    let in_english = queue(english, erin);

    let outbox = Outbox::start(&standin, &sandbox.base_url(), fast_settings()).await;
    eventually("both fail", Duration::from_secs(10), || {
        state(&standin, in_french) == "failed" && state(&standin, in_english) == "failed"
    })
    .await;
    outbox.stop().await;

    let field = |id: i64, f: &str| text(&standin.field("whatsapp.message", id, f));
    assert_eq!(
        field(in_french, "error_title"),
        "Hors de la fenêtre de 24 heures"
    );
    assert!(
        field(in_french, "error_help").contains(
            "renseignez « Modèle générique » sur le compte (il est utilisé hors de la fenêtre de \
             24 heures)"
        ),
        "{}",
        field(in_french, "error_help")
    );
    assert_eq!(
        field(in_english, "error_title"),
        "Outside the 24-hour window"
    );
    assert!(field(in_english, "error_help").contains("set 'Generic template' on the account"));
    let notes = standin.chatter("res.partner", dave);
    assert!(
        notes.iter().any(|n| n.starts_with(
            "<p>Message WhatsApp au +33612345612 non envoyé : Hors de la fenêtre de 24 heures."
        )),
        "{notes:?}"
    );
    let notes = standin.chatter("res.partner", erin);
    assert!(
        notes.iter().any(|n| n.starts_with(
            "<p>WhatsApp message to +33612345613 not sent: Outside the 24-hour window."
        )),
        "{notes:?}"
    );
    sandbox_stop.cancel();
}

#[tokio::test]
async fn each_gate_failure_is_written_with_its_help_and_nothing_is_sent() {
    let standin = OdooStandin::start().await;
    let (sandbox, sandbox_stop) = sandbox(SandboxConfig::default()).await;
    let account = standin.add_account("Main", PHONE_ID, 80);
    let approved = hello_template(&standin, account, "approved");
    let pending = standin.insert(
        "whatsapp.template",
        json!({"name": "sidecar_pending", "language": "en_US", "account_id": account,
               "status": "pending", "components_json": "[{\"type\": \"BODY\", \"text\": \"Hi\"}]"}),
    );
    let invoice = standin.insert(
        "whatsapp.template",
        json!({"name": "sidecar_invoice", "language": "en_US", "account_id": account,
               "status": "approved", "header_type": "none",
               "components_json": json!([{"type": "BODY", "text": "Hello {{1}}, invoice {{2}} of {{3}}."}]).to_string()}),
    );
    standin.insert(
        "whatsapp.template.variable",
        json!({"template_id": invoice, "name": "1", "component": "body", "field_path": "name"}),
    );
    let bob = standin.add_partner("Bob", "+33 6 12 34 56 03", false);
    let carol = standin.add_partner("Carol", "12", true);
    let dave = standin.add_partner("Dave", "+33 6 12 34 56 04", true);

    let template = |partner: i64, template: i64| {
        standin.queue_message_with(
            account,
            partner,
            json!({"message_type": "template", "template_id": template}),
        )
    };
    let cases = [
        (
            template(bob, approved),
            "not_opted_in",
            "The customer has not opted in to WhatsApp messages: tick 'WhatsApp opt-in' on the contact Bob",
        ),
        (template(carol, approved), "bad_number", "\"12\""),
        (
            standin.queue_message(account, dave, "Hello"),
            "window_closed",
            "set 'Generic template' on the account",
        ),
        (template(dave, pending), "template_not_approved", "is pending at Meta"),
        (
            standin.queue_message_with(
                account,
                dave,
                json!({"message_type": "template", "template_id": invoice,
                       "res_model": "res.partner", "res_id": dave}),
            ),
            "template_params",
            "Template sidecar_invoice (en_US) does not fit this message",
        ),
    ];

    let outbox = Outbox::start(&standin, &sandbox.base_url(), fast_settings()).await;
    eventually("every message failed", Duration::from_secs(10), || {
        cases
            .iter()
            .all(|(id, ..)| state(&standin, *id) == "failed")
    })
    .await;
    outbox.stop().await;

    for (id, code, help) in cases {
        let record = standin.record("whatsapp.message", id).expect("message");
        assert_eq!(text(&record["error_code"]), code, "message {id}");
        let written = text(&record["error_help"]);
        assert!(
            written.contains(help),
            "message {id}: {written:?} lacks {help:?}"
        );
        assert!(!text(&record["error_title"]).is_empty());
        assert!(record["failed_at"].is_string());
    }
    assert!(
        sandbox
            .messages(&RecordFilter::default())
            .expect("record")
            .is_empty(),
        "no gate failure reaches Meta"
    );
    sandbox_stop.cancel();
}

#[tokio::test]
async fn without_a_default_account_the_message_fails_saying_so() {
    let standin = OdooStandin::start().await;
    let (sandbox, sandbox_stop) = sandbox(SandboxConfig::default()).await;
    let account = standin.add_account("Main", PHONE_ID, 80);
    standin.update("whatsapp.account", account, json!({"is_default": false}));
    let alice = standin.add_partner("Alice", "+33 6 12 34 56 05", true);
    let id = standin.queue_message_with(account, alice, json!({"account_id": false}));

    let outbox = Outbox::start(&standin, &sandbox.base_url(), fast_settings()).await;
    eventually("the message failed", Duration::from_secs(10), || {
        state(&standin, id) == "failed"
    })
    .await;
    outbox.stop().await;
    let help = text(&standin.field("whatsapp.message", id, "error_help"));
    assert!(help.contains("has no default account"), "{help}");
    assert!(help.contains("'Default for the company'"), "{help}");
    sandbox_stop.cancel();
}

fn queued_with(standin: &OdooStandin, id: i64, code: &str) -> bool {
    let Some(r) = standin.record("whatsapp.message", id) else {
        return false;
    };
    text(&r["state"]) == "queued"
        && text(&r["error_code"]) == code
        && r["next_attempt_at"].is_string()
        && r["attempt_count"] == json!(1)
}

#[tokio::test]
async fn throughput_errors_requeue_with_a_next_attempt() {
    let standin = OdooStandin::start().await;
    let mut config = SandboxConfig::default();
    config.phone_numbers[0].throughput_mps = 1;
    config.phone_numbers[0].throughput_burst = Some(1);
    let (sandbox, sandbox_stop) = sandbox(config).await;
    // The account believes it may send 1,000 per second: Meta (the sandbox) says otherwise.
    let account = standin.add_account("Main", PHONE_ID, 1000);
    let template = hello_template(&standin, account, "approved");
    let ids: Vec<i64> = (0..6)
        .map(|i| {
            let p = standin.add_partner(&format!("P{i}"), &format!("+33 6 12 34 57 0{i}"), true);
            standin.queue_message_with(
                account,
                p,
                json!({"message_type": "template", "template_id": template}),
            )
        })
        .collect();

    let outbox = Outbox::start(&standin, &sandbox.base_url(), fast_settings()).await;
    eventually(
        "a message is requeued after 130429",
        Duration::from_secs(10),
        || ids.iter().any(|id| queued_with(&standin, *id, "130429")),
    )
    .await;
    outbox.stop().await;
    assert!(sandbox.rejected(130429) >= 1);
    let id = ids
        .iter()
        .copied()
        .find(|id| queued_with(&standin, *id, "130429"))
        .expect("requeued");
    let record = standin.record("whatsapp.message", id).expect("message");
    assert!(text(&record["error_help"]).contains("retried"));
    sandbox_stop.cancel();
}

#[tokio::test]
async fn pair_rate_errors_requeue_that_recipient_at_least_six_seconds_later() {
    let standin = OdooStandin::start().await;
    let (sandbox, sandbox_stop) = sandbox(SandboxConfig::default()).await;
    let account = standin.add_account("Main", PHONE_ID, 80);
    let template = hello_template(&standin, account, "approved");
    let alice = standin.add_partner("Alice", "+33 6 12 34 56 06", true);
    let ids: Vec<i64> = (0..2)
        .map(|_| {
            standin.queue_message_with(
                account,
                alice,
                json!({"message_type": "template", "template_id": template}),
            )
        })
        .collect();
    // The daemon's own pair pacing is switched off, so the sandbox's 131056 is reached.
    let settings = OutboxSettings {
        pair_interval: ms(1),
        ..fast_settings()
    };
    let before = Utc::now();
    let outbox = Outbox::start(&standin, &sandbox.base_url(), settings).await;
    eventually(
        "one sent, the other requeued after 131056",
        Duration::from_secs(10),
        || {
            ids.iter().any(|id| state(&standin, *id) == "sent")
                && ids.iter().any(|id| queued_with(&standin, *id, "131056"))
        },
    )
    .await;
    outbox.stop().await;
    let id = ids
        .iter()
        .copied()
        .find(|id| queued_with(&standin, *id, "131056"))
        .expect("requeued");
    let next = text(&standin.field("whatsapp.message", id, "next_attempt_at"));
    let next = chrono::NaiveDateTime::parse_from_str(&next, "%Y-%m-%d %H:%M:%S")
        .expect("datetime")
        .and_utc();
    // Odoo keeps whole seconds: compare with the start truncated the same way.
    let before = before.trunc_subsecs(0);
    assert!(next >= before + TimeDelta::seconds(6), "{next} vs {before}");
    sandbox_stop.cancel();
}

/// A Graph server that answers every send with a bare HTTP 500.
async fn failing_graph() -> (String, CancellationToken) {
    let app = Router::new().route(
        "/{version}/{phone}/messages",
        post(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "upstream exploded") }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stop = CancellationToken::new();
    let token = stop.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { token.cancelled().await })
            .await;
    });
    (format!("http://{addr}"), stop)
}

#[tokio::test]
async fn server_errors_requeue_with_a_next_attempt() {
    let standin = OdooStandin::start().await;
    let (graph, graph_stop) = failing_graph().await;
    let account = standin.add_account("Main", PHONE_ID, 80);
    let template = hello_template(&standin, account, "approved");
    let alice = standin.add_partner("Alice", "+33 6 12 34 56 07", true);
    let id = standin.queue_message_with(
        account,
        alice,
        json!({"message_type": "template", "template_id": template}),
    );
    let outbox = Outbox::start(&standin, &graph, fast_settings()).await;
    eventually("requeued after HTTP 500", Duration::from_secs(10), || {
        queued_with(&standin, id, "http_500")
    })
    .await;
    outbox.stop().await;
    let help = text(&standin.field("whatsapp.message", id, "error_help"));
    assert!(help.contains("HTTP 500"), "{help}");
    graph_stop.cancel();
}

#[tokio::test]
async fn a_bad_token_pauses_the_account_once_and_keeps_the_messages() {
    let standin = OdooStandin::start().await;
    let config = SandboxConfig {
        tokens: vec![Secret::new("the-only-valid-token")],
        ..SandboxConfig::default()
    };
    let (sandbox, sandbox_stop) = sandbox(config).await;
    let account = standin.add_account("Main", PHONE_ID, 80);
    let template = hello_template(&standin, account, "approved");
    let ids: Vec<i64> = (0..5)
        .map(|i| {
            let p = standin.add_partner(&format!("P{i}"), &format!("+33 6 12 34 58 0{i}"), true);
            standin.queue_message_with(
                account,
                p,
                json!({"message_type": "template", "template_id": template}),
            )
        })
        .collect();

    let outbox = Outbox::start(&standin, &sandbox.base_url(), fast_settings()).await;
    eventually("the account is paused", Duration::from_secs(10), || {
        standin.field("whatsapp.account", account, "paused") == json!(true)
    })
    .await;
    eventually(
        "every message is back in the queue",
        Duration::from_secs(10),
        || ids.iter().all(|id| state(&standin, *id) == "queued"),
    )
    .await;
    // Give the loop a few more polls: the paused account's messages are left alone.
    tokio::time::sleep(ms(500)).await;
    outbox.stop().await;

    assert_eq!(
        standin.write_count("whatsapp.account", account),
        1,
        "the pause is written once, not per message"
    );
    let reason = text(&standin.field("whatsapp.account", account, "paused_reason"));
    assert!(reason.to_lowercase().contains("access token"), "{reason}");
    assert!(standin
        .field("whatsapp.account", account, "paused_at")
        .is_string());
    for id in &ids {
        assert_eq!(state(&standin, *id), "queued");
        assert_eq!(
            standin.field("whatsapp.message", *id, "error_code"),
            json!(false),
            "not a failure of the message"
        );
    }
    assert!(sandbox
        .messages(&RecordFilter::default())
        .expect("record")
        .is_empty());
    sandbox_stop.cancel();
}

#[tokio::test]
async fn a_send_uses_the_accounts_graph_api_version() {
    let standin = OdooStandin::start().await;
    let (sandbox, sandbox_stop) = sandbox(SandboxConfig::default()).await;
    let account = standin.add_account("Main", PHONE_ID, 80);
    // the client is configured with v25.0 (Outbox::start); the account says v24.0
    standin.update(
        "whatsapp.account",
        account,
        json!({"graph_api_version": "v24.0"}),
    );
    let template = hello_template(&standin, account, "approved");
    let alice = standin.add_partner("Alice", "+33 6 12 34 59 01", true);
    let id = standin.queue_message_with(
        account,
        alice,
        json!({"message_type": "template", "template_id": template}),
    );
    let outbox = Outbox::start(&standin, &sandbox.base_url(), fast_settings()).await;
    eventually("the message is sent", Duration::from_secs(10), || {
        state(&standin, id) == "sent"
    })
    .await;
    outbox.stop().await;
    let record = sandbox.messages(&RecordFilter::default()).expect("record");
    assert_eq!(record.len(), 1);
    assert_eq!(record[0].graph_version, "v24.0");
    sandbox_stop.cancel();
}

#[tokio::test]
async fn a_malformed_graph_api_version_pauses_the_account_before_any_call() {
    let standin = OdooStandin::start().await;
    let (sandbox, sandbox_stop) = sandbox(SandboxConfig::default()).await;
    let account = standin.add_account("Main", PHONE_ID, 80);
    standin.update(
        "whatsapp.account",
        account,
        json!({"graph_api_version": "25.0"}),
    );
    let alice = standin.add_partner("Alice", "+33 6 12 34 59 02", true);
    open_window(&standin, account, "33612345902");
    // a file to upload first: the version is refused before the PDF is even rendered
    let document = standin.queue_message_with(
        account,
        alice,
        json!({"message_type": "document", "body": "Order S00004", "trigger": "order_details",
               "res_model": "sale.order", "res_id": 4, "report_name": "sale.report_saleorder",
               "media_filename": "S00004.pdf"}),
    );
    let outbox = Outbox::start(&standin, &sandbox.base_url(), fast_settings()).await;
    eventually("the account is paused", Duration::from_secs(10), || {
        standin.field("whatsapp.account", account, "paused") == json!(true)
    })
    .await;
    eventually(
        "the message is back in the queue",
        Duration::from_secs(10),
        || state(&standin, document) == "queued",
    )
    .await;
    outbox.stop().await;

    let reason = text(&standin.field("whatsapp.account", account, "paused_reason"));
    assert!(
        reason.contains("'25.0'")
            && reason.contains("set Graph API version on the WhatsApp account to e.g. v26.0"),
        "{reason}"
    );
    assert_eq!(
        standin.field("whatsapp.message", document, "error_code"),
        json!(false),
        "not a failure of the message"
    );
    assert!(standin.reports_served().is_empty());
    assert!(sandbox
        .messages(&RecordFilter::default())
        .expect("record")
        .is_empty());
    sandbox_stop.cancel();
}

#[tokio::test]
async fn messages_left_sending_are_proven_or_requeued_after_the_delay() {
    let standin = OdooStandin::start().await;
    let (sandbox, sandbox_stop) = sandbox(SandboxConfig::default()).await;
    let account = standin.add_account("Main", PHONE_ID, 80);
    let template = hello_template(&standin, account, "approved");
    let alice = standin.add_partner("Alice", "+33 6 12 34 56 08", true);
    let bob = standin.add_partner("Bob", "+33 6 12 34 56 09", true);
    let long_ago = odoo_time(Utc::now() - TimeDelta::hours(1));
    // Left by a crashed daemon, without proof.
    let lost = standin.queue_message_with(
        account,
        alice,
        json!({"message_type": "template", "template_id": template,
               "state": "sending", "claimed_at": long_ago}),
    );
    // Left by a crashed daemon, but the inbound side recorded its status (proof).
    let proven = standin.queue_message_with(
        account,
        bob,
        json!({"message_type": "template", "template_id": template, "state": "sending",
               "claimed_at": long_ago, "wamid": "wamid.PROVEN", "delivered_at": long_ago}),
    );
    let settings = OutboxSettings {
        reconcile_delay: Duration::from_secs(3),
        ..fast_settings()
    };
    let outbox = Outbox::start(&standin, &sandbox.base_url(), settings).await;
    eventually(
        "the proven message is delivered",
        Duration::from_secs(5),
        || state(&standin, proven) == "delivered",
    )
    .await;
    // Within the delay after start, the unproven one is left alone: its status may be on its way.
    assert_eq!(state(&standin, lost), "sending");
    eventually(
        "the unproven message is requeued and sent",
        Duration::from_secs(15),
        || state(&standin, lost) == "sent",
    )
    .await;
    outbox.stop().await;
    let sent = sandbox.messages(&RecordFilter::default()).expect("record");
    assert_eq!(sent.len(), 1, "only the unproven message is sent again");
    assert_eq!(
        sent[0].callback_data.as_deref(),
        Some(lost.to_string().as_str())
    );
    sandbox_stop.cancel();
}

#[tokio::test]
async fn results_wait_out_an_odoo_outage_and_nothing_is_lost() {
    let standin = OdooStandin::start().await;
    let (sandbox, sandbox_stop) = sandbox(SandboxConfig::default()).await;
    let account = standin.add_account("Main", PHONE_ID, 80);
    let template = hello_template(&standin, account, "approved");
    let ids: Vec<i64> = (0..20)
        .map(|i| {
            let p = standin.add_partner(&format!("P{i}"), &format!("+33 6 12 34 59 {i:02}"), true);
            standin.queue_message_with(
                account,
                p,
                json!({"message_type": "template", "template_id": template}),
            )
        })
        .collect();
    // Results are held for two seconds, long enough to take Odoo away in between.
    let settings = OutboxSettings {
        flush_interval: Duration::from_secs(2),
        ..fast_settings()
    };
    let outbox = Outbox::start(&standin, &sandbox.base_url(), settings).await;
    eventually("Meta accepted all 20", Duration::from_secs(10), || {
        sandbox
            .messages(&RecordFilter::default())
            .map(|m| m.len() == 20)
            .unwrap_or(false)
    })
    .await;
    standin.go_down(support::Outage::Refuse).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    standin.come_back().await;
    eventually("every result is written", Duration::from_secs(30), || {
        ids.iter().all(|id| state(&standin, *id) == "sent")
    })
    .await;
    outbox.stop().await;
    assert_eq!(
        sandbox
            .messages(&RecordFilter::default())
            .expect("record")
            .len(),
        20,
        "nothing was sent twice"
    );
    for id in &ids {
        assert!(standin.write_count("whatsapp.message", *id) <= 2);
    }
    sandbox_stop.cancel();
}

#[tokio::test]
async fn at_shutdown_messages_not_sent_yet_go_back_to_the_queue() {
    let standin = OdooStandin::start().await;
    let (sandbox, sandbox_stop) = sandbox(SandboxConfig::default()).await;
    let account = standin.add_account("Main", PHONE_ID, 80);
    let template = hello_template(&standin, account, "approved");
    let alice = standin.add_partner("Alice", "+33 6 12 34 56 10", true);
    // Two for the same recipient: the second waits its 6.5 s turn in memory.
    let first = standin.queue_message_with(
        account,
        alice,
        json!({"message_type": "template", "template_id": template}),
    );
    let second = standin.queue_message_with(
        account,
        alice,
        json!({"message_type": "template", "template_id": template}),
    );
    let outbox = Outbox::start(&standin, &sandbox.base_url(), fast_settings()).await;
    eventually("the first is sent", Duration::from_secs(10), || {
        state(&standin, first) == "sent"
    })
    .await;
    assert_eq!(state(&standin, second), "sending", "held for the pair rate");
    outbox.stop().await;
    assert_eq!(state(&standin, second), "queued");
    assert_eq!(
        standin.field("whatsapp.message", second, "attempt_count"),
        json!(0),
        "not counted as an attempt"
    );
    assert_eq!(
        sandbox
            .messages(&RecordFilter::default())
            .expect("record")
            .len(),
        1
    );
    sandbox_stop.cancel();
}

#[tokio::test]
async fn a_refused_result_write_still_records_the_wamid_so_nothing_is_sent_twice() {
    let standin = OdooStandin::start().await;
    let (sandbox, sandbox_stop) = sandbox(SandboxConfig::default()).await;
    let (_, id) = hello_to_alice(&standin);
    // Results are written a while after the send, so the faults below meet the result write.
    let settings = OutboxSettings {
        flush_interval: ms(3000),
        ..fast_settings()
    };
    let outbox = Outbox::start(&standin, &sandbox.base_url(), settings).await;
    eventually("the message is claimed", Duration::from_secs(10), || {
        state(&standin, id) == "sending"
    })
    .await;
    // A custom module's constraint refuses the result: the batched write and the one-by-one
    // write both fail (not retryable).
    let refused = Fault::Rpc {
        name: "odoo.exceptions.ValidationError".into(),
        message: "A custom constraint refused the change".into(),
    };
    standin.fail_next_call("whatsapp.message", "write", 2, refused);
    eventually(
        "the message leaves 'sending'",
        Duration::from_secs(10),
        || state(&standin, id) == "sent",
    )
    .await;
    outbox.stop().await;

    let record = standin.record("whatsapp.message", id).expect("message");
    let accepted = sandbox
        .messages(&RecordFilter {
            callback_data: Some(id.to_string()),
            ..RecordFilter::default()
        })
        .expect("sandbox record");
    assert_eq!(accepted.len(), 1);
    assert_eq!(
        text(&record["wamid"]),
        accepted[0].wamid,
        "the wamid is written"
    );
    assert_eq!(
        record["sent_at"],
        json!(false),
        "the refused fields are not"
    );
    sandbox_stop.cancel();
}

#[tokio::test]
async fn the_daily_messaging_limit_holds_templates_to_new_customers_only() {
    let standin = OdooStandin::start().await;
    let (sandbox, sandbox_stop) = sandbox(SandboxConfig::default()).await;
    let account = standin.add_account("Main", PHONE_ID, 80);
    standin.update(
        "whatsapp.account",
        account,
        json!({"messaging_limit": "TIER_250"}),
    );
    let template = hello_template(&standin, account, "approved");
    // 250 customers reached by templates in the last 24 hours, the oldest 23 hours ago.
    let oldest = (Utc::now() - TimeDelta::hours(23)).trunc_subsecs(0);
    for i in 0..250 {
        standin.insert(
            "whatsapp.message",
            json!({"account_id": account, "direction": "out", "message_type": "template",
                   "template_id": template, "state": if i % 2 == 0 { "delivered" } else { "read" },
                   "to_e164": format!("+336100{i:05}"),
                   "sent_at": odoo_time(oldest + TimeDelta::minutes(i))}),
        );
    }
    let carol = standin.add_partner("Carol", "+33 6 12 34 56 90", true);
    let dave = standin.add_partner("Dave", "+33 6 10 00 00 17", true);
    let queue = |partner: i64| {
        standin.queue_message_with(
            account,
            partner,
            json!({"message_type": "template", "template_id": template,
                   "res_model": "res.partner", "res_id": partner}),
        )
    };
    let to_carol = queue(carol);
    let to_dave = queue(dave);

    let outbox = Outbox::start(&standin, &sandbox.base_url(), fast_settings()).await;
    eventually(
        "the template to a customer already reached is sent",
        Duration::from_secs(10),
        || state(&standin, to_dave) == "sent",
    )
    .await;
    eventually(
        "the template to a new customer is held",
        Duration::from_secs(10),
        || text(&standin.field("whatsapp.message", to_carol, "error_code")) == "messaging_limit",
    )
    .await;
    outbox.stop().await;

    let held = standin
        .record("whatsapp.message", to_carol)
        .expect("message");
    assert_eq!(text(&held["state"]), "queued");
    let until = odoo_time(oldest + TimeDelta::hours(24));
    assert_eq!(
        text(&held["next_attempt_at"]),
        until,
        "due when the oldest customer leaves the 24 hours"
    );
    let help = text(&held["error_help"]);
    assert!(
        help.contains("daily limit of 250 unique customers"),
        "{help}"
    );
    assert!(help.contains(&format!("after {until} UTC")), "{help}");
    assert!(help.contains("verify the business"), "{help}");
    assert!(
        matches!(held["attempt_count"], Value::Bool(false) | Value::Null)
            || held["attempt_count"] == json!(0),
        "a held message is not an attempt: {}",
        held["attempt_count"]
    );
    let to_sandbox = |id: i64| {
        sandbox
            .messages(&RecordFilter {
                callback_data: Some(id.to_string()),
                ..RecordFilter::default()
            })
            .expect("sandbox records")
            .len()
    };
    assert_eq!(to_sandbox(to_carol), 0, "nothing reached Meta");
    assert_eq!(to_sandbox(to_dave), 1);
    sandbox_stop.cancel();
}
