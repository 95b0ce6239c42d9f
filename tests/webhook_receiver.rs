//! The webhook receiver against the Odoo stand-in, over real HTTP on 127.0.0.1: a signed body is
//! stored in `whatsapp.webhook.event` before the 200, concurrent bodies share `create` calls,
//! a bad signature stores nothing, an Odoo outage answers 503.

mod support;

use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use support::{client_config, OdooStandin, Outage};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use whatsapp_sidecar::odoo::OdooClient;
use whatsapp_sidecar::secret::Secret;
use whatsapp_sidecar::webhook::{
    self, Ingest, OdooEventStore, OdooKeySource, WebhookConfig, WebhookState,
};
use whatsapp_sidecar::whatsapp::signature::{sign, SIGNATURE_HEADER};

const EVENT: &str = "whatsapp.webhook.event";
/// What `OdooStandin::add_account` sets.
const APP_SECRET: &str = "sandbox-secret";
const VERIFY_TOKEN: &str = "sandbox-verify";

struct Receiver {
    odoo: OdooStandin,
    client: OdooClient,
    url: String,
    http: reqwest::Client,
    account_id: i64,
    wake: Arc<tokio::sync::Notify>,
    _shutdown: tokio_util::sync::DropGuard,
}

async fn start() -> Receiver {
    let odoo = OdooStandin::start().await;
    let account_id = odoo.add_account("Main", "106540352242922", 80);
    let mut cfg = client_config(&odoo);
    cfg.max_retries = 0;
    cfg.timeout = Duration::from_secs(2);
    cfg.max_concurrent_requests = 8;
    let client = OdooClient::new(cfg).expect("client");
    let tracker = TaskTracker::new();
    let shutdown = CancellationToken::new();
    let config = WebhookConfig::default();
    let wake = Arc::new(tokio::sync::Notify::new());
    let store = OdooEventStore::new(client.clone()).notify(wake.clone());
    let inbound_client = client.clone();
    let ingest = Ingest::spawn(store, config.ingest.clone(), &tracker, shutdown.clone());
    let keys = webhook::spawn_refresher(
        OdooKeySource::new(client),
        config.keys.clone(),
        &tracker,
        shutdown.clone(),
    );
    assert!(keys.loaded().await.is_some());
    let app = webhook::router(WebhookState::new(keys, ingest, &config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}{}", listener.local_addr().unwrap(), webhook::PATH);
    let token = shutdown.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { token.cancelled().await })
            .await
    });
    Receiver {
        odoo,
        client: inbound_client,
        url,
        http: reqwest::Client::new(),
        account_id,
        wake,
        _shutdown: shutdown.drop_guard(),
    }
}

fn status_body(n: usize) -> String {
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"waba-106540352242922","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550100","phone_number_id":"106540352242922"}},"statuses":[{{"id":"wamid.N{n}","status":"delivered","timestamp":"1750857384","recipient_id":"2250700000001"}}]}}}}]}}]}}"#
    )
}

impl Receiver {
    async fn post(&self, body: &str, secret: Option<&str>) -> reqwest::Response {
        let mut request = self.http.post(&self.url).body(body.to_owned());
        if let Some(secret) = secret {
            request = request.header(
                SIGNATURE_HEADER,
                sign(&Secret::new(secret), body.as_bytes()),
            );
        }
        request.send().await.expect("request")
    }

    fn events(&self) -> Vec<serde_json::Map<String, Value>> {
        self.odoo
            .search(EVENT, json!([]))
            .into_iter()
            .filter_map(|id| self.odoo.record(EVENT, id))
            .collect()
    }
}

#[tokio::test]
async fn a_signed_post_is_stored_before_its_200() {
    let r = start().await;
    let body = status_body(1);
    let response = r.post(&body, Some(APP_SECRET)).await;
    assert_eq!(response.status(), 200);
    // Stored already when the 200 arrived: no waiting here.
    let events = r.events();
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event["raw_body"], json!(body));
    assert_eq!(event["signature_ok"], json!(true));
    assert_eq!(event["processed"], json!(false));
    assert_eq!(event["account_id"][0], json!(r.account_id));
    // Inbound processing is told at once.
    tokio::time::timeout(Duration::from_secs(1), r.wake.notified())
        .await
        .expect("inbound processing notified");
}

#[tokio::test]
async fn bad_or_missing_signatures_get_401_and_nothing_is_stored() {
    let r = start().await;
    let body = status_body(1);
    assert_eq!(r.post(&body, Some("not-the-secret")).await.status(), 401);
    assert_eq!(r.post(&body, None).await.status(), 401);
    let tampered = r
        .http
        .post(&r.url)
        .header(
            SIGNATURE_HEADER,
            sign(&Secret::new(APP_SECRET), body.as_bytes()),
        )
        .body(body.replace("delivered", "read"))
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status(), 401);
    assert!(r.events().is_empty());
    assert_eq!(r.odoo.calls(EVENT, "create"), 0);
}

#[tokio::test]
async fn signed_bad_json_is_stored_with_its_error_and_answered_200() {
    let r = start().await;
    let response = r.post("{\"entry\": [", Some(APP_SECRET)).await;
    assert_eq!(response.status(), 200);
    let events = r.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["processed"], json!(true));
    let error = events[0]["processing_error"].as_str().unwrap_or("");
    assert!(error.contains("not valid JSON"), "{error}");
}

#[tokio::test]
async fn concurrent_posts_share_create_calls() {
    let r = Arc::new(start().await);
    const N: usize = 200;
    let mut handles = Vec::new();
    for n in 0..N {
        let r = r.clone();
        handles.push(tokio::spawn(async move {
            r.post(&status_body(n), Some(APP_SECRET)).await.status()
        }));
    }
    for h in handles {
        assert_eq!(h.await.unwrap(), 200);
    }
    assert_eq!(r.events().len(), N);
    let creates = r.odoo.calls(EVENT, "create");
    assert!(
        creates as usize <= N / 4,
        "{creates} create calls for {N} concurrent webhooks"
    );
}

#[tokio::test]
async fn odoo_outage_answers_503_and_meta_s_retry_is_stored_after() {
    let r = start().await;
    r.odoo.go_down(Outage::Refuse).await;
    let body = status_body(7);
    let response = r.post(&body, Some(APP_SECRET)).await;
    assert_eq!(response.status(), 503);
    r.odoo.come_back().await;
    assert!(r.events().is_empty());
    assert_eq!(r.post(&body, Some(APP_SECRET)).await.status(), 200);
    assert_eq!(r.events().len(), 1);
}

#[tokio::test]
async fn verification_handshake_uses_the_accounts_verify_token() {
    let r = start().await;
    let get = |token: &str| {
        let url = format!(
            "{}?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444",
            r.url
        );
        let http = r.http.clone();
        async move { http.get(url).send().await.unwrap() }
    };
    let ok = get(VERIFY_TOKEN).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "1158201444");
    assert_eq!(get("wrong").await.status(), 403);
}

#[tokio::test]
async fn concurrent_duplicated_status_webhooks_for_one_message_end_in_the_right_state() {
    let r = Arc::new(start().await);
    let partner = r.odoo.add_partner("Camille", "+33 6 12 34 56 78", true);
    let msg = r.odoo.queue_message(r.account_id, partner, "Hello");
    r.odoo.update(
        "whatsapp.message",
        msg,
        json!({"state": "sent", "wamid": "wamid.SAME", "sent_at": "2025-06-25 13:29:44"}),
    );
    let one = |status: &str, at: i64| {
        format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"waba-106540352242922","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550100","phone_number_id":"106540352242922"}},"statuses":[{{"id":"wamid.SAME","status":"{status}","timestamp":"{at}","recipient_id":"33612345678"}}]}}}}]}}]}}"#
        )
    };
    // Each status five times (Meta delivers at least once), all at once, in no order.
    let mut bodies = Vec::new();
    for _ in 0..5 {
        bodies.push(one("read", 1_750_858_190));
        bodies.push(one("sent", 1_750_858_185));
        bodies.push(one("delivered", 1_750_858_187));
    }
    let mut handles = Vec::new();
    for body in bodies {
        let r = r.clone();
        handles.push(tokio::spawn(async move {
            r.post(&body, Some(APP_SECRET)).await.status()
        }));
    }
    for h in handles {
        assert_eq!(h.await.unwrap(), 200, "no webhook is refused");
    }
    let ctx = whatsapp_sidecar::inbound::InboundContext {
        odoo: r.client.clone(),
        config: whatsapp_sidecar::inbound::InboundConfig::default(),
        wake: r.wake.clone(),
        bus: Default::default(),
        media: None,
        lookups: Default::default(),
        received: None,
        metrics: Default::default(),
    };
    let report = whatsapp_sidecar::inbound::step(
        &ctx,
        whatsapp_sidecar::inbound::Pass::New,
        chrono::Utc::now(),
    )
    .await
    .expect("step");
    assert_eq!((report.events, report.done), (15, 15));
    let m = r.odoo.record("whatsapp.message", msg).unwrap();
    assert_eq!(m["state"], "read");
    assert_eq!(m["delivered_at"], "2025-06-25 13:29:47");
    assert_eq!(m["read_at"], "2025-06-25 13:29:50");
    assert_eq!(r.odoo.write_count("whatsapp.message", msg), 1);
}
