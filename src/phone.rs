//! Phone numbers: E.164 normalisation with the `phonenumber` crate (Google's libphonenumber
//! metadata).
//!
//! WhatsApp wants the recipient as an E.164 number (`+2250700000001`): country code, no spaces,
//! no leading zero. Numbers in Odoo are typed by people in every local format, so
//! [`normalize`] parses them with a default region, the country of the company that sends (a
//! number written `07 00 00 00 01` in a company in Côte d'Ivoire is `+2250700000001`), and
//! refuses what is not a valid number, with a [`PhoneError`] that says what to fix.
//!
//! `00` as international prefix (`00225...`) is understood without a default region; an
//! extension (`ext. 12`) is refused, since WhatsApp cannot reach one.

use phonenumber::country::Id;
use std::fmt;

/// A valid phone number in E.164 form (`+` and 8 to 15 digits).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct E164(String);

impl E164 {
    /// `+2250700000001`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits without the `+` (`2250700000001`): the form of a WhatsApp `wa_id` for most
    /// countries.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }

    /// The string itself.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "E164({})", self.0)
    }
}

/// Why a number could not be normalised. Each message says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error(
        "No phone number: add a WhatsApp number (or a mobile number) on the contact, or type \
         the number in international format, e.g. +2250700000001."
    )]
    Empty,
    #[error(
        "{input:?} has no country code and the company has no country to take it from: type \
         the number in international format (with + and the country code, e.g. +2250700000001), \
         or set the country of the company."
    )]
    NoRegion { input: String },
    #[error(
        "{input:?} is not a phone number ({reason}): correct it on the contact or the message, \
         in international format, e.g. +2250700000001."
    )]
    Unreadable { input: String, reason: String },
    #[error(
        "{input:?} has an extension, which WhatsApp cannot reach: use a mobile number without \
         extension."
    )]
    Extension { input: String },
    #[error(
        "{input:?} is not a valid phone number{region}: check the digits and the country code on \
         the contact (international format, e.g. +2250700000001)."
    )]
    Invalid { input: String, region: String },
}

impl PhoneError {
    /// Never: a person has to correct the number.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// A region (ISO 3166 alpha-2 code such as `FR` or `CI`) as the parser knows it; `None` for an
/// empty or unknown code.
pub fn region(code: &str) -> Option<Id> {
    let code = code.trim().to_ascii_uppercase();
    if code.is_empty() {
        return None;
    }
    code.parse().ok()
}

/// Parses a number written with its `+` and country code, by the rules of that country (its
/// trunk prefix written after the country code, as in `+33 (0)6 …`, is dropped), whatever the
/// daemon's default region.
///
/// The phonenumber crate applies the trunk prefix of the region it is given instead of the
/// number's own: with `FR`, `+225 07 00 00 00 01` (Côte d'Ivoire) and `+39 06 …` (Rome) came out
/// invalid, with `US`, `+49 151 …` came out as another, valid, number. Without a region it uses
/// the number's own, but also where the rest is then no number (`+7 811 …` lost its 8); so such
/// a number is read again as written (with a region that has no trunk prefix). Found by the
/// property tests.
pub fn parse_international(
    number: &str,
) -> Result<phonenumber::PhoneNumber, phonenumber::ParseError> {
    let own = phonenumber::parse(None, number)?;
    if own.is_valid() {
        return Ok(own);
    }
    match phonenumber::parse(Some(Id::DK), number) {
        Ok(as_written) if as_written.is_valid() => Ok(as_written),
        _ => Ok(own),
    }
}

/// Normalises `input` to E.164. `default_region` (an ISO country code, e.g. the company's) is
/// used for numbers written without country code; an unknown code counts as none.
pub fn normalize(input: &str, default_region: Option<&str>) -> Result<E164, PhoneError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(PhoneError::Empty);
    }
    let compact: String = trimmed
        .chars()
        .filter(|c| !matches!(c, ' ' | '\u{a0}' | '-' | '.' | '(' | ')' | '/' | '\t'))
        .collect();
    // `00` is the international call prefix in most of the world; `+` is what the parser
    // understands without a region.
    let candidate = match compact.strip_prefix("00") {
        Some(rest) if !compact.starts_with("000") => format!("+{rest}"),
        _ => compact,
    };
    let region = default_region.and_then(region);
    if !candidate.starts_with('+') && region.is_none() {
        return Err(PhoneError::NoRegion {
            input: trimmed.to_owned(),
        });
    }
    // With a `+` the country code decides and the default region plays no part.
    let parsed = if candidate.starts_with('+') {
        parse_international(&candidate)
    } else {
        phonenumber::parse(region, &candidate)
    };
    let parsed = parsed.map_err(|e| PhoneError::Unreadable {
        input: trimmed.to_owned(),
        reason: e.to_string(),
    })?;
    if parsed.extension().is_some() {
        return Err(PhoneError::Extension {
            input: trimmed.to_owned(),
        });
    }
    if !parsed.is_valid() {
        let region = match parsed.country().id() {
            Some(id) => format!(" for {}", id.as_ref()),
            None => format!(" with country code +{}", parsed.code().value()),
        };
        return Err(PhoneError::Invalid {
            input: trimmed.to_owned(),
            region,
        });
    }
    let e164 = parsed.format().mode(phonenumber::Mode::E164).to_string();
    Ok(E164(e164))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn international_numbers_need_no_region() {
        let n = normalize("+225 07 00 00 00 01", None).unwrap();
        assert_eq!(n.as_str(), "+2250700000001");
        assert_eq!(n.digits(), "2250700000001");
        assert_eq!(
            normalize("+49 (151) 123-45678", Some("FR"))
                .unwrap()
                .as_str(),
            "+4915112345678"
        );
    }

    #[test]
    fn an_international_number_reads_the_same_whatever_the_default_region() {
        for number in [
            "+2250700000001",
            "+390669880000",
            "+393471234567",
            "+78110000000",
            "+74951234567",
            "+4915112345678",
            "+442079460000",
            "+919876543210",
            "+5511987654321",
            "+81312345678",
            "+33612345678",
            "+12025550123",
            "+2348031234567",
            "+221771234567",
            "+33 (0)6 12 34 56 79",
        ] {
            for region in [
                None,
                Some("FR"),
                Some("US"),
                Some("DE"),
                Some("RU"),
                Some("CI"),
            ] {
                let expected = if number.contains("(0)") {
                    "+33612345679".to_owned()
                } else {
                    number.to_owned()
                };
                assert_eq!(
                    normalize(number, region).map(E164::into_string),
                    Ok(expected),
                    "{number} with the default region {region:?}"
                );
            }
        }
    }

    #[test]
    fn double_zero_prefix_is_international() {
        assert_eq!(
            normalize("0049 151 12345678", None).unwrap().as_str(),
            "+4915112345678"
        );
    }

    #[test]
    fn local_numbers_take_the_default_region() {
        assert_eq!(
            normalize("06 12 34 56 78", Some("FR")).unwrap().as_str(),
            "+33612345678"
        );
        assert_eq!(
            normalize("07.00.00.00.01", Some("ci")).unwrap().as_str(),
            "+2250700000001"
        );
        assert_eq!(
            normalize("(650) 253-0000", Some("US")).unwrap().as_str(),
            "+16502530000"
        );
    }

    #[test]
    fn local_number_without_region_says_how_to_fix() {
        let err = normalize("06 12 34 56 78", None).unwrap_err();
        assert!(matches!(err, PhoneError::NoRegion { .. }));
        assert!(err.to_string().contains("country of the company"));
        // An unknown region code is no region at all.
        assert!(matches!(
            normalize("0612345678", Some("XX")),
            Err(PhoneError::NoRegion { .. })
        ));
    }

    #[test]
    fn empty_and_garbage_are_refused() {
        assert_eq!(normalize("  ", Some("FR")), Err(PhoneError::Empty));
        let err = normalize("call me", Some("FR")).unwrap_err();
        assert!(matches!(err, PhoneError::Unreadable { .. }), "{err:?}");
        assert!(err.to_string().contains("\"call me\""));
    }

    #[test]
    fn invalid_numbers_name_the_country() {
        let err = normalize("+33 6 12", None).unwrap_err();
        assert!(!err.is_retryable());
        let text = err.to_string();
        assert!(
            text.contains("\"+33 6 12\" is not a valid phone number for FR"),
            "{text}"
        );
        // +1 is shared by several countries: the message names the code.
        let err = normalize("+1 555 555 1234", None).unwrap_err();
        assert!(err.to_string().contains("with country code +1"), "{err}");
        let err = normalize("+999 1234567", None).unwrap_err();
        assert!(err.to_string().contains("invalid country code"), "{err}");
    }

    #[test]
    fn extensions_are_refused() {
        let err = normalize("+1 650 253 0000 ext. 12", None).unwrap_err();
        assert!(matches!(err, PhoneError::Extension { .. }), "{err:?}");
    }

    #[test]
    fn region_codes_are_case_insensitive() {
        assert_eq!(region("fr"), Some(Id::FR));
        assert_eq!(region(""), None);
        assert_eq!(region("ZZZ"), None);
    }
}
