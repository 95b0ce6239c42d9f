//! What inbound processing works with: the items a webhook body carries, in the daemon's own
//! terms, independent of how Meta spells them (see [`super::parse`] for that).

use chrono::{DateTime, NaiveDateTime, Utc};

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

/// Formats a time the way Odoo's JSON-RPC takes and returns `Datetime` fields (UTC).
pub fn odoo_datetime(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Parses an Odoo `Datetime` value (UTC, `YYYY-MM-DD HH:MM:SS`).
pub fn parse_odoo_datetime(value: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(value.trim(), "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|naive| naive.and_utc())
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
    fn times_in_odoo_and_meta_formats() {
        let t = parse_unix_seconds("1749416383").unwrap();
        assert_eq!(odoo_datetime(t), "2025-06-08 20:59:43");
        assert_eq!(parse_odoo_datetime("2025-06-08 20:59:43"), Some(t));
        assert_eq!(parse_unix_seconds("soon"), None);
        assert_eq!(parse_odoo_datetime("2025-06-08"), None);
    }
}
