//! Button actions: a customer's press on a reply button, a list row or a template quick reply
//! runs the matching `whatsapp.button.action`.
//!
//! Inbound processing records every press as a received `whatsapp.message` with its
//! `button_payload`. One loop ([`run`]) reads the presses not yet acted on (`action_state`
//! empty; one `search_read` per poll, through a partial index the addon makes), runs each one's
//! action, and writes the outcome on the press: `action_state` (done, refused, failed, or
//! ignored when no action matches), `action_result` in words, `action_id`, and the order it
//! was about (`res_model`/`res_id`). Replies are queued as `whatsapp.message` records with
//! `dedupe_key = button:<press id>` (the outbox sends them), so a press is answered once even
//! when a run dies half way and the next one acts on it again.
//!
//! Actions are matched on the press's id or payload, exactly or by prefix, among the active
//! actions of the press's account (or of no account) and company (or of none), the first by
//! sequence. What they do:
//!
//! - `reply_text`: replies with the action's text (translated: read in the customer's language);
//! - `confirm_order`, `cancel_order`, `send_order_details`: only with a payload made by the
//!   daemon for that order ([`crate::buttons`]: `<button>:<order id>:<tag>`) and pressed from a
//!   number of the order's customer (the partner or a contact of its commercial entity).
//!   Anything else is refused, the reason written on the press, and nothing changes.
//!   Validate confirms a quotation (`action_confirm`), says "already confirmed" on a confirmed
//!   order and refuses a cancelled one; Cancel cancels a quotation (`action_cancel` with
//!   `disable_cancel_warning`, without which Odoo returns its wizard) and says why not on a
//!   confirmed, locked or invoiced order. After a change: `x_whatsapp_validated` or
//!   `x_whatsapp_rejected`, a note in the order's chatter in the salesperson's language, and
//!   the reply with trigger `order_validation` (the outbox writes `x_whatsapp_validation_sent`
//!   once it is sent). When Odoo refuses the change, the customer is told a salesperson will
//!   contact them and the salesperson gets an activity. Details: the order details
//!   ([`crate::orders::DetailsReader`]) in the customer's language, then the PDF when the
//!   account says so;
//! - other action types (invoices, scenarios, server actions) are not run by this daemon yet:
//!   the press is marked `ignored` with that reason.
//!
//! Replies use the customer texts ([`crate::texts`]); an action's own reply text replaces the
//! text of a successful action. Outside the 24-hour window (a press handled late) the action's
//! template is sent instead, when it has one.
//!
//! | file | what |
//! |---|---|
//! | `plan.rs` | pure: presses and actions as read, matching, the customer check, results and notes |
//! | `run.rs` | the loop: the only file that talks to Odoo |

pub mod extra;
mod menus;
pub mod plan;
mod run;

pub use run::{run, step, ActionsContext, ActionsState, ActionsStats, Step};

use std::time::Duration;

/// The `[actions]` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionsSettings {
    /// How often presses are looked for when inbound processing did not say it recorded some
    /// (it does at once for those of this daemon).
    pub poll_interval: Duration,
    /// Presses handled per step.
    pub batch_size: usize,
    /// A press older than this is refused ("too old") instead of acted on.
    pub max_age: Duration,
}

impl Default for ActionsSettings {
    fn default() -> Self {
        ActionsSettings {
            poll_interval: Duration::from_secs(2),
            batch_size: 100,
            max_age: Duration::from_secs(24 * 3600),
        }
    }
}
