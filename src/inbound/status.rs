//! Delivery statuses: which message a status is about, and what to write to it (pure).
//!
//! Meta delivers statuses at least once and in any order, sometimes before the send's own
//! write-back reached Odoo. The rules here make applying them commutative and idempotent:
//!
//! - the state only moves forward, along `queued/cancelled < sending < sent < delivered < read <
//!   failed` (`failed` is final: nothing moves a failed message, whatever arrives later);
//! - each state's timestamp (`sent_at`, `delivered_at`, `read_at`, `failed_at`) is filled from the
//!   status's own timestamp when it is still empty, so an out-of-order `sent` after `read` still
//!   records when it was sent;
//! - `wamid`, `wa_id` and `pricing_category` are filled when empty, never overwritten; a write
//!   that would only fill `wa_id` or `pricing_category` on a message already known as sent is
//!   left out: Meta repeats the pricing with `delivered` or `read`, whose write carries it, and
//!   the `sent` status right after the outbox's own write-back then costs no write at all;
//! - every status about one message within one batch becomes a single write ([`merge`]), and
//!   the Odoo client's `write_each` sends messages whose writes are identical in one `write`
//!   call (and the rest in one `load`).
//!
//! A duplicate (same wamid and status) therefore changes nothing and writes nothing.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::collections::HashMap;

use super::model::{MessageState, StatusKind, StatusUpdate};
use crate::odoo::format_datetime;

/// `error_help` of a `failed` status that carried no error object.
pub const FAILED_WITHOUT_ERROR: &str = "Meta reported this message as failed without an error \
     code. Check the number and the message in WhatsApp Manager, then send it again.";

/// What processing needs to know about a `whatsapp.message` a status may be about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRow {
    pub id: i64,
    /// `None` when Odoo holds a state this daemon does not know (left alone).
    pub state: Option<MessageState>,
    /// True for an inbound (`direction = in`) message.
    pub inbound: bool,
    pub wamid: Option<String>,
    pub callback_data: Option<String>,
    pub wa_id: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
    pub pricing_category: Option<String>,
}

impl MessageRow {
    fn timestamp(&self, kind: StatusKind) -> Option<DateTime<Utc>> {
        match kind {
            StatusKind::Sent => self.sent_at,
            StatusKind::Delivered => self.delivered_at,
            StatusKind::Read => self.read_at,
            StatusKind::Failed => self.failed_at,
        }
    }
}

/// The fields one merge changes on one message; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct StatusWrite {
    pub state: Option<MessageState>,
    pub wamid: Option<String>,
    pub wa_id: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
    pub pricing_category: Option<String>,
    pub error_code: Option<String>,
    pub error_title: Option<String>,
    pub error_details: Option<String>,
    pub error_help: Option<String>,
}

impl StatusWrite {
    /// True when the write would change nothing.
    pub fn is_empty(&self) -> bool {
        *self == StatusWrite::default()
    }

    fn set_timestamp(&mut self, kind: StatusKind, at: DateTime<Utc>) {
        let slot = match kind {
            StatusKind::Sent => &mut self.sent_at,
            StatusKind::Delivered => &mut self.delivered_at,
            StatusKind::Read => &mut self.read_at,
            StatusKind::Failed => &mut self.failed_at,
        };
        // Several statuses of one kind in a batch: keep the earliest.
        *slot = Some(slot.map_or(at, |old| old.min(at)));
    }

    /// The values of an Odoo `write`.
    pub fn to_values(&self) -> Map<String, Value> {
        let mut values = Map::new();
        let mut text = |key: &str, value: &Option<String>| {
            if let Some(v) = value {
                values.insert(key.to_owned(), Value::String(v.clone()));
            }
        };
        text("wamid", &self.wamid);
        text("wa_id", &self.wa_id);
        text("pricing_category", &self.pricing_category);
        text("error_code", &self.error_code);
        text("error_title", &self.error_title);
        text("error_details", &self.error_details);
        text("error_help", &self.error_help);
        if let Some(state) = self.state {
            values.insert("state".into(), Value::String(state.as_str().into()));
        }
        for (key, at) in [
            ("sent_at", self.sent_at),
            ("delivered_at", self.delivered_at),
            ("read_at", self.read_at),
            ("failed_at", self.failed_at),
        ] {
            if let Some(at) = at {
                values.insert(key.into(), Value::String(format_datetime(at)));
            }
        }
        values
    }
}

/// The result of merging a batch's statuses into one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    /// What to write; empty when every status was already applied (duplicates).
    pub write: StatusWrite,
    /// Statuses that could not apply, each with the reason (logged; the event is still done).
    pub conflicts: Vec<String>,
}

/// Merges every status of one batch about `row` into a single write.
///
/// Statuses whose wamid differs from the message's wamid (found through callback data) are not
/// applied: Meta then accepted two sends of one message, and [`Merged::conflicts`] says so.
pub fn merge(row: &MessageRow, statuses: &[&StatusUpdate]) -> Merged {
    let mut write = StatusWrite::default();
    let mut conflicts = Vec::new();
    if row.inbound || row.state == Some(MessageState::Received) {
        conflicts.push(format!(
            "whatsapp.message {} is an inbound message: statuses do not apply to it",
            row.id
        ));
        return Merged { write, conflicts };
    }
    let Some(mut state) = row.state else {
        conflicts.push(format!(
            "whatsapp.message {} has a state this daemon does not know: left as it is",
            row.id
        ));
        return Merged { write, conflicts };
    };
    let mut wamid = row.wamid.clone();
    for status in statuses {
        match &wamid {
            Some(known) if *known != status.wamid => {
                conflicts.push(format!(
                    "a '{}' status for wamid {} carries the callback data of whatsapp.message {}, \
                     which has wamid {known}: Meta accepted this message twice",
                    status.status.as_str(),
                    status.wamid,
                    row.id
                ));
                continue;
            }
            Some(_) => {}
            None => {
                wamid = Some(status.wamid.clone());
                write.wamid = Some(status.wamid.clone());
            }
        }
        if row.timestamp(status.status).is_none() {
            write.set_timestamp(status.status, status.timestamp);
        }
        if row.wa_id.is_none() && write.wa_id.is_none() {
            write.wa_id.clone_from(&status.recipient_id);
        }
        if row.pricing_category.is_none() && write.pricing_category.is_none() {
            write.pricing_category.clone_from(&status.pricing_category);
        }
        let target = status.status.state();
        if target.rank() > state.rank() {
            state = target;
            write.state = Some(target);
            if status.status.is_failed() {
                match &status.error {
                    Some(error) => {
                        write.error_code = Some(error.code.to_string());
                        write.error_title.clone_from(&error.title);
                        write.error_details.clone_from(&error.details);
                        write.error_help = Some(error.help.clone());
                    }
                    None => write.error_help = Some(FAILED_WITHOUT_ERROR.to_owned()),
                }
            }
        }
    }
    let only_details = StatusWrite {
        wa_id: None,
        pricing_category: None,
        ..write.clone()
    }
    .is_empty();
    if only_details && state.rank() >= MessageState::Sent.rank() {
        write = StatusWrite::default();
    }
    Merged { write, conflicts }
}

/// Reads the Odoo message id out of `biz_opaque_callback_data`, when the data is the plain
/// decimal id the outbox puts there.
pub fn callback_message_id(callback_data: &str) -> Option<i64> {
    let data = callback_data.trim();
    if data.is_empty() || !data.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    data.parse().ok().filter(|id| *id > 0)
}

/// The messages of a batch, indexed for [`RowIndex::find`].
pub struct RowIndex<'a> {
    by_wamid: HashMap<&'a str, &'a MessageRow>,
    by_callback: HashMap<&'a str, &'a MessageRow>,
    by_id: HashMap<i64, &'a MessageRow>,
}

impl<'a> RowIndex<'a> {
    pub fn new(rows: &'a [MessageRow]) -> Self {
        let mut index = RowIndex {
            by_wamid: HashMap::new(),
            by_callback: HashMap::new(),
            by_id: HashMap::new(),
        };
        // The first record wins, as Odoo's unique wamid makes repeats impossible anyway.
        for row in rows {
            if let Some(w) = row.wamid.as_deref() {
                index.by_wamid.entry(w).or_insert(row);
            }
            if let Some(c) = row.callback_data.as_deref().filter(|_| !row.inbound) {
                index.by_callback.entry(c).or_insert(row);
            }
            index.by_id.entry(row.id).or_insert(row);
        }
        index
    }

    /// Finds the message a status is about: by wamid first, then by callback data (the
    /// record's `callback_data` field, or the record id it names). A record found through its
    /// id must be outbound, have no callback data of its own, and its wamid, when it has one,
    /// must be the status's.
    pub fn find(&self, status: &StatusUpdate) -> Option<&'a MessageRow> {
        if let Some(row) = self.by_wamid.get(status.wamid.as_str()) {
            return Some(row);
        }
        let data = status.callback_data.as_deref()?;
        if let Some(row) = self.by_callback.get(data) {
            return Some(row);
        }
        let row = self.by_id.get(&callback_message_id(data)?)?;
        (!row.inbound
            && row.callback_data.is_none()
            && row.wamid.as_deref().is_none_or(|w| w == status.wamid))
        .then_some(*row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::model::StatusError;
    use chrono::TimeZone;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_750_000_000 + secs, 0).single().unwrap()
    }

    fn row(state: MessageState) -> MessageRow {
        MessageRow {
            id: 7,
            state: Some(state),
            inbound: false,
            wamid: Some("wamid.A".into()),
            callback_data: Some("7".into()),
            wa_id: Some("2250700000001".into()),
            sent_at: None,
            delivered_at: None,
            read_at: None,
            failed_at: None,
            pricing_category: None,
        }
    }

    fn status(kind: StatusKind, secs: i64) -> StatusUpdate {
        StatusUpdate {
            wamid: "wamid.A".into(),
            status: kind,
            timestamp: at(secs),
            recipient_id: Some("2250700000001".into()),
            recipient_user_id: None,
            callback_data: Some("7".into()),
            pricing_category: None,
            error: None,
        }
    }

    fn apply(row: &mut MessageRow, write: &StatusWrite) {
        if let Some(s) = write.state {
            row.state = Some(s);
        }
        if write.wamid.is_some() {
            row.wamid.clone_from(&write.wamid);
        }
        row.sent_at = write.sent_at.or(row.sent_at);
        row.delivered_at = write.delivered_at.or(row.delivered_at);
        row.read_at = write.read_at.or(row.read_at);
        row.failed_at = write.failed_at.or(row.failed_at);
        if write.pricing_category.is_some() {
            row.pricing_category.clone_from(&write.pricing_category);
        }
    }

    #[test]
    fn all_statuses_of_a_batch_become_one_write_with_every_timestamp() {
        let r = row(MessageState::Sending);
        let (s, d, rd) = (
            status(StatusKind::Sent, 1),
            status(StatusKind::Delivered, 2),
            status(StatusKind::Read, 5),
        );
        let merged = merge(&r, &[&rd, &s, &d]);
        assert!(merged.conflicts.is_empty());
        let w = merged.write;
        assert_eq!(w.state, Some(MessageState::Read));
        assert_eq!(w.sent_at, Some(at(1)));
        assert_eq!(w.delivered_at, Some(at(2)));
        assert_eq!(w.read_at, Some(at(5)));
        assert_eq!(w.wamid, None, "the wamid was known already");
    }

    #[test]
    fn state_never_moves_backwards_but_late_timestamps_are_kept() {
        let mut r = row(MessageState::Read);
        r.read_at = Some(at(5));
        let merged = merge(&r, &[&status(StatusKind::Delivered, 2)]);
        assert_eq!(merged.write.state, None);
        assert_eq!(merged.write.delivered_at, Some(at(2)));
    }

    #[test]
    fn failed_is_final() {
        let mut r = row(MessageState::Failed);
        r.failed_at = Some(at(3));
        r.sent_at = Some(at(1));
        let merged = merge(&r, &[&status(StatusKind::Read, 9)]);
        assert_eq!(merged.write.state, None);
        assert_eq!(merged.write.read_at, Some(at(9)));
    }

    #[test]
    fn failure_records_code_title_details_and_help() {
        let r = row(MessageState::Sent);
        let mut f = status(StatusKind::Failed, 4);
        f.error = Some(StatusError {
            code: 131047,
            title: Some("Re-engagement message".into()),
            details: Some("more than 24 hours".into()),
            help: "send a template".into(),
        });
        let w = merge(&r, &[&f]).write;
        assert_eq!(w.state, Some(MessageState::Failed));
        assert_eq!(w.failed_at, Some(at(4)));
        assert_eq!(w.error_code.as_deref(), Some("131047"));
        assert_eq!(w.error_title.as_deref(), Some("Re-engagement message"));
        assert_eq!(w.error_details.as_deref(), Some("more than 24 hours"));
        assert_eq!(w.error_help.as_deref(), Some("send a template"));
    }

    #[test]
    fn duplicates_write_nothing() {
        let mut r = row(MessageState::Delivered);
        r.sent_at = Some(at(1));
        r.delivered_at = Some(at(2));
        let merged = merge(
            &r,
            &[
                &status(StatusKind::Delivered, 2),
                &status(StatusKind::Sent, 1),
            ],
        );
        assert!(merged.write.is_empty(), "{:?}", merged.write);
    }

    #[test]
    fn every_arrival_order_ends_in_the_same_record() {
        let statuses = [
            status(StatusKind::Sent, 1),
            status(StatusKind::Delivered, 2),
            status(StatusKind::Read, 3),
        ];
        let orders = [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ];
        for order in orders {
            // One status per batch, each batch seeing the previous writes.
            let mut r = row(MessageState::Sending);
            for i in order {
                let w = merge(&r, &[&statuses[i]]).write;
                apply(&mut r, &w);
            }
            assert_eq!(r.state, Some(MessageState::Read), "order {order:?}");
            assert_eq!(
                (r.sent_at, r.delivered_at, r.read_at),
                (Some(at(1)), Some(at(2)), Some(at(3)))
            );
        }
    }

    #[test]
    fn callback_data_proves_a_send_the_write_back_never_recorded() {
        let mut r = row(MessageState::Sending);
        r.wamid = None;
        let mut s = status(StatusKind::Sent, 1);
        s.wamid = "wamid.NEW".into();
        assert_eq!(
            RowIndex::new(std::slice::from_ref(&r))
                .find(&s)
                .map(|r| r.id),
            Some(7)
        );
        let w = merge(&r, &[&s]).write;
        assert_eq!(w.wamid.as_deref(), Some("wamid.NEW"));
        assert_eq!(w.state, Some(MessageState::Sent));
    }

    #[test]
    fn a_second_wamid_for_one_message_is_a_conflict_not_a_write() {
        let r = row(MessageState::Sent);
        let mut s = status(StatusKind::Delivered, 2);
        s.wamid = "wamid.OTHER".into();
        let merged = merge(&r, &[&s]);
        assert!(merged.write.is_empty());
        assert_eq!(merged.conflicts.len(), 1);
        assert!(
            merged.conflicts[0].contains("twice"),
            "{}",
            merged.conflicts[0]
        );
    }

    #[test]
    fn statuses_do_not_apply_to_inbound_messages() {
        let mut r = row(MessageState::Received);
        r.inbound = true;
        let merged = merge(&r, &[&status(StatusKind::Read, 1)]);
        assert!(merged.write.is_empty());
        assert_eq!(merged.conflicts.len(), 1);
    }

    #[test]
    fn fills_wa_id_and_pricing_only_when_empty() {
        let mut r = row(MessageState::Sending);
        r.wa_id = None;
        let mut s = status(StatusKind::Sent, 1);
        s.pricing_category = Some("utility".into());
        let w = merge(&r, &[&s]).write;
        assert_eq!(w.wa_id.as_deref(), Some("2250700000001"));
        assert_eq!(w.pricing_category.as_deref(), Some("utility"));
        r.wa_id = Some("x".into());
        r.pricing_category = Some("marketing".into());
        let w = merge(&r, &[&s]).write;
        assert_eq!((w.wa_id, w.pricing_category), (None, None));
    }

    #[test]
    fn pricing_alone_on_a_sent_message_waits_for_the_next_state() {
        // The outbox wrote the send back (state, wamid, sent_at); Meta's `sent` only adds
        // pricing, which comes again with `delivered`: no write now.
        let mut r = row(MessageState::Sent);
        r.sent_at = Some(at(0));
        r.wa_id = None;
        let mut s = status(StatusKind::Sent, 1);
        s.pricing_category = Some("utility".into());
        assert!(merge(&r, &[&s]).write.is_empty());
        let mut d = status(StatusKind::Delivered, 2);
        d.pricing_category = Some("utility".into());
        let w = merge(&r, &[&d]).write;
        assert_eq!(w.state, Some(MessageState::Delivered));
        assert_eq!(w.pricing_category.as_deref(), Some("utility"));
        assert_eq!(w.wa_id.as_deref(), Some("2250700000001"));
    }

    #[test]
    fn values_use_odoo_names_and_formats() {
        let w = StatusWrite {
            state: Some(MessageState::Delivered),
            delivered_at: Some(at(0)),
            wamid: Some("wamid.A".into()),
            ..StatusWrite::default()
        };
        let v = w.to_values();
        assert_eq!(v["state"], "delivered");
        assert_eq!(v["delivered_at"], "2025-06-15 15:06:40");
        assert_eq!(v["wamid"], "wamid.A");
        assert_eq!(v.len(), 3);
    }

    #[test]
    fn callback_ids_are_plain_positive_integers() {
        assert_eq!(callback_message_id("42"), Some(42));
        assert_eq!(callback_message_id(" 42 "), Some(42));
        assert_eq!(callback_message_id("0"), None);
        assert_eq!(callback_message_id("job-77"), None);
        assert_eq!(callback_message_id("-4"), None);
        assert_eq!(callback_message_id("99999999999999999999999"), None);
    }

    #[test]
    fn an_id_match_never_steals_another_messages_status() {
        let mut r = row(MessageState::Sent);
        r.callback_data = None;
        r.wamid = Some("wamid.OTHER".into());
        let s = status(StatusKind::Delivered, 1);
        assert!(RowIndex::new(std::slice::from_ref(&r)).find(&s).is_none());
        r.inbound = true;
        r.wamid = None;
        assert!(RowIndex::new(std::slice::from_ref(&r)).find(&s).is_none());
    }
}
