//! Inbound processing: turns the stored webhook events (`whatsapp.webhook.event`) into Odoo
//! records, in order of arrival, idempotently.
//!
//! Layout:
//! - [`model`]: the items a webhook carries, in the daemon's terms;
//! - [`status`]: delivery statuses: matching, forward-only merge, coalescing (pure);
//! - [`contact`]: the 24-hour window and partner matching by number (pure);
//! - [`optout`]: opt-out keywords (pure).

pub mod contact;
pub mod model;
pub mod optout;
pub mod parse;
pub mod status;
