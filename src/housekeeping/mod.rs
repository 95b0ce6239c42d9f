//! Housekeeping: the daemon's chores on a schedule (`[housekeeping]`, five-field cron
//! expressions in `housekeeping.time_zone`).
//!
//! - **Retention of webhook events** (`retention_schedule`, daily at 03:30 by default, and once a
//!   minute after start): events processed without error and received more than
//!   `processed_event_days` ago (30) are deleted, in batches of `batch_size` (one `unlink` each,
//!   so no long transaction); events not processed, or processed with an error, are kept
//!   `failed_event_days` (90, never fewer): they are the trace of what went wrong. The messages
//!   they created are kept (their link to the event is cleared by Odoo, on an index).
//! - **Template sync** (`template_sync_schedule`, hourly by default; empty: off): every active
//!   account gets `sync_requested`, as its "Sync templates" button sets it; the accounts
//!   component (woken by Odoo's bus) does the sync, as for the button. Template webhooks still
//!   update templates as they come.
//!
//! Layout: [`plan`] (the schedules and the domains, pure), [`run`] (the only I/O: the Odoo calls
//! and the loop).

pub mod plan;
pub mod run;

pub use plan::{HousekeepingSettings, Job};
pub use run::{request_template_sync, retention_once, run, HousekeepingContext, Retention};
