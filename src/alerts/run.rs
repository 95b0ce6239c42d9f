//! The alerts loop: every `check_interval` it observes, evaluates ([`super::rules`]) and mails
//! ([`super::mail`]); mails that could not be sent wait for the next round.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::mail::Mailer;
use super::rules::{self, AccountState, Ledger, Mail, Observation};
use super::{AlertKind, AlertSettings};
use crate::metrics::{Metrics, Totals};
use crate::odoo::{de, Domain, Many2one, OdooClient, OdooError, SearchOptions};
use crate::secret::Secret;
use crate::whatsapp::{AccountHandle, CloudClient};

/// Mails kept for a later try while the SMTP server does not take them (the oldest dropped
/// beyond, with a log line).
const MAX_PENDING: usize = 200;

/// How often each account's token expiry is asked of Meta.
const TOKEN_RECHECK: Duration = Duration::from_secs(3600);

/// What the loop needs.
pub struct AlertsContext {
    pub odoo: OdooClient,
    pub whatsapp: CloudClient,
    pub settings: AlertSettings,
    pub mailer: Arc<Mailer>,
    /// The daemon's counters (sends, failures, refused signatures).
    pub metrics: Metrics,
}

#[derive(Deserialize)]
struct AccountRecord {
    id: i64,
    #[serde(default, deserialize_with = "de::string_or_false")]
    name: String,
    #[serde(default)]
    paused: bool,
    #[serde(default, deserialize_with = "de::false_as_none")]
    paused_reason: Option<String>,
    #[serde(default, deserialize_with = "de::false_as_none")]
    messaging_limit: Option<String>,
    #[serde(default, deserialize_with = "de::string_or_false")]
    access_token: String,
    #[serde(default, deserialize_with = "de::string_or_false")]
    phone_number_id: String,
    #[serde(default, deserialize_with = "de::string_or_false")]
    waba_id: String,
    #[serde(default, deserialize_with = "de::false_as_none")]
    graph_api_version: Option<String>,
}

#[derive(Deserialize)]
struct CampaignRecord {
    id: i64,
    #[serde(default, deserialize_with = "de::string_or_false")]
    name: String,
    #[serde(default, deserialize_with = "de::string_or_false")]
    paused_reason: String,
}

#[derive(Deserialize)]
struct HeldRecord {
    #[serde(default)]
    account_id: Many2one,
}

/// What the loop remembers between rounds.
#[derive(Default)]
struct Memory {
    odoo_down_since: Option<DateTime<Utc>>,
    /// The counters at each round of the last hour.
    samples: VecDeque<(Instant, Totals)>,
    /// Per account: when Meta was last asked, and what it said of the expiry.
    tokens: HashMap<i64, (Instant, Option<DateTime<Utc>>)>,
}

impl Memory {
    /// The increase of the counters over the last `window` (as far back as samples go).
    fn increase(&self, now: Totals, window: Duration) -> Totals {
        let since = Instant::now().checked_sub(window);
        let base = self
            .samples
            .iter()
            .find(|(at, _)| since.is_none_or(|s| *at >= s))
            .map(|(_, t)| *t)
            .unwrap_or(now);
        Totals {
            sent: now.sent.saturating_sub(base.sent),
            failed: now.failed.saturating_sub(base.failed),
            bad_signatures: now.bad_signatures.saturating_sub(base.bad_signatures),
        }
    }
}

/// Runs until `shutdown`.
pub async fn run(ctx: AlertsContext, shutdown: CancellationToken) {
    let mut ledger = Ledger::default();
    let mut memory = Memory::default();
    let mut pending: VecDeque<Mail> = VecDeque::new();
    let mut mail_failing = false;
    let remind =
        chrono::Duration::from_std(ctx.settings.remind_after).unwrap_or(chrono::Duration::MAX);
    tracing::info!(
        server = ctx.mailer.server(),
        kinds = ?ctx.settings.kinds.iter().map(|k| k.name()).collect::<Vec<_>>(),
        "email alerts on"
    );
    loop {
        let now = Utc::now();
        let seen = observe(&ctx, &mut memory, now).await;
        let (found, unknown) = rules::conditions(&ctx.settings, &seen, now);
        for mail in ledger.evaluate(found, &unknown, remind, now) {
            tracing::info!(kind = ?mail.kind, alert = mail.condition.kind.name(), subject = %mail.condition.subject, summary = %mail.condition.summary, "alert");
            pending.push_back(mail);
        }
        while pending.len() > MAX_PENDING {
            if let Some(dropped) = pending.pop_front() {
                tracing::error!(summary = %dropped.condition.summary, "alert mail dropped: the SMTP server has not taken mails for a long time");
            }
        }
        deliver(&ctx.mailer, &mut pending, &mut mail_failing).await;
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(ctx.settings.check_interval) => {}
        }
    }
    tracing::info!("email alerts stopped");
}

/// Sends the pending mails in order; stops at the first that may go through later.
async fn deliver(mailer: &Mailer, pending: &mut VecDeque<Mail>, failing: &mut bool) {
    while let Some(mail) = pending.front() {
        match mailer.send(mail).await {
            Ok(()) => {
                if std::mem::take(failing) {
                    tracing::info!(server = mailer.server(), "alert mails go out again");
                }
                pending.pop_front();
            }
            Err(e) if e.is_retryable() => {
                if !std::mem::replace(failing, true) {
                    tracing::warn!(error = %e, waiting = pending.len(), "alert mail not sent; tried again at the next check");
                }
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, summary = %mail.condition.summary, "alert mail refused for good; fix [alerts]");
                pending.pop_front();
            }
        }
    }
}

/// Reads what the conditions are made of.
async fn observe(ctx: &AlertsContext, memory: &mut Memory, now: DateTime<Utc>) -> Observation {
    let totals = ctx.metrics.totals();
    memory.samples.push_back((Instant::now(), totals));
    while memory.samples.front().is_some_and(|(at, _)| {
        at.elapsed() > Duration::from_secs(3600) + ctx.settings.check_interval
    }) {
        memory.samples.pop_front();
    }
    let hour = memory.increase(totals, Duration::from_secs(3600));
    let quarter = memory.increase(totals, Duration::from_secs(15 * 60));
    let mut seen = Observation {
        bad_signatures_last_hour: Some(hour.bad_signatures),
        sends_last_15_min: Some((quarter.sent, quarter.failed)),
        ..Default::default()
    };
    match read_odoo(&ctx.odoo, &ctx.settings).await {
        Ok((mut accounts, campaigns)) => {
            memory.odoo_down_since = None;
            if ctx.settings.kinds.contains(&AlertKind::TokenExpiring) {
                for (state, handle) in &mut accounts {
                    state.token_expires_at = token_expiry(ctx, memory, state.id, handle).await;
                }
            }
            seen.accounts = Some(accounts.into_iter().map(|(a, _)| a).collect());
            seen.auto_paused_campaigns = Some(campaigns);
        }
        Err(e) if e.is_unreachable() || e.is_retryable() => {
            let since = *memory.odoo_down_since.get_or_insert(now);
            tracing::debug!(error = %e, %since, "alerts: Odoo not reachable");
        }
        Err(e) => {
            memory.odoo_down_since = None;
            tracing::warn!(error = %e, "alerts: cannot read the accounts and campaigns from Odoo; their alerts wait");
        }
    }
    seen.odoo_down_since = memory.odoo_down_since;
    seen
}

/// Meta's word on the token's expiry, asked at most hourly per account.
async fn token_expiry(
    ctx: &AlertsContext,
    memory: &mut Memory,
    account: i64,
    handle: &Option<AccountHandle>,
) -> Option<DateTime<Utc>> {
    if let Some((asked, expires)) = memory.tokens.get(&account) {
        if asked.elapsed() < TOKEN_RECHECK {
            return *expires;
        }
    }
    let handle = handle.as_ref()?;
    match ctx.whatsapp.token_info(handle).await {
        Ok(info) => {
            memory
                .tokens
                .insert(account, (Instant::now(), info.expires_at));
            info.expires_at
        }
        Err(e) => {
            tracing::debug!(account, error = %e, "alerts: Meta did not say when the token expires");
            memory.tokens.get(&account).and_then(|(_, e)| *e)
        }
    }
}

type Accounts = Vec<(AccountState, Option<AccountHandle>)>;

async fn read_odoo(
    odoo: &OdooClient,
    settings: &AlertSettings,
) -> Result<(Accounts, Vec<(i64, String, String)>), OdooError> {
    let accounts: Vec<AccountRecord> = odoo
        .search_read(
            "whatsapp.account",
            &Domain::leaf("active", "=", true),
            &[
                "name",
                "paused",
                "paused_reason",
                "messaging_limit",
                "access_token",
                "phone_number_id",
                "waba_id",
                "graph_api_version",
            ],
            &SearchOptions::new().order("id asc"),
        )
        .await?;
    let mut held: BTreeMap<i64, u64> = BTreeMap::new();
    if settings.kinds.contains(&AlertKind::MessagingLimit) {
        let rows: Vec<HeldRecord> = odoo
            .search_read(
                "whatsapp.message",
                &Domain::leaf("state", "=", "queued")
                    .and("direction", "=", "out")
                    .and("error_code", "=", "messaging_limit"),
                &["account_id"],
                &SearchOptions::new().limit(10_000),
            )
            .await?;
        for r in rows {
            if let Some(a) = r.account_id.id() {
                *held.entry(a).or_default() += 1;
            }
        }
    }
    let campaigns: Vec<CampaignRecord> = if settings.kinds.contains(&AlertKind::CampaignPaused) {
        odoo.search_read(
            "whatsapp.campaign",
            &Domain::leaf("state", "=", "paused").and("paused_reason", "!=", false),
            &["name", "paused_reason"],
            &SearchOptions::new().order("id asc"),
        )
        .await?
    } else {
        Vec::new()
    };
    let accounts = accounts
        .into_iter()
        .map(|a| {
            let handle = (!a.access_token.trim().is_empty()).then(|| {
                AccountHandle::new(
                    a.phone_number_id.clone(),
                    a.waba_id.clone(),
                    Secret::new(a.access_token.trim()),
                )
                .with_api_version(a.graph_api_version.as_deref())
            });
            let state = AccountState {
                id: a.id,
                name: a.name,
                paused: a.paused,
                paused_reason: a.paused_reason,
                messaging_limit: a.messaging_limit,
                held_by_limit: held.get(&a.id).copied().unwrap_or(0),
                token_expires_at: None,
            };
            (state, handle)
        })
        .collect();
    let campaigns = campaigns
        .into_iter()
        .map(|c| (c.id, c.name, c.paused_reason))
        .collect();
    Ok((accounts, campaigns))
}
