//! `whatsapp-sidecar run`: the daemon's top level.
//!
//! [`run`] takes the listener and the shutdown token in (as mini-redis does), so tests run it on
//! port 0 and stop it at will. It starts every task on one [`TaskTracker`]; on shutdown it waits
//! for them at most `server.shutdown_timeout`, then returns.
//!
//! Tasks:
//! - the Odoo connection: authenticates, retrying with jittered exponential backoff while Odoo is
//!   unreachable; a refused login stops the daemon with the reason;
//! - in sandbox mode, the built-in Cloud API simulator ([`crate::sandbox`]) on `sandbox.listen`,
//!   with the Cloud API client pointed at it and its status webhooks pointed at this daemon;
//! - the webhook receiver ([`crate::webhook`]): group commit of signed bodies into Odoo, and the
//!   refresher of the accounts' app secrets and verify tokens;
//! - the outbox ([`crate::outbox`]): queued messages claimed, checked, paced, sent and written
//!   back;
//! - inbound processing ([`crate::inbound`]) of the stored events;
//! - the accounts' "Check settings" and "Sync templates" requests ([`crate::accounts`]);
//! - the automations ([`crate::automations`]): new sale orders and "Send details" requests,
//!   their messages queued for the outbox;
//! - the button actions ([`crate::actions`]): customers' presses acted on, replies queued;
//! - the campaigns ([`crate::campaigns`]): queues generated, due steps queued just in time,
//!   KPIs, auto-pause;
//! - the housekeeping ([`crate::housekeeping`]): old webhook events deleted, templates synced
//!   hourly, on schedule;
//! - Odoo's bus ([`crate::bus`]): one websocket whose notifications wake the loops above at
//!   once; while it is up their idle polls are slow, when it drops they poll as before;
//! - the HTTP server: `/webhook`, `/healthz` (the process is alive) and `/readyz` (Odoo reachable
//!   and authenticated, and the daemon's user holds the rights it needs);
//! - the rights check: once connected, the daemon asks Odoo whether its user may do what the
//!   daemon does (`check_access_rights` on the WhatsApp models; the group "WhatsApp Sidecar
//!   (technical)" grants them). A missing right is said once, in one line with the fix, and
//!   `/readyz` answers 503 with the same words until it is fixed (checked again every minute,
//!   and at most every few seconds when `/readyz` is asked): without it Meta's webhooks cannot be
//!   stored, which is the daemon's job, so a probe must not call it ready;
//! - the systemd watchdog.

use crate::accounts::AccountsContext;
use crate::config::{Config, Mode};
use crate::inbound::{InboundContext, MediaConfig, MediaFetch};
use crate::metrics::{Metrics, StateSource};
use crate::odoo::{OdooClient, OdooError};
use crate::outbox::OutboxContext;
use crate::sandbox::{SandboxConfig, SandboxError, SandboxHandle};
use crate::webhook::{self, Ingest, OdooEventStore, OdooKeySource, WebhookState};
use crate::whatsapp::{CloudClient, WhatsAppError};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use backon::{ExponentialBuilder, Retryable};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Why the daemon stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot use Odoo: {0}")]
    Odoo(#[from] OdooError),
    #[error("cannot set up the WhatsApp client: {0}")]
    WhatsApp(#[from] WhatsAppError),
    #[error("cannot start the built-in sandbox: {0}")]
    Sandbox(#[from] SandboxError),
    #[error("{0}")]
    Spool(#[from] webhook::SpoolError),
    #[error("the HTTP server failed: {0}")]
    Server(#[source] std::io::Error),
    #[error("some tasks did not finish within {0:?} after shutdown was requested")]
    ShutdownTimeout(Duration),
}

/// What the HTTP handlers share.
#[derive(Clone)]
struct AppState {
    odoo: OdooClient,
    authenticated: Arc<AtomicBool>,
    /// A right the daemon's Odoo user lacks, in words (and when it was last checked).
    rights: Arc<Mutex<Rights>>,
    /// The sending lease: `/readyz` says whether this daemon leads or stands by.
    lease: crate::lease::Lease,
}

/// What the last rights check found.
#[derive(Debug, Default)]
struct Rights {
    /// `None`: not checked yet, or everything is there.
    problem: Option<String>,
    checked_at: Option<tokio::time::Instant>,
}

/// How often missing rights are checked again in the background.
const RIGHTS_RECHECK: Duration = Duration::from_secs(60);
/// `/readyz` checks missing rights again when the last check is older than this.
const RIGHTS_PROBE_RECHECK: Duration = Duration::from_secs(5);

/// The one line that says what the daemon's user lacks and how to fix it.
fn rights_problem(login: &str, missing: &[String]) -> String {
    format!(
        "the Odoo user '{login}' lacks {}: add it to the group 'WhatsApp Sidecar (technical)' \
         (in Odoo: Settings > Users & Companies > Groups > WhatsApp Sidecar (technical) > Users, \
         in developer mode); until then Meta's webhooks are answered 503 and not stored",
        missing.join(", ")
    )
}

/// Runs the daemon until `shutdown` is cancelled or a task fails for good.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), DaemonError> {
    // `/metrics`: every component records into these (nothing when `metrics.enabled = false`).
    let metrics = if config.metrics.enabled || config.alerts.enabled {
        Metrics::new(env!("CARGO_PKG_VERSION"))
    } else {
        Metrics::default()
    };
    let odoo = OdooClient::new(config.odoo.client_config())?.with_metrics(metrics.clone());
    let (lease_driver, lease) =
        crate::lease::LeaseDriver::new(odoo.clone(), config.lease.clone(), metrics.clone());
    let state = AppState {
        odoo: odoo.clone(),
        authenticated: Arc::new(AtomicBool::new(false)),
        rights: Arc::new(Mutex::new(Rights::default())),
        lease: lease.clone(),
    };
    let tracker = TaskTracker::new();
    // A task that fails for good cancels this token, which stops the others.
    let stop = shutdown.child_token();
    let (failure_tx, mut failure_rx) = tokio::sync::mpsc::channel::<DaemonError>(4);
    let addr = listener.local_addr().map_err(DaemonError::Server)?;

    let mut whatsapp = config.whatsapp.client_config();
    if config.whatsapp.mode == Mode::Sandbox {
        whatsapp.graph_url = start_sandbox(&config, addr, &tracker, &stop).await?;
    }
    let cloud = CloudClient::new(whatsapp)?.with_metrics(metrics.clone());

    let connect_state = state.clone();
    let connect_stop = stop.clone();
    let connect_failure = failure_tx.clone();
    tracker.spawn(async move {
        if let Err(err) = connect(&connect_state, &connect_stop).await {
            let _ = connect_failure.send(err).await;
            connect_stop.cancel();
            return;
        }
        watch_rights(&connect_state, &connect_stop).await;
    });

    // Webhooks: stored in Odoo by the group commit (or kept in the local spool and forwarded
    // to Odoo), then processed from there.
    let stored = Arc::new(tokio::sync::Notify::new());
    let ingest = match &config.webhook.spool_file {
        None => {
            let store = OdooEventStore::new(odoo.clone())
                .with_metrics(metrics.clone())
                .notify(stored.clone());
            Ingest::spawn(store, config.webhook.ingest.clone(), &tracker, stop.clone())
        }
        Some(path) => spawn_spool(
            path,
            &config.webhook,
            &odoo,
            &metrics,
            stored.clone(),
            &tracker,
            &stop,
        )?,
    };
    let keys = webhook::spawn_refresher(
        OdooKeySource::new(odoo.clone()),
        config.webhook.keys.clone(),
        &tracker,
        stop.clone(),
    );
    let webhook_state =
        WebhookState::new(keys, ingest, &config.webhook).with_metrics(metrics.clone());

    // Odoo's bus: which loops a model's notifications wake (subscribed below, once they are
    // all known).
    let mut hub = crate::bus::Hub::new(config.bus.slow_poll_interval).with_metrics(metrics.clone());

    // The work that claims and sends runs only on the daemon holding the sending lease; its
    // wake-ups from Odoo's bus are subscribed once, here, for every term of the lease.
    let mailer = if config.alerts.enabled {
        let about = format!(
            "Odoo database {} at {}",
            config.odoo.database, config.odoo.url
        );
        match crate::alerts::Mailer::new(&config.alerts, &about) {
            Ok(mailer) => Some(Arc::new(mailer)),
            Err(e) => {
                tracing::error!(error = %e, "email alerts are off");
                None
            }
        }
    } else {
        None
    };
    let work = LeaderWork {
        config: config.clone(),
        odoo: odoo.clone(),
        cloud: cloud.clone(),
        metrics: metrics.clone(),
        lease: lease.clone(),
        mailer,
        stored,
        received: Arc::new(tokio::sync::Notify::new()),
        outbox_wake: hub.wake(&["whatsapp.message", "whatsapp.account", "whatsapp.campaign"]),
        accounts_wake: hub.wake(&["whatsapp.account"]),
        orders_wake: hub.wake(&["sale.order"]),
        invoices_wake: hub.wake(&["account.move"]),
        campaigns_wake: hub.wake(&["whatsapp.campaign"]),
        actions_wake: hub.wake(&[]),
        inbound_wake: hub.wake(&["whatsapp.webhook.event"]),
    };
    spawn_bus(&config, &odoo, hub, &tracker, &stop);
    let lease_stop = CancellationToken::new();
    let driver = Arc::new(lease_driver);
    let renewing = tracker.spawn({
        let driver = driver.clone();
        let lease_stop = lease_stop.clone();
        async move { crate::lease::run(&driver, lease_stop).await }
    });
    tracker.spawn({
        let stop = stop.clone();
        let deadline = config.server.shutdown_timeout;
        async move {
            lead(&work, &stop, deadline).await;
            // The work is done: stop renewing and let the lease go to the next daemon at once.
            lease_stop.cancel();
            let _ = renewing.await;
            driver.release().await;
        }
    });

    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
        .merge(webhook::router(webhook_state));
    if config.metrics.enabled {
        tracing::info!(%addr, "HTTP server listening (/webhook, /healthz, /readyz, /metrics)");
        let source = Arc::new(StateSource::new(odoo.clone(), config.metrics.odoo_refresh));
        router = router.route(
            "/metrics",
            get(move || scrape(metrics.clone(), source.clone())),
        );
    } else {
        tracing::info!(%addr, "HTTP server listening (/webhook, /healthz, /readyz)");
    }
    let server_stop = stop.clone();
    let server_failure = failure_tx;
    tracker.spawn(async move {
        let graceful = server_stop.clone();
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move { graceful.cancelled().await })
            .await;
        if let Err(err) = served {
            let _ = server_failure.send(DaemonError::Server(err)).await;
            server_stop.cancel();
        }
    });
    tracker.spawn(crate::systemd::watchdog(stop.clone()));
    tracker.close();
    crate::systemd::ready("serving; connecting to Odoo");

    stop.cancelled().await;
    crate::systemd::stopping();
    tracing::info!("stopping: waiting for running work to finish");
    let deadline = config.server.shutdown_timeout;
    if tokio::time::timeout(deadline, tracker.wait())
        .await
        .is_err()
    {
        tracing::error!(?deadline, "shutdown deadline passed; exiting anyway");
        return Err(DaemonError::ShutdownTimeout(deadline));
    }
    match failure_rx.try_recv() {
        Ok(err) => Err(err),
        Err(_) => {
            tracing::info!("stopped");
            Ok(())
        }
    }
}

/// What claims and sends: started each time this daemon takes the sending lease, stopped when
/// it loses it.
struct LeaderWork {
    config: Config,
    odoo: OdooClient,
    cloud: CloudClient,
    metrics: Metrics,
    lease: crate::lease::Lease,
    mailer: Option<Arc<crate::alerts::Mailer>>,
    /// Told by the webhook receiver when events were stored.
    stored: Arc<tokio::sync::Notify>,
    /// Told by inbound processing when it recorded button presses.
    received: Arc<tokio::sync::Notify>,
    outbox_wake: crate::poll::Wake,
    accounts_wake: crate::poll::Wake,
    orders_wake: crate::poll::Wake,
    invoices_wake: crate::poll::Wake,
    campaigns_wake: crate::poll::Wake,
    actions_wake: crate::poll::Wake,
    inbound_wake: crate::poll::Wake,
}

impl LeaderWork {
    /// Starts every component that claims or sends, each with fresh state, until `stop`.
    fn spawn(&self, tracker: &TaskTracker, stop: &CancellationToken) {
        let config = &self.config;
        let odoo = &self.odoo;
        // The send pipeline: claims fenced by the lease, nothing sent without it.
        let mut outbox =
            OutboxContext::new(odoo.clone(), self.cloud.clone(), config.outbox.clone());
        outbox.bus = self.outbox_wake.clone();
        outbox.metrics = self.metrics.clone();
        outbox.lease = self.lease.clone();
        tracker.spawn(crate::outbox::run(outbox, stop.clone()));

        // The accounts' "Check settings" and "Sync templates" buttons.
        tracker.spawn(crate::accounts::run(
            AccountsContext {
                odoo: odoo.clone(),
                whatsapp: self.cloud.clone(),
                poll_interval: config.accounts.poll_interval,
                bus: self.accounts_wake.clone(),
            },
            stop.clone(),
        ));

        // Sale orders: new-order messages and details requests, queued for the outbox.
        let mut orders =
            crate::automations::AutomationsContext::new(odoo.clone(), config.automations.clone());
        orders.bus = self.orders_wake.clone();
        tracker.spawn(crate::automations::run(orders, stop.clone()));
        // Invoices: posted invoices, payments and details requests; unpaid reminders on
        // schedule.
        let mut invoices =
            crate::automations::InvoicesContext::new(odoo.clone(), config.automations.clone());
        invoices.bus = self.invoices_wake.clone();
        tracker.spawn(crate::automations::run_reminders(
            crate::automations::OdooReminders {
                odoo: odoo.clone(),
                reader: invoices.reader.clone(),
            },
            stop.clone(),
        ));
        tracker.spawn(crate::automations::run_invoices(invoices, stop.clone()));
        // Campaigns: queues, drip steps, windows, throttle, KPIs; their messages queued just in
        // time.
        let mut campaigns =
            crate::campaigns::CampaignsContext::new(odoo.clone(), config.campaigns.clone());
        campaigns.bus = self.campaigns_wake.clone();
        tracker.spawn(crate::campaigns::run(campaigns, stop.clone()));
        // Customers' button presses, recorded by inbound processing, acted on (at once:
        // inbound processing says when it recorded some).
        tracker.spawn(crate::actions::run(
            crate::actions::ActionsContext::new(odoo.clone(), config.actions.clone())
                .with_scenarios(config.scenarios.clone())
                .woken_by(self.received.clone())
                .with_bus(self.actions_wake.clone()),
            stop.clone(),
        ));

        tracker.spawn(crate::inbound::run(
            InboundContext {
                odoo: odoo.clone(),
                config: config.inbound.clone(),
                wake: self.stored.clone(),
                bus: self.inbound_wake.clone(),
                media: Some(MediaFetch {
                    client: self.cloud.clone(),
                    config: MediaConfig::default(),
                }),
                lookups: Default::default(),
                received: Some(self.received.clone()),
                metrics: self.metrics.clone(),
            },
            stop.clone(),
        ));

        // Email alerts: one daemon sends them; a mail that cannot go out waits for the next
        // round.
        if let Some(mailer) = &self.mailer {
            tracker.spawn(crate::alerts::run(
                crate::alerts::AlertsContext {
                    odoo: odoo.clone(),
                    whatsapp: self.cloud.clone(),
                    settings: config.alerts.clone(),
                    mailer: mailer.clone(),
                    metrics: self.metrics.clone(),
                },
                stop.clone(),
            ));
        }
        // Housekeeping: old webhook events deleted, templates synced, on schedule.
        tracker.spawn(crate::housekeeping::run(
            crate::housekeeping::HousekeepingContext {
                odoo: odoo.clone(),
                settings: config.housekeeping.clone(),
            },
            stop.clone(),
        ));
    }
}

/// Runs `work` while this daemon holds the sending lease, stops it (within `deadline`) when the
/// lease goes, starts it again when it comes back; returns once `stop` is cancelled and the
/// work has finished.
async fn lead(work: &LeaderWork, stop: &CancellationToken, deadline: Duration) {
    let Some(mut role) = work.lease.watch() else {
        // No lease (never in the daemon): the work runs until stop.
        let tracker = TaskTracker::new();
        work.spawn(&tracker, stop);
        tracker.close();
        tracker.wait().await;
        return;
    };
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            taken = role.wait_for(crate::lease::Role::is_leader) => {
                if taken.is_err() {
                    return;
                }
            }
        }
        let epoch = crate::lease::term_of(&role.borrow());
        let term = stop.child_token();
        let tracker = TaskTracker::new();
        work.spawn(&tracker, &term);
        tracker.close();
        // The term goes on while the lease is held or suspended under its epoch (Odoo away:
        // nothing is sent meanwhile, and the work resumes if Odoo gives the lease back with
        // it); it ends when another daemon holds the lease or it was taken again anew.
        let lost = tokio::select! {
            () = stop.cancelled() => false,
            changed = role.wait_for(|r| crate::lease::term_of(r) != epoch) => changed.is_ok(),
        };
        if lost {
            tracing::warn!("the sending lease is gone: stopping the outbox and the other senders; this daemon goes on storing webhooks");
        }
        term.cancel();
        if tokio::time::timeout(deadline, tracker.wait())
            .await
            .is_err()
        {
            tracing::error!(
                ?deadline,
                "the senders did not stop within the shutdown deadline"
            );
        }
        if stop.is_cancelled() {
            return;
        }
    }
}

/// Opens the local webhook spool and starts its forwarder; returns the group commit that
/// appends to it. Each batch is committed to the spool as soon as the previous one is (no
/// waiting for company: a local commit takes about a millisecond), one at a time.
fn spawn_spool(
    path: &std::path::Path,
    config: &webhook::WebhookConfig,
    odoo: &OdooClient,
    metrics: &Metrics,
    stored: Arc<tokio::sync::Notify>,
    tracker: &TaskTracker,
    stop: &CancellationToken,
) -> Result<Ingest, DaemonError> {
    let spool = Arc::new(webhook::Spool::open(path)?);
    tracing::info!(
        spool = %path.display(),
        left_from_last_run = spool.len(),
        "webhooks are kept in the local spool until Odoo has them (webhook.spool_file)"
    );
    let gate = Arc::new(webhook::OdooGate::default());
    let wake = Arc::new(tokio::sync::Notify::new());
    // The forwarder retries by itself, after checking what Odoo already has.
    let sink = OdooEventStore::new(odoo.without_retries()).with_metrics(metrics.clone());
    let forwarder = webhook::Forwarder::new(
        spool.clone(),
        sink,
        gate.clone(),
        stored,
        config.forward.batch_max,
    );
    tracker.spawn(webhook::forward::run(
        forwarder,
        config.forward.interval,
        wake.clone(),
        stop.clone(),
    ));
    let store = webhook::SpoolStore::new(spool, gate, wake, config.forward.max_events);
    let ingest = webhook::IngestConfig {
        idle: Duration::ZERO,
        max_in_flight: 1,
        ..config.ingest.clone()
    };
    Ok(Ingest::spawn(store, ingest, tracker, stop.clone()))
}

/// Subscribes to Odoo's bus (`bus.enabled`, with the password's web session), or says why the
/// daemon polls only.
fn spawn_bus(
    config: &Config,
    odoo: &OdooClient,
    hub: crate::bus::Hub,
    tracker: &TaskTracker,
    stop: &CancellationToken,
) {
    if !config.bus.enabled {
        tracing::info!("bus.enabled = false: the daemon polls Odoo at the usual rates");
        return;
    }
    if config.odoo.password.as_ref().is_none_or(|p| p.is_blank()) {
        tracing::info!(
            "Odoo's bus is not used: it needs odoo.password (Odoo's web session refuses API \
             keys); the daemon polls Odoo at the usual rates"
        );
        return;
    }
    let url = config.bus.url.as_ref().unwrap_or(&config.odoo.url);
    match crate::bus::BusClient::new(odoo.clone(), url, config.odoo.timeout) {
        Ok(client) => {
            tracker.spawn(crate::bus::run(client, Arc::new(hub), stop.clone()));
        }
        Err(err) => tracing::warn!(
            error = %err,
            "Odoo's bus is not used; the daemon polls Odoo at the usual rates"
        ),
    }
}

/// Starts the built-in sandbox, points its status webhooks at this daemon's `/webhook`, and
/// returns its address for the Cloud API client.
async fn start_sandbox(
    config: &Config,
    daemon_addr: std::net::SocketAddr,
    tracker: &TaskTracker,
    stop: &CancellationToken,
) -> Result<url::Url, DaemonError> {
    let sandbox_config = match &config.sandbox.config {
        Some(path) => SandboxConfig::from_file(path)?,
        None => SandboxConfig::default(),
    };
    let handle = SandboxHandle::bind(config.sandbox.listen, sandbox_config, stop.clone()).await?;
    let sandbox = handle.sandbox();
    let mut callback_ip = daemon_addr.ip();
    if callback_ip.is_unspecified() {
        callback_ip = if callback_ip.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        };
    }
    let callback = std::net::SocketAddr::new(callback_ip, daemon_addr.port());
    let callback_url = url::Url::parse(&format!("http://{callback}{}", webhook::PATH))
        .map_err(|err| DaemonError::Server(std::io::Error::other(err)))?;
    sandbox.set_callback(Some(callback_url.clone()), None);
    let graph_url = url::Url::parse(&sandbox.base_url())
        .map_err(|err| DaemonError::Server(std::io::Error::other(err)))?;
    tracing::info!(
        sandbox = %graph_url,
        callback = %callback_url,
        "whatsapp.mode = \"sandbox\": the built-in Cloud API simulator answers instead of Meta"
    );
    tracker.spawn(async move {
        if let Err(err) = handle.stopped().await {
            tracing::error!(error = %err, "the sandbox stopped with an error");
        }
    });
    Ok(graph_url)
}

/// Authenticates with Odoo, retrying while the failure is retryable (Odoo down, 502/503/504).
async fn connect(state: &AppState, stop: &CancellationToken) -> Result<(), DaemonError> {
    // This loop retries; the client's own retries would only stack under it.
    let odoo = state.odoo.without_retries();
    let attempt = || async { odoo.authenticate().await };
    let backoff = ExponentialBuilder::default()
        .with_jitter()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(30))
        .without_max_times();
    let retrying = attempt
        .retry(backoff)
        .when(OdooError::is_retryable)
        .notify(|err, delay| {
            tracing::warn!(error = %err, retry_in = ?delay, "Odoo is not reachable yet; retrying");
        });
    tokio::select! {
        _ = stop.cancelled() => Ok(()),
        result = retrying => {
            let uid = result?;
            state.authenticated.store(true, Ordering::Relaxed);
            tracing::info!(uid, "connected to Odoo");
            crate::systemd::status("connected to Odoo");
            Ok(())
        }
    }
}

fn lock_rights(state: &AppState) -> std::sync::MutexGuard<'_, Rights> {
    state
        .rights
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Asks Odoo whether the daemon's user holds the rights it needs and records the answer;
/// says in the log when a problem appears (once) or goes away. An error asking leaves the last
/// answer as it was.
async fn check_rights(state: &AppState) {
    let odoo = state.odoo.without_retries();
    let (missing, errors) = crate::odoo::diagnose::missing_rights(&odoo).await;
    let problem = if !missing.is_empty() {
        Some(rights_problem(&state.odoo.config().login, &missing))
    } else if errors.is_empty() {
        None
    } else {
        tracing::debug!(errors = ?errors.iter().map(ToString::to_string).collect::<Vec<_>>(), "could not check the daemon's rights in Odoo; checked again later");
        lock_rights(state).checked_at = Some(tokio::time::Instant::now());
        return;
    };
    let mut rights = lock_rights(state);
    rights.checked_at = Some(tokio::time::Instant::now());
    if rights.problem == problem {
        return;
    }
    match &problem {
        Some(p) => {
            tracing::error!(
                "{p}. /readyz answers 503 until it is fixed; the daemon checks again every minute"
            );
        }
        None => tracing::info!(
            "the daemon's Odoo user now has the rights it needs; webhooks are stored again"
        ),
    }
    rights.problem = problem;
}

/// Checks the rights once connected, then every minute while one is missing.
async fn watch_rights(state: &AppState, stop: &CancellationToken) {
    loop {
        check_rights(state).await;
        if lock_rights(state).problem.is_none() {
            return;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(RIGHTS_RECHECK) => {}
        }
    }
}

/// `GET /metrics`: the exposition, after reading Odoo's side again when it is stale.
async fn scrape(metrics: Metrics, source: Arc<StateSource>) -> Response {
    source.refresh(&metrics).await;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.render(),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// How long `/readyz` waits for Odoo's answer.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    if !state.authenticated.load(Ordering::Relaxed) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: not yet authenticated with Odoo\n".to_owned(),
        );
    }
    // One try, answered within a few seconds: a probe must not hang on a down Odoo.
    let odoo = state.odoo.without_retries();
    let answer = tokio::time::timeout(READY_TIMEOUT, odoo.version())
        .await
        .unwrap_or_else(|_| {
            Err(OdooError::Transport {
                url: state.odoo.config().display_url(),
                message: format!("no answer within {} s", READY_TIMEOUT.as_secs()),
            })
        });
    if let Err(err) = answer {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: Odoo is not reachable: {err}\n"),
        );
    }
    // A missing right: look again (a probe should see the fix soon), then say it.
    let stale = {
        let rights = lock_rights(&state);
        rights.problem.is_some()
            && rights
                .checked_at
                .is_none_or(|at| at.elapsed() >= RIGHTS_PROBE_RECHECK)
    };
    if stale {
        let _ = tokio::time::timeout(READY_TIMEOUT, check_rights(&state)).await;
    }
    match lock_rights(&state).problem.clone() {
        Some(problem) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {problem}\n"),
        ),
        // A standby is ready too: it stores webhooks, and takes over when the leader stops.
        None => (
            StatusCode::OK,
            format!("ready ({})\n", state.lease.role().describe()),
        ),
    }
}
