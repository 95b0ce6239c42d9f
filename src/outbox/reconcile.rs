//! Crash safety: what happens to messages left in `sending`, and the registry of the messages
//! this process is handling.
//!
//! A message is `sending` from its claim until its result is written. If the daemon dies in
//! between, Meta may or may not have accepted it. Proof that it did is a status webhook carrying
//! its callback data (the message id): the inbound processor then writes the wamid and the state.
//! [`reconcile`] decides, for messages found in `sending`:
//!
//! - with a wamid: it was sent; only its state is set from its timestamps;
//! - claimed by this process and not finished ([`InFlight`], or waiting for proof after an
//!   answer that was lost): left alone;
//! - otherwise, once no proof came for the reconcile delay, both since its claim and since this
//!   process started or Odoo came back (the previous process may have sent it just before it
//!   died, and statuses cannot be stored while Odoo is away): requeued, but only once the
//!   inbound processor has read every webhook event received so far (one of them may be the
//!   proof; the loop in `run.rs` asks Odoo before it requeues).
//!
//! A status may reach Odoo before the send's own result write: Odoo keeps a message's state
//! forward-only (the addon's `whatsapp.message.write`), so that write records the wamid and
//! times and leaves the state the status gave; the two flows meet only in Odoo.

use super::gate::already_sent_state;
use super::model::Message;
use super::writeback::Outcome;
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The ids of the messages this process has claimed and not yet written back (reconciliation
/// leaves them alone). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct InFlight {
    ids: Arc<Mutex<HashSet<i64>>>,
}

impl InFlight {
    pub fn new() -> Self {
        InFlight::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashSet<i64>> {
        self.ids
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// True while the outbox holds this message (claimed, result not written yet).
    pub fn contains(&self, message_id: i64) -> bool {
        self.lock().contains(&message_id)
    }

    pub fn insert_all(&self, ids: impl IntoIterator<Item = i64>) {
        self.lock().extend(ids);
    }

    pub fn remove_all(&self, ids: impl IntoIterator<Item = i64>) {
        let mut set = self.lock();
        for id in ids {
            set.remove(&id);
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

/// What to do with each message found in `sending` (messages not listed are left as they are).
pub fn reconcile(
    messages: &[Message],
    now: DateTime<Utc>,
    settled_from: DateTime<Utc>,
    delay: Duration,
    held: impl Fn(i64) -> bool,
) -> Vec<Outcome> {
    let delay = TimeDelta::from_std(delay).unwrap_or(TimeDelta::hours(1));
    let settled = now >= settled_from + delay;
    messages
        .iter()
        .filter(|m| m.state == "sending")
        .filter_map(|m| {
            if let Some(state) = already_sent_state(m) {
                return Some(Outcome::AlreadySent { id: m.id, state });
            }
            if held(m.id) || !settled {
                return None;
            }
            match m.claimed_at {
                Some(claimed) if claimed + delay > now => None,
                _ => Some(Outcome::Requeue {
                    id: m.id,
                    next_attempt_at: None,
                }),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap() + TimeDelta::minutes(min)
    }

    fn sending(id: i64, claimed_min: Option<i64>) -> Message {
        Message {
            id,
            state: "sending".into(),
            claimed_at: claimed_min.map(t),
            ..Message::default()
        }
    }

    const DELAY: Duration = Duration::from_secs(120);

    #[test]
    fn nothing_is_requeued_before_the_delay_since_start() {
        // Claimed long ago by the previous process, which may have sent it just before dying.
        let msgs = [sending(1, Some(-60))];
        assert!(reconcile(&msgs, t(1), t(0), DELAY, |_| false).is_empty());
        assert_eq!(
            reconcile(&msgs, t(2), t(0), DELAY, |_| false),
            vec![Outcome::Requeue {
                id: 1,
                next_attempt_at: None
            }]
        );
    }

    #[test]
    fn recent_claims_wait_for_their_own_delay() {
        let msgs = [sending(1, Some(9)), sending(2, Some(7)), sending(3, None)];
        let out = reconcile(&msgs, t(10), t(0), DELAY, |_| false);
        let ids: Vec<i64> = out.iter().map(Outcome::id).collect();
        assert_eq!(ids, [2, 3]);
    }

    #[test]
    fn proof_wins_and_held_messages_are_left_alone() {
        let mut proven = sending(1, Some(0));
        proven.wamid = Some("wamid.A".into());
        proven.read_at = Some(t(1));
        let msgs = [proven, sending(2, Some(0)), sending(3, Some(0))];
        let out = reconcile(&msgs, t(10), t(0), DELAY, |id| id == 2);
        assert_eq!(
            out,
            vec![
                Outcome::AlreadySent {
                    id: 1,
                    state: "read"
                },
                Outcome::Requeue {
                    id: 3,
                    next_attempt_at: None
                }
            ]
        );
    }

    #[test]
    fn only_sending_messages_are_touched() {
        let mut queued = sending(1, Some(0));
        queued.state = "queued".into();
        assert!(reconcile(&[queued], t(10), t(0), DELAY, |_| false).is_empty());
    }

    #[test]
    fn the_registry_is_shared() {
        let a = InFlight::new();
        let b = a.clone();
        a.insert_all([1, 2, 3]);
        assert!(b.contains(2));
        b.remove_all([2]);
        assert!(!a.contains(2));
        assert_eq!(a.len(), 2);
    }
}
