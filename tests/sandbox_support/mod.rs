//! Shared helpers of the sandbox tests: start a sandbox on 127.0.0.1:0, a webhook receiver that
//! records what it gets (and can answer errors first), and small request helpers.

#![allow(dead_code)]

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use whatsapp_sidecar::sandbox::{SandboxConfig, SandboxHandle};

pub const SECRET: &str = "test-app-secret";
pub const VERIFY_TOKEN: &str = "test-verify-token";
pub const PN: &str = "sandbox-0001";

/// A config with fast webhooks and a generous pair rate, for tests that are not about limits.
pub fn fast_config() -> SandboxConfig {
    let mut config = SandboxConfig::default();
    config.webhooks.sent_delay_ms = 5;
    config.webhooks.delivered_delay_ms = 60;
    config.webhooks.read_delay_ms = 120;
    config.webhooks.jitter_ms = 0;
    config.webhooks.retry_initial_ms = 20;
    config.webhooks.retry_max_delay_ms = 100;
    config.webhooks.app_secret = Some(SECRET.into());
    config.limits.pair_rate_burst = 1000;
    config.phone_numbers[0].throughput_mps = 10_000;
    config
}

pub struct Running {
    pub handle: SandboxHandle,
    pub shutdown: CancellationToken,
    pub http: reqwest::Client,
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.handle.base_url(), path)
    }

    /// POST /v25.0/sandbox-0001/messages with a token.
    pub async fn send(&self, body: Value) -> (StatusCode, Value) {
        self.send_at("v25.0", body).await
    }

    pub async fn send_at(&self, version: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url(&format!("/{version}/{PN}/messages")))
            .bearer_auth("any-token")
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
        (status, response.json().await.unwrap())
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth("any-token")
            .send()
            .await
            .unwrap();
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
        (status, response.json().await.unwrap())
    }

    pub async fn post_json(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
        (status, response.json().await.unwrap())
    }

    /// Injects a text from `from` (opens the window).
    pub async fn inject_text(&self, from: &str, text: &str) -> Value {
        let (status, body) = self
            .post_json("/sandbox/inject", json!({"from": from, "text": text}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.handle.stopped().await.unwrap();
    }
}

pub async fn start(config: SandboxConfig) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shutdown = CancellationToken::new();
    let handle = SandboxHandle::start(listener, config, shutdown.clone())
        .await
        .unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    Running {
        handle,
        shutdown,
        http,
    }
}

pub fn text(to: &str, body: &str) -> Value {
    json!({"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": body}})
}

pub fn hello(to: &str) -> Value {
    json!({"messaging_product": "whatsapp", "to": to, "type": "template",
           "template": {"name": "sidecar_hello", "language": {"code": "en_US"}}})
}

pub fn error_code(body: &Value) -> u64 {
    body["error"]["code"].as_u64().unwrap_or(0)
}

/// One webhook POST as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Received {
    pub signature: Option<String>,
    pub body: Bytes,
    pub json: Value,
}

impl Received {
    pub fn signature_valid(&self, secret: &str) -> bool {
        let Some(header) = &self.signature else {
            return false;
        };
        let Some(hex_sig) = header.strip_prefix("sha256=") else {
            return false;
        };
        let Ok(sig) = hex::decode(hex_sig) else {
            return false;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(&self.body);
        mac.verify_slice(&sig).is_ok()
    }

    /// Every status object in the body.
    pub fn statuses(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for entry in self.json["entry"].as_array().into_iter().flatten() {
            for change in entry["changes"].as_array().into_iter().flatten() {
                for status in change["value"]["statuses"].as_array().into_iter().flatten() {
                    out.push(status.clone());
                }
            }
        }
        out
    }
}

#[derive(Clone, Default)]
pub struct ReceiverState {
    pub received: Arc<Mutex<Vec<Received>>>,
    /// How many POSTs to answer 500 before answering 200.
    pub fail_first: Arc<AtomicUsize>,
    pub attempts: Arc<AtomicUsize>,
    /// The bodies of every attempt, answered 200 or not.
    pub attempt_bodies: Arc<Mutex<Vec<Bytes>>>,
}

pub struct Receiver {
    pub addr: SocketAddr,
    pub state: ReceiverState,
    pub shutdown: CancellationToken,
}

impl Receiver {
    pub fn url(&self) -> url::Url {
        format!("http://{}/webhook", self.addr).parse().unwrap()
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    pub fn all_statuses(&self) -> Vec<Value> {
        self.received().iter().flat_map(|r| r.statuses()).collect()
    }

    /// Waits (at most 10 s) until `check` holds on what was received.
    pub async fn wait_until(
        &self,
        what: &str,
        check: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let received = self.received();
            if check(&received) {
                return received;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; received: {:#?}",
                    received.iter().map(|r| &r.json).collect::<Vec<_>>()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn receive(
    State(state): State<ReceiverState>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    state.attempts.fetch_add(1, Ordering::SeqCst);
    state.attempt_bodies.lock().unwrap().push(body.clone());
    let fail = state
        .fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if fail {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    state.received.lock().unwrap().push(Received {
        signature,
        body,
        json,
    });
    StatusCode::OK
}

async fn verify(Query(query): Query<HashMap<String, String>>) -> (StatusCode, String) {
    if query.get("hub.mode").map(String::as_str) == Some("subscribe")
        && query.get("hub.verify_token").map(String::as_str) == Some(VERIFY_TOKEN)
    {
        (
            StatusCode::OK,
            query.get("hub.challenge").cloned().unwrap_or_default(),
        )
    } else {
        (StatusCode::FORBIDDEN, String::new())
    }
}

pub async fn receiver() -> Receiver {
    let state = ReceiverState::default();
    let app = Router::new()
        .route("/webhook", post(receive).get(verify))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
            .unwrap();
    });
    Receiver {
        addr,
        state,
        shutdown,
    }
}
