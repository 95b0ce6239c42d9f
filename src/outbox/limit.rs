//! Meta's daily messaging limit, kept locally so the outbox holds a message instead of letting
//! Meta refuse it.
//!
//! Meta counts the **unique customers** a business reaches with business-initiated messages
//! (templates sent outside a customer service window) over a **moving 24 hours**, per business
//! portfolio, shared by all its numbers; tiers are 250, 2,000 (formerly 1,000), 10,000,
//! 100,000 and unlimited. Meta has no dedicated error for it, so the daemon keeps the count:
//!
//! - the limit is the account's `messaging_limit` ([`tier_limit`]; unknown or unlimited: no
//!   local limit, Meta decides);
//! - accounts sharing a `waba_id` form one group ([`group_of`]): the WhatsApp Business
//!   Account stands in for the portfolio, which Odoo does not know; a group takes the smallest
//!   limit of its accounts;
//! - the customers reached are the outbound template messages (`template_id` set, or of type
//!   template) `sent`, `delivered` or `read` with `sent_at` in the last 24 hours, read from Odoo
//!   in one `search_read` ([`reach_domain`], [`Reach`]). The record does not say whether a
//!   template went out inside a window, so every template counts: this errs on the safe side
//!   (a customer who was only answered with a template inside a window counts too);
//! - between two reads, the customers this process sends to are added ([`Ledger::reserve`])
//!   when the send is decided, so a batch cannot overshoot the limit; a send that finally fails
//!   gives its place back ([`Ledger::release`]).
//!
//! [`Ledger::decide`] is the decision: a message to a customer already reached in the last 24
//! hours always goes (Meta does not count them twice); one to a new customer goes while the
//! group is under its limit, otherwise it is held until the oldest counted customer leaves the
//! 24 hours ([`Decision::Hold`]). Replies inside an open window are not checked at all (the
//! gate's `outside_window` is false). Everything here is pure: the loop (`run.rs`) reads the
//! rows and acts on the decisions.

use super::model::{self, Account};
use crate::lang::Lang;
use crate::odoo::Domain;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};
use std::collections::HashMap;

/// The moving period of Meta's messaging limit.
pub const PERIOD: TimeDelta = TimeDelta::hours(24);

/// When the oldest counted customer's time is unknown, a held message is tried again after
/// this long.
pub const UNKNOWN_RETRY: TimeDelta = TimeDelta::hours(1);

/// Unique customers per 24 hours for a stored tier: `TIER_250` → 250, `TIER_2K` → 2,000,
/// `TIER_1K` → 1,000 (Meta's old tier, taken as written until the account is checked again),
/// `TIER_100K` → 100,000, a plain number (`2000`, as Meta's newer field gives it) as is.
/// `None` for `TIER_UNLIMITED`, an empty value or anything not understood: then Meta decides
/// alone. The addon's campaigns read the field with the same grammar (`tier_limit` in
/// `whatsapp_campaign.py`).
pub fn tier_limit(tier: &str) -> Option<u32> {
    let t = tier.trim().to_ascii_uppercase();
    if t.is_empty() || t.contains("UNLIMITED") {
        return None;
    }
    let t = t.strip_prefix("TIER_").unwrap_or(&t);
    let (digits, factor) = match t.strip_suffix('K') {
        Some(n) => (n, 1_000),
        None => (t, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits
        .parse::<u32>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .filter(|n| *n > 0)
}

/// The account's local limit, if any.
pub fn account_limit(account: &Account) -> Option<u32> {
    account.messaging_limit.as_deref().and_then(tier_limit)
}

/// The group whose count the account shares: its WhatsApp Business Account, else the account
/// alone.
pub fn group_of(account: &Account) -> String {
    match account.waba_id.as_deref().map(str::trim) {
        Some(waba) if !waba.is_empty() => format!("waba:{waba}"),
        _ => format!("account:{}", account.id),
    }
}

/// A customer's key: the digits of the E.164 number, else of the WhatsApp id.
pub fn recipient_key(to_e164: Option<&str>, wa_id: Option<&str>) -> Option<String> {
    [to_e164, wa_id].into_iter().flatten().find_map(|s| {
        let digits: String = s.chars().filter(char::is_ascii_digit).collect();
        (!digits.is_empty()).then_some(digits)
    })
}

/// One business-initiated message read from Odoo: who, from which account, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reach {
    pub account_id: i64,
    pub recipient: String,
    pub sent_at: DateTime<Utc>,
}

impl Reach {
    pub const FIELDS: &'static [&'static str] = &["to_e164", "wa_id", "account_id", "sent_at"];

    /// Decodes one row; a row without account, recipient or `sent_at` counts for nothing.
    pub fn from_record(value: &Value) -> Option<Reach> {
        let r = value.as_object()?;
        Some(Reach {
            account_id: model::many2one(r, "account_id")?,
            recipient: recipient_key(
                model::text(r, "to_e164").as_deref(),
                model::text(r, "wa_id").as_deref(),
            )?,
            sent_at: model::datetime(r, "sent_at")?,
        })
    }
}

/// The outbound template messages of `account_ids` that reached someone in the 24 hours before
/// `now`.
pub fn reach_domain(now: DateTime<Utc>, account_ids: &[i64]) -> Domain {
    Domain::from_terms(vec![
        json!(["direction", "=", "out"]),
        json!(["state", "in", ["sent", "delivered", "read"]]),
        json!(["sent_at", ">", crate::odoo::format_datetime(now - PERIOD)]),
        json!(["account_id", "in", account_ids]),
        json!("|"),
        json!(["message_type", "=", "template"]),
        json!(["template_id", "!=", false]),
    ])
}

/// What to do with a business-initiated message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send it. `new`: the customer was not reached in the last 24 hours (reserve a place).
    Send { new: bool },
    /// The group reached its limit: hold the message until `until`.
    Hold { limit: u32, until: DateTime<Utc> },
}

/// The customers one group reached in the last 24 hours.
#[derive(Debug, Clone, Default)]
struct Group {
    /// From the last read of Odoo: customer → latest send.
    read: HashMap<String, DateTime<Utc>>,
    /// Sent (or about to be) by this process: customer → when it was decided.
    reserved: HashMap<String, DateTime<Utc>>,
    /// [`Group::first_free`], kept until `read` or `reserved` change: every message held in a
    /// batch asks for it, and it walks the whole group.
    free_at: Option<Option<DateTime<Utc>>>,
}

impl Group {
    fn last(&self, recipient: &str) -> Option<DateTime<Utc>> {
        let a = self.read.get(recipient).copied();
        let b = self.reserved.get(recipient).copied();
        a.max(b)
    }

    fn prune(&mut self, now: DateTime<Utc>) {
        let before = (self.read.len(), self.reserved.len());
        let cutoff = now - PERIOD;
        self.read.retain(|_, t| *t > cutoff);
        self.reserved.retain(|_, t| *t > cutoff);
        if before != (self.read.len(), self.reserved.len()) {
            self.free_at = None;
        }
    }

    /// Unique customers counted (call after `prune`).
    fn count(&self) -> usize {
        self.read.len()
            + self
                .reserved
                .keys()
                .filter(|k| !self.read.contains_key(*k))
                .count()
    }

    /// When the customer counted longest ago leaves the 24 hours.
    fn first_free(&mut self) -> Option<DateTime<Utc>> {
        if let Some(free_at) = self.free_at {
            return free_at;
        }
        let mut latest: HashMap<&str, DateTime<Utc>> = HashMap::new();
        for (k, t) in self.read.iter().chain(self.reserved.iter()) {
            let e = latest.entry(k.as_str()).or_insert(*t);
            *e = (*e).max(*t);
        }
        let free_at = latest.values().min().map(|t| *t + PERIOD);
        self.free_at = Some(free_at);
        free_at
    }
}

/// The local count of every limited group. Owned by the outbox loop.
#[derive(Debug, Default)]
pub struct Ledger {
    groups: HashMap<String, Group>,
}

impl Ledger {
    /// Replaces what was read from Odoo with `rows` (the accounts give each row its group);
    /// what this process reserved is kept.
    pub fn replace(
        &mut self,
        rows: &[Reach],
        accounts: &HashMap<i64, Account>,
        now: DateTime<Utc>,
    ) {
        for g in self.groups.values_mut() {
            g.read.clear();
            g.free_at = None;
        }
        for row in rows {
            let Some(account) = accounts.get(&row.account_id) else {
                continue;
            };
            let read = &mut self.groups.entry(group_of(account)).or_default().read;
            let t = read.entry(row.recipient.clone()).or_insert(row.sent_at);
            *t = (*t).max(row.sent_at);
        }
        for g in self.groups.values_mut() {
            g.prune(now);
        }
        self.groups
            .retain(|_, g| !g.read.is_empty() || !g.reserved.is_empty());
    }

    /// Decides a business-initiated message from `account` to `recipient` under `limit`.
    pub fn decide(
        &mut self,
        account: &Account,
        limit: u32,
        recipient: &str,
        now: DateTime<Utc>,
    ) -> Decision {
        let group = self.groups.entry(group_of(account)).or_default();
        if group.last(recipient).is_some_and(|t| t > now - PERIOD) {
            return Decision::Send { new: false };
        }
        let limit_len = usize::try_from(limit).unwrap_or(usize::MAX);
        if group.count() >= limit_len {
            group.prune(now);
        }
        if group.count() < limit_len {
            return Decision::Send { new: true };
        }
        Decision::Hold {
            limit,
            until: group
                .first_free()
                .filter(|t| *t > now)
                .unwrap_or(now + UNKNOWN_RETRY),
        }
    }

    /// Counts `recipient` as reached by `account`'s group from `at`.
    pub fn reserve(&mut self, account: &Account, recipient: &str, at: DateTime<Utc>) {
        let group = self.groups.entry(group_of(account)).or_default();
        let t = group.reserved.entry(recipient.to_owned()).or_insert(at);
        *t = (*t).max(at);
        group.free_at = None;
    }

    /// Gives back the place reserved at `at` (the send failed for good).
    pub fn release(&mut self, account: &Account, recipient: &str, at: DateTime<Utc>) {
        if let Some(g) = self.groups.get_mut(&group_of(account)) {
            if g.reserved.get(recipient) == Some(&at) {
                g.reserved.remove(recipient);
                g.free_at = None;
            }
        }
    }

    /// Unique customers counted for `account`'s group at `now`.
    pub fn count(&mut self, account: &Account, now: DateTime<Utc>) -> usize {
        match self.groups.get_mut(&group_of(account)) {
            Some(g) => {
                g.prune(now);
                g.count()
            }
            None => 0,
        }
    }
}

/// The plain words stored in `error_help` of a held message, in `lang`.
pub fn hold_help(limit: u32, account: &Account, until: DateTime<Utc>, lang: Lang) -> String {
    let name = &account.name;
    let business = match (
        account.waba_id.as_deref().filter(|w| !w.trim().is_empty()),
        lang,
    ) {
        (Some(waba), Lang::En) => {
            format!("the business of the WhatsApp number {name} (WhatsApp Business Account {waba})")
        }
        (None, Lang::En) => format!("the business of the WhatsApp number {name}"),
        (Some(waba), Lang::Fr) => {
            format!("l'entreprise du numéro WhatsApp {name} (compte WhatsApp Business {waba})")
        }
        (None, Lang::Fr) => format!("l'entreprise du numéro WhatsApp {name}"),
    };
    let at = until.format("%Y-%m-%d %H:%M:%S");
    tr!(
        lang,
        "Meta's daily limit of {limit} unique customers reached outside a conversation window \
         (the last 24 hours) is reached for {business}. The message is not lost: it stays \
         queued and goes out automatically after {at} UTC. To raise the limit, verify the \
         business in Meta Business Manager and keep the number's quality rating high (Meta \
         raises the limit to the next tier as the business uses it with good quality); \
         customers who wrote in the last 24 hours can be answered at any time.",
        "La limite quotidienne de Meta de {limit} clients uniques contactés hors d'une fenêtre \
         de conversation (les dernières 24 heures) est atteinte pour {business}. Le message \
         n'est pas perdu : il reste en file d'attente et part automatiquement après {at} UTC. \
         Pour relever la limite, faites vérifier l'entreprise dans Meta Business Manager et \
         gardez une bonne note de qualité au numéro (Meta passe au palier suivant à mesure que \
         l'entreprise l'utilise avec une bonne qualité) ; les clients qui ont écrit dans les \
         dernières 24 heures peuvent recevoir une réponse à tout moment."
    )
}

#[cfg(test)]
mod tests;
