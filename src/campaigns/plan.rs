//! Pure decisions of the campaign engine: which step a recipient is due for, whether its
//! condition holds, what a recipient's state becomes when its message moves, the KPIs, and
//! when a campaign pauses itself.

use crate::lang::Lang;
use chrono::{DateTime, Duration as TimeDelta, Utc};

/// A drip step, as read from `whatsapp.campaign.step` (in `sequence, id` order).
#[derive(Debug, Clone, PartialEq)]
pub struct StepInfo {
    pub id: i64,
    pub name: String,
    pub delay_hours: f64,
    pub condition: Condition,
}

/// A step's `condition`, checked when the step becomes due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Always,
    /// The previous step's message was not read.
    NotRead,
    /// The recipient has not replied during the campaign.
    NotReplied,
    /// The previous step's message was read, and no reply.
    ReadNotReplied,
}

impl Condition {
    /// From the selection value; an unknown value is refused (the addon's selection changed).
    pub fn parse(value: &str) -> Option<Condition> {
        Some(match value {
            "always" => Condition::Always,
            "not_read" => Condition::NotRead,
            "not_replied" => Condition::NotReplied,
            "read_not_replied" => Condition::ReadNotReplied,
            _ => return None,
        })
    }

    /// Whether the step goes to a recipient whose previous message was read (`read`) and who
    /// replied or not (`replied`).
    pub fn holds(self, read: bool, replied: bool) -> bool {
        match self {
            Condition::Always => true,
            Condition::NotRead => !read,
            Condition::NotReplied => !replied,
            Condition::ReadNotReplied => read && !replied,
        }
    }
}

/// A delay in hours as a duration (negative or not a number: none).
pub fn hours(h: f64) -> TimeDelta {
    if h.is_finite() && h > 0.0 {
        TimeDelta::milliseconds((h * 3_600_000.0).round() as i64)
    } else {
        TimeDelta::zero()
    }
}

/// The step after `current` (`None`: the first), in order.
pub fn next_step(steps: &[StepInfo], current: Option<i64>) -> Option<&StepInfo> {
    match current {
        None => steps.first(),
        Some(id) => {
            let at = steps.iter().position(|s| s.id == id)?;
            steps.get(at + 1)
        }
    }
}

/// When a recipient that was just given (or skipped) `step` at `now` is due for the step after
/// it, if there is one.
pub fn due_after(steps: &[StepInfo], step: i64, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    next_step(steps, Some(step)).map(|next| now + hours(next.delay_hours))
}

/// The previous step's message of a recipient, as the next step's decision needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Previous {
    /// When it was sent (`None`: not yet).
    pub sent_at: Option<DateTime<Utc>>,
    pub read: bool,
}

/// What to do with a due recipient.
#[derive(Debug, Clone, PartialEq)]
pub enum Due {
    /// Queue this step's message.
    Send(StepInfo),
    /// The step's condition does not hold: skip it; the next one is due at the time given
    /// (`None`: it was the last step).
    Skip {
        step: i64,
        next_due: Option<DateTime<Utc>>,
    },
    /// Not yet (the first step's delay after the start).
    Wait(DateTime<Utc>),
    /// Nothing left to send.
    Finished,
}

/// The decision for a recipient due now, given its current step, its previous step's message
/// (`None` when it has none, e.g. the step was skipped), whether it replied, and when the
/// campaign started. A next step is due `delay_hours` after the previous message was *sent*:
/// while that message waits in the queue (or is retried), the recipient is looked at again
/// after `recheck`.
pub fn decide(
    steps: &[StepInfo],
    current: Option<i64>,
    previous: Option<Previous>,
    replied: bool,
    started_at: DateTime<Utc>,
    now: DateTime<Utc>,
    recheck: std::time::Duration,
) -> Due {
    let Some(step) = next_step(steps, current) else {
        return Due::Finished;
    };
    if current.is_none() {
        let due = started_at + hours(step.delay_hours);
        if now < due {
            return Due::Wait(due);
        }
    }
    if let Some(prev) = previous {
        match prev.sent_at {
            None => {
                let recheck = TimeDelta::from_std(recheck).unwrap_or(TimeDelta::seconds(5));
                return Due::Wait(now + recheck);
            }
            Some(sent) => {
                let due = sent + hours(step.delay_hours);
                if now < due {
                    return Due::Wait(due);
                }
            }
        }
    }
    let previous_read = previous.is_some_and(|p| p.read);
    if step.condition.holds(previous_read, replied) {
        Due::Send(step.clone())
    } else {
        Due::Skip {
            step: step.id,
            next_due: due_after(steps, step.id, now),
        }
    }
}

/// A recipient's `state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecipientState {
    Pending,
    Queued,
    Sent,
    Delivered,
    Read,
    Replied,
    Failed,
    Skipped,
    OptedOut,
}

impl RecipientState {
    pub fn parse(value: &str) -> Option<RecipientState> {
        Some(match value {
            "pending" => RecipientState::Pending,
            "queued" => RecipientState::Queued,
            "sent" => RecipientState::Sent,
            "delivered" => RecipientState::Delivered,
            "read" => RecipientState::Read,
            "replied" => RecipientState::Replied,
            "failed" => RecipientState::Failed,
            "skipped" => RecipientState::Skipped,
            "opted_out" => RecipientState::OptedOut,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RecipientState::Pending => "pending",
            RecipientState::Queued => "queued",
            RecipientState::Sent => "sent",
            RecipientState::Delivered => "delivered",
            RecipientState::Read => "read",
            RecipientState::Replied => "replied",
            RecipientState::Failed => "failed",
            RecipientState::Skipped => "skipped",
            RecipientState::OptedOut => "opted_out",
        }
    }

    /// Failed, skipped and opted out end the recipient's campaign.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RecipientState::Failed | RecipientState::Skipped | RecipientState::OptedOut
        )
    }
}

/// The states a recipient still in the campaign can be in.
pub const ACTIVE_STATES: [&str; 6] = ["pending", "queued", "sent", "delivered", "read", "replied"];

/// A recipient's state after one of its messages moved to `message_state`: it only moves
/// forward (a recipient who read step 1 stays `read` while step 2 is queued), a permanent
/// failure makes it `failed`, and a final state stays. `None`: no change.
pub fn follow(current: RecipientState, message_state: &str) -> Option<RecipientState> {
    if current.is_final() {
        return None;
    }
    let target = match message_state {
        "queued" | "sending" => RecipientState::Queued,
        "sent" => RecipientState::Sent,
        "delivered" => RecipientState::Delivered,
        "read" => RecipientState::Read,
        "failed" => return Some(RecipientState::Failed),
        _ => return None,
    };
    (target > current).then_some(target)
}

/// The campaign's KPI fields from its recipients counted by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Kpis {
    pub recipients: u64,
    pub sent: u64,
    pub delivered: u64,
    pub read: u64,
    pub replied: u64,
    pub failed: u64,
    pub opted_out: u64,
}

impl Kpis {
    /// From `(state, count)` pairs. A recipient counts in every stage it passed: one who read
    /// was also sent and delivered; skipped recipients are not recipients.
    pub fn from_counts<'a>(counts: impl IntoIterator<Item = (&'a str, u64)>) -> Kpis {
        let mut k = Kpis::default();
        for (state, n) in counts {
            let Some(s) = RecipientState::parse(state) else {
                continue;
            };
            if s != RecipientState::Skipped {
                k.recipients += n;
            }
            if matches!(
                s,
                RecipientState::Sent
                    | RecipientState::Delivered
                    | RecipientState::Read
                    | RecipientState::Replied
            ) {
                k.sent += n;
            }
            if matches!(
                s,
                RecipientState::Delivered | RecipientState::Read | RecipientState::Replied
            ) {
                k.delivered += n;
            }
            if matches!(s, RecipientState::Read | RecipientState::Replied) {
                k.read += n;
            }
            match s {
                RecipientState::Replied => k.replied += n,
                RecipientState::Failed => k.failed += n,
                RecipientState::OptedOut => k.opted_out += n,
                _ => {}
            }
        }
        k
    }
}

/// What the engine knows about a running campaign when it checks whether to pause it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Health {
    /// (template name, status) of each step's template that is not approved.
    pub templates_not_approved: Vec<(String, String)>,
    /// The account's quality rating (`green`, `yellow`, `red`, `unknown`).
    pub quality: Option<String>,
    /// Meta error codes seen on this campaign's messages since the last check.
    pub error_codes: Vec<String>,
    /// A message held by Meta's daily messaging limit, until this time.
    pub held_until: Option<DateTime<Utc>>,
    /// (failed, finished) among the campaign's last sends.
    pub recent: (u64, u64),
}

/// Why a campaign pauses itself.
#[derive(Debug, Clone, PartialEq)]
pub struct PauseReason {
    pub text: String,
    /// Resumed by the daemon at this time (the messaging tier's next day).
    pub resume_at: Option<DateTime<Utc>>,
}

/// The smallest number of finished sends the failure ratio is judged on.
pub const MIN_FAILURE_SAMPLE: u64 = 20;

/// Whether a running campaign must pause, and why, in the campaign owner's language.
pub fn pause_reason(health: &Health, max_failure_ratio: f64, lang: Lang) -> Option<PauseReason> {
    let reason = |text: String| {
        Some(PauseReason {
            text,
            resume_at: None,
        })
    };
    if let Some((name, status)) = health.templates_not_approved.first() {
        return reason(lang.pick(
            format!(
                "The template {name:?} is {status} at Meta: its messages cannot be sent. Resume \
                 the campaign once Meta approves it again (or choose another template)."
            ),
            format!(
                "Le modèle {name:?} est {status} chez Meta : ses messages ne peuvent pas partir. \
                 Reprenez la campagne quand Meta l'aura de nouveau approuvé (ou choisissez un \
                 autre modèle)."
            ),
        ));
    }
    if health.quality.as_deref() == Some("red") {
        return reason(lang.pick(
            "The number's quality rating is RED: many customers blocked or reported its recent \
             messages. Review the campaign's content and audience before resuming it."
                .to_owned(),
            "La note de qualité du numéro est ROUGE : de nombreux clients ont bloqué ou signalé \
             ses messages récents. Revoyez le contenu et l'audience de la campagne avant de la \
             reprendre."
                .to_owned(),
        ));
    }
    if health.error_codes.iter().any(|c| c == "131048") {
        return reason(lang.pick(
            "Meta refused messages for spam rate (error 131048): too many customers blocked or \
             reported this number. Check its quality rating before resuming."
                .to_owned(),
            "Meta a refusé des messages pour cause de spam (erreur 131048) : trop de clients ont \
             bloqué ou signalé ce numéro. Vérifiez sa note de qualité avant de reprendre."
                .to_owned(),
        ));
    }
    if health.error_codes.iter().any(|c| c == "131049") {
        return reason(lang.pick(
            "Meta held back marketing messages to keep engagement healthy (error 131049): \
             customers received too many marketing messages. Resume later, with fewer or \
             better-targeted recipients."
                .to_owned(),
            "Meta a retenu des messages marketing pour préserver l'engagement (erreur 131049) : \
             les clients ont reçu trop de messages marketing. Reprenez plus tard, avec moins de \
             destinataires ou mieux ciblés."
                .to_owned(),
        ));
    }
    if let Some(until) = health.held_until {
        return Some(PauseReason {
            text: lang.pick(
                format!(
                    "The number's daily messaging limit (new customers per 24 hours) is used up. \
                     The campaign resumes by itself at {} UTC.",
                    until.format("%Y-%m-%d %H:%M")
                ),
                format!(
                    "La limite quotidienne de messages du numéro (nouveaux clients par 24 heures) \
                     est atteinte. La campagne reprendra d'elle-même le {} UTC.",
                    until.format("%Y-%m-%d %H:%M")
                ),
            ),
            resume_at: Some(until),
        });
    }
    let (failed, finished) = health.recent;
    if finished >= MIN_FAILURE_SAMPLE && failed as f64 > max_failure_ratio * finished as f64 {
        let percent = (100 * failed) / finished.max(1);
        return reason(lang.pick(
            format!(
                "{failed} of the last {finished} messages failed ({percent} %): look at the \
                 failed messages for the reason before resuming."
            ),
            format!(
                "{failed} des {finished} derniers messages ont échoué ({percent} %) : consultez \
                 les messages en échec pour en connaître la raison avant de reprendre."
            ),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn steps() -> Vec<StepInfo> {
        vec![
            StepInfo {
                id: 11,
                name: "Offer".into(),
                delay_hours: 0.0,
                condition: Condition::Always,
            },
            StepInfo {
                id: 12,
                name: "Reminder".into(),
                delay_hours: 48.0,
                condition: Condition::NotRead,
            },
            StepInfo {
                id: 13,
                name: "Last chance".into(),
                delay_hours: 24.0,
                condition: Condition::NotReplied,
            },
        ]
    }

    #[test]
    fn conditions() {
        assert!(Condition::Always.holds(true, true));
        assert!(Condition::NotRead.holds(false, true));
        assert!(!Condition::NotRead.holds(true, false));
        assert!(Condition::NotReplied.holds(true, false));
        assert!(!Condition::NotReplied.holds(false, true));
        assert!(Condition::ReadNotReplied.holds(true, false));
        assert!(!Condition::ReadNotReplied.holds(false, false));
        assert!(!Condition::ReadNotReplied.holds(true, true));
        assert_eq!(Condition::parse("not_read"), Some(Condition::NotRead));
        assert_eq!(Condition::parse("sometimes"), None);
    }

    #[test]
    fn drip_steps_follow_each_other_after_their_delays() {
        let s = steps();
        let start = utc("2025-01-15T09:00:00Z");
        let recheck = std::time::Duration::from_secs(5);
        // The first step goes at the start.
        assert_eq!(
            decide(&s, None, None, false, start, start, recheck),
            Due::Send(s[0].clone())
        );
        // The second is due 48 hours after the first was queued...
        let queued = utc("2025-01-15T09:00:02Z");
        assert_eq!(due_after(&s, 11, queued), Some(utc("2025-01-17T09:00:02Z")));
        // ...and, checked then, 48 hours after it was sent: a message sent late (requeued,
        // held) pushes the next step back.
        let sent = utc("2025-01-15T09:00:05Z");
        let unread = Some(Previous {
            sent_at: Some(sent),
            read: false,
        });
        let read = Some(Previous {
            sent_at: Some(sent),
            read: true,
        });
        assert_eq!(
            decide(
                &s,
                Some(11),
                unread,
                false,
                start,
                utc("2025-01-17T09:00:02Z"),
                recheck
            ),
            Due::Wait(utc("2025-01-17T09:00:05Z"))
        );
        // Not sent at all yet: looked at again shortly.
        let now = utc("2025-01-17T09:00:02Z");
        assert_eq!(
            decide(
                &s,
                Some(11),
                Some(Previous::default()),
                false,
                start,
                now,
                recheck
            ),
            Due::Wait(utc("2025-01-17T09:00:07Z"))
        );
        // Not read: the reminder goes.
        let due = utc("2025-01-17T09:00:05Z");
        assert_eq!(
            decide(&s, Some(11), unread, false, start, due, recheck),
            Due::Send(s[1].clone())
        );
        // Read: it is skipped and the last step is due 24 hours later.
        assert_eq!(
            decide(&s, Some(11), read, false, start, due, recheck),
            Due::Skip {
                step: 12,
                next_due: Some(utc("2025-01-18T09:00:05Z"))
            }
        );
        // A reply skips the last step (its previous step was skipped: no message), and
        // nothing follows it.
        assert_eq!(
            decide(&s, Some(12), None, true, start, due, recheck),
            Due::Skip {
                step: 13,
                next_due: None
            }
        );
        assert_eq!(
            decide(&s, Some(13), unread, false, start, due, recheck),
            Due::Finished
        );
        // A step that was deleted meanwhile: nothing to follow.
        assert_eq!(
            decide(&s, Some(99), unread, false, start, due, recheck),
            Due::Finished
        );
        assert_eq!(due_after(&s, 13, due), None);
    }

    #[test]
    fn a_first_step_with_a_delay_waits_after_the_start() {
        let mut s = steps();
        s[0].delay_hours = 1.5;
        let start = utc("2025-01-15T09:00:00Z");
        let recheck = std::time::Duration::from_secs(5);
        assert_eq!(
            decide(
                &s,
                None,
                None,
                false,
                start,
                utc("2025-01-15T10:00:00Z"),
                recheck
            ),
            Due::Wait(utc("2025-01-15T10:30:00Z"))
        );
        assert_eq!(
            decide(
                &s,
                None,
                None,
                false,
                start,
                utc("2025-01-15T10:30:00Z"),
                recheck
            ),
            Due::Send(s[0].clone())
        );
        // Fractions of an hour are kept (0.001 h = 3.6 s), negative delays are none.
        assert_eq!(hours(0.001), TimeDelta::milliseconds(3600));
        assert_eq!(hours(-2.0), TimeDelta::zero());
        assert_eq!(hours(f64::NAN), TimeDelta::zero());
    }

    #[test]
    fn recipient_states_follow_their_messages_forward_only() {
        use RecipientState::*;
        assert_eq!(follow(Pending, "queued"), Some(Queued));
        assert_eq!(follow(Queued, "sent"), Some(Sent));
        assert_eq!(follow(Sent, "read"), Some(Read));
        // Step 2 queued after step 1 was read: the recipient stays "read".
        assert_eq!(follow(Read, "queued"), None);
        assert_eq!(follow(Read, "delivered"), None);
        assert_eq!(follow(Replied, "read"), None);
        // A permanent failure is a failure, whatever came before; final states stay.
        assert_eq!(follow(Read, "failed"), Some(Failed));
        assert_eq!(follow(OptedOut, "read"), None);
        assert_eq!(follow(Failed, "sent"), None);
        assert_eq!(follow(Sent, "cancelled"), None);
    }

    #[test]
    fn kpis_count_every_stage_passed() {
        let k = Kpis::from_counts([
            ("pending", 3),
            ("queued", 2),
            ("sent", 10),
            ("delivered", 20),
            ("read", 30),
            ("replied", 4),
            ("failed", 5),
            ("skipped", 7),
            ("opted_out", 1),
        ]);
        assert_eq!(
            k,
            Kpis {
                recipients: 75,
                sent: 64,
                delivered: 54,
                read: 34,
                replied: 4,
                failed: 5,
                opted_out: 1,
            }
        );
    }

    #[test]
    fn auto_pause_rules_in_order() {
        let healthy = Health {
            quality: Some("green".into()),
            recent: (2, 200),
            ..Health::default()
        };
        assert_eq!(pause_reason(&healthy, 0.2, Lang::En), None);

        let mut h = healthy.clone();
        h.templates_not_approved = vec![("spring_sale".into(), "paused".into())];
        let r = pause_reason(&h, 0.2, Lang::En).unwrap();
        assert!(r.text.contains("\"spring_sale\" is paused"), "{}", r.text);
        assert_eq!(r.resume_at, None);
        assert!(pause_reason(&h, 0.2, Lang::Fr)
            .unwrap()
            .text
            .contains("Le modèle"));

        let mut h = healthy.clone();
        h.quality = Some("red".into());
        assert!(pause_reason(&h, 0.2, Lang::En)
            .unwrap()
            .text
            .contains("RED"));
        h.quality = Some("yellow".into());
        assert_eq!(pause_reason(&h, 0.2, Lang::En), None);

        let mut h = healthy.clone();
        h.error_codes = vec!["131056".into(), "131048".into()];
        assert!(pause_reason(&h, 0.2, Lang::En)
            .unwrap()
            .text
            .contains("131048"));
        h.error_codes = vec!["131049".into()];
        assert!(pause_reason(&h, 0.2, Lang::En)
            .unwrap()
            .text
            .contains("131049"));
        h.error_codes = vec!["131026".into()];
        assert_eq!(pause_reason(&h, 0.2, Lang::En), None);

        let mut h = healthy.clone();
        let until = utc("2025-01-16T08:00:00Z");
        h.held_until = Some(until);
        let r = pause_reason(&h, 0.2, Lang::En).unwrap();
        assert_eq!(r.resume_at, Some(until));
        assert!(r.text.contains("2025-01-16 08:00"), "{}", r.text);

        // The failure ratio: above the setting over the last sends, with enough of them.
        let mut h = healthy.clone();
        h.recent = (41, 200);
        let r = pause_reason(&h, 0.2, Lang::En).unwrap();
        assert!(r.text.contains("41 of the last 200"), "{}", r.text);
        h.recent = (40, 200);
        assert_eq!(pause_reason(&h, 0.2, Lang::En), None);
        h.recent = (10, 10);
        assert_eq!(
            pause_reason(&h, 0.2, Lang::En),
            None,
            "too few sends to judge"
        );
    }
}
