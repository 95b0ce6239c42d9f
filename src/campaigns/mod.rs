//! Campaigns: an audience of opted-in contacts, drip steps, send windows, throttling, KPIs and
//! auto-pause, turned into queued `whatsapp.message` records that the outbox sends.
//!
//! The addon's buttons only record requests (`queue_requested`, `state`); one loop ([`run`])
//! carries them out:
//!
//! - **Generate queue**: the audience is the campaign's filter (`partner_domain`, read as a
//!   literal by [`domain::parse`], never evaluated) and tags; it is read in pages by id and the
//!   recipients of each page created in one `create`, so memory stays flat whatever its size.
//!   Contacts opted in, not opted out, with a number that normalises to E.164 (the company's
//!   country as default region) become `pending`, one per number; the others are `skipped`
//!   with the reason ([`audience`]). Regenerating adds the contacts not yet in the queue. The
//!   result is written in `queue_message`. A campaign started without a queue gets one first.
//! - **Run**: Start (now or at `scheduled_at`), Pause, Resume and Cancel act within one poll.
//!   Messages are created just in time, a few seconds of sending ahead (`ahead_secs`, see
//!   [`pace`]), at the campaign's `throttle_per_minute` (never above its number's
//!   `throughput_mps`) and within its `daily_cap`. The outbox sends only the messages of
//!   campaigns that are running, and sends transactional messages first (campaign messages
//!   have `priority` 0, the others 10; the outbox polls `priority desc, id`).
//! - **Drip steps**: step 1 at the start (plus its delay), each next one `delay_hours` after
//!   the previous one was queued for that recipient, if its condition holds when it is due
//!   (`always`, `not_read`, `not_replied`, `read_not_replied`; [`plan`]); a step whose
//!   condition fails is skipped and the next one follows its own delay.
//! - **Send windows** in the recipient's time zone ([`window`]): partner `tz`, else the
//!   company's (its contact's `tz`), per `timezone_rule`; a recipient outside the window gets
//!   `next_due_at` at the next opening, across midnight, weekends and DST changes.
//! - **KPIs**: every `kpi_interval` the recipients follow their messages (sent, delivered,
//!   read, failed with the reason) and the figures are written from one `read_group` of the
//!   recipients by state; final figures when the campaign is done, and for a day after (late
//!   read receipts). Replies (any inbound message from the contact) set `replied_at`; an
//!   opt-out (STOP) ends the recipient's campaign.
//! - **Auto-pause** with `paused_reason` in the owner's language: a step's template not
//!   approved (paused or disabled by Meta), the account's quality RED, errors 131048 or 131049,
//!   the messaging tier used up for the day (`auto_resume_at`: resumed automatically), more
//!   than `max_failure_ratio` of the last 200 sends failed.
//! - **Exactly once**: each message has `dedupe_key =
//!   campaign:<id>:step:<id>:recipient:<id>`, created before the recipient is moved on; a
//!   crash in between only repeats the enqueue, which finds the key. Retries are the outbox's.
//!
//! | file | what |
//! |---|---|
//! | `domain.rs` | pure: the audience filter literal |
//! | `audience.rs` | pure: recipient or skipped, and why |
//! | `window.rs` | pure: send windows in a time zone |
//! | `pace.rs` | pure: throttle, daily cap, just in time |
//! | `plan.rs` | pure: drip steps, conditions, recipient states, KPIs, auto-pause rules |
//! | `model.rs` | the records read |
//! | `run.rs` | the loop: the only file that talks to Odoo |

pub mod audience;
pub mod domain;
pub mod model;
pub mod pace;
pub mod plan;
mod run;
pub mod window;

pub use run::{
    run, step, CampaignsContext, CampaignsState, CampaignsStats, Step, StepError,
    CAMPAIGN_PRIORITY, REPLY_CURSOR,
};

use std::time::Duration;

/// The `[campaigns]` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignsSettings {
    /// How often campaigns are looked at.
    pub poll_interval: Duration,
    /// How often KPIs are written and recipients follow their messages.
    pub kpi_interval: Duration,
    /// Seconds of sending queued ahead of the outbox, at most.
    pub ahead: Duration,
    /// Recipients read or created per call.
    pub batch_size: usize,
    /// A running campaign pauses when more than this share of its last 200 sends failed.
    pub max_failure_ratio: f64,
}

impl Default for CampaignsSettings {
    fn default() -> Self {
        CampaignsSettings {
            poll_interval: Duration::from_secs(1),
            kpi_interval: Duration::from_secs(5),
            ahead: Duration::from_secs(5),
            batch_size: 1000,
            max_failure_ratio: 0.2,
        }
    }
}
