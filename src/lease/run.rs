//! The loop that holds the lease: asks Odoo every `renew` (a standby: as soon as the lease it
//! saw runs out), publishes the [`Role`], and lets the lease go at shutdown.

use super::{role_after, role_without_answer, Answer, Lease, LeaseConfig, Role, MODEL, NAME};
use crate::metrics::Metrics;
use crate::odoo::OdooClient;
use serde_json::json;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Holds the lease for one process.
pub struct LeaseDriver {
    odoo: OdooClient,
    config: LeaseConfig,
    instance: String,
    tx: watch::Sender<Role>,
    metrics: Metrics,
}

impl LeaseDriver {
    /// The driver and the handle the components share. `instance` tells this process apart
    /// from a former one of the same name (random).
    pub fn new(odoo: OdooClient, config: LeaseConfig, metrics: Metrics) -> (LeaseDriver, Lease) {
        let instance = format!("{}-{:016x}", std::process::id(), fastrand::u64(..));
        let (tx, rx) = watch::channel(Role::Starting);
        let lease = Lease::with(rx);
        (
            LeaseDriver {
                // The loop retries by itself, at its own pace.
                odoo: odoo.without_retries(),
                config,
                instance,
                tx,
                metrics,
            },
            lease,
        )
    }

    /// One question to Odoo; returns when to ask again.
    async fn step(&self) -> Instant {
        let asked = Instant::now();
        let config = &self.config;
        let call = self.odoo.call::<Answer>(
            MODEL,
            "acquire",
            json!([config.name, self.instance, config.ttl.as_secs_f64()]),
            json!({"name": NAME}),
        );
        let answer = match tokio::time::timeout(config.renew, call).await {
            Ok(result) => result.map_err(|e| match e {
                crate::odoo::OdooError::UnknownModel { .. } => format!(
                    "{e}: the addon in Odoo is older than this daemon; upgrade it (Apps > \
                     WhatsApp Sidecar > Upgrade, or odoo-bin -u whatsapp_sidecar). Until then \
                     this daemon stores webhooks and sends nothing"
                ),
                e => e.to_string(),
            }),
            Err(_) => Err(format!(
                "Odoo did not answer within {} s",
                config.renew.as_secs_f64()
            )),
        };
        let before = self.tx.borrow().clone();
        let after = match &answer {
            Ok(answer) => role_after(answer, asked, config.ttl),
            Err(_) => role_without_answer(&before, Instant::now()),
        };
        if let Err(error) = &answer {
            if before.is_leader() != after.is_leader() || matches!(before, Role::Starting) {
                tracing::warn!(%error, "cannot ask Odoo for the sending lease; asking again");
            } else {
                tracing::debug!(%error, "cannot ask Odoo for the sending lease");
            }
        }
        self.publish(before, after.clone());
        match after {
            Role::Leader { until, .. } => (asked + config.renew).min(until),
            Role::Standby { expires_in, .. } if answer.is_ok() => {
                // Ask when the lease runs out (a little after), or at the usual pace.
                asked + config.renew.min(expires_in + Duration::from_millis(200))
            }
            // Suspended, or not known yet: asked again soon, so the work resumes as soon as
            // Odoo answers.
            _ => asked + config.renew.min(Duration::from_secs(1)),
        }
    }

    fn publish(&self, before: Role, after: Role) {
        let changed = match (&before, &after) {
            (Role::Leader { epoch: a, .. }, Role::Leader { epoch: b, .. }) => a != b,
            (Role::Leader { .. }, _) | (_, Role::Leader { .. }) => true,
            (Role::Standby { holder: a, .. }, Role::Standby { holder: b, .. }) => a != b,
            _ => true,
        };
        if changed {
            match &after {
                Role::Leader { epoch, .. } => {
                    tracing::info!(epoch, name = %self.config.name, "took the sending lease: this daemon claims and sends")
                }
                other if before.is_leader() => {
                    tracing::warn!("lost the sending lease: {}", other.describe())
                }
                other => tracing::info!("{}", other.describe()),
            }
            if before.is_leader() || after.is_leader() {
                self.metrics.lease_role(match after {
                    Role::Leader { epoch, .. } => Some(epoch),
                    _ => None,
                });
            }
        }
        self.tx.send_replace(after);
    }

    /// Lets the lease go at once if this process holds it (the daemon is stopping and its
    /// work is done), so a standby or the restarted daemon takes over without waiting.
    pub async fn release(&self) {
        if !self.tx.borrow().is_leader() {
            return;
        }
        self.tx.send_replace(Role::Starting);
        let call = self.odoo.call::<bool>(
            MODEL,
            "release",
            json!([self.instance]),
            json!({"name": NAME}),
        );
        match tokio::time::timeout(Duration::from_secs(5), call).await {
            Ok(Ok(true)) => tracing::info!("released the sending lease"),
            Ok(Ok(false)) => tracing::info!("the sending lease had already passed on"),
            Ok(Err(error)) => {
                tracing::warn!(%error, "could not release the sending lease; it expires by itself")
            }
            Err(_) => tracing::warn!(
                "Odoo did not answer the lease release in time; the lease expires by itself"
            ),
        }
    }
}

/// Asks for the lease until `shutdown`; then returns without releasing it (see
/// [`LeaseDriver::release`], called once the work that needs it has stopped).
pub async fn run(driver: &LeaseDriver, shutdown: CancellationToken) {
    loop {
        let next = driver.step().await;
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep_until(next) => {}
        }
    }
}
