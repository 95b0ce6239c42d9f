//! Media rules and the upload cache (no I/O here; the calls are in `client.rs`).
//!
//! * [`MediaKind`] and [`MediaUpload::new`]: which MIME types and sizes WhatsApp accepts per
//!   kind (fact sheet, section 2), checked before an upload.
//! * [`MediaInfo`]: the answer of `GET /{media-id}` (a URL valid about five minutes, the MIME
//!   type, the sha256 and size); [`verify_sha256`] checks downloaded bytes against it.
//! * [`MediaCache`]: uploaded media ids live 30 days, so the same file (same sha256) is uploaded
//!   once per phone number and reused until shortly before it expires. Time is passed in, so
//!   tests control it.
//!
//! Sizes are decimal (1 MB = 1,000,000 bytes), the stricter reading of Meta's limits.

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// 1 MB.
const MB: u64 = 1_000_000;

/// The largest file WhatsApp carries (documents, and inbound files): 100 MB.
pub const MAX_MEDIA_BYTES: u64 = 100 * MB;

/// How long an uploaded media id stays valid at Meta.
pub const UPLOADED_MEDIA_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// The kind of a media file, which decides the accepted types and the size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    /// aac, amr, mp3, m4a, ogg (Opus): 16 MB.
    Audio,
    /// txt, pdf, xls(x), doc(x), ppt(x): 100 MB.
    Document,
    /// JPEG or PNG: 5 MB.
    Image,
    /// WebP: 100 KB static, 500 KB animated.
    Sticker,
    /// MP4 or 3GPP: 16 MB.
    Video,
}

const AUDIO_MIMES: &[&str] = &[
    "audio/aac",
    "audio/amr",
    "audio/mpeg",
    "audio/mp4",
    "audio/ogg",
];
const DOCUMENT_MIMES: &[&str] = &[
    "text/plain",
    "application/pdf",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
];
const IMAGE_MIMES: &[&str] = &["image/jpeg", "image/png"];
const STICKER_MIMES: &[&str] = &["image/webp"];
const VIDEO_MIMES: &[&str] = &["video/mp4", "video/3gpp"];

impl MediaKind {
    /// Every kind, in the order a MIME type is looked up.
    pub const ALL: [MediaKind; 5] = [
        MediaKind::Image,
        MediaKind::Document,
        MediaKind::Video,
        MediaKind::Audio,
        MediaKind::Sticker,
    ];

    /// The MIME types WhatsApp accepts for this kind.
    pub fn allowed_mime_types(self) -> &'static [&'static str] {
        match self {
            MediaKind::Audio => AUDIO_MIMES,
            MediaKind::Document => DOCUMENT_MIMES,
            MediaKind::Image => IMAGE_MIMES,
            MediaKind::Sticker => STICKER_MIMES,
            MediaKind::Video => VIDEO_MIMES,
        }
    }

    /// The size limit in bytes (animated stickers: see [`check_upload`]).
    pub fn max_bytes(self) -> u64 {
        match self {
            MediaKind::Audio | MediaKind::Video => 16 * MB,
            MediaKind::Document => 100 * MB,
            MediaKind::Image => 5 * MB,
            MediaKind::Sticker => 100_000,
        }
    }

    /// The kind a MIME type belongs to, if WhatsApp accepts it at all.
    pub fn for_mime_type(mime: &str) -> Option<MediaKind> {
        let m = normalize_mime(mime);
        MediaKind::ALL
            .into_iter()
            .find(|k| k.allowed_mime_types().contains(&m.as_str()))
    }

    /// `audio`, `document`, `image`, `sticker` or `video`.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Document => "document",
            MediaKind::Image => "image",
            MediaKind::Sticker => "sticker",
            MediaKind::Video => "video",
        }
    }
}

impl fmt::Display for MediaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `Audio/OGG; codecs=opus` → `audio/ogg`.
pub fn normalize_mime(mime: &str) -> String {
    mime.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

pub(crate) fn human_size(bytes: u64) -> String {
    if bytes >= MB {
        format!("{:.1} MB", bytes as f64 / MB as f64)
    } else {
        format!("{} KB", bytes.div_ceil(1000))
    }
}

/// A media file breaks WhatsApp's rules, or its bytes are not what Meta announced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// The file is empty.
    #[error("the {kind} file is empty")]
    Empty {
        /// The kind.
        kind: MediaKind,
    },
    /// The MIME type is not accepted for this kind.
    #[error("WhatsApp does not accept '{mime}' as {kind}; accepted types are {allowed}")]
    WrongType {
        /// The kind.
        kind: MediaKind,
        /// The type given.
        mime: String,
        /// The accepted types, comma separated.
        allowed: String,
    },
    /// The file is too large for this kind.
    #[error("the {kind} file is {actual_human} ({actual} bytes); WhatsApp allows at most {max_human} for {what}")]
    TooLarge {
        /// The kind.
        kind: MediaKind,
        /// What the limit applies to (e.g. `animated stickers`).
        what: &'static str,
        /// The size.
        actual: u64,
        /// Human-readable size.
        actual_human: String,
        /// Human-readable limit.
        max_human: String,
    },
    /// A download was larger than any WhatsApp file can be.
    #[error(
        "the download is larger than {max_human}, more than any WhatsApp file; it was stopped"
    )]
    DownloadTooLarge {
        /// Human-readable limit.
        max_human: String,
    },
    /// Meta's media info has no sha256 to check the download against.
    #[error("Meta's media info carries no sha256, so the download cannot be checked")]
    MissingHash,
    /// The bytes do not match Meta's sha256.
    #[error("the downloaded file does not match Meta's sha256 (expected {expected}, got {actual}); it was cut or changed in transit")]
    HashMismatch {
        /// Meta's value.
        expected: String,
        /// The value of the bytes received.
        actual: String,
    },
}

impl MediaError {
    /// True only for a download that came out wrong (a new download may succeed).
    pub fn is_retryable(&self) -> bool {
        matches!(self, MediaError::HashMismatch { .. })
    }
}

/// Checks a file's kind, MIME type and size before an upload.
pub fn check_upload(kind: MediaKind, mime: &str, bytes: &[u8]) -> Result<(), MediaError> {
    let m = normalize_mime(mime);
    if !kind.allowed_mime_types().contains(&m.as_str()) {
        return Err(MediaError::WrongType {
            kind,
            mime: mime.to_string(),
            allowed: kind.allowed_mime_types().join(", "),
        });
    }
    if bytes.is_empty() {
        return Err(MediaError::Empty { kind });
    }
    let (max, what) = match kind {
        MediaKind::Sticker if is_animated_webp(bytes) => (500_000, "animated stickers"),
        MediaKind::Sticker => (kind.max_bytes(), "static stickers"),
        MediaKind::Audio => (kind.max_bytes(), "audio"),
        MediaKind::Document => (kind.max_bytes(), "documents"),
        MediaKind::Image => (kind.max_bytes(), "images"),
        MediaKind::Video => (kind.max_bytes(), "videos"),
    };
    let actual = bytes.len() as u64;
    if actual > max {
        return Err(MediaError::TooLarge {
            kind,
            what,
            actual,
            actual_human: human_size(actual),
            max_human: human_size(max),
        });
    }
    Ok(())
}

/// An extended WebP (`RIFF....WEBPVP8X`) with the animation flag set.
fn is_animated_webp(bytes: &[u8]) -> bool {
    bytes.len() > 20
        && &bytes[0..4] == b"RIFF"
        && &bytes[8..12] == b"WEBP"
        && &bytes[12..16] == b"VP8X"
        && bytes[20] & 0x02 != 0
}

/// A checked file ready for `POST /{phone-number-id}/media`.
#[derive(Clone, PartialEq, Eq)]
pub struct MediaUpload {
    kind: MediaKind,
    mime_type: String,
    file_name: String,
    bytes: Bytes,
    sha256: String,
}

impl fmt::Debug for MediaUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MediaUpload")
            .field("kind", &self.kind)
            .field("mime_type", &self.mime_type)
            .field("file_name", &self.file_name)
            .field("len", &self.bytes.len())
            .field("sha256", &self.sha256)
            .finish()
    }
}

impl MediaUpload {
    /// Checks the file and computes its sha256.
    pub fn new(
        kind: MediaKind,
        mime_type: &str,
        file_name: impl Into<String>,
        bytes: impl Into<Bytes>,
    ) -> Result<Self, MediaError> {
        let bytes = bytes.into();
        check_upload(kind, mime_type, &bytes)?;
        let file_name = file_name.into();
        let file_name = if file_name.trim().is_empty() {
            format!("file.{}", kind.as_str())
        } else {
            file_name
        };
        Ok(MediaUpload {
            kind,
            mime_type: normalize_mime(mime_type),
            file_name,
            sha256: content_sha256(&bytes),
            bytes,
        })
    }

    /// The kind.
    pub fn kind(&self) -> MediaKind {
        self.kind
    }
    /// The normalized MIME type sent as `type`.
    pub fn mime_type(&self) -> &str {
        &self.mime_type
    }
    /// The file name given to the multipart part.
    pub fn file_name(&self) -> &str {
        &self.file_name
    }
    /// The bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }
    /// Lowercase hex sha256 of the bytes: the [`MediaCache`] key.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }
}

/// Lowercase hex sha256 of some bytes.
pub fn content_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Checks downloaded bytes against Meta's sha256 (hex, any case).
pub fn verify_sha256(bytes: &[u8], expected: &str) -> Result<(), MediaError> {
    let actual = content_sha256(bytes);
    if actual.eq_ignore_ascii_case(expected.trim()) {
        Ok(())
    } else {
        Err(MediaError::HashMismatch {
            expected: expected.trim().to_string(),
            actual,
        })
    }
}

/// `{"id": "..."}`: the answer to an upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadedMedia {
    /// The media id to use in messages for 30 days.
    pub id: String,
}

/// The answer to `GET /{media-id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaInfo {
    /// The media id.
    pub id: String,
    /// A temporary URL (about five minutes), downloaded with the same bearer token.
    pub url: String,
    /// The MIME type.
    #[serde(default)]
    pub mime_type: String,
    /// Hex sha256 of the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Size in bytes (Meta sends it as a string).
    #[serde(
        default,
        deserialize_with = "de_opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub file_size: Option<u64>,
    /// `whatsapp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messaging_product: Option<String>,
}

fn de_opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(match v {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// A downloaded, checked media file.
#[derive(Clone, PartialEq, Eq)]
pub struct DownloadedMedia {
    /// The bytes, matching Meta's sha256.
    pub bytes: Bytes,
    /// The MIME type from the media info.
    pub mime_type: String,
    /// The hex sha256.
    pub sha256: String,
}

impl fmt::Debug for DownloadedMedia {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DownloadedMedia")
            .field("len", &self.bytes.len())
            .field("mime_type", &self.mime_type)
            .field("sha256", &self.sha256)
            .finish()
    }
}

/// Media ids already uploaded, keyed by (phone number id, sha256 of the bytes), so the same
/// file is uploaded once and reused until shortly before Meta forgets it.
///
/// Safe to share between tasks (`&self` methods, an internal mutex held only for map access).
#[derive(Debug)]
pub struct MediaCache {
    ttl: Duration,
    entries: Mutex<HashMap<(String, String), (String, Instant)>>,
}

impl Default for MediaCache {
    fn default() -> Self {
        MediaCache::new(MediaCache::DEFAULT_TTL)
    }
}

impl MediaCache {
    /// 29 days: a day of margin before the 30-day expiry, so a message sent with a cached id
    /// is never processed after the id expired.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(29 * 24 * 3600);

    /// A cache whose entries are reused for `ttl` after the upload.
    pub fn new(ttl: Duration) -> Self {
        MediaCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), (String, Instant)>> {
        // a panic while holding the lock cannot leave the map half-written (single inserts)
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The media id uploaded for these bytes from this number, if still fresh at `now`.
    pub fn get(&self, phone_number_id: &str, sha256: &str, now: Instant) -> Option<String> {
        let mut map = self.lock();
        let key = (phone_number_id.to_string(), sha256.to_ascii_lowercase());
        match map.get(&key) {
            Some((id, at)) if now.saturating_duration_since(*at) < self.ttl => Some(id.clone()),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Records an upload made at `now`.
    pub fn insert(&self, phone_number_id: &str, sha256: &str, media_id: &str, now: Instant) {
        self.lock().insert(
            (phone_number_id.to_string(), sha256.to_ascii_lowercase()),
            (media_id.to_string(), now),
        );
    }

    /// Forgets an entry, e.g. after Meta refused the id (131053 or 100).
    pub fn forget(&self, phone_number_id: &str, sha256: &str) {
        self.lock()
            .remove(&(phone_number_id.to_string(), sha256.to_ascii_lowercase()));
    }

    /// Drops expired entries; returns how many.
    pub fn purge_expired(&self, now: Instant) -> usize {
        let mut map = self.lock();
        let before = map.len();
        let ttl = self.ttl;
        map.retain(|_, (_, at)| now.saturating_duration_since(*at) < ttl);
        before - map.len()
    }

    /// Number of entries (fresh or not yet purged).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_mime() {
        assert_eq!(
            MediaKind::for_mime_type("application/pdf"),
            Some(MediaKind::Document)
        );
        assert_eq!(
            MediaKind::for_mime_type("IMAGE/PNG"),
            Some(MediaKind::Image)
        );
        assert_eq!(
            MediaKind::for_mime_type("image/webp"),
            Some(MediaKind::Sticker)
        );
        assert_eq!(
            MediaKind::for_mime_type("audio/ogg; codecs=opus"),
            Some(MediaKind::Audio)
        );
        assert_eq!(
            MediaKind::for_mime_type("video/3gpp"),
            Some(MediaKind::Video)
        );
        assert_eq!(MediaKind::for_mime_type("image/gif"), None);
        assert_eq!(MediaKind::for_mime_type(""), None);
    }

    #[test]
    fn type_checks_per_kind() {
        assert!(check_upload(MediaKind::Document, "application/pdf", b"%PDF-1.4").is_ok());
        assert!(check_upload(
            MediaKind::Document,
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            b"PK"
        )
        .is_ok());
        let e = check_upload(MediaKind::Image, "image/gif", b"GIF89a").unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("'image/gif'") && s.contains("image/jpeg, image/png"),
            "{s}"
        );
        let e = check_upload(MediaKind::Image, "application/pdf", b"x").unwrap_err();
        assert!(matches!(e, MediaError::WrongType { .. }));
        assert!(matches!(
            check_upload(MediaKind::Document, "application/pdf", b"").unwrap_err(),
            MediaError::Empty { .. }
        ));
    }

    #[test]
    fn size_limits_per_kind() {
        let cases = [
            (MediaKind::Image, "image/jpeg", 5 * MB),
            (MediaKind::Audio, "audio/mpeg", 16 * MB),
            (MediaKind::Video, "video/mp4", 16 * MB),
            (MediaKind::Document, "application/pdf", 100 * MB),
            (MediaKind::Sticker, "image/webp", 100_000),
        ];
        for (kind, mime, max) in cases {
            let ok = vec![0u8; max as usize];
            assert!(check_upload(kind, mime, &ok).is_ok(), "{kind} at the limit");
            let big = vec![0u8; max as usize + 1];
            let e = check_upload(kind, mime, &big).unwrap_err();
            assert!(
                matches!(e, MediaError::TooLarge { actual, .. } if actual == max + 1),
                "{kind}"
            );
        }
        let e = check_upload(MediaKind::Image, "image/png", &vec![0u8; 6_000_000]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the image file is 6.0 MB (6000000 bytes); WhatsApp allows at most 5.0 MB for images"
        );
    }

    fn webp(animated: bool, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len.max(30)];
        v[0..4].copy_from_slice(b"RIFF");
        v[8..12].copy_from_slice(b"WEBP");
        v[12..16].copy_from_slice(b"VP8X");
        v[20] = if animated { 0x02 } else { 0x00 };
        v
    }

    #[test]
    fn stickers_static_and_animated() {
        assert!(check_upload(MediaKind::Sticker, "image/webp", &webp(false, 100_000)).is_ok());
        let e = check_upload(MediaKind::Sticker, "image/webp", &webp(false, 200_000)).unwrap_err();
        assert!(e.to_string().contains("static stickers"), "{e}");
        assert!(check_upload(MediaKind::Sticker, "image/webp", &webp(true, 200_000)).is_ok());
        let e = check_upload(MediaKind::Sticker, "image/webp", &webp(true, 500_001)).unwrap_err();
        assert!(e.to_string().contains("animated stickers"), "{e}");
    }

    #[test]
    fn upload_carries_its_hash_and_hides_bytes_in_debug() {
        let u = MediaUpload::new(
            MediaKind::Document,
            "Application/PDF",
            "",
            b"%PDF-1.4 x".to_vec(),
        )
        .unwrap();
        assert_eq!(u.mime_type(), "application/pdf");
        assert_eq!(u.file_name(), "file.document");
        assert_eq!(u.sha256(), content_sha256(b"%PDF-1.4 x"));
        assert!(!format!("{u:?}").contains("PDF-1.4"));
    }

    #[test]
    fn sha256_check() {
        // sha256("abc")
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(content_sha256(b"abc"), abc);
        assert!(verify_sha256(b"abc", abc).is_ok());
        assert!(verify_sha256(b"abc", &abc.to_uppercase()).is_ok());
        let e = verify_sha256(b"abd", abc).unwrap_err();
        assert!(e.is_retryable());
        assert!(e.to_string().contains(abc));
    }

    #[test]
    fn media_info_parses_meta_shape() {
        let info: MediaInfo = serde_json::from_str(
            r#"{"messaging_product":"whatsapp","url":"https://lookaside.fbsbx.com/x","mime_type":"image/jpeg",
                "sha256":"abc","file_size":"303833","id":"1037543291543636"}"#,
        )
        .unwrap();
        assert_eq!(info.file_size, Some(303_833));
        assert_eq!(info.id, "1037543291543636");
        let info: MediaInfo =
            serde_json::from_str(r#"{"url":"u","id":"1","file_size":12}"#).unwrap();
        assert_eq!(info.file_size, Some(12));
        assert_eq!(info.sha256, None);
    }

    #[test]
    fn cache_reuses_until_expiry_per_number() {
        let cache = MediaCache::default();
        let t0 = Instant::now();
        let sha = content_sha256(b"invoice");
        assert_eq!(cache.get("pn1", &sha, t0), None);
        cache.insert("pn1", &sha, "media-1", t0);
        assert_eq!(cache.get("pn1", &sha, t0).as_deref(), Some("media-1"));
        assert_eq!(
            cache.get("pn1", &sha.to_uppercase(), t0).as_deref(),
            Some("media-1")
        );
        // another number cannot use this number's media id
        assert_eq!(cache.get("pn2", &sha, t0), None);
        let day = Duration::from_secs(24 * 3600);
        assert_eq!(
            cache.get("pn1", &sha, t0 + 28 * day).as_deref(),
            Some("media-1")
        );
        // a day before Meta's 30 days, the id is no longer handed out
        assert_eq!(cache.get("pn1", &sha, t0 + 29 * day), None);
        assert!(cache.is_empty(), "expired entry removed on read");
        assert!(MediaCache::DEFAULT_TTL < UPLOADED_MEDIA_LIFETIME);
    }

    #[test]
    fn cache_forget_and_purge() {
        let cache = MediaCache::new(Duration::from_secs(10));
        let t0 = Instant::now();
        cache.insert("pn", "aa", "m1", t0);
        cache.insert("pn", "bb", "m2", t0 + Duration::from_secs(5));
        assert_eq!(cache.purge_expired(t0 + Duration::from_secs(12)), 1);
        assert_eq!(cache.len(), 1);
        cache.forget("pn", "bb");
        assert!(cache.is_empty());
    }
}
