//! Identifiers shaped like Meta's: wamids, media ids, fbtrace ids, template ids, business-scoped
//! user ids.
//!
//! A wamid is `wamid.` + base64 of a small binary record: `1C 18 <len>` + the user's wa_id
//! digits + a marker + an upper-case hex message id + `00`. For an 11-digit number the base64
//! starts `HBgL`, for 13 digits `HBgN`, as Meta's do. The hex id is the sandbox instance's random
//! prefix followed by a counter, so ids never repeat within an instance and almost surely not
//! across instances.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};

/// Generates the ids of one sandbox instance.
#[derive(Debug)]
pub struct IdGen {
    prefix: u32,
    counter: AtomicU64,
    media_base: u64,
}

impl Default for IdGen {
    fn default() -> Self {
        IdGen::new()
    }
}

impl IdGen {
    /// A generator with a random instance prefix.
    pub fn new() -> Self {
        IdGen {
            prefix: fastrand::u32(..),
            counter: AtomicU64::new(1),
            media_base: fastrand::u64(1_000_000_000_000_000..8_000_000_000_000_000),
        }
    }

    fn next(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }

    /// A wamid for a message the business sends to `wa_id`.
    pub fn outbound_wamid(&self, wa_id: &str) -> String {
        let hex = format!("{:08X}{:010X}", self.prefix, self.next() & 0xFF_FFFF_FFFF);
        wamid(wa_id, &[0x15, 0x02, 0x00, 0x11, 0x18, 0x12], &hex)
    }

    /// A wamid for a message the user `wa_id` sends to the business.
    pub fn inbound_wamid(&self, wa_id: &str) -> String {
        let hex = format!("{:08X}{:012X}", self.prefix, self.next() & 0xFFFF_FFFF_FFFF);
        wamid(wa_id, &[0x15, 0x02, 0x00, 0x12, 0x18, 0x14], &hex)
    }

    /// A numeric media id like Meta's (16 digits).
    pub fn media_id(&self) -> String {
        (self.media_base + self.next()).to_string()
    }

    /// A random opaque key for media download URLs.
    pub fn url_key(&self) -> String {
        format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
    }

    /// A conversation id (32 hex digits).
    pub fn conversation_id(&self) -> String {
        format!("{:016x}{:016x}", fastrand::u64(..), self.next())
    }
}

fn wamid(wa_id: &str, marker: &[u8], hex: &str) -> String {
    let digits: Vec<u8> = wa_id.bytes().filter(u8::is_ascii_digit).take(255).collect();
    let mut raw = Vec::with_capacity(3 + digits.len() + marker.len() + hex.len() + 1);
    raw.extend_from_slice(&[0x1C, 0x18, digits.len() as u8]);
    raw.extend_from_slice(&digits);
    raw.extend_from_slice(marker);
    raw.extend_from_slice(hex.as_bytes());
    raw.push(0);
    format!("wamid.{}", STANDARD.encode(raw))
}

/// A random fbtrace id (23 characters, like Meta's).
pub fn fbtrace_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    (0..23)
        .map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char)
        .collect()
}

/// A stable numeric template id derived from its WABA, name and language.
pub fn template_id(waba_id: &str, name: &str, language: &str) -> String {
    let hash = Sha256::digest(format!("{waba_id}\0{name}\0{language}").as_bytes());
    let mut n = u64::from_be_bytes([
        hash[0], hash[1], hash[2], hash[3], hash[4], hash[5], hash[6], hash[7],
    ]);
    n %= 9_000_000_000_000_000;
    (n + 1_000_000_000_000_000).to_string()
}

/// A business-scoped user id (`CC.<digits>`), stable for a WABA and a wa_id. The country code is
/// the number's region (`US` when the number has none the phone library knows).
pub fn business_scoped_user_id(waba_id: &str, wa_id: &str) -> String {
    let region = phonenumber::parse(None, format!("+{wa_id}"))
        .ok()
        .and_then(|number| number.country().id())
        .map(|id| id.as_ref().to_string())
        .unwrap_or_else(|| "US".to_string());
    let hash = Sha256::digest(format!("{waba_id}\0{wa_id}").as_bytes());
    let n = u64::from_be_bytes([
        hash[0], hash[1], hash[2], hash[3], hash[4], hash[5], hash[6], hash[7],
    ]);
    format!("{region}.{n}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn wamids_look_like_metas() {
        let ids = IdGen::new();
        let w = ids.outbound_wamid("16505551234");
        assert!(w.starts_with("wamid.HBgLMTY1MDU1NTEyMzQV"), "{w}");
        let w13 = ids.outbound_wamid("4915112345678");
        assert!(w13.starts_with("wamid.HBgN"), "{w13}");
        let raw = STANDARD.decode(&w["wamid.".len()..]).unwrap();
        assert_eq!(&raw[3..14], b"16505551234");
        assert_eq!(*raw.last().unwrap(), 0);
        assert!(ids.inbound_wamid("2250700000001").starts_with("wamid.HBgN"));
    }

    #[test]
    fn wamids_are_unique() {
        let ids = IdGen::new();
        let set: HashSet<String> = (0..10_000)
            .map(|_| ids.outbound_wamid("15550001111"))
            .collect();
        assert_eq!(set.len(), 10_000);
        let media: HashSet<String> = (0..1000).map(|_| ids.media_id()).collect();
        assert_eq!(media.len(), 1000);
        assert!(media
            .iter()
            .all(|m| m.len() == 16 && m.bytes().all(|b| b.is_ascii_digit())));
    }

    #[test]
    fn other_ids() {
        assert_eq!(fbtrace_id().len(), 23);
        assert_eq!(template_id("w", "n", "en"), template_id("w", "n", "en"));
        assert_ne!(template_id("w", "n", "en"), template_id("w", "n", "fr"));
        let bsuid = business_scoped_user_id("waba", "2250700000001");
        assert!(bsuid.starts_with("CI."), "{bsuid}");
        assert_eq!(bsuid, business_scoped_user_id("waba", "2250700000001"));
        assert!(business_scoped_user_id("waba", "16505551234").starts_with("US."));
    }
}
