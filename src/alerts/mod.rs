//! Email alerts: the operator is told by mail when something needs a person.
//!
//! | file | what |
//! |---|---|
//! | [`rules`] | pure: what is observed ([`Observation`]) → the conditions that hold, and the [`Ledger`] deciding which mails go out (one per condition per hour at most, a "resolved" mail when it clears) |
//! | [`mail`] | the only SMTP I/O: lettre's SMTP transport (STARTTLS or TLS), the mails' text |
//! | [`run`] | the loop: observes Odoo, the daemon's counters and Meta's token expiry, evaluates, mails, retries |
//!
//! Conditions ([`AlertKind`]): an account paused (bad token 190, restricted account, policy), a
//! token that expires within `token_expiry_days`, Odoo unreachable for `odoo_unreachable_minutes`,
//! webhooks refused for a bad signature above `bad_signatures_per_hour` (someone else's app or
//! a wrong app secret), a campaign paused by the daemon, the share of failed sends above
//! `send_error_ratio` over 15 minutes, the messaging-limit tier used up (messages held). A mail
//! that cannot be sent is logged and retried at the next check; the daemon never waits for it.

pub mod mail;
pub mod rules;
pub mod run;

use std::collections::BTreeSet;
use std::time::Duration;

use crate::secret::Secret;

pub use mail::{MailError, Mailer};
pub use rules::{AccountState, Condition, Ledger, Mail, MailKind, Observation};
pub use run::{run, AlertsContext};

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlertKind {
    AccountPaused,
    TokenExpiring,
    OdooUnreachable,
    BadSignatures,
    CampaignPaused,
    SendErrors,
    MessagingLimit,
}

impl AlertKind {
    pub const ALL: [AlertKind; 7] = [
        AlertKind::AccountPaused,
        AlertKind::TokenExpiring,
        AlertKind::OdooUnreachable,
        AlertKind::BadSignatures,
        AlertKind::CampaignPaused,
        AlertKind::SendErrors,
        AlertKind::MessagingLimit,
    ];

    /// Its name in `alerts.kinds`.
    pub fn name(self) -> &'static str {
        match self {
            AlertKind::AccountPaused => "account_paused",
            AlertKind::TokenExpiring => "token_expiring",
            AlertKind::OdooUnreachable => "odoo_unreachable",
            AlertKind::BadSignatures => "bad_signatures",
            AlertKind::CampaignPaused => "campaign_paused",
            AlertKind::SendErrors => "send_errors",
            AlertKind::MessagingLimit => "messaging_limit",
        }
    }

    pub fn from_name(name: &str) -> Option<AlertKind> {
        AlertKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// `[alerts]` settings.
#[derive(Debug, Clone)]
pub struct AlertSettings {
    pub enabled: bool,
    /// `smtp://host:587?tls=required` (STARTTLS), `smtps://host:465` (TLS), `smtp://host:25`
    /// (plain, for a relay on the same machine).
    pub smtp_url: Option<url::Url>,
    pub smtp_user: Option<String>,
    pub smtp_password: Option<Secret>,
    pub from: String,
    pub to: Vec<String>,
    pub kinds: BTreeSet<AlertKind>,
    pub odoo_unreachable_after: Duration,
    pub bad_signatures_per_hour: u64,
    /// Failed sends over sent and failed in the last 15 minutes, at least this share (with at
    /// least [`rules::MIN_SENDS_FOR_RATIO`] sends).
    pub send_error_ratio: f64,
    pub token_expiry_days: u32,
    /// How often the conditions are evaluated.
    pub check_interval: Duration,
    /// While a condition holds, it is mailed again after this long.
    pub remind_after: Duration,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            enabled: false,
            smtp_url: None,
            smtp_user: None,
            smtp_password: None,
            from: String::new(),
            to: Vec::new(),
            kinds: AlertKind::ALL.into_iter().collect(),
            odoo_unreachable_after: Duration::from_secs(300),
            bad_signatures_per_hour: 20,
            send_error_ratio: 0.2,
            token_expiry_days: 7,
            check_interval: Duration::from_secs(60),
            remind_after: Duration::from_secs(24 * 3600),
        }
    }
}

#[cfg(test)]
mod tests;
