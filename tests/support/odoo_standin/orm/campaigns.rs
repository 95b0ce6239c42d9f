//! The addon's campaign buttons as the stand-in answers them over `execute_kw` (shapes from
//! the `r_whatsapp_campaign_*` transcripts), as `whatsapp_campaign.py` does them:
//! `action_generate_queue` only sets `queue_requested` (draft, scheduled or paused campaigns);
//! `action_start` sets `running` and `started_at` now, or `scheduled` when `scheduled_at` is
//! ahead (draft or scheduled campaigns). Both refuse a campaign without an account or a step.
//! They return None: the answer has no `result`. The daemon carries the requests out.

use super::{now_string, Db, Env, OdooErr, Params, Txn};
use crate::support::odoo_standin::schema::{Kind, Model};
use serde_json::{json, Map, Value};

impl Db {
    /// Answers the campaign buttons; `None` when the call is not one of them.
    pub(super) fn campaign_buttons(
        &mut self,
        env: &Env,
        model: &Model,
        method: &str,
        args: &[Value],
        kwargs: &Map<String, Value>,
        txn: &mut Txn,
    ) -> Result<Option<Option<Value>>, OdooErr> {
        if model.name != "whatsapp.campaign"
            || !matches!(method, "action_generate_queue" | "action_start")
        {
            return Ok(None);
        }
        let p = Params { args, kwargs };
        let ids = p.ids()?;
        self.check_access(env, model, "write")?;
        let missing: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|i| !self.exists(&model.name, *i))
            .collect();
        if !missing.is_empty() {
            return Err(OdooErr::missing(&model.name, &missing, env.uid));
        }
        for id in &ids {
            let name = self
                .stored(model, *id, "name")
                .as_str()
                .unwrap_or("")
                .to_owned();
            let state = self
                .stored(model, *id, "state")
                .as_str()
                .unwrap_or("draft")
                .to_owned();
            let refused = match method {
                "action_start" if !matches!(state.as_str(), "draft" | "scheduled") => {
                    Some(format!(
                        "Campaign {name} is {}: only a draft or scheduled campaign can be started.",
                        state_label(model, &state)
                    ))
                }
                "action_generate_queue"
                    if !matches!(state.as_str(), "draft" | "scheduled" | "paused") =>
                {
                    Some(format!(
                        "The queue of campaign {name} can only be generated while it is draft, \
                         scheduled or paused."
                    ))
                }
                _ => None,
            };
            if let Some(message) = refused {
                return Err(OdooErr::user(message));
            }
        }
        // _check_startable
        let steps = self.model_or_err("whatsapp.campaign.step")?;
        for id in &ids {
            let name = self
                .stored(model, *id, "name")
                .as_str()
                .unwrap_or("")
                .to_owned();
            if self.stored(model, *id, "account_id").as_i64().is_none() {
                return Err(OdooErr::user(format!(
                    "Campaign {name} has no WhatsApp account: choose one."
                )));
            }
            let domain = json!([["campaign_id", "=", id]]);
            if self
                .search_ids(env, &steps, Some(&domain), 0, Some(1), None)?
                .is_empty()
            {
                return Err(OdooErr::user(format!(
                    "Campaign {name} has no step: add at least one message to send."
                )));
            }
        }
        let now = now_string();
        if method == "action_generate_queue" {
            let mut vals = Map::new();
            vals.insert("queue_requested".into(), json!(true));
            self.write_records(env, model, &ids, &vals, txn)?;
            return Ok(Some(None));
        }
        for id in &ids {
            let later = self
                .stored(model, *id, "scheduled_at")
                .as_str()
                .is_some_and(|at| at > now.as_str());
            let mut vals = Map::new();
            if later {
                vals.insert("state".into(), json!("scheduled"));
            } else {
                vals.insert("state".into(), json!("running"));
                vals.insert("started_at".into(), json!(now));
            }
            self.write_records(env, model, &[*id], &vals, txn)?;
        }
        Ok(Some(None))
    }
}

/// A selection value's label (`running` → `Running`).
fn state_label(model: &Model, state: &str) -> String {
    match model.field("state").map(|f| &f.kind) {
        Some(Kind::Selection { options, .. }) => options
            .iter()
            .find(|(value, _)| value == state)
            .map(|(_, label)| label.clone())
            .unwrap_or_else(|| state.to_owned()),
        _ => state.to_owned(),
    }
}
