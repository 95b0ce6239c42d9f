//! The addon's `whatsapp.lease` (`models/whatsapp_lease.py`): `acquire`, `release` and the
//! fenced `claim`, with the answers' shapes of the `t_whatsapp_lease_*` transcripts. The
//! stand-in's clock is the machine's (the addon uses PostgreSQL's `clock_timestamp()`); the
//! precise expiry is kept beside the row (`expires_at` itself has Odoo's second precision).

use super::{Db, Env, OdooErr, Params, Txn};
use crate::support::odoo_standin::schema::Model;
use serde_json::{json, Map, Value};
use std::time::{SystemTime, UNIX_EPOCH};

/// The row key of the precise expiry (milliseconds since 1970): not a field, never read out.
const EXPIRES_MS: &str = "__expires_ms";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn odoo_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// One lease row as `acquire` sees it.
struct Row {
    id: i64,
    holder: Option<String>,
    instance: Option<String>,
    epoch: i64,
    expires_ms: i64,
}

impl Row {
    fn live(&self, now: i64) -> bool {
        self.expires_ms > now
    }
}

impl Db {
    /// Answers the lease calls; `None` when the call is not one of them.
    pub(super) fn lease(
        &mut self,
        env: &Env,
        model: &Model,
        method: &str,
        args: &[Value],
        kwargs: &Map<String, Value>,
        txn: &mut Txn,
    ) -> Result<Option<Option<Value>>, OdooErr> {
        if model.name != "whatsapp.lease" {
            return Ok(None);
        }
        let p = Params { args, kwargs };
        let name = p
            .str(usize::MAX, "name")
            .unwrap_or_else(|| "sending".into());
        Ok(Some(Some(match method {
            "acquire" => {
                let holder = p.str(0, "holder").unwrap_or_default();
                let instance = p.str(1, "instance").unwrap_or_default();
                let ttl = p.get(2, "ttl").and_then(Value::as_f64).unwrap_or(0.0);
                if holder.is_empty() || instance.is_empty() {
                    return Err(OdooErr::user(
                        "acquire needs a holder and an instance (at most 200 characters).",
                    ));
                }
                if !(1.0..=600.0).contains(&ttl) {
                    return Err(OdooErr::user("The lease lasts between 1 and 600 seconds."));
                }
                self.check_access(env, model, "write")?;
                let row = self
                    .lease_row(env, model, &name, true, txn)?
                    .expect("created");
                let now = now_ms();
                // The same process again, even after its lease ran out: the epoch stays.
                let mine = row.instance.as_deref() == Some(instance.as_str());
                let restarted = row.live(now)
                    && row.holder.as_deref() == Some(holder.as_str())
                    && row.instance.as_deref() != Some(instance.as_str());
                if row.live(now) && !mine && !restarted {
                    json!({
                        "leader": false,
                        "epoch": row.epoch,
                        "holder": row.holder.clone().map_or(Value::Bool(false), Value::from),
                        "expires_in": (row.expires_ms - now) as f64 / 1000.0,
                    })
                } else {
                    let epoch = if mine { row.epoch } else { row.epoch + 1 };
                    let expires = now + (ttl * 1000.0) as i64;
                    let mut vals = Map::new();
                    vals.insert("holder".into(), json!(holder));
                    vals.insert("instance".into(), json!(instance));
                    vals.insert("epoch".into(), json!(epoch));
                    vals.insert("renewed_at".into(), json!(odoo_time(now)));
                    vals.insert("expires_at".into(), json!(odoo_time(expires)));
                    if !mine {
                        vals.insert("taken_at".into(), json!(odoo_time(now)));
                    }
                    self.write_lease(env, model, row.id, vals, expires, txn)?;
                    json!({"leader": true, "epoch": epoch, "holder": holder, "expires_in": ttl})
                }
            }
            "release" => {
                let instance = p.str(0, "instance").unwrap_or_default();
                self.check_access(env, model, "write")?;
                let row = self
                    .lease_row(env, model, &name, true, txn)?
                    .expect("created");
                let now = now_ms();
                if row.instance.as_deref() != Some(instance.as_str()) || !row.live(now) {
                    json!(false)
                } else {
                    let mut vals = Map::new();
                    vals.insert("expires_at".into(), json!(odoo_time(now)));
                    self.write_lease(env, model, row.id, vals, now, txn)?;
                    json!(true)
                }
            }
            "claim" => {
                let epoch = p.int(0, "epoch")?.unwrap_or(-1);
                let target = p.str(1, "model").unwrap_or_default();
                if !target.starts_with("whatsapp.")
                    || target == "whatsapp.lease"
                    || self.model(&target).is_none()
                {
                    return Err(OdooErr::user(format!(
                        "Only the WhatsApp models can be claimed, not {target}."
                    )));
                }
                self.check_access(env, model, "write")?;
                let ids: Vec<i64> = p
                    .get(2, "ids")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_i64).collect())
                    .unwrap_or_default();
                let domain = p.get(3, "domain").cloned().unwrap_or(json!([]));
                let Some(Value::Object(values)) = p.get(4, "values").cloned() else {
                    return Err(OdooErr::type_error(
                        "claim() missing 1 required positional argument: 'values'",
                    ));
                };
                let row = self.lease_row(env, model, &name, false, txn)?;
                let now = now_ms();
                match row {
                    Some(row) if row.live(now) && row.epoch == epoch => {
                        let target = self.model(&target).cloned().expect("checked");
                        let mut full = vec![json!(["id", "in", ids])];
                        full.extend(domain.as_array().cloned().unwrap_or_default());
                        let found = self.search_ids(
                            env,
                            &target,
                            Some(&Value::Array(full)),
                            0,
                            None,
                            None,
                        )?;
                        if !found.is_empty() {
                            self.check_access(env, &target, "write")?;
                            self.write_records(env, &target, &found, &values, txn)?;
                        }
                        json!({"claimed": found, "lost": false})
                    }
                    other => json!({
                        "claimed": [],
                        "lost": true,
                        "holder": other.as_ref().and_then(|r| r.holder.clone()).map_or(Value::Bool(false), Value::from),
                        "epoch": other.map_or(0, |r| r.epoch),
                    }),
                }
            }
            _ => return Ok(None),
        })))
    }

    /// The lease row called `name` (created when `create` and missing).
    fn lease_row(
        &mut self,
        env: &Env,
        model: &Model,
        name: &str,
        create: bool,
        txn: &mut Txn,
    ) -> Result<Option<Row>, OdooErr> {
        let found = self
            .tables
            .get(&model.name)
            .and_then(|t| {
                t.rows
                    .iter()
                    .find(|(_, r)| r.get("name").and_then(Value::as_str) == Some(name))
            })
            .map(|(id, _)| *id);
        let id = match (found, create) {
            (Some(id), _) => id,
            (None, false) => return Ok(None),
            (None, true) => {
                let mut vals = Map::new();
                vals.insert("name".into(), json!(name));
                vals.insert("epoch".into(), json!(0));
                self.create_one(env, model, vals, txn)?
            }
        };
        let row = self.row(&model.name, id).cloned().unwrap_or_default();
        let text = |k: &str| row.get(k).and_then(Value::as_str).map(str::to_owned);
        Ok(Some(Row {
            id,
            holder: text("holder"),
            instance: text("instance"),
            epoch: row.get("epoch").and_then(Value::as_i64).unwrap_or(0),
            expires_ms: row.get(EXPIRES_MS).and_then(Value::as_i64).unwrap_or(0),
        }))
    }

    fn write_lease(
        &mut self,
        env: &Env,
        model: &Model,
        id: i64,
        vals: Map<String, Value>,
        expires_ms: i64,
        txn: &mut Txn,
    ) -> Result<(), OdooErr> {
        self.write_records(env, model, &[id], &vals, txn)?;
        if let Some(row) = self
            .tables
            .get_mut(&model.name)
            .and_then(|t| t.rows.get_mut(&id))
        {
            row.insert(EXPIRES_MS.into(), json!(expires_ms));
        }
        Ok(())
    }
}
