//! Opt-out keywords (pure): is an inbound text a request to stop WhatsApp messages?
//!
//! The account's `opt_out_keywords` is a comma-separated list (default
//! `STOP,ARRET,ARRÊT,UNSUBSCRIBE`). A text opts out when, once trimmed of white space and of
//! trailing or leading punctuation (`Stop.`, `STOP!`), it equals one keyword, ignoring case.
//! Accents count as written: `ARRÊT` and `ARRET` are both in the default list, so both work;
//! a keyword list without `ARRET` does not match `arret`.

/// The list used when the account's field is empty.
pub const DEFAULT_KEYWORDS: &str = "STOP,ARRET,ARRÊT,UNSUBSCRIBE";

/// The keywords of an account's `opt_out_keywords` value, normalised for comparison.
/// An empty or blank value gives the default list.
pub fn keywords(field: Option<&str>) -> Vec<String> {
    let field = field
        .filter(|f| !f.trim().is_empty())
        .unwrap_or(DEFAULT_KEYWORDS);
    let mut list: Vec<String> = field
        .split(',')
        .map(normalise)
        .filter(|k| !k.is_empty())
        .collect();
    list.sort();
    list.dedup();
    list
}

/// True when `text` is one of `keywords` (as returned by [`keywords`]).
pub fn is_opt_out(text: &str, keywords: &[String]) -> bool {
    let text = normalise(text);
    !text.is_empty() && keywords.contains(&text)
}

fn normalise(text: &str) -> String {
    text.trim_matches(|c: char| c.is_whitespace() || c.is_ascii_punctuation())
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_keywords_match_trimmed_any_case() {
        let k = keywords(None);
        for text in [
            "STOP",
            "stop",
            " Stop \n",
            "Stop.",
            "STOP!",
            "arrêt",
            "ARRÊT",
            "Arret",
            "unsubscribe",
        ] {
            assert!(is_opt_out(text, &k), "{text:?} should opt out");
        }
        for text in ["", "   ", "please stop", "STOPPED", "arrete", "ok"] {
            assert!(!is_opt_out(text, &k), "{text:?} should not opt out");
        }
    }

    #[test]
    fn accents_count_as_listed() {
        let k = keywords(Some("ARRÊT"));
        assert!(is_opt_out("arrêt", &k));
        assert!(!is_opt_out("arret", &k));
    }

    #[test]
    fn account_lists_replace_the_default_and_ignore_blanks() {
        let k = keywords(Some(" Basta , ,BAJA"));
        assert_eq!(k, vec!["baja".to_string(), "basta".to_string()]);
        assert!(is_opt_out("BASTA", &k));
        assert!(!is_opt_out("STOP", &k));
        assert_eq!(keywords(Some("  ")), keywords(None));
    }
}
