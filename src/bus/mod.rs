//! Odoo's bus: one websocket to Odoo (`/websocket`), subscribed to the addon's channel
//! `whatsapp_sidecar`, so a click in Odoo wakes the component concerned at once instead of at
//! its next poll.
//!
//! The addon notifies the channel after the transaction that made the change commits (one
//! notification per model and transaction, naming the model and ids, nothing secret) when: a
//! message is queued or requeued, an account's check or sync is asked for, a campaign is
//! started, paused, resumed or cancelled or its queue asked for, a sale order is created or its
//! details asked for, a customer invoice is posted, paid or its details asked for. This module
//! maps the model to the polling loops that care ([`Hub`]) and wakes them through
//! [`crate::poll::Wake`]; the loops meet Odoo, not this module.
//!
//! Polling stays the truth. While the bus is connected, idle loops poll at the slow rate
//! (`bus.slow_poll_interval_secs`, 30 s); when it drops, they go back to their own rates at once
//! and the daemon reconnects with backoff, asking Odoo for the notifications it missed (`last`).
//!
//! Layout: [`protocol`] (URL, frames and close codes, pure), [`client`] (the only I/O: the HTTP
//! upgrade through reqwest with the web session cookie, and the frames), [`run`] (the
//! reconnecting loop).

pub mod client;
pub mod protocol;
pub mod run;

pub use client::{BusClient, Connection};
pub use run::run;

use crate::odoo::OdooError;
use crate::poll::Wake;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};
use url::Url;

/// `[bus]`: Odoo's bus subscription.
#[derive(Debug, Clone)]
pub struct BusSettings {
    /// Whether to subscribe at all (`false`: polling only).
    pub enabled: bool,
    /// Where Odoo serves `/websocket`; `None`: `odoo.url`. With `workers > 0` Odoo serves it on
    /// its gevent port (8072 by default).
    pub url: Option<Url>,
    /// How often an idle loop polls while the bus is connected.
    pub slow_poll_interval: Duration,
}

impl Default for BusSettings {
    fn default() -> Self {
        BusSettings {
            enabled: true,
            url: None,
            slow_poll_interval: Duration::from_secs(30),
        }
    }
}

/// Why the bus could not be used. The daemon polls meanwhile and tries again.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The web session could not be opened (no password, refused login, Odoo down).
    #[error("cannot open the web session for the bus: {0}")]
    Session(#[source] OdooError),
    /// The websocket could not be reached.
    #[error("cannot reach Odoo's bus at {url}: {message}")]
    Unreachable { url: String, message: String },
    /// Odoo answered the upgrade with something else than 101.
    #[error("Odoo answered HTTP {status} to the websocket upgrade at {url}: {hint}")]
    Refused {
        url: String,
        status: u16,
        hint: &'static str,
    },
    /// The connection broke the websocket protocol.
    #[error("Odoo's bus at {url} broke the protocol: {detail}")]
    Protocol { url: String, detail: String },
    /// Odoo closed the connection.
    #[error("Odoo closed the bus connection ({code}: {reason})")]
    Closed { code: u16, reason: &'static str },
    /// Nothing came from Odoo for too long (Odoo pings an idle connection every 45 s).
    #[error("nothing came from Odoo's bus for {0:?}; the connection is taken as lost")]
    Silent(Duration),
}

impl BusError {
    /// Whether trying again soon can work (a missing route or a refused login needs a fix
    /// first; the daemon still tries again, less often).
    pub fn is_retryable(&self) -> bool {
        match self {
            BusError::Session(e) => e.is_retryable(),
            BusError::Refused { status, .. } => matches!(status, 500..=599),
            BusError::Unreachable { .. }
            | BusError::Protocol { .. }
            | BusError::Closed { .. }
            | BusError::Silent(_) => true,
        }
    }
}

/// Which polling loops a model's notifications wake, and whether the bus is connected.
pub struct Hub {
    up: watch::Sender<bool>,
    slow: Duration,
    routes: Vec<(&'static str, Arc<Notify>)>,
    /// Subscriptions made, and notifications of the addon received (for tests and logs).
    subscriptions: AtomicU64,
    delivered: AtomicU64,
    /// `odoo_bus_connected` and `odoo_bus_notifications_total`.
    metrics: crate::metrics::Metrics,
}

impl Hub {
    /// A hub whose loops poll every `slow` while idle and the bus is up.
    pub fn new(slow: Duration) -> Hub {
        Hub {
            up: watch::channel(false).0,
            slow,
            routes: Vec::new(),
            subscriptions: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            metrics: Default::default(),
        }
    }

    /// This hub recording the connection and the notifications in `metrics`.
    pub fn with_metrics(mut self, metrics: crate::metrics::Metrics) -> Hub {
        self.metrics = metrics;
        self
    }

    /// The idle interval while the bus is up.
    pub fn slow(&self) -> Duration {
        self.slow
    }

    /// How many times the daemon subscribed.
    pub fn subscriptions(&self) -> u64 {
        self.subscriptions.load(Ordering::Relaxed)
    }

    /// How many of the addon's notifications arrived.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// A [`Wake`] for a loop that cares about `models`.
    pub fn wake(&mut self, models: &[&'static str]) -> Wake {
        self.wake_with(Arc::new(Notify::new()), models)
    }

    /// A [`Wake`] on an existing `notify` (a loop also woken in-process), for `models`.
    pub fn wake_with(&mut self, notify: Arc<Notify>, models: &[&'static str]) -> Wake {
        for model in models {
            self.routes.push((model, notify.clone()));
        }
        Wake::new(notify, self.up.subscribe(), self.slow)
    }

    /// Wakes the loops that care about `model`; returns how many.
    pub fn deliver(&self, model: &str) -> usize {
        self.delivered.fetch_add(1, Ordering::Relaxed);
        self.metrics.bus_notification();
        let mut woken = 0;
        for (m, notify) in &self.routes {
            if *m == model {
                notify.notify_one();
                woken += 1;
            }
        }
        woken
    }

    /// Says whether the bus is connected (the loops' pauses change with it).
    pub fn set_up(&self, up: bool) {
        if up {
            self.subscriptions.fetch_add(1, Ordering::Relaxed);
        }
        self.metrics.bus_connected(up);
        self.up
            .send_if_modified(|now| std::mem::replace(now, up) != up);
    }

    /// Whether the bus is connected.
    pub fn is_up(&self) -> bool {
        *self.up.borrow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_notification_wakes_the_loops_of_its_model_only() {
        let mut hub = Hub::new(Duration::from_secs(30));
        let outbox = hub.wake(&["whatsapp.message", "whatsapp.account"]);
        let accounts = hub.wake(&["whatsapp.account"]);
        assert_eq!(hub.deliver("whatsapp.account"), 2);
        assert_eq!(hub.deliver("res.partner"), 0);
        assert_eq!(hub.deliver("whatsapp.message"), 1);
        for wake in [&outbox, &accounts] {
            let start = tokio::time::Instant::now();
            wake.sleep(Duration::from_secs(5)).await;
            assert_eq!(start.elapsed(), Duration::ZERO);
        }
        // One wake-up per delivery is kept, not more.
        let start = tokio::time::Instant::now();
        accounts.sleep(Duration::from_secs(5)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(5));

        assert!(!outbox.bus_up());
        hub.set_up(true);
        assert!(outbox.bus_up() && hub.is_up());
        assert_eq!(
            outbox.idle_pause(Duration::from_millis(500), None),
            Duration::from_secs(30)
        );
    }
}
