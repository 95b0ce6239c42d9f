//! Button payloads bound to one record: what a customer's press names, and proof that we wrote it.
//!
//! A reply button's id (or a template quick-reply payload) that acts on a record is
//! `<button>:<record id>:<tag>`, e.g. `order_validate:42:9f86d081884c7d65`. The tag is the first
//! 16 hex digits (64 bits) of HMAC-SHA256 over `<button>:<record id>` with a per-database secret
//! kept in Odoo (the addon's `whatsapp.account.whatsapp_button_secret`, readable by the daemon's
//! technical user only), so a guessed or edited id, or a tag moved to another button or record,
//! is refused. The button part is what `whatsapp.button.action.button_id` matches as a prefix.
//!
//! Meta allows 256 characters in a reply button id and 128 in a quick-reply payload; a payload
//! here is at most 64 + 1 + 19 + 1 + 16 characters, since [`sign`] refuses longer button names.

use crate::odoo::{OdooClient, OdooError};
use crate::secret::Secret;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;

/// The longest button name [`sign`] accepts.
pub const MAX_BUTTON_LEN: usize = 64;
/// The hex digits of the tag.
const TAG_LEN: usize = 16;

/// The per-database secret the tags are made with.
#[derive(Clone)]
pub struct ButtonSecret(Secret);

impl fmt::Debug for ButtonSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ButtonSecret(***)")
    }
}

impl ButtonSecret {
    /// Wraps a secret; refuses one shorter than 32 characters.
    pub fn new(value: impl Into<String>) -> Result<ButtonSecret, PayloadError> {
        let value = value.into();
        if value.trim().len() < 32 {
            return Err(PayloadError::WeakSecret);
        }
        Ok(ButtonSecret(Secret::new(value)))
    }

    fn tag(&self, button: &str, record_id: i64) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.0.expose().as_bytes())
            .expect("HMAC takes a key of any length");
        mac.update(format!("{button}:{record_id}").as_bytes());
        let digest = mac.finalize().into_bytes();
        hex::encode(&digest[..TAG_LEN / 2])
    }
}

/// A payload that names a button and a record and carries a good tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound {
    pub button: String,
    pub record_id: i64,
}

/// Why a payload was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("the button name {0:?} cannot carry a record: use 1 to {MAX_BUTTON_LEN} letters, digits, '_', '-' or '.'")]
    BadButton(String),
    #[error("the record id {0} is not a record id (ids are positive)")]
    BadRecord(i64),
    #[error("the payload {0:?} does not name a record (expected <button>:<id>:<tag>)")]
    Unbound(String),
    #[error("the payload's tag does not match its button and record: it was not sent by us for this record, or was edited")]
    BadTag,
    #[error("the button secret kept in Odoo is shorter than 32 characters: delete the system parameter whatsapp_sidecar.button_secret so the addon makes a new one")]
    WeakSecret,
}

impl PayloadError {
    /// Never worth retrying: the payload or the secret is what it is.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

fn valid_button(button: &str) -> bool {
    !button.is_empty()
        && button.len() <= MAX_BUTTON_LEN
        && button
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// The payload of `button` for the record `record_id`.
pub fn sign(secret: &ButtonSecret, button: &str, record_id: i64) -> Result<String, PayloadError> {
    if !valid_button(button) {
        return Err(PayloadError::BadButton(button.to_owned()));
    }
    if record_id <= 0 {
        return Err(PayloadError::BadRecord(record_id));
    }
    Ok(format!(
        "{button}:{record_id}:{}",
        secret.tag(button, record_id)
    ))
}

/// The button and record of a payload made by [`sign`] with this secret.
pub fn verify(secret: &ButtonSecret, payload: &str) -> Result<Bound, PayloadError> {
    let unbound = || PayloadError::Unbound(payload.chars().take(80).collect());
    let mut parts = payload.rsplitn(3, ':');
    let (Some(tag), Some(id), Some(button)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(unbound());
    };
    if !valid_button(button) {
        return Err(unbound());
    }
    let record_id: i64 = id
        .parse()
        .ok()
        .filter(|n| *n > 0 && id.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(unbound)?;
    let expected = secret.tag(button, record_id);
    // Constant-time comparison of the tag.
    let same = tag.len() == expected.len()
        && tag
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !same {
        return Err(PayloadError::BadTag);
    }
    Ok(Bound {
        button: button.to_owned(),
        record_id,
    })
}

/// Reads the per-database secret from Odoo (the addon makes it on first use).
pub async fn load_secret(odoo: &OdooClient) -> Result<ButtonSecret, LoadError> {
    let value: String = odoo
        .call(
            "whatsapp.account",
            "whatsapp_button_secret",
            serde_json::json!([]),
            serde_json::json!({}),
        )
        .await?;
    Ok(ButtonSecret::new(value)?)
}

/// Why the secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read the button secret from Odoo: {0}")]
    Odoo(#[from] OdooError),
    #[error("{0}")]
    Payload(#[from] PayloadError),
}

impl LoadError {
    pub fn is_retryable(&self) -> bool {
        match self {
            LoadError::Odoo(e) => e.is_retryable(),
            LoadError::Payload(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> ButtonSecret {
        ButtonSecret::new("0123456789abcdef0123456789abcdef").unwrap()
    }

    #[test]
    fn a_signed_payload_verifies_to_its_button_and_record() {
        let p = sign(&secret(), "order_validate", 42).unwrap();
        assert!(p.starts_with("order_validate:42:"), "{p}");
        assert_eq!(p.len(), "order_validate:42:".len() + 16);
        assert_eq!(
            verify(&secret(), &p).unwrap(),
            Bound {
                button: "order_validate".into(),
                record_id: 42
            }
        );
    }

    #[test]
    fn an_edited_record_button_or_tag_is_refused() {
        let p = sign(&secret(), "order_validate", 42).unwrap();
        let tag = p.rsplit(':').next().unwrap();
        assert_eq!(
            verify(&secret(), &format!("order_validate:43:{tag}")),
            Err(PayloadError::BadTag)
        );
        assert_eq!(
            verify(&secret(), &format!("order_cancel:42:{tag}")),
            Err(PayloadError::BadTag)
        );
        let mut flipped = p.clone();
        let last = flipped.pop().unwrap();
        flipped.push(if last == '0' { '1' } else { '0' });
        assert_eq!(verify(&secret(), &flipped), Err(PayloadError::BadTag));
        let other = ButtonSecret::new("ffffffffffffffffffffffffffffffff").unwrap();
        assert_eq!(verify(&other, &p), Err(PayloadError::BadTag));
    }

    #[test]
    fn malformed_payloads_are_unbound_not_a_panic() {
        for p in [
            "",
            "order_validate",
            "order_validate:42",
            "order_validate:-4:abcd",
            "order_validate:+4:abcd",
            "order validate:4:abcd",
            ":4:abcd",
            "order_validate:4x:abcd",
        ] {
            assert!(
                matches!(verify(&secret(), p), Err(PayloadError::Unbound(_))),
                "{p:?}"
            );
        }
    }

    #[test]
    fn sign_refuses_names_and_ids_it_cannot_carry() {
        assert!(matches!(
            sign(&secret(), "a:b", 1),
            Err(PayloadError::BadButton(_))
        ));
        assert!(matches!(
            sign(&secret(), &"x".repeat(65), 1),
            Err(PayloadError::BadButton(_))
        ));
        assert_eq!(sign(&secret(), "ok", 0), Err(PayloadError::BadRecord(0)));
        assert_eq!(
            ButtonSecret::new("short").unwrap_err(),
            PayloadError::WeakSecret
        );
        assert_eq!(format!("{:?}", secret()), "ButtonSecret(***)");
    }
}
