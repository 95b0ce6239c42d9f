//! The stand-in's invoicing methods, as the daemon's invoice flows call them (shapes from the
//! `p_*` transcripts): `account.move.action_post` (number, `amount_residual`,
//! `payment_state`, the addon's `x_whatsapp_posted_at`), `get_portal_url` for invoices,
//! `payment.link.wizard` (defaults from the `active_model`/`active_id` context as
//! `account_payment` gives them; its `link` read only through a web session, as in Odoo 17
//! where it is signed with `request.env`), and the addon's `whatsapp.message.action_cancel`
//! and `action_retry`.
//! Payments themselves are test controls ([`super::super::OdooStandin::pay`]): the daemon
//! never registers one.

use super::{now_string, Db, Env, OdooErr, Params, Txn};
use crate::support::odoo_standin::domain::pytuple;
use crate::support::odoo_standin::schema::Model;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

impl Db {
    /// Answers the invoicing calls; `None` when the call is not one of them.
    pub(super) fn invoicing(
        &mut self,
        env: &Env,
        model: &Model,
        method: &str,
        args: &[Value],
        kwargs: &Map<String, Value>,
        txn: &mut Txn,
    ) -> Result<Option<Option<Value>>, OdooErr> {
        let p = Params { args, kwargs };
        Ok(Some(match (model.name.as_str(), method) {
            ("account.move", "action_post") => {
                let ids = p.ids()?;
                self.check_access(env, model, "write")?;
                self.post_invoices(env, model, &ids, txn)?;
                Some(Value::Bool(false))
            }
            ("account.move", "get_portal_url") => {
                let ids = p.ids()?;
                self.check_access(env, model, "read")?;
                let [id] = ids.as_slice() else {
                    return Err(OdooErr::value(format!(
                        "Expected singleton: account.move{}",
                        pytuple(&ids.iter().map(|i| json!(i)).collect::<Vec<_>>())
                    )));
                };
                if !self.exists(&model.name, *id) {
                    return Err(OdooErr::missing(&model.name, &ids, env.uid));
                }
                Some(json!(self.portal_path(env, model, *id, txn)?))
            }
            ("payment.link.wizard", "create") => {
                self.check_access(env, model, "create")?;
                let Some(Value::Object(vals)) = p.get(0, "vals_list").cloned() else {
                    return Ok(None);
                };
                let vals = self.payment_link_defaults(env, vals)?;
                let id = self.create_one(env, model, vals, txn)?;
                let link = self.payment_link(model, id);
                if let Some(row) = self
                    .tables
                    .get_mut(&model.name)
                    .and_then(|t| t.rows.get_mut(&id))
                {
                    row.insert("link".into(), json!(link));
                }
                Some(json!(id))
            }
            // The link is signed with `request.env`: over /jsonrpc there is no request.
            ("payment.link.wizard", "read") if !self.web_request => {
                let fields = p.fields(1, "fields");
                if fields
                    .as_ref()
                    .is_none_or(|f| f.iter().any(|f| f == "link"))
                {
                    return Err(OdooErr::new("builtins.RuntimeError", "object unbound"));
                }
                return Ok(None);
            }
            ("whatsapp.message", "action_cancel") => {
                let ids = p.ids()?;
                self.check_access(env, model, "write")?;
                let queued: Vec<i64> = ids
                    .iter()
                    .copied()
                    .filter(|id| self.stored(model, *id, "state").as_str() == Some("queued"))
                    .collect();
                if !queued.is_empty() {
                    let mut vals = Map::new();
                    vals.insert("state".into(), json!("cancelled"));
                    vals.insert("cancelled_at".into(), json!(now_string()));
                    self.write_records(env, model, &queued, &vals, txn)?;
                }
                None
            }
            // The addon's Retry: a failed or cancelled message back to the queue, its error
            // fields emptied (the one way out of `failed`, see `state_may_move`).
            ("whatsapp.message", "action_retry") => {
                let ids = p.ids()?;
                self.check_access(env, model, "write")?;
                let retried: Vec<i64> = ids
                    .iter()
                    .copied()
                    .filter(|id| {
                        matches!(
                            self.stored(model, *id, "state").as_str(),
                            Some("failed" | "cancelled")
                        )
                    })
                    .collect();
                if !retried.is_empty() {
                    let vals = json!({
                        "state": "queued", "queued_at": now_string(), "next_attempt_at": false,
                        "claimed_at": false, "error_code": false, "error_title": false,
                        "error_details": false, "error_help": false,
                    });
                    let mut retry = env.clone();
                    retry.context.insert("whatsapp_retry".into(), json!(true));
                    let vals = vals.as_object().cloned().unwrap_or_default();
                    self.write_records(&retry, model, &retried, &vals, txn)?;
                }
                None
            }
            _ => return Ok(None),
        }))
    }

    fn post_invoices(
        &mut self,
        env: &Env,
        model: &Model,
        ids: &[i64],
        txn: &mut Txn,
    ) -> Result<(), OdooErr> {
        let missing: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|i| !self.exists(&model.name, *i))
            .collect();
        if !missing.is_empty() {
            return Err(OdooErr::missing(&model.name, &missing, env.uid));
        }
        for id in ids {
            if self.stored(model, *id, "state").as_str() != Some("draft") {
                let name = self.display_name(model, *id);
                return Err(OdooErr::user(format!(
                    "The entry {name} (id {id}) must be in draft."
                )));
            }
        }
        let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
        for id in ids {
            // The sequence follows the move's accounting date, as Odoo's does.
            let date = self
                .stored(model, *id, "date")
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| today.clone());
            let year = date.get(..4).unwrap_or("2026").to_owned();
            let mut vals = Map::new();
            let name = self.stored(model, *id, "name").as_str().map(str::to_owned);
            let year = year.as_str();
            if name.as_deref().is_none_or(|n| n.is_empty() || n == "/") {
                let next = self
                    .tables
                    .get(&model.name)
                    .map(|t| {
                        t.rows
                            .values()
                            .filter(|r| {
                                r.get("name")
                                    .and_then(Value::as_str)
                                    .is_some_and(|n| n.starts_with(&format!("INV/{year}/")))
                            })
                            .count()
                    })
                    .unwrap_or(0)
                    + 1;
                vals.insert("name".into(), json!(format!("INV/{year}/{next:05}")));
            }
            let invoice_date = match self.stored(model, *id, "invoice_date").as_str() {
                Some(d) if !d.is_empty() => d.to_owned(),
                _ => {
                    vals.insert("invoice_date".into(), json!(today));
                    today.clone()
                }
            };
            if self
                .stored(model, *id, "invoice_date_due")
                .as_str()
                .is_none_or(str::is_empty)
            {
                vals.insert("invoice_date_due".into(), json!(invoice_date));
            }
            let total = self
                .stored(model, *id, "amount_total")
                .as_f64()
                .unwrap_or(0.0);
            vals.insert("state".into(), json!("posted"));
            vals.insert("amount_residual".into(), json!(total));
            vals.insert("payment_state".into(), json!("not_paid"));
            // The addon's _post stamps the posting time.
            vals.insert("x_whatsapp_posted_at".into(), json!(now_string()));
            self.write_records(env, model, &[*id], &vals, txn)?;
        }
        Ok(())
    }

    /// `default_get` of the wizard from the context, with `account_payment`'s values for an
    /// invoice (the amount due, its currency and customer), under the given values.
    fn payment_link_defaults(
        &self,
        _env: &Env,
        vals: Map<String, Value>,
    ) -> Result<Map<String, Value>, OdooErr> {
        let _ = _env;
        let mut out = Map::new();
        let ctx = &_env.context;
        let active_model = ctx.get("active_model").and_then(Value::as_str);
        let active_id = ctx.get("active_id").and_then(Value::as_i64);
        if let (Some("account.move"), Some(id)) = (active_model, active_id) {
            let moves = self.model_or_err("account.move")?;
            if !self.exists("account.move", id) {
                return Err(OdooErr::missing("account.move", &[id], _env.uid));
            }
            let residual = self.stored(&moves, id, "amount_residual").into_owned();
            out.insert("res_model".into(), json!("account.move"));
            out.insert("res_id".into(), json!(id));
            out.insert("amount".into(), residual.clone());
            out.insert("amount_max".into(), residual);
            out.insert(
                "currency_id".into(),
                self.stored(&moves, id, "currency_id").into_owned(),
            );
            out.insert(
                "partner_id".into(),
                self.stored(&moves, id, "partner_id").into_owned(),
            );
        }
        out.extend(vals);
        Ok(out)
    }

    /// `<base>/payment/pay?amount=…&access_token=…&invoice_id=…` (Odoo's shape; the token is
    /// a SHA-256 over the partner, amount and currency with the database's secret).
    fn payment_link(&self, model: &Model, id: i64) -> String {
        let amount = self.stored(model, id, "amount").as_f64().unwrap_or(0.0);
        let partner = self.stored(model, id, "partner_id").as_i64().unwrap_or(0);
        let currency = self.stored(model, id, "currency_id").as_i64().unwrap_or(0);
        let res_id = self.stored(model, id, "res_id").as_i64().unwrap_or(0);
        let mut h = Sha256::new();
        h.update(format!("{}{partner}{amount}{currency}", self.button_secret));
        let token = hex::encode(h.finalize());
        format!(
            "{}/payment/pay?amount={amount:?}&access_token={token}&invoice_id={res_id}",
            self.base_url
        )
    }
}
