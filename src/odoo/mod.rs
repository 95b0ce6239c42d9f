//! The Odoo client: JSON-RPC (`/jsonrpc`) for data, a web session for PDF reports.
//!
//! Layout (only `client.rs` does I/O):
//!
//! | file | holds |
//! |---|---|
//! | [`client`] | [`OdooClient`] and [`ClientConfig`]: HTTP, uid cache, retries, concurrency bound, web session, typed helpers |
//! | [`protocol`] | request bodies and response decoding (pure) |
//! | [`error`] | [`OdooError`], and how Odoo's error bodies map to it (pure) |
//! | [`types`] | [`Many2one`], [`Domain`], [`Context`], serde helpers for `false`-as-empty and datetimes |
//! | [`batch`] | how per-record updates are split into `write` and `load` calls (pure) |
//! | [`diagnose`] | the Odoo lines of `whatsapp-sidecar check` |
//!
//! ```no_run
//! # async fn demo() -> Result<(), whatsapp_sidecar::odoo::OdooError> {
//! use whatsapp_sidecar::odoo::{ClientConfig, Context, Domain, Many2one, OdooClient, SearchOptions};
//! use whatsapp_sidecar::secret::Secret;
//!
//! let mut cfg = ClientConfig::new("http://127.0.0.1:8069".parse().unwrap(), "wa17", "admin");
//! cfg.api_key = Some(Secret::new("..."));
//! let odoo = OdooClient::new(cfg)?.with_context(Context::new().lang("fr_FR"));
//!
//! #[derive(serde::Deserialize)]
//! struct Order { id: i64, name: String, partner_id: Many2one }
//! let drafts: Vec<Order> = odoo
//!     .search_read("sale.order", &Domain::leaf("state", "=", "draft"), &["name", "partner_id"],
//!                  &SearchOptions::new().limit(10).order("id desc"))
//!     .await?;
//! let pdf = odoo.report_pdf("sale.report_saleorder", &[drafts[0].id]).await?;
//! # let _ = pdf; Ok(()) }
//! ```

pub mod batch;
pub mod client;
pub mod diagnose;
pub mod error;
pub mod protocol;
pub mod types;

pub use client::{ClientConfig, OdooClient};
pub use diagnose::{diagnose, CheckLine};
pub use error::{Credential, OdooError};
pub use types::{
    de, escape_html, format_datetime, parse_datetime, Access, Context, Domain, FieldInfo, Many2one,
    SearchOptions, ServerVersion,
};
