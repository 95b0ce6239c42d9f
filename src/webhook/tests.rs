//! The receiver over real HTTP on 127.0.0.1, with an in-memory event store.

use super::*;
use crate::secret::Secret;
use crate::whatsapp::signature::sign;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Default)]
struct MemoryStore {
    events: Mutex<Vec<NewEvent>>,
    calls: Mutex<usize>,
    down: AtomicBool,
}

impl EventStore for Arc<MemoryStore> {
    async fn store(&self, events: Vec<NewEvent>) -> Result<Vec<i64>, StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("connection refused".into()));
        }
        *self.calls.lock().unwrap() += 1;
        let mut all = self.events.lock().unwrap();
        let first = all.len() as i64 + 1;
        let n = events.len() as i64;
        all.extend(events);
        Ok((first..first + n).collect())
    }
}

struct Server {
    url: String,
    store: Arc<MemoryStore>,
    http: reqwest::Client,
}

const SECRET: &str = "app-secret-1";

async fn start(config: WebhookConfig, keys: Option<Keys>) -> Server {
    let store = Arc::new(MemoryStore::default());
    let tracker = TaskTracker::new();
    let ingest = Ingest::spawn(
        store.clone(),
        config.ingest.clone(),
        &tracker,
        CancellationToken::new(),
    );
    let keys = match keys {
        Some(keys) => KeyCache::fixed(keys),
        None => {
            // A source that never answers: the cache stays empty.
            struct Never;
            impl KeySource for Never {
                async fn load(&self) -> Result<Vec<AccountKey>, KeyError> {
                    std::future::pending().await
                }
            }
            keys::spawn_refresher(
                Never,
                RefreshConfig::default(),
                &tracker,
                CancellationToken::new(),
            )
        }
    };
    let app = router(WebhookState::new(keys, ingest, &config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}{PATH}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Server {
        url,
        store,
        http: reqwest::Client::new(),
    }
}

fn keys() -> Keys {
    Keys::new(vec![AccountKey {
        account_id: 3,
        phone_number_id: Some("106540352242922".into()),
        waba_id: Some("WABA".into()),
        app_secret: Some(Secret::new(SECRET)),
        verify_token: Some(Secret::new("verify-me")),
    }])
}

const BODY: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"WABA","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"statuses":[{"id":"wamid.X","status":"sent","timestamp":"1750857384","recipient_id":"4915112345678"}]}}]}]}"#;

impl Server {
    async fn post(&self, body: &[u8], signature: Option<String>) -> reqwest::Response {
        let mut request = self.http.post(&self.url).body(body.to_vec());
        if let Some(signature) = signature {
            request = request.header(SIGNATURE_HEADER, signature);
        }
        request.send().await.unwrap()
    }

    async fn post_signed(&self, body: &[u8]) -> reqwest::Response {
        self.post(body, Some(sign(&Secret::new(SECRET), body)))
            .await
    }

    fn stored(&self) -> Vec<NewEvent> {
        self.store.events.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn a_signed_body_is_stored_byte_for_byte_before_200() {
    let server = start(WebhookConfig::default(), Some(keys())).await;
    let response = server.post_signed(BODY.as_bytes()).await;
    assert_eq!(response.status(), 200);
    let stored = server.stored();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].raw_body, BODY);
    assert_eq!(stored[0].account_id, Some(3));
    assert_eq!(stored[0].processing_error, None);
}

#[tokio::test]
async fn bad_or_missing_signatures_get_401_and_store_nothing() {
    let server = start(WebhookConfig::default(), Some(keys())).await;
    let forged = sign(&Secret::new("wrong"), BODY.as_bytes());
    let good_for_other_body = sign(&Secret::new(SECRET), b"{}");
    for signature in [
        None,
        Some(forged),
        Some(good_for_other_body),
        Some("sha256=zz".into()),
        Some("garbage".into()),
    ] {
        let response = server.post(BODY.as_bytes(), signature.clone()).await;
        assert_eq!(response.status(), 401, "{signature:?}");
    }
    assert!(server.stored().is_empty());
}

#[tokio::test]
async fn signed_broken_json_is_stored_with_its_error_and_200() {
    let server = start(WebhookConfig::default(), Some(keys())).await;
    let response = server.post_signed(b"{\"entry\": [").await;
    assert_eq!(response.status(), 200);
    let stored = server.stored();
    assert_eq!(stored.len(), 1);
    assert!(stored[0]
        .processing_error
        .as_deref()
        .unwrap()
        .contains("not valid JSON"));
    assert_eq!(stored[0].account_id, None);
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let config = WebhookConfig {
        max_body_bytes: 1024,
        ..WebhookConfig::default()
    };
    let server = start(config, Some(keys())).await;
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(2000));
    let response = server.post_signed(big.as_bytes()).await;
    assert_eq!(response.status(), 413);
    assert!(server.stored().is_empty());
    assert_eq!(server.post_signed(BODY.as_bytes()).await.status(), 200);
}

#[tokio::test]
async fn store_outage_gets_503_then_recovers() {
    let server = start(WebhookConfig::default(), Some(keys())).await;
    server.store.down.store(true, Ordering::SeqCst);
    let response = server.post_signed(BODY.as_bytes()).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    server.store.down.store(false, Ordering::SeqCst);
    assert_eq!(server.post_signed(BODY.as_bytes()).await.status(), 200);
    assert_eq!(server.stored().len(), 1);
}

#[tokio::test]
async fn without_keys_everything_waits_with_503() {
    let server = start(WebhookConfig::default(), None).await;
    assert_eq!(server.post_signed(BODY.as_bytes()).await.status(), 503);
    let response = server
        .http
        .get(format!(
            "{}?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1",
            server.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert!(server.stored().is_empty());
}

#[tokio::test]
async fn without_any_app_secret_posts_get_503() {
    let server = start(
        WebhookConfig::default(),
        Some(Keys::new(vec![AccountKey {
            account_id: 1,
            phone_number_id: None,
            waba_id: None,
            app_secret: None,
            verify_token: None,
        }])),
    )
    .await;
    assert_eq!(server.post_signed(BODY.as_bytes()).await.status(), 503);
    assert!(server.stored().is_empty());
}

#[tokio::test]
async fn handshake_echoes_the_challenge_as_plain_text_or_403() {
    let server = start(WebhookConfig::default(), Some(keys())).await;
    let get = |query: &str| {
        let url = format!("{}?{query}", server.url);
        let http = server.http.clone();
        async move { http.get(url).send().await.unwrap() }
    };
    let ok = get("hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444").await;
    assert_eq!(ok.status(), 200);
    assert!(ok.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(ok.text().await.unwrap(), "1158201444");
    for query in [
        "hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1",
        "hub.mode=other&hub.verify_token=verify-me&hub.challenge=1",
        "hub.verify_token=verify-me&hub.challenge=1",
        "",
    ] {
        assert_eq!(get(query).await.status(), 403, "{query}");
    }
}

#[tokio::test]
async fn concurrent_posts_share_create_calls() {
    let server = Arc::new(start(WebhookConfig::default(), Some(keys())).await);
    let mut handles = Vec::new();
    for i in 0..64 {
        let server = server.clone();
        handles.push(tokio::spawn(async move {
            let body = format!("{{\"n\":{i}}}");
            server.post_signed(body.as_bytes()).await.status()
        }));
    }
    for h in handles {
        assert_eq!(h.await.unwrap(), 200);
    }
    assert_eq!(server.stored().len(), 64);
    let calls = *server.store.calls.lock().unwrap();
    assert!(calls < 64, "{calls} create calls for 64 events");
}
