//! Inbound end to end with the sandbox playing Meta: messages injected in the sandbox arrive as
//! signed webhooks at the receiver, are stored in the Odoo stand-in and processed by the loop;
//! a received file is downloaded from the sandbox's media endpoint into an attachment.

mod support;

use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use support::{client_config, OdooStandin};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use whatsapp_sidecar::inbound::{
    self, InboundConfig, InboundContext, MediaConfig, MediaFetch, Pass,
};
use whatsapp_sidecar::odoo::OdooClient;
use whatsapp_sidecar::sandbox::{InjectRequest, ReplyRef, SandboxConfig, SandboxHandle};
use whatsapp_sidecar::secret::Secret;
use whatsapp_sidecar::webhook::{
    self, Ingest, OdooEventStore, OdooKeySource, WebhookConfig, WebhookState,
};
use whatsapp_sidecar::whatsapp::media::{MediaKind, MediaUpload};
use whatsapp_sidecar::whatsapp::{AccountHandle, ClientConfig, CloudClient};

const MESSAGE: &str = "whatsapp.message";
/// The sandbox's default number, and the app secret `OdooStandin::add_account` sets.
const PHONE_ID: &str = "sandbox-0001";
const APP_SECRET: &str = "sandbox-secret";

struct World {
    odoo: OdooStandin,
    sandbox: SandboxHandle,
    ctx: InboundContext,
    account: i64,
    shutdown: CancellationToken,
}

async fn start() -> World {
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let odoo = OdooStandin::start().await;
    let account = odoo.add_account("Main", PHONE_ID, 80);
    let mut cfg = client_config(&odoo);
    cfg.max_retries = 0;
    let client = OdooClient::new(cfg).expect("Odoo client");

    // The receiver, on 127.0.0.1.
    let wake = Arc::new(tokio::sync::Notify::new());
    let config = WebhookConfig::default();
    let store = OdooEventStore::new(client.clone()).notify(wake.clone());
    let ingest = Ingest::spawn(store, config.ingest.clone(), &tracker, shutdown.clone());
    let keys = webhook::spawn_refresher(
        OdooKeySource::new(client.clone()),
        config.keys.clone(),
        &tracker,
        shutdown.clone(),
    );
    keys.loaded().await.expect("keys");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let callback = format!("http://{}{}", listener.local_addr().unwrap(), webhook::PATH);
    let app = webhook::router(WebhookState::new(keys, ingest, &config));
    let token = shutdown.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { token.cancelled().await })
            .await
    });

    // Meta's side.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sandbox = SandboxHandle::start(listener, SandboxConfig::default(), shutdown.clone())
        .await
        .expect("sandbox");
    sandbox.set_callback(
        Some(callback.parse().unwrap()),
        Some(Secret::new(APP_SECRET)),
    );
    let graph = CloudClient::new(ClientConfig::new(
        sandbox.base_url().parse().unwrap(),
        "v25.0",
    ))
    .expect("cloud client");

    let inbound_config = InboundConfig {
        min_batch_interval: Duration::from_millis(20),
        ..InboundConfig::default()
    };
    let ctx = InboundContext {
        odoo: client,
        config: inbound_config,
        wake,
        bus: Default::default(),
        media: Some(MediaFetch {
            client: graph,
            config: MediaConfig::default(),
        }),
        lookups: Default::default(),
        received: None,
        metrics: Default::default(),
    };
    World {
        odoo,
        sandbox,
        ctx,
        account,
        shutdown,
    }
}

impl World {
    async fn until(&self, what: &str, mut done: impl FnMut() -> bool) {
        let waited = async {
            while !done() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(10), waited)
            .await
            .is_err()
        {
            panic!("timed out waiting for {what}");
        }
    }

    fn received(&self) -> Vec<serde_json::Map<String, Value>> {
        self.odoo
            .search(MESSAGE, json!([["direction", "=", "in"]]))
            .into_iter()
            .filter_map(|id| self.odoo.record(MESSAGE, id))
            .collect()
    }
}

#[tokio::test]
async fn injected_messages_flow_from_the_sandbox_into_odoo() {
    let w = start().await;
    let partner = w.odoo.add_partner("Camille", "+33 6 12 34 56 78", true);
    let loop_task = tokio::spawn(inbound::run(w.ctx.clone(), w.shutdown.clone()));

    w.sandbox
        .inject(&InjectRequest {
            from: "+33612345678".into(),
            name: Some("Camille".into()),
            text: Some("Bonjour".into()),
            ..Default::default()
        })
        .expect("inject text");
    w.until("the received text", || w.received().len() == 1)
        .await;
    let m = &w.received()[0];
    assert_eq!(m["body"], "Bonjour");
    assert_eq!(m["partner_id"][0], json!(partner));
    assert_eq!(m["account_id"][0], json!(w.account));
    let conversation = m["conversation_id"][0].as_i64().expect("conversation");
    let c = w
        .odoo
        .record("whatsapp.conversation", conversation)
        .unwrap();
    assert_eq!(c["wa_id"], "33612345678");
    assert_ne!(c["window_expires_at"], json!(false));

    w.sandbox
        .inject(&InjectRequest {
            from: "+33612345678".into(),
            button_reply: Some(ReplyRef {
                id: "confirm_order:7".into(),
                title: Some("Confirm".into()),
            }),
            ..Default::default()
        })
        .expect("inject button reply");
    w.sandbox
        .inject(&InjectRequest {
            from: "+33612345678".into(),
            text: Some("STOP".into()),
            ..Default::default()
        })
        .expect("inject STOP");
    w.until("the opt-out", || {
        w.odoo.field("res.partner", partner, "whatsapp_opt_in") == json!(false)
    })
    .await;
    let button = w
        .received()
        .into_iter()
        .find(|m| m["message_type"] == "interactive")
        .expect("button reply recorded");
    assert_eq!(button["button_payload"], "confirm_order:7");
    assert_eq!(button["button_title"], "Confirm");
    // The confirmation is queued after the opt-out is written (a call later in the batch).
    let confirmations = || {
        w.odoo.search(
            MESSAGE,
            json!([["trigger", "=", "opt_out"], ["state", "=", "queued"]]),
        )
    };
    w.until("the confirmation queued", || !confirmations().is_empty())
        .await;
    assert_eq!(confirmations().len(), 1);

    w.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), loop_task)
        .await
        .expect("the loop stops")
        .unwrap();
}

#[tokio::test]
async fn the_loop_downloads_a_received_file_as_soon_as_its_message_is_stored() {
    let mut w = start().await;
    let Some(mut fetch) = w.ctx.media.clone() else {
        panic!("media fetch configured")
    };
    // No periodic pass during the test: only the batch that brings the file can start it.
    fetch.config.retry_interval = std::time::Duration::from_secs(3600);
    w.ctx.media = Some(fetch.clone());
    let png: Vec<u8> = [&b"\x89PNG\r\n\x1a\n"[..], &[0u8; 32]].concat();
    let handle = AccountHandle::new(PHONE_ID, "sandbox-waba", Secret::new("sandbox-token"));
    let upload = MediaUpload::new(MediaKind::Image, "image/png", "p.png", png).unwrap();
    let media_id = fetch
        .client
        .upload_media(&handle, &upload)
        .await
        .expect("upload to the sandbox");
    let loop_task = tokio::spawn(inbound::run(w.ctx.clone(), w.shutdown.clone()));
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "sandbox-waba", "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000001", "phone_number_id": PHONE_ID},
            "contacts": [{"profile": {"name": "Camille"}, "wa_id": "33612345678"}],
            "messages": [{"from": "33612345678", "id": "wamid.IMG2", "timestamp": chrono::Utc::now().timestamp().to_string(),
                          "type": "image", "image": {"id": media_id, "mime_type": "image/png"}}]}}]}]})
    .to_string();
    w.odoo.insert(
        "whatsapp.webhook.event",
        json!({"raw_body": body, "signature_ok": true}),
    );
    w.ctx.wake.notify_one();
    w.until("the file is downloaded", || {
        w.received()
            .first()
            .is_some_and(|m| m["media_attachment_id"].is_array())
    })
    .await;
    w.shutdown.cancel();
    tokio::time::timeout(std::time::Duration::from_secs(5), loop_task)
        .await
        .expect("the loop and its download task stop")
        .unwrap();
}

#[tokio::test]
async fn a_received_file_is_downloaded_into_an_attachment() {
    let w = start().await;
    let Some(fetch) = w.ctx.media.clone() else {
        panic!("media fetch configured")
    };
    // Put a file where Meta keeps received media (the sandbox's media store).
    let png: Vec<u8> = [&b"\x89PNG\r\n\x1a\n"[..], &[0u8; 64]].concat();
    let handle = AccountHandle::new(PHONE_ID, "sandbox-waba", Secret::new("sandbox-token"));
    let upload = MediaUpload::new(MediaKind::Image, "image/png", "photo.png", png.clone()).unwrap();
    let media_id = fetch
        .client
        .upload_media(&handle, &upload)
        .await
        .expect("upload to the sandbox");

    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "sandbox-waba", "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000001", "phone_number_id": PHONE_ID},
            "contacts": [{"profile": {"name": "Camille"}, "wa_id": "33612345678"}],
            "messages": [{"from": "33612345678", "id": "wamid.IMG", "timestamp": chrono::Utc::now().timestamp().to_string(),
                          "type": "image", "image": {"id": media_id, "mime_type": "image/png", "caption": "the parcel"}}]}}]}]})
    .to_string();
    w.odoo.insert(
        "whatsapp.webhook.event",
        json!({"raw_body": body, "signature_ok": true}),
    );
    let report = inbound::step(&w.ctx, Pass::New, chrono::Utc::now())
        .await
        .expect("step");
    assert_eq!(report.media_received, 1);
    let stored = inbound::fetch_media(&w.ctx.odoo, &fetch, chrono::Utc::now())
        .await
        .expect("media pass");
    assert_eq!(stored, 1);

    let m = &w.received()[0];
    assert_eq!(m["message_type"], "image");
    assert_eq!(m["body"], "the parcel");
    let attachment = m["media_attachment_id"][0]
        .as_i64()
        .expect("attachment linked");
    let a = w.odoo.record("ir.attachment", attachment).unwrap();
    assert_eq!(a["res_model"], MESSAGE);
    assert_eq!(a["mimetype"], "image/png");
    use base64::Engine;
    let datas = a["datas"].as_str().unwrap_or("");
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(datas)
            .unwrap(),
        png
    );
    // Nothing left to fetch.
    assert_eq!(
        inbound::fetch_media(&w.ctx.odoo, &fetch, chrono::Utc::now())
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn a_file_meta_no_longer_has_is_given_up_with_the_reason() {
    let w = start().await;
    let Some(fetch) = w.ctx.media.clone() else {
        panic!("media fetch configured")
    };
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "sandbox-waba", "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp",
            "metadata": {"phone_number_id": PHONE_ID},
            "messages": [{"from": "33612345678", "id": "wamid.GONE", "timestamp": chrono::Utc::now().timestamp().to_string(),
                          "type": "document", "document": {"id": "424242424242", "mime_type": "application/pdf", "filename": "PO.pdf"}}]}}]}]})
    .to_string();
    w.odoo.insert(
        "whatsapp.webhook.event",
        json!({"raw_body": body, "signature_ok": true}),
    );
    inbound::step(&w.ctx, Pass::New, chrono::Utc::now())
        .await
        .expect("step");
    let stored = inbound::fetch_media(&w.ctx.odoo, &fetch, chrono::Utc::now())
        .await
        .expect("media pass");
    assert_eq!(stored, 0);
    let m = &w.received()[0];
    assert_eq!(m["media_attachment_id"], json!(false));
    assert_eq!(m["state"], "received", "the message itself stays");
    let details = m["error_details"].as_str().unwrap_or("");
    assert!(details.contains("could not be downloaded"), "{details}");
}
