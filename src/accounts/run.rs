//! The only I/O of the accounts task: the poll, the check and the sync.

use chrono::Utc;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use super::mapping::{
    self, AccountRow, ExistingTemplate, ACCOUNT_FIELDS, ACCOUNT_MODEL, TEMPLATE_FIELDS,
    TEMPLATE_MODEL, VARIABLE_FIELDS, VARIABLE_MODEL,
};
use super::AccountsContext;
use crate::odoo::{Context, Domain, OdooError, SearchOptions};
use crate::whatsapp::account::{explain, CheckStep};

/// Polls until `shutdown`: first a check of every active account (once it succeeds), then the
/// accounts whose buttons were pressed, every `poll_interval`.
pub async fn run(ctx: AccountsContext, shutdown: CancellationToken) {
    let mut initial_done = false;
    let mut pause = Duration::ZERO;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ctx.bus.sleep(pause) => {}
        }
        let started = tokio::time::Instant::now();
        let result = tokio::select! {
            _ = shutdown.cancelled() => return,
            result = poll_once(&ctx, !initial_done) => result,
        };
        // The interval runs from the start of a poll, as a ticker's would.
        let interval = if result.is_ok() {
            ctx.bus.idle_pause(ctx.poll_interval, None)
        } else {
            ctx.poll_interval
        };
        pause = interval.saturating_sub(started.elapsed());
        match result {
            Ok(()) => initial_done = true,
            Err(err) => tracing::warn!(
                error = %err,
                retry_in = ?ctx.poll_interval,
                "accounts: cannot read the WhatsApp accounts from Odoo; trying again at the next poll"
            ),
        }
    }
}

/// One poll: one `search_read` of the accounts to handle (all active ones when `all_active`),
/// then each account's check and/or sync. Errors only when the read fails; an account whose
/// handling fails is logged and retried at the next poll (its flag is still set).
pub async fn poll_once(ctx: &AccountsContext, all_active: bool) -> Result<(), OdooError> {
    let domain = if all_active {
        Domain::leaf("active", "=", true)
    } else {
        Domain::or(
            Domain::leaf("check_requested", "=", true),
            Domain::leaf("sync_requested", "=", true),
        )
    };
    let rows: Vec<Value> = ctx
        .odoo
        .search_read(
            ACCOUNT_MODEL,
            &domain,
            ACCOUNT_FIELDS,
            &SearchOptions::new().order("id"),
        )
        .await?;
    for row in rows {
        let account = match AccountRow::from_record(&row) {
            Ok(account) => account,
            Err(problem) => {
                tracing::warn!(%problem, "accounts: skipping an unreadable account record");
                continue;
            }
        };
        let check = all_active || account.check_requested;
        if let Err(err) = handle(ctx, &account, check, account.sync_requested).await {
            tracing::warn!(
                account = %account.name,
                account_id = account.id,
                error = %err,
                "accounts: Odoo failed during the check or template sync; trying again at the next poll"
            );
        }
    }
    Ok(())
}

/// Checks and/or syncs one account, then writes the result in one `write`.
async fn handle(
    ctx: &AccountsContext,
    account: &AccountRow,
    check: bool,
    sync: bool,
) -> Result<(), OdooError> {
    let mut values = Map::new();
    if check {
        let report = ctx.whatsapp.check_account(&account.handle()).await;
        if !report.is_ok() {
            tracing::warn!(account = %account.name, report = %report.report(), "accounts: the check found problems");
        } else {
            tracing::info!(account = %account.name, "accounts: check passed");
        }
        values = mapping::check_values(&report, Utc::now());
    }
    if sync {
        let synced = match sync_templates(ctx, account).await {
            Ok(done) => done,
            Err(SyncError::Odoo(err)) if err.is_retryable() => return Err(err),
            Err(SyncError::Odoo(err)) => {
                let message = format!(
                    "Template sync failed: Odoo refused the templates ({err}). Fix the cause, \
                     then press Sync templates again."
                );
                tracing::warn!(account = %account.name, %message, "accounts: template sync failed");
                mapping::failure_values(&message, &["sync_requested"], Utc::now())
            }
            Err(SyncError::Meta(line)) => {
                let message = format!("Template sync failed: {}: {}", line.item, line.detail);
                tracing::warn!(account = %account.name, %message, "accounts: template sync failed");
                mapping::failure_values(&message, &["sync_requested"], Utc::now())
            }
        };
        values = if values.is_empty() {
            synced
        } else {
            mapping::merge_values(values, synced)
        };
    }
    if values.is_empty() {
        return Ok(());
    }
    ctx.odoo
        .write(ACCOUNT_MODEL, &[account.id], &Value::Object(values))
        .await
}

enum SyncError {
    Odoo(OdooError),
    /// Meta's error as a check line, in plain words.
    Meta(crate::whatsapp::CheckLine),
}

impl From<OdooError> for SyncError {
    fn from(err: OdooError) -> Self {
        SyncError::Odoo(err)
    }
}

/// Lists the WABA's templates and brings Odoo's records in line: one `create` for the new
/// templates (with their variables), grouped writes for the changed ones, one `create` for
/// variables missing on existing templates. Returns the account values to write.
async fn sync_templates(
    ctx: &AccountsContext,
    account: &AccountRow,
) -> Result<Map<String, Value>, SyncError> {
    let handle = account.handle();
    let list = ctx.whatsapp.list_templates(&handle).await.map_err(|err| {
        SyncError::Meta(explain(
            CheckStep::Templates,
            &handle,
            ctx.whatsapp.config(),
            &err,
        ))
    })?;

    // Archived templates too: a (name, language) already stored must not be created again.
    let odoo = ctx.odoo.with_context(Context::new().active_test(false));
    let rows: Vec<Value> = odoo
        .search_read(
            TEMPLATE_MODEL,
            &Domain::leaf("account_id", "=", account.id),
            TEMPLATE_FIELDS,
            &SearchOptions::new().order("id"),
        )
        .await?;
    let mut existing = Vec::with_capacity(rows.len());
    for row in &rows {
        match ExistingTemplate::from_record(row) {
            Ok(t) => existing.push(t),
            Err(problem) => tracing::warn!(%problem, "accounts: skipping an unreadable template"),
        }
    }
    if !existing.is_empty() {
        let ids: Vec<i64> = existing.iter().map(|t| t.id).collect();
        let variables: Vec<Value> = odoo
            .search_read(
                VARIABLE_MODEL,
                &Domain::leaf("template_id", "in", json!(ids)),
                VARIABLE_FIELDS,
                &SearchOptions::new(),
            )
            .await?;
        let index: HashMap<i64, usize> = existing
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id, i))
            .collect();
        for (template_id, key) in variables.iter().filter_map(mapping::read_variable) {
            if let Some(&i) = index.get(&template_id) {
                existing[i].variables.insert(key);
            }
        }
    }

    let now = Utc::now();
    let plan = mapping::plan_sync(account.id, &list, &existing, now);
    for problem in &plan.problems {
        tracing::warn!(account = %account.name, %problem, "accounts: template sync");
    }
    if !plan.creates.is_empty() {
        odoo.create_many(TEMPLATE_MODEL, &plan.creates).await?;
    }
    if !plan.updates.is_empty() {
        odoo.write_each(TEMPLATE_MODEL, &plan.updates).await?;
    }
    if !plan.new_variables.is_empty() {
        odoo.create_many(VARIABLE_MODEL, &plan.new_variables)
            .await?;
    }
    tracing::info!(account = %account.name, summary = %plan.summary(), "accounts: templates synced");
    Ok(mapping::sync_done_values(&plan, now))
}
