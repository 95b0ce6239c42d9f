//! whatsapp-sidecar: WhatsApp Business messaging for Odoo.
//!
//! The daemon's library. `src/main.rs` is a thin binary that parses the command line, loads the
//! configuration, starts tracing and calls into the modules below, one per external peer or
//! concern:
//!
//! | module | owns |
//! |---|---|
//! | [`config`] | `whatsapp-sidecar.toml` + `WHATSAPP_SIDECAR_*` environment + `*_file` secrets |
//! | [`secret`] | the type that keeps tokens and passwords out of logs |
//! | [`odoo`] | the Odoo JSON-RPC client, typed errors, retries, report PDFs |
//! | [`whatsapp`] | the WhatsApp Cloud API client: payloads, errors, media, templates, webhooks |
//! | [`sandbox`] | the built-in Cloud API simulator |
//! | [`phone`] | E.164 normalisation of the numbers typed in Odoo |
//! | [`bus`] | Odoo's bus: one websocket waking the polling loops when Odoo changes what they watch |
//! | [`buttons`] | button payloads bound to a record by an HMAC tag, and their secret in Odoo |
//! | [`lang`] | the languages the daemon writes in (English, French), picked per reader |
//! | [`texts`] | the customer texts (`whatsapp.text`) by language, amounts and dates as customers read them |
//! | [`orders`] | sale orders as the order flows read them, the Validate/Cancel rules, the order details |
//! | [`invoices`] | customer invoices as the invoice flows read them, their texts, portal and payment links |
//! | [`enqueue`] | queuing messages for the outbox at most once, by `dedupe_key` |
//! | [`indicators`] | the `x_whatsapp_*_sent` indicators a sent message sets on its order or invoice |
//! | [`automations`] | new sale orders and "Send details" requests noticed by `write_date`, their messages queued |
//! | [`actions`] | button presses: the matching `whatsapp.button.action` run, its reply queued |
//! | [`alerts`] | email alerts (lettre): paused accounts, expiring tokens, Odoo unreachable, forged webhooks, auto-paused campaigns, failing sends, the messaging limit |
//! | [`accounts`] | the "Check settings" and "Sync templates" buttons: account fields, templates |
//! | [`outbox`] | the send pipeline: poll, claim, gate, render, pace, send, write back |
//! | [`webhook`] | the HTTP receiver of Meta's webhooks: signature check, durable hand-off to Odoo |
//! | [`inbound`] | processing the stored webhook events: statuses, messages, conversations, opt-out |
//! | [`schedule`] | five-field cron schedules (croner), as users type them |
//! | [`housekeeping`] | the scheduled chores: old webhook events deleted, templates synced hourly |
//! | [`lease`] | the sending lease in Odoo: which daemon claims and sends, claims fenced by its epoch |
//! | [`metrics`] | Prometheus metrics for `/metrics`: counters the components record into, backlog read from Odoo when scraped |
//! | [`poll`] | what the polling loops share: backoff after failures, and the bus's wake-ups |
//! | [`daemon`] | `run`: starts the tasks and the HTTP server, stops them on shutdown |
//! | [`check`] | `check`: one OK/FAIL line per check of the configuration and the peers |
//! | [`systemd`] | `Type=notify` readiness, status and watchdog |

pub mod accounts;
pub mod actions;
pub mod alerts;
pub mod automations;
pub mod bus;
pub mod buttons;
pub mod campaigns;
pub mod check;
pub mod config;
pub mod daemon;
pub mod enqueue;
pub mod housekeeping;
pub mod inbound;
pub mod indicators;
pub mod invoices;
pub mod lang;
pub mod lease;
pub mod metrics;
pub mod odoo;
pub mod orders;
pub mod outbox;
pub mod phone;
pub mod poll;
pub mod sandbox;
pub mod scenarios;
pub mod schedule;
pub mod secret;
pub mod systemd;
pub mod telemetry;
pub mod texts;
pub mod webhook;
pub mod whatsapp;
