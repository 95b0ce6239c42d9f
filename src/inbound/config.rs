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
    /// How long statuses that would leave a message short of final (`sent`, `delivered`, or
    /// `read` before its `delivered`) are kept in memory for the next status of the same
    /// message, so both cost one write.
    pub status_linger: Duration,
    /// While statuses stream in, a batch holding nothing but statuses is applied at most this
    /// often (the events are kept in memory meanwhile, as for `status_linger`); a batch with
    /// anything else (a customer's message, a button press) is applied at once. Zero: every
    /// batch is applied when read.
    pub status_batch_interval: Duration,
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
            min_batch_interval: Duration::from_millis(500),
            status_linger: Duration::from_secs(1),
            status_batch_interval: Duration::from_secs(1),
            retry_interval: Duration::from_secs(2),
            pending_give_up: Duration::from_secs(24 * 3600),
            max_error_backoff: Duration::from_secs(30),
        }
    }
}
