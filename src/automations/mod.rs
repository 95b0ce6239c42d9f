//! Automations: sale orders noticed in Odoo become queued WhatsApp messages.
//!
//! One loop ([`run`]) watches `sale.order` by `write_date` and queues, as `whatsapp.message`
//! records with a `dedupe_key` (the outbox sends them; nothing here calls Meta):
//!
//! - **the new-order message**, when an account of the order's company has "Send new sale
//!   orders" on, for a quotation created after the switch was turned on
//!   (`order_creation_enabled_at`), whose customer has a number and opted in: inside the
//!   customer's 24-hour window an interactive message with the reply buttons Validate / Cancel
//!   / Details, outside it the account's "Template for new orders" with its first three
//!   quick-reply buttons set to the same three payloads. Each payload names the button and the
//!   order and carries an HMAC tag ([`crate::buttons`]), so only the payloads sent here act on
//!   the order. `dedupe_key = order_creation:sale.order:<id>`; the outbox writes
//!   `x_whatsapp_creation_sent` (+ date) once it is sent, and a gate failure on the message and
//!   in the order's chatter;
//! - **the order details**, when the "Send details by WhatsApp" button set
//!   `x_whatsapp_details_requested_at`: composed in the customer's language
//!   ([`crate::orders::DetailsReader`]), followed by the order's PDF when the account says so;
//!   `dedupe_key = order_details:sale.order:<id>:<requested at>`; then the request is cleared.
//!
//! Change detection: each poll reads the orders written since the cursor minus an overlap
//! window (`automations.overlap_secs`: a transaction that started before the cursor but
//! committed after it still has its earlier `write_date`), in pages by id. Orders already
//! handled with the same `write_date` are skipped in memory, so an idle poll is one
//! `search_read` and nothing else. The cursor (the latest `write_date` handled) is kept in
//! Odoo (`whatsapp.cursor`, name `sale.order`) and written only when it moves, so a restart
//! goes on where the last run stopped; without one, the scan starts at the earliest switch-on
//! time of the last 24 hours. The `dedupe_key` constraint is the truth: a restart, an
//! overlapping poll or a second daemon never queues the same message twice.
//!
//! Invoices are watched the same way by a second loop ([`run_invoices`], cursor `account.move`):
//!
//! - **the posted invoice** (`auto_send_invoice_posted`): a customer invoice posted after the
//!   switch was turned on (`invoice_posted_enabled_at`, against the addon's
//!   `x_whatsapp_posted_at`), customer opted in: its PDF (`account.report_invoice`, rendered
//!   and uploaded by the outbox) with a caption (number, amount, due date, portal link);
//!   `dedupe_key = invoice_posted:account.move:<id>`; outside the window the outbox sends the
//!   account's "Template for posted invoices" with the PDF as its header. Nothing runs in the
//!   transaction that posts the invoice;
//! - **payments** (`auto_send_residual_change`): see [`invoices`] (the debounce, the stored
//!   baseline, `dedupe_key = residual_change:account.move:<id>:<amount due>`);
//! - **the invoice details**, when "Send details by WhatsApp" set
//!   `x_whatsapp_details_requested_at`: composed in the customer's language with the portal
//!   link and Odoo's payment link ([`crate::invoices`]), followed by the PDF when the account
//!   says so; then the request is cleared.
//!
//! And **unpaid reminders** run on each account's cron schedule ([`reminders`],
//! [`run_reminders`]).
//!
//! | file | what |
//! |---|---|
//! | `cursor.rs` | a cursor kept in Odoo (`whatsapp.cursor`): the order and invoice scans, the reminders' last runs |
//! | `detect.rs` | pure: the accounts, which order needs what, the messages' values, the scan window |
//! | `run.rs` | the order loop: the only file of the order flow that talks to Odoo |
//! | `invoices.rs` | pure: the invoice accounts, posted/payment/details rules and messages |
//! | `invoices_run.rs` | the invoice loop, talks to Odoo |
//! | `reminders.rs` | pure: the cron schedule in a time zone, the reminder rules; the scheduler over a clock |
//! | `reminders_run.rs` | the reminders' Odoo side |

mod cursor;
pub mod detect;
pub mod invoices;
mod invoices_run;
pub mod reminders;
mod reminders_run;
mod run;

pub use invoices_run::{
    invoice_step, run_invoices, InvoiceStats, InvoiceStep, InvoicesContext, InvoicesState,
    INVOICE_CURSOR,
};
pub use reminders_run::{run_reminders, OdooReminders};
pub use run::{run, step, AutomationsContext, AutomationsState, AutomationsStats, Step};

use std::time::Duration;

/// The `[automations]` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AutomationsSettings {
    /// How often changed orders are looked for.
    pub poll_interval: Duration,
    /// Orders written this long before the cursor are read again (late commits).
    pub overlap: Duration,
    /// Orders read per page.
    pub batch_size: usize,
}

impl Default for AutomationsSettings {
    fn default() -> Self {
        AutomationsSettings {
            poll_interval: Duration::from_secs(1),
            overlap: Duration::from_secs(10),
            batch_size: 1000,
        }
    }
}
