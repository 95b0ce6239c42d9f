//! The webhook receiver: Meta's `GET` handshake and signed `POST`s at [`PATH`].
//!
//! A POST is answered 200 only once its raw body is stored in Odoo as a
//! `whatsapp.webhook.event`; inbound processing ([`crate::inbound`]) works from there. In order:
//!
//! 1. the body is read as raw bytes, at most `max_body_bytes` (413 beyond);
//! 2. `X-Hub-Signature-256` is checked on those bytes against the accounts' app secrets
//!    ([`keys`]), before any parsing: missing or wrong → 401, nothing stored, one rate-limited
//!    warning in the log ([`warn`]);
//! 3. the body is inspected ([`envelope`]): not JSON → stored with its error, processed, 200
//!    (Meta cannot fix it by retrying); otherwise its account is found by phone number id;
//! 4. the event is handed to the group commit ([`ingest`]), which stores the bodies of
//!    concurrent requests with one `create`; stored → 200; Odoo failing, slow or unreachable →
//!    503, so Meta retries (for days).
//!
//! Wiring, in the daemon (the Odoo side lives in [`odoo`]):
//!
//! ```no_run
//! # async fn demo(odoo: whatsapp_sidecar::odoo::OdooClient) {
//! use std::sync::Arc;
//! use whatsapp_sidecar::webhook::{self, Ingest, OdooEventStore, OdooKeySource, WebhookConfig};
//! let (tracker, shutdown) = (tokio_util::task::TaskTracker::new(), tokio_util::sync::CancellationToken::new());
//! let config = WebhookConfig::default();
//! let stored = Arc::new(tokio::sync::Notify::new()); // also given to inbound processing
//! let store = OdooEventStore::new(odoo.clone()).notify(stored.clone());
//! let ingest = Ingest::spawn(store, config.ingest.clone(), &tracker, shutdown.clone());
//! let keys = webhook::spawn_refresher(OdooKeySource::new(odoo), config.keys.clone(), &tracker, shutdown.clone());
//! let app = axum::Router::new().merge(webhook::router(webhook::WebhookState::new(keys, ingest, &config)));
//! # let _ = app; }
//! ```

pub mod envelope;
pub mod forward;
pub mod ingest;
pub mod keys;
pub mod odoo;
pub mod spool;
pub mod warn;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

pub use forward::{EventSink, ForwardConfig, Forwarder};
pub use ingest::{EventStore, Ingest, IngestConfig, IngestError, NewEvent, StoreError};
pub use keys::{
    spawn_refresher, AccountKey, KeyCache, KeyError, KeySource, Keys, RefreshConfig, Refusal,
};
pub use odoo::{OdooEventStore, OdooKeySource};
pub use spool::{OdooGate, Spool, SpoolError, SpoolStore};

use crate::whatsapp::signature::SIGNATURE_HEADER;
use warn::RateLimitedWarning;

/// Where the receiver listens on the daemon's HTTP port.
pub const PATH: &str = "/webhook";

/// `[webhook]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// Largest body accepted (413 beyond). Meta's payloads stay well under 3 MB.
    pub max_body_bytes: usize,
    /// At most one "refused signature" warning per this period (with the count held back).
    pub refused_log_period: Duration,
    pub ingest: IngestConfig,
    pub keys: RefreshConfig,
    /// The local spool (`webhook.spool_file`); without it, webhooks are stored in Odoo before
    /// they are answered.
    pub spool_file: Option<std::path::PathBuf>,
    /// How spooled webhooks go to Odoo.
    pub forward: ForwardConfig,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            max_body_bytes: 4 * 1024 * 1024,
            refused_log_period: Duration::from_secs(10),
            ingest: IngestConfig::default(),
            keys: RefreshConfig::default(),
            spool_file: None,
            forward: ForwardConfig::default(),
        }
    }
}

/// What the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct WebhookState {
    inner: Arc<Inner>,
    /// POSTs by result and the intake time (`/metrics`).
    metrics: crate::metrics::Metrics,
}

struct Inner {
    keys: KeyCache,
    ingest: Ingest,
    max_body_bytes: usize,
    refused: RateLimitedWarning,
    unconfigured: RateLimitedWarning,
}

impl WebhookState {
    pub fn new(keys: KeyCache, ingest: Ingest, config: &WebhookConfig) -> Self {
        WebhookState {
            inner: Arc::new(Inner {
                keys,
                ingest,
                max_body_bytes: config.max_body_bytes,
                refused: RateLimitedWarning::new(config.refused_log_period),
                unconfigured: RateLimitedWarning::new(config.refused_log_period),
            }),
            metrics: Default::default(),
        }
    }

    /// This state recording the POSTs in `metrics`.
    pub fn with_metrics(mut self, metrics: crate::metrics::Metrics) -> Self {
        self.metrics = metrics;
        self
    }
}

/// The receiver's routes (`GET` and `POST` at [`PATH`]), to merge into the daemon's router.
pub fn router(state: WebhookState) -> Router {
    let limit = state.inner.max_body_bytes;
    Router::new()
        .route(PATH, get(handshake).post(receive))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

#[derive(Deserialize)]
struct Handshake {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

async fn handshake(State(state): State<WebhookState>, query: Query<Handshake>) -> Response {
    let Some(keys) = state.inner.keys.current() else {
        return not_ready();
    };
    match keys.verify_get(
        query.mode.as_deref(),
        query.verify_token.as_deref(),
        query.challenge.as_deref(),
    ) {
        Some(challenge) => {
            tracing::info!("webhook subscription confirmed to Meta");
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                challenge.to_owned(),
            )
                .into_response()
        }
        None => {
            if let Some(held_back) = state.inner.refused.occurrence() {
                tracing::warn!(
                    held_back,
                    "webhook handshake refused (403): hub.mode is not 'subscribe' or \
                     hub.verify_token matches no account's verify token"
                );
            }
            (StatusCode::FORBIDDEN, "verify token mismatch\n").into_response()
        }
    }
}

async fn receive(State(state): State<WebhookState>, headers: HeaderMap, body: Bytes) -> Response {
    let started = std::time::Instant::now();
    let (result, response) = answer(&state, headers, body).await;
    state.metrics.webhook_request(result, started.elapsed());
    response
}

/// The answer to a POST, and its result's name for the metrics.
async fn answer(state: &WebhookState, headers: HeaderMap, body: Bytes) -> (&'static str, Response) {
    let received_at = Utc::now();
    let inner = &state.inner;
    let Some(keys) = inner.keys.current() else {
        return ("keys_not_loaded", not_ready());
    };
    let signature = headers
        .get(SIGNATURE_HEADER)
        .map(|v| v.to_str().unwrap_or("(not text)"));
    match keys.verify_post(&body, signature) {
        Ok(()) => {}
        Err(Refusal::NoSecret) => {
            if let Some(held_back) = inner.unconfigured.occurrence() {
                tracing::error!(held_back, "webhook answered 503: {}", Refusal::NoSecret);
            }
            inner.keys.request_reload();
            let response = (
                StatusCode::SERVICE_UNAVAILABLE,
                "no app secret configured\n",
            );
            return ("no_app_secret", response.into_response());
        }
        Err(Refusal::Signature(reason)) => {
            if let Some(held_back) = inner.refused.occurrence() {
                tracing::warn!(
                    %reason,
                    held_back,
                    bytes = body.len(),
                    "webhook POST refused (401), nothing stored"
                );
            }
            inner.keys.request_reload();
            let response = (StatusCode::UNAUTHORIZED, "invalid signature\n");
            return ("bad_signature", response.into_response());
        }
    }
    let seen = envelope::inspect(&body);
    if let Some(error) = &seen.error {
        tracing::warn!(%error, "signed webhook body cannot be processed; stored with its error");
    }
    let event = NewEvent {
        account_id: keys.account_for(&seen.phone_number_ids, &seen.waba_ids),
        raw_body: seen.text,
        received_at,
        processing_error: seen.error,
    };
    match inner.ingest.submit(event).await {
        Ok(_) => ("stored", (StatusCode::OK, "OK\n").into_response()),
        Err(error) => {
            tracing::debug!(%error, "webhook answered 503");
            let response = (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "5")],
                "not stored, retry later\n",
            );
            ("unavailable", response.into_response())
        }
    }
}

fn not_ready() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "5")],
        "webhook keys not loaded from Odoo yet\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests;
