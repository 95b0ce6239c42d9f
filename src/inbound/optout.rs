//! Opt-out keywords (pure): is an inbound text a request to stop WhatsApp messages?
//!
//! The account's `opt_out_keywords` is a comma-separated list (default
//! `STOP,ARRET,ARRÊT,UNSUBSCRIBE`). A text opts out when, once trimmed of white space and of
//! trailing or leading punctuation (`Stop.`, `STOP!`), it equals one keyword, ignoring case.
//! Accents count as written: `ARRÊT` and `ARRET` are both in the default list, so both work;
//! a keyword list without `ARRET` does not match `arret`.

use crate::lang::Lang;

/// The confirmation of an account with none configured, in English: the addon's default for
/// `whatsapp.account.opt_out_confirmation` (a translatable field: the addon gives it its
/// French translation).
pub const DEFAULT_CONFIRMATION: &str = "You will no longer receive WhatsApp messages from us.";

/// [`DEFAULT_CONFIRMATION`] in `lang`.
pub fn default_confirmation(lang: Lang) -> &'static str {
    lang.pick(
        DEFAULT_CONFIRMATION,
        "Vous ne recevrez plus de messages WhatsApp de notre part.",
    )
}

/// The confirmation to send a customer who speaks `lang`, from the account's text read in
/// that language: the text, unless it is empty, or is the English default Odoo gave because
/// nobody translated it (an account created before the language was installed), in which case
/// the daemon's own words in `lang`.
pub fn confirmation(lang: Lang, value: Option<&str>) -> String {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) if !(lang != Lang::En && v == DEFAULT_CONFIRMATION) => v.to_owned(),
        _ => default_confirmation(lang).to_owned(),
    }
}

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
    fn the_confirmation_is_the_accounts_text_else_the_daemons_words_in_the_language() {
        assert_eq!(confirmation(Lang::Fr, Some(" Au revoir ")), "Au revoir");
        assert_eq!(confirmation(Lang::En, Some("Bye")), "Bye");
        // Untranslated: Odoo falls back to the English default.
        assert_eq!(
            confirmation(Lang::Fr, Some(DEFAULT_CONFIRMATION)),
            "Vous ne recevrez plus de messages WhatsApp de notre part."
        );
        assert_eq!(
            confirmation(Lang::En, Some(DEFAULT_CONFIRMATION)),
            DEFAULT_CONFIRMATION
        );
        assert_eq!(confirmation(Lang::En, None), DEFAULT_CONFIRMATION);
        assert_eq!(
            confirmation(Lang::Fr, Some("  ")),
            default_confirmation(Lang::Fr)
        );
        // A text someone typed is theirs, even untranslated.
        assert_eq!(confirmation(Lang::Fr, Some("Bye!")), "Bye!");
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
