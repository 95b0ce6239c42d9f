//! Reading scenarios, accounts' menu settings and conversations' menu state from Odoo, and the
//! menu messages queued for the outbox. The only file of the scenarios that talks to Odoo.

use super::plan::{AccountMenus, ConversationState, OptionRow, Scenario};
use crate::odoo::{format_datetime, Context, Domain, OdooClient, OdooError, SearchOptions};
use crate::whatsapp::payload::PayloadError;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// Scenarios and accounts are read again after this long.
const CACHE_TTL: Duration = Duration::from_secs(30);

/// Why a menu could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum MenuError {
    /// Odoo did not answer (retryable) or refused.
    #[error("{0}")]
    Odoo(#[from] OdooError),
}

impl MenuError {
    pub fn is_retryable(&self) -> bool {
        match self {
            MenuError::Odoo(e) => e.is_retryable(),
        }
    }
}

/// The scenarios (by language) and the accounts' menu settings, kept [`CACHE_TTL`].
#[derive(Default)]
pub struct MenuCache {
    scenarios: HashMap<String, (Instant, Vec<Scenario>)>,
    accounts: HashMap<i64, (Instant, AccountMenus)>,
}

impl MenuCache {
    /// The active scenarios with their options, read in `lang` (empty: `en_US`): two
    /// `search_read`s, unless read less than 30 s ago.
    pub async fn scenarios(
        &mut self,
        odoo: &OdooClient,
        lang: &str,
    ) -> Result<Vec<Scenario>, OdooError> {
        let lang = if lang.trim().is_empty() {
            "en_US"
        } else {
            lang.trim()
        };
        if let Some((at, list)) = self.scenarios.get(lang) {
            if at.elapsed() < CACHE_TTL {
                return Ok(list.clone());
            }
        }
        let odoo = odoo.with_context(Context::new().lang(lang));
        let rows: Vec<Value> = odoo
            .search_read(
                Scenario::MODEL,
                &Domain::leaf("active", "=", true),
                Scenario::FIELDS,
                &SearchOptions::new().order("sequence, id"),
            )
            .await?;
        let scenarios: Vec<Scenario> = rows.iter().filter_map(Scenario::from_record).collect();
        let ids: Vec<i64> = scenarios.iter().map(|s| s.id).collect();
        let options: Vec<OptionRow> = if ids.is_empty() {
            Vec::new()
        } else {
            odoo.search_read::<Value>(
                OptionRow::MODEL,
                &Domain::leaf("scenario_id", "in", json!(ids)),
                OptionRow::FIELDS,
                &SearchOptions::new().order("scenario_id, sequence, id"),
            )
            .await?
            .iter()
            .filter_map(OptionRow::from_record)
            .collect()
        };
        let list = Scenario::with_options(scenarios, options);
        self.scenarios
            .insert(lang.to_owned(), (Instant::now(), list.clone()));
        Ok(list)
    }

    /// The menu settings of `ids`, read when not read in the last 30 s.
    pub async fn accounts(
        &mut self,
        odoo: &OdooClient,
        ids: &[i64],
    ) -> Result<HashMap<i64, AccountMenus>, OdooError> {
        let mut missing: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|id| {
                self.accounts
                    .get(id)
                    .is_none_or(|(at, _)| at.elapsed() >= CACHE_TTL)
            })
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if !missing.is_empty() {
            let rows: Vec<Value> = odoo
                .read(AccountMenus::MODEL, &missing, AccountMenus::FIELDS)
                .await?;
            for a in rows.iter().filter_map(AccountMenus::from_record) {
                self.accounts.insert(a.id, (Instant::now(), a));
            }
        }
        Ok(ids
            .iter()
            .filter_map(|id| self.accounts.get(id).map(|(_, a)| (*id, a.clone())))
            .collect())
    }
}

/// The menu state of these conversations, read now (one `read`).
pub async fn conversations(
    odoo: &OdooClient,
    ids: &[i64],
) -> Result<HashMap<i64, ConversationState>, OdooError> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(odoo
        .read::<Value>(ConversationState::MODEL, &ids, ConversationState::FIELDS)
        .await?
        .iter()
        .filter_map(ConversationState::from_record)
        .map(|c| (c.id, c))
        .collect())
}

/// `scenario`'s menu as a message: `base` (the recipient, account, reply context) with the
/// interactive content, once per `dedupe_key`. Refused when the scenario breaks Meta's limits.
pub fn menu_message(
    mut base: Map<String, Value>,
    scenario: &Scenario,
    dedupe_key: String,
) -> Result<Map<String, Value>, PayloadError> {
    let interactive = scenario.interactive()?;
    base.insert("message_type".into(), json!("interactive"));
    base.insert("trigger".into(), json!("scenario"));
    base.insert("body".into(), json!(scenario.body));
    base.insert(
        "interactive_json".into(),
        json!(serde_json::to_string(&interactive).unwrap_or_default()),
    );
    base.insert("dedupe_key".into(), json!(dedupe_key));
    Ok(base)
}

/// The conversation's values once `scenario` was sent at `now`.
pub fn state_values(scenario: i64, now: DateTime<Utc>) -> Map<String, Value> {
    let mut v = Map::new();
    v.insert("scenario_id".into(), json!(scenario));
    v.insert("scenario_started_at".into(), json!(format_datetime(now)));
    v
}
