//! The outbox: queued `whatsapp.message` records in Odoo become WhatsApp messages.
//!
//! One loop ([`run`]) polls the due queued outbound messages in batches, claims each batch in one
//! `write` (`state = sending`, `claimed_at`), checks every message against the gates, renders
//! it, paces it, sends it to the Cloud API with the message id as `biz_opaque_callback_data`,
//! and writes the results back in batches. Each account's calls use its own "Graph API version";
//! an account whose settings cannot work (no token, a malformed version) is paused before any
//! call, and its messages wait. Everything but the loop is pure and unit-tested:
//!
//! | file | holds |
//! |---|---|
//! | `model.rs` | the records read (message, partner, conversation, account, template, company), decoded from Odoo's JSON |
//! | `gate.rs` | the gates: account, consent, E.164, 24-hour window, template; plain-words failures |
//! | `limit.rs` | Meta's daily messaging limit: tiers, the unique customers reached per WABA in 24 hours, hold or send |
//! | `render.rs` | template parameters from the source record through the variable mapping |
//! | `compose.rs` | the Cloud API request (checked against the template), and a failed send's outcome |
//! | `pacing.rs` | `governor` buckets: per-account throughput, per-recipient pair rate, adaptive slow-down |
//! | `retry.rs` | jittered exponential `next_attempt_at`, bounded attempts |
//! | `writeback.rs` | outcomes → one result write per message, chatter notes, source indicators |
//! | `reconcile.rs` | messages left in `sending`; the in-flight registry shared with the inbound side |
//! | `run.rs` | the loop: the only file that talks to Odoo and to the Cloud API |
//!
//! # Crash safety
//!
//! A message is claimed (`sending`) before it is sent, and its result (`sent` with the wamid,
//! `failed`, or back to `queued`) is written after; every send carries the Odoo message id as
//! `biz_opaque_callback_data`, which Meta echoes in every status webhook. If the daemon dies
//! between the send and the write, the message is found in `sending` at the next start: when a
//! status webhook with its callback data arrived meanwhile (the inbound processor then writes
//! its wamid and state), it counts as sent; otherwise it is requeued only after the reconcile
//! delay (`reconcile_delay`, 2 minutes by default) has passed both since its claim and since
//! the daemon started (or Odoo last came back after an outage), so Meta's status for a send
//! made just before the crash has time to arrive and be stored. A send whose answer was lost (a timeout after the request left) is treated the same
//! way instead of being repeated at once. So no message is ever lost, and a message is sent
//! twice only if Meta accepted it without answering and without any status webhook reaching the
//! daemon within the reconcile delay.

/// `format!` in one of the daemon's languages: `tr!(lang, "Sent to {to}.", "Envoyé au {to}.")`.
/// Both texts take the same arguments (inline names, or a trailing list).
macro_rules! tr {
    ($lang:expr, $en:literal, $fr:literal $(, $($arg:tt)*)?) => {
        match $lang {
            $crate::lang::Lang::En => format!($en $(, $($arg)*)?),
            $crate::lang::Lang::Fr => format!($fr $(, $($arg)*)?),
        }
    };
}

pub mod compose;
pub mod gate;
pub mod limit;
pub mod model;
pub mod pacing;
pub mod reconcile;
pub mod render;
pub mod retry;
mod run;
pub mod writeback;

pub use gate::{gate, Content, GateFailure, GateKind, SendPlan, Snapshot};
pub use pacing::{Pacer, PacingSettings};
pub use reconcile::{reconcile, InFlight};
pub use retry::{RetryDecision, RetryPolicy};
pub use run::{due_domain, run, OutboxContext, OutboxStats, StatsSnapshot};
pub use writeback::{callback_data, Outcome};

use std::time::Duration;

/// The outbox's settings (the `[outbox]` section of the configuration).
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxSettings {
    /// How long to wait before polling again when nothing was due.
    pub poll_interval: Duration,
    /// Messages claimed per poll.
    pub batch_size: usize,
    /// Messages claimed and not yet written back, at most (a multiple of `batch_size` lets the
    /// next batch be claimed while the previous one is paced out).
    pub max_in_flight: usize,
    /// Sends to the Cloud API at the same time, at most.
    pub concurrency: usize,
    /// A message left in `sending` without proof is requeued after this long.
    pub reconcile_delay: Duration,
    /// Attempts before a message that keeps failing for a passing reason is marked failed.
    pub max_attempts: u32,
    /// First retry delay when the error suggests none.
    pub retry_base: Duration,
    /// Longest retry delay (unless Meta's error asks for longer, e.g. a day for 131049).
    pub retry_max: Duration,
    /// At most one message per recipient per this interval. Meta's pair rate is about 6 s;
    /// the default keeps half a second of margin for the network between the daemon and Meta.
    pub pair_interval: Duration,
    /// A message whose recipient is busy for longer than this is requeued rather than held.
    pub max_pair_hold: Duration,
    /// Results are written back at least this often.
    pub flush_interval: Duration,
    /// Messages of a paused account come back after this long (to see whether it was resumed).
    pub paused_recheck: Duration,
    /// Accounts, companies and templates are read again after this long.
    pub cache_ttl: Duration,
    /// Post a note in the chatter of the source document when a message is sent or fails.
    pub chatter_notes: bool,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        OutboxSettings {
            poll_interval: Duration::from_millis(500),
            batch_size: 500,
            max_in_flight: 1000,
            concurrency: 64,
            reconcile_delay: Duration::from_secs(120),
            max_attempts: 8,
            retry_base: Duration::from_secs(5),
            retry_max: Duration::from_secs(3600),
            pair_interval: Duration::from_millis(6_500),
            max_pair_hold: Duration::from_secs(30),
            flush_interval: Duration::from_millis(500),
            paused_recheck: Duration::from_secs(60),
            cache_ttl: Duration::from_secs(15),
            chatter_notes: true,
        }
    }
}

impl OutboxSettings {
    /// The retry rules these settings describe.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            base: self.retry_base,
            max: self.retry_max,
            max_attempts: self.max_attempts.max(1),
        }
    }

    /// The pacing these settings describe.
    pub fn pacing(&self) -> PacingSettings {
        PacingSettings {
            pair_interval: self.pair_interval,
            ..PacingSettings::default()
        }
    }
}
