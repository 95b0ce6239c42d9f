//! What holds, and which mails go out (pure).

use chrono::{DateTime, Duration as Delta, Utc};
use std::collections::{BTreeMap, BTreeSet};

use super::{AlertKind, AlertSettings};

/// The share of failed sends is judged only over at least this many sends.
pub const MIN_SENDS_FOR_RATIO: u64 = 20;

/// A mail for the same condition goes out at most once per this long.
pub const MAIL_INTERVAL: Delta = Delta::hours(1);

/// An active WhatsApp account as read from Odoo.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccountState {
    pub id: i64,
    pub name: String,
    pub paused: bool,
    pub paused_reason: Option<String>,
    pub messaging_limit: Option<String>,
    /// Messages waiting because the account's messaging-limit tier is used up.
    pub held_by_limit: u64,
    /// When Meta says the token expires (`None`: never, or not known).
    pub token_expires_at: Option<DateTime<Utc>>,
}

/// What the alerts loop saw. A source it could not read is `None`: the conditions it feeds
/// stay as they were (neither raised nor resolved).
#[derive(Debug, Clone, Default)]
pub struct Observation {
    /// Since when Odoo has not answered (`None`: it answered).
    pub odoo_down_since: Option<DateTime<Utc>>,
    pub accounts: Option<Vec<AccountState>>,
    /// Campaigns paused by the daemon: (id, name, reason).
    pub auto_paused_campaigns: Option<Vec<(i64, String, String)>>,
    /// Webhook POSTs refused for their signature in the last hour.
    pub bad_signatures_last_hour: Option<u64>,
    /// Sends accepted and failed for good in the last 15 minutes.
    pub sends_last_15_min: Option<(u64, u64)>,
}

/// One condition that holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub kind: AlertKind,
    /// What it is about (`account 3`, `Odoo`, ...): with `kind`, the condition's identity.
    pub subject: String,
    /// One line: the mail's subject.
    pub summary: String,
    /// What happened and what to do.
    pub details: String,
}

/// The conditions that hold in `seen` at `now`, for the enabled kinds; and the kinds whose
/// source could not be read.
pub fn conditions(
    settings: &AlertSettings,
    seen: &Observation,
    now: DateTime<Utc>,
) -> (Vec<Condition>, BTreeSet<AlertKind>) {
    let mut found = Vec::new();
    let mut unknown = BTreeSet::new();
    let on = |k: AlertKind| settings.kinds.contains(&k);

    if on(AlertKind::OdooUnreachable) {
        if let Some(since) = seen.odoo_down_since {
            let after = Delta::from_std(settings.odoo_unreachable_after).unwrap_or(Delta::MAX);
            if now - since >= after {
                found.push(Condition {
                    kind: AlertKind::OdooUnreachable,
                    subject: "Odoo".into(),
                    summary: format!(
                        "Odoo has been unreachable for {} minutes",
                        (now - since).num_minutes()
                    ),
                    details: format!(
                        "The daemon has not reached Odoo since {} UTC. Nothing is sent and Meta's \
                         webhooks wait in the local spool (or are answered 503 and retried by \
                         Meta). Check that Odoo and its database run and that odoo.url in the \
                         daemon's configuration points at it; `whatsapp-sidecar check` says what \
                         fails.",
                        since.format("%Y-%m-%d %H:%M")
                    ),
                });
            }
        }
    }

    match &seen.accounts {
        None => {
            unknown.extend([
                AlertKind::AccountPaused,
                AlertKind::TokenExpiring,
                AlertKind::MessagingLimit,
            ]);
        }
        Some(accounts) => {
            for a in accounts {
                let subject = format!("account {}", a.id);
                if on(AlertKind::AccountPaused) && a.paused {
                    let reason = a
                        .paused_reason
                        .clone()
                        .unwrap_or_else(|| "no reason recorded".into());
                    found.push(Condition {
                        kind: AlertKind::AccountPaused,
                        subject: subject.clone(),
                        summary: format!("WhatsApp account {} is paused", a.name),
                        details: format!(
                            "Sending from the WhatsApp account {} (id {}) is paused: {reason}\n\n\
                             Its messages stay queued. Fix the cause (a new access token, the \
                             account's standing in WhatsApp Manager), then untick Paused on the \
                             account in Odoo (WhatsApp > Configuration > Accounts).",
                            a.name, a.id
                        ),
                    });
                }
                if on(AlertKind::TokenExpiring) {
                    let days = Delta::days(i64::from(settings.token_expiry_days));
                    if let Some(at) = a.token_expires_at.filter(|at| *at - now <= days) {
                        let when = if at <= now {
                            format!("expired on {} UTC", at.format("%Y-%m-%d %H:%M"))
                        } else {
                            format!("expires on {} UTC", at.format("%Y-%m-%d %H:%M"))
                        };
                        found.push(Condition {
                            kind: AlertKind::TokenExpiring,
                            subject: subject.clone(),
                            summary: format!(
                                "The access token of WhatsApp account {} {when}",
                                a.name
                            ),
                            details: format!(
                                "Meta says the access token of the WhatsApp account {} (id {}) \
                                 {when}. Generate a new token (a System User token in Meta \
                                 Business Settings does not expire) and paste it in the account \
                                 in Odoo, then press Check settings.",
                                a.name, a.id
                            ),
                        });
                    }
                }
                if on(AlertKind::MessagingLimit) && a.held_by_limit > 0 {
                    let tier = a.messaging_limit.as_deref().unwrap_or("unknown");
                    found.push(Condition {
                        kind: AlertKind::MessagingLimit,
                        subject,
                        summary: format!(
                            "WhatsApp account {} has used up its messaging limit",
                            a.name
                        ),
                        details: format!(
                            "{} messages of the WhatsApp account {} (id {}) wait because it reached \
                             Meta's limit of customers reached in 24 hours (tier {tier}). They go \
                             out as the 24-hour window moves. Meta raises the tier as the number's \
                             quality stays high; a campaign can be spread over more days.",
                            a.held_by_limit, a.name, a.id
                        ),
                    });
                }
            }
        }
    }

    if on(AlertKind::CampaignPaused) {
        match &seen.auto_paused_campaigns {
            None => {
                unknown.insert(AlertKind::CampaignPaused);
            }
            Some(list) => {
                for (id, name, reason) in list {
                    found.push(Condition {
                        kind: AlertKind::CampaignPaused,
                        subject: format!("campaign {id}"),
                        summary: format!("Campaign {name} was paused"),
                        details: format!(
                            "The daemon paused the campaign {name} (id {id}): {reason}\n\nFix the \
                             cause, then press Resume on the campaign in Odoo."
                        ),
                    });
                }
            }
        }
    }

    if on(AlertKind::BadSignatures) {
        match seen.bad_signatures_last_hour {
            None => {
                unknown.insert(AlertKind::BadSignatures);
            }
            Some(n) if n >= settings.bad_signatures_per_hour => found.push(Condition {
                kind: AlertKind::BadSignatures,
                subject: "webhooks".into(),
                summary: format!("{n} webhooks refused for a bad signature in the last hour"),
                details: format!(
                    "{n} POSTs to /webhook in the last hour carried no valid X-Hub-Signature-256 \
                     and were refused (401). Either someone else's app posts to this address, or \
                     the App secret of the WhatsApp account in Odoo is not the secret of the Meta \
                     app that sends the webhooks (Meta app > App settings > Basic > App secret). \
                     In the second case Meta's statuses and messages are being lost: Meta gives \
                     up retrying after a while."
                ),
            }),
            Some(_) => {}
        }
    }

    if on(AlertKind::SendErrors) {
        match seen.sends_last_15_min {
            None => {
                unknown.insert(AlertKind::SendErrors);
            }
            Some((sent, failed)) => {
                let total = sent + failed;
                let ratio = if total == 0 {
                    0.0
                } else {
                    failed as f64 / total as f64
                };
                if total >= MIN_SENDS_FOR_RATIO && ratio >= settings.send_error_ratio {
                    found.push(Condition {
                        kind: AlertKind::SendErrors,
                        subject: "sends".into(),
                        summary: format!(
                            "{:.0} % of the messages failed in the last 15 minutes",
                            ratio * 100.0
                        ),
                        details: format!(
                            "{failed} of {total} messages failed for good in the last 15 minutes. \
                             Their reasons are on the messages in Odoo (WhatsApp > Messages, \
                             filter Failed, group by Error code)."
                        ),
                    });
                }
            }
        }
    }
    (found, unknown)
}

/// Whether a mail says a condition holds or that it cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    Firing,
    Reminder,
    Resolved,
}

/// A mail to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub kind: MailKind,
    pub condition: Condition,
}

#[derive(Debug, Clone)]
struct Entry {
    condition: Condition,
    since: DateTime<Utc>,
    /// A mail saying it holds went out in this episode.
    mailed: bool,
}

/// Which conditions hold and which were mailed, to decide the next mails.
#[derive(Debug, Default)]
pub struct Ledger {
    active: BTreeMap<(AlertKind, String), Entry>,
    /// When a mail saying it holds last went out, per condition (across episodes).
    last_mail: BTreeMap<(AlertKind, String), DateTime<Utc>>,
}

impl Ledger {
    /// The mails due now that `found` hold (the kinds in `unknown` keep their state).
    pub fn evaluate(
        &mut self,
        found: Vec<Condition>,
        unknown: &BTreeSet<AlertKind>,
        remind_after: Delta,
        now: DateTime<Utc>,
    ) -> Vec<Mail> {
        let mut mails = Vec::new();
        let holding: BTreeSet<(AlertKind, String)> =
            found.iter().map(|c| (c.kind, c.subject.clone())).collect();
        // Cleared: a resolved mail when it was mailed as holding.
        let cleared: Vec<(AlertKind, String)> = self
            .active
            .keys()
            .filter(|k| !holding.contains(*k) && !unknown.contains(&k.0))
            .cloned()
            .collect();
        for key in cleared {
            if let Some(entry) = self.active.remove(&key) {
                if entry.mailed {
                    mails.push(Mail {
                        kind: MailKind::Resolved,
                        condition: entry.condition,
                    });
                }
            }
        }
        for condition in found {
            let key = (condition.kind, condition.subject.clone());
            let entry = self.active.entry(key.clone()).or_insert(Entry {
                condition: condition.clone(),
                since: now,
                mailed: false,
            });
            entry.condition = condition;
            let last = self.last_mail.get(&key).copied();
            let due = match last {
                None => true,
                Some(at) if !entry.mailed => now - at >= MAIL_INTERVAL,
                Some(at) => now - at >= remind_after.max(MAIL_INTERVAL),
            };
            if due {
                mails.push(Mail {
                    kind: if entry.mailed {
                        MailKind::Reminder
                    } else {
                        MailKind::Firing
                    },
                    condition: entry.condition.clone(),
                });
                entry.mailed = true;
                self.last_mail.insert(key, now);
            }
        }
        mails
    }

    /// The conditions holding now, and since when.
    pub fn active(&self) -> Vec<(&Condition, DateTime<Utc>)> {
        self.active
            .values()
            .map(|e| (&e.condition, e.since))
            .collect()
    }
}
