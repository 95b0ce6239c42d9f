//! The only I/O of the housekeeping: deleting old webhook events, asking for template syncs,
//! and the loop that runs them on schedule.

use super::plan::{HousekeepingSettings, Job};
use crate::odoo::{Domain, OdooClient, OdooError, SearchOptions};
use chrono::{DateTime, Utc};
use serde_json::json;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const EVENT_MODEL: &str = "whatsapp.webhook.event";
const ACCOUNT_MODEL: &str = "whatsapp.account";

/// The retention also runs this long after start (a daemon restarted every night before
/// 03:30 would otherwise never run it).
const AFTER_START: Duration = Duration::from_secs(60);
/// After a chore failed with Odoo, it is tried again this long after.
const RETRY_AFTER: Duration = Duration::from_secs(300);

/// What the housekeeping needs.
#[derive(Clone, Debug)]
pub struct HousekeepingContext {
    pub odoo: OdooClient,
    pub settings: HousekeepingSettings,
}

/// What a retention run deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub deleted: usize,
    pub calls: usize,
}

/// Deletes the events [`HousekeepingSettings::deletable`] at `now`, `batch_size` per call,
/// oldest first, until none is left or `shutdown`.
pub async fn retention_once(
    ctx: &HousekeepingContext,
    now: DateTime<Utc>,
    shutdown: &CancellationToken,
) -> Result<Retention, OdooError> {
    let domain = ctx.settings.deletable(now);
    let batch = ctx.settings.batch_size.max(1);
    let mut done = Retention::default();
    while !shutdown.is_cancelled() {
        let ids = ctx
            .odoo
            .search(
                EVENT_MODEL,
                &domain,
                &SearchOptions::new().order("id asc").limit(batch as u64),
            )
            .await?;
        done.calls += 1;
        if ids.is_empty() {
            break;
        }
        ctx.odoo.unlink(EVENT_MODEL, &ids).await?;
        done.calls += 1;
        done.deleted += ids.len();
        if ids.len() < batch {
            break;
        }
    }
    Ok(done)
}

/// Sets `sync_requested` on every active account that has not asked already, as the "Sync
/// templates" button does; returns how many.
pub async fn request_template_sync(ctx: &HousekeepingContext) -> Result<usize, OdooError> {
    let ids = ctx
        .odoo
        .search(
            ACCOUNT_MODEL,
            &Domain::leaf("active", "=", true).and("sync_requested", "=", false),
            &SearchOptions::new().order("id asc"),
        )
        .await?;
    if !ids.is_empty() {
        ctx.odoo
            .write(ACCOUNT_MODEL, &ids, &json!({"sync_requested": true}))
            .await?;
    }
    Ok(ids.len())
}

async fn chore(ctx: &HousekeepingContext, job: Job, shutdown: &CancellationToken) -> bool {
    match job {
        Job::Retention => match retention_once(ctx, Utc::now(), shutdown).await {
            Ok(r) => {
                if r.deleted > 0 {
                    tracing::info!(
                        deleted = r.deleted,
                        calls = r.calls,
                        "housekeeping: old webhook events deleted"
                    );
                }
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?RETRY_AFTER, "housekeeping: cannot delete old webhook events");
                false
            }
        },
        Job::TemplateSync => match request_template_sync(ctx).await {
            Ok(n) => {
                tracing::debug!(accounts = n, "housekeeping: template sync asked for");
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?RETRY_AFTER, "housekeeping: cannot ask for the template sync");
                false
            }
        },
    }
}

/// Runs the chores on schedule until `shutdown`: the retention once a minute after start, then
/// each at its next scheduled time; a chore that failed is tried again 5 minutes later.
pub async fn run(ctx: HousekeepingContext, shutdown: CancellationToken) {
    let mut retry: Option<(tokio::time::Instant, Job)> = ctx
        .settings
        .retention
        .as_ref()
        .map(|_| (tokio::time::Instant::now() + AFTER_START, Job::Retention));
    tracing::info!(
        processed_event_days = ctx.settings.processed_event_days,
        failed_event_days = ctx.settings.failed_event_days,
        "housekeeping started"
    );
    loop {
        let scheduled = ctx.settings.next(Utc::now()).map(|(at, job)| {
            let wait = (at - Utc::now()).to_std().unwrap_or_default();
            (tokio::time::Instant::now() + wait, job)
        });
        // The retry when it comes first, else the scheduled chore.
        let (at, job, retrying) = match (retry, scheduled) {
            (Some(r), Some(s)) if s.0 < r.0 => (s.0, s.1, false),
            (Some(r), _) => (r.0, r.1, true),
            (None, Some(s)) => (s.0, s.1, false),
            (None, None) => {
                tracing::info!("housekeeping: nothing is scheduled");
                return;
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep_until(at) => {}
        }
        if retrying {
            retry = None;
        }
        if !chore(&ctx, job, &shutdown).await {
            retry = Some((tokio::time::Instant::now() + RETRY_AFTER, job));
        }
    }
}
