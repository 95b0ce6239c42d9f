//! Test-only code shared by the integration tests and the benchmark examples.
//!
//! - [`odoo_standin`]: an Odoo 17 stand-in on 127.0.0.1 (see its module docs).
//! - [`smtp`]: an SMTP server on 127.0.0.1 keeping the mails it receives (the alert tests).
//!
//! Each test binary uses a part of it, hence `dead_code` is allowed here.
#![allow(dead_code, unused_imports)]

pub mod odoo_standin;
pub mod smtp;
pub mod webhook_load;

pub use odoo_standin::{Fault, OdooStandin, Outage};

use std::time::Duration;
use whatsapp_sidecar::odoo::ClientConfig;
use whatsapp_sidecar::secret::Secret;

/// A client configuration for the stand-in: API key and password set, short timeout.
pub fn client_config(standin: &OdooStandin) -> ClientConfig {
    let url = match standin.url().parse() {
        Ok(u) => u,
        Err(e) => panic!("stand-in URL {}: {e}", standin.url()),
    };
    let mut cfg = ClientConfig::new(url, standin.database(), standin.login());
    cfg.api_key = Some(Secret::new(standin.api_key()));
    cfg.password = Some(Secret::new(standin.password()));
    cfg.timeout = Duration::from_secs(10);
    cfg.max_concurrent_requests = 4;
    cfg.max_retries = 3;
    cfg
}
