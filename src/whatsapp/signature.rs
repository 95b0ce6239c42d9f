//! Webhook authenticity: the `X-Hub-Signature-256` HMAC and the `hub.challenge` handshake.
//!
//! Meta signs the **raw body bytes** of every webhook POST with HMAC-SHA256 keyed by the App
//! Secret and sends `X-Hub-Signature-256: sha256=<lowercase hex>`. [`verify_signature`] checks
//! it in constant time (`hmac`'s `verify_slice`) before anything parses the body; never verify a
//! re-serialized body, Meta's bytes may contain `\uXXXX` escapes. [`sign`] produces the header
//! value (the sandbox and tests use it). [`verify_challenge`] answers the GET handshake.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::secret::Secret;

/// The header Meta puts the signature in.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";

type HmacSha256 = Hmac<Sha256>;

/// Why a webhook signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No app secret configured, so nothing can be verified.
    #[error("no app secret is configured for this account, so the webhook signature cannot be checked; set the App Secret from the Meta app's Basic settings")]
    NoSecret,
    /// The header is absent.
    #[error("the X-Hub-Signature-256 header is missing; Meta signs every webhook POST")]
    MissingHeader,
    /// The header does not start with `sha256=`.
    #[error("the X-Hub-Signature-256 header does not start with 'sha256='")]
    WrongPrefix,
    /// The part after `sha256=` is not 64 hex digits.
    #[error("the X-Hub-Signature-256 header is not 'sha256=' followed by 64 hex digits")]
    BadHex,
    /// The signature does not match the body and the app secret.
    #[error("the webhook signature does not match the body: the App Secret is wrong, or the body was changed on the way")]
    Mismatch,
}

impl SignatureError {
    /// Never: the same request will fail the same way. (A sender retries on its own.)
    pub fn is_retryable(&self) -> bool {
        false
    }
}

fn mac(app_secret: &Secret) -> Result<HmacSha256, SignatureError> {
    if app_secret.is_blank() {
        return Err(SignatureError::NoSecret);
    }
    HmacSha256::new_from_slice(app_secret.expose().as_bytes()).map_err(|_| SignatureError::NoSecret)
}

/// Checks `X-Hub-Signature-256` against the raw body, in constant time.
pub fn verify_signature(
    app_secret: &Secret,
    raw_body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let mut mac = mac(app_secret)?;
    let header = header.ok_or(SignatureError::MissingHeader)?.trim();
    let hex_part = header
        .strip_prefix("sha256=")
        .ok_or(SignatureError::WrongPrefix)?;
    if hex_part.len() != 64 {
        return Err(SignatureError::BadHex);
    }
    let expected = hex::decode(hex_part).map_err(|_| SignatureError::BadHex)?;
    mac.update(raw_body);
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// The `X-Hub-Signature-256` value for a body: `sha256=<lowercase hex>` (the sandbox and tests
/// sign with it; [`verify_signature`] refuses a blank secret, so a body signed with one never
/// verifies).
pub fn sign(app_secret: &Secret, raw_body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(app_secret.expose().as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(raw_body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Why a subscription handshake was refused (answer 403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    /// `hub.mode` is not `subscribe`.
    #[error("hub.mode is not 'subscribe'")]
    WrongMode,
    /// `hub.verify_token` does not match the configured verify token.
    #[error("hub.verify_token does not match the configured verify token")]
    WrongToken,
    /// `hub.challenge` is missing.
    #[error("hub.challenge is missing")]
    NoChallenge,
    /// No verify token configured.
    #[error("no verify token is configured, so the subscription cannot be confirmed")]
    NoVerifyToken,
}

/// The GET handshake: returns the challenge to answer (200, plain text) when `hub.mode` is
/// `subscribe` and `hub.verify_token` equals the configured token (compared in constant time).
pub fn verify_challenge<'a>(
    mode: Option<&str>,
    verify_token: Option<&str>,
    challenge: Option<&'a str>,
    expected_token: &Secret,
) -> Result<&'a str, ChallengeError> {
    if expected_token.is_blank() {
        return Err(ChallengeError::NoVerifyToken);
    }
    if mode != Some("subscribe") {
        return Err(ChallengeError::WrongMode);
    }
    let given = verify_token.unwrap_or("");
    if !constant_time_eq(given.as_bytes(), expected_token.expose().as_bytes()) {
        return Err(ChallengeError::WrongToken);
    }
    challenge.ok_or(ChallengeError::NoChallenge)
}

/// Compares two byte strings without an early exit on the first difference; lengths are not
/// secret here.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"object":"whatsapp_business_account","entry":[]}"#;

    #[test]
    fn sign_is_hmac_sha256_hex() {
        // RFC 4231 test case 2 (the sandbox signs its webhooks with this function).
        assert_eq!(
            sign(&Secret::new("Jefe"), b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    fn secret() -> Secret {
        Secret::new("app-secret-123")
    }

    #[test]
    fn valid_signature_verifies() {
        let header = sign(&secret(), BODY);
        assert!(header.starts_with("sha256="));
        assert_eq!(header.len(), 7 + 64);
        assert_eq!(verify_signature(&secret(), BODY, Some(&header)), Ok(()));
        // upper-case hex from a proxy is still the same signature
        let upper = format!("sha256={}", header[7..].to_uppercase());
        assert_eq!(verify_signature(&secret(), BODY, Some(&upper)), Ok(()));
    }

    #[test]
    fn known_vector() {
        // HMAC-SHA256(key="key", "The quick brown fox jumps over the lazy dog")
        let s = sign(
            &Secret::new("key"),
            b"The quick brown fox jumps over the lazy dog",
        );
        assert_eq!(
            s,
            "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }

    #[test]
    fn wrong_secret_is_a_mismatch() {
        let header = sign(&Secret::new("other"), BODY);
        assert_eq!(
            verify_signature(&secret(), BODY, Some(&header)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn tampered_body_is_a_mismatch() {
        let header = sign(&secret(), BODY);
        let mut tampered = BODY.to_vec();
        tampered[3] ^= 1;
        assert_eq!(
            verify_signature(&secret(), &tampered, Some(&header)),
            Err(SignatureError::Mismatch)
        );
        // a re-serialized body (escapes resolved) does not verify either
        let escaped = br#"{"a":"\u00e9"}"#;
        let header = sign(&secret(), escaped);
        assert_eq!(
            verify_signature(&secret(), "{\"a\":\"é\"}".as_bytes(), Some(&header)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn missing_header() {
        assert_eq!(
            verify_signature(&secret(), BODY, None),
            Err(SignatureError::MissingHeader)
        );
    }

    #[test]
    fn wrong_prefix() {
        let header = sign(&secret(), BODY);
        let sha1 = header.replacen("sha256=", "sha1=", 1);
        assert_eq!(
            verify_signature(&secret(), BODY, Some(&sha1)),
            Err(SignatureError::WrongPrefix)
        );
        assert_eq!(
            verify_signature(&secret(), BODY, Some(&header[7..])),
            Err(SignatureError::WrongPrefix)
        );
    }

    #[test]
    fn bad_hex() {
        let bad = format!("sha256={}", "zz".repeat(32));
        assert_eq!(
            verify_signature(&secret(), BODY, Some(&bad)),
            Err(SignatureError::BadHex)
        );
        assert_eq!(
            verify_signature(&secret(), BODY, Some("sha256=abcd")),
            Err(SignatureError::BadHex)
        );
        assert_eq!(
            verify_signature(&secret(), BODY, Some("sha256=")),
            Err(SignatureError::BadHex)
        );
    }

    #[test]
    fn blank_secret_is_refused() {
        assert_eq!(
            verify_signature(&Secret::new(" "), BODY, Some("sha256=00")),
            Err(SignatureError::NoSecret)
        );
        let signed_blank = sign(&Secret::new(""), BODY);
        assert_eq!(
            verify_signature(&Secret::new(""), BODY, Some(&signed_blank)),
            Err(SignatureError::NoSecret)
        );
    }

    #[test]
    fn errors_do_not_show_the_secret() {
        let header = sign(&Secret::new("other"), BODY);
        let e = verify_signature(&secret(), BODY, Some(&header)).unwrap_err();
        assert!(!format!("{e} {e:?}").contains("app-secret-123"));
    }

    #[test]
    fn challenge_handshake() {
        let token = Secret::new("verify-me");
        assert_eq!(
            verify_challenge(
                Some("subscribe"),
                Some("verify-me"),
                Some("1158201444"),
                &token
            ),
            Ok("1158201444")
        );
        assert_eq!(
            verify_challenge(Some("subscribe"), Some("verify-mf"), Some("1"), &token),
            Err(ChallengeError::WrongToken)
        );
        assert_eq!(
            verify_challenge(Some("subscribe"), None, Some("1"), &token),
            Err(ChallengeError::WrongToken)
        );
        assert_eq!(
            verify_challenge(Some("unsubscribe"), Some("verify-me"), Some("1"), &token),
            Err(ChallengeError::WrongMode)
        );
        assert_eq!(
            verify_challenge(Some("subscribe"), Some("verify-me"), None, &token),
            Err(ChallengeError::NoChallenge)
        );
        assert_eq!(
            verify_challenge(Some("subscribe"), Some(""), Some("1"), &Secret::new("")),
            Err(ChallengeError::NoVerifyToken)
        );
    }
}
