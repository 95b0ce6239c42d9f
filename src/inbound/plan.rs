//! What one batch of events changes in Odoo, decided from the events and the records read
//! (pure). [`super::driver`] reads the records, calls these functions and sends the results.
//!
//! Every decision is idempotent, so an event processed twice (a crash before it was marked, a
//! "Reprocess" click, a status that waited for its message) changes nothing the second time:
//! statuses merge forward-only ([`super::status`]), inbound messages are created only when
//! their wamid is new, the window only moves forward, an opted-out partner is left alone and
//! the confirmation carries a `dedupe_key`.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::contact::refresh_window;
use super::model::{AccountChange, Inbound, Item, MessageState, StatusUpdate, TemplateChange};
use super::notify::Mode;
use super::optout;
use super::parse;
use super::status::{merge, Merged, MessageRow, RowIndex, StatusWrite};
use crate::lang::Lang;
use crate::odoo::format_datetime;

/// Per-record values: `(record id, values)`, for [`OdooClient::write_each`].
///
/// [`OdooClient::write_each`]: crate::odoo::OdooClient::write_each
pub type Updates = Vec<(i64, Map<String, Value>)>;

/// A `whatsapp.webhook.event` to process.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub id: i64,
    pub raw_body: String,
    pub received_at: DateTime<Utc>,
    /// What the event's `processing_error` says now (a waiting event's reason).
    pub processing_error: Option<String>,
}

/// An event read into items.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedEvent {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    pub items: Vec<Item>,
    /// The body is no webhook at all.
    pub error: Option<String>,
}

pub fn parse_events(rows: &[EventRow]) -> Vec<ParsedEvent> {
    rows.iter()
        .map(|row| match parse::items(&row.raw_body, row.received_at) {
            Ok(items) => ParsedEvent {
                id: row.id,
                received_at: row.received_at,
                items,
                error: None,
            },
            Err(error) => ParsedEvent {
                id: row.id,
                received_at: row.received_at,
                items: Vec::new(),
                error: Some(error),
            },
        })
        .collect()
}

/// What became of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Fully applied: mark it processed.
    Done,
    /// Part of it waits for something (a status for a message not written back yet): leave it
    /// unprocessed, note why, retry later.
    Pending(String),
    /// It cannot be applied: mark it processed with this error for people to look at.
    Failed(String),
    /// Nothing of it was applied yet, on purpose ([`Defer`]): it stays unmarked in Odoo and is
    /// processed again with the next batch, so its status can share a write with the next one.
    Deferred(Defer),
}

/// The outcome of every event of a batch: a failure wins over waiting, waiting over deferred,
/// deferred over done. The reasons are written in the language of the people who read them
/// ([`Outcomes::in_lang`]; English by default).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcomes {
    map: BTreeMap<i64, Outcome>,
    lang: Lang,
}

impl Outcomes {
    pub fn new(events: &[ParsedEvent]) -> Self {
        let mut outcomes = Outcomes::default();
        for event in events {
            outcomes.map.insert(event.id, Outcome::Done);
            if let Some(error) = &event.error {
                outcomes.fail(event.id, error.clone());
            }
        }
        outcomes
    }

    /// The same, with the reasons written from now on in `lang`.
    pub fn in_lang(mut self, lang: Lang) -> Self {
        self.lang = lang;
        self
    }

    /// The language of the reasons.
    pub fn lang(&self) -> Lang {
        self.lang
    }

    /// Records that part of event `id` must wait.
    pub fn wait(&mut self, id: i64, reason: String) {
        let slot = self.map.entry(id).or_insert(Outcome::Done);
        match slot {
            Outcome::Failed(_) => {}
            Outcome::Pending(existing) => {
                if !existing.contains(&reason) {
                    existing.push_str("; ");
                    existing.push_str(&reason);
                }
            }
            Outcome::Done | Outcome::Deferred(_) => *slot = Outcome::Pending(reason),
        }
    }

    /// Records that event `id` is kept for the next batch (unless something else was decided).
    pub fn defer(&mut self, id: i64, why: Defer) {
        let slot = self.map.entry(id).or_insert(Outcome::Done);
        if *slot == Outcome::Done {
            *slot = Outcome::Deferred(why);
        }
    }

    /// Records that part of event `id` cannot be applied.
    pub fn fail(&mut self, id: i64, reason: String) {
        let slot = self.map.entry(id).or_insert(Outcome::Done);
        match slot {
            Outcome::Failed(existing) => {
                if !existing.contains(&reason) {
                    existing.push_str("; ");
                    existing.push_str(&reason);
                }
            }
            _ => *slot = Outcome::Failed(reason),
        }
    }

    /// Adds the outcomes of another batch (of other events, or of the same ones).
    pub fn absorb(&mut self, other: Outcomes) {
        for (id, outcome) in other.map {
            match outcome {
                Outcome::Done => {
                    self.map.entry(id).or_insert(Outcome::Done);
                }
                Outcome::Pending(reason) => self.wait(id, reason),
                Outcome::Failed(reason) => self.fail(id, reason),
                Outcome::Deferred(why) => self.defer(id, why),
            }
        }
    }

    pub fn get(&self, id: i64) -> Option<&Outcome> {
        self.map.get(&id)
    }

    pub fn iter(&self) -> impl Iterator<Item = (i64, &Outcome)> {
        self.map.iter().map(|(id, o)| (*id, o))
    }

    /// Turns events that have waited longer than `give_up` into failures.
    pub fn give_up_stale(&mut self, events: &[ParsedEvent], now: DateTime<Utc>, give_up: Duration) {
        for event in events {
            if let Some(Outcome::Pending(reason)) = self.map.get(&event.id) {
                if now - event.received_at >= give_up {
                    let reason = self
                        .lang
                        .pick(
                            "gave up after waiting {hours} h: {reason}. If the message exists, \
                             press 'Process again' on this event",
                            "abandon après {hours} h d'attente : {reason}. Si le message existe, \
                             cliquez sur « Traiter à nouveau » sur cet événement",
                        )
                        .replace("{hours}", &give_up.num_hours().to_string())
                        .replace("{reason}", reason);
                    self.map.insert(event.id, Outcome::Failed(reason));
                }
            }
        }
    }
}

/// The prefix of `processing_error` on an event that waits (so people and the retry pass can
/// tell it from a failure), in English.
pub const PENDING_PREFIX: &str = "Waiting (retried automatically): ";

/// [`PENDING_PREFIX`] in `lang`.
pub fn pending_prefix(lang: Lang) -> &'static str {
    lang.pick(PENDING_PREFIX, "En attente (réessayé automatiquement) : ")
}

/// The `whatsapp.message` records a batch needs: by wamid, `callback_data`, or the id a
/// callback names.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MessageLookup {
    pub wamids: Vec<String>,
    pub callback_data: Vec<String>,
    pub ids: Vec<i64>,
}

impl MessageLookup {
    pub fn is_empty(&self) -> bool {
        self.wamids.is_empty() && self.callback_data.is_empty() && self.ids.is_empty()
    }
}

pub fn message_lookup(events: &[ParsedEvent]) -> MessageLookup {
    let mut wamids = HashSet::new();
    let mut callbacks = HashSet::new();
    let mut ids = HashSet::new();
    for item in events.iter().flat_map(|e| &e.items) {
        match item {
            Item::Status(s) => {
                wamids.insert(s.wamid.clone());
                if let Some(data) = &s.callback_data {
                    callbacks.insert(data.clone());
                    if let Some(id) = super::status::callback_message_id(data) {
                        ids.insert(id);
                    }
                }
            }
            Item::Message(m) => {
                wamids.insert(m.wamid.clone());
                // The message it answers: a note goes on that message's order or invoice.
                if let Some(answered) = &m.reply_to {
                    wamids.insert(answered.clone());
                }
            }
            _ => {}
        }
    }
    let sorted = |set: HashSet<String>| {
        let mut v: Vec<String> = set.into_iter().collect();
        v.sort();
        v
    };
    let mut ids: Vec<i64> = ids.into_iter().collect();
    ids.sort_unstable();
    MessageLookup {
        wamids: sorted(wamids),
        callback_data: sorted(callbacks),
        ids,
    }
}

/// Status writes of a batch: one per message.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct StatusPlan {
    /// `(message id, values)`, one entry per message.
    pub updates: Vec<(i64, Map<String, Value>)>,
    /// Statuses that did not apply and why (logged).
    pub conflicts: Vec<String>,
    /// Number of statuses in the batch.
    pub statuses: usize,
    /// Messages Odoo shows claimed with their send result not written (`sending`, no wamid)
    /// that a status now proves sent: the outbox that sent them was stopped before it wrote
    /// the result, so the indicators on their documents are set by inbound processing.
    pub proven_sent: Vec<i64>,
}

/// Why the statuses of a message may be kept for the next batch instead of written now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defer {
    /// The write would leave the message short of final (`sent` or `delivered`, or `read` with
    /// no `delivered` time yet): Meta usually sends the next status within a second, and both
    /// then share one write. Also while the message is `sending` without a wamid: the outbox
    /// is writing its send result.
    Linger,
    /// Only statuses, read while statuses stream in: applied with a later batch, at most
    /// `status_batch_interval` after the previous one (not a reason of the plan: the loop keeps
    /// such events before processing them).
    Batch,
}

/// Matches every status to its message and merges all statuses of one message into one write.
///
/// Events whose message Odoo does not know yet wait ([`Outcomes::wait`]). Events may also be
/// deferred ([`Outcomes::defer`]: kept for the next batch, nothing written) when `may_defer`
/// allows it for the reason at hand. An event is
/// deferred only as a whole (only statuses, every one of them deferrable), and a message's
/// statuses are deferred only all together, so nothing is ever half applied.
pub fn plan_statuses(
    events: &[ParsedEvent],
    rows: &[MessageRow],
    may_defer: &(dyn Fn(i64, Defer) -> bool + Sync),
    outcomes: &mut Outcomes,
) -> StatusPlan {
    let mut by_row: BTreeMap<i64, Vec<&StatusUpdate>> = BTreeMap::new();
    // The events carrying each message's statuses.
    let mut events_of: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
    // The messages each event's statuses are about, and whether the event could wait at all
    // (only statuses, every one about a known message).
    let mut messages_of: BTreeMap<i64, (bool, BTreeSet<i64>)> = BTreeMap::new();
    let mut plan = StatusPlan::default();
    let index = RowIndex::new(rows);
    for event in events {
        let only_statuses = event.error.is_none()
            && !event.items.is_empty()
            && event.items.iter().all(|i| matches!(i, Item::Status(_)));
        let mut could_wait = only_statuses;
        let mut about = BTreeSet::new();
        for item in &event.items {
            let Item::Status(status) = item else { continue };
            plan.statuses += 1;
            match index.find(status) {
                Some(row) => {
                    by_row.entry(row.id).or_default().push(status);
                    events_of.entry(row.id).or_default().insert(event.id);
                    about.insert(row.id);
                }
                None => {
                    could_wait = false;
                    let reason = outcomes
                        .lang()
                        .pick(
                            "the '{status}' status of {wamid}{callback} is for a message Odoo \
                             does not know yet",
                            "le statut « {status} » de {wamid}{callback} concerne un message \
                             qu'Odoo ne connaît pas encore",
                        )
                        .replace("{status}", status.status.as_str())
                        .replace("{wamid}", &status.wamid)
                        .replace(
                            "{callback}",
                            &status
                                .callback_data
                                .as_deref()
                                .map(|d| format!(" (callback data {d:?})"))
                                .unwrap_or_default(),
                        );
                    outcomes.wait(event.id, reason)
                }
            }
        }
        if event.items.iter().any(|i| matches!(i, Item::Status(_))) {
            messages_of.insert(event.id, (could_wait, about));
        }
    }
    let by_id: HashMap<i64, &MessageRow> = rows.iter().map(|r| (r.id, r)).collect();
    // What each message would get now, and why it could wait instead.
    let mut merged: BTreeMap<i64, Merged> = BTreeMap::new();
    let mut could_wait: BTreeMap<i64, Defer> = BTreeMap::new();
    for (id, statuses) in &by_row {
        let Some(row) = by_id.get(id) else {
            continue;
        };
        let m = merge(row, statuses);
        let reason = if !m.write.is_empty() && (!is_final(row, &m.write) || awaits_result(row)) {
            Some(Defer::Linger)
        } else {
            None
        };
        if let Some(reason) = reason {
            if events_of[id].iter().all(|e| may_defer(*e, reason)) {
                could_wait.insert(*id, reason);
            }
        }
        merged.insert(*id, m);
    }
    // An event that cannot wait as a whole makes every message it is about apply now, which
    // may in turn stop other events from waiting: repeat until nothing changes.
    loop {
        let mut changed = false;
        for (may, about) in messages_of.values() {
            let whole = *may && about.iter().all(|id| could_wait.contains_key(id));
            if !whole {
                for id in about {
                    changed |= could_wait.remove(id).is_some();
                }
            }
        }
        if !changed {
            break;
        }
    }
    for (id, m) in merged {
        if let Some(reason) = could_wait.get(&id) {
            for event in &events_of[&id] {
                outcomes.defer(*event, *reason);
            }
            tracing::trace!(message = id, ?reason, "statuses kept for the next batch");
            continue;
        }
        plan.conflicts.extend(m.conflicts);
        if !m.write.is_empty() {
            let sent = matches!(
                m.write.state,
                Some(MessageState::Sent | MessageState::Delivered | MessageState::Read)
            );
            if sent && by_id.get(&id).is_some_and(|row| awaits_result(row)) {
                plan.proven_sent.push(id);
            }
            plan.updates.push((id, m.write.to_values()));
        }
    }
    plan
}

/// True when `row` with `write` applied is in a state no later status changes: `failed`, or
/// `read` with its `delivered` time known.
/// True while Odoo shows the message claimed and its send result not written (`sending`, no
/// wamid): the outbox writes it within a moment, and the statuses kept until then go in one
/// write with it known (rather than a write racing the outbox's on the same record). After a
/// crash nothing comes: the statuses apply when their linger is over, as the proof it was sent.
fn awaits_result(row: &MessageRow) -> bool {
    row.state == Some(MessageState::Sending) && row.wamid.is_none()
}

fn is_final(row: &MessageRow, write: &StatusWrite) -> bool {
    match write.state.or(row.state) {
        Some(MessageState::Failed) => true,
        Some(MessageState::Read) => write.delivered_at.is_some() || row.delivered_at.is_some(),
        _ => false,
    }
}

/// A `whatsapp.account`, as inbound processing uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    pub id: i64,
    pub name: String,
    pub company_id: Option<i64>,
    pub phone_number_id: Option<String>,
    pub waba_id: Option<String>,
    pub display_phone_number: Option<String>,
    pub opt_out_keywords: Option<String>,
    /// In English (read without a language).
    pub opt_out_confirmation: Option<String>,
    /// How a user is told that a customer wrote.
    pub inbound_notification: Mode,
    /// Who is told when the contact has no salesperson.
    pub responsible_user_id: Option<i64>,
}

/// An inbound message with its account; `new` when Odoo has no message with its wamid yet.
#[derive(Debug, Clone, PartialEq)]
pub struct Routed<'a> {
    pub event_id: i64,
    pub inbound: &'a Inbound,
    pub account: &'a AccountRow,
    pub new: bool,
}

/// Finds each inbound message's account by phone number id. A message for a number no account
/// has fails its event with a message saying how to fix it. Repeats of one wamid (Meta
/// delivers at least once) are kept once.
pub fn route_inbound<'a>(
    events: &'a [ParsedEvent],
    accounts: &'a [AccountRow],
    rows: &[MessageRow],
    outcomes: &mut Outcomes,
) -> Vec<Routed<'a>> {
    let known: HashSet<&str> = rows.iter().filter_map(|r| r.wamid.as_deref()).collect();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for event in events {
        for item in &event.items {
            let Item::Message(inbound) = item else {
                continue;
            };
            if !seen.insert(inbound.wamid.as_str()) {
                continue;
            }
            let Some(account) = accounts
                .iter()
                .find(|a| a.phone_number_id.as_deref() == Some(inbound.phone_number_id.as_str()))
            else {
                let reason = outcomes
                    .lang()
                    .pick(
                        "no WhatsApp account has the phone number id {id} this message was \
                         sent to: add it (WhatsApp > Configuration > Accounts), then press \
                         'Process again' on this event",
                        "aucun compte WhatsApp n'a l'ID de numéro de téléphone {id} auquel ce \
                         message a été envoyé : ajoutez-le (WhatsApp > Configuration > Comptes), \
                         puis cliquez sur « Traiter à nouveau » sur cet événement",
                    )
                    .replace("{id}", &format!("{:?}", inbound.phone_number_id));
                outcomes.fail(event.id, reason);
                continue;
            };
            out.push(Routed {
                event_id: event.id,
                inbound,
                account,
                new: !known.contains(inbound.wamid.as_str()),
            });
        }
    }
    out
}

/// A `whatsapp.conversation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationRow {
    pub id: i64,
    pub account_id: i64,
    pub wa_id: Option<String>,
    pub user_id: Option<String>,
    pub partner_id: Option<i64>,
    pub profile_name: Option<String>,
    pub last_inbound_at: Option<DateTime<Utc>>,
    /// When it last told a user that the customer wrote ([`super::notify`]).
    pub last_notified_at: Option<DateTime<Utc>>,
}

/// The conversation of a user with an account: by wa_id, else by business-scoped user id.
pub fn find_conversation<'a>(
    conversations: &'a [ConversationRow],
    account_id: i64,
    wa_id: Option<&str>,
    user_id: Option<&str>,
) -> Option<&'a ConversationRow> {
    let of_account = || {
        conversations
            .iter()
            .filter(move |c| c.account_id == account_id)
    };
    wa_id
        .and_then(|w| of_account().find(|c| c.wa_id.as_deref() == Some(w)))
        .or_else(|| user_id.and_then(|u| of_account().find(|c| c.user_id.as_deref() == Some(u))))
}

/// A conversation to create (first contact).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConversation {
    pub account_id: i64,
    pub wa_id: Option<String>,
    pub user_id: Option<String>,
    pub profile_name: Option<String>,
}

/// The conversations to create: one per user without one (a message with neither wa_id nor
/// user id gets no conversation).
pub fn new_conversations(
    routed: &[Routed<'_>],
    conversations: &[ConversationRow],
) -> Vec<NewConversation> {
    let mut out: Vec<NewConversation> = Vec::new();
    for r in routed {
        let (wa_id, user_id) = (r.inbound.wa_id.as_deref(), r.inbound.user_id.as_deref());
        if wa_id.is_none() && user_id.is_none() {
            continue;
        }
        if find_conversation(conversations, r.account.id, wa_id, user_id).is_some() {
            continue;
        }
        let same_user = |c: &NewConversation| {
            c.account_id == r.account.id
                && ((wa_id.is_some() && c.wa_id.as_deref() == wa_id)
                    || (user_id.is_some() && c.user_id.as_deref() == user_id))
        };
        match out.iter_mut().find(|c| same_user(c)) {
            Some(existing) => {
                if existing.user_id.is_none() {
                    existing.user_id = user_id.map(str::to_owned);
                }
                if existing.wa_id.is_none() {
                    existing.wa_id = wa_id.map(str::to_owned);
                }
                if r.inbound.profile_name.is_some() {
                    existing.profile_name.clone_from(&r.inbound.profile_name);
                }
            }
            None => out.push(NewConversation {
                account_id: r.account.id,
                wa_id: wa_id.map(str::to_owned),
                user_id: user_id.map(str::to_owned),
                profile_name: r.inbound.profile_name.clone(),
            }),
        }
    }
    out
}

impl NewConversation {
    /// The values of its `create`; the window is set by [`conversation_updates`]'s rules at
    /// once, and `notified_at` when its first messages tell someone, so a new conversation is
    /// written only once.
    pub fn values(
        &self,
        partner_id: Option<i64>,
        last_inbound_at: Option<DateTime<Utc>>,
        notified_at: Option<DateTime<Utc>>,
    ) -> Map<String, Value> {
        let mut v = Map::new();
        v.insert("account_id".into(), json!(self.account_id));
        put(&mut v, "wa_id", &self.wa_id);
        put(&mut v, "user_id", &self.user_id);
        put(&mut v, "profile_name", &self.profile_name);
        if let Some(partner) = partner_id {
            v.insert("partner_id".into(), json!(partner));
        }
        if let Some((last, end)) = last_inbound_at.and_then(|at| refresh_window(None, at)) {
            v.insert("last_inbound_at".into(), json!(format_datetime(last)));
            v.insert("window_expires_at".into(), json!(format_datetime(end)));
        }
        if let Some(at) = notified_at {
            v.insert("last_notified_at".into(), json!(format_datetime(at)));
        }
        v
    }

    /// True when `r` belongs to this conversation.
    pub fn holds(&self, r: &Routed<'_>) -> bool {
        r.account.id == self.account_id
            && ((r.inbound.wa_id.is_some() && r.inbound.wa_id == self.wa_id)
                || (r.inbound.user_id.is_some() && r.inbound.user_id == self.user_id))
    }
}

/// The latest message time per user key among `routed` (for new conversations).
pub fn latest_inbound(
    routed: &[Routed<'_>],
    conversation: &NewConversation,
) -> Option<DateTime<Utc>> {
    routed
        .iter()
        .filter(|r| conversation.holds(r))
        .map(|r| r.inbound.timestamp)
        .max()
}

/// The messages of `routed` that belong to `conversation`.
pub fn messages_of<'a, 'b>(
    routed: &'b [Routed<'a>],
    conversation: &ConversationRow,
) -> Vec<&'b Routed<'a>> {
    routed
        .iter()
        .filter(|r| {
            find_conversation(
                std::slice::from_ref(conversation),
                r.account.id,
                r.inbound.wa_id.as_deref(),
                r.inbound.user_id.as_deref(),
            )
            .is_some()
        })
        .collect()
}

/// Writes to existing conversations: the window moves forward, the profile name follows the
/// user's, a missing wa_id, user id or partner is filled in, and `last_notified_at` becomes
/// `now` for those in `notified` (which tell someone now).
pub fn conversation_updates(
    routed: &[Routed<'_>],
    conversations: &[ConversationRow],
    partners: &HashMap<i64, i64>,
    notified: &HashSet<i64>,
    now: DateTime<Utc>,
) -> Vec<(i64, Map<String, Value>)> {
    let mut out = Vec::new();
    for conversation in conversations {
        let mine = messages_of(routed, conversation);
        let mut v = Map::new();
        if notified.contains(&conversation.id) {
            v.insert("last_notified_at".into(), json!(format_datetime(now)));
        }
        if let Some(latest) = mine.iter().max_by_key(|r| r.inbound.timestamp) {
            if let Some((last, end)) =
                refresh_window(conversation.last_inbound_at, latest.inbound.timestamp)
            {
                v.insert("last_inbound_at".into(), json!(format_datetime(last)));
                v.insert("window_expires_at".into(), json!(format_datetime(end)));
            }
            if let Some(name) = &latest.inbound.profile_name {
                if conversation.profile_name.as_ref() != Some(name) {
                    v.insert("profile_name".into(), json!(name));
                }
            }
        }
        for r in &mine {
            if conversation.wa_id.is_none() && !v.contains_key("wa_id") {
                if let Some(w) = &r.inbound.wa_id {
                    v.insert("wa_id".into(), json!(w));
                }
            }
            if conversation.user_id.is_none() && !v.contains_key("user_id") {
                if let Some(u) = &r.inbound.user_id {
                    v.insert("user_id".into(), json!(u));
                }
            }
        }
        if conversation.partner_id.is_none() {
            if let Some(partner) = partners.get(&conversation.id) {
                v.insert("partner_id".into(), json!(partner));
            }
        }
        if !v.is_empty() {
            out.push((conversation.id, v));
        }
    }
    out
}

/// The values of the received `whatsapp.message`.
pub fn message_values(
    r: &Routed<'_>,
    conversation: Option<&ConversationRow>,
) -> Map<String, Value> {
    let m = r.inbound;
    let mut v = Map::new();
    v.insert("direction".into(), json!("in"));
    v.insert("state".into(), json!("received"));
    v.insert("message_type".into(), json!(m.message_type));
    v.insert("account_id".into(), json!(r.account.id));
    if let Some(company) = r.account.company_id {
        v.insert("company_id".into(), json!(company));
    }
    if let Some(c) = conversation {
        v.insert("conversation_id".into(), json!(c.id));
        if let Some(partner) = c.partner_id {
            v.insert("partner_id".into(), json!(partner));
        }
    }
    v.insert("wamid".into(), json!(m.wamid));
    put(&mut v, "wa_id", &m.wa_id);
    put(&mut v, "body", &m.body);
    put(&mut v, "reply_to_wamid", &m.reply_to);
    put(&mut v, "button_payload", &m.button_payload);
    put(&mut v, "button_title", &m.button_title);
    if let Some(media) = &m.media {
        v.insert("media_id".into(), json!(media.id));
        put(&mut v, "media_mime_type", &media.mime_type);
        put(&mut v, "media_filename", &media.filename);
    }
    v.insert("received_at".into(), json!(format_datetime(m.timestamp)));
    v.insert("webhook_event_id".into(), json!(r.event_id));
    v.insert("meta_response_json".into(), json!(m.raw));
    v
}

/// An opt-out request found in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptOut {
    pub event_id: i64,
    pub wamid: String,
    pub at: DateTime<Utc>,
    pub account_id: i64,
    pub company_id: Option<i64>,
    pub conversation_id: Option<i64>,
    pub partner_id: Option<i64>,
    pub wa_id: Option<String>,
    /// The customer's language (an Odoo code): the contact's, else the account company's.
    pub lang: Option<String>,
    /// The account's confirmation text in that language (or the daemon's own words).
    pub confirmation: String,
}

/// The confirmation sent when an account has none configured, in English.
pub const DEFAULT_CONFIRMATION: &str = optout::DEFAULT_CONFIRMATION;

/// True when `r` is a text that is one of its account's opt-out keywords.
pub fn is_opt_out(r: &Routed<'_>) -> bool {
    r.inbound.typed_text.as_deref().is_some_and(|text| {
        optout::is_opt_out(
            text,
            &optout::keywords(r.account.opt_out_keywords.as_deref()),
        )
    })
}

/// The inbound texts that are one of their account's opt-out keywords. `lang` gives the
/// customer's language from their contact (if any) and their account. Each confirmation is the
/// account's English one ([`AccountRow::opt_out_confirmation`]) until [`localise`] puts in the
/// translations read from Odoo.
pub fn opt_outs(
    routed: &[Routed<'_>],
    conversations: &[ConversationRow],
    lang: &dyn Fn(Option<i64>, &AccountRow) -> Option<String>,
) -> Vec<OptOut> {
    let mut keywords: HashMap<i64, Vec<String>> = HashMap::new();
    let mut out = Vec::new();
    for r in routed {
        let Some(text) = r.inbound.typed_text.as_deref() else {
            continue;
        };
        let list = keywords
            .entry(r.account.id)
            .or_insert_with(|| optout::keywords(r.account.opt_out_keywords.as_deref()));
        if !optout::is_opt_out(text, list) {
            continue;
        }
        let conversation = find_conversation(
            conversations,
            r.account.id,
            r.inbound.wa_id.as_deref(),
            r.inbound.user_id.as_deref(),
        );
        let partner_id = conversation.and_then(|c| c.partner_id);
        let lang = lang(partner_id, r.account);
        out.push(OptOut {
            event_id: r.event_id,
            wamid: r.inbound.wamid.clone(),
            at: r.inbound.timestamp,
            account_id: r.account.id,
            company_id: r.account.company_id,
            conversation_id: conversation.map(|c| c.id),
            partner_id,
            wa_id: r.inbound.wa_id.clone(),
            confirmation: optout::confirmation(
                Lang::from_odoo(lang.as_deref()),
                r.account.opt_out_confirmation.as_deref(),
            ),
            lang,
        });
    }
    out
}

/// The (account, language) pairs whose confirmation must be read in that language: every
/// language but English (which [`AccountRow`] holds), each account once.
pub fn confirmation_languages(opt_outs: &[OptOut]) -> BTreeMap<String, Vec<i64>> {
    let mut out: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for o in opt_outs {
        let Some(lang) = o.lang.as_deref().filter(|l| !l.is_empty() && *l != "en_US") else {
            continue;
        };
        let accounts = out.entry(lang.to_owned()).or_default();
        if !accounts.contains(&o.account_id) {
            accounts.push(o.account_id);
        }
    }
    out
}

/// Puts in each confirmation the account's text in the customer's language, as read from Odoo
/// (`(account, language) -> text`), or the daemon's own words when the account has no text in
/// that language.
pub fn localise(opt_outs: &mut [OptOut], translated: &HashMap<(i64, String), Option<String>>) {
    for o in opt_outs {
        let Some(lang) = &o.lang else { continue };
        if let Some(text) = translated.get(&(o.account_id, lang.clone())) {
            o.confirmation = optout::confirmation(Lang::from_odoo(Some(lang)), text.as_deref());
        }
    }
}

impl OptOut {
    /// The `dedupe_key` of its confirmation: one confirmation per opt-out message, however
    /// often the event is processed.
    pub fn dedupe_key(&self) -> String {
        format!("opt_out:{}", self.wamid)
    }

    /// The values of the partner write (for a partner still opted in).
    pub fn partner_values(&self) -> Map<String, Value> {
        let mut v = Map::new();
        v.insert("whatsapp_opt_in".into(), json!(false));
        v.insert(
            "whatsapp_opt_out_date".into(),
            json!(format_datetime(self.at)),
        );
        v.insert("whatsapp_opt_in_source".into(), json!("whatsapp"));
        v
    }

    /// The queued confirmation message; `None` when the user has no phone number to send to.
    pub fn confirmation_values(&self) -> Option<Map<String, Value>> {
        let wa_id = self.wa_id.as_deref()?;
        let mut v = Map::new();
        v.insert("direction".into(), json!("out"));
        v.insert("state".into(), json!("queued"));
        v.insert("message_type".into(), json!("text"));
        v.insert("trigger".into(), json!("opt_out"));
        v.insert("body".into(), json!(self.confirmation));
        v.insert("account_id".into(), json!(self.account_id));
        if let Some(company) = self.company_id {
            v.insert("company_id".into(), json!(company));
        }
        if let Some(c) = self.conversation_id {
            v.insert("conversation_id".into(), json!(c));
        }
        if let Some(p) = self.partner_id {
            v.insert("partner_id".into(), json!(p));
        }
        v.insert("wa_id".into(), json!(wa_id));
        v.insert("to_number".into(), json!(format!("+{wa_id}")));
        v.insert("reply_to_wamid".into(), json!(self.wamid));
        v.insert("dedupe_key".into(), json!(self.dedupe_key()));
        Some(v)
    }
}

/// A `whatsapp.template`, as matched by updates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRow {
    pub id: i64,
    pub account_id: Option<i64>,
    pub meta_template_id: Option<String>,
    pub name: String,
    pub language: String,
}

/// The template updates of a batch, and the accounts to sync because an update named a
/// template Odoo does not have yet.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TemplatePlan {
    pub updates: Vec<(i64, Map<String, Value>)>,
    pub sync_accounts: Vec<i64>,
    pub notes: Vec<String>,
}

pub fn plan_templates(
    changes: &[&TemplateChange],
    templates: &[TemplateRow],
    accounts: &[AccountRow],
) -> TemplatePlan {
    let mut plan = TemplatePlan::default();
    let mut updates: BTreeMap<i64, Map<String, Value>> = BTreeMap::new();
    for change in changes {
        let waba_accounts: Vec<i64> = accounts
            .iter()
            .filter(|a| a.waba_id.as_deref() == Some(change.waba_id.as_str()))
            .map(|a| a.id)
            .collect();
        let by_id = change.meta_template_id.as_deref().and_then(|id| {
            templates
                .iter()
                .find(|t| t.meta_template_id.as_deref() == Some(id))
        });
        let matches: Vec<&TemplateRow> = match by_id {
            Some(t) => vec![t],
            None => templates
                .iter()
                .filter(|t| {
                    change.name.as_deref() == Some(t.name.as_str())
                        && change.language.as_deref().is_none_or(|l| l == t.language)
                        && t.account_id.is_some_and(|a| waba_accounts.contains(&a))
                })
                .collect(),
        };
        if matches.is_empty() {
            plan.notes.push(format!(
                "{} for template {} ({}) of WABA {}: not in Odoo yet, template sync requested",
                change.event,
                change.name.as_deref().unwrap_or("?"),
                change.meta_template_id.as_deref().unwrap_or("no id"),
                change.waba_id
            ));
            plan.sync_accounts.extend(&waba_accounts);
            continue;
        }
        for t in matches {
            let v = updates.entry(t.id).or_default();
            if let Some(status) = change.status {
                v.insert("status".into(), json!(status));
                v.insert(
                    "rejected_reason".into(),
                    change
                        .rejected_reason
                        .as_ref()
                        .map_or(Value::Bool(false), |r| json!(r)),
                );
            }
            if let Some(quality) = change.quality {
                v.insert("quality_rating".into(), json!(quality));
            }
            if t.meta_template_id.is_none() {
                if let Some(id) = &change.meta_template_id {
                    v.insert("meta_template_id".into(), json!(id));
                }
            }
        }
    }
    plan.updates = updates.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    plan.sync_accounts.sort_unstable();
    plan.sync_accounts.dedup();
    plan
}

/// Writes to accounts from account-level updates; later updates of a batch win.
pub fn plan_accounts(
    changes: &[&AccountChange],
    accounts: &[AccountRow],
) -> (Updates, Vec<String>) {
    let mut updates: BTreeMap<i64, Map<String, Value>> = BTreeMap::new();
    let mut notes = Vec::new();
    for change in changes {
        let of_waba: Vec<&AccountRow> = accounts
            .iter()
            .filter(|a| a.waba_id.as_deref() == Some(change.waba_id.as_str()))
            .collect();
        let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
        let targets: Vec<&AccountRow> = match &change.phone_number {
            Some(number) => {
                let exact: Vec<&AccountRow> = of_waba
                    .iter()
                    .copied()
                    .filter(|a| {
                        a.display_phone_number.as_deref().map(digits).as_deref()
                            == Some(number.as_str())
                    })
                    .collect();
                if exact.is_empty() {
                    of_waba
                } else {
                    exact
                }
            }
            None => of_waba,
        };
        if targets.is_empty() {
            notes.push(format!(
                "{} for WABA {}: no WhatsApp account has this WABA id",
                change.event, change.waba_id
            ));
            continue;
        }
        for account in targets {
            let v = updates.entry(account.id).or_default();
            if let Some(q) = change.quality_rating {
                v.insert("quality_rating".into(), json!(q));
            }
            if let Some(limit) = &change.messaging_limit {
                v.insert("messaging_limit".into(), json!(limit));
            }
            if let Some(problem) = &change.problem {
                v.insert("last_check_ok".into(), json!(false));
                v.insert("last_check_message".into(), json!(problem));
            }
            if change.request_check {
                v.insert("check_requested".into(), json!(true));
            }
        }
    }
    (
        updates.into_iter().filter(|(_, v)| !v.is_empty()).collect(),
        notes,
    )
}

fn put(v: &mut Map<String, Value>, key: &str, value: &Option<String>) {
    if let Some(x) = value {
        v.insert(key.to_owned(), json!(x));
    }
}

#[cfg(test)]
mod tests;
