//! Who wrote: conversation window math and partner matching by phone number (pure).
//!
//! - The 24-hour customer service window: every inbound message sets `last_inbound_at` (never
//!   backwards: an older message processed late does not shorten the window) and
//!   `window_expires_at = last_inbound_at + 24 h` ([`refresh_window`]).
//! - A new conversation is matched to a partner by number. Meta's `wa_id` is digits with the
//!   country code and may differ from the number held in Odoo (Mexico's legacy `521…`, Brazil's
//!   missing ninth digit), so [`NumberKeys`] lists every form the partner may hold: E.164 (with
//!   and without `+`), international and national formatting, national digits, and those of the
//!   other Mexican or Brazilian form. Odoo is searched for these exact strings on
//!   `whatsapp_number_e164`, `mobile` and `phone`; when none holds one, `mobile` and `phone`
//!   are searched again with a pattern of the national digits in order, whatever the spacing
//!   or punctuation between them (`06.12.34.56.78`, `+33 6 12345678`, `+33 (0)6 ...`). Each hit
//!   is then re-normalised with the phonenumber crate and kept only if it is the same number
//!   ([`choose_partner`]).

use chrono::{DateTime, Duration, Utc};
use phonenumber::{country, Mode, PhoneNumber};

/// Length of the customer service window an inbound message opens.
pub const WINDOW_HOURS: i64 = 24;

/// The conversation's new `(last_inbound_at, window_expires_at)`, or `None` when `inbound_at`
/// is not later than the recorded last inbound message (nothing to write).
pub fn refresh_window(
    last_inbound_at: Option<DateTime<Utc>>,
    inbound_at: DateTime<Utc>,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    match last_inbound_at {
        Some(last) if last >= inbound_at => None,
        _ => Some((inbound_at, inbound_at + Duration::hours(WINDOW_HOURS))),
    }
}

/// True while free-form messages may be sent: `now` is before the window's end.
pub fn window_open(window_expires_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    window_expires_at.is_some_and(|end| now < end)
}

/// The forms of one WhatsApp user's number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberKeys {
    /// The E.164 forms (`+…`) this user's number may have: the wa_id's own, and the other
    /// Mexican/Brazilian form when there is one.
    pub e164: Vec<String>,
    /// Every string to search Odoo for (E.164 forms, their digits, formatted forms).
    pub search: Vec<String>,
    /// `=ilike` patterns of the national digits with anything between them
    /// (`%6%1%2%3%4%5%6%7%8%`), for numbers typed in another format.
    pub patterns: Vec<String>,
    /// The country of the number, used to read national numbers found on partners.
    region: Option<country::Id>,
}

impl NumberKeys {
    /// The keys of a wa_id (digits with the country code). `None` when it is not a number.
    pub fn from_wa_id(wa_id: &str) -> Option<Self> {
        let digits: String = wa_id.chars().filter(|c| c.is_ascii_digit()).collect();
        if digits.len() < 7 || digits.len() > 15 {
            return None;
        }
        let mut forms = vec![digits.clone()];
        forms.extend(alternative_form(&digits));
        let mut e164 = Vec::new();
        let mut search = Vec::new();
        let mut patterns = Vec::new();
        let mut region = None;
        for form in &forms {
            let plus = format!("+{form}");
            push_unique(&mut e164, plus.clone());
            push_unique(&mut search, plus.clone());
            push_unique(&mut search, form.clone());
            if let Ok(number) = crate::phone::parse_international(&plus) {
                region = region.or(number.country().id());
                for mode in [Mode::International, Mode::National] {
                    push_unique(&mut search, number.format().mode(mode).to_string());
                }
                let national: String = number
                    .format()
                    .mode(Mode::National)
                    .to_string()
                    .chars()
                    .filter(char::is_ascii_digit)
                    .collect();
                push_unique(&mut search, national);
                let code = number.code().value().to_string();
                if let Some(significant) = form.strip_prefix(code.as_str()) {
                    // Too few digits would find many unrelated numbers.
                    if significant.len() >= 6 {
                        let mut pattern = String::from("%");
                        for digit in significant.chars() {
                            pattern.push(digit);
                            pattern.push('%');
                        }
                        push_unique(&mut patterns, pattern);
                    }
                }
            }
        }
        Some(NumberKeys {
            e164,
            search,
            patterns,
            region,
        })
    }

    /// True when `number`, as a partner holds it, is this user's number.
    pub fn matches(&self, number: &str) -> bool {
        normalise(number, self.region).is_some_and(|n| self.e164.contains(&n))
    }
}

/// A partner found by the number search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerNumbers {
    pub id: i64,
    pub whatsapp_number_e164: Option<String>,
    pub mobile: Option<String>,
    pub phone: Option<String>,
}

/// The partner to link a conversation to: one whose WhatsApp number is the user's, else whose
/// mobile is, else whose phone is; among equals, the oldest (lowest id).
pub fn choose_partner(keys: &NumberKeys, candidates: &[PartnerNumbers]) -> Option<i64> {
    let fields: [fn(&PartnerNumbers) -> Option<&str>; 3] = [
        |p| p.whatsapp_number_e164.as_deref(),
        |p| p.mobile.as_deref(),
        |p| p.phone.as_deref(),
    ];
    fields.iter().find_map(|field| {
        candidates
            .iter()
            .filter(|p| field(p).is_some_and(|n| keys.matches(n)))
            .map(|p| p.id)
            .min()
    })
}

/// E.164 of a number as typed on a partner (international, or national in `region`).
fn normalise(number: &str, region: Option<country::Id>) -> Option<String> {
    let number = number.trim();
    let parsed: PhoneNumber = if let Some(rest) = number.strip_prefix("00") {
        crate::phone::parse_international(&format!("+{rest}")).ok()?
    } else if number.starts_with('+') {
        crate::phone::parse_international(number).ok()?
    } else {
        phonenumber::parse(region, number)
            .or_else(|_| crate::phone::parse_international(&format!("+{number}")))
            .ok()?
    };
    Some(parsed.format().mode(Mode::E164).to_string())
}

/// The other form a Mexican or Brazilian mobile number may take.
fn alternative_form(digits: &str) -> Option<String> {
    // Mexico: wa_ids of mobiles often keep the legacy "1" after the country code.
    if let Some(rest) = digits.strip_prefix("521") {
        if rest.len() == 10 {
            return Some(format!("52{rest}"));
        }
    }
    if let Some(rest) = digits.strip_prefix("52") {
        if rest.len() == 10 {
            return Some(format!("521{rest}"));
        }
    }
    // Brazil: accounts older than the ninth digit have wa_ids without it.
    if let Some(rest) = digits.strip_prefix("55") {
        let (area, subscriber) = rest.split_at(rest.len().min(2));
        if subscriber.len() == 8 && subscriber.starts_with(['6', '7', '8', '9']) {
            return Some(format!("55{area}9{subscriber}"));
        }
        if subscriber.len() == 9 && subscriber.starts_with('9') {
            return Some(format!("55{area}{}", &subscriber[1..]));
        }
    }
    None
}

fn push_unique(list: &mut Vec<String>, value: String) {
    if !value.is_empty() && !list.contains(&value) {
        list.push(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, h, m, 0).single().unwrap()
    }

    #[test]
    fn a_first_message_opens_a_24_hour_window() {
        let (last, end) = refresh_window(None, at(10, 0)).unwrap();
        assert_eq!(last, at(10, 0));
        assert_eq!(end, at(10, 0) + Duration::hours(24));
        assert!(window_open(Some(end), at(23, 59)));
        assert!(!window_open(Some(end), end));
        assert!(!window_open(None, at(10, 0)));
    }

    #[test]
    fn later_messages_extend_it_older_ones_never_shorten_it() {
        let (_, end) = refresh_window(Some(at(10, 0)), at(12, 30)).unwrap();
        assert_eq!(end, at(12, 30) + Duration::hours(24));
        assert_eq!(refresh_window(Some(at(12, 30)), at(10, 0)), None);
        assert_eq!(refresh_window(Some(at(12, 30)), at(12, 30)), None);
    }

    #[test]
    fn keys_cover_the_forms_a_partner_may_hold() {
        let keys = NumberKeys::from_wa_id("33612345678").unwrap();
        assert_eq!(keys.e164, vec!["+33612345678".to_string()]);
        for form in [
            "+33612345678",
            "33612345678",
            "+33 6 12 34 56 78",
            "06 12 34 56 78",
            "0612345678",
        ] {
            assert!(
                keys.search.contains(&form.to_string()),
                "{form} in {:?}",
                keys.search
            );
        }
        for held in [
            "+33 6 12 34 56 78",
            "06.12.34.56.78",
            "0033612345678",
            "+33612345678",
        ] {
            assert!(keys.matches(held), "{held}");
        }
        assert!(!keys.matches("+33612345679"));
        assert!(!keys.matches("not a number"));
        assert_eq!(keys.patterns, vec!["%6%1%2%3%4%5%6%7%8%".to_string()]);
        assert_eq!(NumberKeys::from_wa_id("12"), None);
        assert_eq!(NumberKeys::from_wa_id("US.13491208655302741918"), None);
    }

    #[test]
    fn mexican_and_brazilian_wa_ids_match_their_e164_form() {
        let mx = NumberKeys::from_wa_id("5215512345678").unwrap();
        assert!(mx.e164.contains(&"+525512345678".to_string()));
        assert!(mx.matches("+52 55 1234 5678"));
        let br = NumberKeys::from_wa_id("551187654321").unwrap();
        assert!(br.e164.contains(&"+5511987654321".to_string()));
        assert!(br.matches("+55 11 98765-4321"));
        let br9 = NumberKeys::from_wa_id("5511987654321").unwrap();
        assert!(br9.e164.contains(&"+551187654321".to_string()));
    }

    #[test]
    fn partner_choice_prefers_whatsapp_number_then_mobile_then_phone() {
        let keys = NumberKeys::from_wa_id("2250700000001").unwrap();
        let p =
            |id, e164: Option<&str>, mobile: Option<&str>, phone: Option<&str>| PartnerNumbers {
                id,
                whatsapp_number_e164: e164.map(Into::into),
                mobile: mobile.map(Into::into),
                phone: phone.map(Into::into),
            };
        let candidates = vec![
            p(3, None, None, Some("+225 07 00 00 00 01")),
            p(5, None, Some("+2250700000001"), None),
            p(4, None, Some("+225 07 00 00 00 01"), None),
            p(9, Some("+2250700000001"), None, None),
            p(1, Some("+2250700000002"), None, None),
        ];
        assert_eq!(choose_partner(&keys, &candidates), Some(9));
        assert_eq!(choose_partner(&keys, &candidates[..3]), Some(4));
        assert_eq!(choose_partner(&keys, &candidates[..1]), Some(3));
        assert_eq!(choose_partner(&keys, &candidates[4..]), None);
    }
}
