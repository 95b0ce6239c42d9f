//! The "Check settings" and "Sync templates" buttons of `whatsapp.account`.
//!
//! The buttons only set `check_requested` / `sync_requested` in Odoo. [`run`] polls for them
//! every `accounts.poll_interval_secs` (one `search_read`), and at start checks every active
//! account once so the read-only fields (number, quality, messaging limit) are filled.
//!
//! - a **check** runs [`crate::whatsapp::CloudClient::check_account`] and writes, in one `write`,
//!   the phone number's display number, verified name, quality rating (Meta's GREEN / YELLOW /
//!   RED / other as the addon's `green` / `yellow` / `red` / `unknown`), messaging limit, the
//!   report (`last_check_at`, `last_check_ok`, `last_check_message`) and `check_requested = False`;
//! - a **sync** lists the WABA's templates and upserts `whatsapp.template` by (name, language):
//!   new ones in one `create` with their `whatsapp.template.variable` lines, changed ones with
//!   grouped writes (`write_each`), variables missing on existing templates in one `create`;
//!   existing variable mappings are never touched and nothing is deleted (a template gone from
//!   Meta gets `status = deleted`). Then `sync_requested = False`, `last_sync_at` and a summary in
//!   `last_check_message`.
//!
//! Both call Meta with the account's own "Graph API version". A Meta error (refused token, wrong
//! id) or a setting refused before any call (a malformed version) is written as
//! `last_check_ok = False` with what to do, and the flag is cleared, so the button never waits
//! forever. Odoo unreachable: a warning, and
//! the flag stays set for the next poll.
//!
//! | file | what |
//! |---|---|
//! | `mapping.rs` | pure: Meta's answers as Odoo values, the template diff ([`mapping::plan_sync`]) |
//! | `run.rs` | the only I/O: the poll, the check, the sync |

pub mod mapping;
mod run;

pub use run::{poll_once, run};

use crate::odoo::OdooClient;
use crate::whatsapp::CloudClient;
use std::time::Duration;

/// The default `accounts.poll_interval_secs`.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);

/// What the accounts task needs.
#[derive(Clone)]
pub struct AccountsContext {
    /// Odoo, where the accounts and templates are.
    pub odoo: OdooClient,
    /// The Cloud API (or the sandbox).
    pub whatsapp: CloudClient,
    /// How often the buttons' flags are looked for.
    pub poll_interval: Duration,
    /// Woken by Odoo's bus when a check or sync is asked for; polls are slow while it is up.
    pub bus: crate::poll::Wake,
}

#[cfg(test)]
mod tests;
