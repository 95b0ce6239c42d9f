//! Inbound processing: turns the stored webhook events (`whatsapp.webhook.event`) into Odoo
//! records, in order of arrival, idempotently.
//!
//! The webhook receiver ([`crate::webhook`]) only stores what Meta sends. The loop here
//! ([`run`]) reads the stored events in batches, oldest first, and for each batch:
//!
//! - applies delivery statuses to the outbound messages they are about (found by wamid, or by
//!   the callback data the outbox attached): forward-only, every timestamp kept, all statuses
//!   of one message in one write; a status for a message Odoo does not know yet waits and is
//!   retried, and is given up (with an error on the event) only after `pending_give_up`;
//!   statuses that would leave a message short of final (`sent`, `delivered`, `read` before its
//!   `delivered`) are kept in memory for a short while ([`Deferred`]: `status_linger`,
//!   `status_batch_interval`) and processed with
//!   the next batch, so a message's statuses cost one write even when they arrive in different
//!   batches (the events stay unmarked in Odoo meanwhile, so a restart loses nothing);
//! - records inbound messages as received `whatsapp.message`s of the right type, in their
//!   conversation (created on first contact, linked to the partner with that number), and
//!   moves the 24-hour window forward; an opt-out keyword opts the partner out and queues one
//!   confirmation, in the customer's language; each new message is noted on the contact's
//!   chatter (and on the order or invoice it answers), and the contact's salesperson, else the
//!   account's responsible user, gets an activity or a Discuss message, at most once per
//!   conversation per hour ([`notify`]); received files are downloaded into attachments by a
//!   separate pass
//!   ([`fetch_media`], in its own task woken by the batches that bring files), so a slow
//!   download never holds up the messages;
//! - writes template status and quality, and account quality and limits;
//! - marks each event processed, waiting, or processed with its error (in the main company's
//!   language).
//!
//! Layout (only `driver.rs` does I/O):
//!
//! | file | holds |
//! |---|---|
//! | [`driver`] | [`run`], [`step`], the Odoo reads and writes |
//! | [`plan`] | what a batch changes, from the events and the records read |
//! | [`parse`] | a stored body to [`model::Item`]s (on the WhatsApp client's parser) |
//! | [`status`] | status matching, forward-only merge, coalescing |
//! | [`contact`] | the 24-hour window, partner matching by number |
//! | [`media`] | received files: names, attachment values, retry bookkeeping |
//! | [`notify`] | who is told that a customer wrote, and the texts of notes and notifications |
//! | [`optout`] | opt-out keywords, the confirmation's language |
//! | [`model`] | the items and states |
//! | [`config`] | [`InboundConfig`] |

pub mod config;
pub mod contact;
pub mod driver;
pub mod media;
pub mod model;
pub mod notify;
pub mod optout;
pub mod parse;
pub mod plan;
pub mod status;

pub use config::InboundConfig;
pub use driver::{
    fetch_media, run, step, step_with, Deferred, InboundContext, InboundError, MediaFetch, Pass,
    StepReport,
};
pub use media::MediaConfig;
