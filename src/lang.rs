//! The languages the daemon writes in.
//!
//! Texts for Odoo users (chatter notes, `error_help`, notifications) are written in the language
//! of the user they are for; texts for customers in the customer's (`res.partner.lang`), read from
//! translatable fields in Odoo so that they stay editable there. The daemon's own words exist in
//! English and French, the addon's two languages; any other language gets English.

/// A language the daemon has its own words in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lang {
    #[default]
    En,
    Fr,
}

impl Lang {
    /// The language of an Odoo language code (`res.partner.lang`, `res.users.lang`): `fr_FR`,
    /// `fr_BE`, `fr` and the like are French, anything else (or nothing) is English.
    pub fn from_odoo(code: Option<&str>) -> Lang {
        match code.map(str::trim) {
            Some(c) if c == "fr" || c.starts_with("fr_") => Lang::Fr,
            _ => Lang::En,
        }
    }

    /// The first of `codes` that is set, as a language (e.g. the user's, else the company's).
    pub fn first_of<'a>(codes: impl IntoIterator<Item = Option<&'a str>>) -> Lang {
        Lang::from_odoo(
            codes
                .into_iter()
                .flatten()
                .map(str::trim)
                .find(|c| !c.is_empty()),
        )
    }

    /// `en` or `fr`, whichever is this language's.
    pub fn pick<T>(self, en: T, fr: T) -> T {
        match self {
            Lang::En => en,
            Lang::Fr => fr,
        }
    }

    /// The Odoo code to put in a `lang` context for this language.
    pub fn odoo_code(self) -> &'static str {
        self.pick("en_US", "fr_FR")
    }
}

#[cfg(test)]
mod tests {
    use super::Lang;

    #[test]
    fn french_codes_are_french_and_the_rest_english() {
        assert_eq!(Lang::from_odoo(Some("fr_FR")), Lang::Fr);
        assert_eq!(Lang::from_odoo(Some("fr_BE")), Lang::Fr);
        assert_eq!(Lang::from_odoo(Some("fr")), Lang::Fr);
        assert_eq!(Lang::from_odoo(Some("en_US")), Lang::En);
        assert_eq!(Lang::from_odoo(Some("fy_NL")), Lang::En);
        assert_eq!(Lang::from_odoo(None), Lang::En);
    }

    #[test]
    fn the_first_language_set_wins() {
        assert_eq!(Lang::first_of([None, Some(""), Some("fr_CA")]), Lang::Fr);
        assert_eq!(Lang::first_of([Some("en_GB"), Some("fr_FR")]), Lang::En);
        assert_eq!(Lang::first_of([None, None]), Lang::En);
        assert_eq!(Lang::Fr.pick("yes", "oui"), "oui");
        assert_eq!(Lang::Fr.odoo_code(), "fr_FR");
    }
}
