//! Media received with inbound messages, fetched into `ir.attachment`s (pure parts).
//!
//! Creating the received message never waits for its file: the message is stored with Meta's
//! `media_id` first, and a separate pass ([`super::driver::fetch_media`]) downloads the files of
//! received messages that have a `media_id` and no `media_attachment_id` yet, stores each as an
//! attachment of its message and links it. A failed download is counted in the message's
//! `attempt_count` with the reason in `error_details`, and tried again on later passes until
//! `max_attempts`, or until Meta has forgotten the file (7 days after it was received).

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};
use std::time::Duration as StdDuration;

/// Meta keeps received media for 7 days.
pub const MEDIA_LIFETIME_DAYS: i64 = 7;

/// Settings of the media pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaConfig {
    /// Messages whose file is fetched in one pass.
    pub batch_size: usize,
    /// Downloads tried per message before giving up.
    pub max_attempts: u32,
    /// How often failed downloads are tried again.
    pub retry_interval: StdDuration,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            batch_size: 10,
            max_attempts: 5,
            retry_interval: StdDuration::from_secs(60),
        }
    }
}

/// The oldest `received_at` whose media Meta still has.
pub fn oldest_fetchable(now: DateTime<Utc>) -> DateTime<Utc> {
    now - Duration::days(MEDIA_LIFETIME_DAYS)
}

/// A file name for an attachment: the sender's, else one made from the message id and type.
pub fn file_name(filename: Option<&str>, message_id: i64, mime_type: &str) -> String {
    if let Some(name) = filename.map(str::trim).filter(|n| !n.is_empty()) {
        // No path separators from outside into a name shown and downloaded in Odoo.
        return name.replace(['/', '\\'], "_");
    }
    format!("whatsapp-{message_id}.{}", extension(mime_type))
}

/// The usual extension of a MIME type WhatsApp carries.
pub fn extension(mime_type: &str) -> &'static str {
    let base = mime_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match base.as_str() {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "video/mp4" => "mp4",
        "video/3gpp" => "3gp",
        "audio/ogg" => "ogg",
        "audio/mpeg" => "mp3",
        "audio/aac" => "aac",
        "audio/amr" => "amr",
        "audio/mp4" => "m4a",
        "application/pdf" => "pdf",
        "text/plain" => "txt",
        "application/msword" => "doc",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.ms-excel" => "xls",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        "application/vnd.ms-powerpoint" => "ppt",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation" => "pptx",
        _ => "bin",
    }
}

/// The values of the `ir.attachment` holding a received file.
pub fn attachment_values(
    message_id: i64,
    name: &str,
    mime_type: &str,
    bytes: &[u8],
) -> Map<String, Value> {
    let mut v = Map::new();
    v.insert("name".into(), json!(name));
    v.insert(
        "datas".into(),
        json!(base64::engine::general_purpose::STANDARD.encode(bytes)),
    );
    v.insert("mimetype".into(), json!(mime_type));
    v.insert("res_model".into(), json!("whatsapp.message"));
    v.insert("res_id".into(), json!(message_id));
    v
}

/// What to write on a message whose download failed: one more attempt, and why. When the error
/// will not go away by itself, the attempts are used up at once.
pub fn failure_values(
    attempts_before: u32,
    max_attempts: u32,
    retryable: bool,
    reason: &str,
) -> Map<String, Value> {
    let attempts = if retryable {
        attempts_before.saturating_add(1)
    } else {
        max_attempts.max(attempts_before.saturating_add(1))
    };
    let mut v = Map::new();
    v.insert("attempt_count".into(), json!(attempts));
    let next = if attempts >= max_attempts {
        "the daemon will not try again"
    } else {
        "the daemon tries again later"
    };
    v.insert(
        "error_details".into(),
        json!(format!(
            "The file could not be downloaded from WhatsApp ({reason}); {next}."
        )),
    );
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn names_keep_the_senders_and_invent_the_rest() {
        assert_eq!(
            file_name(Some("PO 7.pdf"), 3, "application/pdf"),
            "PO 7.pdf"
        );
        assert_eq!(
            file_name(Some("../../etc/x"), 3, "text/plain"),
            ".._.._etc_x"
        );
        assert_eq!(file_name(None, 3, "image/jpeg"), "whatsapp-3.jpg");
        assert_eq!(
            file_name(Some("  "), 3, "audio/ogg; codecs=opus"),
            "whatsapp-3.ogg"
        );
        assert_eq!(
            file_name(None, 3, "application/x-unknown"),
            "whatsapp-3.bin"
        );
    }

    #[test]
    fn attachments_carry_base64_and_their_message() {
        let v = attachment_values(9, "a.txt", "text/plain", b"hi");
        assert_eq!(v["datas"], "aGk=");
        assert_eq!(v["res_model"], "whatsapp.message");
        assert_eq!(v["res_id"], 9);
        assert_eq!(v["mimetype"], "text/plain");
    }

    #[test]
    fn failures_count_attempts_and_permanent_ones_use_them_up() {
        let v = failure_values(1, 5, true, "timeout");
        assert_eq!(v["attempt_count"], 2);
        assert!(v["error_details"].as_str().unwrap().contains("tries again"));
        let v = failure_values(1, 5, false, "media id unknown");
        assert_eq!(v["attempt_count"], 5);
        assert!(v["error_details"]
            .as_str()
            .unwrap()
            .contains("will not try again"));
    }

    #[test]
    fn media_older_than_seven_days_is_gone() {
        let now = Utc.with_ymd_and_hms(2026, 3, 8, 12, 0, 0).unwrap();
        assert_eq!(
            oldest_fetchable(now),
            Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
        );
    }
}
