//! The button actions' decisions, as pure functions: presses and actions as read from Odoo,
//! which action a press runs, whether the presser is the order's customer, and the words
//! written for Odoo users (results on the press, chatter notes, activities).

use crate::lang::Lang;
use crate::orders::{same_number, Customer};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

fn m2o(r: &Map<String, Value>, f: &str) -> Option<i64> {
    match r.get(f) {
        Some(Value::Array(items)) => items.first().and_then(Value::as_i64),
        Some(Value::Number(n)) => n.as_i64(),
        _ => None,
    }
}

fn text(r: &Map<String, Value>, f: &str) -> Option<String> {
    r.get(f)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// A received button press (`whatsapp.message`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Press {
    pub id: i64,
    pub account_id: Option<i64>,
    pub company_id: Option<i64>,
    pub partner_id: Option<i64>,
    pub conversation_id: Option<i64>,
    /// The presser's WhatsApp id (digits).
    pub wa_id: Option<String>,
    pub wamid: Option<String>,
    /// The reply id or quick-reply payload (empty for a text).
    pub payload: String,
    pub received_at: Option<DateTime<Utc>>,
    /// `text` for a text (scenario keywords, default reply), else the press's type.
    pub message_type: String,
    /// A text's words.
    pub body: Option<String>,
}

impl Press {
    pub const MODEL: &'static str = "whatsapp.message";
    pub const FIELDS: &'static [&'static str] = &[
        "account_id",
        "company_id",
        "partner_id",
        "conversation_id",
        "wa_id",
        "wamid",
        "button_payload",
        "received_at",
        "message_type",
        "body",
    ];

    pub fn from_record(value: &Value) -> Option<Press> {
        let r = value.as_object()?;
        Some(Press {
            id: r.get("id")?.as_i64()?,
            account_id: m2o(r, "account_id"),
            company_id: m2o(r, "company_id"),
            partner_id: m2o(r, "partner_id"),
            conversation_id: m2o(r, "conversation_id"),
            wa_id: text(r, "wa_id"),
            wamid: text(r, "wamid"),
            payload: text(r, "button_payload").unwrap_or_default(),
            received_at: text(r, "received_at").and_then(|s| crate::odoo::parse_datetime(&s)),
            message_type: text(r, "message_type").unwrap_or_default(),
            body: text(r, "body"),
        })
    }

    /// The number replies go to.
    pub fn number(&self) -> Option<String> {
        self.wa_id.as_ref().map(|w| format!("+{w}"))
    }
}

/// A `whatsapp.button.action`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ActionRow {
    pub id: i64,
    pub name: String,
    pub sequence: i64,
    pub company_id: Option<i64>,
    pub account_id: Option<i64>,
    pub button_id: String,
    pub prefix: bool,
    pub action_type: String,
    /// In the language it was read in.
    pub reply_text: Option<String>,
    pub template_id: Option<i64>,
    /// `start_scenario`: the scenario.
    pub scenario_id: Option<i64>,
    /// `server_action`: the `ir.actions.server` and the model it runs on.
    pub server_action_id: Option<i64>,
    pub server_action_model: Option<String>,
}

impl ActionRow {
    pub const MODEL: &'static str = "whatsapp.button.action";
    pub const FIELDS: &'static [&'static str] = &[
        "name",
        "sequence",
        "company_id",
        "account_id",
        "button_id",
        "match_type",
        "action_type",
        "reply_text",
        "template_id",
        "scenario_id",
        "server_action_id",
        "server_action_model",
    ];

    pub fn from_record(value: &Value) -> Option<ActionRow> {
        let r = value.as_object()?;
        Some(ActionRow {
            id: r.get("id")?.as_i64()?,
            name: text(r, "name").unwrap_or_default(),
            sequence: r.get("sequence").and_then(Value::as_i64).unwrap_or(10),
            company_id: m2o(r, "company_id"),
            account_id: m2o(r, "account_id"),
            button_id: text(r, "button_id")?,
            prefix: text(r, "match_type").as_deref() == Some("prefix"),
            action_type: text(r, "action_type").unwrap_or_default(),
            reply_text: text(r, "reply_text").filter(|t| !t.trim().is_empty()),
            template_id: m2o(r, "template_id"),
            scenario_id: m2o(r, "scenario_id"),
            server_action_id: m2o(r, "server_action_id"),
            server_action_model: text(r, "server_action_model"),
        })
    }

    fn matches(&self, payload: &str) -> bool {
        if self.prefix {
            payload.starts_with(&self.button_id)
        } else {
            payload == self.button_id
        }
    }

    /// The action works on an order and needs a payload bound to it.
    pub fn on_order(&self) -> bool {
        matches!(
            self.action_type.as_str(),
            "confirm_order" | "cancel_order" | "send_order_details"
        )
    }
}

/// The action a press runs: of its account (or none) and company (or none), matching its
/// payload, the first by sequence then id.
pub fn match_action<'a>(actions: &'a [ActionRow], press: &Press) -> Option<&'a ActionRow> {
    actions
        .iter()
        .filter(|a| a.account_id.is_none() || a.account_id == press.account_id)
        .filter(|a| a.company_id.is_none() || a.company_id == press.company_id)
        .filter(|a| a.matches(&press.payload))
        .min_by_key(|a| (a.sequence, a.id))
}

/// True when the press comes from the order's customer: its contact is in the customer's
/// commercial entity, or its number is one of the entity's contacts' numbers.
pub fn from_customer(press: &Press, customer: &Customer, entity_contacts: &[Customer]) -> bool {
    let entity = customer.commercial_partner_id.unwrap_or(customer.id);
    let in_entity =
        |c: &Customer| c.id == customer.id || c.commercial_partner_id.unwrap_or(c.id) == entity;
    if let Some(pid) = press.partner_id {
        if pid == customer.id || entity_contacts.iter().any(|c| c.id == pid && in_entity(c)) {
            return true;
        }
    }
    let Some(wa_id) = press.wa_id.as_deref() else {
        return false;
    };
    std::iter::once(customer)
        .chain(entity_contacts.iter().filter(|c| in_entity(c)))
        .flat_map(Customer::numbers)
        .any(|n| same_number(wa_id, n))
}

/// How a press ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Done,
    Refused,
    Failed,
    Ignored,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Done => "done",
            State::Refused => "refused",
            State::Failed => "failed",
            State::Ignored => "ignored",
        }
    }
}

/// What is written on the press.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub state: State,
    pub result: String,
    pub action_id: Option<i64>,
    pub order_id: Option<i64>,
}

impl Outcome {
    /// The press's values.
    pub fn values(&self) -> Map<String, Value> {
        let mut v = Map::new();
        v.insert("action_state".into(), json!(self.state.as_str()));
        v.insert("action_result".into(), json!(self.result));
        if let Some(a) = self.action_id {
            v.insert("action_id".into(), json!(a));
        }
        if let Some(o) = self.order_id {
            v.insert("res_model".into(), json!("sale.order"));
            v.insert("res_id".into(), json!(o));
        }
        v
    }
}

/// Words for Odoo users, in their language.
pub mod words {
    use super::Lang;

    pub fn too_old(lang: Lang, hours: u64) -> String {
        lang.pick(
            format!("Not acted on: the press is more than {hours} hours old (actions.max_age_hours). Answer the customer by hand if needed."),
            format!("Rien n'a été fait : l'appui date de plus de {hours} heures (actions.max_age_hours). Répondez au client à la main si besoin."),
        )
    }

    pub fn no_action(lang: Lang, payload: &str) -> String {
        lang.pick(
            format!("No button action matches '{payload}': add one in WhatsApp > Button actions if this button should do something."),
            format!("Aucune action de bouton ne correspond à « {payload} » : ajoutez-en une dans WhatsApp > Actions de bouton si ce bouton doit faire quelque chose."),
        )
    }

    pub fn not_run(lang: Lang, action: &str, action_type: &str) -> String {
        lang.pick(
            format!("The action '{action}' ({action_type}) is not run by this version of the daemon: nothing was done."),
            format!("L'action « {action} » ({action_type}) n'est pas exécutée par cette version du démon : rien n'a été fait."),
        )
    }

    pub fn bad_payload(lang: Lang, problem: &str) -> String {
        lang.pick(
            format!("Refused, nothing changed: {problem}."),
            format!("Refusé, rien n'a changé : {problem}."),
        )
    }

    pub fn no_order(lang: Lang, id: i64) -> String {
        lang.pick(
            format!("Refused, nothing changed: the sale order {id} no longer exists (or the daemon's user cannot read it)."),
            format!("Refusé, rien n'a changé : la commande {id} n'existe plus (ou l'utilisateur du démon ne peut pas la lire)."),
        )
    }

    pub fn not_customer(lang: Lang, number: &str, order: &str) -> String {
        lang.pick(
            format!("Refused, nothing changed: {number} is not a number of the customer of {order} (nor of a contact of its company)."),
            format!("Refusé, rien n'a changé : {number} n'est pas un numéro du client de {order} (ni d'un contact de sa société)."),
        )
    }

    pub fn confirmed(lang: Lang, order: &str) -> String {
        lang.pick(
            format!("{order} confirmed; the customer is told."),
            format!("{order} confirmée ; le client est prévenu."),
        )
    }

    pub fn already_confirmed(lang: Lang, order: &str) -> String {
        lang.pick(
            format!("{order} was already confirmed: nothing changed; the customer is told."),
            format!("{order} était déjà confirmée : rien n'a changé ; le client est prévenu."),
        )
    }

    pub fn cancelled(lang: Lang, order: &str) -> String {
        lang.pick(
            format!("{order} cancelled; the customer is told."),
            format!("{order} annulée ; le client est prévenu."),
        )
    }

    pub fn already_cancelled(lang: Lang, order: &str) -> String {
        lang.pick(
            format!("{order} was already cancelled: nothing changed; the customer is told."),
            format!("{order} était déjà annulée : rien n'a changé ; le client est prévenu."),
        )
    }

    pub fn refused_state(lang: Lang, order: &str, why: &str) -> String {
        lang.pick(
            format!("Refused, nothing changed: {order} is {why}; the customer is told why."),
            format!(
                "Refusé, rien n'a changé : {order} est {why} ; le client est prévenu de la raison."
            ),
        )
    }

    pub fn state_word(lang: Lang, state: &str, locked: bool, invoiced: bool) -> String {
        let (en, fr) = match state {
            "cancel" => ("cancelled", "annulée"),
            _ if invoiced => ("invoiced", "facturée"),
            _ if locked => ("locked", "verrouillée"),
            "draft" | "sent" => ("a quotation", "un devis"),
            _ => ("confirmed", "confirmée"),
        };
        lang.pick(en, fr).to_owned()
    }

    pub fn odoo_refused(lang: Lang, order: &str, confirm: bool, error: &str) -> String {
        match (lang, confirm) {
            (Lang::En, true) => format!("Odoo refused to confirm {order}: {error}. The customer is told a salesperson will contact them; the salesperson has an activity."),
            (Lang::En, false) => format!("Odoo refused to cancel {order}: {error}. The customer is told a salesperson will contact them; the salesperson has an activity."),
            (Lang::Fr, true) => format!("Odoo a refusé de confirmer {order} : {error}. Le client est prévenu qu'un commercial va le contacter ; le commercial a une activité."),
            (Lang::Fr, false) => format!("Odoo a refusé d'annuler {order} : {error}. Le client est prévenu qu'un commercial va le contacter ; le commercial a une activité."),
        }
    }

    pub fn details_sent(lang: Lang, order: &str) -> String {
        lang.pick(
            format!("Details of {order} queued."),
            format!("Détail de {order} mis en file d'attente."),
        )
    }

    pub fn replied(lang: Lang) -> String {
        lang.pick(
            "Reply queued.".to_owned(),
            "Réponse mise en file d'attente.".to_owned(),
        )
    }

    /// The chatter note after the customer's press changed the order.
    pub fn note(lang: Lang, confirm: bool, number: &str) -> String {
        match (lang, confirm) {
            (Lang::En, true) => format!("Confirmed by the customer on WhatsApp, {number}."),
            (Lang::En, false) => format!("Cancelled by the customer on WhatsApp, {number}."),
            (Lang::Fr, true) => format!("Confirmée par le client sur WhatsApp, {number}."),
            (Lang::Fr, false) => format!("Annulée par le client sur WhatsApp, {number}."),
        }
    }

    /// The activity's summary and note when Odoo refused the customer's press.
    pub fn activity(lang: Lang, confirm: bool, number: &str, error: &str) -> (String, String) {
        match (lang, confirm) {
            (Lang::En, true) => (
                "WhatsApp: confirm the order with the customer".into(),
                format!("The customer pressed Validate on WhatsApp ({number}) but Odoo refused to confirm the order: {error}. They were told a salesperson will contact them."),
            ),
            (Lang::En, false) => (
                "WhatsApp: cancel the order with the customer".into(),
                format!("The customer pressed Cancel on WhatsApp ({number}) but Odoo refused to cancel the order: {error}. They were told a salesperson will contact them."),
            ),
            (Lang::Fr, true) => (
                "WhatsApp : confirmer la commande avec le client".into(),
                format!("Le client a appuyé sur Valider dans WhatsApp ({number}) mais Odoo a refusé de confirmer la commande : {error}. Il a été prévenu qu'un commercial va le contacter."),
            ),
            (Lang::Fr, false) => (
                "WhatsApp : annuler la commande avec le client".into(),
                format!("Le client a appuyé sur Annuler dans WhatsApp ({number}) mais Odoo a refusé d'annuler la commande : {error}. Il a été prévenu qu'un commercial va le contacter."),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(id: i64, button: &str, prefix: bool, sequence: i64) -> ActionRow {
        ActionRow {
            id,
            name: format!("a{id}"),
            sequence,
            button_id: button.into(),
            prefix,
            action_type: "confirm_order".into(),
            ..ActionRow::default()
        }
    }

    fn press(payload: &str) -> Press {
        Press {
            id: 1,
            account_id: Some(1),
            company_id: Some(1),
            partner_id: Some(3),
            wa_id: Some("2250700000001".into()),
            payload: payload.into(),
            ..Press::default()
        }
    }

    #[test]
    fn the_first_matching_action_of_the_account_and_company_runs() {
        let mut other_account = action(1, "order_validate", true, 1);
        other_account.account_id = Some(2);
        let mut other_company = action(2, "order_validate", true, 1);
        other_company.company_id = Some(2);
        let exact = action(3, "order_validate", false, 1);
        let late = action(4, "order_validate", true, 20);
        let early = action(5, "order_validate", true, 10);
        let list = vec![other_account, other_company, exact, late, early];
        assert_eq!(
            match_action(&list, &press("order_validate:42:abcd"))
                .unwrap()
                .id,
            5
        );
        assert_eq!(
            match_action(&list, &press("order_validate")).unwrap().id,
            3,
            "exact at sequence 1"
        );
        assert!(match_action(&list, &press("order_cancel:42:abcd")).is_none());
    }

    #[test]
    fn the_presser_must_be_the_customer_or_a_contact_of_its_company() {
        let company = Customer {
            id: 10,
            commercial_partner_id: Some(10),
            ..Customer::default()
        };
        let colleague = Customer {
            id: 11,
            commercial_partner_id: Some(10),
            mobile: Some("+225 07 00 00 00 01".into()),
            ..Customer::default()
        };
        let stranger = Customer {
            id: 12,
            commercial_partner_id: Some(12),
            mobile: Some("+225 07 00 00 00 09".into()),
            ..Customer::default()
        };
        // By the contact inbound processing matched.
        let p = Press {
            wa_id: None,
            partner_id: Some(11),
            ..press("x")
        };
        assert!(from_customer(
            &p,
            &company,
            std::slice::from_ref(&colleague)
        ));
        // By number, whoever the conversation's contact is.
        let p = Press {
            partner_id: None,
            ..press("x")
        };
        assert!(from_customer(
            &p,
            &company,
            std::slice::from_ref(&colleague)
        ));
        assert!(!from_customer(&p, &company, &[]));
        // Another company's contact, even listed, does not count.
        let p = Press {
            partner_id: Some(12),
            wa_id: Some("2250700000009".into()),
            ..press("x")
        };
        assert!(!from_customer(&p, &company, &[colleague.clone(), stranger]));
        // The customer itself.
        let p = Press {
            partner_id: Some(10),
            ..press("x")
        };
        assert!(from_customer(&p, &company, &[]));
    }

    #[test]
    fn presses_and_actions_are_read_from_odoo_records() {
        let p = Press::from_record(&json!({"id": 5, "account_id": [1, "A"], "company_id": [1, "C"],
            "partner_id": false, "conversation_id": [3, "c"], "wa_id": "2250700000001",
            "wamid": "wamid.X", "button_payload": "order_validate:4:ab", "received_at": "2026-03-01 10:00:00"}))
        .unwrap();
        assert_eq!(p.number().as_deref(), Some("+2250700000001"));
        assert_eq!(p.partner_id, None);
        let a = ActionRow::from_record(
            &json!({"id": 2, "name": "V", "sequence": 10, "company_id": false,
            "account_id": false, "button_id": "order_validate", "match_type": "prefix",
            "action_type": "confirm_order", "reply_text": false, "template_id": false}),
        )
        .unwrap();
        assert!(a.prefix && a.on_order() && a.reply_text.is_none());
        let o = Outcome {
            state: State::Refused,
            result: "why".into(),
            action_id: Some(2),
            order_id: Some(4),
        };
        let v = o.values();
        assert_eq!(v["action_state"], "refused");
        assert_eq!(v["res_model"], "sale.order");
        assert_eq!(v["res_id"], 4);
    }

    #[test]
    fn users_read_their_own_language() {
        assert!(words::note(Lang::En, true, "+2250700000001")
            .starts_with("Confirmed by the customer on WhatsApp, +225"));
        assert!(words::note(Lang::Fr, false, "+2250700000001").starts_with("Annulée par le client"));
        assert_eq!(words::state_word(Lang::Fr, "sale", false, true), "facturée");
        assert_eq!(words::state_word(Lang::En, "sale", true, false), "locked");
    }
}
