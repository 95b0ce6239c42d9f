//! `[inbound]` settings.

use std::time::Duration;

/// How the processing loop reads and retries stored webhook events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundConfig {
    /// Events read and processed together (one Odoo read, a handful of writes).
    pub batch_size: usize,
    /// How often the loop looks for new events when nothing woke it up.
    pub poll_interval: Duration,
    /// Shortest time between two batches when events trickle in: statuses of one message that
    /// arrive within it are written together.
    pub min_batch_interval: Duration,
    /// How often events that wait (a status that arrived before its message was written back)
    /// are tried again.
    pub retry_interval: Duration,
    /// How long an event may wait before it is given up and marked with an error.
    pub pending_give_up: Duration,
    /// Longest pause after Odoo failures (the pause doubles from `poll_interval` up to this).
    pub max_error_backoff: Duration,
}

impl Default for InboundConfig {
    fn default() -> Self {
        InboundConfig {
            batch_size: 2000,
            poll_interval: Duration::from_secs(1),
            min_batch_interval: Duration::from_millis(200),
            retry_interval: Duration::from_secs(2),
            pending_give_up: Duration::from_secs(24 * 3600),
            max_error_backoff: Duration::from_secs(30),
        }
    }
}
