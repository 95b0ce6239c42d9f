//! The built-in WhatsApp Cloud API sandbox: a real HTTP server that plays Meta's part, so the
//! daemon can be tried without a Meta account and every test has a realistic peer.
//!
//! It answers the Graph API endpoints the daemon uses (send, media, templates, phone number) for
//! any API version in the path, validates sends the way Meta does and answers Meta's success and
//! error shapes, enforces the per-number throughput (130429), the pair rate (131056) and the
//! 24-hour window (131047), sends signed status webhooks (`sent`, `delivered`, `read` or `failed`)
//! with configurable delays and chaos, can answer sends with Meta's transient 500 (131000) or a
//! window of 130429 (send chaos, [`config`]), lets a user inject inbound messages and button
//! replies, and keeps a record of everything it accepted (and of the sends it refused).
//!
//! Layout (one file per concern; only `server.rs` and `delivery.rs` do network I/O):
//!
//! | file | owns |
//! |---|---|
//! | `config.rs` | [`SandboxConfig`]: TOML file or built-in default |
//! | `templates.rs` | the demo templates, Meta's listing JSON, template parsing |
//! | `validate.rs` | send validation as Meta does it (pure) |
//! | `webhook.rs` | webhook bodies in Meta's shapes, signatures, status plans (pure) |
//! | `ids.rs` | wamids, media ids, fbtrace ids, business-scoped user ids |
//! | `error.rs` | [`SandboxError`] and [`GraphError`] (Meta's error object) |
//! | `state.rs` | the in-memory state: limits, windows, record, media, injection |
//! | `server.rs` | the axum router (Graph endpoints and `/sandbox/...`) |
//! | `delivery.rs` | the webhook task: scheduling, batching, signing, retries |
//! | `cli.rs` | `whatsapp-sidecar sandbox` and `sandbox inject` |
//!
//! In-process use (tests, `run` with `mode = "sandbox"`):
//!
//! ```no_run
//! # async fn demo() -> Result<(), whatsapp_sidecar::sandbox::SandboxError> {
//! use whatsapp_sidecar::sandbox::{InjectRequest, RecordFilter, SandboxConfig, SandboxHandle};
//! use tokio_util::sync::CancellationToken;
//!
//! let shutdown = CancellationToken::new();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let sandbox = SandboxHandle::start(listener, SandboxConfig::default(), shutdown.clone()).await?;
//! let base_url = sandbox.base_url(); // point the Cloud API client here
//! sandbox.set_callback(Some("http://127.0.0.1:8787/webhook".parse().unwrap()), None);
//! sandbox.inject(&InjectRequest { from: "+2250700000001".into(), text: Some("hi".into()), ..Default::default() })?;
//! let sent = sandbox.messages(&RecordFilter::default())?;
//! shutdown.cancel();
//! sandbox.stopped().await?;
//! # Ok(()) }
//! ```

pub mod cli;
pub mod config;
mod delivery;
pub mod error;
pub mod ids;
mod server;
mod state;
pub mod templates;
pub mod validate;
pub mod webhook;

pub use config::SandboxConfig;
pub use error::{GraphError, SandboxError};
pub use state::{
    ChaosUpdate, InboundRecord, InjectOutcome, InjectRequest, ListRef, RecordFilter,
    RecordedMessage, RefusedSend, ReplyRef, TemplateButtonRef,
};
pub use webhook::StatusKind;

use crate::secret::Secret;
use state::{CallbackTarget, Shared};
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use url::Url;

/// How long in-flight webhooks may take to finish once the sandbox is asked to stop.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A running sandbox, for in-process use. Cheap to clone.
#[derive(Clone)]
pub struct Sandbox {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

impl Sandbox {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`: the Graph API base URL to give the Cloud API client.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Recorded (accepted) sends matching a filter.
    pub fn messages(&self, filter: &RecordFilter) -> Result<Vec<RecordedMessage>, SandboxError> {
        self.shared.messages(filter).map_err(SandboxError::Inject)
    }

    /// Injects an inbound message (opens the user's 24-hour window, sends Meta's webhook).
    pub fn inject(&self, request: &InjectRequest) -> Result<InjectOutcome, SandboxError> {
        self.shared.inject(request)
    }

    /// Injected inbound messages, oldest first (the newest `limit`).
    pub fn inbound(&self, limit: usize) -> Vec<InboundRecord> {
        self.shared.inbound(limit)
    }

    /// Points webhooks at `url` (none: statuses only update the record). Without a secret the
    /// configured app secret (default `sandbox-app-secret`) signs them.
    pub fn set_callback(&self, url: Option<Url>, app_secret: Option<Secret>) {
        let target = url.map(|url| CallbackTarget {
            url,
            app_secret: app_secret.unwrap_or_else(|| self.shared.app_secret.clone()),
        });
        self.shared.set_callback(target);
    }

    /// Runs Meta's verification handshake against the callback URL with `verify_token`.
    pub async fn verify_callback(&self, verify_token: &str) -> Result<(), SandboxError> {
        let target = self
            .shared
            .callback()
            .ok_or_else(|| SandboxError::Verify("no callback URL is configured".into()))?;
        delivery::verify_callback(
            &target.url,
            verify_token,
            Duration::from_millis(self.shared.webhooks.timeout_ms),
        )
        .await
    }

    /// Changes a template's status and sends Meta's `message_template_status_update` webhook.
    pub fn set_template_status(
        &self,
        waba_id: &str,
        name: &str,
        language: &str,
        status: &str,
    ) -> Result<(), SandboxError> {
        self.shared
            .set_template_status(waba_id, name, language, status, None)
            .map(|_| ())
    }

    /// The counters (accepted, rejected by code, webhooks delivered, ...) as JSON.
    pub fn stats(&self) -> serde_json::Value {
        self.shared.stats.to_json()
    }

    /// How many sends were refused with a code.
    pub fn rejected(&self, code: u32) -> u64 {
        self.shared.stats.rejected(code)
    }

    /// Sends that passed validation but were refused (limits, send chaos), oldest first: the
    /// newest `limit`.
    pub fn refused(&self, limit: usize) -> Vec<RefusedSend> {
        self.shared.refused(limit)
    }

    /// Changes the send chaos while running (the `[chaos]` send faults, see [`config`]);
    /// returns the chaos now in force, as `GET /sandbox/chaos` does.
    pub fn set_chaos(&self, update: &ChaosUpdate) -> Result<serde_json::Value, SandboxError> {
        self.shared.set_chaos(update).map_err(SandboxError::Config)
    }
}

/// A started sandbox: the in-process API (through `Deref` to [`Sandbox`]) and its tasks.
pub struct SandboxHandle {
    sandbox: Sandbox,
    server: JoinHandle<Result<(), SandboxError>>,
    tracker: TaskTracker,
}

impl Deref for SandboxHandle {
    type Target = Sandbox;

    fn deref(&self) -> &Sandbox {
        &self.sandbox
    }
}

impl SandboxHandle {
    /// Starts the sandbox on a bound listener; it runs until `shutdown` is cancelled.
    pub async fn start(
        listener: TcpListener,
        mut config: SandboxConfig,
        shutdown: CancellationToken,
    ) -> Result<SandboxHandle, SandboxError> {
        config.load_files()?;
        let addr = listener.local_addr().map_err(SandboxError::Serve)?;
        let (jobs_tx, jobs_rx) = tokio::sync::mpsc::unbounded_channel();
        let shared = Arc::new(Shared::new(&config, jobs_tx)?);
        let tracker = TaskTracker::new();

        let client = delivery::http_client(Duration::from_millis(config.webhooks.timeout_ms))?;
        tracker.spawn(delivery::run(
            Arc::clone(&shared),
            client,
            jobs_rx,
            shutdown.clone(),
            tracker.clone(),
        ));

        if let (Some(url), Some(token)) =
            (&config.webhooks.callback_url, &config.webhooks.verify_token)
        {
            let (url, token) = (url.clone(), token.clone());
            let timeout = Duration::from_millis(config.webhooks.timeout_ms);
            tracker.spawn(async move {
                match delivery::verify_callback(&url, token.expose(), timeout).await {
                    Ok(()) => tracing::info!(%url, "callback URL verified"),
                    Err(e) => tracing::warn!("{e}"),
                }
            });
        }

        let app = server::router(Arc::clone(&shared), addr);
        let server_shutdown = shutdown.clone();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { server_shutdown.cancelled().await })
                .await
                .map_err(SandboxError::Serve)
        });
        Ok(SandboxHandle {
            sandbox: Sandbox { shared, addr },
            server,
            tracker,
        })
    }

    /// Binds `addr` and starts the sandbox there.
    pub async fn bind(
        addr: SocketAddr,
        config: SandboxConfig,
        shutdown: CancellationToken,
    ) -> Result<SandboxHandle, SandboxError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| SandboxError::Bind {
                addr: addr.to_string(),
                source,
            })?;
        Self::start(listener, config, shutdown).await
    }

    /// The in-process API, to keep after the handle is consumed by [`stopped`](Self::stopped).
    pub fn sandbox(&self) -> Sandbox {
        self.sandbox.clone()
    }

    /// Waits until the sandbox has stopped (after its shutdown token is cancelled): the HTTP
    /// server, then the webhook task and in-flight webhooks, for at most 5 s.
    pub async fn stopped(self) -> Result<(), SandboxError> {
        let served = match self.server.await {
            Ok(result) => result,
            Err(e) => Err(SandboxError::Serve(std::io::Error::other(e))),
        };
        self.tracker.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "sandbox webhook tasks did not finish within {SHUTDOWN_GRACE:?}; leaving them"
            );
        }
        served
    }
}

/// Serves the sandbox on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    config: SandboxConfig,
    shutdown: CancellationToken,
) -> Result<(), SandboxError> {
    SandboxHandle::start(listener, config, shutdown)
        .await?
        .stopped()
        .await
}
