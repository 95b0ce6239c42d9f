//! `[lease]` settings.

use std::time::Duration;

/// How the sending lease is held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseConfig {
    /// This daemon's name in the lease (shown in Odoo and on a standby's `/readyz`). A daemon
    /// started again under the same name takes its lease back at once, so two daemons must
    /// not share one. Default: the host's name.
    pub name: String,
    /// How long a lease lasts without renewal: a leader that stops renewing (killed, cut off
    /// from Odoo) is replaced after at most this plus `renew`.
    pub ttl: Duration,
    /// How often the leader renews and a standby asks.
    pub renew: Duration,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        LeaseConfig {
            name: host_name(),
            ttl: Duration::from_secs(15),
            renew: Duration::from_secs(5),
        }
    }
}

/// The host's name (`/proc/sys/kernel/hostname`, else `$HOSTNAME`), or `whatsapp-sidecar`.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "whatsapp-sidecar".to_owned())
}
