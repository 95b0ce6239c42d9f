//! Who of the audience becomes a recipient, and why the others are skipped.
//!
//! The audience is every contact matching the campaign's filter and tags. A contact becomes a
//! `pending` recipient when it opted in, did not opt out, and has a number (WhatsApp number,
//! else mobile, else phone, as the outbox reads it) that normalises to E.164 with the company's
//! country as default region; each number once per campaign (the first contact with it wins).
//! The others are recorded as `skipped` with the reason, in the campaign owner's language, so
//! the list shows who was left out and why.

use crate::lang::Lang;
use crate::phone;
use std::collections::HashMap;

/// A contact of the audience, as read from `res.partner`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Contact {
    pub id: i64,
    pub name: String,
    pub opt_in: bool,
    pub opted_out: bool,
    pub number_e164: Option<String>,
    pub mobile: Option<String>,
    pub phone: Option<String>,
}

impl Contact {
    /// The fields read.
    pub const FIELDS: &'static [&'static str] = &[
        "name",
        "whatsapp_opt_in",
        "whatsapp_opt_out_date",
        "whatsapp_number_e164",
        "mobile",
        "phone",
    ];

    /// The number messages go to, as typed.
    pub fn number(&self) -> Option<&str> {
        [&self.number_e164, &self.mobile, &self.phone]
            .into_iter()
            .filter_map(|n| n.as_deref())
            .map(str::trim)
            .find(|n| !n.is_empty())
    }
}

/// What a contact becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A recipient at this number (E.164) as typed (`phone_number`).
    Recipient { typed: String, e164: String },
    /// Skipped, with the reason (and the number as typed, if any).
    Skipped {
        typed: Option<String>,
        reason: String,
    },
}

/// Counts of one generation, for the message on the campaign.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub added: u64,
    pub not_opted_in: u64,
    pub no_number: u64,
    pub bad_number: u64,
    pub duplicate: u64,
}

impl Tally {
    pub fn skipped(&self) -> u64 {
        self.not_opted_in + self.no_number + self.bad_number + self.duplicate
    }

    /// One line for the campaign's `queue_message`.
    pub fn summary(&self, already: u64, lang: Lang) -> String {
        let mut s = lang.pick(
            format!(
                "Queue generated: {} new recipients ({} already in the queue), {} skipped",
                self.added,
                already,
                self.skipped()
            ),
            format!(
                "File générée : {} nouveaux destinataires ({} déjà dans la file), {} écartés",
                self.added,
                already,
                self.skipped()
            ),
        );
        let parts: Vec<String> = [
            (
                self.not_opted_in,
                lang.pick("not opted in", "sans consentement"),
            ),
            (self.no_number, lang.pick("no number", "sans numéro")),
            (
                self.bad_number,
                lang.pick("invalid number", "numéro invalide"),
            ),
            (
                self.duplicate,
                lang.pick(
                    "same number as another contact",
                    "même numéro qu'un autre contact",
                ),
            ),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        if !parts.is_empty() {
            s.push_str(&format!(" ({})", parts.join(", ")));
        }
        s.push('.');
        s
    }
}

/// The numbers already in the campaign, with the contact holding each.
#[derive(Debug, Default)]
pub struct Numbers {
    by_number: HashMap<String, String>,
}

impl Numbers {
    /// `e164` is taken by the contact named `name`.
    pub fn insert(&mut self, e164: String, name: String) {
        self.by_number.entry(e164).or_insert(name);
    }

    pub fn len(&self) -> usize {
        self.by_number.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_number.is_empty()
    }
}

/// Decides for one contact, counting it in `tally` and taking its number in `numbers`.
pub fn classify(
    contact: &Contact,
    region: Option<&str>,
    numbers: &mut Numbers,
    tally: &mut Tally,
    lang: Lang,
) -> Verdict {
    let typed = contact.number().map(str::to_owned);
    if !contact.opt_in || contact.opted_out {
        tally.not_opted_in += 1;
        return Verdict::Skipped {
            typed,
            reason: if contact.opted_out {
                lang.pick(
                    "Opted out of WhatsApp messages.",
                    "S'est désinscrit des messages WhatsApp.",
                )
            } else {
                lang.pick(
                    "Has not opted in to WhatsApp messages ('WhatsApp opt-in' is not ticked).",
                    "N'a pas consenti aux messages WhatsApp (« WhatsApp opt-in » n'est pas coché).",
                )
            }
            .to_owned(),
        };
    }
    let Some(raw) = typed.clone() else {
        tally.no_number += 1;
        return Verdict::Skipped {
            typed: None,
            reason: lang
                .pick(
                    "No WhatsApp, mobile or phone number on the contact.",
                    "Aucun numéro WhatsApp, mobile ou téléphone sur le contact.",
                )
                .to_owned(),
        };
    };
    let e164 = match phone::normalize(&raw, region) {
        Ok(n) => n.into_string(),
        Err(e) => {
            tally.bad_number += 1;
            return Verdict::Skipped {
                typed,
                reason: lang.pick(
                    format!("Invalid number: {e}"),
                    format!("Numéro invalide ({raw:?}) : corrigez-le sur le contact, au format international, par ex. +2250700000001."),
                ),
            };
        }
    };
    if let Some(holder) = numbers.by_number.get(&e164) {
        tally.duplicate += 1;
        return Verdict::Skipped {
            typed,
            reason: lang.pick(
                format!("Same number ({e164}) as {holder}, who is already a recipient: one message per number."),
                format!("Même numéro ({e164}) que {holder}, déjà destinataire : un message par numéro."),
            ),
        };
    }
    numbers.insert(e164.clone(), contact.name.clone());
    tally.added += 1;
    Verdict::Recipient { typed: raw, e164 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(id: i64, name: &str, number: Option<&str>, opt_in: bool) -> Contact {
        Contact {
            id,
            name: name.into(),
            opt_in,
            mobile: number.map(str::to_owned),
            ..Contact::default()
        }
    }

    #[test]
    fn opted_in_contacts_with_a_valid_number_once_per_number() {
        let mut numbers = Numbers::default();
        let mut tally = Tally::default();
        let mut go = |c: &Contact| classify(c, Some("CI"), &mut numbers, &mut tally, Lang::En);
        // Local format, made E.164 with the company's country.
        assert_eq!(
            go(&contact(1, "Awa", Some("07 00 00 00 01"), true)),
            Verdict::Recipient {
                typed: "07 00 00 00 01".into(),
                e164: "+2250700000001".into()
            }
        );
        // The same number typed another way: skipped, naming who has it.
        let Verdict::Skipped { reason, .. } =
            go(&contact(2, "Awa bis", Some("+225 0700000001"), true))
        else {
            panic!("a duplicate number must be skipped");
        };
        assert!(reason.contains("Awa"), "{reason}");
        let Verdict::Skipped { reason, .. } =
            go(&contact(3, "Koffi", Some("07 00 00 00 02"), false))
        else {
            panic!("not opted in must be skipped");
        };
        assert!(reason.contains("opted in"), "{reason}");
        let mut out = contact(4, "Yao", Some("0700000003"), true);
        out.opted_out = true;
        let Verdict::Skipped { reason, .. } = go(&out) else {
            panic!()
        };
        assert!(reason.contains("Opted out"), "{reason}");
        let Verdict::Skipped { reason, .. } = go(&contact(5, "Nobody", None, true)) else {
            panic!()
        };
        assert!(reason.contains("No WhatsApp"), "{reason}");
        let Verdict::Skipped { reason, .. } = go(&contact(6, "Typo", Some("12"), true)) else {
            panic!()
        };
        assert!(reason.starts_with("Invalid number"), "{reason}");
        // The WhatsApp number comes before the mobile.
        let mut both = contact(7, "Both", Some("0700000009"), true);
        both.number_e164 = Some("+33612345678".into());
        assert!(matches!(go(&both), Verdict::Recipient { e164, .. } if e164 == "+33612345678"));
        assert_eq!(
            tally,
            Tally {
                added: 2,
                not_opted_in: 2,
                no_number: 1,
                bad_number: 1,
                duplicate: 1
            }
        );
        assert_eq!(
            tally.summary(10, Lang::En),
            "Queue generated: 2 new recipients (10 already in the queue), 5 skipped (2 not opted in, 1 no number, 1 invalid number, 1 same number as another contact)."
        );
        assert!(tally
            .summary(0, Lang::Fr)
            .starts_with("File générée : 2 nouveaux"));
    }

    #[test]
    fn numbers_already_in_the_campaign_count_on_regeneration() {
        let mut numbers = Numbers::default();
        numbers.insert("+2250700000001".into(), "Awa".into());
        let mut tally = Tally::default();
        let v = classify(
            &contact(9, "Awa again", Some("+2250700000001"), true),
            None,
            &mut numbers,
            &mut tally,
            Lang::En,
        );
        assert!(matches!(v, Verdict::Skipped { .. }));
        assert_eq!(tally.duplicate, 1);
    }
}
