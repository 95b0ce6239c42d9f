//! What inbound processing works with: the items a webhook body carries, in the daemon's own
//! terms, independent of how Meta spells them (see [`super::parse`] for that).

use chrono::{DateTime, Utc};

/// `whatsapp.message.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageState {
    Queued,
    Sending,
    Sent,
    Delivered,
    Read,
    Failed,
    Cancelled,
    Received,
}

impl MessageState {
    /// The selection value in Odoo.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Queued => "queued",
            MessageState::Sending => "sending",
            MessageState::Sent => "sent",
            MessageState::Delivered => "delivered",
            MessageState::Read => "read",
            MessageState::Failed => "failed",
            MessageState::Cancelled => "cancelled",
            MessageState::Received => "received",
        }
    }

    /// Parses Odoo's selection value.
    pub fn from_odoo(value: &str) -> Option<Self> {
        Some(match value {
            "queued" => MessageState::Queued,
            "sending" => MessageState::Sending,
            "sent" => MessageState::Sent,
            "delivered" => MessageState::Delivered,
            "read" => MessageState::Read,
            "failed" => MessageState::Failed,
            "cancelled" => MessageState::Cancelled,
            "received" => MessageState::Received,
            _ => return None,
        })
    }

    /// Position on the forward-only path of an outbound message: a status moves a message only
    /// to a higher rank. `failed` is the highest, so it is final.
    pub fn rank(self) -> u8 {
        match self {
            MessageState::Queued | MessageState::Cancelled | MessageState::Received => 0,
            MessageState::Sending => 1,
            MessageState::Sent => 2,
            MessageState::Delivered => 3,
            MessageState::Read => 4,
            MessageState::Failed => 5,
        }
    }
}

/// The `status` of a status webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusKind {
    Sent,
    Delivered,
    Read,
    Failed,
}

impl StatusKind {
    /// Meta's value; `None` for statuses the daemon does not track (e.g. `deleted`).
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "sent" => StatusKind::Sent,
            "delivered" => StatusKind::Delivered,
            "read" => StatusKind::Read,
            "failed" => StatusKind::Failed,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        self.state().as_str()
    }

    /// The message state this status proves.
    pub fn state(self) -> MessageState {
        match self {
            StatusKind::Sent => MessageState::Sent,
            StatusKind::Delivered => MessageState::Delivered,
            StatusKind::Read => MessageState::Read,
            StatusKind::Failed => MessageState::Failed,
        }
    }

    pub fn is_failed(self) -> bool {
        self == StatusKind::Failed
    }
}

/// One delivery status about an outbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusUpdate {
    pub wamid: String,
    pub status: StatusKind,
    pub timestamp: DateTime<Utc>,
    /// The recipient's wa_id.
    pub recipient_id: Option<String>,
    /// The recipient's business-scoped user id.
    pub recipient_user_id: Option<String>,
    /// `biz_opaque_callback_data`, as the outbox set it.
    pub callback_data: Option<String>,
    pub pricing_category: Option<String>,
    /// The first error of a `failed` status.
    pub error: Option<StatusError>,
}

/// Why Meta could not deliver a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusError {
    pub code: i64,
    pub title: Option<String>,
    pub details: Option<String>,
    /// What it means and what to do, in plain words (for `error_help`).
    pub help: String,
}

/// One thing a webhook body asks the daemon to record.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A delivery status of an outbound message.
    Status(StatusUpdate),
    /// A message a user sent.
    Message(Box<Inbound>),
    /// A template's status or quality changed.
    Template(TemplateChange),
    /// A business number's or account's state changed.
    Account(AccountChange),
    /// Something recorded nowhere but worth a log line (system errors, unknown fields, items
    /// Meta sent in a shape that could not be read).
    Note(String),
}

/// An inbound message, ready to become a `whatsapp.message` (direction `in`, state `received`).
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    /// The business number it was sent to (routes it to an account).
    pub phone_number_id: String,
    pub wamid: String,
    /// The sender's wa_id (digits); absent for some username-only users.
    pub wa_id: Option<String>,
    /// The sender's business-scoped user id.
    pub user_id: Option<String>,
    /// The sender's WhatsApp profile name.
    pub profile_name: Option<String>,
    pub timestamp: DateTime<Utc>,
    /// A `whatsapp.message.message_type` selection value.
    pub message_type: &'static str,
    /// Text, caption, chosen title or a readable summary.
    pub body: Option<String>,
    pub media: Option<MediaRef>,
    /// The wamid quoted or reacted to.
    pub reply_to: Option<String>,
    /// Id of the reply button, list row or template quick-reply payload.
    pub button_payload: Option<String>,
    pub button_title: Option<String>,
    /// The text a person typed (text messages only): checked against the opt-out keywords.
    pub typed_text: Option<String>,
    /// The message as Meta sent it (JSON), kept in `meta_response_json`.
    pub raw: String,
}

/// Media received with a message: fetched later with Meta's media endpoint (ids live 7 days).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRef {
    pub id: String,
    pub mime_type: Option<String>,
    pub filename: Option<String>,
    pub sha256: Option<String>,
}

/// A `message_template_status_update` or `message_template_quality_update`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateChange {
    pub waba_id: String,
    pub meta_template_id: Option<String>,
    pub name: Option<String>,
    pub language: Option<String>,
    /// `whatsapp.template.status` selection value to write.
    pub status: Option<&'static str>,
    /// Meta's reason for a rejection.
    pub rejected_reason: Option<String>,
    /// `whatsapp.template.quality_rating` selection value to write.
    pub quality: Option<&'static str>,
    /// What Meta said, for the log.
    pub event: String,
}

/// A `phone_number_quality_update`, `account_update` or `business_capability_update`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountChange {
    pub waba_id: String,
    /// Digits of the business number concerned, when the update names one.
    pub phone_number: Option<String>,
    /// `whatsapp.account.quality_rating` selection value to write.
    pub quality_rating: Option<&'static str>,
    /// `messaging_limit` to write (e.g. `TIER_2K`).
    pub messaging_limit: Option<String>,
    /// A problem Meta reports about the account (ban, restriction, violation): written to
    /// `last_check_message` with `last_check_ok = false`.
    pub problem: Option<String>,
    /// Ask the daemon's settings check to run (it reads the current quality and limits).
    pub request_check: bool,
    /// What Meta said, for the log.
    pub event: String,
}

/// Parses Meta's `timestamp`: a string (sometimes a number) of Unix seconds.
pub fn parse_unix_seconds(value: &str) -> Option<DateTime<Utc>> {
    let secs: i64 = value.trim().parse().ok()?;
    DateTime::from_timestamp(secs, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_rank_forward() {
        for s in [
            MessageState::Queued,
            MessageState::Sending,
            MessageState::Sent,
            MessageState::Delivered,
            MessageState::Read,
            MessageState::Failed,
            MessageState::Cancelled,
            MessageState::Received,
        ] {
            assert_eq!(MessageState::from_odoo(s.as_str()), Some(s));
        }
        assert_eq!(MessageState::from_odoo("bogus"), None);
        let path = [
            MessageState::Sending,
            MessageState::Sent,
            MessageState::Delivered,
            MessageState::Read,
            MessageState::Failed,
        ];
        assert!(path.windows(2).all(|w| w[0].rank() < w[1].rank()));
        assert!(MessageState::Queued.rank() < MessageState::Sending.rank());
    }

    #[test]
    fn status_kinds() {
        assert_eq!(StatusKind::parse("read"), Some(StatusKind::Read));
        assert_eq!(StatusKind::parse("deleted"), None);
        assert_eq!(StatusKind::Failed.state(), MessageState::Failed);
    }

    #[test]
    fn meta_timestamps() {
        let t = parse_unix_seconds(" 1749416383").unwrap();
        assert_eq!(t.to_rfc3339(), "2025-06-08T20:59:43+00:00");
        assert_eq!(parse_unix_seconds("soon"), None);
    }
}
